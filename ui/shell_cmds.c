/*
 * ui/shell_cmds.c: the shell's command dispatcher, its own commands and completion.
 *
 * An entered line is, in order: `=expr` (Lua, values printed), one of the shell's commands
 * below (a static table, tmux cmd_entry style), or a host command (core or plugin) parsed
 * and checked by the host: RLAB_CMD_JOB commands are submitted to the host's worker, the
 * others run right away. Errors become one line in the log. Lua chunks and dataset loads run
 * on the shell's task thread (tui_task.c) so Ctrl-C can interrupt them.
 */
#include "tui.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* ---- words --------------------------------------------------------------------------- */

enum { MAX_ARGS = 32 };

/* Split on blanks honouring '...' and "..." (backslash escapes inside "..."). Writes into
 * buf; returns argc or -1 for an unterminated quote. */
static int split_words(const char *line, char *buf, size_t cap, char **argv, int max)
{
    int argc = 0;
    size_t o = 0;
    const char *p = line;
    while (*p) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p)
            break;
        if (argc >= max || o + 1 >= cap)
            break;
        argv[argc++] = buf + o;
        while (*p && *p != ' ' && *p != '\t') {
            if (*p == '\'' || *p == '"') {
                char q = *p++;
                while (*p && *p != q) {
                    if (q == '"' && *p == '\\' && p[1])
                        p++;
                    if (o + 1 < cap)
                        buf[o++] = *p;
                    p++;
                }
                if (*p != q)
                    return -1;
                p++;
            } else if (o + 1 < cap)
                buf[o++] = *p++;
            else
                p++;
        }
        buf[o++] = 0;
    }
    return argc;
}

static const char *skip_word(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    while (*p && *p != ' ' && *p != '\t')
        p++;
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

static int parse_run(tui *t, const char *s, int64_t *id)
{
    if (*s == '#')
        s++;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v <= 0) {
        tui_log_addf(t, TUI_K_ERR, "error: '%s' is not a run id (a number such as 7 or #7)", s);
        return -1;
    }
    *id = v;
    return 0;
}

/* ---- commands ------------------------------------------------------------------------ */

typedef struct shell_cmd {
    const char *name;
    const char *usage;
    const char *help;
    void (*run)(tui *t, int argc, char **argv, const char *rest);
} shell_cmd;

static const shell_cmd *find_shell_cmd(const char *name);
static void run_host_line(tui *t, const char *line);

static void c_help(tui *t, int argc, char **argv, const char *rest);

static void c_quit(tui *t, int argc, char **argv, const char *rest)
{
    (void)argc;
    (void)argv;
    (void)rest;
    int n = rlab_host_cancel_all(t->host);
    if (atomic_load(&t->task_busy))
        rlab_app_lua_interrupt(t->app);
    if (n > 0)
        tui_log_addf(t, TUI_K_WARN, "cancelled %d job(s)", n);
    t->quit = 1;
}

static void c_clear(tui *t, int argc, char **argv, const char *rest)
{
    (void)argc;
    (void)argv;
    (void)rest;
    for (int i = 0; i < t->log.n; i++) {
        tui_line *l = &t->log.lines[(t->log.head + i) % TUI_LOG_CAP];
        rlab_free(l->text);
        l->text = NULL;
    }
    t->log.n = t->log.head = t->log.scroll = 0;
    t->dirty |= TUI_D_MAIN;
}

static void c_view(tui *t, int argc, char **argv, const char *rest)
{
    if (argc < 2) {
        tui_log_add(t, TUI_K_OUT, "views: log table chart");
        for (int i = 0; i < t->npviews; i++)
            tui_log_addf(t, TUI_K_OUT, "  %-24s %s (%s)", t->pviews[i].name, t->pviews[i].title,
                         t->pviews[i].kind);
        return;
    }
    const char *v = argv[1];
    if (!strcmp(v, "log"))
        t->view = TUI_VIEW_LOG;
    else if (!strcmp(v, "table")) {
        t->view = TUI_VIEW_TABLE;
        if (t->table.ncol == 0)
            tui_table_runs(t, NULL, 0, NULL);
    } else if (!strcmp(v, "chart"))
        t->view = TUI_VIEW_CHART;
    else {
        for (int i = 0; i < t->npviews; i++) {
            const char *dot = strchr(t->pviews[i].name, '.');
            if (!strcmp(t->pviews[i].name, v) || (dot && !strcmp(dot + 1, v))) {
                tui_pview *pv = &t->pviews[i];
                if (argc > 2 && strcmp(pv->kind, "card")) {
                    tui_log_addf(t, TUI_K_ERR, "error: view: %s takes no arguments", pv->name);
                    return;
                }
                if (argc > 2) { /* a card's source is a command: the arguments pick what it
                                   shows, `view agent 12` -> "simulator.agent 12" */
                    size_t cl = strcspn(pv->source, " ");
                    snprintf(pv->source + cl, sizeof pv->source - cl, " %s", skip_word(rest));
                }
                t->pview = i;
                t->view = TUI_VIEW_PLUGIN;
                t->dirty |= TUI_D_MAIN | TUI_D_STATUS;
                return;
            }
        }
        tui_log_addf(t, TUI_K_ERR, "error: view: no view '%s' (log, table, chart or a plugin view)",
                     v);
        return;
    }
    t->dirty |= TUI_D_MAIN | TUI_D_STATUS;
}

