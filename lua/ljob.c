/*
 * lua/ljob.c: the built-in `lua` plugin, linked into the program (not a .so): command
 * `lua.run code=... | file=...` runs a Lua chunk as a host command, so a script can be a
 * background job in the shell with its own run row, progress and metrics.
 *
 * The chunk gets a fresh Lua state bound to the same host (datasets, models and plugin
 * commands are shared; globals are not), plus reclab.job:
 *     reclab.job.progress(step, total [, label])
 *     reclab.job.metric(step, split, name, value [, protocol])
 *     reclab.job.cancelled() -> boolean
 * and print() going to the command's output lines. A Lua error ends the command with the
 * error message (the run is `failed`); a cancel (Ctrl-C on the job) raises "interrupted" at
 * the next count hook and the run is `interrupted`. The Lua state never outlives the
 * command, so no longjmp crosses host code: lua_pcall catches everything inside run.
 */
#include "lreclab_internal.h"

#include "host/plugin.h"

#include <lualib.h>
#include <string.h>

static char job_key; /* registry[&job_key] = light userdata rlab_ctx * */

static rlab_ctx *job_ctx(lua_State *L)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &job_key); /* ctx? */
    rlab_ctx *ctx = lua_touserdata(L, -1);
    lua_pop(L, 1); /* */
    if (!ctx)
        luaL_error(L, "reclab.job: only inside lua.run");
    return ctx;
}

static int l_job_progress(lua_State *L)
{
    rlab_ctx *ctx = job_ctx(L);
    lua_Integer step = luaL_checkinteger(L, 1), total = luaL_optinteger(L, 2, 0);
    const char *label = luaL_optstring(L, 3, "step");
    rlab_ctx_progress(ctx, (int64_t)step, (int64_t)total, label, 0, NULL);
    return 0;
}

static int l_job_metric(lua_State *L)
{
    rlab_ctx *ctx = job_ctx(L);
    lua_Integer step = luaL_checkinteger(L, 1);
    const char *split = luaL_checkstring(L, 2), *name = luaL_checkstring(L, 3);
    double v = (double)luaL_checknumber(L, 4);
    const char *proto = luaL_optstring(L, 5, NULL);
    if (rlab_ctx_metric(ctx, (int64_t)step, split, name, proto, v))
        return luaL_error(L, "reclab.job.metric: %s", rlab_ctx_err(ctx)->msg);
    return 0;
}

static int l_job_cancelled(lua_State *L)
{
    lua_pushboolean(L, rlab_ctx_cancelled(job_ctx(L))); /* b */
    return 1;
}

/* print() -> output lines of the command */
static int l_job_print(lua_State *L)
{
    rlab_ctx *ctx = job_ctx(L);
    int n = lua_gettop(L);
    luaL_Buffer b;
    luaL_buffinit(L, &b); /* ... b */
    for (int i = 1; i <= n; i++) {
        luaL_tolstring(L, i, NULL); /* ... b s */
        luaL_addvalue(&b);          /* ... b */
        if (i < n)
            luaL_addchar(&b, '\t');
    }
    luaL_pushresult(&b); /* ... s */
    rlab_ctx_printf(ctx, "%s", lua_tostring(L, -1));
    return 0;
}

static void job_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &job_key); /* ctx */
    rlab_ctx *ctx = lua_touserdata(L, -1);
    lua_pop(L, 1); /* */
    if (ctx && rlab_ctx_cancelled(ctx))
        luaL_error(L, "interrupted");
}

static int traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (!msg)
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1)); /* e msg */
    luaL_traceback(L, L, msg, 1); /* e [msg] tb */
    return 1;
}

static const luaL_Reg job_fns[] = {
    {"progress", l_job_progress},
    {"metric", l_job_metric},
    {"cancelled", l_job_cancelled},
    {NULL, NULL},
};

/* Protected set-up of the job's state: the module, reclab.job, print. */
static int job_setup(lua_State *L)
{
    luaL_requiref(L, "reclab", luaopen_reclab, 1); /* M */
    luaL_newlib(L, job_fns);                       /* M job */
    lua_setfield(L, -2, "job");                    /* M */
    lua_pop(L, 1);                                 /* */
    lua_pushcfunction(L, l_job_print);             /* print */
    lua_setglobal(L, "print");                     /* */
    return 0;
}

/* The script's arguments, as `reclab run FILE ARGS...` and lua.c give them: a global `arg`
 * (arg[0] = the script, arg[1..] = the words of args, split on blanks) and the same words
 * pushed as the chunk's `...`. Returns how many were pushed. [-0, +n] */
