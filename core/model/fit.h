/*
 * core/model/fit: the one training loop every model kind plugs into. A kind supplies step
 * functions (rlab_fit_ops); the loop supplies everything around them: epochs, batches, cancel
 * checks between steps, a clear stop on a non-finite loss, validation every n epochs with the
 * one evaluator (full ranking unless neg > 0), keep-best with patience, the test evaluation of
 * the kept model, progress and metrics through hooks (the host sends them to the shell and
 * the store).
 *
 *     static const rlab_fit_ops bpr_fit = {.begin = bpr_begin, .epoch = bpr_epoch,
 *                                          .step = bpr_step, .model = bpr_model,
 *                                          .params = bpr_params, .end = bpr_end};
 *     rlab_fit fit = {.view = v, .cfg = &cfg, .opts = &opts};   // hooks optional
 *     rlab_fit_result res;
 *     rlab_model *m = rlab_fit_run(&bpr_fit, &fit, &res, &err);  // trained, best epoch kept
 *
 * The loop, for epoch e = 1..epochs:
 *     ops->epoch(state, e, &n)                 (n steps; NULL op = one step)
 *     for i < n: cancelled? -> RLAB_ECANCELED; ops->step(state, i, &loss, &w, parts)
 *                loss not finite -> RLAB_ESTATE "loss is nan at epoch e, step i: lower lr"
 *     train.loss = sum(loss * w) / sum(w) (and each part), reported at step e
 *     if eval_every > 0 and (e % eval_every == 0 or e == epochs): valid metrics of
 *        ops->model(state) at ks 5, 10, 20 (hr, ndcg, recall, mrr); when opts->select improves
 *        (strictly): snapshot ops->params (keep_best), else patience counts down
 * then the best snapshot is restored (keep_best), and the test targets are evaluated once
 * (eval_test) on the final model. A cancelled run keeps the best model so far: rlab_fit_run
 * returns it with err->code RLAB_ECANCELED.
 *
 * Tabular views (view->tab, data/view.h: CTR / multi-task samples with fixed parts) take one
 * branch of the loop: the kind reads view->tab and view->rows[RLAB_VIEW_TRAIN] (its epoch op
 * shuffles and batches them), and validation / test evaluate the samples of the part with
 * rlab_eval_ctr_model instead of ranking: the metrics are "auc", "gauc", "logloss" (means
 * over the tasks) then "<task>.auc", "<task>.gauc", "<task>.logloss" per task (NAN where
 * undefined), protocol "ctr"; select= must be "auc", "gauc" or "<task>.auc|gauc" (higher is
 * better). The split options do not apply (a table's parts are fixed at load). A select
 * metric that is undefined on the valid part (NAN: one class only) selects nothing: that
 * epoch is kept, as without validation, and patience does not count it.
 */
#ifndef RLAB_MODEL_FIT_H
#define RLAB_MODEL_FIT_H

#include "data/view.h"
#include "eval/ctr.h"
#include "eval/eval.h"
#include "model/config.h"
#include "model/model.h"
#include "tensor/tensor.h"

/* The loop's own settings; every kind's `train` gets them as arguments (rlab_fit_fields),
 * with per-kind defaults from rlab_model_kind.defaults. */
typedef struct rlab_fit_opts {
    int epochs;      /* passes over the training data */
    int eval_every;  /* validate every n epochs (and at the last); 0 = never */
    int patience;    /* validations without improvement before stopping; 0 = never stop early */
    int keep_best;   /* restore the parameters of the best validation */
    char select[32]; /* validation metric that selects ("ndcg@10") */
    int eval_test;   /* evaluate the test targets of the final model */
    int eval_neg;    /* evaluation: 0 = full ranking; N = sampled 1 + N (labelled) */
    int64_t seed;    /* the run's seed (kinds seed their generators from it) */
    int split;       /* RLAB_SPLIT_* (data/view.h) */
    double valid_frac, test_frac; /* temporal / ratio splits */
    int threads;                  /* 0 = leave as is; else the tensor core's thread count */
} rlab_fit_opts;

/* The fields of rlab_fit_opts, as a config schema (data and name are the verb's own). */
RLAB_API extern const rlab_field rlab_fit_fields[];
/* Names of rlab_fit_fields that a RLAB_KIND_ONESHOT kind does not take. */
RLAB_API int rlab_fit_field_is_loop(const char *name);

