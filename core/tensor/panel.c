/*
 * core/tensor/panel: the output product of the full-softmax losses, logits = h items^T with a
 * small width C (64) and a large item count V (12k+), on an item table packed once per step.
 *
 * cblas_sgemm re-packs the whole item table on every call and, with beta = 0, first zeroes
 * the output in a separate pass; for the [256, V] chunks of softmax_xent both together cost
 * about as much as a third of the multiply itself (perf, Beauty SASRec: sgemm_beta 6%,
 * packing 7% of the epoch). Here the table is packed once into 16-item panels,
 *
 *     P[p][k][t] = items[16 p + t][k]   (t < 16; rows beyond V are 0)
 *
 * and an AVX2/FMA micro-kernel computes 6 rows x 16 items per tile: 12 accumulators, per k
 * two panel loads and six broadcasts of h. The panel loop is outside the loop over the (up
 * to 24) rows of a group, so each 4 KB panel is read once per group from cache. The row
 * maxima come out of the same pass. Measured on the 2-core EPYC, one thread, 256 x 12,101 x 64
 * (`bench_tensor 9 logits`): 67-87 GFLOP/s for the kernel, against 57-69 for cblas_sgemm with
 * its packing and beta pass.
 *
 * The k loop runs in order with one FMA per step, so each logit is the same fused
 * multiply-add chain whatever the row's position or thread (results do not depend on the
 * thread count). Without AVX2/FMA (or on other compilers/architectures) rlab_k_panel_logits
 * returns -1 and the caller keeps to cblas_sgemm.
 */
#include "tensor/kernels.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(RLAB_NO_PANEL_KERNEL)
#define PANEL_X86 1
#include <immintrin.h>
#else
#define PANEL_X86 0
#endif

#define PW 16 /* items per panel */
#define MR 6  /* rows per micro-tile */
#define GR 24 /* rows per group (4 micro-tiles share each panel read) */

size_t rlab_k_panel_floats(int64_t V, int64_t C) { return (size_t)((V + PW - 1) / PW) * PW * C; }

static int64_t pack_panels16(float *P, const float *items, int64_t V, int64_t C);

void rlab_k_panel_pack(float *P, const float *items, int64_t V, int64_t C)
{
    const int64_t np = (V + PW - 1) / PW;
    for (int64_t p = pack_panels16(P, items, V, C); p < np; p++)
        for (int64_t t = 0; t < PW; t++) {
            const int64_t j = p * PW + t;
            float *dst = P + p * C * PW + t;
            if (j < V) {
                const float *src = items + j * C;
                for (int64_t k = 0; k < C; k++)
                    dst[k * PW] = src[k];
            } else {
                for (int64_t k = 0; k < C; k++)
                    dst[k * PW] = 0.0f;
            }
        }
}

static int force_off = 0;

int rlab_k_panel_set_enabled(int on)
{
    int old = !force_off;
    force_off = !on;
    return old;
}

#if PANEL_X86
int rlab_k_panel_available(void)
{
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }
    return cached && !force_off;
}

static int avx512_off = 0;

static int use_avx512(void)
{
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx512f");
    }
    return cached && !avx512_off;
}

int rlab_k_avx512(void) { return use_avx512(); }

int rlab_k_set_avx512(int on)
{
    int old = use_avx512();
    avx512_off = !on;
    return old;
}

#define FMA2(x, b0, b1, c0, c1)                                                                    \
    do {                                                                                           \
        c0 = _mm256_fmadd_ps(x, b0, c0);                                                           \
        c1 = _mm256_fmadd_ps(x, b1, c1);                                                           \
    } while (0)

/* out tile [nr <= MR rows, the first nc <= PW columns] (row stride ldo) = rows a[0..MR) (C
 * floats each) times panel b [C][PW]; mx [MR][8]: lane-wise running maxima of what is kept.
 * A partial tile repeats its last row pointer and stores only nr rows. */
