/*
 * plugins/simulator/plugin.c: the `simulator.*` commands over the engine in sim.h.
 *
 *     simulator.new data=demo agents=200 model=bpr seed=7     a simulation (becomes current)
 *     simulator.step rounds=20                                 a job with progress per round
 *     simulator.pause / simulator.resume                      stop after the round / go on
 *     simulator.interview agent=3 question="What did you watch?"
 *     simulator.edit agent=3 field=interests value="Comedy;Drama"
 *     simulator.rewire mode=homophily k=8
 *     simulator.inject items=i12,i40 rounds=3
 *     simulator.post agent=3 item=i12
 *     simulator.branch round=10 model=random                  a new simulation from round 10
 *     simulator.stats / simulator.agent agent=3 / simulator.list / simulator.world ...
 *     simulator.fidelity data=ml seed=1                       agents vs the real users (a job)
 *     simulator.play agent=3 / simulator.act do=buy k=2 / simulator.chat with=5 text="Hi"
 *                                                              role play: a person is agent 3
 *
 * Several simulations live in the plugin state at once (a branch keeps its parent); commands
 * take sim=<id> (default: the current one, the last created). A simulation's id is the store
 * run id of the command that created it, so its events are `SELECT ... FROM events WHERE
 * run_id = <id>` and its statistics `simulator_stats WHERE sim = <id>`.
 *
 * Ground truth: a dataset made by the world generator keeps its world here: the built-in demo
 * world is regenerated (byte-identical, checked against the checksum in its source), and
 * simulator.world generates and registers new ones. Other datasets run without truth
 * (satisfaction is NULL) and with tastes inferred from each user's rated items.
 *
 * Retraining (retrain_every=N): after every N rounds the simulated watches are appended to
 * the base dataset's interactions as dataset "<sim>.sim", and a model of the recommender's
 * kind is trained on it by the host's train verb, called through the plugin API
 * (rlab_ctx_call: "train <kind> data=<sim>.sim name=<sim>.rec split=none seed=<seed>
 * [epochs=E]"), inside the step, whether it runs as a job or synchronously. An argument the
 * kind refuses is an error of the step, not silently dropped.
 *
 * Language-model trouble (backend=openai) is never silent: the first error of each kind
 * (unreachable, timeout, auth, http, protocol, unparsable) is printed in the command's
 * output, every round records sim.llm_decisions, sim.llm_fallbacks and
 * sim.llm_errors.<kind> as metrics of the step's run, and a round in which more than
 * max_fallback (default 0.5) of the decisions fell back to the offline policy fails the step
 * with RLAB_EIO and the first error. While a slow server answers, progress comes per reply
 * ("llm replies 12/40"), not only per round.
 */
#define SIM_INTERNAL
#include "sim.h"

#include "host/plugin.h"
#include "llm/llm.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_SIMS = 64, MAX_WORLDS = 16, SIM_CHAIN_MAX = 4096 };

typedef struct simw {
    sim *s;
    int64_t id;
    char name[64];
    rlab_dataset *ds; /* host reference */
    rlab_host *host;
    rlab_llm *llm;
    atomic_int running;
    int remaining;
    char train_plugin[64], train_kind[64];
    int retrain_epochs;
    rlab_ctx *ctx;
    int64_t parent, branch_round;
    sim_stats *hist; /* per-round statistics, index = round - 1 */
    int64_t n_hist, cap_hist;
    unsigned llm_shown; /* bit k: the first llm error of kind k was printed by this command */
} simw;

typedef struct simstate {
    rlab_host *host;
    pthread_mutex_t mu;
    simw *sims[MAX_SIMS];
    int n;
    int64_t current, next_local;
    struct {
        char name[64];
        rlab_world *w;
    } worlds[MAX_WORLDS];
    int nworlds;
} simstate;

/* ---- state ----------------------------------------------------------------------------- */

/* release_ds 0 at plugin close: the host has freed its datasets by then (whatever their
 * references), so the reference is not given back. */
static void simw_free(simw *w, int release_ds)
{
    if (!w)
        return;
    sim_free(w->s);
    rlab_llm_free(w->llm);
    if (w->ds && release_ds)
        rlab_host_dataset_release(w->host, w->ds);
    rlab_free(w->hist);
    rlab_free(w);
}

static int sim_open(rlab_host *host, void **state, rlab_err *err)
{
    simstate *st = rlab_calloc(1, sizeof *st);
    if (!st)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    st->host = host;
    pthread_mutex_init(&st->mu, NULL);
    *state = st;
    return RLAB_OK;
}

static void sim_close(void *state)
{
    simstate *st = state;
    if (!st)
        return;
    for (int i = 0; i < st->n; i++)
        simw_free(st->sims[i], 0);
    for (int i = 0; i < st->nworlds; i++)
        rlab_world_free(st->worlds[i].w);
    pthread_mutex_destroy(&st->mu);
    rlab_free(st);
}

static simw *find_sim(rlab_ctx *ctx, const rlab_args *args)
{
    simstate *st = rlab_ctx_state(ctx);
    int64_t id = rlab_args_int(args, "sim");
    pthread_mutex_lock(&st->mu);
    if (id <= 0)
        id = st->current;
    simw *w = NULL;
    for (int i = 0; i < st->n; i++)
        if (st->sims[i]->id == id)
            w = st->sims[i];
    pthread_mutex_unlock(&st->mu);
    if (!w)
        rlab_ctx_errorf(ctx, RLAB_ENOTFOUND,
                        id ? "no simulation %lld" : "no simulation yet (simulator.new first)",
                        (long long)id);
    return w;
}

/* The sim for an intervention: exists and is not stepping. */
static simw *idle_sim(rlab_ctx *ctx, const rlab_args *args)
{
    simw *w = find_sim(ctx, args);
    if (w && atomic_load(&w->running)) {
        rlab_ctx_errorf(ctx, RLAB_ESTATE, "simulation %lld is running: pause it first",
                        (long long)w->id);
        return NULL;
    }
    return w;
}

static int add_sim(rlab_ctx *ctx, simw *w)
{
    simstate *st = rlab_ctx_state(ctx);
    pthread_mutex_lock(&st->mu);
    int ok = st->n < MAX_SIMS;
    if (ok) {
        st->sims[st->n++] = w;
        st->current = w->id;
    }
    pthread_mutex_unlock(&st->mu);
    return ok ? RLAB_OK
              : rlab_ctx_errorf(ctx, RLAB_ESTATE, "at most %d simulations per session", MAX_SIMS);
}

/* The world behind a dataset, when known (cached, or the regenerated demo world). */
static rlab_world *world_for(simstate *st, const rlab_dataset *ds)
{
    pthread_mutex_lock(&st->mu);
    rlab_world *w = NULL;
    for (int i = 0; i < st->nworlds; i++)
        if (strcmp(st->worlds[i].name, ds->name) == 0)
            w = st->worlds[i].w;
    pthread_mutex_unlock(&st->mu);
    if (w && w->n_users == rlab_vocab_size(&ds->users) && w->n_items == rlab_vocab_size(&ds->items))
        return w;
    if (strcmp(ds->format, "world") != 0 || strncmp(ds->source, "builtin:demo", 12) != 0)
        return NULL;
    rlab_dataset *dd = NULL;
    rlab_err e = {0};
    if (rlab_world_demo(&w, &dd, &e))
        return NULL;
    char want[32];
    snprintf(want, sizeof want, "%016llx", (unsigned long long)rlab_world_checksum(w, dd));
    const char *have = strrchr(ds->source, ':');
    int same = w->n_users == rlab_vocab_size(&ds->users) &&
               w->n_items == rlab_vocab_size(&ds->items) &&
               (!have || strcmp(have + 1, want) == 0 || strcmp(ds->source, "builtin:demo") == 0);
    rlab_dataset_free(dd);
    if (!same) {
        rlab_world_free(w);
        return NULL;
    }
    pthread_mutex_lock(&st->mu);
    if (st->nworlds < MAX_WORLDS) {
        snprintf(st->worlds[st->nworlds].name, sizeof st->worlds[0].name, "%s", ds->name);
        st->worlds[st->nworlds++].w = w;
    } else {
        rlab_world_free(w);
        w = NULL;
    }
    pthread_mutex_unlock(&st->mu);
    return w;
}

static void record_intervention(rlab_ctx *ctx, simw *w, const char *kind, const char *args_json)
{
    rlab_db *db = rlab_ctx_db(ctx);
    if (!db)
        return;
    rlab_err e = {0};
    rlab_db_stmt *q =
        rlab_db_prepare(db,
                        "INSERT INTO simulator_interventions(sim, round, kind, args, time) "
                        "VALUES(:sim, :round, :kind, :args, :time)",
                        &e);
    if (!q)
        return;
    rlab_db_bind_int(q, ":sim", w->id, &e);
    rlab_db_bind_int(q, ":round", sim_round(w->s), &e);
    rlab_db_bind_text(q, ":kind", kind, &e);
    rlab_db_bind_text(q, ":args", args_json, &e);
    rlab_db_bind_double(q, ":time", rlab_wall_time(), &e);
    rlab_db_step(q, &e);
    rlab_db_finalize(q);
}

/* Attach the sim to this command's connection, emit one event, detach. */
static void emit_now(rlab_ctx *ctx, simw *w, int32_t agent, const char *kind, const char *payload)
{
    if (!rlab_ctx_db(ctx) || rlab_ctx_run_id(ctx) == 0)
        return;
    sim_attach_store(w->s, rlab_ctx_db(ctx), w->id);
    sim_emit(w->s, agent, kind, payload);
    rlab_err e = {0};
    rlab_db_flush(rlab_ctx_db(ctx), &e);
    sim_attach_store(w->s, NULL, 0);
}

/* ---- retraining ----------------------------------------------------------------------------- */

/* The arguments of `train <kind>` for a retraining: the loop settings are set only when the
 * kind has them (one-pass kinds have no epochs); a value the kind refuses fails the step. */
static rlab_args *train_args(rlab_ctx *ctx, simw *w, const char *dsname, const char *mname)
{
    char full[160];
    snprintf(full, sizeof full, "train %s", w->train_kind);
    rlab_args *a = rlab_ctx_args(ctx, full);
    rlab_err *err = rlab_ctx_err(ctx);
    if (!a)
        return NULL;
    int rc = rlab_args_set(a, "data", dsname, err);
    if (!rc)
        rc = rlab_args_set(a, "name", mname, err);
    if (!rc)
        rc = rlab_args_set(a, "split", "none", err);
    if (!rc && rlab_args_has(a, "seed"))
        rc = rlab_args_set_int(a, "seed", (int64_t)(sim_cfg(w->s)->seed & 0x7fffffff), err);
    if (!rc && w->retrain_epochs > 0 && rlab_args_has(a, "epochs"))
        rc = rlab_args_set_int(a, "epochs", w->retrain_epochs, err);
    if (!rc && rlab_args_has(a, "eval_every"))
        rc = rlab_args_set_int(a, "eval_every", 0, err);
    if (rc) {
        rlab_args_free(a);
        return NULL;
    }
    return a;
}

static rlab_model *retrain_hook(void *ud, sim *s, const int32_t *users, const int32_t *items,
                                const double *times, int64_t n, rlab_err *err)
{
    simw *w = ud;
    rlab_ctx *ctx = w->ctx;
    rlab_host *h = rlab_ctx_host(ctx);
    if (!w->train_kind[0]) {
        rlab_errf(err, RLAB_ESTATE, "cannot retrain model '%s': it is not of a trainable kind",
                  sim_model_name(s));
        return NULL;
    }
    char dsname[80], mname[80];
    snprintf(dsname, sizeof dsname, "%s.sim", w->name);
    snprintf(mname, sizeof mname, "%s.rec", w->name);
    rlab_dataset *ds = rlab_dataset_new(dsname, err);
    if (!ds)
        return NULL;
    const rlab_dataset *b = w->ds;
    int rc = RLAB_OK;
    for (int32_t u = 0; rc == RLAB_OK && u < rlab_vocab_size(&b->users); u++)
        if (rlab_vocab_add(&ds->users, b->users.names[u], strlen(b->users.names[u])) < 0)
            rc = RLAB_ENOMEM;
    for (int32_t i = 0; rc == RLAB_OK && i < rlab_vocab_size(&b->items); i++)
        if (rlab_vocab_add(&ds->items, b->items.names[i], strlen(b->items.names[i])) < 0)
            rc = RLAB_ENOMEM;
    int64_t tmax = 0;
    for (size_t r = 0; rc == RLAB_OK && r < b->inter.n; r++) {
        if (b->inter.ts[r] > tmax)
            tmax = b->inter.ts[r];
        rc = rlab_inter_push(&ds->inter, b->inter.user[r], b->inter.item[r], b->inter.ts[r],
                             b->inter.rating[r], NULL);
    }
    for (int64_t k = 0; rc == RLAB_OK && k < n; k++)
        rc = rlab_inter_push(&ds->inter, users[k], items[k], tmax + 1 + (int64_t)(times[k] * 3600),
                             5.0f, NULL);
    ds->inter.flags = b->inter.flags;
    snprintf(ds->format, sizeof ds->format, "simulated");
    snprintf(ds->source, sizeof ds->source, "simulator:%lld:round%lld", (long long)w->id,
             (long long)sim_round(s));
    if (rc) {
        rlab_dataset_free(ds);
        rlab_errf(err, RLAB_ENOMEM, "out of memory");
        return NULL;
    }
    if (rlab_ctx_add_dataset(ctx, ds))
        return NULL;
    rlab_args *a = train_args(ctx, w, dsname, mname);
    if (!a) {
        *err = *rlab_ctx_err(ctx);
        return NULL;
    }
    rlab_ctx_printf(ctx, "retraining %s on %lld simulated watches", w->train_kind, (long long)n);
    if (rlab_ctx_call(ctx, a, NULL)) {
        *err = *rlab_ctx_err(ctx);
        return NULL;
    }
    rlab_model *m = rlab_models_get(rlab_host_models(h), mname);
    if (!m)
        rlab_errf(err, RLAB_ENOTFOUND, "retrained model '%s' not found", mname);
    return m;
}

/* ---- progress ------------------------------------------------------------------------------ */

static void hist_push(simw *w, const sim_stats *st)
{
    if (w->n_hist == w->cap_hist) {
        int64_t cap = w->cap_hist ? 2 * w->cap_hist : 64;
        sim_stats *h = rlab_realloc(w->hist, (size_t)cap * sizeof *h);
        if (h) {
            w->hist = h;
            w->cap_hist = cap;
        }
    }
    if (w->n_hist < w->cap_hist)
        w->hist[w->n_hist++] = *st;
}

/* Print the first message of every llm error kind this command has not shown yet. */
static void report_llm_trouble(rlab_ctx *ctx, simw *w)
{
    const sim_llm_trouble *t = sim_llm_trouble_get(w->s);
    for (int k = 0; k < SIM_LLM_NKINDS; k++)
        if (t->n[k] > 0 && !(w->llm_shown & (1u << k))) {
            w->llm_shown |= 1u << k;
            rlab_ctx_printf(ctx, "language model error (%s): %s", sim_llm_kind_name(k),
                            t->first[k]);
        }
}

