/*
 * plugins/ranker/plugin.c: the ranker plugin (reclab_ranker.so): multi-task CTR ranking on
 * tabular samples.
 *
 *   ranker.data name=N preset=census path=F [test=F2]      a CTR file by preset
 *   ranker.data name=N path=F map="y:label, *:cat" [sep=, header=true min_fields=0]
 *   ranker.data name=N source=ratings dataset=ml-100k [negatives=1 like_min=4 max_hist=20]
 *   ranker.data name=N source=synth [n=20000 fields=8 users=500]
 *   ranker.data name=N source=labels dataset=D     a dataset's label columns (RecBole .inter)
 *   ranker.train data=N model=infnet [name=M seed=1 epochs=10 dim=16 ...every config field]
 *   ranker.eval model=M [part=test]          per-task AUC, GAUC, log loss, stored per run
 *   ranker.compare data=N [models=infnet,mmoe,dcnv2,sharedbottom seeds=3 epochs=...]
 *   ranker.list                              the loaded tables and trained models
 *
 * Every table is split once when it is loaded (split_seed; by time when it has times, else
 * at random; a `test` file is the test part), so every model of a table sees the same parts.
 */
#include "ranker.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RK_MAX_TABLES 32
#define RK_MAX_MODELS 64

typedef struct rk_data {
    char name[64];
    rlab_tabular *t;
    int64_t *tr, *va, *te;
    int64_t ntr, nva, nte;
    char split[64];
} rk_data;

typedef struct rk_entry {
    char name[64], data[64];
    rk_data *dp; /* the table object it was trained on (kept alive until close, even when a
                    newer table takes its name) */
    rk_model *m;
    rk_metrics valid, test;
    rk_fit_result fit;
} rk_entry;

typedef struct rk_state {
    pthread_mutex_t mu;
    rk_data *data[RK_MAX_TABLES];
    rk_entry *models[RK_MAX_MODELS];
    /* replaced tables and models, freed at close: a running command may still hold one */
    rk_data *gd[256];
    rk_entry *gm[256];
    int ngd, ngm;
} rk_state;

static void data_free(rk_data *d)
{
    if (!d)
        return;
    rlab_tabular_free(d->t);
    rlab_free(d->tr), rlab_free(d->va), rlab_free(d->te);
    rlab_free(d);
}

static void entry_free(rk_entry *e)
{
    if (!e)
        return;
    rk_model_free(e->m);
    rlab_free(e);
}

static int rk_open(rlab_host *host, void **state, rlab_err *err)
{
    (void)host;
    rk_state *s = rlab_calloc(1, sizeof *s);
    if (!s)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    pthread_mutex_init(&s->mu, NULL);
    *state = s;
    return RLAB_OK;
}

static void rk_close(void *state)
{
    rk_state *s = state;
    if (!s)
        return;
    for (int i = 0; i < RK_MAX_TABLES; i++)
        data_free(s->data[i]);
    for (int i = 0; i < RK_MAX_MODELS; i++)
        entry_free(s->models[i]);
    for (int i = 0; i < s->ngd; i++)
        data_free(s->gd[i]);
    for (int i = 0; i < s->ngm; i++)
        entry_free(s->gm[i]);
    pthread_mutex_destroy(&s->mu);
    rlab_free(s);
}

/* Tables and models are never freed while the plugin is open: one replaced by name is kept
 * on a list until close, so a running command that holds it stays valid. */

static int put_data(rk_state *s, rk_data *d, rlab_err *err)
{
    pthread_mutex_lock(&s->mu);
    int slot = -1;
    for (int i = 0; i < RK_MAX_TABLES; i++)
        if (s->data[i] && strcmp(s->data[i]->name, d->name) == 0)
            slot = i;
    if (slot >= 0 && s->ngd < 256)
        s->gd[s->ngd++] = s->data[slot];
    else if (slot >= 0)
        slot = -1;
    else if (slot < 0)
        for (int i = 0; i < RK_MAX_TABLES && slot < 0; i++)
            if (!s->data[i])
                slot = i;
    if (slot < 0) {
        pthread_mutex_unlock(&s->mu);
        data_free(d);
        return rlab_errf(err, RLAB_EINVAL, "too many tables (%d)", RK_MAX_TABLES);
    }
    s->data[slot] = d;
    pthread_mutex_unlock(&s->mu);
    return RLAB_OK;
}

static rk_data *get_data(rk_state *s, const char *name)
{
    rk_data *d = NULL;
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < RK_MAX_TABLES; i++)
        if (s->data[i] && strcmp(s->data[i]->name, name) == 0)
            d = s->data[i];
    pthread_mutex_unlock(&s->mu);
    return d;
}

static int put_model(rk_state *s, rk_entry *e, rlab_err *err)
{
    pthread_mutex_lock(&s->mu);
    int slot = -1;
    for (int i = 0; i < RK_MAX_MODELS; i++)
        if (s->models[i] && strcmp(s->models[i]->name, e->name) == 0)
            slot = i;
    if (slot >= 0 && s->ngm < 256)
        s->gm[s->ngm++] = s->models[slot];
    else if (slot >= 0)
        slot = -1;
    else if (slot < 0)
        for (int i = 0; i < RK_MAX_MODELS && slot < 0; i++)
            if (!s->models[i])
                slot = i;
    if (slot < 0) {
        pthread_mutex_unlock(&s->mu);
        entry_free(e);
        return rlab_errf(err, RLAB_EINVAL, "too many models (%d)", RK_MAX_MODELS);
    }
    s->models[slot] = e;
    pthread_mutex_unlock(&s->mu);
    return RLAB_OK;
}

