/*
 * plugins/seqrec/train.c: one training step (recommendation loss, TED, L2, Adam), the epoch
 * loop with validation-based model selection and early stopping, and the evaluator glue
 * (MQSA-TED protocol, models.md section 3.4).
 */
#include "seqrec.h"

#include "base/mpi.h"
#include "data/batch.h"
#include "tensor/loss.h"
#include "tensor/ops.h"
#include "host/plugin.h"
#include "model/fit.h"
#include "tensor/checkpoint.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* CPU seconds of the whole process (every thread), for profiles on a shared machine. */
static double cpu_now(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts))
        return 0.0;
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

struct seqrec_trainer {
    seqrec_net *net;
    const seqrec_data *d;
    rlab_tape *tape, *kd_tape;
    rlab_tape *ce_tape; /* the CE head, one chunk of rows at a time (see seqrec_trainer_step) */
    float *dH;          /* [B*T, d] the CE gradient of the model output H */
    rlab_opt *opt;
    int B, T, kc;
    int32_t *ids, *tgt, *pos, *neg, *heads; /* [B*T] */
    uint8_t *valid;
    float *ones, *zeros, *w;   /* [B*T] BCE labels and weights */
    float *t_base;             /* [N] TED teacher: probability of an item without transitions */
    float *t_delta;            /* [nnz of d->tr_*] teacher p_ij - t_base[i] at d->tr_col */
    int64_t *kd_off;           /* [kc + 1] sparse teacher rows of one TED chunk */
    int32_t *kd_col;           /* [kd_cap] */
    float *kd_delta, *kd_base; /* [kd_cap], [kc] */
    int64_t kd_cap;
    /* loss=rank: per compacted position its train index (d->lists row), the lists and
     * negatives of one chunk, hinge masks and constants, and the repair buffers */
    int64_t *lk;        /* [B*T] */
    int32_t *rl, *rn;   /* [kc][w] */
    int32_t *rup, *rdn; /* [kc][K] */
    int32_t *rtau;      /* [kc][K] the surrogate's K-th item, repeated */
    float *madj, *mneg; /* [kc][w] masks (adjacent pairs use w - 1 columns) */
    float *cmar;        /* [kc][w] the margin */
    float *cup;         /* [kc][K] the margin */
    float *mup, *mdn;   /* [kc][K] repair masks */
    float *rtop_s;      /* [K] */
    int32_t *rtop;      /* [K] */
    uint8_t *seen;      /* [N] prefix / list marks */
    rlab_rng rng;       /* BCE negatives */
    int dp;             /* MPI data-parallel (the core loop's steps, model/fit.h): the rows
                           given are this rank's shard; gradients are exchanged before the
                           update (seqrec_trainer_step) */
    int64_t nvalid;     /* valid positions of the last step (this rank's) */
    double sec[5];      /* profile: forward+loss (CE backward included), model backward, TED,
                           teacher fill, L2+Adam */
    double csec[5];     /* the same phases in process CPU seconds (every thread; teacher fill
                           not timed: 0) */
};

/* Arena of a head tape (CE or TED) running rlab_t_softmax_xent / rlab_t_soft_xent_items on
 * kc rows against V items of width d: the kc x V exponentiated logits it keeps for the
 * backward (within the 3/4-of-free rule), the item table packed for the logits kernel, the
 * fused mode's per-block dh rows (about kc V d / 512 floats: V d at kc = 512; loss.h), gathered
 * rows and per-row state, and slack. */
static size_t head_tape_bytes(int64_t kc, int64_t V, int64_t d)
{
    return (size_t)kc * (size_t)V * sizeof(float) * 4 / 3 +
           (size_t)(V + 32) * (size_t)d * sizeof(float) * 2 +
           (size_t)kc * (size_t)d * sizeof(float) * 16 + (8u << 20);
}

/* One chunk of a head loss l on head tape ht (CE or TED): *acc += w_value * l, then the
 * backward from grad_w * l (its gradients go to the borrowed inputs and the item table). */
static int head_backward(rlab_tape *ht, rlab_tensor *l, float grad_w, double w_value,
                         const char *what, double *acc, rlab_err *err)
{
    rlab_tensor *lw = rlab_t_scale(ht, l, grad_w);
    if (rlab_tape_error(ht))
        return rlab_errf(err, rlab_tape_error(ht), "seqrec %s: %s", what, rlab_tape_errmsg(ht));
    *acc += (double)l->data[0] * w_value;
    if (rlab_tape_backward(ht, lw))
        return rlab_errf(err, rlab_tape_error(ht), "seqrec %s backward: %s", what,
                         rlab_tape_errmsg(ht));
    return RLAB_OK;
}

void seqrec_trainer_free(seqrec_trainer *tr)
{
    if (!tr)
        return;
    rlab_tape_free(tr->tape);
    rlab_tape_free(tr->kd_tape);
    rlab_tape_free(tr->ce_tape);
    rlab_free(tr->dH);
    rlab_opt_free(tr->opt);
    rlab_free(tr->ids);
    rlab_free(tr->tgt);
    rlab_free(tr->pos);
    rlab_free(tr->neg);
    rlab_free(tr->heads);
    rlab_free(tr->valid);
    rlab_free(tr->ones);
    rlab_free(tr->zeros);
    rlab_free(tr->w);
    rlab_free(tr->t_base);
    rlab_free(tr->t_delta);
    rlab_free(tr->kd_off);
    rlab_free(tr->kd_col);
    rlab_free(tr->kd_delta);
    rlab_free(tr->kd_base);
    rlab_free(tr->lk);
    rlab_free(tr->rl);
    rlab_free(tr->rn);
    rlab_free(tr->rup);
    rlab_free(tr->rdn);
    rlab_free(tr->madj);
    rlab_free(tr->mneg);
    rlab_free(tr->cmar);
    rlab_free(tr->cup);
    rlab_free(tr->rtau);
    rlab_free(tr->mup);
    rlab_free(tr->mdn);
    rlab_free(tr->rtop_s);
    rlab_free(tr->rtop);
    rlab_free(tr->seen);
    rlab_free(tr);
}

