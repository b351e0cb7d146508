/*
 * core/tensor/loss: every loss is one fused tape op returning a scalar [1], with its kernels
 * (forward and backward side by side, float* + shape comments) in this file. Nothing here
 * depends on ops.c/nn.c: the matrix products are direct cblas_sgemm calls.
 *
 * Conventions shared by all losses:
 *   - the output is [1]; backward reads g = out->grad[0] and ADDS g * dL/dx into the grad of
 *     every source whose grad is non-NULL (sources without grad are read-only inputs);
 *   - borrowed int/float arrays (targets, labels, ...) are kept in out->ext[] and must
 *     outlive the step (until rlab_tape_backward has run);
 *   - per-row losses are summed serially in double, so the value does not depend on the
 *     OpenMP thread count; gradient accumulations that several rows share (item tables,
 *     bias) have a fixed order (rows ascending, chunks in order).
 *
 * Exponentials in the row-softmax loops use v8_exp() below: Cody-Waite range reduction and
 * a degree-7 polynomial on 8-lane vectors. Relative error < 1e-7 (about one float ulp), and
 * 0.74 ns per exp on one AVX2 core against 4.2-4.8 ns for a loop of expf() (measured; GCC 12
 * does not vectorise expf or a scalar polynomial with clamps at -O2).
 */
#include "tensor/loss.h"

#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* OpenMP pragmas through _Pragma so that builds without -fopenmp see nothing. */
#ifdef _OPENMP
#define RLAB_OMP(x) _Pragma(#x)
#else
#define RLAB_OMP(x)
#endif

/* Work (rows x cols) below which a row loop stays on one thread. */
#define PAR_MIN_WORK 32768

/* ---- vectorised exponential and row reductions ------------------------------------------ */
/* 8-lane vectors through GCC/clang vector extensions: plain C arithmetic, lane by lane, so
 * the AVX2 clone and the SSE2 default compute bit-identical results (no FMA contraction in
 * ISO C mode). On x86-64 the row kernels are built twice (target_clones) and the loader
 * picks the AVX2 version when the CPU has it. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi" /* 32-byte vectors in static inline helpers */
#endif
#if defined(__x86_64__) && defined(__GNUC__) && !defined(RLAB_NO_TARGET_CLONES)
#define RLAB_HOT __attribute__((target_clones("avx2", "default")))
#else
#define RLAB_HOT
#endif

/* always inlined: an out-of-line copy would pass 32-byte vectors by a non-AVX ABI */
#define RLAB_V8 inline __attribute__((always_inline))

typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));

static RLAB_V8 v8f v8_set(float a) { return (v8f){a, a, a, a, a, a, a, a}; }

static RLAB_V8 v8f v8_load(const float *p)
{
    v8f v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* the n < 8 first lanes from p, the rest `fill` */
static RLAB_V8 v8f v8_load_tail(const float *p, int64_t n, float fill)
{
    v8f v = v8_set(fill);
    memcpy(&v, p, (size_t)n * sizeof(float));
    return v;
}

static RLAB_V8 v8f v8_select(v8i mask, v8f a, v8f b) /* mask ? a : b */
{
    return (v8f)(((v8i)a & mask) | ((v8i)b & ~mask));
}

/* exp(x) lane-wise: x = k ln2 + r with |r| <= ln2/2 (Cody-Waite split of ln2), exp(r) by its
 * Taylor polynomial of degree 7 (truncation < 6e-9 relative; measured max error 8.4e-8
 * against double exp), 2^k written into the exponent bits. Inputs are clamped to
 * [-87.3, 88.37] so that 2^k stays a normal float: below, exp returns 1.2e-38 instead of a
 * denormal or 0 (harmless: every caller shifts by the row maximum, which contributes 1);
 * above, it saturates at 2.4e38 (callers only pass x <= 0). NaN propagates. */
static RLAB_V8 v8f v8_exp(v8f x)
{
    const v8f lo = v8_set(-87.3f), hi = v8_set(88.37f), magic = v8_set(12582912.0f);
    x = v8_select(x < lo, lo, x);
    x = v8_select(x > hi, hi, x);
    v8f kf = (x * 1.44269504f + magic) - magic; /* round(x / ln2); magic = 1.5 * 2^23 */
    v8f r = (x - kf * 0.693359375f) - kf * -2.12194440e-4f;
    v8f p = v8_set(1.0f / 5040.0f);
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    v8i k = __builtin_convertvector(kf, v8i);
    return p * (v8f)((k + 127) << 23);
}

static RLAB_V8 float v8_hsum(v8f v)
{
    return ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]));
}

static RLAB_V8 float v8_hmax(v8f v)
{
    float m = v[0];
    for (int l = 1; l < 8; l++)
        m = v[l] > m ? v[l] : m;
    return m;
}

/* max_j x[j] over x[n]; -inf when n == 0. */
RLAB_HOT static float row_max(const float *x, int64_t n)
{
    v8f m = v8_set(-INFINITY);
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
        v8f v = v8_load(x + j);
        m = v8_select(v > m, v, m);
    }
    float mm = v8_hmax(m);
    for (; j < n; j++)
        mm = x[j] > mm ? x[j] : mm;
    return mm;
}

/* x[j] += b[j] in place over x[n] (b may be NULL), then max_j x[j]. */
RLAB_HOT static float row_max_addbias(float *x, const float *b, int64_t n)
{
    if (!b)
        return row_max(x, n);
    v8f m = v8_set(-INFINITY);
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
        v8f v = v8_load(x + j) + v8_load(b + j);
        memcpy(x + j, &v, sizeof v);
        m = v8_select(v > m, v, m);
    }
    float mm = v8_hmax(m);
    for (; j < n; j++) {
        x[j] += b[j];
        mm = x[j] > mm ? x[j] : mm;
    }
    return mm;
}

/* sum_j exp(s * x[j] - shift) over x[n]; fixed lane order, so deterministic. */
RLAB_HOT static float row_sumexp(const float *x, int64_t n, float s, float shift)
{
    v8f acc = v8_set(0.0f);
    int64_t j = 0;
    for (; j + 8 <= n; j += 8)
        acc += v8_exp(v8_load(x + j) * s - shift);
    if (j < n) { /* padded lanes give exp(-inf) -> clamp -> 1.2e-38; zero them */
        v8f e = v8_exp(v8_load_tail(x + j, n - j, 0.0f) * s - shift);
        for (int64_t l = n - j; l < 8; l++)
            e[l] = 0.0f;
        acc += e;
    }
    return v8_hsum(acc);
}

