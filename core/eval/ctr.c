/*
 * core/eval/ctr: AUC (rank-sum with mid-ranks for ties), GAUC, log loss.
 */
#include "eval/ctr.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>

typedef struct imp {
    int32_t g;
    float s;
    uint8_t y;
} imp;

static int cmp_gs(const void *pa, const void *pb)
{
    const imp *a = pa, *b = pb;
    if (a->g != b->g)
        return a->g < b->g ? -1 : 1;
    return (a->s > b->s) - (a->s < b->s);
}

/* AUC of r[0..n) sorted by score ascending. Returns 0 when only one class is present.
 * Tied runs get the mean of their 1-based ranks. */
static int auc_sorted(const imp *r, int64_t n, double *auc)
{
    double rank_sum = 0.0;
    int64_t npos = 0;
    for (int64_t i = 0; i < n;) {
        int64_t j = i, pos_in_run = 0;
        while (j < n && !(r[j].s > r[i].s)) { /* equal scores (sorted ascending) */
            pos_in_run += r[j].y != 0;
            j++;
        }
        double mid = 0.5 * (double)(i + 1 + j); /* mean of ranks i+1 .. j */
        rank_sum += mid * (double)pos_in_run;
        npos += pos_in_run;
        i = j;
    }
    int64_t nneg = n - npos;
    if (npos == 0 || nneg == 0)
        return 0;
    *auc = (rank_sum - 0.5 * (double)npos * (double)(npos + 1)) / ((double)npos * (double)nneg);
    return 1;
}

static imp *load(const float *scores, const uint8_t *labels, const int32_t *group, int64_t n,
                 rlab_err *err)
{
    if (n < 1) {
        rlab_errf(err, RLAB_EINVAL, "auc: no impressions");
        return NULL;
    }
    imp *r = rlab_malloc((size_t)n * sizeof *r);
    if (!r) {
        rlab_errf(err, RLAB_ENOMEM, "auc: out of memory");
        return NULL;
    }
    for (int64_t i = 0; i < n; i++) {
        if (isnan(scores[i])) {
            rlab_free(r);
            rlab_errf(err, RLAB_EINVAL, "auc: score %lld is NaN", (long long)i);
            return NULL;
        }
        r[i].g = group ? group[i] : 0;
        r[i].s = scores[i];
        r[i].y = labels[i] != 0;
    }
    qsort(r, (size_t)n, sizeof *r, cmp_gs);
    return r;
}

int rlab_eval_auc(const float *scores, const uint8_t *labels, int64_t n, double *auc, rlab_err *err)
{
    imp *r = load(scores, labels, NULL, n, err);
    if (!r)
        return err ? err->code : RLAB_EINVAL;
    int ok = auc_sorted(r, n, auc);
    rlab_free(r);
    return ok ? RLAB_OK : rlab_errf(err, RLAB_EINVAL, "auc: needs both classes");
}

int rlab_eval_gauc(const float *scores, const uint8_t *labels, const int32_t *group, int64_t n,
                   double *gauc, int64_t *n_groups_used, rlab_err *err)
{
    imp *r = load(scores, labels, group, n, err);
    if (!r)
        return err ? err->code : RLAB_EINVAL;
    double num = 0.0, den = 0.0;
    int64_t used = 0;
    for (int64_t i = 0; i < n;) {
        int64_t j = i;
        while (j < n && r[j].g == r[i].g)
            j++;
        double a;
        if (auc_sorted(r + i, j - i, &a)) { /* users with one class are skipped */
            num += (double)(j - i) * a;
            den += (double)(j - i);
            used++;
        }
        i = j;
    }
    rlab_free(r);
    if (n_groups_used)
        *n_groups_used = used;
    if (used == 0)
        return rlab_errf(err, RLAB_EINVAL, "gauc: no user has both classes");
    *gauc = num / den;
    return RLAB_OK;
}

int rlab_eval_logloss(const float *p, const uint8_t *labels, int64_t n, double eps, double *loss,
                      rlab_err *err)
{
    if (n < 1)
        return rlab_errf(err, RLAB_EINVAL, "logloss: no impressions");
    if (eps <= 0.0)
        eps = 1e-7;
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double q = p[i];
        if (isnan(q))
            return rlab_errf(err, RLAB_EINVAL, "logloss: probability %lld is NaN", (long long)i);
        q = q < eps ? eps : q > 1.0 - eps ? 1.0 - eps : q;
        s -= labels[i] ? log(q) : log(1.0 - q);
    }
    *loss = s / (double)n;
    return RLAB_OK;
}

static double mean_defined(const double *v, int n)
{
    double s = 0.0;
    int k = 0;
    for (int i = 0; i < n; i++)
        if (!isnan(v[i]))
            s += v[i], k++;
    return k ? s / k : (double)NAN;
}

int rlab_eval_ctr_tasks(const float *probs, const float *labels, int nlabels,
                        const char (*label_names)[32], const int32_t *group, const int64_t *rows,
                        int64_t n, rlab_ctr_result *out, rlab_err *err)
{
    memset(out, 0, sizeof *out);
    out->mean_auc = out->mean_gauc = out->mean_logloss = NAN;
    if (nlabels < 1 || nlabels > RLAB_CTR_MAX_TASKS || n < 0)
        return rlab_errf(err, RLAB_EINVAL, "ctr metrics: %d labels (1..%d), %lld samples", nlabels,
                         RLAB_CTR_MAX_TASKS, (long long)n);
    out->n = n;
    float *p = rlab_malloc((size_t)(n ? n : 1) * sizeof *p);
    uint8_t *y = rlab_malloc((size_t)(n ? n : 1));
    int32_t *g = group ? rlab_malloc((size_t)(n ? n : 1) * sizeof *g) : NULL;
    if (!p || !y || (group && !g)) {
        rlab_free(p), rlab_free(y), rlab_free(g);
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    }
    for (int j = 0; j < nlabels; j++) {
        int predicted = 0;
        for (int64_t i = 0; i < n && !predicted; i++)
            predicted = !isnan(probs[i * nlabels + j]);
        if (!predicted && n > 0)
            continue;
        int t = out->ntasks++;
        out->label[t] = j;
        if (label_names)
            snprintf(out->names[t], sizeof out->names[t], "%s", label_names[j]);
        else
            snprintf(out->names[t], sizeof out->names[t], "label%d", j);
        out->auc[t] = out->gauc[t] = out->logloss[t] = NAN;
        for (int64_t i = 0; i < n; i++) {
            int64_t r = rows ? rows[i] : i;
            p[i] = probs[i * nlabels + j];
            y[i] = labels[r * nlabels + j] > 0.5f;
            if (g)
                g[i] = group[r];
        }
        /* an undefined metric (one class, a NaN probability) stays NAN */
        rlab_err e2 = {0};
        double v;
        if (n > 0 && rlab_eval_auc(p, y, n, &v, &e2) == RLAB_OK)
            out->auc[t] = v;
        if (n > 0 && g && rlab_eval_gauc(p, y, g, n, &v, NULL, &e2) == RLAB_OK)
            out->gauc[t] = v;
        if (n > 0 && rlab_eval_logloss(p, y, n, 0.0, &v, &e2) == RLAB_OK)
            out->logloss[t] = v;
    }
    out->mean_auc = mean_defined(out->auc, out->ntasks);
    out->mean_gauc = mean_defined(out->gauc, out->ntasks);
    out->mean_logloss = mean_defined(out->logloss, out->ntasks);
    rlab_free(p), rlab_free(y), rlab_free(g);
    return RLAB_OK;
}
