/*
 * bench/tensor: throughput of the tensor core, one JSON line per measurement.
 *
 *   sgemm.gflops        cblas_sgemm at n = 2048 (2 n^3 flops, best of REPS): the machine's
 *                       measured peak, used as the baseline of the others
 *   block.gflops        one transformer block forward + backward at SASRec size (batch 128,
 *                       length 200, width 64, 1 head, causal, attention dropout 0.2): LN and
 *                       the Q/K/V projections (one op: rlab_t_layernorm_linear_multi), fused
 *                       attention, output projection + residual, LN and the FFN's first layer
 *                       (64 -> 64, bias + ReLU; one op again), its second (64 -> 64, bias +
 *                       residual: the fused linear op rlab_t_linear).
 *                       Counted flops: the matmuls (2 N C^2 each forward, twice that backward)
 *                       and attention's Q K^T and P V (2 B T^2 C each forward; dV, dP, dQ, dK
 *                       backward), dense, i.e. 36 N C^2 + 12 B T^2 C with N = B T. Elementwise
 *                       work is not counted. The block's time is its best of REPS steps (as
 *                       sgemm's); the .median twins take the median step instead (the machine
 *                       is shared)
 *   block.peak_fraction block.gflops / sgemm.gflops (target >= 0.6, issue 23; the "baseline"
 *                       field)
 *   sgemm.gflops_per_cpu_s  cblas_sgemm at n = 1024, one thread, per second of its CPU time
 *   block.gflops_per_cpu_s  the block's flops per CPU-second of all threads (best step), and
 *   block.peak_fraction_cpu its ratio to sgemm.gflops_per_cpu_s: the same target, steadier
 *                       on a shared machine (a descheduled thread costs wall time, not CPU)
 *   block.ms.<site>.<fwd|bwd>  where the block's time goes: per call site (ln1.qkv, attn,
 *                       wo (+ res1), ln2.w1 (+ b1, relu), w2 (+ b2, res2)), median over the steps;
 *                       block.cpu_ms.<site>.<fwd|bwd> the same in process CPU time (all threads)
 *   block.idle_ms[.<site>.<fwd|bwd>]  CPU-ms the other threads idle while the calling thread
 *                       runs (its serial code, their waits at a region's end): OpenMP threads x
 *                       the caller's CPU time - all threads' CPU time, median over the steps.
 *                       Where the caller itself waits, or (a busy machine) is descheduled while
 *                       the others take over a dynamic schedule's blocks, it undercounts, down
 *                       to negative values: per site it is a reading for a quiet machine.
 *                       All threads' CPU time includes OpenBLAS's own workers, which are not
 *                       counted in the thread count: inside BLAS calls it reads low
 *   xent.gflops         full-item softmax cross-entropy (6,400 rows, 12,101 items, width 64)
 *                       forward + backward; counted: 2 N V C forward and 6 N V C backward
 *                       (logits recomputed, then dH and dItems), as executed
 *
 *   attention.[dropout.]{fwd,bwd}.gflops  the attention kernels alone at the block's size (dense
 *                       flop count; .gflops_per_cpu_s per second of process CPU time)
 *   logits.{sgemm,panel}.gflops_per_cpu_s  the full-softmax logits product alone, 256 rows x
 *                       12,101 items x 64, one thread, per second of the thread's CPU time:
 *                       cblas_sgemm (beta 0) against packing the items and running the panel
 *                       kernel (core/tensor/panel.c), alternating; .panel_kernel_only without
 *                       the packing (a loss packs once per call, for all its rows: 900-1800
 *                       per batch on Beauty), .panel_kernel_256bit with the AVX2 tiles
 *
 * Threads: OpenBLAS from OPENBLAS_NUM_THREADS, OpenMP from OMP_NUM_THREADS (both reported).
 * OpenMP's idle threads must not spin against OpenBLAS's: like the reclab binary, the bench
 * re-executes itself with OMP_WAIT_POLICY=passive unless a policy is set (reported as
 * omp_wait_policy_passive 1/0; RECLAB_NO_REEXEC=1 disables the re-exec). loadavg.start/.end:
 * the 1-minute load average around the run (a shared machine: read the figures with it).
 * Usage: bench_tensor [reps [attention|block|logits|xent]]   (default 5 reps; a name runs only that
 * part, after the sgemm peak). Recommended: OMP_WAIT_POLICY=passive OPENBLAS_NUM_THREADS=2.
 */
