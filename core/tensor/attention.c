/*
 * core/tensor/attention: multi-head scaled dot-product attention as one fused tape op
 * (llm.c's attention_forward/backward, with masks and attention dropout).
 *
 * For every (batch b, head h) pair the head's slice of q/k/v is a strided [T, Dh] view with
 * leading dimension C, so the two products per pair are plain cblas_sgemm calls without
 * copies:
 *
 *     S = scale * Q K^T          [Tq, Tk]   (scale = 1/sqrt(Dh))
 *     P = masked_softmax(S)      [Tq, Tk]   saved in att for backward
 *     Pd = P * keep / (1 - p)               attention dropout, training only
 *     O = Pd V                   [Tq, Dh]   written into out[b, :, h*Dh : (h+1)*Dh]
 *
 * and backward (dO = out->grad):
 *
 *     dV += Pd^T dO
 *     dPd = dO V^T,  dP = dPd * keep / (1 - p)
 *     dS = P * (dP - rowsum(dP * P))
 *     dQ += scale * dS K,   dK += scale * dS^T Q
 *
 * Pairs write disjoint column blocks of out/dQ/dK/dV, so the pair loop runs under OpenMP with
 * no reductions: results do not depend on the thread count. Inside the parallel loop OpenBLAS
 * is switched to one thread (each sgemm is small; nested threading would only contend).
 *
 * The dropout mask is never stored: keep(b, h, i, j) is a hash of a per-node key and the
 * element index, recomputed in backward (so reruns with the same tape seed/step are
 * bit-identical).
 */
#include "tensor/nn.h"
#include "tensor/ops_internal.h"

#include <cblas.h>
#include <float.h>
#include <math.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* OpenBLAS extensions (see tape.c). */
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);

/* ---- dropout mask --------------------------------------------------------------------- */
static inline uint64_t mix64(uint64_t z)
{
    /* splitmix64 finaliser: a bijection with good avalanche, so consecutive indices give
     * independent-looking bits. */
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static inline uint32_t keep_threshold(float p)
{
    double t = (double)p * 4294967296.0;
    return t >= 4294967295.0 ? 0xffffffffu : (uint32_t)t;
}

static inline int keep_fast(uint64_t key, uint64_t idx, uint32_t thr)
{
    return (uint32_t)(mix64(key + idx * 0x9e3779b97f4a7c15ULL) >> 32) >= thr;
}

int rlab_attention_keep(uint64_t drop_key, uint64_t idx, float p)
{
    return keep_fast(drop_key, idx, keep_threshold(p));
}

/* ---- threads ------------------------------------------------------------------------- */
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

/* Parallelise the pair loop only with enough work per call: below this many multiply-adds
 * (B*H*Tq*Tk*Dh) the fork/join and the idle threads' spinning cost more than they save. */
#define ATTN_PAR_MIN_WORK (1 << 18)

static int use_threads(int npairs, int Tq, int Tk, int Dh)
{
    return npairs > 1 && max_threads() > 1 &&
           (double)npairs * Tq * Tk * Dh >= (double)ATTN_PAR_MIN_WORK;
}

size_t rlab_attention_scratch_floats(int Tq, int Tk)
{
    /* per thread: Pd (forward) or Pd + dP (backward) */
    return (size_t)max_threads() * 2 * (size_t)Tq * (size_t)Tk;
}

/* ---- row kernels ---------------------------------------------------------------------- */
/* The per-row loops below are written branch-free (integer bit masks instead of selects, see
 * rlab_k_expf) so `omp simd` vectorises them; on x86-64 each is built twice (target_clones)
 * and the loader picks the AVX2 copy when the CPU has it. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(RLAB_NO_TARGET_CLONES) &&                 \
    !defined(__clang__)
#define ATTN_HOT __attribute__((target_clones("avx2", "default")))
#else
#define ATTN_HOT
#endif

/* s [Tk] holds scaled scores; keys j < jend with kv[j] != 0 (kv NULL = all) take part. Writes
 * the probabilities in place, 0 elsewhere; a row without any valid key becomes all zeros. */
static ATTN_HOT void softmax_row(float *restrict s, int Tk, int jend, const uint8_t *restrict kv)
{
    if (kv) { /* masked keys become -inf, whose exp below is exactly 0 */
        int any = 0;
        for (int j = 0; j < jend; j++) {
            any |= kv[j] != 0;
            s[j] = kv[j] ? s[j] : -INFINITY;
        }
        if (!any)
            jend = 0;
    }
    if (jend <= 0) {
        memset(s, 0, (size_t)Tk * sizeof *s);
        return;
    }
    float mx = -FLT_MAX;
#pragma omp simd reduction(max : mx)
    for (int j = 0; j < jend; j++)
        mx = s[j] > mx ? s[j] : mx;
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int j = 0; j < jend; j++) {
        const float e = rlab_k_expf(s[j] - mx);
        s[j] = e;
        sum += e;
    }
    const float inv = 1.0f / sum;
#pragma omp simd
    for (int j = 0; j < jend; j++)
        s[j] *= inv;
    if (jend < Tk)
        memset(s + jend, 0, (size_t)(Tk - jend) * sizeof *s);
}

