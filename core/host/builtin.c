/*
 * core/host/builtin.c: the host's own commands, registered like a plugin's under the
 * pseudo-plugin "core" (their shell names have no prefix): help, plugins, models, datasets,
 * jobs, cancel, the model verbs of verbs.c (train, eval, recommend, save, load, export) and
 * the store's records of records.c (runs, show, compare, sql). Every help text ends with
 * examples ("Example: " lines), which `help <command>` shows last.
 */
#include "host/host_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Print a multi-line string as result lines. */
static void print_block(rlab_ctx *ctx, const char *text) { rlab_ctx_printf(ctx, "%s", text); }

static int help_run(rlab_ctx *ctx, const rlab_args *args)
{
    rlab_host *h = rlab_ctx_host(ctx);
    const char *cmd = rlab_args_str(args, "command");
    const char *kind = rlab_args_str(args, "kind");
    char full[160];
    if (cmd && kind && *kind) { /* help train KIND */
        snprintf(full, sizeof full, "%s %s", cmd, kind);
        cmd = full;
    }
    char *text = cmd && *cmd ? rlab_host_help_cmd(h, cmd, rlab_ctx_err(ctx)) : rlab_host_help(h);
    if (!text)
        return rlab_ctx_err(ctx)->code ? rlab_ctx_err(ctx)->code : RLAB_ENOMEM;
    print_block(ctx, text);
    rlab_free(text);
    return RLAB_OK;
}

static int plugins_run(rlab_ctx *ctx, const rlab_args *args)
{
    (void)args;
    rlab_host *h = rlab_ctx_host(ctx);
    rlab_table *t = rlab_ctx_result_table(
        ctx, "plugins", 5, (const char *const[]){"name", "version", "commands", "file", "summary"});
    for (int i = 0; t && i < rlab_host_plugin_count(h); i++) {
        const rlab_plugin *p = rlab_host_plugin_at(h, i);
        int nc = 0;
        for (const rlab_cmd *c = p->commands; c && c->name; c++)
            nc++;
        rlab_table_add_row(t, "ssiss", p->name, p->version, nc, rlab_host_plugin_file(h, i),
                           p->summary);
        rlab_ctx_printf(ctx, "%-12s %-8s %s", p->name, p->version, p->summary);
    }
    for (int i = 0; i < rlab_host_refusal_count(h); i++)
        rlab_ctx_printf(ctx, "refused: %s", rlab_host_refusal(h, i));
    return RLAB_OK;
}

static int models_run(rlab_ctx *ctx, const rlab_args *args)
{
    (void)args;
    rlab_model_info *info = NULL;
    int n = 0;
    int rc = rlab_models_list(rlab_host_models(rlab_ctx_host(ctx)), &info, &n, rlab_ctx_err(ctx));
    if (rc)
        return rc;
    rlab_table *t = rlab_ctx_result_table(
        ctx, "models", 6,
        (const char *const[]){"name", "kind", "plugin", "dataset", "items", "describe"});
    for (int i = 0; t && i < n; i++) {
        rlab_table_add_row(t, "msssis", info[i].name, info[i].kind, info[i].plugin, info[i].dataset,
                           (int)info[i].n_items, info[i].describe);
        rlab_ctx_printf(ctx, "%-16s %s", info[i].name, info[i].describe);
    }
    /* models saved in the store by this or an earlier session and not loaded yet: listed,
     * restored on first use */
    int stored = 0;
    rlab_db *db = rlab_ctx_db(ctx);
    rlab_err e = {0};
    rlab_db_stmt *q =
        db ? rlab_db_prepare(db,
                             "SELECT m.name, m.kind, m.plugin FROM models m JOIN artifacts a ON"
                             " a.id = m.artifact_id WHERE a.data IS NOT NULL ORDER BY m.name",
                             &e)
           : NULL;
    while (q && rlab_db_step(q, &e) == RLAB_DB_ROW) {
        const char *nm = rlab_db_column_text(q, 0);
        int loaded = 0;
        for (int i = 0; nm && i < n; i++)
            loaded |= strcmp(info[i].name, nm) == 0;
        if (!nm || loaded)
            continue;
        const char *kind = rlab_db_column_text(q, 1), *plugin = rlab_db_column_text(q, 2);
        if (t)
            rlab_table_add_row(t, "msss-s", nm, kind ? kind : "", plugin ? plugin : "", "",
                               "saved in the store, restored on first use");
        rlab_ctx_printf(ctx, "%-16s %s model saved in the store (restored on first use)", nm,
                        kind ? kind : "?");
        stored++;
    }
    rlab_db_finalize(q);
    if (n == 0 && stored == 0)
        rlab_ctx_printf(ctx, "no models");
    rlab_free(info);
    return RLAB_OK;
}

