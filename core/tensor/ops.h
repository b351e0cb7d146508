/*
 * core/tensor/ops: the basic differentiable ops. Each takes the tape first, returns a new
 * tensor recorded on it (or the poison tensor after a sticky error), and has a backward that
 * accumulates into its sources' grads. Kernels have naive reference twins used by the tests.
 *
 * Broadcasting is deliberately small: the binary elementwise ops accept b of the same shape
 * as a, or b with b->n == cols(a) (one row broadcast over all rows of a), or a scalar b.
 */
#ifndef RLAB_TENSOR_OPS_H
#define RLAB_TENSOR_OPS_H

#include "tensor/tensor.h"

/* ---- elementwise ------------------------------------------------------------------------ */
RLAB_API rlab_tensor *rlab_t_add(rlab_tape *t, rlab_tensor *a, rlab_tensor *b);
RLAB_API rlab_tensor *rlab_t_sub(rlab_tape *t, rlab_tensor *a, rlab_tensor *b);
RLAB_API rlab_tensor *rlab_t_mul(rlab_tape *t, rlab_tensor *a, rlab_tensor *b);
RLAB_API rlab_tensor *rlab_t_scale(rlab_tape *t, rlab_tensor *a, float s);
RLAB_API rlab_tensor *rlab_t_relu(rlab_tape *t, rlab_tensor *a);
RLAB_API rlab_tensor *rlab_t_gelu(rlab_tape *t, rlab_tensor *a); /* tanh approximation */
RLAB_API rlab_tensor *rlab_t_sigmoid(rlab_tape *t, rlab_tensor *a);
RLAB_API rlab_tensor *rlab_t_tanh(rlab_tape *t, rlab_tensor *a);
/* Inverted dropout with probability p when the tape is training (identity otherwise). The mask
 * comes from (tape->seed, tape->step, node index), so reruns are bit-identical. */
RLAB_API rlab_tensor *rlab_t_dropout(rlab_tape *t, rlab_tensor *a, float p);

/* ---- products ---------------------------------------------------------------------------- */
/* C = op(A) op(B) through cblas_sgemm, transposes by flag (no copies). A and B are 2-D, or A
 * is [.., K] (leading dims flattened to rows) with B 2-D. trans_a requires A 2-D. */
RLAB_API rlab_tensor *rlab_t_matmul(rlab_tape *t, rlab_tensor *a, rlab_tensor *b, int trans_a,
                                    int trans_b);
/* Batched: A [Bt, M, K], B [Bt, K, N] (trans flags apply per batch) -> [Bt, M, N]. */
RLAB_API rlab_tensor *rlab_t_bmm(rlab_tape *t, rlab_tensor *a, rlab_tensor *b, int trans_a,
                                 int trans_b);

/* ---- indexing and shape ------------------------------------------------------------------ */
/* Rows of table [V, D] at ids[0..n) -> [n, D] reshaped to out_ndim/out_shape (last dim D).
 * ids < 0 or == pad_id give a zero row and no gradient (padding). Backward is a sparse
 * scatter-add into table->grad (and marks touched rows for lazy optimisers). ids borrowed. */
RLAB_API rlab_tensor *rlab_t_gather(rlab_tape *t, rlab_tensor *table, const int32_t *ids,
                                    int64_t n, int64_t pad_id, int out_ndim,
                                    const int64_t *out_shape);
RLAB_API rlab_tensor *rlab_t_reshape(rlab_tape *t, rlab_tensor *a, int ndim, const int64_t *shape);
/* Concatenate along axis (all other dims equal). */
RLAB_API rlab_tensor *rlab_t_concat(rlab_tape *t, rlab_tensor *const *xs, int n, int axis);
/* Slice [start, start+len) along axis. */
RLAB_API rlab_tensor *rlab_t_slice(rlab_tape *t, rlab_tensor *a, int axis, int64_t start,
                                   int64_t len);
/* 2-D transpose (copy). */
RLAB_API rlab_tensor *rlab_t_transpose(rlab_tape *t, rlab_tensor *a);

/* ---- reductions ------------------------------------------------------------------------- */
RLAB_API rlab_tensor *rlab_t_sum(rlab_tape *t, rlab_tensor *a, int axis);  /* drops axis */
RLAB_API rlab_tensor *rlab_t_mean(rlab_tape *t, rlab_tensor *a, int axis); /* drops axis */
RLAB_API rlab_tensor *rlab_t_sum_all(rlab_tape *t, rlab_tensor *a);        /* scalar [1] */
RLAB_API rlab_tensor *rlab_t_mean_all(rlab_tape *t, rlab_tensor *a);       /* scalar [1] */

/* ---- normalisation, softmax, masks ----------------------------------------------------- */
/* Layer norm over the last dim with gain/bias [C] (either may be NULL). */
RLAB_API rlab_tensor *rlab_t_layernorm(rlab_tape *t, rlab_tensor *x, rlab_tensor *gain,
                                       rlab_tensor *bias, float eps);
/* Softmax over the last dim. */
RLAB_API rlab_tensor *rlab_t_softmax(rlab_tape *t, rlab_tensor *a);
/* out = mask[i] ? value : a[i] for a uint8 mask of a->n elements (borrowed); no grad flows
 * through filled positions. A mask of cols(a) elements is broadcast over the rows. */
RLAB_API rlab_tensor *rlab_t_masked_fill(rlab_tape *t, rlab_tensor *a, const uint8_t *mask,
                                         int64_t mask_n, float value);
/* Multiply each row of x [B, T, C] by valid[b*T + t] (0/1 floats or uint8? uint8): zeroes
 * padded positions. */
RLAB_API rlab_tensor *rlab_t_mask_rows(rlab_tape *t, rlab_tensor *x, const uint8_t *valid);
/* MQSA-TED L-query: x [B, T, C], valid [B*T] (1 = real item). out[b,t] = sum over the last L
 * positions l = 0..L-1 of valid*x[b, t-l] / max(1, sum of valid[b, t-l]); padded rows give 0. */
RLAB_API rlab_tensor *rlab_t_causal_moving_avg(rlab_tape *t, rlab_tensor *x, const uint8_t *valid,
                                               int L);

#endif /* RLAB_TENSOR_OPS_H */
