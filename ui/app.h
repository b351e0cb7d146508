/*
 * ui/app.h: the application context shared by batch mode (ui/batch.c) and the ncurses shell
 * (ui/shell*.c). One rlab_app owns the session store, the plugin host and the session Lua
 * state (with the `reclab` module preloaded).
 *
 * Usage:
 *
 *     rlab_err err = {0};
 *     rlab_app_opts o = {.db_path = "run.db"};
 *     rlab_app *app = rlab_app_open(&o, &err);
 *     if (!app) { fprintf(stderr, "reclab: %s\n", err.msg); return 1; }
 *     if (rlab_app_lua_exec(app, "print(#reclab.datasets.list())", "=cmd", put, NULL, &err))
 *         fprintf(stderr, "%s\n", err.msg);
 *     rlab_app_close(app);
 *
 * Threading: the host and db are usable from the UI thread; the Lua state runs one chunk at a
 * time (rlab_app_lua_exec / _file may be called from a worker thread while the UI thread only
 * calls rlab_app_lua_interrupt).
 */
#ifndef RLAB_UI_APP_H
#define RLAB_UI_APP_H

#include "base/base.h"
#include "host/host.h"
#include "store/store.h"

typedef struct rlab_app_opts {
    const char *db_path; /* default "./reclab.db" (or $RECLAB_DB when set) */
    int no_demo;         /* do not register the demo world as dataset "demo" */
    int quiet;           /* no progress lines from synchronous jobs on stderr (the shell sets
                            it: it shows events through rlab_app_set_event_fn instead) */
    int sandbox;         /* --sandbox: confine file access to the folder of db_path (Lua
                            libraries and binding, command PATH arguments; lua/README) and
                            load Lua source only as text */
    int no_store;        /* hold no session store (MPI ranks > 0: rank 0 alone writes it);
                            runs and metrics are then not recorded */
} rlab_app_opts;

/* holds rlab_host *, rlab_db *, lua_State * (session Lua state) */
typedef struct rlab_app rlab_app;

/* Output callback: one line (no trailing newline) per call. */
typedef void (*rlab_app_out)(const char *line, void *ud);

/* Opens the store, the host, attaches the store, loads plugins, creates the Lua state with the
 * reclab module preloaded and registers the demo world as dataset "demo" unless o->no_demo.
 * o may be NULL (all defaults). Returns NULL and fills err on failure. The caller frees with
 * rlab_app_close. */
rlab_app *rlab_app_open(const rlab_app_opts *o, rlab_err *err);

/* Closes the Lua state, the host and the store. NULL is ok. */
void rlab_app_close(rlab_app *app);

/* Borrowed handles, valid until rlab_app_close. */
rlab_host *rlab_app_host(rlab_app *app);
rlab_db *rlab_app_db(rlab_app *app);

/* Run Lua code in the session state (chunkname for messages); print() output and results
 * go to out(line, ud). Returns RLAB_OK or an error with the Lua message. Can be called from a
 * worker thread (one chunk at a time). An interrupted chunk returns RLAB_ECANCELED. */
int rlab_app_lua_exec(rlab_app *app, const char *code, const char *chunkname,
                      void (*out)(const char *line, void *ud), void *ud, rlab_err *err);

/* Run a Lua script file with a global `arg` table like lua.c (arg[0] = path, arg[1..] = argv)
 * and the arguments also passed as `...`. Errors as rlab_app_lua_exec. */
int rlab_app_lua_file(rlab_app *app, const char *path, int argc, char **argv,
                      void (*out)(const char *line, void *ud), void *ud, rlab_err *err);

/* Interrupt the running chunk (thread-safe, async-signal-safe style: lua_sethook count hook
 * that raises "interrupted", as lua.c's laction/lstop). Also asks running jobs started from
 * the chunk to cancel. Harmless when nothing runs. */
void rlab_app_lua_interrupt(rlab_app *app);

/* Batch mode's Ctrl-C: rlab_app_lua_interrupt, and cancel every queued or running command
 * of the host (sync runs such as a `-c` line included), so each ends with RLAB_ECANCELED
 * and its run `interrupted`. Thread-safe; not for a signal handler. */
void rlab_app_interrupt(rlab_app *app);

/* Host events (progress, log lines, job done) of every command, jobs and sync runs alike,
 * forwarded to fn(ev, ud) after the app has looked at them. Called from the worker thread and
 * from the thread running a command: fn must be thread-safe (see host.h). NULL removes. */
void rlab_app_set_event_fn(rlab_app *app, rlab_event_fn fn, void *ud);

/* The full message (with Lua traceback) of the last failed rlab_app_lua_exec / _file; ""
 * when none. Valid until the next call of either. */
const char *rlab_app_last_error(rlab_app *app);

/* Execute one shell-form line (`train pop data=demo`, core commands, plugin
 * commands) in batch/sync style: jobs run to completion on the calling thread. The command's
 * output lines go to out as they come (not also to stderr), then its scalars and tables as
 * text lines. Used by batch mode (-c). */
int rlab_app_exec_line(rlab_app *app, const char *line, void (*out)(const char *line, void *ud),
                       void *ud, rlab_err *err);

#endif
