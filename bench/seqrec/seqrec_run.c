/*
 * bench/seqrec/seqrec_run.c: train one SASRec / MQSA-TED configuration from the command line
 * (for long background runs and faithfulness tables), on the core training loop exactly as
 * `train mqsa` runs it in the shell.
 *
 *     build/bench/seqrec_run model=mqsa data=$RECLAB_DATA/amazon-beauty/Beauty.txt \
 *         epochs=200 patience=20 seed=1 [any field of `help train mqsa` ...]
 *
 * data= a file/folder for rlab_data_load, or "demo". Prints one line per epoch (stderr) and
 * a final JSON line (stdout) with the kept epoch's valid and test metrics.
 */
#include "seqrec.h"

#include "data/loaders.h"
#include "data/world.h"

#include <stdio.h>
#include <string.h>

static void log_line(void *ud, const char *line)
{
    (void)ud;
    fprintf(stderr, "%s\n", line);
}

static void print_metrics(const rlab_fit_result *r, const double *v)
{
    static const char *const names[] = {"hr@5", "hr@10", "hr@20", "ndcg@5", "ndcg@10", "ndcg@20"};
    for (int m = 0; m < 6; m++) {
        double x = -1;
        for (int i = 0; i < r->n_metrics; i++)
            if (!strcmp(r->names[i], names[m]))
                x = v[i];
        printf("%s\"%s\": %.5f", m ? ", " : "", names[m], x);
    }
}

int main(int argc, char **argv)
{
    rlab_err err = {0};
    const char *data = NULL;
    int model = SEQREC_MQSA;
    for (int i = 1; i < argc; i++)
        if (!strncmp(argv[i], "model=", 6))
            model = !strcmp(argv[i] + 6, "sasrec") ? SEQREC_SASREC : SEQREC_MQSA;
    seqrec_config c = seqrec_config_defaults(model);
    rlab_fit_opts o;
    memset(&o, 0, sizeof o);
    rlab_config_defaults(rlab_fit_fields,
                         model == SEQREC_MQSA ? seqrec_mqsa_defaults : seqrec_sasrec_defaults, &o,
                         NULL);
    for (int i = 1; i < argc; i++) {
        char key[64];
        const char *eq = strchr(argv[i], '=');
        if (!eq || (size_t)(eq - argv[i]) >= sizeof key) {
            fprintf(stderr, "bad argument %s (key=value)\n", argv[i]);
            return 2;
        }
        memcpy(key, argv[i], (size_t)(eq - argv[i]));
        key[eq - argv[i]] = '\0';
        if (!strcmp(key, "model"))
            continue;
        if (!strcmp(key, "data")) {
            data = eq + 1;
            continue;
        }
        int rc = rlab_config_find(rlab_fit_fields, key)
                     ? rlab_config_set(rlab_fit_fields, &o, key, eq + 1, &err)
                     : rlab_config_set(seqrec_fields, &c, key, eq + 1, &err);
        if (rc) {
            fprintf(stderr, "%s\n", err.msg);
            return 2;
        }
    }
    if (!data) {
        fprintf(stderr, "usage: seqrec_run model=sasrec|mqsa data=PATH|demo [key=value ...]\n");
        return 2;
    }
    rlab_dataset *ds = NULL;
    if (!strcmp(data, "demo")) {
        rlab_world *w = NULL;
        if (rlab_world_demo(&w, &ds, &err)) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        rlab_world_free(w);
    } else if (rlab_data_load(data, NULL, NULL, &ds, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    rlab_view *v = NULL;
    rlab_view_opts vo = {.split = o.split, .valid_frac = o.valid_frac, .test_frac = o.test_frac};
    if (rlab_view_new(ds, &vo, &v, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    c.model = model;
    c.seed = (uint64_t)o.seed;
    char cfgs[400];
    seqrec_config_str(&c, cfgs, sizeof cfgs);
    fprintf(stderr, "%s on %s: %d users %d items\n", cfgs, ds->name, v->n_users, v->n_items);
    rlab_fit fit = {.view = v,
                    .cfg = &c,
                    .opts = &o,
                    .kind = model == SEQREC_MQSA ? "mqsa" : "sasrec",
                    .log = log_line};
    rlab_fit_result r;
    rlab_model *m = rlab_fit_run(&seqrec_fit_ops, &fit, &r, &err);
    if (!m) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    printf("{\"config\": \"%s\", \"data\": \"%s\", \"protocol\": \"%s\", \"best_epoch\": %d, "
           "\"epochs_run\": %d, \"epoch_seconds\": %.3f, \"valid\": {",
           cfgs, ds->name, r.protocol, r.best_epoch, r.epochs_run,
           r.epochs_run ? r.seconds / r.epochs_run : 0.0);
    print_metrics(&r, r.valid);
    printf("}, \"test\": {");
    print_metrics(&r, r.test);
    printf("}}\n");
    rlab_model_release(m);
    rlab_view_free(v);
    rlab_dataset_free(ds);
    return 0;
}
