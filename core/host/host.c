/*
 * core/host/host.c: the host object, the plugin loader (search path, the ordered checks of
 * plugin.h, refusals), the command table, and model persistence. The dataset registry is in
 * datasets.c.
 */
#define _GNU_SOURCE /* dladdr */
#include "host/host_internal.h"
#include "data/view.h"
#include "tensor/checkpoint.h"

#include <ctype.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

/* ---- small helpers -------------------------------------------------------------------- */

static int push_ptr(void ***v, int *n, int *cap, void *p)
{
    if (*n == *cap) {
        int nc = *cap ? 2 * *cap : 8;
        void **nv = rlab_realloc(*v, (size_t)nc * sizeof *nv);
        if (!nv)
            return RLAB_ENOMEM;
        *v = nv;
        *cap = nc;
    }
    (*v)[(*n)++] = p;
    return RLAB_OK;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static int valid_name(const char *s)
{
    if (!s || !islower((unsigned char)s[0]))
        return 0;
    for (const char *p = s; *p; p++)
        if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p) && *p != '_')
            return 0;
    return strlen(s) < 48;
}

static int valid_cmd_name(const char *s)
{
    if (!s || !*s)
        return 0;
    for (const char *p = s; *p; p++)
        if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p) && *p != '_' && *p != '-')
            return 0;
    return strlen(s) < 64;
}

