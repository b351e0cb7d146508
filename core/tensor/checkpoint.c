/*
 * core/tensor/checkpoint: safetensors read/write of typed tensors and metadata (rlab_ckpt), and
 * the one-parameter-block helpers (rlab_ckpt_save / _load / _meta) built on it.
 *
 * Layout written: u64le N | JSON header (N bytes, space-padded to a multiple of 8, as the
 * reference implementation does) | tensor bytes, 8-byte element types first, then the others,
 * each group in the order added. Reading validates the whole header against the file size
 * (contiguous, non-overlapping tensors covering the data section exactly) before any tensor
 * byte is read, so a bad file never yields a container. Names are looked up through small
 * open-addressing hash indexes, so adding or finding a tensor costs O(1) however many there
 * are.
 */
#include "tensor/checkpoint.h"

#include <errno.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "checkpoint.c writes raw tensor bytes: little-endian hosts only"
#endif

#define MAX_HEADER ((uint64_t)100 << 20) /* the reference implementation's limit */
#define SLOT_ALIGN 64                    /* alignment of each tensor read */
#define NEW_NAME "checkpoint"            /* error-message name of a container not read */

/* ---- private types -------------------------------------------------------------------------- */
typedef struct ck_tensor {
    char *name; /* first member: the name indexes read it through a char ** */
    rlab_dtype dt;
    int ndim;
    int64_t shape[RLAB_CKPT_MAXDIM];
    uint64_t nbytes;
    uint64_t off;     /* read: data_offsets[0] in the file */
    const void *data; /* added: borrowed; read: inside ck->blob; NULL when nbytes == 0 */
} ck_tensor;

typedef struct ck_meta {
    char *key; /* first member, as for ck_tensor */
    char *value;
} ck_meta;

/* Open addressing with linear probing: slot[h] is an entry index or -1; cap is a power of two
 * kept at least twice the number of entries. */
typedef struct ck_index {
    int *slot;
    size_t cap;
} ck_index;

struct rlab_ckpt {
    ck_tensor *t;
    int nt, tcap;
    ck_index ti;
    ck_meta *m;
    int nm, mcap;
    ck_index mi;
    void *blob;    /* read: every tensor's bytes, 64-byte aligned slots */
    char src[192]; /* file name for error messages */
};

/* a tensor's extent in the data section, for the contiguity check */
typedef struct ck_span {
    uint64_t b, e;
    int i;
} ck_span;

/* where the bytes of a file or buffer being read come from */
typedef struct ck_src {
    FILE *f;
    const unsigned char *mem;
    uint64_t size, pos;
} ck_src;

/* where the bytes being written go */
typedef struct ck_sink {
    FILE *f;
    unsigned char *buf;
    size_t pos;
} ck_sink;

/* a container ready to be emitted: header text and the data order */
typedef struct ck_plan {
    json_object *root;
    const char *hdr;
    size_t hlen, padded;
    uint64_t data_size;
    int *order; /* [nt] tensor indices in data order */
} ck_plan;

/* the element count 0-size tensors point at, so rlab_ckpt_tensor never returns NULL on success */
static const int64_t empty_data[1];

/* ---- static prototypes ---------------------------------------------------------------------- */
static size_t dt_size(rlab_dtype dt);
static const char *dt_name(rlab_dtype dt);
static int count_bytes(rlab_dtype dt, int ndim, const int64_t *shape, uint64_t *nbytes);
static const char *fmt_shape(int ndim, const int64_t *shape, char *buf, size_t size);
static int idx_find(const ck_index *ix, const void *base, size_t stride, const char *name);
static int idx_reserve(ck_index *ix, const void *base, size_t stride, int n);
static void idx_place(ck_index *ix, const void *base, size_t stride, int i);
static void idx_rebuild(ck_index *ix, const void *base, size_t stride, int n);
static int push_tensor(rlab_ckpt *ck, const char *name, rlab_dtype dt, int ndim,
                       const int64_t *shape, uint64_t nbytes, const void *data);
static void truncate_tensors(rlab_ckpt *ck, int n);
static int put_meta(rlab_ckpt *ck, const char *key, const char *value);
static int add_block(rlab_ckpt *ck, const rlab_params *p, const float *base, const char *prefix,
                     rlab_err *err);
static int plan_build(const rlab_ckpt *ck, ck_plan *pl);
static void plan_clear(ck_plan *pl);
static int plan_emit(const rlab_ckpt *ck, const ck_plan *pl, ck_sink *s);
static int read_ckpt(ck_src *src, const char *name, int header_only, rlab_ckpt **out,
                     rlab_err *err);
static int read_file(const char *path, int header_only, rlab_ckpt **out, rlab_err *err);
static int check_block(const rlab_ckpt *ck, const rlab_params *p, const char *prefix, int *found,
                       rlab_err *err);
static int check_strict(const rlab_ckpt *ck, rlab_params *p, const char *prefix, int skip_opt,
                        rlab_err *err);
static void copy_block(const rlab_ckpt *ck, const rlab_params *p, const int *found, float *base);

/* ---- the container -------------------------------------------------------------------------- */
rlab_ckpt *rlab_ckpt_new(rlab_err *err)
{
    rlab_ckpt *ck = rlab_calloc(1, sizeof *ck);
    if (!ck) {
        rlab_errf(err, RLAB_ENOMEM, "checkpoint: out of memory");
        return NULL;
    }
    snprintf(ck->src, sizeof ck->src, "%s", NEW_NAME);
    return ck;
}

void rlab_ckpt_free(rlab_ckpt *ck)
{
    if (!ck)
        return;
    for (int i = 0; i < ck->nt; i++)
        rlab_free(ck->t[i].name);
    for (int i = 0; i < ck->nm; i++) {
        rlab_free(ck->m[i].key);
        rlab_free(ck->m[i].value);
    }
    rlab_free(ck->t);
    rlab_free(ck->m);
    rlab_free(ck->ti.slot);
    rlab_free(ck->mi.slot);
    rlab_free_aligned(ck->blob);
    rlab_free(ck);
}

