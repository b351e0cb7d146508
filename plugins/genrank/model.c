/*
 * plugins/genrank/model.c: OneRec models in the registry (model/model.h). score_all is the
 * generative ranking of gen.c (the constrained beam over the first item, then the rest by
 * first-level probability); the checkpoint holds the parameters, the item codes
 * (genrank.codes I32 [N, Lt]), the training popularity (genrank.pop) and, once trained, the
 * reward model (reward.*), with metadata genrank.ipa_iter and genrank.reward_dim, and Adam's state
 * after the last update (genrank.adam_m / adam_v F32 [P->count], metadata genrank.adam_t; read
 * when present, for ipa_adam=keep).
 */
#include "genrank.h"

#include "tensor/checkpoint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int m_score_all(const rlab_model *m, const rlab_query *q, int nq, float *out, rlab_err *err)
{
    const genrank_model *gm = m->impl;
    for (int b = 0; b < nq; b++) {
        int rc = genrank_rank_scores(gm->net, q[b].hist, q[b].n_hist,
                                     out + (size_t)b * (size_t)m->n_items, err);
        if (rc)
            return rc;
    }
    return RLAB_OK;
}

static void m_describe(const rlab_model *m, char *buf, size_t size)
{
    const genrank_model *gm = m->impl;
    const genrank_cfg *c = &gm->net->cfg;
    snprintf(buf, size,
             "%s m=%d Lt=%d d=%d %d+%d blocks %d experts top-%d beam %d, IPA iterations %d%s",
             m->kind, c->session, gm->net->codes.Lt, c->dim, c->enc_layers, c->dec_layers,
             c->experts, c->topk, c->beam, gm->net->ipa_iter, gm->reward ? ", reward model" : "");
}

static void m_free(rlab_model *m)
{
    genrank_model *gm = m->impl;
    if (!gm)
        return;
    genrank_net_free(gm->net);
    genrank_reward_free(gm->reward);
    rlab_free(gm);
}

static int m_tensors(const rlab_model *m, rlab_ckpt *ck, rlab_err *err)
{
    const genrank_model *gm = m->impl;
    const genrank_net *net = gm->net;
    char buf[32];
    int rc = rlab_ckpt_add_params(ck, net->P, NULL, err);
    if (!rc)
        rc = rlab_ckpt_add(ck, "genrank.codes", RLAB_DT_I32, 2,
                           (int64_t[]){net->codes.n_items, net->codes.Lt}, net->codes.codes, err);
    if (!rc && net->pop)
        rc = rlab_ckpt_add(ck, "genrank.pop", RLAB_DT_I32, 1, (int64_t[]){net->codes.n_items},
                           net->pop, err);
    snprintf(buf, sizeof buf, "%d", net->ipa_iter);
    if (!rc)
        rc = rlab_ckpt_set_meta(ck, "genrank.ipa_iter", buf, err);
    if (!rc && net->adam_m) { /* Adam's state: ipa_adam=keep continues it after a load */
        const int64_t n = (int64_t)net->P->count;
        rc = rlab_ckpt_add(ck, "genrank.adam_m", RLAB_DT_F32, 1, &n, net->adam_m, err);
        if (!rc)
            rc = rlab_ckpt_add(ck, "genrank.adam_v", RLAB_DT_F32, 1, &n, net->adam_v, err);
        snprintf(buf, sizeof buf, "%lld", (long long)net->adam_t);
        if (!rc)
            rc = rlab_ckpt_set_meta(ck, "genrank.adam_t", buf, err);
    }
    if (!rc && gm->reward) {
        rc = rlab_ckpt_add_params(ck, gm->reward->P, NULL, err);
        snprintf(buf, sizeof buf, "%d", gm->reward->d);
        if (!rc)
            rc = rlab_ckpt_set_meta(ck, "genrank.reward_dim", buf, err);
    }
    return rc;
}

