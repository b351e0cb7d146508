/*
 * Test organization (every expected value is computed by hand in the comment above it;
 * L(p) = 1/log2(p+2) is the discount of 0-based position p: L(0)=1, L(1)=0.6309298,
 * L(2)=0.5, L(3)=0.4306766, L(4)=0.3868528):
 *   eval.list.*    ranking metrics of one list: values, k > list, empty rel / empty list
 *   eval.rank.*    target rank with the three tie rules and masking; metric of a rank
 *   eval.group.*   tie-group metrics: three rules (one and two targets), brute-force oracle
 *   eval.topk.*    top-k selection: order, index tie-break, NaN, k > n
 *   eval.sample.*  negative sampling: never history/targets, deterministic, dense history
 *   eval.run.*     the evaluator: hand example, tie rules, masking, multi-target vs oracle,
 *                  thread/batch invariance, sampled protocol, cancel, errors, top-k lists
 *   eval.fast.*    the one-pass top-k + target counts and the evaluator's one-target path
 *                  against a naive full sort (ties, NaN, +-inf, -0); factorised scoring
 *   eval.ctr.*     AUC with ties, GAUC weighting, log loss clipping, per-task metrics of a
 *                  multi-task model (labels not predicted, rows, one-class parts)
 *   eval.lists.*   coverage, novelty, ILD, genre entropy
 *   eval.text.*    Distinct-n (both variants), BLEU
 *   eval.fid.*     agreement@k, exact-match@k
 *   eval.stats.*   incomplete beta / t CDF, paired t-test, bootstrap, ranks and Spearman (ties)
 */
#include "eval/ctr.h"
#include "eval/eval.h"
#include "eval/lists.h"
#include "eval/rank.h"
#include "eval/stats.h"
#include "eval/text.h"
#include "harness.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TOL 1e-6

/* ---- eval.list --------------------------------------------------------------------- */
static void t_list_values(void)
{
    /* list {7,3,9,4,1}, rel {3,4,8}: relevant at positions 1 and 3. */
    const int32_t list[] = {7, 3, 9, 4, 1}, rel[] = {3, 4, 8};
    rlab_eval_atk m;
    /* k=5: hits 2. HR 1, recall 2/3, precision 2/5. DCG = L(1)+L(3) = 1.0616064,
     * IDCG (min(3,5)=3) = L(0)+L(1)+L(2) = 2.1309298 -> NDCG 0.4981893. MRR 1/2.
     * AP = (1/2 + 2/4) / min(3,5) = 1/3. */
    rlab_eval_list_metrics(list, 5, rel, 3, 5, &m);
    CHECK_NEAR(m.hr, 1.0, TOL);
    CHECK_NEAR(m.recall, 2.0 / 3.0, TOL);
    CHECK_NEAR(m.precision, 0.4, TOL);
    CHECK_NEAR(m.ndcg, 0.4981893, TOL);
    CHECK_NEAR(m.mrr, 0.5, TOL);
    CHECK_NEAR(m.map, 1.0 / 3.0, TOL);
    /* k=2: top {7,3}, one hit at 1. recall 1/3, precision 1/2, NDCG = L(1)/(L(0)+L(1)) =
     * 0.3868528, MRR 1/2, MAP = (1/2)/min(3,2) = 0.25. */
    rlab_eval_list_metrics(list, 5, rel, 3, 2, &m);
    CHECK_NEAR(m.hr, 1.0, TOL);
    CHECK_NEAR(m.recall, 1.0 / 3.0, TOL);
    CHECK_NEAR(m.precision, 0.5, TOL);
    CHECK_NEAR(m.ndcg, 0.3868528, TOL);
    CHECK_NEAR(m.mrr, 0.5, TOL);
    CHECK_NEAR(m.map, 0.25, TOL);
    /* k=1: top {7}, no hit: everything 0. */
    rlab_eval_list_metrics(list, 5, rel, 3, 1, &m);
    CHECK_NEAR(m.hr + m.recall + m.precision + m.ndcg + m.mrr + m.map, 0.0, TOL);
}

static void t_list_k_large(void)
{
    /* k=10 > 5 entries: same hits; precision 2/10; IDCG still over min(3,10)=3 positions. */
    const int32_t list[] = {7, 3, 9, 4, 1}, rel[] = {3, 4, 8};
    rlab_eval_atk m;
    rlab_eval_list_metrics(list, 5, rel, 3, 10, &m);
    CHECK_NEAR(m.precision, 0.2, TOL);
    CHECK_NEAR(m.recall, 2.0 / 3.0, TOL);
    CHECK_NEAR(m.ndcg, 0.4981893, TOL);
    CHECK_NEAR(m.map, 1.0 / 3.0, TOL);
    /* Empty slots (-1) are misses: list {-1, 4}, rel {4}, k=3: hit at 1 -> NDCG L(1)/L(0). */
    const int32_t pad[] = {-1, 4};
    rlab_eval_list_metrics(pad, 2, rel + 1, 1, 3, &m);
    CHECK_NEAR(m.ndcg, 0.6309298, TOL);
    CHECK_NEAR(m.mrr, 0.5, TOL);
}

static void t_list_empty(void)
{
    const int32_t list[] = {1, 2}, rel[] = {2};
    rlab_eval_atk m;
    rlab_eval_list_metrics(list, 2, rel, 0, 5, &m); /* empty relevant set -> zeros */
    CHECK_NEAR(m.hr + m.recall + m.precision + m.ndcg + m.mrr + m.map, 0.0, TOL);
    rlab_eval_list_metrics(list, 0, rel, 1, 5, &m); /* empty list -> zeros */
    CHECK_NEAR(m.hr + m.recall + m.precision + m.ndcg + m.mrr + m.map, 0.0, TOL);
    rlab_eval_list_metrics(list, 2, rel, 1, 5, &m); /* sanity: non-empty gives a hit */
    CHECK_NEAR(m.hr, 1.0, TOL);
}

/* ---- eval.rank --------------------------------------------------------------------- */
static void t_rank_ties(void)
{
    /* Target item 0 (0.5): greater = items 1, 5 (0.9) -> gt 2; equal = items 2, 3 -> eq 2.
     * optimistic 2, pessimistic 4, average 3. */
    const float s[] = {0.5f, 0.9f, 0.5f, 0.5f, 0.1f, 0.9f};
    rlab_err err = {0};
    double r = -1;
    CHECK_EQ_INT(rlab_eval_rank(s, 6, 0, NULL, 0, RLAB_TIE_OPTIMISTIC, &r, &err), RLAB_OK);
    CHECK_NEAR(r, 2.0, 0);
    rlab_eval_rank(s, 6, 0, NULL, 0, RLAB_TIE_PESSIMISTIC, &r, &err);
    CHECK_NEAR(r, 4.0, 0);
    rlab_eval_rank(s, 6, 0, NULL, 0, RLAB_TIE_AVERAGE, &r, &err);
    CHECK_NEAR(r, 3.0, 0);
    /* Mask {1, 2, 2, 0}: item 1 (greater) and item 2 (equal) leave, the duplicate counts
     * once, the target is never masked: gt 1, eq 1 -> 1, 2, 1.5. */
    const int32_t mask[] = {1, 2, 2, 0};
    rlab_eval_rank(s, 6, 0, mask, 4, RLAB_TIE_OPTIMISTIC, &r, &err);
    CHECK_NEAR(r, 1.0, 0);
    rlab_eval_rank(s, 6, 0, mask, 4, RLAB_TIE_PESSIMISTIC, &r, &err);
    CHECK_NEAR(r, 2.0, 0);
    rlab_eval_rank(s, 6, 0, mask, 4, RLAB_TIE_AVERAGE, &r, &err);
    CHECK_NEAR(r, 1.5, 0);
    CHECK_EQ_INT(rlab_eval_rank(s, 6, 6, NULL, 0, 0, &r, &err), RLAB_EINVAL);
    const float nan_s[] = {NAN, 1.0f};
    CHECK_EQ_INT(rlab_eval_rank(nan_s, 2, 0, NULL, 0, 0, &r, &err), RLAB_EINVAL);
}

static void t_rank_metric(void)
{
    /* NDCG@k = 1/log2(rank+2): rank 0 -> 1, rank 2 -> 0.5, rank 6 -> 1/3; 0 once rank >= k. */
    CHECK_NEAR(rlab_eval_ndcg_at_rank(0, 10), 1.0, TOL);
    CHECK_NEAR(rlab_eval_ndcg_at_rank(2, 10), 0.5, TOL);
    CHECK_NEAR(rlab_eval_ndcg_at_rank(6, 10), 1.0 / 3.0, TOL);
    CHECK_NEAR(rlab_eval_ndcg_at_rank(10, 10), 0.0, TOL);
    CHECK_NEAR(rlab_eval_hr_at_rank(9, 10), 1.0, TOL);
    CHECK_NEAR(rlab_eval_hr_at_rank(10, 10), 0.0, TOL);
}

/* ---- eval.group -------------------------------------------------------------------- */
static void t_group_one_target(void)
{
    /* One target, gt 2, tied with 2 others: group {pos 2, a 1, n 3}. */
    rlab_eval_group g = {.pos = 2, .a = 1, .n = 3};
    rlab_eval_atk m;
    /* optimistic: position 2. k=3: HR 1, NDCG L(2)=0.5, MRR 1/3, precision 1/3, MAP 1/3. */
    rlab_eval_group_metrics(&g, 1, 1, 3, RLAB_TIE_OPTIMISTIC, &m);
    CHECK_NEAR(m.hr, 1.0, TOL);
    CHECK_NEAR(m.ndcg, 0.5, TOL);
    CHECK_NEAR(m.mrr, 1.0 / 3.0, TOL);
    CHECK_NEAR(m.precision, 1.0 / 3.0, TOL);
    CHECK_NEAR(m.map, 1.0 / 3.0, TOL);
    /* pessimistic: position 4 >= 3: all zero. */
    rlab_eval_group_metrics(&g, 1, 1, 3, RLAB_TIE_PESSIMISTIC, &m);
    CHECK_NEAR(m.hr + m.ndcg + m.mrr + m.map, 0.0, TOL);
    /* average: positions 2,3,4 with prob 1/3. k=3: HR 1/3, NDCG L(2)/3 = 1/6, MRR 1/9,
     * recall 1/3, precision 1/9, MAP 1/9. */
    rlab_eval_group_metrics(&g, 1, 1, 3, RLAB_TIE_AVERAGE, &m);
    CHECK_NEAR(m.hr, 1.0 / 3.0, TOL);
    CHECK_NEAR(m.ndcg, 1.0 / 6.0, TOL);
    CHECK_NEAR(m.mrr, 1.0 / 9.0, TOL);
    CHECK_NEAR(m.recall, 1.0 / 3.0, TOL);
    CHECK_NEAR(m.precision, 1.0 / 9.0, TOL);
    CHECK_NEAR(m.map, 1.0 / 9.0, TOL);
    /* average, k=5: HR 1; NDCG (L(2)+L(3)+L(4))/3 = 0.4391765; MRR (1/3+1/4+1/5)/3 =
     * 0.2611111. */
    rlab_eval_group_metrics(&g, 1, 1, 5, RLAB_TIE_AVERAGE, &m);
    CHECK_NEAR(m.hr, 1.0, TOL);
    CHECK_NEAR(m.ndcg, 0.4391765, TOL);
    CHECK_NEAR(m.mrr, 0.2611111, TOL);
}