#include "benchutil.h"
#include "tensor/kernels.h"
#include "tensor/loss.h"
#include "tensor/nn.h"
#include "tensor/ops.h"
#include "tensor/tensor.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

int openblas_get_num_threads(void);

static void emit(const char *metric, double value, const char *unit, double baseline)
{
    if (baseline > 0)
        printf("{\"bench\": \"tensor\", \"metric\": \"%s\", \"value\": %.4g, \"unit\": \"%s\", "
               "\"baseline\": %.4g}\n",
               metric, value, unit, baseline);
    else
        printf("{\"bench\": \"tensor\", \"metric\": \"%s\", \"value\": %.4g, \"unit\": \"%s\", "
               "\"baseline\": null}\n",
               metric, value, unit);
    fflush(stdout);
}

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* median of v[0..n) (v is reordered) */
static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* CPU seconds of this thread / of the whole process (all threads): on a shared machine a
 * descheduled thread costs wall time but no CPU time, so figures per CPU-second are steadier. */
static double thread_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double process_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- sgemm peak per CPU-second: one thread, n = 1024, this thread's CPU time ------------- */
static double bench_sgemm_cpu(int reps)
{
    const int n = 1024;
    float *a = rlab_malloc_aligned((size_t)n * n * sizeof(float));
    float *b = rlab_malloc_aligned((size_t)n * n * sizeof(float));
    float *c = rlab_malloc_aligned((size_t)n * n * sizeof(float));
    if (!a || !b || !c) {
        fprintf(stderr, "bench_tensor: out of memory\n");
        exit(1);
    }
    rlab_rng rng;
    rlab_rng_seed(&rng, 1);
    for (size_t i = 0; i < (size_t)n * n; i++)
        a[i] = rlab_rng_uniform(&rng), b[i] = rlab_rng_uniform(&rng);
    const int bt = openblas_get_num_threads();
    openblas_set_num_threads(1);
    double best = 1e30;
    for (int r = 0; r <= reps; r++) { /* r = 0 warms up */
        double t0 = thread_cpu();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c,
                    n);
        double dt = thread_cpu() - t0;
        if (r > 0 && dt < best)
            best = dt;
    }
    openblas_set_num_threads(bt);
    rlab_free_aligned(a);
    rlab_free_aligned(b);
    rlab_free_aligned(c);
    return 2.0 * n * n * (double)n / best / 1e9;
}

/* ---- sgemm peak ------------------------------------------------------------------------ */
static double bench_sgemm(int reps)
{
    const int n = 2048;
    float *a = rlab_malloc_aligned((size_t)n * n * sizeof(float));
    float *b = rlab_malloc_aligned((size_t)n * n * sizeof(float));
    float *c = rlab_malloc_aligned((size_t)n * n * sizeof(float));
    if (!a || !b || !c) {
        fprintf(stderr, "bench_tensor: out of memory\n");
        exit(1);
    }
    rlab_rng rng;
    rlab_rng_seed(&rng, 1);
    for (size_t i = 0; i < (size_t)n * n; i++)
        a[i] = rlab_rng_uniform(&rng), b[i] = rlab_rng_uniform(&rng);
    double best = 1e30;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c,
                n); /* warm-up: thread pool, page faults */
    for (int r = 0; r < reps; r++) {
        double t0 = rlab_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c,
                    n);
        double dt = rlab_now() - t0;
        best = dt < best ? dt : best;
    }
    rlab_free_aligned(a);
    rlab_free_aligned(b);
    rlab_free_aligned(c);
    return 2.0 * n * n * (double)n / best / 1e9;
}