static const rlab_model_vt genrank_vt = {
    .score_all = m_score_all,
    .tensors = m_tensors,
    .describe = m_describe,
    .free = m_free,
};

genrank_model *genrank_model_of(const rlab_model *m)
{
    return m && m->vt == &genrank_vt ? m->impl : NULL;
}

rlab_model *genrank_model_wrap(genrank_net *net, genrank_reward *r, const char *name,
                               const char *kind, rlab_err *err)
{
    genrank_model *gm = rlab_calloc(1, sizeof *gm);
    if (!gm) {
        genrank_net_free(net);
        genrank_reward_free(r);
        rlab_errf(err, RLAB_ENOMEM, "genrank: out of memory");
        return NULL;
    }
    gm->net = net;
    gm->reward = r;
    rlab_model *m = rlab_model_new(&genrank_vt, gm, name, kind, err);
    if (!m)
        return NULL;
    m->n_items = net->codes.n_items;
    return m;
}

rlab_model *genrank_restore(rlab_host *host, const rlab_ckpt *ck, const void *cfg, rlab_err *err)
{
    (void)host;
    genrank_cfg c = *(const genrank_cfg *)cfg;
    int nd = 0;
    int64_t sh[8];
    const int32_t *codes = rlab_ckpt_tensor(ck, "genrank.codes", RLAB_DT_I32, &nd, sh, err);
    if (!codes)
        return NULL;
    if (nd != 2 || sh[0] < 1 || sh[0] > INT32_MAX || sh[1] < 1 || sh[1] > GENRANK_MAX_LEVELS) {
        rlab_errf(err, RLAB_EFORMAT, "checkpoint: tensor 'genrank.codes' has a bad shape");
        return NULL;
    }
    const char *kind = rlab_ckpt_meta_get(ck, "reclab.kind");
    genrank_net *net = genrank_net_new(&c, codes, (int32_t)sh[0], (int)sh[1], err);
    if (!net)
        return NULL;
    if (rlab_ckpt_get_params(ck, net->P, NULL, 0, err)) {
        genrank_net_free(net);
        return NULL;
    }
    const char *it = rlab_ckpt_meta_get(ck, "genrank.ipa_iter");
    net->ipa_iter = it ? atoi(it) : 0;
    int64_t ps[8];
    rlab_err e2 = {0};
    const int32_t *pop = rlab_ckpt_tensor(ck, "genrank.pop", RLAB_DT_I32, &nd, ps, &e2);
    if (pop && nd == 1 && ps[0] == sh[0]) {
        net->pop = rlab_malloc((size_t)sh[0] * sizeof(int32_t));
        if (net->pop)
            memcpy(net->pop, pop, (size_t)sh[0] * sizeof(int32_t));
    }
    const float *am = rlab_ckpt_tensor(ck, "genrank.adam_m", RLAB_DT_F32, &nd, ps, &e2);
    const int am_ok = am && nd == 1 && ps[0] == (int64_t)net->P->count;
    const float *av = rlab_ckpt_tensor(ck, "genrank.adam_v", RLAB_DT_F32, &nd, ps, &e2);
    const char *at = rlab_ckpt_meta_get(ck, "genrank.adam_t");
    if (am_ok && av && nd == 1 && ps[0] == (int64_t)net->P->count && at &&
        genrank_net_set_adam(net, am, av, atoll(at), err)) {
        genrank_net_free(net);
        return NULL;
    }
    genrank_reward *r = NULL;
    const char *rd = rlab_ckpt_meta_get(ck, "genrank.reward_dim");
    if (rd) {
        r = genrank_reward_new((int)sh[0], atoi(rd), c.session, c.maxlen, c.like_w, c.seed, err);
        if (!r || rlab_ckpt_get_params(ck, r->P, NULL, 0, err)) {
            genrank_reward_free(r);
            genrank_net_free(net);
            return NULL;
        }
    }
    return genrank_model_wrap(net, r, NULL, kind ? kind : "onerec", err);
}