static rk_entry *get_model(rk_state *s, const char *name)
{
    rk_entry *e = NULL;
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < RK_MAX_MODELS; i++)
        if (s->models[i] && strcmp(s->models[i]->name, name) == 0)
            e = s->models[i];
    pthread_mutex_unlock(&s->mu);
    return e;
}

/* ---- ranker.data ------------------------------------------------------------------------ */
static const char *const sources[] = {"file", "ratings", "synth", "labels", NULL};

/* Read a whole file; NULL with err. */
static char *slurp(const char *path, size_t *n, rlab_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return rlab_errf(err, RLAB_EIO, "%s: cannot open", path), NULL;
    size_t cap = 1 << 16, len = 0;
    char *b = rlab_malloc(cap);
    while (b) {
        if (len == cap) {
            char *nb = rlab_realloc(b, cap * 2);
            if (!nb) {
                rlab_free(b);
                b = NULL;
                break;
            }
            b = nb, cap *= 2;
        }
        size_t k = fread(b + len, 1, cap - len, f);
        if (k == 0)
            break;
        len += k;
    }
    fclose(f);
    if (!b)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory"), NULL;
    *n = len;
    return b;
}

static int data_run(rlab_ctx *ctx, const rlab_args *args)
{
    rk_state *s = rlab_ctx_state(ctx);
    rlab_err *err = rlab_ctx_err(ctx);
    const char *name = rlab_args_str(args, "name");
    int src = rlab_args_choice(args, "source");
    const char *preset = rlab_args_str(args, "preset");
    const char *path = rlab_args_str(args, "path");
    const char *test = rlab_args_str(args, "test");
    uint64_t seed = (uint64_t)rlab_args_int(args, "split_seed");
    double vf = rlab_args_float(args, "valid"), tf = rlab_args_float(args, "test_frac");
    rlab_tabular *t = NULL;
    int64_t ntrain_file = -1;
    int rc = RLAB_OK;
    if (src == 0) {
        if (!path || !*path)
            return rlab_ctx_errorf(ctx, RLAB_EINVAL, "source=file needs path=");
        rlab_tab_spec sp;
        if (preset && *preset) {
            if ((rc = rlab_tab_preset_spec(preset, &sp, err)) != RLAB_OK)
                return rc;
        } else {
            rlab_tab_spec_init(&sp);
            sp.sep =
                strcmp(rlab_args_str(args, "sep"), "tab") == 0 ? "\t" : rlab_args_str(args, "sep");
            sp.header = rlab_args_bool(args, "header");
            sp.min_fields = (int)rlab_args_int(args, "min_fields");
        }
        const char *map = rlab_args_str(args, "map");
        if (map && *map && (rc = rlab_tab_spec_map(&sp, map, err)) != RLAB_OK)
            return rc;
        if (sp.nmap == 0)
            return rlab_ctx_errorf(
                ctx, RLAB_EINVAL, "give preset= (%s) or a column mapping map=", rlab_tab_presets());
        if (test && *test) {
            /* train and test files read as one table (one vocabulary per field): the test
             * file's header line is dropped, its rows follow the training rows */
            rlab_tabular *t1 = NULL;
            if ((rc = rlab_tabular_load(path, &sp, name, &t1, err)) != RLAB_OK)
                return rc;
            ntrain_file = t1->n;
            rlab_tabular_free(t1);
            size_t n1 = 0, n2 = 0;
            char *b1 = slurp(path, &n1, err), *b2 = b1 ? slurp(test, &n2, err) : NULL;
            if (!b1 || !b2) {
                rlab_free(b1);
                return err->code;
            }
            size_t skip = 0;
            if (sp.header)
                while (skip < n2 && b2[skip++] != '\n')
                    ;
            char *all = rlab_malloc(n1 + 1 + n2 - skip + 1);
            if (!all) {
                rlab_free(b1), rlab_free(b2);
                return rlab_ctx_errorf(ctx, RLAB_ENOMEM, "out of memory");
            }
            memcpy(all, b1, n1);
            size_t k = n1;
            if (k && all[k - 1] != '\n')
                all[k++] = '\n';
            memcpy(all + k, b2 + skip, n2 - skip);
            k += n2 - skip;
            char label[256];
            snprintf(label, sizeof label, "%s+%s", path, test);
            rc = rlab_tabular_load_buffer(all, k, &sp, label, &t, err);
            rlab_free(all), rlab_free(b1), rlab_free(b2);
            if (rc)
                return rc;
            snprintf(t->name, sizeof t->name, "%s", name);
            snprintf(t->source, sizeof t->source, "%s (train) + %s (test)", path, test);
        } else if ((rc = rlab_tabular_load(path, &sp, name, &t, err)) != RLAB_OK) {
            return rc;
        }
        if (preset && *preset)
            snprintf(t->preset, sizeof t->preset, "%s", preset);
    } else if (src == 1 || src == 3) {
        const rlab_dataset *ds = rlab_ctx_dataset(ctx, rlab_args_str(args, "dataset"));
        if (!ds)
            return RLAB_ENOTFOUND;
        rlab_tab_mt_opts o;
        rlab_tab_mt_opts_init(&o);
        o.negatives = (int)rlab_args_int(args, "negatives");
        o.like_min = (float)rlab_args_float(args, "like_min");
        o.max_hist = (int)rlab_args_int(args, "max_hist");
        o.seed = (uint64_t)rlab_args_int(args, "seed");
        if ((rc = (src == 1 ? rlab_tabular_from_ratings
                            : rlab_tabular_from_labels)(ds, &o, &t, err)) != RLAB_OK)
            return rc;
    } else {
        if ((rc = rlab_tabular_synth(rlab_args_int(args, "n"), (int)rlab_args_int(args, "fields"),
                                     (int)rlab_args_int(args, "users"),
                                     (uint64_t)rlab_args_int(args, "seed"), &t, err)) != RLAB_OK)
            return rc;
    }
    snprintf(t->name, sizeof t->name, "%s", name);
    rk_data *d = rlab_calloc(1, sizeof *d);
    if (!d) {
        rlab_tabular_free(t);
        return rlab_ctx_errorf(ctx, RLAB_ENOMEM, "out of memory");
    }
    snprintf(d->name, sizeof d->name, "%s", name);
    d->t = t;
    if (ntrain_file >= 0) {
        /* the training file: valid part at random; the test file: test part */
        rlab_tabular sub = *t;
        sub.n = ntrain_file;
        sub.time = NULL;
        int64_t *dummy = NULL, nd = 0;
        rc = rlab_tabular_split(&sub, vf, 0.0, 0, seed, &d->tr, &d->ntr, &d->va, &d->nva, &dummy,
                                &nd, err);
        rlab_free(dummy);
        d->nte = t->n - ntrain_file;
        d->te = rlab_malloc((size_t)(d->nte ? d->nte : 1) * sizeof *d->te);
        if (!rc && !d->te)
            rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
        for (int64_t i = 0; !rc && i < d->nte; i++)
            d->te[i] = ntrain_file + i;
        snprintf(d->split, sizeof d->split, "test file; valid %.2f random", vf);
    } else {
        int by_time = t->time != NULL;
        rc = rlab_tabular_split(t, vf, tf, by_time, seed, &d->tr, &d->ntr, &d->va, &d->nva, &d->te,
                                &d->nte, err);
        snprintf(d->split, sizeof d->split, "%s %.2f/%.2f/%.2f", by_time ? "time" : "random",
                 1.0 - vf - tf, vf, tf);
    }
    if (rc) {
        data_free(d);
        return rc;
    }
    char line[512];
    int k = snprintf(line, sizeof line,
                     "%s: %lld samples (train %lld, valid %lld, test %lld; %s), "
                     "%d token fields, %d numeric, labels",
                     name, (long long)t->n, (long long)d->ntr, (long long)d->nva, (long long)d->nte,
                     d->split, t->nfields, t->nnum);
    for (int j = 0; j < t->nlabels && k > 0 && (size_t)k < sizeof line; j++)
        k += snprintf(line + k, sizeof line - (size_t)k, " %s (%.3f)", t->label_names[j],
                      rlab_tabular_pos_rate(t, j));
    rlab_ctx_printf(ctx, "%s", line);
    rlab_ctx_result_int(ctx, "samples", t->n);
    rlab_ctx_result_int(ctx, "train", d->ntr);
    rlab_ctx_result_int(ctx, "valid", d->nva);
    rlab_ctx_result_int(ctx, "test", d->nte);
    rlab_ctx_result_int(ctx, "labels", t->nlabels);
    rlab_ctx_result_int(ctx, "fields", t->nfields);
    rlab_ctx_result_int(ctx, "numeric", t->nnum);
    return put_data(s, d, err);
}

