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

/* Keys padded for the packed K^T / V^T of the AVX-512 kernels (tiles read 32 columns). */
static inline size_t pack_cols(int Tk) { return ((size_t)Tk + 31) / 32 * 32; }

/* Floats of one thread's slot: Pd (forward) or Pd + dP (backward), then the packed transpose
 * [64][pack_cols(Tk)] of K (forward) or V (backward) for the AVX-512 kernels. */
static inline size_t slot_floats(int Tq, int Tk)
{
    return 2 * (size_t)Tq * (size_t)Tk + 64 * pack_cols(Tk);
}

size_t rlab_attention_scratch_floats(int Tq, int Tk)
{
    return (size_t)max_threads() * slot_floats(Tq, Tk);
}

/* ---- row kernels ---------------------------------------------------------------------- */
/* The per-row loops below are written branch-free (integer bit masks instead of selects, see
 * rlab_k_expf) so `omp simd` vectorises them; on x86-64 each is built twice (target_clones)
 * and the loader picks the AVX2 copy when the CPU has it. */
#define ATTN_HOT RLAB_CLONES("avx512f", "avx2", "default")

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

/* ---- AVX-512 kernels -------------------------------------------------------------------- */
/* With AVX-512F and Dh <= 64 (rlab_k_avx512(): switched off with rlab_k_set_avx512(0)) the
 * products of a pair run in two register-tiled micro-kernels instead of cblas_sgemm. At
 * SASRec's size (T = 200, Dh = 64) each product is a few hundred thousand multiply-adds, and
 * OpenBLAS spends a large share of such a call packing its operands and dispatching; here a
 * pair packs one transpose (K^T forward, V^T backward: 50 KB, once per pair) and everything
 * else is read in place:
 *
 *     tile_abt  out [<= 12, <= 32] = alpha A [.., Dh] Bt [Dh, ..]     S = Q K^T, dP = dO V^T
 *               24 accumulators; per d two loads of Bt, twelve broadcasts of A
 *     tile_pv   out [<= 6, Dh] (+)= alpha sum_j P(r, j) V [j, Dh]       O = P V, dQ = dS K,
 *               P(r, j) at p[r sr + j sj] (sj = Tk: P^T, for dV = Pd^T dO, dK = dS^T Q);
 *               24 accumulators; per j four loads of a V row, six broadcasts of P
 *
 * Causal masking is applied per tile (a block of query rows computes only the keys its last
 * row may see) and the P^T products start each block of keys at its first query row, so both
 * triangles are skipped. Each output element is one FMA chain in a fixed order, independent
 * of the thread: results do not depend on the thread count. They differ from the cblas path
 * by float rounding only. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(RLAB_NO_PANEL_KERNEL)
#define ATTN_X86 1
#include <immintrin.h>

#include "exp512_internal.h"
#else
#define ATTN_X86 0
#endif

#define AB_MR 12 /* rows of a tile_abt tile (columns: 32) */
#define PV_MR 6  /* rows of a tile_pv tile (columns: Dh <= 64) */

static int attn_fast(int Dh) { return ATTN_X86 && Dh <= 64 && rlab_k_avx512(); }

/* End of the part of row i of P that is written (the rest of the row is left as it was):
 * causal rows stop at the end of the query row block that holds i, for the blocks of both
 * paths (AB_MR rows here, ATTN_ROW_BLOCK for cblas; both start at rs), whichever is longer,
 * so either backward reads only what either forward wrote, zeros above the diagonal included.
 * The masked triangle beyond it (about 40% of P at T = 200) is neither zeroed nor read. */
static inline int row_window(unsigned flags, int i, int rs, int Tq, int Tk)
{
    if (!(flags & RLAB_ATTN_CAUSAL) || i < rs)
        return Tk;
    const int rb = row_block(flags, Tq);
    const int e1 = rs + ((i - rs) / AB_MR + 1) * AB_MR, e2 = rs + ((i - rs) / rb + 1) * rb;
    const int e = e1 > e2 ? e1 : e2;
    return e < Tk ? e : Tk;
}

#if ATTN_X86
#define ABT_ROW(i)                                                                                 \
    __m512 c##i##0 = _mm512_setzero_ps(), c##i##1 = c##i##0;                                       \
    const float *a##i = a + (size_t)(i < nr ? i : nr - 1) * (size_t)lda
