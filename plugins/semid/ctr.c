/*
 * plugins/semid/ctr.c: semid.ctr, the downstream CTR check of a tokenizer's semantic IDs.
 *
 *   semid.ctr model=M [data=D] [epochs=5] [lr=0.05] [l2=1e-5] [like=4] [cold=5] [seed=1]
 *
 * A logistic regression over one-hot features, trained twice with the same seed and order:
 *   id       bias + user id + item id
 *   id+sid   the same + one weight per item code prefix (levels 1..L, prefix ids of tok.c)
 *            + for DAS, one weight per user code prefix
 * Data: the dataset's leave-one-out view (the split the tokenizers train on by default).
 * Training rows are the train interactions, evaluation rows the held-out ones (the valid and
 * test targets, which no tokenizer saw). Labels: with ratings, rating >= like (1) or not (0);
 * without ratings (implicit data such as Beauty), every interaction is a 1 and gets one
 * uniform negative item the user never interacted with (0), labelled so in the output.
 * Reported: AUC over all evaluation rows, and on the cold-item slice (rows whose item has
 * fewer than `cold` training interactions). Plain SGD, L2 on the touched weights.
 */
#include "semid.h"

#include "eval/ctr.h"

#include <math.h>
#include <string.h>

typedef struct ctr_rows {
    int64_t n, cap;
    int32_t *u, *i;
    uint8_t *y;
} ctr_rows;

static int rows_push(ctr_rows *r, int32_t u, int32_t i, uint8_t y)
{
    if (r->n == r->cap) {
        int64_t cap = r->cap ? 2 * r->cap : 1024;
        int32_t *nu = rlab_realloc(r->u, (size_t)cap * sizeof *nu);
        if (!nu)
            return RLAB_ENOMEM;
        r->u = nu;
        int32_t *ni = rlab_realloc(r->i, (size_t)cap * sizeof *ni);
        if (!ni)
            return RLAB_ENOMEM;
        r->i = ni;
        uint8_t *ny = rlab_realloc(r->y, (size_t)cap * sizeof *ny);
        if (!ny)
            return RLAB_ENOMEM;
        r->y = ny;
        r->cap = cap;
    }
    r->u[r->n] = u;
    r->i[r->n] = i;
    r->y[r->n] = y;
    r->n++;
    return RLAB_OK;
}

static void rows_free(ctr_rows *r)
{
    rlab_free(r->u);
    rlab_free(r->i);
    rlab_free(r->y);
}

/* (user, item) -> last rating, open addressing */
typedef struct rmap {
    uint64_t *key; /* u << 32 | i, plus 1 (0 = empty) */
    float *val;
    uint64_t mask;
} rmap;

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return x;
}

static int rmap_build(rmap *m, const rlab_inter *in)
{
    uint64_t cap = 16;
    while (cap < 2 * (uint64_t)in->n + 16)
        cap <<= 1;
    m->key = rlab_calloc(cap, sizeof *m->key);
    m->val = rlab_malloc(cap * sizeof *m->val);
    m->mask = cap - 1;
    if (!m->key || !m->val)
        return RLAB_ENOMEM;
    for (size_t r = 0; r < in->n; r++) {
        uint64_t k = ((uint64_t)(uint32_t)in->user[r] << 32 | (uint32_t)in->item[r]) + 1;
        uint64_t s = mix(k) & m->mask;
        while (m->key[s] && m->key[s] != k)
            s = (s + 1) & m->mask;
        m->key[s] = k;
        m->val[s] = in->rating[r];
    }
    return RLAB_OK;
}

static float rmap_get(const rmap *m, int32_t u, int32_t i)
{
    uint64_t k = ((uint64_t)(uint32_t)u << 32 | (uint32_t)i) + 1;
    for (uint64_t s = mix(k) & m->mask; m->key[s]; s = (s + 1) & m->mask)
        if (m->key[s] == k)
            return m->val[s];
    return NAN;
}

static int seen(const rlab_seqs *all, int32_t u, int32_t j)
{
    for (int64_t k = all->off[u]; k < all->off[u + 1]; k++)
        if (all->items[k] == j)
            return 1;
    return 0;
}