int rlab_ckpt_add(rlab_ckpt *ck, const char *name, rlab_dtype dt, int ndim, const int64_t *shape,
                  const void *data, rlab_err *err)
{
    if (!ck || !name)
        return rlab_errf(err, RLAB_EINVAL, "checkpoint: add: no container or no name");
    size_t len = strlen(name);
    if (len == 0 || len > RLAB_CKPT_MAXNAME)
        return rlab_errf(err, RLAB_EINVAL,
                         "checkpoint: tensor name '%.40s%s' has %zu bytes (1 to %d allowed)", name,
                         len > 40 ? "..." : "", len, RLAB_CKPT_MAXNAME);
    if (strcmp(name, "__metadata__") == 0)
        return rlab_errf(err, RLAB_EINVAL, "checkpoint: '__metadata__' is not a tensor name");
    if (!dt_size(dt))
        return rlab_errf(err, RLAB_EINVAL, "checkpoint: tensor '%s': unknown dtype %d", name,
                         (int)dt);
    if (ndim < 0 || ndim > RLAB_CKPT_MAXDIM || (ndim > 0 && !shape))
        return rlab_errf(err, RLAB_EINVAL,
                         "checkpoint: tensor '%s': %d dimensions (0 to %d with a shape allowed)",
                         name, ndim, RLAB_CKPT_MAXDIM);
    uint64_t nbytes;
    if (count_bytes(dt, ndim, shape, &nbytes) != RLAB_OK) {
        char sh[160];
        return rlab_errf(err, RLAB_EINVAL,
                         "checkpoint: tensor '%s': shape %s (negative or too large)", name,
                         fmt_shape(ndim, shape, sh, sizeof sh));
    }
    if (nbytes && !data)
        return rlab_errf(err, RLAB_EINVAL, "checkpoint: tensor '%s': no data for %llu bytes", name,
                         (unsigned long long)nbytes);
    if (idx_find(&ck->ti, ck->t, sizeof *ck->t, name) >= 0)
        return rlab_errf(err, RLAB_EINVAL, "checkpoint: duplicate tensor '%s'", name);
    if (push_tensor(ck, name, dt, ndim, shape, nbytes, data) != RLAB_OK)
        return rlab_errf(err, RLAB_ENOMEM, "checkpoint: out of memory adding tensor '%s'", name);
    return RLAB_OK;
}

int rlab_ckpt_add_params(rlab_ckpt *ck, const rlab_params *p, const char *prefix, rlab_err *err)
{
    if (!ck || !p)
        return rlab_errf(err, RLAB_EINVAL, "checkpoint: add_params: no container or no block");
    return add_block(ck, p, p->data, prefix, err);
}

int rlab_ckpt_set_meta(rlab_ckpt *ck, const char *key, const char *value, rlab_err *err)
{
    if (!ck || !key || !value)
        return rlab_errf(err, RLAB_EINVAL, "checkpoint: set_meta: no container, key or value");
    if (put_meta(ck, key, value) != RLAB_OK)
        return rlab_errf(err, RLAB_ENOMEM, "checkpoint: out of memory setting '%s'", key);
    return RLAB_OK;
}

const char *rlab_ckpt_meta_get(const rlab_ckpt *ck, const char *key)
{
    if (!ck || !key)
        return NULL;
    int i = idx_find(&ck->mi, ck->m, sizeof *ck->m, key);
    return i < 0 ? NULL : ck->m[i].value;
}

int rlab_ckpt_meta_count(const rlab_ckpt *ck) { return ck ? ck->nm : 0; }

const char *rlab_ckpt_meta_key(const rlab_ckpt *ck, int i)
{
    return ck && i >= 0 && i < ck->nm ? ck->m[i].key : NULL;
}

int rlab_ckpt_tensor_count(const rlab_ckpt *ck) { return ck ? ck->nt : 0; }

const char *rlab_ckpt_tensor_name(const rlab_ckpt *ck, int i)
{
    return ck && i >= 0 && i < ck->nt ? ck->t[i].name : NULL;
}

const void *rlab_ckpt_tensor(const rlab_ckpt *ck, const char *name, rlab_dtype dt, int *ndim,
                             int64_t *shape, rlab_err *err)
{
    if (!ck || !name) {
        rlab_errf(err, RLAB_EINVAL, "checkpoint: tensor: no container or no name");
        return NULL;
    }
    if (!dt_size(dt)) {
        rlab_errf_at(err, RLAB_EINVAL, ck->src, 0, "tensor '%s': unknown dtype %d requested", name,
                     (int)dt);
        return NULL;
    }
    int i = idx_find(&ck->ti, ck->t, sizeof *ck->t, name);
    if (i < 0) {
        rlab_errf_at(err, RLAB_ENOTFOUND, ck->src, 0, "no tensor '%s'", name);
        return NULL;
    }
    const ck_tensor *t = &ck->t[i];
    if (t->dt != dt) {
        rlab_errf_at(err, RLAB_EFORMAT, ck->src, 0, "tensor '%s' is %s, %s expected", name,
                     dt_name(t->dt), dt_name(dt));
        return NULL;
    }
    if (ndim)
        *ndim = t->ndim;
    if (shape)
        for (int d = 0; d < t->ndim; d++)
            shape[d] = t->shape[d];
    return t->data ? t->data : (const void *)empty_data;
}

int rlab_ckpt_get_params(const rlab_ckpt *ck, rlab_params *p, const char *prefix, int strict,
                         rlab_err *err)
{
    if (!ck || !p)
        return rlab_errf(err, RLAB_EINVAL, "checkpoint: get_params: no container or no block");
    int *found = rlab_malloc(((size_t)p->n + 1) * sizeof *found);
    if (!found)
        return rlab_errf_at(err, RLAB_ENOMEM, ck->src, 0, "out of memory");
    int rc = check_block(ck, p, prefix, found, err);
    if (!rc && strict)
        rc = check_strict(ck, p, prefix, 0, err);
    if (!rc)
        copy_block(ck, p, found, p->data);
    rlab_free(found);
    return rc;
}