#define ABT_STEP(i)                                                                                \
    do {                                                                                           \
        const __m512 x = _mm512_set1_ps(a##i[d]);                                                  \
        c##i##0 = _mm512_fmadd_ps(x, b0, c##i##0);                                                 \
        c##i##1 = _mm512_fmadd_ps(x, b1, c##i##1);                                                 \
    } while (0)

/* out [nr <= 12, nc <= 32] (row stride ldo) = alpha * a [nr, Dh] (row stride lda) times
 * bt [Dh, 32] (row stride ldb; all 32 columns readable). */
__attribute__((target("avx512f"))) static void tile_abt(float *out, int ldo, const float *a,
                                                        int lda, const float *bt, int ldb, int Dh,
                                                        int nr, int nc, float alpha)
{
    ABT_ROW(0);
    ABT_ROW(1);
    ABT_ROW(2);
    ABT_ROW(3);
    ABT_ROW(4);
    ABT_ROW(5);
    ABT_ROW(6);
    ABT_ROW(7);
    ABT_ROW(8);
    ABT_ROW(9);
    ABT_ROW(10);
    ABT_ROW(11);
    for (int d = 0; d < Dh; d++) {
        const __m512 b0 = _mm512_loadu_ps(bt + (size_t)d * ldb);
        const __m512 b1 = _mm512_loadu_ps(bt + (size_t)d * ldb + 16);
        ABT_STEP(0);
        ABT_STEP(1);
        ABT_STEP(2);
        ABT_STEP(3);
        ABT_STEP(4);
        ABT_STEP(5);
        ABT_STEP(6);
        ABT_STEP(7);
        ABT_STEP(8);
        ABT_STEP(9);
        ABT_STEP(10);
        ABT_STEP(11);
    }
    const __m512 acc[AB_MR][2] = {{c00, c01}, {c10, c11}, {c20, c21},   {c30, c31},
                                  {c40, c41}, {c50, c51}, {c60, c61},   {c70, c71},
                                  {c80, c81}, {c90, c91}, {c100, c101}, {c110, c111}};
    const __mmask16 m0 = (__mmask16)(nc >= 16 ? 0xffffu : (1u << nc) - 1u);
    const __mmask16 m1 = (__mmask16)(nc >= 32 ? 0xffffu : nc <= 16 ? 0u : (1u << (nc - 16)) - 1u);
    const __m512 s = _mm512_set1_ps(alpha);
    for (int r = 0; r < nr; r++) {
        _mm512_mask_storeu_ps(out + (size_t)r * ldo, m0, _mm512_mul_ps(acc[r][0], s));
        _mm512_mask_storeu_ps(out + (size_t)r * ldo + 16, m1, _mm512_mul_ps(acc[r][1], s));
    }
}
#undef ABT_ROW
#undef ABT_STEP

#define ABT16_ROW(i)                                                                               \
    __m512 c##i = _mm512_setzero_ps();                                                             \
    const float *a##i = a + (size_t)(i < nr ? i : nr - 1) * (size_t)lda
#define ABT16_STEP(i) c##i = _mm512_fmadd_ps(_mm512_set1_ps(a##i[d]), b0, c##i)

/* tile_abt for nc <= 16 (a causal block's last tile is often this narrow): half the FMAs of
 * a 32-column tile, each output element the same FMA chain (same results) */
__attribute__((target("avx512f"))) static void tile_abt16(float *out, int ldo, const float *a,
                                                          int lda, const float *bt, int ldb, int Dh,
                                                          int nr, int nc, float alpha)
{
    ABT16_ROW(0);
    ABT16_ROW(1);
    ABT16_ROW(2);
    ABT16_ROW(3);
    ABT16_ROW(4);
    ABT16_ROW(5);
    ABT16_ROW(6);
    ABT16_ROW(7);
    ABT16_ROW(8);
    ABT16_ROW(9);
    ABT16_ROW(10);
    ABT16_ROW(11);
    for (int d = 0; d < Dh; d++) {
        const __m512 b0 = _mm512_loadu_ps(bt + (size_t)d * ldb);
        ABT16_STEP(0);
        ABT16_STEP(1);
        ABT16_STEP(2);
        ABT16_STEP(3);
        ABT16_STEP(4);
        ABT16_STEP(5);
        ABT16_STEP(6);
        ABT16_STEP(7);
        ABT16_STEP(8);
        ABT16_STEP(9);
        ABT16_STEP(10);
        ABT16_STEP(11);
    }
    const __m512 acc[AB_MR] = {c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11};
    const __mmask16 m0 = (__mmask16)(nc >= 16 ? 0xffffu : (1u << nc) - 1u);
    const __m512 s = _mm512_set1_ps(alpha);
    for (int r = 0; r < nr; r++)
        _mm512_mask_storeu_ps(out + (size_t)r * ldo, m0, _mm512_mul_ps(acc[r], s));
}
#undef ABT16_ROW
#undef ABT16_STEP

#define PV_ROW(i)                                                                                  \
    __m512 c##i##0 = _mm512_setzero_ps(), c##i##1 = c##i##0, c##i##2 = c##i##0, c##i##3 = c##i##0; \
    const float *p##i = p + (i < nr ? i : nr - 1) * sr
#define PV_STEP(i)                                                                                 \
    do {                                                                                           \
        const __m512 x = _mm512_set1_ps(p##i[j * sj]);                                             \
        c##i##0 = _mm512_fmadd_ps(x, v0, c##i##0);                                                 \
        c##i##1 = _mm512_fmadd_ps(x, v1, c##i##1);                                                 \
        c##i##2 = _mm512_fmadd_ps(x, v2, c##i##2);                                                 \
        c##i##3 = _mm512_fmadd_ps(x, v3, c##i##3);                                                 \
    } while (0)

static inline __mmask16 lane_mask(int Dh, int c)
{
    const int n = Dh - 16 * c;
    return (__mmask16)(n >= 16 ? 0xffffu : n <= 0 ? 0u : (1u << n) - 1u);
}

/* out [nr <= 6, Dh <= 64] (row stride ldo) = (acc: out +) alpha * sum_{j < n} P(r, j) v [j, Dh]
 * (row stride ldv), with P(r, j) = p[r sr + j sj]. Two copies: any Dh (masked loads), and
 * Dh = 64 (plain loads: no mask registers to keep live beside the 24 accumulators). */
#define PV_BODY(LOAD)                                                                              \
    PV_ROW(0);                                                                                     \
    PV_ROW(1);                                                                                     \
    PV_ROW(2);                                                                                     \
    PV_ROW(3);                                                                                     \
    PV_ROW(4);                                                                                     \
    PV_ROW(5);                                                                                     \
    for (int64_t j = 0; j < n; j++) {                                                              \
        const float *vj = v + (size_t)j * ldv;                                                     \
        const __m512 v0 = LOAD(0, vj), v1 = LOAD(1, vj + 16), v2 = LOAD(2, vj + 32);               \
        const __m512 v3 = LOAD(3, vj + 48);                                                        \
        PV_STEP(0);                                                                                \
        PV_STEP(1);                                                                                \
        PV_STEP(2);                                                                                \
        PV_STEP(3);                                                                                \
        PV_STEP(4);                                                                                \
        PV_STEP(5);                                                                                \
    }                                                                                              \
    const __m512 cc[PV_MR][4] = {                                                                  \
        {c00, c01, c02, c03}, {c10, c11, c12, c13}, {c20, c21, c22, c23},                          \
        {c30, c31, c32, c33}, {c40, c41, c42, c43}, {c50, c51, c52, c53}};                         \
    pv_store(out, ldo, cc, Dh, nr, alpha, acc)

#define PV_LOAD_MASKED(c, ptr) _mm512_maskz_loadu_ps(lane_mask(Dh, c), ptr)
#define PV_LOAD_FULL(c, ptr) _mm512_loadu_ps(ptr)

__attribute__((target("avx512f"))) static void
pv_store(float *out, int ldo, const __m512 cc[PV_MR][4], int Dh, int nr, float alpha, int acc)
{
    const __m512 s = _mm512_set1_ps(alpha);
    for (int r = 0; r < nr; r++)
        for (int c = 0; c < 4 && 16 * c < Dh; c++) {
            const __mmask16 m = lane_mask(Dh, c);
            float *o = out + (size_t)r * ldo + 16 * c;
            __m512 y = _mm512_mul_ps(cc[r][c], s);
            if (acc)
                y = _mm512_add_ps(_mm512_maskz_loadu_ps(m, o), y);
            _mm512_mask_storeu_ps(o, m, y);
        }
}

__attribute__((target("avx512f"))) static void tile_pv_any(float *out, int ldo, const float *p,
                                                           int64_t sr, int64_t sj, const float *v,
                                                           int ldv, int n, int Dh, int nr,
                                                           float alpha, int acc)
{
    PV_BODY(PV_LOAD_MASKED);
}

__attribute__((target("avx512f"))) static void tile_pv64(float *out, int ldo, const float *p,
                                                         int64_t sr, int64_t sj, const float *v,
                                                         int ldv, int n, int nr, float alpha,
                                                         int acc)
{
    const int Dh = 64;
    PV_BODY(PV_LOAD_FULL);
}

static void tile_pv(float *out, int ldo, const float *p, int64_t sr, int64_t sj, const float *v,
                    int ldv, int n, int Dh, int nr, float alpha, int acc)
{
    if (Dh == 64)
        tile_pv64(out, ldo, p, sr, sj, v, ldv, n, nr, alpha, acc);
    else
        tile_pv_any(out, ldo, p, sr, sj, v, ldv, n, Dh, nr, alpha, acc);
}
/* e^x, 16 lanes (exp512_internal.h; x < -87.3, -inf included, gives 0) */
__attribute__((target("avx512f"))) static inline __m512 exp512(__m512 x)
{
    const __mmask16 small = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.3f), _CMP_LT_OQ);
    const __m512 xc =
        _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.3f)), _mm512_set1_ps(88.3f));
    return _mm512_maskz_mov_ps((__mmask16)~small, rlab_exp512(xc));
}

