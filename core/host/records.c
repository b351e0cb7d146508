/*
 * core/host/records.c: the session store's records as core commands, so the shell, `-c` and
 * Lua (reclab.core.runs{...}) reach them alike:
 *
 *   runs [sort=COL] [order=auto|asc|desc] [cols=A,B,test.*] [limit=200]   runs and metrics
 *   show RUN                          a run's record, metrics (per split) and artifacts
 *   compare RUN RUN...                runs side by side: fields, then their metrics
 *   sql QUERY... [rows=10000] [timeout=30]      read-only, rows as the result table "sql"
 *   export run=RUN file=F [format=csv|json]     a run's record and metrics (verbs.c calls it)
 *
 * `sql` is a job on the side worker: it does not wait behind training, Ctrl-C (or `cancel`)
 * stops it through SQLite's progress handler, and it stops at its row and time limits.
 * Metric columns of runs and compare are each run's latest value of every (split, name).
 */
#include "host/host_internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- helpers ---------------------------------------------------------------------------- */

static rlab_db *need_db(rlab_ctx *ctx)
{
    rlab_db *db = rlab_ctx_db(ctx);
    if (!db)
        rlab_ctx_errorf(ctx, RLAB_ESTATE, "no session store");
    return db;
}

/* A run id as users type it: "7" or "#7". */
static int parse_run(rlab_ctx *ctx, const char *s, int64_t *id)
{
    const char *p = s && *s == '#' ? s + 1 : s;
    char *end = NULL;
    errno = 0;
    long long v = p && *p ? strtoll(p, &end, 10) : 0;
    if (!p || !*p || errno || *end || v <= 0)
        return rlab_ctx_errorf(ctx, RLAB_EINVAL, "'%s' is not a run id (a number such as 7 or #7)",
                               s ? s : "");
    *id = v;
    return RLAB_OK;
}

/* A store value as a result cell (text and blobs borrowed from v until the row is added). */
static rlab_cell db_cell(const rlab_db_value *v, char *buf, size_t size)
{
    switch (v->type) {
    case RLAB_DB_INT:
        return (rlab_cell){.type = RLAB_CELL_INT, .i = v->i};
    case RLAB_DB_REAL:
        return (rlab_cell){.type = RLAB_CELL_FLOAT, .f = v->r};
    case RLAB_DB_TEXT:
        return (rlab_cell){.type = RLAB_CELL_TEXT, .s = v->s};
    case RLAB_DB_BLOB:
        snprintf(buf, size, "<%zu bytes>", v->n);
        return (rlab_cell){.type = RLAB_CELL_TEXT, .s = buf};
    default:
        return (rlab_cell){.type = RLAB_CELL_NULL};
    }
}

static const char *text_or(const rlab_db_result *r, int row, int col, const char *dflt)
{
    const rlab_db_value *v = rlab_db_result_cell(r, row, col);
    return v->type == RLAB_DB_TEXT ? v->s : dflt;
}

/* "split.name" (or "name") of the latest value of every metric of the runs selected by `in`
 * (an SQL list or subquery over run ids with ?1 its parameter), in the order test, valid,
 * others, train, then by name. */
typedef struct mcols {
    char **names;
    int n;
} mcols;

static void mcols_free(mcols *m)
{
    for (int i = 0; i < m->n; i++)
        rlab_free(m->names[i]);
    rlab_free(m->names);
    m->names = NULL;
    m->n = 0;
}

static int metric_cols(rlab_ctx *ctx, rlab_db *db, const char *in, const rlab_db_value *p, int np,
                       mcols *out)
{
    char sql[1024];
    snprintf(sql, sizeof sql,
             "SELECT CASE WHEN split IS NULL OR split = '' THEN name ELSE split || '.' || name "
             "END AS m, MIN(CASE split WHEN 'test' THEN 0 WHEN 'valid' THEN 1 WHEN 'train' THEN "
             "3 ELSE 2 END) AS o FROM metrics WHERE run_id IN (%s) GROUP BY m ORDER BY o, m",
             in);
    rlab_db_result *r = rlab_db_query_table(db, sql, p, np, 0, rlab_ctx_err(ctx));
    if (!r)
        return rlab_ctx_err(ctx)->code;
    out->names = rlab_calloc((size_t)(r->nrow ? r->nrow : 1), sizeof *out->names);
    int bad = !out->names;
    for (int i = 0; !bad && i < r->nrow; i++) {
        const char *s = text_or(r, i, 0, NULL);
        if (!s)
            continue; /* a metric without a name: not a column */
        if (!(out->names[out->n] = rlab_strdup(s)))
            bad = 1;
        else
            out->n++;
    }
    rlab_db_result_free(r);
    if (bad) {
        mcols_free(out);
        return rlab_ctx_errorf(ctx, RLAB_ENOMEM, "out of memory");
    }
    return RLAB_OK;
}

static int mcol_index(const mcols *m, const char *name)
{
    for (int i = 0; name && i < m->n; i++)
        if (strcmp(m->names[i], name) == 0)
            return i;
    return -1;
}

/* (run, "split.name", value) of the latest value of every metric of the runs of `in`. */
static rlab_db_result *last_metrics(rlab_ctx *ctx, rlab_db *db, const char *in,
                                    const rlab_db_value *p, int np)
{
    char sql[1024];
    snprintf(sql, sizeof sql,
             "SELECT run_id, CASE WHEN split IS NULL OR split = '' THEN name ELSE split || '.' "
             "|| name END, value FROM metrics WHERE id IN (SELECT MAX(id) FROM metrics WHERE "
             "run_id IN (%s) GROUP BY run_id, split, name)",
             in);
    return rlab_db_query_table(db, sql, p, np, 0, rlab_ctx_err(ctx));
}

