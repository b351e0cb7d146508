/*
 * core/tensor/ops: the basic differentiable ops. Each takes the tape first, returns a new
 * tensor recorded on it (or the poison tensor after a sticky error), and has a backward that
 * accumulates into its sources' grads. Kernels have naive reference twins used by the tests.
 *
 * Broadcasting is deliberately small: the binary elementwise ops accept b with the same
 * element count and last dim as a, or b with b->n == cols(a) and one row (one row broadcast
 * over all rows of a), or a scalar b (b->n == 1). The output has a's shape. Anything else is an
 * EINVAL tape error naming both shapes.
 *
 * Every op: inputs borrowed; a NULL/poison input or an earlier tape error returns the poison
 * tensor without work; kernels (kernels.h) are deterministic for any thread count. All tensors
 * are contiguous, so there are no strided variants. One tape per thread.
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
/* Inverted dropout with probability p in [0, 1) when the tape is training: out = a * mask /
 * (1 - p). When not training, or p == 0, returns `a` itself (no node, no copy). The mask comes
 * from a counter-based hash of (tape->seed, tape->step, node index, element index) (see
 * kernels.h), so reruns are bit-identical and independent of the thread count; it is kept on
 * the arena (n bytes) for the backward. p outside [0, 1) is an EINVAL tape error. */
RLAB_API rlab_tensor *rlab_t_dropout(rlab_tape *t, rlab_tensor *a, float p);

/* ---- products ---------------------------------------------------------------------------- */
/* C = op(A) op(B) through cblas_sgemm, transposes by flag (no copies); the backward is two more
 * sgemm calls accumulating with beta = 1, except for tall, thin products, which are split into
 * row blocks run on the OpenMP threads (dB summed over fixed blocks in order, so the result
 * does not depend on the thread count; the partial sums take 7*K*N floats of tape arena). A and B
 * are 2-D, or A is [.., K] (leading dims flattened to rows; the output keeps them: [.., N]) with B
 * 2-D. trans_a requires A 2-D. */
RLAB_API rlab_tensor *rlab_t_matmul(rlab_tape *t, rlab_tensor *a, rlab_tensor *b, int trans_a,
                                    int trans_b);
/* Batched: A [Bt, M, K], B [Bt, K, N] (trans flags apply per batch: A stored [Bt, K, M] when
 * trans_a, B [Bt, N, K] when trans_b) -> [Bt, M, N]; one sgemm per batch. */
RLAB_API rlab_tensor *rlab_t_bmm(rlab_tape *t, rlab_tensor *a, rlab_tensor *b, int trans_a,
                                 int trans_b);

/* A linear layer in one op: out = act(x w + b) + r, x [.., K] (leading dims flattened into M
 * rows; out keeps them: [.., N]), w [K, N], b [N] or NULL, r (a residual, same shape as out)
 * or NULL, act RLAB_ACT_NONE or RLAB_ACT_RELU (with r: EINVAL). Equal to
 * add(r, relu(add(matmul(x, w), b))) (bit for bit in the forward, except that 64-wide products
 * run in AVX-512 tiles where the CPU has them: rounding); the bias, ReLU and residual go to
 * each block of rows right after its product instead of in three more passes, and the
 * backward makes one pass over the output gradient (ReLU mask, residual gradient, bias column
 * sums over fixed row blocks: independent of the thread count) before the two products of
 * matmul's backward. The bias gradient differs from add's (serial row order) by rounding.
 * Records as many tape nodes as the unfused ops (the op, then views of its output), so the
 * dropout masks of later ops (keyed by node index) do not change when a model switches to it. */
enum { RLAB_ACT_NONE = 0, RLAB_ACT_RELU = 1 };
RLAB_API rlab_tensor *rlab_t_linear(rlab_tape *t, rlab_tensor *x, rlab_tensor *w, rlab_tensor *b,
                                    rlab_tensor *r, int act);

