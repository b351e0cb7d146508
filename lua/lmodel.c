/*
 * lua/lmodel.c: reclab.models (list, get, save, load, remove), the "reclab.Model" userdata
 * (recommend, score, describe, fields), reclab.recommend and reclab.evaluate (core/eval with
 * the training history masked, metrics stored as a run of the session store).
 *
 * A Model userdata holds only the model's name: every call looks the model up in the
 * registry and releases it before returning, so a Lua handle never keeps a plugin loaded or
 * a replaced model alive, and a handle to a removed model gives "model 'x' not found".
 *
 * Users and items are named by their external ids (the text in the data file: "196",
 * "u17"); a Lua number is taken as the same text. Results are item ids.
 */
#include "lreclab_internal.h"

#include "data/split.h"
#include "eval/eval.h"
#include "model/model.h"
#include "store/store.h"

#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

typedef struct lmodel {
    char name[64]; /* first: the command binding reads the name through the pointer */
} lmodel;

void rlab__push_model(lua_State *L, const char *name)
{
    rlab_lua_ctx *lc = rlab__lctx(L);
    rlab_model *m = rlab_models_get(rlab_host_models(lc->host), name);
    if (!m) {
        lua_pushnil(L); /* nil */
        return;
    }
    rlab_model_release(m);
    lmodel *u = lua_newuserdatauv(L, sizeof *u, 0); /* u */
    snprintf(u->name, sizeof u->name, "%s", name);
    luaL_setmetatable(L, RLAB_LUA_MODEL_MT); /* u */
}

rlab_model *rlab__check_model(lua_State *L, int idx, const char *fname)
{
    rlab_lua_ctx *lc = rlab__lctx(L);
    const char *name;
    lmodel *u = luaL_testudata(L, idx, RLAB_LUA_MODEL_MT);
    if (u)
        name = u->name;
    else if (lua_type(L, idx) == LUA_TSTRING)
        name = lua_tostring(L, idx);
    else {
        luaL_error(L, "%s: bad model (Model or name expected, got %s)", fname,
                   luaL_typename(L, idx));
        return NULL;
    }
    return rlab_models_get(rlab_host_models(lc->host), name);
}

/* Like rlab__check_model, but a missing model raises too. */
static rlab_model *need_model(lua_State *L, int idx, const char *fname)
{
    rlab_model *m = rlab__check_model(L, idx, fname);
    if (!m) {
        lmodel *u = luaL_testudata(L, idx, RLAB_LUA_MODEL_MT);
        luaL_error(L, "%s: model '%s' not found", fname, u ? u->name : lua_tostring(L, idx));
    }
    return m;
}

/* ---- user and item names ------------------------------------------------------------- */

/* Dense index of the external id at idx in vocab v (a number is looked up as its text), -1
 * when absent. */
static int32_t lookup_id(lua_State *L, int idx, const rlab_vocab *v)
{
    size_t n;
    const char *s;
    if (lua_type(L, idx) == LUA_TNUMBER) {
        lua_pushvalue(L, idx);        /* x */
        s = lua_tolstring(L, -1, &n); /* s (converted in place) */
        int32_t r = rlab_vocab_find(v, s, n);
        lua_pop(L, 1); /* */
        return r;
    }
    s = lua_tolstring(L, idx, &n);
    return s ? rlab_vocab_find(v, s, n) : -1;
}

/* The history of user u in dataset ds, time-ordered: items into *items (caller frees). */
static int user_history(const rlab_dataset *ds, int32_t u, int32_t **items, int32_t *n,
                        rlab_err *err)
{
    *items = NULL;
    *n = 0;
    size_t cnt = 0;
    for (size_t r = 0; r < ds->inter.n; r++)
        cnt += ds->inter.user[r] == u;
    if (cnt == 0)
        return RLAB_OK;
    int32_t *it = rlab_malloc(cnt * sizeof *it);
    int64_t *ts = rlab_malloc(cnt * sizeof *ts);
    if (!it || !ts) {
        rlab_free(it);
        rlab_free(ts);
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    }
    size_t k = 0;
    for (size_t r = 0; r < ds->inter.n; r++)
        if (ds->inter.user[r] == u) {
            /* insertion keeps file order among equal times (users have few rows) */
            size_t j = k++;
            while (j > 0 && ts[j - 1] > ds->inter.ts[r]) {
                ts[j] = ts[j - 1];
                it[j] = it[j - 1];
                j--;
            }
            ts[j] = ds->inter.ts[r];
            it[j] = ds->inter.item[r];
        }
    rlab_free(ts);
    *items = it;
    *n = (int32_t)cnt;
    return RLAB_OK;
}