/* softmax_row with 16-lane masks: keys j < jend with kv[j] != 0 (kv NULL = all) */
__attribute__((target("avx512f"))) static void softmax_row512(float *s, int Tk, int jend,
                                                              const uint8_t *kv)
{
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    __m512 vmax = ninf;
    int any = 0;
    for (int j = 0; j < jend; j += 16) {
        __mmask16 m = (__mmask16)(jend - j >= 16 ? 0xffffu : (1u << (jend - j)) - 1u);
        if (kv) {
            uint8_t kb[16] = {0}; /* (a masked byte load would need AVX-512BW) */
            memcpy(kb, kv + j, (size_t)(jend - j >= 16 ? 16 : jend - j));
            const __m512i b = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)kb));
            m = _mm512_mask_cmpneq_epi32_mask(m, b, _mm512_setzero_si512());
        }
        any |= m != 0;
        /* masked keys read as -inf: their exp below is exactly 0 */
        const __m512 v = _mm512_mask_loadu_ps(ninf, m, s + j);
        _mm512_mask_storeu_ps(s + j,
                              (__mmask16)(jend - j >= 16 ? 0xffffu : (1u << (jend - j)) - 1u), v);
        vmax = _mm512_max_ps(vmax, v);
    }
    if (!any) {
        memset(s, 0, (size_t)Tk * sizeof *s);
        return;
    }
    const __m512 mx = _mm512_set1_ps(_mm512_reduce_max_ps(vmax));
    __m512 vsum = _mm512_setzero_ps();
    for (int j = 0; j < jend; j += 16) {
        const __mmask16 m = (__mmask16)(jend - j >= 16 ? 0xffffu : (1u << (jend - j)) - 1u);
        const __m512 e = exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, s + j), mx));
        const __m512 ek = _mm512_maskz_mov_ps(m, e);
        _mm512_mask_storeu_ps(s + j, m, ek);
        vsum = _mm512_add_ps(vsum, ek);
    }
    const __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(vsum));
    for (int j = 0; j < jend; j += 16) {
        const __mmask16 m = (__mmask16)(jend - j >= 16 ? 0xffffu : (1u << (jend - j)) - 1u);
        _mm512_mask_storeu_ps(s + j, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, s + j), inv));
    }
    if (jend < Tk)
        memset(s + jend, 0, (size_t)(Tk - jend) * sizeof *s);
}