static int valid_arg_name(const char *s)
{
    if (!s || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
        return 0;
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_')
            return 0;
    return strlen(s) < 48;
}

int rlab__add_refusal(rlab_host *h, const char *line)
{
    char *s = rlab_strdup(line);
    if (!s)
        return RLAB_ENOMEM;
    if (push_ptr((void ***)&h->refusals, &h->nrefusals, &h->cap_refusals, s)) {
        rlab_free(s);
        return RLAB_ENOMEM;
    }
    rlab_log(RLAB_LOG_INFO, "%s", line);
    return RLAB_OK;
}

/* Fill err, record the refusal, return code. */
static int refuse(rlab_host *h, rlab_err *err, int code, const char *fmt, ...) RLAB_PRINTF(4, 5);
static int refuse(rlab_host *h, rlab_err *err, int code, const char *fmt, ...)
{
    rlab_err tmp = {0};
    va_list ap;
    va_start(ap, fmt);
    rlab_verrf(&tmp, code, fmt, ap);
    va_end(ap);
    for (char *c = tmp.msg; *c; c++) /* one line, whatever dlerror or a plugin said */
        if (*c == '\n' || *c == '\r')
            *c = ' ';
    rlab__add_refusal(h, tmp.msg);
    if (err)
        *err = tmp;
    return code;
}

/* The folder holding libreclab_core.so, found through one of its own symbols. */
static int core_lib_dir(char *buf, size_t size)
{
    Dl_info info;
    union {
        rlab_host *(*f)(const rlab_host_opts *, rlab_err *);
        void *p;
    } u = {.f = rlab_host_new};
    if (!dladdr(u.p, &info) || !info.dli_fname)
        return 0;
    const char *slash = strrchr(info.dli_fname, '/');
    if (!slash)
        return 0;
    snprintf(buf, size, "%.*s", (int)(slash - info.dli_fname), info.dli_fname);
    return 1;
}

static int add_dir(rlab_host *h, const char *d)
{
    if (!d || !*d)
        return RLAB_OK;
    for (int i = 0; i < h->ndirs; i++)
        if (strcmp(h->dirs[i], d) == 0)
            return RLAB_OK;
    char *s = rlab_strdup(d);
    if (!s)
        return RLAB_ENOMEM;
    char **nv = rlab_realloc(h->dirs, (size_t)(h->ndirs + 2) * sizeof *nv);
    if (!nv) {
        rlab_free(s);
        return RLAB_ENOMEM;
    }
    h->dirs = nv;
    h->dirs[h->ndirs++] = s;
    h->dirs[h->ndirs] = NULL;
    return RLAB_OK;
}

static int init_dirs(rlab_host *h, const rlab_host_opts *opts)
{
    int rc = RLAB_OK;
    if (opts && opts->plugin_dirs) {
        for (int i = 0; opts->plugin_dirs[i] && !rc; i++)
            rc = add_dir(h, opts->plugin_dirs[i]);
        return rc;
    }
    char lib[480], d[512];
    int have_lib = core_lib_dir(lib, sizeof lib);
#ifdef RLAB_BUILD_PLUGIN_DIR
    rc = add_dir(h, RLAB_BUILD_PLUGIN_DIR);
#else
    if (have_lib) {
        snprintf(d, sizeof d, "%s/plugins", lib);
        rc = add_dir(h, d);
    }
#endif
#ifdef RLAB_INSTALL_PLUGIN_DIR
    if (!rc)
        rc = add_dir(h, RLAB_INSTALL_PLUGIN_DIR);
#else
    if (!rc && have_lib) {
        snprintf(d, sizeof d, "%s/reclab/plugins", lib);
        rc = add_dir(h, d);
    }
#endif
    (void)d;
    (void)have_lib;
    const char *env = (opts && opts->no_env) ? NULL : getenv("RECLAB_PLUGIN_PATH");
    while (env && *env && !rc) {
        const char *colon = strchr(env, ':');
        size_t n = colon ? (size_t)(colon - env) : strlen(env);
        if (n > 0 && n < sizeof d) {
            memcpy(d, env, n);
            d[n] = '\0';
            rc = add_dir(h, d);
        }
        env = colon ? colon + 1 : NULL;
    }
    return rc;
}

/* ---- host lifetime --------------------------------------------------------------------- */

rlab_host *rlab_host_new(const rlab_host_opts *opts, rlab_err *err)
{
    rlab_host *h = rlab_calloc(1, sizeof *h);
    if (!h) {
        rlab_errf(err, RLAB_ENOMEM, "out of memory creating the host");
        return NULL;
    }
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    /* recursive: reloading a split reloads its parent first (datasets.c) */
    pthread_mutexattr_t ra;
    pthread_mutexattr_init(&ra);
    pthread_mutexattr_settype(&ra, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&h->reload_mu, &ra);
    pthread_mutexattr_destroy(&ra);
    h->next_job_id = 1;
    const char *keep = getenv("RECLAB_KEEP_MODELS");
    h->keep_models = !(opts && opts->no_keep_models) && !(keep && !strcmp(keep, "0"));
    h->models = rlab_models_new(err);
    if (!h->models || init_dirs(h, opts)) {
        if (h->models)
            rlab_errf(err, RLAB_ENOMEM, "out of memory creating the host");
        rlab_host_free(h);
        return NULL;
    }
    if (!(opts && opts->no_builtins) && rlab__register_builtin(h, rlab__builtin_plugin(), err)) {
        rlab_host_free(h);
        return NULL;
    }
    return h;
}

static void drop_plugin(rlab_host *h, int at);

void rlab_host_free(rlab_host *h)
{
    if (!h)
        return;
    rlab__jobs_shutdown(h);
    /* Models first: their free functions live in the plugins' code. */
    rlab_models_free(h->models);
    h->models = NULL;
    /* Then the plugins: their close() may still release datasets they hold, so the dataset
     * list and the store outlive them. */
    while (h->nplugins > 0)
        drop_plugin(h, h->nplugins - 1);
    rlab__datasets_free(h);
    rlab__store_close(h);
    rlab_free(h->plugins);
    rlab_free(h->cmds);
    for (int i = 0; i < h->nrefusals; i++)
        rlab_free(h->refusals[i]);
    rlab_free(h->refusals);
    for (int i = 0; i < h->ndirs; i++)
        rlab_free(h->dirs[i]);
    rlab_free(h->dirs);
    rlab_free(h->sandbox);
    pthread_cond_destroy(&h->cv);
    pthread_mutex_destroy(&h->mu);
    pthread_mutex_destroy(&h->reload_mu);
    rlab_free(h);
}

const char *rlab_host_plugin_dir(const rlab_host *h, int i)
{
    return (h && i >= 0 && i < h->ndirs) ? h->dirs[i] : NULL;
}

/* ---- refusals, plugin and command tables ----------------------------------------------- */

int rlab_host_refusal_count(const rlab_host *h) { return h ? h->nrefusals : 0; }

const char *rlab_host_refusal(const rlab_host *h, int i)
{
    return (h && i >= 0 && i < h->nrefusals) ? h->refusals[i] : NULL;
}

void rlab_host_clear_refusals(rlab_host *h)
{
    for (int i = 0; h && i < h->nrefusals; i++)
        rlab_free(h->refusals[i]);
    if (h)
        h->nrefusals = 0;
}

int rlab_host_plugin_count(const rlab_host *h) { return h ? h->nplugins : 0; }

const rlab_plugin *rlab_host_plugin_at(const rlab_host *h, int i)
{
    return (h && i >= 0 && i < h->nplugins) ? &h->plugins[i]->desc : NULL;
}

const char *rlab_host_plugin_file(const rlab_host *h, int i)
{
    return (h && i >= 0 && i < h->nplugins) ? h->plugins[i]->file : NULL;
}

static rlab_plugin_rec *find_plugin(const rlab_host *h, const char *name)
{
    for (int i = 0; h && name && i < h->nplugins; i++)
        if (strcmp(h->plugins[i]->name, name) == 0)
            return h->plugins[i];
    return NULL;
}

void *rlab_host_plugin_state(rlab_host *h, const char *plugin)
{
    rlab_plugin_rec *p = find_plugin(h, plugin);
    return p ? p->state : NULL;
}

int rlab_host_cmd_count(const rlab_host *h) { return h ? h->ncmds : 0; }

const rlab_cmd_ref *rlab_host_cmd_at(const rlab_host *h, int i)
{
    return (h && i >= 0 && i < h->ncmds) ? &h->cmds[i]->ref : NULL;
}

int rlab_host_cmd_hidden(const rlab_cmd_ref *ref)
{
    return ref ? ((const rlab_cmd_rec *)(const void *)ref)->hidden : 0; /* ref is first */
}

const rlab_cmd_rec *rlab__find_cmd_rec(const rlab_host *h, const char *full)
{
    for (int i = 0; h && full && i < h->ncmds; i++)
        if (strcmp(h->cmds[i]->full, full) == 0)
            return h->cmds[i];
    return NULL;
}

const rlab_cmd_ref *rlab_host_find_cmd(const rlab_host *h, const char *full)
{
    const rlab_cmd_rec *c = rlab__find_cmd_rec(h, full);
    return c ? &c->ref : NULL;
}

const rlab_model_kind *rlab_host_find_model_kind(rlab_host *h, const char *kind,
                                                 const char **plugin)
{
    for (int i = 0; h && kind && i < h->nplugins; i++) {
        const rlab_model_kind *k = h->plugins[i]->desc.models;
        for (; k && k->name; k++)
            if (strcmp(k->name, kind) == 0) {
                if (plugin)
                    *plugin = h->plugins[i]->name;
                return k;
            }
    }
    return NULL;
}

/* ---- validation (checks 6-8 of plugin.h) ------------------------------------------------ */

static void full_name(char *buf, size_t size, const char *plugin, const char *cmd)
{
    if (strcmp(plugin, "core") == 0)
        snprintf(buf, size, "%s", cmd);
    else
        snprintf(buf, size, "%s.%s", plugin, cmd);
}

static int validate(rlab_host *h, const char *file, const char *expect_name, const rlab_plugin *d,
                    rlab_err *err)
{
    /* 6. name */
    if (d->name && strcmp(d->name, expect_name) != 0)
        return refuse(h, err, RLAB_EINVAL, "plugin %s declares name '%s', expected '%s'", file,
                      d->name, expect_name);
    const char *pname = expect_name;
    /* 7. duplicates */
    for (const rlab_cmd *c = d->commands; c && c->name; c++) {
        char fa[144];
        full_name(fa, sizeof fa, pname, c->name);
        for (const rlab_cmd *e = d->commands; e != c; e++)
            if (strcmp(e->name, c->name) == 0)
                return refuse(h, err, RLAB_EINVAL, "plugin %s: duplicate command '%s'", file, fa);
        if (rlab__find_cmd_rec(h, fa))
            return refuse(h, err, RLAB_EINVAL, "plugin %s: duplicate command '%s'", file, fa);
        for (const rlab_arg *a = c->args; a && a->name; a++)
            for (const rlab_arg *b = c->args; b != a; b++)
                if (strcmp(a->name, b->name) == 0)
                    return refuse(h, err, RLAB_EINVAL,
                                  "plugin %s: command '%s' declares argument '%s' twice", file, fa,
                                  a->name);
    }
    for (const rlab_model_kind *k = d->models; k && k->name; k++) {
        for (const rlab_model_kind *e = d->models; e != k; e++)
            if (strcmp(e->name, k->name) == 0)
                return refuse(h, err, RLAB_EINVAL,
                              "plugin %s: duplicate model kind '%s' (declared twice)", file,
                              k->name);
        const char *owner = NULL;
        if (rlab_host_find_model_kind(h, k->name, &owner))
            return refuse(h, err, RLAB_EINVAL,
                          "plugin %s: duplicate model kind '%s' (already provided by plugin "
                          "'%s')",
                          file, k->name, owner);
    }
    for (const rlab_dataset_maker *m = d->makers; m && m->name; m++) {
        if (!m->rebuild)
            return refuse(h, err, RLAB_EINVAL,
                          "plugin %s: dataset maker '%s' lacks required field 'rebuild'", file,
                          m->name);
        for (const rlab_dataset_maker *e = d->makers; e != m; e++)
            if (strcmp(e->name, m->name) == 0)
                return refuse(h, err, RLAB_EINVAL, "plugin %s: duplicate dataset maker '%s'", file,
                              m->name);
    }
    /* 8. required fields */
    static const char *const fields[] = {"name", "version", "summary"};
    const char *const vals[] = {d->name, d->version, d->summary};
    for (int i = 0; i < 3; i++)
        if (!vals[i] || !*vals[i])
            return refuse(h, err, RLAB_EINVAL, "plugin %s: missing required field '%s'", file,
                          fields[i]);
    for (const rlab_cmd *c = d->commands; c && c->name; c++) {
        char fa[144];
        full_name(fa, sizeof fa, pname, c->name);
        if (!valid_cmd_name(c->name))
            return refuse(h, err, RLAB_EINVAL, "plugin %s: invalid command name '%s'", file,
                          c->name);
        if (!c->run)
            return refuse(h, err, RLAB_EINVAL, "plugin %s: command '%s' lacks required field 'run'",
                          file, fa);
        if (!c->help || !*c->help)
            return refuse(h, err, RLAB_EINVAL,
                          "plugin %s: command '%s' lacks required field 'help'", file, fa);
        for (const rlab_arg *a = c->args; a && a->name; a++) {
            char why[256];
            if (!valid_arg_name(a->name))
                return refuse(h, err, RLAB_EINVAL,
                              "plugin %s: command '%s' has an invalid argument name '%s'", file, fa,
                              a->name);
            if (a->type < RLAB_ARG_INT || a->type > RLAB_ARG_PATH)
                return refuse(h, err, RLAB_EINVAL,
                              "plugin %s: command '%s' argument '%s' lacks required field "
                              "'type'",
                              file, fa, a->name);
            if (a->type == RLAB_ARG_CHOICE && (!a->choices || !a->choices[0]))
                return refuse(h, err, RLAB_EINVAL,
                              "plugin %s: command '%s' argument '%s' lacks required field "
                              "'choices'",
                              file, fa, a->name);
            if ((a->flags & RLAB_ARGF_REST) && a->type != RLAB_ARG_STRING)
                return refuse(h, err, RLAB_EINVAL,
                              "plugin %s: command '%s' argument '%s': RLAB_ARGF_REST needs a "
                              "string argument",
                              file, fa, a->name);
            if (rlab__check_default(a, why, sizeof why))
                return refuse(h, err, RLAB_EINVAL, "plugin %s: command '%s' argument '%s': %s",
                              file, fa, a->name, why);
        }
    }
    for (const rlab_model_kind *k = d->models; k && k->name; k++) {
        char why[200];
        if (rlab__kind_check(k, why, sizeof why))
            return refuse(h, err, RLAB_EINVAL, "plugin %s: model kind '%s' %s", file, k->name, why);
    }
    return RLAB_OK;
}

/* Add a validated plugin: open it, then its commands. Takes ownership of rec (freed, with
 * its dl handle closed by the caller, on failure). */
static int install(rlab_host *h, rlab_plugin_rec *rec, rlab_err *err)
{
    if (rec->desc.open) {
        rlab_err oe = {0};
        if (rec->desc.open(h, &rec->state, &oe))
            return refuse(h, err, oe.code ? oe.code : RLAB_EINVAL, "plugin %s: open failed: %s",
                          rec->file, oe.msg[0] ? oe.msg : rlab_status_name(oe.code));
        rec->opened = 1;
    }
    int mrc = rlab__store_migrate(h, rec, err);
    if (mrc) {
        char why[sizeof err->msg];
        snprintf(why, sizeof why, "%s", err ? err->msg : rlab_status_name(mrc));
        if (rec->opened && rec->desc.close)
            rec->desc.close(rec->state);
        rec->opened = 0;
        return refuse(h, err, mrc, "plugin %s: %s", rec->file, why);
    }
    int first_cmd = h->ncmds;
    int rc = push_ptr((void ***)&h->plugins, &h->nplugins, &h->cap_plugins, rec);
    for (const rlab_cmd *c = rec->desc.commands; !rc && c && c->name; c++) {
        rlab_cmd_rec *cr = rlab_calloc(1, sizeof *cr);
        if (!cr) {
            rc = RLAB_ENOMEM;
            break;
        }
        full_name(cr->full, sizeof cr->full, rec->name, c->name);
        cr->ref.full = cr->full;
        cr->ref.plugin = rec->name;
        cr->ref.cmd = c;
        cr->plugin = rec;
        for (const rlab_arg *a = c->args; a && a->name; a++)
            cr->nargs++;
        rc = push_ptr((void ***)&h->cmds, &h->ncmds, &h->cap_cmds, cr);
        if (rc)
            rlab_free(cr);
    }
    /* the generated `train KIND` command of each model kind */
    for (const rlab_model_kind *k = rec->desc.models; !rc && k && k->name; k++) {
        rlab_cmd_rec *cr = rlab__kind_cmd_new(rec, k);
        rc = cr ? push_ptr((void ***)&h->cmds, &h->ncmds, &h->cap_cmds, cr) : RLAB_ENOMEM;
        if (rc)
            rlab__cmd_rec_free(cr);
    }
    if (rc) { /* roll back */
        while (h->ncmds > first_cmd)
            rlab__cmd_rec_free(h->cmds[--h->ncmds]);
        if (h->nplugins && h->plugins[h->nplugins - 1] == rec)
            h->nplugins--;
        if (rec->opened && rec->desc.close)
            rec->desc.close(rec->state);
        rec->opened = 0;
        return rlab_errf(err, RLAB_ENOMEM, "out of memory loading plugin %s", rec->file);
    }
    return RLAB_OK;
}

/* Call the entry point, then checks 3-8, then install. rec->dl is closed by the caller on
 * failure. */
static int load_entry(rlab_host *h, rlab_plugin_rec *rec, rlab_plugin_entry entry, rlab_err *err)
{
    /* The plugin writes into a zeroed block larger than our descriptor, so a newer plugin
     * (bigger struct) cannot overflow it before check 5 refuses it. */
    union {
        rlab_plugin p;
        unsigned char raw[4096];
    } *buf = rlab_calloc(1, sizeof *buf);
    if (!buf)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory loading plugin %s", rec->file);
    rlab_err pe = {0};
    int rc = entry(h, &buf->p, &pe);
    const rlab_plugin *d = &buf->p;
    if (rc) {
        rc = refuse(h, err, rc, "plugin %s failed to initialise: %s", rec->file,
                    pe.msg[0] ? pe.msg : rlab_status_name(rc));
    } else if (d->abi_version != RLAB_ABI_VERSION) { /* 3 */
        rc = refuse(h, err, RLAB_EVERSION,
                    "plugin %s built for reclab ABI %u, this reclab provides ABI %u: rebuild "
                    "the plugin",
                    rec->file, (unsigned)d->abi_version, (unsigned)RLAB_ABI_VERSION);
    } else if (d->abi_sizes != RLAB_ABI_SIZES) { /* 4 */
        rc = refuse(h, err, RLAB_EVERSION,
                    "plugin %s uses incompatible numeric types (sizes 0x%08x, this reclab "
                    "0x%08x): rebuild the plugin",
                    rec->file, (unsigned)d->abi_sizes, (unsigned)RLAB_ABI_SIZES);
    } else if (d->struct_size > sizeof(rlab_plugin)) { /* 5 */
        rc = refuse(h, err, RLAB_EVERSION,
                    "plugin %s is newer than this reclab (descriptor of %u bytes, this reclab "
                    "knows %u): upgrade reclab",
                    rec->file, (unsigned)d->struct_size, (unsigned)sizeof(rlab_plugin));
    } else if (d->struct_size < 3 * sizeof(uint32_t) + 3 * sizeof(void *)) {
        rc = refuse(h, err, RLAB_EVERSION, "plugin %s has a truncated descriptor (%u bytes)",
                    rec->file, (unsigned)d->struct_size);
    } else {
        /* zero-fill what an older plugin does not know, then validate the host copy */
        memcpy(&rec->desc, d, d->struct_size);
        rc = validate(h, rec->file, rec->name, &rec->desc, err);
        if (!rc)
            rc = install(h, rec, err);
    }
    rlab_free(buf);
    return rc;
}

static rlab_plugin_rec *new_rec(const char *name, const char *file)
{
    rlab_plugin_rec *rec = rlab_calloc(1, sizeof *rec);
    if (rec) {
        snprintf(rec->name, sizeof rec->name, "%s", name);
        snprintf(rec->file, sizeof rec->file, "%s", file);
    }
    return rec;
}

int rlab__register_builtin(rlab_host *h, const rlab_plugin *desc, rlab_err *err)
{
    rlab_plugin_rec *rec = new_rec(desc->name, "<builtin>");
    if (!rec)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    rec->desc = *desc;
    int rc = validate(h, rec->file, rec->name, &rec->desc, err);
    if (!rc)
        rc = install(h, rec, err);
    if (rc)
        rlab_free(rec);
    return rc;
}

int rlab_host_load_static(rlab_host *h, const char *name, rlab_plugin_entry entry, rlab_err *err)
{
    char file[96];
    snprintf(file, sizeof file, "<static:%s>", name ? name : "");
    if (!valid_name(name) || !entry)
        return refuse(h, err, RLAB_EINVAL, "plugin %s: invalid plugin name", file);
    rlab_plugin_rec *other = find_plugin(h, name);
    if (other)
        return refuse(h, err, RLAB_EINVAL,
                      "plugin %s: a plugin named '%s' is already loaded "
                      "from %s",
                      file, name, other->file);
    rlab_plugin_rec *rec = new_rec(name, file);
    if (!rec)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    int rc = load_entry(h, rec, entry, err);
    if (rc)
        rlab_free(rec);
    return rc;
}

int rlab_host_load_file(rlab_host *h, const char *path, rlab_err *err)
{
    if (!h || !path)
        return rlab_errf(err, RLAB_EINVAL, "rlab_host_load_file: no host or path");
    /* The name comes from the file: reclab_<name>.so */
    const char *b = base_name(path);
    size_t bl = strlen(b);
    char name[64];
    if (bl <= 10 || strncmp(b, "reclab_", 7) != 0 || strcmp(b + bl - 3, ".so") != 0 ||
        bl - 10 >= sizeof name)
        return refuse(h, err, RLAB_EINVAL, "plugin %s is not named reclab_<name>.so", path);
    memcpy(name, b + 7, bl - 10);
    name[bl - 10] = '\0';
    if (!valid_name(name))
        return refuse(h, err, RLAB_EINVAL,
                      "plugin %s: invalid plugin name '%s' (lowercase letters, digits, _)", path,
                      name);
    rlab_plugin_rec *other = find_plugin(h, name);
    if (other)
        return refuse(h, err, RLAB_EINVAL,
                      "plugin %s: a plugin named '%s' is already loaded from %s", path, name,
                      other->file);
    /* 1. must be a loadable shared object. Check the ELF magic first for a clear message. */
    FILE *f = fopen(path, "rb");
    if (!f)
        return refuse(h, err, RLAB_EIO, "cannot open plugin %s: %s", path, strerror(errno));
    unsigned char magic[4] = {0};
    size_t got = fread(magic, 1, 4, f);
    fclose(f);
    if (got != 4 || memcmp(magic, "\177ELF", 4) != 0)
        return refuse(h, err, RLAB_EFORMAT, "plugin %s is not a shared object", path);
    void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        const char *e = dlerror();
        return refuse(h, err, RLAB_EFORMAT, "cannot load plugin %s: %s", path,
                      e ? e : "dlopen failed");
    }
    /* 2. the entry point named after the file */
    char sym[96];
    snprintf(sym, sizeof sym, "rlab_plugin_%s", name);
    union {
        void *p;
        rlab_plugin_entry f;
    } u;
    dlerror();
    u.p = dlsym(dl, sym);
    if (!u.p) {
        dlclose(dl);
        return refuse(h, err, RLAB_ENOTFOUND, "no entry point %s in %s", sym, path);
    }
    rlab_plugin_rec *rec = new_rec(name, path);
    if (!rec) {
        dlclose(dl);
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    }
    rec->dl = dl;
    int rc = load_entry(h, rec, u.f, err);
    if (rc) {
        dlclose(dl);
        rlab_free(rec);
    }
    return rc;
}

