/*
 * lua/ldata.c: reclab.datasets (load, list, info, split, remove) and reclab.world (the
 * synthetic generator and the demo world).
 *
 * Splits are datasets too: datasets.split("demo", {method = "loo"}) adds "demo.train",
 * "demo.valid" and "demo.test", each with the parent's user and item vocabularies (so the
 * dense indices agree across the three and with the parent), so any command that takes a
 * dataset can train on "demo.train", and reclab.evaluate{data = "demo"} finds the parts.
 */
#include "lreclab_internal.h"

#include "data/loaders.h"
#include "data/split.h"
#include "data/world.h"
#include "store/store.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ------------------------------------------------------------------------- */

void rlab__add_dataset(lua_State *L, const char *fname, rlab_dataset *ds, const char *source)
{
    rlab_lua_ctx *lc = rlab__lctx(L);
    rlab_err err = {0};
    rlab_db_dataset_info di = {.name = ds->name,
                               .source = source ? source : ds->source,
                               .format = ds->format,
                               .n_users = rlab_vocab_size(&ds->users),
                               .n_items = rlab_vocab_size(&ds->items),
                               .n_inter = (int64_t)ds->inter.n};
    char name[64];
    snprintf(name, sizeof name, "%s", ds->name);
    rlab_db *db = rlab_host_db(lc->host);
    /* the store row first: ds belongs to the host once added */
    if (db && rlab_db_dataset_register(db, &di, NULL, &err)) {
        rlab_dataset_free(ds);
        rlab__lua_raise(L, fname, &err);
    }
    if (rlab_host_add_dataset(lc->host, ds, &err))
        rlab__lua_raise(L, fname, &err);
}

static void setfield_int(lua_State *L, const char *k, lua_Integer v)
{
    lua_pushinteger(L, v);  /* t v */
    lua_setfield(L, -2, k); /* t */
}

static void setfield_str(lua_State *L, const char *k, const char *v)
{
    lua_pushstring(L, v);   /* t v */
    lua_setfield(L, -2, k); /* t */
}

static void push_feat_names(lua_State *L, const rlab_feats *f)
{
    static const char *const kinds[] = {"token", "token_seq", "float", "text"};
    lua_createtable(L, 0, f->ncols); /* t */
    for (int i = 0; i < f->ncols; i++) {
        lua_pushstring(L, kinds[f->cols[i].kind]); /* t kind */
        lua_setfield(L, -2, f->cols[i].name);      /* t */
    }
}

void rlab__push_dataset_info(lua_State *L, const rlab_dataset *ds)
{
    lua_createtable(L, 0, 10); /* t */
    setfield_str(L, "name", ds->name);
    setfield_str(L, "source", ds->source);
    setfield_str(L, "format", ds->format);
    setfield_int(L, "n_users", rlab_vocab_size(&ds->users));
    setfield_int(L, "n_items", rlab_vocab_size(&ds->items));
    setfield_int(L, "n_inter", (lua_Integer)ds->inter.n);
    lua_pushboolean(L, (ds->inter.flags & RLAB_INTER_HAS_TS) != 0);     /* t b */
    lua_setfield(L, -2, "has_ts");                                      /* t */
    lua_pushboolean(L, (ds->inter.flags & RLAB_INTER_HAS_RATING) != 0); /* t b */
    lua_setfield(L, -2, "has_rating");                                  /* t */
    push_feat_names(L, &ds->item_feats);                                /* t f */
    lua_setfield(L, -2, "item_features");                               /* t */
    push_feat_names(L, &ds->user_feats);                                /* t f */
    lua_setfield(L, -2, "user_features");                               /* t */
}

static const char *opt_string(lua_State *L, int t, const char *key, const char *def)
{
    if (lua_isnoneornil(L, t))
        return def;
    lua_getfield(L, t, key); /* v */
    const char *s = lua_isnil(L, -1) ? def : lua_tostring(L, -1);
    if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TSTRING)
        luaL_error(L, "bad option '%s' (string expected, got %s)", key, luaL_typename(L, -1));
    lua_pop(L, 1); /* (s stays alive: it is a field of the table t) */
    return s;
}