/* keep mask of element idx as all-ones / all-zeros bits (branch-free keep_fast) */
static inline int32_t keep_bits(uint64_t key, uint64_t idx, uint32_t thr)
{
    return -(int32_t)((uint32_t)(mix64(key + idx * 0x9e3779b97f4a7c15ULL) >> 32) >= thr);
}

static inline float and_bits(float x, int32_t m)
{
    int32_t ix;
    memcpy(&ix, &x, sizeof ix);
    ix &= m;
    memcpy(&x, &ix, sizeof x);
    return x;
}

/* Pd [n] = keep(idx0 + j) ? P * inv_keep : 0 */
static ATTN_HOT void drop_row(float *restrict Pd, const float *restrict P, int n, uint64_t key,
                              uint64_t idx0, uint32_t thr, float inv_keep)
{
#pragma omp simd
    for (int j = 0; j < n; j++)
        Pd[j] = and_bits(P[j] * inv_keep, keep_bits(key, idx0 + (uint64_t)j, thr));
}

/* the same, and dP [n] = keep ? dP * inv_keep : 0 in place (dP NULL: skipped) */
static ATTN_HOT void drop_row2(float *restrict Pd, float *restrict dP, const float *restrict P,
                               int n, uint64_t key, uint64_t idx0, uint32_t thr, float inv_keep)
{
    if (!dP) {
        drop_row(Pd, P, n, key, idx0, thr, inv_keep);
        return;
    }
#pragma omp simd
    for (int j = 0; j < n; j++) {
        const int32_t m = keep_bits(key, idx0 + (uint64_t)j, thr);
        Pd[j] = and_bits(P[j] * inv_keep, m);
        dP[j] = and_bits(dP[j] * inv_keep, m);
    }
}

/* softmax backward of one row, in place: d [n] = p * (d - <p, d>) */
static ATTN_HOT void dsoftmax_row(float *restrict d, const float *restrict p, int n)
{
    float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
    for (int j = 0; j < n; j++)
        dot += p[j] * d[j];
#pragma omp simd
    for (int j = 0; j < n; j++)
        d[j] = p[j] * (d[j] - dot);
}

/* Number of keys query i may see before the key-padding mask: i + 1 when causal. */
static inline int key_end(unsigned flags, int i, int Tk)
{
    if (!(flags & RLAB_ATTN_CAUSAL))
        return Tk;
    return i + 1 < Tk ? i + 1 : Tk;
}

/* ---- fast kernels ----------------------------------------------------------------------- */
/* Causal attention works on blocks of ATTN_ROW_BLOCK query rows: block [i0, i1) needs only
 * keys [0, min(i1, Tk)), so the products skip the masked upper triangle (about 45% of the
 * dense work at T = 200). Without the causal mask a pair is one block (largest sgemm). */
