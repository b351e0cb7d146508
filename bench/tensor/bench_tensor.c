/*
 * bench/tensor: throughput of the tensor core, one JSON line per measurement.
 *
 *   sgemm.gflops        cblas_sgemm at n = 2048 (2 n^3 flops, best of REPS): the machine's
 *                       measured peak, used as the baseline of the others
 *   block.gflops        one transformer block forward + backward at SASRec size (batch 128,
 *                       length 200, width 64, 1 head, causal, attention dropout 0.2): LN, Q/K/V
 *                       projections, fused attention, output projection, residual, LN, FFN
 *                       64 -> 64 -> 64 with ReLU, residual. Counted flops: the matmuls
 *                       (2 N C^2 each forward, twice that backward) and attention's Q K^T and
 *                       P V (2 B T^2 C each forward; dV, dP, dQ, dK backward), dense, i.e.
 *                       36 N C^2 + 12 B T^2 C with N = B T. Elementwise work is not counted.
 *   block.peak_fraction block.gflops / sgemm.gflops
 *   block.ms.<op>.<fwd|bwd>  where the block's time goes (per op, best iteration)
 *   xent.gflops         full-item softmax cross-entropy (6,400 rows, 12,101 items, width 64)
 *                       forward + backward; counted: 2 N V C forward and 6 N V C backward
 *                       (logits recomputed, then dH and dItems), as executed
 *
 * Threads: OpenBLAS from OPENBLAS_NUM_THREADS, OpenMP from OMP_NUM_THREADS (both reported).
 *   attention.[dropout.]{fwd,bwd}.gflops  the attention kernels alone at the block's size
 * Usage: bench_tensor [reps [attention]]   (default 5 reps; "attention": kernels only)
 */
#include "tensor/loss.h"
#include "tensor/nn.h"
#include "tensor/ops.h"
#include "tensor/tensor.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* per-op timers: forward time is measured between eager op calls, backward by walking the
 * tape ourselves (the same loop as rlab_tape_backward_from, timed per node) */
#define MAXT 32
typedef struct {
    const char *name[MAXT];
    double fwd[MAXT], bwd[MAXT];
    int n;
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
    return tm->n++;
}

static rlab_tensor *timed(timers *tm, double *t0, rlab_tensor *out)
{
    double t1 = rlab_now();
    tm->fwd[timer_slot(tm, out->op)] += t1 - *t0;
    *t0 = t1;
    return out;
}

static double block_step(rlab_tape *t, rlab_params *P, const float *ones, timers *tm)
{
#define G(name) rlab_params_get(P, name)
    rlab_tape_reset(t);
    double start = rlab_now(), t0 = start;
    rlab_tensor *x = G("x");
    rlab_tensor *h = timed(tm, &t0, rlab_t_layernorm(t, x, G("ln1.g"), G("ln1.b"), 1e-5f));
    rlab_tensor *q = timed(tm, &t0, rlab_t_matmul(t, h, G("wq"), 0, 0));
    rlab_tensor *k = timed(tm, &t0, rlab_t_matmul(t, h, G("wk"), 0, 0));
    rlab_tensor *v = timed(tm, &t0, rlab_t_matmul(t, h, G("wv"), 0, 0));
    rlab_tensor *a =
        timed(tm, &t0, rlab_t_attention(t, q, k, v, 1, NULL, NULL, RLAB_ATTN_CAUSAL, 0.2f));
    a = timed(tm, &t0, rlab_t_matmul(t, a, G("wo"), 0, 0));
    rlab_tensor *x1 = timed(tm, &t0, rlab_t_add(t, x, a));
    h = timed(tm, &t0, rlab_t_layernorm(t, x1, G("ln2.g"), G("ln2.b"), 1e-5f));
    h = timed(tm, &t0, rlab_t_matmul(t, h, G("w1"), 0, 0));
    h = timed(tm, &t0, rlab_t_add(t, h, G("b1")));
    h = timed(tm, &t0, rlab_t_relu(t, h));
    h = timed(tm, &t0, rlab_t_matmul(t, h, G("w2"), 0, 0));
    h = timed(tm, &t0, rlab_t_add(t, h, G("b2")));
    rlab_tensor *y = timed(tm, &t0, rlab_t_add(t, x1, h));
    if (rlab_tape_error(t)) {
        fprintf(stderr, "bench_tensor: block forward: %s\n", rlab_tape_errmsg(t));
        exit(1);
    }
    rlab_params_zero_grad(P);
    t0 = rlab_now();
    for (int64_t i = 0; i < y->n; i++)
        y->grad[i] += ones[i];
    for (size_t i = t->nnodes; i-- > 0;) {
        rlab_tensor *node = t->nodes[i];
        if (node->grad && node->backward) {
            node->backward(t, node);
            double t1 = rlab_now();
            tm->bwd[timer_slot(tm, node->op)] += t1 - t0;
            t0 = t1;
        }
    }
    if (rlab_tape_error(t)) {
        fprintf(stderr, "bench_tensor: block backward: %s\n", rlab_tape_errmsg(t));
        exit(1);
    }
    return rlab_now() - start;
#undef G
}

