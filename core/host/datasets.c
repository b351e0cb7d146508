/*
 * core/host/datasets.c: the session's data. The registry of loaded datasets (interactions and
 * dialogues share one namespace), loading files, worlds and splits with a recipe saying how to
 * rebuild each, recording them in the store, and reopening a workspace: the datasets the store
 * records are listed at once and rebuilt on first use, after their source files are checked
 * against the recorded sha256 (host.h, "datasets").
 *
 * Locking: h->mu guards the two lists (h->datasets, h->recorded); loading and hashing run
 * outside it. h->reload_mu serialises lazy reloads, so two commands asking for the same
 * recorded dataset load it once; it is recursive because a split reloads its parent.
 */
#define _XOPEN_SOURCE 700 /* realpath */
#include "host/host_internal.h"
#include "data/split.h"
#include "data/tabular.h"
#include "model/config.h"
#include "store/sha256.h"

#include <errno.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- the registry ---------------------------------------------------------------------- */

static void entry_free(rlab_ds_entry *e)
{
    if (!e)
        return;
    rlab_dataset_free(e->ds);
    rlab_dialogues_free(e->dlg);
    rlab_free(e->recipe);
    rlab_free(e);
}

static void rec_free(rlab_ds_rec *r)
{
    if (!r)
        return;
    rlab_free(r->recipe);
    rlab_free(r);
}

void rlab__datasets_free(rlab_host *h)
{
    rlab_ds_entry *ds = h->datasets;
    h->datasets = NULL;
    for (rlab_ds_entry *e = ds, *next; e; e = next) {
        next = e->next;
        entry_free(e);
    }
    rlab_ds_rec *rs = h->recorded;
    h->recorded = NULL;
    for (rlab_ds_rec *r = rs, *next; r; r = next) {
        next = r->next;
        rec_free(r);
    }
}

/* The live (not detached) entry called name; under h->mu. */
static rlab_ds_entry *find_entry(rlab_host *h, const char *name)
{
    for (rlab_ds_entry *e = h->datasets; e && name; e = e->next)
        if (!e->detached && strcmp(e->name, name) == 0)
            return e;
    return NULL;
}

static rlab_ds_rec *find_rec(rlab_host *h, const char *name)
{
    for (rlab_ds_rec *r = h->recorded; r && name; r = r->next)
        if (strcmp(r->name, name) == 0)
            return r;
    return NULL;
}

/* Unlink the recorded entry of name; under h->mu. */
static void drop_rec(rlab_host *h, const char *name)
{
    for (rlab_ds_rec **pp = &h->recorded; *pp; pp = &(*pp)->next)
        if (strcmp((*pp)->name, name) == 0) {
            rlab_ds_rec *r = *pp;
            *pp = r->next;
            rec_free(r);
            return;
        }
}

/* Detach the live entry of name (freed now when nobody holds it, else by the last release);
 * returns the entry to free after unlocking, or NULL. Under h->mu. */
static rlab_ds_entry *detach(rlab_host *h, const char *name, int *found)
{
    for (rlab_ds_entry **pp = &h->datasets; *pp; pp = &(*pp)->next) {
        rlab_ds_entry *o = *pp;
        if (!o->detached && strcmp(o->name, name) == 0) {
            *found = 1;
            o->detached = 1;
            if (o->refs == 0) {
                *pp = o->next;
                return o;
            }
            return NULL;
        }
    }
    return NULL;
}

/* Register ds or dlg (taken, also on failure) under name with recipe/sha (copied), replacing
 * whatever had that name, loaded or recorded. */
static int registry_add(rlab_host *h, const char *name, rlab_dataset *ds, rlab_dialogues *dlg,
                        const char *recipe, const char *sha, rlab_err *err)
{
    int nrc = rlab_name_check("dataset", name, err);
    if (nrc || !name[0]) {
        rlab_dataset_free(ds);
        rlab_dialogues_free(dlg);
        return nrc ? nrc : rlab_errf(err, RLAB_EINVAL, "a dataset needs a name");
    }
    rlab_ds_entry *e = rlab_calloc(1, sizeof *e);
    char *rcp = recipe ? rlab_strdup(recipe) : NULL;
    if (!e || (recipe && !rcp)) {
        /* the message first: name may point into ds (found by the allocation-failure sweep) */
        rlab_errf(err, RLAB_ENOMEM, "out of memory adding dataset '%s'", name);
        rlab_free(e);
        rlab_free(rcp);
        rlab_dataset_free(ds);
        rlab_dialogues_free(dlg);
        return RLAB_ENOMEM;
    }
    snprintf(e->name, sizeof e->name, "%s", name);
    e->ds = ds;
    e->dlg = dlg;
    e->recipe = rcp;
    snprintf(e->sha256, sizeof e->sha256, "%s", sha ? sha : "");
    int found = 0;
    pthread_mutex_lock(&h->mu);
    rlab_ds_entry *old = detach(h, name, &found);
    drop_rec(h, name);
    e->next = h->datasets;
    h->datasets = e;
    pthread_mutex_unlock(&h->mu);
    entry_free(old);
    return RLAB_OK;
}

int rlab_host_add_dataset(rlab_host *h, rlab_dataset *ds, rlab_err *err)
{
    if (!h || !ds || !ds->name[0]) {
        rlab_dataset_free(ds);
        return rlab_errf(err, RLAB_EINVAL, "a dataset needs a name");
    }
    if (!memchr(ds->name, '\0', sizeof ds->name)) { /* written past the field: never cut it */
        char q[sizeof ds->name + 1];
        memcpy(q, ds->name, sizeof ds->name);
        q[sizeof ds->name] = '\0';
        int rc = rlab_name_check("dataset", q, err);
        rlab_dataset_free(ds);
        return rc;
    }
    char name[sizeof ds->name];
    memcpy(name, ds->name, sizeof name);
    return registry_add(h, name, ds, NULL, NULL, NULL, err);
}

int rlab_host_add_dialogues(rlab_host *h, const char *name, rlab_dialogues *d, rlab_err *err)
{
    if (!h || !d || !name) {
        rlab_dialogues_free(d);
        return rlab_errf(err, RLAB_EINVAL, "dialogues need a name");
    }
    return registry_add(h, name, NULL, d, NULL, NULL, err);
}

int rlab_host_remove_dataset(rlab_host *h, const char *name, rlab_err *err)
{
    int found = 0;
    pthread_mutex_lock(&h->mu);
    rlab_ds_entry *old = name ? detach(h, name, &found) : NULL;
    if (name && find_rec(h, name)) {
        drop_rec(h, name);
        found = 1;
    }
    pthread_mutex_unlock(&h->mu);
    entry_free(old);
    return found ? RLAB_OK
                 : rlab_errf(err, RLAB_ENOTFOUND, "dataset '%s' not found", name ? name : "");
}

int rlab_host_forget_dataset(rlab_host *h, rlab_db *db, const char *name, rlab_err *err)
{
    int rc = rlab_host_remove_dataset(h, name, err);
    if (rc == RLAB_OK && db)
        rc = rlab_db_dataset_delete(db, name, err);
    return rc;
}

/* A reference to the live entry's ds (want 0) or dlg (want 1) of name, or NULL. */
static void *take(rlab_host *h, const char *name, int want)
{
    void *p = NULL;
    pthread_mutex_lock(&h->mu);
    rlab_ds_entry *e = find_entry(h, name);
    if (e && (want ? (void *)e->dlg : (void *)e->ds)) {
        e->refs++;
        p = want ? (void *)e->dlg : (void *)e->ds;
    }
    pthread_mutex_unlock(&h->mu);
    return p;
}

