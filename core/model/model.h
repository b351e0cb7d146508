/*
 * core/model: the recommender interface every model implements, and the registry of named,
 * trained models in a session.
 *
 * A model is an rlab_model (metadata the host can read: name, kind, plugin, dataset, sizes)
 * plus a vtable of functions written by the plugin that created it, and an opaque `impl`
 * pointer to the plugin's own state. Every consumer (the evaluator, the simulator, the
 * attack, reloop, the CRS, Lua) talks to a model only through the rlab_model_* calls below,
 * which fill in generic implementations where a model leaves a vtable slot NULL.
 *
 *     // plugin side: wrap the trained state and hand it to the registry
 *     static const rlab_model_vt pop_vt = {.score_all = pop_score_all, .tensors = pop_tensors,
 *                                          .describe = pop_describe, .free = pop_free};
 *     rlab_model *m = rlab_model_new(&pop_vt, state, "pop", "pop", &err);
 *     m->n_users = nu; m->n_items = ni; snprintf(m->dataset, sizeof m->dataset, "ml-100k");
 *     rlab_ctx_register_model(ctx, m, &err);          // registry owns m from here on
 *
 *     // consumer side: borrow it by name, score, give it back
 *     rlab_model *m = rlab_models_get(reg, "pop");     // +1 reference, NULL when absent
 *     rlab_query q = {.user = 7, .hist = items, .n_hist = n};
 *     int32_t top[10];
 *     rlab_model_topk(m, &q, 1, 10, mask, top, NULL, &err); // masked items never returned
 *     rlab_model_release(m);
 *
 * Ownership: rlab_model_new allocates the rlab_model struct; the model's vt->free releases
 * only `impl`; the struct itself is freed by core when the last reference goes. A model
 * handed to a registry (rlab_models_add, rlab_host_register_model) belongs to it.
 *
 * Threads: metadata fields are written once, before the model is registered, and read-only
 * afterwards. The scoring functions (score, score_all, topk, user_repr, describe, tensors) take
 * a const model and must be safe to call from several threads at once (a trained model is
 * immutable; scratch memory is allocated per call). The registry is thread-safe: a job can
 * score a model while the ui lists or replaces it (reference counting keeps a replaced
 * model alive until its last user releases it).
 */
#ifndef RLAB_MODEL_H
#define RLAB_MODEL_H

#include "base/base.h"
#include "data/split.h"
#include "model/config.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rlab_host rlab_host;
typedef struct rlab_model rlab_model;
typedef struct rlab_ckpt rlab_ckpt; /* tensor/checkpoint.h */
typedef struct rlab_fit rlab_fit;   /* model/fit.h */
typedef struct rlab_fit_ops rlab_fit_ops;

/* One query: whom and in which situation to recommend for. */
typedef struct rlab_query {
    int32_t user;           /* dense user index of the model's dataset; -1 = unknown user */
    const int32_t *hist;    /* [n_hist] item indices, oldest first (may be NULL if n_hist 0) */
    const int64_t *hist_ts; /* [n_hist] timestamps, or NULL */
    int32_t n_hist;
    const char *context; /* optional free text (CRS dialogue, search query) or NULL */
} rlab_query;

/* The functions a model implements. Slots marked optional may be NULL; at least one of
 * score / score_all must be set. All functions return RLAB_OK or an error code and fill err.
 * Scores are "higher is better" and finite (use -INFINITY only for items the model
 * forbids). */
