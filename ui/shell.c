/*
 * ui/shell.c: rlab_shell_run, the loop of the interactive shell (STYLE.md recipe, step 6).
 *
 * One UI thread owns ncurses, readline and the model. It polls the terminal, the wake-up
 * pipe of the event queue and the pipe that stdout/stderr were redirected to; applies
 * queued events to the model; refreshes the sidebar now and then; and redraws the dirty
 * panes with one doupdate per iteration. SIGINT (only from outside: the terminal is raw)
 * and SIGWINCH are turned into a flag plus a byte on the wake-up pipe; no work is done in
 * the handlers.
 */
#include "shell.h"

#include "tui.h"

#include <errno.h>
#include <locale.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t g_sigint;
static int g_load_demo;
static int g_sig_wake = -1;
static struct sigaction g_old_winch, g_old_int;

static void on_signal(int sig)
{
    int saved = errno;
    if (sig == SIGINT)
        g_sigint = 1;
    if (sig == SIGWINCH && g_old_winch.sa_handler != SIG_DFL && g_old_winch.sa_handler != SIG_IGN &&
        !(g_old_winch.sa_flags & SA_SIGINFO))
        g_old_winch.sa_handler(sig); /* ncurses' own: it turns SIGWINCH into KEY_RESIZE */
    if (g_sig_wake >= 0) {
        char b = 2;
        ssize_t r = write(g_sig_wake, &b, 1);
        (void)r;
    }
    errno = saved;
}

static void signals_install(tui *t)
{
    g_sig_wake = t->wake[1];
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGWINCH, &sa, &g_old_winch);
    sigaction(SIGINT, &sa, &g_old_int);
    signal(SIGPIPE, SIG_IGN);
}

static void signals_restore(void)
{
    sigaction(SIGWINCH, &g_old_winch, NULL);
    sigaction(SIGINT, &g_old_int, NULL);
    g_sig_wake = -1;
}

