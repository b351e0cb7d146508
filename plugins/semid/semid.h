/*
 * plugins/semid/semid.h: private header of the semid plugin (semantic IDs). Not installed;
 * the plugin's .c files and its tests (tests/semid) include it.
 *
 *   kmeans.c   k-means (k-means++ seeding, Lloyd), OneRec's balanced k-means (Algorithm 1),
 *              residual k-means over L levels
 *   codes.c    de-duplication digits, per-level statistics, prefix ids
 *   tok.c      the tokenizer model (codes + codebooks/params): scoring, checkpoint, restore,
 *              and the rkmeans / brkmeans kinds on the core loop
 *   rqvae.c    the RQ-VAE kind: encoder MLP -> residual quantiser -> decoder MLP
 *   plugin.c   the descriptor: three model kinds and the commands semid.stats, semid.export
 *
 * A tokenizer maps every item of a dataset to a tuple of L codes in [0, K) plus one
 * de-duplication digit (TIGER), so that the tuples are unique. Its model is a recommender
 * too (see tok.c): items are scored by how many code prefixes they share with the history.
 */
#ifndef RLAB_PLUGIN_SEMID_H
#define RLAB_PLUGIN_SEMID_H

#include "data/content.h"
#include "host/plugin.h"
#include "model/fit.h"
#include "tensor/checkpoint.h"
#include "tensor/nn.h"
#include "tensor/ops.h"
#include "tensor/optim.h"

#define SEMID_MAX_LEVELS 8

/* ---- config (schemas in plugin.c) ------------------------------------------------------ */
typedef struct semid_cfg {
    int levels;        /* L */
    int codes;         /* K per level */
    int iters;         /* k-means iterations (rkmeans, brkmeans, RQ-VAE codebook init) */
    int tok_dim;       /* content vector: categorical buckets */
    int text_dim;      /* content vector: title TF-IDF buckets */
    float text_weight; /* content vector: scale of the text block */
    char cols[128];    /* content vector: columns ("" = every token list and text column) */
    /* RQ-VAE */
    int hidden;   /* MLP hidden width (encoder and decoder) */
    int latent;   /* quantised latent size */
    int batch;    /* items per step */
    double lr;    /* Adam learning rate */
    float beta;   /* commitment weight */
    int restart;  /* dead-code restart at the end of every epoch */
    int balanced; /* private: set by the kind (brkmeans), not a field */
    /* DAS (das.c) */
    int align;           /* SEMID_ALIGN_*: one-stage (joint), two-stage, none */
    float alpha;         /* weight of L_cf */
    float align_beta;    /* weight of L_align */
    float temp;          /* InfoNCE temperature */
    float w_unbiased;    /* L_cf: weight of the unbiased (interest . content) BCE */
    float w_pop;         /* L_cf: weight of the popularity / conformity supervision */
    float w_orth;        /* L_cf: weight of the orthogonality penalty */
    int cf_epochs;       /* two-stage: passes of the CF stage (0 = epochs) */
    int steps;           /* steps per epoch (0 = every training interaction once) */
    char views[16];      /* alignments to use, digits 1-6 */
    char user_cols[128]; /* user features of the demographics block ("" = automatic) */
} semid_cfg;

enum { SEMID_RKMEANS = 0, SEMID_BRKMEANS = 1, SEMID_RQVAE = 2, SEMID_DAS = 3 };
enum { SEMID_ALIGN_JOINT = 0, SEMID_ALIGN_TWO_STAGE = 1, SEMID_ALIGN_NONE = 2 };

/* ---- k-means (kmeans.c) ------------------------------------------------------------------ */

/* k-means++ seeding: K rows of X [N][D] into C [K][D] (the first uniformly, then each with
 * probability proportional to its squared distance to the nearest chosen centre; rows
 * already chosen or at distance 0 are never chosen twice while others remain). N >= 1. */
void semid_kmeans_pp(const float *X, int64_t N, int D, int K, rlab_rng *rng, float *C);

