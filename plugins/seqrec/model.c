/*
 * plugins/seqrec/model.c: SASRec / MQSA-TED as registry models (model/model.h): score_all from
 * a query's history (an empty history is the padding-only window: a cold start),
 * user_repr = the mixed hidden state at the last position, sample_repr = [that state ; the
 * item's embedding]; the checkpoint holds the parameter
 * block (the host adds the config and the users' histories).
 */
#include "seqrec.h"

#include "model/model.h"
#include "tensor/checkpoint.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Inference tapes are kept between calls: a tape's arena is hundreds of MB of address space,
 * and faulting its pages in again for every batch of users cost 5-10x the forward pass in an
 * evaluation. A call takes a tape from the pool (or makes one), and gives it back; the pool
 * is what makes a model callable from several threads at once. */
enum { SEQREC_TAPE_POOL = 4, SEQREC_TAPE_ROWS = 512 };

typedef struct seqrec_model {
    seqrec_net *net;
    pthread_mutex_t mu;
    rlab_tape *pool[SEQREC_TAPE_POOL];
    int npool;
} seqrec_model;

static rlab_tape *tape_take(seqrec_model *sm, rlab_err *err)
{
    rlab_tape *t = NULL;
    pthread_mutex_lock(&sm->mu);
    if (sm->npool > 0)
        t = sm->pool[--sm->npool];
    pthread_mutex_unlock(&sm->mu);
    if (!t) /* big enough for any call: seqrec_infer_tape runs SEQREC_TAPE_ROWS rows at once */
        t = rlab_tape_new(seqrec_arena_bytes(&sm->net->cfg, sm->net->n_items, SEQREC_TAPE_ROWS,
                                             sm->net->cfg.maxlen, 0),
                          1024, err);
    return t;
}

static void tape_give(seqrec_model *sm, rlab_tape *t)
{
    pthread_mutex_lock(&sm->mu);
    if (sm->npool < SEQREC_TAPE_POOL) {
        sm->pool[sm->npool++] = t;
        t = NULL;
    }
    pthread_mutex_unlock(&sm->mu);
    rlab_tape_free(t);
}

seqrec_net *seqrec_model_net(const rlab_model *m) { return ((const seqrec_model *)m->impl)->net; }

/* The window of query q into ids[maxlen]. */
static void query_window(const seqrec_model *sm, const rlab_query *q, int32_t *ids)
{
    const seqrec_net *net = sm->net;
    if (q->n_hist > 0 && q->hist)
        seqrec_window(net, q->hist, q->n_hist, ids);
    else
        seqrec_window(net, NULL, 0, ids);
}

static int run_queries(const rlab_model *m, const rlab_query *q, int nq, float *scores, float *repr,
                       rlab_err *err)
{
    seqrec_model *sm = m->impl; /* the tape pool is the only state a call touches */
    const int T = sm->net->cfg.maxlen;
    int32_t *ids = rlab_malloc((size_t)(nq ? nq : 1) * (size_t)T * sizeof(int32_t));
    if (!ids)
        return rlab_errf(err, RLAB_ENOMEM, "seqrec: out of memory");
    rlab_tape *tape = tape_take(sm, err);
    if (!tape) {
        rlab_free(ids);
        return err->code ? err->code : RLAB_ENOMEM;
    }
    for (int b = 0; b < nq; b++) {
        query_window(sm, &q[b], ids + (size_t)b * T);
        /* an empty history cannot be encoded: use the padding-only window's last slot as a
         * cold start (all-zero hidden state, so every score is 0 before the final LN) */
    }
    int rc = seqrec_infer_tape(sm->net, tape, ids, nq, scores, repr, err);
    tape_give(sm, tape);
    rlab_free(ids);
    return rc;
}

static int m_score_all(const rlab_model *m, const rlab_query *q, int nq, float *out, rlab_err *err)
{
    return run_queries(m, q, nq, out, NULL, err);
}

static int m_user_repr(const rlab_model *m, const rlab_query *q, int nq, float *out, rlab_err *err)
{
    return run_queries(m, q, nq, NULL, out, err);
}

/* Sample representation: [h ; e_i] (2d), h the hidden state at the last position (user_repr)
 * and e_i the item's embedding row; score = <h, e_i>, as in score_all. */
static int m_sample_repr(const rlab_model *m, const rlab_query *q, int nq, const int32_t *items,
                         float *repr, float *score, rlab_err *err)
{
    const seqrec_net *net = ((const seqrec_model *)m->impl)->net;
    const int d = net->cfg.dim;
    const float *E = net->P->t[net->E].data; /* [n_items + 1][d] */
    float *h = rlab_malloc((size_t)(nq ? nq : 1) * (size_t)d * sizeof(float));
    if (!h)
        return rlab_errf(err, RLAB_ENOMEM, "seqrec: out of memory");
    int rc = nq > 0 ? run_queries(m, q, nq, NULL, h, err) : RLAB_OK;
    for (int b = 0; rc == RLAB_OK && b < nq; b++) {
        const float *hb = h + (size_t)b * d, *e = E + (size_t)items[b] * d;
        if (repr) {
            memcpy(repr + (size_t)b * 2 * d, hb, (size_t)d * sizeof(float));
            memcpy(repr + ((size_t)b * 2 + 1) * d, e, (size_t)d * sizeof(float));
        }
        if (score) {
            float acc = 0.0f;
            for (int k = 0; k < d; k++)
                acc += hb[k] * e[k];
            score[b] = acc;
        }
    }
    rlab_free(h);
    return rc;
}

