/*
 * Test organization (core/tensor/checkpoint: the typed-tensor container rlab_ckpt):
 *   ckpt.typed.*    round trips of F32 / I32 / I64 tensors with a 0-element tensor and 0-dim
 *                   scalars; the byte layout (8-byte padded header, 8-byte types first, file
 *                   size); tensors read are 64-byte aligned
 *   ckpt.meta.*     metadata with JSON-special characters and UTF-8, replacing a key, order
 *   ckpt.add.*      refused adds (duplicate, bad name / dtype / shape / data), add_params all
 *                   or nothing
 *   ckpt.tensor.*   lookups: wrong dtype (EFORMAT) and missing tensor (ENOTFOUND) messages
 *   ckpt.params.*   rlab_ckpt_get_params: prefix, strict / non-strict, shape / dtype / missing
 *                   errors leaving the block untouched
 *   ckpt.compat.*   files of the old rlab_ckpt_save read by rlab_ckpt_read, and files of
 *                   rlab_ckpt_write loaded by rlab_ckpt_load / rlab_ckpt_meta
 *   ckpt.bad.*      bad files, read from disk and from memory: truncated, header length past
 *                   the end or over the limit, dtype BF16, overlapping / backwards / gapped /
 *                   mis-sized offsets, trailing bytes, non-object header, missing fields; each
 *                   error names the file (or the memory buffer's name) and the tensor
 *   ckpt.mem.*      rlab_ckpt_write_mem gives the bytes of rlab_ckpt_write; read_mem
 *   ckpt.io.*       unwritable path (EIO, no temporary left), missing file (ENOTFOUND)
 *   ckpt.allocfail.* every allocation of a write / read / load scenario failing in turn
 *                   (no crash; the valgrind / ASan runs check for leaks)
 */
#include "harness.h"
#include "tensor/checkpoint.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* exact comparisons are intended here: copies and hand-picked values are exact */
#pragma GCC diagnostic ignored "-Wfloat-equal"

/* ---- helpers ----------------------------------------------------------------------------------
 */
static const char *tmp_path(const char *name)
{
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", rlab_test_tmpdir(), name);
    return buf[k];
}

static rlab_params *new_params(uint64_t seed, int64_t d0, int64_t d1)
{
    rlab_param_spec s[3] = {{"blocks.0.w", 2, {d0, d1}, RLAB_INIT_NORMAL, 1.0f},
                            {"blocks.0.b", 1, {5}, RLAB_INIT_NORMAL, 1.0f},
                            {"emb", 3, {2, 3, 2}, RLAB_INIT_UNIFORM, 1.0f}};
    rlab_err err = {0};
    rlab_rng rng;
    rlab_rng_seed(&rng, seed);
    rlab_params *p = rlab_params_new(s, 3, &rng, &err);
    CHECK_MSG(p != NULL, "params: %s", err.msg);
    return p;
}

static void put_u64(unsigned char *b, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_u64(const unsigned char *b)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | b[i];
    return v;
}

/* A file as any writer could produce it: length prefix, the literal header, data bytes. */
static size_t make_raw(unsigned char *out, size_t cap, const char *hdr, const void *data,
                       size_t nbytes)
{
    size_t n = strlen(hdr);
    CHECK(8 + n + nbytes <= cap);
    put_u64(out, n);
    memcpy(out + 8, hdr, n);
    if (nbytes)
        memcpy(out + 8 + n, data, nbytes);
    return 8 + n + nbytes;
}

static void write_bytes(const char *path, const void *buf, size_t n)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    CHECK(fwrite(buf, 1, n, f) == n);
    fclose(f);
}

static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)size + 1);
    CHECK(buf && fread(buf, 1, (size_t)size, f) == (size_t)size);
    fclose(f);
    *n = (size_t)size;
    return buf;
}

/* The bytes must be refused, from a file and from memory, with code and every needle in the
 * message, which starts with the file's (or the buffer's) name. */
static void expect_bad_bytes(const void *buf, size_t n, int code, const char *n1, const char *n2)
{
    const char *path = tmp_path("bad.safetensors");
    write_bytes(path, buf, n);
    rlab_err err = {0};
    rlab_ckpt *ck = rlab_ckpt_read(path, &err);
    CHECK_MSG(ck == NULL, "%s: accepted, %s expected", rlab_test_current(), n1);
    rlab_ckpt_free(ck);
    CHECK_EQ_INT(err.code, code);
    CHECK_MSG(strncmp(err.msg, path, strlen(path)) == 0, "message '%s' does not name the file",
              err.msg);
    CHECK_STR_CONTAINS(err.msg, n1);
    if (n2)
        CHECK_STR_CONTAINS(err.msg, n2);
    rlab_err_clear(&err);
    ck = rlab_ckpt_read_mem(buf, n, "blob#7", &err);
    CHECK(ck == NULL);
    rlab_ckpt_free(ck);
    CHECK_EQ_INT(err.code, code);
    CHECK_MSG(strncmp(err.msg, "blob#7: ", 8) == 0, "message '%s' does not name the buffer",
              err.msg);
    CHECK_STR_CONTAINS(err.msg, n1);
    /* the header-only reader behind rlab_ckpt_meta refuses it too (unless the data is all
     * that is wrong, which it does not read: not the case of any file passed here) */
    char v[8];
    CHECK(rlab_ckpt_meta(path, "k", v, sizeof v, &err) != RLAB_OK);
}

static void expect_bad(const char *hdr, const void *data, size_t nbytes, int code, const char *n1,
                       const char *n2)
{
    unsigned char buf[4096];
    size_t n = make_raw(buf, sizeof buf, hdr, data, nbytes);
    expect_bad_bytes(buf, n, code, n1, n2);
}

static rlab_ckpt *read_ok(const char *path)
{
    rlab_err err = {0};
    rlab_ckpt *ck = rlab_ckpt_read(path, &err);
    CHECK_MSG(ck != NULL, "read: %s", err.msg);
    return ck;
}

static rlab_ckpt *read_mem_ok(const void *buf, size_t n)
{
    rlab_err err = {0};
    rlab_ckpt *ck = rlab_ckpt_read_mem(buf, n, "mem", &err);
    CHECK_MSG(ck != NULL, "read_mem: %s", err.msg);
    return ck;
}

/* ---- typed round trips -------------------------------------------------------------------------
 */
static const float f32v[6] = {1.5f, -2.0f, 0.25f, 3e-38f, -0.0f, 65504.0f};
static const int32_t i32v[3] = {7, -1, INT32_MAX};
static const int64_t i64v[4] = {0, -5, INT64_MAX, INT64_MIN};
static const int64_t scalar = 42;
static const float fscalar = -3.5f;

