/*
 * core/tensor/ops_elem: elementwise ops (add, sub, mul, scale, activations, dropout).
 * Each op = forward kernel + backward kernel over float* side by side, then the tape wrapper.
 * Loops are `omp parallel for simd` with a static schedule above RLAB_K_STREAM_PAR_MIN elements
 * (RLAB_K_PAR_MIN for the exp-based activations):
 * elementwise work has no reductions, so any thread count gives the same bits. The only
 * reductions (the gradient of a broadcast b) run serially in row order.
 */
#include "tensor/ops_internal.h"

#include <math.h>

enum { BC_SAME = 0, BC_ROW = 1, BC_SCALAR = 2 }; /* how b is broadcast over a */

/* ---- kernels ------------------------------------------------------------------------------ */
/* out [R, C] = a [R, C] (+|-|*) b, where b is [R, C], [C] or [1] (mode). op: 0 add, 1 sub, 2 mul */
static void binary_fwd(float *out, const float *a, const float *b, int64_t R, int64_t C, int mode,
                       int op)
{
    const int64_t n = R * C;
    if (mode == BC_SAME) {
        if (op == 0) {
#pragma omp parallel for simd schedule(static) if (parallel : n >= RLAB_K_STREAM_PAR_MIN)
            for (int64_t i = 0; i < n; i++)
                out[i] = a[i] + b[i];
        } else if (op == 1) {
#pragma omp parallel for simd schedule(static) if (parallel : n >= RLAB_K_STREAM_PAR_MIN)
            for (int64_t i = 0; i < n; i++)
                out[i] = a[i] - b[i];
        } else {
#pragma omp parallel for simd schedule(static) if (parallel : n >= RLAB_K_STREAM_PAR_MIN)
            for (int64_t i = 0; i < n; i++)
                out[i] = a[i] * b[i];
        }
        return;
    }
    if (mode == BC_SCALAR) {
        const float s = b[0];
        if (op == 2) {
#pragma omp parallel for simd schedule(static) if (parallel : n >= RLAB_K_STREAM_PAR_MIN)
            for (int64_t i = 0; i < n; i++)
                out[i] = a[i] * s;
        } else {
            const float t = op == 1 ? -s : s;
#pragma omp parallel for simd schedule(static) if (parallel : n >= RLAB_K_STREAM_PAR_MIN)
            for (int64_t i = 0; i < n; i++)
                out[i] = a[i] + t;
        }
        return;
    }
#pragma omp parallel for schedule(static) if (n >= RLAB_K_STREAM_PAR_MIN)
    for (int64_t r = 0; r < R; r++) {
        const float *ar = a + r * C;
        float *o = out + r * C;
        if (op == 0) {
#pragma omp simd
            for (int64_t c = 0; c < C; c++)
                o[c] = ar[c] + b[c];
        } else if (op == 1) {
#pragma omp simd
            for (int64_t c = 0; c < C; c++)
                o[c] = ar[c] - b[c];
        } else {
#pragma omp simd
            for (int64_t c = 0; c < C; c++)
                o[c] = ar[c] * b[c];
        }
    }
}

/* da [R, C] += s * g (or s * g * b for mul, with b broadcast per mode) */
static void binary_bwd_a(float *da, const float *g, const float *b, int64_t R, int64_t C, int mode,
                         int op)
{
    const int64_t n = R * C;
    if (op != 2) {
#pragma omp parallel for simd schedule(static) if (parallel : n >= RLAB_K_STREAM_PAR_MIN)
        for (int64_t i = 0; i < n; i++)
            da[i] += g[i];
        return;
    }
    if (mode == BC_SAME) {
#pragma omp parallel for simd schedule(static) if (parallel : n >= RLAB_K_STREAM_PAR_MIN)
        for (int64_t i = 0; i < n; i++)
            da[i] += g[i] * b[i];
    } else if (mode == BC_SCALAR) {
        const float s = b[0];
#pragma omp parallel for simd schedule(static) if (parallel : n >= RLAB_K_STREAM_PAR_MIN)
        for (int64_t i = 0; i < n; i++)
            da[i] += g[i] * s;
    } else {
#pragma omp parallel for schedule(static) if (n >= RLAB_K_STREAM_PAR_MIN)
        for (int64_t r = 0; r < R; r++) {
#pragma omp simd
            for (int64_t c = 0; c < C; c++)
                da[r * C + c] += g[r * C + c] * b[c];
        }
    }
}

