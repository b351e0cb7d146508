/*
 * core/tensor/ops_shape: gather (embedding lookup), reshape (a view), concat, slice, transpose.
 *
 * Reshape design: the view shares BOTH data and grad with its source (grad aliases), so it
 * needs no backward at all: whatever later ops add into view->grad lands in source->grad.
 * It is still recorded on the tape (backward NULL) so graph dumps show it.
 */
#include "tensor/ops_internal.h"

/* ---- gather ------------------------------------------------------------------------------- */
/* ext[0] ids [n], p.i: [0] n, [1] pad id */
static void gather_backward(rlab_tape *tape, rlab_tensor *out)
{
    (void)tape;
    rlab_tensor *table = out->src[0];
    const int32_t *ids = out->ext[0];
    const int64_t n = out->p.i[0], pad = out->p.i[1];
    const int64_t V = table->shape[0], D = table->shape[1];
    if (!table->grad)
        return;
    rlab_k_gather_bwd(table->grad, out->grad, ids, n, V, D, pad);
    if ((table->flags & RLAB_T_PARAM) && table->aux[0]) /* row-tracked: mark for lazy optim */
        for (int64_t i = 0; i < n; i++)
            if (ids[i] >= 0 && ids[i] != pad && ids[i] < V)
                rlab_params_touch_row(table, ids[i]);
}

rlab_tensor *rlab_t_gather(rlab_tape *t, rlab_tensor *table, const int32_t *ids, int64_t n,
                           int64_t pad_id, int out_ndim, const int64_t *out_shape)
{
    if (rlab_ops_enter(t, "gather", &table, 1))
        return &t->poison;
    if (table->ndim != 2)
        return rlab_ops_shape_fail(t, "gather", "the table must be 2-D [V, D]", table, NULL);
    if (n < 0 || (n > 0 && !ids))
        return rlab_tape_fail(t, RLAB_EINVAL, "gather: %lld ids but no id array", (long long)n);
    const int64_t V = table->shape[0], D = table->shape[1];
    for (int64_t i = 0; i < n; i++)
        if (ids[i] >= V && ids[i] != pad_id)
            return rlab_tape_fail(t, RLAB_EINVAL,
                                  "gather: id %d at position %lld is out of range for a table "
                                  "of %lld rows (pad id %lld)",
                                  (int)ids[i], (long long)i, (long long)V, (long long)pad_id);
    int64_t shape[RLAB_T_MAXDIM] = {n, D};
    int ndim = 2;
    if (out_shape) {
        int64_t prod = 1;
        for (int d = 0; d < out_ndim && d < RLAB_T_MAXDIM; d++)
            prod *= out_shape[d];
        if (out_ndim < 1 || out_ndim > RLAB_T_MAXDIM || out_shape[out_ndim - 1] != D ||
            prod != n * D)
            return rlab_tape_fail(t, RLAB_EINVAL,
                                  "gather: output shape (ndim %d) must hold %lld x %lld values "
                                  "with last dim %lld",
                                  out_ndim, (long long)n, (long long)D, (long long)D);
        ndim = out_ndim;
        memcpy(shape, out_shape, (size_t)ndim * sizeof *shape);
    }
    rlab_tensor *out = rlab_tape_op_nofill(t, "gather", ndim, shape, &table, 1, gather_backward);
    if (out->flags & RLAB_T_POISON)
        return out;
    out->ext[0] = ids;
    out->p.i[0] = n;
    out->p.i[1] = pad_id;
    rlab_k_gather_fwd(out->data, table->data, ids, n, V, D, pad_id);
    return out;
}

