/*
 * core/host/verbs.c: "plugins provide model kinds; the host provides the verbs". For every
 * model kind a plugin declares, the host derives `train KIND` (its arguments generated from
 * the kind's config schema and the loop's fields, so parsing, checking, help, completion and
 * the Lua form come from one table) and runs it on the core training loop (model/fit.h) over
 * the one data view (data/view.h). The other verbs work on any registered model, whatever
 * plugin made it: eval (the one evaluator), recommend, save, load and export.
 *
 *   train KIND data=D [name=N] [field=value ...]   train, validate, keep the best, register
 *   eval model=N [data=D] [split=valid|test|both] [neg=0] [k=10]
 *   recommend model=N user=U [k=10] [seen=false]
 *   save model=N [file=F]                          one checkpoint (and into the store)
 *   load PATH [name=N] [format=F] | load model PATH   a dataset, or a model checkpoint
 *   export model=N file=F [k=10]                   CSV of the top-k of every user
 *   export run=R file=F [format=csv|json]          a run's record and metrics (records.c)
 */
#include "host/host_internal.h"
#include "data/loaders.h"
#include "data/tabular.h"
#include "model/fit.h"
#include "store/sha256.h"
#include "tensor/checkpoint.h"

#include <errno.h>
#include <json-c/json.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- generated train commands ---------------------------------------------------------- */

static int train_run(rlab_ctx *ctx, const rlab_args *args);

/* Fill one generated argument from a config field. */
static void arg_from_field(rlab_arg *a, const rlab_field *fd, const rlab_kv *defaults)
{
    memset(a, 0, sizeof *a);
    a->name = fd->name;
    a->help = fd->help;
    a->def = rlab_config_default(fd, defaults);
    a->choices = fd->choices;
    switch (fd->type) {
    case RLAB_F_INT:
    case RLAB_F_I64:
        a->type = RLAB_ARG_INT;
        break;
    case RLAB_F_FLOAT:
    case RLAB_F_DOUBLE:
        a->type = RLAB_ARG_FLOAT;
        break;
    case RLAB_F_BOOL:
        a->type = RLAB_ARG_BOOL;
        break;
    case RLAB_F_CHOICE:
        a->type = RLAB_ARG_CHOICE;
        break;
    case RLAB_F_STR:
        a->type = RLAB_ARG_STRING;
        break;
    }
    if (a->type == RLAB_ARG_INT || a->type == RLAB_ARG_FLOAT) {
        /* the field's declared range, clipped to what its C type holds */
        double lo = fd->type == RLAB_F_INT ? (double)INT_MIN : -(double)INFINITY;
        double hi = fd->type == RLAB_F_INT ? (double)INT_MAX : (double)INFINITY;
        if (fd->type == RLAB_F_I64) {
            lo = -9.2e18;
            hi = 9.2e18;
            a->flags |= RLAB_ARGF_INT64;
        }
        if (fd->min < fd->max) {
            lo = fd->min > lo ? fd->min : lo;
            hi = fd->max < hi ? fd->max : hi;
        }
        if (isfinite(lo)) {
            a->min = lo;
            a->flags |= RLAB_ARGF_MIN;
        }
        if (isfinite(hi)) {
            a->max = hi;
            a->flags |= RLAB_ARGF_MAX;
        }
    }
}

static const rlab_arg train_data_arg = {.name = "data",
                                        .type = RLAB_ARG_DATASET,
                                        .flags = RLAB_ARGF_REQUIRED,
                                        .help = "loaded dataset to train on"};
static const rlab_arg train_name_arg = {
    .name = "name",
    .type = RLAB_ARG_MODEL,
    .flags = RLAB_ARGF_NEW,
    .help = "name to register the model under (default: the kind; replaces a model of that name)"};

int rlab__kind_check(const rlab_model_kind *k, char *why, size_t size)
{
    rlab_err e = {0};
    if (!k->fit || !k->fit->begin || !k->fit->step || !k->fit->model) {
        snprintf(why, size, "lacks required field 'fit' (begin, step and model)");
        return RLAB_EINVAL;
    }
    if (!k->restore) {
        snprintf(why, size, "lacks required field 'restore'");
        return RLAB_EINVAL;
    }
    if (k->config && !k->config_size) {
        snprintf(why, size, "has a config table but no config_size");
        return RLAB_EINVAL;
    }
    if (rlab_config_check_table(k->config, &e)) {
        snprintf(why, size, "%s", e.msg);
        return RLAB_EINVAL;
    }
    for (const rlab_field *fd = k->config; fd && fd->name; fd++)
        if (rlab_config_find(rlab_fit_fields, fd->name) || !strcmp(fd->name, "data") ||
            !strcmp(fd->name, "name")) {
            snprintf(why, size, "config field '%s' clashes with an argument of train", fd->name);
            return RLAB_EINVAL;
        }
    for (const rlab_kv *o = k->defaults; o && o->key; o++) {
        const rlab_field *fd = rlab_config_find(k->config, o->key);
        if (!fd)
            fd = rlab_config_find(rlab_fit_fields, o->key);
        if (!fd) {
            snprintf(why, size, "default for unknown field '%s'", o->key);
            return RLAB_EINVAL;
        }
        if (rlab_config_check_value(fd, o->value, &e)) {
            snprintf(why, size, "default of '%s': %s", o->key, e.msg);
            return RLAB_EINVAL;
        }
    }
    return RLAB_OK;
}

rlab_cmd_rec *rlab__kind_cmd_new(rlab_plugin_rec *p, const rlab_model_kind *k)
{
    int n = 2 + rlab_config_count(rlab_fit_fields) + rlab_config_count(k->config);
    rlab_cmd_rec *cr = rlab_calloc(1, sizeof *cr);
    rlab_arg *args = rlab_calloc((size_t)n + 1, sizeof *args);
    char *help = rlab_malloc(512);
    if (!cr || !args || !help) {
        rlab_free(cr);
        rlab_free(args);
        rlab_free(help);
        return NULL;
    }
    int i = 0;
    args[i++] = train_data_arg;
    args[i++] = train_name_arg;
    for (const rlab_field *fd = rlab_fit_fields; fd->name; fd++) {
        if ((k->flags & RLAB_KIND_ONESHOT) && rlab_fit_field_is_loop(fd->name))
            continue;
        /* a dataset of samples has fixed parts and no item ranking */
        if ((k->flags & RLAB_KIND_TABULAR) &&
            (!strcmp(fd->name, "split") || !strcmp(fd->name, "valid_frac") ||
             !strcmp(fd->name, "test_frac") || !strcmp(fd->name, "eval_neg")))
            continue;
        arg_from_field(&args[i++], fd, k->defaults);
    }
    for (const rlab_field *fd = k->config; fd && fd->name; fd++)
        arg_from_field(&args[i++], fd, k->defaults);
    if (k->flags & RLAB_KIND_TABULAR)
        snprintf(help, 512,
                 "Train a %s model (%s) with the core training loop.\n"
                 "Learns from a dataset of samples (load PATH format=PRESET, ranker.data) on its "
                 "fixed parts, validates every eval_every epochs, keeps the best by select= "
                 "(auc: the mean valid AUC over tasks), reports per-task AUC, GAUC and log loss "
                 "on the test part and registers the model under name=. Every value is stored "
                 "with the run.\n"
                 "Example: train %s data=samples name=%s1",
                 k->name, k->summary ? k->summary : "", k->name, k->name);
    else
        snprintf(help, 512,
                 "Train a %s model (%s) with the core training loop.\n"
                 "Splits the dataset (split=), trains, validates every eval_every epochs, keeps "
                 "the best by select=, ranks the test targets (full ranking unless neg > 0) and "
                 "registers the model under name=. Every value is stored with the run.\n"
                 "Example: train %s data=demo name=%s1",
                 k->name, k->summary ? k->summary : "", k->name, k->name);
    snprintf(cr->full, sizeof cr->full, "train %s", k->name);
    cr->own_cmd.name = cr->full;
    cr->own_cmd.args = args;
    cr->own_cmd.help = help;
    cr->own_cmd.flags = RLAB_CMD_JOB;
    cr->own_cmd.run = train_run;
    cr->ref.full = cr->full;
    cr->ref.plugin = p->name;
    cr->ref.cmd = &cr->own_cmd;
    cr->plugin = p;
    cr->kind = k;
    cr->hidden = 1;
    cr->nargs = i;
    return cr;
}

