/*
 * lua/ldb.c: reclab.db (query, exec) and reclab.runs (list, get, metrics) over the session
 * store of the host.
 *
 * db.query(sql, ...) is read-only: any write, DDL, transaction or pragma assignment is
 * refused by the store's authorizer and raised as "db.query: ...". db.exec(sql, ...) may
 * write the user's own and the plugins' tables; core tables stay read-only there too.
 * Parameters bind to ?1..?N: integers, floats, strings, booleans (1/0) and nil (NULL).
 * Rows come back as tables keyed by column name (SQL NULL is an absent field). Ctrl-C stops
 * a running query ("db.query: interrupted"), whatever it is computing.
 */
#include "lreclab_internal.h"

#include "base/mpi.h"
#include "store/store.h"

#include <string.h>

#define MAX_PARAMS 32

static rlab_db *need_db(lua_State *L, const char *fname)
{
    rlab_db *db = rlab_host_db(rlab__lctx(L)->host);
    if (!db && rlab_mpi_world_rank() > 0)
        luaL_error(L,
                   "%s: no session store on MPI rank %d (rank 0 alone holds it: guard with "
                   "reclab.mpi.rank() == 0)",
                   fname, rlab_mpi_world_rank());
    if (!db)
        luaL_error(L, "%s: no session store", fname);
    return db;
}

/* Fill params from the Lua arguments first..top. */
static int get_params(lua_State *L, int first, rlab_db_value *p, const char *fname)
{
    int n = lua_gettop(L) - first + 1;
    if (n < 0)
        n = 0;
    if (n > MAX_PARAMS)
        luaL_error(L, "%s: too many parameters (at most %d)", fname, MAX_PARAMS);
    for (int i = 0; i < n; i++) {
        int idx = first + i;
        memset(&p[i], 0, sizeof p[i]);
        switch (lua_type(L, idx)) {
        case LUA_TNIL:
            p[i].type = RLAB_DB_NULL;
            break;
        case LUA_TBOOLEAN:
            p[i].type = RLAB_DB_INT;
            p[i].i = lua_toboolean(L, idx);
            break;
        case LUA_TNUMBER:
            if (lua_isinteger(L, idx)) {
                p[i].type = RLAB_DB_INT;
                p[i].i = (int64_t)lua_tointeger(L, idx);
            } else {
                p[i].type = RLAB_DB_REAL;
                p[i].r = (double)lua_tonumber(L, idx);
            }
            break;
        case LUA_TSTRING:
            p[i].type = RLAB_DB_TEXT;
            p[i].s = lua_tolstring(L, idx, &p[i].n);
            break;
        default:
            luaL_error(L, "%s: bad parameter #%d (nil, boolean, number or string expected, got %s)",
                       fname, i + 1, luaL_typename(L, idx));
        }
    }
    return n;
}

static void push_value(lua_State *L, const rlab_db_value *v)
{
    switch (v->type) {
    case RLAB_DB_INT:
        lua_pushinteger(L, (lua_Integer)v->i); /* v */
        break;
    case RLAB_DB_REAL:
        lua_pushnumber(L, (lua_Number)v->r); /* v */
        break;
    case RLAB_DB_TEXT:
    case RLAB_DB_BLOB:
        lua_pushlstring(L, v->s, v->n); /* v */
        break;
    default:
        lua_pushnil(L); /* nil */
        break;
    }
}

/* Push the rows of r as an array of tables, with field `columns` listing the names. */
static void push_rows(lua_State *L, const rlab_db_result *r)
{
    lua_createtable(L, r->nrow, 1); /* rows */
    lua_createtable(L, r->ncol, 0); /* rows cols */
    for (int c = 0; c < r->ncol; c++) {
        lua_pushstring(L, r->names[c]); /* rows cols name */
        lua_rawseti(L, -2, c + 1);      /* rows cols */
    }
    lua_setfield(L, -2, "columns"); /* rows */
    for (int i = 0; i < r->nrow; i++) {
        lua_createtable(L, 0, r->ncol); /* rows row */
        for (int c = 0; c < r->ncol; c++) {
            push_value(L, rlab_db_result_cell(r, i, c)); /* rows row v */
            lua_setfield(L, -2, r->names[c]);            /* rows row */
        }
        lua_rawseti(L, -2, i + 1); /* rows */
    }
}

/* Ctrl-C reaches a running query: the store polls this between SQLite steps (a query that
 * computes without returning rows never gets back to Lua, where the interrupt hook acts). */
static int interrupted(void *ud) { return atomic_load(&((rlab_lua_ctx *)ud)->interrupted) != 0; }

static int query(lua_State *L, const char *fname, unsigned flags)
{
    const char *sql = luaL_checkstring(L, 1);
    rlab_db *db = need_db(L, fname);
    rlab_db_value p[MAX_PARAMS];
    int n = get_params(L, 2, p, fname);
    rlab_err err = {0};
    rlab_db_limits lim = {.cancelled = interrupted, .ud = rlab__lctx(L)};
    rlab_db_result *r = rlab_db_query_limited(db, sql, p, n, flags, &lim, &err);
    if (!r && err.code == RLAB_ECANCELED)
        return luaL_error(L, "%s: interrupted", fname);
    if (!r)
        return rlab__lua_raise(L, fname, &err);
    push_rows(L, r); /* rows */
    if (flags & RLAB_DB_ALLOW_WRITES) {
        lua_pushinteger(L, r->changes); /* rows n */
        lua_setfield(L, -2, "changes"); /* rows */
    }
    rlab_db_result_free(r);
    return 1;
}

