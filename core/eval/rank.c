/*
 * core/eval/rank: ranking metrics at k, target ranks with a tie rule, top-k selection,
 * negative sampling and ranker fidelity. See rank.h for the definitions.
 */
#include "eval/rank.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *rlab_eval_tie_name(int tie)
{
    switch (tie) {
    case RLAB_TIE_AVERAGE:
        return "average";
    case RLAB_TIE_OPTIMISTIC:
        return "optimistic";
    case RLAB_TIE_PESSIMISTIC:
        return "pessimistic";
    default:
        return "?";
    }
}

/* Discount of 0-based position p. */
static double disc(double p) { return 1.0 / log2(p + 2.0); }

/* Ideal DCG with min(n_rel, k) relevant items on top. */
static double idcg(int64_t n_rel, int k)
{
    double s = 0.0;
    int64_t m = n_rel < k ? n_rel : k;
    for (int64_t i = 0; i < m; i++)
        s += disc((double)i);
    return s;
}

static int contains(const int32_t *a, int64_t n, int32_t x)
{
    for (int64_t i = 0; i < n; i++)
        if (a[i] == x)
            return 1;
    return 0;
}

void rlab_eval_list_metrics(const int32_t *list, int64_t n_list, const int32_t *rel, int64_t n_rel,
                            int k, rlab_eval_atk *out)
{
    memset(out, 0, sizeof *out);
    if (n_rel <= 0 || k < 1)
        return;
    int64_t m = n_list < k ? n_list : k;
    double dcg = 0.0, ap = 0.0;
    int64_t hits = 0;
    for (int64_t p = 0; p < m; p++) {
        if (list[p] < 0 || !contains(rel, n_rel, list[p]))
            continue;
        hits++;
        dcg += disc((double)p);
        ap += (double)hits / (double)(p + 1);
        if (hits == 1)
            out->mrr = 1.0 / (double)(p + 1);
    }
    out->hr = hits > 0 ? 1.0 : 0.0;
    out->recall = (double)hits / (double)n_rel;
    out->precision = (double)hits / (double)k;
    out->ndcg = dcg / idcg(n_rel, k);
    out->map = ap / (double)(n_rel < k ? n_rel : k);
}

double rlab_eval_hr_at_rank(double rank, int k) { return rank < (double)k ? 1.0 : 0.0; }

double rlab_eval_ndcg_at_rank(double rank, int k) { return rank < (double)k ? disc(rank) : 0.0; }

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

int rlab_eval_rank(const float *scores, int32_t n, int32_t target, const int32_t *mask,
                   int64_t n_mask, int tie, double *rank, rlab_err *err)
{
    if (n < 1 || target < 0 || target >= n)
        return rlab_errf(err, RLAB_EINVAL, "rank: target %d outside [0, %d)", target, n);
    if (tie < RLAB_TIE_AVERAGE || tie > RLAB_TIE_PESSIMISTIC)
        return rlab_errf(err, RLAB_EINVAL, "rank: unknown tie rule %d", tie);
    float s = scores[target];
    if (isnan(s))
        return rlab_errf(err, RLAB_EINVAL, "rank: score of target %d is NaN", target);
    int64_t gt = 0, ge = 0;
    for (int32_t i = 0; i < n; i++) {
        gt += scores[i] > s;
        ge += scores[i] >= s;
    }
    ge -= 1; /* the target itself */
    if (n_mask > 0) {
        /* Sorted copy so duplicate history entries are subtracted once. */
        int32_t *m = rlab_malloc((size_t)n_mask * sizeof *m);
        if (!m)
            return rlab_errf(err, RLAB_ENOMEM, "rank: out of memory");
        memcpy(m, mask, (size_t)n_mask * sizeof *m);
        qsort(m, (size_t)n_mask, sizeof *m, cmp_i32);
        for (int64_t j = 0; j < n_mask; j++) {
            if ((j > 0 && m[j] == m[j - 1]) || m[j] == target || m[j] < 0 || m[j] >= n)
                continue;
            gt -= scores[m[j]] > s;
            ge -= scores[m[j]] >= s;
        }
        rlab_free(m);
    }
    int64_t eq = ge - gt;
    *rank = tie == RLAB_TIE_OPTIMISTIC    ? (double)gt
            : tie == RLAB_TIE_PESSIMISTIC ? (double)(gt + eq)
                                          : (double)gt + 0.5 * (double)eq;
    return RLAB_OK;
}

