/*
 * core/data/view.c: the data view (see view.h). Built from the splitters of split.c; the
 * history rows are the union of the parts a target may see, re-sorted by time per user.
 */
#include "data/view.h"
#include "data/tabular.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const rlab_split_names[] = {"loo", "temporal", "ratio", "none", NULL};

rlab_view_opts rlab_view_defaults(void)
{
    return (rlab_view_opts){.split = RLAB_SPLIT_LOO, .valid_frac = 0.1, .test_frac = 0.1};
}

void rlab_view_free(rlab_view *v)
{
    if (!v)
        return;
    rlab_seqs_clear(&v->train);
    rlab_seqs_clear(&v->hist_valid);
    rlab_seqs_clear(&v->hist_test);
    rlab_seqs_clear(&v->valid);
    rlab_seqs_clear(&v->test);
    rlab_seqs_clear(&v->all);
    for (int k = 0; k < 3; k++)
        rlab_free(v->rows[k]);
    rlab_free(v);
}

int rlab_seqs_copy(const rlab_seqs *src, rlab_seqs *dst, rlab_err *err)
{
    memset(dst, 0, sizeof *dst);
    const int32_t U = src->n_users;
    const int64_t n = U > 0 ? src->off[U] : 0;
    dst->n_users = U;
    dst->off = rlab_malloc(((size_t)U + 1) * sizeof(int64_t));
    dst->items = rlab_malloc((size_t)(n ? n : 1) * sizeof(int32_t));
    dst->ts = rlab_malloc((size_t)(n ? n : 1) * sizeof(int64_t));
    if (!dst->off || !dst->items || !dst->ts) {
        rlab_seqs_clear(dst);
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    }
    if (U > 0) {
        memcpy(dst->off, src->off, ((size_t)U + 1) * sizeof(int64_t));
        memcpy(dst->items, src->items, (size_t)n * sizeof(int32_t));
        if (src->ts)
            memcpy(dst->ts, src->ts, (size_t)n * sizeof(int64_t));
        else
            memset(dst->ts, 0, (size_t)n * sizeof(int64_t));
    } else {
        dst->off[0] = 0;
    }
    return RLAB_OK;
}