static void give_back(rlab_host *h, const void *p)
{
    rlab_ds_entry *gone = NULL;
    if (!h || !p)
        return;
    pthread_mutex_lock(&h->mu);
    for (rlab_ds_entry **pp = &h->datasets; *pp; pp = &(*pp)->next) {
        rlab_ds_entry *e = *pp;
        if ((e->ds == p || e->dlg == p) && e->refs > 0) {
            if (--e->refs == 0 && e->detached) {
                *pp = e->next;
                gone = e;
            }
            break;
        }
    }
    pthread_mutex_unlock(&h->mu);
    entry_free(gone);
}

/* One kind of a dataset by name, rebuilt from the store's record when needed. */
static void *get_kind(rlab_host *h, const char *name, int want, rlab_err *err)
{
    if (!h || !name)
        return NULL;
    void *p = take(h, name, want);
    if (p)
        return p;
    rlab_err e = {0};
    int rc = rlab_host_dataset_ensure(h, name, &e);
    if (rc == RLAB_OK && !(p = take(h, name, want))) {
        rlab_dataset_brief b;
        int have = rlab_host_dataset_brief(h, name, &b) == RLAB_OK;
        rc = rlab_errf(&e, have ? RLAB_EINVAL : RLAB_ENOTFOUND,
                       have ? "dataset '%s' holds %s, not %s" : "dataset '%s' not found", name,
                       have ? b.kind : "", want ? "dialogues" : "interactions");
    }
    if (!p && err)
        *err = e;
    return p;
}

rlab_dataset *rlab__dataset_get_err(rlab_host *h, const char *name, rlab_err *err)
{
    return get_kind(h, name, 0, err);
}

rlab_dialogues *rlab__dialogues_get_err(rlab_host *h, const char *name, rlab_err *err)
{
    return get_kind(h, name, 1, err);
}

rlab_dataset *rlab_host_dataset_get(rlab_host *h, const char *name)
{
    return get_kind(h, name, 0, NULL);
}

rlab_dataset *rlab_host_dataset_get_err(rlab_host *h, const char *name, rlab_err *err)
{
    return get_kind(h, name, 0, err);
}

void rlab_host_dataset_release(rlab_host *h, rlab_dataset *ds) { give_back(h, ds); }

rlab_dialogues *rlab_host_dialogues_get(rlab_host *h, const char *name)
{
    return get_kind(h, name, 1, NULL);
}

void rlab_host_dialogues_release(rlab_host *h, rlab_dialogues *d) { give_back(h, d); }

int rlab__is_dialogues(rlab_host *h, const char *name)
{
    rlab_dataset_brief b;
    return rlab_host_dataset_brief(h, name, &b) == RLAB_OK && strcmp(b.kind, "dialogues") == 0;
}

static int cmp_cstr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

char **rlab_host_dataset_names(rlab_host *h)
{
    pthread_mutex_lock(&h->mu);
    int n = 0;
    for (rlab_ds_entry *e = h->datasets; e; e = e->next)
        n += !e->detached;
    for (rlab_ds_rec *r = h->recorded; r; r = r->next)
        n++;
    char **v = rlab_calloc((size_t)n + 1, sizeof *v);
    int k = 0, oom = !v;
    for (rlab_ds_entry *e = h->datasets; v && e && !oom; e = e->next)
        if (!e->detached && !(v[k++] = rlab_strdup(e->name)))
            oom = 1;
    for (rlab_ds_rec *r = h->recorded; v && r && !oom; r = r->next)
        if (!(v[k++] = rlab_strdup(r->name)))
            oom = 1;
    pthread_mutex_unlock(&h->mu);
    if (oom) {
        rlab_strv_free(v);
        return NULL;
    }
    qsort(v, (size_t)k, sizeof *v, cmp_cstr);
    return v;
}

/* ---- briefs ------------------------------------------------------------------------------ */

static int64_t dialogue_turns(const rlab_dialogues *d)
{
    int64_t n = 0;
    for (size_t i = 0; i < d->n; i++)
        n += d->convs[i].nturns;
    return n;
}

/* The first "path" of a recipe, for a dialogue dataset's source. */
static void recipe_path(const char *recipe, char *buf, size_t size)
{
    buf[0] = '\0';
    json_object *o = recipe ? json_tokener_parse(recipe) : NULL, *p;
    if (o && json_object_object_get_ex(o, "path", &p) && json_object_is_type(p, json_type_string))
        snprintf(buf, size, "%s", json_object_get_string(p));
    json_object_put(o);
}

static void brief_of_entry(const rlab_ds_entry *e, rlab_dataset_brief *b)
{
    memset(b, 0, sizeof *b);
    snprintf(b->name, sizeof b->name, "%s", e->name);
    b->state = RLAB_DS_LOADED;
    if (e->ds) {
        snprintf(b->kind, sizeof b->kind, "interactions");
        snprintf(b->format, sizeof b->format, "%s", e->ds->format);
        snprintf(b->source, sizeof b->source, "%s", e->ds->source);
        b->n_users = rlab_vocab_size(&e->ds->users);
        b->n_items = rlab_vocab_size(&e->ds->items);
        b->n_inter = (int64_t)e->ds->inter.n;
        if (e->ds->tab && !e->ds->inter.n) { /* samples: groups and samples */
            snprintf(b->kind, sizeof b->kind, "samples");
            b->n_users = rlab_tabular_ngroups(e->ds->tab);
            b->n_inter = e->ds->tab->n;
        }
    } else if (e->dlg) {
        snprintf(b->kind, sizeof b->kind, "dialogues");
        snprintf(b->format, sizeof b->format, "%s", e->dlg->format);
        recipe_path(e->recipe, b->source, sizeof b->source);
        b->n_users = (int64_t)e->dlg->n;
        b->n_items = rlab_vocab_size(&e->dlg->items);
        b->n_inter = dialogue_turns(e->dlg);
    }
}

static void brief_of_rec(const rlab_ds_rec *r, rlab_dataset_brief *b)
{
    memset(b, 0, sizeof *b);
    snprintf(b->name, sizeof b->name, "%s", r->name);
    snprintf(b->kind, sizeof b->kind, "%s", r->kind[0] ? r->kind : "interactions");
    snprintf(b->format, sizeof b->format, "%s", r->format);
    snprintf(b->source, sizeof b->source, "%s", r->source);
    b->n_users = r->n_users;
    b->n_items = r->n_items;
    b->n_inter = r->n_inter;
    b->state = r->problem[0] ? RLAB_DS_UNAVAILABLE : RLAB_DS_RECORDED;
    snprintf(b->problem, sizeof b->problem, "%s", r->problem);
}

int rlab_host_dataset_brief(rlab_host *h, const char *name, rlab_dataset_brief *out)
{
    int rc = RLAB_ENOTFOUND;
    pthread_mutex_lock(&h->mu);
    rlab_ds_entry *e = find_entry(h, name);
    rlab_ds_rec *r = e ? NULL : find_rec(h, name);
    if (e)
        brief_of_entry(e, out);
    else if (r)
        brief_of_rec(r, out);
    if (e || r)
        rc = RLAB_OK;
    pthread_mutex_unlock(&h->mu);
    return rc;
}

static int cmp_brief(const void *a, const void *b)
{
    return strcmp(((const rlab_dataset_brief *)a)->name, ((const rlab_dataset_brief *)b)->name);
}