__attribute__((target("avx2,fma"))) static void tile_6x16(const float *const *a, int64_t C,
                                                          const float *b, float *out, int64_t ldo,
                                                          int nr, int nc, float *mx)
{
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    const float *a0 = a[0], *a1 = a[1], *a2 = a[2], *a3 = a[3], *a4 = a[4], *a5 = a[5];
    for (int64_t k = 0; k < C; k++) {
        const __m256 b0 = _mm256_load_ps(b + k * PW), b1 = _mm256_load_ps(b + k * PW + 8);
        __m256 x = _mm256_broadcast_ss(a0 + k);
        FMA2(x, b0, b1, c00, c01);
        x = _mm256_broadcast_ss(a1 + k);
        FMA2(x, b0, b1, c10, c11);
        x = _mm256_broadcast_ss(a2 + k);
        FMA2(x, b0, b1, c20, c21);
        x = _mm256_broadcast_ss(a3 + k);
        FMA2(x, b0, b1, c30, c31);
        x = _mm256_broadcast_ss(a4 + k);
        FMA2(x, b0, b1, c40, c41);
        x = _mm256_broadcast_ss(a5 + k);
        FMA2(x, b0, b1, c50, c51);
    }
    const __m256 acc[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21},
                               {c30, c31}, {c40, c41}, {c50, c51}};
    if (nc == PW) {
        for (int r = 0; r < nr; r++) {
            _mm256_storeu_ps(out + r * ldo, acc[r][0]);
            _mm256_storeu_ps(out + r * ldo + 8, acc[r][1]);
            const __m256 m = _mm256_max_ps(acc[r][0], acc[r][1]);
            _mm256_storeu_ps(mx + r * 8, _mm256_max_ps(_mm256_loadu_ps(mx + r * 8), m));
        }
        return;
    }
    /* the last, partial panel: copy and fold the kept columns one by one */
    float tmp[PW];
    for (int r = 0; r < nr; r++) {
        _mm256_storeu_ps(tmp, acc[r][0]);
        _mm256_storeu_ps(tmp + 8, acc[r][1]);
        memcpy(out + r * ldo, tmp, (size_t)nc * sizeof(float));
        for (int t = 0; t < nc; t++)
            mx[r * 8 + (t & 7)] = tmp[t] > mx[r * 8 + (t & 7)] ? tmp[t] : mx[r * 8 + (t & 7)];
    }
}

/* The AVX-512 twin: 12 rows x 2 panels (32 items) per tile, 24 accumulators, per k two panel
 * loads and twelve broadcasts. Every logit is the same FMA chain in k order as in tile_6x16
 * (lane-wise fused multiply-adds from 0), so the two kernels give bit-identical logits, and
 * the row maxima (exact) too. b1 NULL: only panel b0 (the last of an odd count). mx [MR5][16]:
 * lane-wise running maxima. */
#define MR5 12
_Static_assert(MR5 == RLAB_K_PANEL_ROW_TILE, "the packed rows' tile height (kernels.h)");
#define ROW5(i)                                                                                    \
    __m512 c##i##0 = _mm512_setzero_ps(), c##i##1 = c##i##0;                                       \
    const float *a##i = a[i]
