/*
 * ui/view_plugin.c: views that plugins describe as data (rlab_view_kind, provisional).
 *
 * What each kind reads (the view's `source`):
 *   - "feed", "table": a SELECT (or WITH) over the session store; a bare word is an event
 *     kind instead (rows of the events table of that kind, "" = all), as round, agent, kind,
 *     payload. Rows come in chronological order: the renderer keeps the last ones (a source
 *     that limits its rows selects the newest in a subquery and orders them oldest first).
 *   - "chat": a SELECT of (role, text) rows, or nothing for the dialogues table.
 *   - "card": a read-only host command ("simulator.agent"). `view NAME ARGS` (shell_cmds.c)
 *     appends the arguments to the source ("simulator.agent 12"); until then the card shows
 *     how to pick what it shows.
 *
 * Renderers (all widths are display widths: tui_width / tui_fit, cells sanitised):
 *   - feed: one line per row, newest at the bottom; every column but the last is a dim
 *     aligned prefix ("r10  t=53"), the last is the text, cut with an ellipsis.
 *   - table: a header row of the column names, columns as wide as their widest cell (text
 *     columns shrink first when the pane is narrow; columns that still do not fit are left
 *     out with a "+N cols" note), numbers right-aligned (reals through tui_fmt_num), newest
 *     (last) row at the bottom: the view follows the tail, "rows a-b of n" when cut.
 *   - chat: "role: text" turns, wrapped, newest at the bottom.
 *   - card: the command's scalars as "name  value" fields (long values wrap), then each of
 *     its result tables under a heading, drawn as tables (first rows first). The command
 *     runs synchronously on the UI thread when the card is drawn and its last result is
 *     older than a second (so a card follows a simulation between steps); when it fails
 *     (e.g. the simulation is running) the last good result stays, with the error above it.
 *
 * Plugin views are redrawn whenever the main pane is (every event a job reports, and at
 * least once a second while a job runs: shell.c); while a job runs the source is read at
 * most every VP_LIVE_AGE seconds (rows cached here), otherwise at every draw. The full
 * source comes from the plugin's descriptor (tui_pview's copy is cut at 512 bytes).
 * PgUp/PgDn scroll the log pane under a plugin view (input.c), not the view: a feed or a
 * table follows its newest rows. Unknown kinds are drawn as "feed".
 */
#include "tui.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

enum {
    VP_MAX_ROWS = 1000, /* rows of a source kept (the last ones) */
    VP_MAX_COLS = 64,
    VP_COL_CAP = 200,  /* widest a column grows (text columns shrink to fit first) */
    VP_CARD_AGE = 1,   /* seconds before a drawn card re-runs its command */
    VP_WRAP_LINES = 3, /* lines a card field's value may wrap to */
};
#define VP_LIVE_AGE 0.25 /* seconds rows read while a job runs are drawn again */

/* ---- a grid of display cells -------------------------------------------------------- */

typedef struct vgrid {
    int ncol, nrow;
    char **names;        /* [ncol] sanitised */
    char **cells;        /* [nrow * ncol] sanitised, never NULL after a successful fill */
    unsigned char *num;  /* [nrow * ncol]: 1 number, 0 text, 2 null */
    unsigned char *rcol; /* [ncol]: 1 = numeric column (right-aligned) */
} vgrid;

static void grid_free(vgrid *g)
{
    if (g->cells)
        for (int i = 0; i < g->nrow * g->ncol; i++)
            rlab_free(g->cells[i]);
    if (g->names)
        for (int c = 0; c < g->ncol; c++)
            rlab_free(g->names[c]);
    rlab_free(g->cells);
    rlab_free(g->names);
    rlab_free(g->num);
    rlab_free(g->rcol);
    memset(g, 0, sizeof *g);
}

static int grid_alloc(vgrid *g, int ncol, int nrow)
{
    memset(g, 0, sizeof *g);
    if (ncol > VP_MAX_COLS)
        ncol = VP_MAX_COLS;
    g->ncol = ncol;
    g->nrow = nrow;
    size_t n = (size_t)ncol * (size_t)nrow;
    g->names = rlab_calloc((size_t)ncol + 1, sizeof *g->names);
    g->cells = rlab_calloc(n + 1, sizeof *g->cells);
    g->num = rlab_calloc(n + 1, 1);
    g->rcol = rlab_calloc((size_t)ncol + 1, 1);
    if (!g->names || !g->cells || !g->num || !g->rcol) {
        grid_free(g);
        return RLAB_ENOMEM;
    }
    return RLAB_OK;
}