static int cmp_cstr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int rlab_host_load_all(rlab_host *h, int *loaded, rlab_err *err)
{
    int n = 0;
    if (loaded)
        *loaded = 0;
    for (int di = 0; h && di < h->ndirs; di++) {
        DIR *dir = opendir(h->dirs[di]);
        if (!dir)
            continue; /* a missing folder is normal (no install, no build tree) */
        char **names = NULL;
        int nn = 0, cap = 0, oom = 0;
        struct dirent *de;
        while ((de = readdir(dir)) != NULL) {
            size_t l = strlen(de->d_name);
            if (l <= 10 || strncmp(de->d_name, "reclab_", 7) != 0 ||
                strcmp(de->d_name + l - 3, ".so") != 0)
                continue;
            char *s = rlab_strdup(de->d_name);
            if (!s || push_ptr((void ***)&names, &nn, &cap, s)) {
                rlab_free(s);
                oom = 1;
                break;
            }
        }
        closedir(dir);
        if (nn)
            qsort(names, (size_t)nn, sizeof *names, cmp_cstr);
        for (int i = 0; i < nn; i++) {
            char path[1024];
            snprintf(path, sizeof path, "%s/%s", h->dirs[di], names[i]);
            rlab_err e = {0};
            int rc = rlab_host_load_file(h, path, &e);
            if (rc == RLAB_OK)
                n++;
            else if (rc == RLAB_ENOMEM && strstr(e.msg, "out of memory"))
                oom = 1;
            rlab_free(names[i]);
        }
        rlab_free(names);
        if (oom)
            return rlab_errf(err, RLAB_ENOMEM, "out of memory loading plugins");
    }
    if (loaded)
        *loaded = n;
    return RLAB_OK;
}