void rlab__cmd_rec_free(rlab_cmd_rec *cr)
{
    if (!cr)
        return;
    if (cr->kind) {
        rlab_free((void *)(uintptr_t)cr->own_cmd.args);
        rlab_free((void *)(uintptr_t)cr->own_cmd.help);
    }
    rlab_free(cr);
}

/* ---- shared helpers --------------------------------------------------------------------- */

/* A content digest of a dataset: ids, interactions and times (sha256, hex). */
static void dataset_digest(const rlab_dataset *ds, char hex[65])
{
    rlab_sha256 h;
    rlab_sha256_init(&h);
    if (ds->tab) { /* samples: their labels and parts */
        const rlab_tabular *t = ds->tab;
        rlab_sha256_update(&h, &t->n, sizeof t->n);
        if (t->n > 0)
            rlab_sha256_update(&h, t->labels, (size_t)t->n * (size_t)t->nlabels * sizeof(float));
        for (int k = 0; k < 3; k++)
            if (t->part_n[k] > 0)
                rlab_sha256_update(&h, t->part_rows[k], (size_t)t->part_n[k] * sizeof(int64_t));
    }
    for (int32_t u = 0; u < rlab_vocab_size(&ds->users); u++)
        rlab_sha256_update(&h, ds->users.names[u], strlen(ds->users.names[u]) + 1);
    for (int32_t i = 0; i < rlab_vocab_size(&ds->items); i++)
        rlab_sha256_update(&h, ds->items.names[i], strlen(ds->items.names[i]) + 1);
    if (ds->inter.n > 0) { /* a dataset of samples has no interaction arrays */
        rlab_sha256_update(&h, ds->inter.user, ds->inter.n * sizeof *ds->inter.user);
        rlab_sha256_update(&h, ds->inter.item, ds->inter.n * sizeof *ds->inter.item);
        rlab_sha256_update(&h, ds->inter.ts, ds->inter.n * sizeof *ds->inter.ts);
    }
    unsigned char d[32];
    rlab_sha256_final(&h, d);
    rlab_sha256_hex(d, hex);
}

/* {"kind":..., "data":..., "name":..., <loop fields>, <kind fields>} of a train run. */
static char *run_config_json(const rlab_model_kind *k, const char *data, const char *name,
                             const rlab_fit_opts *o, const void *cfg)
{
    char *a = rlab_config_to_json(rlab_fit_fields, o);
    char *b = k->config ? rlab_config_to_json(k->config, cfg) : NULL;
    json_object *out = json_object_new_object();
    json_object *ja = a ? json_tokener_parse(a) : NULL, *jb = b ? json_tokener_parse(b) : NULL;
    char *text = NULL;
    if (out && ja && (jb || !k->config)) {
        json_object_object_add(out, "kind", json_object_new_string(k->name));
        json_object_object_add(out, "data", json_object_new_string(data));
        json_object_object_add(out, "name", json_object_new_string(name));
        json_object *parts[2] = {ja, jb};
        for (int i = 0; i < 2; i++) {
            if (!parts[i])
                continue;
            json_object_object_foreach(parts[i], key, val)
            {
                json_object_object_add(out, key, json_object_get(val));
            }
        }
        text = rlab_strdup(json_object_to_json_string_ext(out, JSON_C_TO_STRING_PLAIN));
    }
    json_object_put(out);
    json_object_put(ja);
    json_object_put(jb);
    rlab_free(a);
    rlab_free(b);
    return text;
}

/* A run whose configuration cannot be stored fails (the allocation-failure sweep found it
 * silently left NULL): "every value is stored with the run" is the run record's promise. */
static int update_run_config(rlab_ctx *ctx, const char *json, int64_t seed, rlab_err *err)
{
    rlab_db *db = rlab_ctx_db(ctx);
    if (!db || !rlab_ctx_run_id(ctx))
        return RLAB_OK;
    rlab_db_stmt *s =
        rlab_db_prepare(db, "UPDATE runs SET config = :c, seed = :s WHERE id = :id", err);
    if (!s)
        return err->code;
    int rc = rlab_db_bind_text(s, ":c", json, err);
    if (!rc)
        rc = rlab_db_bind_int(s, ":s", seed, err);
    if (!rc)
        rc = rlab_db_bind_int(s, ":id", rlab_ctx_run_id(ctx), err);
    if (!rc)
        rc = rlab_db_step(s, err);
    rlab_db_finalize(s);
    if (rc == RLAB_OK || rc == RLAB_DB_ROW)
        return RLAB_OK;
    char why[sizeof err->msg];
    snprintf(why, sizeof why, "%s", err->msg);
    return rlab_errf(err, rc, "cannot store the run config: %s", why);
}

/* ---- train ------------------------------------------------------------------------------ */

static int fit_cancelled(void *ud) { return rlab_ctx_cancelled(ud); }
static void fit_log(void *ud, const char *line) { rlab_ctx_printf(ud, "%s", line); }
static void fit_progress(void *ud, int64_t e, int64_t total, int n, const char *const *names,
                         const double *values)
{
    rlab_metric ms[8];
    if (n > 8)
        n = 8;
    for (int i = 0; i < n; i++)
        ms[i] = (rlab_metric){names[i], values[i]};
    rlab_ctx_progress(ud, e, total, "epoch", n, ms);
}
/* Per-epoch metrics go to the store only (the result keeps the summary, not every epoch). */
static int fit_metric(void *ud, int64_t step, const char *split, const char *name,
                      const char *proto, double v)
{
    rlab_ctx *ctx = ud;
    if (!ctx->db || !ctx->run_id)
        return RLAB_OK;
    return rlab_db_metric(ctx->db, ctx->run_id, step, split, name, proto, v, &ctx->err);
}

