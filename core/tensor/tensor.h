/*
 * core/tensor: float32 tensors, a reverse-mode tape, and the contract every op follows.
 *
 * Two levels (STYLE.md): kernels are plain functions over float* with shape comments, forward
 * and backward side by side (backward accumulates with +=); ops wrap kernels, allocate their
 * output on the tape's arena and record themselves with a backward callback.
 *
 *     // f(x) = sum(relu(x W + b)) for a batch
 *     rlab_tape *tape = rlab_tape_new(64 << 20, 4096, &err);
 *     rlab_params *P = rlab_params_new(specs, nspecs, &rng, &err); // one block + grad block
 *     for (int step = 0; step < 100; step++) {
 *         rlab_tape_reset(tape);                    // rewinds the activation arena: no malloc
 *         rlab_tensor *x = rlab_t_input(tape, xdata, 2, (int64_t[]){B, D});
 *         rlab_tensor *h = rlab_t_matmul(tape, x, rlab_params_get(P, "w"), 0, 0);
 *         h = rlab_t_add(tape, h, rlab_params_get(P, "b"));   // row broadcast
 *         rlab_tensor *loss = rlab_t_sum_all(tape, rlab_t_relu(tape, h));
 *         if (rlab_tape_error(tape)) { report rlab_tape_errmsg(tape); break; }  // sticky
 *         rlab_params_zero_grad(P);
 *         rlab_tape_backward(tape, loss);
 *         rlab_opt_step(opt, P);
 *     }
 *
 * Shapes are numpy-ordered: shape[ndim-1] is the innermost, contiguous dimension. Every
 * tensor created by an op is contiguous; views (reshape) share data with their source.
 *
 * Sticky errors: the first shape or memory error on a tape is recorded; every later op
 * returns the tape's poison tensor without doing work, so a forward pass needs no `if` after
 * each op. Check rlab_tape_error() once.
 *
 * Gradients: a tensor has grad != NULL iff it requires grad (a parameter, or an op output
 * with at least one such source). Op outputs get a zeroed grad buffer on the arena when they
 * are created. rlab_tape_backward seeds d(loss) = 1 and walks the nodes in reverse, calling
 * each node's backward, which adds into its sources' grad buffers (those that are non-NULL).
 *
 * Threads: a tape is used by one thread. Kernels may use OpenMP internally; in deterministic
 * mode (rlab_t_set_deterministic(1)) every reduction has a fixed order, so the same seed gives
 * bit-identical results for a given thread count.
 */
#ifndef RLAB_TENSOR_H
#define RLAB_TENSOR_H

#include "base/base.h"

#include <stddef.h>
#include <stdint.h>

#define RLAB_T_MAXDIM 4
#define RLAB_T_MAXSRC 8 /* sources an op can record */

enum {
    RLAB_T_PARAM = 1u << 0,         /* lives in a parameter block (not on a tape) */
    RLAB_T_REQUIRES_GRAD = 1u << 1, /* grad buffer present */
    RLAB_T_POISON = 1u << 2,        /* result of an op after a sticky error */
    RLAB_T_VIEW = 1u << 3,          /* data aliases another tensor's data */
};

typedef struct rlab_tensor rlab_tensor;
typedef struct rlab_tape rlab_tape;

/* Backward of an op: reads out->grad and out->src/params/aux, adds into src[i]->grad. */
typedef void (*rlab_backward_fn)(rlab_tape *tape, rlab_tensor *out);

struct rlab_tensor {
    int ndim;
    int64_t shape[RLAB_T_MAXDIM];
    int64_t n; /* number of elements */
    float *data;
    float *grad; /* NULL unless RLAB_T_REQUIRES_GRAD */
    unsigned flags;
    const char *op; /* op name ("matmul"), "input", "param" */
    rlab_backward_fn backward;
    rlab_tensor *src[RLAB_T_MAXSRC]; /* sources (ops with more keep them in aux) */
    union {
        int64_t i[8];
        float f[8];
    } p;                /* op parameters (axis, flags, eps, ...) */
    void *aux[4];       /* op-private buffers saved for backward, on the tape arena */
    const void *ext[2]; /* borrowed external inputs (e.g. int32 ids, masks) */
    char name[48];      /* parameter name ("layers.0.attn.qkv.weight") or "" */
};