/* recommend(model, user, k [, {exclude_seen = true}]) -> {item ids}, {scores} */
static int recommend(lua_State *L, int mi, const char *fname)
{
    rlab_lua_ctx *lc = rlab__lctx(L);
    rlab_model *m = need_model(L, mi, fname);
    lua_Integer k = luaL_optinteger(L, mi + 2, 10);
    if (k < 1 || k > 100000) {
        rlab_model_release(m);
        return luaL_error(L, "%s: bad argument 'k' (integer in [1, 100000] expected)", fname);
    }
    rlab_dataset *ds = m->dataset[0] ? rlab_host_dataset_get(lc->host, m->dataset) : NULL;
    if (!ds) {
        char dn[64];
        snprintf(dn, sizeof dn, "%s", m->dataset);
        rlab_model_release(m);
        return luaL_error(L, "%s: the model's dataset '%s' is not loaded", fname, dn);
    }
    int32_t u = lookup_id(L, mi + 1, &ds->users);
    if (u < 0) {
        rlab_host_dataset_release(lc->host, ds);
        rlab_model_release(m);
        return rlab__lua_miss(L, "%s: unknown user '%s'", fname, luaL_tolstring(L, mi + 1, NULL));
    }
    rlab_err err = {0};
    int32_t *hist = NULL, nh = 0;
    int32_t *top = rlab_malloc((size_t)k * sizeof *top);
    float *sc = rlab_malloc((size_t)k * sizeof *sc);
    uint8_t *mask = rlab_calloc((size_t)m->n_items, 1);
    int rc = (!top || !sc || !mask) ? rlab_errf(&err, RLAB_ENOMEM, "out of memory")
                                    : user_history(ds, u, &hist, &nh, &err);
    if (rc == RLAB_OK) {
        for (int32_t i = 0; i < nh; i++)
            if (hist[i] >= 0 && hist[i] < m->n_items)
                mask[hist[i]] = 1; /* never recommend what the user already has */
        rlab_query q = {.user = u, .hist = hist, .n_hist = nh};
        rc = rlab_model_topk(m, &q, 1, (int)k, mask, top, sc, &err);
    }
    if (rc == RLAB_OK) {
        lua_createtable(L, (int)k, 0); /* items */
        lua_createtable(L, (int)k, 0); /* items scores */
        for (lua_Integer i = 0; i < k && top[i] >= 0; i++) {
            const char *id = rlab_vocab_name(&ds->items, top[i]);
            if (id)
                lua_pushstring(L, id); /* items scores id */
            else
                lua_pushinteger(L, top[i]);       /* items scores idx */
            lua_rawseti(L, -3, i + 1);            /* items scores */
            lua_pushnumber(L, (lua_Number)sc[i]); /* items scores s */
            lua_rawseti(L, -2, i + 1);            /* items scores */
        }
    }
    rlab_free(hist);
    rlab_free(top);
    rlab_free(sc);
    rlab_free(mask);
    rlab_host_dataset_release(lc->host, ds);
    rlab_model_release(m);
    if (rc)
        return rlab__lua_raise(L, fname, &err);
    return 2;
}

static int l_recommend(lua_State *L) { return recommend(L, 1, "recommend"); }
static int l_model_recommend(lua_State *L) { return recommend(L, 1, "Model:recommend"); }

