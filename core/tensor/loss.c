/*
 * core/tensor/loss: every loss is one fused tape op returning a scalar [1], with its kernels
 * (forward and backward side by side, float* + shape comments) in this file. Nothing here
 * depends on ops.c/nn.c: the matrix products are direct cblas_sgemm calls, except the logits
 * of the full-softmax losses (the packed-panel kernel of panel.c) and, in their fused mode,
 * all three of their products (panel.c's rlab_k_xent_dh / rlab_k_xent_dt in the backward).
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
#include "tensor/kernels.h"

#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
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
#define RLAB_HOT RLAB_CLONES("avx2", "default")

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

/* With AVX-512F, row_exp_sum runs 16 lanes per step: v16_exp is v8_exp's formula lane by lane
 * (the same operations, no FMA contraction), and each 16-lane result is added to the 8-lane
 * accumulator as its low then its high half, the order in which the 8-lane loop adds the
 * same two vectors. So the values and the sum are bit-identical to the 8-lane code's. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(RLAB_NO_CLONES)
#define RLAB_HAVE_V16 1
typedef float v16f __attribute__((vector_size(64)));
typedef int32_t v16i __attribute__((vector_size(64)));

__attribute__((target("avx512f"))) static int64_t row_exp_sum16(float *y, const float *x, int64_t n,
                                                                float s, float shift, v8f *acc)
{
    const v16f lo = (v16f){0} - 87.3f, hi = (v16f){0} + 88.37f;
    const v16f magic = (v16f){0} + 12582912.0f;
    int64_t j = 0;
    for (; j + 16 <= n; j += 16) {
        v16f v;
        memcpy(&v, x + j, sizeof v);
        v16f t = v * s - shift;
        t = (v16f)((((v16i)lo) & (v16i)(t < lo)) | (((v16i)t) & ~(v16i)(t < lo)));
        t = (v16f)((((v16i)hi) & (v16i)(t > hi)) | (((v16i)t) & ~(v16i)(t > hi)));
        v16f kf = (t * 1.44269504f + magic) - magic;
        v16f r = (t - kf * 0.693359375f) - kf * -2.12194440e-4f;
        v16f p = (v16f){0} + 1.0f / 5040.0f;
        p = p * r + 1.0f / 720.0f;
        p = p * r + 1.0f / 120.0f;
        p = p * r + 1.0f / 24.0f;
        p = p * r + 1.0f / 6.0f;
        p = p * r + 0.5f;
        p = p * r + 1.0f;
        p = p * r + 1.0f;
        v16i k = __builtin_convertvector(kf, v16i);
        v16f e = p * (v16f)((k + 127) << 23) * 1.0f;
        memcpy(y + j, &e, sizeof e);
        v8f h0, h1;
        memcpy(&h0, &e, sizeof h0);
        memcpy(&h1, (const char *)&e + sizeof h0, sizeof h1);
        *acc += h0;
        *acc += h1;
    }
    return j;
}
#endif

/* y[j] = exp(s * x[j] - shift) for j < n (y may be x); returns sum_j y[j] (fixed lane order).
 * The values are bit-identical to row_exp(y, x, NULL, n, s, shift, 1.0f). */
RLAB_HOT static float row_exp_sum(float *y, const float *x, int64_t n, float s, float shift)
{
    v8f acc = v8_set(0.0f);
    int64_t j = 0;
#ifdef RLAB_HAVE_V16
    if (rlab_k_avx512())
        j = row_exp_sum16(y, x, n, s, shift, &acc);
#endif
    for (; j + 8 <= n; j += 8) {
        v8f e = v8_exp(v8_load(x + j) * s - shift) * 1.0f;
        memcpy(y + j, &e, sizeof e);
        acc += e;
    }
    if (j < n) {
        v8f e = v8_exp(v8_load_tail(x + j, n - j, 0.0f) * s - shift) * 1.0f;
        memcpy(y + j, &e, (size_t)(n - j) * sizeof(float));
        for (int64_t l = n - j; l < 8; l++)
            e[l] = 0.0f;
        acc += e;
    }
    return v8_hsum(acc);
}

/* max_j x[j] over x[n] (-inf when n == 0) and *sum = sum_j x[j] (fixed lane order). */
#ifdef RLAB_HAVE_V16
/* row_max_sum's main loop on 16 floats per step, as two 8-lane steps in the same order (the
 * low half first), so the maximum and the sum are bit-identical to the 8-lane loop's. */
__attribute__((target("avx512f"))) static int64_t row_max_sum16(const float *x, int64_t n, v8f *m,
                                                                v8f *acc)
{
    int64_t j = 0;
    for (; j + 16 <= n; j += 16) {
        v16f v;
        memcpy(&v, x + j, sizeof v);
        v8f h0, h1;
        memcpy(&h0, &v, sizeof h0);
        memcpy(&h1, (const char *)&v + sizeof h0, sizeof h1);
        *m = v8_select(h0 > *m, h0, *m);
        *acc += h0;
        *m = v8_select(h1 > *m, h1, *m);
        *acc += h1;
    }
    return j;
}
#endif

RLAB_HOT static float row_max_sum(const float *x, int64_t n, float *sum)
{
    v8f m = v8_set(-INFINITY), acc = v8_set(0.0f);
    int64_t j = 0;
#ifdef RLAB_HAVE_V16
    if (rlab_k_avx512())
        j = row_max_sum16(x, n, &m, &acc);
#endif
    for (; j + 8 <= n; j += 8) {
        v8f v = v8_load(x + j);
        m = v8_select(v > m, v, m);
        acc += v;
    }
    float mm = v8_hmax(m), s = v8_hsum(acc);
    for (; j < n; j++) {
        mm = x[j] > mm ? x[j] : mm;
        s += x[j];
    }
    *sum = s;
    return mm;
}

/* sum_j a[j] over a[n] and *dot = sum_j a[j] b[j] (fixed lane order). */
RLAB_HOT static float row_sum_dot(const float *a, const float *b, int64_t n, float *dot)
{
    v8f sa = v8_set(0.0f), sd = v8_set(0.0f);
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
        v8f va = v8_load(a + j);
        sa += va;
        sd += va * v8_load(b + j);
    }
    float s = v8_hsum(sa), d = v8_hsum(sd);
    for (; j < n; j++) {
        s += a[j];
        d += a[j] * b[j];
    }
    *dot = d;
    return s;
}

/* d[j] += scale * (psum * exp(s * y[j] - shift) - p[j]) for j < n: the soft-target
 * cross-entropy gradient of one row, without a scratch row. */
RLAB_HOT static void row_soft_grad(float *d, const float *y, const float *p, int64_t n, float s,
                                   float shift, float psum, float scale)
{
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
        v8f g =
            v8_load(d + j) + (v8_exp(v8_load(y + j) * s - shift) * psum - v8_load(p + j)) * scale;
        memcpy(d + j, &g, sizeof g);
    }
    for (; j < n; j++) {
        v8f e = v8_exp(v8_set(y[j] * s - shift));
        d[j] += (e[0] * psum - p[j]) * scale;
    }
}

/* y[k] += a x[k] for k < n (y and x do not overlap): the per-row updates of the CE backward
 * (dense weight rows, sparse target rows), vectorised. */
RLAB_HOT static void row_axpy(float *restrict y, float a, const float *restrict x, int64_t n)
{
    RLAB_OMP(omp simd)
    for (int64_t k = 0; k < n; k++)
        y[k] += a * x[k];
}

/* y[k] += a[J] x[J xs + k] for J < m, J ascending, for k < n (no overlap): m row_axpy calls in
 * one, y kept in registers from one J to the next (the same float operations in the same
 * order); the fused backward's sum of a row's per-block dh parts */
RLAB_HOT static void row_axpy_many(float *restrict y, const float *restrict a,
                                   const float *restrict x, int64_t m, int64_t xs, int64_t n)
{
    int64_t k0 = 0;
    for (; k0 + 16 <= n; k0 += 16) {
        float v[16];
        for (int l = 0; l < 16; l++)
            v[l] = y[k0 + l];
        for (int64_t J = 0; J < m; J++) {
            const float aj = a[J], *xj = x + J * xs + k0;
            RLAB_OMP(omp simd)
            for (int l = 0; l < 16; l++)
                v[l] += aj * xj[l];
        }
        for (int l = 0; l < 16; l++)
            y[k0 + l] = v[l];
    }
    for (; k0 < n; k0++) {
        float v = y[k0];
        for (int64_t J = 0; J < m; J++)
            v += a[J] * x[J * xs + k0];
        y[k0] = v;
    }
}

