/*
 * tests/lua/test_app.c: the application context of ui/app.h from C: running chunks and
 * scripts, output capture, interrupting a running chunk from another thread (the shell's
 * Ctrl-C), cancelling a command run from Lua, and lua.run as a real background job on the
 * host's worker thread.
 */
#include "app.h"
#include "harness.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* ---- helpers --------------------------------------------------------------------------- */

typedef struct lines {
    char buf[4096];
    int n;
} lines;

static void collect(const char *line, void *ud)
{
    lines *l = ud;
    size_t used = strlen(l->buf);
    snprintf(l->buf + used, sizeof l->buf - used, "%s|", line);
    l->n++;
}

static rlab_app *open_app(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s.db", rlab_test_tmpdir(), name);
    rlab_app_opts o = {.db_path = path, .no_demo = 1, .quiet = 1};
    rlab_err err = {0};
    rlab_app *app = rlab_app_open(&o, &err);
    CHECK_MSG(app != NULL, "rlab_app_open: %s", err.msg);
    return app;
}

static void pause_ms(int ms)
{
    struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)ms * 1000000L};
    nanosleep(&ts, NULL);
}

/* A chunk running on a thread of its own. */
typedef struct runner {
    rlab_app *app;
    const char *code;
    int rc;
    rlab_err err;
    atomic_int done;
} runner;

static void *run_chunk(void *arg)
{
    runner *r = arg;
    r->rc = rlab_app_lua_exec(r->app, r->code, "=chunk", NULL, NULL, &r->err);
    atomic_store(&r->done, 1);
    return NULL;
}

/* Interrupt until the runner finishes (an interrupt that arrives before the chunk starts is
 * dropped by design, so keep asking), at most ~10 s. Returns 1 when it finished. */
static int interrupt_until_done(runner *r)
{
    for (int i = 0; i < 2000 && !atomic_load(&r->done); i++) {
        rlab_app_lua_interrupt(r->app);
        pause_ms(5);
    }
    return atomic_load(&r->done);
}

/* ---- tests ----------------------------------------------------------------------------- */

/* print() and returned values go to the output callback, one call per line */
static void t_exec_output(void)
{
    rlab_app *app = open_app("exec");
    lines l = {0};
    rlab_err err = {0};
    CHECK_EQ_INT(rlab_app_lua_exec(app, "print('a\\nb', 2)", "=t", collect, &l, &err), RLAB_OK);
    CHECK_MSG(strcmp(l.buf, "a|b\t2|") == 0, "output '%s'", l.buf);
    memset(&l, 0, sizeof l);
    CHECK_EQ_INT(rlab_app_lua_exec(app, "1 + 1", "=t", collect, &l, &err), RLAB_OK);
    CHECK_MSG(strcmp(l.buf, "2|") == 0, "expression value '%s'", l.buf);
    /* the state persists between chunks */
    CHECK_EQ_INT(rlab_app_lua_exec(app, "x = 41", "=t", collect, &l, &err), RLAB_OK);
    memset(&l, 0, sizeof l);
    CHECK_EQ_INT(rlab_app_lua_exec(app, "x + 1", "=t", collect, &l, &err), RLAB_OK);
    CHECK_MSG(strcmp(l.buf, "42|") == 0, "persistent global '%s'", l.buf);
    rlab_app_close(app);
}

static void t_exec_errors(void)
{
    rlab_app *app = open_app("errs");
    rlab_err err = {0};
    CHECK_EQ_INT(rlab_app_lua_exec(app, "error('boom')", "=t", NULL, NULL, &err), RLAB_EINVAL);
    CHECK_MSG(strcmp(err.msg, "t:1: boom") == 0, "message '%s'", err.msg);
    CHECK_STR_CONTAINS(rlab_app_last_error(app), "stack traceback");
    CHECK_EQ_INT(rlab_app_lua_exec(app, "x = = 1", "=t", NULL, NULL, &err), RLAB_EINVAL);
    CHECK_STR_CONTAINS(err.msg, "unexpected symbol");
    /* the error of a command keeps its prefix */
    CHECK_EQ_INT(rlab_app_lua_exec(app, "reclab.lua.run{cod = 1}", "=t", NULL, NULL, &err),
                 RLAB_EINVAL);
    CHECK_STR_CONTAINS(err.msg, "lua.run: unknown argument 'cod'");
    rlab_app_close(app);
}