/* Run `iters` iterations from the centres in C [K][D] (updated in place); assign [N] gets
 * each row's cluster. Plain (balanced 0): Lloyd, nearest centre (ties to the lower index);
 * a cluster left empty takes the row farthest from its centre (lowest index on ties).
 * Balanced (1): OneRec's Algorithm 1 with capacity w = ceil(N / K): clusters k = 0..K-1 in
 * turn take the w unassigned rows nearest to their centre (ties to the lower row index),
 * and the centre moves to their mean; the last clusters take what remains (so every
 * cluster holds w rows except the tail: N = 10, K = 4 gives 3, 3, 3, 1). Stops early when
 * an iteration changes no assignment. Returns the iterations run, or -1 on ENOMEM. The
 * final assignment is the one the returned centres were computed from. */
int semid_kmeans_run(const float *X, int64_t N, int D, int K, int iters, int balanced, float *C,
                     int32_t *assign);

/* Residual k-means: level l clusters the residual R_l = X - sum_{j<l} C_j[code_j] with
 * k-means++ seeding (rng) and semid_kmeans_run. C [L][K][D], codes [N][stride] (level l in
 * column l). recon [L] (may be NULL) receives the mean over rows of ||R_{l+1}||^2, the
 * squared error of the reconstruction from levels 0..l. RLAB_ENOMEM, RLAB_ECANCELED (when
 * cancel(ud) says so between levels; cancel may be NULL). */
int semid_rkmeans(const float *X, int64_t N, int D, int L, int K, int iters, int balanced,
                  rlab_rng *rng, float *C, int32_t *codes, int stride, double *recon,
                  int (*cancel)(void *), void *ud, rlab_err *err);

/* ---- codes (codes.c) --------------------------------------------------------------------- */

/* Per level statistics of the code tuples codes [N][stride] (levels 0..L-1). */
typedef struct semid_level_stats {
    int used;           /* distinct codes used at this level */
    double util;        /* used / K */
    double entropy;     /* of the code distribution at this level, in nats */
    double perplexity;  /* exp(entropy) */
    double collision;   /* 1 - distinct prefixes (levels 0..l) / N */
    int64_t max_bucket; /* items of the most crowded prefix (levels 0..l) */
} semid_level_stats;

int semid_stats(const int32_t *codes, int64_t N, int stride, int L, int K, semid_level_stats *out,
                rlab_err *err);

/* Append the de-duplication digit: codes [N][L + 1], column L gets 0 for the first item (in
 * index order) of every distinct tuple of columns 0..L-1, 1 for the second, and so on.
 * Returns the largest digit (0: no collision), or -1 on ENOMEM. */
int32_t semid_dedup(int32_t *codes, int64_t N, int L);

/* Dense ids of the prefixes: pid [N][L], pid[i][l] = index of the tuple codes[i][0..l]
 * among the distinct prefixes of length l + 1 (ids in [0, N)). codes [N][stride]. */
int semid_prefix_ids(const int32_t *codes, int64_t N, int stride, int L, int32_t *pid,
                     rlab_err *err);

/* ---- the tokenizer model (tok.c) -------------------------------------------------------- */

typedef struct semid_tok {
    int kind;           /* SEMID_* */
    int L, K, D;        /* levels, codes per level, content dims */
    int32_t n_items;    /* rows of codes */
    int32_t *codes;     /* [n_items][L + 1]: L codes, then the de-duplication digit */
    int32_t max_dedup;  /* largest digit */
    float *recon;       /* [L] reconstruction error after levels 0..l (content space) */
    int32_t *pid;       /* [n_items][L] prefix ids, for scoring */
    rlab_params *P;     /* rkmeans/brkmeans: "codebooks" [L][K][D]; rqvae: the network */
    int64_t train_info; /* k-means: iterations of the last level; rqvae: epochs */
    /* DAS only: the users' semantic IDs (NULL for item-only tokenizers) */
    int32_t n_ucodes;   /* rows of ucodes (the dataset's users) */
    int32_t *ucodes;    /* [n_ucodes][L + 1] */
    int32_t umax_dedup; /* largest user de-duplication digit */
    int32_t DU;         /* user content dims */
} semid_tok;

extern const rlab_model_vt semid_vt;