/* y[k] = a x[k] for k < n (no overlap): the fused backward's scaled rows of h, vectorised (the
 * plain loop stayed scalar: ~2% of a SASRec epoch); one product per element, as before. */
RLAB_HOT static void row_scale(float *restrict y, float a, const float *restrict x, int64_t n)
{
    RLAB_OMP(omp simd)
    for (int64_t k = 0; k < n; k++)
        y[k] = a * x[k];
}

/* y[k] += x[k] in double for k < n: a block's item column sums (TED's base), each column's sum
 * in the order of the calls (the scalar loop was ~0.5% of a MQSA-TED epoch) */
RLAB_HOT static void row_add_f64(double *restrict y, const float *restrict x, int64_t n)
{
    RLAB_OMP(omp simd)
    for (int64_t k = 0; k < n; k++)
        y[k] += (double)x[k];
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
/* body(arg[k]) for k < nt, k >= 1 on new pthreads and k = 0 on the caller; a thread that
 * cannot be created has its arg run inline after the others are joined (same result). */
static void on_threads(void *(*body)(void *), void *const *arg, int nt)
{
    pthread_t th[ROWS_MAX_THREADS];
    int started[ROWS_MAX_THREADS] = {0};
    for (int k = 1; k < nt; k++)
        started[k] = pthread_create(&th[k], NULL, body, arg[k]) == 0;
    body(arg[0]);
    for (int k = 1; k < nt; k++) {
        if (started[k])
            pthread_join(th[k], NULL);
        else
            body(arg[k]);
    }
}

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
    void *arg[ROWS_MAX_THREADS];
    for (int k = 0; k < nt; k++) {
        jobs[k] = (rows_job){fn, ctx, n * k / nt, n * (k + 1) / nt};
        arg[k] = &jobs[k];
    }
    on_threads(rows_thread, arg, nt);
}

/* fn(ctx, b, slot) for the blocks b < nb, handed out dynamically to nt = blocks_threads(nb)
 * pthreads (the caller is one of them; nt passed in, so per-thread scratch sized from it
 * cannot be outrun when the thread count changes in between): on a shared machine a descheduled
 * thread's blocks go to the other. OpenBLAS runs single-threaded meanwhile (each block is one
 * sgemm). Which thread runs a block changes nothing: blocks write disjoint outputs. slot < nt
 * numbers the thread: no two threads run with the same slot at once (per-thread
 * scratch). */
typedef void (*blocks_fn)(void *ctx, int64_t b, int slot);

typedef struct blocks_job {
    blocks_fn fn;
    void *ctx;
    int64_t nb;
    atomic_llong next;
} blocks_job;

typedef struct blocks_arg {
    blocks_job *job;
    int slot;
} blocks_arg;

static void *blocks_thread(void *p)
{
    const blocks_arg *a = p;
    blocks_job *j = a->job;
    for (;;) {
        const int64_t b = (int64_t)atomic_fetch_add(&j->next, 1);
        if (b >= j->nb)
            return NULL;
        j->fn(j->ctx, b, a->slot);
    }
}

/* the threads parallel_blocks runs nb blocks on */
static int blocks_threads(int64_t nb)
{
    int nt = rlab_t_num_threads();
    nt = nt < ROWS_MAX_THREADS ? nt : ROWS_MAX_THREADS;
    nt = nb < nt ? (int)nb : nt;
    return nt < 1 ? 1 : nt;
}

void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);

static void parallel_blocks(blocks_fn fn, void *ctx, int64_t nb, int nt)
{
    blocks_job job = {.fn = fn, .ctx = ctx, .nb = nb};
    atomic_init(&job.next, 0);
    /* single-threaded blocks also when they all run on this thread: OpenBLAS's threaded
     * result differs in rounding, and the results must not depend on the thread count */
    const int bt = openblas_get_num_threads();
    if (bt > 1)
        openblas_set_num_threads(1);
    blocks_arg ba[ROWS_MAX_THREADS];
    void *arg[ROWS_MAX_THREADS];
    for (int k = 0; k < nt; k++) { /* one shared job: the threads take its blocks in turn */
        ba[k] = (blocks_arg){&job, k};
        arg[k] = &ba[k];
    }
    on_threads(blocks_thread, arg, nt);
    if (bt > 1)
        openblas_set_num_threads(bt);
}

/* ---- soft cross-entropy against an item table (full softmax CE and sparse-target TED) ---- */
/*
 * One engine for rlab_t_softmax_xent (hard targets) and rlab_t_soft_xent_items (sparse soft
 * targets). For row i of the compacted rows (nv of them) and s = 1 / temp:
 *
 *   x_i    = hc_i items^T (+ bias)          [V], hc_i = h[rows[i]] (rows NULL: h[i])
 *   p_i    = base_i + sum_k delta_k e_{col_k}   (CE: base 0, one entry col = target, delta 1)
 *   loss_i = psum_i lse_i - s (p_i . x_i),  lse_i = s m_i + log S_i,
 *            S_i = sum_j exp(s (x_ij - m_i)),  m_i = max_j x_ij
 *   dL/dx_i = c s (psum_i exp(s x_i - lse_i) - p_i),  c = g / nv
 *
 * Forward: the logits of a group of rows come from the packed-panel kernel (panel.c: the
 * item table packed once per call, the row maxima in the same pass; cblas_sgemm per chunk
 * when it is not available or with a bias), then each row becomes e_ij = exp(s (x_ij - m_i))
 * in place while it is still in L2. When the e rows of all nv rows fit in 3/4 of the free
 * arena they are kept ("keep" mode) and the backward runs on them directly: 3 passes over
 * [nv, V, C] (logits, dh, d_items) instead of 4. Otherwise one [chunk, V] buffer is reused and
 * the backward recomputes each chunk's e from the saved m_i (bit-identical to the forward's).
 * The backward never forms G = dL/dx densely: with a_i = psum_i / S_i,
 *
 *   dh_i     += c s (a_i (e_i items) - base_i colsum(items) - sum_k delta_k items[col_k])
 *   d_items  += e^T (c s a_i hc_i)_i - (sum_i c s base_i hc_i) on every row
 *               - c s delta_k hc_i on row col_k
 *   d_bias_j += c s (sum_i a_i e_ij - sum_i base_i) - c s delta_k at col_k
 *
 * so per [V]-row the backward does no arithmetic besides its two sgemms, which run in fixed
 * blocks (sx_bwd_block) on our own threads.
 */
typedef struct sx_state {
    int64_t nv, chunk, V, C;
    float s;             /* 1 / temp */
    int keep;            /* buf holds e of all nv rows */
    const int32_t *rows; /* [nv] row of h of compacted row i; NULL = identity */
    const float *base;   /* [nv] or NULL (0) */
    const int64_t *off;  /* [nv + 1] or NULL: entry i is row i's only one */
    const int32_t *col;  /* [nnz] columns */
    int sorted;          /* fused mode: off set and every row's columns non-decreasing (TED's
                            teacher rows are): a block finds its entries by bisection */
    const float *delta;  /* [nnz] or NULL (all 1) */
    float *m, *S, *psum; /* [nv] */
    float *buf;          /* keep: [nv, V]; else [chunk, V] */
    float *hc;           /* keep: [nv, C]; else [chunk, C] (rows NULL + keep: h->data) */
    float *dhc, *hs;     /* [block, C] */
    const float *panel;  /* items packed for rlab_k_panel_logits, or NULL (cblas_sgemm) */
    /* fused mode (sx_forward_fused): buf holds e of all nv rows, block by block of items */
    int fused;
    int64_t nb; /* item blocks of SX_VB items; buf is [nb][nv][SX_LDB] (block-major) */
    /* mb, sb, db are written by the block threads: block-major, so that two threads on
     * neighbouring blocks never write the same cache line (row-major [nv, nb], the two threads
     * wrote the same lines for every row: false sharing, ~20% of a CE op's CPU on 2 threads) */
    float *mb;   /* [nb, nv] block maxima */
    float *fb;   /* [nv, nb] exp(s mb - s m) (written serially, read by the threads) */
    float *sb;   /* [nb, nv] block sums of e */
    double *db;  /* [nb, nv] block parts of the target dot */
    float *slot; /* [nb, nv, C] per block: the block's raw dh */
    float *a;    /* [nv] backward row weights */
    float *pbuf; /* fused: per thread slot, one block of items packed for the panel kernel */
    float *hp;   /* hc packed once for rlab_k_panel_logits_packed, or NULL (every block packed
                    its rows again: ~1.4% of a SASRec epoch) */
    int stream;  /* e by non-temporal stores (e_bytes >= SX_STREAM_MIN) */
} sx_state;

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