/* Model:score(user, {items}) -> {scores} */
static int l_model_score(lua_State *L)
{
    rlab_lua_ctx *lc = rlab__lctx(L);
    luaL_checktype(L, 3, LUA_TTABLE);
    rlab_model *m = need_model(L, 1, "Model:score");
    rlab_dataset *ds = m->dataset[0] ? rlab_host_dataset_get(lc->host, m->dataset) : NULL;
    if (!ds) {
        rlab_model_release(m);
        return luaL_error(L, "Model:score: the model's dataset is not loaded");
    }
    int n = (int)lua_rawlen(L, 3);
    int32_t u = lookup_id(L, 2, &ds->users);
    int32_t *items = rlab_calloc((size_t)n + 1, sizeof *items);
    float *out = rlab_calloc((size_t)n + 1, sizeof *out);
    rlab_err err = {0};
    int rc = (!items || !out) ? rlab_errf(&err, RLAB_ENOMEM, "out of memory") : RLAB_OK;
    for (int i = 0; i < n && rc == RLAB_OK; i++) {
        lua_rawgeti(L, 3, i + 1); /* id */
        items[i] = lookup_id(L, -1, &ds->items);
        if (items[i] < 0)
            rc = rlab_errf(&err, RLAB_ENOTFOUND, "unknown item '%s'", luaL_tolstring(L, -1, NULL));
        lua_settop(L, 3); /* */
    }
    int32_t *hist = NULL, nh = 0;
    if (rc == RLAB_OK && u < 0)
        rc = rlab_errf(&err, RLAB_ENOTFOUND, "unknown user '%s'", luaL_tolstring(L, 2, NULL));
    if (rc == RLAB_OK)
        rc = user_history(ds, u, &hist, &nh, &err);
    if (rc == RLAB_OK && n > 0) {
        rlab_query q = {.user = u, .hist = hist, .n_hist = nh};
        rc = rlab_model_score(m, &q, 1, items, n, out, &err);
    }
    if (rc == RLAB_OK) {
        lua_settop(L, 3);
        lua_createtable(L, n, 0); /* t */
        for (int i = 0; i < n; i++) {
            lua_pushnumber(L, (lua_Number)out[i]); /* t s */
            lua_rawseti(L, -2, i + 1);             /* t */
        }
    }
    rlab_free(hist);
    rlab_free(items);
    rlab_free(out);
    rlab_host_dataset_release(lc->host, ds);
    rlab_model_release(m);
    if (rc)
        return rlab__lua_raise(L, "Model:score", &err);
    return 1;
}

static void push_info(lua_State *L, const rlab_model_info *mi)
{
    lua_createtable(L, 0, 7);        /* t */
    lua_pushstring(L, mi->name);     /* t v */
    lua_setfield(L, -2, "name");     /* t */
    lua_pushstring(L, mi->kind);     /* t v */
    lua_setfield(L, -2, "kind");     /* t */
    lua_pushstring(L, mi->plugin);   /* t v */
    lua_setfield(L, -2, "plugin");   /* t */
    lua_pushstring(L, mi->dataset);  /* t v */
    lua_setfield(L, -2, "dataset");  /* t */
    lua_pushinteger(L, mi->n_users); /* t v */
    lua_setfield(L, -2, "n_users");  /* t */
    lua_pushinteger(L, mi->n_items); /* t v */
    lua_setfield(L, -2, "n_items");  /* t */
    lua_pushstring(L, mi->describe); /* t v */
    lua_setfield(L, -2, "describe"); /* t */
}

static void model_info(const rlab_model *m, rlab_model_info *mi)
{
    memset(mi, 0, sizeof *mi);
    snprintf(mi->name, sizeof mi->name, "%s", m->name);
    snprintf(mi->kind, sizeof mi->kind, "%s", m->kind);
    snprintf(mi->plugin, sizeof mi->plugin, "%s", m->plugin);
    snprintf(mi->dataset, sizeof mi->dataset, "%s", m->dataset);
    mi->n_users = m->n_users;
    mi->n_items = m->n_items;
    rlab_model_describe(m, mi->describe, sizeof mi->describe);
}

/* Model:describe() -> text */
static int l_model_describe(lua_State *L)
{
    rlab_model *m = need_model(L, 1, "Model:describe");
    char buf[256];
    rlab_model_describe(m, buf, sizeof buf);
    rlab_model_release(m);
    lua_pushstring(L, buf); /* s */
    return 1;
}

/* Model:info() -> table */
/* Push a JSON object's members as a Lua table (numbers, booleans, strings); {} on bad text. */
static void push_json_object(lua_State *L, const char *text)
{
    json_object *o = text ? json_tokener_parse(text) : NULL;
    lua_newtable(L); /* t */
    if (o && json_object_is_type(o, json_type_object)) {
        json_object_object_foreach(o, key, val)
        {
            switch (json_object_get_type(val)) {
            case json_type_boolean:
                lua_pushboolean(L, json_object_get_boolean(val)); /* t v */
                break;
            case json_type_int:
                lua_pushinteger(L, (lua_Integer)json_object_get_int64(val)); /* t v */
                break;
            case json_type_double:
                lua_pushnumber(L, json_object_get_double(val)); /* t v */
                break;
            case json_type_string:
                lua_pushstring(L, json_object_get_string(val)); /* t v */
                break;
            default:
                continue;
            }
            lua_setfield(L, -2, key); /* t */
        }
    }
    json_object_put(o);
}

