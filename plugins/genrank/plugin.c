/*
 * plugins/genrank/plugin.c: the genrank plugin (reclab_genrank.so): OneRec as model kinds,
 * iterative preference alignment and the view of one user's generated sessions.
 *
 *   train brkmeans data=D name=sid             (plugins/semid: the semantic IDs)
 *   train onerec data=D semid=sid [session=5]  (session-wise generator; eval / recommend /
 *   train tiger  data=D semid=sid              save / load / export: the host's verbs)
 *   genrank.align model=M [iters=2]            reward model R (trained when M has none),
 *                                              then IPA iterations, each a genrank.ipa
 *                                              run, measured and registered as M_ipa<i>
 *   genrank.ipa model=M                        one IPA iteration from M (a run)
 *   genrank.measure model=M                    the session measures of a model
 *   genrank.show model=M user=U                history, beams with rewards, winner, loser,
 *                                              tokens level by level
 */
#include "genrank.h"

#include "data/world.h"
#include "host/plugin.h"
#include "tensor/loss.h"
#include "tensor/ops.h"
#include "tensor/optim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const rlab_model_kind genrank_kinds[] = {
    {.name = "onerec",
     .summary = "OneRec: session-wise generative ranker over semantic IDs (encoder-decoder, MoE)",
     .config = genrank_fields,
     .config_size = sizeof(genrank_cfg),
     .defaults = genrank_onerec_defaults,
     .fit = &genrank_fit_ops,
     .restore = genrank_restore},
    {.name = "tiger",
     .summary = "the point-wise variant of onerec (session=1, TIGER-like)",
     .config = genrank_fields,
     .config_size = sizeof(genrank_cfg),
     .defaults = genrank_tiger_defaults,
     .fit = &genrank_fit_ops,
     .restore = genrank_restore},
    {0}};

/* ---- helpers -------------------------------------------------------------------------------- */

static int cancel_cb(void *ud) { return rlab_ctx_cancelled(ud); }

static const rlab_model *genrank_arg(rlab_ctx *ctx, const rlab_args *args, genrank_model **gm)
{
    const rlab_model *m = rlab_ctx_model(ctx, rlab_args_str(args, "model"));
    if (!m)
        return NULL;
    *gm = genrank_model_of(m);
    if (!*gm) {
        rlab_ctx_errorf(ctx, RLAB_EINVAL, "model '%s' is a %s model, not onerec / tiger", m->name,
                        m->kind);
        return NULL;
    }
    return m;
}

/* The leave-one-out view of the model's dataset (the host's default split). */
static rlab_view *model_view(rlab_ctx *ctx, const rlab_model *m, rlab_dataset **dsp)
{
    rlab_host *h = rlab_ctx_host(ctx);
    rlab_dataset *ds = m->dataset[0] ? rlab_host_dataset_get(h, m->dataset) : NULL;
    if (!ds) {
        rlab_ctx_errorf(ctx, RLAB_ENOTFOUND, "model '%s': its dataset '%s' is not loaded", m->name,
                        m->dataset);
        return NULL;
    }
    rlab_view_opts o = rlab_view_defaults();
    rlab_view *v = NULL;
    if (rlab_view_new(ds, &o, &v, rlab_ctx_err(ctx))) {
        rlab_host_dataset_release(h, ds);
        return NULL;
    }
    if (v->n_items != m->n_items) {
        rlab_ctx_errorf(ctx, RLAB_EINVAL, "model '%s' has %d items, dataset '%s' %d", m->name,
                        (int)m->n_items, ds->name, (int)v->n_items);
        rlab_view_free(v);
        rlab_host_dataset_release(h, ds);
        return NULL;
    }
    *dsp = ds;
    return v;
}

/* The demo world when ds is its dataset (regenerated: it is byte-identical on every call;
 * the checksum over the world and the dataset must match), else NULL. */
static rlab_world *world_of(const rlab_dataset *ds)
{
    if (!ds || strcmp(ds->format, "world") != 0)
        return NULL;
    rlab_world *w = NULL;
    rlab_dataset *d2 = NULL;
    rlab_err err = {0};
    if (rlab_world_demo(&w, &d2, &err))
        return NULL;
    const int same = rlab_world_checksum(w, d2) == rlab_world_checksum(w, ds);
    rlab_dataset_free(d2);
    if (!same) {
        rlab_world_free(w);
        return NULL;
    }
    return w;
}

static genrank_reward *reward_copy(const genrank_reward *r, rlab_err *err)
{
    genrank_reward *c = genrank_reward_new(r->n_items, r->d, r->m, r->maxlen, r->like_w, 0, err);
    if (c) {
        memcpy(c->P->data, r->P->data, r->P->count * sizeof(float));
        c->auc_like = r->auc_like;
        c->bce = r->bce;
    }
    return c;
}

static const char *const measure_cols[] = {
    "iter", "users", "recall@5", "ndcg@5", "recall@10", "ndcg@10", "recall@20", "ndcg@20",
    "first_r@10", "first_n@10", "reward_mean", "reward_max", "true_mean", "true_max", "ent_l1",
    "ent_l2", "ent_l3", "ent_last", "load_max", "legality",
    /* the session recall@10 of the test item alone and of the validation item alone (the
     * IPA guard reads the validation one; recall@10 counts both) */
    "test_r@10", "valid_r@10",
    /* 95% bootstrap interval of the mean over users */
    "recall@10_lo", "recall@10_hi", "ndcg@10_lo", "ndcg@10_hi", "first_r@10_lo", "first_r@10_hi",
    "reward_mean_lo", "reward_mean_hi", "true_mean_lo", "true_mean_hi", "test_r@10_lo",
    "test_r@10_hi", "valid_r@10_lo", "valid_r@10_hi",
    /* paired difference vs a reference model on the same users (the previous iterate for
     * genrank.ipa, ref= for genrank.measure), mean and 95% bootstrap interval */
    "d_recall@10", "d_recall@10_lo", "d_recall@10_hi", "d_ndcg@10", "d_ndcg@10_lo", "d_ndcg@10_hi",
    "d_first_r@10", "d_first_r@10_lo", "d_first_r@10_hi", "d_reward_mean", "d_reward_mean_lo",
    "d_reward_mean_hi", "d_true_mean", "d_true_mean_lo", "d_true_mean_hi", "d_test_r@10",
    "d_test_r@10_lo", "d_test_r@10_hi", "d_valid_r@10", "d_valid_r@10_lo", "d_valid_r@10_hi"};
enum { NMCOLS = sizeof measure_cols / sizeof measure_cols[0], NMBASE = 22 };
_Static_assert(NMCOLS == NMBASE + 5 * GENRANK_PU, "measure_cols: base, 2 CI + 3 paired per PU");

/* The per-user measures (user index, then genrank_measures.pu) as result table `name`: paired
 * comparisons of any two models measured on the same users, without measuring them again. */
static const char *const user_cols[] = {"user",        "recall@10", "ndcg@10",   "first_r@10",
                                        "reward_mean", "true_mean", "test_r@10", "valid_r@10"};
enum { NUCOLS = sizeof user_cols / sizeof user_cols[0] };

static int users_table(rlab_ctx *ctx, const char *name, const genrank_measures *ms)
{
    rlab_table *t = rlab_ctx_result_table(ctx, name, NUCOLS, user_cols);
    if (!t)
        return RLAB_ENOMEM;
    for (int64_t i = 0; i < ms->users; i++) {
        rlab_cell row[NUCOLS];
        row[0] = (rlab_cell){.type = RLAB_CELL_INT, .i = ms->pu_user[i]};
        for (int q = 0; q < GENRANK_PU; q++) {
            const double x = ms->pu[(size_t)i * GENRANK_PU + q];
            row[1 + q] = isnan(x) ? (rlab_cell){.type = RLAB_CELL_NULL}
                                  : (rlab_cell){.type = RLAB_CELL_FLOAT, .f = x};
        }
        if (rlab_table_add_cells(t, row))
            return RLAB_ENOMEM;
    }
    return RLAB_OK;
}

/* One row of measures into table tb, the log and the run's metrics (step = iteration); ref
 * (may be NULL): a reference model's measures on the same users, for the paired differences
 * (ref_label names it in the log). */
static int report(rlab_ctx *ctx, rlab_table *tb, int it, const genrank_net *net,
                  const genrank_measures *ms, const genrank_measures *ref, const char *ref_label)
{
    const int Lt = net->codes.Lt;
    double lmax = 0.0;
    for (int e = 0; e < net->cfg.experts; e++)
        lmax = ms->load[e] > lmax ? ms->load[e] : lmax;
    double v[NMCOLS] = {it,
                        (double)ms->users,
                        ms->recall[0],
                        ms->ndcg[0],
                        ms->recall[1],
                        ms->ndcg[1],
                        ms->recall[2],
                        ms->ndcg[2],
                        ms->first_recall10,
                        ms->first_ndcg10,
                        ms->reward_mean,
                        ms->reward_max,
                        ms->true_mean,
                        ms->true_max,
                        ms->ent[0],
                        Lt > 1 ? ms->ent[1] : 0,
                        Lt > 2 ? ms->ent[2] : 0,
                        ms->ent[Lt - 1],
                        lmax,
                        ms->legality,
                        (double)NAN,
                        (double)NAN};
    for (int i = NMBASE; i < NMCOLS; i++)
        v[i] = (double)NAN;
    if (ref && (ref->users != ms->users ||
                memcmp(ref->pu_user, ms->pu_user, (size_t)ms->users * sizeof(int32_t)) != 0))
        return rlab_ctx_errorf(ctx, RLAB_EINVAL,
                               "genrank: the reference '%s' was measured on other users",
                               ref_label ? ref_label : "");
    for (int q = 0; q < GENRANK_PU; q++) {
        double ci[3];
        if (genrank_boot_ci(ms->pu, NULL, ms->users, GENRANK_PU, q, ci))
            return rlab_ctx_errorf(ctx, RLAB_ENOMEM, "out of memory");
        v[NMBASE + 2 * q] = ci[1];
        v[NMBASE + 2 * q + 1] = ci[2];
        if (q == GENRANK_PU_TEST_R10 || q == GENRANK_PU_VALID_R10)
            v[NMBASE - 2 + (q - GENRANK_PU_TEST_R10)] = ci[0];
        if (!ref)
            continue;
        if (genrank_boot_ci(ms->pu, ref->pu, ms->users, GENRANK_PU, q, ci))
            return rlab_ctx_errorf(ctx, RLAB_ENOMEM, "out of memory");
        for (int k = 0; k < 3; k++)
            v[NMBASE + 2 * GENRANK_PU + 3 * q + k] = ci[k];
    }
    if (tb) {
        rlab_cell row[NMCOLS];
        for (int i = 0; i < NMCOLS; i++)
            row[i] = i < 2         ? (rlab_cell){.type = RLAB_CELL_INT, .i = (int64_t)v[i]}
                     : isnan(v[i]) ? (rlab_cell){.type = RLAB_CELL_NULL}
                                   : (rlab_cell){.type = RLAB_CELL_FLOAT, .f = v[i]};
        rlab_table_add_cells(tb, row);
    }
    for (int i = 1; i < NMCOLS; i++)
        if (!isnan(v[i]))
            rlab_ctx_metric(ctx, it, "valid", measure_cols[i], "full", v[i]);
    for (int e = 0; e < net->cfg.experts; e++) {
        char nm[32];
        snprintf(nm, sizeof nm, "load_e%d", e);
        rlab_ctx_metric(ctx, it, "valid", nm, "full", ms->load[e]);
    }
    rlab_ctx_printf(ctx,
                    "iter %d (%lld users): session recall@10 %.4f [%.4f, %.4f] ndcg@10 %.4f | "
                    "first item recall@10 %.4f ndcg@10 %.4f | reward mean %.4f [%.4f, %.4f] max "
                    "%.4f | entropy l1 %.3f last %.3f | max expert load %.3f | legality %.3f",
                    it, (long long)ms->users, ms->recall[1], v[NMBASE], v[NMBASE + 1], ms->ndcg[1],
                    ms->first_recall10, ms->first_ndcg10, ms->reward_mean, v[NMBASE + 6],
                    v[NMBASE + 7], ms->reward_max, ms->ent[0], ms->ent[Lt - 1], lmax, ms->legality);
    if (!isnan(ms->true_mean))
        rlab_ctx_printf(ctx,
                        "iter %d: true satisfaction over the beam mean %.4f [%.4f, %.4f] max %.4f",
                        it, ms->true_mean, v[NMBASE + 8], v[NMBASE + 9], ms->true_max);
    if (ref) {
        const double *d = v + NMBASE + 2 * GENRANK_PU;
        rlab_ctx_printf(ctx,
                        "iter %d minus '%s' (paired, %lld users, 95%% bootstrap): recall@10 %+.4f "
                        "[%+.4f, %+.4f] ndcg@10 %+.4f [%+.4f, %+.4f] first recall@10 %+.4f "
                        "[%+.4f, %+.4f] reward mean %+.4f [%+.4f, %+.4f]",
                        it, ref_label ? ref_label : "", (long long)ms->users, d[0], d[1], d[2],
                        d[3], d[4], d[5], d[6], d[7], d[8], d[9], d[10], d[11]);
        if (!isnan(d[12]))
            rlab_ctx_printf(ctx, "iter %d minus '%s': true satisfaction %+.4f [%+.4f, %+.4f]", it,
                            ref_label ? ref_label : "", d[12], d[13], d[14]);
    }
    return RLAB_OK;
}