static rlab_ckpt *typed_ckpt(void)
{
    rlab_err err = {0};
    rlab_ckpt *ck = rlab_ckpt_new(&err);
    CHECK(ck != NULL);
    CHECK_EQ_INT(rlab_ckpt_add(ck, "w", RLAB_DT_F32, 2, (int64_t[]){2, 3}, f32v, &err), RLAB_OK);
    /* 12 bytes: an I64 after it would be misaligned unless the writer puts 8-byte types first */
    CHECK_EQ_INT(rlab_ckpt_add(ck, "ids", RLAB_DT_I32, 1, (int64_t[]){3}, i32v, &err), RLAB_OK);
    CHECK_EQ_INT(rlab_ckpt_add(ck, "hist.indptr", RLAB_DT_I64, 2, (int64_t[]){2, 2}, i64v, &err),
                 RLAB_OK);
    CHECK_EQ_INT(rlab_ckpt_add(ck, "empty", RLAB_DT_F32, 2, (int64_t[]){0, 5}, NULL, &err),
                 RLAB_OK);
    CHECK_EQ_INT(rlab_ckpt_add(ck, "n_users", RLAB_DT_I64, 0, NULL, &scalar, &err), RLAB_OK);
    CHECK_EQ_INT(rlab_ckpt_add(ck, "temp", RLAB_DT_F32, 0, NULL, &fscalar, &err), RLAB_OK);
    CHECK_EQ_INT(rlab_ckpt_set_meta(ck, "reclab.kind", "test", &err), RLAB_OK);
    return ck;
}

static void check_typed(const rlab_ckpt *ck)
{
    static const char *names[6] = {"w", "ids", "hist.indptr", "empty", "n_users", "temp"};
    rlab_err err = {0};
    CHECK_EQ_INT(rlab_ckpt_tensor_count(ck), 6);
    for (int i = 0; i < 6; i++)
        CHECK(strcmp(rlab_ckpt_tensor_name(ck, i), names[i]) == 0);
    CHECK(rlab_ckpt_tensor_name(ck, 6) == NULL && rlab_ckpt_tensor_name(ck, -1) == NULL);
    int nd = -1;
    int64_t sh[RLAB_CKPT_MAXDIM];
    const float *w = rlab_ckpt_tensor(ck, "w", RLAB_DT_F32, &nd, sh, &err);
    CHECK(w && nd == 2 && sh[0] == 2 && sh[1] == 3);
    CHECK(w && memcmp(w, f32v, sizeof f32v) == 0); /* bit-exact, -0.0f included */
    const int32_t *ids = rlab_ckpt_tensor(ck, "ids", RLAB_DT_I32, &nd, sh, &err);
    CHECK(ids && nd == 1 && sh[0] == 3 && memcmp(ids, i32v, sizeof i32v) == 0);
    const int64_t *ip = rlab_ckpt_tensor(ck, "hist.indptr", RLAB_DT_I64, &nd, sh, &err);
    CHECK(ip && nd == 2 && sh[0] == 2 && sh[1] == 2 && memcmp(ip, i64v, sizeof i64v) == 0);
    const float *e = rlab_ckpt_tensor(ck, "empty", RLAB_DT_F32, &nd, sh, &err);
    CHECK(e != NULL); /* a 0-element tensor still has a (dummy) data pointer */
    CHECK(nd == 2 && sh[0] == 0 && sh[1] == 5);
    nd = -1;
    const int64_t *s = rlab_ckpt_tensor(ck, "n_users", RLAB_DT_I64, &nd, NULL, &err);
    CHECK(s && nd == 0 && *s == 42);
    const float *fs = rlab_ckpt_tensor(ck, "temp", RLAB_DT_F32, NULL, NULL, &err);
    CHECK(fs && *fs == -3.5f);
    CHECK(strcmp(rlab_ckpt_meta_get(ck, "reclab.kind"), "test") == 0);
}

static void t_typed_roundtrip(void)
{
    const char *path = tmp_path("typed.safetensors");
    rlab_err err = {0};
    rlab_ckpt *ck = typed_ckpt();
    check_typed(ck); /* lookups work on a container being built */
    CHECK_EQ_INT(rlab_ckpt_write(ck, path, &err), RLAB_OK);
    rlab_ckpt_free(ck);
    rlab_ckpt *in = read_ok(path);
    check_typed(in);
    /* tensors read sit in 64-byte aligned slots whatever their offset in the file */
    const char *aligned[3] = {"w", "ids", "hist.indptr"};
    for (int i = 0; i < 3; i++) {
        const void *d = rlab_ckpt_tensor(in, aligned[i],
                                         i == 0   ? RLAB_DT_F32
                                         : i == 1 ? RLAB_DT_I32
                                                  : RLAB_DT_I64,
                                         NULL, NULL, &err);
        CHECK(((uintptr_t)d & 63) == 0);
    }
    /* a container read can be written again, unchanged */
    const char *p2 = tmp_path("typed2.safetensors");
    CHECK_EQ_INT(rlab_ckpt_write(in, p2, &err), RLAB_OK);
    rlab_ckpt_free(in);
    size_t n1, n2;
    unsigned char *b1 = slurp(path, &n1), *b2 = slurp(p2, &n2);
    CHECK(n1 == n2 && memcmp(b1, b2, n1) == 0);
    free(b1);
    free(b2);
}

static void t_typed_layout(void)
{
    const char *path = tmp_path("layout.safetensors");
    rlab_err err = {0};
    rlab_ckpt *ck = typed_ckpt();
    CHECK_EQ_INT(rlab_ckpt_write(ck, path, &err), RLAB_OK);
    rlab_ckpt_free(ck);
    size_t n;
    unsigned char *b = slurp(path, &n);
    uint64_t h = get_u64(b);
    CHECK(h % 8 == 0);
    const size_t data = sizeof f32v + sizeof i32v + sizeof i64v + sizeof scalar + sizeof fscalar;
    CHECK_EQ_INT(n, 8 + h + data);
    /* header: __metadata__ first, tensors in the order added, space padding */
    const char *start = "{\"__metadata__\":{\"reclab.kind\":\"test\"},\"w\":";
    CHECK(memcmp(b + 8, start, strlen(start)) == 0);
    CHECK(b[8 + h - 1] == '}' || b[8 + h - 1] == ' ');
    /* data: the I64 tensors first (hist.indptr, then n_users), then F32 / I32 in order */
    int64_t first[5];
    memcpy(first, b + 8 + h, sizeof first);
    CHECK(memcmp(first, i64v, sizeof i64v) == 0 && first[4] == 42);
    CHECK(memcmp(b + 8 + h + 40, f32v, sizeof f32v) == 0);
    CHECK(memcmp(b + 8 + h + 40 + 24, i32v, sizeof i32v) == 0);
    char hdr[1024];
    CHECK(h < sizeof hdr);
    memcpy(hdr, b + 8, h);
    hdr[h] = '\0';
    CHECK_STR_CONTAINS(hdr, "\"hist.indptr\":{\"dtype\":\"I64\",\"shape\":[2,2],"
                            "\"data_offsets\":[0,32]}");
    CHECK_STR_CONTAINS(hdr,
                       "\"n_users\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[32,40]}");
    CHECK_STR_CONTAINS(hdr,
                       "\"empty\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[76,76]}");
    free(b);
}