/* db += d out / d b: sign * g (add/sub) or g * a (mul), reduced over the broadcast rows */
static void binary_bwd_b(float *db, const float *g, const float *a, int64_t R, int64_t C, int mode,
                         int op)
{
    const int64_t n = R * C;
    const float sign = op == 1 ? -1.0f : 1.0f;
    if (mode == BC_SAME) {
        if (op == 2) {
#pragma omp parallel for simd schedule(static) if (parallel : n >= RLAB_K_STREAM_PAR_MIN)
            for (int64_t i = 0; i < n; i++)
                db[i] += g[i] * a[i];
        } else {
#pragma omp parallel for simd schedule(static) if (parallel : n >= RLAB_K_STREAM_PAR_MIN)
            for (int64_t i = 0; i < n; i++)
                db[i] += sign * g[i];
        }
    } else if (mode == BC_ROW) {
        /* column sums over rows in row order (vectorised over c): deterministic */
        for (int64_t r = 0; r < R; r++) {
            const float *gr = g + r * C, *ar = a + r * C;
            if (op == 2) {
#pragma omp simd
                for (int64_t c = 0; c < C; c++)
                    db[c] += gr[c] * ar[c];
            } else {
#pragma omp simd
                for (int64_t c = 0; c < C; c++)
                    db[c] += sign * gr[c];
            }
        }
    } else {
        double s = 0.0;
        if (op == 2)
            for (int64_t i = 0; i < n; i++)
                s += (double)(g[i] * a[i]);
        else
            s = rlab_k_sum(g, n);
        db[0] += sign * (float)s;
    }
}

/* ---- binary ops --------------------------------------------------------------------------- */
static void binary_backward(rlab_tape *tape, rlab_tensor *out)
{
    (void)tape;
    rlab_tensor *a = out->src[0], *b = out->src[1];
    const int mode = (int)out->p.i[0], op = (int)out->p.i[1];
    const int64_t C = rlab_t_cols(a), R = rlab_t_rows(a);
    if (a->grad)
        binary_bwd_a(a->grad, out->grad, b->data, R, C, mode, op);
    if (b->grad)
        binary_bwd_b(b->grad, out->grad, a->data, R, C, mode, op);
}

static rlab_tensor *binary(rlab_tape *tape, const char *name, rlab_tensor *a, rlab_tensor *b,
                           int op)
{
    rlab_tensor *src[2] = {a, b};
    if (rlab_ops_enter(tape, name, src, 2))
        return &tape->poison;
    int mode;
    if (b->n == a->n && rlab_t_cols(b) == rlab_t_cols(a))
        mode = BC_SAME;
    else if (b->n == 1)
        mode = BC_SCALAR;
    else if (b->n == rlab_t_cols(a) && rlab_t_rows(b) == 1)
        mode = BC_ROW;
    else
        return rlab_ops_shape_fail(tape, name, "b must match a, one row of a, or a scalar", a, b);
    rlab_tensor *out = rlab_tape_op_nofill(tape, name, a->ndim, a->shape, src, 2, binary_backward);
    if (out->flags & RLAB_T_POISON)
        return out;
    out->p.i[0] = mode;
    out->p.i[1] = op;
    binary_fwd(out->data, a->data, b->data, rlab_t_rows(a), rlab_t_cols(a), mode, op);
    return out;
}

rlab_tensor *rlab_t_add(rlab_tape *t, rlab_tensor *a, rlab_tensor *b)
{
    return binary(t, "add", a, b, 0);
}

rlab_tensor *rlab_t_sub(rlab_tape *t, rlab_tensor *a, rlab_tensor *b)
{
    return binary(t, "sub", a, b, 1);
}

rlab_tensor *rlab_t_mul(rlab_tape *t, rlab_tensor *a, rlab_tensor *b)
{
    return binary(t, "mul", a, b, 2);
}

