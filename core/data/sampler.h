/*
 * core/data/sampler: negative item samplers for implicit-feedback training (BPR, sampled
 * softmax) and sampled evaluation.
 *
 * Two distributions: uniform over all items, and popularity-proportional (weight_i =
 * count_i^alpha, or any non-negative weights) drawn in O(1) through Walker's alias table.
 * Either can exclude a user's history: the sampler keeps, per user, the sorted set of items
 * the user has seen (built once from an rlab_seqs), draws by rejection with a bounded number
 * of retries (membership by binary search), and when the retries run out falls back to an
 * exact linear scan over the unseen items, so a draw always terminates and is exactly
 * distributed (the target distribution restricted to the unseen items) even for a user who
 * has seen all but one item.
 *
 *     rlab_sampler *s = rlab_sampler_new_pop(&train_seqs, n_items, 1.0, &err);
 *     rlab_sampler_set_exclude(s, &train_seqs, &err);      // never draw a seen item
 *     rlab_rng rng; rlab_rng_seed(&rng, 7);
 *     int32_t neg;
 *     if (rlab_sampler_draw(s, &rng, user, &neg, &err) != RLAB_OK) ... // ESTATE: seen all
 *     rlab_sampler_free(s);
 *
 * Ownership: the sampler copies what it needs (weights, the per-user seen sets); the seqs
 * passed in are borrowed only during the call. Thread-safety: drawing only reads the
 * sampler, so several threads may draw concurrently, each with its own rlab_rng.
 */
#ifndef RLAB_DATA_SAMPLER_H
#define RLAB_DATA_SAMPLER_H

#include "data/split.h"

typedef struct rlab_sampler rlab_sampler;

/* Rejection attempts per draw before the exact linear-scan fallback. */
#define RLAB_SAMPLER_RETRIES 32

/* Uniform over [0, n_items). NULL on error (EINVAL when n_items < 1, ENOMEM). */
RLAB_API rlab_sampler *rlab_sampler_new_uniform(int32_t n_items, rlab_err *err);

/* Proportional to weights[i] >= 0 (copied), i in [0, n_items). The weights must be finite
 * with a positive sum (EINVAL otherwise). */
RLAB_API rlab_sampler *rlab_sampler_new_weighted(const double *weights, int32_t n_items,
                                                 rlab_err *err);

/* Popularity: weight_i = count_i^alpha with count_i the number of occurrences of item i in
 * seqs (alpha = 1: proportional to popularity; 0.75 word2vec-style smoothing; items never
 * seen get weight 0 and are never drawn unless the history fallback needs them, see
 * rlab_sampler_draw). Items in seqs outside [0, n_items) are EINVAL, and so is an empty
 * seqs (no popularity to sample from). */
RLAB_API rlab_sampler *rlab_sampler_new_pop(const rlab_seqs *seqs, int32_t n_items, double alpha,
                                            rlab_err *err);

RLAB_API void rlab_sampler_free(rlab_sampler *s);

/* Exclude, for every user u < hist->n_users, the items of hist's row u (duplicates fine).
 * Replaces a previous exclusion set. EINVAL when an item is out of range, ENOMEM. */
RLAB_API int rlab_sampler_set_exclude(rlab_sampler *s, const rlab_seqs *hist, rlab_err *err);

/* Draw one item for user (user < 0 or without an exclusion set: no exclusion; a user
 * beyond the exclusion set's rows has an empty history). With exclusion, the result is
 * never one of the user's items. If every unseen item has weight 0 (popularity sampler),
 * the draw is uniform over the unseen items. Errors: RLAB_ESTATE when the user has seen
 * every item (there is nothing to draw). */
RLAB_API int rlab_sampler_draw(const rlab_sampler *s, rlab_rng *rng, int32_t user, int32_t *out,
                               rlab_err *err);

/* n draws for the same user into out[n] (independent, with replacement). */
RLAB_API int rlab_sampler_draw_n(const rlab_sampler *s, rlab_rng *rng, int32_t user, int32_t *out,
                                 int32_t n, rlab_err *err);

/* 1 when item is in the user's exclusion set, else 0. */
RLAB_API int rlab_sampler_is_seen(const rlab_sampler *s, int32_t user, int32_t item);

/* Number of items the sampler ranges over. */
RLAB_API int32_t rlab_sampler_n_items(const rlab_sampler *s);

/* The sampling probability of item i without exclusion (weights normalised). */
RLAB_API double rlab_sampler_prob(const rlab_sampler *s, int32_t item);

#endif /* RLAB_DATA_SAMPLER_H */
