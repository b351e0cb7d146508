/*
 * core/data/view: the one data view every model kind trains and is evaluated on. A view is a
 * dataset cut by a split into per-user CSR rows (core/data/split.h rlab_seqs) that carry each
 * user's history for masking:
 *
 *   train       what models learn from (every interaction for split "none")
 *   hist_valid  input and mask when ranking the valid targets: the train part
 *   hist_test   input and mask when ranking the test targets: train + valid
 *   valid/test  the targets (leave-one-out: at most one per user; users with fewer than 3
 *               interactions keep everything in train, as SASRec's data_partition does)
 *   all         every interaction of the user in time order: the input and mask of
 *               `recommend` after training
 *
 *     rlab_view_opts o = rlab_view_defaults();     // leave-one-out
 *     rlab_view *v = NULL;
 *     if (rlab_view_new(ds, &o, &v, &err)) ...      // v->train, v->hist_test, v->test ...
 *     rlab_view_free(v);
 *
 * Splits: "loo" (leave-one-out by time, the default), "temporal" (global time cut-offs at the
 * quantiles 1 - test_frac - valid_frac and 1 - test_frac of the timestamps), "ratio" (per
 * user random split, seeded), "none" (train on everything, no targets). Rows keep time order
 * within a user. A view is immutable once built and may be read from several threads.
 */
#ifndef RLAB_DATA_VIEW_H
#define RLAB_DATA_VIEW_H

#include "data/split.h"
#include "data/table.h"

enum { RLAB_SPLIT_LOO = 0, RLAB_SPLIT_TEMPORAL, RLAB_SPLIT_RATIO, RLAB_SPLIT_NONE };
/* "loo", "temporal", "ratio", "none" (NULL-terminated, indexed by RLAB_SPLIT_*). */
RLAB_API extern const char *const rlab_split_names[];

/* Which targets an evaluation ranks. */
enum { RLAB_VIEW_VALID = 0, RLAB_VIEW_TEST = 1 };

typedef struct rlab_view_opts {
    int split;         /* RLAB_SPLIT_* */
    double valid_frac; /* temporal / ratio: share of the valid part (0.1) */
    double test_frac;  /* temporal / ratio: share of the test part (0.1) */
    uint64_t seed;     /* ratio only */
} rlab_view_opts;

RLAB_API rlab_view_opts rlab_view_defaults(void);

typedef struct rlab_view {
    char dataset[64];
    int32_t n_users, n_items;
    rlab_view_opts opts;
    rlab_seqs train, hist_valid, hist_test, valid, test, all;
    /* The tabular branch (appended). For a dataset with samples (ds->tab, data/tabular.h)
     * the view is the samples and their fixed parts instead of interaction rows: tab points
     * into the dataset (borrowed: valid while the dataset is held), rows[RLAB_VIEW_TRAIN /
     * _VALID / _TEST] are row indices of tab (owned by the view) in the order training reads
     * them; the seqs above are empty, n_items is 0 and n_users the number of groups. The
     * split options do not apply: a table's parts are fixed when it is loaded (the same for
     * every model of the table), or, when it has none, 70/10/20 by time (random, seed 0,
     * without times). NULL for interaction views. */
    const struct rlab_tabular *tab;
    int64_t *rows[3];
    int64_t nrows[3];
} rlab_view;

/* Index of rlab_view.rows: the training part (RLAB_VIEW_VALID / _TEST index the others). */
enum { RLAB_VIEW_TRAIN = 2 };

/* Build the view of ds (borrowed for the call only; a tabular view's tab stays borrowed).
 * RLAB_EINVAL for a dataset without interactions or bad fractions, RLAB_ENOMEM. Free with
 * rlab_view_free (NULL ok). */
RLAB_API int rlab_view_new(const rlab_dataset *ds, const rlab_view_opts *opts, rlab_view **out,
                           rlab_err *err);
RLAB_API void rlab_view_free(rlab_view *v);

/* Copy of a CSR sequence set (deep). RLAB_ENOMEM. */
RLAB_API int rlab_seqs_copy(const rlab_seqs *src, rlab_seqs *dst, rlab_err *err);

#endif /* RLAB_DATA_VIEW_H */
