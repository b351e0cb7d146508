/*
 * bench/simulator: RecAgent simulation throughput, JSON lines.
 *
 *   offline  the demo world (1000 users, 600 items), 1000 agents, 100 rounds, BPR-MF from
 *            plugins/baselines (trained here, 20 epochs; random if the plugin is missing),
 *            every event and per-round statistics stored in a fresh SQLite store; measured
 *            with a checkpoint every round and without checkpoints.
 *            agent_steps = agents x rounds (every agent is considered each round; with the
 *            default activity p = 1 almost all act); active_actions = agents that acted.
 *   openai   the loopback server of tests/simulator answering after 50 or 500 ms, 16 or 64
 *            requests in flight (BENCH_SIM_LLM, default
 *            "16:50,64:50,16:500,64:500,64:50:mixed,64:50:mixed+step"), 4 x in_flight
 *            agents; requests/s against the ideal in_flight / delay (target: 80% of it),
 *            agent-steps/s, and the server's peak of requests handled at once (over the
 *            server's life: the largest in_flight so far). Options after a third colon:
 *            "mixed" (visits of several steps: the server answers a page with BUY, NEXT or
 *            LEAVE), "step" (the round's decisions in step-by-step batches,
 *            cfg.llm_step_batches, the path before pipelining: the A/B in one run).
 *   scale    BENCH_SIM_SCALE agents (default 100000; 0 skips) on a generated world, a
 *            checkpoint every 10 rounds and every round (scale_run below): a minute or two,
 *            several on a loaded machine. BENCH_SIM_SCALE_ONLY=1 runs only this part.
 *            The figures that compare with the targets (200k agent-steps/s with a
 *            checkpoint every 10 rounds, 150k with one every round) are the "_after_new"
 *            ones: set up as `simulator.new` does (its round-0 checkpoint, a full image,
 *            written at set-up and reported as start-up), then 10 timed rounds whose first
 *            checkpoint is a delta against it, which is what a user of simulator.new then
 *            simulator.step gets. "_steady_30" times 30 rounds of the same (3 checkpoints,
 *            each one's copy into the database file beside the next rounds). "_first_full"
 *            are the figures printed before this split (no round-0 image: the step's first
 *            checkpoint is a full image), kept under their own name.
 *            Besides agent-steps per wall and per CPU second: per CPU second of the main
 *            thread (the critical path: about the wall rate of a machine with a free core
 *            per thread, and hardly changed by other tenants), and the store's bytes per
 *            agent-step.
 *
 * Every offline line's baseline records the machine's 1-minute load average when it was
 * measured (a shared 2-core machine: agent-steps per CPU-second is the figure that does not
 * depend on the other tenants). Checkpoints: by default a full image every 25 checkpoints and
 * deltas between (sim.h); the bytes stored are reported.
 *
 * Usage: bench_simulator [rounds] [agents] [offline]   ("offline": skip the openai part)
 */
#define SIM_INTERNAL
#include "benchutil.h"
#include "sim.h"

#include "fake_rec_llm.h"
#include "host/host.h"
#include "llm/llm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct acc {
    long active, watches, events, fallbacks;
} acc;

static void on_round(void *ud, int64_t done, int64_t total, const sim_stats *st)
{
    (void)done, (void)total;
    acc *a = ud;
    a->active += st->active;
    a->watches += st->watches;
    a->fallbacks += st->llm_fallbacks;
}

static void line(const char *metric, double v, const char *unit, const char *baseline)
{
    printf("{\"bench\": \"simulator\", \"metric\": \"%s\", \"value\": %.6g, \"unit\": \"%s\", "
           "\"baseline\": %s}\n",
           metric, v, unit, baseline);
    fflush(stdout);
}

/* The openai backend against the loopback server answering after delay_ms: agents =
 * 4 x in_flight (enough independent decisions to fill the slots), rounds so that the run
 * lasts a few seconds. Requests/s against the ideal in_flight / delay. */
