/*
 * plugins/baselines/data.c: the leave-one-out view of a dataset (train part, histories and
 * targets as CSR rows) and the full-ranking evaluation of any registered model on it, with
 * the MQSA-TED masking rule (valid: train items masked; test: train items and the valid item
 * masked, and the valid item is part of the test query's history).
 */
#include "baselines.h"

#include <string.h>

void bl_data_free(bl_data *d)
{
    if (!d)
        return;
    rlab_seqs_clear(&d->train);
    rlab_seqs_clear(&d->hist_valid);
    rlab_seqs_clear(&d->hist_test);
    rlab_seqs_clear(&d->valid);
    rlab_seqs_clear(&d->test);
    rlab_free(d);
}

/* rows of a then rows of b, into out (cleared first) */
static int concat_inter(const rlab_inter *a, const rlab_inter *b, rlab_inter *out, rlab_err *err)
{
    rlab_inter_init(out);
    if (rlab_inter_reserve(out, a->n + b->n))
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    const rlab_inter *src[2] = {a, b};
    for (int s = 0; s < 2; s++)
        for (size_t r = 0; r < src[s]->n; r++)
            if (rlab_inter_push(out, src[s]->user[r], src[s]->item[r], src[s]->ts[r],
                                src[s]->rating ? src[s]->rating[r] : 1.0f, NULL))
                return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    return RLAB_OK;
}

int bl_data_new(const rlab_dataset *ds, int split, bl_data **out, rlab_err *err)
{
    *out = NULL;
    int32_t nu = rlab_vocab_size(&ds->users), ni = rlab_vocab_size(&ds->items);
    if (ds->inter.n == 0 || nu < 1 || ni < 2)
        return rlab_errf(err, RLAB_EINVAL, "dataset '%s' has no interactions to learn from",
                         ds->name);
    bl_data *d = rlab_calloc(1, sizeof *d);
    if (!d)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    d->n_users = nu;
    d->n_items = ni;
    d->split = split;
    rlab_split sp;
    memset(&sp, 0, sizeof sp);
    rlab_inter both;
    rlab_inter_init(&both);
    int rc = rlab_split_loo(&ds->inter, nu, &sp, err);
    if (rc == RLAB_OK)
        rc = rlab_seqs_from_inter(&sp.train, nu, &d->hist_valid, err);
    if (rc == RLAB_OK)
        rc = rlab_seqs_from_inter(&sp.valid, nu, &d->valid, err);
    if (rc == RLAB_OK)
        rc = rlab_seqs_from_inter(&sp.test, nu, &d->test, err);
    if (rc == RLAB_OK)
        rc = concat_inter(&sp.train, &sp.valid, &both, err);
    if (rc == RLAB_OK)
        rc = rlab_seqs_from_inter(&both, nu, &d->hist_test, err);
    if (rc == RLAB_OK)
        rc = rlab_seqs_from_inter(split == BL_SPLIT_NONE ? &ds->inter : &sp.train, nu, &d->train,
                                  err);
    rlab_inter_clear(&both);
    rlab_split_clear(&sp);
    if (rc != RLAB_OK) {
        bl_data_free(d);
        return rc;
    }
    *out = d;
    return RLAB_OK;
}

/* ---- evaluation ------------------------------------------------------------------------- */

#define BL_EVAL_BATCH 256

typedef struct ev_ud {
    const rlab_model *m;
    const rlab_seqs *hist;
    rlab_query q[BL_EVAL_BATCH];
} ev_ud;

/* users: [nb], scores: [nb][n_items] */
static int ev_score(void *ud, const int32_t *users, int nb, float *scores, rlab_err *err)
{
    ev_ud *e = ud;
    for (int b = 0; b < nb; b++) {
        int32_t u = users[b];
        int64_t o = e->hist->off[u], n = e->hist->off[u + 1] - o;
        e->q[b] = (rlab_query){.user = u,
                               .hist = n ? e->hist->items + o : NULL,
                               .hist_ts = n ? e->hist->ts + o : NULL,
                               .n_hist = (int32_t)n};
    }
    return rlab_model_score_all(e->m, e->q, nb, scores, err);
}

rlab_eval_result *bl_evaluate(const rlab_model *m, const bl_data *d, int which, const int *ks,
                              int nks, rlab_eval_cancel_fn cancel, void *cancel_ud, rlab_err *err)
{
    if (m->n_items != d->n_items) {
        rlab_errf(err, RLAB_EINVAL, "model '%s' scores %d items, the dataset has %d", m->name,
                  (int)m->n_items, (int)d->n_items);
        return NULL;
    }
    ev_ud *e = rlab_calloc(1, sizeof *e);
    if (!e) {
        rlab_errf(err, RLAB_ENOMEM, "out of memory");
        return NULL;
    }
    e->m = m;
    e->hist = which == BL_EVAL_TEST ? &d->hist_test : &d->hist_valid;
    const rlab_seqs *tgt = which == BL_EVAL_TEST ? &d->test : &d->valid;
    rlab_eval_spec sp = {0};
    sp.n_users = d->n_users;
    sp.n_items = d->n_items;
    sp.hist_off = e->hist->off;
    sp.hist_items = e->hist->items;
    sp.tgt_off = tgt->off;
    sp.tgt_items = tgt->items;
    sp.ks = ks;
    sp.n_ks = nks;
    sp.metrics = RLAB_EM_HR | RLAB_EM_RECALL | RLAB_EM_NDCG | RLAB_EM_MRR;
    sp.batch = BL_EVAL_BATCH;
    sp.score = ev_score;
    sp.score_ud = e;
    sp.cancel = cancel;
    sp.cancel_ud = cancel_ud;
    rlab_eval_result *r = rlab_eval_ranking(&sp, err);
    rlab_free(e);
    return r;
}
