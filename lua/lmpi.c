/*
 * lua/lmpi.c: reclab.mpi, the MPI side of a script (core/base/mpi.h). Under
 * `mpirun -np N reclab run x.lua` every rank runs x.lua; these functions let a script see its
 * rank, meet the others, reduce numbers, and spread independent runs over the ranks:
 *
 *     local r = reclab.mpi.sweep{name = "bpr-seeds", seeds = {1, 2, 3, 4},
 *                                configs = {{dim = 16}, {dim = 32}},
 *                                run = function(job) ... return {ndcg = 0.1} end}
 *     -- every rank gets all 8 results (r[i].job, .rank, .seed, .config, .values, .error)
 *
 * Without MPI (or outside mpirun) rank() is 0, size() 1, and the collectives return their
 * input, so the same script runs on a laptop.
 */
#include "lreclab_internal.h"

#include "base/mpi.h"
#include "host/host.h"
#include "model/fit.h"
#include "store/store.h"

#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int l_rank(lua_State *L)
{
    lua_pushinteger(L, rlab_mpi_world_rank()); /* r */
    return 1;
}

static int l_size(lua_State *L)
{
    lua_pushinteger(L, rlab_mpi_world_size()); /* n */
    return 1;
}

static int l_built(lua_State *L)
{
    lua_pushboolean(L, rlab_mpi_built()); /* b */
    return 1;
}

static int l_bytes(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)rlab_mpi_bytes()); /* n */
    return 1;
}

static int l_wait(lua_State *L)
{
    lua_pushnumber(L, rlab_mpi_wait_seconds()); /* s */
    return 1;
}

/* reclab.mpi.overlap([on]) -> on: the gradient exchange overlapped with the backward (every
 * rank must set the same). */
static int l_overlap(lua_State *L)
{
    if (!lua_isnoneornil(L, 1))
        rlab_fit_set_overlap(lua_toboolean(L, 1));
    lua_pushboolean(L, rlab_fit_overlap()); /* b */
    return 1;
}

/* Monotonic seconds (MPI_Wtime's role; also without MPI). */
static int l_wtime(lua_State *L)
{
    lua_pushnumber(L, rlab_now()); /* s */
    return 1;
}

static int l_barrier(lua_State *L)
{
    rlab_err err = {0};
    if (rlab_mpi_barrier(&err))
        return rlab__lua_raise(L, "mpi.barrier", &err);
    return 0;
}

/* allreduce(x [, op]): x a number or an array of numbers; op "sum" (default), "max", "min".
 * Returns the reduced number or a new array. */
static int l_allreduce(lua_State *L)
{
    static const char *const ops[] = {"sum", "max", "min", NULL};
    int op = luaL_checkoption(L, 2, "sum", ops);
    int scalar = lua_type(L, 1) == LUA_TNUMBER;
    if (!scalar)
        luaL_checktype(L, 1, LUA_TTABLE);
    lua_Integer n = scalar ? 1 : luaL_len(L, 1);
    double one, *v = scalar ? &one : lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof *v, 0);
    for (lua_Integer i = 0; i < n; i++) {
        if (scalar) {
            v[i] = lua_tonumber(L, 1);
        } else {
            lua_geti(L, 1, i + 1); /* ... x */
            if (!lua_isnumber(L, -1))
                return luaL_error(L, "mpi.allreduce: element %d is not a number", (int)i + 1);
            v[i] = lua_tonumber(L, -1);
            lua_pop(L, 1); /* ... */
        }
    }
    rlab_err err = {0};
    if (rlab_mpi_allreduce_f64(v, n,
                               op == 0   ? RLAB_MPI_SUM
                               : op == 1 ? RLAB_MPI_MAX
                                         : RLAB_MPI_MIN,
                               &err))
        return rlab__lua_raise(L, "mpi.allreduce", &err);
    if (scalar) {
        lua_pushnumber(L, v[0]); /* ... r */
        return 1;
    }
    lua_createtable(L, (int)n, 0); /* ... t */
    for (lua_Integer i = 0; i < n; i++) {
        lua_pushnumber(L, v[i]); /* ... t x */
        lua_seti(L, -2, i + 1);  /* ... t */
    }
    return 1;
}