static const rlab_arg data_args[] = {
    {.name = "name",
     .type = RLAB_ARG_STRING,
     .flags = RLAB_ARGF_REQUIRED | RLAB_ARGF_NEW,
     .help = "name of the table"},
    {.name = "source",
     .type = RLAB_ARG_CHOICE,
     .def = "file",
     .choices = sources,
     .help = "file (CSV/TSV), ratings (a rated dataset: click/like), synth (synthetic world), "
             "labels (a dataset's own label columns, e.g. a RecBole .inter)"},
    {.name = "preset",
     .type = RLAB_ARG_STRING,
     .def = "",
     .help = "criteo, criteo_sample, avazu, census, tiny_mtl"},
    {.name = "path", .type = RLAB_ARG_PATH, .help = "the file (source=file)"},
    {.name = "test", .type = RLAB_ARG_PATH, .help = "a test file of the same format (optional)"},
    {.name = "map",
     .type = RLAB_ARG_STRING,
     .def = "",
     .help = "column mapping SELECTOR:ROLE[:OPT], ... (data/tabular.h); added to a preset's"},
    {.name = "sep", .type = RLAB_ARG_STRING, .def = ",", .help = "field separator (\"tab\")"},
    {.name = "header", .type = RLAB_ARG_BOOL, .def = "true", .help = "first line names columns"},
    {.name = "min_fields",
     .type = RLAB_ARG_INT,
     .def = "0",
     .min = 0,
     .max = 512,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
     .help = "headerless: shorter rows allowed"},
    {.name = "dataset", .type = RLAB_ARG_DATASET, .help = "source=ratings/labels: the dataset"},
    {.name = "negatives",
     .type = RLAB_ARG_INT,
     .def = "1",
     .min = 0,
     .max = 100,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
     .help = "ratings: unrated items per rating"},
    {.name = "like_min", .type = RLAB_ARG_FLOAT, .def = "4", .help = "ratings: like = rating >= x"},
    {.name = "max_hist",
     .type = RLAB_ARG_INT,
     .def = "20",
     .min = 0,
     .max = 1000,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
     .help = "ratings: history length kept"},
    {.name = "n",
     .type = RLAB_ARG_INT,
     .def = "20000",
     .min = 1,
     .max = 100000000,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
     .help = "synth: samples"},
    {.name = "fields",
     .type = RLAB_ARG_INT,
     .def = "8",
     .min = 2,
     .max = 64,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
     .help = "synth: categorical fields"},
    {.name = "users",
     .type = RLAB_ARG_INT,
     .def = "500",
     .min = 1,
     .max = 10000000,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
     .help = "synth: users (groups)"},
    {.name = "seed",
     .type = RLAB_ARG_INT,
     .def = "1",
     .flags = RLAB_ARGF_INT64,
     .help = "synth / ratings: generator seed"},
    {.name = "split_seed",
     .type = RLAB_ARG_INT,
     .def = "0",
     .flags = RLAB_ARGF_INT64,
     .help = "seed of the random split"},
    {.name = "valid",
     .type = RLAB_ARG_FLOAT,
     .def = "0.1",
     .min = 0,
     .max = 0.5,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
     .help = "share of the valid part"},
    {.name = "test_frac",
     .type = RLAB_ARG_FLOAT,
     .def = "0.2",
     .min = 0,
     .max = 0.5,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
     .help = "share of the test part (no test file)"},
    {0}};

