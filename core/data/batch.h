/*
 * core/data/batch: mini-batches for training, filled into buffers allocated once.
 *
 * (a) Next-item sequences (SASRec, MQSA-TED, the attack's surrogate). For a user with
 *     training sequence s[0..L), the training pair is input = s[0..L-1), target = s[1..L),
 *     cut to the last T positions and LEFT-padded, so the most recent item is always in
 *     column T-1:
 *
 *         s = [a b c d e], T = 6  ->  input  = [P P a b c d]
 *                                    target = [P P b c d e]
 *                                    mask   = [0 0 1 1 1 1]
 *
 *     The pad id is RLAB_PAD(n_items) == n_items (as in MQSA-TED: the embedding table has
 *     n_items + 1 rows and row n_items is the padding row). The inference form uses the
 *     whole history as input (last T items, left-padded), with no target.
 * (b) BPR triples (user, pos, neg): every training interaction once per epoch, in a seeded
 *     shuffled order, with a negative from an rlab_sampler (with or without exclusion).
 *
 *     rlab_seq_batcher *b = rlab_seq_batcher_new(&train, n_items, 128, 50, seed, &err);
 *     for (int ep = 0; ep < epochs; ep++) {
 *         rlab_seq_batcher_epoch(b);                  // reshuffle the users
 *         int n;
 *         while ((n = rlab_seq_batcher_next(b)) > 0)  // b->input, b->target, b->mask [B][T]
 *             train_step(b->input, b->target, b->mask, n);
 *     }
 *     rlab_seq_batcher_free(b);
 *
 * Ownership: a batcher borrows the seqs (and sampler) it was created with; they must outlive
 * it and not change. Its buffers are owned by it and are overwritten by every _next call; no
 * allocation happens after _new. Not thread-safe (one batcher per thread).
 */
#ifndef RLAB_DATA_BATCH_H
#define RLAB_DATA_BATCH_H

#include "data/sampler.h"
#include "data/split.h"

/* The padding item id for a catalogue of n_items items. */
#define RLAB_PAD(n_items) ((int32_t)(n_items))

/* Fill one training row per users[b] (b < B): input/target int32 [B][T], mask float [B][T]
 * (1 where target is a real item). A user id < 0 or >= s->n_users, or a user with fewer
 * than 2 items, gives an all-pad row with mask 0. Never fails. target/mask may be NULL. */
RLAB_API void rlab_seq_fill_train(const rlab_seqs *s, const int32_t *users, int B, int T,
                                  int32_t pad, int32_t *input, int32_t *target, float *mask);

/* Inference form: input = the last T items of the full history, left-padded; mask (may be
 * NULL) marks real items. An unknown user gives an all-pad row. */
RLAB_API void rlab_seq_fill_infer(const rlab_seqs *s, const int32_t *users, int B, int T,
                                  int32_t pad, int32_t *input, float *mask);

/* Epoch iterator over users (seeded shuffle; users with fewer than 2 items are skipped). */
typedef struct rlab_seq_batcher {
    int B, T;
    int32_t pad;
    int32_t *users;  /* [B] users of the current batch (-1 in unused rows) */
    int32_t *input;  /* [B][T] */
    int32_t *target; /* [B][T] */
    float *mask;     /* [B][T] */
    /* private */
    const rlab_seqs *seqs;
    int32_t *order; /* [n_order] eligible users, shuffled each epoch */
    int32_t n_order, pos;
    rlab_rng rng;
} rlab_seq_batcher;

/* B >= 1, T >= 1. The first epoch is already shuffled (calling _epoch first is optional).
 * NULL on error (EINVAL for bad sizes, ENOMEM). */
RLAB_API rlab_seq_batcher *rlab_seq_batcher_new(const rlab_seqs *s, int32_t n_items, int B, int T,
                                                uint64_t seed, rlab_err *err);
RLAB_API void rlab_seq_batcher_free(rlab_seq_batcher *b);
/* Start a new epoch: reshuffle the user order (seeded stream, so epoch e is reproducible). */
RLAB_API void rlab_seq_batcher_epoch(rlab_seq_batcher *b);
/* Fill the next batch; returns the number of real rows n (1..B), 0 at the end of the epoch.
 * Rows n..B-1 are all-pad with mask 0 and users -1. */
RLAB_API int rlab_seq_batcher_next(rlab_seq_batcher *b);
/* Number of batches per epoch. */
RLAB_API int rlab_seq_batcher_n_batches(const rlab_seq_batcher *b);

/* BPR triples over all interactions of seqs, one epoch = every interaction once. */
typedef struct rlab_bpr_batcher {
    int B;
    int32_t *user; /* [B] */
    int32_t *pos;  /* [B] */
    int32_t *neg;  /* [B] */
    /* private */
    const rlab_seqs *seqs;
    const rlab_sampler *sampler;
    int64_t *order;  /* [nnz] interaction indices, shuffled each epoch */
    int32_t *row_of; /* [nnz] user of interaction k */
    int64_t nnz, pos_k;
    rlab_rng rng;
} rlab_bpr_batcher;

/* sampler (borrowed) draws the negatives; give it an exclusion set for "never a seen item".
 * NULL on error (EINVAL, ENOMEM). */
RLAB_API rlab_bpr_batcher *rlab_bpr_batcher_new(const rlab_seqs *s, const rlab_sampler *sampler,
                                                int B, uint64_t seed, rlab_err *err);
RLAB_API void rlab_bpr_batcher_free(rlab_bpr_batcher *b);
RLAB_API void rlab_bpr_batcher_epoch(rlab_bpr_batcher *b);
/* Fill the next batch: *n = rows filled (0 at the end of the epoch). Errors come from the
 * sampler (RLAB_ESTATE when a user has seen every item). */
RLAB_API int rlab_bpr_batcher_next(rlab_bpr_batcher *b, int *n, rlab_err *err);

#endif /* RLAB_DATA_BATCH_H */