typedef struct rlab_model_vt {
    /* Scores of given candidate items: out[q][j] = score of items[q][j] for query q.
     * q: [nq], items: [nq][n_cand], out: [nq][n_cand]. Optional (generic: score_all and
     * gather). */
    int (*score)(const rlab_model *m, const rlab_query *q, int nq, const int32_t *items, int n_cand,
                 float *out, rlab_err *err);
    /* Scores of every item: out[q][i], q: [nq], out: [nq][m->n_items]. Optional (generic:
     * score with items 0..n_items-1). The evaluator calls this for full ranking. */
    int (*score_all)(const rlab_model *m, const rlab_query *q, int nq, float *out, rlab_err *err);
    /* Top-k over all items, excluding items whose mask byte is nonzero. mask: [nq][n_items]
     * or NULL; items_out: [nq][k]; scores_out: [nq][k] or NULL. Rows with fewer than k
     * allowed items are padded with item -1 and score -INFINITY. Optional (generic:
     * score_all + partial selection, ties broken by lower item index). */
    int (*topk)(const rlab_model *m, const rlab_query *q, int nq, int k, const uint8_t *mask,
                int32_t *items_out, float *scores_out, rlab_err *err);
    /* Add every tensor of the model's state to the checkpoint ck (rlab_ckpt_add,
     * rlab_ckpt_add_params; the data stays borrowed until the host writes the file) and any
     * model-specific metadata (rlab_ckpt_set_meta, keys prefixed with the kind). The host adds
     * the kind, dataset, resolved config, histories and versions; the kind's restore reads
     * it all back. Optional (models without it cannot be saved: RLAB_ESTATE). */
    int (*tensors)(const rlab_model *m, rlab_ckpt *ck, rlab_err *err);
    /* One line of text ("BPR-MF d=64, trained 20 epochs on ml-100k") into buf. Optional. */
    void (*describe)(const rlab_model *m, char *buf, size_t size);
    /* User representation: out[q][0..m->repr_dim-1]. Optional (repr_dim 0 = none). */
    int (*user_repr)(const rlab_model *m, const rlab_query *q, int nq, float *out, rlab_err *err);
    /* Release impl (not the rlab_model struct). Called once, by core, when the last
     * reference is released. Optional. */
    void (*free)(rlab_model *m);
    /* Sample representation: the model's hidden vector of the pairs (q[b], items[b]) and the
     * score it gives them. repr: [nq][m->sample_dim] or NULL; score: [nq] or NULL (the same
     * value score() gives items[b] for q[b]). For embedding models the vector is the
     * concatenation of the query's and the item's vectors ([user vector ; item vector]),
     * whose product the score is built from. Consumers key memories on it (plugins/reloop).
     * Optional (sample_dim 0 = none). Appended last (ABI 4). */
    int (*sample_repr)(const rlab_model *m, const rlab_query *q, int nq, const int32_t *items,
                       float *repr, float *score, rlab_err *err);
    /* Tabular models (kinds flagged RLAB_KIND_TABULAR): the probability of every label of
     * table t for its samples rows[0..n): out [n][t->nlabels], NAN for a label the model does
     * not predict (a single-task model). The host's evaluator turns them into per-task AUC,
     * GAUC and log loss (model/fit.h rlab_eval_ctr_model). Thread-safe like score. Optional.
     * Appended last (ABI 5). */
    int (*predict)(const rlab_model *m, const struct rlab_tabular *t, const int64_t *rows,
                   int64_t n, float *out, rlab_err *err);
} rlab_model_vt;

/* A model. The plugin fills the public fields after rlab_model_new and before it registers
 * the model; afterwards they are read-only. */
struct rlab_model {
    const rlab_model_vt *vt; /* static table in the plugin */
    void *impl;              /* the plugin's state, released by vt->free */
    char name[64];           /* registry key */
    char kind[64];           /* model kind name ("bpr", "sasrec"): its rlab_model_kind */
    char plugin[64];         /* plugin that made it (filled by the host when empty) */
    char dataset[64];        /* dataset it was trained on ("" = none) */
    int32_t n_users, n_items;
    int repr_dim;    /* size of user_repr output, 0 = none */
    atomic_int refs; /* private: reference count (registry + borrowers) */
    /* Filled by the host for models it trains or restores (core frees them): */
    rlab_seqs hist;          /* every user's interactions in time order (n_users 0 = none):
                                the query history and the mask of `recommend` and `export`
                                (never filled into queries implicitly: evaluations pass the
                                split's history) */
    char *config;            /* resolved config as JSON ({"dim":64,...}), or NULL */
    char *train_opts;        /* the training loop's settings as JSON (model/fit.h
                                rlab_fit_fields: split, seed, epochs...), or NULL */
    char dataset_sha256[65]; /* of the dataset it was trained on ("" = unknown) */
    int sample_dim;          /* size of sample_repr output, 0 = none (set by the plugin) */
};

/* Kind flags. */
enum {
    RLAB_KIND_ONESHOT = 1u << 0, /* fitted in one pass (Pop, ItemKNN): no epochs, no validation
                                    during training; the host hides the loop's fields */
    RLAB_KIND_TABULAR = 1u << 1, /* learns from tabular samples (data/tabular.h): trains on
                                    datasets with samples through the view's tabular branch,
                                    its models implement vt->predict, `eval` reports per-task
                                    AUC / GAUC / log loss instead of ranking metrics */
};

/* A model kind: what a plugin declares so that the host can train, evaluate, save, load,
 * recommend with and export its models (the verbs). Listed, NULL-name terminated, in the
 * plugin descriptor. Kind names are global: two plugins cannot provide the same kind.
 *
 *     static const rlab_model_kind kinds[] = {
 *         {.name = "bprmf", .summary = "BPR matrix factorisation",
 *          .config = bpr_fields, .config_size = sizeof(bpr_cfg),
 *          .defaults = (const rlab_kv[]){{"epochs", "50"}, {"select", "ndcg@10"}, {0}},
 *          .fit = &bpr_fit_ops, .restore = bpr_restore},
 *         {0}};
 */
