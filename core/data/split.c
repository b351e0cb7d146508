/*
 * core/data/split: per-user time-ordered sequences, leave-one-out / temporal / ratio splits
 * and k-core filtering. See split.h.
 *
 * Every per-user operation starts from the same permutation: rows grouped by user with a
 * stable counting sort (O(n + U)), then each user's rows stably sorted by ts. Files that are
 * already in time order (SASRec text, seq-lines, sorted .inter) skip the second sort after a
 * linear check, so Beauty's 198k rows order in a few milliseconds.
 */
#include "data/split.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Stable merge sort of idx[0..n) by ts[idx], using tmp[0..n). */
static void merge_sort(int64_t *idx, int64_t *tmp, size_t n, const int64_t *ts)
{
    if (n < 16) { /* insertion sort: stable */
        for (size_t i = 1; i < n; i++) {
            int64_t x = idx[i];
            size_t j = i;
            while (j > 0 && ts[idx[j - 1]] > ts[x]) {
                idx[j] = idx[j - 1];
                j--;
            }
            idx[j] = x;
        }
        return;
    }
    size_t h = n / 2;
    merge_sort(idx, tmp, h, ts);
    merge_sort(idx + h, tmp, n - h, ts);
    if (ts[idx[h - 1]] <= ts[idx[h]])
        return; /* halves already in order */
    memcpy(tmp, idx, h * sizeof *idx);
    size_t a = 0, b = h, o = 0;
    while (a < h && b < n)
        idx[o++] = ts[idx[b]] < ts[tmp[a]] ? idx[b++] : tmp[a++]; /* ties: left first */
    while (a < h)
        idx[o++] = tmp[a++];
}

/* off[U+1] and order[n]: rows of user u are order[off[u] .. off[u+1]) in (ts, row) order.
 * Both rlab_malloc'd. Rows whose user is outside [0, n_users) are an error. */
static int user_order(const rlab_inter *t, int32_t n_users, int64_t **off_out, int64_t **order_out,
                      rlab_err *err)
{
    if (n_users < 0)
        return rlab_errf(err, RLAB_EINVAL, "split: n_users %d < 0", n_users);
    size_t n = t->n;
    int64_t *off = rlab_calloc((size_t)n_users + 1, sizeof *off);
    int64_t *order = rlab_malloc((n ? n : 1) * sizeof *order);
    int64_t *tmp = NULL;
    if (!off || !order)
        goto oom;
    for (size_t i = 0; i < n; i++) {
        int32_t u = t->user[i];
        if (u < 0 || u >= n_users) {
            rlab_free(off);
            rlab_free(order);
            return rlab_errf(err, RLAB_EINVAL, "split: row %zu has user %d, expected 0..%d", i, u,
                             n_users - 1);
        }
        off[u + 1]++;
    }
    for (int32_t u = 0; u < n_users; u++)
        off[u + 1] += off[u];
    /* stable scatter with a cursor per user: rows keep their file order within a user */
    int64_t *cur = rlab_malloc(((size_t)n_users + 1) * sizeof *cur);
    if (!cur)
        goto oom;
    memcpy(cur, off, ((size_t)n_users + 1) * sizeof *cur);
    for (size_t i = 0; i < n; i++)
        order[cur[t->user[i]]++] = (int64_t)i;
    rlab_free(cur);
    for (int32_t u = 0; u < n_users; u++) {
        int64_t b = off[u], e = off[u + 1];
        int sorted = 1;
        for (int64_t k = b + 1; k < e && sorted; k++)
            sorted = t->ts[order[k - 1]] <= t->ts[order[k]];
        if (sorted)
            continue;
        if (!tmp && !(tmp = rlab_malloc((n ? n : 1) * sizeof *tmp)))
            goto oom;
        merge_sort(order + b, tmp, (size_t)(e - b), t->ts);
    }
    rlab_free(tmp);
    *off_out = off;
    *order_out = order;
    return RLAB_OK;
oom:
    rlab_free(off);
    rlab_free(order);
    rlab_free(tmp);
    return rlab_errf(err, RLAB_ENOMEM, "split: out of memory");
}