static void bench_block(int reps, double peak)
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
    timers tm = {0}, best_tm = {0};
    block_step(t, P, ones, &tm); /* warm-up */
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        memset(&tm, 0, sizeof tm);
        double dt = block_step(t, P, ones, &tm);
        if (dt < best) {
            best = dt;
            best_tm = tm;
        }
    }
    const double flops = 36.0 * N * BC * BC + 12.0 * BB * (double)BT * BT * BC;
    double gf = flops / best / 1e9;
    emit("block.gflops", gf, "GFLOP/s", peak);
    emit("block.peak_fraction", gf / peak, "ratio", 0.4);
    emit("block.ms", best * 1e3, "ms", 0);
    char name[96];
    for (int i = 0; i < best_tm.n; i++) {
        snprintf(name, sizeof name, "block.ms.%s.fwd", best_tm.name[i]);
        emit(name, best_tm.fwd[i] * 1e3, "ms", 0);
        snprintf(name, sizeof name, "block.ms.%s.bwd", best_tm.name[i]);
        emit(name, best_tm.bwd[i] * 1e3, "ms", 0);
    }
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
        double bf = 1e30, bb = 1e30;
        for (int r = 0; r <= reps; r++) {
            double t0 = rlab_now();
            rlab_attention_forward(o, att, scratch, q, k, v, B, T, T, C, 1, NULL, NULL,
                                   RLAB_ATTN_CAUSAL, p, 99);
            double t1 = rlab_now();
            rlab_attention_backward(dq, dk, dv, scratch, o, att, q, k, v, B, T, T, C, 1,
                                    RLAB_ATTN_CAUSAL, p, 99);
            double t2 = rlab_now();
            if (r > 0) { /* r = 0 is the warm-up */
                bf = t1 - t0 < bf ? t1 - t0 : bf;
                bb = t2 - t1 < bb ? t2 - t1 : bb;
            }
        }
        const double f = 2.0 * B * (double)T * T * C; /* one of the T x T x C products */
        emit(drop ? "attention.dropout.fwd.gflops" : "attention.fwd.gflops", 2 * f / bf / 1e9,
             "GFLOP/s", peak);
        emit(drop ? "attention.dropout.bwd.gflops" : "attention.bwd.gflops", 4 * f / bb / 1e9,
             "GFLOP/s", peak);
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

int main(int argc, char **argv)
{
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
    const char *only = argc > 2 ? argv[2] : "";
    if (!*only || strcmp(only, "attention") == 0)
        bench_attention(reps, peak);
    if (strcmp(only, "attention") == 0)
        return 0;
    bench_block(reps, peak);
    bench_xent(reps < 3 ? reps : 3, peak);
    return 0;
}
