/*
 * plugins/reloop/reloop.h: ReLoop2 (Zhu et al., KDD 2023) pieces shared by the plugin, its
 * tests and its benchmark. Method notes: ../shared/papers/models.md §5; every choice made where
 * the paper's details are unknown is listed in plugins/reloop/README.md.
 *
 *   error memory  (memory.c) keys = a base model's hidden vector h(x) of a sample, values = the
 *                 observed error e = y - p of the base model; SimHash LSH with R tables of b
 *                 bits; buckets hold aggregated sums or a small FIFO; lookup = top-k similar
 *                 candidates weighted by softmax(cos / tau); decay per tick; a size cap.
 *   stream        (stream.c) a dataset replayed in time order, cut into periods, labelled.
 *   base          (base.c) the slow learner: a logistic MF of its own, a factorisation machine
 *                 over CTR samples, or a registered model (any kind with a sample
 *                 representation, model/model.h) under a logistic head.
 *
 *     reloop_mem_opts o = reloop_mem_defaults(32);
 *     reloop_mem *m = reloop_mem_new(&o, &err);
 *     double e_hat; int n;
 *     reloop_mem_lookup(m, h, &e_hat, &n);            // 0 when nothing similar is stored
 *     p2 = p + lambda * e_hat;                        // compensation, clipped to (0, 1)
 *     reloop_mem_insert(m, h, y - p);                 // when the label arrives
 *     reloop_mem_tick(m);                             // at the end of a period: ages entries
 *     reloop_mem_free(m);
 *
 * Threads: a memory is used by one thread at a time. Determinism: hyperplanes come from the
 * seed; lookups and inserts are sequential float arithmetic.
 */
#ifndef RELOOP_H
#define RELOOP_H

#include "data/tabular.h"
#include "host/plugin.h"
#include "model/model.h"

#include <stddef.h>
#include <stdint.h>

/* ---- the error memory ----------------------------------------------------------------- */

#define RELOOP_MAX_TABLES 32
#define RELOOP_MAX_BITS 16
#define RELOOP_MAX_FIFO 64
#define RELOOP_MAX_K 256

typedef struct reloop_mem_opts {
    int dim;       /* key size D (>= 1) */
    int tables;    /* R hash tables, 1..RELOOP_MAX_TABLES */
    int bits;      /* b bits per code (random hyperplanes), 1..RELOOP_MAX_BITS */
    int fifo;      /* 0: each bucket aggregates (sum of unit keys, sum of errors, mass);
                      F >= 1: each bucket keeps its last F samples (key, error, tick) */
    int k;         /* top-k candidates by cosine similarity, 1..RELOOP_MAX_K */
    float tau;     /* softmax temperature over cosine similarities (> 0) */
    float decay;   /* weight of an entry is decay^(ticks since written), in (0, 1] */
    int64_t cap;   /* most buckets held over all tables (>= 1); when full, the bucket created
                      longest ago is recycled */
    float min_err; /* store only samples with |error| >= min_err (0 = all) */
    float shrink;  /* pseudo-count of zero error added to the weights (0 = plain average) */
    uint64_t seed; /* hyperplanes */
} reloop_mem_opts;

/* Defaults for keys of size dim: R=4, b=10, aggregated buckets, k=16, tau=0.1, decay 0.7,
 * cap 16384 buckets, all errors stored, no shrinkage, seed 1. */
reloop_mem_opts reloop_mem_defaults(int dim);

typedef struct reloop_mem reloop_mem;

/* A new empty memory. RLAB_EINVAL names a bad field; RLAB_ENOMEM. Free with reloop_mem_free. */
reloop_mem *reloop_mem_new(const reloop_mem_opts *o, rlab_err *err);
void reloop_mem_free(reloop_mem *m);
/* Forget everything (the hyperplanes stay). */
void reloop_mem_clear(reloop_mem *m);

/* Write one sample: key [dim], error y - p. A zero key is not stored. */
void reloop_mem_insert(reloop_mem *m, const float *key, float error);
/* Estimated error of a sample with this key: *e_hat = sum_j w_j e_j / (sum_j w_j + shrink) over
 * the top-k candidates of the buckets the key falls in (deduplicated FIFO entries, or bucket
 * aggregates with e_j their decayed mean error), w_j = mass_j * exp((cos_j - 1) / tau);
 * mass_j = decay^age for a FIFO entry, the decayed count for an aggregate. With shrink 0 this
 * is a mass-weighted softmax over cos / tau. *n_cand (may be NULL) = candidates used;
 * *e_hat = 0 when there is none. */
void reloop_mem_lookup(const reloop_mem *m, const float *key, double *e_hat, int *n_cand);
/* The bucket codes of key in every table into codes[tables] (0 for a zero key): for tests and
 * for inspecting which samples share a bucket. */
void reloop_mem_codes(const reloop_mem *m, const float *key, int32_t *codes);
/* Age every entry by one tick (one period). O(1): decay is applied lazily. */
void reloop_mem_tick(reloop_mem *m);

/* Sizes: buckets in use, samples written (after min_err), bytes allocated. */
typedef struct reloop_mem_stats {
    int64_t buckets, inserted, entries, bytes;
} reloop_mem_stats;
void reloop_mem_get_stats(const reloop_mem *m, reloop_mem_stats *s);

/* ---- streams ----------------------------------------------------------------------------- */

enum { RELOOP_CUT_COUNT = 0, RELOOP_CUT_TIME = 1 };

