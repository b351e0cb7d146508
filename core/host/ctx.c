/*
 * core/host/ctx.c: running one command. The context a plugin's run function receives:
 * output lines, typed results, errors, scratch memory, cancellation, progress, held
 * datasets and models. rlab__run_job is the one path every command takes, sync or job.
 */
#include "host/host_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct rlab_scratch {
    rlab_scratch *next;
    unsigned char pad[56]; /* header is 64 bytes so the payload stays 64-byte aligned */
};

/* ---- results --------------------------------------------------------------------------- */

rlab_result *rlab__result_new(void) { return rlab_calloc(1, sizeof(rlab_result)); }

static void cell_clear(rlab_cell *c)
{
    if (c->type == RLAB_CELL_TEXT || c->type == RLAB_CELL_MODEL)
        rlab_free((void *)(uintptr_t)c->s);
    memset(c, 0, sizeof *c);
}

static void table_free(rlab_table *t)
{
    if (!t)
        return;
    for (int64_t i = 0; i < t->nrows * t->ncols; i++)
        cell_clear(&t->cells[i]);
    rlab_free(t->cells);
    for (int j = 0; j < t->ncols; j++)
        rlab_free(t->cols[j]);
    rlab_free(t->cols);
    rlab_free(t->name);
    rlab_free(t);
}

void rlab_result_free(rlab_result *res)
{
    if (!res)
        return;
    for (int i = 0; i < res->nlines; i++)
        rlab_free(res->lines[i]);
    rlab_free(res->lines);
    for (int i = 0; i < res->nscalars; i++) {
        rlab_free(res->scalars[i].name);
        cell_clear(&res->scalars[i].value);
    }
    rlab_free(res->scalars);
    for (int i = 0; i < res->ntables; i++)
        table_free(res->tables[i]);
    rlab_free(res->tables);
    rlab_free(res);
}

const rlab_cell *rlab_result_scalar(const rlab_result *res, const char *name)
{
    for (int i = 0; res && name && i < res->nscalars; i++)
        if (strcmp(res->scalars[i].name, name) == 0)
            return &res->scalars[i].value;
    return NULL;
}

static int grow(void **p, int *cap, int need, size_t elem)
{
    if (need <= *cap)
        return 1;
    int nc = *cap ? 2 * *cap : 8;
    while (nc < need)
        nc *= 2;
    void *np = rlab_realloc(*p, (size_t)nc * elem);
    if (!np)
        return 0;
    *p = np;
    *cap = nc;
    return 1;
}

/* ---- context basics -------------------------------------------------------------------- */

rlab_host *rlab_ctx_host(const rlab_ctx *ctx) { return ctx->host; }

const char *rlab_ctx_command(const rlab_ctx *ctx) { return ctx->cmd->full; }

void *rlab_ctx_state(const rlab_ctx *ctx) { return ctx->cmd->plugin->state; }

int rlab_ctx_job_id(const rlab_ctx *ctx) { return ctx->job->id; }

/* A job is cancelled when it, a command that called it (parent) or the job whose thread
 * started it (outer: a lua.run script calling train) is. */
int rlab_ctx_cancelled(const rlab_ctx *ctx)
{
    for (; ctx; ctx = ctx->job->parent)
        for (const rlab_job *j = ctx->job; j; j = j->outer)
            if (atomic_load_explicit(&j->cancel, memory_order_relaxed) != 0)
                return 1;
    return 0;
}

rlab_err *rlab_ctx_err(rlab_ctx *ctx) { return &ctx->err; }

int rlab_ctx_errorf(rlab_ctx *ctx, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    rlab_verrf(&ctx->err, code, fmt, ap);
    va_end(ap);
    return code;
}

void *rlab_ctx_alloc(rlab_ctx *ctx, size_t n)
{
    if (n > SIZE_MAX - sizeof(rlab_scratch))
        return NULL;
    rlab_scratch *s = rlab_malloc_aligned(sizeof *s + n);
    if (!s)
        return NULL;
    memset(s, 0, sizeof *s + n);
    s->next = ctx->scratch;
    ctx->scratch = s;
    return s + 1;
}