/* y[j] = mul * exp(s * (x[j] + b[j]) - shift) for j < n (b may be NULL; y may be x). */
RLAB_HOT static void row_exp(float *y, const float *x, const float *b, int64_t n, float s,
                             float shift, float mul)
{
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
        v8f v = v8_load(x + j);
        if (b)
            v += v8_load(b + j);
        v = v8_exp(v * s - shift) * mul;
        memcpy(y + j, &v, sizeof v);
    }
    if (j < n) {
        v8f v = v8_load_tail(x + j, n - j, 0.0f);
        if (b)
            v += v8_load_tail(b + j, n - j, 0.0f);
        v = v8_exp(v * s - shift) * mul;
        memcpy(y + j, &v, (size_t)(n - j) * sizeof(float));
    }
}

/* log sum_j exp(s * x[j]) over x[n] given m = max_j x[j], s > 0; -inf for an empty row. */
static float row_lse(const float *x, int64_t n, float m, float s)
{
    if (!(m > -INFINITY) || n == 0)
        return -INFINITY;
    return s * m + logf(row_sumexp(x, n, s, s * m));
}

/* Stable softplus log(1 + e^z) and sigmoid, in double for the small losses. */
static double softplus(double z) { return (z > 0 ? z : 0.0) + log1p(exp(-fabs(z))); }

static double sigmoid(double z)
{
    if (z >= 0)
        return 1.0 / (1.0 + exp(-z));
    double e = exp(z);
    return e / (1.0 + e);
}

/* ---- row-parallel runner for the softmax_xent hot loop ---------------------------------- */
/*
 * softmax_xent alternates multi-threaded OpenBLAS sgemm calls with row loops, dozens of times
 * per step. With an OpenMP row loop, libgomp's idle workers spin (default GOMP_SPINCOUNT) right
 * when OpenBLAS's threads need the same cores: measured forward+backward on 2 cores at
 * 6400 x 12101 x 64 took ~1.2-1.6 s against ~0.7-0.8 s with OMP_WAIT_POLICY=passive. So this
 * loop runs on short-lived pthreads instead (create + join per chunk costs ~50 us, nothing
 * spins between calls). Rows are independent, so the split does not change any result.
 */
typedef void (*rows_fn)(void *ctx, int64_t r0, int64_t r1);

typedef struct rows_job {
    rows_fn fn;
    void *ctx;
    int64_t r0, r1;
} rows_job;

#define ROWS_MAX_THREADS 16

static void *rows_thread(void *p)
{
    rows_job *j = p;
    j->fn(j->ctx, j->r0, j->r1);
    return NULL;
}

/* fn(ctx, r0, r1) over [0, n) in up to rlab_t_num_threads() contiguous blocks; the caller runs
 * the first block; a thread that cannot be created is run inline (same result). */
static void parallel_rows(rows_fn fn, void *ctx, int64_t n, int64_t work_per_row)
{
    int nt = rlab_t_num_threads();
    nt = nt < ROWS_MAX_THREADS ? nt : ROWS_MAX_THREADS;
    if (n * work_per_row < PAR_MIN_WORK || nt > n)
        nt = n * work_per_row < PAR_MIN_WORK ? 1 : (int)n;
    if (nt <= 1) {
        if (n > 0)
            fn(ctx, 0, n);
        return;
    }
    rows_job jobs[ROWS_MAX_THREADS];
    pthread_t th[ROWS_MAX_THREADS];
    int started[ROWS_MAX_THREADS] = {0};
    for (int k = 0; k < nt; k++)
        jobs[k] = (rows_job){fn, ctx, n * k / nt, n * (k + 1) / nt};
    for (int k = 1; k < nt; k++)
        started[k] = pthread_create(&th[k], NULL, rows_thread, &jobs[k]) == 0;
    fn(ctx, jobs[0].r0, jobs[0].r1);
    for (int k = 1; k < nt; k++) {
        if (started[k])
            pthread_join(th[k], NULL);
        else
            fn(ctx, jobs[k].r0, jobs[k].r1);
    }
}

/* ---- full softmax cross-entropy ----------------------------------------------------------- */
/*
 * State saved by the forward for the backward (all on the tape arena):
 *   rows [nv]        indices of non-padding rows of h, ascending (the compaction)
 *   lse [nv]         log-sum-exp of each valid row's logits
 *   buf [chunk, V]   logits of one chunk; the backward turns it into G in place
 *   hc, dhc [chunk, C] gathered rows of h and their gradient
 *   cached           start row (in the compacted order) of the chunk whose logits, bias
 *                    added, are in buf and hc; -1 when buf holds something else
 */
typedef struct xent_state {
    int64_t nv, chunk, V, C, cached;
    int32_t *rows;
    int32_t *tgt;
    float *lse;
    float *buf;
    float *hc;
    float *dhc;
} xent_state;

/* hc[r, C] = h[rows[i], :] for i < r */
static void gather_rows(const float *h, const int32_t *rows, int64_t r, int64_t C, float *hc)
{
    for (int64_t i = 0; i < r; i++)
        memcpy(hc + i * C, h + (int64_t)rows[i] * C, (size_t)C * sizeof(float));
}

/* logits[r, V] = hc[r, C] items[V, C]^T */
static void chunk_logits(const float *hc, const float *items, int64_t r, int64_t V, int64_t C,
                         float *logits)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)r, (int)V, (int)C, 1.0f, hc, (int)C,
                items, (int)C, 0.0f, logits, (int)V);
}

/* Arguments of the row loops below. */
typedef struct xent_rows_ctx {
    float *logits;      /* [r, V] */
    const float *bias;  /* [V] or NULL */
    const int32_t *tgt; /* [r] */
    float *lse, *loss;  /* [r] */
    int64_t V;
    float scale;
} xent_rows_ctx;

/* Forward of rows [r0, r1): logits (+ bias, added in place), lse = logsumexp of each row,
 * loss = lse - logit[target]. */
static void xent_rows_forward(void *p, int64_t r0, int64_t r1)
{
    const xent_rows_ctx *c = p;
    for (int64_t i = r0; i < r1; i++) {
        float *x = c->logits + i * c->V;
        float m = row_max_addbias(x, c->bias, c->V);
        c->lse[i] = row_lse(x, c->V, m, 1.0f);
        c->loss[i] = c->lse[i] - x[c->tgt[i]];
    }
}

/* Backward of rows [r0, r1), in place: logits (bias not yet added, unless bias == NULL)
 * become G = (softmax - onehot(tgt)) * scale. */
static void xent_rows_backward(void *p, int64_t r0, int64_t r1)
{
    const xent_rows_ctx *c = p;
    for (int64_t i = r0; i < r1; i++) {
        float *x = c->logits + i * c->V;
        row_exp(x, x, c->bias, c->V, 1.0f, c->lse[i], c->scale);
        x[c->tgt[i]] -= c->scale;
    }
}

/* dbias[V] += sum_i G[i, :] for G[r, V], over columns [j0, j1) (rows in order). */
typedef struct colsum_ctx {
    const float *G;
    int64_t r, V;
    float *dbias;
} colsum_ctx;

