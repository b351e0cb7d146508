/*
 * core/eval/ctr: click-through-rate metrics over impressions (score, 0/1 label).
 *
 *     double auc, gauc, ll;
 *     rlab_eval_auc(scores, labels, n, &auc, &err);
 *     rlab_eval_gauc(scores, labels, user_of_row, n, &gauc, NULL, &err);
 *     rlab_eval_logloss(probs, labels, n, 0.0, &ll, &err);   // default clip 1e-7
 *
 * AUC is the Mann-Whitney statistic from one sort: positives' average ranks (tied scores
 * share their mean rank, so a tied positive/negative pair counts 1/2). GAUC is the mean of
 * per-user AUCs weighted by each user's number of impressions; users whose impressions are
 * all positive or all negative are skipped (and do not count in the weights). A label is
 * positive when nonzero. All functions are thread-safe.
 */
#ifndef RLAB_EVAL_CTR_H
#define RLAB_EVAL_CTR_H

#include "base/base.h"

/* AUC of scores[0..n) against labels[0..n). Errors: RLAB_EINVAL (only one class present,
 * NaN score), RLAB_ENOMEM. */
RLAB_API int rlab_eval_auc(const float *scores, const uint8_t *labels, int64_t n, double *auc,
                           rlab_err *err);

/* Group AUC; group[i] is the user of impression i (any int32, rows need not be grouped).
 * *n_groups_used (may be NULL) receives the number of users that entered the average.
 * Errors: RLAB_EINVAL (no user has both classes, NaN score), RLAB_ENOMEM. */
RLAB_API int rlab_eval_gauc(const float *scores, const uint8_t *labels, const int32_t *group,
                            int64_t n, double *gauc, int64_t *n_groups_used, rlab_err *err);

/* Mean binary cross-entropy of probabilities p[0..n), each clipped to [eps, 1-eps]
 * (eps <= 0 means 1e-7). Errors: RLAB_EINVAL (n < 1, NaN probability). */
RLAB_API int rlab_eval_logloss(const float *p, const uint8_t *labels, int64_t n, double eps,
                               double *loss, rlab_err *err);

/* ---- per-task metrics of a multi-task model ------------------------------------------- */

#define RLAB_CTR_MAX_TASKS 8

/* Per-task AUC, GAUC and log loss over n samples, and their means over the tasks where each
 * is defined. NAN marks a metric that is undefined on these samples (AUC with one class
 * only, GAUC without groups or without a group holding both classes), never a made-up
 * value. */
typedef struct rlab_ctr_result {
    int ntasks;                               /* labels the model predicts */
    int label[RLAB_CTR_MAX_TASKS];            /* their indices among the table's labels */
    char names[RLAB_CTR_MAX_TASKS][32];       /* their names */
    double auc[RLAB_CTR_MAX_TASKS];           /* NAN = undefined */
    double gauc[RLAB_CTR_MAX_TASKS];          /* NAN = undefined */
    double logloss[RLAB_CTR_MAX_TASKS];       /* NAN = undefined */
    double mean_auc, mean_gauc, mean_logloss; /* over the tasks where defined (NAN: none) */
    int64_t n;                                /* samples */
} rlab_ctr_result;

/* Metrics of probabilities probs [n][nlabels] against 0/1 labels: sample i is row rows[i] of
 * labels [*][nlabels] and group [*] (rows NULL: row i; group NULL: no GAUC). A label whose
 * column of probs is all NAN is a label the model does not predict: it is not a task.
 * label_names [nlabels] (NULL: "label<j>"). Errors: RLAB_EINVAL (nlabels outside
 * [1, RLAB_CTR_MAX_TASKS], n < 0), RLAB_ENOMEM. Thread-safe.
 *
 *     float p[3 * 2] = {.9f, .2f,  .1f, .7f,  .8f, .6f};   // 3 samples, 2 labels
 *     float y[3 * 2] = {1, 0,  0, 1,  1, 0};
 *     rlab_ctr_result r;
 *     rlab_eval_ctr_tasks(p, y, 2, NULL, NULL, NULL, 3, &r, &err);  // r.auc[0] = 1, ... */
RLAB_API int rlab_eval_ctr_tasks(const float *probs, const float *labels, int nlabels,
                                 const char (*label_names)[32], const int32_t *group,
                                 const int64_t *rows, int64_t n, rlab_ctr_result *out,
                                 rlab_err *err);

#endif /* RLAB_EVAL_CTR_H */