/* a script gets arg[0..n] and ... */
static void t_file_args(void)
{
    rlab_app *app = open_app("file");
    char path[512];
    snprintf(path, sizeof path, "%s/s.lua", rlab_test_tmpdir());
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    fputs("local a, b = ...\nprint(#arg, arg[1], arg[2], a, b, arg[0] ~= nil)\n", f);
    fclose(f);
    char a0[] = "x", a1[] = "yz";
    char *argv[] = {a0, a1};
    lines l = {0};
    rlab_err err = {0};
    CHECK_EQ_INT(rlab_app_lua_file(app, path, 2, argv, collect, &l, &err), RLAB_OK);
    CHECK_MSG(strcmp(l.buf, "2\tx\tyz\tx\tyz\ttrue|") == 0, "output '%s'", l.buf);
    CHECK_EQ_INT(rlab_app_lua_file(app, "/nonexistent/s.lua", 0, NULL, NULL, NULL, &err), RLAB_EIO);
    CHECK_STR_CONTAINS(err.msg, "cannot open");
    rlab_app_close(app);
}

/* an endless Lua loop is stopped by the hook, and the state stays usable */
static void t_interrupt_loop(void)
{
    rlab_app *app = open_app("intr");
    runner r = {.app = app, .code = "local i = 0 while true do i = i + 1 end"};
    pthread_t th;
    CHECK(pthread_create(&th, NULL, run_chunk, &r) == 0);
    int finished = interrupt_until_done(&r);
    if (!finished) {
        /* never leave a thread spinning on a state we free */
        rlab_test_fail(__FILE__, __LINE__, "the chunk did not stop");
        return;
    }
    pthread_join(th, NULL);
    CHECK_EQ_INT(r.rc, RLAB_ECANCELED);
    CHECK_STR_CONTAINS(r.err.msg, "interrupted");
    /* the next chunk runs normally: no hook or flag left behind */
    lines l = {0};
    rlab_err err = {0};
    CHECK_EQ_INT(rlab_app_lua_exec(app, "local s = 0 for i = 1, 100000 do s = s + i end return s",
                                   "=t", collect, &l, &err),
                 RLAB_OK);
    CHECK_MSG(strcmp(l.buf, "5000050000|") == 0, "after interrupt '%s'", l.buf);
    /* an interrupt while idle is dropped at the start of the next chunk */
    rlab_app_lua_interrupt(app);
    CHECK_EQ_INT(rlab_app_lua_exec(app, "return 1", "=t", NULL, NULL, &err), RLAB_OK);
    rlab_app_close(app);
}

/* Ctrl-C during a long plugin command run from Lua cancels the command: run `interrupted` */
static void t_interrupt_command(void)
{
    rlab_app *app = open_app("intrcmd");
    rlab_err err = {0};
    lines l = {0};
    CHECK_EQ_INT(rlab_app_lua_exec(app, "return reclab.baselines ~= nil", "=t", collect, &l, &err),
                 RLAB_OK);
    if (strcmp(l.buf, "true|") != 0) {
        rlab_app_close(app);
        rlab_test_skip("baselines plugin not built");
        return;
    }
    CHECK_EQ_INT(rlab_app_lua_exec(app,
                                   "reclab.world{name = 'w', n_users = 300, n_items = 200,"
                                   " n_inter = 6000, avg_follow = 0}",
                                   "=t", NULL, NULL, &err),
                 RLAB_OK);
    runner r = {.app = app,
                .code = "reclab.train{'bprmf', data = 'w', epochs = 100000,"
                        " eval_every = 0}"};
    pthread_t th;
    CHECK(pthread_create(&th, NULL, run_chunk, &r) == 0);
    int finished = interrupt_until_done(&r);
    if (!finished) {
        rlab_test_fail(__FILE__, __LINE__, "the command did not stop");
        return;
    }
    pthread_join(th, NULL);
    CHECK_MSG(r.rc == RLAB_ECANCELED, "rc %d: %s", r.rc, r.err.msg);
    memset(&l, 0, sizeof l);
    CHECK_EQ_INT(rlab_app_lua_exec(app,
                                   "local r = reclab.db.query([[SELECT status FROM runs WHERE"
                                   " name = 'train bprmf' ORDER BY id DESC LIMIT 1]])[1]"
                                   " return r and r.status",
                                   "=t", collect, &l, &err),
                 RLAB_OK);
    CHECK_MSG(strcmp(l.buf, "interrupted|") == 0, "run status '%s'", l.buf);
    rlab_app_close(app);
}

