/*
 * tests/host/tp_good.c: the test plugin "tgood" (reclab_tgood.so), exercising every ABI
 * feature the host offers: a descriptor with commands of every argument type, a job that
 * loops until cancelled, a counting job with progress and metrics, failing commands,
 * scratch memory, typed results, a model kind (train + save + load), a schema migration,
 * a view, and open/close with plugin state.
 *
 * The model kind "tlin" scores item i for user u as ((i * 7) % n_items) + 0.5 * u + bias, so
 * tests can compute top-k by hand.
 */
#include "host/plugin.h"
#include "model/config.h"
#include "model/fit.h"
#include "tensor/checkpoint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct tgood_state {
    int opens;
    int runs; /* commands run since open */
} tgood_state;

/* ---- the model kind "tlin" ---------------------------------------------------------- */

typedef struct tlin {
    float bias;
} tlin;

static int tlin_score_all(const rlab_model *m, const rlab_query *q, int nq, float *out,
                          rlab_err *err)
{
    (void)err;
    const tlin *t = m->impl;
    for (int b = 0; b < nq; b++)
        for (int32_t i = 0; i < m->n_items; i++)
            out[(size_t)b * (size_t)m->n_items + (size_t)i] =
                (float)((i * 7) % m->n_items) + 0.5f * (float)q[b].user + t->bias;
    return RLAB_OK;
}

static int tlin_tensors(const rlab_model *m, rlab_ckpt *ck, rlab_err *err)
{
    const tlin *t = m->impl;
    int64_t one = 1;
    return rlab_ckpt_add(ck, "tlin.bias", RLAB_DT_F32, 1, &one, &t->bias, err);
}

static void tlin_describe(const rlab_model *m, char *buf, size_t size)
{
    const tlin *t = m->impl;
    snprintf(buf, size, "tlin bias=%g over %d items", (double)t->bias, (int)m->n_items);
}

static void tlin_free(rlab_model *m) { rlab_free(m->impl); }

static const rlab_model_vt tlin_vt = {
    .score_all = tlin_score_all,
    .tensors = tlin_tensors,
    .describe = tlin_describe,
    .free = tlin_free,
};

static rlab_model *tlin_make(int32_t n_users, int32_t n_items, float bias, rlab_err *err)
{
    tlin *t = rlab_calloc(1, sizeof *t);
    if (!t) {
        rlab_errf(err, RLAB_ENOMEM, "out of memory");
        return NULL;
    }
    t->bias = bias;
    rlab_model *m = rlab_model_new(&tlin_vt, t, NULL, "tlin", err);
    if (m) {
        m->n_users = n_users;
        m->n_items = n_items;
    }
    return m;
}

typedef struct tlin_cfg {
    float bias;
} tlin_cfg;

static const rlab_field tlin_fields[] = {
    RLAB_FIELD_FLOAT(tlin_cfg, bias, "0", -100, 100, "added to every score"), {0}};

static rlab_model *tlin_restore(rlab_host *host, const rlab_ckpt *ck, const void *cfg,
                                rlab_err *err)
{
    (void)host;
    (void)cfg;
    int nd = 0;
    int64_t sh[8];
    const float *b = rlab_ckpt_tensor(ck, "tlin.bias", RLAB_DT_F32, &nd, sh, err);
    const char *nu = rlab_ckpt_meta_get(ck, "reclab.n_users");
    const char *ni = rlab_ckpt_meta_get(ck, "reclab.n_items");
    if (!b || nd != 1 || sh[0] != 1 || !nu || !ni) {
        if (err && !err->code)
            rlab_errf(err, RLAB_EFORMAT, "not a tlin checkpoint");
        return NULL;
    }
    return tlin_make((int32_t)atoi(nu), (int32_t)atoi(ni), b[0], err);
}

/* the kind on the core loop: one pass, the model made from the config */
typedef struct tlin_fit_state {
    rlab_model *m;
} tlin_fit_state;

