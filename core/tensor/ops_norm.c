/*
 * core/tensor/ops_norm: reductions (sum/mean over an axis or everything), layer norm, softmax,
 * masked_fill, mask_rows and MQSA-TED's causal moving average. Row-wise work is split over
 * rows with static OpenMP schedules; every sum has a fixed order (see kernels.h).
 */
#include "tensor/ops_internal.h"

#include <math.h>

/* ---- sum / mean over an axis -------------------------------------------------------------- */
/* a viewed as [outer, len, inner] -> out [outer, inner]; p.i[0] = axis, p.f[2] = scale */
static void axis_sum_fwd(float *out, const float *a, int64_t outer, int64_t len, int64_t inner,
                         float scale)
{
#pragma omp parallel for schedule(static) if (outer * len * inner >= RLAB_K_PAR_MIN)
    for (int64_t o = 0; o < outer; o++) {
        float *y = out + o * inner;
        for (int64_t k = 0; k < inner; k++)
            y[k] = 0.0f;
        for (int64_t l = 0; l < len; l++) {
            const float *x = a + (o * len + l) * inner;
#pragma omp simd
            for (int64_t k = 0; k < inner; k++)
                y[k] += x[k];
        }
        for (int64_t k = 0; k < inner; k++)
            y[k] *= scale;
    }
}

static void axis_sum_backward(rlab_tape *tape, rlab_tensor *out)
{
    (void)tape;
    rlab_tensor *a = out->src[0];
    if (!a->grad)
        return;
    const int axis = (int)out->p.i[0];
    const float scale = out->p.f[2];
    int64_t outer = 1, inner = 1, len = a->shape[axis];
    for (int d = 0; d < axis; d++)
        outer *= a->shape[d];
    for (int d = axis + 1; d < a->ndim; d++)
        inner *= a->shape[d];
    float *dx = a->grad;
    const float *dy = out->grad;
    // da [outer, len, inner] += scale * dout [outer, inner] broadcast over len
#pragma omp parallel for schedule(static) if (a->n >= RLAB_K_PAR_MIN)
    for (int64_t o = 0; o < outer; o++)
        for (int64_t l = 0; l < len; l++) {
            float *d = dx + (o * len + l) * inner;
            const float *g = dy + o * inner;
#pragma omp simd
            for (int64_t k = 0; k < inner; k++)
                d[k] += scale * g[k];
        }
}

static rlab_tensor *axis_reduce(rlab_tape *t, const char *name, rlab_tensor *a, int axis, int mean)
{
    if (rlab_ops_enter(t, name, &a, 1))
        return &t->poison;
    if (axis < 0)
        axis += a->ndim;
    if (axis < 0 || axis >= a->ndim)
        return rlab_ops_shape_fail(t, name, "axis out of range", a, NULL);
    int64_t shape[RLAB_T_MAXDIM] = {1, 1, 1, 1};
    int ndim = 0;
    for (int d = 0; d < a->ndim; d++)
        if (d != axis)
            shape[ndim++] = a->shape[d];
    if (ndim == 0)
        ndim = 1; /* 1-D input: a [1] result */
    rlab_tensor *out = rlab_tape_op_nofill(t, name, ndim, shape, &a, 1, axis_sum_backward);
    if (out->flags & RLAB_T_POISON)
        return out;
    const int64_t len = a->shape[axis];
    const float scale = mean ? 1.0f / (float)(len ? len : 1) : 1.0f;
    out->p.i[0] = axis;
    out->p.f[2] = scale;
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < axis; d++)
        outer *= a->shape[d];
    for (int d = axis + 1; d < a->ndim; d++)
        inner *= a->shape[d];
    axis_sum_fwd(out->data, a->data, outer, len, inner, scale);
    return out;
}

rlab_tensor *rlab_t_sum(rlab_tape *t, rlab_tensor *a, int axis)
{
    return axis_reduce(t, "sum", a, axis, 0);
}

rlab_tensor *rlab_t_mean(rlab_tape *t, rlab_tensor *a, int axis)
{
    return axis_reduce(t, "mean", a, axis, 1);
}