/* Numeric columns: every non-null cell a number, at least one. */
static void grid_finish(vgrid *g)
{
    for (int c = 0; c < g->ncol; c++) {
        int nums = 0, texts = 0;
        for (int r = 0; r < g->nrow; r++) {
            unsigned char k = g->num[r * g->ncol + c];
            nums += k == 1;
            texts += k == 0;
        }
        g->rcol[c] = nums > 0 && texts == 0;
    }
}

static char *fmt_int(int64_t v)
{
    char b[32];
    snprintf(b, sizeof b, "%lld", (long long)v);
    return rlab_strdup(b);
}

static char *fmt_real(double v)
{
    char b[48];
    tui_fmt_num(v, b, sizeof b);
    return rlab_strdup(b);
}

static char *db_cell_text(const rlab_db_value *v, unsigned char *num)
{
    *num = 0;
    switch (v->type) {
    case RLAB_DB_INT:
        *num = 1;
        return fmt_int(v->i);
    case RLAB_DB_REAL:
        *num = 1;
        return fmt_real(v->r);
    case RLAB_DB_TEXT:
        return tui_sanitize(v->s, v->n);
    case RLAB_DB_BLOB: {
        char b[48];
        snprintf(b, sizeof b, "<%zu bytes>", v->n);
        return rlab_strdup(b);
    }
    default:
        *num = 2;
        return rlab_strdup("");
    }
}

static char *res_cell_text(const rlab_cell *v, unsigned char *num)
{
    *num = 0;
    switch (v->type) {
    case RLAB_CELL_INT:
        *num = 1;
        return fmt_int(v->i);
    case RLAB_CELL_FLOAT:
        *num = 1;
        return fmt_real(v->f);
    case RLAB_CELL_TEXT:
    case RLAB_CELL_MODEL:
        return tui_sanitize(v->s ? v->s : "", (size_t)-1);
    default:
        *num = 2;
        return rlab_strdup("");
    }
}

static int grid_check(vgrid *g)
{
    for (int c = 0; c < g->ncol; c++)
        if (!g->names[c])
            goto fail;
    for (int i = 0; i < g->nrow * g->ncol; i++)
        if (!g->cells[i])
            goto fail;
    grid_finish(g);
    return RLAB_OK;
fail:
    grid_free(g);
    return RLAB_ENOMEM;
}

/* The last VP_MAX_ROWS rows of a query result. */
static int grid_from_db(vgrid *g, const rlab_db_result *res)
{
    int first = res->nrow > VP_MAX_ROWS ? res->nrow - VP_MAX_ROWS : 0;
    if (grid_alloc(g, res->ncol, res->nrow - first))
        return RLAB_ENOMEM;
    for (int c = 0; c < g->ncol; c++)
        g->names[c] = tui_sanitize(res->names[c] ? res->names[c] : "", (size_t)-1);
    for (int r = 0; r < g->nrow; r++)
        for (int c = 0; c < g->ncol; c++)
            g->cells[r * g->ncol + c] =
                db_cell_text(rlab_db_result_cell(res, first + r, c), &g->num[r * g->ncol + c]);
    return grid_check(g);
}

/* The first VP_MAX_ROWS rows of a command's result table. */
static int grid_from_table(vgrid *g, const rlab_table *tb)
{
    int n = tb->nrows > VP_MAX_ROWS ? VP_MAX_ROWS : (int)tb->nrows;
    if (grid_alloc(g, tb->ncols, n))
        return RLAB_ENOMEM;
    for (int c = 0; c < g->ncol; c++)
        g->names[c] = tui_sanitize(tb->cols[c] ? tb->cols[c] : "", (size_t)-1);
    for (int r = 0; r < g->nrow; r++)
        for (int c = 0; c < g->ncol; c++)
            g->cells[r * g->ncol + c] = res_cell_text(
                &tb->cells[(size_t)r * (size_t)tb->ncols + (size_t)c], &g->num[r * g->ncol + c]);
    return grid_check(g);
}

/* ---- drawing helpers ---------------------------------------------------------------- */

/* Draw s in at most maxw columns; text that does not fit ends in an ellipsis. Returns the
 * columns used. */
