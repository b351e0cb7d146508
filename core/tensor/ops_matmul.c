/*
 * core/tensor/ops_matmul: matmul and bmm on cblas_sgemm, forward and backward (kernels in
 * kernels.c). Transposes are sgemm flags, never copies; backward accumulates with beta = 1.
 */
#include "tensor/ops_internal.h"

/* p.i: [0] M, [1] N, [2] K, [3] trans_a, [4] trans_b, [5] batch count (bmm) */
static void matmul_backward(rlab_tape *tape, rlab_tensor *out)
{
    rlab_tensor *a = out->src[0], *b = out->src[1];
    const int64_t M = out->p.i[0], N = out->p.i[1], K = out->p.i[2], Bt = out->p.i[5];
    const int ta = (int)out->p.i[3], tb = (int)out->p.i[4];
    /* partial sums of a tall-skinny dB (see kernels.c); NULL falls back to one sgemm */
    const size_t ns = b->grad ? rlab_k_matmul_scratch_floats(M, N, K) : 0;
    float *scratch = ns ? rlab_arena_alloc(tape->arena, ns * sizeof(float)) : NULL;
    for (int64_t i = 0; i < Bt; i++)
        rlab_k_matmul_bwd_ws(a->grad ? a->grad + i * M * K : NULL,
                             b->grad ? b->grad + i * K * N : NULL, out->grad + i * M * N,
                             a->data + i * M * K, b->data + i * K * N, M, N, K, ta, tb, scratch);
}

static void save_dims(rlab_tensor *out, int64_t M, int64_t N, int64_t K, int ta, int tb, int64_t Bt)
{
    out->p.i[0] = M;
    out->p.i[1] = N;
    out->p.i[2] = K;
    out->p.i[3] = ta != 0;
    out->p.i[4] = tb != 0;
    out->p.i[5] = Bt;
}

rlab_tensor *rlab_t_matmul(rlab_tape *t, rlab_tensor *a, rlab_tensor *b, int trans_a, int trans_b)
{
    rlab_tensor *src[2] = {a, b};
    if (rlab_ops_enter(t, "matmul", src, 2))
        return &t->poison;
    if (b->ndim != 2 || (trans_a && a->ndim != 2))
        return rlab_ops_shape_fail(t, "matmul", "B must be 2-D (and A too when trans_a)", a, b);
    // op(A) [M, K] (A's leading dims flattened into M), op(B) [K, N]
    const int64_t K = trans_a ? a->shape[0] : rlab_t_cols(a);
    const int64_t M = trans_a ? a->shape[1] : rlab_t_rows(a);
    const int64_t Kb = trans_b ? b->shape[1] : b->shape[0];
    const int64_t N = trans_b ? b->shape[0] : b->shape[1];
    if (K != Kb)
        return rlab_ops_shape_fail(t, "matmul", "inner dimensions differ", a, b);
    int64_t shape[RLAB_T_MAXDIM];
    int ndim = trans_a ? 2 : a->ndim;
    if (trans_a)
        shape[0] = M;
    else
        memcpy(shape, a->shape, sizeof shape);
    shape[ndim - 1] = N;
    rlab_tensor *out = rlab_tape_op_nofill(t, "matmul", ndim, shape, src, 2, matmul_backward);
    if (out->flags & RLAB_T_POISON)
        return out;
    save_dims(out, M, N, K, trans_a, trans_b, 1);
    rlab_k_matmul_fwd(out->data, a->data, b->data, M, N, K, trans_a, trans_b);
    return out;
}