static int datasets_run(rlab_ctx *ctx, const rlab_args *args)
{
    (void)args;
    rlab_dataset_brief *v = NULL;
    int n = 0;
    int rc = rlab_host_datasets(rlab_ctx_host(ctx), &v, &n, rlab_ctx_err(ctx));
    if (rc)
        return rc;
    rlab_table *t = rlab_ctx_result_table(
        ctx, "datasets", 7,
        (const char *const[]){"name", "kind", "users", "items", "interactions", "format", "state"});
    for (int i = 0; i < n; i++) {
        const rlab_dataset_brief *b = &v[i];
        int dlg = strcmp(b->kind, "dialogues") == 0;
        const char *state = b->state == RLAB_DS_LOADED     ? "loaded"
                            : b->state == RLAB_DS_RECORDED ? "recorded"
                                                           : "unavailable";
        if (t)
            rlab_table_add_row(t, "sslllss", b->name, b->kind, b->n_users, b->n_items, b->n_inter,
                               b->format, b->state == RLAB_DS_UNAVAILABLE ? b->problem : state);
        char sizes[160];
        if (dlg)
            snprintf(sizes, sizeof sizes, "%7lld conversations %6lld items %8lld turns",
                     (long long)b->n_users, (long long)b->n_items, (long long)b->n_inter);
        else
            snprintf(sizes, sizeof sizes, "%7lld users %7lld items %9lld interactions",
                     (long long)b->n_users, (long long)b->n_items, (long long)b->n_inter);
        if (b->state == RLAB_DS_UNAVAILABLE)
            rlab_ctx_printf(ctx, "%-16s not available: %s", b->name, b->problem);
        else
            rlab_ctx_printf(ctx, "%-16s %s  %s%s", b->name, sizes, b->format,
                            b->state == RLAB_DS_RECORDED
                                ? "  (recorded in the store, reloaded on first use)"
                                : "");
    }
    if (n == 0)
        rlab_ctx_printf(ctx, "no datasets");
    rlab_free(v);
    return RLAB_OK;
}

/* ---- split / kcore: datasets.split and the k-core as commands ---------------------------- */

static void brief_row(rlab_ctx *ctx, rlab_table *t, const rlab_dataset_brief *b)
{
    if (t)
        rlab_table_add_row(t, "slll", b->name, b->n_users, b->n_items, b->n_inter);
    rlab_ctx_printf(ctx, "  %-24s %7lld users %7lld items %9lld interactions", b->name,
                    (long long)b->n_users, (long long)b->n_items, (long long)b->n_inter);
}

static const char *const split_methods[] = {"loo", "time", "temporal", "ratio", NULL};

static const rlab_arg split_args[] = {
    {.name = "name",
     .type = RLAB_ARG_STRING,
     .help = "prefix of the parts NAME.train, NAME.valid, NAME.test (default: the dataset's name)"},
    {.name = "data",
     .type = RLAB_ARG_DATASET,
     .flags = RLAB_ARGF_REQUIRED,
     .help = "the dataset to split"},
    {.name = "by",
     .type = RLAB_ARG_CHOICE,
     .choices = split_methods,
     .def = "loo",
     .help = "loo: each user's last item is test, the one before valid; time (= temporal): one "
             "global time line, the last test= of it test, the valid= before it valid; ratio: "
             "each user's rows at random, train= / valid= / test= of them"},
    {.name = "test",
     .type = RLAB_ARG_FLOAT,
     .min = 0,
     .max = 1,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
     .help = "time: fraction of the time line for test (default 0.2); ratio: of each user's "
             "rows (default 1 - train - valid)"},
    {.name = "valid",
     .type = RLAB_ARG_FLOAT,
     .min = 0,
     .max = 1,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
     .help = "time: fraction of the time line before test for validation (default 0); ratio: "
             "of each user's rows (default 0.1)"},
    {.name = "train",
     .type = RLAB_ARG_FLOAT,
     .min = 0,
     .max = 1,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
     .help = "ratio: fraction of each user's rows for training (default 0.8, or 1 - test - "
             "valid when test= is given)"},
    {.name = "seed",
     .type = RLAB_ARG_INT,
     .def = "1",
     .flags = RLAB_ARGF_INT64,
     .help = "ratio: the shuffle's seed"},
    {0}};