#define ATTN_ROW_BLOCK 32

static inline int row_block(unsigned flags, int Tq)
{
    return (flags & RLAB_ATTN_CAUSAL) && Tq > ATTN_ROW_BLOCK ? ATTN_ROW_BLOCK : Tq;
}

/* Keys that rows [.., i1) of a block can see at all. */
static inline int block_keys(unsigned flags, int i1, int Tk)
{
    return (flags & RLAB_ATTN_CAUSAL) && i1 < Tk ? i1 : Tk;
}

/* The window of one batch row: keys before j0, the first valid key, are all masked (left
 * padding), so every product starts at key j0; rows before rs see no valid key at all (causal:
 * rows i < j0; no valid key: every row) and are zero. Skipping them changes no result beyond
 * rounding (the skipped terms are exact zeros); the dropout index of (i, j) stays the same. */
static inline int first_key(const uint8_t *kv, int Tk)
{
    int j0 = 0;
    while (kv && j0 < Tk && !kv[j0])
        j0++;
    return j0;
}

static inline int first_row(unsigned flags, int j0, int Tq, int Tk)
{
    if (j0 >= Tk)
        return Tq;
    if (!(flags & RLAB_ATTN_CAUSAL))
        return 0;
    return j0 < Tq ? j0 : Tq;
}

void rlab_attention_forward(float *out, float *att, float *scratch, const float *q, const float *k,
                            const float *v, int B, int Tq, int Tk, int C, int H,
                            const uint8_t *key_valid, const uint8_t *query_valid, unsigned flags,
                            float dropout, uint64_t drop_key)
{
    // out [B, Tq, C], att [B, H, Tq, Tk], q [B, Tq, C], k/v [B, Tk, C]
    const int Dh = C / H;
    const float scale = 1.0f / sqrtf((float)Dh);
    const int npairs = B * H, RB = row_block(flags, Tq);
    const uint32_t thr = keep_threshold(dropout);
    const float inv_keep = dropout > 0.0f ? 1.0f / (1.0f - dropout) : 1.0f;
    if ((int64_t)B * Tq * C == 0)
        return;
    if (Tk == 0) {
        memset(out, 0, (size_t)B * Tq * C * sizeof *out);
        return;
    }
    const int blas_threads = openblas_get_num_threads();
    const int par = use_threads(npairs, Tq, Tk, Dh);
    if (par && blas_threads > 1)
        openblas_set_num_threads(1);
#pragma omp parallel for schedule(dynamic, 1) if (par)
    for (int bh = 0; bh < npairs; bh++) {
        const int b = bh / H, h = bh % H;
        const float *qb = q + (size_t)b * Tq * C + (size_t)h * Dh; // [Tq, Dh], ld C
        const float *kb = k + (size_t)b * Tk * C + (size_t)h * Dh; // [Tk, Dh], ld C
        const float *vb = v + (size_t)b * Tk * C + (size_t)h * Dh; // [Tk, Dh], ld C
        float *ob = out + (size_t)b * Tq * C + (size_t)h * Dh;     // [Tq, Dh], ld C
        float *P = att + (size_t)bh * Tq * Tk;                     // [Tq, Tk]
        float *Pd = scratch + (size_t)thread_id() * 2 * Tq * Tk;   // [Tq, Tk] dropped P
        const uint8_t *kv = key_valid ? key_valid + (size_t)b * Tk : NULL;
        const uint8_t *qv = query_valid ? query_valid + (size_t)b * Tq : NULL;
        const uint64_t base = (uint64_t)bh * Tq * Tk;
        const int j0 = first_key(kv, Tk), rs = first_row(flags, j0, Tq, Tk);
        for (int i = 0; i < rs; i++) {
            memset(P + (size_t)i * Tk, 0, (size_t)Tk * sizeof *P);
            memset(ob + (size_t)i * C, 0, (size_t)Dh * sizeof *ob);
        }

        for (int i0 = rs; i0 < Tq; i0 += RB) {
            const int i1 = i0 + RB < Tq ? i0 + RB : Tq, mb = i1 - i0;
            const int nk = block_keys(flags, i1, Tk) - j0;
            // S = scale * Q K^T  [mb, keys j0 .. j0 + nk), then the masked softmax row by row
            // (in place; softmax_row zeroes the row's columns beyond what it may see, up to Tk)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, mb, nk, Dh, scale,
                        qb + (size_t)i0 * C, C, kb + (size_t)j0 * C, C, 0.0f,
                        P + (size_t)i0 * Tk + j0, Tk);
            for (int i = i0; i < i1; i++) {
                float *row = P + (size_t)i * Tk;
                if (qv && !qv[i]) {
                    memset(row, 0, (size_t)Tk * sizeof *row);
                    continue;
                }
                memset(row, 0, (size_t)j0 * sizeof *row);
                softmax_row(row + j0, Tk - j0, key_end(flags, i, Tk) - j0, kv ? kv + j0 : NULL);
            }
            // O = Pd V  [mb, Dh] (Pd = P when not dropping)
            const float *Pv = P;
            if (dropout > 0.0f) {
                for (int i = i0; i < i1; i++) {
                    const size_t r = (size_t)i * Tk + (size_t)j0;
                    drop_row(Pd + r, P + r, nk, drop_key, base + r, thr, inv_keep);
                }
                Pv = Pd;
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, mb, Dh, nk, 1.0f,
                        Pv + (size_t)i0 * Tk + j0, Tk, vb + (size_t)j0 * C, C, 0.0f,
                        ob + (size_t)i0 * C, C);
        }
    }
    if (par && blas_threads > 1)
        openblas_set_num_threads(blas_threads);
}