static int train_run(rlab_ctx *ctx, const rlab_args *args)
{
    const rlab_model_kind *k = ctx->cmd->kind;
    rlab_err *err = rlab_ctx_err(ctx);
    void *cfg = rlab_ctx_alloc(ctx, k->config_size ? k->config_size : 1);
    rlab_fit_opts o;
    if (!cfg)
        return rlab_ctx_errorf(ctx, RLAB_ENOMEM, "out of memory");
    memset(&o, 0, sizeof o);
    if (rlab_config_defaults(rlab_fit_fields, k->defaults, &o, err) ||
        (k->config && rlab_config_defaults(k->config, k->defaults, cfg, err)))
        return err->code;
    /* every argument has its value (given or the kind's default): resolve them all */
    for (int i = 0; i < ctx->cmd->nargs; i++) {
        const rlab_arg *a = &ctx->cmd->own_cmd.args[i];
        const rlab_field *fd = rlab_config_find(rlab_fit_fields, a->name);
        void *dst = &o;
        if (!fd) {
            fd = rlab_config_find(k->config, a->name);
            dst = cfg;
        }
        if (fd && rlab_config_set_field(fd, dst, rlab_args_str(args, a->name), err))
            return err->code;
    }
    const char *dname = rlab_args_str(args, "data");
    const char *name = rlab_args_str(args, "name");
    if (!name || !name[0])
        name = k->name;
    const rlab_dataset *ds = rlab_ctx_dataset(ctx, dname);
    if (!ds)
        return RLAB_ENOTFOUND;
    rlab_view_opts vo = {.split = o.split,
                         .valid_frac = o.valid_frac,
                         .test_frac = o.test_frac,
                         .seed = (uint64_t)o.seed};
    rlab_view *v = NULL;
    int rc = rlab_view_new(ds, &vo, &v, err);
    if (rc)
        return rc;
    char *json = run_config_json(k, ds->name, name, &o, cfg);
    rc = json ? update_run_config(ctx, json, o.seed, err)
              : rlab_errf(err, RLAB_ENOMEM, "out of memory");
    if (rc) {
        rlab_view_free(v);
        rlab_free(json);
        return rc;
    }
    rlab_ctx_run_describe(ctx, k->name, ds->name);
    if (!v->tab != !(k->flags & RLAB_KIND_TABULAR)) {
        rlab_view_free(v);
        rlab_free(json);
        return rlab_ctx_errorf(ctx, RLAB_EINVAL,
                               v->tab ? "dataset '%s' holds samples (a tabular dataset): kind '%s' "
                                        "learns from interactions"
                                      : "dataset '%s' holds interactions: kind '%s' learns from "
                                        "tabular samples (load one with a tabular format)",
                               ds->name, k->name);
    }
    if (v->tab)
        rlab_ctx_printf(ctx, "train %s on %s (%lld samples: train %lld, valid %lld, test %lld; %s)",
                        k->name, ds->name, (long long)v->tab->n,
                        (long long)v->nrows[RLAB_VIEW_TRAIN], (long long)v->nrows[RLAB_VIEW_VALID],
                        (long long)v->nrows[RLAB_VIEW_TEST],
                        v->tab->part_desc[0] ? v->tab->part_desc : "default parts");
    else
        rlab_ctx_printf(ctx, "train %s on %s (%d users, %d items, split %s)", k->name, ds->name,
                        (int)v->n_users, (int)v->n_items, rlab_split_names[o.split]);
    rlab_fit fit = {.view = v,
                    .cfg = cfg,
                    .opts = &o,
                    .kind = k->name,
                    .ud = ctx,
                    .cancelled = fit_cancelled,
                    .log = fit_log,
                    .progress = fit_progress,
                    .metric = fit_metric,
                    .data = ds,
                    .host = rlab_ctx_host(ctx)};
    rlab_fit_result res;
    rlab_model *m = rlab_fit_run(k->fit, &fit, &res, err);
    int fit_rc = m ? err->code : (err->code ? err->code : RLAB_ENOMEM);
    if (!m) {
        rlab_view_free(v);
        rlab_free(json);
        return fit_rc;
    }
    /* the host's part of the model: name, dataset, config, histories */
    snprintf(m->name, sizeof m->name, "%s", name);
    snprintf(m->kind, sizeof m->kind, "%s", k->name);
    snprintf(m->dataset, sizeof m->dataset, "%s", ds->name);
    dataset_digest(ds, m->dataset_sha256);
    rlab_free(m->config);
    m->config = k->config ? rlab_config_to_json(k->config, cfg) : rlab_strdup("{}");
    rlab_free(m->train_opts);
    m->train_opts = rlab_config_to_json(rlab_fit_fields, &o);
    rlab_seqs_clear(&m->hist);
    rc = v->tab ? RLAB_OK : rlab_seqs_copy(&v->all, &m->hist, err);
    if (m->n_users == 0)
        m->n_users = v->n_users;
    rlab_view_free(v);
    if (rc || !m->config || !m->train_opts) {
        rlab_model_release(m);
        rlab_free(json);
        return rc ? rc : rlab_ctx_errorf(ctx, RLAB_ENOMEM, "out of memory");
    }
    char desc[192];
    rlab_model_describe(m, desc, sizeof desc);
    if ((rc = rlab_ctx_register_model(ctx, m))) {
        rlab_free(json);
        return rc;
    }
    rlab_ctx_result_model(ctx, "model", name);
    if (fit_rc == RLAB_ECANCELED) { /* the model as far as it got; no test was ranked */
        rlab_free(json);
        rlab_ctx_printf(ctx, "cancelled after %d epoch(s): model '%s' kept%s", res.epochs_run, name,
                        res.best_epoch ? " (its best validation epoch)" : "");
        return fit_rc;
    }
    /* results: the kept epoch's valid and the final test metrics */
    rlab_table *t =
        rlab_ctx_result_table(ctx, "metrics", 3, (const char *const[]){"metric", "valid", "test"});
    for (int i = 0; t && i < res.n_metrics; i++) {
        rlab_cell row[3] = {
            {.type = RLAB_CELL_TEXT, .s = res.names[i]},
            {.type = res.has_valid ? RLAB_CELL_FLOAT : RLAB_CELL_NULL, .f = res.valid[i]},
            {.type = res.has_test ? RLAB_CELL_FLOAT : RLAB_CELL_NULL, .f = res.test[i]}};
        if (rlab_table_add_cells(t, row) != RLAB_OK)
            ctx->oom = 1; /* fails the command: "out of memory recording results" */
        /* the summary as scalars (every value is in the table and the store): the selection
         * metric on valid, HR and NDCG at 10 on test */
        char key[64];
        if (res.has_valid && strcmp(res.names[i], o.select) == 0) {
            snprintf(key, sizeof key, "valid.%s", res.names[i]);
            rlab_ctx_result_float(ctx, key, res.valid[i]);
        }
        if (res.has_test && (!strcmp(res.names[i], "hr@10") || !strcmp(res.names[i], "ndcg@10") ||
                             !strcmp(res.protocol, "ctr"))) {
            snprintf(key, sizeof key, "test.%s", res.names[i]);
            rlab_ctx_result_float(ctx, key, res.test[i]);
        }
    }
    rlab_ctx_result_str(ctx, "describe", desc);
    rlab_ctx_result_float(ctx, "seconds", res.seconds);
    rlab_ctx_result_float(ctx, "epoch_seconds", res.epochs_run ? res.seconds / res.epochs_run : 0);
    rlab_ctx_result_int(ctx, "epochs_run", res.epochs_run);
    rlab_ctx_result_int(ctx, "best_epoch", res.best_epoch);
    rlab_ctx_result_int(ctx, "seed", o.seed);
    if (res.protocol[0])
        rlab_ctx_result_str(ctx, "protocol", res.protocol);
    rlab_free(json);
    rlab_ctx_printf(ctx, "model '%s' trained in %.2f s: %s", name, res.seconds, desc);
    if (res.has_test && !strcmp(res.protocol, "ctr"))
        for (int i = 3; i + 2 < res.n_metrics; i += 3)
            rlab_ctx_printf(ctx, "test %-16.*s auc %.4f  gauc %.4f  logloss %.4f%s",
                            (int)(strlen(res.names[i]) - 4), res.names[i], res.test[i],
                            res.test[i + 1], res.test[i + 2],
                            res.best_epoch ? " (kept epoch's model)" : "");
    if (res.has_test) {
        int h = -1, n = -1;
        for (int i = 0; i < res.n_metrics; i++) {
            if (!strcmp(res.names[i], "hr@10"))
                h = i;
            if (!strcmp(res.names[i], "ndcg@10"))
                n = i;
        }
        if (h >= 0 && n >= 0)
            rlab_ctx_printf(ctx, "test (%s ranking%s%d): hr@10 %.4f  ndcg@10 %.4f", res.protocol,
                            res.best_epoch ? ", kept epoch " : ", epochs ",
                            res.best_epoch ? res.best_epoch : res.epochs_run, res.test[h],
                            res.test[n]);
    }
    return fit_rc; /* RLAB_ECANCELED keeps the best-so-far model registered */
}