/* ---- ranker.train / eval ---------------------------------------------------------------- */
static const rlab_arg train_args[] = {
    {.name = "data",
     .type = RLAB_ARG_STRING,
     .flags = RLAB_ARGF_REQUIRED,
     .help = "table (ranker.data)"},
    {.name = "model",
     .type = RLAB_ARG_CHOICE,
     .def = "infnet",
     .choices = rk_kind_names,
     .help = "model kind"},
    {.name = "name",
     .type = RLAB_ARG_STRING,
     .def = "",
     .flags = RLAB_ARGF_NEW,
     .help = "model name (default: the kind)"},
    {.name = "dim", .type = RLAB_ARG_INT, .help = "embedding size (16)"},
    {.name = "hidden", .type = RLAB_ARG_INT, .help = "MLP width (64)"},
    {.name = "epochs", .type = RLAB_ARG_INT, .help = "passes (10)"},
    {.name = "batch", .type = RLAB_ARG_INT, .help = "samples per step (256)"},
    {.name = "lr", .type = RLAB_ARG_FLOAT, .help = "Adam learning rate (0.001)"},
    {.name = "l2", .type = RLAB_ARG_FLOAT, .help = "L2 (0)"},
    {.name = "dropout", .type = RLAB_ARG_FLOAT, .help = "MLP dropout (0)"},
    {.name = "patience", .type = RLAB_ARG_INT, .help = "early stopping (3)"},
    {.name = "seed", .type = RLAB_ARG_INT, .flags = RLAB_ARGF_INT64, .help = "seed (1)"},
    {.name = "task", .type = RLAB_ARG_STRING, .help = "single-task: the label to train on"},
    {.name = "max_seq", .type = RLAB_ARG_INT, .help = "sequence length kept (20)"},
    {.name = "layers", .type = RLAB_ARG_INT, .help = "infnet: blocks (2)"},
    {.name = "proxies", .type = RLAB_ARG_INT, .help = "infnet: proxy tokens per type (4)"},
    {.name = "shared_tasks", .type = RLAB_ARG_INT, .help = "infnet: shared task tokens (2)"},
    {.name = "heads", .type = RLAB_ARG_INT, .help = "infnet: attention heads (2)"},
    {.name = "hetero", .type = RLAB_ARG_BOOL, .help = "infnet: heterogeneous flow (true)"},
    {.name = "homo", .type = RLAB_ARG_BOOL, .help = "infnet: homogeneous flow (true)"},
    {.name = "experts", .type = RLAB_ARG_INT, .help = "mmoe: experts (4)"},
    {.name = "cross_layers", .type = RLAB_ARG_INT, .help = "dcnv2: cross layers (2)"},
    {0}};

typedef struct hook_ud {
    rlab_ctx *ctx;
    int quiet; /* 1: progress only, no per-epoch metrics (ranker.compare) */
} hook_ud;

static int hook_cancelled(void *ud) { return rlab_ctx_cancelled(((hook_ud *)ud)->ctx); }

static void hook_epoch(void *ud, int e, int epochs, double loss, const rk_metrics *v)
{
    rlab_ctx *ctx = ((hook_ud *)ud)->ctx;
    double auc = v ? rk_mean_auc(v) : (double)NAN;
    rlab_ctx_progress(ctx, e, epochs, "epoch", 2,
                      (rlab_metric[]){{"loss", loss}, {"valid.auc", auc}});
    if (((hook_ud *)ud)->quiet)
        return;
    rlab_ctx_metric(ctx, e, "train", "loss", NULL, loss);
    if (v)
        for (int t = 0; t < v->ntasks; t++) {
            char nm[64];
            snprintf(nm, sizeof nm, "%s.auc", v->names[t]);
            if (!isnan(v->auc[t]))
                rlab_ctx_metric(ctx, e, "valid", nm, "ctr", v->auc[t]);
        }
}