static void t_group_two_targets(void)
{
    /* Two targets tied with one non-target at the top: {pos 0, a 2, n 3}. The non-target
     * N is at position 0, 1 or 2 with prob 1/3 each. */
    rlab_eval_group g = {.pos = 0, .a = 2, .n = 3};
    rlab_eval_atk m;
    /* k=1: slot 0 is a target w.p. 2/3: HR 2/3, NDCG 2/3 (IDCG = L(0)), MRR 2/3, MAP 2/3,
     * recall (2/3)/2 = 1/3, precision 2/3. */
    rlab_eval_group_metrics(&g, 1, 2, 1, RLAB_TIE_AVERAGE, &m);
    CHECK_NEAR(m.hr, 2.0 / 3.0, TOL);
    CHECK_NEAR(m.ndcg, 2.0 / 3.0, TOL);
    CHECK_NEAR(m.mrr, 2.0 / 3.0, TOL);
    CHECK_NEAR(m.map, 2.0 / 3.0, TOL);
    CHECK_NEAR(m.recall, 1.0 / 3.0, TOL);
    CHECK_NEAR(m.precision, 2.0 / 3.0, TOL);
    /* k=3: NDCG = (2/3)(L0+L1+L2)/(L0+L1) = 0.8710491. MRR = 2/3 + (1/3)(1/2) = 5/6.
     * MAP: N@0 -> (1/2 + 2/3)/2 = 7/12; N@1 -> (1 + 2/3)/2 = 5/6; N@2 -> 1; mean 29/36. */
    rlab_eval_group_metrics(&g, 1, 2, 3, RLAB_TIE_AVERAGE, &m);
    CHECK_NEAR(m.hr, 1.0, TOL);
    CHECK_NEAR(m.ndcg, 0.8710491, TOL);
    CHECK_NEAR(m.mrr, 5.0 / 6.0, TOL);
    CHECK_NEAR(m.map, 29.0 / 36.0, TOL);
    /* optimistic k=1: targets at 0, 1: HR 1, MAP 1; pessimistic: targets at 1, 2: HR 0. */
    rlab_eval_group_metrics(&g, 1, 2, 1, RLAB_TIE_OPTIMISTIC, &m);
    CHECK_NEAR(m.hr, 1.0, TOL);
    CHECK_NEAR(m.map, 1.0, TOL);
    rlab_eval_group_metrics(&g, 1, 2, 1, RLAB_TIE_PESSIMISTIC, &m);
    CHECK_NEAR(m.hr, 0.0, TOL);
    /* pessimistic k=3: targets at 1, 2: MRR 1/2, MAP (1/2 + 2/3)/2 = 7/12. */
    rlab_eval_group_metrics(&g, 1, 2, 3, RLAB_TIE_PESSIMISTIC, &m);
    CHECK_NEAR(m.mrr, 0.5, TOL);
    CHECK_NEAR(m.map, 7.0 / 12.0, TOL);
}

/* Oracle for the AVERAGE rule: enumerate every tie-breaking order of n <= 7 items (all n!
 * permutations, then a stable sort by score), average rlab_eval_list_metrics. */
static void permute_avg(const float *s, int n, const int32_t *rel, int nrel, int k, int *perm,
                        int depth, rlab_eval_atk *acc, long *count)
{
    if (depth == n) {
        int32_t order[8];
        for (int i = 0; i < n; i++)
            order[i] = perm[i];
        for (int i = 1; i < n; i++) /* stable insertion sort by score desc */
            for (int j = i; j > 0 && s[order[j]] > s[order[j - 1]]; j--) {
                int32_t t = order[j];
                order[j] = order[j - 1];
                order[j - 1] = t;
            }
        rlab_eval_atk m;
        rlab_eval_list_metrics(order, n, rel, nrel, k, &m);
        acc->hr += m.hr;
        acc->recall += m.recall;
        acc->precision += m.precision;
        acc->ndcg += m.ndcg;
        acc->mrr += m.mrr;
        acc->map += m.map;
        (*count)++;
        return;
    }
    for (int i = depth; i < n; i++) {
        int t = perm[depth];
        perm[depth] = perm[i];
        perm[i] = t;
        permute_avg(s, n, rel, nrel, k, perm, depth + 1, acc, count);
        perm[i] = perm[depth];
        perm[depth] = t;
    }
}

/* Scorer that copies rows of a fixed matrix [n_users][n_items]. */
typedef struct mat_scorer {
    const float *m;
    int32_t n_items;
    int calls;
} mat_scorer;

static int mat_score(void *ud, const int32_t *users, int nb, float *out, rlab_err *err)
{
    (void)err;
    mat_scorer *ms = ud;
    ms->calls++;
    for (int b = 0; b < nb; b++)
        memcpy(out + (size_t)b * ms->n_items, ms->m + (size_t)users[b] * ms->n_items,
               (size_t)ms->n_items * sizeof(float));
    return RLAB_OK;
}

static void t_group_oracle(void)
{
    /* Random 7-item rows with scores in {0,1,2} (many ties) and 1-3 targets: the evaluator's
     * AVERAGE metrics must equal the average over all 5040 tie-breaking orders. */
    rlab_rng rng;
    rlab_rng_seed(&rng, 11);
    for (int trial = 0; trial < 12; trial++) {
        float s[7];
        for (int i = 0; i < 7; i++)
            s[i] = (float)rlab_rng_below(&rng, 3);
        int nrel = 1 + (int)rlab_rng_below(&rng, 3);
        int32_t rel[3];
        int32_t all[7] = {0, 1, 2, 3, 4, 5, 6};
        rlab_rng_shuffle_i32(&rng, all, 7);
        for (int j = 0; j < nrel; j++)
            rel[j] = all[j];
        int k = 1 + (int)rlab_rng_below(&rng, 5);
        rlab_eval_atk acc = {0};
        long count = 0;
        int perm[7] = {0, 1, 2, 3, 4, 5, 6};
        permute_avg(s, 7, rel, nrel, k, perm, 0, &acc, &count);
        CHECK_EQ_INT(count, 5040);
        /* Run the evaluator on this one user. */
        int64_t toff[2] = {0, nrel};
        mat_scorer ms = {.m = s, .n_items = 7};
        int ks[1] = {k};
        rlab_eval_spec sp = {.n_users = 1,
                             .n_items = 7,
                             .tgt_off = toff,
                             .tgt_items = rel,
                             .ks = ks,
                             .n_ks = 1,
                             .score = mat_score,
                             .score_ud = &ms};
        rlab_err err = {0};
        rlab_eval_result *r = rlab_eval_ranking(&sp, &err);
        CHECK_MSG(r != NULL, "%s", err.msg);
        if (!r)
            return;
        const double want[6] = {acc.hr / count,   acc.recall / count, acc.precision / count,
                                acc.ndcg / count, acc.mrr / count,    acc.map / count};
        for (int t = 0; t < 6; t++)
            CHECK_MSG(fabs(r->mean[t] - want[t]) < 1e-9, "trial %d %s: got %.9f want %.9f", trial,
                      r->names[t], r->mean[t], want[t]);
        rlab_eval_result_free(r);
    }
}

/* ---- eval.topk --------------------------------------------------------------------- */
static void t_topk(void)
{
    const float s[] = {0.3f, 0.9f, NAN, 0.9f, 0.1f, 0.5f};
    int32_t it[10];
    float sc[10];
    /* k=3: 0.9 (item 1, lower index first), 0.9 (item 3), 0.5 (item 5). */
    CHECK_EQ_INT(rlab_eval_topk(s, 6, 3, it, sc), 3);
    CHECK_EQ_INT(it[0], 1);
    CHECK_EQ_INT(it[1], 3);
    CHECK_EQ_INT(it[2], 5);
    CHECK_NEAR(sc[2], 0.5, 1e-7);
    /* k=10 > 5 non-NaN items: all five, NaN item 2 skipped. */
    CHECK_EQ_INT(rlab_eval_topk(s, 6, 10, it, NULL), 5);
    const int32_t want[] = {1, 3, 5, 0, 4};
    for (int i = 0; i < 5; i++)
        CHECK_EQ_INT(it[i], want[i]);
    /* All equal: ties by index -> 0, 1, 2. */
    const float eq[] = {1, 1, 1, 1, 1};
    rlab_eval_topk(eq, 5, 3, it, NULL);
    CHECK(it[0] == 0 && it[1] == 1 && it[2] == 2);
    /* Larger random check against a selection sort. */
    enum { N = 3001, K = 25 }; /* not a multiple of the 64-item scan blocks */
    static float big[N];
    rlab_rng rng;
    rlab_rng_seed(&rng, 5);
    for (int i = 0; i < N; i++)
        big[i] = i % 97 == 5 ? NAN : (float)rlab_rng_below(&rng, 500); /* many ties, NaN */
    int32_t got[K];
    rlab_eval_topk(big, N, K, got, NULL);
    static uint8_t used[N];
    for (int r = 0; r < K; r++) {
        int best = -1;
        for (int i = 0; i < N; i++)
            if (!used[i] && !isnan(big[i]) && (best < 0 || big[i] > big[best]))
                best = i;
        used[best] = 1;
        CHECK_EQ_INT(got[r], best);
    }
}