static int64_t sx_beg(const sx_state *st, int64_t i) { return st->off ? st->off[i] : i; }
static int64_t sx_end(const sx_state *st, int64_t i) { return st->off ? st->off[i + 1] : i + 1; }
static float sx_delta(const sx_state *st, int64_t k) { return st->delta ? st->delta[k] : 1.0f; }
static float sx_base(const sx_state *st, int64_t i) { return st->base ? st->base[i] : 0.0f; }
static int nonzero(float x) { return x < 0.0f || x > 0.0f; }

/* st->sorted: the first entry of row i with a column >= j (the row's end when none) */
static int64_t sx_first_at(const sx_state *st, int64_t i, int64_t j)
{
    int64_t lo = sx_beg(st, i), hi = sx_end(st, i);
    while (lo < hi) {
        const int64_t mid = lo + (hi - lo) / 2;
        if (st->col[mid] < j)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Arguments of the row loops below: rows [c0 + r0, c0 + r1) of the compacted order. */
typedef struct sx_rows_ctx {
    const sx_state *st;
    float *blk;        /* [r, V] logits -> e in place */
    const float *hc;   /* [r, C] gathered rows (panel path: the logits are computed here) */
    const float *bias; /* [V] or NULL */
    int64_t c0;
    double *loss; /* [nv] (forward only) */
    int panel;    /* the logits come from the panel kernel in the row loop */
} sx_rows_ctx;

/* Rows per rlab_k_panel_logits call in the row loops: 12 rows of logits (12 V floats, 580 KB
 * at V = 12101) stay in the 1 MB L2 for the exp pass that follows. */
#define SX_PANEL_ROWS 12

/* Forward of row r of the chunk: (+ bias), m (have_m: already in st->m), target dot, e in
 * place, S, psum, loss. */
static void sx_row_forward(const sx_rows_ctx *c, int64_t r, int have_m)
{
    const sx_state *st = c->st;
    const int64_t V = st->V;
    const float s = st->s;
    const int64_t i = c->c0 + r;
    float *x = c->blk + r * V;
    const float b = sx_base(st, i);
    float xsum = 0.0f, m;
    if (have_m) {
        m = st->m[i];
        if (nonzero(b))
            row_max_sum(x, V, &xsum);
    } else if (c->bias)
        m = row_max_addbias(x, c->bias, V);
    else if (nonzero(b))
        m = row_max_sum(x, V, &xsum);
    else
        m = row_max(x, V);
    if (!have_m && c->bias && nonzero(b))
        row_max_sum(x, V, &xsum);
    double dot = (double)b * (double)xsum, psum = (double)b * (double)V;
    for (int64_t k = sx_beg(st, i); k < sx_end(st, i); k++) {
        dot += (double)sx_delta(st, k) * (double)x[st->col[k]];
        psum += (double)sx_delta(st, k);
    }
    const float S = row_exp_sum(x, x, V, s, s * m);
    const double lse = (double)(s * m) + log((double)S);
    st->m[i] = m;
    st->S[i] = S;
    st->psum[i] = (float)psum;
    c->loss[i] = psum * lse - (double)s * dot;
}

/* Forward rows [r0, r1) of the chunk: logits by cblas_sgemm before (chunk_logits), or here by
 * the panel kernel in L2-sized groups (with the row maxima), then the row pass. */
static void sx_rows_forward(void *p, int64_t r0, int64_t r1)
{
    const sx_rows_ctx *c = p;
    const sx_state *st = c->st;
    if (!c->panel) {
        for (int64_t r = r0; r < r1; r++)
            sx_row_forward(c, r, 0);
        return;
    }
    for (int64_t g = r0; g < r1; g += SX_PANEL_ROWS) {
        const int64_t n = r1 - g < SX_PANEL_ROWS ? r1 - g : SX_PANEL_ROWS;
        rlab_k_panel_logits(c->blk + g * st->V, st->V, st->m + c->c0 + g, c->hc + g * st->C, n,
                            st->C, st->panel, st->V);
        for (int64_t r = g; r < g + n; r++)
            sx_row_forward(c, r, 1);
    }
}

/* Backward recompute of rows (keep == 0): logits (+ bias) -> e with the saved m. */
static void sx_rows_recompute(void *p, int64_t r0, int64_t r1)
{
    const sx_rows_ctx *c = p;
    const sx_state *st = c->st;
    float mx[SX_PANEL_ROWS];
    for (int64_t g = r0; g < r1; g += SX_PANEL_ROWS) {
        const int64_t n = r1 - g < SX_PANEL_ROWS ? r1 - g : SX_PANEL_ROWS;
        if (c->panel) /* the forward's logits, bit for bit */
            rlab_k_panel_logits(c->blk + g * st->V, st->V, mx, c->hc + g * st->C, n, st->C,
                                st->panel, st->V);
        for (int64_t r = g; r < g + n; r++) {
            float *x = c->blk + r * st->V;
            row_exp(x, x, c->bias, st->V, st->s, st->s * st->m[c->c0 + r], 1.0f);
        }
    }
}

/* dbias[V] += sum_i w[i] e[i, :] over columns [j0, j1) (rows in order). */
typedef struct colsum_ctx {
    const float *G;
    const float *w;
    int64_t r, V;
    float *dbias;
} colsum_ctx;

static void colsum_add(void *p, int64_t j0, int64_t j1)
{
    const colsum_ctx *c = p;
    for (int64_t i = 0; i < c->r; i++) {
        const float *g = c->G + i * c->V;
        const float w = c->w[i];
        for (int64_t j = j0; j < j1; j++)
            c->dbias[j] += w * g[j];
    }
}

static void touch_all_rows(rlab_tensor *t)
{
    if ((t->flags & RLAB_T_PARAM) && t->aux[0])
        memset(t->aux[0], 1, (size_t)rlab_t_rows(t));
}

/* The two backward products over e [r, V] in fixed blocks, each one single-threaded sgemm
 * (parallel_blocks): dhc [r, C] = e items by SX_DH_BLOCKS blocks of rows, and
 * d_items [V, C] += e^T hs by SX_DI_BLOCKS blocks of items (each packs only its own columns
 * of e). The blocks do not depend on the thread count, so neither do the results. Measured
 * on 2 cores (Beauty SASRec backward): faster than OpenBLAS's own threading of the two calls,
 * whose threads wait for each other between packed panels. */
/* Each dh block packs the whole item table again: 2 blocks were 5-10% faster per CPU-second
 * than 4 (one thread, 512 x 12,101 x 64, SkylakeX kernels) with the same bits, and the 8
 * d_items blocks keep two threads balanced. */
#define SX_DH_BLOCKS 2
#define SX_DI_BLOCKS 8

typedef struct sx_bwd_ctx {
    const float *e, *items, *hs;
    float *dhc, *ditems; /* NULL: not needed */
    int64_t r, V, C, ndh;
} sx_bwd_ctx;

static void sx_bwd_block(void *p, int64_t b, int thread_slot)
{
    (void)thread_slot;
    const sx_bwd_ctx *c = p;
    const int64_t r = c->r, V = c->V, C = c->C;
    if (b < c->ndh) {
        const int64_t i0 = r * b / c->ndh, i1 = r * (b + 1) / c->ndh;
        if (i1 > i0)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(i1 - i0), (int)C, (int)V,
                        1.0f, c->e + i0 * V, (int)V, c->items, (int)C, 0.0f, c->dhc + i0 * C,
                        (int)C);
        return;
    }
    b -= c->ndh;
    const int64_t j0 = V * b / SX_DI_BLOCKS, j1 = V * (b + 1) / SX_DI_BLOCKS;
    if (j1 > j0)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)(j1 - j0), (int)C, (int)r, 1.0f,
                    c->e + j0, (int)V, c->hs, (int)C, 1.0f, c->ditems + j0 * C, (int)C);
}

