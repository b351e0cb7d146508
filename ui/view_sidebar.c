/*
 * ui/view_sidebar.c: the sidebar (datasets with their sizes, models, runs with status and
 * the key metric named in the RUNS heading, plugins), the title bar (workspace, dataset, job
 * position) and the status line (the running job's progress bar, rate and ETA, or the key help when
 * idle).
 */
#include "tui.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static void fmt_count(int64_t n, char *buf, size_t cap)
{
    if (n < 0)
        snprintf(buf, cap, "?");
    else if (n < 10000)
        snprintf(buf, cap, "%lld", (long long)n);
    else if (n < 1000000)
        snprintf(buf, cap, "%lldk", (long long)((n + 500) / 1000));
    else
        snprintf(buf, cap, "%.1fM", (double)n / 1e6);
}

/* Words joined on lines of width wd, starting at row y; returns the next row. */
static int words(WINDOW *w, int y, int ymax, int wd, const char *base, int n, size_t stride)
{
    int x = 2;
    for (int i = 0; i < n && y < ymax; i++) {
        const char *s = base + (size_t)i * stride;
        int sw = tui_width(s, (size_t)-1);
        if (x > 2 && x + sw > wd - 1) {
            y++;
            x = 2;
            if (y >= ymax)
                break;
        }
        x += tui_put(w, y, x, s, wd - 1 - x, A_NORMAL) + 2;
    }
    return y + 1;
}

void tui_view_sidebar(tui *t, WINDOW *w, int h, int wd)
{
    tui_side *s = &t->side;
    int cw = wd - 1; /* the last column is the separator */
    attr_t head = tui_attr(t, TUI_R_HEAD), dim = tui_attr(t, TUI_R_DIM);
    for (int r = 0; r < h; r++) {
        wmove(w, r, cw);
        wattr_set(w, dim, (short)PAIR_NUMBER(dim), NULL);
        if (t->utf8)
            waddwstr(w, L"\u2502");
        else
            waddch(w, '|');
        wattr_set(w, A_NORMAL, 0, NULL);
    }
    /* plugins take their lines at the bottom, runs what is left */
    int plug_rows = s->nplugins ? 2 : 0;
    if (plug_rows && h > 20) {
        int x = 2, rows = 1;
        for (int i = 0; i < s->nplugins; i++) {
            int pw = tui_width(s->plugins[i], (size_t)-1);
            if (x > 2 && x + pw > cw - 1) {
                rows++;
                x = 2;
            }
            x += pw + 2;
        }
        plug_rows = 1 + (rows > 3 ? 3 : rows);
    }
    int y = 0, ymax = h - plug_rows;
    tui_put(w, y++, 1, "DATASETS", cw - 1, head);
    if (s->nds == 0)
        tui_put(w, y++, 2, "(none yet)", cw - 2, dim);
    for (int i = 0; i < s->nds && y < ymax && i < 6; i++) {
        char u[16], it[16], line[96];
        fmt_count(s->ds[i].users, u, sizeof u);
        fmt_count(s->ds[i].items, it, sizeof it);
        snprintf(line, sizeof line, "%s%s %si", u, s->ds[i].dialogues ? "c" : "u", it);
        int lw = tui_width(line, (size_t)-1);
        int nw = cw - 3 - lw - 1;
        tui_put(w, y, 2, s->ds[i].name, nw > 4 ? nw : cw - 3, A_NORMAL);
        if (nw > 4)
            tui_put(w, y, cw - lw - 1, line, lw, dim);
        y++;
    }
    if (y < ymax)
        tui_put(w, y++, 1, "MODELS", cw - 1, head);
    if (s->nmodels == 0 && y < ymax)
        tui_put(w, y++, 2, "(none yet)", cw - 2, dim);
    else if (y < ymax)
        y = words(w, y, y + 2 < ymax ? y + 2 : ymax, cw, s->models[0], s->nmodels,
                  sizeof s->models[0]);
    if (y < ymax) { /* the value column's label, right-aligned: which metric, which split */
        tui_put(w, y, 1, "RUNS", cw - 1, head);
        int kw = tui_width(s->key_metric, (size_t)-1);
        if (cw - kw - 1 > 6)
            tui_put(w, y, cw - kw - 1, s->key_metric, kw, dim);
        y++;
    }
    if (s->nruns == 0 && y < ymax)
        tui_put(w, y++, 2, "(none yet)", cw - 2, dim);
    for (int i = 0; i < s->nruns && y < ymax; i++) {
        const tui_side_run *r = &s->runs[i];
        const char *icon;
        attr_t a;
        if (!strcmp(r->status, "running")) {
            icon = t->utf8 ? "\u25cf" : "*";
            a = head;
        } else if (!strcmp(r->status, "done")) {
            icon = t->utf8 ? "\u2713" : "+";
            a = tui_attr(t, TUI_R_OK);
        } else if (!strcmp(r->status, "failed")) {
            icon = t->utf8 ? "\u2717" : "x";
            a = tui_attr(t, TUI_R_ERR);
        } else {
            icon = t->utf8 ? "\u25cc" : "-";
            a = tui_attr(t, TUI_R_WARN);
        }
        tui_put(w, y, 1, icon, 1, a);
        char val[32] = "";
        if (!strcmp(r->status, "running")) {
            tui_job *j = tui_running_job(t);
            snprintf(val, sizeof val, "run");
            if (j && j->run_id == r->id && j->total > 0)
                snprintf(val, sizeof val, "%lld%%", (long long)(j->step * 100 / j->total));
        } else if (r->has_value)
            tui_fmt_num(r->value, val, sizeof val);
        else if (!strcmp(r->status, "interrupted"))
            snprintf(val, sizeof val, "int");
        else if (!strcmp(r->status, "failed"))
            snprintf(val, sizeof val, "fail");
        char id[24];
        snprintf(id, sizeof id, "#%lld", (long long)r->id);
        int x = 3 + tui_put(w, y, 3, id, cw - 3, A_NORMAL) + 1;
        int vw = tui_width(val, (size_t)-1);
        int lw = cw - x - vw - 1;
        if (lw > 0)
            tui_put(w, y, x, r->label, lw, A_NORMAL);
        if (vw && cw - vw - 1 > x)
            tui_put(w, y, cw - vw - 1, val, vw, dim);
        y++;
    }
    if (plug_rows) {
        y = h - plug_rows;
        tui_put(w, y++, 1, "PLUGINS", cw - 1, head);
        words(w, y, h, cw, s->plugins[0], s->nplugins, sizeof s->plugins[0]);
    }
}