/* db.query(sql, ...) -> rows (read-only) */
static int l_db_query(lua_State *L) { return query(L, "db.query", 0); }
/* db.exec(sql, ...) -> rows (writes allowed outside the core tables; rows.changes) */
static int l_db_exec(lua_State *L) { return query(L, "db.exec", RLAB_DB_ALLOW_WRITES); }

/* db.path() -> the store file, or nil */
static int l_db_path(lua_State *L)
{
    rlab_db *db = rlab_host_db(rlab__lctx(L)->host);
    if (!db)
        return rlab__lua_miss(L, "db.path: no session store");
    lua_pushstring(L, rlab_db_path(db)); /* path */
    return 1;
}

/* runs.list([{status=, name=, limit=}]) -> rows, newest last */
static int l_runs_list(lua_State *L)
{
    rlab_db *db = need_db(L, "runs.list");
    const char *status = NULL, *name = NULL;
    lua_Integer limit = -1;
    if (!lua_isnoneornil(L, 1)) {
        luaL_checktype(L, 1, LUA_TTABLE);
        lua_getfield(L, 1, "status"); /* status? */
        status = lua_tostring(L, -1);
        lua_getfield(L, 1, "name"); /* status? name? */
        name = lua_tostring(L, -1);
        lua_getfield(L, 1, "limit"); /* status? name? limit? */
        limit = luaL_optinteger(L, -1, -1);
    }
    rlab_db_value p[3] = {
        {.type = status ? RLAB_DB_TEXT : RLAB_DB_NULL,
         .s = status,
         .n = status ? strlen(status) : 0},
        {.type = name ? RLAB_DB_TEXT : RLAB_DB_NULL, .s = name, .n = name ? strlen(name) : 0},
        {.type = RLAB_DB_INT, .i = (int64_t)limit},
    };
    rlab_err err = {0};
    rlab_db_result *r = rlab_db_query_table(
        db,
        "SELECT * FROM (SELECT id, plugin, model_kind, name, dataset, config, seed, status,"
        " started, ended, error FROM runs WHERE (?1 IS NULL OR status = ?1)"
        " AND (?2 IS NULL OR name = ?2) ORDER BY id DESC LIMIT ?3) ORDER BY id",
        p, 3, 0, &err);
    if (!r)
        return rlab__lua_raise(L, "runs.list", &err);
    push_rows(L, r); /* rows */
    rlab_db_result_free(r);
    return 1;
}

/* runs.get(id) -> row | nil, msg */
static int l_runs_get(lua_State *L)
{
    rlab_db *db = need_db(L, "runs.get");
    lua_Integer id = luaL_checkinteger(L, 1);
    rlab_db_value p = {.type = RLAB_DB_INT, .i = (int64_t)id};
    rlab_err err = {0};
    rlab_db_result *r = rlab_db_query_table(db, "SELECT * FROM runs WHERE id = ?1", &p, 1, 0, &err);
    if (!r)
        return rlab__lua_raise(L, "runs.get", &err);
    if (r->nrow == 0) {
        rlab_db_result_free(r);
        return rlab__lua_miss(L, "runs.get: run %lld not found", (long long)id);
    }
    push_rows(L, r);       /* rows */
    lua_rawgeti(L, -1, 1); /* rows row */
    rlab_db_result_free(r);
    return 1;
}

/* runs.metrics(id) -> rows {step, split, name, protocol, value} in insertion order */
static int l_runs_metrics(lua_State *L)
{
    rlab_db *db = need_db(L, "runs.metrics");
    lua_Integer id = luaL_checkinteger(L, 1);
    rlab_db_value p = {.type = RLAB_DB_INT, .i = (int64_t)id};
    rlab_err err = {0};
    rlab_db_result *r = rlab_db_query_table(
        db, "SELECT step, split, name, protocol, value FROM metrics WHERE run_id = ?1 ORDER BY id",
        &p, 1, 0, &err);
    if (!r)
        return rlab__lua_raise(L, "runs.metrics", &err);
    push_rows(L, r); /* rows */
    rlab_db_result_free(r);
    return 1;
}

static const luaL_Reg db_fns[] = {
    {"query", l_db_query},
    {"exec", l_db_exec},
    {"path", l_db_path},
    {NULL, NULL},
};

static const luaL_Reg runs_fns[] = {
    {"list", l_runs_list},
    {"get", l_runs_get},
    {"metrics", l_runs_metrics},
    {NULL, NULL},
};

void rlab__open_db(lua_State *L)
{
    luaL_newlib(L, db_fns);      /* M db */
    lua_setfield(L, -2, "db");   /* M */
    luaL_newlib(L, runs_fns);    /* M runs */
    lua_setfield(L, -2, "runs"); /* M */
}
