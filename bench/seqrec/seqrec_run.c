/*
 * bench/seqrec/seqrec_run.c: train one SASRec / MQSA-TED configuration from the command line
 * (for long background runs and faithfulness tables).
 *
 *     build/bench/seqrec_run model=mqsa data=$RECLAB_DATA/amazon-beauty/Beauty.txt \
 *         epochs=200 patience=20 seed=1 [any seqrec_config_set key=value ...]
 *
 * data= a file/folder for rlab_data_load, or "demo". Prints one line per epoch (stderr) and
 * a final JSON line (stdout) with the selected epoch's valid/test metrics.
 */
#include "seqrec.h"

#include "data/loaders.h"
#include "data/world.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    rlab_err err = {0};
    const char *data = NULL;
    int model = SEQREC_MQSA;
    for (int i = 1; i < argc; i++)
        if (!strncmp(argv[i], "model=", 6))
            model = !strcmp(argv[i] + 6, "sasrec") ? SEQREC_SASREC : SEQREC_MQSA;
    seqrec_config c = seqrec_config_defaults(model);
    c.verbose = 1;
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
        if (seqrec_config_set(&c, key, eq + 1, &err)) {
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
    seqrec_data d;
    if (seqrec_data_build(ds, c.maxlen, &d, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    char cfgs[400];
    seqrec_config_str(&c, cfgs, sizeof cfgs);
    fprintf(stderr, "%s on %s: %d users %d items\n", cfgs, ds->name, d.n_users, d.n_items);
    seqrec_net *net = seqrec_net_new(&c, d.n_items, &err);
    if (!net) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    seqrec_result r;
    int rc = seqrec_fit(net, &d, NULL, &r, &err);
    if (rc) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    printf("{\"config\": \"%s\", \"data\": \"%s\", \"protocol\": \"%s\", \"best_epoch\": %d, "
           "\"epochs_run\": %d, \"epoch_seconds\": %.3f, \"valid\": {",
           cfgs, ds->name, r.protocol, r.best_epoch, r.epochs_run, r.mean_epoch_seconds);
    for (int m = 0; m < SEQREC_NM; m++)
        printf("%s\"%s\": %.5f", m ? ", " : "", seqrec_metric_names[m], r.best_valid[m]);
    printf("}, \"test\": {");
    for (int m = 0; m < SEQREC_NM; m++)
        printf("%s\"%s\": %.5f", m ? ", " : "", seqrec_metric_names[m], r.best_test[m]);
    printf("}}\n");
    seqrec_net_free(net);
    seqrec_data_clear(&d);
    rlab_dataset_free(ds);
    return 0;
}
