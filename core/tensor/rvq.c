/*
 * core/tensor/rvq: residual vector quantisation with a straight-through estimator and the
 * VQ-VAE codebook/commitment loss, as two tape ops sharing the saved residuals.
 *
 * Forward (N rows, Lv levels of K codes):
 *
 *     r_0 = x
 *     code_l[n] = argmin_k ||r_l[n] - cb_l[k]||^2      nearest code (ties -> lower index)
 *     q_l[n] = cb_l[code_l[n]],   r_{l+1} = r_l - q_l
 *     x_q = sum_l q_l
 *
 * The distance uses ||r||^2 - 2 r.c + ||c||^2 with the cross term from one sgemm per level
 * ([N, C] x [C, K]); ||r||^2 is the same for every code of a row and is dropped.
 *
 * Gradients. x_q is piecewise constant in x, so the op uses the straight-through estimator
 * x_q = x + sg(x_q - x): d x_q / d x = I and no gradient reaches the codebooks from x_q.
 * The loss op (residuals taken with sg of the earlier levels, so d r_l / d x = I):
 *
 *     L = sum_l  beta/N sum_n ||sg(q_l) - r_l||^2  +  1/N sum_n ||q_l - sg(r_l)||^2
 *     dL/dx          = sum_l 2 beta / N (r_l - q_l)
 *     dL/dcb_l[k]    = sum over rows n with code_l[n] = k of 2 / N (q_l - r_l)
 */
#include "tensor/nn.h"

#include <cblas.h>
#include <float.h>
#include <string.h>

typedef struct {
    int64_t N;
    int C, K, Lv;
    float beta;
    float *R;       /* [Lv, N, C] residual r_l entering level l */
    int32_t *codes; /* [N, Lv] */
    rlab_tensor *x, *cb;
} rvq_saved;

void rlab_rvq_nearest_naive(int32_t *codes, const float *r, const float *cb, int64_t N, int K,
                            int C)
{
    for (int64_t n = 0; n < N; n++) {
        double best = 0.0;
        int arg = 0;
        for (int k = 0; k < K; k++) {
            double d = 0.0;
            for (int c = 0; c < C; c++) {
                double t = (double)r[n * C + c] - (double)cb[(int64_t)k * C + c];
                d += t * t;
            }
            if (k == 0 || d < best) {
                best = d;
                arg = k;
            }
        }
        codes[n] = arg;
    }
}

/* codes [N] = nearest rows of cb [K, C] to r [N, C]; dots [N, K] and cn [K] are work space. */
static void nearest_fast(int32_t *codes, const float *r, const float *cb, int64_t N, int K, int C,
                         float *dots, float *cn)
{
    for (int k = 0; k < K; k++) {
        float s = 0.0f;
        for (int c = 0; c < C; c++)
            s += cb[(int64_t)k * C + c] * cb[(int64_t)k * C + c];
        cn[k] = s;
    }
    // dots [N, K] = r [N, C] cb^T [C, K]
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)N, K, C, 1.0f, r, C, cb, C, 0.0f,
                dots, K);
    for (int64_t n = 0; n < N; n++) {
        const float *d = dots + n * K;
        float best = FLT_MAX;
        int arg = 0;
        for (int k = 0; k < K; k++) {
            float dist = cn[k] - 2.0f * d[k];
            if (dist < best) { /* strict: ties keep the lower index */
                best = dist;
                arg = k;
            }
        }
        codes[n] = arg;
    }
}

static void rvq_backward_op(rlab_tape *tape, rlab_tensor *out)
{
    (void)tape;
    rlab_tensor *x = out->src[0];
    if (x->grad) /* straight-through: d x_q / d x = I */
        for (int64_t i = 0; i < out->n; i++)
            x->grad[i] += out->grad[i];
}

static void rvq_commit_backward_op(rlab_tape *tape, rlab_tensor *out)
{
    (void)tape;
    const rvq_saved *s = out->aux[0];
    const int64_t N = s->N;
    const int C = s->C, K = s->K;
    const float g = out->grad[0];
    const float ax = g * 2.0f * s->beta / (float)N, ac = g * 2.0f / (float)N;
    for (int l = 0; l < s->Lv; l++) {
        const float *r = s->R + (size_t)l * N * C;
        const float *cb = s->cb->data + (size_t)l * K * C;
        float *dcb = s->cb->grad ? s->cb->grad + (size_t)l * K * C : NULL;
        for (int64_t n = 0; n < N; n++) {
            const int32_t code = s->codes[n * s->Lv + l];
            const float *q = cb + (int64_t)code * C;
            for (int c = 0; c < C; c++) {
                float diff = r[n * C + c] - q[c]; // r_l - q_l
                if (s->x->grad)
                    s->x->grad[n * C + c] += ax * diff;
                if (dcb)
                    dcb[(int64_t)code * C + c] -= ac * diff;
            }
        }
    }
}