static void colsum_add(void *p, int64_t j0, int64_t j1)
{
    const colsum_ctx *c = p;
    for (int64_t i = 0; i < c->r; i++) {
        const float *g = c->G + i * c->V;
        for (int64_t j = j0; j < j1; j++)
            c->dbias[j] += g[j];
    }
}

static void touch_all_rows(rlab_tensor *t)
{
    if ((t->flags & RLAB_T_PARAM) && t->aux[0])
        memset(t->aux[0], 1, (size_t)rlab_t_rows(t));
}

static void softmax_xent_backward(rlab_tape *tape, rlab_tensor *out)
{
    (void)tape;
    xent_state *st = out->aux[0];
    rlab_tensor *h = out->src[0], *items = out->src[1], *bias = out->src[2];
    if (st->nv == 0)
        return;
    const int64_t V = st->V, C = st->C;
    const float scale = out->grad[0] / (float)st->nv;
    const float *b = bias ? bias->data : NULL;
    if (items->grad)
        touch_all_rows(items);
    /* Chunks in descending order (a fixed order, so d_items is deterministic): the last
     * chunk's logits (bias included) are still in buf from the forward, which saves one
     * sgemm, and the whole recompute when everything fits in one chunk. */
    const int64_t nchunks = (st->nv + st->chunk - 1) / st->chunk;
    for (int64_t ci = nchunks - 1; ci >= 0; ci--) {
        const int64_t c0 = ci * st->chunk;
        const int64_t r = st->nv - c0 < st->chunk ? st->nv - c0 : st->chunk;
        xent_rows_ctx rc = {.logits = st->buf,
                            .bias = b,
                            .tgt = st->tgt + c0,
                            .lse = st->lse + c0,
                            .V = V,
                            .scale = scale};
        if (st->cached != c0) {
            gather_rows(h->data, st->rows + c0, r, C, st->hc);
            chunk_logits(st->hc, items->data, r, V, C, st->buf);
        } else {
            rc.bias = NULL; /* already added by the forward */
        }
        parallel_rows(xent_rows_backward, &rc, r, V);
        st->cached = -1; /* buf now holds G: a second backward must recompute */
        if (h->grad) {
            /* dhc[r, C] = G[r, V] items[V, C], scattered back to the rows of h */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)r, (int)C, (int)V, 1.0f,
                        st->buf, (int)V, items->data, (int)C, 0.0f, st->dhc, (int)C);
            for (int64_t i = 0; i < r; i++) {
                float *dst = h->grad + (int64_t)st->rows[c0 + i] * C;
                const float *s = st->dhc + i * C;
                for (int64_t k = 0; k < C; k++)
                    dst[k] += s[k];
            }
        }
        if (items->grad) /* d_items[V, C] += G[r, V]^T hc[r, C] */
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)V, (int)C, (int)r, 1.0f,
                        st->buf, (int)V, st->hc, (int)C, 1.0f, items->grad, (int)C);
        if (bias && bias->grad) {
            colsum_ctx cc = {.G = st->buf, .r = r, .V = V, .dbias = bias->grad};
            parallel_rows(colsum_add, &cc, V, r);
        }
    }
}

rlab_tensor *rlab_t_softmax_xent(rlab_tape *t, rlab_tensor *h, rlab_tensor *items,
                                 rlab_tensor *bias, const int32_t *targets, int64_t chunk_rows)
{
    const char *name = "softmax_xent";
    if (t->err.code)
        return &t->poison;
    rlab_tensor *src[3] = {h, items, bias};
    const int nsrc = bias ? 3 : 2;
    if (rlab_t_bad((const rlab_tensor *const *)src, nsrc))
        return rlab_tape_fail(t, RLAB_EINVAL, "%s: invalid input tensor", name);
    char b1[64], b2[64];
    const int64_t C = rlab_t_cols(h), N = rlab_t_rows(h), V = rlab_t_rows(items);
    if (items->ndim != 2 || rlab_t_cols(items) != C)
        return rlab_tape_fail(t, RLAB_EINVAL, "%s: h %s and items %s: need items [V, C]", name,
                              rlab_t_shape_str(h, b1, sizeof b1),
                              rlab_t_shape_str(items, b2, sizeof b2));
    if (bias && bias->n != V)
        return rlab_tape_fail(t, RLAB_EINVAL, "%s: bias %s does not match V = %lld", name,
                              rlab_t_shape_str(bias, b1, sizeof b1), (long long)V);
    if (!targets && N > 0)
        return rlab_tape_fail(t, RLAB_EINVAL, "%s: NULL targets", name);
    if (V > INT32_MAX || C > INT32_MAX || N > INT32_MAX)
        return rlab_tape_fail(t, RLAB_EINVAL, "%s: dimensions exceed int32", name);
    int64_t nv = 0;
    for (int64_t i = 0; i < N; i++) {
        if (targets[i] >= V)
            return rlab_tape_fail(t, RLAB_EINVAL, "%s: target %d of row %lld is >= V = %lld", name,
                                  (int)targets[i], (long long)i, (long long)V);
        nv += targets[i] >= 0;
    }
    int64_t chunk = chunk_rows > 0 ? chunk_rows : 256;
    if (chunk > nv)
        chunk = nv > 0 ? nv : 1;

    rlab_tensor *out = rlab_tape_op(t, name, 1, (int64_t[]){1}, src, nsrc, softmax_xent_backward);
    if (out->flags & RLAB_T_POISON)
        return out;
    xent_state *st = rlab_tape_alloc(t, sizeof *st);
    int32_t *rows = rlab_tape_alloc(t, (size_t)(nv ? nv : 1) * sizeof(int32_t));
    int32_t *tgt = rlab_tape_alloc(t, (size_t)(nv ? nv : 1) * sizeof(int32_t));
    float *lse = rlab_tape_alloc(t, (size_t)(nv ? nv : 1) * sizeof(float));
    float *rowloss = rlab_tape_alloc(t, (size_t)(nv ? nv : 1) * sizeof(float));
    float *buf = rlab_tape_alloc(t, (size_t)(chunk * V) * sizeof(float) + 1);
    float *hc = rlab_tape_alloc(t, (size_t)(chunk * C) * sizeof(float) + 1);
    float *dhc = h->grad ? rlab_tape_alloc(t, (size_t)(chunk * C) * sizeof(float) + 1) : NULL;
    if (t->err.code)
        return &t->poison;
    *st = (xent_state){.nv = nv,
                       .chunk = chunk,
                       .V = V,
                       .C = C,
                       .cached = -1,
                       .rows = rows,
                       .tgt = tgt,
                       .lse = lse,
                       .buf = buf,
                       .hc = hc,
                       .dhc = dhc};
    out->aux[0] = st;
    out->ext[0] = targets;
    out->p.i[0] = chunk;
    /* compaction: only rows with a target go through the sgemm */
    for (int64_t i = 0, k = 0; i < N; i++)
        if (targets[i] >= 0) {
            rows[k] = (int32_t)i;
            tgt[k++] = targets[i];
        }
    const float *b = bias ? bias->data : NULL;
    for (int64_t c0 = 0; c0 < nv; c0 += chunk) {
        const int64_t r = nv - c0 < chunk ? nv - c0 : chunk;
        gather_rows(h->data, rows + c0, r, C, hc);
        chunk_logits(hc, items->data, r, V, C, buf);
        xent_rows_ctx rc = {.logits = buf,
                            .bias = b,
                            .tgt = tgt + c0,
                            .lse = lse + c0,
                            .loss = rowloss + c0,
                            .V = V};
        parallel_rows(xent_rows_forward, &rc, r, V);
        st->cached = c0;
    }
    double sum = 0.0;
    for (int64_t i = 0; i < nv; i++)
        sum += (double)rowloss[i];
    out->data[0] = nv ? (float)(sum / (double)nv) : 0.0f;
    return out;
}