static void add_line(rlab_ctx *ctx, const char *line)
{
    rlab_result *r = ctx->res;
    char *s = rlab_strdup(line);
    if (!s || !grow((void **)&r->lines, &r->cap_lines, r->nlines + 1, sizeof *r->lines)) {
        rlab_free(s);
        ctx->oom = 1;
        return;
    }
    r->lines[r->nlines++] = s;
    rlab_event ev = {.type = RLAB_EV_LOG,
                     .job_id = ctx->job->id,
                     .cmd = ctx->cmd->full,
                     .run_id = ctx->run_id,
                     .text = line};
    rlab__emit(ctx->host, &ev);
}

void rlab_ctx_printf(rlab_ctx *ctx, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    char *text = small;
    if ((size_t)n >= sizeof small) {
        text = rlab_malloc((size_t)n + 1);
        if (!text) {
            ctx->oom = 1;
            return;
        }
        va_start(ap, fmt);
        vsnprintf(text, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    /* one result line per text line; a trailing newline does not make an empty line */
    char *p = text;
    while (*p) {
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = '\0';
        add_line(ctx, p);
        if (!nl)
            break;
        p = nl + 1;
    }
    if (n == 0)
        add_line(ctx, "");
    if (text != small)
        rlab_free(text);
}

void rlab_ctx_progress(rlab_ctx *ctx, int64_t step, int64_t total, const char *label, int n,
                       const rlab_metric *metrics)
{
    rlab_host *h = ctx->host;
    double now = rlab_now();
    /* a call made by a command that names its place in a whole (a sweep's "run 3/12"):
     * the label says both */
    char grouped[96];
    for (const rlab_ctx *up = ctx->job->parent; up; up = up->job->parent)
        if (up->group[0]) {
            snprintf(grouped, sizeof grouped, "%s %s", up->group, label ? label : "");
            label = grouped;
            break;
        }
    pthread_mutex_lock(&h->mu);
    double interval = h->progress_interval;
    rlab_job *job = ctx->job;
    job->step = step;
    job->total = total;
    snprintf(job->label, sizeof job->label, "%.*s", (int)sizeof job->label - 1, label ? label : "");
    pthread_mutex_unlock(&h->mu);
    int edge = ctx->nprogress == 0 || (total > 0 && step >= total);
    if (!edge && interval > 0 && now - ctx->last_progress < interval)
        return;
    ctx->nprogress++;
    ctx->last_progress = now;
    rlab_event ev = {.type = RLAB_EV_PROGRESS,
                     .job_id = job->id,
                     .cmd = ctx->cmd->full,
                     .run_id = ctx->run_id,
                     .step = step,
                     .total = total,
                     .label = label ? label : "",
                     .nmetrics = metrics ? n : 0,
                     .metrics = metrics};
    rlab__emit(h, &ev);
}

/* ---- held datasets and models ------------------------------------------------------------ */

const rlab_dataset *rlab_ctx_dataset(rlab_ctx *ctx, const char *name)
{
    for (int i = 0; i < ctx->nheld_ds; i++)
        if (strcmp(ctx->held_ds[i]->name, name) == 0)
            return ctx->held_ds[i];
    rlab_err e = {0};
    rlab_dataset *ds = rlab__dataset_get_err(ctx->host, name, &e);
    if (!ds) {
        /* the reason: not found, dialogues, or a recorded source that changed */
        if (e.code)
            ctx->err = e;
        else
            rlab_errf(&ctx->err, RLAB_ENOTFOUND, "dataset '%s' not found", name ? name : "");
        return NULL;
    }
    if (!grow((void **)&ctx->held_ds, &ctx->cap_held_ds, ctx->nheld_ds + 1, sizeof *ctx->held_ds)) {
        rlab_host_dataset_release(ctx->host, ds);
        rlab_errf(&ctx->err, RLAB_ENOMEM, "out of memory");
        return NULL;
    }
    ctx->held_ds[ctx->nheld_ds++] = ds;
    return ds;
}

const rlab_dialogues *rlab_ctx_dialogues(rlab_ctx *ctx, const char *name)
{
    rlab_err e = {0};
    rlab_dialogues *d = name ? rlab__dialogues_get_err(ctx->host, name, &e) : NULL;
    if (!d) {
        if (e.code)
            ctx->err = e;
        else
            rlab_errf(&ctx->err, RLAB_ENOTFOUND, "dataset '%s' not found", name ? name : "");
        return NULL;
    }
    /* held_dlg may hold d already (same entry): one reference per call, released at the end */
    if (!grow((void **)&ctx->held_dlg, &ctx->cap_held_dlg, ctx->nheld_dlg + 1,
              sizeof *ctx->held_dlg)) {
        rlab_host_dialogues_release(ctx->host, d);
        rlab_errf(&ctx->err, RLAB_ENOMEM, "out of memory");
        return NULL;
    }
    ctx->held_dlg[ctx->nheld_dlg++] = d;
    return d;
}

const rlab_model *rlab_ctx_model(rlab_ctx *ctx, const char *name)
{
    for (int i = 0; i < ctx->nheld_models; i++)
        if (strcmp(ctx->held_models[i]->name, name) == 0)
            return ctx->held_models[i];
    rlab_model *m = rlab_models_get(ctx->host->models, name);
    if (!m && name) {
        /* not in the session: restore it from the store when an earlier session saved it */
        rlab_err rerr = {0};
        if (!ctx->db) { /* before the run starts: the connection this thread will use */
            if (ctx->job && !ctx->job->sync)
                rlab__worker_db(ctx->host, ctx);
            else
                ctx->db = ctx->host->db;
        }
        if (rlab__host_restore_model(ctx->host, ctx->db, name, &rerr) == RLAB_OK)
            m = rlab_models_get(ctx->host->models, name);
        else if (rerr.code != RLAB_ENOTFOUND)
            rlab_log(RLAB_LOG_WARN, "restoring model '%s': %s", name, rerr.msg);
    }
    if (!m) {
        rlab_errf(&ctx->err, RLAB_ENOTFOUND, "model '%s' not found", name ? name : "");
        return NULL;
    }
    if (!grow((void **)&ctx->held_models, &ctx->cap_held_models, ctx->nheld_models + 1,
              sizeof *ctx->held_models)) {
        rlab_model_release(m);
        rlab_errf(&ctx->err, RLAB_ENOMEM, "out of memory");
        return NULL;
    }
    ctx->held_models[ctx->nheld_models++] = m;
    return m;
}

int rlab_ctx_run_describe(rlab_ctx *ctx, const char *model_kind, const char *dataset)
{
    if (!ctx->db || !ctx->run_id)
        return RLAB_OK;
    /* a label of the run row: a store error is logged, it does not fail the command */
    rlab_err e = {0};
    int rc = rlab_db_run_describe(ctx->db, ctx->run_id, model_kind, dataset, &e);
    if (rc)
        rlab_log(RLAB_LOG_WARN, "run %lld: %s", (long long)ctx->run_id, e.msg);
    return rc;
}

int rlab_ctx_register_model(rlab_ctx *ctx, rlab_model *m)
{
    if (m && !m->plugin[0])
        snprintf(m->plugin, sizeof m->plugin, "%s", ctx->cmd->plugin->name);
    char kind[sizeof m->kind] = "", ds[sizeof m->dataset] = "";
    if (m) {
        snprintf(kind, sizeof kind, "%s", m->kind);
        snprintf(ds, sizeof ds, "%s", m->dataset);
    }
    char name[sizeof m->name] = "";
    int keep = m && m->vt && m->vt->tensors && ctx->db && ctx->host->keep_models;
    if (m)
        snprintf(name, sizeof name, "%s", m->name);
    int rc = rlab_models_add(ctx->host->models, m, &ctx->err);
    if (rc == RLAB_OK) /* the run row shows what it trained */
        rlab_ctx_run_describe(ctx, kind[0] ? kind : NULL, ds[0] ? ds : NULL);
    if (rc == RLAB_OK && keep) {
        /* Every model a command makes is kept in the workspace (its checkpoint as the run's
         * artifact and a models row), so a reopened workspace has it: restored on first use.
         * A model that cannot be written is still registered; the log says why it is not kept. */
        char *p = NULL;
        rlab_err e = {0};
        if (rlab__host_save_model_ctx(ctx->host, ctx, name, NULL, &p, &e) != RLAB_OK)
            rlab_ctx_printf(ctx, "warning: model '%s' is not kept in the workspace: %s", name,
                            e.msg);
        rlab_free(p);
    }
    return rc;
}

int rlab_ctx_resolved(rlab_ctx *ctx, const char *name, const char *value)
{
    if (!value)
        return rlab_errf(&ctx->err, RLAB_EINVAL, "rlab_ctx_resolved: no value for '%s'",
                         name ? name : "");
    int rc = rlab__args_resolve(ctx->job->args, name, value, &ctx->err);
    if (rc == RLAB_OK)
        ctx->resolved = 1; /* rlab__run_end rewrites the run's config */
    return rc;
}

int rlab_ctx_add_dataset(rlab_ctx *ctx, rlab_dataset *ds)
{
    return rlab_host_add_dataset(ctx->host, ds, &ctx->err);
}

int rlab_ctx_add_dataset_recipe(rlab_ctx *ctx, rlab_dataset *ds, const char *maker,
                                const char *params)
{
    const char *plugin = ctx->cmd && ctx->cmd->plugin ? ctx->cmd->plugin->name : NULL;
    return rlab__add_derived(ctx->host, ctx->db, plugin, ds, maker, params, &ctx->err);
}

rlab_db *rlab_ctx_db(rlab_ctx *ctx) { return ctx->db; }

int64_t rlab_ctx_run_id(const rlab_ctx *ctx) { return ctx->run_id; }

/* ---- scalar and table results -------------------------------------------------------------- */

static rlab_cell *scalar_slot(rlab_ctx *ctx, const char *name)
{
    rlab_result *r = ctx->res;
    for (int i = 0; i < r->nscalars; i++)
        if (strcmp(r->scalars[i].name, name) == 0) {
            cell_clear(&r->scalars[i].value);
            return &r->scalars[i].value;
        }
    char *n = rlab_strdup(name);
    if (!n || !grow((void **)&r->scalars, &r->cap_scalars, r->nscalars + 1, sizeof *r->scalars)) {
        rlab_free(n);
        ctx->oom = 1;
        return NULL;
    }
    r->scalars[r->nscalars].name = n;
    memset(&r->scalars[r->nscalars].value, 0, sizeof(rlab_cell));
    return &r->scalars[r->nscalars++].value;
}

void rlab_ctx_result_int(rlab_ctx *ctx, const char *name, int64_t v)
{
    rlab_cell *c = scalar_slot(ctx, name);
    if (c) {
        c->type = RLAB_CELL_INT;
        c->i = v;
    }
}

void rlab_ctx_result_float(rlab_ctx *ctx, const char *name, double v)
{
    rlab_cell *c = scalar_slot(ctx, name);
    if (c) {
        c->type = RLAB_CELL_FLOAT;
        c->f = v;
    }
}

static void result_text(rlab_ctx *ctx, const char *name, const char *v, rlab_cell_type t)
{
    rlab_cell *c = scalar_slot(ctx, name);
    if (!c)
        return;
    if (!v)
        return; /* NULL stays a null cell */
    c->s = rlab_strdup(v);
    if (!c->s)
        ctx->oom = 1;
    else
        c->type = t;
}

void rlab_ctx_result_str(rlab_ctx *ctx, const char *name, const char *v)
{
    result_text(ctx, name, v, RLAB_CELL_TEXT);
}

void rlab_ctx_result_model(rlab_ctx *ctx, const char *name, const char *model_name)
{
    result_text(ctx, name, model_name, RLAB_CELL_MODEL);
}

rlab_table *rlab_ctx_result_table(rlab_ctx *ctx, const char *name, int ncols,
                                  const char *const *cols)
{
    rlab_result *r = ctx->res;
    rlab_table *t = rlab_calloc(1, sizeof *t);
    if (!t || ncols < 0)
        goto fail;
    t->name = rlab_strdup(name ? name : "");
    t->cols = rlab_calloc(ncols ? (size_t)ncols : 1, sizeof *t->cols);
    if (!t->name || !t->cols)
        goto fail;
    t->ncols = ncols;
    for (int j = 0; j < ncols; j++)
        if (!(t->cols[j] = rlab_strdup(cols && cols[j] ? cols[j] : "")))
            goto fail;
    if (!grow((void **)&r->tables, &r->cap_tables, r->ntables + 1, sizeof *r->tables))
        goto fail;
    r->tables[r->ntables++] = t;
    return t;
fail:
    table_free(t);
    ctx->oom = 1;
    return NULL;
}

static int table_reserve_row(rlab_table *t)
{
    if (t->nrows < t->cap)
        return 1;
    int64_t cap = t->cap ? 2 * t->cap : 16;
    rlab_cell *nc =
        rlab_realloc(t->cells, (size_t)cap * (size_t)(t->ncols ? t->ncols : 1) * sizeof *nc);
    if (!nc)
        return 0;
    t->cells = nc;
    t->cap = cap;
    return 1;
}

int rlab_table_add_cells(rlab_table *t, const rlab_cell *row)
{
    if (!t)
        return RLAB_EINVAL;
    if (!table_reserve_row(t))
        return RLAB_ENOMEM;
    rlab_cell *dst = t->cells + t->nrows * t->ncols;
    for (int j = 0; j < t->ncols; j++) {
        dst[j] = row[j];
        if ((row[j].type == RLAB_CELL_TEXT || row[j].type == RLAB_CELL_MODEL)) {
            dst[j].s = row[j].s ? rlab_strdup(row[j].s) : NULL;
            if (!dst[j].s) {
                if (row[j].s) {
                    for (int k = 0; k < j; k++)
                        cell_clear(&dst[k]);
                    return RLAB_ENOMEM;
                }
                dst[j].type = RLAB_CELL_NULL;
            }
        }
    }
    t->nrows++;
    return RLAB_OK;
}

int rlab_table_add_row(rlab_table *t, const char *types, ...)
{
    if (!t || !types || (int)strlen(types) != t->ncols)
        return RLAB_EINVAL;
    rlab_cell stackrow[16];
    rlab_cell *row = t->ncols <= 16 ? stackrow : rlab_calloc((size_t)t->ncols, sizeof *row);
    if (!row)
        return RLAB_ENOMEM;
    va_list ap;
    va_start(ap, types);
    int rc = RLAB_OK;
    for (int j = 0; j < t->ncols; j++) {
        rlab_cell c = {0};
        switch (types[j]) {
        case 'i':
            c.type = RLAB_CELL_INT;
            c.i = va_arg(ap, int);
            break;
        case 'l':
            c.type = RLAB_CELL_INT;
            c.i = va_arg(ap, int64_t);
            break;
        case 'f':
            c.type = RLAB_CELL_FLOAT;
            c.f = va_arg(ap, double);
            break;
        case 's':
            c.s = va_arg(ap, const char *);
            c.type = c.s ? RLAB_CELL_TEXT : RLAB_CELL_NULL;
            break;
        case 'm':
            c.s = va_arg(ap, const char *);
            c.type = c.s ? RLAB_CELL_MODEL : RLAB_CELL_NULL;
            break;
        case '-':
            break;
        default:
            rc = RLAB_EINVAL;
            break;
        }
        row[j] = c;
    }
    va_end(ap);
    if (rc == RLAB_OK)
        rc = rlab_table_add_cells(t, row);
    if (row != stackrow)
        rlab_free(row);
    return rc;
}

int rlab_ctx_metric(rlab_ctx *ctx, int64_t step, const char *split, const char *name,
                    const char *protocol, double value)
{
    char key[160];
    snprintf(key, sizeof key, "%s.%s", split ? split : "", name ? name : "");
    rlab_ctx_result_float(ctx, key, value);
    if (!ctx->db || !ctx->run_id)
        return RLAB_OK;
    return rlab_db_metric(ctx->db, ctx->run_id, step, split, name, protocol, value, &ctx->err);
}

/* ---- the run path ----------------------------------------------------------------------- */

/* Hold every dataset/model named by the arguments (existence check at start). A name to
 * create (RLAB_ARGF_NEW) must fit a name field: plugins copy it into m->name / ds->name, and
 * a cut name would silently replace another object sharing its first 63 bytes. */
static int hold_named(rlab_ctx *ctx, const rlab_args *args)
{
    for (int i = 0; i < rlab__args_count(args); i++) {
        const rlab_arg *a = rlab__args_decl(args, i);
        if ((a->type != RLAB_ARG_DATASET && a->type != RLAB_ARG_MODEL) ||
            !rlab__args_is_set(args, i))
            continue;
        const char *v = rlab_args_str(args, a->name);
        if (a->flags & RLAB_ARGF_NEW) {
            int rc =
                rlab_name_check(a->type == RLAB_ARG_DATASET ? "dataset" : "model", v, &ctx->err);
            if (rc)
                return rc;
            continue;
        }
        if (a->type == RLAB_ARG_DATASET && rlab__is_dialogues(ctx->host, v)) {
            if (!rlab_ctx_dialogues(ctx, v)) /* a dialogue corpus: the command says if it fits */
                return ctx->err.code;
            continue;
        }
        if (a->type == RLAB_ARG_DATASET ? !rlab_ctx_dataset(ctx, v) : !rlab_ctx_model(ctx, v))
            return ctx->err.code;
    }
    return RLAB_OK;
}

static _Thread_local rlab_job *tl_job; /* the job running on this thread */

rlab_job *rlab__current_job(void) { return tl_job; }

static _Thread_local rlab_ctx *tl_ctx; /* the command running on this thread (innermost) */

rlab_ctx *rlab__current_ctx(void) { return tl_ctx; }

void rlab__run_job(rlab_host *h, rlab_job *job)
{
    rlab_ctx ctx = {.host = h, .job = job, .cmd = job->cmd};
    rlab_job *prev_job = tl_job;
    if (!job->parent) /* a nested call (rlab_ctx_call) belongs to its caller's job */
        tl_job = job;
    double t0 = rlab_now();
    int rc;
    ctx.res = rlab__result_new();
    if (!ctx.res) {
        rc = RLAB_ENOMEM;
        rlab_errf(&ctx.err, rc, "out of memory");
    } else {
        rc = rlab_args_finish(job->args, &ctx.err);
        if (rc == RLAB_OK)
            rc = rlab__sandbox_args(h, job->args, &ctx.err);
        if (rc == RLAB_OK) {
            ctx.err.msg[0] = '\0';
            rc = hold_named(&ctx, job->args);
        }
    }
    if (rc == RLAB_OK)
        rc = rlab__run_begin(&ctx, &ctx.err);
    if (rc == RLAB_OK) {
        rlab_event ev = {.type = RLAB_EV_STARTED,
                         .job_id = job->id,
                         .cmd = job->cmd->full,
                         .run_id = ctx.run_id,
                         .outer_job = job->outer ? job->outer->id : 0};
        if (!job->parent)
            rlab__emit(h, &ev);
        if (rlab_ctx_cancelled(&ctx))
            rc = RLAB_ECANCELED; /* cancelled between dequeue and start */
        else {
            rlab_ctx *prev_ctx = tl_ctx;
            tl_ctx = &ctx;
            rc = job->cmd->ref.cmd->run(&ctx, job->args);
            tl_ctx = prev_ctx;
        }
        if (rc == RLAB_OK && ctx.oom)
            rc = rlab_errf(&ctx.err, RLAB_ENOMEM, "out of memory recording results");
    }
    /* final message: "<cmd>: <why>" (argument errors already carry the prefix) */
    char message[512] = ""; /* "<cmd>: <why>" always fits; trimmed to job->message below */
    const char *full = job->cmd->full;
    size_t fl = strlen(full);
    if (rc == RLAB_ECANCELED) {
        snprintf(message, sizeof message, "%s: cancelled", full);
    } else if (rc != RLAB_OK) {
        const char *msg = ctx.err.msg[0] ? ctx.err.msg : rlab_status_name(rc);
        if (strncmp(msg, full, fl) == 0 && msg[fl] == ':')
            snprintf(message, sizeof message, "%s", msg);
        else
            snprintf(message, sizeof message, "%s: %s", full, msg);
    }

    /* A command whose run cannot be closed (its buffered metrics were dropped) fails: the
     * allocation-failure sweep found this reported only in the log. The run is then marked
     * `interrupted` when the store is next opened. */
    rlab_err end_err = {0};
    if (rlab__run_end(&ctx, rc, message, &end_err) != RLAB_OK && rc == RLAB_OK) {
        rc = end_err.code;
        snprintf(message, sizeof message, "%s", end_err.msg);
    }

    /* release what the command held, free its scratch */
    for (int i = 0; i < ctx.nheld_ds; i++)
        rlab_host_dataset_release(h, ctx.held_ds[i]);
    rlab_free(ctx.held_ds);
    for (int i = 0; i < ctx.nheld_models; i++)
        rlab_model_release(ctx.held_models[i]);
    rlab_free(ctx.held_models);
    for (int i = 0; i < ctx.nheld_dlg; i++)
        rlab_host_dialogues_release(h, ctx.held_dlg[i]);
    rlab_free(ctx.held_dlg);
    for (rlab_scratch *s = ctx.scratch, *next; s; s = next) {
        next = s->next;
        rlab_free_aligned(s);
    }
    double t1 = rlab_now();
    rlab_event ev = {.type = RLAB_EV_DONE,
                     .job_id = job->id,
                     .cmd = full,
                     .run_id = ctx.run_id,
                     .status = rc,
                     .text = message,
                     .elapsed = t1 - t0};
    if (!job->parent)
        rlab__emit(h, &ev);
    tl_job = prev_job;

    /* publish last: once the state is final a waiter may collect and free the job */
    pthread_mutex_lock(&h->mu);
    job->status = rc;
    job->state = rc == RLAB_OK          ? RLAB_JOB_DONE
                 : rc == RLAB_ECANCELED ? RLAB_JOB_CANCELLED
                                        : RLAB_JOB_FAILED;
    memcpy(job->message, message, sizeof job->message - 1);
    job->message[sizeof job->message - 1] = '\0';
    job->ended_at = t1;
    job->res = ctx.res;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
}

/* ---- nested calls (plugin.h) ----------------------------------------------------------- */

rlab_args *rlab_ctx_args(rlab_ctx *ctx, const char *full)
{
    return rlab_args_new(ctx->host, full, &ctx->err);
}

int rlab_ctx_call(rlab_ctx *ctx, rlab_args *args, rlab_result **res)
{
    if (res)
        *res = NULL;
    if (!args)
        return rlab_errf(&ctx->err, RLAB_EINVAL, "call: no arguments");
    rlab_err err = {0};
    int rc = rlab_args_finish(args, &err);
    if (rc) {
        rlab_args_free(args);
        rlab_errf(&ctx->err, rc, "%s", err.msg);
        return rc;
    }
    rlab_job *j = rlab__job_new(ctx->host, args, 1, &err);
    if (!j) {
        rlab_errf(&ctx->err, RLAB_ENOMEM, "%s", err.msg);
        return RLAB_ENOMEM;
    }
    j->parent = ctx;
    j->id = ctx->job->id; /* its output belongs to the calling job */
    j->started_at = rlab_now();
    rlab__run_job(ctx->host, j);
    ctx->last_call_run = j->run_id;
    rc = j->status;
    if (rc)
        rlab_errf(&ctx->err, rc, "%s", j->message);
    if (res) {
        *res = j->res;
        j->res = NULL;
    }
    rlab__job_free(j);
    return rc;
}

int64_t rlab__ctx_last_call_run(const rlab_ctx *ctx) { return ctx->last_call_run; }

void rlab__ctx_group(rlab_ctx *ctx, const char *label)
{
    snprintf(ctx->group, sizeof ctx->group, "%s", label ? label : "");
}

int rlab_ctx_call_line(rlab_ctx *ctx, const char *line, rlab_result **res)
{
    if (res)
        *res = NULL;
    rlab_args *a = NULL;
    int rc = rlab_host_parse(ctx->host, line, &a, &ctx->err);
    if (rc)
        return rc;
    return rlab_ctx_call(ctx, a, res);
}
