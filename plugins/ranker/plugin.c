/*
 * plugins/ranker/plugin.c: the ranker plugin (reclab_ranker.so): multi-task CTR ranking on
 * tabular samples. Its model kinds (kinds.c: infnet, mmoe, dcnv2, sharedbottom) are host model
 * kinds, so the host's verbs train, evaluate, save and load them:
 *
 *   load PATH format=census name=N                   a CTR file by preset (a host dataset with
 *                                                    a recipe: a reopened workspace rebuilds it)
 *   train infnet data=N [name=M epochs=10 seed=1 dim=16 ...every config field]
 *   eval model=M                                     per-task AUC, GAUC, log loss, stored
 *   save model=M file=F ; load model F
 *
 * The plugin's own commands cover what `load` cannot express, and one convenience:
 *   ranker.data name=N preset=census path=F [test=F2]      a train file + a test file
 *   ranker.data name=N path=F map="y:label, *:cat" [sep=, header=true min_fields=0]
 *   ranker.data name=N source=ratings dataset=ml-100k [negatives=1 like_min=4 max_hist=20]
 *   ranker.data name=N source=synth [n=20000 fields=8 users=500]
 *   ranker.data name=N source=labels dataset=D     a dataset's label columns (RecBole .inter)
 *   ranker.compare data=N [models=infnet,mmoe,dcnv2,sharedbottom seeds=3 epochs=...]
 *        `train KIND` per kind and seed (host verbs), a table of mean +- sd per task
 *
 * ranker.data registers a host dataset of samples (rlab_dataset.tab) whose parts are fixed
 * when it is made (split_seed; by time when it has times, else at random; a `test` file is
 * the test part), so every model of a table sees the same parts. It is recorded with a recipe
 * (maker "data": the command's params, files as absolute paths with their sha256, a parent
 * dataset by name), so a reopened workspace rebuilds the same samples and parts; a file
 * changed since is refused with its name.
 */
#define _XOPEN_SOURCE 700 /* realpath */
#include "ranker.h"
#include "store/sha256.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* What a ranker.data dataset is made from: its recipe's params (recorded by the command,
 * replayed by data_rebuild when a reopened workspace first uses the dataset). Files are
 * recorded as absolute paths with their sha256, so a changed file is refused, not used; a
 * parent dataset (source=ratings/labels) by name, rebuilt by the host from its own recipe. */
typedef struct data_params {
    int source; /* index into sources */
    char preset[32];
    char path[1024], test[1024];
    char path_sha[65], test_sha[65];
    char map[1024];
    char sep[16];
    int header, min_fields;
    char dataset[64];
    int negatives;
    double like_min;
    int max_hist;
    int64_t n;
    int fields, users;
    int64_t seed, split_seed;
    double valid, test_frac;
} data_params;

static const rlab_field data_fields[] = {
    RLAB_FIELD_CHOICE(data_params, source, "file", sources, "where the samples come from"),
    RLAB_FIELD_STR(data_params, preset, "", "file preset"),
    RLAB_FIELD_STR(data_params, path, "", "the file (absolute)"),
    RLAB_FIELD_STR(data_params, test, "", "the test file (absolute)"),
    RLAB_FIELD_STR(data_params, path_sha, "", "sha256 of path"),
    RLAB_FIELD_STR(data_params, test_sha, "", "sha256 of test"),
    RLAB_FIELD_STR(data_params, map, "", "column mapping"),
    RLAB_FIELD_STR(data_params, sep, ",", "field separator"),
    RLAB_FIELD_BOOL(data_params, header, "true", "first line names columns"),
    RLAB_FIELD_INT(data_params, min_fields, "0", 0, 512, "headerless: shorter rows allowed"),
    RLAB_FIELD_STR(data_params, dataset, "", "ratings/labels: the parent dataset"),
    RLAB_FIELD_INT(data_params, negatives, "1", 0, 100, "ratings: unrated items per rating"),
    RLAB_FIELD_DOUBLE(data_params, like_min, "4", 0, 0, "ratings: like = rating >= x"),
    RLAB_FIELD_INT(data_params, max_hist, "20", 0, 1000, "ratings: history length kept"),
    RLAB_FIELD_I64(data_params, n, "20000", 1, 100000000, "synth: samples"),
    RLAB_FIELD_INT(data_params, fields, "8", 2, 64, "synth: categorical fields"),
    RLAB_FIELD_INT(data_params, users, "500", 1, 10000000, "synth: users"),
    RLAB_FIELD_I64(data_params, seed, "1", 0, 0, "generator seed"),
    RLAB_FIELD_I64(data_params, split_seed, "0", 0, 0, "seed of the random split"),
    RLAB_FIELD_DOUBLE(data_params, valid, "0.1", 0, 0.5, "share of the valid part"),
    RLAB_FIELD_DOUBLE(data_params, test_frac, "0.2", 0, 0.5, "share of the test part"),
    {0}};