/* ---- writing -------------------------------------------------------------------------------- */
int rlab_ckpt_write(const rlab_ckpt *ck, const char *path, rlab_err *err)
{
    if (!ck || !path)
        return rlab_errf(err, RLAB_EINVAL, "checkpoint: write: no container or no path");
    ck_plan pl;
    int rc = plan_build(ck, &pl);
    if (rc) {
        plan_clear(&pl);
        return rlab_errf_at(err, rc, path, 0, "cannot build the checkpoint header");
    }
    size_t tlen = strlen(path) + 32;
    char *tmp = rlab_malloc(tlen);
    if (!tmp) {
        plan_clear(&pl);
        return rlab_errf_at(err, RLAB_ENOMEM, path, 0, "out of memory");
    }
    snprintf(tmp, tlen, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        int e = errno;
        rc = rlab_errf_at(err, RLAB_EIO, path, 0, "cannot create %s: %s", tmp, strerror(e));
        rlab_free(tmp);
        plan_clear(&pl);
        return rc;
    }
    ck_sink s = {.f = f};
    errno = 0;
    int ok = plan_emit(ck, &pl, &s) && fflush(f) == 0 && fsync(fileno(f)) == 0;
    int saved_errno = errno;
    if (fclose(f) != 0 && ok) {
        ok = 0;
        saved_errno = errno;
    }
    plan_clear(&pl);
    if (ok && rename(tmp, path) != 0) {
        saved_errno = errno;
        ok = 0;
    }
    if (!ok) {
        unlink(tmp);
        rc = rlab_errf_at(err, RLAB_EIO, path, 0, "cannot write checkpoint: %s",
                          strerror(saved_errno ? saved_errno : EIO));
    }
    rlab_free(tmp);
    return rc;
}

int rlab_ckpt_write_mem(const rlab_ckpt *ck, void **out, size_t *n, rlab_err *err)
{
    if (!out || !n)
        return rlab_errf(err, RLAB_EINVAL, "checkpoint: write_mem: no output");
    *out = NULL;
    *n = 0;
    if (!ck)
        return rlab_errf(err, RLAB_EINVAL, "checkpoint: write_mem: no container");
    ck_plan pl;
    int rc = plan_build(ck, &pl);
    if (rc) {
        plan_clear(&pl);
        return rlab_errf(err, rc, "checkpoint: cannot build the header");
    }
    uint64_t total = 8 + (uint64_t)pl.padded + pl.data_size;
    unsigned char *buf = total <= SIZE_MAX ? rlab_malloc((size_t)total) : NULL;
    if (!buf) {
        plan_clear(&pl);
        return rlab_errf(err, RLAB_ENOMEM, "checkpoint: cannot allocate %llu bytes",
                         (unsigned long long)total);
    }
    ck_sink s = {.buf = buf};
    plan_emit(ck, &pl, &s); /* memory sinks cannot fail */
    plan_clear(&pl);
    *out = buf;
    *n = (size_t)total;
    return RLAB_OK;
}

/* ---- reading -------------------------------------------------------------------------------- */
rlab_ckpt *rlab_ckpt_read(const char *path, rlab_err *err)
{
    rlab_ckpt *ck = NULL;
    if (!path) {
        rlab_errf(err, RLAB_EINVAL, "checkpoint: read: no path");
        return NULL;
    }
    read_file(path, 0, &ck, err);
    return ck;
}

rlab_ckpt *rlab_ckpt_read_mem(const void *buf, size_t n, const char *name, rlab_err *err)
{
    rlab_ckpt *ck = NULL;
    if (!buf && n) {
        rlab_errf(err, RLAB_EINVAL, "checkpoint: read_mem: no buffer");
        return NULL;
    }
    ck_src src = {.mem = buf, .size = n};
    read_ckpt(&src, name ? name : "<memory>", 0, &ck, err);
    return ck;
}

/* ---- one parameter block per file ----------------------------------------------------------- */
int rlab_ckpt_save(const char *path, const rlab_params *p, const rlab_opt *opt, const rlab_kv *meta,
                   int n_meta, rlab_err *err)
{
    rlab_opt *o = (rlab_opt *)(uintptr_t)opt; /* the state accessors are not const */
    const float *m = o ? rlab_opt_state_m(o) : NULL, *v = o ? rlab_opt_state_v(o) : NULL;
    rlab_ckpt *ck = rlab_ckpt_new(err);
    if (!ck)
        return RLAB_ENOMEM;
    int rc = RLAB_OK;
    for (int i = 0; i < n_meta && !rc; i++)
        rc = rlab_ckpt_set_meta(ck, meta[i].key, meta[i].value, err);
    if (!rc && o) {
        char step[32];
        snprintf(step, sizeof step, "%lld", (long long)rlab_opt_steps(o));
        rc = rlab_ckpt_set_meta(ck, "opt.step", step, err);
    }
    if (!rc)
        rc = add_block(ck, p, p->data, NULL, err);
    if (!rc && m)
        rc = add_block(ck, p, m, "opt.m.", err);
    if (!rc && v)
        rc = add_block(ck, p, v, "opt.v.", err);
    if (!rc)
        rc = rlab_ckpt_write(ck, path, err);
    else
        rlab_errf_at(err, rc, path, 0, "cannot build the checkpoint header (%s)",
                     err ? err->msg : rlab_status_name(rc));
    rlab_ckpt_free(ck);
    return rc;
}

int rlab_ckpt_load(const char *path, rlab_params *p, rlab_opt *opt, int strict, rlab_err *err)
{
    rlab_ckpt *ck = NULL;
    int rc = read_file(path, 0, &ck, err);
    if (rc)
        return rc;
    float *state[2] = {opt ? rlab_opt_state_m(opt) : NULL, opt ? rlab_opt_state_v(opt) : NULL};
    const char *prefix[2] = {"opt.m.", "opt.v."};
    int *found = rlab_malloc((3 * (size_t)p->n + 1) * sizeof *found);
    long long step = -1;
    if (!found) {
        rc = rlab_errf_at(err, RLAB_ENOMEM, path, 0, "out of memory");
        goto done;
    }
    /* validate everything */
    rc = check_block(ck, p, NULL, found, err);
    for (int s = 0; s < 2 && !rc; s++)
        if (state[s])
            rc = check_block(ck, p, prefix[s], found + (size_t)(s + 1) * (size_t)p->n, err);
    if (!rc && opt) {
        const char *sv = rlab_ckpt_meta_get(ck, "opt.step");
        char *end = NULL;
        if (sv)
            step = strtoll(sv, &end, 10);
        if (step < 0 || !end || end == sv || *end)
            rc = rlab_errf_at(err, RLAB_ENOTFOUND, path, 0,
                              "no valid optimiser step ('opt.step' in __metadata__)");
    }
    /* optimiser state is not a model tensor: a params-only load may skip it */
    if (!rc && strict)
        rc = check_strict(ck, p, NULL, 1, err);
    /* copy */
    if (!rc) {
        copy_block(ck, p, found, p->data);
        for (int s = 0; s < 2; s++)
            if (state[s])
                copy_block(ck, p, found + (size_t)(s + 1) * (size_t)p->n, state[s]);
        if (opt)
            rlab_opt_set_steps(opt, step);
    }
done:
    rlab_free(found);
    rlab_ckpt_free(ck);
    return rc;
}

