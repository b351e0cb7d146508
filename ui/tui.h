/*
 * ui/tui.h: private interface of the ncurses shell (ui/shell.h is the public one).
 *
 * The shell is split the way tmux and htop split theirs:
 *   - the model (tui_model.c): everything the screen shows (log lines, jobs and their
 *     progress, metric series, the table, the sidebar lists), changed only on the UI thread
 *     by applying queued events and by commands;
 *   - the views (view_*.c, tui_screen.c): draw one pane from the model and never change it;
 *   - the input (input.c): keys read by ncurses, UI keys decoded by a small prefix table,
 *     everything else fed byte by byte to readline's callback interface; completion and
 *     history;
 *   - the loop and the commands (shell.c, shell_cmds.c, tui_task.c).
 *
 * Threads. One UI thread owns ncurses, readline, the model and the UI's store connection.
 * Other threads (the host's workers, the shell's task thread running Lua chunks and
 * the demo world, anything writing to stdout/stderr or rlab_log) only call the tui_post_*
 * functions, which push onto a mutex-protected queue and write one byte to a wake-up pipe
 * that the loop polls.
 */
#ifndef RLAB_UI_TUI_H
#define RLAB_UI_TUI_H

#include "app.h"

#include <curses.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* ---- sizes -------------------------------------------------------------------------- */
enum {
    TUI_LOG_CAP = 4000,   /* log lines kept */
    TUI_MAX_JOBS = 64,    /* jobs tracked at once */
    TUI_MAX_SERIES = 256, /* metric series kept (live and loaded) */
    TUI_CHART_RUNS = 8,   /* runs drawn in one chart */
    TUI_SIDE_RUNS = 40,   /* runs listed in the sidebar */
    TUI_MIN_W = 40,       /* below this the screen shows a "too small" note */
    TUI_MIN_H = 10,
};

/* Dirty flags: which panes need drawing. */
enum {
    TUI_D_TITLE = 1u << 0,
    TUI_D_SIDE = 1u << 1,
    TUI_D_MAIN = 1u << 2,
    TUI_D_STATUS = 1u << 3,
    TUI_D_CMD = 1u << 4,
    TUI_D_ALL = 0x1fu,
};

/* What the main pane shows. */
typedef enum tui_view {
    TUI_VIEW_LOG = 0,
    TUI_VIEW_TABLE,
    TUI_VIEW_CHART,
    TUI_VIEW_PLUGIN,
} tui_view;

/* Kinds of log line (colour and prefix). */
typedef enum tui_kind {
    TUI_K_OUT = 0, /* command output */
    TUI_K_INFO,    /* the shell's own notes (dim) */
    TUI_K_CMD,     /* echo of an entered line */
    TUI_K_OK,      /* a job finished */
    TUI_K_WARN,    /* interrupted, warnings */
    TUI_K_ERR,     /* one clear error line */
    TUI_K_HEAD,    /* a heading in help output */
} tui_kind;
/* OR'ed into a kind: the line is a row of an aligned table (a result table echoed into the
 * log): cut at the pane's edge with a marker instead of wrapped. */
#define TUI_K_ROW 0x100

/* Colour roles (tui_attr). */
typedef enum tui_role {
    TUI_R_NORMAL = 0,
    TUI_R_TITLE,
    TUI_R_HEAD,
    TUI_R_DIM,
    TUI_R_ERR,
    TUI_R_OK,
    TUI_R_WARN,
    TUI_R_BAR,
    TUI_R_CMD,
    TUI_R_SEL,
    TUI_R_SERIES0, /* .. TUI_R_SERIES0 + 5 */
} tui_role;

/* ---- events (any thread -> UI thread) ------------------------------------------------- */
enum {
    TUI_EV_LINE = 100, /* text with kind: Lua output, stderr, rlab_log */
    TUI_EV_TASK_DONE,  /* the task thread finished: status, text = message */
    TUI_EV_DATASET,    /* a dataset was added (text = name, cmd = source, label = format;
                          step/total/run_id = users/items/interactions): record it */
};

typedef struct tui_ev {
    struct tui_ev *next;
    int type; /* rlab_event_type or TUI_EV_* */
    int job_id, status, kind, nmetrics;
    int outer_job; /* STARTED: the job that started this one (a lua.run script), 0 = none */
    int64_t run_id, step, total;
    double elapsed;
    char *cmd, *label, *text;
    char (*mnames)[48];
    double *mvals;
} tui_ev;

/* ---- the model ---------------------------------------------------------------------- */
typedef struct tui_line {
    double wall; /* wall-clock seconds */
    int kind;    /* tui_kind */
    char *text;  /* sanitised UTF-8 */
} tui_line;

