/*
 * core/eval/lists: beyond-accuracy metrics over a set of recommendation lists.
 *
 * Lists are row-major [n_lists][w] int32 item indices; entries < 0 are empty slots (the
 * evaluator's kept top-k lists use this form).
 *
 *     double cov, nov, ild, ent;
 *     rlab_eval_coverage(lists, n, w, n_items, &cov, &err);
 *     rlab_eval_novelty(lists, n, w, n_items, pop, &nov, &err);
 *     rlab_eval_ild(lists, n, w, n_items, vecs, dim, &ild, &err);
 *     rlab_eval_genre_entropy(lists, n, w, n_items, g_off, g_items, n_genres, &ent, &err);
 *
 * Definitions:
 *   coverage  |distinct recommended items| / n_items                 (catalogue coverage)
 *   novelty   mean over all recommended slots of -log2 pop[i]; pop[i] in (0, 1] is the
 *             item's popularity as a probability, typically #users who interacted / #users
 *   ILD       mean over lists with >= 2 items of 1 - (mean cosine over unordered pairs of
 *             its item vectors); a zero vector has cosine 0 with everything
 *   entropy   Shannon entropy in bits of the genre distribution of exposures: every
 *             recommended slot of item i adds 1 to each genre of i (genres in CSR form
 *             g_off[n_items+1], g_items[] in [0, n_genres)); items without genres add nothing
 * Errors (all): RLAB_EINVAL (an item outside [0, n_items), no lists, bad popularity),
 * RLAB_ENOMEM. All functions are thread-safe.
 */
#ifndef RLAB_EVAL_LISTS_H
#define RLAB_EVAL_LISTS_H

#include "base/base.h"

RLAB_API int rlab_eval_coverage(const int32_t *lists, int64_t n_lists, int w, int32_t n_items,
                                double *coverage, rlab_err *err);
RLAB_API int rlab_eval_novelty(const int32_t *lists, int64_t n_lists, int w, int32_t n_items,
                               const double *pop, double *novelty, rlab_err *err);
/* vecs: [n_items][dim] row-major item vectors. */
RLAB_API int rlab_eval_ild(const int32_t *lists, int64_t n_lists, int w, int32_t n_items,
                           const float *vecs, int dim, double *ild, rlab_err *err);
RLAB_API int rlab_eval_genre_entropy(const int32_t *lists, int64_t n_lists, int w, int32_t n_items,
                                     const int64_t *g_off, const int32_t *g_items, int32_t n_genres,
                                     double *entropy, rlab_err *err);

#endif /* RLAB_EVAL_LISTS_H */