static int tlin_begin(const rlab_fit *fit, void **state, rlab_err *err)
{
    tlin_fit_state *st = rlab_calloc(1, sizeof *st);
    if (!st)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    st->m =
        tlin_make(fit->view->n_users, fit->view->n_items, ((const tlin_cfg *)fit->cfg)->bias, err);
    if (!st->m) {
        rlab_free(st);
        return err->code;
    }
    *state = st;
    return RLAB_OK;
}

static int tlin_step(void *state, int64_t i, double *loss, double *weight, double *parts,
                     rlab_err *err)
{
    (void)state;
    (void)i;
    (void)weight;
    (void)parts;
    (void)err;
    *loss = 0.0;
    return RLAB_OK;
}

static rlab_model *tlin_model(void *state) { return ((tlin_fit_state *)state)->m; }

static void tlin_end(void *state)
{
    tlin_fit_state *st = state;
    rlab_model_release(st->m);
    rlab_free(st);
}

static const rlab_fit_ops tlin_fit = {
    .begin = tlin_begin, .step = tlin_step, .model = tlin_model, .end = tlin_end};

/* ---- commands -------------------------------------------------------------------------- */

static void note_run(rlab_ctx *ctx)
{
    tgood_state *st = rlab_ctx_state(ctx);
    if (st)
        st->runs++;
}

static int echo_run(rlab_ctx *ctx, const rlab_args *args)
{
    note_run(ctx);
    int64_t n = rlab_args_int(args, "n");
    for (int64_t i = 0; i < n; i++)
        rlab_ctx_printf(ctx, "%s", rlab_args_str(args, "msg"));
    rlab_ctx_result_int(ctx, "n", n);
    rlab_ctx_result_float(ctx, "f", rlab_args_float(args, "f"));
    rlab_ctx_result_int(ctx, "flag", rlab_args_bool(args, "flag"));
    rlab_ctx_result_str(ctx, "mode", rlab_args_str(args, "mode"));
    rlab_ctx_result_int(ctx, "mode_index", rlab_args_choice(args, "mode"));
    rlab_ctx_result_int(ctx, "msg_given", rlab_args_given(args, "msg"));
    const char *data = rlab_args_str(args, "data");
    if (data) {
        const rlab_dataset *ds = rlab_ctx_dataset(ctx, data);
        rlab_ctx_result_str(ctx, "data", ds ? ds->name : "?");
    }
    rlab_table *t =
        rlab_ctx_result_table(ctx, "rows", 3, (const char *const[]){"i", "twice", "label"});
    for (int i = 0; t && i < 3; i++)
        rlab_table_add_row(t, "ifs", i, 2.0 * i, i == 1 ? NULL : "x");
    return RLAB_OK;
}

static void nap_1ms(void)
{
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
}

/* Runs until cancelled (or max steps): the cancel-latency and FIFO tests use it. */
static int loop_run(rlab_ctx *ctx, const rlab_args *args)
{
    note_run(ctx);
    int64_t max = rlab_args_int(args, "max");
    for (int64_t step = 1; max == 0 || step <= max; step++) {
        if (rlab_ctx_cancelled(ctx))
            return RLAB_ECANCELED;
        rlab_ctx_progress(ctx, step, max, "spin", 1, (rlab_metric[]){{"step", (double)step}});
        nap_1ms();
    }
    return RLAB_OK;
}

static int count_run(rlab_ctx *ctx, const rlab_args *args)
{
    note_run(ctx);
    int64_t n = rlab_args_int(args, "n");
    for (int64_t i = 1; i <= n; i++) {
        if (rlab_ctx_cancelled(ctx))
            return RLAB_ECANCELED;
        float loss = 1.0f / (float)i;
        rlab_ctx_progress(ctx, i, n, "epoch", 2, (rlab_metric[]){{"loss", loss}, {"i", (double)i}});
        int rc = rlab_ctx_metric(ctx, i, "train", "loss", NULL, loss);
        if (rc)
            return rc;
    }
    rlab_ctx_printf(ctx, "counted to %lld", (long long)n);
    rlab_ctx_result_int(ctx, "count", n);
    return RLAB_OK;
}

