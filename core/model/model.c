/*
 * core/model/model.c: model objects (reference counting) and the generic implementations
 * behind the rlab_model_* calls: score via score_all, score_all via score, top-k via
 * score_all plus a bounded heap.
 */
#include "model/model.h"
#include "tensor/checkpoint.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Queries scored at once by the generic paths: bounds the [chunk][n_items] buffer. */
#define RLAB_MODEL_CHUNK 64

rlab_model *rlab_model_new(const rlab_model_vt *vt, void *impl, const char *name, const char *kind,
                           rlab_err *err)
{
    if (!vt || (!vt->score && !vt->score_all)) {
        rlab_errf(err, RLAB_EINVAL, "model vtable needs score or score_all");
        if (vt && vt->free) {
            rlab_model tmp = {.vt = vt, .impl = impl};
            vt->free(&tmp);
        }
        return NULL;
    }
    /* refused, not cut: two long names sharing a prefix would replace each other */
    if (rlab_name_check("model", name, err) || rlab_name_check("model kind", kind, err)) {
        if (vt->free) {
            rlab_model tmp = {.vt = vt, .impl = impl};
            vt->free(&tmp);
        }
        return NULL;
    }
    rlab_model *m = rlab_calloc(1, sizeof *m);
    if (!m) {
        rlab_errf(err, RLAB_ENOMEM, "out of memory allocating a model");
        if (vt->free) {
            rlab_model tmp = {.vt = vt, .impl = impl};
            vt->free(&tmp);
        }
        return NULL;
    }
    m->vt = vt;
    m->impl = impl;
    if (name)
        snprintf(m->name, sizeof m->name, "%s", name);
    if (kind)
        snprintf(m->kind, sizeof m->kind, "%s", kind);
    atomic_init(&m->refs, 1);
    return m;
}

rlab_model *rlab_model_retain(rlab_model *m)
{
    if (m)
        atomic_fetch_add(&m->refs, 1);
    return m;
}

void rlab_model_release(rlab_model *m)
{
    if (!m)
        return;
    if (atomic_fetch_sub(&m->refs, 1) == 1) {
        if (m->vt && m->vt->free)
            m->vt->free(m);
        rlab_seqs_clear(&m->hist);
        rlab_free(m->config);
        rlab_free(m->train_opts);
        rlab_free(m);
    }
}

static int check_query(const rlab_model *m, const rlab_query *q, int nq, rlab_err *err)
{
    if (!m || nq < 0 || (nq > 0 && !q))
        return rlab_errf(err, RLAB_EINVAL, "bad model call (model %p, %d queries)", (const void *)m,
                         nq);
    if (m->n_items <= 0)
        return rlab_errf(err, RLAB_ESTATE, "model '%s' has no items", m->name);
    return RLAB_OK;
}

int rlab_model_score(const rlab_model *m, const rlab_query *q, int nq, const int32_t *items,
                     int n_cand, float *out, rlab_err *err)
{
    int rc = check_query(m, q, nq, err);
    if (rc)
        return rc;
    if (n_cand < 0 || (n_cand > 0 && (!items || !out)))
        return rlab_errf(err, RLAB_EINVAL, "model '%s': bad candidate list", m->name);
    for (size_t i = 0; i < (size_t)nq * (size_t)n_cand; i++)
        if (items[i] < 0 || items[i] >= m->n_items)
            return rlab_errf(err, RLAB_EINVAL, "model '%s': item %d out of range [0, %d)", m->name,
                             (int)items[i], (int)m->n_items);
    if (m->vt->score)
        return m->vt->score(m, q, nq, items, n_cand, out, err);
    /* generic: score everything for a chunk of queries, gather the candidates */
    int chunk = nq < RLAB_MODEL_CHUNK ? nq : RLAB_MODEL_CHUNK;
    float *buf = rlab_malloc((size_t)(chunk ? chunk : 1) * (size_t)m->n_items * sizeof *buf);
    if (!buf)
        return rlab_errf(err, RLAB_ENOMEM, "model '%s': out of memory scoring", m->name);
    for (int q0 = 0; q0 < nq && rc == RLAB_OK; q0 += chunk) {
        int nb = nq - q0 < chunk ? nq - q0 : chunk;
        rc = m->vt->score_all(m, q + q0, nb, buf, err);
        for (int b = 0; b < nb && rc == RLAB_OK; b++) {
            const float *row = buf + (size_t)b * (size_t)m->n_items;
            const int32_t *it = items + (size_t)(q0 + b) * (size_t)n_cand;
            float *o = out + (size_t)(q0 + b) * (size_t)n_cand;
            for (int j = 0; j < n_cand; j++)
                o[j] = row[it[j]];
        }
    }
    rlab_free(buf);
    return rc;
}