/* Backward of compacted rows [c0, c0 + r): e in blk [r, V], gathered rows in hc [r, C]. */
static void sx_backward_block(const sx_state *st, rlab_tensor *h, rlab_tensor *items,
                              rlab_tensor *bias, float cs, const float *colsum, int64_t c0,
                              int64_t r, const float *blk, const float *hc, float *wsum)
{
    const int64_t V = st->V, C = st->C;
    float *a = st->hs + r * C; /* [r] per-row weights after hs (allocated with room) */
    for (int64_t i = 0; i < r; i++)
        a[i] = cs * st->psum[c0 + i] / st->S[c0 + i];
    if (items->grad) /* hs = the a_i-scaled rows for d_items */
        for (int64_t i = 0; i < r; i++)
            for (int64_t k = 0; k < C; k++)
                st->hs[i * C + k] = a[i] * hc[i * C + k];
    /* dhc[r, C] = e[r, V] items[V, C];  d_items[V, C] += e[r, V]^T hs[r, C] */
    sx_bwd_ctx bc = {.e = blk,
                     .items = items->data,
                     .hs = st->hs,
                     .dhc = h->grad ? st->dhc : NULL,
                     .ditems = items->grad,
                     .r = r,
                     .V = V,
                     .C = C,
                     .ndh = h->grad ? SX_DH_BLOCKS : 0};
    const int64_t nbb = bc.ndh + (items->grad ? SX_DI_BLOCKS : 0);
    parallel_blocks(sx_bwd_block, &bc, nbb, blocks_threads(nbb));
    if (h->grad) {
        for (int64_t i = 0; i < r; i++) {
            const int64_t gi = c0 + i;
            float *dst = h->grad + (st->rows ? (int64_t)st->rows[gi] : gi) * C;
            const float *src = st->dhc + i * C;
            row_axpy(dst, a[i], src, C);
            const float b = cs * sx_base(st, gi);
            if (nonzero(b))
                row_axpy(dst, -b, colsum, C);
            for (int64_t q = sx_beg(st, gi); q < sx_end(st, gi); q++)
                row_axpy(dst, -cs * sx_delta(st, q), items->data + (int64_t)st->col[q] * C, C);
        }
    }
    if (items->grad) {
        /* the sparse target rows of d_items */
        for (int64_t i = 0; i < r; i++) {
            const int64_t gi = c0 + i;
            const float b = cs * sx_base(st, gi);
            if (nonzero(b))
                row_axpy(wsum, b, hc + i * C, C);
            for (int64_t q = sx_beg(st, gi); q < sx_end(st, gi); q++)
                row_axpy(items->grad + (int64_t)st->col[q] * C, -cs * sx_delta(st, q), hc + i * C,
                         C);
        }
    }
    if (bias && bias->grad) {
        colsum_ctx cc = {.G = blk, .w = a, .r = r, .V = V, .dbias = bias->grad};
        parallel_rows(colsum_add, &cc, V, r);
        double bsum = 0.0;
        for (int64_t i = 0; i < r; i++)
            bsum += (double)(cs * sx_base(st, c0 + i));
        if (bsum < 0.0 || bsum > 0.0)
            for (int64_t j = 0; j < V; j++)
                bias->grad[j] -= (float)bsum;
        for (int64_t i = 0; i < r; i++)
            for (int64_t q = sx_beg(st, c0 + i); q < sx_end(st, c0 + i); q++)
                bias->grad[st->col[q]] -= cs * sx_delta(st, q);
    }
}

/* y[j] = exp(s x[j] - shift) for j < n and their sum, for the fused mode (AVX-512F only, so
 * free to use FMA): the same range reduction and degree-7 Taylor polynomial as v8_exp, but
 * Horner by fused multiply-adds and 2^k by scalef. Agrees with v8_exp to about an ulp (not
 * bit for bit); the sum runs in 16 lanes in a fixed order. Measured: ~40% fewer cycles per
 * element than row_exp_sum16. */
#ifdef RLAB_HAVE_V16
#include <immintrin.h>

#include "exp512_internal.h"
__attribute__((target("avx512f"))) static float exp_sum_fma(float *y, const float *x, int64_t n,
                                                            float s, float shift, int stream)
{
    /* stream and y 64-byte aligned (the fused mode's large e): full vectors by non-temporal stores.
     * e of a 512-row chunk is 25 MB on Beauty, far beyond L2, read back only in the backward: plain
     * stores first read every line they write (measured on this machine, 25 MB, one thread:
     * 8 GB/s with stores, 22 GB/s streaming; the read-back 14-15 GB/s either way). Same
     * values; the caller fences (_mm_sfence) before another thread reads them. */
    const int nt = stream && ((uintptr_t)y & 63) == 0;
    const __m512 vs = _mm512_set1_ps(s), vsh = _mm512_set1_ps(shift);
    const __m512 lo = _mm512_set1_ps(-87.3f), hi = _mm512_set1_ps(88.37f);
    __m512 acc = _mm512_setzero_ps();
    for (int64_t j = 0; j < n; j += 16) {
        const __mmask16 m = n - j >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - j)) - 1u);
        __m512 t = _mm512_fmsub_ps(_mm512_maskz_loadu_ps(m, x + j), vs, vsh);
        t = _mm512_min_ps(hi, _mm512_max_ps(lo, t)); /* a NaN in t passes (second operand) */
        const __m512 e = rlab_exp512(t);
        if (nt && m == (__mmask16)0xffff)
            _mm512_stream_ps(y + j, e);
        else
            _mm512_mask_storeu_ps(y + j, m, e);
        acc = _mm512_mask_add_ps(acc, m, acc, e);
    }
    float l[16];
    _mm512_storeu_ps(l, acc);
    float sum = 0.0f;
    for (int q = 0; q < 16; q++)
        sum += l[q];
    return sum;
}
#endif

/* ---- the fused mode: item blocks, no packing, no sgemm (h-ce) ---------------------------- */
/*
 * With AVX-512F, no bias, C in {16, 32, 48, 64} and room for e of all nv rows, the loss runs
 * on blocks of SX_VB items instead of chunks of rows. Block J (items [j0, j0 + n)) is one
 * task for parallel_blocks, in the forward
 *
 *   P_J    = the block's items packed (panel layout; it stays in L2 for the whole block)
 *   x      = hc items_J^T, 24 rows at a time (rlab_k_panel_logits), with the block maxima mb
 *   e_J    = exp(s x - s mb) in place while the rows are in L1, sb = their sums; the target
 *            logits (and for a base, the row sums of x) are read before the exp -> db
 *
 * and in the backward, with w_iJ = a_i exp(s mb_iJ - s m_i) (a_i = c s psum_i / S_i as in the
 * row mode):
 *
 *   d_items_J += e_J^T (w_iJ hc_i)_i          (rlab_k_xent_dt: rows of J only this block's)
 *   slot_J     = e_J items_J                  (rlab_k_xent_dh, raw; its rows scaled later)
 *
 * then dh_i = sum_J w_iJ slot_J,i, J ascending. Each e_J is read twice in the backward while
 * it is still in L2; nothing is packed besides P_J, and the item table is read once per block
 * per pass (the sgemm path packed e twice and the items once per 256-row chunk). The row
 * statistics combine per row in block order: m_i = max_J mb_iJ, S_i = sum_J sb_iJ
 * exp(s mb_iJ - s m_i). Blocks write disjoint outputs and every sum has a fixed order, so
 * results do not depend on the thread count or on which thread ran which block. Compared
 * with the row mode the loss and gradients agree to float rounding (the row sums are formed
 * per block and rescaled; the backward's products accumulate in another order).
 */
#define SX_VB 512 /* items per block: e_J [512 rows, 512] is 1 MB, P_J 128 KB at C = 64 */
#define SX_FR 24  /* rows per panel-kernel call in the forward */
_Static_assert(SX_FR % RLAB_K_PANEL_ROW_TILE == 0,
               "the forward's row groups start at packed tiles (hp + g C)");