static int fail_run(rlab_ctx *ctx, const rlab_args *args)
{
    note_run(ctx);
    rlab_ctx_printf(ctx, "about to fail");
    if (rlab_args_bool(args, "silent"))
        return RLAB_EIO; /* no message: the host uses the status name */
    return rlab_ctx_errorf(ctx, RLAB_EINVAL, "k must be < %d", 5);
}

static int scratch_run(rlab_ctx *ctx, const rlab_args *args)
{
    note_run(ctx);
    int64_t n = rlab_args_int(args, "blocks");
    for (int64_t i = 0; i < n; i++) {
        unsigned char *p = rlab_ctx_alloc(ctx, 1000 + (size_t)i);
        if (!p)
            return rlab_ctx_errorf(ctx, RLAB_ENOMEM, "scratch");
        if (((uintptr_t)p & 63u) != 0 || p[999] != 0)
            return rlab_ctx_errorf(ctx, RLAB_EINVAL, "scratch block not aligned or not zeroed");
        p[999] = 1;
    }
    return rlab_args_bool(args, "fail") ? rlab_ctx_errorf(ctx, RLAB_EINVAL,
                                                          "failed after "
                                                          "allocating")
                                        : RLAB_OK;
}

static int train_run(rlab_ctx *ctx, const rlab_args *args)
{
    note_run(ctx);
    int64_t items = rlab_args_int(args, "items");
    rlab_model *m =
        tlin_make(3, (int32_t)items, (float)rlab_args_float(args, "bias"), rlab_ctx_err(ctx));
    if (!m)
        return rlab_ctx_err(ctx)->code;
    snprintf(m->name, sizeof m->name, "%s", rlab_args_str(args, "name"));
    snprintf(m->dataset, sizeof m->dataset, "none");
    int rc = rlab_ctx_register_model(ctx, m);
    if (rc)
        return rc;
    rlab_ctx_result_model(ctx, "model", rlab_args_str(args, "name"));
    return RLAB_OK;
}

/* Uses a registered model through the registry: the top item for user 0. */
static int top_run(rlab_ctx *ctx, const rlab_args *args)
{
    note_run(ctx);
    const rlab_model *m = rlab_ctx_model(ctx, rlab_args_str(args, "model"));
    if (!m)
        return RLAB_ENOTFOUND;
    rlab_query q = {.user = 0};
    int32_t top = -1;
    int rc = rlab_model_topk(m, &q, 1, 1, NULL, &top, NULL, rlab_ctx_err(ctx));
    if (rc)
        return rc;
    rlab_ctx_result_int(ctx, "top", top);
    return RLAB_OK;
}

/* Integer arguments of every width: each value comes back as a result. */
static int ints_run(rlab_ctx *ctx, const rlab_args *args)
{
    static const char *const names[] = {"n", "rounds", "big", "seed", "id"};
    for (int i = 0; i < 5; i++)
        rlab_ctx_result_int(ctx, names[i], rlab_args_int(args, names[i]));
    return RLAB_OK;
}

static const char *const modes[] = {"a", "bb", "ccc", NULL};

static const rlab_arg echo_args[] = {
    {.name = "msg", .type = RLAB_ARG_STRING, .def = "hi", .help = "text to print"},
    {.name = "n",
     .type = RLAB_ARG_INT,
     .def = "1",
     .min = 1,
     .max = 5,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
     .help = "repetitions"},
    {.name = "f",
     .type = RLAB_ARG_FLOAT,
     .def = "0.5",
     .min = 0,
     .max = 1,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
     .help = "a fraction"},
    {.name = "flag", .type = RLAB_ARG_BOOL, .def = "false", .help = "a switch"},
    {.name = "mode", .type = RLAB_ARG_CHOICE, .def = "a", .choices = modes, .help = "style"},
    {.name = "data", .type = RLAB_ARG_DATASET, .help = "a dataset"},
    {.name = "out", .type = RLAB_ARG_PATH, .help = "a path"},
    {0}};