static int put_cut(const tui *t, WINDOW *w, int y, int x, const char *s, int maxw, attr_t a)
{
    if (maxw <= 0 || !s)
        return 0;
    if (tui_width(s, (size_t)-1) <= maxw)
        return tui_put(w, y, x, s, maxw, a);
    char buf[2048];
    size_t f = tui_fit(s, maxw - 1);
    if (f >= sizeof buf)
        f = tui_fit(s, (int)(sizeof buf / 4));
    memcpy(buf, s, f);
    buf[f] = 0;
    int used = tui_put(w, y, x, buf, maxw - 1, a);
    return used + tui_put(w, y, x + used, t->utf8 ? "\u2026" : "~", 1, a);
}

/* Right-aligned when right (and it fits), else left; cut with an ellipsis. */
static void put_cell(const tui *t, WINDOW *w, int y, int x, const char *s, int cw, int right,
                     attr_t a)
{
    int sw = tui_width(s, (size_t)-1);
    int pad = right && sw < cw ? cw - sw : 0;
    put_cut(t, w, y, x + pad, s, cw - pad, a);
}

/* A dim note at the right end of the view's title line. */
static void title_note(tui *t, WINDOW *w, int y, int x, int wd, const char *note)
{
    int nw = tui_width(note, (size_t)-1);
    if (nw + 1 < wd)
        tui_put(w, y, x + wd - nw - 1, note, nw, tui_attr(t, TUI_R_DIM));
}

/* Column widths of g for rows [r0, r1) in wd columns (2 spaces between columns): text
 * columns shrink (down to their name or 6 columns) before columns are left out. Returns
 * the number of columns shown (>= 1 when ncol > 0). */
static int grid_widths(const vgrid *g, int r0, int r1, int wd, int *colw)
{
    int nc = g->ncol;
    if (nc == 0)
        return 0;
    int minw[VP_MAX_COLS];
    for (int c = 0; c < nc; c++) {
        int hw = tui_width(g->names[c], (size_t)-1);
        colw[c] = hw;
        for (int r = r0; r < r1; r++) {
            int cw = tui_width(g->cells[r * nc + c], (size_t)-1);
            if (cw > colw[c])
                colw[c] = cw;
        }
        if (colw[c] > VP_COL_CAP)
            colw[c] = VP_COL_CAP;
        if (colw[c] < 1)
            colw[c] = 1;
        minw[c] = g->rcol[c] ? colw[c] : hw > 6 ? hw : 6;
        if (minw[c] > colw[c])
            minw[c] = colw[c];
    }
    int total = 2 * (nc - 1);
    for (int c = 0; c < nc; c++)
        total += colw[c];
    while (total > wd) { /* shrink the widest text column by one */
        int best = -1;
        for (int c = 0; c < nc; c++)
            if (colw[c] > minw[c] && (best < 0 || colw[c] > colw[best]))
                best = c;
        if (best < 0)
            break;
        colw[best]--;
        total--;
    }
    int used = 0, shown = 0;
    for (int c = 0; c < nc; c++) {
        if (used + colw[c] > wd)
            break;
        used += colw[c] + 2;
        shown++;
    }
    if (shown == 0) {
        shown = 1;
        colw[0] = wd;
    }
    return shown;
}

/* Draw g as a table at (y, x) in h rows (header included) and wd columns: the last rows
 * that fit when tail, else the first. *first / *count receive the rows drawn, the return
 * value the columns left out. */
static int draw_grid(tui *t, WINDOW *w, int y, int x, int h, int wd, const vgrid *g, int tail,
                     int *first, int *count)
{
    *first = *count = 0;
    if (g->ncol == 0 || h < 1 || wd < 1)
        return 0;
    int rows = h - 1 < g->nrow ? h - 1 : g->nrow;
    int r0 = tail ? g->nrow - rows : 0;
    int colw[VP_MAX_COLS];
    int shown = grid_widths(g, r0, r0 + rows, wd, colw);
    int xx = x;
    for (int c = 0; c < shown; c++) {
        put_cell(t, w, y, xx, g->names[c], colw[c], g->rcol[c],
                 tui_attr(t, TUI_R_CMD) | A_UNDERLINE);
        xx += colw[c] + 2;
    }
    for (int r = 0; r < rows; r++) {
        xx = x;
        for (int c = 0; c < shown; c++) {
            put_cell(t, w, y + 1 + r, xx, g->cells[(r0 + r) * g->ncol + c], colw[c], g->rcol[c],
                     A_NORMAL);
            xx += colw[c] + 2;
        }
    }
    *first = r0;
    *count = rows;
    return g->ncol - shown;
}

