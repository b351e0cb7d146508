/*
 * plugins/attack/plugin.c: the attack plugin descriptor and its command.
 *
 *   attack.extract victim=V data=D [budget=5000] [len=50] [kind=sasrec] [epochs=20]
 *                  [k=100] [trunc=0] [noise=0] [limit=0] [seed=42] ...
 *
 * runs Yue et al.'s data-free extraction end to end as one job: wrap the victim in a black box
 * (blackbox.c), generate `budget` synthetic sequences through it (datafree.c), register them
 * as a dataset, train the surrogate on it with the host's `train KIND` verb (through
 * rlab_ctx_call, like any other plugin command), then measure fidelity on the held-out real
 * sequences of D (fidelity.c) and the utility of surrogate and victim with the host's `eval`
 * (full ranking, and sampled-100 labelled as such, to compare with Yue et al.'s Table 4).
 * D is the attacker's catalogue (item ids, which a public service exposes) and the
 * experimenter's test set; the attacker never reads its interactions.
 */
#include "host/plugin.h"
#include "attack.h"

#include "data/view.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int gen_progress(void *ud, int64_t done, int64_t total)
{
    rlab_ctx *ctx = ud;
    rlab_ctx_progress(ctx, done, total, "sequences", 0, NULL);
    return rlab_ctx_cancelled(ctx);
}

/* eval model=M data=D split=test k=10 [neg=100]: record ndcg@10 / hr@10 under split `who`. */
static int utility(rlab_ctx *ctx, const char *model, const char *data, const char *who, int neg,
                   rlab_table *t)
{
    char line[256];
    snprintf(line, sizeof line, "eval model=%s data=%s split=test k=10 neg=%d", model, data, neg);
    rlab_result *res = NULL;
    int rc = rlab_ctx_call_line(ctx, line, &res);
    if (rc == RLAB_OK) {
        const char *proto = neg > 0 ? "sampled-100" : "full";
        static const char *const names[] = {"ndcg@10", "hr@10"};
        for (int i = 0; i < 2 && rc == RLAB_OK; i++) {
            const rlab_cell *c = rlab_result_scalar(res, names[i]);
            double v = c ? (c->type == RLAB_CELL_FLOAT ? c->f : (double)c->i) : 0.0;
            char nm[48];
            snprintf(nm, sizeof nm, "%s%s", names[i], neg > 0 ? "_s100" : "");
            rc = rlab_ctx_metric(ctx, 0, who, nm, proto, v);
            if (rc == RLAB_OK && t)
                rc = rlab_table_add_row(t, "ssf", who, nm, v);
        }
    }
    rlab_result_free(res);
    return rc;
}

/* The few-shot attack's data: a seeded sample of fs_frac of the users of ds (their training
 * sequences: leave-one-out, so neither the valid nor the test item), the interaction sampler
 * (a `train sampler_kind` on the sampler's share of them), then attack_gen_fewshot. */