typedef struct rlab_model_kind {
    const char *name;    /* "bprmf" */
    const char *summary; /* one line for help */
    /* Hyperparameters (NULL-name terminated; NULL = none) of a config struct of config_size
     * bytes. */
    const rlab_field *config;
    size_t config_size;
    /* Default overrides (NULL-key terminated, or NULL) for this kind's own fields and for the
     * training loop's (model/fit.h rlab_fit_fields: epochs, eval_every, patience, select,
     * seed, split...). Two kinds may share one table with different defaults. */
    const rlab_kv *defaults;
    unsigned flags; /* RLAB_KIND_* */
    /* Training: the step functions the core loop drives (model/fit.h). Required. */
    const rlab_fit_ops *fit;
    /* Rebuild a model from a checkpoint written through vt->tensors. cfg is the resolved
     * config read from the file (config_size bytes). Returns a new model (one reference) or
     * NULL with err; the host fills name, kind, plugin, dataset, config and histories.
     * Required. */
    rlab_model *(*restore)(rlab_host *host, const rlab_ckpt *ck, const void *cfg, rlab_err *err);
} rlab_model_kind;

/* ---- model objects ------------------------------------------------------------------- */

/* Allocate a model with vtable vt (static, borrowed), implementation state impl (owned by
 * the model from now on: vt->free releases it, also when this call fails), name and kind
 * (copied; may be NULL). The result holds one reference. Returns NULL with RLAB_ENOMEM /
 * RLAB_EINVAL (vt without score and score_all; a name or kind longer than 63 bytes, which is
 * refused rather than cut: "model name 'xxx...' is longer than 63 bytes"). A plugin that
 * names the model afterwards must check the name with rlab_name_check before copying it. */
RLAB_API rlab_model *rlab_model_new(const rlab_model_vt *vt, void *impl, const char *name,
                                    const char *kind, rlab_err *err);
/* Take one more reference (returns m). NULL-safe. Thread-safe. */
RLAB_API rlab_model *rlab_model_retain(rlab_model *m);
/* Drop one reference; the last one calls vt->free and frees the struct. NULL-safe.
 * Thread-safe. */
RLAB_API void rlab_model_release(rlab_model *m);

/* Score candidates (see rlab_model_vt.score). items: [nq][n_cand] item indices in
 * [0, n_items) (RLAB_EINVAL otherwise), out: [nq][n_cand]. */
RLAB_API int rlab_model_score(const rlab_model *m, const rlab_query *q, int nq,
                              const int32_t *items, int n_cand, float *out, rlab_err *err);
/* Score every item: out [nq][n_items]. */
RLAB_API int rlab_model_score_all(const rlab_model *m, const rlab_query *q, int nq, float *out,
                                  rlab_err *err);
/* Top-k with exclusion mask (see rlab_model_vt.topk); uses the model's topk when it has one,
 * else the generic one below. k >= 1. */
RLAB_API int rlab_model_topk(const rlab_model *m, const rlab_query *q, int nq, int k,
                             const uint8_t *mask, int32_t *items_out, float *scores_out,
                             rlab_err *err);
/* The generic top-k, always score_all + partial selection (exposed for models that override
 * topk and want to test against it). Processes queries in chunks to bound memory. */
RLAB_API int rlab_model_topk_generic(const rlab_model *m, const rlab_query *q, int nq, int k,
                                     const uint8_t *mask, int32_t *items_out, float *scores_out,
                                     rlab_err *err);
/* Partial selection over one score row: the k best of scores[0..n-1] whose mask byte is zero
 * (mask may be NULL), best first, ties to the lower index, padded with -1 / -INFINITY.
 * Scores that are NaN are never selected. O(n log k). Thread-safe. */
RLAB_API void rlab_topk_row(const float *scores, int32_t n, const uint8_t *mask, int k,
                            int32_t *items_out, float *scores_out);
/* The stored history of user u in m->hist (items oldest first) into *items; returns its
 * length (0 when there is none). */
RLAB_API int64_t rlab_model_user_hist(const rlab_model *m, int32_t u, const int32_t **items);
/* One-line description into buf (vt->describe or "<kind> model '<name>' (U users, I items)").
 */
