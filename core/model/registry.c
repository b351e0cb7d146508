/*
 * core/model/registry.c: the session's named models. A small array under one mutex; the
 * registry holds one reference per entry, borrowers hold their own, so replacing or
 * removing a model never frees it under a running job.
 */
#include "model/model.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rlab_models {
    pthread_mutex_t mu;
    rlab_model **v; /* [n] registered models, each holding one registry reference */
    int n, cap;
};

rlab_models *rlab_models_new(rlab_err *err)
{
    rlab_models *reg = rlab_calloc(1, sizeof *reg);
    if (!reg) {
        rlab_errf(err, RLAB_ENOMEM, "out of memory allocating the model registry");
        return NULL;
    }
    pthread_mutex_init(&reg->mu, NULL);
    return reg;
}

void rlab_models_free(rlab_models *reg)
{
    if (!reg)
        return;
    for (int i = 0; i < reg->n; i++)
        rlab_model_release(reg->v[i]);
    rlab_free(reg->v);
    pthread_mutex_destroy(&reg->mu);
    rlab_free(reg);
}

static int find(const rlab_models *reg, const char *name)
{
    for (int i = 0; i < reg->n; i++)
        if (strcmp(reg->v[i]->name, name) == 0)
            return i;
    return -1;
}

int rlab_models_add(rlab_models *reg, rlab_model *m, rlab_err *err)
{
    if (!reg || !m) {
        rlab_model_release(m);
        return rlab_errf(err, RLAB_EINVAL, "model registry: no model");
    }
    if (!m->name[0]) {
        rlab_model_release(m);
        return rlab_errf(err, RLAB_EINVAL, "model registry: a model needs a name");
    }
    if (!memchr(m->name, '\0', sizeof m->name)) { /* written past the field: never cut it */
        char q[sizeof m->name + 1];
        memcpy(q, m->name, sizeof m->name);
        q[sizeof m->name] = '\0';
        int rc = rlab_name_check("model", q, err);
        rlab_model_release(m);
        return rc;
    }
    rlab_model *old = NULL;
    pthread_mutex_lock(&reg->mu);
    int at = find(reg, m->name);
    if (at >= 0) {
        old = reg->v[at];
        reg->v[at] = m;
    } else {
        if (reg->n == reg->cap) {
            int cap = reg->cap ? 2 * reg->cap : 8;
            rlab_model **v = rlab_realloc(reg->v, (size_t)cap * sizeof *v);
            if (!v) {
                pthread_mutex_unlock(&reg->mu);
                rlab_model_release(m);
                return rlab_errf(err, RLAB_ENOMEM, "out of memory registering a model");
            }
            reg->v = v;
            reg->cap = cap;
        }
        reg->v[reg->n++] = m;
    }
    pthread_mutex_unlock(&reg->mu);
    /* release outside the lock: vt->free may take time (or call back into the registry) */
    rlab_model_release(old);
    return RLAB_OK;
}

rlab_model *rlab_models_get(rlab_models *reg, const char *name)
{
    if (!reg || !name)
        return NULL;
    pthread_mutex_lock(&reg->mu);
    int at = find(reg, name);
    rlab_model *m = at >= 0 ? rlab_model_retain(reg->v[at]) : NULL;
    pthread_mutex_unlock(&reg->mu);
    return m;
}

int rlab_models_remove(rlab_models *reg, const char *name, rlab_err *err)
{
    if (!reg || !name)
        return rlab_errf(err, RLAB_EINVAL, "model registry: no name");
    pthread_mutex_lock(&reg->mu);
    int at = find(reg, name);
    rlab_model *m = NULL;
    if (at >= 0) {
        m = reg->v[at];
        memmove(reg->v + at, reg->v + at + 1, (size_t)(reg->n - at - 1) * sizeof *reg->v);
        reg->n--;
    }
    pthread_mutex_unlock(&reg->mu);
    if (!m)
        return rlab_errf(err, RLAB_ENOTFOUND, "model '%s' not found", name);
    rlab_model_release(m);
    return RLAB_OK;
}

int rlab_models_count(rlab_models *reg)
{
    if (!reg)
        return 0;
    pthread_mutex_lock(&reg->mu);
    int n = reg->n;
    pthread_mutex_unlock(&reg->mu);
    return n;
}

static int cmp_info(const void *a, const void *b)
{
    return strcmp(((const rlab_model_info *)a)->name, ((const rlab_model_info *)b)->name);
}

int rlab_models_list(rlab_models *reg, rlab_model_info **out, int *n, rlab_err *err)
{
    *out = NULL;
    *n = 0;
    if (!reg)
        return RLAB_OK;
    /* Take references under the lock, describe outside it (describe is model code). */
    pthread_mutex_lock(&reg->mu);
    int cnt = reg->n;
    rlab_model **refs = cnt ? rlab_malloc((size_t)cnt * sizeof *refs) : NULL;
    if (cnt && !refs) {
        pthread_mutex_unlock(&reg->mu);
        return rlab_errf(err, RLAB_ENOMEM, "out of memory listing models");
    }
    for (int i = 0; i < cnt; i++)
        refs[i] = rlab_model_retain(reg->v[i]);
    pthread_mutex_unlock(&reg->mu);
    if (cnt == 0)
        return RLAB_OK;
    rlab_model_info *info = rlab_calloc((size_t)cnt, sizeof *info);
    if (info) {
        for (int i = 0; i < cnt; i++) {
            const rlab_model *m = refs[i];
            memcpy(info[i].name, m->name, sizeof info[i].name);
            memcpy(info[i].kind, m->kind, sizeof info[i].kind);
            memcpy(info[i].plugin, m->plugin, sizeof info[i].plugin);
            memcpy(info[i].dataset, m->dataset, sizeof info[i].dataset);
            info[i].n_users = m->n_users;
            info[i].n_items = m->n_items;
            rlab_model_describe(m, info[i].describe, sizeof info[i].describe);
        }
        qsort(info, (size_t)cnt, sizeof *info, cmp_info);
    }
    for (int i = 0; i < cnt; i++)
        rlab_model_release(refs[i]);
    rlab_free(refs);
    if (!info)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory listing models");
    *out = info;
    *n = cnt;
    return RLAB_OK;
}

int rlab_models_busy(rlab_models *reg, const char *plugin)
{
    int busy = 0;
    if (!reg || !plugin)
        return 0;
    pthread_mutex_lock(&reg->mu);
    for (int i = 0; i < reg->n; i++)
        if (strcmp(reg->v[i]->plugin, plugin) == 0 && atomic_load(&reg->v[i]->refs) > 1)
            busy++;
    pthread_mutex_unlock(&reg->mu);
    return busy;
}

int rlab_models_remove_plugin(rlab_models *reg, const char *plugin)
{
    if (!reg || !plugin)
        return 0;
    rlab_model *gone[64];
    int total = 0;
    for (;;) {
        /* collect a batch under the lock, release outside it */
        int ng = 0;
        pthread_mutex_lock(&reg->mu);
        for (int i = 0; i < reg->n && ng < 64;) {
            if (strcmp(reg->v[i]->plugin, plugin) == 0) {
                gone[ng++] = reg->v[i];
                memmove(reg->v + i, reg->v + i + 1, (size_t)(reg->n - i - 1) * sizeof *reg->v);
                reg->n--;
            } else {
                i++;
            }
        }
        pthread_mutex_unlock(&reg->mu);
        for (int i = 0; i < ng; i++)
            rlab_model_release(gone[i]);
        total += ng;
        if (ng < 64)
            return total;
    }
}
