/*
 * plugins/ranker: multi-task CTR ranking on tabular samples (core/data/tabular.h).
 * INFNet (task-aware information flow: categorical, sequence and task tokens, proxy
 * cross-attention, Proxy Gated Units) and the baselines MMoE, DCN-v2 and shared-bottom.
 *
 *     rk_cfg c;  rk_cfg_defaults(RK_INFNET, &c, &err);
 *     rk_model *m = rk_model_new(&c, tab, train_rows, n_train, &err);   // sizes from tab
 *     rk_fit_result fr;  rk_fit(m, tab, &split, &hooks, &fr, &err);     // Adam, keep-best
 *     rk_metrics te;     rk_evaluate(m, tab, test_rows, n_test, &te, &err);
 *     rk_model_free(m);
 *
 * The model code is a static library shared by the plugin module, its tests and its
 * benchmark; it compiles against the plugin API only.
 */
#ifndef RLAB_RANKER_H
#define RLAB_RANKER_H

#include "host/plugin.h"
#include "data/tabular.h"
#include "model/config.h"
#include "tensor/loss.h"
#include "tensor/nn.h"
#include "tensor/ops.h"
#include "tensor/optim.h"

#include <stdint.h>

enum { RK_INFNET = 0, RK_MMOE, RK_DCNV2, RK_SHAREDBOTTOM, RK_NKINDS };
extern const char *const rk_kind_names[]; /* "infnet", "mmoe", "dcnv2", "sharedbottom" */

/* Every hyperparameter of every kind (a kind ignores the fields it does not use; the
 * schema rk_fields lists which). */
typedef struct rk_cfg {
    int kind;
    int dim;    /* embedding size d */
    int hidden; /* MLP width (towers, experts, deep part, heads) */
    int epochs;
    int batch;
    float lr;
    float l2;      /* Adam L2 on every parameter */
    float dropout; /* on MLP hidden layers */
    int patience;  /* validations without a better mean valid AUC before stopping */
    int64_t seed;
    char task[32]; /* "" = every label (multi-task); a label name = single-task */
    int max_seq;   /* behaviour sequence: the last max_seq items */
    /* infnet */
    int layers;       /* alternating heterogeneous / homogeneous blocks */
    int proxies;      /* categorical proxy tokens m, and sequence proxies per action type */
    int shared_tasks; /* shared task tokens N_s (0 = none: task tokens are not gated) */
    int heads;        /* attention heads of the cross-attention */
    int hetero;       /* 1: heterogeneous flow (ablation switch) */
    int homo;         /* 1: homogeneous flow (PGU) (ablation switch) */
    /* mmoe */
    int experts;
    /* dcnv2 */
    int cross_layers;
} rk_cfg;

extern const rlab_field rk_fields[];
int rk_cfg_defaults(int kind, rk_cfg *c, rlab_err *err);

typedef struct rk_model rk_model;

/* A model for the samples of tab (field sizes, labels); numeric fields are standardised
 * with the statistics of rows[0..n) (the training part) after a signed log1p. */
rk_model *rk_model_new(const rk_cfg *c, const rlab_tabular *tab, const int64_t *rows, int64_t n,
                       rlab_err *err);
void rk_model_free(rk_model *m);
const rk_cfg *rk_model_cfg(const rk_model *m);
int rk_model_ntasks(const rk_model *m);
const char *rk_model_task_name(const rk_model *m, int i);
int64_t rk_model_nparams(const rk_model *m);
rlab_params *rk_model_params(rk_model *m);

/* Forward on a batch of rows: task logits [B, ntasks] on tape. */
rlab_tensor *rk_forward(rk_model *m, rlab_tape *tp, const rlab_tabular *tab, const int64_t *rows,
                        int B);
/* Probabilities of every task for rows: out [n][ntasks]. */
int rk_predict(rk_model *m, const rlab_tabular *tab, const int64_t *rows, int64_t n, float *out,
               rlab_err *err);

#define RK_MAX_TASKS RLAB_TAB_MAX_LABELS
typedef struct rk_metrics {
    int ntasks;
    char names[RK_MAX_TASKS][32];
    double auc[RK_MAX_TASKS], gauc[RK_MAX_TASKS], logloss[RK_MAX_TASKS]; /* NAN = undefined */
    int64_t n;
} rk_metrics;
/* Per-task AUC, GAUC (when tab has groups) and log loss of the model on rows. A metric that
 * is undefined on these rows (one class only) is NAN. */
int rk_evaluate(rk_model *m, const rlab_tabular *tab, const int64_t *rows, int64_t n,
                rk_metrics *out, rlab_err *err);
/* Mean over tasks of the defined AUCs (NAN when none). */
double rk_mean_auc(const rk_metrics *x);

typedef struct rk_hooks {
    void *ud;
    int (*cancelled)(void *ud);
    void (*epoch)(void *ud, int e, int epochs, double loss, const rk_metrics *valid);
} rk_hooks;

typedef struct rk_fit_result {
    int epochs_run, best_epoch;
    double best_valid; /* mean valid AUC at best_epoch */
    double seconds;    /* training wall time */
    double samples_per_s;
} rk_fit_result;

/* Train with Adam on train rows, validate every epoch on valid rows (mean AUC; keep the best
 * parameters, stop after cfg.patience epochs without improvement). RLAB_ECANCELED when the
 * hook says so (the best parameters so far are kept). */
int rk_fit(rk_model *m, const rlab_tabular *tab, const int64_t *train, int64_t ntrain,
           const int64_t *valid, int64_t nvalid, const rk_hooks *hooks, rk_fit_result *res,
           rlab_err *err);

/* The training steps (Adam on shuffled batches of the training rows; one code path for the
 * host's loop and rk_fit): rk_trainer_epoch shuffles (seeded by cfg.seed) and returns the
 * number of steps; rk_trainer_step trains on batch i (*loss its mean BCE over samples and
 * tasks, *weight its samples; a non-finite loss is returned without a parameter update). */
typedef struct rk_trainer rk_trainer;
rk_trainer *rk_trainer_new(rk_model *m, const rlab_tabular *tab, const int64_t *train,
                           int64_t ntrain, rlab_err *err);
int64_t rk_trainer_epoch(rk_trainer *tr);
int rk_trainer_step(rk_trainer *tr, int64_t i, double *loss, double *weight, rlab_err *err);
void rk_trainer_free(rk_trainer *tr);

/* ---- host model kinds (kinds.c) ---------------------------------------------------------- */

/* The four kinds as host model kinds (model/model.h, RLAB_KIND_TABULAR): config schemas,
 * fit ops on the host's tabular view, predict, save and restore. NULL-name terminated. */
extern const rlab_model_kind rk_model_kinds[];

/* What a saved model needs to rebuild its layout without the table: the table's token
 * fields (name, role, cardinality, shared ids), numeric fields and labels, as text; and the
 * reverse, a table of that shape without samples (free with rlab_tabular_free). */
char *rk_schema_text(const rlab_tabular *t);
rlab_tabular *rk_schema_table(const char *text, rlab_err *err);
/* RLAB_OK when tab has the field layout (cardinalities, roles, numeric fields, labels) m was
 * built for; else RLAB_EINVAL saying what differs. */
int rk_model_fits(const rk_model *m, const rlab_tabular *tab, rlab_err *err);
/* Numeric standardisation of the model: mean / sd per numeric field ([nnum] each). */
float *rk_model_num_stats(rk_model *m, int which, int *nnum);

#endif /* RLAB_RANKER_H */