/* lua.run submitted as a background job: the error fails the run, from the worker thread */
static void t_job_worker(void)
{
    rlab_app *app = open_app("job");
    rlab_host *h = rlab_app_host(app);
    rlab_err err = {0};
    int job = 0;
    CHECK_EQ_INT(rlab_host_submit(h,
                                  "lua.run code=\"reclab.job.metric(1, 'train', 'loss', 2)"
                                  " error('worker boom')\"",
                                  &job, &err),
                 RLAB_OK);
    int rc = rlab_host_wait(h, job, NULL, &err);
    CHECK_EQ_INT(rc, RLAB_EINVAL);
    CHECK_MSG(strcmp(err.msg, "lua.run: job:1: worker boom") == 0, "message '%s'", err.msg);
    rlab_db_result *r = rlab_db_query_table(
        rlab_app_db(app),
        "SELECT r.status, r.error, (SELECT count(*) FROM metrics m WHERE m.run_id = r.id)"
        " FROM runs r WHERE r.name = 'lua.run' ORDER BY r.id DESC LIMIT 1",
        NULL, 0, 0, &err);
    CHECK_MSG(r && r->nrow == 1, "query: %s", err.msg);
    CHECK_MSG(strcmp(rlab_db_result_cell(r, 0, 0)->s, "failed") == 0, "status %s",
              rlab_db_result_cell(r, 0, 0)->s);
    CHECK_STR_CONTAINS(rlab_db_result_cell(r, 0, 1)->s, "worker boom");
    CHECK_EQ_INT((int)rlab_db_result_cell(r, 0, 2)->i, 1);
    rlab_db_result_free(r);
    /* and a good one */
    CHECK_EQ_INT(rlab_host_submit(h, "lua.run code='print(6 * 7)'", &job, &err), RLAB_OK);
    rlab_result *res = NULL;
    CHECK_EQ_INT(rlab_host_wait(h, job, &res, &err), RLAB_OK);
    CHECK(res && res->nlines == 1 && strcmp(res->lines[0], "42") == 0);
    rlab_result_free(res);
    rlab_app_close(app);
}

/* shell-form lines through the app, output as text */
static void t_exec_line(void)
{
    rlab_app *app = open_app("line");
    lines l = {0};
    rlab_err err = {0};
    CHECK_EQ_INT(rlab_app_exec_line(app, "lua.run code='print(1)'", collect, &l, &err), RLAB_OK);
    CHECK_MSG(strcmp(l.buf, "1|") == 0, "output '%s'", l.buf);
    CHECK_EQ_INT(rlab_app_exec_line(app, "lua.run cod=1", collect, &l, &err), RLAB_EINVAL);
    CHECK_STR_CONTAINS(err.msg, "lua.run: unknown argument 'cod'");
    CHECK_EQ_INT(rlab_app_exec_line(app, "nosuch", collect, &l, &err), RLAB_ENOTFOUND);
    rlab_app_close(app);
}

static const rlab_test tests[] = {
    {"lua.app.exec.1", t_exec_output},
    {"lua.app.exec.2", t_exec_errors},
    {"lua.app.file.1", t_file_args},
    {"lua.app.interrupt.1", t_interrupt_loop},
    {"lua.app.interrupt.2", t_interrupt_command},
    {"lua.app.job.1", t_job_worker},
    {"lua.app.line.1", t_exec_line},
    {NULL, NULL},
};

int main(int argc, char **argv) { return rlab_test_main(argc, argv, tests); }