static double num_of(const rlab_db_value *v, int *ok)
{
    *ok = v->type == RLAB_DB_REAL || v->type == RLAB_DB_INT;
    return v->type == RLAB_DB_REAL ? v->r : (double)v->i;
}

/* ---- runs ------------------------------------------------------------------------------- */

enum { RUNS_BASE = 6 }; /* run, status, model, command, dataset, secs */
static const char *const runs_base[RUNS_BASE] = {"run",     "status",  "model",
                                                 "command", "dataset", "secs"};

/* Rows being sorted: cells of all columns, row-major. */
typedef struct runs_sort {
    const rlab_cell *cells;
    int ncol, col, desc;
} runs_sort;

static _Thread_local const runs_sort *g_rs;

static int cell_cmp(const rlab_cell *a, const rlab_cell *b)
{
    int na = a->type == RLAB_CELL_INT || a->type == RLAB_CELL_FLOAT;
    int nb = b->type == RLAB_CELL_INT || b->type == RLAB_CELL_FLOAT;
    if (na && nb) {
        double x = a->type == RLAB_CELL_INT ? (double)a->i : a->f;
        double y = b->type == RLAB_CELL_INT ? (double)b->i : b->f;
        return x < y ? -1 : x > y ? 1 : 0;
    }
    if (na != nb)
        return 0; /* handled by the caller: numbers first */
    return strcmp(a->s ? a->s : "", b->s ? b->s : "");
}

static int row_cmp(const void *pa, const void *pb)
{
    int ra = *(const int *)pa, rb = *(const int *)pb;
    const rlab_cell *a = &g_rs->cells[(size_t)ra * (size_t)g_rs->ncol + (size_t)g_rs->col];
    const rlab_cell *b = &g_rs->cells[(size_t)rb * (size_t)g_rs->ncol + (size_t)g_rs->col];
    int ea = a->type == RLAB_CELL_NULL, eb = b->type == RLAB_CELL_NULL;
    if (ea || eb) /* empty cells last, whatever the order */
        return ea && eb ? ra - rb : ea ? 1 : -1;
    int na = a->type != RLAB_CELL_TEXT, nb = b->type != RLAB_CELL_TEXT;
    if (na != nb)
        return na ? -1 : 1;
    int r = cell_cmp(a, b);
    if (g_rs->desc)
        r = -r;
    return r ? r : ra - rb;
}

/* Does column name match one entry of a cols= list ("a,b,test.*")? */
static int col_wanted(const char *list, const char *name)
{
    for (const char *p = list; *p;) {
        size_t n = strcspn(p, ",");
        while (n > 0 && p[n - 1] == ' ')
            n--;
        if (n > 0 && p[n - 1] == '*' ? strncmp(p, name, n - 1) == 0
                                     : strlen(name) == n && strncmp(p, name, n) == 0)
            return 1;
        p += strcspn(p, ",");
        while (*p == ',' || *p == ' ')
            p++;
    }
    return 0;
}

/* A column of the runs table by name ("ndcg@10" also finds "valid.ndcg@10"); -1 if none. */
static int runs_col(const char *const *names, int n, const char *want)
{
    for (int i = 0; i < n; i++)
        if (strcmp(names[i], want) == 0)
            return i;
    for (int i = 0; i < n; i++) {
        const char *d = strchr(names[i], '.');
        if (d && strcmp(d + 1, want) == 0)
            return i;
    }
    return -1;
}