typedef struct reloop_stream_opts {
    int periods;     /* P >= 2: period 0 trains the base, 1..P-1 are replayed */
    int cut;         /* RELOOP_CUT_COUNT: equal numbers of interactions; RELOOP_CUT_TIME:
                        equal spans of time between the first and the last timestamp */
    float threshold; /* label = rating >= threshold (datasets with ratings) */
    int neg;         /* > 0: every interaction is a positive (a click) and gets neg sampled
                        negatives at the same time (items drawn uniformly, never the user's
                        item of that row); 0: labels from ratings (or a label column) */
    uint64_t seed;   /* negatives */
} reloop_stream_opts;

/* Samples in time order. Period p is rows [start[p], start[p+1]). */
typedef struct reloop_stream {
    int64_t n;
    int32_t *user, *item; /* [n] dense indices of the dataset */
    int64_t *ts;          /* [n] */
    uint8_t *label;       /* [n] 0/1 */
    int periods;
    int per;          /* rows per interaction: 1 + sampled negatives (an interaction first) */
    int64_t *start;   /* [periods + 1] */
    int64_t *t_first; /* [periods] first timestamp of each period */
    int32_t n_users, n_items;
    int64_t *hist_len;    /* [n] the user's interactions (positive rows or rated) before this row */
    int64_t *uhist_off;   /* [n_users + 1] CSR of every user's interacted items in time order */
    int32_t *uhist;       /* [interactions] */
    char labels_from[32]; /* "rating>=4", "click+neg", "label:<name>" */
    /* CTR streams (reloop_stream_build_tab): user, item, hist_len, uhist* are NULL */
    const rlab_tabular *tab; /* the samples (borrowed), or NULL */
    int64_t *row;            /* [n] sample index in tab */
} reloop_stream;

/* Cut ds into a stream. RLAB_EINVAL: no interactions, fewer rows than periods, a period
 * without rows (time cut), labels of one class only in period 0; RLAB_ENOMEM. Free with
 * reloop_stream_clear. */
int reloop_stream_build(const rlab_dataset *ds, const reloop_stream_opts *o, reloop_stream *s,
                        rlab_err *err);
void reloop_stream_clear(reloop_stream *s);
/* The same over CTR samples (core/data/tabular.h, borrowed for the stream's lifetime): rows in
 * time order when t has a time column (ties in file order), else in file order (Criteo's
 * files are chronological); label = t's label number `label`; o->neg and o->threshold are not
 * used. RLAB_EINVAL as above, or for a label index out of range. */
int reloop_stream_build_tab(const rlab_tabular *t, int label, const reloop_stream_opts *o,
                            reloop_stream *s, rlab_err *err);
/* The period containing time ts (-1 before the first, P-1 after the last). */
int reloop_stream_period_of(const reloop_stream *s, int64_t ts);

/* ---- the slow learner ---------------------------------------------------------------------- */

typedef struct reloop_base_opts {
    int dim;      /* logistic MF factors (own base) */
    int epochs;   /* passes over period 0 */
    float lr;     /* SGD step of the fit on period 0 */
    float lr_inc; /* SGD step of the incremental passes */
    float l2;     /* L2 on the touched rows */
    uint64_t seed;
} reloop_base_opts;

/* A base: p(x) = sigmoid(logit), hidden vector h(x) of key_dim floats.
 *   own logistic MF: logit = b + b_u + b_i + <p_u, q_i>, h = [p_u ; q_i]
 *   wrapped model M: logit = a * s_M(x) + c + <w, h_M(x)>, h = h_M(x) (M's sample_repr);
 *                    M stays frozen, only (a, c, w) learn (the "head") */
typedef struct reloop_base reloop_base;

/* Factorisation machine over a CTR stream's samples (s->tab, borrowed): categorical fields
 * (role cat) with one weight and a dim-vector per id, numeric fields through
 * sign(x) log(1 + |x|) (missing = 0) with one weight each; logit = w0 + sum of weights +
 * sum over field pairs <v_f, v_g>; h = the F field vectors concatenated (F * dim).
 * RLAB_EINVAL when t has no categorical field. */
reloop_base *reloop_base_new_fm(const rlab_tabular *t, const reloop_base_opts *o, rlab_err *err);
reloop_base *reloop_base_new_mf(int32_t n_users, int32_t n_items, const reloop_base_opts *o,
                                rlab_err *err);
/* m borrowed for the base's lifetime (the caller holds a reference). */
reloop_base *reloop_base_new_wrap(const rlab_model *m, const reloop_base_opts *o, rlab_err *err);
/* An independent copy (same parameters). */
reloop_base *reloop_base_clone(const reloop_base *b, rlab_err *err);
void reloop_base_free(reloop_base *b);
int reloop_base_key_dim(const reloop_base *b);
/* Predict rows [lo, hi) of s: p [hi-lo], h [hi-lo][key_dim] (h may be NULL). */
int reloop_base_predict(const reloop_base *b, const reloop_stream *s, int64_t lo, int64_t hi,
                        float *p, float *h, rlab_err *err);
/* `epochs` SGD passes of log loss over rows [lo, hi) in a seeded random order, step lr. */
int reloop_base_fit(reloop_base *b, const reloop_stream *s, int64_t lo, int64_t hi, int epochs,
                    float lr, uint64_t seed, double *loss, rlab_err *err);
/* One SGD pass of log loss over rows [lo, hi) in order, step lr; mean loss into *loss (may be
 * NULL). */
int reloop_base_sgd(reloop_base *b, const reloop_stream *s, int64_t lo, int64_t hi, float lr,
                    double *loss, rlab_err *err);

#endif /* RELOOP_H */
