/*
 * ui/app.c: the application context shared by batch mode and the shell: the session store,
 * the plugin host, the session Lua state with `reclab` preloaded, the demo world, and the
 * Lua runner (chunks, scripts, interrupts) and shell-line runner both modes use.
 */
#include "app.h"

#include "data/world.h"
#include "reclab_lua.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <pthread.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rlab_app {
    rlab_host *host;
    lua_State *L;
    rlab_lua_ctx *lc;
    rlab_app_opts opts;
    pthread_mutex_t mu; /* ev_fn, ev_ud */
    rlab_event_fn ev_fn;
    void *ev_ud;
    /* output of the chunk running now (one chunk at a time) */
    void (*out)(const char *line, void *ud);
    void *out_ud;
    char *last_error;
};

/* ---- output -------------------------------------------------------------------------- */

static void emit_lines(rlab_app *app, const char *text)
{
    /* one out() call per line; a trailing newline does not make an empty line */
    const char *p = text;
    for (;;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        if (!nl && n == 0 && p != text)
            break;
        char *line = rlab_malloc(n + 1);
        if (!line)
            return;
        memcpy(line, p, n);
        line[n] = '\0';
        if (app->out)
            app->out(line, app->out_ud);
        else {
            fputs(line, stdout);
            fputc('\n', stdout);
        }
        rlab_free(line);
        if (!nl)
            break;
        p = nl + 1;
    }
}

/* print(...) in the session state: tab-separated, to the chunk's output */
static int l_app_print(lua_State *L)
{
    rlab_app *app = lua_touserdata(L, lua_upvalueindex(1));
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
    emit_lines(app, lua_tostring(L, -1));
    return 0;
}

/* ---- events -------------------------------------------------------------------------- */

/* The shell-form line rlab_app_exec_line runs on this thread: its output lines go to its
 * out(line, ud) as they come, instead of to stderr with a prefix and again at the end, so
 * each line shows once (a terminal shows both streams). */
static _Thread_local struct {
    int on;
    void (*out)(const char *line, void *ud);
    void *ud;
} tl_line;

static void app_event(const rlab_event *ev, void *ud)
{
    rlab_app *app = ud;
    rlab_lua_event(ev, NULL);
    if (tl_line.on && ev->type == RLAB_EV_LOG) {
        if (tl_line.out)
            tl_line.out(ev->text ? ev->text : "", tl_line.ud);
        else
            printf("%s\n", ev->text ? ev->text : "");
    } else if (!app->opts.quiet) {
        if (ev->type == RLAB_EV_PROGRESS) {
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
        } else if (ev->type == RLAB_EV_LOG && ev->text) {
            fprintf(stderr, "%s: %s\n", ev->cmd, ev->text);
        }
    }
    pthread_mutex_lock(&app->mu);
    rlab_event_fn fn = app->ev_fn;
    void *fud = app->ev_ud;
    pthread_mutex_unlock(&app->mu);
    if (fn)
        fn(ev, fud);
}

void rlab_app_set_event_fn(rlab_app *app, rlab_event_fn fn, void *ud)
{
    if (!app)
        return;
    pthread_mutex_lock(&app->mu);
    app->ev_fn = fn;
    app->ev_ud = ud;
    pthread_mutex_unlock(&app->mu);
}

/* ---- open / close -------------------------------------------------------------------- */

static int add_demo(rlab_app *app, rlab_err *err)
{
    /* generated, recorded in the store with its recipe, registered (host.h, "datasets") */
    return rlab_host_make_world(app->host, rlab_host_db(app->host), NULL, "demo", NULL, err);
}

/* --sandbox: the workspace is the folder of the store file. */
static int set_sandbox(rlab_app *app, rlab_err *err)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", app->opts.db_path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    return rlab_host_set_sandbox(app->host, dir, err);
}

/* Protected part of the Lua set-up (allocation errors become a status, not a panic). */
static int lua_setup(lua_State *L)
{
    rlab_app *app = lua_touserdata(L, 1);
    luaL_openlibs(L);
    luaL_requiref(L, "reclab", luaopen_reclab, 1); /* app M */
    lua_pop(L, 1);                                 /* app */
    lua_pushlightuserdata(L, app);                 /* app app */
    lua_pushcclosure(L, l_app_print, 1);           /* app print */
    lua_setglobal(L, "print");                     /* app */
    return 0;
}