rlab_tensor *rlab_t_bmm(rlab_tape *t, rlab_tensor *a, rlab_tensor *b, int trans_a, int trans_b)
{
    rlab_tensor *src[2] = {a, b};
    if (rlab_ops_enter(t, "bmm", src, 2))
        return &t->poison;
    if (a->ndim != 3 || b->ndim != 3 || a->shape[0] != b->shape[0])
        return rlab_ops_shape_fail(t, "bmm", "A and B must be 3-D with the same batch", a, b);
    // per batch: op(A) [M, K], op(B) [K, N] -> [M, N]
    const int64_t Bt = a->shape[0];
    const int64_t M = trans_a ? a->shape[2] : a->shape[1];
    const int64_t K = trans_a ? a->shape[1] : a->shape[2];
    const int64_t Kb = trans_b ? b->shape[2] : b->shape[1];
    const int64_t N = trans_b ? b->shape[1] : b->shape[2];
    if (K != Kb)
        return rlab_ops_shape_fail(t, "bmm", "inner dimensions differ", a, b);
    rlab_tensor *out =
        rlab_tape_op_nofill(t, "bmm", 3, (int64_t[]){Bt, M, N}, src, 2, matmul_backward);
    if (out->flags & RLAB_T_POISON)
        return out;
    save_dims(out, M, N, K, trans_a, trans_b, Bt);
    for (int64_t i = 0; i < Bt; i++)
        rlab_k_matmul_fwd(out->data + i * M * N, a->data + i * M * K, b->data + i * K * N, M, N, K,
                          trans_a, trans_b);
    return out;
}

/* ---- spmm: constant sparse (CSR) matrix times a dense tensor ------------------------------- */
/* ext[0] rowptr [R + 1] (int64), ext[1] col [nnz] (int32); aux[0] val [nnz] (float, borrowed);
 * p.i[0] R. out[r] = sum_k val[k] x[col[k]] over k in [rowptr[r], rowptr[r + 1]). */
static void spmm_backward(rlab_tape *tape, rlab_tensor *out)
{
    (void)tape;
    rlab_tensor *x = out->src[0];
    if (!x->grad)
        return;
    const int64_t *rp = out->ext[0];
    const int32_t *col = out->ext[1];
    const float *val = out->aux[0];
    const int64_t R = out->p.i[0], C = rlab_t_cols(x);
    /* serial scatter: a fixed order, so the gradient does not depend on the thread count */
    for (int64_t r = 0; r < R; r++) {
        const float *dy = out->grad + r * C;
        for (int64_t k = rp[r]; k < rp[r + 1]; k++) {
            float *dx = x->grad + (int64_t)col[k] * C;
            const float v = val ? val[k] : 1.0f;
#pragma omp simd
            for (int64_t c = 0; c < C; c++)
                dx[c] += v * dy[c];
        }
    }
}

rlab_tensor *rlab_t_spmm(rlab_tape *t, int64_t n_rows, const int64_t *rowptr, const int32_t *col,
                         const float *val, rlab_tensor *x)
{
    if (rlab_ops_enter(t, "spmm", &x, 1))
        return &t->poison;
    if (x->ndim != 2)
        return rlab_ops_shape_fail(t, "spmm", "x must be 2-D [N, C]", x, NULL);
    if (n_rows < 0 || !rowptr || rowptr[0] != 0)
        return rlab_tape_fail(t, RLAB_EINVAL, "spmm: bad CSR row pointers (%lld rows)",
                              (long long)n_rows);
    const int64_t N = x->shape[0], C = x->shape[1];
    for (int64_t r = 0; r < n_rows; r++) {
        if (rowptr[r + 1] < rowptr[r])
            return rlab_tape_fail(t, RLAB_EINVAL, "spmm: row pointers decrease at row %lld",
                                  (long long)r);
        for (int64_t k = rowptr[r]; k < rowptr[r + 1]; k++)
            if (!col || col[k] < 0 || col[k] >= N)
                return rlab_tape_fail(t, RLAB_EINVAL,
                                      "spmm: column %d at entry %lld is out of range for x of "
                                      "%lld rows",
                                      col ? (int)col[k] : -1, (long long)k, (long long)N);
    }
    rlab_tensor *out =
        rlab_tape_op_nofill(t, "spmm", 2, (int64_t[]){n_rows, C}, &x, 1, spmm_backward);
    if (out->flags & RLAB_T_POISON)
        return out;
    out->ext[0] = rowptr;
    out->ext[1] = col;
    out->aux[0] = (void *)(uintptr_t)val;
    out->p.i[0] = n_rows;
#pragma omp parallel for schedule(static) if (rowptr[n_rows] * C >= RLAB_K_PAR_MIN)
    for (int64_t r = 0; r < n_rows; r++) {
        float *y = out->data + r * C;
        for (int64_t c = 0; c < C; c++)
            y[c] = 0.0f;
        for (int64_t k = rowptr[r]; k < rowptr[r + 1]; k++) {
            const float *xr = x->data + (int64_t)col[k] * C;
            const float v = val ? val[k] : 1.0f;
#pragma omp simd
            for (int64_t c = 0; c < C; c++)
                y[c] += v * xr[c];
        }
    }
    return out;
}

