/*
 * core/data/load_common: small helpers shared by the loaders (id parsing with messages,
 * growable index maps, dataset bookkeeping). Declared in tokenizer.h.
 */
#include "data/tokenizer.h"

#include <stdio.h>
#include <string.h>

int64_t *rlab_i64map_at(rlab_i64map *m, int32_t i)
{
    if ((size_t)i >= m->cap) {
        size_t nc = m->cap ? m->cap * 2 : 1024;
        while (nc <= (size_t)i)
            nc *= 2;
        int64_t *v = rlab_realloc(m->v, nc * sizeof *v);
        if (!v)
            return NULL;
        memset(v + m->cap, 0, (nc - m->cap) * sizeof *v);
        m->v = v;
        m->cap = nc;
    }
    return &m->v[i];
}

void rlab_i64map_clear(rlab_i64map *m)
{
    rlab_free(m->v);
    m->v = NULL;
    m->cap = 0;
}

void rlab_ld_quote(char out[48], rlab_field f)
{
    size_t n = f.n > 40 ? 40 : f.n, k = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)f.p[i];
        out[k++] = (c >= 0x20 && c < 0x7F) ? (char)c : '?';
    }
    if (f.n > 40) {
        out[k++] = '.';
        out[k++] = '.';
        out[k++] = '.';
    }
    out[k] = '\0';
}

#define IDCACHE_MAX (1u << 20)

void rlab_idcache_clear(rlab_idcache *c)
{
    rlab_free(c->v);
    c->v = NULL;
    c->cap = 0;
}

int rlab_ld_int_id(rlab_vocab *v, rlab_idcache *cache, const rlab_reader *r, rlab_field f,
                   const char *what, int32_t *idx, rlab_err *err)
{
    int32_t x;
    int rc = rlab_parse_i32(f.p, f.n, &x);
    if (rc) {
        char q[48];
        rlab_ld_quote(q, f);
        if (rc == RLAB_EINVAL)
            return rlab_errf_at(err, RLAB_EFORMAT, r->name, r->line,
                                "%s '%s' overflows, expected a 32-bit integer", what, q);
        return rlab_errf_at(err, RLAB_EFORMAT, r->name, r->line,
                            "%s '%s' is not a number, expected an integer", what, q);
    }
    if (cache && x >= 0 && (size_t)x < cache->cap && cache->v[x] > 0) {
        *idx = cache->v[x] - 1;
        return RLAB_OK;
    }
    const char *s = f.p;
    size_t n = f.n;
    rlab_id_canon(&s, &n);
    int32_t k = rlab_vocab_add(v, s, n);
    if (k < 0)
        return rlab_errf_at(err, RLAB_ENOMEM, r->name, r->line, "out of memory");
    *idx = k;
    if (cache && x >= 0 && (uint32_t)x < IDCACHE_MAX) {
        if ((size_t)x >= cache->cap) { /* grow; a failed grow only loses the shortcut */
            size_t nc = cache->cap ? cache->cap : 1024;
            while (nc <= (size_t)x)
                nc *= 2;
            int32_t *nv = rlab_realloc(cache->v, nc * sizeof *nv);
            if (!nv)
                return RLAB_OK;
            memset(nv + cache->cap, 0, (nc - cache->cap) * sizeof *nv);
            cache->v = nv;
            cache->cap = nc;
        }
        cache->v[x] = k + 1;
    }
    return RLAB_OK;
}

void rlab_ld_set(rlab_dataset *ds, const char *format, const char *source)
{
    if (format)
        snprintf(ds->format, sizeof ds->format, "%s", format);
    if (!source)
        return;
    size_t n = strlen(ds->source);
    if (n == 0)
        snprintf(ds->source, sizeof ds->source, "%s", source);
    else if (n + 2 < sizeof ds->source)
        snprintf(ds->source + n, sizeof ds->source - n, "; %s", source);
}

void rlab_ld_default_name(const char *path, char *out, size_t size)
{
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/')
        n--;
    size_t b = n;
    while (b > 0 && path[b - 1] != '/')
        b--;
    size_t e = n;
    for (size_t i = n; i > b + 1; i--)
        if (path[i - 1] == '.') {
            e = i - 1;
            break;
        }
    snprintf(out, size, "%.*s", (int)(e - b), path + b);
}

int rlab_ld_new_dataset(const char *name, int derived, rlab_dataset **out, rlab_err *err)
{
    *out = NULL;
    int rc = rlab_name_check("dataset", name, err);
    if (rc) {
        if (derived && err) { /* the user never typed it: say where it came from */
            size_t n = strlen(err->msg);
            snprintf(err->msg + n, sizeof err->msg - n,
                     " (derived from the path): give the dataset a shorter name");
        }
        return rc;
    }
    *out = rlab_dataset_new(name, err);
    return *out ? RLAB_OK : RLAB_ENOMEM;
}

int rlab_ld_file(const char *path, unsigned flags, const char *name, const char *format,
                 rlab_ld_fn fn, rlab_dataset **out, rlab_err *err)
{
    *out = NULL;
    char def[RLAB_LD_NAME_BUF];
    if (!name) {
        rlab_ld_default_name(path, def, sizeof def);
        name = def;
    }
    rlab_dataset *ds = NULL;
    int nrc = rlab_ld_new_dataset(name, name == def, &ds, err);
    if (nrc)
        return nrc;
    rlab_reader r;
    int rc = rlab_reader_open(&r, path, flags, err);
    if (rc == RLAB_OK)
        rc = fn(&r, ds, err);
    rlab_reader_close(&r);
    if (rc) {
        rlab_dataset_free(ds);
        return rc;
    }
    rlab_ld_set(ds, format, path);
    *out = ds;
    return RLAB_OK;
}

int rlab_ld_join(char *out, size_t size, const char *dir, const char *base)
{
    int n = snprintf(out, size, "%s/%s", dir, base);
    return (n < 0 || (size_t)n >= size) ? RLAB_EINVAL : RLAB_OK;
}

const char *rlab_ld_sep_word(const char *sep)
{
    if (strcmp(sep, "\t") == 0)
        return "tab";
    if (strcmp(sep, "|") == 0)
        return "'|'";
    if (strcmp(sep, "::") == 0)
        return "'::'";
    if (strcmp(sep, ";") == 0)
        return "';'";
    if (strcmp(sep, ",") == 0)
        return "comma";
    return sep[0] == ' ' ? "space" : "separator";
}