/* ---- helpers for the small losses ------------------------------------------------------- */
/* Output node of a loss with sources src[0..nsrc) (NULLs skipped in the shape check but kept
 * in place in out->src, so backward can index sources by position). */
static rlab_tensor *loss_node(rlab_tape *t, const char *name, rlab_tensor *const *src, int nsrc,
                              rlab_backward_fn backward)
{
    rlab_tensor *live[4];
    int k = 0;
    for (int i = 0; i < nsrc; i++)
        if (src[i])
            live[k++] = src[i];
    rlab_tensor *out = rlab_tape_op(t, name, 1, (int64_t[]){1}, live, k, backward);
    if (out->flags & RLAB_T_POISON)
        return out;
    for (int i = 0; i < 4; i++)
        out->src[i] = i < nsrc ? src[i] : NULL;
    return out;
}

static int same_n(rlab_tape *t, const char *name, const rlab_tensor *a, const rlab_tensor *b)
{
    if (a->n == b->n)
        return 1;
    char b1[64], b2[64];
    rlab_tape_fail(t, RLAB_EINVAL, "%s: shapes %s and %s differ in size", name,
                   rlab_t_shape_str(a, b1, sizeof b1), rlab_t_shape_str(b, b2, sizeof b2));
    return 0;
}

static float mean_of(const float *v, int64_t n)
{
    double s = 0.0;
    for (int64_t i = 0; i < n; i++)
        s += (double)v[i];
    return n ? (float)(s / (double)n) : 0.0f;
}

/* ---- sampled softmax -------------------------------------------------------------------- */
/*
 * Row i's candidates: c[0] = targets[i], c[1 + k] = negs[i * n_neg + k]; a negative id < 0 is
 * excluded (padding). logit_k = h_i . items[c_k] - logq[c_k]. The forward saves the
 * candidate probabilities prob[N, 1 + n_neg] (0 for excluded candidates and padding rows).
 */
typedef struct sampled_state {
    int64_t N, K, C, nv;
    float *prob; /* [N, K] */
} sampled_state;

static int32_t sampled_cand(const int32_t *targets, const int32_t *negs, int64_t K, int64_t i,
                            int64_t k)
{
    return k == 0 ? targets[i] : negs[i * (K - 1) + k - 1];
}

static void sampled_softmax_backward(rlab_tape *tape, rlab_tensor *out)
{
    (void)tape;
    const sampled_state *st = out->aux[0];
    const int32_t *targets = out->ext[0], *negs = out->ext[1];
    rlab_tensor *h = out->src[0], *items = out->src[1];
    if (st->nv == 0)
        return;
    const int64_t K = st->K, C = st->C, N = st->N;
    const float scale = out->grad[0] / (float)st->nv;
    /* dlogit[i, k] = (prob - [k == 0]) * scale; the row's h grad first (rows independent) */
    if (h->grad) {
        RLAB_OMP(omp parallel for schedule(static) if (N * K * C >= PAR_MIN_WORK))
        for (int64_t i = 0; i < N; i++) {
            if (targets[i] < 0)
                continue;
            float *dh = h->grad + i * C;
            for (int64_t k = 0; k < K; k++) {
                int32_t c = sampled_cand(targets, negs, K, i, k);
                if (c < 0)
                    continue;
                const float d = (st->prob[i * K + k] - (k == 0)) * scale;
                const float *e = items->data + (int64_t)c * C;
                for (int64_t j = 0; j < C; j++)
                    dh[j] += d * e[j];
            }
        }
    }
    /* item rows are shared between rows: serial, rows ascending (deterministic) */
    if (items->grad) {
        for (int64_t i = 0; i < N; i++) {
            if (targets[i] < 0)
                continue;
            const float *hi = h->data + i * C;
            for (int64_t k = 0; k < K; k++) {
                int32_t c = sampled_cand(targets, negs, K, i, k);
                if (c < 0)
                    continue;
                const float d = (st->prob[i * K + k] - (k == 0)) * scale;
                float *de = items->grad + (int64_t)c * C;
                for (int64_t j = 0; j < C; j++)
                    de[j] += d * hi[j];
                rlab_params_touch_row(items, c);
            }
        }
    }
}

