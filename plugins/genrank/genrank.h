/*
 * plugins/genrank: OneRec (Kuaishou 2025, arXiv 2502.18965; /work/shared/papers/models.md
 * section 1) at workbench scale. Internal API shared by the plugin, its tests and its
 * benchmark (the static library genrank_impl); the plugin ABI side is plugin.c.
 *
 * Items are semantic-ID tuples read from a semid tokenizer model (checkpoint tensor
 * semid.codes, I32 [N, L + 1]: L codes then the de-duplication digit). genrank treats all
 * Lt = L + 1 columns as token levels, so every tuple names exactly one item.
 *
 *   encoder   X = sum_l Emb_l[c_l(h_t)] + P[t] over the last `maxlen` history items (one
 *             embedding table per level; one position per item), pre-LN blocks of fully
 *             visible self-attention + ReLU FFN, final LN                        -> Enc [B, n, d]
 *   decoder   BOS, then the m * Lt tokens of the next m items (token j has level j % Lt and
 *             its level's table) + positions; pre-LN blocks: causal self-attention,
 *             cross-attention to Enc, sparse MoE FFN (E experts, top-k, Switch load-balancing
 *             loss); final LN                                                     -> H [B, S, d]
 *   heads     the logits of token j use level (j % Lt)'s output table [K_l, d] + bias
 *   loss      L_NTP = mean over real target tokens of -log p(token) + aux * L_balance
 *
 * Generation is beam search over a prefix trie of the valid tuples (gen.c). The reward model
 * (reward.c) scores a session for a user; IPA (plugin.c genrank.align) is DPO against the
 * previous iterate on best/worst beam sessions.
 *
 * Ownership: every *_new has a matching *_free (NULL ok). Errors: int status + rlab_err.
 * Threads: a trained net is read-only; genrank_beam / genrank_reward_score may run
 * concurrently (each call makes its own tape).
 */
#ifndef GENRANK_H
#define GENRANK_H

#include "base/base.h"
#include "data/view.h"
#include "model/fit.h"
#include "model/model.h"
#include "tensor/optim.h"
#include "tensor/tensor.h"

#include <stddef.h>
#include <stdint.h>

#define GENRANK_MAX_LEVELS 8
#define GENRANK_MAX_LAYERS 6
#define GENRANK_MAX_EXPERTS 64

/* Hyperparameters: the config schema genrank_fields (net.c). Where the paper is silent the
 * default is ours (README.md lists each). */