static int split_run(rlab_ctx *ctx, const rlab_args *args)
{
    const char *data = rlab_args_str(args, "data");
    const char *into = rlab_args_str(args, "name");
    const char *by =
        split_methods[rlab_args_choice(args, "by") < 0 ? 0 : rlab_args_choice(args, "by")];
    rlab_split_opts o;
    rlab_split_opts_default(&o);
    o.method = strcmp(by, "time") == 0 ? "temporal" : by;
    o.into = into && *into ? into : data;
    o.seed = (uint64_t)rlab_args_int(args, "seed");
    int has_test = rlab_args_given(args, "test"), has_valid = rlab_args_given(args, "valid");
    int has_train = rlab_args_given(args, "train");
    if (strcmp(o.method, "temporal") == 0) {
        if (has_train)
            return rlab_ctx_errorf(ctx, RLAB_EINVAL,
                                   "train= is for by=ratio (by=time takes test= and valid=)");
        if (has_test)
            o.test_frac = rlab_args_float(args, "test");
        if (has_valid)
            o.valid_frac = rlab_args_float(args, "valid");
        if (!(o.test_frac > 0 && o.test_frac < 1) || o.valid_frac + o.test_frac >= 1)
            return rlab_ctx_errorf(ctx, RLAB_EINVAL,
                                   "by=time needs 0 < test < 1 and test + valid < 1 (got test=%g "
                                   "valid=%g)",
                                   o.test_frac, o.valid_frac);
    } else if (strcmp(o.method, "ratio") == 0) {
        if (has_valid)
            o.valid = rlab_args_float(args, "valid");
        if (has_train)
            o.train = rlab_args_float(args, "train");
        else if (has_test)
            o.train = 1.0 - o.valid - rlab_args_float(args, "test");
        double test = 1.0 - o.train - o.valid;
        if (has_train && has_test && fabs(test - rlab_args_float(args, "test")) > 1e-9)
            return rlab_ctx_errorf(ctx, RLAB_EINVAL,
                                   "train + valid + test must be 1 (got %g + %g + %g)", o.train,
                                   o.valid, rlab_args_float(args, "test"));
        if (!(o.train > 0) || test < -1e-9)
            return rlab_ctx_errorf(ctx, RLAB_EINVAL,
                                   "by=ratio needs train > 0 and train + valid <= 1 (got train=%g "
                                   "valid=%g)",
                                   o.train, o.valid);
    } else if (has_test || has_valid || has_train) {
        return rlab_ctx_errorf(ctx, RLAB_EINVAL,
                               "by=loo takes no fractions (each user's last item is test, the "
                               "one before valid): use by=time or by=ratio");
    }
    rlab_dataset_brief parts[3];
    int rc = rlab_host_split_dataset(rlab_ctx_host(ctx), rlab_ctx_db(ctx), data, &o, parts,
                                     rlab_ctx_err(ctx));
    if (rc)
        return rc;
    if (strcmp(o.method, "temporal") == 0)
        rlab_ctx_printf(ctx, "split '%s' by time (test %g, valid %g of the time line):", data,
                        o.test_frac, o.valid_frac);
    else if (strcmp(o.method, "ratio") == 0)
        rlab_ctx_printf(ctx, "split '%s' by ratio per user (train %g, valid %g, seed %llu):", data,
                        o.train, o.valid, (unsigned long long)o.seed);
    else
        rlab_ctx_printf(ctx, "split '%s' leave-one-out:", data);
    rlab_table *t = rlab_ctx_result_table(
        ctx, "datasets", 4, (const char *const[]){"name", "users", "items", "interactions"});
    for (int i = 0; i < 3; i++)
        brief_row(ctx, t, &parts[i]);
    rlab_ctx_printf(ctx, "recorded with their recipe: a reopened workspace rebuilds them");
    return RLAB_OK;
}

static const rlab_arg kcore_args[] = {{.name = "name",
                                       .type = RLAB_ARG_STRING,
                                       .flags = RLAB_ARGF_REQUIRED,
                                       .help = "name of the new dataset"},
                                      {.name = "data",
                                       .type = RLAB_ARG_DATASET,
                                       .flags = RLAB_ARGF_REQUIRED,
                                       .help = "the dataset to filter (it stays as it is)"},
                                      {.name = "k",
                                       .type = RLAB_ARG_INT,
                                       .def = "5",
                                       .min = 1,
                                       .flags = RLAB_ARGF_MIN,
                                       .help = "every user and item keeps at least k interactions"},
                                      {0}};