int rlab_host_datasets(rlab_host *h, rlab_dataset_brief **out, int *n, rlab_err *err)
{
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&h->mu);
    int cap = 0;
    for (rlab_ds_entry *e = h->datasets; e; e = e->next)
        cap += !e->detached;
    for (rlab_ds_rec *r = h->recorded; r; r = r->next)
        cap++;
    rlab_dataset_brief *v = rlab_calloc((size_t)cap + 1, sizeof *v);
    int k = 0;
    for (rlab_ds_entry *e = h->datasets; v && e; e = e->next)
        if (!e->detached)
            brief_of_entry(e, &v[k++]);
    for (rlab_ds_rec *r = h->recorded; v && r; r = r->next)
        brief_of_rec(r, &v[k++]);
    pthread_mutex_unlock(&h->mu);
    if (!v)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    qsort(v, (size_t)k, sizeof *v, cmp_brief);
    *out = v;
    *n = k;
    return RLAB_OK;
}

/* ---- recipes ------------------------------------------------------------------------------ */

/* The generator's fields, for a world's recipe (drift_ts, an array, is written apart). Every
 * value round-trips exactly (config.h: canonical text), so the world regenerates byte for
 * byte. int32_t fields use RLAB_F_INT (int is 32 bits on every platform reclab builds on). */
#define WF_INT(m) RLAB_FIELD_INT(rlab_world_config, m, "0", 0, 0, "")
#define WF_I64(m) RLAB_FIELD_I64(rlab_world_config, m, "0", 0, 0, "")
#define WF_FLT(m) RLAB_FIELD_FLOAT(rlab_world_config, m, "0", 0, 0, "")
static const rlab_field world_fields[] = {
    WF_I64(seed),         WF_INT(n_users),        WF_INT(n_items),
    WF_INT(n_genres),     WF_I64(n_inter),        WF_INT(min_per_user),
    WF_FLT(taste_alpha),  WF_FLT(zipf),           WF_FLT(pop_power),
    WF_FLT(taste_power),  WF_FLT(taste_eps),      WF_FLT(p_transition),
    WF_INT(n_successors), WF_FLT(avg_follow),     WF_FLT(homophily),
    WF_I64(t0),           WF_I64(span),           WF_INT(n_drift),
    WF_FLT(drift_frac),   WF_FLT(drift_strength), {0}};
#undef WF_INT
#undef WF_I64
#undef WF_FLT

_Static_assert(sizeof(int32_t) == sizeof(int), "world_fields reads int32_t fields as int");

/* Add key = string value to o; 0 on ENOMEM. */
static int put_str(json_object *o, const char *key, const char *v)
{
    json_object *j = json_object_new_string(v ? v : "");
    return j && json_object_object_add(o, key, j) == 0;
}

static char *json_take(json_object *o)
{
    char *s = o ? rlab_strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN)) : NULL;
    json_object_put(o);
    return s;
}

static const char *jstr(json_object *o, const char *key)
{
    json_object *v;
    return o && json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
               ? json_object_get_string(v)
               : NULL;
}

static int jnum(json_object *o, const char *key, double *out)
{
    json_object *v;
    if (!o || !json_object_object_get_ex(o, key, &v) ||
        !(json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int)))
        return 0;
    *out = json_object_get_double(v);
    return 1;
}

/* One source file: absolute path, sha256, size. */
typedef struct src_file {
    char path[PATH_MAX];
    char sha[65];
    int64_t bytes;
} src_file;

/* The sha256 of a dataset's sources: the file's own for one file, else the sha256 of the
 * lines "<sha256>  <path>\n" (sha256sum's format) in order. */
static void combined_sha(const src_file *f, int n, char hex[65])
{
    if (n == 1) {
        memcpy(hex, f[0].sha, 65);
        return;
    }
    rlab_sha256 s;
    rlab_sha256_init(&s);
    for (int i = 0; i < n; i++) {
        rlab_sha256_update(&s, f[i].sha, strlen(f[i].sha));
        rlab_sha256_update(&s, "  ", 2);
        rlab_sha256_update(&s, f[i].path, strlen(f[i].path));
        rlab_sha256_update(&s, "\n", 1);
    }
    unsigned char d[32];
    rlab_sha256_final(&s, d);
    rlab_sha256_hex(d, hex);
}

/* Hash the files a loader read: ds->source lists them, "; "-separated (load_common.c). */
#define MAX_SRC 16
static int hash_sources(const char *list, src_file *f, int *n, rlab_err *err)
{
    *n = 0;
    const char *p = list;
    while (p && *p && *n < MAX_SRC) {
        const char *semi = strstr(p, "; ");
        size_t l = semi ? (size_t)(semi - p) : strlen(p);
        char one[PATH_MAX];
        snprintf(one, sizeof one, "%.*s", (int)l, p);
        p = semi ? semi + 2 : NULL;
        src_file *s = &f[*n];
        if (!realpath(one, s->path)) {
            if (!p && strlen(list) >= 500)
                break; /* the last name of a full ds->source may be cut: not checked */
            return rlab_errf(err, RLAB_EIO, "%s: %s", one, strerror(errno));
        }
        uint64_t bytes = 0;
        int rc = rlab_sha256_file(s->path, s->sha, &bytes, err);
        if (rc)
            return rc;
        s->bytes = (int64_t)bytes;
        (*n)++;
    }
    return RLAB_OK;
}

/* {"load":"file","path":...,"format":...,"name":...,"kind":...,"files":[...]} */
static char *file_recipe(const char *abs, const char *format, const char *name, const char *kind,
                         const src_file *f, int n)
{
    json_object *o = json_object_new_object(), *files = json_object_new_array();
    int ok = o && files && put_str(o, "load", "file") && put_str(o, "path", abs) &&
             put_str(o, "format", format) && put_str(o, "name", name) && put_str(o, "kind", kind);
    for (int i = 0; ok && i < n; i++) {
        json_object *x = json_object_new_object();
        ok = x && put_str(x, "path", f[i].path) && put_str(x, "sha256", f[i].sha) &&
             json_object_object_add(x, "bytes", json_object_new_int64(f[i].bytes)) == 0 &&
             json_object_array_add(files, x) == 0;
        if (!ok)
            json_object_put(x);
    }
    if (ok && json_object_object_add(o, "files", files) == 0)
        files = NULL;
    else
        ok = 0;
    json_object_put(files);
    if (!ok) {
        json_object_put(o);
        return NULL;
    }
    return json_take(o);
}

/* Compare a file recipe's files with the disk: deep also hashes them. RLAB_ESTATE with one
 * line naming the dataset, the file and what differs. */
static int check_files(const char *name, json_object *recipe, int deep, rlab_err *err)
{
    json_object *files;
    if (!json_object_object_get_ex(recipe, "files", &files) ||
        !json_object_is_type(files, json_type_array))
        return RLAB_OK;
    size_t n = json_object_array_length(files);
    for (size_t i = 0; i < n; i++) {
        json_object *f = json_object_array_get_idx(files, i);
        const char *path = jstr(f, "path"), *sha = jstr(f, "sha256");
        double want_bytes = -1;
        jnum(f, "bytes", &want_bytes);
        if (!path)
            continue;
        struct stat st;
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            return rlab_errf(err, RLAB_ESTATE,
                             "dataset '%s': %s is missing (moved or deleted since it was "
                             "recorded); not loaded",
                             name, path);
        int64_t bytes = (int64_t)st.st_size;
        int size_differs = want_bytes >= 0 && bytes != (int64_t)want_bytes;
        char now[65] = "";
        if (deep && sha && !size_differs) {
            uint64_t b = 0;
            rlab_err e = {0};
            if (rlab_sha256_file(path, now, &b, &e))
                return rlab_errf(err, RLAB_ESTATE,
                                 "dataset '%s': %s cannot be read (%s); not "
                                 "loaded",
                                 name, path, e.msg);
        }
        if (size_differs || (now[0] && sha && strcmp(now, sha) != 0)) {
            char extra[96] = "";
            if (size_differs)
                snprintf(extra, sizeof extra, "%lld bytes, now %lld", (long long)want_bytes,
                         (long long)bytes);
            else
                snprintf(extra, sizeof extra, "sha256 %.12s..., now %.12s...", sha, now);
            return rlab_errf(err, RLAB_ESTATE,
                             "dataset '%s': %s changed since it was recorded (%s); not loaded",
                             name, path, extra);
        }
    }
    return RLAB_OK;
}