/* ---- eval.sample ------------------------------------------------------------------- */
static void t_sample(void)
{
    rlab_err err = {0};
    uint8_t mark[100] = {0};
    int32_t hist[80], out[100], out2[100];
    for (int i = 0; i < 80; i++)
        hist[i] = i;
    const int32_t tgt[] = {10};
    int n = 0, n2 = 0;
    /* Sparse history (items 0..9 + target 10 excluded from 20): rejection path. */
    CHECK_EQ_INT(rlab_eval_sample_negatives(20, hist, 10, tgt, 1, 5, 7, 3, mark, out, &n, &err),
                 RLAB_OK);
    CHECK_EQ_INT(n, 5);
    for (int i = 0; i < n; i++) {
        CHECK(out[i] >= 11 && out[i] < 20);
        for (int j = 0; j < i; j++)
            CHECK(out[i] != out[j]);
    }
    rlab_eval_sample_negatives(20, hist, 10, tgt, 1, 5, 7, 3, mark, out2, &n2, &err);
    CHECK(n2 == n && memcmp(out, out2, (size_t)n * sizeof *out) == 0); /* deterministic */
    for (int i = 0; i < 100; i++)
        CHECK(mark[i] == 0); /* scratch restored */
    /* More negatives than eligible: all 9 eligible items 11..19. */
    rlab_eval_sample_negatives(20, hist, 10, tgt, 1, 100, 7, 3, mark, out, &n, &err);
    CHECK_EQ_INT(n, 9);
    for (int i = 0; i < n; i++)
        CHECK_EQ_INT(out[i], 11 + i);
    /* Dense history (0..79 of 100, target 80): reservoir path, only 81..99. */
    const int32_t tgt2[] = {80};
    rlab_eval_sample_negatives(100, hist, 80, tgt2, 1, 5, 9, 0, mark, out, &n, &err);
    CHECK_EQ_INT(n, 5);
    for (int i = 0; i < n; i++) {
        CHECK(out[i] >= 81 && out[i] < 100);
        for (int j = 0; j < i; j++)
            CHECK(out[i] != out[j]);
    }
    for (int i = 0; i < 100; i++)
        CHECK(mark[i] == 0);
}

/* ---- eval.run ---------------------------------------------------------------------- */
/* The hand example: 2 users x 6 items.
 * user 0: scores {0.1, 0.9, 0.4, 0.8, 0.3, 0.2}, history {1}, target {3}: after masking
 *         item 1, the target (0.8) is first: rank 0 under every rule.
 * user 1: scores {0.5, 0.5, 0.9, 0.1, 0.5, 0.0}, history {2}, target {0}: gt 0, tied with
 *         items 1 and 4: positions 0, 1, 2. */
static const float hand_m[12] = {0.1f, 0.9f, 0.4f, 0.8f, 0.3f, 0.2f,
                                 0.5f, 0.5f, 0.9f, 0.1f, 0.5f, 0.0f};
static const int64_t hand_hoff[3] = {0, 1, 2};
static const int32_t hand_hit[2] = {1, 2};
static const int64_t hand_toff[3] = {0, 1, 2};
static const int32_t hand_tit[2] = {3, 0};

static rlab_eval_spec hand_spec(mat_scorer *ms, const int *ks, int n_ks)
{
    ms->m = hand_m;
    ms->n_items = 6;
    ms->calls = 0;
    rlab_eval_spec sp = {.n_users = 2,
                         .n_items = 6,
                         .hist_off = hand_hoff,
                         .hist_items = hand_hit,
                         .tgt_off = hand_toff,
                         .tgt_items = hand_tit,
                         .ks = ks,
                         .n_ks = n_ks,
                         .score = mat_score,
                         .score_ud = ms};
    return sp;
}

static double metric(const rlab_eval_result *r, const char *name)
{
    int i = rlab_eval_result_find(r, name);
    CHECK_MSG(i >= 0, "metric %s missing", name);
    return i >= 0 ? r->mean[i] : (double)NAN;
}

static double user_metric(const rlab_eval_result *r, const char *name, int64_t u)
{
    int i = rlab_eval_result_find(r, name);
    return i >= 0 ? r->values[(int64_t)i * r->n_users + u] : (double)NAN;
}

static void t_run_hand(void)
{
    const int ks[] = {1, 2};
    mat_scorer ms;
    rlab_eval_spec sp = hand_spec(&ms, ks, 2);
    rlab_err err = {0};
    rlab_eval_result *r = rlab_eval_ranking(&sp, &err); /* default tie = average */
    CHECK_MSG(r != NULL, "%s", err.msg);
    if (!r)
        return;
    CHECK(strcmp(r->protocol, "full") == 0);
    CHECK_EQ_INT(r->n_users, 2);
    CHECK_EQ_INT(r->n_metrics, 12);
    CHECK(strcmp(r->names[0], "hr@1") == 0 && strcmp(r->names[7], "ndcg@2") == 0);
    /* user 1 (average): hr@1 1/3, hr@2 2/3, ndcg@2 (L0+L1)/3 = 0.5436433, mrr@2 (1+1/2)/3
     * = 1/2. Means with user 0 (all 1): hr@1 2/3, hr@2 5/6, ndcg@2 0.7718216, mrr@2 3/4. */
    CHECK_NEAR(user_metric(r, "hr@1", 0), 1.0, TOL);
    CHECK_NEAR(user_metric(r, "hr@1", 1), 1.0 / 3.0, TOL);
    CHECK_NEAR(user_metric(r, "ndcg@2", 1), 0.5436433, TOL);
    CHECK_NEAR(metric(r, "hr@1"), 2.0 / 3.0, TOL);
    CHECK_NEAR(metric(r, "hr@2"), 5.0 / 6.0, TOL);
    CHECK_NEAR(metric(r, "ndcg@2"), 0.7718216, TOL);
    CHECK_NEAR(metric(r, "mrr@2"), 0.75, TOL);
    /* One target each: recall = HR, precision = HR/k, MAP = MRR. */
    CHECK_NEAR(metric(r, "recall@2"), 5.0 / 6.0, TOL);
    CHECK_NEAR(metric(r, "precision@2"), 5.0 / 12.0, TOL);
    CHECK_NEAR(metric(r, "map@2"), 0.75, TOL);
    CHECK_EQ_INT(ms.calls, 1);
    rlab_eval_result_free(r);
}

static void t_run_ties(void)
{
    const int ks[] = {1, 2};
    mat_scorer ms;
    rlab_err err = {0};
    /* optimistic: user 1 at position 0 -> every metric 1 for both users. */
    rlab_eval_spec sp = hand_spec(&ms, ks, 2);
    sp.tie = RLAB_TIE_OPTIMISTIC;
    rlab_eval_result *r = rlab_eval_ranking(&sp, &err);
    CHECK(r && r->tie == RLAB_TIE_OPTIMISTIC);
    if (r) {
        CHECK_NEAR(metric(r, "hr@1"), 1.0, TOL);
        CHECK_NEAR(metric(r, "ndcg@2"), 1.0, TOL);
    }
    rlab_eval_result_free(r);
    /* pessimistic: user 1 at position 2 -> hr@2 = 0 for user 1: mean 1/2. */
    sp.tie = RLAB_TIE_PESSIMISTIC;
    r = rlab_eval_ranking(&sp, &err);
    CHECK(r != NULL);
    if (r) {
        CHECK_NEAR(metric(r, "hr@2"), 0.5, TOL);
        CHECK_NEAR(metric(r, "mrr@2"), 0.5, TOL);
    }
    rlab_eval_result_free(r);
}

static void t_run_masking(void)
{
    const int ks[] = {1, 2};
    mat_scorer ms;
    rlab_err err = {0};
    /* Without masking: user 0 target behind item 1 (0.9): rank 1 -> hr@1 0, ndcg@2 L(1) =
     * 0.6309298. user 1: item 2 (0.9) above, tied with 1 and 4: positions 1,2,3 ->
     * hr@1 0, hr@2 1/3. */
    rlab_eval_spec sp = hand_spec(&ms, ks, 2);
    sp.hist_off = NULL;
    sp.hist_items = NULL;
    rlab_eval_result *r = rlab_eval_ranking(&sp, &err);
    CHECK(r != NULL);
    if (r) {
        CHECK_NEAR(user_metric(r, "hr@1", 0), 0.0, TOL);
        CHECK_NEAR(user_metric(r, "ndcg@2", 0), 0.6309298, TOL);
        CHECK_NEAR(user_metric(r, "hr@1", 1), 0.0, TOL);
        CHECK_NEAR(user_metric(r, "hr@2", 1), 1.0 / 3.0, TOL);
    }
    rlab_eval_result_free(r);
    /* A target that is also in the history is not masked: user 0 history {1, 3}. */
    const int64_t hoff[3] = {0, 2, 3};
    const int32_t hit[3] = {1, 3, 2};
    sp = hand_spec(&ms, ks, 2);
    sp.hist_off = hoff;
    sp.hist_items = hit;
    r = rlab_eval_ranking(&sp, &err);
    CHECK(r != NULL);
    if (r)
        CHECK_NEAR(user_metric(r, "hr@1", 0), 1.0, TOL);
    rlab_eval_result_free(r);
}

/* Random problem used by the invariance / oracle / sampled tests. */
typedef struct rand_prob {
    int32_t nu, ni;
    float *m;
    int64_t *hoff, *toff;
    int32_t *hit, *tit;
} rand_prob;

