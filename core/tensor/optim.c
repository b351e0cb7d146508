/*
 * core/tensor/optim: SGD (momentum), Adam (L2 in the gradient), AdamW (decoupled decay), lazy
 * sparse-row updates, warm-up + cosine schedule, global-norm clipping and the l2 penalty.
 *
 * State lives in two blocks parallel to the parameter block (m, v: one float per parameter
 * float), so a dense step is one pass over memory and checkpoints write named slices.
 * Lazy mode (TF LazyAdam): for row-tracked tensors only rows touched since the last zero_grad
 * are updated, and their moments too; untouched rows stay bit-identical. Bias correction
 * uses the global step count, as LazyAdam does.
 */
#include "tensor/optim.h"
#include "tensor/kernels.h"

#include <math.h>
#include <string.h>

struct rlab_opt {
    rlab_opt_config cfg;
    size_t count; /* floats in the parameter block this optimiser was made for */
    float *m;     /* [count] first moment (Adam) or momentum buffer (SGD); NULL if unused */
    float *v;     /* [count] second moment (Adam kinds only) */
    int64_t t;    /* steps taken */
};

rlab_opt_config rlab_opt_defaults(rlab_opt_kind kind)
{
    rlab_opt_config c;
    memset(&c, 0, sizeof c);
    c.kind = kind;
    c.lr = kind == RLAB_OPT_SGD ? 1e-2f : 1e-3f;
    c.momentum = 0.0f;
    c.beta1 = 0.9f;
    c.beta2 = 0.999f;
    c.eps = 1e-8f;
    c.weight_decay = kind == RLAB_OPT_ADAMW ? 0.01f : 0.0f; /* PyTorch's AdamW default */
    c.sched = RLAB_SCHED_CONSTANT;
    return c;
}

rlab_opt *rlab_opt_new(const rlab_params *p, const rlab_opt_config *cfg, rlab_err *err)
{
    if (!p || !cfg) {
        rlab_errf(err, RLAB_EINVAL, "opt: NULL parameters or config");
        return NULL;
    }
    const int adam = cfg->kind == RLAB_OPT_ADAM || cfg->kind == RLAB_OPT_ADAMW;
    if (!(cfg->lr >= 0.0f) ||
        (adam && !(cfg->beta1 >= 0.0f && cfg->beta1 < 1.0f && cfg->beta2 >= 0.0f &&
                   cfg->beta2 < 1.0f && cfg->eps > 0.0f)) ||
        !(cfg->momentum >= 0.0f && cfg->momentum < 1.0f) || cfg->kind < RLAB_OPT_SGD ||
        cfg->kind > RLAB_OPT_ADAMW) {
        rlab_errf(err, RLAB_EINVAL,
                  "opt: bad config (lr %g, momentum %g, beta1 %g, beta2 %g, eps %g)",
                  (double)cfg->lr, (double)cfg->momentum, (double)cfg->beta1, (double)cfg->beta2,
                  (double)cfg->eps);
        return NULL;
    }
    if (cfg->sched == RLAB_SCHED_COSINE && cfg->total_steps <= cfg->warmup_steps) {
        rlab_errf(err, RLAB_EINVAL, "opt: cosine schedule needs total_steps (%lld) > warmup (%lld)",
                  (long long)cfg->total_steps, (long long)cfg->warmup_steps);
        return NULL;
    }
    rlab_opt *o = rlab_calloc(1, sizeof *o);
    if (!o)
        goto oom;
    o->cfg = *cfg;
    o->count = p->count;
    const size_t bytes = (p->count ? p->count : 1) * sizeof(float);
    if (adam || cfg->momentum > 0.0f) {
        o->m = rlab_malloc_aligned(bytes);
        if (!o->m)
            goto oom;
        memset(o->m, 0, bytes);
    }
    if (adam) {
        o->v = rlab_malloc_aligned(bytes);
        if (!o->v)
            goto oom;
        memset(o->v, 0, bytes);
    }
    return o;
oom:
    rlab_opt_free(o);
    rlab_errf(err, RLAB_ENOMEM, "opt: out of memory for %zu parameters of state", p->count);
    return NULL;
}

void rlab_opt_free(rlab_opt *opt)
{
    if (!opt)
        return;
    rlab_free_aligned(opt->m);
    rlab_free_aligned(opt->v);
    rlab_free(opt);
}

