/*
 * ui/tui_model.c: the shell's model. The event queue (the only part other threads touch),
 * the log ring, the job table fed by host events, metric series for the chart, the table
 * behind the table view, and the sidebar lists read from the host and the store.
 */
#include "tui.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- the event queue (any thread) ----------------------------------------------------- */

int tui_model_init(tui *t, rlab_err *err)
{
    if (pthread_mutex_init(&t->mu, NULL))
        return rlab_errf(err, RLAB_EIO, "mutex init failed");
    if (pipe(t->wake))
        return rlab_errf(err, RLAB_EIO, "pipe: %s", strerror(errno));
    for (int i = 0; i < 2; i++) {
        fcntl(t->wake[i], F_SETFL, fcntl(t->wake[i], F_GETFL) | O_NONBLOCK);
        fcntl(t->wake[i], F_SETFD, FD_CLOEXEC);
    }
    t->log.lines = rlab_calloc(TUI_LOG_CAP, sizeof *t->log.lines);
    if (!t->log.lines)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    t->table.sort_col = -1;
    t->chart.follow = 1;
    return RLAB_OK;
}

void tui_ev_free(tui_ev *e)
{
    if (!e)
        return;
    rlab_free(e->cmd);
    rlab_free(e->label);
    rlab_free(e->text);
    rlab_free(e->mnames);
    rlab_free(e->mvals);
    rlab_free(e);
}

void tui_model_free(tui *t)
{
    tui_ev *e = t->q_head;
    while (e) {
        tui_ev *n = e->next;
        tui_ev_free(e);
        e = n;
    }
    t->q_head = t->q_tail = NULL;
    if (t->log.lines) {
        for (int i = 0; i < TUI_LOG_CAP; i++)
            rlab_free(t->log.lines[i].text);
        rlab_free(t->log.lines);
        t->log.lines = NULL;
    }
    for (int i = 0; i < t->nseries; i++) {
        rlab_free(t->series[i].x);
        rlab_free(t->series[i].y);
    }
    t->nseries = 0;
    tui_table_clear(&t->table);
    tui_comp_clear(t);
    for (int i = 0; i < 2; i++)
        if (t->wake[i] > 0)
            close(t->wake[i]);
    pthread_mutex_destroy(&t->mu);
}

void tui_post(tui *t, tui_ev *ev)
{
    if (!ev)
        return;
    ev->next = NULL;
    pthread_mutex_lock(&t->mu);
    if (t->q_tail)
        t->q_tail->next = ev;
    else
        t->q_head = ev;
    t->q_tail = ev;
    pthread_mutex_unlock(&t->mu);
    char b = 1;
    ssize_t r = write(t->wake[1], &b, 1); /* full pipe: a wake-up is pending anyway */
    (void)r;
}

void tui_post_line(tui *t, int kind, const char *text)
{
    tui_ev *e = rlab_calloc(1, sizeof *e);
    if (!e)
        return;
    e->type = TUI_EV_LINE;
    e->kind = kind;
    e->text = rlab_strdup(text ? text : "");
    tui_post(t, e);
}

void tui_host_event(const rlab_event *ev, void *ud)
{
    tui *t = ud;
    /* a command the UI thread runs itself reports through its result instead */
    if (pthread_equal(pthread_self(), t->ui_thread) && t->in_sync)
        return;
    tui_ev *e = rlab_calloc(1, sizeof *e);
    if (!e)
        return;
    e->type = (int)ev->type;
    e->job_id = ev->job_id;
    e->run_id = ev->run_id;
    e->step = ev->step;
    e->total = ev->total;
    e->status = ev->status;
    e->elapsed = ev->elapsed;
    e->outer_job = ev->outer_job;
    e->cmd = ev->cmd ? rlab_strdup(ev->cmd) : NULL;
    e->label = ev->label ? rlab_strdup(ev->label) : NULL;
    e->text = ev->text ? rlab_strdup(ev->text) : NULL;
    if (ev->type == RLAB_EV_PROGRESS && ev->nmetrics > 0 && ev->metrics) {
        e->mnames = rlab_calloc((size_t)ev->nmetrics, sizeof *e->mnames);
        e->mvals = rlab_calloc((size_t)ev->nmetrics, sizeof *e->mvals);
        if (e->mnames && e->mvals) {
            e->nmetrics = ev->nmetrics;
            for (int i = 0; i < ev->nmetrics; i++) {
                snprintf(e->mnames[i], sizeof e->mnames[i], "%s",
                         ev->metrics[i].name ? ev->metrics[i].name : "?");
                e->mvals[i] = ev->metrics[i].value;
            }
        }
    }
    tui_post(t, e);
}

void tui_log_sink(int level, const char *msg, void *ud)
{
    tui *t = ud;
    int kind = level >= RLAB_LOG_ERROR  ? TUI_K_ERR
               : level >= RLAB_LOG_WARN ? TUI_K_WARN
                                        : TUI_K_INFO;
    tui_post_line(t, kind, msg);
}

/* ---- the log -------------------------------------------------------------------------- */

static void log_push(tui *t, int kind, char *text)
{
    tui_log *l = &t->log;
    int idx;
    if (l->n < TUI_LOG_CAP) {
        idx = (l->head + l->n) % TUI_LOG_CAP;
        l->n++;
    } else {
        idx = l->head;
        rlab_free(l->lines[idx].text);
        l->head = (l->head + 1) % TUI_LOG_CAP;
    }
    l->lines[idx].wall = rlab_wall_time();
    l->lines[idx].kind = kind;
    l->lines[idx].text = text;
    if (l->scroll > 0)
        l->scroll++; /* keep the scrolled-back position on the same lines */
    t->dirty |= TUI_D_MAIN;
}

void tui_log_add(tui *t, int kind, const char *text)
{
    if (!text)
        return;
    const char *p = text;
    for (;;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        char *s = tui_sanitize(p, n);
        if (s)
            log_push(t, kind, s);
        if (!nl)
            break;
        p = nl + 1;
        if (!*p)
            break;
    }
    if ((kind & ~TUI_K_ROW) == TUI_K_ERR)
        snprintf(t->last_error, sizeof t->last_error, "%s", text);
}

