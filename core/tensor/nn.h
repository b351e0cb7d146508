/*
 * core/tensor/nn: fused layers with hand-written backward (one tape op each).
 */
#ifndef RLAB_TENSOR_NN_H
#define RLAB_TENSOR_NN_H

#include "tensor/tensor.h"

enum {
    RLAB_ATTN_CAUSAL = 1u << 0, /* query t sees keys <= t */
};

/* Multi-head scaled dot-product attention, one fused op.
 * q [B, Tq, C], k [B, Tk, C], v [B, Tk, C], C = H * Dh; heads split the last dim.
 * key_valid [B*Tk] (uint8, 1 = real; NULL = all valid) masks padded keys; query_valid [B*Tq]
 * (NULL = all) zeroes the output rows of padded queries. flags: RLAB_ATTN_CAUSAL.
 * Attention dropout p (training only). A query whose keys are all masked outputs zeros.
 * Returns [B, Tq, C]. Saves the attention probabilities on the arena for backward.
 * Details: scale 1/sqrt(Dh). CAUSAL means key j is visible to query i iff j <= i (the same
 * indices, also when Tq != Tk). Masked rows (all keys masked, or a padded query) have zero
 * probabilities, zero output and zero gradient. The dropout mask is a hash of (tape seed, tape
 * step, node index, element), recomputed in backward. Memory: B*H*Tq*Tk floats for P plus
 * small per-thread work space. q, k, v may be the same tensor (self-attention). key_valid is
 * borrowed: it must stay unchanged until the backward has run (it reads it to skip left
 * padding). Errors
 * (sticky): shapes, n_heads not dividing C, dropout outside [0, 1). */
RLAB_API rlab_tensor *rlab_t_attention(rlab_tape *t, rlab_tensor *q, rlab_tensor *k, rlab_tensor *v,
                                       int n_heads, const uint8_t *key_valid,
                                       const uint8_t *query_valid, unsigned flags, float dropout);

/* Sparse mixture-of-experts feed-forward with top-k routing.
 * x [N, C]; router w_gate [C, E]; experts W1 [E, C, F], b1 [E, F], W2 [E, F, C], b2 [E, C]
 * (each expert: relu(x W1 + b1) W2 + b2). Gate = softmax over E; the top-k gates are
 * renormalised to sum 1. Output [N, C]. *aux_loss receives the Switch-style load-balancing
 * loss E * sum_e f_e * P_e (f_e = fraction of tokens routed to e, P_e = mean gate prob) as a
 * scalar tensor on the tape (differentiable through P_e). Ties in top-k break by lower index.
 * Details: x may be [..., C] (rows flattened; the output has x's shape). f_e counts the N*k
 * (token, slot) assignments, f_e = count_e / (N k), so sum_e f_e = 1 and perfectly balanced
 * routing gives aux = 1 for any k (all tokens on one expert with probability 1 give E). Only
 * the k selected gates carry gradient to the router; with k = 1 the renormalised gate is
 * identically 1, so the router then learns only from aux_loss. aux_loss may be NULL. Errors
 * (sticky): shapes, top_k outside [1, E]. */
RLAB_API rlab_tensor *rlab_t_moe(rlab_tape *t, rlab_tensor *x, rlab_tensor *w_gate, rlab_tensor *w1,
                                 rlab_tensor *b1, rlab_tensor *w2, rlab_tensor *b2, int top_k,
                                 rlab_tensor **aux_loss);

/* Residual vector quantisation with a straight-through estimator.
 * x [N, C]; codebooks [Lv, K, C] (Lv levels of K codes). Level l quantises the residual
 * r_l = x - sum_{j<l} q_j to its nearest code (squared L2; ties -> lower index).
 * Returns the quantised x_q = sum_l q_l with straight-through gradient (d x_q / d x = I).
 * codes_out [N * Lv] (int32, caller-owned) receives the code indices (may be NULL).
 * *commit_loss receives beta * mean ||sg(q_l) - r_l||^2 + mean ||q_l - sg(r_l)||^2 summed over
 * levels (the VQ-VAE codebook + commitment losses), a differentiable scalar.
 * Details: "mean" is over the N rows of the squared L2 norm of each row (not over N*C
 * elements). The residuals r_l are formed with sg of the earlier levels, so d r_l / d x = I and
 * the commitment term of level l sends no gradient to the codebooks of levels < l:
 * dL/dx = sum_l 2 beta / N (r_l - q_l), dL/dcb_l[k] = sum_{n: code = k} 2 / N (q_l - r_l).
 * x_q sends no gradient to the codebooks (they learn only from commit_loss). x may be [..., C].
 * commit_loss and codes_out may be NULL. */