static int kcore_run(rlab_ctx *ctx, const rlab_args *args)
{
    const char *data = rlab_args_str(args, "data");
    const char *name = rlab_args_str(args, "name");
    int k = (int)rlab_args_int(args, "k");
    rlab_dataset_brief before, after;
    int rc = rlab_host_dataset_brief(rlab_ctx_host(ctx), data, &before);
    if (rc == RLAB_OK)
        rc = rlab_host_kcore_dataset(rlab_ctx_host(ctx), rlab_ctx_db(ctx), data, name, k, &after,
                                     rlab_ctx_err(ctx));
    else
        rc = rlab_ctx_errorf(ctx, RLAB_ENOTFOUND, "dataset '%s' not found", data);
    if (rc)
        return rc;
    rlab_ctx_printf(ctx, "%d-core of '%s' (%lld users, %lld items, %lld interactions):", k, data,
                    (long long)before.n_users, (long long)before.n_items,
                    (long long)before.n_inter);
    rlab_table *t = rlab_ctx_result_table(
        ctx, "datasets", 4, (const char *const[]){"name", "users", "items", "interactions"});
    brief_row(ctx, t, &after);
    rlab_ctx_printf(ctx, "recorded with its recipe: a reopened workspace rebuilds it");
    return RLAB_OK;
}

static void job_row(rlab_ctx *ctx, rlab_table *t, const rlab_job_info *j)
{
    char in[32] = "";
    if (j->outer)
        snprintf(in, sizeof in, " (in job #%d)", j->outer);
    if (t)
        rlab_table_add_row(t, "issllll", j->id, j->cmd, rlab_job_state_name(j->state),
                           (int64_t)j->step, (int64_t)j->total, j->run_id, (int64_t)j->outer);
    if (j->state == RLAB_JOB_FAILED)
        rlab_ctx_printf(ctx, "#%d %-24s %-9s %s%s", j->id, j->cmd, rlab_job_state_name(j->state),
                        j->message, in);
    else if (j->run_id > 0)
        rlab_ctx_printf(ctx, "#%d %-24s %-9s %lld/%lld %s run #%lld%s", j->id, j->cmd,
                        rlab_job_state_name(j->state), (long long)j->step, (long long)j->total,
                        j->label, (long long)j->run_id, in);
    else
        rlab_ctx_printf(ctx, "#%d %-24s %-9s %lld/%lld %s%s", j->id, j->cmd,
                        rlab_job_state_name(j->state), (long long)j->step, (long long)j->total,
                        j->label, in);
}

/* jobs: the live ones (queued, running, finished but not collected), then the last finished
 * ones the host kept, newest first. */
static int jobs_run(rlab_ctx *ctx, const rlab_args *args)
{
    (void)args;
    rlab_job_info info[64];
    rlab_host *h = rlab_ctx_host(ctx);
    int n = rlab_host_jobs(h, info, 64), shown = 0;
    rlab_table *t = rlab_ctx_result_table(
        ctx, "jobs", 7,
        (const char *const[]){"id", "command", "state", "step", "total", "run", "in_job"});
    for (int i = 0; i < n; i++) {
        if (info[i].id == rlab_ctx_job_id(ctx))
            continue;
        job_row(ctx, t, &info[i]);
        shown++;
    }
    if (!shown)
        rlab_ctx_printf(ctx, "no jobs queued or running");
    n = rlab_host_jobs_finished(h, info, 64);
    if (n > 0)
        rlab_ctx_printf(ctx, "finished (newest first, the last %d kept):", RLAB_JOBS_KEPT);
    for (int i = 0; i < n; i++)
        job_row(ctx, t, &info[i]);
    return RLAB_OK;
}

static int cancel_run(rlab_ctx *ctx, const rlab_args *args)
{
    rlab_host *h = rlab_ctx_host(ctx);
    int64_t id = rlab_args_int(args, "job");
    if (id == 0) {
        int n = rlab_host_cancel_all(h) - (rlab_ctx_cancelled(ctx) ? 1 : 0);
        rlab_ctx_printf(ctx, "cancelled %d job(s)", n);
        return RLAB_OK; /* our own flag may be set now: we are done anyway */
    }
    if (rlab_host_cancel(h, (int)id) != RLAB_OK)
        return rlab_ctx_errorf(ctx, RLAB_ENOTFOUND, "no running or queued job %lld", (long long)id);
    return RLAB_OK;
}