static int fewshot_generate(rlab_ctx *ctx, const rlab_args *args, attack_bb *bb,
                            const rlab_dataset *ds, const char *sname, const attack_gen_opts *go,
                            const attack_fs_opts *fo, double fs_frac, uint64_t seed,
                            attack_synth *syn, attack_fs_stats *fst, double *sampler_s)
{
    rlab_view_opts vo = rlab_view_defaults();
    rlab_view *v = NULL;
    int rc = rlab_view_new(ds, &vo, &v, rlab_ctx_err(ctx));
    if (rc)
        return rc;
    const int32_t U = v->n_users;
    int32_t *perm = rlab_ctx_alloc(ctx, (size_t)U * sizeof *perm + 1);
    const int32_t **rs = rlab_ctx_alloc(ctx, (size_t)U * sizeof *rs + 1);
    int32_t *rl = rlab_ctx_alloc(ctx, (size_t)U * sizeof *rl + 1);
    if (!perm || !rs || !rl) {
        rlab_view_free(v);
        return rlab_ctx_errorf(ctx, RLAB_ENOMEM, "out of memory");
    }
    /* the attacker's users: a seeded shuffle of those with at least two training items */
    int32_t ne = 0;
    for (int32_t u = 0; u < U; u++)
        if (v->train.off[u + 1] - v->train.off[u] >= 2)
            perm[ne++] = u;
    rlab_rng rng;
    rlab_rng_seed(&rng, seed ^ 0x66657773686f74ull);
    for (int32_t i = ne - 1; i > 0; i--) {
        int32_t j = (int32_t)rlab_rng_below(&rng, (uint64_t)i + 1), x = perm[i];
        perm[i] = perm[j];
        perm[j] = x;
    }
    int64_t n_fs = (int64_t)floor(fs_frac * (double)U + 0.5);
    if (n_fs > ne)
        n_fs = ne;
    if (n_fs < 2) {
        rlab_view_free(v);
        return rlab_ctx_errorf(ctx, RLAB_EINVAL, "fewshot=%g of %d users leaves %lld sequences",
                               fs_frac, U, (long long)n_fs);
    }
    for (int64_t i = 0; i < n_fs; i++) {
        const int32_t u = perm[i];
        rs[i] = v->train.items + v->train.off[u];
        rl[i] = (int32_t)(v->train.off[u + 1] - v->train.off[u]);
    }
    rlab_ctx_printf(ctx, "few-shot: %lld of %d users' training sequences (%.1f%%)", (long long)n_fs,
                    U, 100.0 * (double)n_fs / (double)U);
    const rlab_model *sampler = NULL;
    char smp[80];
    snprintf(smp, sizeof smp, "%s.smp", sname);
    if (fo->use_sampler) {
        /* the sampler learns from the first sequences; the gate from the last gate_hold */
        const int64_t n_hold = fo->use_gate ? (int64_t)ceil((double)n_fs * fo->gate_hold) : 0;
        const int64_t n_tr = n_fs - n_hold > 1 ? n_fs - n_hold : n_fs;
        attack_synth fs = {.n = n_tr};
        fs.off = rlab_ctx_alloc(ctx, (size_t)(n_tr + 1) * sizeof *fs.off);
        int64_t tot = 0;
        for (int64_t i = 0; i < n_tr; i++)
            tot += rl[i];
        fs.items = rlab_ctx_alloc(ctx, (size_t)tot * sizeof *fs.items + 1);
        if (!fs.off || !fs.items) {
            rlab_view_free(v);
            return rlab_ctx_errorf(ctx, RLAB_ENOMEM, "out of memory");
        }
        fs.off[0] = 0;
        for (int64_t i = 0; i < n_tr; i++) {
            memcpy(fs.items + fs.off[i], rs[i], (size_t)rl[i] * sizeof *fs.items);
            fs.off[i + 1] = fs.off[i] + rl[i];
        }
        char fsname[80];
        snprintf(fsname, sizeof fsname, "%s.fs", sname);
        rlab_dataset *fds = attack_synth_dataset(&fs, fsname, &ds->items, rlab_ctx_err(ctx));
        if (!fds || (rc = rlab_ctx_add_dataset(ctx, fds)) != RLAB_OK) {
            rlab_view_free(v);
            return fds ? rc : rlab_ctx_err(ctx)->code;
        }
        char line[768];
        snprintf(line, sizeof line,
                 "train %s data=%s name=%s split=none eval_every=0 eval_test=false epochs=%lld "
                 "seed=%llu maxlen=%d %s",
                 rlab_args_str(args, "sampler_kind"), fsname, smp,
                 (long long)rlab_args_int(args, "sampler_epochs"), (unsigned long long)seed,
                 go->len, rlab_args_str(args, "sampler_train"));
        double t0 = now_s();
        rc = rlab_ctx_call_line(ctx, line, NULL);
        *sampler_s = now_s() - t0;
        if (rc) {
            rlab_view_free(v);
            return rc;
        }
        sampler = rlab_ctx_model(ctx, smp);
        if (!sampler) {
            rlab_view_free(v);
            return RLAB_ENOTFOUND;
        }
    }
    rc = attack_gen_fewshot(bb, go, fo, rs, rl, n_fs, sampler, gen_progress, ctx, syn, fst,
                            rlab_ctx_err(ctx));
    rlab_view_free(v);
    return rc;
}