/* ---- IPA ------------------------------------------------------------------------------------ */

typedef struct pairset {
    int64_t n;
    int32_t *hist;  /* [n][maxlen] */
    int32_t *items; /* [n][2][m]: winner, loser */
    float *ref;     /* [n][2] reference log-probs */
    float *rw, *rl; /* rewards */
    /* diagnostics of the draw: users searched, pairs skipped (equal rewards / gap below
     * ipa_margin), and over the kept pairs the items winner and loser share, the share with
     * the same first item, and over every candidate pair the reward gap */
    int64_t searched, tied, below_margin;
    double shared_sum, first_same, gap_all_sum;
    double win_rank, lose_rank; /* mean beam rank (0 = most probable) of winner / loser */
} pairset;

static void pairset_clear(pairset *p)
{
    rlab_free(p->hist);
    rlab_free(p->items);
    rlab_free(p->ref);
    rlab_free(p->rw);
    rlab_free(p->rl);
    memset(p, 0, sizeof *p);
}

/* Beam-search N sessions for a fraction of users with net, score them with R, keep the best
 * and the worst as a pair when their reward gap is > 0 and >= ipa_margin. */
static int make_pairs(rlab_ctx *ctx, const genrank_net *net, const genrank_reward *r,
                      const rlab_view *v, uint64_t seed, pairset *ps)
{
    rlab_err *err = rlab_ctx_err(ctx);
    const genrank_cfg *c = &net->cfg;
    const int m = c->session, n = c->maxlen, N = c->ipa_beam;
    memset(ps, 0, sizeof *ps);
    rlab_rng rng;
    rlab_rng_seed(&rng, seed);
    int64_t cap = 0;
    uint8_t *pick = rlab_calloc((size_t)v->n_users + 1, 1);
    if (!pick)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    for (int32_t u = 0; u < v->n_users; u++)
        if (v->train.off[u + 1] - v->train.off[u] >= 1 && rlab_rng_uniform(&rng) < c->ipa_frac) {
            pick[u] = 1;
            cap++;
        }
    ps->hist = rlab_malloc((size_t)(cap ? cap : 1) * n * sizeof(int32_t));
    ps->items = rlab_malloc((size_t)(cap ? cap : 1) * 2 * m * sizeof(int32_t));
    ps->ref = rlab_malloc((size_t)(cap ? cap : 1) * 2 * sizeof(float));
    ps->rw = rlab_malloc((size_t)(cap ? cap : 1) * sizeof(float));
    ps->rl = rlab_malloc((size_t)(cap ? cap : 1) * sizeof(float));
    int32_t *rwin = rlab_malloc((size_t)N * r->maxlen * sizeof(int32_t));
    float *rs = rlab_malloc((size_t)N * sizeof(float));
    int rc = RLAB_OK;
    if (!ps->hist || !ps->items || !ps->ref || !ps->rw || !ps->rl || !rwin || !rs) {
        rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
        goto done;
    }
    int64_t done_u = 0;
    for (int32_t u = 0; u < v->n_users; u++) {
        if (!pick[u])
            continue;
        if (rlab_ctx_cancelled(ctx)) {
            rc = rlab_errf(err, RLAB_ECANCELED, "cancelled");
            goto done;
        }
        rlab_ctx_progress(ctx, ++done_u, cap, "pairs", 0, NULL);
        const int32_t *h = v->train.items + v->train.off[u];
        const int64_t nh = v->train.off[u + 1] - v->train.off[u];
        genrank_beam_out bo;
        if ((rc = genrank_beam(net, h, nh, h, nh, N, m, 1, &bo, err)))
            goto done;
        if (bo.W < 2) {
            genrank_beam_out_clear(&bo);
            continue;
        }
        for (int b = 0; b < bo.W; b++)
            genrank_reward_window(r, h, nh, rwin + (size_t)b * r->maxlen);
        if ((rc = genrank_reward_score(r, rwin, bo.items, bo.W, rs, NULL, NULL, err))) {
            genrank_beam_out_clear(&bo);
            goto done;
        }
        int bw = 0, bl = 0;
        for (int b = 1; b < bo.W; b++) {
            if (rs[b] > rs[bw])
                bw = b;
            if (rs[b] < rs[bl])
                bl = b;
        }
        if (c->ipa_loser == GENRANK_LOSER_FAR) { /* fewest items shared with the winner */
            int best = m + 1;
            for (int b = 0; b < bo.W; b++) {
                if (!(rs[b] < rs[bw]))
                    continue;
                int shared = 0;
                for (int i = 0; i < m; i++)
                    for (int j = 0; j < m; j++)
                        shared += bo.items[(size_t)b * m + i] >= 0 &&
                                  bo.items[(size_t)b * m + i] == bo.items[(size_t)bw * m + j];
                if (shared < best || (shared == best && rs[b] < rs[bl])) {
                    best = shared;
                    bl = b;
                }
            }
        }
        ps->searched++;
        ps->gap_all_sum += (double)(rs[bw] - rs[bl]);
        if (!(rs[bw] > rs[bl]))
            ps->tied++;
        else if (rs[bw] - rs[bl] < c->ipa_margin)
            ps->below_margin++;
        else {
            int shared = 0;
            for (int i = 0; i < m; i++)
                for (int j = 0; j < m; j++)
                    shared += bo.items[(size_t)bl * m + i] >= 0 &&
                              bo.items[(size_t)bl * m + i] == bo.items[(size_t)bw * m + j];
            ps->shared_sum += shared;
            ps->first_same += bo.items[(size_t)bl * m] == bo.items[(size_t)bw * m];
            ps->win_rank += bw;
            ps->lose_rank += bl;
            genrank_window(net, h, nh, ps->hist + (size_t)ps->n * n);
            memcpy(ps->items + (size_t)ps->n * 2 * m, bo.items + (size_t)bw * m,
                   (size_t)m * sizeof(int32_t));
            memcpy(ps->items + (size_t)ps->n * 2 * m + m, bo.items + (size_t)bl * m,
                   (size_t)m * sizeof(int32_t));
            ps->rw[ps->n] = rs[bw];
            ps->rl[ps->n] = rs[bl];
            ps->n++;
        }
        genrank_beam_out_clear(&bo);
    }
done:
    rlab_free(pick);
    rlab_free(rwin);
    rlab_free(rs);
    return rc;
}

/* Sequence log-probs of the pairs under net (no gradient) into ps->ref. */
static int ref_logps(const genrank_net *net, pairset *ps, rlab_err *err)
{
    const int n = net->cfg.maxlen, m = net->cfg.session, P = net->cfg.pairs;
    rlab_tape *t =
        rlab_tape_new(genrank_arena_bytes(&net->cfg, net->codes.n_items, 2 * P), 65536, err);
    int32_t *hh = rlab_malloc((size_t)2 * P * n * sizeof(int32_t));
    int32_t *it = rlab_malloc((size_t)2 * P * m * sizeof(int32_t));
    int rc = RLAB_OK;
    if (!t || !hh || !it) {
        rc = err->code ? err->code : rlab_errf(err, RLAB_ENOMEM, "out of memory");
        goto done;
    }
    for (int64_t p0 = 0; p0 < ps->n; p0 += P) {
        const int k = (int)(ps->n - p0 < P ? ps->n - p0 : P);
        for (int q = 0; q < k; q++)
            for (int s = 0; s < 2; s++) {
                memcpy(hh + ((size_t)s * k + q) * n, ps->hist + (size_t)(p0 + q) * n,
                       (size_t)n * sizeof(int32_t));
                memcpy(it + ((size_t)s * k + q) * m, ps->items + ((size_t)(p0 + q) * 2 + s) * m,
                       (size_t)m * sizeof(int32_t));
            }
        rlab_tape_reset(t);
        rlab_tape_set_training(t, 0);
        rlab_tensor *lp = genrank_seq_logp(net, t, net->frozen, hh, it, 2 * k);
        if (rlab_tape_error(t)) {
            rc = rlab_errf(err, rlab_tape_error(t), "genrank: %s", rlab_tape_errmsg(t));
            goto done;
        }
        for (int q = 0; q < k; q++) {
            ps->ref[(p0 + q) * 2] = lp->data[q];
            ps->ref[(p0 + q) * 2 + 1] = lp->data[k + q];
        }
    }
done:
    rlab_tape_free(t);
    rlab_free(hh);
    rlab_free(it);
    return rc;
}

/* One IPA iteration on pol: ipa_epochs passes over the pairs, each step
 * L = L_NTP(a batch of training samples) + lambda * L_DPO(a chunk of pairs), reference =
 * ps->ref (the previous iterate). Dropout off, except in the next-token term with
 * ipa_dropout; ipa_warmup steps of linear lr warm-up. *dpo_out = mean DPO loss of the last pass. */
