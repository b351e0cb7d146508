/*
 * bench/ranker: throughput of the multi-task rankers, one JSON line per measurement.
 *
 *   sgemm.gflops                 cblas_sgemm at n = 1024 (2 n^3 flops, best of 5), one
 *                                thread, timed in thread CPU seconds: the measured peak of one
 *                                core, the baseline of the fractions
 *   <kind>.train.samples_per_s   one epoch of training (forward, backward, Adam) on the
 *                                synthetic multi-task world (20,000 samples, 8 categorical
 *                                fields, 4 numeric, a 10-item behaviour sequence, 2 tasks),
 *                                batch 256, d = 16, wall time; .cpu_samples_per_s per CPU second
 *   <kind>.infer.samples_per_s   predicting every sample (batches of 512), wall time
 *   infnet_block.{fwd,step}.gflops   one INFNet block (heterogeneous cross-attention flow and
 *                                Proxy Gated Units, then the task heads) at a transformer-like
 *                                size: batch 512, d = 64, 4 heads, 26 categorical fields (as
 *                                Criteo), a 50-item sequence, 4 proxies, 2 tasks, 2 shared task
 *                                tokens; counted flops: every projection and PGU / proxy / head
 *                                matmul (2 rows in out) and attention's Q K^T and P V (2 B Tq
 *                                Tk d each), forward; a training step counts 3x the forward
 *                                (backward = 2 products per forward product); elementwise work
 *                                and embedding gathers are not counted. Best of 5 steps, timed
 *                                like sgemm in thread CPU seconds (one thread): a busy shared
 *                                machine slows the wall clock of both, not this ratio
 *   infnet_block.{fwd,step}.peak_fraction   the above / sgemm.gflops
 *   loadavg.start / .end         the 1-minute load average around the run (a shared machine)
 *
 * Usage: bench_ranker [kinds]   (default "infnet,mmoe,dcnv2,sharedbottom").
 * Needs OPENBLAS_NUM_THREADS=1 and OMP_NUM_THREADS=1 for the CPU-time figures (bench/ranker/run.sh
 * sets them).
 */
#include "benchutil.h"
#include "ranker.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void emit(const char *metric, double v, const char *unit, double baseline)
{
    printf("{\"bench\": \"ranker\", \"metric\": \"%s\", \"value\": %.6g, \"unit\": \"%s\", "
           "\"baseline\": %.6g}\n",
           metric, v, unit, baseline);
    fflush(stdout);
}

/* CPU seconds of this thread: with one OpenBLAS and one OpenMP thread all the work runs on
 * the calling thread, so this excludes the time a shared machine takes the core away. */
static double thread_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double bench_sgemm(void)
{
    const int n = 1024;
    float *a = rlab_malloc_aligned((size_t)n * n * sizeof(float));
    float *b = rlab_malloc_aligned((size_t)n * n * sizeof(float));
    float *c = rlab_malloc_aligned((size_t)n * n * sizeof(float));
    if (!a || !b || !c)
        exit(1);
    for (size_t i = 0; i < (size_t)n * n; i++)
        a[i] = (float)(i % 7) * 0.1f, b[i] = (float)(i % 5) * 0.1f;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
    double best = 1e30;
    for (int r = 0; r < 5; r++) {
        double t0 = thread_cpu();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c,
                    n);
        double dt = thread_cpu() - t0;
        best = dt < best ? dt : best;
    }
    rlab_free_aligned(a), rlab_free_aligned(b), rlab_free_aligned(c);
    return 2.0 * n * n * (double)n / best / 1e9;
}

static int64_t *iota(int64_t n)
{
    int64_t *r = rlab_malloc((size_t)n * sizeof *r);
    for (int64_t i = 0; r && i < n; i++)
        r[i] = i;
    return r;
}

static void bench_kind(int kind, const rlab_tabular *t)
{
    rlab_err err = {0};
    rk_cfg c;
    rk_cfg_defaults(kind, &c, &err);
    c.epochs = 1;
    c.seed = 1;
    int64_t *rows = iota(t->n);
    rk_model *m = rk_model_new(&c, t, rows, t->n, &err);
    if (!m) {
        fprintf(stderr, "bench_ranker: %s\n", err.msg);
        exit(1);
    }
    rk_fit_result fr;
    double c0 = rlab_bench_cpu_seconds();
    if (rk_fit(m, t, rows, t->n, NULL, 0, NULL, &fr, &err)) {
        fprintf(stderr, "bench_ranker: %s\n", err.msg);
        exit(1);
    }
    double cpu = rlab_bench_cpu_seconds() - c0;
    char nm[96];
    snprintf(nm, sizeof nm, "%s.train.samples_per_s", rk_kind_names[kind]);
    emit(nm, fr.samples_per_s, "samples/s", 0);
    snprintf(nm, sizeof nm, "%s.train.cpu_samples_per_s", rk_kind_names[kind]);
    emit(nm, cpu > 0 ? (double)t->n / cpu : 0, "samples/cpu-s", 0);
    float *p = rlab_malloc((size_t)t->n * 2 * sizeof *p);
    double t0 = rlab_now();
    if (!p || rk_predict(m, t, rows, t->n, p, &err)) {
        fprintf(stderr, "bench_ranker: predict: %s\n", err.msg);
        exit(1);
    }
    double dt = rlab_now() - t0;
    snprintf(nm, sizeof nm, "%s.infer.samples_per_s", rk_kind_names[kind]);
    emit(nm, (double)t->n / dt, "samples/s", 0);
    snprintf(nm, sizeof nm, "%s.parameters", rk_kind_names[kind]);
    emit(nm, (double)rk_model_nparams(m), "floats", 0);
    rlab_free(p);
    rlab_free(rows);
    rk_model_free(m);
}