/* Rows per pass of the backward products: dh brings the pass's e rows in from memory
 * (prefetched), dt then reads them from L2. 128 rows of e_J (270 KB) stay in L2 beside the
 * block's items, hs and d_items rows; with 512 (1.1 MB) some were evicted before dt read them
 * (one CE op, 570 x 12,101 x 64, 2 threads: 4% less CPU at 128 than at 512; 64 in between). */
#define SX_BR 128
/* Row stride of e within a block: the block's rows lie together (one 1 MB stretch instead of
 * 512 rows 48 KB apart: 8x fewer pages per tile), 33 cache lines apart so that successive
 * rows fall in different L1 sets (a stride of exactly 32 lines would put them in two). */
#define SX_LDB (SX_VB + 16)
/* e streams past the caches (non-temporal stores) only when it is larger than a last-level
 * cache would hold anyway: measured on this machine (no L3 to speak of) from 25 MB; a 4-9 MB
 * e (MovieLens) may stay cached elsewhere for the backward */
#define SX_STREAM_MIN ((size_t)16 << 20)
/* Fewer rows stay in the row mode: the blocks' share of a few rows is too small to pay for
 * the threads of parallel_blocks twice per loss (the row mode's forward needs none). */
#define SX_FUSED_MIN_ROWS 64

typedef struct sxf_ctx {
    sx_state *st;
    const float *items; /* [V, C] */
    float *ditems;      /* [V, C] or NULL */
    int dh;             /* h needs a gradient */
} sxf_ctx;

static void sxf_fwd_block(void *p, int64_t J, int thread_slot)
{
    const sxf_ctx *c = p;
    sx_state *st = c->st;
    const int64_t V = st->V, C = st->C, nv = st->nv;
    const int64_t j0 = J * SX_VB, n = V - j0 < SX_VB ? V - j0 : SX_VB;
    const float s = st->s;
    /* the block's items packed into this thread's scratch, which stays in L2 from block to
     * block (a [V, C] table written once per op went to memory: ~2% of a SASRec epoch) */
    float *PJ = st->pbuf + (int64_t)thread_slot * (int64_t)rlab_k_panel_floats(SX_VB, C);
    rlab_k_panel_pack(PJ, c->items + j0 * C, n, C);
    /* a base (TED) needs sum_j x_ij over the block: h_i . (sum_j items_j), 64 products per row
     * instead of a pass over the row's 512 logits */
    double csum[64];
    int has_base = 0;
    for (int64_t i = 0; st->base && i < nv && !has_base; i++)
        has_base = nonzero(st->base[i]);
    if (has_base) {
        for (int64_t k = 0; k < C; k++)
            csum[k] = 0.0;
        for (int64_t j = 0; j < n; j++)
            row_add_f64(csum, c->items + (j0 + j) * C, C);
    }
    /* the logits of SX_FR rows go to a scratch tile that stays in L1/L2 (the kernel's scattered
     * stores into the large e buffer cost it a fifth of its speed), e then row by row */
    float mx[SX_FR], lg[SX_FR * SX_VB];
    for (int64_t g = 0; g < nv; g += SX_FR) {
        const int64_t rows = nv - g < SX_FR ? nv - g : SX_FR;
        float *e0 = st->buf + (J * nv + g) * SX_LDB;
        if (!st->hp || rlab_k_panel_logits_packed(lg, SX_VB, mx, st->hp + g * C, rows, C, PJ, n))
            rlab_k_panel_logits(lg, SX_VB, mx, st->hc + g * C, rows, C, PJ, n);
        for (int64_t r = 0; r < rows; r++) {
            const int64_t i = g + r;
            const float *x = lg + r * SX_VB;
            const float b = sx_base(st, i);
            double dot = 0.0;
            if (nonzero(b)) {
                /* four chains (C is a multiple of 16 here): one serial chain of C double adds
                 * per row and block was ~4% of a TED loss */
                const float *hi = st->hc + i * C;
                double x0 = 0.0, x1 = 0.0, x2 = 0.0, x3 = 0.0;
                for (int64_t k = 0; k < C; k += 4) {
                    x0 += (double)hi[k] * csum[k];
                    x1 += (double)hi[k + 1] * csum[k + 1];
                    x2 += (double)hi[k + 2] * csum[k + 2];
                    x3 += (double)hi[k + 3] * csum[k + 3];
                }
                dot = (double)b * ((x0 + x1) + (x2 + x3));
            }
            /* the row's entries in this block, in entry order (sorted: only those; TED rows
             * have dozens to hundreds of entries, and every block scanned them all) */
            const int64_t kend = sx_end(st, i);
            for (int64_t k = st->sorted ? sx_first_at(st, i, j0) : sx_beg(st, i); k < kend; k++) {
                const int64_t j = (int64_t)st->col[k] - j0;
                if (j >= 0 && j < n)
                    dot += (double)sx_delta(st, k) * (double)x[j];
                else if (st->sorted && j >= n)
                    break;
            }
            st->mb[J * nv + i] = mx[r];
#ifdef RLAB_HAVE_V16
            st->sb[J * nv + i] = exp_sum_fma(e0 + r * SX_LDB, x, n, s, s * mx[r], st->stream);
#else
            st->sb[J * nv + i] = row_exp_sum(e0 + r * SX_LDB, x, n, s, s * mx[r]);
#endif
            st->db[J * nv + i] = dot;
        }
    }
#ifdef RLAB_HAVE_V16
    _mm_sfence(); /* exp_sum_fma's non-temporal stores, before the backward reads them */
#endif
}

static void sxf_bwd_block(void *p, int64_t J, int thread_slot)
{
    (void)thread_slot;
    const sxf_ctx *c = p;
    const sx_state *st = c->st;
    const int64_t V = st->V, C = st->C, nv = st->nv, nb = st->nb;
    const int64_t j0 = J * SX_VB, n = V - j0 < SX_VB ? V - j0 : SX_VB;
    /* rows in chunks of SX_BR: dh first, which prefetches e_J's rows from memory (written
     * there by the forward's non-temporal stores), then d_items on them from L2 (the other
     * order left d_items waiting on memory: 1.7x the time of dh for the same flops) */
    float hs[SX_BR * 64]; /* C <= 64 in the fused mode */
    for (int64_t i0 = 0; i0 < nv; i0 += SX_BR) {
        const int64_t r = nv - i0 < SX_BR ? nv - i0 : SX_BR;
        float *slot = st->slot + (J * nv + i0) * C;
        const float *e = st->buf + (J * nv + i0) * SX_LDB;
        if (c->dh && rlab_k_xent_dh(slot, 0, e, SX_LDB, r, n, c->items + j0 * C, C))
            rlab_ref_xent_dh(slot, 0, e, SX_LDB, r, n, c->items + j0 * C, C);
        if (c->ditems) {
            for (int64_t i = 0; i < r; i++) {
                const float w = st->a[i0 + i] * st->fb[(i0 + i) * nb + J];
                row_scale(hs + i * C, w, st->hc + (i0 + i) * C, C);
            }
            float *dt = c->ditems + j0 * C;
            if (rlab_k_xent_dt(dt, e, SX_LDB, r, n, hs, C))
                rlab_ref_xent_dt(dt, e, SX_LDB, r, n, hs, C);
        }
    }
}

/* rows [r0, r1): h->grad[row_i] += sum_J w_iJ slot_J,i (J ascending), then the target terms
 * of the row: - cs base_i colsum(items) - cs delta_q items[col_q] (entries in order) */
typedef struct sxf_dh_ctx {
    const sx_state *st;
    float *hgrad;
    const float *items, *colsum;
    float cs;
} sxf_dh_ctx;

static void sxf_dh_rows(void *p, int64_t r0, int64_t r1)
{
    const sxf_dh_ctx *c = p;
    const sx_state *st = c->st;
    const int64_t C = st->C, nv = st->nv, nb = st->nb;
    for (int64_t i = r0; i < r1; i++) {
        float *dst = c->hgrad + (st->rows ? (int64_t)st->rows[i] : i) * C;
        float w[64]; /* the blocks' weights, 64 blocks at a time */
        for (int64_t J0 = 0; J0 < nb; J0 += 64) {
            const int64_t m = nb - J0 < 64 ? nb - J0 : 64;
            for (int64_t J = 0; J < m; J++)
                w[J] = st->a[i] * st->fb[i * nb + J0 + J];
            row_axpy_many(dst, w, st->slot + (J0 * nv + i) * C, m, nv * C, C);
        }
        const float b = c->cs * sx_base(st, i);
        if (nonzero(b))
            row_axpy(dst, -b, c->colsum, C);
        for (int64_t q = sx_beg(st, i); q < sx_end(st, i); q++)
            row_axpy(dst, -c->cs * sx_delta(st, q), c->items + (int64_t)st->col[q] * C, C);
    }
}