int rlab__cmd_runs(rlab_ctx *ctx, const rlab_args *args)
{
    rlab_db *db = need_db(ctx);
    if (!db)
        return RLAB_ESTATE;
    int64_t limit = rlab_args_int(args, "limit");
    rlab_db_value lp = {.type = RLAB_DB_INT, .i = limit};
    rlab_db_result *r = rlab_db_query_table(
        db,
        "SELECT id, status, COALESCE(json_extract(config, '$.name') || ' (' || model_kind || ')', "
        "model_kind, json_extract(config, '$.model'), ''), COALESCE(name, plugin), "
        "COALESCE(dataset, ''), COALESCE(ended, CAST(strftime('%s','now') AS REAL)) - started "
        "FROM runs ORDER BY id DESC LIMIT ?1",
        &lp, 1, 0, rlab_ctx_err(ctx));
    if (!r)
        return rlab_ctx_err(ctx)->code;
    static const char in[] = "SELECT id FROM runs ORDER BY id DESC LIMIT ?1";
    mcols mc = {0};
    rlab_db_result *lm = NULL;
    int rc = metric_cols(ctx, db, in, &lp, 1, &mc);
    if (rc == RLAB_OK && mc.n > 0 && !(lm = last_metrics(ctx, db, in, &lp, 1)))
        rc = rlab_ctx_err(ctx)->code;
    int ncol = RUNS_BASE + mc.n;
    const char **names = rlab_ctx_alloc(ctx, (size_t)ncol * sizeof *names);
    rlab_cell *cells =
        rlab_ctx_alloc(ctx, (size_t)(r->nrow ? r->nrow : 1) * (size_t)ncol * sizeof *cells);
    int *order = rlab_ctx_alloc(ctx, (size_t)(r->nrow ? r->nrow : 1) * sizeof *order);
    if (rc == RLAB_OK && (!names || !cells || !order))
        rc = rlab_ctx_errorf(ctx, RLAB_ENOMEM, "out of memory");
    if (rc) {
        rlab_db_result_free(r);
        rlab_db_result_free(lm);
        mcols_free(&mc);
        return rc;
    }
    for (int c = 0; c < RUNS_BASE; c++)
        names[c] = runs_base[c];
    for (int m = 0; m < mc.n; m++)
        names[RUNS_BASE + m] = mc.names[m];
    /* every cell (text borrowed from r and lm, which outlive the table rows) */
    for (int i = 0; i < r->nrow; i++) {
        rlab_cell *row = &cells[(size_t)i * (size_t)ncol];
        order[i] = i;
        for (int c = 0; c < RUNS_BASE; c++)
            row[c] = db_cell(rlab_db_result_cell(r, i, c), NULL, 0);
        for (int m = 0; m < mc.n; m++)
            row[RUNS_BASE + m] = (rlab_cell){.type = RLAB_CELL_NULL};
    }
    for (int k = 0; lm && k < lm->nrow; k++) {
        int64_t id = rlab_db_result_cell(lm, k, 0)->i;
        int m = mcol_index(&mc, text_or(lm, k, 1, NULL)), ok;
        double v = num_of(rlab_db_result_cell(lm, k, 2), &ok);
        for (int i = 0; m >= 0 && ok && i < r->nrow; i++)
            if (cells[(size_t)i * (size_t)ncol].i == id)
                cells[(size_t)i * (size_t)ncol + (size_t)(RUNS_BASE + m)] =
                    (rlab_cell){.type = RLAB_CELL_FLOAT, .f = v};
    }
    /* sort=: a column; metrics and numbers best (largest) first unless order= says */
    const char *sort = rlab_args_str(args, "sort");
    int ord = rlab_args_choice(args, "order"); /* 0 auto, 1 asc, 2 desc */
    if (sort && *sort) {
        int c = runs_col(names, ncol, sort);
        if (c < 0)
            rc = rlab_ctx_errorf(ctx, RLAB_EINVAL,
                                 "no column '%s' to sort by (run, status, "
                                 "model, command, dataset, secs or a metric)",
                                 sort);
        else {
            runs_sort rs = {.cells = cells,
                            .ncol = ncol,
                            .col = c,
                            .desc = ord == 2 || (ord == 0 && c >= RUNS_BASE)};
            g_rs = &rs;
            qsort(order, (size_t)r->nrow, sizeof *order, row_cmp);
            g_rs = NULL;
            rlab_ctx_result_str(ctx, "sort", names[c]);
            rlab_ctx_result_str(ctx, "order", rs.desc ? "desc" : "asc");
        }
    }
    /* cols=: the columns shown (run always first) */
    const char *want = rlab_args_str(args, "cols");
    int *show = rlab_ctx_alloc(ctx, (size_t)ncol * sizeof *show);
    const char **shown = rlab_ctx_alloc(ctx, (size_t)ncol * sizeof *shown);
    int nshow = 0;
    if (rc == RLAB_OK && (!show || !shown))
        rc = rlab_ctx_errorf(ctx, RLAB_ENOMEM, "out of memory");
    for (int c = 0; rc == RLAB_OK && c < ncol; c++)
        if (c == 0 || !want || !*want || col_wanted(want, names[c]))
            show[nshow++] = c;
    if (rc == RLAB_OK && want && *want && nshow == 1 && strcmp(want, "run") != 0)
        rc = rlab_ctx_errorf(ctx, RLAB_EINVAL,
                             "cols=%s names no column (run, status, model, command, dataset, "
                             "secs, a metric such as valid.ndcg@10, or a prefix such as test.*)",
                             want);
    rlab_table *t = NULL;
    if (rc == RLAB_OK) {
        for (int k = 0; k < nshow; k++)
            shown[k] = names[show[k]];
        t = rlab_ctx_result_table(ctx, "runs", nshow, shown);
        rlab_cell *row = rlab_ctx_alloc(ctx, (size_t)nshow * sizeof *row);
        for (int i = 0; t && row && i < r->nrow; i++) {
            for (int k = 0; k < nshow; k++)
                row[k] = cells[(size_t)order[i] * (size_t)ncol + (size_t)show[k]];
            if (rlab_table_add_cells(t, row) != RLAB_OK)
                break;
        }
        if (r->nrow == 0)
            rlab_ctx_printf(ctx, "no runs in the store yet");
    }
    rlab_db_result_free(r);
    rlab_db_result_free(lm);
    mcols_free(&mc);
    return rc;
}

/* ---- show --------------------------------------------------------------------------------- */