/* `set KEY VALUE`: workspace settings kept in the store. */
static int check_key_metric(rlab_ctx *ctx, const char *v)
{
    const char *dot = strchr(v, '.');
    size_t sl = dot ? (size_t)(dot - v) : 0;
    int split_ok = dot && ((sl == 4 && !strncmp(v, "test", 4)) ||
                           (sl == 5 && (!strncmp(v, "valid", 5) || !strncmp(v, "train", 5))));
    if (!split_ok || !dot[1] || strlen(v) > 60)
        return rlab_ctx_errorf(ctx, RLAB_EINVAL,
                               "bad value for 'key-metric' (SPLIT.METRIC with SPLIT one of "
                               "train|valid|test expected, e.g. test.ndcg@10; got '%s')",
                               v);
    return RLAB_OK;
}

static int set_run(rlab_ctx *ctx, const rlab_args *args)
{
    const char *key = rlab_args_str(args, "key");
    const char *value = rlab_args_str(args, "value");
    rlab_db *db = rlab_ctx_db(ctx);
    if (!db)
        return rlab_ctx_errorf(ctx, RLAB_ESTATE, "no session store: settings live in the store");
    if (!key) { /* every setting with its value */
        char *v = NULL;
        int rc = rlab_db_setting_get(db, "key-metric", &v, rlab_ctx_err(ctx));
        if (rc)
            return rc;
        rlab_ctx_printf(ctx, "key-metric %s%s", v ? v : RLAB_KEY_METRIC_DEFAULT,
                        v ? "" : " (default)");
        rlab_ctx_result_str(ctx, "key-metric", v ? v : RLAB_KEY_METRIC_DEFAULT);
        rlab_free(v);
        return RLAB_OK;
    }
    if (!value || !*value) {
        char *v = NULL;
        int rc = rlab_db_setting_get(db, key, &v, rlab_ctx_err(ctx));
        if (rc)
            return rc;
        rlab_ctx_printf(ctx, "%s %s%s", key, v ? v : RLAB_KEY_METRIC_DEFAULT,
                        v ? "" : " (default)");
        rlab_ctx_result_str(ctx, key, v ? v : RLAB_KEY_METRIC_DEFAULT);
        rlab_free(v);
        return RLAB_OK;
    }
    int reset = strcmp(value, "default") == 0;
    int rc = reset ? RLAB_OK : check_key_metric(ctx, value);
    if (rc)
        return rc;
    rc = rlab_db_setting_set(db, key, reset ? NULL : value, rlab_ctx_err(ctx));
    if (rc)
        return rc;
    rlab_ctx_printf(ctx, "%s %s", key, reset ? RLAB_KEY_METRIC_DEFAULT " (default)" : value);
    rlab_ctx_result_str(ctx, key, reset ? RLAB_KEY_METRIC_DEFAULT : value);
    return RLAB_OK;
}

static const char *const set_keys[] = {"key-metric", NULL};
static const rlab_arg set_args[] = {
    {.name = "key",
     .type = RLAB_ARG_CHOICE,
     .choices = set_keys,
     .help = "key-metric: the metric the sidebar shows for each run"},
    {.name = "value",
     .type = RLAB_ARG_STRING,
     .help = "SPLIT.METRIC, e.g. test.ndcg@10 or valid.hr@20 (default: resets it)"},
    {0}};

static const rlab_arg help_args[] = {
    {.name = "command", .type = RLAB_ARG_STRING, .help = "command to explain"},
    {.name = "kind", .type = RLAB_ARG_STRING, .help = "model kind, for help train KIND"},
    {0}};
static const rlab_arg cancel_args[] = {{.name = "job",
                                        .type = RLAB_ARG_INT,
                                        .def = "0",
                                        .min = 0,
                                        .flags = RLAB_ARGF_MIN,
                                        .help = "job id (0 = all)"},
                                       {0}};