/* ---- linear: act(x w + b) + r in one op (kernels.c, "h-block") ------------------------------ */
/* src: x, w, then b and r when given; p.i: [0] M, [1] N, [2] K, [3] act, [4] / [5] index of b /
 * r in src (-1: absent) */
static void linear_backward(rlab_tape *tape, rlab_tensor *out)
{
    rlab_tensor *x = out->src[0], *w = out->src[1];
    rlab_tensor *b = out->p.i[4] >= 0 ? out->src[out->p.i[4]] : NULL;
    rlab_tensor *r = out->p.i[5] >= 0 ? out->src[out->p.i[5]] : NULL;
    const int64_t M = out->p.i[0], N = out->p.i[1], K = out->p.i[2];
    const int act = (int)out->p.i[3];
    float *db = b ? b->grad : NULL, *dr = r ? r->grad : NULL;
    if (!x->grad && !w->grad && !db && !dr)
        return;
    float *scratch =
        rlab_tape_alloc(tape, rlab_k_linear_scratch_floats(M, N, K, act) * sizeof(float) + 1);
    if (!scratch)
        return;
    rlab_k_linear_bwd(x->grad, w->grad, db, dr, out->grad, x->data, w->data, out->data, M, N, K,
                      act, scratch);
}

rlab_tensor *rlab_t_linear(rlab_tape *t, rlab_tensor *x, rlab_tensor *w, rlab_tensor *b,
                           rlab_tensor *r, int act)
{
    rlab_tensor *src[4] = {x, w, NULL, NULL};
    if (rlab_ops_enter(t, "linear", src, 2))
        return &t->poison;
    int nsrc = 2, ib = -1, ir = -1;
    if (b) {
        ib = nsrc;
        src[nsrc++] = b;
    }
    if (r) {
        ir = nsrc;
        src[nsrc++] = r;
    }
    if (nsrc > 2 && rlab_ops_enter(t, "linear", src + 2, nsrc - 2))
        return &t->poison;
    if (act != RLAB_ACT_NONE && act != RLAB_ACT_RELU)
        return rlab_tape_fail(t, RLAB_EINVAL, "linear: unknown activation %d", act);
    if (act == RLAB_ACT_RELU && r)
        return rlab_tape_fail(t, RLAB_EINVAL,
                              "linear: a residual after the ReLU is not supported (add it apart)");
    // x [.., K] (leading dims flattened into M rows), w [K, N] -> out [.., N]
    if (w->ndim != 2 || rlab_t_cols(x) != w->shape[0])
        return rlab_ops_shape_fail(t, "linear", "need x [.., K] and w [K, N]", x, w);
    const int64_t M = rlab_t_rows(x), K = w->shape[0], N = w->shape[1];
    if (b && b->n != N)
        return rlab_ops_shape_fail(t, "linear", "bias must have N = cols(w) elements", w, b);
    if (r && (r->n != M * N || rlab_t_cols(r) != N))
        return rlab_ops_shape_fail(t, "linear", "residual must have the output's shape", x, r);
    int64_t shape[RLAB_T_MAXDIM];
    memcpy(shape, x->shape, sizeof shape);
    shape[x->ndim - 1] = N;
    rlab_tensor *out = rlab_tape_op_nofill(t, "linear", x->ndim, shape, src, nsrc, linear_backward);
    if (out->flags & RLAB_T_POISON)
        return out;
    out->p.i[0] = M;
    out->p.i[1] = N;
    out->p.i[2] = K;
    out->p.i[3] = act;
    out->p.i[4] = ib;
    out->p.i[5] = ir;
    rlab_k_linear_fwd(out->data, x->data, w->data, b ? b->data : NULL, r ? r->data : NULL, M, N, K,
                      act == RLAB_ACT_RELU ? RLAB_K_ACT_RELU : RLAB_K_ACT_NONE);
    /* as many tape nodes as the unfused ops (views of out: no data, no backward), so that the
     * dropout streams of later ops, keyed by node index, stay those of the unfused model and a
     * seeded run keeps its numbers when a model switches to this op */
    const int pad = (b != NULL) + (act == RLAB_ACT_RELU) + (r != NULL);
    for (int i = 0; i < pad; i++)
        rlab_t_reshape(t, out, out->ndim, out->shape);
    return t->err.code ? &t->poison : out;
}