void tui_view_title(tui *t, WINDOW *w, int wd)
{
    attr_t a = tui_attr(t, TUI_R_TITLE);
    char left[384];
    const char *sep = t->utf8 ? "\u2500" : "-";
    char ds[96] = "";
    for (int i = 0; i < t->side.nds; i++)
        if (!strcmp(t->side.ds[i].name, "demo"))
            snprintf(ds, sizeof ds, " %s demo world", sep);
    snprintf(left, sizeof left, " reclab %s workspace: %s%s ", sep, t->workspace, ds);
    char right[200] = "";
    tui_job *j = tui_running_job(t);
    int n = t->njobs;
    if (j)
        snprintf(right, sizeof right, " job 1/%d: %s ", n, j->cmd);
    else if (n > 0)
        snprintf(right, sizeof right, " %d job(s) queued ", n);
    else if (atomic_load(&t->task_busy)) {
        pthread_mutex_lock(&t->task_mu);
        snprintf(right, sizeof right, " %s ", t->task_title);
        pthread_mutex_unlock(&t->task_mu);
    }
    tui_put_pad(w, 0, 0, left, wd, a);
    int rw = tui_width(right, (size_t)-1);
    int lw = tui_width(left, (size_t)-1);
    if (rw && lw + rw <= wd)
        tui_put(w, 0, wd - rw, right, rw, a);
}

static void fmt_dur(double s, char *buf, size_t cap)
{
    if (!isfinite(s) || s < 0)
        snprintf(buf, cap, "?");
    else if (s < 60)
        snprintf(buf, cap, "%.0fs", s);
    else if (s < 3600)
        snprintf(buf, cap, "%d:%02d", (int)s / 60, (int)s % 60);
    else
        snprintf(buf, cap, "%d:%02d:%02d", (int)s / 3600, (int)s % 3600 / 60, (int)s % 60);
}

/* "job #3 train bprmf (run #7)": how the log names a job */
static void job_name(const tui_job *j, char *buf, size_t cap)
{
    if (j->run_id > 0)
        snprintf(buf, cap, "job #%d %s (run #%lld)", j->id, j->cmd, (long long)j->run_id);
    else
        snprintf(buf, cap, "job #%d %s", j->id, j->cmd);
}