/* Remove plugin at index: its commands, close, dlclose. Models must be gone already. */
static void drop_plugin(rlab_host *h, int at)
{
    rlab_plugin_rec *p = h->plugins[at];
    int j = 0;
    for (int i = 0; i < h->ncmds; i++) {
        if (h->cmds[i]->plugin == p)
            rlab__cmd_rec_free(h->cmds[i]);
        else
            h->cmds[j++] = h->cmds[i];
    }
    h->ncmds = j;
    if (p->opened && p->desc.close)
        p->desc.close(p->state);
    if (p->dl)
        dlclose(p->dl);
    memmove(h->plugins + at, h->plugins + at + 1,
            (size_t)(h->nplugins - at - 1) * sizeof *h->plugins);
    h->nplugins--;
    rlab_free(p);
}

int rlab_host_unload(rlab_host *h, const char *name, rlab_err *err)
{
    int at = -1;
    for (int i = 0; h && name && i < h->nplugins; i++)
        if (strcmp(h->plugins[i]->name, name) == 0)
            at = i;
    if (at < 0)
        return rlab_errf(err, RLAB_ENOTFOUND, "plugin '%s' is not loaded", name ? name : "");
    if (strcmp(name, "core") == 0)
        return rlab_errf(err, RLAB_ESTATE, "plugin 'core' cannot be unloaded");
    rlab_plugin_rec *p = h->plugins[at];
    if (rlab__plugin_busy(h, p))
        return rlab_errf(err, RLAB_ESTATE, "plugin '%s' has queued or running commands", name);
    if (rlab_models_busy(h->models, name))
        return rlab_errf(err, RLAB_ESTATE, "plugin '%s' has models in use", name);
    rlab_models_remove_plugin(h->models, name);
    drop_plugin(h, at);
    return RLAB_OK;
}