/* ---- linear_multi: n linears of one input (kernels.c, "h-block2") --------------------------- */

/* The end of the multi ops: outs[s] = view s of out [n, .., N] (x's shape with N last; data and
 * grad at s M N), not on the tape (nothing to run backward, the grad aliases the stacked
 * output's); then pad reshapes of out on the tape, so that the op records as many nodes as the
 * separate ops it replaces (the dropout streams of later ops, keyed by node index, stay theirs).
 * Returns out, or the poison with every outs[s] poisoned on an error. */
static rlab_tensor *stack_views(rlab_tape *t, rlab_tensor *out, const rlab_tensor *x, int n,
                                int64_t M, int64_t N, const char *op, int pad, rlab_tensor **outs)
{
    for (int s = 0; s < n && !t->err.code; s++) {
        rlab_tensor *v = rlab_tape_alloc(t, sizeof *v);
        if (!v)
            break;
        memset(v, 0, sizeof *v);
        v->ndim = x->ndim;
        for (int d = 0; d < RLAB_T_MAXDIM; d++)
            v->shape[d] = d < x->ndim - 1 ? x->shape[d] : d == x->ndim - 1 ? N : 1;
        v->n = M * N;
        v->data = out->data + s * M * N;
        v->grad = out->grad ? out->grad + s * M * N : NULL;
        v->flags = RLAB_T_VIEW | (out->grad ? RLAB_T_REQUIRES_GRAD : 0u);
        v->op = op;
        v->src[0] = out;
        outs[s] = v;
    }
    for (int s = 0; s < pad && !t->err.code; s++)
        rlab_t_reshape(t, out, out->ndim, out->shape);
    if (!t->err.code)
        return out;
    for (int s = 0; s < n; s++)
        outs[s] = &t->poison;
    return &t->poison;
}

/* src: x, w[0..n); p.i: [0] M, [1] N, [2] K, [3] n */
static void linear_multi_backward(rlab_tape *tape, rlab_tensor *out)
{
    rlab_tensor *x = out->src[0];
    const int64_t M = out->p.i[0], N = out->p.i[1], K = out->p.i[2];
    const int n = (int)out->p.i[3];
    float *dw[RLAB_T_MAXSRC - 1];
    const float *w[RLAB_T_MAXSRC - 1];
    int any = x->grad != NULL;
    for (int s = 0; s < n; s++) {
        dw[s] = out->src[1 + s]->grad;
        w[s] = out->src[1 + s]->data;
        any |= dw[s] != NULL;
    }
    if (!any)
        return;
    float *scratch =
        rlab_tape_alloc(tape, rlab_k_linear_multi_scratch_floats(M, N, K, n) * sizeof(float) + 1);
    if (!scratch)
        return;
    rlab_k_linear_multi_bwd(x->grad, dw, out->grad, x->data, w, n, M, N, K, scratch);
}