static void m_describe(const rlab_model *m, char *buf, size_t size)
{
    const seqrec_net *net = ((const seqrec_model *)m->impl)->net;
    char c[320];
    seqrec_config_str(&net->cfg, c, sizeof c);
    snprintf(buf, size, "%s (%d items)", c, (int)net->n_items);
}

static void m_free(rlab_model *m)
{
    seqrec_model *sm = m->impl;
    if (!sm)
        return;
    seqrec_net_free(sm->net);
    for (int i = 0; i < sm->npool; i++)
        rlab_tape_free(sm->pool[i]);
    pthread_mutex_destroy(&sm->mu);
    rlab_free(sm);
}

/* ---- checkpoints --------------------------------------------------------------------------- */

static int m_tensors(const rlab_model *m, rlab_ckpt *ck, rlab_err *err)
{
    const seqrec_model *sm = m->impl;
    const seqrec_net *net = sm->net;
    int rc = rlab_ckpt_add_params(ck, net->P, NULL, err);
    if (!rc && net->sid >= 0 && net->sid_ids) { /* semid: the code rows, and L and K */
        char v[24];
        snprintf(v, sizeof v, "%d", net->cfg.sid_levels);
        rc = rlab_ckpt_set_meta(ck, "seqrec.sid_levels", v, err);
        snprintf(v, sizeof v, "%d", net->cfg.sid_codes);
        if (!rc)
            rc = rlab_ckpt_set_meta(ck, "seqrec.sid_codes", v, err);
        if (!rc)
            rc = rlab_ckpt_add(ck, "seqrec.sid_ids", RLAB_DT_I32, 2,
                               (int64_t[]){(int64_t)net->n_items + 1, net->cfg.sid_levels},
                               net->sid_ids, err);
    }
    return rc;
}

static const rlab_model_vt seqrec_vt = {
    .score_all = m_score_all,
    .user_repr = m_user_repr,
    .tensors = m_tensors,
    .describe = m_describe,
    .free = m_free,
    .sample_repr = m_sample_repr,
};

rlab_model *seqrec_model_wrap(seqrec_net *net, const char *name, rlab_err *err)
{
    seqrec_model *sm = rlab_calloc(1, sizeof *sm);
    if (!sm) {
        seqrec_net_free(net);
        rlab_errf(err, RLAB_ENOMEM, "seqrec: out of memory");
        return NULL;
    }
    sm->net = net;
    pthread_mutex_init(&sm->mu, NULL);
    rlab_model *m = rlab_model_new(&seqrec_vt, sm, name,
                                   net->cfg.model == SEQREC_MQSA ? "mqsa" : "sasrec", err);
    if (!m)
        return NULL;
    m->n_items = net->n_items;
    m->repr_dim = net->cfg.dim;
    m->sample_dim = 2 * net->cfg.dim;
    return m;
}

rlab_model *seqrec_restore(rlab_host *host, const rlab_ckpt *ck, const void *cfg, rlab_err *err)
{
    (void)host;
    seqrec_config c = *(const seqrec_config *)cfg;
    const char *kind = rlab_ckpt_meta_get(ck, "reclab.kind");
    c.model = kind && strcmp(kind, "mqsa") == 0 ? SEQREC_MQSA : SEQREC_SASREC;
    c.stats = NULL;
    /* the item count is the shape of the item table (row n_items is the padding) */
    int nd = 0;
    int64_t sh[8];
    if (!rlab_ckpt_tensor(ck, "item_emb", RLAB_DT_F32, &nd, sh, err))
        return NULL;
    if (nd != 2 || sh[0] < 2 || sh[0] - 1 > INT32_MAX) {
        rlab_errf(err, RLAB_EFORMAT, "checkpoint: tensor 'item_emb' has a bad shape");
        return NULL;
    }
    const int32_t N = (int32_t)(sh[0] - 1);
    /* semid: L, K and the code rows (l K + code) of every item */
    const char *sl = rlab_ckpt_meta_get(ck, "seqrec.sid_levels");
    const char *sk = rlab_ckpt_meta_get(ck, "seqrec.sid_codes");
    const int32_t *sid = NULL;
    if (sl) {
        c.sid_levels = atoi(sl);
        c.sid_codes = sk ? atoi(sk) : 0;
        sid = rlab_ckpt_tensor(ck, "seqrec.sid_ids", RLAB_DT_I32, &nd, sh, err);
        if (!sid)
            return NULL;
        if (c.sid_levels < 1 || c.sid_levels > 64 || c.sid_codes < 1 || nd != 2 ||
            sh[0] != (int64_t)N + 1 || sh[1] != c.sid_levels) {
            rlab_errf(err, RLAB_EFORMAT, "checkpoint: semantic-ID tables do not match");
            return NULL;
        }
    }
    seqrec_net *net = seqrec_net_new(&c, N, err);
    if (!net)
        return NULL;
    if (rlab_ckpt_get_params(ck, net->P, NULL, 0, err)) {
        seqrec_net_free(net);
        return NULL;
    }
    if (sid) {
        const int L = c.sid_levels;
        int32_t *codes = rlab_malloc(((size_t)N + 1) * (size_t)L * sizeof *codes);
        int rc = codes ? RLAB_OK : rlab_errf(err, RLAB_ENOMEM, "seqrec: out of memory");
        for (int64_t x = 0; !rc && x < (int64_t)N * L; x++)
            codes[x] = sid[x] - (int32_t)(x % L) * c.sid_codes;
        if (!rc)
            rc = seqrec_net_set_sid(net, codes, L, err);
        rlab_free(codes);
        if (rc) {
            seqrec_net_free(net);
            return NULL;
        }
    }
    return seqrec_model_wrap(net, NULL, err);
}