static void rand_prob_make(rand_prob *p, int32_t nu, int32_t ni, int max_t, int distinct,
                           int overlap, uint64_t seed)
{
    rlab_rng rng;
    rlab_rng_seed(&rng, seed);
    p->nu = nu;
    p->ni = ni;
    p->m = malloc((size_t)nu * ni * sizeof *p->m);
    p->hoff = malloc((size_t)(nu + 1) * sizeof *p->hoff);
    p->toff = malloc((size_t)(nu + 1) * sizeof *p->toff);
    p->hit = malloc((size_t)nu * 20 * sizeof *p->hit);
    p->tit = malloc((size_t)nu * max_t * sizeof *p->tit);
    int32_t *perm = malloc((size_t)ni * sizeof *perm);
    p->hoff[0] = p->toff[0] = 0;
    for (int32_t u = 0; u < nu; u++) {
        for (int32_t i = 0; i < ni; i++)
            perm[i] = i;
        rlab_rng_shuffle_i32(&rng, perm, (size_t)ni);
        for (int32_t i = 0; i < ni; i++) /* distinct: a permutation; else coarse (ties) */
            p->m[(size_t)u * ni + i] =
                distinct ? (float)perm[i] / (float)ni : (float)(perm[i] % 17);
        rlab_rng_shuffle_i32(&rng, perm, (size_t)ni);
        int nh = (int)rlab_rng_below(&rng, 20),
            nt = (u % 7 == 3) ? 0 : 1 + (int)rlab_rng_below(&rng, (uint64_t)max_t);
        for (int j = 0; j < nh; j++)
            p->hit[p->hoff[u] + j] = perm[j];
        for (int j = 0; j < nt; j++) /* overlap: some targets are also history (j*3 < nh) */
            p->tit[p->toff[u] + j] = perm[overlap ? (j * 3) % ni : 20 + j];
        p->hoff[u + 1] = p->hoff[u] + nh;
        p->toff[u + 1] = p->toff[u] + nt;
    }
    free(perm);
}

static void rand_prob_free(rand_prob *p)
{
    free(p->m);
    free(p->hoff);
    free(p->toff);
    free(p->hit);
    free(p->tit);
}

static rlab_eval_spec rand_spec(const rand_prob *p, mat_scorer *ms)
{
    ms->m = p->m;
    ms->n_items = p->ni;
    ms->calls = 0;
    rlab_eval_spec sp = {.n_users = p->nu,
                         .n_items = p->ni,
                         .hist_off = p->hoff,
                         .hist_items = p->hit,
                         .tgt_off = p->toff,
                         .tgt_items = p->tit,
                         .score = mat_score,
                         .score_ud = ms};
    return sp;
}

static void t_run_invariance(void)
{
    /* Ties everywhere (17 score levels), up to 12 targets (both counting paths): values
     * must be bit-identical for 1 vs 2 threads and batch 7 vs 256. */
    rand_prob p;
    rand_prob_make(&p, 150, 400, 12, 0, 1, 3);
    mat_scorer ms;
    rlab_err err = {0};
    rlab_eval_spec sp = rand_spec(&p, &ms);
    sp.n_threads = 1;
    sp.batch = 7;
    rlab_eval_result *a = rlab_eval_ranking(&sp, &err);
    sp.n_threads = 2;
    sp.batch = 256;
    rlab_eval_result *b = rlab_eval_ranking(&sp, &err);
    CHECK(a && b);
    if (a && b) {
        CHECK_EQ_INT(a->n_users, b->n_users);
        CHECK_EQ_INT(a->n_users, 150 - 21); /* users u % 7 == 3 have no target: skipped */
        CHECK(memcmp(a->values, b->values,
                     (size_t)a->n_metrics * (size_t)a->n_users * sizeof(double)) == 0);
        CHECK(memcmp(a->mean, b->mean, (size_t)a->n_metrics * sizeof(double)) == 0);
        CHECK(metric(a, "ndcg@10") > 0.0);
    }
    rlab_eval_result_free(a);
    rlab_eval_result_free(b);
    rand_prob_free(&p);
}

/* Oracle ranking for one user: unmasked items sorted by score desc; among equal scores,
 * targets first (optimistic) or last (pessimistic), then by index. Insertion sort. */
static int oracle_rank(const float *row, int32_t ni, const int32_t *t, int64_t nt, const int32_t *h,
                       int64_t nh, int tie, int32_t *list)
{
    int n = 0;
    for (int32_t i = 0; i < ni; i++) {
        int is_t = 0, is_h = 0;
        for (int64_t q = 0; q < nt; q++)
            is_t |= t[q] == i;
        for (int64_t q = 0; q < nh; q++)
            is_h |= h[q] == i;
        if (is_h && !is_t)
            continue;
        /* key: higher score first; on ties the preferred class first; then lower index */
        int pref = tie == RLAB_TIE_OPTIMISTIC ? is_t : !is_t;
        int j = n++;
        while (j > 0) {
            int32_t o = list[j - 1];
            int o_t = 0;
            for (int64_t q = 0; q < nt; q++)
                o_t |= t[q] == o;
            int o_pref = tie == RLAB_TIE_OPTIMISTIC ? o_t : !o_t;
            int before = row[i] > row[o] || (!(row[i] < row[o]) && pref > o_pref);
            if (!before)
                break;
            list[j] = o;
            j--;
        }
        list[j] = i;
    }
    return n;
}

static void run_oracle(int distinct, int tie, uint64_t seed)
{
    /* The evaluator (both the <= 8 and the > 8 distinct-score counting paths) must equal
     * rlab_eval_list_metrics on the explicitly sorted, history-masked ranking. */
    rand_prob p;
    rand_prob_make(&p, 60, 300, 14, distinct, 1, seed);
    mat_scorer ms;
    rlab_err err = {0};
    rlab_eval_spec sp = rand_spec(&p, &ms);
    const int ks[] = {1, 5, 10, 50};
    sp.ks = ks;
    sp.n_ks = 4;
    sp.tie = tie;
    rlab_eval_result *r = rlab_eval_ranking(&sp, &err);
    CHECK_MSG(r != NULL, "%s", err.msg);
    if (!r) {
        rand_prob_free(&p);
        return;
    }
    int32_t *list = malloc((size_t)p.ni * sizeof *list);
    int many = 0;
    for (int64_t i = 0; i < r->n_users; i++) {
        int32_t u = r->users[i];
        const int32_t *t = p.tit + p.toff[u];
        int64_t nt = p.toff[u + 1] - p.toff[u];
        many += nt > 8;
        int n = oracle_rank(p.m + (size_t)u * p.ni, p.ni, t, nt, p.hit + p.hoff[u],
                            p.hoff[u + 1] - p.hoff[u], tie, list);
        for (int ki = 0; ki < 4; ki++) {
            rlab_eval_atk m;
            rlab_eval_list_metrics(list, n, t, nt, ks[ki], &m);
            const double want[6] = {m.hr, m.recall, m.precision, m.ndcg, m.mrr, m.map};
            for (int tt = 0; tt < 6; tt++) {
                double got = r->values[(int64_t)(tt * 4 + ki) * r->n_users + i];
                CHECK_MSG(fabs(got - want[tt]) < 1e-9, "%s user %d %s: got %.9f want %.9f",
                          rlab_eval_tie_name(tie), u, r->names[tt * 4 + ki], got, want[tt]);
            }
        }
    }
    CHECK(many > 0);
    free(list);
    rlab_eval_result_free(r);
    rand_prob_free(&p);
}

static void t_run_oracle(void)
{
    run_oracle(1, RLAB_TIE_PESSIMISTIC, 4); /* distinct scores */
    run_oracle(0, RLAB_TIE_OPTIMISTIC, 6);  /* 17 score levels: ties with the targets */
    run_oracle(0, RLAB_TIE_PESSIMISTIC, 6);
}

static int hist_high_score(void *ud, const int32_t *users, int nb, float *out, rlab_err *err)
{
    /* History items score 10, the target 5, everything else in [0, 1). */
    (void)err;
    const rand_prob *p = ud;
    for (int b = 0; b < nb; b++) {
        int32_t u = users[b];
        float *row = out + (size_t)b * p->ni;
        for (int32_t i = 0; i < p->ni; i++)
            row[i] = p->m[(size_t)u * p->ni + i];
        for (int64_t j = p->hoff[u]; j < p->hoff[u + 1]; j++)
            row[p->hit[j]] = 10.0f;
        row[p->tit[p->toff[u]]] = 5.0f;
    }
    return RLAB_OK;
}

static void t_run_sampled(void)
{
    /* One target each (max_t 1); the target (5) loses only to history items (10). */
    rand_prob p;
    rand_prob_make(&p, 80, 200, 1, 1, 0, 5); /* targets outside history */
    rlab_err err = {0};
    rlab_eval_spec sp = {.n_users = p.nu,
                         .n_items = p.ni,
                         .hist_off = p.hoff,
                         .hist_items = p.hit,
                         .tgt_off = p.toff,
                         .tgt_items = p.tit,
                         .score = hist_high_score,
                         .score_ud = &p,
                         .n_neg = 100,
                         .seed = 9};
    const int ks[] = {1};
    sp.ks = ks;
    sp.n_ks = 1;
    rlab_eval_result *r = rlab_eval_ranking(&sp, &err);
    CHECK_MSG(r != NULL, "%s", err.msg);
    if (r) {
        CHECK(strcmp(r->protocol, "sampled-100") == 0);
        /* Negatives never include history (score 10), so the target always ranks first. */
        CHECK_NEAR(metric(r, "hr@1"), 1.0, 0);
    }
    rlab_eval_result_free(r);
    /* Masking in full ranking gives the same, without masking the target loses. */
    sp.n_neg = 0;
    r = rlab_eval_ranking(&sp, &err);
    CHECK(r && strcmp(r->protocol, "full") == 0);
    if (r)
        CHECK_NEAR(metric(r, "hr@1"), 1.0, 0);
    rlab_eval_result_free(r);
    /* Sampled on random scores: deterministic in the seed, independent of threads/batch;
     * another seed gives other values. */
    mat_scorer ms;
    sp = rand_spec(&p, &ms);
    sp.n_neg = 20;
    sp.seed = 1;
    sp.n_threads = 1;
    sp.batch = 3;
    rlab_eval_result *a = rlab_eval_ranking(&sp, &err);
    sp.n_threads = 2;
    sp.batch = 64;
    rlab_eval_result *b = rlab_eval_ranking(&sp, &err);
    sp.seed = 2;
    rlab_eval_result *c = rlab_eval_ranking(&sp, &err);
    CHECK(a && b && c);
    if (a && b && c) {
        CHECK(strcmp(a->protocol, "sampled-20") == 0);
        size_t sz = (size_t)a->n_metrics * (size_t)a->n_users * sizeof(double);
        CHECK(memcmp(a->values, b->values, sz) == 0);
        CHECK(memcmp(a->values, c->values, sz) != 0);
    }
    rlab_eval_result_free(a);
    rlab_eval_result_free(b);
    rlab_eval_result_free(c);
    rand_prob_free(&p);
}

static int cancel_second(void *ud)
{
    int *n = ud;
    return ++*n >= 2;
}