void tui_view_status(tui *t, WINDOW *w, int wd)
{
    tui_job *j = tui_running_job(t);
    attr_t dim = tui_attr(t, TUI_R_DIM);
    int x = 0;
    if (j) {
        /* the job as the log names it ("job #1 lua.run"); a command it called (a script's
         * train) after it, and the bar is that command's */
        char id[448], a[200], b[200] = "";
        tui_job *in = tui_inner_job(t, j);
        if (in) /* the outer job by its id, the inner with its run */
            snprintf(a, sizeof a, "job #%d %s", j->id, j->cmd);
        else
            job_name(j, a, sizeof a);
        if (in) {
            job_name(in, b, sizeof b);
            j = in;
        }
        snprintf(id, sizeof id, "%s%s%s ", a, in ? (t->utf8 ? " \u203a " : " > ") : "", b);
        x += tui_put(w, 0, x, id, in ? wd * 2 / 3 : wd / 3, tui_attr(t, TUI_R_CMD));
        int barw = in ? 10 : wd / 4 < 10 ? 10 : wd / 4 > 40 ? 40 : wd / 4;
        double frac = j->total > 0 ? (double)j->step / (double)j->total : 0;
        if (frac > 1)
            frac = 1;
        int full = (int)(frac * barw + 0.5);
        char bar[512];
        size_t o = 0;
        for (int i = 0; i < barw && o + 4 < sizeof bar; i++) {
            const char *c = t->utf8 ? (i < full ? "\u2588" : "\u2591") : (i < full ? "#" : ".");
            size_t cl = strlen(c);
            memcpy(bar + o, c, cl);
            o += cl;
        }
        bar[o] = 0;
        if (x + barw < wd)
            x += tui_put(w, 0, x, bar, barw, tui_attr(t, TUI_R_BAR)) + 1;
        char rest[256], eta[32] = "?", rate[48] = "", ctxl[48] = "";
        const char *lab = j->label[0] ? j->label : "steps";
        /* "run 3/12 epoch": a command called by a sweep names its place first; the unit is
         * the last word */
        const char *sp = strrchr(lab, ' ');
        if (sp && sp[1]) {
            snprintf(ctxl, sizeof ctxl, "%.*s: ", (int)(sp - lab), lab);
            lab = sp + 1;
        }
        if (j->rate > 0) {
            if (j->rate >= 1)
                snprintf(rate, sizeof rate, "%.1f s/%s", j->rate, lab);
            else
                snprintf(rate, sizeof rate, "%.1f %s/s", 1.0 / j->rate, lab);
            if (j->total > 0)
                fmt_dur(j->rate * (double)(j->total - j->step), eta, sizeof eta);
        }
        if (j->step == 0 && j->total == 0 && !j->label[0]) /* no progress reports (sql) */
            snprintf(rest, sizeof rest, "running %.0fs",
                     j->started_at > 0 ? rlab_now() - j->started_at : 0.0);
        else if (j->total > 0)
            snprintf(rest, sizeof rest, "%s%lld/%lld %s  %s  ETA %s", ctxl, (long long)j->step,
                     (long long)j->total, lab, rate, eta);
        else
            snprintf(rest, sizeof rest, "%s%lld %s  %s", ctxl, (long long)j->step, lab, rate);
        x += tui_put(w, 0, x, rest, wd - x, A_NORMAL);
        int q = tui_queued_jobs(t);
        char tail[64];
        if (q > 0)
            snprintf(tail, sizeof tail, "  +%d queued  Ctrl-C cancels", q);
        else
            snprintf(tail, sizeof tail, "  Ctrl-C cancels");
        tui_put(w, 0, x, tail, wd - x, dim);
        return;
    }
    if (atomic_load(&t->task_busy)) {
        char m[200];
        pthread_mutex_lock(&t->task_mu);
        snprintf(m, sizeof m, "%s  running %.0fs  Ctrl-C interrupts", t->task_title,
                 rlab_now() - t->task_started_at);
        pthread_mutex_unlock(&t->task_mu);
        tui_put(w, 0, 0, m, wd, tui_attr(t, TUI_R_CMD));
        return;
    }
    if (tui_queued_jobs(t) > 0) {
        char m[64];
        snprintf(m, sizeof m, "%d job(s) queued", tui_queued_jobs(t));
        tui_put(w, 0, 0, m, wd, dim);
        return;
    }
    const char *views = t->view == TUI_VIEW_LOG     ? "[log]"
                        : t->view == TUI_VIEW_TABLE ? "[table]"
                        : t->view == TUI_VIEW_CHART ? "[chart]"
                                                    : "[view]";
    char m[256];
    snprintf(m, sizeof m,
             "%s  F2 log  F3 table  F4 chart  F5 views  PgUp/PgDn scroll  Tab completes  help",
             views);
    tui_put(w, 0, 0, m, wd, dim);
}