static int ipa_train(rlab_ctx *ctx, genrank_net *pol, const rlab_view *v, pairset *ps,
                     uint64_t seed, double *dpo_out, double *acc_out)
{
    rlab_err *err = rlab_ctx_err(ctx);
    const genrank_cfg *c = &pol->cfg;
    const int n = c->maxlen, m = c->session, P = c->pairs;
    genrank_batcher bt;
    int rc = genrank_batcher_init(&bt, &v->train, n, m, c->batch, c->samples, seed, err);
    if (rc)
        return rc;
    rlab_tape *t =
        rlab_tape_new(genrank_arena_bytes(c, pol->codes.n_items, c->batch + 2 * P), 65536, err);
    rlab_opt_config oc = rlab_opt_defaults(RLAB_OPT_ADAM);
    oc.lr = (float)(c->ipa_lr > 0 ? c->ipa_lr : c->lr);
    oc.warmup_steps = c->ipa_warmup;
    rlab_opt *opt = t ? rlab_opt_new(pol->P, &oc, err) : NULL;
    if (opt && c->ipa_adam == GENRANK_ADAM_KEEP) {
        if (!pol->adam_m) /* a checkpoint saved before session 8: nothing to continue */
            rlab_ctx_printf(ctx, "genrank IPA: the model has no optimiser state (a checkpoint "
                                 "without it): the steps use a fresh Adam");
        else if ((rc = genrank_net_resume_adam(pol, opt, err))) {
            genrank_batcher_clear(&bt);
            rlab_tape_free(t);
            rlab_opt_free(opt);
            return rc;
        }
    }
    int32_t *hh = rlab_malloc((size_t)2 * P * n * sizeof(int32_t));
    int32_t *it = rlab_malloc((size_t)2 * P * m * sizeof(int32_t));
    float *ref = rlab_malloc((size_t)2 * P * sizeof(float));
    int32_t *order = rlab_malloc((size_t)(ps->n ? ps->n : 1) * sizeof(int32_t));
    if (!t || !opt || !hh || !it || !ref || !order) {
        rc = err->code ? err->code : rlab_errf(err, RLAB_ENOMEM, "out of memory");
        goto done;
    }
    for (int64_t i = 0; i < ps->n; i++)
        order[i] = (int32_t)i;
    rlab_rng rng;
    rlab_rng_seed(&rng, seed ^ 0x697061ULL);
    uint64_t step = 0;
    for (int e = 0; e < c->ipa_epochs; e++) {
        rlab_rng_shuffle_i32(&rng, order, (size_t)ps->n);
        double dsum = 0.0, acc = 0.0;
        int64_t dn = 0;
        for (int64_t p0 = 0; p0 < ps->n; p0 += P) {
            if (rlab_ctx_cancelled(ctx)) {
                rc = rlab_errf(err, RLAB_ECANCELED, "cancelled");
                goto done;
            }
            const int k = (int)(ps->n - p0 < P ? ps->n - p0 : P);
            for (int q = 0; q < k; q++)
                for (int s = 0; s < 2; s++) {
                    const int64_t pi = order[p0 + q];
                    memcpy(hh + ((size_t)s * k + q) * n, ps->hist + (size_t)pi * n,
                           (size_t)n * sizeof(int32_t));
                    memcpy(it + ((size_t)s * k + q) * m, ps->items + ((size_t)pi * 2 + s) * m,
                           (size_t)m * sizeof(int32_t));
                    ref[(size_t)s * k + q] = ps->ref[pi * 2 + s];
                }
            int B = genrank_batcher_next(&bt);
            if (B == 0) {
                genrank_batcher_epoch(&bt);
                B = genrank_batcher_next(&bt);
            }
            rlab_tape_reset(t);
            rlab_tape_seed(t, seed, step++);
            rlab_tape_set_training(t, c->ipa_dropout); /* the next-token term (option) */
            rlab_params_zero_grad(pol->P);
            double ntp = 0.0;
            rlab_tensor *L = NULL;
            if (c->ipa_ntp > 0) { /* ipa_ntp = 0: DPO only (the batch is drawn all the same) */
                L = genrank_ntp_loss(pol, t, bt.hist, bt.items, B, &ntp);
                if (c->ipa_ntp < 1.0f || c->ipa_ntp > 1.0f)
                    L = rlab_t_scale(t, L, c->ipa_ntp);
            }
            rlab_tape_set_training(t, 0); /* the pairs: as their reference, no dropout */
            rlab_tensor *lp = genrank_seq_logp(pol, t, pol->P->t, hh, it, 2 * k);
            rlab_tensor *pw = rlab_t_slice(t, lp, 0, 0, k), *pl = rlab_t_slice(t, lp, 0, k, k);
            rlab_tensor *rw = rlab_t_input(t, ref, 1, (int64_t[]){k});
            rlab_tensor *rl = rlab_t_input(t, ref + k, 1, (int64_t[]){k});
            rlab_tensor *dpo = rlab_t_dpo(t, pw, pl, rw, rl, c->beta), *pref = dpo;
            if (c->dpo_smooth > 0) /* conservative DPO: the label is wrong with prob. eps */
                pref = rlab_t_add(
                    t, rlab_t_scale(t, dpo, 1.0f - c->dpo_smooth),
                    rlab_t_scale(t, rlab_t_dpo(t, pl, pw, rl, rw, c->beta), c->dpo_smooth));
            pref = rlab_t_scale(t, pref, c->lambda);
            L = L ? rlab_t_add(t, L, pref) : pref;
            if (rlab_tape_error(t) || rlab_tape_backward(t, L)) {
                rc =
                    rlab_errf(err, rlab_tape_error(t), "genrank IPA step: %s", rlab_tape_errmsg(t));
                goto done;
            }
            if (rlab_opt_step(opt, pol->P)) {
                rc = rlab_errf(err, RLAB_EINVAL, "genrank: optimiser step failed");
                goto done;
            }
            dsum += (double)dpo->data[0] * k;
            for (int q = 0; q < k; q++)
                acc += (pw->data[q] - ref[q]) > (pl->data[q] - ref[k + q]);
            dn += k;
        }
        if (dpo_out)
            *dpo_out = dn ? dsum / (double)dn : 0.0;
        if (acc_out)
            *acc_out = dn ? acc / (double)dn : 0.0;
    }
    /* the iterate carries its optimiser's state (the next iteration's ipa_adam=keep continues
     * it); a fresh Adam's state is kept too, so a later keep has something to continue */
    if (step > 0)
        rc = genrank_net_keep_adam(pol, opt, err);
done:
    genrank_batcher_clear(&bt);
    rlab_tape_free(t);
    rlab_opt_free(opt);
    rlab_free(hh);
    rlab_free(it);
    rlab_free(ref);
    rlab_free(order);
    return rc;
}

/* Register a copy of net (+ a copy of r) as `name`, with src's host part. */
static int register_copy(rlab_ctx *ctx, const rlab_model *src, const genrank_net *net,
                         const genrank_reward *r, const char *name)
{
    rlab_err *err = rlab_ctx_err(ctx);
    genrank_net *nc = genrank_net_clone(net, err);
    genrank_reward *rc_ = nc && r ? reward_copy(r, err) : NULL;
    if (!nc || (r && !rc_)) {
        genrank_net_free(nc);
        return err->code ? err->code : RLAB_ENOMEM;
    }
    rlab_model *m = genrank_model_wrap(nc, rc_, name, src->kind, err);
    if (!m)
        return err->code ? err->code : RLAB_ENOMEM;
    m->n_users = src->n_users;
    snprintf(m->dataset, sizeof m->dataset, "%s", src->dataset);
    snprintf(m->dataset_sha256, sizeof m->dataset_sha256, "%s", src->dataset_sha256);
    m->config = src->config ? rlab_strdup(src->config) : NULL;
    m->train_opts = src->train_opts ? rlab_strdup(src->train_opts) : NULL;
    int rc = src->hist.n_users ? rlab_seqs_copy(&src->hist, &m->hist, err) : RLAB_OK;
    if (rc) {
        rlab_model_release(m);
        return rc;
    }
    return rlab_ctx_register_model(ctx, m);
}

/* The IPA fields an align / ipa command overrides (only the given arguments). */
static void ipa_overrides(const rlab_args *args, genrank_cfg *c)
{
    if (rlab_args_given(args, "beta"))
        c->beta = (float)rlab_args_float(args, "beta");
    if (rlab_args_given(args, "lambda"))
        c->lambda = (float)rlab_args_float(args, "lambda");
    if (rlab_args_given(args, "frac"))
        c->ipa_frac = (float)rlab_args_float(args, "frac");
    if (rlab_args_given(args, "ipa_beam"))
        c->ipa_beam = (int)rlab_args_int(args, "ipa_beam");
    if (rlab_args_given(args, "ipa_epochs"))
        c->ipa_epochs = (int)rlab_args_int(args, "ipa_epochs");
    if (rlab_args_given(args, "like_w"))
        c->like_w = (float)rlab_args_float(args, "like_w");
    if (rlab_args_given(args, "ipa_lr"))
        c->ipa_lr = rlab_args_float(args, "ipa_lr");
    if (rlab_args_given(args, "smooth"))
        c->dpo_smooth = (float)rlab_args_float(args, "smooth");
    if (rlab_args_given(args, "loser"))
        c->ipa_loser = strcmp(rlab_args_str(args, "loser"), "far") == 0 ? GENRANK_LOSER_FAR
                                                                        : GENRANK_LOSER_WORST;
    if (rlab_args_given(args, "ipa_dropout"))
        c->ipa_dropout = rlab_args_bool(args, "ipa_dropout");
    if (rlab_args_given(args, "ipa_warmup"))
        c->ipa_warmup = (int)rlab_args_int(args, "ipa_warmup");
    if (rlab_args_given(args, "ipa_adam"))
        c->ipa_adam = strcmp(rlab_args_str(args, "ipa_adam"), "keep") == 0 ? GENRANK_ADAM_KEEP
                                                                           : GENRANK_ADAM_FRESH;
    if (rlab_args_given(args, "ipa_ntp"))
        c->ipa_ntp = (float)rlab_args_float(args, "ipa_ntp");
    if (rlab_args_given(args, "guard")) {
        const char *g = rlab_args_str(args, "guard");
        c->ipa_guard = strcmp(g, "fixed") == 0 ? GENRANK_GUARD_FIXED
                       : strcmp(g, "ci") == 0  ? GENRANK_GUARD_CI
                       : strcmp(g, "se") == 0  ? GENRANK_GUARD_SE
                                               : GENRANK_GUARD_OFF;
    }
    if (rlab_args_given(args, "guard_tol"))
        c->ipa_guard_tol = (float)rlab_args_float(args, "guard_tol");
    if (rlab_args_given(args, "guard_tries"))
        c->ipa_guard_tries = (int)rlab_args_int(args, "guard_tries");
    if (rlab_args_given(args, "guard_lr"))
        c->ipa_guard_lr = rlab_args_bool(args, "guard_lr");
    if (rlab_args_given(args, "guard_lambda"))
        c->ipa_guard_lambda = rlab_args_bool(args, "guard_lambda");
    if (rlab_args_given(args, "guard_z"))
        c->ipa_guard_z = (float)rlab_args_float(args, "guard_z");
    if (rlab_args_given(args, "guard_users"))
        c->ipa_guard_users = (int)rlab_args_int(args, "guard_users");
    if (rlab_args_given(args, "guard_window"))
        c->ipa_guard_window = (int)rlab_args_int(args, "guard_window");
    if (rlab_args_given(args, "margin"))
        c->ipa_margin = (float)rlab_args_float(args, "margin");
}