/* ---- loading files ---------------------------------------------------------------------- */

/* Default name of a dialogue file: its base name without the extension (refused when too
 * long for a name, never cut). */
static int dialogue_name(const char *path, char out[64], rlab_err *err)
{
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    const char *dot = strrchr(b, '.');
    size_t n = dot && dot != b ? (size_t)(dot - b) : strlen(b);
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%.*s", (int)n, b);
    int rc = rlab_name_check("dataset", tmp, err);
    if (rc == RLAB_OK)
        memcpy(out, tmp, n + 1);
    return rc;
}

static int is_dialogue_format(const char *format)
{
    return format && (strcmp(format, "redial") == 0 || strcmp(format, "inspired") == 0);
}

/* Everything a registration needs, built before the registry sees it. */
typedef struct built {
    char name[64];
    rlab_dataset *ds;
    rlab_dialogues *dlg;
    char *recipe;
    char sha[65];
} built;

static void built_clear(built *b)
{
    rlab_dataset_free(b->ds);
    rlab_dialogues_free(b->dlg);
    rlab_free(b->recipe);
    memset(b, 0, sizeof *b);
}

/* Load path as format under name (NULL: default) into b, with its recipe. */
static int build_file(const char *path, const char *format, const char *name, built *b,
                      rlab_err *err)
{
    memset(b, 0, sizeof *b);
    char abs[PATH_MAX];
    if (!path || !realpath(path, abs))
        return rlab_errf_at(err, RLAB_EIO, path ? path : "", 0, "cannot open: %s",
                            path ? strerror(errno) : "no path");
    const char *shape = NULL;
    struct stat st;
    if (!format && stat(abs, &st) == 0 && S_ISREG(st.st_mode))
        shape = rlab_data_dialogue_shape(abs);
    int dialogues = is_dialogue_format(format) || shape;
    const char *kind = dialogues ? "dialogues" : "interactions";
    int rc;
    if (dialogues) {
        if (name) {
            rc = rlab_name_check("dataset", name, err);
            if (rc)
                return rc;
        }
        rc = rlab_dialogues_load(path, format ? format : shape, &b->dlg, err);
        if (rc)
            return rc;
        if (name)
            snprintf(b->name, sizeof b->name, "%s", name);
        else if ((rc = dialogue_name(abs, b->name, err)) != RLAB_OK) {
            built_clear(b);
            return rc;
        }
    } else {
        rc = rlab_data_load(path, format, name, &b->ds, err);
        if (rc)
            return rc;
        snprintf(b->name, sizeof b->name, "%s", b->ds->name);
    }
    src_file *f = rlab_calloc(MAX_SRC, sizeof *f);
    int n = 0;
    if (!f)
        rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
    else
        rc = hash_sources(b->ds ? b->ds->source : abs, f, &n, err);
    if (rc == RLAB_OK) {
        combined_sha(f, n, b->sha);
        b->recipe = file_recipe(abs, b->ds ? b->ds->format : b->dlg->format, b->name, kind, f, n);
        if (!b->recipe)
            rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
    }
    rlab_free(f);
    if (rc)
        built_clear(b);
    return rc;
}

/* Write b's store row. */
static int record_built(rlab_db *db, const built *b, rlab_err *err)
{
    char src[512] = "";
    if (b->dlg)
        recipe_path(b->recipe, src, sizeof src);
    rlab_db_dataset_info di = {
        .name = b->name,
        .source = b->ds ? b->ds->source : src,
        .format = b->ds ? b->ds->format : b->dlg->format,
        .sha256 = b->sha[0] ? b->sha : NULL,
        .n_users = b->ds ? rlab_vocab_size(&b->ds->users) : (int64_t)b->dlg->n,
        .n_items = b->ds ? rlab_vocab_size(&b->ds->items) : rlab_vocab_size(&b->dlg->items),
        .n_inter = b->ds ? (int64_t)b->ds->inter.n : dialogue_turns(b->dlg),
        .kind = b->ds ? "interactions" : "dialogues",
        .recipe = b->recipe};
    if (b->ds && b->ds->tab && !b->ds->inter.n) { /* samples: groups and samples */
        di.kind = "samples";
        di.n_users = rlab_tabular_ngroups(b->ds->tab);
        di.n_inter = b->ds->tab->n;
    }
    if (!b->sha[0] && b->ds && strncmp(b->ds->source, "builtin:", 8) == 0)
        di.sha256 = NULL; /* a world: its checksum is in the source and the recipe */
    return rlab_db_dataset_register(db, &di, NULL, err);
}

/* Record (db may be NULL), then register; b is consumed. */
static int commit_built(rlab_host *h, rlab_db *db, built *b, rlab_err *err)
{
    int rc = db ? record_built(db, b, err) : RLAB_OK;
    if (rc == RLAB_OK) {
        rc = registry_add(h, b->name, b->ds, b->dlg, b->recipe, b->sha, err);
        b->ds = NULL;
        b->dlg = NULL;
    }
    built_clear(b);
    return rc;
}

int rlab_host_load_dataset(rlab_host *h, rlab_db *db, const char *path, const char *format,
                           const char *name, rlab_dataset_brief *out, rlab_err *err)
{
    built b;
    int rc = build_file(path, format, name, &b, err);
    char nm[64];
    snprintf(nm, sizeof nm, "%s", b.name);
    if (rc == RLAB_OK)
        rc = commit_built(h, db, &b, err);
    if (rc == RLAB_OK && out && rlab_host_dataset_brief(h, nm, out) != RLAB_OK)
        rc = rlab_errf(err, RLAB_ESTATE, "dataset '%s' was replaced meanwhile", nm);
    return rc;
}

/* ---- worlds ----------------------------------------------------------------------------- */

static char *world_recipe(const rlab_world_config *cfg, int demo, uint64_t checksum)
{
    char sum[24];
    snprintf(sum, sizeof sum, "%016llx", (unsigned long long)checksum);
    json_object *o = json_object_new_object();
    int ok = o && put_str(o, "load", demo ? "demo" : "world") && put_str(o, "checksum", sum);
    if (ok && !demo) {
        char *cj = rlab_config_to_json(world_fields, cfg);
        json_object *c = cj ? json_tokener_parse(cj) : NULL;
        rlab_free(cj);
        json_object *d = json_object_new_array();
        for (int i = 0; d && i < cfg->n_drift && i < RLAB_WORLD_MAX_DRIFT; i++)
            json_object_array_add(d, json_object_new_int64(cfg->drift_ts[i]));
        ok = c && d && json_object_object_add(o, "config", c) == 0;
        if (!ok)
            json_object_put(c);
        ok = ok && json_object_object_add(o, "drift_ts", d) == 0;
        if (!ok)
            json_object_put(d);
    }
    if (!ok) {
        json_object_put(o);
        return NULL;
    }
    return json_take(o);
}

