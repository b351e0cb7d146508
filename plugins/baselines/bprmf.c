/*
 * plugins/baselines/bprmf.c: BPR-MF (Rendle et al., "BPR: Bayesian Personalized Ranking from
 * Implicit Feedback", 2009): matrix factorisation with an item bias trained on sampled
 * (user, positive, negative) triples.
 *
 *   x_uij = b_i - b_j + <p_u, q_i - q_j>
 *   loss  = mean over triples of softplus(-x_uij)
 *         + reg/2 * (|p_u|^2 + |q_i|^2 + |q_j|^2) for every triple (the rows it touches)
 *   score(u, i) = <p_u, q_i> + b_i
 *
 * Negatives come from core/data/sampler.h, uniform over the items the user has not seen in
 * training (neg of them per positive: the batcher's one plus neg-1 extra draws). Updates are
 * sparse: one mini-batch accumulates gradients into the touched rows only (P->grad), then
 * AdamW (default; Loshchilov & Hutter decoupled weight decay, lazy like TF's LazyAdam: rows
 * not in the batch keep their parameters and moments, bias correction uses the global step)
 * or plain SGD updates exactly those rows. An epoch is every training interaction once.
 *
 * Scoring all items is one cblas_sgemm: out[nq][I] = P_q [nq][D] x Q^T [D][I] + b. A query
 * whose user is unknown to the model (-1 or >= n_users) is folded in as the mean of its
 * history's item vectors (zero without history: the bias alone, a popularity prior).
 *
 * Sample representation (model/model.h sample_repr): [p_u ; q_i], 2D floats.
 *
 * Parameters (one rlab_params block): "user_emb" [n_users][D], "item_emb" [n_items][D],
 * "item_bias" [n_items].
 */
#include "baselines.h"
#include "base/mpi.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

typedef struct bl_bpr {
    rlab_params *P;
    int32_t D;
    float *U;       /* [n_users][D] */
    float *V;       /* [n_items][D] */
    float *bias;    /* [n_items] */
    char info[160]; /* training summary for describe ("30 epochs, adamw lr=0.005 ...") */
} bl_bpr;

/* ---- scoring ---------------------------------------------------------------------------- */

/* The user vector of query q into out[D]. */
static void user_vec(const rlab_model *m, const bl_bpr *s, const rlab_query *q, float *out)
{
    int32_t D = s->D;
    if (q->user >= 0 && q->user < m->n_users) {
        memcpy(out, s->U + (size_t)q->user * (size_t)D, (size_t)D * sizeof(float));
        return;
    }
    memset(out, 0, (size_t)D * sizeof(float));
    int n = 0;
    for (int32_t t = 0; t < q->n_hist; t++) {
        int32_t h = q->hist[t];
        if (h < 0 || h >= m->n_items)
            continue;
        const float *v = s->V + (size_t)h * (size_t)D;
        for (int32_t d = 0; d < D; d++)
            out[d] += v[d];
        n++;
    }
    if (n > 1)
        for (int32_t d = 0; d < D; d++)
            out[d] /= (float)n;
}

/* q: [nq], out: [nq][n_items] */
static int bpr_score_all(const rlab_model *m, const rlab_query *q, int nq, float *out,
                         rlab_err *err)
{
    const bl_bpr *s = m->impl;
    int32_t D = s->D, ni = m->n_items;
    float *Uq = rlab_malloc((size_t)nq * (size_t)D * sizeof(float)); /* [nq][D] */
    if (!Uq)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    for (int b = 0; b < nq; b++) {
        user_vec(m, s, &q[b], Uq + (size_t)b * (size_t)D);
        memcpy(out + (size_t)b * (size_t)ni, s->bias, (size_t)ni * sizeof(float));
    }
    /* out[nq][I] += Uq[nq][D] . V[I][D]^T */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nq, ni, D, 1.0f, Uq, D, s->V, D, 1.0f, out,
                ni);
    rlab_free(Uq);
    return RLAB_OK;
}

/* q: [nq], out: [nq][D] */
static int bpr_user_repr(const rlab_model *m, const rlab_query *q, int nq, float *out,
                         rlab_err *err)
{
    (void)err;
    const bl_bpr *s = m->impl;
    for (int b = 0; b < nq; b++)
        user_vec(m, s, &q[b], out + (size_t)b * (size_t)s->D);
    return RLAB_OK;
}