rlab_tensor *rlab_t_sampled_softmax(rlab_tape *t, rlab_tensor *h, rlab_tensor *items,
                                    const int32_t *targets, const int32_t *negs, int n_neg,
                                    const float *logq)
{
    const char *name = "sampled_softmax";
    if (t->err.code)
        return &t->poison;
    rlab_tensor *src[2] = {h, items};
    if (rlab_t_bad((const rlab_tensor *const *)src, 2))
        return rlab_tape_fail(t, RLAB_EINVAL, "%s: invalid input tensor", name);
    char b1[64], b2[64];
    const int64_t C = rlab_t_cols(h), N = rlab_t_rows(h), V = rlab_t_rows(items);
    const int64_t K = (int64_t)n_neg + 1;
    if (items->ndim != 2 || rlab_t_cols(items) != C)
        return rlab_tape_fail(t, RLAB_EINVAL, "%s: h %s and items %s: need items [V, C]", name,
                              rlab_t_shape_str(h, b1, sizeof b1),
                              rlab_t_shape_str(items, b2, sizeof b2));
    if (n_neg < 0 || (N > 0 && (!targets || (n_neg > 0 && !negs))))
        return rlab_tape_fail(t, RLAB_EINVAL, "%s: NULL targets/negs or n_neg %d < 0", name, n_neg);
    int64_t nv = 0;
    for (int64_t i = 0; i < N; i++) {
        for (int64_t k = 0; k < K; k++) {
            int32_t c = sampled_cand(targets, negs, K, i, k);
            if (c >= V)
                return rlab_tape_fail(t, RLAB_EINVAL, "%s: item id %d (row %lld) is >= V = %lld",
                                      name, (int)c, (long long)i, (long long)V);
        }
        nv += targets[i] >= 0;
    }
    rlab_tensor *out = loss_node(t, name, src, 2, sampled_softmax_backward);
    if (out->flags & RLAB_T_POISON)
        return out;
    sampled_state *st = rlab_tape_alloc(t, sizeof *st);
    float *prob = rlab_tape_calloc(t, (size_t)(N * K) * sizeof(float) + 1);
    float *rowloss = rlab_tape_calloc(t, (size_t)N * sizeof(float) + 1);
    if (t->err.code)
        return &t->poison;
    *st = (sampled_state){.N = N, .K = K, .C = C, .nv = nv, .prob = prob};
    out->aux[0] = st;
    out->ext[0] = targets;
    out->ext[1] = negs;
    RLAB_OMP(omp parallel for schedule(static) if (N * K * C >= PAR_MIN_WORK))
    for (int64_t i = 0; i < N; i++) {
        if (targets[i] < 0)
            continue;
        float *z = prob + i * K; /* logits first, probabilities after */
        const float *hi = h->data + i * C;
        float m = -INFINITY;
        for (int64_t k = 0; k < K; k++) {
            int32_t c = sampled_cand(targets, negs, K, i, k);
            if (c < 0) {
                z[k] = -INFINITY;
                continue;
            }
            const float *e = items->data + (int64_t)c * C;
            float d = 0.0f;
            for (int64_t j = 0; j < C; j++)
                d += hi[j] * e[j];
            z[k] = d - (logq ? logq[c] : 0.0f);
            m = z[k] > m ? z[k] : m;
        }
        double s = 0.0;
        for (int64_t k = 0; k < K; k++)
            s += z[k] > -INFINITY ? exp((double)(z[k] - m)) : 0.0;
        const float lse = m + (float)log(s);
        rowloss[i] = lse - z[0];
        for (int64_t k = 0; k < K; k++)
            z[k] = z[k] > -INFINITY ? expf(z[k] - lse) : 0.0f;
    }
    double sum = 0.0;
    for (int64_t i = 0; i < N; i++)
        sum += (double)rowloss[i];
    out->data[0] = nv ? (float)(sum / (double)nv) : 0.0f;
    return out;
}

/* ---- binary cross-entropy with logits --------------------------------------------------- */
/* l_i = w_i (max(x, 0) - x y + log(1 + exp(-|x|))), dl/dx = w_i (sigmoid(x) - y). */
static void bce_backward(rlab_tape *tape, rlab_tensor *out)
{
    (void)tape;
    rlab_tensor *x = out->src[0];
    const float *y = out->ext[0], *w = out->ext[1];
    if (!x->grad || x->n == 0)
        return;
    const double scale = (double)out->grad[0] / (double)x->n;
    for (int64_t i = 0; i < x->n; i++)
        x->grad[i] += (float)((w ? (double)w[i] : 1.0) *
                              (sigmoid((double)x->data[i]) - (double)y[i]) * scale);
}

rlab_tensor *rlab_t_bce_logits(rlab_tape *t, rlab_tensor *logits, const float *labels,
                               const float *weight)
{
    const char *name = "bce_logits";
    if (t->err.code)
        return &t->poison;
    if (rlab_t_bad((const rlab_tensor *const *)&logits, 1))
        return rlab_tape_fail(t, RLAB_EINVAL, "%s: invalid input tensor", name);
    if (!labels && logits->n > 0)
        return rlab_tape_fail(t, RLAB_EINVAL, "%s: NULL labels", name);
    rlab_tensor *out = loss_node(t, name, &logits, 1, bce_backward);
    if (out->flags & RLAB_T_POISON)
        return out;
    out->ext[0] = labels;
    out->ext[1] = weight;
    double s = 0.0;
    for (int64_t i = 0; i < logits->n; i++) {
        const double x = (double)logits->data[i], y = (double)labels[i];
        s +=
            (weight ? (double)weight[i] : 1.0) * ((x > 0 ? x : 0.0) - x * y + log1p(exp(-fabs(x))));
    }
    out->data[0] = logits->n ? (float)(s / (double)logits->n) : 0.0f;
    return out;
}

/* ---- BPR, margin ranking, DPO: functions of d_i = pos_i - neg_i ------------------------- */
static void bpr_backward(rlab_tape *tape, rlab_tensor *out)
{
    (void)tape;
    rlab_tensor *pos = out->src[0], *neg = out->src[1];
    const int64_t n = pos->n;
    if (n == 0)
        return;
    const double scale = (double)out->grad[0] / (double)n;
    for (int64_t i = 0; i < n; i++) {
        /* d/dpos softplus(neg - pos) = -sigmoid(neg - pos) */
        const float g = (float)(-sigmoid((double)neg->data[i] - (double)pos->data[i]) * scale);
        if (pos->grad)
            pos->grad[i] += g;
        if (neg->grad)
            neg->grad[i] -= g;
    }
}

rlab_tensor *rlab_t_bpr(rlab_tape *t, rlab_tensor *pos, rlab_tensor *neg)
{
    const char *name = "bpr";
    if (t->err.code)
        return &t->poison;
    rlab_tensor *src[2] = {pos, neg};
    if (rlab_t_bad((const rlab_tensor *const *)src, 2))
        return rlab_tape_fail(t, RLAB_EINVAL, "%s: invalid input tensor", name);
    if (!same_n(t, name, pos, neg))
        return &t->poison;
    rlab_tensor *out = loss_node(t, name, src, 2, bpr_backward);
    if (out->flags & RLAB_T_POISON)
        return out;
    double s = 0.0;
    for (int64_t i = 0; i < pos->n; i++)
        s += softplus((double)neg->data[i] - (double)pos->data[i]);
    out->data[0] = pos->n ? (float)(s / (double)pos->n) : 0.0f;
    return out;
}

/* max(0, margin - d) has slope -1 in d where margin - d > 0, 0 elsewhere (0 at the kink). */
static void margin_rank_backward(rlab_tape *tape, rlab_tensor *out)
{
    (void)tape;
    rlab_tensor *pos = out->src[0], *neg = out->src[1];
    const int64_t n = pos->n;
    if (n == 0)
        return;
    const float margin = out->p.f[0], scale = out->grad[0] / (float)n;
    for (int64_t i = 0; i < n; i++) {
        if (!(margin - (pos->data[i] - neg->data[i]) > 0.0f))
            continue;
        if (pos->grad)
            pos->grad[i] -= scale;
        if (neg->grad)
            neg->grad[i] += scale;
    }
}