static int extract_run(rlab_ctx *ctx, const rlab_args *args)
{
    const char *vname = rlab_args_str(args, "victim");
    const char *dname = rlab_args_str(args, "data");
    const char *kind = rlab_args_str(args, "kind");
    const rlab_model *victim = rlab_ctx_model(ctx, vname);
    const rlab_dataset *ds = victim ? rlab_ctx_dataset(ctx, dname) : NULL;
    if (!victim || !ds)
        return RLAB_ENOTFOUND;
    if (victim->n_items != ds->items.n)
        return rlab_ctx_errorf(ctx, RLAB_EINVAL,
                               "victim '%s' has %d items, dataset '%s' %d: give the dataset the "
                               "victim was trained on",
                               vname, victim->n_items, dname, ds->items.n);
    char sname[64], syname[64];
    const char *given = rlab_args_str(args, "name");
    if (given && given[0])
        snprintf(sname, sizeof sname, "%s", given);
    else if (snprintf(sname, sizeof sname, "%s.sur", vname) >= (int)sizeof sname)
        return rlab_ctx_errorf(ctx, RLAB_EINVAL, "victim name too long: give name=");
    if (snprintf(syname, sizeof syname, "%s.syn", sname) >= (int)sizeof syname)
        return rlab_ctx_errorf(ctx, RLAB_EINVAL, "surrogate name too long for its dataset");
    { /* the surrogate kind must exist before we spend queries */
        char full[96];
        snprintf(full, sizeof full, "train %s", kind);
        rlab_args *probe = rlab_ctx_args(ctx, full);
        if (!probe)
            return rlab_ctx_err(ctx)->code ? rlab_ctx_err(ctx)->code : RLAB_ENOTFOUND;
        rlab_args_free(probe);
    }
    const uint64_t seed = (uint64_t)rlab_args_int(args, "seed");
    rlab_ctx_run_describe(ctx, kind, dname);

    /* 1. the black box */
    attack_bb_opts bo = attack_bb_defaults();
    bo.k = (int)rlab_args_int(args, "k");
    bo.trunc = (int)rlab_args_int(args, "trunc");
    bo.noise = rlab_args_float(args, "noise");
    bo.limit = rlab_args_int(args, "limit");
    bo.mask_seen = rlab_args_bool(args, "mask");
    bo.seed = seed ^ 0x9e3779b97f4a7c15ull; /* the service's noise: not the attacker's draws */
    rlab_model *vm = rlab_models_get(rlab_host_models(rlab_ctx_host(ctx)), vname);
    if (!vm)
        return rlab_ctx_errorf(ctx, RLAB_ENOTFOUND, "model '%s' not found", vname);
    attack_bb *bb = attack_bb_new(vm, &bo, rlab_ctx_err(ctx));
    rlab_model_release(vm); /* the black box holds its own reference */
    if (!bb)
        return rlab_ctx_err(ctx)->code;

    /* 2. generation: data-free, or few-shot (real sequences, sampler, gate) */
    const int rank = rlab_args_choice(args, "loss") == 0;
    attack_gen_opts go = attack_gen_defaults();
    go.n_seqs = rlab_args_int(args, "budget");
    go.len = (int)rlab_args_int(args, "len");
    go.sample = rlab_args_choice(args, "sample");
    go.batch = (int)rlab_args_int(args, "batch");
    go.keep_lists = rank;
    go.seed = seed;
    attack_synth syn = {0};
    attack_fs_stats fst = {0};
    const double fs_frac = rlab_args_float(args, "fewshot");
    double t0 = now_s(), sampler_s = 0.0;
    int rc;
    if (fs_frac > 0.0) {
        attack_fs_opts fo = attack_fs_defaults();
        fo.use_sampler = rlab_args_bool(args, "sampler");
        fo.use_gate = rlab_args_bool(args, "gate");
        fo.sampler_list = rlab_args_bool(args, "sampler_list");
        rc = fewshot_generate(ctx, args, bb, ds, sname, &go, &fo, fs_frac, seed, &syn, &fst,
                              &sampler_s);
    } else
        rc = attack_gen_datafree(bb, &go, gen_progress, ctx, &syn, rlab_ctx_err(ctx));
    double gen_s = now_s() - t0 - sampler_s;
    int64_t queries = attack_bb_queries(bb);
    attack_bb_free(bb);
    if (rc) {
        attack_synth_clear(&syn);
        return rc;
    }
    if (fs_frac > 0.0)
        rlab_ctx_printf(ctx,
                        "few-shot: %lld real sequences, %lld synthetic; gate fitted on %lld "
                        "prefixes (%lld favour the victim), %.0f%% of the synthetic steps "
                        "followed the victim",
                        (long long)fst.real_seqs, (long long)fst.synth_seqs,
                        (long long)fst.gate_examples, (long long)fst.gate_pos,
                        100.0 * fst.victim_share);
    rlab_ctx_printf(ctx, "generated %lld sequences (%lld items) with %lld queries in %.2f s",
                    (long long)syn.n, (long long)(syn.n ? syn.off[syn.n] : 0), (long long)queries,
                    gen_s);
    if (syn.n < 1) {
        attack_synth_clear(&syn);
        return rlab_ctx_errorf(ctx, RLAB_ESTATE, "no sequence generated (query limit %lld)",
                               (long long)bo.limit);
    }
    rlab_dataset *sds = attack_synth_dataset(&syn, syname, &ds->items, rlab_ctx_err(ctx));
    attack_synth_clear(&syn);
    if (!sds)
        return rlab_ctx_err(ctx)->code;
    rc = rlab_ctx_add_dataset(ctx, sds);
    if (rc)
        return rc;

    /* 3. the surrogate, trained by the host's verb on the synthetic sequences */
    char line[1024], rank_opts[128];
    snprintf(rank_opts, sizeof rank_opts, "repair=%g repair_k=%lld rank_margin=%g",
             rlab_args_float(args, "repair"), (long long)rlab_args_int(args, "repair_k"),
             rlab_args_float(args, "margin"));
    int n = snprintf(line, sizeof line,
                     "train %s data=%s name=%s split=none eval_every=0 eval_test=false "
                     "epochs=%lld seed=%llu %s%s %s",
                     kind, syname, sname, (long long)rlab_args_int(args, "epochs"),
                     (unsigned long long)seed, rank ? "loss=rank " : "", rank ? rank_opts : "",
                     rlab_args_str(args, "train"));
    if (n >= (int)sizeof line)
        return rlab_ctx_errorf(ctx, RLAB_EINVAL, "train= is too long");
    t0 = now_s();
    rc = rlab_ctx_call_line(ctx, line, NULL);
    double train_s = now_s() - t0;
    if (rc)
        return rc;

    /* 4. fidelity on the held-out real sequences (test inputs: train + valid) */
    const rlab_model *sur = rlab_ctx_model(ctx, sname);
    if (!sur)
        return RLAB_ENOTFOUND;
    rlab_view_opts vo = rlab_view_defaults();
    rlab_view *v = NULL;
    rc = rlab_view_new(ds, &vo, &v, rlab_ctx_err(ctx));
    if (rc)
        return rc;
    int64_t cap = rlab_args_int(args, "eval_users"), ne = 0;
    const int32_t **qs = rlab_ctx_alloc(ctx, (size_t)v->n_users * sizeof *qs + 1);
    int32_t *ql = rlab_ctx_alloc(ctx, (size_t)v->n_users * sizeof *ql + 1);
    if (!qs || !ql) {
        rlab_view_free(v);
        return rlab_ctx_errorf(ctx, RLAB_ENOMEM, "out of memory");
    }
    for (int32_t u = 0; u < v->n_users && (cap == 0 || ne < cap); u++) {
        if (v->test.off[u + 1] == v->test.off[u]) /* no held-out target: not a test user */
            continue;
        qs[ne] = v->hist_test.items + v->hist_test.off[u];
        ql[ne++] = (int32_t)(v->hist_test.off[u + 1] - v->hist_test.off[u]);
    }
    attack_fidelity fd;
    rc = ne > 0 ? attack_fidelity_eval(victim, sur, qs, ql, ne, &fd, rlab_ctx_err(ctx))
                : rlab_ctx_errorf(ctx, RLAB_EINVAL, "dataset '%s' has no test users", dname);
    rlab_view_free(v);
    if (rc)
        return rc;

    /* 5. record */
    rlab_table *t =
        rlab_ctx_result_table(ctx, "attack", 3, (const char *const[]){"part", "metric", "value"});
    struct {
        const char *split, *name, *proto;
        double v;
    } rows[] = {{"fidelity", "agr@1", "full", fd.agr1},
                {"fidelity", "agr@10", "full", fd.agr10},
                {"fidelity", "em@10", "full", fd.em10},
                {"fidelity", "kl@100", "full", fd.kl100},
                {"fidelity", "users", "full", (double)fd.n_users},
                {"attack", "queries", "", (double)queries},
                {"attack", "sequences", "", (double)(sds->users.n)},
                {"attack", "gen_seconds", "", gen_s},
                {"attack", "sampler_seconds", "", sampler_s},
                {"attack", "fewshot_real", "", (double)fst.real_seqs},
                {"attack", "victim_share", "", fst.victim_share},
                {"attack", "sampler_mass", "", fst.sampler_mass},
                {"attack", "train_seconds", "", train_s}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0] && rc == RLAB_OK; i++) {
        rc = rlab_ctx_metric(ctx, 0, rows[i].split, rows[i].name, rows[i].proto, rows[i].v);
        if (rc == RLAB_OK && t)
            rc = rlab_table_add_row(t, "ssf", rows[i].split, rows[i].name, rows[i].v);
    }
    if (rc == RLAB_OK)
        rc = utility(ctx, sname, dname, "surrogate", 0, t);
    if (rc == RLAB_OK)
        rc = utility(ctx, sname, dname, "surrogate", 100, t);
    if (rc == RLAB_OK && rlab_args_bool(args, "eval_victim"))
        rc = utility(ctx, vname, dname, "victim", 0, t);
    if (rc == RLAB_OK && rlab_args_bool(args, "eval_victim"))
        rc = utility(ctx, vname, dname, "victim", 100, t);
    if (rc)
        return rc;
    rlab_ctx_result_int(ctx, "queries", queries);
    rlab_ctx_result_model(ctx, "surrogate", sname);
    rlab_ctx_result_str(ctx, "synthetic", syname);
    rlab_ctx_printf(ctx,
                    "%s <- %s: agr@1 %.4f  agr@10 %.4f  em@10 %.4f  kl@100 %.4f over %lld "
                    "held-out sequences; %lld queries",
                    sname, vname, fd.agr1, fd.agr10, fd.em10, fd.kl100, (long long)fd.n_users,
                    (long long)queries);
    return RLAB_OK;
}

