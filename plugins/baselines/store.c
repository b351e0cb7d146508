/*
 * plugins/baselines/store.c: safetensors save / load shared by Pop, ItemKNN and BPR-MF.
 *
 * A baselines checkpoint is an rlab_ckpt file (core/tensor/checkpoint.h): the model's
 * rlab_params block as F32 tensors, and in __metadata__ the strings "reclab.kind",
 * "dataset", "n_users", "n_items", "describe" plus the model's own sizes ("k", "dim").
 */
#include "baselines.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int bl_save(const rlab_model *m, const rlab_params *P, const rlab_kv *extra, int n_extra,
            const char *path, rlab_err *err)
{
    char nu[24], ni[24], desc[192];
    snprintf(nu, sizeof nu, "%d", (int)m->n_users);
    snprintf(ni, sizeof ni, "%d", (int)m->n_items);
    rlab_model_describe(m, desc, sizeof desc);
    rlab_kv kv[16];
    int n = 0;
    kv[n++] = (rlab_kv){"reclab.kind", m->kind};
    kv[n++] = (rlab_kv){"reclab.plugin", "baselines"};
    kv[n++] = (rlab_kv){"dataset", m->dataset};
    kv[n++] = (rlab_kv){"n_users", nu};
    kv[n++] = (rlab_kv){"n_items", ni};
    kv[n++] = (rlab_kv){"describe", desc};
    for (int i = 0; i < n_extra && n < 16; i++)
        kv[n++] = extra[i];
    return rlab_ckpt_save(path, P, NULL, kv, n, err);
}

int bl_meta_int(const char *path, const char *key, int64_t lo, int64_t hi, int64_t *out,
                rlab_err *err)
{
    char buf[64];
    int rc = rlab_ckpt_meta(path, key, buf, sizeof buf, err);
    if (rc == RLAB_ENOTFOUND)
        return rlab_errf(err, RLAB_EFORMAT, "%s: metadata '%s' missing", path, key);
    if (rc)
        return rc;
    char *end;
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    if (errno || end == buf || *end || v < lo || v > hi)
        return rlab_errf(err, RLAB_EFORMAT,
                         "%s: metadata '%s' = '%s' is not an integer in [%lld, %lld]", path, key,
                         buf, (long long)lo, (long long)hi);
    *out = v;
    return RLAB_OK;
}

int bl_read_meta(const char *path, const char *kind, bl_meta *out, rlab_err *err)
{
    memset(out, 0, sizeof *out);
    int rc = rlab_ckpt_meta(path, "reclab.kind", out->kind, sizeof out->kind, err);
    if (rc == RLAB_ENOTFOUND)
        return rlab_errf(err, RLAB_EFORMAT, "%s: not a baselines model (no 'reclab.kind')", path);
    if (rc)
        return rc;
    if (strcmp(out->kind, kind) != 0)
        return rlab_errf(err, RLAB_EFORMAT, "%s holds a '%s' model, not '%s'", path, out->kind,
                         kind);
    if (rlab_ckpt_meta(path, "dataset", out->dataset, sizeof out->dataset, NULL))
        out->dataset[0] = '\0';
    if (rlab_ckpt_meta(path, "describe", out->describe, sizeof out->describe, NULL))
        out->describe[0] = '\0';
    int64_t v;
    if ((rc = bl_meta_int(path, "n_users", 0, INT32_MAX, &v, err)))
        return rc;
    out->n_users = (int32_t)v;
    if ((rc = bl_meta_int(path, "n_items", 1, INT32_MAX, &v, err)))
        return rc;
    out->n_items = (int32_t)v;
    return RLAB_OK;
}

rlab_params *bl_load_params(const char *path, const rlab_param_spec *specs, int n, rlab_err *err)
{
    rlab_rng rng;
    rlab_rng_seed(&rng, 0);
    rlab_params *P = rlab_params_new(specs, n, &rng, err);
    if (!P)
        return NULL;
    if (rlab_ckpt_load(path, P, NULL, 1, err)) {
        rlab_params_free(P);
        return NULL;
    }
    return P;
}