int rlab_ckpt_meta(const char *path, const char *key, char *buf, size_t size, rlab_err *err)
{
    rlab_ckpt *ck = NULL;
    int rc = read_file(path, 1, &ck, err);
    if (rc)
        return rc;
    const char *s = rlab_ckpt_meta_get(ck, key);
    if (s) {
        if (size)
            snprintf(buf, size, "%s", s);
    } else {
        rc = rlab_errf_at(err, RLAB_ENOTFOUND, path, 0, "no metadata key '%s'", key);
    }
    rlab_ckpt_free(ck);
    return rc;
}

/* ---- helpers: dtypes and shapes ------------------------------------------------------------- */
static size_t dt_size(rlab_dtype dt)
{
    switch (dt) {
    case RLAB_DT_F32:
    case RLAB_DT_I32:
        return 4;
    case RLAB_DT_I64:
        return 8;
    }
    return 0;
}

static const char *dt_name(rlab_dtype dt)
{
    switch (dt) {
    case RLAB_DT_F32:
        return "F32";
    case RLAB_DT_I32:
        return "I32";
    case RLAB_DT_I64:
        return "I64";
    }
    return "?";
}

/* Byte size of a tensor; EINVAL for a negative dimension or a size over INT64_MAX. */
static int count_bytes(rlab_dtype dt, int ndim, const int64_t *shape, uint64_t *nbytes)
{
    uint64_t n = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0 || __builtin_mul_overflow(n, (uint64_t)shape[d], &n))
            return RLAB_EINVAL;
    }
    if (__builtin_mul_overflow(n, (uint64_t)dt_size(dt), &n) || n > (uint64_t)INT64_MAX)
        return RLAB_EINVAL;
    *nbytes = n;
    return RLAB_OK;
}

static const char *fmt_shape(int ndim, const int64_t *shape, char *buf, size_t size)
{
    size_t k = (size_t)snprintf(buf, size, "[");
    for (int d = 0; d < ndim && k < size; d++)
        k += (size_t)snprintf(buf + k, size - k, d ? ", %lld" : "%lld", (long long)shape[d]);
    if (k < size)
        snprintf(buf + k, size - k, "]");
    return buf;
}

/* ---- helpers: name indexes ------------------------------------------------------------------ */
static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static const char *name_at(const void *base, size_t stride, int i)
{
    return *(char *const *)(const void *)((const char *)base + (size_t)i * stride);
}

/* Index of the entry called name, or -1. */
static int idx_find(const ck_index *ix, const void *base, size_t stride, const char *name)
{
    if (!ix->cap)
        return -1;
    for (size_t h = (size_t)hash_str(name) & (ix->cap - 1);; h = (h + 1) & (ix->cap - 1)) {
        int i = ix->slot[h];
        if (i < 0 || strcmp(name_at(base, stride, i), name) == 0)
            return i;
    }
}

static void idx_place(ck_index *ix, const void *base, size_t stride, int i)
{
    size_t h = (size_t)hash_str(name_at(base, stride, i)) & (ix->cap - 1);
    while (ix->slot[h] >= 0)
        h = (h + 1) & (ix->cap - 1);
    ix->slot[h] = i;
}

static void idx_rebuild(ck_index *ix, const void *base, size_t stride, int n)
{
    for (size_t h = 0; h < ix->cap; h++)
        ix->slot[h] = -1;
    for (int i = 0; i < n; i++)
        idx_place(ix, base, stride, i);
}

/* Room for n entries; entries [0, n - 1) are re-placed when the table grows. */
static int idx_reserve(ck_index *ix, const void *base, size_t stride, int n)
{
    if ((size_t)n * 2 <= ix->cap)
        return RLAB_OK;
    size_t cap = ix->cap ? ix->cap : 16;
    while ((size_t)n * 2 > cap)
        cap *= 2;
    int *slot = rlab_malloc(cap * sizeof *slot);
    if (!slot)
        return RLAB_ENOMEM;
    rlab_free(ix->slot);
    ix->slot = slot;
    ix->cap = cap;
    idx_rebuild(ix, base, stride, n - 1);
    return RLAB_OK;
}

/* Grow an array of entries of size `size` to hold n (doubling). */
static int grow(void **arr, int *cap, int n, size_t size)
{
    if (n <= *cap)
        return RLAB_OK;
    if (n > INT_MAX / 2)
        return RLAB_ENOMEM;
    int c = *cap ? *cap : 8;
    while (c < n)
        c *= 2;
    void *a = rlab_realloc(*arr, (size_t)c * size);
    if (!a)
        return RLAB_ENOMEM;
    *arr = a;
    *cap = c;
    return RLAB_OK;
}

/* ---- helpers: entries ----------------------------------------------------------------------- */
/* Append a validated tensor whose name is not present yet; ck unchanged on ENOMEM. */
static int push_tensor(rlab_ckpt *ck, const char *name, rlab_dtype dt, int ndim,
                       const int64_t *shape, uint64_t nbytes, const void *data)
{
    void *arr = ck->t;
    int rc = grow(&arr, &ck->tcap, ck->nt + 1, sizeof *ck->t);
    ck->t = arr;
    if (rc || idx_reserve(&ck->ti, ck->t, sizeof *ck->t, ck->nt + 1))
        return RLAB_ENOMEM;
    char *nm = rlab_strdup(name);
    if (!nm)
        return RLAB_ENOMEM;
    ck_tensor *t = &ck->t[ck->nt];
    memset(t, 0, sizeof *t);
    t->name = nm;
    t->dt = dt;
    t->ndim = ndim;
    for (int d = 0; d < ndim; d++)
        t->shape[d] = shape[d];
    t->nbytes = nbytes;
    t->data = nbytes ? data : NULL;
    idx_place(&ck->ti, ck->t, sizeof *ck->t, ck->nt);
    ck->nt++;
    return RLAB_OK;
}