/* Real users' query sequences of ds (leave-one-out test inputs: train + valid), the first cap
 * (0 = all); *v is the view they point into (the caller frees it). */
static int test_queries(rlab_ctx *ctx, const rlab_dataset *ds, int64_t cap, rlab_view **v,
                        const int32_t ***qs, int32_t **ql, int64_t *n)
{
    rlab_view_opts vo = rlab_view_defaults();
    int rc = rlab_view_new(ds, &vo, v, rlab_ctx_err(ctx));
    if (rc)
        return rc;
    *qs = rlab_ctx_alloc(ctx, (size_t)(*v)->n_users * sizeof **qs + 1);
    *ql = rlab_ctx_alloc(ctx, (size_t)(*v)->n_users * sizeof **ql + 1);
    if (!*qs || !*ql)
        return rlab_ctx_errorf(ctx, RLAB_ENOMEM, "out of memory");
    *n = 0;
    for (int32_t u = 0; u < (*v)->n_users && (cap == 0 || *n < cap); u++) {
        const rlab_seqs *h = &(*v)->hist_test;
        if (h->off[u + 1] == h->off[u])
            continue;
        (*qs)[*n] = h->items + h->off[u];
        (*ql)[(*n)++] = (int32_t)(h->off[u + 1] - h->off[u]);
    }
    return RLAB_OK;
}

