/*
 * core/data/tabular: CTR / multi-task samples. One row per impression: several 0/1 labels
 * (click, conversion, income, ...), categorical fields (a vocabulary or hashed buckets),
 * multi-valued fields and behaviour sequences (token lists), numeric fields, an optional
 * group id (the user, for GAUC) and an optional time. Unlike rlab_dataset (user x item
 * interactions) a sample here is a whole feature vector, which is what CTR and multi-task
 * rankers read.
 *
 *     rlab_tab_spec sp;
 *     rlab_tab_spec_init(&sp);
 *     sp.sep = ",";  sp.header = 1;
 *     rlab_tab_spec_map(&sp, "click:label, conversion:label, search_id:group, "
 *                            "categorical_*:cat, numerical_*:num", &err);
 *     rlab_tabular *t = NULL;
 *     if (rlab_tabular_load("train.csv", &sp, NULL, &t, &err)) puts(err.msg);
 *     // or: rlab_tabular_load_preset("census", "census-income.sample", NULL, &t, &err);
 *     printf("%lld samples, %d labels\n", (long long)t->n, t->nlabels);
 *     rlab_tabular_free(t);
 *
 * The column mapping (rlab_tab_spec_map) is a comma-separated list of SELECTOR:ROLE[:OPT]:
 *   SELECTOR  a header name; a prefix pattern "C*" (and "*" for every column); "#N" the
 *             0-based field N; "#N-M" fields N..M. The first entry that matches a column
 *             decides its role; columns no entry matches are skipped.
 *   ROLE      label | cat | multi | seq | num | group | time | skip
 *   OPT       label:=VALUE   1 when the field (blanks trimmed) equals VALUE, else 0
 *                            (default: the field is a number, nonzero = 1)
 *             cat:hash=N / multi:hash=N / seq:hash=N   hash values into N buckets
 *                            (default: a vocabulary of the values seen)
 *             multi:sep=X / seq:sep=X   value separator inside the field (default "|")
 * Fields are trimmed of surrounding blanks before use (census-income writes ", Private").
 *
 * Ids. Token id 0 means "missing" (empty field, "?" is a value like any other); a
 * vocabulary field's values get 1..card-1 in order of first appearance; a hashed field's
 * value v gets 1 + fnv1a64(v) % N (card = N + 1). Numeric fields keep the raw value (NAN
 * when empty); time fields are int64 (a float is truncated).
 *
 * Errors name the file and line (RLAB_EFORMAT): too many or too few fields (a header file
 * needs exactly the header's count; spec.min_fields allows shorter rows, read as empty
 * trailing fields, which raw Criteo TSV needs), a non-numeric numeric/label/time field, a
 * mapping entry naming a column the header lacks, no label column, an empty file.
 * RLAB_EIO for an unreadable file, RLAB_EINVAL for a bad mapping / option.
 */
#ifndef RLAB_DATA_TABULAR_H
#define RLAB_DATA_TABULAR_H

#include "base/base.h"
#include "data/table.h"

#include <stddef.h>
#include <stdint.h>

#define RLAB_TAB_MAX_COLS 512 /* fields per line the loader accepts */
#define RLAB_TAB_MAX_MAP 64   /* mapping entries */
#define RLAB_TAB_MAX_LABELS 8

typedef enum rlab_tab_role {
    RLAB_TAB_SKIP = 0,
    RLAB_TAB_LABEL,
    RLAB_TAB_CAT,   /* one token */
    RLAB_TAB_MULTI, /* a bag of tokens (genres, tags) */
    RLAB_TAB_SEQ,   /* an ordered behaviour sequence (like MULTI, order kept, oldest first) */
    RLAB_TAB_NUM,
    RLAB_TAB_GROUP, /* group / user id (for GAUC), also usable as a categorical field */
    RLAB_TAB_TIME,
} rlab_tab_role;

/* One mapping entry (see the header comment). */
typedef struct rlab_tab_map {
    char pattern[64]; /* name, "prefix*", or "" with first/last field indices */
    int first, last;  /* "#N-M" (pattern empty); -1 otherwise */
    rlab_tab_role role;
    uint32_t hash;     /* buckets for cat/multi/seq, 0 = vocabulary */
    char sep[8];       /* multi/seq value separator */
    char positive[64]; /* label: positive value text; "" = numeric label */
    int has_positive;
} rlab_tab_map;

