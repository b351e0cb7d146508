/*
 * core/host/host.c: the host object, the plugin loader (search path, the ordered checks of
 * plugin.h, refusals), the command table, the dataset registry, and model persistence.
 */
#define _GNU_SOURCE /* dladdr */
#include "host/host_internal.h"

#include <ctype.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
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
    h->next_job_id = 1;
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
    rlab_ds_entry *ds = h->datasets;
    h->datasets = NULL;
    for (rlab_ds_entry *e = ds, *next; e; e = next) {
        next = e->next;
        rlab_dataset_free(e->ds);
        rlab_free(e);
    }
    rlab__store_close(h);
    rlab_free(h->plugins);
    rlab_free(h->cmds);
    for (int i = 0; i < h->nrefusals; i++)
        rlab_free(h->refusals[i]);
    rlab_free(h->refusals);
    for (int i = 0; i < h->ndirs; i++)
        rlab_free(h->dirs[i]);
    rlab_free(h->dirs);
    pthread_cond_destroy(&h->cv);
    pthread_mutex_destroy(&h->mu);
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
            if (rlab__check_default(a, why, sizeof why))
                return refuse(h, err, RLAB_EINVAL, "plugin %s: command '%s' argument '%s': %s",
                              file, fa, a->name, why);
        }
    }
    for (const rlab_model_kind *k = d->models; k && k->name; k++)
        if (!k->load)
            return refuse(h, err, RLAB_EINVAL,
                          "plugin %s: model kind '%s' lacks required field 'load'", file, k->name);
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
    if (rc) { /* roll back */
        while (h->ncmds > first_cmd)
            rlab_free(h->cmds[--h->ncmds]);
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
            rlab_free(h->cmds[i]);
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

/* ---- datasets ------------------------------------------------------------------------ */

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
    rlab_ds_entry *e = rlab_calloc(1, sizeof *e);
    if (!e) {
        rlab_dataset_free(ds);
        return rlab_errf(err, RLAB_ENOMEM, "out of memory adding dataset '%s'", ds->name);
    }
    e->ds = ds;
    rlab_dataset *old = NULL;
    pthread_mutex_lock(&h->mu);
    for (rlab_ds_entry **pp = &h->datasets; *pp; pp = &(*pp)->next) {
        rlab_ds_entry *o = *pp;
        if (!o->detached && strcmp(o->ds->name, ds->name) == 0) {
            o->detached = 1;
            if (o->refs == 0) {
                *pp = o->next;
                old = o->ds;
                rlab_free(o);
            }
            break;
        }
    }
    e->next = h->datasets;
    h->datasets = e;
    pthread_mutex_unlock(&h->mu);
    rlab_dataset_free(old);
    return RLAB_OK;
}

int rlab_host_remove_dataset(rlab_host *h, const char *name, rlab_err *err)
{
    rlab_dataset *old = NULL;
    int found = 0;
    pthread_mutex_lock(&h->mu);
    for (rlab_ds_entry **pp = &h->datasets; *pp; pp = &(*pp)->next) {
        rlab_ds_entry *o = *pp;
        if (!o->detached && strcmp(o->ds->name, name) == 0) {
            found = 1;
            o->detached = 1;
            if (o->refs == 0) {
                *pp = o->next;
                old = o->ds;
                rlab_free(o);
            }
            break;
        }
    }
    pthread_mutex_unlock(&h->mu);
    rlab_dataset_free(old);
    return found ? RLAB_OK : rlab_errf(err, RLAB_ENOTFOUND, "dataset '%s' not found", name);
}

rlab_dataset *rlab_host_dataset_get(rlab_host *h, const char *name)
{
    rlab_dataset *ds = NULL;
    if (!h || !name)
        return NULL;
    pthread_mutex_lock(&h->mu);
    for (rlab_ds_entry *e = h->datasets; e; e = e->next)
        if (!e->detached && strcmp(e->ds->name, name) == 0) {
            e->refs++;
            ds = e->ds;
            break;
        }
    pthread_mutex_unlock(&h->mu);
    return ds;
}

void rlab_host_dataset_release(rlab_host *h, rlab_dataset *ds)
{
    rlab_dataset *gone = NULL;
    if (!h || !ds)
        return;
    pthread_mutex_lock(&h->mu);
    for (rlab_ds_entry **pp = &h->datasets; *pp; pp = &(*pp)->next) {
        rlab_ds_entry *e = *pp;
        if (e->ds == ds && e->refs > 0) {
            if (--e->refs == 0 && e->detached) {
                *pp = e->next;
                gone = e->ds;
                rlab_free(e);
            }
            break;
        }
    }
    pthread_mutex_unlock(&h->mu);
    rlab_dataset_free(gone);
}