int rlab__cmd_show(rlab_ctx *ctx, const rlab_args *args)
{
    rlab_db *db = need_db(ctx);
    int64_t id = 0;
    if (!db)
        return RLAB_ESTATE;
    if (parse_run(ctx, rlab_args_str(args, "run"), &id))
        return RLAB_EINVAL;
    rlab_db_value p = {.type = RLAB_DB_INT, .i = id};
    rlab_err *err = rlab_ctx_err(ctx);
    rlab_db_result *r = rlab_db_query_table(
        db,
        "SELECT plugin, COALESCE(name, ''), COALESCE(model_kind, json_extract(config, "
        "'$.model'), ''), COALESCE(dataset, ''), status, seed, "
        "datetime(started, 'unixepoch', 'localtime'), "
        "printf('%.1f', COALESCE(ended, strftime('%s','now')) - started), COALESCE(config, ''), "
        "COALESCE(error, ''), COALESCE(plugin_version, '') FROM runs WHERE id = ?1",
        &p, 1, 0, err);
    if (!r)
        return err->code;
    if (r->nrow == 0) {
        rlab_db_result_free(r);
        return rlab_ctx_errorf(ctx, RLAB_ENOTFOUND, "no run #%lld", (long long)id);
    }
    char seed[32] = "-";
    const rlab_db_value *sv = rlab_db_result_cell(r, 0, 5);
    if (sv->type == RLAB_DB_INT)
        snprintf(seed, sizeof seed, "%lld", (long long)sv->i);
    const char *model = text_or(r, 0, 2, ""), *data = text_or(r, 0, 3, "");
    rlab_ctx_printf(ctx, "run #%lld  %s  %s  (%s %s)", (long long)id, text_or(r, 0, 1, ""),
                    text_or(r, 0, 4, ""), text_or(r, 0, 0, ""), text_or(r, 0, 10, ""));
    rlab_ctx_printf(ctx, "  model %s  dataset %s  seed %s  started %s  %s s", *model ? model : "-",
                    *data ? data : "-", seed, text_or(r, 0, 6, ""), text_or(r, 0, 7, ""));
    if (*text_or(r, 0, 8, ""))
        rlab_ctx_printf(ctx, "  config %s", text_or(r, 0, 8, ""));
    if (*text_or(r, 0, 9, ""))
        rlab_ctx_printf(ctx, "  error: %s", text_or(r, 0, 9, ""));
    rlab_db_result_free(r);
    r = rlab_db_query_table(db,
                            "SELECT name, COALESCE(kind, ''), COALESCE(path, '(in the store)'), "
                            "COALESCE(bytes, 0) FROM artifacts WHERE run_id = ?1 ORDER BY id",
                            &p, 1, 0, err);
    if (!r)
        return err->code;
    for (int i = 0; i < r->nrow; i++)
        rlab_ctx_printf(ctx, "  artifact %s (%s) %s, %lld bytes", text_or(r, i, 0, "?"),
                        text_or(r, i, 1, ""), text_or(r, i, 2, ""),
                        (long long)rlab_db_result_cell(r, i, 3)->i);
    rlab_db_result_free(r);
    /* metrics: the latest value per (split, name), one row per name, one column per split */
    r = rlab_db_query_table(
        db,
        "SELECT COALESCE(split, ''), name, value, COALESCE(protocol, '') FROM metrics WHERE id "
        "IN (SELECT MAX(id) FROM metrics WHERE run_id = ?1 GROUP BY split, name) "
        "ORDER BY name",
        &p, 1, 0, err);
    if (!r)
        return err->code;
    if (r->nrow == 0) {
        rlab_ctx_printf(ctx, "  no metrics");
        rlab_db_result_free(r);
        return RLAB_OK;
    }
    /* one row per metric name, one column per split (train, valid, test; "value" for
     * metrics without a split); a metric of another split gets its own "split.name" row */
    enum { S_TRAIN, S_VALID, S_TEST, S_VALUE };
    static const char *const split_names[] = {"train", "valid", "test", "value"};
    int nr = r->nrow, present[4] = {0}, col_of[4] = {0}, ngroups = 0;
    char(*keys)[160] = rlab_ctx_alloc(ctx, (size_t)nr * sizeof *keys);
    int *cls = rlab_ctx_alloc(ctx, (size_t)nr * sizeof *cls);
    int *group = rlab_ctx_alloc(ctx, (size_t)nr * sizeof *group);
    int *first = rlab_ctx_alloc(ctx, (size_t)nr * sizeof *first); /* a group's first row */
    if (!keys || !cls || !group || !first) {
        rlab_db_result_free(r);
        return rlab_ctx_errorf(ctx, RLAB_ENOMEM, "out of memory");
    }
    for (int i = 0; i < nr; i++) {
        const char *sp = text_or(r, i, 0, ""), *nm = text_or(r, i, 1, "?");
        int c = S_VALUE;
        for (int k = S_TRAIN; k <= S_TEST; k++)
            if (strcmp(sp, split_names[k]) == 0)
                c = k;
        cls[i] = c;
        present[c] = 1;
        if (c == S_VALUE && *sp)
            snprintf(keys[i], sizeof keys[i], "%s.%s", sp, nm);
        else
            snprintf(keys[i], sizeof keys[i], "%s", nm);
        group[i] = -1;
        for (int g = 0; g < ngroups && group[i] < 0; g++)
            if (strcmp(keys[first[g]], keys[i]) == 0)
                group[i] = g;
        if (group[i] < 0) {
            first[ngroups] = i;
            group[i] = ngroups++;
        }
    }
    const char *cols[6] = {"metric"};
    int ncol = 1;
    for (int k = 0; k < 4; k++)
        if (present[k]) {
            col_of[k] = ncol;
            cols[ncol++] = split_names[k];
        }
    cols[ncol++] = "protocol";
    rlab_table *t = rlab_ctx_result_table(ctx, "metrics", ncol, cols);
    for (int g = 0; t && g < ngroups; g++) {
        rlab_cell row[6];
        char proto[96] = "";
        for (int c = 0; c < ncol; c++)
            row[c] = (rlab_cell){.type = RLAB_CELL_NULL};
        row[0] = (rlab_cell){.type = RLAB_CELL_TEXT, .s = keys[first[g]]};
        for (int i = first[g]; i < nr; i++) {
            if (group[i] != g)
                continue;
            int ok;
            double v = num_of(rlab_db_result_cell(r, i, 2), &ok);
            if (ok)
                row[col_of[cls[i]]] = (rlab_cell){.type = RLAB_CELL_FLOAT, .f = v};
            const char *pr = text_or(r, i, 3, "");
            size_t pl = strlen(proto);
            if (*pr && !strstr(proto, pr))
                snprintf(proto + pl, sizeof proto - pl, "%s%s", pl ? "," : "", pr);
        }
        if (proto[0])
            row[ncol - 1] = (rlab_cell){.type = RLAB_CELL_TEXT, .s = proto};
        if (rlab_table_add_cells(t, row) != RLAB_OK)
            break;
    }
    rlab_db_result_free(r);
    return RLAB_OK;
}