/* The model's reward model (a copy), or a new one trained on the view (*trained = 1; with
 * signal=truth on a synthetic world its second tower learns the true satisfaction). */
static genrank_reward *get_reward(rlab_ctx *ctx, const rlab_args *args, const genrank_model *gm,
                                  const genrank_cfg *c, const rlab_view *v, const rlab_dataset *ds,
                                  const rlab_world *world, int *trained)
{
    rlab_err *err = rlab_ctx_err(ctx);
    *trained = 0;
    if (gm->reward && !rlab_args_given(args, "signal")) /* signal given: a new one */
        return reward_copy(gm->reward, err);
    const int truth = strcmp(rlab_args_str(args, "signal"), "truth") == 0;
    if (truth && !world) {
        rlab_ctx_errorf(ctx, RLAB_EINVAL,
                        "signal=truth needs a synthetic world (the demo world): dataset '%s' has "
                        "no true satisfaction",
                        ds->name);
        return NULL;
    }
    const uint64_t seed = (uint64_t)rlab_args_int(args, "seed");
    genrank_reward *r =
        genrank_reward_new(v->n_items, c->r_dim, c->session, c->maxlen, c->like_w, seed, err);
    if (!r)
        return NULL;
    if (genrank_reward_train(r, v, ds, truth ? world : NULL, c->r_epochs, seed, err)) {
        genrank_reward_free(r);
        return NULL;
    }
    *trained = 1;
    rlab_ctx_printf(ctx,
                    "reward model: %d epochs, held-out like AUC %.4f, mean BCE %.4f (like: rating "
                    ">= 4; second tower: %s; reward = %.2f like + %.2f second)",
                    c->r_epochs, r->auc_like, r->bce,
                    truth ? "the world's true satisfaction" : "rating / 5", (double)c->like_w,
                    1.0 - (double)c->like_w);
    rlab_ctx_metric(ctx, 0, "valid", "reward.auc_like", "full", r->auc_like);
    rlab_ctx_metric(ctx, 0, "valid", "reward.bce", "full", r->bce);
    return r;
}

/* The IPA update of one iteration with the validation guard (cfg ipa_guard; off: one try).
 * *curp (a clone of parent with the iteration's config) is replaced by the accepted iterate:
 * try k (k = 0 .. ipa_guard_tries - 1) trains a fresh clone of parent with lambda / 2^k (with
 * ipa_guard_lambda, the default) and the IPA learning rate / 2^k (with ipa_guard_lr) on the same
 * pairs, batches and seed, and passes when its session recall@10 on the VALIDATION items
 * (genrank_valid_recall, the same users as the measures) is not more than the tolerance below
 * parent's (paired by user; fixed: ipa_guard_tol, ci: the half-width of the paired 95% bootstrap
 * interval). No try passes: parent's parameters are kept. Table 'guard' has one row per try;
 * metrics guard_* at step = the iteration. The registered config keeps the configured lambda and
 * ipa_lr. */
static const char *const guard_cols[] = {"try",         "lambda",  "lr",         "valid_before",
                                         "valid_after", "d_valid", "d_valid_lo", "d_valid_hi",
                                         "tolerance",   "passed",  "dpo_loss"};
enum { NGCOLS = sizeof guard_cols / sizeof guard_cols[0] };

/* The standard error of the mean paired difference a - b over n users (sd / sqrt(n), the
 * sample sd with n - 1; 0 for n < 2). */
static double paired_se(const double *a, const double *b, int64_t n)
{
    if (n < 2)
        return 0.0;
    double mean = 0.0, ss = 0.0;
    for (int64_t i = 0; i < n; i++)
        mean += a[i] - b[i];
    mean /= (double)n;
    for (int64_t i = 0; i < n; i++)
        ss += (a[i] - b[i] - mean) * (a[i] - b[i] - mean);
    return sqrt(ss / (double)(n - 1) / (double)n);
}

static int guarded_train(rlab_ctx *ctx, const genrank_net *parent, genrank_net **curp,
                         const rlab_view *v, pairset *ps, uint64_t seed, double *dpo_out,
                         double *acc_out)
{
    rlab_err *err = rlab_ctx_err(ctx);
    genrank_net *cur = *curp;
    const genrank_cfg c0 = cur->cfg;
    const int guard = c0.ipa_guard, tries = guard == GENRANK_GUARD_OFF ? 1 : c0.ipa_guard_tries;
    const double lr0 = c0.ipa_lr > 0 ? c0.ipa_lr : c0.lr;
    const int it = cur->ipa_iter + 1, gusers = c0.ipa_guard_users;
    double *vb = NULL, *va = NULL, mb = (double)NAN, ma = (double)NAN;
    int64_t nb = 0, na = 0;
    rlab_table *tb = NULL;
    int rc = RLAB_OK;
    if (guard != GENRANK_GUARD_OFF) {
        if (!(tb = rlab_ctx_result_table(ctx, "guard", NGCOLS, guard_cols)))
            return RLAB_ENOMEM;
        if ((rc = genrank_valid_recall(parent, v, gusers, c0.ipa_guard_window, c0.beam, &vb, &nb,
                                       &mb, cancel_cb, ctx, err)))
            return rc;
    }
    genrank_net *acc_net = NULL;
    int k = 0;
    double lam = c0.lambda, lr = lr0, d[3] = {(double)NAN, (double)NAN, (double)NAN};
    for (; !rc && k < tries; k++) {
        lam = c0.ipa_guard_lambda ? (double)c0.lambda / (double)(1 << k) : (double)c0.lambda;
        lr = c0.ipa_guard_lr ? lr0 / (double)(1 << k) : lr0;
        genrank_net *cand = genrank_net_clone(parent, err);
        if (!cand) {
            rc = err->code ? err->code : RLAB_ENOMEM;
            break;
        }
        cand->cfg = c0;
        cand->cfg.lambda = (float)lam;
        cand->cfg.ipa_lr = lr;
        double dpo = 0.0, acc = 0.0;
        if ((rc = ipa_train(ctx, cand, v, ps, seed, &dpo, &acc))) {
            genrank_net_free(cand);
            break;
        }
        *dpo_out = dpo;
        *acc_out = acc;
        if (guard == GENRANK_GUARD_OFF) {
            acc_net = cand;
            k++;
            break;
        }
        rlab_free(va);
        va = NULL;
        if ((rc = genrank_valid_recall(cand, v, gusers, c0.ipa_guard_window, c0.beam, &va, &na, &ma,
                                       cancel_cb, ctx, err))) {
            genrank_net_free(cand);
            break;
        }
        if (na != nb) {
            genrank_net_free(cand);
            rc = rlab_ctx_errorf(ctx, RLAB_ESTATE, "genrank guard: %lld vs %lld users",
                                 (long long)na, (long long)nb);
            break;
        }
        if (genrank_boot_ci(va, vb, na, 1, 0, d)) {
            genrank_net_free(cand);
            rc = rlab_ctx_errorf(ctx, RLAB_ENOMEM, "out of memory");
            break;
        }
        const double tol = guard == GENRANK_GUARD_FIXED ? (double)c0.ipa_guard_tol
                           : guard == GENRANK_GUARD_SE
                               ? (double)c0.ipa_guard_z * paired_se(va, vb, na)
                               : 0.5 * (d[2] - d[1]);
        const int pass = d[0] >= -tol - 1e-12;
        rlab_ctx_printf(ctx,
                        "IPA guard, iteration %d try %d (lambda %.4g, lr %.3g): validation "
                        "session recall@10 %.4f -> %.4f, paired %+.4f [%+.4f, %+.4f], tolerance "
                        "%.4f: %s",
                        it, k + 1, lam, lr, mb, ma, d[0], d[1], d[2], tol,
                        pass ? "accepted" : "rejected");
        const double row[NGCOLS] = {k + 1, lam, lr, mb, ma, d[0], d[1], d[2], tol, pass, dpo};
        rlab_cell cells[NGCOLS];
        for (int q = 0; q < NGCOLS; q++)
            cells[q] = q == 0 || q == 9 ? (rlab_cell){.type = RLAB_CELL_INT, .i = (int64_t)row[q]}
                                        : (rlab_cell){.type = RLAB_CELL_FLOAT, .f = row[q]};
        if (rlab_table_add_cells(tb, cells)) {
            genrank_net_free(cand);
            rc = RLAB_ENOMEM;
            break;
        }
        if (pass) {
            acc_net = cand;
            k++;
            break;
        }
        genrank_net_free(cand);
    }
    const int kept = !rc && !acc_net;
    if (kept) { /* no try passed: the previous iterate's parameters */
        if (!(acc_net = genrank_net_clone(parent, err)))
            rc = err->code ? err->code : RLAB_ENOMEM;
        ma = mb;
        lam = lr = 0.0;
        rlab_ctx_printf(ctx,
                        "IPA guard, iteration %d: no try of %d kept the validation recall; the "
                        "iterate is its parent's parameters",
                        it, tries);
    }
    if (!rc) {
        acc_net->cfg = c0; /* the configured lambda / ipa_lr, not the accepted ones */
        acc_net->ipa_iter = cur->ipa_iter + 1;
        genrank_net_free(cur);
        *curp = acc_net;
        if (guard != GENRANK_GUARD_OFF) {
            rlab_ctx_metric(ctx, it, "train", "guard_tries", NULL, (double)k);
            rlab_ctx_metric(ctx, it, "train", "guard_kept", NULL, (double)kept);
            rlab_ctx_metric(ctx, it, "train", "guard_lambda", NULL, lam);
            rlab_ctx_metric(ctx, it, "train", "guard_lr", NULL, lr);
            rlab_ctx_metric(ctx, it, "train", "guard_valid_before", NULL, mb);
            rlab_ctx_metric(ctx, it, "train", "guard_valid_after", NULL, ma);
        }
    } else
        genrank_net_free(acc_net);
    rlab_free(vb);
    rlab_free(va);
    return rc;
}

/* The next iterate's default name: <base>_ipa<k + 1> for <base>_ipa<k>, else <model>_ipa<i>. */
static void next_name(const char *model, int i, char *out, size_t size)
{
    const char *p = strstr(model, "_ipa");
    const char *last = NULL;
    for (; p; p = strstr(p + 1, "_ipa"))
        last = p;
    if (last && last[4] && strspn(last + 4, "0123456789") == strlen(last + 4))
        snprintf(out, size, "%.*s_ipa%d", (int)(last - model), model, i);
    else
        snprintf(out, size, "%s_ipa%d", model, i);
}