typedef struct rlab_tab_spec {
    const char *sep;          /* field separator (NULL: ","; "\t" for TSV) */
    int header;               /* 1: the first line names the columns */
    int min_fields;           /* > 0: rows may have this many fields or more (missing = empty) */
    const char *const *names; /* headerless files: column names, NULL-terminated (else c0..) */
    int nmap;
    rlab_tab_map map[RLAB_TAB_MAX_MAP];
} rlab_tab_spec;

RLAB_API void rlab_tab_spec_init(rlab_tab_spec *sp);
/* Append the entries of a mapping text to sp (see above). RLAB_EINVAL naming the entry. */
RLAB_API int rlab_tab_spec_map(rlab_tab_spec *sp, const char *text, rlab_err *err);

/* A token field (cat, multi, seq, group-as-token). */
typedef struct rlab_tab_field {
    char name[64];
    rlab_tab_role role; /* CAT, MULTI or SEQ */
    uint32_t hash;      /* buckets (0: vocabulary) */
    int32_t card;       /* ids are 0..card-1 (0 = missing) */
    rlab_vocab vocab;   /* vocabulary fields: value text of id k is names[k-1] */
    int shares;         /* index of the field whose ids (and embedding) this one uses, -1 */
    int32_t *ids;       /* CAT: [n]; MULTI/SEQ: [off[n]] */
    int64_t *off;       /* MULTI/SEQ: [n+1] CSR offsets; NULL for CAT */
} rlab_tab_field;

typedef struct rlab_tabular {
    char name[64];
    char source[512];
    char preset[32];
    int64_t n, cap; /* samples (cap: allocated, private) */
    int nlabels;
    char label_names[RLAB_TAB_MAX_LABELS][32];
    float *labels; /* [n][nlabels], each 0 or 1 */
    int nfields;
    rlab_tab_field *fields; /* [nfields] token fields */
    int nnum;
    char (*num_names)[64]; /* [nnum] */
    float *num;            /* [n][nnum], NAN = missing */
    int32_t *group;        /* [n] dense group index, or NULL */
    rlab_vocab groups;
    int64_t *time; /* [n] or NULL */
    /* The fixed train / valid / test parts (rlab_tabular_set_parts; NULL / 0 until set):
     * row indices in the order training reads them (time order for a time split, the seeded
     * permutation's order otherwise), shared by every model trained on the table. Appended. */
    int64_t *part_rows[3];
    int64_t part_n[3];
    char part_desc[64]; /* "time 0.70/0.10/0.20", "random ...", "test file; valid 0.10 random" */
} rlab_tabular;

/* Load a delimited file with spec. name (NULL: the file name without extension). */
RLAB_API int rlab_tabular_load(const char *path, const rlab_tab_spec *sp, const char *name,
                               rlab_tabular **out, rlab_err *err);
/* The same over a memory buffer; label names the buffer in errors (NULL: "<buffer>"). */
RLAB_API int rlab_tabular_load_buffer(const void *buf, size_t n, const rlab_tab_spec *sp,
                                      const char *label, rlab_tabular **out, rlab_err *err);

/* Presets for the files of shared/data/ctr (README there):
 *   "criteo"        raw Criteo DAC TSV, no header: label, I1..I13 (num), C1..C26 (cat);
 *                   rows with cut trailing fields (37..40 fields) read as empty fields
 *   "criteo_sample" DeepCTR's CSV with header label,I1..I13,C1..C26
 *   "avazu"         DeepCTR's avazu_sample CSV: click label; id skipped; hour and the 21
 *                   other fields categorical (hour also as time)
 *   "census"        census-income, no header, a row id then DeepCTR's 42 columns; two labels
 *                   as DeepCTR's MMoE example builds them: income (income_50k = "50000+.")
 *                   and marital (marital_stat = "Never married"); its 29 sparse columns
 *                   categorical, the other 11 numeric (both label columns are not features)
 *   "tiny_mtl"      FuxiCTR tiny_mtl CSV: click and conversion labels, search_id as group
 *                   (and categorical), categorical_* cat, numerical_* num
 * The spec of a preset (to change and reuse) by rlab_tab_preset_spec; RLAB_EINVAL for an
 * unknown preset, naming the known ones. */
