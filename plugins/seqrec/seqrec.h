/*
 * plugins/seqrec: SASRec (Kang & McAuley 2018) and MQSA-TED (Zhu et al., WSDM 2024) on the
 * reclab tensor core. Internal API shared by the plugin, its tests and its benchmark (the
 * static library seqrec_impl); the plugin ABI side is plugin.c.
 *
 * The network (net.c) is one code path for both models, following the official MQSA-TED
 * TensorFlow code (zhuty16/MQSA-TED, MQSA_TED.py; /work/shared/papers/models.md section 3):
 *
 *   X0 = mask * dropout(E[seq] * sqrt(d) + P[pos])            E [N+1, d], row N = padding = 0
 *   per branch (short: query X; long: query = causal mean of the last L rows of X):
 *     per block:  Xq = LN(query(X)); A = Attn(Xq Wq, X Wk, X Wv) + Xq   (K, V from raw X)
 *                 O = LN(A); X = mask * (O + drop(relu(O W1 + b1) W2 + b2 with dropout))
 *     H = LN_final(X)
 *   logits = alpha * H_s E^T + (1 - alpha) * H_l E^T = (alpha H_s + (1 - alpha) H_l) E^T
 *
 * SASRec is the short branch alone (kang205/SASRec has exactly this pre-LN block: Q from
 * LN(X), K and V from X, residual from LN(X), final LN); ln=post gives a post-LN variant.
 * Losses: full softmax cross-entropy at every non-padding position (MQSA-TED, and SASRec with
 * loss=ce) or BCE with one sampled negative per position (SASRec's original loss), plus for
 * MQSA-TED the TED distillation and L2 on all parameters (tf.nn.l2_loss style).
 *
 * Ownership: every *_new has a matching *_free (NULL ok). Errors: int status + rlab_err.
 * Threads: a seqrec_net is read-only once trained; seqrec_score_* may run concurrently (each
 * call makes its own tape). Training is single-threaded at the API level (BLAS/OpenMP inside).
 */
#ifndef SEQREC_H
#define SEQREC_H

#include "base/base.h"
#include "data/split.h"
#include "data/table.h"
#include "eval/eval.h"
#include "model/fit.h"
#include "tensor/optim.h"
#include "tensor/tensor.h"

#include <stddef.h>
#include <stdint.h>

enum { SEQREC_SASREC = 0, SEQREC_MQSA = 1 };
enum { SEQREC_LOSS_CE = 0, SEQREC_LOSS_BCE = 1, SEQREC_LOSS_RANK = 2 };
enum { SEQREC_LN_PRE = 0, SEQREC_LN_POST = 1 };
enum { SEQREC_BR_BOTH = 0, SEQREC_BR_SHORT = 1, SEQREC_BR_LONG = 2 };
enum { SEQREC_INIT_NORMAL = 0, SEQREC_INIT_XAVIER = 1 };

typedef struct seqrec_stats seqrec_stats;

/* The hyperparameters. The fields of seqrec_fields (net.c) are the model's config schema;
 * model, seed and epochs are set from the kind and the training loop's settings. */