static int failing_score(void *ud, const int32_t *users, int nb, float *out, rlab_err *err)
{
    (void)ud;
    (void)users;
    (void)nb;
    (void)out;
    return rlab_errf(err, RLAB_EIO, "model file vanished");
}

static int nan_score(void *ud, const int32_t *users, int nb, float *out, rlab_err *err)
{
    (void)ud;
    (void)users;
    (void)err;
    for (int i = 0; i < nb * 6; i++)
        out[i] = NAN;
    return RLAB_OK;
}

static void t_run_errors(void)
{
    const int ks[] = {1};
    mat_scorer ms;
    rlab_err err = {0};
    /* Cancel before the second batch (batch 1, 2 users): ECANCELED, one scorer call. */
    rlab_eval_spec sp = hand_spec(&ms, ks, 1);
    int n = 0;
    sp.batch = 1;
    sp.cancel = cancel_second;
    sp.cancel_ud = &n;
    CHECK(rlab_eval_ranking(&sp, &err) == NULL);
    CHECK_EQ_INT(err.code, RLAB_ECANCELED);
    CHECK_EQ_INT(ms.calls, 1);
    /* Scorer failure keeps its status and message. */
    sp = hand_spec(&ms, ks, 1);
    sp.score = failing_score;
    CHECK(rlab_eval_ranking(&sp, &err) == NULL);
    CHECK_EQ_INT(err.code, RLAB_EIO);
    CHECK_STR_CONTAINS(err.msg, "vanished");
    /* NaN target score, out-of-range target, bad k. */
    sp = hand_spec(&ms, ks, 1);
    sp.score = nan_score;
    CHECK(rlab_eval_ranking(&sp, &err) == NULL);
    CHECK_EQ_INT(err.code, RLAB_EINVAL);
    CHECK_STR_CONTAINS(err.msg, "NaN");
    const int32_t bad_t[2] = {3, 6};
    sp = hand_spec(&ms, ks, 1);
    sp.tgt_items = bad_t;
    CHECK(rlab_eval_ranking(&sp, &err) == NULL);
    CHECK_EQ_INT(err.code, RLAB_EINVAL);
    const int bad_k[] = {0};
    sp = hand_spec(&ms, bad_k, 1);
    CHECK(rlab_eval_ranking(&sp, &err) == NULL);
    CHECK_EQ_INT(err.code, RLAB_EINVAL);
    /* Out of memory anywhere: NULL with ENOMEM, no leak (ASan). */
    for (int fail = 0; fail < 12; fail++) {
        sp = hand_spec(&ms, ks, 1);
        sp.keep_topk = 3;
        rlab_alloc_fail_after(fail);
        rlab_eval_result *r = rlab_eval_ranking(&sp, &err);
        rlab_alloc_fail_after(-1);
        CHECK(r != NULL || err.code == RLAB_ENOMEM);
        rlab_eval_result_free(r);
    }
    rlab_eval_result_free(NULL);
}

static void t_run_topk_lists(void)
{
    /* Kept lists: user 0 without item 1 (history): 3 (0.8), 2 (0.4), 4 (0.3).
     * user 1 without item 2: 0, 1, 4 (all 0.5, by index). */
    const int ks[] = {1};
    mat_scorer ms;
    rlab_err err = {0};
    rlab_eval_spec sp = hand_spec(&ms, ks, 1);
    sp.keep_topk = 3;
    sp.metrics = RLAB_EM_NDCG;
    rlab_eval_result *r = rlab_eval_ranking(&sp, &err);
    CHECK(r != NULL);
    if (!r)
        return;
    CHECK_EQ_INT(r->n_metrics, 1);
    CHECK(strcmp(r->names[0], "ndcg@1") == 0);
    const int32_t want[6] = {3, 2, 4, 0, 1, 4};
    CHECK_EQ_INT(r->topk_w, 3);
    for (int i = 0; i < 6; i++)
        CHECK_EQ_INT(r->topk[i], want[i]);
    rlab_eval_result_free(r);
    /* A target in the history stays in the list: user 0 history {1, 3}, target 3. */
    const int64_t hoff[3] = {0, 2, 3};
    const int32_t hit[3] = {1, 3, 2};
    sp.hist_off = hoff;
    sp.hist_items = hit;
    r = rlab_eval_ranking(&sp, &err);
    CHECK(r != NULL);
    if (r)
        CHECK_EQ_INT(r->topk[0], 3);
    rlab_eval_result_free(r);
    sp.hist_off = hand_hoff;
    sp.hist_items = hand_hit;
    /* Explicit user list in a given order; keep_topk wider than the 5 unmasked items pads
     * with -1. */
    const int32_t users[] = {1};
    sp.users = users;
    sp.n_eval = 1;
    sp.keep_topk = 7;
    r = rlab_eval_ranking(&sp, &err);
    CHECK(r && r->n_users == 1 && r->users[0] == 1);
    if (r) {
        CHECK_EQ_INT(r->topk[3], 3); /* 0, 1, 4 (0.5), 3 (0.1), 5 (0.0) */
        CHECK_EQ_INT(r->topk[4], 5);
        CHECK_EQ_INT(r->topk[5], -1);
        CHECK_EQ_INT(r->topk[6], -1);
    }
    rlab_eval_result_free(r);
}

/* ---- eval.ctr ---------------------------------------------------------------------- */
static void t_ctr_auc(void)
{
    /* pos {0.35, 0.8, 0.4}, neg {0.1, 0.4}. Pairs: 0.35>0.1 (1), 0.35<0.4 (0), 0.8 (2),
     * 0.4>0.1 (1), 0.4=0.4 (1/2): 4.5 / 6 = 0.75. */
    const float s[] = {0.1f, 0.4f, 0.35f, 0.8f, 0.4f};
    const uint8_t y[] = {0, 0, 1, 1, 1};
    rlab_err err = {0};
    double auc = 0;
    CHECK_EQ_INT(rlab_eval_auc(s, y, 5, &auc, &err), RLAB_OK);
    CHECK_NEAR(auc, 0.75, TOL);
    /* All tied: 1/2. One class: EINVAL. */
    const float same[] = {1, 1, 1, 1};
    const uint8_t y2[] = {1, 0, 0, 1};
    rlab_eval_auc(same, y2, 4, &auc, &err);
    CHECK_NEAR(auc, 0.5, TOL);
    const uint8_t ones[] = {1, 1, 1, 1};
    CHECK_EQ_INT(rlab_eval_auc(same, ones, 4, &auc, &err), RLAB_EINVAL);
}

static void t_ctr_gauc(void)
{
    /* user 7: scores {0.9 +, 0.1 -, 0.5 -, 0.3 +}: pairs 0.9 beats both (2), 0.3 beats
     * 0.1 (1), loses to 0.5: AUC 3/4, weight 4. user 2: {0.2 +, 0.6 -}: AUC 0, weight 2.
     * user 5: all positive -> skipped. GAUC = (4*0.75 + 2*0) / 6 = 0.5. Rows interleaved. */
    const int32_t g[] = {7, 2, 5, 7, 7, 5, 2, 7, 5};
    const float s[] = {0.9f, 0.2f, 0.3f, 0.1f, 0.5f, 0.4f, 0.6f, 0.3f, 0.8f};
    const uint8_t y[] = {1, 1, 1, 0, 0, 1, 0, 1, 1};
    rlab_err err = {0};
    double gauc = 0;
    int64_t used = 0;
    CHECK_EQ_INT(rlab_eval_gauc(s, y, g, 9, &gauc, &used, &err), RLAB_OK);
    CHECK_NEAR(gauc, 0.5, TOL);
    CHECK_EQ_INT(used, 2);
}

static void t_ctr_logloss(void)
{
    /* -ln 0.9 = 0.1053605, -ln 0.8 = 0.2231436, p=1 clipped to 1-1e-7 with y=1: 1e-7,
     * p=0 clipped to 1e-7 with y=1: 16.1180957. Mean = 16.4465998 / 4 = 4.1116500. */
    const float p[] = {0.9f, 0.2f, 1.0f, 0.0f};
    const uint8_t y[] = {1, 0, 1, 1};
    rlab_err err = {0};
    double ll = 0;
    CHECK_EQ_INT(rlab_eval_logloss(p, y, 4, 1e-7, &ll, &err), RLAB_OK);
    CHECK_NEAR(ll, 4.1116500, 1e-5); /* float inputs: 0.9f, 0.2f carry ~1e-8 error */
    CHECK(isfinite(ll));
}

/* ---- eval.lists -------------------------------------------------------------------- */
static const int32_t lists_l[6] = {0, 1, 2, 1, 3, -1};

static void t_lists(void)
{
    rlab_err err = {0};
    double v = 0;
    /* coverage: {0,1,2,3} of 5 items = 0.8. */
    CHECK_EQ_INT(rlab_eval_coverage(lists_l, 2, 3, 5, &v, &err), RLAB_OK);
    CHECK_NEAR(v, 0.8, TOL);
    /* novelty: pop {1/2, 1/4, 1/8, 1, 1/2}: slots 0,1,2,1,3 -> 1+2+3+2+0 = 8 / 5 = 1.6. */
    const double pop[] = {0.5, 0.25, 0.125, 1.0, 0.5};
    CHECK_EQ_INT(rlab_eval_novelty(lists_l, 2, 3, 5, pop, &v, &err), RLAB_OK);
    CHECK_NEAR(v, 1.6, TOL);
    /* ILD: vectors 0 (1,0), 1 (0,1), 2 (1,1), 3 (1,0). List {0,1,2}: cos 0, 1/sqrt2,
     * 1/sqrt2 -> 1 - 0.4714045 = 0.5285955. List {1,3}: cos 0 -> 1. Mean 0.7642977. */
    const float vec[] = {1, 0, 0, 1, 1, 1, 1, 0, 0, 0};
    CHECK_EQ_INT(rlab_eval_ild(lists_l, 2, 3, 5, vec, 2, &v, &err), RLAB_OK);
    CHECK_NEAR(v, 0.7642977, TOL);
    /* genre entropy: genres 0:{0} 1:{0,1} 2:{2} 3:{1} 4:{}. Exposures 0,1,2,1,3 ->
     * g0 3, g1 3, g2 1 of 7: H = 2 (3/7) log2(7/3) + (1/7) log2 7 = 1.4488156 bits. */
    const int64_t goff[] = {0, 1, 3, 4, 5, 5};
    const int32_t gi[] = {0, 0, 1, 2, 1};
    CHECK_EQ_INT(rlab_eval_genre_entropy(lists_l, 2, 3, 5, goff, gi, 3, &v, &err), RLAB_OK);
    CHECK_NEAR(v, 1.4488156, TOL);
    const int32_t bad[] = {5};
    CHECK_EQ_INT(rlab_eval_coverage(bad, 1, 1, 5, &v, &err), RLAB_EINVAL);
    const double pop0[] = {0.0, 1, 1, 1, 1};
    CHECK_EQ_INT(rlab_eval_novelty(lists_l, 2, 3, 5, pop0, &v, &err), RLAB_EINVAL);
}