/* ---- sum / mean of everything --------------------------------------------------------------- */
/* p.f[2] = scale; out [1] = scale * sum(a); da += scale * dout[0] */
static void all_backward(rlab_tape *tape, rlab_tensor *out)
{
    (void)tape;
    rlab_tensor *a = out->src[0];
    if (!a->grad)
        return;
    const float g = out->grad[0] * out->p.f[2];
    float *dx = a->grad;
    const int64_t n = a->n;
#pragma omp parallel for simd schedule(static) if (parallel : n >= RLAB_K_PAR_MIN)
    for (int64_t i = 0; i < n; i++)
        dx[i] += g;
}

static rlab_tensor *all_reduce(rlab_tape *t, const char *name, rlab_tensor *a, int mean)
{
    if (rlab_ops_enter(t, name, &a, 1))
        return &t->poison;
    rlab_tensor *out = rlab_tape_op_nofill(t, name, 1, (int64_t[]){1}, &a, 1, all_backward);
    if (out->flags & RLAB_T_POISON)
        return out;
    const float scale = mean ? 1.0f / (float)(a->n ? a->n : 1) : 1.0f;
    out->p.f[2] = scale;
    out->data[0] = (float)(rlab_k_sum(a->data, a->n) * (double)scale);
    return out;
}

rlab_tensor *rlab_t_sum_all(rlab_tape *t, rlab_tensor *a) { return all_reduce(t, "sum_all", a, 0); }

rlab_tensor *rlab_t_mean_all(rlab_tape *t, rlab_tensor *a)
{
    return all_reduce(t, "mean_all", a, 1);
}

/* ---- layer norm --------------------------------------------------------------------------- */
/* src[0] x, src[1] gain or NULL, src[2] bias or NULL; aux[0] mean [R], aux[1] rstd [R] */
static void layernorm_backward(rlab_tape *tape, rlab_tensor *out)
{
    (void)tape;
    rlab_tensor *x = out->src[0], *g = out->src[1], *b = out->src[2];
    rlab_k_layernorm_bwd(x->grad, g ? g->grad : NULL, b ? b->grad : NULL, out->grad, x->data,
                         out->aux[0], out->aux[1], g ? g->data : NULL, rlab_t_rows(x),
                         rlab_t_cols(x));
}

rlab_tensor *rlab_t_layernorm(rlab_tape *t, rlab_tensor *x, rlab_tensor *gain, rlab_tensor *bias,
                              float eps)
{
    rlab_tensor *src[3] = {x, NULL, NULL};
    int nsrc = 1;
    if (gain)
        src[nsrc++] = gain;
    if (bias)
        src[nsrc++] = bias;
    if (rlab_ops_enter(t, "layernorm", src, nsrc))
        return &t->poison;
    const int64_t C = rlab_t_cols(x), R = rlab_t_rows(x);
    if ((gain && gain->n != C) || (bias && bias->n != C))
        return rlab_ops_shape_fail(t, "layernorm", "gain and bias must have cols(x) elements", x,
                                   gain && gain->n != C ? gain : bias);
    float *mean = rlab_tape_alloc(t, (size_t)R * sizeof(float));
    float *rstd = rlab_tape_alloc(t, (size_t)R * sizeof(float));
    if (!mean || !rstd)
        return &t->poison;
    rlab_tensor *out =
        rlab_tape_op_nofill(t, "layernorm", x->ndim, x->shape, src, nsrc, layernorm_backward);
    if (out->flags & RLAB_T_POISON)
        return out;
    out->src[1] = gain;
    out->src[2] = bias;
    out->aux[0] = mean;
    out->aux[1] = rstd;
    out->p.f[0] = eps;
    rlab_k_layernorm_fwd(out->data, mean, rstd, x->data, gain ? gain->data : NULL,
                         bias ? bias->data : NULL, R, C, eps);
    return out;
}

/* ---- softmax ------------------------------------------------------------------------------ */
static void softmax_backward(rlab_tape *tape, rlab_tensor *out)
{
    (void)tape;
    rlab_tensor *a = out->src[0];
    if (a->grad)
        rlab_k_softmax_bwd(a->grad, out->grad, out->data, rlab_t_rows(a), rlab_t_cols(a));
}