/* The sha256 of file into sha (65 bytes): when sha is already set (a rebuild), the file
 * must still have it, else the error names the file. */
static int file_check(const char *file, char *sha, rlab_err *err)
{
    char now[65];
    int rc = rlab_sha256_file(file, now, NULL, err);
    if (rc != RLAB_OK)
        return rc;
    if (sha[0] && strcmp(sha, now) != 0)
        return rlab_errf(err, RLAB_ESTATE,
                         "%s changed since the dataset was made (sha256 %.8s..., now %.8s...)",
                         file, sha, now);
    memcpy(sha, now, sizeof now);
    return RLAB_OK;
}

/* The table of p (a file, a parent dataset's ratings or labels, or the synthetic world) with
 * its parts fixed, as a new host dataset `name`: the same params (and the same file
 * contents, parent) give the same samples and the same parts. Records the files' sha256
 * into p when it has none, else checks them. */
static int data_build(const char *name, data_params *p, const rlab_dataset *parent,
                      rlab_dataset **out, rlab_err *err)
{
    const char *path = p->path, *test = p->test, *preset = p->preset;
    rlab_tabular *t = NULL;
    int64_t ntrain_file = -1;
    int rc = RLAB_OK;
    *out = NULL;
    if (p->source == 0) {
        if (!path[0])
            return rlab_errf(err, RLAB_EINVAL, "source=file needs path=");
        rlab_tab_spec sp;
        if (preset[0]) {
            if ((rc = rlab_tab_preset_spec(preset, &sp, err)) != RLAB_OK)
                return rc;
        } else {
            rlab_tab_spec_init(&sp);
            sp.sep = strcmp(p->sep, "tab") == 0 ? "\t" : p->sep;
            sp.header = p->header;
            sp.min_fields = p->min_fields;
        }
        if (p->map[0] && (rc = rlab_tab_spec_map(&sp, p->map, err)) != RLAB_OK)
            return rc;
        if (sp.nmap == 0)
            return rlab_errf(err, RLAB_EINVAL,
                             "give preset= (%s) or a column mapping map=", rlab_tab_presets());
        if ((rc = file_check(path, p->path_sha, err)) != RLAB_OK ||
            (test[0] && (rc = file_check(test, p->test_sha, err)) != RLAB_OK))
            return rc;
        if (test[0]) {
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
                return rlab_errf(err, RLAB_ENOMEM, "out of memory");
            }
            memcpy(all, b1, n1);
            size_t k = n1;
            if (k && all[k - 1] != '\n')
                all[k++] = '\n';
            memcpy(all + k, b2 + skip, n2 - skip);
            k += n2 - skip;
            char label[2100];
            snprintf(label, sizeof label, "%s+%s", path, test);
            rc = rlab_tabular_load_buffer(all, k, &sp, label, &t, err);
            rlab_free(all), rlab_free(b1), rlab_free(b2);
            if (rc)
                return rc;
            snprintf(t->source, sizeof t->source, "%.240s (train) + %.240s (test)", path, test);
        } else if ((rc = rlab_tabular_load(path, &sp, name, &t, err)) != RLAB_OK) {
            return rc;
        }
        if (preset[0])
            snprintf(t->preset, sizeof t->preset, "%s", preset);
    } else if (p->source == 1 || p->source == 3) {
        if (!parent)
            return rlab_errf(err, RLAB_ENOTFOUND, "dataset '%s' not found", p->dataset);
        rlab_tab_mt_opts o;
        rlab_tab_mt_opts_init(&o);
        o.negatives = p->negatives;
        o.like_min = (float)p->like_min;
        o.max_hist = p->max_hist;
        o.seed = (uint64_t)p->seed;
        if ((rc = (p->source == 1 ? rlab_tabular_from_ratings
                                  : rlab_tabular_from_labels)(parent, &o, &t, err)) != RLAB_OK)
            return rc;
    } else if ((rc = rlab_tabular_synth(p->n, p->fields, p->users, (uint64_t)p->seed, &t, err)) !=
               RLAB_OK) {
        return rc;
    }
    snprintf(t->name, sizeof t->name, "%s", name);
    /* the parts, fixed now: a test file is the test part (valid: a random share of the
     * training file); else by time when the table has times, else at random */
    if ((rc = rlab_tabular_set_parts(t, p->valid, p->test_frac, ntrain_file,
                                     (uint64_t)p->split_seed, err)) != RLAB_OK) {
        rlab_tabular_free(t);
        return rc;
    }
    /* a host dataset of samples: `train KIND data=name`, `eval`, the sidebar */
    rlab_dataset *ds = rlab_dataset_new(name, err);
    if (!ds) {
        rlab_tabular_free(t);
        return err->code;
    }
    ds->tab = t;
    snprintf(ds->source, sizeof ds->source, "%s", t->source[0] ? t->source : sources[p->source]);
    snprintf(ds->format, sizeof ds->format, "%s", t->preset[0] ? t->preset : "samples");
    *out = ds;
    return RLAB_OK;
}

