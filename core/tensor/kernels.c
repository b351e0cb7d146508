/*
 * core/tensor/kernels: fast kernels (sgemm, OpenMP over rows) and their naive reference twins.
 * Every parallel loop uses a static schedule over independent rows (or fixed blocks), so no
 * float sum ever depends on how the work was split between threads.
 */
#include "tensor/kernels.h"

#include "tensor/ops_internal.h"

#include <cblas.h>
#include <math.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* OpenBLAS extensions (see tape.c). */
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);

/* ---- counter-based hash ------------------------------------------------------------------ */
#define GOLDEN 0x9e3779b97f4a7c15ull

/* splitmix64's finaliser: a bijective 64-bit mix with good avalanche. */
static inline uint64_t fin64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline uint64_t stream_key(uint64_t seed, uint64_t step, uint64_t node)
{
    uint64_t k = fin64(seed + GOLDEN);
    k = fin64(k ^ (step + 2 * GOLDEN));
    return fin64(k ^ (node + 3 * GOLDEN));
}

uint64_t rlab_k_hash4(uint64_t seed, uint64_t step, uint64_t node, uint64_t i)
{
    /* element i of a splitmix64 stream whose state is the key */
    return fin64(stream_key(seed, step, node) + (i + 1) * GOLDEN);
}

/* murmur3's 32-bit finaliser: bijective, so distinct i never collide within one key */
static inline uint32_t fin32(uint32_t h)
{
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    return h ^ (h >> 16);
}

void rlab_k_zero(void *p, size_t bytes)
{
    if (!p || !bytes)
        return;
#ifdef _OPENMP
    if (bytes >= RLAB_K_ZERO_PAR_MIN && omp_get_max_threads() > 1 && !omp_in_parallel()) {
        /* pieces of 256 KB (the last shorter), contiguous runs of them per thread */
        const size_t piece = (size_t)1 << 18, np = (bytes + piece - 1) / piece;
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < np; i++)
            memset((char *)p + i * piece, 0, i + 1 < np ? piece : bytes - i * piece);
        return;
    }
#endif
    memset(p, 0, bytes);
}

void rlab_k_dropout_mask(uint8_t *mask, int64_t n, float p, uint64_t seed, uint64_t step,
                         uint64_t node)
{
    const uint64_t key = stream_key(seed, step, node);
    const uint32_t klo = (uint32_t)key, khi = (uint32_t)(key >> 32);
    /* keep iff u >= p with u the top 24 bits as a fraction (exact in float) */
    const uint32_t thresh = (uint32_t)((double)p * 16777216.0);
#pragma omp parallel for simd schedule(static) if (parallel : n >= RLAB_K_PAR_MIN)
    for (int64_t i = 0; i < n; i++)
        mask[i] = (fin32(((uint32_t)i * 0x9e3779b9u + klo) ^ khi) >> 8) >= thresh;
}

/* ---- matmul ------------------------------------------------------------------------------- */
static inline CBLAS_TRANSPOSE tr(int t) { return t ? CblasTrans : CblasNoTrans; }

/*
 * Tall-skinny products (M rows >> N, K: the projections of a transformer, [B*T, 64] x [64, 64])
 * are split over row blocks here instead of inside OpenBLAS: MM_ROW_BLOCKS blocks of rows,
 * handed out dynamically to OpenMP threads, each block one single-threaded sgemm. OpenBLAS's
 * own threading of such a product runs its threads in lockstep (they share packed panels), so
 * on a busy machine one descheduled thread stalls the other; independent blocks handed out
 * dynamically let the running thread take over the work instead. Rows do not interact, so
 * the split changes no result. The weight gradient sums over the M rows: it is cut into
 * MM_SUM_BLOCKS fixed blocks (whatever the thread count) whose partial products go to a
 * scratch buffer and are added in block order, so it too is deterministic.
 */
#define MM_ROW_BLOCKS 16
#define MM_SUM_BLOCKS 8
#define MM_SPLIT_MIN_WORK (1 << 22) /* multiply-adds M N K */

static int mm_tall(int64_t M, int64_t N, int64_t K)
{
    const int64_t w = N > K ? N : K;
    return M >= 8 * w && M >= 64 * MM_ROW_BLOCKS && w <= 1024 &&
           (double)M * (double)N * (double)K >= (double)MM_SPLIT_MIN_WORK;
}

/* The threads a parallel region would get (1 without OpenMP). */
static int lin_threads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

static int omp_split_ok(void)
{
#ifdef _OPENMP
    return !omp_in_parallel();
#else
    return 1;
#endif
}

/* Run OpenBLAS single-threaded inside our parallel loops; returns the previous setting. */
static int blas_solo_begin(void)
{
    const int bt = openblas_get_num_threads();
    if (bt > 1)
        openblas_set_num_threads(1);
    return bt;
}

static void blas_solo_end(int bt)
{
    if (bt > 1)
        openblas_set_num_threads(bt);
}

/* Products below this many multiply-adds run on one OpenBLAS thread: a threaded sgemm hands
 * half of a ~0.1 ms product to OpenBLAS's worker and then spins on sched_yield until that
 * worker is done, which on a busy machine (the worker descheduled) burns more CPU than the
 * product. Measured (perf, Beauty SASRec epoch, 2 cores, load 10): the model's backward
 * products on [~750, 64] x [64, 64] spent 10% of the epoch's CPU in exec_blas_async_wait's
 * yield loop. Larger products keep OpenBLAS's threads (or our row split, mm_tall). The split
 * is over rows and columns of C, so the result does not change. */
#define MM_SOLO_MAX_WORK (1 << 24)

static int mm_small(int64_t M, int64_t N, int64_t K)
{
    return (double)M * (double)N * (double)K < (double)MM_SOLO_MAX_WORK;
}

size_t rlab_k_matmul_scratch_floats(int64_t M, int64_t N, int64_t K)
{
    return mm_tall(M, N, K) ? (size_t)(MM_SUM_BLOCKS - 1) * (size_t)(K * N) : 0;
}

void rlab_k_matmul_fwd(float *C, const float *A, const float *B, int64_t M, int64_t N, int64_t K,
                       int ta, int tb)
{
    // C [M, N] = op(A) [M, K] op(B) [K, N]; A stored [M,K] (or [K,M] when ta), B [K,N] / [N,K]
    if (M == 0 || N == 0)
        return;
    if (K == 0) {
        memset(C, 0, (size_t)(M * N) * sizeof *C);
        return;
    }
    const int lda = (int)(ta ? M : K), ldb = (int)(tb ? K : N);
    if (mm_tall(M, N, K) && omp_split_ok()) {
        const int bt = blas_solo_begin();
#pragma omp parallel for schedule(dynamic, 1)
        for (int c = 0; c < MM_ROW_BLOCKS; c++) {
            const int64_t r0 = M * c / MM_ROW_BLOCKS, r1 = M * (c + 1) / MM_ROW_BLOCKS;
            // rows [r0, r1) of op(A): A + r0 K, or columns r0.. of the stored [K, M]
            cblas_sgemm(CblasRowMajor, tr(ta), tr(tb), (int)(r1 - r0), (int)N, (int)K, 1.0f,
                        A + (ta ? r0 : r0 * K), lda, B, ldb, 0.0f, C + r0 * N, (int)N);
        }
        blas_solo_end(bt);
        return;
    }
    const int bt = mm_small(M, N, K) && omp_split_ok() ? blas_solo_begin() : 1;
    cblas_sgemm(CblasRowMajor, tr(ta), tr(tb), (int)M, (int)N, (int)K, 1.0f, A, lda, B, ldb, 0.0f,
                C, (int)N);
    blas_solo_end(bt);
}

/* dA += d op(A) for rows [r0, r1) of op(A) */
static void matmul_bwd_a(float *dA, const float *dC, const float *B, int64_t M, int64_t N,
                         int64_t K, int ta, int tb, int64_t r0, int64_t r1)
{
    const int ldb = (int)(tb ? K : N), mb = (int)(r1 - r0);
    if (!ta) /* dA [mb, K] += dC [mb, N] op(B)^T [N, K] */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, tr(!tb), mb, (int)K, (int)N, 1.0f, dC + r0 * N,
                    (int)N, B, ldb, 1.0f, dA + r0 * K, (int)K);
    else /* dA [K, mb] (columns r0.. of [K, M]) += op(B) [K, N] dC^T [N, mb] */
        cblas_sgemm(CblasRowMajor, tr(tb), CblasTrans, (int)K, mb, (int)N, 1.0f, B, ldb,
                    dC + r0 * N, (int)N, 1.0f, dA + r0, (int)M);
}

/* D (beta 0: =, 1: +=) the rows [r0, r1) part of d op(B) = op(A)^T dC, in dB's stored layout */
static void matmul_bwd_b(float *D, const float *dC, const float *A, int64_t M, int64_t N, int64_t K,
                         int ta, int tb, int64_t r0, int64_t r1, float beta)
{
    const int lda = (int)(ta ? M : K), mb = (int)(r1 - r0);
    const float *Ar = A + (ta ? r0 : r0 * K);
    if (!tb) /* D [K, N] = op(A)^T [K, mb] dC [mb, N] */
        cblas_sgemm(CblasRowMajor, tr(!ta), CblasNoTrans, (int)K, (int)N, mb, 1.0f, Ar, lda,
                    dC + r0 * N, (int)N, beta, D, (int)N);
    else /* D [N, K] = dC^T [N, mb] op(A) [mb, K] */
        cblas_sgemm(CblasRowMajor, CblasTrans, tr(ta), (int)N, (int)K, mb, 1.0f, dC + r0 * N,
                    (int)N, Ar, lda, beta, D, (int)K);
}