/* A command that may ask the language model starts: nothing shown yet. */
static void llm_trouble_begin(simw *w)
{
    sim_llm_trouble_clear(w->s);
    w->llm_shown = 0;
}

/* Per-round llm metrics of the step's run. */
static void llm_metrics(rlab_ctx *ctx, const sim_stats *st)
{
    if (st->llm_decisions <= 0)
        return;
    rlab_ctx_metric(ctx, st->round, "sim", "llm_decisions", NULL, st->llm_decisions);
    rlab_ctx_metric(ctx, st->round, "sim", "llm_fallbacks", NULL, st->llm_fallbacks);
    for (int k = 0; k < SIM_LLM_NKINDS; k++)
        if (st->llm_errors[k] > 0) {
            char name[48];
            snprintf(name, sizeof name, "llm_errors.%s", sim_llm_kind_name(k));
            rlab_ctx_metric(ctx, st->round, "sim", name, NULL, st->llm_errors[k]);
        }
}

/* Progress per language-model reply, from rlab_llm_chat_many and the round's pipe (on the
 * step's thread). */
static void on_llm_progress(void *ud, int done, int n)
{
    simw *w = ud;
    rlab_ctx_progress(w->ctx, done, n, "llm replies", 1,
                      (rlab_metric[]){{"round", (double)(sim_round(w->s) + 1)}});
}

static void on_round(void *ud, int64_t done, int64_t total, const sim_stats *st)
{
    simw *w = ud;
    rlab_ctx *ctx = w->ctx;
    hist_push(w, st);
    llm_metrics(ctx, st);
    /* the information-cocoon measures, per round, as metrics of the step's run (the shell's
     * chart draws them over rounds: chart sim.shown_entropy) */
    rlab_ctx_metric(ctx, st->round, "sim", "shown_entropy", NULL, st->agent_exp_entropy);
    rlab_ctx_metric(ctx, st->round, "sim", "watch_entropy", NULL, st->watch_entropy);
    rlab_ctx_metric(ctx, st->round, "sim", "exposure_entropy", NULL, st->exp_entropy);
    if (sim_cfg(w->s)->swap_k > 0)
        rlab_ctx_metric(ctx, st->round, "sim", "swapped", NULL, st->swapped);
    report_llm_trouble(ctx, w);
    rlab_metric m[4] = {{"watches", st->watches},
                        {"ctr", st->ctr},
                        {"coverage", st->coverage},
                        {"satisfaction", !isnan(st->satisfaction) ? st->satisfaction : 0.0}};
    rlab_ctx_progress(ctx, done, total, "round", 4, m);
    /* the same four as metrics of the run (split "sim", step = round): `chart watches` and
     * `runs` read them from the store after the simulation */
    for (int i = 0; i < 4; i++)
        rlab_ctx_metric(ctx, (int64_t)st->round, "sim", m[i].name, NULL, m[i].value);
    char fb[96] = "";
    if (st->llm_fallbacks)
        snprintf(fb, sizeof fb, " (%d of %d language-model decisions fell back)",
                 (int)st->llm_fallbacks, (int)st->llm_decisions);
    rlab_ctx_printf(ctx,
                    "round %lld: %d active, %d watches (%d from pages), %d chats, %d posts, ctr "
                    "%.3f, coverage %.3f, entropy %.2f%s",
                    (long long)st->round, (int)st->active, (int)st->watches, (int)st->rec_watches,
                    (int)st->chats, (int)st->posts, st->ctr, st->coverage, st->exp_entropy, fb);
}

static int on_cancel(void *ud) { return rlab_ctx_cancelled((rlab_ctx *)ud); }

static int llm_cancel(void *ud) { return rlab_ctx_cancelled((rlab_ctx *)ud); }

/* Run rounds; max_fallback >= 0 replaces the simulation's for this step. */
static int run_rounds(rlab_ctx *ctx, simw *w, int rounds, double max_fallback)
{
    if (atomic_exchange(&w->running, 1))
        return rlab_ctx_errorf(ctx, RLAB_ESTATE, "simulation %lld is already running",
                               (long long)w->id);
    w->ctx = ctx;
    llm_trouble_begin(w);
    sim_attach_store(w->s, rlab_ctx_db(ctx), rlab_ctx_db(ctx) ? w->id : 0);
    if (w->llm) {
        rlab_llm_set_cancel(w->llm, llm_cancel, ctx);
        rlab_llm_set_progress(w->llm, on_llm_progress, w);
    }
    double keep_fb = w->s->cfg.max_fallback;
    if (max_fallback >= 0)
        w->s->cfg.max_fallback = max_fallback;
    sim_clear_pause(w->s);
    int done = 0;
    int rc = sim_step(w->s, rounds, on_round, w, on_cancel, ctx, &done, rlab_ctx_err(ctx));
    w->s->cfg.max_fallback = keep_fb;
    w->remaining = rounds - done;
    sim_attach_store(w->s, NULL, 0);
    if (w->llm) {
        rlab_llm_set_cancel(w->llm, NULL, NULL);
        rlab_llm_set_progress(w->llm, NULL, NULL);
    }
    report_llm_trouble(ctx, w); /* a round that failed before its progress report */
    if (rc == RLAB_OK && w->remaining > 0) {
        rlab_ctx_printf(ctx, "paused after round %lld (%d rounds left: simulator.resume)",
                        (long long)sim_round(w->s), w->remaining);
    }
    const sim_stats *st = sim_last_stats(w->s);
    rlab_ctx_result_int(ctx, "sim", w->id);
    rlab_ctx_result_int(ctx, "round", sim_round(w->s));
    rlab_ctx_result_int(ctx, "rounds_done", done);
    rlab_ctx_result_int(ctx, "remaining", w->remaining);
    rlab_ctx_result_int(ctx, "watches", st->watches);
    rlab_ctx_result_float(ctx, "ctr", st->ctr);
    rlab_ctx_result_float(ctx, "coverage", st->coverage);
    if (!isnan(st->satisfaction))
        rlab_ctx_result_float(ctx, "satisfaction", st->satisfaction);
    rlab_ctx_result_str(ctx, "model", sim_model_name(w->s));
    atomic_store(&w->running, 0);
    return rc;
}

/* ---- commands -------------------------------------------------------------------------------- */

static const char *const activity_choices[] = {"random", "pareto", "marginal", NULL};
static const char *const backend_choices[] = {"offline", "openai", NULL};
/* in SIM_PART_* order */
static const char *const partition_choices[] = {"auto", "on", "off", NULL};
static const char *const rewire_choices[] = {"homophily", "mixing", NULL};

static int make_llm(rlab_ctx *ctx, const rlab_args *args, simw *w)
{
    if (rlab_args_choice(args, "backend") != 1)
        return RLAB_OK;
    const char *url = rlab_args_str(args, "llm_url");
    const char *model = rlab_args_str(args, "llm_model");
    rlab_llm_config c = {.backend = "openai",
                         .base_url = url && *url ? url : NULL,
                         .model = model && *model ? model : NULL,
                         .timeout = rlab_args_float(args, "llm_timeout"),
                         .max_in_flight = (int)rlab_args_int(args, "in_flight"),
                         .seed = (uint64_t)rlab_args_int(args, "seed")};
    w->llm = rlab_llm_new(&c, rlab_ctx_err(ctx));
    if (!w->llm)
        return rlab_ctx_err(ctx)->code;
    char d[256];
    rlab_llm_describe(w->llm, d, sizeof d);
    rlab_ctx_printf(ctx, "language backend: %s", d);
    return sim_set_llm(w->s, w->llm, rlab_ctx_err(ctx));
}

static void config_from_args(const rlab_args *args, sim_config *c)
{
    sim_config_default(c);
    c->seed = (uint64_t)rlab_args_int(args, "seed");
    c->n_agents = (int32_t)rlab_args_int(args, "agents");
    c->page_size = (int)rlab_args_int(args, "page");
    c->max_steps = (int)rlab_args_int(args, "steps");
    c->activity = rlab_args_choice(args, "activity");
    c->active_prob = rlab_args_float(args, "active_prob");
    c->max_active = (int32_t)rlab_args_int(args, "max_active");
    c->interval_h = rlab_args_float(args, "interval");
    c->watch_h = rlab_args_float(args, "watch_hours");
    c->retrain_every = (int)rlab_args_int(args, "retrain_every");
    c->checkpoint_every = (int)rlab_args_int(args, "checkpoint_every");
    c->checkpoint_full = (int)rlab_args_int(args, "checkpoint_full");
    c->use_llm = rlab_args_choice(args, "backend") == 1;
    c->llm_retries = (int)rlab_args_int(args, "llm_retries");
    c->max_fallback = rlab_args_float(args, "max_fallback");
    c->rewire_k = (int)rlab_args_int(args, "rewire_k");
    c->swap_k = (int)rlab_args_int(args, "swap_k");
    c->partition = rlab_args_choice(args, "partition");
    c->threads = (int)rlab_args_int(args, "threads");
}

/* Resolve "random" or a registered model (+1 reference in *m). */
static int get_model(rlab_ctx *ctx, const char *name, rlab_model **m, simw *w)
{
    *m = NULL;
    if (!name || !*name || strcmp(name, "random") == 0) {
        w->train_plugin[0] = w->train_kind[0] = '\0';
        return RLAB_OK;
    }
    *m = rlab_host_model_get(rlab_ctx_host(ctx), name, NULL);
    if (!*m)
        return rlab_ctx_errorf(ctx, RLAB_ENOTFOUND,
                               "model '%s' not found (train one, or "
                               "use model=random)",
                               name);
    snprintf(w->train_plugin, sizeof w->train_plugin, "%s", (*m)->plugin);
    snprintf(w->train_kind, sizeof w->train_kind, "%s", (*m)->kind);
    return RLAB_OK;
}

/* The dataset's fingerprint for simulator_sims.data_sha: its recorded sha256 (datasets), its
 * source and its sizes. A stored simulation is branched only over the same fingerprint. */
static void ds_fingerprint(rlab_db *db, const rlab_dataset *ds, char *out, size_t n)
{
    char sha[80] = "";
    rlab_err e = {0};
    rlab_db_value prm[1] = {{.type = RLAB_DB_TEXT, .s = ds->name, .n = strlen(ds->name)}};
    rlab_db_result *r =
        rlab_db_query_table(db, "SELECT sha256 FROM datasets WHERE name = ?1", prm, 1, 0, &e);
    if (r && r->nrow == 1) {
        const rlab_db_value *c = rlab_db_result_cell(r, 0, 0);
        if (c->type == RLAB_DB_TEXT && c->s)
            snprintf(sha, sizeof sha, "%.*s", (int)(c->n < 64 ? c->n : 64), c->s);
    }
    rlab_db_result_free(r);
    snprintf(out, n, "%s|%s|%d|%d|%lld", sha, ds->source, (int)rlab_vocab_size(&ds->users),
             (int)rlab_vocab_size(&ds->items), (long long)ds->inter.n);
}

static void register_sim_row(rlab_ctx *ctx, simw *w, const char *data, const rlab_args *args)
{
    rlab_db *db = rlab_ctx_db(ctx);
    if (!db)
        return;
    rlab_err e = {0};
    char *cfg = rlab_args_to_json(args);
    char fp[700];
    ds_fingerprint(db, w->ds, fp, sizeof fp);
    rlab_db_stmt *q = rlab_db_prepare(
        db,
        "INSERT OR REPLACE INTO simulator_sims(sim, parent, branch_round, data, model, agents, "
        "seed, config, created, data_sha) VALUES(:sim, :parent, :br, :data, :model, :agents, "
        ":seed, :config, :created, :sha)",
        &e);
    if (q) {
        rlab_db_bind_int(q, ":sim", w->id, &e);
        if (w->parent)
            rlab_db_bind_int(q, ":parent", w->parent, &e),
                rlab_db_bind_int(q, ":br", w->branch_round, &e);
        else
            rlab_db_bind_null(q, ":parent", &e), rlab_db_bind_null(q, ":br", &e);
        rlab_db_bind_text(q, ":data", data, &e);
        rlab_db_bind_text(q, ":model", sim_model_name(w->s), &e);
        rlab_db_bind_int(q, ":agents", sim_n_agents(w->s), &e);
        rlab_db_bind_int(q, ":seed", (int64_t)sim_cfg(w->s)->seed, &e);
        rlab_db_bind_text(q, ":config", cfg, &e);
        rlab_db_bind_double(q, ":created", rlab_wall_time(), &e);
        rlab_db_bind_text(q, ":sha", fp, &e);
        rlab_db_step(q, &e);
        rlab_db_finalize(q);
    }
    if (e.code)
        rlab_ctx_printf(ctx, "warning: %s", e.msg);
    rlab_free(cfg);
}

static int64_t new_id(rlab_ctx *ctx)
{
    simstate *st = rlab_ctx_state(ctx);
    if (rlab_ctx_run_id(ctx) > 0)
        return rlab_ctx_run_id(ctx);
    pthread_mutex_lock(&st->mu);
    int64_t id = ++st->next_local + 1000000000;
    pthread_mutex_unlock(&st->mu);
    return id;
}

/* Delete what enlist stored of simulation id (its row, its checkpoints and statistics) when
 * the simulation is not kept after all; a failure is a warning (the command fails anyway). */
static void unlist_rows(rlab_ctx *ctx, int64_t id)
{
    rlab_db *db = rlab_ctx_db(ctx);
    static const char *const sql[] = {"DELETE FROM simulator_checkpoints WHERE sim = :sim",
                                      "DELETE FROM simulator_stats WHERE sim = :sim",
                                      "DELETE FROM simulator_sims WHERE sim = :sim"};
    rlab_err e = {0};
    for (size_t k = 0; db && k < sizeof sql / sizeof *sql && !e.code; k++) {
        rlab_db_stmt *q = rlab_db_prepare(db, sql[k], &e);
        if (q && rlab_db_bind_int(q, ":sim", id, &e) == RLAB_OK)
            rlab_db_step(q, &e);
        rlab_db_finalize(q);
    }
    if (e.code)
        rlab_ctx_printf(ctx, "warning: simulation %lld left in the store: %s", (long long)id,
                        e.msg);
}

/* A new simulation w (simulator.new, or a branch with w->parent / branch_round set) gets its
 * id and name, its store row and first checkpoint (with a store), and becomes current; on
 * failure w is freed, and what it stored deleted (unlist_rows). */
static int enlist(rlab_ctx *ctx, simw *w, const char *data, const rlab_args *args)
{
    int rc = RLAB_OK;
    w->id = new_id(ctx);
    snprintf(w->name, sizeof w->name, "sim%lld", (long long)w->id);
    sim_set_id(w->s, w->id);
    sim_set_retrain(w->s, retrain_hook, w);
    register_sim_row(ctx, w, data, args);
    if (rlab_ctx_db(ctx)) {
        sim_attach_store(w->s, rlab_ctx_db(ctx), w->id);
        rc = sim_checkpoint(w->s, rlab_ctx_err(ctx));
        sim_attach_store(w->s, NULL, 0);
    }
    if (rc == RLAB_OK)
        rc = add_sim(ctx, w);
    if (rc) { /* not kept: no stored row without its simulation */
        unlist_rows(ctx, w->id);
        simw_free(w, 1);
    }
    return rc;
}