/* ---- one transformer block -------------------------------------------------------------- */
enum { BB = 128, BT = 200, BC = 64 };

/* Per-op timers, by call site ("ln1", "q", "attn", ...): the forward time is measured between
 * eager op calls, the backward by walking the tape ourselves (the same loop as
 * rlab_tape_backward_from, timed per node; node i of the tape belongs to call site site[i]). */
#define MAXT 32
typedef struct {
    const char *name[MAXT];
    double fwd[MAXT], bwd[MAXT];
    double fwd_cpu[MAXT], bwd_cpu[MAXT]; /* process CPU time (all threads) */
    double fwd_one[MAXT], bwd_one[MAXT]; /* this (the calling) thread's CPU time */
    double cpu0, one0;                   /* process / thread CPU time at the last mark */
    size_t marked;                       /* tape nodes already given a site */
    int n;
    int site[256]; /* tape node index -> timer slot */
} timers;

static int timer_slot(timers *tm, const char *name)
{
    for (int i = 0; i < tm->n; i++)
        if (strcmp(tm->name[i], name) == 0)
            return i;
    if (tm->n == MAXT)
        return MAXT - 1;
    tm->name[tm->n] = name;
    tm->fwd[tm->n] = tm->bwd[tm->n] = 0;
    tm->fwd_cpu[tm->n] = tm->bwd_cpu[tm->n] = 0;
    tm->fwd_one[tm->n] = tm->bwd_one[tm->n] = 0;
    return tm->n++;
}

static rlab_tensor *timed(timers *tm, rlab_tape *t, const char *site, double *t0, rlab_tensor *out)
{
    double t1 = rlab_now(), c1 = process_cpu(), o1 = thread_cpu();
    int slot = timer_slot(tm, site);
    tm->fwd[slot] += t1 - *t0;
    tm->fwd_cpu[slot] += c1 - tm->cpu0;
    tm->fwd_one[slot] += o1 - tm->one0;
    tm->cpu0 = c1;
    tm->one0 = o1;
    /* every node recorded since the last mark (a fused op may record views after itself) */
    for (size_t i = tm->marked; i < t->nnodes && i < 256; i++)
        tm->site[i] = slot;
    tm->marked = t->nnodes;
    *t0 = t1;
    return out;
}

static double block_step(rlab_tape *t, rlab_params *P, const float *ones, timers *tm)
{
#define G(name) rlab_params_get(P, name)
#define T(site, expr) timed(tm, t, site, &t0, (expr))
    rlab_tape_reset(t);
    double start = rlab_now(), t0 = start;
    tm->cpu0 = process_cpu();
    tm->one0 = thread_cpu();
    tm->marked = 0;
    rlab_tensor *x = G("x");
    /* LN, then Q, K, V: one op (rlab_t_layernorm_linear_multi) reading x once, its
     * normalised rows never in memory, its backward one pass */
    rlab_tensor *qkv[3], *wqkv[3] = {G("wq"), G("wk"), G("wv")};
    T("ln1.qkv", rlab_t_layernorm_linear_multi(t, x, G("ln1.g"), G("ln1.b"), 1e-5f, 3, wqkv, NULL,
                                               RLAB_ACT_NONE, qkv));
    rlab_tensor *q = qkv[0], *k = qkv[1], *v = qkv[2], *h = NULL;
    rlab_tensor *a = T("attn", rlab_t_attention(t, q, k, v, 1, NULL, NULL, RLAB_ATTN_CAUSAL, 0.2f));
    /* the fused linear op: x1 = x + a wo, h = relu(h w1 + b1), y = x1 + (h w2 + b2) */
    rlab_tensor *x1 = T("wo", rlab_t_linear(t, a, G("wo"), NULL, x, RLAB_ACT_NONE));
    /* LN, then relu(h w1 + b1): one op again, the normalised rows never in memory */
    rlab_tensor *w1[1] = {G("w1")}, *b1[1] = {G("b1")};
    T("ln2.w1", rlab_t_layernorm_linear_multi(t, x1, G("ln2.g"), G("ln2.b"), 1e-5f, 1, w1, b1,
                                              RLAB_ACT_RELU, &h));
    rlab_tensor *y = T("w2", rlab_t_linear(t, h, G("w2"), G("b2"), x1, RLAB_ACT_NONE));
    if (rlab_tape_error(t)) {
        fprintf(stderr, "bench_tensor: block forward: %s\n", rlab_tape_errmsg(t));
        exit(1);
    }
    rlab_params_zero_grad(P);
    t0 = rlab_now();
    tm->cpu0 = process_cpu();
    tm->one0 = thread_cpu();
    /* the seed gradient, as a loss's backward would write it: on the threads (on one, this
     * 6.5 MB pass was 1.8 CPU-ms per step with the other core idle; perf, load 14) */
    float *restrict yg = y->grad;
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < y->n; i++)
        yg[i] += ones[i];
    for (size_t i = t->nnodes; i-- > 0;) {
        rlab_tensor *node = t->nodes[i];
        if (node->grad && node->backward) {
            node->backward(t, node);
            double t1 = rlab_now(), c1 = process_cpu(), o1 = thread_cpu();
            const int slot = i < 256 ? tm->site[i] : MAXT - 1;
            tm->bwd[slot] += t1 - t0;
            tm->bwd_cpu[slot] += c1 - tm->cpu0;
            tm->bwd_one[slot] += o1 - tm->one0;
            t0 = t1;
            tm->cpu0 = c1;
            tm->one0 = o1;
        }
    }
    if (rlab_tape_error(t)) {
        fprintf(stderr, "bench_tensor: block backward: %s\n", rlab_tape_errmsg(t));
        exit(1);
    }
    return rlab_now() - start;
