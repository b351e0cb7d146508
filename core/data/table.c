/*
 * core/data/table: vocabularies (open-addressing hash over external id strings), columnar
 * interaction tables and feature tables. See table.h.
 */
#include "data/table.h"
#include "data/tabular.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- vocabulary -------------------------------------------------------------------- */
static uint32_t hash_bytes(const char *s, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h;
}

void rlab_vocab_init(rlab_vocab *v) { memset(v, 0, sizeof *v); }

void rlab_vocab_clear(rlab_vocab *v)
{
    if (!v)
        return;
    for (int32_t i = 0; i < v->n; i++)
        rlab_free(v->names[i]);
    rlab_free(v->names);
    rlab_free(v->slots);
    memset(v, 0, sizeof *v);
}

static int32_t probe(const rlab_vocab *v, const char *name, size_t len, uint32_t *slot)
{
    uint32_t mask = v->nslots - 1;
    uint32_t s = hash_bytes(name, len) & mask;
    for (;;) {
        int32_t k = v->slots[s];
        if (k < 0) {
            *slot = s;
            return -1;
        }
        if (strncmp(v->names[k], name, len) == 0 && v->names[k][len] == '\0')
            return k;
        s = (s + 1) & mask;
    }
}

static int grow_slots(rlab_vocab *v)
{
    uint32_t ns = v->nslots ? v->nslots * 2 : 64;
    int32_t *slots = rlab_malloc(ns * sizeof *slots);
    if (!slots)
        return RLAB_ENOMEM;
    for (uint32_t i = 0; i < ns; i++)
        slots[i] = -1;
    for (int32_t k = 0; k < v->n; k++) {
        uint32_t s = hash_bytes(v->names[k], strlen(v->names[k])) & (ns - 1);
        while (slots[s] >= 0)
            s = (s + 1) & (ns - 1);
        slots[s] = k;
    }
    rlab_free(v->slots);
    v->slots = slots;
    v->nslots = ns;
    return RLAB_OK;
}

int32_t rlab_vocab_find(const rlab_vocab *v, const char *name, size_t len)
{
    if (!v->nslots)
        return -1;
    uint32_t slot;
    return probe(v, name, len, &slot);
}

int32_t rlab_vocab_add(rlab_vocab *v, const char *name, size_t len)
{
    if ((uint64_t)(v->n + 1) * 2 > v->nslots && grow_slots(v) != RLAB_OK)
        return -1;
    uint32_t slot;
    int32_t k = probe(v, name, len, &slot);
    if (k >= 0)
        return k;
    if (v->n == INT32_MAX)
        return -1;
    if (v->n == v->cap) {
        int32_t nc = v->cap ? v->cap * 2 : 64;
        char **nn = rlab_realloc(v->names, (size_t)nc * sizeof *nn);
        if (!nn)
            return -1;
        v->names = nn;
        v->cap = nc;
    }
    char *copy = rlab_malloc(len + 1);
    if (!copy)
        return -1;
    memcpy(copy, name, len);
    copy[len] = '\0';
    v->names[v->n] = copy;
    v->slots[slot] = v->n;
    return v->n++;
}

/* ---- interactions ------------------------------------------------------------------ */
void rlab_inter_init(rlab_inter *t) { memset(t, 0, sizeof *t); }

void rlab_inter_clear(rlab_inter *t)
{
    if (!t)
        return;
    rlab_free(t->user);
    rlab_free(t->item);
    rlab_free(t->ts);
    rlab_free(t->rating);
    for (int i = 0; i < RLAB_INTER_MAX_LABELS; i++)
        rlab_free(t->labels[i]);
    memset(t, 0, sizeof *t);
}

#define GROW(ptr, cap)                                                                             \
    do {                                                                                           \
        void *np_ = rlab_realloc((ptr), (cap) * sizeof *(ptr));                                    \
        if (!np_)                                                                                  \
            return RLAB_ENOMEM;                                                                    \
        (ptr) = np_;                                                                               \
    } while (0)