static void openai_run(fake_rec_llm *srv, rlab_dataset *ds, rlab_world *w, rlab_model *bpr,
                       int inflight, int delay, const char *opts)
{
    rlab_err err = {0};
    char url[64], model[48];
    int mixed = strstr(opts, "mixed") != NULL, step = strstr(opts, "step") != NULL;
    snprintf(url, sizeof url, "http://127.0.0.1:%d", fake_rec_llm_port(srv));
    snprintf(model, sizeof model, "delay:%d%s", delay, mixed ? ",mixed" : "");
    rlab_llm_config lc = {.backend = "openai",
                          .base_url = url,
                          .model = model,
                          .api_key = "",
                          .timeout = 30,
                          .max_in_flight = inflight};
    rlab_llm *llm = rlab_llm_new(&lc, &err);
    sim_config c;
    sim_config_default(&c);
    c.seed = 2;
    c.n_agents = 4 * inflight;
    c.use_llm = 1;
    c.checkpoint_every = 0;
    c.llm_step_batches = step;
    int nr = delay >= 200 ? 1 : 3;
    sim *s = NULL;
    if (llm && sim_new(&c, ds, w, bpr, NULL, &s, &err) == RLAB_OK &&
        sim_set_llm(s, llm, &err) == RLAB_OK) {
        acc a = {0};
        long r0 = fake_rec_llm_requests(srv);
        double t0 = rlab_now(), c0 = rlab_bench_cpu_seconds();
        int rc = sim_step(s, nr, on_round, &a, NULL, NULL, NULL, &err);
        double dt = rlab_now() - t0, dcpu = rlab_bench_cpu_seconds() - c0;
        long req = fake_rec_llm_requests(srv) - r0;
        double ideal = inflight / (delay / 1000.0 > 1e-6 ? delay / 1000.0 : 1e-6);
        char base[320];
        snprintf(base, sizeof base,
                 "{\"target\": 0.8, \"ideal\": %.0f, \"agents\": %d, \"rounds\": %d, "
                 "\"in_flight\": %d, \"delay_ms\": %d, \"requests\": %ld, \"fallbacks\": %ld, "
                 "\"cpu_s\": %.3f, \"wall_s\": %.3f, \"loadavg\": %.2f}",
                 ideal, c.n_agents, nr, inflight, delay, req, a.fallbacks, dcpu, dt,
                 rlab_bench_load1());
        char m[128], sfx[48];
        if (rc)
            fprintf(stderr, "openai: %s\n", err.msg);
        snprintf(sfx, sizeof sfx, "%d_%dms%s%s", inflight, delay, mixed ? "_mixed" : "",
                 step ? "_step_batches" : "");
        snprintf(m, sizeof m, "openai_requests_per_s_%s", sfx);
        line(m, req / dt, "requests/s", base);
        snprintf(m, sizeof m, "openai_fraction_of_ideal_%s", sfx);
        line(m, req / dt / ideal, "ratio", base);
        snprintf(m, sizeof m, "openai_agent_steps_per_s_%s", sfx);
        line(m, (double)c.n_agents * nr / dt, "agent-steps/s", base);
        snprintf(m, sizeof m, "openai_peak_in_flight_%s", sfx);
        line(m, fake_rec_llm_peak(srv), "requests", base);
    } else {
        fprintf(stderr, "openai: %s\n", err.msg);
    }
    sim_free(s);
    rlab_llm_free(llm);
}

/* Resident set size now, in bytes (/proc/self/statm), 0 when unknown. */
static double rss_bytes(void)
{
    long pages = 0, res = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &res) != 2)
            res = 0;
        fclose(f);
    }
    return (double)res * (double)sysconf(_SC_PAGESIZE);
}

/* CPU seconds of the calling thread (the simulation's main thread: the rounds' sequential
 * parts and its share of the parallel ones). */
static double thread_cpu_seconds(void)
{
    struct timespec t;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t) != 0)
        return 0.0;
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* One timed configuration of the scale run. */
typedef struct scale_cfg {
    const char *sfx; /* the metrics' suffix */
    int every;       /* checkpoint_every */
    int rounds;      /* rounds in the timed sim_step */
    int round0;      /* the round-0 checkpoint written at set-up, as simulator.new does; 2: and
                        its copy into the database file awaited before the step */
    int target;      /* agent-steps/s */
    const char *note;
    int extra; /* only when named in BENCH_SIM_SCALE_CFG */
} scale_cfg;