static int push_script_args(lua_State *L, const char *script, const char *words)
{
    lua_createtable(L, 4, 1);  /* fn arg */
    lua_pushstring(L, script); /* fn arg s */
    lua_rawseti(L, -2, 0);     /* fn arg */
    int n = 0;
    for (const char *p = words ? words : ""; *p;) {
        while (*p == ' ' || *p == '\t')
            p++;
        size_t len = strcspn(p, " \t");
        if (!len)
            break;
        if (!lua_checkstack(L, 2))
            break;
        lua_pushlstring(L, p, len);    /* fn arg w... w */
        lua_pushvalue(L, -1);          /* fn arg w... w w */
        lua_rawseti(L, -3 - n, n + 1); /* fn arg w... w */
        n++;
        p += len;
    }
    lua_pushvalue(L, -1 - n); /* fn arg w... arg */
    lua_setglobal(L, "arg");  /* fn arg w... */
    lua_remove(L, -1 - n);    /* fn w... */
    return n;
}

static int luajob_run(rlab_ctx *ctx, const rlab_args *args)
{
    const char *code = rlab_args_str(args, "code");
    const char *file = rlab_args_str(args, "file");
    if ((code && *code) == (file && *file))
        return rlab_ctx_errorf(ctx, RLAB_EINVAL, "give either code= or file=");
    lua_State *L = luaL_newstate();
    if (!L)
        return rlab_ctx_errorf(ctx, RLAB_ENOMEM, "cannot create a Lua state");
    luaL_openlibs(L);
    lua_pushlightuserdata(L, ctx);               /* ctx */
    lua_rawsetp(L, LUA_REGISTRYINDEX, &job_key); /* */
    int rc = RLAB_OK;
    rlab_lua_ctx *lc = rlab_lua_attach(L, rlab_ctx_host(ctx), 0);
    if (!lc) {
        lua_close(L);
        return rlab_ctx_errorf(ctx, RLAB_ENOMEM, "cannot bind the Lua state");
    }
    lc->job_ctx = ctx;
    lua_pushcfunction(L, traceback);       /* tb */
    lua_pushcfunction(L, job_setup);       /* tb setup */
    if (lua_pcall(L, 0, 0, 0) != LUA_OK) { /* tb [err] */
        rc = rlab_ctx_errorf(ctx, RLAB_ENOMEM, "%s", lua_tostring(L, -1));
        lua_close(L);
        return rc;
    }
    lua_sethook(L, job_hook, LUA_MASKCOUNT, 1000);
    int st = code && *code ? luaL_loadbufferx(L, code, strlen(code), "=job", "t")
                           : luaL_loadfilex(L, file, "t"); /* tb fn */
    int nargs = 0;
    if (st == LUA_OK)
        nargs = push_script_args(L, file && *file ? file : "=job", rlab_args_str(args, "args"));
    if (st == LUA_OK)
        st = lua_pcall(L, nargs, 0, 1); /* tb */
    if (st != LUA_OK) {
        /* the message proper becomes the command's error; the traceback goes to its output */
        const char *msg = lua_tostring(L, -1);
        const char *nl = msg ? strchr(msg, '\n') : NULL;
        if (nl)
            rlab_ctx_printf(ctx, "%s", nl + 1);
        if (rlab_ctx_cancelled(ctx))
            rc = RLAB_ECANCELED;
        else
            rc = rlab_ctx_errorf(ctx, RLAB_EINVAL, "%.*s",
                                 nl ? (int)(nl - msg) : (int)strlen(msg ? msg : "error"),
                                 msg ? msg : "error");
    }
    lua_close(L);
    return rc;
}

static const rlab_arg luajob_args[] = {
    {.name = "code", .type = RLAB_ARG_STRING, .help = "Lua code to run"},
    {.name = "file", .type = RLAB_ARG_PATH, .help = "Lua script to run"},
    {.name = "args",
     .type = RLAB_ARG_STRING,
     .help = "the script's arguments, separated by blanks (arg[1..] and ...)"},
    {.name = "name", .type = RLAB_ARG_STRING, .help = "label (free text)"},
    {0},
};

static const rlab_cmd luajob_cmds[] = {
    {.name = "run",
     .args = luajob_args,
     .help = "Run a Lua chunk as a job.\n"
             "The chunk has the reclab module (same datasets, models and commands) and\n"
             "reclab.job.progress / metric / cancelled. A Lua error fails the run.\n"
             "args= gives the script its arguments as `reclab run FILE ARGS` does (arg, ...); "
             "cancelling the job (Ctrl-C, cancel N) also stops the commands it called.\n"
             "Example: lua.run file=lua/examples/quick_tour.lua\n"
             "Example: lua.run file=lua/examples/compare_baselines.lua args=4\n"
             "Example: lua.run code=\"print(#reclab.datasets.list())\"",
     .flags = RLAB_CMD_JOB,
     .run = luajob_run},
    {0},
};

static int luajob_entry(rlab_host *host, rlab_plugin *out, rlab_err *err)
{
    (void)host;
    (void)err;
    RLAB_PLUGIN_INIT(out);
    out->name = "lua";
    out->version = "1.0.0";
    out->summary = "Lua chunks as jobs (lua.run)";
    out->commands = luajob_cmds;
    return RLAB_OK;
}

int rlab_lua_register_plugin(rlab_host *host, rlab_err *err)
{
    rlab__lua_register_help(host);
    return rlab_host_load_static(host, "lua", luajob_entry, err);
}