void tui_log_addf(tui *t, int kind, const char *fmt, ...)
{
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    tui_log_add(t, kind, buf);
}

/* ---- jobs ----------------------------------------------------------------------------- */

tui_job *tui_job_find(tui *t, int id)
{
    for (int i = 0; i < t->njobs; i++)
        if (t->jobs[i].id == id)
            return &t->jobs[i];
    return NULL;
}

static tui_job *job_add(tui *t, int id, const char *cmd)
{
    tui_job *j = tui_job_find(t, id);
    if (j)
        return j;
    if (t->njobs >= TUI_MAX_JOBS)
        return NULL;
    j = &t->jobs[t->njobs++];
    memset(j, 0, sizeof *j);
    j->id = id;
    j->state = RLAB_JOB_QUEUED;
    j->queued_at = rlab_now();
    snprintf(j->cmd, sizeof j->cmd, "%s", cmd ? cmd : "?");
    return j;
}

void tui_job_track(tui *t, int id, const char *cmd)
{
    tui_job *j = job_add(t, id, cmd);
    if (j)
        j->mine = 1;
}

static void job_remove(tui *t, int id)
{
    for (int i = 0; i < t->njobs; i++)
        if (t->jobs[i].id == id) {
            memmove(&t->jobs[i], &t->jobs[i + 1], (size_t)(t->njobs - i - 1) * sizeof t->jobs[0]);
            t->njobs--;
            return;
        }
}

/* The running jobs the status line names are the outermost ones: a command a script
 * called is shown inside its script's job (tui_inner_job), never instead of it. */
tui_job *tui_running_job(tui *t)
{
    for (int i = 0; i < t->njobs; i++)
        if (t->jobs[i].state == RLAB_JOB_RUNNING && !t->jobs[i].outer)
            return &t->jobs[i];
    return NULL;
}

tui_job *tui_newest_job(tui *t)
{
    for (int i = t->njobs - 1; i >= 0; i--)
        if (t->jobs[i].state == RLAB_JOB_RUNNING) {
            tui_job *j = &t->jobs[i];
            for (int hops = 0; j->outer && hops < TUI_MAX_JOBS; hops++) {
                tui_job *o = tui_job_find(t, j->outer);
                if (!o)
                    break;
                j = o;
            }
            return j;
        }
    return NULL;
}

tui_job *tui_inner_job(tui *t, const tui_job *j)
{
    for (int i = t->njobs - 1; j && i >= 0; i--)
        if (t->jobs[i].outer == j->id && t->jobs[i].state == RLAB_JOB_RUNNING)
            return &t->jobs[i];
    return NULL;
}

int tui_queued_jobs(tui *t)
{
    int n = 0;
    for (int i = 0; i < t->njobs; i++)
        n += t->jobs[i].state == RLAB_JOB_QUEUED;
    return n;
}

/* ---- series --------------------------------------------------------------------------- */

tui_series *tui_series_get(tui *t, int64_t key, const char *metric, int create)
{
    for (int i = 0; i < t->nseries; i++)
        if (t->series[i].key == key && !strcmp(t->series[i].metric, metric))
            return &t->series[i];
    if (!create)
        return NULL;
    if (t->nseries >= TUI_MAX_SERIES) { /* drop the oldest */
        rlab_free(t->series[0].x);
        rlab_free(t->series[0].y);
        memmove(&t->series[0], &t->series[1], (size_t)(t->nseries - 1) * sizeof t->series[0]);
        t->nseries--;
    }
    tui_series *s = &t->series[t->nseries++];
    memset(s, 0, sizeof *s);
    s->key = key;
    snprintf(s->metric, sizeof s->metric, "%s", metric);
    return s;
}

static int series_push(tui_series *s, double x, double y)
{
    if (s->n == s->cap) {
        int cap = s->cap ? s->cap * 2 : 64;
        double *nx = rlab_realloc(s->x, (size_t)cap * sizeof *nx);
        if (!nx)
            return RLAB_ENOMEM;
        s->x = nx;
        double *ny = rlab_realloc(s->y, (size_t)cap * sizeof *ny);
        if (!ny)
            return RLAB_ENOMEM;
        s->y = ny;
        s->cap = cap;
    }
    /* a repeated step replaces the point (progress may report a step twice) */
    if (s->n > 0 && !islessgreater(s->x[s->n - 1], x)) {
        s->y[s->n - 1] = y;
        return RLAB_OK;
    }
    s->x[s->n] = x;
    s->y[s->n] = y;
    s->n++;
    return RLAB_OK;
}