RLAB_API rlab_tensor *rlab_t_rvq(rlab_tape *t, rlab_tensor *x, rlab_tensor *codebooks, float beta,
                                 int32_t *codes_out, rlab_tensor **commit_loss);

/* ---- kernels (level 1) ----------------------------------------------------------------
 * The fused ops above call these; they are exported for the tests (fast vs naive oracle) and
 * for benchmarks. Shapes as in the ops; backward kernels accumulate (+=) into gradient
 * buffers, any of which may be NULL (not needed). */

/* Attention. att [B, H, Tq, Tk] receives the post-mask softmax probabilities P (before
 * dropout; masked entries, fully masked rows and padded query rows are 0), except that with
 * RLAB_ATTN_CAUSAL entries past the diagonal (key > query) may be left unwritten: a row is
 * written up to the end of its block of query rows, and the backward reads no further. dropout > 0
 * applies inverted dropout with the counter-based mask of rlab_attention_keep(drop_key, idx)
 * (idx = ((b*H + h)*Tq + i)*Tk + j). scratch: rlab_attention_scratch_floats(Tq, Tk) floats
 * (per-thread work space of the fast kernels; the naive ones take none). The fast kernels
 * run the products of each (batch, head) pair in AVX-512 register tiles when the CPU has
 * AVX-512F and the head width is <= 64 (rlab_k_avx512(); rlab_k_set_avx512(0) switches them
 * off), else cblas_sgemm, per block of query rows when causal (skipping the masked upper
 * triangle), starting at each batch row's first valid key (left padding costs nothing), and
 * parallelise over the pairs with OpenMP; results do not depend on the thread count. The backward
 * needs the forward's flags and key_valid only for that skipping (P holds the masks); NULL
 * key_valid there is always correct, only slower. */
RLAB_API size_t rlab_attention_scratch_floats(int Tq, int Tk);
/* 1 if element idx survives dropout p under key (probability 1 - p). */
RLAB_API int rlab_attention_keep(uint64_t drop_key, uint64_t idx, float p);
RLAB_API void rlab_attention_forward(float *out, float *att, float *scratch, const float *q,
                                     const float *k, const float *v, int B, int Tq, int Tk, int C,
                                     int H, const uint8_t *key_valid, const uint8_t *query_valid,
                                     unsigned flags, float dropout, uint64_t drop_key);
RLAB_API void rlab_attention_backward(float *dq, float *dk, float *dv, float *scratch,
                                      const float *dout, const float *att, const float *q,
                                      const float *k, const float *v, int B, int Tq, int Tk, int C,
                                      int H, const uint8_t *key_valid, unsigned flags,
                                      float dropout, uint64_t drop_key);
RLAB_API void rlab_attention_forward_naive(float *out, float *att, const float *q, const float *k,
                                           const float *v, int B, int Tq, int Tk, int C, int H,
                                           const uint8_t *key_valid, const uint8_t *query_valid,
                                           unsigned flags, float dropout, uint64_t drop_key);
RLAB_API void rlab_attention_backward_naive(float *dq, float *dk, float *dv, const float *dout,
                                            const float *att, const float *q, const float *k,
                                            const float *v, int B, int Tq, int Tk, int C, int H,
                                            float dropout, uint64_t drop_key);

/* RVQ: code of each row of r [N, C] nearest to codebook cb [K, C] (squared L2, ties -> lower
 * index), brute force. The fused op uses the sgemm expansion ||r||^2 - 2 r.c + ||c||^2. */
RLAB_API void rlab_rvq_nearest_naive(int32_t *codes, const float *r, const float *cb, int64_t N,
                                     int K, int C);

#endif /* RLAB_TENSOR_NN_H */