void rlab_k_matmul_bwd_ws(float *dA, float *dB, const float *dC, const float *A, const float *B,
                          int64_t M, int64_t N, int64_t K, int ta, int tb, float *scratch)
{
    if (M == 0 || N == 0 || K == 0 || (!dA && !dB))
        return;
    if (!mm_tall(M, N, K) || !omp_split_ok() || (dB && !scratch)) {
        const int bt = mm_small(M, N, K) && omp_split_ok() ? blas_solo_begin() : 1;
        if (dA)
            matmul_bwd_a(dA, dC, B, M, N, K, ta, tb, 0, M);
        if (dB)
            matmul_bwd_b(dB, dC, A, M, N, K, ta, tb, 0, M, 1.0f);
        blas_solo_end(bt);
        return;
    }
    /* one loop: MM_ROW_BLOCKS blocks of dA rows, then MM_SUM_BLOCKS blocks of the dB sum
     * (block 0 adds straight into dB, the others into scratch, added in order below) */
    const int na = dA ? MM_ROW_BLOCKS : 0, nb = dB ? MM_SUM_BLOCKS : 0;
    const int bt = blas_solo_begin();
#pragma omp parallel for schedule(dynamic, 1)
    for (int c = 0; c < na + nb; c++) {
        if (c < na) {
            matmul_bwd_a(dA, dC, B, M, N, K, ta, tb, M * c / na, M * (c + 1) / na);
        } else {
            const int j = c - na;
            float *D = j == 0 ? dB : scratch + (size_t)(j - 1) * (size_t)(K * N);
            matmul_bwd_b(D, dC, A, M, N, K, ta, tb, M * j / nb, M * (j + 1) / nb,
                         j == 0 ? 1.0f : 0.0f);
        }
    }
    blas_solo_end(bt);
    if (dB) {
        const int64_t kn = K * N;
        for (int j = 1; j < nb; j++) {
            const float *s = scratch + (size_t)(j - 1) * (size_t)kn;
#pragma omp simd
            for (int64_t i = 0; i < kn; i++)
                dB[i] += s[i];
        }
    }
}

void rlab_k_matmul_bwd(float *dA, float *dB, const float *dC, const float *A, const float *B,
                       int64_t M, int64_t N, int64_t K, int ta, int tb)
{
    /* no scratch: dB by one sgemm; dA may still be split over rows */
    if (M == 0 || N == 0 || K == 0)
        return;
    if (dA)
        rlab_k_matmul_bwd_ws(dA, NULL, dC, A, B, M, N, K, ta, tb, NULL);
    if (dB) {
        const int bt = mm_small(M, N, K) && omp_split_ok() ? blas_solo_begin() : 1;
        matmul_bwd_b(dB, dC, A, M, N, K, ta, tb, 0, M, 1.0f);
        blas_solo_end(bt);
    }
}

/* element (m, k) of op(A) and (k, n) of op(B) in their stored layouts */
#define OPA(m, k) (ta ? A[(k)*M + (m)] : A[(m)*K + (k)])
#define OPB(k, n) (tb ? B[(n)*K + (k)] : B[(k)*N + (n)])

void rlab_ref_matmul_fwd(float *C, const float *A, const float *B, int64_t M, int64_t N, int64_t K,
                         int ta, int tb)
{
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++) {
            float s = 0.0f;
            for (int64_t k = 0; k < K; k++)
                s += OPA(m, k) * OPB(k, n);
            C[m * N + n] = s;
        }
}

void rlab_ref_matmul_bwd(float *dA, float *dB, const float *dC, const float *A, const float *B,
                         int64_t M, int64_t N, int64_t K, int ta, int tb)
{
    for (int64_t m = 0; m < M && dA; m++)
        for (int64_t k = 0; k < K; k++) {
            float s = 0.0f; /* d op(A)[m, k] = sum_n dC[m, n] op(B)[k, n] */
            for (int64_t n = 0; n < N; n++)
                s += dC[m * N + n] * OPB(k, n);
            dA[ta ? k * M + m : m * K + k] += s;
        }
    for (int64_t k = 0; k < K && dB; k++)
        for (int64_t n = 0; n < N; n++) {
            float s = 0.0f; /* d op(B)[k, n] = sum_m op(A)[m, k] dC[m, n] */
            for (int64_t m = 0; m < M; m++)
                s += OPA(m, k) * dC[m * N + n];
            dB[tb ? n * K + k : k * N + n] += s;
        }
}
#undef OPA
#undef OPB

/* ---- layer norm --------------------------------------------------------------------------- */
/* h-block2: the same kernels 16 lanes at a time (AVX-512F, C a multiple of 16; defined at the
 * end of the file); they return -1 when they do not apply */
static int ln_fwd512(float *out, float *mean, float *rstd, const float *x, const float *gain,
                     const float *bias, int64_t R, int64_t C, float eps);
static int ln_bwd512(float *dx, float *dgain, float *dbias, const float *dout, const float *x,
                     const float *mean, const float *rstd, const float *gain, int64_t R, int64_t C);

void rlab_k_layernorm_fwd(float *out, float *mean, float *rstd, const float *x, const float *gain,
                          const float *bias, int64_t R, int64_t C, float eps)
{
    // x [R, C] -> out [R, C]; mean, rstd [R]; gain, bias [C] or NULL
    if (ln_fwd512(out, mean, rstd, x, gain, bias, R, C, eps) == 0)
        return;
    const float invC = 1.0f / (float)(C ? C : 1);
#pragma omp parallel for schedule(static) if (R * C >= RLAB_K_PAR_MIN)
    for (int64_t r = 0; r < R; r++) {
        const float *xr = x + r * C;
        float *yr = out + r * C;
        /* omp simd reductions: a fixed, compile-time summation order, vectorised */
        float m = 0.0f;
#pragma omp simd reduction(+ : m)
        for (int64_t c = 0; c < C; c++)
            m += xr[c];
        m *= invC;
        float v = 0.0f;
#pragma omp simd reduction(+ : v)
        for (int64_t c = 0; c < C; c++) {
            float d = xr[c] - m;
            v += d * d;
        }
        float s = 1.0f / sqrtf(v * invC + eps);
        if (gain && bias) {
#pragma omp simd
            for (int64_t c = 0; c < C; c++)
                yr[c] = (xr[c] - m) * s * gain[c] + bias[c];
        } else {
            for (int64_t c = 0; c < C; c++)
                yr[c] = (xr[c] - m) * s * (gain ? gain[c] : 1.0f) + (bias ? bias[c] : 0.0f);
        }
        mean[r] = m;
        rstd[r] = s;
    }
}

/* The gain/bias gradients are column sums over all rows. They are fused into the row pass:
 * the rows are cut into LN_CHUNKS fixed blocks (independent of the thread count), each block
 * sums into its own partial [2, C], and the partials are added in block order afterwards, so
 * the result is the same for any number of threads. Wider rows than LN_FUSED_MAXC (the
 * partials live on the stack) take a second, serial pass. */
#define LN_CHUNKS 32
#define LN_FUSED_MAXC 128

