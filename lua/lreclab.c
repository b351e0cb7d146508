/*
 * lua/lreclab.c: the `reclab` Lua module. The binding context, the module loader (inside the
 * program or standalone in lua5.4), every host command as reclab.<plugin>.<cmd>{...} (core
 * commands also at top level where the name is free: reclab.sql{...}), the conversion of
 * command results to Lua values, and Ctrl-C through a count hook (lua.c).
 */
#include "lreclab_internal.h"

#include "data/world.h"
#include "store/store.h"

#include <lualib.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char ctx_key; /* registry[&ctx_key] = the rlab_lua_ctx userdata */

/* The state whose commands this thread is running (events of other threads are ignored). */
static _Thread_local rlab_lua_ctx *tl_lctx;

/* ---- context ------------------------------------------------------------------------- */

rlab_lua_ctx *rlab__lctx(lua_State *L)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &ctx_key); /* ctx */
    rlab_lua_ctx *lc = lua_touserdata(L, -1);
    lua_pop(L, 1); /* */
    if (!lc || !lc->host)
        luaL_error(L, "reclab: module not initialised");
    return lc;
}

static int l_ctx_gc(lua_State *L)
{
    rlab_lua_ctx *lc = lua_touserdata(L, 1);
    if (lc->owns_host && lc->host) {
        rlab_host_free(lc->host);
        lc->host = NULL;
    }
    return 0;
}

static rlab_lua_ctx *new_ctx(lua_State *L, rlab_host *host, int owns, int verbose)
{
    rlab_lua_ctx *lc = lua_newuserdatauv(L, sizeof *lc, 0); /* ctx */
    memset(lc, 0, sizeof *lc);
    lc->host = host;
    lc->owns_host = owns;
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD); /* ctx main */
    lc->L = lua_tothread(L, -1);
    lua_pop(L, 1); /* ctx */
    atomic_store(&lc->verbose, verbose);
    lua_createtable(L, 0, 1);                    /* ctx mt */
    lua_pushcfunction(L, l_ctx_gc);              /* ctx mt gc */
    lua_setfield(L, -2, "__gc");                 /* ctx mt */
    lua_setmetatable(L, -2);                     /* ctx */
    lua_rawsetp(L, LUA_REGISTRYINDEX, &ctx_key); /* */
    return lc;
}

rlab_lua_ctx *rlab_lua_attach(lua_State *L, rlab_host *host, int verbose)
{
    if (!L || !host)
        return NULL;
    return new_ctx(L, host, 0, verbose);
}

void rlab_lua_ctx_set_verbose(rlab_lua_ctx *lc, int verbose)
{
    if (lc)
        atomic_store(&lc->verbose, verbose);
}

void rlab__enter(rlab_lua_ctx *lc)
{
    tl_lctx = lc;
    atomic_store(&lc->cur_job, 0);
}

void rlab__leave(rlab_lua_ctx *lc)
{
    atomic_store(&lc->cur_job, 0);
    tl_lctx = NULL;
}

/* ---- events and interrupts ----------------------------------------------------------- */

void rlab_lua_event(const rlab_event *ev, void *unused)
{
    (void)unused;
    rlab_lua_ctx *lc = tl_lctx;
    if (!lc || !ev)
        return;
    switch (ev->type) {
    case RLAB_EV_STARTED:
        atomic_store(&lc->cur_job, ev->job_id);
        lc->last_run = ev->run_id;
        break;
    case RLAB_EV_PROGRESS:
        if (atomic_load(&lc->verbose)) {
            char line[512];
            int n = snprintf(line, sizeof line, "%s: %s %lld", ev->cmd,
                             ev->label ? ev->label : "step", (long long)ev->step);
            if (ev->total > 0 && n > 0 && (size_t)n < sizeof line)
                n += snprintf(line + n, sizeof line - (size_t)n, "/%lld", (long long)ev->total);
            for (int i = 0; i < ev->nmetrics && n > 0 && (size_t)n < sizeof line; i++)
                n += snprintf(line + n, sizeof line - (size_t)n, "  %s %.*f", ev->metrics[i].name,
                              fabs(ev->metrics[i].value - round(ev->metrics[i].value)) < 1e-9 ? 0
                                                                                              : 4,
                              ev->metrics[i].value);
            fprintf(stderr, "%s\n", line);
        }
        break;
    case RLAB_EV_LOG:
        if (atomic_load(&lc->verbose) && ev->text)
            fprintf(stderr, "%s: %s\n", ev->cmd, ev->text);
        break;
    case RLAB_EV_DONE:
        atomic_store(&lc->cur_job, 0);
        break;
    default:
        break;
    }
}

