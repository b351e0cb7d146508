/*
 * core/tensor/loss: losses, each a tape op returning a scalar [1] (mean over valid rows
 * unless stated), with hand-written backward.
 *
 *     // SASRec: hidden states h [B, L, C], tied item table E [V, C], next-item targets
 *     rlab_tensor *loss = rlab_t_softmax_xent(tape, h, E, NULL, targets, 0);  // -1 = pad
 *     if (rlab_tape_error(tape)) { report rlab_tape_errmsg(tape); }
 *     rlab_tape_backward(tape, loss);     // adds into h->grad (chain) and E->grad
 *
 * Common rules:
 *   - Ownership: tensors belong to the tape or a parameter block; borrowed arrays (targets,
 *     negs, logq, labels, weight, p) are read in the forward AND in the backward, so they
 *     must stay valid and unchanged until rlab_tape_backward has returned.
 *   - Errors are sticky on the tape (tensor.h): a poison/NULL input, a shape mismatch or an
 *     id out of range gives RLAB_EINVAL, a full arena RLAB_ENOMEM; the message names the
 *     loss and the offending shapes/ids. The result is then the tape's poison tensor.
 *   - Backward adds g * dL/dx (g = the loss's upstream gradient, 1 from rlab_tape_backward)
 *     into every source that has a grad; sources without grad are read-only.
 *   - "Rows" of an [.., C] tensor are its leading dims flattened (rlab_t_rows).
 *   - An empty mean (no valid row) is 0 with zero gradients, never NaN.
 *   - Not thread-safe per tape (tensor.h); kernels use OpenMP inside. Results do not depend on
 *     the OpenMP thread count, and for a fixed OpenBLAS thread count they are bit-identical
 *     from run to run (every shared accumulation has a fixed order).
 */
#ifndef RLAB_TENSOR_LOSS_H
#define RLAB_TENSOR_LOSS_H

#include "tensor/tensor.h"

/* Softmax cross-entropy over all items, fused and memory-aware: h [N, C] hidden states,
 * items [V, C] the (tied) item table, targets [N] (int32; < 0 = padding, ignored).
 * logits = h items^T (+ bias [V] if not NULL) are computed chunk by chunk (chunk_rows rows at
 * a time, <= 0 = default 256). Mean over non-padding rows.
 *
 * h may be [B, L, C] (rows = B * L); bias is any tensor with V elements. Padding rows are
 * compacted away first, so every sgemm is dense. Memory: when the exponentiated logits of all
 * nv non-padding rows ([nv, V] floats) fit in 3/4 of the tape's free arena, the forward keeps
 * them and the backward uses them directly (3 sgemm passes over [nv, V, C] in all: forward
 * logits, dh, d_items, each one call over all rows in the backward). Otherwise it reuses one
 * [chunk, V] buffer (12 MB at the default chunk and V = 12101) and the backward recomputes
 * each chunk's logits (4 passes). Either way O(N + chunk * C) more, and the value and
 * gradients agree to float rounding. Size the arena to choose. With AVX-512F, no bias, C in
 * {16, 32, 48, 64} and 64+ rows the kept mode runs fused (rlab_t_loss_set_fused): blocks of
 * 512 items, no sgemm, no packing of e; it needs nb * nv * 528 floats for e (nb = V / 512
 * rounded up; rows padded to 528) plus nb * nv * C for the per-block dh (Beauty, nv 25,600,
 * V 12,101, C 64: 1.30 GB + 157 MB against 1.24 GB kept), else the row mode runs. Errors: EINVAL
 * when items is not [V, C] with h's C, bias has != V elements or a target is >= V; ENOMEM when the
 * chunk buffer does not fit (use a smaller chunk_rows). Marks every row of items touched
 * (rlab_params_track_rows). */
RLAB_API rlab_tensor *rlab_t_softmax_xent(rlab_tape *t, rlab_tensor *h, rlab_tensor *items,
                                          rlab_tensor *bias, const int32_t *targets,
                                          int64_t chunk_rows);
/* Allow (1, the default) or forbid (0) the keep mode of rlab_t_softmax_xent and
 * rlab_t_soft_xent_items (forbidden: always one [chunk, V] buffer and a recompute). A
 * process-wide switch for tests and memory experiments: set it while no loss is being built.
 * Results agree between the modes to float rounding. Returns the previous setting. */
RLAB_API int rlab_t_loss_set_keep(int keep);
/* Allow (1, the default) or forbid (0) the fused mode of rlab_t_softmax_xent and
 * rlab_t_soft_xent_items: with AVX-512F, no bias, C in {16, 32, 48, 64}, keep allowed and
 * room in the arena for e of all rows plus [V / 512, rows, C] floats, the loss runs on blocks
 * of 512 items on the panel kernel (forward) and rlab_k_xent_dh / rlab_k_xent_dt (backward):
 * no sgemm, nothing packed but one block of items at a time (see loss.c). Results agree with
 * the other modes to float rounding and do not depend on the thread count. A process-wide
 * switch for tests and A/B benchmarks; set it while no loss is being built. Returns the
 * previous setting. Losses over fewer than 64 (non-padding) rows always take the row mode. */
RLAB_API int rlab_t_loss_set_fused(int fused);
/* Sampled softmax: for row i, logits over {targets[i]} U negs[i*n_neg .. +n_neg) with the
 * logQ correction subtracted when logq != NULL (logq[item] = log sampling prob).
 *
 * h [N, C] (or [.., C]), items [V, C], targets [N] (< 0 = padding row, skipped), negs
 * [N * n_neg] (may be NULL when n_neg == 0; an id < 0 drops that candidate), logq [V].
 * Mean over non-padding rows of logsumexp(candidates) - logit(target). Negatives equal to the
 * target ("accidental hits") are NOT removed. Backward scatters into the candidate rows of
 * items (serially, rows ascending) and marks them touched. EINVAL for ids >= V. */