void rlab_k_layernorm_bwd(float *dx, float *dgain, float *dbias, const float *dout, const float *x,
                          const float *mean, const float *rstd, const float *gain, int64_t R,
                          int64_t C)
{
    // dout, x [R, C]; mean, rstd [R]; += into dx [R, C], dgain, dbias [C]
    if (ln_bwd512(dx, dgain, dbias, dout, x, mean, rstd, gain, R, C) == 0)
        return;
    const float invC = 1.0f / (float)(C ? C : 1);
    const int want_gb = dgain || dbias;
    const int fuse = want_gb && C <= LN_FUSED_MAXC;
    const int nch = (int)(R < LN_CHUNKS ? R : LN_CHUNKS);
    float part[LN_CHUNKS][2][LN_FUSED_MAXC]; /* per block: [0] dgain, [1] dbias partials */
    if (!dx && !fuse)
        goto serial;
#pragma omp parallel for schedule(static) if (R * C >= RLAB_K_PAR_MIN)
    for (int k = 0; k < nch; k++) {
        const int64_t r0 = R * k / nch, r1 = R * (k + 1) / nch;
        float *restrict pg = part[k][0], *restrict pb = part[k][1];
        if (fuse)
            for (int64_t c = 0; c < C; c++)
                pg[c] = pb[c] = 0.0f;
        for (int64_t r = r0; r < r1; r++) {
            const float *restrict xr = x + r * C, *restrict gr = dout + r * C;
            const float m = mean[r], s = rstd[r];
            if (dx) {
                float *restrict dxr = dx + r * C;
                /* dxhat = dout * gain; dx = s (dxhat - mean(dxhat) - xhat mean(dxhat xhat)) */
                float a = 0.0f, b = 0.0f;
                if (gain) {
#pragma omp simd reduction(+ : a, b)
                    for (int64_t c = 0; c < C; c++) {
                        float dn = gr[c] * gain[c];
                        a += dn;
                        b += dn * (xr[c] - m);
                    }
                } else {
#pragma omp simd reduction(+ : a, b)
                    for (int64_t c = 0; c < C; c++) {
                        a += gr[c];
                        b += gr[c] * (xr[c] - m);
                    }
                }
                a *= invC;
                b *= invC * s;
                if (gain) {
#pragma omp simd
                    for (int64_t c = 0; c < C; c++)
                        dxr[c] += s * (gr[c] * gain[c] - a - (xr[c] - m) * s * b);
                } else {
#pragma omp simd
                    for (int64_t c = 0; c < C; c++)
                        dxr[c] += s * (gr[c] - a - (xr[c] - m) * s * b);
                }
            }
            if (fuse) {
#pragma omp simd
                for (int64_t c = 0; c < C; c++) {
                    pg[c] += gr[c] * (xr[c] - m) * s;
                    pb[c] += gr[c];
                }
            }
        }
    }
    if (fuse) {
        for (int k = 0; k < nch; k++)
            for (int64_t c = 0; c < C; c++) {
                if (dgain)
                    dgain[c] += part[k][0][c];
                if (dbias)
                    dbias[c] += part[k][1][c];
            }
        return;
    }
serial:
    /* wide rows: the column sums run over rows in order (vectorised over c) */
    if (want_gb)
        for (int64_t r = 0; r < R; r++) {
            const float *xr = x + r * C, *gr = dout + r * C;
            const float m = mean[r], s = rstd[r];
            if (dgain) {
#pragma omp simd
                for (int64_t c = 0; c < C; c++)
                    dgain[c] += gr[c] * (xr[c] - m) * s;
            }
            if (dbias) {
#pragma omp simd
                for (int64_t c = 0; c < C; c++)
                    dbias[c] += gr[c];
            }
        }
}

void rlab_ref_layernorm_fwd(float *out, float *mean, float *rstd, const float *x, const float *gain,
                            const float *bias, int64_t R, int64_t C, float eps)
{
    for (int64_t r = 0; r < R; r++) {
        const float *xr = x + r * C;
        double m = 0.0, v = 0.0;
        for (int64_t c = 0; c < C; c++)
            m += (double)xr[c];
        m /= (double)C;
        for (int64_t c = 0; c < C; c++)
            v += ((double)xr[c] - m) * ((double)xr[c] - m);
        v /= (double)C;
        double s = 1.0 / sqrt(v + (double)eps);
        for (int64_t c = 0; c < C; c++) {
            double y = ((double)xr[c] - m) * s;
            double g = gain ? (double)gain[c] : 1.0, b = bias ? (double)bias[c] : 0.0;
            out[r * C + c] = (float)(y * g + b);
        }
        mean[r] = (float)m;
        rstd[r] = (float)s;
    }
}

void rlab_ref_layernorm_bwd(float *dx, float *dgain, float *dbias, const float *dout,
                            const float *x, const float *mean, const float *rstd, const float *gain,
                            int64_t R, int64_t C)
{
    /* the textbook form: dx_i = s/C * (C*dxh_i - sum_j dxh_j - xh_i * sum_j dxh_j xh_j) */
    for (int64_t r = 0; r < R; r++) {
        const double m = (double)mean[r], s = (double)rstd[r];
        double sa = 0.0, sb = 0.0;
        for (int64_t c = 0; c < C; c++) {
            double xh = ((double)x[r * C + c] - m) * s;
            double g = (double)dout[r * C + c];
            double dxh = g * (gain ? (double)gain[c] : 1.0);
            sa += dxh;
            sb += dxh * xh;
            if (dgain)
                dgain[c] += (float)(g * xh);
            if (dbias)
                dbias[c] += dout[r * C + c];
        }
        for (int64_t c = 0; c < C && dx; c++) {
            double xh = ((double)x[r * C + c] - m) * s;
            double dxh = (double)dout[r * C + c] * (gain ? (double)gain[c] : 1.0);
            dx[r * C + c] += (float)(s / (double)C * ((double)C * dxh - sa - xh * sb));
        }
    }
}

/* ---- softmax ------------------------------------------------------------------------------ */
void rlab_k_softmax_fwd(float *y, const float *x, int64_t R, int64_t C)
{
    // x [R, C] -> y [R, C], rows sum to 1
#pragma omp parallel for schedule(static) if (R * C >= RLAB_K_PAR_MIN)
    for (int64_t r = 0; r < R; r++) {
        const float *xr = x + r * C;
        float *yr = y + r * C;
        float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
        for (int64_t c = 0; c < C; c++)
            mx = xr[c] > mx ? xr[c] : mx;
        if (!(mx > -INFINITY)) { /* all -inf (or empty): no mass anywhere */
            for (int64_t c = 0; c < C; c++)
                yr[c] = 0.0f;
            continue;
        }
        float s = 0.0f;
#pragma omp simd reduction(+ : s)
        for (int64_t c = 0; c < C; c++) {
            yr[c] = rlab_k_expf(xr[c] - mx);
            s += yr[c];
        }
        float inv = 1.0f / s;
#pragma omp simd
        for (int64_t c = 0; c < C; c++)
            yr[c] *= inv;
    }
}

void rlab_k_softmax_bwd(float *dx, const float *dy, const float *y, int64_t R, int64_t C)
{
    // dy, y [R, C]; dx [R, C] += y * (dy - <dy, y>)
#pragma omp parallel for schedule(static) if (R * C >= RLAB_K_PAR_MIN)
    for (int64_t r = 0; r < R; r++) {
        const float *gr = dy + r * C, *yr = y + r * C;
        float *dr = dx + r * C;
        float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
        for (int64_t c = 0; c < C; c++)
            dot += gr[c] * yr[c];
#pragma omp simd
        for (int64_t c = 0; c < C; c++)
            dr[c] += yr[c] * (gr[c] - dot);
    }
}

void rlab_ref_softmax_fwd(float *y, const float *x, int64_t R, int64_t C)
{
    for (int64_t r = 0; r < R; r++) {
        double mx = -INFINITY, s = 0.0;
        for (int64_t c = 0; c < C; c++)
            mx = fmax(mx, (double)x[r * C + c]);
        for (int64_t c = 0; c < C; c++)
            s += exp((double)x[r * C + c] - mx);
        for (int64_t c = 0; c < C; c++)
            y[r * C + c] = isinf(mx) ? 0.0f : (float)(exp((double)x[r * C + c] - mx) / s);
    }
}

void rlab_ref_softmax_bwd(float *dx, const float *dy, const float *y, int64_t R, int64_t C)
{
    /* Jacobian form: dx_i += sum_j dy_j y_j (delta_ij - y_i) */
    for (int64_t r = 0; r < R; r++)
        for (int64_t i = 0; i < C; i++) {
            double s = 0.0;
            for (int64_t j = 0; j < C; j++)
                s += (double)dy[r * C + j] * (double)y[r * C + j] *
                     ((i == j ? 1.0 : 0.0) - (double)y[r * C + i]);
            dx[r * C + i] += (float)s;
        }
}

/* ---- gather ------------------------------------------------------------------------------- */
static inline int is_pad(int64_t id, int64_t V, int64_t pad)
{
    return id < 0 || id == pad || id >= V;
}

void rlab_k_gather_fwd(float *out, const float *table, const int32_t *ids, int64_t n, int64_t V,
                       int64_t D, int64_t pad)
{
    // table [V, D], ids [n] -> out [n, D]
#pragma omp parallel for schedule(static) if (n * D >= RLAB_K_PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        int64_t id = ids[i];
        if (is_pad(id, V, pad))
            memset(out + i * D, 0, (size_t)D * sizeof *out);
        else
            memcpy(out + i * D, table + id * D, (size_t)D * sizeof *out);
    }
}

void rlab_k_gather_bwd(float *dtable, const float *dout, const int32_t *ids, int64_t n, int64_t V,
                       int64_t D, int64_t pad)
{
    // dout [n, D] scattered into dtable [V, D]. Repeated ids must add in a fixed order: the
    // threads split the columns (in 16-float pieces, a cache line of a 64-byte aligned row),
    // and each walks all n rows in order, so every element sums exactly as the serial loop.
    const int64_t np = (D + 15) / 16;
    const int par = n * D >= RLAB_K_PAR_MIN && np >= 2 && omp_split_ok();
#pragma omp parallel if (par)
    {
        int64_t p0 = 0, p1 = np;
#ifdef _OPENMP
        const int64_t nt = omp_get_num_threads(), tid = omp_get_thread_num();
        p0 = np * tid / nt;
        p1 = np * (tid + 1) / nt;
#endif
        const int64_t d0 = p0 * 16, d1 = p1 * 16 < D ? p1 * 16 : D;
        for (int64_t i = 0; d1 > d0 && i < n; i++) {
            int64_t id = ids[i];
            if (is_pad(id, V, pad))
                continue;
            float *dst = dtable + id * D;
            const float *g = dout + i * D;
            for (int64_t d = d0; d < d1; d++)
                dst[d] += g[d];
        }
    }
}