static const rlab_arg loop_args[] = {{.name = "max",
                                      .type = RLAB_ARG_INT,
                                      .def = "0",
                                      .min = 0,
                                      .flags = RLAB_ARGF_MIN,
                                      .help = "steps (0 = until cancelled)"},
                                     {0}};

static const rlab_arg count_args[] = {{.name = "n",
                                       .type = RLAB_ARG_INT,
                                       .flags = RLAB_ARGF_REQUIRED | RLAB_ARGF_MIN,
                                       .min = 1,
                                       .help = "how far"},
                                      {0}};

static const rlab_arg ints_args[] = {
    {.name = "n", .type = RLAB_ARG_INT, .def = "0", .help = "no bounds: int32_t"},
    {.name = "rounds",
     .type = RLAB_ARG_INT,
     .def = "1",
     .min = 1,
     .flags = RLAB_ARGF_MIN,
     .help = "a lower bound only"},
    {.name = "big",
     .type = RLAB_ARG_INT,
     .def = "0",
     .min = -1e12,
     .max = 1e12,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
     .help = "bounds wider than int32_t (clamped)"},
    {.name = "seed",
     .type = RLAB_ARG_INT,
     .def = "0",
     .min = 0,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_INT64,
     .help = "64-bit, >= 0"},
    {.name = "id", .type = RLAB_ARG_INT, .def = "0", .flags = RLAB_ARGF_INT64, .help = "64-bit"},
    {0}};

static const rlab_arg fail_args[] = {
    {.name = "silent", .type = RLAB_ARG_BOOL, .def = "no", .help = "fail without a message"}, {0}};

static const rlab_arg scratch_args[] = {
    {.name = "blocks",
     .type = RLAB_ARG_INT,
     .def = "10",
     .min = 0,
     .flags = RLAB_ARGF_MIN,
     .help = "blocks to allocate"},
    {.name = "fail", .type = RLAB_ARG_BOOL, .def = "false", .help = "fail afterwards"},
    {0}};

/* tgood.call cmd=... [data=] [bias=] [extra=k] [extra_value=v]: another command run through
 * the plugin API (rlab_ctx_args + typed setters + rlab_ctx_call), as a plugin calls a host
 * verb or another plugin; every setter's error is returned as is. */
static int call_run(rlab_ctx *ctx, const rlab_args *args)
{
    rlab_err *err = rlab_ctx_err(ctx);
    rlab_args *a = rlab_ctx_args(ctx, rlab_args_str(args, "cmd"));
    if (!a)
        return err->code;
    int rc = RLAB_OK;
    if (rlab_args_given(args, "data"))
        rc = rlab_args_set(a, "data", rlab_args_str(args, "data"), err);
    if (!rc && rlab_args_given(args, "bias"))
        rc = rlab_args_set_float(a, "bias", rlab_args_float(args, "bias"), err);
    if (!rc && rlab_args_given(args, "extra"))
        rc =
            rlab_args_set(a, rlab_args_str(args, "extra"), rlab_args_str(args, "extra_value"), err);
    if (rc) {
        rlab_args_free(a);
        return rc;
    }
    rlab_result *res = NULL;
    rc = rlab_ctx_call(ctx, a, &res);
    const rlab_cell *m = res ? rlab_result_scalar(res, "model") : NULL;
    if (rc == RLAB_OK && m && m->s)
        rlab_ctx_result_str(ctx, "called_model", m->s);
    rlab_result_free(res);
    return rc;
}

static const rlab_arg call_args[] = {
    {.name = "cmd", .type = RLAB_ARG_STRING, .flags = RLAB_ARGF_REQUIRED, .help = "command"},
    {.name = "data", .type = RLAB_ARG_STRING, .help = "its data argument"},
    {.name = "bias", .type = RLAB_ARG_FLOAT, .help = "its bias argument"},
    {.name = "extra", .type = RLAB_ARG_STRING, .help = "one more argument name"},
    {.name = "extra_value", .type = RLAB_ARG_STRING, .def = "1", .help = "and its value"},
    {0}};