/* ---- eval.text --------------------------------------------------------------------- */
static void t_text_distinct(void)
{
    /* "a b a b" and "a  c" (and two empty ones, "" and blanks only): unigrams a b a b a c ->
     * 6 total, 3 unique; bigrams ab ba ab ac -> 4 total, 3 unique. standard: 3/6 = 0.5,
     * 3/4 = 0.75; UniCRS: over the 2 non-empty sentences (not 4), 3/2 = 1.5 for both. */
    const char *s[] = {"a b a b", " a \t c\n", "", " \t\n"};
    rlab_err err = {0};
    double v = 0;
    CHECK_EQ_INT(rlab_eval_distinct(s, 4, 1, RLAB_DISTINCT_STANDARD, &v, &err), RLAB_OK);
    CHECK_NEAR(v, 0.5, TOL);
    rlab_eval_distinct(s, 4, 2, RLAB_DISTINCT_STANDARD, &v, &err);
    CHECK_NEAR(v, 0.75, TOL);
    rlab_eval_distinct(s, 4, 1, RLAB_DISTINCT_UNICRS, &v, &err);
    CHECK_NEAR(v, 1.5, TOL);
    rlab_eval_distinct(s, 4, 2, RLAB_DISTINCT_UNICRS, &v, &err);
    CHECK_NEAR(v, 1.5, TOL);
    /* only empty sentences: 0, not a division by zero */
    rlab_eval_distinct(s + 2, 2, 1, RLAB_DISTINCT_UNICRS, &v, &err);
    CHECK_NEAR(v, 0.0, TOL);
    /* trigrams: "a b a", "b a b" (2 unique of 2); "a c" has none. */
    rlab_eval_distinct(s, 2, 3, RLAB_DISTINCT_STANDARD, &v, &err);
    CHECK_NEAR(v, 1.0, TOL);
    CHECK_EQ_INT(rlab_eval_distinct(s, 2, 5, 0, &v, &err), RLAB_EINVAL);
    /* Many distinct words (forces table growth): 3000 words "w0 .. w2999" + repeats. */
    static char big[40000];
    size_t o = 0;
    for (int i = 0; i < 3000; i++)
        o += (size_t)snprintf(big + o, sizeof big - o, "w%d ", i % 1500);
    const char *b[] = {big};
    rlab_eval_distinct(b, 1, 1, RLAB_DISTINCT_STANDARD, &v, &err);
    CHECK_NEAR(v, 0.5, TOL); /* 1500 unique of 3000 */
}

static void t_text_bleu(void)
{
    /* hyp "the cat sat on the mat" vs ref "the cat is on the mat":
     * 1-grams: the(2) cat on mat match, sat not: 5/6. 2-grams: the-cat, on-the, the-mat:
     * 3/5. 3-grams: on-the-mat: 1/4. 4-grams: 0/3. c = r = 6 -> BP 1.
     * BLEU-1 5/6, BLEU-2 sqrt(5/6 * 3/5) = 0.7071068, BLEU-3 (1/8)^(1/3) = 0.5, BLEU-4 0. */
    const char *h1[] = {"the cat sat on the mat"}, *r1[] = {"the cat is on the mat"};
    rlab_err err = {0};
    double b = -1;
    CHECK_EQ_INT(rlab_eval_bleu(h1, r1, 1, 1, &b, &err), RLAB_OK);
    CHECK_NEAR(b, 5.0 / 6.0, TOL);
    rlab_eval_bleu(h1, r1, 1, 2, &b, &err);
    CHECK_NEAR(b, 0.7071068, TOL);
    rlab_eval_bleu(h1, r1, 1, 3, &b, &err);
    CHECK_NEAR(b, 0.5, TOL);
    rlab_eval_bleu(h1, r1, 1, 4, &b, &err);
    CHECK_NEAR(b, 0.0, TOL);
    /* Corpus of two pairs; the second is hyp "a b c d" vs ref "a b c d e f" (all 4/4, 3/3,
     * 2/2, 1/1). Corpus precisions: 9/10, 6/8, 3/6, 1/4; c = 10, r = 12:
     * BP = exp(1 - 12/10) = 0.8187308; BLEU-4 = BP (0.9*0.75*0.5*0.25)^(1/4) = 0.4412600. */
    const char *h2[] = {"the cat sat on the mat", "a b c d"};
    const char *r2[] = {"the cat is on the mat", "a b c d e f"};
    rlab_eval_bleu(h2, r2, 2, 4, &b, &err);
    CHECK_NEAR(b, 0.4412600, TOL);
    /* Clipping: "the the the the" vs "the cat": 1 of 4 -> BLEU-1 0.25 (c 4 > r 2, BP 1). */
    const char *h3[] = {"the the the the"}, *r3[] = {"the cat"};
    rlab_eval_bleu(h3, r3, 1, 1, &b, &err);
    CHECK_NEAR(b, 0.25, TOL);
    const char *empty[] = {""};
    rlab_eval_bleu(empty, r3, 1, 1, &b, &err);
    CHECK_NEAR(b, 0.0, TOL);
}

/* ---- eval.fid ---------------------------------------------------------------------- */
static void t_fidelity(void)
{
    /* a = {1,2,3 | 4,5,6}, b = {2,1,3 | 4,7,8}. k=3: overlap 3/3 and 1/3 -> 2/3; same
     * position: u0 only rank 2, u1 only rank 0 -> 1/3 each -> 1/3.
     * k=2: overlap {1,2}/{2,1} = 1, {4,5}/{4,7} = 1/2 -> 0.75; same position 0, 1/2 -> 0.25. */
    const int32_t a[] = {1, 2, 3, 4, 5, 6}, b[] = {2, 1, 3, 4, 7, 8};
    rlab_err err = {0};
    double agr = 0, ex = 0;
    CHECK_EQ_INT(rlab_eval_agreement(a, b, 2, 3, 3, &agr, &ex, &err), RLAB_OK);
    CHECK_NEAR(agr, 2.0 / 3.0, TOL);
    CHECK_NEAR(ex, 1.0 / 3.0, TOL);
    rlab_eval_agreement(a, b, 2, 3, 2, &agr, &ex, &err);
    CHECK_NEAR(agr, 0.75, TOL);
    CHECK_NEAR(ex, 0.25, TOL);
    CHECK_EQ_INT(rlab_eval_agreement(a, b, 2, 3, 4, &agr, &ex, &err), RLAB_EINVAL);
}

/* ---- eval.stats -------------------------------------------------------------------- */
static void t_stats_tcdf(void)
{
    /* I_x(1,1) = x; I_x(2,1) = x^2; I_x(1,2) = 1-(1-x)^2. */
    CHECK_NEAR(rlab_eval_betainc(1, 1, 0.3), 0.3, 1e-12);
    CHECK_NEAR(rlab_eval_betainc(2, 1, 0.3), 0.09, 1e-12);
    CHECK_NEAR(rlab_eval_betainc(1, 2, 0.3), 0.51, 1e-12);
    /* df=1 (Cauchy): F(1) = 1/2 + atan(1)/pi = 0.75. df=2: F(t) = 1/2 + t/(2 sqrt(2+t^2)),
     * F(1) = 0.7886751. Symmetry: F(-1) = 1 - F(1). */
    CHECK_NEAR(rlab_eval_t_cdf(1.0, 1.0), 0.75, 1e-10);
    CHECK_NEAR(rlab_eval_t_cdf(1.0, 2.0), 0.7886751, 1e-7);
    CHECK_NEAR(rlab_eval_t_cdf(-1.0, 2.0), 1.0 - 0.7886751, 1e-7);
    CHECK_NEAR(rlab_eval_t_cdf(0.0, 7.0), 0.5, 1e-12);
    /* Large df approaches the normal: F(1.959964) ~ 0.975. */
    CHECK_NEAR(rlab_eval_t_cdf(1.959964, 1e6), 0.975, 1e-5);
}

static void t_stats_ttest(void)
{
    /* a - b = {1,2,3,4}: mean 2.5, sd sqrt(5/3) = 1.2909944, t = 2.5 / (sd/2) = 3.8729833,
     * df 3. For df 3, F(t) = 1/2 + (1/pi)[u/(1+u^2) + atan u], u = t/sqrt3 = sqrt5:
     * sqrt5/6 + atan(sqrt5) = 0.3726780 + 1.1502620 = 1.5229400 -> F = 0.9847669,
     * p = 2 (1 - F) = 0.0304663. */
    const double a[] = {3, 5, 7, 9}, b[] = {2, 3, 4, 5};
    rlab_eval_ttest tt;
    rlab_err err = {0};
    CHECK_EQ_INT(rlab_eval_ttest_paired(a, b, 4, &tt, &err), RLAB_OK);
    CHECK_NEAR(tt.mean_diff, 2.5, TOL);
    CHECK_NEAR(tt.t, 3.8729833, TOL);
    CHECK_NEAR(tt.df, 3.0, 0);
    CHECK_NEAR(tt.p, 0.0304663, 1e-6);
    /* Swapped: t negates, p unchanged. */
    rlab_eval_ttest_paired(b, a, 4, &tt, &err);
    CHECK_NEAR(tt.t, -3.8729833, TOL);
    CHECK_NEAR(tt.p, 0.0304663, 1e-6);
    /* Identical: t 0, p 1. Constant nonzero shift: p 0. n < 2: EINVAL. */
    rlab_eval_ttest_paired(a, a, 4, &tt, &err);
    CHECK_NEAR(tt.t, 0.0, 0);
    CHECK_NEAR(tt.p, 1.0, 0);
    const double c[] = {4, 6, 8, 10};
    rlab_eval_ttest_paired(c, a, 4, &tt, &err);
    CHECK(isinf(tt.t));
    CHECK_NEAR(tt.p, 0.0, 0);
    CHECK_EQ_INT(rlab_eval_ttest_paired(a, b, 1, &tt, &err), RLAB_EINVAL);
}