/* The dummy `train` core command: the parser turns `train KIND ...` into the generated
 * command, so this runs only when no kind was named. */
int rlab__verb_train_kindless(rlab_ctx *ctx, const rlab_args *args)
{
    (void)args;
    return rlab_ctx_errorf(ctx, RLAB_EINVAL, "name a model kind: train KIND data=... (%s)",
                           "help train lists the kinds");
}

/* ---- eval -------------------------------------------------------------------------------- */

static int eval_cancel(void *ud) { return rlab_ctx_cancelled(ud); }

/* "5,10,20" -> ks (at most 16, each in [1, 100000]). */
static int parse_ks(rlab_ctx *ctx, const char *s, int *ks, int *n)
{
    *n = 0;
    const char *p = s && *s ? s : "5,10,20";
    while (*p) {
        char *end = NULL;
        long v = strtol(p, &end, 10);
        if (end == p || v < 1 || v > 100000 || *n >= 16 || (*end && *end != ','))
            return rlab_ctx_errorf(ctx, RLAB_EINVAL,
                                   "bad argument 'ks' (comma-separated cut-offs in [1, 100000], "
                                   "at most 16, expected, got '%s')",
                                   s);
        ks[(*n)++] = (int)v;
        p = *end ? end + 1 : end;
    }
    return RLAB_OK;
}

/* "hr,ndcg" -> RLAB_EM_* mask (empty: hr, recall, ndcg, mrr). */
static int parse_metrics(rlab_ctx *ctx, const char *s, unsigned *mask)
{
    static const char *const names[] = {"hr", "recall", "precision", "ndcg", "mrr", "map"};
    static const unsigned bits[] = {RLAB_EM_HR,   RLAB_EM_RECALL, RLAB_EM_PRECISION,
                                    RLAB_EM_NDCG, RLAB_EM_MRR,    RLAB_EM_MAP};
    *mask = 0;
    if (!s || !*s) {
        *mask = RLAB_EM_HR | RLAB_EM_RECALL | RLAB_EM_NDCG | RLAB_EM_MRR;
        return RLAB_OK;
    }
    const char *p = s;
    while (*p) {
        size_t l = strcspn(p, ",");
        int j = 0;
        while (j < 6 && !(strlen(names[j]) == l && strncmp(names[j], p, l) == 0))
            j++;
        if (j == 6)
            return rlab_ctx_errorf(ctx, RLAB_EINVAL,
                                   "bad argument 'metrics' (names among "
                                   "hr,recall,precision,ndcg,mrr,map expected, got '%s')",
                                   s);
        *mask |= bits[j];
        p += l;
        if (*p == ',')
            p++;
    }
    return RLAB_OK;
}

/* The view a model was trained with (the split of its training settings when it has them,
 * leave-one-out otherwise), on dataset ds. */
static int model_view(rlab_ctx *ctx, const rlab_model *m, const rlab_dataset *ds, rlab_view **v)
{
    rlab_fit_opts o;
    memset(&o, 0, sizeof o);
    rlab_config_defaults(rlab_fit_fields, NULL, &o, NULL);
    if (m->train_opts) /* the split the model was trained with */
        rlab_config_from_json(rlab_fit_fields, &o, m->train_opts, 0, NULL);
    if (o.split == RLAB_SPLIT_NONE) /* trained on everything: rank the leave-one-out targets */
        o.split = RLAB_SPLIT_LOO;
    rlab_view_opts vo = {.split = o.split,
                         .valid_frac = o.valid_frac,
                         .test_frac = o.test_frac,
                         .seed = (uint64_t)o.seed};
    return rlab_view_new(ds, &vo, v, rlab_ctx_err(ctx));
}

/* The CTR branch of eval: a tabular dataset's valid / test samples scored by the model's
 * predict; per-task AUC, GAUC and log loss into the same "metrics" table (metric, valid,
 * test) and the store (protocol "ctr"; undefined metrics are shown empty and not stored). */
static int eval_ctr(rlab_ctx *ctx, const rlab_model *m, const rlab_dataset *ds, int which)
{
    rlab_view *v = NULL;
    int rc = model_view(ctx, m, ds, &v);
    if (rc)
        return rc;
    rlab_ctr_result r[2];
    int have[2] = {0, 0};
    for (int w = 0; w < 2 && rc == RLAB_OK; w++)
        if (which == 2 || which == w) {
            rc = rlab_eval_ctr_model(m, v, w, &r[w], rlab_ctx_err(ctx));
            have[w] = rc == RLAB_OK;
        }
    int64_t nv = v->nrows[RLAB_VIEW_VALID], nt = v->nrows[RLAB_VIEW_TEST];
    rlab_view_free(v);
    if (rc)
        return rc;
    const rlab_ctr_result *any = have[1] ? &r[1] : &r[0];
    rlab_table *t =
        rlab_ctx_result_table(ctx, "metrics", 3, (const char *const[]){"metric", "valid", "test"});
    if (!t)
        return RLAB_ENOMEM;
    for (int task = -1; task < any->ntasks && rc == RLAB_OK; task++) {
        static const char *const mn[3] = {"auc", "gauc", "logloss"};
        for (int q = 0; q < 3 && rc == RLAB_OK; q++) {
            char name[48];
            if (task < 0)
                snprintf(name, sizeof name, "%s", mn[q]);
            else
                snprintf(name, sizeof name, "%.30s.%s", any->names[task], mn[q]);
            rlab_cell row[3] = {{.type = RLAB_CELL_TEXT, .s = name},
                                {.type = RLAB_CELL_NULL},
                                {.type = RLAB_CELL_NULL}};
            for (int w = 0; w < 2 && rc == RLAB_OK; w++) {
                if (!have[w])
                    continue;
                const rlab_ctr_result *x = &r[w];
                double val = task < 0 ? (q == 0   ? x->mean_auc
                                         : q == 1 ? x->mean_gauc
                                                  : x->mean_logloss)
                                      : (q == 0   ? x->auc[task]
                                         : q == 1 ? x->gauc[task]
                                                  : x->logloss[task]);
                if (isnan(val))
                    continue;
                row[1 + w] = (rlab_cell){.type = RLAB_CELL_FLOAT, .f = val};
                char key[64];
                snprintf(key, sizeof key, "%s.%s", w ? "test" : "valid", name);
                rlab_ctx_result_float(ctx, key, val);
                if (w == which || which == 2)
                    rlab_ctx_result_float(ctx, name, val);
                rc = rlab_ctx_metric(ctx, 0, w ? "test" : "valid", name, "ctr", val);
            }
            if (rc == RLAB_OK)
                rc = rlab_table_add_cells(t, row);
        }
    }
    if (rc)
        return rc;
    for (int task = 0; task < any->ntasks; task++)
        rlab_ctx_printf(ctx, "%s on %s, %s (%lld samples): %-14s auc %.4f  gauc %.4f  logloss %.4f",
                        m->name, ds->name, have[1] ? "test" : "valid",
                        (long long)(have[1] ? nt : nv), any->names[task], any->auc[task],
                        any->gauc[task], any->logloss[task]);
    rlab_ctx_result_str(ctx, "protocol", "ctr");
    rlab_ctx_result_int(ctx, "samples", have[1] ? nt : nv);
    rlab_ctx_result_str(ctx, "split", which == 0 ? "valid" : which == 1 ? "test" : "both");
    rlab_ctx_result_model(ctx, "model", m->name);
    return RLAB_OK;
}