/* One configuration of scale_run on the world w / ds: a store in dir, n agents, seed 3. */
static int scale_one(rlab_world *w, rlab_dataset *ds, const char *dir, int v, int n,
                     const scale_cfg *sc, double world_s, double world_cpu_s)
{
    rlab_err err = {0};
    char path[256];
    snprintf(path, sizeof path, "%s/scale%d.db", dir, v);
    rlab_db *db = rlab_db_open(path, 0, &err);
    if (!db || rlab_db_plugin_migrate(db, "simulator", sim_schema, 1, &err)) {
        fprintf(stderr, "store: %s\n", err.msg);
        rlab_db_close(db);
        return -1;
    }
    rlab_db_run_info ri = {.plugin = "simulator", .name = "scale"};
    int64_t run = 0;
    rlab_db_run_begin(db, &ri, &run, &err);
    sim_config c;
    sim_config_default(&c);
    c.seed = 3;
    c.n_agents = n;
    c.checkpoint_every = sc->every;
    sim *s = NULL;
    double m0 = rss_bytes();
    double t0 = rlab_now();
    if (sim_new(&c, ds, w, NULL, NULL, &s, &err)) {
        fprintf(stderr, "scale sim: %s\n", err.msg);
        rlab_db_close(db);
        return -1;
    }
    double t_setup = rlab_now() - t0;
    sim_set_id(s, run);
    sim_attach_store(s, db, run);
    /* simulator.new writes the round-0 checkpoint (a full image) when it creates a
     * simulation in a store; the step's first checkpoint is then a delta against it. Its copy
     * into the database file runs on the store's thread, beside the step that follows (as
     * when a user steps right after simulator.new). */
    double t_round0 = 0.0;
    if (sc->round0) {
        t0 = rlab_now();
        if (sim_checkpoint(s, &err)) {
            fprintf(stderr, "scale round-0 checkpoint: %s\n", err.msg);
            sim_free(s);
            rlab_db_close(db);
            return -1;
        }
        t_round0 = rlab_now() - t0;
        rlab_err werr = {0};
        if (sc->round0 == 2 && rlab_db_checkpoint_wait(db, &werr))
            fprintf(stderr, "scale round-0 store copy: %s\n", werr.msg);
    }
    acc a = {0};
    t0 = rlab_now();
    double c0 = rlab_bench_cpu_seconds();
    double m0c = thread_cpu_seconds();
    int rc = sim_step(s, sc->rounds, on_round, &a, NULL, NULL, NULL, &err);
    double dt = rlab_now() - t0, dcpu = rlab_bench_cpu_seconds() - c0;
    double dmain = thread_cpu_seconds() - m0c;
    /* a run that ends on a checkpoint leaves the store's copy of it into the database file
     * running on its own thread (rlab_db_checkpoint_background); the wait for it is counted
     * apart and in the .._incl_store_copy figure */
    const double tw = rlab_now();
    rlab_err werr = {0};
    if (rlab_db_checkpoint_wait(db, &werr))
        fprintf(stderr, "scale store copy: %s\n", werr.msg);
    const double dwait = rlab_now() - tw;
    double mem = rss_bytes() - m0;
    /* the step's last checkpoint on the main thread (sim_ck_stats; absent from older builds
     * of the simulator, which this harness also compiles against) */
    char last[200] = "null";
#ifdef SIM_HAVE_CK_STATS
    snprintf(last, sizeof last,
             "{\"round\": %lld, \"full\": %d, \"bytes\": %zu, \"pass_s\": %.3f, "
             "\"encode_s\": %.3f, \"row_s\": %.3f}",
             (long long)s->ck_last.round, s->ck_last.full, s->ck_last.bytes, s->ck_last.pass_s,
             s->ck_last.encode_s, s->ck_last.row_s);
#endif
    sim_free(s);
    rlab_db_value p[1] = {{.type = RLAB_DB_INT, .i = run}};
    rlab_db_result *r =
        rlab_db_query_table(db,
                            "SELECT count(*), coalesce(sum(bytes), 0), "
                            "coalesce(sum(substr(state, 1, 8) = CAST('RLSIMDL2' AS BLOB)), 0) "
                            "FROM simulator_checkpoints WHERE sim = ?1",
                            p, 1, 0, &err);
    long ck_n = r ? (long)rlab_db_result_cell(r, 0, 0)->i : -1;
    double ck_bytes = r ? (double)rlab_db_result_cell(r, 0, 1)->i : -1;
    long ck_delta = r ? (long)rlab_db_result_cell(r, 0, 2)->i : -1;
    rlab_db_result_free(r);
    rlab_db_run_end(db, run, RLAB_RUN_DONE, NULL, &err);
    /* closing the last connection copies what is left of the log into the database file */
    const double tc = rlab_now();
    rlab_db_close(db);
    const double dclose = rlab_now() - tc;
    if (rc) {
        fprintf(stderr, "scale step: %s\n", err.msg);
        return -1;
    }
    struct stat stt;
    double bytes = stat(path, &stt) == 0 ? (double)stt.st_size : -1;
    double steps = (double)n * sc->rounds;
    char base[900], m[128];
    snprintf(base, sizeof base,
             "{\"target\": %d, \"agents\": %d, \"rounds\": %d, \"model\": \"random\", "
             "\"checkpoint_every\": %d, \"round0_checkpoint\": %d, \"checkpoints\": %ld, "
             "\"checkpoint_deltas\": %ld, \"checkpoint_bytes\": %.0f, \"cpu_s\": %.3f, "
             "\"main_thread_cpu_s\": %.3f, \"wall_s\": %.3f, \"store_copy_wait_s\": %.3f, "
             "\"store_close_s\": %.3f, \"store_bytes\": %.0f, \"last_checkpoint\": %s, "
             "\"loadavg\": %.2f, \"note\": \"%s\"}",
             sc->target, n, sc->rounds, sc->every, sc->round0, ck_n, ck_delta, ck_bytes, dcpu,
             dmain, dt, dwait, dclose, bytes, last, rlab_bench_load1(), sc->note);
    snprintf(m, sizeof m, "scale_agent_steps_per_s_%s", sc->sfx);
    line(m, steps / dt, "agent-steps/s", base);
    snprintf(m, sizeof m, "scale_agent_steps_per_s_%s_incl_store_copy", sc->sfx);
    line(m, steps / (dt + dwait), "agent-steps/s", base);
    snprintf(m, sizeof m, "scale_agent_steps_per_cpu_s_%s", sc->sfx);
    line(m, steps / dcpu, "agent-steps/cpu-s", base);
    /* the main thread runs every sequential part and waits for the parallel ones, so on a
     * machine with a free core per thread the wall time is about its CPU time: a figure
     * of the critical path that the other tenants of a shared machine hardly change */
    snprintf(m, sizeof m, "scale_agent_steps_per_main_thread_cpu_s_%s", sc->sfx);
    line(m, steps / dmain, "agent-steps/main-thread-cpu-s", base);
    snprintf(m, sizeof m, "scale_store_bytes_per_agent_step_%s", sc->sfx);
    line(m, bytes / steps, "bytes/agent-step", base);
    static int startup_shown; /* from the first configuration that starts as simulator.new does */
    if (sc->round0 && !startup_shown) {
        startup_shown = 1;
        char b2[300];
        snprintf(b2, sizeof b2,
                 "{\"agents\": %d, \"world_s\": %.3f, \"world_cpu_s\": %.3f, \"sim_new_s\": "
                 "%.3f, \"round0_checkpoint_s\": %.3f, \"loadavg\": %.2f}",
                 n, world_s, world_cpu_s, t_setup, t_round0, rlab_bench_load1());
        line("scale_setup_s", t_setup, "s", b2);
        /* simulator.new's start-up: the simulation and its round-0 checkpoint (a full image;
         * its copy into the database file goes on after, on the store's thread) */
        line("scale_startup_s", t_setup + t_round0, "s", b2);
        line("scale_round0_checkpoint_s", t_round0, "s", b2);
        /* resident growth over the set-up and the step: the agents' state, the round's
         * buffers, and the checkpoints' two images (the last one's, which the next delta is
         * taken against, ~1.8 KB per agent, and the delta's buffer, touched as far as the
         * largest delta) */
        line("scale_memory_per_agent", mem / n, "bytes", b2);
    }
    const char *ext[] = {"", "-wal", "-shm", "-runs"};
    for (int k = 0; k < 4; k++) {
        snprintf(path, sizeof path, "%s/scale%d.db%s", dir, v, ext[k]);
        unlink(path);
    }
    return 0;
}