int rlab_seqs_from_inter(const rlab_inter *t, int32_t n_users, rlab_seqs *out, rlab_err *err)
{
    memset(out, 0, sizeof *out);
    int64_t *off, *order;
    int rc = user_order(t, n_users, &off, &order, err);
    if (rc)
        return rc;
    size_t n = t->n;
    out->items = rlab_malloc((n ? n : 1) * sizeof *out->items);
    out->ts = rlab_malloc((n ? n : 1) * sizeof *out->ts);
    if (!out->items || !out->ts) {
        rlab_free(out->items);
        rlab_free(out->ts);
        rlab_free(off);
        rlab_free(order);
        memset(out, 0, sizeof *out);
        return rlab_errf(err, RLAB_ENOMEM, "seqs: out of memory");
    }
    for (size_t k = 0; k < n; k++) {
        out->items[k] = t->item[order[k]];
        out->ts[k] = t->ts[order[k]];
    }
    rlab_free(order);
    out->off = off;
    out->n_users = n_users;
    return RLAB_OK;
}

void rlab_seqs_clear(rlab_seqs *s)
{
    if (!s)
        return;
    rlab_free(s->off);
    rlab_free(s->items);
    rlab_free(s->ts);
    memset(s, 0, sizeof *s);
}

/* ---- splits ---------------------------------------------------------------------------- */
/* An empty table with the same label columns and flags as src. */
static void like(rlab_inter *dst, const rlab_inter *src)
{
    rlab_inter_init(dst);
    dst->nlabels = src->nlabels;
    memcpy(dst->label_names, src->label_names, sizeof dst->label_names);
    dst->flags = src->flags;
}

static int copy_row(rlab_inter *dst, const rlab_inter *src, size_t i)
{
    float lab[RLAB_INTER_MAX_LABELS];
    for (int k = 0; k < src->nlabels; k++)
        lab[k] = src->labels[k][i];
    return rlab_inter_push(dst, src->user[i], src->item[i], src->ts[i], src->rating[i], lab);
}

static void split_init(rlab_split *s, const rlab_inter *t)
{
    like(&s->train, t);
    like(&s->valid, t);
    like(&s->test, t);
}

void rlab_split_clear(rlab_split *s)
{
    if (!s)
        return;
    rlab_inter_clear(&s->train);
    rlab_inter_clear(&s->valid);
    rlab_inter_clear(&s->test);
}

static int split_oom(rlab_split *s, rlab_err *err)
{
    rlab_split_clear(s);
    return rlab_errf(err, RLAB_ENOMEM, "split: out of memory");
}

int rlab_split_loo(const rlab_inter *t, int32_t n_users, rlab_split *out, rlab_err *err)
{
    split_init(out, t);
    int64_t *off, *order;
    int rc = user_order(t, n_users, &off, &order, err);
    if (rc)
        return rc;
    if (rlab_inter_reserve(&out->train, t->n) || rlab_inter_reserve(&out->valid, (size_t)n_users) ||
        rlab_inter_reserve(&out->test, (size_t)n_users))
        goto oom;
    for (int32_t u = 0; u < n_users; u++) {
        int64_t b = off[u], e = off[u + 1];
        int64_t ntrain = e - b >= 3 ? e - b - 2 : e - b; /* < 3 rows: all train (SASRec) */
        for (int64_t k = b; k < b + ntrain; k++)
            if (copy_row(&out->train, t, (size_t)order[k]))
                goto oom;
        if (ntrain < e - b && (copy_row(&out->valid, t, (size_t)order[e - 2]) ||
                               copy_row(&out->test, t, (size_t)order[e - 1])))
            goto oom;
    }
    rlab_free(off);
    rlab_free(order);
    return RLAB_OK;
oom:
    rlab_free(off);
    rlab_free(order);
    return split_oom(out, err);
}