seqrec_trainer *seqrec_trainer_new(seqrec_net *net, const seqrec_data *d, rlab_err *err)
{
    const seqrec_config *c = &net->cfg;
    seqrec_trainer *tr = rlab_calloc(1, sizeof *tr);
    if (!tr) {
        rlab_errf(err, RLAB_ENOMEM, "seqrec: out of memory");
        return NULL;
    }
    tr->net = net;
    tr->d = d;
    tr->B = c->batch;
    tr->T = c->maxlen;
    tr->kc = c->chunk > 0 ? c->chunk : 512;
    const size_t n = (size_t)tr->B * (size_t)tr->T;
    tr->tape = rlab_tape_new(seqrec_arena_bytes(c, net->n_items, tr->B, tr->T, 1), 8192, err);
    if (!tr->tape)
        goto fail;
    if (c->loss == SEQREC_LOSS_CE) {
        tr->ce_tape = rlab_tape_new(
            head_tape_bytes(tr->kc, (int64_t)net->n_items + (c->pad_logit ? 1 : 0), c->dim), 64,
            err);
        tr->dH = rlab_malloc(n * (size_t)c->dim * sizeof(float));
        if (!tr->ce_tape || !tr->dH) {
            if (tr->ce_tape)
                rlab_errf(err, RLAB_ENOMEM, "seqrec: out of memory (CE head)");
            goto fail;
        }
    }
    if (c->loss == SEQREC_LOSS_RANK) {
        if (d->lw < 1 || !d->lists) {
            rlab_errf(err, RLAB_EINVAL,
                      "seqrec: loss=rank needs teacher lists (seqrec_data_lists)");
            goto fail;
        }
        const size_t kc = (size_t)tr->kc, w = (size_t)d->lw, K = (size_t)c->repair_k;
        const size_t N = (size_t)net->n_items, dd = (size_t)c->dim;
        /* head tape: gathered candidate and negative rows [kc, w, d] and the repair rows
         * [kc, K, d] with their gradients, the masks and constants, full scores [kc, N] */
        const size_t bytes = kc * (2 * w + 2 * K) * dd * sizeof(float) * 3 +
                             kc * (4 * w + 4 * K) * sizeof(float) * 3 + kc * N * sizeof(float) +
                             kc * dd * sizeof(float) * 4 + (8u << 20);
        tr->ce_tape = rlab_tape_new(bytes, 256, err);
        tr->dH = rlab_malloc(n * (size_t)c->dim * sizeof(float));
        tr->lk = rlab_malloc(n * sizeof *tr->lk);
        tr->rl = rlab_malloc(kc * w * sizeof *tr->rl);
        tr->rn = rlab_malloc(kc * w * sizeof *tr->rn);
        tr->madj = rlab_malloc(kc * w * sizeof *tr->madj);
        tr->mneg = rlab_malloc(kc * w * sizeof *tr->mneg);
        tr->cmar = rlab_malloc(kc * w * sizeof *tr->cmar);
        tr->rup = rlab_malloc(kc * K * sizeof *tr->rup);
        tr->rdn = rlab_malloc(kc * K * sizeof *tr->rdn);
        tr->cup = rlab_malloc(kc * K * sizeof *tr->cup);
        tr->rtau = rlab_malloc(kc * K * sizeof *tr->rtau);
        tr->mup = rlab_malloc(kc * K * sizeof *tr->mup);
        tr->mdn = rlab_malloc(kc * K * sizeof *tr->mdn);
        tr->rtop_s = rlab_malloc(K * sizeof *tr->rtop_s);
        tr->rtop = rlab_malloc(K * sizeof *tr->rtop);
        tr->seen = rlab_calloc(N, 1);
        if (!tr->ce_tape || !tr->dH || !tr->lk || !tr->rl || !tr->rn || !tr->madj || !tr->mneg ||
            !tr->cmar || !tr->rup || !tr->rdn || !tr->cup || !tr->rtau || !tr->mup || !tr->mdn ||
            !tr->rtop_s || !tr->rtop || !tr->seen) {
            if (tr->ce_tape)
                rlab_errf(err, RLAB_ENOMEM, "seqrec: out of memory (ranking head)");
            goto fail;
        }
    }
    rlab_opt_config oc = rlab_opt_defaults(RLAB_OPT_ADAM);
    oc.lr = c->lr; /* tf.train.AdamOptimizer defaults: betas 0.9/0.999, eps 1e-8, dense */
    tr->opt = rlab_opt_new(net->P, &oc, err);
    if (!tr->opt)
        goto fail;
    tr->ids = rlab_malloc(n * sizeof(int32_t));
    tr->tgt = rlab_malloc(n * sizeof(int32_t));
    tr->pos = rlab_malloc(n * sizeof(int32_t));
    tr->neg = rlab_malloc(n * sizeof(int32_t));
    tr->heads = rlab_malloc(n * sizeof(int32_t));
    tr->valid = rlab_malloc(n);
    tr->ones = rlab_malloc(n * sizeof(float));
    tr->zeros = rlab_calloc(n, sizeof(float));
    tr->w = rlab_malloc(n * sizeof(float));
    if (!tr->ids || !tr->tgt || !tr->pos || !tr->neg || !tr->heads || !tr->valid || !tr->ones ||
        !tr->zeros || !tr->w) {
        rlab_errf(err, RLAB_ENOMEM, "seqrec: out of memory");
        goto fail;
    }
    for (size_t i = 0; i < n; i++)
        tr->ones[i] = 1.0f;
    if (c->model == SEQREC_MQSA && c->ted && c->lambda_kd > 0.0f) {
        /* sparse TED teacher (exact): row i = t_base[i] everywhere + t_delta at its
         * transitions; the rows of one chunk are gathered into kd_* per step */
        const int32_t N = net->n_items;
        const int64_t nnz = d->tr_off[N];
        int64_t maxdeg = 1;
        for (int32_t i = 0; i < N; i++)
            if (d->tr_off[i + 1] - d->tr_off[i] > maxdeg)
                maxdeg = d->tr_off[i + 1] - d->tr_off[i];
        tr->kd_cap = (int64_t)tr->kc * maxdeg;
        tr->t_base = rlab_malloc((size_t)N * sizeof(float));
        tr->t_delta = rlab_malloc((size_t)(nnz ? nnz : 1) * sizeof(float));
        tr->kd_off = rlab_malloc((size_t)(tr->kc + 1) * sizeof(int64_t));
        tr->kd_base = rlab_malloc((size_t)tr->kc * sizeof(float));
        tr->kd_col = rlab_malloc((size_t)tr->kd_cap * sizeof(int32_t));
        tr->kd_delta = rlab_malloc((size_t)tr->kd_cap * sizeof(float));
        tr->kd_tape = rlab_tape_new(head_tape_bytes(tr->kc, N, c->dim), 64, err);
        if (!tr->t_base || !tr->t_delta || !tr->kd_off || !tr->kd_base || !tr->kd_col ||
            !tr->kd_delta || !tr->kd_tape) {
            if (tr->kd_tape)
                rlab_errf(err, RLAB_ENOMEM, "seqrec: out of memory (TED teacher)");
            goto fail;
        }
        seqrec_teacher_sparse(d, c->tau, tr->t_base, tr->t_delta);
    }
    rlab_rng_seed(&tr->rng, c->seed ^ 0x6e65676174697665ULL);
    return tr;
fail:
    seqrec_trainer_free(tr);
    return NULL;
}

