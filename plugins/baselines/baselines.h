/*
 * plugins/baselines/baselines.h: private header of the baselines plugin (Pop, ItemKNN,
 * BPR-MF). Not installed; only the plugin's own .c files include it.
 *
 * The plugin provides model kinds only; the host provides the verbs (train, eval, recommend,
 * save, load, export), the data view, the evaluator and the training loop (model/fit.h).
 *   plugin.c   the descriptor: the three kinds with their config schemas
 *   store.c    the checkpoint helpers shared by the three models
 *   pop.c      Pop: training-interaction counts
 *   itemknn.c  ItemKNN: item-item cosine on the binary user-item matrix, top-k neighbours
 *   bprmf.c    BPR-MF: user / item embeddings + item bias, sampled BPR, lazy sparse AdamW
 *
 * Every model keeps its numbers in one rlab_params block, so its checkpoint is that block.
 */
#ifndef RLAB_PLUGIN_BASELINES_H
#define RLAB_PLUGIN_BASELINES_H

#include "data/batch.h"
#include "host/plugin.h"
#include "model/fit.h"
#include "tensor/checkpoint.h"

/* ---- configs (their schemas are in plugin.c) ---------------------------------------------- */
typedef struct bl_knn_cfg {
    int k; /* neighbours kept per item */
} bl_knn_cfg;

enum { BL_OPT_ADAMW = 0, BL_OPT_SGD = 1 };

typedef struct bl_bpr_cfg {
    int dim;   /* embedding size */
    int batch; /* positives per update */
    int neg;   /* negatives per positive */
    int opt;   /* BL_OPT_* */
    double lr, reg, weight_decay;
} bl_bpr_cfg;

/* ---- the kinds' training steps and checkpoints ---------------------------------------- */
extern const rlab_fit_ops bl_pop_fit, bl_knn_fit, bl_bpr_fit;
rlab_model *bl_pop_restore(rlab_host *host, const rlab_ckpt *ck, const void *cfg, rlab_err *err);
rlab_model *bl_knn_restore(rlab_host *host, const rlab_ckpt *ck, const void *cfg, rlab_err *err);
rlab_model *bl_bpr_restore(rlab_host *host, const rlab_ckpt *ck, const void *cfg, rlab_err *err);

/* ---- shared helpers (store.c) ---------------------------------------------------------- */

/* 1 when the loop asked to stop (fit may be NULL). */
int bl_cancelled(const rlab_fit *fit);
/* The model's user and item counts from the checkpoint's host metadata. */
int bl_ckpt_sizes(const rlab_ckpt *ck, int32_t *n_users, int32_t *n_items, rlab_err *err);
/* An integer metadata value in [lo, hi] (RLAB_EFORMAT when absent or malformed). */
int bl_ckpt_int(const rlab_ckpt *ck, const char *key, int64_t lo, int64_t hi, int64_t *out,
                rlab_err *err);
/* A block of specs filled from the checkpoint (strict: the same tensors and shapes). */
rlab_params *bl_ckpt_params(const rlab_ckpt *ck, const rlab_param_spec *specs, int n,
                            rlab_err *err);

/* A one-pass kind (Pop, ItemKNN) on the core loop: begin keeps the fit, the one step builds
 * the model with train(fit), model returns it. */
typedef struct bl_once {
    const rlab_fit *fit;
    rlab_model *m;
    rlab_model *(*train)(const rlab_fit *fit, rlab_err *err);
} bl_once;
int bl_once_step(void *state, int64_t i, double *loss, double *weight, double *parts,
                 rlab_err *err);
rlab_model *bl_once_model(void *state);
void bl_once_end(void *state);

#endif /* RLAB_PLUGIN_BASELINES_H */
