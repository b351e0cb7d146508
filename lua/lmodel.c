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
static int l_model_info(lua_State *L)
{
    rlab_model *m = need_model(L, 1, "Model:info");
    rlab_model_info mi;
    model_info(m, &mi);
    rlab_model_release(m);
    push_info(L, &mi); /* t */
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

/* models.save(model [, dir = "models"]) -> artifact path */
static int l_models_save(lua_State *L)
{
    rlab_lua_ctx *lc = rlab__lctx(L);
    lmodel *u = luaL_testudata(L, 1, RLAB_LUA_MODEL_MT);
    const char *name = u ? u->name : luaL_checkstring(L, 1);
    const char *dir = luaL_optstring(L, 2, "models");
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return luaL_error(L, "models.save: cannot create folder '%s': %s", dir, strerror(errno));
    char *path = NULL;
    rlab_err err = {0};
    if (rlab_host_save_model(lc->host, name, dir, &path, &err))
        return rlab__lua_raise(L, "models.save", &err);
    lua_pushstring(L, path); /* path */
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

typedef struct eval_ud {
    const rlab_model *m;
    const rlab_seqs *hist;
    rlab_query *q; /* [batch] */
    rlab_lua_ctx *lc;
} eval_ud;

static int eval_score(void *ud, const int32_t *users, int nb, float *scores, rlab_err *err)
{
    eval_ud *e = ud;
    for (int b = 0; b < nb; b++) {
        int32_t u = users[b];
        int64_t o = e->hist->off[u];
        e->q[b] = (rlab_query){.user = u,
                               .hist = e->hist->items + o,
                               .hist_ts = e->hist->ts + o,
                               .n_hist = (int32_t)(e->hist->off[u + 1] - o)};
    }
    return rlab_model_score_all(e->m, e->q, nb, scores, err);
}

static int eval_cancel(void *ud)
{
    eval_ud *e = ud;
    return atomic_load(&e->lc->interrupted);
}

/* Append every row of src to dst. */
static int inter_append(rlab_inter *dst, const rlab_inter *src)
{
    for (size_t r = 0; r < src->n; r++)
        if (rlab_inter_push(dst, src->user[r], src->item[r], src->ts[r], src->rating[r], NULL))
            return RLAB_ENOMEM;
    return RLAB_OK;
}

/* Store the result as a run: plugin "core", name "evaluate", one metric row per mean. */
static int64_t store_eval(rlab_lua_ctx *lc, const rlab_model *m, const char *data,
                          const char *split, const rlab_eval_result *r, const int *ks, int nks,
                          rlab_err *err)
{
    rlab_db *db = rlab_host_db(lc->host);
    if (!db)
        return 0;
    char cfg[512];
    int n = snprintf(cfg, sizeof cfg,
                     "{\"model\":\"%s\",\"kind\":\"%s\",\"data\":\"%s\",\"split\":\"%s\","
                     "\"protocol\":\"%s\",\"k\":[",
                     m->name, m->kind, data, split, r->protocol);
    for (int i = 0; i < nks && n > 0 && (size_t)n < sizeof cfg; i++)
        n += snprintf(cfg + n, sizeof cfg - (size_t)n, "%s%d", i ? "," : "", ks[i]);
    if (n > 0 && (size_t)n < sizeof cfg)
        snprintf(cfg + n, sizeof cfg - (size_t)n, "]}");
    /* names are [A-Za-z0-9_.-] in practice; a quote would make the JSON invalid and the store
     * refuses it, so the run is simply not recorded then */
    rlab_db_run_info ri = {.plugin = "core",
                           .model_kind = m->kind,
                           .name = "evaluate",
                           .dataset = data,
                           .config_json = cfg,
                           .plugin_version = rlab_version()};
    int64_t run = 0;
    if (rlab_db_run_begin(db, &ri, &run, err))
        return -1;
    int rc = RLAB_OK;
    for (int i = 0; i < r->n_metrics && rc == RLAB_OK; i++)
        rc = rlab_db_metric(db, run, 0, split, r->names[i], r->protocol, r->mean[i], err);
    rlab_err e2 = {0};
    if (rlab_db_run_end(db, run, rc ? RLAB_RUN_FAILED : RLAB_RUN_DONE, rc ? err->msg : NULL,
                        rc ? &e2 : err) ||
        rc)
        return -1;
    return run;
}

/* reclab.evaluate{model=, data=, k = {5,10,20}, protocol = "full"|"sampled-N",
 *                 split = "test"|"valid", seed = 1, metrics = {"hr", "ndcg", ...}}
 *   -> {protocol=, n_users=, seconds=, run=, ["hr@10"] = v, ...} */
static int l_evaluate(lua_State *L)
{
    static const char *const F = "evaluate";
    rlab_lua_ctx *lc = rlab__lctx(L);
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_getfield(L, 1, "model"); /* m */
    if (lua_isnil(L, -1))
        return luaL_error(L, "evaluate: missing argument 'model'");
    lua_getfield(L, 1, "data"); /* m data */
    const char *data = lua_tostring(L, -1);
    if (!data)
        return luaL_error(L, "evaluate: missing argument 'data' (dataset name)");
    lua_getfield(L, 1, "split"); /* m data split */
    const char *split = luaL_optstring(L, -1, "test");
    if (strcmp(split, "test") && strcmp(split, "valid"))
        return luaL_error(L, "evaluate: bad argument 'split' (test or valid expected, got '%s')",
                          split);
    lua_getfield(L, 1, "protocol"); /* m data split proto */
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
    lua_getfield(L, 1, "seed"); /* m data split proto seed */
    uint64_t seed = (uint64_t)luaL_optinteger(L, -1, 1);
    int ks[16], nks = 0;
    lua_getfield(L, 1, "k"); /* ... k */
    if (lua_isinteger(L, -1)) {
        ks[nks++] = (int)lua_tointeger(L, -1);
    } else if (lua_istable(L, -1)) {
        for (int i = 1; i <= (int)lua_rawlen(L, -1) && nks < 16; i++) {
            lua_rawgeti(L, -1, i); /* ... k ki */
            if (!lua_isinteger(L, -1))
                return luaL_error(L, "evaluate: bad argument 'k' (integers expected)");
            ks[nks++] = (int)lua_tointeger(L, -1);
            lua_pop(L, 1); /* ... k */
        }
    } else if (lua_isnil(L, -1)) {
        ks[0] = 5, ks[1] = 10, ks[2] = 20, nks = 3;
    } else {
        return luaL_error(L, "evaluate: bad argument 'k' (integer or list expected)");
    }
    for (int i = 0; i < nks; i++)
        if (ks[i] < 1)
            return luaL_error(L, "evaluate: bad argument 'k' (each >= 1 expected, got %d)", ks[i]);
    unsigned metrics = 0;
    lua_getfield(L, 1, "metrics"); /* ... k metrics */
    if (lua_istable(L, -1)) {
        static const char *const mnames[] = {"hr", "recall", "precision", "ndcg", "mrr", "map"};
        for (int i = 1; i <= (int)lua_rawlen(L, -1); i++) {
            lua_rawgeti(L, -1, i); /* ... metrics name */
            const char *s = lua_tostring(L, -1);
            int j = 0;
            while (j < 6 && (!s || strcmp(s, mnames[j])))
                j++;
            if (j == 6)
                return luaL_error(L, "evaluate: unknown metric '%s'", s ? s : "?");
            metrics |= 1u << j;
            lua_pop(L, 1); /* ... metrics */
        }
    }

    /* the parts: <data>.train (+ .valid when testing) is the history, <data>.<split> the
     * targets */
    char nm[3][96];
    snprintf(nm[0], sizeof nm[0], "%s.train", data);
    snprintf(nm[1], sizeof nm[1], "%s.valid", data);
    snprintf(nm[2], sizeof nm[2], "%s.%s", data, split);
    rlab_dataset *tr = rlab_host_dataset_get(lc->host, nm[0]);
    rlab_dataset *va = strcmp(split, "test") == 0 ? rlab_host_dataset_get(lc->host, nm[1]) : NULL;
    rlab_dataset *te = rlab_host_dataset_get(lc->host, nm[2]);
    rlab_model *m = rlab__check_model(L, 2, F);
    rlab_err err = {0};
    int rc = RLAB_OK;
    if (!m)
        rc = rlab_errf(&err, RLAB_ENOTFOUND, "model '%s' not found", luaL_tolstring(L, 2, NULL));
    else if (!tr || !te)
        rc = rlab_errf(&err, RLAB_ENOTFOUND,
                       "dataset '%s' not found (split '%s' first: reclab.datasets.split)",
                       tr ? nm[2] : nm[0], data);
    int32_t nu = te ? rlab_vocab_size(&te->users) : 0, ni = te ? rlab_vocab_size(&te->items) : 0;
    if (rc == RLAB_OK && m->n_items != ni)
        rc = rlab_errf(&err, RLAB_EINVAL, "model '%s' knows %d items, dataset '%s' has %d", m->name,
                       (int)m->n_items, data, (int)ni);
    if (rc == RLAB_OK && m->n_users > 0 && m->n_users != nu)
        rc = rlab_errf(&err, RLAB_EINVAL, "model '%s' knows %d users, dataset '%s' has %d", m->name,
                       (int)m->n_users, data, (int)nu);
    rlab_inter hin;
    rlab_inter_init(&hin);
    rlab_seqs hs, ts;
    memset(&hs, 0, sizeof hs);
    memset(&ts, 0, sizeof ts);
    rlab_eval_result *r = NULL;
    eval_ud e = {.m = m, .hist = &hs, .lc = lc};
    if (rc == RLAB_OK && (inter_append(&hin, &tr->inter) || (va && inter_append(&hin, &va->inter))))
        rc = rlab_errf(&err, RLAB_ENOMEM, "out of memory");
    if (rc == RLAB_OK)
        rc = rlab_seqs_from_inter(&hin, nu, &hs, &err);
    if (rc == RLAB_OK)
        rc = rlab_seqs_from_inter(&te->inter, nu, &ts, &err);
    if (rc == RLAB_OK) {
        e.q = rlab_calloc(256, sizeof *e.q);
        if (!e.q)
            rc = rlab_errf(&err, RLAB_ENOMEM, "out of memory");
    }
    if (rc == RLAB_OK) {
        rlab_eval_spec sp = {0};
        sp.n_users = nu;
        sp.n_items = ni;
        sp.hist_off = hs.off;
        sp.hist_items = hs.items;
        sp.tgt_off = ts.off;
        sp.tgt_items = ts.items;
        sp.ks = ks;
        sp.n_ks = nks;
        sp.metrics = metrics;
        sp.batch = 256;
        sp.n_neg = n_neg;
        sp.seed = seed;
        sp.score = eval_score;
        sp.score_ud = &e;
        sp.cancel = eval_cancel;
        sp.cancel_ud = &e;
        r = rlab_eval_ranking(&sp, &err);
        if (!r)
            rc = err.code ? err.code : RLAB_EINVAL;
    }
    int64_t run = 0;
    if (rc == RLAB_OK) {
        run = store_eval(lc, m, data, split, r, ks, nks, &err);
        if (run < 0)
            rc = err.code ? err.code : RLAB_EDB;
    }
    if (rc == RLAB_OK) {
        lua_createtable(L, 0, r->n_metrics + 5);     /* ... res */
        lua_pushstring(L, r->protocol);              /* ... res v */
        lua_setfield(L, -2, "protocol");             /* ... res */
        lua_pushinteger(L, (lua_Integer)r->n_users); /* ... res v */
        lua_setfield(L, -2, "n_users");              /* ... res */
        lua_pushnumber(L, r->seconds);               /* ... res v */
        lua_setfield(L, -2, "seconds");              /* ... res */
        lua_pushstring(L, m->name);                  /* ... res v */
        lua_setfield(L, -2, "model");                /* ... res */
        if (run > 0) {
            lua_pushinteger(L, (lua_Integer)run); /* ... res v */
            lua_setfield(L, -2, "run");           /* ... res */
        }
        for (int i = 0; i < r->n_metrics; i++) {
            lua_pushnumber(L, r->mean[i]);    /* ... res v */
            lua_setfield(L, -2, r->names[i]); /* ... res */
        }
    }
    rlab_eval_result_free(r);
    rlab_free(e.q);
    rlab_seqs_clear(&hs);
    rlab_seqs_clear(&ts);
    rlab_inter_clear(&hin);
    rlab_host_dataset_release(lc->host, tr);
    rlab_host_dataset_release(lc->host, va);
    rlab_host_dataset_release(lc->host, te);
    rlab_model_release(m);
    if (rc == RLAB_ECANCELED)
        return luaL_error(L, "evaluate: interrupted");
    if (rc)
        return rlab__lua_raise(L, F, &err);
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