#define STEP5(i)                                                                                   \
    do {                                                                                           \
        const __m512 x = _mm512_set1_ps(a##i[k]);                                                  \
        c##i##0 = _mm512_fmadd_ps(x, b0, c##i##0);                                                 \
        c##i##1 = _mm512_fmadd_ps(x, b1, c##i##1);                                                 \
    } while (0)

/* A 12 x 32 tile's stores: rows [0, nr) of acc into out (columns masked to nc0 / nc1) and the
 * rows' running maxima mx [nr][16] over the stored columns. */
__attribute__((target("avx512f"), always_inline)) static inline void
tile_store(const __m512 acc[MR5][2], float *out, int64_t ldo, int nr, int nc0, int nc1, float *mx)
{
    const __mmask16 m0 = (__mmask16)(nc0 >= PW ? 0xffffu : (1u << nc0) - 1u);
    const __mmask16 m1 = (__mmask16)(nc1 >= PW ? 0xffffu : (1u << nc1) - 1u);
    for (int r = 0; r < nr; r++) {
        _mm512_mask_storeu_ps(out + r * ldo, m0, acc[r][0]);
        _mm512_mask_storeu_ps(out + r * ldo + PW, m1, acc[r][1]);
        __m512 m = _mm512_loadu_ps(mx + r * 16);
        m = _mm512_mask_max_ps(m, m0, m, acc[r][0]);
        m = _mm512_mask_max_ps(m, m1, m, acc[r][1]);
        _mm512_storeu_ps(mx + r * 16, m);
    }
}

__attribute__((target("avx512f"))) static void tile_12x32(const float *const *a, int64_t C,
                                                          const float *p0, const float *p1,
                                                          float *out, int64_t ldo, int nr, int nc0,
                                                          int nc1, float *mx)
{
    ROW5(0);
    ROW5(1);
    ROW5(2);
    ROW5(3);
    ROW5(4);
    ROW5(5);
    ROW5(6);
    ROW5(7);
    ROW5(8);
    ROW5(9);
    ROW5(10);
    ROW5(11);
    if (!p1)
        p1 = p0;
    for (int64_t k = 0; k < C; k++) {
        const __m512 b0 = _mm512_load_ps(p0 + k * PW), b1 = _mm512_load_ps(p1 + k * PW);
        STEP5(0);
        STEP5(1);
        STEP5(2);
        STEP5(3);
        STEP5(4);
        STEP5(5);
        STEP5(6);
        STEP5(7);
        STEP5(8);
        STEP5(9);
        STEP5(10);
        STEP5(11);
    }
    const __m512 acc[MR5][2] = {{c00, c01}, {c10, c11}, {c20, c21},   {c30, c31},
                                {c40, c41}, {c50, c51}, {c60, c61},   {c70, c71},
                                {c80, c81}, {c90, c91}, {c100, c101}, {c110, c111}};
    tile_store(acc, out, ldo, nr, nc0, nc1, mx);
}

/* tile_12x32 on a packed copy of the tile's rows, ap [C][MR5] (ap[k * MR5 + i] = row i, k): the
 * twelve broadcasts of a step come from one 48-byte stretch instead of twelve rows. The same
 * FMA chains in the same order: bit-identical to tile_12x32. */
#define ROW5P(i) __m512 c##i##0 = _mm512_setzero_ps(), c##i##1 = c##i##0
#define STEP5P(i)                                                                                  \
    do {                                                                                           \
        const __m512 x = _mm512_set1_ps(ak[i]);                                                    \
        c##i##0 = _mm512_fmadd_ps(x, b0, c##i##0);                                                 \
        c##i##1 = _mm512_fmadd_ps(x, b1, c##i##1);                                                 \
    } while (0)

__attribute__((target("avx512f"))) static void tile_12x32p(const float *ap, int64_t C,
                                                           const float *p0, const float *p1,
                                                           float *out, int64_t ldo, int nr, int nc0,
                                                           int nc1, float *mx)
{
    ROW5P(0);
    ROW5P(1);
    ROW5P(2);
    ROW5P(3);
    ROW5P(4);
    ROW5P(5);
    ROW5P(6);
    ROW5P(7);
    ROW5P(8);
    ROW5P(9);
    ROW5P(10);
    ROW5P(11);
    if (!p1)
        p1 = p0;
    for (int64_t k = 0; k < C; k++) {
        const __m512 b0 = _mm512_load_ps(p0 + k * PW), b1 = _mm512_load_ps(p1 + k * PW);
        const float *ak = ap + k * MR5;
        STEP5P(0);
        STEP5P(1);
        STEP5P(2);
        STEP5P(3);
        STEP5P(4);
        STEP5P(5);
        STEP5P(6);
        STEP5P(7);
        STEP5P(8);
        STEP5P(9);
        STEP5P(10);
        STEP5P(11);
    }
    const __m512 acc[MR5][2] = {{c00, c01}, {c10, c11}, {c20, c21},   {c30, c31},
                                {c40, c41}, {c50, c51}, {c60, c61},   {c70, c71},
                                {c80, c81}, {c90, c91}, {c100, c101}, {c110, c111}};
    tile_store(acc, out, ldo, nr, nc0, nc1, mx);
}
#undef ROW5P
#undef STEP5P
#undef ROW5
#undef STEP5

/* rows of h packed for tile_12x32p: hp[t][k][MR5] for the tiles t of a group (the last
 * tile's missing rows repeat its last row, as the pointer tiles do) */
#define HP_MAXC 128

/* rows <= GR rows of h with the AVX-512 tiles (two of 12 rows), panels taken in pairs; hpre:
 * the rows' tiles packed already (rlab_k_panel_rows_pack, tile t at hpre + t C MR5), or NULL
 * (packed here, into hp, when C <= HP_MAXC) */
static void logits_group5(const float *h, const float *hpre, int64_t rows, int64_t C,
                          const float *P, int64_t V, float *out, int64_t ldo, float *rowmax)
{
    float mx[GR * 16];
    for (int i = 0; i < GR * 16; i++)
        mx[i] = -INFINITY;
    const int64_t ntile = (rows + MR5 - 1) / MR5;
    const float *a[GR / MR5][MR5];
    int nr[GR / MR5];
    for (int64_t t = 0; t < ntile; t++) {
        nr[t] = rows - t * MR5 < MR5 ? (int)(rows - t * MR5) : MR5;
        for (int r = 0; hpre == NULL && r < MR5; r++)
            a[t][r] = h + (t * MR5 + (r < nr[t] ? r : nr[t] - 1)) * C;
    }
    float hp[GR / MR5][HP_MAXC * MR5];
    const int packed = hpre != NULL || C <= HP_MAXC;
    const float *tp[GR / MR5];
    for (int64_t t = 0; t < ntile; t++) {
        tp[t] = hpre ? hpre + t * C * MR5 : hp[t];
        if (hpre || !packed)
            continue;
        for (int64_t k = 0; k < C; k++)
            for (int r = 0; r < MR5; r++)
                hp[t][k * MR5 + r] = a[t][r][k];
    }
    const int64_t np = (V + PW - 1) / PW;
    for (int64_t p = 0; p < np; p += 2) {
        const float *b0 = P + p * C * PW, *b1 = p + 1 < np ? b0 + C * PW : NULL;
        const int64_t left = V - p * PW;
        const int nc0 = left < PW ? (int)left : PW;
        const int nc1 = !b1 ? 0 : left - PW < PW ? (int)(left - PW) : PW;
        for (int64_t t = 0; t < ntile; t++)
            if (packed)
                tile_12x32p(tp[t], C, b0, b1, out + t * MR5 * ldo + p * PW, ldo, nr[t], nc0, nc1,
                            mx + t * MR5 * 16);
            else
                tile_12x32(a[t], C, b0, b1, out + t * MR5 * ldo + p * PW, ldo, nr[t], nc0, nc1,
                           mx + t * MR5 * 16);
    }
    for (int64_t r = 0; r < rows; r++) {
        float m = mx[r * 16];
        for (int l = 1; l < 16; l++)
            m = mx[r * 16 + l] > m ? mx[r * 16 + l] : m;
        rowmax[r] = m;
    }
}

/* rows <= GR rows of h: every panel is read once and used by all of the group's tiles */
static void logits_group(const float *h, int64_t rows, int64_t C, const float *P, int64_t V,
                         float *out, int64_t ldo, float *rowmax)
{
    float mx[GR * 8];
    for (int i = 0; i < GR * 8; i++)
        mx[i] = -INFINITY;
    const int64_t ntile = (rows + MR - 1) / MR;
    const float *a[GR / MR][MR];
    int nr[GR / MR];
    for (int64_t t = 0; t < ntile; t++) {
        nr[t] = rows - t * MR < MR ? (int)(rows - t * MR) : MR;
        for (int r = 0; r < MR; r++)
            a[t][r] = h + (t * MR + (r < nr[t] ? r : nr[t] - 1)) * C;
    }
    const int64_t np = (V + PW - 1) / PW;
    for (int64_t p = 0; p < np; p++) {
        const float *b = P + p * C * PW;
        const int nc = V - p * PW < PW ? (int)(V - p * PW) : PW;
        for (int64_t t = 0; t < ntile; t++)
            tile_6x16(a[t], C, b, out + t * MR * ldo + p * PW, ldo, nr[t], nc, mx + t * MR * 8);
    }
    for (int64_t r = 0; r < rows; r++) {
        float m = mx[r * 8];
        for (int l = 1; l < 8; l++)
            m = mx[r * 8 + l] > m ? mx[r * 8 + l] : m;
        rowmax[r] = m;
    }
}

int rlab_k_panel_logits(float *out, int64_t ldo, float *rowmax, const float *h, int64_t r,
                        int64_t C, const float *P, int64_t V)
{
    if (!rlab_k_panel_available() || ((uintptr_t)P & 31u) || C < 1)
        return -1;
    const int wide = use_avx512() && !((uintptr_t)P & 63u);
    for (int64_t g = 0; g < r; g += GR) {
        const int64_t rows = r - g < GR ? r - g : GR;
        if (wide)
            logits_group5(h + g * C, NULL, rows, C, P, V, out + g * ldo, ldo, rowmax + g);
        else
            logits_group(h + g * C, rows, C, P, V, out + g * ldo, ldo, rowmax + g);
    }
    return 0;
}

size_t rlab_k_panel_rows_floats(int64_t r, int64_t C)
{
    return (size_t)((r + MR5 - 1) / MR5) * MR5 * (size_t)C;
}

int rlab_k_panel_rows_pack(float *hp, const float *h, int64_t r, int64_t C)
{
    if (!rlab_k_panel_available() || !use_avx512() || C < 1 || C > HP_MAXC)
        return -1;
    for (int64_t t = 0; t * MR5 < r; t++) {
        const int64_t nr = r - t * MR5 < MR5 ? r - t * MR5 : MR5;
        float *dst = hp + t * C * MR5;
        for (int64_t i = 0; i < MR5; i++) { /* a short tile repeats its last row */
            const float *src = h + (t * MR5 + (i < nr ? i : nr - 1)) * C;
            for (int64_t k = 0; k < C; k++)
                dst[k * MR5 + i] = src[k];
        }
    }
    return 0;
}

int rlab_k_panel_logits_packed(float *out, int64_t ldo, float *rowmax, const float *hp, int64_t r,
                               int64_t C, const float *P, int64_t V)
{
    if (!rlab_k_panel_available() || !use_avx512() || ((uintptr_t)P & 63u) || C < 1 || C > HP_MAXC)
        return -1;
    for (int64_t g = 0; g < r; g += GR) {
        const int64_t rows = r - g < GR ? r - g : GR;
        logits_group5(NULL, hp + g * C, rows, C, P, V, out + g * ldo, ldo, rowmax + g);
    }
    return 0;
}
#else
int rlab_k_panel_available(void) { return 0; }

size_t rlab_k_panel_rows_floats(int64_t r, int64_t C) { return (size_t)r * (size_t)C; }

int rlab_k_panel_rows_pack(float *hp, const float *h, int64_t r, int64_t C)
{
    (void)hp, (void)h, (void)r, (void)C;
    return -1;
}

int rlab_k_panel_logits_packed(float *out, int64_t ldo, float *rowmax, const float *hp, int64_t r,
                               int64_t C, const float *P, int64_t V)
{
    (void)out, (void)ldo, (void)rowmax, (void)hp, (void)r, (void)C, (void)P, (void)V;
    return -1;
}

int rlab_k_avx512(void) { return 0; }

int rlab_k_set_avx512(int on)
{
    (void)on;
    return 0;
}

int rlab_k_panel_logits(float *out, int64_t ldo, float *rowmax, const float *h, int64_t r,
                        int64_t C, const float *P, int64_t V)
{
    (void)out, (void)ldo, (void)rowmax, (void)h, (void)r, (void)C, (void)P, (void)V;
    return -1;
}
#endif

void rlab_ref_panel_logits(float *out, int64_t ldo, float *rowmax, const float *h, int64_t r,
                           int64_t C, const float *items, int64_t V)
{
    for (int64_t i = 0; i < r; i++) {
        float m = -INFINITY;
        for (int64_t j = 0; j < V; j++) {
            double s = 0.0;
            for (int64_t k = 0; k < C; k++)
                s += (double)h[i * C + k] * (double)items[j * C + k];
            out[i * ldo + j] = (float)s;
            m = (float)s > m ? (float)s : m;
        }
        rowmax[i] = m;
    }
}

/* ==== h-ce: the backward products of the full-softmax losses on item blocks ================
 *
 * rlab_k_xent_dh and rlab_k_xent_dt are the two backward products of the fused softmax
 * cross-entropy (loss.c) for one block of items, written so that nothing is packed: the
 * exponentiated logits e [r, n] (row stride lde, a column block of the loss's [nv, V] buffer)
 * are read where they are, the item rows as they lie in the table ([n, C] row-major is the
 * layout both products want), and C is 16, 32, 48 or 64 (one to four 16-lane vectors per
 * row). With AVX-512F:
 *
 *   dh: 6 rows x C per tile (up to 24 accumulators); per item j, NV loads of items[j] and six
 *       broadcasts of e[row][j]; items in sub-blocks of XB so the sub-block stays in L1
 *       while every row tile of the block passes over it.
 *   dt: 6 items x C per tile; per row i, NV loads of hs[i] and six broadcasts of e[i][j..];
 *       rows in sub-blocks of XR so hs's sub-block stays in L1.
 *
 * Each output element is one FMA chain in a fixed order (dh: items ascending, dt: rows
 * ascending), whatever the tiling, so results are the same for any split between threads.
 * The functions return -1 (nothing written) without AVX-512F or for another C; the caller
 * then keeps to its sgemm path. */
#define XB 128 /* items per dh sub-block: 128 x C floats, 32 KB at C = 64 */
#define XR 64  /* rows per dt sub-block */
#define XT 6   /* rows (dh) / items (dt) per tile */

#if PANEL_X86
/* acc[t][q] for t < XT, q < nv: with every loop unrolled and nv a constant (the wrappers
 * below), the accumulators live in registers (24 at nv = 4, plus nv loads and one broadcast) */
__attribute__((target("avx512f"), always_inline)) static inline void
xent_dh_tile(const int nv, float *dh, const float *const *a, const float *const *pf,
             const float *items, int64_t n, int nr, int load)
{
    __m512 acc[XT][4];
#pragma GCC unroll 8
    for (int t = 0; t < XT; t++) {
        const float *src = dh + (t < nr ? t : nr - 1) * 16 * nv;
#pragma GCC unroll 8
        for (int q = 0; q < nv; q++)
            acc[t][q] = load ? _mm512_loadu_ps(src + 16 * q) : _mm512_setzero_ps();
    }
    for (int64_t j0 = 0; j0 < n; j0 += 16) {
        /* the next tile's e rows, one line each per 16 items: e comes from memory (written
         * by non-temporal stores in the forward) in runs of only XB floats per row, too short
         * for the hardware prefetchers; unprefetched, dh waited on memory for ~a quarter of
         * its time */
        if (pf)
#pragma GCC unroll 8
            for (int t = 0; t < XT; t++)
                _mm_prefetch((const char *)(pf[t] + j0), _MM_HINT_T0);
        const int64_t j1 = n - j0 < 16 ? n : j0 + 16;
        for (int64_t j = j0; j < j1; j++) {
            __m512 b[4];
#pragma GCC unroll 8
            for (int q = 0; q < nv; q++)
                b[q] = _mm512_loadu_ps(items + j * 16 * nv + 16 * q);
#pragma GCC unroll 8
            for (int t = 0; t < XT; t++) {
                const __m512 x = _mm512_set1_ps(a[t][j]);
#pragma GCC unroll 8
                for (int q = 0; q < nv; q++)
                    acc[t][q] = _mm512_fmadd_ps(x, b[q], acc[t][q]);
            }
        }
    }
#pragma GCC unroll 8
    for (int t = 0; t < XT; t++)
        if (t < nr) {
#pragma GCC unroll 8
            for (int q = 0; q < nv; q++)
                _mm512_storeu_ps(dh + t * 16 * nv + 16 * q, acc[t][q]);
        }
}

__attribute__((target("avx512f"), always_inline)) static inline void
xent_dt_tile(const int nv, float *dt, const float *e, int64_t lde, const int64_t *col, int64_t r,
             const float *hs, int nc)
{
    __m512 acc[XT][4];
#pragma GCC unroll 8
    for (int t = 0; t < XT; t++) {
        const float *src = dt + (t < nc ? t : nc - 1) * 16 * nv;
#pragma GCC unroll 8
        for (int q = 0; q < nv; q++)
            acc[t][q] = _mm512_loadu_ps(src + 16 * q);
    }
    for (int64_t i = 0; i < r; i++) {
        __m512 b[4];
#pragma GCC unroll 8
        for (int q = 0; q < nv; q++)
            b[q] = _mm512_loadu_ps(hs + i * 16 * nv + 16 * q);
        const float *ei = e + i * lde;
#pragma GCC unroll 8
        for (int t = 0; t < XT; t++) {
            const __m512 x = _mm512_set1_ps(ei[col[t]]);
#pragma GCC unroll 8
            for (int q = 0; q < nv; q++)
                acc[t][q] = _mm512_fmadd_ps(x, b[q], acc[t][q]);
        }
    }
#pragma GCC unroll 8
    for (int t = 0; t < XT; t++)
        if (t < nc) {
#pragma GCC unroll 8
            for (int q = 0; q < nv; q++)
                _mm512_storeu_ps(dt + t * 16 * nv + 16 * q, acc[t][q]);
        }
}

#define XENT_TILE_FN(NV)                                                                           \
    __attribute__((target("avx512f"))) static void xent_dh_tile##NV(                               \
        float *dh, const float *const *a, const float *const *pf, const float *items, int64_t n,   \
        int nr, int load)                                                                          \
    {                                                                                              \
        xent_dh_tile(NV, dh, a, pf, items, n, nr, load);                                           \
    }                                                                                              \
    __attribute__((target("avx512f"))) static void xent_dt_tile##NV(                               \
        float *dt, const float *e, int64_t lde, const int64_t *col, int64_t r, const float *hs,    \
        int nc)                                                                                    \
    {                                                                                              \
        xent_dt_tile(NV, dt, e, lde, col, r, hs, nc);                                              \
    }