rlab_tensor *rlab_t_margin_rank(rlab_tape *t, rlab_tensor *pos, rlab_tensor *neg, float margin)
{
    const char *name = "margin_rank";
    if (t->err.code)
        return &t->poison;
    rlab_tensor *src[2] = {pos, neg};
    if (rlab_t_bad((const rlab_tensor *const *)src, 2))
        return rlab_tape_fail(t, RLAB_EINVAL, "%s: invalid input tensor", name);
    if (!same_n(t, name, pos, neg))
        return &t->poison;
    rlab_tensor *out = loss_node(t, name, src, 2, margin_rank_backward);
    if (out->flags & RLAB_T_POISON)
        return out;
    out->p.f[0] = margin;
    double s = 0.0;
    for (int64_t i = 0; i < pos->n; i++) {
        const double v = (double)margin - ((double)pos->data[i] - (double)neg->data[i]);
        s += v > 0 ? v : 0.0;
    }
    out->data[0] = pos->n ? (float)(s / (double)pos->n) : 0.0f;
    return out;
}

/* z_i = beta ((pw - rw) - (pl - rl)); l = softplus(-z); dl/dz = -sigmoid(-z). */
static double dpo_z(const rlab_tensor *out, int64_t i)
{
    const rlab_tensor *pw = out->src[0], *pl = out->src[1], *rw = out->src[2], *rl = out->src[3];
    const double w = (double)pw->data[i] - (rw ? (double)rw->data[i] : 0.0);
    const double l = (double)pl->data[i] - (rl ? (double)rl->data[i] : 0.0);
    return (double)out->p.f[0] * (w - l);
}

static void dpo_backward(rlab_tape *tape, rlab_tensor *out)
{
    (void)tape;
    rlab_tensor *pw = out->src[0], *pl = out->src[1], *rw = out->src[2], *rl = out->src[3];
    const int64_t n = pw->n;
    if (n == 0)
        return;
    const double scale = (double)out->grad[0] / (double)n, beta = (double)out->p.f[0];
    for (int64_t i = 0; i < n; i++) {
        const float g = (float)(-sigmoid(-dpo_z(out, i)) * beta * scale); /* dL/d pw */
        if (pw->grad)
            pw->grad[i] += g;
        if (pl->grad)
            pl->grad[i] -= g;
        if (rw && rw->grad)
            rw->grad[i] -= g;
        if (rl && rl->grad)
            rl->grad[i] += g;
    }
}

rlab_tensor *rlab_t_dpo(rlab_tape *t, rlab_tensor *pw, rlab_tensor *pl, rlab_tensor *rw,
                        rlab_tensor *rl, float beta)
{
    const char *name = "dpo";
    if (t->err.code)
        return &t->poison;
    rlab_tensor *src[4] = {pw, pl, rw, rl};
    if (rlab_t_bad((const rlab_tensor *const *)src, 2) || (rw && (rw->flags & RLAB_T_POISON)) ||
        (rl && (rl->flags & RLAB_T_POISON)))
        return rlab_tape_fail(t, RLAB_EINVAL, "%s: invalid input tensor", name);
    if (!same_n(t, name, pw, pl) || (rw && !same_n(t, name, pw, rw)) ||
        (rl && !same_n(t, name, pw, rl)))
        return &t->poison;
    rlab_tensor *out = loss_node(t, name, src, 4, dpo_backward);
    if (out->flags & RLAB_T_POISON)
        return out;
    out->p.f[0] = beta;
    double s = 0.0;
    for (int64_t i = 0; i < pw->n; i++)
        s += softplus(-dpo_z(out, i));
    out->data[0] = pw->n ? (float)(s / (double)pw->n) : 0.0f;
    return out;
}

/* ---- per-thread row scratch ------------------------------------------------------------- */
static int max_threads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

static int thread_id(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* ---- in-batch InfoNCE ------------------------------------------------------------------- */
/*
 * an, bn [B, C]: the rows of a and b, L2-normalised when asked (else the inputs' data);
 * norm_a/norm_b [B] the row norms; S [B, B] = an bn^T / temp; ST = S^T (symmetric only);
 * rlse[B] / clse[B] the log-sum-exp of the rows of S / of ST.
 * L = w (mean_i (rlse_i - S_ii) + [sym] mean_j (clse_j - S_jj)), w = 1/2 if symmetric else 1.
 */
#define INFONCE_EPS 1e-12f

typedef struct infonce_state {
    int64_t B, C;
    float *an, *bn, *norm_a, *norm_b, *S, *ST, *rlse, *clse;
} infonce_state;

/* xn[B, C] = x / max(||x_i||, eps), norm[B] = ||x_i|| */
static void l2norm_rows_forward(const float *x, int64_t B, int64_t C, float *xn, float *norm)
{
    for (int64_t i = 0; i < B; i++) {
        double s = 0.0;
        for (int64_t j = 0; j < C; j++)
            s += (double)x[i * C + j] * (double)x[i * C + j];
        norm[i] = (float)sqrt(s);
        const float inv = 1.0f / (norm[i] > INFONCE_EPS ? norm[i] : INFONCE_EPS);
        for (int64_t j = 0; j < C; j++)
            xn[i * C + j] = x[i * C + j] * inv;
    }
}

/* dx[B, C] += d(xn)/dx^T dxn: (dxn - xn (xn . dxn)) / ||x|| (or dxn / eps below eps). */
static void l2norm_rows_backward(const float *xn, const float *norm, const float *dxn, int64_t B,
                                 int64_t C, float *dx)
{
    for (int64_t i = 0; i < B; i++) {
        const float *u = xn + i * C, *du = dxn + i * C;
        float *d = dx + i * C;
        if (norm[i] > INFONCE_EPS) {
            double dot = 0.0;
            for (int64_t j = 0; j < C; j++)
                dot += (double)u[j] * (double)du[j];
            const float inv = 1.0f / norm[i], fdot = (float)dot;
            for (int64_t j = 0; j < C; j++)
                d[j] += (du[j] - u[j] * fdot) * inv;
        } else {
            for (int64_t j = 0; j < C; j++)
                d[j] += du[j] / INFONCE_EPS;
        }
    }
}

/* lse[B] of the rows of S[B, B]; returns sum_i (lse_i - S_ii) in double. */
static double infonce_rows(const float *S, int64_t B, float *lse)
{
    double s = 0.0;
    for (int64_t i = 0; i < B; i++) {
        const float *x = S + i * B;
        float m = -INFINITY;
        for (int64_t j = 0; j < B; j++)
            m = x[j] > m ? x[j] : m;
        lse[i] = row_lse(x, B, m, 1.0f);
        s += (double)lse[i] - (double)x[i];
    }
    return s;
}

static void infonce_backward(rlab_tape *tape, rlab_tensor *out)
{
    const infonce_state *st = out->aux[0];
    rlab_tensor *a = out->src[0], *b = out->src[1];
    const int64_t B = st->B, C = st->C;
    const int normalize = (int)out->p.i[1], symmetric = (int)out->p.i[2];
    const float temp = out->p.f[0];
    if (B == 0)
        return;
    const float scale = out->grad[0] / (float)B * (symmetric ? 0.5f : 1.0f);
    float *dS = rlab_tape_alloc(tape, (size_t)(B * B) * sizeof(float));
    float *dan = rlab_tape_alloc(tape, (size_t)(B * C) * sizeof(float));
    if (!dS || !dan)
        return;
    /* dS[i, j] = scale (softmax_row(S)[i, j] - [i == j]) + [sym] scale (softmax_col - [i == j]) */
    for (int64_t i = 0; i < B; i++) {
        row_exp(dS + i * B, st->S + i * B, NULL, B, 1.0f, st->rlse[i], scale);
        dS[i * B + i] -= scale;
    }
    if (symmetric)
        for (int64_t i = 0; i < B; i++) {
            for (int64_t j = 0; j < B; j++)
                dS[i * B + j] += scale * expf(st->S[i * B + j] - st->clse[j]);
            dS[i * B + i] -= scale;
        }
    const float inv_t = 1.0f / temp;
    if (a->grad) { /* dan[B, C] = dS[B, B] bn[B, C] / temp */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)B, (int)C, (int)B, inv_t, dS,
                    (int)B, st->bn, (int)C, 0.0f, dan, (int)C);
        if (normalize)
            l2norm_rows_backward(st->an, st->norm_a, dan, B, C, a->grad);
        else
            for (int64_t i = 0; i < B * C; i++)
                a->grad[i] += dan[i];
    }
    if (b->grad) { /* dbn[B, C] = dS^T an / temp */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)B, (int)C, (int)B, inv_t, dS,
                    (int)B, st->an, (int)C, 0.0f, dan, (int)C);
        if (normalize)
            l2norm_rows_backward(st->bn, st->norm_b, dan, B, C, b->grad);
        else
            for (int64_t i = 0; i < B * C; i++)
                b->grad[i] += dan[i];
    }
}