/* A file argument made absolute into dst (the recipe must not depend on the working folder);
 * a missing file is kept as given (the loader says so). */
static int abs_path(rlab_ctx *ctx, const char *arg, char *dst, size_t cap)
{
    char abs[PATH_MAX];
    const char *use = arg && *arg ? (realpath(arg, abs) ? abs : arg) : "";
    if (strlen(use) >= cap)
        return rlab_ctx_errorf(ctx, RLAB_EINVAL, "path too long: %s", use);
    snprintf(dst, cap, "%s", use);
    return RLAB_OK;
}

static int data_run(rlab_ctx *ctx, const rlab_args *args)
{
    rlab_err *err = rlab_ctx_err(ctx);
    const char *name = rlab_args_str(args, "name");
    data_params *p = rlab_ctx_alloc(ctx, sizeof *p);
    if (!p)
        return rlab_ctx_errorf(ctx, RLAB_ENOMEM, "out of memory");
    int rc = rlab_config_defaults(data_fields, NULL, p, err);
    if (rc)
        return rc;
    p->source = rlab_args_choice(args, "source");
    snprintf(p->preset, sizeof p->preset, "%s", rlab_args_str(args, "preset"));
    if ((rc = abs_path(ctx, rlab_args_str(args, "path"), p->path, sizeof p->path)) ||
        (rc = abs_path(ctx, rlab_args_str(args, "test"), p->test, sizeof p->test)))
        return rc;
    snprintf(p->map, sizeof p->map, "%s", rlab_args_str(args, "map"));
    if (strlen(rlab_args_str(args, "map")) >= sizeof p->map)
        return rlab_ctx_errorf(ctx, RLAB_EINVAL, "map= is too long (%zu bytes at most)",
                               sizeof p->map - 1);
    snprintf(p->sep, sizeof p->sep, "%s", rlab_args_str(args, "sep"));
    p->header = rlab_args_bool(args, "header");
    p->min_fields = (int)rlab_args_int(args, "min_fields");
    p->negatives = (int)rlab_args_int(args, "negatives");
    p->like_min = rlab_args_float(args, "like_min");
    p->max_hist = (int)rlab_args_int(args, "max_hist");
    p->n = rlab_args_int(args, "n");
    p->fields = (int)rlab_args_int(args, "fields");
    p->users = (int)rlab_args_int(args, "users");
    p->seed = rlab_args_int(args, "seed");
    p->split_seed = rlab_args_int(args, "split_seed");
    p->valid = rlab_args_float(args, "valid");
    p->test_frac = rlab_args_float(args, "test_frac");
    const rlab_dataset *parent = NULL;
    if (p->source == 1 || p->source == 3) {
        snprintf(p->dataset, sizeof p->dataset, "%s", rlab_args_str(args, "dataset"));
        if (!(parent = rlab_ctx_dataset(ctx, p->dataset)))
            return RLAB_ENOTFOUND;
    }
    rlab_dataset *ds = NULL;
    if ((rc = data_build(name, p, parent, &ds, err)) != RLAB_OK)
        return rc;
    const rlab_tabular *t = ds->tab;
    char line[512];
    int k = snprintf(line, sizeof line,
                     "%s: %lld samples (train %lld, valid %lld, test %lld; %s), "
                     "%d token fields, %d numeric, labels",
                     name, (long long)t->n, (long long)t->part_n[0], (long long)t->part_n[1],
                     (long long)t->part_n[2], t->part_desc, t->nfields, t->nnum);
    for (int j = 0; j < t->nlabels && k > 0 && (size_t)k < sizeof line; j++)
        k += snprintf(line + k, sizeof line - (size_t)k, " %s (%.3f)", t->label_names[j],
                      rlab_tabular_pos_rate(t, j));
    rlab_ctx_printf(ctx, "%s", line);
    rlab_ctx_result_int(ctx, "samples", t->n);
    rlab_ctx_result_int(ctx, "train", t->part_n[0]);
    rlab_ctx_result_int(ctx, "valid", t->part_n[1]);
    rlab_ctx_result_int(ctx, "test", t->part_n[2]);
    rlab_ctx_result_int(ctx, "labels", t->nlabels);
    rlab_ctx_result_int(ctx, "fields", t->nfields);
    rlab_ctx_result_int(ctx, "numeric", t->nnum);
    rlab_ctx_result_str(ctx, "dataset", name);
    /* with its recipe: a reopened workspace rebuilds it from the same params */
    char *params = rlab_config_to_json(data_fields, p);
    if (!params) {
        rlab_dataset_free(ds);
        return rlab_ctx_errorf(ctx, RLAB_ENOMEM, "out of memory");
    }
    rc = rlab_ctx_add_dataset_recipe(ctx, ds, "data", params);
    rlab_free(params);
    return rc;
}

