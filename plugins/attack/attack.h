/*
 * plugins/attack: model extraction of sequential recommenders (models.md section 6). Internal
 * API shared by the plugin (plugin.c), its tests (tests/attack) and later benchmarks; the code
 * is the static library attack_impl, compiled against the plugin API only.
 *
 *   blackbox.c  the black box: a registered model seen only through top-k lists, with a query
 *               counter and the defences (score noise, truncated lists, a query limit)
 *   datafree.c  Yue et al.'s data-free autoregressive generator (random first item, next item
 *               sampled from the victim's list), and the synthetic dataset it becomes
 *   fewshot.c   the few-shot attack's generator: real prefixes, the interaction sampler and
 *               the synthesis gate
 *   promote.c   the downstream attack: target-item promotion by poisoning, exposure measures
 *   fidelity.c  agreement between surrogate and victim on held-out real sequences
 *
 *     attack_bb_opts o = attack_bb_defaults();          // k 100, no defence
 *     attack_bb *bb = attack_bb_new(victim, &o, &err);  // victim: a borrowed model
 *     attack_gen_opts g = attack_gen_defaults();        // 100 sequences of 20 items
 *     attack_synth s = {0};
 *     attack_gen_datafree(bb, &g, NULL, NULL, &s, &err);
 *     printf("%lld queries\n", (long long)attack_bb_queries(bb));
 *     attack_synth_clear(&s); attack_bb_free(bb);
 *
 * Ownership: every *_new has its *_free (NULL ok); an attack_synth is cleared with
 * attack_synth_clear. Errors: int status + rlab_err. Threads: one black box per thread (its
 * counter and noise generator are not locked); the wrapped model may be shared.
 */
#ifndef ATTACK_H
#define ATTACK_H

#include "base/base.h"
#include "data/table.h"
#include "model/model.h"

#include <stdint.h>

/* ---- the black box ---------------------------------------------------------------------- */

typedef struct attack_bb_opts {
    int k;         /* list length the service computes (Yue et al.: 100) */
    int trunc;     /* defence: the service returns only the first trunc items (0 = all k) */
    double noise;  /* defence: Gaussian noise of sd noise * (sd of the row's scores) added to
                      every score before ranking (0 = none) */
    int64_t limit; /* defence: at most limit queries in all (0 = unlimited) */
    int mask_seen; /* items of the query sequence are never returned (as `recommend` does) */
    uint64_t seed; /* the noise generator */
} attack_bb_opts;

/* k 100, no truncation, no noise, no limit, mask_seen on, seed 1. */
attack_bb_opts attack_bb_defaults(void);

typedef struct attack_bb attack_bb;

/* Wrap victim (one reference taken, released by attack_bb_free). RLAB_EINVAL for k < 1,
 * trunc < 0 or > k, noise < 0, limit < 0, a victim without items. */
attack_bb *attack_bb_new(rlab_model *victim, const attack_bb_opts *o, rlab_err *err);
void attack_bb_free(attack_bb *bb);

/* Width of one answer: trunc when set, else k (never more than the catalogue). */
int attack_bb_width(const attack_bb *bb);
/* Queries answered so far (one per query sequence), and how many are left (INT64_MAX when
 * unlimited). */
int64_t attack_bb_queries(const attack_bb *bb);
int64_t attack_bb_remaining(const attack_bb *bb);
int32_t attack_bb_n_items(const attack_bb *bb);

/* Answer nq queries: query q is the item sequence seqs[q][0..lens[q]) (oldest first, the
 * user unknown to the service). out: [nq][attack_bb_width] item indices, best first, padded
 * with -1 when fewer items are allowed. Counts nq queries. RLAB_ESTATE "query limit reached"
 * (and nothing answered or counted) when more than attack_bb_remaining are asked. */
int attack_bb_query(attack_bb *bb, const int32_t *const *seqs, const int32_t *lens, int nq,
                    int32_t *out, rlab_err *err);

/* ---- data-free generation (Yue et al. 2021) --------------------------------------------- */

enum { ATTACK_SAMPLE_UNIFORM = 0, ATTACK_SAMPLE_TOP1 = 1 };

typedef struct attack_gen_opts {
    int64_t n_seqs; /* budget in sequences */
    int len;        /* items per sequence (Yue et al.: the victim's max_len) */
    int sample;     /* ATTACK_SAMPLE_*: uniform over the list (Yue), or its first item */
    int batch;      /* sequences generated together (one query batch per step) */
    int keep_lists; /* keep the victim's list of every prefix (distillation targets) */
    uint64_t seed;  /* first items and sampling */
} attack_gen_opts;

