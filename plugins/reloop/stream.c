/*
 * plugins/reloop/stream.c: a dataset replayed in time order and cut into periods.
 *
 * Rows are sorted by (ts, user, item, file order), so the replay is the same whatever order the
 * file had. Labels, in this order of preference:
 *   neg > 0            every interaction is a click (label 1) followed by `neg` negatives at the
 *                      same time: items drawn uniformly (seeded) other than the row's item;
 *   a label column     (rlab_inter labels[0], e.g. "click" of a CTR table): label = value > 0.5;
 *   ratings            label = rating >= threshold (MovieLens: 4, as in the paper's notes).
 * Periods: equal numbers of rows (cut=count) or equal time spans (cut=time); with a count cut
 * rows of one timestamp may straddle two periods (a cut falls between rows, not between
 * times).
 */
#include "reloop.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct row {
    int64_t ts;
    int32_t user, item;
    int64_t pos;
} row;

static int row_cmp(const void *a, const void *b)
{
    const row *x = a, *y = b;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    if (x->user != y->user)
        return x->user < y->user ? -1 : 1;
    if (x->item != y->item)
        return x->item < y->item ? -1 : 1;
    return (x->pos > y->pos) - (x->pos < y->pos);
}

void reloop_stream_clear(reloop_stream *s)
{
    rlab_free(s->user);
    rlab_free(s->item);
    rlab_free(s->ts);
    rlab_free(s->label);
    rlab_free(s->start);
    rlab_free(s->t_first);
    rlab_free(s->hist_len);
    rlab_free(s->uhist_off);
    rlab_free(s->uhist);
    rlab_free(s->row);
    memset(s, 0, sizeof *s);
}

int reloop_stream_period_of(const reloop_stream *s, int64_t ts)
{
    if (s->periods < 1 || ts < s->t_first[0])
        return -1;
    int p = 0;
    while (p + 1 < s->periods && s->t_first[p + 1] <= ts)
        p++;
    return p;
}

static int cut_and_check(reloop_stream *s, const reloop_stream_opts *o, int64_t n0, int64_t per,
                         int64_t tmin, int64_t tmax, rlab_err *err);