rlab_app *rlab_app_open(const rlab_app_opts *o, rlab_err *err)
{
    rlab_app *app = rlab_calloc(1, sizeof *app);
    if (!app) {
        rlab_errf(err, RLAB_ENOMEM, "out of memory");
        return NULL;
    }
    if (o)
        app->opts = *o;
    const char *env = getenv("RECLAB_DB");
    if (!app->opts.db_path)
        app->opts.db_path = env && *env ? env : "./" RLAB_DB_DEFAULT_PATH;
    pthread_mutex_init(&app->mu, NULL);
    app->host = rlab_host_new(NULL, err);
    if (!app->host)
        goto fail;
    if (app->opts.sandbox && set_sandbox(app, err))
        goto fail;
    rlab_host_set_event_fn(app->host, app_event, app);
    rlab_host_set_progress_interval(app->host, 0.5);
    if (rlab_lua_register_plugin(app->host, err))
        goto fail;
    if (rlab_host_load_all(app->host, NULL, err))
        goto fail;
    if (!app->opts.quiet)
        for (int i = 0; i < rlab_host_refusal_count(app->host); i++)
            fprintf(stderr, "reclab: %s\n", rlab_host_refusal(app->host, i));
    if (!app->opts.no_store && rlab_host_set_store(app->host, app->opts.db_path, err))
        goto fail;
    if (!app->opts.quiet &&
        !app->opts.no_store) { /* the workspace's datasets that cannot reopen, and why */
        rlab_dataset_brief *ds = NULL;
        int nds = 0;
        rlab_err e = {0};
        if (rlab_host_datasets(app->host, &ds, &nds, &e) == RLAB_OK)
            for (int i = 0; i < nds; i++)
                if (ds[i].state == RLAB_DS_UNAVAILABLE)
                    fprintf(stderr, "reclab: %s\n", ds[i].problem);
        rlab_free(ds);
    }
    if (!app->opts.no_demo && add_demo(app, err))
        goto fail;
    app->L = luaL_newstate();
    if (!app->L) {
        rlab_errf(err, RLAB_ENOMEM, "cannot create the Lua state");
        goto fail;
    }
    app->lc = rlab_lua_attach(app->L, app->host, 0);
    lua_pushcfunction(app->L, lua_setup); /* setup */
    lua_pushlightuserdata(app->L, app);   /* setup app */
    if (!app->lc || lua_pcall(app->L, 1, 0, 0) != LUA_OK) {
        rlab_errf(err, RLAB_ENOMEM, "cannot set up Lua: %s",
                  app->lc ? lua_tostring(app->L, -1) : "out of memory");
        goto fail;
    }
    return app;
fail:
    rlab_app_close(app);
    return NULL;
}

void rlab_app_close(rlab_app *app)
{
    if (!app)
        return;
    /* Lua first: its handles only name host objects, and the host outlives them */
    if (app->L)
        lua_close(app->L);
    rlab_host_free(app->host);
    pthread_mutex_destroy(&app->mu);
    rlab_free(app->last_error);
    rlab_free(app);
}

rlab_host *rlab_app_host(rlab_app *app) { return app ? app->host : NULL; }
rlab_db *rlab_app_db(rlab_app *app) { return app ? rlab_host_db(app->host) : NULL; }

const char *rlab_app_last_error(rlab_app *app)
{
    return app && app->last_error ? app->last_error : "";
}

/* ---- running Lua --------------------------------------------------------------------- */

/* Message handler: the message plus a traceback (lua.c's msghandler). */
static int msghandler(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (!msg) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
            return 1;
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1)); /* e m */
    }
    luaL_traceback(L, L, msg, 1); /* ... tb */
    return 1;
}

/* Print the n values above stack slot base (the msghandler), each in its readable form
 * (rlab_lua_pretty: tables one level deep, aligned), tab-separated like print() when they all
 * fit on one line, else one after the other. On error the message is left on top. */
static int print_values(rlab_app *app, int base, int n)
{
    lua_State *L = app->L;
    luaL_Buffer b;
    int multi = 0;
    for (int i = 1; i <= n; i++) {
        lua_pushcfunction(L, rlab_lua_pretty); /* ... f */
        lua_pushvalue(L, base + i);            /* ... f v */
        int st = lua_pcall(L, 1, 1, base);     /* ... s | e */
        if (st != LUA_OK)
            return st;
        lua_replace(L, base + i); /* the value's text in its place */
        multi |= strchr(lua_tostring(L, base + i), '\n') != NULL;
    }
    luaL_buffinit(L, &b); /* ... b */
    for (int i = 1; i <= n; i++) {
        lua_pushvalue(L, base + i); /* ... b s */
        luaL_addvalue(&b);          /* ... b */
        if (i < n)
            luaL_addchar(&b, multi ? '\n' : '\t');
    }
    luaL_pushresult(&b); /* ... text */
    emit_lines(app, lua_tostring(L, -1));
    lua_pop(L, 1); /* */
    return LUA_OK;
}