static void report(rlab_ctx *ctx, const char *split, int64_t step, const rk_metrics *x)
{
    for (int t = 0; t < x->ntasks; t++) {
        const char *kinds[3] = {"auc", "gauc", "logloss"};
        double vals[3] = {x->auc[t], x->gauc[t], x->logloss[t]};
        for (int k = 0; k < 3; k++) {
            if (isnan(vals[k]))
                continue;
            char nm[64];
            snprintf(nm, sizeof nm, "%s.%s", x->names[t], kinds[k]);
            rlab_ctx_metric(ctx, step, split, nm, "ctr", vals[k]);
        }
        rlab_ctx_printf(ctx, "%s %-12s AUC %.4f  GAUC %.4f  logloss %.4f  (%lld samples)", split,
                        x->names[t], x->auc[t], x->gauc[t], x->logloss[t], (long long)x->n);
    }
}

static int cfg_from_args(rlab_ctx *ctx, const rlab_args *args, rk_cfg *c)
{
    rlab_err *err = rlab_ctx_err(ctx);
    int kind = rlab_args_choice(args, "model");
    int rc = rk_cfg_defaults(kind < 0 ? 0 : kind, c, err);
    for (int i = 3; !rc && train_args[i].name; i++)
        if (rlab_args_given(args, train_args[i].name))
            rc = rlab_config_set(rk_fields, c, train_args[i].name,
                                 rlab_args_str(args, train_args[i].name), err);
    if (!rc)
        for (int i = 3; train_args[i].name; i++)
            if (!rlab_args_given(args, train_args[i].name)) {
                const rlab_field *fd = rlab_config_find(rk_fields, train_args[i].name);
                char buf[64];
                rlab_config_text(fd, c, buf, sizeof buf);
                rlab_ctx_resolved(ctx, train_args[i].name, buf);
            }
    return rc;
}

/* Train one model; fills *out (owned by the caller) or returns an error. */
static int train_one(rlab_ctx *ctx, const rk_cfg *c, rk_data *d, const char *name, int quiet,
                     rk_entry **out)
{
    rlab_err *err = rlab_ctx_err(ctx);
    *out = NULL;
    rk_entry *e = rlab_calloc(1, sizeof *e);
    if (!e)
        return rlab_ctx_errorf(ctx, RLAB_ENOMEM, "out of memory");
    snprintf(e->name, sizeof e->name, "%s", name);
    snprintf(e->data, sizeof e->data, "%s", d->name);
    e->dp = d;
    e->m = rk_model_new(c, d->t, d->tr, d->ntr, err);
    if (!e->m) {
        entry_free(e);
        return err->code;
    }
    hook_ud ud = {ctx, quiet};
    rk_hooks h = {.ud = &ud, .cancelled = hook_cancelled, .epoch = hook_epoch};
    int rc = rk_fit(e->m, d->t, d->tr, d->ntr, d->va, d->nva, &h, &e->fit, err);
    if (rc == RLAB_OK)
        rc = rk_evaluate(e->m, d->t, d->va, d->nva, &e->valid, err);
    if (rc == RLAB_OK)
        rc = rk_evaluate(e->m, d->t, d->te, d->nte, &e->test, err);
    if (rc) {
        entry_free(e);
        return rc;
    }
    *out = e;
    return RLAB_OK;
}

static int train_run(rlab_ctx *ctx, const rlab_args *args)
{
    rk_state *s = rlab_ctx_state(ctx);
    rk_data *d = get_data(s, rlab_args_str(args, "data"));
    if (!d)
        return rlab_ctx_errorf(ctx, RLAB_ENOTFOUND, "table '%s' not found (ranker.data)",
                               rlab_args_str(args, "data"));
    rk_cfg c;
    int rc = cfg_from_args(ctx, args, &c);
    if (rc)
        return rc;
    const char *name = rlab_args_str(args, "name");
    if (!name || !*name)
        name = rk_kind_names[c.kind];
    rlab_ctx_run_describe(ctx, rk_kind_names[c.kind], d->name);
    rk_entry *e = NULL;
    if ((rc = train_one(ctx, &c, d, name, 0, &e)) != RLAB_OK)
        return rc;
    rlab_ctx_printf(ctx,
                    "%s (%s, %lld parameters) on %s: %d epochs, best %d (valid mean AUC "
                    "%.4f), %.0f samples/s",
                    name, rk_kind_names[c.kind], (long long)rk_model_nparams(e->m), d->name,
                    e->fit.epochs_run, e->fit.best_epoch, e->fit.best_valid, e->fit.samples_per_s);
    report(ctx, "valid", e->fit.best_epoch, &e->valid);
    report(ctx, "test", e->fit.best_epoch, &e->test);
    rlab_ctx_result_float(ctx, "test.auc", rk_mean_auc(&e->test));
    rlab_ctx_result_float(ctx, "train.samples_per_s", e->fit.samples_per_s);
    for (int t = 0; t < e->test.ntasks; t++) {
        char nm[64];
        snprintf(nm, sizeof nm, "test.%s.auc", e->test.names[t]);
        rlab_ctx_result_float(ctx, nm, e->test.auc[t]);
        snprintf(nm, sizeof nm, "test.%s.gauc", e->test.names[t]);
        rlab_ctx_result_float(ctx, nm, e->test.gauc[t]);
        snprintf(nm, sizeof nm, "test.%s.logloss", e->test.names[t]);
        rlab_ctx_result_float(ctx, nm, e->test.logloss[t]);
    }
    rlab_ctx_result_str(ctx, "model", name);
    return put_model(s, e, rlab_ctx_err(ctx));
}

