/*
 * core/tensor/kernels: level-1 numerics over plain float* (STYLE.md "two levels"): the fast
 * kernels the ops of ops.h call, and their naive reference twins (rlab_ref_*) that the tests
 * use as oracles. Exported so fused layers (nn.h, loss.h) and tests can call them directly.
 *
 *     // y = layernorm(x) over rows of x [R, C]; mean/rstd [R] saved for the backward
 *     rlab_k_layernorm_fwd(y, mean, rstd, x, gain, bias, R, C, 1e-5f);
 *     rlab_k_layernorm_bwd(dx, dgain, dbias, dy, x, mean, rstd, gain, R, C);  // += into d*
 *
 * Conventions: every array is contiguous row-major; shapes are in the comments; backward
 * kernels ACCUMULATE (+=) into their outputs (llm.c), and a NULL gradient pointer means "not
 * needed". Fast kernels split work over rows with static OpenMP schedules and never reduce
 * across threads in a schedule-dependent order, so results are bit-identical for any thread
 * count (sgemm aside: OpenBLAS is deterministic for a fixed thread count). Pointers are
 * borrowed; nothing here allocates. Thread-safe (no global state).
 */
#ifndef RLAB_TENSOR_KERNELS_H
#define RLAB_TENSOR_KERNELS_H

#include "base/base.h"

#include <stdint.h>
#include <string.h>

/* Below this many elements a kernel runs on one thread (OpenMP start-up costs ~1-5 us). */
#define RLAB_K_PAR_MIN 32768

/* ---- fast exp ------------------------------------------------------------------------------ */
/* e^x in float within ~2 ulp of expf for x in [-87, 88.7] (saturates at e^88.3 above; exactly 0
 * below -87.3, so -inf gives 0; NaN propagates). Branch-free, so `#pragma omp simd` loops over it
 * vectorise: about 1 ns per element against ~15 for glibc's expf on the 2-core test machine.
 * Range reduction x = n ln2 + r, |r| <= ln2/2, then a degree-7 Taylor polynomial for e^r and
 * 2^n assembled in the exponent bits. Use it for softmax-like loops over many elements. */
static inline float rlab_k_expf(float x)
{
    /* Every select is done on integer bit masks: a float compare may trap (-ftrapping-math
     * is GCC's default), which stops if-conversion and with it vectorisation. */
    int32_t ix;
    memcpy(&ix, &x, sizeof ix);
    const uint32_t ux = (uint32_t)ix;
    const int32_t mbig = -(int32_t)(ix > 0x42B0999A);                  /* x > 88.3f, +NaN */
    const int32_t msmall = -(int32_t)(ux > 0xC2AE999Au);               /* x < -87.3f, -NaN */
    const int32_t mnan = -(int32_t)((ux & 0x7fffffffu) > 0x7f800000u); /* NaN */
    const int32_t ic =
        (ix & ~(mbig | msmall)) | (0x42B0999A & mbig) | ((int32_t)0xC2AE999Au & msmall);
    float xc;
    memcpy(&xc, &ic, sizeof xc);
    /* round(xc / ln2) by the 1.5 * 2^23 trick: no floorf call, so it vectorises on SSE2 */
    const float n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    const float r = (xc - n * 0.693359375f) + n * 2.12194440e-4f; /* ln2 split in two parts */
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    const int32_t bits = ((int32_t)n + 127) << 23; /* 2^n */
    float sc;
    memcpy(&sc, &bits, sizeof sc);
    const float y = p * sc;
    int32_t iy;
    memcpy(&iy, &y, sizeof iy);
    iy = (iy & ~(msmall | mnan)) | (ix & mnan); /* below the range: +0; NaN: x itself */
    float out;
    memcpy(&out, &iy, sizeof out);
    return out;
}

/* ---- zeroing ---------------------------------------------------------------------------- */
/* memset(p, 0, bytes), on the OpenMP threads for buffers of RLAB_K_ZERO_PAR_MIN bytes and more
 * (outside a parallel region): the tape's gradient buffers ([B T, C] arrays of several MB) were
 * zeroed on the calling thread alone, the other cores idle meanwhile. */
#define RLAB_K_ZERO_PAR_MIN ((size_t)1 << 20)
RLAB_API void rlab_k_zero(void *p, size_t bytes);