#undef T
#undef G
}

static void bench_block(int reps, double peak, double peak_cpu)
{
    const int64_t N = (int64_t)BB * BT;
    const rlab_param_spec specs[] = {
        {"x", 3, {BB, BT, BC}, RLAB_INIT_NORMAL, 1.0f},
        {"ln1.g", 1, {BC}, RLAB_INIT_ONE, 0},
        {"ln1.b", 1, {BC}, RLAB_INIT_ZERO, 0},
        {"wq", 2, {BC, BC}, RLAB_INIT_XAVIER, 0},
        {"wk", 2, {BC, BC}, RLAB_INIT_XAVIER, 0},
        {"wv", 2, {BC, BC}, RLAB_INIT_XAVIER, 0},
        {"wo", 2, {BC, BC}, RLAB_INIT_XAVIER, 0},
        {"ln2.g", 1, {BC}, RLAB_INIT_ONE, 0},
        {"ln2.b", 1, {BC}, RLAB_INIT_ZERO, 0},
        {"w1", 2, {BC, BC}, RLAB_INIT_XAVIER, 0},
        {"b1", 1, {BC}, RLAB_INIT_ZERO, 0},
        {"w2", 2, {BC, BC}, RLAB_INIT_XAVIER, 0},
        {"b2", 1, {BC}, RLAB_INIT_ZERO, 0},
    };
    rlab_rng rng;
    rlab_rng_seed(&rng, 2);
    rlab_err err = {0};
    rlab_params *P = rlab_params_new(specs, (int)(sizeof specs / sizeof specs[0]), &rng, &err);
    rlab_tape *t = rlab_tape_new((size_t)512 << 20, 256, &err);
    float *ones = malloc((size_t)N * BC * sizeof *ones);
    if (!P || !t || !ones) {
        fprintf(stderr, "bench_tensor: %s\n", err.msg);
        exit(1);
    }
    for (int64_t i = 0; i < N * BC; i++)
        ones[i] = 1.0f;
    timers *tm = calloc((size_t)reps + 1, sizeof *tm);
    double *dts = malloc(((size_t)reps + 1) * sizeof *dts);
    if (!tm || !dts) {
        fprintf(stderr, "bench_tensor: out of memory\n");
        exit(1);
    }
    block_step(t, P, ones, &tm[reps]); /* warm-up */
#ifdef _OPENMP
    const int nthreads = omp_get_max_threads();
#else
    const int nthreads = 1;
#endif
    double best = 1e30, best_cpu = 1e30;
    double *idle = malloc(((size_t)reps + 1) * sizeof *idle);
    if (!idle) {
        fprintf(stderr, "bench_tensor: out of memory\n");
        exit(1);
    }
    for (int r = 0; r < reps; r++) {
        const double c0 = process_cpu(), o0 = thread_cpu();
        dts[r] = block_step(t, P, ones, &tm[r]);
        const double cpu = process_cpu() - c0;
        idle[r] = nthreads * (thread_cpu() - o0) - cpu;
        best = dts[r] < best ? dts[r] : best;
        best_cpu = cpu < best_cpu ? cpu : best_cpu;
    }
    const double flops = 36.0 * N * BC * BC + 12.0 * BB * (double)BT * BT * BC;
    const double med = median(dts, reps);
    /* per CPU-second of all threads against one thread's sgemm per CPU-second: the share of
     * the machine's multiply rate the block gets from the CPU time it burns */
    emit("block.gflops_per_cpu_s", flops / best_cpu / 1e9, "GFLOP/s", peak_cpu);
    emit("block.peak_fraction_cpu", flops / best_cpu / 1e9 / peak_cpu, "ratio", 0.6);
    emit("block.gflops", flops / best / 1e9, "GFLOP/s", peak);
    emit("block.peak_fraction", flops / best / 1e9 / peak, "ratio", 0.6);
    emit("block.ms", best * 1e3, "ms", 0);
    emit("block.gflops.median", flops / med / 1e9, "GFLOP/s", peak);
    emit("block.peak_fraction.median", flops / med / 1e9 / peak, "ratio", 0.6);
    emit("block.ms.median", med * 1e3, "ms", 0);
    /* every step records the call sites in the same order, so slot i is the same site */
    char name[96];
    for (int i = 0; i < tm[0].n; i++) {
        for (int r = 0; r < reps; r++)
            dts[r] = tm[r].fwd[i];
        snprintf(name, sizeof name, "block.ms.%s.fwd", tm[0].name[i]);
        emit(name, median(dts, reps) * 1e3, "ms", 0);
        for (int r = 0; r < reps; r++)
            dts[r] = tm[r].bwd[i];
        snprintf(name, sizeof name, "block.ms.%s.bwd", tm[0].name[i]);
        emit(name, median(dts, reps) * 1e3, "ms", 0);
    }
    /* the same per site in CPU time of all threads (steadier on a shared machine) */
    for (int i = 0; i < tm[0].n; i++) {
        for (int r = 0; r < reps; r++)
            dts[r] = tm[r].fwd_cpu[i];
        snprintf(name, sizeof name, "block.cpu_ms.%s.fwd", tm[0].name[i]);
        emit(name, median(dts, reps) * 1e3, "ms", 0);
        for (int r = 0; r < reps; r++)
            dts[r] = tm[r].bwd_cpu[i];
        snprintf(name, sizeof name, "block.cpu_ms.%s.bwd", tm[0].name[i]);
        emit(name, median(dts, reps) * 1e3, "ms", 0);
    }
    /* the other threads' idle CPU-ms while the calling thread runs (serial code, waits at a
     * region's end): threads x the caller's CPU time - all threads' */
    emit("block.idle_ms", median(idle, reps) * 1e3, "ms", 0);
    for (int i = 0; i < tm[0].n; i++) {
        for (int r = 0; r < reps; r++)
            dts[r] = nthreads * tm[r].fwd_one[i] - tm[r].fwd_cpu[i];
        snprintf(name, sizeof name, "block.idle_ms.%s.fwd", tm[0].name[i]);
        emit(name, median(dts, reps) * 1e3, "ms", 0);
        for (int r = 0; r < reps; r++)
            dts[r] = nthreads * tm[r].bwd_one[i] - tm[r].bwd_cpu[i];
        snprintf(name, sizeof name, "block.idle_ms.%s.bwd", tm[0].name[i]);
        emit(name, median(dts, reps) * 1e3, "ms", 0);
    }
    free(idle);
    free(tm);
    free(dts);
    free(ones);
    rlab_tape_free(t);
    rlab_params_free(P);
}