/* ---- feed, table, chat -------------------------------------------------------------- */

static void draw_feed(tui *t, WINDOW *w, int y, int x, int h, int wd, const vgrid *g)
{
    int rows = h < g->nrow ? h : g->nrow;
    int r0 = g->nrow - rows, nc = g->ncol;
    int metaw[VP_MAX_COLS];
    for (int c = 0; c + 1 < nc; c++) { /* meta columns: aligned over the rows shown */
        metaw[c] = 0;
        for (int r = r0; r < g->nrow; r++) {
            int cw = tui_width(g->cells[r * nc + c], (size_t)-1);
            if (cw > metaw[c])
                metaw[c] = cw;
        }
        if (metaw[c] > 24)
            metaw[c] = 24;
    }
    for (int r = 0; r < rows; r++) {
        const char *const *row = (const char *const *)&g->cells[(r0 + r) * nc];
        int xx = x, yy = y + h - rows + r;
        for (int c = 0; c + 1 < nc && xx < x + wd; c++) {
            if (metaw[c] == 0)
                continue;
            put_cell(t, w, yy, xx, row[c], metaw[c] < x + wd - xx ? metaw[c] : x + wd - xx,
                     g->rcol[c], tui_attr(t, TUI_R_DIM));
            xx += metaw[c] + 2;
        }
        if (xx < x + wd)
            put_cut(t, w, yy, xx, row[nc - 1], x + wd - xx, A_NORMAL);
    }
}

static void draw_chat(tui *t, WINDOW *w, int y, int x, int h, int wd, const vgrid *g)
{
    int row = y + h - 1;
    for (int i = g->nrow - 1; i >= 0 && row >= y; i--) {
        const char *role = g->ncol > 1 ? g->cells[i * g->ncol] : "";
        const char *text = g->cells[i * g->ncol + g->ncol - 1];
        size_t n = strlen(role) + strlen(text) + 4;
        char *s = rlab_malloc(n);
        if (!s)
            return;
        snprintf(s, n, "%s%s%s", role, *role ? ": " : "", text);
        size_t starts[16];
        int ns = 0;
        size_t off = 0, len = strlen(s);
        do {
            starts[ns++] = off;
            size_t f = tui_fit(s + off, wd - 2);
            off += f ? f : 1;
        } while (off < len && ns < 16);
        for (int r = ns - 1; r >= 0 && row >= y; r--) {
            size_t end = r + 1 < ns ? starts[r + 1] : len;
            char seg[1024];
            size_t sl = end - starts[r] < sizeof seg ? end - starts[r] : sizeof seg - 1;
            memcpy(seg, s + starts[r], sl);
            seg[sl] = 0;
            tui_put(w, row--, x + (r ? 2 : 0), seg, wd - (r ? 2 : 0),
                    r == 0 ? tui_attr(t, TUI_R_CMD) : A_NORMAL);
        }
        rlab_free(s);
    }
}

/* The view's source as the plugin declared it: tui_pview keeps a copy cut to its buffer,
 * and a query may be longer. The copy when the plugin is gone. */
static const char *full_source(tui *t, const tui_pview *pv)
{
    const char *dot = strchr(pv->name, '.');
    size_t pl = dot ? (size_t)(dot - pv->name) : 0;
    for (int i = 0; dot && t->host && i < rlab_host_plugin_count(t->host); i++) {
        const rlab_plugin *p = rlab_host_plugin_at(t->host, i);
        if (!p || !p->name || strlen(p->name) != pl || strncmp(p->name, pv->name, pl))
            continue;
        for (const rlab_view_kind *v = p->views; v && v->name; v++)
            if (!strcmp(v->name, dot + 1))
                return v->source ? v->source : "";
    }
    return pv->source;
}