rlab_tensor *rlab_t_linear_multi(rlab_tape *t, rlab_tensor *x, int n, rlab_tensor *const *w,
                                 rlab_tensor **outs)
{
    if (n < 1 || n > RLAB_T_MAXSRC - 1 || !w || !outs)
        return rlab_tape_fail(t, RLAB_EINVAL, "linear_multi: %d weights (1 to %d)", n,
                              RLAB_T_MAXSRC - 1);
    for (int s = 0; s < n; s++)
        outs[s] = &t->poison;
    rlab_tensor *src[RLAB_T_MAXSRC];
    src[0] = x;
    for (int s = 0; s < n; s++)
        src[1 + s] = w[s];
    if (rlab_ops_enter(t, "linear_multi", src, 1 + n))
        return &t->poison;
    // x [.., K] (leading dims flattened into M rows), w[s] [K, N] -> out [n, .., N]
    if (x->ndim >= RLAB_T_MAXDIM)
        return rlab_ops_shape_fail(t, "linear_multi", "x has too many dims to stack", x, w[0]);
    for (int s = 0; s < n; s++)
        if (w[s]->ndim != 2 || w[s]->shape[0] != rlab_t_cols(x) || w[s]->shape[1] != w[0]->shape[1])
            return rlab_ops_shape_fail(t, "linear_multi", "need x [.., K] and every w [K, N]", x,
                                       w[s]);
    const int64_t M = rlab_t_rows(x), K = w[0]->shape[0], N = w[0]->shape[1];
    int64_t shape[RLAB_T_MAXDIM];
    shape[0] = n;
    for (int d = 0; d < x->ndim; d++)
        shape[1 + d] = x->shape[d];
    shape[x->ndim] = N;
    rlab_tensor *out = rlab_tape_op_nofill(t, "linear_multi", x->ndim + 1, shape, src, 1 + n,
                                           linear_multi_backward);
    if (out->flags & RLAB_T_POISON)
        return out;
    out->p.i[0] = M;
    out->p.i[1] = N;
    out->p.i[2] = K;
    out->p.i[3] = n;
    const float *wd[RLAB_T_MAXSRC - 1];
    for (int s = 0; s < n; s++)
        wd[s] = w[s]->data;
    rlab_k_linear_multi_fwd(out->data, x->data, wd, n, M, N, K);
    /* n nodes in all, as n separate linears */
    return stack_views(t, out, x, n, M, N, "linear_multi.view", n - 1, outs);
}

/* ---- layernorm_linear_multi: LN(x) feeding n linears (kernels.c, "h-block2") ---------------- */
typedef struct lnlin_saved {
    float *mean, *rstd; /* [M] */
    float *h;           /* LN(x) [M, K] when the forward stored it (no fast kernel), else NULL */
    float eps;
} lnlin_saved;

/* src: x, w[0..n), then b[0..n) when given, then gain and bias when given; p.i: [0] M, [1] N,
 * [2] K, [3] n, [4] / [5] index of gain / bias in src (-1: absent), [6] act, [7] index of b[0]
 * (-1: no biases); aux[0]: lnlin_saved */