/* ---- the attention kernels alone (no tape), causal, with and without dropout ------------- */
static void bench_attention(int reps, double peak)
{
    const int B = BB, T = BT, C = BC;
    const size_t n = (size_t)B * T * C, na = (size_t)B * T * T;
    float *q = rlab_malloc_aligned(n * 4), *k = rlab_malloc_aligned(n * 4);
    float *v = rlab_malloc_aligned(n * 4), *o = rlab_malloc_aligned(n * 4);
    float *dq = rlab_malloc_aligned(n * 4), *dk = rlab_malloc_aligned(n * 4);
    float *dv = rlab_malloc_aligned(n * 4), *att = rlab_malloc_aligned(na * 4);
    float *scratch = rlab_malloc_aligned(rlab_attention_scratch_floats(T, T) * 4);
    if (!q || !k || !v || !o || !dq || !dk || !dv || !att || !scratch) {
        fprintf(stderr, "bench_tensor: out of memory\n");
        exit(1);
    }
    rlab_rng rng;
    rlab_rng_seed(&rng, 4);
    for (size_t i = 0; i < n; i++)
        q[i] = rlab_rng_normal(&rng), k[i] = rlab_rng_normal(&rng), v[i] = rlab_rng_normal(&rng);
    for (int drop = 0; drop < 2; drop++) {
        const float p = drop ? 0.2f : 0.0f;
        double bf = 1e30, bb = 1e30, cf = 1e30, cb = 1e30;
        for (int r = 0; r <= reps; r++) {
            double t0 = rlab_now(), c0 = process_cpu();
            rlab_attention_forward(o, att, scratch, q, k, v, B, T, T, C, 1, NULL, NULL,
                                   RLAB_ATTN_CAUSAL, p, 99);
            double t1 = rlab_now(), c1 = process_cpu();
            rlab_attention_backward(dq, dk, dv, scratch, o, att, q, k, v, B, T, T, C, 1, NULL,
                                    RLAB_ATTN_CAUSAL, p, 99);
            double t2 = rlab_now(), c2 = process_cpu();
            if (r > 0) { /* r = 0 is the warm-up */
                bf = t1 - t0 < bf ? t1 - t0 : bf;
                bb = t2 - t1 < bb ? t2 - t1 : bb;
                cf = c1 - c0 < cf ? c1 - c0 : cf;
                cb = c2 - c1 < cb ? c2 - c1 : cb;
            }
        }
        const double f = 2.0 * B * (double)T * T * C; /* one of the T x T x C products */
        emit(drop ? "attention.dropout.fwd.gflops" : "attention.fwd.gflops", 2 * f / bf / 1e9,
             "GFLOP/s", peak);
        emit(drop ? "attention.dropout.bwd.gflops" : "attention.bwd.gflops", 4 * f / bb / 1e9,
             "GFLOP/s", peak);
        emit(drop ? "attention.dropout.fwd.gflops_per_cpu_s" : "attention.fwd.gflops_per_cpu_s",
             2 * f / cf / 1e9, "GFLOP/s", 0);
        emit(drop ? "attention.dropout.bwd.gflops_per_cpu_s" : "attention.bwd.gflops_per_cpu_s",
             4 * f / cb / 1e9, "GFLOP/s", 0);
    }
    rlab_free_aligned(q), rlab_free_aligned(k), rlab_free_aligned(v), rlab_free_aligned(o);
    rlab_free_aligned(dq), rlab_free_aligned(dk), rlab_free_aligned(dv);
    rlab_free_aligned(att), rlab_free_aligned(scratch);
}

