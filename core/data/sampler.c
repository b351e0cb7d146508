/*
 * core/data/sampler: uniform and alias-table negative samplers with history exclusion.
 * See sampler.h. The exclusion set is a CSR of sorted, de-duplicated item lists, so a
 * membership test is a binary search and the exact fallback is a merge walk over items.
 */
#include "data/sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct rlab_sampler {
    int32_t n_items;
    int weighted;
    double *w;      /* [n_items] normalised weights (weighted only) */
    double *accept; /* [n_items] alias-table acceptance probability (weighted only) */
    int32_t *alias; /* [n_items] alias-table alternative (weighted only) */
    /* exclusion set: per user, sorted unique items ex_items[ex_off[u] .. ex_off[u+1]) */
    int32_t n_ex_users;
    int64_t *ex_off;
    int32_t *ex_items;
};

static rlab_sampler *sampler_alloc(int32_t n_items, rlab_err *err)
{
    if (n_items < 1) {
        rlab_errf(err, RLAB_EINVAL, "sampler: n_items must be >= 1 (got %d)", (int)n_items);
        return NULL;
    }
    rlab_sampler *s = rlab_calloc(1, sizeof *s);
    if (!s) {
        rlab_errf(err, RLAB_ENOMEM, "sampler: out of memory");
        return NULL;
    }
    s->n_items = n_items;
    return s;
}

rlab_sampler *rlab_sampler_new_uniform(int32_t n_items, rlab_err *err)
{
    return sampler_alloc(n_items, err);
}

/* Vose's alias method: split the scaled weights n*w_i into "small" (< 1) and "large" (>= 1)
 * lists and pair each small cell with a large donor. Deterministic given the weights. */
static int build_alias(rlab_sampler *s)
{
    int32_t n = s->n_items;
    double *scaled = rlab_malloc((size_t)n * sizeof *scaled);
    int32_t *small = rlab_malloc((size_t)n * sizeof *small);
    int32_t *large = rlab_malloc((size_t)n * sizeof *large);
    if (!scaled || !small || !large) {
        rlab_free(scaled);
        rlab_free(small);
        rlab_free(large);
        return RLAB_ENOMEM;
    }
    int32_t ns = 0, nl = 0, best = 0;
    for (int32_t i = 0; i < n; i++) {
        scaled[i] = s->w[i] * (double)n;
        if (s->w[i] > s->w[best])
            best = i;
        if (scaled[i] < 1.0)
            small[ns++] = i;
        else
            large[nl++] = i;
    }
    while (ns > 0 && nl > 0) {
        int32_t a = small[--ns], g = large[nl - 1];
        s->accept[a] = scaled[a];
        s->alias[a] = g;
        scaled[g] -= 1.0 - scaled[a];
        if (scaled[g] < 1.0) {
            nl--;
            small[ns++] = g;
        }
    }
    /* Leftovers are 1 up to rounding. A zero-weight item must never be accepted, so it
     * keeps probability 0 and points at the heaviest item. */
    while (nl > 0) {
        int32_t g = large[--nl];
        s->accept[g] = 1.0;
        s->alias[g] = g;
    }
    while (ns > 0) {
        int32_t a = small[--ns];
        s->accept[a] = s->w[a] > 0.0 ? 1.0 : 0.0;
        s->alias[a] = s->w[a] > 0.0 ? a : best;
    }
    rlab_free(scaled);
    rlab_free(small);
    rlab_free(large);
    return RLAB_OK;
}