void rlab_attention_backward(float *dq, float *dk, float *dv, float *scratch, const float *dout,
                             const float *att, const float *q, const float *k, const float *v,
                             int B, int Tq, int Tk, int C, int H, const uint8_t *key_valid,
                             unsigned flags, float dropout, uint64_t drop_key)
{
    // dq/dout [B, Tq, C], dk/dv [B, Tk, C], att [B, H, Tq, Tk] (P from forward)
    const int Dh = C / H;
    const float scale = 1.0f / sqrtf((float)Dh);
    const int npairs = B * H, RB = row_block(flags, Tq);
    const uint32_t thr = keep_threshold(dropout);
    const float inv_keep = dropout > 0.0f ? 1.0f / (1.0f - dropout) : 1.0f;
    if ((int64_t)B * Tq * Tk * C == 0 || (!dq && !dk && !dv))
        return;
    const int blas_threads = openblas_get_num_threads();
    const int par = use_threads(npairs, Tq, Tk, Dh);
    if (par && blas_threads > 1)
        openblas_set_num_threads(1);
#pragma omp parallel for schedule(dynamic, 1) if (par)
    for (int bh = 0; bh < npairs; bh++) {
        const int b = bh / H, h = bh % H;
        const size_t qoff = (size_t)b * Tq * C + (size_t)h * Dh;
        const size_t koff = (size_t)b * Tk * C + (size_t)h * Dh;
        const float *P = att + (size_t)bh * Tq * Tk; // [Tq, Tk]
        const float *dob = dout + qoff;              // [Tq, Dh], ld C
        float *dP = scratch + (size_t)thread_id() * 2 * Tq * Tk;
        float *Pd = dP + (size_t)Tq * Tk;
        const uint64_t base = (uint64_t)bh * Tq * Tk;
        const int j0 = first_key(key_valid ? key_valid + (size_t)b * Tk : NULL, Tk);
        const int rs = first_row(flags, j0, Tq, Tk);
        const size_t kj = koff + (size_t)j0 * C; /* row j0 of k / v / dk / dv */

        for (int i0 = rs; i0 < Tq; i0 += RB) {
            const int i1 = i0 + RB < Tq ? i0 + RB : Tq, mb = i1 - i0;
            const int nk = block_keys(flags, i1, Tk) - j0;
            const size_t r0 = (size_t)i0 * Tk + (size_t)j0;
            // dPd = dO V^T  [mb, keys j0 .. j0 + nk)
            if (dq || dk)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, mb, nk, Dh, 1.0f,
                            dob + (size_t)i0 * C, C, v + kj, C, 0.0f, dP + r0, Tk);
            // through dropout, one pass over the mask: Pd = P keep / (1 - p) (what multiplied
            // V in forward) and dP = dPd keep / (1 - p)
            const float *Pv = P;
            if (dropout > 0.0f) {
                for (int i = i0; i < i1; i++) {
                    const size_t r = (size_t)i * Tk + (size_t)j0;
                    drop_row2(Pd + r, dq || dk ? dP + r : NULL, P + r, nk, drop_key, base + r, thr,
                              inv_keep);
                }
                Pv = Pd;
            }
            // dV[j0:j0+nk] += Pd^T dO  [nk, Dh]
            if (dv)
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nk, Dh, mb, 1.0f, Pv + r0, Tk,
                            dob + (size_t)i0 * C, C, 1.0f, dv + kj, C);
            if (!dq && !dk)
                continue;
            // dS = P * (dP - rowsum(dP * P)), in place in dP (P is 0 outside the window)
            for (int i = i0; i < i1; i++)
                dsoftmax_row(dP + (size_t)i * Tk + j0, P + (size_t)i * Tk + j0, nk);
            // dQ[i0:i1] += scale * dS K  [mb, Dh];   dK[j0:j0+nk] += scale * dS^T Q  [nk, Dh]
            if (dq)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, mb, Dh, nk, scale, dP + r0,
                            Tk, k + kj, C, 1.0f, dq + qoff + (size_t)i0 * C, C);
            if (dk)
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nk, Dh, mb, scale, dP + r0, Tk,
                            q + qoff + (size_t)i0 * C, C, 1.0f, dk + kj, C);
        }
    }
    if (par && blas_threads > 1)
        openblas_set_num_threads(blas_threads);
}