/* ---- full-item softmax cross-entropy ----------------------------------------------------- */
static void bench_xent(int reps, double peak)
{
    const int64_t N = 6400, V = 12101, C = 64;
    const rlab_param_spec specs[] = {
        {"h", 2, {N, C}, RLAB_INIT_NORMAL, 0.5f},
        {"items", 2, {V, C}, RLAB_INIT_NORMAL, 0.5f},
    };
    rlab_rng rng;
    rlab_rng_seed(&rng, 3);
    rlab_err err = {0};
    rlab_params *P = rlab_params_new(specs, 2, &rng, &err);
    rlab_tape *t = rlab_tape_new((size_t)256 << 20, 64, &err);
    int32_t *tg = malloc((size_t)N * sizeof *tg);
    if (!P || !t || !tg) {
        fprintf(stderr, "bench_tensor: %s\n", err.msg);
        exit(1);
    }
    for (int64_t i = 0; i < N; i++)
        tg[i] = (int32_t)rlab_rng_below(&rng, (uint64_t)V);
    double best = 1e30;
    for (int r = 0; r <= reps; r++) {
        rlab_tape_reset(t);
        rlab_params_zero_grad(P);
        double t0 = rlab_now();
        rlab_tensor *loss = rlab_t_softmax_xent(t, &P->t[0], &P->t[1], NULL, tg, 0);
        if (rlab_tape_backward(t, loss) != RLAB_OK) {
            fprintf(stderr, "bench_tensor: xent: %s\n", rlab_tape_errmsg(t));
            exit(1);
        }
        double dt = rlab_now() - t0;
        if (r > 0 && dt < best) /* r = 0 is the warm-up */
            best = dt;
    }
    double gf = 8.0 * N * V * C / best / 1e9;
    emit("xent.gflops", gf, "GFLOP/s", peak);
    emit("xent.ms", best * 1e3, "ms", 0);
    free(tg);
    rlab_tape_free(t);
    rlab_params_free(P);
}

