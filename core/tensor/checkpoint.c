/*
 * core/tensor/checkpoint: safetensors read/write for parameter blocks (and optimiser moments).
 *
 * Layout written: u64le N | JSON header (N bytes, space-padded to a multiple of 8, as the
 * reference implementation does) | tensor bytes in header order (params, then opt.m.*, then
 * opt.v.*). Loading validates the whole header against the block BEFORE copying anything, so
 * a shape mismatch or a truncated file leaves the parameters untouched.
 */
#include "tensor/checkpoint.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "checkpoint.c writes raw float bytes: little-endian hosts only"
#endif

#define MAX_HEADER ((uint64_t)100 << 20) /* the reference implementation's limit */

/* ---- saving --------------------------------------------------------------------------------- */
static int add_entry(json_object *root, const char *name, const rlab_tensor *t, uint64_t *off)
{
    json_object *e = json_object_new_object(), *shape = json_object_new_array(),
                *offs = json_object_new_array();
    if (!e || !shape || !offs) {
        json_object_put(e);
        json_object_put(shape);
        json_object_put(offs);
        return RLAB_ENOMEM;
    }
    for (int d = 0; d < t->ndim; d++)
        json_object_array_add(shape, json_object_new_int64(t->shape[d]));
    uint64_t end = *off + (uint64_t)t->n * sizeof(float);
    json_object_array_add(offs, json_object_new_int64((int64_t)*off));
    json_object_array_add(offs, json_object_new_int64((int64_t)end));
    json_object_object_add(e, "dtype", json_object_new_string("F32"));
    json_object_object_add(e, "shape", shape);
    json_object_object_add(e, "data_offsets", offs);
    json_object_object_add(root, name, e);
    *off = end;
    return RLAB_OK;
}

static int write_all(FILE *f, const void *buf, size_t n) { return fwrite(buf, 1, n, f) == n; }

int rlab_ckpt_save(const char *path, const rlab_params *p, const rlab_opt *opt, const rlab_kv *meta,
                   int n_meta, rlab_err *err)
{
    rlab_opt *o = (rlab_opt *)(uintptr_t)opt; /* the state accessors are not const */
    const float *m = o ? rlab_opt_state_m(o) : NULL, *v = o ? rlab_opt_state_v(o) : NULL;
    json_object *root = json_object_new_object(), *md = json_object_new_object();
    char name[80], tmp[4096];
    uint64_t off = 0;
    int rc = RLAB_OK;
    if (!root || !md) {
        rc = RLAB_ENOMEM;
        goto jsonfail;
    }
    for (int i = 0; i < n_meta; i++)
        json_object_object_add(md, meta[i].key, json_object_new_string(meta[i].value));
    if (o) {
        snprintf(name, sizeof name, "%lld", (long long)rlab_opt_steps(o));
        json_object_object_add(md, "opt.step", json_object_new_string(name));
    }
    json_object_object_add(root, "__metadata__", md);
    md = NULL;
    for (int i = 0; i < p->n && rc == RLAB_OK; i++)
        rc = add_entry(root, p->t[i].name, &p->t[i], &off);
    for (int i = 0; i < p->n && rc == RLAB_OK && m; i++) {
        snprintf(name, sizeof name, "opt.m.%s", p->t[i].name);
        rc = add_entry(root, name, &p->t[i], &off);
    }
    for (int i = 0; i < p->n && rc == RLAB_OK && v; i++) {
        snprintf(name, sizeof name, "opt.v.%s", p->t[i].name);
        rc = add_entry(root, name, &p->t[i], &off);
    }
    if (rc != RLAB_OK)
        goto jsonfail;
    const char *hdr = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN);
    if (!hdr) {
        rc = RLAB_ENOMEM;
        goto jsonfail;
    }
    size_t hlen = strlen(hdr), padded = (hlen + 7) & ~(size_t)7;
    unsigned char len8[8];
    for (int b = 0; b < 8; b++)
        len8[b] = (unsigned char)((uint64_t)padded >> (8 * b));

    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        json_object_put(root);
        return rlab_errf_at(err, RLAB_EIO, path, 0, "cannot create %s: %s", tmp, strerror(errno));
    }
    int ok = write_all(f, len8, 8) && write_all(f, hdr, hlen);
    for (size_t k = hlen; k < padded && ok; k++)
        ok = fputc(' ', f) != EOF;
    for (int pass = 0; pass < 3 && ok; pass++) {
        const float *base = pass == 0 ? p->data : pass == 1 ? m : v;
        if (!base)
            continue;
        for (int i = 0; i < p->n && ok; i++) /* slices of the block at each tensor's offset */
            ok = write_all(f, base + (p->t[i].data - p->data), (size_t)p->t[i].n * sizeof(float));
    }
    ok = ok && fflush(f) == 0 && fsync(fileno(f)) == 0;
    int saved_errno = errno;
    ok = (fclose(f) == 0) && ok;
    json_object_put(root);
    if (!ok || rename(tmp, path) != 0) {
        if (ok)
            saved_errno = errno;
        unlink(tmp);
        return rlab_errf_at(err, RLAB_EIO, path, 0, "cannot write checkpoint: %s",
                            strerror(saved_errno));
    }
    return RLAB_OK;