static void c_runs(tui *t, int argc, char **argv, const char *rest)
{
    (void)rest;
    rlab_err err = {0};
    if (tui_table_runs(t, NULL, 0, &err)) {
        tui_log_addf(t, TUI_K_ERR, "error: runs: %s", err.msg);
        return;
    }
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (!strncmp(s, "sort=", 5))
            s += 5;
        int c = tui_table_col(&t->table, s);
        if (c < 0) {
            tui_log_addf(t, TUI_K_ERR, "error: runs: no column '%s'", s);
            continue;
        }
        t->table.sort_col = c;
        t->table.sort_desc = c >= 6; /* metrics: best (largest) first */
        tui_table_sort(&t->table);
    }
    tui_log_addf(t, TUI_K_INFO, "%d runs in the table view (sort <column> [asc|desc])",
                 t->table.nrow);
    t->view = TUI_VIEW_TABLE;
    t->dirty |= TUI_D_MAIN | TUI_D_STATUS;
}

static void c_sort(tui *t, int argc, char **argv, const char *rest)
{
    (void)rest;
    if (argc < 2) {
        tui_log_add(t, TUI_K_ERR, "error: usage: sort <column> [asc|desc]");
        return;
    }
    if (t->table.ncol == 0)
        tui_table_runs(t, NULL, 0, NULL);
    int c = tui_table_col(&t->table, argv[1]);
    if (c < 0) {
        tui_log_addf(t, TUI_K_ERR, "error: sort: no column '%s' in the table", argv[1]);
        return;
    }
    if (argc > 2 && strcmp(argv[2], "desc") && strcmp(argv[2], "asc")) {
        tui_log_addf(t, TUI_K_ERR, "error: sort: order must be asc or desc, got '%s'", argv[2]);
        return;
    }
    t->table.sort_col = c;
    /* numbers: largest first unless asked; text: alphabetical */
    int numeric = t->table.nrow > 0 && !isnan(t->table.num[c]);
    t->table.sort_desc = argc > 2 ? !strcmp(argv[2], "desc") : numeric;
    tui_table_sort(&t->table);
    t->view = TUI_VIEW_TABLE;
    t->dirty |= TUI_D_MAIN;
}

static void c_show(tui *t, int argc, char **argv, const char *rest)
{
    (void)rest;
    int64_t id;
    if (argc != 2) {
        tui_log_add(t, TUI_K_ERR, "error: usage: show <run>");
        return;
    }
    if (parse_run(t, argv[1], &id))
        return;
    rlab_err err = {0};
    rlab_db_value p = {.type = RLAB_DB_INT, .i = id};
    rlab_db_result *r = rlab_db_query_table(
        t->db,
        "SELECT plugin, COALESCE(name, ''), COALESCE(model_kind, json_extract(config, "
        "'$.model'), ''), COALESCE(dataset, ''), "
        "status, COALESCE(seed, ''), datetime(started, 'unixepoch', 'localtime'), "
        "printf('%.1f', COALESCE(ended, strftime('%s','now')) - started), COALESCE(config, ''), "
        "COALESCE(error, ''), COALESCE(plugin_version, '') FROM runs WHERE id = ?1",
        &p, 1, 0, &err);
    if (!r) {
        tui_log_addf(t, TUI_K_ERR, "error: show: %s", err.msg);
        return;
    }
    if (r->nrow == 0) {
        rlab_db_result_free(r);
        tui_log_addf(t, TUI_K_ERR, "error: show: no run #%lld", (long long)id);
        return;
    }
#define S(c)                                                                                       \
    (rlab_db_result_cell(r, 0, c)->type == RLAB_DB_TEXT ? rlab_db_result_cell(r, 0, c)->s : "")
    char seed[32] = "";
    const rlab_db_value *sv = rlab_db_result_cell(r, 0, 5);
    if (sv->type == RLAB_DB_INT)
        snprintf(seed, sizeof seed, "%lld", (long long)sv->i);
    tui_log_addf(t, TUI_K_OUT, "run #%lld  %s  %s  (%s %s)", (long long)id, S(1), S(4), S(0),
                 S(10));
    tui_log_addf(t, TUI_K_OUT, "  model %s  dataset %s  seed %s  started %s  %s s",
                 *S(2) ? S(2) : "-", *S(3) ? S(3) : "-", *seed ? seed : "-", S(6), S(7));
    if (*S(8))
        tui_log_addf(t, TUI_K_OUT, "  config %s", S(8));
    if (*S(9))
        tui_log_addf(t, TUI_K_ERR, "  error: %s", S(9));
#undef S
    rlab_db_result_free(r);
    r = rlab_db_query_table(
        t->db,
        "SELECT CASE WHEN split IS NULL OR split = '' THEN name ELSE split || '.' || name END, "
        "value, step, COALESCE(protocol, '') FROM metrics WHERE id IN (SELECT MAX(id) FROM "
        "metrics WHERE run_id = ?1 GROUP BY split, name) ORDER BY 1",
        &p, 1, 0, &err);
    if (r && r->nrow > 0) {
        char line[1024];
        size_t o = 0;
        o += (size_t)snprintf(line, sizeof line, "  metrics");
        for (int i = 0; i < r->nrow && o + 64 < sizeof line; i++) {
            char v[32];
            const rlab_db_value *cv = rlab_db_result_cell(r, i, 1);
            tui_fmt_num(cv->type == RLAB_DB_REAL ? cv->r : (double)cv->i, v, sizeof v);
            const char *proto = rlab_db_result_cell(r, i, 3)->s;
            o += (size_t)snprintf(line + o, sizeof line - o, "  %s %s%s%s%s",
                                  rlab_db_result_cell(r, i, 0)->s, v, proto && *proto ? " (" : "",
                                  proto && *proto ? proto : "", proto && *proto ? ")" : "");
        }
        tui_log_add(t, TUI_K_OUT, line);
    } else if (r)
        tui_log_add(t, TUI_K_OUT, "  no metrics");
    rlab_db_result_free(r);
    r = rlab_db_query_table(t->db,
                            "SELECT name, COALESCE(kind, ''), COALESCE(path, '(in store)'), "
                            "COALESCE(bytes, 0) FROM artifacts WHERE run_id = ?1",
                            &p, 1, 0, &err);
    for (int i = 0; r && i < r->nrow; i++)
        tui_log_addf(t, TUI_K_OUT, "  artifact %s (%s) %s, %lld bytes",
                     rlab_db_result_cell(r, i, 0)->s, rlab_db_result_cell(r, i, 1)->s,
                     rlab_db_result_cell(r, i, 2)->s, (long long)rlab_db_result_cell(r, i, 3)->i);
    rlab_db_result_free(r);
}