int rlab_inter_reserve(rlab_inter *t, size_t cap)
{
    if (cap <= t->cap)
        return RLAB_OK;
    GROW(t->user, cap);
    GROW(t->item, cap);
    GROW(t->ts, cap);
    GROW(t->rating, cap);
    for (int i = 0; i < t->nlabels; i++)
        GROW(t->labels[i], cap);
    t->cap = cap;
    return RLAB_OK;
}

int rlab_inter_push(rlab_inter *t, int32_t user, int32_t item, int64_t ts, float rating,
                    const float *labels)
{
    if (t->n == t->cap && rlab_inter_reserve(t, t->cap ? t->cap * 2 : 1024) != RLAB_OK)
        return RLAB_ENOMEM;
    size_t i = t->n++;
    t->user[i] = user;
    t->item[i] = item;
    t->ts[i] = ts;
    t->rating[i] = rating;
    for (int k = 0; k < t->nlabels; k++)
        t->labels[k][i] = labels ? labels[k] : NAN;
    return RLAB_OK;
}

/* ---- features ---------------------------------------------------------------------- */
void rlab_feats_init(rlab_feats *f) { memset(f, 0, sizeof *f); }

void rlab_feats_clear(rlab_feats *f)
{
    if (!f)
        return;
    for (int c = 0; c < f->ncols; c++) {
        rlab_feat_col *col = &f->cols[c];
        rlab_vocab_clear(&col->vocab);
        rlab_free(col->tok);
        rlab_free(col->off);
        rlab_free(col->seq);
        rlab_free(col->num);
        if (col->text)
            for (int32_t i = 0; i < f->n_entities; i++)
                rlab_free(col->text[i]);
        rlab_free(col->text);
    }
    rlab_free(f->cols);
    memset(f, 0, sizeof *f);
}

rlab_feat_col *rlab_feats_find(const rlab_feats *f, const char *name)
{
    for (int c = 0; c < f->ncols; c++)
        if (strcmp(f->cols[c].name, name) == 0)
            return &f->cols[c];
    return NULL;
}

rlab_feat_col *rlab_feats_add(rlab_feats *f, const char *name, rlab_feat_kind kind)
{
    if (f->ncols == f->cap) {
        int nc = f->cap ? f->cap * 2 : 8;
        rlab_feat_col *cols = rlab_realloc(f->cols, (size_t)nc * sizeof *cols);
        if (!cols)
            return NULL;
        f->cols = cols;
        f->cap = nc;
    }
    rlab_feat_col *c = &f->cols[f->ncols++];
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s", name);
    c->kind = kind;
    rlab_vocab_init(&c->vocab);
    return c;
}

/* ---- dataset ----------------------------------------------------------------------- */
rlab_dataset *rlab_dataset_new(const char *name, rlab_err *err)
{
    if (rlab_name_check("dataset", name, err)) /* refused, never cut (see base.h) */
        return NULL;
    rlab_dataset *ds = rlab_calloc(1, sizeof *ds);
    if (!ds) {
        rlab_errf(err, RLAB_ENOMEM, "dataset: out of memory");
        return NULL;
    }
    snprintf(ds->name, sizeof ds->name, "%s", name ? name : "");
    rlab_vocab_init(&ds->users);
    rlab_vocab_init(&ds->items);
    rlab_inter_init(&ds->inter);
    rlab_feats_init(&ds->user_feats);
    rlab_feats_init(&ds->item_feats);
    return ds;
}

void rlab_dataset_free(rlab_dataset *ds)
{
    if (!ds)
        return;
    rlab_vocab_clear(&ds->users);
    rlab_vocab_clear(&ds->items);
    rlab_inter_clear(&ds->inter);
    rlab_feats_clear(&ds->user_feats);
    rlab_feats_clear(&ds->item_feats);
    rlab_free(ds->lists.items);
    rlab_tabular_free(ds->tab);
    rlab_free(ds);
}