void rlab_ref_gather_fwd(float *out, const float *table, const int32_t *ids, int64_t n, int64_t V,
                         int64_t D, int64_t pad)
{
    for (int64_t i = 0; i < n; i++)
        for (int64_t d = 0; d < D; d++)
            out[i * D + d] = is_pad(ids[i], V, pad) ? 0.0f : table[(int64_t)ids[i] * D + d];
}

/* ---- reductions --------------------------------------------------------------------------- */
#define SUM_BLOCKS 64 /* fixed partition, independent of the thread count */

static double block_sum(const float *x, int64_t n, int sq)
{
    double part[SUM_BLOCKS];
    int64_t bs = (n + SUM_BLOCKS - 1) / SUM_BLOCKS;
#pragma omp parallel for schedule(static) if (n >= RLAB_K_PAR_MIN)
    for (int b = 0; b < SUM_BLOCKS; b++) {
        int64_t lo = b * bs, hi = lo + bs < n ? lo + bs : n;
        double s = 0.0;
        /* 4096-element float chunks (vectorised) flushed into the double accumulator */
        for (int64_t c = lo; c < hi; c += 4096) {
            int64_t e = c + 4096 < hi ? c + 4096 : hi;
            float fs = 0.0f;
            if (sq) {
#pragma omp simd reduction(+ : fs)
                for (int64_t i = c; i < e; i++)
                    fs += x[i] * x[i];
            } else {
#pragma omp simd reduction(+ : fs)
                for (int64_t i = c; i < e; i++)
                    fs += x[i];
            }
            s += (double)fs;
        }
        part[b] = s;
    }
    double s = 0.0;
    for (int b = 0; b < SUM_BLOCKS; b++)
        s += part[b];
    return s;
}

double rlab_k_sum(const float *x, int64_t n) { return block_sum(x, n, 0); }

double rlab_k_sumsq(const float *x, int64_t n) { return block_sum(x, n, 1); }

/* ---- h-block (issue 23): fused linear layer ----------------------------------------------- */
/* The bias, ReLU and residual of a transformer's linear layers were three more ops, each a
 * pass over the [B*T, C] activations and, backward, over their gradients (perf, bench/tensor
 * block: about 17% of the block's time). Here the forward applies them to each row block right
 * after its sgemm, and the backward makes one pass over dy for the ReLU mask, the residual's
 * gradient and the bias's column sums before the two products. */
#define LIN_SUM_BLOCKS 32 /* fixed row blocks of the bias gradient (any thread count) */

/* Forward products whose output is 64 wide (a transformer of width 64: every projection) in
 * AVX-512 register tiles instead of cblas_sgemm: C [rows, 64] (+)= A [rows, n] B [n, 64], six
 * rows at a time, per k four loads of B's row (B: 16 KB, in L1) and six broadcasts of A, 24
 * accumulators. At K = 64 OpenBLAS spends much of the call packing A for so few multiply-adds
 * per element (measured, [25600, 64] x [64, 64], CPU time: 1.7 ms against 2.2). Each output is
 * one FMA chain in k order, whatever the row block or thread. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(RLAB_NO_PANEL_KERNEL)
#define LIN_X86 1
#include <immintrin.h>

#define G64_ROW(i)                                                                                 \
    __m512 c##i##0 = _mm512_setzero_ps(), c##i##1 = c##i##0, c##i##2 = c##i##0, c##i##3 = c##i##0; \
    const float *a##i = A + (r0 + (i < nr ? i : nr - 1)) * sr
#define G64_STEP(i)                                                                                \
    do {                                                                                           \
        const __m512 x = _mm512_set1_ps(a##i[k * sj]);                                             \
        c##i##0 = _mm512_fmadd_ps(x, b0, c##i##0);                                                 \
        c##i##1 = _mm512_fmadd_ps(x, b1, c##i##1);                                                 \
        c##i##2 = _mm512_fmadd_ps(x, b2, c##i##2);                                                 \
        c##i##3 = _mm512_fmadd_ps(x, b3, c##i##3);                                                 \
    } while (0)

__attribute__((target("avx512f"))) static void gemm64(float *C, int64_t ldc, const float *A,
                                                      int64_t sr, int64_t sj, const float *B,
                                                      int64_t ldb, int64_t n, int64_t rows, int acc)
{
    // C [rows, 64] (row stride ldc) (+)= A [rows, n] B [n, 64] (row stride ldb), with A's
    // element (r, k) at A[r sr + k sj] (sj = 1: rows of A; sr = 1: A transposed)
    for (int64_t r0 = 0; r0 < rows; r0 += 6) {
        const int nr = (int)(rows - r0 < 6 ? rows - r0 : 6);
        G64_ROW(0);
        G64_ROW(1);
        G64_ROW(2);
        G64_ROW(3);
        G64_ROW(4);
        G64_ROW(5);
        for (int64_t k = 0; k < n; k++) {
            const float *bk = B + k * ldb;
            const __m512 b0 = _mm512_loadu_ps(bk), b1 = _mm512_loadu_ps(bk + 16);
            const __m512 b2 = _mm512_loadu_ps(bk + 32), b3 = _mm512_loadu_ps(bk + 48);
            G64_STEP(0);
            G64_STEP(1);
            G64_STEP(2);
            G64_STEP(3);
            G64_STEP(4);
            G64_STEP(5);
        }
        const __m512 cc[6][4] = {{c00, c01, c02, c03}, {c10, c11, c12, c13}, {c20, c21, c22, c23},
                                 {c30, c31, c32, c33}, {c40, c41, c42, c43}, {c50, c51, c52, c53}};
        for (int r = 0; r < nr; r++) {
            float *o = C + (size_t)(r0 + r) * (size_t)ldc;
            for (int c = 0; c < 4; c++) {
                const __m512 y =
                    acc ? _mm512_add_ps(_mm512_loadu_ps(o + 16 * c), cc[r][c]) : cc[r][c];
                _mm512_storeu_ps(o + 16 * c, y);
            }
        }
    }
}
#undef G64_ROW
#undef G64_STEP
#else
#define LIN_X86 0
static void gemm64(float *C, int64_t ldc, const float *A, int64_t sr, int64_t sj, const float *B,
                   int64_t ldb, int64_t n, int64_t rows, int acc)
{
    (void)C, (void)ldc, (void)A, (void)sr, (void)sj, (void)B, (void)ldb, (void)n, (void)rows;
    (void)acc;
}
#endif

/* the 64-wide tiles run for outputs of width 64 with AVX-512F (rlab_k_set_avx512(0): off) */
static int lin_wide(int64_t width) { return LIN_X86 && width == 64 && rlab_k_avx512(); }

/* g where y > 0 (y's bits in (0, 0x7f800000]: NaN excluded), else +0; as relu_pass in
 * ops_elem.c, on integer masks so the loops vectorise */
static inline float lin_pass(float g, float y)
{
    int32_t iy, ig;
    memcpy(&iy, &y, sizeof iy);
    memcpy(&ig, &g, sizeof ig);
    ig &= -(int32_t)((uint32_t)iy - 1u < 0x7f800000u);
    memcpy(&g, &ig, sizeof g);
    return g;
}

/* rows [0, m) of y [m, N] = act(y + b) + r, in the unfused ops' order */
static void linear_epilogue(float *y, const float *b, const float *r, int64_t m, int64_t N, int act)
{
    for (int64_t i = 0; i < m; i++) {
        float *restrict yr = y + i * N;
        if (b) {
#pragma omp simd
            for (int64_t c = 0; c < N; c++)
                yr[c] = yr[c] + b[c];
        }
        if (act == RLAB_K_ACT_RELU) {
#pragma omp simd
            for (int64_t c = 0; c < N; c++)
                yr[c] = lin_pass(yr[c], yr[c]);
        }
        if (r) {
            const float *restrict rr = r + i * N;
#pragma omp simd
            for (int64_t c = 0; c < N; c++)
                yr[c] = rr[c] + yr[c];
        }
    }
}

void rlab_k_linear_fwd(float *y, const float *x, const float *w, const float *b, const float *r,
                       int64_t M, int64_t N, int64_t K, int act)
{
    // y [M, N] = act(x [M, K] w [K, N] + b [N]) + r [M, N]
    if (M == 0 || N == 0)
        return;
    const int epi = b || r || act != RLAB_K_ACT_NONE;
    const int wide = K > 0 && lin_wide(N);
    if (K > 0 && (mm_tall(M, N, K) || (wide && M * K * N >= RLAB_K_PAR_MIN)) && omp_split_ok()) {
        /* the row blocks of rlab_k_matmul_fwd, each finished while it is in cache */
        const int bt = wide ? 1 : blas_solo_begin();
#pragma omp parallel for schedule(dynamic, 1)
        for (int c = 0; c < MM_ROW_BLOCKS; c++) {
            const int64_t r0 = M * c / MM_ROW_BLOCKS, r1 = M * (c + 1) / MM_ROW_BLOCKS;
            if (wide)
                gemm64(y + r0 * N, N, x + r0 * K, K, 1, w, N, K, r1 - r0, 0);
            else
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(r1 - r0), (int)N,
                            (int)K, 1.0f, x + r0 * K, (int)K, w, (int)N, 0.0f, y + r0 * N, (int)N);
            if (epi)
                linear_epilogue(y + r0 * N, b, r ? r + r0 * N : NULL, r1 - r0, N, act);
        }
        blas_solo_end(bt);
        return;
    }
    if (wide)
        gemm64(y, N, x, K, 1, w, N, K, M, 0);
    else
        rlab_k_matmul_fwd(y, x, w, M, N, K, 0, 0);
    if (!epi)
        return;