/* ---- counter-based random numbers (dropout) ------------------------------------------- */
/* A 64-bit mix of (seed, step, node, i): the same inputs give the same value on every
 * platform and thread count, so a dropout mask never depends on scheduling. */
RLAB_API uint64_t rlab_k_hash4(uint64_t seed, uint64_t step, uint64_t node, uint64_t i);
/* mask[i] = 1 (keep) with probability 1 - p, n elements. The per-element draw is a 32-bit
 * bijective mix of i keyed by (seed, step, node) (24 bits compared with p * 2^24), cheap and
 * vectorisable; the key is the 64-bit rlab_k_hash4 chain. */
RLAB_API void rlab_k_dropout_mask(uint8_t *mask, int64_t n, float p, uint64_t seed, uint64_t step,
                                  uint64_t node);

/* ---- matrix products (cblas_sgemm, row-major, transposes by flag, no copies) ------------ */
/* C [M, N] = op(A) op(B); op(A) [M, K] (A stored [K, M] when ta), op(B) [K, N] (B stored
 * [N, K] when tb). beta = 0 (C is overwritten). */
RLAB_API void rlab_k_matmul_fwd(float *C, const float *A, const float *B, int64_t M, int64_t N,
                                int64_t K, int ta, int tb);
/* dA += d op(A) mapped back through the transpose, dB likewise (either may be NULL):
 * d op(A) = dC op(B)^T, d op(B) = op(A)^T dC. */
RLAB_API void rlab_k_matmul_bwd(float *dA, float *dB, const float *dC, const float *A,
                                const float *B, int64_t M, int64_t N, int64_t K, int ta, int tb);
/* Naive triple loop twins (float accumulation in k order), the oracles of the tests. */
RLAB_API void rlab_ref_matmul_fwd(float *C, const float *A, const float *B, int64_t M, int64_t N,
                                  int64_t K, int ta, int tb);
RLAB_API void rlab_ref_matmul_bwd(float *dA, float *dB, const float *dC, const float *A,
                                  const float *B, int64_t M, int64_t N, int64_t K, int ta, int tb);

/* ---- logits against a packed item table (panel.c) --------------------------------------- */
/* The full-softmax losses' product logits = h items^T, h [r, C], items [V, C], on a table
 * packed once into 16-item panels. rlab_k_panel_floats(V, C) floats for the packed table,
 * which must be 32-byte aligned (tape arena allocations are). */
RLAB_API size_t rlab_k_panel_floats(int64_t V, int64_t C);
RLAB_API void rlab_k_panel_pack(float *P, const float *items, int64_t V, int64_t C);
/* out [r, V] (row stride ldo) = h items^T and rowmax [r] = max_j out[i, j], from the packed
 * table P. Returns 0, or -1 (nothing written) when the AVX2/FMA kernel is not available (CPU,
 * compiler, or switched off): the caller then uses cblas_sgemm. Each element is one FMA chain
 * in k order: results do not depend on how rows are split between calls or threads. */
RLAB_API int rlab_k_panel_logits(float *out, int64_t ldo, float *rowmax, const float *h, int64_t r,
                                 int64_t C, const float *P, int64_t V);
/* The same logits from rows of h packed once (for callers that run the same rows against
 * many blocks of items): rlab_k_panel_rows_pack writes the r rows as tiles of 12 rows
 * (rlab_k_panel_rows_floats(r, C) floats; a short last tile repeats its last row);
 * rlab_k_panel_logits_packed then takes the tiles of rows [g, g + r) at hp + g C, g a multiple
 * of 12 (RLAB_K_PANEL_ROW_TILE: a tile start), and P 64-byte aligned. Both return -1 (nothing
 * written) without the 512-bit kernel or for C > 128: the caller uses rlab_k_panel_logits.
 * Bit-identical to it. */
#define RLAB_K_PANEL_ROW_TILE 12
RLAB_API size_t rlab_k_panel_rows_floats(int64_t r, int64_t C);
RLAB_API int rlab_k_panel_rows_pack(float *hp, const float *h, int64_t r, int64_t C);
RLAB_API int rlab_k_panel_logits_packed(float *out, int64_t ldo, float *rowmax, const float *hp,
                                        int64_t r, int64_t C, const float *P, int64_t V);