static void c_compare(tui *t, int argc, char **argv, const char *rest)
{
    (void)rest;
    if (argc < 3) {
        tui_log_add(t, TUI_K_ERR, "error: usage: compare <run> <run>...");
        return;
    }
    int64_t ids[TUI_CHART_RUNS];
    int n = 0;
    for (int i = 1; i < argc; i++) {
        if (n >= TUI_CHART_RUNS) {
            tui_log_addf(t, TUI_K_WARN, "compare: only the first %d runs are shown",
                         TUI_CHART_RUNS);
            break;
        }
        if (parse_run(t, argv[i], &ids[n]))
            return;
        n++;
    }
    rlab_err err = {0};
    if (tui_table_compare(t, ids, n, &err)) {
        tui_log_addf(t, TUI_K_ERR, "error: %s", err.msg);
        return;
    }
    t->view = TUI_VIEW_TABLE;
    t->dirty |= TUI_D_MAIN | TUI_D_STATUS;
}

static void c_chart(tui *t, int argc, char **argv, const char *rest)
{
    (void)rest;
    if (argc < 2) {
        if (t->chart.nkeys) {
            t->view = TUI_VIEW_CHART;
            t->dirty |= TUI_D_MAIN;
            return;
        }
        tui_log_add(t, TUI_K_ERR, "error: usage: chart <metric> [run...]");
        return;
    }
    const char *metric = argv[1];
    int64_t ids[TUI_CHART_RUNS];
    int n = 0;
    for (int i = 2; i < argc && n < TUI_CHART_RUNS; i++) {
        if (parse_run(t, argv[i], &ids[n]))
            return;
        n++;
    }
    rlab_err err = {0};
    if (n == 0 && t->db) { /* the latest runs that have the metric */
        const char *nm = metric;
        const char *dot = strchr(metric, '.');
        if (dot && (!strncmp(metric, "train.", 6) || !strncmp(metric, "valid.", 6) ||
                    !strncmp(metric, "test.", 5)))
            nm = dot + 1;
        rlab_db_value p = {.type = RLAB_DB_TEXT, .s = nm, .n = strlen(nm)};
        rlab_db_result *r = rlab_db_query_table(
            t->db,
            "SELECT DISTINCT run_id FROM metrics WHERE name = ?1 ORDER BY run_id DESC LIMIT 3", &p,
            1, 0, &err);
        for (int i = 0; r && i < r->nrow; i++)
            ids[n++] = rlab_db_result_cell(r, i, 0)->i;
        rlab_db_result_free(r);
        /* the running job's live series too */
        tui_job *j = tui_running_job(t);
        if (j && n < TUI_CHART_RUNS) {
            int64_t key = j->run_id > 0 ? j->run_id : -(int64_t)j->id;
            int have = 0;
            for (int i = 0; i < n; i++)
                have |= ids[i] == key;
            if (!have && tui_series_get(t, key, metric, 0))
                ids[n++] = key;
        }
        if (n == 0) {
            tui_log_addf(t, TUI_K_ERR, "error: chart: no run has a metric '%s'", metric);
            return;
        }
    }
    tui_chart *ch = &t->chart;
    ch->follow = 0;
    snprintf(ch->metric, sizeof ch->metric, "%s", metric);
    snprintf(ch->xlabel, sizeof ch->xlabel, "step");
    ch->nkeys = 0;
    int points = 0;
    for (int i = 0; i < n; i++) {
        int got = ids[i] > 0 ? tui_series_load(t, ids[i], metric) : 0;
        tui_series *s = tui_series_get(t, ids[i], metric, 0);
        if (!got && !s) {
            tui_log_addf(t, TUI_K_WARN, "chart: run #%lld has no metric '%s'", (long long)ids[i],
                         metric);
            continue;
        }
        points += s ? s->n : got;
        ch->keys[ch->nkeys] = ids[i];
        char lab[40] = "";
        if (ids[i] > 0 && t->db) {
            rlab_db_value p = {.type = RLAB_DB_INT, .i = ids[i]};
            rlab_db_result *r =
                rlab_db_query_table(t->db,
                                    "SELECT COALESCE(model_kind, json_extract(config, '$.name'), "
                                    "json_extract(config, '$.model'), name, plugin) "
                                    "FROM runs WHERE id = ?1",
                                    &p, 1, 0, &err);
            if (r && r->nrow && rlab_db_result_cell(r, 0, 0)->type == RLAB_DB_TEXT) {
                const char *l = rlab_db_result_cell(r, 0, 0)->s;
                const char *dot = strchr(l, '.');
                snprintf(lab, sizeof lab, "%s", dot ? dot + 1 : l);
            }
            rlab_db_result_free(r);
        }
        snprintf(ch->labels[ch->nkeys], sizeof ch->labels[0], "#%lld %.18s",
                 (long long)(ids[i] > 0 ? ids[i] : -ids[i]), lab);
        ch->nkeys++;
    }
    if (ch->nkeys == 0) {
        tui_log_addf(t, TUI_K_ERR, "error: chart: nothing to draw for '%s'", metric);
        return;
    }
    tui_log_addf(t, TUI_K_INFO, "chart %s: %d run(s), %d points", metric, ch->nkeys, points);
    t->view = TUI_VIEW_CHART;
    t->dirty |= TUI_D_MAIN | TUI_D_STATUS;
}