rlab_sampler *rlab_sampler_new_weighted(const double *weights, int32_t n_items, rlab_err *err)
{
    rlab_sampler *s = sampler_alloc(n_items, err);
    if (!s)
        return NULL;
    double sum = 0.0;
    for (int32_t i = 0; i < n_items; i++) {
        if (!(weights[i] >= 0.0) || !isfinite(weights[i])) {
            rlab_errf(err, RLAB_EINVAL, "sampler: weight %d is %g (need finite >= 0)", (int)i,
                      weights[i]);
            rlab_free(s);
            return NULL;
        }
        sum += weights[i];
    }
    if (!(sum > 0.0)) {
        rlab_errf(err, RLAB_EINVAL, "sampler: weights sum to zero");
        rlab_free(s);
        return NULL;
    }
    s->weighted = 1;
    s->w = rlab_malloc((size_t)n_items * sizeof *s->w);
    s->accept = rlab_malloc((size_t)n_items * sizeof *s->accept);
    s->alias = rlab_malloc((size_t)n_items * sizeof *s->alias);
    if (!s->w || !s->accept || !s->alias) {
        rlab_sampler_free(s);
        rlab_errf(err, RLAB_ENOMEM, "sampler: out of memory");
        return NULL;
    }
    for (int32_t i = 0; i < n_items; i++)
        s->w[i] = weights[i] / sum;
    if (build_alias(s) != RLAB_OK) {
        rlab_sampler_free(s);
        rlab_errf(err, RLAB_ENOMEM, "sampler: out of memory");
        return NULL;
    }
    return s;
}

rlab_sampler *rlab_sampler_new_pop(const rlab_seqs *seqs, int32_t n_items, double alpha,
                                   rlab_err *err)
{
    if (n_items < 1) {
        rlab_errf(err, RLAB_EINVAL, "sampler: n_items must be >= 1 (got %d)", (int)n_items);
        return NULL;
    }
    double *cnt = rlab_calloc((size_t)n_items, sizeof *cnt);
    if (!cnt) {
        rlab_errf(err, RLAB_ENOMEM, "sampler: out of memory");
        return NULL;
    }
    int64_t nnz = seqs->off[seqs->n_users];
    for (int64_t k = 0; k < nnz; k++) {
        int32_t it = seqs->items[k];
        if (it < 0 || it >= n_items) {
            rlab_errf(err, RLAB_EINVAL, "sampler: item %d out of range [0, %d)", (int)it,
                      (int)n_items);
            rlab_free(cnt);
            return NULL;
        }
        cnt[it] += 1.0;
    }
    for (int32_t i = 0; i < n_items; i++)
        cnt[i] = cnt[i] > 0.0 ? pow(cnt[i], alpha) : 0.0;
    rlab_sampler *s = rlab_sampler_new_weighted(cnt, n_items, err);
    rlab_free(cnt);
    return s;
}

void rlab_sampler_free(rlab_sampler *s)
{
    if (!s)
        return;
    rlab_free(s->w);
    rlab_free(s->accept);
    rlab_free(s->alias);
    rlab_free(s->ex_off);
    rlab_free(s->ex_items);
    rlab_free(s);
}

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

int rlab_sampler_set_exclude(rlab_sampler *s, const rlab_seqs *hist, rlab_err *err)
{
    int32_t nu = hist->n_users;
    int64_t nnz = hist->off[nu];
    int64_t *off = rlab_malloc(((size_t)nu + 1) * sizeof *off);
    int32_t *items = rlab_malloc((size_t)(nnz > 0 ? nnz : 1) * sizeof *items);
    if (!off || !items) {
        rlab_free(off);
        rlab_free(items);
        return rlab_errf(err, RLAB_ENOMEM, "sampler: out of memory");
    }
    for (int64_t k = 0; k < nnz; k++) {
        if (hist->items[k] < 0 || hist->items[k] >= s->n_items) {
            rlab_free(off);
            rlab_free(items);
            return rlab_errf(err, RLAB_EINVAL, "sampler: history item %d out of range [0, %d)",
                             (int)hist->items[k], (int)s->n_items);
        }
    }
    /* Copy each row, sort it and compact the unique values to the front of the output. */
    int64_t w = 0;
    off[0] = 0;
    for (int32_t u = 0; u < nu; u++) {
        int64_t a = hist->off[u], b = hist->off[u + 1];
        int32_t *row = items + w;
        memcpy(row, hist->items + a, (size_t)(b - a) * sizeof *row);
        qsort(row, (size_t)(b - a), sizeof *row, cmp_i32);
        int64_t m = 0;
        for (int64_t k = 0; k < b - a; k++)
            if (m == 0 || row[k] != row[m - 1])
                row[m++] = row[k];
        w += m;
        off[u + 1] = w;
    }
    rlab_free(s->ex_off);
    rlab_free(s->ex_items);
    s->ex_off = off;
    s->ex_items = items;
    s->n_ex_users = nu;
    return RLAB_OK;
}