/* Uniform negative outside the user's training items (kang205 random_neq). */
static int32_t sample_neg(seqrec_trainer *tr, int32_t user)
{
    const rlab_seqs *s = &tr->d->train;
    const int32_t N = tr->net->n_items;
    for (int tries = 0; tries < 1000; tries++) {
        int32_t j = (int32_t)rlab_rng_below(&tr->rng, (uint64_t)N);
        int seen = 0;
        if (user >= 0 && user < s->n_users)
            for (int64_t k = s->off[user]; k < s->off[user + 1] && !seen; k++)
                seen = s->items[k] == j;
        if (!seen)
            return j;
    }
    return (int32_t)rlab_rng_below(&tr->rng, (uint64_t)N);
}

/* ---- loss=rank: ranking distillation and the repair loss ------------------------------- */

/* sum(relu(c - x) * mask) / count:
 * x [m, k] on the tape, c and mask [m, k] constants (borrowed until the backward). */
static rlab_tensor *masked_hinge(rlab_tape *ht, rlab_tensor *x, float *c, float *mask, double count)
{
    const int64_t sh[2] = {x->shape[0], x->shape[1]};
    rlab_tensor *ct = rlab_t_input(ht, c, 2, sh);
    rlab_tensor *mt = rlab_t_input(ht, mask, 2, sh);
    rlab_tensor *h = rlab_t_relu(ht, rlab_t_sub(ht, ct, x));
    return rlab_t_scale(ht, rlab_t_sum_all(ht, rlab_t_mul(ht, h, mt)),
                        (float)(1.0 / (count > 0.0 ? count : 1.0)));
}

/* Scores of items ids [m][k] (-1: a zero row, masked by the caller) for the rows hv [m, d]:
 * [m, k] = bmm(hv [m, 1, d], E[ids] [m, k, d]^T). */
static rlab_tensor *list_scores(rlab_tape *ht, rlab_tensor *hv, rlab_tensor *Ereal,
                                const int32_t *ids, int64_t m, int64_t k, int64_t d)
{
    rlab_tensor *e = rlab_t_gather(ht, Ereal, ids, m * k, -1, 3, (int64_t[]){m, k, d});
    rlab_tensor *h3 = rlab_t_reshape(ht, hv, 3, (int64_t[]){m, 1, d});
    return rlab_t_reshape(ht, rlab_t_bmm(ht, h3, e, 0, 1), 2, (int64_t[]){m, k});
}

/*
 * Yue et al.'s ranking loss over the teacher list c_1..c_w of each row (their calculate_loss,
 * 'ranking'): mean over adjacent pairs of max(0, m - (s(c_j) - s(c_j+1))) plus mean over j of
 * max(0, m - (s(c_j) - s(n_j))), n_j uniform outside the list and the prefix; both means are
 * over the batch's real pairs (padding -1 in a list drops its pairs). With repair > 0, the
 * bidirectional repair loss against the surrogate's own top-K (K = repair_k, the prefix's items
 * excluded; the sets are chosen with the current parameters): with tau = the score of the
 * surrogate's K-th item (a differentiable score, not a constant), teacher top-K items outside
 * the surrogate's top-K get max(0, m - (s(c) - tau)) (pushed above the boundary) and surrogate
 * top-K items absent from the whole teacher list max(0, m - (tau - s(x))) (pushed below it);
 * mean over such items, each direction; rows chunked like CE, each chunk weighted by its rows.
 * Rows H [n, d]; gradients go to tr->dH and the item table. parts[1] ranking, parts[2] repair.
 */
