/*
 * core/tensor/moe: sparse mixture-of-experts feed-forward with top-k routing, one fused tape
 * op plus a second op for the Switch-style load-balancing loss.
 *
 * Forward (N tokens, E experts, k = top_k):
 *
 *     logits = x Wg              [N, E]
 *     p = softmax(logits)        [N, E]   saved
 *     sel[n] = top-k of p[n]     [N, k]   ties -> lower index
 *     g[n, s] = p[n, sel] / S_n  [N, k]   S_n = sum of the selected p (renormalised gates)
 *     for each expert e, over the rows routed to it (gathered into a contiguous block):
 *         H_e = relu(X_e W1_e + b1_e)     [n_e, F]
 *         Y_e = H_e W2_e + b2_e           [n_e, C]
 *     out[n] = sum_s g[n, s] Y_{sel[n,s]}[n]
 *
 * Backward. The experts are ordinary two-layer MLPs with dY = g * dout. Only the k selected
 * gates depend on p: with dg[n, s] = dout[n] . Y[n, s] and g_i = p_i / S,
 *
 *     dL/dp_m = sum_i dg_i (delta_im / S - p_i / S^2) = (dg_m - sum_i dg_i g_i) / S
 *
 * for m in the selected set and 0 for the others (the selection itself is piecewise constant).
 * Then the softmax backward dlogit = p * (dp - sum(dp * p)) feeds dWg += x^T dlogit and
 * dx += dlogit Wg^T. With k = 1 the single gate is identically 1, so the router learns only
 * from the load-balancing loss.
 *
 * Rows are grouped by expert with a counting sort (stable: rows of one expert stay in token
 * order), so every result is independent of the thread count.
 */
#include "tensor/nn.h"

#include <cblas.h>
#include <float.h>
#include <math.h>
#include <string.h>

typedef struct {
    int64_t N;
    int C, E, F, K;
    float *probs; /* [N, E] router probabilities */
    int32_t *sel; /* [N, K] selected experts */
    float *gate;  /* [N, K] renormalised gates */
    int32_t *pos; /* [N, K] row of (n, s) in the expert-sorted layout */
    int32_t *tok; /* [N*K] token of each sorted row */
    int64_t *off; /* [E + 1] first sorted row of each expert */
    float *X;     /* [N*K, C] gathered inputs */
    float *Hd;    /* [N*K, F] hidden activations after relu */
    float *Y;     /* [N*K, C] expert outputs */
    rlab_tensor *x, *w_gate, *w1, *b1, *w2, *b2;
} moe_saved;

/* ---- router ---------------------------------------------------------------------------- */
/* probs [N, E] = softmax(x [N, C] Wg [C, E]) */
static void router_forward(float *probs, const float *x, const float *wg, int64_t N, int C, int E)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)N, E, C, 1.0f, x, C, wg, E, 0.0f,
                probs, E);
    for (int64_t n = 0; n < N; n++) {
        float *p = probs + n * E;
        float mx = -FLT_MAX, sum = 0.0f;
        for (int e = 0; e < E; e++)
            mx = p[e] > mx ? p[e] : mx;
        for (int e = 0; e < E; e++) {
            p[e] = expf(p[e] - mx);
            sum += p[e];
        }
        for (int e = 0; e < E; e++)
            p[e] /= sum;
    }
}

/* Given dp [N, E] (overwritten with dlogit), add x^T dlogit into dwg and dlogit Wg^T into dx. */
static void router_backward(float *dx, float *dwg, float *dp, const float *probs, const float *x,
                            const float *wg, int64_t N, int C, int E)
{
    for (int64_t n = 0; n < N; n++) {
        const float *p = probs + n * E;
        float *d = dp + n * E;
        float dot = 0.0f;
        for (int e = 0; e < E; e++)
            dot += d[e] * p[e];
        for (int e = 0; e < E; e++)
            d[e] = p[e] * (d[e] - dot);
    }
    if (dwg) // dWg [C, E] += x^T [C, N] dlogit [N, E]
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, C, E, (int)N, 1.0f, x, C, dp, E, 1.0f,
                    dwg, E);
    if (dx) // dx [N, C] += dlogit [N, E] Wg^T [E, C]
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)N, C, E, 1.0f, dp, E, wg, E, 1.0f,
                    dx, C);
}

/* Top-k of p [E] by repeated arg-max; strict > keeps the lower index on ties. */
static void top_k(int32_t *sel, const float *p, int E, int K)
{
    for (int s = 0; s < K; s++) {
        int best = -1;
        for (int e = 0; e < E; e++) {
            int taken = 0;
            for (int j = 0; j < s; j++)
                taken |= sel[j] == e;
            if (!taken && (best < 0 || p[e] > p[best]))
                best = e;
        }
        sel[s] = best;
    }
}