/* Sample representation: [user vector ; item vector] (2D) and the score <p_u, q_i> + b_i.
 * q, items, score: [nq]; repr: [nq][2D] */
static int bpr_sample_repr(const rlab_model *m, const rlab_query *q, int nq, const int32_t *items,
                           float *repr, float *score, rlab_err *err)
{
    const bl_bpr *s = m->impl;
    const int32_t D = s->D;
    float *u = rlab_malloc((size_t)D * sizeof(float));
    if (!u)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    for (int b = 0; b < nq; b++) {
        const float *v = s->V + (size_t)items[b] * (size_t)D;
        user_vec(m, s, &q[b], u);
        if (repr) {
            memcpy(repr + (size_t)b * 2 * (size_t)D, u, (size_t)D * sizeof(float));
            memcpy(repr + ((size_t)b * 2 + 1) * (size_t)D, v, (size_t)D * sizeof(float));
        }
        if (score) {
            float acc = s->bias[items[b]];
            for (int32_t d = 0; d < D; d++)
                acc += u[d] * v[d];
            score[b] = acc;
        }
    }
    rlab_free(u);
    return RLAB_OK;
}

static int bpr_tensors(const rlab_model *m, rlab_ckpt *ck, rlab_err *err)
{
    const bl_bpr *s = m->impl;
    int rc = rlab_ckpt_add_params(ck, s->P, NULL, err);
    return rc ? rc : rlab_ckpt_set_meta(ck, "bprmf.info", s->info, err);
}

static void bpr_describe(const rlab_model *m, char *buf, size_t size)
{
    const bl_bpr *s = m->impl;
    snprintf(buf, size, "BPR-MF d=%d%s%s%s%s", (int)s->D, s->info[0] ? ", " : "", s->info,
             m->dataset[0] ? " on " : "", m->dataset);
}

static void bpr_free(rlab_model *m)
{
    bl_bpr *s = m->impl;
    if (!s)
        return;
    rlab_params_free(s->P);
    rlab_free(s);
}

static const rlab_model_vt bpr_vt = {
    .score_all = bpr_score_all,
    .user_repr = bpr_user_repr,
    .tensors = bpr_tensors,
    .describe = bpr_describe,
    .free = bpr_free,
    .sample_repr = bpr_sample_repr,
};

static void bpr_specs(rlab_param_spec s[3], int32_t nu, int32_t ni, int32_t D)
{
    /* N(0, 0.1^2) embeddings, zero biases */
    s[0] = (rlab_param_spec){"user_emb", 2, {nu, D}, RLAB_INIT_NORMAL, 0.1f};
    s[1] = (rlab_param_spec){"item_emb", 2, {ni, D}, RLAB_INIT_NORMAL, 0.1f};
    s[2] = (rlab_param_spec){"item_bias", 1, {ni}, RLAB_INIT_ZERO, 0.0f};
}

/* Wrap P (owned from now on, also on failure). */
static rlab_model *bpr_wrap(rlab_params *P, int32_t D, int32_t nu, int32_t ni, rlab_err *err)
{
    bl_bpr *s = rlab_calloc(1, sizeof *s);
    if (!s) {
        rlab_params_free(P);
        rlab_errf(err, RLAB_ENOMEM, "out of memory");
        return NULL;
    }
    s->P = P;
    s->D = D;
    s->U = P->t[0].data;
    s->V = P->t[1].data;
    s->bias = P->t[2].data;
    rlab_model *m = rlab_model_new(&bpr_vt, s, NULL, "bprmf", err);
    if (m) {
        m->n_users = nu;
        m->n_items = ni;
        m->repr_dim = D;
        m->sample_dim = 2 * D;
    }
    return m;
}

/* ---- training --------------------------------------------------------------------------- */

/* Lazy optimiser state over the rows touched by a batch. */
typedef struct trainer {
    const bl_bpr_cfg *t;
    bl_bpr *s;
    rlab_params *P;
    int32_t nu, ni, D;
    float *gU, *gV, *gb; /* gradient rows, views into P->grad */
    float *m1, *m2;      /* Adam moments [P->count], parallel to P->data (NULL for SGD) */
    int64_t step;        /* optimiser steps so far */
    int32_t *tu, *ti;    /* touched users / items of the batch */
    int32_t ntu, nti;
    uint8_t *mu, *mi; /* touched flags */
    uint8_t *pu, *pi; /* under MPI: P's row flags of user_emb / item_emb (the sparse exchange
                         of rlab_fit_sync_grads), kept equal to mu / mi; else NULL */
} trainer;

