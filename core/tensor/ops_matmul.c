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