static int promote_run(rlab_ctx *ctx, const rlab_args *args)
{
    const char *vname = rlab_args_str(args, "victim"), *dname = rlab_args_str(args, "data");
    const char *sname = rlab_args_str(args, "surrogate");
    const int method = rlab_args_choice(args, "method");
    const rlab_model *victim = rlab_ctx_model(ctx, vname);
    const rlab_dataset *ds = victim ? rlab_ctx_dataset(ctx, dname) : NULL;
    if (!victim || !ds)
        return RLAB_ENOTFOUND;
    const rlab_model *sur = NULL;
    if (method == ATTACK_PROMO_SURROGATE) {
        if (!sname || !sname[0])
            return rlab_ctx_errorf(ctx, RLAB_EINVAL, "method=surrogate needs surrogate=");
        if (!(sur = rlab_ctx_model(ctx, sname)))
            return RLAB_ENOTFOUND;
        if (sur->n_items != victim->n_items)
            return rlab_ctx_errorf(ctx, RLAB_EINVAL, "surrogate '%s' has %d items, victim %d",
                                   sname, sur->n_items, victim->n_items);
    }
    if (victim->n_items != ds->items.n)
        return rlab_ctx_errorf(ctx, RLAB_EINVAL, "victim '%s' has %d items, dataset '%s' %d", vname,
                               victim->n_items, dname, ds->items.n);
    const uint64_t seed = (uint64_t)rlab_args_int(args, "seed");
    const char *kind = rlab_args_str(args, "kind");
    rlab_ctx_run_describe(ctx, kind, dname);
    int32_t target = (int32_t)rlab_args_int(args, "target");
    if (target >= ds->items.n)
        return rlab_ctx_errorf(ctx, RLAB_EINVAL, "target=%d outside the catalogue of %d items",
                               target, ds->items.n);
    if (target < 0) { /* an unpopular item: seeded among those with 5..20 interactions */
        int64_t *cnt = rlab_ctx_alloc(ctx, (size_t)ds->items.n * sizeof *cnt);
        if (!cnt)
            return rlab_ctx_errorf(ctx, RLAB_ENOMEM, "out of memory");
        memset(cnt, 0, (size_t)ds->items.n * sizeof *cnt);
        for (size_t r = 0; r < ds->inter.n; r++)
            cnt[ds->inter.item[r]]++;
        int64_t nc = 0;
        for (int32_t i = 0; i < ds->items.n; i++)
            nc += cnt[i] >= 5 && cnt[i] <= 20;
        rlab_rng rng;
        rlab_rng_seed(&rng, seed ^ 0x7461726765747eull);
        int64_t pick = nc > 0 ? (int64_t)rlab_rng_below(&rng, (uint64_t)nc) : 0;
        target = 0;
        for (int32_t i = 0; i < ds->items.n; i++)
            if (nc == 0 || (cnt[i] >= 5 && cnt[i] <= 20 && pick-- == 0)) {
                target = i;
                break;
            }
    }
    /* 1. exposure before */
    rlab_view *v = NULL;
    const int32_t **qs = NULL;
    int32_t *ql = NULL;
    int64_t nq = 0;
    int rc = test_queries(ctx, ds, rlab_args_int(args, "eval_users"), &v, &qs, &ql, &nq);
    attack_exposure_stats before, after;
    if (rc == RLAB_OK)
        rc = attack_exposure(victim, qs, ql, nq, target, &before, rlab_ctx_err(ctx));
    /* 2. the injected sequences */
    int64_t n_fake = rlab_args_int(args, "n_fake");
    if (n_fake == 0)
        n_fake = ds->users.n / 100 > 0 ? ds->users.n / 100 : 1;
    attack_synth fake = {0};
    if (rc == RLAB_OK)
        rc = attack_promo_sequences(
            sur, victim->n_items, target, (int)n_fake, (int)rlab_args_int(args, "len"),
            (int)rlab_args_int(args, "cand"), method, seed, &fake, rlab_ctx_err(ctx));
    char pname[112], mname[96];
    const char *given = rlab_args_str(args, "name");
    if (given && given[0])
        snprintf(mname, sizeof mname, "%s", given);
    else
        snprintf(mname, sizeof mname, "%s.promo_%s", vname,
                 method == ATTACK_PROMO_SURROGATE ? "sur" : "rand");
    snprintf(pname, sizeof pname, "%s.data", mname);
    if (strlen(mname) > 63 || strlen(pname) > 63) {
        attack_synth_clear(&fake);
        rlab_view_free(v);
        return rlab_ctx_errorf(ctx, RLAB_EINVAL, "model name '%s' too long: give name=", mname);
    }
    rlab_dataset *pds = NULL;
    if (rc == RLAB_OK && !(pds = attack_poisoned_dataset(ds, &fake, pname, rlab_ctx_err(ctx))))
        rc = rlab_ctx_err(ctx)->code;
    attack_synth_clear(&fake);
    if (rc == RLAB_OK)
        rc = rlab_ctx_add_dataset(ctx, pds);
    /* 3. the victim retrained on the poisoned data (the same verb, kind and settings) */
    double t0 = now_s();
    if (rc == RLAB_OK) {
        char line[1024];
        int n = snprintf(line, sizeof line, "train %s data=%s name=%s epochs=%lld seed=%llu %s",
                         kind, pname, mname, (long long)rlab_args_int(args, "epochs"),
                         (unsigned long long)seed, rlab_args_str(args, "train"));
        rc = n >= (int)sizeof line ? rlab_ctx_errorf(ctx, RLAB_EINVAL, "train= is too long")
                                   : rlab_ctx_call_line(ctx, line, NULL);
    }
    const double retrain_s = now_s() - t0;
    /* 4. exposure after, over the same real users */
    const rlab_model *pm = rc == RLAB_OK ? rlab_ctx_model(ctx, mname) : NULL;
    if (rc == RLAB_OK && !pm)
        rc = RLAB_ENOTFOUND;
    if (rc == RLAB_OK)
        rc = attack_exposure(pm, qs, ql, nq, target, &after, rlab_ctx_err(ctx));
    rlab_view_free(v);
    if (rc)
        return rc;
    rlab_table *t = rlab_ctx_result_table(ctx, "promotion", 3,
                                          (const char *const[]){"part", "metric", "value"});
    struct {
        const char *split, *name;
        double v;
    } rows[] = {{"before", "hit@10", before.hit10},       {"before", "mean_rank", before.mean_rank},
                {"after", "hit@10", after.hit10},         {"after", "mean_rank", after.mean_rank},
                {"attack", "target", (double)target},     {"attack", "fake_users", (double)n_fake},
                {"attack", "users", (double)after.users}, {"attack", "retrain_seconds", retrain_s}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0] && rc == RLAB_OK; i++) {
        rc = rlab_ctx_metric(ctx, 0, rows[i].split, rows[i].name, "full", rows[i].v);
        if (rc == RLAB_OK && t)
            rc = rlab_table_add_row(t, "ssf", rows[i].split, rows[i].name, rows[i].v);
    }
    if (rc)
        return rc;
    rlab_ctx_result_model(ctx, "poisoned", mname);
    rlab_ctx_printf(ctx,
                    "target %d (%s): hit@10 %.4f -> %.4f, mean rank %.1f -> %.1f over %lld "
                    "users; %lld injected sequences (%s)",
                    target, rlab_vocab_name(&ds->items, target), before.hit10, after.hit10,
                    before.mean_rank, after.mean_rank, (long long)after.users, (long long)n_fake,
                    method == ATTACK_PROMO_SURROGATE ? "surrogate-guided" : "random");
    return RLAB_OK;
}