XENT_TILE_FN(1)
XENT_TILE_FN(2)
XENT_TILE_FN(3)
XENT_TILE_FN(4)
#undef XENT_TILE_FN

typedef void (*xent_dh_fn)(float *, const float *const *, const float *const *, const float *,
                           int64_t, int, int);
typedef void (*xent_dt_fn)(float *, const float *, int64_t, const int64_t *, int64_t, const float *,
                           int);

static int xent_nv(int64_t C) { return C % 16 == 0 && C >= 16 && C <= 64 ? (int)(C / 16) : 0; }

int rlab_k_xent_available(int64_t C)
{
    return rlab_k_panel_available() && use_avx512() && xent_nv(C);
}

int rlab_k_xent_dh(float *dh, int accumulate, const float *e, int64_t lde, int64_t r, int64_t n,
                   const float *items, int64_t C)
{
    static const xent_dh_fn fn[5] = {NULL, xent_dh_tile1, xent_dh_tile2, xent_dh_tile3,
                                     xent_dh_tile4};
    if (!rlab_k_xent_available(C))
        return -1;
    const xent_dh_fn f = fn[xent_nv(C)];
    if (n <= 0) {
        if (!accumulate)
            memset(dh, 0, (size_t)(r * C) * sizeof(float));
        return 0;
    }
    for (int64_t j0 = 0; j0 < n; j0 += XB) {
        const int64_t nj = n - j0 < XB ? n - j0 : XB;
        for (int64_t i0 = 0; i0 < r; i0 += XT) {
            const int nr = r - i0 < XT ? (int)(r - i0) : XT;
            const float *a[XT], *pf[XT];
            /* prefetch: the next tile of this sub-block, or the first of the next one */
            const int64_t pi = i0 + XT < r ? i0 + XT : 0, pj = i0 + XT < r ? j0 : j0 + XB;
            for (int t = 0; t < XT; t++) {
                a[t] = e + (i0 + (t < nr ? t : nr - 1)) * lde + j0;
                pf[t] = e + (pi + t < r ? pi + t : r - 1) * lde + pj;
            }
            f(dh + i0 * C, a, pj < n ? pf : NULL, items + j0 * C, nj, nr, accumulate || j0 > 0);
        }
    }
    return 0;
}