int rlab_model_score_all(const rlab_model *m, const rlab_query *q, int nq, float *out,
                         rlab_err *err)
{
    int rc = check_query(m, q, nq, err);
    if (rc)
        return rc;
    if (m->vt->score_all)
        return m->vt->score_all(m, q, nq, out, err);
    /* generic: candidates 0..n_items-1 for each query, one query at a time */
    int32_t *all = rlab_malloc((size_t)m->n_items * sizeof *all);
    if (!all)
        return rlab_errf(err, RLAB_ENOMEM, "model '%s': out of memory scoring", m->name);
    for (int32_t i = 0; i < m->n_items; i++)
        all[i] = i;
    for (int b = 0; b < nq && rc == RLAB_OK; b++)
        rc = m->vt->score(m, q + b, 1, all, m->n_items, out + (size_t)b * (size_t)m->n_items, err);
    rlab_free(all);
    return rc;
}

/* "a is worse than b" in the selection order: lower score, or equal score and higher index. */
static int worse(float sa, int32_t ia, float sb, int32_t ib)
{
    return sa < sb || (!(sa > sb) && ia > ib);
}

/* Sift the heap root down; the heap keeps the worst of the kept items at the root. */
static void heap_down(float *hs, int32_t *hi, int n, int at)
{
    for (;;) {
        int l = 2 * at + 1, r = l + 1, w = at;
        if (l < n && worse(hs[l], hi[l], hs[w], hi[w]))
            w = l;
        if (r < n && worse(hs[r], hi[r], hs[w], hi[w]))
            w = r;
        if (w == at)
            return;
        float ts = hs[at];
        hs[at] = hs[w];
        hs[w] = ts;
        int32_t ti = hi[at];
        hi[at] = hi[w];
        hi[w] = ti;
        at = w;
    }
}

static void heap_up(float *hs, int32_t *hi, int at)
{
    while (at > 0) {
        int p = (at - 1) / 2;
        if (!worse(hs[at], hi[at], hs[p], hi[p]))
            return;
        float ts = hs[at];
        hs[at] = hs[p];
        hs[p] = ts;
        int32_t ti = hi[at];
        hi[at] = hi[p];
        hi[p] = ti;
        at = p;
    }
}

void rlab_topk_row(const float *scores, int32_t n, const uint8_t *mask, int k, int32_t *items_out,
                   float *scores_out)
{
    /* Heap of the k best so far, stored in the output arrays themselves; an extra score
     * array is needed only when the caller does not want scores, so use a small local
     * buffer for k <= 256 and items_out-aliased logic otherwise. */
    float local[256];
    float *hs = scores_out ? scores_out : (k <= 256 ? local : NULL);
    float *owned = NULL;
    if (!hs) {
        owned = rlab_malloc((size_t)k * sizeof *owned);
        hs = owned;
    }
    if (!hs) { /* no memory for a heap: degrade to padding (caller sees -1s) */
        for (int j = 0; j < k; j++)
            items_out[j] = -1;
        return;
    }
    int nh = 0;
    for (int32_t i = 0; i < n; i++) {
        if (mask && mask[i])
            continue;
        float s = scores[i];
        if (isnan(s))
            continue;
        if (nh < k) {
            hs[nh] = s;
            items_out[nh] = i;
            heap_up(hs, items_out, nh);
            nh++;
        } else if (worse(hs[0], items_out[0], s, i)) {
            hs[0] = s;
            items_out[0] = i;
            heap_down(hs, items_out, nh, 0);
        }
    }
    /* heap sort: repeatedly move the worst to the end -> best first */
    for (int end = nh - 1; end > 0; end--) {
        float ts = hs[0];
        hs[0] = hs[end];
        hs[end] = ts;
        int32_t ti = items_out[0];
        items_out[0] = items_out[end];
        items_out[end] = ti;
        heap_down(hs, items_out, end, 0);
    }
    for (int j = nh; j < k; j++) {
        items_out[j] = -1;
        hs[j] = -INFINITY;
    }
    rlab_free(owned);
}

