/*
 * core/eval/eval: the ranking evaluator. It streams users through any scorer in batches,
 * ranks each user's target item(s) against all items (full ranking, the default) or against
 * sampled negatives (only when asked), and returns per-user metric values and their means.
 *
 *     static int score(void *ud, const int32_t *users, int nb, float *s, rlab_err *err);
 *     rlab_eval_spec sp = {0};                 // zero = defaults
 *     sp.n_users = nu; sp.n_items = ni;
 *     sp.hist_off = train.off; sp.hist_items = train.items;   // masked (optional)
 *     sp.tgt_off = test_off; sp.tgt_items = test_items;       // 1 (leave-one-out) or more
 *     sp.score = score; sp.score_ud = model;
 *     rlab_eval_result *r = rlab_eval_ranking(&sp, &err);
 *     int i = rlab_eval_result_find(r, "ndcg@10");
 *     printf("%s %s = %.4f over %lld users\n", r->protocol, r->names[i], r->mean[i],
 *            (long long)r->n_users);
 *     rlab_eval_result_free(r);
 *
 * Protocol. Full ranking ("full"): every item not in the user's history competes with the
 * targets. Sampled ("sampled-N", when n_neg = N > 0): the targets compete with N negatives
 * drawn uniformly without replacement from the items outside the user's history and targets,
 * seeded per (seed, user) so the draw is independent of batching and thread count. The
 * protocol label is always stored in the result.
 * Masking: history items never count above a target; a target that also appears in the
 * history is not masked. Duplicate targets count once. NaN scores of non-target items never
 * count above a target; a NaN target score is an error.
 * Ties: spec.tie (rank.h): RLAB_TIE_AVERAGE (default: exact expectation over random tie
 * breaking), RLAB_TIE_OPTIMISTIC (RecBole's strict ">" count), RLAB_TIE_PESSIMISTIC.
 * Metrics: rank.h definitions of HR, Recall, Precision, NDCG, MRR and MAP at each k.
 *
 * Memory: batch x n_items floats of scores plus small per-thread scratch (factorised:
 * batch x dim floats plus a tile of about 1 MiB per thread). The per-user
 * ranking runs on OpenMP threads; results are bit-identical for any thread count (each
 * user is computed independently, means are summed serially in user order).
 */
#ifndef RLAB_EVAL_EVAL_H
#define RLAB_EVAL_EVAL_H

#include "base/base.h"
#include "eval/rank.h"

/* Fill scores[b * n_items + i] for b < nb, i < n_items with the score of item i for user
 * users[b] (higher = better). Return RLAB_OK or an error status (filling err). Called from
 * the evaluator's thread, never concurrently; it may use OpenMP itself. */
typedef int (*rlab_eval_score_fn)(void *ud, const int32_t *users, int nb, float *scores,
                                  rlab_err *err);
/* Fill vecs[b * dim + j] for b < nb with the vector of user users[b] (factorised scoring,
 * see rlab_eval_spec.dim). Called from the evaluator's thread, never concurrently. */
typedef int (*rlab_eval_vec_fn)(void *ud, const int32_t *users, int nb, float *vecs, rlab_err *err);
/* Nonzero = stop: the evaluator returns NULL with RLAB_ECANCELED. Checked between batches. */
typedef int (*rlab_eval_cancel_fn)(void *ud);

enum {
    RLAB_EM_HR = 1u << 0,
    RLAB_EM_RECALL = 1u << 1,
    RLAB_EM_PRECISION = 1u << 2,
    RLAB_EM_NDCG = 1u << 3,
    RLAB_EM_MRR = 1u << 4,
    RLAB_EM_MAP = 1u << 5,
    RLAB_EM_ALL = 63u
};

/* What to evaluate. Zero-initialise, then set the required fields; every zero field means
 * its documented default. All arrays are borrowed for the call. */