static int new_run(rlab_ctx *ctx, const rlab_args *args)
{
    simstate *st = rlab_ctx_state(ctx);
    const char *data = rlab_args_str(args, "data");
    simw *w = rlab_calloc(1, sizeof *w);
    if (!w)
        return rlab_ctx_errorf(ctx, RLAB_ENOMEM, "out of memory");
    w->host = rlab_ctx_host(ctx);
    w->ds = rlab_host_dataset_get(w->host, data);
    if (!w->ds) {
        rlab_free(w);
        return rlab_ctx_errorf(ctx, RLAB_ENOTFOUND, "dataset '%s' not found", data);
    }
    rlab_world *world = world_for(st, w->ds);
    sim_config cfg;
    config_from_args(args, &cfg);
    w->retrain_epochs = (int)rlab_args_int(args, "retrain_epochs");
    rlab_model *m = NULL;
    int rc = get_model(ctx, rlab_args_str(args, "model"), &m, w);
    sim_profiles prof = {.csv_path = rlab_args_str(args, "profiles")};
    if (prof.csv_path && !*prof.csv_path)
        prof.csv_path = NULL;
    if (rc == RLAB_OK)
        rc = sim_new(&cfg, w->ds, world, m, &prof, &w->s, rlab_ctx_err(ctx));
    rlab_model_release(m);
    if (rc == RLAB_OK)
        rc = make_llm(ctx, args, w);
    if (rc) {
        simw_free(w, 1);
        return rc;
    }
    if ((rc = enlist(ctx, w, data, args)))
        return rc;
    rlab_ctx_printf(ctx, "simulation %lld: %d agents on '%s' (%s ground truth), recommender %s",
                    (long long)w->id, (int)sim_n_agents(w->s), data, world ? "with" : "no",
                    sim_model_name(w->s));
    rlab_ctx_result_int(ctx, "sim", w->id);
    rlab_ctx_result_int(ctx, "agents", sim_n_agents(w->s));
    rlab_ctx_result_str(ctx, "model", sim_model_name(w->s));
    rlab_ctx_result_int(ctx, "ground_truth", world != NULL);
    int32_t olo = 0, ohi = 0;
    rlab_ctx_result_int(ctx, "partitioned", sim_owned(w->s, &olo, &ohi));
    rlab_ctx_result_int(ctx, "owned", ohi - olo); /* agents this MPI rank steps */
    return RLAB_OK;
}

/* max_fallback of step / resume: the given value, else -1 (the simulation's). */
static double step_max_fallback(const rlab_args *args)
{
    return rlab_args_given(args, "max_fallback") ? rlab_args_float(args, "max_fallback") : -1.0;
}

static int step_run(rlab_ctx *ctx, const rlab_args *args)
{
    simw *w = find_sim(ctx, args);
    if (!w)
        return RLAB_ENOTFOUND;
    return run_rounds(ctx, w, (int)rlab_args_int(args, "rounds"), step_max_fallback(args));
}

static int pause_run(rlab_ctx *ctx, const rlab_args *args)
{
    simw *w = find_sim(ctx, args);
    if (!w)
        return RLAB_ENOTFOUND;
    sim_request_pause(w->s);
    rlab_ctx_printf(ctx, "simulation %lld %s", (long long)w->id,
                    atomic_load(&w->running) ? "will pause after this round" : "paused");
    rlab_ctx_result_int(ctx, "sim", w->id);
    return RLAB_OK;
}

static int resume_run(rlab_ctx *ctx, const rlab_args *args)
{
    simw *w = find_sim(ctx, args);
    if (!w)
        return RLAB_ENOTFOUND;
    int rounds = (int)rlab_args_int(args, "rounds");
    if (rounds <= 0)
        rounds = w->remaining;
    if (rounds <= 0) {
        sim_clear_pause(w->s);
        rlab_ctx_printf(ctx, "nothing to resume");
        return RLAB_OK;
    }
    return run_rounds(ctx, w, rounds, step_max_fallback(args));
}

static int interview_run(rlab_ctx *ctx, const rlab_args *args)
{
    simw *w = idle_sim(ctx, args);
    if (!w)
        return rlab_ctx_err(ctx)->code;
    int32_t a = (int32_t)rlab_args_int(args, "agent");
    const char *q = rlab_args_str(args, "question");
    int by = 0;
    llm_trouble_begin(w);
    char *ans = sim_interview(w->s, a, q, &by, rlab_ctx_err(ctx));
    report_llm_trouble(ctx, w);
    if (!ans)
        return rlab_ctx_err(ctx)->code;
    const char *bys = by == SIM_BY_LLM ? "llm" : by == SIM_BY_FALLBACK ? "fallback" : "offline";
    rlab_ctx_printf(ctx, "%s: %s", sim_agent_at(w->s, a)->name, ans);
    rlab_ctx_result_str(ctx, "answer", ans);
    rlab_ctx_result_str(ctx, "by", bys);
    size_t n = strlen(ans) + strlen(q) + 128;
    char *p = rlab_malloc(n * 2 + 64);
    if (p) {
        p[0] = '\0';
        strcat(p, "{\"question\":");
        sim_json_str(p, n * 2 + 64, q);
        strcat(p, ",\"answer\":");
        sim_json_str(p, n * 2 + 64, ans);
        size_t l = strlen(p);
        snprintf(p + l, n * 2 + 64 - l, ",\"by\":\"%s\"}", bys);
        emit_now(ctx, w, a, "interview", p);
        record_intervention(ctx, w, "interview", p);
        rlab_free(p);
    }
    rlab_free(ans);
    return RLAB_OK;
}

static int edit_run(rlab_ctx *ctx, const rlab_args *args)
{
    simw *w = idle_sim(ctx, args);
    if (!w)
        return rlab_ctx_err(ctx)->code;
    int32_t a = (int32_t)rlab_args_int(args, "agent");
    const char *field = rlab_args_str(args, "field"), *value = rlab_args_str(args, "value");
    int rc = sim_edit(w->s, a, field, value, rlab_ctx_err(ctx));
    if (rc)
        return rc;
    char prof[256], js[600] = "";
    sim_profile_text(w->s, a, prof, sizeof prof);
    strcat(js, "{\"field\":");
    sim_json_str(js, sizeof js, field);
    strcat(js, ",\"value\":");
    sim_json_str(js, sizeof js, value);
    strcat(js, "}");
    emit_now(ctx, w, a, "edit", js);
    record_intervention(ctx, w, "edit", js);
    rlab_ctx_printf(ctx, "agent %d: %s", (int)a, prof);
    rlab_ctx_result_str(ctx, "profile", prof);
    return RLAB_OK;
}

static int rewire_run(rlab_ctx *ctx, const rlab_args *args)
{
    simw *w = idle_sim(ctx, args);
    if (!w)
        return rlab_ctx_err(ctx)->code;
    int mode = rlab_args_choice(args, "mode");
    int k = (int)rlab_args_int(args, "k");
    int rc = sim_rewire(w->s, mode == 1 ? SIM_REWIRE_MIXING : SIM_REWIRE_HOMOPHILY, k,
                        rlab_ctx_err(ctx));
    if (rc)
        return rc;
    int32_t n = sim_n_agents(w->s);
    const int32_t *x;
    int64_t m = 0;
    for (int32_t a = 0; a < n; a++)
        m += sim_followees(w->s, a, &x);
    double density = n > 1 ? (double)m / ((double)n * (n - 1)) : 0.0;
    char js[128];
    snprintf(js, sizeof js, "{\"mode\":\"%s\",\"k\":%d,\"edges\":%lld}", rewire_choices[mode == 1],
             k, (long long)m);
    emit_now(ctx, w, -1, "rewire", js);
    record_intervention(ctx, w, "rewire", js);
    rlab_ctx_printf(ctx, "social graph rewired (%s, %d follows each): %lld edges, density %.4f",
                    rewire_choices[mode == 1], k, (long long)m, density);
    rlab_ctx_result_float(ctx, "density", density);
    rlab_ctx_result_int(ctx, "edges", m);
    return RLAB_OK;
}

static int32_t item_by_id(const sim *s, const rlab_dataset *ds, const char *tok)
{
    int32_t i = rlab_vocab_find(&ds->items, tok, strlen(tok));
    if (i >= 0)
        return i;
    for (int32_t k = 0; k < sim_n_items(s); k++)
        if (strcmp(sim_item_title(s, k), tok) == 0)
            return k;
    return -1;
}

static int inject_run(rlab_ctx *ctx, const rlab_args *args)
{
    simw *w = idle_sim(ctx, args);
    if (!w)
        return rlab_ctx_err(ctx)->code;
    char buf[512];
    snprintf(buf, sizeof buf, "%s", rlab_args_str(args, "items"));
    int32_t items[SIM_MAX_INJECT];
    int n = 0;
    for (char *t = strtok(buf, ","); t; t = strtok(NULL, ",")) {
        while (*t == ' ')
            t++;
        if (n == SIM_MAX_INJECT)
            return rlab_ctx_errorf(ctx, RLAB_EINVAL, "at most %d items", SIM_MAX_INJECT);
        items[n] = item_by_id(w->s, w->ds, t);
        if (items[n] < 0)
            return rlab_ctx_errorf(ctx, RLAB_EINVAL, "unknown item '%s'", t);
        n++;
    }
    int rounds = (int)rlab_args_int(args, "rounds");
    int rc = sim_inject(w->s, items, n, rounds, rlab_ctx_err(ctx));
    if (rc)
        return rc;
    char js[256];
    int l = snprintf(js, sizeof js, "{\"items\":[");
    for (int k = 0; k < n; k++)
        l += snprintf(js + l, sizeof js - (size_t)l, "%s%d", k ? "," : "", (int)items[k]);
    snprintf(js + l, sizeof js - (size_t)l, "],\"rounds\":%d}", rounds);
    emit_now(ctx, w, -1, "inject", js);
    record_intervention(ctx, w, "inject", js);
    rlab_ctx_printf(ctx, "%d items first on every page for %d rounds", n, rounds);
    return RLAB_OK;
}

static int post_run(rlab_ctx *ctx, const rlab_args *args)
{
    simw *w = idle_sim(ctx, args);
    if (!w)
        return rlab_ctx_err(ctx)->code;
    int32_t a = (int32_t)rlab_args_int(args, "agent");
    int32_t it = item_by_id(w->s, w->ds, rlab_args_str(args, "item"));
    if (it < 0)
        return rlab_ctx_errorf(ctx, RLAB_EINVAL, "unknown item '%s'", rlab_args_str(args, "item"));
    sim_attach_store(w->s, rlab_ctx_db(ctx), rlab_ctx_db(ctx) ? w->id : 0);
    int rc = sim_post(w->s, a, it, rlab_ctx_err(ctx));
    rlab_err e = {0};
    if (rlab_ctx_db(ctx))
        rlab_db_flush(rlab_ctx_db(ctx), &e);
    sim_attach_store(w->s, NULL, 0);
    if (rc)
        return rc;
    char js[96];
    snprintf(js, sizeof js, "{\"agent\":%d,\"item\":%d}", (int)a, (int)it);
    record_intervention(ctx, w, "post", js);
    const int32_t *fr;
    rlab_ctx_printf(ctx, "%s posted about <%s> to %d followers", sim_agent_at(w->s, a)->name,
                    sim_item_title(w->s, it), (int)sim_followers(w->s, a, &fr));
    return RLAB_OK;
}

/* The new branch w (restored at `round` of simulation `parent`) gets its id, its row, its
 * first checkpoint and becomes current. */
static int branch_finish(rlab_ctx *ctx, simw *w, int64_t parent, int64_t round, const char *data,
                         const rlab_args *args)
{
    w->parent = parent;
    w->branch_round = round;
    int rc = enlist(ctx, w, data, args);
    if (rc)
        return rc;
    rlab_ctx_printf(ctx, "simulation %lld: branch of %lld at round %lld, recommender %s",
                    (long long)w->id, (long long)parent, (long long)round, sim_model_name(w->s));
    rlab_ctx_result_int(ctx, "sim", w->id);
    rlab_ctx_result_int(ctx, "parent", parent);
    rlab_ctx_result_int(ctx, "round", round);
    rlab_ctx_result_int(ctx, "retrain_rows", w->s->n_x);
    return RLAB_OK;
}

static int branch_stored(rlab_ctx *ctx, const rlab_args *args, int64_t id);