/* ---- tape ------------------------------------------------------------------------------ */
struct rlab_tape {
    rlab_arena *arena;   /* activations, grads, aux buffers; reset every step */
    rlab_tensor **nodes; /* recorded ops in execution order */
    size_t nnodes, maxnodes;
    int training;         /* 1: dropout active */
    uint64_t seed;        /* dropout stream = f(seed, step counter, node index) */
    uint64_t step;        /* incremented by rlab_tape_reset */
    rlab_err err;         /* sticky error (err.code != 0 once set) */
    rlab_tensor poison;   /* returned by ops after an error */
    float poison_data[1]; /* poison.data: NAN, so reading a poison result is safe */
    /* grad-ready notifications of the next backward (rlab_tape_on_grad_ready) */
    rlab_tensor *ready_base;
    int ready_n;
    void (*ready_fn)(void *ud, int k);
    void *ready_ud;
};

/* A tape with an activation arena of arena_bytes and room for max_nodes ops per step.
 * Returns NULL and fills err on failure. */
RLAB_API rlab_tape *rlab_tape_new(size_t arena_bytes, size_t max_nodes, rlab_err *err);
RLAB_API void rlab_tape_free(rlab_tape *tape);
/* Forget all nodes and rewind the arena (invalidates every tensor made on this tape). Clears
 * the sticky error. Increments the step counter used by dropout. */
RLAB_API void rlab_tape_reset(rlab_tape *tape);
RLAB_API void rlab_tape_set_training(rlab_tape *tape, int training);
/* Seed of dropout masks; with the step counter it makes every mask reproducible. */
RLAB_API void rlab_tape_seed(rlab_tape *tape, uint64_t seed, uint64_t step);
/* Sticky error code (RLAB_OK if none) and its message. */
RLAB_API int rlab_tape_error(const rlab_tape *tape);
RLAB_API const char *rlab_tape_errmsg(const rlab_tape *tape);
/* Record an error (first one wins) and return the poison tensor; for op implementers. */
RLAB_API rlab_tensor *rlab_tape_fail(rlab_tape *tape, int code, const char *fmt, ...)
    RLAB_PRINTF(3, 4);
/* Grad-ready notifications for the next backward of tape (then cleared; rlab_tape_reset
 * clears them too): fn(ud, k) is called, during the walk, as soon as the gradient of
 * ts[k] (k in [0, n); an array of tensors such as rlab_params.t) is final: right after the
 * backward of the earliest recorded node that has ts[k] among its sources (no node left in
 * the reverse walk adds into it). Tensors no node uses are reported when the walk ends. For
 * overlapping the gradient exchange of data-parallel training with the backward
 * (model/fit.c). Every op that adds into a tensor's gradient must list it among its sources
 * (rlab_tape_op records them all). */
RLAB_API void rlab_tape_on_grad_ready(rlab_tape *tape, rlab_tensor *ts, int n,
                                      void (*fn)(void *ud, int k), void *ud);
/* Run backward from a scalar (n == 1) loss. Returns RLAB_OK or the sticky error. */
RLAB_API int rlab_tape_backward(rlab_tape *tape, rlab_tensor *loss);
/* Backward from any tensor: adds seed_grad[out->n] into out->grad (out must require grad),
 * then walks the nodes in reverse. Used by gradient checks (L = sum r*out). */
RLAB_API int rlab_tape_backward_from(rlab_tape *tape, rlab_tensor *out, const float *seed_grad);
/* Arena allocation for op implementers: 64-byte aligned, NULL + sticky ENOMEM when full. */
RLAB_API void *rlab_tape_alloc(rlab_tape *tape, size_t bytes);
RLAB_API void *rlab_tape_calloc(rlab_tape *tape, size_t bytes);
/* Bytes of arena in use / peak since creation. */
RLAB_API size_t rlab_tape_used(const rlab_tape *tape);
RLAB_API size_t rlab_tape_peak(const rlab_tape *tape);

/* ---- tensors on a tape ----------------------------------------------------------------- */
/* A new contiguous tensor of the given shape on the tape's arena, zero-filled, not recorded
 * as a node. requires_grad: also allocate a zeroed grad buffer. Poison on error. */
RLAB_API rlab_tensor *rlab_t_new(rlab_tape *tape, int ndim, const int64_t *shape,
                                 int requires_grad);
/* Wrap caller-owned data (borrowed, must outlive the step) as an input without grad. */
RLAB_API rlab_tensor *rlab_t_input(rlab_tape *tape, float *data, int ndim, const int64_t *shape);
/* Op implementers: make the output of op `name` with shape, sources src[0..nsrc), and
 * backward; grad is allocated iff some source has one; records the node. Poison on error
 * (including a poison source). */
RLAB_API rlab_tensor *rlab_tape_op(rlab_tape *tape, const char *name, int ndim,
                                   const int64_t *shape, rlab_tensor *const *src, int nsrc,
                                   rlab_backward_fn backward);
/* True if any of the n tensors is NULL or poison (ops return tape->poison then). */
RLAB_API int rlab_t_bad(const rlab_tensor *const *ts, int n);