/* drop_row2 (dP may be NULL) with AVX-512DQ's 64-bit multiply: the same keep bits (the hash of
 * rlab_attention_keep, 8 lanes at a time) and the same results; without DQ the compiler
 * emulates each 64-bit multiply with three 32-bit ones, and the mask cost about a fifth of the
 * attention's time at SASRec's size with dropout 0.2 */
__attribute__((target("avx512f,avx512dq"))) static void
drop_row_dq(float *Pd, float *dP, const float *P, int n, uint64_t key, uint64_t idx0, uint32_t thr,
            float inv_keep, uint16_t *bits_out, const uint16_t *bits_in)
{
    const __m512i G = _mm512_set1_epi64((long long)0x9e3779b97f4a7c15ULL);
    const __m512i C1 = _mm512_set1_epi64((long long)0xbf58476d1ce4e5b9ULL);
    const __m512i C2 = _mm512_set1_epi64((long long)0x94d049bb133111ebULL);
    const __m512i K = _mm512_set1_epi64((long long)key), T = _mm512_set1_epi64(thr);
    const __m512i lane = _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0);
    const __m512 sc = _mm512_set1_ps(inv_keep);
    for (int j = 0; j < n; j += 16) {
        const __mmask16 tail = (__mmask16)(n - j >= 16 ? 0xffffu : (1u << (n - j)) - 1u);
        __mmask16 keep = 0;
        for (int h = 0; !bits_in && h < 2; h++) {
            const __m512i idx = _mm512_add_epi64(
                _mm512_set1_epi64((long long)(idx0 + (uint64_t)(j + 8 * h))), lane);
            __m512i z = _mm512_add_epi64(K, _mm512_mullo_epi64(idx, G));
            z = _mm512_mullo_epi64(_mm512_xor_si512(z, _mm512_srli_epi64(z, 30)), C1);
            z = _mm512_mullo_epi64(_mm512_xor_si512(z, _mm512_srli_epi64(z, 27)), C2);
            z = _mm512_srli_epi64(_mm512_xor_si512(z, _mm512_srli_epi64(z, 31)), 32);
            keep |= (__mmask16)(_mm512_cmpge_epu64_mask(z, T) << (8 * h));
        }
        if (bits_in)
            keep = bits_in[j / 16];
        else if (bits_out)
            bits_out[j / 16] = keep;
        const __m512 p = _mm512_maskz_loadu_ps(tail, P + j);
        _mm512_mask_storeu_ps(Pd + j, tail, _mm512_maskz_mul_ps(keep, p, sc));
        if (dP) {
            const __m512 d = _mm512_maskz_loadu_ps(tail, dP + j);
            _mm512_mask_storeu_ps(dP + j, tail, _mm512_maskz_mul_ps(keep, d, sc));
        }
    }
}

static int attn_dq(void)
{
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx512dq");
    }
    return cached;
}

