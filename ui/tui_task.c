/*
 * ui/tui_task.c: the shell's task thread. Lua chunks (`lua`, `=expr`, `run FILE.lua`) and
 * the demo world run here (datasets load through the host's `load` command, on its side
 * worker, which records them with the recipe that reopens them), one at a time in FIFO order,
 * so the UI thread stays free to draw and to read Ctrl-C, which interrupts a chunk through
 * rlab_app_lua_interrupt (a Lua count hook, as lua.c). Output lines and the final status come
 * back as queued events.
 */
#include "tui.h"

#include <stdio.h>
#include <string.h>

static void out_line(const char *line, void *ud) { tui_post_line(ud, TUI_K_OUT, line); }

static void post_dataset(tui *t, const char *name);

static void task_free(tui_task *k)
{
    if (!k)
        return;
    rlab_free(k->a);
    rlab_free(k->b);
    rlab_free(k->c);
    rlab_free(k->title);
    rlab_free(k);
}

static void post_dataset(tui *t, const char *name)
{
    tui_ev *e = rlab_calloc(1, sizeof *e);
    if (!e)
        return;
    e->type = TUI_EV_DATASET;
    e->text = rlab_strdup(name);
    tui_post(t, e);
}

/* The demo world, generated here so the first frame does not wait for it (~0.2 s). */
static int run_demo(tui *t, rlab_err *err)
{
    int rc = rlab_host_make_world(t->host, NULL, NULL, "demo", NULL, err);
    if (rc == RLAB_OK)
        post_dataset(t, "demo");
    return rc;
}

static void *task_main(void *arg)
{
    tui *t = arg;
    for (;;) {
        pthread_mutex_lock(&t->task_mu);
        while (!t->t_head && !t->task_stop)
            pthread_cond_wait(&t->task_cv, &t->task_mu);
        if (!t->t_head) {
            pthread_mutex_unlock(&t->task_mu);
            break;
        }
        tui_task *k = t->t_head;
        t->t_head = k->next;
        if (!t->t_head)
            t->t_tail = NULL;
        t->ntasks_queued--;
        snprintf(t->task_title, sizeof t->task_title, "%s", k->title ? k->title : "task");
        t->task_started_at = rlab_now();
        atomic_store(&t->task_busy, 1);
        int stopping = t->task_stop;
        pthread_mutex_unlock(&t->task_mu);

        rlab_err err = {0};
        int rc = RLAB_ECANCELED;
        if (!stopping) {
            switch (k->kind) {
            case TUI_TASK_LUA:
                rc = rlab_app_lua_exec(t->app, k->a, k->b, out_line, t, &err);
                break;
            case TUI_TASK_LUA_FILE:
                rc = rlab_app_lua_file(t->app, k->a, 0, NULL, out_line, t, &err);
                break;
            case TUI_TASK_DEMO:
                rc = run_demo(t, &err);
                break;
            }
        }
        tui_ev *e = rlab_calloc(1, sizeof *e);
        if (e) {
            e->type = TUI_EV_TASK_DONE;
            e->status = rc;
            e->text = rlab_strdup(rc == RLAB_ECANCELED && !err.msg[0] ? "interrupted" : err.msg);
        }
        atomic_store(&t->task_busy, 0);
        tui_post(t, e);
        task_free(k);
    }
    return NULL;
}

int tui_task_start(tui *t, rlab_err *err)
{
    pthread_mutex_init(&t->task_mu, NULL);
    pthread_cond_init(&t->task_cv, NULL);
    if (pthread_create(&t->task_thread, NULL, task_main, t)) {
        pthread_cond_destroy(&t->task_cv);
        pthread_mutex_destroy(&t->task_mu);
        return rlab_errf(err, RLAB_EIO, "cannot start the task thread");
    }
    t->task_started = 1;
    return RLAB_OK;
}

void tui_task_stop(tui *t)
{
    if (!t->task_started)
        return;
    pthread_mutex_lock(&t->task_mu);
    t->task_stop = 1;
    tui_task *k = t->t_head; /* drop what has not started */
    t->t_head = t->t_tail = NULL;
    pthread_cond_signal(&t->task_cv);
    pthread_mutex_unlock(&t->task_mu);
    while (k) {
        tui_task *n = k->next;
        task_free(k);
        k = n;
    }
    if (atomic_load(&t->task_busy))
        rlab_app_lua_interrupt(t->app);
    pthread_join(t->task_thread, NULL);
    pthread_cond_destroy(&t->task_cv);
    pthread_mutex_destroy(&t->task_mu);
    t->task_started = 0;
}

int tui_task_submit(tui *t, tui_task_kind kind, char *a, char *b, char *c, const char *title)
{
    tui_task *k = rlab_calloc(1, sizeof *k);
    if (!k || (!a && kind != TUI_TASK_DEMO) || !t->task_started) {
        rlab_free(a);
        rlab_free(b);
        rlab_free(c);
        rlab_free(k);
        tui_log_add(t, TUI_K_ERR, "error: cannot start the task (out of memory)");
        return RLAB_ENOMEM;
    }
    k->kind = kind;
    k->a = a;
    k->b = b;
    k->c = c;
    k->title = rlab_strdup(title ? title : "task");
    pthread_mutex_lock(&t->task_mu);
    int ahead = t->ntasks_queued + atomic_load(&t->task_busy);
    if (t->t_tail)
        t->t_tail->next = k;
    else
        t->t_head = k;
    t->t_tail = k;
    t->ntasks_queued++;
    pthread_cond_signal(&t->task_cv);
    pthread_mutex_unlock(&t->task_mu);
    if (ahead > 0) /* k may be gone already: only the count is used */
        tui_log_addf(t, TUI_K_INFO, "queued behind %d Lua/load task(s)", ahead);
    t->dirty |= TUI_D_STATUS | TUI_D_TITLE;
    return RLAB_OK;
}