RLAB_API rlab_tensor *rlab_t_sampled_softmax(rlab_tape *t, rlab_tensor *h, rlab_tensor *items,
                                             const int32_t *targets, const int32_t *negs, int n_neg,
                                             const float *logq);
/* Binary cross-entropy with logits: mean over i with weight[i] (NULL = 1) of
 * -(y log s(x) + (1-y) log(1 - s(x))), computed stably. labels [n] borrowed.
 *
 * Computed as max(x, 0) - x y + log(1 + exp(-|x|)), finite for any logit; labels may be soft
 * (in [0, 1]). The mean divides by n, not by sum(weight) (PyTorch's `weight`): a zero weight
 * removes a term but still counts in n. logits any shape with n elements. */
RLAB_API rlab_tensor *rlab_t_bce_logits(rlab_tape *t, rlab_tensor *logits, const float *labels,
                                        const float *weight);
/* BPR: mean -log sigmoid(pos - neg), pos and neg same shape.
 * (Same number of elements; computed as softplus(neg - pos), finite for any difference.) */
RLAB_API rlab_tensor *rlab_t_bpr(rlab_tape *t, rlab_tensor *pos, rlab_tensor *neg);
/* In-batch InfoNCE: a [B, C], b [B, C] (rows L2-normalised inside when normalize != 0);
 * logits = a b^T / temp; row i's positive is column i. Mean over rows. symmetric != 0 adds
 * the b->a direction and averages the two.
 *
 * Normalisation is x / max(||x||, 1e-12) and is differentiated through. temp must be > 0
 * (EINVAL). Keeps [B, B] logits (twice when symmetric) on the arena. a and b may be the same
 * tensor. */
RLAB_API rlab_tensor *rlab_t_infonce(rlab_tape *t, rlab_tensor *a, rlab_tensor *b, float temp,
                                     int normalize, int symmetric);
/* KL(p || q) with p = softmax(p_logits / temp), q = softmax(q_logits / temp), rows of the
 * last dim, mean over rows. Gradient flows to both (pass a tensor without grad to freeze).
 * Also usable as soft-target cross-entropy up to the entropy of p.
 *
 * No temp^2 factor (multiply the result yourself for Hinton-style distillation). Shapes must
 * match; temp > 0. Only per-row numbers are saved; the backward recomputes both softmaxes. */
RLAB_API rlab_tensor *rlab_t_kl_div(rlab_tape *t, rlab_tensor *p_logits, rlab_tensor *q_logits,
                                    float temp);
/* Soft-target cross-entropy: mean over rows of -sum_j p[j] log softmax(q_logits / temp)[j],
 * p given as probabilities [N, V] (no grad). (MQSA-TED's TED loss.)
 *
 * p is borrowed with q_logits->n floats; rows need not sum to 1 (the gradient is the exact
 * (sum p) softmax - p, divided by temp). temp > 0. */
RLAB_API rlab_tensor *rlab_t_soft_xent(rlab_tape *t, const float *p, rlab_tensor *q_logits,
                                       float temp);
/* Soft-target cross-entropy against an item table with a sparse target, fused like
 * rlab_t_softmax_xent (MQSA-TED's TED loss without a dense teacher):
 *   z = h items^T / temp                    h [R, C] (any leading dims), items [V, C]
 *   p_r = base[r] everywhere, plus delta[k] at column col[k] for k in [off[r], off[r + 1])
 *         (entries add up; a column may repeat)
 *   L = mean over the R rows of -sum_j p_rj log softmax(z_r)_j
 * Same value and gradients (to float rounding) as rlab_t_soft_xent(dense p,
 * rlab_t_matmul(h, items, 0, 1), temp), without forming p or any [R, V] gradient: the backward
 * is two sgemms plus O(R C + nnz C + V C). base [R], off [R + 1] (off[0] = 0, non-decreasing),
 * col / delta [off[R]] are borrowed until the backward. Arena: like rlab_t_softmax_xent (all
 * R rows of exponentiated logits kept when they fit in 3/4 of the free arena, else one
 * [chunk_rows, V] buffer and a recompute; chunk_rows <= 0 = 256). Gradients flow into h and
 * items (they may share data, e.g. h gathered from items). Errors: EINVAL for shapes, temp
 * <= 0, NULL arrays with R > 0, bad offsets or a column outside [0, V); ENOMEM. */
RLAB_API rlab_tensor *rlab_t_soft_xent_items(rlab_tape *t, rlab_tensor *h, rlab_tensor *items,
                                             const float *base, const int64_t *off,
                                             const int32_t *col, const float *delta, float temp,
                                             int64_t chunk_rows);
/* Margin ranking: mean max(0, margin - (pos - neg)).
 * (pos and neg with the same number of elements; the subgradient at the kink is 0.) */
RLAB_API rlab_tensor *rlab_t_margin_rank(rlab_tape *t, rlab_tensor *pos, rlab_tensor *neg,
                                         float margin);
/* DPO: mean -log sigmoid(beta * ((pw - rw) - (pl - rl))) over pairs, where pw/pl are the
 * policy's sequence log-probs of the winner/loser [n] and rw/rl the frozen reference's (no
 * grad; may be plain tensors without grad).
 *
 * rw and rl may also be NULL (read as 0: reference-free). If they do carry grads, they get
 * their (correct) gradient too. All given tensors have n elements. */
RLAB_API rlab_tensor *rlab_t_dpo(rlab_tape *t, rlab_tensor *pw, rlab_tensor *pl, rlab_tensor *rw,
                                 rlab_tensor *rl, float beta);

#endif /* RLAB_TENSOR_LOSS_H */
