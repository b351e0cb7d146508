/*
 * core/model/fit.c: the core training loop and the evaluation of any model on a data view
 * (see fit.h). The loop owns what every kind used to write for itself: epochs, cancel checks,
 * the non-finite-loss stop, validation, keep-best with patience, progress and metrics.
 */
#include "model/fit.h"
#include "base/mpi.h"
#include "data/tabular.h"
#include "tensor/ops.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const split_choices[] = {"loo", "temporal", "ratio", "none", NULL};

const rlab_field rlab_fit_fields[] = {
    RLAB_FIELD_INT(rlab_fit_opts, epochs, "1", 1, 100000, "passes over the training data"),
    RLAB_FIELD_INT(rlab_fit_opts, eval_every, "1", 0, 100000,
                   "validate every n epochs and at the last (0 = never)"),
    RLAB_FIELD_INT(rlab_fit_opts, patience, "0", 0, 100000,
                   "validations without a better select metric before stopping (0 = off)"),
    RLAB_FIELD_BOOL(rlab_fit_opts, keep_best, "true", "keep the parameters of the best validation"),
    RLAB_FIELD_STR(rlab_fit_opts, select, "ndcg@10",
                   "validation metric that selects the kept epoch (hr|ndcg|recall|mrr @5|10|20)"),
    RLAB_FIELD_BOOL(rlab_fit_opts, eval_test, "true", "rank the test targets with the final model"),
    RLAB_FIELD_INT(rlab_fit_opts, eval_neg, "0", 0, 100000,
                   "evaluation: 0 = full ranking; N = sampled 1+N (labelled sampled-N)"),
    RLAB_FIELD_I64(rlab_fit_opts, seed, "42", 0, 9.2e18, "random seed of the run"),
    RLAB_FIELD_CHOICE(rlab_fit_opts, split, "loo", split_choices,
                      "loo: leave-one-out by time; temporal / ratio: valid_frac, test_frac; "
                      "none: train on everything (no evaluation)"),
    RLAB_FIELD_DOUBLE(rlab_fit_opts, valid_frac, "0.1", 0, 0.9, "temporal/ratio: valid share"),
    RLAB_FIELD_DOUBLE(rlab_fit_opts, test_frac, "0.1", 0.001, 0.9, "temporal/ratio: test share"),
    RLAB_FIELD_INT(rlab_fit_opts, threads, "0", 0, 256, "threads (0 = the default)"),
    {0}};

int rlab_fit_field_is_loop(const char *name)
{
    static const char *const loop[] = {"epochs",    "eval_every", "patience",
                                       "keep_best", "select",     NULL};
    for (int i = 0; loop[i]; i++)
        if (strcmp(loop[i], name) == 0)
            return 1;
    return 0;
}

/* ---- evaluation ------------------------------------------------------------------------ */

#define EVAL_BATCH 256