static void t_stats_spearman(void)
{
    /* ranks with a tie: {10, 20, 20, 30} -> {1, 2.5, 2.5, 4}; order of input kept */
    const double v[] = {20, 10, 30, 20};
    double r[4];
    rlab_err err = {0};
    CHECK_EQ_INT(rlab_eval_ranks(v, 4, r, &err), RLAB_OK);
    CHECK_NEAR(r[0], 2.5, 0);
    CHECK_NEAR(r[1], 1.0, 0);
    CHECK_NEAR(r[2], 4.0, 0);
    CHECK_NEAR(r[3], 2.5, 0);
    /* x = {1,2,2,3} -> ranks {1,2.5,2.5,4}; y = {1,3,2,4} -> {1,3,2,4}; centred at 2.5:
     * dx = {-1.5,0,0,1.5}, dy = {-1.5,.5,-.5,1.5}: sxy = 4.5, sxx = 4.5, syy = 5,
     * rho = 4.5 / sqrt(22.5) = 0.9486833 (the no-ties shortcut would say 0.95) */
    const double x[] = {1, 2, 2, 3}, y[] = {1, 3, 2, 4};
    double rho = 0.0;
    CHECK_EQ_INT(rlab_eval_spearman(x, y, 4, &rho, &err), RLAB_OK);
    CHECK_NEAR(rho, 0.9486833, 1e-6);
    /* reversed order: -1; a constant side: NaN; n < 2: EINVAL */
    const double a[] = {1, 2, 3}, b[] = {9, 5, 1}, c[] = {4, 4, 4};
    rlab_eval_spearman(a, b, 3, &rho, &err);
    CHECK_NEAR(rho, -1.0, 1e-12);
    rlab_eval_spearman(a, c, 3, &rho, &err);
    CHECK(isnan(rho));
    CHECK_EQ_INT(rlab_eval_spearman(a, b, 1, &rho, &err), RLAB_EINVAL);
}

static void t_stats_bootstrap(void)
{
    const double x[] = {0, 1, 0, 1, 1, 0, 0, 1, 1, 1}; /* mean 0.6, sd of mean ~0.155 */
    rlab_eval_ci a, b, c;
    rlab_err err = {0};
    CHECK_EQ_INT(rlab_eval_bootstrap(x, 10, 2000, 0.95, 7, &a, &err), RLAB_OK);
    CHECK_NEAR(a.mean, 0.6, 1e-12);
    CHECK(a.lo <= a.mean && a.mean <= a.hi);
    CHECK(a.lo >= 0.0 && a.hi <= 1.0);
    /* Normal approximation width 2 * 1.96 * 0.155 = 0.61; resample means are multiples
     * of 0.1, so expect roughly [0.3, 0.9]. */
    CHECK(a.hi - a.lo > 0.4 && a.hi - a.lo < 0.8);
    rlab_eval_bootstrap(x, 10, 2000, 0.95, 7, &b, &err);
    CHECK(memcmp(&a, &b, sizeof a) == 0); /* same seed, same interval */
    rlab_eval_bootstrap(x, 10, 2000, 0.5, 7, &c, &err);
    CHECK(c.hi - c.lo < a.hi - a.lo); /* 50% interval is narrower */
    const double k[] = {0.25, 0.25, 0.25};
    rlab_eval_bootstrap(k, 3, 100, 0.0, 1, &c, &err);
    CHECK_NEAR(c.lo, 0.25, 0);
    CHECK_NEAR(c.hi, 0.25, 0);
    CHECK_NEAR(c.mean, 0.25, 0);
    CHECK_EQ_INT(rlab_eval_bootstrap(x, 0, 10, 0.95, 1, &c, &err), RLAB_EINVAL);
}

static void t_ctr_tasks(void)
{
    /* labels a b c of 5 rows, groups 1 1 2 2 2; samples = rows 0 1 3 4. Probabilities for
     * a: .8 .3 .6 .4 against a = 1 0 0 1: pairs (.8>.3, .8>.6, .4>.3, .4<.6) AUC 3/4; group 1
     * (.8+, .3-) AUC 1, group 2 (.6-, .4+) AUC 0, weights 2 and 2: GAUC 1/2; log loss
     * -(ln .8 + ln .7 + ln .4 + ln .4) / 4 = 0.6031000. b: all NAN, not a task. c: all .5:
     * AUC 1/2, GAUC 1/2, log loss ln 2. Means: AUC 0.625, GAUC 0.5, log loss 0.6481236. */
    const float labels[5 * 3] = {1, 0, 1, 0, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1};
    const int32_t group[5] = {1, 1, 2, 2, 2};
    const int64_t rows[4] = {0, 1, 3, 4};
    const float nan = NAN;
    const float p[4 * 3] = {.8f, nan, .5f, .3f, nan, .5f, .6f, nan, .5f, .4f, nan, .5f};
    const char names[3][32] = {"a", "b", "c"};
    rlab_ctr_result r;
    rlab_err err = {0};
    CHECK_EQ_INT(rlab_eval_ctr_tasks(p, labels, 3, names, group, rows, 4, &r, &err), RLAB_OK);
    CHECK_EQ_INT(r.ntasks, 2);
    CHECK_STR(r.names[0], "a");
    CHECK_STR(r.names[1], "c");
    CHECK_EQ_INT(r.label[1], 2);
    CHECK_NEAR(r.auc[0], 0.75, TOL);
    CHECK_NEAR(r.gauc[0], 0.5, TOL);
    CHECK_NEAR(r.logloss[0], 0.6031000, 1e-6);
    CHECK_NEAR(r.auc[1], 0.5, TOL);
    CHECK_NEAR(r.gauc[1], 0.5, TOL);
    CHECK_NEAR(r.logloss[1], 0.6931472, 1e-6);
    CHECK_NEAR(r.mean_auc, 0.625, TOL);
    CHECK_NEAR(r.mean_gauc, 0.5, TOL);
    CHECK_NEAR(r.mean_logloss, 0.6481236, 1e-6);
    CHECK_EQ_INT((int)r.n, 4);
    /* rows 1 and 3 only: a and c are 0 on both, AUC and GAUC undefined (NAN), log loss not;
     * no groups: GAUC NAN */
    const int64_t neg[2] = {1, 3};
    CHECK_EQ_INT(rlab_eval_ctr_tasks(p, labels, 3, NULL, NULL, neg, 2, &r, &err), RLAB_OK);
    CHECK_STR(r.names[0], "label0");
    CHECK(isnan(r.auc[0]) && isnan(r.gauc[0]) && isnan(r.mean_auc));
    CHECK(!isnan(r.logloss[0]));
    CHECK_EQ_INT(rlab_eval_ctr_tasks(p, labels, 9, NULL, NULL, rows, 4, &r, &err), RLAB_EINVAL);
}

/* ---- eval.fast: the one-pass top-k + counts against a naive full sort ---------------- */

/* Naive order: score descending, equal scores by lower index; NaN last (dropped). */
static const float *naive_row;
static int naive_cmp(const void *pa, const void *pb)
{
    int32_t a = *(const int32_t *)pa, b = *(const int32_t *)pb;
    float x = naive_row[a], y = naive_row[b];
    if (isnan(x) || isnan(y))
        return isnan(x) - isnan(y);
    if (x > y)
        return -1;
    if (x < y)
        return 1;
    return (a > b) - (a < b);
}

static void t_fast_topk_count(void)
{
    /* Rows with many ties (a few levels), NaN, +-inf and -0/+0 (equal: they tie); k from 1
     * to past the stack buffer (256) and past the row; s a row value or NaN. The top-k must
     * be the first k of the full sort, gt/ge the plain counts. */
    enum { N = 140000 }; /* trial 2: past 1024 blocks of 128, the block length doubles */
    static float row[N];
    static int32_t ord[N], got[N];
    static float gs[N];
    rlab_rng rng;
    rlab_rng_seed(&rng, 77);
    const int ks[] = {1, 2, 5, 20, 64, 100, 300, 1499, 2000};
    for (int trial = 0; trial < 40; trial++) {
        int32_t n = trial == 0   ? 1
                    : trial == 1 ? 17
                    : trial == 2 ? N
                                 : 1 + (int32_t)rlab_rng_below(&rng, 1500);
        int levels = 1 + (int)rlab_rng_below(&rng, trial % 2 ? 5 : 3000);
        for (int32_t i = 0; i < n; i++) {
            uint64_t r = rlab_rng_below(&rng, 100);
            row[i] = r < 3   ? NAN
                     : r < 5 ? -INFINITY
                     : r < 6 ? INFINITY
                     : r < 8 ? (r == 6 ? -0.0f : 0.0f)
                             : (float)rlab_rng_below(&rng, (uint64_t)levels) - 3.0f;
        }
        float s = trial % 5 == 4 ? NAN : row[rlab_rng_below(&rng, (uint64_t)n)];
        int64_t wgt = 0, wge = 0, nn = 0;
        for (int32_t i = 0; i < n; i++) {
            wgt += row[i] > s;
            wge += row[i] >= s;
            nn += !isnan(row[i]);
            ord[i] = i;
        }
        naive_row = row;
        qsort(ord, (size_t)n, sizeof *ord, naive_cmp);
        for (size_t q = 0; q < sizeof ks / sizeof *ks; q++) {
            int k = ks[q];
            int64_t gt = -1, ge = -1;
            int m = rlab_eval_topk_count(row, n, k, s, got, gs, &gt, &ge);
            int want_m = (int)(nn < k ? nn : k);
            CHECK_MSG(m == want_m, "trial %d k %d: %d items, want %d", trial, k, m, want_m);
            CHECK_MSG(gt == wgt && ge == wge, "trial %d k %d: gt %lld ge %lld, want %lld %lld",
                      trial, k, (long long)gt, (long long)ge, (long long)wgt, (long long)wge);
            int bad = 0;
            for (int j = 0; j < m && j < want_m; j++)
                bad += got[j] != ord[j] || memcmp(&gs[j], &row[ord[j]], sizeof(float)) != 0;
            CHECK_MSG(bad == 0, "trial %d k %d: %d of %d list entries differ", trial, k, bad, m);
            /* the plain top-k gives the same list */
            int m2 = rlab_eval_topk(row, n, k, got, NULL);
            CHECK_EQ_INT(m2, want_m);
            for (int j = 0; j < m2; j++)
                bad += got[j] != ord[j];
            CHECK_EQ_INT(bad, 0);
        }
    }
}