/* ---- the logits product alone: packed-panel kernel vs cblas_sgemm, one thread ------------- */
/* Timed in this thread's CPU time (one thread: a busy machine then skews the figures less than
 * wall time would): best of reps, alternating cblas_sgemm, the panel kernel with its packing,
 * and the kernel alone with 512-bit and with 256-bit tiles. */
static void bench_logits(int reps)
{
    const int64_t R = 256, V = 12101, C = 64;
    float *h = rlab_malloc_aligned((size_t)(R * C) * sizeof(float));
    float *E = rlab_malloc_aligned((size_t)(V * C) * sizeof(float));
    float *P = rlab_malloc_aligned(rlab_k_panel_floats(V, C) * sizeof(float));
    float *out = rlab_malloc_aligned((size_t)(R * V) * sizeof(float));
    float *mx = rlab_malloc_aligned((size_t)R * sizeof(float));
    if (!h || !E || !P || !out || !mx) {
        fprintf(stderr, "bench_tensor: out of memory\n");
        exit(1);
    }
    rlab_rng rng;
    rlab_rng_seed(&rng, 5);
    for (int64_t i = 0; i < R * C; i++)
        h[i] = rlab_rng_normal(&rng);
    for (int64_t i = 0; i < V * C; i++)
        E[i] = rlab_rng_normal(&rng);
    const int bt = openblas_get_num_threads();
    openblas_set_num_threads(1);
    double bs = 1e30, bp = 1e30, bk = 1e30, b2 = 1e30;
    int have = rlab_k_panel_available();
    for (int r = 0; r <= reps; r++) { /* alternating, r = 0 warms up */
        double t0 = thread_cpu();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)R, (int)V, (int)C, 1.0f, h,
                    (int)C, E, (int)C, 0.0f, out, (int)V);
        double t1 = thread_cpu();
        double tk = t1, t2 = t1, t3 = t1;
        if (have) { /* what a loss call does: pack once, then the kernel on 12-row groups */
            rlab_k_panel_pack(P, E, V, C);
            tk = thread_cpu();
            for (int64_t g = 0; g < R; g += 12)
                rlab_k_panel_logits(out + g * V, V, mx + g, h + g * C, R - g < 12 ? R - g : 12, C,
                                    P, V);
            t2 = thread_cpu();
            const int wide = rlab_k_set_avx512(0);
            for (int64_t g = 0; g < R; g += 12)
                rlab_k_panel_logits(out + g * V, V, mx + g, h + g * C, R - g < 12 ? R - g : 12, C,
                                    P, V);
            rlab_k_set_avx512(wide);
            t3 = thread_cpu();
        }
        if (r > 0) {
            bs = t1 - t0 < bs ? t1 - t0 : bs;
            bp = t2 - t1 < bp ? t2 - t1 : bp;
            bk = t2 - tk < bk ? t2 - tk : bk;
            b2 = t3 - t2 < b2 ? t3 - t2 : b2;
        }
    }
    openblas_set_num_threads(bt);
    const double f = 2.0 * (double)R * (double)V * (double)C;
    emit("logits.sgemm.gflops_per_cpu_s", f / bs / 1e9, "GFLOP/s", 0);
    if (have) { /* with its packing (once per loss call, whatever its rows), and without */
        emit("logits.panel.gflops_per_cpu_s", f / bp / 1e9, "GFLOP/s", f / bs / 1e9);
        emit("logits.panel_kernel_only.gflops_per_cpu_s", f / bk / 1e9, "GFLOP/s", f / bs / 1e9);
        emit("logits.panel_kernel_256bit.gflops_per_cpu_s", f / b2 / 1e9, "GFLOP/s", f / bs / 1e9);
    }
    rlab_free_aligned(h), rlab_free_aligned(E), rlab_free_aligned(P);
    rlab_free_aligned(out), rlab_free_aligned(mx);
}