/* Query the view's source into g; 0, or an error in err. */
static int read_source(tui *t, const tui_pview *pv, vgrid *g, rlab_err *err)
{
    const char *src = full_source(t, pv);
    while (isspace((unsigned char)*src))
        src++;
    rlab_db_result *res;
    if (!strncasecmp(src, "select", 6) || !strncasecmp(src, "with", 4)) {
        res = rlab_db_query_table(t->db, src, NULL, 0, 0, err);
    } else if (!strcmp(pv->kind, "chat")) {
        res = rlab_db_query_table(t->db,
                                  "SELECT role, text FROM (SELECT id, role, text FROM dialogues "
                                  "ORDER BY id DESC LIMIT 200) ORDER BY id",
                                  NULL, 0, 0, err);
    } else {
        rlab_db_value p = {.type = RLAB_DB_TEXT, .s = src, .n = strlen(src)};
        res = rlab_db_query_table(t->db,
                                  "SELECT round, agent, kind, payload FROM (SELECT * FROM events "
                                  "WHERE kind = ?1 OR ?1 = '' ORDER BY id DESC LIMIT 200) ORDER "
                                  "BY id",
                                  &p, 1, 0, err);
    }
    if (!res)
        return err->code ? err->code : RLAB_EINVAL;
    int rc = grid_from_db(g, res);
    rlab_db_result_free(res);
    if (rc)
        rlab_errf(err, rc, "out of memory");
    return rc;
}

/* ---- the rows of a feed, table or chat ------------------------------------------------ */

/* The last rows read (UI thread only). While a job runs the main pane is redrawn at every
 * event it reports (a simulation logs every round), so the source is read again only when
 * its rows are older than VP_LIVE_AGE: at most a few reads a second, and the draw after
 * the job ends (nothing running) always reads afresh. */
static struct {
    int valid;
    const char *src; /* the source read (the plugin's or the copy's address) */
    double at;       /* rlab_now() of the read */
    vgrid g;
    rlab_err err; /* the read's error, msg "" when none */
} g_rows;

static const vgrid *source_rows(tui *t, const tui_pview *pv)
{
    const char *src = full_source(t, pv);
    int busy = t->njobs > 0 || atomic_load(&t->task_busy);
    double now = rlab_now();
    if (g_rows.valid && g_rows.src == src && busy && now - g_rows.at < VP_LIVE_AGE)
        return g_rows.err.msg[0] ? NULL : &g_rows.g;
    grid_free(&g_rows.g);
    memset(&g_rows.err, 0, sizeof g_rows.err);
    g_rows.valid = 1;
    g_rows.src = src;
    g_rows.at = now;
    if (read_source(t, pv, &g_rows.g, &g_rows.err)) {
        if (!g_rows.err.msg[0])
            snprintf(g_rows.err.msg, sizeof g_rows.err.msg, "cannot read the view's source");
        return NULL;
    }
    return &g_rows.g;
}

/* ---- card --------------------------------------------------------------------------- */

/* The card's last result (UI thread only; kept until the next card replaces it). */
static struct {
    char line[512];   /* the command line it came from */
    rlab_result *res; /* NULL: none yet */
    double at;        /* rlab_now() of the last run (successful or not) */
    char err[320];    /* the last run's error, "" when it succeeded */
    char when[16];    /* wall-clock time of the result shown: "20:31:07" */
} g_card;

/* Run the card's command if its line changed or its result is old. */
static void card_refresh(tui *t, const char *line)
{
    int same = !strcmp(g_card.line, line);
    double now = rlab_now();
    if (same && now - g_card.at < VP_CARD_AGE)
        return;
    g_card.at = now;
    if (!same) {
        rlab_result_free(g_card.res);
        g_card.res = NULL;
        snprintf(g_card.line, sizeof g_card.line, "%s", line);
    }
    rlab_err err = {0};
    rlab_args *a = NULL;
    if (rlab_host_parse(t->host, line, &a, &err)) {
        snprintf(g_card.err, sizeof g_card.err, "%s", err.msg);
        return;
    }
    const rlab_cmd_ref *ref = rlab_args_cmd(a);
    if (!ref || !ref->cmd || !(ref->cmd->flags & RLAB_CMD_READONLY) ||
        (ref->cmd->flags & RLAB_CMD_JOB)) {
        snprintf(g_card.err, sizeof g_card.err,
                 "%s is not a quick read-only command: a card cannot run it",
                 ref ? ref->full : line);
        rlab_args_free(a);
        return;
    }
    rlab_result *res = NULL;
    int was = t->in_sync;
    t->in_sync = 1; /* its events are not the log's business */
    int rc = rlab_host_run_args(t->host, a, &res, &err);
    t->in_sync = was;
    if (rc) {
        rlab_result_free(res);
        snprintf(g_card.err, sizeof g_card.err, "%s", err.msg);
        return;
    }
    rlab_result_free(g_card.res);
    g_card.res = res;
    g_card.err[0] = 0;
    time_t tt = time(NULL);
    struct tm tm;
    localtime_r(&tt, &tm);
    strftime(g_card.when, sizeof g_card.when, "%H:%M:%S", &tm);
}