/* n linear layers of one input in one op (h-block2): outs[s] = x w[s], x [.., K], w[s] [K, N]
 * (all the same shape), 1 <= n <= 7; no bias (the projections Q, K, V of attention). outs[s]
 * are views [.., N] into one stacked output [n, .., N] (data and grad), which is returned.
 * Equal to n rlab_t_linear(t, x, w[s], NULL, NULL, RLAB_ACT_NONE) calls in the forward bit for
 * bit; the backward sums dx = sum_s dy_s w_s^T in one pass (64-wide tiles; rounding against
 * the separate ops). Records n tape nodes, as the separate ops do, so later dropout streams
 * do not move. Errors (sticky): n out of range, w[s] not [K, N] alike. */
RLAB_API rlab_tensor *rlab_t_linear_multi(rlab_tape *t, rlab_tensor *x, int n,
                                          rlab_tensor *const *w, rlab_tensor **outs);

/* A layer norm feeding n linears in one op (h-block2): outs[s] = act(layernorm(x, gain, bias,
 * eps) w[s] + b[s]) (gain/bias [K] or NULL; b NULL, or n biases [N]; act RLAB_ACT_NONE, or
 * RLAB_ACT_RELU with n = 1; at most 8 inputs in all), views into the stacked output
 * [n, .., N], which is returned. With AVX-512F and K = N = 64 the normalised rows never reach
 * memory: the forward normalises a chunk of rows and multiplies it while it is in cache, the
 * backward normalises it again. Forward equal to rlab_t_layernorm then rlab_t_linear per
 * weight bit for bit; gradients equal up to rounding (the sums over rows run over other
 * blocks). Records as many tape nodes as those separate ops, so later dropout streams do not
 * move. Errors (sticky): too many inputs, another activation, w[s] not [K, N] alike, a bias
 * not [N], gain/bias not [K]. */
RLAB_API rlab_tensor *rlab_t_layernorm_linear_multi(rlab_tape *t, rlab_tensor *x, rlab_tensor *gain,
                                                    rlab_tensor *bias, float eps, int n,
                                                    rlab_tensor *const *w, rlab_tensor *const *b,
                                                    int act, rlab_tensor **outs);

/* Sparse times dense: out [n_rows, C] = S x for a constant CSR matrix S (rowptr [n_rows + 1]
 * starting at 0, col [nnz] column indices into the rows of x, val [nnz] values or NULL for all
 * ones) and x [N, C]. The gradient flows into x only (S is data: graph adjacency, e.g. one
 * relation of an R-GCN); the backward is a serial scatter, so it does not depend on the thread
 * count. rowptr, col and val are borrowed until the backward has run. Errors (sticky): x not
 * 2-D, decreasing row pointers, a column outside [0, N). */
RLAB_API rlab_tensor *rlab_t_spmm(rlab_tape *t, int64_t n_rows, const int64_t *rowptr,
                                  const int32_t *col, const float *val, rlab_tensor *x);

/* ---- indexing and shape ------------------------------------------------------------------ */
/* Rows of table [V, D] at ids[0..n) -> [n, D], or out_ndim/out_shape when out_shape != NULL
 * (last dim D, n*D elements). ids < 0 or == pad_id give a zero row and no gradient (padding;
 * pad_id may equal V). Any other id >= V is an EINVAL tape error naming it. Backward is a
 * serial (deterministic) sparse scatter-add into table->grad and marks the touched rows of a
 * row-tracked parameter (rlab_params_track_rows) for lazy optimisers. ids borrowed: they must
 * stay valid until the backward has run. */
RLAB_API rlab_tensor *rlab_t_gather(rlab_tape *t, rlab_tensor *table, const int32_t *ids, int64_t n,
                                    int64_t pad_id, int out_ndim, const int64_t *out_shape);
/* A view of a with another shape (same element count; one dim may be -1 = inferred). The view
 * shares data AND grad with a (grad aliases, so no backward is needed; a gradient added into
 * the view lands in a->grad). Recorded on the tape with backward NULL. Flags VIEW (never
 * PARAM, even for a view of a parameter). */