int main(int argc, char **argv)
{
    /* libgomp reads OMP_WAIT_POLICY and OpenBLAS OPENBLAS_CORETYPE when they load: set them
     * by re-executing (see ui/main.c) */
    if (!getenv("RECLAB_NO_REEXEC")) {
        int again = rlab_t_blas_core_env();
        if (!getenv("OMP_WAIT_POLICY"))
            again |= setenv("OMP_WAIT_POLICY", "passive", 1) == 0;
        if (again)
            execv("/proc/self/exe", argv); /* returns only on failure: go on as we are */
    }
    const char *policy = getenv("OMP_WAIT_POLICY");
    emit("omp_wait_policy_passive", policy && strcmp(policy, "passive") == 0 ? 1 : 0, "bool", 0);
    char core[96];
    snprintf(core, sizeof core, "blas_core.%s", rlab_t_blas_core());
    emit(core, 1, "bool", 0);
    emit("loadavg.start", rlab_bench_load1(), "load", 0);
    int reps = argc > 1 ? atoi(argv[1]) : 5;
    if (reps < 1)
        reps = 1;
#ifdef _OPENMP
    emit("omp_threads", omp_get_max_threads(), "threads", 0);
#else
    emit("omp_threads", 1, "threads", 0);
#endif
    emit("openblas_threads", openblas_get_num_threads(), "threads", 0);
    double peak = bench_sgemm(reps < 3 ? 3 : reps);
    emit("sgemm.gflops", peak, "GFLOP/s", 0);
    double peak_cpu = bench_sgemm_cpu(reps < 3 ? 3 : reps);
    emit("sgemm.gflops_per_cpu_s", peak_cpu, "GFLOP/s", 0);
    const char *only = argc > 2 ? argv[2] : "";
    if (!*only || strcmp(only, "attention") == 0)
        bench_attention(reps, peak);
    if (strcmp(only, "attention") == 0)
        return 0;
    if (!*only || strcmp(only, "block") == 0)
        bench_block(reps, peak, peak_cpu);
    if (!*only || strcmp(only, "logits") == 0)
        bench_logits(reps < 5 ? 5 : reps);
    if (!*only || strcmp(only, "xent") == 0)
        bench_xent(reps < 3 ? reps : 3, peak);
    emit("loadavg.end", rlab_bench_load1(), "load", 0);
    return 0;
}
