/*
 * core/tensor/ops_internal: helpers shared by the ops_*.c files (not installed, not exported).
 */
#ifndef RLAB_TENSOR_OPS_INTERNAL_H
#define RLAB_TENSOR_OPS_INTERNAL_H

#include "tensor/kernels.h"
#include "tensor/ops.h"

#include <stdio.h>
#include <string.h>

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