int rlab_split_temporal(const rlab_inter *t, int64_t valid_cutoff, int64_t test_cutoff,
                        rlab_split *out, rlab_err *err)
{
    split_init(out, t);
    if (valid_cutoff > test_cutoff)
        return rlab_errf(err, RLAB_EINVAL,
                         "split.temporal: valid_cutoff %lld > test_cutoff %lld, expected <=",
                         (long long)valid_cutoff, (long long)test_cutoff);
    for (size_t i = 0; i < t->n; i++) {
        int64_t ts = t->ts[i];
        rlab_inter *dst = ts >= test_cutoff    ? &out->test
                          : ts >= valid_cutoff ? &out->valid
                                               : &out->train;
        if (copy_row(dst, t, i))
            return split_oom(out, err);
    }
    return RLAB_OK;
}

int rlab_split_ratio(const rlab_inter *t, int32_t n_users, double train, double valid,
                     uint64_t seed, rlab_split *out, rlab_err *err)
{
    split_init(out, t);
    if (!(train >= 0 && valid >= 0 && train + valid <= 1.0 + 1e-9))
        return rlab_errf(err, RLAB_EINVAL,
                         "split.ratio: train %g valid %g, expected >= 0 with sum <= 1", train,
                         valid);
    int64_t *off, *order;
    int rc = user_order(t, n_users, &off, &order, err);
    if (rc)
        return rc;
    unsigned char *part = rlab_malloc(t->n ? t->n : 1);
    int32_t *perm = rlab_malloc((t->n ? t->n : 1) * sizeof *perm);
    rlab_rng rng;
    rlab_rng_seed(&rng, seed);
    if (!part || !perm)
        goto oom;
    for (int32_t u = 0; u < n_users; u++) {
        int64_t b = off[u], e = off[u + 1], m = e - b;
        if (m == 0)
            continue;
        /* per user: n_train = round(m * train), n_valid = round(m * (train + valid)) - n_train
         * positions of a seeded shuffle; the rest test */
        int64_t ntr = (int64_t)floor((double)m * train + 0.5);
        int64_t nva = (int64_t)floor((double)m * (train + valid) + 0.5) - ntr;
        if (ntr + nva > m)
            nva = m - ntr;
        for (int64_t k = 0; k < m; k++)
            perm[k] = (int32_t)k;
        rlab_rng_shuffle_i32(&rng, perm, (size_t)m);
        for (int64_t k = 0; k < m; k++)
            part[b + perm[k]] = k < ntr ? 0 : k < ntr + nva ? 1 : 2;
    }
    /* emit in (user, time) order so every part stays time-ordered per user */
    for (size_t k = 0; k < t->n; k++) {
        rlab_inter *dst = part[k] == 0 ? &out->train : part[k] == 1 ? &out->valid : &out->test;
        if (copy_row(dst, t, (size_t)order[k]))
            goto oom;
    }
    rlab_free(part);
    rlab_free(perm);
    rlab_free(off);
    rlab_free(order);
    return RLAB_OK;
oom:
    rlab_free(part);
    rlab_free(perm);
    rlab_free(off);
    rlab_free(order);
    return split_oom(out, err);
}

/* ---- k-core ---------------------------------------------------------------------------- */
/* Rebuild vocabulary v keeping entries with map[i] >= 0 (map gives the new index). */
static int remap_vocab(const rlab_vocab *v, const int32_t *map, rlab_vocab *out)
{
    rlab_vocab_init(out);
    for (int32_t i = 0; i < v->n; i++) {
        if (map[i] < 0)
            continue;
        int32_t k = rlab_vocab_add(out, v->names[i], strlen(v->names[i]));
        if (k < 0) {
            rlab_vocab_clear(out);
            return RLAB_ENOMEM;
        }
        RLAB_ASSERT(k == map[i]);
    }
    return RLAB_OK;
}