int rlab__verb_eval(rlab_ctx *ctx, const rlab_args *args)
{
    const char *mname = rlab_args_str(args, "model");
    const rlab_model *m = rlab_ctx_model(ctx, mname);
    if (!m)
        return RLAB_ENOTFOUND;
    const char *dname = rlab_args_str(args, "data");
    if (!dname || !dname[0]) {
        if (!m->dataset[0])
            return rlab_ctx_errorf(ctx, RLAB_EINVAL,
                                   "model '%s' does not name its dataset: give data=<dataset>",
                                   mname);
        dname = m->dataset;
    }
    const rlab_dataset *ds = rlab_ctx_dataset(ctx, dname);
    if (!ds)
        return RLAB_ENOTFOUND;
    if (!rlab_args_given(args, "data") && rlab_ctx_resolved(ctx, "data", ds->name))
        return rlab_ctx_err(ctx)->code; /* the run record names the data it ranked */
    rlab_ctx_run_describe(ctx, m->kind, ds->name);
    int which = rlab_args_choice(args, "split"); /* 0 valid, 1 test, 2 both */
    if (ds->tab) /* samples: per-task CTR metrics instead of ranking */
        return eval_ctr(ctx, m, ds, which);
    int k = (int)rlab_args_int(args, "k");
    int ks[17], nks = 0;
    unsigned metrics = 0;
    int rc = parse_ks(ctx, rlab_args_str(args, "ks"), ks, &nks);
    if (rc == RLAB_OK)
        rc = parse_metrics(ctx, rlab_args_str(args, "metrics"), &metrics);
    if (rc)
        return rc;
    int have = 0;
    for (int i = 0; i < nks; i++)
        have |= ks[i] == k;
    if (!have)
        ks[nks++] = k;
    for (int b = 1; b < nks; b++) /* ascending */
        for (int a = b; a > 0 && ks[a] < ks[a - 1]; a--) {
            int x = ks[a];
            ks[a] = ks[a - 1];
            ks[a - 1] = x;
        }
    rlab_view *v = NULL;
    rc = model_view(ctx, m, ds, &v);
    if (rc)
        return rc;
    rlab_eval_opts eo = {.ks = ks,
                         .n_ks = nks,
                         .metrics = metrics,
                         .neg = (int)rlab_args_int(args, "neg"),
                         .seed = (uint64_t)rlab_args_int(args, "seed"),
                         .cancel = eval_cancel,
                         .cancel_ud = ctx,
                         .cold = (int)rlab_args_int(args, "cold")};
    rlab_eval_result *r[2] = {NULL, NULL};
    for (int w = 0; w < 2 && rc == RLAB_OK; w++) {
        if (which != 2 && which != w)
            continue;
        r[w] = rlab_eval_model(m, v, w, &eo, rlab_ctx_err(ctx));
        if (!r[w])
            rc = rlab_ctx_err(ctx)->code ? rlab_ctx_err(ctx)->code : RLAB_ENOMEM;
    }
    rlab_view_free(v);
    const rlab_eval_result *any = r[1] ? r[1] : r[0];
    if (rc == RLAB_OK && any) {
        rlab_table *t = rlab_ctx_result_table(ctx, "metrics", 3,
                                              (const char *const[]){"metric", "valid", "test"});
        for (int i = 0; i < any->n_metrics && rc == RLAB_OK; i++) {
            rlab_cell row[3] = {{.type = RLAB_CELL_TEXT, .s = any->names[i]},
                                {.type = RLAB_CELL_NULL},
                                {.type = RLAB_CELL_NULL}};
            for (int w = 0; w < 2; w++) {
                if (!r[w])
                    continue;
                row[1 + w] = (rlab_cell){.type = RLAB_CELL_FLOAT, .f = r[w]->mean[i]};
                char key[48];
                snprintf(key, sizeof key, "%s.%s", w ? "test" : "valid", any->names[i]);
                rlab_ctx_result_float(ctx, key, r[w]->mean[i]);
                if (w == which || which == 2) /* the plain name: test when both */
                    rlab_ctx_result_float(ctx, any->names[i], r[w]->mean[i]);
                rc = rlab_ctx_metric(ctx, 0, w ? "test" : "valid", any->names[i], r[w]->protocol,
                                     r[w]->mean[i]);
            }
            if (t && rc == RLAB_OK)
                rc = rlab_table_add_cells(t, row);
        }
        char hn[24], nn[24];
        snprintf(hn, sizeof hn, "hr@%d", k);
        snprintf(nn, sizeof nn, "ndcg@%d", k);
        int hi = rlab_eval_result_find(any, hn), ni = rlab_eval_result_find(any, nn);
        char slice[96] = "";
        if (eo.cold > 0)
            snprintf(slice, sizeof slice, ", cold items (< %d train interactions)", eo.cold);
        rlab_ctx_printf(ctx, "%s on %s, %s%s (%s ranking, %lld users): %s %.4f  %s %.4f", mname,
                        ds->name, r[1] ? "test" : "valid", slice, any->protocol,
                        (long long)any->n_users, hn, hi >= 0 ? any->mean[hi] : 0.0, nn,
                        ni >= 0 ? any->mean[ni] : 0.0);
        rlab_ctx_result_int(ctx, "cold", eo.cold);
        rlab_ctx_result_str(ctx, "protocol", any->protocol);
        rlab_ctx_result_int(ctx, "users", any->n_users);
        rlab_ctx_result_str(ctx, "split", which == 0 ? "valid" : which == 1 ? "test" : "both");
        rlab_ctx_result_model(ctx, "model", mname);
    }
    rlab_eval_result_free(r[0]);
    rlab_eval_result_free(r[1]);
    return rc;
}

/* ---- recommend / export ------------------------------------------------------------------ */

/* The model's dataset when it is loaded (names users and items), else NULL. */
static const rlab_dataset *model_dataset(rlab_ctx *ctx, const rlab_model *m, int *rc)
{
    *rc = RLAB_OK;
    if (!m->dataset[0])
        return NULL;
    rlab_dataset *d = rlab_host_dataset_get(rlab_ctx_host(ctx), m->dataset);
    if (!d)
        return NULL;
    rlab_host_dataset_release(rlab_ctx_host(ctx), d);
    const rlab_dataset *ds = rlab_ctx_dataset(ctx, m->dataset); /* held until the end */
    /* a dataset that is there but cannot be held (ENOMEM) is an error, not "no dataset": the
     * user names would silently become dense indices (the allocation-failure sweep) */
    if (!ds && rlab_ctx_err(ctx)->code == RLAB_ENOMEM)
        *rc = RLAB_ENOMEM;
    return ds && rlab_vocab_size(&ds->items) == m->n_items ? ds : NULL;
}