/* The recorded ranker.data replayed (a reopened workspace's first use of the dataset). */
static int data_rebuild(rlab_host *host, const char *name, const char *params, rlab_dataset **out,
                        rlab_err *err)
{
    data_params *p = rlab_calloc(1, sizeof *p);
    if (!p)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    int rc = rlab_config_defaults(data_fields, NULL, p, err);
    if (rc == RLAB_OK)
        rc = rlab_config_from_json(data_fields, p, params, 1, err);
    rlab_dataset *parent = NULL;
    if (rc == RLAB_OK && (p->source == 1 || p->source == 3)) {
        rlab_err pe = {0};
        if (!(parent = rlab_host_dataset_get_err(host, p->dataset, &pe)))
            rc = rlab_errf(err, pe.code ? pe.code : RLAB_ENOTFOUND,
                           "its dataset '%s' is not available (%s)", p->dataset,
                           pe.msg[0] ? pe.msg : "not found");
    }
    if (rc == RLAB_OK)
        rc = data_build(name, p, parent, out, err);
    if (parent)
        rlab_host_dataset_release(host, parent);
    rlab_free(p);
    return rc;
}

static const rlab_dataset_maker rk_makers[] = {{.name = "data", .rebuild = data_rebuild}, {0}};

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

/* The compare arguments forwarded to `train KIND` when given (and the kind has them). */
static const char *const fwd_names[] = {"dim",     "hidden",       "epochs",   "batch",   "lr",
                                        "l2",      "dropout",      "patience", "max_seq", "layers",
                                        "proxies", "shared_tasks", "heads",    "hetero",  "homo",
                                        "experts", "cross_layers", NULL};

static int kind_has(int kind, const char *name)
{
    if (!strcmp(name, "epochs") || !strcmp(name, "patience"))
        return 1;
    for (const rlab_field *fd = rk_model_kinds[kind].config; fd && fd->name; fd++)
        if (!strcmp(fd->name, name))
            return 1;
    return 0;
}

/* One `train KIND` through the host (its own run record); its test metrics per label j into
 * auc/gauc/ll[j] (NAN when absent) and its training samples per second. */