/* ---- sweep --------------------------------------------------------------------------- */

/* A growable text buffer for the results this rank sends. */
typedef struct sbuf {
    char *p;
    size_t n, cap;
} sbuf;

static int sb_add(sbuf *b, const char *fmt, ...) RLAB_PRINTF(2, 3);
static int sb_add(sbuf *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (k < 0)
            return -1;
        if (b->p && b->n + (size_t)k < b->cap) {
            b->n += (size_t)k;
            return 0;
        }
        size_t cap = (b->cap ? b->cap * 2 : 4096) + (size_t)k + 1;
        char *p = rlab_realloc(b->p, cap);
        if (!p)
            return -1;
        b->p = p, b->cap = cap;
    }
}

/* Copy a string without tabs or newlines (the wire format's separators). */
static void clean(char *dst, size_t cap, const char *s)
{
    size_t i = 0;
    for (; s && *s && i + 1 < cap; s++)
        dst[i++] = (*s == '\t' || *s == '\n') ? ' ' : *s;
    dst[i] = 0;
}

/* The job at stack index idx as a JSON object of its scalar fields (caller frees). */
static char *job_json(lua_State *L, int idx)
{
    json_object *o = json_object_new_object();
    lua_pushnil(L);            /* ... k */
    while (lua_next(L, idx)) { /* ... k v */
        if (lua_type(L, -2) == LUA_TSTRING) {
            const char *k = lua_tostring(L, -2);
            json_object *v = NULL;
            if (lua_isinteger(L, -1))
                v = json_object_new_int64(lua_tointeger(L, -1));
            else if (lua_type(L, -1) == LUA_TNUMBER)
                v = json_object_new_double(lua_tonumber(L, -1));
            else if (lua_type(L, -1) == LUA_TBOOLEAN)
                v = json_object_new_boolean(lua_toboolean(L, -1));
            else if (lua_type(L, -1) == LUA_TSTRING)
                v = json_object_new_string(lua_tostring(L, -1));
            if (v)
                json_object_object_add(o, k, v);
        }
        lua_pop(L, 1); /* ... k */
    }
    char *s = rlab_strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    return s;
}

/* Build the job list at the top of the stack from the argument table at 1: `jobs` as given,
 * or every config of `configs` (default {{}}) with each seed of `seeds` (field seed). */
static int make_jobs(lua_State *L)
{
    if (lua_getfield(L, 1, "jobs") == LUA_TTABLE) /* opts jobs */
        return (int)luaL_len(L, -1);
    lua_pop(L, 1);   /* opts */
    lua_newtable(L); /* opts jobs */
    int nc = 1, ns = 1, n = 0;
    int hc = lua_getfield(L, 1, "configs") == LUA_TTABLE; /* opts jobs configs */
    int hs = lua_getfield(L, 1, "seeds") == LUA_TTABLE;   /* opts jobs configs seeds */
    if (hc)
        nc = (int)luaL_len(L, -2);
    if (hs)
        ns = (int)luaL_len(L, -1);
    for (int c = 1; c <= nc; c++)
        for (int s = 1; s <= ns; s++) {
            lua_newtable(L);                              /* opts jobs configs seeds job */
            if (hc && lua_geti(L, -3, c) == LUA_TTABLE) { /* ... job cfg */
                lua_pushnil(L);                           /* ... job cfg k */
                while (lua_next(L, -2)) {                 /* ... job cfg k v */
                    lua_pushvalue(L, -2);                 /* ... job cfg k v k */
                    lua_insert(L, -2);                    /* ... job cfg k k v */
                    lua_settable(L, -5);                  /* ... job cfg k */
                }
            }
            lua_pop(L, hc ? 1 : 0); /* opts jobs configs seeds job */
            if (hs) {
                lua_geti(L, -2, s);          /* ... job seed */
                lua_setfield(L, -2, "seed"); /* ... job */
            }
            lua_seti(L, -4, ++n); /* opts jobs configs seeds */
        }
    lua_pop(L, 2); /* opts jobs */
    return n;
}

/* Record the gathered results as runs of rank 0's store: one run per job (plugin "mpi", kind
 * "sweep", the job as its config, its returned numbers as metrics of split "sweep"). */
