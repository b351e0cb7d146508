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

static int pop_tensors(const rlab_model *m, rlab_ckpt *ck, rlab_err *err)
{
    const bl_pop *p = m->impl;
    char n[24];
    snprintf(n, sizeof n, "%lld", (long long)p->n_train);
    int rc = rlab_ckpt_add_params(ck, p->P, NULL, err);
    return rc ? rc : rlab_ckpt_set_meta(ck, "pop.n_train", n, err);
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
    .tensors = pop_tensors,
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

static rlab_model *pop_train(const rlab_fit *fit, rlab_err *err)
{
    const rlab_view *v = fit->view;
    rlab_param_spec s;
    pop_spec(&s, v->n_items);
    rlab_params *P = rlab_params_new(&s, 1, NULL, err);
    if (!P)
        return NULL;
    float *c = P->t[0].data;
    int64_t nnz = v->train.off[v->n_users];
    for (int64_t k = 0; k < nnz; k++)
        c[v->train.items[k]] += 1.0f;
    return pop_wrap(P, nnz, v->n_users, v->n_items, err);
}

static int pop_begin(const rlab_fit *fit, void **state, rlab_err *err)
{
    bl_once *o = rlab_calloc(1, sizeof *o);
    if (!o)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    *o = (bl_once){.fit = fit, .train = pop_train};
    *state = o;
    return RLAB_OK;
}

const rlab_fit_ops bl_pop_fit = {.begin = pop_begin,
                                 .step = bl_once_step,
                                 .model = bl_once_model,
                                 .no_loss = 1,
                                 .end = bl_once_end};

rlab_model *bl_pop_restore(rlab_host *host, const rlab_ckpt *ck, const void *cfg, rlab_err *err)
{
    (void)host;
    (void)cfg;
    int32_t nu, ni;
    int64_t n_train;
    if (bl_ckpt_sizes(ck, &nu, &ni, err) ||
        bl_ckpt_int(ck, "pop.n_train", 0, INT64_MAX, &n_train, err))
        return NULL;
    rlab_param_spec s;
    pop_spec(&s, ni);
    rlab_params *P = bl_ckpt_params(ck, &s, 1, err);
    return P ? pop_wrap(P, n_train, nu, ni, err) : NULL;
}