int rlab_k_xent_dt(float *dt, const float *e, int64_t lde, int64_t r, int64_t n, const float *hs,
                   int64_t C)
{
    static const xent_dt_fn fn[5] = {NULL, xent_dt_tile1, xent_dt_tile2, xent_dt_tile3,
                                     xent_dt_tile4};
    if (!rlab_k_xent_available(C))
        return -1;
    const xent_dt_fn f = fn[xent_nv(C)];
    for (int64_t i0 = 0; i0 < r; i0 += XR) {
        const int64_t ni = r - i0 < XR ? r - i0 : XR;
        for (int64_t j0 = 0; j0 < n; j0 += XT) {
            const int nc = n - j0 < XT ? (int)(n - j0) : XT;
            int64_t col[XT];
            for (int t = 0; t < XT; t++)
                col[t] = j0 + (t < nc ? t : nc - 1);
            f(dt + j0 * C, e + i0 * lde, lde, col, ni, hs + i0 * C, nc);
        }
    }
    return 0;
}
#else
int rlab_k_xent_available(int64_t C)
{
    (void)C;
    return 0;
}

int rlab_k_xent_dh(float *dh, int accumulate, const float *e, int64_t lde, int64_t r, int64_t n,
                   const float *items, int64_t C)
{
    (void)dh, (void)accumulate, (void)e, (void)lde, (void)r, (void)n, (void)items, (void)C;
    return -1;
}

