/*
 * core/tensor/kernels: fast kernels (sgemm, OpenMP over rows) and their naive reference twins.
 * Every parallel loop uses a static schedule over independent rows (or fixed blocks), so no
 * float sum ever depends on how the work was split between threads.
 */
#include "tensor/kernels.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

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

void rlab_k_dropout_mask(uint8_t *mask, int64_t n, float p, uint64_t seed, uint64_t step,
                         uint64_t node)
{
    const uint64_t key = stream_key(seed, step, node);
    const uint32_t klo = (uint32_t)key, khi = (uint32_t)(key >> 32);
    /* keep iff u >= p with u the top 24 bits as a fraction (exact in float) */
    const uint32_t thresh = (uint32_t)((double)p * 16777216.0);
#pragma omp parallel for simd schedule(static) if (n >= RLAB_K_PAR_MIN)
    for (int64_t i = 0; i < n; i++)
        mask[i] = (fin32(((uint32_t)i * 0x9e3779b9u + klo) ^ khi) >> 8) >= thresh;
}

/* ---- matmul ------------------------------------------------------------------------------- */
static inline CBLAS_TRANSPOSE tr(int t) { return t ? CblasTrans : CblasNoTrans; }

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
    cblas_sgemm(CblasRowMajor, tr(ta), tr(tb), (int)M, (int)N, (int)K, 1.0f, A, (int)(ta ? M : K),
                B, (int)(tb ? K : N), 0.0f, C, (int)N);
}

void rlab_k_matmul_bwd(float *dA, float *dB, const float *dC, const float *A, const float *B,
                       int64_t M, int64_t N, int64_t K, int ta, int tb)
{
    if (M == 0 || N == 0 || K == 0)
        return;
    const int lda = (int)(ta ? M : K), ldb = (int)(tb ? K : N);
    if (dA) {
        if (!ta) /* dA [M, K] += dC [M, N] op(B)^T [N, K] */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, tr(!tb), (int)M, (int)K, (int)N, 1.0f, dC,
                        (int)N, B, ldb, 1.0f, dA, (int)K);
        else /* dA [K, M] += op(B) [K, N] dC^T [N, M] */
            cblas_sgemm(CblasRowMajor, tr(tb), CblasTrans, (int)K, (int)M, (int)N, 1.0f, B, ldb, dC,
                        (int)N, 1.0f, dA, (int)M);
    }
    if (dB) {
        if (!tb) /* dB [K, N] += op(A)^T [K, M] dC [M, N] */
            cblas_sgemm(CblasRowMajor, tr(!ta), CblasNoTrans, (int)K, (int)N, (int)M, 1.0f, A, lda,
                        dC, (int)N, 1.0f, dB, (int)N);
        else /* dB [N, K] += dC^T [N, M] op(A) [M, K] */
            cblas_sgemm(CblasRowMajor, CblasTrans, tr(ta), (int)N, (int)K, (int)M, 1.0f, dC, (int)N,
                        A, lda, 1.0f, dB, (int)K);
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
void rlab_k_layernorm_fwd(float *out, float *mean, float *rstd, const float *x, const float *gain,
                          const float *bias, int64_t R, int64_t C, float eps)
{
    // x [R, C] -> out [R, C]; mean, rstd [R]; gain, bias [C] or NULL
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

void rlab_k_layernorm_bwd(float *dx, float *dgain, float *dbias, const float *dout, const float *x,
                          const float *mean, const float *rstd, const float *gain, int64_t R,
                          int64_t C)
{
    // dout, x [R, C]; mean, rstd [R]; += into dx [R, C], dgain, dbias [C]
    const float invC = 1.0f / (float)(C ? C : 1);
    if (dx) {
#pragma omp parallel for schedule(static) if (R * C >= RLAB_K_PAR_MIN)
        for (int64_t r = 0; r < R; r++) {
            const float *xr = x + r * C, *gr = dout + r * C;
            float *dxr = dx + r * C;
            const float m = mean[r], s = rstd[r];
            /* dxhat = dout * gain; dx = s * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)) */
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
    }
    /* the column sums run over rows in order (vectorised over c): deterministic */
    if (dgain || dbias)
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
    // dout [n, D] scattered into dtable [V, D]; serial: repeated ids must add in a fixed order
    for (int64_t i = 0; i < n; i++) {
        int64_t id = ids[i];
        if (is_pad(id, V, pad))
            continue;
        float *dst = dtable + id * D;
        const float *g = dout + i * D;
        for (int64_t d = 0; d < D; d++)
            dst[d] += g[d];
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