static int rank_head(seqrec_trainer *tr, float *H, int64_t n, uint64_t step, double parts[4],
                     rlab_err *err)
{
    seqrec_net *net = tr->net;
    const seqrec_config *c = &net->cfg;
    const seqrec_data *dd = tr->d;
    const int64_t d = c->dim, w = dd->lw, K = c->repair_k;
    const int32_t N = net->n_items;
    rlab_tensor Ereal = net->P->t[net->E];
    Ereal.shape[0] = N;
    Ereal.n = (int64_t)N * d;
    rlab_tensor Efz = net->frozen[net->E];
    Efz.shape[0] = N;
    Efz.n = (int64_t)N * d;
    const float mg = c->rank_margin;
    /* counts over the whole batch, so that the chunk sums add up to the batch means */
    double n_adj = 0.0, n_neg = 0.0;
    for (int64_t r = 0; r < n; r++) {
        if (tr->lk[r] < 0)
            continue;
        const int32_t *L = dd->lists + (size_t)tr->lk[r] * (size_t)w;
        for (int64_t j = 0; j < w; j++) {
            n_neg += L[j] >= 0;
            n_adj += j + 1 < w && L[j] >= 0 && L[j + 1] >= 0;
        }
    }
    memset(tr->dH, 0, (size_t)n * (size_t)d * sizeof(float));
    rlab_rng_seed(&tr->rng, c->seed ^ 0x72616e6b6e6567ULL ^ (step * 0x9e3779b97f4a7c15ULL));
    double rank = 0.0, rep = 0.0;
    for (int64_t r0 = 0; r0 < n; r0 += tr->kc) {
        const int64_t m = n - r0 < tr->kc ? n - r0 : tr->kc;
        /* lists, negatives and masks of the chunk */
        for (int64_t r = 0; r < m; r++) {
            int32_t *rl = tr->rl + r * w, *rn = tr->rn + r * w;
            const int64_t k = tr->lk[r0 + r];
            if (k < 0) {
                for (int64_t j = 0; j < w; j++)
                    rl[j] = -1;
            } else
                memcpy(rl, dd->lists + (size_t)k * (size_t)w, (size_t)w * sizeof *rl);
            for (int64_t j = 0; j < w; j++)
                if (rl[j] >= 0)
                    tr->seen[rl[j]] = 1;
            for (int64_t j = 0; j < w; j++) {
                int32_t x = -1;
                if (rl[j] >= 0)
                    for (int tries = 0; tries < 100 && x < 0; tries++) {
                        int32_t y = (int32_t)rlab_rng_below(&tr->rng, (uint64_t)N);
                        if (!tr->seen[y])
                            x = y;
                    }
                rn[j] = x;
                tr->mneg[r * w + j] = x >= 0 ? 1.0f : 0.0f;
                tr->madj[r * w + j] = j + 1 < w && rl[j] >= 0 && rl[j + 1] >= 0 ? 1.0f : 0.0f;
                tr->cmar[r * w + j] = mg;
            }
            for (int64_t j = 0; j < w; j++)
                if (rl[j] >= 0)
                    tr->seen[rl[j]] = 0;
        }
        rlab_tape *ht = tr->ce_tape;
        rlab_tape_reset(ht);
        rlab_tensor *hv = rlab_t_input(ht, H + r0 * d, 2, (int64_t[]){m, d});
        if (!(hv->flags & RLAB_T_POISON)) {
            hv->grad = tr->dH + r0 * d;
            hv->flags |= RLAB_T_REQUIRES_GRAD;
        }
        rlab_tensor *S = list_scores(ht, hv, &Ereal, tr->rl, m, w, d);  /* [m, w] */
        rlab_tensor *Sn = list_scores(ht, hv, &Ereal, tr->rn, m, w, d); /* [m, w] */
        /* adjacent pairs: m - (S[:, j] - S[:, j+1]) = (m + S[:, j+1]) - S[:, j]; the last column
         * is masked, so S shifted left by one (with a zero column) stands for S[:, j+1] */
        rlab_tensor *Sl = w > 1 ? rlab_t_slice(ht, S, 1, 1, w - 1) : NULL;
        rlab_tensor *z = rlab_t_new(ht, 2, (int64_t[]){m, 1}, 0);
        rlab_tensor *Snext = Sl ? rlab_t_concat(ht, (rlab_tensor *[]){Sl, z}, 2, 1) : z;
        rlab_tensor *diff = rlab_t_sub(ht, S, Snext);
        rlab_tensor *l =
            rlab_t_add(ht, masked_hinge(ht, diff, tr->cmar, tr->madj, n_adj),
                       masked_hinge(ht, rlab_t_sub(ht, S, Sn), tr->cmar, tr->mneg, n_neg));
        if (rlab_tape_error(ht))
            return rlab_errf(err, rlab_tape_error(ht), "seqrec rank: %s", rlab_tape_errmsg(ht));
        rank += (double)l->data[0];
        if (c->repair > 0.0f) {
            /* the surrogate's own top-K of every row (no gradient) */
            rlab_tensor *hn = rlab_t_input(ht, H + r0 * d, 2, (int64_t[]){m, d});
            rlab_tensor *full = rlab_t_matmul(ht, hn, &Efz, 0, 1); /* [m, N] */
            if (rlab_tape_error(ht))
                return rlab_errf(err, rlab_tape_error(ht), "seqrec repair: %s",
                                 rlab_tape_errmsg(ht));
            double n_up = 0.0, n_dn = 0.0;
            for (int64_t r = 0; r < m; r++) {
                const int32_t *rl = tr->rl + r * w;
                int32_t *up = tr->rup + r * K, *dn = tr->rdn + r * K;
                for (int64_t j = 0; j < K; j++) {
                    up[j] = dn[j] = tr->rtau[r * K + j] = -1;
                    tr->mup[r * K + j] = tr->mdn[r * K + j] = 0.0f;
                    tr->cup[r * K + j] = mg;
                }
                const int64_t k = tr->lk[r0 + r];
                if (k < 0 || rl[0] < 0)
                    continue;
                /* the prefix (its user's train items up to k) is excluded, as the teacher's
                 * list excludes it */
                int32_t u = 0;
                while (dd->train.off[u + 1] <= k)
                    u++;
                for (int64_t i = dd->train.off[u]; i <= k; i++)
                    tr->seen[dd->train.items[i]] = 1;
                rlab_topk_row(full->data + r * N, N, tr->seen, (int)K, tr->rtop, tr->rtop_s);
                for (int64_t i = dd->train.off[u]; i <= k; i++)
                    tr->seen[dd->train.items[i]] = 0;
                if (!(tr->rtop_s[K - 1] > -INFINITY) || tr->rtop[K - 1] < 0)
                    continue;
                for (int64_t j = 0; j < K; j++)
                    tr->rtau[r * K + j] = tr->rtop[K - 1];
                /* up: teacher top-K not in the surrogate's top-K */
                for (int64_t j = 0; j < K; j++)
                    if (tr->rtop[j] >= 0)
                        tr->seen[tr->rtop[j]] = 1;
                for (int64_t j = 0; j < K && j < w; j++)
                    if (rl[j] >= 0 && !tr->seen[rl[j]]) {
                        up[j] = rl[j];
                        tr->mup[r * K + j] = 1.0f;
                        n_up += 1.0;
                    }
                for (int64_t j = 0; j < K; j++)
                    if (tr->rtop[j] >= 0)
                        tr->seen[tr->rtop[j]] = 0;
                /* down: surrogate top-K absent from the whole teacher list */
                for (int64_t j = 0; j < w; j++)
                    if (rl[j] >= 0)
                        tr->seen[rl[j]] = 1;
                for (int64_t j = 0; j < K; j++)
                    if (tr->rtop[j] >= 0 && !tr->seen[tr->rtop[j]]) {
                        dn[j] = tr->rtop[j];
                        tr->mdn[r * K + j] = 1.0f;
                        n_dn += 1.0;
                    }
                for (int64_t j = 0; j < w; j++)
                    if (rl[j] >= 0)
                        tr->seen[rl[j]] = 0;
            }
            if (n_up + n_dn > 0.0) {
                const double cw = (double)m / (double)n;
                rlab_tensor *Su = list_scores(ht, hv, &Ereal, tr->rup, m, K, d);
                rlab_tensor *Sd = list_scores(ht, hv, &Ereal, tr->rdn, m, K, d);
                rlab_tensor *St = list_scores(ht, hv, &Ereal, tr->rtau, m, K, d);
                rlab_tensor *lr =
                    rlab_t_add(ht, masked_hinge(ht, rlab_t_sub(ht, Su, St), tr->cup, tr->mup, n_up),
                               masked_hinge(ht, rlab_t_sub(ht, St, Sd), tr->cup, tr->mdn, n_dn));
                lr = rlab_t_scale(ht, lr, (float)((double)c->repair * cw));
                if (rlab_tape_error(ht))
                    return rlab_errf(err, rlab_tape_error(ht), "seqrec repair: %s",
                                     rlab_tape_errmsg(ht));
                rep += (double)lr->data[0] / (double)c->repair;
                l = rlab_t_add(ht, l, lr);
            }
        }
        if (rlab_tape_error(ht))
            return rlab_errf(err, rlab_tape_error(ht), "seqrec rank: %s", rlab_tape_errmsg(ht));
        if (rlab_tape_backward(ht, l))
            return rlab_errf(err, rlab_tape_error(ht), "seqrec rank backward: %s",
                             rlab_tape_errmsg(ht));
    }
    parts[1] = rank;
    parts[2] = rep;
    return RLAB_OK;
}