/* ---- compare ------------------------------------------------------------------------------- */

enum { COMPARE_MAX = 32 };

int rlab__cmd_compare(rlab_ctx *ctx, const rlab_args *args)
{
    rlab_db *db = need_db(ctx);
    if (!db)
        return RLAB_ESTATE;
    int64_t ids[COMPARE_MAX];
    int n = 0;
    const char *p = rlab_args_str(args, "runs");
    {
        /* compare EXP ...: an experiment's configurations (experiment.c) */
        const char *w = p ? p + strspn(p, " \t,") : "";
        size_t l = strcspn(w, " \t,");
        char word[64];
        if (l > 0 && l < sizeof word && *w != '#' && (*w < '0' || *w > '9')) {
            snprintf(word, sizeof word, "%.*s", (int)l, w);
            if (rlab__experiment_exists(ctx, word))
                return rlab__compare_experiment(ctx, word, w + l, args);
            if (rlab_ctx_err(ctx)->code)
                return rlab_ctx_err(ctx)->code;
        }
    }
    if ((rlab_args_given(args, "baseline") || rlab_args_given(args, "metric")))
        return rlab_ctx_errorf(ctx, RLAB_EINVAL,
                               "baseline= and metric= are for an experiment (compare EXP ...)");
    while (p && *p) {
        p += strspn(p, " \t,");
        size_t l = strcspn(p, " \t,");
        if (!l)
            break;
        char word[32];
        snprintf(word, sizeof word, "%.*s", (int)(l < sizeof word ? l : sizeof word - 1), p);
        if (l >= sizeof word)
            return rlab_ctx_errorf(ctx, RLAB_EINVAL, "'%.*s' is not a run id", (int)l, p);
        if (n >= COMPARE_MAX)
            return rlab_ctx_errorf(ctx, RLAB_EINVAL, "at most %d runs at once", COMPARE_MAX);
        if (parse_run(ctx, word, &ids[n]))
            return RLAB_EINVAL;
        n++;
        p += l;
    }
    if (n < 2)
        return rlab_ctx_errorf(ctx, RLAB_EINVAL, "name two runs or more (compare 6 7)");
    char in[COMPARE_MAX * 24];
    size_t o = 0;
    for (int i = 0; i < n; i++)
        o += (size_t)snprintf(in + o, sizeof in - o, "%s%lld", i ? "," : "", (long long)ids[i]);
    char sql[1024];
    snprintf(sql, sizeof sql,
             "SELECT id, status, COALESCE(json_extract(config, '$.name') || ' (' || model_kind || "
             "')', model_kind, json_extract(config, '$.model'), ''), COALESCE(name, plugin), "
             "COALESCE(dataset, ''), seed, COALESCE(config, '') FROM runs WHERE id IN (%s)",
             in);
    rlab_db_result *r = rlab_db_query_table(db, sql, NULL, 0, 0, rlab_ctx_err(ctx));
    if (!r)
        return rlab_ctx_err(ctx)->code;
    int row_of[COMPARE_MAX];
    for (int i = 0; i < n; i++) {
        row_of[i] = -1;
        for (int k = 0; k < r->nrow; k++)
            if (rlab_db_result_cell(r, k, 0)->i == ids[i])
                row_of[i] = k;
        if (row_of[i] < 0) {
            rlab_db_result_free(r);
            return rlab_ctx_errorf(ctx, RLAB_ENOTFOUND, "no run #%lld", (long long)ids[i]);
        }
    }
    mcols mc = {0};
    rlab_db_result *lm = NULL;
    int rc = metric_cols(ctx, db, in, NULL, 0, &mc);
    if (rc == RLAB_OK && mc.n > 0 && !(lm = last_metrics(ctx, db, in, NULL, 0)))
        rc = rlab_ctx_err(ctx)->code;
    char heads[COMPARE_MAX][24];
    const char *cols[1 + COMPARE_MAX] = {"field"};
    for (int i = 0; i < n; i++) {
        snprintf(heads[i], sizeof heads[i], "#%lld", (long long)ids[i]);
        cols[1 + i] = heads[i];
    }
    rlab_table *t = rc == RLAB_OK ? rlab_ctx_result_table(ctx, "compare", 1 + n, cols) : NULL;
    static const char *const fields[] = {"status", "model", "command", "dataset", "seed", "config"};
    rlab_cell row[1 + COMPARE_MAX];
    for (int f = 0; t && f < 6 + mc.n; f++) {
        row[0] = (rlab_cell){.type = RLAB_CELL_TEXT, .s = f < 6 ? fields[f] : mc.names[f - 6]};
        for (int i = 0; i < n; i++) {
            row[1 + i] = (rlab_cell){.type = RLAB_CELL_NULL};
            if (f < 6)
                row[1 + i] = db_cell(rlab_db_result_cell(r, row_of[i], 1 + f), NULL, 0);
            for (int k = 0; f >= 6 && lm && k < lm->nrow; k++) {
                int ok;
                double v = num_of(rlab_db_result_cell(lm, k, 2), &ok);
                if (rlab_db_result_cell(lm, k, 0)->i == ids[i] && ok &&
                    strcmp(text_or(lm, k, 1, ""), mc.names[f - 6]) == 0)
                    row[1 + i] = (rlab_cell){.type = RLAB_CELL_FLOAT, .f = v};
            }
        }
        if (rlab_table_add_cells(t, row) != RLAB_OK)
            break;
    }
    rlab_db_result_free(r);
    rlab_db_result_free(lm);
    mcols_free(&mc);
    return rc;
}