/* Model:info() -> {name, kind, plugin, dataset, n_users, n_items, describe, config = {...},
 * train = {...}}: config and train are the resolved hyperparameters and training settings
 * (the kind's config schema and the loop's fields), for models the host trained or loaded. */
static int l_model_info(lua_State *L)
{
    rlab_model *m = need_model(L, 1, "Model:info");
    rlab_model_info mi;
    model_info(m, &mi);
    push_info(L, &mi);                  /* t */
    push_json_object(L, m->config);     /* t cfg */
    lua_setfield(L, -2, "config");      /* t */
    push_json_object(L, m->train_opts); /* t train */
    lua_setfield(L, -2, "train");       /* t */
    rlab_model_release(m);
    return 1;
}

/* m.name, m.kind, ... and the methods */
static int l_model_index(lua_State *L)
{
    lmodel *u = luaL_checkudata(L, 1, RLAB_LUA_MODEL_MT);
    const char *k = luaL_checkstring(L, 2);
    luaL_getmetatable(L, RLAB_LUA_MODEL_MT); /* mt */
    lua_getfield(L, -1, "methods");          /* mt methods */
    if (lua_getfield(L, -1, k) != LUA_TNIL)  /* mt methods f */
        return 1;
    lua_settop(L, 2); /* u k */
    if (strcmp(k, "name") == 0) {
        lua_pushstring(L, u->name); /* u k name */
        return 1;
    }
    rlab_model *m = rlab__check_model(L, 1, "Model");
    if (!m)
        return luaL_error(L, "Model: model '%s' not found", u->name);
    rlab_model_info mi;
    model_info(m, &mi);
    rlab_model_release(m);
    push_info(L, &mi);      /* u k info */
    lua_getfield(L, -1, k); /* u k info v */
    return 1;
}

static int l_model_tostring(lua_State *L)
{
    lmodel *u = luaL_checkudata(L, 1, RLAB_LUA_MODEL_MT);
    lua_pushfstring(L, "reclab.Model(%s)", u->name); /* s */
    return 1;
}

static int l_model_eq(lua_State *L)
{
    lmodel *a = luaL_checkudata(L, 1, RLAB_LUA_MODEL_MT);
    lmodel *b = luaL_checkudata(L, 2, RLAB_LUA_MODEL_MT);
    lua_pushboolean(L, strcmp(a->name, b->name) == 0); /* b */
    return 1;
}

/* ---- reclab.models ------------------------------------------------------------------- */

static int l_models_list(lua_State *L)
{
    rlab_lua_ctx *lc = rlab__lctx(L);
    rlab_model_info *v = NULL;
    int n = 0;
    rlab_err err = {0};
    if (rlab_models_list(rlab_host_models(lc->host), &v, &n, &err))
        return rlab__lua_raise(L, "models.list", &err);
    lua_createtable(L, n, 0); /* t */
    for (int i = 0; i < n; i++) {
        push_info(L, &v[i]);       /* t info */
        lua_rawseti(L, -2, i + 1); /* t */
    }
    rlab_free(v);
    return 1;
}

/* models.get(name) -> Model | nil, msg */
static int l_models_get(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    /* a model saved in the store by an earlier session is restored on demand */
    rlab_err err = {0};
    rlab_model *m = rlab_host_model_get(rlab__lctx(L)->host, name, &err);
    if (!m)
        return rlab__lua_miss(L, "models.get: %s", err.msg);
    rlab_model_release(m);
    rlab__push_model(L, name); /* m|nil */
    if (lua_isnil(L, -1))
        return rlab__lua_miss(L, "models.get: model '%s' not found", name);
    return 1;
}

/* models.remove(name) -> true | nil, msg */
static int l_models_remove(lua_State *L)
{
    rlab_lua_ctx *lc = rlab__lctx(L);
    lmodel *u = luaL_testudata(L, 1, RLAB_LUA_MODEL_MT);
    const char *name = u ? u->name : luaL_checkstring(L, 1);
    rlab_err err = {0};
    if (rlab_models_remove(rlab_host_models(lc->host), name, &err))
        return rlab__lua_miss(L, "models.remove: model '%s' not found", name);
    lua_pushboolean(L, 1); /* true */
    return 1;
}

/* models.save(model [, dir]) -> path | true: with dir, the checkpoint file dir/NAME.safetensors
 * (also recorded in the store); without, into the session store only (as the `save`
 * command), true. */
