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
 * Returns [B, Tq, C]. Saves the attention probabilities on the arena for backward. */
RLAB_API rlab_tensor *rlab_t_attention(rlab_tape *t, rlab_tensor *q, rlab_tensor *k,
                                       rlab_tensor *v, int n_heads, const uint8_t *key_valid,
                                       const uint8_t *query_valid, unsigned flags, float dropout);

/* Sparse mixture-of-experts feed-forward with top-k routing.
 * x [N, C]; router w_gate [C, E]; experts W1 [E, C, F], b1 [E, F], W2 [E, F, C], b2 [E, C]
 * (each expert: relu(x W1 + b1) W2 + b2). Gate = softmax over E; the top-k gates are
 * renormalised to sum 1. Output [N, C]. *aux_loss receives the Switch-style load-balancing
 * loss E * sum_e f_e * P_e (f_e = fraction of tokens routed to e, P_e = mean gate prob) as a
 * scalar tensor on the tape (differentiable through P_e). Ties in top-k break by lower index. */
RLAB_API rlab_tensor *rlab_t_moe(rlab_tape *t, rlab_tensor *x, rlab_tensor *w_gate,
                                 rlab_tensor *w1, rlab_tensor *b1, rlab_tensor *w2,
                                 rlab_tensor *b2, int top_k, rlab_tensor **aux_loss);

/* Residual vector quantisation with a straight-through estimator.
 * x [N, C]; codebooks [Lv, K, C] (Lv levels of K codes). Level l quantises the residual
 * r_l = x - sum_{j<l} q_j to its nearest code (squared L2; ties -> lower index).
 * Returns the quantised x_q = sum_l q_l with straight-through gradient (d x_q / d x = I).
 * codes_out [N * Lv] (int32, caller-owned) receives the code indices (may be NULL).
 * *commit_loss receives beta * mean ||sg(q_l) - r_l||^2 + mean ||q_l - sg(r_l)||^2 summed over
 * levels (the VQ-VAE codebook + commitment losses), a differentiable scalar. */
RLAB_API rlab_tensor *rlab_t_rvq(rlab_tape *t, rlab_tensor *x, rlab_tensor *codebooks,
                                 float beta, int32_t *codes_out, rlab_tensor **commit_loss);

#endif /* RLAB_TENSOR_NN_H */
