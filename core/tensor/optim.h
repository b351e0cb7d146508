/*
 * core/tensor/optim: optimisers over a parameter block, schedules and clipping.
 *
 *     rlab_opt_config oc = rlab_opt_defaults(RLAB_OPT_ADAMW); oc.lr = 1e-3f; oc.weight_decay =
 * 0.01f; rlab_opt *opt = rlab_opt_new(P, &oc, &err);   // moments allocated once, parallel to P
 *     ... backward ...; rlab_opt_clip_grad_norm(P, 1.0f); rlab_opt_step(opt, P);
 */
#ifndef RLAB_TENSOR_OPTIM_H
#define RLAB_TENSOR_OPTIM_H

#include "tensor/tensor.h"

typedef enum { RLAB_OPT_SGD, RLAB_OPT_ADAM, RLAB_OPT_ADAMW } rlab_opt_kind;
typedef enum { RLAB_SCHED_CONSTANT, RLAB_SCHED_COSINE } rlab_sched_kind;

typedef struct rlab_opt_config {
    rlab_opt_kind kind;
    float lr;
    float momentum; /* SGD */
    float beta1, beta2, eps;
    float weight_decay; /* AdamW/SGD: decoupled (x -= lr * wd * x); Adam: L2, g += wd * x */
    float clip_norm;    /* > 0: global-norm clipping inside step */
    int lazy;           /* 1: rows of row-tracked tensors update only when touched (TF
                           LazyAdam): parameters, moments and decay of untouched rows stay
                           bit-identical; bias correction uses the global step */
    rlab_sched_kind sched;
    int64_t warmup_steps, total_steps; /* linear warm-up lr*(t+1)/W for t < W (both scheds);
                                          cosine from lr to min_lr over [W, total] */
    float min_lr;                      /* floor of the cosine schedule */
} rlab_opt_config;

typedef struct rlab_opt rlab_opt;

/* lr 1e-3 (SGD 1e-2), betas 0.9/0.999, eps 1e-8, weight decay 0 (AdamW 0.01), no clipping,
 * constant schedule, not lazy. */
RLAB_API rlab_opt_config rlab_opt_defaults(rlab_opt_kind kind);
/* State for block p (borrowed; the optimiser only remembers its size). EINVAL for a bad config
 * (cosine without total_steps > warmup_steps, betas outside [0, 1)...), ENOMEM. Free with
 * rlab_opt_free (NULL ok). */
RLAB_API rlab_opt *rlab_opt_new(const rlab_params *p, const rlab_opt_config *cfg, rlab_err *err);
RLAB_API void rlab_opt_free(rlab_opt *opt);
/* One update of every parameter from its gradient (clipping first when clip_norm > 0);
 * advances the schedule. EINVAL when p is not the block size the optimiser was made for. */
RLAB_API int rlab_opt_step(rlab_opt *opt, rlab_params *p);
/* Learning rate that the next step will use (warm-up then cosine, or constant). */
RLAB_API float rlab_opt_lr(const rlab_opt *opt);
RLAB_API int64_t rlab_opt_steps(const rlab_opt *opt);
/* Scale all gradients so their global L2 norm is <= max_norm; returns the norm before. */
RLAB_API float rlab_opt_clip_grad_norm(rlab_params *p, float max_norm);
/* Sum over all parameters of ||theta||^2 / 2 times l2, added to grads; returns the value
 * (MQSA-TED's l2 term, tf.nn.l2_loss style). */
RLAB_API double rlab_opt_l2_penalty(rlab_params *p, float l2);
/* Optimiser state for checkpoints: moments as extra named tensors. m is Adam's first moment
 * or SGD's momentum buffer (NULL for SGD without momentum); v is NULL for SGD. Both are
 * parallel to the parameter block (same offsets). */
RLAB_API size_t rlab_opt_state_count(const rlab_opt *opt); /* floats in m (and v) */
RLAB_API float *rlab_opt_state_m(rlab_opt *opt);
RLAB_API float *rlab_opt_state_v(rlab_opt *opt);
RLAB_API void rlab_opt_set_steps(rlab_opt *opt, int64_t steps);

#endif /* RLAB_TENSOR_OPTIM_H */