/* items [j0, j1): d_items[col_q] -= cs delta_q hc_i for the target entries q of every row i
 * whose column falls in the range, rows and entries in order (each item row gets its terms in
 * the serial order, whichever thread owns its range) */
typedef struct sxf_dt_ctx {
    const sx_state *st;
    float *ditems;
    float cs;
} sxf_dt_ctx;

static void sxf_target_items(void *p, int64_t j0, int64_t j1)
{
    const sxf_dt_ctx *c = p;
    const sx_state *st = c->st;
    const int64_t C = st->C;
    for (int64_t i = 0; i < st->nv; i++)
        for (int64_t q = st->sorted ? sx_first_at(st, i, j0) : sx_beg(st, i); q < sx_end(st, i);
             q++) {
            const int64_t j = st->col[q];
            if (j >= j0 && j < j1)
                row_axpy(c->ditems + j * C, -c->cs * sx_delta(st, q), st->hc + i * C, C);
            else if (st->sorted && j >= j1)
                break;
        }
}

static void sx_backward_fused(sx_state *st, rlab_tensor *h, rlab_tensor *items, float cs,
                              const float *colsum, float *wsum)
{
    const int64_t nv = st->nv, C = st->C;
    for (int64_t i = 0; i < nv; i++)
        st->a[i] = cs * st->psum[i] / st->S[i];
    sxf_ctx fc = {.st = st, .items = items->data, .ditems = items->grad, .dh = h->grad != NULL};
    parallel_blocks(sxf_bwd_block, &fc, st->nb, blocks_threads(st->nb));
    if (h->grad) {
        sxf_dh_ctx dc = {
            .st = st, .hgrad = h->grad, .items = items->data, .colsum = colsum, .cs = cs};
        const int64_t nnz = st->off ? st->off[nv] : nv;
        parallel_rows(sxf_dh_rows, &dc, nv, (st->nb + 1 + nnz / (nv ? nv : 1)) * C);
    }
    if (items->grad) {
        for (int64_t i = 0; i < nv; i++) {
            const float b = cs * sx_base(st, i);
            if (nonzero(b))
                row_axpy(wsum, b, st->hc + i * C, C);
        }
        /* the sparse target rows of d_items, split by item range: TED's 512-row chunks have
         * thousands of entries (serial, they were ~1.5% of a MQSA-TED epoch) */
        sxf_dt_ctx tc = {.st = st, .ditems = items->grad, .cs = cs};
        const int64_t nnz = st->off ? st->off[nv] : nv;
        if (nnz * C >= ((int64_t)1 << 18))
            parallel_rows(sxf_target_items, &tc, st->V, nnz * C / st->V + 1);
        else
            sxf_target_items(&tc, 0, st->V);
    }
}

static int sx_keep_allowed = 1;
static int sx_fused_allowed = 1;

int rlab_t_loss_set_fused(int fused)
{
    int old = sx_fused_allowed;
    sx_fused_allowed = fused != 0;
    return old;
}

/* rows [r0, r1) of the fused forward: the row statistics from the blocks' parts, block by
 * block in order (each row on its own: the rows split over threads with the same bits) */
typedef struct sxf_stats_ctx {
    sx_state *st;
    double *loss;
} sxf_stats_ctx;

static void sxf_row_stats(void *p, int64_t r0, int64_t r1)
{
    const sxf_stats_ctx *c = p;
    sx_state *st = c->st;
    const int64_t nv = st->nv, nb = st->nb, V = st->V;
    const float s = st->s;
    double *loss = c->loss;
    for (int64_t i = r0; i < r1; i++) {
        const float *mb = st->mb + i; /* mb[J * nv]: block J's maximum */
        float m = mb[0];
        for (int64_t J = 1; J < nb; J++)
            m = mb[J * nv] > m ? mb[J * nv] : m;
        double S = 0.0, dot = 0.0, psum = (double)sx_base(st, i) * (double)V;
        for (int64_t J = 0; J < nb; J++) {
            const float f = (float)exp((double)(s * mb[J * nv]) - (double)(s * m));
            st->fb[i * nb + J] = f;
            S += (double)st->sb[J * nv + i] * (double)f;
            dot += st->db[J * nv + i];
        }
        for (int64_t k = sx_beg(st, i); k < sx_end(st, i); k++)
            psum += (double)sx_delta(st, k);
        st->m[i] = m;
        st->S[i] = (float)S;
        st->psum[i] = (float)psum;
        loss[i] = psum * ((double)(s * m) + log(S)) - (double)s * dot;
    }
}

/* The fused forward (see above) when its conditions hold and its buffers fit: returns 1 and
 * fills st and loss[nv]; 0 when the caller should take the row mode (nothing kept). */
static int sx_forward_fused(rlab_tape *t, sx_state *st, rlab_tensor *h, rlab_tensor *items,
                            rlab_tensor *bias, double *loss)
{
    const int64_t nv = st->nv, V = st->V, C = st->C;
    if (!sx_fused_allowed || !sx_keep_allowed || bias || nv < SX_FUSED_MIN_ROWS ||
        !rlab_k_xent_available(C) || (!h->grad && !items->grad))
        return 0;
    const int64_t nb = (V + SX_VB - 1) / SX_VB;
    const size_t e_bytes = (size_t)(nb * nv) * SX_LDB * sizeof(float);
    st->stream = e_bytes >= SX_STREAM_MIN;
    const size_t slot_bytes = (size_t)(nb * nv * C) * sizeof(float);
    /* one packed block of items per thread (sxf_fwd_block) */
    const int nt = blocks_threads(nb);
    const size_t P_bytes = (size_t)nt * rlab_k_panel_floats(SX_VB, C) * sizeof(float);
    const size_t hc_bytes = st->rows ? (size_t)(nv * C) * sizeof(float) : 0;
    const size_t hp_bytes = rlab_k_panel_rows_floats(nv, C) * sizeof(float);
    const size_t small = (size_t)(nv * nb) * (3 * sizeof(float) + sizeof(double)) +
                         (size_t)nv * sizeof(float) + 10 * 64;
    const size_t need = e_bytes + slot_bytes + P_bytes + hc_bytes + hp_bytes + small;
    const size_t free_b = t->arena->cap - t->arena->used;
    if (need > free_b - free_b / 4)
        return 0;
    const size_t mark = rlab_arena_mark(t->arena);
    st->buf = rlab_arena_alloc(t->arena, e_bytes);
    st->slot = rlab_arena_alloc(t->arena, slot_bytes);
    st->pbuf = rlab_arena_alloc(t->arena, P_bytes);
    st->panel = NULL; /* the row mode's packed table: not used */
    st->mb = rlab_arena_alloc(t->arena, (size_t)(nv * nb) * sizeof(float));
    st->fb = rlab_arena_alloc(t->arena, (size_t)(nv * nb) * sizeof(float));
    st->sb = rlab_arena_alloc(t->arena, (size_t)(nv * nb) * sizeof(float));
    st->db = rlab_arena_alloc(t->arena, (size_t)(nv * nb) * sizeof(double));
    st->a = rlab_arena_alloc(t->arena, (size_t)nv * sizeof(float));
    st->hc = st->rows ? rlab_arena_alloc(t->arena, hc_bytes) : h->data;
    st->hp = rlab_arena_alloc(t->arena, hp_bytes);
    if (!st->buf || !st->slot || !st->pbuf || !st->mb || !st->fb || !st->sb || !st->db || !st->a ||
        !st->hc) {
        rlab_arena_rewind(t->arena, mark);
        st->buf = st->slot = st->pbuf = st->hc = st->hp = NULL;
        st->panel = NULL;
        return 0;
    }
    st->fused = st->keep = 1;
    st->nb = nb;
    st->chunk = nv;
    if (st->rows)
        gather_rows(h->data, st->rows, nv, C, st->hc);
    if (st->hp && rlab_k_panel_rows_pack(st->hp, st->hc, nv, C))
        st->hp = NULL; /* rlab_k_panel_logits packs per call */
    st->sorted = st->off != NULL;
    for (int64_t i = 0; st->sorted && i < nv; i++)
        for (int64_t k = st->off[i] + 1; k < st->off[i + 1]; k++)
            if (st->col[k] < st->col[k - 1]) {
                st->sorted = 0;
                break;
            }
    sxf_ctx fc = {.st = st, .items = items->data};
    parallel_blocks(sxf_fwd_block, &fc, nb, nt);
    sxf_stats_ctx sc = {.st = st, .loss = loss};
    parallel_rows(sxf_row_stats, &sc, nv, nb * 16);
    return 1;
}

