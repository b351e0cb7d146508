/*
 * bench/reloop/bench_reloop.c: speed of ReLoop2's error memory (plugins/reloop/memory.c).
 * JSON lines {"bench": "reloop", "metric": ..., "value": ..., "unit": ..., "baseline": ...}:
 *   <mode>.lookups_per_s   lookups per second in a memory filled with `fill` samples
 *                          (baseline: the target, 1 M/s)
 *   <mode>.inserts_per_s   inserts per second
 *   <mode>.overhead_ns     lookup + insert per prediction, in ns (what the memory adds)
 *   base.predict_ns        the plugin's logistic-MF base: one prediction with its key, in ns
 *   <mode>.overhead_ratio  overhead_ns / base.predict_ns
 *   <mode>.bytes           memory footprint
 * for mode agg (aggregated buckets) and fifo8 (8-entry FIFO buckets), keys of 32 floats (the
 * mf base with dim 16), R=4 tables x b=10 bits, k=16: the plugin's defaults. Keys are drawn
 * around 512 random centres (clustered, like embeddings), seeded. Times are the process's CPU
 * time (CLOCK_PROCESS_CPUTIME_ID, one thread), so a machine shared with other jobs does not
 * inflate them; load1 is printed beside each figure.
 *
 *     build/bench/bench_reloop [n_lookups] [fill]
 */
#include "benchutil.h"
#include "reloop.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void emit(const char *metric, double v, const char *unit, double baseline)
{
    printf("{\"bench\": \"reloop\", \"metric\": \"%s\", \"value\": %.4f, \"unit\": \"%s\", "
           "\"baseline\": %.1f, \"load1\": %.2f}\n",
           metric, v, unit, baseline, rlab_bench_load1());
    fflush(stdout);
}

enum { D = 32, NC = 512 };

int main(int argc, char **argv)
{
    const int64_t nl = argc > 1 ? atoll(argv[1]) : 2000000;
    const int64_t fill = argc > 2 ? atoll(argv[2]) : 200000;
    const int64_t nk = 65536; /* distinct keys, reused cyclically */
    rlab_err err = {0};
    rlab_rng rng;
    rlab_rng_seed(&rng, 7);
    float *cent = malloc((size_t)NC * D * sizeof(float));
    float *keys = malloc((size_t)nk * D * sizeof(float));
    float *errs = malloc((size_t)nk * sizeof(float));
    if (!cent || !keys || !errs)
        return 1;
    for (int i = 0; i < NC * D; i++)
        cent[i] = rlab_rng_normal(&rng);
    for (int64_t i = 0; i < nk; i++) {
        const float *c = cent + (size_t)rlab_rng_below(&rng, NC) * D;
        for (int d = 0; d < D; d++)
            keys[(size_t)i * D + (size_t)d] = c[d] + 0.3f * rlab_rng_normal(&rng);
        errs[i] = rlab_rng_uniform(&rng) - 0.5f;
    }
    /* the base: the plugin's logistic MF (dim 16: keys of 32), 1000 users x 1000 items */
    enum { NU = 1000, NI = 1000, NS = 100000 };
    reloop_stream s = {0};
    s.n = NS;
    s.user = malloc(NS * sizeof(int32_t));
    s.item = malloc(NS * sizeof(int32_t));
    s.n_users = NU;
    s.n_items = NI;
    float *p = malloc(NS * sizeof(float)), *h = malloc((size_t)NS * D * sizeof(float));
    if (!s.user || !s.item || !p || !h)
        return 1;
    for (int i = 0; i < NS; i++) {
        s.user[i] = (int32_t)rlab_rng_below(&rng, NU);
        s.item[i] = (int32_t)rlab_rng_below(&rng, NI);
    }
    reloop_base_opts bo = {.dim = D / 2, .epochs = 1, .lr = 0.05f, .l2 = 1e-4f, .seed = 1};
    reloop_base *b = reloop_base_new_mf(NU, NI, &bo, &err);
    if (!b) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    double t0 = now_s();
    int reps = 10;
    for (int r = 0; r < reps; r++)
        reloop_base_predict(b, &s, 0, NS, p, h, &err);
    const double base_ns = 1e9 * (now_s() - t0) / ((double)reps * NS);
    emit("base.predict_ns", base_ns, "ns", 0.0);
    reloop_base_free(b);

    for (int mode = 0; mode < 2; mode++) {
        const char *mn = mode ? "fifo8" : "agg";
        reloop_mem_opts o = reloop_mem_defaults(D);
        o.fifo = mode ? 8 : 0;
        reloop_mem *m = reloop_mem_new(&o, &err);
        if (!m) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        t0 = now_s();
        for (int64_t i = 0; i < fill; i++)
            reloop_mem_insert(m, keys + (size_t)(i % nk) * D, errs[i % nk]);
        const double ins_s = now_s() - t0;
        double acc = 0.0, e;
        int nc;
        t0 = now_s();
        for (int64_t i = 0; i < nl; i++) {
            reloop_mem_lookup(m, keys + (size_t)((i * 7919) % nk) * D, &e, &nc);
            acc += e;
        }
        const double look_s = now_s() - t0;
        reloop_mem_stats st;
        reloop_mem_get_stats(m, &st);
        char nm[64];
        const double look_ns = 1e9 * look_s / (double)nl, ins_ns = 1e9 * ins_s / (double)fill;
        snprintf(nm, sizeof nm, "%s.lookups_per_s", mn);
        emit(nm, (double)nl / look_s, "1/s", 1e6);
        snprintf(nm, sizeof nm, "%s.inserts_per_s", mn);
        emit(nm, (double)fill / ins_s, "1/s", 0.0);
        snprintf(nm, sizeof nm, "%s.overhead_ns", mn);
        emit(nm, look_ns + ins_ns, "ns", 0.0);
        snprintf(nm, sizeof nm, "%s.overhead_ratio", mn);
        emit(nm, (look_ns + ins_ns) / base_ns, "x", 0.0);
        snprintf(nm, sizeof nm, "%s.bytes", mn);
        emit(nm, (double)st.bytes, "B", 0.0);
        snprintf(nm, sizeof nm, "%s.mean_estimate", mn); /* keeps the lookups observable */
        emit(nm, acc / (double)nl, "", 0.0);
        reloop_mem_free(m);
    }
    free(cent);
    free(keys);
    free(errs);
    free(s.user);
    free(s.item);
    free(p);
    free(h);
    return 0;
}