/* One "name  value" field, the value wrapped to VP_WRAP_LINES lines; returns rows used. */
static int draw_field(tui *t, WINDOW *w, int y, int x, int maxrows, int wd, int labw,
                      const char *name, const char *value)
{
    put_cut(t, w, y, x, name, labw, tui_attr(t, TUI_R_CMD));
    int vx = x + labw + 2, vw = wd - labw - 2;
    if (vw < 4)
        return 1;
    const char *s = value;
    int rows = 0;
    while (rows < maxrows && rows < VP_WRAP_LINES) {
        size_t len = strlen(s);
        if (rows + 1 == maxrows || rows + 1 == VP_WRAP_LINES || tui_width(s, len) <= vw) {
            put_cut(t, w, y + rows, vx, s, vw, A_NORMAL);
            rows++;
            break;
        }
        size_t f = tui_fit(s, vw);
        size_t cut = f;
        while (cut > 0 && s[cut] != ' ' && s[cut - 1] != ' ') /* break at a space */
            cut--;
        if (cut == 0)
            cut = f ? f : 1;
        char seg[1024];
        size_t sl = cut < sizeof seg ? cut : sizeof seg - 1;
        memcpy(seg, s, sl);
        seg[sl] = 0;
        tui_put(w, y + rows, vx, seg, vw, A_NORMAL);
        rows++;
        s += cut;
        while (*s == ' ')
            s++;
        if (!*s)
            break;
    }
    return rows ? rows : 1;
}

static void draw_card(tui *t, WINDOW *w, int y, int x, int h, int wd, const tui_pview *pv)
{
    const char *src = pv->source;
    while (*src == ' ')
        src++;
    const char *sp = strchr(src, ' ');
    const char *args = sp ? sp : "";
    while (*args == ' ')
        args++;
    if (!*args) {
        const char *dot = strchr(pv->name, '.');
        char hint[256];
        snprintf(hint, sizeof hint,
                 "pick what it shows: `view %s ARGS` runs `%.*s ARGS` (see `help %.*s`)",
                 dot ? dot + 1 : pv->name, (int)(sp ? sp - src : (long)strlen(src)), src,
                 (int)(sp ? sp - src : (long)strlen(src)), src);
        put_cut(t, w, y, x + 2, hint, wd - 2, tui_attr(t, TUI_R_DIM));
        return;
    }
    card_refresh(t, src);
    int row = y, end = y + h;
    if (g_card.err[0]) {
        char m[360];
        snprintf(m, sizeof m, "%s%s", g_card.res ? "not refreshed: " : "", g_card.err);
        put_cut(t, w, row++, x, m, wd, tui_attr(t, g_card.res ? TUI_R_WARN : TUI_R_ERR));
    }
    const rlab_result *res = g_card.res;
    if (!res)
        return;
    /* fields */
    int labw = 0;
    for (int i = 0; i < res->nscalars; i++) {
        int lw = tui_width(res->scalars[i].name, (size_t)-1);
        if (lw > labw)
            labw = lw;
    }
    if (labw > 16)
        labw = 16;
    for (int i = 0; i < res->nscalars && row < end; i++) {
        unsigned char num;
        char *v = res_cell_text(&res->scalars[i].value, &num);
        char *nm = tui_sanitize(res->scalars[i].name, (size_t)-1);
        if (v && nm)
            row += draw_field(t, w, row, x + 1, end - row, wd - 1, labw, nm, v);
        rlab_free(v);
        rlab_free(nm);
    }
    if (res->nscalars == 0) /* no fields: the printed lines */
        for (int i = 0; i < res->nlines && row < end; i++) {
            char *s = tui_sanitize(res->lines[i], (size_t)-1);
            put_cut(t, w, row++, x + 1, s ? s : "", wd - 1, A_NORMAL);
            rlab_free(s);
        }
    /* tables: each gets what it needs while the later ones keep a few rows */
    for (int k = 0; k < res->ntables && row + 2 < end; k++) {
        const rlab_table *tb = res->tables[k];
        int later = 0;
        for (int j = k + 1; j < res->ntables; j++) {
            int need = 3 + (int)(res->tables[j]->nrows < 3 ? res->tables[j]->nrows : 3);
            later += need;
        }
        int need = 3 + (int)(tb->nrows < VP_MAX_ROWS ? tb->nrows : VP_MAX_ROWS);
        int avail = end - row - later;
        int give = need < avail ? need : avail;
        if (give < 4)
            give = end - row < 4 ? end - row : 4;
        vgrid g;
        if (grid_from_table(&g, tb))
            return;
        row++; /* blank line before the heading */
        char head[160];
        snprintf(head, sizeof head, "%s (%lld)", tb->name ? tb->name : "table",
                 (long long)tb->nrows);
        int hw = tui_put(w, row, x + 1, head, wd - 1, tui_attr(t, TUI_R_HEAD));
        int first = 0, count = 0;
        int hidden = draw_grid(t, w, row + 1, x + 3, give - 2, wd - 3, &g, 0, &first, &count);
        if (count < g.nrow || hidden > 0) {
            char m[64];
            if (count < g.nrow && hidden > 0)
                snprintf(m, sizeof m, "  first %d shown, +%d cols", count, hidden);
            else if (count < g.nrow)
                snprintf(m, sizeof m, "  first %d shown", count);
            else
                snprintf(m, sizeof m, "  +%d cols", hidden);
            tui_put(w, row, x + 1 + hw, m, wd - 1 - hw, tui_attr(t, TUI_R_DIM));
        }
        row += 1 + (g.nrow > 0 ? 1 + count : 1);
        grid_free(&g);
    }
}

