/*
 * core/eval/stats: bootstrap percentile intervals, the paired t-test, the Student t CDF,
 * average ranks and Spearman's rank correlation.
 */
#include "eval/stats.h"

#include <math.h>
#include <stdlib.h>

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Quantile q of sorted s[0..n) by linear interpolation at position q (n-1). */
static double quantile(const double *s, int64_t n, double q)
{
    double h = q * (double)(n - 1);
    int64_t i = (int64_t)floor(h);
    if (i >= n - 1)
        return s[n - 1];
    if (i < 0)
        return s[0];
    return s[i] + (h - (double)i) * (s[i + 1] - s[i]);
}

int rlab_eval_bootstrap(const double *x, int64_t n, int B, double level, uint64_t seed,
                        rlab_eval_ci *out, rlab_err *err)
{
    if (level <= 0.0)
        level = 0.95;
    if (n < 1 || B < 1 || level >= 1.0)
        return rlab_errf(err, RLAB_EINVAL, "bootstrap: need n >= 1, B >= 1, level < 1");
    double *means = rlab_malloc((size_t)B * sizeof *means);
    if (!means)
        return rlab_errf(err, RLAB_ENOMEM, "bootstrap: out of memory");
    double s = 0.0;
    for (int64_t i = 0; i < n; i++)
        s += x[i];
    out->mean = s / (double)n;
    rlab_rng r;
    rlab_rng_seed(&r, seed);
    for (int b = 0; b < B; b++) {
        double t = 0.0;
        for (int64_t i = 0; i < n; i++)
            t += x[rlab_rng_below(&r, (uint64_t)n)];
        means[b] = t / (double)n;
    }
    qsort(means, (size_t)B, sizeof *means, cmp_dbl);
    out->lo = quantile(means, B, 0.5 * (1.0 - level));
    out->hi = quantile(means, B, 1.0 - 0.5 * (1.0 - level));
    rlab_free(means);
    return RLAB_OK;
}

/* Continued fraction of I_x(a,b) (without the front factor), modified Lentz:
 * 1 / (1 + d1 / (1 + d2 / (1 + ...))) with
 *   d_{2m+1} = -(a+m)(a+b+m) x / ((a+2m)(a+2m+1)),  d_{2m} = m(b-m) x / ((a+2m-1)(a+2m)). */
static double beta_cf(double a, double b, double x)
{
    const double tiny = 1e-300, eps = 1e-15;
    double f = 1.0, C = 1.0, D = 0.0;
    for (int j = 1; j <= 10000; j++) {
        int m = j / 2;
        double d;
        if (j % 2) /* odd: j = 2m + 1 */
            d = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1));
        else
            d = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m));
        D = 1.0 + d * D;
        if (fabs(D) < tiny)
            D = tiny;
        C = 1.0 + d / C;
        if (fabs(C) < tiny)
            C = tiny;
        D = 1.0 / D;
        double delta = C * D;
        f *= delta;
        if (fabs(delta - 1.0) < eps)
            break;
    }
    return 1.0 / f;
}

double rlab_eval_betainc(double a, double b, double x)
{
    if (!(a > 0.0) || !(b > 0.0) || !(x >= 0.0 && x <= 1.0))
        return NAN;
    if (x <= 0.0)
        return 0.0;
    if (x >= 1.0)
        return 1.0;
    /* log of x^a (1-x)^b / B(a, b) */
    double lfront = lgamma(a + b) - lgamma(a) - lgamma(b) + a * log(x) + b * log1p(-x);
    if (x < (a + 1.0) / (a + b + 2.0))
        return exp(lfront) * beta_cf(a, b, x) / a;
    return 1.0 - exp(lfront) * beta_cf(b, a, 1.0 - x) / b;
}