/* ---- the moe op ------------------------------------------------------------------------- */
static void moe_backward_op(rlab_tape *tape, rlab_tensor *out)
{
    const moe_saved *s = out->aux[0];
    const int64_t N = s->N, R = N * s->K;
    const int C = s->C, E = s->E, F = s->F, K = s->K;
    float *dY = rlab_tape_alloc(tape, (size_t)R * C * sizeof(float) + 1);
    float *dH = rlab_tape_alloc(tape, (size_t)R * F * sizeof(float) + 1);
    float *dX = rlab_tape_calloc(tape, (size_t)R * C * sizeof(float) + 1);
    float *dp = rlab_tape_calloc(tape, (size_t)N * E * sizeof(float) + 1);
    float *dg = rlab_tape_alloc(tape, (size_t)R * sizeof(float) + 1);
    if (tape->err.code)
        return;
    const float *dout = out->grad;

    // dY[pos(n,s)] = g[n,s] dout[n];  dg[n,s] = dout[n] . Y[pos(n,s)]
    for (int64_t n = 0; n < N; n++)
        for (int j = 0; j < K; j++) {
            int64_t r = s->pos[n * K + j];
            float g = s->gate[n * K + j], dot = 0.0f;
            for (int c = 0; c < C; c++) {
                dY[r * C + c] = g * dout[n * C + c];
                dot += dout[n * C + c] * s->Y[r * C + c];
            }
            dg[n * K + j] = dot;
        }

    // experts: the MLP backward on each contiguous block of rows
    for (int e = 0; e < E; e++) {
        const int64_t r0 = s->off[e];
        const int ne = (int)(s->off[e + 1] - r0);
        if (ne == 0)
            continue;
        const float *Xe = s->X + r0 * C, *He = s->Hd + r0 * F; // [ne, C], [ne, F]
        float *dYe = dY + r0 * C, *dHe = dH + r0 * F, *dXe = dX + r0 * C;
        const float *W1 = s->w1->data + (size_t)e * C * F; // [C, F]
        const float *W2 = s->w2->data + (size_t)e * F * C; // [F, C]
        if (s->b2->grad)
            for (int i = 0; i < ne; i++)
                for (int c = 0; c < C; c++)
                    s->b2->grad[(size_t)e * C + c] += dYe[(size_t)i * C + c];
        if (s->w2->grad) // dW2 [F, C] += He^T dYe
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, F, C, ne, 1.0f, He, F, dYe, C,
                        1.0f, s->w2->grad + (size_t)e * F * C, C);
        // dHe [ne, F] = dYe W2^T, through the relu
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, ne, F, C, 1.0f, dYe, C, W2, C, 0.0f,
                    dHe, F);
        for (int64_t i = 0; i < (int64_t)ne * F; i++)
            dHe[i] = He[i] > 0.0f ? dHe[i] : 0.0f;
        if (s->b1->grad)
            for (int i = 0; i < ne; i++)
                for (int f = 0; f < F; f++)
                    s->b1->grad[(size_t)e * F + f] += dHe[(size_t)i * F + f];
        if (s->w1->grad) // dW1 [C, F] += Xe^T dHe
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, C, F, ne, 1.0f, Xe, C, dHe, F,
                        1.0f, s->w1->grad + (size_t)e * C * F, F);
        if (s->x->grad) // dXe [ne, C] = dHe W1^T
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, ne, C, F, 1.0f, dHe, F, W1, F,
                        0.0f, dXe, C);
    }
    if (s->x->grad)
        for (int64_t r = 0; r < R; r++) {
            float *dx = s->x->grad + (int64_t)s->tok[r] * C;
            for (int c = 0; c < C; c++)
                dx[c] += dX[r * C + c];
        }

    // gates -> router probabilities: dp_m = (dg_m - sum_i dg_i g_i) / S for the selected m
    if (!s->x->grad && !s->w_gate->grad)
        return;
    for (int64_t n = 0; n < N; n++) {
        const float *p = s->probs + n * E;
        float S = 0.0f, dotg = 0.0f;
        for (int j = 0; j < K; j++) {
            S += p[s->sel[n * K + j]];
            dotg += dg[n * K + j] * s->gate[n * K + j];
        }
        for (int j = 0; j < K; j++)
            dp[n * E + s->sel[n * K + j]] += (dg[n * K + j] - dotg) / S;
    }
    router_backward(s->x->grad, s->w_gate->grad, dp, s->probs, s->x->data, s->w_gate->data, N, C,
                    E);
}