/* ---- naive reference kernels (test oracles) -------------------------------------------- */
void rlab_attention_forward_naive(float *out, float *att, const float *q, const float *k,
                                  const float *v, int B, int Tq, int Tk, int C, int H,
                                  const uint8_t *key_valid, const uint8_t *query_valid,
                                  unsigned flags, float dropout, uint64_t drop_key)
{
    const int Dh = C / H;
    const float scale = 1.0f / sqrtf((float)Dh);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int i = 0; i < Tq; i++) {
                float *P = att + (((size_t)b * H + h) * Tq + i) * Tk;
                const float *qi = q + ((size_t)b * Tq + i) * C + h * Dh;
                float *oi = out + ((size_t)b * Tq + i) * C + h * Dh;
                int valid_q = !query_valid || query_valid[b * Tq + i];
                float mx = -FLT_MAX;
                int any = 0;
                for (int j = 0; j < Tk; j++) {
                    const float *kj = k + ((size_t)b * Tk + j) * C + h * Dh;
                    int ok = valid_q && (!key_valid || key_valid[b * Tk + j]) &&
                             (!(flags & RLAB_ATTN_CAUSAL) || j <= i);
                    float s = 0.0f;
                    for (int d = 0; d < Dh; d++)
                        s += qi[d] * kj[d];
                    P[j] = ok ? s * scale : -INFINITY;
                    if (ok) {
                        any = 1;
                        mx = fmaxf(mx, P[j]);
                    }
                }
                float sum = 0.0f;
                for (int j = 0; j < Tk; j++) {
                    P[j] = any && !isinf(P[j]) ? expf(P[j] - mx) : 0.0f;
                    sum += P[j];
                }
                for (int j = 0; j < Tk; j++)
                    P[j] = any ? P[j] / sum : 0.0f;
                for (int d = 0; d < Dh; d++)
                    oi[d] = 0.0f;
                for (int j = 0; j < Tk; j++) {
                    float p = P[j];
                    if (dropout > 0.0f) {
                        uint64_t idx = (((uint64_t)b * H + h) * Tq + i) * Tk + j;
                        p = rlab_attention_keep(drop_key, idx, dropout) ? p / (1.0f - dropout)
                                                                        : 0.0f;
                    }
                    const float *vj = v + ((size_t)b * Tk + j) * C + h * Dh;
                    for (int d = 0; d < Dh; d++)
                        oi[d] += p * vj[d];
                }
            }
}