/* The update of a data-parallel step (MPI): this rank's gradients are means over its
 * nvalid positions (the L2 term included); rlab_fit_sync_grads with scale nvalid / (all
 * ranks' positions) makes them the mean over the global batch on every rank, then every rank
 * takes the same optimiser step (none when the global batch had no position, as alone). */
static int dp_update(seqrec_trainer *tr, int64_t nvalid, rlab_err *err)
{
    double nv = (double)nvalid;
    if (rlab_mpi_allreduce_f64(&nv, 1, RLAB_MPI_SUM, err))
        return err->code;
    if (nv <= 0.0)
        return RLAB_OK;
    if (rlab_fit_sync_grads(tr->net->P, (double)nvalid / nv, err))
        return err->code;
    if (rlab_opt_step(tr->opt, tr->net->P))
        return rlab_errf(err, RLAB_EINVAL, "seqrec: optimiser step failed");
    return RLAB_OK;
}

int seqrec_trainer_step(seqrec_trainer *tr, const int32_t *ids, const int32_t *targets,
                        const int32_t *users, int B, uint64_t step, int update, double parts[4],
                        rlab_err *err)
{
    seqrec_net *net = tr->net;
    const seqrec_config *c = &net->cfg;
    const int T = tr->T, d = c->dim;
    const int32_t N = net->n_items;
    if (B > tr->B)
        return rlab_errf(err, RLAB_EINVAL, "seqrec: batch of %d rows > %d", B, tr->B);
    /* Keep the rows with at least one target and only the trailing Tb columns that hold a
     * real position in some row (left padding: the leading columns are all padding). The
     * positions keep their absolute index, so the numbers equal those of the full window. */
    int Tb = 0, Bk = 0;
    int keep[4096];
    int *keepv = B <= 4096 ? keep : rlab_malloc((size_t)B * sizeof(int));
    if (!keepv)
        return rlab_errf(err, RLAB_ENOMEM, "seqrec: out of memory");
    for (int b = 0; b < B; b++) {
        int len = 0;
        for (int t = 0; t < T; t++)
            len += targets[(size_t)b * T + t] != N;
        if (len == 0)
            continue;
        int first = T;
        for (int t = 0; t < T; t++)
            if (targets[(size_t)b * T + t] != N) {
                first = t;
                break;
            }
        if (T - first > Tb)
            Tb = T - first;
        keepv[Bk++] = b;
    }
    parts[0] = parts[1] = parts[2] = parts[3] = 0.0;
    tr->nvalid = 0;
    if (Bk == 0) {
        if (keepv != keep)
            rlab_free(keepv);
        /* data-parallel: this rank's shard is empty, but it takes part in the exchange and
         * applies the same update as the others */
        if (update && tr->dp && rlab_mpi_size() > 1) {
            rlab_params_zero_grad(net->P);
            return dp_update(tr, 0, err);
        }
        return RLAB_OK;
    }
    int64_t nvalid = 0, nh = 0;
    /* negatives: a stream per (seed, step), so a step can be recomputed exactly */
    rlab_rng_seed(&tr->rng, c->seed ^ 0x6e65676174697665ULL ^ (step * 0x9e3779b97f4a7c15ULL));
    for (int k = 0; k < Bk; k++) {
        const int b = keepv[k];
        for (int t = 0; t < Tb; t++) {
            const size_t src = (size_t)b * T + (size_t)(T - Tb + t), dst = (size_t)k * Tb + t;
            const int32_t tg = targets[src];
            const int ok = tg != N && ids[src] != N;
            tr->ids[dst] = ok ? ids[src] : N;
            tr->tgt[dst] = ok ? tg : -1;
            tr->valid[dst] = (uint8_t)ok;
            tr->pos[dst] = T - Tb + t;
            tr->w[dst] = ok ? 1.0f : 0.0f;
            if (ok && c->loss == SEQREC_LOSS_RANK) {
                /* the input item's index in the user's train sequence: rows are
                 * rlab_seq_fill_train rows of trunc (the last maxlen train items) */
                const rlab_seqs *tu = &tr->d->trunc, *tn = &tr->d->train;
                const int32_t u = users ? users[b] : -1;
                int64_t kt = -1;
                if (u >= 0 && u < tu->n_users) {
                    const int64_t Lt = tu->off[u + 1] - tu->off[u];
                    const int64_t Ltr = tn->off[u + 1] - tn->off[u];
                    const int64_t ti = (Lt - 1) - T + (T - Tb + t);
                    if (ti >= 0 && ti < Lt - 1)
                        kt = tn->off[u] + ti + (Ltr - Lt);
                }
                tr->lk[dst] = kt; /* -1: no list (the position takes no ranking loss) */
            }
            if (ok) {
                nvalid++;
                tr->heads[nh++] = ids[src];
                if (c->loss == SEQREC_LOSS_BCE)
                    tr->neg[dst] = sample_neg(tr, users ? users[b] : -1);
            } else
                tr->neg[dst] = N;
        }
    }
    if (keepv != keep)
        rlab_free(keepv);

    double t0 = rlab_now(), c0 = cpu_now();
    rlab_params_zero_grad(net->P);
    rlab_tape *t = tr->tape;
    rlab_tape_reset(t);
    rlab_tape_seed(t, c->seed, step * 2 + 1);
    rlab_tape_set_training(t, 1);
    rlab_tensor *W = net->P->t;
    /* the item table of the forward and the loss: W[E], or with semid E + code embeddings
     * (a tape tensor: the CE chunks below add into its grad, the main backward passes it on) */
    rlab_tensor *E = seqrec_item_table(net, t, W);
    rlab_tensor Ereal = *E; /* the N real rows (a view sharing data and grad) */
    Ereal.shape[0] = N;
    Ereal.n = (int64_t)N * d;
    /* TED runs after the main backward: it distils into the free table W[E] only */
    rlab_tensor Eted = W[net->E];
    Eted.shape[0] = N;
    Eted.n = (int64_t)N * d;
    rlab_tensor *H = seqrec_forward_tab(net, t, W, E, tr->ids, tr->valid, tr->pos, Bk, Tb, NULL);
    /* compact targets / negatives in the same (row-major) order as the rows of H */
    int64_t n = 0;
    for (int64_t i = 0; i < (int64_t)Bk * Tb; i++)
        if (tr->valid[i]) {
            tr->tgt[n] = tr->tgt[i];
            tr->neg[n] = tr->neg[i];
            if (c->loss == SEQREC_LOSS_RANK)
                tr->lk[n] = tr->lk[i];
            n++;
        }
    rlab_tensor *loss = NULL;
    if (c->loss == SEQREC_LOSS_CE) {
        /* Logits only at real positions (the rows of H), and never those of the whole batch:
         * the CE runs on chunks of kc rows, each on the head tape with its own forward and
         * backward (the op keeps the chunk's exponentiated logits for its backward: 3 passes
         * over the item table), gradients into dH (for H) and straight into the item table.
         * The main tape then runs its backward from H with dH. The mean over the n rows is
         * the kc/n-weighted sum of the chunk means. */
        if (rlab_tape_error(t))
            return rlab_errf(err, rlab_tape_error(t), "seqrec step: %s", rlab_tape_errmsg(t));
        memset(tr->dH, 0, (size_t)n * (size_t)d * sizeof(float));
        double ce = 0.0;
        for (int64_t r0 = 0; r0 < n; r0 += tr->kc) {
            const int64_t m = n - r0 < tr->kc ? n - r0 : tr->kc;
            rlab_tape *ht = tr->ce_tape;
            rlab_tape_reset(ht);
            /* rows [r0, r0 + m) of H as an input of the head tape, its gradient in dH */
            rlab_tensor *hv = rlab_t_input(ht, H->data + r0 * d, 2, (int64_t[]){m, d});
            if (!(hv->flags & RLAB_T_POISON)) {
                hv->grad = tr->dH + r0 * d;
                hv->flags |= RLAB_T_REQUIRES_GRAD;
            }
            rlab_tensor *l =
                rlab_t_softmax_xent(ht, hv, c->pad_logit ? E : &Ereal, NULL, tr->tgt + r0, tr->kc);
            const double w = (double)m / (double)n;
            if (head_backward(ht, l, (float)w, w, "CE", &ce, err))
                return err->code;
        }
        parts[1] = ce;
    } else if (c->loss == SEQREC_LOSS_RANK) {
        if (rlab_tape_error(t))
            return rlab_errf(err, rlab_tape_error(t), "seqrec step: %s", rlab_tape_errmsg(t));
        if (rank_head(tr, H->data, n, step, parts, err))
            return err->code;
    } else {
        /* kang205: mean over real positions of -log s(h.e_pos) - log(1 - s(h.e_neg)) */
        rlab_tensor *pe = rlab_t_gather(t, E, tr->tgt, n, N, 0, NULL);
        rlab_tensor *ne = rlab_t_gather(t, E, tr->neg, n, N, 0, NULL);
        rlab_tensor *pl = rlab_t_sum(t, rlab_t_mul(t, H, pe), -1);
        rlab_tensor *nl = rlab_t_sum(t, rlab_t_mul(t, H, ne), -1);
        loss = rlab_t_add(t, rlab_t_bce_logits(t, pl, tr->ones, NULL),
                          rlab_t_bce_logits(t, nl, tr->zeros, NULL));
    }
    if (rlab_tape_error(t))
        return rlab_errf(err, rlab_tape_error(t), "seqrec step: %s", rlab_tape_errmsg(t));
    if (loss)
        parts[1] = loss->data[0];
    double t1 = rlab_now(), c1 = cpu_now();
    /* data-parallel without TED: the dense gradient buckets are summed over the ranks while
     * the backward runs (rlab_fit_overlap_begin; the global position count first, for the
     * scale); the L2 term and the padding row then come after the exchange */
    int ov = 0;
    double nvg = 0.0;
    if (update && tr->dp && rlab_mpi_size() > 1 && rlab_fit_overlap() && !tr->kd_tape) {
        nvg = (double)nvalid;
        if (rlab_mpi_allreduce_f64(&nvg, 1, RLAB_MPI_SUM, err))
            return err->code;
        ov = 1;
        if (nvg > 0.0 && rlab_fit_overlap_begin(net->P, t, (double)nvalid / nvg, err))
            return err->code;
    }
    if (loss ? rlab_tape_backward(t, loss) : rlab_tape_backward_from(t, H, tr->dH))
        return rlab_errf(err, rlab_tape_error(t), "seqrec backward: %s", rlab_tape_errmsg(t));
    double t2 = rlab_now(), c2 = cpu_now();

    /* TED: for every non-padding input item i (repeats included, as in get_feed_dict_train),
     * CE(teacher_i, softmax(dropout(E[i] sqrt(d)) E[:N]^T / tau)), mean over the nh heads,
     * computed in chunks on a second tape (gradients accumulate into the same block). */
    if (tr->kd_tape && nh > 0) {
        double kd = 0.0;
        for (int64_t r0 = 0, ci = 0; r0 < nh; r0 += tr->kc, ci++) {
            const int64_t kc = nh - r0 < tr->kc ? nh - r0 : tr->kc;
            rlab_tape *kt = tr->kd_tape;
            rlab_tape_reset(kt);
            rlab_tape_seed(kt, c->seed ^ 0x54454444ULL, step * 4096 + (uint64_t)ci);
            rlab_tape_set_training(kt, 1);
            double tf = rlab_now();
            const seqrec_data *dd = tr->d;
            int64_t nz = 0;
            tr->kd_off[0] = 0;
            for (int64_t r = 0; r < kc; r++) {
                const int32_t i = tr->heads[r0 + r];
                tr->kd_base[r] = tr->t_base[i];
                for (int64_t k = dd->tr_off[i]; k < dd->tr_off[i + 1]; k++) {
                    tr->kd_col[nz] = dd->tr_col[k];
                    tr->kd_delta[nz++] = tr->t_delta[k];
                }
                tr->kd_off[r + 1] = nz;
            }
            tr->sec[3] += rlab_now() - tf;
            rlab_tensor *s = rlab_t_gather(kt, &Eted, tr->heads + r0, kc, -1, 0, NULL);
            s = rlab_t_dropout(kt, rlab_t_scale(kt, s, sqrtf((float)d)), c->dropout);
            /* CE(teacher, softmax(s E^T / tau)) fused: no [kc, N] teacher or gradient */
            rlab_tensor *l = rlab_t_soft_xent_items(kt, s, &Eted, tr->kd_base, tr->kd_off,
                                                    tr->kd_col, tr->kd_delta, c->tau, 256);
            const double w = (double)kc / (double)nh;
            if (head_backward(kt, l, (float)((double)c->lambda_kd * w), w, "TED", &kd, err))
                return err->code;
        }
        parts[2] = kd;
    }
    double t3 = rlab_now(), c3 = cpu_now();
    if (ov && nvg > 0.0 && rlab_fit_sync_grads(net->P, (double)nvalid / nvg, err))
        return err->code;
    if (c->l2 > 0.0f)
        parts[3] = rlab_opt_l2_penalty(net->P, c->l2);
    /* the padding row stays exactly zero */
    memset(E->grad + (size_t)N * d, 0, (size_t)d * sizeof(float));
    parts[0] = parts[1] + (double)c->lambda_kd * parts[2] * (tr->kd_tape ? 1.0 : 0.0) + parts[3];
    if (c->loss == SEQREC_LOSS_RANK)
        parts[0] = parts[1] + (double)c->repair * parts[2] + parts[3];
    tr->nvalid = nvalid;
    if (ov) { /* exchanged already */
        if (nvg > 0.0 && rlab_opt_step(tr->opt, net->P))
            return rlab_errf(err, RLAB_EINVAL, "seqrec: optimiser step failed");
    } else if (update && tr->dp && rlab_mpi_size() > 1) {
        if (dp_update(tr, nvalid, err))
            return err->code;
    } else if (update && rlab_opt_step(tr->opt, net->P)) {
        return rlab_errf(err, RLAB_EINVAL, "seqrec: optimiser step failed");
    }
    double t4 = rlab_now(), c4 = cpu_now();
    tr->sec[0] += t1 - t0;
    tr->sec[1] += t2 - t1;
    tr->sec[2] += t3 - t2;
    tr->sec[4] += t4 - t3;
    tr->csec[0] += c1 - c0;
    tr->csec[1] += c2 - c1;
    tr->csec[2] += c3 - c2;
    tr->csec[4] += c4 - c3;
    return RLAB_OK;
}