int reloop_stream_build(const rlab_dataset *ds, const reloop_stream_opts *o, reloop_stream *s,
                        rlab_err *err)
{
    memset(s, 0, sizeof *s);
    const rlab_inter *in = &ds->inter;
    const int64_t n0 = (int64_t)in->n;
    if (n0 < 1)
        return rlab_errf(err, RLAB_EINVAL, "dataset '%s' has no interactions", ds->name);
    if (o->periods < 2)
        return rlab_errf(err, RLAB_EINVAL, "periods must be >= 2 (got %d)", o->periods);
    if (o->neg < 0 || o->neg > 100)
        return rlab_errf(err, RLAB_EINVAL, "neg must be in [0, 100] (got %d)", o->neg);
    if (o->neg > 0 && ds->items.n < 2)
        return rlab_errf(err, RLAB_EINVAL, "negative sampling needs at least 2 items");
    const int use_label = o->neg == 0 && in->nlabels > 0;
    const int use_rating = o->neg == 0 && !use_label;
    if (use_rating && !(in->flags & RLAB_INTER_HAS_RATING))
        return rlab_errf(err, RLAB_EINVAL,
                         "dataset '%s' has neither ratings nor a label column: give neg=N to "
                         "treat interactions as clicks with N sampled negatives",
                         ds->name);
    row *rows = rlab_malloc((size_t)n0 * sizeof *rows);
    if (!rows)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    for (int64_t i = 0; i < n0; i++)
        rows[i] = (row){in->ts[i], in->user[i], in->item[i], i};
    qsort(rows, (size_t)n0, sizeof *rows, row_cmp);
    const int64_t per = 1 + o->neg, n = n0 * per;
    s->user = rlab_malloc((size_t)n * sizeof(int32_t));
    s->item = rlab_malloc((size_t)n * sizeof(int32_t));
    s->ts = rlab_malloc((size_t)n * sizeof(int64_t));
    s->label = rlab_malloc((size_t)n);
    s->start = rlab_calloc((size_t)o->periods + 1, sizeof(int64_t));
    s->t_first = rlab_calloc((size_t)o->periods, sizeof(int64_t));
    s->hist_len = rlab_malloc((size_t)n * sizeof(int64_t));
    s->uhist_off = rlab_calloc((size_t)ds->users.n + 1, sizeof(int64_t));
    s->uhist = rlab_malloc((size_t)n0 * sizeof(int32_t));
    if (!s->user || !s->item || !s->ts || !s->label || !s->start || !s->t_first || !s->hist_len ||
        !s->uhist_off || !s->uhist) {
        rlab_free(rows);
        reloop_stream_clear(s);
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    }
    /* every user's items in time order (CSR), and the history length before each row */
    for (int64_t i = 0; i < n0; i++)
        if (rows[i].user >= 0 && rows[i].user < ds->users.n)
            s->uhist_off[rows[i].user + 1]++;
    for (int32_t u = 0; u < ds->users.n; u++)
        s->uhist_off[u + 1] += s->uhist_off[u];
    int64_t *fill = rlab_calloc((size_t)ds->users.n + 1, sizeof(int64_t));
    if (!fill) {
        rlab_free(rows);
        reloop_stream_clear(s);
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    }
    rlab_rng rng;
    rlab_rng_seed(&rng, o->seed);
    const int32_t NI = ds->items.n;
    for (int64_t i = 0; i < n0; i++) {
        const row *r = &rows[i];
        int64_t j = i * per;
        s->user[j] = r->user;
        s->item[j] = r->item;
        s->ts[j] = r->ts;
        int64_t hl = 0;
        if (r->user >= 0 && r->user < ds->users.n) {
            hl = fill[r->user]++;
            s->uhist[s->uhist_off[r->user] + hl] = r->item;
        }
        for (int k = 0; k <= o->neg; k++)
            s->hist_len[j + k] = hl;
        if (use_label)
            s->label[j] = in->labels[0][r->pos] > 0.5f;
        else if (use_rating)
            s->label[j] = in->rating[r->pos] >= o->threshold;
        else
            s->label[j] = 1;
        for (int k = 1; k <= o->neg; k++) {
            int32_t it = (int32_t)rlab_rng_below(&rng, (uint64_t)(NI - 1));
            if (it >= r->item)
                it++; /* uniform over the other items */
            s->user[j + k] = r->user;
            s->item[j + k] = it;
            s->ts[j + k] = r->ts;
            s->label[j + k] = 0;
        }
    }
    const int64_t tmin = rows[0].ts, tmax = rows[n0 - 1].ts;
    rlab_free(rows);
    rlab_free(fill);
    s->n = n;
    s->periods = o->periods;
    s->per = (int)per;
    s->n_users = ds->users.n;
    s->n_items = NI;
    if (use_label)
        snprintf(s->labels_from, sizeof s->labels_from, "label:%.24s", in->label_names[0]);
    else if (use_rating)
        snprintf(s->labels_from, sizeof s->labels_from, "rating>=%g", (double)o->threshold);
    else
        snprintf(s->labels_from, sizeof s->labels_from, "click+%dneg", o->neg);
    return cut_and_check(s, o, n0, per, tmin, tmax, err);
}

/* Period boundaries (between groups of `per` rows: an interaction and its negatives), then the
 * checks: no empty period, two classes in period 0. Clears s on failure. */