static void record(lua_State *L, rlab_db *db, const char *name, int res_idx, int n)
{
    for (int i = 1; i <= n; i++) {
        lua_geti(L, res_idx, i);       /* r */
        lua_getfield(L, -1, "config"); /* r cfg */
        char *cfg = job_json(L, lua_gettop(L));
        lua_getfield(L, -2, "seed"); /* r cfg seed */
        int has_seed = lua_isinteger(L, -1);
        uint64_t seed = has_seed ? (uint64_t)lua_tointeger(L, -1) : 0;
        lua_getfield(L, -3, "error"); /* r cfg seed err */
        const char *msg = lua_tostring(L, -1);
        rlab_db_run_info ri = {.plugin = "mpi",
                               .model_kind = "sweep",
                               .name = name,
                               .config_json = cfg,
                               .seed = seed,
                               .no_seed = !has_seed};
        int64_t id = 0;
        rlab_err err = {0};
        if (rlab_db_run_begin(db, &ri, &id, &err) == RLAB_OK) {
            lua_getfield(L, -4, "values"); /* r cfg seed err vals */
            lua_pushnil(L);                /* ... vals k */
            while (lua_next(L, -2)) {      /* ... vals k v */
                if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TNUMBER)
                    rlab_db_metric(db, id, i, "sweep", lua_tostring(L, -2), NULL,
                                   lua_tonumber(L, -1), &err);
                lua_pop(L, 1); /* ... vals k */
            }
            lua_pop(L, 1); /* r cfg seed err */
            rlab_db_run_end(db, id, msg ? RLAB_RUN_FAILED : RLAB_RUN_DONE, msg, &err);
            lua_pushinteger(L, id);     /* r cfg seed err id */
            lua_setfield(L, -5, "run"); /* r cfg seed err */
        }
        if (err.code)
            rlab_log(RLAB_LOG_WARN, "mpi.sweep: recording job %d: %s", i, err.msg);
        rlab_free(cfg);
        lua_pop(L, 4); /* */
    }
}

/* sweep{run = fn, jobs = {...} | configs = {...}, seeds = {...}, name = "label"}: job i
 * (1-based) runs on rank (i - 1) % size, alone (rlab_mpi_local_begin: its training is not
 * split across ranks), as fn(job) in protected mode; fn returns a table whose number fields
 * are the job's results. Collective: every rank calls it and gets every result, in job order:
 * {job, rank, seed, config, values = {...}, error = msg or nil, run = id on rank 0}. Rank 0
 * records each job as a run (plugin "mpi", kind "sweep") with its values as metrics. */