/* ---- metadata ------------------------------------------------------------------------------- */
static void t_meta_escape(void)
{
    static const char *kv[][2] = {
        {"quote\"key", "say \"hi\""},
        {"back\\slash", "C:\\path\\to\\x"},
        {"lines", "one\ntwo\r\nthree\tfour"},
        {"utf8", "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x8e\xac"}, /* café 日本 🎬 */
        {"ctrl", "\x01\x1f/</script>"},
        {"empty", ""},
        {"", "empty key"},
    };
    const int n = (int)(sizeof kv / sizeof kv[0]);
    const char *path = tmp_path("meta.safetensors");
    rlab_err err = {0};
    rlab_ckpt *ck = rlab_ckpt_new(&err);
    for (int i = 0; i < n; i++)
        CHECK_EQ_INT(rlab_ckpt_set_meta(ck, kv[i][0], kv[i][1], &err), RLAB_OK);
    CHECK_EQ_INT(rlab_ckpt_write(ck, path, &err), RLAB_OK);
    void *mem;
    size_t mn;
    CHECK_EQ_INT(rlab_ckpt_write_mem(ck, &mem, &mn, &err), RLAB_OK);
    rlab_ckpt_free(ck);
    rlab_ckpt *in[2] = {read_ok(path), read_mem_ok(mem, mn)};
    for (int r = 0; r < 2; r++) {
        CHECK_EQ_INT(rlab_ckpt_meta_count(in[r]), n);
        CHECK_EQ_INT(rlab_ckpt_tensor_count(in[r]), 0);
        for (int i = 0; i < n; i++) {
            CHECK(strcmp(rlab_ckpt_meta_key(in[r], i), kv[i][0]) == 0); /* file order */
            const char *v = rlab_ckpt_meta_get(in[r], kv[i][0]);
            CHECK_MSG(v && strcmp(v, kv[i][1]) == 0, "key %d: got '%s'", i, v ? v : "(null)");
        }
        CHECK(rlab_ckpt_meta_get(in[r], "nope") == NULL);
        CHECK(rlab_ckpt_meta_key(in[r], n) == NULL);
        rlab_ckpt_free(in[r]);
    }
    rlab_free(mem);
    /* the old single-key reader sees the same values */
    char buf[64];
    CHECK_EQ_INT(rlab_ckpt_meta(path, "utf8", buf, sizeof buf, &err), RLAB_OK);
    CHECK(strcmp(buf, kv[3][1]) == 0);
    CHECK_EQ_INT(rlab_ckpt_meta(path, "quote\"key", buf, sizeof buf, &err), RLAB_OK);
    CHECK(strcmp(buf, "say \"hi\"") == 0);
}

static void t_meta_replace(void)
{
    const char *path = tmp_path("replace.safetensors");
    rlab_err err = {0};
    rlab_ckpt *ck = rlab_ckpt_new(&err);
    CHECK_EQ_INT(rlab_ckpt_set_meta(ck, "epoch", "1", &err), RLAB_OK);
    CHECK_EQ_INT(rlab_ckpt_set_meta(ck, "model", "sasrec", &err), RLAB_OK);
    CHECK_EQ_INT(rlab_ckpt_set_meta(ck, "epoch", "2", &err), RLAB_OK);
    CHECK_EQ_INT(rlab_ckpt_meta_count(ck), 2);
    CHECK(strcmp(rlab_ckpt_meta_key(ck, 0), "epoch") == 0); /* keeps its position */
    CHECK(strcmp(rlab_ckpt_meta_get(ck, "epoch"), "2") == 0);
    /* many keys: the index grows and every key stays reachable */
    char k[16], v[16];
    for (int i = 0; i < 100; i++) {
        snprintf(k, sizeof k, "k%d", i);
        snprintf(v, sizeof v, "v%d", i);
        CHECK_EQ_INT(rlab_ckpt_set_meta(ck, k, v, &err), RLAB_OK);
    }
    CHECK_EQ_INT(rlab_ckpt_set_meta(ck, "k50", "fifty", &err), RLAB_OK);
    CHECK_EQ_INT(rlab_ckpt_write(ck, path, &err), RLAB_OK);
    rlab_ckpt_free(ck);
    rlab_ckpt *in = read_ok(path);
    CHECK_EQ_INT(rlab_ckpt_meta_count(in), 102);
    CHECK(strcmp(rlab_ckpt_meta_get(in, "epoch"), "2") == 0);
    CHECK(strcmp(rlab_ckpt_meta_key(in, 1), "model") == 0);
    CHECK(strcmp(rlab_ckpt_meta_get(in, "k50"), "fifty") == 0);
    CHECK(strcmp(rlab_ckpt_meta_get(in, "k99"), "v99") == 0);
    CHECK(strcmp(rlab_ckpt_meta_key(in, 101), "k99") == 0);
    /* a container read can be changed: set again, then lookups see the new value */
    CHECK_EQ_INT(rlab_ckpt_set_meta(in, "model", "bpr", &err), RLAB_OK);
    CHECK(strcmp(rlab_ckpt_meta_get(in, "model"), "bpr") == 0);
    rlab_ckpt_free(in);
}

