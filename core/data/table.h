/*
 * core/data/table: the in-memory dataset every loader fills and every model reads.
 *
 * An interaction table is columnar: parallel arrays user[], item[], ts[], rating[] of length
 * n, plus optional extra label columns (click, conversion...). Users and items are dense
 * 0-based indices; the vocabularies map external ids (strings as they appear in the file)
 * to those indices and back. Row order is the load order; loaders of already-ordered files
 * (SASRec text) keep it, and timestamps are synthesised as the position within the user's
 * sequence when the file has none (flag RLAB_INTER_SYNTH_TS).
 *
 * Feature tables hold per-entity (item or user) columns of four kinds: categorical (one
 * token), multi-valued tokens (genres), numeric (float), free text (titles, UTF-8).
 *
 *     rlab_dataset *ds = rlab_dataset_new("ml-100k", &err);
 *     ... a loader fills ds->inter, ds->users, ds->items, ds->item_feats ...
 *     printf("%d users, %d items, %zu interactions\n",
 *            rlab_vocab_size(&ds->users), rlab_vocab_size(&ds->items), ds->inter.n);
 *     rlab_dataset_free(ds);
 *
 * Ownership: a dataset owns all its columns, vocabularies and feature tables. Nothing in a
 * dataset is shared with another dataset. Not thread-safe for writing; concurrent readers
 * are fine.
 */
#ifndef RLAB_DATA_TABLE_H
#define RLAB_DATA_TABLE_H

#include "base/base.h"

#include <stddef.h>
#include <stdint.h>

/* ---- vocabulary: external id string <-> dense index ---------------------------------- */
typedef struct rlab_vocab {
    char **names; /* [n] external ids, owned */
    int32_t n, cap;
    /* open-addressing hash table over names (indices into names, -1 = empty) */
    int32_t *slots;
    uint32_t nslots; /* power of two */
} rlab_vocab;

RLAB_API void rlab_vocab_init(rlab_vocab *v);
RLAB_API void rlab_vocab_clear(rlab_vocab *v); /* frees everything, leaves an empty vocab */
/* Index of name (len bytes, need not be NUL-terminated), adding it if new. -1 on ENOMEM. */
RLAB_API int32_t rlab_vocab_add(rlab_vocab *v, const char *name, size_t len);
/* Index of name or -1 if absent. */
RLAB_API int32_t rlab_vocab_find(const rlab_vocab *v, const char *name, size_t len);
static inline int32_t rlab_vocab_size(const rlab_vocab *v) { return v->n; }
static inline const char *rlab_vocab_name(const rlab_vocab *v, int32_t i)
{
    return (i >= 0 && i < v->n) ? v->names[i] : NULL;
}

/* ---- interactions ---------------------------------------------------------------------- */
enum {
    RLAB_INTER_HAS_TS = 1u << 0,     /* ts[] holds real timestamps from the file */
    RLAB_INTER_SYNTH_TS = 1u << 1,   /* ts[] is the position in the file order */
    RLAB_INTER_HAS_RATING = 1u << 2, /* rating[] is meaningful (else all 1) */
};

#define RLAB_INTER_MAX_LABELS 4

typedef struct rlab_inter {
    size_t n, cap;
    int32_t *user; /* [n] dense user index */
    int32_t *item; /* [n] dense item index */
    int64_t *ts;   /* [n] unix seconds, or synthetic order */
    float *rating; /* [n] */
    int nlabels;   /* extra label columns (e.g. click, conversion) */
    char label_names[RLAB_INTER_MAX_LABELS][32];
    float *labels[RLAB_INTER_MAX_LABELS]; /* [n] each */
    unsigned flags;
} rlab_inter;

RLAB_API void rlab_inter_init(rlab_inter *t);
RLAB_API void rlab_inter_clear(rlab_inter *t);
/* Append one row (labels may be NULL when nlabels == 0). RLAB_ENOMEM on failure. */
RLAB_API int rlab_inter_push(rlab_inter *t, int32_t user, int32_t item, int64_t ts, float rating,
                             const float *labels);
