/*
 * ui/shell_cmds.c: the shell's command dispatcher, its own commands and completion.
 *
 * An entered line is, in order: `=expr` (Lua, values printed), one of the shell's own
 * commands below (a static table, tmux cmd_entry style: only what draws or uses the shell's
 * Lua state: help, chart, view, sort, lua, run, clear, quit), or a host command (core or
 * plugin: load, runs, show, compare, sql, export, train... parsed and checked by the host,
 * the same for Lua and -c). RLAB_CMD_JOB commands are submitted to the host's workers, the
 * others run right away; results go to the log and the table view (tui_show_result).
 * Errors become one line in the log. Lua chunks run on the shell's task thread (tui_task.c)
 * so Ctrl-C can interrupt them.
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

/* The shell's own commands: only what draws or drives the shell's Lua state (the work is
 * done by host commands, which Lua and batch reach too). */
typedef struct shell_cmd {
    const char *name;
    const char *usage;
    const char *help;
    const char *example;
    void (*run)(tui *t, int argc, char **argv, const char *rest);
} shell_cmd;

static const shell_cmd *find_shell_cmd(const char *name);
static void run_host_line(tui *t, const char *line);

static void c_help(tui *t, int argc, char **argv, const char *rest);
static void c_talk(tui *t, int argc, char **argv, const char *rest);

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
            tui_table_runs(t, NULL, NULL);
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