/* ---- refused adds --------------------------------------------------------------------------- */
static void t_add_errors(void)
{
    rlab_err err = {0};
    rlab_ckpt *ck = rlab_ckpt_new(&err);
    float x[4] = {1, 2, 3, 4};
    CHECK_EQ_INT(rlab_ckpt_add(ck, "w", RLAB_DT_F32, 1, (int64_t[]){4}, x, &err), RLAB_OK);
    CHECK_EQ_INT(rlab_ckpt_add(ck, "w", RLAB_DT_I32, 1, (int64_t[]){4}, x, &err), RLAB_EINVAL);
    CHECK_STR_CONTAINS(err.msg, "duplicate tensor 'w'");
    CHECK_EQ_INT(rlab_ckpt_add(ck, "", RLAB_DT_F32, 1, (int64_t[]){4}, x, &err), RLAB_EINVAL);
    char name[300];
    memset(name, 'n', sizeof name);
    name[256] = '\0'; /* 256 bytes: one too many */
    CHECK_EQ_INT(rlab_ckpt_add(ck, name, RLAB_DT_F32, 1, (int64_t[]){4}, x, &err), RLAB_EINVAL);
    CHECK_STR_CONTAINS(err.msg, "256 bytes");
    name[255] = '\0';
    CHECK_EQ_INT(rlab_ckpt_add(ck, name, RLAB_DT_F32, 1, (int64_t[]){4}, x, &err), RLAB_OK);
    CHECK_EQ_INT(rlab_ckpt_add(ck, "__metadata__", RLAB_DT_F32, 1, (int64_t[]){4}, x, &err),
                 RLAB_EINVAL);
    CHECK_EQ_INT(rlab_ckpt_add(ck, "d", (rlab_dtype)9, 1, (int64_t[]){4}, x, &err), RLAB_EINVAL);
    int64_t sh9[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    CHECK_EQ_INT(rlab_ckpt_add(ck, "d", RLAB_DT_F32, 9, sh9, x, &err), RLAB_EINVAL);
    CHECK_EQ_INT(rlab_ckpt_add(ck, "d8", RLAB_DT_F32, 8, sh9, x, &err), RLAB_OK); /* 8 is fine */
    CHECK_EQ_INT(rlab_ckpt_add(ck, "d", RLAB_DT_F32, 2, (int64_t[]){2, -2}, x, &err), RLAB_EINVAL);
    CHECK_STR_CONTAINS(err.msg, "[2, -2]");
    CHECK_EQ_INT(rlab_ckpt_add(ck, "d", RLAB_DT_I64, 2, (int64_t[]){INT64_MAX, 4}, x, &err),
                 RLAB_EINVAL);
    CHECK_EQ_INT(rlab_ckpt_add(ck, "d", RLAB_DT_F32, 1, (int64_t[]){4}, NULL, &err), RLAB_EINVAL);
    CHECK_STR_CONTAINS(err.msg, "no data");
    CHECK_EQ_INT(rlab_ckpt_add(ck, "d", RLAB_DT_F32, 1, NULL, x, &err), RLAB_EINVAL);
    CHECK_EQ_INT(rlab_ckpt_tensor_count(ck), 3);
    /* add_params is all or nothing: the second parameter collides with an existing tensor */
    rlab_params *P = new_params(1, 3, 4);
    CHECK_EQ_INT(rlab_ckpt_add(ck, "m.blocks.0.b", RLAB_DT_F32, 1, (int64_t[]){4}, x, &err),
                 RLAB_OK);
    CHECK_EQ_INT(rlab_ckpt_add_params(ck, P, "m.", &err), RLAB_EINVAL);
    CHECK_STR_CONTAINS(err.msg, "'m.blocks.0.b'");
    CHECK_EQ_INT(rlab_ckpt_tensor_count(ck), 4);
    CHECK(rlab_ckpt_tensor(ck, "m.blocks.0.w", RLAB_DT_F32, NULL, NULL, &err) == NULL);
    CHECK_EQ_INT(err.code, RLAB_ENOTFOUND);
    CHECK(rlab_ckpt_tensor(ck, "m.blocks.0.b", RLAB_DT_F32, NULL, NULL, &err) != NULL);
    /* and it works with another prefix; a prefix making names too long is refused */
    CHECK_EQ_INT(rlab_ckpt_add_params(ck, P, "n.", &err), RLAB_OK);
    CHECK_EQ_INT(rlab_ckpt_add_params(ck, P, name, &err), RLAB_EINVAL);
    CHECK_EQ_INT(rlab_ckpt_tensor_count(ck), 7);
    CHECK_EQ_INT(rlab_ckpt_set_meta(ck, "k", NULL, &err), RLAB_EINVAL);
    CHECK_EQ_INT(rlab_ckpt_set_meta(ck, NULL, "v", &err), RLAB_EINVAL);
    /* many tensors: the name index grows and finds every one */
    char nm[16];
    for (int i = 0; i < 200; i++) {
        snprintf(nm, sizeof nm, "t%d", i);
        CHECK_EQ_INT(rlab_ckpt_add(ck, nm, RLAB_DT_F32, 1, (int64_t[]){4}, x, &err), RLAB_OK);
    }
    CHECK_EQ_INT(rlab_ckpt_add(ck, "t123", RLAB_DT_F32, 1, (int64_t[]){4}, x, &err), RLAB_EINVAL);
    CHECK(rlab_ckpt_tensor(ck, "t199", RLAB_DT_F32, NULL, NULL, &err) == (const void *)x);
    rlab_params_free(P);
    rlab_ckpt_free(ck);
    rlab_ckpt_free(NULL);
}

/* ---- lookups -------------------------------------------------------------------------------- */
static void t_tensor_dtype(void)
{
    const char *path = tmp_path("dtype.safetensors");
    rlab_err err = {0};
    rlab_ckpt *ck = typed_ckpt();
    CHECK_EQ_INT(rlab_ckpt_write(ck, path, &err), RLAB_OK);
    rlab_ckpt_free(ck);
    rlab_ckpt *in = read_ok(path);
    int nd = 77;
    CHECK(rlab_ckpt_tensor(in, "ids", RLAB_DT_F32, &nd, NULL, &err) == NULL);
    CHECK_EQ_INT(err.code, RLAB_EFORMAT);
    char want[600];
    snprintf(want, sizeof want, "%s: tensor 'ids' is I32, F32 expected", path);
    CHECK_MSG(strcmp(err.msg, want) == 0, "got '%s'", err.msg);
    CHECK_EQ_INT(nd, 77); /* untouched on error */
    CHECK(rlab_ckpt_tensor(in, "hist.indptr", RLAB_DT_I32, NULL, NULL, &err) == NULL);
    CHECK_STR_CONTAINS(err.msg, "tensor 'hist.indptr' is I64, I32 expected");
    CHECK(rlab_ckpt_tensor(in, "w", RLAB_DT_I64, NULL, NULL, &err) == NULL);
    CHECK_STR_CONTAINS(err.msg, "tensor 'w' is F32, I64 expected");
    rlab_ckpt_free(in);
}

static void t_tensor_missing(void)
{
    const char *path = tmp_path("missing.safetensors");
    rlab_err err = {0};
    rlab_ckpt *ck = typed_ckpt();
    CHECK(rlab_ckpt_tensor(ck, "nope", RLAB_DT_F32, NULL, NULL, &err) == NULL);
    CHECK_EQ_INT(err.code, RLAB_ENOTFOUND);
    CHECK(strcmp(err.msg, "checkpoint: no tensor 'nope'") == 0);
    CHECK_EQ_INT(rlab_ckpt_write(ck, path, &err), RLAB_OK);
    rlab_ckpt_free(ck);
    rlab_ckpt *in = read_ok(path);
    CHECK(rlab_ckpt_tensor(in, "nope", RLAB_DT_I64, NULL, NULL, &err) == NULL);
    CHECK_EQ_INT(err.code, RLAB_ENOTFOUND);
    char want[600];
    snprintf(want, sizeof want, "%s: no tensor 'nope'", path);
    CHECK_MSG(strcmp(err.msg, want) == 0, "got '%s'", err.msg);
    /* names are exact: no prefix matching, case matters */
    CHECK(rlab_ckpt_tensor(in, "W", RLAB_DT_F32, NULL, NULL, &err) == NULL);
    CHECK(rlab_ckpt_tensor(in, "hist", RLAB_DT_I64, NULL, NULL, &err) == NULL);
    CHECK_EQ_INT(rlab_ckpt_tensor_count(NULL), 0);
    CHECK(rlab_ckpt_meta_get(NULL, "k") == NULL);
    rlab_ckpt_free(in);
}

/* ---- parameter blocks ----------------------------------------------------------------------- */
/* A file with model params under "model.", one I32 history under "hist." and, when extra, an
 * F32 tensor "model.extra" that is not a parameter. */
static const char *params_file(const char *file, rlab_params *P, int extra)
{
    static const int32_t hist[5] = {3, 1, 4, 1, 5};
    static const float ex[2] = {9, 9};
    const char *path = tmp_path(file);
    rlab_err err = {0};
    rlab_ckpt *ck = rlab_ckpt_new(&err);
    CHECK_EQ_INT(rlab_ckpt_add_params(ck, P, "model.", &err), RLAB_OK);
    CHECK_EQ_INT(rlab_ckpt_add(ck, "hist.items", RLAB_DT_I32, 1, (int64_t[]){5}, hist, &err),
                 RLAB_OK);
    if (extra)
        CHECK_EQ_INT(rlab_ckpt_add(ck, "model.extra", RLAB_DT_F32, 1, (int64_t[]){2}, ex, &err),
                     RLAB_OK);
    CHECK_EQ_INT(rlab_ckpt_write(ck, path, &err), RLAB_OK);
    rlab_ckpt_free(ck);
    return path;
}

static void t_params_strict(void)
{
    rlab_params *A = new_params(1, 3, 4), *B = new_params(2, 3, 4);
    rlab_err err = {0};
    const size_t bytes = A->count * sizeof(float);
    float *before = malloc(bytes);
    memcpy(before, B->data, bytes);
    rlab_ckpt *in = read_ok(params_file("extra.safetensors", A, 1));
    /* strict: model.extra is not a parameter; names the file and the tensor; B untouched */
    CHECK_EQ_INT(rlab_ckpt_get_params(in, B, "model.", 1, &err), RLAB_EINVAL);
    CHECK_STR_CONTAINS(err.msg, "extra.safetensors: ");
    CHECK_STR_CONTAINS(err.msg, "'model.extra'");
    CHECK(memcmp(before, B->data, bytes) == 0);
    /* non-strict: fine, bit-exact */
    CHECK_EQ_INT(rlab_ckpt_get_params(in, B, "model.", 0, &err), RLAB_OK);
    CHECK(memcmp(A->data, B->data, bytes) == 0);
    rlab_ckpt_free(in);
    /* without the extra tensor strict passes: hist.* is outside the prefix */
    memcpy(B->data, before, bytes);
    in = read_ok(params_file("noextra.safetensors", A, 0));
    CHECK_EQ_INT(rlab_ckpt_get_params(in, B, "model.", 1, &err), RLAB_OK);
    CHECK(memcmp(A->data, B->data, bytes) == 0);
    /* with an empty prefix nothing matches "blocks.0.w" (they are "model.blocks.0.w") */
    memcpy(B->data, before, bytes);
    CHECK_EQ_INT(rlab_ckpt_get_params(in, B, NULL, 0, &err), RLAB_ENOTFOUND);
    CHECK_STR_CONTAINS(err.msg, "tensor 'blocks.0.w' not found");
    CHECK(memcmp(before, B->data, bytes) == 0);
    rlab_ckpt_free(in);
    free(before);
    rlab_params_free(A);
    rlab_params_free(B);
}

static void t_params_shape(void)
{
    rlab_params *A = new_params(1, 3, 4), *B = new_params(2, 4, 3);
    rlab_err err = {0};
    const size_t bytes = B->count * sizeof(float);
    float *before = malloc(bytes);
    memcpy(before, B->data, bytes);
    rlab_ckpt *in = read_ok(params_file("shape.safetensors", A, 0));
    CHECK_EQ_INT(rlab_ckpt_get_params(in, B, "model.", 0, &err), RLAB_EINVAL);
    CHECK_STR_CONTAINS(err.msg, "shape.safetensors: ");
    CHECK_STR_CONTAINS(err.msg,
                       "tensor 'model.blocks.0.w': shape [3, 4] in the file, [4, 3] expected");
    CHECK(memcmp(before, B->data, bytes) == 0);
    rlab_ckpt_free(in);
    /* the LAST tensor wrong (dtype): the first ones are not copied either */
    rlab_params *C = new_params(3, 3, 4);
    memcpy(before, C->data, bytes);
    rlab_ckpt *ck = rlab_ckpt_new(&err);
    int32_t emb[12] = {0};
    CHECK_EQ_INT(
        rlab_ckpt_add(ck, "blocks.0.w", RLAB_DT_F32, 2, (int64_t[]){3, 4}, A->t[0].data, &err),
        RLAB_OK);
    CHECK_EQ_INT(
        rlab_ckpt_add(ck, "blocks.0.b", RLAB_DT_F32, 1, (int64_t[]){5}, A->t[1].data, &err),
        RLAB_OK);
    CHECK_EQ_INT(rlab_ckpt_add(ck, "emb", RLAB_DT_I32, 3, (int64_t[]){2, 3, 2}, emb, &err),
                 RLAB_OK);
    CHECK_EQ_INT(rlab_ckpt_get_params(ck, C, "", 1, &err), RLAB_EFORMAT);
    CHECK_STR_CONTAINS(err.msg, "tensor 'emb': dtype I32, F32 expected");
    CHECK(memcmp(before, C->data, bytes) == 0);
    rlab_ckpt_free(ck);
    free(before);
    rlab_params_free(A);
    rlab_params_free(B);
    rlab_params_free(C);
}

/* ---- compatibility with rlab_ckpt_save / rlab_ckpt_load ------------------------------------- */
static void t_compat_old_save(void)
{
    const char *path = tmp_path("old.safetensors");
    rlab_params *A = new_params(1, 3, 4), *B = new_params(2, 3, 4);
    rlab_err err = {0};
    rlab_opt_config oc = rlab_opt_defaults(RLAB_OPT_ADAM);
    rlab_opt *oa = rlab_opt_new(A, &oc, &err);
    for (int s = 0; s < 3; s++) {
        for (size_t j = 0; j < A->count; j++)
            A->grad[j] = (float)((int)(j * 7 + (size_t)s) % 5) - 2.0f;
        rlab_opt_step(oa, A);
    }
    rlab_kv meta[2] = {{"model", "sasrec"}, {"note", "a \"quoted\"\nline"}};
    CHECK_EQ_INT(rlab_ckpt_save(path, A, oa, meta, 2, &err), RLAB_OK);
    rlab_ckpt *in = read_ok(path);
    CHECK_EQ_INT(rlab_ckpt_tensor_count(in), 9);
    CHECK(strcmp(rlab_ckpt_tensor_name(in, 0), "blocks.0.w") == 0);
    CHECK(strcmp(rlab_ckpt_tensor_name(in, 3), "opt.m.blocks.0.w") == 0);
    CHECK(strcmp(rlab_ckpt_meta_get(in, "model"), "sasrec") == 0);
    CHECK(strcmp(rlab_ckpt_meta_get(in, "note"), meta[1].value) == 0);
    CHECK(strcmp(rlab_ckpt_meta_get(in, "opt.step"), "3") == 0);
    CHECK_EQ_INT(rlab_ckpt_get_params(in, B, "", 0, &err), RLAB_OK);
    CHECK(memcmp(A->data, B->data, A->count * sizeof(float)) == 0);
    /* strict with an empty prefix counts the optimiser moments as extra tensors */
    CHECK_EQ_INT(rlab_ckpt_get_params(in, B, "", 1, &err), RLAB_EINVAL);
    CHECK_STR_CONTAINS(err.msg, "'opt.m.blocks.0.w'");
    /* the moments are plain F32 tensors at each parameter's offset in the state block */
    int nd;
    int64_t sh[RLAB_CKPT_MAXDIM];
    const float *m = rlab_ckpt_tensor(in, "opt.v.emb", RLAB_DT_F32, &nd, sh, &err);
    const rlab_tensor *emb = &A->t[2];
    CHECK(m && nd == 3 && sh[0] == 2 && sh[1] == 3 && sh[2] == 2);
    CHECK(m && memcmp(m, rlab_opt_state_v(oa) + (emb->data - A->data),
                      (size_t)emb->n * sizeof(float)) == 0);
    rlab_ckpt_free(in);
    rlab_opt_free(oa);
    rlab_params_free(A);
    rlab_params_free(B);
}

static void t_compat_old_load(void)
{
    const char *path = tmp_path("new.safetensors");
    rlab_params *A = new_params(1, 3, 4), *B = new_params(2, 3, 4);
    rlab_err err = {0};
    rlab_opt_config oc = rlab_opt_defaults(RLAB_OPT_ADAM);
    rlab_opt *oa = rlab_opt_new(A, &oc, &err), *ob = rlab_opt_new(B, &oc, &err);
    for (size_t j = 0; j < A->count; j++)
        A->grad[j] = (float)(j % 3) - 1.0f;
    rlab_opt_step(oa, A);
    rlab_opt_step(oa, A);
    /* written with the container, named as rlab_ckpt_save names things */
    int64_t ids[3] = {5, 6, 7};
    rlab_ckpt *ck = rlab_ckpt_new(&err);
    CHECK_EQ_INT(rlab_ckpt_add(ck, "user.ids", RLAB_DT_I64, 1, (int64_t[]){3}, ids, &err), RLAB_OK);
    CHECK_EQ_INT(rlab_ckpt_add_params(ck, A, NULL, &err), RLAB_OK);
    rlab_params mview = *A, vview = *A; /* the moments viewed as blocks of their own */
    mview.data = rlab_opt_state_m(oa);
    vview.data = rlab_opt_state_v(oa);
    rlab_tensor mt[3], vt[3];
    for (int i = 0; i < 3; i++) {
        mt[i] = A->t[i];
        vt[i] = A->t[i];
        mt[i].data = mview.data + (A->t[i].data - A->data);
        vt[i].data = vview.data + (A->t[i].data - A->data);
    }
    mview.t = mt;
    vview.t = vt;
    CHECK_EQ_INT(rlab_ckpt_add_params(ck, &mview, "opt.m.", &err), RLAB_OK);
    CHECK_EQ_INT(rlab_ckpt_add_params(ck, &vview, "opt.v.", &err), RLAB_OK);
    CHECK_EQ_INT(rlab_ckpt_set_meta(ck, "opt.step", "2", &err), RLAB_OK);
    CHECK_EQ_INT(rlab_ckpt_set_meta(ck, "reclab.kind", "bprmf", &err), RLAB_OK);
    CHECK_EQ_INT(rlab_ckpt_write(ck, path, &err), RLAB_OK);
    rlab_ckpt_free(ck);
    /* the old entry points read it */
    char buf[16];
    CHECK_EQ_INT(rlab_ckpt_meta(path, "reclab.kind", buf, sizeof buf, &err), RLAB_OK);
    CHECK(strcmp(buf, "bprmf") == 0);
    CHECK_EQ_INT(rlab_ckpt_load(path, B, ob, 0, &err), RLAB_OK);
    CHECK(memcmp(A->data, B->data, A->count * sizeof(float)) == 0);
    CHECK(memcmp(rlab_opt_state_m(oa), rlab_opt_state_m(ob), A->count * sizeof(float)) == 0);
    CHECK(memcmp(rlab_opt_state_v(oa), rlab_opt_state_v(ob), A->count * sizeof(float)) == 0);
    CHECK_EQ_INT(rlab_opt_steps(ob), 2);
    /* strict: the moments are fine, the I64 tensor is not a parameter */
    CHECK_EQ_INT(rlab_ckpt_load(path, B, NULL, 1, &err), RLAB_EINVAL);
    CHECK_STR_CONTAINS(err.msg, "'user.ids'");
    rlab_opt_free(oa);
    rlab_opt_free(ob);
    rlab_params_free(A);
    rlab_params_free(B);
}

/* ---- bad files ------------------------------------------------------------------------------ */
static void t_bad_truncated(void)
{
    const char *path = tmp_path("trunc.safetensors");
    rlab_err err = {0};
    rlab_ckpt *ck = typed_ckpt();
    CHECK_EQ_INT(rlab_ckpt_write(ck, path, &err), RLAB_OK);
    rlab_ckpt_free(ck);
    size_t n;
    unsigned char *b = slurp(path, &n);
    /* one data byte short: the last tensor in the data (temp) runs past the end */
    expect_bad_bytes(b, n - 1, RLAB_EFORMAT, "truncated: tensor 'temp' ends at data byte 80",
                     "holds 79 data bytes");
    /* inside the header, and shorter than the length prefix */
    expect_bad_bytes(b, 40, RLAB_EFORMAT, "truncated or not safetensors", "file size 40");
    expect_bad_bytes(b, 5, RLAB_EFORMAT, "truncated: 5 bytes", NULL);
    expect_bad_bytes(b, 0, RLAB_EFORMAT, "truncated: 0 bytes", NULL);
    free(b);
}

static void t_bad_header_len(void)
{
    unsigned char b[64];
    size_t n = make_raw(b, sizeof b, "{}", NULL, 0);
    put_u64(b, 1000000);
    expect_bad_bytes(b, n, RLAB_EFORMAT, "header length 1000000, file size 10", NULL);
    put_u64(b, UINT64_MAX); /* no overflow in the size check */
    expect_bad_bytes(b, n, RLAB_EFORMAT, "header length 18446744073709551615", NULL);
    put_u64(b, 1); /* "{}" cut: the header ends early */
    expect_bad_bytes(b, n, RLAB_EFORMAT, "not a JSON object", NULL);
    /* a header length over the 100 MiB limit inside a (sparse) file that long */
    const char *path = tmp_path("huge.safetensors");
    put_u64(b, (100u << 20) + 8);
    write_bytes(path, b, n);
    CHECK(truncate(path, (100 << 20) + 64) == 0);
    rlab_err err = {0};
    CHECK(rlab_ckpt_read(path, &err) == NULL);
    CHECK_EQ_INT(err.code, RLAB_EFORMAT);
    CHECK_STR_CONTAINS(err.msg, "huge.safetensors: header length 104857608 is over the");
    unlink(path);
}

static void t_bad_dtype(void)
{
    const float d[4] = {1, 2, 3, 4};
    expect_bad("{\"w\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,4]}}", d, 4,
               RLAB_EFORMAT, "tensor 'w': dtype BF16 is not supported", NULL);
    expect_bad("{\"ok\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
               "\"x\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[4,12]}}",
               d, 12, RLAB_EFORMAT, "tensor 'x': dtype F64", NULL);
    expect_bad("{\"w\":{\"dtype\":\"f32\",\"shape\":[2],\"data_offsets\":[0,8]}}", d, 8,
               RLAB_EFORMAT, "tensor 'w': dtype f32", NULL);
    expect_bad("{\"w\":{\"dtype\":32,\"shape\":[2],\"data_offsets\":[0,8]}}", d, 8, RLAB_EFORMAT,
               "tensor 'w': no dtype", NULL);
    expect_bad("{\"w\":{\"shape\":[2],\"data_offsets\":[0,8]}}", d, 8, RLAB_EFORMAT,
               "tensor 'w': no dtype", NULL);
}

static void t_bad_offsets(void)
{
    const float d[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    /* overlap: b starts inside a */
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
               d, 12, RLAB_EFORMAT, "tensor 'b' (data_offsets [4, 12]) overlaps tensor 'a'", NULL);
    /* same range twice */
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
               "\"b\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
               d, 8, RLAB_EFORMAT, "overlaps", NULL);
    /* a 0-byte tensor inside another one */
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
               "\"z\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]}}",
               d, 8, RLAB_EFORMAT, "tensor 'z'", "overlaps tensor 'a'");
    /* backwards */
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", d, 8,
               RLAB_EFORMAT, "tensor 'a': data_offsets [8, 4] end before they begin", NULL);
    /* a gap, and a first tensor not at 0 */
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
               d, 12, RLAB_EFORMAT, "data bytes [4, 8) belong to no tensor (before tensor 'b')",
               NULL);
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", d, 8,
               RLAB_EFORMAT, "data bytes [0, 4) belong to no tensor", NULL);
    /* not matching shape x dtype size */
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", d, 8,
               RLAB_EFORMAT,
               "tensor 'a': data_offsets [0, 8] hold 8 bytes, shape [3] of F32 needs 12", NULL);
    expect_bad("{\"a\":{\"dtype\":\"I64\",\"shape\":[2,2],\"data_offsets\":[0,16]}}", d, 16,
               RLAB_EFORMAT, "needs 32", NULL);
    /* past the end of the data */
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", d, 8,
               RLAB_EFORMAT, "truncated: tensor 'a' ends at data byte 16", "holds 8 data bytes");
    /* trailing bytes no tensor owns */
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", d, 8,
               RLAB_EFORMAT, "4 trailing data bytes after the last tensor", NULL);
    /* offsets that are not non-negative integers */
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", d, 0,
               RLAB_EFORMAT, "tensor 'a': data_offsets is not [begin, end]", NULL);
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0.0,4]}}", d, 4,
               RLAB_EFORMAT, "data_offsets is not", NULL);
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", d, 4,
               RLAB_EFORMAT, "data_offsets is not", NULL);
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,"
               "99999999999999999999]}}",
               d, 4, RLAB_EFORMAT, "tensor 'a'", NULL);

    /* accepted: header order differs from data order, 0-byte tensors at the edges */
    unsigned char b[512];
    size_t n = make_raw(b, sizeof b,
                        "{\"z0\":{\"dtype\":\"I64\",\"shape\":[0],\"data_offsets\":[0,0]},"
                        "\"late\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]},"
                        "\"early\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                        "\"z1\":{\"dtype\":\"F32\",\"shape\":[2,0],\"data_offsets\":[12,12]}}",
                        d, 12);
    rlab_ckpt *ck = read_mem_ok(b, n);
    rlab_err err = {0};
    CHECK(strcmp(rlab_ckpt_tensor_name(ck, 1), "late") == 0); /* header order */
    const float *late = rlab_ckpt_tensor(ck, "late", RLAB_DT_F32, NULL, NULL, &err);
    const int32_t *early = rlab_ckpt_tensor(ck, "early", RLAB_DT_I32, NULL, NULL, &err);
    CHECK(late && *late == 3.0f);
    CHECK(early && memcmp(early, d, 8) == 0);
    rlab_ckpt_free(ck);
}