typedef struct genrank_cfg {
    char semid[64]; /* the tokenizer model (rkmeans / brkmeans / rqvae); "" = inline */
    int levels;     /* inline tokenizer: residual k-means levels (+ a dedup digit) */
    int codes;      /* inline tokenizer: centres per level */
    int session;    /* m: items generated per request (1 = point-wise, TIGER-like) */
    int dim;        /* d */
    int heads;      /* attention heads */
    int enc_layers; /* encoder blocks */
    int dec_layers; /* decoder blocks */
    int ffn;        /* hidden width of the encoder FFN and of each expert */
    int experts;    /* N_MoE */
    int topk;       /* experts per token */
    float aux;      /* weight of the load-balancing loss */
    int maxlen;     /* history items the encoder sees */
    float dropout;  /* embedding / attention / FFN dropout while training */
    double lr;      /* Adam */
    int batch;      /* training samples per step */
    int samples;    /* training samples per user per epoch (0 = every position) */
    int beam;       /* beam width of recommend / eval */
    /* reward model */
    int r_dim;    /* item vectors of R */
    int r_epochs; /* training epochs of R */
    float like_w; /* reward = like_w * like + (1 - like_w) * watch (per item, mean) */
    /* iterative preference alignment */
    float beta;       /* DPO temperature */
    float lambda;     /* L = L_NTP + lambda * L_DPO */
    float ipa_frac;   /* fraction of users whose beams give pairs per iteration */
    int ipa_beam;     /* N: sessions beam-searched per user */
    int ipa_epochs;   /* passes over the pairs per iteration */
    int pairs;        /* DPO pairs per step */
    double ipa_lr;    /* IPA steps' Adam learning rate (0 = lr) */
    float dpo_smooth; /* conservative DPO: label smoothing epsilon (0 = plain DPO) */
    int ipa_loser;    /* GENRANK_LOSER_*: how the pair's loser is chosen */
    int ipa_dropout;  /* 1: the IPA steps' next-token term runs with the model's dropout */
    int ipa_warmup;   /* IPA steps of linear learning-rate warm-up (fresh Adam; 0 = none) */
    int ipa_adam;     /* GENRANK_ADAM_*: the IPA steps' optimiser: fresh (new moments, step
                         0) or keep (continue the training's Adam: moments and step count) */
    float ipa_ntp;    /* weight of the next-token term of the IPA steps (0 = DPO only) */
    /* the validation guard (session 6): after an iteration's update, its session recall@10 on
     * the validation items (never test) against the previous iterate's; a drop beyond the
     * tolerance rejects the update and the iteration is retried with lambda halved */
    int ipa_guard;        /* GENRANK_GUARD_*: off, fixed (ipa_guard_tol), ci (the paired
                             bootstrap interval's half-width on validation), se
                             (ipa_guard_z standard errors of the paired difference) */
    float ipa_guard_tol;  /* fixed: the largest accepted drop */
    int ipa_guard_tries;  /* tries per iteration (the first + retries); none passes: the
                             previous iterate is kept */
    int ipa_guard_lr;     /* 1: a retry also halves the IPA learning rate */
    int ipa_guard_lambda; /* 1: a retry halves lambda (0: lambda kept, e.g. lr halved only) */
    float ipa_guard_z;    /* se: the tolerance in standard errors of the paired difference */
    int ipa_guard_users;  /* users the guard measures, evenly spaced (0 = every user with a
                             validation item) */
    int ipa_guard_window; /* held-out items per user: the validation item and the last
                             window - 1 training items (the input stops before them) */
    float ipa_margin;     /* IPA: a pair needs a reward gap of at least this (0 = any > 0) */
    /* not fields */
    uint64_t seed;
} genrank_cfg;

enum { GENRANK_LOSER_WORST, GENRANK_LOSER_FAR };
extern const char *const genrank_loser_choices[];
enum { GENRANK_ADAM_FRESH, GENRANK_ADAM_KEEP };
extern const char *const genrank_adam_choices[];
enum { GENRANK_GUARD_OFF, GENRANK_GUARD_FIXED, GENRANK_GUARD_CI, GENRANK_GUARD_SE };
extern const char *const genrank_guard_choices[];
extern const rlab_field genrank_fields[];
extern const rlab_kv genrank_onerec_defaults[], genrank_tiger_defaults[];

/* ---- the item codes and their trie ------------------------------------------------------ */
typedef struct genrank_codes {
    int32_t n_items;
    int Lt;                    /* levels (codes + dedup digit) */
    int K[GENRANK_MAX_LEVELS]; /* vocabulary of each level (max code + 1) */
    int32_t *codes;            /* [n_items][Lt] */
    /* trie: level l has nn[l] nodes, child[l][node * K[l] + c] = node of level l + 1 (or,
     * at the last level, the item), -1 = no such tuple */
    int32_t nn[GENRANK_MAX_LEVELS];
    int32_t *child[GENRANK_MAX_LEVELS];
} genrank_codes;

/* Copy codes [n][Lt] and build the trie. EINVAL for a negative code or duplicate tuples. */
int genrank_codes_init(genrank_codes *c, const int32_t *codes, int32_t n, int Lt, rlab_err *err);
void genrank_codes_clear(genrank_codes *c);
/* The item of a full tuple (-1 when no item has it). */
int32_t genrank_codes_item(const genrank_codes *c, const int32_t *tuple);