/* the fast pairs' dropout rows: drop_row_dq when the CPU has AVX-512DQ, which also keeps the
 * forward's keep bits in bits_out (16 per chunk of the row, if not NULL) for the backward to
 * read back (bits_in) instead of hashing again */
static void drop_rows_fast(float *Pd, float *dP, const float *P, int n, uint64_t key, uint64_t idx0,
                           uint32_t thr, float inv_keep, uint16_t *bits_out,
                           const uint16_t *bits_in)
{
    if (attn_dq())
        drop_row_dq(Pd, dP, P, n, key, idx0, thr, inv_keep, bits_out, bits_in);
    else
        drop_row2(Pd, dP, P, n, key, idx0, thr, inv_keep);
}

#undef PV_ROW
#undef PV_STEP
#undef PV_BODY
#undef PV_LOAD_MASKED
#undef PV_LOAD_FULL
#else
static void tile_abt(float *out, int ldo, const float *a, int lda, const float *bt, int ldb, int Dh,
                     int nr, int nc, float alpha)
{
    (void)out, (void)ldo, (void)a, (void)lda, (void)bt, (void)ldb, (void)Dh, (void)nr, (void)nc;
    (void)alpha;
}
#define tile_abt16 tile_abt
static void softmax_row512(float *s, int Tk, int jend, const uint8_t *kv)
{
    softmax_row(s, Tk, jend, kv);
}
static int attn_dq(void) { return 0; }
static void drop_rows_fast(float *Pd, float *dP, const float *P, int n, uint64_t key, uint64_t idx0,
                           uint32_t thr, float inv_keep, uint16_t *bits_out,
                           const uint16_t *bits_in)
{
    (void)bits_out, (void)bits_in;
    drop_row2(Pd, dP, P, n, key, idx0, thr, inv_keep);
}
static void tile_pv(float *out, int ldo, const float *p, int64_t sr, int64_t sj, const float *v,
                    int ldv, int n, int Dh, int nr, float alpha, int acc)
{
    (void)out, (void)ldo, (void)p, (void)sr, (void)sj, (void)v, (void)ldv, (void)n, (void)Dh;
    (void)nr, (void)alpha, (void)acc;
}
#endif

/* bt [Dh, ld] = rows [0, n) of x (row stride ldx) transposed; columns n .. ld are zero */
static void pack_t(float *bt, int ld, const float *x, int ldx, int n, int Dh)
{
    for (int j = 0; j < n; j++) { /* rows of x read in order; 64 write streams */
        const float *xj = x + (size_t)j * ldx;
        for (int d = 0; d < Dh; d++)
            bt[(size_t)d * ld + j] = xj[d];
    }
    for (int d = 0; d < Dh; d++)
        for (int j = n; j < ld; j++)
            bt[(size_t)d * ld + j] = 0.0f;
}

/* dst [nr rows, n] (row stride ld) = alpha * a [nr, Dh] bt, tiled by AB_MR x 32 */
static void abt_block(float *dst, int ld, const float *a, int lda, const float *bt, int ldb, int Dh,
                      int nr, int n, float alpha)
{
    for (int r0 = 0; r0 < nr; r0 += AB_MR)
        for (int c0 = 0; c0 < n; c0 += 32)
            (n - c0 <= 16 ? tile_abt16 : tile_abt)(
                dst + (size_t)r0 * ld + c0, ld, a + (size_t)r0 * lda, lda, bt + c0, ldb, Dh,
                nr - r0 < AB_MR ? nr - r0 : AB_MR, n - c0 < 32 ? n - c0 : 32, alpha);
}

/* The softmax of rows [i0, i1) of P (scaled scores at keys j0 .. on entry; see the forward),
 * each row zeroed beyond what it may see up to its window; fast: the AVX-512 row kernel. */
static void softmax_rows(float *P, int i0, int i1, int Tq, int Tk, int j0, int rs, unsigned flags,
                         const uint8_t *kv, const uint8_t *qv, int fast)
{
    for (int i = i0; i < i1; i++) {
        float *row = P + (size_t)i * Tk;
        const int we = row_window(flags, i, rs, Tq, Tk);
        if (qv && !qv[i]) {
            memset(row, 0, (size_t)we * sizeof *row);
            continue;
        }
        memset(row, 0, (size_t)j0 * sizeof *row);
        const int ke = key_end(flags, i, Tk) - j0;
        if (fast)
            softmax_row512(row + j0, we - j0, ke, kv ? kv + j0 : NULL);
        else
            softmax_row(row + j0, we - j0, ke, kv ? kv + j0 : NULL);
    }
}

/* One (batch, head) pair of the forward with the AVX-512 tiles: arguments as in the loop of
 * rlab_attention_forward; Kt: the slot's packed-transpose space. */