rlab_tensor *rlab_t_rvq(rlab_tape *t, rlab_tensor *x, rlab_tensor *codebooks, float beta,
                        int32_t *codes_out, rlab_tensor **commit_loss)
{
    rlab_tensor *src[2] = {x, codebooks};
    if (commit_loss)
        *commit_loss = &t->poison;
    if (t->err.code)
        return &t->poison;
    if (rlab_t_bad((const rlab_tensor *const *)src, 2))
        return rlab_tape_fail(t, RLAB_EINVAL, "rvq: invalid input tensor");
    const int64_t C = rlab_t_cols(x), N = rlab_t_rows(x);
    char s1[64], s2[64];
    if (codebooks->ndim != 3 || codebooks->shape[2] != C || codebooks->shape[0] < 1 ||
        codebooks->shape[1] < 1)
        return rlab_tape_fail(
            t, RLAB_EINVAL, "rvq: need x [N, C] and codebooks [Lv, K, C]; got %s, %s",
            rlab_t_shape_str(x, s1, sizeof s1), rlab_t_shape_str(codebooks, s2, sizeof s2));
    if (N > INT32_MAX || C > INT32_MAX || codebooks->shape[1] > INT32_MAX ||
        codebooks->shape[0] > INT32_MAX)
        return rlab_tape_fail(t, RLAB_EINVAL, "rvq: dimensions too large");
    const int Lv = (int)codebooks->shape[0], K = (int)codebooks->shape[1];

    /* x_q gets a gradient only through x (straight-through); listing the codebooks as a
     * source would only make it require grad when x does not. */
    rlab_tensor *out = rlab_tape_op(t, "rvq", x->ndim, x->shape, src, 1, rvq_backward_op);
    rvq_saved *s = rlab_tape_alloc(t, sizeof *s);
    if (t->err.code)
        return &t->poison;
    *s = (rvq_saved){.N = N, .C = (int)C, .K = K, .Lv = Lv, .beta = beta, .x = x, .cb = codebooks};
    s->R = rlab_tape_alloc(t, (size_t)(Lv * N * C) * sizeof(float) + 1);
    s->codes = rlab_tape_alloc(t, (size_t)(N * Lv) * sizeof(int32_t) + 1);
    float *dots = rlab_tape_alloc(t, (size_t)(N * K) * sizeof(float) + 1);
    float *cn = rlab_tape_alloc(t, (size_t)K * sizeof(float));
    int32_t *lc = rlab_tape_alloc(t, (size_t)N * sizeof(int32_t) + 1);
    if (t->err.code)
        return &t->poison;
    out->aux[0] = s;

    if (N > 0) {
        memcpy(s->R, x->data, (size_t)(N * C) * sizeof(float));
        for (int l = 0; l < Lv; l++) {
            float *r = s->R + (size_t)l * N * C; // [N, C] residual entering level l
            const float *cb = codebooks->data + (size_t)l * K * C;
            nearest_fast(lc, r, cb, N, K, (int)C, dots, cn);
            float *rn = l + 1 < Lv ? s->R + (size_t)(l + 1) * N * C : NULL;
            for (int64_t n = 0; n < N; n++) {
                const float *q = cb + (int64_t)lc[n] * C;
                s->codes[n * Lv + l] = lc[n];
                for (int64_t c = 0; c < C; c++) {
                    out->data[n * C + c] += q[c];
                    if (rn)
                        rn[n * C + c] = r[n * C + c] - q[c];
                }
            }
        }
        if (codes_out)
            memcpy(codes_out, s->codes, (size_t)(N * Lv) * sizeof(int32_t));
    }

    if (commit_loss) {
        rlab_tensor *l =
            rlab_tape_op(t, "rvq_commit", 1, (int64_t[]){1}, src, 2, rvq_commit_backward_op);
        if (l->flags & RLAB_T_POISON)
            return &t->poison;
        l->aux[0] = s;
        double sum = 0.0;
        for (int lv = 0; lv < Lv; lv++) {
            const float *r = s->R + (size_t)lv * N * C;
            const float *cb = codebooks->data + (size_t)lv * K * C;
            for (int64_t n = 0; n < N; n++) {
                const float *q = cb + (int64_t)s->codes[n * Lv + lv] * C;
                for (int64_t c = 0; c < C; c++) {
                    double d = (double)r[n * C + c] - (double)q[c];
                    sum += d * d;
                }
            }
        }
        l->data[0] = N > 0 ? (float)((1.0 + (double)beta) * sum / (double)N) : 0.0f;
        *commit_loss = l;
    }
    return out;
}
