/*
 * core/tensor/ops_internal: helpers shared by the ops_*.c files (not installed, not exported).
 */
#ifndef RLAB_TENSOR_OPS_INTERNAL_H
#define RLAB_TENSOR_OPS_INTERNAL_H

#include "tensor/kernels.h"
#include "tensor/ops.h"

#include <stdio.h>
#include <string.h>

/* Streaming loops (a load or two, one flop and a store per element) are bound by memory
 * bandwidth, which one core already saturates on small machines (measured: ~10 GB/s with one
 * or two threads on the 2-core test machine), while every parallel region must wake the other
 * threads, and on a busy machine waits for a descheduled one. They run on one thread below
 * this many elements (16 MB of floats); compute-heavy loops keep RLAB_K_PAR_MIN. */
#define RLAB_K_STREAM_PAR_MIN (1 << 22)

/* rlab_tape_op without the zero-fill of out->data (the grad is still zeroed): for ops whose
 * forward writes EVERY output element (masked or padded positions included, as explicit
 * zeros), which saves one memory pass per op. Library-internal (not exported). Ops that
 * accumulate into out->data (moe, rvq) keep rlab_tape_op. */
rlab_tensor *rlab_tape_op_nofill(rlab_tape *tape, const char *name, int ndim, const int64_t *shape,
                                 rlab_tensor *const *src, int nsrc, rlab_backward_fn backward);

/* Matmul backward with a work space (kernels.c): as rlab_k_matmul_bwd, but a tall-skinny
 * product (see kernels.c) sums dB over fixed row blocks in parallel, whose partials need
 * rlab_k_matmul_scratch_floats(M, N, K) floats of scratch (0 for other shapes; scratch may
 * then be NULL; with scratch NULL dB is one plain sgemm). Library-internal. */
size_t rlab_k_matmul_scratch_floats(int64_t M, int64_t N, int64_t K);
void rlab_k_matmul_bwd_ws(float *dA, float *dB, const float *dC, const float *A, const float *B,
                          int64_t M, int64_t N, int64_t K, int ta, int tb, float *scratch);

/* Fail with a message naming the op and up to two shapes: "add: shapes [2, 3] and [4]". */
static inline rlab_tensor *rlab_ops_shape_fail(rlab_tape *tape, const char *op, const char *what,
                                               const rlab_tensor *a, const rlab_tensor *b)
{
    char sa[64], sb[64];
    rlab_t_shape_str(a, sa, sizeof sa);
    if (b)
        rlab_t_shape_str(b, sb, sizeof sb);
    return rlab_tape_fail(tape, RLAB_EINVAL, "%s: %s (shapes %s%s%s)", op, what, sa,
                          b ? " and " : "", b ? sb : "");
}

/* Entry check of every op: 1 (and the tape's sticky error set) when the tape already failed
 * or an input is NULL/poison; the op then returns &tape->poison. */
static inline int rlab_ops_enter(rlab_tape *tape, const char *op, rlab_tensor *const *ts, int n)
{
    if (tape->err.code)
        return 1;
    if (rlab_t_bad((const rlab_tensor *const *)ts, n)) {
        rlab_tape_fail(tape, RLAB_EINVAL, "%s: invalid input tensor (NULL or poison)", op);
        return 1;
    }
    return 0;
}

/* Index of a freshly recorded node (the last one): dropout streams are keyed by it. */
static inline uint64_t rlab_ops_node_index(const rlab_tape *tape)
{
    return tape->nnodes ? (uint64_t)(tape->nnodes - 1) : 0;
}

#endif /* RLAB_TENSOR_OPS_INTERNAL_H */