/* Generate (cfg NULL: the demo) named name into b, with its recipe. */
static int build_world(const rlab_world_config *cfg, const char *name, built *b,
                       rlab_world_config *used, rlab_err *err)
{
    memset(b, 0, sizeof *b);
    int rc = rlab_name_check("dataset", name, err);
    if (rc)
        return rc;
    rlab_world *w = NULL;
    rc = cfg ? rlab_world_generate(cfg, name, &w, &b->ds, err) : rlab_world_demo(&w, &b->ds, err);
    if (rc)
        return rc;
    uint64_t sum = rlab_world_checksum(w, b->ds);
    snprintf(b->ds->name, sizeof b->ds->name, "%s", name); /* the demo is made as "demo" */
    snprintf(b->ds->source, sizeof b->ds->source, "builtin:%s:%016llx", cfg ? "world" : "demo",
             (unsigned long long)sum);
    snprintf(b->name, sizeof b->name, "%s", name);
    if (used)
        *used = w->cfg;
    b->recipe = world_recipe(&w->cfg, !cfg, sum);
    rlab_world_free(w);
    if (!b->recipe) {
        built_clear(b);
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    }
    return RLAB_OK;
}

int rlab_host_make_world(rlab_host *h, rlab_db *db, const rlab_world_config *cfg, const char *name,
                         rlab_world_config *used, rlab_err *err)
{
    built b;
    int rc = build_world(cfg, name ? name : (cfg ? "world" : "demo"), &b, used, err);
    return rc ? rc : commit_built(h, db, &b, err);
}

/* ---- splits -------------------------------------------------------------------------------- */

void rlab_split_opts_default(rlab_split_opts *o)
{
    memset(o, 0, sizeof *o);
    o->method = "loo";
    o->test_frac = 0.2;
    o->valid_frac = 0.0;
    o->train = 0.8;
    o->valid = 0.1;
    o->seed = 1;
}

/* A new dataset named "<prefix>.<part>" sharing parent's vocabularies, taking over rows. */
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
static int ts_quantile(const rlab_inter *t, double q, int64_t *out, rlab_err *err)
{
    if (t->n == 0)
        return rlab_errf(err, RLAB_EINVAL, "the dataset is empty");
    int64_t *ts = rlab_malloc(t->n * sizeof *ts);
    if (!ts)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    memcpy(ts, t->ts, t->n * sizeof *ts);
    qsort(ts, t->n, sizeof *ts, cmp_i64);
    size_t k = (size_t)(q * (double)t->n);
    if (k >= t->n)
        k = t->n - 1;
    *out = ts[k];
    rlab_free(ts);
    return RLAB_OK;
}

static const char *const part_names[3] = {"train", "valid", "test"};

static char *split_recipe(const char *parent, const rlab_split_opts *o, const char *into,
                          const char *part)
{
    json_object *o2 = json_object_new_object();
    int ok = o2 && put_str(o2, "load", "split") && put_str(o2, "parent", parent) &&
             put_str(o2, "method", o->method) && put_str(o2, "into", into) &&
             put_str(o2, "part", part);
    const char *keys[4] = {"test_frac", "valid_frac", "train", "valid"};
    const double vals[4] = {o->test_frac, o->valid_frac, o->train, o->valid};
    for (int i = 0; ok && i < 4; i++) {
        char num[32]; /* the shortest text that reads back as the same double: 0.2 */
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(num, sizeof num, "%.*g", prec, vals[i]);
            double back = strtod(num, NULL);
            if (memcmp(&back, &vals[i], sizeof back) == 0) /* exact round trip */
                break;
        }
        ok = json_object_object_add(o2, keys[i], json_object_new_double_s(vals[i], num)) == 0;
    }
    ok = ok && json_object_object_add(o2, "seed", json_object_new_int64((int64_t)o->seed)) == 0;
    if (!ok) {
        json_object_put(o2);
        return NULL;
    }
    return json_take(o2);
}

/* Split parent ds into out[3] with their recipes. */
static int build_split(const rlab_dataset *ds, const rlab_split_opts *o, built out[3],
                       rlab_err *err)
{
    memset(out, 0, 3 * sizeof *out);
    const char *into = o->into && *o->into ? o->into : ds->name;
    rlab_split sp;
    memset(&sp, 0, sizeof sp);
    int rc;
    int32_t nu = rlab_vocab_size(&ds->users);
    if (!o->method || strcmp(o->method, "loo") == 0) {
        rc = rlab_split_loo(&ds->inter, nu, &sp, err);
    } else if (strcmp(o->method, "temporal") == 0) {
        double tf = o->test_frac, vf = o->valid_frac;
        if (!(tf > 0 && tf < 1) || !(vf >= 0 && vf + tf < 1))
            return rlab_errf(err, RLAB_EINVAL,
                             "bad options (0 < test_frac, 0 <= valid_frac, test_frac + "
                             "valid_frac < 1 expected)");
        int64_t tc = 0, vc = 0;
        rc = ts_quantile(&ds->inter, 1.0 - tf, &tc, err);
        if (rc == RLAB_OK)
            rc = ts_quantile(&ds->inter, 1.0 - tf - vf, &vc, err);
        if (rc == RLAB_OK)
            rc = rlab_split_temporal(&ds->inter, vf > 0 ? vc : tc, tc, &sp, err);
    } else if (strcmp(o->method, "ratio") == 0) {
        rc = rlab_split_ratio(&ds->inter, nu, o->train, o->valid, o->seed, &sp, err);
    } else {
        return rlab_errf(err, RLAB_EINVAL,
                         "bad option 'method' (one of loo|temporal|ratio expected, got '%s')",
                         o->method);
    }
    rlab_inter *rows[3] = {&sp.train, &sp.valid, &sp.test};
    rlab_split_opts rec = *o;
    if (!rec.method)
        rec.method = "loo";
    for (int i = 0; i < 3 && rc == RLAB_OK; i++) {
        out[i].ds = split_part(ds, into, part_names[i], rows[i], err);
        if (!out[i].ds) {
            rc = err && err->code ? err->code : RLAB_ENOMEM;
            break;
        }
        snprintf(out[i].name, sizeof out[i].name, "%s", out[i].ds->name);
        out[i].recipe = split_recipe(ds->name, &rec, into, part_names[i]);
        if (!out[i].recipe)
            rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
    }
    rlab_split_clear(&sp);
    if (rc)
        for (int i = 0; i < 3; i++)
            built_clear(&out[i]);
    return rc;
}

/* Record (db may be NULL) and register the three parts; consumed. */
static int commit_parts(rlab_host *h, rlab_db *db, built parts[3], rlab_err *err)
{
    int rc = RLAB_OK;
    for (int i = 0; i < 3 && rc == RLAB_OK && db; i++)
        rc = record_built(db, &parts[i], err);
    for (int i = 0; i < 3; i++)
        if (rc == RLAB_OK)
            rc = commit_built(h, NULL, &parts[i], err);
        else
            built_clear(&parts[i]);
    return rc;
}