double rlab_eval_t_cdf(double t, double df)
{
    if (isnan(t) || !(df > 0.0))
        return NAN;
    if (isinf(t))
        return t > 0 ? 1.0 : 0.0;
    double tail = 0.5 * rlab_eval_betainc(0.5 * df, 0.5, df / (df + t * t)); /* P(T > |t|) */
    return t > 0.0 ? 1.0 - tail : tail;
}

int rlab_eval_ttest_paired(const double *a, const double *b, int64_t n, rlab_eval_ttest *out,
                           rlab_err *err)
{
    if (n < 2)
        return rlab_errf(err, RLAB_EINVAL, "ttest: need at least 2 pairs, got %lld", (long long)n);
    double m = 0.0;
    for (int64_t i = 0; i < n; i++)
        m += a[i] - b[i];
    m /= (double)n;
    double ss = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double d = a[i] - b[i] - m;
        ss += d * d;
    }
    double sd = sqrt(ss / (double)(n - 1));
    out->mean_diff = m;
    out->df = (double)(n - 1);
    if (!(sd > 0.0)) {
        int zero = !(m > 0.0) && !(m < 0.0);
        out->t = zero ? 0.0 : (m > 0.0 ? (double)INFINITY : -(double)INFINITY);
        out->p = zero ? 1.0 : 0.0;
        return RLAB_OK;
    }
    out->t = m / (sd / sqrt((double)n));
    double x = out->df / (out->df + out->t * out->t);
    out->p = rlab_eval_betainc(0.5 * out->df, 0.5, x);
    return RLAB_OK;
}

typedef struct ranked {
    double v;
    int64_t i;
} ranked;

static int cmp_ranked(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    if (x->v < y->v)
        return -1;
    if (x->v > y->v)
        return 1;
    return (x->i > y->i) - (x->i < y->i);
}

int rlab_eval_ranks(const double *x, int64_t n, double *r, rlab_err *err)
{
    if (n < 1)
        return rlab_errf(err, RLAB_EINVAL, "ranks: need at least 1 value");
    ranked *s = rlab_malloc((size_t)n * sizeof *s);
    if (!s)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    for (int64_t i = 0; i < n; i++)
        s[i] = (ranked){x[i], i};
    qsort(s, (size_t)n, sizeof *s, cmp_ranked);
    for (int64_t b = 0, e; b < n; b = e) {
        /* a run of equal values [b, e) gets the mean of ranks b+1 .. e */
        for (e = b + 1; e < n && !(s[e].v > s[b].v); e++)
            ;
        double avg = 0.5 * (double)(b + 1 + e);
        for (int64_t k = b; k < e; k++)
            r[s[k].i] = avg;
    }
    rlab_free(s);
    return RLAB_OK;
}

int rlab_eval_spearman(const double *x, const double *y, int64_t n, double *rho, rlab_err *err)
{
    if (n < 2)
        return rlab_errf(err, RLAB_EINVAL, "spearman: need at least 2 pairs, got %lld",
                         (long long)n);
    double *rx = rlab_malloc((size_t)n * sizeof *rx), *ry = rlab_malloc((size_t)n * sizeof *ry);
    if (!rx || !ry) {
        rlab_free(rx);
        rlab_free(ry);
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    }
    int rc = rlab_eval_ranks(x, n, rx, err);
    if (rc == RLAB_OK)
        rc = rlab_eval_ranks(y, n, ry, err);
    if (rc == RLAB_OK) {
        /* both rank vectors have mean (n + 1) / 2 */
        double m = 0.5 * (double)(n + 1), sxy = 0.0, sxx = 0.0, syy = 0.0;
        for (int64_t i = 0; i < n; i++) {
            sxy += (rx[i] - m) * (ry[i] - m);
            sxx += (rx[i] - m) * (rx[i] - m);
            syy += (ry[i] - m) * (ry[i] - m);
        }
        *rho = sxx > 0.0 && syy > 0.0 ? sxy / sqrt(sxx * syy) : (double)NAN;
    }
    rlab_free(rx);
    rlab_free(ry);
    return rc;
}