/* The dense index of a user named in a command: "#N" is the index N; anything else is the
 * user's id in the model's dataset (when loaded), else a plain number as an index. */
static int64_t resolve_user(rlab_ctx *ctx, const rlab_model *m, const rlab_dataset *ds,
                            const char *s)
{
    char *end = NULL;
    int32_t nu = m->n_users > 0 ? m->n_users : m->hist.n_users;
    if (s[0] == '#') {
        long long v = strtoll(s + 1, &end, 10);
        if (end != s + 1 && !*end && v >= 0 && v < nu)
            return v;
        rlab_ctx_errorf(ctx, RLAB_EINVAL, "user %s: no such index (model '%s' has %d users)", s,
                        m->name, (int)nu);
        return -1;
    }
    if (ds) {
        int32_t u = rlab_vocab_find(&ds->users, s, strlen(s));
        if (u >= 0 && u < nu)
            return u;
        char eg[160] = ""; /* how its users are named */
        for (int32_t k = 0, o = 0; k < ds->users.n && k < 3 && o < (int)sizeof eg; k++)
            o += snprintf(eg + o, sizeof eg - (size_t)o, "%s'%.40s'", k ? ", " : "",
                          rlab_vocab_name(&ds->users, k));
        rlab_ctx_errorf(ctx, RLAB_ENOTFOUND,
                        "user '%s' is not in dataset '%s' (its %d users are named like %s%s; "
                        "#N is index N)",
                        s, ds->name, (int)ds->users.n, eg, ds->users.n > 3 ? ", ..." : "");
        return -1;
    }
    long long v = strtoll(s, &end, 10);
    if (end != s && !*end && v >= 0 && v < nu)
        return v;
    rlab_ctx_errorf(ctx, RLAB_ENOTFOUND,
                    "user '%s': dataset '%s' of model '%s' is not loaded, so users are named by "
                    "their index (#N or N, 0 <= N < %d)",
                    s, m->dataset, m->name, (int)nu);
    return -1;
}

/* Top-k of user u (history from the model, masked unless seen). */
static int topk_user(const rlab_model *m, int32_t u, int k, int seen, uint8_t *mask, int32_t *top,
                     float *sc, rlab_err *err)
{
    const int32_t *hist = NULL;
    int64_t nh = rlab_model_user_hist(m, u, &hist);
    rlab_query q = {.user = u, .hist = hist, .n_hist = (int32_t)nh};
    if (!seen)
        for (int64_t j = 0; j < nh; j++)
            mask[hist[j]] = 1;
    int rc = rlab_model_topk(m, &q, 1, k, seen ? NULL : mask, top, sc, err);
    if (!seen)
        for (int64_t j = 0; j < nh; j++)
            mask[hist[j]] = 0;
    return rc;
}

static const char *item_name(const rlab_dataset *ds, int32_t i, char *buf, size_t size)
{
    const char *id = ds && i >= 0 ? rlab_vocab_name(&ds->items, i) : NULL;
    if (id)
        return id;
    snprintf(buf, size, "#%d", (int)i);
    return buf;
}

int rlab__verb_recommend(rlab_ctx *ctx, const rlab_args *args)
{
    const rlab_model *m = rlab_ctx_model(ctx, rlab_args_str(args, "model"));
    if (!m)
        return RLAB_ENOTFOUND;
    if (m->n_items < 1)
        return rlab_ctx_errorf(ctx, RLAB_EINVAL,
                               "model '%s' (%s) scores samples, not items: it has no item list "
                               "to rank (evaluate it with eval)",
                               m->name, m->kind);
    int rc;
    const rlab_dataset *ds = model_dataset(ctx, m, &rc);
    if (rc)
        return rc;
    const char *uname = rlab_args_str(args, "user");
    int64_t user = resolve_user(ctx, m, ds, uname);
    if (user < 0)
        return rlab_ctx_err(ctx)->code;
    int k = (int)rlab_args_int(args, "k");
    if (k > m->n_items)
        k = m->n_items;
    uint8_t *mask = rlab_ctx_alloc(ctx, (size_t)m->n_items);
    int32_t *top = rlab_ctx_alloc(ctx, (size_t)k * sizeof(int32_t));
    float *sc = rlab_ctx_alloc(ctx, (size_t)k * sizeof(float));
    if (!mask || !top || !sc)
        return rlab_ctx_errorf(ctx, RLAB_ENOMEM, "out of memory");
    rc = topk_user(m, (int32_t)user, k, rlab_args_bool(args, "seen"), mask, top, sc,
                   rlab_ctx_err(ctx));
    if (rc)
        return rc;
    const rlab_feat_col *titles = ds ? rlab_feats_find(&ds->item_feats, "title") : NULL;
    if (titles && titles->kind != RLAB_FEAT_TEXT)
        titles = NULL;
    rlab_table *t = rlab_ctx_result_table(ctx, "items", 4,
                                          (const char *const[]){"rank", "item", "score", "title"});
    const int32_t *hist = NULL;
    int64_t nh = rlab_model_user_hist(m, (int32_t)user, &hist);
    rlab_ctx_printf(ctx, "top-%d for user %s from %s (%lld interactions %s)", k, uname, m->name,
                    (long long)nh, rlab_args_bool(args, "seen") ? "allowed" : "masked");
    for (int i = 0; i < k; i++) {
        if (top[i] < 0)
            break;
        char buf[24];
        const char *id = item_name(ds, top[i], buf, sizeof buf);
        const char *title = titles && titles->text[top[i]] ? titles->text[top[i]] : "";
        if (t && rlab_table_add_row(t, "isfs", i + 1, id, (double)sc[i], title) != RLAB_OK)
            ctx->oom = 1;
    }
    rlab_ctx_result_model(ctx, "model", m->name);
    rlab_ctx_result_str(ctx, "user", uname);
    return RLAB_OK;
}

