/*
 * core/eval/lists: catalogue coverage, novelty, intra-list diversity, genre entropy.
 */
#include "eval/lists.h"

#include <math.h>

static int check(const int32_t *lists, int64_t n_lists, int w, int32_t n_items, const char *what,
                 rlab_err *err)
{
    if (n_lists < 1 || w < 1 || n_items < 1)
        return rlab_errf(err, RLAB_EINVAL, "%s: no lists or no items", what);
    for (int64_t i = 0; i < n_lists * w; i++)
        if (lists[i] >= n_items)
            return rlab_errf(err, RLAB_EINVAL, "%s: item %d outside [0, %d)", what, lists[i],
                             n_items);
    return RLAB_OK;
}

int rlab_eval_coverage(const int32_t *lists, int64_t n_lists, int w, int32_t n_items,
                       double *coverage, rlab_err *err)
{
    int rc = check(lists, n_lists, w, n_items, "coverage", err);
    if (rc)
        return rc;
    uint8_t *seen = rlab_calloc((size_t)n_items, 1);
    if (!seen)
        return rlab_errf(err, RLAB_ENOMEM, "coverage: out of memory");
    int64_t distinct = 0;
    for (int64_t i = 0; i < n_lists * w; i++) {
        if (lists[i] < 0 || seen[lists[i]])
            continue;
        seen[lists[i]] = 1;
        distinct++;
    }
    rlab_free(seen);
    *coverage = (double)distinct / (double)n_items;
    return RLAB_OK;
}

int rlab_eval_novelty(const int32_t *lists, int64_t n_lists, int w, int32_t n_items,
                      const double *pop, double *novelty, rlab_err *err)
{
    int rc = check(lists, n_lists, w, n_items, "novelty", err);
    if (rc)
        return rc;
    double s = 0.0;
    int64_t cnt = 0;
    for (int64_t i = 0; i < n_lists * w; i++) {
        if (lists[i] < 0)
            continue;
        double p = pop[lists[i]];
        if (!(p > 0.0 && p <= 1.0))
            return rlab_errf(err, RLAB_EINVAL, "novelty: popularity of item %d is %g, not in (0,1]",
                             lists[i], p);
        s -= log2(p);
        cnt++;
    }
    *novelty = cnt ? s / (double)cnt : 0.0;
    return RLAB_OK;
}

int rlab_eval_ild(const int32_t *lists, int64_t n_lists, int w, int32_t n_items, const float *vecs,
                  int dim, double *ild, rlab_err *err)
{
    int rc = check(lists, n_lists, w, n_items, "ild", err);
    if (rc)
        return rc;
    if (dim < 1)
        return rlab_errf(err, RLAB_EINVAL, "ild: dim must be >= 1");
    double total = 0.0;
    int64_t used = 0;
    for (int64_t l = 0; l < n_lists; l++) {
        const int32_t *row = lists + l * w;
        double cs = 0.0;
        int64_t pairs = 0;
        for (int a = 0; a < w; a++) {
            if (row[a] < 0)
                continue;
            const float *x = vecs + (int64_t)row[a] * dim;
            for (int b = a + 1; b < w; b++) {
                if (row[b] < 0)
                    continue;
                const float *y = vecs + (int64_t)row[b] * dim;
                double xy = 0.0, xx = 0.0, yy = 0.0;
                for (int d = 0; d < dim; d++) {
                    xy += (double)x[d] * (double)y[d];
                    xx += (double)x[d] * (double)x[d];
                    yy += (double)y[d] * (double)y[d];
                }
                cs += (xx > 0.0 && yy > 0.0) ? xy / sqrt(xx * yy) : 0.0;
                pairs++;
            }
        }
        if (pairs > 0) {
            total += 1.0 - cs / (double)pairs;
            used++;
        }
    }
    *ild = used ? total / (double)used : 0.0;
    return RLAB_OK;
}

int rlab_eval_genre_entropy(const int32_t *lists, int64_t n_lists, int w, int32_t n_items,
                            const int64_t *g_off, const int32_t *g_items, int32_t n_genres,
                            double *entropy, rlab_err *err)
{
    int rc = check(lists, n_lists, w, n_items, "genre_entropy", err);
    if (rc)
        return rc;
    if (n_genres < 1)
        return rlab_errf(err, RLAB_EINVAL, "genre_entropy: no genres");
    double *cnt = rlab_calloc((size_t)n_genres, sizeof *cnt);
    if (!cnt)
        return rlab_errf(err, RLAB_ENOMEM, "genre_entropy: out of memory");
    double total = 0.0;
    for (int64_t i = 0; i < n_lists * w; i++) {
        if (lists[i] < 0)
            continue;
        for (int64_t j = g_off[lists[i]]; j < g_off[lists[i] + 1]; j++) {
            int32_t g = g_items[j];
            if (g < 0 || g >= n_genres) {
                rlab_free(cnt);
                return rlab_errf(err, RLAB_EINVAL, "genre_entropy: genre %d outside [0, %d)", g,
                                 n_genres);
            }
            cnt[g] += 1.0;
            total += 1.0;
        }
    }
    double h = 0.0;
    for (int32_t g = 0; g < n_genres && total > 0.0; g++)
        if (cnt[g] > 0.0)
            h -= cnt[g] / total * log2(cnt[g] / total);
    rlab_free(cnt);
    *entropy = h;
    return RLAB_OK;
}
