/*
 * lua/ldata.c: reclab.datasets (load, list, info, split, remove) and reclab.world (the
 * synthetic generator and the demo world).
 *
 * Loading, worlds and splits go through the host (host.h, "datasets"), which records each
 * with its recipe in the session store, so a reopened workspace lists them and rebuilds them
 * on first use. Dialogue corpora (ReDial, INSPIRED) are datasets of kind "dialogues".
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
    lua_createtable(L, 0, 12); /* t */
    setfield_str(L, "name", ds->name);
    setfield_str(L, "kind", "interactions");
    setfield_str(L, "state", "loaded");
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

/* Dialogues: {name, kind = "dialogues", format, source, state, n_conversations, n_turns,
 * n_items} */
static void push_brief_dialogues(lua_State *L, const rlab_dataset_brief *b)
{
    lua_createtable(L, 0, 9); /* t */
    setfield_str(L, "name", b->name);
    setfield_str(L, "kind", "dialogues");
    setfield_str(L, "format", b->format);
    setfield_str(L, "source", b->source);
    setfield_int(L, "n_conversations", b->n_users);
    setfield_int(L, "n_items", b->n_items);
    setfield_int(L, "n_turns", b->n_inter);
}

/* What is known of a dataset without loading it (a recorded one, or dialogues). */
static void push_brief(lua_State *L, const rlab_dataset_brief *b)
{
    static const char *const states[] = {"", "loaded", "recorded", "unavailable"};
    if (strcmp(b->kind, "dialogues") == 0) {
        push_brief_dialogues(L, b); /* t */
    } else {
        lua_createtable(L, 0, 9); /* t */
        setfield_str(L, "name", b->name);
        setfield_str(L, "kind", b->kind);
        setfield_str(L, "format", b->format);
        setfield_str(L, "source", b->source);
        setfield_int(L, "n_users", b->n_users);
        setfield_int(L, "n_items", b->n_items);
        setfield_int(L, "n_inter", b->n_inter);
    }
    setfield_str(L, "state", states[b->state <= RLAB_DS_UNAVAILABLE ? b->state : 0]);
    if (b->problem[0])
        setfield_str(L, "problem", b->problem);
}

/* The full info of a loaded dataset (interactions: every field; dialogues: the brief).
 * Pushes it and returns 1, or returns 0 with nothing pushed when name is gone. */
static int push_loaded_info(lua_State *L, rlab_host *h, const char *name)
{
    rlab_dataset_brief b;
    if (rlab_host_dataset_brief(h, name, &b) != RLAB_OK)
        return 0;
    if (strcmp(b.kind, "dialogues") == 0 || b.state != RLAB_DS_LOADED) {
        push_brief(L, &b); /* info */
        return 1;
    }
    rlab_dataset *ds = rlab_host_dataset_get(h, name);
    if (!ds)
        return 0;
    rlab__push_dataset_info(L, ds); /* info */
    rlab_host_dataset_release(h, ds);
    return 1;
}

/* datasets.load(path, {format=, name=}) -> info | nil, msg. Interaction files and dialogue
 * corpora (format = "redial" / "inspired", or a file shaped like one); the dataset and its
 * recipe are recorded in the session store, so the workspace reopens with it. */
static int l_datasets_load(lua_State *L)
{
    rlab_lua_ctx *lc = rlab__lctx(L);
    const char *path = luaL_checkstring(L, 1);
    if (!lua_isnoneornil(L, 2))
        luaL_checktype(L, 2, LUA_TTABLE);
    const char *format = opt_string(L, 2, "format", NULL);
    const char *name = opt_string(L, 2, "name", NULL);
    rlab__check_path(L, "datasets.load", path);
    rlab_err err = {0};
    rlab_dataset_brief b;
    if (rlab_host_load_dataset(lc->host, rlab_host_db(lc->host), path, format, name, &b, &err))
        return rlab__lua_miss(L, "datasets.load: %s", err.msg);
    if (!push_loaded_info(L, lc->host, b.name))
        return rlab__lua_miss(L, "datasets.load: dataset vanished");
    return 1;
}

/* datasets.list() -> {info, ...} sorted by name: loaded datasets with their full info, and
 * those the store records (state = "recorded": rebuilt on first use; "unavailable": problem
 * says why) without loading them */
