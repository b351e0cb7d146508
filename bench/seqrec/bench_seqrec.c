/*
 * bench/seqrec/bench_seqrec.c: speed and memory of SASRec (2 blocks, d 64, maxlen 50, batch
 * 128, full softmax CE) and MQSA-TED (official defaults) on Beauty. JSON lines:
 *   {"bench": "seqrec", "metric": "sasrec.epoch_seconds", "value": ..., "unit": "s", ...}
 * for each model: seconds per training epoch (mean over `epochs` epochs, default 2), the
 * full-ranking evaluation of all users (valid split) in seconds, and the process peak RSS.
 *
 *     build/bench/bench_seqrec [epochs] [model]      ($RECLAB_DATA must be set)
 */
#include "benchutil.h"
#include "seqrec.h"

#include "data/loaders.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void emit(const char *metric, double v, const char *unit, double target)
{
    printf("{\"bench\": \"seqrec\", \"metric\": \"%s\", \"value\": %.4f, \"unit\": \"%s\", "
           "\"baseline\": %.1f, \"load1\": %.2f}\n",
           metric, v, unit, target, rlab_bench_load1());
    fflush(stdout);
}

int main(int argc, char **argv)
{
    const char *root = getenv("RECLAB_DATA");
    int epochs = argc > 1 ? atoi(argv[1]) : 2;
    const char *only = argc > 2 ? argv[2] : NULL;
    if (!root) {
        fprintf(stderr, "bench_seqrec: set RECLAB_DATA\n");
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
    for (int model = 0; model < 2; model++) {
        const char *mn = model == SEQREC_MQSA ? "mqsa" : "sasrec";
        if (only && strcmp(only, mn))
            continue;
        seqrec_config c = seqrec_config_defaults(model);
        c.epochs = epochs;
        c.eval_every = 1000000; /* evaluate once, at the last epoch */
        c.patience = 0;
        if (model == SEQREC_SASREC) {
            c.blocks = 2;
            c.dim = 64;
            c.maxlen = 50;
            c.batch = 128;
            c.loss = SEQREC_LOSS_CE;
        }
        seqrec_data d;
        if (seqrec_data_build(ds, c.maxlen, &d, &err)) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        seqrec_net *net = seqrec_net_new(&c, d.n_items, &err);
        seqrec_result r;
        if (!net || seqrec_fit(net, &d, NULL, &r, &err)) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        /* fit evaluated valid + test at epoch 1 (and at the last); time one more valid pass */
        double t0 = rlab_now(), c0 = rlab_bench_cpu_seconds();
        rlab_eval_result *ev = seqrec_evaluate(net, &d, 0, &err);
        double te = rlab_now() - t0;
        double tec = rlab_bench_cpu_seconds() - c0;
        if (!ev) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        char m[64];
        snprintf(m, sizeof m, "%s.epoch_seconds", mn);
        emit(m, r.mean_epoch_seconds, "s", model == SEQREC_MQSA ? 20.0 : 10.0);
        /* CPU seconds (all threads) per epoch: less disturbed by a busy machine than wall */
        snprintf(m, sizeof m, "%s.epoch_cpu_seconds", mn);
        emit(m, r.mean_epoch_cpu_seconds, "s", 0.0);
        /* wall seconds of the last epoch by phase (seqrec_result.profile): the model's forward
         * with the CE (forward and backward, chunk by chunk), the model's backward, TED, the
         * teacher rows of TED, L2 and Adam */
        static const char *const ph[5] = {"forward_ce", "model_backward", "ted", "teacher_fill",
                                          "l2_adam"};
        for (int k = 0; k < 5; k++) {
            if (model != SEQREC_MQSA && (k == 2 || k == 3))
                continue;
            snprintf(m, sizeof m, "%s.last_epoch.%s_seconds", mn, ph[k]);
            emit(m, r.profile[k], "s", 0.0);
        }
        snprintf(m, sizeof m, "%s.eval_seconds_%lld_users", mn, (long long)ev->n_users);
        emit(m, te, "s", 3.0);
        snprintf(m, sizeof m, "%s.eval_cpu_seconds", mn);
        emit(m, tec, "s", 0.0);
        snprintf(m, sizeof m, "%s.tape_peak_mb", mn);
        emit(m, (double)r.tape_peak / (1024.0 * 1024.0), "MB", 0.0);
        snprintf(m, sizeof m, "%s.peak_rss_mb", mn);
        emit(m, rlab_bench_peak_rss_mb(), "MB", 400.0);
        rlab_eval_result_free(ev);
        seqrec_net_free(net);
        seqrec_data_clear(&d);
    }
    rlab_dataset_free(ds);
    return 0;
}