/* Drop tensors [n, nt) (the undo of a failed add_params). */
static void truncate_tensors(rlab_ckpt *ck, int n)
{
    if (n >= ck->nt)
        return;
    for (int i = n; i < ck->nt; i++)
        rlab_free(ck->t[i].name);
    ck->nt = n;
    idx_rebuild(&ck->ti, ck->t, sizeof *ck->t, n);
}

static int put_meta(rlab_ckpt *ck, const char *key, const char *value)
{
    int i = idx_find(&ck->mi, ck->m, sizeof *ck->m, key);
    char *v = rlab_strdup(value);
    if (!v)
        return RLAB_ENOMEM;
    if (i >= 0) {
        rlab_free(ck->m[i].value);
        ck->m[i].value = v;
        return RLAB_OK;
    }
    void *arr = ck->m;
    int rc = grow(&arr, &ck->mcap, ck->nm + 1, sizeof *ck->m);
    ck->m = arr;
    char *k = rc ? NULL : rlab_strdup(key);
    if (!k || idx_reserve(&ck->mi, ck->m, sizeof *ck->m, ck->nm + 1)) {
        rlab_free(k);
        rlab_free(v);
        return RLAB_ENOMEM;
    }
    ck->m[ck->nm].key = k;
    ck->m[ck->nm].value = v;
    idx_place(&ck->mi, ck->m, sizeof *ck->m, ck->nm);
    ck->nm++;
    return RLAB_OK;
}

/* Add every tensor of p as "<prefix><name>", its data at the same offset in base as in
 * p->data (base = p->data, or an optimiser moment buffer parallel to it). All or nothing. */
static int add_block(rlab_ckpt *ck, const rlab_params *p, const float *base, const char *prefix,
                     rlab_err *err)
{
    char name[RLAB_CKPT_MAXNAME + 2];
    const int n0 = ck->nt;
    if (!prefix)
        prefix = "";
    for (int i = 0; i < p->n; i++) {
        const rlab_tensor *t = &p->t[i];
        int len = snprintf(name, sizeof name, "%s%s", prefix, t->name);
        int rc = len > RLAB_CKPT_MAXNAME
                     ? rlab_errf(err, RLAB_EINVAL, "checkpoint: tensor name '%s%s' over %d bytes",
                                 prefix, t->name, RLAB_CKPT_MAXNAME)
                     : rlab_ckpt_add(ck, name, RLAB_DT_F32, t->ndim, t->shape,
                                     base + (t->data - p->data), err);
        if (rc) {
            truncate_tensors(ck, n0);
            return rc;
        }
    }
    return RLAB_OK;
}

/* ---- helpers: writing ----------------------------------------------------------------------- */
/* json_object_object_add / json_object_array_add that own v whatever happens (json-c neither
 * takes nor frees it on failure) and treat a failed json_object_new_* (NULL) as failure. */
static int jset(json_object *o, const char *k, json_object *v)
{
    if (!v)
        return -1;
    if (json_object_object_add(o, k, v) != 0) {
        json_object_put(v);
        return -1;
    }
    return 0;
}

static int jpush(json_object *a, json_object *v)
{
    if (!v)
        return -1;
    if (json_object_array_add(a, v) != 0) {
        json_object_put(v);
        return -1;
    }
    return 0;
}

static void plan_clear(ck_plan *pl)
{
    json_object_put(pl->root);
    rlab_free(pl->order);
    memset(pl, 0, sizeof *pl);
}

/* Data order (8-byte types first), offsets and header text; on error the caller clears pl. */
static int plan_build(const rlab_ckpt *ck, ck_plan *pl)
{
    memset(pl, 0, sizeof *pl);
    uint64_t *off = rlab_malloc(((size_t)ck->nt + 1) * sizeof *off);
    pl->order = rlab_malloc(((size_t)ck->nt + 1) * sizeof *pl->order);
    if (!off || !pl->order) {
        rlab_free(off);
        return RLAB_ENOMEM;
    }
    int k = 0;
    uint64_t pos = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < ck->nt; i++) {
            if ((dt_size(ck->t[i].dt) == 8) != (pass == 0))
                continue;
            pl->order[k++] = i;
            off[i] = pos;
            if (__builtin_add_overflow(pos, ck->t[i].nbytes, &pos) || pos > (uint64_t)INT64_MAX) {
                rlab_free(off);
                return RLAB_EINVAL;
            }
        }
    pl->data_size = pos;

    /* each node joins its parent before being filled, so on error freeing root frees all */
    int rc = RLAB_ENOMEM;
    json_object *md = json_object_new_object();
    pl->root = json_object_new_object();
    if (!pl->root) {
        json_object_put(md);
        goto out;
    }
    if (jset(pl->root, "__metadata__", md))
        goto out;
    for (int i = 0; i < ck->nm; i++)
        if (jset(md, ck->m[i].key, json_object_new_string(ck->m[i].value)))
            goto out;
    for (int i = 0; i < ck->nt; i++) {
        const ck_tensor *t = &ck->t[i];
        json_object *e = json_object_new_object();
        if (jset(pl->root, t->name, e) || jset(e, "dtype", json_object_new_string(dt_name(t->dt))))
            goto out;
        json_object *shape = json_object_new_array();
        if (jset(e, "shape", shape))
            goto out;
        for (int d = 0; d < t->ndim; d++)
            if (jpush(shape, json_object_new_int64(t->shape[d])))
                goto out;
        json_object *offs = json_object_new_array();
        if (jset(e, "data_offsets", offs) || jpush(offs, json_object_new_int64((int64_t)off[i])) ||
            jpush(offs, json_object_new_int64((int64_t)(off[i] + t->nbytes))))
            goto out;
    }
    size_t len = 0;
    pl->hdr = json_object_to_json_string_length(pl->root, JSON_C_TO_STRING_PLAIN, &len);
    if (!pl->hdr)
        goto out;
    pl->hlen = len;
    pl->padded = (len + 7) & ~(size_t)7;
    rc = RLAB_OK;