static void pair_fwd_fast(float *ob, float *P, float *Pd, float *Kt, const float *qb,
                          const float *kb, const float *vb, int Tq, int Tk, int C, int Dh,
                          const uint8_t *kv, const uint8_t *qv, unsigned flags, int j0, int rs,
                          float scale, float dropout, uint64_t drop_key, uint64_t base,
                          uint32_t thr, float inv_keep, uint16_t *bits)
{
    if (rs >= Tq)
        return;
    const int nkall = block_keys(flags, Tq, Tk) - j0, ldk = (int)pack_cols(nkall);
    const int nch = (Tk + 15) / 16;                     /* keep-bit chunks per row */
    pack_t(Kt, ldk, kb + (size_t)j0 * C, C, nkall, Dh); // Kt [Dh, keys j0 ..]
    const float *Pv = dropout > 0.0f ? Pd : P;
    for (int i0 = rs; i0 < Tq; i0 += AB_MR) {
        const int i1 = i0 + AB_MR < Tq ? i0 + AB_MR : Tq;
        const int nk = block_keys(flags, i1, Tk) - j0;
        // S = scale Q K^T [rows i0 .. i1, keys j0 .. j0 + nk), then the masked softmax
        abt_block(P + (size_t)i0 * Tk + j0, Tk, qb + (size_t)i0 * C, C, Kt, ldk, Dh, i1 - i0, nk,
                  scale);
        softmax_rows(P, i0, i1, Tq, Tk, j0, rs, flags, kv, qv, 1);
        if (dropout > 0.0f)
            for (int i = i0; i < i1; i++) {
                const size_t r = (size_t)i * Tk + (size_t)j0;
                drop_rows_fast(Pd + r, NULL, P + r, nk, drop_key, base + r, thr, inv_keep,
                               bits ? bits + (size_t)i * nch : NULL, NULL);
            }
        // O = Pd V, PV_MR rows at a time, each over the keys its last row may see
        for (int r0 = i0; r0 < i1; r0 += PV_MR) {
            const int r1 = r0 + PV_MR < i1 ? r0 + PV_MR : i1;
            tile_pv(ob + (size_t)r0 * C, C, Pv + (size_t)r0 * Tk + j0, Tk, 1, vb + (size_t)j0 * C,
                    C, block_keys(flags, r1, Tk) - j0, Dh, r1 - r0, 1.0f, 0);
        }
    }
}

/* One pair of the backward with the AVX-512 tiles. dqb/dkb/dvb/qb/kb/vb point at the pair's
 * row 0 (k/v rows, not j0); dP, Pd [Tq, Tk] and Vt: the slot. */
static void pair_bwd_fast(float *dqb, float *dkb, float *dvb, float *dP, float *Pd, float *Vt,
                          const float *P, const float *dob, const float *qb, const float *kb,
                          const float *vb, int Tq, int Tk, int C, int Dh, unsigned flags, int j0,
                          int rs, float scale, float dropout, uint64_t drop_key, uint64_t base,
                          uint32_t thr, float inv_keep, const uint16_t *bits)
{
    const int nch = (Tk + 15) / 16;
    if (rs >= Tq)
        return;
    const int nkall = block_keys(flags, Tq, Tk) - j0, ldk = (int)pack_cols(nkall);
    const int need_s = dqb || dkb;
    const size_t kj = (size_t)j0 * C;
    if (need_s)
        pack_t(Vt, ldk, vb + kj, C, nkall, Dh); // Vt [Dh, keys j0 ..]
    const float *Pv = dropout > 0.0f ? Pd : P;
    /* row pass: dP (then dS, in place) and Pd for every block of query rows, and dQ */
    for (int i0 = rs; i0 < Tq; i0 += AB_MR) {
        const int i1 = i0 + AB_MR < Tq ? i0 + AB_MR : Tq;
        const int nk = block_keys(flags, i1, Tk) - j0;
        const size_t r0 = (size_t)i0 * Tk + (size_t)j0;
        if (need_s) // dPd = dO V^T
            abt_block(dP + r0, Tk, dob + (size_t)i0 * C, C, Vt, ldk, Dh, i1 - i0, nk, 1.0f);
        if (dropout > 0.0f)
            for (int i = i0; i < i1; i++) {
                const size_t r = (size_t)i * Tk + (size_t)j0;
                drop_rows_fast(Pd + r, need_s ? dP + r : NULL, P + r, nk, drop_key, base + r, thr,
                               inv_keep, NULL, bits ? bits + (size_t)i * nch : NULL);
            }
        if (!need_s)
            continue;
        for (int i = i0; i < i1; i++) // dS = P (dP - rowsum(dP P))
            dsoftmax_row(dP + (size_t)i * Tk + j0, P + (size_t)i * Tk + j0, nk);
        for (int a = i0; dqb && a < i1; a += PV_MR) { // dQ += scale dS K
            const int a1 = a + PV_MR < i1 ? a + PV_MR : i1;
            tile_pv(dqb + (size_t)a * C, C, dP + (size_t)a * Tk + j0, Tk, 1, kb + kj, C,
                    block_keys(flags, a1, Tk) - j0, Dh, a1 - a, scale, 1);
        }
    }
    /* column pass: dV += Pd^T dO and dK += scale dS^T Q, PV_MR keys at a time over the query
     * rows that see them. Every (i, j) read here was written above: a row block of AB_MR rows
     * (a multiple of PV_MR) starting at rs = j0 (causal) covers the keys up to its end. */
    for (int c0 = 0; c0 < nkall; c0 += PV_MR) {
        const int nr = nkall - c0 < PV_MR ? nkall - c0 : PV_MR;
        const int ilo = (flags & RLAB_ATTN_CAUSAL) ? j0 + c0 : rs;
        const size_t e = (size_t)ilo * Tk + (size_t)(j0 + c0);
        if (dvb)
            tile_pv(dvb + kj + (size_t)c0 * C, C, Pv + e, 1, Tk, dob + (size_t)ilo * C, C, Tq - ilo,
                    Dh, nr, 1.0f, 1);
        if (dkb)
            tile_pv(dkb + kj + (size_t)c0 * C, C, dP + e, 1, Tk, qb + (size_t)ilo * C, C, Tq - ilo,
                    Dh, nr, scale, 1);
    }
}