/*
 * Expected metrics over uniformly random tie breaking, group by group. In a group starting
 * at pos with a relevant items among n slots, slot j holds a relevant item with probability
 * a/n; given it does, the expected number of relevant items in earlier slots of the group
 * is (a-1) j/(n-1). DCG, hits and the AP sum are linear in those, so they are exact. HR and
 * MRR depend on the first relevant slot X of the first group: P(X >= x) = C(n-x, a)/C(n, a).
 * The optimistic and pessimistic rules are the special case n = a after moving pos.
 */
void rlab_eval_group_metrics(const rlab_eval_group *g, int ng, int64_t n_rel, int k, int tie,
                             rlab_eval_atk *out)
{
    memset(out, 0, sizeof *out);
    if (n_rel <= 0 || k < 1)
        return;
    double dcg = 0.0, hits = 0.0, ap = 0.0;
    int64_t before = 0; /* relevant items in earlier groups */
    int first = 1;
    for (int i = 0; i < ng; i++) {
        int64_t pos = g[i].pos, a = g[i].a, n = g[i].n;
        if (a <= 0 || n < a)
            continue;
        if (tie == RLAB_TIE_OPTIMISTIC) {
            n = a;
        } else if (tie == RLAB_TIE_PESSIMISTIC) {
            pos += n - a;
            n = a;
        }
        if (pos >= k)
            break; /* groups are ordered: nothing later reaches the top k */
        double pa = (double)a / (double)n;
        int64_t m = n < k - pos ? n : k - pos; /* slots of this group inside the top k */
        for (int64_t j = 0; j < m; j++) {
            double p = (double)(pos + j);
            double prior = n > 1 ? (double)(a - 1) * (double)j / (double)(n - 1) : 0.0;
            dcg += pa * disc(p);
            ap += pa * ((double)before + 1.0 + prior) / (p + 1.0);
        }
        hits += pa * (double)m;
        if (first) {
            first = 0;
            double s = 1.0; /* P(X >= x) */
            for (int64_t x = 0; x < m && s > 0.0; x++) {
                double next = s * (double)(n - x - a) / (double)(n - x);
                if (next < 0.0)
                    next = 0.0;
                out->mrr += (s - next) / (double)(pos + x + 1);
                s = next;
            }
            out->hr = 1.0 - s; /* s = P(no relevant item in the m top-k slots) */
        }
        before += a;
    }
    out->recall = hits / (double)n_rel;
    out->precision = hits / (double)k;
    out->ndcg = dcg / idcg(n_rel, k);
    out->map = ap / (double)(n_rel < k ? n_rel : k);
}

/* Heap of item indices ordered so the root is the WORST kept item: lower score, or equal
 * score and higher index. */
static int worse(const float *s, int32_t a, int32_t b)
{
    return s[a] < s[b] || (!(s[a] > s[b]) && a > b);
}

static void sift_down(const float *s, int32_t *h, int n, int i)
{
    for (;;) {
        int l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && worse(s, h[l], h[w]))
            w = l;
        if (r < n && worse(s, h[r], h[w]))
            w = r;
        if (w == i)
            return;
        int32_t t = h[i];
        h[i] = h[w];
        h[w] = t;
        i = w;
    }
}

int rlab_eval_topk(const float *scores, int32_t n, int k, int32_t *items, float *scores_out)
{
    if (k < 1 || n < 1)
        return 0;
    int m = 0;
    int32_t i = 0;
    /* Fill the heap with the first k non-NaN items. */
    for (; i < n && m < k; i++) {
        if (isnan(scores[i]))
            continue;
        int c = m++;
        items[c] = i;
        while (c > 0) { /* sift up */
            int p = (c - 1) / 2;
            if (!worse(scores, items[c], items[p]))
                break;
            int32_t t = items[c];
            items[c] = items[p];
            items[p] = t;
            c = p;
        }
    }
    if (m == k) {
        /* Later items have higher indices, so they enter only with a strictly greater score
         * than the root: one compare rejects almost every item. NaN compares false. */
        float root = scores[items[0]];
        while (i < n) {
            /* A block at a time: one vectorised test whether any item of the block beats
             * the root (almost never, once the heap holds good items), and the item by item
             * scan only when one does: the same items enter in the same order. */
            int32_t end = n - i > 64 ? i + 64 : n;
            int any = 0;
#pragma omp simd reduction(| : any)
            for (int32_t t = i; t < end; t++)
                any |= scores[t] > root;
            if (!any) {
                i = end;
                continue;
            }
            for (; i < end; i++) {
                if (scores[i] > root) {
                    items[0] = i;
                    sift_down(scores, items, m, 0);
                    root = scores[items[0]];
                }
            }
        }
    }
    /* Heap sort: repeatedly move the worst to the end -> best first. */
    for (int e = m - 1; e > 0; e--) {
        int32_t t = items[0];
        items[0] = items[e];
        items[e] = t;
        sift_down(scores, items, e, 0);
    }
    if (scores_out)
        for (int j = 0; j < m; j++)
            scores_out[j] = scores[items[j]];
    return m;
}