/* 1 when rlab_k_panel_logits will run. */
RLAB_API int rlab_k_panel_available(void);
/* Switch the kernel off (0) or back on (1) process-wide; returns the previous setting. For
 * tests and A/B benchmarks (the cblas_sgemm path gives the same results up to rounding). */
RLAB_API int rlab_k_panel_set_enabled(int on);
/* The 512-bit kernels: with AVX-512F the panel kernel runs 12 x 32 tiles (P 64-byte
 * aligned) and the losses' row exponentials 16 lanes at a time, both with results
 * bit-identical to their 256-bit twins; the same switch also governs the attention op's
 * register tiles, the fused linear layer's 64-wide forward and backward tiles, the 16-lane
 * layer norm and the multi-weight / layer-norm-fed linears (kernels.c, h-block, h-block2),
 * whose fallbacks (cblas_sgemm, 4-lane loops) agree up to rounding, and the fused losses' backward
 * kernels (rlab_k_xent_*): switched off between a fused forward and its backward, that backward
 * runs the double-precision reference loops (correct, about 10x slower). rlab_k_avx512() says
 * whether they run; rlab_k_set_avx512 switches them off (0) or back on (1), for tests and A/B
 * benchmarks, and returns whether they were in use. */
RLAB_API int rlab_k_avx512(void);
RLAB_API int rlab_k_set_avx512(int on);
/* The oracle: double accumulation, unpacked items [V, C]. */
RLAB_API void rlab_ref_panel_logits(float *out, int64_t ldo, float *rowmax, const float *h,
                                    int64_t r, int64_t C, const float *items, int64_t V);

/* ---- layer norm over the last dim -------------------------------------------------------- */
/* x [R, C] -> out [R, C] = (x - mean) * rstd * gain + bias (gain/bias [C], NULL = 1 / 0);
 * mean, rstd [R] are written for the backward. Biased variance, as in PyTorch. */
RLAB_API void rlab_k_layernorm_fwd(float *out, float *mean, float *rstd, const float *x,
                                   const float *gain, const float *bias, int64_t R, int64_t C,
                                   float eps);
/* dx [R, C] += ..., dgain [C] += sum_r dout * xhat, dbias [C] += sum_r dout (NULL = skip). */
RLAB_API void rlab_k_layernorm_bwd(float *dx, float *dgain, float *dbias, const float *dout,
                                   const float *x, const float *mean, const float *rstd,
                                   const float *gain, int64_t R, int64_t C);
RLAB_API void rlab_ref_layernorm_fwd(float *out, float *mean, float *rstd, const float *x,
                                     const float *gain, const float *bias, int64_t R, int64_t C,
                                     float eps);
RLAB_API void rlab_ref_layernorm_bwd(float *dx, float *dgain, float *dbias, const float *dout,
                                     const float *x, const float *mean, const float *rstd,
                                     const float *gain, int64_t R, int64_t C);

/* ---- softmax over the last dim ----------------------------------------------------------- */
/* y [R, C] = softmax(x) row-wise (max-subtracted). A row that is all -inf gives zeros. */
RLAB_API void rlab_k_softmax_fwd(float *y, const float *x, int64_t R, int64_t C);
/* dx [R, C] += y * (dy - sum_c dy * y). */
RLAB_API void rlab_k_softmax_bwd(float *dx, const float *dy, const float *y, int64_t R, int64_t C);
RLAB_API void rlab_ref_softmax_fwd(float *y, const float *x, int64_t R, int64_t C);
RLAB_API void rlab_ref_softmax_bwd(float *dx, const float *dy, const float *y, int64_t R,
                                   int64_t C);

/* ---- embedding rows ---------------------------------------------------------------------- */
/* out [n, D] = table [V, D] rows at ids; ids < 0, == pad or >= V give a zero row. */
RLAB_API void rlab_k_gather_fwd(float *out, const float *table, const int32_t *ids, int64_t n,
                                int64_t V, int64_t D, int64_t pad);
/* dtable [V, D] += scatter of dout [n, D] (padding ids skipped), in i order so repeated ids
 * accumulate deterministically; large ones split the columns over the threads (bit-identical
 * for any thread count). */