/* 100 sequences of 20 items, uniform, batch 64, lists not kept, seed 1. */
attack_gen_opts attack_gen_defaults(void);

/* Synthetic sequences in CSR form: sequence s is items[off[s] .. off[s + 1]). With lists,
 * lists[(off[s] - s + t - 1) * w ...] is the victim's answer to the prefix of length t
 * (1 <= t < length of s): every sequence of length L has L - 1 answered prefixes. */
typedef struct attack_synth {
    int64_t n;
    int64_t *off;   /* [n + 1] */
    int32_t *items; /* [off[n]] */
    int w;          /* width of one list (0 = no lists) */
    int32_t *lists; /* [off[n] - n][w] or NULL */
} attack_synth;

void attack_synth_clear(attack_synth *s);

/* Progress callback: done sequences of total; nonzero return = cancel (RLAB_ECANCELED). */
typedef int (*attack_progress_fn)(void *ud, int64_t done, int64_t total);

/* Generate o->n_seqs sequences through bb. Each starts with a uniformly random item; step t
 * queries the prefix and appends an item drawn from the answer (uniformly, or its first).
 * When the query limit runs out the batch in progress stops at its current length and no
 * further sequence starts (sequences shorter than 2 items are dropped); out->n says how many
 * were made. The same seed and options give the same sequences for the same victim. */
int attack_gen_datafree(attack_bb *bb, const attack_gen_opts *o, attack_progress_fn progress,
                        void *ud, attack_synth *out, rlab_err *err);

/* The sequences as a new dataset named name: the item vocabulary copied from items (same
 * dense indices as the victim's dataset), users "syn<s>", one interaction per item with the
 * position as its time (RLAB_INTER_SYNTH_TS). With lists (s->w > 0) the dataset carries them
 * (rlab_dataset.lists: row j's list answers the prefix ending at row j; a sequence's last row
 * has none, -1), which seqrec's loss=rank distils from. Caller owns the result; NULL with
 * err. */
rlab_dataset *attack_synth_dataset(const attack_synth *s, const char *name, const rlab_vocab *items,
                                   rlab_err *err);

/* ---- the few-shot attack (fewshot.c) ----------------------------------------------------- */

#define ATTACK_GATE_NF                                                                             \
    5 /* gate features: bias, the sampler's mass on the victim's list, its                         \
         max probability, the step t / len, overlap of the two top-10s */

typedef struct attack_fs_opts {
    int use_sampler;  /* 0 = no sampler: synthetic steps follow the victim's list only */
    int use_gate;     /* 0 = no gate: follow the victim with the fixed probability p_fixed */
    double p_fixed;   /* 0.5 */
    int gate_iters;   /* gradient-descent iterations of the gate (300) */
    double gate_lr;   /* its step size (0.5) */
    double gate_hold; /* share of the real sequences the gate learns from (the last ones; the
                         sampler is trained on the others): 0.2 */
    int sampler_list; /* 0: a sampler step draws from the sampler's softmax over every item not
                         in the prefix (the paper's description); 1: from that softmax
                         restricted to the victim's list of the step (renormalised), so every
                         synthetic step stays on the victim's answer and the sampler only
                         chooses which listed item a real user would take */
} attack_fs_opts;

attack_fs_opts attack_fs_defaults(void);

typedef struct attack_fs_stats {
    int64_t queries;       /* black-box queries spent */
    int64_t real_seqs;     /* few-shot sequences queried (with their lists in the output) */
    int64_t synth_seqs;    /* synthetic sequences */
    int64_t gate_examples; /* held-out prefixes the gate was fitted on, and its positives */
    int64_t gate_pos;
    double gate_w[ATTACK_GATE_NF];
    double victim_share; /* share of synthetic steps that followed the victim's list */
    double sampler_mass; /* mean over synthetic steps of the sampler's probability mass on the
                            victim's list (0 without the sampler) */
} attack_fs_stats;