/* Metric names every validation computes ("hr@5" ... "mrr@20"). */
#define RLAB_FIT_NKS 3

/* One training run. The caller fills view, cfg, opts and optionally the hooks. */
struct rlab_fit {
    const rlab_view *view;
    const void *cfg; /* the kind's resolved config */
    const rlab_fit_opts *opts;
    const char *kind; /* kind name, for messages */
    /* hooks (all optional) */
    void *ud;
    int (*cancelled)(void *ud);
    /* one line of output */
    void (*log)(void *ud, const char *line);
    /* progress: epoch e of total, with n named values (loss, valid metrics) */
    void (*progress)(void *ud, int64_t e, int64_t total, int n, const char *const *names,
                     const double *values);
    /* a metric of the run (split "train" / "valid" / "test", protocol NULL for train) */
    int (*metric)(void *ud, int64_t step, const char *split, const char *name, const char *protocol,
                  double value);
    /* The dataset the view was cut from (borrowed for the run; NULL when the caller has
     * none): its item and user feature tables, for kinds that learn from content (semantic-ID
     * tokenizers, data/content.h). Appended: kinds that do not need it ignore it. */
    const rlab_dataset *data;
    /* The host running the training (NULL outside a host, e.g. in unit tests): for kinds
     * that consume another registered model by name (rlab_host_models, host/plugin.h), such
     * as a generative ranker reading a semantic-ID tokenizer. Appended. */
    rlab_host *host;
};

/* The step functions of a kind. */
struct rlab_fit_ops {
    /* Create the training state (an untrained model of the view's users and items) from
     * fit->view, fit->cfg and fit->opts. Required. */
    int (*begin)(const rlab_fit *fit, void **state, rlab_err *err);
    /* Prepare epoch e (1-based: shuffle, sample) and say how many steps it has. Optional
     * (NULL: one step per epoch). */
    int (*epoch)(void *state, int e, int64_t *n_steps, rlab_err *err);
    /* Step i of the current epoch: *loss its mean loss, *weight its weight in the epoch mean
     * (preset to 1), parts[0..] its named parts (see part_names). Required. */
    int (*step)(void *state, int64_t i, double *loss, double *weight, double *parts, rlab_err *err);
    const char *const *part_names; /* NULL-terminated names of the loss parts, or NULL */
    int no_loss;                   /* 1: the steps have no loss to report (one-pass kinds) */
    /* The model under training (borrowed from the state; scores with the current
     * parameters). Required. */
    rlab_model *(*model)(void *state);
    /* The parameters keep-best snapshots (optional: NULL = nothing to keep). */
    rlab_params *(*params)(void *state);
    /* Called after the loop whatever happened. The model returned by `model` must survive
     * it (the loop holds a reference). Optional. */
    void (*end)(void *state);
    /* 1: the kind is data-parallel under MPI (appended). Its step computes only the rows
     * rlab_fit_shard gives this rank, reports their loss and weight, and calls
     * rlab_fit_sync_grads between its backward and its update; the loop then sums the epoch's
     * loss over ranks. 0: under MPI every rank runs every step (replicated: same model, no
     * speed-up; the loop says so once). Validation and test are sharded over ranks for every
     * kind (rlab_eval_model). */
    int data_parallel;
};

/* ---- MPI data parallelism (core/base/mpi.h) -------------------------------------------- */
/* The rows [*lo, *hi) of a batch of n rows this rank computes: contiguous near-equal shards in
 * rank order, so the ranks together compute exactly the one-process batch (all rows without
 * MPI). A kind keeps drawing its random numbers for every row, its own or not, so its
 * generators stay in step with one process. */
RLAB_API void rlab_fit_shard(int64_t n, int64_t *lo, int64_t *hi);
/* The gradient exchange of a data-parallel step (collective; no-op on one rank): every
 * gradient of P becomes sum over ranks of scale_r * grad_r, identical on every rank. A kind
 * whose gradients are already means over the global batch passes scale 1; one whose gradients
 * are means over its n_local rows passes n_local / n_global. Tensors whose rows are tracked
 * (rlab_params_track_rows) travel sparsely: the touched rows only (index + row, all-gathered,
 * summed in rank order), and on return their touched flags are the union over ranks; the rest
 * of the block is summed dense (in the buckets of rlab_fit_overlap below; with overlap off, in
 * runs of up to 1 Mi floats). Untouched rows of a tracked tensor must have zero gradient. RLAB_ENET
 * (MPI failure or timeout), ENOMEM. */