static const rlab_cmd core_cmds[] = {
    {.name = "help",
     .args = help_args,
     .flags = RLAB_CMD_READONLY,
     .run = help_run,
     .help = "List the commands, or explain one (help <command>) or a Lua function (help "
             "reclab.evaluate; help reclab lists them all).\n"
             "Example: help sql\n"
             "Example: help train bprmf\n"
             "Example: help reclab.datasets.load"},
    {.name = "plugins",
     .flags = RLAB_CMD_READONLY,
     .run = plugins_run,
     .help = "List loaded plugins and load refusals.\n"
             "Example: plugins"},
    {.name = "models",
     .flags = RLAB_CMD_READONLY,
     .run = models_run,
     .help = "List the registered models (and those saved in the store, restored on first "
             "use).\n"
             "Example: models"},
    {.name = "datasets",
     .flags = RLAB_CMD_READONLY,
     .run = datasets_run,
     .help = "List the datasets: loaded ones, and those the workspace's store records (rebuilt "
             "from their recorded source on first use, after checking its sha256), with their "
             "sizes; interactions and dialogues (ReDial, INSPIRED).\n"
             "Example: datasets"},
    {.name = "split",
     .args = split_args,
     .flags = RLAB_CMD_JOB | RLAB_CMD_READONLY | RLAB_CMD_SIDE,
     .run = split_run,
     .help = "Split a dataset into NAME.train, NAME.valid and NAME.test (datasets.split in Lua).\n"
             "by=loo (default): each user's last item is test, the one before valid; by=time: "
             "one global time line, its last test= fraction is test and the valid= before it "
             "valid; by=ratio: each user's rows shuffled (seed=) into train= / valid= / test= "
             "fractions. The parts share the dataset's user and item indices and are recorded "
             "with their recipe, so a reopened workspace rebuilds them.\n"
             "Example: split ml data=ml-100k by=time test=0.1 valid=0.1\n"
             "Example: split demo-r data=demo by=ratio train=0.8 valid=0.1 seed=3\n"
             "Example: split data=demo"},
    {.name = "kcore",
     .args = kcore_args,
     .flags = RLAB_CMD_JOB | RLAB_CMD_READONLY | RLAB_CMD_SIDE,
     .run = kcore_run,
     .help = "Keep the k-core of a dataset as a new dataset: users and items with fewer than k "
             "interactions are dropped until none is left, and both are re-indexed densely "
             "(interactions only; feature tables are not carried). Recorded with its recipe, so "
             "a reopened workspace rebuilds it from its parent (datasets.kcore in Lua).\n"
             "Example: kcore ml5 data=ml-100k k=5\n"
             "Example: kcore demo10 data=demo k=10"},
    {.name = "jobs",
     .flags = RLAB_CMD_READONLY,
     .run = jobs_run,
     .help = "List the jobs: queued and running ones, then the last finished ones (newest "
             "first: submitted jobs, and commands that recorded a run or that a lua.run script "
             "called, marked \"in job #N\"), as the table \"jobs\" (id, command, state, step, "
             "total, run, in_job).\n"
             "Example: jobs"},
    {.name = "cancel",
     .args = cancel_args,
     .flags = RLAB_CMD_READONLY,
     .run = cancel_run,
     .help = "Cancel a job (cancel <id>) or all jobs (cancel).\n"
             "Example: cancel 3\n"
             "Example: cancel"},
    {.name = "set",
     .args = set_args,
     .flags = RLAB_CMD_READONLY,
     .run = set_run,
     .help =
         "Show or change a workspace setting, kept in the session store.\n"
         "set key-metric test.ndcg@10: the sidebar shows, for each run, that metric's value "
         "at the run's kept epoch (the one its test metrics come from), labelled. `set` "
         "alone lists the settings; `set key-metric default` resets it (" RLAB_KEY_METRIC_DEFAULT
         ").\n"
         "Example: set key-metric valid.ndcg@20\n"
         "Example: set"},
    /* the model verbs (verbs.c): the same for every model kind of every plugin */
    {.name = "train",
     .args = rlab__train_args,
     .flags = RLAB_CMD_READONLY,
     .run = rlab__verb_train_kindless,
     .help = "Train a model: train KIND data=DATASET [name=NAME] [field=value ...].\n"
             "Every model kind of every plugin is trained the same way (help train KIND lists "
             "its fields): the dataset is split (split=loo by default), the kind's steps run in "
             "the core training loop, the best validation epoch is kept (select=, patience=), "
             "the test targets are ranked over all items, and the model is registered.\n"
             "Example: train bprmf data=demo epochs=40\n"
             "Example: train mqsa data=demo epochs=20 seed=1 name=m1"},
    {.name = "eval",
     .args = rlab__eval_args,
     .flags = RLAB_CMD_JOB | RLAB_CMD_RECORD,
     .run = rlab__verb_eval,
     .help = "Evaluate any registered model: full ranking of the leave-one-out targets.\n"
             "Ranks each user's valid and/or test item against every item outside the history "
             "(valid: train items masked; test: train + valid masked). Stores hr, ndcg, recall "
             "and mrr at 5/10/20 (and k) with the protocol label and returns them as the table "
             "\"metrics\".\n"
             "Example: eval model=m1\n"
             "Example: eval model=m1 split=test neg=100"},
    {.name = "recommend",
     .args = rlab__recommend_args,
     .flags = RLAB_CMD_READONLY,
     .run = rlab__verb_recommend,
     .help = "Top-k items for a user after the user's whole history (seen items masked).\n"
             "Example: recommend model=m1 user=u17 k=10"},
    {.name = "save",
     .args = rlab__save_args,
     .flags = RLAB_CMD_READONLY,
     .run = rlab__verb_save,
     .help = "Save a model: one safetensors checkpoint (every tensor, the kind, dataset, "
             "resolved config and versions in its header), kept in the session store.\n"
             "Example: save model=m1\n"
             "Example: save model=m1 file=m1.safetensors"},
    {.name = "load",
     .args = rlab__load_args,
     .flags = RLAB_CMD_JOB | RLAB_CMD_READONLY | RLAB_CMD_SIDE,
     .run = rlab__verb_load,
     .help = "Load a dataset, or a model checkpoint written by save, and register it.\n"
             "PATH is a dataset file or folder (RecBole atomic files, MovieLens 100K / 1M, "
             "SASRec text, CSV/TSV; the format is guessed unless format= says), recorded in the "
             "session store; or a model when it is a checkpoint (.safetensors), when model=true "
             "or kind= is given, or written `load model PATH`.\n"
             "Example: load data/ml-100k\n"
             "Example: load ratings.csv name=shop format=csv\n"
             "Example: load model m1.safetensors name=m2"},
    {.name = "export",
     .args = rlab__export_args,
     .flags = RLAB_CMD_JOB | RLAB_CMD_READONLY,
     .run = rlab__verb_export,
     .help = "Write a run's record and metrics (run=, CSV or JSON), every user's top-k list of "
             "a model (model=, CSV), or the result table of any command (cmd=\"LINE\", CSV: a "
             "header line, then one line per row). In the shell, `export view file=F` writes "
             "the table on screen as it is sorted.\n"
             "Example: export cmd=\"runs sort=test.ndcg@10\" file=runs.csv\n"
             "Example: export view file=table.csv\n"
             "Example: export run=7 file=run7.json\n"
             "Example: export run=7 file=run7.csv\n"
             "Example: export model=m1 file=top10.csv k=10"},
    /* the session store's records (records.c) */
    {.name = "runs",
     .args = rlab__runs_args,
     .flags = RLAB_CMD_READONLY,
     .run = rlab__cmd_runs,
     .help = "List the runs with their latest metrics, as the table \"runs\".\n"
             "The newest runs first (limit=), one column per metric any of them recorded "
             "(test first, then valid); sort= orders by a column, cols= chooses the columns.\n"
             "Example: runs sort=valid.ndcg@10\n"
             "Example: runs cols=status,model,test.* sort=test.ndcg@10 limit=20"},
    {.name = "show",
     .args = rlab__show_args,
     .flags = RLAB_CMD_READONLY,
     .run = rlab__cmd_show,
     .help = "Show one run: its record (status, command, model, dataset, seed, times, config, "
             "error), artifacts, and its metrics as the table \"metrics\" (one row per metric, "
             "one column per split: the latest value of each).\n"
             "Example: show 7"},
    {.name = "chart",
     .args = rlab__chart_args,
     .flags = RLAB_CMD_READONLY,
     .run = rlab__cmd_chart,
     .help = "Metric curves of runs from the store: several runs and several metrics in one "
             "chart, as the table \"series\" (run, label, metric, step, value) and, with "
             "file=NAME.svg, a picture for papers and slides (title, axes with ticks and "
             "labels, a grid, one colour and marker per series, one dash pattern per metric, a "
             "legend; a metric of another magnitude, loss beside NDCG, on a right axis).\n"
             "METRIC is name (split chosen valid, test, train, then any: ndcg@10, loss, "
             "watches) or split.name (valid.ndcg@10, train.loss); without runs= the latest 3 "
             "runs that have the first metric. The shell's chart draws the same in the "
             "terminal (F4).\n"
             "Example: chart loss runs=3,4,5\n"
             "Example: chart valid.ndcg@10,train.loss run=3\n"
             "Example: chart valid.ndcg@10 runs=3,4 file=ndcg.svg title=\"NDCG@10 on ML-100K\""},
    {.name = "compare",
     .args = rlab__compare_args,
     .flags = RLAB_CMD_READONLY,
     .run = rlab__cmd_compare,
     .help = "Compare runs side by side, as the table \"compare\": one column per run, one row "
             "per field (status, model, command, dataset, seed, config), then one row per "
             "metric (each run's latest value).\n"
             "compare EXP compares the configurations of an experiment (a sweep): per "
             "configuration and metric the mean +- sd over seeds, a 95% bootstrap interval "
             "over users, and a paired t-test over users against the baseline (baseline=, "
             "default the first configuration) with Holm's correction over the table; the best "
             "per column marked, the protocol printed with it.\n"
             "Example: compare base metric=ndcg@10,hr@10 baseline=bprmf\n"
             "Example: compare 6 7\n"
             "Example: compare 3 5 9"},
    /* experiments (sweep.c, experiment.c) */
    {.name = "sweep",
     .args = rlab__sweep_args,
     .flags = RLAB_CMD_JOB | RLAB_CMD_READONLY,
     .run = rlab__cmd_sweep,
     .help = "Run a grid (or random search) of training runs as one experiment kept in the "
             "store: sweep KIND[,KIND] data=A[,B] field=v1,v2 field=lo:hi[:log][:N] seeds=1..3 "
             "[search=grid|random n=N] [halving=ETA] [name=EXP].\n"
             "Each (configuration, seed) is one `train KIND ...` run; a field applies to the "
             "kinds that declare it (KIND.field= to one); a range gives N points (default 3) on "
             "a grid, uniform or log-uniform draws in random search. After each run the test "
             "targets' per-user values are stored (table run_users) for paired comparisons. "
             "Repeating the command (or sweep resume=EXP) resumes it: finished runs are not "
             "redone, also after a crash or kill. halving=ETA: successive halving, the best "
             "1/ETA configurations by validation go on with ETA times the epochs. Then "
             "`compare EXP` and `report EXP file=report.html`.\n"
             "Example: sweep bprmf,sasrec data=ml-100k epochs=10 seeds=1..3 name=base\n"
             "Example: sweep bprmf data=demo dim=32,64 lr=0.001:0.1:log seeds=1..2\n"
             "Example: sweep sasrec data=demo search=random n=6 lr=1e-4:1e-2:log halving=3\n"
             "Example: sweep resume=base"},
    {.name = "report",
     .args = rlab__report_args,
     .flags = RLAB_CMD_JOB | RLAB_CMD_READONLY,
     .run = rlab__cmd_report,
     .help = "Write an experiment's report: the comparison table (as compare EXP), learning "
             "curves and comparison charts (SVG), every run's exact config, seed, command to "
             "reproduce it, data set hashes and code versions. file=*.md (figures as SVG files "
             "beside it), *.html (one self-contained page, figures inline) or format=latex (a "
             "booktabs table for a paper).\n"
             "Example: report base file=base.md\n"
             "Example: report base file=base.html baseline=bprmf\n"
             "Example: report base file=base.tex format=latex metric=ndcg@10,hr@10"},
    {.name = "sql",
     .args = rlab__sql_args,
     .flags = RLAB_CMD_JOB | RLAB_CMD_READONLY | RLAB_CMD_SIDE,
     .run = rlab__cmd_sql,
     .help = "Query the session store with SQL (read-only), the rows as the table \"sql\".\n"
             "Tables: runs, metrics, datasets, models, artifacts, events, dialogues, history, "
             "experiments, experiment_runs, run_users (per-user test values), and the plugins' "
             "own. Writes, DDL and pragma assignments are refused. The query "
             "runs beside training jobs; Ctrl-C (or cancel) stops it, and so do its row and "
             "time limits (rows=, timeout=).\n"
             "Example: sql SELECT name, value FROM metrics WHERE run_id = 2\n"
             "Example: sql rows=100000 timeout=300 SELECT * FROM events"},
    {0}};

static const rlab_plugin core_plugin = {
    .struct_size = sizeof(rlab_plugin),
    .abi_version = RLAB_ABI_VERSION,
    .abi_sizes = RLAB_ABI_SIZES,
    .name = "core",
    .version = RECLAB_VERSION_STRING,
    .summary = "the host's own commands",
    .commands = core_cmds,
};

const rlab_plugin *rlab__builtin_plugin(void) { return &core_plugin; }