int tui_series_load(tui *t, int64_t run, const char *metric)
{
    if (!t->db || run <= 0)
        return 0;
    char name[48], split[48] = "";
    snprintf(name, sizeof name, "%s", metric);
    /* "valid.ndcg@10", "sim.watches" (shell) or "valid ndcg@10" (progress reports) name a
     * split when the run has it; else the whole text is the name */
    const char *dot = strpbrk(metric, ". ");
    if (dot && dot > metric && dot - metric < (ptrdiff_t)sizeof split) {
        rlab_err e0 = {0};
        rlab_db_stmt *q = rlab_db_prepare(t->db,
                                          "SELECT 1 FROM metrics WHERE run_id = :run AND name = "
                                          ":name AND split = :split LIMIT 1",
                                          &e0);
        char sp[48];
        snprintf(sp, sizeof sp, "%.*s", (int)(dot - metric), metric);
        int have = 0;
        if (q) {
            rlab_db_bind_int(q, ":run", run, &e0);
            rlab_db_bind_text(q, ":name", dot + 1, &e0);
            rlab_db_bind_text(q, ":split", sp, &e0);
            have = rlab_db_step(q, &e0) == RLAB_DB_ROW;
            rlab_db_finalize(q);
        }
        if (have) {
            snprintf(split, sizeof split, "%s", sp);
            snprintf(name, sizeof name, "%s", dot + 1);
        }
    }
    rlab_err err = {0};
    rlab_db_stmt *st = NULL;
    if (!split[0]) { /* pick one split: valid, test, train, other */
        st = rlab_db_prepare(t->db,
                             "SELECT COALESCE(split, '') FROM metrics WHERE run_id = :run AND "
                             "name = :name GROUP BY split ORDER BY CASE split WHEN 'valid' THEN 0 "
                             "WHEN 'test' THEN 1 WHEN 'train' THEN 2 ELSE 3 END LIMIT 1",
                             &err);
        if (!st)
            return 0;
        rlab_db_bind_int(st, ":run", run, &err);
        rlab_db_bind_text(st, ":name", name, &err);
        int found = 0;
        if (rlab_db_step(st, &err) == RLAB_DB_ROW) {
            const char *s = rlab_db_column_text(st, 0);
            snprintf(split, sizeof split, "%s", s ? s : "");
            found = 1;
        }
        rlab_db_finalize(st);
        if (!found)
            return 0;
    }
    st = rlab_db_prepare(t->db,
                         "SELECT step, value FROM metrics WHERE run_id = :run AND name = :name "
                         "AND COALESCE(split, '') = :split AND value IS NOT NULL "
                         "ORDER BY step, id",
                         &err);
    if (!st)
        return 0;
    rlab_db_bind_int(st, ":run", run, &err);
    rlab_db_bind_text(st, ":name", name, &err);
    rlab_db_bind_text(st, ":split", split, &err);
    tui_series *s = NULL;
    int n = 0;
    while (rlab_db_step(st, &err) == RLAB_DB_ROW) {
        if (!s) {
            s = tui_series_get(t, run, metric, 1);
            if (!s)
                break;
            s->n = 0;
            s->live = 0;
        }
        series_push(s, (double)rlab_db_column_int(st, 0), rlab_db_column_double(st, 1));
        n++;
    }
    rlab_db_finalize(st);
    return n;
}

/* The metric a chart follows by default: rankings first, then loss. */
static int metric_rank(const char *m)
{
    static const char *const pref[] = {"ndcg", "recall", "hr", "mrr", "auc", "loss", NULL};
    for (int i = 0; pref[i]; i++)
        if (strstr(m, pref[i]))
            return i;
    return 10;
}

static void chart_follow(tui *t, tui_job *j, const tui_ev *e)
{
    int64_t key = j->run_id > 0 ? j->run_id : -(int64_t)j->id;
    int best = -1;
    for (int i = 0; i < e->nmetrics; i++)
        if (best < 0 || metric_rank(e->mnames[i]) < metric_rank(e->mnames[best]))
            best = i;
    if (best < 0)
        return;
    int same_key = t->chart.nkeys == 1 && t->chart.keys[0] == key;
    /* same run: switch only to a better metric (progress reports may carry a ranking metric
     * every few epochs and the loss in between; flipping would make the chart flicker) */
    if (same_key && t->chart.metric[0] &&
        (!strcmp(t->chart.metric, e->mnames[best]) ||
         metric_rank(e->mnames[best]) >= metric_rank(t->chart.metric)))
        return;
    snprintf(t->chart.metric, sizeof t->chart.metric, "%s", e->mnames[best]);
    snprintf(t->chart.xlabel, sizeof t->chart.xlabel, "%s",
             e->label && *e->label ? e->label : "step");
    t->chart.nkeys = 1;
    t->chart.keys[0] = key;
    t->chart.kmetric[0][0] = '\0';
    const char *c = strchr(j->cmd, '.');
    char lab[40];
    snprintf(lab, sizeof lab, "%.39s", c ? c + 1 : j->cmd);
    if (j->run_id > 0 && t->db) { /* the model trained, when the config names one */
        rlab_err err = {0};
        rlab_db_value p = {.type = RLAB_DB_INT, .i = j->run_id};
        rlab_db_result *r =
            rlab_db_query_table(t->db,
                                "SELECT COALESCE(json_extract(config, '$.name'), "
                                "json_extract(config, '$.model')) FROM runs WHERE id = ?1",
                                &p, 1, 0, &err);
        if (r && r->nrow && rlab_db_result_cell(r, 0, 0)->type == RLAB_DB_TEXT)
            snprintf(lab, sizeof lab, "%s", rlab_db_result_cell(r, 0, 0)->s);
        rlab_db_result_free(r);
    }
    snprintf(t->chart.labels[0], sizeof t->chart.labels[0], "#%lld %.18s",
             (long long)(j->run_id > 0 ? j->run_id : j->id), lab);
    if (t->view == TUI_VIEW_LOG)
        t->view = TUI_VIEW_CHART;
}

void tui_chart_refresh(tui *t)
{
    tui_chart *ch = &t->chart;
    if (!t->db || ch->nkeys == 0)
        return;
    if (ch->follow && ch->nkeys == 1 && ch->keys[0] > 0) {
        /* the store has every metric the run recorded; progress reports are rate-limited */
        rlab_err err = {0};
        rlab_db_value p = {.type = RLAB_DB_INT, .i = ch->keys[0]};
        rlab_db_result *r = rlab_db_query_table(
            t->db,
            "SELECT COALESCE(split, ''), name FROM metrics WHERE run_id = ?1 GROUP BY split, "
            "name ORDER BY CASE split WHEN 'valid' THEN 0 WHEN 'test' THEN 1 ELSE 2 END, name",
            &p, 1, 0, &err);
        char best[48] = "";
        for (int i = 0; r && i < r->nrow; i++) {
            const rlab_db_value *sp = rlab_db_result_cell(r, i, 0),
                                *nm = rlab_db_result_cell(r, i, 1);
            if (sp->type != RLAB_DB_TEXT || nm->type != RLAB_DB_TEXT)
                continue;
            char m[48];
            snprintf(m, sizeof m, "%.20s%s%.26s", sp->s, *sp->s ? " " : "", nm->s);
            if (!best[0] || metric_rank(m) < metric_rank(best))
                snprintf(best, sizeof best, "%s", m);
        }
        rlab_db_result_free(r);
        if (best[0] && (!ch->metric[0] || metric_rank(best) < metric_rank(ch->metric)))
            snprintf(ch->metric, sizeof ch->metric, "%s", best);
    }
    for (int k = 0; k < ch->nkeys; k++)
        if (ch->keys[k] > 0)
            tui_series_load(t, ch->keys[k], tui_chart_metric(ch, k));
    t->dirty |= TUI_D_MAIN;
}

