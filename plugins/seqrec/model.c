/*
 * plugins/seqrec/model.c: SASRec / MQSA-TED as registry models (model/model.h): score_all from a
 * query's history (or the user's stored history when the query has none), user_repr = the
 * mixed hidden state at the last position, save/load as safetensors (the config in
 * __metadata__) plus a sidecar "<path>.hist" with the users' histories.
 */
#include "seqrec.h"

#include "model/model.h"
#include "tensor/checkpoint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct seqrec_model {
    seqrec_net *net;
    rlab_seqs hist; /* may be empty (n_users 0) */
} seqrec_model;

seqrec_net *seqrec_model_net(const rlab_model *m) { return ((const seqrec_model *)m->impl)->net; }

int64_t seqrec_model_user_hist(const rlab_model *m, int32_t u, const int32_t **items)
{
    const seqrec_model *sm = m->impl;
    *items = NULL;
    if (u < 0 || u >= sm->hist.n_users)
        return 0;
    *items = sm->hist.items + sm->hist.off[u];
    return sm->hist.off[u + 1] - sm->hist.off[u];
}

/* The window of query q into ids[maxlen]. */
static void query_window(const seqrec_model *sm, const rlab_query *q, int32_t *ids)
{
    const seqrec_net *net = sm->net;
    if (q->n_hist > 0 && q->hist) {
        seqrec_window(net, q->hist, q->n_hist, ids);
    } else if (q->user >= 0 && q->user < sm->hist.n_users) {
        const int64_t a = sm->hist.off[q->user], b = sm->hist.off[q->user + 1];
        seqrec_window(net, sm->hist.items + a, (int32_t)(b - a), ids);
    } else {
        seqrec_window(net, NULL, 0, ids);
    }
}

static int run_queries(const rlab_model *m, const rlab_query *q, int nq, float *scores, float *repr,
                       rlab_err *err)
{
    const seqrec_model *sm = m->impl;
    const int T = sm->net->cfg.maxlen;
    int32_t *ids = rlab_malloc((size_t)(nq ? nq : 1) * (size_t)T * sizeof(int32_t));
    if (!ids)
        return rlab_errf(err, RLAB_ENOMEM, "seqrec: out of memory");
    for (int b = 0; b < nq; b++) {
        query_window(sm, &q[b], ids + (size_t)b * T);
        /* an empty history cannot be encoded: use the padding-only window's last slot as a
         * cold start (all-zero hidden state, so every score is 0 before the final LN) */
    }
    int rc = seqrec_infer(sm->net, ids, nq, scores, repr, err);
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
    rlab_seqs_clear(&sm->hist);
    rlab_free(sm);
}

/* ---- save / load -------------------------------------------------------------------------- */

#define NKV 26
static int m_save(const rlab_model *m, const char *path, rlab_err *err)
{
    const seqrec_model *sm = m->impl;
    const seqrec_net *net = sm->net;
    const seqrec_config *c = &net->cfg;
    char v[NKV][40];
    rlab_kv kv[NKV];
    int n = 0;
#define KVI(k, x)                                                                                  \
    (snprintf(v[n], sizeof v[n], "%lld", (long long)(x)), kv[n].key = k, kv[n].value = v[n], n++)
#define KVF(k, x)                                                                                  \
    (snprintf(v[n], sizeof v[n], "%.9g", (double)(x)), kv[n].key = k, kv[n].value = v[n], n++)
    KVI("seqrec.model", c->model);
    KVI("seqrec.n_items", net->n_items);
    KVI("seqrec.dim", c->dim);
    KVI("seqrec.blocks", c->blocks);
    KVI("seqrec.heads", c->heads);
    KVI("seqrec.maxlen", c->maxlen);
    KVF("seqrec.dropout", c->dropout);
    KVF("seqrec.lr", c->lr);
    KVF("seqrec.l2", c->l2);
    KVI("seqrec.loss", c->loss);
    KVI("seqrec.ln", c->ln);
    KVF("seqrec.ln_eps", c->ln_eps);
    KVI("seqrec.L", c->L);
    KVF("seqrec.alpha", c->alpha);
    KVF("seqrec.lambda_kd", c->lambda_kd);
    KVF("seqrec.tau", c->tau);
    KVI("seqrec.ted", c->ted);
    KVI("seqrec.branches", c->branches);
    KVI("seqrec.pad_logit", c->pad_logit);
    KVI("seqrec.init", c->init);
    KVI("seqrec.batch", c->batch);
    KVI("seqrec.seed", (long long)c->seed);
#undef KVI
#undef KVF
    int rc = rlab_ckpt_save(path, net->P, NULL, kv, n, err);
    if (rc)
        return rc;
    char hp[1024];
    snprintf(hp, sizeof hp, "%s.hist", path);
    FILE *f = fopen(hp, "wb");
    if (!f)
        return rlab_errf(err, RLAB_EIO, "cannot write %s", hp);
    const int32_t U = sm->hist.n_users;
    const int64_t nn = U ? sm->hist.off[U] : 0;
    int ok = fwrite("SQRH", 1, 4, f) == 4 && fwrite(&U, sizeof U, 1, f) == 1 &&
             fwrite(&nn, sizeof nn, 1, f) == 1;
    if (ok && U)
        ok = fwrite(sm->hist.off, sizeof(int64_t), (size_t)U + 1, f) == (size_t)U + 1 &&
             fwrite(sm->hist.items, sizeof(int32_t), (size_t)nn, f) == (size_t)nn;
    if (fclose(f) != 0 || !ok)
        return rlab_errf(err, RLAB_EIO, "cannot write %s", hp);
    return RLAB_OK;
}

