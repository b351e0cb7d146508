/*
 * libFuzzer target for the safetensors reader: rlab_ckpt_read_mem on arbitrary bytes (see
 * tests/fuzz/CMakeLists.txt; seeds in corpus/ckpt, made by gen_ckpt_seeds.c). Any crash,
 * sanitizer report or leak is a bug; a clean error with a message is the expected outcome
 * for garbage. A container that loads is checked: every tensor is readable with its own dtype
 * only and every byte of it is touched, the metadata is reachable by key, writing it back and
 * reading that gives the same tensors, metadata and bytes, and rlab_ckpt_get_params either
 * fills a small block or leaves it untouched.
 */
#include "tensor/checkpoint.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const rlab_dtype dtypes[3] = {RLAB_DT_F32, RLAB_DT_I32, RLAB_DT_I64};

/* Byte size of tensor i, asserting it can be fetched with exactly one dtype; *out its data. */
static size_t tensor_bytes(const rlab_ckpt *ck, int i, rlab_dtype *dt, const void **out)
{
    const char *name = rlab_ckpt_tensor_name(ck, i);
    int hits = 0, nd = -1;
    int64_t shape[RLAB_CKPT_MAXDIM];
    size_t n = 1, esize = 0;
    rlab_err err = {0};
    if (!name)
        abort();
    for (int k = 0; k < 3; k++) {
        const void *d = rlab_ckpt_tensor(ck, name, dtypes[k], &nd, shape, &err);
        if (d) {
            hits++;
            *dt = dtypes[k];
            *out = d;
            esize = dtypes[k] == RLAB_DT_I64 ? 8 : 4;
        } else if (err.code != RLAB_EFORMAT || err.msg[0] == '\0') {
            abort();
        }
    }
    if (hits != 1 || nd < 0 || nd > RLAB_CKPT_MAXDIM)
        abort();
    for (int d = 0; d < nd; d++) {
        if (shape[d] < 0)
            abort();
        n *= (size_t)shape[d];
    }
    return n * esize;
}

static void same_containers(const rlab_ckpt *a, const rlab_ckpt *b)
{
    if (rlab_ckpt_tensor_count(a) != rlab_ckpt_tensor_count(b) ||
        rlab_ckpt_meta_count(a) != rlab_ckpt_meta_count(b))
        abort();
    for (int i = 0; i < rlab_ckpt_tensor_count(a); i++) {
        rlab_dtype da, db;
        const void *pa, *pb;
        size_t na = tensor_bytes(a, i, &da, &pa), nb = tensor_bytes(b, i, &db, &pb);
        if (strcmp(rlab_ckpt_tensor_name(a, i), rlab_ckpt_tensor_name(b, i)) != 0 || da != db ||
            na != nb || memcmp(pa, pb, na) != 0)
            abort();
    }
    for (int i = 0; i < rlab_ckpt_meta_count(a); i++) {
        const char *k = rlab_ckpt_meta_key(a, i), *k2 = rlab_ckpt_meta_key(b, i);
        const char *v = rlab_ckpt_meta_get(a, k), *v2 = rlab_ckpt_meta_get(b, k);
        if (!k || !k2 || strcmp(k, k2) != 0 || !v || !v2 || strcmp(v, v2) != 0)
            abort();
    }
}

/* the block gen_ckpt_seeds.c saves in seed1: "a" [2], "b" [1, 3] */
static rlab_params *small_block(void)
{
    static rlab_params *p;
    if (!p) {
        rlab_param_spec s[2] = {{"a", 1, {2}, RLAB_INIT_ZERO, 0.0f},
                                {"b", 2, {1, 3}, RLAB_INIT_ZERO, 0.0f}};
        rlab_rng rng;
        rlab_rng_seed(&rng, 1);
        p = rlab_params_new(s, 2, &rng, NULL);
        if (!p)
            abort();
    }
    return p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rlab_err err = {0};
    rlab_ckpt *ck = rlab_ckpt_read_mem(data, size, "fuzz", &err);
    if (!ck) {
        if (err.code == RLAB_OK || strncmp(err.msg, "fuzz: ", 6) != 0)
            abort(); /* failure must explain itself and name the input */
        return 0;
    }
    volatile unsigned sum = 0;
    for (int i = 0; i < rlab_ckpt_tensor_count(ck); i++) {
        rlab_dtype dt;
        const void *d;
        size_t n = tensor_bytes(ck, i, &dt, &d);
        for (size_t k = 0; k < n; k++)
            sum += ((const unsigned char *)d)[k];
    }
    for (int i = 0; i < rlab_ckpt_meta_count(ck); i++)
        if (!rlab_ckpt_meta_get(ck, rlab_ckpt_meta_key(ck, i)))
            abort();

    /* write back, read again: the same container, and a fixed point of write */
    void *buf = NULL, *buf2 = NULL;
    size_t n = 0, n2 = 0;
    if (rlab_ckpt_write_mem(ck, &buf, &n, &err) != RLAB_OK)
        abort();
    rlab_ckpt *again = rlab_ckpt_read_mem(buf, n, "fuzz-again", &err);
    if (!again)
        abort();
    same_containers(ck, again);
    if (rlab_ckpt_write_mem(again, &buf2, &n2, &err) != RLAB_OK || n != n2 ||
        memcmp(buf, buf2, n) != 0)
        abort();

    /* parameters: filled, or untouched with an explained error */
    rlab_params *p = small_block();
    memset(p->data, 0x7f, p->count * sizeof(float));
    rlab_err_clear(&err);
    if (rlab_ckpt_get_params(ck, p, size ? (const char *)"" : NULL, size & 1, &err) != RLAB_OK) {
        if (err.msg[0] == '\0')
            abort();
        for (size_t k = 0; k < p->count * sizeof(float); k++)
            if (((const unsigned char *)p->data)[k] != 0x7f)
                abort();
    }
    rlab_free(buf);
    rlab_free(buf2);
    rlab_ckpt_free(again);
    rlab_ckpt_free(ck);
    return 0;
}
