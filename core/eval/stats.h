/*
 * core/eval/stats: uncertainty and significance for per-user metric values, rank correlation.
 *
 *     rlab_eval_ci ci;
 *     rlab_eval_bootstrap(ndcg_per_user, n, 1000, 0.95, 42, &ci, &err); // ci.mean, ci.lo, ci.hi
 *     rlab_eval_ttest tt;
 *     rlab_eval_ttest_paired(ndcg_a, ndcg_b, n, &tt, &err);            // tt.t, tt.df, tt.p
 *
 * Bootstrap: B resamples of the n values with replacement (rlab_rng seeded with `seed`, so
 * the interval is a pure function of (x, B, level, seed)); the interval is the percentile
 * interval of the B resample means, each quantile interpolated linearly between order
 * statistics at position q (B-1) (the "type 7" rule of R and numpy).
 * Paired t-test: d = a - b, t = mean(d) / (sd(d) / sqrt(n)) with the n-1 sample sd,
 * df = n - 1, two-sided p = I_{df/(df+t^2)}(df/2, 1/2). When sd(d) = 0: t = 0, p = 1 if
 * mean(d) = 0, else t = +-inf, p = 0.
 * The Student t CDF uses the regularized incomplete beta function I_x(a, b), computed from
 * its continued fraction (modified Lentz), with the symmetry I_x(a,b) = 1 - I_{1-x}(b,a)
 * where it converges faster. Absolute accuracy about 1e-12. All functions are thread-safe.
 */
#ifndef RLAB_EVAL_STATS_H
#define RLAB_EVAL_STATS_H

#include "base/base.h"

typedef struct rlab_eval_ci {
    double mean, lo, hi;
} rlab_eval_ci;

typedef struct rlab_eval_ttest {
    double mean_diff, t, df, p;
} rlab_eval_ttest;

/* Mean of x[0..n) with a `level` (e.g. 0.95; <= 0 means 0.95) bootstrap percentile interval
 * from B >= 1 resamples. Errors: RLAB_EINVAL (n < 1, B < 1, level >= 1), RLAB_ENOMEM. */
RLAB_API int rlab_eval_bootstrap(const double *x, int64_t n, int B, double level, uint64_t seed,
                                 rlab_eval_ci *out, rlab_err *err);

/* Paired two-sided t-test of a[i] vs b[i], i < n. Errors: RLAB_EINVAL (n < 2). */
RLAB_API int rlab_eval_ttest_paired(const double *a, const double *b, int64_t n,
                                    rlab_eval_ttest *out, rlab_err *err);

/* Average ranks (1-based) of x[0..n) into r: tied values share the mean of the ranks they
 * span ({10, 20, 20, 30} -> {1, 2.5, 2.5, 4}). Errors: RLAB_EINVAL (n < 1), RLAB_ENOMEM. */
RLAB_API int rlab_eval_ranks(const double *x, int64_t n, double *r, rlab_err *err);

/* Spearman's rank correlation of x[i] vs y[i], i < n: the Pearson correlation of their
 * average ranks (so ties are handled exactly, not by the 1 - 6 sum d^2 / (n (n^2 - 1))
 * shortcut, which is only right without ties). NaN when either side is constant.
 * Errors: RLAB_EINVAL (n < 2), RLAB_ENOMEM. */
RLAB_API int rlab_eval_spearman(const double *x, const double *y, int64_t n, double *rho,
                                rlab_err *err);

/* Regularized incomplete beta I_x(a, b) for a, b > 0, x in [0, 1] (NaN otherwise). */
RLAB_API double rlab_eval_betainc(double a, double b, double x);
/* CDF of Student's t with df > 0 degrees of freedom at t. */
RLAB_API double rlab_eval_t_cdf(double t, double df);

#endif /* RLAB_EVAL_STATS_H */