int rlab_model_topk_generic(const rlab_model *m, const rlab_query *q, int nq, int k,
                            const uint8_t *mask, int32_t *items_out, float *scores_out,
                            rlab_err *err)
{
    int rc = check_query(m, q, nq, err);
    if (rc)
        return rc;
    if (k < 1 || !items_out)
        return rlab_errf(err, RLAB_EINVAL, "model '%s': top-k needs k >= 1 (got %d)", m->name, k);
    int chunk = nq < RLAB_MODEL_CHUNK ? nq : RLAB_MODEL_CHUNK;
    size_t ni = (size_t)m->n_items;
    float *buf = rlab_malloc((size_t)(chunk ? chunk : 1) * ni * sizeof *buf);
    if (!buf)
        return rlab_errf(err, RLAB_ENOMEM, "model '%s': out of memory for top-k", m->name);
    for (int q0 = 0; q0 < nq && rc == RLAB_OK; q0 += chunk) {
        int nb = nq - q0 < chunk ? nq - q0 : chunk;
        rc = rlab_model_score_all(m, q + q0, nb, buf, err);
        for (int b = 0; b < nb && rc == RLAB_OK; b++) {
            size_t r = (size_t)(q0 + b);
            rlab_topk_row(buf + (size_t)b * ni, m->n_items, mask ? mask + r * ni : NULL, k,
                          items_out + r * (size_t)k,
                          scores_out ? scores_out + r * (size_t)k : NULL);
        }
    }
    rlab_free(buf);
    return rc;
}

int rlab_model_topk(const rlab_model *m, const rlab_query *q, int nq, int k, const uint8_t *mask,
                    int32_t *items_out, float *scores_out, rlab_err *err)
{
    if (m && m->vt && m->vt->topk) {
        int rc = check_query(m, q, nq, err);
        if (rc)
            return rc;
        if (k < 1 || !items_out)
            return rlab_errf(err, RLAB_EINVAL, "model '%s': top-k needs k >= 1 (got %d)", m->name,
                             k);
        return m->vt->topk(m, q, nq, k, mask, items_out, scores_out, err);
    }
    return rlab_model_topk_generic(m, q, nq, k, mask, items_out, scores_out, err);
}

int64_t rlab_model_user_hist(const rlab_model *m, int32_t u, const int32_t **items)
{
    *items = NULL;
    if (!m || u < 0 || u >= m->hist.n_users || !m->hist.off)
        return 0;
    *items = m->hist.items + m->hist.off[u];
    return m->hist.off[u + 1] - m->hist.off[u];
}

void rlab_model_describe(const rlab_model *m, char *buf, size_t size)
{
    if (!buf || size == 0)
        return;
    buf[0] = '\0';
    if (!m)
        return;
    if (m->vt->describe) {
        m->vt->describe(m, buf, size);
        return;
    }
    snprintf(buf, size, "%s model '%s' (%d users, %d items)", m->kind[0] ? m->kind : "?", m->name,
             (int)m->n_users, (int)m->n_items);
}

int rlab_model_user_repr(const rlab_model *m, const rlab_query *q, int nq, float *out,
                         rlab_err *err)
{
    int rc = check_query(m, q, nq, err);
    if (rc)
        return rc;
    if (!m->vt->user_repr || m->repr_dim <= 0)
        return rlab_errf(err, RLAB_ESTATE, "model '%s' has no user representation", m->name);
    return m->vt->user_repr(m, q, nq, out, err);
}

int rlab_model_sample_repr(const rlab_model *m, const rlab_query *q, int nq, const int32_t *items,
                           float *repr, float *score, rlab_err *err)
{
    int rc = check_query(m, q, nq, err);
    if (rc)
        return rc;
    if (!m->vt->sample_repr || m->sample_dim <= 0)
        return rlab_errf(err, RLAB_ESTATE, "model '%s' (%s) has no sample representation", m->name,
                         m->kind[0] ? m->kind : "?");
    if (nq > 0 && !items)
        return rlab_errf(err, RLAB_EINVAL, "sample_repr: no items");
    for (int b = 0; b < nq; b++)
        if (items[b] < 0 || items[b] >= m->n_items)
            return rlab_errf(err, RLAB_EINVAL, "item %d outside [0, %d)", (int)items[b],
                             (int)m->n_items);
    return m->vt->sample_repr(m, q, nq, items, repr, score, err);
}

rlab_ckpt *rlab_model_state(const rlab_model *m, rlab_err *err)
{
    if (!m->vt->tensors) {
        rlab_errf(err, RLAB_ESTATE, "model '%s' (%s) does not expose its state", m->name,
                  m->kind[0] ? m->kind : "?");
        return NULL;
    }
    rlab_ckpt *ck = rlab_ckpt_new(err);
    if (ck && m->vt->tensors(m, ck, err)) {
        rlab_ckpt_free(ck);
        return NULL;
    }
    return ck;
}