jsonfail:
    json_object_put(md);
    json_object_put(root);
    return rlab_errf_at(err, rc, path, 0, "cannot build the checkpoint header");
}

/* ---- loading -------------------------------------------------------------------------------- */
typedef struct ckfile {
    FILE *f;
    const char *path;
    json_object *hdr;
    uint64_t data_start, data_size;
} ckfile;

static void ck_close(ckfile *c)
{
    if (c->f)
        fclose(c->f);
    json_object_put(c->hdr);
    c->f = NULL;
    c->hdr = NULL;
}

static int ck_open(ckfile *c, const char *path, rlab_err *err)
{
    memset(c, 0, sizeof *c);
    c->path = path;
    c->f = fopen(path, "rb");
    if (!c->f)
        return rlab_errf_at(err, errno == ENOENT ? RLAB_ENOTFOUND : RLAB_EIO, path, 0,
                            "cannot open: %s", strerror(errno));
    struct stat st;
    if (fstat(fileno(c->f), &st) != 0) {
        int e = errno;
        ck_close(c);
        return rlab_errf_at(err, RLAB_EIO, path, 0, "cannot stat: %s", strerror(e));
    }
    const uint64_t size = (uint64_t)st.st_size;
    unsigned char len8[8];
    if (size < 8 || fread(len8, 1, 8, c->f) != 8) {
        ck_close(c);
        return rlab_errf_at(err, RLAB_EFORMAT, path, 0,
                            "truncated: %llu bytes, too short for a safetensors header",
                            (unsigned long long)size);
    }
    uint64_t n = 0;
    for (int b = 7; b >= 0; b--)
        n = (n << 8) | len8[b];
    if (n > MAX_HEADER || n > size - 8) {
        ck_close(c);
        return rlab_errf_at(err, RLAB_EFORMAT, path, 0,
                            "truncated or not safetensors: header length %llu, file size %llu",
                            (unsigned long long)n, (unsigned long long)size);
    }
    char *buf = rlab_malloc((size_t)n + 1);
    if (!buf) {
        ck_close(c);
        return rlab_errf_at(err, RLAB_ENOMEM, path, 0, "out of memory for the header");
    }
    if (fread(buf, 1, (size_t)n, c->f) != (size_t)n) {
        rlab_free(buf);
        ck_close(c);
        return rlab_errf_at(err, RLAB_EIO, path, 0, "cannot read the header");
    }
    buf[n] = '\0';
    enum json_tokener_error jerr = json_tokener_success;
    c->hdr = json_tokener_parse_verbose(buf, &jerr);
    rlab_free(buf);
    if (!c->hdr || !json_object_is_type(c->hdr, json_type_object)) {
        ck_close(c);
        return rlab_errf_at(err, RLAB_EFORMAT, path, 0, "header is not a JSON object (%s)",
                            json_tokener_error_desc(jerr));
    }
    c->data_start = 8 + n;
    c->data_size = size - 8 - n;
    return RLAB_OK;
}

/* Validate entry `name` against tensor t; on success *off is its byte offset in the data. */
static int ck_check(const ckfile *c, const char *name, const rlab_tensor *t, uint64_t *off,
                    rlab_err *err)
{
    json_object *e, *dt, *sh, *of;
    if (!json_object_object_get_ex(c->hdr, name, &e))
        return rlab_errf_at(err, RLAB_ENOTFOUND, c->path, 0, "tensor '%s' not found", name);
    if (!json_object_object_get_ex(e, "dtype", &dt) ||
        strcmp(json_object_get_string(dt) ? json_object_get_string(dt) : "", "F32") != 0)
        return rlab_errf_at(err, RLAB_EFORMAT, c->path, 0, "tensor '%s': dtype %s, F32 expected",
                            name, json_object_get_string(dt) ? json_object_get_string(dt) : "?");
    if (!json_object_object_get_ex(e, "shape", &sh) || !json_object_is_type(sh, json_type_array))
        return rlab_errf_at(err, RLAB_EFORMAT, c->path, 0, "tensor '%s': no shape", name);
    char want[64], got[128];
    size_t nd = json_object_array_length(sh), k = 0;
    int same = nd == (size_t)t->ndim;
    k += (size_t)snprintf(got, sizeof got, "[");
    for (size_t d = 0; d < nd; d++) {
        int64_t v = json_object_get_int64(json_object_array_get_idx(sh, d));
        same = same && v == t->shape[d];
        if (k < sizeof got)
            k += (size_t)snprintf(got + k, sizeof got - k, d ? ", %lld" : "%lld", (long long)v);
    }
    if (k < sizeof got)
        snprintf(got + k, sizeof got - k, "]");
    if (!same)
        return rlab_errf_at(err, RLAB_EINVAL, c->path, 0,
                            "tensor '%s': shape %s in the file, %s expected", name, got,
                            rlab_t_shape_str(t, want, sizeof want));
    if (!json_object_object_get_ex(e, "data_offsets", &of) ||
        !json_object_is_type(of, json_type_array) || json_object_array_length(of) != 2)
        return rlab_errf_at(err, RLAB_EFORMAT, c->path, 0, "tensor '%s': no data_offsets", name);
    int64_t b = json_object_get_int64(json_object_array_get_idx(of, 0));
    int64_t en = json_object_get_int64(json_object_array_get_idx(of, 1));
    if (b < 0 || en - b != t->n * (int64_t)sizeof(float))
        return rlab_errf_at(err, RLAB_EFORMAT, c->path, 0,
                            "tensor '%s': data_offsets [%lld, %lld] do not hold %lld floats", name,
                            (long long)b, (long long)en, (long long)t->n);
    if ((uint64_t)en > c->data_size)
        return rlab_errf_at(err, RLAB_EFORMAT, c->path, 0,
                            "truncated: tensor '%s' ends at data byte %lld but the file holds "
                            "%llu data bytes",
                            name, (long long)en, (unsigned long long)c->data_size);
    *off = (uint64_t)b;
    return RLAB_OK;
}