/* ---- sql ------------------------------------------------------------------------------------ */

static int sql_cancelled(void *ud) { return rlab_ctx_cancelled(ud); }

int rlab__cmd_sql(rlab_ctx *ctx, const rlab_args *args)
{
    rlab_db *db = need_db(ctx);
    if (!db)
        return RLAB_ESTATE;
    int64_t rows = rlab_args_int(args, "rows");
    double timeout = rlab_args_float(args, "timeout");
    rlab_db_limits lim = {
        .max_rows = rows, .max_seconds = timeout, .cancelled = sql_cancelled, .ud = ctx};
    rlab_db_result *r = rlab_db_query_limited(db, rlab_args_str(args, "query"), NULL, 0, 0, &lim,
                                              rlab_ctx_err(ctx));
    if (!r) {
        rlab_err *e = rlab_ctx_err(ctx);
        if (e->code == RLAB_ECANCELED)
            return RLAB_ECANCELED;
        if (strstr(e->msg, "time limit"))
            return rlab_ctx_errorf(ctx, e->code,
                                   "stopped after %.15g s, its time limit: raise it with "
                                   "timeout=SECONDS (0 = none)",
                                   timeout);
        return e->code ? e->code : RLAB_EDB;
    }
    rlab_table *t = rlab_ctx_result_table(ctx, "sql", r->ncol, (const char *const *)r->names);
    rlab_cell *row = rlab_ctx_alloc(ctx, (size_t)(r->ncol ? r->ncol : 1) * sizeof *row);
    char(*blob)[32] = rlab_ctx_alloc(ctx, (size_t)(r->ncol ? r->ncol : 1) * sizeof *blob);
    for (int i = 0; t && row && blob && i < r->nrow; i++) {
        for (int c = 0; c < r->ncol; c++)
            row[c] = db_cell(rlab_db_result_cell(r, i, c), blob[c], sizeof blob[c]);
        if (rlab_table_add_cells(t, row) != RLAB_OK)
            break;
    }
    if (lim.truncated)
        rlab_ctx_printf(ctx, "the first %d rows (rows=%lld; more with rows=N, 0 = all)", r->nrow,
                        (long long)rows);
    else
        rlab_ctx_printf(ctx, "%d row%s, %d column%s", r->nrow, r->nrow == 1 ? "" : "s", r->ncol,
                        r->ncol == 1 ? "" : "s");
    rlab_db_result_free(r);
    return RLAB_OK;
}

/* ---- export run=N ---------------------------------------------------------------------------- */

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p == '\n')
            fputs("\\n", f);
        else if (*p == '\t')
            fputs("\\t", f);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

static void json_num(FILE *f, double v)
{
    if (isfinite(v))
        fprintf(f, "%.17g", v);
    else
        fputs("null", f);
}

static void csv_field(FILE *f, const char *s)
{
    if (!s)
        return;
    if (strpbrk(s, ",\"\n\r")) {
        fputc('"', f);
        for (const char *p = s; *p; p++) {
            if (*p == '"')
                fputc('"', f);
            fputc(*p, f);
        }
        fputc('"', f);
    } else
        fputs(s, f);
}

static void write_csv(FILE *f, int64_t id, const rlab_db_result *m)
{
    fputs("run,step,split,name,protocol,value\n", f);
    for (int i = 0; i < m->nrow; i++) {
        const rlab_db_value *c0 = rlab_db_result_cell(m, i, 0);
        fprintf(f, "%lld,", (long long)id);
        if (c0->type == RLAB_DB_INT)
            fprintf(f, "%lld", (long long)c0->i);
        fputc(',', f);
        for (int c = 1; c <= 3; c++) {
            csv_field(f, text_or(m, i, c, NULL));
            fputc(',', f);
        }
        int ok;
        double v = num_of(rlab_db_result_cell(m, i, 4), &ok);
        if (ok)
            fprintf(f, "%.17g", v);
        fputc('\n', f);
    }
}