/* ---- the core loop's steps ------------------------------------------------------------- */
/*
 * SASRec / MQSA-TED on the core training loop (model/fit.h): begin builds the data of the
 * MQSA-TED protocol from the view (train windows, TED counts), the network and the model that
 * wraps it; an epoch is one pass of the seq batcher; a step is seqrec_trainer_step. The loop
 * does the rest (validation by select=ndcg@20, keep-best, patience, test of the kept model).
 */
typedef struct seqrec_state {
    seqrec_config cfg;
    seqrec_data d;
    seqrec_net *net; /* owned by m */
    rlab_model *m;
    seqrec_trainer *tr;
    rlab_seq_batcher *bt;
    uint64_t step;
    seqrec_stats *stats; /* optional (benchmarks) */
    double t_epoch, c_epoch, cpu_sum;
    int epochs;
} seqrec_state;

static void sq_end(void *state)
{
    seqrec_state *st = state;
    if (st->stats && st->tr)
        st->stats->tape_peak = rlab_tape_peak(st->tr->tape);
    if (st->stats && st->epochs) {
        st->stats->mean_epoch_cpu_seconds = st->cpu_sum / st->epochs;
        st->stats->epochs_run = st->epochs;
    }
    rlab_seq_batcher_free(st->bt);
    seqrec_trainer_free(st->tr);
    seqrec_data_clear(&st->d);
    rlab_model_release(st->m);
    rlab_free(st);
}