RLAB_API int rlab_inter_reserve(rlab_inter *t, size_t cap);

/* ---- feature tables ------------------------------------------------------------------- */
typedef enum rlab_feat_kind {
    RLAB_FEAT_TOKEN,     /* one categorical value per entity: int32 index into vocab */
    RLAB_FEAT_TOKEN_SEQ, /* several values (genres): CSR offsets + int32 indices into vocab */
    RLAB_FEAT_FLOAT,     /* one float per entity */
    RLAB_FEAT_TEXT,      /* UTF-8 string per entity (titles) */
} rlab_feat_kind;

typedef struct rlab_feat_col {
    char name[64];
    rlab_feat_kind kind;
    rlab_vocab vocab; /* TOKEN / TOKEN_SEQ value vocabulary */
    int32_t *tok;     /* TOKEN: [n_entities], -1 = missing */
    int64_t *off;     /* TOKEN_SEQ: [n_entities + 1] offsets into seq */
    int32_t *seq;     /* TOKEN_SEQ values */
    float *num;       /* FLOAT: [n_entities], NAN = missing */
    char **text;      /* TEXT: [n_entities] owned strings, NULL = missing */
} rlab_feat_col;

/* Features of one entity type (items or users), rows indexed by the dataset's dense index. */
typedef struct rlab_feats {
    int32_t n_entities;
    int ncols, cap;
    rlab_feat_col *cols;
} rlab_feats;

RLAB_API void rlab_feats_init(rlab_feats *f);
RLAB_API void rlab_feats_clear(rlab_feats *f);
/* The column named name, or NULL. */
RLAB_API rlab_feat_col *rlab_feats_find(const rlab_feats *f, const char *name);
/* A new empty column (no values allocated: the caller sizes tok / seq / num / text), or NULL
 * out of memory. The pointer is valid until the next column is added. */
RLAB_API rlab_feat_col *rlab_feats_add(rlab_feats *f, const char *name, rlab_feat_kind kind);

/* ---- dataset -------------------------------------------------------------------------- */
typedef struct rlab_dataset {
    char name[64];
    char source[512]; /* path(s) it was loaded from */
    char format[32];  /* "recbole", "ml-100k", "ml-1m", "sasrec", "seqline", "csv", "world" */
    rlab_vocab users, items;
    rlab_inter inter;
    rlab_feats user_feats, item_feats;
    /* Optional ranked item lists attached to interaction rows (w == 0: none). Row r's list is
     * items[r * w .. r * w + w), best first, -1 padding; by convention it is a teacher's answer
     * to the prefix of r's user that ends with row r (time order), i.e. a distillation target
     * for the next position (plugins/attack writes it, seqrec loss=rank reads it). Owned by the
     * dataset (rlab_free'd by rlab_dataset_free); loaders leave it empty, and nothing that
     * copies or filters datasets carries it over. Appended in ABI 3. */
    struct {
        int w;
        int32_t *items; /* [inter.n][w] or NULL */
    } lists;
    /* A tabular dataset (data/tabular.h: CTR / multi-task samples with fixed parts) instead
     * of, or beside, interactions: the host's data view and training loop feed its samples to
     * kinds flagged RLAB_KIND_TABULAR, and `eval` reports per-task AUC / GAUC / log loss.
     * Owned (freed by rlab_dataset_free); NULL for interaction datasets. Appended. */
    struct rlab_tabular *tab;
} rlab_dataset;

/* An empty dataset named name (copied; NULL = ""), owned by the caller. NULL with
 * RLAB_ENOMEM, or RLAB_EINVAL for a name longer than 63 bytes (refused, not cut: see
 * rlab_name_check). */
RLAB_API rlab_dataset *rlab_dataset_new(const char *name, rlab_err *err);
/* Free ds and everything it owns. NULL-safe. */
RLAB_API void rlab_dataset_free(rlab_dataset *ds);

#endif /* RLAB_DATA_TABLE_H */