static int branch_run(rlab_ctx *ctx, const rlab_args *args)
{
    rlab_db *db = rlab_ctx_db(ctx);
    simw *p = NULL;
    {
        simstate *st = rlab_ctx_state(ctx);
        int64_t id = rlab_args_int(args, "sim");
        pthread_mutex_lock(&st->mu);
        for (int i = 0; i < st->n; i++)
            if (st->sims[i]->id == (id > 0 ? id : st->current))
                p = st->sims[i];
        pthread_mutex_unlock(&st->mu);
        /* not loaded in this process: a simulation of the store (reopened workspace) */
        if (!p && id > 0 && db)
            return branch_stored(ctx, args, id);
    }
    if (!p)
        p = find_sim(ctx, args);
    if (!p)
        return RLAB_ENOTFOUND;
    if (!db)
        return rlab_ctx_errorf(ctx, RLAB_ESTATE, "branching needs a session store");
    int64_t round = rlab_args_int(args, "round");
    {
        /* fail early (before building a simulation) when the round was never saved */
        rlab_db_value prm[2] = {{.type = RLAB_DB_INT, .i = p->id},
                                {.type = RLAB_DB_INT, .i = round}};
        rlab_db_result *r = rlab_db_query_table(
            db, "SELECT 1 FROM simulator_checkpoints WHERE sim = ?1 AND round = ?2", prm, 2, 0,
            rlab_ctx_err(ctx));
        if (!r)
            return rlab_ctx_err(ctx)->code;
        int none = r->nrow == 0;
        rlab_db_result_free(r);
        if (none)
            return rlab_ctx_errorf(ctx, RLAB_ENOTFOUND,
                                   "simulation %lld has no checkpoint of round %lld",
                                   (long long)p->id, (long long)round);
    }
    simw *w = rlab_calloc(1, sizeof *w);
    if (!w)
        return rlab_ctx_errorf(ctx, RLAB_ENOMEM, "out of memory");
    w->host = rlab_ctx_host(ctx);
    w->ds = rlab_host_dataset_get(w->host, p->ds->name);
    if (w->ds != p->ds) {
        /* the dataset was replaced since: branch over the parent's own copy is impossible */
        if (w->ds)
            rlab_host_dataset_release(w->host, w->ds);
        rlab_free(w);
        return rlab_ctx_errorf(ctx, RLAB_ESTATE, "dataset '%s' changed since simulation %lld",
                               p->ds->name, (long long)p->id);
    }
    sim_config cfg = *sim_cfg(p->s);
    if (rlab_args_given(args, "seed"))
        cfg.seed = (uint64_t)rlab_args_int(args, "seed");
    w->retrain_epochs = p->retrain_epochs;
    const char *mname =
        rlab_args_given(args, "model") ? rlab_args_str(args, "model") : sim_model_name(p->s);
    /* the run record holds what the branch runs with, the parent's values included */
    char seed_text[32];
    snprintf(seed_text, sizeof seed_text, "%llu", (unsigned long long)cfg.seed);
    if (!rlab_args_given(args, "seed") && rlab_ctx_resolved(ctx, "seed", seed_text)) {
        rlab_host_dataset_release(w->host, w->ds);
        rlab_free(w);
        return rlab_ctx_err(ctx)->code;
    }
    if (!rlab_args_given(args, "model") && rlab_ctx_resolved(ctx, "model", mname)) {
        rlab_host_dataset_release(w->host, w->ds);
        rlab_free(w);
        return rlab_ctx_err(ctx)->code;
    }
    rlab_model *m = NULL;
    int rc = get_model(ctx, mname, &m, w);
    if (rc == RLAB_OK)
        rc = sim_new(&cfg, w->ds, p->s->world, m, NULL, &w->s, rlab_ctx_err(ctx));
    rlab_model_release(m);
    if (rc == RLAB_OK) /* the round's last full image plus the deltas after it */
        rc = sim_restore(w->s, db, p->id, round, rlab_ctx_err(ctx));
    if (rc == RLAB_OK && p->llm && cfg.use_llm) {
        /* share the parent's backend settings: a fresh handle of the same config is not
         * reconstructible here, so a branch of an openai run decides offline */
        w->s->cfg.use_llm = 0;
        rlab_ctx_printf(ctx, "note: the branch decides with the offline policies");
    }
    /* the simulated interactions up to the branch point (for retraining) */
    for (int64_t k = 0; rc == RLAB_OK && k < p->s->n_x; k++) {
        if (p->s->x_time[k] >= w->s->vtime)
            break;
        if (sim_x_append(w->s, p->s->x_user[k], p->s->x_item[k], p->s->x_time[k]))
            rc = rlab_ctx_errorf(ctx, RLAB_ENOMEM, "out of memory");
    }
    if (rc) {
        simw_free(w, 1);
        return rc;
    }
    for (int64_t k = 0; k < p->n_hist && p->hist[k].round <= round; k++)
        hist_push(w, &p->hist[k]);
    return branch_finish(ctx, w, p->id, round, p->ds->name, args);
}

/* ---- branching a stored simulation (a reopened workspace) ------------------------------- */

/* One row of simulator_sims: 0 when found, else RLAB_ENOTFOUND (no error set). */
typedef struct stored_sim {
    int64_t parent, branch_round, seed;
    int has_parent;
    char data[64], sha[700];
    char *config; /* rlab_free */
} stored_sim;

static int stored_row(rlab_db *db, int64_t id, stored_sim *o, rlab_err *err)
{
    memset(o, 0, sizeof *o);
    rlab_db_value prm[1] = {{.type = RLAB_DB_INT, .i = id}};
    rlab_db_result *r = rlab_db_query_table(db,
                                            "SELECT parent, branch_round, data, seed, config, "
                                            "data_sha FROM simulator_sims WHERE sim = ?1",
                                            prm, 1, 0, err);
    if (!r)
        return err->code ? err->code : RLAB_EIO;
    int rc = r->nrow == 1 ? RLAB_OK : RLAB_ENOTFOUND;
    if (rc == RLAB_OK) {
        const rlab_db_value *c = rlab_db_result_cell(r, 0, 0);
        o->has_parent = c->type == RLAB_DB_INT;
        o->parent = c->i;
        o->branch_round = rlab_db_result_cell(r, 0, 1)->i;
        c = rlab_db_result_cell(r, 0, 2);
        snprintf(o->data, sizeof o->data, "%.*s", c->s ? (int)c->n : 0, c->s ? c->s : "");
        o->seed = rlab_db_result_cell(r, 0, 3)->i;
        c = rlab_db_result_cell(r, 0, 4);
        o->config = rlab_malloc((c->s ? c->n : 0) + 1);
        if (!o->config) {
            rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
        } else {
            if (c->s)
                memcpy(o->config, c->s, c->n);
            o->config[c->s ? c->n : 0] = '\0';
        }
        c = rlab_db_result_cell(r, 0, 5);
        snprintf(o->sha, sizeof o->sha, "%.*s", c->s ? (int)c->n : 0, c->s ? c->s : "");
    }
    rlab_db_result_free(r);
    return rc;
}

/* Set the arguments of a flat JSON object (rlab_args_to_json's: strings, numbers, booleans)
 * on a, skipping keys the command does not declare. */
static int args_from_json(rlab_args *a, const char *js, rlab_err *err)
{
    const char *p = strchr(js, '{');
    if (!p)
        return rlab_errf(err, RLAB_EFORMAT, "simulator: stored config is not a JSON object");
    p++;
    char key[64], val[1024];
    for (;;) {
        while (*p == ' ' || *p == ',' || *p == '\n')
            p++;
        if (*p == '}' || !*p)
            return RLAB_OK;
        if (*p != '"')
            return rlab_errf(err, RLAB_EFORMAT, "simulator: bad stored config near '%.20s'", p);
        size_t k = 0;
        for (p++; *p && *p != '"'; p++)
            if (k + 1 < sizeof key)
                key[k++] = *p;
        key[k] = '\0';
        if (*p != '"' || p[1] != ':')
            return rlab_errf(err, RLAB_EFORMAT, "simulator: bad stored config near '%.20s'", p);
        p += 2;
        size_t v = 0;
        if (*p == '"') {
            for (p++; *p && *p != '"'; p++) {
                char ch = *p;
                if (ch == '\\' && p[1]) {
                    ch = *++p;
                    ch = ch == 'n' ? '\n' : ch == 't' ? '\t' : ch;
                }
                if (v + 1 < sizeof val)
                    val[v++] = ch;
            }
            if (*p == '"')
                p++;
        } else {
            while (*p && *p != ',' && *p != '}' && v + 1 < sizeof val)
                val[v++] = *p++;
        }
        val[v] = '\0';
        if (rlab_args_has(a, key) && strcmp(val, "null") != 0) {
            int rc = rlab_args_set(a, key, val, err);
            if (rc)
                return rc;
        }
    }
}

/* x_from_events' rows: each watch event appended to the simulation's interaction log. */
typedef struct x_rows {
    sim *s;
    int32_t na, ni;
    int rc; /* RLAB_EFORMAT: an event out of range (bad_agent, bad_item); RLAB_ENOMEM */
    int64_t bad_agent, bad_item;
} x_rows;

static int x_row(void *ud, int stmt_index, int ncol, const char *const *names,
                 const rlab_db_value *cells)
{
    (void)stmt_index, (void)names;
    x_rows *x = ud;
    if (ncol != 3)
        return 0;
    int64_t a = cells[0].i, it = cells[2].i;
    double t = cells[1].r; /* an integer cell carries its value in r too */
    if (a < 0 || a >= x->na || it < 0 || it >= x->ni) {
        x->rc = RLAB_EFORMAT;
        x->bad_agent = a, x->bad_item = it;
        return 1;
    }
    if (t < x->s->vtime &&
        sim_x_append(x->s, sim_agent_at(x->s, (int32_t)a)->user, (int32_t)it, t)) {
        x->rc = RLAB_ENOMEM;
        return 1;
    }
    return 0;
}

/* The stored watch events of simulation id in rounds (after, upto] (its parents' before its
 * own branch point), with virtual time before vtime, appended to w's interaction log. */
static int x_from_events(rlab_ctx *ctx, rlab_db *db, simw *w, int64_t id, int64_t upto, int depth)
{
    rlab_err *err = rlab_ctx_err(ctx);
    stored_sim r;
    int rc = stored_row(db, id, &r, err);
    rlab_free(r.config);
    if (rc)
        return rc == RLAB_ENOTFOUND
                   ? rlab_ctx_errorf(ctx, rc, "no stored simulation %lld", (long long)id)
                   : rc;
    int64_t after = -1;
    if (r.has_parent && (r.parent >= id || depth >= SIM_CHAIN_MAX))
        return rlab_ctx_errorf(ctx, RLAB_ESTATE, "simulation %lld: its chain of parents is broken",
                               (long long)id);
    if (r.has_parent) {
        after = r.branch_round < upto ? r.branch_round : upto;
        rc = x_from_events(ctx, db, w, r.parent, after, depth + 1);
        if (rc)
            return rc;
    }
    rlab_db_value prm[3] = {{.type = RLAB_DB_INT, .i = id},
                            {.type = RLAB_DB_INT, .i = after},
                            {.type = RLAB_DB_INT, .i = upto}};
    /* streamed row by row (a long simulation has millions of watch events: never all in
     * memory at once) */
    x_rows xr = {.s = w->s, .na = sim_n_agents(w->s), .ni = sim_n_items(w->s)};
    rc = rlab_db_query(db,
                       "SELECT agent, vtime, json_extract(payload, '$.item') FROM events WHERE "
                       "run_id = ?1 AND kind = 'watch' AND round > ?2 AND round <= ?3 ORDER BY id",
                       prm, 3, 0, x_row, &xr, err);
    if (rc == RLAB_OK && xr.rc == RLAB_EFORMAT)
        rc = rlab_ctx_errorf(ctx, RLAB_EFORMAT,
                             "simulation %lld: stored watch event with agent %lld, item %lld out "
                             "of range",
                             (long long)id, (long long)xr.bad_agent, (long long)xr.bad_item);
    else if (rc == RLAB_OK && xr.rc)
        rc = rlab_ctx_errorf(ctx, xr.rc, "out of memory");
    return rc;
}

/* simulator.branch sim=N of a simulation the store holds but this process has not loaded:
 * its configuration, dataset, ground truth and recommender rebuilt from the store, then the
 * round's image restored as the in-process branch does. */
static int branch_stored(rlab_ctx *ctx, const rlab_args *args, int64_t id)
{
    simstate *st = rlab_ctx_state(ctx);
    rlab_db *db = rlab_ctx_db(ctx);
    rlab_err *err = rlab_ctx_err(ctx);
    int64_t round = rlab_args_int(args, "round");
    stored_sim row, root;
    memset(&root, 0, sizeof root);
    int rc = stored_row(db, id, &row, err);
    if (rc == RLAB_ENOTFOUND)
        return rlab_ctx_errorf(ctx, rc, "no simulation %lld (neither loaded nor in the store)",
                               (long long)id);
    if (rc)
        return rc;
    char model[128] = "";
    {
        rlab_db_value prm[2] = {{.type = RLAB_DB_INT, .i = id}, {.type = RLAB_DB_INT, .i = round}};
        rlab_db_result *r = rlab_db_query_table(
            db, "SELECT model FROM simulator_checkpoints WHERE sim = ?1 AND round = ?2", prm, 2, 0,
            err);
        if (!r) {
            rlab_free(row.config);
            return err->code ? err->code : RLAB_EIO;
        }
        int none = r->nrow == 0;
        if (!none) {
            const rlab_db_value *c = rlab_db_result_cell(r, 0, 0);
            snprintf(model, sizeof model, "%.*s", c->s ? (int)c->n : 0, c->s ? c->s : "");
        }
        rlab_db_result_free(r);
        if (none) {
            rlab_free(row.config);
            return rlab_ctx_errorf(ctx, RLAB_ENOTFOUND,
                                   "stored simulation %lld has no checkpoint of round %lld",
                                   (long long)id, (long long)round);
        }
    }
    /* the configuration is the one simulator.new recorded for the root of the branches */
    root = row;
    row.config = NULL;
    int64_t root_id = id;
    for (int depth = 0; root.has_parent; depth++) {
        int64_t up = root.parent;
        if (up >= root_id || depth >= SIM_CHAIN_MAX) { /* a parent is always older */
            rlab_free(root.config);
            return rlab_ctx_errorf(ctx, RLAB_ESTATE,
                                   "simulation %lld: its chain of parents is broken at %lld",
                                   (long long)id, (long long)root_id);
        }
        root_id = up;
        rlab_free(root.config);
        rc = stored_row(db, up, &root, err);
        if (rc) {
            rlab_free(root.config);
            return rc == RLAB_ENOTFOUND ? rlab_ctx_errorf(ctx, rc,
                                                          "simulation %lld: its parent %lld is "
                                                          "not in the store",
                                                          (long long)id, (long long)up)
                                        : rc;
        }
    }
    simw *w = rlab_calloc(1, sizeof *w);
    rlab_args *na = w ? rlab_ctx_args(ctx, "simulator.new") : NULL;
    if (!na) {
        rlab_free(w), rlab_free(root.config);
        return w ? err->code : rlab_ctx_errorf(ctx, RLAB_ENOMEM, "out of memory");
    }
    rc = args_from_json(na, root.config ? root.config : "{}", err);
    rlab_free(root.config);
    /* keys the stored config lacks (a workspace older than an argument) take the defaults */
    if (rc == RLAB_OK && !rlab_args_given(na, "data") && row.data[0])
        rc = rlab_args_set(na, "data", row.data, err);
    if (rc == RLAB_OK)
        rc = rlab_args_finish(na, err);
    w->host = rlab_ctx_host(ctx);
    if (rc == RLAB_OK) {
        rlab_err de = {0};
        w->ds = rlab_host_dataset_get_err(w->host, row.data, &de);
        if (!w->ds)
            rc = rlab_ctx_errorf(ctx, RLAB_ENOTFOUND, "simulation %lld: dataset '%s': %s",
                                 (long long)id, row.data, de.msg[0] ? de.msg : "not found");
    }
    if (rc == RLAB_OK && row.sha[0]) {
        char fp[700];
        ds_fingerprint(db, w->ds, fp, sizeof fp);
        if (strcmp(fp, row.sha) != 0)
            rc = rlab_ctx_errorf(ctx, RLAB_ESTATE,
                                 "dataset '%s' changed since simulation %lld (recorded %s, now %s)",
                                 row.data, (long long)id, row.sha, fp);
    } else if (rc == RLAB_OK) {
        rlab_ctx_printf(ctx,
                        "note: simulation %lld recorded no fingerprint of dataset '%s' "
                        "(a workspace older than the check): not checked",
                        (long long)id, row.data);
    }
    rlab_world *world = NULL;
    if (rc == RLAB_OK) {
        /* a simulation with ground truth stored satisfaction values (NULL without) */
        world = world_for(st, w->ds);
        rlab_db_value prm[2] = {{.type = RLAB_DB_INT, .i = id},
                                {.type = RLAB_DB_INT, .i = root_id}};
        rlab_db_result *q =
            world ? NULL
                  : rlab_db_query_table(db,
                                        "SELECT 1 FROM simulator_stats WHERE sim IN (?1, ?2) "
                                        "AND satisfaction IS NOT NULL LIMIT 1",
                                        prm, 2, 0, err);
        if (!q && !world)
            rc = err->code ? err->code : RLAB_EIO;
        else if (q && q->nrow > 0)
            rc = rlab_ctx_errorf(ctx, RLAB_ENOTFOUND,
                                 "simulation %lld ran with the ground truth of world '%s', "
                                 "which is not in this session (run simulator.world with the "
                                 "same arguments first)",
                                 (long long)id, row.data);
        rlab_db_result_free(q);
    }
    sim_config cfg;
    config_from_args(na, &cfg);
    w->retrain_epochs = (int)rlab_args_int(na, "retrain_epochs");
    rlab_args_free(na);
    cfg.seed =
        rlab_args_given(args, "seed") ? (uint64_t)rlab_args_int(args, "seed") : (uint64_t)row.seed;
    const char *mname = rlab_args_given(args, "model") ? rlab_args_str(args, "model") : model;
    char seed_text[32];
    snprintf(seed_text, sizeof seed_text, "%llu", (unsigned long long)cfg.seed);
    if (rc == RLAB_OK && !rlab_args_given(args, "seed"))
        rc = rlab_ctx_resolved(ctx, "seed", seed_text);
    if (rc == RLAB_OK && !rlab_args_given(args, "model"))
        rc = rlab_ctx_resolved(ctx, "model", mname);
    rlab_model *m = NULL;
    if (rc == RLAB_OK) {
        rc = get_model(ctx, mname, &m, w);
        if (rc)
            rc = rlab_ctx_errorf(ctx, rc,
                                 "simulation %lld: recommender '%s' is neither registered nor "
                                 "in the store (train it again, or give model=)",
                                 (long long)id, mname);
    }
    if (rc == RLAB_OK)
        rc = sim_new(&cfg, w->ds, world, m, NULL, &w->s, err);
    rlab_model_release(m);
    if (rc == RLAB_OK)
        rc = sim_restore(w->s, db, id, round, err);
    if (rc == RLAB_OK && cfg.use_llm) {
        w->s->cfg.use_llm = 0; /* as the in-process branch of an openai run */
        rlab_ctx_printf(ctx, "note: the branch decides with the offline policies");
    }
    if (rc == RLAB_OK)
        rc = x_from_events(ctx, db, w, id, round, 0);
    if (rc) {
        simw_free(w, 1);
        return rc;
    }
    if (w->s->n_x == 0 && round > 0)
        rlab_ctx_printf(ctx,
                        "note: the store has no watch events of simulation %lld before "
                        "round %lld: retraining data starts at the branch point",
                        (long long)id, (long long)round);
    return branch_finish(ctx, w, id, round, row.data, args);
}