static int meta_num(const char *path, const char *key, double *out, rlab_err *err)
{
    char buf[64];
    int rc = rlab_ckpt_meta(path, key, buf, sizeof buf, err);
    if (rc)
        return rc;
    *out = strtod(buf, NULL);
    return RLAB_OK;
}

static const rlab_model_vt seqrec_vt = {
    .score_all = m_score_all,
    .user_repr = m_user_repr,
    .save = m_save,
    .describe = m_describe,
    .free = m_free,
};

rlab_model *seqrec_model_wrap(seqrec_net *net, const rlab_seqs *hist, const char *name,
                              const char *dataset, rlab_err *err)
{
    seqrec_model *sm = rlab_calloc(1, sizeof *sm);
    if (!sm) {
        seqrec_net_free(net);
        rlab_errf(err, RLAB_ENOMEM, "seqrec: out of memory");
        return NULL;
    }
    sm->net = net;
    if (hist && hist->n_users > 0) {
        const int32_t U = hist->n_users;
        const int64_t n = hist->off[U];
        sm->hist.n_users = U;
        sm->hist.off = rlab_malloc(((size_t)U + 1) * sizeof(int64_t));
        sm->hist.items = rlab_malloc((size_t)(n ? n : 1) * sizeof(int32_t));
        if (!sm->hist.off || !sm->hist.items) {
            m_free(&(rlab_model){.impl = sm});
            rlab_errf(err, RLAB_ENOMEM, "seqrec: out of memory");
            return NULL;
        }
        memcpy(sm->hist.off, hist->off, ((size_t)U + 1) * sizeof(int64_t));
        memcpy(sm->hist.items, hist->items, (size_t)n * sizeof(int32_t));
    }
    rlab_model *m = rlab_model_new(&seqrec_vt, sm, name,
                                   net->cfg.model == SEQREC_MQSA ? "mqsa" : "sasrec", err);
    if (!m)
        return NULL;
    m->n_items = net->n_items;
    m->n_users = sm->hist.n_users;
    m->repr_dim = net->cfg.dim;
    if (dataset)
        snprintf(m->dataset, sizeof m->dataset, "%s", dataset);
    return m;
}

rlab_model *seqrec_model_load_file(const char *path, rlab_err *err)
{
    double v[22];
    static const char *const keys[22] = {
        "seqrec.model", "seqrec.n_items",  "seqrec.dim",       "seqrec.blocks",
        "seqrec.heads", "seqrec.maxlen",   "seqrec.dropout",   "seqrec.lr",
        "seqrec.l2",    "seqrec.loss",     "seqrec.ln",        "seqrec.ln_eps",
        "seqrec.L",     "seqrec.alpha",    "seqrec.lambda_kd", "seqrec.tau",
        "seqrec.ted",   "seqrec.branches", "seqrec.pad_logit", "seqrec.init",
        "seqrec.batch", "seqrec.seed"};
    for (int i = 0; i < 22; i++)
        if (meta_num(path, keys[i], &v[i], err))
            return NULL;
    seqrec_config c = seqrec_config_defaults((int)v[0]);
    c.dim = (int)v[2];
    c.blocks = (int)v[3];
    c.heads = (int)v[4];
    c.maxlen = (int)v[5];
    c.dropout = (float)v[6];
    c.lr = (float)v[7];
    c.l2 = (float)v[8];
    c.loss = (int)v[9];
    c.ln = (int)v[10];
    c.ln_eps = (float)v[11];
    c.L = (int)v[12];
    c.alpha = (float)v[13];
    c.lambda_kd = (float)v[14];
    c.tau = (float)v[15];
    c.ted = (int)v[16];
    c.branches = (int)v[17];
    c.pad_logit = (int)v[18];
    c.init = (int)v[19];
    c.batch = (int)v[20];
    c.seed = (uint64_t)v[21];
    seqrec_net *net = seqrec_net_new(&c, (int32_t)v[1], err);
    if (!net)
        return NULL;
    if (rlab_ckpt_load(path, net->P, NULL, 1, err)) {
        seqrec_net_free(net);
        return NULL;
    }
    rlab_seqs hist;
    memset(&hist, 0, sizeof hist);
    char hp[1024];
    snprintf(hp, sizeof hp, "%s.hist", path);
    FILE *f = fopen(hp, "rb");
    if (f) {
        char mg[4];
        int32_t U = 0;
        int64_t nn = 0;
        int ok = fread(mg, 1, 4, f) == 4 && memcmp(mg, "SQRH", 4) == 0 &&
                 fread(&U, sizeof U, 1, f) == 1 && fread(&nn, sizeof nn, 1, f) == 1 && U >= 0 &&
                 nn >= 0;
        if (ok && U > 0) {
            hist.n_users = U;
            hist.off = rlab_malloc(((size_t)U + 1) * sizeof(int64_t));
            hist.items = rlab_malloc((size_t)(nn ? nn : 1) * sizeof(int32_t));
            ok = hist.off && hist.items &&
                 fread(hist.off, sizeof(int64_t), (size_t)U + 1, f) == (size_t)U + 1 &&
                 fread(hist.items, sizeof(int32_t), (size_t)nn, f) == (size_t)nn &&
                 hist.off[U] == nn;
            for (int32_t u = 0; ok && u < U; u++)
                ok = hist.off[u] <= hist.off[u + 1];
            for (int64_t k = 0; ok && k < nn; k++)
                ok = hist.items[k] >= 0 && hist.items[k] < net->n_items;
        }
        fclose(f);
        if (!ok) {
            rlab_seqs_clear(&hist);
            seqrec_net_free(net);
            rlab_errf(err, RLAB_EFORMAT, "%s: not a seqrec history file", hp);
            return NULL;
        }
    }
    rlab_model *m = seqrec_model_wrap(net, &hist, NULL, NULL, err);
    rlab_seqs_clear(&hist);
    return m;
}