/* Rows of the sequences s: labels from ratings, or positives + one sampled negative. */
static int add_rows(ctr_rows *r, const rlab_seqs *s, const rlab_seqs *all, const rmap *rm,
                    float like, int32_t n_items, rlab_rng *rng)
{
    for (int32_t u = 0; u < s->n_users; u++)
        for (int64_t k = s->off[u]; k < s->off[u + 1]; k++) {
            const int32_t i = s->items[k];
            int rc;
            if (rm) {
                const float v = rmap_get(rm, u, i);
                rc = rows_push(r, u, i, (uint8_t)(!isnan(v) && v >= like));
            } else {
                rc = rows_push(r, u, i, 1);
                int32_t j = (int32_t)rlab_rng_below(rng, (uint64_t)n_items);
                for (int t = 0; t < 20 && seen(all, u, j); t++)
                    j = (int32_t)rlab_rng_below(rng, (uint64_t)n_items);
                if (!rc)
                    rc = rows_push(r, u, j, 0);
            }
            if (rc)
                return rc;
        }
    return RLAB_OK;
}

typedef struct feat_map {
    int32_t U, I, L;
    const int32_t *ipid; /* [I][L] */
    const int32_t *upid; /* [U][L] or NULL */
} feat_map;

/* Feature indices of row (u, i): returns the count (<= 3 + 2 L). */
static int features(const feat_map *f, int sid, int32_t u, int32_t i, int64_t *out)
{
    int n = 0;
    int64_t at = 0;
    out[n++] = at++;
    out[n++] = at + u;
    at += f->U;
    out[n++] = at + i;
    at += f->I;
    if (!sid)
        return n;
    for (int l = 0; l < f->L; l++) {
        out[n++] = at + f->ipid[(size_t)i * f->L + l];
        at += f->I;
    }
    for (int l = 0; f->upid && l < f->L; l++) {
        out[n++] = at + f->upid[(size_t)u * f->L + l];
        at += f->U;
    }
    return n;
}

static int64_t n_features(const feat_map *f) { return 1 + (int64_t)(1 + f->L) * (f->U + f->I); }

/* Train on tr, score ev into scores. */
static int fit_lr(const feat_map *f, int sid, const ctr_rows *tr, const ctr_rows *ev, int epochs,
                  double lr, double l2, uint64_t seed, float *scores, rlab_ctx *ctx)
{
    const int64_t nf = n_features(f);
    float *w = rlab_calloc((size_t)nf, sizeof *w);
    int64_t *order = rlab_malloc((size_t)tr->n * sizeof *order + 1);
    if (!w || !order) {
        rlab_free(w);
        rlab_free(order);
        return rlab_ctx_errorf(ctx, RLAB_ENOMEM, "out of memory");
    }
    rlab_rng rng;
    rlab_rng_seed(&rng, seed);
    int64_t fx[3 + 2 * SEMID_MAX_LEVELS];
    for (int64_t r = 0; r < tr->n; r++)
        order[r] = r;
    for (int e = 0; e < epochs; e++) {
        for (int64_t r = tr->n - 1; r > 0; r--) { /* Fisher-Yates */
            int64_t j = (int64_t)rlab_rng_below(&rng, (uint64_t)r + 1);
            int64_t x = order[r];
            order[r] = order[j];
            order[j] = x;
        }
        for (int64_t k = 0; k < tr->n; k++) {
            const int64_t r = order[k];
            const int nfx = features(f, sid, tr->u[r], tr->i[r], fx);
            double z = 0;
            for (int q = 0; q < nfx; q++)
                z += (double)w[fx[q]];
            const double g = 1.0 / (1.0 + exp(-z)) - (double)tr->y[r];
            for (int q = 0; q < nfx; q++)
                w[fx[q]] -= (float)(lr * (g + l2 * (double)w[fx[q]]));
        }
        if (rlab_ctx_cancelled(ctx)) {
            rlab_free(w);
            rlab_free(order);
            return rlab_ctx_errorf(ctx, RLAB_ECANCELED, "cancelled");
        }
    }
    for (int64_t r = 0; r < ev->n; r++) {
        const int nfx = features(f, sid, ev->u[r], ev->i[r], fx);
        double z = 0;
        for (int q = 0; q < nfx; q++)
            z += (double)w[fx[q]];
        scores[r] = (float)z;
    }
    rlab_free(w);
    rlab_free(order);
    return RLAB_OK;
}