static void t_bad_header(void)
{
    const float d[2] = {1, 2};
    expect_bad("[1, 2]", NULL, 0, RLAB_EFORMAT, "header is not a JSON object (it is array)", NULL);
    expect_bad("\"w\"", NULL, 0, RLAB_EFORMAT, "header is not a JSON object", NULL);
    expect_bad("{not json", NULL, 0, RLAB_EFORMAT, "header is not a JSON object", NULL);
    expect_bad("", NULL, 0, RLAB_EFORMAT, "header is not a JSON object", NULL);
    expect_bad("{} x", NULL, 0, RLAB_EFORMAT, "header has bytes after its JSON object", NULL);
    expect_bad("{\"w\":{\"dtype\":\"F32\",\"shape\":[2]}}", d, 8, RLAB_EFORMAT,
               "tensor 'w': no data_offsets", NULL);
    expect_bad("{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", d, 8, RLAB_EFORMAT,
               "tensor 'w': no shape", NULL);
    expect_bad("{\"w\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", d, 8,
               RLAB_EFORMAT, "tensor 'w': shape is not a list of integers >= 0", NULL);
    expect_bad("{\"w\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}", d, 8,
               RLAB_EFORMAT, "tensor 'w': shape is not", NULL);
    expect_bad("{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,2],\"data_offsets\":[0,8]}}",
               d, 8, RLAB_EFORMAT, "tensor 'w': 9 dimensions, at most 8", NULL);
    expect_bad("{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],"
               "\"data_offsets\":[0,8]}}",
               d, 8, RLAB_EFORMAT, "tensor 'w': shape [4294967296, 4294967296] is too large", NULL);
    expect_bad("{\"w\":5}", NULL, 0, RLAB_EFORMAT, "tensor 'w': entry is not an object", NULL);
    expect_bad("{\"__metadata__\":[1]}", NULL, 0, RLAB_EFORMAT, "__metadata__ is not an object",
               NULL);
    expect_bad("{\"__metadata__\":{\"epoch\":7}}", NULL, 0, RLAB_EFORMAT,
               "__metadata__ 'epoch' is int, a string expected", NULL);
    expect_bad("{\"__metadata__\":{\"k\":\"a\\u0000b\"}}", NULL, 0, RLAB_EFORMAT,
               "__metadata__ 'k' holds a NUL character", NULL);
    char big[600];
    snprintf(big, sizeof big,
             "{\"%0300d\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}}", 7);
    expect_bad(big, NULL, 0, RLAB_EFORMAT, "has 300 bytes (1 to 255 allowed)", NULL);
    /* a NUL byte inside the header */
    unsigned char b[128];
    size_t n = make_raw(b, sizeof b, "{\"a\":{}}  ", NULL, 0);
    b[8 + 3] = '\0';
    expect_bad_bytes(b, n, RLAB_EFORMAT, "header is not a JSON object", NULL);
    n = make_raw(b, sizeof b, "{}      ", NULL, 0);
    b[8 + 4] = '\0';
    expect_bad_bytes(b, n, RLAB_EFORMAT, "header has bytes after its JSON object", NULL);

    /* accepted: an empty header, padding of any JSON white space, null metadata, extra fields */
    const char *ok[] = {
        "{}",
        "{}\t\r\n ",
        "{\"__metadata__\":null}",
        "  {\"__metadata__\":{}, \"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],"
        "\"extra\":[1]}}   ",
    };
    for (int i = 0; i < 4; i++) {
        n = make_raw(b, sizeof b, ok[i], d, i == 3 ? 8 : 0);
        rlab_ckpt *ck = read_mem_ok(b, n);
        CHECK_EQ_INT(rlab_ckpt_tensor_count(ck), i == 3);
        CHECK_EQ_INT(rlab_ckpt_meta_count(ck), 0);
        rlab_ckpt_free(ck);
    }
}