static const char *const parts[] = {"test", "valid", "train", NULL};

static int eval_run(rlab_ctx *ctx, const rlab_args *args)
{
    rk_state *s = rlab_ctx_state(ctx);
    rk_entry *e = get_model(s, rlab_args_str(args, "model"));
    if (!e)
        return rlab_ctx_errorf(ctx, RLAB_ENOTFOUND, "ranker model '%s' not found",
                               rlab_args_str(args, "model"));
    /* the exact table the model was trained on: field ids and numeric columns are its own */
    if (rlab_args_given(args, "data") && strcmp(rlab_args_str(args, "data"), e->data) != 0)
        return rlab_ctx_errorf(ctx, RLAB_EINVAL,
                               "model '%s' was trained on '%s': its field ids do not apply to "
                               "'%s'",
                               e->name, e->data, rlab_args_str(args, "data"));
    rk_data *d = e->dp;
    if (get_data(s, e->data) != d)
        rlab_ctx_printf(ctx,
                        "(table '%s' was reloaded since: evaluating on the one '%s' was "
                        "trained on)",
                        e->data, e->name);
    int p = rlab_args_choice(args, "part");
    const int64_t *rows = p == 0 ? d->te : p == 1 ? d->va : d->tr;
    int64_t n = p == 0 ? d->nte : p == 1 ? d->nva : d->ntr;
    rk_metrics x;
    rlab_ctx_run_describe(ctx, rk_kind_names[rk_model_cfg(e->m)->kind], d->name);
    int rc = rk_evaluate(e->m, d->t, rows, n, &x, rlab_ctx_err(ctx));
    if (rc)
        return rc;
    report(ctx, parts[p], 0, &x);
    const char *cols[] = {"task", "auc", "gauc", "logloss", "samples"};
    rlab_table *tb = rlab_ctx_result_table(ctx, "metrics", 5, cols);
    for (int t = 0; tb && t < x.ntasks; t++)
        rlab_table_add_row(tb, "sfffl", x.names[t], x.auc[t], x.gauc[t], x.logloss[t], x.n);
    rlab_ctx_result_float(ctx, "auc", rk_mean_auc(&x));
    return RLAB_OK;
}

static const rlab_arg eval_args[] = {
    {.name = "model", .type = RLAB_ARG_STRING, .flags = RLAB_ARGF_REQUIRED, .help = "ranker model"},
    {.name = "part",
     .type = RLAB_ARG_CHOICE,
     .def = "test",
     .choices = parts,
     .help = "which part of the table"},
    {.name = "data", .type = RLAB_ARG_STRING, .help = "table (default: the model's)"},
    {0}};

/* ---- ranker.compare ------------------------------------------------------------------- */
static void mean_sd(const double *v, int n, double *mu, double *sd)
{
    double s = 0;
    int k = 0;
    for (int i = 0; i < n; i++)
        if (!isnan(v[i]))
            s += v[i], k++;
    *mu = k ? s / k : (double)NAN;
    double q = 0;
    for (int i = 0; i < n; i++)
        if (!isnan(v[i]))
            q += (v[i] - *mu) * (v[i] - *mu);
    *sd = k > 1 ? sqrt(q / (k - 1)) : (double)NAN;
}

