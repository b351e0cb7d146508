/*
 * core/eval/text: corpus text metrics for generated responses (CRS, LLM agents).
 *
 * Tokens are whitespace-separated words (space, tab, newline, CR, VT, FF); no lower-casing
 * or punctuation splitting is done (do that before, if wanted). n-grams never cross
 * sentence boundaries.
 *
 *     const char *hyp[] = {"the cat sat on the mat"}, *ref[] = {"the cat is on the mat"};
 *     double b2, d1;
 *     rlab_eval_bleu(hyp, ref, 1, 2, &b2, &err);                        // sqrt(5/6 * 3/5)
 *     rlab_eval_distinct(hyp, 1, 1, RLAB_DISTINCT_STANDARD, &d1, &err);  // 5/6
 *
 * Distinct-n, two labelled definitions:
 *   RLAB_DISTINCT_STANDARD  (Li et al. 2016) #unique n-grams / #n-grams over the whole
 *                           corpus; 0 when the corpus has no n-gram.
 *   RLAB_DISTINCT_UNICRS    what the UniCRS evaluation code reports as dist@n: #unique
 *                           n-grams over the corpus divided by the number of non-empty
 *                           sentences (evaluate_conv.py counts a prediction only when its
 *                           stripped text is not empty: here, when it has a token); 0 when
 *                           none is. Not a ratio in [0, 1]: it grows with sentence length.
 * BLEU-n: corpus BLEU (Papineni et al.), one reference per hypothesis, uniform weights 1/n
 * over 1..n-grams (n <= 4), clipped n-gram precisions summed over the corpus, brevity
 * penalty exp(1 - r/c) when the total hypothesis length c <= total reference length r.
 * No smoothing: any zero precision gives BLEU 0.
 * Errors: RLAB_EINVAL (n outside 1..4, unknown variant, NULL sentence), RLAB_ENOMEM.
 * Sentences are borrowed for the call. Thread-safe.
 */
#ifndef RLAB_EVAL_TEXT_H
#define RLAB_EVAL_TEXT_H

#include "base/base.h"

enum { RLAB_DISTINCT_STANDARD = 0, RLAB_DISTINCT_UNICRS = 1 };

/* Distinct-n of sents[0..n_sents) under `variant`. */
RLAB_API int rlab_eval_distinct(const char *const *sents, int64_t n_sents, int n, int variant,
                                double *out, rlab_err *err);

/* Corpus BLEU-max_n of hyps[i] against refs[i], i < n_pairs. */
RLAB_API int rlab_eval_bleu(const char *const *hyps, const char *const *refs, int64_t n_pairs,
                            int max_n, double *bleu, rlab_err *err);

#endif /* RLAB_EVAL_TEXT_H */