#pragma omp parallel for schedule(static) if (M * N >= RLAB_K_STREAM_PAR_MIN)
    for (int c = 0; c < LIN_SUM_BLOCKS; c++) {
        const int64_t r0 = M * c / LIN_SUM_BLOCKS, r1 = M * (c + 1) / LIN_SUM_BLOCKS;
        linear_epilogue(y + r0 * N, b, r ? r + r0 * N : NULL, r1 - r0, N, act);
    }
}

/* h-block2: the whole backward in one pass over row chunks, on the 64-wide tiles (defined at
 * the end of the file); returns -1 when it does not apply */
static size_t lin_bwd64_floats(int64_t M, int64_t N, int64_t K, int ns, int act);
static int lin_bwd64(float *dx, float *dw, float *db, float *dr, const float *dy, const float *x,
                     const float *w, const float *y, int64_t M, int64_t N, int64_t K, int act,
                     float *scratch);

size_t rlab_k_linear_scratch_floats(int64_t M, int64_t N, int64_t K, int act)
{
    const size_t old = (act == RLAB_K_ACT_RELU ? (size_t)(M * N) : 0) +
                       (size_t)LIN_SUM_BLOCKS * (size_t)N + rlab_k_matmul_scratch_floats(M, N, K);
    const size_t t64 = lin_bwd64_floats(M, N, K, 1, act);
    return old > t64 ? old : t64;
}

void rlab_k_linear_bwd(float *dx, float *dw, float *db, float *dr, const float *dy, const float *x,
                       const float *w, const float *y, int64_t M, int64_t N, int64_t K, int act,
                       float *scratch)
{
    // dy, y [M, N]; += into dx [M, K], dw [K, N], db [N], dr [M, N]
    if (M == 0 || N == 0)
        return;
    if (lin_bwd64(dx, dw, db, dr, dy, x, w, y, M, N, K, act, scratch) == 0)
        return;
    const int relu = act == RLAB_K_ACT_RELU;
    float *dz = relu ? scratch : NULL; /* dZ [M, N]: dy through the ReLU */
    float *part = scratch + (relu ? M * N : 0);
    float *mms = part + (size_t)LIN_SUM_BLOCKS * (size_t)N;
    const int nb = (int)(M < LIN_SUM_BLOCKS ? M : LIN_SUM_BLOCKS);
    if (relu || db || dr) {
#pragma omp parallel for schedule(static) if (M * N >= RLAB_K_STREAM_PAR_MIN)
        for (int k = 0; k < nb; k++) {
            const int64_t r0 = M * k / nb, r1 = M * (k + 1) / nb;
            float *restrict pb = part + (size_t)k * (size_t)N;
            if (db)
                for (int64_t c = 0; c < N; c++)
                    pb[c] = 0.0f;
            for (int64_t i = r0; i < r1; i++) {
                const float *g = dy + i * N;
                if (dr) {
                    float *restrict d = dr + i * N;
#pragma omp simd
                    for (int64_t c = 0; c < N; c++)
                        d[c] += g[c];
                }
                if (relu) {
                    float *restrict z = dz + i * N;
                    const float *restrict yr = y + i * N;
#pragma omp simd
                    for (int64_t c = 0; c < N; c++)
                        z[c] = lin_pass(g[c], yr[c]);
                    g = z;
                }
                if (db) {
#pragma omp simd
                    for (int64_t c = 0; c < N; c++)
                        pb[c] += g[c];
                }
            }
        }
        if (db)
            for (int k = 0; k < nb; k++)
                for (int64_t c = 0; c < N; c++)
                    db[c] += part[(size_t)k * (size_t)N + c];
    }
    const float *g = relu ? dz : dy;
    /* the products stay with cblas_sgemm here (the tiles: lin_bwd64) */
    if (dx || dw)
        rlab_k_matmul_bwd_ws(dx, dw, g, x, w, M, N, K, 0, 0, mms);
}
/* ---- end h-block ------------------------------------------------------------------------- */

/* ==== h-block2 (issue 23): the fused linear layer's backward in one pass on the tiles ======== */
/* Profile of bench/tensor's block (perf, 2 threads): the six linears' backward on cblas_sgemm
 * was ~35% of the block's CPU, 12 points of it OpenBLAS packing its operands (itcopy/oncopy/
 * otcopy) for products with K or N = 64, and the rest paid as much for memory as for FLOPs:
 * the ReLU/bias/residual pass, then dx, then dW each streamed dy (or dZ) from memory. Here
 * one pass over fixed blocks of rows, LIN_CHUNK rows at a time while they sit in L1/L2, does
 *   dZ = dy through the ReLU (a per-block chunk buffer, not an [M, N] array), dr += dy,
 *   the bias partial of the block += column sums of dZ,
 *   dx [chunk, K=64] += dZ W^T  (gemm64, B = W^T [N, 64] packed once per call),
 *   the dW partial of the block [K, N=64] += x^T dZ  (gemm64 reading x transposed),
 * and the block partials of db and dW are added in block order afterwards. The blocks depend
 * on M only (lin_nblocks: whatever the thread count) and every sum runs in a fixed order, so
 * results do not depend on the threads; against cblas_sgemm they differ by rounding only. Applies
 * with AVX-512F when dx is not wanted or K = 64, and dW is not wanted or N = 64 (the block's every
 * linear). */
#define LIN_BLOCKS 16
#define LIN_CHUNK 128
#define LIN_BLOCK_ROWS 1024 /* rows per block at least (up to LIN_BLOCKS blocks) */

/* The fixed row blocks of a backward over M rows: a function of M only (never of the thread
 * count). Few rows, few blocks: each block costs its dW partial ([K, 64] written, then added),
 * which at SASRec's ~800 compact rows per batch would cost as much as the products. */
static int lin_nblocks(int64_t M)
{
    const int64_t nb = (M + LIN_BLOCK_ROWS - 1) / LIN_BLOCK_ROWS;
    return nb < 1 ? 1 : nb > LIN_BLOCKS ? LIN_BLOCKS : (int)nb;
}
#define LIN_MAXW 7 /* weights of one shared-input call (rlab_k_linear_multi_*) */

static size_t lin_bwd64_floats(int64_t M, int64_t N, int64_t K, int ns, int act)
{
    if (K != 64 && N != 64)
        return 0; /* lin_bwd64_n refuses: the cblas path's scratch */
    /* ns W^T [N, 64]; per block (lin_nblocks(M) of them): the dW [ns][K, 64] and db [N]
     * partials, and for a ReLU a dZ chunk [LIN_CHUNK, N] */
    const size_t nb = (size_t)lin_nblocks(M);
    return (size_t)ns * (size_t)N * 64 + nb * ((size_t)ns * (size_t)(K * 64) + (size_t)N) +
           (act == RLAB_K_ACT_RELU ? (nb < 2 ? 2 : nb) * (size_t)(LIN_CHUNK * N) : 0) + 16;
}

#if LIN_X86
/* C [rows, 64] += sum over ns segments s of A_s [rows, n] B_s [n, 64]: A_s's element (r, k) at
 * A[s ss + r sr + k], B_s = rows s n .. of B [ns n, 64]. gemm64 with the products of several
 * weights summed in registers (dx of linears that share their input: one read-modify-write of
 * dx instead of ns). Each element: one FMA chain, segments in order, k in order. */
#define G64S_ROW(i)                                                                                \
    __m512 c##i##0 = _mm512_setzero_ps(), c##i##1 = c##i##0, c##i##2 = c##i##0, c##i##3 = c##i##0; \
    const float *a##i = A + (r0 + (i < nr ? i : nr - 1)) * sr