typedef struct tui_log {
    tui_line *lines; /* ring of TUI_LOG_CAP */
    int head, n;     /* oldest at head */
    int scroll;      /* lines scrolled back from the newest */
} tui_log;

typedef struct tui_job {
    int id;
    int state; /* rlab_job_state */
    int mine;  /* submitted by the shell (collect with rlab_host_wait) */
    int outer; /* a command a tracked job (a lua.run script) called: that job's id, else 0 */
    char cmd[144];
    char label[32];
    int64_t run_id, step, total;
    double queued_at, started_at, last_at; /* rlab_now() */
    double rate;                           /* seconds per step, smoothed */
    char last_metric[64];                  /* "ndcg@10 .0831" */
} tui_job;

/* One metric curve of one run (key = run id, or -job id for a run without store row). */
typedef struct tui_series {
    int64_t key;
    char metric[48];
    int n, cap;
    double *x, *y;
    int live; /* points came from progress events */
} tui_series;

typedef struct tui_chart {
    char metric[48]; /* the header; each series' metric is kmetric[k] ("" = this one) */
    char xlabel[32];
    int64_t keys[TUI_CHART_RUNS];
    char labels[TUI_CHART_RUNS][40];
    char kmetric[TUI_CHART_RUNS][48]; /* the metric of key k when it differs ("" = metric):
                                         `chart m1,m2,... RUN` draws several metrics of a run */
    int nkeys;
    int follow; /* follows the running job: metric picked from its progress */
} tui_chart;

/* The metric series k of the chart draws. */
static inline const char *tui_chart_metric(const tui_chart *ch, int k)
{
    return ch->kmetric[k][0] ? ch->kmetric[k] : ch->metric;
}

/* A table of text cells with numeric shadows for sorting (runs, compare, sql results). */
typedef struct tui_table {
    char title[160];
    int ncol, nrow;
    char **cols;      /* [ncol] */
    char **cells;     /* [nrow * ncol], NULL = empty */
    double *num;      /* [nrow * ncol], NAN when not a number */
    int sort_col;     /* -1 = insertion order */
    int sort_desc;    /* 1 = largest first */
    int kind;         /* 0 generic, 1 runs (refreshed when runs change), 2 compare */
    char source[256]; /* runs: the `runs ...` line it came from (re-run to refresh) */
    int top;          /* first row shown */
    int left;         /* first scrolled column shown (column 0 always shows): 1.. */
    int last_shown;   /* the view's last drawn column (-1 none): Right scrolls when hidden */
} tui_table;

typedef struct tui_side_ds {
    char name[64];
    int64_t users, items; /* dialogues: conversations, mentioned items */
    int dialogues;
} tui_side_ds;

typedef struct tui_side_run {
    int64_t id;
    char label[48];
    char status[16];
    double value; /* the key metric's (tui_side.key_metric) */
    int has_value;
} tui_side_run;

typedef struct tui_side {
    tui_side_ds ds[16];
    int nds;
    char models[32][64];
    int nmodels;
    tui_side_run runs[TUI_SIDE_RUNS];
    int nruns;
    char key_metric[64]; /* "test.ndcg@10": the runs' value column (`set key-metric`) */
    char plugins[32][32];
    int nplugins;
    double refreshed; /* rlab_now() of the last refresh */
} tui_side;

/* A plugin view (rlab_view_kind) the ui can show. */
typedef struct tui_pview {
    char name[96]; /* "plugin.view" */
    char title[96];
    char kind[16]; /* "feed", "chat", "table", "chart" */
    char source[512];
} tui_pview;

typedef struct tui tui;

/* The task thread's work item. */
typedef enum tui_task_kind {
    TUI_TASK_LUA = 1,  /* a: code, b: chunk name */
    TUI_TASK_LUA_FILE, /* a: path */
    TUI_TASK_DEMO,     /* generate the demo world as dataset "demo" */
} tui_task_kind;

typedef struct tui_task {
    struct tui_task *next;
    tui_task_kind kind;
    char *a, *b, *c;
    char *title; /* shown in the status line */
} tui_task;

struct tui {
    rlab_app *app;
    rlab_host *host;
    rlab_db *db; /* the UI thread's own connection (or the app's for ":memory:") */
    int own_db;
    char workspace[256];