static void c_sql(tui *t, int argc, char **argv, const char *rest)
{
    (void)argc;
    (void)argv;
    if (!*rest) {
        tui_log_add(t, TUI_K_ERR, "error: usage: sql <query>");
        return;
    }
    if (!t->db) {
        tui_log_add(t, TUI_K_ERR, "error: sql: no session store");
        return;
    }
    rlab_err err = {0};
    rlab_db_result *r = rlab_db_query_table(t->db, rest, NULL, 0, 0, &err);
    if (!r) {
        tui_log_addf(t, TUI_K_ERR, "error: sql: %s", err.msg);
        return;
    }
    tui_table *tb = &t->table;
    tui_table_clear(tb);
    tui_table_set_cols(tb, r->ncol, (const char *const *)r->names);
    char(*buf)[128] = rlab_calloc((size_t)(r->ncol > 0 ? r->ncol : 1), sizeof *buf);
    const char **row = rlab_calloc((size_t)(r->ncol > 0 ? r->ncol : 1), sizeof *row);
    for (int i = 0; buf && row && i < r->nrow; i++) {
        for (int c = 0; c < r->ncol; c++) {
            const rlab_db_value *v = rlab_db_result_cell(r, i, c);
            switch (v->type) {
            case RLAB_DB_INT:
                snprintf(buf[c], 128, "%lld", (long long)v->i);
                break;
            case RLAB_DB_REAL:
                snprintf(buf[c], 128, "%.6g", v->r);
                break;
            case RLAB_DB_TEXT:
                snprintf(buf[c], 128, "%s", v->s);
                break;
            case RLAB_DB_BLOB:
                snprintf(buf[c], 128, "<%zu bytes>", v->n);
                break;
            default:
                snprintf(buf[c], 128, "NULL");
            }
            row[c] = buf[c];
        }
        tui_table_add_row(tb, row);
    }
    rlab_free(buf);
    rlab_free(row);
    snprintf(tb->title, sizeof tb->title, "sql (%d rows)", r->nrow);
    tui_log_addf(t, TUI_K_INFO, "sql: %d row(s), %d column(s)%s", r->nrow, r->ncol,
                 r->ncol ? " in the table view" : "");
    if (r->ncol)
        t->view = TUI_VIEW_TABLE;
    rlab_db_result_free(r);
    t->dirty |= TUI_D_MAIN | TUI_D_STATUS;
}