/* The inline tokenizer (tok.c): residual k-means of the items' content vectors, L levels of
 * K centres, then a de-duplication digit: *codes [n_items][L + 1] (rlab_free), *Lt = L + 1. */
int genrank_inline_codes(const rlab_dataset *ds, int32_t n_items, int L, int K, uint64_t seed,
                         int32_t **codes, int *Lt, rlab_err *err);

/* ---- the network ---------------------------------------------------------------------------- */
typedef struct genrank_blk {
    int ln1g, ln1b, wq, wk, wv, wo, ln2g, ln2b;
    int cq, ck, cv, co, ln3g, ln3b; /* decoder: cross-attention + LN before MoE */
    int f1, fb1, f2, fb2;           /* encoder FFN */
    int gate, e1, eb1, e2, eb2;     /* decoder MoE */
} genrank_blk;

typedef struct genrank_net {
    genrank_cfg cfg;
    genrank_codes codes;
    int S; /* decoder tokens after BOS = session * Lt */
    rlab_params *P;
    rlab_tensor *frozen; /* grad-free views of P (inference) */
    int enc_emb[GENRANK_MAX_LEVELS], enc_pos, enc_lnf_g, enc_lnf_b;
    int dec_emb[GENRANK_MAX_LEVELS], dec_bos, dec_pos, dec_lnf_g, dec_lnf_b;
    int head[GENRANK_MAX_LEVELS], head_b[GENRANK_MAX_LEVELS];
    genrank_blk enc[GENRANK_MAX_LAYERS], dec[GENRANK_MAX_LAYERS];
    int32_t *pop; /* [n_items] training counts (ranking ties beyond the beam); may be NULL */
    int ipa_iter; /* IPA iterations applied */
    /* Adam's state after the last update (training's last step, or the last IPA step of the
     * iterate): moments parallel to P (P->count floats each) and the step count; NULL when
     * unknown (a checkpoint without it) */
    float *adam_m, *adam_v;
    int64_t adam_t;
} genrank_net;

int genrank_cfg_check(const genrank_cfg *c, rlab_err *err);
/* A new network over the given codes (copied) with parameters from cfg->seed. */
genrank_net *genrank_net_new(const genrank_cfg *cfg, const int32_t *codes, int32_t n_items, int Lt,
                             rlab_err *err);
genrank_net *genrank_net_clone(const genrank_net *src, rlab_err *err);
/* net's own copy of an Adam state (moments m, v of net->P->count floats; t steps), replacing
 * any it had: ipa_adam=keep continues it. ENOMEM leaves the net to be freed. */
int genrank_net_set_adam(genrank_net *net, const float *m, const float *v, int64_t t,
                         rlab_err *err);
void genrank_net_free(genrank_net *net);
/* Keep opt's state (an Adam over net->P) in net (ENOMEM). */
int genrank_net_keep_adam(genrank_net *net, rlab_opt *opt, rlab_err *err);
/* Give opt (a new Adam over net->P) net's kept state; EINVAL when net has none. */
int genrank_net_resume_adam(const genrank_net *net, rlab_opt *opt, rlab_err *err);

/* Encoder over left-padded history windows hist [B][maxlen] (-1 = padding): Enc [B, maxlen, d]
 * and *valid_out (on the tape) [B * maxlen]. W = P->t (training) or frozen. */
rlab_tensor *genrank_encode(const genrank_net *net, rlab_tape *t, rlab_tensor *W,
                            const int32_t *hist, int B, const uint8_t **valid_out);
/* Decoder: inputs tok [B][T] (T <= S; token p is the input at position p: p = 0 BOS, else
 * the target token p - 1; -1 = padding), Enc/evalid from genrank_encode with B rows.
 * Returns H [B, T, d]. aux (may be NULL) receives the summed load-balancing losses; load
 * (may be NULL) [experts] accumulates routed assignments of every decoder layer. */