RLAB_API void rlab_model_describe(const rlab_model *m, char *buf, size_t size);
/* User representation (RLAB_ESTATE when the model has none). out: [nq][m->repr_dim]. */
RLAB_API int rlab_model_user_repr(const rlab_model *m, const rlab_query *q, int nq, float *out,
                                  rlab_err *err);

/* Hidden representation and score of nq (query, item) samples: repr [nq][m->sample_dim] (or
 * NULL), score [nq] (or NULL); q[b] is paired with items[b]. RLAB_ESTATE when the model has
 * no sample representation (vt->sample_repr NULL or sample_dim 0), RLAB_EINVAL for an item
 * outside [0, n_items) or a bad query. Thread-safe like vt->score.
 *
 *     float h[2 * 64], s[2];                       // a bprmf model with d=64: sample_dim 128
 *     int32_t it[2] = {5, 9};
 *     rlab_query q[2] = {{.user = 3}, {.user = 4}};
 *     rlab_model_sample_repr(m, q, 2, it, h, s, &err);   // h[0..63] = user 3, h[64..] = item 5 */
RLAB_API int rlab_model_sample_repr(const rlab_model *m, const rlab_query *q, int nq,
                                    const int32_t *items, float *repr, float *score, rlab_err *err);

/* The model's state as an in-memory checkpoint container: what vt->tensors adds (named F32 /
 * I32 / I64 tensors and the kind's metadata), without the host's part (histories, config).
 * This is how one plugin reads another's learned arrays by name, e.g. the semantic IDs of a
 * semid tokenizer:
 *
 *     rlab_ckpt *ck = rlab_model_state(m, &err);        // m borrowed (rlab_models_get)
 *     int nd; int64_t sh[8];
 *     const int32_t *ids = ck ? rlab_ckpt_tensor(ck, "semid.codes", RLAB_DT_I32, &nd, sh,
 *                                                &err) : NULL;   // [n_items][levels + 1]
 *     ...
 *     rlab_ckpt_free(ck);                                // before releasing m
 *
 * The tensors' data are borrowed from the model (valid while the model is held and ck is
 * not freed; read-only). Free with rlab_ckpt_free (tensor/checkpoint.h). NULL with
 * RLAB_ESTATE when the kind has no vt->tensors, or its error. Thread-safe like vt->tensors. */
RLAB_API rlab_ckpt *rlab_model_state(const rlab_model *m, rlab_err *err);

/* ---- the registry -------------------------------------------------------------------- */

typedef struct rlab_models rlab_models;

/* Snapshot of one registry entry (for lists in the ui and Lua). */
typedef struct rlab_model_info {
    char name[64], kind[64], plugin[64], dataset[64];
    int32_t n_users, n_items;
    char describe[192];
} rlab_model_info;

/* An empty registry, NULL on ENOMEM. Free with rlab_models_free, which drops the registry's
 * references (models still borrowed elsewhere live until released). */
RLAB_API rlab_models *rlab_models_new(rlab_err *err);
RLAB_API void rlab_models_free(rlab_models *reg);
/* Add m under m->name, taking ownership of the caller's reference (also on failure, when m
 * is released). A model already registered under that name is removed first (and freed once
 * nobody borrows it). RLAB_EINVAL for an empty name or a name field without its closing NUL
 * (names have at most 63 bytes: see rlab_name_check). Thread-safe. */
RLAB_API int rlab_models_add(rlab_models *reg, rlab_model *m, rlab_err *err);
/* The model named name with one new reference (release with rlab_model_release), or NULL.
 * Thread-safe. */
RLAB_API rlab_model *rlab_models_get(rlab_models *reg, const char *name);
/* Remove name from the registry (RLAB_ENOTFOUND when absent). Thread-safe. */
RLAB_API int rlab_models_remove(rlab_models *reg, const char *name, rlab_err *err);
/* Number of registered models. Thread-safe. */
RLAB_API int rlab_models_count(rlab_models *reg);
/* Snapshot of all entries sorted by name into *out (caller frees with rlab_free; NULL when
 * empty) and their number into *n. RLAB_ENOMEM on failure. Thread-safe. */
RLAB_API int rlab_models_list(rlab_models *reg, rlab_model_info **out, int *n, rlab_err *err);
/* Number of models made by plugin that are currently borrowed by someone other than the
 * registry (the host refuses to unload a plugin while this is > 0). Thread-safe. */
RLAB_API int rlab_models_busy(rlab_models *reg, const char *plugin);
/* Remove every model whose plugin field equals plugin; returns how many. Thread-safe. */
RLAB_API int rlab_models_remove_plugin(rlab_models *reg, const char *plugin);

#endif /* RLAB_MODEL_H */