char **rlab_host_dataset_names(rlab_host *h)
{
    pthread_mutex_lock(&h->mu);
    int n = 0;
    for (rlab_ds_entry *e = h->datasets; e; e = e->next)
        n += !e->detached;
    char **v = rlab_calloc((size_t)n + 1, sizeof *v);
    int k = 0, oom = !v;
    for (rlab_ds_entry *e = h->datasets; v && e; e = e->next)
        if (!e->detached && !oom) {
            v[k] = rlab_strdup(e->ds->name);
            if (!v[k])
                oom = 1;
            else
                k++;
        }
    pthread_mutex_unlock(&h->mu);
    if (oom) {
        rlab_strv_free(v);
        return NULL;
    }
    qsort(v, (size_t)k, sizeof *v, cmp_cstr);
    return v;
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

int rlab_host_save_model(rlab_host *h, const char *name, const char *dir, char **path_out,
                         rlab_err *err)
{
    if (path_out)
        *path_out = NULL;
    rlab_model *m = rlab_models_get(h->models, name);
    if (!m)
        return rlab_errf(err, RLAB_ENOTFOUND, "model '%s' not found", name ? name : "");
    char path[1024], meta_path[1024];
    snprintf(path, sizeof path, "%s/%s.safetensors", dir, name);
    snprintf(meta_path, sizeof meta_path, "%s/%s.json", dir, name);
    int rc = rlab_model_save(m, path, err);
    if (rc == RLAB_OK) {
        char desc[256];
        rlab_model_describe(m, desc, sizeof desc);
        json_object *o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(m->name));
        json_object_object_add(o, "kind", json_object_new_string(m->kind));
        json_object_object_add(o, "plugin", json_object_new_string(m->plugin));
        json_object_object_add(o, "dataset", json_object_new_string(m->dataset));
        json_object_object_add(o, "n_users", json_object_new_int(m->n_users));
        json_object_object_add(o, "n_items", json_object_new_int(m->n_items));
        json_object_object_add(o, "describe", json_object_new_string(desc));
        const char *txt = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY);
        FILE *f = fopen(meta_path, "w");
        if (!f || fputs(txt, f) < 0 || fputc('\n', f) < 0)
            rc = rlab_errf(err, RLAB_EIO, "cannot write %s: %s", meta_path, strerror(errno));
        if (f && fclose(f) != 0 && rc == RLAB_OK)
            rc = rlab_errf(err, RLAB_EIO, "cannot write %s: %s", meta_path, strerror(errno));
        json_object_put(o);
    }
    if (rc == RLAB_OK && h->db) {
        /* The bytes go into the store, so the model survives the session even when the files
         * are gone: rlab_host_model_get restores it from there on demand. */
        int64_t art = 0;
        char meta_name[160];
        snprintf(meta_name, sizeof meta_name, "%s.json", m->name);
        rc = rlab_db_artifact_file(h->db, 0, m->name, "model", path, RLAB_DB_ART_BLOB, &art, err);
        if (rc == RLAB_OK)
            rc = rlab_db_artifact_file(h->db, 0, meta_name, "model-meta", meta_path,
                                       RLAB_DB_ART_BLOB, NULL, err);
        if (rc == RLAB_OK)
            rc = rlab_db_model_register(h->db, m->name, m->kind, m->plugin, 0, art, NULL, err);
    }
    rlab_model_release(m);
    if (rc == RLAB_OK && path_out) {
        *path_out = rlab_strdup(path);
        if (!*path_out)
            rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
    }
    return rc;
}

/* Restore model `name` from the store db: its models row gives the kind and the artifact;
 * the artifact (and its "<name>.json" metadata, when stored) are exported to a private
 * temporary folder, loaded through the kind, and removed. RLAB_ENOTFOUND when the store has
 * no such model or its bytes are not in the store. */