/* JSON string literal of s into f. */
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
    if (strpbrk(s, ",\"\n")) {
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

static void c_export(tui *t, int argc, char **argv, const char *rest)
{
    (void)rest;
    if (argc != 4 || (strcmp(argv[2], "csv") && strcmp(argv[2], "json"))) {
        tui_log_add(t, TUI_K_ERR, "error: usage: export <run> csv|json FILE");
        return;
    }
    int64_t id;
    if (parse_run(t, argv[1], &id))
        return;
    rlab_err err = {0};
    rlab_db_value p = {.type = RLAB_DB_INT, .i = id};
    rlab_db_result *run = rlab_db_query_table(
        t->db,
        "SELECT id, plugin, name, model_kind, dataset, status, seed, started, ended, config, "
        "error FROM runs WHERE id = ?1",
        &p, 1, 0, &err);
    if (!run || run->nrow == 0) {
        tui_log_addf(t, TUI_K_ERR, "error: export: %s", run ? "no such run" : err.msg);
        rlab_db_result_free(run);
        return;
    }
    rlab_db_result *m = rlab_db_query_table(
        t->db,
        "SELECT step, split, name, protocol, value FROM metrics WHERE run_id = ?1 ORDER BY id", &p,
        1, 0, &err);
    if (!m) {
        tui_log_addf(t, TUI_K_ERR, "error: export: %s", err.msg);
        rlab_db_result_free(run);
        return;
    }
    FILE *f = fopen(argv[3], "w");
    if (!f) {
        tui_log_addf(t, TUI_K_ERR, "error: export: cannot write %s: %s", argv[3], strerror(errno));
        rlab_db_result_free(run);
        rlab_db_result_free(m);
        return;
    }
    if (!strcmp(argv[2], "csv")) {
        fputs("run,step,split,name,protocol,value\n", f);
        for (int i = 0; i < m->nrow; i++) {
            const rlab_db_value *c0 = rlab_db_result_cell(m, i, 0);
            fprintf(f, "%lld,", (long long)id);
            if (c0->type == RLAB_DB_INT)
                fprintf(f, "%lld", (long long)c0->i);
            fputc(',', f);
            for (int c = 1; c <= 3; c++) {
                const rlab_db_value *v = rlab_db_result_cell(m, i, c);
                csv_field(f, v->type == RLAB_DB_TEXT ? v->s : NULL);
                fputc(',', f);
            }
            const rlab_db_value *v = rlab_db_result_cell(m, i, 4);
            if (v->type == RLAB_DB_REAL || v->type == RLAB_DB_INT)
                fprintf(f, "%.17g", v->type == RLAB_DB_REAL ? v->r : (double)v->i);
            fputc('\n', f);
        }
    } else {
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
        for (int i = 0; i < m->nrow; i++) {
            fprintf(f, "%s\n  {\"step\": ", i ? "," : "");
            const rlab_db_value *c0 = rlab_db_result_cell(m, i, 0);
            if (c0->type == RLAB_DB_INT)
                fprintf(f, "%lld", (long long)c0->i);
            else
                fputs("null", f);
            static const char *const keys[] = {"split", "name", "protocol"};
            for (int c = 1; c <= 3; c++) {
                const rlab_db_value *v = rlab_db_result_cell(m, i, c);
                fprintf(f, ", \"%s\": ", keys[c - 1]);
                if (v->type == RLAB_DB_TEXT)
                    json_str(f, v->s);
                else
                    fputs("null", f);
            }
            const rlab_db_value *v = rlab_db_result_cell(m, i, 4);
            fputs(", \"value\": ", f);
            if (v->type == RLAB_DB_REAL || v->type == RLAB_DB_INT)
                json_num(f, v->type == RLAB_DB_REAL ? v->r : (double)v->i);
            else
                fputs("null", f);
            fputc('}', f);
        }
        fputs("\n]}\n", f);
    }
    int bad = ferror(f);
    if (fclose(f) || bad)
        tui_log_addf(t, TUI_K_ERR, "error: export: write to %s failed", argv[3]);
    else
        tui_log_addf(t, TUI_K_OK, "exported run #%lld (%d metric rows) to %s", (long long)id,
                     m->nrow, argv[3]);
    rlab_db_result_free(run);
    rlab_db_result_free(m);
}

static void c_lua(tui *t, int argc, char **argv, const char *rest)
{
    (void)argc;
    (void)argv;
    if (!*rest) {
        tui_log_add(t, TUI_K_ERR, "error: usage: lua <code>   (or =expr)");
        return;
    }
    tui_task_submit(t, TUI_TASK_LUA, rlab_strdup(rest), rlab_strdup("=lua"), NULL, "lua");
}

static void c_run(tui *t, int argc, char **argv, const char *rest)
{
    (void)rest;
    if (argc < 2) {
        tui_log_add(t, TUI_K_ERR, "error: usage: run FILE.lua");
        return;
    }
    char title[160];
    snprintf(title, sizeof title, "run %s", argv[1]);
    tui_task_submit(t, TUI_TASK_LUA_FILE, rlab_strdup(argv[1]), NULL, NULL, title);
}

static void c_load(tui *t, int argc, char **argv, const char *rest)
{
    (void)rest;
    if (argc >= 3 && !strcmp(argv[1], "model")) {
        const char *path = argv[2], *name = NULL, *kind = NULL;
        for (int i = 3; i < argc; i++) {
            if (!strncmp(argv[i], "name=", 5))
                name = argv[i] + 5;
            else if (!strncmp(argv[i], "kind=", 5))
                kind = argv[i] + 5;
            else {
                tui_log_addf(t, TUI_K_ERR, "error: load model: unknown argument '%s'", argv[i]);
                return;
            }
        }
        char nb[64];
        if (!name) { /* file name without folder and extension */
            const char *b = strrchr(path, '/');
            b = b ? b + 1 : path;
            snprintf(nb, sizeof nb, "%s", b);
            char *dot = strchr(nb, '.');
            if (dot)
                *dot = 0;
            name = nb;
        }
        rlab_err err = {0};
        if (rlab_host_load_model(t->host, name, path, kind, &err))
            tui_log_addf(t, TUI_K_ERR, "error: load: %s", err.msg);
        else
            tui_log_addf(t, TUI_K_OK, "model '%s' loaded from %s", name, path);
        tui_side_refresh(t);
        return;
    }
    if (argc < 2) {
        tui_log_add(
            t, TUI_K_ERR,
            "error: usage: load PATH [name=NAME] [format=FORMAT] | load model PATH [name=NAME]");
        return;
    }
    char *name = NULL, *format = NULL;
    for (int i = 2; i < argc; i++) {
        if (!strncmp(argv[i], "name=", 5)) {
            rlab_free(name);
            name = rlab_strdup(argv[i] + 5);
        } else if (!strncmp(argv[i], "format=", 7)) {
            rlab_free(format);
            format = rlab_strdup(argv[i] + 7);
        } else {
            tui_log_addf(t, TUI_K_ERR, "error: load: unknown argument '%s' (name=, format=)",
                         argv[i]);
            rlab_free(name);
            rlab_free(format);
            return;
        }
    }
    char title[160];
    snprintf(title, sizeof title, "load %s", argv[1]);
    tui_task_submit(t, TUI_TASK_LOAD, rlab_strdup(argv[1]), name, format, title);
}

static const shell_cmd shell_cmds[] = {
    {.name = "help",
     .usage = "help [command]",
     .help = "List the commands, or explain one.",
     .run = c_help},
    {.name = "load",
     .usage = "load PATH [name=NAME] [format=FORMAT] | load model PATH [name=NAME]",
     .help = "Load a dataset (RecBole, MovieLens, SASRec, CSV...) or a saved model.",
     .run = c_load},
    {.name = "runs",
     .usage = "runs [sort=COLUMN]",
     .help = "Show the runs side by side in the table view.",
     .run = c_runs},
    {.name = "show",
     .usage = "show RUN",
     .help = "Details of one run: config, status, metrics, artifacts.",
     .run = c_show},
    {.name = "compare",
     .usage = "compare RUN RUN...",
     .help = "Runs side by side: config and latest metrics.",
     .run = c_compare},
    {.name = "chart",
     .usage = "chart METRIC [RUN...]",
     .help = "Chart a metric over steps for runs (default: the latest 3).",
     .run = c_chart},
    {.name = "sql",
     .usage = "sql QUERY",
     .help = "Query the session store (read-only); rows go to the table view.",
     .run = c_sql},
    {.name = "export",
     .usage = "export RUN csv|json FILE",
     .help = "Write a run's metrics (and record) to a file.",
     .run = c_export},
    {.name = "lua",
     .usage = "lua CODE",
     .help = "Run Lua in the session state (=expr prints a value).",
     .run = c_lua},
    {.name = "run",
     .usage = "run FILE.lua",
     .help = "Run a Lua script in the session state.",
     .run = c_run},
    {.name = "view",
     .usage = "view [log|table|chart|NAME [ARGS]]",
     .help = "Switch the main view (F2 log, F3 table, F4 chart, F5 plugin views); a card "
             "view takes its command's arguments (view agent 12).",
     .run = c_view},
    {.name = "sort",
     .usage = "sort COLUMN [asc|desc]",
     .help = "Sort the table view by a column (F6 next column, F7 order).",
     .run = c_sort},
    {.name = "clear", .usage = "clear", .help = "Clear the log.", .run = c_clear},
    {.name = "quit",
     .usage = "quit",
     .help = "Cancel running work and leave (also Ctrl-D).",
     .run = c_quit},
    {.name = "exit", .usage = "exit", .help = "Same as quit.", .run = c_quit},
    {0}};

static const shell_cmd *find_shell_cmd(const char *name)
{
    for (const shell_cmd *c = shell_cmds; c->name; c++)
        if (!strcmp(c->name, name))
            return c;
    return NULL;
}

const char *const *tui_shell_cmd_names(void)
{
    static const char *names[sizeof shell_cmds / sizeof shell_cmds[0]];
    int n = 0;
    for (const shell_cmd *c = shell_cmds; c->name; c++)
        names[n++] = c->name;
    names[n] = NULL;
    return names;
}

static void c_help(tui *t, int argc, char **argv, const char *rest)
{
    (void)rest;
    if (argc >= 2) {
        const shell_cmd *c = find_shell_cmd(argv[1]);
        if (c) {
            tui_log_addf(t, TUI_K_OUT, "usage: %s", c->usage);
            tui_log_addf(t, TUI_K_OUT, "  %s", c->help);
            return;
        }
        rlab_err err = {0};
        char full[160]; /* help train KIND */
        snprintf(full, sizeof full, "%s%s%s", argv[1], argc >= 3 ? " " : "",
                 argc >= 3 ? argv[2] : "");
        char *h = rlab_host_help_cmd(t->host, full, &err);
        if (!h) {
            tui_log_addf(t, TUI_K_ERR, "error: help: unknown command '%s'", full);
            return;
        }
        tui_log_add(t, TUI_K_OUT, h);
        rlab_free(h);
        return;
    }
    tui_log_add(t, TUI_K_HEAD, "shell commands:");
    for (const shell_cmd *c = shell_cmds; c->name; c++)
        tui_log_addf(t, TUI_K_OUT, "  %-34s %s", c->usage, c->help);
    tui_log_add(t, TUI_K_OUT,
                "  =EXPR                              Evaluate Lua and print the value.");
    char *h = rlab_host_help(t->host);
    if (h) {
        tui_log_add(t, TUI_K_HEAD, "host and plugin commands:");
        tui_log_add(t, TUI_K_OUT, h);
        rlab_free(h);
    }
    tui_log_add(t, TUI_K_INFO,
                "keys: F2 log  F3 table  F4 chart  F5 plugin views  PgUp/PgDn scroll  Tab "
                "completes  Ctrl-R history search  Ctrl-C cancels  Ctrl-D quits");
}

/* ---- host commands -------------------------------------------------------------------- */

static void run_host_line(tui *t, const char *line)
{
    rlab_err err = {0};
    rlab_args *a = NULL;
    if (rlab_host_parse(t->host, line, &a, &err)) {
        tui_log_addf(t, TUI_K_ERR, "error: %s", err.msg);
        return;
    }
    const rlab_cmd_ref *ref = rlab_args_cmd(a);
    if (ref && ref->cmd && (ref->cmd->flags & RLAB_CMD_JOB)) {
        char cmd[144];
        snprintf(cmd, sizeof cmd, "%s", ref->full);
        int id = 0;
        if (rlab_args_finish(a, &err)) {
            rlab_args_free(a);
            tui_log_addf(t, TUI_K_ERR, "error: %s", err.msg);
            return;
        }
        if (rlab_host_submit_args(t->host, a, &id, &err)) {
            tui_log_addf(t, TUI_K_ERR, "error: %s", err.msg);
            return;
        }
        tui_job_track(t, id, cmd);
        t->dirty |= TUI_D_STATUS | TUI_D_TITLE;
        return;
    }
    /* a quick command: run now, on this thread */
    rlab_result *res = NULL;
    t->in_sync = 1;
    int rc = rlab_host_run_args(t->host, a, &res, &err);
    t->in_sync = 0;
    if (res) {
        for (int i = 0; i < res->nlines; i++)
            tui_log_add(t, TUI_K_OUT, res->lines[i]);
        for (int i = 0; i < res->nscalars; i++) {
            const rlab_cell *c = &res->scalars[i].value;
            char v[128];
            if (c->type == RLAB_CELL_INT)
                snprintf(v, sizeof v, "%lld", (long long)c->i);
            else if (c->type == RLAB_CELL_FLOAT)
                snprintf(v, sizeof v, "%.6g", c->f);
            else
                snprintf(v, sizeof v, "%s", c->s ? c->s : "");
            tui_log_addf(t, TUI_K_OUT, "%s = %s", res->scalars[i].name, v);
        }
        if (res->ntables > 0)
            tui_result_table(t, line, res->tables[res->ntables - 1]);
        rlab_result_free(res);
    }
    if (rc && rc != RLAB_ECANCELED)
        tui_log_addf(t, TUI_K_ERR, "error: %s", err.msg);
    else if (rc)
        tui_log_addf(t, TUI_K_WARN, "%s", err.msg);
    tui_side_refresh(t);
}

void tui_dispatch(tui *t, const char *line)
{
    while (*line == ' ' || *line == '\t')
        line++;
    if (!*line)
        return;
    tui_log_addf(t, TUI_K_CMD, "> %s", line);
    t->log.scroll = 0;
    if (line[0] == '=') {
        const char *e = line + 1;
        while (*e == ' ')
            e++;
        if (!*e) {
            tui_log_add(t, TUI_K_ERR, "error: usage: =EXPR");
            return;
        }
        size_t n = strlen(e) + 8;
        char *code = rlab_malloc(n);
        if (!code)
            return;
        snprintf(code, n, "return %s", e);
        tui_task_submit(t, TUI_TASK_LUA, code, rlab_strdup("=expr"), NULL, "lua =expr");
        return;
    }
    char buf[4096];
    char *argv[MAX_ARGS];
    int argc = split_words(line, buf, sizeof buf, argv, MAX_ARGS);
    if (argc <= 0) {
        if (argc < 0)
            tui_log_add(t, TUI_K_ERR, "error: unterminated quote");
        return;
    }
    const shell_cmd *c = find_shell_cmd(argv[0]);
    if (c) {
        c->run(t, argc, argv, skip_word(line));
        return;
    }
    run_host_line(t, line);
}

/* ---- completion ---------------------------------------------------------------------- */

typedef struct strv {
    char **v;
    int n, cap;
} strv;

static void sv_add(strv *s, const char *a, const char *b)
{
    if (s->n + 2 > s->cap) {
        int cap = s->cap ? s->cap * 2 : 32;
        char **nv = rlab_realloc(s->v, (size_t)cap * sizeof *nv);
        if (!nv)
            return;
        s->v = nv;
        s->cap = cap;
    }
    size_t la = strlen(a), lb = b ? strlen(b) : 0;
    char *x = rlab_malloc(la + lb + 1);
    if (!x)
        return;
    memcpy(x, a, la);
    if (lb)
        memcpy(x + la, b, lb);
    x[la + lb] = 0;
    s->v[s->n++] = x;
    s->v[s->n] = NULL;
}

static void sv_add_strv(strv *s, char **v, const char *prefix_filter)
{
    for (char **p = v; p && *p; p++)
        if (!prefix_filter || !strncmp(*p, prefix_filter, strlen(prefix_filter)))
            sv_add(s, *p, NULL);
}

/* Paths completing `val`, each prefixed with `pre` ("data=" or ""). */
static void sv_paths(strv *s, const char *pre, const char *val, const char *ext)
{
    char dir[1024], shown[1024];
    const char *slash = strrchr(val, '/');
    const char *base = slash ? slash + 1 : val;
    if (slash)
        snprintf(shown, sizeof shown, "%.*s", (int)(slash - val + 1), val);
    else
        shown[0] = 0;
    const char *home = getenv("HOME");
    if (shown[0] == '~' && shown[1] == '/' && home)
        snprintf(dir, sizeof dir, "%s%s", home, shown + 1);
    else
        snprintf(dir, sizeof dir, "%s", shown[0] ? shown : ".");
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d)) && n < 500) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (e->d_name[0] == '.' && base[0] != '.')
            continue;
        if (strncmp(e->d_name, base, strlen(base)))
            continue;
        char full[2100];
        snprintf(full, sizeof full, "%s/%s", dir, e->d_name);
        struct stat st;
        int isdir = stat(full, &st) == 0 && S_ISDIR(st.st_mode);
        if (!isdir && ext) {
            size_t l = strlen(e->d_name), el = strlen(ext);
            if (l < el || strcmp(e->d_name + l - el, ext))
                continue;
        }
        char cand[2200];
        snprintf(cand, sizeof cand, "%s%s%s%s", pre, shown, e->d_name, isdir ? "/" : "");
        sv_add(s, cand, NULL);
        n++;
    }
    closedir(d);
}