/* The evaluator's one-target path against a naive full sort of every user's row, on tie-heavy
 * random data, for the three tie rules: the kept top-k list is the first k of the sorted
 * unmasked row (targets included); HR/NDCG/MRR@k of a target whose tie group starts at gt
 * and holds eq other items are the optimistic (p = gt), pessimistic (p = gt + eq) and
 * averaged (mean over p = gt .. gt + eq) values of [p < k], [p < k]/log2(p+2), [p < k]/(p+1). */
static void t_fast_oracle(void)
{
    rand_prob p;
    rand_prob_make(&p, 120, 700, 1, 0, 0, 11); /* 17 score levels: ties everywhere */
    mat_scorer ms;
    rlab_err err = {0};
    const int ks[] = {1, 10, 50};
    enum { W = 30 };
    int32_t *ord = malloc((size_t)p.ni * sizeof *ord);
    float *row = malloc((size_t)p.ni * sizeof *row);
    for (int tie = 0; tie < 3; tie++) {
        rlab_eval_spec sp = rand_spec(&p, &ms);
        sp.ks = ks;
        sp.n_ks = 3;
        sp.tie = tie;
        sp.keep_topk = W;
        sp.metrics = RLAB_EM_HR | RLAB_EM_NDCG | RLAB_EM_MRR;
        rlab_eval_result *r = rlab_eval_ranking(&sp, &err);
        CHECK_MSG(r != NULL, "%s", err.msg);
        if (!r)
            break;
        int bad_list = 0, bad_metric = 0;
        for (int64_t x = 0; x < r->n_users; x++) {
            int32_t u = r->users[x], t = p.tit[p.toff[u]];
            memcpy(row, p.m + (size_t)u * p.ni, (size_t)p.ni * sizeof *row);
            for (int64_t j = p.hoff[u]; j < p.hoff[u + 1]; j++)
                if (p.hit[j] != t)
                    row[p.hit[j]] = NAN;
            int32_t n = 0;
            for (int32_t i = 0; i < p.ni; i++)
                if (!isnan(row[i]))
                    ord[n++] = i;
            naive_row = row;
            qsort(ord, (size_t)n, sizeof *ord, naive_cmp);
            for (int j = 0; j < W; j++)
                bad_list += r->topk[x * W + j] != (j < n ? ord[j] : -1);
            int64_t gt = 0, eq = 0;
            for (int32_t j = 0; j < n; j++) {
                gt += row[ord[j]] > row[t];
                eq += ord[j] != t && !(row[ord[j]] > row[t]) && !(row[ord[j]] < row[t]);
            }
            int64_t lo = tie == RLAB_TIE_PESSIMISTIC ? gt + eq : gt;
            int64_t hi = tie == RLAB_TIE_OPTIMISTIC ? gt : gt + eq;
            for (int ki = 0; ki < 3; ki++) {
                double hr = 0, nd = 0, mrr = 0;
                for (int64_t q = lo; q <= hi; q++) {
                    if (q >= ks[ki])
                        continue;
                    hr += 1.0;
                    nd += 1.0 / log2((double)q + 2.0);
                    mrr += 1.0 / ((double)q + 1.0);
                }
                const double cnt = (double)(hi - lo + 1);
                const double want[3] = {hr / cnt, nd / cnt, mrr / cnt};
                for (int t3 = 0; t3 < 3; t3++)
                    bad_metric +=
                        fabs(r->values[(int64_t)(t3 * 3 + ki) * r->n_users + x] - want[t3]) > 1e-12;
            }
        }
        CHECK_MSG(bad_list == 0, "tie %d: %d list entries differ", tie, bad_list);
        CHECK_MSG(bad_metric == 0, "tie %d: %d metric values differ", tie, bad_metric);
        rlab_eval_result_free(r);
    }
    free(ord);
    free(row);
    rand_prob_free(&p);
}

/* Factorised scoring: integer-valued vectors, so every dot product is exact and the scores
 * equal those of a naive scorer bit for bit (ties included): the results must equal the
 * scorer path's, and be identical for 1 and 2 threads and any batch. */
typedef struct fact_prob {
    int32_t nu, ni;
    int d;
    float *U, *V, *bias, *m;
} fact_prob;

static int fact_vecs(void *ud, const int32_t *users, int nb, float *out, rlab_err *err)
{
    (void)err;
    const fact_prob *f = ud;
    for (int b = 0; b < nb; b++)
        memcpy(out + (size_t)b * f->d, f->U + (size_t)users[b] * f->d, (size_t)f->d * sizeof *out);
    return RLAB_OK;
}

static void fast_factorised(int real)
{
    rand_prob p;
    rand_prob_make(&p, 90, 1000, 3, 0, 1, 12);
    fact_prob f = {.nu = p.nu, .ni = p.ni, .d = real ? 37 : 5};
    f.U = malloc((size_t)f.nu * f.d * sizeof *f.U);
    f.V = malloc((size_t)f.ni * f.d * sizeof *f.V);
    f.bias = malloc((size_t)f.ni * sizeof *f.bias);
    rlab_rng rng;
    rlab_rng_seed(&rng, 13);
    for (int64_t i = 0; i < (int64_t)f.nu * f.d; i++)
        f.U[i] =
            real ? (float)rlab_rng_uniform(&rng) - 0.5f : (float)rlab_rng_below(&rng, 5) - 2.0f;
    for (int64_t i = 0; i < (int64_t)f.ni * f.d; i++)
        f.V[i] =
            real ? (float)rlab_rng_uniform(&rng) - 0.5f : (float)rlab_rng_below(&rng, 5) - 2.0f;
    for (int32_t i = 0; i < f.ni; i++)
        f.bias[i] = real ? 0.01f * (float)rlab_rng_uniform(&rng) : (float)rlab_rng_below(&rng, 3);
    /* the same scores as a dense matrix, summed as the kernel does: k ascending, then the
     * bias (real values: any other order or a fused multiply-add would change bits) */
    for (int32_t u = 0; u < f.nu; u++)
        for (int32_t i = 0; i < f.ni; i++) {
            float s = 0.0f;
            for (int j = 0; j < f.d; j++)
                s += f.V[(size_t)i * f.d + j] * f.U[(size_t)u * f.d + j];
            p.m[(size_t)u * f.ni + i] = s + f.bias[i];
        }
    mat_scorer ms;
    rlab_err err = {0};
    rlab_eval_spec sp = rand_spec(&p, &ms);
    sp.keep_topk = 10;
    rlab_eval_result *want = rlab_eval_ranking(&sp, &err);
    CHECK_MSG(want != NULL, "%s", err.msg);
    sp.score = NULL;
    sp.dim = f.d;
    sp.item_vecs = f.V;
    sp.item_bias = f.bias;
    sp.user_vecs = fact_vecs;
    sp.vec_ud = &f;
    for (int v = 0; want && v < 3; v++) {
        sp.n_threads = v == 0 ? 1 : 2;
        sp.batch = v == 2 ? 7 : 0;
        rlab_eval_result *r = rlab_eval_ranking(&sp, &err);
        CHECK_MSG(r != NULL, "%s", err.msg);
        if (!r)
            continue;
        CHECK_EQ_INT(r->n_users, want->n_users);
        CHECK(memcmp(r->values, want->values,
                     (size_t)r->n_metrics * (size_t)r->n_users * sizeof(double)) == 0);
        CHECK(memcmp(r->topk, want->topk, (size_t)r->n_users * 10 * sizeof(int32_t)) == 0);
        CHECK(memcmp(r->mean, want->mean, (size_t)r->n_metrics * sizeof(double)) == 0);
        rlab_eval_result_free(r);
    }
    rlab_eval_result_free(want);
    /* misuse: dim without vectors */
    sp.item_vecs = NULL;
    CHECK(rlab_eval_ranking(&sp, &err) == NULL);
    CHECK_EQ_INT(err.code, RLAB_EINVAL);
    free(f.U);
    free(f.V);
    free(f.bias);
    rand_prob_free(&p);
}

static void t_fast_factorised(void)
{
    fast_factorised(0); /* integer vectors: exact sums, ties everywhere */
    fast_factorised(1); /* real vectors: the kernel's summation order, bit for bit */
}

static const rlab_test tests[] = {
    {"eval.list.1", t_list_values},
    {"eval.list.2", t_list_k_large},
    {"eval.list.3", t_list_empty},
    {"eval.rank.1", t_rank_ties},
    {"eval.rank.2", t_rank_metric},
    {"eval.group.1", t_group_one_target},
    {"eval.group.2", t_group_two_targets},
    {"eval.group.3", t_group_oracle},
    {"eval.topk.1", t_topk},
    {"eval.sample.1", t_sample},
    {"eval.run.1", t_run_hand},
    {"eval.run.2", t_run_ties},
    {"eval.run.3", t_run_masking},
    {"eval.run.4", t_run_invariance},
    {"eval.run.5", t_run_oracle},
    {"eval.run.6", t_run_sampled},
    {"eval.run.7", t_run_errors},
    {"eval.run.8", t_run_topk_lists},
    {"eval.fast.1", t_fast_topk_count},
    {"eval.fast.2", t_fast_oracle},
    {"eval.fast.3", t_fast_factorised},
    {"eval.ctr.1", t_ctr_auc},
    {"eval.ctr.2", t_ctr_gauc},
    {"eval.ctr.3", t_ctr_logloss},
    {"eval.ctr.4", t_ctr_tasks},
    {"eval.lists.1", t_lists},
    {"eval.text.1", t_text_distinct},
    {"eval.text.2", t_text_bleu},
    {"eval.fid.1", t_fidelity},
    {"eval.stats.1", t_stats_tcdf},
    {"eval.stats.2", t_stats_ttest},
    {"eval.stats.3", t_stats_bootstrap},
    {"eval.stats.4", t_stats_spearman},
    {NULL, NULL},
};

int main(int argc, char **argv) { return rlab_test_main(argc, argv, tests); }