static void lnlin_backward(rlab_tape *tape, rlab_tensor *out)
{
    const lnlin_saved *sv = out->aux[0];
    rlab_tensor *x = out->src[0];
    const int64_t M = out->p.i[0], N = out->p.i[1], K = out->p.i[2];
    const int n = (int)out->p.i[3], act = (int)out->p.i[6], ibl = (int)out->p.i[7];
    rlab_tensor *gain = out->p.i[4] >= 0 ? out->src[out->p.i[4]] : NULL;
    rlab_tensor *bias = out->p.i[5] >= 0 ? out->src[out->p.i[5]] : NULL;
    float *dg = gain ? gain->grad : NULL, *db = bias ? bias->grad : NULL;
    const float *g = gain ? gain->data : NULL, *b = bias ? bias->data : NULL;
    float *dw[RLAB_T_MAXSRC], *dl[RLAB_T_MAXSRC];
    const float *w[RLAB_T_MAXSRC];
    for (int s = 0; s < n; s++) {
        dw[s] = out->src[1 + s]->grad;
        w[s] = out->src[1 + s]->data;
        dl[s] = ibl >= 0 ? out->src[ibl + s]->grad : NULL;
    }
    const int kact = act == RLAB_ACT_RELU ? RLAB_K_ACT_RELU : RLAB_K_ACT_NONE;
    const size_t nf = rlab_k_ln_linear_multi_scratch_floats(M, N, K, n, kact);
    if (!sv->h && nf) {
        float *scratch = rlab_tape_alloc(tape, nf * sizeof(float));
        if (!scratch)
            return;
        if (rlab_k_ln_linear_multi_bwd(x->grad, dg, db, dw, dl, out->grad, out->data, x->data,
                                       sv->mean, sv->rstd, g, b, sv->eps, w, kact, n, M, N, K,
                                       scratch) == 0)
            return;
    }
    /* the separate ops' kernels: h (stored, or made again), dh from each linear's backward,
     * then the layer norm's backward */
    float *h = sv->h;
    if (!h) {
        h = rlab_tape_alloc(tape, (size_t)(M * K) * sizeof(float) + 1);
        float *tmp = rlab_tape_alloc(tape, 2 * (size_t)M * sizeof(float) + 1);
        if (!h || !tmp)
            return;
        rlab_k_layernorm_fwd(h, tmp, tmp + M, x->data, g, b, M, K, sv->eps);
    }
    float *dh = rlab_tape_calloc(tape, (size_t)(M * K) * sizeof(float) + 1);
    float *scratch =
        rlab_tape_alloc(tape, rlab_k_linear_scratch_floats(M, N, K, kact) * sizeof(float) + 1);
    if (!dh || !scratch)
        return;
    for (int s = 0; s < n; s++)
        rlab_k_linear_bwd(dh, dw[s], dl[s], NULL, out->grad + s * M * N, h, w[s],
                          out->data + s * M * N, M, N, K, kact, scratch);
    rlab_k_layernorm_bwd(x->grad, dg, db, dh, x->data, sv->mean, sv->rstd, g, M, K);
}

