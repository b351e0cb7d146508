/*
 * plugins/baselines/pop.c: Pop, the most-popular recommender. The score of item i is the
 * number of training interactions with i (the same for every user); the evaluator masks
 * each user's history, so Pop recommends the most popular unseen items.
 *
 * Parameters (one rlab_params block): "pop.count" [n_items].
 */
#include "baselines.h"

#include <stdio.h>
#include <string.h>

typedef struct bl_pop {
    rlab_params *P;
    const float *count; /* [n_items] view into P */
    int64_t n_train;    /* interactions counted */
} bl_pop;

/* q: [nq], out: [nq][n_items] */
static int pop_score_all(const rlab_model *m, const rlab_query *q, int nq, float *out,
                         rlab_err *err)
{
    (void)q;
    (void)err;
    const bl_pop *p = m->impl;
    size_t ni = (size_t)m->n_items;
    for (int b = 0; b < nq; b++)
        memcpy(out + (size_t)b * ni, p->count, ni * sizeof(float));
    return RLAB_OK;
}

static int pop_save(const rlab_model *m, const char *path, rlab_err *err)
{
    const bl_pop *p = m->impl;
    char n[24];
    snprintf(n, sizeof n, "%lld", (long long)p->n_train);
    rlab_kv kv[] = {{"n_train", n}};
    return bl_save(m, p->P, kv, 1, path, err);
}

static void pop_describe(const rlab_model *m, char *buf, size_t size)
{
    const bl_pop *p = m->impl;
    snprintf(buf, size, "Pop: counts of %lld training interactions over %d items%s%s",
             (long long)p->n_train, (int)m->n_items, m->dataset[0] ? " on " : "", m->dataset);
}

static void pop_free(rlab_model *m)
{
    bl_pop *p = m->impl;
    if (!p)
        return;
    rlab_params_free(p->P);
    rlab_free(p);
}

static const rlab_model_vt pop_vt = {
    .score_all = pop_score_all,
    .save = pop_save,
    .describe = pop_describe,
    .free = pop_free,
};

static void pop_spec(rlab_param_spec *s, int32_t n_items)
{
    *s = (rlab_param_spec){
        .name = "pop.count", .ndim = 1, .shape = {n_items}, .init = RLAB_INIT_ZERO};
}

/* Wrap P (owned from now on, also on failure). */
static rlab_model *pop_wrap(rlab_params *P, int64_t n_train, int32_t n_users, int32_t n_items,
                            rlab_err *err)
{
    bl_pop *p = rlab_calloc(1, sizeof *p);
    if (!p) {
        rlab_params_free(P);
        rlab_errf(err, RLAB_ENOMEM, "out of memory");
        return NULL;
    }
    p->P = P;
    p->count = P->t[0].data;
    p->n_train = n_train;
    rlab_model *m = rlab_model_new(&pop_vt, p, NULL, "pop", err);
    if (m) {
        m->n_users = n_users;
        m->n_items = n_items;
    }
    return m;
}

rlab_model *bl_pop_train(const bl_train *t, rlab_err *err)
{
    const bl_data *d = t->data;
    rlab_param_spec s;
    pop_spec(&s, d->n_items);
    rlab_params *P = rlab_params_new(&s, 1, NULL, err);
    if (!P)
        return NULL;
    float *c = P->t[0].data;
    int64_t nnz = d->train.off[d->n_users];
    for (int64_t k = 0; k < nnz; k++)
        c[d->train.items[k]] += 1.0f;
    if (t->ctx)
        rlab_ctx_progress(t->ctx, 1, 1, "count", 1, (rlab_metric[]){{"interactions", (double)nnz}});
    rlab_model *m = pop_wrap(P, nnz, d->n_users, d->n_items, err);
    if (m && t->dataset)
        snprintf(m->dataset, sizeof m->dataset, "%s", t->dataset);
    return m;
}

rlab_model *bl_pop_load(rlab_host *host, const char *path, const char *meta, rlab_err *err)
{
    (void)host;
    (void)meta;
    bl_meta md;
    int64_t n_train;
    if (bl_read_meta(path, "pop", &md, err) ||
        bl_meta_int(path, "n_train", 0, INT64_MAX, &n_train, err))
        return NULL;
    rlab_param_spec s;
    pop_spec(&s, md.n_items);
    rlab_params *P = bl_load_params(path, &s, 1, err);
    if (!P)
        return NULL;
    rlab_model *m = pop_wrap(P, n_train, md.n_users, md.n_items, err);
    if (m)
        snprintf(m->dataset, sizeof m->dataset, "%s", md.dataset);
    return m;
}