/* ---- applying events (UI thread) ---------------------------------------------------- */

/* The table name a result table is shown under: "sql (3 rows)" when the command is named like
 * its table, else "recommend model=m user=u17: items (10 rows)". */
static void table_title(char *buf, size_t size, const char *what, const rlab_table *rt)
{
    const char *name = rt->name && *rt->name ? rt->name : "result";
    size_t w = strcspn(what, " ");
    if (strlen(name) == w && strncmp(what, name, w) == 0)
        snprintf(buf, size, "%.100s (%lld rows)", what, (long long)rt->nrows);
    else
        snprintf(buf, size, "%.80s: %.60s (%lld rows)", what, name, (long long)rt->nrows);
}

void tui_table_fill(tui *t, const char *what, const rlab_table *rt)
{
    tui_table *tb = &t->table;
    tui_table_clear(tb);
    if (tui_table_set_cols(tb, rt->ncols, (const char *const *)rt->cols) == RLAB_OK) {
        char **row = rlab_calloc((size_t)(rt->ncols ? rt->ncols : 1), sizeof *row);
        char(*buf)[64] = rlab_calloc((size_t)(rt->ncols ? rt->ncols : 1), sizeof *buf);
        for (int64_t r = 0; row && buf && r < rt->nrows; r++) {
            for (int c = 0; c < rt->ncols; c++) {
                const rlab_cell *cell = &rt->cells[r * rt->ncols + c];
                if (cell->type == RLAB_CELL_INT)
                    snprintf(buf[c], 64, "%lld", (long long)cell->i);
                else if (cell->type == RLAB_CELL_FLOAT)
                    tui_fmt_num(cell->f, buf[c], 64);
                else
                    snprintf(buf[c], 64, "%s", cell->s ? cell->s : "");
                row[c] = buf[c];
            }
            tui_table_add_row(tb, (const char *const *)row);
        }
        rlab_free(row);
        rlab_free(buf);
    }
    table_title(tb->title, sizeof tb->title, what, rt);
    t->dirty |= TUI_D_MAIN;
}

/* Pad s (display width w) to width cols into line at *o, on the right (right = 1: numbers,
 * as the table view aligns them) or the left. */
static void put_cell(char *line, size_t cap, size_t *o, const char *s, int cols, int right)
{
    int w = tui_width(s, (size_t)-1);
    int pad = cols > w ? cols - w : 0;
    int n = right ? snprintf(line + *o, cap - *o, "%*s%s  ", pad, "", s)
                  : snprintf(line + *o, cap - *o, "%s%*s  ", s, pad, "");
    if (n > 0)
        *o = *o + (size_t)n < cap ? *o + (size_t)n : cap - 1;
}

/* A command's result table: into the table view (F3), and, when it is small, row by row into
 * the log as well (columns padded to display widths, so CJK text stays aligned), so a
 * recommendation list or a metrics table is read where it was asked for. */
void tui_result_table(tui *t, const char *what, const rlab_table *rt)
{
    enum { LOG_ROWS = 24 };
    tui_table_fill(t, what, rt);
    tui_table *tb = &t->table;
    int widths[32] = {0}, numeric[32] = {0};
    int nc = tb->ncol < 32 ? tb->ncol : 32;
    for (int c = 0; c < nc; c++) {
        widths[c] = tui_width(tb->cols[c], (size_t)-1);
        numeric[c] = tb->nrow > 0;
        for (int r = 0; r < tb->nrow && r < LOG_ROWS; r++) {
            size_t i = (size_t)r * (size_t)tb->ncol + (size_t)c;
            const char *v = tb->cells[i];
            int w = v ? tui_width(v, (size_t)-1) : 0;
            if (w > widths[c])
                widths[c] = w > 40 ? 40 : w;
            if (v && *v && isnan(tb->num[i]))
                numeric[c] = 0;
        }
    }
    if (rt->nrows <= LOG_ROWS) {
        char line[1024];
        size_t o = 0;
        line[0] = 0;
        for (int c = 0; c < nc; c++)
            put_cell(line, sizeof line, &o, tb->cols[c], widths[c], numeric[c]);
        tui_log_add(t, TUI_K_HEAD | TUI_K_ROW, line);
        for (int r = 0; r < tb->nrow && r < LOG_ROWS; r++) {
            o = 0;
            line[0] = 0;
            for (int c = 0; c < nc; c++) {
                const char *v = tb->cells[(size_t)r * (size_t)tb->ncol + (size_t)c];
                char cut[256];
                snprintf(cut, sizeof cut, "%.*s", (int)tui_fit(v ? v : "", 40), v ? v : "");
                put_cell(line, sizeof line, &o, cut, widths[c], numeric[c]);
            }
            tui_log_add(t, TUI_K_OUT | TUI_K_ROW, line);
        }
    }
    tui_log_addf(t, TUI_K_INFO, "table '%s' (%lld rows): F3 shows it",
                 rt->name ? rt->name : "result", (long long)rt->nrows);
    t->dirty |= TUI_D_MAIN;
}

/* The shell's part of commands whose result is a table to look at (drawing only; the
 * commands are the host's): the table view comes up; `runs` is kept as the runs table, which
 * is refreshed from its line when a run ends and colours its status column; `compare` keeps
 * narrow run columns. */