static const char *const sample_choices[] = {"uniform", "top1", NULL};
static const char *const loss_choices[] = {"rank", "next", NULL};

static const rlab_arg extract_args[] = {
    {.name = "victim",
     .type = RLAB_ARG_MODEL,
     .flags = RLAB_ARGF_REQUIRED,
     .help = "registered model to extract (any kind)"},
    {.name = "data",
     .type = RLAB_ARG_DATASET,
     .flags = RLAB_ARGF_REQUIRED,
     .help = "the victim's dataset: its catalogue, and the held-out sequences of the measures"},
    {.name = "budget",
     .type = RLAB_ARG_INT,
     .def = "5000",
     .min = 1,
     .flags = RLAB_ARGF_MIN,
     .help = "synthetic sequences to generate (Yue et al. Table 4: 5000)"},
    {.name = "len",
     .type = RLAB_ARG_INT,
     .def = "50",
     .min = 2,
     .max = 4096,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
     .help = "items per synthetic sequence (len - 1 queries each; Yue: the victim's max_len)"},
    {.name = "kind",
     .type = RLAB_ARG_STRING,
     .def = "sasrec",
     .help = "surrogate model kind (any kind that `train` knows)"},
    {.name = "name",
     .type = RLAB_ARG_STRING,
     .def = "",
     .help = "surrogate model name (default <victim>.sur; its data <name>.syn)"},
    {.name = "epochs",
     .type = RLAB_ARG_INT,
     .def = "20",
     .min = 1,
     .flags = RLAB_ARGF_MIN,
     .help = "surrogate training epochs (no validation: the data are synthetic)"},
    {.name = "train",
     .type = RLAB_ARG_STRING,
     .def = "",
     .help = "more surrogate fields, as `train` takes them (\"dim=64 blocks=2\")"},
    {.name = "k",
     .type = RLAB_ARG_INT,
     .def = "100",
     .min = 1,
     .flags = RLAB_ARGF_MIN,
     .help = "black box: list length per query"},
    {.name = "trunc",
     .type = RLAB_ARG_INT,
     .def = "0",
     .min = 0,
     .flags = RLAB_ARGF_MIN,
     .help = "defence: return only the first trunc items (0 = all k)"},
    {.name = "noise",
     .type = RLAB_ARG_FLOAT,
     .def = "0",
     .min = 0,
     .flags = RLAB_ARGF_MIN,
     .help = "defence: score noise, in units of the row's score sd"},
    {.name = "limit",
     .type = RLAB_ARG_INT,
     .def = "0",
     .min = 0,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_INT64,
     .help = "defence: at most this many queries (0 = unlimited)"},
    {.name = "mask",
     .type = RLAB_ARG_BOOL,
     .def = "true",
     .help = "black box: never return the query's own items (as `recommend`)"},
    {.name = "sample",
     .type = RLAB_ARG_CHOICE,
     .def = "uniform",
     .choices = sample_choices,
     .help = "next item: uniform over the list (Yue) or its first"},
    {.name = "batch",
     .type = RLAB_ARG_INT,
     .def = "64",
     .min = 1,
     .flags = RLAB_ARGF_MIN,
     .help = "sequences generated together"},
    {.name = "eval_users",
     .type = RLAB_ARG_INT,
     .def = "0",
     .min = 0,
     .flags = RLAB_ARGF_MIN,
     .help = "held-out sequences for the fidelity (first N test users; 0 = all)"},
    {.name = "eval_victim",
     .type = RLAB_ARG_BOOL,
     .def = "true",
     .help = "also evaluate the victim's own NDCG/HR@10"},
    {.name = "loss",
     .type = RLAB_ARG_CHOICE,
     .def = "rank",
     .choices = loss_choices,
     .help = "surrogate loss: rank (Yue et al.'s ranking distillation from the victim's lists, "
             "seqrec loss=rank) or next (plain next-item training on the sequences)"},
    {.name = "margin",
     .type = RLAB_ARG_FLOAT,
     .def = "0.5",
     .min = 0,
     .flags = RLAB_ARGF_MIN,
     .help = "loss=rank: hinge margin (Yue et al.: 0.5)"},
    {.name = "repair",
     .type = RLAB_ARG_FLOAT,
     .def = "0",
     .min = 0,
     .flags = RLAB_ARGF_MIN,
     .help = "loss=rank: weight of the bidirectional repair loss (0 = off)"},
    {.name = "repair_k",
     .type = RLAB_ARG_INT,
     .def = "10",
     .min = 1,
     .max = 1000,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
     .help = "loss=rank: K of the repair loss (top-K of victim and surrogate)"},
    {.name = "fewshot",
     .type = RLAB_ARG_FLOAT,
     .def = "0",
     .min = 0,
     .max = 1,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
     .help = "share of real user sequences the attacker holds (0 = data-free; the threat "
             "model: at most 0.1); the budget stays budget * (len - 1) queries"},
    {.name = "sampler",
     .type = RLAB_ARG_BOOL,
     .def = "true",
     .help = "few-shot: the interaction sampler (off: synthetic steps follow the victim only)"},
    {.name = "gate",
     .type = RLAB_ARG_BOOL,
     .def = "true",
     .help = "few-shot: the learned synthesis gate (off: follow the victim with p = 0.5)"},
    {.name = "sampler_list",
     .type = RLAB_ARG_BOOL,
     .def = "false",
     .help = "few-shot: a sampler step draws from the sampler restricted to the victim's list "
             "(renormalised) instead of from every item"},
    {.name = "sampler_kind",
     .type = RLAB_ARG_STRING,
     .def = "sasrec",
     .help = "few-shot: the sampler's model kind"},
    {.name = "sampler_epochs",
     .type = RLAB_ARG_INT,
     .def = "20",
     .min = 1,
     .flags = RLAB_ARGF_MIN,
     .help = "few-shot: the sampler's training epochs"},
    {.name = "sampler_train",
     .type = RLAB_ARG_STRING,
     .def = "dim=32 blocks=1",
     .help = "few-shot: more sampler fields, as `train` takes them"},
    {.name = "seed",
     .type = RLAB_ARG_INT,
     .def = "42",
     .min = 0,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_INT64,
     .help = "seed of the generation, the noise and the surrogate"},
    {0}};