/* ---- reshape ------------------------------------------------------------------------------ */
rlab_tensor *rlab_t_reshape(rlab_tape *t, rlab_tensor *a, int ndim, const int64_t *shape)
{
    if (rlab_ops_enter(t, "reshape", &a, 1))
        return &t->poison;
    if (ndim < 1 || ndim > RLAB_T_MAXDIM || !shape)
        return rlab_tape_fail(t, RLAB_EINVAL, "reshape: ndim %d out of range", ndim);
    /* one dim may be -1: inferred from the others */
    int64_t sh[RLAB_T_MAXDIM], prod = 1;
    int infer = -1;
    for (int d = 0; d < ndim; d++) {
        sh[d] = shape[d];
        if (sh[d] == -1 && infer < 0)
            infer = d;
        else if (sh[d] < 0)
            return rlab_ops_shape_fail(t, "reshape", "negative dimension", a, NULL);
        else
            prod *= sh[d];
    }
    if (infer >= 0) {
        if (prod == 0 || a->n % prod)
            return rlab_ops_shape_fail(t, "reshape", "cannot infer the -1 dimension", a, NULL);
        sh[infer] = a->n / prod;
        prod *= sh[infer];
    }
    if (prod != a->n)
        return rlab_tape_fail(t, RLAB_EINVAL, "reshape: %lld elements cannot become %lld (ndim %d)",
                              (long long)a->n, (long long)prod, ndim);
    if (t->nnodes >= t->maxnodes)
        return rlab_tape_fail(t, RLAB_ENOMEM, "reshape: tape holds at most %zu ops per step",
                              t->maxnodes);
    rlab_tensor *v = rlab_tape_alloc(t, sizeof *v);
    if (!v)
        return &t->poison;
    memset(v, 0, sizeof *v);
    v->ndim = ndim;
    for (int d = 0; d < RLAB_T_MAXDIM; d++)
        v->shape[d] = d < ndim ? sh[d] : 1;
    v->n = a->n;
    v->data = a->data;
    v->grad = a->grad; /* aliases: gradients flow to the source without a backward */
    v->flags = RLAB_T_VIEW | (a->grad ? RLAB_T_REQUIRES_GRAD : 0u);
    v->op = "reshape";
    v->src[0] = a;
    t->nodes[t->nnodes++] = v;
    return v;
}

/* ---- concat and slice: [outer, len * inner] blocks ---------------------------------------- */
static int norm_axis(int axis, int ndim) { return axis < 0 ? axis + ndim : axis; }

static void split_dims(const rlab_tensor *a, int axis, int64_t *outer, int64_t *inner)
{
    *outer = 1;
    *inner = 1;
    for (int d = 0; d < axis; d++)
        *outer *= a->shape[d];
    for (int d = axis + 1; d < a->ndim; d++)
        *inner *= a->shape[d];
}

/* aux[0] = rlab_tensor *[n] sources; p.i: [0] n, [1] axis */
static void concat_backward(rlab_tape *tape, rlab_tensor *out)
{
    (void)tape;
    rlab_tensor **xs = out->aux[0];
    const int n = (int)out->p.i[0], axis = (int)out->p.i[1];
    int64_t outer, inner;
    split_dims(out, axis, &outer, &inner);
    const int64_t row = out->shape[axis] * inner;
    int64_t off = 0;
    for (int j = 0; j < n; j++) {
        const int64_t w = xs[j]->shape[axis] * inner;
        if (xs[j]->grad) {
            float *dx = xs[j]->grad;
            const float *dy = out->grad;
#pragma omp parallel for schedule(static) if (outer * w >= RLAB_K_PAR_MIN)
            for (int64_t o = 0; o < outer; o++)
                for (int64_t k = 0; k < w; k++)
                    dx[o * w + k] += dy[o * row + off + k];
        }
        off += w;
    }
}

rlab_tensor *rlab_t_concat(rlab_tape *t, rlab_tensor *const *xs, int n, int axis)
{
    if (n < 1 || !xs)
        return rlab_tape_fail(t, RLAB_EINVAL, "concat: no inputs");
    if (rlab_ops_enter(t, "concat", xs, n))
        return &t->poison;
    const rlab_tensor *x0 = xs[0];
    axis = norm_axis(axis, x0->ndim);
    if (axis < 0 || axis >= x0->ndim)
        return rlab_ops_shape_fail(t, "concat", "axis out of range", x0, NULL);
    int64_t shape[RLAB_T_MAXDIM];
    memcpy(shape, x0->shape, sizeof shape);
    shape[axis] = 0;
    for (int j = 0; j < n; j++) {
        int same = xs[j]->ndim == x0->ndim;
        for (int d = 0; same && d < x0->ndim; d++)
            same = d == axis || xs[j]->shape[d] == x0->shape[d];
        if (!same)
            return rlab_ops_shape_fail(t, "concat", "inputs differ outside the axis", x0, xs[j]);
        shape[axis] += xs[j]->shape[axis];
    }
    rlab_tensor **keep = rlab_tape_alloc(t, (size_t)n * sizeof *keep);
    if (!keep)
        return &t->poison;
    memcpy(keep, xs, (size_t)n * sizeof *keep);
    rlab_tensor *out = rlab_tape_op_nofill(t, "concat", x0->ndim, shape, xs, n, concat_backward);
    if (out->flags & RLAB_T_POISON)
        return out;
    out->aux[0] = keep;
    out->p.i[0] = n;
    out->p.i[1] = axis;
    int64_t outer, inner;
    split_dims(out, axis, &outer, &inner);
    const int64_t row = shape[axis] * inner;
    int64_t off = 0;
    for (int j = 0; j < n; j++) {
        const int64_t w = xs[j]->shape[axis] * inner;
        for (int64_t o = 0; o < outer; o++)
            memcpy(out->data + o * row + off, xs[j]->data + o * w, (size_t)w * sizeof(float));
        off += w;
    }
    return out;
}