rlab_tensor *genrank_decode(const genrank_net *net, rlab_tape *t, rlab_tensor *W,
                            const int32_t *tok, int B, int T, rlab_tensor *enc,
                            const uint8_t *evalid, rlab_tensor **aux, double *load);
/* The same with the cross-attention keys and values given (kv[2 i], kv[2 i + 1] = Enc Wk,
 * Enc Wv of decoder layer i, [B, n, d]; enc unused): inference reuses them across steps. */
rlab_tensor *genrank_decode_kv(const genrank_net *net, rlab_tape *t, rlab_tensor *W,
                               const int32_t *tok, int B, int T, rlab_tensor *enc,
                               rlab_tensor *const *kv, const uint8_t *evalid, rlab_tensor **aux,
                               double *load);
/* One decoder position p for B beams with a self-attention KV cache (inference: no dropout,
 * no aux loss, W = frozen). tok [B]: the input token at position p (p = 0: BOS, tok unused;
 * else target token p - 1, level (p - 1) % Lt). kc[i], vc[i] (layer i, caller-owned)
 * [B][p + 1][d]: rows 0..p-1 hold the keys / values of the earlier positions of each beam;
 * this call writes row p. ckv: the cross-attention keys / values [B, n, d] as for
 * genrank_decode_kv. Returns H [B, 1, d], the full decoder's last row up to float rounding.
 * load (may be NULL) [experts] accumulates the routed assignments of this position only. */
rlab_tensor *genrank_decode_step(const genrank_net *net, rlab_tape *t, rlab_tensor *W,
                                 const int32_t *tok, int B, int p, float *const *kc,
                                 float *const *vc, rlab_tensor *const *ckv, const uint8_t *evalid,
                                 double *load);
/* Left-padded window of the last maxlen items of hist[0..n) into w[maxlen] (-1 = padding). */
void genrank_window(const genrank_net *net, const int32_t *hist, int64_t n, int32_t *w);
/* Decoder input tokens of sessions items [B][m] (-1 = none) into tok [B][S] (BOS slot 0 is
 * -1 and means BOS) and targets tgt [B][S] (-1 = ignore). */
void genrank_session_tokens(const genrank_net *net, const int32_t *items, int B, int32_t *tok,
                            int32_t *tgt);
/* Arena bytes of a training tape for B samples (pairs: DPO sequences in the same step). */
size_t genrank_arena_bytes(const genrank_cfg *c, int n_items, int B);

/* Per-sequence log-probabilities sum_j log p(tgt[b][j]) of the sequences on a tape with
 * gradient (W = P->t) or without (frozen): returns a [B] tensor. */
rlab_tensor *genrank_seq_logp(const genrank_net *net, rlab_tape *t, rlab_tensor *W,
                              const int32_t *hist, const int32_t *items, int B);
/* NTP loss of a batch (mean over real target tokens) + aux * balance; *ntp gets the NTP
 * part. */
rlab_tensor *genrank_ntp_loss(const genrank_net *net, rlab_tape *t, const int32_t *hist,
                              const int32_t *items, int B, double *ntp);

/* ---- generation (gen.c) ------------------------------------------------------------------- */
typedef struct genrank_beam_out {
    int W, m;        /* beams returned, items per session */
    int32_t *items;  /* [W][m] (-1 = illegal tuple when unconstrained) */
    int32_t *tokens; /* [W][m * Lt] */
    float *logp;     /* [W] */
    float *first;    /* [K_0] log-softmax of the first step (level-0 codes); NULL unless asked */
    double ent[GENRANK_MAX_LEVELS]; /* mean entropy (nats) of the full softmax per level */
    int64_t ent_n[GENRANK_MAX_LEVELS];
    double load[GENRANK_MAX_EXPERTS];
    int64_t legal, generated; /* tuples that are real items / tuples generated */
} genrank_beam_out;

/* Beam search for one history: W beams of m items (m <= session). constrained: tuples only
 * from the trie, no item of mask (n_mask items, may be NULL) and no repeat within a session.
 * Returns beams best first (a beam that cannot continue is dropped: out->W may be < W). */