float rlab_opt_lr(const rlab_opt *opt)
{
    const rlab_opt_config *c = &opt->cfg;
    const int64_t t = opt->t;                       /* index of the next step, 0-based */
    if (c->warmup_steps > 0 && t < c->warmup_steps) /* linear: lr/W, 2 lr/W, ..., lr */
        return c->lr * (float)(t + 1) / (float)c->warmup_steps;
    if (c->sched == RLAB_SCHED_COSINE) {
        double span = (double)(c->total_steps - c->warmup_steps);
        double prog = (double)(t - c->warmup_steps) / span;
        if (prog > 1.0)
            prog = 1.0;
        double f = 0.5 * (1.0 + cos(3.14159265358979323846 * prog));
        return (float)((double)c->min_lr + ((double)c->lr - (double)c->min_lr) * f);
    }
    return c->lr;
}

int64_t rlab_opt_steps(const rlab_opt *opt) { return opt->t; }

void rlab_opt_set_steps(rlab_opt *opt, int64_t steps) { opt->t = steps < 0 ? 0 : steps; }

size_t rlab_opt_state_count(const rlab_opt *opt) { return opt->count; }

float *rlab_opt_state_m(rlab_opt *opt) { return opt->m; }

float *rlab_opt_state_v(rlab_opt *opt) { return opt->v; }

/* ---- update kernels over [n] slices of (x, g, m, v) --------------------------------------- */
typedef struct step_consts {
    float lr, b1, b2, eps, wd, mom;
    float bc1, bc2; /* 1 - beta^t */
} step_consts;

/* Adam over [i0, i1): the reference loop. GCC keeps it scalar (sqrtf and the division in
 * single lanes: measured 3.8% of a SASRec epoch on Beauty, one pass over 0.8 M parameters). */
static void adam_span(float *x, const float *g, float *m, float *v, int64_t i0, int64_t i1,
                      const step_consts *k, int decoupled)
{
    const float lr = k->lr, b1 = k->b1, b2 = k->b2, eps = k->eps, wd = k->wd;
    const float ibc1 = 1.0f / k->bc1, ibc2 = 1.0f / k->bc2;
    for (int64_t i = i0; i < i1; i++) {
        float gi = decoupled ? g[i] : g[i] + wd * x[i]; /* Adam: L2 into the gradient */
        m[i] = b1 * m[i] + (1.0f - b1) * gi;
        v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
        float upd = (m[i] * ibc1) / (sqrtf(v[i] * ibc2) + eps);
        x[i] -= lr * (decoupled ? upd + wd * x[i] : upd);
    }
}

/* h-ce: the same update 16 lanes at a time with AVX-512F. Every operation is the scalar
 * loop's, in its order, each rounded once (separate multiplies and adds, no FMA; the square
 * root and the division are correctly rounded in both), so x, m and v are bit-identical to
 * adam_span's. Returns the index where the scalar tail starts. */
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define ADAM_X86 1
__attribute__((target("avx512f"))) static int64_t adam_span16(float *x, const float *g, float *m,
                                                              float *v, int64_t i0, int64_t i1,
                                                              const step_consts *k, int decoupled)
{
    const __m512 lr = _mm512_set1_ps(k->lr), b1 = _mm512_set1_ps(k->b1), b2 = _mm512_set1_ps(k->b2),
                 eps = _mm512_set1_ps(k->eps), wd = _mm512_set1_ps(k->wd),
                 c1 = _mm512_set1_ps(1.0f - k->b1), c2 = _mm512_set1_ps(1.0f - k->b2),
                 ibc1 = _mm512_set1_ps(1.0f / k->bc1), ibc2 = _mm512_set1_ps(1.0f / k->bc2);
    int64_t i = i0;
    for (; i + 16 <= i1; i += 16) {
        const __m512 xi = _mm512_loadu_ps(x + i);
        __m512 gi = _mm512_loadu_ps(g + i);
        if (!decoupled)
            gi = _mm512_add_ps(gi, _mm512_mul_ps(wd, xi));
        const __m512 mi =
            _mm512_add_ps(_mm512_mul_ps(b1, _mm512_loadu_ps(m + i)), _mm512_mul_ps(c1, gi));
        const __m512 vi = _mm512_add_ps(_mm512_mul_ps(b2, _mm512_loadu_ps(v + i)),
                                        _mm512_mul_ps(_mm512_mul_ps(c2, gi), gi));
        _mm512_storeu_ps(m + i, mi);
        _mm512_storeu_ps(v + i, vi);
        __m512 upd = _mm512_div_ps(_mm512_mul_ps(mi, ibc1),
                                   _mm512_add_ps(_mm512_sqrt_ps(_mm512_mul_ps(vi, ibc2)), eps));
        if (decoupled)
            upd = _mm512_add_ps(upd, _mm512_mul_ps(wd, xi));
        _mm512_storeu_ps(x + i, _mm512_sub_ps(xi, _mm512_mul_ps(lr, upd)));
    }
    return i;
}