/* p.i: [0] axis, [1] start */
static void slice_backward(rlab_tape *tape, rlab_tensor *out)
{
    (void)tape;
    rlab_tensor *a = out->src[0];
    if (!a->grad)
        return;
    const int axis = (int)out->p.i[0];
    int64_t outer, inner;
    split_dims(a, axis, &outer, &inner);
    const int64_t row = a->shape[axis] * inner, w = out->shape[axis] * inner;
    const int64_t off = out->p.i[1] * inner;
    float *dx = a->grad;
    const float *dy = out->grad;
#pragma omp parallel for schedule(static) if (outer * w >= RLAB_K_PAR_MIN)
    for (int64_t o = 0; o < outer; o++)
        for (int64_t k = 0; k < w; k++)
            dx[o * row + off + k] += dy[o * w + k];
}

rlab_tensor *rlab_t_slice(rlab_tape *t, rlab_tensor *a, int axis, int64_t start, int64_t len)
{
    if (rlab_ops_enter(t, "slice", &a, 1))
        return &t->poison;
    axis = norm_axis(axis, a->ndim);
    if (axis < 0 || axis >= a->ndim)
        return rlab_ops_shape_fail(t, "slice", "axis out of range", a, NULL);
    if (start < 0 || len < 0 || start + len > a->shape[axis])
        return rlab_tape_fail(t, RLAB_EINVAL, "slice: [%lld, %lld) is outside dim %d of size %lld",
                              (long long)start, (long long)(start + len), axis,
                              (long long)a->shape[axis]);
    int64_t shape[RLAB_T_MAXDIM];
    memcpy(shape, a->shape, sizeof shape);
    shape[axis] = len;
    rlab_tensor *out = rlab_tape_op_nofill(t, "slice", a->ndim, shape, &a, 1, slice_backward);
    if (out->flags & RLAB_T_POISON)
        return out;
    out->p.i[0] = axis;
    out->p.i[1] = start;
    int64_t outer, inner;
    split_dims(a, axis, &outer, &inner);
    const int64_t row = a->shape[axis] * inner, w = len * inner;
    for (int64_t o = 0; o < outer; o++)
        memcpy(out->data + o * w, a->data + o * row + start * inner, (size_t)w * sizeof(float));
    return out;
}

/* ---- transpose ---------------------------------------------------------------------------- */
#define TB 32 /* cache block */

/* dst [C, R] (+)= src [R, C]^T, blocked so both sides stream through cache lines */
static void transpose_k(float *dst, const float *src, int64_t R, int64_t C, int accumulate)
{
#pragma omp parallel for schedule(static) if (R * C >= RLAB_K_PAR_MIN)
    for (int64_t r0 = 0; r0 < R; r0 += TB)
        for (int64_t c0 = 0; c0 < C; c0 += TB) {
            int64_t r1 = r0 + TB < R ? r0 + TB : R, c1 = c0 + TB < C ? c0 + TB : C;
            for (int64_t c = c0; c < c1; c++)
                for (int64_t r = r0; r < r1; r++) {
                    if (accumulate)
                        dst[c * R + r] += src[r * C + c];
                    else
                        dst[c * R + r] = src[r * C + c];
                }
        }
}

static void transpose_backward(rlab_tape *tape, rlab_tensor *out)
{
    (void)tape;
    rlab_tensor *a = out->src[0];
    if (a->grad) /* out [C, R] -> da [R, C] */
        transpose_k(a->grad, out->grad, out->shape[0], out->shape[1], 1);
}

rlab_tensor *rlab_t_transpose(rlab_tape *t, rlab_tensor *a)
{
    if (rlab_ops_enter(t, "transpose", &a, 1))
        return &t->poison;
    if (a->ndim != 2)
        return rlab_ops_shape_fail(t, "transpose", "input must be 2-D", a, NULL);
    rlab_tensor *out = rlab_tape_op_nofill(t, "transpose", 2, (int64_t[]){a->shape[1], a->shape[0]},
                                           &a, 1, transpose_backward);
    if (out->flags & RLAB_T_POISON)
        return out;
    transpose_k(out->data, a->data, a->shape[0], a->shape[1], 0);
    return out;
}