/* ---- memory buffers, I/O errors --------------------------------------------------------------
 */
static void t_mem(void)
{
    const char *path = tmp_path("mem.safetensors");
    rlab_err err = {0};
    rlab_ckpt *ck = typed_ckpt();
    void *mem = (void *)1;
    size_t n = 9;
    CHECK_EQ_INT(rlab_ckpt_write(ck, path, &err), RLAB_OK);
    CHECK_EQ_INT(rlab_ckpt_write_mem(ck, &mem, &n, &err), RLAB_OK);
    rlab_ckpt_free(ck);
    size_t fn;
    unsigned char *fb = slurp(path, &fn);
    CHECK(fn == n && memcmp(fb, mem, n) == 0); /* the same bytes as the file */
    rlab_ckpt *in = read_mem_ok(mem, n);
    rlab_free(mem); /* the container owns copies */
    check_typed(in);
    rlab_ckpt_free(in);
    free(fb);
    /* an empty container is a valid 16-byte file */
    ck = rlab_ckpt_new(&err);
    CHECK_EQ_INT(rlab_ckpt_write_mem(ck, &mem, &n, &err), RLAB_OK);
    CHECK_EQ_INT(n, 8 + 24);
    CHECK(memcmp((char *)mem + 8, "{\"__metadata__\":{}}     ", 24) == 0);
    in = read_mem_ok(mem, n);
    CHECK_EQ_INT(rlab_ckpt_tensor_count(in), 0);
    rlab_ckpt_free(in);
    rlab_free(mem);
    rlab_ckpt_free(ck);
    /* no name: "<memory>" */
    CHECK(rlab_ckpt_read_mem("abc", 3, NULL, &err) == NULL);
    CHECK_STR_CONTAINS(err.msg, "<memory>: truncated");
    CHECK(rlab_ckpt_read_mem(NULL, 0, "x", &err) == NULL);
    CHECK_EQ_INT(err.code, RLAB_EFORMAT);
}