/* ---- unary ops ---------------------------------------------------------------------------- */
enum { U_SCALE, U_RELU, U_GELU, U_SIGMOID, U_TANH };

#define GELU_S 0.7978845608028654f /* sqrt(2 / pi) */
#define GELU_C 0.044715f

/* dy where x > 0, else +0. Decided on the bits of x (x > 0 iff its int32 bits are in
 * (0, 0x7f800000], NaN excluded as with the float compare) and applied as a bit mask: a float
 * compare or select stops GCC's vectoriser (-ftrapping-math), integer masks do not. */
static inline float relu_pass(float dy, float x)
{
    int32_t ix, ig;
    memcpy(&ix, &x, sizeof ix);
    memcpy(&ig, &dy, sizeof ig);
    ig &= -(int32_t)((uint32_t)ix - 1u < 0x7f800000u);
    memcpy(&dy, &ig, sizeof dy);
    return dy;
}

/* out [n] = f(x [n]) */
static void unary_fwd(float *out, const float *x, int64_t n, int kind, float s)
{
    switch (kind) {
    case U_SCALE:
#pragma omp parallel for simd schedule(static) if (parallel : n >= RLAB_K_STREAM_PAR_MIN)
        for (int64_t i = 0; i < n; i++)
            out[i] = s * x[i];
        break;
    case U_RELU:
#pragma omp parallel for simd schedule(static) if (parallel : n >= RLAB_K_STREAM_PAR_MIN)
        for (int64_t i = 0; i < n; i++)
            out[i] = relu_pass(x[i], x[i]); /* branch-free: the sign is unpredictable */
        break;
    case U_GELU: /* 0.5 v (1 + tanh u) = v sigmoid(2u): one vectorised exp, no tanhf */
#pragma omp parallel for simd schedule(static) if (parallel : n >= RLAB_K_PAR_MIN / 4)
        for (int64_t i = 0; i < n; i++) {
            float v = x[i];
            out[i] = v / (1.0f + rlab_k_expf(-2.0f * GELU_S * (v + GELU_C * v * v * v)));
        }
        break;
    case U_SIGMOID:
#pragma omp parallel for simd schedule(static) if (parallel : n >= RLAB_K_PAR_MIN / 4)
        for (int64_t i = 0; i < n; i++)
            out[i] = 1.0f / (1.0f + rlab_k_expf(-x[i]));
        break;
    default:
#pragma omp parallel for schedule(static) if (n >= RLAB_K_PAR_MIN / 8)
        for (int64_t i = 0; i < n; i++)
            out[i] = tanhf(x[i]);
        break;
    }
}

/* dx [n] += f'(x) * dy, using x or the saved output y */
static void unary_bwd(float *dx, const float *dy, const float *x, const float *y, int64_t n,
                      int kind, float s)
{
    switch (kind) {
    case U_SCALE:
#pragma omp parallel for simd schedule(static) if (parallel : n >= RLAB_K_STREAM_PAR_MIN)
        for (int64_t i = 0; i < n; i++)
            dx[i] += s * dy[i];
        break;
    case U_RELU:
#pragma omp parallel for simd schedule(static) if (parallel : n >= RLAB_K_STREAM_PAR_MIN)
        for (int64_t i = 0; i < n; i++)
            dx[i] += relu_pass(dy[i], x[i]);
        break;
    case U_GELU:
#pragma omp parallel for simd schedule(static) if (parallel : n >= RLAB_K_PAR_MIN / 4)
        for (int64_t i = 0; i < n; i++) {
            float v = x[i];
            float sg = 1.0f / (1.0f + rlab_k_expf(-2.0f * GELU_S * (v + GELU_C * v * v * v)));
            float th = 2.0f * sg - 1.0f; /* tanh u */
            float dth = (1.0f - th * th) * GELU_S * (1.0f + 3.0f * GELU_C * v * v);
            dx[i] += dy[i] * (sg + 0.5f * v * dth);
        }
        break;
    case U_SIGMOID:
#pragma omp parallel for simd schedule(static) if (parallel : n >= RLAB_K_STREAM_PAR_MIN)
        for (int64_t i = 0; i < n; i++)
            dx[i] += dy[i] * y[i] * (1.0f - y[i]);
        break;
    default:
#pragma omp parallel for simd schedule(static) if (parallel : n >= RLAB_K_STREAM_PAR_MIN)
        for (int64_t i = 0; i < n; i++)
            dx[i] += dy[i] * (1.0f - y[i] * y[i]);
        break;
    }
}