/* ---- events -------------------------------------------------------------------------- */

void rlab__emit(rlab_host *h, const rlab_event *ev)
{
    pthread_mutex_lock(&h->mu);
    rlab_event_fn fn = h->ev_fn;
    void *ud = h->ev_ud;
    pthread_mutex_unlock(&h->mu);
    if (fn)
        fn(ev, ud);
}

void rlab_host_set_event_fn(rlab_host *h, rlab_event_fn fn, void *ud)
{
    pthread_mutex_lock(&h->mu);
    h->ev_fn = fn;
    h->ev_ud = ud;
    pthread_mutex_unlock(&h->mu);
}

void rlab_host_set_progress_interval(rlab_host *h, double seconds)
{
    pthread_mutex_lock(&h->mu);
    h->progress_interval = seconds > 0 ? seconds : 0;
    pthread_mutex_unlock(&h->mu);
}

/* ---- models ---------------------------------------------------------------------------- */

rlab_models *rlab_host_models(rlab_host *h) { return h ? h->models : NULL; }

int rlab_host_register_model(rlab_host *h, rlab_model *m, rlab_err *err)
{
    if (!h) {
        rlab_model_release(m);
        return rlab_errf(err, RLAB_EINVAL, "no host");
    }
    return rlab_models_add(h->models, m, err);
}