typedef struct ev_ud {
    const rlab_model *m;
    const rlab_seqs *hist;
    rlab_query q[EVAL_BATCH];
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

/* ---- MPI: sharded evaluation --------------------------------------------------------- */

/* Collective: every rank's partial result r (its shard of users, in user order; NULL when it
 * failed) becomes the whole result on every rank: users, per-user values and top-k lists
 * concatenated in rank order (= user order), means summed serially in user order as the
 * evaluator does, so the result is bit-identical to one rank's. A failure on any rank fails
 * every rank (no rank is left waiting). Takes r. */
static rlab_eval_result *gather_eval(rlab_eval_result *r, rlab_err *err)
{
    const int P = rlab_mpi_size();
    int64_t st[2] = {r ? 0 : 1, r ? 0 : rlab_mpi_rank()};
    rlab_err e2 = {0};
    if (rlab_mpi_allreduce_i64(st, 2, RLAB_MPI_MAX, &e2)) {
        rlab_eval_result_free(r);
        *err = e2;
        return NULL;
    }
    if (st[0]) {
        if (r == NULL)
            return NULL; /* our own error is in err */
        rlab_eval_result_free(r);
        rlab_errf(err, RLAB_ESTATE, "evaluation failed on MPI rank %lld (see its message)",
                  (long long)st[1]);
        return NULL;
    }
    const int nm = r->n_metrics, w = r->topk_w;
    const int64_t n = r->n_users;
    /* one record per user: user id, nm values, w top-k items */
    const size_t rec = sizeof(int32_t) + (size_t)nm * sizeof(double) + (size_t)w * sizeof(int32_t);
    unsigned char *buf = rlab_malloc((size_t)n * rec + 1);
    int64_t *cnt = rlab_malloc(2 * (size_t)P * sizeof *cnt);
    void *all = NULL;
    int rc = RLAB_OK;
    if (!buf || !cnt) {
        rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
        goto out;
    }
    for (int64_t i = 0; i < n; i++) {
        unsigned char *q = buf + (size_t)i * rec;
        memcpy(q, &r->users[i], sizeof(int32_t));
        for (int m = 0; m < nm; m++)
            memcpy(q + 4 + (size_t)m * 8, &r->values[(int64_t)m * n + i], sizeof(double));
        if (w)
            memcpy(q + 4 + (size_t)nm * 8, r->topk + i * w, (size_t)w * sizeof(int32_t));
    }
    if ((rc = rlab_mpi_allgatherv(buf, (int64_t)((size_t)n * rec), &all, cnt, cnt + P, err)))
        goto out;
    const int64_t N = (int64_t)((size_t)(cnt[2 * P - 1] + cnt[P - 1]) / rec);
    double *values = rlab_malloc((size_t)(N * nm + 1) * sizeof *values);
    int32_t *users = rlab_malloc((size_t)(N + 1) * sizeof *users);
    int32_t *topk = w ? rlab_malloc((size_t)(N * w + 1) * sizeof *topk) : NULL;
    if (!values || !users || (w && !topk)) {
        rlab_free(values);
        rlab_free(users);
        rlab_free(topk);
        rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
        goto out;
    }
    for (int64_t i = 0; i < N; i++) {
        const unsigned char *q = (const unsigned char *)all + (size_t)i * rec;
        memcpy(&users[i], q, sizeof(int32_t));
        for (int m = 0; m < nm; m++)
            memcpy(&values[(int64_t)m * N + i], q + 4 + (size_t)m * 8, sizeof(double));
        if (w)
            memcpy(topk + i * w, q + 4 + (size_t)nm * 8, (size_t)w * sizeof(int32_t));
    }
    for (int m = 0; m < nm; m++) { /* serially in user order, as the evaluator */
        double s = 0.0;
        for (int64_t i = 0; i < N; i++)
            s += values[(int64_t)m * N + i];
        r->mean[m] = N ? s / (double)N : 0.0;
    }
    rlab_free(r->values);
    rlab_free(r->users);
    rlab_free(r->topk);
    r->values = values, r->users = users, r->topk = topk, r->n_users = N;
out:
    rlab_free(all);
    rlab_free(cnt);
    rlab_free(buf);
    if (rc) {
        rlab_eval_result_free(r);
        return NULL;
    }
    return r;
}

rlab_eval_result *rlab_eval_model(const rlab_model *m, const rlab_view *v, int which,
                                  const rlab_eval_opts *o, rlab_err *err)
{
    rlab_eval_opts dflt = {0};
    if (!o)
        o = &dflt;
    if (m->vt && m->vt->predict && m->n_items == 0) {
        rlab_errf(err, RLAB_EINVAL,
                  "model '%s' predicts labels of samples (a CTR / multi-task ranker trained on "
                  "'%s'): evaluate it on such a dataset (eval model=%s data=%s); it does not "
                  "rank the items of '%s'",
                  m->name, m->dataset, m->name, m->dataset[0] ? m->dataset : "SAMPLES", v->dataset);
        return NULL;
    }
    if (m->n_items != v->n_items) {
        rlab_errf(err, RLAB_EINVAL, "model '%s' scores %d items, dataset '%s' has %d", m->name,
                  (int)m->n_items, v->dataset, (int)v->n_items);
        return NULL;
    }
    if (o->batch > EVAL_BATCH) {
        rlab_errf(err, RLAB_EINVAL, "evaluation batch %d > %d", o->batch, EVAL_BATCH);
        return NULL;
    }
    ev_ud *e = rlab_calloc(1, sizeof *e);
    if (!e) {
        rlab_errf(err, RLAB_ENOMEM, "out of memory");
        return NULL;
    }
    e->m = m;
    e->hist = which == RLAB_VIEW_TEST ? &v->hist_test : &v->hist_valid;
    const rlab_seqs *tgt = which == RLAB_VIEW_TEST ? &v->test : &v->valid;
    rlab_eval_spec sp = {0};
    sp.n_users = v->n_users;
    sp.n_items = v->n_items;
    sp.hist_off = e->hist->off;
    sp.hist_items = e->hist->items;
    sp.tgt_off = tgt->off;
    sp.tgt_items = tgt->items;
    int64_t *cold_off = NULL, *cnt = NULL;
    int32_t *cold_items = NULL;
    if (o->cold > 0) { /* the cold-item slice: targets of items rare in train */
        const int64_t nt = tgt->off[v->n_users];
        cnt = rlab_calloc((size_t)v->n_items + 1, sizeof *cnt);
        cold_off = rlab_malloc(((size_t)v->n_users + 1) * sizeof *cold_off);
        cold_items = rlab_malloc((size_t)nt * sizeof *cold_items + 1);
        if (!cnt || !cold_off || !cold_items) {
            rlab_free(cnt);
            rlab_free(cold_off);
            rlab_free(cold_items);
            rlab_free(e);
            rlab_errf(err, RLAB_ENOMEM, "out of memory");
            return NULL;
        }
        for (int64_t k = 0; k < v->train.off[v->n_users]; k++)
            cnt[v->train.items[k]]++;
        int64_t n = 0;
        cold_off[0] = 0;
        for (int32_t u = 0; u < v->n_users; u++) {
            for (int64_t k = tgt->off[u]; k < tgt->off[u + 1]; k++)
                if (cnt[tgt->items[k]] < o->cold)
                    cold_items[n++] = tgt->items[k];
            cold_off[u + 1] = n;
        }
        sp.tgt_off = cold_off;
        sp.tgt_items = cold_items;
    }
    sp.ks = o->ks;
    sp.n_ks = o->n_ks;
    sp.metrics = o->metrics ? o->metrics : RLAB_EM_HR | RLAB_EM_RECALL | RLAB_EM_NDCG | RLAB_EM_MRR;
    sp.batch = o->batch ? o->batch : EVAL_BATCH;
    sp.n_neg = o->neg;
    sp.seed = o->seed;
    sp.keep_topk = o->keep_topk;
    sp.score = ev_score;
    sp.score_ud = e;
    sp.cancel = o->cancel;
    sp.cancel_ud = o->cancel_ud;
    /* MPI: this rank ranks its contiguous shard of the users, the results are gathered */
    int32_t *mine = NULL;
    if (rlab_mpi_size() > 1) {
        int64_t lo, hi;
        rlab_mpi_shard(v->n_users, &lo, &hi);
        mine = rlab_malloc((size_t)(hi - lo + 1) * sizeof *mine);
        if (!mine) {
            rlab_free(e);
            rlab_free(cnt);
            rlab_free(cold_off);
            rlab_free(cold_items);
            rlab_errf(err, RLAB_ENOMEM, "out of memory");
            return NULL;
        }
        for (int64_t u = lo; u < hi; u++)
            mine[u - lo] = (int32_t)u;
        sp.users = mine; /* never NULL, also for an empty shard (NULL = every user) */
        sp.n_eval = hi - lo;
    }
    rlab_eval_result *r = rlab_eval_ranking(&sp, err);
    if (rlab_mpi_size() > 1)
        r = gather_eval(r, err);
    rlab_free(mine);
    rlab_free(e);
    rlab_free(cnt);
    rlab_free(cold_off);
    rlab_free(cold_items);
    return r;
}

/* ---- MPI: data-parallel gradient exchange ---------------------------------------------- */

void rlab_fit_shard(int64_t n, int64_t *lo, int64_t *hi) { rlab_mpi_shard(n, lo, hi); }

static int tracked(const rlab_params *P, int i) { return P->row_touched && P->row_touched[i]; }

/* The sparse exchange: for every row-tracked tensor, in block order, this rank sends
 * [int64 k][k int32 rows][k * C floats] in one all-gather; every rank then rebuilds those
 * tensors' gradients as the sum of all ranks' rows, in rank order (the same bits on every
 * rank), and flags the union of touched rows. */
static int sync_sparse(rlab_params *P, rlab_err *err)
{
    size_t bytes = 0;
    for (int i = 0; i < P->n; i++) {
        if (!tracked(P, i))
            continue;
        const int64_t R = rlab_t_rows(&P->t[i]), C = rlab_t_cols(&P->t[i]);
        int64_t k = 0;
        for (int64_t r = 0; r < R; r++)
            k += P->row_touched[i][r] != 0;
        bytes += 8 + (size_t)k * 4 + (size_t)(k * C) * sizeof(float);
    }
    const int NP = rlab_mpi_size();
    unsigned char *buf = rlab_malloc(bytes + 1);
    int64_t *cnt = rlab_malloc(2 * (size_t)NP * sizeof *cnt);
    void *all = NULL;
    int rc = RLAB_OK;
    if (!buf || !cnt) {
        rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
        goto out;
    }
    unsigned char *q = buf;
    for (int i = 0; i < P->n; i++) {
        if (!tracked(P, i))
            continue;
        rlab_tensor *t = &P->t[i];
        const uint8_t *flag = P->row_touched[i];
        const int64_t R = rlab_t_rows(t), C = rlab_t_cols(t);
        int64_t k = 0;
        for (int64_t r = 0; r < R; r++)
            k += flag[r] != 0;
        memcpy(q, &k, 8);
        unsigned char *iq = q + 8, *vq = q + 8 + (size_t)k * 4;
        int64_t j = 0;
        for (int64_t r = 0; r < R; r++)
            if (flag[r]) {
                int32_t r32 = (int32_t)r;
                memcpy(iq + (size_t)j * 4, &r32, 4);
                memcpy(vq + (size_t)(j * C) * sizeof(float), t->grad + r * C,
                       (size_t)C * sizeof(float));
                memset(t->grad + r * C, 0, (size_t)C * sizeof(float)); /* rebuilt below */
                j++;
            }
        q = vq + (size_t)(k * C) * sizeof(float);
    }
    if ((rc = rlab_mpi_allgatherv(buf, (int64_t)bytes, &all, cnt, cnt + NP, err)))
        goto out;
    for (int rk = 0; rk < NP; rk++) { /* in rank order: the same sum on every rank */
        const unsigned char *b = (const unsigned char *)all + cnt[NP + rk];
        for (int i = 0; i < P->n; i++) {
            if (!tracked(P, i))
                continue;
            rlab_tensor *t = &P->t[i];
            const int64_t R = rlab_t_rows(t), C = rlab_t_cols(t);
            int64_t kq;
            memcpy(&kq, b, 8);
            const unsigned char *iq = b + 8, *vq = b + 8 + (size_t)kq * 4;
            for (int64_t a = 0; a < kq; a++) {
                int32_t r;
                memcpy(&r, iq + (size_t)a * 4, 4);
                if (r < 0 || r >= R)
                    continue;
                float *g = t->grad + (int64_t)r * C;
                for (int64_t c = 0; c < C; c++) {
                    float x;
                    memcpy(&x, vq + (size_t)(a * C + c) * sizeof(float), sizeof x);
                    g[c] += x;
                }
                P->row_touched[i][r] = 1;
            }
            b = vq + (size_t)(kq * C) * sizeof(float);
        }
    }
out:
    rlab_free(all);
    rlab_free(cnt);
    rlab_free(buf);
    return rc;
}

/* ---- overlapped dense exchange (rlab_fit_overlap_begin) --------------------------------
 * The dense (untracked) tensors of the block form buckets in reverse block order (the order a
 * backward usually finishes them: the last layers first), each a contiguous span of tensors of
 * at most RECLAB_MPI_BUCKET floats (default 256 Ki; a larger tensor alone). With overlap on,
 * every data-parallel exchange sums the same buckets in the same order on every rank (MPI
 * collectives must match): during a backward watched by rlab_fit_overlap_begin, a bucket is
 * scaled and its MPI_Iallreduce posted as soon as it and every bucket before it are final,
 * and the posted ones are tested (progressed) at every grad-ready event; rlab_fit_sync_grads
 * posts what is left and waits. One session at a time (training runs on one thread). */
typedef struct ov_bucket {
    int i0, i1; /* tensors [i0, i1) */
    int left;   /* tensors not final yet */
    rlab_mpi_req *rq;
    int posted;
} ov_bucket;

static struct {
    rlab_params *P; /* the session's block, NULL = none */
    float scale;
    int nb, next; /* buckets, the next to post */
    ov_bucket *b;
    int *of; /* [P->n] tensor -> bucket, -1 = tracked */
    int rc;
    rlab_err err;
} g_ov;

static int g_overlap = -1; /* -1: from $RECLAB_MPI_OVERLAP (default on) */

void rlab_fit_set_overlap(int on) { g_overlap = on ? 1 : 0; }

int rlab_fit_overlap(void)
{
    if (g_overlap < 0) {
        const char *e = getenv("RECLAB_MPI_OVERLAP");
        g_overlap = !(e && (strcmp(e, "0") == 0 || strcmp(e, "off") == 0));
    }
    return g_overlap;
}

static int64_t bucket_floats(void)
{
    const char *e = getenv("RECLAB_MPI_BUCKET");
    int64_t b = e && *e ? atoll(e) : 0;
    return b > 0 ? b : 256 * 1024;
}

static float *span(const rlab_params *P, const ov_bucket *b, int64_t *n)
{
    float *a = P->t[b->i0].grad;
    *n = (P->t[b->i1 - 1].grad + P->t[b->i1 - 1].n) - a;
    return a;
}

static void ov_clear(void)
{
    for (int k = 0; k < g_ov.nb; k++)
        if (g_ov.b[k].rq) {
            rlab_err e = {0};
            rlab_mpi_wait(g_ov.b[k].rq, &e);
        }
    rlab_free(g_ov.b);
    rlab_free(g_ov.of);
    memset(&g_ov, 0, sizeof g_ov);
}

static int ov_plan(rlab_params *P, double scale, rlab_err *err)
{
    ov_clear();
    g_ov.b = rlab_calloc((size_t)P->n + 1, sizeof *g_ov.b);
    g_ov.of = rlab_malloc(((size_t)P->n + 1) * sizeof *g_ov.of);
    if (!g_ov.b || !g_ov.of) {
        ov_clear();
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    }
    const int64_t cap = bucket_floats();
    for (int i = P->n - 1; i >= 0;) {
        if (tracked(P, i)) {
            g_ov.of[i--] = -1;
            continue;
        }
        ov_bucket *b = &g_ov.b[g_ov.nb];
        int64_t n = P->t[i].n;
        b->i1 = i + 1;
        b->i0 = i;
        g_ov.of[i--] = g_ov.nb;
        while (i >= 0 && !tracked(P, i) && n + P->t[i].n <= cap) {
            n += P->t[i].n;
            b->i0 = i;
            g_ov.of[i--] = g_ov.nb;
        }
        b->left = b->i1 - b->i0;
        g_ov.nb++;
    }
    g_ov.P = P;
    g_ov.scale = (float)scale;
    return RLAB_OK;
}

/* Post the buckets that are final, in order; let the posted ones progress. */
static void ov_post(void)
{
    while (g_ov.rc == RLAB_OK && g_ov.next < g_ov.nb && g_ov.b[g_ov.next].left == 0) {
        ov_bucket *b = &g_ov.b[g_ov.next++];
        int64_t n;
        float *a = span(g_ov.P, b, &n);
        if (fabsf(g_ov.scale - 1.0f) > 0.0f)
            for (int64_t k = 0; k < n; k++)
                a[k] *= g_ov.scale;
        g_ov.rc = rlab_mpi_iallreduce_f32(a, n, &b->rq, &g_ov.err);
        b->posted = 1;
    }
    for (int k = 0; k < g_ov.next; k++)
        if (g_ov.b[k].rq)
            rlab_mpi_test(g_ov.b[k].rq);
}

static void ov_ready(void *ud, int i)
{
    (void)ud;
    if (g_ov.P && g_ov.of[i] >= 0) {
        g_ov.b[g_ov.of[i]].left--;
        ov_post();
    }
}

int rlab_fit_overlap_begin(rlab_params *P, rlab_tape *tape, double scale, rlab_err *err)
{
    if (rlab_mpi_size() == 1 || !P || !rlab_fit_overlap())
        return RLAB_OK;
    int rc = ov_plan(P, scale, err);
    if (rc == RLAB_OK)
        rlab_tape_on_grad_ready(tape, P->t, P->n, ov_ready, NULL);
    return rc;
}

/* The exchange with overlap on: the buckets not posted during a backward (all of them
 * without one), then the waits. */
static int ov_finish(rlab_params *P, double scale, rlab_err *err)
{
    int rc = RLAB_OK;
    if (g_ov.P != P)
        rc = ov_plan(P, scale, err);
    if (rc)
        return rc;
    for (int k = 0; k < g_ov.nb; k++)
        g_ov.b[k].left = 0; /* the backward is over: every gradient is final */
    ov_post();
    rc = g_ov.rc;
    if (rc)
        *err = g_ov.err;
    for (int k = 0; k < g_ov.nb; k++) {
        int r2 = rlab_mpi_wait(g_ov.b[k].rq, rc ? &(rlab_err){0} : err);
        g_ov.b[k].rq = NULL;
        if (!rc)
            rc = r2;
    }
    ov_clear();
    return rc;
}

int rlab_fit_sync_grads(rlab_params *P, double scale, rlab_err *err)
{
    if (rlab_mpi_size() == 1 || !P)
        return RLAB_OK;
    if (rlab_fit_overlap()) {
        int rc = ov_finish(P, scale, err), any_sparse = 0;
        for (int i = 0; i < P->n && rc == RLAB_OK; i++)
            if (tracked(P, i)) {
                any_sparse = 1;
                if (fabs(scale - 1.0) > 0.0)
                    for (int64_t k = 0; k < P->t[i].n; k++)
                        P->t[i].grad[k] *= (float)scale;
            }
        return rc == RLAB_OK && any_sparse ? sync_sparse(P, err) : rc;
    }
    if (fabs(scale - 1.0) > 0.0) {
        const float s = (float)scale;
        for (size_t k = 0; k < P->count; k++)
            P->grad[k] *= s;
    }
    int rc = RLAB_OK, any_sparse = 0;
    for (int i = 0; i < P->n && rc == RLAB_OK;) {
        if (tracked(P, i)) {
            any_sparse = 1;
            i++;
            continue;
        }
        int j = i; /* a run of dense tensors: one span of the block (alignment gaps are 0) */
        while (j < P->n && !tracked(P, j))
            j++;
        const float *a = P->t[i].grad, *b = P->t[j - 1].grad + P->t[j - 1].n;
        rc = rlab_mpi_allreduce_f32(P->grad + (a - P->grad), b - a, 0, err);
        i = j;
    }
    if (rc == RLAB_OK && any_sparse)
        rc = sync_sparse(P, err);
    return rc;
}

/* ---- evaluation of a tabular model ------------------------------------------------------- */

#define CTR_BATCH 4096 /* samples per predict call (bounds the probability buffer) */

int rlab_eval_ctr_model(const rlab_model *m, const rlab_view *v, int which, rlab_ctr_result *out,
                        rlab_err *err)
{
    memset(out, 0, sizeof *out);
    if (!v->tab || which < 0 || which > 2)
        return rlab_errf(err, RLAB_EINVAL,
                         "dataset '%s' has no samples: CTR metrics need a "
                         "tabular dataset",
                         v->dataset);
    if (!m->vt->predict)
        return rlab_errf(err, RLAB_ESTATE, "model '%s' (%s) does not predict labels of samples",
                         m->name, m->kind);
    const rlab_tabular *t = v->tab;
    const int L = t->nlabels;
    const int64_t n = v->nrows[which], *rows = v->rows[which];
    float *p = rlab_malloc(((size_t)n + 1) * (size_t)L * sizeof *p);
    if (!p)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    int rc = RLAB_OK;
    for (int64_t a = 0; a < n && rc == RLAB_OK; a += CTR_BATCH) {
        int64_t b = n - a < CTR_BATCH ? n - a : CTR_BATCH;
        rc = m->vt->predict(m, t, rows + a, b, p + a * L, err);
    }
    if (rc == RLAB_OK)
        rc = rlab_eval_ctr_tasks(p, t->labels, L, (const char(*)[32])t->label_names, t->group, rows,
                                 n, out, err);
    rlab_free(p);
    return rc;
}

/* The tabular branch of `evaluate`: means then per-task metrics into res->names / out. */
static int evaluate_ctr(const rlab_fit *fit, rlab_model *m, int which, rlab_fit_result *res,
                        double *out, rlab_err *err)
{
    rlab_ctr_result r;
    double t0 = rlab_now();
    int rc = rlab_eval_ctr_model(m, fit->view, which, &r, err);
    res->eval_seconds += rlab_now() - t0;
    if (rc)
        return rc;
    snprintf(res->protocol, sizeof res->protocol, "ctr");
    int k = 0;
    const char *mn[3] = {"auc", "gauc", "logloss"};
    const double mv[3] = {r.mean_auc, r.mean_gauc, r.mean_logloss};
    for (int q = 0; q < 3; q++) {
        snprintf(res->names[k], sizeof res->names[k], "%s", mn[q]);
        out[k++] = mv[q];
    }
    for (int t = 0; t < r.ntasks && k + 3 <= 16; t++) {
        const double tv[3] = {r.auc[t], r.gauc[t], r.logloss[t]};
        for (int q = 0; q < 3; q++) {
            snprintf(res->names[k], sizeof res->names[k], "%.30s.%s", r.names[t], mn[q]);
            out[k++] = tv[q];
        }
    }
    res->n_metrics = k;
    return RLAB_OK;
}

/* ---- the loop -------------------------------------------------------------------------- */

static void logf_(const rlab_fit *fit, const char *fmt, ...) RLAB_PRINTF(2, 3);
static void logf_(const rlab_fit *fit, const char *fmt, ...)
{
    if (!fit->log)
        return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fit->log(fit->ud, line);
}

static int metric(const rlab_fit *fit, int64_t step, const char *split, const char *name,
                  const char *proto, double v)
{
    if (isnan(v) && fit->view->tab) /* an undefined CTR metric is not stored */
        return RLAB_OK;
    return fit->metric ? fit->metric(fit->ud, step, split, name, proto, v) : RLAB_OK;
}

static int fit_cancel(void *ud)
{
    const rlab_fit *fit = ud;
    return fit->cancelled && fit->cancelled(fit->ud);
}

/* Evaluate which with the fit's protocol; copy the means into out[] (res->names order). */
static int evaluate(const rlab_fit *fit, rlab_model *m, int which, rlab_fit_result *res,
                    double *out, rlab_err *err)
{
    if (fit->view->tab)
        return evaluate_ctr(fit, m, which, res, out, err);
    rlab_eval_opts eo = {.neg = fit->opts->eval_neg,
                         .seed = (uint64_t)fit->opts->seed,
                         .cancel = fit_cancel,
                         .cancel_ud = (void *)(uintptr_t)fit};
    double t0 = rlab_now();
    rlab_eval_result *r = rlab_eval_model(m, fit->view, which, &eo, err);
    res->eval_seconds += rlab_now() - t0;
    if (!r)
        return err->code ? err->code : RLAB_ENOMEM;
    snprintf(res->protocol, sizeof res->protocol, "%s", r->protocol);
    res->n_metrics = r->n_metrics < 16 ? r->n_metrics : 16;
    for (int i = 0; i < res->n_metrics; i++) {
        snprintf(res->names[i], sizeof res->names[i], "%s", r->names[i]);
        out[i] = r->mean[i];
    }
    rlab_eval_result_free(r);
    return RLAB_OK;
}

static int find_name(const rlab_fit_result *res, const char *name)
{
    for (int i = 0; i < res->n_metrics; i++)
        if (strcmp(res->names[i], name) == 0)
            return i;
    return -1;
}

rlab_model *rlab_fit_run(const rlab_fit_ops *ops, const rlab_fit *fit, rlab_fit_result *res,
                         rlab_err *err)
{
    const rlab_fit_opts *o = fit->opts;
    memset(res, 0, sizeof *res);
    if (!ops || !ops->begin || !ops->step || !ops->model) {
        rlab_errf(err, RLAB_EINVAL, "model kind '%s' has no training loop", fit->kind);
        return NULL;
    }
    if (o->threads > 0)
        rlab_t_set_num_threads(o->threads);
    void *state = NULL;
    if (ops->begin(fit, &state, err))
        return NULL;
    rlab_model *m = NULL; /* taken at the end: one-pass kinds build it in their step */
    rlab_params *P = ops->params ? ops->params(state) : NULL;
    const int can_validate = o->eval_every > 0 && (fit->view->tab || o->split != RLAB_SPLIT_NONE);
    float *best = NULL;
    int rc = RLAB_OK, nparts = 0;
    while (ops->part_names && ops->part_names[nparts])
        nparts++;
    if (nparts > 8)
        nparts = 8;
    if (can_validate && o->keep_best && P) {
        best = rlab_malloc((P->count ? P->count : 1) * sizeof(float));
        if (!best) {
            rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
            goto done;
        }
    }
    double best_score = -INFINITY;
    int bad = 0;
    /* MPI: a data-parallel kind splits each batch; any other kind runs replicated */
    const int dp = rlab_mpi_size() > 1 && ops->data_parallel;
    if (rlab_mpi_size() > 1)
        logf_(fit,
              dp ? "data-parallel over %d MPI ranks: each takes a shard of every batch"
                 : "%d MPI ranks: kind not data-parallel, every rank trains every batch "
                   "(evaluation is sharded)",
              rlab_mpi_size());
    for (int e = 1; e <= o->epochs; e++) {
        int64_t n = 1;
        if (ops->epoch && (rc = ops->epoch(state, e, &n, err)))
            goto done;
        double t0 = rlab_now(), lsum = 0.0, wsum = 0.0, psum[8] = {0};
        for (int64_t i = 0; i < n; i++) {
            if (fit->cancelled && fit->cancelled(fit->ud)) {
                rc = rlab_errf(err, RLAB_ECANCELED, "cancelled at epoch %d", e);
                goto done;
            }
            double loss = 0.0, w = 1.0, parts[8] = {0};
            if ((rc = ops->step(state, i, &loss, &w, parts, err)))
                goto done;
            if (dp) { /* the step's loss over all ranks (weights: their rows) */
                double g[10] = {loss * w, w};
                for (int k = 0; k < nparts; k++)
                    g[2 + k] = parts[k] * w;
                if ((rc = rlab_mpi_allreduce_f64(g, 2 + nparts, RLAB_MPI_SUM, err)))
                    goto done;
                w = g[1];
                loss = w > 0 ? g[0] / w : 0.0;
                for (int k = 0; k < nparts; k++)
                    parts[k] = w > 0 ? g[2 + k] / w : 0.0;
            }
            if (!isfinite(loss)) {
                rc = rlab_errf(err, RLAB_ESTATE,
                               "%s: the loss is %g at epoch %d, step %lld: training diverged "
                               "(lower lr?)",
                               fit->kind ? fit->kind : "model", loss, e, (long long)i + 1);
                goto done;
            }
            lsum += loss * w;
            wsum += w;
            for (int k = 0; k < nparts; k++)
                psum[k] += parts[k] * w;
        }
        res->seconds += rlab_now() - t0;
        res->epochs_run = e;
        double loss = lsum / (wsum > 0 ? wsum : 1.0);
        if (!ops->no_loss && (rc = metric(fit, e, "train", "loss", NULL, loss)))
            goto done;
        for (int k = 0; k < nparts; k++)
            if ((rc = metric(fit, e, "train", ops->part_names[k], NULL,
                             psum[k] / (wsum > 0 ? wsum : 1.0))))
                goto done;
        const char *pn[4] = {"loss"};
        double pv[4] = {loss};
        int np = 1, stop = 0;
        if (can_validate && (e % o->eval_every == 0 || e == o->epochs)) {
            double v[16];
            if ((rc = evaluate(fit, ops->model(state), RLAB_VIEW_VALID, res, v, err)))
                goto done;
            for (int i = 0; i < res->n_metrics; i++)
                if ((rc = metric(fit, e, "valid", res->names[i], res->protocol, v[i])))
                    goto done;
            int si = find_name(res, o->select);
            if (fit->view->tab && si >= 0 && strstr(o->select, "logloss"))
                si = -1; /* lower is better: not a selection metric here */
            if (si < 0 && fit->view->tab) {
                rc = rlab_errf(err, RLAB_EINVAL,
                               "select=%s is not a validation metric of a tabular model (auc, "
                               "gauc or <task>.auc)",
                               o->select);
                goto done;
            }
            if (si < 0) {
                rc = rlab_errf(err, RLAB_EINVAL,
                               "select=%s is not a validation metric (hr, ndcg, recall or mrr "
                               "@5, @10 or @20)",
                               o->select);
                goto done;
            }
            int h10 = find_name(res, "hr@10"), n10 = find_name(res, "ndcg@10");
            if (h10 >= 0)
                pn[np] = "valid.hr@10", pv[np++] = v[h10];
            if (n10 >= 0)
                pn[np] = "valid.ndcg@10", pv[np++] = v[n10];
            if (si != n10)
                pn[np] = o->select, pv[np++] = v[si];
            /* an undefined select metric (NAN: a CTR AUC on a valid part with one class)
             * selects nothing: the epoch is kept as without validation, patience does not
             * count, and the next defined value starts the comparison afresh */
            int improved = isnan(v[si]) || isnan(best_score) || v[si] > best_score;
            if (improved) {
                best_score = v[si];
                res->best_epoch = e;
                res->best_valid = v[si];
                memcpy(res->valid, v, sizeof v);
                res->has_valid = 1;
                if (best)
                    memcpy(best, P->data, P->count * sizeof(float));
                bad = 0;
            } else if (o->patience > 0 && ++bad >= o->patience) {
                stop = 1;
            }
            if (fit->view->tab)
                logf_(fit, "epoch %d/%d %.1fs loss %.4f | valid %s %.4f (ctr)%s", e, o->epochs,
                      rlab_now() - t0, loss, o->select, v[si], improved ? " (best)" : "");
            else if (ops->no_loss)
                logf_(fit, "valid %s %.4f hr@10 %.4f", o->select, v[si], h10 >= 0 ? v[h10] : 0.0);
            else
                logf_(fit, "epoch %d/%d %.1fs loss %.4f | valid %s %.4f hr@10 %.4f%s", e, o->epochs,
                      rlab_now() - t0, loss, o->select, v[si], h10 >= 0 ? v[h10] : 0.0,
                      improved ? " (best)" : "");
        }
        if (fit->progress)
            fit->progress(fit->ud, e, o->epochs, np, pn, pv);
        if (stop) {
            logf_(fit, "early stop after epoch %d: %d validations without a better %s", e,
                  o->patience, o->select);
            break;
        }
    }
done:
    /* keep the best epoch, also when cancelled */
    if (best && res->best_epoch > 0 && res->best_epoch != res->epochs_run)
        memcpy(P->data, best, P->count * sizeof(float));
    rlab_free(best);
    m = rlab_model_retain(ops->model(state));
    if (!m && (rc == RLAB_OK || rc == RLAB_ECANCELED))
        rc = rc ? rc : rlab_errf(err, RLAB_ESTATE, "%s: training made no model", fit->kind);
    if (rc == RLAB_OK && o->eval_test && (fit->view->tab || o->split != RLAB_SPLIT_NONE)) {
        double t[16];
        rc = evaluate(fit, m, RLAB_VIEW_TEST, res, t, err);
        if (rc == RLAB_OK) {
            memcpy(res->test, t, sizeof t);
            res->has_test = 1;
            int64_t at = res->best_epoch > 0 ? res->best_epoch : res->epochs_run;
            for (int i = 0; i < res->n_metrics && rc == RLAB_OK; i++)
                rc = metric(fit, at, "test", res->names[i], res->protocol, t[i]);
        }
    }
    if (ops->end)
        ops->end(state);
    if (rc != RLAB_OK && rc != RLAB_ECANCELED) {
        rlab_model_release(m);
        return NULL;
    }
    return m;
}