/* aux = E * sum_e f_e P_e, f_e = (rows routed to e) / (N k), P_e = mean_n p[n, e]. The f_e are
 * constants (counts), so d aux / d p[n, e] = E f_e / N. */
static void moe_aux_backward_op(rlab_tape *tape, rlab_tensor *out)
{
    const moe_saved *s = out->aux[0];
    const int64_t N = s->N;
    const int E = s->E;
    float *dp = rlab_tape_alloc(tape, (size_t)N * E * sizeof(float) + 1);
    if (!dp)
        return;
    const float gout = out->grad[0];
    for (int e = 0; e < E; e++) {
        float f = (float)(s->off[e + 1] - s->off[e]) / (float)(N * s->K);
        float d = gout * (float)E * f / (float)N;
        for (int64_t n = 0; n < N; n++)
            dp[n * E + e] = d;
    }
    router_backward(s->x->grad, s->w_gate->grad, dp, s->probs, s->x->data, s->w_gate->data, N, s->C,
                    E);
}

rlab_tensor *rlab_t_moe(rlab_tape *t, rlab_tensor *x, rlab_tensor *w_gate, rlab_tensor *w1,
                        rlab_tensor *b1, rlab_tensor *w2, rlab_tensor *b2, int top_k_,
                        rlab_tensor **aux_loss)
{
    rlab_tensor *src[6] = {x, w_gate, w1, b1, w2, b2};
    if (aux_loss)
        *aux_loss = &t->poison;
    if (t->err.code)
        return &t->poison;
    if (rlab_t_bad((const rlab_tensor *const *)src, 6))
        return rlab_tape_fail(t, RLAB_EINVAL, "moe: invalid input tensor");
    const int64_t C = rlab_t_cols(x), N = rlab_t_rows(x);
    const int64_t E = w_gate->ndim == 2 ? w_gate->shape[1] : -1;
    const int64_t F = w1->ndim == 3 ? w1->shape[2] : -1;
    char s1[64], s2[64], s3[64], s4[64], s5[64], s6[64];
    if (w_gate->ndim != 2 || w_gate->shape[0] != C || E < 1 || w1->ndim != 3 || w1->shape[0] != E ||
        w1->shape[1] != C || b1->n != E * F || w2->ndim != 3 || w2->shape[0] != E ||
        w2->shape[1] != F || w2->shape[2] != C || b2->n != E * C)
        return rlab_tape_fail(
            t, RLAB_EINVAL,
            "moe: need x [N, C], w_gate [C, E], w1 [E, C, F], b1 [E, F], w2 [E, F, C], "
            "b2 [E, C]; got %s %s %s %s %s %s",
            rlab_t_shape_str(x, s1, sizeof s1), rlab_t_shape_str(w_gate, s2, sizeof s2),
            rlab_t_shape_str(w1, s3, sizeof s3), rlab_t_shape_str(b1, s4, sizeof s4),
            rlab_t_shape_str(w2, s5, sizeof s5), rlab_t_shape_str(b2, s6, sizeof s6));
    if (top_k_ < 1 || top_k_ > E)
        return rlab_tape_fail(t, RLAB_EINVAL, "moe: top_k %d outside [1, %lld]", top_k_,
                              (long long)E);
    if (N * top_k_ > INT32_MAX || C > INT32_MAX || F > INT32_MAX || E > INT32_MAX)
        return rlab_tape_fail(t, RLAB_EINVAL, "moe: dimensions too large");
    const int K = top_k_;
    const int64_t R = N * K;

    /* the op records its first four sources in out->src; all six live in the saved struct */
    rlab_tensor *out = rlab_tape_op(t, "moe", x->ndim, x->shape, src, 6, moe_backward_op);
    moe_saved *s = rlab_tape_alloc(t, sizeof *s);
    if (t->err.code)
        return &t->poison;
    *s = (moe_saved){.N = N,
                     .C = (int)C,
                     .E = (int)E,
                     .F = (int)F,
                     .K = K,
                     .x = x,
                     .w_gate = w_gate,
                     .w1 = w1,
                     .b1 = b1,
                     .w2 = w2,
                     .b2 = b2};
    s->probs = rlab_tape_alloc(t, (size_t)(N * E) * sizeof(float) + 1);
    s->sel = rlab_tape_alloc(t, (size_t)R * sizeof(int32_t) + 1);
    s->gate = rlab_tape_alloc(t, (size_t)R * sizeof(float) + 1);
    s->pos = rlab_tape_alloc(t, (size_t)R * sizeof(int32_t) + 1);
    s->tok = rlab_tape_alloc(t, (size_t)R * sizeof(int32_t) + 1);
    s->off = rlab_tape_calloc(t, (size_t)(E + 1) * sizeof(int64_t));
    s->X = rlab_tape_alloc(t, (size_t)(R * C) * sizeof(float) + 1);
    s->Hd = rlab_tape_alloc(t, (size_t)(R * F) * sizeof(float) + 1);
    s->Y = rlab_tape_alloc(t, (size_t)(R * C) * sizeof(float) + 1);
    if (t->err.code)
        return &t->poison;
    out->aux[0] = s;
    out->p.i[0] = K;
    if (N == 0)
        goto aux;

    // router and top-k gates
    router_forward(s->probs, x->data, w_gate->data, N, (int)C, (int)E);
    for (int64_t n = 0; n < N; n++) {
        const float *p = s->probs + n * E;
        int32_t *sel = s->sel + n * K;
        top_k(sel, p, (int)E, K);
        float S = 0.0f;
        for (int j = 0; j < K; j++)
            S += p[sel[j]];
        for (int j = 0; j < K; j++)
            s->gate[n * K + j] = p[sel[j]] / S;
    }
    // counting sort of the (n, s) pairs by expert, stable in n
    for (int64_t i = 0; i < R; i++)
        s->off[s->sel[i] + 1]++;
    for (int64_t e = 0; e < E; e++)
        s->off[e + 1] += s->off[e];
    {
        int64_t *fill = rlab_tape_alloc(t, (size_t)E * sizeof(int64_t));
        if (!fill)
            return &t->poison;
        memcpy(fill, s->off, (size_t)E * sizeof(int64_t));
        for (int64_t i = 0; i < R; i++) {
            int64_t r = fill[s->sel[i]]++;
            s->pos[i] = (int32_t)r;
            s->tok[r] = (int32_t)(i / K);
            memcpy(s->X + r * C, x->data + (i / K) * C, (size_t)C * sizeof(float));
        }
    }
    // experts: H_e = relu(X_e W1_e + b1_e), Y_e = H_e W2_e + b2_e
    for (int64_t e = 0; e < E; e++) {
        const int64_t r0 = s->off[e];
        const int ne = (int)(s->off[e + 1] - r0);
        if (ne == 0)
            continue;
        float *He = s->Hd + r0 * F, *Ye = s->Y + r0 * C; // [ne, F], [ne, C]
        const float *bb1 = b1->data + e * F, *bb2 = b2->data + e * C;
        for (int i = 0; i < ne; i++)
            memcpy(He + (int64_t)i * F, bb1, (size_t)F * sizeof(float));
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, ne, (int)F, (int)C, 1.0f,
                    s->X + r0 * C, (int)C, w1->data + e * C * F, (int)F, 1.0f, He, (int)F);
        for (int64_t i = 0; i < (int64_t)ne * F; i++)
            He[i] = He[i] > 0.0f ? He[i] : 0.0f;
        for (int i = 0; i < ne; i++)
            memcpy(Ye + (int64_t)i * C, bb2, (size_t)C * sizeof(float));
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, ne, (int)C, (int)F, 1.0f, He, (int)F,
                    w2->data + e * F * C, (int)C, 1.0f, Ye, (int)C);
    }
    // out[n] = sum_s g[n,s] Y[pos(n,s)]  (sequential: deterministic order of the k terms)
    for (int64_t n = 0; n < N; n++)
        for (int j = 0; j < K; j++) {
            const float g = s->gate[n * K + j];
            const float *y = s->Y + (int64_t)s->pos[n * K + j] * C;
            for (int64_t c = 0; c < C; c++)
                out->data[n * C + c] += g * y[c];
        }

aux:
    if (aux_loss) {
        rlab_tensor *asrc[2] = {x, w_gate};
        rlab_tensor *a =
            rlab_tape_op(t, "moe_aux", 1, (int64_t[]){1}, asrc, 2, moe_aux_backward_op);
        if (a->flags & RLAB_T_POISON)
            return &t->poison;
        a->aux[0] = s;
        double sum = 0.0;
        for (int64_t e = 0; e < E && N > 0; e++) {
            double f = (double)(s->off[e + 1] - s->off[e]) / (double)R, P = 0.0;
            for (int64_t n = 0; n < N; n++)
                P += (double)s->probs[n * E + e];
            sum += f * P / (double)N;
        }
        a->data[0] = (float)((double)E * sum);
        *aux_loss = a;
    }
    return out;
}
