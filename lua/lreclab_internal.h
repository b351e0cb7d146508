/*
 * lua/lreclab_internal.h: private declarations shared by the binding's files (lreclab.c the
 * module, commands and results; ldata.c datasets, splits and worlds; lmodel.c models,
 * recommend and evaluate; ldb.c queries and runs; ljob.c the lua plugin; ldoc.c the help of
 * every Lua function).
 *
 * Error rule (lua/README): only these files raise Lua errors. Every raised message starts
 * with the Lua-facing function or command name ("datasets.split: ...", "train bprmf:
 * ..."); expected misses return nil, message.
 */
#ifndef RLAB_LUA_LRECLAB_INTERNAL_H
#define RLAB_LUA_LRECLAB_INTERNAL_H

#include "reclab_lua.h"

#include "base/base.h"
#include "data/table.h"
#include "host/host.h"

#include <lauxlib.h>
#include <lua.h>
#include <stdatomic.h>

#define RLAB_LUA_MODEL_MT "reclab.Model"

struct rlab_lua_ctx {
    rlab_host *host;
    int owns_host;      /* module mode: created by luaopen_reclab, freed by __gc */
    lua_State *L;       /* main thread of the state (target of the interrupt hook) */
    atomic_int verbose; /* progress/log lines of commands to stderr */
    atomic_int interrupted;
    atomic_int cur_job;  /* job id of the command running for this state, 0 = none */
    int64_t last_run;    /* run id of the last command run from this state */
    const void *job_ctx; /* rlab_ctx of the lua.run job this state belongs to, or NULL */
};

/* The binding context of L (raises when the module was not set up). */
rlab_lua_ctx *rlab__lctx(lua_State *L);
/* Raise err's message as a Lua error (it already starts with the command name) or, when it
 * does not, prefixed with fname. Never returns. */
int rlab__lua_raise(lua_State *L, const char *fname, const rlab_err *err);
/* Push nil and a formatted message; returns 2. */
int rlab__lua_miss(lua_State *L, const char *fmt, ...) RLAB_PRINTF(2, 3);
/* Push a Model userdata for registered model name, or nil when it is not registered. */
void rlab__push_model(lua_State *L, const char *name);
/* The model named by arg idx (Model userdata or name) with one reference, or NULL with a
 * message pushed... raises with fname on a bad type; returns NULL when not registered. */
rlab_model *rlab__check_model(lua_State *L, int idx, const char *fname);
/* Push the info table of a dataset. */
void rlab__push_dataset_info(lua_State *L, const rlab_dataset *ds);
/* Run args (taken) synchronously and push the command's result table ({lines, tables, run,
 * <scalar> = v...}); raises "<full>: message" on failure. */
int rlab__run_and_push(lua_State *L, rlab_lua_ctx *lc, rlab_args *args, const char *full);
/* Run a function with this thread marked as running commands for lc (events go to lc). */
void rlab__enter(rlab_lua_ctx *lc);
void rlab__leave(rlab_lua_ctx *lc);

/* ldoc.c: make the Lua API's help (one table, also lua/README's reference) the host's help
 * provider, so `help reclab.evaluate` works in the shell, with -c and in reclab.help. */
void rlab__lua_register_help(rlab_host *host);
/* lsandbox.c: confine the standard libraries of L to the workspace root (call after
 * luaL_openlibs; see the file's comment), and raise "<fname>: sandbox: ..." when the host is
 * confined and path is outside its workspace (no-op otherwise). */
void rlab__lua_sandbox(lua_State *L, const char *root);
void rlab__check_path(lua_State *L, const char *fname, const char *path);

/* Fill the module table at the top of the stack. */
void rlab__open_data(lua_State *L);   /* datasets, world */
void rlab__open_models(lua_State *L); /* models, recommend, evaluate */
void rlab__open_db(lua_State *L);     /* db, runs */
void rlab__open_mpi(lua_State *L);    /* mpi (lmpi.c) */

#endif