RLAB_API void rlab_k_gather_bwd(float *dtable, const float *dout, const int32_t *ids, int64_t n,
                                int64_t V, int64_t D, int64_t pad);
RLAB_API void rlab_ref_gather_fwd(float *out, const float *table, const int32_t *ids, int64_t n,
                                  int64_t V, int64_t D, int64_t pad);

/* ---- deterministic reductions ------------------------------------------------------------- */
/* Sum of x[0..n) in double over fixed 4096-element chunks combined in order: the result does
 * not depend on the thread count. */
RLAB_API double rlab_k_sum(const float *x, int64_t n);
/* Sum of x[i]^2, same scheme. */
RLAB_API double rlab_k_sumsq(const float *x, int64_t n);

/* ==== h-ce: backward products of the full-softmax losses (panel.c) ====================== */
/* For one column block of exponentiated logits e [r, n] (row stride lde) and item rows
 * items [n, C] (row-major, contiguous):
 *   rlab_k_xent_dh: dh [r, C] = (accumulate ? dh : 0) + e items
 *   rlab_k_xent_dt: dt [n, C] += e^T hs, hs [r, C]
 * No packing: AVX-512F register tiles read e, items and hs where they lie. Each output
 * element is one FMA chain in a fixed order (dh: j ascending, dt: i ascending), so results
 * do not depend on how callers split rows or blocks between threads. Both return 0, or -1
 * (nothing written) when rlab_k_xent_available(C) is 0: no AVX-512F, the panel or 512-bit
 * kernels switched off (rlab_k_panel_set_enabled, rlab_k_set_avx512), or C not one of 16, 32,
 * 48, 64. Thread-safe. The rlab_ref_* twins accumulate in double (test oracles). */
RLAB_API int rlab_k_xent_available(int64_t C);
RLAB_API int rlab_k_xent_dh(float *dh, int accumulate, const float *e, int64_t lde, int64_t r,
                            int64_t n, const float *items, int64_t C);
RLAB_API int rlab_k_xent_dt(float *dt, const float *e, int64_t lde, int64_t r, int64_t n,
                            const float *hs, int64_t C);
RLAB_API void rlab_ref_xent_dh(float *dh, int accumulate, const float *e, int64_t lde, int64_t r,
                               int64_t n, const float *items, int64_t C);
RLAB_API void rlab_ref_xent_dt(float *dt, const float *e, int64_t lde, int64_t r, int64_t n,
                               const float *hs, int64_t C);
/* ==== end h-ce ============================================================================== */

/* ---- h-block (issue 23): fused linear layer ----------------------------------------------- */
/* y [M, N] = act(x [M, K] w [K, N] + b) + r: b [N] or NULL, r [M, N] or NULL, act
 * RLAB_K_ACT_NONE or RLAB_K_ACT_RELU (relu with r is not supported: the caller refuses it).
 * The bias, activation and residual are applied to each block of rows right after its sgemm
 * (while it is in cache), in the order of the unfused ops, so y equals
 * add(r, relu(add(matmul(x, w), b))) bit for bit when the product is cblas_sgemm's. With
 * AVX-512F a 64-wide output (N = 64) is computed by register tiles in kernels.c instead
 * (rlab_k_set_avx512(0) switches them off): equal up to rounding. */
enum { RLAB_K_ACT_NONE = 0, RLAB_K_ACT_RELU = 1 };
RLAB_API void rlab_k_linear_fwd(float *y, const float *x, const float *w, const float *b,
                                const float *r, int64_t M, int64_t N, int64_t K, int act);
/* Floats of work space rlab_k_linear_bwd needs: the larger of the cblas path's (dZ, the bias
 * partials, the matmul partials) and, where a width is 64, the tiles' (W^T, the dW / db
 * partials and a ReLU's dZ chunk per row block of M). */
RLAB_API size_t rlab_k_linear_scratch_floats(int64_t M, int64_t N, int64_t K, int act);
/* Backward of rlab_k_linear_fwd (+= into dx [M, K], dw [K, N], db [N], dr [M, N]; NULL = not
 * needed), from dy and the forward's output y (the relu mask is y > 0). One pass over dy
 * writes dZ (masked by relu; dy itself without activation), adds dr and sums db over fixed row
 * blocks (added in block order: independent of the thread count); then the two products. With
 * AVX-512F and K = 64 (dx) / N = 64 (dW), all of it in one pass over fixed row blocks on the
 * 64-wide register tiles instead (h-block2): equal up to rounding. */