static void touch_user(trainer *tr, int32_t u)
{
    if (!tr->mu[u]) {
        tr->mu[u] = 1;
        tr->tu[tr->ntu++] = u;
        if (tr->pu)
            tr->pu[u] = 1;
    }
}

static void touch_item(trainer *tr, int32_t i)
{
    if (!tr->mi[i]) {
        tr->mi[i] = 1;
        tr->ti[tr->nti++] = i;
        if (tr->pi)
            tr->pi[i] = 1;
    }
}

/* Update n floats at x (offset off into the block) from their gradient g, then zero g.
 * a = lr / (1 - beta1^t), ic2 = 1 / (1 - beta2^t) (bias corrections folded in). */
static void update_row(const trainer *tr, float *restrict x, float *restrict g, size_t off,
                       int32_t n, float lr, float a, float ic2)
{
    const float decay = 1.0f - lr * (float)tr->t->weight_decay;
    if (tr->t->opt == BL_OPT_SGD) {
        for (int32_t d = 0; d < n; d++) {
            x[d] = decay * x[d] - lr * g[d];
            g[d] = 0.0f;
        }
        return;
    }
    const float b1 = 0.9f, b2 = 0.999f, eps = 1e-8f;
    float *restrict m1 = tr->m1 + off, *restrict m2 = tr->m2 + off;
    for (int32_t d = 0; d < n; d++) {
        float gd = g[d];
        m1[d] = b1 * m1[d] + (1.0f - b1) * gd;
        m2[d] = b2 * m2[d] + (1.0f - b2) * gd * gd;
        x[d] = decay * x[d] - a * m1[d] / (sqrtf(m2[d] * ic2) + eps);
        g[d] = 0.0f;
    }
}

static void apply_updates(trainer *tr)
{
    tr->step++;
    float lr = (float)tr->t->lr;
    float a = lr / (1.0f - powf(0.9f, (float)tr->step)),
          ic2 = 1.0f / (1.0f - powf(0.999f, (float)tr->step));
    size_t D = (size_t)tr->D;
    size_t oU = (size_t)(tr->s->U - tr->P->data), oV = (size_t)(tr->s->V - tr->P->data),
           ob = (size_t)(tr->s->bias - tr->P->data);
    for (int32_t k = 0; k < tr->ntu; k++) {
        size_t u = (size_t)tr->tu[k];
        update_row(tr, tr->s->U + u * D, tr->gU + u * D, oU + u * D, tr->D, lr, a, ic2);
        tr->mu[u] = 0;
        if (tr->pu)
            tr->pu[u] = 0;
    }
    for (int32_t k = 0; k < tr->nti; k++) {
        size_t i = (size_t)tr->ti[k];
        update_row(tr, tr->s->V + i * D, tr->gV + i * D, oV + i * D, tr->D, lr, a, ic2);
        update_row(tr, tr->s->bias + i, tr->gb + i, ob + i, 1, lr, a, ic2);
        tr->mi[i] = 0;
        if (tr->pi)
            tr->pi[i] = 0;
    }
    tr->ntu = tr->nti = 0;
}

/* One triple's loss; accumulates its gradient (scaled by w) into the touched rows. */
static double triple(trainer *tr, int32_t u, int32_t i, int32_t j, float w)
{
    size_t D = (size_t)tr->D;
    const float *pu = tr->s->U + (size_t)u * D, *qi = tr->s->V + (size_t)i * D,
                *qj = tr->s->V + (size_t)j * D;
    float x = tr->s->bias[i] - tr->s->bias[j];
    for (size_t d = 0; d < D; d++)
        x += pu[d] * (qi[d] - qj[d]);
    /* loss = softplus(-x), dloss/dx = -sigmoid(-x) */
    double loss = x > 0 ? log1p(exp(-(double)x)) : -(double)x + log1p(exp((double)x));
    float g = -w / (1.0f + expf(x));
    float r = w * (float)tr->t->reg;
    float *gu = tr->gU + (size_t)u * D, *gi = tr->gV + (size_t)i * D, *gj = tr->gV + (size_t)j * D;
    for (size_t d = 0; d < D; d++) {
        float a = pu[d], b = qi[d], c = qj[d];
        gu[d] += g * (b - c) + r * a;
        gi[d] += g * a + r * b;
        gj[d] += -g * a + r * c;
    }
    tr->gb[i] += g;
    tr->gb[j] -= g;
    touch_user(tr, u);
    touch_item(tr, i);
    touch_item(tr, j);
    return loss;
}