void rlab_attention_backward_naive(float *dq, float *dk, float *dv, const float *dout,
                                   const float *att, const float *q, const float *k, const float *v,
                                   int B, int Tq, int Tk, int C, int H, float dropout,
                                   uint64_t drop_key)
{
    const int Dh = C / H;
    const float scale = 1.0f / sqrtf((float)Dh);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int i = 0; i < Tq; i++) {
                const float *P = att + (((size_t)b * H + h) * Tq + i) * Tk;
                const float *doi = dout + ((size_t)b * Tq + i) * C + h * Dh;
                const float *qi = q + ((size_t)b * Tq + i) * C + h * Dh;
                float dot = 0.0f;
                for (int j = 0; j < Tk; j++) {
                    const float *vj = v + ((size_t)b * Tk + j) * C + h * Dh;
                    float m = 1.0f;
                    if (dropout > 0.0f) {
                        uint64_t idx = (((uint64_t)b * H + h) * Tq + i) * Tk + j;
                        m = rlab_attention_keep(drop_key, idx, dropout) ? 1.0f / (1.0f - dropout)
                                                                        : 0.0f;
                    }
                    float dp = 0.0f;
                    for (int d = 0; d < Dh; d++) {
                        dp += doi[d] * vj[d];
                        if (dv)
                            dv[((size_t)b * Tk + j) * C + h * Dh + d] += P[j] * m * doi[d];
                    }
                    dot += P[j] * dp * m;
                }
                for (int j = 0; j < Tk; j++) {
                    const float *vj = v + ((size_t)b * Tk + j) * C + h * Dh;
                    const float *kj = k + ((size_t)b * Tk + j) * C + h * Dh;
                    float m = 1.0f;
                    if (dropout > 0.0f) {
                        uint64_t idx = (((uint64_t)b * H + h) * Tq + i) * Tk + j;
                        m = rlab_attention_keep(drop_key, idx, dropout) ? 1.0f / (1.0f - dropout)
                                                                        : 0.0f;
                    }
                    float dp = 0.0f;
                    for (int d = 0; d < Dh; d++)
                        dp += doi[d] * vj[d];
                    float ds = P[j] * (dp * m - dot) * scale;
                    for (int d = 0; d < Dh; d++) {
                        if (dq)
                            dq[((size_t)b * Tq + i) * C + h * Dh + d] += ds * kj[d];
                        if (dk)
                            dk[((size_t)b * Tk + j) * C + h * Dh + d] += ds * qi[d];
                    }
                }
            }
}

/* ---- the tape op ----------------------------------------------------------------------- */
/* Saved for backward (aux[0], on the arena). dropout is 0 when the tape was not training. The
 * masks are not needed in backward: P already holds zeros at masked entries. */
typedef struct {
    float *att;
    float dropout;
    uint64_t drop_key;
    int B, Tq, Tk, C, H;
    unsigned flags;
} attn_saved;