/* Remap a feature table's rows (old entity i -> map[i], dropped when < 0) into out. */
static int remap_feats(const rlab_feats *f, const int32_t *map, int32_t n_old, int32_t n_new,
                       rlab_feats *out)
{
    rlab_feats_init(out);
    if (f->ncols == 0)
        return RLAB_OK;
    out->cols = rlab_calloc((size_t)f->ncols, sizeof *out->cols);
    if (!out->cols)
        return RLAB_ENOMEM;
    out->cap = f->ncols;
    out->n_entities = n_new;
    size_t rows = n_new > 0 ? (size_t)n_new : 1;
    for (int c = 0; c < f->ncols; c++) {
        const rlab_feat_col *s = &f->cols[c];
        rlab_feat_col *d = &out->cols[c];
        out->ncols = c + 1; /* so rlab_feats_clear frees what is built so far */
        memcpy(d->name, s->name, sizeof d->name);
        d->kind = s->kind;
        rlab_vocab_init(&d->vocab);
        for (int32_t i = 0; i < s->vocab.n; i++) /* value vocab is kept whole */
            if (rlab_vocab_add(&d->vocab, s->vocab.names[i], strlen(s->vocab.names[i])) < 0)
                return RLAB_ENOMEM;
        int32_t m = f->n_entities < n_old ? f->n_entities : n_old;
        if (s->kind == RLAB_FEAT_TOKEN) {
            if (!(d->tok = rlab_malloc(rows * sizeof *d->tok)))
                return RLAB_ENOMEM;
            for (int32_t i = 0; i < n_new; i++)
                d->tok[i] = -1;
            for (int32_t i = 0; i < m; i++)
                if (map[i] >= 0)
                    d->tok[map[i]] = s->tok[i];
        } else if (s->kind == RLAB_FEAT_FLOAT) {
            if (!(d->num = rlab_malloc(rows * sizeof *d->num)))
                return RLAB_ENOMEM;
            for (int32_t i = 0; i < n_new; i++)
                d->num[i] = NAN;
            for (int32_t i = 0; i < m; i++)
                if (map[i] >= 0)
                    d->num[map[i]] = s->num[i];
        } else if (s->kind == RLAB_FEAT_TEXT) {
            if (!(d->text = rlab_calloc(rows, sizeof *d->text)))
                return RLAB_ENOMEM;
            for (int32_t i = 0; i < m; i++)
                if (map[i] >= 0 && s->text[i] && !(d->text[map[i]] = rlab_strdup(s->text[i])))
                    return RLAB_ENOMEM;
        } else {
            /* CSR: kept entities keep their relative order, so offsets are a prefix sum */
            d->off = rlab_calloc((size_t)n_new + 1, sizeof *d->off);
            if (!d->off)
                return RLAB_ENOMEM;
            for (int32_t i = 0; i < m; i++)
                if (map[i] >= 0)
                    d->off[map[i] + 1] = s->off[i + 1] - s->off[i];
            for (int32_t i = 0; i < n_new; i++)
                d->off[i + 1] += d->off[i];
            size_t tot = (size_t)d->off[n_new];
            if (!(d->seq = rlab_malloc((tot ? tot : 1) * sizeof *d->seq)))
                return RLAB_ENOMEM;
            for (int32_t i = 0; i < m; i++)
                if (map[i] >= 0)
                    memcpy(d->seq + d->off[map[i]], s->seq + s->off[i],
                           (size_t)(s->off[i + 1] - s->off[i]) * sizeof *d->seq);
        }
    }
    return RLAB_OK;
}