static int count_tmp_files(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        n += strstr(e->d_name, ".tmp.") != NULL;
    if (d)
        closedir(d);
    return n;
}

static void t_io(void)
{
    rlab_err err = {0};
    rlab_ckpt *ck = typed_ckpt();
    const char *nodir = tmp_path("no/such/dir/x.safetensors");
    CHECK_EQ_INT(rlab_ckpt_write(ck, nodir, &err), RLAB_EIO);
    CHECK_STR_CONTAINS(err.msg, nodir);
    /* rename onto a directory fails after the temporary was written: it is removed */
    const char *dir = tmp_path("adir");
    CHECK(mkdir(dir, 0700) == 0);
    CHECK_EQ_INT(rlab_ckpt_write(ck, dir, &err), RLAB_EIO);
    CHECK_STR_CONTAINS(err.msg, "cannot write checkpoint");
    CHECK_EQ_INT(count_tmp_files(rlab_test_tmpdir()), 0);
    rmdir(dir);
    rlab_ckpt_free(ck);
    CHECK(rlab_ckpt_read(tmp_path("absent.safetensors"), &err) == NULL);
    CHECK_EQ_INT(err.code, RLAB_ENOTFOUND);
    CHECK_STR_CONTAINS(err.msg, "absent.safetensors: cannot open");
    /* errors without an rlab_err */
    CHECK(rlab_ckpt_read(tmp_path("absent.safetensors"), NULL) == NULL);
    char v[4];
    CHECK_EQ_INT(rlab_ckpt_meta(tmp_path("absent.safetensors"), "k", v, sizeof v, NULL),
                 RLAB_ENOTFOUND);
}