/* Scale: a generated world of n users (the demo world's shape otherwise: 600 items, ~34
 * interactions per user), n agents, random recommendations (training BPR-MF on it is not
 * what this measures), events and checkpoints in a fresh store per configuration:
 *   checkpoint_10_after_new   THE FIGURE FOR THE 200k TARGET: what `simulator.new` then
 *                             `simulator.step rounds=10` does: the round-0 checkpoint (a
 *                             full image) written at set-up (scale_round0_checkpoint_s, part
 *                             of scale_startup_s), then 10 timed rounds whose checkpoint
 *                             (round 10) is a delta against it.
 *   checkpoint_10_steady_30   the same set-up, 30 timed rounds (checkpoints at 10, 20, 30):
 *                             a longer run, where each checkpoint's copy into the database
 *                             file overlaps the next rounds as in a real run.
 *   checkpoint_1_after_new    the 150k target: as checkpoint_10_after_new, one every round.
 *   checkpoint_10_after_new_settled   (only when named in BENCH_SIM_SCALE_CFG) as
 *                             checkpoint_10_after_new, the round-0 image's copy into the
 *                             database file awaited before the step: a user who pauses
 *                             between the two commands, not a script.
 *   checkpoint_10_first_full, checkpoint_1_first_full
 *                             the figures printed before (as scale_agent_steps_per_s_
 *                             checkpoint_10 / _1): the store attached without the round-0
 *                             checkpoint, so the step's first checkpoint is a full image
 *                             (177 MB at 100,000 agents); kept so nothing is hidden. No
 *                             user of simulator.new gets this (simulator.load of a stored
 *                             simulation does: its first checkpoint is full).
 * Each also with _incl_store_copy: counting the wait for the last checkpoint's copy into the
 * database file after the step (it runs on the store's thread: in a longer run it overlaps
 * the next rounds). Memory per agent = resident growth from before sim_new to after the
 * first configuration's run, over n (the world and dataset excluded: they are the data, not
 * the simulation). */
