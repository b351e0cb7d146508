/*
 * core/data/split: per-user sequences, train/valid/test splits and k-core filtering.
 *
 * rlab_seqs is the CSR view every sequential model and the evaluator use: for user u, the
 * items items[off[u] .. off[u+1]) in time order (ties keep file order), with their times.
 *
 *     rlab_split sp;
 *     rlab_split_loo(&ds->inter, rlab_vocab_size(&ds->users), &sp, &err);
 *     rlab_seqs tr; rlab_seqs_from_inter(&sp.train, rlab_vocab_size(&ds->users), &tr, &err);
 *     ... sp.valid / sp.test hold at most one row per user for leave-one-out ...
 *     rlab_seqs_clear(&tr); rlab_split_clear(&sp);
 *
 * Leave-one-out (SASRec / MQSA-TED): per user in time order, last = test, second-last =
 * valid, the rest train; users with fewer than 3 interactions keep everything in train (as
 * SASRec's data_partition does). Temporal: rows with ts < cutoff train, the rest test
 * (valid = the last `valid_frac` of train time, optional). Ratio: per user random split,
 * seeded.
 */
#ifndef RLAB_DATA_SPLIT_H
#define RLAB_DATA_SPLIT_H

#include "data/table.h"

typedef struct rlab_seqs {
    int32_t n_users;
    int64_t *off;   /* [n_users + 1] */
    int32_t *items; /* [off[n_users]] */
    int64_t *ts;    /* [off[n_users]] */
} rlab_seqs;

/* Build time-ordered per-user sequences from an interaction table (stable by row order). */
RLAB_API int rlab_seqs_from_inter(const rlab_inter *t, int32_t n_users, rlab_seqs *out,
                                  rlab_err *err);
RLAB_API void rlab_seqs_clear(rlab_seqs *s);

typedef struct rlab_split {
    rlab_inter train, valid, test;
} rlab_split;

RLAB_API int rlab_split_loo(const rlab_inter *t, int32_t n_users, rlab_split *out, rlab_err *err);
/* Global temporal split: ts < test_cutoff -> train (or valid when ts >= valid_cutoff),
 * ts >= test_cutoff -> test. valid_cutoff <= test_cutoff; pass valid_cutoff = test_cutoff for
 * no validation set. */
RLAB_API int rlab_split_temporal(const rlab_inter *t, int64_t valid_cutoff, int64_t test_cutoff,
                                 rlab_split *out, rlab_err *err);
/* Per-user random ratio split (e.g. 0.8 / 0.1 / 0.1), seeded. */
RLAB_API int rlab_split_ratio(const rlab_inter *t, int32_t n_users, double train, double valid,
                              uint64_t seed, rlab_split *out, rlab_err *err);
RLAB_API void rlab_split_clear(rlab_split *s);

/* Iteratively drop users and items with fewer than k interactions, then re-index both
 * vocabularies densely (feature tables are remapped too). In place on the dataset. */
RLAB_API int rlab_kcore(rlab_dataset *ds, int k, rlab_err *err);

#endif /* RLAB_DATA_SPLIT_H */