rlab_tensor *rlab_t_layernorm_linear_multi(rlab_tape *t, rlab_tensor *x, rlab_tensor *gain,
                                           rlab_tensor *bias, float eps, int n,
                                           rlab_tensor *const *w, rlab_tensor *const *b, int act,
                                           rlab_tensor **outs)
{
    const int nsrc_all = 1 + n + (b ? n : 0) + (gain != NULL) + (bias != NULL);
    if (n < 1 || !w || !outs || nsrc_all > RLAB_T_MAXSRC)
        return rlab_tape_fail(t, RLAB_EINVAL,
                              "layernorm_linear_multi: %d weights%s (at most %d inputs in all)", n,
                              b ? " with biases" : "", RLAB_T_MAXSRC);
    for (int s = 0; s < n; s++)
        outs[s] = &t->poison;
    if (act != RLAB_ACT_NONE && !(act == RLAB_ACT_RELU && n == 1))
        return rlab_tape_fail(t, RLAB_EINVAL,
                              "layernorm_linear_multi: activation %d (ReLU only with one weight)",
                              act);
    rlab_tensor *src[RLAB_T_MAXSRC];
    int nsrc = 0, ig = -1, ib = -1, ibl = -1;
    src[nsrc++] = x;
    for (int s = 0; s < n; s++)
        src[nsrc++] = w[s];
    if (b) {
        ibl = nsrc;
        for (int s = 0; s < n; s++)
            src[nsrc++] = b[s];
    }
    if (gain) {
        ig = nsrc;
        src[nsrc++] = gain;
    }
    if (bias) {
        ib = nsrc;
        src[nsrc++] = bias;
    }
    if (rlab_ops_enter(t, "layernorm_linear_multi", src, nsrc))
        return &t->poison;
    // x [.., K] (leading dims flattened into M rows), w[s] [K, N], b[s] [N] -> out [n, .., N]
    if (x->ndim >= RLAB_T_MAXDIM)
        return rlab_ops_shape_fail(t, "layernorm_linear_multi", "x has too many dims to stack", x,
                                   w[0]);
    const int64_t M = rlab_t_rows(x), K = rlab_t_cols(x), N = w[0]->ndim == 2 ? w[0]->shape[1] : 0;
    for (int s = 0; s < n; s++) {
        if (w[s]->ndim != 2 || w[s]->shape[0] != K || w[s]->shape[1] != N)
            return rlab_ops_shape_fail(t, "layernorm_linear_multi",
                                       "need x [.., K] and every w [K, N]", x, w[s]);
        if (b && b[s]->n != N)
            return rlab_ops_shape_fail(t, "layernorm_linear_multi",
                                       "every bias must have N = cols(w) elements", w[s], b[s]);
    }
    if ((gain && gain->n != K) || (bias && bias->n != K))
        return rlab_ops_shape_fail(t, "layernorm_linear_multi",
                                   "gain and bias must have cols(x) elements", x,
                                   gain && gain->n != K ? gain : bias);
    int64_t shape[RLAB_T_MAXDIM];
    shape[0] = n;
    for (int d = 0; d < x->ndim; d++)
        shape[1 + d] = x->shape[d];
    shape[x->ndim] = N;
    const int kact = act == RLAB_ACT_RELU ? RLAB_K_ACT_RELU : RLAB_K_ACT_NONE;
    lnlin_saved *sv = rlab_tape_alloc(t, sizeof *sv);
    float *stats = rlab_tape_alloc(t, 2 * (size_t)M * sizeof(float) + 1);
    const size_t nf = rlab_k_ln_linear_multi_scratch_floats(M, N, K, n, kact);
    float *scratch = nf ? rlab_tape_alloc(t, nf * sizeof(float)) : NULL;
    if (!sv || !stats || (nf && !scratch))
        return &t->poison;
    rlab_tensor *out = rlab_tape_op_nofill(t, "layernorm_linear_multi", x->ndim + 1, shape, src,
                                           nsrc, lnlin_backward);
    if (out->flags & RLAB_T_POISON)
        return out;
    *sv = (lnlin_saved){.mean = stats, .rstd = stats + M, .h = NULL, .eps = eps};
    out->aux[0] = sv;
    out->p.i[0] = M;
    out->p.i[1] = N;
    out->p.i[2] = K;
    out->p.i[3] = n;
    out->p.i[4] = ig;
    out->p.i[5] = ib;
    out->p.i[6] = act;
    out->p.i[7] = ibl;
    const float *wd[RLAB_T_MAXSRC], *bd[RLAB_T_MAXSRC];
    for (int s = 0; s < n; s++) {
        wd[s] = w[s]->data;
        bd[s] = b ? b[s]->data : NULL;
    }
    const float *g = gain ? gain->data : NULL, *bb = bias ? bias->data : NULL;
    if (rlab_k_ln_linear_multi_fwd(out->data, sv->mean, sv->rstd, x->data, g, bb, eps, wd,
                                   b ? bd : NULL, kact, n, M, N, K, scratch) != 0) {
        /* the separate kernels; h kept for the backward */
        sv->h = rlab_tape_alloc(t, (size_t)(M * K) * sizeof(float) + 1);
        if (!sv->h)
            return &t->poison;
        rlab_k_layernorm_fwd(sv->h, sv->mean, sv->rstd, x->data, g, bb, M, K, eps);
        for (int s = 0; s < n; s++)
            rlab_k_linear_fwd(out->data + s * M * N, sv->h, wd[s], bd[s], NULL, M, N, K, kact);
    }
    /* as many nodes as a layer norm and n rlab_t_linear calls (each 1 + bias + ReLU) */
    return stack_views(t, out, x, n, M, N, "layernorm_linear_multi.view",
                       n * (1 + (b != NULL)) + (act == RLAB_ACT_RELU), outs);
}