/* AUC of the rows with keep[r] (NULL = all); NAN when one class is missing. */
static double auc_of(const float *s, const ctr_rows *ev, const uint8_t *keep, float *bs,
                     uint8_t *by, int64_t *n_out)
{
    int64_t n = 0;
    for (int64_t r = 0; r < ev->n; r++)
        if (!keep || keep[r]) {
            bs[n] = s[r];
            by[n] = ev->y[r];
            n++;
        }
    *n_out = n;
    double a = NAN;
    rlab_err err = {0};
    if (n < 2 || rlab_eval_auc(bs, by, n, &a, &err))
        return NAN;
    return a;
}

int semid_ctr_run(rlab_ctx *ctx, const rlab_args *args)
{
    const rlab_model *m = rlab_ctx_model(ctx, rlab_args_str(args, "model"));
    if (!m)
        return rlab_ctx_err(ctx)->code;
    const semid_tok *t = semid_tok_of(m);
    if (!t)
        return rlab_ctx_errorf(ctx, RLAB_EINVAL,
                               "model '%s' is a %s model, not a semantic-ID tokenizer", m->name,
                               m->kind);
    const char *dname = rlab_args_str(args, "data");
    if (!dname || !dname[0])
        dname = m->dataset;
    rlab_host *h = rlab_ctx_host(ctx);
    rlab_dataset *ds = dname && dname[0] ? rlab_host_dataset_get(h, dname) : NULL;
    if (!ds)
        return rlab_ctx_errorf(ctx, RLAB_ENOTFOUND,
                               "semid.ctr: the dataset of model '%s' ('%s') is not loaded: "
                               "load it or name one with data=",
                               m->name, dname ? dname : "");
    rlab_err *err = rlab_ctx_err(ctx);
    rlab_view *v = NULL;
    rmap rm = {0};
    ctr_rows tr = {0}, ev = {0};
    int32_t *upid = NULL;
    float *s0 = NULL, *s1 = NULL, *bs = NULL;
    uint8_t *by = NULL, *cold = NULL;
    int64_t *cnt = NULL;
    rlab_view_opts vo = rlab_view_defaults();
    int rc = rlab_view_new(ds, &vo, &v, err);
    if (!rc && v->n_items != t->n_items)
        rc = rlab_ctx_errorf(ctx, RLAB_EINVAL,
                             "semid.ctr: dataset '%s' has %d items, the tokenizer %d", dname,
                             (int)v->n_items, (int)t->n_items);
    const int explicit = !rc && (ds->inter.flags & RLAB_INTER_HAS_RATING);
    if (!rc && explicit && rmap_build(&rm, &ds->inter))
        rc = rlab_ctx_errorf(ctx, RLAB_ENOMEM, "out of memory");
    rlab_rng rng;
    rlab_rng_seed(&rng, (uint64_t)rlab_args_int(args, "seed"));
    const float like = (float)rlab_args_float(args, "like");
    if (!rc && (add_rows(&tr, &v->train, &v->all, explicit ? &rm : NULL, like, v->n_items, &rng) ||
                add_rows(&ev, &v->valid, &v->all, explicit ? &rm : NULL, like, v->n_items, &rng) ||
                add_rows(&ev, &v->test, &v->all, explicit ? &rm : NULL, like, v->n_items, &rng)))
        rc = rlab_ctx_errorf(ctx, RLAB_ENOMEM, "out of memory");
    if (!rc && (tr.n < 1 || ev.n < 2))
        rc =
            rlab_ctx_errorf(ctx, RLAB_EINVAL, "semid.ctr: too few rows (%lld train, %lld held out)",
                            (long long)tr.n, (long long)ev.n);
    if (!rc && t->ucodes && t->n_ucodes != v->n_users)
        rc = rlab_ctx_errorf(ctx, RLAB_EINVAL, "semid.ctr: dataset '%s' has %d users, the model %d",
                             dname, (int)v->n_users, (int)t->n_ucodes);
    if (!rc && t->ucodes) {
        upid = rlab_malloc((size_t)t->n_ucodes * (size_t)t->L * sizeof *upid + 1);
        rc = upid ? semid_prefix_ids(t->ucodes, t->n_ucodes, t->L + 1, t->L, upid, err)
                  : rlab_ctx_errorf(ctx, RLAB_ENOMEM, "out of memory");
    }
    if (!rc) {
        s0 = rlab_malloc((size_t)ev.n * sizeof *s0);
        s1 = rlab_malloc((size_t)ev.n * sizeof *s1);
        bs = rlab_malloc((size_t)ev.n * sizeof *bs);
        by = rlab_malloc((size_t)ev.n);
        cold = rlab_malloc((size_t)ev.n);
        cnt = rlab_calloc((size_t)v->n_items, sizeof *cnt);
        if (!s0 || !s1 || !bs || !by || !cold || !cnt)
            rc = rlab_ctx_errorf(ctx, RLAB_ENOMEM, "out of memory");
    }
    const int epochs = (int)rlab_args_int(args, "epochs");
    const double lr = rlab_args_float(args, "lr"), l2 = rlab_args_float(args, "l2");
    const uint64_t seed = (uint64_t)rlab_args_int(args, "seed");
    feat_map fm = {v ? v->n_users : 0, v ? v->n_items : 0, t->L, t->pid, upid};
    if (!rc)
        rc = fit_lr(&fm, 0, &tr, &ev, epochs, lr, l2, seed, s0, ctx);
    if (!rc)
        rc = fit_lr(&fm, 1, &tr, &ev, epochs, lr, l2, seed, s1, ctx);
    if (!rc) {
        const int64_t cmin = rlab_args_int(args, "cold");
        for (int64_t k = 0; k < v->train.off[v->n_users]; k++)
            cnt[v->train.items[k]]++;
        int64_t npos = 0;
        for (int64_t r = 0; r < ev.n; r++) {
            cold[r] = (uint8_t)(cnt[ev.i[r]] < cmin);
            npos += ev.y[r];
        }
        int64_t n_all, n_cold;
        const double a0 = auc_of(s0, &ev, NULL, bs, by, &n_all);
        const double a1 = auc_of(s1, &ev, NULL, bs, by, &n_all);
        const double c0 = auc_of(s0, &ev, cold, bs, by, &n_cold);
        const double c1 = auc_of(s1, &ev, cold, bs, by, &n_cold);
        const char *lab = explicit ? "rating label" : "sampled negatives 1:1";
        rlab_table *tb = rlab_ctx_result_table(
            ctx, "auc", 5,
            (const char *const[]){"features", "auc", "auc_cold", "rows", "cold_rows"});
        if (tb) {
            rlab_table_add_row(tb, "sffll", "id", a0, c0, (int64_t)n_all, (int64_t)n_cold);
            rlab_table_add_row(tb, "sffll", t->ucodes ? "id+sid(item,user)" : "id+sid(item)", a1,
                               c1, (int64_t)n_all, (int64_t)n_cold);
        }
        rlab_ctx_printf(ctx,
                        "CTR logistic regression on %s (%s, %lld train rows, %lld held-out rows, "
                        "%.3f positive; cold: %lld rows of items with < %lld train interactions)",
                        dname, lab, (long long)tr.n, (long long)ev.n, (double)npos / (double)ev.n,
                        (long long)n_cold, (long long)cmin);
        rlab_ctx_printf(ctx, "  id       AUC %.4f   cold AUC %.4f", a0, c0);
        rlab_ctx_printf(ctx, "  id+sid   AUC %.4f   cold AUC %.4f", a1, c1);
        rlab_ctx_result_float(ctx, "auc.id", a0);
        rlab_ctx_result_float(ctx, "auc.sid", a1);
        rlab_ctx_result_float(ctx, "auc.id.cold", c0);
        rlab_ctx_result_float(ctx, "auc.sid.cold", c1);
        rlab_ctx_result_int(ctx, "rows", n_all);
        rlab_ctx_result_int(ctx, "cold_rows", n_cold);
        rlab_ctx_result_str(ctx, "labels", lab);
    }
    rlab_free(s0);
    rlab_free(s1);
    rlab_free(bs);
    rlab_free(by);
    rlab_free(cold);
    rlab_free(cnt);
    rlab_free(upid);
    rlab_free(rm.key);
    rlab_free(rm.val);
    rows_free(&tr);
    rows_free(&ev);
    rlab_view_free(v);
    rlab_host_dataset_release(h, ds);
    return rc;
}