static void scale_run(int n)
{
    rlab_err err = {0};
    rlab_world_config wc;
    rlab_world_config_demo(&wc);
    double per_user = (double)wc.n_inter / wc.n_users;
    wc.n_users = n;
    wc.n_inter = (int64_t)(per_user * n);
    rlab_world *w = NULL;
    rlab_dataset *ds = NULL;
    double t0 = rlab_now(), c0 = rlab_bench_cpu_seconds();
    if (rlab_world_generate(&wc, "scale", &w, &ds, &err)) {
        fprintf(stderr, "scale world: %s\n", err.msg);
        return;
    }
    double t_world = rlab_now() - t0, c_world = rlab_bench_cpu_seconds() - c0;
    char dir[] = "/tmp/reclab-bench-scale-XXXXXX";
    if (!mkdtemp(dir))
        return;
    static const scale_cfg cfgs[] = {
        {"checkpoint_10_after_new", 10, 10, 1, 200000,
         "simulator.new (round-0 image at set-up) then 10 rounds: compares with the target", 0},
        {"checkpoint_10_steady_30", 10, 30, 1, 200000,
         "simulator.new then 30 rounds: 3 checkpoints, copies overlapping the next rounds", 0},
        {"checkpoint_1_after_new", 1, 10, 1, 150000,
         "simulator.new (round-0 image at set-up) then 10 rounds: compares with the target", 0},
        {"checkpoint_10_first_full", 10, 10, 0, 200000,
         "no round-0 image: the first checkpoint is full (the figure printed before)", 0},
        {"checkpoint_1_first_full", 1, 10, 0, 150000,
         "no round-0 image: the first checkpoint is full (the figure printed before)", 0},
        {"checkpoint_10_after_new_settled", 10, 10, 2, 200000,
         "as _after_new, the round-0 image's copy into the database file awaited before the "
         "step (a pause between the commands)",
         1}};
    /* BENCH_SIM_SCALE_CFG: the configurations to run, by their suffix, in order, repeats
     * allowed (e.g. "checkpoint_10_after_new,checkpoint_10_first_full" twice for an A/B
     * within one process); default all of cfgs once but the extra ones */
    const char *sel = getenv("BENCH_SIM_SCALE_CFG");
    int nc = (int)(sizeof cfgs / sizeof *cfgs), v = 0, all = !(sel && *sel);
    for (const char *q = all ? NULL : sel; q || (all && v < nc);) {
        const scale_cfg *sc = NULL;
        if (q) {
            size_t len = strcspn(q, ",");
            for (int k = 0; k < nc && !sc; k++)
                if (strlen(cfgs[k].sfx) == len && strncmp(cfgs[k].sfx, q, len) == 0)
                    sc = &cfgs[k];
            if (!sc)
                fprintf(stderr, "BENCH_SIM_SCALE_CFG: no configuration '%.*s'\n", (int)len, q);
            q = q[len] == ',' ? q + len + 1 : NULL;
            if (!sc)
                continue;
        } else if (cfgs[v].extra) {
            v++;
            continue;
        } else {
            sc = &cfgs[v];
        }
        if (scale_one(w, ds, dir, v++, n, sc, t_world, c_world))
            break;
    }
    rmdir(dir);
    rlab_world_free(w);
    rlab_dataset_free(ds);
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 100;
    int agents = argc > 2 ? atoi(argv[2]) : 1000;
    int offline_only = argc > 3 && strcmp(argv[3], "offline") == 0;
    rlab_err err = {0};
    /* BENCH_SIM_SCALE=n: the scale run only (0: skip it; default 100000 after the rest) */
    const char *sc = getenv("BENCH_SIM_SCALE");
    int scale_n = sc ? atoi(sc) : 100000;
    if (sc && scale_n > 0 && getenv("BENCH_SIM_SCALE_ONLY")) {
        scale_run(scale_n);
        return 0;
    }
    rlab_world *w = NULL;
    rlab_dataset *ds = NULL;
    if (rlab_world_demo(&w, &ds, &err)) {
        fprintf(stderr, "demo world: %s\n", err.msg);
        return 1;
    }
    rlab_host *h = rlab_host_new(NULL, &err);
    rlab_host_load_all(h, NULL, &err);
    rlab_world *w2 = NULL;
    rlab_dataset *d2 = NULL;
    rlab_world_demo(&w2, &d2, &err);
    rlab_world_free(w2);
    rlab_host_add_dataset(h, d2, &err);
    rlab_model *bpr = NULL;
    if (rlab_host_find_cmd(h, "train bprmf")) {
        rlab_result *res = NULL;
        /* BENCH_SIM_EPOCHS: fewer epochs for profiling runs (valgrind) */
        const char *ep = getenv("BENCH_SIM_EPOCHS");
        char cmd[160];
        snprintf(cmd, sizeof cmd,
                 "train bprmf data=demo name=bpr split=none epochs=%d "
                 "eval_every=0 seed=1",
                 ep && atoi(ep) > 0 ? atoi(ep) : 20);
        if (rlab_host_run_sync(h, cmd, &res, &err) == RLAB_OK)
            bpr = rlab_models_get(rlab_host_models(h), "bpr");
        else
            fprintf(stderr, "bpr: %s\n", err.msg);
        rlab_result_free(res);
    }
    const char *model = bpr ? "\"bprmf\"" : "\"random\"";
    char dir[] = "/tmp/reclab-bench-sim-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    char path[256];
    for (int ck = 1; ck >= 0; ck--) {
        snprintf(path, sizeof path, "%s/sim%d.db", dir, ck);
        rlab_db *db = rlab_db_open(path, 0, &err);
        if (!db || rlab_db_plugin_migrate(db, "simulator", sim_schema, 1, &err)) {
            fprintf(stderr, "store: %s\n", err.msg);
            return 1;
        }
        rlab_db_run_info ri = {.plugin = "simulator", .name = "bench"};
        int64_t run = 0;
        rlab_db_run_begin(db, &ri, &run, &err);
        sim_config c;
        sim_config_default(&c);
        c.seed = 1;
        c.n_agents = agents;
        c.checkpoint_every = ck;
        sim *s = NULL;
        double t0 = rlab_now();
        if (sim_new(&c, ds, w, bpr, NULL, &s, &err)) {
            fprintf(stderr, "sim: %s\n", err.msg);
            return 1;
        }
        double t_setup = rlab_now() - t0;
        sim_set_id(s, run);
        if (!getenv("BENCH_SIM_NODB"))
            sim_attach_store(s, db, run);
        acc a = {0};
        t0 = rlab_now();
        double c0 = rlab_bench_cpu_seconds();
        int rc = sim_step(s, rounds, on_round, &a, NULL, NULL, NULL, &err);
        double dt = rlab_now() - t0, dcpu = rlab_bench_cpu_seconds() - c0;
        if (rc) {
            fprintf(stderr, "step: %s\n", err.msg);
            return 1;
        }
        sim_free(s);
        rlab_db_value p[1] = {{.type = RLAB_DB_INT, .i = run}};
        rlab_db_result *r =
            rlab_db_query_table(db, "SELECT count(*) FROM events WHERE run_id = ?1", p, 1, 0, &err);
        long events = r ? (long)rlab_db_result_cell(r, 0, 0)->i : -1;
        rlab_db_result_free(r);
        r = rlab_db_query_table(db,
                                "SELECT count(*), coalesce(sum(bytes), 0), "
                                "coalesce(sum(substr(state, 1, 8) = CAST('RLSIMDL2' AS BLOB)), 0) "
                                "FROM simulator_checkpoints WHERE sim = ?1",
                                p, 1, 0, &err);
        long ck_n = r ? (long)rlab_db_result_cell(r, 0, 0)->i : -1;
        long ck_bytes = r ? (long)rlab_db_result_cell(r, 0, 1)->i : -1;
        long ck_delta = r ? (long)rlab_db_result_cell(r, 0, 2)->i : -1;
        rlab_db_result_free(r);
        rlab_db_run_end(db, run, RLAB_RUN_DONE, NULL, &err);
        rlab_db_close(db);
        char base[320];
        snprintf(base, sizeof base,
                 "{\"target\": 100000, \"agents\": %d, \"rounds\": %d, \"model\": %s, "
                 "\"checkpoint_every\": %d, \"cpu_s\": %.3f, \"wall_s\": %.3f, "
                 "\"loadavg\": %.2f}",
                 agents, rounds, model, ck, dcpu, dt, rlab_bench_load1());
        const char *sfx = ck ? "" : "_no_checkpoints";
        char m[96];
        snprintf(m, sizeof m, "offline_agent_steps_per_s%s", sfx);
        line(m, (double)agents * rounds / dt, "agent-steps/s", base);
        snprintf(m, sizeof m, "offline_agent_steps_per_cpu_s%s", sfx);
        line(m, (double)agents * rounds / dcpu, "agent-steps/cpu-s", base);
        snprintf(m, sizeof m, "offline_active_actions_per_s%s", sfx);
        line(m, (double)a.active / dt, "actions/s", base);
        snprintf(m, sizeof m, "offline_events_per_s%s", sfx);
        line(m, (double)events / dt, "events/s", base);
        if (ck) {
            line("offline_setup_s", t_setup, "s", "null");
            line("offline_events", (double)events, "events", base);
            line("offline_watches", (double)a.watches, "watches", base);
            line("offline_checkpoints", (double)ck_n, "rows", base);
            line("offline_checkpoint_deltas", (double)ck_delta, "rows", base);
            line("offline_checkpoint_bytes", (double)ck_bytes, "bytes", base);
        }
        unlink(path);
        snprintf(path, sizeof path, "%s/sim%d.db-wal", dir, ck);
        unlink(path);
        snprintf(path, sizeof path, "%s/sim%d.db-shm", dir, ck);
        unlink(path);
        snprintf(path, sizeof path, "%s/sim%d.db-runs", dir, ck);
        unlink(path);
    }
    rmdir(dir);
    /* openai backend: the grid of (requests in flight, reply delay) */
    fake_rec_llm *srv = offline_only ? NULL : fake_rec_llm_start();
    const char *grid = getenv("BENCH_SIM_LLM");
    if (!grid || !*grid)
        grid = "16:50,64:50,16:500,64:500,64:50:mixed,64:50:mixed+step";
    for (const char *g = grid; srv && g && *g;) {
        int inflight = 0, delay = 0, used = 0;
        char opts[32] = "";
        if (sscanf(g, "%d:%d%n", &inflight, &delay, &used) != 2 || inflight < 1 || delay < 0) {
            fprintf(stderr, "BENCH_SIM_LLM: expected in_flight:delay_ms[:opts][,...], got '%s'\n",
                    g);
            break;
        }
        g += used;
        if (*g == ':') {
            size_t k = strcspn(g + 1, ",");
            snprintf(opts, sizeof opts, "%.*s", (int)(k < sizeof opts ? k : sizeof opts - 1),
                     g + 1);
            g += 1 + k;
        }
        g = *g == ',' ? g + 1 : NULL;
        openai_run(srv, ds, w, bpr, inflight, delay, opts);
    }
    fake_rec_llm_stop(srv);
    if (scale_n > 0)
        scale_run(scale_n);
    rlab_model_release(bpr);
    rlab_host_free(h);
    rlab_world_free(w);
    rlab_dataset_free(ds);
    return 0;
}