/* rows of a then rows of b, into out (initialised here) */
static int concat_inter(const rlab_inter *a, const rlab_inter *b, rlab_inter *out, rlab_err *err)
{
    rlab_inter_init(out);
    if (rlab_inter_reserve(out, a->n + b->n))
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    const rlab_inter *src[2] = {a, b};
    for (int s = 0; s < 2; s++)
        for (size_t r = 0; r < src[s]->n; r++)
            if (rlab_inter_push(out, src[s]->user[r], src[s]->item[r], src[s]->ts[r],
                                src[s]->rating ? src[s]->rating[r] : 1.0f, NULL))
                return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    return RLAB_OK;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The cut-off time at quantile q of the interactions: rows with ts >= cut-off are at most a
 * share 1 - q of them (a run of equal times stays on one side: the cut-off moves up past it).
 * Nothing is above it when no time qualifies. */
static int ts_quantile(const rlab_inter *t, double q, int64_t *out, rlab_err *err)
{
    int64_t *ts = rlab_malloc((t->n ? t->n : 1) * sizeof *ts);
    if (!ts)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    memcpy(ts, t->ts, t->n * sizeof *ts);
    qsort(ts, t->n, sizeof *ts, cmp_i64);
    size_t k = (size_t)ceil((double)t->n * q);
    while (k > 0 && k < t->n && ts[k] == ts[k - 1])
        k++;
    *out = k < t->n ? ts[k] : (t->n ? ts[t->n - 1] + 1 : 0);
    rlab_free(ts);
    return RLAB_OK;
}

/* The tabular branch: the table's fixed parts (tabular.h part_rows: train, valid, test) as
 * rows[RLAB_VIEW_TRAIN / _VALID / _TEST]; a table without parts gets the default split. */
static int tab_view_new(const rlab_dataset *ds, const rlab_view_opts *o, rlab_view **out,
                        rlab_err *err)
{
    const rlab_tabular *t = ds->tab;
    if (t->n < 1)
        return rlab_errf(err, RLAB_EINVAL, "dataset '%s' has no samples to learn from", ds->name);
    rlab_view *v = rlab_calloc(1, sizeof *v);
    if (!v)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    snprintf(v->dataset, sizeof v->dataset, "%s", ds->name);
    v->n_users = rlab_tabular_ngroups(t);
    v->opts = *o;
    v->tab = t;
    static const int slot[3] = {RLAB_VIEW_TRAIN, RLAB_VIEW_VALID, RLAB_VIEW_TEST};
    int rc = RLAB_OK;
    if (t->part_rows[0]) {
        for (int k = 0; k < 3 && rc == RLAB_OK; k++) {
            int64_t n = t->part_n[k];
            v->rows[slot[k]] = rlab_malloc((size_t)(n ? n : 1) * sizeof(int64_t));
            if (!v->rows[slot[k]])
                rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
            else if (n)
                memcpy(v->rows[slot[k]], t->part_rows[k], (size_t)n * sizeof(int64_t));
            v->nrows[slot[k]] = n;
        }
    } else {
        rc = rlab_tabular_split(t, 0.1, 0.2, t->time != NULL, 0, &v->rows[RLAB_VIEW_TRAIN],
                                &v->nrows[RLAB_VIEW_TRAIN], &v->rows[RLAB_VIEW_VALID],
                                &v->nrows[RLAB_VIEW_VALID], &v->rows[RLAB_VIEW_TEST],
                                &v->nrows[RLAB_VIEW_TEST], err);
    }
    if (rc) {
        rlab_view_free(v);
        return rc;
    }
    *out = v;
    return RLAB_OK;
}

int rlab_view_new(const rlab_dataset *ds, const rlab_view_opts *opts, rlab_view **out,
                  rlab_err *err)
{
    *out = NULL;
    rlab_view_opts o = opts ? *opts : rlab_view_defaults();
    if (ds->tab)
        return tab_view_new(ds, &o, out, err);
    int32_t nu = rlab_vocab_size(&ds->users), ni = rlab_vocab_size(&ds->items);
    if (ds->inter.n == 0 || nu < 1 || ni < 2)
        return rlab_errf(err, RLAB_EINVAL, "dataset '%s' has no interactions to learn from",
                         ds->name);
    if (o.split < RLAB_SPLIT_LOO || o.split > RLAB_SPLIT_NONE)
        return rlab_errf(err, RLAB_EINVAL, "unknown split %d", o.split);
    if ((o.split == RLAB_SPLIT_TEMPORAL || o.split == RLAB_SPLIT_RATIO) &&
        !(o.valid_frac >= 0 && o.test_frac > 0 && o.valid_frac + o.test_frac < 1))
        return rlab_errf(err, RLAB_EINVAL,
                         "split %s: valid_frac %g and test_frac %g must be >= 0, > 0 and sum "
                         "to less than 1",
                         rlab_split_names[o.split], o.valid_frac, o.test_frac);
    rlab_view *v = rlab_calloc(1, sizeof *v);
    if (!v)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    snprintf(v->dataset, sizeof v->dataset, "%s", ds->name);
    v->n_users = nu;
    v->n_items = ni;
    v->opts = o;
    rlab_split sp;
    memset(&sp, 0, sizeof sp);
    rlab_inter both;
    rlab_inter_init(&both);
    int rc = RLAB_OK;
    switch (o.split) {
    case RLAB_SPLIT_LOO:
    case RLAB_SPLIT_NONE:
        rc = rlab_split_loo(&ds->inter, nu, &sp, err);
        break;
    case RLAB_SPLIT_TEMPORAL: {
        int64_t vc = 0, tc = 0;
        rc = ts_quantile(&ds->inter, 1.0 - o.test_frac - o.valid_frac, &vc, err);
        if (rc == RLAB_OK)
            rc = ts_quantile(&ds->inter, 1.0 - o.test_frac, &tc, err);
        if (rc == RLAB_OK)
            rc = rlab_split_temporal(&ds->inter, vc, tc, &sp, err);
        break;
    }
    case RLAB_SPLIT_RATIO:
        rc = rlab_split_ratio(&ds->inter, nu, 1.0 - o.valid_frac - o.test_frac, o.valid_frac,
                              o.seed, &sp, err);
        break;
    }
    if (o.split == RLAB_SPLIT_NONE && rc == RLAB_OK) {
        /* everything trains; there is nothing to rank */
        rlab_inter_clear(&sp.valid);
        rlab_inter_clear(&sp.test);
        rlab_inter_init(&sp.valid);
        rlab_inter_init(&sp.test);
    }
    if (rc == RLAB_OK)
        rc = rlab_seqs_from_inter(o.split == RLAB_SPLIT_NONE ? &ds->inter : &sp.train, nu,
                                  &v->train, err);
    if (rc == RLAB_OK)
        rc = rlab_seqs_from_inter(&sp.train, nu, &v->hist_valid, err);
    if (rc == RLAB_OK)
        rc = rlab_seqs_from_inter(&sp.valid, nu, &v->valid, err);
    if (rc == RLAB_OK)
        rc = rlab_seqs_from_inter(&sp.test, nu, &v->test, err);
    if (rc == RLAB_OK)
        rc = concat_inter(&sp.train, &sp.valid, &both, err);
    if (rc == RLAB_OK)
        rc = rlab_seqs_from_inter(&both, nu, &v->hist_test, err);
    if (rc == RLAB_OK)
        rc = rlab_seqs_from_inter(&ds->inter, nu, &v->all, err);
    rlab_inter_clear(&both);
    rlab_split_clear(&sp);
    if (rc != RLAB_OK) {
        rlab_view_free(v);
        return rc;
    }
    *out = v;
    return RLAB_OK;
}
