/*
 * core/host/hoststore.c: the host's use of the session store. Run rows for commands, plugin
 * schema migrations at load, metrics from rlab_ctx_metric, model artifacts. Every function
 * is a no-op when no store is attached, so the host works without one (tests, `reclab -e`).
 *
 * Connections (store.h: one thread per connection): h->db belongs to the ui thread and is
 * used by sync runs; each worker (job, query) opens its own on its first job after a store
 * change (db_gen) and closes it when it exits.
 */
#include "host/host_internal.h"

#include <stdio.h>
#include <string.h>

int rlab__store_migrate(rlab_host *h, const rlab_plugin_rec *p, rlab_err *err)
{
    if (!h->db || !p->desc.schema)
        return RLAB_OK;
    int n = 0;
    while (p->desc.schema[n].sql || p->desc.schema[n].fn)
        n++;
    if (n == 0)
        return RLAB_OK;
    return rlab_db_plugin_migrate(h->db, p->name, p->desc.schema, n, err);
}

int rlab_host_set_store(rlab_host *h, const char *path, rlab_err *err)
{
    if (rlab_host_busy(h))
        return rlab_errf(err, RLAB_ESTATE, "cannot change the store while jobs run");
    rlab_db *db = NULL;
    char *copy = NULL;
    if (path) {
        db = rlab_db_open(path, 0, err);
        if (!db)
            return err ? err->code : RLAB_EDB;
        copy = rlab_strdup(path);
        if (!copy) {
            rlab_db_close(db);
            return rlab_errf(err, RLAB_ENOMEM, "out of memory");
        }
    }
    rlab_db_close(h->db);
    pthread_mutex_lock(&h->mu);
    rlab_free(h->db_path);
    h->db_path = copy;
    h->db_gen++;
    pthread_mutex_unlock(&h->mu);
    h->db = db;
    /* bring every loaded plugin's tables up to date */
    for (int i = 0; db && i < h->nplugins; i++) {
        int rc = rlab__store_migrate(h, h->plugins[i], err);
        if (rc)
            return rc;
    }
    /* the workspace's datasets: listed now, rebuilt on first use (datasets.c) */
    return rlab__datasets_from_store(h, db, err);
}

rlab_db *rlab_host_db(rlab_host *h) { return h ? h->db : NULL; }

/* Called on a worker thread before each job: (re)open that worker's own connection. */
void rlab__worker_db(rlab_host *h, rlab_ctx *ctx)
{
    rlab_worker *w = &h->workers[ctx->job->lane];
    pthread_mutex_lock(&h->mu);
    int gen = h->db_gen;
    char *path = h->db_path ? rlab_strdup(h->db_path) : NULL;
    pthread_mutex_unlock(&h->mu);
    if (gen != w->db_gen) {
        rlab_db_close(w->db);
        w->db = NULL;
        w->db_gen = gen;
        if (path) {
            rlab_err e = {0};
            /* no recovery from the worker: the ui connection did it at attach time, and a
             * run of ours can never be mistaken for dead (OFD locks) anyway */
            w->db = rlab_db_open(path, RLAB_DB_NO_RECOVER, &e);
            if (!w->db)
                rlab_log(RLAB_LOG_ERROR, "worker cannot open the store: %s", e.msg);
        }
    }
    rlab_free(path);
    ctx->db = w->db;
}

void rlab__store_close(rlab_host *h)
{
    rlab_db_close(h->db);
    h->db = NULL;
    rlab_free(h->db_path);
    h->db_path = NULL;
}

/* The value of an integer argument "seed" when the command has one with a value. */
static int run_seed(const rlab_args *args, uint64_t *seed)
{
    for (int i = 0; i < rlab__args_count(args); i++) {
        const rlab_arg *a = rlab__args_decl(args, i);
        if (a->type == RLAB_ARG_INT && strcmp(a->name, "seed") == 0 && rlab__args_is_set(args, i)) {
            *seed = (uint64_t)rlab_args_int(args, a->name);
            return 1;
        }
    }
    return 0;
}