typedef struct seqrec_config {
    int model;       /* SEQREC_SASREC / SEQREC_MQSA */
    int dim;         /* d */
    int blocks;      /* attention blocks per branch */
    int heads;       /* attention heads (dim % heads == 0) */
    int maxlen;      /* T: positions (learned positional table [T, d]) */
    float dropout;   /* embedding, attention-weight and FFN dropout */
    float lr;        /* Adam learning rate */
    float l2;        /* l2 * sum ||theta||^2 / 2 over ALL parameters (0 = off) */
    int loss;        /* SEQREC_LOSS_CE / _BCE */
    int ln;          /* SEQREC_LN_PRE (original) / _POST */
    float ln_eps;    /* LN epsilon on the variance: 1e-24 (MQSA-TED code), 1e-8 (SASRec code) */
    int L;           /* L-query window (long branch) */
    float alpha;     /* logit mixing weight of the short branch */
    float lambda_kd; /* TED weight */
    float tau;       /* TED temperature (teacher and student) */
    int ted;         /* 1 = TED on */
    int branches;    /* SEQREC_BR_* */
    int pad_logit;   /* 1: the CE softmax includes the padding column (logit 0), as the
                        MQSA-TED code does (its tied table keeps the zero pad row) */
    int init;        /* item/pos embedding init: N(0, 0.01) (MQSA-TED) or Xavier (SASRec) */
    int batch;
    int chunk; /* rows per softmax chunk (CE and TED); 0 = 512 */
    /* loss=rank (ranking distillation from teacher lists attached to the dataset, rlab_dataset
     * .lists; Yue et al. 2021): per position with list c_1..c_w, mean over adjacent pairs of
     * max(0, m - (s(c_j) - s(c_j+1))) + mean over j of max(0, m - (s(c_j) - s(n_j))), n_j a
     * uniform item outside the list; plus `repair` x the bidirectional repair loss (below). */
    float rank_margin; /* m (Yue et al.: 0.5) */
    float repair;      /* weight of the repair loss (0 = off) */
    int repair_k;      /* K of the repair loss */
    char semid[64];    /* semantic-ID tokenizer whose code embeddings are added to the item
                          embeddings ("" = none; see seqrec_item_table) */
    /* not fields: set from the kind and the training loop's settings (model/fit.h) */
    int sid_levels, sid_codes; /* semid: levels L and codes per level K of the tokenizer */
    int epochs;
    uint64_t seed;
    int threads;         /* 0 = leave as is */
    int verbose;         /* > 1: print the profile of every epoch to stderr */
    seqrec_stats *stats; /* not a field: filled by training when set (benchmarks) */
} seqrec_config;

/* The config schema and the two kinds' default overrides (net.c). */
extern const rlab_field seqrec_fields[];
extern const rlab_kv seqrec_mqsa_defaults[], seqrec_sasrec_defaults[];

/* Defaults: MQSA-TED = the official main.py (d 64, lr 1e-3, l2 1e-4, batch 256, 200 epochs,
 * seed 2023, maxlen 50, dropout 0.5, 1 block, 1 head, L 3, alpha 0.5, lambda 0.1, tau 0.1);
 * SASRec = kang205's Beauty settings with d 64 and the CE loss (2 blocks, 1 head, batch 128,
 * dropout 0.5, lr 1e-3, l2 0, maxlen 50, LN eps 1e-8); set loss=bce for the original loss. */
seqrec_config seqrec_config_defaults(int model);
/* "sasrec d=64 b=2 h=1 T=50 ce pre ..." one line. */
void seqrec_config_str(const seqrec_config *c, char *buf, size_t size);
/* EINVAL with a message for an inconsistent config. */
int seqrec_config_check(const seqrec_config *c, rlab_err *err);

/* ---- data: leave-one-out split and derived arrays ------------------------------------- */
typedef struct seqrec_data {
    int32_t n_users, n_items;
    rlab_seqs train;    /* per-user training items, time order */
    rlab_seqs trunc;    /* the last maxlen training items (training pairs, TED counts) */
    rlab_seqs trainval; /* train + the validation item (test input and test history mask) */
    rlab_seqs all;      /* train + valid + test (recommendation input) */
    int64_t *valid_off; /* [n_users + 1] CSR targets */
    int32_t *valid_items;
    int64_t *test_off;
    int32_t *test_items;
    /* TED teacher: directed transition counts T[i, j] (j directly follows i in trunc) */
    int64_t *tr_off; /* [n_items + 1] */
    int32_t *tr_col;
    float *tr_cnt;
    float *tr_max; /* [n_items] max_j T[i, j] (0 = no transitions) */
    /* loss=rank: the teacher list of the prefix ending at train item k (CSR index into
     * train.items) is lists[k * lw .. + lw) (-1 padding); lw 0 = none. */
    int lw;
    int32_t *lists;
} seqrec_data;

/* Build everything above from a data view (model/fit.h; train, targets and histories of its
 * split). maxlen cuts trunc. */