static int train_call(rlab_ctx *ctx, const rlab_args *args, int kind, const char *data,
                      const char *label, int64_t seed, const char *task, const rlab_tabular *t,
                      double *auc, double *gauc, double *ll, double *sps)
{
    char full[64], name[64];
    snprintf(full, sizeof full, "train %s", rk_kind_names[kind]);
    snprintf(name, sizeof name, "cmp-%s", label);
    rlab_err *err = rlab_ctx_err(ctx);
    rlab_args *a = rlab_ctx_args(ctx, full);
    int rc = a ? RLAB_OK : err->code;
    if (rc == RLAB_OK)
        rc = rlab_args_set(a, "data", data, err);
    if (rc == RLAB_OK)
        rc = rlab_args_set(a, "name", name, err);
    if (rc == RLAB_OK)
        rc = rlab_args_set_int(a, "seed", seed, err);
    if (rc == RLAB_OK && task)
        rc = rlab_args_set(a, "task", task, err);
    for (int i = 0; rc == RLAB_OK && fwd_names[i]; i++)
        if (rlab_args_given(args, fwd_names[i]) && kind_has(kind, fwd_names[i]))
            rc = rlab_args_set(a, fwd_names[i], rlab_args_str(args, fwd_names[i]), err);
    if (rc) {
        rlab_args_free(a);
        return rc;
    }
    rlab_result *res = NULL;
    rc = rlab_ctx_call(ctx, a, &res);
    if (rc == RLAB_OK) {
        static const char *const mk[3] = {"auc", "gauc", "logloss"};
        double *dst[3] = {auc, gauc, ll};
        for (int j = 0; j < t->nlabels; j++)
            for (int q = 0; q < 3; q++) {
                char key[96];
                snprintf(key, sizeof key, "test.%s.%s", t->label_names[j], mk[q]);
                const rlab_cell *c = rlab_result_scalar(res, key);
                dst[q][j] = c && c->type == RLAB_CELL_FLOAT ? c->f : (double)NAN;
            }
        const rlab_cell *sec = rlab_result_scalar(res, "seconds");
        const rlab_cell *ep = rlab_result_scalar(res, "epochs_run");
        *sps = sec && ep && sec->f > 0 ? (double)t->part_n[0] * (double)ep->i / sec->f : 0.0;
    }
    rlab_result_free(res);
    return rc;
}

