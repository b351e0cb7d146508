/*
 * core/eval/rank: ranking metrics at a cut-off k, the rank of a target in a full score
 * vector (with an explicit tie rule), top-k selection, negative sampling for the sampled
 * protocol, and fidelity between two rankers (agreement@k, exact-match@k).
 *
 *     // one ranked list against a set of relevant items
 *     int32_t list[] = {7, 3, 9}, rel[] = {3, 4};
 *     rlab_eval_atk m;
 *     rlab_eval_list_metrics(list, 3, rel, 2, 3, &m);   // m.hr = 1, m.ndcg = 0.6309/1.6309
 *
 *     // rank of item 42 among all n items, history masked, ties counted pessimistically
 *     double r;
 *     rlab_eval_rank(scores, n, 42, hist, n_hist, RLAB_TIE_PESSIMISTIC, &r, &err);
 *     double ndcg10 = rlab_eval_ndcg_at_rank(r, 10);
 *
 * Definitions (binary relevance; positions are 0-based, position p has discount
 * 1/log2(p+2)); with R = the relevant set and hits = relevant items among the top k:
 *   HR@k        1 if hits > 0 else 0
 *   Recall@k    hits / |R|
 *   Precision@k hits / k          (a list shorter than k counts its missing slots as misses)
 *   NDCG@k      DCG@k / IDCG@k, IDCG over min(|R|, k) ideal positions
 *   MRR@k       1 / (p+1) for the first relevant position p < k, 0 if none
 *   MAP@k       sum over relevant positions p < k of (hits in 0..p)/(p+1), divided by
 *               min(|R|, k)
 * An empty relevant set gives all zeros (the evaluator skips such users).
 *
 * Tie rule for ranks computed from scores (items scoring exactly like the target):
 *   RLAB_TIE_OPTIMISTIC   the target wins every tie: rank = #(score > s). This is what
 *                         RecBole's and the MQSA-TED code's strict ">" count effectively do.
 *   RLAB_TIE_PESSIMISTIC  the target loses every tie: rank = #(score >= s) - 1.
 *   RLAB_TIE_AVERAGE      ties broken uniformly at random, reported as the exact expectation:
 *                         the rank is gt + eq/2 and every metric is the expected metric
 *                         value (not the metric of the expected rank). The DEFAULT of the
 *                         evaluator: it neither rewards nor punishes constant scorers.
 * Items with NaN scores are never counted above the target.
 */
#ifndef RLAB_EVAL_RANK_H
#define RLAB_EVAL_RANK_H

#include "base/base.h"

enum { RLAB_TIE_AVERAGE = 0, RLAB_TIE_OPTIMISTIC = 1, RLAB_TIE_PESSIMISTIC = 2 };

/* Stable name of a tie rule ("average", "optimistic", "pessimistic"; "?" otherwise). */
RLAB_API const char *rlab_eval_tie_name(int tie);

/* The six ranking metrics at one cut-off. */
typedef struct rlab_eval_atk {
    double hr, recall, precision, ndcg, mrr, map;
} rlab_eval_atk;

/* Metrics of one ranked list list[0..n_list) (best first, distinct items; entries < 0 are
 * empty slots) against distinct relevant items rel[0..n_rel), cut at k >= 1 (k may exceed
 * n_list). Fills *out (all zeros when n_rel == 0 or k < 1). Thread-safe, no allocation. */
RLAB_API void rlab_eval_list_metrics(const int32_t *list, int64_t n_list, const int32_t *rel,
                                     int64_t n_rel, int k, rlab_eval_atk *out);

/* From a single target at 0-based rank r (may be fractional, e.g. an expected rank):
 * HR@k = [r < k]; NDCG@k = 1/log2(r+2) if r < k else 0. */
RLAB_API double rlab_eval_hr_at_rank(double rank, int k);
RLAB_API double rlab_eval_ndcg_at_rank(double rank, int k);