/* genrank.ipa: ONE iteration of preference alignment from model M (its own run): pairs from
 * M's beams scored by M's reward model, L = L_NTP + lambda L_DPO against M, the new iterate
 * measured (table 'measures', metrics at step = its iteration) and registered. */
static int ipa_run(rlab_ctx *ctx, const rlab_args *args)
{
    rlab_err *err = rlab_ctx_err(ctx);
    genrank_model *gm = NULL;
    const rlab_model *m = genrank_arg(ctx, args, &gm);
    if (!m)
        return err->code;
    rlab_dataset *ds = NULL;
    rlab_view *v = model_view(ctx, m, &ds);
    if (!v)
        return err->code;
    rlab_ctx_run_describe(ctx, m->kind, m->dataset);
    const int users = (int)rlab_args_int(args, "users");
    const uint64_t seed = (uint64_t)rlab_args_int(args, "seed");
    rlab_world *world = world_of(ds);
    genrank_net *cur = genrank_net_clone(gm->net, err);
    genrank_reward *r = NULL;
    pairset ps = {0};
    int trained = 0, rc = cur ? RLAB_OK : (err->code ? err->code : RLAB_ENOMEM);
    if (!rc) {
        ipa_overrides(args, &cur->cfg);
        if (!(r = get_reward(ctx, args, gm, &cur->cfg, v, ds, world, &trained)))
            rc = err->code ? err->code : RLAB_ENOMEM;
    }
    const int i = cur ? cur->ipa_iter + 1 : 0;
    char nm[160];
    const char *given = rlab_args_str(args, "name");
    if (given && given[0])
        snprintf(nm, sizeof nm, "%s", given);
    else
        next_name(m->name, i, nm, sizeof nm);
    if (!rc && strlen(nm) > 63)
        rc = rlab_ctx_errorf(ctx, RLAB_EINVAL, "model name '%s' is longer than 63 bytes", nm);
    /* the user draw of iteration i: a function of (seed, i), as when align ran them in one go */
    const uint64_t is = seed * 1000003ULL + (uint64_t)i;
    if (!rc)
        rc = make_pairs(ctx, cur, r, v, is, &ps);
    if (!rc && ps.n == 0)
        rc = rlab_ctx_errorf(ctx, RLAB_ESTATE,
                             "IPA iteration %d: no preference pairs (raise frac or ipa_beam)", i);
    double mr = 0.0, dpo = 0.0, acc = 0.0;
    const int64_t npairs = ps.n;
    for (int64_t q = 0; q < ps.n; q++)
        mr += (double)(ps.rw[q] - ps.rl[q]);
    if (!rc) {
        const double np = npairs ? (double)npairs : 1.0;
        rlab_ctx_printf(ctx,
                        "IPA iteration %d pairs: %lld users searched, %lld tied, %lld below the "
                        "margin %.3g (reward gap over all: mean %.4f); kept pairs: %.2f of %d "
                        "items shared, same first item %.3f, beam rank of winner %.2f / loser "
                        "%.2f (of %d)",
                        i, (long long)ps.searched, (long long)ps.tied, (long long)ps.below_margin,
                        (double)cur->cfg.ipa_margin,
                        ps.searched ? ps.gap_all_sum / (double)ps.searched : 0.0,
                        ps.shared_sum / np, cur->cfg.session, ps.first_same / np, ps.win_rank / np,
                        ps.lose_rank / np, cur->cfg.ipa_beam);
        rlab_ctx_metric(ctx, i, "train", "pairs_searched", NULL, (double)ps.searched);
        rlab_ctx_metric(ctx, i, "train", "pairs_below_margin", NULL, (double)ps.below_margin);
        rlab_ctx_metric(ctx, i, "train", "pair_gap", NULL, npairs ? mr / np : 0.0);
        rlab_ctx_metric(ctx, i, "train", "pair_shared", NULL, ps.shared_sum / np);
        rlab_ctx_metric(ctx, i, "train", "pair_first_same", NULL, ps.first_same / np);
        rlab_ctx_metric(ctx, i, "train", "pair_win_rank", NULL, ps.win_rank / np);
        rlab_ctx_metric(ctx, i, "train", "pair_lose_rank", NULL, ps.lose_rank / np);
    }
    if (!rc)
        rc = ref_logps(cur, &ps, err);
    if (!rc)
        rc = guarded_train(ctx, gm->net, &cur, v, &ps, is, &dpo, &acc);
    if (!rc) {
        rlab_ctx_printf(ctx,
                        "IPA iteration %d from '%s': %lld pairs (mean reward gap %.4f), DPO loss "
                        "%.4f, preference accuracy vs reference %.3f",
                        i, m->name, (long long)npairs, npairs ? mr / (double)npairs : 0.0, dpo,
                        acc);
        rlab_ctx_metric(ctx, cur->ipa_iter, "train", "dpo_loss", NULL, dpo);
        rlab_ctx_metric(ctx, cur->ipa_iter, "train", "pairs", NULL, (double)npairs);
        rlab_ctx_metric(ctx, cur->ipa_iter, "train", "pref_acc", NULL, acc);
    }
    pairset_clear(&ps);
    /* the new iterate and, on the same users, the previous one (the paired differences) */
    genrank_measures ms = {0}, prev = {0};
    rlab_table *tb = NULL;
    if (!rc && !(tb = rlab_ctx_result_table(ctx, "measures", NMCOLS, measure_cols)))
        rc = RLAB_ENOMEM;
    const int paired = rlab_args_bool(args, "paired");
    if (!rc && paired)
        rc =
            genrank_measure(gm->net, r, world, v, users, cur->cfg.beam, &prev, cancel_cb, ctx, err);
    if (!rc &&
        !(rc = genrank_measure(cur, r, world, v, users, cur->cfg.beam, &ms, cancel_cb, ctx, err)))
        rc = report(ctx, tb, cur->ipa_iter, cur, &ms, paired ? &prev : NULL, m->name);
    if (!rc)
        rc = users_table(ctx, "users", &ms);
    genrank_measures_clear(&ms);
    genrank_measures_clear(&prev);
    if (!rc && !(rc = register_copy(ctx, m, cur, r, nm))) {
        rlab_ctx_result_model(ctx, "model", nm);
        rlab_ctx_result_str(ctx, "parent", m->name);
        rlab_ctx_result_int(ctx, "run", rlab_ctx_run_id(ctx));
        rlab_ctx_result_int(ctx, "iter", cur->ipa_iter);
    }
    rlab_world_free(world);
    genrank_net_free(cur);
    genrank_reward_free(r);
    rlab_view_free(v);
    rlab_host_dataset_release(rlab_ctx_host(ctx), ds);
    return rc;
}

static const char *const align_cols[] = {"run", "model", "parent", "pairs", "dpo_loss"};
enum { NACOLS = sizeof align_cols / sizeof align_cols[0] };

/* The numbers of one row of measure_cols: the cell of column col ("reward_mean"...). */
static double row_value(const rlab_cell *row, const char *col)
{
    for (int i = 0; i < NMCOLS; i++)
        if (strcmp(measure_cols[i], col) == 0)
            return row[i].type == RLAB_CELL_FLOAT ? row[i].f
                   : row[i].type == RLAB_CELL_INT ? (double)row[i].i
                                                  : (double)NAN;
    return (double)NAN;
}

/* genrank.align: the reward model (trained when M has none), the measures of M (this run,
 * step = its iteration), then `iters` calls of genrank.ipa, each its own run (parent_id = this
 * run) registering <name>_ipa<i> from the previous iterate; table 'ipa' reads their results. */