static const char *const method_choices[] = {"surrogate", "random", NULL};

static const rlab_arg promote_args[] = {
    {.name = "victim",
     .type = RLAB_ARG_MODEL,
     .flags = RLAB_ARGF_REQUIRED,
     .help = "the attacked model (its exposure before)"},
    {.name = "data",
     .type = RLAB_ARG_DATASET,
     .flags = RLAB_ARGF_REQUIRED,
     .help = "the victim's training data (poisoned, then the victim retrained on it)"},
    {.name = "surrogate",
     .type = RLAB_ARG_STRING,
     .def = "",
     .help = "the extracted surrogate that builds the sequences (method=surrogate)"},
    {.name = "method",
     .type = RLAB_ARG_CHOICE,
     .def = "surrogate",
     .choices = method_choices,
     .help = "fillers chosen with the surrogate, or random (the baseline)"},
    {.name = "target",
     .type = RLAB_ARG_INT,
     .def = "-1",
     .min = -1,
     .flags = RLAB_ARGF_MIN,
     .help = "item to promote (dense index; -1 = a seeded pick among items with 5..20 "
             "interactions)"},
    {.name = "n_fake",
     .type = RLAB_ARG_INT,
     .def = "0",
     .min = 0,
     .flags = RLAB_ARGF_MIN,
     .help = "injected sequences (0 = 1% of the users)"},
    {.name = "len",
     .type = RLAB_ARG_INT,
     .def = "20",
     .min = 2,
     .max = 4096,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
     .help = "items per injected sequence (half of them the target)"},
    {.name = "cand",
     .type = RLAB_ARG_INT,
     .def = "50",
     .min = 1,
     .flags = RLAB_ARGF_MIN,
     .help = "fillers considered per step (the surrogate's top-cand)"},
    {.name = "kind",
     .type = RLAB_ARG_STRING,
     .def = "sasrec",
     .help = "the victim's kind, retrained with `train`"},
    {.name = "epochs",
     .type = RLAB_ARG_INT,
     .def = "20",
     .min = 1,
     .flags = RLAB_ARGF_MIN,
     .help = "retraining epochs (use the victim's own settings)"},
    {.name = "train",
     .type = RLAB_ARG_STRING,
     .def = "",
     .help = "more retraining fields (the victim's: \"dim=64 maxlen=50\")"},
    {.name = "name",
     .type = RLAB_ARG_STRING,
     .def = "",
     .help = "the retrained model (default <victim>.promo_sur / .promo_rand)"},
    {.name = "eval_users",
     .type = RLAB_ARG_INT,
     .def = "0",
     .min = 0,
     .flags = RLAB_ARGF_MIN,
     .help = "real users the exposure is measured over (first N; 0 = all)"},
    {.name = "seed",
     .type = RLAB_ARG_INT,
     .def = "42",
     .min = 0,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_INT64,
     .help = "target pick, fillers and retraining"},
    {0}};