/* Rank of item `target` in scores[0..n) (0 = best) under `tie`, ignoring the items in
 * mask[0..n_mask) (duplicates fine; the target itself is never masked). rank is gt (opt),
 * gt + eq (pess) or gt + eq/2 (average), gt/eq counted over the other unmasked items.
 * Errors: RLAB_EINVAL (target out of range, NaN target score, bad tie), RLAB_ENOMEM. */
RLAB_API int rlab_eval_rank(const float *scores, int32_t n, int32_t target, const int32_t *mask,
                            int64_t n_mask, int tie, double *rank, rlab_err *err);

/* A tie group of relevant items as seen from the full ranking: the group starts at 0-based
 * position pos (number of items scoring strictly higher, relevant or not), holds `a`
 * relevant items and n - a non-relevant items with exactly the same score. */
typedef struct rlab_eval_group {
    int64_t pos, a, n;
} rlab_eval_group;

/* Metrics at cut-off k from tie groups g[0..ng) sorted by pos ascending (every relevant item
 * in exactly one group, n_rel = sum of a), under `tie` (see the header overview; AVERAGE is
 * the exact expectation over uniformly random tie breaking). Thread-safe. */
RLAB_API void rlab_eval_group_metrics(const rlab_eval_group *g, int ng, int64_t n_rel, int k,
                                      int tie, rlab_eval_atk *out);

/* Top-k of scores[0..n): writes up to k item indices (best first) to items and, if scores_out
 * is not NULL, their scores. NaN scores are skipped. Ties are broken by the lower item index
 * (deterministic). Returns the number written, min(k, #non-NaN), or -1 when out of memory
 * (only k > 256 allocates). O(n) vector compares plus O(k log(n/k)) expected scalar work on
 * a random row (a candidate buffer whose threshold rejects most items). Thread-safe. */
RLAB_API int rlab_eval_topk(const float *scores, int32_t n, int k, int32_t *items,
                            float *scores_out);

/* Top-k and a target's counts in ONE pass over scores[0..n): the k best non-NaN items as
 * rlab_eval_topk gives them (same order, ties by lower index; k < 1 = counts only), and
 * *gt = #(scores > s), *ge = #(scores >= s) over the whole row (NaN in neither; the item
 * holding s itself counts in *ge). gt/ge may be NULL. The scan compares a block of scores
 * at a time against the current k-th best and walks a block only when one beats it.
 * Returns the number of items written, or -1 when out of memory (only k > 256 allocates).
 * Thread-safe. */
RLAB_API int rlab_eval_topk_count(const float *scores, int32_t n, int k, float s, int32_t *items,
                                  float *scores_out, int64_t *gt, int64_t *ge);

/* Sampled protocol: draw n_neg distinct negatives uniformly from [0, n_items) minus the
 * history hist[0..n_hist) and the targets tgt[0..n_tgt), using a generator seeded from
 * (seed, user) only, so the draw does not depend on batching or threads. When fewer than
 * n_neg items are eligible, all of them are returned. Writes to out[0..n_neg); returns the
 * number drawn via *n_out. mark is caller scratch of n_items bytes, all zero on entry and on
 * return. Errors: RLAB_EINVAL (bad arguments). Thread-safe with distinct mark buffers. */
RLAB_API int rlab_eval_sample_negatives(int32_t n_items, const int32_t *hist, int64_t n_hist,
                                        const int32_t *tgt, int64_t n_tgt, int n_neg, uint64_t seed,
                                        int32_t user, uint8_t *mark, int32_t *out, int *n_out,
                                        rlab_err *err);

/* Fidelity of ranker b to ranker a over n_users top lists of width w (row-major [n][w],
 * entries < 0 are empty slots), at cut-off k <= w:
 *   agreement@k   = mean over users of |top-k(a) ∩ top-k(b)| / k
 *   exact-match@k = mean over users of (1/k) #{r < k : a[r] == b[r] >= 0}  (Yue et al.)
 * Errors: RLAB_EINVAL (k < 1, k > w, n_users < 1). */
RLAB_API int rlab_eval_agreement(const int32_t *a, const int32_t *b, int64_t n_users, int w, int k,
                                 double *agreement, double *exact_match, rlab_err *err);

#endif /* RLAB_EVAL_RANK_H */