static void sv_runs(tui *t, strv *s, const char *word)
{
    for (int i = 0; i < t->side.nruns; i++) {
        char id[32];
        snprintf(id, sizeof id, "%lld", (long long)t->side.runs[i].id);
        if (!strncmp(id, word, strlen(word)))
            sv_add(s, id, NULL);
    }
}

static void sv_metrics(tui *t, strv *s, const char *word)
{
    if (t->db) {
        rlab_err err = {0};
        rlab_db_result *r = rlab_db_query_table(
            t->db, "SELECT DISTINCT name FROM metrics ORDER BY name LIMIT 200", NULL, 0, 0, &err);
        for (int i = 0; r && i < r->nrow; i++) {
            const rlab_db_value *v = rlab_db_result_cell(r, i, 0);
            if (v->type == RLAB_DB_TEXT && !strncmp(v->s, word, strlen(word)))
                sv_add(s, v->s, NULL);
        }
        rlab_db_result_free(r);
    }
    for (int i = 0; i < t->nseries; i++)
        if (!strncmp(t->series[i].metric, word, strlen(word)))
            sv_add(s, t->series[i].metric, NULL);
}

static void sv_words(strv *s, const char *word, const char *const *list)
{
    for (int i = 0; list[i]; i++)
        if (!strncmp(list[i], word, strlen(word)))
            sv_add(s, list[i], NULL);
}