#define G64S_STEP(i)                                                                               \
    do {                                                                                           \
        const __m512 x = _mm512_set1_ps(a##i[s * ss + k]);                                         \
        c##i##0 = _mm512_fmadd_ps(x, b0, c##i##0);                                                 \
        c##i##1 = _mm512_fmadd_ps(x, b1, c##i##1);                                                 \
        c##i##2 = _mm512_fmadd_ps(x, b2, c##i##2);                                                 \
        c##i##3 = _mm512_fmadd_ps(x, b3, c##i##3);                                                 \
    } while (0)

__attribute__((target("avx512f"))) static void gemm64_acc_seg(float *C, const float *A, int64_t ss,
                                                              int64_t sr, int ns, const float *B,
                                                              int64_t n, int64_t rows)
{
    for (int64_t r0 = 0; r0 < rows; r0 += 6) {
        const int nr = (int)(rows - r0 < 6 ? rows - r0 : 6);
        G64S_ROW(0);
        G64S_ROW(1);
        G64S_ROW(2);
        G64S_ROW(3);
        G64S_ROW(4);
        G64S_ROW(5);
        for (int s = 0; s < ns; s++)
            for (int64_t k = 0; k < n; k++) {
                const float *bk = B + ((int64_t)s * n + k) * 64;
                const __m512 b0 = _mm512_loadu_ps(bk), b1 = _mm512_loadu_ps(bk + 16);
                const __m512 b2 = _mm512_loadu_ps(bk + 32), b3 = _mm512_loadu_ps(bk + 48);
                G64S_STEP(0);
                G64S_STEP(1);
                G64S_STEP(2);
                G64S_STEP(3);
                G64S_STEP(4);
                G64S_STEP(5);
            }
        const __m512 cc[6][4] = {{c00, c01, c02, c03}, {c10, c11, c12, c13}, {c20, c21, c22, c23},
                                 {c30, c31, c32, c33}, {c40, c41, c42, c43}, {c50, c51, c52, c53}};
        for (int r = 0; r < nr; r++) {
            float *o = C + (size_t)(r0 + r) * 64;
            for (int c = 0; c < 4; c++)
                _mm512_storeu_ps(o + 16 * c, _mm512_add_ps(_mm512_loadu_ps(o + 16 * c), cc[r][c]));
        }
    }
}
#undef G64S_ROW
#undef G64S_STEP

/* rows [m0, m1) of the backward of ns linears that share x (ns = 1: with the ReLU, bias and
 * residual; see above): dy holds the ns output gradients [M, N] one after the other (segment
 * stride ss = M N). pw [ns][K, 64] and pb [N] are this block's partials (written, not
 * accumulated), pw NULL: no dW; zb: its dZ chunk buffer [LIN_CHUNK, N] */
__attribute__((target("avx512f"))) static void
lin_bwd_block(float *dx, float *pw, float *pb, float *zb, float *dr, const float *dy, int ns,
              int64_t ss, const float *x, const float *wt, const float *y, int64_t N, int64_t K,
              int relu, int64_t m0, int64_t m1)
{
    if (pb)
        memset(pb, 0, (size_t)N * sizeof *pb);
    if (pw && m1 <= m0)
        memset(pw, 0, (size_t)ns * (size_t)(K * 64) * sizeof *pw);
    for (int64_t c = m0; c < m1; c += LIN_CHUNK) {
        const int64_t n = m1 - c < LIN_CHUNK ? m1 - c : LIN_CHUNK;
        const float *g = dy + c * N;
        if (relu || dr || pb)
            for (int64_t i = 0; i < n; i++) {
                const float *restrict gi = dy + (c + i) * N;
                if (dr) {
                    float *restrict d = dr + (c + i) * N;
#pragma omp simd
                    for (int64_t j = 0; j < N; j++)
                        d[j] += gi[j];
                }
                if (relu) {
                    float *restrict z = zb + i * N;
                    const float *restrict yi = y + (c + i) * N;
#pragma omp simd
                    for (int64_t j = 0; j < N; j++)
                        z[j] = lin_pass(gi[j], yi[j]);
                    gi = z;
                }
                if (pb) {
#pragma omp simd
                    for (int64_t j = 0; j < N; j++)
                        pb[j] += gi[j];
                }
            }
        if (relu)
            g = zb;
        if (dx) // dx [n, 64] += sum_s g_s [n, N] W_s^T
            gemm64_acc_seg(dx + c * 64, g, relu ? 0 : ss, N, ns, wt, N, n);
        for (int s = 0; pw && s < ns; s++) // pw_s [K, 64] (+)= x^T [K, n] g_s [n, 64]
            gemm64(pw + (size_t)s * (size_t)(K * 64), 64, x + c * K, 1, K, g + s * ss, 64, n, K,
                   c > m0);
    }
}
#endif

/* The backward of ns linears y_s = x w_s (ns = 1: act(x w + b) + r) on the tiles: dx (K = 64)
 * += sum_s dy_s w_s^T, dw[s] (N = 64) += x^T dy_s (dw NULL, or dw[s] NULL for none). dy: the
 * ns gradients one after the other. Returns -1 (nothing done) when it does not apply. */
static int lin_bwd64_n(float *dx, float *const *dw, float *db, float *dr, const float *dy, int ns,
                       const float *x, const float *const *w, const float *y, int64_t M, int64_t N,
                       int64_t K, int act, float *scratch)
{
    int any_dw = 0;
    for (int s = 0; s < ns; s++)
        any_dw |= dw && dw[s];
    if (!LIN_X86 || !rlab_k_avx512() || (K != 64 && N != 64) || (dx && K != 64) ||
        (any_dw && N != 64) || M == 0 || K == 0 || ns < 1 || ns > LIN_MAXW)
        return -1;
#if LIN_X86
    /* scratch: W^T (64-byte aligned), the dW and db partials, the dZ chunks */
    const size_t kw = (size_t)(K * 64);
    float *wt = (float *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    float *pw = wt + (size_t)ns * (size_t)N * 64;
    const int nbk = lin_nblocks(M); /* the layout of lin_bwd64_floats */
    float *pb = pw + (size_t)nbk * (size_t)ns * kw;
    float *zb = pb + (size_t)nbk * (size_t)N; /* a ReLU's only */
    for (int s = 0; dx && s < ns; s++)
        for (int64_t n = 0; n < N; n++) // wt [ns N, 64]: W_s^T, W_s [64, N]
            for (int64_t k = 0; k < 64; k++)
                wt[((int64_t)s * N + n) * 64 + k] = w[s][k * N + n];
    const int relu = act == RLAB_K_ACT_RELU;
    const int par =
        (double)M * (double)N * (double)K * ns >= (double)RLAB_K_PAR_MIN && omp_split_ok();
    /* One block (SASRec's ~800 rows) would run on the calling thread alone: then one thread
     * does dx and another dW / db / dr, over all the rows in the same order (the same bits as
     * one block; a ReLU's dZ is computed by both, each in its own chunk buffer). Not when the
     * residual's gradient is dx itself (x + f(x): the adds to it are ordered). */
    const int split = par && nbk == 1 && lin_threads() > 1 && dx && (any_dw || db || dr) &&
                      (!dr || (uintptr_t)(dr + M * N) <= (uintptr_t)dx ||
                       (uintptr_t)(dx + M * K) <= (uintptr_t)dr);
    if (split) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(2)
        for (int j = 0; j < 2; j++) {
            if (j == 0)
                lin_bwd_block(dx, NULL, NULL, zb + (size_t)(LIN_CHUNK * N), NULL, dy, ns, M * N, x,
                              wt, y, N, K, relu, 0, M);
            else
                lin_bwd_block(NULL, any_dw ? pw : NULL, db ? pb : NULL, zb, dr, dy, ns, M * N, x,
                              wt, y, N, K, relu, 0, M);
        }
    } else {
#pragma omp parallel for schedule(dynamic, 1) if (par && nbk > 1)
        for (int j = 0; j < nbk; j++)
            lin_bwd_block(dx, any_dw ? pw + (size_t)j * (size_t)ns * kw : NULL,
                          db ? pb + (size_t)j * (size_t)N : NULL,
                          zb + (size_t)j * (size_t)(LIN_CHUNK * N), dr, dy, ns, M * N, x, wt, y, N,
                          K, relu, M * j / nbk, M * (j + 1) / nbk);
    }
    for (int j = 0; j < nbk; j++) { /* block order: independent of the threads */
        for (int s = 0; any_dw && s < ns; s++) {
            const float *p = pw + ((size_t)j * (size_t)ns + (size_t)s) * kw;
            float *d = dw[s];
            if (d) {
#pragma omp simd
                for (size_t i = 0; i < kw; i++)
                    d[i] += p[i];
            }
        }
        if (db) {
            const float *p = pb + (size_t)j * (size_t)N;
            for (int64_t i = 0; i < N; i++)
                db[i] += p[i];
        }
    }
#else
    (void)dx, (void)dw, (void)db, (void)dr, (void)dy, (void)x, (void)w, (void)y, (void)act;
    (void)scratch;
#endif
    return 0;
}

static int lin_bwd64(float *dx, float *dw, float *db, float *dr, const float *dy, const float *x,
                     const float *w, const float *y, int64_t M, int64_t N, int64_t K, int act,
                     float *scratch)
{
    return lin_bwd64_n(dx, dw ? &dw : NULL, db, dr, dy, 1, x, &w, y, M, N, K, act, scratch);
}

/* ---- n linears of one input ---------------------------------------------------------------- */
size_t rlab_k_linear_multi_scratch_floats(int64_t M, int64_t N, int64_t K, int n)
{
    const size_t one = rlab_k_linear_scratch_floats(M, N, K, RLAB_K_ACT_NONE);
    const size_t t64 = lin_bwd64_floats(M, N, K, n, RLAB_K_ACT_NONE);
    return one > t64 ? one : t64;
}

void rlab_k_linear_multi_fwd(float *y, const float *x, const float *const *w, int n, int64_t M,
                             int64_t N, int64_t K)
{
    // y [n, M, N]: y_s = x [M, K] w_s [K, N]
    if (M == 0 || N == 0 || n < 1)
        return;
    if (!(K > 0 && lin_wide(N) && omp_split_ok())) {
        for (int s = 0; s < n; s++)
            rlab_k_linear_fwd(y + (int64_t)s * M * N, x, w[s], NULL, NULL, M, N, K,
                              RLAB_K_ACT_NONE);
        return;
    }
    /* the row blocks of rlab_k_linear_fwd, every weight on a block while its rows of x are in
     * cache: x is read from memory once */
#pragma omp parallel for schedule(dynamic, 1) if (M * K * N * n >= RLAB_K_PAR_MIN)
    for (int c = 0; c < MM_ROW_BLOCKS; c++) {
        const int64_t r0 = M * c / MM_ROW_BLOCKS, r1 = M * (c + 1) / MM_ROW_BLOCKS;
        for (int64_t q0 = r0; q0 < r1; q0 += LIN_CHUNK) {
            const int64_t q1 = q0 + LIN_CHUNK < r1 ? q0 + LIN_CHUNK : r1;
            for (int s = 0; s < n; s++)
                gemm64(y + (int64_t)s * M * N + q0 * N, N, x + q0 * K, K, 1, w[s], N, K, q1 - q0,
                       0);
        }
    }
}

void rlab_k_linear_multi_bwd(float *dx, float *const *dw, const float *dy, const float *x,
                             const float *const *w, int n, int64_t M, int64_t N, int64_t K,
                             float *scratch)
{
    if (M == 0 || N == 0 || n < 1)
        return;
    if (lin_bwd64_n(dx, dw, NULL, NULL, dy, n, x, w, NULL, M, N, K, RLAB_K_ACT_NONE, scratch) == 0)
        return;
    for (int s = 0; s < n; s++) /* one by one, as n separate linears */
        rlab_k_linear_bwd(dx, dw ? dw[s] : NULL, NULL, NULL, dy + (int64_t)s * M * N, x, w[s], NULL,
                          M, N, K, RLAB_K_ACT_NONE, scratch);
}

/* Layer norm over rows of width C = 16 n <= LN_FUSED_MAXC, 16 lanes at a time. The kernels
 * above are compiled for the baseline x86-64 (SSE2: 4 lanes); these were 2.0 CPU-ms of 2.2 per
 * [25600, 64] call in the block bench. Same formulas, same fixed row blocks for the gain/bias
 * sums; the lane sums (_mm512_reduce_add_ps) have a fixed order: deterministic, and equal to
 * the 4-lane kernels up to rounding. */
#if LIN_X86
__attribute__((target("avx512f"))) static void ln_fwd_rows512(float *out, float *mean, float *rstd,
                                                              const float *x, const float *gain,
                                                              const float *bias, int64_t r0,
                                                              int64_t r1, int nv, float eps)
{
    const int64_t C = 16 * (int64_t)nv;
    const float invC = 1.0f / (float)C;
    for (int64_t r = r0; r < r1; r++) {
        const float *xr = x + r * C;
        float *yr = out + r * C;
        __m512 acc = _mm512_setzero_ps();
        for (int v = 0; v < nv; v++)
            acc = _mm512_add_ps(acc, _mm512_loadu_ps(xr + 16 * v));
        const float m = _mm512_reduce_add_ps(acc) * invC;
        const __m512 mv = _mm512_set1_ps(m);
        acc = _mm512_setzero_ps();
        for (int v = 0; v < nv; v++) {
            const __m512 d = _mm512_sub_ps(_mm512_loadu_ps(xr + 16 * v), mv);
            acc = _mm512_fmadd_ps(d, d, acc);
        }
        const float s = 1.0f / sqrtf(_mm512_reduce_add_ps(acc) * invC + eps);
        const __m512 sv = _mm512_set1_ps(s);
        for (int v = 0; v < nv; v++) {
            __m512 y = _mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(xr + 16 * v), mv), sv);
            if (gain)
                y = _mm512_mul_ps(y, _mm512_loadu_ps(gain + 16 * v));
            if (bias)
                y = _mm512_add_ps(y, _mm512_loadu_ps(bias + 16 * v));
            _mm512_storeu_ps(yr + 16 * v, y);
        }
        mean[r] = m;
        rstd[r] = s;
    }
}