/* Call the function at the top with nargs arguments below it, msghandler under them. Fills
 * err and last_error on failure; prints returned values when print_results. */
static int call_chunk(rlab_app *app, int nargs, int print_results, rlab_err *err)
{
    lua_State *L = app->L;
    int base = lua_gettop(L) - nargs; /* the function */
    lua_pushcfunction(L, msghandler); /* ... f args h */
    lua_insert(L, base);              /* ... h f args */
    int st = lua_pcall(L, nargs, LUA_MULTRET, base);
    lua_sethook(L, NULL, 0, 0); /* an interrupt that came too late must not hit the next chunk */
    int interrupted = rlab_lua_ctx_take_interrupt(app->lc);
    int rc = RLAB_OK;
    if (st == LUA_OK) {
        int n = lua_gettop(L) - base;
        if (print_results && n > 0 && print_values(app, base, n) != LUA_OK)
            st = LUA_ERRRUN;
    }
    if (st != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        rlab_free(app->last_error);
        app->last_error = rlab_strdup(msg ? msg : "error");
        /* err gets the first line (the message proper, without the traceback) */
        char first[sizeof err->msg];
        snprintf(first, sizeof first, "%s", msg ? msg : "error");
        char *nl = strchr(first, '\n');
        if (nl)
            *nl = '\0';
        rc = rlab_errf(err, interrupted ? RLAB_ECANCELED : RLAB_EINVAL, "%s", first);
    }
    lua_settop(L, base - 1);
    return rc;
}

static void begin_chunk(rlab_app *app, void (*out)(const char *, void *), void *ud)
{
    app->out = out;
    app->out_ud = ud;
    rlab_free(app->last_error);
    app->last_error = NULL;
    lua_sethook(app->L, NULL, 0, 0);
    rlab_lua_ctx_take_interrupt(app->lc);
}

int rlab_app_lua_exec(rlab_app *app, const char *code, const char *chunkname,
                      void (*out)(const char *line, void *ud), void *ud, rlab_err *err)
{
    if (!app || !code)
        return rlab_errf(err, RLAB_EINVAL, "lua: no code");
    lua_State *L = app->L;
    begin_chunk(app, out, ud);
    /* like lua.c's REPL: first try the line as an expression whose values are printed */
    size_t n = strlen(code);
    lua_pushliteral(L, "return "); /* r */
    lua_pushlstring(L, code, n);   /* r code */
    lua_concat(L, 2);              /* retcode */
    const char *ret = lua_tostring(L, -1);
    /* a confined session runs source text only (bytecode can break the VM) */
    const char *mode = rlab_host_sandbox(app->host) ? "t" : NULL;
    int st =
        luaL_loadbufferx(L, ret, strlen(ret), chunkname ? chunkname : "=lua", mode); /* rc f|e */
    lua_remove(L, -2);                                                               /* f|e */
    if (st != LUA_OK) {
        lua_pop(L, 1);                                                           /* */
        st = luaL_loadbufferx(L, code, n, chunkname ? chunkname : "=lua", mode); /* f|e */
    }
    if (st != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        rlab_free(app->last_error);
        app->last_error = rlab_strdup(msg ? msg : "syntax error");
        rlab_errf(err, RLAB_EINVAL, "%s", msg ? msg : "syntax error");
        lua_pop(L, 1); /* */
        app->out = NULL;
        return RLAB_EINVAL;
    }
    /* values returned by the chunk are printed (the shell's `=expr`) */
    int rc = call_chunk(app, 0, 1, err);
    app->out = NULL;
    return rc;
}