/* out[k] = sum_j items[j, k] (j ascending) for the columns of 16-column groups [g0, g1): each
 * column's sum in the serial order, whichever thread runs its group (TED: a 3 MB table per
 * call; serial, it was ~1% of a MQSA-TED epoch's CPU, all of it on the critical path) */
typedef struct items_colsum_ctx {
    const float *items;
    float *out;
    int64_t V, C;
} items_colsum_ctx;

static void items_colsum(void *p, int64_t g0, int64_t g1)
{
    const items_colsum_ctx *c = p;
    const int64_t k0 = g0 * 16, k1 = g1 * 16 < c->C ? g1 * 16 : c->C;
    for (int64_t j = 0; j < c->V; j++)
        row_axpy(c->out + k0, 1.0f, c->items + j * c->C + k0, k1 - k0);
}

/* rows [r0, r1) of x [n, C]: x_j -= w (the base terms of every row of d_items) */
typedef struct sub_rows_ctx {
    float *x;
    const float *w;
    int64_t C;
} sub_rows_ctx;

static void sub_rows(void *p, int64_t r0, int64_t r1)
{
    const sub_rows_ctx *c = p;
    for (int64_t j = r0; j < r1; j++)
        row_axpy(c->x + j * c->C, -1.0f, c->w, c->C);
}

static void sx_backward(rlab_tape *tape, rlab_tensor *out)
{
    sx_state *st = out->aux[0];
    rlab_tensor *h = out->src[0], *items = out->src[1], *bias = out->src[2];
    if (st->nv == 0)
        return;
    const int64_t V = st->V, C = st->C;
    const float cs = out->grad[0] / (float)st->nv * st->s;
    const float *b = bias ? bias->data : NULL;
    if (items->grad)
        touch_all_rows(items);
    int has_base = 0;
    for (int64_t i = 0; st->base && i < st->nv && !has_base; i++)
        has_base = nonzero(st->base[i]);
    float *colsum = NULL, *wsum = NULL;
    if (has_base) {
        colsum = rlab_tape_calloc(tape, (size_t)C * sizeof(float));
        wsum = rlab_tape_calloc(tape, (size_t)C * sizeof(float));
        if (!colsum || !wsum)
            return;
        items_colsum_ctx ic = {.items = items->data, .out = colsum, .V = V, .C = C};
        parallel_rows(items_colsum, &ic, (C + 15) / 16, V * 16);
    }
    if (st->fused) {
        sx_backward_fused(st, h, items, cs, colsum, wsum);
    } else if (st->keep) {
        sx_backward_block(st, h, items, bias, cs, colsum, 0, st->nv, st->buf, st->hc, wsum);
    } else {
        for (int64_t c0 = 0; c0 < st->nv; c0 += st->chunk) {
            const int64_t r = st->nv - c0 < st->chunk ? st->nv - c0 : st->chunk;
            const float *hc = st->hc;
            if (st->rows)
                gather_rows(h->data, st->rows + c0, r, C, st->hc);
            else
                hc = h->data + c0 * C;
            /* the panel kernel when the forward used it and it is still switched on */
            const int panel = st->panel && rlab_k_panel_available();
            if (!panel)
                chunk_logits(hc, items->data, r, V, C, st->buf);
            sx_rows_ctx rc = {
                .st = st, .blk = st->buf, .hc = hc, .bias = b, .c0 = c0, .panel = panel};
            parallel_rows(sx_rows_recompute, &rc, r, V * (panel ? C : 1));
            sx_backward_block(st, h, items, bias, cs, colsum, c0, r, st->buf, hc, wsum);
        }
    }
    if (has_base && items->grad) {
        sub_rows_ctx sc = {.x = items->grad, .w = wsum, .C = C};
        parallel_rows(sub_rows, &sc, V, C);
    }
}

int rlab_t_loss_set_keep(int keep)
{
    int old = sx_keep_allowed;
    sx_keep_allowed = keep != 0;
    return old;
}

/* rlab_k_panel_pack over panels [p0, p1) of the table: packing the sub-table that starts at
 * item 16 p0 writes exactly that part of the whole packed table, so the panels can be split
 * between threads (one 3 MB table per loss call on Beauty: serial, it was ~2% of an epoch). */
typedef struct pack_ctx {
    float *P;
    const float *items;
    int64_t V, C, pw; /* pw: items per panel */
} pack_ctx;

static void pack_panels(void *p, int64_t p0, int64_t p1)
{
    const pack_ctx *c = p;
    const int64_t v0 = p0 * c->pw, v1 = p1 * c->pw < c->V ? p1 * c->pw : c->V;
    rlab_k_panel_pack(c->P + v0 * c->C, c->items + v0 * c->C, v1 - v0, c->C);
}

/* The shared forward: st has nv, V, C, s, rows, the target description; allocates the
 * buffers (keep when it fits), runs the chunks and returns the mean loss. */
static int sx_forward(rlab_tape *t, sx_state *st, rlab_tensor *h, rlab_tensor *items,
                      rlab_tensor *bias, int64_t chunk, float *mean)
{
    const int64_t nv = st->nv, V = st->V, C = st->C;
    if (chunk > nv)
        chunk = nv > 0 ? nv : 1;
    st->chunk = chunk;
    const size_t n1 = (size_t)(nv ? nv : 1);
    st->m = rlab_tape_alloc(t, n1 * sizeof(float));
    st->S = rlab_tape_alloc(t, n1 * sizeof(float));
    st->psum = rlab_tape_alloc(t, n1 * sizeof(float));
    double *loss = rlab_tape_alloc(t, n1 * sizeof(double));
    if (t->err.code)
        return -1;
    if (sx_forward_fused(t, st, h, items, bias, loss))
        goto mean;
    /* the items packed for the panel kernel when it runs and they fit (no bias: the row max
     * it returns would miss it); otherwise cblas_sgemm on the items as they are */
    if (!bias && nv > 0 && rlab_k_panel_available()) {
        float *P = rlab_arena_alloc(t->arena, rlab_k_panel_floats(V, C) * sizeof(float));
        if (P) {
            const int64_t pw = (int64_t)rlab_k_panel_floats(1, 1);
            pack_ctx pc = {.P = P, .items = items->data, .V = V, .C = C, .pw = pw};
            parallel_rows(pack_panels, &pc, (V + pw - 1) / pw, pw * C);
            st->panel = P;
        }
    }
    /* keep the e rows of every row when they fit in 3/4 of the free arena */
    const size_t keep_bytes = (size_t)nv * (size_t)V * sizeof(float) + 64;
    const size_t free_b = t->arena->cap - t->arena->used;
    st->keep = sx_keep_allowed && nv > 0 && keep_bytes <= free_b - free_b / 4;
    st->buf = st->keep ? rlab_arena_alloc(t->arena, keep_bytes) : NULL;
    if (!st->buf) { /* chunk mode: one buffer, recompute in the backward */
        st->keep = 0;
        st->buf = rlab_tape_alloc(t, (size_t)(chunk * V) * sizeof(float) + 1);
        if (!st->buf)
            return -1;
    }
    const int64_t blk_rows = st->keep ? nv : chunk;
    if (st->rows || !st->keep)
        st->hc = rlab_tape_alloc(t, (size_t)(blk_rows * C) * sizeof(float) + 1);
    else
        st->hc = h->data;
    /* hs: [blk, C] scaled rows, then [blk] per-row weights */
    st->hs = rlab_tape_alloc(t, (size_t)(blk_rows * (C + 1)) * sizeof(float) + 1);
    st->dhc = h->grad ? rlab_tape_alloc(t, (size_t)(blk_rows * C) * sizeof(float) + 1) : NULL;
    if (t->err.code)
        return -1;
    if (st->keep && st->rows)
        gather_rows(h->data, st->rows, nv, C, st->hc);
    const float *b = bias ? bias->data : NULL;
    for (int64_t c0 = 0; c0 < nv; c0 += chunk) {
        const int64_t r = nv - c0 < chunk ? nv - c0 : chunk;
        const float *hc;
        float *blk = st->keep ? st->buf + c0 * V : st->buf;
        if (st->keep)
            hc = st->hc + c0 * C;
        else if (st->rows) {
            gather_rows(h->data, st->rows + c0, r, C, st->hc);
            hc = st->hc;
        } else
            hc = h->data + c0 * C;
        if (!st->panel)
            chunk_logits(hc, items->data, r, V, C, blk);
        sx_rows_ctx rc = {.st = st,
                          .blk = blk,
                          .hc = hc,
                          .bias = b,
                          .c0 = c0,
                          .loss = loss,
                          .panel = !!st->panel};
        parallel_rows(sx_rows_forward, &rc, r, V * (st->panel ? C : 1));
    }
mean:;
    double sum = 0.0; /* serial, in double: independent of the thread count */
    for (int64_t i = 0; i < nv; i++)
        sum += loss[i];
    *mean = nv ? (float)(sum / (double)nv) : 0.0f;
    return 0;
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
    rlab_tensor *out = rlab_tape_op(t, name, 1, (int64_t[]){1}, src, nsrc, sx_backward);
    if (out->flags & RLAB_T_POISON)
        return out;
    sx_state *st = rlab_tape_calloc(t, sizeof *st);
    int32_t *rows = rlab_tape_alloc(t, (size_t)(nv ? nv : 1) * sizeof(int32_t));
    int32_t *tgt = rlab_tape_alloc(t, (size_t)(nv ? nv : 1) * sizeof(int32_t));
    if (t->err.code)
        return &t->poison;
    /* compaction: only rows with a target go through the sgemm */
    for (int64_t i = 0, k = 0; i < N; i++)
        if (targets[i] >= 0) {
            rows[k] = (int32_t)i;
            tgt[k++] = targets[i];
        }
    st->nv = nv;
    st->V = V;
    st->C = C;
    st->s = 1.0f;
    st->rows = rows;
    st->col = tgt;
    out->aux[0] = st;
    out->ext[0] = targets;
    out->src[2] = bias;
    float mean = 0.0f;
    if (sx_forward(t, st, h, items, bias, chunk_rows > 0 ? chunk_rows : 256, &mean))
        return &t->poison;
    out->p.i[0] = st->chunk;
    out->p.i[1] = st->keep;
    out->p.i[2] = st->fused; /* the mode, for tests */
    out->data[0] = mean;
    return out;
}