static double opt_number(lua_State *L, int t, const char *key, double def)
{
    if (lua_isnoneornil(L, t))
        return def;
    lua_getfield(L, t, key); /* v */
    int ok = 0;
    double v = lua_isnil(L, -1) ? def : (double)lua_tonumberx(L, -1, &ok);
    if (!lua_isnil(L, -1) && !ok)
        luaL_error(L, "bad option '%s' (number expected, got %s)", key, luaL_typename(L, -1));
    lua_pop(L, 1); /* */
    return v;
}

/* An integer option of table t (all 64 bits: seeds go through here, never a double);
 * an integral float is accepted, anything else raises "<fn>: bad option 'key' (integer
 * expected, got ...)". */
static int64_t opt_int64(lua_State *L, int t, const char *fn, const char *key, int64_t def)
{
    if (lua_isnoneornil(L, t))
        return def;
    lua_getfield(L, t, key); /* v */
    int ok = 1;
    int64_t v = def;
    if (!lua_isnil(L, -1))
        v = (int64_t)lua_tointegerx(L, -1, &ok);
    if (!ok)
        luaL_error(L, "%s: bad option '%s' (integer expected, got %s)", fn, key,
                   lua_type(L, -1) == LUA_TNUMBER ? lua_tostring(L, -1) : luaL_typename(L, -1));
    lua_pop(L, 1); /* */
    return v;
}

/* ---- datasets ------------------------------------------------------------------------ */

/* datasets.load(path, {format=, name=}) -> info | nil, msg */
static int l_datasets_load(lua_State *L)
{
    rlab_lua_ctx *lc = rlab__lctx(L);
    const char *path = luaL_checkstring(L, 1);
    if (!lua_isnoneornil(L, 2))
        luaL_checktype(L, 2, LUA_TTABLE);
    const char *format = opt_string(L, 2, "format", NULL);
    const char *name = opt_string(L, 2, "name", NULL);
    rlab__check_path(L, "datasets.load", path);
    rlab_dataset *ds = NULL;
    rlab_err err = {0};
    if (rlab_data_load(path, format, name, &ds, &err))
        return rlab__lua_miss(L, "datasets.load: %s", err.msg);
    char dsname[64];
    snprintf(dsname, sizeof dsname, "%s", ds->name);
    rlab__add_dataset(L, "datasets.load", ds, NULL);
    rlab_dataset *got = rlab_host_dataset_get(lc->host, dsname);
    if (!got)
        return rlab__lua_miss(L, "datasets.load: dataset vanished");
    rlab__push_dataset_info(L, got); /* info */
    rlab_host_dataset_release(lc->host, got);
    return 1;
}

/* datasets.list() -> {info, ...} sorted by name */
static int l_datasets_list(lua_State *L)
{
    rlab_lua_ctx *lc = rlab__lctx(L);
    char **names = rlab_host_dataset_names(lc->host);
    lua_newtable(L); /* t */
    int n = 0;
    for (int i = 0; names && names[i]; i++) {
        rlab_dataset *ds = rlab_host_dataset_get(lc->host, names[i]);
        if (!ds)
            continue;
        rlab__push_dataset_info(L, ds); /* t info */
        rlab_host_dataset_release(lc->host, ds);
        lua_rawseti(L, -2, ++n); /* t */
    }
    rlab_strv_free(names);
    return 1;
}

/* datasets.info(name) -> info | nil, msg */
static int l_datasets_info(lua_State *L)
{
    rlab_lua_ctx *lc = rlab__lctx(L);
    const char *name = luaL_checkstring(L, 1);
    rlab_dataset *ds = rlab_host_dataset_get(lc->host, name);
    if (!ds)
        return rlab__lua_miss(L, "datasets.info: dataset '%s' not found", name);
    rlab__push_dataset_info(L, ds); /* info */
    rlab_host_dataset_release(lc->host, ds);
    return 1;
}