/* ---- role play ------------------------------------------------------------------------ */

static const char *const act_choices[] = {"buy", "next", "search", "leave", NULL};

/* Print the played agent's page and put it in the result as a table. */
static int show_page(rlab_ctx *ctx, simw *w)
{
    const int32_t *pg;
    int np = 0, fs = 0;
    int rc = sim_play_page(w->s, &pg, &np, &fs, rlab_ctx_err(ctx));
    if (rc)
        return rc;
    const sim_agent *ag = sim_agent_at(w->s, sim_played(w->s));
    rlab_ctx_printf(ctx, "%s's %s (round %lld):", ag->name,
                    fs ? "search results" : "recommendations", (long long)sim_round(w->s) + 1);
    static const char *const cols[] = {"k", "item", "title", "genres"};
    rlab_table *t = rlab_ctx_result_table(ctx, "page", 4, cols);
    if (!t)
        return RLAB_ENOMEM;
    for (int q = 0; q < np; q++) {
        char gen[128] = "";
        size_t l = 0;
        for (int64_t x = w->s->g_off[pg[q]]; x < w->s->g_off[pg[q] + 1] && l < sizeof gen; x++)
            l += (size_t)snprintf(gen + l, sizeof gen - l, "%s%s", l ? ", " : "",
                                  sim_genre_name(w->s, w->s->g_items[x]));
        rlab_ctx_printf(ctx, "  %d. <%s> (%s)", q + 1, sim_item_title(w->s, pg[q]), gen);
        rlab_table_add_row(t, "iiss", q + 1, (int)pg[q], sim_item_title(w->s, pg[q]), gen);
    }
    rlab_ctx_printf(ctx,
                    "choose: simulator.act do=buy k=1..%d | do=next | do=search "
                    "title=\"...\" | do=leave; or simulator.chat with=N text=\"...\"",
                    np);
    return RLAB_OK;
}

/* Run the rounds that go on around the played agent. */
static int rounds_around(rlab_ctx *ctx, simw *w, const rlab_args *args)
{
    int n = (int)rlab_args_int(args, "rounds");
    if (n <= 0)
        return RLAB_OK;
    int rc = run_rounds(ctx, w, n, -1.0);
    if (rc == RLAB_OK && sim_played(w->s) >= 0)
        rc = show_page(ctx, w);
    return rc;
}

static int play_run(rlab_ctx *ctx, const rlab_args *args)
{
    simw *w = idle_sim(ctx, args);
    if (!w)
        return rlab_ctx_err(ctx)->code;
    sim_attach_store(w->s, rlab_ctx_db(ctx), rlab_ctx_db(ctx) ? w->id : 0);
    int rc = RLAB_OK;
    if (rlab_args_int(args, "stop")) {
        int32_t a = sim_played(w->s);
        sim_play_end(w->s);
        rlab_ctx_printf(ctx, a >= 0 ? "agent %d is simulated again" : "no agent was played",
                        (int)a);
    } else {
        int32_t a = (int32_t)rlab_args_int(args, "agent");
        rc = sim_play_begin(w->s, a, rlab_ctx_err(ctx));
        if (rc == RLAB_OK) {
            char prof[256];
            sim_profile_text(w->s, a, prof, sizeof prof);
            rlab_ctx_printf(ctx, "you play agent %d: %s (the other agents go on around you)",
                            (int)a, prof);
            rlab_ctx_result_int(ctx, "agent", a);
            rc = show_page(ctx, w);
        }
    }
    rlab_err e = {0};
    if (rlab_ctx_db(ctx))
        rlab_db_flush(rlab_ctx_db(ctx), &e);
    sim_attach_store(w->s, NULL, 0);
    return rc;
}

static int act_run(rlab_ctx *ctx, const rlab_args *args)
{
    simw *w = idle_sim(ctx, args);
    if (!w)
        return rlab_ctx_err(ctx)->code;
    int what = rlab_args_choice(args, "do");
    int act = what == 0   ? (int)rlab_args_int(args, "k") - 1
              : what == 1 ? SIM_P_NEXT
              : what == 2 ? SIM_P_SEARCH
                          : SIM_P_LEAVE;
    const char *arg = what == 0 ? rlab_args_str(args, "feeling") : rlab_args_str(args, "title");
    if (what == 2 && (!arg || !*arg))
        return rlab_ctx_errorf(ctx, RLAB_EINVAL, "do=search needs title=\"...\"");
    sim_attach_store(w->s, rlab_ctx_db(ctx), rlab_ctx_db(ctx) ? w->id : 0);
    sim_play_out out;
    int rc = sim_play_act(w->s, act, arg && *arg ? arg : NULL, &out, rlab_ctx_err(ctx));
    rlab_err e = {0};
    if (rlab_ctx_db(ctx))
        rlab_db_flush(rlab_ctx_db(ctx), &e);
    sim_attach_store(w->s, NULL, 0);
    if (rc)
        return rc;
    const char *nm = sim_agent_at(w->s, sim_played(w->s))->name;
    if (what == 0) {
        rlab_ctx_printf(ctx, "%s watched <%s> (%s): %s", nm, sim_item_title(w->s, out.item),
                        out.liked ? "liked" : "not liked", out.text);
        rlab_ctx_result_int(ctx, "item", out.item);
        rlab_ctx_result_str(ctx, "feeling", out.text);
    } else if (what == 3 || out.visit_over) {
        rlab_ctx_printf(ctx, "%s left the recommender", nm);
    }
    if (out.visit_over)
        return rounds_around(ctx, w, args);
    return show_page(ctx, w);
}

static int chat_run(rlab_ctx *ctx, const rlab_args *args)
{
    simw *w = idle_sim(ctx, args);
    if (!w)
        return rlab_ctx_err(ctx)->code;
    int32_t b = rlab_args_given(args, "with") ? (int32_t)rlab_args_int(args, "with") : -1;
    const char *text = rlab_args_str(args, "text");
    int32_t other = b >= 0 ? b : w->s->play_chat_with; /* the partner (reset by a goodbye) */
    sim_attach_store(w->s, rlab_ctx_db(ctx), rlab_ctx_db(ctx) ? w->id : 0);
    char *reply = NULL;
    int ended = 0, by = 0;
    int rc = sim_play_chat(w->s, b, text, &reply, &ended, &by, rlab_ctx_err(ctx));
    rlab_err e = {0};
    if (rlab_ctx_db(ctx))
        rlab_db_flush(rlab_ctx_db(ctx), &e);
    sim_attach_store(w->s, NULL, 0);
    if (rc)
        return rc;
    int32_t a = sim_played(w->s);
    rlab_ctx_printf(ctx, "[%s]: %s", sim_agent_at(w->s, a)->name, text);
    rlab_ctx_printf(ctx, "[%s]: %s", other >= 0 ? sim_agent_at(w->s, other)->name : "?", reply);
    rlab_ctx_result_str(ctx, "reply", reply);
    rlab_ctx_result_int(ctx, "ended", ended);
    rlab_free(reply);
    if (ended) {
        rlab_ctx_printf(ctx, "the chat is over");
        return rounds_around(ctx, w, args);
    }
    return RLAB_OK;
}

/* ---- fidelity against real users ------------------------------------------------------ */

static int fid_cancel(void *ud) { return rlab_ctx_cancelled((rlab_ctx *)ud); }

static void fid_progress(void *ud, int done, int total, const char *phase)
{
    rlab_ctx_progress((rlab_ctx *)ud, done, total, phase, 0, NULL);
}

/* rec=train:<kind>: the dataset "<data>.cut" (the agents' known rows only, every user and
 * item kept so the indices agree) is registered and a <kind> model is trained on it by the
 * host's train verb (split=none, the command's seed); *m: +1 reference. */
static int train_on_cut(rlab_ctx *ctx, const rlab_dataset *b, const sim_fid_config *c,
                        const char *kind, rlab_model **m)
{
    *m = NULL;
    rlab_err *err = rlab_ctx_err(ctx);
    uint8_t *keep = rlab_malloc(b->inter.n ? b->inter.n : 1);
    if (!keep)
        return rlab_ctx_errorf(ctx, RLAB_ENOMEM, "out of memory");
    int rc = sim_fid_keep(b, c, keep, err);
    char dsname[80], mname[128];
    snprintf(dsname, sizeof dsname, "%.60s.cut", b->name);
    snprintf(mname, sizeof mname, "%s.%.24s", dsname, kind);
    rlab_dataset *ds = rc ? NULL : rlab_dataset_new(dsname, err);
    if (!ds) {
        rlab_free(keep);
        return err->code ? err->code : RLAB_ENOMEM;
    }
    for (int32_t u = 0; rc == RLAB_OK && u < rlab_vocab_size(&b->users); u++)
        if (rlab_vocab_add(&ds->users, b->users.names[u], strlen(b->users.names[u])) < 0)
            rc = RLAB_ENOMEM;
    for (int32_t i = 0; rc == RLAB_OK && i < rlab_vocab_size(&b->items); i++)
        if (rlab_vocab_add(&ds->items, b->items.names[i], strlen(b->items.names[i])) < 0)
            rc = RLAB_ENOMEM;
    for (size_t r = 0; rc == RLAB_OK && r < b->inter.n; r++)
        if (keep[r])
            rc = rlab_inter_push(&ds->inter, b->inter.user[r], b->inter.item[r], b->inter.ts[r],
                                 b->inter.rating[r], NULL);
    rlab_free(keep);
    ds->inter.flags = b->inter.flags;
    snprintf(ds->format, sizeof ds->format, "simulated");
    snprintf(ds->source, sizeof ds->source, "fidelity cut %.2f of '%s'", c->cut, b->name);
    if (rc) {
        rlab_dataset_free(ds);
        return rlab_ctx_errorf(ctx, RLAB_ENOMEM, "out of memory");
    }
    if (rlab_ctx_add_dataset(ctx, ds))
        return err->code;
    char full[96];
    snprintf(full, sizeof full, "train %s", kind);
    rlab_args *a = rlab_ctx_args(ctx, full);
    if (!a)
        return err->code;
    rc = rlab_args_set(a, "data", dsname, err);
    if (!rc)
        rc = rlab_args_set(a, "name", mname, err);
    if (!rc && rlab_args_has(a, "split"))
        rc = rlab_args_set(a, "split", "none", err);
    if (!rc && rlab_args_has(a, "seed"))
        rc = rlab_args_set_int(a, "seed", (int64_t)(c->seed & 0x7fffffff), err);
    if (!rc && rlab_args_has(a, "eval_every"))
        rc = rlab_args_set_int(a, "eval_every", 0, err);
    if (rc) {
        rlab_args_free(a);
        return rc;
    }
    rlab_ctx_printf(ctx, "training %s on the cut histories ('%s')", kind, dsname);
    if (rlab_ctx_call(ctx, a, NULL))
        return err->code;
    *m = rlab_models_get(rlab_host_models(rlab_ctx_host(ctx)), mname);
    return *m ? RLAB_OK : rlab_ctx_errorf(ctx, RLAB_ENOTFOUND, "model '%s' not found", mname);
}