static void unary_backward(rlab_tape *tape, rlab_tensor *out)
{
    (void)tape;
    rlab_tensor *a = out->src[0];
    if (a->grad)
        unary_bwd(a->grad, out->grad, a->data, out->data, out->n, (int)out->p.i[0], out->p.f[2]);
}

static rlab_tensor *unary(rlab_tape *tape, const char *name, rlab_tensor *a, int kind, float s)
{
    if (rlab_ops_enter(tape, name, &a, 1))
        return &tape->poison;
    rlab_tensor *out = rlab_tape_op_nofill(tape, name, a->ndim, a->shape, &a, 1, unary_backward);
    if (out->flags & RLAB_T_POISON)
        return out;
    out->p.i[0] = kind;
    out->p.f[2] = s; /* p.f[2..3] overlay p.i[1], clear of p.i[0] */
    unary_fwd(out->data, a->data, a->n, kind, s);
    return out;
}

rlab_tensor *rlab_t_scale(rlab_tape *t, rlab_tensor *a, float s)
{
    return unary(t, "scale", a, U_SCALE, s);
}

rlab_tensor *rlab_t_relu(rlab_tape *t, rlab_tensor *a) { return unary(t, "relu", a, U_RELU, 0); }

rlab_tensor *rlab_t_gelu(rlab_tape *t, rlab_tensor *a) { return unary(t, "gelu", a, U_GELU, 0); }

rlab_tensor *rlab_t_sigmoid(rlab_tape *t, rlab_tensor *a)
{
    return unary(t, "sigmoid", a, U_SIGMOID, 0);
}

rlab_tensor *rlab_t_tanh(rlab_tape *t, rlab_tensor *a) { return unary(t, "tanh", a, U_TANH, 0); }

/* ---- dropout ------------------------------------------------------------------------------ */
/* out [n] = x * mask * scale; dx += dy * mask * scale (mask [n] uint8 saved on the arena) */
static void dropout_backward(rlab_tape *tape, rlab_tensor *out)
{
    (void)tape;
    rlab_tensor *a = out->src[0];
    const uint8_t *mask = out->aux[0];
    const float scale = out->p.f[0];
    const int64_t n = out->n;
    if (!a->grad)
        return;
    float *dx = a->grad;
    const float *dy = out->grad;
#pragma omp parallel for simd schedule(static) if (parallel : n >= RLAB_K_STREAM_PAR_MIN)
    for (int64_t i = 0; i < n; i++)
        dx[i] += dy[i] * ((float)mask[i] * scale);
}

rlab_tensor *rlab_t_dropout(rlab_tape *t, rlab_tensor *a, float p)
{
    if (rlab_ops_enter(t, "dropout", &a, 1))
        return &t->poison;
    if (!(p >= 0.0f && p < 1.0f))
        return rlab_tape_fail(t, RLAB_EINVAL, "dropout: p = %g must be in [0, 1)", (double)p);
    if (!t->training || p <= 0.0f)
        return a; /* identity: no node, no copy */
    rlab_tensor *out =
        rlab_tape_op_nofill(t, "dropout", a->ndim, a->shape, &a, 1, dropout_backward);
    if (out->flags & RLAB_T_POISON)
        return out;
    const int64_t n = a->n;
    uint8_t *mask = rlab_tape_alloc(t, (size_t)n);
    if (!mask)
        return &t->poison;
    rlab_k_dropout_mask(mask, n, p, t->seed, t->step, rlab_ops_node_index(t));
    const float scale = 1.0f / (1.0f - p);
    out->aux[0] = mask;
    out->p.f[0] = scale;
    float *y = out->data;
    const float *x = a->data;
#pragma omp parallel for simd schedule(static) if (parallel : n >= RLAB_K_STREAM_PAR_MIN)
    for (int64_t i = 0; i < n; i++)
        y[i] = x[i] * ((float)mask[i] * scale);
    return out;
}