static void table_command(tui *t, const char *cmd, const char *what, const rlab_result *res)
{
    static const struct {
        const char *cmd;
        int kind;
    } cmds[] = {{"runs", 1}, {"compare", 2}, {"sql", 0}};
    tui_table *tb = &t->table;
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        if (strcmp(cmd, cmds[i].cmd) != 0 || res->ntables == 0)
            continue;
        tb->kind = cmds[i].kind;
        if (tb->kind == 1) {
            snprintf(tb->source, sizeof tb->source, "%s", what);
            const rlab_cell *sort = rlab_result_scalar(res, "sort");
            const rlab_cell *order = rlab_result_scalar(res, "order");
            if (sort && sort->type == RLAB_CELL_TEXT) {
                tb->sort_col = tui_table_col(tb, sort->s);
                tb->sort_desc = order && order->s && !strcmp(order->s, "desc");
                if (tb->sort_col > 0) /* the sorted column in view, even far right */
                    tb->left = tb->sort_col;
            }
        }
        if (tb->ncol > 0)
            t->view = TUI_VIEW_TABLE;
        t->dirty |= TUI_D_MAIN | TUI_D_STATUS;
    }
}

/* a long text the command printed already (as the end of one of its lines: a reply, a
 * detail) is not repeated; short values (a name, a count) always are */
static int printed(const rlab_result *res, const char *s)
{
    size_t n = strlen(s);
    for (int i = 0; n >= 24 && i < res->nlines; i++) {
        size_t l = strlen(res->lines[i]);
        if (l >= n && !strcmp(res->lines[i] + l - n, s))
            return 1;
    }
    return 0;
}

void tui_show_result(tui *t, const char *what, const char *cmd, const rlab_result *res,
                     int lines_shown)
{
    if (!res)
        return;
    for (int i = 0; !lines_shown && i < res->nlines; i++)
        tui_log_add(t, TUI_K_OUT, res->lines[i]);
    const char *cont = NULL; /* a command the next typed lines continue (crs.chat) */
    for (int i = 0; i < res->nscalars; i++) {
        const rlab_cell *c = &res->scalars[i].value;
        if (!strcmp(res->scalars[i].name, "continue") && c->type == RLAB_CELL_TEXT) {
            cont = c->s;
            continue;
        }
        if (c->type == RLAB_CELL_TEXT && c->s && printed(res, c->s))
            continue;
        char v[256];
        if (c->type == RLAB_CELL_INT)
            snprintf(v, sizeof v, "%lld", (long long)c->i);
        else if (c->type == RLAB_CELL_FLOAT)
            snprintf(v, sizeof v, "%.6g", c->f);
        else if (c->s && strlen(c->s) > 160) { /* a long text (JSON detail): its start */
            int n = 120;
            while (n > 0 && ((unsigned char)c->s[n] & 0xC0) == 0x80) /* a whole character */
                n--;
            snprintf(v, sizeof v, "%.*s… (%zu characters; Lua has it whole)", n, c->s,
                     strlen(c->s));
        } else
            snprintf(v, sizeof v, "%s", c->s ? c->s : "");
        tui_log_addf(t, TUI_K_OUT, "%s%s = %s", lines_shown ? "  " : "", res->scalars[i].name, v);
    }
    for (int i = 0; i < res->ntables; i++) /* the last one stays in the table view */
        tui_result_table(t, what, res->tables[i]);
    table_command(t, cmd, what, res);
    if (cont && *cont && strcmp(cont, t->talk))
        tui_talk_set(t, cont);
}

int tui_table_runs(tui *t, const char *line, rlab_err *err)
{
    rlab_err e2 = {0};
    if (!err)
        err = &e2;
    if (!line || !*line)
        line = "runs";
    tui_table *tb = &t->table;
    char keep[64] = "";
    int keep_desc = tb->sort_desc;
    int keep_left = tb->kind == 1 ? tb->left : 1, keep_top = tb->kind == 1 ? tb->top : 0;
    if (tb->kind == 1 && tb->sort_col >= 0 && tb->sort_col < tb->ncol)
        snprintf(keep, sizeof keep, "%s", tb->cols[tb->sort_col]);
    char src[sizeof tb->source];
    snprintf(src, sizeof src, "%s", line);
    rlab_result *res = NULL;
    t->in_sync = 1;
    int rc = rlab_host_run_sync(t->host, src, &res, err);
    t->in_sync = 0;
    if (rc == RLAB_OK && res && res->ntables > 0) {
        tui_table_fill(t, src, res->tables[0]);
        tb->kind = 1;
        snprintf(tb->source, sizeof tb->source, "%s", src);
        if (keep[0]) { /* the order the user chose in the view (sort, F6/F7) */
            tb->sort_col = tui_table_col(tb, keep);
            tb->sort_desc = keep_desc;
            tui_table_sort(tb);
        }
        if (line == tb->source || keep[0]) { /* a refresh: where the user had scrolled */
            tb->left = keep_left;
            tb->top = keep_top;
        }
    }
    rlab_result_free(res);
    return rc;
}

static void collect(tui *t, tui_job *j)
{
    rlab_result *res = NULL;
    rlab_err err = {0};
    rlab_host_wait(t->host, j->id, &res, &err);
    tui_show_result(t, j->cmd, j->cmd, res, 1);
    rlab_result_free(res);
}