RLAB_API int rlab_fit_sync_grads(rlab_params *P, double scale, rlab_err *err);
/* Overlap of the dense exchange with the backward (on by default; $RECLAB_MPI_OVERLAP=0 or
 * rlab_fit_set_overlap(0) turns it off; every rank must agree). With it on, the dense
 * tensors are summed in buckets of $RECLAB_MPI_BUCKET floats (default 256 Ki) in reverse block
 * order; a step that calls rlab_fit_overlap_begin(P, tape, scale) before its backward has each
 * bucket scaled and its MPI_Iallreduce started as soon as the backward has finished its
 * gradients (rlab_tape_on_grad_ready), and its rlab_fit_sync_grads(P, scale) then only waits
 * (and exchanges the tracked tensors). The kind must not change P's dense gradients between
 * the backward and rlab_fit_sync_grads (add an L2 term after it). No-op on one rank. */
RLAB_API void rlab_fit_set_overlap(int on);
RLAB_API int rlab_fit_overlap(void);
RLAB_API int rlab_fit_overlap_begin(rlab_params *P, rlab_tape *tape, double scale, rlab_err *err);

typedef struct rlab_fit_result {
    int epochs_run;
    int best_epoch;      /* 0 = no validation selected an epoch */
    double best_valid;   /* the select metric at best_epoch */
    double seconds;      /* training wall time (no evaluation) */
    double eval_seconds; /* validation + test wall time */
    char protocol[32];   /* "full" or "sampled-N" ("" = never evaluated) */
    int n_metrics;       /* valid/test means of the kept model, metric-major names */
    char names[16][48];  /* (tabular views: "auc", "gauc", "logloss", "<task>.auc" ...) */
    double valid[16], test[16];
    int has_valid, has_test;
} rlab_fit_result;

/* Run the loop. Returns the trained model (one reference, the caller's) or NULL with err;
 * on RLAB_ECANCELED the best model so far is returned and err->code is RLAB_ECANCELED. */
RLAB_API rlab_model *rlab_fit_run(const rlab_fit_ops *ops, const rlab_fit *fit,
                                  rlab_fit_result *res, rlab_err *err);

/* ---- evaluation of any model on a view ------------------------------------------------ */

typedef struct rlab_eval_opts {
    const int *ks; /* NULL = {5, 10, 20} */
    int n_ks;
    unsigned metrics; /* RLAB_EM_*; 0 = hr | recall | ndcg | mrr */
    int neg;          /* 0 = full ranking */
    uint64_t seed;    /* sampled protocol */
    int keep_topk;
    int batch; /* 0 = 256 */
    int (*cancel)(void *ud);
    void *cancel_ud;
    /* > 0: rank only the targets whose item has fewer than `cold` interactions in the view's
     * train part (the cold-item slice; users without such a target are skipped); 0 = every
     * target. Appended. */
    int cold;
} rlab_eval_opts;

/* Rank the valid or test targets (RLAB_VIEW_VALID / _TEST) of view v with model m, with the
 * split's history as the query input and mask (valid: train; test: train + valid). Every
 * model kind is evaluated the same way. RLAB_EINVAL when the model's item count differs from
 * the view's. Caller frees the result. */
RLAB_API rlab_eval_result *rlab_eval_model(const rlab_model *m, const rlab_view *v, int which,
                                           const rlab_eval_opts *o, rlab_err *err);

/* ---- evaluation of a tabular model ------------------------------------------------------ */

/* Per-task AUC, GAUC and log loss (eval/ctr.h) of model m (its vt->predict) on the valid or
 * test part (RLAB_VIEW_VALID / _TEST; RLAB_VIEW_TRAIN also works) of tabular view v. Errors:
 * RLAB_EINVAL (v is not tabular), RLAB_ESTATE (m has no predict: not a tabular model), the
 * model's own, RLAB_ENOMEM. Thread-safe like the model's predict. */
RLAB_API int rlab_eval_ctr_model(const rlab_model *m, const rlab_view *v, int which,
                                 rlab_ctr_result *out, rlab_err *err);

#endif /* RLAB_MODEL_FIT_H */