rlab_tensor *rlab_t_softmax(rlab_tape *t, rlab_tensor *a)
{
    if (rlab_ops_enter(t, "softmax", &a, 1))
        return &t->poison;
    rlab_tensor *out =
        rlab_tape_op_nofill(t, "softmax", a->ndim, a->shape, &a, 1, softmax_backward);
    if (out->flags & RLAB_T_POISON)
        return out;
    rlab_k_softmax_fwd(out->data, a->data, rlab_t_rows(a), rlab_t_cols(a));
    return out;
}

/* ---- masked_fill -------------------------------------------------------------------------- */
/* ext[0] mask [mask_n]; p.i[0] mask_n; p.f[2] value. out[i] = mask[i % mask_n] ? v : a[i] */
static void masked_fill_backward(rlab_tape *tape, rlab_tensor *out)
{
    (void)tape;
    rlab_tensor *a = out->src[0];
    if (!a->grad)
        return;
    const uint8_t *mask = out->ext[0];
    const int64_t mn = out->p.i[0], rows = out->n / mn;
    float *dx = a->grad;
    const float *dy = out->grad;
#pragma omp parallel for schedule(static) if (out->n >= RLAB_K_PAR_MIN)
    for (int64_t r = 0; r < rows; r++)
        for (int64_t k = 0; k < mn; k++)
            dx[r * mn + k] += mask[k] ? 0.0f : dy[r * mn + k];
}

rlab_tensor *rlab_t_masked_fill(rlab_tape *t, rlab_tensor *a, const uint8_t *mask, int64_t mask_n,
                                float value)
{
    if (rlab_ops_enter(t, "masked_fill", &a, 1))
        return &t->poison;
    if (!mask || !(mask_n == a->n || mask_n == rlab_t_cols(a)) || mask_n <= 0)
        return rlab_tape_fail(t, RLAB_EINVAL,
                              "masked_fill: a mask of %lld elements fits neither %lld elements "
                              "nor a row of %lld",
                              (long long)mask_n, (long long)a->n, (long long)rlab_t_cols(a));
    rlab_tensor *out =
        rlab_tape_op_nofill(t, "masked_fill", a->ndim, a->shape, &a, 1, masked_fill_backward);
    if (out->flags & RLAB_T_POISON)
        return out;
    out->ext[0] = mask;
    out->p.i[0] = mask_n;
    out->p.f[2] = value;
    const int64_t rows = a->n / mask_n;
    const float *x = a->data;
    float *y = out->data;
#pragma omp parallel for schedule(static) if (a->n >= RLAB_K_PAR_MIN)
    for (int64_t r = 0; r < rows; r++)
        for (int64_t k = 0; k < mask_n; k++)
            y[r * mask_n + k] = mask[k] ? value : x[r * mask_n + k];
    return out;
}

/* ---- mask_rows ---------------------------------------------------------------------------- */
/* ext[0] valid [R] (uint8). out row r = valid[r] ? x row r : 0; dx row r += valid[r] ? dy : 0 */
static void mask_rows_k(float *dst, const float *src, const uint8_t *valid, int64_t R, int64_t C,
                        int accumulate)
{
#pragma omp parallel for schedule(static) if (R * C >= RLAB_K_PAR_MIN)
    for (int64_t r = 0; r < R; r++) {
        float *d = dst + r * C;
        const float *s = src + r * C;
        const int v = valid ? valid[r] != 0 : 1;
        if (accumulate) {
            if (v)
                for (int64_t c = 0; c < C; c++)
                    d[c] += s[c];
        } else if (v) {
            memcpy(d, s, (size_t)C * sizeof *d);
        } else {
            memset(d, 0, (size_t)C * sizeof *d);
        }
    }
}

static void mask_rows_backward(rlab_tape *tape, rlab_tensor *out)
{
    (void)tape;
    rlab_tensor *x = out->src[0];
    if (x->grad)
        mask_rows_k(x->grad, out->grad, out->ext[0], rlab_t_rows(x), rlab_t_cols(x), 1);
}