rlab_tensor *rlab_t_soft_xent_items(rlab_tape *t, rlab_tensor *h, rlab_tensor *items,
                                    const float *base, const int64_t *off, const int32_t *col,
                                    const float *delta, float temp, int64_t chunk_rows)
{
    const char *name = "soft_xent_items";
    if (t->err.code)
        return &t->poison;
    rlab_tensor *src[2] = {h, items};
    if (rlab_t_bad((const rlab_tensor *const *)src, 2))
        return rlab_tape_fail(t, RLAB_EINVAL, "%s: invalid input tensor", name);
    char b1[64], b2[64];
    const int64_t C = rlab_t_cols(h), R = rlab_t_rows(h), V = rlab_t_rows(items);
    if (items->ndim != 2 || rlab_t_cols(items) != C)
        return rlab_tape_fail(t, RLAB_EINVAL, "%s: h %s and items %s: need items [V, C]", name,
                              rlab_t_shape_str(h, b1, sizeof b1),
                              rlab_t_shape_str(items, b2, sizeof b2));
    if (!(temp > 0.0f))
        return rlab_tape_fail(t, RLAB_EINVAL, "%s: temperature %g must be > 0", name, (double)temp);
    if (V > INT32_MAX || C > INT32_MAX || R > INT32_MAX)
        return rlab_tape_fail(t, RLAB_EINVAL, "%s: dimensions exceed int32", name);
    if (R > 0 && (!base || !off))
        return rlab_tape_fail(t, RLAB_EINVAL, "%s: NULL base or offsets", name);
    if (R > 0 && off[0] != 0)
        return rlab_tape_fail(t, RLAB_EINVAL, "%s: off[0] = %lld, must be 0", name,
                              (long long)off[0]);
    for (int64_t i = 0; i < R; i++) {
        if (off[i + 1] < off[i])
            return rlab_tape_fail(t, RLAB_EINVAL, "%s: offsets decrease at row %lld", name,
                                  (long long)i);
        for (int64_t k = off[i]; k < off[i + 1]; k++)
            if (!col || !delta || col[k] < 0 || col[k] >= V)
                return rlab_tape_fail(
                    t, RLAB_EINVAL, "%s: entry %lld of row %lld: column %d not in [0, %lld)", name,
                    (long long)k, (long long)i, col ? (int)col[k] : -1, (long long)V);
    }
    rlab_tensor *out = rlab_tape_op(t, name, 1, (int64_t[]){1}, src, 2, sx_backward);
    if (out->flags & RLAB_T_POISON)
        return out;
    out->src[2] = NULL;
    sx_state *st = rlab_tape_calloc(t, sizeof *st);
    if (!st)
        return &t->poison;
    st->nv = R;
    st->V = V;
    st->C = C;
    st->s = 1.0f / temp;
    st->base = base;
    st->off = off;
    st->col = col;
    st->delta = delta;
    out->aux[0] = st;
    out->p.f[0] = temp;
    float mean = 0.0f;
    if (sx_forward(t, st, h, items, NULL, chunk_rows > 0 ? chunk_rows : 256, &mean))
        return &t->poison;
    out->p.i[1] = st->keep;
    out->p.i[2] = st->fused;
    out->data[0] = mean;
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
    float *lse_p, *lse_q, *val; /* [R] each (soft_xent: lse_p holds sum_j p_j) */
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

/* Rows [r0, r1) of soft_xent's forward / backward (vectorised float rows, no scratch). */
typedef struct soft_rows_ctx {
    const rowsm_state *st;
    const float *P, *y;
    float *d;
    float s, scale;
} soft_rows_ctx;

static void soft_rows_forward(void *p, int64_t r0, int64_t r1)
{
    const soft_rows_ctx *c = p;
    const int64_t V = c->st->V;
    for (int64_t r = r0; r < r1; r++) {
        const float *y = c->y + r * V, *pr = c->P + r * V;
        const float lse = row_lse(y, V, row_max(y, V), c->s);
        c->st->lse_q[r] = lse;
        /* -sum_j p_j (s y_j - lse) = lse sum_j p_j - s sum_j p_j y_j */
        float dot;
        const float psum = row_sum_dot(pr, y, V, &dot);
        c->st->lse_p[r] = psum;
        c->st->val[r] = (float)((double)lse * (double)psum - (double)c->s * (double)dot);
    }
}

static void soft_rows_backward(void *p, int64_t r0, int64_t r1)
{
    const soft_rows_ctx *c = p;
    const int64_t V = c->st->V;
    /* d/dz_j = (sum p) q_j - p_j: exact also when p does not sum to 1 */
    for (int64_t r = r0; r < r1; r++)
        row_soft_grad(c->d + r * V, c->y + r * V, c->P + r * V, V, c->s, c->st->lse_q[r],
                      c->st->lse_p[r], c->scale);
}

static void soft_xent_backward(rlab_tape *tape, rlab_tensor *out)
{
    (void)tape;
    const rowsm_state *st = out->aux[0];
    rlab_tensor *ql = out->src[0];
    const int64_t R = st->R, V = st->V;
    if (R == 0 || !ql->grad)
        return;
    const float s = 1.0f / out->p.f[0];
    soft_rows_ctx c = {.st = st,
                       .P = out->ext[0],
                       .y = ql->data,
                       .d = ql->grad,
                       .s = s,
                       .scale = out->grad[0] / (float)R * s};
    parallel_rows(soft_rows_backward, &c, R, V);
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
    soft_rows_ctx c = {.st = st, .P = p, .y = q_logits->data, .s = 1.0f / temp};
    parallel_rows(soft_rows_forward, &c, R, V);
    out->data[0] = mean_of(st->val, R);
    return out;
}