/* lua.c's lstop: the hook removes itself and raises. */
static void lstop(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    lua_sethook(L, NULL, 0, 0);
    luaL_error(L, "interrupted");
}

void rlab_lua_ctx_interrupt(rlab_lua_ctx *lc)
{
    if (!lc)
        return;
    atomic_store(&lc->interrupted, 1);
    /* lua_sethook is the one call that is safe from a signal handler or another thread */
    lua_sethook(lc->L, lstop, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
    int job = atomic_load(&lc->cur_job);
    if (job > 0 && lc->host)
        rlab_host_cancel(lc->host, job);
}

int rlab_lua_ctx_take_interrupt(rlab_lua_ctx *lc)
{
    return lc ? atomic_exchange(&lc->interrupted, 0) : 0;
}

/* ---- errors -------------------------------------------------------------------------- */

int rlab__lua_raise(lua_State *L, const char *fname, const rlab_err *err)
{
    const char *msg = err && err->msg[0] ? err->msg : "failed";
    /* reclab.evaluate runs the `eval` verb: its messages read as evaluate's own */
    if (strcmp(fname, "evaluate") == 0 && strncmp(msg, "eval: ", 6) == 0)
        msg += 6;
    size_t n = strlen(fname);
    if (strncmp(msg, fname, n) == 0 && msg[n] == ':')
        return luaL_error(L, "%s", msg);
    return luaL_error(L, "%s: %s", fname, msg);
}

int rlab__lua_miss(lua_State *L, const char *fmt, ...)
{
    /* vsnprintf, not lua_pushvfstring: the C formats (%lld, %.4f...) must work */
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    lua_pushnil(L);         /* nil */
    lua_pushstring(L, msg); /* nil msg */
    return 2;
}

/* ---- results ------------------------------------------------------------------------- */

static void push_cell(lua_State *L, const rlab_cell *c)
{
    switch (c->type) {
    case RLAB_CELL_INT:
        lua_pushinteger(L, (lua_Integer)c->i); /* v */
        break;
    case RLAB_CELL_FLOAT:
        lua_pushnumber(L, c->f); /* v */
        break;
    case RLAB_CELL_TEXT:
        lua_pushstring(L, c->s); /* v */
        break;
    case RLAB_CELL_MODEL:
        rlab__push_model(L, c->s); /* v|nil */
        if (lua_isnil(L, -1)) {
            lua_pop(L, 1);           /* */
            lua_pushstring(L, c->s); /* name */
        }
        break;
    default:
        lua_pushnil(L); /* nil */
        break;
    }
}

/* Result -> {lines = {...}, <scalar> = v..., tables = {name = {row...; columns = {...}}},
 * run = id}. */
static void push_result(lua_State *L, const rlab_result *res, int64_t run_id)
{
    lua_createtable(L, 0, 4); /* r */
    if (run_id > 0) {
        lua_pushinteger(L, (lua_Integer)run_id); /* r id */
        lua_setfield(L, -2, "run");              /* r */
    }
    if (!res)
        return;
    for (int i = 0; i < res->nscalars; i++) {
        push_cell(L, &res->scalars[i].value);      /* r v */
        lua_setfield(L, -2, res->scalars[i].name); /* r */
    }
    lua_createtable(L, res->nlines, 0); /* r lines */
    for (int i = 0; i < res->nlines; i++) {
        lua_pushstring(L, res->lines[i]); /* r lines s */
        lua_rawseti(L, -2, i + 1);        /* r lines */
    }
    lua_setfield(L, -2, "lines");        /* r */
    lua_createtable(L, 0, res->ntables); /* r tables */
    for (int t = 0; t < res->ntables; t++) {
        const rlab_table *tb = res->tables[t];
        lua_createtable(L, (int)tb->nrows, 1); /* r tables rows */
        lua_createtable(L, tb->ncols, 0);      /* r tables rows cols */
        for (int c = 0; c < tb->ncols; c++) {
            lua_pushstring(L, tb->cols[c]); /* r tables rows cols s */
            lua_rawseti(L, -2, c + 1);      /* r tables rows cols */
        }
        lua_setfield(L, -2, "columns"); /* r tables rows */
        for (int64_t r = 0; r < tb->nrows; r++) {
            lua_createtable(L, 0, tb->ncols); /* r tables rows row */
            for (int c = 0; c < tb->ncols; c++) {
                push_cell(L, &tb->cells[r * tb->ncols + c]); /* r tables rows row v */
                lua_setfield(L, -2, tb->cols[c]);            /* r tables rows row */
            }
            lua_rawseti(L, -2, (lua_Integer)r + 1); /* r tables rows */
        }
        lua_setfield(L, -2, tb->name ? tb->name : "table"); /* r tables */
    }
    lua_setfield(L, -2, "tables"); /* r */
}

/* ---- running commands ---------------------------------------------------------------- */

/* Run args (taken) synchronously for L and push the result table; raises on failure. */
int rlab__run_and_push(lua_State *L, rlab_lua_ctx *lc, rlab_args *args, const char *full)
{
    rlab_result *res = NULL;
    rlab_err err = {0};
    lc->last_run = 0;
    rlab__enter(lc);
    int rc = rlab_host_run_args(lc->host, args, &res, &err);
    rlab__leave(lc);
    if (rc) {
        rlab_result_free(res);
        return rlab__lua_raise(L, full, &err);
    }
    push_result(L, res, lc->last_run); /* r */
    rlab_result_free(res);
    return 1;
}

/* The declared type of argument key of args' command, 0 when it has none of that name. */
static rlab_type arg_type(const rlab_args *args, const char *key)
{
    const rlab_cmd_ref *ref = rlab_args_cmd(args);
    for (const rlab_arg *a = ref && ref->cmd ? ref->cmd->args : NULL; key && a && a->name; a++)
        if (strcmp(a->name, key) == 0)
            return a->type;
    return (rlab_type)0;
}

/* Set one key = value (value at the top of the stack) of args, raising on error. */
static void set_arg(lua_State *L, rlab_args *args, const char *key, const char *full)
{
    rlab_err err = {0};
    int rc;
    int t = lua_type(L, -1);
    rlab_type at = arg_type(args, key);
    if (t == LUA_TNUMBER && (at == RLAB_ARG_STRING || at == RLAB_ARG_PATH)) {
        /* a number for a text argument is its text (run = 7), as users and items are */
        const char *s = luaL_tolstring(L, -1, NULL); /* v s */
        rc = rlab_args_set(args, key, s, &err);
        lua_pop(L, 1); /* v */
    } else if (t == LUA_TNUMBER && lua_isinteger(L, -1))
        rc = rlab_args_set_int(args, key, (int64_t)lua_tointeger(L, -1), &err);
    else if (t == LUA_TNUMBER)
        rc = rlab_args_set_float(args, key, (double)lua_tonumber(L, -1), &err);
    else if (t == LUA_TBOOLEAN)
        rc = rlab_args_set_bool(args, key, lua_toboolean(L, -1), &err);
    else if (t == LUA_TSTRING)
        rc = key ? rlab_args_set(args, key, lua_tostring(L, -1), &err)
                 : rlab_args_set_next(args, lua_tostring(L, -1), &err);
    else if (t == LUA_TUSERDATA && luaL_testudata(L, -1, RLAB_LUA_MODEL_MT)) {
        const char *name = lua_touserdata(L, -1); /* the Model userdata starts with its name */
        rc = key ? rlab_args_set(args, key, name, &err) : rlab_args_set_next(args, name, &err);
    } else
        rc = rlab_args_type_error(args, key ? key : "?", luaL_typename(L, -1), &err);
    if (rc) {
        rlab_args_free(args);
        rlab__lua_raise(L, full, &err);
    }
}

/* Positional numbers and booleans go through their text form. */
static void set_positional(lua_State *L, rlab_args *args, const char *full)
{
    if (lua_type(L, -1) == LUA_TSTRING ||
        (lua_type(L, -1) == LUA_TUSERDATA && luaL_testudata(L, -1, RLAB_LUA_MODEL_MT))) {
        set_arg(L, args, NULL, full);
        return;
    }
    rlab_err err = {0};
    int rc;
    if (lua_type(L, -1) == LUA_TNUMBER || lua_type(L, -1) == LUA_TBOOLEAN) {
        const char *s = luaL_tolstring(L, -1, NULL); /* v s */
        rc = rlab_args_set_next(args, s, &err);
        lua_pop(L, 1); /* v */
    } else {
        rc = rlab_errf(&err, RLAB_EINVAL, "%s: bad positional argument (%s)", full,
                       luaL_typename(L, -1));
    }
    if (rc) {
        rlab_args_free(args);
        rlab__lua_raise(L, full, &err);
    }
}

/* reclab.<plugin>.<cmd>{key = value, ...; positional...}: upvalue 1 is the shell name.
 * reclab.train{"bprmf", data = ...} (or kind = "bprmf") runs the kind's `train bprmf`. */
static int l_command(lua_State *L)
{
    rlab_lua_ctx *lc = rlab__lctx(L);
    const char *full = lua_tostring(L, lua_upvalueindex(1));
    if (!lua_isnoneornil(L, 1) && !lua_istable(L, 1))
        return luaL_error(L, "%s: bad argument #1 (table of arguments expected, got %s)", full,
                          luaL_typename(L, 1));
    lua_Integer first = 1; /* first positional entry that is an argument */
    int skip_kind = 0;
    char kfull[160];
    if (strcmp(full, "train") == 0 && lua_istable(L, 1)) {
        lua_getfield(L, 1, "kind"); /* t kind */
        if (lua_isnil(L, -1)) {
            lua_pop(L, 1);        /* t */
            lua_rawgeti(L, 1, 1); /* t kind */
            first = 2;
        } else {
            skip_kind = 1;
        }
        const char *kind = lua_tostring(L, -1);
        if (!kind)
            return luaL_error(L, "train: name a model kind (reclab.train{\"bprmf\", data = ...})");
        snprintf(kfull, sizeof kfull, "train %s", kind);
        lua_pop(L, 1); /* t */
        if (!rlab_host_find_cmd(lc->host, kfull))
            return luaL_error(L, "train: unknown model kind '%s'", kind);
        full = kfull;
    }
    rlab_err err = {0};
    rlab_args *args = rlab_args_new(lc->host, full, &err);
    if (!args)
        return rlab__lua_raise(L, full, &err);
    if (lua_istable(L, 1)) {
        lua_Integer npos = (lua_Integer)lua_rawlen(L, 1);
        for (lua_Integer i = first; i <= npos; i++) {
            lua_rawgeti(L, 1, i);          /* t v */
            set_positional(L, args, full); /* t v */
            lua_pop(L, 1);                 /* t */
        }
        lua_pushnil(L);          /* t nil */
        while (lua_next(L, 1)) { /* t k v */
            if (lua_type(L, -2) == LUA_TSTRING) {
                if (!(skip_kind && strcmp(lua_tostring(L, -2), "kind") == 0))
                    set_arg(L, args, lua_tostring(L, -2), full); /* t k v */
            } else if (!lua_isinteger(L, -2) || lua_tointeger(L, -2) < 1 ||
                       lua_tointeger(L, -2) > npos) {
                rlab_args_free(args);
                return luaL_error(L, "%s: bad argument key (string expected, got %s)", full,
                                  luaL_typename(L, -2));
            }
            lua_pop(L, 1); /* t k */
        }
    }
    return rlab__run_and_push(L, lc, args, full);
}

/* reclab.runs{...} and the like: a module table called as a command (__call passes the table
 * first). */
static int l_command_call(lua_State *L)
{
    lua_remove(L, 1); /* args */
    return l_command(L);
}

/* One sweep value as text, pushed: a string or number as is, a boolean as true/false, a
 * table's array part joined with commas ({32, 64} -> "32,64"). */
static void sweep_value(lua_State *L, int idx, const char *key)
{
    if (lua_istable(L, idx)) {
        lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
        if (n < 1)
            luaL_error(L, "sweep: %s = {} has no values", key);
        lua_pushliteral(L, ""); /* acc */
        for (lua_Integer i = 1; i <= n; i++) {
            lua_rawgeti(L, idx, i); /* acc v */
            if (lua_istable(L, -1))
                luaL_error(L, "sweep: bad value of %s (a flat list expected)", key);
            sweep_value(L, lua_gettop(L), key); /* acc v s */
            lua_remove(L, -2);                  /* acc s */
            if (i > 1) {
                lua_pushliteral(L, ","); /* acc s , */
                lua_insert(L, -2);       /* acc , s */
                lua_concat(L, 3);        /* acc */
            } else {
                lua_concat(L, 2); /* acc */
            }
        }
        return;
    }
    const char *s = NULL;
    if (lua_type(L, idx) == LUA_TBOOLEAN)
        s = lua_toboolean(L, idx) ? "true" : "false";
    else if (lua_type(L, idx) == LUA_TSTRING || lua_type(L, idx) == LUA_TNUMBER)
        s = lua_tostring(L, idx);
    if (!s)
        luaL_error(L, "sweep: bad value of %s (string, number, boolean or list expected, got %s)",
                   key, luaL_typename(L, idx));
    if (strpbrk(s, " \t\n"))
        luaL_error(L, "sweep: value of %s has a blank: '%s'", key, s);
    lua_pushstring(L, s); /* s */
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* reclab.sweep{"bprmf", "sasrec", data = "ml-100k", dim = {32, 64}, lr = "1e-3:1e-1:log",
 * seeds = "1..3", name = "base"} -> result: the shell's `sweep` with the keys in sorted order
 * (so the same table gives the same spec, and resumes the same experiment). */
static int l_sweep(lua_State *L)
{
    rlab_lua_ctx *lc = rlab__lctx(L);
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    lua_pushliteral(L, "sweep"); /* t line */
    lua_Integer nk = (lua_Integer)lua_rawlen(L, 1);
    if (nk == 0 && lua_getfield(L, 1, "resume") == LUA_TNIL &&
        lua_getfield(L, 1, "kind") == LUA_TNIL) /* t line nil nil */
        return luaL_error(L, "sweep: name the model kinds: reclab.sweep{\"KIND\", ..., data = "
                             "...} (help sweep)");
    lua_settop(L, 2);                         /* t line */
    for (lua_Integer i = 1; i <= nk; i++) {   /* the kinds, positional: " a,b" */
        lua_pushstring(L, i > 1 ? "," : " "); /* t line sep */
        lua_rawgeti(L, 1, i);                 /* t line sep v */
        if (lua_type(L, -1) != LUA_TSTRING)
            return luaL_error(L, "sweep: model kinds are strings (got %s)", luaL_typename(L, -1));
        lua_concat(L, 3); /* t line */
    }
    int n = 0;
    for (lua_pushnil(L); lua_next(L, 1); lua_pop(L, 1)) /* t line k v */
        n += lua_type(L, -2) == LUA_TSTRING;
    const char **keys = lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof *keys, 0); /* t line ud */
    int k = 0;
    for (lua_pushnil(L); lua_next(L, 1); lua_pop(L, 1)) /* t line ud k v */
        if (lua_type(L, -2) == LUA_TSTRING && k < n)
            keys[k++] = lua_tostring(L, -2); /* the key strings live in t */
    qsort(keys, (size_t)k, sizeof *keys, cmp_str);
    for (int i = 0; i < k; i++) {
        lua_pushfstring(L, " %s=", keys[i]);    /* t line ud " k=" */
        lua_getfield(L, 1, keys[i]);            /* t line ud " k=" v */
        sweep_value(L, lua_gettop(L), keys[i]); /* t line ud " k=" v s */
        lua_remove(L, -2);                      /* t line ud " k=" s */
        lua_concat(L, 2);                       /* t line ud piece */
        lua_rotate(L, 2, -1);                   /* t ud piece line */
        lua_insert(L, -2);                      /* t ud line piece */
        lua_concat(L, 2);                       /* t ud line */
        lua_insert(L, 2);                       /* t line ud */
    }
    lua_pop(L, 1); /* t line */
    rlab_args *args = NULL;
    rlab_err err = {0};
    if (rlab_host_parse(lc->host, lua_tostring(L, -1), &args, &err))
        return rlab__lua_raise(L, "sweep", &err);
    return rlab__run_and_push(L, lc, args, "sweep");
}

/* reclab.run(line): one shell-form line, run synchronously. */
static int l_run(lua_State *L)
{
    rlab_lua_ctx *lc = rlab__lctx(L);
    const char *line = luaL_checkstring(L, 1);
    rlab_args *args = NULL;
    rlab_err err = {0};
    if (rlab_host_parse(lc->host, line, &args, &err))
        return rlab__lua_raise(L, "run", &err);
    char full[144];
    snprintf(full, sizeof full, "%s", rlab_args_cmd(args)->full);
    return rlab__run_and_push(L, lc, args, full);
}

/* reclab.help([cmd]) -> text */
static int l_help(lua_State *L)
{
    rlab_lua_ctx *lc = rlab__lctx(L);
    rlab_err err = {0};
    char *text = lua_isnoneornil(L, 1) ? rlab_host_help(lc->host)
                                       : rlab_host_help_cmd(lc->host, luaL_checkstring(L, 1), &err);
    if (!text) {
        if (err.code == RLAB_ENOTFOUND)
            return rlab__lua_miss(L, "help: %s", err.msg);
        return rlab__lua_raise(L, "help", &err);
    }
    lua_pushstring(L, text); /* s */
    rlab_free(text);
    return 1;
}

/* reclab.verbose([flag]) -> previous flag */
static int l_verbose(lua_State *L)
{
    rlab_lua_ctx *lc = rlab__lctx(L);
    int old = atomic_load(&lc->verbose);
    if (!lua_isnoneornil(L, 1))
        atomic_store(&lc->verbose, lua_toboolean(L, 1));
    lua_pushboolean(L, old); /* b */
    return 1;
}

/* reclab.plugins() -> {{name=, version=, summary=, file=}, ...} */
static int l_plugins(lua_State *L)
{
    rlab_lua_ctx *lc = rlab__lctx(L);
    int n = rlab_host_plugin_count(lc->host);
    lua_createtable(L, n, 0); /* t */
    for (int i = 0; i < n; i++) {
        const rlab_plugin *p = rlab_host_plugin_at(lc->host, i);
        lua_createtable(L, 0, 4);                              /* t p */
        lua_pushstring(L, p->name);                            /* t p s */
        lua_setfield(L, -2, "name");                           /* t p */
        lua_pushstring(L, p->version);                         /* t p s */
        lua_setfield(L, -2, "version");                        /* t p */
        lua_pushstring(L, p->summary);                         /* t p s */
        lua_setfield(L, -2, "summary");                        /* t p */
        lua_pushstring(L, rlab_host_plugin_file(lc->host, i)); /* t p s */
        lua_setfield(L, -2, "file");                           /* t p */
        lua_rawseti(L, -2, i + 1);                             /* t */
    }
    lua_createtable(L, 0, 0); /* t refusals */
    for (int i = 0; i < rlab_host_refusal_count(lc->host); i++) {
        lua_pushstring(L, rlab_host_refusal(lc->host, i)); /* t refusals s */
        lua_rawseti(L, -2, i + 1);                         /* t refusals */
    }
    lua_setfield(L, -2, "refused"); /* t */
    return 1;
}

/* Names of the module's own fields, which a plugin cannot take over. */
static int reserved(const char *name)
{
    static const char *const names[] = {"datasets", "models",    "runs",  "db",   "world",
                                        "evaluate", "recommend", "run",   "help", "verbose",
                                        "plugins",  "version",   "train", NULL};
    for (int i = 0; names[i]; i++)
        if (strcmp(names[i], name) == 0)
            return 1;
    return 0;
}

/* Add reclab.<plugin>.<cmd> for every command (core commands under reclab.core). */
static void add_commands(lua_State *L, rlab_host *host)
{
    int n = rlab_host_cmd_count(host);
    for (int i = 0; i < n; i++) {
        const rlab_cmd_ref *c = rlab_host_cmd_at(host, i);
        if (rlab_host_cmd_hidden(c)) /* `train KIND`: through reclab.train{KIND, ...} */
            continue;
        if (reserved(c->plugin)) {
            rlab_log(RLAB_LOG_WARN, "reclab: commands of plugin '%s' hidden by reclab.%s",
                     c->plugin, c->plugin);
            continue;
        }
        if (lua_getfield(L, -1, c->plugin) != LUA_TTABLE) { /* M sub */
            lua_pop(L, 1);                                  /* M */
            lua_createtable(L, 0, 4);                       /* M sub */
            lua_pushvalue(L, -1);                           /* M sub sub */
            lua_setfield(L, -3, c->plugin);                 /* M sub */
        }
        lua_pushstring(L, c->full);        /* M sub full */
        lua_pushcclosure(L, l_command, 1); /* M sub fn */
        lua_setfield(L, -2, c->cmd->name); /* M sub */
        lua_pop(L, 1);                     /* M */
    }
}

/* The core commands at top level where the module has no field of that name (reclab.sql,
 * reclab.show, reclab.compare, reclab.load, reclab.export...); the module's own tables named
 * like a command (datasets, models, runs) become callable as that command, so
 * reclab.runs{sort = "test.ndcg@10"} and reclab.runs.list() both work. */
static void add_aliases(lua_State *L, rlab_host *host)
{
    static const char *const callable[] = {"datasets", "models", "runs", NULL};
    int n = rlab_host_cmd_count(host);
    for (int i = 0; i < n; i++) {
        const rlab_cmd_ref *c = rlab_host_cmd_at(host, i);
        if (strcmp(c->plugin, "core") != 0 || rlab_host_cmd_hidden(c))
            continue;
        int t = lua_getfield(L, -1, c->cmd->name); /* M v */
        if (t == LUA_TNIL) {
            lua_pop(L, 1);                     /* M */
            lua_pushstring(L, c->full);        /* M full */
            lua_pushcclosure(L, l_command, 1); /* M fn */
            lua_setfield(L, -2, c->cmd->name); /* M */
            continue;
        }
        int own = 0;
        for (int k = 0; callable[k]; k++)
            own |= strcmp(callable[k], c->cmd->name) == 0;
        if (t == LUA_TTABLE && own && !lua_getmetatable(L, -1)) { /* M tbl */
            lua_createtable(L, 0, 1);                             /* M tbl mt */
            lua_pushstring(L, c->full);                           /* M tbl mt full */
            lua_pushcclosure(L, l_command_call, 1);               /* M tbl mt fn */
            lua_setfield(L, -2, "__call");                        /* M tbl mt */
            lua_setmetatable(L, -2);                              /* M tbl */
        } else if (t == LUA_TTABLE && own) {
            lua_pop(L, 1); /* M tbl */
        }
        lua_pop(L, 1); /* M */
    }
}

/* ---- the module ---------------------------------------------------------------------- */

static const luaL_Reg module_fns[] = {
    {"run", l_run},         {"sweep", l_sweep},          {"help", l_help}, {"verbose", l_verbose},
    {"plugins", l_plugins}, {"pretty", rlab_lua_pretty}, {NULL, NULL},
};

/* Module mode: a host of our own (see reclab_lua.h). Raises on failure. */
static rlab_lua_ctx *standalone_ctx(lua_State *L)
{
    rlab_err err = {0};
    rlab_host *host = rlab_host_new(NULL, &err);
    if (!host)
        luaL_error(L, "reclab: %s", err.msg);
    rlab_lua_ctx *lc = new_ctx(L, host, 1, getenv("RECLAB_VERBOSE") != NULL);
    rlab_host_set_event_fn(host, rlab_lua_event, NULL);
    rlab_host_set_progress_interval(host, 0.5);
    if (rlab_lua_register_plugin(host, &err))
        rlab_log(RLAB_LOG_WARN, "reclab: %s", err.msg);
    if (rlab_host_load_all(host, NULL, &err))
        luaL_error(L, "reclab: %s", err.msg);
    for (int i = 0; i < rlab_host_refusal_count(host); i++)
        fprintf(stderr, "reclab: %s\n", rlab_host_refusal(host, i));
    const char *db = getenv("RECLAB_DB");
    if (rlab_host_set_store(host, db && *db ? db : RLAB_DB_DEFAULT_PATH, &err))
        luaL_error(L, "reclab: %s", err.msg);
    return lc;
}

int luaopen_reclab(lua_State *L)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &ctx_key); /* ctx? */
    rlab_lua_ctx *lc = lua_touserdata(L, -1);
    lua_pop(L, 1); /* */
    int standalone = lc == NULL;
    if (standalone)
        lc = standalone_ctx(L);
    if (rlab_host_sandbox(lc->host)) /* a confined host confines every state bound to it */
        rlab__lua_sandbox(L, rlab_host_sandbox(lc->host));
    luaL_newlib(L, module_fns);          /* M */
    lua_pushstring(L, rlab_version());   /* M v */
    lua_setfield(L, -2, "version");      /* M */
    lua_pushstring(L, rlab_build_git()); /* M g */
    lua_setfield(L, -2, "git");          /* M */
    rlab__open_data(L);                  /* M */
    rlab__open_models(L);                /* M */
    rlab__open_db(L);                    /* M */
    rlab__open_mpi(L);                   /* M */
    add_commands(L, lc->host);           /* M */
    /* the model verb everyone uses at top level: reclab.train{"bprmf", data = ...} */
    if (lua_getfield(L, -1, "core") == LUA_TTABLE) { /* M core */
        lua_getfield(L, -1, "train");                /* M core fn */
        lua_setfield(L, -3, "train");                /* M core */
    }
    lua_pop(L, 1);            /* M */
    add_aliases(L, lc->host); /* M */
    if (standalone && !getenv("RECLAB_NO_DEMO")) {
        /* the same session as the program's: the demo world is dataset "demo" */
        lua_getfield(L, -1, "world"); /* M world */
        lua_getfield(L, -1, "demo");  /* M world demo */
        lua_call(L, 0, 0);            /* M world */
        lua_pop(L, 1);                /* M */
    }
    return 1;
}