static int ck_read(const ckfile *c, const char *name, uint64_t off, float *dst, int64_t n,
                   rlab_err *err)
{
    if (fseeko(c->f, (off_t)(c->data_start + off), SEEK_SET) != 0 ||
        fread(dst, sizeof(float), (size_t)n, c->f) != (size_t)n)
        return rlab_errf_at(err, RLAB_EIO, c->path, 0, "tensor '%s': read failed", name);
    return RLAB_OK;
}

int rlab_ckpt_load(const char *path, rlab_params *p, rlab_opt *opt, int strict, rlab_err *err)
{
    ckfile c;
    int rc = ck_open(&c, path, err);
    if (rc)
        return rc;
    float *state[2] = {opt ? rlab_opt_state_m(opt) : NULL, opt ? rlab_opt_state_v(opt) : NULL};
    const char *prefix[2] = {"opt.m.", "opt.v."};
    uint64_t *offs = rlab_calloc((size_t)(3 * p->n + 1), sizeof *offs);
    char name[80];
    long long step = -1;
    if (!offs) {
        rc = rlab_errf_at(err, RLAB_ENOMEM, path, 0, "out of memory");
        goto done;
    }
    /* pass 1: validate everything */
    for (int i = 0; i < p->n && !rc; i++)
        rc = ck_check(&c, p->t[i].name, &p->t[i], &offs[i], err);
    for (int s = 0; s < 2 && !rc; s++)
        for (int i = 0; i < p->n && !rc && state[s]; i++) {
            snprintf(name, sizeof name, "%s%s", prefix[s], p->t[i].name);
            rc = ck_check(&c, name, &p->t[i], &offs[(s + 1) * p->n + i], err);
        }
    if (!rc && opt) {
        json_object *md, *st;
        const char *sv;
        char *end = NULL;
        if (json_object_object_get_ex(c.hdr, "__metadata__", &md) &&
            json_object_object_get_ex(md, "opt.step", &st) && (sv = json_object_get_string(st)))
            step = strtoll(sv, &end, 10);
        if (step < 0 || !end || *end)
            rc = rlab_errf_at(err, RLAB_ENOTFOUND, path, 0,
                              "no valid optimiser step ('opt.step' in __metadata__)");
    }
    if (!rc && strict) {
        json_object_object_foreach(c.hdr, key, val)
        {
            (void)val;
            if (strcmp(key, "__metadata__") == 0 || rlab_params_get(p, key))
                continue;
            /* optimiser state is not a model tensor: a params-only load may skip it */
            if (strncmp(key, "opt.m.", 6) == 0 || strncmp(key, "opt.v.", 6) == 0)
                continue;
            rc = rlab_errf_at(err, RLAB_EINVAL, path, 0,
                              "tensor '%s' is not a parameter of the model (strict load)", key);
            break;
        }
    }
    /* pass 2: copy */
    for (int i = 0; i < p->n && !rc; i++)
        rc = ck_read(&c, p->t[i].name, offs[i], p->t[i].data, p->t[i].n, err);
    for (int s = 0; s < 2 && !rc; s++)
        for (int i = 0; i < p->n && !rc && state[s]; i++)
            rc = ck_read(&c, p->t[i].name, offs[(s + 1) * p->n + i],
                         state[s] + (p->t[i].data - p->data), p->t[i].n, err);
    if (!rc && opt)
        rlab_opt_set_steps(opt, step);
done:
    rlab_free(offs);
    ck_close(&c);
    return rc;
}

int rlab_ckpt_meta(const char *path, const char *key, char *buf, size_t size, rlab_err *err)
{
    ckfile c;
    int rc = ck_open(&c, path, err);
    if (rc)
        return rc;
    json_object *md, *v;
    const char *s;
    if (json_object_object_get_ex(c.hdr, "__metadata__", &md) &&
        json_object_object_get_ex(md, key, &v) && (s = json_object_get_string(v))) {
        if (size)
            snprintf(buf, size, "%s", s);
    } else {
        rc = rlab_errf_at(err, RLAB_ENOTFOUND, path, 0, "no metadata key '%s'", key);
    }
    ck_close(&c);
    return rc;
}
