/*
 * core/tensor/loss: losses, each a tape op returning a scalar [1] (mean over valid rows
 * unless stated), with hand-written backward.
 */
#ifndef RLAB_TENSOR_LOSS_H
#define RLAB_TENSOR_LOSS_H

#include "tensor/tensor.h"

/* Softmax cross-entropy over all items, fused and memory-aware: h [N, C] hidden states,
 * items [V, C] the (tied) item table, targets [N] (int32; < 0 = padding, ignored).
 * logits = h items^T (+ bias [V] if not NULL) are computed chunk by chunk (chunk_rows rows at
 * a time, <= 0 = default 256), never materialising [N, V]. Mean over non-padding rows.
 * Backward recomputes each chunk's logits. */
RLAB_API rlab_tensor *rlab_t_softmax_xent(rlab_tape *t, rlab_tensor *h, rlab_tensor *items,
                                          rlab_tensor *bias, const int32_t *targets,
                                          int64_t chunk_rows);
/* Sampled softmax: for row i, logits over {targets[i]} U negs[i*n_neg .. +n_neg) with the
 * logQ correction subtracted when logq != NULL (logq[item] = log sampling prob). */
RLAB_API rlab_tensor *rlab_t_sampled_softmax(rlab_tape *t, rlab_tensor *h, rlab_tensor *items,
                                             const int32_t *targets, const int32_t *negs,
                                             int n_neg, const float *logq);
/* Binary cross-entropy with logits: mean over i with weight[i] (NULL = 1) of
 * -(y log s(x) + (1-y) log(1 - s(x))), computed stably. labels [n] borrowed. */
RLAB_API rlab_tensor *rlab_t_bce_logits(rlab_tape *t, rlab_tensor *logits, const float *labels,
                                        const float *weight);
/* BPR: mean -log sigmoid(pos - neg), pos and neg same shape. */
RLAB_API rlab_tensor *rlab_t_bpr(rlab_tape *t, rlab_tensor *pos, rlab_tensor *neg);
/* In-batch InfoNCE: a [B, C], b [B, C] (rows L2-normalised inside when normalize != 0);
 * logits = a b^T / temp; row i's positive is column i. Mean over rows. symmetric != 0 adds
 * the b->a direction and averages the two. */
RLAB_API rlab_tensor *rlab_t_infonce(rlab_tape *t, rlab_tensor *a, rlab_tensor *b, float temp,
                                     int normalize, int symmetric);
/* KL(p || q) with p = softmax(p_logits / temp), q = softmax(q_logits / temp), rows of the
 * last dim, mean over rows. Gradient flows to both (pass a tensor without grad to freeze).
 * Also usable as soft-target cross-entropy up to the entropy of p. */
RLAB_API rlab_tensor *rlab_t_kl_div(rlab_tape *t, rlab_tensor *p_logits, rlab_tensor *q_logits,
                                    float temp);
/* Soft-target cross-entropy: mean over rows of -sum_j p[j] log softmax(q_logits / temp)[j],
 * p given as probabilities [N, V] (no grad). (MQSA-TED's TED loss.) */
RLAB_API rlab_tensor *rlab_t_soft_xent(rlab_tape *t, const float *p, rlab_tensor *q_logits,
                                       float temp);
/* Margin ranking: mean max(0, margin - (pos - neg)). */
RLAB_API rlab_tensor *rlab_t_margin_rank(rlab_tape *t, rlab_tensor *pos, rlab_tensor *neg,
                                         float margin);
/* DPO: mean -log sigmoid(beta * ((pw - rw) - (pl - rl))) over pairs, where pw/pl are the
 * policy's sequence log-probs of the winner/loser [n] and rw/rl the frozen reference's (no
 * grad; may be plain tensors without grad). */
RLAB_API rlab_tensor *rlab_t_dpo(rlab_tape *t, rlab_tensor *pw, rlab_tensor *pl, rlab_tensor *rw,
                                 rlab_tensor *rl, float beta);

#endif /* RLAB_TENSOR_LOSS_H */