#else
#define ADAM_X86 0
#endif

static void adam_k(float *x, const float *g, float *m, float *v, int64_t n, const step_consts *k,
                   int decoupled)
{
    /* fixed 4096-float pieces (elementwise, so the split changes nothing) over the threads */
    const int64_t np = (n + 4095) / 4096;
#pragma omp parallel for schedule(static) if (n >= RLAB_K_PAR_MIN)
    for (int64_t p = 0; p < np; p++) {
        const int64_t i1 = (p + 1) * 4096 < n ? (p + 1) * 4096 : n;
        int64_t i0 = p * 4096;
#if ADAM_X86
        if (rlab_k_avx512())
            i0 = adam_span16(x, g, m, v, i0, i1, k, decoupled);
#endif
        adam_span(x, g, m, v, i0, i1, k, decoupled);
    }
}

static void sgd_k(float *x, const float *g, float *m, int64_t n, const step_consts *k)
{
    const float lr = k->lr, wd = k->wd, mom = k->mom;
    if (m) {
#pragma omp parallel for simd schedule(static) if (parallel : n >= RLAB_K_PAR_MIN)
        for (int64_t i = 0; i < n; i++) {
            m[i] = mom * m[i] + g[i]; /* PyTorch's buffer: no dampening */
            x[i] -= lr * (m[i] + wd * x[i]);
        }
    } else {
#pragma omp parallel for simd schedule(static) if (parallel : n >= RLAB_K_PAR_MIN)
        for (int64_t i = 0; i < n; i++)
            x[i] -= lr * (g[i] + wd * x[i]);
    }
}

static void update_slice(rlab_opt *o, rlab_params *p, size_t off, int64_t n, const step_consts *k)
{
    float *x = p->data + off;
    const float *g = p->grad + off;
    float *m = o->m ? o->m + off : NULL, *v = o->v ? o->v + off : NULL;
    if (o->cfg.kind == RLAB_OPT_SGD)
        sgd_k(x, g, m, n, k);
    else
        adam_k(x, g, m, v, n, k, o->cfg.kind == RLAB_OPT_ADAMW);
}

int rlab_opt_step(rlab_opt *opt, rlab_params *p)
{
    if (!opt || !p || p->count != opt->count)
        return RLAB_EINVAL;
    const rlab_opt_config *c = &opt->cfg;
    step_consts k = {.lr = rlab_opt_lr(opt),
                     .b1 = c->beta1,
                     .b2 = c->beta2,
                     .eps = c->eps,
                     .wd = c->weight_decay,
                     .mom = c->momentum};
    opt->t++;
    k.bc1 = (float)(1.0 - pow((double)c->beta1, (double)opt->t));
    k.bc2 = (float)(1.0 - pow((double)c->beta2, (double)opt->t));
    if (c->clip_norm > 0.0f)
        rlab_opt_clip_grad_norm(p, c->clip_norm);
    for (int i = 0; i < p->n; i++) {
        const rlab_tensor *t = &p->t[i];
        const size_t off = (size_t)(t->data - p->data);
        const uint8_t *touched = p->row_touched[i];
        if (!c->lazy || !touched) {
            update_slice(opt, p, off, t->n, &k);
            continue;
        }
        const int64_t C = rlab_t_cols(t), R = rlab_t_rows(t);
        for (int64_t r = 0; r < R; r++) /* rows are small: one thread, no spawn per row */
            if (touched[r])
                update_slice(opt, p, off + (size_t)(r * C), C, &k);
    }
    return RLAB_OK;
}

float rlab_opt_clip_grad_norm(rlab_params *p, float max_norm)
{
    const double norm = sqrt(rlab_k_sumsq(p->grad, (int64_t)p->count));
    if (max_norm > 0.0f && norm > (double)max_norm) {
        const float s = (float)((double)max_norm / norm);
        float *g = p->grad;
        const int64_t n = (int64_t)p->count;
#pragma omp parallel for simd schedule(static) if (parallel : n >= RLAB_K_PAR_MIN)
        for (int64_t i = 0; i < n; i++)
            g[i] *= s;
    }
    return (float)norm;
}

double rlab_opt_l2_penalty(rlab_params *p, float l2)
{
    /* alignment gaps between tensors hold zeros in data, so the whole block can be used */
    const int64_t n = (int64_t)p->count;
    const double value = 0.5 * (double)l2 * rlab_k_sumsq(p->data, n);
    float *g = p->grad;
    const float *x = p->data;
#pragma omp parallel for simd schedule(static) if (parallel : n >= RLAB_K_PAR_MIN)
    for (int64_t i = 0; i < n; i++)
        g[i] += l2 * x[i];
    return value;
}