rlab_tensor *rlab_t_mask_rows(rlab_tape *t, rlab_tensor *x, const uint8_t *valid)
{
    if (rlab_ops_enter(t, "mask_rows", &x, 1))
        return &t->poison;
    rlab_tensor *out =
        rlab_tape_op_nofill(t, "mask_rows", x->ndim, x->shape, &x, 1, mask_rows_backward);
    if (out->flags & RLAB_T_POISON)
        return out;
    out->ext[0] = valid;
    mask_rows_k(out->data, x->data, valid, rlab_t_rows(x), rlab_t_cols(x), 0);
    return out;
}

/* ---- causal moving average (MQSA-TED L-query) ---------------------------------------------- */
static inline int is_valid(const uint8_t *valid, int64_t i) { return !valid || valid[i]; }

/* Number of valid positions among t, t-1, ..., t-L+1 (>= 0) of sequence row base. */
static inline float window_count(const uint8_t *valid, int64_t base, int64_t t, int L)
{
    int cnt = 0;
    for (int l = 0; l < L && t - l >= 0; l++)
        cnt += is_valid(valid, base + t - l);
    return (float)(cnt > 1 ? cnt : 1);
}

/* x [B, T, C], valid [B*T] -> out [B, T, C]; ext[0] valid, p.i[0] L */
static void cma_fwd(float *out, const float *x, const uint8_t *valid, int64_t B, int64_t T,
                    int64_t C, int L)
{
#pragma omp parallel for schedule(static) if (B * T * C >= RLAB_K_PAR_MIN)
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < T; t++) {
            float *y = out + (b * T + t) * C;
            for (int64_t c = 0; c < C; c++)
                y[c] = 0.0f;
            if (!is_valid(valid, b * T + t))
                continue; /* padded query row */
            const float w = 1.0f / window_count(valid, b * T, t, L);
            for (int l = 0; l < L && t - l >= 0; l++) {
                if (!is_valid(valid, b * T + t - l))
                    continue;
                const float *xs = x + (b * T + t - l) * C;
#pragma omp simd
                for (int64_t c = 0; c < C; c++)
                    y[c] += w * xs[c];
            }
        }
}

static void cma_backward(rlab_tape *tape, rlab_tensor *out)
{
    (void)tape;
    rlab_tensor *x = out->src[0];
    if (!x->grad)
        return;
    const uint8_t *valid = out->ext[0];
    const int L = (int)out->p.i[0];
    const int64_t B = x->shape[0], T = x->shape[1], C = x->shape[2];
    float *dx = x->grad;
    const float *dy = out->grad;
    /* dx[b, s] += sum over valid t in [s, s+L) of w_t dy[b, t] (when s is valid); parallel
     * over sequences: each b writes only its own rows */
#pragma omp parallel for schedule(static) if (B * T * C >= RLAB_K_PAR_MIN)
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < T; t++) {
            if (!is_valid(valid, b * T + t))
                continue;
            const float w = 1.0f / window_count(valid, b * T, t, L);
            const float *g = dy + (b * T + t) * C;
            for (int l = 0; l < L && t - l >= 0; l++) {
                if (!is_valid(valid, b * T + t - l))
                    continue;
                float *d = dx + (b * T + t - l) * C;
#pragma omp simd
                for (int64_t c = 0; c < C; c++)
                    d[c] += w * g[c];
            }
        }
}

rlab_tensor *rlab_t_causal_moving_avg(rlab_tape *t, rlab_tensor *x, const uint8_t *valid, int L)
{
    if (rlab_ops_enter(t, "causal_moving_avg", &x, 1))
        return &t->poison;
    if (x->ndim != 3 || L < 1)
        return rlab_tape_fail(t, RLAB_EINVAL,
                              "causal_moving_avg: x must be [B, T, C] and L >= 1 (ndim %d, L %d)",
                              x->ndim, L);
    rlab_tensor *out =
        rlab_tape_op_nofill(t, "causal_moving_avg", 3, x->shape, &x, 1, cma_backward);
    if (out->flags & RLAB_T_POISON)
        return out;
    out->ext[0] = valid;
    out->p.i[0] = L;
    cma_fwd(out->data, x->data, valid, x->shape[0], x->shape[1], x->shape[2], L);
    return out;
}