rlab_tensor *rlab_t_infonce(rlab_tape *t, rlab_tensor *a, rlab_tensor *b, float temp, int normalize,
                            int symmetric)
{
    const char *name = "infonce";
    if (t->err.code)
        return &t->poison;
    rlab_tensor *src[2] = {a, b};
    if (rlab_t_bad((const rlab_tensor *const *)src, 2))
        return rlab_tape_fail(t, RLAB_EINVAL, "%s: invalid input tensor", name);
    char b1[64], b2[64];
    const int64_t B = rlab_t_rows(a), C = rlab_t_cols(a);
    if (rlab_t_cols(b) != C || rlab_t_rows(b) != B)
        return rlab_tape_fail(t, RLAB_EINVAL, "%s: a %s and b %s must both be [B, C]", name,
                              rlab_t_shape_str(a, b1, sizeof b1),
                              rlab_t_shape_str(b, b2, sizeof b2));
    if (!(temp > 0.0f))
        return rlab_tape_fail(t, RLAB_EINVAL, "%s: temperature %g must be > 0", name, (double)temp);
    rlab_tensor *out = loss_node(t, name, src, 2, infonce_backward);
    if (out->flags & RLAB_T_POISON)
        return out;
    infonce_state *st = rlab_tape_calloc(t, sizeof *st);
    const size_t bc = (size_t)(B * C) * sizeof(float) + 1, bb = (size_t)(B * B) * sizeof(float) + 1;
    if (!st)
        return &t->poison;
    st->B = B;
    st->C = C;
    st->S = rlab_tape_alloc(t, bb);
    st->ST = symmetric ? rlab_tape_alloc(t, bb) : NULL;
    st->rlse = rlab_tape_alloc(t, (size_t)B * sizeof(float) + 1);
    st->clse = rlab_tape_alloc(t, (size_t)B * sizeof(float) + 1);
    if (normalize) {
        st->an = rlab_tape_alloc(t, bc);
        st->bn = rlab_tape_alloc(t, bc);
        st->norm_a = rlab_tape_alloc(t, (size_t)B * sizeof(float) + 1);
        st->norm_b = rlab_tape_alloc(t, (size_t)B * sizeof(float) + 1);
    } else {
        st->an = a->data;
        st->bn = b->data;
    }
    if (t->err.code)
        return &t->poison;
    out->aux[0] = st;
    out->p.f[0] = temp;
    out->p.i[1] = normalize != 0;
    out->p.i[2] = symmetric != 0;
    if (B == 0)
        return out;
    if (normalize) {
        l2norm_rows_forward(a->data, B, C, st->an, st->norm_a);
        l2norm_rows_forward(b->data, B, C, st->bn, st->norm_b);
    }
    /* S[B, B] = an bn^T / temp */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)B, (int)B, (int)C, 1.0f / temp,
                st->an, (int)C, st->bn, (int)C, 0.0f, st->S, (int)B);
    double loss = infonce_rows(st->S, B, st->rlse) / (double)B;
    if (symmetric) {
        for (int64_t i = 0; i < B; i++)
            for (int64_t j = 0; j < B; j++)
                st->ST[j * B + i] = st->S[i * B + j];
        loss = 0.5 * (loss + infonce_rows(st->ST, B, st->clse) / (double)B);
    }
    out->data[0] = (float)loss;
    return out;
}

/* ---- KL divergence and soft-target cross-entropy ---------------------------------------- */
/*
 * Both work on rows of the last dim with s = 1 / temp: lp = s x - lse(s x). The forward saves
 * only per-row numbers (log-sum-exps, KL); the backward recomputes probabilities into a
 * per-thread scratch row, so nothing of size [R, V] is kept besides the inputs.
 */
typedef struct rowsm_state {
    int64_t R, V;
    float *lse_p, *lse_q, *val; /* [R] each (lse_p/val unused by soft_xent) */
    float *scratch;             /* [nthreads, 2, V] */
    int nthreads;
} rowsm_state;

static rowsm_state *rowsm_new(rlab_tape *t, int64_t R, int64_t V)
{
    rowsm_state *st = rlab_tape_calloc(t, sizeof *st);
    if (!st)
        return NULL;
    st->R = R;
    st->V = V;
    st->nthreads = max_threads();
    st->lse_p = rlab_tape_alloc(t, (size_t)R * sizeof(float) + 1);
    st->lse_q = rlab_tape_alloc(t, (size_t)R * sizeof(float) + 1);
    st->val = rlab_tape_alloc(t, (size_t)R * sizeof(float) + 1);
    st->scratch = rlab_tape_alloc(t, (size_t)st->nthreads * 2 * (size_t)V * sizeof(float) + 1);
    return t->err.code ? NULL : st;
}