/* rows [r0, r1): dx += ..., and pg/pb [C] (NULL: not wanted) += the gain/bias partials */
__attribute__((target("avx512f"))) static void ln_bwd_rows512(float *dx, float *pg, float *pb,
                                                              const float *dout, const float *x,
                                                              const float *mean, const float *rstd,
                                                              const float *gain, int64_t r0,
                                                              int64_t r1, int nv)
{
    const int64_t C = 16 * (int64_t)nv;
    const float invC = 1.0f / (float)C;
    const __m512 one = _mm512_set1_ps(1.0f);
    for (int64_t r = r0; r < r1; r++) {
        const float *xr = x + r * C, *gr = dout + r * C;
        const __m512 mv = _mm512_set1_ps(mean[r]), sv = _mm512_set1_ps(rstd[r]);
        if (dx) {
            /* dxhat = dout gain; dx = s (dxhat - mean(dxhat) - xhat mean(dxhat xhat)) */
            __m512 sa = _mm512_setzero_ps(), sb = _mm512_setzero_ps();
            for (int v = 0; v < nv; v++) {
                const __m512 g = gain ? _mm512_loadu_ps(gain + 16 * v) : one;
                const __m512 dn = _mm512_mul_ps(_mm512_loadu_ps(gr + 16 * v), g);
                const __m512 xh =
                    _mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(xr + 16 * v), mv), sv);
                sa = _mm512_add_ps(sa, dn);
                sb = _mm512_fmadd_ps(dn, xh, sb);
            }
            const __m512 a = _mm512_set1_ps(_mm512_reduce_add_ps(sa) * invC);
            const __m512 b = _mm512_set1_ps(_mm512_reduce_add_ps(sb) * invC);
            float *dxr = dx + r * C;
            for (int v = 0; v < nv; v++) {
                const __m512 g = gain ? _mm512_loadu_ps(gain + 16 * v) : one;
                const __m512 dn = _mm512_mul_ps(_mm512_loadu_ps(gr + 16 * v), g);
                const __m512 xh =
                    _mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(xr + 16 * v), mv), sv);
                const __m512 t = _mm512_sub_ps(_mm512_sub_ps(dn, a), _mm512_mul_ps(xh, b));
                _mm512_storeu_ps(dxr + 16 * v,
                                 _mm512_fmadd_ps(sv, t, _mm512_loadu_ps(dxr + 16 * v)));
            }
        }
        if (pg || pb)
            for (int v = 0; v < nv; v++) {
                const __m512 d = _mm512_loadu_ps(gr + 16 * v);
                if (pg) {
                    const __m512 xh =
                        _mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(xr + 16 * v), mv), sv);
                    _mm512_storeu_ps(pg + 16 * v,
                                     _mm512_fmadd_ps(d, xh, _mm512_loadu_ps(pg + 16 * v)));
                }
                if (pb)
                    _mm512_storeu_ps(pb + 16 * v, _mm512_add_ps(_mm512_loadu_ps(pb + 16 * v), d));
            }
    }
}
#endif

static int ln_wide(int64_t C)
{
    return LIN_X86 && C > 0 && C % 16 == 0 && C <= LN_FUSED_MAXC && rlab_k_avx512();
}

static int ln_fwd512(float *out, float *mean, float *rstd, const float *x, const float *gain,
                     const float *bias, int64_t R, int64_t C, float eps)
{
    if (!ln_wide(C))
        return -1;
#if LIN_X86
    const int nb = (int)(R < LN_CHUNKS ? R : LN_CHUNKS);
#pragma omp parallel for schedule(static) if (R * C >= RLAB_K_PAR_MIN)
    for (int k = 0; k < nb; k++)
        ln_fwd_rows512(out, mean, rstd, x, gain, bias, R * k / nb, R * (k + 1) / nb, (int)(C / 16),
                       eps);
#else
    (void)out, (void)mean, (void)rstd, (void)x, (void)gain, (void)bias, (void)R, (void)eps;
#endif
    return 0;
}

static int ln_bwd512(float *dx, float *dgain, float *dbias, const float *dout, const float *x,
                     const float *mean, const float *rstd, const float *gain, int64_t R, int64_t C)
{
    if (!ln_wide(C))
        return -1;
#if LIN_X86
    const int nb = (int)(R < LN_CHUNKS ? R : LN_CHUNKS);
    float part[LN_CHUNKS][2][LN_FUSED_MAXC]; /* per block: [0] dgain, [1] dbias partials */
#pragma omp parallel for schedule(static) if (R * C >= RLAB_K_PAR_MIN)
    for (int k = 0; k < nb; k++) {
        float *pg = dgain ? part[k][0] : NULL, *pb = dbias ? part[k][1] : NULL;
        for (int64_t c = 0; c < C; c++)
            part[k][0][c] = part[k][1][c] = 0.0f;
        ln_bwd_rows512(dx, pg, pb, dout, x, mean, rstd, gain, R * k / nb, R * (k + 1) / nb,
                       (int)(C / 16));
    }
    for (int k = 0; k < nb; k++)
        for (int64_t c = 0; c < C; c++) {
            if (dgain)
                dgain[c] += part[k][0][c];
            if (dbias)
                dbias[c] += part[k][1][c];
        }
#else
    (void)dx, (void)dgain, (void)dbias, (void)dout, (void)x, (void)mean, (void)rstd, (void)gain;
    (void)R;
#endif
    return 0;
}