/* ---- the core loop's steps -------------------------------------------------------------- */

typedef struct bpr_state {
    const rlab_fit *fit;
    trainer tr;
    rlab_model *m;
    rlab_sampler *smp;
    rlab_bpr_batcher *bat;
    rlab_rng nrng; /* extra negatives */
    int32_t *negs;
    int64_t npos;
} bpr_state;

static void bpr_end(void *state)
{
    bpr_state *st = state;
    rlab_bpr_batcher_free(st->bat);
    rlab_sampler_free(st->smp);
    rlab_free(st->negs);
    rlab_free(st->tr.tu);
    rlab_free(st->tr.ti);
    rlab_free(st->tr.mu);
    rlab_free(st->tr.mi);
    rlab_free(st->tr.m1);
    rlab_free(st->tr.m2);
    rlab_model_release(st->m);
    rlab_free(st);
}

static int bpr_begin(const rlab_fit *fit, void **state, rlab_err *err)
{
    const rlab_view *d = fit->view;
    const bl_bpr_cfg *t = fit->cfg;
    const uint64_t seed = (uint64_t)fit->opts->seed;
    bpr_state *st = rlab_calloc(1, sizeof *st);
    if (!st)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    st->fit = fit;
    trainer *tr = &st->tr;
    *tr = (trainer){.t = t, .nu = d->n_users, .ni = d->n_items, .D = t->dim};
    rlab_param_spec specs[3];
    bpr_specs(specs, tr->nu, tr->ni, tr->D);
    rlab_rng rng;
    rlab_rng_seed(&rng, seed);
    int rc = RLAB_OK;
    rlab_params *P = rlab_params_new(specs, 3, &rng, err);
    if (P && !(st->m = bpr_wrap(P, tr->D, tr->nu, tr->ni, err)))
        P = NULL; /* bpr_wrap owns P, also when it fails (a double free the sweep found) */
    if (!P) {
        rc = err->code ? err->code : RLAB_ENOMEM;
        goto fail;
    }
    tr->s = st->m->impl;
    tr->P = P;
    snprintf(tr->s->info, sizeof tr->s->info, "%d epochs, %s lr=%g reg=%g", fit->opts->epochs,
             t->opt == BL_OPT_SGD ? "sgd" : "adamw", t->lr, t->reg);
    tr->gU = P->t[0].grad;
    tr->gV = P->t[1].grad;
    tr->gb = P->t[2].grad;
    tr->tu = rlab_malloc((size_t)tr->nu * sizeof *tr->tu);
    tr->ti = rlab_malloc((size_t)tr->ni * sizeof *tr->ti);
    tr->mu = rlab_calloc((size_t)tr->nu, 1);
    tr->mi = rlab_calloc((size_t)tr->ni, 1);
    st->negs = rlab_malloc((size_t)(t->neg > 1 ? t->neg : 1) * sizeof *st->negs);
    if (t->opt == BL_OPT_ADAMW) {
        tr->m1 = rlab_calloc(P->count, sizeof(float));
        tr->m2 = rlab_calloc(P->count, sizeof(float));
    }
    if (!tr->tu || !tr->ti || !tr->mu || !tr->mi || !st->negs ||
        (t->opt == BL_OPT_ADAMW && (!tr->m1 || !tr->m2))) {
        rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
        goto fail;
    }
    if (rlab_mpi_size() > 1) { /* data-parallel: embedding rows travel sparsely */
        if (rlab_params_track_rows(P, &P->t[0], err) || rlab_params_track_rows(P, &P->t[1], err)) {
            rc = err->code;
            goto fail;
        }
        tr->pu = P->row_touched[0];
        tr->pi = P->row_touched[1];
    }
    st->npos = d->train.off[d->n_users];
    if (st->npos == 0) {
        rc = rlab_errf(err, RLAB_EINVAL, "no training interactions");
        goto fail;
    }
    st->smp = rlab_sampler_new_uniform(tr->ni, err);
    if (!st->smp || rlab_sampler_set_exclude(st->smp, &d->train, err)) {
        rc = err->code ? err->code : RLAB_ENOMEM;
        goto fail;
    }
    st->bat = rlab_bpr_batcher_new(&d->train, st->smp, t->batch, seed ^ 0x5bd1e995u, err);
    if (!st->bat) {
        rc = err->code;
        goto fail;
    }
    rlab_rng_seed(&st->nrng, seed ^ 0x9e3779b97f4a7c15ull);
    *state = st;
    return RLAB_OK;
fail:
    if (!st->m)
        rlab_params_free(P);
    bpr_end(st);
    return rc;
}