static void attention_backward_op(rlab_tape *tape, rlab_tensor *out)
{
    const attn_saved *s = out->aux[0];
    rlab_tensor *q = out->src[0], *k = out->src[1], *v = out->src[2];
    float *scratch =
        rlab_tape_alloc(tape, rlab_attention_scratch_floats(s->Tq, s->Tk) * sizeof(float));
    if (!scratch)
        return;
    rlab_attention_backward(q->grad, k->grad, v->grad, scratch, out->grad, s->att, q->data, k->data,
                            v->data, s->B, s->Tq, s->Tk, s->C, s->H, out->ext[0], s->flags,
                            s->dropout, s->drop_key);
}

rlab_tensor *rlab_t_attention(rlab_tape *t, rlab_tensor *q, rlab_tensor *k, rlab_tensor *v,
                              int n_heads, const uint8_t *key_valid, const uint8_t *query_valid,
                              unsigned flags, float dropout)
{
    rlab_tensor *src[3] = {q, k, v};
    if (t->err.code)
        return &t->poison;
    if (rlab_t_bad((const rlab_tensor *const *)src, 3))
        return rlab_tape_fail(t, RLAB_EINVAL, "attention: invalid input tensor");
    char b1[64], b2[64], b3[64];
    if (q->ndim != 3 || k->ndim != 3 || v->ndim != 3 || k->shape[0] != q->shape[0] ||
        v->shape[0] != q->shape[0] || k->shape[1] != v->shape[1] || k->shape[2] != q->shape[2] ||
        v->shape[2] != q->shape[2])
        return rlab_tape_fail(t, RLAB_EINVAL,
                              "attention: need q [B, Tq, C], k and v [B, Tk, C]; got q %s, k %s, "
                              "v %s",
                              rlab_t_shape_str(q, b1, sizeof b1),
                              rlab_t_shape_str(k, b2, sizeof b2),
                              rlab_t_shape_str(v, b3, sizeof b3));
    const int64_t B = q->shape[0], Tq = q->shape[1], Tk = k->shape[1], C = q->shape[2];
    if (n_heads < 1 || C % n_heads != 0)
        return rlab_tape_fail(t, RLAB_EINVAL, "attention: %d heads do not divide width %lld",
                              n_heads, (long long)C);
    if (!(dropout >= 0.0f && dropout < 1.0f))
        return rlab_tape_fail(t, RLAB_EINVAL, "attention: dropout %g outside [0, 1)",
                              (double)dropout);
    if (B * n_heads > INT32_MAX || Tq > INT32_MAX || Tk > INT32_MAX || C > INT32_MAX)
        return rlab_tape_fail(t, RLAB_EINVAL, "attention: dimensions too large");

    rlab_tensor *out = rlab_tape_op_nofill(t, "attention", 3, (int64_t[]){B, Tq, C}, src, 3,
                                           attention_backward_op);
    attn_saved *s = rlab_tape_alloc(t, sizeof *s);
    float *att = rlab_tape_alloc(t, (size_t)(B * n_heads * Tq * Tk) * sizeof(float) + 1);
    float *scratch =
        rlab_tape_alloc(t, rlab_attention_scratch_floats((int)Tq, (int)Tk) * sizeof(float) + 1);
    if (t->err.code)
        return &t->poison;
    *s = (attn_saved){.att = att,
                      .dropout = t->training ? dropout : 0.0f,
                      .B = (int)B,
                      .Tq = (int)Tq,
                      .Tk = (int)Tk,
                      .C = (int)C,
                      .H = n_heads,
                      .flags = flags};
    /* the mask stream of this node: (seed, step, node index), as dropout in ops */
    s->drop_key = mix64(mix64(t->seed ^ 0x6a09e667f3bcc909ULL) + t->step * 0x9e3779b97f4a7c15ULL +
                        (uint64_t)(t->nnodes - 1));
    out->aux[0] = s;
    out->ext[0] = key_valid;
    out->ext[1] = query_valid;
    out->p.i[0] = (int64_t)flags;
    rlab_attention_forward(out->data, att, scratch, q->data, k->data, v->data, s->B, s->Tq, s->Tk,
                           s->C, s->H, key_valid, query_valid, flags, s->dropout, s->drop_key);
    return out;
}
