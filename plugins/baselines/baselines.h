/*
 * plugins/baselines/baselines.h: private header of the baselines plugin (Pop, ItemKNN,
 * BPR-MF). Not installed; only the plugin's own .c files include it.
 *
 * Layout:
 *   plugin.c   the descriptor, the commands baselines.train / baselines.eval, the model kinds
 *   data.c     bl_data: the leave-one-out view of a dataset every command works on, and the
 *              full-ranking evaluation of any registered model on it
 *   store.c    the safetensors save / load shared by the three models
 *   pop.c      Pop: training-interaction counts
 *   itemknn.c  ItemKNN: item-item cosine on the binary user-item matrix, top-k neighbours
 *   bprmf.c    BPR-MF: user / item embeddings + item bias, sampled BPR, lazy sparse AdamW
 *
 * Every model keeps its numbers in one rlab_params block, so save and load are one
 * rlab_ckpt_save / rlab_ckpt_load each, with the sizes in the safetensors metadata.
 */
#ifndef RLAB_PLUGIN_BASELINES_H
#define RLAB_PLUGIN_BASELINES_H

#include "data/batch.h"
#include "data/split.h"
#include "eval/eval.h"
#include "host/plugin.h"
#include "tensor/checkpoint.h"

/* ---- the data view ---------------------------------------------------------------------- */

/* Which interactions a model trains on. */
enum { BL_SPLIT_LOO = 0, BL_SPLIT_NONE = 1 };
/* Which leave-one-out target an evaluation ranks. */
enum { BL_EVAL_VALID = 0, BL_EVAL_TEST = 1 };

/* A dataset seen through its leave-one-out split (core/data/split.h). All CSR rows are
 * indexed by the dataset's dense user index.
 *   train      what models learn from: the LOO train part (split=loo) or every interaction
 *              (split=none)
 *   hist_valid history and mask when ranking the valid item: the LOO train part
 *   hist_test  history and mask when ranking the test item: LOO train + the valid item
 *   valid/test the targets (at most one per user; users with < 3 interactions have none) */
typedef struct bl_data {
    int32_t n_users, n_items;
    int split; /* BL_SPLIT_* used for train */
    rlab_seqs train, hist_valid, hist_test, valid, test;
} bl_data;

/* Build the view of ds (borrowed for the call only). RLAB_EINVAL for a dataset without
 * interactions, RLAB_ENOMEM. Free with bl_data_free (NULL ok). */
int bl_data_new(const rlab_dataset *ds, int split, bl_data **out, rlab_err *err);
void bl_data_free(bl_data *d);

/* Full-ranking evaluation of model m on d's valid or test targets, masking the matching
 * history (valid: train items; test: train items + the valid item), at cut-offs ks[0..nks).
 * Queries carry the user index and the history (with timestamps) so history-based models
 * work. cancel (may be NULL) is checked between batches. Returns a result the caller frees
 * with rlab_eval_result_free, or NULL with err (RLAB_EINVAL when the model's item count
 * differs from the dataset's, RLAB_ECANCELED, the model's errors). */
rlab_eval_result *bl_evaluate(const rlab_model *m, const bl_data *d, int which, const int *ks,
                              int nks, rlab_eval_cancel_fn cancel, void *cancel_ud, rlab_err *err);

/* ---- model storage -------------------------------------------------------------------- */

/* Metadata keys written by every baselines model: "reclab.kind", "dataset", "n_users",
 * "n_items", "describe", plus model-specific keys. */
typedef struct bl_meta {
    char kind[64], dataset[64], describe[192];
    int32_t n_users, n_items;
} bl_meta;

/* Save P to path with the common metadata of m plus extra pairs (n_extra may be 0). */
int bl_save(const rlab_model *m, const rlab_params *P, const rlab_kv *extra, int n_extra,
            const char *path, rlab_err *err);
/* Read the common metadata of path and check that it was written for kind. */
int bl_read_meta(const char *path, const char *kind, bl_meta *out, rlab_err *err);
/* Read an integer metadata value (RLAB_EFORMAT when absent or not an integer in [lo, hi]). */
int bl_meta_int(const char *path, const char *key, int64_t lo, int64_t hi, int64_t *out,
                rlab_err *err);
/* Allocate a zero block for specs and fill it from path (strict: same tensors and shapes). */
rlab_params *bl_load_params(const char *path, const rlab_param_spec *specs, int n, rlab_err *err);

/* ---- the models ------------------------------------------------------------------------- */

/* Common training context handed to the trainers by baselines.train. */
typedef struct bl_train {
    rlab_ctx *ctx; /* progress, cancel, metrics; NULL in unit use (no reports, no cancel) */
    const bl_data *data;
    const char *dataset; /* dataset name for the model's metadata */
    /* hyper-parameters (only the ones a model uses are read) */
    int32_t k;          /* ItemKNN neighbours per item */
    int32_t dim;        /* BPR-MF embedding size */
    int32_t epochs;     /* BPR-MF */
    int32_t batch;      /* BPR-MF triples per update */
    int32_t neg;        /* BPR-MF negatives per positive */
    int32_t eval_every; /* BPR-MF: validate every n epochs (0 = never) */
    int opt;            /* BL_OPT_* */
    int keep_best;      /* BPR-MF: restore the parameters of the best validation NDCG@10 */
    double lr, reg, wd;
    uint64_t seed;
} bl_train;

enum { BL_OPT_ADAMW = 0, BL_OPT_SGD = 1 };

/* Each trainer returns a new model (one reference, owned by the caller; name and dataset
 * filled from t) or NULL with err (RLAB_ECANCELED when t->ctx was cancelled). */
rlab_model *bl_pop_train(const bl_train *t, rlab_err *err);
rlab_model *bl_knn_train(const bl_train *t, rlab_err *err);
rlab_model *bl_bpr_train(const bl_train *t, rlab_err *err);

/* Model kind loaders (rlab_model_kind.load). */
rlab_model *bl_pop_load(rlab_host *host, const char *path, const char *meta, rlab_err *err);
rlab_model *bl_knn_load(rlab_host *host, const char *path, const char *meta, rlab_err *err);
rlab_model *bl_bpr_load(rlab_host *host, const char *path, const char *meta, rlab_err *err);

/* 1 when the trainer should stop (t->ctx cancelled). */
static inline int bl_cancelled(const bl_train *t) { return t->ctx && rlab_ctx_cancelled(t->ctx); }

#endif /* RLAB_PLUGIN_BASELINES_H */