int seqrec_data_from_view(const rlab_view *v, int maxlen, seqrec_data *out, rlab_err *err);
/* loss=rank: line the dataset's interaction lists (ds->lists, w > 0) up with d->train (each
 * user's rows in time order; the train items must be those rows' items, i.e. train is a
 * time-ordered prefix of every user's rows: split=none or leave-one-out). EINVAL with a
 * message when ds has no lists or they do not line up. */
int seqrec_data_lists(const rlab_dataset *ds, seqrec_data *d, rlab_err *err);
/* The same on ds's leave-one-out view. */
int seqrec_data_build(const rlab_dataset *ds, int maxlen, seqrec_data *out, rlab_err *err);
void seqrec_data_clear(seqrec_data *d);
/* Dense TED teacher rows for head items ids[0..n) into p [n, n_items]:
 * p = softmax((T[i, :] / max_j T[i, j]) / tau); a row without transitions is uniform. */
void seqrec_teacher_rows(const seqrec_data *d, const int32_t *ids, int64_t n, float tau, float *p);
/* The same teacher in sparse form (what training uses): row i = base[i] [n_items] everywhere
 * plus delta[k] at column tr_col[k] for k in [tr_off[i], tr_off[i + 1]) (delta [tr_off[N]]). */
void seqrec_teacher_sparse(const seqrec_data *d, float tau, float *base, float *delta);

/* ---- the network ------------------------------------------------------------------------ */
typedef struct seqrec_ln {
    int g, b; /* parameter indices */
} seqrec_ln;
typedef struct seqrec_lin {
    int w, b;
} seqrec_lin;
typedef struct seqrec_block {
    seqrec_ln ln_q, ln_a;
    seqrec_lin wq, wk, wv, f1, f2;
} seqrec_block;
typedef struct seqrec_branch {
    int on;
    seqrec_block blk[8];
    seqrec_ln ln_f;
} seqrec_branch;

typedef struct seqrec_net {
    seqrec_config cfg;
    int32_t n_items; /* N real items; id N is padding */
    rlab_params *P;
    rlab_tensor *frozen; /* [P->n] grad-free views of P (inference without grad buffers) */
    int E, pos;          /* parameter indices */
    int sid;             /* parameter index of sid_emb [L * K, d], or -1 (no semid) */
    int32_t *sid_ids;    /* [(n_items + 1) * L] rows of sid_emb of each item's codes (l K +
                            code at level l); -1 on the padding row */
    seqrec_branch br[2]; /* 0 short, 1 long */
} seqrec_net;

#define SEQREC_MAX_BLOCKS 8

/* A new network with initialised parameters (rng seeded from cfg->seed). */
seqrec_net *seqrec_net_new(const seqrec_config *cfg, int32_t n_items, rlab_err *err);
void seqrec_net_free(seqrec_net *net);

/* Forward. ids/valid/pos_ids [B * Tb] (left-padded windows, pad = n_items, pos_ids = absolute
 * positions in [0, maxlen)); W = net->P->t when training, net->frozen for inference. Returns
 * the mixed hidden states of the real positions only, H [n, d] in row-major position order
 * (n = number of valid entries), and *padix_out [B * Tb] (on the tape) = the row of H of each
 * position or -1. Poison after a tape error (EINVAL when no position is real). */
rlab_tensor *seqrec_forward(const seqrec_net *net, rlab_tape *t, rlab_tensor *W, const int32_t *ids,
                            const uint8_t *valid, const int32_t *pos_ids, int B, int Tb,
                            const int32_t **padix_out);

/* The item table the network uses, [N + 1, d] (row N = padding): W[E] itself, or with
 * semid (cfg.sid_levels > 0) E + sum_l sid_emb[l K + code_l(i)] built on the tape
 * (gradients flow to both tables). */
rlab_tensor *seqrec_item_table(const seqrec_net *net, rlab_tape *t, rlab_tensor *W);
/* seqrec_forward with the item table Etab given (from seqrec_item_table on the same tape). */
rlab_tensor *seqrec_forward_tab(const seqrec_net *net, rlab_tape *t, rlab_tensor *W,
                                rlab_tensor *Etab, const int32_t *ids, const uint8_t *valid,
                                const int32_t *pos_ids, int B, int Tb, const int32_t **padix_out);