RLAB_API rlab_tensor *rlab_t_reshape(rlab_tape *t, rlab_tensor *a, int ndim, const int64_t *shape);
/* Concatenate xs[0..n) along axis (negative counts from the end; all other dims equal). Any
 * number of inputs (the list is copied to the arena). */
RLAB_API rlab_tensor *rlab_t_concat(rlab_tape *t, rlab_tensor *const *xs, int n, int axis);
/* Slice [start, start+len) along axis (a copy; negative axis counts from the end). */
RLAB_API rlab_tensor *rlab_t_slice(rlab_tape *t, rlab_tensor *a, int axis, int64_t start,
                                   int64_t len);
/* 2-D transpose (copy). */
RLAB_API rlab_tensor *rlab_t_transpose(rlab_tape *t, rlab_tensor *a);

/* ---- reductions ------------------------------------------------------------------------- */
/* Axis may be negative. Reducing a 1-D tensor gives shape [1]. sum_all/mean_all accumulate in
 * double over a fixed block partition (deterministic for any thread count). */
RLAB_API rlab_tensor *rlab_t_sum(rlab_tape *t, rlab_tensor *a, int axis);  /* drops axis */
RLAB_API rlab_tensor *rlab_t_mean(rlab_tape *t, rlab_tensor *a, int axis); /* drops axis */
RLAB_API rlab_tensor *rlab_t_sum_all(rlab_tape *t, rlab_tensor *a);        /* scalar [1] */
RLAB_API rlab_tensor *rlab_t_mean_all(rlab_tape *t, rlab_tensor *a);       /* scalar [1] */

/* ---- normalisation, softmax, masks ----------------------------------------------------- */
/* Layer norm over the last dim with gain/bias [C] (either may be NULL), biased variance:
 * (x - mean) / sqrt(var + eps) * gain + bias. Saves mean/rstd [rows] on the arena. */
RLAB_API rlab_tensor *rlab_t_layernorm(rlab_tape *t, rlab_tensor *x, rlab_tensor *gain,
                                       rlab_tensor *bias, float eps);
/* Softmax over the last dim (max-subtracted; a row that is entirely -inf gives zeros). */
RLAB_API rlab_tensor *rlab_t_softmax(rlab_tape *t, rlab_tensor *a);
/* out = mask[i] ? value : a[i] for a uint8 mask of mask_n == a->n elements (borrowed); no grad
 * flows through filled positions. A mask of mask_n == cols(a) elements is broadcast over the
 * rows. Any other mask_n is an EINVAL tape error. */
RLAB_API rlab_tensor *rlab_t_masked_fill(rlab_tape *t, rlab_tensor *a, const uint8_t *mask,
                                         int64_t mask_n, float value);
/* Zero the padded rows: x [B, T, C] (any shape: rows(x) = B*T rows of C), valid [rows(x)]
 * uint8 (1 = real, 0 = padding; NULL = all real; borrowed). out row r = valid[r] ? x row r : 0;
 * no gradient flows into padded rows. */
RLAB_API rlab_tensor *rlab_t_mask_rows(rlab_tape *t, rlab_tensor *x, const uint8_t *valid);
/* MQSA-TED L-query: x [B, T, C], valid [B*T] uint8 (1 = real item; NULL = all real; borrowed),
 * L >= 1. out[b,t] = sum_{l < L, t-l >= 0} valid[b,t-l] x[b,t-l] / max(1, sum_l valid[b,t-l]),
 * i.e. the mean of the real positions among t, t-1, ..., t-L+1; a padded query row
 * (valid[b,t] == 0) gives 0. /work/shared/papers/models.md section 3.2. */
RLAB_API rlab_tensor *rlab_t_causal_moving_avg(rlab_tape *t, rlab_tensor *x, const uint8_t *valid,
                                               int L);

#endif /* RLAB_TENSOR_OPS_H */