/* bits: NULL, or [B H Tq ceil(Tk / 16)] for the keep bits of the fast pairs (see
 * drop_rows_fast), written when the AVX-512DQ dropout runs */
static void attn_forward(float *out, float *att, float *scratch, const float *q, const float *k,
                         const float *v, int B, int Tq, int Tk, int C, int H,
                         const uint8_t *key_valid, const uint8_t *query_valid, unsigned flags,
                         float dropout, uint64_t drop_key, uint16_t *bits)
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
    const int fast = attn_fast(Dh);
    const int par = use_threads(npairs, Tq, Tk, Dh);
    /* the cblas path's products on one OpenBLAS thread each (the tiles call no BLAS) */
    const int blas_threads = par && !fast ? openblas_get_num_threads() : 1;
    if (blas_threads > 1)
        openblas_set_num_threads(1);
#pragma omp parallel for schedule(dynamic, 1) if (par)
    for (int bh = 0; bh < npairs; bh++) {
        const int b = bh / H, h = bh % H;
        const float *qb = q + (size_t)b * Tq * C + (size_t)h * Dh;       // [Tq, Dh], ld C
        const float *kb = k + (size_t)b * Tk * C + (size_t)h * Dh;       // [Tk, Dh], ld C
        const float *vb = v + (size_t)b * Tk * C + (size_t)h * Dh;       // [Tk, Dh], ld C
        float *ob = out + (size_t)b * Tq * C + (size_t)h * Dh;           // [Tq, Dh], ld C
        float *P = att + (size_t)bh * Tq * Tk;                           // [Tq, Tk]
        float *Pd = scratch + (size_t)thread_id() * slot_floats(Tq, Tk); // dropped P
        const uint8_t *kv = key_valid ? key_valid + (size_t)b * Tk : NULL;
        const uint8_t *qv = query_valid ? query_valid + (size_t)b * Tq : NULL;
        const uint64_t base = (uint64_t)bh * Tq * Tk;
        const int j0 = first_key(kv, Tk), rs = first_row(flags, j0, Tq, Tk);
        for (int i = 0; i < rs; i++) {
            memset(P + (size_t)i * Tk, 0, (size_t)Tk * sizeof *P);
            memset(ob + (size_t)i * C, 0, (size_t)Dh * sizeof *ob);
        }
        if (fast) {
            pair_fwd_fast(ob, P, Pd, Pd + 2 * (size_t)Tq * Tk, qb, kb, vb, Tq, Tk, C, Dh, kv, qv,
                          flags, j0, rs, scale, dropout, drop_key, base, thr, inv_keep,
                          bits ? bits + (size_t)bh * Tq * ((Tk + 15) / 16) : NULL);
            continue;
        }

        for (int i0 = rs; i0 < Tq; i0 += RB) {
            const int i1 = i0 + RB < Tq ? i0 + RB : Tq, mb = i1 - i0;
            const int nk = block_keys(flags, i1, Tk) - j0;
            // S = scale * Q K^T  [mb, keys j0 .. j0 + nk), then the masked softmax row by row
            // (in place; softmax_row zeroes the row's columns beyond what it may see, up to Tk)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, mb, nk, Dh, scale,
                        qb + (size_t)i0 * C, C, kb + (size_t)j0 * C, C, 0.0f,
                        P + (size_t)i0 * Tk + j0, Tk);
            softmax_rows(P, i0, i1, Tq, Tk, j0, rs, flags, kv, qv, 0);
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
    if (blas_threads > 1)
        openblas_set_num_threads(blas_threads);
}