/* The checkpoint of model m: its own tensors (vt->tensors), the users' histories and the
 * host's metadata. The tensors stay borrowed from m (and hist) until ck is written. */
static rlab_ckpt *model_ckpt(const rlab_model *m, rlab_err *err)
{
    rlab_ckpt *ck = rlab_model_state(m, err); /* the kind's own tensors and metadata */
    if (!ck)
        return NULL;
    int rc = RLAB_OK;
    if (m->hist.n_users > 0) {
        int64_t U = m->hist.n_users, n = m->hist.off[U];
        int64_t s1 = U + 1;
        rc = rlab_ckpt_add(ck, "reclab.hist.off", RLAB_DT_I64, 1, &s1, m->hist.off, err);
        if (rc == RLAB_OK)
            rc = rlab_ckpt_add(ck, "reclab.hist.items", RLAB_DT_I32, 1, &n, m->hist.items, err);
    }
    char desc[256], num[32];
    rlab_model_describe(m, desc, sizeof desc);
    const rlab_kv kv[] = {{"reclab.format", "reclab-model-1"},
                          {"reclab.version", RECLAB_VERSION_STRING},
                          {"reclab.name", m->name},
                          {"reclab.kind", m->kind},
                          {"reclab.plugin", m->plugin},
                          {"reclab.dataset", m->dataset},
                          {"reclab.dataset_sha256", m->dataset_sha256},
                          {"reclab.config", m->config ? m->config : "{}"},
                          {"reclab.train", m->train_opts ? m->train_opts : "{}"},
                          {"reclab.describe", desc}};
    for (size_t i = 0; rc == RLAB_OK && i < sizeof kv / sizeof kv[0]; i++)
        rc = rlab_ckpt_set_meta(ck, kv[i].key, kv[i].value, err);
    snprintf(num, sizeof num, "%d", (int)m->n_users);
    if (rc == RLAB_OK)
        rc = rlab_ckpt_set_meta(ck, "reclab.n_users", num, err);
    snprintf(num, sizeof num, "%d", (int)m->n_items);
    if (rc == RLAB_OK)
        rc = rlab_ckpt_set_meta(ck, "reclab.n_items", num, err);
    snprintf(num, sizeof num, "%d", m->repr_dim);
    if (rc == RLAB_OK)
        rc = rlab_ckpt_set_meta(ck, "reclab.repr_dim", num, err);
    if (rc != RLAB_OK) {
        rlab_ckpt_free(ck);
        return NULL;
    }
    return ck;
}

/* Write m's checkpoint to file and/or the store db (bytes as a blob artifact + a models row).
 */
static int save_to(rlab_host *h, rlab_db *db, const rlab_model *m, const char *file, int64_t run_id,
                   rlab_err *err)
{
    rlab_ckpt *ck = model_ckpt(m, err);
    if (!ck)
        return err && err->code ? err->code : RLAB_ENOMEM;
    int rc = RLAB_OK;
    char tmpdir[512] = "", tmp[700] = "";
    if (file)
        rc = rlab_ckpt_write(ck, file, err);
    if (rc == RLAB_OK && db) {
        const char *path = file;
        if (!path) {
            const char *t = getenv("TMPDIR");
            snprintf(tmpdir, sizeof tmpdir, "%s/reclab-save-XXXXXX", t && *t ? t : "/tmp");
            if (!mkdtemp(tmpdir)) {
                rc = rlab_errf(err, RLAB_EIO, "save model '%s': cannot make a folder in %s: %s",
                               m->name, t && *t ? t : "/tmp", strerror(errno));
                tmpdir[0] = '\0';
            } else {
                snprintf(tmp, sizeof tmp, "%s/model.safetensors", tmpdir);
                rc = rlab_ckpt_write(ck, tmp, err);
                path = tmp;
            }
        }
        /* The bytes go into the store, so the model survives the session even when the files
         * are gone: rlab_host_model_get restores it from there on demand. */
        int64_t art = 0;
        if (rc == RLAB_OK)
            rc = rlab_db_artifact_file(db, run_id, m->name, "model", path, RLAB_DB_ART_BLOB, &art,
                                       err);
        if (rc == RLAB_OK)
            rc = rlab_db_model_register(db, m->name, m->kind, m->plugin, 0, art, NULL, err);
    }
    if (tmp[0])
        unlink(tmp);
    if (tmpdir[0])
        rmdir(tmpdir);
    rlab_ckpt_free(ck);
    (void)h;
    return rc;
}

