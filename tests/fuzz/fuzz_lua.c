/*
 * fuzz_lua: the argument checks of the Lua binding (the lua/ folder). A Lua state bound to a host
 * with the core commands, the plugin "fz" (fuzz_plugin.c) and a tiny dataset "d" runs calls of
 * reclab functions built from the input: the function is picked by a byte, its arguments
 * are Lua values generated from the following bytes (nil, booleans, extreme integers and
 * floats, strings from the input or from the names the binding knows, nested tables with
 * string, integer and odd keys, tables whose metamethods raise, userdata, functions).
 * Each call is made with lua_pcall; the binding must raise a string error or return, never
 * crash, leak C memory across the error's longjmp or accept a value the host's checker
 * refuses (fz's commands abort on a value outside their declaration).
 *
 * The host is confined to a private temporary folder (rlab_host_set_sandbox, as reclab
 * --sandbox does), so the functions that read and write files (datasets.load, models.save /
 * load, the save / load / export verbs, reclab.run lines) are fuzzed too: paths are either
 * text from the input (refused unless inside) or names inside the folder, and the sandbox
 * keeps the fuzzer from writing around the disk. No chunk of Lua source is run: the calls
 * are built through the C API.
 */
#include "fuzz_plugin.h"
#include "reclab_lua.h"

#include "data/loaders.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <math.h>
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static rlab_host *host;
static lua_State *L;
static char sandbox[64]; /* the host's workspace: files the calls may read and write */
static int verbose;      /* FUZZ_VERBOSE=1: print each call's outcome (to look at a corpus) */

static const char *const fns[] = {
    "fz.all",         "fz.pos",          "fz.fail",        "run",
    "help",           "plugins",         "datasets.list",  "datasets.info",
    "datasets.split", "datasets.remove", "models.list",    "models.get",
    "models.remove",  "recommend",       "evaluate",       "train",
    "runs.list",      "runs.get",        "runs.metrics",   "db.query",
    "db.exec",        "db.path",         "world.defaults", "world.demo_config",
    "core.help",      "core.datasets",   "core.models",    "core.jobs",
    "core.cancel",    "core.recommend",  "core.eval",      "verbose",
};
#define NFNS (sizeof fns / sizeof fns[0])

/* Names the binding knows: argument names, datasets, commands, kinds, options. */
static const char *const names[] = {
    "req",        "n",       "lo",       "big",
    "huge",       "f",       "g",        "s",
    "b",          "c",       "d",        "m",
    "p",          "name",    "first",    "second",
    "third",      "kind",    "data",     "model",
    "user",       "k",       "seen",     "split",
    "method",     "test",    "valid",    "loo",
    "ratio",      "seed",    "metrics",  "protocol",
    "d.train",    "d.test",  "fz.all",   "bb",
    "ccc",        "1",       "#0",       "full",
    "sampled-10", "ndcg@10", "SELECT 1", "SELECT * FROM runs",
    "job",        "command", "",         "a",
};
#define NNAMES (sizeof names / sizeof names[0])

typedef struct src {
    const uint8_t *p;
    size_t n;
} src;

static unsigned take(src *s)
{
    if (!s->n)
        return 0;
    s->n--;
    return *s->p++;
}

static uint64_t take_u64(src *s)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | take(s);
    return v;
}

static int l_raise(lua_State *LL) { return luaL_error(LL, "metamethod raised"); }

/* Push one generated value. depth bounds the nesting of tables. */
static void push_value(src *s, int depth)
{
    unsigned b = take(s);
    switch (b % 16) {
    case 0:
        lua_pushnil(L);
        break;
    case 1:
        lua_pushboolean(L, b & 16);
        break;
    case 2:
        lua_pushinteger(L, (lua_Integer)take_u64(s));
        break;
    case 3:
        lua_pushinteger(L, (lua_Integer)(int8_t)take(s));
        break;
    case 4: {
        uint64_t bits = take_u64(s);
        double d;
        memcpy(&d, &bits, sizeof d);
        lua_pushnumber(L, d);
        break;
    }
    case 5: {
        static const double special[] = {0.0,    -0.0,         0.5,          1e308,  -1e308,
                                         9.3e18, 2147483648.0, 4294967298.0, 1e-320, 3.0};
        unsigned k = take(s);
        if (k % 12 == 10)
            lua_pushnumber(L, (double)NAN);
        else if (k % 12 == 11)
            lua_pushnumber(L, (k & 128) ? (double)INFINITY : -(double)INFINITY);
        else
            lua_pushnumber(L, special[k % 12]);
        break;
    }
    case 6:
    case 7: {
        size_t k = take(s);
        if (k > s->n)
            k = s->n;
        lua_pushlstring(L, (const char *)s->p, k);
        s->p += k;
        s->n -= k;
        break;
    }
    case 8:
    case 9:
        lua_pushstring(L, names[take(s) % NNAMES]);
        break;
    case 10:
    case 11:
    case 12: {
        /* a table: positional entries, then key = value pairs */
        lua_newtable(L);
        if (depth >= 3)
            break;
        unsigned npos = take(s) % 4, nkv = take(s) % 6;
        for (unsigned i = 1; i <= npos; i++) {
            push_value(s, depth + 1);
            lua_rawseti(L, -2, (lua_Integer)i);
        }
        for (unsigned i = 0; i < nkv; i++) {
            unsigned kk = take(s);
            switch (kk % 6) {
            case 0:
            case 1:
            case 2:
                lua_pushstring(L, names[take(s) % NNAMES]);
                break;
            case 3:
                lua_pushinteger(L, (lua_Integer)(int8_t)take(s));
                break;
            case 4:
                lua_pushnumber(L, 1.5);
                break;
            default:
                lua_pushboolean(L, 1);
                break;
            }
            push_value(s, depth + 1);
            if (lua_isnil(L, -2)) {
                lua_pop(L, 2);
                continue;
            }
            lua_rawset(L, -3);
        }
        if (b % 16 == 12) { /* metamethods that raise when the binding looks inside */
            lua_newtable(L);
            lua_pushcfunction(L, l_raise);
            lua_setfield(L, -2, "__index");
            lua_pushcfunction(L, l_raise);
            lua_setfield(L, -2, "__len");
            lua_pushcfunction(L, l_raise);
            lua_setfield(L, -2, "__tostring");
            lua_pushcfunction(L, l_raise);
            lua_setfield(L, -2, "__pairs");
            lua_setmetatable(L, -2);
        }
        break;
    }
    case 13:
        lua_newuserdatauv(L, 16, 0);
        break;
    case 14:
        lua_pushcfunction(L, l_raise);
        break;
    default:
        if (b & 16) /* a path inside the workspace */
            lua_pushfstring(L, "%s/%s", sandbox, names[take(s) % NNAMES]);
        else
            lua_pushlightuserdata(L, (void *)s);
        break;
    }
}