RLAB_API int rlab_tab_preset_spec(const char *preset, rlab_tab_spec *sp, rlab_err *err);
RLAB_API int rlab_tabular_load_preset(const char *preset, const char *path, const char *name,
                                      rlab_tabular **out, rlab_err *err);
/* Comma-separated preset names, for help texts. */
RLAB_API const char *rlab_tab_presets(void);

/* Multi-task samples from an interaction dataset with ratings (ML-100K): for every rated
 * (user, item) in the user's time order one positive impression (click = 1, like = rating
 * >= like_min) and `negatives` impressions of items the user never rated, drawn uniformly
 * with the seed (click = 0, like = 0). Fields: user (cat, also the group), item (cat),
 * every TOKEN / TOKEN_SEQ item and user feature (cat / multi), FLOAT features (num), and
 * "history": the user's last max_hist rated items before this one (seq, sharing item's
 * ids); time = the rating's timestamp. RLAB_EINVAL when ds has no ratings. */
typedef struct rlab_tab_mt_opts {
    int negatives;  /* per positive (default 1) */
    float like_min; /* default 4 */
    int max_hist;   /* default 20 */
    uint64_t seed;
} rlab_tab_mt_opts;
RLAB_API void rlab_tab_mt_opts_init(rlab_tab_mt_opts *o);
RLAB_API int rlab_tabular_from_ratings(const rlab_dataset *ds, const rlab_tab_mt_opts *o,
                                       rlab_tabular **out, rlab_err *err);
/* The same fields, one sample per interaction, with the dataset's own label columns as the
 * labels (RecBole atomic .inter files with float columns label / click / conversion...:
 * nonzero = 1); no negatives are drawn (o->negatives and like_min are ignored; o may be NULL).
 * RLAB_EINVAL when ds has no label columns. */
RLAB_API int rlab_tabular_from_labels(const rlab_dataset *ds, const rlab_tab_mt_opts *o,
                                      rlab_tabular **out, rlab_err *err);

/* A synthetic multi-task world with known structure: n samples of `fields` categorical
 * fields (cardinalities 5..200), 4 numeric fields, a user group (users), a behaviour
 * sequence of up to 10 items and two labels drawn from logistic models: "click" from field
 * embeddings' pairwise interactions plus the sequence-target match, "conversion" that
 * shares half of click's logit and adds its own interactions, positive only when clicked
 * (the CTR -> CVR funnel). Deterministic in seed. */
RLAB_API int rlab_tabular_synth(int64_t n, int fields, int users, uint64_t seed, rlab_tabular **out,
                                rlab_err *err);

/* Seeded split of samples into train / valid / test index lists (caller frees each with
 * rlab_free): by time when t->time exists and by_time, else a random permutation. */
RLAB_API int rlab_tabular_split(const rlab_tabular *t, double valid, double test, int by_time,
                                uint64_t seed, int64_t **train, int64_t *ntrain, int64_t **val,
                                int64_t *nval, int64_t **tst, int64_t *ntest, rlab_err *err);

/* Fix the parts of t once (what the host's data view and every model of the table use):
 * test_from < 0: rlab_tabular_split(t, valid, test, by_time = t->time != NULL, seed);
 * test_from >= 0: rows [test_from, n) are the test part (a separate test file appended to the
 * training file) and a random `valid` share of rows [0, test_from) the valid part. Replaces
 * parts set before. RLAB_EINVAL (bad shares, test_from > n), RLAB_ENOMEM. */
RLAB_API int rlab_tabular_set_parts(rlab_tabular *t, double valid, double test, int64_t test_from,
                                    uint64_t seed, rlab_err *err);

/* Number of groups (users) of t: its group vocabulary's size, or 1 + the largest group index
 * when the groups were given as indices (rlab_tabular_from_ratings); 0 without groups. */
RLAB_API int32_t rlab_tabular_ngroups(const rlab_tabular *t);

/* Index of the label / token field / numeric field named name, or -1. */
RLAB_API int rlab_tabular_label(const rlab_tabular *t, const char *name);
RLAB_API int rlab_tabular_field(const rlab_tabular *t, const char *name);
/* Positive rate of label j. */
RLAB_API double rlab_tabular_pos_rate(const rlab_tabular *t, int j);
RLAB_API void rlab_tabular_free(rlab_tabular *t);

#endif /* RLAB_DATA_TABULAR_H */
