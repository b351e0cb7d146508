/*
 * plugins/baselines/store.c: helpers shared by Pop, ItemKNN and BPR-MF: checkpoint reading
 * (a baselines model is one rlab_params block; the host writes the sizes and the config) and
 * the one-pass adapter for the core training loop.
 */
#include "baselines.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int bl_cancelled(const rlab_fit *fit) { return fit && fit->cancelled && fit->cancelled(fit->ud); }

int bl_ckpt_int(const rlab_ckpt *ck, const char *key, int64_t lo, int64_t hi, int64_t *out,
                rlab_err *err)
{
    const char *v = rlab_ckpt_meta_get(ck, key);
    if (!v)
        return rlab_errf(err, RLAB_EFORMAT, "checkpoint: metadata '%s' missing", key);
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi)
        return rlab_errf(err, RLAB_EFORMAT,
                         "checkpoint: metadata '%s' = '%s' is not an integer in [%lld, %lld]", key,
                         v, (long long)lo, (long long)hi);
    *out = x;
    return RLAB_OK;
}

int bl_ckpt_sizes(const rlab_ckpt *ck, int32_t *n_users, int32_t *n_items, rlab_err *err)
{
    int64_t u = 0, i = 0;
    int rc = bl_ckpt_int(ck, "reclab.n_users", 0, INT32_MAX, &u, err);
    if (rc == RLAB_OK)
        rc = bl_ckpt_int(ck, "reclab.n_items", 1, INT32_MAX, &i, err);
    if (rc == RLAB_OK) {
        *n_users = (int32_t)u;
        *n_items = (int32_t)i;
    }
    return rc;
}

rlab_params *bl_ckpt_params(const rlab_ckpt *ck, const rlab_param_spec *specs, int n, rlab_err *err)
{
    rlab_rng rng; /* the initialiser's values are overwritten */
    rlab_rng_seed(&rng, 0);
    rlab_params *P = rlab_params_new(specs, n, &rng, err);
    if (!P)
        return NULL;
    /* not strict: the file also holds the host's tensors (histories) */
    if (rlab_ckpt_get_params(ck, P, NULL, 0, err)) {
        rlab_params_free(P);
        return NULL;
    }
    return P;
}

int bl_once_step(void *state, int64_t i, double *loss, double *weight, double *parts, rlab_err *err)
{
    (void)i;
    (void)weight;
    (void)parts;
    bl_once *o = state;
    *loss = 0.0;
    rlab_model_release(o->m);
    o->m = o->train(o->fit, err);
    return o->m ? RLAB_OK : (err->code ? err->code : RLAB_ENOMEM);
}

rlab_model *bl_once_model(void *state) { return ((bl_once *)state)->m; }

void bl_once_end(void *state)
{
    bl_once *o = state;
    rlab_model_release(o->m);
    rlab_free(o);
}