static int bpr_epoch(void *state, int e, int64_t *n_steps, rlab_err *err)
{
    (void)err;
    bpr_state *st = state;
    if (e > 1)
        rlab_bpr_batcher_epoch(st->bat);
    *n_steps = (st->npos + st->tr.t->batch - 1) / st->tr.t->batch;
    return RLAB_OK;
}

/* One mini-batch: its triples' mean loss, weighted by their count in the epoch mean. */
static int bpr_step(void *state, int64_t i, double *loss, double *weight, double *parts,
                    rlab_err *err)
{
    (void)i;
    (void)parts;
    bpr_state *st = state;
    const bl_bpr_cfg *t = st->tr.t;
    int n = 0, rc = rlab_bpr_batcher_next(st->bat, &n, err);
    if (rc)
        return rc;
    double sum = 0.0;
    /* w: the triple's share of the global batch mean (also under MPI, so the summed shards
     * are the one-process gradient: rlab_fit_sync_grads scale 1) */
    float w = 1.0f / (float)((n ? n : 1) * t->neg);
    int64_t lo, hi; /* this rank's rows (all of them without MPI) */
    rlab_fit_shard(n, &lo, &hi);
    for (int r = 0; r < n; r++) {
        int32_t u = st->bat->user[r], p = st->bat->pos[r];
        st->negs[0] = st->bat->neg[r];
        /* every rank draws every row's negatives: the generator stays in step */
        if (t->neg > 1 &&
            (rc = rlab_sampler_draw_n(st->smp, &st->nrng, u, st->negs + 1, t->neg - 1, err)))
            return rc;
        if (r < lo || r >= hi)
            continue;
        for (int k = 0; k < t->neg; k++)
            sum += triple(&st->tr, u, p, st->negs[k], w);
    }
    trainer *tr = &st->tr;
    if (tr->pu && n > 0) { /* MPI: sum the shards, then update the union of touched rows */
        if ((rc = rlab_fit_sync_grads(tr->P, 1.0, err)))
            return rc;
        for (int32_t u = 0; u < tr->nu; u++)
            if (tr->pu[u] && !tr->mu[u])
                touch_user(tr, u);
        for (int32_t it = 0; it < tr->ni; it++)
            if (tr->pi[it] && !tr->mi[it])
                touch_item(tr, it);
    }
    if (n > 0)
        apply_updates(tr);
    *weight = (double)(hi - lo) * t->neg;
    *loss = hi > lo ? sum / *weight : 0.0;
    return RLAB_OK;
}

static rlab_model *bpr_model(void *state) { return ((bpr_state *)state)->m; }
static rlab_params *bpr_params(void *state) { return ((bpr_state *)state)->tr.P; }

const rlab_fit_ops bl_bpr_fit = {.begin = bpr_begin,
                                 .epoch = bpr_epoch,
                                 .step = bpr_step,
                                 .model = bpr_model,
                                 .params = bpr_params,
                                 .end = bpr_end,
                                 .data_parallel = 1};

rlab_model *bl_bpr_restore(rlab_host *host, const rlab_ckpt *ck, const void *cfg, rlab_err *err)
{
    (void)host;
    const bl_bpr_cfg *c = cfg;
    int32_t nu, ni;
    if (bl_ckpt_sizes(ck, &nu, &ni, err))
        return NULL;
    rlab_param_spec specs[3];
    bpr_specs(specs, nu, ni, c->dim);
    rlab_params *P = bl_ckpt_params(ck, specs, 3, err);
    if (!P)
        return NULL;
    rlab_model *m = bpr_wrap(P, c->dim, nu, ni, err);
    const char *info = rlab_ckpt_meta_get(ck, "bprmf.info");
    if (m && info)
        snprintf(((bl_bpr *)m->impl)->info, sizeof((bl_bpr *)m->impl)->info, "%s", info);
    return m;
}
