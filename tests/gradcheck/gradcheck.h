/*
 * Finite-difference gradient checks for tape ops (STYLE.md "Finite-difference gradient
 * tests"): inputs are leaf parameters drawn from a seeded RNG; the scalar L = sum(r * out)
 * with a fixed random projection r exercises the whole Jacobian; each checked element gets
 * a central difference (L(x+h) - L(x-h)) / 2h accumulated in double and is accepted when
 * |g_bp - g_fd| <= atol + rtol * max(|g_bp|, |g_fd|). A failure prints the op, the case's
 * shape description, the input, the worst index and both values.
 *
 *     static rlab_tensor *build(rlab_tape *t, rlab_tensor **in, void *ud)
 *     { return rlab_t_matmul(t, in[0], in[1], 0, 1); }
 *     rlab_gc_case c = { .op = "matmul", .desc = "[3,5]x[4,5]^T", .nin = 2,
 *         .in = { {"a", 2, {3, 5}, RLAB_INIT_NORMAL, 1.0f}, {"b", 2, {4, 5},
 * RLAB_INIT_NORMAL, 1.0f} } }; CHECK(rlab_gradcheck(&c, build, NULL) == 0);
 *
 * The builder is called again for every perturbation on a reset tape with the same dropout
 * seed, so stochastic ops (dropout) see identical masks.
 */
#ifndef RLAB_GRADCHECK_H
#define RLAB_GRADCHECK_H

#include "tensor/tensor.h"

#define RLAB_GC_MAXIN 8

typedef rlab_tensor *(*rlab_gc_build)(rlab_tape *tape, rlab_tensor **in, void *ud);

typedef struct rlab_gc_case {
    const char *op;   /* op name, for messages */
    const char *desc; /* shape / variant description, for messages */
    int nin;
    rlab_param_spec in[RLAB_GC_MAXIN];
    int skip[RLAB_GC_MAXIN]; /* 1: do not check this input's gradient (e.g. integer-like) */
    float h;                 /* default 1e-2 */
    float atol, rtol;        /* defaults 1e-3, 1e-2 */
    int max_check;           /* elements checked per input; default 64 */
    uint64_t seed;           /* default 1 */
    int training;            /* tape training flag (dropout); default 0 */
    /* optional: adjust inputs after random init (nudge from kinks, set probabilities...) */
    void (*init)(rlab_tensor **in, int nin, void *ud);
} rlab_gc_case;

/* Returns 0 when every checked element passes; otherwise the number of failing elements,
 * having printed the worst one per input to stderr. A build error (sticky tape error) counts
 * as a failure and prints the tape's message. */
int rlab_gradcheck(const rlab_gc_case *c, rlab_gc_build build, void *ud);

#endif