static void write_json(FILE *f, const rlab_db_result *run, const rlab_db_result *m)
{
    fputs("{\"run\": {", f);
    for (int c = 0; c < run->ncol; c++) {
        const rlab_db_value *v = rlab_db_result_cell(run, 0, c);
        fprintf(f, "%s", c ? ", " : "");
        json_str(f, run->names[c]);
        fputs(": ", f);
        if (v->type == RLAB_DB_INT)
            fprintf(f, "%lld", (long long)v->i);
        else if (v->type == RLAB_DB_REAL)
            json_num(f, v->r);
        else if (v->type == RLAB_DB_TEXT && !strcmp(run->names[c], "config"))
            fputs(v->s, f); /* valid JSON by the schema's CHECK */
        else if (v->type == RLAB_DB_TEXT)
            json_str(f, v->s);
        else
            fputs("null", f);
    }
    fputs("},\n \"metrics\": [", f);
    static const char *const keys[] = {"split", "name", "protocol"};
    for (int i = 0; i < m->nrow; i++) {
        fprintf(f, "%s\n  {\"step\": ", i ? "," : "");
        const rlab_db_value *c0 = rlab_db_result_cell(m, i, 0);
        if (c0->type == RLAB_DB_INT)
            fprintf(f, "%lld", (long long)c0->i);
        else
            fputs("null", f);
        for (int c = 1; c <= 3; c++) {
            fprintf(f, ", \"%s\": ", keys[c - 1]);
            const char *s = text_or(m, i, c, NULL);
            if (s)
                json_str(f, s);
            else
                fputs("null", f);
        }
        int ok;
        double v = num_of(rlab_db_result_cell(m, i, 4), &ok);
        fputs(", \"value\": ", f);
        if (ok)
            json_num(f, v);
        else
            fputs("null", f);
        fputc('}', f);
    }
    fputs("\n]}\n", f);
}

int rlab__export_run(rlab_ctx *ctx, const char *run, const char *file, int json)
{
    rlab_db *db = need_db(ctx);
    int64_t id = 0;
    if (!db)
        return RLAB_ESTATE;
    if (parse_run(ctx, run, &id))
        return RLAB_EINVAL;
    rlab_err *err = rlab_ctx_err(ctx);
    rlab_db_value p = {.type = RLAB_DB_INT, .i = id};
    rlab_db_result *rr = rlab_db_query_table(
        db,
        "SELECT id, plugin, name, model_kind, dataset, status, seed, started, ended, config, "
        "error FROM runs WHERE id = ?1",
        &p, 1, 0, err);
    if (!rr)
        return err->code;
    if (rr->nrow == 0) {
        rlab_db_result_free(rr);
        return rlab_ctx_errorf(ctx, RLAB_ENOTFOUND, "no run #%lld", (long long)id);
    }
    rlab_db_result *m = rlab_db_query_table(
        db, "SELECT step, split, name, protocol, value FROM metrics WHERE run_id = ?1 ORDER BY id",
        &p, 1, 0, err);
    if (!m) {
        rlab_db_result_free(rr);
        return err->code;
    }
    /* written beside the target, renamed over it when complete */
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", file);
    FILE *f = fopen(tmp, "w");
    int rc = RLAB_OK;
    if (!f) {
        rc = rlab_ctx_errorf(ctx, RLAB_EIO, "cannot write %s: %s", tmp, strerror(errno));
    } else {
        if (json)
            write_json(f, rr, m);
        else
            write_csv(f, id, m);
        int bad = ferror(f);
        if (fclose(f) != 0 || bad)
            rc = rlab_ctx_errorf(ctx, RLAB_EIO, "cannot write %s", tmp);
        if (rc == RLAB_OK && rename(tmp, file) != 0)
            rc = rlab_ctx_errorf(ctx, RLAB_EIO, "cannot rename %s to %s: %s", tmp, file,
                                 strerror(errno));
        if (rc)
            unlink(tmp);
    }
    if (rc == RLAB_OK) {
        rlab_ctx_printf(ctx, "exported run #%lld (%d metric rows, %s) to %s", (long long)id,
                        m->nrow, json ? "json" : "csv", file);
        rlab_ctx_result_str(ctx, "file", file);
        rlab_ctx_result_int(ctx, "rows", m->nrow);
    }
    rlab_db_result_free(rr);
    rlab_db_result_free(m);
    return rc;
}

/* ---- tables as CSV (export cmd=, the shell's export view) ---------------------------------- */

int rlab_write_csv(const char *path, int ncols, const char *const *cols, int64_t nrows,
                   rlab_csv_cell_fn cell, const void *ud, rlab_err *err)
{
    if (!path || !*path)
        return rlab_errf(err, RLAB_EINVAL, "no file to write");
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return rlab_errf(err, RLAB_EIO, "cannot write %s: %s", tmp, strerror(errno));
    for (int c = 0; c < ncols; c++) {
        if (c)
            fputc(',', f);
        csv_field(f, cols[c]);
    }
    fputc('\n', f);
    char buf[64];
    for (int64_t r = 0; r < nrows; r++) {
        for (int c = 0; c < ncols; c++) {
            if (c)
                fputc(',', f);
            csv_field(f, cell(ud, r, c, buf, sizeof buf));
        }
        fputc('\n', f);
    }
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        unlink(tmp);
        return rlab_errf(err, RLAB_EIO, "cannot write %s", tmp);
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return rlab_errf(err, RLAB_EIO, "cannot rename %s to %s: %s", tmp, path, strerror(e));
    }
    return RLAB_OK;
}

const char *rlab_cell_text(const rlab_cell *c, char *buf, size_t cap)
{
    switch (c ? c->type : RLAB_CELL_NULL) {
    case RLAB_CELL_INT:
        snprintf(buf, cap, "%lld", (long long)c->i);
        return buf;
    case RLAB_CELL_FLOAT:
        if (!isfinite(c->f))
            return isnan(c->f) ? "nan" : c->f > 0 ? "inf" : "-inf";
        for (int prec = 6; prec <= 17; prec++) { /* the shortest text that reads back exact */
            snprintf(buf, cap, "%.*g", prec, c->f);
            double back = strtod(buf, NULL);
            if (memcmp(&back, &c->f, sizeof back) == 0)
                break;
        }
        return buf;
    case RLAB_CELL_TEXT:
    case RLAB_CELL_MODEL:
        return c->s;
    default:
        return NULL;
    }
}