static void apply(tui *t, tui_ev *e)
{
    tui_job *j;
    switch (e->type) {
    case TUI_EV_LINE:
        tui_log_add(t, e->kind, e->text);
        break;
    case TUI_EV_TASK_DONE:
        if (e->status == RLAB_ECANCELED)
            tui_log_add(t, TUI_K_WARN, e->text && *e->text ? e->text : "interrupted");
        else if (e->status != RLAB_OK)
            tui_log_addf(t, TUI_K_ERR, "error: %s", e->text && *e->text ? e->text : "failed");
        tui_side_refresh(t);
        t->dirty |= TUI_D_STATUS | TUI_D_TITLE;
        break;
    case TUI_EV_DATASET:
        if (t->db && e->text) { /* its row and recipe, so the workspace reopens with it */
            rlab_err err = {0};
            if (rlab_host_record_dataset(t->host, t->db, e->text, &err))
                tui_log_addf(t, TUI_K_WARN, "dataset '%s' not recorded in the store: %s", e->text,
                             err.msg);
        }
        tui_side_refresh(t);
        break;
    case RLAB_EV_QUEUED:
        j = job_add(t, e->job_id, e->cmd);
        if (j) {
            int ahead = t->njobs - 1;
            if (ahead > 0)
                tui_log_addf(t, TUI_K_INFO, "job #%d %s queued (%d ahead)", j->id, j->cmd, ahead);
        }
        t->dirty |= TUI_D_STATUS | TUI_D_TITLE;
        break;
    case RLAB_EV_STARTED:
        j = tui_job_find(t, e->job_id);
        if (!j && e->outer_job && tui_job_find(t, e->outer_job)) {
            /* a command a tracked job called (a lua.run script's train): tracked too, so
             * its progress shows inside the script's job and Ctrl-C reaches it */
            j = job_add(t, e->job_id, e->cmd);
            if (j)
                j->outer = e->outer_job;
        }
        if (!j)
            break; /* a sync command: shown through its lines only */
        j->state = RLAB_JOB_RUNNING;
        j->run_id = e->run_id;
        j->started_at = j->last_at = rlab_now();
        {
            char in[32] = "";
            if (j->outer)
                snprintf(in, sizeof in, " in job #%d", j->outer);
            if (e->run_id > 0)
                tui_log_addf(t, TUI_K_INFO, "job #%d %s started (run #%lld)%s", j->id, j->cmd,
                             (long long)e->run_id, in);
            else
                tui_log_addf(t, TUI_K_INFO, "job #%d %s started%s", j->id, j->cmd, in);
        }
        tui_side_refresh(t);
        t->dirty |= TUI_D_STATUS | TUI_D_TITLE;
        break;
    case RLAB_EV_PROGRESS:
        j = tui_job_find(t, e->job_id);
        if (!j)
            break;
        if (j->state != RLAB_JOB_RUNNING) {
            j->state = RLAB_JOB_RUNNING;
            j->started_at = rlab_now();
        }
        if (e->run_id > 0)
            j->run_id = e->run_id;
        {
            double now = rlab_now();
            if (e->step > j->step && j->started_at > 0 && e->step > 0) {
                double per = (now - j->started_at) / (double)e->step;
                j->rate = per;
            }
            j->last_at = now;
        }
        j->step = e->step;
        j->total = e->total;
        snprintf(j->label, sizeof j->label, "%s", e->label ? e->label : "");
        if (e->nmetrics > 0) {
            int64_t key = j->run_id > 0 ? j->run_id : -(int64_t)j->id;
            int best = 0;
            for (int i = 0; i < e->nmetrics; i++) {
                tui_series *s = tui_series_get(t, key, e->mnames[i], 1);
                if (s) {
                    s->live = 1;
                    series_push(s, (double)e->step, e->mvals[i]);
                }
                if (metric_rank(e->mnames[i]) < metric_rank(e->mnames[best]))
                    best = i;
            }
            char v[32];
            tui_fmt_num(e->mvals[best], v, sizeof v);
            snprintf(j->last_metric, sizeof j->last_metric, "%s %s", e->mnames[best], v);
            if (t->chart.follow)
                chart_follow(t, j, e);
            t->dirty |= TUI_D_MAIN | TUI_D_SIDE;
        }
        t->dirty |= TUI_D_STATUS;
        break;
    case RLAB_EV_LOG:
        j = tui_job_find(t, e->job_id);
        if (j && j->mine) {
            char pre[200];
            if (j->run_id > 0)
                snprintf(pre, sizeof pre, "%s #%lld: ", j->cmd, (long long)j->run_id);
            else
                snprintf(pre, sizeof pre, "%s: ", j->cmd);
            tui_log_addf(t, TUI_K_OUT, "%s%s", pre, e->text ? e->text : "");
        } else
            tui_log_add(t, TUI_K_OUT, e->text ? e->text : "");
        break;
    case RLAB_EV_DONE:
        j = tui_job_find(t, e->job_id);
        if (!j) { /* sync command: its error is reported by the dispatcher */
            break;
        }
        if (e->status == RLAB_OK)
            tui_log_addf(t, TUI_K_OK, "job #%d %s done in %.1f s", j->id, j->cmd, e->elapsed);
        else if (e->status == RLAB_ECANCELED)
            tui_log_addf(t, TUI_K_WARN, "job #%d %s interrupted%s", j->id, j->cmd,
                         j->run_id > 0 ? " (run marked interrupted)" : "");
        else
            tui_log_addf(t, TUI_K_ERR, "error: %s", e->text && *e->text ? e->text : "job failed");
        if (j->run_id > 0 && t->chart.metric[0]) {
            for (int k = 0; k < t->chart.nkeys; k++)
                if (t->chart.keys[k] == j->run_id)
                    tui_series_load(t, j->run_id, tui_chart_metric(&t->chart, k));
        }
        if (j->mine)
            collect(t, j);
        job_remove(t, e->job_id);
        tui_side_refresh(t);
        if (t->table.kind == 1)
            tui_table_runs(t, t->table.source, NULL);
        t->dirty |= TUI_D_ALL;
        break;
    default:
        break;
    }
}

int tui_apply_events(tui *t)
{
    char buf[256];
    while (read(t->wake[0], buf, sizeof buf) > 0)
        ;
    pthread_mutex_lock(&t->mu);
    tui_ev *e = t->q_head;
    t->q_head = t->q_tail = NULL;
    pthread_mutex_unlock(&t->mu);
    int n = 0;
    while (e) {
        tui_ev *next = e->next;
        apply(t, e);
        tui_ev_free(e);
        e = next;
        n++;
    }
    return n;
}

/* ---- tables --------------------------------------------------------------------------- */

void tui_table_clear(tui_table *tb)
{
    for (int i = 0; i < tb->ncol; i++)
        rlab_free(tb->cols[i]);
    for (int i = 0; i < tb->nrow * tb->ncol; i++)
        rlab_free(tb->cells[i]);
    rlab_free(tb->cols);
    rlab_free(tb->cells);
    rlab_free(tb->num);
    tb->cols = NULL;
    tb->cells = NULL;
    tb->num = NULL;
    tb->ncol = tb->nrow = 0;
    tb->sort_col = -1;
    tb->sort_desc = 0;
    tb->kind = 0;
    tb->top = 0;
    tb->left = 1;
    tb->last_shown = -1;
    tb->title[0] = 0;
    tb->source[0] = 0;
}