out:
    rlab_free(off);
    return rc;
}

static int sink_put(ck_sink *s, const void *p, size_t n)
{
    if (n == 0)
        return 1;
    if (s->f)
        return fwrite(p, 1, n, s->f) == n;
    memcpy(s->buf + s->pos, p, n);
    s->pos += n;
    return 1;
}

/* Length prefix, header, padding and tensor bytes; 0 on a write error. */
static int plan_emit(const rlab_ckpt *ck, const ck_plan *pl, ck_sink *s)
{
    static const char spaces[8] = "        ";
    unsigned char len8[8];
    for (int b = 0; b < 8; b++)
        len8[b] = (unsigned char)((uint64_t)pl->padded >> (8 * b));
    int ok = sink_put(s, len8, 8) && sink_put(s, pl->hdr, pl->hlen) &&
             sink_put(s, spaces, pl->padded - pl->hlen);
    for (int k = 0; k < ck->nt && ok; k++) {
        const ck_tensor *t = &ck->t[pl->order[k]];
        ok = sink_put(s, t->data, (size_t)t->nbytes);
    }
    return ok;
}

/* ---- helpers: reading ----------------------------------------------------------------------- */
/* Read n bytes at the current position; 0 on a short read. */
static int src_read(ck_src *s, void *dst, size_t n)
{
    if (n == 0)
        return 1;
    if (s->f) {
        if (fread(dst, 1, n, s->f) != n)
            return 0;
    } else {
        if (n > s->size - s->pos)
            return 0;
        memcpy(dst, s->mem + s->pos, n);
    }
    s->pos += n;
    return 1;
}

/* A JSON integer >= 0 (json-c clamps values beyond int64 to INT64_MAX, out of range anyway). */
static int json_nonneg(json_object *v, int64_t *out)
{
    if (!json_object_is_type(v, json_type_int))
        return 0;
    int64_t x = json_object_get_int64(v);
    if (x < 0)
        return 0;
    *out = x;
    return 1;
}