int rlab_host_split_dataset(rlab_host *h, rlab_db *db, const char *name, const rlab_split_opts *o,
                            rlab_dataset_brief parts[3], rlab_err *err)
{
    rlab_split_opts def;
    if (!o) {
        rlab_split_opts_default(&def);
        o = &def;
    }
    rlab_dataset *ds = rlab__dataset_get_err(h, name, err);
    if (!ds)
        return err && err->code ? err->code : RLAB_ENOTFOUND;
    built b[3];
    int rc = build_split(ds, o, b, err);
    rlab_host_dataset_release(h, ds);
    char names[3][64];
    for (int i = 0; i < 3; i++)
        memcpy(names[i], rc ? "" : b[i].name, rc ? 1 : sizeof names[i]);
    if (rc == RLAB_OK)
        rc = commit_parts(h, db, b, err);
    for (int i = 0; rc == RLAB_OK && parts && i < 3; i++)
        if (rlab_host_dataset_brief(h, names[i], &parts[i]) != RLAB_OK)
            rc = rlab_errf(err, RLAB_ESTATE, "dataset '%s' was replaced meanwhile", names[i]);
    return rc;
}

/* ---- k-core ------------------------------------------------------------------------------- */

static char *kcore_recipe(const char *parent, int k)
{
    json_object *o = json_object_new_object();
    int ok = o && put_str(o, "load", "kcore") && put_str(o, "parent", parent) &&
             json_object_object_add(o, "k", json_object_new_int(k)) == 0;
    if (!ok) {
        json_object_put(o);
        return NULL;
    }
    return json_take(o);
}

/* The k-core of parent as a new dataset name into b (interactions and vocabularies copied,
 * then filtered in place), with its recipe. */
static int build_kcore(const rlab_dataset *parent, const char *name, int k, built *b, rlab_err *err)
{
    memset(b, 0, sizeof *b);
    if (k < 1)
        return rlab_errf(err, RLAB_EINVAL, "k = %d, expected >= 1", k);
    rlab_dataset *ds = rlab_dataset_new(name, err);
    if (!ds)
        return err && err->code ? err->code : RLAB_ENOMEM;
    snprintf(ds->source, sizeof ds->source, "kcore:%s:%d", parent->name, k);
    snprintf(ds->format, sizeof ds->format, "%s", parent->format);
    const rlab_inter *src = &parent->inter;
    int rc = rlab_inter_reserve(&ds->inter, src->n > 0 ? src->n : 1);
    for (int32_t i = 0; rc == RLAB_OK && i < parent->users.n; i++)
        if (rlab_vocab_add(&ds->users, parent->users.names[i], strlen(parent->users.names[i])) < 0)
            rc = RLAB_ENOMEM;
    for (int32_t i = 0; rc == RLAB_OK && i < parent->items.n; i++)
        if (rlab_vocab_add(&ds->items, parent->items.names[i], strlen(parent->items.names[i])) < 0)
            rc = RLAB_ENOMEM;
    ds->inter.nlabels = src->nlabels;
    memcpy(ds->inter.label_names, src->label_names, sizeof src->label_names);
    float lab[RLAB_INTER_MAX_LABELS];
    for (size_t r = 0; rc == RLAB_OK && r < src->n; r++) {
        for (int l = 0; l < src->nlabels; l++)
            lab[l] = src->labels[l][r];
        rc = rlab_inter_push(&ds->inter, src->user[r], src->item[r], src->ts[r], src->rating[r],
                             src->nlabels ? lab : NULL);
    }
    ds->inter.flags = src->flags;
    if (rc != RLAB_OK) {
        rlab_dataset_free(ds);
        return rlab_errf(err, RLAB_ENOMEM, "out of memory copying '%s'", parent->name);
    }
    rc = rlab_kcore(ds, k, err);
    if (rc == RLAB_OK && ds->inter.n == 0)
        rc = rlab_errf(err, RLAB_EINVAL,
                       "no user and item of '%s' keep %d interactions: the %d-core is empty",
                       parent->name, k, k);
    if (rc != RLAB_OK) {
        rlab_dataset_free(ds);
        return rc;
    }
    b->ds = ds;
    snprintf(b->name, sizeof b->name, "%s", name);
    b->recipe = kcore_recipe(parent->name, k);
    if (!b->recipe) {
        built_clear(b);
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    }
    return RLAB_OK;
}

int rlab_host_kcore_dataset(rlab_host *h, rlab_db *db, const char *parent, const char *name, int k,
                            rlab_dataset_brief *out, rlab_err *err)
{
    if (!parent || !name)
        return rlab_errf(err, RLAB_EINVAL, "kcore: no dataset or name");
    int rc = rlab_name_check("dataset", name, err);
    if (rc)
        return rc;
    if (strcmp(parent, name) == 0)
        return rlab_errf(err, RLAB_EINVAL,
                         "the k-core needs a new name (it is a dataset of its own, '%s' stays)",
                         parent);
    rlab_dataset *ds = rlab__dataset_get_err(h, parent, err);
    if (!ds)
        return err && err->code ? err->code : RLAB_ENOTFOUND;
    built b;
    rc = build_kcore(ds, name, k, &b, err);
    rlab_host_dataset_release(h, ds);
    if (rc == RLAB_OK)
        rc = commit_built(h, db, &b, err);
    built_clear(&b);
    if (rc == RLAB_OK && out)
        rc = rlab_host_dataset_brief(h, name, out);
    return rc;
}

/* ---- derived by a plugin ------------------------------------------------------------------ */

/* The maker `maker` of loaded plugin `plugin`, or NULL. */
static const rlab_dataset_maker *find_maker(rlab_host *h, const char *plugin, const char *maker)
{
    for (int i = 0; i < h->nplugins; i++) {
        if (strcmp(h->plugins[i]->name, plugin) != 0)
            continue;
        for (const rlab_dataset_maker *m = h->plugins[i]->desc.makers; m && m->name; m++)
            if (strcmp(m->name, maker) == 0 && m->rebuild)
                return m;
    }
    return NULL;
}

/* {"load":"plugin","plugin":...,"maker":...,"params":{...}}; NULL when params is not a JSON
 * object or on ENOMEM (err says which). */
static char *plugin_recipe(const char *plugin, const char *maker, const char *params, rlab_err *err)
{
    json_object *p = params ? json_tokener_parse(params) : NULL;
    if (!p || !json_object_is_type(p, json_type_object)) {
        json_object_put(p);
        rlab_errf(err, RLAB_EINVAL, "the recipe parameters of %s.%s are not a JSON object", plugin,
                  maker);
        return NULL;
    }
    json_object *o = json_object_new_object();
    int ok = o && put_str(o, "load", "plugin") && put_str(o, "plugin", plugin) &&
             put_str(o, "maker", maker) && json_object_object_add(o, "params", p) == 0;
    if (!ok) {
        json_object_put(p);
        json_object_put(o);
        rlab_errf(err, RLAB_ENOMEM, "out of memory");
        return NULL;
    }
    char *r = json_take(o);
    if (!r)
        rlab_errf(err, RLAB_ENOMEM, "out of memory");
    return r;
}

int rlab__add_derived(rlab_host *h, rlab_db *db, const char *plugin, rlab_dataset *ds,
                      const char *maker, const char *params, rlab_err *err)
{
    if (!ds)
        return rlab_errf(err, RLAB_EINVAL, "no dataset");
    int rc = rlab_name_check("dataset", ds->name, err);
    if (rc == RLAB_OK && (!plugin || !maker || !find_maker(h, plugin, maker)))
        rc = rlab_errf(err, RLAB_EINVAL, "plugin '%s' declares no dataset maker '%s'",
                       plugin ? plugin : "", maker ? maker : "");
    built b;
    memset(&b, 0, sizeof b);
    b.ds = ds;
    if (rc == RLAB_OK) {
        snprintf(b.name, sizeof b.name, "%s", ds->name);
        b.recipe = plugin_recipe(plugin, maker, params, err);
        if (!b.recipe)
            rc = err && err->code ? err->code : RLAB_ENOMEM;
    }
    if (rc == RLAB_OK)
        return commit_built(h, db, &b, err);
    built_clear(&b);
    return rc;
}