static int compare_run(rlab_ctx *ctx, const rlab_args *args)
{
    rk_state *s = rlab_ctx_state(ctx);
    rk_data *d = get_data(s, rlab_args_str(args, "data"));
    if (!d)
        return rlab_ctx_errorf(ctx, RLAB_ENOTFOUND, "table '%s' not found (ranker.data)",
                               rlab_args_str(args, "data"));
    int seeds = (int)rlab_args_int(args, "seeds");
    char list[256];
    snprintf(list, sizeof list, "%s", rlab_args_str(args, "models"));
    int kinds[16], nk = 0;
    int single = rlab_args_bool(args, "single_task");
    for (char *tok = strtok(list, ", "); tok && nk < 16; tok = strtok(NULL, ", ")) {
        int k = -1;
        for (int i = 0; rk_kind_names[i]; i++)
            if (strcmp(tok, rk_kind_names[i]) == 0)
                k = i;
        if (k < 0)
            return rlab_ctx_errorf(ctx, RLAB_EINVAL, "unknown model '%s'", tok);
        kinds[nk++] = k;
    }
    const rlab_tabular *t = d->t;
    const char *cols[] = {"model",   "task",    "auc",        "auc_sd", "gauc",
                          "gauc_sd", "logloss", "logloss_sd", "seeds",  "samples_per_s"};
    rlab_table *tb = rlab_ctx_result_table(ctx, "compare", 10, cols);
    if (!tb)
        return RLAB_ENOMEM;
    rlab_ctx_run_describe(ctx, "compare", d->name);
    /* variants: each kind multi-task, plus dcnv2 single-task (one model per task) */
    for (int vk = 0; vk < nk + (single ? 1 : 0); vk++) {
        int kind = vk < nk ? kinds[vk] : RK_DCNV2;
        int st = vk >= nk;
        char label[32];
        snprintf(label, sizeof label, "%s%s", rk_kind_names[kind], st ? "-single" : "");
        double auc[RK_MAX_TASKS][32], gauc[RK_MAX_TASKS][32], ll[RK_MAX_TASKS][32], sps[32];
        for (int sd = 0; sd < seeds && sd < 32; sd++) {
            sps[sd] = 0;
            for (int part = 0; part < (st ? t->nlabels : 1); part++) {
                rk_cfg c;
                rk_cfg_defaults(kind, &c, rlab_ctx_err(ctx));
                for (int i = 3; train_args[i].name; i++)
                    if (rlab_args_given(args, train_args[i].name) &&
                        rlab_config_set(rk_fields, &c, train_args[i].name,
                                        rlab_args_str(args, train_args[i].name), rlab_ctx_err(ctx)))
                        return rlab_ctx_err(ctx)->code;
                c.kind = kind;
                c.seed = (int64_t)rlab_args_int(args, "seed") + sd;
                if (st)
                    snprintf(c.task, sizeof c.task, "%s", t->label_names[part]);
                rk_entry *e = NULL;
                int rc = train_one(ctx, &c, d, label, 1, &e);
                if (rc)
                    return rc;
                for (int k = 0; k < e->test.ntasks; k++) {
                    int j = st ? part : k;
                    auc[j][sd] = e->test.auc[k];
                    gauc[j][sd] = e->test.gauc[k];
                    ll[j][sd] = e->test.logloss[k];
                    /* stored per seed: step = the seed, name = model.task.metric */
                    const char *mk[3] = {"auc", "gauc", "logloss"};
                    double mv[3] = {auc[j][sd], gauc[j][sd], ll[j][sd]};
                    for (int q = 0; q < 3; q++) {
                        char nm[96];
                        snprintf(nm, sizeof nm, "%s.%s.%s", label, e->test.names[k], mk[q]);
                        if (!isnan(mv[q]))
                            rlab_ctx_metric(ctx, c.seed, "test", nm, "ctr", mv[q]);
                    }
                }
                sps[sd] += e->fit.samples_per_s / (st ? t->nlabels : 1);
                rlab_ctx_printf(ctx, "%s seed %lld%s%s: test mean AUC %.4f", label,
                                (long long)c.seed, st ? " task " : "", st ? c.task : "",
                                rk_mean_auc(&e->test));
                entry_free(e);
            }
        }
        int ns = seeds < 32 ? seeds : 32;
        double mu_s, sd_s;
        mean_sd(sps, ns, &mu_s, &sd_s);
        for (int j = 0; j < t->nlabels; j++) {
            double a, as, g, gs, l, ls;
            mean_sd(auc[j], ns, &a, &as);
            mean_sd(gauc[j], ns, &g, &gs);
            mean_sd(ll[j], ns, &l, &ls);
            rlab_table_add_row(tb, "ssffffffif", label, t->label_names[j], a, as, g, gs, l, ls, ns,
                               mu_s);
            rlab_ctx_printf(ctx, "| %-18s | %-12s | %.4f ± %.4f | %.4f ± %.4f | %.4f ± %.4f |",
                            label, t->label_names[j], a, as, g, gs, l, ls);
        }
    }
    return RLAB_OK;
}

static const rlab_arg compare_args[] = {
    {.name = "data", .type = RLAB_ARG_STRING, .flags = RLAB_ARGF_REQUIRED, .help = "table"},
    {.name = "models",
     .type = RLAB_ARG_STRING,
     .def = "infnet,mmoe,dcnv2,sharedbottom",
     .help = "kinds, comma-separated"},
    {.name = "model",
     .type = RLAB_ARG_CHOICE,
     .def = "infnet",
     .choices = rk_kind_names,
     .help = "(ignored: see models)"},
    {.name = "name", .type = RLAB_ARG_STRING, .def = "", .help = "(ignored)"},
    {.name = "dim", .type = RLAB_ARG_INT, .help = "embedding size (16)"},
    {.name = "hidden", .type = RLAB_ARG_INT, .help = "MLP width (64)"},
    {.name = "epochs", .type = RLAB_ARG_INT, .help = "passes (10)"},
    {.name = "batch", .type = RLAB_ARG_INT, .help = "samples per step (256)"},
    {.name = "lr", .type = RLAB_ARG_FLOAT, .help = "Adam learning rate (0.001)"},
    {.name = "l2", .type = RLAB_ARG_FLOAT, .help = "L2 (0)"},
    {.name = "dropout", .type = RLAB_ARG_FLOAT, .help = "MLP dropout (0)"},
    {.name = "patience", .type = RLAB_ARG_INT, .help = "early stopping (3)"},
    {.name = "seed",
     .type = RLAB_ARG_INT,
     .def = "1",
     .flags = RLAB_ARGF_INT64,
     .help = "first seed (seeds seed, seed+1, ...)"},
    {.name = "task", .type = RLAB_ARG_STRING, .help = "(ignored: see single_task)"},
    {.name = "max_seq", .type = RLAB_ARG_INT, .help = "sequence length kept (20)"},
    {.name = "layers", .type = RLAB_ARG_INT, .help = "infnet: blocks (2)"},
    {.name = "proxies", .type = RLAB_ARG_INT, .help = "infnet: proxy tokens per type (4)"},
    {.name = "shared_tasks", .type = RLAB_ARG_INT, .help = "infnet: shared task tokens (2)"},
    {.name = "heads", .type = RLAB_ARG_INT, .help = "infnet: attention heads (2)"},
    {.name = "hetero", .type = RLAB_ARG_BOOL, .help = "infnet: heterogeneous flow (true)"},
    {.name = "homo", .type = RLAB_ARG_BOOL, .help = "infnet: homogeneous flow (true)"},
    {.name = "experts", .type = RLAB_ARG_INT, .help = "mmoe: experts (4)"},
    {.name = "cross_layers", .type = RLAB_ARG_INT, .help = "dcnv2: cross layers (2)"},
    {.name = "seeds",
     .type = RLAB_ARG_INT,
     .def = "3",
     .min = 1,
     .max = 32,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
     .help = "seeds per model"},
    {.name = "single_task",
     .type = RLAB_ARG_BOOL,
     .def = "true",
     .help = "also DCN-v2 single-task (one model per label)"},
    {0}};