int rlab__host_save_model_ctx(rlab_host *h, rlab_ctx *ctx, const char *name, const char *file,
                              char **path_out, rlab_err *err)
{
    *path_out = NULL;
    rlab_model *m = rlab_models_get(h->models, name);
    if (!m)
        return rlab_errf(err, RLAB_ENOTFOUND, "model '%s' not found", name ? name : "");
    rlab_db *db = ctx ? rlab_ctx_db(ctx) : h->db;
    char def[600];
    if (!file && !db && !h->db) { /* nowhere else to keep it */
        snprintf(def, sizeof def, "%s.safetensors", m->name);
        file = def;
    }
    int rc = save_to(h, db ? db : h->db, m, file, ctx && db ? rlab_ctx_run_id(ctx) : 0, err);
    rlab_model_release(m);
    if (rc == RLAB_OK && file) {
        *path_out = rlab_strdup(file);
        if (!*path_out)
            rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
    }
    return rc;
}

int rlab_host_save_model(rlab_host *h, const char *name, const char *dir, char **path_out,
                         rlab_err *err)
{
    if (path_out)
        *path_out = NULL;
    if (!dir) { /* into the store only, never a file the caller did not ask for */
        if (!h->db)
            return rlab_errf(err, RLAB_ESTATE,
                             "no session store to keep model '%s' in: give a folder",
                             name ? name : "");
        char *p = NULL;
        int rc = rlab__host_save_model_ctx(h, NULL, name, NULL, &p, err);
        rlab_free(p);
        return rc;
    }
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.safetensors", dir, name ? name : "");
    rlab_err ge = {0};
    rlab_model *m = rlab_host_model_get(h, name, &ge); /* restored from the store if saved */
    if (!m)
        return rlab_errf(err, ge.code ? ge.code : RLAB_ENOTFOUND, "%s",
                         ge.msg[0] ? ge.msg : "model not found");
    int rc = save_to(h, h->db, m, path, 0, err);
    rlab_model_release(m);
    if (rc == RLAB_OK && path_out) {
        *path_out = rlab_strdup(path);
        if (!*path_out)
            rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
    }
    return rc;
}

/* Restore model `name` from the store db: its models row names the artifact, whose bytes are
 * exported to a private temporary file, loaded as a checkpoint and removed. RLAB_ENOTFOUND
 * when the store has no such model or its bytes are not in the store. */