static int align_run(rlab_ctx *ctx, const rlab_args *args)
{
    rlab_err *err = rlab_ctx_err(ctx);
    genrank_model *gm = NULL;
    const rlab_model *m = genrank_arg(ctx, args, &gm);
    if (!m)
        return err->code;
    rlab_dataset *ds = NULL;
    rlab_view *v = model_view(ctx, m, &ds);
    if (!v)
        return err->code;
    rlab_host *host = rlab_ctx_host(ctx);
    rlab_ctx_run_describe(ctx, m->kind, m->dataset);
    const int iters = (int)rlab_args_int(args, "iters");
    const int users = (int)rlab_args_int(args, "users");
    const uint64_t seed = (uint64_t)rlab_args_int(args, "seed");
    const char *name = rlab_args_str(args, "name");
    const char *base = name && name[0] ? name : m->name;
    rlab_world *world = world_of(ds);
    genrank_cfg c = gm->net->cfg;
    ipa_overrides(args, &c);
    rlab_ctx_printf(
        ctx,
        "IPA on '%s': %d iterations (each a genrank.ipa run), beta %.3g, lambda %.3g, "
        "%.0f%% of users, %d sessions each, %d pass(es), %d pairs/step, lr %.3g, "
        "label smoothing %.3g, loser %s, NTP dropout %s, warm-up %d steps, Adam %s, NTP "
        "weight %.3g, "
        "validation guard %s (tolerance %.3g, z %.3g, %d tries%s, %d users, window "
        "%d), pair margin %.3g, seed %llu",
        m->name, iters, (double)c.beta, (double)c.lambda, 100.0 * (double)c.ipa_frac, c.ipa_beam,
        c.ipa_epochs, c.pairs, c.ipa_lr > 0 ? c.ipa_lr : c.lr, (double)c.dpo_smooth,
        genrank_loser_choices[c.ipa_loser], c.ipa_dropout ? "on" : "off", c.ipa_warmup,
        genrank_adam_choices[c.ipa_adam], (double)c.ipa_ntp, genrank_guard_choices[c.ipa_guard],
        (double)c.ipa_guard_tol, (double)c.ipa_guard_z, c.ipa_guard_tries,
        c.ipa_guard_lr ? (c.ipa_guard_lambda ? ", lr halved too" : ", lr halved, lambda kept") : "",
        c.ipa_guard_users, c.ipa_guard_window, (double)c.ipa_margin, (unsigned long long)seed);
    int trained = 0, rc = RLAB_OK;
    genrank_reward *r = get_reward(ctx, args, gm, &c, v, ds, world, &trained);
    if (!r)
        rc = err->code ? err->code : RLAB_ENOMEM;
    /* the model gets its reward model before the iterations read it (a new registration
     * under the same name: registered models are immutable) */
    if (!rc && trained)
        rc = register_copy(ctx, m, gm->net, r, m->name);
    rlab_table *tb = NULL;
    if (!rc) {
        const char *cols[NACOLS + NMCOLS];
        for (int i = 0; i < NACOLS; i++)
            cols[i] = align_cols[i];
        for (int i = 0; i < NMCOLS; i++)
            cols[NACOLS + i] = measure_cols[i];
        if (!(tb = rlab_ctx_result_table(ctx, "ipa", NACOLS + NMCOLS, cols)))
            rc = RLAB_ENOMEM;
    }
    genrank_measures ms = {0};
    rlab_cell row[NACOLS + NMCOLS], first[NMCOLS], last[NMCOLS];
    if (!rc &&
        !(rc = genrank_measure(gm->net, r, world, v, users, c.beam, &ms, cancel_cb, ctx, err))) {
        rlab_table *t0 = rlab_ctx_result_table(ctx, "measures", NMCOLS, measure_cols);
        rc = report(ctx, t0, gm->net->ipa_iter, gm->net, &ms, NULL, NULL);
        if (!rc)
            rc = users_table(ctx, "users0", &ms);
        genrank_measures_clear(&ms);
        if (rc)
            ;
        else if (!t0 || t0->nrows < 1)
            rc = RLAB_ENOMEM;
        else {
            memcpy(first, t0->cells, sizeof first);
            memcpy(last, first, sizeof last);
            row[0] = (rlab_cell){.type = RLAB_CELL_INT, .i = rlab_ctx_run_id(ctx)};
            row[1] = (rlab_cell){.type = RLAB_CELL_MODEL, .s = m->name};
            row[2] = row[3] = row[4] = (rlab_cell){.type = RLAB_CELL_NULL};
            memcpy(row + NACOLS, first, sizeof first);
            rlab_table_add_cells(tb, row);
        }
    }
    char prev[160];
    snprintf(prev, sizeof prev, "%s", m->name);
    for (int i = 1; !rc && i <= iters; i++) {
        char nm[160];
        snprintf(nm, sizeof nm, "%s_ipa%d", base, gm->net->ipa_iter + i);
        rlab_args *a = rlab_ctx_args(ctx, "genrank.ipa");
        if (!a || rlab_args_set(a, "model", prev, err) || rlab_args_set(a, "name", nm, err) ||
            rlab_args_set_int(a, "users", users, err) ||
            rlab_args_set_int(a, "seed", (int64_t)seed, err) ||
            rlab_args_set(a, "paired", rlab_args_bool(args, "paired") ? "true" : "false", err)) {
            rlab_args_free(a);
            rc = err->code ? err->code : RLAB_ENOMEM;
            break;
        }
        static const char *const fl[] = {"beta",   "lambda",    "frac",    "like_w", "ipa_lr",
                                         "smooth", "guard_tol", "guard_z", "margin", "ipa_ntp"};
        static const char *const in[] = {"ipa_beam",    "ipa_epochs",  "ipa_warmup",
                                         "guard_tries", "guard_users", "guard_window"};
        static const char *const ch[] = {"loser", "guard", "ipa_adam"};
        static const char *const bo[] = {"ipa_dropout", "guard_lr", "guard_lambda"};
        for (size_t k = 0; !rc && k < sizeof ch / sizeof ch[0]; k++)
            if (rlab_args_given(args, ch[k]))
                rc = rlab_args_set(a, ch[k], rlab_args_str(args, ch[k]), err);
        for (size_t k = 0; !rc && k < sizeof bo / sizeof bo[0]; k++)
            if (rlab_args_given(args, bo[k]))
                rc = rlab_args_set(a, bo[k], rlab_args_bool(args, bo[k]) ? "true" : "false", err);
        for (size_t k = 0; !rc && k < sizeof fl / sizeof fl[0]; k++)
            if (rlab_args_given(args, fl[k]))
                rc = rlab_args_set_float(a, fl[k], rlab_args_float(args, fl[k]), err);
        for (size_t k = 0; !rc && k < sizeof in / sizeof in[0]; k++)
            if (rlab_args_given(args, in[k]))
                rc = rlab_args_set_int(a, in[k], rlab_args_int(args, in[k]), err);
        if (rc) {
            rlab_args_free(a);
            break;
        }
        rlab_result *res = NULL;
        rc = rlab_ctx_call(ctx, a, &res);
        const rlab_table *mt = NULL;
        for (int k = 0; res && k < res->ntables; k++)
            if (strcmp(res->tables[k]->name, "measures") == 0)
                mt = res->tables[k];
        if (!rc && (!mt || mt->nrows < 1 || mt->ncols != NMCOLS))
            rc = rlab_ctx_errorf(ctx, RLAB_ESTATE, "genrank.ipa: no measures in its result");
        if (!rc) {
            const rlab_cell *run = rlab_result_scalar(res, "run");
            const rlab_cell *np = rlab_result_scalar(res, "train.pairs");
            const rlab_cell *dl = rlab_result_scalar(res, "train.dpo_loss");
            row[0] = run ? *run : (rlab_cell){.type = RLAB_CELL_NULL};
            row[1] = (rlab_cell){.type = RLAB_CELL_MODEL, .s = nm};
            row[2] = (rlab_cell){.type = RLAB_CELL_MODEL, .s = prev};
            row[3] = np ? *np : (rlab_cell){.type = RLAB_CELL_NULL};
            row[4] = dl ? *dl : (rlab_cell){.type = RLAB_CELL_NULL};
            memcpy(row + NACOLS, mt->cells, NMCOLS * sizeof(rlab_cell));
            rlab_table_add_cells(tb, row); /* copies the text */
            for (int k = 0; k < NMCOLS; k++)
                last[k] = mt->cells[k].type == RLAB_CELL_FLOAT || mt->cells[k].type == RLAB_CELL_INT
                              ? mt->cells[k]
                              : (rlab_cell){.type = RLAB_CELL_NULL};
            rlab_ctx_result_model(ctx, "model", nm);
            snprintf(prev, sizeof prev, "%s", nm);
            /* the iterate's per-user measures as table users<i> */
            for (int k = 0; !rc && res && k < res->ntables; k++) {
                const rlab_table *ut = res->tables[k];
                if (strcmp(ut->name, "users") != 0 || ut->ncols != NUCOLS)
                    continue;
                char tn[32];
                snprintf(tn, sizeof tn, "users%d", i);
                rlab_table *cp = rlab_ctx_result_table(ctx, tn, NUCOLS, user_cols);
                for (int64_t q = 0; cp && !rc && q < ut->nrows; q++)
                    rc = rlab_table_add_cells(cp, ut->cells + (size_t)q * NUCOLS);
                if (!cp)
                    rc = RLAB_ENOMEM;
            }
        }
        rlab_result_free(res);
    }
    if (!rc) {
        rlab_ctx_result_float(ctx, "reward_mean_before", row_value(first, "reward_mean"));
        rlab_ctx_result_float(ctx, "reward_mean_after", row_value(last, "reward_mean"));
        rlab_ctx_result_float(ctx, "recall10_after", row_value(last, "recall@10"));
        rlab_ctx_result_float(ctx, "reward_auc_like", r ? r->auc_like : (double)NAN);
        if (world) {
            rlab_ctx_result_float(ctx, "true_mean_before", row_value(first, "true_mean"));
            rlab_ctx_result_float(ctx, "true_mean_after", row_value(last, "true_mean"));
        }
    }
    rlab_world_free(world);
    genrank_reward_free(r);
    rlab_view_free(v);
    rlab_host_dataset_release(host, ds);
    return rc;
}

static int measure_run(rlab_ctx *ctx, const rlab_args *args)
{
    rlab_err *err = rlab_ctx_err(ctx);
    genrank_model *gm = NULL;
    const rlab_model *m = genrank_arg(ctx, args, &gm);
    if (!m)
        return err->code;
    rlab_dataset *ds = NULL;
    rlab_view *v = model_view(ctx, m, &ds);
    if (!v)
        return err->code;
    genrank_measures ms = {0}, rm = {0};
    rlab_world *world = world_of(ds);
    const int users = (int)rlab_args_int(args, "users"), beam = (int)rlab_args_int(args, "beam");
    /* ref=: a model of the same dataset measured on the same users (paired differences) */
    const char *ref = rlab_args_str(args, "ref");
    genrank_model *rgm = NULL;
    const rlab_model *rmod = NULL;
    int rc = RLAB_OK;
    if (ref && ref[0]) {
        if (!(rmod = rlab_ctx_model(ctx, ref)))
            rc = err->code ? err->code : RLAB_EINVAL;
        else if (!(rgm = genrank_model_of(rmod)))
            rc = rlab_ctx_errorf(ctx, RLAB_EINVAL, "ref '%s' is a %s model, not onerec / tiger",
                                 ref, rmod->kind);
        else if (strcmp(rmod->dataset, m->dataset) != 0)
            rc = rlab_ctx_errorf(ctx, RLAB_EINVAL, "ref '%s' is of dataset '%s', not '%s'", ref,
                                 rmod->dataset, m->dataset);
    }
    rlab_table *tb = rlab_ctx_result_table(ctx, "measures", NMCOLS, measure_cols);
    if (!rc && !tb)
        rc = RLAB_ENOMEM;
    if (!rc && rgm)
        rc =
            genrank_measure(rgm->net, rgm->reward, world, v, users, beam, &rm, cancel_cb, ctx, err);
    if (!rc)
        rc = genrank_measure(gm->net, gm->reward, world, v, users, beam, &ms, cancel_cb, ctx, err);
    rlab_world_free(world);
    if (!rc)
        rc = report(ctx, tb, gm->net->ipa_iter, gm->net, &ms, rgm ? &rm : NULL, ref);
    if (!rc)
        rc = users_table(ctx, "users", &ms);
    if (!rc) {
        rlab_ctx_result_float(ctx, "recall@10", ms.recall[1]);
        rlab_ctx_result_float(ctx, "ndcg@10", ms.ndcg[1]);
        rlab_ctx_result_float(ctx, "legality", ms.legality);
        rlab_ctx_result_float(ctx, "reward_mean", ms.reward_mean);
        if (!isnan(ms.true_mean))
            rlab_ctx_result_float(ctx, "true_mean", ms.true_mean);
    }
    genrank_measures_clear(&ms);
    genrank_measures_clear(&rm);
    rlab_view_free(v);
    rlab_host_dataset_release(rlab_ctx_host(ctx), ds);
    return rc;
}

/* ---- show ----------------------------------------------------------------------------------- */

static void tuple_str(const genrank_codes *cd, int32_t item, const int32_t *tok, char *buf,
                      size_t size)
{
    size_t o = 0;
    buf[0] = 0;
    for (int l = 0; l < cd->Lt && o < size; l++)
        o += (size_t)snprintf(buf + o, size - o, "%s%d", l ? "." : "<",
                              tok ? tok[l] : cd->codes[(int64_t)item * cd->Lt + l]);
    if (o < size)
        snprintf(buf + o, size - o, ">");
}

static const char *item_name(const rlab_dataset *ds, int32_t it, char *buf, size_t size)
{
    if (it < 0)
        return "(illegal)";
    const char *s = ds ? rlab_vocab_name(&ds->items, it) : NULL;
    snprintf(buf, size, "%s", s ? s : "?");
    if (!s)
        snprintf(buf, size, "#%d", (int)it);
    return buf;
}