static int cut_and_check(reloop_stream *s, const reloop_stream_opts *o, int64_t n0, int64_t per,
                         int64_t tmin, int64_t tmax, rlab_err *err)
{
    /* cuts: between interactions (a row and its negatives stay together) */
    for (int p = 0; p <= o->periods; p++) {
        int64_t c;
        if (o->cut == RELOOP_CUT_TIME) {
            if (p == o->periods) {
                c = n0;
            } else {
                /* first row with ts >= tmin + p * span / P */
                double tc = (double)tmin + (double)(tmax - tmin + 1) * p / o->periods;
                int64_t lo = 0, hi = n0;
                while (lo < hi) {
                    int64_t mid = lo + (hi - lo) / 2;
                    if ((double)s->ts[mid * per] < tc)
                        lo = mid + 1;
                    else
                        hi = mid;
                }
                c = lo;
            }
        } else {
            c = n0 * p / o->periods;
        }
        s->start[p] = c * per;
    }
    for (int p = 0; p < o->periods; p++) {
        if (s->start[p + 1] <= s->start[p]) {
            int rc = rlab_errf(
                err, RLAB_EINVAL, "period %d of %d has no interactions (%lld rows, cut=%s)", p,
                o->periods, (long long)n0, o->cut == RELOOP_CUT_TIME ? "time" : "count");
            reloop_stream_clear(s);
            return rc;
        }
        s->t_first[p] = s->ts[s->start[p]];
    }
    int64_t pos = 0;
    for (int64_t i = s->start[0]; i < s->start[1]; i++)
        pos += s->label[i];
    if (pos == 0 || pos == s->start[1] - s->start[0]) {
        reloop_stream_clear(s);
        return rlab_errf(err, RLAB_EINVAL, "period 0 has labels of one class only (%s)",
                         o->neg ? "clicks" : "labels");
    }
    return RLAB_OK;
}

int reloop_stream_build_tab(const rlab_tabular *t, int label, const reloop_stream_opts *o,
                            reloop_stream *s, rlab_err *err)
{
    memset(s, 0, sizeof *s);
    if (t->n < 1)
        return rlab_errf(err, RLAB_EINVAL, "samples '%s' are empty", t->name);
    if (label < 0 || label >= t->nlabels)
        return rlab_errf(err, RLAB_EINVAL, "samples '%s' have no label %d", t->name, label);
    if (o->periods < 2)
        return rlab_errf(err, RLAB_EINVAL, "periods must be >= 2 (got %d)", o->periods);
    if (o->cut == RELOOP_CUT_TIME && !t->time)
        return rlab_errf(err, RLAB_EINVAL, "samples '%s' have no time column: use cut=count",
                         t->name);
    const int64_t n = t->n;
    row *rows = rlab_malloc((size_t)n * sizeof *rows);
    s->row = rlab_malloc((size_t)n * sizeof(int64_t));
    s->ts = rlab_malloc((size_t)n * sizeof(int64_t));
    s->label = rlab_malloc((size_t)n);
    s->start = rlab_calloc((size_t)o->periods + 1, sizeof(int64_t));
    s->t_first = rlab_calloc((size_t)o->periods, sizeof(int64_t));
    if (!rows || !s->row || !s->ts || !s->label || !s->start || !s->t_first) {
        rlab_free(rows);
        reloop_stream_clear(s);
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    }
    for (int64_t i = 0; i < n; i++) /* time, then file order (user/item unused: 0) */
        rows[i] = (row){t->time ? t->time[i] : i, 0, 0, i};
    qsort(rows, (size_t)n, sizeof *rows, row_cmp);
    for (int64_t i = 0; i < n; i++) {
        s->row[i] = rows[i].pos;
        s->ts[i] = rows[i].ts;
        s->label[i] = t->labels[(size_t)rows[i].pos * (size_t)t->nlabels + (size_t)label] > 0.5f;
    }
    const int64_t tmin = rows[0].ts, tmax = rows[n - 1].ts;
    rlab_free(rows);
    s->n = n;
    s->periods = o->periods;
    s->per = 1;
    s->tab = t;
    snprintf(s->labels_from, sizeof s->labels_from, "label:%.24s", t->label_names[label]);
    return cut_and_check(s, o, n, 1, tmin, tmax, err);
}