/* The epoch that just ended: time it (CPU seconds of the whole process) and keep the
 * profile. */
static void sq_close_epoch(seqrec_state *st)
{
    if (st->t_epoch <= 0.0)
        return;
    double tt = rlab_now() - st->t_epoch;
    st->cpu_sum += cpu_now() - st->c_epoch;
    if (st->stats) {
        st->stats->last_epoch_seconds = tt;
        st->stats->train_seconds += tt;
        memcpy(st->stats->profile, st->tr->sec, sizeof st->stats->profile);
        memcpy(st->stats->profile_cpu, st->tr->csec, sizeof st->stats->profile_cpu);
    }
    if (st->cfg.verbose > 1)
        fprintf(stderr,
                "  profile: forward+loss %.2fs, model backward %.2fs, TED %.2fs (teacher fill "
                "%.2fs), L2+Adam %.2fs\n",
                st->tr->sec[0], st->tr->sec[1], st->tr->sec[2], st->tr->sec[3], st->tr->sec[4]);
    memset(st->tr->sec, 0, sizeof st->tr->sec);
    memset(st->tr->csec, 0, sizeof st->tr->csec);
    st->t_epoch = 0.0;
}

/* semid=NAME: the item codes of a semantic-ID tokenizer registered in the session, read
 * through the plugin API (rlab_model_state, tensor "semid.codes" I32 [n_items, L + 1]: L
 * codes and a de-duplication digit, which is not used). Sets c->sid_levels / sid_codes
 * (K = the largest code + 1) and *codes [n_items][L + 1] (rlab_free). */