static int l_datasets_list(lua_State *L)
{
    rlab_lua_ctx *lc = rlab__lctx(L);
    rlab_dataset_brief *v = NULL;
    int n = 0;
    rlab_err err = {0};
    if (rlab_host_datasets(lc->host, &v, &n, &err))
        return rlab__lua_raise(L, "datasets.list", &err);
    lua_createtable(L, n, 0); /* t */
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (v[i].state == RLAB_DS_LOADED ? !push_loaded_info(L, lc->host, v[i].name) : 0)
            continue;
        if (v[i].state != RLAB_DS_LOADED)
            push_brief(L, &v[i]); /* t info */
        lua_rawseti(L, -2, ++k);  /* t */
    }
    rlab_free(v);
    return 1;
}

/* datasets.info(name) -> info | nil, msg (a recorded dataset is rebuilt first; the message
 * says why when it cannot be) */
static int l_datasets_info(lua_State *L)
{
    rlab_lua_ctx *lc = rlab__lctx(L);
    const char *name = luaL_checkstring(L, 1);
    rlab_err err = {0};
    if (rlab_host_dataset_ensure(lc->host, name, &err))
        return rlab__lua_miss(L, "datasets.info: %s", err.msg);
    if (!push_loaded_info(L, lc->host, name))
        return rlab__lua_miss(L, "datasets.info: dataset '%s' not found", name);
    return 1;
}

/* datasets.remove(name) -> true | nil, msg (also forgotten by the store) */
static int l_datasets_remove(lua_State *L)
{
    rlab_lua_ctx *lc = rlab__lctx(L);
    const char *name = luaL_checkstring(L, 1);
    rlab_err err = {0};
    if (rlab_host_forget_dataset(lc->host, rlab_host_db(lc->host), name, &err))
        return rlab__lua_miss(L, "datasets.remove: %s", err.msg);
    lua_pushboolean(L, 1); /* true */
    return 1;
}

/* datasets.conversation(name, i) -> {id, turns = {{role, speaker, text, time, items}, ...}}
 * | nil, msg: conversation i (1-based) of a dialogue dataset; items are the mentioned items'
 * ids (ReDial movie ids, INSPIRED titles) */
