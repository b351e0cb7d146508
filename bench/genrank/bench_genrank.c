/*
 * bench/genrank: OneRec at the plugin's default size (d 64, 2+2 blocks, 4 experts top-2,
 * history 50, sessions of m = 5 items) on a synthetic catalogue of ML-100K's size (1682
 * items, 3 levels x 32 codes + a de-duplication digit, random histories).
 *
 *   bench/run genrank [steps [searches]]
 *
 * train_tokens_per_s   decoder target tokens (batch 128 x m * Lt) per second of Adam steps
 * train_samples_per_s  the same in (history, session) samples
 * beam_sessions_per_s  sessions returned per second by the trie-constrained beam (width 20)
 *                      with the decoder's KV cache
 * beam_searches_per_s  beam searches (one history each) per second, with the cache
 * beam_sessions_per_s_nocache  the same beams re-running the full decoder at every step
 * beam_cache_speedup   time without / with the cache, the two interleaved search by search
 * rank_users_per_s     full-catalogue rankings (score_all: point-wise beam + first level)
 * No baseline: "baseline" is 0 (the first measurement is the reference).
 */
#include "benchutil.h"
#include "genrank.h"

#include "tensor/optim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void emit(const char *metric, double v, const char *unit)
{
    printf("{\"bench\": \"genrank\", \"metric\": \"%s\", \"value\": %.4f, \"unit\": \"%s\", "
           "\"baseline\": 0, \"load1\": %.2f}\n",
           metric, v, unit, rlab_bench_load1());
    fflush(stdout);
}

int main(int argc, char **argv)
{
    const int steps = argc > 1 ? atoi(argv[1]) : 5;
    const int searches = argc > 2 ? atoi(argv[2]) : 20;
    const int N = 1682, Lt = 4, B = 128;
    rlab_err err = {0};
    genrank_cfg c;
    memset(&c, 0, sizeof c);
    if (rlab_config_defaults(genrank_fields, genrank_onerec_defaults, &c, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    c.seed = 1;
    c.batch = B;
    int32_t *codes = malloc((size_t)N * Lt * sizeof *codes);
    for (int i = 0; i < N; i++) { /* balanced, like brkmeans: a bijection onto 32x32x2 slots */
        codes[i * Lt] = i % 32;
        codes[i * Lt + 1] = (i / 32) % 32;
        codes[i * Lt + 2] = (i * 7) % 32;
        codes[i * Lt + 3] = i / 1024;
    }
    genrank_net *net = genrank_net_new(&c, codes, N, Lt, &err);
    free(codes);
    if (!net) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    rlab_rng rng;
    rlab_rng_seed(&rng, 3);
    int32_t *hist = malloc((size_t)B * c.maxlen * sizeof *hist);
    int32_t *items = malloc((size_t)B * c.session * sizeof *items);
    for (int i = 0; i < B * c.maxlen; i++)
        hist[i] = (int32_t)rlab_rng_below(&rng, N);
    for (int i = 0; i < B * c.session; i++)
        items[i] = (int32_t)rlab_rng_below(&rng, N);
    rlab_tape *t = rlab_tape_new(genrank_arena_bytes(&c, N, B), 16384, &err);
    rlab_opt_config oc = rlab_opt_defaults(RLAB_OPT_ADAM);
    rlab_opt *opt = t ? rlab_opt_new(net->P, &oc, &err) : NULL;
    if (!opt) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    double t0 = 0.0;
    for (int s = 0; s <= steps; s++) {
        if (s == 1)
            t0 = rlab_now(); /* step 0 warms the arena up */
        rlab_tape_reset(t);
        rlab_tape_set_training(t, 1);
        rlab_params_zero_grad(net->P);
        rlab_tensor *L = genrank_ntp_loss(net, t, hist, items, B, NULL);
        if (rlab_tape_error(t) || rlab_tape_backward(t, L) || rlab_opt_step(opt, net->P)) {
            fprintf(stderr, "step: %s\n", rlab_tape_errmsg(t));
            return 1;
        }
    }
    const double dt = rlab_now() - t0;
    emit("train_tokens_per_s", (double)steps * B * c.session * Lt / dt, "tokens/s");
    emit("train_samples_per_s", (double)steps * B / dt, "samples/s");
    /* with and without the decoder's KV cache, interleaved search by search so that both see
     * the same machine load; the ratio is the figure to compare across runs */
    double dt_c[2] = {0.0, 0.0};
    int64_t sessions[2] = {0, 0};
    for (int s = 0; s < searches; s++)
        for (int v = 0; v < 2; v++) {
            const int cache = (s + v) % 2 == 0; /* alternate which one goes first */
            genrank_beam_out bo;
            const int32_t *h = hist + (size_t)(s % B) * c.maxlen;
            const double t1 = rlab_now();
            if (genrank_beam_ex(net, h, c.maxlen, h, c.maxlen, c.beam, c.session, 1,
                                cache ? 0u : GENRANK_BEAM_NO_CACHE, &bo, &err)) {
                fprintf(stderr, "%s\n", err.msg);
                return 1;
            }
            dt_c[cache] += rlab_now() - t1;
            sessions[cache] += bo.W;
            genrank_beam_out_clear(&bo);
        }
    emit("beam_sessions_per_s", (double)sessions[1] / dt_c[1], "sessions/s");
    emit("beam_searches_per_s", (double)searches / dt_c[1], "searches/s");
    emit("beam_sessions_per_s_nocache", (double)sessions[0] / dt_c[0], "sessions/s");
    emit("beam_cache_speedup", dt_c[0] / dt_c[1], "x");
    float *sc = malloc((size_t)N * sizeof *sc);
    double t2 = rlab_now();
    for (int s = 0; s < searches; s++)
        if (genrank_rank_scores(net, hist + (size_t)(s % B) * c.maxlen, c.maxlen, sc, &err)) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
    emit("rank_users_per_s", (double)searches / (rlab_now() - t2), "users/s");
    emit("peak_rss", rlab_bench_peak_rss_mb(), "MB");
    free(sc);
    free(hist);
    free(items);
    rlab_opt_free(opt);
    rlab_tape_free(t);
    genrank_net_free(net);
    return 0;
}