int genrank_beam(const genrank_net *net, const int32_t *hist, int64_t n_hist, const int32_t *mask,
                 int64_t n_mask, int W, int m, int constrained, genrank_beam_out *out,
                 rlab_err *err);
/* genrank_beam with flags: GENRANK_BEAM_NO_CACHE re-runs the full decoder at every step (no
 * self-attention KV cache; the reference of the cache's test and benchmark). The beams and
 * log-probabilities agree up to float rounding; the expert load differs (without the cache
 * every earlier position is routed again at each step). */
#define GENRANK_BEAM_NO_CACHE 1u
/* also return the first step's level-0 log-probabilities (out->first) */
#define GENRANK_BEAM_FIRST 2u
int genrank_beam_ex(const genrank_net *net, const int32_t *hist, int64_t n_hist,
                    const int32_t *mask, int64_t n_mask, int W, int m, int constrained,
                    unsigned flags, genrank_beam_out *out, rlab_err *err);
void genrank_beam_out_clear(genrank_beam_out *o);

/* The ranking of the model (score_all): the beam over the first item (width cfg.beam) first,
 * in beam order; every other item after, by the log-probability of its first-level code at
 * the first step, then training popularity. scores [n_items]. */
int genrank_rank_scores(const genrank_net *net, const int32_t *hist, int64_t n_hist, float *scores,
                        rlab_err *err);

/* ---- the reward model (reward.c) ---------------------------------------------------------- */
typedef struct genrank_reward {
    int d, m, n_items, maxlen;
    rlab_params *P;
    rlab_tensor *frozen;
    int emb, ibias, wq, wk, wv, t1[2], tb1[2], t2[2], tb2[2];
    float like_w;
    double auc_like, bce; /* held-out measures of the last training */
} genrank_reward;

genrank_reward *genrank_reward_new(int n_items, int d, int m, int maxlen, float like_w,
                                   uint64_t seed, rlab_err *err);
void genrank_reward_free(genrank_reward *r);
/* Train on the view's train sequences with the ratings of ds (rating >= 4 = like,
 * rating / 5 = watch; half of the session items replaced by random unseen items with
 * labels 0; without ratings every interaction counts as rating 5). truth (may be NULL): the
 * synthetic world of ds; the second tower then learns the user's true satisfaction of every
 * session item (replacements included): its affinity divided by the user's largest affinity
 * over the catalogue, clipped to [0, 1] (a soft BCE label) instead of rating / 5. */
typedef struct rlab_world rlab_world;
int genrank_reward_train(genrank_reward *r, const rlab_view *v, const rlab_dataset *ds,
                         const rlab_world *truth, int epochs, uint64_t seed, rlab_err *err);
/* Rewards of B sessions items [B][m] (-1 = none) for histories hist[B][..] given as windows
 * [B][maxlen] (-1 = padding): out [B] (and per tower like/watch [B] when not NULL). */
int genrank_reward_score(const genrank_reward *r, const int32_t *win, const int32_t *items, int B,
                         float *out, float *like, float *watch, rlab_err *err);
void genrank_reward_window(const genrank_reward *r, const int32_t *hist, int64_t n, int32_t *w);

/* ---- models (model.c) ---------------------------------------------------------------------- */
typedef struct genrank_model {
    genrank_net *net;
    genrank_reward *reward; /* may be NULL */
} genrank_model;

rlab_model *genrank_model_wrap(genrank_net *net, genrank_reward *r, const char *name,
                               const char *kind, rlab_err *err);
genrank_model *genrank_model_of(const rlab_model *m); /* NULL when not a genrank model */
rlab_model *genrank_restore(rlab_host *host, const rlab_ckpt *ck, const void *cfg, rlab_err *err);

/* ---- training (train.c) -------------------------------------------------------------------- */
extern const rlab_fit_ops genrank_fit_ops;