int rlab__host_restore_model(rlab_host *h, rlab_db *db, const char *name, rlab_err *err)
{
    if (!db)
        return rlab_errf(err, RLAB_ENOTFOUND, "model '%s' not found", name);
    rlab_db_stmt *s = rlab_db_prepare(db,
                                      "SELECT m.artifact_id FROM models m JOIN artifacts b ON"
                                      " b.id = m.artifact_id WHERE m.name = :name AND b.data IS"
                                      " NOT NULL ORDER BY m.rowid DESC LIMIT 1",
                                      err);
    if (!s)
        return err ? err->code : RLAB_EDB;
    int64_t art = 0;
    int rc = rlab_db_bind_text(s, ":name", name, err);
    if (rc == RLAB_OK && (rc = rlab_db_step(s, err)) == RLAB_DB_ROW) {
        art = rlab_db_column_int(s, 0);
        rc = RLAB_OK;
    } else if (rc == RLAB_OK) {
        rc = rlab_errf(err, RLAB_ENOTFOUND,
                       "model '%s' not found (not in the session, not saved in the store)", name);
    }
    rlab_db_finalize(s);
    if (rc)
        return rc;
    const char *tmp = getenv("TMPDIR");
    char dir[512], path[700], got[64];
    snprintf(dir, sizeof dir, "%s/reclab-model-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir))
        return rlab_errf(err, RLAB_EIO, "restore model '%s': cannot make a folder in %s: %s", name,
                         tmp && *tmp ? tmp : "/tmp", strerror(errno));
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    rc = rlab_db_artifact_export(db, art, path, err);
    if (rc == RLAB_OK)
        rc = rlab__host_load_ckpt(h, name, path, NULL, got, err);
    unlink(path);
    rmdir(dir);
    return rc;
}

rlab_model *rlab_host_model_get(rlab_host *h, const char *name, rlab_err *err)
{
    if (!h || !name)
        return NULL;
    rlab_model *m = rlab_models_get(h->models, name);
    if (m)
        return m;
    /* called by a running command (a kind's fit reading another model): that command's own
     * store connection, never the ui thread's */
    rlab_ctx *c = rlab__current_ctx();
    rlab_db *db = c && c->host == h && c->db ? c->db : h->db;
    if (rlab__host_restore_model(h, db, name, err) != RLAB_OK)
        return NULL;
    m = rlab_models_get(h->models, name);
    if (!m)
        rlab_errf(err, RLAB_ENOTFOUND, "model '%s' not found", name);
    return m;
}

/* The users' histories stored in a checkpoint (none: out left empty), checked against the
 * model's item count. */
static int ckpt_hist(const rlab_ckpt *ck, const char *file, int32_t n_items, rlab_seqs *out,
                     rlab_err *err)
{
    memset(out, 0, sizeof *out);
    int nd = 0;
    int64_t sh[8];
    const int64_t *off = rlab_ckpt_tensor(ck, "reclab.hist.off", RLAB_DT_I64, &nd, sh, NULL);
    if (!off)
        return RLAB_OK;
    if (nd != 1 || sh[0] < 1 || sh[0] - 1 > INT32_MAX)
        return rlab_errf(err, RLAB_EFORMAT, "%s: tensor 'reclab.hist.off' has a bad shape", file);
    int64_t U = sh[0] - 1;
    const int32_t *items = rlab_ckpt_tensor(ck, "reclab.hist.items", RLAB_DT_I32, &nd, sh, err);
    if (!items && off[U] > 0)
        return err ? err->code : RLAB_EFORMAT;
    int64_t n = items ? sh[0] : 0;
    int ok = off[0] == 0 && off[U] == n;
    for (int64_t u = 0; ok && u < U; u++)
        ok = off[u] <= off[u + 1];
    for (int64_t k = 0; ok && k < n; k++)
        ok = items[k] >= 0 && items[k] < n_items;
    if (!ok)
        return rlab_errf(err, RLAB_EFORMAT,
                         "%s: the stored histories are inconsistent (offsets or items out of "
                         "range)",
                         file);
    rlab_seqs src = {.n_users = (int32_t)U,
                     .off = (int64_t *)(uintptr_t)off,
                     .items = (int32_t *)(uintptr_t)items,
                     .ts = NULL};
    return rlab_seqs_copy(&src, out, err);
}

int rlab__host_load_ckpt(rlab_host *h, const char *name, const char *file, const char *expect,
                         char got[64], rlab_err *err)
{
    rlab_ckpt *ck = rlab_ckpt_read(file, err);
    if (!ck)
        return err && err->code ? err->code : RLAB_EIO;
    int rc = RLAB_OK;
    void *cfg = NULL;
    rlab_model *m = NULL;
    const char *fmt = rlab_ckpt_meta_get(ck, "reclab.format");
    const char *kind = rlab_ckpt_meta_get(ck, "reclab.kind");
    const char *saved = rlab_ckpt_meta_get(ck, "reclab.name");
    if (!fmt || strcmp(fmt, "reclab-model-1") != 0 || !kind) {
        rc = rlab_errf(err, RLAB_EFORMAT,
                       "%s: not a reclab model checkpoint (no reclab.format / reclab.kind "
                       "metadata)",
                       file);
        goto done;
    }
    if (expect && strcmp(expect, kind) != 0) {
        rc = rlab_errf(err, RLAB_EFORMAT, "%s holds a '%s' model, not '%s'", file, kind, expect);
        goto done;
    }
    if (!name)
        name = saved;
    if (!name || !*name || strlen(name) > 63) {
        rc = rlab_errf(err, RLAB_EINVAL, "%s: no usable model name", file);
        goto done;
    }
    const char *plugin = NULL;
    const rlab_model_kind *k = rlab_host_find_model_kind(h, kind, &plugin);
    if (!k) {
        rc = rlab_errf(err, RLAB_ENOTFOUND, "%s: no plugin provides model kind '%s'", file, kind);
        goto done;
    }
    cfg = rlab_calloc(1, k->config_size ? k->config_size : 1);
    if (!cfg) {
        rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
        goto done;
    }
    const char *cj = rlab_ckpt_meta_get(ck, "reclab.config");
    if (k->config && (rc = rlab_config_defaults(k->config, k->defaults, cfg, err)) == RLAB_OK &&
        cj && (rc = rlab_config_from_json(k->config, cfg, cj, 0, err)) != RLAB_OK)
        rlab_errf(err, rc, "%s: %s", file, err->msg);
    if (rc)
        goto done;
    m = k->restore(h, ck, cfg, err);
    if (!m) {
        rc = err && err->code ? err->code : RLAB_EFORMAT;
        goto done;
    }
    snprintf(m->name, sizeof m->name, "%s", name);
    snprintf(m->kind, sizeof m->kind, "%s", kind);
    snprintf(m->plugin, sizeof m->plugin, "%s", plugin);
    const char *ds = rlab_ckpt_meta_get(ck, "reclab.dataset");
    const char *sha = rlab_ckpt_meta_get(ck, "reclab.dataset_sha256");
    snprintf(m->dataset, sizeof m->dataset, "%s", ds ? ds : "");
    snprintf(m->dataset_sha256, sizeof m->dataset_sha256, "%s", sha ? sha : "");
    rlab_free(m->config);
    m->config = k->config ? rlab_config_to_json(k->config, cfg) : rlab_strdup("{}");
    const char *tj = rlab_ckpt_meta_get(ck, "reclab.train");
    rlab_free(m->train_opts);
    m->train_opts = tj ? rlab_strdup(tj) : NULL;
    rlab_seqs_clear(&m->hist);
    if (!m->config || (tj && !m->train_opts))
        rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
    if (rc == RLAB_OK)
        rc = ckpt_hist(ck, file, m->n_items, &m->hist, err);
    if (rc == RLAB_OK && m->n_users == 0)
        m->n_users = m->hist.n_users;
    if (rc == RLAB_OK && got)
        snprintf(got, 64, "%s", name);
    if (rc == RLAB_OK) {
        rc = rlab_models_add(h->models, m, err); /* takes m */
        m = NULL;
    }
done:
    rlab_model_release(m);
    rlab_free(cfg);
    rlab_ckpt_free(ck);
    return rc;
}

int rlab_host_load_model(rlab_host *h, const char *name, const char *path, const char *kind,
                         rlab_err *err)
{
    if (!h || !path)
        return rlab_errf(err, RLAB_EINVAL, "load model: path required");
    if (name && *name) {
        int nrc = rlab_name_check("model", name, err);
        if (nrc)
            return nrc;
    }
    return rlab__host_load_ckpt(h, name && *name ? name : NULL, path, kind, NULL, err);
}
