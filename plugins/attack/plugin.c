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

    /* 2. data-free generation */
    attack_gen_opts go = attack_gen_defaults();
    go.n_seqs = rlab_args_int(args, "budget");
    go.len = (int)rlab_args_int(args, "len");
    go.sample = rlab_args_choice(args, "sample");
    go.batch = (int)rlab_args_int(args, "batch");
    go.seed = seed;
    attack_synth syn = {0};
    double t0 = now_s();
    int rc = attack_gen_datafree(bb, &go, gen_progress, ctx, &syn, rlab_ctx_err(ctx));
    double gen_s = now_s() - t0;
    int64_t queries = attack_bb_queries(bb);
    attack_bb_free(bb);
    if (rc)
        return rc;
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
    char line[1024];
    int n = snprintf(line, sizeof line,
                     "train %s data=%s name=%s split=none eval_every=0 eval_test=false "
                     "epochs=%lld seed=%llu %s",
                     kind, syname, sname, (long long)rlab_args_int(args, "epochs"),
                     (unsigned long long)seed, rlab_args_str(args, "train"));
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

static const char *const sample_choices[] = {"uniform", "top1", NULL};

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
    {.name = "seed",
     .type = RLAB_ARG_INT,
     .def = "42",
     .min = 0,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_INT64,
     .help = "seed of the generation, the noise and the surrogate"},
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
    {0}};

RLAB_PLUGIN(attack)
{
    RLAB_PLUGIN_INIT(out);
    out->name = "attack";
    out->version = "0.1.0";
    out->summary = "Model extraction of sequential recommenders (data-free baseline)";
    out->commands = attack_cmds;
    return RLAB_OK;
}