/* ---- layer norm feeding n linears ----------------------------------------------------------- */
/* y_s = act(LN(x) w_s + b_s) without h = LN(x) ever reaching memory: the forward normalises
 * LIN_CHUNK rows into a buffer and runs the tiles (and rlab_k_linear_fwd's epilogue) on it; the
 * backward normalises them again (the same kernel, the same values), masks dy by the ReLU,
 * forms dh = sum_s dz_s w_s^T in a buffer, adds the dW (from h) and db partials, and runs the
 * layer norm's backward on the chunk. Saves the [M, K] h and dh arrays (written, zeroed, read
 * again: about five passes over 6.5 MB per call in the block bench). */
static int lnlin_fast(int64_t N, int64_t K, int n, int act)
{
    return LIN_X86 && rlab_k_avx512() && K == 64 && N == 64 && n >= 1 && n <= LIN_MAXW &&
           (act == RLAB_K_ACT_NONE || (act == RLAB_K_ACT_RELU && n == 1));
}

size_t rlab_k_ln_linear_multi_scratch_floats(int64_t M, int64_t N, int64_t K, int n, int act)
{
    if (!lnlin_fast(N, K, n, act))
        return 0;
    /* W^T [n 64, 64]; per block: dW partials [n][64, 64], dgain, dbias [64], db [n][64], and
     * the chunk's h, dh and dz [LIN_CHUNK, 64] */
    return (size_t)n * 64 * 64 +
           (size_t)lin_nblocks(M) *
               ((size_t)n * 64 * 64 + 2 * 64 + (size_t)n * 64 + 3 * (size_t)LIN_CHUNK * 64) +
           16;
}

int rlab_k_ln_linear_multi_fwd(float *y, float *mean, float *rstd, const float *x,
                               const float *gain, const float *bias, float eps,
                               const float *const *w, const float *const *b, int act, int n,
                               int64_t M, int64_t N, int64_t K, float *scratch)
{
    if (!lnlin_fast(N, K, n, act) || !scratch)
        return -1;
#if LIN_X86
    float *buf = (float *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    // y [n, M, 64]: y_s = act(LN(x) w_s + b_s), x [M, 64]; mean, rstd [M]
    const int nbk = lin_nblocks(M);
#pragma omp parallel for schedule(dynamic, 1) if (M * 64 * 64 * n >= RLAB_K_PAR_MIN && nbk > 1 &&  \
                                                  omp_split_ok())
    for (int j = 0; j < nbk; j++) {
        float *hb = buf + (size_t)j * LIN_CHUNK * 64; /* h of the chunk [LIN_CHUNK, 64] */
        const int64_t m0 = M * j / nbk, m1 = M * (j + 1) / nbk;
        for (int64_t c = m0; c < m1; c += LIN_CHUNK) {
            const int64_t r = m1 - c < LIN_CHUNK ? m1 - c : LIN_CHUNK;
            ln_fwd_rows512(hb, mean + c, rstd + c, x + c * 64, gain, bias, 0, r, 4, eps);
            for (int s = 0; s < n; s++) {
                float *ys = y + (int64_t)s * M * 64 + c * 64;
                gemm64(ys, 64, hb, 64, 1, w[s], 64, 64, r, 0);
                if ((b && b[s]) || act != RLAB_K_ACT_NONE)
                    linear_epilogue(ys, b ? b[s] : NULL, NULL, r, 64, act);
            }
        }
    }
#else
    (void)y, (void)mean, (void)rstd, (void)x, (void)gain, (void)bias, (void)eps, (void)w, (void)b;
    (void)M;
#endif
    return 0;
}

int rlab_k_ln_linear_multi_bwd(float *dx, float *dgain, float *dbias, float *const *dw,
                               float *const *db, const float *dy, const float *y, const float *x,
                               const float *mean, const float *rstd, const float *gain,
                               const float *bias, float eps, const float *const *w, int act, int n,
                               int64_t M, int64_t N, int64_t K, float *scratch)
{
    if (!lnlin_fast(N, K, n, act) || !scratch)
        return -1;
#if LIN_X86
    int any_dw = 0, any_db = 0;
    for (int s = 0; s < n; s++) {
        any_dw |= dw && dw[s];
        any_db |= db && db[s];
    }
    const int relu = act == RLAB_K_ACT_RELU;
    const size_t kw = 64 * 64,
                 per = (size_t)n * kw + 2 * 64 + (size_t)n * 64 + 3 * (size_t)LIN_CHUNK * 64;
    float *wt = (float *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    float *blk = wt + (size_t)n * kw;
    for (int s = 0; s < n; s++)
        for (int64_t o = 0; o < 64; o++) // wt [n 64, 64]: w_s^T
            for (int64_t k = 0; k < 64; k++)
                wt[((int64_t)s * 64 + o) * 64 + k] = w[s][k * 64 + o];
    const int nbk = lin_nblocks(M);
#pragma omp parallel for schedule(dynamic, 1) if (M * 64 * 64 * n >= RLAB_K_PAR_MIN && nbk > 1 &&  \
                                                  omp_split_ok())
    for (int j = 0; j < nbk; j++) {
        float *pw = blk + (size_t)j * per; /* this block's dW partials [n][64, 64] */
        float *pg = pw + (size_t)n * kw, *pb = pg + 64, *pl = pb + 64; /* dgain, dbias, db [n] */
        float *hb = pl + (size_t)n * 64, *dhb = hb + LIN_CHUNK * 64, *zb = dhb + LIN_CHUNK * 64;
        float mtmp[LIN_CHUNK], stmp[LIN_CHUNK];
        const int64_t m0 = M * j / nbk, m1 = M * (j + 1) / nbk;
        memset(pg, 0, (2 + (size_t)n) * 64 * sizeof *pg);
        if (m1 <= m0)
            memset(pw, 0, (size_t)n * kw * sizeof *pw);
        for (int64_t c = m0; c < m1; c += LIN_CHUNK) {
            const int64_t r = m1 - c < LIN_CHUNK ? m1 - c : LIN_CHUNK;
            /* h again, as the forward made it (mean, rstd recomputed equal) */
            ln_fwd_rows512(hb, mtmp, stmp, x + c * 64, gain, bias, 0, r, 4, eps);
            const float *g = dy + c * 64; /* dz_s: segment s at g + s M 64 */
            if (relu) {                   /* n = 1 */
                for (int64_t i = 0; i < r; i++) {
                    const float *restrict gi = g + i * 64, *restrict yi = y + (c + i) * 64;
                    float *restrict z = zb + i * 64;
#pragma omp simd
                    for (int64_t q = 0; q < 64; q++)
                        z[q] = lin_pass(gi[q], yi[q]);
                }
                g = zb;
            }
            for (int s = 0; any_db && s < n; s++) // the bias partials, rows in order
                if (db[s]) {
                    const float *gs = g + (relu ? 0 : (int64_t)s * M * 64);
                    float *restrict p = pl + (size_t)s * 64;
                    for (int64_t i = 0; i < r; i++) {
#pragma omp simd
                        for (int64_t q = 0; q < 64; q++)
                            p[q] += gs[i * 64 + q];
                    }
                }
            memset(dhb, 0, (size_t)r * 64 * sizeof *dhb);
            gemm64_acc_seg(dhb, g, relu ? 0 : M * 64, 64, n, wt, 64, r); // dh = sum dz_s w_s^T
            for (int s = 0; any_dw && s < n; s++)                        // pw_s (+)= h^T dz_s
                gemm64(pw + (size_t)s * kw, 64, hb, 1, 64, g + (relu ? 0 : (int64_t)s * M * 64), 64,
                       r, 64, c > m0);
            ln_bwd_rows512(dx ? dx + c * 64 : NULL, dgain ? pg : NULL, dbias ? pb : NULL, dhb,
                           x + c * 64, mean + c, rstd + c, gain, 0, r, 4);
        }
    }
    for (int j = 0; j < nbk; j++) { /* block order: independent of the threads */
        const float *pw = blk + (size_t)j * per, *pg = pw + (size_t)n * kw, *pb = pg + 64;
        const float *pl = pb + 64;
        for (int s = 0; any_dw && s < n; s++)
            if (dw[s]) {
                const float *p = pw + (size_t)s * kw;
                for (size_t i = 0; i < kw; i++)
                    dw[s][i] += p[i];
            }
        for (int s = 0; any_db && s < n; s++)
            if (db[s])
                for (int i = 0; i < 64; i++)
                    db[s][i] += pl[(size_t)s * 64 + (size_t)i];
        for (int i = 0; i < 64; i++) {
            if (dgain)
                dgain[i] += pg[i];
            if (dbias)
                dbias[i] += pb[i];
        }
    }
#else
    (void)dx, (void)dgain, (void)dbias, (void)dw, (void)db, (void)dy, (void)y, (void)x;
    (void)mean, (void)rstd, (void)gain, (void)bias, (void)eps, (void)w, (void)M;
#endif
    return 0;
}

/* ==== end h-block2 =========================================================================== */