/* Set the item codes of a semid network: codes [n_items][stride], levels 0..L-1 used
 * (L = cfg.sid_levels; each code in [0, cfg.sid_codes), else EINVAL). */
int seqrec_net_set_sid(seqrec_net *net, const int32_t *codes, int stride, rlab_err *err);

/* Arena bytes a tape needs for a batch of B x T (training = with gradients). */
size_t seqrec_arena_bytes(const seqrec_config *c, int32_t n_items, int B, int T, int training);

/* Inference on left-padded windows ids [B][maxlen] (pad = n_items): scores [B][n_items] of the
 * real items (may be NULL) and the user representation repr [B][d] (the mixed hidden state at
 * the last position; may be NULL). Thread-safe. */
int seqrec_infer(const seqrec_net *net, const int32_t *ids, int B, float *scores, float *repr,
                 rlab_err *err);
/* The same with a caller-owned tape (sized by seqrec_arena_bytes(cfg, N, min(B, 512), maxlen,
 * 0)); tape NULL = make one for the call. */
int seqrec_infer_tape(const seqrec_net *net, rlab_tape *tape, const int32_t *ids, int B,
                      float *scores, float *repr, rlab_err *err);
/* Left-padded window (last maxlen items) of hist[0..n) into ids[maxlen]. */
void seqrec_window(const seqrec_net *net, const int32_t *hist, int32_t n, int32_t *ids);

/* ---- training ---------------------------------------------------------------------------- */

/* What training measured (filled when seqrec_config.stats is set: benchmarks). */
struct seqrec_stats {
    int epochs_run;
    double train_seconds; /* training wall time, all epochs */
    double last_epoch_seconds;
    double mean_epoch_cpu_seconds; /* process CPU time (all threads) per training epoch */
    size_t tape_peak;
    double profile[5]; /* last epoch (s): model forward + loss (CE: its backward too, per chunk),
                          model backward, TED, teacher fill, L2+Adam */
    double profile_cpu[5]; /* the same phases in process CPU seconds (teacher fill: 0) */
};

/* SASRec / MQSA-TED on the core training loop (train.c): the kind ("sasrec" / "mqsa") picks
 * the model; rlab_fit_run(&seqrec_fit_ops, ...) trains, selects by valid NDCG@20 and keeps
 * the best epoch. */
extern const rlab_fit_ops seqrec_fit_ops;

/* One training step on explicit batch arrays (tests): returns loss parts. ids/targets
 * [B][maxlen] with pad n_items; users [B] for BCE negatives and loss=rank (may be NULL for
 * CE); with loss=rank the rows must be rlab_seq_fill_train rows of d->trunc (the position
 * finds its teacher list in d->lists) and parts[2] is the repair loss. step seeds
 * the dropout. No optimiser update when opt == NULL (gradients are left in net->P->grad). */
typedef struct seqrec_trainer seqrec_trainer;
seqrec_trainer *seqrec_trainer_new(seqrec_net *net, const seqrec_data *d, rlab_err *err);
void seqrec_trainer_free(seqrec_trainer *tr);
int seqrec_trainer_step(seqrec_trainer *tr, const int32_t *ids, const int32_t *targets,
                        const int32_t *users, int B, uint64_t step, int update, double parts[4],
                        rlab_err *err);

/* ---- models for the registry (model.c) ------------------------------------------------ */
typedef struct rlab_model rlab_model;
/* Wrap net (ownership passes to the model, also on failure) as an rlab_model of kind "sasrec"
 * or "mqsa" (name may be NULL). */
rlab_model *seqrec_model_wrap(seqrec_net *net, const char *name, rlab_err *err);
seqrec_net *seqrec_model_net(const rlab_model *m);
/* The model kinds' restore: the network of the config, its parameters from the checkpoint. */
rlab_model *seqrec_restore(rlab_host *host, const rlab_ckpt *ck, const void *cfg, rlab_err *err);

#endif /* SEQREC_H */