static const rlab_arg train_args[] = {
    {.name = "name",
     .type = RLAB_ARG_MODEL,
     .flags = RLAB_ARGF_REQUIRED | RLAB_ARGF_NEW,
     .help = "name of the new model"},
    {.name = "items",
     .type = RLAB_ARG_INT,
     .def = "10",
     .min = 1,
     .flags = RLAB_ARGF_MIN,
     .help = "number of items"},
    {.name = "bias", .type = RLAB_ARG_FLOAT, .def = "0", .help = "score offset"},
    {0}};

static const rlab_arg top_args[] = {{.name = "model",
                                     .type = RLAB_ARG_MODEL,
                                     .flags = RLAB_ARGF_REQUIRED,
                                     .help = "a registered model"},
                                    {0}};

/* ---- a derived dataset with a recipe (plugin.h: rlab_dataset_maker) ---------------------- */

typedef struct derive_params {
    char parent[64];
    int k;
} derive_params;

static const rlab_field derive_fields[] = {
    RLAB_FIELD_STR(derive_params, parent, "", "parent dataset"),
    RLAB_FIELD_INT(derive_params, k, "1", 1, 1000000, "items kept"),
    {0}};

/* The interactions of parent on its first k items, as dataset name. */
static int derive_build(rlab_host *host, const derive_params *p, const char *name,
                        rlab_dataset **out, rlab_err *err)
{
    rlab_dataset *par = rlab_host_dataset_get(host, p->parent);
    if (!par)
        return rlab_errf(err, RLAB_ENOTFOUND, "parent '%s' is not available", p->parent);
    rlab_dataset *ds = rlab_dataset_new(name, err);
    int rc = ds ? RLAB_OK : RLAB_ENOMEM;
    for (int32_t u = 0; rc == RLAB_OK && u < par->users.n; u++)
        if (rlab_vocab_add(&ds->users, par->users.names[u], strlen(par->users.names[u])) < 0)
            rc = RLAB_ENOMEM;
    for (int32_t i = 0; rc == RLAB_OK && i < par->items.n && i < p->k; i++)
        if (rlab_vocab_add(&ds->items, par->items.names[i], strlen(par->items.names[i])) < 0)
            rc = RLAB_ENOMEM;
    for (size_t r = 0; rc == RLAB_OK && r < par->inter.n; r++)
        if (par->inter.item[r] < p->k)
            rc = rlab_inter_push(&ds->inter, par->inter.user[r], par->inter.item[r],
                                 par->inter.ts[r], par->inter.rating[r], NULL);
    rlab_host_dataset_release(host, par);
    if (rc) {
        rlab_dataset_free(ds);
        return rlab_errf(err, rc, "derive: out of memory");
    }
    *out = ds;
    return RLAB_OK;
}

static int derive_rebuild(rlab_host *host, const char *name, const char *params, rlab_dataset **out,
                          rlab_err *err)
{
    derive_params p;
    int rc = rlab_config_defaults(derive_fields, NULL, &p, err);
    if (rc == RLAB_OK)
        rc = rlab_config_from_json(derive_fields, &p, params, 1, err);
    return rc ? rc : derive_build(host, &p, name, out, err);
}

static int derive_run(rlab_ctx *ctx, const rlab_args *args)
{
    derive_params p;
    memset(&p, 0, sizeof p);
    snprintf(p.parent, sizeof p.parent, "%s", rlab_args_str(args, "parent"));
    p.k = (int)rlab_args_int(args, "k");
    rlab_dataset *ds = NULL;
    int rc =
        derive_build(rlab_ctx_host(ctx), &p, rlab_args_str(args, "name"), &ds, rlab_ctx_err(ctx));
    if (rc)
        return rc;
    char *json = rlab_config_to_json(derive_fields, &p);
    rc = json ? rlab_ctx_add_dataset_recipe(ctx, ds, rlab_args_str(args, "maker"), json)
              : (rlab_dataset_free(ds), rlab_ctx_errorf(ctx, RLAB_ENOMEM, "out of memory"));
    rlab_free(json);
    return rc;
}