int rlab_k_xent_dt(float *dt, const float *e, int64_t lde, int64_t r, int64_t n, const float *hs,
                   int64_t C)
{
    (void)dt, (void)e, (void)lde, (void)r, (void)n, (void)hs, (void)C;
    return -1;
}
#endif

void rlab_ref_xent_dh(float *dh, int accumulate, const float *e, int64_t lde, int64_t r, int64_t n,
                      const float *items, int64_t C)
{
    for (int64_t i = 0; i < r; i++)
        for (int64_t c = 0; c < C; c++) {
            double s = accumulate ? (double)dh[i * C + c] : 0.0;
            for (int64_t j = 0; j < n; j++)
                s += (double)e[i * lde + j] * (double)items[j * C + c];
            dh[i * C + c] = (float)s;
        }
}

void rlab_ref_xent_dt(float *dt, const float *e, int64_t lde, int64_t r, int64_t n, const float *hs,
                      int64_t C)
{
    for (int64_t j = 0; j < n; j++)
        for (int64_t c = 0; c < C; c++) {
            double s = (double)dt[j * C + c];
            for (int64_t i = 0; i < r; i++)
                s += (double)e[i * lde + j] * (double)hs[i * C + c];
            dt[j * C + c] = (float)s;
        }
}
/* The full panels of rlab_k_panel_pack with AVX-512F: P[p][k][0..16) is one 16-lane gather
 * (items[16 p + t][k], t < 16) instead of sixteen scalar copies. Returns the panels done (the
 * caller copies the rest, the partial last one included); the same floats either way. */