/* ---- the view ----------------------------------------------------------------------- */

void tui_view_plugin(tui *t, WINDOW *w, int y, int x, int h, int wd)
{
    if (t->pview < 0 || t->pview >= t->npviews) {
        tui_put(w, y, x, "no plugin view (`view` lists them)", wd, tui_attr(t, TUI_R_DIM));
        return;
    }
    const tui_pview *pv = &t->pviews[t->pview];
    char head[256];
    snprintf(head, sizeof head, "%s  (%s, %s)", pv->title, pv->name, pv->kind);
    tui_put_pad(w, y, x, head, wd, tui_attr(t, TUI_R_HEAD));
    if (h < 2)
        return;
    if (!strcmp(pv->kind, "card")) {
        if (t->host)
            draw_card(t, w, y + 1, x, h - 1, wd, pv);
        if (g_card.res && g_card.line[0] && !strcmp(g_card.line, pv->source)) {
            char note[96];
            snprintf(note, sizeof note, "as of %s", g_card.when);
            title_note(t, w, y, x, wd, note);
        }
        return;
    }
    if (!t->db)
        return;
    const vgrid *gp = source_rows(t, pv);
    if (g_rows.err.msg[0]) {
        put_cut(t, w, y + 1, x, g_rows.err.msg, wd, tui_attr(t, TUI_R_ERR));
        return;
    }
    if (!gp || gp->nrow == 0 || gp->ncol == 0) {
        tui_put(w, y + 1, x + 2, "(nothing yet)", wd - 2, tui_attr(t, TUI_R_DIM));
        return;
    }
    if (!strcmp(pv->kind, "table")) {
        int first = 0, count = 0;
        int hidden = draw_grid(t, w, y + 1, x, h - 1, wd, gp, 1, &first, &count);
        char note[96] = "";
        int l = 0;
        if (count < gp->nrow)
            l = snprintf(note, sizeof note, "rows %d-%d of %d", first + 1, first + count, gp->nrow);
        if (hidden > 0)
            snprintf(note + l, sizeof note - (size_t)l, "%s+%d cols", l ? "  " : "", hidden);
        if (note[0])
            title_note(t, w, y, x, wd, note);
    } else if (!strcmp(pv->kind, "chat")) {
        draw_chat(t, w, y + 1, x, h - 1, wd, gp);
    } else {
        draw_feed(t, w, y + 1, x, h - 1, wd, gp);
    }
}