/* Rebuild name through its plugin's maker (recipe object o) into b. */
static int build_derived(rlab_host *h, const char *name, json_object *o, built *b, rlab_err *err)
{
    const char *plugin = jstr(o, "plugin"), *maker = jstr(o, "maker");
    json_object *params = NULL;
    json_object_object_get_ex(o, "params", &params);
    const rlab_dataset_maker *m = plugin && maker ? find_maker(h, plugin, maker) : NULL;
    if (!m)
        return rlab_errf(err, RLAB_ESTATE,
                         "dataset '%s' is made by %s.%s, and no loaded plugin provides it "
                         "(load plugin '%s')",
                         name, plugin ? plugin : "?", maker ? maker : "?", plugin ? plugin : "?");
    const char *pj = params ? json_object_to_json_string_ext(params, JSON_C_TO_STRING_PLAIN) : "{}";
    rlab_dataset *ds = NULL;
    rlab_err pe = {0};
    int rc = m->rebuild(h, name, pj, &ds, &pe);
    if (rc == RLAB_OK && (!ds || strcmp(ds->name, name) != 0))
        rc = rlab_errf(&pe, RLAB_EINVAL, "the rebuild gave %s",
                       ds ? "a dataset of another name" : "no dataset");
    if (rc) {
        rlab_dataset_free(ds);
        return rlab_errf(err, rc, "dataset '%s' not rebuilt by %s.%s: %s", name, plugin, maker,
                         pe.msg);
    }
    memset(b, 0, sizeof *b);
    b->ds = ds;
    snprintf(b->name, sizeof b->name, "%s", name);
    return RLAB_OK;
}

/* ---- recording ---------------------------------------------------------------------------- */

int rlab_host_record_dataset(rlab_host *h, rlab_db *db, const char *name, rlab_err *err)
{
    if (!db)
        return RLAB_OK;
    built b;
    memset(&b, 0, sizeof b);
    pthread_mutex_lock(&h->mu);
    rlab_ds_entry *e = find_entry(h, name);
    if (e) {
        e->refs++; /* held while its row is written outside the lock */
        snprintf(b.name, sizeof b.name, "%s", e->name);
        b.ds = e->ds;
        b.dlg = e->dlg;
        b.recipe = e->recipe;
        snprintf(b.sha, sizeof b.sha, "%s", e->sha256);
    }
    pthread_mutex_unlock(&h->mu);
    if (!e)
        return rlab_errf(err, RLAB_ENOTFOUND, "dataset '%s' not found", name ? name : "");
    int rc = record_built(db, &b, err); /* b borrows e's data */
    give_back(h, e->ds ? (void *)e->ds : (void *)e->dlg);
    return rc;
}

/* ---- reopening -------------------------------------------------------------------------- */

/* A recipe for a row written before recipes existed: a file path with its format (and the
 * single file's sha256 when the row has one), or the demo; NULL when none can be derived. */
static char *derived_recipe(const char *name, const char *source, const char *format,
                            const char *sha, const char *kind)
{
    if (!source || !*source)
        return NULL;
    if (strncmp(source, "builtin:demo", 12) == 0)
        return rlab_strdup("{\"load\":\"demo\"}");
    if (strncmp(source, "builtin:", 8) == 0 || strncmp(source, "split:", 6) == 0)
        return NULL;
    char first[PATH_MAX];
    const char *semi = strstr(source, "; ");
    snprintf(first, sizeof first, "%.*s", semi ? (int)(semi - source) : (int)strlen(source),
             source);
    src_file f;
    memset(&f, 0, sizeof f);
    snprintf(f.path, sizeof f.path, "%s", first);
    snprintf(f.sha, sizeof f.sha, "%s", sha && !semi ? sha : "");
    f.bytes = -1;
    char *r = file_recipe(first, format, name, kind && *kind ? kind : "interactions", &f,
                          f.sha[0] ? 1 : 0);
    return r;
}

int rlab__datasets_from_store(rlab_host *h, rlab_db *db, rlab_err *err)
{
    /* what an earlier store said is gone with it */
    pthread_mutex_lock(&h->mu);
    rlab_ds_rec *old = h->recorded;
    h->recorded = NULL;
    pthread_mutex_unlock(&h->mu);
    for (rlab_ds_rec *r = old, *next; r; r = next) {
        next = r->next;
        rec_free(r);
    }
    if (!db)
        return RLAB_OK;
    rlab_db_stmt *s = rlab_db_prepare(db,
                                      "SELECT name, kind, format, source, sha256, n_users,"
                                      " n_items, n_inter, recipe FROM datasets ORDER BY name",
                                      err);
    if (!s)
        return err ? err->code : RLAB_EDB;
    int rc;
    rlab_ds_rec *list = NULL;
    while ((rc = rlab_db_step(s, err)) == RLAB_DB_ROW) {
        const char *name = rlab_db_column_text(s, 0);
        if (!name || rlab_name_check("dataset", name, NULL))
            continue;
        rlab_ds_rec *r = rlab_calloc(1, sizeof *r);
        if (!r) {
            rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
            break;
        }
        const char *kind = rlab_db_column_text(s, 1), *fmt = rlab_db_column_text(s, 2);
        const char *src = rlab_db_column_text(s, 3), *sha = rlab_db_column_text(s, 4);
        const char *recipe = rlab_db_column_text(s, 8);
        snprintf(r->name, sizeof r->name, "%s", name);
        snprintf(r->kind, sizeof r->kind, "%s", kind ? kind : "interactions");
        snprintf(r->format, sizeof r->format, "%s", fmt ? fmt : "");
        snprintf(r->source, sizeof r->source, "%s", src ? src : "");
        snprintf(r->sha256, sizeof r->sha256, "%s", sha ? sha : "");
        r->n_users = rlab_db_column_int(s, 5);
        r->n_items = rlab_db_column_int(s, 6);
        r->n_inter = rlab_db_column_int(s, 7);
        r->recipe = recipe ? rlab_strdup(recipe) : derived_recipe(name, src, fmt, sha, kind);
        if (!r->recipe)
            snprintf(r->problem, sizeof r->problem,
                     "dataset '%.63s' (%.100s): the store does not record how to rebuild it "
                     "(written by an older reclab): load or generate it again",
                     name, r->source[0] ? r->source : "no source");
        r->next = list;
        list = r;
    }
    rlab_db_finalize(s);
    if (rc != RLAB_OK) {
        for (rlab_ds_rec *r = list, *next; r; r = next) {
            next = r->next;
            rec_free(r);
        }
        return rc;
    }
    /* cheap checks now (present, same size), so a moved file is reported at once */
    for (rlab_ds_rec *r = list; r; r = r->next) {
        json_object *o = r->recipe ? json_tokener_parse(r->recipe) : NULL;
        const char *load = jstr(o, "load");
        rlab_err e = {0};
        if (load && strcmp(load, "file") == 0 && check_files(r->name, o, 0, &e))
            snprintf(r->problem, sizeof r->problem, "%s", e.msg);
        json_object_put(o);
    }
    pthread_mutex_lock(&h->mu);
    while (list) {
        rlab_ds_rec *r = list;
        list = r->next;
        if (find_entry(h, r->name)) { /* loaded already: the session's copy stands */
            rec_free(r);
            continue;
        }
        r->next = h->recorded;
        h->recorded = r;
    }
    pthread_mutex_unlock(&h->mu);
    return RLAB_OK;
}