typedef struct rlab_eval_spec {
    int32_t n_users, n_items;  /* required, > 0 */
    const int64_t *hist_off;   /* [n_users+1] CSR history to mask, or NULL (no masking) */
    const int32_t *hist_items; /* [hist_off[n_users]] */
    const int64_t *tgt_off;    /* required: [n_users+1] CSR targets */
    const int32_t *tgt_items;  /* [tgt_off[n_users]] */
    const int32_t *users;      /* users to evaluate, in this order; NULL = all users.   */
    int64_t n_eval;            /* Users without targets are skipped either way.         */
    const int *ks;             /* cut-offs, each >= 1; NULL = {5, 10, 20} */
    int n_ks;
    unsigned metrics;         /* RLAB_EM_* mask; 0 = RLAB_EM_ALL */
    int tie;                  /* RLAB_TIE_*; 0 = RLAB_TIE_AVERAGE */
    int batch;                /* users per scorer call; 0 = 256 */
    int n_neg;                /* 0 = full ranking; N > 0 = sampled with N negatives */
    uint64_t seed;            /* sampled protocol only */
    int keep_topk;            /* > 0: keep each user's top-keep_topk list (history
                                 masked, targets included, ties by item index) */
    int n_threads;            /* 0 = OpenMP default */
    rlab_eval_score_fn score; /* required (unless factorised, below) */
    void *score_ud;
    rlab_eval_cancel_fn cancel; /* optional */
    void *cancel_ud;
    /* Factorised scoring (optional; appended, zero = off): when dim > 0 and user_vecs is set,
     * score(u, i) = <user vector of u, item_vecs[i]> (+ item_bias[i] when not NULL) and
     * `score` is not called. The evaluator then scores blocks of users against all items
     * itself (a register-blocked kernel, 8 users x 16 items, item vectors packed once per
     * call) into a per-thread tile sized for L2 that is ranked while it is still in cache;
     * threads take user blocks, so scoring uses every core too. Each score is the same
     * k-ascending sum for any block, thread count or instruction set: the metrics do not
     * depend on them. Memory: + n_items x dim floats (the packed items). */
    int dim;                    /* vector size */
    const float *item_vecs;     /* [n_items][dim], borrowed */
    const float *item_bias;     /* [n_items] or NULL */
    rlab_eval_vec_fn user_vecs; /* fills [nb][dim]; called like `score` */
    void *vec_ud;
} rlab_eval_spec;

typedef struct rlab_eval_result {
    char protocol[32]; /* "full" or "sampled-N" */
    int tie;           /* the tie rule used */
    int64_t n_users;   /* users evaluated (with >= 1 target) */
    int n_metrics;
    char **names;   /* [n_metrics] "hr@5", ...: metric-major (hr@5 hr@10 ... ndcg@5 ...) */
    double *mean;   /* [n_metrics] mean over users */
    double *values; /* [n_metrics][n_users] per-user values (for bootstrap / t-tests) */
    int32_t *users; /* [n_users] evaluated users, in evaluation order */
    int topk_w;     /* width of topk (0 = not kept) */
    int32_t *topk;  /* [n_users][topk_w] item lists, -1 = empty slot; NULL if not kept */
    double seconds; /* wall time of the call */
} rlab_eval_result;

/* Run the evaluation described by spec. Returns a result owned by the caller (free with
 * rlab_eval_result_free), or NULL with err filled: RLAB_EINVAL (bad spec, item out of range,
 * NaN target score), RLAB_ENOMEM, RLAB_ECANCELED (the cancel hook fired), or the scorer's
 * own status. Thread-safe for distinct specs. */
RLAB_API rlab_eval_result *rlab_eval_ranking(const rlab_eval_spec *spec, rlab_err *err);

/* Index of the metric called name ("ndcg@10") in r, or -1. */
RLAB_API int rlab_eval_result_find(const rlab_eval_result *r, const char *name);

/* Free a result; NULL is fine. */
RLAB_API void rlab_eval_result_free(rlab_eval_result *r);

#endif /* RLAB_EVAL_EVAL_H */