/* bits: NULL, or the keep bits the forward wrote (same flags, key_valid, dropout, key) */
static void attn_backward(float *dq, float *dk, float *dv, float *scratch, const float *dout,
                          const float *att, const float *q, const float *k, const float *v, int B,
                          int Tq, int Tk, int C, int H, const uint8_t *key_valid, unsigned flags,
                          float dropout, uint64_t drop_key, const uint16_t *bits)
{
    // dq/dout [B, Tq, C], dk/dv [B, Tk, C], att [B, H, Tq, Tk] (P from forward)
    const int Dh = C / H;
    const float scale = 1.0f / sqrtf((float)Dh);
    const int npairs = B * H, RB = row_block(flags, Tq);
    const uint32_t thr = keep_threshold(dropout);
    const float inv_keep = dropout > 0.0f ? 1.0f / (1.0f - dropout) : 1.0f;
    if ((int64_t)B * Tq * Tk * C == 0 || (!dq && !dk && !dv))
        return;
    const int fast = attn_fast(Dh);
    const int par = use_threads(npairs, Tq, Tk, Dh);
    /* the cblas path's products on one OpenBLAS thread each (the tiles call no BLAS) */
    const int blas_threads = par && !fast ? openblas_get_num_threads() : 1;
    if (blas_threads > 1)
        openblas_set_num_threads(1);
#pragma omp parallel for schedule(dynamic, 1) if (par)
    for (int bh = 0; bh < npairs; bh++) {
        const int b = bh / H, h = bh % H;
        const size_t qoff = (size_t)b * Tq * C + (size_t)h * Dh;
        const size_t koff = (size_t)b * Tk * C + (size_t)h * Dh;
        const float *P = att + (size_t)bh * Tq * Tk; // [Tq, Tk]
        const float *dob = dout + qoff;              // [Tq, Dh], ld C
        float *dP = scratch + (size_t)thread_id() * slot_floats(Tq, Tk);
        float *Pd = dP + (size_t)Tq * Tk;
        const uint64_t base = (uint64_t)bh * Tq * Tk;
        const int j0 = first_key(key_valid ? key_valid + (size_t)b * Tk : NULL, Tk);
        const int rs = first_row(flags, j0, Tq, Tk);
        const size_t kj = koff + (size_t)j0 * C; /* row j0 of k / v / dk / dv */
        if (fast) {
            pair_bwd_fast(dq ? dq + qoff : NULL, dk ? dk + koff : NULL, dv ? dv + koff : NULL, dP,
                          Pd, dP + 2 * (size_t)Tq * Tk, P, dob, q + qoff, k + koff, v + koff, Tq,
                          Tk, C, Dh, flags, j0, rs, scale, dropout, drop_key, base, thr, inv_keep,
                          bits ? bits + (size_t)bh * Tq * ((Tk + 15) / 16) : NULL);
            continue;
        }

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
    if (blas_threads > 1)
        openblas_set_num_threads(blas_threads);
}

void rlab_attention_forward(float *out, float *att, float *scratch, const float *q, const float *k,
                            const float *v, int B, int Tq, int Tk, int C, int H,
                            const uint8_t *key_valid, const uint8_t *query_valid, unsigned flags,
                            float dropout, uint64_t drop_key)
{
    attn_forward(out, att, scratch, q, k, v, B, Tq, Tk, C, H, key_valid, query_valid, flags,
                 dropout, drop_key, NULL);
}

void rlab_attention_backward(float *dq, float *dk, float *dv, float *scratch, const float *dout,
                             const float *att, const float *q, const float *k, const float *v,
                             int B, int Tq, int Tk, int C, int H, const uint8_t *key_valid,
                             unsigned flags, float dropout, uint64_t drop_key)
{
    attn_backward(dq, dk, dv, scratch, dout, att, q, k, v, B, Tq, Tk, C, H, key_valid, flags,
                  dropout, drop_key, NULL);
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
    uint16_t *bits; /* keep bits of the forward's dropout (fast path with AVX-512DQ), or NULL */
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
    /* the forward's keep bits, when the same kernels run now as then */
    const uint16_t *bits = s->bits && attn_fast(s->C / s->H) && attn_dq() ? s->bits : NULL;
    attn_backward(q->grad, k->grad, v->grad, scratch, out->grad, s->att, q->data, k->data, v->data,
                  s->B, s->Tq, s->Tk, s->C, s->H, out->ext[0], s->flags, s->dropout, s->drop_key,
                  bits);
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
    /* keep bits for the backward: B H Tq ceil(Tk / 16) uint16 (1/128 of att) */
    if (s->dropout > 0.0f && attn_fast((int)(C / n_heads)) && attn_dq())
        s->bits = rlab_tape_alloc(t, (size_t)(B * n_heads * Tq) * (size_t)((Tk + 15) / 16) *
                                         sizeof(uint16_t));
    if (t->err.code)
        return &t->poison;
    attn_forward(out->data, att, scratch, q->data, k->data, v->data, s->B, s->Tq, s->Tk, s->C, s->H,
                 key_valid, query_valid, flags, s->dropout, s->drop_key, s->bits);
    return out;
}
