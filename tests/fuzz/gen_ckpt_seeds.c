/*
 * Writes the seed corpus of fuzz_ckpt into a folder (tests/fuzz/corpus/ckpt):
 *   seed0  typed tensors (F32, I32, I64, a 0-element tensor, a 0-dim scalar) and metadata
 *          with JSON escapes and UTF-8, through rlab_ckpt_write
 *   seed1  the block fuzz_ckpt loads ("a" [2], "b" [1, 3]) with Adam moments, through
 *          rlab_ckpt_save
 *   seed2  a hand-written header: tensors listed out of data order, 0-byte tensors, no padding
 *   seed3  a hand-written header with a BF16 tensor (refused)
 * Built with the fuzz targets (-DRECLAB_FUZZ=ON); run: gen_ckpt_seeds tests/fuzz/corpus/ckpt
 */
#include "tensor/checkpoint.h"

#include <stdio.h>
#include <string.h>

static int fail(const char *what, const rlab_err *err)
{
    fprintf(stderr, "gen_ckpt_seeds: %s: %s\n", what, err->msg);
    return 1;
}

static int write_raw(const char *path, const char *hdr, const void *data, size_t nbytes)
{
    unsigned char len8[8];
    size_t n = strlen(hdr);
    for (int b = 0; b < 8; b++)
        len8[b] = (unsigned char)((uint64_t)n >> (8 * b));
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(len8, 1, 8, f) == 8 && fwrite(hdr, 1, n, f) == n &&
             fwrite(data, 1, nbytes, f) == nbytes;
    if (f)
        ok = fclose(f) == 0 && ok;
    if (!ok)
        fprintf(stderr, "gen_ckpt_seeds: cannot write %s\n", path);
    return !ok;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: gen_ckpt_seeds DIR\n");
        return 2;
    }
    char path[4096];
    rlab_err err = {0};

    static const float w[6] = {1.5f, -2.0f, 0.25f, 3.0f, -0.0f, 7.0f};
    static const int32_t ids[3] = {7, -1, 2};
    static const int64_t indptr[4] = {0, 2, 3, 3};
    static const int64_t n_users = 3;
    rlab_ckpt *ck = rlab_ckpt_new(&err);
    if (!ck || rlab_ckpt_add(ck, "w", RLAB_DT_F32, 2, (int64_t[]){2, 3}, w, &err) ||
        rlab_ckpt_add(ck, "hist.items", RLAB_DT_I32, 1, (int64_t[]){3}, ids, &err) ||
        rlab_ckpt_add(ck, "hist.indptr", RLAB_DT_I64, 1, (int64_t[]){4}, indptr, &err) ||
        rlab_ckpt_add(ck, "empty", RLAB_DT_F32, 2, (int64_t[]){0, 4}, NULL, &err) ||
        rlab_ckpt_add(ck, "n_users", RLAB_DT_I64, 0, NULL, &n_users, &err) ||
        rlab_ckpt_set_meta(ck, "reclab.kind", "seed", &err) ||
        rlab_ckpt_set_meta(ck, "note", "a \"quote\", a \\ and\na new line, caf\xc3\xa9", &err))
        return fail("seed0", &err);
    snprintf(path, sizeof path, "%s/seed0", argv[1]);
    if (rlab_ckpt_write(ck, path, &err))
        return fail("seed0", &err);
    rlab_ckpt_free(ck);

    rlab_param_spec s[2] = {{"a", 1, {2}, RLAB_INIT_NORMAL, 1.0f},
                            {"b", 2, {1, 3}, RLAB_INIT_NORMAL, 1.0f}};
    rlab_rng rng;
    rlab_rng_seed(&rng, 7);
    rlab_params *p = rlab_params_new(s, 2, &rng, &err);
    rlab_opt_config oc = rlab_opt_defaults(RLAB_OPT_ADAM);
    rlab_opt *o = p ? rlab_opt_new(p, &oc, &err) : NULL;
    if (!o)
        return fail("seed1", &err);
    for (size_t j = 0; j < p->count; j++)
        p->grad[j] = (float)j - 2.0f;
    rlab_opt_step(o, p);
    rlab_kv kv[1] = {{"reclab.kind", "bprmf"}};
    snprintf(path, sizeof path, "%s/seed1", argv[1]);
    if (rlab_ckpt_save(path, p, o, kv, 1, &err))
        return fail("seed1", &err);
    rlab_opt_free(o);
    rlab_params_free(p);

    static const float d[3] = {1.0f, 2.0f, 3.0f};
    snprintf(path, sizeof path, "%s/seed2", argv[1]);
    if (write_raw(path,
                  "{\"late\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]},"
                  "\"z\":{\"dtype\":\"I64\",\"shape\":[0],\"data_offsets\":[0,0]},"
                  "\"early\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                  "\"__metadata__\":{\"format\":\"pt\"}}",
                  d, sizeof d))
        return 1;
    snprintf(path, sizeof path, "%s/seed3", argv[1]);
    if (write_raw(path, "{\"h\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,4]}}", d, 4))
        return 1;
    return 0;
}