static int fidelity_run(rlab_ctx *ctx, const rlab_args *args)
{
    rlab_host *h = rlab_ctx_host(ctx);
    const char *data = rlab_args_str(args, "data");
    rlab_dataset *ds = rlab_host_dataset_get(h, data);
    if (!ds)
        return rlab_ctx_errorf(ctx, RLAB_ENOTFOUND, "dataset '%s' not found", data);
    sim_fid_config c;
    sim_fid_config_default(&c);
    c.seed = (uint64_t)rlab_args_int(args, "seed");
    c.n_agents = (int32_t)rlab_args_int(args, "agents");
    c.cut = rlab_args_float(args, "cut");
    c.min_hist = (int)rlab_args_int(args, "min_hist");
    c.fit_share = rlab_args_float(args, "fit");
    c.n_pos = (int)rlab_args_int(args, "pos");
    c.neg_ratio = (int)rlab_args_int(args, "neg");
    c.page_size = (int)rlab_args_int(args, "page");
    c.llm_retries = (int)rlab_args_int(args, "llm_retries");
    c.progress = fid_progress;
    c.progress_ud = ctx;
    const char *rec = rlab_args_str(args, "rec");
    rlab_model *m = NULL;
    int rc = RLAB_OK;
    if (strncmp(rec, "train:", 6) == 0) {
        /* a recommender of that kind trained on the cut histories only */
        c.rec_pop = 0;
        rc = train_on_cut(ctx, ds, &c, rec + 6, &m);
        c.model = m;
    } else if (strcmp(rec, "pop") != 0) {
        c.rec_pop = 0;
        if (strcmp(rec, "random") != 0) {
            m = rlab_host_model_get(h, rec, NULL);
            if (!m)
                rc = rlab_ctx_errorf(ctx, RLAB_ENOTFOUND,
                                     "model '%s' not found (rec=pop, random or a model "
                                     "trained on the cut histories)",
                                     rec);
        }
        c.model = m;
    }
    rlab_llm *llm = NULL;
    if (rc == RLAB_OK && rlab_args_choice(args, "backend") == 1) {
        const char *url = rlab_args_str(args, "llm_url");
        const char *model = rlab_args_str(args, "llm_model");
        rlab_llm_config lc = {.backend = "openai",
                              .base_url = url && *url ? url : NULL,
                              .model = model && *model ? model : NULL,
                              .timeout = rlab_args_float(args, "llm_timeout"),
                              .max_in_flight = (int)rlab_args_int(args, "in_flight"),
                              .seed = c.seed};
        llm = rlab_llm_new(&lc, rlab_ctx_err(ctx));
        if (!llm)
            rc = rlab_ctx_err(ctx)->code;
        else {
            char d[256];
            rlab_llm_describe(llm, d, sizeof d);
            rlab_ctx_printf(ctx, "language backend: %s", d);
            rlab_llm_set_cancel(llm, llm_cancel, ctx);
        }
        c.llm = llm;
    }
    char proto[256];
    snprintf(proto, sizeof proto,
             "history cut %.2f by time, users with >= %d interactions, %.0f%% fit / rest "
             "report (seed %llu); (a) %d held-out + %dx not-chosen items; (b) 1-5 stars of the "
             "held-out items; (c) first page of %d from %s",
             c.cut, c.min_hist, 100.0 * c.fit_share, (unsigned long long)c.seed, c.n_pos,
             c.neg_ratio, c.page_size, rec);
    sim_fid_report r;
    if (rc == RLAB_OK) {
        rlab_ctx_printf(ctx, "fidelity on '%s': %s", data, proto);
        rc = sim_fidelity(ds, &c, fid_cancel, ctx, &r, rlab_ctx_err(ctx));
    }
    rlab_llm_free(llm);
    rlab_model_release(m);
    rlab_host_dataset_release(h, ds);
    if (rc)
        return rc;
    if (r.first_llm_error[0])
        rlab_ctx_printf(ctx, "language model: %s", r.first_llm_error);
    rlab_ctx_printf(ctx,
                    "%d users (%d with fewer than %d interactions left out): %d to fit, %d "
                    "reported",
                    (int)r.users, (int)r.skipped, c.min_hist, (int)r.fit_users,
                    (int)r.report_users);
    rlab_ctx_printf(ctx,
                    "offline_fit weights: choice [1 match pop recent itemmean] = [%.3f %.3f "
                    "%.3f %.3f %.3f], threshold %.3f (fit accuracy %.3f on %lld pairs); rating "
                    "[1 usermean itemmean match recent] = [%.3f %.3f %.3f %.3f %.3f]",
                    r.w_choice[0], r.w_choice[1], r.w_choice[2], r.w_choice[3], r.w_choice[4],
                    r.thr, r.fit_acc, (long long)r.fit_pairs, r.w_rating[0], r.w_rating[1],
                    r.w_rating[2], r.w_rating[3], r.w_rating[4]);
    static const char *const cols[] = {"policy",    "users",    "pairs", "accuracy", "precision",
                                       "recall",    "f1",       "rated", "mae",      "rmse",
                                       "spearman",  "pages",    "hit",   "real_hit", "buy",
                                       "llm_asked", "fallbacks"};
    rlab_table *t = rlab_ctx_result_table(ctx, "fidelity", 17, cols);
    if (!t)
        return RLAB_ENOMEM;
    for (int p = 0; p < SIM_FID_NPOL; p++) {
        if (!r.have[p])
            continue;
        const sim_fid_result *x = &r.pol[p];
        rlab_cell row[17] = {{.type = RLAB_CELL_TEXT, .s = sim_fid_policy_name(p)},
                             {.type = RLAB_CELL_INT, .i = r.report_users},
                             {.type = RLAB_CELL_INT, .i = x->pairs},
                             {.type = RLAB_CELL_FLOAT, .f = x->acc},
                             {.type = RLAB_CELL_FLOAT, .f = x->prec},
                             {.type = RLAB_CELL_FLOAT, .f = x->rec},
                             {.type = RLAB_CELL_FLOAT, .f = x->f1},
                             {.type = RLAB_CELL_INT, .i = x->rated},
                             x->rated ? (rlab_cell){.type = RLAB_CELL_FLOAT, .f = x->mae}
                                      : (rlab_cell){.type = RLAB_CELL_NULL},
                             x->rated ? (rlab_cell){.type = RLAB_CELL_FLOAT, .f = x->rmse}
                                      : (rlab_cell){.type = RLAB_CELL_NULL},
                             x->rated && !isnan(x->spearman)
                                 ? (rlab_cell){.type = RLAB_CELL_FLOAT, .f = x->spearman}
                                 : (rlab_cell){.type = RLAB_CELL_NULL},
                             {.type = RLAB_CELL_INT, .i = x->pages},
                             {.type = RLAB_CELL_FLOAT, .f = x->hit},
                             {.type = RLAB_CELL_FLOAT, .f = r.real_hit},
                             {.type = RLAB_CELL_FLOAT, .f = x->buy},
                             {.type = RLAB_CELL_INT, .i = x->llm_asked},
                             {.type = RLAB_CELL_INT, .i = x->llm_fallback}};
        rlab_table_add_cells(t, row);
        char nm[64];
#define FID_METRIC(field, label)                                                                   \
    do {                                                                                           \
        snprintf(nm, sizeof nm, "%s.%s", sim_fid_policy_name(p), label);                           \
        rlab_ctx_metric(ctx, 0, "fidelity", nm, proto, field);                                     \
    } while (0)
        FID_METRIC(x->acc, "accuracy");
        FID_METRIC(x->prec, "precision");
        FID_METRIC(x->rec, "recall");
        FID_METRIC(x->f1, "f1");
        if (x->rated) {
            FID_METRIC(x->mae, "mae");
            FID_METRIC(x->rmse, "rmse");
            if (!isnan(x->spearman))
                FID_METRIC(x->spearman, "spearman");
        }
        FID_METRIC(x->hit, "hit");
#undef FID_METRIC
        char b[96] = "(b) no ratings in the data";
        if (x->rated)
            snprintf(b, sizeof b, "(b) MAE %.3f RMSE %.3f Spearman %.3f", x->mae, x->rmse,
                     x->spearman);
        rlab_ctx_printf(ctx,
                        "%-11s (a) acc %.3f prec %.3f rec %.3f F1 %.3f | %s | (c) hit %.3f "
                        "(real users %.3f), picked %.3f",
                        sim_fid_policy_name(p), x->acc, x->prec, x->rec, x->f1, b, x->hit,
                        r.real_hit, x->buy);
    }
    rlab_ctx_metric(ctx, 0, "fidelity", "real.hit", proto, r.real_hit);
    if (r.has_rating) {
        static const char *const dcols[] = {"stars",   "real",        "random",
                                            "offline", "offline_fit", "openai"};
        int nc = r.have[SIM_FID_LLM] ? 6 : 5;
        rlab_table *dt = rlab_ctx_result_table(ctx, "ratings", nc, dcols);
        if (!dt)
            return RLAB_ENOMEM;
        int64_t tot = r.pol[SIM_FID_RANDOM].rated;
        for (int k = 0; k < 5 && tot > 0; k++) {
            rlab_cell row[6] = {{.type = RLAB_CELL_INT, .i = k + 1},
                                {.type = RLAB_CELL_FLOAT, .f = (double)r.real_dist[k] / tot}};
            for (int p = 0; p < nc - 2; p++)
                row[2 + p] = (rlab_cell){.type = RLAB_CELL_FLOAT,
                                         .f = (double)r.pol[p].dist[k] / (double)tot};
            rlab_table_add_cells(dt, row);
        }
    }
    rlab_ctx_result_str(ctx, "protocol", proto);
    rlab_ctx_result_int(ctx, "users", r.report_users);
    rlab_ctx_result_int(ctx, "fit_users", r.fit_users);
    return RLAB_OK;
}

static int stats_run(rlab_ctx *ctx, const rlab_args *args)
{
    simw *w = find_sim(ctx, args);
    if (!w)
        return RLAB_ENOTFOUND;
    static const char *const cols[] = {
        "round",    "active",  "watches",       "chats",   "posts",        "searches", "ctr",
        "coverage", "entropy", "watch_entropy", "density", "satisfaction", "top_item"};
    rlab_table *t = rlab_ctx_result_table(ctx, "stats", 13, cols);
    if (!t)
        return RLAB_ENOMEM;
    for (int64_t k = 0; k < w->n_hist; k++) {
        const sim_stats *st = &w->hist[k];
        rlab_cell row[13] = {
            {.type = RLAB_CELL_INT, .i = st->round},
            {.type = RLAB_CELL_INT, .i = st->active},
            {.type = RLAB_CELL_INT, .i = st->watches},
            {.type = RLAB_CELL_INT, .i = st->chats},
            {.type = RLAB_CELL_INT, .i = st->posts},
            {.type = RLAB_CELL_INT, .i = st->searches},
            {.type = RLAB_CELL_FLOAT, .f = st->ctr},
            {.type = RLAB_CELL_FLOAT, .f = st->coverage},
            {.type = RLAB_CELL_FLOAT, .f = st->exp_entropy},
            {.type = RLAB_CELL_FLOAT, .f = st->watch_entropy},
            {.type = RLAB_CELL_FLOAT, .f = st->density},
            !isnan(st->satisfaction) ? (rlab_cell){.type = RLAB_CELL_FLOAT, .f = st->satisfaction}
                                     : (rlab_cell){.type = RLAB_CELL_NULL},
            st->top_items[0] >= 0
                ? (rlab_cell){.type = RLAB_CELL_TEXT, .s = sim_item_title(w->s, st->top_items[0])}
                : (rlab_cell){.type = RLAB_CELL_NULL}};
        rlab_table_add_cells(t, row);
    }
    rlab_ctx_result_int(ctx, "sim", w->id);
    rlab_ctx_result_int(ctx, "round", sim_round(w->s));
    return RLAB_OK;
}

static int agent_run(rlab_ctx *ctx, const rlab_args *args)
{
    simw *w = idle_sim(ctx, args);
    if (!w)
        return rlab_ctx_err(ctx)->code;
    int32_t a = (int32_t)rlab_args_int(args, "agent");
    const sim_agent *ag = sim_agent_at(w->s, a);
    if (!ag)
        return rlab_ctx_errorf(ctx, RLAB_EINVAL, "no agent %d (0..%d)", (int)a,
                               (int)sim_n_agents(w->s) - 1);
    char prof[256];
    sim_profile_text(w->s, a, prof, sizeof prof);
    rlab_ctx_result_str(ctx, "name", ag->name);
    rlab_ctx_result_str(ctx, "profile", prof);
    rlab_ctx_result_str(ctx, "traits", ag->traits);
    rlab_ctx_result_str(ctx, "status", ag->status);
    rlab_ctx_result_int(ctx, "watches", ag->n_watch);
    rlab_ctx_printf(ctx, "%s", prof);
    static const char *const cols[] = {"tier", "text", "importance", "created", "state"};
    rlab_table *t = rlab_ctx_result_table(ctx, "memories", 5, cols);
    if (!t)
        return RLAB_ENOMEM;
    char line[256];
    static const char *const states[] = {"live", "forgotten", "merged"};
    for (int k = ag->n_stm - 1; k >= 0; k--) {
        sim_memory_text(w->s, a, &ag->stm[k], line, sizeof line);
        rlab_table_add_row(t, "ssffs", "short", line, (double)ag->stm[k].importance,
                           (double)ag->stm[k].created, "live");
    }
    for (int k = ag->n_ltm - 1; k >= 0; k--) {
        sim_memory_text(w->s, a, &ag->ltm[k], line, sizeof line);
        rlab_table_add_row(t, "ssffs", "long", line, (double)ag->ltm[k].importance,
                           (double)ag->ltm[k].created, states[ag->ltm[k].state % 3]);
    }
    static const char *const hcols[] = {"list", "item", "title"};
    rlab_table *h = rlab_ctx_result_table(ctx, "history", 3, hcols);
    for (int k = 1; h && k <= SIM_HIST; k++) {
        int32_t it = ag->watched[(ag->watched_pos - k + SIM_HIST) % SIM_HIST];
        if (it >= 0)
            rlab_table_add_row(h, "sis", "watched", (int)it, sim_item_title(w->s, it));
    }
    for (int k = 0; h && k < SIM_HIST; k++)
        if (ag->heard[k] >= 0)
            rlab_table_add_row(h, "sis", "heard", (int)ag->heard[k],
                               sim_item_title(w->s, ag->heard[k]));
    return RLAB_OK;
}

static int list_run(rlab_ctx *ctx, const rlab_args *args)
{
    (void)args;
    simstate *st = rlab_ctx_state(ctx);
    static const char *const cols[] = {"sim",   "parent",  "round", "agents",
                                       "model", "current", "status"};
    rlab_table *t = rlab_ctx_result_table(ctx, "sims", 7, cols);
    if (!t)
        return RLAB_ENOMEM;
    int64_t loaded[MAX_SIMS];
    int nl = 0;
    pthread_mutex_lock(&st->mu);
    for (int i = 0; i < st->n; i++) {
        simw *w = st->sims[i];
        loaded[nl++] = w->id;
        rlab_table_add_row(t, "llllsis", (int64_t)w->id, (int64_t)w->parent,
                           (int64_t)sim_round(w->s), (int64_t)sim_n_agents(w->s),
                           sim_model_name(w->s), w->id == st->current, "loaded");
    }
    pthread_mutex_unlock(&st->mu);
    /* the store's simulations this process has not loaded (an earlier session's): their last
     * checkpointed round, which simulator.branch sim=<id> round=<r> continues from */
    rlab_db *db = rlab_ctx_db(ctx);
    if (!db)
        return RLAB_OK;
    rlab_err e = {0};
    rlab_db_result *r = rlab_db_query_table(
        db,
        "SELECT s.sim, coalesce(s.parent, 0), (SELECT max(round) FROM simulator_checkpoints c "
        "WHERE c.sim = s.sim), s.agents, (SELECT model FROM simulator_checkpoints c WHERE "
        "c.sim = s.sim ORDER BY round DESC LIMIT 1) FROM simulator_sims s ORDER BY s.sim",
        NULL, 0, 0, &e);
    if (!r)
        return rlab_ctx_errorf(ctx, e.code ? e.code : RLAB_EIO, "%s", e.msg);
    for (int k = 0; k < r->nrow; k++) {
        int64_t id = rlab_db_result_cell(r, k, 0)->i;
        int seen = 0;
        for (int i = 0; i < nl; i++)
            seen |= loaded[i] == id;
        if (seen)
            continue;
        const rlab_db_value *mc = rlab_db_result_cell(r, k, 4);
        char model[128];
        snprintf(model, sizeof model, "%.*s", mc->s ? (int)mc->n : 0, mc->s ? mc->s : "");
        const rlab_db_value *rc = rlab_db_result_cell(r, k, 2);
        rlab_table_add_row(t, "llllsis", id, rlab_db_result_cell(r, k, 1)->i,
                           rc->type == RLAB_DB_INT ? rc->i : (int64_t)-1,
                           rlab_db_result_cell(r, k, 3)->i, model, 0, "stored");
    }
    rlab_db_result_free(r);
    return RLAB_OK;
}