RLAB_API void rlab_k_linear_bwd(float *dx, float *dw, float *db, float *dr, const float *dy,
                                const float *x, const float *w, const float *y, int64_t M,
                                int64_t N, int64_t K, int act, float *scratch);
/* ---- end h-block ------------------------------------------------------------------------- */

/* ==== h-block2 (issue 23): n linears of one input ========================================== */
/* y [n, M, N] = the n products x [M, K] w[s] [K, N], s = 0 .. n-1 (1 <= n <= 7), stacked.
 * With AVX-512F and N = 64 on the 64-wide tiles, every weight applied to a block of rows of x
 * while it is in cache (x read from memory once, not n times); else n rlab_k_linear_fwd calls.
 * Equal to n separate rlab_k_linear_fwd calls bit for bit (the same tiles, the same order). */
RLAB_API void rlab_k_linear_multi_fwd(float *y, const float *x, const float *const *w, int n,
                                      int64_t M, int64_t N, int64_t K);
/* Floats of work space rlab_k_linear_multi_bwd needs. */
RLAB_API size_t rlab_k_linear_multi_scratch_floats(int64_t M, int64_t N, int64_t K, int n);
/* Backward (+= into dx [M, K] and dw[s] [K, N]; dx NULL, dw NULL or dw[s] NULL = not needed)
 * from dy [n, M, N]. With AVX-512F, K = 64 (when dx is wanted) and N = 64 (when a dw is): one
 * pass over fixed row blocks, dx += sum_s dy_s w_s^T summed in registers (one read-modify-write
 * of dx instead of n), each dw_s from the block's rows of x while they are in cache; block
 * partials added in block order (independent of the thread count). Else n rlab_k_linear_bwd
 * calls. The two differ by rounding. */
RLAB_API void rlab_k_linear_multi_bwd(float *dx, float *const *dw, const float *dy, const float *x,
                                      const float *const *w, int n, int64_t M, int64_t N, int64_t K,
                                      float *scratch);
/* A layer norm feeding n linears (rlab_t_layernorm_linear_multi): y [n, M, N], y_s =
 * act(LN(x) w_s + b_s) with x [M, K], gain/bias [K] (NULL = 1 / 0), b NULL or b[s] [N] or NULL,
 * act RLAB_K_ACT_NONE, or RLAB_K_ACT_RELU with n = 1; mean/rstd [M] written; h = LN(x) never
 * stored (rebuilt chunk by chunk in the backward). Only with AVX-512F and K = N = 64,
 * 1 <= n <= 7: the kernels return -1 (nothing done) otherwise, and when scratch is NULL.
 * rlab_k_ln_linear_multi_scratch_floats floats of scratch (0: not applicable). The forward
 * equals rlab_k_layernorm_fwd then rlab_k_linear_fwd per weight bit for bit; the backward (+=
 * into dx, dgain, dbias, dw[s], db[s]; NULL = not needed; y: the forward's output, for the
 * ReLU mask) sums over fixed row blocks (thread-count independent), equal to the separate ops'
 * up to rounding. */
RLAB_API size_t rlab_k_ln_linear_multi_scratch_floats(int64_t M, int64_t N, int64_t K, int n,
                                                      int act);
RLAB_API int rlab_k_ln_linear_multi_fwd(float *y, float *mean, float *rstd, const float *x,
                                        const float *gain, const float *bias, float eps,
                                        const float *const *w, const float *const *b, int act,
                                        int n, int64_t M, int64_t N, int64_t K, float *scratch);
RLAB_API int rlab_k_ln_linear_multi_bwd(float *dx, float *dgain, float *dbias, float *const *dw,
                                        float *const *db, const float *dy, const float *y,
                                        const float *x, const float *mean, const float *rstd,
                                        const float *gain, const float *bias, float eps,
                                        const float *const *w, int act, int n, int64_t M, int64_t N,
                                        int64_t K, float *scratch);
/* ==== end h-block2 ========================================================================= */

#endif /* RLAB_TENSOR_KERNELS_H */