static int load_semid(const rlab_fit *fit, seqrec_config *c, int32_t n_items, int32_t **codes,
                      rlab_err *err)
{
    if (!fit->host)
        return rlab_errf(err, RLAB_EINVAL, "semid=%s: needs a session (train through the host)",
                         c->semid);
    rlab_model *m = rlab_host_model_get(fit->host, c->semid, NULL);
    if (!m)
        return rlab_errf(err, RLAB_ENOTFOUND, "semid=%s: no such model", c->semid);
    rlab_ckpt *ck = rlab_model_state(m, err);
    int rc = ck ? RLAB_OK : (err->code ? err->code : RLAB_ENOMEM);
    int nd = 0;
    int64_t sh[8];
    const int32_t *cd = NULL;
    if (!rc) {
        rlab_err e2 = {0};
        cd = rlab_ckpt_tensor(ck, "semid.codes", RLAB_DT_I32, &nd, sh, &e2);
        if (!cd || nd != 2 || sh[1] < 2)
            rc = rlab_errf(err, RLAB_EINVAL,
                           "semid=%s: a %s model has no semantic IDs (tensor semid.codes)",
                           c->semid, m->kind);
        else if (sh[0] != n_items)
            rc = rlab_errf(err, RLAB_EINVAL, "semid=%s: codes of %lld items, the data has %d",
                           c->semid, (long long)sh[0], (int)n_items);
    }
    if (!rc) {
        const int L = (int)sh[1] - 1;
        int32_t K = 0;
        for (int64_t i = 0; i < sh[0]; i++)
            for (int l = 0; l < L; l++)
                K = cd[i * sh[1] + l] + 1 > K ? cd[i * sh[1] + l] + 1 : K;
        c->sid_levels = L;
        c->sid_codes = K;
        *codes = rlab_malloc((size_t)(sh[0] * sh[1]) * sizeof **codes);
        if (!*codes)
            rc = rlab_errf(err, RLAB_ENOMEM, "seqrec: out of memory");
        else
            memcpy(*codes, cd, (size_t)(sh[0] * sh[1]) * sizeof **codes);
    }
    rlab_ckpt_free(ck);
    rlab_model_release(m);
    return rc;
}

static int sq_begin(const rlab_fit *fit, void **state, rlab_err *err)
{
    seqrec_state *st = rlab_calloc(1, sizeof *st);
    if (!st)
        return rlab_errf(err, RLAB_ENOMEM, "seqrec: out of memory");
    st->cfg = *(const seqrec_config *)fit->cfg;
    seqrec_config *c = &st->cfg;
    /* the model kind and the loop's settings the network needs */
    c->model = fit->kind && strcmp(fit->kind, "mqsa") == 0 ? SEQREC_MQSA : SEQREC_SASREC;
    c->seed = (uint64_t)fit->opts->seed;
    c->epochs = fit->opts->epochs;
    st->stats = c->stats;
    c->stats = NULL;
    int rc = seqrec_config_check(c, err);
    if (rc == RLAB_OK)
        rc = seqrec_data_from_view(fit->view, c->maxlen, &st->d, err);
    if (rc == RLAB_OK && c->loss == SEQREC_LOSS_RANK)
        rc = seqrec_data_lists(fit->data, &st->d, err);
    int32_t *sid_codes = NULL;
    if (rc == RLAB_OK && c->semid[0] && c->loss == SEQREC_LOSS_RANK)
        rc = rlab_errf(err, RLAB_EINVAL,
                       "semid= and loss=rank together are not supported (the ranking head "
                       "scores the plain item table)");
    if (rc == RLAB_OK && c->semid[0])
        rc = load_semid(fit, c, st->d.n_items, &sid_codes, err);
    if (rc == RLAB_OK && !(st->net = seqrec_net_new(c, st->d.n_items, err)))
        rc = err->code ? err->code : RLAB_ENOMEM;
    if (rc == RLAB_OK && sid_codes)
        rc = seqrec_net_set_sid(st->net, sid_codes, c->sid_levels + 1, err);
    rlab_free(sid_codes);
    if (rc == RLAB_OK) {
        st->m = seqrec_model_wrap(st->net, NULL, err); /* takes the net */
        if (!st->m) {
            st->net = NULL;
            rc = err->code ? err->code : RLAB_ENOMEM;
        }
    }
    if (rc == RLAB_OK && (st->tr = seqrec_trainer_new(st->net, &st->d, err)) != NULL)
        st->tr->dp = 1; /* the core loop shards each batch under MPI (sq_step) */
    if (rc == RLAB_OK && !st->tr)
        rc = err->code ? err->code : RLAB_ENOMEM;
    if (rc == RLAB_OK && !(st->bt = rlab_seq_batcher_new(&st->d.trunc, st->d.n_items, c->batch,
                                                         c->maxlen, c->seed, err)))
        rc = err->code ? err->code : RLAB_ENOMEM;
    if (rc) {
        sq_end(st);
        return rc;
    }
    if (fit->log) {
        char cs[400];
        seqrec_config_str(c, cs, sizeof cs);
        fit->log(fit->ud, cs);
    }
    *state = st;
    return RLAB_OK;
}

static int sq_epoch(void *state, int e, int64_t *n_steps, rlab_err *err)
{
    (void)err;
    seqrec_state *st = state;
    sq_close_epoch(st);
    if (e > 1)
        rlab_seq_batcher_epoch(st->bt);
    st->epochs = e;
    st->t_epoch = rlab_now();
    st->c_epoch = cpu_now();
    *n_steps = rlab_seq_batcher_n_batches(st->bt);
    return RLAB_OK;
}

static int sq_step(void *state, int64_t i, double *loss, double *weight, double *parts,
                   rlab_err *err)
{
    (void)i;
    (void)weight;
    seqrec_state *st = state;
    int n = rlab_seq_batcher_next(st->bt);
    if (n <= 0) { /* nothing left in this epoch */
        *weight = 0.0;
        return RLAB_OK;
    }
    double p[4];
    /* this rank's rows of the batch (all of them alone); under MPI the step's loss weighs
     * by its valid positions, so the loop's sum over ranks is the global mean */
    int64_t lo, hi;
    rlab_fit_shard(n, &lo, &hi);
    const size_t T = (size_t)st->bt->T;
    int rc = seqrec_trainer_step(
        st->tr, st->bt->input + (size_t)lo * T, st->bt->target + (size_t)lo * T,
        st->bt->users ? st->bt->users + lo : NULL, (int)(hi - lo), st->step++, 1, p, err);
    if (st->tr->dp && rlab_mpi_size() > 1)
        *weight = (double)st->tr->nvalid;
    *loss = p[0];
    parts[0] = p[1];
    parts[1] = p[2];
    parts[2] = p[3];
    return rc;
}

static rlab_model *sq_model(void *state)
{
    seqrec_state *st = state;
    sq_close_epoch(st); /* validation follows the epoch's last step */
    return st->m;
}

static rlab_params *sq_params(void *state) { return ((seqrec_state *)state)->net->P; }

static const char *const sq_parts[] = {"loss_rec", "loss_kd", "loss_l2", NULL};

const rlab_fit_ops seqrec_fit_ops = {.begin = sq_begin,
                                     .epoch = sq_epoch,
                                     .step = sq_step,
                                     .part_names = sq_parts,
                                     .model = sq_model,
                                     .params = sq_params,
                                     .data_parallel = 1,
                                     .end = sq_end};