/* ---- ranker.list ---------------------------------------------------------------------- */
static int list_run(rlab_ctx *ctx, const rlab_args *args)
{
    (void)args;
    rk_state *s = rlab_ctx_state(ctx);
    const char *c1[] = {"table", "samples", "labels", "fields", "numeric", "split", "source"};
    rlab_table *a = rlab_ctx_result_table(ctx, "tables", 7, c1);
    const char *c2[] = {"model", "kind", "table", "parameters", "test_auc"};
    rlab_table *b = rlab_ctx_result_table(ctx, "models", 5, c2);
    if (!a || !b)
        return RLAB_ENOMEM;
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < RK_MAX_TABLES; i++) {
        rk_data *d = s->data[i];
        if (!d)
            continue;
        rlab_table_add_row(a, "sliiiss", d->name, (int64_t)d->t->n, d->t->nlabels, d->t->nfields,
                           d->t->nnum, d->split, d->t->source);
        rlab_ctx_printf(ctx, "table %s: %lld samples, %d labels (%s)", d->name, (long long)d->t->n,
                        d->t->nlabels, d->split);
    }
    for (int i = 0; i < RK_MAX_MODELS; i++) {
        rk_entry *e = s->models[i];
        if (!e)
            continue;
        rlab_table_add_row(b, "sssld", e->name, rk_kind_names[rk_model_cfg(e->m)->kind], e->data,
                           rk_model_nparams(e->m), rk_mean_auc(&e->test));
        rlab_ctx_printf(ctx, "model %s (%s) on %s: test mean AUC %.4f", e->name,
                        rk_kind_names[rk_model_cfg(e->m)->kind], e->data, rk_mean_auc(&e->test));
    }
    pthread_mutex_unlock(&s->mu);
    return RLAB_OK;
}

static const rlab_cmd rk_cmds[] = {
    {.name = "data",
     .args = data_args,
     .help = "Load CTR / multi-task samples into a named table and split it.\n"
             "From a file with a preset or a column mapping, from a rated dataset (click = "
             "rated, like = rating >= 4, the user's history as a sequence), or synthetic.\n"
             "Example: ranker.data name=census preset=census path=data/census-income.sample\n"
             "Example: ranker.data name=ml source=ratings dataset=ml-100k",
     .flags = RLAB_CMD_JOB | RLAB_CMD_SIDE,
     .run = data_run},
    {.name = "train",
     .args = train_args,
     .help = "Train a multi-task ranker (infnet, mmoe, dcnv2, sharedbottom) on a table.\n"
             "Validation every epoch (mean AUC over tasks, keep-best, patience); test metrics "
             "per task (AUC, GAUC, log loss) are stored with the run.\n"
             "Example: ranker.train data=census model=infnet epochs=5",
     .flags = RLAB_CMD_JOB,
     .run = train_run},
    {.name = "eval",
     .args = eval_args,
     .help = "Per-task AUC, GAUC and log loss of a ranker model on a part of its table.\n"
             "Example: ranker.eval model=infnet part=test",
     .flags = RLAB_CMD_JOB | RLAB_CMD_RECORD,
     .run = eval_run},
    {.name = "compare",
     .args = compare_args,
     .help = "Train every kind with several seeds; table of test metrics per task, mean and "
             "sample sd.\nExample: ranker.compare data=census seeds=3 epochs=10",
     .flags = RLAB_CMD_JOB,
     .run = compare_run},
    {.name = "list",
     .help = "The loaded tables and trained ranker models.",
     .flags = RLAB_CMD_READONLY,
     .run = list_run},
    {0}};

RLAB_PLUGIN(ranker)
{
    RLAB_PLUGIN_INIT(out);
    out->name = "ranker";
    out->version = "0.1.0";
    out->summary = "multi-task CTR ranking: INFNet, MMoE, DCN-v2, shared-bottom";
    out->commands = rk_cmds;
    out->open = rk_open;
    out->close = rk_close;
    return RLAB_OK;
}