static int show_run(rlab_ctx *ctx, const rlab_args *args)
{
    rlab_err *err = rlab_ctx_err(ctx);
    genrank_model *gm = NULL;
    const rlab_model *m = genrank_arg(ctx, args, &gm);
    if (!m)
        return err->code;
    const genrank_net *net = gm->net;
    const genrank_codes *cd = &net->codes;
    rlab_host *host = rlab_ctx_host(ctx);
    rlab_dataset *ds = m->dataset[0] ? rlab_host_dataset_get(host, m->dataset) : NULL;
    const char *us = rlab_args_str(args, "user");
    int32_t u = ds ? rlab_vocab_find(&ds->users, us, strlen(us)) : -1;
    if (u < 0) {
        char *end = NULL;
        long x = strtol(us[0] == '#' ? us + 1 : us, &end, 10);
        if (end && !*end && x >= 0 && x < m->n_users)
            u = (int32_t)x;
    }
    if (u < 0 || u >= m->hist.n_users) {
        if (ds)
            rlab_host_dataset_release(host, ds);
        return rlab_ctx_errorf(ctx, RLAB_ENOTFOUND, "no user '%s' in model '%s'", us, m->name);
    }
    const int W = (int)rlab_args_int(args, "beam"), m_ = net->cfg.session, Lt = cd->Lt;
    const int32_t *h = NULL;
    const int64_t nh = rlab_model_user_hist(m, u, &h);
    genrank_beam_out bo;
    int rc = genrank_beam(net, h, nh, h, nh, W, m_, 1, &bo, err);
    float *rs = NULL, *lk = NULL, *wt = NULL;
    int32_t *rw = NULL;
    char b1[96], b2[512], b3[512];
    if (!rc) {
        rlab_table *th = rlab_ctx_result_table(ctx, "history", 3,
                                               (const char *const[]){"pos", "item", "tokens"});
        const int64_t from = nh > net->cfg.maxlen ? nh - net->cfg.maxlen : 0;
        for (int64_t i = from; th && i < nh; i++) {
            tuple_str(cd, h[i], NULL, b2, sizeof b2);
            rlab_table_add_row(th, "iss", (int)(i - from), item_name(ds, h[i], b1, sizeof b1), b2);
        }
        rlab_ctx_printf(ctx, "user %s: %lld history items (the encoder sees the last %d)", us,
                        (long long)nh, net->cfg.maxlen);
    }
    if (!rc && gm->reward && bo.W > 0) {
        const genrank_reward *r = gm->reward;
        rs = rlab_malloc((size_t)bo.W * 3 * sizeof(float));
        rw = rlab_malloc((size_t)bo.W * r->maxlen * sizeof(int32_t));
        if (!rs || !rw)
            rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
        else {
            lk = rs + bo.W;
            wt = lk + bo.W;
            for (int b = 0; b < bo.W; b++)
                genrank_reward_window(r, h, nh, rw + (size_t)b * r->maxlen);
            rc = genrank_reward_score(r, rw, bo.items, bo.W, rs, lk, wt, err);
        }
    }
    int bw = -1, bl = -1;
    for (int b = 0; rs && b < bo.W; b++) {
        if (bw < 0 || rs[b] > rs[bw])
            bw = b;
        if (bl < 0 || rs[b] < rs[bl])
            bl = b;
    }
    if (!rc) {
        rlab_table *tb =
            rlab_ctx_result_table(ctx, "beams", 8,
                                  (const char *const[]){"rank", "logp", "reward", "like", "watch",
                                                        "role", "items", "tokens"});
        for (int b = 0; tb && b < bo.W; b++) {
            size_t o2 = 0, o3 = 0;
            b2[0] = b3[0] = 0;
            for (int i = 0; i < m_; i++) {
                const int32_t it = bo.items[(size_t)b * m_ + i];
                o2 += (size_t)snprintf(b2 + o2, o2 < sizeof b2 ? sizeof b2 - o2 : 0, "%s%s",
                                       i ? " " : "", item_name(ds, it, b1, sizeof b1));
                char tt[96];
                tuple_str(cd, it, bo.tokens + (size_t)b * m_ * Lt + (size_t)i * Lt, tt, sizeof tt);
                o3 += (size_t)snprintf(b3 + o3, o3 < sizeof b3 ? sizeof b3 - o3 : 0, "%s%s",
                                       i ? " " : "", tt);
            }
            const char *role = b == bw ? "winner" : b == bl ? "loser" : "";
            if (rs)
                rlab_table_add_row(tb, "iffffsss", b + 1, (double)bo.logp[b], (double)rs[b],
                                   (double)lk[b], (double)wt[b], role, b2, b3);
            else
                rlab_table_add_row(tb, "if---sss", b + 1, (double)bo.logp[b], role, b2, b3);
        }
        /* the best session's tokens level by level */
        rlab_table *tl = rlab_ctx_result_table(
            ctx, "tokens", 4, (const char *const[]){"item_pos", "level", "token", "item"});
        for (int i = 0; tl && bo.W > 0 && i < m_; i++)
            for (int l = 0; l < Lt; l++)
                rlab_table_add_row(tl, "iiis", i + 1, l + 1,
                                   (int)bo.tokens[(size_t)i * Lt + (size_t)l],
                                   item_name(ds, bo.items[i], b1, sizeof b1));
        rlab_ctx_printf(ctx, "%d beams of %d items; winner #%d, loser #%d%s", bo.W, m_, bw + 1,
                        bl + 1, rs ? "" : " (no reward model: run genrank.align first)");
        rlab_ctx_result_int(ctx, "beams", bo.W);
        if (bw >= 0) {
            rlab_ctx_result_float(ctx, "winner_reward", rs[bw]);
            rlab_ctx_result_float(ctx, "loser_reward", rs[bl]);
        }
    }
    genrank_beam_out_clear(&bo);
    rlab_free(rs);
    rlab_free(rw);
    if (ds)
        rlab_host_dataset_release(host, ds);
    return rc;
}

/* ---- the descriptor ---------------------------------------------------------------------- */

static const char *const signal_choices[] = {"ratings", "truth", NULL};
static const char *const loser_choices[] = {"worst", "far", NULL};
static const char *const guard_choices[] = {"off", "fixed", "ci", "se", NULL};
static const char *const adam_choices[] = {"fresh", "keep", NULL};

/* The arguments genrank.align and genrank.ipa share (the same names, values and help) */
#define GENRANK_DPO_ARGS                                                                           \
    {.name = "beta",                                                                               \
     .type = RLAB_ARG_FLOAT,                                                                       \
     .def = "0.1",                                                                                 \
     .min = 1e-4,                                                                                  \
     .max = 1000,                                                                                  \
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,                                                       \
     .help = "DPO beta (default: the model's config)"},                                            \
        {.name = "lambda",                                                                         \
         .type = RLAB_ARG_FLOAT,                                                                   \
         .def = "0.5",                                                                             \
         .min = 0,                                                                                 \
         .max = 1000,                                                                              \
         .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,                                                   \
         .help = "DPO weight (default: the model's config)"},                                      \
        {.name = "frac",                                                                           \
         .type = RLAB_ARG_FLOAT,                                                                   \
         .def = "0.2",                                                                             \
         .min = 1e-4,                                                                              \
         .max = 1,                                                                                 \
         .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,                                                   \
         .help = "fraction of users giving pairs (default: the model's config)"},                  \
        {.name = "ipa_beam",                                                                       \
         .type = RLAB_ARG_INT,                                                                     \
         .def = "16",                                                                              \
         .min = 2,                                                                                 \
         .max = 1024,                                                                              \
         .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,                                                   \
         .help = "sessions per user (default: config)"},                                           \
        {.name = "ipa_epochs",                                                                     \
         .type = RLAB_ARG_INT,                                                                     \
         .def = "2",                                                                               \
         .min = 1,                                                                                 \
         .max = 1000,                                                                              \
         .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,                                                   \
         .help = "passes over the pairs (default: config)"},                                       \
        {.name = "ipa_lr",                                                                         \
         .type = RLAB_ARG_FLOAT,                                                                   \
         .def = "0",                                                                               \
         .min = 0,                                                                                 \
         .max = 10,                                                                                \
         .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,                                                   \
         .help = "learning rate of the IPA steps, 0 = the model's lr (default: config)"},          \
        {.name = "smooth",                                                                         \
         .type = RLAB_ARG_FLOAT,                                                                   \
         .def = "0.25",                                                                            \
         .min = 0,                                                                                 \
         .max = 0.49,                                                                              \
         .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,                                                   \
         .help = "conservative DPO label smoothing epsilon (default: config dpo_smooth)"},         \
        {.name = "loser",                                                                          \
         .type = RLAB_ARG_CHOICE,                                                                  \
         .def = "worst",                                                                           \
         .choices = loser_choices,                                                                 \
         .help = "the pair's loser: worst (lowest reward) or far (the lower-reward session "       \
                 "sharing the fewest items with the winner; default: config ipa_loser)"},          \
        {.name = "ipa_dropout",                                                                    \
         .type = RLAB_ARG_BOOL,                                                                    \
         .def = "true",                                                                            \
         .help = "the next-token term of the IPA steps with the model's dropout (default: "        \
                 "config)"},                                                                       \
        {.name = "ipa_warmup",                                                                     \
         .type = RLAB_ARG_INT,                                                                     \
         .def = "0",                                                                               \
         .min = 0,                                                                                 \
         .max = 1 << 20,                                                                           \
         .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,                                                   \
         .help = "IPA steps of linear learning-rate warm-up (default: config)"},                   \
        {.name = "ipa_adam",                                                                       \
         .type = RLAB_ARG_CHOICE,                                                                  \
         .def = "fresh",                                                                           \
         .choices = adam_choices,                                                                  \
         .help = "the IPA steps' Adam: fresh (new moments) or keep (continue the training's / "    \
                 "the parent iterate's moments and step count; default: config ipa_adam)"},        \
        {.name = "ipa_ntp",                                                                        \
         .type = RLAB_ARG_FLOAT,                                                                   \
         .def = "1",                                                                               \
         .min = 0,                                                                                 \
         .max = 1000,                                                                              \
         .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,                                                   \
         .help = "weight of the IPA steps' next-token term, 0 = DPO only (default: config)"},      \
        {.name = "guard",                                                                          \
         .type = RLAB_ARG_CHOICE,                                                                  \
         .def = "se",                                                                              \
         .choices = guard_choices,                                                                 \
         .help = "validation guard: off, fixed (reject an update whose validation session "        \
                 "recall@10 falls more than guard_tol below the previous iterate's), ci (more "    \
                 "than the paired bootstrap half-width), se (more than guard_z standard errors "   \
                 "of the paired difference); default: config ipa_guard"},                          \
        {.name = "guard_tol",                                                                      \
         .type = RLAB_ARG_FLOAT,                                                                   \
         .def = "0.005",                                                                           \
         .min = -1,                                                                                \
         .max = 1,                                                                                 \
         .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,                                                   \
         .help = "guard=fixed: the largest accepted drop, < 0 a demanded gain (default: config "   \
                 "ipa_guard_tol)"},                                                                \
        {.name = "guard_tries",                                                                    \
         .type = RLAB_ARG_INT,                                                                     \
         .def = "3",                                                                               \
         .min = 1,                                                                                 \
         .max = 16,                                                                                \
         .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,                                                   \
         .help = "guard: tries per iteration, each retry with lambda halved (default: config)"},   \
        {.name = "guard_z",                                                                        \
         .type = RLAB_ARG_FLOAT,                                                                   \
         .def = "1",                                                                               \
         .min = 0,                                                                                 \
         .max = 10,                                                                                \
         .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,                                                   \
         .help = "guard=se: the tolerance in standard errors of the paired difference (default: "  \
                 "config ipa_guard_z)"},                                                           \
        {.name = "guard_users",                                                                    \
         .type = RLAB_ARG_INT,                                                                     \
         .def = "2000",                                                                            \
         .min = 0,                                                                                 \
         .max = 1 << 30,                                                                           \
         .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,                                                   \
         .help = "guard: users measured, evenly spaced (0 = every user with a validation item; "   \
                 "default: config ipa_guard_users)"},                                              \
        {.name = "guard_window",                                                                   \
         .type = RLAB_ARG_INT,                                                                     \
         .def = "1",                                                                               \
         .min = 1,                                                                                 \
         .max = 64,                                                                                \
         .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,                                                   \
         .help = "guard: held-out items per user, the validation item and the last window - 1 "    \
                 "training items (default: config ipa_guard_window)"},                             \
        {.name = "margin",                                                                         \
         .type = RLAB_ARG_FLOAT,                                                                   \
         .def = "0",                                                                               \
         .min = 0,                                                                                 \
         .max = 1,                                                                                 \
         .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,                                                   \
         .help = "IPA: skip a pair whose reward gap is below this (default: config ipa_margin)"},  \
        {.name = "guard_lr",                                                                       \
         .type = RLAB_ARG_BOOL,                                                                    \
         .def = "false",                                                                           \
         .help = "guard: a retry also halves the IPA learning rate (default: config)"},            \
    {                                                                                              \
        .name = "guard_lambda", .type = RLAB_ARG_BOOL, .def = "true",                              \
        .help = "guard: a retry halves lambda (default: config ipa_guard_lambda)"                  \
    }