static int span_cmp(const void *a, const void *b)
{
    const ck_span *x = a, *y = b;
    if (x->b != y->b)
        return x->b < y->b ? -1 : 1;
    if (x->e != y->e)
        return x->e < y->e ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

/* Validate one header entry and append it to ck. */
static int read_entry(rlab_ckpt *ck, const char *key, json_object *e, uint64_t data_size,
                      rlab_err *err)
{
    const char *f = ck->src;
    size_t len = strlen(key);
    if (len == 0 || len > RLAB_CKPT_MAXNAME)
        return rlab_errf_at(err, RLAB_EFORMAT, f, 0,
                            "tensor name '%.40s%s' has %zu bytes (1 to %d allowed)", key,
                            len > 40 ? "..." : "", len, RLAB_CKPT_MAXNAME);
    if (!json_object_is_type(e, json_type_object))
        return rlab_errf_at(err, RLAB_EFORMAT, f, 0, "tensor '%s': entry is not an object", key);
    json_object *dt, *sh, *of;
    if (!json_object_object_get_ex(e, "dtype", &dt) || !json_object_is_type(dt, json_type_string))
        return rlab_errf_at(err, RLAB_EFORMAT, f, 0, "tensor '%s': no dtype", key);
    const char *dts = json_object_get_string(dt);
    rlab_dtype type = strcmp(dts, "F32") == 0   ? RLAB_DT_F32
                      : strcmp(dts, "I32") == 0 ? RLAB_DT_I32
                      : strcmp(dts, "I64") == 0 ? RLAB_DT_I64
                                                : (rlab_dtype)0;
    if (!type)
        return rlab_errf_at(err, RLAB_EFORMAT, f, 0,
                            "tensor '%s': dtype %.32s is not supported (F32, I32 or I64)", key,
                            dts);
    if (!json_object_object_get_ex(e, "shape", &sh) || !json_object_is_type(sh, json_type_array))
        return rlab_errf_at(err, RLAB_EFORMAT, f, 0, "tensor '%s': no shape", key);
    size_t nd = json_object_array_length(sh);
    if (nd > RLAB_CKPT_MAXDIM)
        return rlab_errf_at(err, RLAB_EFORMAT, f, 0, "tensor '%s': %zu dimensions, at most %d", key,
                            nd, RLAB_CKPT_MAXDIM);
    int64_t shape[RLAB_CKPT_MAXDIM];
    for (size_t d = 0; d < nd; d++)
        if (!json_nonneg(json_object_array_get_idx(sh, d), &shape[d]))
            return rlab_errf_at(err, RLAB_EFORMAT, f, 0,
                                "tensor '%s': shape is not a list of integers >= 0", key);
    char shs[160];
    uint64_t nbytes;
    if (count_bytes(type, (int)nd, shape, &nbytes))
        return rlab_errf_at(err, RLAB_EFORMAT, f, 0, "tensor '%s': shape %s is too large", key,
                            fmt_shape((int)nd, shape, shs, sizeof shs));
    int64_t b, en;
    if (!json_object_object_get_ex(e, "data_offsets", &of))
        return rlab_errf_at(err, RLAB_EFORMAT, f, 0, "tensor '%s': no data_offsets", key);
    if (!json_object_is_type(of, json_type_array) || json_object_array_length(of) != 2 ||
        !json_nonneg(json_object_array_get_idx(of, 0), &b) ||
        !json_nonneg(json_object_array_get_idx(of, 1), &en))
        return rlab_errf_at(err, RLAB_EFORMAT, f, 0,
                            "tensor '%s': data_offsets is not [begin, end] (integers >= 0)", key);
    if (en < b)
        return rlab_errf_at(err, RLAB_EFORMAT, f, 0,
                            "tensor '%s': data_offsets [%lld, %lld] end before they begin", key,
                            (long long)b, (long long)en);
    if ((uint64_t)(en - b) != nbytes)
        return rlab_errf_at(err, RLAB_EFORMAT, f, 0,
                            "tensor '%s': data_offsets [%lld, %lld] hold %lld bytes, shape %s of "
                            "%s needs %llu",
                            key, (long long)b, (long long)en, (long long)(en - b),
                            fmt_shape((int)nd, shape, shs, sizeof shs), dt_name(type),
                            (unsigned long long)nbytes);
    if ((uint64_t)en > data_size)
        return rlab_errf_at(err, RLAB_EFORMAT, f, 0,
                            "truncated: tensor '%s' ends at data byte %lld but the file holds "
                            "%llu data bytes",
                            key, (long long)en, (unsigned long long)data_size);
    if (idx_find(&ck->ti, ck->t, sizeof *ck->t, key) >= 0) /* json-c merges duplicate keys */
        return rlab_errf_at(err, RLAB_EFORMAT, f, 0, "duplicate tensor '%s'", key);
    if (push_tensor(ck, key, type, (int)nd, shape, nbytes, NULL))
        return rlab_errf_at(err, RLAB_ENOMEM, f, 0, "out of memory");
    ck->t[ck->nt - 1].off = (uint64_t)b;
    return RLAB_OK;
}

static int read_metadata(rlab_ckpt *ck, json_object *md, rlab_err *err)
{
    if (json_object_is_type(md, json_type_null))
        return RLAB_OK;
    if (!json_object_is_type(md, json_type_object))
        return rlab_errf_at(err, RLAB_EFORMAT, ck->src, 0, "__metadata__ is not an object");
    json_object_object_foreach(md, key, val)
    {
        if (!json_object_is_type(val, json_type_string))
            return rlab_errf_at(err, RLAB_EFORMAT, ck->src, 0,
                                "__metadata__ '%s' is %s, a string expected", key,
                                json_type_to_name(json_object_get_type(val)));
        const char *s = json_object_get_string(val);
        if ((size_t)json_object_get_string_len(val) != strlen(s))
            return rlab_errf_at(err, RLAB_EFORMAT, ck->src, 0,
                                "__metadata__ '%s' holds a NUL character", key);
        if (put_meta(ck, key, s))
            return rlab_errf_at(err, RLAB_ENOMEM, ck->src, 0, "out of memory");
    }
    return RLAB_OK;
}

/* The tensors must tile the data section: sorted by offset, each begins where the previous
 * ends, the first at 0 and the last at the end of the file. Fills spans in data order. */
static int check_tiling(const rlab_ckpt *ck, ck_span *spans, uint64_t data_size, rlab_err *err)
{
    for (int i = 0; i < ck->nt; i++)
        spans[i] = (ck_span){ck->t[i].off, ck->t[i].off + ck->t[i].nbytes, i};
    qsort(spans, (size_t)ck->nt, sizeof *spans, span_cmp);
    uint64_t pos = 0;
    for (int k = 0; k < ck->nt; k++) {
        const char *nm = ck->t[spans[k].i].name;
        if (spans[k].b < pos)
            return rlab_errf_at(err, RLAB_EFORMAT, ck->src, 0,
                                "tensor '%s' (data_offsets [%llu, %llu]) overlaps tensor '%s' "
                                "(ends at %llu)",
                                nm, (unsigned long long)spans[k].b, (unsigned long long)spans[k].e,
                                ck->t[spans[k - 1].i].name, (unsigned long long)pos);
        if (spans[k].b > pos)
            return rlab_errf_at(err, RLAB_EFORMAT, ck->src, 0,
                                "data bytes [%llu, %llu) belong to no tensor (before tensor '%s')",
                                (unsigned long long)pos, (unsigned long long)spans[k].b, nm);
        pos = spans[k].e;
    }
    if (pos != data_size)
        return rlab_errf_at(err, RLAB_EFORMAT, ck->src, 0,
                            "%llu trailing data bytes after the last tensor (tensors "
                            "end at data byte %llu of %llu)",
                            (unsigned long long)(data_size - pos), (unsigned long long)pos,
                            (unsigned long long)data_size);
    return RLAB_OK;
}

static int is_json_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Parse and validate the header at src (positioned at 0), then, unless header_only, read every
 * tensor's bytes into 64-byte aligned slots of one blob. *out is set only on success. */
static int read_ckpt(ck_src *src, const char *name, int header_only, rlab_ckpt **out, rlab_err *err)
{
    const uint64_t size = src->size;
    unsigned char len8[8];
    if (size < 8 || !src_read(src, len8, 8))
        return rlab_errf_at(err, RLAB_EFORMAT, name, 0,
                            "truncated: %llu bytes, too short for a safetensors header",
                            (unsigned long long)size);
    uint64_t n = 0;
    for (int b = 7; b >= 0; b--)
        n = (n << 8) | len8[b];
    if (n > size - 8)
        return rlab_errf_at(err, RLAB_EFORMAT, name, 0,
                            "truncated or not safetensors: header length %llu, file size %llu",
                            (unsigned long long)n, (unsigned long long)size);
    if (n > MAX_HEADER)
        return rlab_errf_at(err, RLAB_EFORMAT, name, 0,
                            "header length %llu is over the %llu-byte limit", (unsigned long long)n,
                            (unsigned long long)MAX_HEADER);
    const uint64_t data_size = size - 8 - n;

    int rc = RLAB_OK;
    rlab_ckpt *ck = NULL;
    json_object *hdr = NULL;
    ck_span *spans = NULL;
    json_tokener *tok = NULL;
    char *buf = rlab_malloc((size_t)n + 1);
    if (!buf) {
        rc = rlab_errf_at(err, RLAB_ENOMEM, name, 0, "out of memory for the header");
        goto done;
    }
    if (!src_read(src, buf, (size_t)n)) {
        rc = rlab_errf_at(err, RLAB_EIO, name, 0, "cannot read the header");
        goto done;
    }
    buf[n] = '\0';
    tok = json_tokener_new();
    if (!tok) {
        rc = rlab_errf_at(err, RLAB_ENOMEM, name, 0, "out of memory for the JSON parser");
        goto done;
    }
    hdr = json_tokener_parse_ex(tok, buf, (int)n);
    if (!hdr) {
        enum json_tokener_error je = json_tokener_get_error(tok);
        rc = rlab_errf_at(err, RLAB_EFORMAT, name, 0, "header is not a JSON object (%s)",
                          je == json_tokener_continue ? "unexpected end of the header"
                                                      : json_tokener_error_desc(je));
        goto done;
    }
    if (!json_object_is_type(hdr, json_type_object)) {
        rc = rlab_errf_at(err, RLAB_EFORMAT, name, 0, "header is not a JSON object (it is %s)",
                          json_type_to_name(json_object_get_type(hdr)));
        goto done;
    }
    for (size_t k = json_tokener_get_parse_end(tok); k < n; k++)
        if (!is_json_space((unsigned char)buf[k])) {
            rc = rlab_errf_at(err, RLAB_EFORMAT, name, 0,
                              "header has bytes after its JSON object (at header byte %zu)", k);
            goto done;
        }
    rlab_free(buf);
    buf = NULL;
    json_tokener_free(tok);
    tok = NULL;

    ck = rlab_ckpt_new(err);
    if (!ck) {
        rc = RLAB_ENOMEM;
        goto done;
    }
    snprintf(ck->src, sizeof ck->src, "%s", name);
    json_object_object_foreach(hdr, key, val)
    {
        rc = strcmp(key, "__metadata__") == 0 ? read_metadata(ck, val, err)
                                              : read_entry(ck, key, val, data_size, err);
        if (rc)
            goto done;
    }
    json_object_put(hdr);
    hdr = NULL;
    spans = rlab_malloc(((size_t)ck->nt + 1) * sizeof *spans);
    if (!spans) {
        rc = rlab_errf_at(err, RLAB_ENOMEM, name, 0, "out of memory");
        goto done;
    }
    rc = check_tiling(ck, spans, data_size, err);
    if (rc || header_only)
        goto done;

    /* every tensor in its own aligned slot, read in data order (the file is contiguous) */
    uint64_t total = 0;
    for (int i = 0; i < ck->nt; i++)
        total += (ck->t[i].nbytes + SLOT_ALIGN - 1) & ~(uint64_t)(SLOT_ALIGN - 1);
    if (total) {
        ck->blob = total <= SIZE_MAX ? rlab_malloc_aligned((size_t)total) : NULL;
        if (!ck->blob) {
            rc = rlab_errf_at(err, RLAB_ENOMEM, name, 0, "out of memory for %llu tensor bytes",
                              (unsigned long long)total);
            goto done;
        }
    }
    unsigned char *slot = ck->blob;
    for (int k = 0; k < ck->nt; k++) {
        ck_tensor *t = &ck->t[spans[k].i];
        if (!t->nbytes)
            continue;
        if (!src_read(src, slot, (size_t)t->nbytes)) {
            rc = rlab_errf_at(err, RLAB_EIO, name, 0, "tensor '%s': read failed", t->name);
            goto done;
        }
        t->data = slot;
        slot += (t->nbytes + SLOT_ALIGN - 1) & ~(uint64_t)(SLOT_ALIGN - 1);
    }
done:
    rlab_free(buf);
    if (tok)
        json_tokener_free(tok);
    json_object_put(hdr);
    rlab_free(spans);
    if (rc) {
        rlab_ckpt_free(ck);
        return rc;
    }
    *out = ck;
    return RLAB_OK;
}

static int read_file(const char *path, int header_only, rlab_ckpt **out, rlab_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return rlab_errf_at(err, errno == ENOENT ? RLAB_ENOTFOUND : RLAB_EIO, path, 0,
                            "cannot open: %s", strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0) {
        int e = errno;
        fclose(f);
        return rlab_errf_at(err, RLAB_EIO, path, 0, "cannot stat: %s", strerror(e));
    }
    ck_src src = {.f = f, .size = (uint64_t)st.st_size};
    int rc = read_ckpt(&src, path, header_only, out, err);
    fclose(f);
    return rc;
}

/* ---- helpers: parameter blocks -------------------------------------------------------------- */
/* Every tensor of p as "<prefix><name>": present, F32, same shape; found[i] its index in ck. */
static int check_block(const rlab_ckpt *ck, const rlab_params *p, const char *prefix, int *found,
                       rlab_err *err)
{
    char name[RLAB_CKPT_MAXNAME + 2], got[160], want[160];
    for (int i = 0; i < p->n; i++) {
        const rlab_tensor *pt = &p->t[i];
        snprintf(name, sizeof name, "%s%s", prefix ? prefix : "", pt->name);
        int k = idx_find(&ck->ti, ck->t, sizeof *ck->t, name);
        if (k < 0)
            return rlab_errf_at(err, RLAB_ENOTFOUND, ck->src, 0, "tensor '%s' not found", name);
        const ck_tensor *t = &ck->t[k];
        if (t->dt != RLAB_DT_F32)
            return rlab_errf_at(err, RLAB_EFORMAT, ck->src, 0,
                                "tensor '%s': dtype %s, F32 expected", name, dt_name(t->dt));
        int same = t->ndim == pt->ndim;
        for (int d = 0; d < t->ndim && same; d++)
            same = t->shape[d] == pt->shape[d];
        if (!same)
            return rlab_errf_at(err, RLAB_EINVAL, ck->src, 0,
                                "tensor '%s': shape %s in the file, %s expected", name,
                                fmt_shape(t->ndim, t->shape, got, sizeof got),
                                fmt_shape(pt->ndim, pt->shape, want, sizeof want));
        found[i] = k;
    }
    return RLAB_OK;
}

/* No tensor "<prefix>x" of ck with x not a parameter of p ("opt.m.*" / "opt.v.*" skipped when
 * skip_opt). */
static int check_strict(const rlab_ckpt *ck, rlab_params *p, const char *prefix, int skip_opt,
                        rlab_err *err)
{
    size_t plen = prefix ? strlen(prefix) : 0;
    for (int i = 0; i < ck->nt; i++) {
        const char *nm = ck->t[i].name;
        if (plen && strncmp(nm, prefix, plen) != 0)
            continue;
        if (skip_opt && (strncmp(nm, "opt.m.", 6) == 0 || strncmp(nm, "opt.v.", 6) == 0))
            continue;
        if (!rlab_params_get(p, nm + plen))
            return rlab_errf_at(err, RLAB_EINVAL, ck->src, 0,
                                "tensor '%s' is not a parameter of the model (strict load)", nm);
    }
    return RLAB_OK;
}

static void copy_block(const rlab_ckpt *ck, const rlab_params *p, const int *found, float *base)
{
    for (int i = 0; i < p->n; i++) {
        const ck_tensor *t = &ck->t[found[i]];
        if (t->nbytes)
            memcpy(base + (p->t[i].data - p->data), t->data, (size_t)t->nbytes);
    }
}