static int l_sweep(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);                               /* opts */
    if (lua_getfield(L, 1, "run") != LUA_TFUNCTION) /* opts run */
        return luaL_error(L, "mpi.sweep: 'run' must be a function");
    lua_getfield(L, 1, "name"); /* opts run name */
    const char *name = luaL_optstring(L, -1, "sweep");
    int n = make_jobs(L); /* opts run name jobs */
    const int jobs = lua_gettop(L), fn = 2;
    const int R = rlab_mpi_world_rank(), P = rlab_mpi_world_size();
    sbuf b = {0};
    int bad = 0;
    for (int i = 1; i <= n; i++) {
        if ((i - 1) % P != R)
            continue;
        lua_pushvalue(L, fn); /* ... fn */
        lua_geti(L, jobs, i); /* ... fn job */
        rlab_mpi_local_begin();
        int st = lua_pcall(L, 1, 1, 0); /* ... res|msg */
        rlab_mpi_local_end();
        if (st != LUA_OK) {
            char m[512];
            clean(m, sizeof m, lua_tostring(L, -1) ? lua_tostring(L, -1) : "error");
            bad |= sb_add(&b, "E\t%d\t%s\n", i, m);
        } else {
            bad |= sb_add(&b, "J\t%d\n", i);
            if (lua_istable(L, -1)) {
                lua_pushnil(L);           /* ... res k */
                while (lua_next(L, -2)) { /* ... res k v */
                    if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TNUMBER) {
                        char k[128];
                        clean(k, sizeof k, lua_tostring(L, -2));
                        bad |= sb_add(&b, "V\t%d\t%s\t%.17g\n", i, k, lua_tonumber(L, -1));
                    }
                    lua_pop(L, 1); /* ... res k */
                }
            }
        }
        lua_pop(L, 1); /* ... */
    }
    if (bad) {
        rlab_free(b.p);
        return luaL_error(L, "mpi.sweep: out of memory");
    }
    /* every rank's results to every rank, once every rank's jobs are done (however long) */
    int64_t *cnt = lua_newuserdatauv(L, 2 * (size_t)P * sizeof *cnt, 0); /* ... cnt */
    void *all = NULL;
    rlab_err err = {0};
    int rc = rlab_mpi_barrier_timeout(0, &err);
    if (rc == RLAB_OK)
        rc = rlab_mpi_allgatherv(b.p, (int64_t)b.n, &all, cnt, cnt + P, &err);
    rlab_free(b.p);
    if (rc)
        return rlab__lua_raise(L, "mpi.sweep", &err);
    lua_createtable(L, n, 0); /* ... cnt res */
    const int res = lua_gettop(L);
    for (int i = 1; i <= n; i++) {
        lua_createtable(L, 0, 6); /* ... r */
        lua_pushinteger(L, i);
        lua_setfield(L, -2, "job");
        lua_pushinteger(L, (i - 1) % P);
        lua_setfield(L, -2, "rank");
        lua_geti(L, jobs, i); /* ... r job */
        lua_getfield(L, -1, "seed");
        lua_setfield(L, -3, "seed");
        lua_setfield(L, -2, "config"); /* ... r */
        lua_newtable(L);
        lua_setfield(L, -2, "values");
        lua_pushstring(L, "no result came back from its rank");
        lua_setfield(L, -2, "error");
        lua_seti(L, res, i); /* ... */
    }
    /* parse "J i", "E i msg", "V i key value" lines */
    char *text = all, *end = (char *)all + cnt[P - 1] + cnt[2 * P - 1];
    while (text < end) {
        char *nl = memchr(text, '\n', (size_t)(end - text));
        if (!nl)
            break;
        *nl = 0;
        char kind = text[0], *f1 = strchr(text, '\t');
        int i = f1 ? atoi(f1 + 1) : 0;
        if (i >= 1 && i <= n) {
            lua_geti(L, res, i); /* ... r */
            char *f2 = strchr(f1 + 1, '\t');
            if (kind == 'J' || kind == 'E') {
                if (kind == 'E')
                    lua_pushstring(L, f2 ? f2 + 1 : "error");
                else
                    lua_pushnil(L);
                lua_setfield(L, -2, "error");
            } else if (kind == 'V' && f2) {
                char *f3 = strchr(f2 + 1, '\t');
                if (f3) {
                    *f3 = 0;
                    lua_getfield(L, -1, "values"); /* ... r vals */
                    lua_pushnumber(L, strtod(f3 + 1, NULL));
                    lua_setfield(L, -2, f2 + 1); /* ... r vals */
                    lua_pop(L, 1);               /* ... r */
                }
            }
            lua_pop(L, 1); /* ... */
        }
        text = nl + 1;
    }
    rlab_free(all);
    rlab_db *db = R == 0 ? rlab_host_db(rlab__lctx(L)->host) : NULL;
    if (db)
        record(L, db, name, res, n);
    lua_pushvalue(L, res); /* ... res */
    return 1;
}

static const luaL_Reg mpi_fns[] = {
    {"rank", l_rank},
    {"size", l_size},
    {"built", l_built},
    {"barrier", l_barrier},
    {"allreduce", l_allreduce},
    {"bytes", l_bytes},
    {"wait_seconds", l_wait},
    {"wtime", l_wtime},
    {"sweep", l_sweep},
    {"overlap", l_overlap},
    {NULL, NULL},
};

void rlab__open_mpi(lua_State *L)
{
    luaL_newlib(L, mpi_fns);               /* M mpi */
    lua_pushstring(L, rlab_mpi_library()); /* M mpi lib */
    lua_setfield(L, -2, "library");        /* M mpi */
    lua_setfield(L, -2, "mpi");            /* M */
}