static int in_sorted(const int32_t *a, int64_t n, int32_t x)
{
    int64_t lo = 0, hi = n;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (a[mid] < x)
            lo = mid + 1;
        else if (a[mid] > x)
            hi = mid;
        else
            return 1;
    }
    return 0;
}

static int32_t draw_plain(const rlab_sampler *s, rlab_rng *rng)
{
    int32_t i = (int32_t)rlab_rng_below(rng, (uint64_t)s->n_items);
    if (!s->weighted)
        return i;
    return rlab_rng_double(rng) < s->accept[i] ? i : s->alias[i];
}

int rlab_sampler_is_seen(const rlab_sampler *s, int32_t user, int32_t item)
{
    if (user < 0 || user >= s->n_ex_users)
        return 0;
    return in_sorted(s->ex_items + s->ex_off[user], s->ex_off[user + 1] - s->ex_off[user], item);
}

/* Exact fallback: the k-th unseen item (0-based) in item order, by a merge walk. */
static int32_t kth_unseen(int32_t n, const int32_t *seen, int64_t m, int64_t k)
{
    int64_t j = 0;
    for (int32_t i = 0; i < n; i++) {
        if (j < m && seen[j] == i) {
            j++;
            continue;
        }
        if (k-- == 0)
            return i;
    }
    return -1; /* unreachable when k < n - m */
}

static int32_t draw_fallback(const rlab_sampler *s, rlab_rng *rng, const int32_t *seen, int64_t m)
{
    int32_t n = s->n_items;
    if (s->weighted) {
        /* Restrict the weights to the unseen items and invert their cumulative sum. */
        double total = 0.0;
        int64_t j = 0;
        for (int32_t i = 0; i < n; i++) {
            if (j < m && seen[j] == i) {
                j++;
                continue;
            }
            total += s->w[i];
        }
        if (total > 0.0) {
            double u = rlab_rng_double(rng) * total, acc = 0.0;
            int32_t last = -1;
            j = 0;
            for (int32_t i = 0; i < n; i++) {
                if (j < m && seen[j] == i) {
                    j++;
                    continue;
                }
                if (s->w[i] > 0.0) {
                    last = i;
                    acc += s->w[i];
                    if (u < acc)
                        return i;
                }
            }
            return last; /* rounding at the top end */
        }
        /* every unseen item has weight 0: uniform over them (documented) */
    }
    return kth_unseen(n, seen, m, (int64_t)rlab_rng_below(rng, (uint64_t)(n - m)));
}

int rlab_sampler_draw(const rlab_sampler *s, rlab_rng *rng, int32_t user, int32_t *out,
                      rlab_err *err)
{
    if (user < 0 || user >= s->n_ex_users || s->ex_off[user + 1] == s->ex_off[user]) {
        *out = draw_plain(s, rng);
        return RLAB_OK;
    }
    const int32_t *seen = s->ex_items + s->ex_off[user];
    int64_t m = s->ex_off[user + 1] - s->ex_off[user];
    if (m >= s->n_items)
        return rlab_errf(err, RLAB_ESTATE, "sampler: user %d has seen all %d items", (int)user,
                         (int)s->n_items);
    for (int r = 0; r < RLAB_SAMPLER_RETRIES; r++) {
        int32_t x = draw_plain(s, rng);
        if (!in_sorted(seen, m, x)) {
            *out = x;
            return RLAB_OK;
        }
    }
    *out = draw_fallback(s, rng, seen, m);
    return RLAB_OK;
}

int rlab_sampler_draw_n(const rlab_sampler *s, rlab_rng *rng, int32_t user, int32_t *out, int32_t n,
                        rlab_err *err)
{
    for (int32_t k = 0; k < n; k++) {
        int rc = rlab_sampler_draw(s, rng, user, &out[k], err);
        if (rc != RLAB_OK)
            return rc;
    }
    return RLAB_OK;
}

int32_t rlab_sampler_n_items(const rlab_sampler *s) { return s->n_items; }

double rlab_sampler_prob(const rlab_sampler *s, int32_t item)
{
    if (item < 0 || item >= s->n_items)
        return 0.0;
    return s->weighted ? s->w[item] : 1.0 / (double)s->n_items;
}