/* ---- allocation failures -------------------------------------------------------------------- */
/* Build, write, read and load, stopping at the first error; everything freed either way. */
static int alloc_scenario(rlab_params *P, rlab_params *Q, rlab_err *err)
{
    static const int32_t ids[3] = {1, 2, 3};
    const char *p1 = tmp_path("af1.safetensors"), *p2 = tmp_path("af2.safetensors");
    rlab_ckpt *ck = rlab_ckpt_new(err), *in = NULL, *in2 = NULL;
    void *buf = NULL;
    size_t n = 0;
    char k[16], v[16];
    if (!ck)
        return err->code;
    int rc = rlab_ckpt_add_params(ck, P, "p.", err);
    for (int i = 0; i < 12 && !rc; i++) { /* enough to grow both indexes */
        snprintf(k, sizeof k, "t%d", i);
        rc = rlab_ckpt_add(ck, k, RLAB_DT_I32, 1, (int64_t[]){3}, ids, err);
        if (!rc)
            rc = rlab_ckpt_set_meta(ck, k, k, err);
    }
    if (!rc)
        rc = rlab_ckpt_set_meta(ck, "t3", "again", err);
    if (!rc)
        rc = rlab_ckpt_write(ck, p1, err);
    if (!rc)
        rc = rlab_ckpt_write_mem(ck, &buf, &n, err);
    if (!rc && !(in = rlab_ckpt_read(p1, err)))
        rc = err->code;
    if (!rc && !(in2 = rlab_ckpt_read_mem(buf, n, "mem", err)))
        rc = err->code;
    if (!rc)
        rc = rlab_ckpt_get_params(in, Q, "p.", 1, err);
    rlab_kv kv[1] = {{"kind", "af"}};
    if (!rc)
        rc = rlab_ckpt_save(p2, P, NULL, kv, 1, err);
    if (!rc)
        rc = rlab_ckpt_load(p2, Q, NULL, 1, err);
    if (!rc)
        rc = rlab_ckpt_meta(p2, "kind", v, sizeof v, err);
    rlab_free(buf);
    rlab_ckpt_free(in2);
    rlab_ckpt_free(in);
    rlab_ckpt_free(ck);
    return rc;
}

static void t_allocfail(void)
{
    rlab_params *P = new_params(1, 3, 4), *Q = new_params(2, 3, 4);
    int done = 0;
    long k;
    for (k = 0; k < 2000 && !done; k++) {
        rlab_err err = {0};
        rlab_alloc_fail_after(k);
        int rc = alloc_scenario(P, Q, &err);
        rlab_alloc_fail_after(-1);
        if (rc == RLAB_OK)
            done = 1;
        else
            CHECK_MSG(rc == RLAB_ENOMEM, "after %ld allocations: %s (%s)", k, rlab_status_name(rc),
                      err.msg);
    }
    CHECK_MSG(done, "the scenario never succeeded (%ld attempts)", k);
    CHECK(k > 20); /* it did fail along the way */
    CHECK_EQ_INT(count_tmp_files(rlab_test_tmpdir()), 0);
    rlab_params_free(P);
    rlab_params_free(Q);
}

static const rlab_test tests[] = {
    {"ckpt.typed.roundtrip.1", t_typed_roundtrip},
    {"ckpt.typed.layout.1", t_typed_layout},
    {"ckpt.meta.escape.1", t_meta_escape},
    {"ckpt.meta.replace.1", t_meta_replace},
    {"ckpt.add.errors.1", t_add_errors},
    {"ckpt.tensor.dtype.1", t_tensor_dtype},
    {"ckpt.tensor.missing.1", t_tensor_missing},
    {"ckpt.params.strict.1", t_params_strict},
    {"ckpt.params.shape.1", t_params_shape},
    {"ckpt.compat.old_save.1", t_compat_old_save},
    {"ckpt.compat.old_load.1", t_compat_old_load},
    {"ckpt.bad.truncated.1", t_bad_truncated},
    {"ckpt.bad.header_len.1", t_bad_header_len},
    {"ckpt.bad.dtype.1", t_bad_dtype},
    {"ckpt.bad.offsets.1", t_bad_offsets},
    {"ckpt.bad.header.1", t_bad_header},
    {"ckpt.mem.1", t_mem},
    {"ckpt.io.1", t_io},
    {"ckpt.allocfail.1", t_allocfail},
    {NULL, NULL},
};

int main(int argc, char **argv) { return rlab_test_main(argc, argv, tests); }