char **tui_complete(tui *t, const char *line)
{
    strv s = {0};
    size_t len = strlen(line), ws = len;
    while (ws > 0 && line[ws - 1] != ' ' && line[ws - 1] != '\t')
        ws--;
    const char *word = line + ws;
    char buf[2048];
    char *argv[MAX_ARGS];
    char head[2048];
    snprintf(head, sizeof head, "%.*s", (int)ws, line);
    int argc = split_words(head, buf, sizeof buf, argv, MAX_ARGS);
    if (argc < 0)
        argc = 0;
    if (argc == 0) {
        if (word[0] == '=')
            return NULL;
        sv_words(&s, word, tui_shell_cmd_names());
        char **h = rlab_host_complete(t->host, line);
        sv_add_strv(&s, h, word);
        rlab_strv_free(h);
        return s.v;
    }
    const char *cmd = argv[0];
    int pos = argc; /* index of the word being completed */
    if (!strcmp(cmd, "help")) {
        if (pos == 1) {
            sv_words(&s, word, tui_shell_cmd_names());
            char **h = rlab_host_complete(t->host, word);
            sv_add_strv(&s, h, word);
            rlab_strv_free(h);
        } else if (pos == 2 && !strcmp(argv[1], "train")) { /* help train KIND */
            char kl[256];
            snprintf(kl, sizeof kl, "train %s", word);
            char **h = rlab_host_complete(t->host, kl);
            sv_add_strv(&s, h, word);
            rlab_strv_free(h);
        }
    } else if (!strcmp(cmd, "show") || !strcmp(cmd, "compare")) {
        if (!strcmp(cmd, "compare") || pos == 1)
            sv_runs(t, &s, word);
    } else if (!strcmp(cmd, "chart")) {
        if (pos == 1)
            sv_metrics(t, &s, word);
        else
            sv_runs(t, &s, word);
    } else if (!strcmp(cmd, "export")) {
        static const char *const fmts[] = {"csv", "json", NULL};
        if (pos == 1)
            sv_runs(t, &s, word);
        else if (pos == 2)
            sv_words(&s, word, fmts);
        else if (pos == 3)
            sv_paths(&s, "", word, NULL);
    } else if (!strcmp(cmd, "run")) {
        if (pos == 1)
            sv_paths(&s, "", word, ".lua");
    } else if (!strcmp(cmd, "load")) {
        static const char *const fmts[] = {"recbole", "ml-100k", "ml-1m", "sasrec",
                                           "seqline", "csv",     "tsv",   NULL};
        if (pos == 1) {
            if (!strncmp("model", word, strlen(word)))
                sv_add(&s, "model", NULL);
            sv_paths(&s, "", word, NULL);
        } else if (pos == 2 && !strcmp(argv[1], "model")) {
            sv_paths(&s, "", word, NULL);
        } else if (!strncmp(word, "format=", 7)) {
            for (int i = 0; fmts[i]; i++)
                if (!strncmp(fmts[i], word + 7, strlen(word + 7)))
                    sv_add(&s, "format=", fmts[i]);
        } else {
            static const char *const keys[] = {"name=", "format=", "kind=", NULL};
            sv_words(&s, word, keys);
        }
    } else if (!strcmp(cmd, "view")) {
        static const char *const views[] = {"log", "table", "chart", NULL};
        if (pos == 1) {
            sv_words(&s, word, views);
            for (int i = 0; i < t->npviews; i++)
                if (!strncmp(t->pviews[i].name, word, strlen(word)))
                    sv_add(&s, t->pviews[i].name, NULL);
        }
    } else if (!strcmp(cmd, "sort") || !strcmp(cmd, "runs")) {
        static const char *const ord[] = {"asc", "desc", NULL};
        if (!strcmp(cmd, "sort") && pos == 2)
            sv_words(&s, word, ord);
        else {
            const char *w = word;
            const char *pre = "";
            if (!strcmp(cmd, "runs")) {
                if (strncmp(word, "sort=", 5)) {
                    if (!strncmp("sort=", word, strlen(word)))
                        sv_add(&s, "sort=", NULL);
                    return s.v;
                }
                w = word + 5;
                pre = "sort=";
            }
            for (int i = 0; i < t->table.ncol; i++)
                if (!strncmp(t->table.cols[i], w, strlen(w)))
                    sv_add(&s, pre, t->table.cols[i]);
            if (t->table.ncol == 0)
                sv_metrics(t, &s, w);
        }
    } else if (!strcmp(cmd, "sql")) {
        static const char *const kw[] = {
            "SELECT",   "FROM",   "WHERE",     "GROUP",  "ORDER",     "BY",      "LIMIT",
            "JOIN",     "COUNT(", "AVG(",      "MAX(",   "MIN(",      "runs",    "metrics",
            "datasets", "models", "artifacts", "events", "dialogues", "history", NULL};
        sv_words(&s, word, kw);
    } else if (find_shell_cmd(cmd)) {
        /* lua, quit, clear...: nothing to complete */
    } else {
        /* a host command: paths for PATH arguments, the host's candidates otherwise */
        const rlab_cmd_ref *ref = rlab_host_find_cmd(t->host, cmd);
        const char *eq = strchr(word, '=');
        int done = 0;
        if (ref && ref->cmd && eq) {
            for (const rlab_arg *a = ref->cmd->args; a && a->name; a++) {
                if (strlen(a->name) == (size_t)(eq - word) &&
                    !strncmp(a->name, word, (size_t)(eq - word)) && a->type == RLAB_ARG_PATH) {
                    char pre[96];
                    snprintf(pre, sizeof pre, "%.*s", (int)(eq - word + 1), word);
                    sv_paths(&s, pre, eq + 1, NULL);
                    done = 1;
                }
            }
        }
        if (!done) {
            char **h = rlab_host_complete(t->host, line);
            sv_add_strv(&s, h, word);
            rlab_strv_free(h);
        }
    }
    return s.v;
}
