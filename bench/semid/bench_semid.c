/*
 * bench/semid/bench_semid.c: speed of the semantic-ID tokenizers (plugins/semid) on Amazon
 * Beauty (12,101 items; content = brand + categories + title TF-IDF, 128 dims). JSON lines
 *   {"bench": "semid", "metric": "rqvae.epoch_seconds", "value": ..., "unit": "s", ...}
 *   rkmeans.items_per_second    residual k-means, 3 levels x 64 codes, 25 iterations: items
 *                               over the wall time of the whole fit
 *   brkmeans.items_per_second   the balanced variant (OneRec Algorithm 1)
 *   rqvae.epoch_seconds         one RQ-VAE training epoch (batch 256, hidden 128, latent 32),
 *                               mean over `epochs` epochs (default 2)
 *   rqvae.encode_items_per_second  content -> codes with the trained RQ-VAE (semid_encode)
 *   das.step_seconds            one DAS one-stage step (256 interactions, both quantisers,
 *                               CF two-tower, six InfoNCE views), mean over 50 steps
 * Single-threaded BLAS is the caller's choice (OPENBLAS_NUM_THREADS); the 1-minute load
 * average is printed with every line.
 *
 *     build/bench/bench_semid [epochs]      ($RECLAB_DATA must be set)
 */
#include "benchutil.h"
#include "semid.h"

#include "data/loaders.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void emit(const char *metric, double v, const char *unit)
{
    printf("{\"bench\": \"semid\", \"metric\": \"%s\", \"value\": %.4f, \"unit\": \"%s\", "
           "\"baseline\": null, \"load1\": %.2f}\n",
           metric, v, unit, rlab_bench_load1());
    fflush(stdout);
}

static semid_cfg config(void)
{
    return (semid_cfg){.levels = 3,
                       .codes = 64,
                       .iters = 25,
                       .tok_dim = 64,
                       .text_dim = 64,
                       .text_weight = 0.5f,
                       .hidden = 128,
                       .latent = 32,
                       .batch = 256,
                       .lr = 1e-3,
                       .beta = 0.25f,
                       .restart = 1,
                       .align = SEMID_ALIGN_JOINT,
                       .alpha = 1,
                       .align_beta = 0.5f,
                       .temp = 0.1f,
                       .w_unbiased = 1,
                       .w_pop = 1,
                       .w_orth = 1,
                       .steps = 50,
                       .views = "123456"};
}

static rlab_model *fit(const rlab_fit_ops *ops, const rlab_view *v, const rlab_dataset *ds,
                       semid_cfg *c, int epochs, rlab_fit_result *res)
{
    rlab_fit_opts o = {.epochs = epochs, .seed = 1};
    rlab_fit f = {.view = v, .cfg = c, .opts = &o, .kind = "bench", .data = ds};
    rlab_err err = {0};
    rlab_model *m = rlab_fit_run(ops, &f, res, &err);
    if (!m)
        fprintf(stderr, "bench_semid: %s\n", err.msg);
    return m;
}

int main(int argc, char **argv)
{
    const char *root = getenv("RECLAB_DATA");
    const int epochs = argc > 1 ? atoi(argv[1]) : 2;
    if (!root) {
        fprintf(stderr, "bench_semid: set RECLAB_DATA\n");
        return 77;
    }
    char path[1024];
    snprintf(path, sizeof path, "%s/amazon-beauty/Beauty.txt", root);
    rlab_err err = {0};
    rlab_dataset *ds = NULL;
    if (rlab_data_load(path, NULL, NULL, &ds, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    rlab_view_opts vo = rlab_view_defaults();
    rlab_view *v = NULL;
    if (rlab_view_new(ds, &vo, &v, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    const double N = (double)v->n_items;
    rlab_fit_result res;
    int rc = 0;
    for (int b = 0; b < 2 && !rc; b++) {
        semid_cfg c = config();
        double t0 = rlab_now();
        rlab_model *m = fit(b ? &semid_brkmeans_fit : &semid_rkmeans_fit, v, ds, &c, 1, &res);
        double dt = rlab_now() - t0;
        rc = !m;
        if (m)
            emit(b ? "brkmeans.items_per_second" : "rkmeans.items_per_second", N / dt, "items/s");
        rlab_model_release(m);
    }
    semid_cfg c = config();
    rlab_model *m = rc ? NULL : fit(&semid_rqvae_fit, v, ds, &c, epochs, &res);
    rc = !m;
    if (m) {
        emit("rqvae.epoch_seconds", res.seconds / (double)res.epochs_run, "s");
        const semid_tok *t = semid_tok_of(m);
        float *X = NULL;
        int32_t D = 0;
        rlab_content_opts co = rlab_content_defaults();
        int32_t *codes = NULL;
        if (rlab_item_content(ds, &co, &X, &D, &err) == 0 &&
            (codes = malloc((size_t)v->n_items * 3 * sizeof *codes))) {
            double t0 = rlab_now();
            rc = semid_encode(t, X, v->n_items, codes, &err);
            double dt = rlab_now() - t0;
            if (!rc)
                emit("rqvae.encode_items_per_second", N / dt, "items/s");
        } else
            rc = 1;
        free(codes);
        rlab_free(X);
        rlab_model_release(m);
    }
    c = config();
    m = rc ? NULL : fit(&semid_das_fit, v, ds, &c, 1, &res);
    if (m)
        emit("das.step_seconds", res.seconds / (double)c.steps, "s");
    rc = rc || !m;
    rlab_model_release(m);
    emit("peak_rss", rlab_bench_peak_rss_mb(), "MB");
    rlab_view_free(v);
    rlab_dataset_free(ds);
    return rc ? 1 : 0;
}
