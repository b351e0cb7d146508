/*
 * plugins/seqrec/data.c: the leave-one-out data of the MQSA-TED protocol (utils.py) and the
 * TED teacher (get_seq_matrix_sparse with time_span = 1: directed counts, reversed pairs off).
 */
#include "seqrec.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int seqs_alloc(rlab_seqs *s, int32_t n_users, int64_t n, rlab_err *err)
{
    memset(s, 0, sizeof *s);
    s->n_users = n_users;
    s->off = rlab_calloc((size_t)n_users + 1, sizeof *s->off);
    s->items = rlab_malloc((size_t)(n ? n : 1) * sizeof *s->items);
    if (!s->off || !s->items) {
        rlab_seqs_clear(s);
        return rlab_errf(err, RLAB_ENOMEM, "seqrec: out of memory");
    }
    return RLAB_OK;
}

/* out[u] = a[u] (last `keep` items when keep > 0) followed by the CSR extras of each list. */
static int seqs_concat(const rlab_seqs *a, int keep, const int64_t *o1, const int32_t *i1,
                       const int64_t *o2, const int32_t *i2, rlab_seqs *out, rlab_err *err)
{
    const int32_t U = a->n_users;
    int64_t n = 0;
    for (int32_t u = 0; u < U; u++) {
        int64_t la = a->off[u + 1] - a->off[u];
        if (keep > 0 && la > keep)
            la = keep;
        n += la + (o1 ? o1[u + 1] - o1[u] : 0) + (o2 ? o2[u + 1] - o2[u] : 0);
    }
    int rc = seqs_alloc(out, U, n, err);
    if (rc)
        return rc;
    int64_t k = 0;
    for (int32_t u = 0; u < U; u++) {
        int64_t la = a->off[u + 1] - a->off[u];
        int64_t s0 = a->off[u];
        if (keep > 0 && la > keep) {
            s0 += la - keep;
            la = keep;
        }
        memcpy(out->items + k, a->items + s0, (size_t)la * sizeof(int32_t));
        k += la;
        if (o1)
            for (int64_t j = o1[u]; j < o1[u + 1]; j++)
                out->items[k++] = i1[j];
        if (o2)
            for (int64_t j = o2[u]; j < o2[u + 1]; j++)
                out->items[k++] = i2[j];
        out->off[u + 1] = k;
    }
    return RLAB_OK;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Directed transition counts of consecutive pairs inside each trunc sequence. */
static int build_teacher(seqrec_data *d, rlab_err *err)
{
    const int32_t N = d->n_items;
    int64_t np = 0;
    for (int32_t u = 0; u < d->trunc.n_users; u++) {
        int64_t l = d->trunc.off[u + 1] - d->trunc.off[u];
        if (l > 1)
            np += l - 1;
    }
    int64_t *key = rlab_malloc((size_t)(np ? np : 1) * sizeof *key);
    d->tr_off = rlab_calloc((size_t)N + 1, sizeof *d->tr_off);
    d->tr_col = rlab_malloc((size_t)(np ? np : 1) * sizeof *d->tr_col);
    d->tr_cnt = rlab_malloc((size_t)(np ? np : 1) * sizeof *d->tr_cnt);
    d->tr_max = rlab_calloc((size_t)N, sizeof *d->tr_max);
    if (!key || !d->tr_off || !d->tr_col || !d->tr_cnt || !d->tr_max) {
        rlab_free(key);
        return rlab_errf(err, RLAB_ENOMEM, "seqrec: out of memory (TED counts)");
    }
    int64_t k = 0;
    for (int32_t u = 0; u < d->trunc.n_users; u++)
        for (int64_t j = d->trunc.off[u]; j + 1 < d->trunc.off[u + 1]; j++)
            key[k++] = (int64_t)d->trunc.items[j] * N + d->trunc.items[j + 1];
    qsort(key, (size_t)np, sizeof *key, cmp_i64);
    int64_t nz = 0;
    for (int64_t a = 0; a < np;) {
        int64_t b = a;
        while (b < np && key[b] == key[a])
            b++;
        int32_t i = (int32_t)(key[a] / N), j = (int32_t)(key[a] % N);
        d->tr_col[nz] = j;
        d->tr_cnt[nz] = (float)(b - a);
        if (d->tr_cnt[nz] > d->tr_max[i])
            d->tr_max[i] = d->tr_cnt[nz];
        d->tr_off[i + 1]++;
        nz++;
        a = b;
    }
    for (int32_t i = 0; i < N; i++)
        d->tr_off[i + 1] += d->tr_off[i];
    rlab_free(key);
    return RLAB_OK;
}

/* CSR targets (off, items) copied out of a view's target rows. */
static int targets_copy(const rlab_seqs *t, int64_t **off, int32_t **items, rlab_err *err)
{
    rlab_seqs c;
    int rc = rlab_seqs_copy(t, &c, err);
    if (rc)
        return rc;
    *off = c.off;
    *items = c.items;
    rlab_free(c.ts);
    return RLAB_OK;
}

int seqrec_data_from_view(const rlab_view *v, int maxlen, seqrec_data *out, rlab_err *err)
{
    memset(out, 0, sizeof *out);
    out->n_users = v->n_users;
    out->n_items = v->n_items;
    if (out->n_users < 1 || out->n_items < 2)
        return rlab_errf(err, RLAB_EINVAL, "dataset '%s' has %d users and %d items", v->dataset,
                         out->n_users, out->n_items);
    int rc = rlab_seqs_copy(&v->train, &out->train, err);
    if (!rc)
        rc = targets_copy(&v->valid, &out->valid_off, &out->valid_items, err);
    if (!rc)
        rc = targets_copy(&v->test, &out->test_off, &out->test_items, err);
    if (!rc)
        rc = seqs_concat(&out->train, maxlen, NULL, NULL, NULL, NULL, &out->trunc, err);
    if (!rc)
        rc = rlab_seqs_copy(&v->hist_test, &out->trainval, err);
    if (!rc)
        rc = rlab_seqs_copy(&v->all, &out->all, err);
    if (!rc)
        rc = build_teacher(out, err);
    if (rc)
        seqrec_data_clear(out);
    return rc;
}

int seqrec_data_build(const rlab_dataset *ds, int maxlen, seqrec_data *out, rlab_err *err)
{
    memset(out, 0, sizeof *out);
    rlab_view *v = NULL;
    int rc = rlab_view_new(ds, NULL, &v, err); /* leave-one-out */
    if (rc == RLAB_OK)
        rc = seqrec_data_from_view(v, maxlen, out, err);
    rlab_view_free(v);
    return rc;
}

/* Rows of one user sorted by (time, row): qsort context through a file-level pointer would not
 * be thread-safe, so a small insertion sort per user (sequences are short and mostly sorted). */
static void sort_rows(const int64_t *ts, int64_t *rows, int64_t n)
{
    for (int64_t i = 1; i < n; i++) {
        int64_t r = rows[i], j = i;
        while (j > 0 &&
               (ts[rows[j - 1]] > ts[r] || (ts[rows[j - 1]] == ts[r] && rows[j - 1] > r))) {
            rows[j] = rows[j - 1];
            j--;
        }
        rows[j] = r;
    }
}

int seqrec_data_lists(const rlab_dataset *ds, seqrec_data *d, rlab_err *err)
{
    if (!ds || ds->lists.w < 1 || !ds->lists.items)
        return rlab_errf(err, RLAB_EINVAL,
                         "loss=rank needs teacher lists attached to the dataset (as attack.extract "
                         "makes them); dataset '%s' has none",
                         ds ? ds->name : "?");
    const rlab_inter *in = &ds->inter;
    const int32_t U = d->train.n_users;
    if (U != ds->users.n)
        return rlab_errf(err, RLAB_EINVAL, "loss=rank: %d users in the view, %d in '%s'", U,
                         ds->users.n, ds->name);
    const int w = ds->lists.w;
    const int64_t nnz = d->train.off[U];
    int64_t *cnt = rlab_calloc((size_t)U + 1, sizeof *cnt);
    int64_t *rows = rlab_malloc((size_t)(in->n ? in->n : 1) * sizeof *rows);
    d->lists = rlab_malloc((size_t)(nnz ? nnz : 1) * (size_t)w * sizeof *d->lists);
    int rc = RLAB_OK;
    if (!cnt || !rows || !d->lists)
        rc = rlab_errf(err, RLAB_ENOMEM, "loss=rank: out of memory");
    for (size_t r = 0; rc == RLAB_OK && r < in->n; r++)
        cnt[in->user[r] + 1]++;
    for (int32_t u = 0; rc == RLAB_OK && u < U; u++)
        cnt[u + 1] += cnt[u];
    if (rc == RLAB_OK) { /* bucket the rows by user (stable), then sort each by time */
        int64_t *fill = rlab_malloc((size_t)U * sizeof *fill + 1);
        if (!fill)
            rc = rlab_errf(err, RLAB_ENOMEM, "loss=rank: out of memory");
        for (int32_t u = 0; fill && u < U; u++)
            fill[u] = cnt[u];
        for (size_t r = 0; fill && r < in->n; r++)
            rows[fill[in->user[r]]++] = (int64_t)r;
        rlab_free(fill);
    }
    for (int32_t u = 0; rc == RLAB_OK && u < U; u++) {
        int64_t *ur = rows + cnt[u], n = cnt[u + 1] - cnt[u];
        sort_rows(in->ts, ur, n);
        const int64_t L = d->train.off[u + 1] - d->train.off[u];
        for (int64_t k = 0; k < L && rc == RLAB_OK; k++) {
            const int64_t at = d->train.off[u] + k;
            if (k >= n || in->item[ur[k]] != d->train.items[at])
                rc = rlab_errf(err, RLAB_EINVAL,
                               "loss=rank: the lists of '%s' do not line up with user %d's "
                               "training items at position %lld (train on split=none or "
                               "leave-one-out of the dataset the lists were made for)",
                               ds->name, u, (long long)k);
            else
                memcpy(d->lists + (size_t)at * (size_t)w,
                       ds->lists.items + (size_t)ur[k] * (size_t)w, (size_t)w * sizeof *d->lists);
        }
    }
    rlab_free(cnt);
    rlab_free(rows);
    if (rc != RLAB_OK) {
        rlab_free(d->lists);
        d->lists = NULL;
        return rc;
    }
    d->lw = w;
    return RLAB_OK;
}

void seqrec_data_clear(seqrec_data *d)
{
    if (!d)
        return;
    rlab_seqs_clear(&d->train);
    rlab_seqs_clear(&d->trunc);
    rlab_seqs_clear(&d->trainval);
    rlab_seqs_clear(&d->all);
    rlab_free(d->valid_off);
    rlab_free(d->valid_items);
    rlab_free(d->test_off);
    rlab_free(d->test_items);
    rlab_free(d->tr_off);
    rlab_free(d->tr_col);
    rlab_free(d->tr_cnt);
    rlab_free(d->lists);
    rlab_free(d->tr_max);
    memset(d, 0, sizeof *d);
}

/* The TED teacher row of item i, softmax((T[i, :] / max_j T[i, j]) / tau): with logits
 * v_j = T[i, j] / (max + 1e-24) / tau, zero entries have logit 0 and the largest 1/tau, so
 * p_zero = e0 / Z with e0 = exp(-1/tau), and p_j = ex(k) / Z at entry k (column tr_col[k]). */
typedef struct teacher_norm {
    double mx, top, e0, Z;
    float tau;
} teacher_norm;

static double teacher_ex(const seqrec_data *d, const teacher_norm *t, int64_t k)
{
    return exp((double)d->tr_cnt[k] / t->mx / (double)t->tau - t->top);
}

/* Fills *t for row i; returns 0 for a row without transitions (the teacher is uniform). */
static int teacher_norm_of(const seqrec_data *d, int32_t i, float tau, teacher_norm *t)
{
    const int64_t a = d->tr_off[i], b = d->tr_off[i + 1];
    if (b == a)
        return 0;
    t->tau = tau;
    t->mx = (double)d->tr_max[i] + 1e-24;
    t->top = 1.0 / (double)tau;
    t->e0 = exp(-t->top);
    t->Z = (double)(d->n_items - (b - a)) * t->e0;
    for (int64_t k = a; k < b; k++)
        t->Z += teacher_ex(d, t, k);
    return 1;
}

void seqrec_teacher_rows(const seqrec_data *d, const int32_t *ids, int64_t n, float tau, float *p)
{
    const int32_t N = d->n_items;
    for (int64_t r = 0; r < n; r++) {
        float *pr = p + (size_t)r * (size_t)N;
        const int32_t i = ids[r];
        teacher_norm t;
        if (!teacher_norm_of(d, i, tau, &t)) {
            for (int32_t j = 0; j < N; j++)
                pr[j] = 1.0f / (float)N;
            continue;
        }
        const float p0 = (float)(t.e0 / t.Z);
        for (int32_t j = 0; j < N; j++)
            pr[j] = p0;
        for (int64_t k = d->tr_off[i]; k < d->tr_off[i + 1]; k++)
            pr[d->tr_col[k]] = (float)(teacher_ex(d, &t, k) / t.Z);
    }
}

void seqrec_teacher_sparse(const seqrec_data *d, float tau, float *base, float *delta)
{
    for (int32_t i = 0; i < d->n_items; i++) {
        teacher_norm t;
        if (!teacher_norm_of(d, i, tau, &t)) {
            base[i] = 1.0f / (float)d->n_items;
            continue;
        }
        base[i] = (float)(t.e0 / t.Z);
        for (int64_t k = d->tr_off[i]; k < d->tr_off[i + 1]; k++)
            delta[k] = (float)((teacher_ex(d, &t, k) - t.e0) / t.Z);
    }
}