int rlab__host_restore_model(rlab_host *h, rlab_db *db, const char *name, rlab_err *err)
{
    if (!db)
        return rlab_errf(err, RLAB_ENOTFOUND, "model '%s' not found", name);
    rlab_db_stmt *s = rlab_db_prepare(
        db,
        "SELECT m.kind, m.artifact_id,"
        " (SELECT a.id FROM artifacts a WHERE a.name = :meta AND a.kind = 'model-meta'"
        "  AND a.data IS NOT NULL ORDER BY a.id DESC LIMIT 1)"
        " FROM models m JOIN artifacts b ON b.id = m.artifact_id"
        " WHERE m.name = :name AND b.data IS NOT NULL",
        err);
    if (!s)
        return err ? err->code : RLAB_EDB;
    char meta_name[160], kind[64] = "";
    snprintf(meta_name, sizeof meta_name, "%s.json", name);
    int64_t art = 0, meta_art = 0;
    int rc = rlab_db_bind_text(s, ":name", name, err);
    if (rc == RLAB_OK)
        rc = rlab_db_bind_text(s, ":meta", meta_name, err);
    if (rc == RLAB_OK && (rc = rlab_db_step(s, err)) == RLAB_DB_ROW) {
        const char *k = rlab_db_column_text(s, 0);
        snprintf(kind, sizeof kind, "%s", k ? k : "");
        art = rlab_db_column_int(s, 1);
        meta_art = rlab_db_column_int(s, 2);
        rc = RLAB_OK;
    } else if (rc == RLAB_OK) {
        rc = rlab_errf(err, RLAB_ENOTFOUND,
                       "model '%s' not found (not in the session, not saved "
                       "in the store)",
                       name);
    }
    rlab_db_finalize(s);
    if (rc)
        return rc;
    const char *tmp = getenv("TMPDIR");
    char dir[512], path[700], mpath[700];
    snprintf(dir, sizeof dir, "%s/reclab-model-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir))
        return rlab_errf(err, RLAB_EIO, "restore model '%s': cannot make a folder in %s: %s", name,
                         tmp && *tmp ? tmp : "/tmp", strerror(errno));
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    snprintf(mpath, sizeof mpath, "%s/model.json", dir);
    rc = rlab_db_artifact_export(db, art, path, err);
    if (rc == RLAB_OK && meta_art > 0)
        rc = rlab_db_artifact_export(db, meta_art, mpath, err);
    if (rc == RLAB_OK)
        rc = rlab_host_load_model(h, name, path, kind[0] ? kind : NULL, err);
    unlink(path);
    unlink(mpath);
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
    if (rlab__host_restore_model(h, h->db, name, err) != RLAB_OK)
        return NULL;
    m = rlab_models_get(h->models, name);
    if (!m)
        rlab_errf(err, RLAB_ENOTFOUND, "model '%s' not found", name);
    return m;
}

/* Read a whole small text file; NULL when missing. */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = rlab_malloc(cap);
    while (buf) {
        size_t k = fread(buf + n, 1, cap - n - 1, f);
        n += k;
        if (n + 1 < cap)
            break;
        char *nb = rlab_realloc(buf, cap * 2);
        if (!nb) {
            rlab_free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    fclose(f);
    if (buf)
        buf[n] = '\0';
    return buf;
}

int rlab_host_load_model(rlab_host *h, const char *name, const char *path, const char *kind,
                         rlab_err *err)
{
    if (!h || !name || !*name || !path)
        return rlab_errf(err, RLAB_EINVAL, "load model: name and path required");
    int nrc = rlab_name_check("model", name, err);
    if (nrc)
        return nrc;
    /* sidecar metadata: <path minus .safetensors>.json */
    char meta_path[1024];
    size_t pl = strlen(path);
    const char *ext = ".safetensors";
    size_t el = strlen(ext);
    if (pl > el && strcmp(path + pl - el, ext) == 0)
        snprintf(meta_path, sizeof meta_path, "%.*s.json", (int)(pl - el), path);
    else
        snprintf(meta_path, sizeof meta_path, "%s.json", path);
    char *meta = slurp(meta_path);
    char kind_buf[64] = "";
    if (!kind) {
        json_object *o = meta ? json_tokener_parse(meta) : NULL;
        json_object *k = NULL;
        if (o && json_object_object_get_ex(o, "kind", &k))
            snprintf(kind_buf, sizeof kind_buf, "%s", json_object_get_string(k));
        json_object_put(o);
        if (!kind_buf[0]) {
            rlab_free(meta);
            return rlab_errf(err, RLAB_EFORMAT, "%s: no model kind given and no metadata in %s",
                             path, meta_path);
        }
        kind = kind_buf;
    }
    const char *plugin = NULL;
    const rlab_model_kind *k = rlab_host_find_model_kind(h, kind, &plugin);
    if (!k) {
        rlab_free(meta);
        return rlab_errf(err, RLAB_ENOTFOUND, "no plugin provides model kind '%s'", kind);
    }
    rlab_model *m = k->load(h, path, meta, err);
    rlab_free(meta);
    if (!m) {
        if (err && err->code == RLAB_OK)
            rlab_errf(err, RLAB_EFORMAT, "%s: model kind '%s' could not load it", path, kind);
        return err ? err->code : RLAB_EFORMAT;
    }
    snprintf(m->name, sizeof m->name, "%s", name);
    snprintf(m->kind, sizeof m->kind, "%s", kind);
    snprintf(m->plugin, sizeof m->plugin, "%s", plugin);
    return rlab_models_add(h->models, m, err);
}