static const rlab_arg derive_args[] = {
    {.name = "parent", .type = RLAB_ARG_DATASET, .flags = RLAB_ARGF_REQUIRED, .help = "parent"},
    {.name = "k",
     .type = RLAB_ARG_INT,
     .def = "5",
     .min = 1,
     .flags = RLAB_ARGF_MIN,
     .help = "items kept"},
    {.name = "name", .type = RLAB_ARG_STRING, .def = "derived", .help = "new dataset"},
    {.name = "maker", .type = RLAB_ARG_STRING, .def = "derive", .help = "maker to record"},
    {0}};

static const rlab_dataset_maker tgood_makers[] = {{.name = "derive", .rebuild = derive_rebuild},
                                                  {0}};

static const rlab_cmd tgood_cmds[] = {
    {.name = "derive",
     .args = derive_args,
     .flags = RLAB_CMD_JOB,
     .run = derive_run,
     .help = "A dataset derived from another, rebuilt on reopen."},
    {.name = "call",
     .args = call_args,
     .run = call_run,
     .help = "Run another command through the plugin API."},
    {.name = "echo",
     .args = echo_args,
     .run = echo_run,
     .help = "Print a message.\nEchoes msg n times and returns typed results."},
    {.name = "loop",
     .args = loop_args,
     .flags = RLAB_CMD_JOB,
     .run = loop_run,
     .help = "Spin until cancelled."},
    {.name = "count",
     .args = count_args,
     .flags = RLAB_CMD_JOB,
     .run = count_run,
     .help = "Count with progress."},
    {.name = "fail", .args = fail_args, .run = fail_run, .help = "Always fail."},
    {.name = "scratch",
     .args = scratch_args,
     .run = scratch_run,
     .help = "Allocate scratch memory."},
    {.name = "train",
     .args = train_args,
     .flags = RLAB_CMD_JOB,
     .run = train_run,
     .help = "Make a tlin model."},
    {.name = "top",
     .args = top_args,
     .flags = RLAB_CMD_READONLY,
     .run = top_run,
     .help = "Top item of a model for user 0."},
    {.name = "ints",
     .args = ints_args,
     .flags = RLAB_CMD_READONLY,
     .run = ints_run,
     .help = "Integer arguments of every width."},
    {0}};

static const rlab_model_kind tgood_kinds[] = {{.name = "tlin",
                                               .summary = "test linear scorer",
                                               .config = tlin_fields,
                                               .config_size = sizeof(tlin_cfg),
                                               .flags = RLAB_KIND_ONESHOT,
                                               .fit = &tlin_fit,
                                               .restore = tlin_restore},
                                              {0}};

static const rlab_migration tgood_schema[] = {
    {.sql = "CREATE TABLE tgood_notes(id INTEGER PRIMARY KEY, text TEXT)", .note = "notes table"},
    {0}};

static const rlab_view_kind tgood_views[] = {
    {.name = "notes", .title = "Notes", .kind = "table", .source = "SELECT * FROM tgood_notes"},
    {0}};

static int tgood_open(rlab_host *host, void **state, rlab_err *err)
{
    (void)host;
    tgood_state *st = rlab_calloc(1, sizeof *st);
    if (!st)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    st->opens = 1;
    *state = st;
    return RLAB_OK;
}

static void tgood_close(void *state) { rlab_free(state); }

RLAB_PLUGIN(tgood)
{
    RLAB_PLUGIN_INIT(out);
    out->name = "tgood";
    out->version = "1.2.3";
    out->summary = "test plugin exercising every ABI feature";
    out->makers = tgood_makers;
    out->commands = tgood_cmds;
    out->models = tgood_kinds;
    out->schema = tgood_schema;
    out->views = tgood_views;
    out->open = tgood_open;
    out->close = tgood_close;
    return RLAB_OK;
}