static const rlab_cmd attack_cmds[] = {
    {.name = "extract",
     .args = extract_args,
     .help = "Data-free model extraction (Yue et al. 2021) of a registered model.\n"
             "Black box (top-k lists only, queries counted, optional defences), autoregressive "
             "synthetic sequences, a surrogate trained on them with `train KIND`, then "
             "Agreement@1/10, exact-match@10 and KL@100 on held-out real sequences and the "
             "NDCG/HR@10 of surrogate and victim (full, and sampled-100 labelled _s100).",
     .flags = RLAB_CMD_JOB,
     .run = extract_run},
    {.name = "promote",
     .args = promote_args,
     .help = "Target-item promotion by data poisoning (Yue et al.'s downstream attack).\n"
             "Injects fake sequences (the target alternating with fillers the surrogate picks, "
             "or random fillers), retrains the victim's kind on the poisoned data and reports "
             "the target's exposure over the real users before and after: the share with it "
             "in their top-10 and its mean rank (full ranking, histories masked).",
     .flags = RLAB_CMD_JOB,
     .run = promote_run},
    {0}};

RLAB_PLUGIN(attack)
{
    RLAB_PLUGIN_INIT(out);
    out->name = "attack";
    out->version = "0.1.0";
    out->summary = "Model extraction of sequential recommenders (data-free and few-shot) and "
                   "target-item promotion";
    out->commands = attack_cmds;
    return RLAB_OK;
}