int tui_table_set_cols(tui_table *tb, int ncol, const char *const *cols)
{
    tb->cols = rlab_calloc((size_t)(ncol > 0 ? ncol : 1), sizeof *tb->cols);
    if (!tb->cols)
        return RLAB_ENOMEM;
    tb->ncol = ncol;
    for (int i = 0; i < ncol; i++)
        tb->cols[i] = tui_sanitize(cols[i] ? cols[i] : "", (size_t)-1);
    return RLAB_OK;
}

static int parse_num(const char *s, double *v)
{
    if (!s || !*s)
        return 0;
    char *end;
    double d = strtod(s[0] == '.' || (s[0] == '-' && s[1] == '.') ? s : s, &end);
    if (end == s || *end)
        return 0;
    *v = d;
    return 1;
}

int tui_table_add_row(tui_table *tb, const char *const *cells)
{
    size_t n = (size_t)(tb->nrow + 1) * (size_t)tb->ncol;
    char **nc = rlab_realloc(tb->cells, n * sizeof *nc);
    if (!nc)
        return RLAB_ENOMEM;
    tb->cells = nc;
    double *nn = rlab_realloc(tb->num, n * sizeof *nn);
    if (!nn)
        return RLAB_ENOMEM;
    tb->num = nn;
    for (int c = 0; c < tb->ncol; c++) {
        size_t i = (size_t)tb->nrow * (size_t)tb->ncol + (size_t)c;
        tb->cells[i] = cells[c] ? tui_sanitize(cells[c], (size_t)-1) : NULL;
        double v;
        tb->num[i] = parse_num(cells[c], &v) ? v : (double)NAN;
    }
    tb->nrow++;
    return RLAB_OK;
}

int tui_table_col(const tui_table *tb, const char *name)
{
    for (int i = 0; i < tb->ncol; i++)
        if (!strcmp(tb->cols[i], name))
            return i;
    for (int i = 0; i < tb->ncol; i++) { /* "ndcg@10" matches "valid.ndcg@10" */
        const char *d = strchr(tb->cols[i], '.');
        if (d && !strcmp(d + 1, name))
            return i;
    }
    return -1;
}

static const tui_table *g_sort_tb;
static int row_cmp(const void *a, const void *b)
{
    const tui_table *tb = g_sort_tb;
    int ra = *(const int *)a, rb = *(const int *)b, c = tb->sort_col;
    double va = tb->num[ra * tb->ncol + c], vb = tb->num[rb * tb->ncol + c];
    int r;
    if (isnan(va) || isnan(vb)) {
        if (isnan(va) && isnan(vb)) {
            const char *sa = tb->cells[ra * tb->ncol + c], *sb = tb->cells[rb * tb->ncol + c];
            if (!sa || !sb)
                return sa ? -1 : sb ? 1 : ra - rb; /* empty cells last */
            r = strcmp(sa, sb);
            if (tb->sort_desc)
                r = -r;
            return r ? r : ra - rb;
        }
        return isnan(va) ? 1 : -1; /* numbers before text and empties, either order */
    }
    r = va < vb ? -1 : va > vb ? 1 : 0;
    if (tb->sort_desc)
        r = -r;
    return r ? r : ra - rb;
}

void tui_table_hscroll(tui_table *tb, int dir)
{
    if (tb->ncol < 2)
        return;
    if (dir == -2)
        tb->left = 1;
    else if (dir == 2)
        tb->left = tb->ncol - 1; /* the view pulls it back while the rest fits */
    else if (dir < 0 && tb->left > 1)
        tb->left--;
    else if (dir > 0 && tb->last_shown >= 0 && tb->last_shown < tb->ncol - 1)
        tb->left++;
}

void tui_table_sort(tui_table *tb)
{
    if (tb->sort_col > 0)
        tb->left = tb->sort_col; /* the sorted column in view */
    if (tb->sort_col < 0 || tb->sort_col >= tb->ncol || tb->nrow < 2)
        return;
    int *idx = rlab_malloc((size_t)tb->nrow * sizeof *idx);
    char **cells = rlab_malloc((size_t)tb->nrow * (size_t)tb->ncol * sizeof *cells);
    double *num = rlab_malloc((size_t)tb->nrow * (size_t)tb->ncol * sizeof *num);
    if (idx && cells && num) {
        for (int i = 0; i < tb->nrow; i++)
            idx[i] = i;
        g_sort_tb = tb;
        qsort(idx, (size_t)tb->nrow, sizeof *idx, row_cmp);
        for (int i = 0; i < tb->nrow; i++) {
            memcpy(cells + (size_t)i * tb->ncol, tb->cells + (size_t)idx[i] * tb->ncol,
                   (size_t)tb->ncol * sizeof *cells);
            memcpy(num + (size_t)i * tb->ncol, tb->num + (size_t)idx[i] * tb->ncol,
                   (size_t)tb->ncol * sizeof *num);
        }
        rlab_free(tb->cells);
        rlab_free(tb->num);
        tb->cells = cells;
        tb->num = num;
        cells = NULL;
        num = NULL;
    }
    rlab_free(idx);
    rlab_free(cells);
    rlab_free(num);
}

/* ---- sidebar -------------------------------------------------------------------------- */