    /* terminal */
    SCREEN *scr;
    FILE *tty_out, *tty_in;
    int saved_out, saved_err; /* dups of fds 1 and 2 before redirection (-1: none) */
    int out_pipe[2];          /* fds 1 and 2 are redirected here, read into the log */
    char out_partial[1024];
    size_t out_plen;
    int color, utf8, mono;
    int W, H, side_cols, main_x, main_w, body_h;
    WINDOW *w_title, *w_side, *w_main, *w_status, *w_cmd;
    unsigned dirty;
    int quit;
    int too_small;
    /* talk mode: each typed line continues this command prefix (a result's `continue`, e.g.
     * "crs.chat session=3 text="), with its own prompt; empty: the command prompt */
    char talk[192];
    char talk_prompt[64];

    /* events */
    pthread_t ui_thread;
    int in_sync; /* the UI thread runs a command itself: its own events are not queued */
    pthread_mutex_t mu;
    tui_ev *q_head, *q_tail;
    int wake[2];

    /* model */
    tui_log log;
    tui_view view;
    int pview; /* index into pviews for TUI_VIEW_PLUGIN */
    tui_pview pviews[32];
    int npviews;
    tui_job jobs[TUI_MAX_JOBS];
    int njobs;
    tui_series series[TUI_MAX_SERIES];
    int nseries;
    tui_chart chart;
    tui_table table;
    tui_side side;
    char last_error[256];
    double chart_refreshed; /* rlab_now() of the last tui_chart_refresh */

    /* completion candidates drawn under the main pane until the next key */
    char **comp;
    int ncomp;

    /* task thread (Lua chunks, the demo world) */
    pthread_t task_thread;
    int task_started;
    pthread_mutex_t task_mu;
    pthread_cond_t task_cv;
    tui_task *t_head, *t_tail;
    int task_stop;
    atomic_int task_busy;
    char task_title[128];
    double task_started_at;
    int ntasks_queued;
};

/* ---- tui_model.c -------------------------------------------------------------------- */
int tui_model_init(tui *t, rlab_err *err);
void tui_model_free(tui *t);
/* Thread-safe posting (any thread). */
void tui_post(tui *t, tui_ev *ev);
void tui_ev_free(tui_ev *e); /* an event never posted */
void tui_post_line(tui *t, int kind, const char *text);
void tui_host_event(const rlab_event *ev, void *ud); /* the host's event callback */
void tui_log_sink(int level, const char *msg, void *ud);
/* UI thread: apply every queued event; returns how many. */
int tui_apply_events(tui *t);
/* UI thread: append one log line (sanitised; embedded newlines split it). */
void tui_log_add(tui *t, int kind, const char *text);
void tui_log_addf(tui *t, int kind, const char *fmt, ...) RLAB_PRINTF(3, 4);
/* Refresh the sidebar lists (datasets, models, runs, plugins) from the host and store. */
void tui_side_refresh(tui *t);
/* Series of (key, metric), created when create; NULL when absent or full. */
tui_series *tui_series_get(tui *t, int64_t key, const char *metric, int create);
/* Replace a series' points with the store's rows of run `run` (metric spec "name" or
 * "split.name"); returns the number of points (0 leaves a live series alone). */
int tui_series_load(tui *t, int64_t run, const char *metric);
/* Reload the charted runs' series from the store (complete even when progress reports were
 * rate-limited); while following a job, also pick the best metric the run has recorded. */
void tui_chart_refresh(tui *t);
/* The running job (first RUNNING), NULL when idle; and the number queued. */
tui_job *tui_running_job(tui *t);
int tui_queued_jobs(tui *t);
tui_job *tui_job_find(tui *t, int id);
/* Track a job the shell submitted (its result is collected when it ends). */
void tui_job_track(tui *t, int id, const char *cmd);
/* Tables. */
void tui_table_clear(tui_table *tb);
/* A result table into the table view (what: the line or command it came from, for the
 * title). */
void tui_table_fill(tui *t, const char *what, const rlab_table *rt);
/* A command's result table into the table view and, when small, row by row into the log. */
void tui_result_table(tui *t, const char *what, const rlab_table *rt);
/* A command's result in the log and the views: its lines (unless lines_shown: a job's came
 * as events), scalars, tables; and for the table commands (runs, compare, sql) the table
 * view. what: the line typed (or the command of a job); cmd: the command's full name. */
void tui_show_result(tui *t, const char *what, const char *cmd, const rlab_result *res,
                     int lines_shown);
int tui_table_set_cols(tui_table *tb, int ncol, const char *const *cols);
int tui_table_add_row(tui_table *tb, const char *const *cells);
void tui_table_sort(tui_table *tb);
/* Horizontal scrolling of the table view: by columns (dir -1 / +1), to the first (Home:
 * dir -2) or last (End: +2) columns; the sorted column is scrolled into view by a sort. */
void tui_table_hscroll(tui_table *tb, int dir);
int tui_table_col(const tui_table *tb, const char *name);
/* The runs table of the table view from the host's `runs` command (line: "runs ..." as
 * typed; NULL: "runs"), run quietly on this thread: the view's sort order is kept. */
