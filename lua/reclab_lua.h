/*
 * lua/reclab_lua.h: the Lua 5.4 binding of the host API, as seen by C (the program in ui/
 * and the plain-interpreter module reclab.so). Lua code sees the module `reclab`; see
 * lua/README for the Lua API and its error rules.
 *
 * Two ways to get the module:
 *   - inside the program (ui/app.c): the host already exists, so bind it first, then require:
 *
 *         rlab_lua_ctx *lc = rlab_lua_attach(L, host, 1);      // host borrowed
 *         luaL_requiref(L, "reclab", luaopen_reclab, 1);        // global `reclab`
 *         lua_pop(L, 1);
 *         ... from any thread: rlab_lua_ctx_interrupt(lc);      // Ctrl-C
 *
 *   - in a plain `lua5.4` (require "reclab" finds build/lua/reclab.so): luaopen_reclab sees no
 *     attached host and creates its own (plugins from the default search path, store from
 *     $RECLAB_DB or ./reclab.db, the demo world as dataset "demo" unless $RECLAB_NO_DEMO),
 *     freed when the Lua state closes.
 *
 * Events: the binding needs to see the host's events of the commands it runs (run ids,
 * progress lines). When the host belongs to someone else, that owner calls rlab_lua_event
 * from its event callback (cheap; ignores events of other threads).
 */
#ifndef RLAB_LUA_RECLAB_LUA_H
#define RLAB_LUA_RECLAB_LUA_H

#include "host/host.h"

#include <lua.h>

typedef struct rlab_lua_ctx rlab_lua_ctx;

/* The module build (reclab.so) exports luaopen_reclab and hides everything else. */
#if defined(RLAB_LUA_MODULE)
#define RLAB_LUA_EXPORT __attribute__((visibility("default")))
#else
#define RLAB_LUA_EXPORT
#endif

/* Bind the module of state L to host (borrowed: it must outlive L). verbose: print progress
 * and log lines of commands run from Lua to stderr. Returns the binding context (owned by
 * L, valid until lua_close), NULL on ENOMEM. Call before luaopen_reclab. */
rlab_lua_ctx *rlab_lua_attach(lua_State *L, rlab_host *host, int verbose);

/* The module loader: pushes the module table. */
RLAB_LUA_EXPORT int luaopen_reclab(lua_State *L);

/* Forward one host event (from the host's event callback, any thread). */
void rlab_lua_event(const rlab_event *ev, void *unused);

/* Interrupt the chunk running in the state of lc: a count hook raises "interrupted" at the
 * next Lua instruction (lua.c's laction/lstop), the command or evaluation running for it is
 * cancelled. Thread-safe; harmless when nothing runs. */
void rlab_lua_ctx_interrupt(rlab_lua_ctx *lc);
/* 1 when an interrupt was requested since the last call; clears the flag. */
int rlab_lua_ctx_take_interrupt(rlab_lua_ctx *lc);
/* Change verbosity (see rlab_lua_attach). */
void rlab_lua_ctx_set_verbose(rlab_lua_ctx *lc, int verbose);

/* A lua_CFunction: (v [, width]) -> the readable text of v (lua/lpretty.c; also Lua's
 * reclab.pretty): a table one level deep, one aligned entry per line, nested tables
 * summarised, long strings cut, Model handles by name; other values as print() shows them.
 * The shell's `=expr` and `reclab -e` print returned values with it. Call it protected
 * (lua_pcall): it may raise on memory errors only. */
int rlab_lua_pretty(lua_State *L);

/* Register the built-in `lua` plugin (command lua.run: a Lua chunk run as a job on the
 * host's worker, in a fresh state bound to the same host). ui thread. */
int rlab_lua_register_plugin(rlab_host *host, rlab_err *err);

#endif