/* Few-shot generation through bb with a query budget of o->n_seqs * (o->len - 1) (what the
 * data-free generator spends on o->n_seqs sequences): first every prefix of the real sequences
 * real[0..n_real) (their last len items), then synthetic sequences that start with the first s
 * items of a random real sequence (s uniform in [1, min(its length, len / 2)]) and grow one
 * item per query: from the victim's list with the gate's probability, else from the sampler's
 * softmax over the items not in the prefix (sampler: any model with n_items items, queried
 * with user -1 and the prefix; NULL when fo->use_sampler is 0). out keeps every list (w =
 * attack_bb_width). The gate is fitted on the last ceil(gate_hold * n_real) real sequences.
 * Seeded (o->seed) and deterministic for a given batch size. */
int attack_gen_fewshot(attack_bb *bb, const attack_gen_opts *o, const attack_fs_opts *fo,
                       const int32_t *const *real, const int32_t *real_len, int64_t n_real,
                       const rlab_model *sampler, attack_progress_fn progress, void *ud,
                       attack_synth *out, attack_fs_stats *st, rlab_err *err);

/* Gate features of one step into f: p [n_items] the sampler's probabilities, list [w] the
 * victim's answer (-1 padding), t the prefix length, len the sequence length. */
void attack_gate_features(const float *p, int32_t n_items, const int32_t *list, int w, int t,
                          int len, double f[ATTACK_GATE_NF]);
/* sigmoid(wt . f) */
double attack_gate_prob(const double wt[ATTACK_GATE_NF], const double f[ATTACK_GATE_NF]);
/* Logistic regression of labels y [n] on features f [n][NF] (f[.][0] = 1, the bias):
 * iters full-batch gradient steps of size lr on the mean log-loss + l2/2 |w|^2 (bias not
 * penalised), from zero weights, into wt. EINVAL for n < 1, iters < 1, lr <= 0. */
int attack_gate_fit(const double *f, const uint8_t *y, int64_t n, int iters, double lr, double l2,
                    double wt[ATTACK_GATE_NF], rlab_err *err);

/* ---- the downstream attack: target-item promotion by data poisoning (promote.c) -------- */

enum { ATTACK_PROMO_SURROGATE = 0, ATTACK_PROMO_RANDOM = 1 };

typedef struct attack_exposure_stats {
    int64_t users;    /* users ranked (those who already have the target are skipped) */
    int64_t in_top10; /* users with the target in their top-10 */
    double hit10;     /* in_top10 / users */
    double mean_rank; /* mean 1-based rank of the target among each user's unseen items */
} attack_exposure_stats;

/* Exposure of item target in model m over the query sequences seqs[0..n) (full ranking, each
 * sequence's items masked). EINVAL for a target outside the catalogue. */
int attack_exposure(const rlab_model *m, const int32_t *const *seqs, const int32_t *lens, int64_t n,
                    int32_t target, attack_exposure_stats *out, rlab_err *err);

/* n_fake injected sequences of len items: a random first item, then the target at every odd
 * position and a filler at every even one: ATTACK_PROMO_SURROGATE picks, among the
 * surrogate's top-cand items for the prefix (prefix and target masked), the one after which
 * the surrogate's margin s(target) - max_{j != target} s(j) is largest; ATTACK_PROMO_RANDOM a
 * uniform item (sur may be NULL). sur is only scored (white box; no victim query). n_items:
 * the catalogue. Seeded. */
int attack_promo_sequences(const rlab_model *sur, int32_t n_items, int32_t target, int n_fake,
                           int len, int cand, int method, uint64_t seed, attack_synth *out,
                           rlab_err *err);

/* ds plus the fake sequences as new users "fake<f>" (timestamps after every real one), item
 * and user indices of ds unchanged. Caller owns the result; NULL with err. */
rlab_dataset *attack_poisoned_dataset(const rlab_dataset *ds, const attack_synth *fake,
                                      const char *name, rlab_err *err);

/* ---- fidelity ----------------------------------------------------------------------------- */

typedef struct attack_fidelity {
    int64_t n_users; /* held-out sequences ranked */
    double agr1, agr10, em10;
    double kl100; /* KL(victim || surrogate) over the victim's top-100, softmax of scores */
} attack_fidelity;

/* Rank the full catalogue with victim and surrogate (white-box, not counted as queries) for
 * each held-out sequence seqs[q] (masking its items), and compare the top lists:
 * Agreement@1, @10, exact-match@10 (core/eval rlab_eval_agreement) and KL over the
 * victim's top-100. Both models must have n_items items. */
int attack_fidelity_eval(const rlab_model *victim, const rlab_model *surrogate,
                         const int32_t *const *seqs, const int32_t *lens, int64_t n,
                         attack_fidelity *out, rlab_err *err);

#endif /* ATTACK_H */