#if PANEL_X86
/* dst[c * PW + t] = src[t * ld + c] for t, c < 16: rows in, columns out, by shuffles (unpack
 * pairs of rows, pairs of pairs, then 128-bit lanes twice): the same floats moved */
__attribute__((target("avx512f"), always_inline)) static inline void
transpose16(float *dst, const float *src, int64_t ld)
{
    __m512 r[16], t[16], u[16];
    for (int i = 0; i < 16; i++)
        r[i] = _mm512_loadu_ps(src + i * ld);
    for (int i = 0; i < 16; i += 2) { /* t[i]: columns 4L, 4L+1 of rows i, i+1; t[i+1]: 4L+2, +3 */
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int g = 0; g < 4; g++) { /* u[4g + m]: column 4L + m of rows 4g .. 4g + 3, lane L */
        const __m512d a0 = _mm512_castps_pd(t[4 * g]), a1 = _mm512_castps_pd(t[4 * g + 1]);
        const __m512d b0 = _mm512_castps_pd(t[4 * g + 2]), b1 = _mm512_castps_pd(t[4 * g + 3]);
        u[4 * g] = _mm512_castpd_ps(_mm512_unpacklo_pd(a0, b0));
        u[4 * g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a0, b0));
        u[4 * g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(a1, b1));
        u[4 * g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(a1, b1));
    }
    for (int m = 0; m < 4; m++) {
        const __m512 va = _mm512_shuffle_f32x4(u[m], u[m + 4], 0x88); /* lanes 0, 2 */
        const __m512 vb = _mm512_shuffle_f32x4(u[m], u[m + 4], 0xdd); /* lanes 1, 3 */
        const __m512 wa = _mm512_shuffle_f32x4(u[m + 8], u[m + 12], 0x88);
        const __m512 wb = _mm512_shuffle_f32x4(u[m + 8], u[m + 12], 0xdd);
        _mm512_storeu_ps(dst + (m + 0) * PW, _mm512_shuffle_f32x4(va, wa, 0x88));
        _mm512_storeu_ps(dst + (m + 8) * PW, _mm512_shuffle_f32x4(va, wa, 0xdd));
        _mm512_storeu_ps(dst + (m + 4) * PW, _mm512_shuffle_f32x4(vb, wb, 0x88));
        _mm512_storeu_ps(dst + (m + 12) * PW, _mm512_shuffle_f32x4(vb, wb, 0xdd));
    }
}

__attribute__((target("avx512f"))) static int64_t pack_panels16_512(float *P, const float *items,
                                                                    int64_t V, int64_t C)
{
    const int64_t nfull = V / PW;
    const __m512i idx =
        _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                           _mm512_set1_epi32((int)C));
    for (int64_t p = 0; p < nfull; p++) {
        const float *src = items + p * PW * C;
        float *dst = P + p * C * PW;
        int64_t k = 0;
        for (; k + 16 <= C; k += 16) /* 16 x 16 blocks by shuffles (the gathers cost ~2%) */
            transpose16(dst + k * PW, src + k, C);
        for (; k < C; k++)
            _mm512_storeu_ps(dst + k * PW, _mm512_i32gather_ps(idx, src + k, 4));
    }
    return nfull;
}

static int64_t pack_panels16(float *P, const float *items, int64_t V, int64_t C)
{
    if (!use_avx512() || C > INT32_MAX / PW)
        return 0;
    return pack_panels16_512(P, items, V, C);
}
#else
static int64_t pack_panels16(float *P, const float *items, int64_t V, int64_t C)
{
    (void)P, (void)items, (void)V, (void)C;
    return 0;
}
#endif
/* ==== end h-ce ============================================================================== */