void tui_side_refresh(tui *t)
{
    tui_side *s = &t->side;
    s->refreshed = rlab_now();
    s->nds = 0;
    rlab_dataset_brief *br = NULL; /* loaded and recorded ones, without loading any */
    int n = 0;
    rlab_err err = {0};
    rlab_host_datasets(t->host, &br, &n, &err);
    for (int i = 0; i < n && s->nds < 16; i++) {
        tui_side_ds *d = &s->ds[s->nds++];
        snprintf(d->name, sizeof d->name, "%s", br[i].name);
        d->users = br[i].state == RLAB_DS_UNAVAILABLE ? -1 : br[i].n_users;
        d->items = br[i].state == RLAB_DS_UNAVAILABLE ? -1 : br[i].n_items;
        d->dialogues = strcmp(br[i].kind, "dialogues") == 0;
    }
    rlab_free(br);
    s->nmodels = 0;
    rlab_model_info *info = NULL;
    n = 0;
    if (rlab_models_list(rlab_host_models(t->host), &info, &n, &err) == RLAB_OK) {
        for (int i = 0; i < n && s->nmodels < 32; i++)
            snprintf(s->models[s->nmodels++], 64, "%s", info[i].name);
        rlab_free(info);
    }
    /* and those kept in the store by this or an earlier session, restored on first use */
    rlab_db_stmt *q = t->db ? rlab_db_prepare(t->db,
                                              "SELECT DISTINCT m.name FROM models m JOIN artifacts"
                                              " a ON a.id = m.artifact_id WHERE a.data IS NOT NULL"
                                              " ORDER BY m.name",
                                              &err)
                            : NULL;
    int loaded = s->nmodels;
    while (q && s->nmodels < 32 && rlab_db_step(q, &err) == RLAB_DB_ROW) {
        const char *nm = rlab_db_column_text(q, 0);
        int dup = 0;
        for (int i = 0; nm && i < loaded; i++)
            dup |= strcmp(s->models[i], nm) == 0;
        if (nm && !dup)
            snprintf(s->models[s->nmodels++], 64, "%s", nm);
    }
    rlab_db_finalize(q);
    s->nplugins = 0;
    for (int i = 1; i < rlab_host_plugin_count(t->host) && s->nplugins < 32; i++) {
        const rlab_plugin *p = rlab_host_plugin_at(t->host, i);
        if (p && p->name)
            snprintf(s->plugins[s->nplugins++], 32, "%s", p->name);
    }
    s->nruns = 0;
    snprintf(s->key_metric, sizeof s->key_metric, "%s", RLAB_KEY_METRIC_DEFAULT);
    if (t->db) {
        char *km = NULL; /* the user's choice (`set key-metric`), kept in the store */
        if (rlab_db_setting_get(t->db, "key-metric", &km, &err) == RLAB_OK && km)
            snprintf(s->key_metric, sizeof s->key_metric, "%s", km);
        rlab_free(km);
        char split[16];
        const char *dot = strchr(s->key_metric, '.');
        snprintf(split, sizeof split, "%.*s", dot ? (int)(dot - s->key_metric) : 0, s->key_metric);
        rlab_db_value prm[2] = {{.type = RLAB_DB_TEXT, .s = split, .n = strlen(split)},
                                {.type = RLAB_DB_TEXT,
                                 .s = dot ? dot + 1 : s->key_metric,
                                 .n = strlen(dot ? dot + 1 : s->key_metric)}};
        /* one metric for every run, at the run's kept epoch: the step its test metrics were
         * written at (training writes them for the kept model), else its latest step */
        rlab_db_result *r = rlab_db_query_table(
            t->db,
            "SELECT r.id, COALESCE(json_extract(r.config, '$.name'), r.model_kind, "
            "json_extract(r.config, '$.model'), r.name, r.plugin), r.status, "
            "(SELECT m.value FROM metrics m WHERE m.run_id = r.id AND m.split = ?1 AND "
            "m.name = ?2 AND m.value IS NOT NULL ORDER BY (m.step = (SELECT max(k.step) FROM "
            "metrics k WHERE k.run_id = m.run_id AND k.split = 'test')) DESC, m.step DESC, m.id "
            "DESC "
            "LIMIT 1) FROM runs r ORDER BY r.id DESC LIMIT 40",
            prm, 2, 0, &err);
        for (int i = 0; r && i < r->nrow && s->nruns < TUI_SIDE_RUNS; i++) {
            tui_side_run *sr = &s->runs[s->nruns++];
            memset(sr, 0, sizeof *sr);
            sr->id = rlab_db_result_cell(r, i, 0)->i;
            const rlab_db_value *v = rlab_db_result_cell(r, i, 1);
            const char *lab = v->type == RLAB_DB_TEXT ? v->s : "?";
            const char *ldot = strchr(lab, '.');
            snprintf(sr->label, sizeof sr->label, "%s", ldot ? ldot + 1 : lab);
            v = rlab_db_result_cell(r, i, 2);
            snprintf(sr->status, sizeof sr->status, "%s", v->type == RLAB_DB_TEXT ? v->s : "");
            const rlab_db_value *val = rlab_db_result_cell(r, i, 3);
            sr->value = val->type == RLAB_DB_REAL ? val->r : (double)val->i;
            sr->has_value = val->type == RLAB_DB_REAL || val->type == RLAB_DB_INT;
        }
        rlab_db_result_free(r);
    }
    t->dirty |= TUI_D_SIDE | TUI_D_TITLE;
}

void tui_pviews_refresh(tui *t)
{
    t->npviews = 0;
    for (int i = 0; i < rlab_host_plugin_count(t->host); i++) {
        const rlab_plugin *p = rlab_host_plugin_at(t->host, i);
        for (const rlab_view_kind *v = p ? p->views : NULL; v && v->name && t->npviews < 32; v++) {
            tui_pview *pv = &t->pviews[t->npviews++];
            snprintf(pv->name, sizeof pv->name, "%s.%s", p->name, v->name);
            snprintf(pv->title, sizeof pv->title, "%s", v->title ? v->title : v->name);
            snprintf(pv->kind, sizeof pv->kind, "%s", v->kind ? v->kind : "feed");
            snprintf(pv->source, sizeof pv->source, "%s", v->source ? v->source : "");
        }
    }
}

void tui_comp_clear(tui *t)
{
    if (t->comp) {
        for (int i = 0; i < t->ncomp; i++)
            rlab_free(t->comp[i]);
        rlab_free(t->comp);
        t->dirty |= TUI_D_MAIN;
    }
    t->comp = NULL;
    t->ncomp = 0;
}