/* Wrap a filled tokenizer (owned from now on, also on failure): computes prefix ids. */
rlab_model *semid_tok_wrap(semid_tok *t, int32_t n_users, rlab_err *err);
void semid_tok_free(semid_tok *t);
/* The trained model of a fit state (its `model` hook) that rebuilds only after more steps:
 * *m when *built_at == steps, else build(state) replacing *m; a failed build is logged as
 * "WHO: cannot build the model: ..." through fit's log and leaves *m (maybe NULL). */
rlab_model *semid_cached_model(rlab_model **m, int64_t *built_at, int64_t steps,
                               rlab_model *(*build)(void *state, rlab_err *err), void *state,
                               const rlab_fit *fit, const char *who);
/* The tokenizer of a model made by this plugin, or NULL (not a semid model). */
const semid_tok *semid_tok_of(const rlab_model *m);
/* Finish a tokenizer after its codes [N][L + 1] (levels filled) and recon are set: append
 * the de-duplication digits and report per-level statistics through the fit's log and
 * metric hooks (fit may be NULL). */
int semid_tok_finish(semid_tok *t, const rlab_fit *fit, rlab_err *err);

/* Codes [N][L] (levels only) of content rows X [N][t->D] under the trained tokenizer t: the
 * item encoder (RQ-VAE, DAS) or the content itself (k-means kinds), then level by level the
 * nearest code of the residual (squared L2, ties to the lower index), as training assigns
 * them. What semid.encode and the benchmark run. */
int semid_encode(const semid_tok *t, const float *X, int64_t N, int32_t *codes, rlab_err *err);

/* The content vectors of the fit's dataset under cfg (X [n_items][*D], rlab_free). */
int semid_content(const rlab_fit *fit, const semid_cfg *cfg, float **X, int32_t *D, rlab_err *err);
int semid_cancelled(const rlab_fit *fit);

extern const rlab_fit_ops semid_rkmeans_fit, semid_brkmeans_fit, semid_rqvae_fit, semid_das_fit;
rlab_model *semid_das_restore(rlab_host *host, const rlab_ckpt *ck, const void *cfg, rlab_err *err);
/* The tokenizer kinds' names, indexed by SEMID_* ("rkmeans", ..., "das"). */
extern const char *const semid_kind_names[];

/* semid.ctr (ctr.c) */
int semid_ctr_run(rlab_ctx *ctx, const rlab_args *args);

/* ---- DAS (das.c) ------------------------------------------------------------------------- */

/* User content vectors U [n_users][*DU] (rlab_free): a demographics block (TOKEN user
 * features one-hot over their values, FLOAT features standardised; "" = every TOKEN column
 * of at most 64 values and every FLOAT column; the block L2-normalised, absent when the
 * dataset has no user features) followed by the mean of the content vectors X [n_items][D]
 * of the user's items in hist (L2-normalised; zeros for a user without history). */
int semid_user_content(const rlab_dataset *ds, const char *cols, const rlab_seqs *hist,
                       const float *X, int D, float **U, int32_t *DU, rlab_err *err);

/* The parameter specs of the DAS tokenizer block: the item RQ-VAE (names "item.*", content
 * dims D) then the user RQ-VAE ("user.*", dims DU); 18 tensors. */
int semid_das_specs(const semid_cfg *c, int D, int DU, rlab_param_spec *s);
rlab_model *semid_rkmeans_restore(rlab_host *host, const rlab_ckpt *ck, const void *cfg,
                                  rlab_err *err);
rlab_model *semid_rqvae_restore(rlab_host *host, const rlab_ckpt *ck, const void *cfg,
                                rlab_err *err);
/* The network's parameter specs (rqvae.c): 9 tensors. */
int semid_rqvae_specs(const semid_cfg *c, int D, rlab_param_spec *s);

/* Checkpoint helpers (tok.c). */
int semid_ckpt_int(const rlab_ckpt *ck, const char *key, int64_t lo, int64_t hi, int64_t *out,
                   rlab_err *err);
rlab_model *semid_restore_common(const rlab_ckpt *ck, const semid_cfg *cfg, int kind,
                                 const rlab_param_spec *specs, int nspecs, rlab_err *err);

#endif /* RLAB_PLUGIN_SEMID_H */