static const char *table_cell(const void *ud, int64_t r, int c, char *buf, size_t cap)
{
    const rlab_table *t = ud;
    return rlab_cell_text(&t->cells[r * t->ncols + c], buf, cap);
}

/* export cmd="LINE" file=F [table=NAME]: run the command (nested, as this one's part) and
 * write its result table as CSV. */
int rlab__export_cmd(rlab_ctx *ctx, const char *line, const char *table, const char *file)
{
    rlab_result *res = NULL;
    while (*line == ' ')
        line++;
    if (!strncmp(line, "export", 6) && (line[6] == ' ' || !line[6]))
        return rlab_ctx_errorf(ctx, RLAB_EINVAL, "cmd= cannot be another export");
    int rc = rlab_ctx_call_line(ctx, line, &res);
    if (rc) {
        rlab_result_free(res);
        return rc;
    }
    const rlab_table *t = NULL;
    for (int i = 0; res && i < res->ntables; i++)
        if (!table || !*table || (res->tables[i]->name && !strcmp(res->tables[i]->name, table))) {
            t = res->tables[i];
            break;
        }
    if (!t) {
        char names[256] = "";
        size_t o = 0;
        for (int i = 0; res && i < res->ntables && o < sizeof names; i++) {
            int n = snprintf(names + o, sizeof names - o, "%s%s", i ? ", " : "",
                             res->tables[i]->name ? res->tables[i]->name : "?");
            o += n > 0 ? (size_t)n : 0;
        }
        rc = table && *table
                 ? rlab_ctx_errorf(ctx, RLAB_ENOTFOUND, "'%s' has no table '%s' (it has: %s)", line,
                                   table, names[0] ? names : "none")
                 : rlab_ctx_errorf(ctx, RLAB_ENOTFOUND, "'%s' returned no table to export", line);
        rlab_result_free(res);
        return rc;
    }
    rc = rlab_write_csv(file, t->ncols, (const char *const *)t->cols, t->nrows, table_cell, t,
                        rlab_ctx_err(ctx));
    if (rc == RLAB_OK) {
        rlab_ctx_printf(ctx, "exported the table '%s' of '%s' (%lld rows, %d columns) to %s",
                        t->name ? t->name : "table", line, (long long)t->nrows, t->ncols, file);
        rlab_ctx_result_str(ctx, "file", file);
        rlab_ctx_result_int(ctx, "rows", t->nrows);
    }
    rlab_result_free(res);
    return rc;
}

/* ---- declarations --------------------------------------------------------------------------- */

static const char *const runs_orders[] = {"auto", "asc", "desc", NULL};

const rlab_arg rlab__runs_args[] = {
    {.name = "sort",
     .type = RLAB_ARG_STRING,
     .help = "column to sort by: run, status, model, command, dataset, secs or a metric "
             "(valid.ndcg@10; ndcg@10 finds it too)"},
    {.name = "order",
     .type = RLAB_ARG_CHOICE,
     .choices = runs_orders,
     .def = "auto",
     .help = "auto: metrics largest first, other columns ascending"},
    {.name = "cols",
     .type = RLAB_ARG_STRING,
     .help = "columns to show, comma-separated; a trailing * matches a prefix (test.*); the run "
             "column always comes first (default: all)"},
    {.name = "limit",
     .type = RLAB_ARG_INT,
     .def = "200",
     .min = 1,
     .max = 100000,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
     .help = "the newest runs listed"},
    {0}};

const rlab_arg rlab__show_args[] = {{.name = "run",
                                     .type = RLAB_ARG_STRING,
                                     .flags = RLAB_ARGF_REQUIRED,
                                     .help = "run id (7 or #7)"},
                                    {0}};

const rlab_arg rlab__compare_args[] = {
    {.name = "runs",
     .type = RLAB_ARG_STRING,
     .flags = RLAB_ARGF_REQUIRED | RLAB_ARGF_REST,
     .help = "two or more run ids, separated by blanks or commas (6 7, #6,#7), or an "
             "experiment's name (compare EXP [baseline=] [metric=])"},
    {.name = "baseline",
     .type = RLAB_ARG_STRING,
     .help = "compare EXP: the configuration the others are tested against (its label, or a "
             "unique part of it such as the kind); default the first"},
    {.name = "metric",
     .type = RLAB_ARG_STRING,
     .help = "compare EXP: metrics, comma-separated (default ndcg@10,hr@10)"},
    {0}};

const rlab_arg rlab__sql_args[] = {
    {.name = "query",
     .type = RLAB_ARG_STRING,
     .flags = RLAB_ARGF_REQUIRED | RLAB_ARGF_REST,
     .help = "SQL (read-only): one or more statements; the rows of the last one are returned"},
    {.name = "rows",
     .type = RLAB_ARG_INT,
     .def = "10000",
     .min = 0,
     .flags = RLAB_ARGF_MIN,
     .help = "row limit: the query stops there and says so (0 = none)"},
    {.name = "timeout",
     .type = RLAB_ARG_FLOAT,
     .def = "30",
     .min = 0,
     .max = 86400,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
     .help = "time limit in seconds: past it the query stops with an error (0 = none)"},
    {0}};