static int compare_run(rlab_ctx *ctx, const rlab_args *args)
{
    const char *data = rlab_args_str(args, "data");
    const rlab_dataset *ds = rlab_ctx_dataset(ctx, data);
    if (!ds)
        return RLAB_ENOTFOUND;
    if (!ds->tab)
        return rlab_ctx_errorf(ctx, RLAB_EINVAL,
                               "dataset '%s' holds interactions, not samples (ranker.data, or "
                               "load with a tabular format)",
                               data);
    const rlab_tabular *t = ds->tab;
    int seeds = (int)rlab_args_int(args, "seeds");
    char list[256];
    snprintf(list, sizeof list, "%s", rlab_args_str(args, "models"));
    int kinds[16], nk = 0;
    int single = rlab_args_bool(args, "single_task");
    char *save = NULL;
    for (char *tok = strtok_r(list, ", ", &save); tok && nk < 16;
         tok = strtok_r(NULL, ", ", &save)) {
        int k = -1;
        for (int i = 0; rk_kind_names[i]; i++)
            if (strcmp(tok, rk_kind_names[i]) == 0)
                k = i;
        if (k < 0)
            return rlab_ctx_errorf(ctx, RLAB_EINVAL, "unknown model '%s'", tok);
        kinds[nk++] = k;
    }
    const char *cols[] = {"model",   "task",    "auc",        "auc_sd", "gauc",
                          "gauc_sd", "logloss", "logloss_sd", "seeds",  "samples_per_s"};
    rlab_table *tb = rlab_ctx_result_table(ctx, "compare", 10, cols);
    if (!tb)
        return RLAB_ENOMEM;
    rlab_ctx_run_describe(ctx, "compare", ds->name);
    /* variants: each kind multi-task, plus dcnv2 single-task (one model per task) */
    for (int vk = 0; vk < nk + (single && t->nlabels > 1 ? 1 : 0); vk++) {
        int kind = vk < nk ? kinds[vk] : RK_DCNV2;
        int st = vk >= nk;
        char label[32];
        snprintf(label, sizeof label, "%s%s", rk_kind_names[kind], st ? "-single" : "");
        double auc[RK_MAX_TASKS][32], gauc[RK_MAX_TASKS][32], ll[RK_MAX_TASKS][32], sps[32];
        for (int sd = 0; sd < seeds && sd < 32; sd++) {
            sps[sd] = 0;
            int64_t seed = (int64_t)rlab_args_int(args, "seed") + sd;
            for (int part = 0; part < (st ? t->nlabels : 1); part++) {
                double a[RK_MAX_TASKS], g[RK_MAX_TASKS], l[RK_MAX_TASKS], s = 0;
                int rc = train_call(ctx, args, kind, ds->name, label, seed,
                                    st ? t->label_names[part] : NULL, t, a, g, l, &s);
                if (rc)
                    return rc;
                double msum = 0;
                int mk = 0;
                for (int j = 0; j < t->nlabels; j++) {
                    if (st && j != part)
                        continue;
                    auc[j][sd] = a[j], gauc[j][sd] = g[j], ll[j][sd] = l[j];
                    if (!isnan(a[j]))
                        msum += a[j], mk++;
                    /* stored per seed: step = the seed, name = model.task.metric */
                    const char *mn[3] = {"auc", "gauc", "logloss"};
                    double mv[3] = {a[j], g[j], l[j]};
                    for (int q = 0; q < 3; q++) {
                        char nm[96];
                        snprintf(nm, sizeof nm, "%s.%s.%s", label, t->label_names[j], mn[q]);
                        if (!isnan(mv[q]))
                            rlab_ctx_metric(ctx, seed, "test", nm, "ctr", mv[q]);
                    }
                }
                sps[sd] += s / (st ? t->nlabels : 1);
                rlab_ctx_printf(ctx, "%s seed %lld%s%s: test mean AUC %.4f", label, (long long)seed,
                                st ? " task " : "", st ? t->label_names[part] : "",
                                mk ? msum / mk : (double)NAN);
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
    {.name = "data",
     .type = RLAB_ARG_DATASET,
     .flags = RLAB_ARGF_REQUIRED,
     .help = "dataset of samples (ranker.data, or load with a tabular format)"},
    {.name = "models",
     .type = RLAB_ARG_STRING,
     .def = "infnet,mmoe,dcnv2,sharedbottom",
     .help = "kinds, comma-separated"},
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

static const rlab_cmd rk_cmds[] = {
    {.name = "data",
     .args = data_args,
     .help =
         "Make a dataset of CTR / multi-task samples (a host dataset) and fix its parts.\n"
         "From a file with a preset or a column mapping (and an optional test file), from a "
         "rated dataset (click = rated, like = rating >= 4, the user's history as a "
         "sequence), a dataset's label columns, or synthetic. Train on it with the host's "
         "`train infnet data=NAME` (also mmoe, dcnv2, sharedbottom); a preset file alone "
         "also loads with `load PATH format=PRESET`. Recorded with a recipe: a reopened workspace "
         "rebuilds the same samples and parts (a changed file is refused).\n"
         "Example: ranker.data name=ml source=ratings dataset=ml-100k",
     .flags = RLAB_CMD_JOB | RLAB_CMD_SIDE,
     .run = data_run},
    {.name = "compare",
     .args = compare_args,
     .help = "Train every kind with several seeds through the host's `train KIND` (each a run "
             "of its own); table of test metrics per task, mean and sample sd.\n"
             "Example: ranker.compare data=census seeds=3 epochs=10",
     .flags = RLAB_CMD_JOB,
     .run = compare_run},
    {0}};

RLAB_PLUGIN(ranker)
{
    RLAB_PLUGIN_INIT(out);
    out->name = "ranker";
    out->version = "0.2.0";
    out->summary = "multi-task CTR ranking: INFNet, MMoE, DCN-v2, shared-bottom";
    out->commands = rk_cmds;
    out->models = rk_model_kinds;
    out->makers = rk_makers;
    return RLAB_OK;
}