/* The command resolved arguments while running (rlab_ctx_resolved): store the final values. */
static void rewrite_config(rlab_ctx *ctx)
{
    const rlab_args *args = ctx->job->args;
    char *json = rlab_args_to_json(args);
    uint64_t seed = 0;
    int have_seed = run_seed(args, &seed);
    rlab_err e = {0};
    rlab_db_stmt *s =
        json ? rlab_db_prepare(ctx->db,
                               have_seed ? "UPDATE runs SET config = :c, seed = :s WHERE id = :id"
                                         : "UPDATE runs SET config = :c WHERE id = :id",
                               &e)
             : NULL;
    int rc = s ? rlab_db_bind_text(s, ":c", json, &e) : RLAB_ENOMEM;
    if (rc == RLAB_OK && have_seed)
        rc = rlab_db_bind_int(s, ":s", (int64_t)seed, &e);
    if (rc == RLAB_OK)
        rc = rlab_db_bind_int(s, ":id", ctx->run_id, &e);
    if (rc == RLAB_OK)
        rc = rlab_db_step(s, &e);
    if (rc)
        rlab_log(RLAB_LOG_WARN, "%s: cannot store the run's resolved config: %s", ctx->cmd->full,
                 e.msg[0] ? e.msg : "out of memory");
    rlab_db_finalize(s);
    rlab_free(json);
}

int rlab__run_begin(rlab_ctx *ctx, rlab_err *err)
{
    const rlab_cmd_rec *c = ctx->cmd;
    if (ctx->job->parent)
        ctx->db = ctx->job->parent->db; /* a nested call: the caller's connection */
    else if (!ctx->job->sync)
        rlab__worker_db(ctx->host, ctx);
    else
        ctx->db = ctx->host->db;
    if (!ctx->db || (c->ref.cmd->flags & RLAB_CMD_READONLY) ||
        (strcmp(c->plugin->name, "core") == 0 && !(c->ref.cmd->flags & RLAB_CMD_RECORD)))
        return RLAB_OK;
    const rlab_args *args = ctx->job->args;
    const char *dataset = NULL;
    uint64_t seed = 0;
    int have_seed = run_seed(args, &seed);
    for (int i = 0; i < rlab__args_count(args); i++) {
        const rlab_arg *a = rlab__args_decl(args, i);
        if (rlab__args_is_set(args, i) && a->type == RLAB_ARG_DATASET && !dataset)
            dataset = rlab_args_str(args, a->name);
    }
    char *json = rlab_args_to_json(args);
    if (!json)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    rlab_db_run_info ri = {.plugin = c->plugin->name,
                           .name = c->full,
                           .dataset = dataset,
                           .config_json = json,
                           .seed = seed,
                           .no_seed = !have_seed, /* a command without a seed: NULL, not 0 */
                           .plugin_version = c->plugin->desc.version,
                           /* a nested call (rlab_ctx_call) derives from its caller's run */
                           .parent_id = ctx->job->parent ? ctx->job->parent->run_id : 0};
    int rc = rlab_db_run_begin(ctx->db, &ri, &ctx->run_id, err);
    rlab_free(json);
    if (rc)
        ctx->run_id = 0;
    pthread_mutex_lock(&ctx->host->mu);
    ctx->job->run_id = ctx->run_id;
    pthread_mutex_unlock(&ctx->host->mu);
    return rc;
}

int rlab__run_end(rlab_ctx *ctx, int status, const char *message, rlab_err *err)
{
    if (!ctx->db || !ctx->run_id)
        return RLAB_OK;
    if (ctx->resolved)
        rewrite_config(ctx);
    rlab_err e = {0};
    if (rlab_db_run_end(ctx->db, ctx->run_id, rlab_run_status_for(status),
                        status == RLAB_OK ? NULL : message, &e) == RLAB_OK)
        return RLAB_OK;
    rlab_log(RLAB_LOG_ERROR, "%s: cannot record the end of run %lld: %s", ctx->cmd->full,
             (long long)ctx->run_id, e.msg);
    return rlab_errf(err, e.code ? e.code : RLAB_EDB, "%s: cannot record the end of run %lld: %s",
                     ctx->cmd->full, (long long)ctx->run_id, e.msg);
}