int tui_table_runs(tui *t, const char *line, rlab_err *err);
/* The newest running job (Ctrl-C cancels it: the query just typed, not the training behind
 * it; for a command a script called, the script's job), NULL when idle. */
tui_job *tui_newest_job(tui *t);
/* The running command that job j called (a lua.run script's train), NULL when none. */
tui_job *tui_inner_job(tui *t, const tui_job *j);
/* Collect the plugin views from the host. */
void tui_pviews_refresh(tui *t);
void tui_comp_clear(tui *t);

/* ---- tui_text.c --------------------------------------------------------------------- */
/* Display width of UTF-8 text as tui_put draws it (wcwidth; controls as ^X = 2, invalid
 * bytes 1, tabs 1). n bytes, or up to NUL when n == (size_t)-1. */
int tui_width(const char *s, size_t n);
/* Draw s at (y, x) in at most maxw columns, never splitting a wide character; returns the
 * columns used. Control characters are drawn as ^X, invalid bytes as '?'. */
int tui_put(WINDOW *w, int y, int x, const char *s, int maxw, attr_t attr);
/* tui_put, then spaces up to maxw. */
void tui_put_pad(WINDOW *w, int y, int x, const char *s, int maxw, attr_t attr);
/* Byte length of the longest prefix of s that fits in maxw columns. */
size_t tui_fit(const char *s, int maxw);
/* Copy text replacing control characters (except none) by spaces and invalid UTF-8 by '?'
 * into a new rlab_malloc'd string. */
char *tui_sanitize(const char *s, size_t n);
/* Format a number compactly (".0831", "12.4", "1.2e+06"). */
void tui_fmt_num(double v, char *buf, size_t cap);
/* Horizontal line of n cells from (y, x). */
void tui_hline(tui *t, WINDOW *w, int y, int x, int n, attr_t attr);
attr_t tui_attr(const tui *t, tui_role r);

/* ---- tui_screen.c ------------------------------------------------------------------- */
int tui_screen_open(tui *t, rlab_err *err);
void tui_screen_close(tui *t);
void tui_screen_layout(tui *t); /* after a resize: recreate the windows */
void tui_screen_draw(tui *t);   /* draw dirty panes, command line last, doupdate */

/* ---- views -------------------------------------------------------------------------- */
void tui_view_log(tui *t, WINDOW *w, int y, int x, int h, int wd);
void tui_view_table(tui *t, WINDOW *w, int y, int x, int h, int wd);
void tui_view_chart(tui *t, WINDOW *w, int y, int x, int h, int wd);
void tui_view_plugin(tui *t, WINDOW *w, int y, int x, int h, int wd);
void tui_view_sidebar(tui *t, WINDOW *w, int h, int wd);
void tui_view_status(tui *t, WINDOW *w, int wd);
void tui_view_title(tui *t, WINDOW *w, int wd);

/* ---- input.c ------------------------------------------------------------------------ */
int tui_input_open(tui *t, rlab_err *err);
void tui_input_close(tui *t);
/* Read every available key and handle it; returns 1 when something happened. */
int tui_input_drain(tui *t);
/* Milliseconds until a held escape sequence should be flushed, -1 when none. */
int tui_input_timeout(tui *t);
void tui_input_draw(tui *t); /* draw the command line into w_cmd */
void tui_on_ctrl_c(tui *t);

/* ---- shell_cmds.c ------------------------------------------------------------------- */
/* Run one entered line (shell command, plugin command or =expr). */
void tui_dispatch(tui *t, const char *line);
/* Talk mode: prefix NULL or "" leaves it. A line typed in it becomes PREFIX"LINE" (quoted) when
 * the prefix ends in '=', else PREFIX LINE; /CMD runs CMD; an empty line leaves. */
void tui_talk_set(tui *t, const char *prefix);
void tui_talk_line(tui *t, const char *line);
/* Completion candidates for the last word of line (text before the cursor): a
 * NULL-terminated array of whole words (rlab_strv_free), NULL when none. */
char **tui_complete(tui *t, const char *line);
/* The shell's own command names, NULL-terminated. */
const char *const *tui_shell_cmd_names(void);

/* ---- tui_task.c --------------------------------------------------------------------- */
int tui_task_start(tui *t, rlab_err *err);
void tui_task_stop(tui *t);
/* Queue work for the task thread (takes the strings: rlab_strdup'd or NULL). */
int tui_task_submit(tui *t, tui_task_kind kind, char *a, char *b, char *c, const char *title);

#endif /* RLAB_UI_TUI_H */