/* export model=M file=F [k=]: every user's top-k as CSV. */
static int export_topk(rlab_ctx *ctx, const rlab_args *args)
{
    const rlab_model *m = rlab_ctx_model(ctx, rlab_args_str(args, "model"));
    if (!m)
        return RLAB_ENOTFOUND;
    if (m->n_items < 1)
        return rlab_ctx_errorf(ctx, RLAB_EINVAL,
                               "model '%s' (%s) scores samples, not items: it has no item list "
                               "to rank (evaluate it with eval)",
                               m->name, m->kind);
    if (m->hist.n_users <= 0 && m->n_users <= 0)
        return rlab_ctx_errorf(ctx, RLAB_ESTATE, "model '%s' knows no users", m->name);
    int rc;
    const rlab_dataset *ds = model_dataset(ctx, m, &rc);
    if (rc)
        return rc;
    const char *path = rlab_args_str(args, "file");
    int k = (int)rlab_args_int(args, "k");
    if (k > m->n_items)
        k = m->n_items;
    int32_t nu = m->n_users > 0 ? m->n_users : m->hist.n_users;
    uint8_t *mask = rlab_ctx_alloc(ctx, (size_t)m->n_items);
    int32_t *top = rlab_ctx_alloc(ctx, (size_t)k * sizeof(int32_t));
    float *sc = rlab_ctx_alloc(ctx, (size_t)k * sizeof(float));
    if (!mask || !top || !sc)
        return rlab_ctx_errorf(ctx, RLAB_ENOMEM, "out of memory");
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return rlab_ctx_errorf(ctx, RLAB_EIO, "cannot write %s: %s", tmp, strerror(errno));
    rc = RLAB_OK;
    fprintf(f, "user,rank,item,score\n");
    for (int32_t u = 0; u < nu && rc == RLAB_OK; u++) {
        if (rlab_ctx_cancelled(ctx)) {
            rc = RLAB_ECANCELED;
            break;
        }
        rc = topk_user(m, u, k, 0, mask, top, sc, rlab_ctx_err(ctx));
        const char *uid = ds ? rlab_vocab_name(&ds->users, u) : NULL;
        char ub[24], ib[24];
        if (!uid) {
            snprintf(ub, sizeof ub, "#%d", (int)u);
            uid = ub;
        }
        for (int i = 0; rc == RLAB_OK && i < k && top[i] >= 0; i++)
            fprintf(f, "%s,%d,%s,%.9g\n", uid, i + 1, item_name(ds, top[i], ib, sizeof ib),
                    (double)sc[i]);
        if ((u & 255) == 255)
            rlab_ctx_progress(ctx, u + 1, nu, "users", 0, NULL);
    }
    if (fclose(f) != 0 && rc == RLAB_OK)
        rc = rlab_ctx_errorf(ctx, RLAB_EIO, "cannot write %s", tmp);
    if (rc == RLAB_OK && rename(tmp, path) != 0)
        rc = rlab_ctx_errorf(ctx, RLAB_EIO, "cannot rename %s to %s: %s", tmp, path,
                             strerror(errno));
    if (rc != RLAB_OK) {
        unlink(tmp);
        return rc;
    }
    rlab_ctx_printf(ctx, "wrote the top-%d of %d users of '%s' to %s", k, (int)nu, m->name, path);
    rlab_ctx_result_str(ctx, "file", path);
    rlab_ctx_result_int(ctx, "users", nu);
    return RLAB_OK;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* One export for both things worth writing: a run's record (run=) or a model's top-k lists
 * (model=), told apart by the arguments. */
int rlab__verb_export(rlab_ctx *ctx, const rlab_args *args)
{
    const char *run = rlab_args_str(args, "run");
    const char *model = rlab_args_str(args, "model");
    const char *cmd = rlab_args_str(args, "cmd");
    const char *file = rlab_args_str(args, "file");
    int fmt = rlab_args_choice(args, "format"); /* -1 unset, 0 csv, 1 json */
    int given_run = run && *run, given_model = model && *model, given_cmd = cmd && *cmd;
    if (given_run && !strcmp(run, "view"))
        return rlab_ctx_errorf(ctx, RLAB_EINVAL,
                               "export view: the table view is the shell's; here, export "
                               "cmd=\"runs ...\" file=%s writes a command's result table",
                               file);
    if (given_run + given_model + given_cmd != 1)
        return rlab_ctx_errorf(ctx, RLAB_EINVAL,
                               "%s: give run=N (a run's record and metrics), model=NAME (every "
                               "user's top-k) or cmd=\"LINE\" (a command's result table)",
                               given_run + given_model + given_cmd ? "give only one"
                                                                   : "nothing to export");
    if (given_model || given_cmd) {
        if (fmt == 1)
            return rlab_ctx_errorf(ctx, RLAB_EINVAL, "%s written as CSV (format=csv)",
                                   given_cmd ? "a command's table is"
                                             : "a model's top-k lists are");
        return given_cmd ? rlab__export_cmd(ctx, cmd, rlab_args_str(args, "table"), file)
                         : export_topk(ctx, args);
    }
    int json = fmt < 0 ? ends_with(file, ".json") : fmt == 1;
    return rlab__export_run(ctx, run, file, json);
}

/* ---- save / load ------------------------------------------------------------------------- */

int rlab__verb_save(rlab_ctx *ctx, const rlab_args *args)
{
    const char *name = rlab_args_str(args, "model");
    const char *file = rlab_args_str(args, "file");
    char *path = NULL;
    int rc = rlab__host_save_model_ctx(rlab_ctx_host(ctx), ctx, name, file && *file ? file : NULL,
                                       &path, rlab_ctx_err(ctx));
    if (rc)
        return rc;
    if (path)
        rlab_ctx_printf(ctx, "model '%s' saved to %s%s", name, path,
                        rlab_ctx_db(ctx) ? " and into the session store" : "");
    else
        rlab_ctx_printf(ctx, "model '%s' saved into the session store", name);
    rlab_ctx_result_str(ctx, "file", path ? path : "");
    rlab_ctx_result_model(ctx, "model", name);
    rlab_free(path);
    return RLAB_OK;
}

/* A reclab model checkpoint? The name says .safetensors, or the file starts like one: an
 * 8-byte little-endian header length, then the JSON header's '{'. */
static int looks_like_ckpt(const char *path)
{
    if (ends_with(path, ".safetensors"))
        return 1;
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    unsigned char b[9];
    size_t n = fread(b, 1, sizeof b, f);
    fclose(f);
    if (n < sizeof b || b[8] != '{')
        return 0;
    uint64_t len = 0;
    for (int i = 7; i >= 0; i--)
        len = (len << 8) | b[i];
    return len >= 2 && len < ((uint64_t)1 << 32);
}

/* load PATH: a dataset (rlab_data_load's formats), or a model when PATH is a checkpoint, when
 * model=true or kind= is given, or in the form `load model PATH`. */
int rlab__verb_load(rlab_ctx *ctx, const rlab_args *args)
{
    const char *path = rlab_args_str(args, "path");
    const char *file = rlab_args_str(args, "file");
    const char *name = rlab_args_str(args, "name");
    const char *format = rlab_args_str(args, "format");
    const char *kind = rlab_args_str(args, "kind");
    int model = rlab_args_bool(args, "model");
    if (path && !strcmp(path, "model") && file && *file) { /* load model PATH */
        model = 1;
        path = file;
    } else if (path && *path && file && *file) {
        return rlab_ctx_errorf(ctx, RLAB_EINVAL, "give the file once (path= or file=)");
    } else if (!path || !*path) {
        path = file;
    }
    if (!path || !*path)
        return rlab_ctx_errorf(ctx, RLAB_EINVAL,
                               "missing argument 'path' (load PATH, load model PATH)");
    if (name && !*name)
        name = NULL;
    if (kind && *kind)
        model = 1;
    if (!model && !(format && *format))
        model = looks_like_ckpt(path);
    if (model) {
        if (format && *format)
            return rlab_ctx_errorf(ctx, RLAB_EINVAL,
                                   "format= is for datasets; %s is loaded as a "
                                   "model",
                                   path);
        if (name && rlab_name_check("model", name, rlab_ctx_err(ctx)))
            return RLAB_EINVAL;
        char got[64];
        int rc = rlab__host_load_ckpt(rlab_ctx_host(ctx), name, path, kind && *kind ? kind : NULL,
                                      got, rlab_ctx_err(ctx));
        if (rc)
            return rc;
        rlab_ctx_printf(ctx, "model '%s' loaded from %s", got, path);
        rlab_ctx_result_model(ctx, "model", got);
        return RLAB_OK;
    }
    if (name && rlab_name_check("dataset", name, rlab_ctx_err(ctx)))
        return RLAB_EINVAL;
    /* through the host: interactions or dialogues, recorded in the store with the recipe that
     * rebuilds it when the workspace reopens (the store row first: a failure leaves nothing) */
    rlab_dataset_brief br;
    int rc =
        rlab_host_load_dataset(rlab_ctx_host(ctx), rlab_ctx_db(ctx), path,
                               format && *format ? format : NULL, name, &br, rlab_ctx_err(ctx));
    if (rc)
        return rc;
    const char *dname = br.name;
    int64_t nu = br.n_users, ni = br.n_items, nx = br.n_inter;
    if (strcmp(br.kind, "samples") == 0)
        rlab_ctx_printf(ctx,
                        "dataset '%s' loaded (%s samples): %lld samples, %lld groups (train "
                        "tabular kinds on it: train infnet data=%s)",
                        dname, br.format, (long long)nx, (long long)nu, dname);
    else if (strcmp(br.kind, "dialogues") == 0)
        rlab_ctx_printf(ctx,
                        "dataset '%s' loaded (%s dialogues): %lld conversations, %lld turns, %lld "
                        "mentioned items",
                        dname, br.format, (long long)nu, (long long)nx, (long long)ni);
    else
        rlab_ctx_printf(ctx, "dataset '%s' loaded (%s): %lld users, %lld items, %lld interactions",
                        dname, br.format, (long long)nu, (long long)ni, (long long)nx);
    rlab_ctx_result_str(ctx, "dataset", dname);
    rlab_ctx_result_int(ctx, "users", nu);
    rlab_ctx_result_int(ctx, "items", ni);
    rlab_ctx_result_int(ctx, "interactions", nx);
    if (strcmp(br.kind, "samples") == 0)
        rlab_ctx_result_int(ctx, "samples", nx);
    return RLAB_OK;
}

/* ---- declarations ------------------------------------------------------------------------ */

static const char *const eval_splits[] = {"valid", "test", "both", NULL};

const rlab_arg rlab__train_args[] = {
    {.name = "kind", .type = RLAB_ARG_STRING, .help = "model kind (help train lists them)"}, {0}};
const rlab_arg rlab__eval_args[] = {
    {.name = "model",
     .type = RLAB_ARG_MODEL,
     .flags = RLAB_ARGF_REQUIRED,
     .help = "registered model to evaluate (any plugin's)"},
    {.name = "data",
     .type = RLAB_ARG_DATASET,
     .help = "dataset whose leave-one-out split is ranked (default: the model's dataset)"},
    {.name = "split",
     .type = RLAB_ARG_CHOICE,
     .choices = eval_splits,
     .def = "both",
     .help = "valid: the second-last item, train items masked; test: the last item, train + "
             "valid masked; both"},
    {.name = "k",
     .type = RLAB_ARG_INT,
     .def = "10",
     .min = 1,
     .max = 10000,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
     .help = "cut-off of the summary line (metrics at 5, 10, 20 and k are all stored)"},
    {.name = "ks",
     .type = RLAB_ARG_STRING,
     .def = "5,10,20",
     .help = "cut-offs, comma-separated (k is added when missing)"},
    {.name = "metrics",
     .type = RLAB_ARG_STRING,
     .def = "hr,recall,ndcg,mrr",
     .help = "metrics among hr,recall,precision,ndcg,mrr,map"},
    {.name = "neg",
     .type = RLAB_ARG_INT,
     .def = "0",
     .min = 0,
     .max = 100000,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
     .help = "0 = full ranking; N = sampled 1+N protocol (labelled sampled-N)"},
    {.name = "seed",
     .type = RLAB_ARG_INT,
     .def = "42",
     .min = 0,
     .flags = RLAB_ARGF_MIN,
     .help = "seed of the sampled negatives"},
    {.name = "cold",
     .type = RLAB_ARG_INT,
     .def = "0",
     .min = 0,
     .max = 1 << 30,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
     .help = "> 0: only the cold-item slice (targets whose item has fewer than this many train "
             "interactions)"},
    {0}};
const rlab_arg rlab__recommend_args[] = {
    {.name = "model",
     .type = RLAB_ARG_MODEL,
     .flags = RLAB_ARGF_REQUIRED,
     .help = "a registered model"},
    {.name = "user",
     .type = RLAB_ARG_STRING,
     .flags = RLAB_ARGF_REQUIRED,
     .help = "user id as in the dataset (u17; 17 for MovieLens), or #N for the dense index N"},
    {.name = "k",
     .type = RLAB_ARG_INT,
     .def = "10",
     .min = 1,
     .max = 10000,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
     .help = "list length"},
    {.name = "seen",
     .type = RLAB_ARG_BOOL,
     .def = "false",
     .help = "allow items the user already has"},
    {0}};
const rlab_arg rlab__save_args[] = {
    {.name = "model", .type = RLAB_ARG_MODEL, .flags = RLAB_ARGF_REQUIRED, .help = "model"},
    {.name = "file",
     .type = RLAB_ARG_PATH,
     .help = "checkpoint file to write (.safetensors); default: the session store only (or "
             "./NAME.safetensors without a store)"},
    {0}};
const rlab_arg rlab__load_args[] = {
    {.name = "path",
     .type = RLAB_ARG_PATH,
     .help = "dataset file or folder, or a model checkpoint (.safetensors)"},
    {.name = "file",
     .type = RLAB_ARG_PATH,
     .help = "the same as path (load file=X); after the word model: the checkpoint (load model "
             "X)"},
    {.name = "name",
     .type = RLAB_ARG_STRING,
     .help = "name to register it under (default: the file or folder name for a dataset, the "
             "saved name for a model)"},
    {.name = "format",
     .type = RLAB_ARG_STRING,
     .help = "dataset format: recbole, ml-100k, ml-1m, sasrec, seqline, csv, tsv (default: "
             "guessed from the files)"},
    {.name = "kind", .type = RLAB_ARG_STRING, .help = "model kind the checkpoint must hold"},
    {.name = "model",
     .type = RLAB_ARG_BOOL,
     .def = "false",
     .help = "load a model checkpoint (also when the file is one or kind= is given)"},
    {0}};
static const char *const export_formats[] = {"csv", "json", NULL};
const rlab_arg rlab__export_args[] = {
    {.name = "run", .type = RLAB_ARG_STRING, .help = "run id (7 or #7): its record and metrics"},
    {.name = "format",
     .type = RLAB_ARG_CHOICE,
     .choices = export_formats,
     .help = "csv (one metric row per line) or json (the record and the metrics); default: "
             "from the file name (.json), else csv"},
    {.name = "file", .type = RLAB_ARG_PATH, .flags = RLAB_ARGF_REQUIRED, .help = "file to write"},
    {.name = "model",
     .type = RLAB_ARG_MODEL,
     .help = "a model: every user's top-k as CSV (user,rank,item,score)"},
    {.name = "k",
     .type = RLAB_ARG_INT,
     .def = "10",
     .min = 1,
     .max = 10000,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
     .help = "items per user (model=)"},
    {.name = "cmd",
     .type = RLAB_ARG_STRING,
     .help = "a command line (runs ..., sql ..., show 7, compare 3 4, jobs...): its result table "
             "as CSV"},
    {.name = "table",
     .type = RLAB_ARG_STRING,
     .help = "with cmd=: which of its result tables (default: the first)"},
    {0}};
