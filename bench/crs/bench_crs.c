/*
 * bench/crs: conversational recommendation throughput, JSON lines.
 *
 *   ReDial: a small unicrs model (dim 32, 1 epoch on the validation split: the figure is the
 *   scoring speed, not accuracy) scores every recommendation instance of the test split with
 *   crs.eval (full ranking over the catalogue, the two baselines, each instance stored in the
 *   session's SQLite store):
 *     instances_per_s          recommendation instances (target, context) ranked per second,
 *                              responses off
 *     turns_per_s              recommender turns answered per second with responses on
 *                              (ranking + template retrieval + Distinct-n)
 *     macrs_dialogues_per_s    crs.simulate: 50 targets x 4 policies (macrs, always, askrec,
 *                              the unicrs model alone), 5 turns, unicrs scoring each turn
 *     *_per_cpu_s              the same per CPU-second of the process (all threads): the
 *                              figure that does not move with the other tenants' load
 *   Each line's baseline records the 1-minute load average (a shared 2-core machine) and the
 *   CPU seconds of the measured part.
 *
 * Usage: bench_crs [plugin_dir]   (needs $RECLAB_DATA; prints a skip line without it)
 */
#include "benchutil.h"
#include "host/host.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void line(const char *metric, double v, const char *unit, double cpu)
{
    printf("{\"bench\": \"crs\", \"metric\": \"%s\", \"value\": %.6g, \"unit\": \"%s\", "
           "\"baseline\": {\"load1\": %.2f, \"cpu_s\": %.2f, \"peak_rss_mb\": %.0f}}\n",
           metric, v, unit, rlab_bench_load1(), cpu, rlab_bench_peak_rss_mb());
    fflush(stdout);
}

static rlab_result *run(rlab_host *h, const char *cmd)
{
    rlab_err err = {0};
    rlab_result *res = NULL;
    if (rlab_host_run_sync(h, cmd, &res, &err) != RLAB_OK) {
        fprintf(stderr, "bench_crs: %s: %s\n", cmd, err.msg);
        exit(1);
    }
    return res;
}

static double scalar(const rlab_result *r, const char *name)
{
    const rlab_cell *c = rlab_result_scalar(r, name);
    return !c ? 0.0 : c->type == RLAB_CELL_INT ? (double)c->i : c->f;
}

int main(int argc, char **argv)
{
    const char *data = getenv("RECLAB_DATA");
    const char *pdir = argc > 1 ? argv[1] : "build/plugins";
    char path[1024], cmd[4096];
    snprintf(path, sizeof path, "%s/redial/test_data.jsonl", data ? data : "");
    if (!data || access(path, R_OK) != 0) {
        printf("{\"bench\": \"crs\", \"metric\": \"skipped\", \"value\": 0, \"unit\": \"\", "
               "\"baseline\": \"RECLAB_DATA has no redial/\"}\n");
        return 0;
    }
    const char *dirs[2] = {pdir, NULL};
    rlab_host_opts o = {.plugin_dirs = dirs, .no_env = 1};
    rlab_err err = {0};
    rlab_host *h = rlab_host_new(&o, &err);
    snprintf(path, sizeof path, "%s/reclab_crs.so", pdir);
    if (!h || rlab_host_load_file(h, path, &err) != RLAB_OK) {
        fprintf(stderr, "bench_crs: %s\n", err.msg);
        return 1;
    }
    char db[] = "/tmp/bench_crs_XXXXXX";
    if (!mkdtemp(db))
        return 1;
    snprintf(path, sizeof path, "%s/s.db", db);
    if (rlab_host_set_store(h, path, &err) != RLAB_OK) {
        fprintf(stderr, "bench_crs: %s\n", err.msg);
        return 1;
    }
    snprintf(cmd, sizeof cmd, "load %s/redial/valid_data.jsonl name=rv", data);
    rlab_result_free(run(h, cmd));
    snprintf(cmd, sizeof cmd, "load %s/redial/test_data.jsonl name=rt", data);
    rlab_result_free(run(h, cmd));
    snprintf(cmd, sizeof cmd,
             "crs.prepare dialogues=rv catalog=rt movies=%s/movielens-1m/movies_semicolon.dat "
             "name=redial",
             data);
    rlab_result_free(run(h, cmd));
    rlab_result_free(run(h, "train unicrs data=redial epochs=1 dim=32 seed=1"));
    for (int resp = 0; resp < 2; resp++) {
        double t0 = rlab_now(), c0 = rlab_bench_cpu_seconds();
        rlab_result *r = run(h, resp ? "crs.eval model=unicrs data=rt"
                                     : "crs.eval model=unicrs data=rt "
                                       "responses=false");
        double dt = rlab_now() - t0, cpu = rlab_bench_cpu_seconds() - c0;
        /* per CPU-second too: on a shared machine the wall-clock figure moves with the load */
        if (resp) {
            line("turns_per_s", scalar(r, "responses") / dt, "turns/s", cpu);
            line("turns_per_cpu_s", scalar(r, "responses") / cpu, "turns/cpu-s", cpu);
        } else {
            line("instances_per_s", scalar(r, "instances") / dt, "instances/s", cpu);
            line("instances_per_cpu_s", scalar(r, "instances") / cpu, "instances/cpu-s", cpu);
        }
        rlab_result_free(r);
    }
    /* MACRS (issue 19): simulated dialogues per second, each policy, unicrs recommending */
    {
        double t0 = rlab_now(), c0 = rlab_bench_cpu_seconds();
        rlab_result *r = run(h, "crs.simulate data=redial rec=unicrs targets=50 seed=1 "
                                "store=false");
        double dt = rlab_now() - t0, cpu = rlab_bench_cpu_seconds() - c0;
        line("macrs_dialogues_per_s", 4 * 50 / dt, "dialogues/s", cpu);
        line("macrs_dialogues_per_cpu_s", 4 * 50 / cpu, "dialogues/cpu-s", cpu);
        rlab_result_free(r);
    }
    rlab_host_free(h);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", db);
    return system(cmd) == 0 ? 0 : 1;
}