/* Push reclab.<path> (nil when missing). */
static void push_fn(const char *path)
{
    lua_getglobal(L, "reclab");
    char part[64];
    const char *p = path;
    for (;;) {
        const char *dot = strchr(p, '.');
        size_t k = dot ? (size_t)(dot - p) : strlen(p);
        memcpy(part, p, k);
        part[k] = '\0';
        if (lua_type(L, -1) != LUA_TTABLE) {
            lua_pop(L, 1);
            lua_pushnil(L);
            return;
        }
        lua_getfield(L, -1, part);
        lua_remove(L, -2);
        if (!dot)
            return;
        p = dot + 1;
    }
}

static void add_dataset(void)
{
    static const char txt[] = "1 1\n1 2\n1 3\n2 2\n2 3\n2 4\n3 1\n3 4\n3 2\n";
    rlab_err err = {0};
    rlab_dataset *ds = NULL;
    if (rlab_data_load_buffer(txt, sizeof txt - 1, "sasrec", "d", &ds, &err) != RLAB_OK)
        abort();
    snprintf(ds->name, sizeof ds->name, "d");
    if (rlab_host_add_dataset(host, ds, &err) != RLAB_OK)
        abort();
}

/* Remove the temporary folder and what the calls left in it (at exit). */
static void remove_tree(const char *d)
{
    DIR *dd = opendir(d);
    if (!dd)
        return;
    struct dirent *e;
    char p[512];
    while ((e = readdir(dd)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(p, sizeof p, "%s/%s", d, e->d_name);
            if (unlink(p) != 0)
                remove_tree(p);
        }
    closedir(dd);
    rmdir(d);
}

static void cleanup(void) { remove_tree(sandbox); }

static void quiet(int level, const char *msg, void *ud)
{
    (void)level;
    (void)msg;
    (void)ud;
}

static void setup(void)
{
    rlab_err err = {0};
    rlab_log_set_sink(quiet, NULL);
    verbose = getenv("FUZZ_VERBOSE") != NULL;
    host = fz_host_new(&err);
    if (!host)
        abort();
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(sandbox, sizeof sandbox, "%s/fuzz_lua.XXXXXX", base);
    if (!mkdtemp(sandbox) || rlab_host_set_sandbox(host, sandbox, &err) != RLAB_OK)
        abort();
    atexit(cleanup);
    add_dataset();
    L = luaL_newstate();
    if (!L)
        abort();
    luaL_requiref(L, "_G", luaopen_base, 1);
    luaL_requiref(L, LUA_TABLIBNAME, luaopen_table, 1);
    luaL_requiref(L, LUA_STRLIBNAME, luaopen_string, 1);
    lua_settop(L, 0);
    if (!rlab_lua_attach(L, host, 0))
        abort();
    luaL_requiref(L, "reclab", luaopen_reclab, 1);
    lua_settop(L, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!L)
        setup();
    char **dsn = rlab_host_dataset_names(host);
    int have_d = 0;
    for (int i = 0; dsn && dsn[i]; i++)
        have_d |= strcmp(dsn[i], "d") == 0;
    rlab_strv_free(dsn);
    if (!have_d)
        add_dataset();
    src s = {data, size};
    for (int call = 0; call < 6 && s.n; call++) {
        const char *fn = fns[take(&s) % NFNS];
        unsigned nargs = take(&s) % 4;
        push_fn(fn);
        for (unsigned i = 0; i < nargs; i++)
            push_value(&s, 0);
        if (lua_pcall(L, (int)nargs, LUA_MULTRET, 0) != LUA_OK) {
            if (lua_type(L, -1) != LUA_TSTRING)
                abort(); /* the binding raises messages, never other values */
            if (verbose)
                fprintf(stderr, "%s: %s\n", fn, lua_tostring(L, -1));
        } else if (verbose) {
            fprintf(stderr, "%s: ok\n", fn);
        }
        lua_settop(L, 0);
    }
    lua_gc(L, LUA_GCCOLLECT);
    return 0;
}