/* datasets.remove(name) -> true | nil, msg */
static int l_datasets_remove(lua_State *L)
{
    rlab_lua_ctx *lc = rlab__lctx(L);
    const char *name = luaL_checkstring(L, 1);
    rlab_err err = {0};
    if (rlab_host_remove_dataset(lc->host, name, &err))
        return rlab__lua_miss(L, "datasets.remove: %s", err.msg);
    lua_pushboolean(L, 1); /* true */
    return 1;
}

/* A new dataset named "<parent>.<part>" sharing parent's vocabularies, taking over rows. */
static rlab_dataset *split_part(const rlab_dataset *parent, const char *prefix, const char *part,
                                rlab_inter *rows, rlab_err *err)
{
    char name[160];
    snprintf(name, sizeof name, "%s.%s", prefix, part);
    if (strlen(name) >= sizeof parent->name) {
        rlab_errf(err, RLAB_EINVAL, "split name '%s' is too long", name);
        return NULL;
    }
    rlab_dataset *ds = rlab_dataset_new(name, err);
    if (!ds)
        return NULL;
    snprintf(ds->source, sizeof ds->source, "split:%s", parent->name);
    snprintf(ds->format, sizeof ds->format, "%s", parent->format);
    for (int32_t i = 0; i < parent->users.n; i++) {
        const char *s = parent->users.names[i];
        if (rlab_vocab_add(&ds->users, s, strlen(s)) < 0)
            goto oom;
    }
    for (int32_t i = 0; i < parent->items.n; i++) {
        const char *s = parent->items.names[i];
        if (rlab_vocab_add(&ds->items, s, strlen(s)) < 0)
            goto oom;
    }
    /* move the rows: the split table keeps an empty one */
    rlab_inter_clear(&ds->inter);
    ds->inter = *rows;
    rlab_inter_init(rows);
    return ds;
oom:
    rlab_dataset_free(ds);
    rlab_errf(err, RLAB_ENOMEM, "out of memory");
    return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Timestamp at quantile q of the rows (0 <= q <= 1). */
static int64_t ts_quantile(const rlab_inter *t, double q, rlab_err *err, int *ok)
{
    *ok = 0;
    if (t->n == 0)
        return 0;
    int64_t *ts = rlab_malloc(t->n * sizeof *ts);
    if (!ts) {
        rlab_errf(err, RLAB_ENOMEM, "out of memory");
        return 0;
    }
    memcpy(ts, t->ts, t->n * sizeof *ts);
    qsort(ts, t->n, sizeof *ts, cmp_i64);
    size_t k = (size_t)(q * (double)t->n);
    if (k >= t->n)
        k = t->n - 1;
    int64_t v = ts[k];
    rlab_free(ts);
    *ok = 1;
    return v;
}

/* datasets.split(name, {method = "loo"|"temporal"|"ratio", into = name,
 *                       test_frac=, valid_frac=  (temporal: fractions of the time line)
 *                       train=, valid=, seed=    (ratio)})
 *   -> {train = "name.train", valid = ..., test = ..., n_train=, n_valid=, n_test=}
 *    | nil, msg when the dataset is missing */
static int l_datasets_split(lua_State *L)
{
    rlab_lua_ctx *lc = rlab__lctx(L);
    const char *name = luaL_checkstring(L, 1);
    if (!lua_isnoneornil(L, 2))
        luaL_checktype(L, 2, LUA_TTABLE);
    const char *method = opt_string(L, 2, "method", "loo");
    const char *into = opt_string(L, 2, "into", name);
    if (strcmp(method, "loo") && strcmp(method, "temporal") && strcmp(method, "ratio"))
        return luaL_error(L,
                          "datasets.split: bad option 'method' (one of loo|temporal|ratio "
                          "expected, got '%s')",
                          method);
    rlab_dataset *ds = rlab_host_dataset_get(lc->host, name);
    if (!ds)
        return rlab__lua_miss(L, "datasets.split: dataset '%s' not found", name);
    rlab_split sp;
    memset(&sp, 0, sizeof sp);
    rlab_err err = {0};
    int rc = RLAB_OK;
    int32_t nu = rlab_vocab_size(&ds->users);
    if (strcmp(method, "loo") == 0) {
        rc = rlab_split_loo(&ds->inter, nu, &sp, &err);
    } else if (strcmp(method, "temporal") == 0) {
        double tf = opt_number(L, 2, "test_frac", 0.2), vf = opt_number(L, 2, "valid_frac", 0.0);
        if (!(tf > 0 && tf < 1) || !(vf >= 0 && vf + tf < 1)) {
            rlab_host_dataset_release(lc->host, ds);
            return luaL_error(L, "datasets.split: bad options (0 < test_frac, 0 <= valid_frac, "
                                 "test_frac + valid_frac < 1 expected)");
        }
        int ok1 = 0, ok2 = 0;
        int64_t tc = ts_quantile(&ds->inter, 1.0 - tf, &err, &ok1);
        int64_t vc = ok1 ? ts_quantile(&ds->inter, 1.0 - tf - vf, &err, &ok2) : 0;
        if (!ok1 || !ok2)
            rc = err.code ? err.code : rlab_errf(&err, RLAB_EINVAL, "dataset '%s' is empty", name);
        else
            rc = rlab_split_temporal(&ds->inter, vf > 0 ? vc : tc, tc, &sp, &err);
    } else {
        double tr = opt_number(L, 2, "train", 0.8), va = opt_number(L, 2, "valid", 0.1);
        uint64_t seed = (uint64_t)opt_int64(L, 2, "datasets.split", "seed", 1);
        rc = rlab_split_ratio(&ds->inter, nu, tr, va, seed, &sp, &err);
    }
    rlab_dataset *parts[3] = {NULL, NULL, NULL};
    static const char *const pnames[3] = {"train", "valid", "test"};
    rlab_inter *rows[3] = {&sp.train, &sp.valid, &sp.test};
    for (int i = 0; i < 3 && rc == RLAB_OK; i++) {
        parts[i] = split_part(ds, into, pnames[i], rows[i], &err);
        if (!parts[i])
            rc = err.code;
    }
    rlab_host_dataset_release(lc->host, ds);
    if (rc == RLAB_OK)
        rlab_split_clear(&sp);
    if (rc) {
        for (int i = 0; i < 3; i++)
            rlab_dataset_free(parts[i]);
        rlab_split_clear(&sp);
        return rlab__lua_raise(L, "datasets.split", &err);
    }
    lua_createtable(L, 0, 6); /* r */
    for (int i = 0; i < 3; i++) {
        char key[16];
        lua_pushstring(L, parts[i]->name); /* r name */
        lua_setfield(L, -2, pnames[i]);    /* r */
        snprintf(key, sizeof key, "n_%s", pnames[i]);
        setfield_int(L, key, (lua_Integer)parts[i]->inter.n);
        char src[160];
        snprintf(src, sizeof src, "split:%s:%s", name, method);
        rlab__add_dataset(L, "datasets.split", parts[i], src);
    }
    setfield_str(L, "method", method);
    return 1;
}

/* ---- world --------------------------------------------------------------------------- */

/* Config fields, exposed by name (float / int / int64). */
typedef struct cfg_field {
    const char *name;
    char type; /* 'f' float, 'i' int32, 'l' int64 / uint64, 'd' int */
    size_t off;
} cfg_field;

#define CF(n, t)                                                                                   \
    {                                                                                              \
#n, t, offsetof(rlab_world_config, n)                                                      \
    }
static const cfg_field cfg_fields[] = {
    CF(seed, 'l'),         CF(n_users, 'i'),      CF(n_items, 'i'),     CF(n_genres, 'i'),
    CF(n_inter, 'l'),      CF(min_per_user, 'i'), CF(taste_alpha, 'f'), CF(zipf, 'f'),
    CF(pop_power, 'f'),    CF(taste_power, 'f'),  CF(taste_eps, 'f'),   CF(p_transition, 'f'),
    CF(n_successors, 'i'), CF(avg_follow, 'f'),   CF(homophily, 'f'),   CF(t0, 'l'),
    CF(span, 'l'),         CF(n_drift, 'd'),      CF(drift_frac, 'f'),  CF(drift_strength, 'f'),
    {NULL, 0, 0},
};
#undef CF

static void push_config(lua_State *L, const rlab_world_config *c)
{
    lua_createtable(L, 0, 24); /* t */
    for (const cfg_field *f = cfg_fields; f->name; f++) {
        const char *p = (const char *)c + f->off;
        switch (f->type) {
        case 'f':
            lua_pushnumber(L, (lua_Number) * (const float *)p); /* t v */
            break;
        case 'i':
            lua_pushinteger(L, *(const int32_t *)p); /* t v */
            break;
        case 'd':
            lua_pushinteger(L, *(const int *)p); /* t v */
            break;
        default:
            lua_pushinteger(L, *(const int64_t *)p); /* t v */
            break;
        }
        lua_setfield(L, -2, f->name); /* t */
    }
    lua_createtable(L, c->n_drift, 0); /* t d */
    for (int i = 0; i < c->n_drift && i < RLAB_WORLD_MAX_DRIFT; i++) {
        lua_pushinteger(L, c->drift_ts[i]); /* t d v */
        lua_rawseti(L, -2, i + 1);          /* t d */
    }
    lua_setfield(L, -2, "drift_ts"); /* t */
}

/* Read the fields of the table at t into c (unknown keys are errors). */
static void read_config(lua_State *L, int t, rlab_world_config *c, const char *fname)
{
    lua_pushnil(L);          /* nil */
    while (lua_next(L, t)) { /* k v */
        if (lua_type(L, -2) != LUA_TSTRING)
            luaL_error(L, "%s: bad config key (string expected)", fname);
        const char *k = lua_tostring(L, -2);
        if (strcmp(k, "name") == 0) {
            lua_pop(L, 1); /* k */
            continue;
        }
        if (strcmp(k, "drift_ts") == 0) {
            luaL_checktype(L, -1, LUA_TTABLE);
            int n = (int)lua_rawlen(L, -1);
            if (n > RLAB_WORLD_MAX_DRIFT)
                luaL_error(L, "%s: at most %d drift times", fname, RLAB_WORLD_MAX_DRIFT);
            for (int i = 0; i < n; i++) {
                lua_rawgeti(L, -1, i + 1); /* k v x */
                c->drift_ts[i] = (int64_t)lua_tointeger(L, -1);
                lua_pop(L, 1); /* k v */
            }
            lua_pop(L, 1); /* k */
            continue;
        }
        const cfg_field *f = cfg_fields;
        while (f->name && strcmp(f->name, k))
            f++;
        if (!f->name)
            luaL_error(L, "%s: unknown config field '%s'", fname, k);
        int ok = 0;
        char *p = (char *)c + f->off;
        if (f->type == 'f') {
            lua_Number v = lua_tonumberx(L, -1, &ok);
            *(float *)p = (float)v;
        } else {
            lua_Integer v = lua_tointegerx(L, -1, &ok);
            if (f->type == 'i')
                *(int32_t *)p = (int32_t)v;
            else if (f->type == 'd')
                *(int *)p = (int)v;
            else
                *(int64_t *)p = (int64_t)v;
        }
        if (!ok)
            luaL_error(L, "%s: bad config field '%s' (%s expected, got %s)", fname, k,
                       f->type == 'f' ? "number" : "integer", luaL_typename(L, -1));
        lua_pop(L, 1); /* k */
    }
}

static int make_world(lua_State *L, const rlab_world_config *cfg, const char *name, int demo)
{
    rlab_world *w = NULL;
    rlab_dataset *ds = NULL;
    rlab_err err = {0};
    const char *fname = demo ? "world.demo" : "world";
    /* the demo is generated as "demo" and renamed: check the new name first (never cut) */
    int rc = demo ? rlab_name_check("dataset", name, &err) : RLAB_OK;
    if (rc == RLAB_OK)
        rc = demo ? rlab_world_demo(&w, &ds, &err) : rlab_world_generate(cfg, name, &w, &ds, &err);
    if (rc)
        return rlab__lua_raise(L, fname, &err);
    if (demo)
        snprintf(ds->name, sizeof ds->name, "%s", name);
    char src[96];
    snprintf(src, sizeof src, "builtin:%s:%016llx", demo ? "demo" : "world",
             (unsigned long long)rlab_world_checksum(w, ds));
    snprintf(ds->source, sizeof ds->source, "%s", src);
    rlab_world_config used = w->cfg;
    rlab_world_free(w);
    rlab__add_dataset(L, fname, ds, src); /* (ds is the host's now) */
    rlab_lua_ctx *lc = rlab__lctx(L);
    rlab_dataset *got = rlab_host_dataset_get(lc->host, name);
    if (!got)
        return luaL_error(L, "%s: dataset vanished", fname);
    rlab__push_dataset_info(L, got); /* info */
    rlab_host_dataset_release(lc->host, got);
    push_config(L, &used);         /* info cfg */
    lua_setfield(L, -2, "config"); /* info */
    return 1;
}

/* reclab.world{name = "w", <config fields>...} -> info (with .config) */
static int l_world_call(lua_State *L)
{
    /* called as world(tbl): arg 1 is the world table itself */
    if (!lua_isnoneornil(L, 2))
        luaL_checktype(L, 2, LUA_TTABLE);
    rlab_world_config cfg;
    rlab_world_config_default(&cfg);
    if (lua_istable(L, 2))
        read_config(L, 2, &cfg, "world");
    const char *name = opt_string(L, 2, "name", "world");
    return make_world(L, &cfg, name, 0);
}

/* reclab.world.demo([name]) -> info: the built-in demo world (byte-identical every time) */
static int l_world_demo(lua_State *L)
{
    const char *name = luaL_optstring(L, 1, "demo");
    return make_world(L, NULL, name, 1);
}

/* reclab.world.defaults() / demo_config() -> config table */
static int l_world_defaults(lua_State *L)
{
    rlab_world_config c;
    rlab_world_config_default(&c);
    push_config(L, &c); /* cfg */
    return 1;
}

static int l_world_demo_config(lua_State *L)
{
    rlab_world_config c;
    rlab_world_config_demo(&c);
    push_config(L, &c); /* cfg */
    return 1;
}

static const luaL_Reg datasets_fns[] = {
    {"load", l_datasets_load},   {"list", l_datasets_list},     {"info", l_datasets_info},
    {"split", l_datasets_split}, {"remove", l_datasets_remove}, {NULL, NULL},
};

static const luaL_Reg world_fns[] = {
    {"demo", l_world_demo},
    {"defaults", l_world_defaults},
    {"demo_config", l_world_demo_config},
    {NULL, NULL},
};

void rlab__open_data(lua_State *L)
{
    luaL_newlib(L, datasets_fns);       /* M datasets */
    lua_setfield(L, -2, "datasets");    /* M */
    luaL_newlib(L, world_fns);          /* M world */
    lua_createtable(L, 0, 1);           /* M world mt */
    lua_pushcfunction(L, l_world_call); /* M world mt fn */
    lua_setfield(L, -2, "__call");      /* M world mt */
    lua_setmetatable(L, -2);            /* M world */
    lua_setfield(L, -2, "world");       /* M */
}