static int world_run(rlab_ctx *ctx, const rlab_args *args)
{
    simstate *st = rlab_ctx_state(ctx);
    rlab_world_config c;
    rlab_world_config_default(&c);
    c.seed = (uint64_t)rlab_args_int(args, "seed");
    c.n_users = (int32_t)rlab_args_int(args, "users");
    c.n_items = (int32_t)rlab_args_int(args, "items");
    c.n_genres = (int32_t)rlab_args_int(args, "genres");
    c.n_inter = rlab_args_int(args, "interactions");
    c.avg_follow = (float)rlab_args_float(args, "follow");
    c.homophily = (float)rlab_args_float(args, "homophily");
    const char *name = rlab_args_str(args, "name");
    rlab_world *w = NULL;
    rlab_dataset *ds = NULL;
    if (rlab_world_generate(&c, name, &w, &ds, rlab_ctx_err(ctx)))
        return rlab_ctx_err(ctx)->code;
    snprintf(ds->source, sizeof ds->source, "builtin:world:%016llx",
             (unsigned long long)rlab_world_checksum(w, ds));
    pthread_mutex_lock(&st->mu);
    int slot = -1;
    for (int i = 0; i < st->nworlds; i++)
        if (strcmp(st->worlds[i].name, name) == 0)
            slot = i;
    int ok = 1;
    if (slot >= 0) {
        /* a simulation may still read the old world: keep it alive, under another name */
        ok = st->nworlds < MAX_WORLDS;
        if (ok) {
            st->worlds[st->nworlds] = st->worlds[slot];
            snprintf(st->worlds[st->nworlds++].name, sizeof st->worlds[0].name, "(old)");
        }
    } else if (st->nworlds < MAX_WORLDS) {
        slot = st->nworlds++;
    } else {
        ok = 0;
    }
    if (ok) {
        snprintf(st->worlds[slot].name, sizeof st->worlds[0].name, "%s", name);
        st->worlds[slot].w = w;
    }
    pthread_mutex_unlock(&st->mu);
    if (!ok) {
        rlab_world_free(w);
        rlab_dataset_free(ds);
        return rlab_ctx_errorf(ctx, RLAB_ESTATE, "at most %d worlds per session", MAX_WORLDS);
    }
    int32_t nu = rlab_vocab_size(&ds->users), ni = rlab_vocab_size(&ds->items);
    int64_t nx = (int64_t)ds->inter.n;
    if (rlab_ctx_add_dataset(ctx, ds))
        return rlab_ctx_err(ctx)->code;
    rlab_ctx_printf(ctx, "world '%s': %d users, %d items, %lld interactions, %d genres", name,
                    (int)nu, (int)ni, (long long)nx, (int)c.n_genres);
    rlab_ctx_result_int(ctx, "users", nu);
    rlab_ctx_result_int(ctx, "items", ni);
    return RLAB_OK;
}

/* ---- declarations ------------------------------------------------------------------------------
 */

/* Bounds of the size-like arguments: what a 24 GB machine runs. Per agent a simulation
 * keeps about 2 KB plus one bit per item (the shown-items bitsets; sim_new refuses
 * agents x items beyond SIM_MAX_SHOWN bytes), so 1M agents over a small catalogue fit; a
 * round costs O(agents), a rewire O(agents^2). */
#define SIM_MAX_AGENTS 1000000  /* agents, max_active, agent indices */
#define SIM_MAX_ROUNDS 1000000  /* rounds of one step / resume / inject, round periods */
#define SIM_MAX_FOLLOW 1000     /* follows per agent (rewire k, rewire_k, world follow) */
#define SIM_MAX_EPOCHS 100000   /* retrain_epochs */
#define SIM_MAX_CKFULL 10000    /* checkpoint_full: deltas read to restore a round */
#define SIM_MAX_USERS 1000000   /* simulator.world users */
#define SIM_MAX_ITEMS 200000    /* simulator.world items */
#define SIM_MAX_INTER 100000000 /* simulator.world interactions (~2 GB as a dataset) */

#define SIM_ARG                                                                                    \
    {                                                                                              \
        .name = "sim", .type = RLAB_ARG_INT, .def = "0", .min = 0,                                 \
        .flags = RLAB_ARGF_MIN | RLAB_ARGF_INT64, .help = "simulation id (0: the current one)"     \
    }
/* The OpenAI-compatible backend's arguments, shared by simulator.new and simulator.fidelity */
#define SIM_OPENAI_ARGS                                                                            \
    {.name = "llm_url",                                                                            \
     .type = RLAB_ARG_STRING,                                                                      \
     .help = "openai: base URL (default $RECLAB_LLM_BASE_URL)"},                                   \
        {.name = "llm_model",                                                                      \
         .type = RLAB_ARG_STRING,                                                                  \
         .help = "openai: model (default $RECLAB_LLM_MODEL)"},                                     \
        {.name = "in_flight",                                                                      \
         .type = RLAB_ARG_INT,                                                                     \
         .def = "16",                                                                              \
         .min = 1,                                                                                 \
         .max = 256,                                                                               \
         .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,                                                   \
         .help = "openai: requests in flight"},                                                    \
        {.name = "llm_timeout",                                                                    \
         .type = RLAB_ARG_FLOAT,                                                                   \
         .def = "60",                                                                              \
         .min = 0.1,                                                                               \
         .flags = RLAB_ARGF_MIN,                                                                   \
         .help = "openai: seconds per attempt"},                                                   \
        {.name = "llm_retries",                                                                    \
         .type = RLAB_ARG_INT,                                                                     \
         .def = "1",                                                                               \
         .min = 0,                                                                                 \
         .max = 5,                                                                                 \
         .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,                                                   \
         .help = "re-asks after an unparsable reply"},

#define MAX_FALLBACK_ARG(def_, what)                                                               \
    {                                                                                              \
        .name = "max_fallback", .type = RLAB_ARG_FLOAT, .def = def_, .min = 0, .max = 1,           \
        .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX, .help = what                                       \
    }
#define AGENT_ARG(what)                                                                            \
    {                                                                                              \
        .name = "agent", .type = RLAB_ARG_INT, .min = 0, .max = SIM_MAX_AGENTS - 1,                \
        .flags = RLAB_ARGF_REQUIRED | RLAB_ARGF_MIN | RLAB_ARGF_MAX, .help = what                  \
    }

static const rlab_arg new_args[] = {
    {.name = "data",
     .type = RLAB_ARG_DATASET,
     .def = "demo",
     .help = "dataset of the agents and items"},
    {.name = "agents",
     .type = RLAB_ARG_INT,
     .def = "200",
     .min = 0,
     .max = SIM_MAX_AGENTS,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
     .help = "number of agents: the first n users (0 = all)"},
    {.name = "model",
     .type = RLAB_ARG_STRING,
     .def = "random",
     .help = "recommender: a registered model's name, or random"},
    {.name = "seed",
     .type = RLAB_ARG_INT,
     .def = "42",
     .min = 0,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_INT64,
     .help = "random seed (up to 2^63-1)"},
    {.name = "activity",
     .type = RLAB_ARG_CHOICE,
     .choices = activity_choices,
     .def = "random",
     .help =
         "activity draw: random (p), pareto (heavy-tailed per agent), marginal (grows while idle)"},
    {.name = "active_prob",
     .type = RLAB_ARG_FLOAT,
     .def = "1",
     .min = 0,
     .max = 1,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
     .help = "activity probability (pareto: shape/10)"},
    {.name = "max_active",
     .type = RLAB_ARG_INT,
     .def = "0",
     .min = 0,
     .max = SIM_MAX_AGENTS,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
     .help = "cap on active agents per round (0 = none)"},
    {.name = "interval",
     .type = RLAB_ARG_FLOAT,
     .def = "5",
     .min = 0.01,
     .flags = RLAB_ARGF_MIN,
     .help = "virtual hours per round"},
    {.name = "watch_hours",
     .type = RLAB_ARG_FLOAT,
     .def = "2",
     .min = 0,
     .flags = RLAB_ARGF_MIN,
     .help = "hours an agent is busy watching"},
    {.name = "page",
     .type = RLAB_ARG_INT,
     .def = "5",
     .min = 1,
     .max = SIM_MAX_PAGE,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
     .help = "items per page"},
    {.name = "steps",
     .type = RLAB_ARG_INT,
     .def = "5",
     .min = 1,
     .max = SIM_MAX_STEPS,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
     .help = "decisions per recommender visit"},
    {.name = "retrain_every",
     .type = RLAB_ARG_INT,
     .def = "0",
     .min = 0,
     .max = SIM_MAX_ROUNDS,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
     .help = "retrain the recommender on the simulated watches every n rounds (0 = never)"},
    {.name = "retrain_epochs",
     .type = RLAB_ARG_INT,
     .def = "10",
     .min = 0,
     .max = SIM_MAX_EPOCHS,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
     .help = "epochs passed to the owning plugin's train command (0 = its default)"},
    {.name = "checkpoint_every",
     .type = RLAB_ARG_INT,
     .def = "1",
     .min = 0,
     .max = SIM_MAX_ROUNDS,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
     .help = "checkpoint the state every n rounds (0 = never; branching needs checkpoints)"},
    {.name = "checkpoint_full",
     .type = RLAB_ARG_INT,
     .def = "25",
     .min = 1,
     .max = SIM_MAX_CKFULL,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
     .help = "a full checkpoint image every n checkpoints, deltas between (restoring a round "
             "reads its last full image and the deltas after it)"},
    {.name = "profiles",
     .type = RLAB_ARG_PATH,
     .help = "CSV of profiles: id,name,age,gender,traits,status,interests,feature"},
    {.name = "rewire_k",
     .type = RLAB_ARG_INT,
     .def = "8",
     .min = 1,
     .max = SIM_MAX_FOLLOW,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
     .help = "follows per agent when the dataset has no social graph"},
    {.name = "swap_k",
     .type = RLAB_ARG_INT,
     .def = "0",
     .min = 0,
     .max = SIM_MAX_PAGE,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
     .help = "diversity intervention: items swapped between symmetric visitors' pages each "
             "round (0 = none)"},
    {.name = "partition",
     .type = RLAB_ARG_CHOICE,
     .choices = partition_choices,
     .def = "auto",
     .help = "MPI: agents partitioned over the ranks (on; auto = under mpirun -np > 1 unless "
             "swap_k; social effects on others then arrive at the round's end, one process "
             "with on gives the same events) or replicated with the decisions shared out (off)"},
    {.name = "threads",
     .type = RLAB_ARG_INT,
     .def = "0",
     .min = 0,
     .max = SIM_MAX_THREADS,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
     .help = "threads for the round's per-agent work (0 = the machine's cores; the results do "
             "not depend on it)"},
    {.name = "backend",
     .type = RLAB_ARG_CHOICE,
     .choices = backend_choices,
     .def = "offline",
     .help = "who decides: offline policies, or an OpenAI-compatible server"},
    SIM_OPENAI_ARGS MAX_FALLBACK_ARG(
        "0.5", "openai: a round in which more than this share of the decisions fell "
               "back to the offline policy (server unreachable, errors, unparsable "
               "replies) fails the step; 1 = never"),
    {0}};

static const rlab_arg step_args[] = {{.name = "rounds",
                                      .type = RLAB_ARG_INT,
                                      .def = "1",
                                      .min = 1,
                                      .max = SIM_MAX_ROUNDS,
                                      .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
                                      .help = "rounds to run"},
                                     SIM_ARG,
                                     MAX_FALLBACK_ARG(NULL, "openai: max_fallback for this step "
                                                            "(default: the simulation's)"),
                                     {0}};
static const rlab_arg resume_args[] = {{.name = "rounds",
                                        .type = RLAB_ARG_INT,
                                        .def = "0",
                                        .min = 0,
                                        .max = SIM_MAX_ROUNDS,
                                        .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
                                        .help = "rounds to run (0: what the paused step had left)"},
                                       SIM_ARG,
                                       MAX_FALLBACK_ARG(NULL, "openai: max_fallback for these "
                                                              "rounds (default: the simulation's)"),
                                       {0}};
static const rlab_arg sim_only_args[] = {SIM_ARG, {0}};
static const rlab_arg interview_args[] = {
    AGENT_ARG("agent index"),
    {.name = "question",
     .type = RLAB_ARG_STRING,
     .def = "How do you feel about the movies you watched recently?",
     .help = "free question"},
    SIM_ARG,
    {0}};
static const rlab_arg edit_args[] = {
    AGENT_ARG("agent index"),
    {.name = "field",
     .type = RLAB_ARG_STRING,
     .flags = RLAB_ARGF_REQUIRED,
     .help = "name, age, gender, occupation, traits, status, interests or feature"},
    {.name = "value",
     .type = RLAB_ARG_STRING,
     .flags = RLAB_ARGF_REQUIRED,
     .help = "new value (interests: genres; feature: archetypes; separated by ;)"},
    SIM_ARG,
    {0}};
static const rlab_arg rewire_args[] = {
    {.name = "mode",
     .type = RLAB_ARG_CHOICE,
     .choices = rewire_choices,
     .def = "homophily",
     .help = "homophily: follow similar tastes; mixing: follow different tastes"},
    {.name = "k",
     .type = RLAB_ARG_INT,
     .def = "8",
     .min = 1,
     .max = SIM_MAX_FOLLOW,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
     .help = "follows per agent"},
    SIM_ARG,
    {0}};
static const rlab_arg inject_args[] = {{.name = "items",
                                        .type = RLAB_ARG_STRING,
                                        .flags = RLAB_ARGF_REQUIRED,
                                        .help = "comma-separated item ids (or exact titles)"},
                                       {.name = "rounds",
                                        .type = RLAB_ARG_INT,
                                        .def = "1",
                                        .min = 1,
                                        .max = SIM_MAX_ROUNDS,
                                        .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
                                        .help = "rounds during which they lead every page"},
                                       SIM_ARG,
                                       {0}};
static const rlab_arg post_args[] = {AGENT_ARG("posting agent"),
                                     {.name = "item",
                                      .type = RLAB_ARG_STRING,
                                      .flags = RLAB_ARGF_REQUIRED,
                                      .help = "item id or title"},
                                     SIM_ARG,
                                     {0}};