static int l_datasets_conversation(lua_State *L)
{
    rlab_lua_ctx *lc = rlab__lctx(L);
    const char *name = luaL_checkstring(L, 1);
    lua_Integer i = luaL_checkinteger(L, 2);
    rlab_dialogues *d = rlab_host_dialogues_get(lc->host, name);
    if (!d)
        return rlab__lua_miss(L, "datasets.conversation: no dialogue dataset '%s'", name);
    if (i < 1 || (size_t)i > d->n) {
        size_t n = d->n;
        rlab_host_dialogues_release(lc->host, d);
        return rlab__lua_miss(L, "datasets.conversation: '%s' has %zu conversations, no %lld", name,
                              n, (long long)i);
    }
    const rlab_conv *c = &d->convs[i - 1];
    lua_createtable(L, 0, 2);         /* c */
    lua_pushstring(L, c->id);         /* c id */
    lua_setfield(L, -2, "id");        /* c */
    lua_createtable(L, c->nturns, 0); /* c turns */
    for (int k = 0; k < c->nturns; k++) {
        const rlab_turn *t = &c->turns[k];
        lua_createtable(L, 0, 5); /* c turns t */
        setfield_str(L, "role", t->role == RLAB_ROLE_SEEKER ? "seeker" : "recommender");
        setfield_str(L, "speaker", t->speaker ? t->speaker : "");
        setfield_str(L, "text", t->text ? t->text : "");
        setfield_int(L, "time", (lua_Integer)t->time);
        lua_createtable(L, t->nitems, 0); /* c turns t items */
        for (int j = 0; j < t->nitems; j++) {
            lua_pushstring(L, rlab_vocab_name(&d->items, t->items[j])); /* ... items id */
            lua_rawseti(L, -2, j + 1);                                  /* ... items */
        }
        lua_setfield(L, -2, "items"); /* c turns t */
        lua_rawseti(L, -2, k + 1);    /* c turns */
    }
    lua_setfield(L, -2, "turns"); /* c */
    rlab_host_dialogues_release(lc->host, d);
    return 1;
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
    rlab_split_opts o;
    rlab_split_opts_default(&o);
    o.method = opt_string(L, 2, "method", "loo");
    o.into = opt_string(L, 2, "into", name);
    if (strcmp(o.method, "loo") && strcmp(o.method, "temporal") && strcmp(o.method, "ratio"))
        return luaL_error(L,
                          "datasets.split: bad option 'method' (one of loo|temporal|ratio "
                          "expected, got '%s')",
                          o.method);
    o.test_frac = opt_number(L, 2, "test_frac", o.test_frac);
    o.valid_frac = opt_number(L, 2, "valid_frac", o.valid_frac);
    o.train = opt_number(L, 2, "train", o.train);
    o.valid = opt_number(L, 2, "valid", o.valid);
    o.seed = (uint64_t)opt_int64(L, 2, "datasets.split", "seed", (int64_t)o.seed);
    if (strcmp(o.method, "temporal") == 0 &&
        (!(o.test_frac > 0 && o.test_frac < 1) ||
         !(o.valid_frac >= 0 && o.valid_frac + o.test_frac < 1)))
        return luaL_error(L, "datasets.split: bad options (0 < test_frac, 0 <= valid_frac, "
                             "test_frac + valid_frac < 1 expected)");
    rlab_err err = {0};
    rlab_dataset_brief parts[3];
    int rc = rlab_host_split_dataset(lc->host, rlab_host_db(lc->host), name, &o, parts, &err);
    if (rc == RLAB_ENOTFOUND)
        return rlab__lua_miss(L, "datasets.split: %s", err.msg);
    if (rc)
        return rlab__lua_raise(L, "datasets.split", &err);
    static const char *const pnames[3] = {"train", "valid", "test"};
    lua_createtable(L, 0, 7); /* r */
    for (int i = 0; i < 3; i++) {
        char key[16];
        setfield_str(L, pnames[i], parts[i].name);
        snprintf(key, sizeof key, "n_%s", pnames[i]);
        setfield_int(L, key, (lua_Integer)parts[i].n_inter);
    }
    setfield_str(L, "method", o.method);
    return 1;
}

/* datasets.kcore(name, {k = 5, into = NAME}) -> info of the new dataset | nil, msg when the
 * dataset is missing */
static int l_datasets_kcore(lua_State *L)
{
    rlab_lua_ctx *lc = rlab__lctx(L);
    const char *name = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    const char *into = opt_string(L, 2, "into", NULL);
    int64_t k = opt_int64(L, 2, "datasets.kcore", "k", 5);
    if (!into)
        return luaL_error(L, "datasets.kcore: option 'into' (the new dataset's name) expected");
    if (k < 1 || k > INT32_MAX)
        return luaL_error(L, "datasets.kcore: bad option 'k' (>= 1 expected, got %lld)",
                          (long long)k);
    rlab_err err = {0};
    rlab_dataset_brief b;
    int rc =
        rlab_host_kcore_dataset(lc->host, rlab_host_db(lc->host), name, into, (int)k, &b, &err);
    if (rc == RLAB_ENOTFOUND)
        return rlab__lua_miss(L, "datasets.kcore: %s", err.msg);
    if (rc)
        return rlab__lua_raise(L, "datasets.kcore", &err);
    push_brief(L, &b); /* info */
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
    rlab_lua_ctx *lc = rlab__lctx(L);
    rlab_err err = {0};
    const char *fname = demo ? "world.demo" : "world";
    rlab_world_config used;
    /* generated, recorded with its generator config (so the workspace regenerates it), and
     * registered by the host */
    if (rlab_host_make_world(lc->host, rlab_host_db(lc->host), demo ? NULL : cfg, name, &used,
                             &err))
        return rlab__lua_raise(L, fname, &err);
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
    {"load", l_datasets_load},
    {"list", l_datasets_list},
    {"info", l_datasets_info},
    {"split", l_datasets_split},
    {"kcore", l_datasets_kcore},
    {"remove", l_datasets_remove},
    {"conversation", l_datasets_conversation},
    {NULL, NULL},
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