static void kl_div_backward(rlab_tape *tape, rlab_tensor *out)
{
    (void)tape;
    const rowsm_state *st = out->aux[0];
    rlab_tensor *pl = out->src[0], *ql = out->src[1];
    const int64_t R = st->R, V = st->V;
    const float s = 1.0f / out->p.f[0];
    if (R == 0)
        return;
    const float scale = out->grad[0] / (float)R * s;
    RLAB_OMP(omp parallel for schedule(static) if (R * V >= PAR_MIN_WORK))
    for (int64_t r = 0; r < R; r++) {
        float *p = st->scratch + (size_t)thread_id() * 2 * (size_t)V, *q = p + V;
        const float *x = pl->data + r * V, *y = ql->data + r * V;
        row_exp(p, x, NULL, V, s, st->lse_p[r], 1.0f);
        row_exp(q, y, NULL, V, s, st->lse_q[r], 1.0f);
        if (ql->grad) { /* dKL/dz_q = q - p */
            float *d = ql->grad + r * V;
            for (int64_t j = 0; j < V; j++)
                d[j] += scale * (q[j] - p[j]);
        }
        if (pl->grad) { /* dKL/dz_p = p ((lp - lq) - KL) */
            float *d = pl->grad + r * V;
            const float kl = st->val[r], dl = st->lse_q[r] - st->lse_p[r];
            for (int64_t j = 0; j < V; j++)
                d[j] += scale * p[j] * ((s * x[j] - s * y[j] + dl) - kl);
        }
    }
}

rlab_tensor *rlab_t_kl_div(rlab_tape *t, rlab_tensor *p_logits, rlab_tensor *q_logits, float temp)
{
    const char *name = "kl_div";
    if (t->err.code)
        return &t->poison;
    rlab_tensor *src[2] = {p_logits, q_logits};
    if (rlab_t_bad((const rlab_tensor *const *)src, 2))
        return rlab_tape_fail(t, RLAB_EINVAL, "%s: invalid input tensor", name);
    char b1[64], b2[64];
    if (p_logits->n != q_logits->n || rlab_t_cols(p_logits) != rlab_t_cols(q_logits))
        return rlab_tape_fail(t, RLAB_EINVAL, "%s: shapes %s and %s differ", name,
                              rlab_t_shape_str(p_logits, b1, sizeof b1),
                              rlab_t_shape_str(q_logits, b2, sizeof b2));
    if (!(temp > 0.0f))
        return rlab_tape_fail(t, RLAB_EINVAL, "%s: temperature %g must be > 0", name, (double)temp);
    const int64_t R = rlab_t_rows(p_logits), V = rlab_t_cols(p_logits);
    rlab_tensor *out = loss_node(t, name, src, 2, kl_div_backward);
    if (out->flags & RLAB_T_POISON)
        return out;
    rowsm_state *st = rowsm_new(t, R, V);
    if (!st)
        return &t->poison;
    out->aux[0] = st;
    out->p.f[0] = temp;
    const float s = 1.0f / temp;
    RLAB_OMP(omp parallel for schedule(static) if (R * V >= PAR_MIN_WORK))
    for (int64_t r = 0; r < R; r++) {
        float *p = st->scratch + (size_t)thread_id() * 2 * (size_t)V;
        const float *x = p_logits->data + r * V, *y = q_logits->data + r * V;
        st->lse_p[r] = row_lse(x, V, row_max(x, V), s);
        st->lse_q[r] = row_lse(y, V, row_max(y, V), s);
        row_exp(p, x, NULL, V, s, st->lse_p[r], 1.0f);
        const float dl = st->lse_q[r] - st->lse_p[r];
        double kl = 0.0;
        for (int64_t j = 0; j < V; j++)
            kl += (double)(p[j] * (s * x[j] - s * y[j] + dl));
        st->val[r] = (float)kl;
    }
    out->data[0] = mean_of(st->val, R);
    return out;
}

static void soft_xent_backward(rlab_tape *tape, rlab_tensor *out)
{
    (void)tape;
    const rowsm_state *st = out->aux[0];
    rlab_tensor *ql = out->src[0];
    const float *P = out->ext[0];
    const int64_t R = st->R, V = st->V;
    const float s = 1.0f / out->p.f[0];
    if (R == 0 || !ql->grad)
        return;
    const float scale = out->grad[0] / (float)R * s;
    RLAB_OMP(omp parallel for schedule(static) if (R * V >= PAR_MIN_WORK))
    for (int64_t r = 0; r < R; r++) {
        float *q = st->scratch + (size_t)thread_id() * 2 * (size_t)V;
        const float *p = P + r * V;
        float *d = ql->grad + r * V;
        double psum = 0.0;
        for (int64_t j = 0; j < V; j++)
            psum += (double)p[j];
        /* d/dz_j = (sum p) q_j - p_j: exact also when p does not sum to 1 */
        row_exp(q, ql->data + r * V, NULL, V, s, st->lse_q[r], (float)psum);
        for (int64_t j = 0; j < V; j++)
            d[j] += scale * (q[j] - p[j]);
    }
}

rlab_tensor *rlab_t_soft_xent(rlab_tape *t, const float *p, rlab_tensor *q_logits, float temp)
{
    const char *name = "soft_xent";
    if (t->err.code)
        return &t->poison;
    if (rlab_t_bad((const rlab_tensor *const *)&q_logits, 1))
        return rlab_tape_fail(t, RLAB_EINVAL, "%s: invalid input tensor", name);
    if (!p && q_logits->n > 0)
        return rlab_tape_fail(t, RLAB_EINVAL, "%s: NULL target probabilities", name);
    if (!(temp > 0.0f))
        return rlab_tape_fail(t, RLAB_EINVAL, "%s: temperature %g must be > 0", name, (double)temp);
    const int64_t R = rlab_t_rows(q_logits), V = rlab_t_cols(q_logits);
    rlab_tensor *out = loss_node(t, name, &q_logits, 1, soft_xent_backward);
    if (out->flags & RLAB_T_POISON)
        return out;
    rowsm_state *st = rowsm_new(t, R, V);
    if (!st)
        return &t->poison;
    out->aux[0] = st;
    out->ext[0] = p;
    out->p.f[0] = temp;
    const float s = 1.0f / temp;
    RLAB_OMP(omp parallel for schedule(static) if (R * V >= PAR_MIN_WORK))
    for (int64_t r = 0; r < R; r++) {
        const float *y = q_logits->data + r * V, *pr = p + r * V;
        const float lse = row_lse(y, V, row_max(y, V), s);
        st->lse_q[r] = lse;
        /* -sum_j p_j (s y_j - lse) */
        double acc = 0.0;
        for (int64_t j = 0; j < V; j++)
            acc += (double)pr[j] * ((double)lse - (double)(s * y[j]));
        st->val[r] = (float)acc;
    }
    out->data[0] = mean_of(st->val, R);
    return out;
}