/* Rebuild name from its recipe and register it (not re-recorded: the store has it). */
static int rebuild(rlab_host *h, const char *name, const char *recipe, rlab_err *err)
{
    json_object *o = json_tokener_parse(recipe);
    const char *load = jstr(o, "load");
    int rc = RLAB_OK;
    built b;
    memset(&b, 0, sizeof b);
    if (!load) {
        rc = rlab_errf(err, RLAB_EFORMAT, "dataset '%s': its recorded recipe is unreadable", name);
    } else if (strcmp(load, "file") == 0) {
        const char *path = jstr(o, "path"), *fmt = jstr(o, "format");
        const char *kind = jstr(o, "kind");
        rc = check_files(name, o, 1, err);
        /* the recorded format: a guess would be redone on changed content, never trusted */
        if (rc == RLAB_OK) {
            rlab_err le = {0};
            rc = build_file(path, fmt && *fmt ? fmt : NULL, name, &b, &le);
            if (rc)
                rlab_errf(err, rc, "dataset '%s' (%s) not reloaded: %s", name,
                          kind ? kind : "interactions", le.msg);
        }
        if (rc == RLAB_OK) { /* keep the recorded recipe: same files, same hashes */
            rlab_free(b.recipe);
            b.recipe = rlab_strdup(recipe);
            rc = b.recipe ? commit_built(h, NULL, &b, err)
                          : rlab_errf(err, RLAB_ENOMEM, "out of memory");
        }
    } else if (strcmp(load, "demo") == 0 || strcmp(load, "world") == 0) {
        int demo = strcmp(load, "demo") == 0;
        rlab_world_config cfg;
        rlab_world_config_default(&cfg);
        json_object *c, *d;
        if (!demo) {
            char *cj = json_object_object_get_ex(o, "config", &c)
                           ? rlab_strdup(json_object_to_json_string_ext(c, JSON_C_TO_STRING_PLAIN))
                           : NULL;
            rlab_err ce = {0};
            rc = cj ? rlab_config_from_json(world_fields, &cfg, cj, 1, &ce)
                    : rlab_errf(&ce, RLAB_EFORMAT, "no generator config");
            rlab_free(cj);
            size_t nd = json_object_object_get_ex(o, "drift_ts", &d) &&
                                json_object_is_type(d, json_type_array)
                            ? json_object_array_length(d)
                            : 0;
            for (size_t i = 0; i < nd && i < RLAB_WORLD_MAX_DRIFT; i++)
                cfg.drift_ts[i] = json_object_get_int64(json_object_array_get_idx(d, i));
            if (rc)
                rlab_errf(err, rc, "dataset '%s': its recorded world config is unreadable (%s)",
                          name, ce.msg);
        }
        if (rc == RLAB_OK)
            rc = build_world(demo ? NULL : &cfg, name, &b, NULL, err);
        const char *want = jstr(o, "checksum");
        if (rc == RLAB_OK && want && !strstr(b.ds->source, want))
            rc = rlab_errf(err, RLAB_ESTATE,
                           "dataset '%s': the regenerated %s differs from the recorded one "
                           "(checksum %s, now %s): this reclab generates worlds differently; "
                           "not loaded",
                           name, demo ? "demo world" : "world", want,
                           strrchr(b.ds->source, ':') + 1);
        if (rc == RLAB_OK)
            rc = commit_built(h, NULL, &b, err);
    } else if (strcmp(load, "split") == 0) {
        const char *parent = jstr(o, "parent");
        rlab_split_opts so;
        rlab_split_opts_default(&so);
        so.method = jstr(o, "method");
        so.into = jstr(o, "into");
        jnum(o, "test_frac", &so.test_frac);
        jnum(o, "valid_frac", &so.valid_frac);
        jnum(o, "train", &so.train);
        jnum(o, "valid", &so.valid);
        json_object *js;
        if (json_object_object_get_ex(o, "seed", &js))
            so.seed = (uint64_t)json_object_get_int64(js);
        rlab_err pe = {0};
        rlab_dataset *ds = parent ? rlab__dataset_get_err(h, parent, &pe) : NULL;
        if (!ds) {
            rc = rlab_errf(err, RLAB_ESTATE, "dataset '%s': its parent is not available (%s)", name,
                           pe.msg[0] ? pe.msg : "no parent recorded");
        } else {
            built parts[3];
            rc = build_split(ds, &so, parts, err);
            rlab_host_dataset_release(h, ds);
            if (rc == RLAB_OK)
                rc = commit_parts(h, NULL, parts, err);
        }
    } else if (strcmp(load, "kcore") == 0) {
        const char *parent = jstr(o, "parent");
        double k = 0;
        jnum(o, "k", &k);
        rlab_err pe = {0};
        rlab_dataset *ds = parent ? rlab__dataset_get_err(h, parent, &pe) : NULL;
        if (!ds) {
            rc = rlab_errf(err, RLAB_ESTATE, "dataset '%s': its parent is not available (%s)", name,
                           pe.msg[0] ? pe.msg : "no parent recorded");
        } else {
            rc = build_kcore(ds, name, (int)k, &b, err);
            rlab_host_dataset_release(h, ds);
            if (rc == RLAB_OK)
                rc = commit_built(h, NULL, &b, err);
        }
    } else if (strcmp(load, "plugin") == 0) {
        rc = build_derived(h, name, o, &b, err);
        if (rc == RLAB_OK) { /* the recorded recipe stands */
            b.recipe = rlab_strdup(recipe);
            rc = b.recipe ? commit_built(h, NULL, &b, err)
                          : rlab_errf(err, RLAB_ENOMEM, "out of memory");
        }
    } else {
        rc = rlab_errf(err, RLAB_EFORMAT, "dataset '%s': unknown recipe '%s'", name, load);
    }
    built_clear(&b);
    json_object_put(o);
    return rc;
}

int rlab_host_dataset_ensure(rlab_host *h, const char *name, rlab_err *err)
{
    if (!h || !name)
        return rlab_errf(err, RLAB_EINVAL, "no dataset name");
    pthread_mutex_lock(&h->reload_mu);
    pthread_mutex_lock(&h->mu);
    int loaded = find_entry(h, name) != NULL;
    rlab_ds_rec *r = loaded ? NULL : find_rec(h, name);
    char *recipe = r && r->recipe ? rlab_strdup(r->recipe) : NULL;
    char problem[320] = "";
    if (r && !r->recipe)
        snprintf(problem, sizeof problem, "%s", r->problem);
    pthread_mutex_unlock(&h->mu);
    int rc = RLAB_OK;
    if (loaded) {
        rc = RLAB_OK;
    } else if (!r) {
        rc = rlab_errf(err, RLAB_ENOTFOUND, "dataset '%s' not found", name);
    } else if (!recipe) {
        rc = problem[0] ? rlab_errf(err, RLAB_ESTATE, "%s", problem)
                        : rlab_errf(err, RLAB_ENOMEM, "out of memory");
    } else {
        rlab_err e = {0};
        rc = rebuild(h, name, recipe, &e);
        if (rc) {
            if (err)
                *err = e;
            /* keep the reason for the listings (the record stays: the file may come back) */
            pthread_mutex_lock(&h->mu);
            rlab_ds_rec *again = find_rec(h, name);
            if (again)
                snprintf(again->problem, sizeof again->problem, "%s", e.msg);
            pthread_mutex_unlock(&h->mu);
        }
    }
    rlab_free(recipe);
    pthread_mutex_unlock(&h->reload_mu);
    return rc;
}