static void c_sort(tui *t, int argc, char **argv, const char *rest)
{
    (void)rest;
    if (argc < 2) {
        tui_log_add(t, TUI_K_ERR, "error: usage: sort <column> [asc|desc]");
        return;
    }
    if (t->table.ncol == 0)
        tui_table_runs(t, NULL, NULL);
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

/* The runs of a chart without runs=: the latest 3 with metric (split.name or name), and the
 * running job's live series. */
static int chart_default_runs(tui *t, const char *metric, int64_t *ids, int max)
{
    int n = 0;
    rlab_err err = {0};
    const char *dot = strchr(metric, '.');
    rlab_db_value p[2] = {
        {.type = RLAB_DB_TEXT, .s = metric, .n = strlen(metric)},
        {.type = RLAB_DB_TEXT, .s = dot ? dot + 1 : metric, .n = strlen(dot ? dot + 1 : metric)}};
    rlab_db_result *r =
        t->db ? rlab_db_query_table(t->db,
                                    "SELECT DISTINCT run_id FROM metrics WHERE name = ?1 OR (name "
                                    "= ?2 AND COALESCE(split, '') || '.' || name = ?1) ORDER BY "
                                    "run_id DESC LIMIT 3",
                                    p, 2, 0, &err)
              : NULL;
    for (int i = r ? r->nrow - 1 : -1; i >= 0 && n < max; i--) /* oldest first */
        ids[n++] = rlab_db_result_cell(r, i, 0)->i;
    rlab_db_result_free(r);
    tui_job *j = tui_running_job(t);
    if (j && tui_inner_job(t, j))
        j = tui_inner_job(t, j);
    if (j && n < max) {
        int64_t key = j->run_id > 0 ? j->run_id : -(int64_t)j->id;
        int have = 0;
        for (int i = 0; i < n; i++)
            have |= ids[i] == key;
        if (!have && tui_series_get(t, key, metric, 0))
            ids[n++] = key;
    }
    return n;
}

/* "#3 bprmf": the run's model (or its command). */
static void chart_run_label(tui *t, int64_t id, char *lab, size_t cap)
{
    char what[40] = "";
    if (id > 0 && t->db) {
        rlab_err err = {0};
        rlab_db_value p = {.type = RLAB_DB_INT, .i = id};
        rlab_db_result *r = rlab_db_query_table(
            t->db,
            "SELECT COALESCE(json_extract(config, '$.name'), model_kind, json_extract(config, "
            "'$.model')), name FROM runs WHERE id = ?1",
            &p, 1, 0, &err);
        if (r && r->nrow) {
            const rlab_db_value *m = rlab_db_result_cell(r, 0, 0),
                                *c = rlab_db_result_cell(r, 0, 1);
            if (m->type == RLAB_DB_TEXT) {
                const char *dot = strchr(m->s, '.');
                snprintf(what, sizeof what, "%s", dot ? dot + 1 : m->s);
            } else if (c->type == RLAB_DB_TEXT)
                snprintf(what, sizeof what, "%s", c->s);
        }
        rlab_db_result_free(r);
    }
    snprintf(lab, cap, "#%lld %.18s", (long long)(id > 0 ? id : -id), what);
}

/* chart METRIC[,METRIC...] [RUN...] [runs=3,4,5 | run=3] [file=out.svg title= width= height=]:
 * every (run, metric) as one series in the chart view; with file= (or title/width/height) the
 * host's chart command writes the picture too, from the same series in the store. */
static void c_chart(tui *t, int argc, char **argv, const char *rest)
{
    (void)rest;
    if (argc < 2) {
        if (t->chart.nkeys) {
            t->view = TUI_VIEW_CHART;
            t->dirty |= TUI_D_MAIN;
            return;
        }
        tui_log_add(t, TUI_K_ERR,
                    "error: usage: chart METRIC[,METRIC...] [runs=3,4,5] [file=out.svg]");
        return;
    }
    char metrics[6][48];
    int nm = 0;
    for (const char *p = argv[1]; *p;) {
        while (*p == ',')
            p++;
        size_t l = strcspn(p, ",");
        if (!l)
            break;
        if (nm == 6 || l >= sizeof metrics[0]) {
            tui_log_add(t, TUI_K_ERR, "error: chart: at most 6 metrics of up to 47 characters");
            return;
        }
        snprintf(metrics[nm++], sizeof metrics[0], "%.*s", (int)l, p);
        p += l;
    }
    int64_t ids[TUI_CHART_RUNS];
    int n = 0;
    const char *file = NULL;
    rlab_args *ha = rlab_args_new(t->host, "chart", NULL); /* for the host, when it draws too */
    rlab_err err = {0};
    int to_host = 0, runlist_given = 0;
    char runlist[256] = "";
    for (int i = 2; i < argc; i++) {
        const char *eq = strchr(argv[i], '=');
        if (eq && (!strncmp(argv[i], "runs=", 5) || !strncmp(argv[i], "run=", 4))) {
            runlist_given = 1;
            for (const char *p = eq + 1; *p;) {
                while (*p == ',' || *p == '#')
                    p++;
                if (!*p)
                    break;
                char one[32];
                size_t l = strcspn(p, ",");
                snprintf(one, sizeof one, "%.*s", (int)(l < 31 ? l : 31), p);
                p += l;
                if (n >= TUI_CHART_RUNS) {
                    tui_log_addf(t, TUI_K_ERR, "error: chart: at most %d runs", TUI_CHART_RUNS);
                    rlab_args_free(ha);
                    return;
                }
                if (parse_run(t, one, &ids[n])) {
                    rlab_args_free(ha);
                    return;
                }
                n++;
            }
        } else if (eq) {
            char key[32];
            snprintf(key, sizeof key, "%.*s", (int)(eq - argv[i] < 31 ? eq - argv[i] : 31),
                     argv[i]);
            if (!strcmp(key, "file"))
                file = eq + 1;
            if (!ha || rlab_args_set(ha, key, eq + 1, &err)) {
                tui_log_addf(t, TUI_K_ERR, "error: %s", ha ? err.msg : "chart: out of memory");
                rlab_args_free(ha);
                return;
            }
            to_host = 1;
        } else { /* chart valid.ndcg@10 6 7: runs as words */
            runlist_given = 1;
            if (n >= TUI_CHART_RUNS || parse_run(t, argv[i], &ids[n])) {
                rlab_args_free(ha);
                return;
            }
            n++;
        }
    }
    if (n == 0 && t->db) /* the latest runs that have the first metric; with several metrics
                            the one latest (the running job's when it reports it) */
        n = chart_default_runs(t, metrics[0], ids, TUI_CHART_RUNS);
    if (n > 1 && nm > 1 && !runlist_given) {
        ids[0] = ids[n - 1];
        n = 1;
    }
    if (n == 0) {
        tui_log_addf(t, TUI_K_ERR, "error: chart: no run has a metric '%s'", metrics[0]);
        rlab_args_free(ha);
        return;
    }
    tui_chart *ch = &t->chart;
    ch->follow = 0;
    snprintf(ch->metric, sizeof ch->metric, "%s", argv[1]);
    snprintf(ch->xlabel, sizeof ch->xlabel, "step");
    ch->nkeys = 0;
    int points = 0;
    for (int i = 0; i < n; i++) {
        char lab[40];
        chart_run_label(t, ids[i], lab, sizeof lab);
        size_t o = strlen(runlist);
        if (ids[i] > 0 && o + 24 < sizeof runlist)
            snprintf(runlist + o, sizeof runlist - o, "%s%lld", o ? "," : "", (long long)ids[i]);
        int any = 0;
        for (int m = 0; m < nm; m++) {
            int got = ids[i] > 0 ? tui_series_load(t, ids[i], metrics[m]) : 0;
            tui_series *s = tui_series_get(t, ids[i], metrics[m], 0);
            if ((!got && !s) || (s && s->n == 0)) {
                if (n == 1 && nm > 1)
                    tui_log_addf(t, TUI_K_WARN, "chart: run #%lld has no metric '%s'",
                                 (long long)(ids[i] > 0 ? ids[i] : -ids[i]), metrics[m]);
                continue;
            }
            if (ch->nkeys >= TUI_CHART_RUNS) {
                tui_log_addf(t, TUI_K_WARN, "chart: at most %d series; the rest left out",
                             TUI_CHART_RUNS);
                break;
            }
            points += s ? s->n : got;
            ch->keys[ch->nkeys] = ids[i];
            snprintf(ch->kmetric[ch->nkeys], sizeof ch->kmetric[0], "%.47s", metrics[m]);
            if (n == 1 && nm > 1) /* the header names the run, the legend the metrics */
                snprintf(ch->labels[ch->nkeys], sizeof ch->labels[0], "%.39s", metrics[m]);
            else
                snprintf(ch->labels[ch->nkeys], sizeof ch->labels[0], "%s", lab);
            ch->nkeys++;
            any = 1;
        }
        if (!any)
            tui_log_addf(t, TUI_K_WARN, "chart: run #%lld has no metric '%s'",
                         (long long)(ids[i] > 0 ? ids[i] : -ids[i]), argv[1]);
    }
    if (ch->nkeys == 0) {
        tui_log_addf(t, TUI_K_ERR, "error: chart: nothing to draw for '%s'", argv[1]);
        rlab_args_free(ha);
        return;
    }
    /* the x axis: epochs for training runs, rounds for simulations */
    if (t->db) {
        rlab_db_value p = {.type = RLAB_DB_INT, .i = ch->keys[0]};
        rlab_db_result *r =
            rlab_db_query_table(t->db, "SELECT name FROM runs WHERE id = ?1", &p, 1, 0, &err);
        if (r && r->nrow && rlab_db_result_cell(r, 0, 0)->type == RLAB_DB_TEXT) {
            const char *c = rlab_db_result_cell(r, 0, 0)->s;
            snprintf(ch->xlabel, sizeof ch->xlabel, "%s",
                     strstr(c, "train")       ? "epoch"
                     : strstr(c, "simulator") ? "round"
                                              : "step");
        }
        rlab_db_result_free(r);
    }
    if (n == 1 && nm > 1) {
        snprintf(ch->metric, sizeof ch->metric, "run #%lld",
                 (long long)(ids[0] > 0 ? ids[0] : -ids[0]));
        tui_log_addf(t, TUI_K_INFO, "chart %s: run #%lld, %d series, %d points", argv[1],
                     (long long)(ids[0] > 0 ? ids[0] : -ids[0]), ch->nkeys, points);
    } else
        tui_log_addf(t, TUI_K_INFO, "chart %s: %d series, %d points", argv[1], ch->nkeys, points);
    t->view = TUI_VIEW_CHART;
    t->dirty |= TUI_D_MAIN | TUI_D_STATUS;
    if (!to_host) {
        rlab_args_free(ha);
        return;
    }
    /* the picture: the host's chart command on the same runs (the store's series) */
    rlab_result *res = NULL;
    if (rlab_args_set(ha, "metrics", argv[1], &err) ||
        (runlist[0] && rlab_args_set(ha, "runs", runlist, &err))) {
        rlab_args_free(ha);
        tui_log_addf(t, TUI_K_ERR, "error: %s", err.msg);
        return;
    }
    t->in_sync = 1;
    int rc = rlab_host_run_args(t->host, ha, &res, &err);
    t->in_sync = 0;
    if (rc)
        tui_log_addf(t, TUI_K_ERR, "error: %s", err.msg);
    else if (file)
        tui_log_addf(t, TUI_K_OK, "chart written to %s (%d series)", file, ch->nkeys);
    rlab_result_free(res);
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

static const char *view_cell(const void *ud, int64_t r, int c, char *buf, size_t cap)
{
    (void)buf;
    (void)cap;
    const tui_table *tb = ud;
    return tb->cells[r * tb->ncol + c];
}

/* export view file=F: the table view as shown (its rows in their sorted order, every column,
 * also those scrolled out of sight) as CSV, through the host's CSV writer. Any other export
 * is the host's command. */
static void export_view(tui *t, int argc, char **argv)
{
    const char *file = NULL;
    for (int i = 2; i < argc; i++) {
        if (!strncmp(argv[i], "file=", 5))
            file = argv[i] + 5;
        else {
            tui_log_addf(t, TUI_K_ERR,
                         "error: export view: unknown argument '%s' (usage: export "
                         "view file=F.csv)",
                         argv[i]);
            return;
        }
    }
    if (!file || !*file) {
        tui_log_add(t, TUI_K_ERR, "error: export view: file= expected (export view file=F.csv)");
        return;
    }
    const tui_table *tb = &t->table;
    if (tb->ncol == 0) {
        tui_log_add(t, TUI_K_ERR, "error: export view: the table view is empty (try `runs`)");
        return;
    }
    rlab_err err = {0};
    const char *box = rlab_host_sandbox(t->host);
    if (box && rlab_path_inside(box, file, &err) != RLAB_OK) {
        tui_log_addf(t, TUI_K_ERR, "error: export view: bad argument 'file' (sandbox: %s)",
                     err.msg);
        return;
    }
    if (rlab_write_csv(file, tb->ncol, (const char *const *)tb->cols, tb->nrow, view_cell, tb,
                       &err)) {
        tui_log_addf(t, TUI_K_ERR, "error: export view: %s", err.msg);
        return;
    }
    tui_log_addf(t, TUI_K_OK, "exported the table view '%s' (%d rows, %d columns) to %s", tb->title,
                 tb->nrow, tb->ncol, file);
}

/* run FILE.lua [ARGS...]: the host's lua.run as a job (a fresh Lua state, as `reclab run`
 * in batch), so the shell stays free, `jobs` lists it, and Ctrl-C or `cancel N` stop it and
 * the commands it called. */
static void c_run(tui *t, int argc, char **argv, const char *rest)
{
    (void)rest;
    if (argc < 2) {
        tui_log_add(t, TUI_K_ERR, "error: usage: run FILE.lua [ARGS...]");
        return;
    }
    rlab_err err = {0};
    char words[2048] = "", cmd[144];
    size_t o = 0;
    for (int i = 2; i < argc; i++) {
        int n = snprintf(words + o, sizeof words - o, "%s%s", i > 2 ? " " : "", argv[i]);
        if (n < 0 || (size_t)n >= sizeof words - o) {
            tui_log_add(t, TUI_K_ERR, "error: run: the arguments are too long");
            return;
        }
        o += (size_t)n;
    }
    rlab_args *a = rlab_args_new(t->host, "lua.run", &err);
    if (!a || rlab_args_set(a, "file", argv[1], &err) ||
        (o && rlab_args_set(a, "args", words, &err))) {
        rlab_args_free(a);
        tui_log_addf(t, TUI_K_ERR, "error: run: %s", err.msg);
        return;
    }
    int id = 0;
    if (rlab_host_submit_args(t->host, a, &id, &err)) {
        tui_log_addf(t, TUI_K_ERR, "error: %s", err.msg);
        return;
    }
    const char *base = strrchr(argv[1], '/'); /* the log and the status line: short */
    snprintf(cmd, sizeof cmd, "lua.run %.60s%s%.40s", base ? base + 1 : argv[1], o ? " " : "",
             words);
    tui_job_track(t, id, cmd);
    t->dirty |= TUI_D_STATUS | TUI_D_TITLE;
}

static const shell_cmd shell_cmds[] = {
    {.name = "help",
     .usage = "help [COMMAND | reclab.NAME]",
     .help = "List the commands, or explain one: a host or plugin command (usage, arguments, "
             "examples), a shell command, or a Lua function (help reclab lists them).",
     .example = "help sql",
     .run = c_help},
    {.name = "chart",
     .usage = "chart METRIC[,METRIC...] [runs=3,4,5 | run=3 | RUN...] [file=F.svg] [title=T]",
     .help = "Chart metrics over steps (epochs, rounds) for runs: every (run, metric) is one "
             "series with its colour and marker, named in the legend; a metric of another "
             "magnitude (loss beside NDCG) reads on a right axis. METRIC is name or split.name "
             "(valid.ndcg@10, train.loss, sim.watches). Default runs: the latest 3 that have "
             "the first metric, and the running job's live series; with several metrics the "
             "one latest (the running job when it reports the first: reloop.stream's "
             "auc_frozen,auc_incremental,auc_memory,auc_meminc). file=F.svg also writes the "
             "chart as an SVG picture (the host's chart command: title=, width=, height=; from "
             "-c and Lua as reclab.chart{...}). F4 comes back to it.",
     .example = "chart valid.ndcg@10,train.loss run=3",
     .run = c_chart},
    {.name = "view",
     .usage = "view [log|table|chart|NAME [ARGS]]",
     .help = "Switch the main view (F2 log, F3 table, F4 chart, F5 plugin views); a card "
             "view takes its command's arguments; without arguments, list the views.",
     .example = "view agent 12",
     .run = c_view},
    {.name = "sort",
     .usage = "sort COLUMN [asc|desc]",
     .help = "Sort the table view by a column (F6 next column, F7 order); numbers largest "
             "first unless asked.",
     .example = "sort test.ndcg@10 desc",
     .run = c_sort},
    {.name = "lua",
     .usage = "lua CODE",
     .help = "Run Lua in the shell's session state (globals persist between lines; =EXPR "
             "prints a value). Ctrl-C interrupts it.",
     .example = "lua for _, d in ipairs(reclab.datasets.list()) do print(d.name) end",
     .run = c_lua},
    {.name = "run",
     .usage = "run FILE.lua [ARGS...]",
     .help = "Run a Lua script as a job (the host's lua.run: a fresh Lua state, as `reclab "
             "run FILE ARGS` in batch; arg[1..] and ... are ARGS). The shell stays free; `jobs` "
             "lists it, Ctrl-C or `cancel N` stop it and the commands it called. `lua "
             "dofile(\"FILE\")` runs one in the shell's own Lua state instead.",
     .example = "run lua/examples/compare_baselines.lua 4",
     .run = c_run},
    {.name = "talk",
     .usage = "talk COMMAND [ARGS...]",
     .help = "Talk mode: every line you type next continues COMMAND (a trailing key= takes "
             "the line as its quoted value), with the command as the prompt; /CMD runs a "
             "command meanwhile, an empty line or Ctrl-C returns to reclab>. crs.chat enters "
             "it by itself, so a chat is just typing.",
     .example = "talk crs.chat session=3 text=",
     .run = c_talk},
    {.name = "clear",
     .usage = "clear",
     .help = "Clear the log.",
     .example = "clear",
     .run = c_clear},
    {.name = "quit",
     .usage = "quit",
     .help = "Cancel running work and leave (also Ctrl-D).",
     .example = "quit",
     .run = c_quit},
    {.name = "exit", .usage = "exit", .help = "Same as quit.", .example = "exit", .run = c_quit},
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
            tui_log_addf(t, TUI_K_OUT, "%s", c->help);
            tui_log_add(t, TUI_K_OUT,
                        "A shell command (the shell only: it draws or uses the "
                        "shell's Lua state).");
            tui_log_add(t, TUI_K_OUT, "examples:");
            tui_log_addf(t, TUI_K_OUT, "  %s", c->example);
            return;
        }
        /* a host or plugin command, `help train KIND`, or a Lua function (reclab.NAME) */
        rlab_err err = {0};
        char full[160];
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
    char *h = rlab_host_help(t->host);
    if (h) {
        tui_log_add(t, TUI_K_OUT, h);
        rlab_free(h);
    }
    tui_log_add(t, TUI_K_HEAD, "shell commands (the shell only):");
    for (const shell_cmd *c = shell_cmds; c->name; c++)
        tui_log_addf(t, TUI_K_OUT, "  %-34s %s", c->usage, c->help);
    tui_log_add(t, TUI_K_OUT,
                "  =EXPR                              Evaluate Lua and print the value.");
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
    char cmd[144];
    snprintf(cmd, sizeof cmd, "%s", ref ? ref->full : "");
    rlab_result *res = NULL;
    t->in_sync = 1;
    int rc = rlab_host_run_args(t->host, a, &res, &err);
    t->in_sync = 0;
    tui_show_result(t, line, cmd, res, 0);
    rlab_result_free(res);
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
    if (line[0] == '/' && line[1] && line[1] != ' ') /* talk mode's /COMMAND habit: a command */
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
    if (argc >= 2 && !strcmp(argv[0], "export") && !strcmp(argv[1], "view")) {
        export_view(t, argc, argv); /* what draws is the shell's: the view's table */
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
            t->db,
            "SELECT name FROM metrics UNION SELECT split || '.' || name FROM metrics WHERE "
            "split IS NOT NULL AND split <> '' ORDER BY 1 LIMIT 400",
            NULL, 0, 0, &err);
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

/* Columns of the runs table completing word, each prefixed with pre ("sort=", "cols=a,"). */
static void sv_run_cols(tui *t, strv *s, const char *pre, const char *word)
{
    static const char *const base[] = {"run", "status", "model", "command", "dataset", "secs"};
    for (int i = 0; i < 6; i++)
        if (!strncmp(base[i], word, strlen(word)))
            sv_add(s, pre, base[i]);
    if (!t->db)
        return;
    rlab_err err = {0};
    rlab_db_result *r = rlab_db_query_table(
        t->db,
        "SELECT DISTINCT CASE WHEN split IS NULL OR split = '' THEN name ELSE split || '.' || "
        "name END AS m FROM metrics ORDER BY m LIMIT 400",
        NULL, 0, 0, &err);
    for (int i = 0; r && i < r->nrow; i++) {
        const rlab_db_value *v = rlab_db_result_cell(r, i, 0);
        if (v->type == RLAB_DB_TEXT && !strncmp(v->s, word, strlen(word)))
            sv_add(s, pre, v->s);
    }
    rlab_db_result_free(r);
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
        if (pos == 1) { /* a comma list of metrics: the last item completes */
            const char *item = strrchr(word, ',');
            if (item) {
                strv m = {0};
                sv_metrics(t, &m, item + 1);
                for (int i = 0; i < m.n; i++) {
                    char pre[256];
                    snprintf(pre, sizeof pre, "%.*s", (int)(item + 1 - word), word);
                    sv_add(&s, pre, m.v[i]);
                }
                rlab_strv_free(m.v);
            } else
                sv_metrics(t, &s, word);
        } else if (!strncmp(word, "file=", 5)) {
            sv_paths(&s, "file=", word + 5, ".svg");
        } else if (!strncmp(word, "runs=", 5) || !strncmp(word, "run=", 4)) {
            const char *item = strrchr(word, ',');
            const char *eq = strchr(word, '=');
            item = item ? item + 1 : eq + 1;
            strv r = {0};
            sv_runs(t, &r, item);
            char pre[256];
            snprintf(pre, sizeof pre, "%.*s", (int)(item - word), word);
            for (int i = 0; i < r.n; i++)
                sv_add(&s, pre, r.v[i]);
            rlab_strv_free(r.v);
        } else {
            static const char *const keys[] = {
                "runs=", "run=", "file=", "title=", "width=", "height=", NULL};
            sv_words(&s, word, keys);
            sv_runs(t, &s, word);
        }
    } else if (!strcmp(cmd, "export") && pos == 1 && !strchr(word, '=') &&
               !strncmp("view", word, strlen(word))) {
        sv_add(&s, "view", NULL); /* export view file=F: the table on screen */
        char **h = rlab_host_complete(t->host, line);
        sv_add_strv(&s, h, word);
        rlab_strv_free(h);
    } else if (!strcmp(cmd, "export") && !strncmp(word, "run=", 4)) {
        strv r = {0};
        sv_runs(t, &r, word + 4);
        for (int i = 0; i < r.n; i++)
            sv_add(&s, "run=", r.v[i]);
        rlab_strv_free(r.v);
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
            static const char *const keys[] = {"name=", "format=", "kind=", "model=", NULL};
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
    } else if (!strcmp(cmd, "sort")) {
        static const char *const ord[] = {"asc", "desc", NULL};
        if (pos == 2)
            sv_words(&s, word, ord);
        else {
            for (int i = 0; i < t->table.ncol; i++)
                if (!strncmp(t->table.cols[i], word, strlen(word)))
                    sv_add(&s, t->table.cols[i], NULL);
            if (t->table.ncol == 0)
                sv_run_cols(t, &s, "", word);
        }
    } else if (!strcmp(cmd, "runs")) {
        /* sort= and cols= name the columns of the runs table: run, status, ... and every
         * "split.name" metric in the store; cols= is a comma list (the last item completes) */
        const char *eq = strchr(word, '=');
        if (eq && (!strncmp(word, "sort=", 5) || !strncmp(word, "cols=", 5))) {
            const char *item = strrchr(word, ',');
            item = item ? item + 1 : eq + 1;
            char pre[256];
            snprintf(pre, sizeof pre, "%.*s", (int)(item - word), word);
            sv_run_cols(t, &s, pre, item);
        } else {
            char **h = rlab_host_complete(t->host, line);
            sv_add_strv(&s, h, word);
            rlab_strv_free(h);
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

/* ---- talk mode -------------------------------------------------------------------------- */

void tui_talk_line(tui *t, const char *line)
{
    while (*line == ' ' || *line == '\t')
        line++;
    if (!*line) { /* an empty line: back to commands */
        tui_talk_set(t, NULL);
        return;
    }
    if (line[0] == '/') { /* /COMMAND: a command, talk mode stays */
        tui_dispatch(t, line + 1);
        return;
    }
    size_t cl = strcspn(t->talk, " \t"); /* the full form typed again: a command */
    if (!strncmp(line, t->talk, cl) && (line[cl] == ' ' || line[cl] == '\t')) {
        tui_dispatch(t, line);
        return;
    }
    size_t pl = strlen(t->talk), ll = strlen(line);
    char *cmd = rlab_malloc(pl + 2 * ll + 4);
    if (!cmd)
        return;
    char *o = cmd + pl;
    memcpy(cmd, t->talk, pl);
    if (pl > 0 && t->talk[pl - 1] == '=') { /* a quoted value: the words stay text */
        *o++ = '"';
        for (const char *p = line; *p; p++) {
            if (*p == '"' || *p == '\\')
                *o++ = '\\';
            *o++ = *p;
        }
        *o++ = '"';
    } else {
        *o++ = ' ';
        memcpy(o, line, ll);
        o += ll;
    }
    *o = '\0';
    if (t->db) { /* the store's history holds the command that ran */
        rlab_err err = {0};
        rlab_db_history_add(t->db, cmd, &err);
    }
    t->log.scroll = 0;
    run_host_line(t, cmd);
    rlab_free(cmd);
}

static void c_talk(tui *t, int argc, char **argv, const char *rest)
{
    (void)argv;
    if (argc < 2) {
        if (t->talk[0])
            tui_log_addf(t, TUI_K_OUT, "talking to `%s` (an empty line returns)", t->talk);
        else
            tui_log_add(t, TUI_K_OUT,
                        "not talking: `talk COMMAND...` (e.g. talk crs.chat session=3 text=); "
                        "crs.chat starts it by itself");
        return;
    }
    tui_talk_set(t, rest);
}
