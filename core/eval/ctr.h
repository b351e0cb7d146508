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

#endif /* RLAB_EVAL_CTR_H */