/* Training samples of a view: (user, position) pairs of its train sequences. */
typedef struct genrank_batcher {
    const rlab_seqs *s;
    int maxlen, m, B, samples;
    int64_t n, next;
    int32_t *su, *st; /* [n] */
    rlab_rng rng;
    int32_t *hist, *items; /* [B][maxlen], [B][m] */
} genrank_batcher;
int genrank_batcher_init(genrank_batcher *b, const rlab_seqs *s, int maxlen, int m, int B,
                         int samples, uint64_t seed, rlab_err *err);
void genrank_batcher_epoch(genrank_batcher *b);
int genrank_batcher_next(genrank_batcher *b); /* rows filled, 0 at the end of the epoch */
void genrank_batcher_clear(genrank_batcher *b);

/* Session measures of a model over users (valid targets: history = train, truth = the
 * user's next min(m, available) items of valid + test); users with none are skipped. */
typedef struct genrank_measures {
    int64_t users;
    double recall[3], ndcg[3]; /* at 5, 10, 20, of the beam's items (best session first) */
    double first_recall10, first_ndcg10; /* first item of the best session vs the next item */
    double reward_mean, reward_max;      /* over the beam (when a reward model is given) */
    double ent[GENRANK_MAX_LEVELS];
    double load[GENRANK_MAX_EXPERTS];
    double legality;            /* unconstrained beam: share of generated tuples that are items */
    double true_mean, true_max; /* the demo world's true satisfaction (mean over the session's
                                   items of the user's true affinity) over the beam; NAN
                                   without a world */
    /* per measured user (for confidence intervals and paired differences; the same users, in
     * the same order, for every model of the same view and max_users): user index and the
     * GENRANK_PU values; free with genrank_measures_clear */
    int32_t *pu_user;
    double *pu; /* [users][GENRANK_PU] */
} genrank_measures;
/* the per-user columns of genrank_measures.pu (reward / true: NAN without R / world) */
enum {
    GENRANK_PU_RECALL10,
    GENRANK_PU_NDCG10,
    GENRANK_PU_FIRST_R10,
    GENRANK_PU_REWARD_MEAN,
    GENRANK_PU_TRUE_MEAN,
    GENRANK_PU_TEST_R10,  /* the session list's recall@10 of the test item alone */
    GENRANK_PU_VALID_R10, /* ... of the validation item(s) alone (what the IPA guard reads) */
    GENRANK_PU
};
void genrank_measures_clear(genrank_measures *ms);
/* out = {mean, lo, hi}: the mean over n users of column col of a ([n][stride]), minus b's
 * (paired by row) when b is given, and its 95% percentile bootstrap interval (2000 resamples
 * of the users, a fixed seed per column); NAN when a value is NAN or n = 0. RLAB_ENOMEM. */
int genrank_boot_ci(const double *a, const double *b, int64_t n, int stride, int col,
                    double out[3]);
/* world (may be NULL): the synthetic world the view's dataset was generated from. */
int genrank_measure(const genrank_net *net, const genrank_reward *r, const rlab_world *world,
                    const rlab_view *v, int max_users, int W, genrank_measures *out,
                    int (*cancel)(void *), void *ud, rlab_err *err);

/* The IPA guard's measure: session recall@10 of the constrained beam's list (as
 * genrank_measure: the best session then the other beams' new items) against held-out items
 * of each user: the VALIDATION item(s) (up to m) and, with window w > 1, the last w - 1 items
 * of the train part before them, the input then stopping before those (at least one input
 * item is kept). The test items are never read. For the users genrank_measure(max_users)
 * measures (the same users, in the same order; max_users 0 = every user with a validation
 * item). pu [users] (rlab_free) and *n_users; *mean. EINVAL when no user has a validation
 * item. */
int genrank_valid_recall(const genrank_net *net, const rlab_view *v, int max_users, int window,
                         int W, double **pu, int64_t *n_users, double *mean, int (*cancel)(void *),
                         void *ud, rlab_err *err);

#endif /* GENRANK_H */
