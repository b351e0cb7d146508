/*
 * Timing of one rlab_t_softmax_xent forward+backward at SASRec / ML-1M scale (not a ctest).
 *
 *     build/tests/time_softmax_xent [N V C chunk reps keep] (defaults 6400 12101 64 256 3 2)
 *
 * keep = 1 lets the op keep [nv, V] for the backward when it fits the 512 MB arena (3 sgemm
 * passes), 0 forces the chunk buffer and the recompute (4 passes), 2 also allows the fused
 * mode (item blocks, no sgemm; rlab_t_loss_set_fused) where it applies.
 *
 * Prints the best forward, backward and total times, and the time of the same four sgemm
 * calls alone (forward logits, backward recompute, dh, d_items) as the lower bound, and the
 * mean CPU seconds (all threads) of each, which a busy machine disturbs less than wall time.
 */
#include "tensor/loss.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

/* user + system CPU seconds of this process (all threads): robust to a busy machine */
static double cpu_now(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec +
           (double)ru.ru_stime.tv_sec + 1e-6 * (double)ru.ru_stime.tv_usec;
}

int main(int argc, char **argv)
{
    const int64_t N = argc > 1 ? atoll(argv[1]) : 6400, V = argc > 2 ? atoll(argv[2]) : 12101,
                  C = argc > 3 ? atoll(argv[3]) : 64, chunk = argc > 4 ? atoll(argv[4]) : 256;
    const int reps = argc > 5 ? atoi(argv[5]) : 3;
    const int keep = argc > 6 ? atoi(argv[6]) : 2;
    rlab_t_loss_set_keep(keep > 0);
    rlab_t_loss_set_fused(keep > 1);
    rlab_err err = {0};
    rlab_rng rng;
    rlab_rng_seed(&rng, 1);
    rlab_param_spec specs[2] = {{"h", 2, {N, C}, RLAB_INIT_NORMAL, 0.5f},
                                {"items", 2, {V, C}, RLAB_INIT_NORMAL, 0.5f}};
    rlab_params *P = rlab_params_new(specs, 2, &rng, &err);
    rlab_tape *t = rlab_tape_new((size_t)512 << 20, 64, &err);
    int32_t *tg = malloc((size_t)N * sizeof *tg);
    if (!P || !t || !tg) {
        fprintf(stderr, "setup: %s\n", err.msg);
        return 1;
    }
    for (int64_t i = 0; i < N; i++)
        tg[i] = i % 10 == 9 ? -1 : (int32_t)rlab_rng_below(&rng, (uint64_t)V);
    double best_f = 1e9, best_b = 1e9, cpu_op = 0.0, cpu_g = 0.0;
    float loss = 0.0f;
    for (int r = 0; r < reps; r++) {
        rlab_tape_reset(t);
        rlab_params_zero_grad(P);
        double c0 = cpu_now(), t0 = rlab_now();
        rlab_tensor *L = rlab_t_softmax_xent(t, &P->t[0], &P->t[1], NULL, tg, chunk);
        double t1 = rlab_now();
        rlab_tape_backward(t, L);
        double t2 = rlab_now();
        cpu_op += (cpu_now() - c0) / reps;
        if (rlab_tape_error(t)) {
            fprintf(stderr, "error: %s\n", rlab_tape_errmsg(t));
            return 1;
        }
        loss = L->data[0];
        best_f = t1 - t0 < best_f ? t1 - t0 : best_f;
        best_b = t2 - t1 < best_b ? t2 - t1 : best_b;
    }
    /* the same sgemm shapes alone, on all N rows (upper bound of the valid rows) */
    int64_t nv = 0;
    for (int64_t i = 0; i < N; i++)
        nv += tg[i] >= 0;
    float *buf = malloc((size_t)(chunk * V) * sizeof *buf), *dh = malloc((size_t)(chunk * C) * 4);
    double best_g = 1e9;
    for (int r = 0; r < reps; r++) {
        double cg = cpu_now(), t0 = rlab_now();
        for (int64_t c0 = 0; c0 < nv; c0 += chunk) {
            int rr = (int)(nv - c0 < chunk ? nv - c0 : chunk);
            for (int k = 0; k < 2; k++)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rr, (int)V, (int)C, 1.0f,
                            P->t[0].data, (int)C, P->t[1].data, (int)C, 0.0f, buf, (int)V);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rr, (int)C, (int)V, 1.0f, buf,
                        (int)V, P->t[1].data, (int)C, 0.0f, dh, (int)C);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)V, (int)C, rr, 1.0f, buf,
                        (int)V, P->t[0].data, (int)C, 1.0f, P->t[1].grad, (int)C);
        }
        double t1 = rlab_now();
        cpu_g += (cpu_now() - cg) / reps;
        best_g = t1 - t0 < best_g ? t1 - t0 : best_g;
    }
    double gflop = 8.0 * (double)nv * (double)V * (double)C * 1e-9;
    printf("softmax_xent N=%lld (valid %lld) V=%lld C=%lld chunk=%lld threads=%d keep=%d: loss "
           "%.4f\n",
           (long long)N, (long long)nv, (long long)V, (long long)C, (long long)chunk,
           rlab_t_num_threads(), argc > 6 ? atoi(argv[6]) : 1, (double)loss);
    printf("forward %.3f s, backward %.3f s, total %.3f s (%.1f GFLOP/s); 4 sgemms alone %.3f s "
           "(%.1f GFLOP/s); peak arena %.1f MB\n",
           best_f, best_b, best_f + best_b, gflop / (best_f + best_b), best_g, gflop / best_g,
           (double)rlab_tape_peak(t) / (1 << 20));
    printf("cpu seconds per forward+backward %.3f, per 4 sgemms %.3f\n", cpu_op, cpu_g);
    free(buf);
    free(dh);
    free(tg);
    rlab_tape_free(t);
    rlab_params_free(P);
    return 0;
}