/* Counted flops of one INFNet forward (see the header) at batch B. */
static double infnet_flops(const rk_cfg *c, double B, double M, double L, double F, double N)
{
    double d = c->dim, P = c->proxies, Ns = c->shared_tasks, H = c->hidden;
    double f = 2 * B * (M * d) * (P * d) + F * 2 * B * d * (P * d); /* proxies */
    /* one cross-attention: Q projection, K and V projections, Q K^T and P V */
#define CA(tq, tk) (2 * B * (tq)*d * d + 4 * B * (tk)*d * d + 4 * B * (tq) * (tk)*d)
    double Tq[4] = {P, F * P, Ns, N};
    for (int l = 0; l < c->layers; l++) {
        f += CA(Tq[0], L) + CA(Tq[0], N); /* C~ <- S, T */
        if (F > 0)
            f += CA(Tq[1], M) + CA(Tq[1], N); /* S~ <- C, T */
        if (Ns > 0)
            f += CA(Tq[2], M) + CA(Tq[2], L); /* T~ <- C, S */
        f += CA(Tq[3], M) + CA(Tq[3], L);     /* T <- C, S */
        f += 2 * B * (P * d) * (M * d) + 2 * B * (F * P * d) * (L * d) + 2 * B * (Ns * d) * (N * d);
    }
#undef CA
    f += N * (2 * B * d * H + 2 * B * H); /* heads */
    return f;
}

static void bench_block(double peak)
{
    /* a Criteo-like table: 26 categorical fields, a 50-item sequence (synthetic world with
     * its history field; max_seq pads to 50) */
    rlab_err err = {0};
    rlab_tabular *t = NULL;
    if (rlab_tabular_synth(4096, 26, 1000, 3, &t, &err)) {
        fprintf(stderr, "bench_ranker: %s\n", err.msg);
        exit(1);
    }
    rk_cfg c;
    rk_cfg_defaults(RK_INFNET, &c, &err);
    c.dim = 64;
    c.heads = 4;
    c.layers = 1;
    c.max_seq = 50;
    c.seed = 1;
    int64_t *rows = iota(t->n);
    rk_model *m = rk_model_new(&c, t, rows, t->n, &err);
    if (!m) {
        fprintf(stderr, "bench_ranker: %s\n", err.msg);
        exit(1);
    }
    const int B = 512;
    double M = 0, F = 0;
    for (int f = 0; f < t->nfields; f++)
        if (t->fields[f].role == RLAB_TAB_SEQ)
            F += 1;
        else
            M += 1;
    M += t->nnum;
    double L = F * c.max_seq, N = rk_model_ntasks(m);
    double flops = infnet_flops(&c, B, M, L, F, N);
    rlab_tape *tp = rlab_tape_new(1u << 30, 1u << 16, &err);
    float *lab = rlab_calloc((size_t)B * 2, sizeof *lab);
    if (!tp || !lab)
        exit(1);
    rlab_params *P = rk_model_params(m);
    double best_f = 1e30, best_s = 1e30;
    for (int r = 0; r < 6; r++) {
        rlab_tape_reset(tp);
        rlab_params_zero_grad(P);
        double t0 = thread_cpu();
        rlab_tensor *lg = rk_forward(m, tp, t, rows + (r % 4) * B, B);
        double t1 = thread_cpu();
        rlab_tensor *loss = rlab_t_bce_logits(tp, lg, lab, NULL);
        if (rlab_tape_backward(tp, loss)) {
            fprintf(stderr, "bench_ranker: %s\n", rlab_tape_errmsg(tp));
            exit(1);
        }
        double t2 = thread_cpu();
        if (r == 0)
            continue; /* warm-up */
        best_f = t1 - t0 < best_f ? t1 - t0 : best_f;
        best_s = t2 - t0 < best_s ? t2 - t0 : best_s;
    }
    double gf = flops / best_f / 1e9, gs = 3 * flops / best_s / 1e9;
    emit("infnet_block.fwd.gflops", gf, "GFLOP/s", 0);
    emit("infnet_block.fwd.peak_fraction", gf / peak, "fraction", 0.4);
    emit("infnet_block.step.gflops", gs, "GFLOP/s", 0);
    emit("infnet_block.step.peak_fraction", gs / peak, "fraction", 0.4);
    emit("infnet_block.step.samples_per_s", B / best_s, "samples/s", 0);
    emit("infnet_block.fwd.samples_per_s", B / best_f, "samples/s", 0);
    rlab_free(lab);
    rlab_tape_free(tp);
    rlab_free(rows);
    rk_model_free(m);
    rlab_tabular_free(t);
}

int main(int argc, char **argv)
{
    const char *kinds = argc > 1 ? argv[1] : "infnet,mmoe,dcnv2,sharedbottom";
    emit("loadavg.start", rlab_bench_load1(), "load", 0);
    double peak = bench_sgemm();
    emit("sgemm.gflops", peak, "GFLOP/s", 0);
    rlab_err err = {0};
    rlab_tabular *t = NULL;
    if (rlab_tabular_synth(20000, 8, 500, 1, &t, &err)) {
        fprintf(stderr, "bench_ranker: %s\n", err.msg);
        return 1;
    }
    for (int k = 0; rk_kind_names[k]; k++)
        if (strstr(kinds, rk_kind_names[k]))
            bench_kind(k, t);
    rlab_tabular_free(t);
    bench_block(peak);
    emit("loadavg.end", rlab_bench_load1(), "load", 0);
    emit("peak_rss_mb", rlab_bench_peak_rss_mb(), "MB", 0);
    return 0;
}