static const rlab_arg branch_args[] = {
    {.name = "round",
     .type = RLAB_ARG_INT,
     .flags = RLAB_ARGF_REQUIRED | RLAB_ARGF_MIN | RLAB_ARGF_INT64,
     .min = 0,
     .help = "checkpointed round to restore"},
    {.name = "model",
     .type = RLAB_ARG_STRING,
     .help = "recommender of the branch (default: the parent's)"},
    {.name = "seed",
     .type = RLAB_ARG_INT,
     .min = 0,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_INT64,
     .help = "new seed (default: the parent's; up to 2^63-1)"},
    SIM_ARG,
    {0}};
static const rlab_arg agent_args[] = {AGENT_ARG("agent index"), SIM_ARG, {0}};
static const rlab_arg world_args[] = {{.name = "name",
                                       .type = RLAB_ARG_DATASET,
                                       .flags = RLAB_ARGF_NEW,
                                       .def = "world",
                                       .help = "dataset name"},
                                      {.name = "users",
                                       .type = RLAB_ARG_INT,
                                       .def = "300",
                                       .min = 2,
                                       .max = SIM_MAX_USERS,
                                       .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
                                       .help = "users"},
                                      {.name = "items",
                                       .type = RLAB_ARG_INT,
                                       .def = "200",
                                       .min = 4,
                                       .max = SIM_MAX_ITEMS,
                                       .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
                                       .help = "items"},
                                      {.name = "genres",
                                       .type = RLAB_ARG_INT,
                                       .def = "10",
                                       .min = 1,
                                       .max = 255,
                                       .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
                                       .help = "genres"},
                                      {.name = "interactions",
                                       .type = RLAB_ARG_INT,
                                       .def = "9000",
                                       .min = 1,
                                       .max = SIM_MAX_INTER,
                                       .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
                                       .help = "target interactions (at most half of users x "
                                               "items)"},
                                      {.name = "follow",
                                       .type = RLAB_ARG_FLOAT,
                                       .def = "8",
                                       .min = 0,
                                       .max = SIM_MAX_FOLLOW,
                                       .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
                                       .help = "mean follows"},
                                      {.name = "homophily",
                                       .type = RLAB_ARG_FLOAT,
                                       .def = "6",
                                       .min = 0,
                                       .flags = RLAB_ARGF_MIN,
                                       .help = "taste homophily of the follow graph"},
                                      {.name = "seed",
                                       .type = RLAB_ARG_INT,
                                       .def = "1",
                                       .min = 0,
                                       .flags = RLAB_ARGF_MIN | RLAB_ARGF_INT64,
                                       .help = "seed (up to 2^63-1)"},
                                      {0}};

static const rlab_arg play_args[] = {{.name = "agent",
                                      .type = RLAB_ARG_INT,
                                      .def = "0",
                                      .min = 0,
                                      .max = SIM_MAX_AGENTS - 1,
                                      .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
                                      .help = "the agent you take over"},
                                     {.name = "stop",
                                      .type = RLAB_ARG_INT,
                                      .def = "0",
                                      .min = 0,
                                      .max = 1,
                                      .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
                                      .help = "1: hand the agent back to the simulation"},
                                     SIM_ARG,
                                     {0}};
#define ROUNDS_AROUND_ARG                                                                          \
    {                                                                                              \
        .name = "rounds", .type = RLAB_ARG_INT, .def = "1", .min = 0, .max = 100,                  \
        .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,                                                    \
        .help = "rounds the others play when your visit or chat ends"                              \
    }
static const rlab_arg act_args[] = {
    {.name = "do",
     .type = RLAB_ARG_CHOICE,
     .choices = act_choices,
     .flags = RLAB_ARGF_REQUIRED,
     .help = "buy (k), next page, search (title), leave"},
    {.name = "k",
     .type = RLAB_ARG_INT,
     .def = "1",
     .min = 1,
     .max = SIM_MAX_PAGE,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
     .help = "buy: the item's number on the page"},
    {.name = "title", .type = RLAB_ARG_STRING, .help = "search: a movie title"},
    {.name = "feeling",
     .type = RLAB_ARG_STRING,
     .help = "buy: your feeling about it (default: the "
             "agent's template)"},
    ROUNDS_AROUND_ARG,
    SIM_ARG,
    {0}};
static const rlab_arg chat_args[] = {{.name = "with",
                                      .type = RLAB_ARG_INT,
                                      .min = 0,
                                      .max = SIM_MAX_AGENTS - 1,
                                      .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
                                      .help = "the agent to chat with (default: the current "
                                              "partner)"},
                                     {.name = "text",
                                      .type = RLAB_ARG_STRING,
                                      .flags = RLAB_ARGF_REQUIRED,
                                      .help = "what you say (\"goodbye\" ends the chat)"},
                                     ROUNDS_AROUND_ARG,
                                     SIM_ARG,
                                     {0}};

static const rlab_arg fidelity_args[] = {
    {.name = "data",
     .type = RLAB_ARG_DATASET,
     .flags = RLAB_ARGF_REQUIRED,
     .help = "real users' dataset (MovieLens with u.user, Beauty, ...)"},
    {.name = "agents",
     .type = RLAB_ARG_INT,
     .def = "0",
     .min = 0,
     .max = SIM_MAX_AGENTS,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
     .help = "agents: the first n users (0 = all)"},
    {.name = "cut",
     .type = RLAB_ARG_FLOAT,
     .def = "0.8",
     .min = 0.05,
     .max = 0.95,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
     .help = "share of each user's history (by time) the agent knows"},
    {.name = "min_hist",
     .type = RLAB_ARG_INT,
     .def = "10",
     .min = 2,
     .flags = RLAB_ARGF_MIN,
     .help = "users with fewer interactions are left out"},
    {.name = "fit",
     .type = RLAB_ARG_FLOAT,
     .def = "0.5",
     .min = 0.05,
     .max = 0.95,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
     .help = "share of users the offline policy is fitted on (the rest are reported)"},
    {.name = "pos",
     .type = RLAB_ARG_INT,
     .def = "10",
     .min = 1,
     .max = 50,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
     .help = "held-out items per user shown in (a) and rated in (b)"},
    {.name = "neg",
     .type = RLAB_ARG_INT,
     .def = "1",
     .min = 0,
     .max = 9,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
     .help = "not-chosen items per held-out item in (a)"},
    {.name = "page",
     .type = RLAB_ARG_INT,
     .def = "5",
     .min = 1,
     .max = SIM_MAX_PAGE,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
     .help = "page size in (c)"},
    {.name = "rec",
     .type = RLAB_ARG_STRING,
     .def = "pop",
     .help = "(c) recommender: pop (popularity of the known histories), random, "
             "train:<kind> (e.g. train:bprmf: trained here on the known histories only, "
             "dataset <data>.cut), or a model trained on them"},
    {.name = "seed",
     .type = RLAB_ARG_INT,
     .def = "1",
     .min = 0,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_INT64,
     .help = "seed of the user split, the negatives and every draw"},
    {.name = "backend",
     .type = RLAB_ARG_CHOICE,
     .choices = backend_choices,
     .def = "offline",
     .help = "openai: also measure an OpenAI-compatible server (an extra row)"},
    SIM_OPENAI_ARGS{0}};

static const rlab_cmd sim_cmds[] = {
    {.name = "new",
     .args = new_args,
     .run = new_run,
     .help = "Create a RecAgent simulation (becomes the current one).\n"
             "Agents get profiles from the world's ground truth (synthetic datasets), from "
             "their rated items (MovieLens u.user + ratings) or from a CSV; the recommender is "
             "any registered model or random."},
    {.name = "step",
     .args = step_args,
     .flags = RLAB_CMD_JOB,
     .run = step_run,
     .help = "Run rounds of the simulation (activity, recommender visits, chats, posts, memory).\n"
             "Every event goes to the store; per-round statistics to simulator_stats."},
    {.name = "pause",
     .args = sim_only_args,
     .run = pause_run,
     .help = "Stop a running step after its current round."},
    {.name = "resume",
     .args = resume_args,
     .flags = RLAB_CMD_JOB,
     .run = resume_run,
     .help = "Run the rounds a paused step had left (or rounds=n)."},
    {.name = "interview",
     .args = interview_args,
     .run = interview_run,
     .help = "Ask an agent a free question; it answers from its memories."},
    {.name = "edit", .args = edit_args, .run = edit_run, .help = "Edit an agent's profile."},
    {.name = "rewire",
     .args = rewire_args,
     .run = rewire_run,
     .help = "Rebuild the social graph with homophily (similar tastes) or mixing."},
    {.name = "inject",
     .args = inject_args,
     .run = inject_run,
     .help = "Put items first on every recommended page for some rounds."},
    {.name = "post",
     .args = post_args,
     .run = post_run,
     .help = "Make an agent post about an item to its followers now."},
    {.name = "branch",
     .args = branch_args,
     .run = branch_run,
     .help = "Restore a checkpointed round into a new simulation (optionally another model)."},
    {.name = "play",
     .args = play_args,
     .run = play_run,
     .help = "Take over an agent (role play): see its recommendation page; then simulator.act "
             "and simulator.chat decide for it while the other agents go on."},
    {.name = "act",
     .args = act_args,
     .run = act_run,
     .help = "The played agent's choice on its page: do=buy k=N, do=next, do=search "
             "title=..., do=leave (a visit's end lets the others play `rounds` rounds)."},
    {.name = "chat",
     .args = chat_args,
     .run = chat_run,
     .help = "The played agent says something to another agent, who answers (offline or the "
             "language model) until one says goodbye."},
    {.name = "fidelity",
     .args = fidelity_args,
     .flags = RLAB_CMD_JOB,
     .run = fidelity_run,
     .help = "Behavioural fidelity against real users: agents built from the first part of "
             "each history, measured on what the users did next.\n"
             "(a) discrimination of chosen vs not-chosen items (accuracy, precision, recall, "
             "F1), (b) 1-5 rating alignment (MAE, RMSE, Spearman, distributions), (c) next-item "
             "hit rate on a recommender's page; for random agents, the offline policy, the "
             "offline policy fitted on part of the users, and an openai backend."},
    {.name = "stats",
     .args = sim_only_args,
     .flags = RLAB_CMD_READONLY,
     .run = stats_run,
     .help = "Per-round statistics of a simulation."},
    {.name = "agent",
     .args = agent_args,
     .flags = RLAB_CMD_READONLY,
     .run = agent_run,
     .help = "An agent's card: profile, memories, watched and heard-of titles."},
    {.name = "list",
     .flags = RLAB_CMD_READONLY,
     .run = list_run,
     .help = "Simulations of the session."},
    {.name = "world",
     .args = world_args,
     .run = world_run,
     .help = "Generate a synthetic world (dataset + ground truth kept for simulations)."},
    {0}};

static const rlab_view_kind sim_views[] = {
    /* one readable line per event of the newest simulation (idle agents left out): the
       newest 200, oldest first (the ui draws the last rows at the bottom) */
    {.name = "feed",
     .title = "Simulation feed",
     .kind = "feed",
     .source = "SELECT 'r' || round AS round, 't=' || printf('%g', vtime) AS time, CASE kind "
               "WHEN 'watch' THEN 'agent ' || agent || ' watched ''' || json_extract(payload, "
               "'$.title') || ''' (rank ' || json_extract(payload, '$.rank') || "
               "iif(json_extract(payload, '$.liked'), ', liked', '') || ') \u2014 ' || "
               "ifnull(json_extract(payload, '$.feeling'), '') "
               "WHEN 'visit' THEN 'agent ' || agent || ' visited: pages ' || "
               "json_array_length(payload, '$.steps') || ifnull(', searched ' || nullif((SELECT "
               "count(*) FROM json_each(payload, '$.steps') WHERE json_extract(value, '$.do') = "
               "'search'), 0), '') || ', watched ' || (json_extract(payload, '$.watched') IS NOT "
               "NULL) "
               "WHEN 'chat' THEN 'agent ' || agent || ' chatted with agent ' || "
               "json_extract(payload, '$.with') || ' for ' || printf('%g', json_extract(payload, "
               "'$.hours')) || ' h: ' || ifnull(json_extract(payload, '$.text'), '') "
               "WHEN 'chat_blocked' THEN 'agent ' || agent || ' wanted to chat with agent ' || "
               "json_extract(payload, '$.with') || ' (busy)' "
               "WHEN 'post' THEN 'agent ' || agent || ' posted about ''' || json_extract(payload, "
               "'$.title') || ''' to ' || json_extract(payload, '$.followers') || "
               "iif(json_extract(payload, '$.followers') = 1, ' follower: ', ' followers: ') || "
               "ifnull(json_extract(payload, '$.text'), '') "
               "WHEN 'interview' THEN 'agent ' || agent || ' was asked \"' || "
               "json_extract(payload, '$.question') || '\": ' || json_extract(payload, "
               "'$.answer') "
               "WHEN 'edit' THEN 'agent ' || agent || ' edited: ' || json_extract(payload, "
               "'$.field') || ' = ' || json_extract(payload, '$.value') "
               "WHEN 'rewire' THEN 'social graph rewired (' || json_extract(payload, '$.mode') || "
               "', ' || json_extract(payload, '$.k') || ' follows each): ' || "
               "json_extract(payload, '$.edges') || ' edges' "
               "WHEN 'inject' THEN 'items ' || json_extract(payload, '$.items') || ' first on "
               "every page for ' || json_extract(payload, '$.rounds') || ' rounds' "
               "WHEN 'retrain' THEN 'recommender ' || json_extract(payload, '$.model') || ' "
               "retrained on ' || json_extract(payload, '$.interactions') || ' interactions' "
               "ELSE ifnull('agent ' || nullif(agent, -1) || ' ', '') || kind || ' ' || "
               "ifnull(payload, '') END AS event "
               "FROM (SELECT * FROM events WHERE run_id = (SELECT max(sim) FROM simulator_sims) "
               "AND kind <> 'nothing' ORDER BY seq DESC LIMIT 200) "
               "ORDER BY seq"},
    {.name = "stats",
     .title = "Round statistics",
     .kind = "table",
     .source = "SELECT round, active, visits, watches, chats, posts, ctr, coverage, "
               "exposure_entropy AS entropy, density, satisfaction, "
               "(SELECT group_concat(json_extract(value, '$[0]') || ':' || json_extract(value, "
               "'$[1]'), ' ') FROM json_each(top_mentioned)) AS top_mentioned "
               "FROM simulator_stats WHERE sim = (SELECT max(sim) FROM simulator_sims) ORDER BY "
               "round"},
    /* `view agent 12` runs `simulator.agent 12` and draws its result as a card */
    {.name = "agent", .title = "Agent card", .kind = "card", .source = "simulator.agent"},
    {0}};

RLAB_PLUGIN(simulator)
{
    RLAB_PLUGIN_INIT(out);
    out->name = "simulator";
    out->version = "1.0.0";
    out->summary = "RecAgent user simulation: agents with memory browse, watch, chat and post";
    out->commands = sim_cmds;
    out->schema = sim_schema;
    out->views = sim_views;
    out->open = sim_open;
    out->close = sim_close;
    return RLAB_OK;
}