int rlab_app_lua_file(rlab_app *app, const char *path, int argc, char **argv,
                      void (*out)(const char *line, void *ud), void *ud, rlab_err *err)
{
    if (!app || !path)
        return rlab_errf(err, RLAB_EINVAL, "lua: no script");
    lua_State *L = app->L;
    begin_chunk(app, out, ud);
    /* global arg = {[0] = path, argv...} as lua.c's createargtable */
    lua_createtable(L, argc, 1); /* arg */
    lua_pushstring(L, path);     /* arg path */
    lua_rawseti(L, -2, 0);       /* arg */
    for (int i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]); /* arg a */
        lua_rawseti(L, -2, i + 1);  /* arg */
    }
    lua_setglobal(L, "arg");                                                     /* */
    int st = luaL_loadfilex(L, path, rlab_host_sandbox(app->host) ? "t" : NULL); /* f|e */
    if (st != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        rlab_free(app->last_error);
        app->last_error = rlab_strdup(msg ? msg : "cannot load script");
        rlab_errf(err, st == LUA_ERRFILE ? RLAB_EIO : RLAB_EINVAL, "%s", msg ? msg : "error");
        lua_pop(L, 1); /* */
        app->out = NULL;
        return err ? err->code : RLAB_EINVAL;
    }
    for (int i = 0; i < argc; i++)
        lua_pushstring(L, argv[i]); /* f a1..an */
    int rc = call_chunk(app, argc, 0, err);
    app->out = NULL;
    return rc;
}

void rlab_app_lua_interrupt(rlab_app *app)
{
    if (app)
        rlab_lua_ctx_interrupt(app->lc);
}

void rlab_app_interrupt(rlab_app *app)
{
    if (!app)
        return;
    rlab_lua_ctx_interrupt(app->lc);
    rlab_host_cancel_all(app->host);
}

/* ---- shell lines --------------------------------------------------------------------- */

static void outf(void (*out)(const char *, void *), void *ud, const char *fmt, ...)
    RLAB_PRINTF(3, 4);
static void outf(void (*out)(const char *, void *), void *ud, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (out)
        out(line, ud);
    else
        printf("%s\n", line);
}

static void cell_text(const rlab_cell *c, char *buf, size_t n)
{
    switch (c->type) {
    case RLAB_CELL_INT:
        snprintf(buf, n, "%lld", (long long)c->i);
        break;
    case RLAB_CELL_FLOAT:
        snprintf(buf, n, "%.4f", c->f);
        break;
    case RLAB_CELL_TEXT:
    case RLAB_CELL_MODEL:
        snprintf(buf, n, "%s", c->s ? c->s : "");
        break;
    default:
        snprintf(buf, n, "-");
        break;
    }
}

/* Scalars "name = value", then each table with aligned columns (the lines were printed as
 * they came). */
static void print_result(const rlab_result *res, void (*out)(const char *, void *), void *ud)
{
    if (!res)
        return;
    for (int i = 0; i < res->nscalars; i++) {
        char v[256];
        cell_text(&res->scalars[i].value, v, sizeof v);
        outf(out, ud, "%s = %s", res->scalars[i].name, v);
    }
    for (int t = 0; t < res->ntables; t++) {
        const rlab_table *tb = res->tables[t];
        int w[64];
        int nc = tb->ncols < 64 ? tb->ncols : 64;
        for (int c = 0; c < nc; c++)
            w[c] = (int)strlen(tb->cols[c]);
        char v[256];
        for (int64_t r = 0; r < tb->nrows; r++)
            for (int c = 0; c < nc; c++) {
                cell_text(&tb->cells[r * tb->ncols + c], v, sizeof v);
                int l = (int)strlen(v);
                if (l > w[c])
                    w[c] = l < 40 ? l : 40;
            }
        char line[1024];
        size_t k = 0;
        for (int c = 0; c < nc && k < sizeof line; c++)
            k += (size_t)snprintf(line + k, sizeof line - k, "%s%-*s", c ? "  " : "", w[c],
                                  tb->cols[c]);
        outf(out, ud, "%s", line);
        for (int64_t r = 0; r < tb->nrows; r++) {
            k = 0;
            for (int c = 0; c < nc && k < sizeof line; c++) {
                cell_text(&tb->cells[r * tb->ncols + c], v, sizeof v);
                k += (size_t)snprintf(line + k, sizeof line - k, "%s%-*.*s", c ? "  " : "", w[c],
                                      w[c], v);
            }
            outf(out, ud, "%s", line);
        }
    }
}

int rlab_app_exec_line(rlab_app *app, const char *line, void (*out)(const char *line, void *ud),
                       void *ud, rlab_err *err)
{
    if (!app || !line)
        return rlab_errf(err, RLAB_EINVAL, "no command");
    rlab_result *res = NULL;
    tl_line.out = out;
    tl_line.ud = ud;
    tl_line.on = 1;
    int rc = rlab_host_run_sync(app->host, line, &res, err);
    tl_line.on = 0;
    print_result(res, out, ud);
    rlab_result_free(res);
    return rc;
}