static int l_models_save(lua_State *L)
{
    rlab_lua_ctx *lc = rlab__lctx(L);
    lmodel *u = luaL_testudata(L, 1, RLAB_LUA_MODEL_MT);
    const char *name = u ? u->name : luaL_checkstring(L, 1);
    const char *dir = luaL_optstring(L, 2, NULL);
    if (dir) {
        rlab__check_path(L, "models.save", dir);
        if (mkdir(dir, 0777) != 0 && errno != EEXIST)
            return luaL_error(L, "models.save: cannot create folder '%s': %s", dir,
                              strerror(errno));
    }
    char *path = NULL;
    rlab_err err = {0};
    if (rlab_host_save_model(lc->host, name, dir, &path, &err))
        return rlab__lua_raise(L, "models.save", &err);
    if (path)
        lua_pushstring(L, path); /* path */
    else
        lua_pushboolean(L, 1); /* true */
    rlab_free(path);
    return 1;
}

/* models.load(path [, {name=, kind=}]) -> Model | nil, msg */
static int l_models_load(lua_State *L)
{
    rlab_lua_ctx *lc = rlab__lctx(L);
    const char *path = luaL_checkstring(L, 1);
    const char *name = NULL, *kind = NULL;
    if (!lua_isnoneornil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        lua_getfield(L, 2, "name"); /* name? */
        name = lua_tostring(L, -1);
        lua_getfield(L, 2, "kind"); /* name? kind? */
        kind = lua_tostring(L, -1);
    }
    rlab__check_path(L, "models.load", path);
    char base[64];
    if (!name) {
        /* default name: the file name without folder and extension */
        const char *b = strrchr(path, '/');
        b = b ? b + 1 : path;
        snprintf(base, sizeof base, "%s", b);
        char *dot = strrchr(base, '.');
        if (dot && dot != base)
            *dot = '\0';
        name = base;
    }
    rlab_err err = {0};
    if (rlab_host_load_model(lc->host, name, path, kind, &err))
        return rlab__lua_miss(L, "models.load: %s", err.msg);
    rlab__push_model(L, name); /* ... m */
    return 1;
}

/* ---- reclab.evaluate ----------------------------------------------------------------- */

/* reclab.evaluate{model=, data=, k = {5,10,20}, protocol = "full"|"sampled-N",
 *                 split = "test"|"valid", seed = 1, metrics = {"hr", "ndcg", ...}}
 *   -> {protocol=, n_users=, run=, model=, ["hr@10"] = v, ...}
 * The host's `eval` verb (the one evaluator) with Lua-shaped arguments: the data view of the
 * model's training split (leave-one-out by default), full ranking unless sampled. */