/* Shape helpers. */
static inline int64_t rlab_t_cols(const rlab_tensor *t) { return t->shape[t->ndim - 1]; }
static inline int64_t rlab_t_rows(const rlab_tensor *t)
{
    int64_t c = rlab_t_cols(t);
    return c ? t->n / c : 0;
}
/* "[128, 50, 64]" into buf, for messages. */
RLAB_API const char *rlab_t_shape_str(const rlab_tensor *t, char *buf, size_t size);

/* ---- parameters: one contiguous block per model ----------------------------------------- */
enum {
    RLAB_INIT_ZERO,
    RLAB_INIT_ONE,
    RLAB_INIT_NORMAL,  /* N(0, scale^2) */
    RLAB_INIT_UNIFORM, /* U(-scale, scale) */
    RLAB_INIT_XAVIER,  /* U(-a, a), a = sqrt(6 / (fan_in + fan_out)) over the last two dims */
};

typedef struct rlab_param_spec {
    const char *name; /* dotted name, e.g. "blocks.0.attn.wq.weight" */
    int ndim;
    int64_t shape[RLAB_T_MAXDIM];
    int init;
    float scale;
} rlab_param_spec;

typedef struct rlab_params {
    int n;                 /* number of tensors */
    size_t count;          /* total floats */
    float *data;           /* [count], 64-byte aligned */
    float *grad;           /* [count], parallel to data */
    rlab_tensor *t;        /* [n] tensors viewing into data/grad (flags PARAM|REQUIRES_GRAD) */
    uint8_t **row_touched; /* [n] per-row flags for sparse (lazy) updates; NULL per tensor
                              unless rlab_params_track_rows was called for it */
} rlab_params;

/* Allocate the block for specs[0..n) and initialise it from rng (in spec order). Each
 * tensor's offset is 16-float aligned. */
RLAB_API rlab_params *rlab_params_new(const rlab_param_spec *specs, int n, rlab_rng *rng,
                                      rlab_err *err);
RLAB_API void rlab_params_free(rlab_params *p);
/* The tensor named name, or NULL. */
RLAB_API rlab_tensor *rlab_params_get(rlab_params *p, const char *name);
/* Index of a tensor inside the block (tensor pointer must belong to p), or -1. */
RLAB_API int rlab_params_index(const rlab_params *p, const rlab_tensor *t);
/* Zero the whole gradient block (one memset) and the row-touched flags. */
RLAB_API void rlab_params_zero_grad(rlab_params *p);
/* Track touched rows of tensor t (an embedding table) so lazy optimisers update only those. */
RLAB_API int rlab_params_track_rows(rlab_params *p, rlab_tensor *t, rlab_err *err);
/* Mark row r of parameter t touched (no-op when not tracked); called by gather backward. */
RLAB_API void rlab_params_touch_row(rlab_tensor *t, int64_t r);

/* ---- threads and determinism ------------------------------------------------------------ */
RLAB_API void rlab_t_set_num_threads(int n);
RLAB_API int rlab_t_num_threads(void);
RLAB_API void rlab_t_set_deterministic(int on);
RLAB_API int rlab_t_deterministic(void);

/* ---- BLAS kernels ------------------------------------------------------------------------ */
/* OpenBLAS (Debian's DYNAMIC_ARCH build) picks its kernels when it loads, from the CPU model.
 * A model newer than the library falls back to a generic SSE3 core ("Prescott"): on this
 * project's AVX-512 Xeon, sgemm ran at 31 GFLOP per CPU-second with it against 142 with the
 * SkylakeX kernels (single thread, n = 2048). OPENBLAS_CORETYPE, read at load time, overrides
 * the choice. */
/* The core OpenBLAS is running (openblas_get_corename(), e.g. "Prescott", "SkylakeX"). */
RLAB_API const char *rlab_t_blas_core(void);
/* The OPENBLAS_CORETYPE to ask for, given the detected core name and the CPU's features
 * (avx512: AVX-512 F/CD/BW/DQ/VL usable; avx2_fma: AVX2 and FMA usable), or NULL when the
 * detected core is kept: "SkylakeX" or "Haswell" only when OpenBLAS fell back to a pre-AVX
 * core (Prescott, Core2, Penryn, Dunnington, Nehalem, unknown) on a CPU that has those. */
RLAB_API const char *rlab_t_blas_pick_core(const char *detected, int avx512, int avx2_fma);
/* Sets OPENBLAS_CORETYPE from rlab_t_blas_pick_core for this CPU when the user has not set it;
 * returns 1 when it did (the setting applies only to a process that loads OpenBLAS after it:
 * the caller re-executes itself, as ui/main.c does), 0 otherwise. */
RLAB_API int rlab_t_blas_core_env(void);

#endif /* RLAB_TENSOR_H */