int rlab_kcore(rlab_dataset *ds, int k, rlab_err *err)
{
    if (k < 1)
        return rlab_errf(err, RLAB_EINVAL, "kcore: k = %d, expected >= 1", k);
    rlab_inter *t = &ds->inter;
    int32_t nu = ds->users.n, ni = ds->items.n;
    size_t n = t->n;
    int64_t *du = rlab_calloc((size_t)nu + 1, sizeof *du);
    int64_t *di = rlab_calloc((size_t)ni + 1, sizeof *di);
    unsigned char *alive = rlab_malloc(n ? n : 1);
    int32_t *umap = rlab_malloc(((size_t)nu + 1) * sizeof *umap);
    int32_t *imap = rlab_malloc(((size_t)ni + 1) * sizeof *imap);
    rlab_vocab nusers, nitems;
    rlab_feats nuf, nif;
    rlab_inter nt;
    rlab_vocab_init(&nusers);
    rlab_vocab_init(&nitems);
    rlab_feats_init(&nuf);
    rlab_feats_init(&nif);
    like(&nt, t);
    int rc = RLAB_ENOMEM;
    if (!du || !di || !alive || !umap || !imap)
        goto done;
    for (size_t i = 0; i < n; i++) {
        if (t->user[i] < 0 || t->user[i] >= nu || t->item[i] < 0 || t->item[i] >= ni) {
            rc = RLAB_EINVAL;
            goto done;
        }
        alive[i] = 1;
        du[t->user[i]]++;
        di[t->item[i]]++;
    }
    /* iterate: drop every row touching a user or item below k, until nothing changes */
    for (int changed = 1; changed;) {
        changed = 0;
        for (size_t i = 0; i < n; i++) {
            if (alive[i] && (du[t->user[i]] < k || di[t->item[i]] < k)) {
                alive[i] = 0;
                du[t->user[i]]--;
                di[t->item[i]]--;
                changed = 1;
            }
        }
    }
    int32_t ku = 0, ki = 0;
    for (int32_t u = 0; u < nu; u++)
        umap[u] = du[u] > 0 ? ku++ : -1;
    for (int32_t i = 0; i < ni; i++)
        imap[i] = di[i] > 0 ? ki++ : -1;
    if (remap_vocab(&ds->users, umap, &nusers) || remap_vocab(&ds->items, imap, &nitems) ||
        remap_feats(&ds->user_feats, umap, nu, ku, &nuf) ||
        remap_feats(&ds->item_feats, imap, ni, ki, &nif))
        goto done;
    for (size_t i = 0; i < n; i++) {
        if (!alive[i])
            continue;
        float lab[RLAB_INTER_MAX_LABELS];
        for (int l = 0; l < t->nlabels; l++)
            lab[l] = t->labels[l][i];
        if (rlab_inter_push(&nt, umap[t->user[i]], imap[t->item[i]], t->ts[i], t->rating[i], lab))
            goto done;
    }
    /* commit: swap the new parts in, free the old ones below */
    rlab_vocab tv = ds->users;
    ds->users = nusers;
    nusers = tv;
    tv = ds->items;
    ds->items = nitems;
    nitems = tv;
    rlab_feats tf = ds->user_feats;
    ds->user_feats = nuf;
    nuf = tf;
    tf = ds->item_feats;
    ds->item_feats = nif;
    nif = tf;
    rlab_inter ti = ds->inter;
    ds->inter = nt;
    nt = ti;
    rc = RLAB_OK;
done:
    rlab_free(du);
    rlab_free(di);
    rlab_free(alive);
    rlab_free(umap);
    rlab_free(imap);
    rlab_vocab_clear(&nusers);
    rlab_vocab_clear(&nitems);
    rlab_feats_clear(&nuf);
    rlab_feats_clear(&nif);
    rlab_inter_clear(&nt);
    if (rc == RLAB_EINVAL)
        return rlab_errf(err, rc,
                         "kcore: a row refers to a user or item outside the "
                         "vocabularies");
    if (rc)
        return rlab_errf(err, rc, "kcore: out of memory");
    return RLAB_OK;
}