static int l_evaluate(lua_State *L)
{
    static const char *const F = "evaluate";
    rlab_lua_ctx *lc = rlab__lctx(L);
    luaL_checktype(L, 1, LUA_TTABLE);
    char ks[160] = "", mets[96] = "", name[64];
    lua_getfield(L, 1, "model"); /* m */
    if (lua_isnil(L, -1))
        return luaL_error(L, "evaluate: missing argument 'model'");
    lmodel *u = luaL_testudata(L, -1, RLAB_LUA_MODEL_MT);
    const char *mn = u ? u->name : lua_tostring(L, -1);
    if (!mn)
        return luaL_error(L, "evaluate: bad argument 'model' (Model or name expected)");
    snprintf(name, sizeof name, "%s", mn);
    lua_getfield(L, 1, "split"); /* m split */
    const char *split = luaL_optstring(L, -1, "test");
    if (strcmp(split, "test") && strcmp(split, "valid"))
        return luaL_error(L, "evaluate: bad argument 'split' (test or valid expected, got '%s')",
                          split);
    lua_getfield(L, 1, "protocol"); /* m split proto */
    const char *proto = luaL_optstring(L, -1, "full");
    int n_neg = 0;
    if (strcmp(proto, "full") != 0) {
        char tail;
        if (sscanf(proto, "sampled-%d%c", &n_neg, &tail) != 1 || n_neg < 1)
            return luaL_error(L,
                              "evaluate: bad argument 'protocol' (full or sampled-N expected, "
                              "got '%s')",
                              proto);
    }
    int first_k = 10;
    lua_getfield(L, 1, "k"); /* ... k */
    if (lua_isinteger(L, -1)) {
        first_k = (int)lua_tointeger(L, -1);
        snprintf(ks, sizeof ks, "%d", first_k);
    } else if (lua_istable(L, -1)) {
        size_t o = 0;
        for (int i = 1; i <= (int)lua_rawlen(L, -1) && o + 12 < sizeof ks; i++) {
            lua_rawgeti(L, -1, i); /* ... k ki */
            if (!lua_isinteger(L, -1))
                return luaL_error(L, "evaluate: bad argument 'k' (integers expected)");
            int v = (int)lua_tointeger(L, -1);
            if (i == 1)
                first_k = v;
            o += (size_t)snprintf(ks + o, sizeof ks - o, "%s%d", i > 1 ? "," : "", v);
            lua_pop(L, 1); /* ... k */
        }
    } else if (!lua_isnil(L, -1)) {
        return luaL_error(L, "evaluate: bad argument 'k' (integer or list expected)");
    }
    lua_getfield(L, 1, "metrics"); /* ... k metrics */
    if (lua_istable(L, -1)) {
        size_t o = 0;
        for (int i = 1; i <= (int)lua_rawlen(L, -1) && o + 12 < sizeof mets; i++) {
            lua_rawgeti(L, -1, i); /* ... metrics name */
            const char *s = lua_tostring(L, -1);
            o += (size_t)snprintf(mets + o, sizeof mets - o, "%s%s", i > 1 ? "," : "", s ? s : "?");
            lua_pop(L, 1); /* ... metrics */
        }
    }
    rlab_err err = {0};
    rlab_args *a = rlab_args_new(lc->host, "eval", &err);
    if (!a)
        return rlab__lua_raise(L, F, &err);
    lua_getfield(L, 1, "data"); /* ... data */
    const char *data = lua_tostring(L, -1);
    lua_getfield(L, 1, "seed"); /* ... data seed */
    int rc = rlab_args_set(a, "model", name, &err);
    if (rc == RLAB_OK && data)
        rc = rlab_args_set(a, "data", data, &err);
    if (rc == RLAB_OK)
        rc = rlab_args_set(a, "split", split, &err);
    if (rc == RLAB_OK && first_k >= 1)
        rc = rlab_args_set_int(a, "k", first_k, &err);
    if (rc == RLAB_OK && ks[0])
        rc = rlab_args_set(a, "ks", ks, &err);
    if (rc == RLAB_OK && mets[0])
        rc = rlab_args_set(a, "metrics", mets, &err);
    if (rc == RLAB_OK)
        rc = rlab_args_set_int(a, "neg", n_neg, &err);
    if (rc == RLAB_OK && lua_isinteger(L, -1))
        rc = rlab_args_set_int(a, "seed", (int64_t)lua_tointeger(L, -1), &err);
    if (rc) {
        rlab_args_free(a);
        /* "eval: bad argument 'k' ..." reads as evaluate's own */
        const char *msg = strncmp(err.msg, "eval: ", 6) == 0 ? err.msg + 6 : err.msg;
        return luaL_error(L, "evaluate: %s", msg);
    }
    rlab__run_and_push(L, lc, a, F); /* r */
    lua_getfield(L, -1, "users");    /* r n */
    lua_setfield(L, -2, "n_users");  /* r */
    return 1;
}

static const luaL_Reg model_methods[] = {
    {"recommend", l_model_recommend},
    {"score", l_model_score},
    {"describe", l_model_describe},
    {"info", l_model_info},
    {NULL, NULL},
};

static const luaL_Reg model_meta[] = {
    {"__index", l_model_index},
    {"__tostring", l_model_tostring},
    {"__eq", l_model_eq},
    {NULL, NULL},
};

static const luaL_Reg models_fns[] = {
    {"list", l_models_list}, {"get", l_models_get},       {"save", l_models_save},
    {"load", l_models_load}, {"remove", l_models_remove}, {NULL, NULL},
};

void rlab__open_models(lua_State *L)
{
    luaL_newmetatable(L, RLAB_LUA_MODEL_MT); /* M mt */
    luaL_setfuncs(L, model_meta, 0);         /* M mt */
    luaL_newlib(L, model_methods);           /* M mt methods */
    lua_setfield(L, -2, "methods");          /* M mt */
    lua_pop(L, 1);                           /* M */
    luaL_newlib(L, models_fns);              /* M models */
    lua_setfield(L, -2, "models");           /* M */
    lua_pushcfunction(L, l_recommend);       /* M fn */
    lua_setfield(L, -2, "recommend");        /* M */
    lua_pushcfunction(L, l_evaluate);        /* M fn */
    lua_setfield(L, -2, "evaluate");         /* M */
}