#define GENRANK_REWARD_ARGS                                                                        \
    {.name = "like_w",                                                                             \
     .type = RLAB_ARG_FLOAT,                                                                       \
     .def = "0.5",                                                                                 \
     .min = 0,                                                                                     \
     .max = 1,                                                                                     \
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,                                                       \
     .help = "reward = like_w * like + (1 - like_w) * second tower (default: config)"},            \
    {                                                                                              \
        .name = "signal", .type = RLAB_ARG_CHOICE, .def = "ratings", .choices = signal_choices,    \
        .help = "the reward model's second tower: ratings (rating / 5) or truth (the synthetic "   \
                "world's true satisfaction); given, a new reward model replaces the model's"       \
    }

#define GENRANK_PAIRED_ARG                                                                         \
    {                                                                                              \
        .name = "paired", .type = RLAB_ARG_BOOL, .def = "true",                                    \
        .help = "also measure the previous iterate on the same users: the paired differences "     \
                "d_* (twice the measuring time)"                                                   \
    }

static const rlab_arg align_args[] = {
    {.name = "model",
     .type = RLAB_ARG_MODEL,
     .flags = RLAB_ARGF_REQUIRED,
     .help = "an onerec / tiger model"},
    {.name = "iters",
     .type = RLAB_ARG_INT,
     .def = "2",
     .min = 0,
     .max = 100,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
     .help = "IPA iterations (0: the reward model and the measures of the model only)"},
    {.name = "users",
     .type = RLAB_ARG_INT,
     .def = "300",
     .min = 0,
     .max = 1 << 30,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
     .help = "users measured per iteration (evenly spaced; 0 = all)"},
    GENRANK_DPO_ARGS,
    {.name = "seed",
     .type = RLAB_ARG_INT,
     .def = "2025",
     .flags = RLAB_ARGF_INT64,
     .help = "seed of the user draw and the reward model"},
    GENRANK_PAIRED_ARG,
    GENRANK_REWARD_ARGS,
    {.name = "name",
     .type = RLAB_ARG_STRING,
     .def = "",
     .help = "prefix of the iterates' names (default: the model's)"},
    {0}};

/* genrank.ipa: align_args without iters, name = the new iterate's name */
static const rlab_arg ipa_args[] = {
    {.name = "model",
     .type = RLAB_ARG_MODEL,
     .flags = RLAB_ARGF_REQUIRED,
     .help = "the onerec / tiger model (or iterate) to align from"},
    {.name = "users",
     .type = RLAB_ARG_INT,
     .def = "300",
     .min = 0,
     .max = 1 << 30,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
     .help = "users measured (evenly spaced; 0 = all)"},
    GENRANK_DPO_ARGS,
    GENRANK_REWARD_ARGS,
    {.name = "seed",
     .type = RLAB_ARG_INT,
     .def = "2025",
     .flags = RLAB_ARGF_INT64,
     .help = "seed of the user draw (with the iteration) and of a new reward model"},
    GENRANK_PAIRED_ARG,
    {.name = "name",
     .type = RLAB_ARG_STRING,
     .def = "",
     .help =
         "the new iterate's name (default: <model>_ipa<i>, <base>_ipa<k+1> from <base>_ipa<k>)"},
    {0}};

static const rlab_arg measure_args[] = {{.name = "model",
                                         .type = RLAB_ARG_MODEL,
                                         .flags = RLAB_ARGF_REQUIRED,
                                         .help = "an onerec / tiger model"},
                                        {.name = "users",
                                         .type = RLAB_ARG_INT,
                                         .def = "0",
                                         .min = 0,
                                         .max = 1 << 30,
                                         .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
                                         .help = "users measured (evenly spaced; 0 = all)"},
                                        {.name = "beam",
                                         .type = RLAB_ARG_INT,
                                         .def = "20",
                                         .min = 1,
                                         .max = 1024,
                                         .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
                                         .help = "beam width"},
                                        {.name = "ref",
                                         .type = RLAB_ARG_STRING,
                                         .def = "",
                                         .help = "a model measured on the same users: paired "
                                                 "differences model - ref with 95% bootstrap "
                                                 "intervals (d_* columns)"},
                                        {0}};

static const rlab_arg show_args[] = {{.name = "model",
                                      .type = RLAB_ARG_MODEL,
                                      .flags = RLAB_ARGF_REQUIRED,
                                      .help = "an onerec / tiger model"},
                                     {.name = "user",
                                      .type = RLAB_ARG_STRING,
                                      .flags = RLAB_ARGF_REQUIRED,
                                      .help = "user id of the dataset (or #index)"},
                                     {.name = "beam",
                                      .type = RLAB_ARG_INT,
                                      .def = "8",
                                      .min = 1,
                                      .max = 1024,
                                      .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
                                      .help = "beam width"},
                                     {0}};

static const rlab_cmd genrank_cmds[] = {
    {.name = "align",
     .args = align_args,
     .help = "Iterative preference alignment (OneRec IPA) of an onerec / tiger model.\n"
             "Trains the reward model R when the model has none, measures the model, then per\n"
             "iteration: beam-searches ipa_beam sessions for a fraction of users, scores them\n"
             "with R (winner = best, loser = worst), trains L = L_NTP + lambda * L_DPO against\n"
             "the previous iterate, measures it and registers it as <name>_ipa<i>: each\n"
             "iteration is a genrank.ipa run of its own (parent: this run). Table 'ipa': one\n"
             "row per iterate, read from those runs' results. signal=truth (demo world): the\n"
             "reward model learns the users' true satisfaction.\n"
             "Example: genrank.align model=onerec iters=2",
     .flags = RLAB_CMD_JOB,
     .run = align_run},
    {.name = "ipa",
     .args = ipa_args,
     .help = "One iteration of preference alignment from an onerec / tiger model, as a run.\n"
             "Beam-searches ipa_beam sessions for a fraction of users with the model, scores\n"
             "them with its reward model (trained first when it has none), trains\n"
             "L = L_NTP + lambda * L_DPO with the model as the reference, measures the new\n"
             "iterate (table 'measures', metrics at step = its iteration) and registers it.\n"
             "genrank.align calls it once per iteration.\n"
             "Example: genrank.ipa model=onerec_ipa1 frac=0.3",
     .flags = RLAB_CMD_JOB,
     .run = ipa_run},
    {.name = "measure",
     .args = measure_args,
     .help = "Session measures of an onerec / tiger model on its dataset's valid targets.\n"
             "Recall/NDCG@5,10,20 of the beam's items (best session first) against the next\n"
             "items (valid + test, up to m), the first item vs the next item, reward mean/max\n"
             "over the beam, per-level entropy, expert load, legality without the trie.",
     .flags = RLAB_CMD_JOB,
     .run = measure_run},
    {.name = "show",
     .args = show_args,
     .help = "One user's generated sessions: history (table 'history'), the beam's sessions\n"
             "with rewards, winner and loser (table 'beams'), the best session's tokens level\n"
             "by level (table 'tokens').\n"
             "Example: genrank.show model=onerec user=17",
     .flags = RLAB_CMD_READONLY,
     .run = show_run},
    {0}};

/* the measures of every IPA iteration (the align run's iteration 0, each genrank.ipa run) and of
 * genrank.measure, with the run's parent run and its models */
static const char ipa_sql[] =
    "SELECT r.id AS run, r.parent_id AS parent_run, r.name AS name,"
    " json_extract(r.config, '$.model') AS from_model,"
    " CASE WHEN r.name = 'genrank.ipa' THEN json_extract(r.config, '$.name') END AS model,"
    " m.step AS iter,"
    " max(CASE WHEN m.name = 'pairs' THEN m.value END) AS pairs,"
    " max(CASE WHEN m.name = 'dpo_loss' THEN m.value END) AS dpo_loss,"
    " max(CASE WHEN m.name = 'recall@10' THEN m.value END) AS recall10,"
    " max(CASE WHEN m.name = 'ndcg@10' THEN m.value END) AS ndcg10,"
    " max(CASE WHEN m.name = 'first_r@10' THEN m.value END) AS first_r10,"
    " max(CASE WHEN m.name = 'reward_mean' THEN m.value END) AS reward_mean,"
    " max(CASE WHEN m.name = 'reward_max' THEN m.value END) AS reward_max,"
    " max(CASE WHEN m.name = 'true_mean' THEN m.value END) AS true_mean,"
    " max(CASE WHEN m.name = 'ent_l1' THEN m.value END) AS ent_l1,"
    " max(CASE WHEN m.name = 'ent_last' THEN m.value END) AS ent_last,"
    " max(CASE WHEN m.name = 'load_max' THEN m.value END) AS load_max,"
    " max(CASE WHEN m.name = 'legality' THEN m.value END) AS legality"
    " FROM runs r JOIN metrics m ON m.run_id = r.id"
    " WHERE r.plugin = 'genrank' AND r.name IN ('genrank.align', 'genrank.ipa', 'genrank.measure')"
    " GROUP BY r.id, m.step HAVING recall10 IS NOT NULL ORDER BY r.id, m.step";

static const rlab_view_kind genrank_views[] = {
    {.name = "ipa", .title = "genrank IPA iterations", .kind = "table", .source = ipa_sql}, {0}};

RLAB_PLUGIN(genrank)
{
    RLAB_PLUGIN_INIT(out);
    out->name = "genrank";
    out->version = "0.1.0";
    out->summary = "OneRec: generative ranking with MoE, a reward model and preference alignment";
    out->models = genrank_kinds;
    out->commands = genrank_cmds;
    out->views = genrank_views;
    return RLAB_OK;
}