/* Lines written to fds 1 and 2 by anyone (libraries, plugins) go to the log. */
static void read_output(tui *t)
{
    char buf[4096];
    ssize_t n;
    while ((n = read(t->out_pipe[0], buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < n; i++) {
            char c = buf[i];
            if (c == '\n' || t->out_plen + 1 >= sizeof t->out_partial) {
                t->out_partial[t->out_plen] = 0;
                if (t->out_plen > 0)
                    tui_log_add(t, TUI_K_OUT, t->out_partial);
                t->out_plen = 0;
                if (c == '\n')
                    continue;
            }
            t->out_partial[t->out_plen++] = c;
        }
    }
}

static int have_demo(tui *t)
{
    rlab_dataset_brief b; /* loaded only: a recorded demo is regenerated on the task thread */
    return rlab_host_dataset_brief(t->host, "demo", &b) == RLAB_OK && b.state == RLAB_DS_LOADED;
}

static void welcome(tui *t)
{
    tui_log_addf(t, TUI_K_HEAD, "reclab %s  workspace %s", rlab_version(), t->workspace);
    for (int i = 0; i < rlab_host_refusal_count(t->host); i++)
        tui_log_addf(t, TUI_K_WARN, "plugin refused: %s", rlab_host_refusal(t->host, i));
    rlab_dataset_brief *ds = NULL; /* the workspace's datasets that cannot reopen, and why */
    int nds = 0;
    rlab_err err = {0};
    if (rlab_host_datasets(t->host, &ds, &nds, &err) == RLAB_OK)
        for (int i = 0; i < nds; i++)
            if (ds[i].state == RLAB_DS_UNAVAILABLE)
                tui_log_addf(t, TUI_K_WARN, "%s", ds[i].problem);
    rlab_free(ds);
    int nplug = rlab_host_plugin_count(t->host) - 1;
    tui_log_addf(t, TUI_K_INFO,
                 "%d plugin(s), %d command(s). Type `help`, Tab to complete, F1-F5 for views, "
                 "Ctrl-D to quit.",
                 nplug > 0 ? nplug : 0, rlab_host_cmd_count(t->host));
    if (rlab_host_find_cmd(t->host, "train bprmf"))
        tui_log_add(t, TUI_K_INFO, "try: train bprmf data=demo");
}

void rlab_shell_set_demo(int load_in_background) { g_load_demo = load_in_background; }

int rlab_shell_run(rlab_app *app)
{
    tui *t = rlab_calloc(1, sizeof *t);
    if (!t) {
        fprintf(stderr, "reclab: out of memory\n");
        return 1;
    }
    t->app = app;
    t->host = rlab_app_host(app);
    t->ui_thread = pthread_self();
    t->wake[0] = t->wake[1] = -1;
    setlocale(LC_ALL, "");
    rlab_err err = {0};
    if (tui_model_init(t, &err)) {
        fprintf(stderr, "reclab: %s\n", err.msg);
        tui_model_free(t);
        rlab_free(t);
        return 1;
    }
    /* the UI's own store connection: the app's belongs to whoever runs commands */
    rlab_db *adb = rlab_app_db(app);
    const char *path = adb ? rlab_db_path(adb) : NULL;
    t->db = adb;
    if (path && strcmp(path, ":memory:")) {
        rlab_err e2 = {0};
        rlab_db *own = rlab_db_open(path, RLAB_DB_NO_RECOVER, &e2);
        if (own) {
            t->db = own;
            t->own_db = 1;
        }
    }
    const char *base = path ? strrchr(path, '/') : NULL;
    snprintf(t->workspace, sizeof t->workspace, "%s", path ? (base ? base + 1 : path) : "(none)");

    if (tui_screen_open(t, &err)) {
        fprintf(stderr, "reclab: %s\n", err.msg);
        if (t->own_db)
            rlab_db_close(t->db);
        tui_model_free(t);
        rlab_free(t);
        return 1;
    }
    signals_install(t);
    rlab_log_set_sink(tui_log_sink, t);
    rlab_app_set_event_fn(app, tui_host_event, t);
    rlab_host_set_progress_interval(t->host, 0.1);
    if (tui_input_open(t, &err) || tui_task_start(t, &err))
        tui_log_addf(t, TUI_K_ERR, "error: %s", err.msg);
    tui_pviews_refresh(t);
    tui_side_refresh(t);
    welcome(t);
    tui_screen_draw(t);
    if (g_load_demo && !have_demo(t))
        tui_task_submit(t, TUI_TASK_DEMO, NULL, NULL, NULL, "demo world");

    while (!t->quit) {
        struct pollfd fds[3] = {{.fd = STDIN_FILENO, .events = POLLIN},
                                {.fd = t->wake[0], .events = POLLIN},
                                {.fd = t->out_pipe[0], .events = POLLIN}};
        int nfds = t->out_pipe[0] >= 0 ? 3 : 2;
        int busy = t->njobs > 0 || atomic_load(&t->task_busy);
        int timeout = busy ? 250 : 1000;
        int hold = tui_input_timeout(t);
        if (hold >= 0 && hold < timeout)
            timeout = hold;
        int r = poll(fds, (nfds_t)nfds, timeout);
        if (r < 0 && errno != EINTR)
            break;
        if (g_sigint) {
            g_sigint = 0;
            tui_on_ctrl_c(t);
        }
        tui_input_drain(t); /* also picks up KEY_RESIZE after SIGWINCH */
        if (t->quit)
            break;
        tui_apply_events(t);
        if (nfds == 3 && (fds[2].revents & POLLIN))
            read_output(t);
        double now = rlab_now();
        if (now - t->side.refreshed > (busy ? 1.0 : 2.0)) {
            tui_side_refresh(t);
            if (t->view == TUI_VIEW_PLUGIN)
                t->dirty |= TUI_D_MAIN;
        }
        if (busy)
            t->dirty |= TUI_D_STATUS;
        if (busy && t->view == TUI_VIEW_CHART && now - t->chart_refreshed > 0.5) {
            tui_chart_refresh(t);
            t->chart_refreshed = now;
        }
        tui_screen_draw(t);
    }

    rlab_app_set_event_fn(app, NULL, NULL);
    rlab_log_set_sink(NULL, NULL);
    int n = rlab_host_cancel_all(t->host);
    tui_task_stop(t);
    tui_input_close(t);
    signals_restore();
    tui_screen_close(t);
    if (n > 0)
        fprintf(stderr, "reclab: cancelled %d job(s)\n", n);
    if (t->own_db)
        rlab_db_close(t->db);
    tui_model_free(t);
    rlab_free(t);
    return 0;
}