int rlab_eval_sample_negatives(int32_t n_items, const int32_t *hist, int64_t n_hist,
                               const int32_t *tgt, int64_t n_tgt, int n_neg, uint64_t seed,
                               int32_t user, uint8_t *mark, int32_t *out, int *n_out, rlab_err *err)
{
    *n_out = 0;
    if (n_items < 1 || n_neg < 0 || !mark)
        return rlab_errf(err, RLAB_EINVAL, "sample_negatives: bad arguments");
    int64_t n_marked = 0;
    for (int pass = 0; pass < 2; pass++) {
        const int32_t *a = pass ? tgt : hist;
        int64_t na = pass ? n_tgt : n_hist;
        for (int64_t j = 0; j < na; j++) {
            if (a[j] < 0 || a[j] >= n_items)
                continue;
            if (!mark[a[j]])
                n_marked++;
            mark[a[j]] = 1;
        }
    }
    int64_t eligible = n_items - n_marked;
    rlab_rng r;
    /* The user id is mixed in by splitmix inside rlab_rng_seed. */
    rlab_rng_seed(&r, seed ^ (0x9E3779B97F4A7C15ull * (uint64_t)((int64_t)user + 1)));
    int got = 0;
    if (eligible <= n_neg) {
        for (int32_t i = 0; i < n_items; i++)
            if (!mark[i])
                out[got++] = i;
    } else if (eligible * 4 >= n_items) {
        /* Rejection: at most 4 expected draws per accepted item. */
        while (got < n_neg) {
            int32_t i = (int32_t)rlab_rng_below(&r, (uint64_t)n_items);
            if (mark[i])
                continue;
            mark[i] = 2;
            out[got++] = i;
        }
        for (int j = 0; j < got; j++)
            mark[out[j]] = 0;
    } else {
        /* Dense history: reservoir sampling over the eligible items in one pass. */
        int64_t seen = 0;
        for (int32_t i = 0; i < n_items; i++) {
            if (mark[i])
                continue;
            if (got < n_neg) {
                out[got++] = i;
            } else {
                uint64_t j = rlab_rng_below(&r, (uint64_t)(seen + 1));
                if (j < (uint64_t)n_neg)
                    out[j] = i;
            }
            seen++;
        }
    }
    for (int pass = 0; pass < 2; pass++) {
        const int32_t *a = pass ? tgt : hist;
        int64_t na = pass ? n_tgt : n_hist;
        for (int64_t j = 0; j < na; j++)
            if (a[j] >= 0 && a[j] < n_items)
                mark[a[j]] = 0;
    }
    *n_out = got;
    return RLAB_OK;
}

int rlab_eval_agreement(const int32_t *a, const int32_t *b, int64_t n_users, int w, int k,
                        double *agreement, double *exact_match, rlab_err *err)
{
    if (k < 1 || k > w || n_users < 1)
        return rlab_errf(err, RLAB_EINVAL, "agreement: need 1 <= k <= width and users > 0");
    double agr = 0.0, ex = 0.0;
    for (int64_t u = 0; u < n_users; u++) {
        const int32_t *ra = a + u * w, *rb = b + u * w;
        int inter = 0, same = 0;
        for (int r = 0; r < k; r++) {
            if (ra[r] < 0)
                continue;
            same += ra[r] == rb[r];
            inter += contains(rb, k, ra[r]);
        }
        agr += (double)inter / (double)k;
        ex += (double)same / (double)k;
    }
    if (agreement)
        *agreement = agr / (double)n_users;
    if (exact_match)
        *exact_match = ex / (double)n_users;
    return RLAB_OK;
}
