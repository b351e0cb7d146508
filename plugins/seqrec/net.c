/*
 * plugins/seqrec/net.c: configuration, parameters and the forward pass shared by SASRec and
 * MQSA-TED (see seqrec.h for the equations and /work/shared/papers/models.md section 3.2).
 */
#include "seqrec.h"

#include "data/batch.h"
#include "tensor/nn.h"
#include "tensor/ops.h"

#include <cblas.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

static const char *const loss_choices[] = {"ce", "bce", "rank", NULL};
static const char *const ln_choices[] = {"pre", "post", NULL};
static const char *const branch_choices[] = {"both", "short", "long", NULL};
static const char *const init_choices[] = {"normal", "xavier", NULL};

/* The hyperparameters, once: train arguments, help, stored configs and checkpoints all come
 * from this table. Defaults are MQSA-TED's official main.py; SASRec's differ (below). */
const rlab_field seqrec_fields[] = {
    RLAB_FIELD_INT(seqrec_config, dim, "64", 1, 4096, "width d"),
    RLAB_FIELD_INT(seqrec_config, blocks, "1", 1, SEQREC_MAX_BLOCKS, "attention blocks"),
    RLAB_FIELD_INT(seqrec_config, heads, "1", 1, 64, "attention heads (dim % heads == 0)"),
    RLAB_FIELD_INT(seqrec_config, maxlen, "50", 2, 4096, "max sequence length T"),
    RLAB_FIELD_FLOAT(seqrec_config, dropout, "0.5", 0, 0.99, "dropout"),
    RLAB_FIELD_FLOAT(seqrec_config, lr, "0.001", 0, 10, "Adam learning rate"),
    RLAB_FIELD_FLOAT(seqrec_config, l2, "0.0001", 0, 1e3, "L2 on all parameters"),
    RLAB_FIELD_INT(seqrec_config, batch, "256", 1, 65536, "batch size"),
    RLAB_FIELD_CHOICE(seqrec_config, loss, "ce", loss_choices,
                      "ce (full softmax), bce (1 sampled negative; SASRec's original) or rank "
                      "(distillation from the dataset's teacher lists)"),
    RLAB_FIELD_CHOICE(seqrec_config, ln, "pre", ln_choices,
                      "pre (the original code) or post layer norm"),
    RLAB_FIELD_FLOAT(seqrec_config, ln_eps, "1e-24", 0, 1, "LN epsilon on the variance"),
    RLAB_FIELD_INT(seqrec_config, L, "3", 1, 4096, "L-query window (long branch)"),
    RLAB_FIELD_FLOAT(seqrec_config, alpha, "0.5", 0, 1, "short-branch logit weight"),
    RLAB_FIELD_FLOAT(seqrec_config, lambda_kd, "0.1", 0, 1e3, "TED weight"),
    RLAB_FIELD_FLOAT(seqrec_config, tau, "0.1", 1e-6, 1e3, "TED temperature"),
    RLAB_FIELD_BOOL(seqrec_config, ted, "true", "TED distillation"),
    RLAB_FIELD_CHOICE(seqrec_config, branches, "both", branch_choices,
                      "branches: both, short (no L-query), long"),
    RLAB_FIELD_BOOL(seqrec_config, pad_logit, "true",
                    "include the padding column in the CE softmax (as the official code)"),
    RLAB_FIELD_CHOICE(seqrec_config, init, "normal", init_choices,
                      "embedding init N(0, 0.01) or xavier"),
    RLAB_FIELD_INT(seqrec_config, chunk, "512", 1, 65536, "softmax rows per chunk"),
    RLAB_FIELD_FLOAT(seqrec_config, rank_margin, "0.5", 0, 100,
                     "loss=rank: hinge margin (Yue et al. 0.5)"),
    RLAB_FIELD_FLOAT(seqrec_config, repair, "0", 0, 1e3,
                     "loss=rank: weight of the bidirectional repair loss (0 = off)"),
    RLAB_FIELD_INT(seqrec_config, repair_k, "10", 1, 1000, "loss=rank: K of the repair loss"),
    RLAB_FIELD_STR(seqrec_config, semid, "",
                   "semantic-ID tokenizer (plugins/semid model): its code embeddings, one "
                   "table per level, are added to the item embeddings"),
    {0}};

/* MQSA-TED = the official main.py (d 64, lr 1e-3, l2 1e-4, batch 256, 200 epochs, seed 2023,
 * maxlen 50, dropout 0.5, 1 block, 1 head, L 3, alpha 0.5, lambda 0.1, tau 0.1); selection by
 * valid NDCG@20 with patience 20 (evaluate.save_result). */
const rlab_kv seqrec_mqsa_defaults[] = {
    {"epochs", "200"}, {"patience", "20"}, {"select", "ndcg@20"}, {"seed", "2023"}, {0, 0}};
/* SASRec = kang205's Beauty settings with d 64 and the CE loss: 2 blocks, batch 128, l2 0
 * (l2_emb), LN eps 1e-8 (modules.normalize), no TED, short branch only, real items only in
 * the softmax. Choice: the same N(0, 0.01) init as MQSA-TED for a like-for-like comparison
 * (init=xavier is kang205's embedding init). */
const rlab_kv seqrec_sasrec_defaults[] = {
    {"epochs", "200"},     {"patience", "20"},     {"select", "ndcg@20"},
    {"seed", "2023"},      {"blocks", "2"},        {"batch", "128"},
    {"l2", "0"},           {"ln_eps", "1e-08"},    {"ted", "false"},
    {"branches", "short"}, {"pad_logit", "false"}, {0, 0}};

seqrec_config seqrec_config_defaults(int model)
{
    seqrec_config c;
    memset(&c, 0, sizeof c);
    const rlab_kv *d = model == SEQREC_MQSA ? seqrec_mqsa_defaults : seqrec_sasrec_defaults;
    rlab_config_defaults(seqrec_fields, d, &c, NULL); /* the table's defaults always parse */
    c.model = model;
    c.epochs = 200;
    c.seed = 2023;
    return c;
}

void seqrec_config_str(const seqrec_config *c, char *buf, size_t size)
{
    static const char *const br[] = {"both", "short", "long"};
    snprintf(buf, size,
             "%s d=%d blocks=%d heads=%d T=%d drop=%g lr=%g l2=%g loss=%s ln=%s L=%d alpha=%g "
             "ted=%s lambda=%g tau=%g branches=%s padlogit=%d batch=%d seed=%llu",
             c->model == SEQREC_MQSA ? "mqsa" : "sasrec", c->dim, c->blocks, c->heads, c->maxlen,
             (double)c->dropout, (double)c->lr, (double)c->l2,
             c->loss == SEQREC_LOSS_BCE    ? "bce"
             : c->loss == SEQREC_LOSS_RANK ? "rank"
                                           : "ce",
             c->ln == SEQREC_LN_POST ? "post" : "pre", c->L, (double)c->alpha,
             c->ted ? "on" : "off", (double)c->lambda_kd, (double)c->tau, br[c->branches],
             c->pad_logit, c->batch, (unsigned long long)c->seed);
}

int seqrec_config_check(const seqrec_config *c, rlab_err *err)
{
    if (c->dim < 1 || c->heads < 1 || c->dim % c->heads)
        return rlab_errf(err, RLAB_EINVAL, "dim=%d must be a positive multiple of heads=%d", c->dim,
                         c->heads);
    if (c->blocks < 1 || c->blocks > SEQREC_MAX_BLOCKS)
        return rlab_errf(err, RLAB_EINVAL, "blocks=%d outside [1, %d]", c->blocks,
                         SEQREC_MAX_BLOCKS);
    if (c->maxlen < 2)
        return rlab_errf(err, RLAB_EINVAL, "maxlen=%d must be >= 2", c->maxlen);
    if (!(c->dropout >= 0.0f && c->dropout < 1.0f))
        return rlab_errf(err, RLAB_EINVAL, "dropout=%g outside [0, 1)", (double)c->dropout);
    if (c->L < 1)
        return rlab_errf(err, RLAB_EINVAL, "L=%d must be >= 1", c->L);
    if (!(c->tau > 0.0f))
        return rlab_errf(err, RLAB_EINVAL, "tau=%g must be > 0", (double)c->tau);
    if (c->batch < 1)
        return rlab_errf(err, RLAB_EINVAL, "batch=%d must be >= 1", c->batch);
    if (c->chunk < 0)
        return rlab_errf(err, RLAB_EINVAL, "chunk=%d must be >= 0", c->chunk);
    return RLAB_OK; /* BCE with MQSA-TED is allowed (BCE on the mixed hidden state) */
}

/* ---- parameters ------------------------------------------------------------------------- */

typedef struct spec_list {
    rlab_param_spec s[256];
    char names[256][48];
    int n;
} spec_list;

static int add_spec(spec_list *L, const char *name, int ndim, int64_t d0, int64_t d1, int init,
                    float scale)
{
    int i = L->n++;
    snprintf(L->names[i], sizeof L->names[i], "%s", name);
    L->s[i].name = L->names[i];
    L->s[i].ndim = ndim;
    L->s[i].shape[0] = d0;
    L->s[i].shape[1] = d1;
    L->s[i].init = init;
    L->s[i].scale = scale;
    return i;
}

static seqrec_ln add_ln(spec_list *L, const char *pre)
{
    char nm[48];
    seqrec_ln ln;
    snprintf(nm, sizeof nm, "%s.g", pre);
    ln.g = add_spec(L, nm, 1, 0, 0, RLAB_INIT_ONE, 0.0f);
    snprintf(nm, sizeof nm, "%s.b", pre);
    ln.b = add_spec(L, nm, 1, 0, 0, RLAB_INIT_ZERO, 0.0f);
    return ln;
}

/* tf.layers.dense: kernel [in, out] glorot-uniform, bias zeros. */
static seqrec_lin add_lin(spec_list *L, const char *pre)
{
    char nm[48];
    seqrec_lin l;
    snprintf(nm, sizeof nm, "%s.w", pre);
    l.w = add_spec(L, nm, 2, 0, 0, RLAB_INIT_XAVIER, 0.0f);
    snprintf(nm, sizeof nm, "%s.b", pre);
    l.b = add_spec(L, nm, 1, 0, 0, RLAB_INIT_ZERO, 0.0f);
    return l;
}

seqrec_net *seqrec_net_new(const seqrec_config *cfg, int32_t n_items, rlab_err *err)
{
    if (seqrec_config_check(cfg, err))
        return NULL;
    if (n_items < 1) {
        rlab_errf(err, RLAB_EINVAL, "seqrec: no items");
        return NULL;
    }
    seqrec_net *net = rlab_calloc(1, sizeof *net);
    spec_list *L = rlab_calloc(1, sizeof *L);
    if (!net || !L) {
        rlab_free(net);
        rlab_free(L);
        rlab_errf(err, RLAB_ENOMEM, "seqrec: out of memory");
        return NULL;
    }
    net->cfg = *cfg;
    net->n_items = n_items;
    const int d = cfg->dim;
    const int emb_init = cfg->init == SEQREC_INIT_XAVIER ? RLAB_INIT_XAVIER : RLAB_INIT_NORMAL;
    /* E has N + 1 rows: row N is the padding row, zero and never updated (MQSA-TED concats a
     * zero row; SASRec's embedding(zero_pad=True) likewise). */
    net->E = add_spec(L, "item_emb", 2, (int64_t)n_items + 1, d, emb_init, 0.01f);
    net->pos = add_spec(L, "pos_emb", 2, cfg->maxlen, d, emb_init, 0.01f);
    net->sid = cfg->sid_levels > 0
                   ? add_spec(L, "sid_emb", 2, (int64_t)cfg->sid_levels * cfg->sid_codes, d,
                              emb_init, 0.01f)
                   : -1;
    net->br[0].on = cfg->branches != SEQREC_BR_LONG;
    net->br[1].on = cfg->model == SEQREC_MQSA && cfg->branches != SEQREC_BR_SHORT;
    if (!net->br[0].on && !net->br[1].on)
        net->br[0].on = 1; /* SASRec ignores branches=long */
    static const char *const bname[2] = {"short", "long"};
    for (int b = 0; b < 2; b++) {
        if (!net->br[b].on)
            continue;
        for (int k = 0; k < cfg->blocks; k++) {
            char pre[40];
            seqrec_block *bl = &net->br[b].blk[k];
#define P_(s) (snprintf(pre, sizeof pre, "%s.%d.%s", bname[b], k, s), pre)
            bl->ln_q = add_ln(L, P_("ln_q"));
            bl->wq = add_lin(L, P_("wq"));
            bl->wk = add_lin(L, P_("wk"));
            bl->wv = add_lin(L, P_("wv"));
            bl->ln_a = add_ln(L, P_("ln_a"));
            bl->f1 = add_lin(L, P_("ffn1"));
            bl->f2 = add_lin(L, P_("ffn2"));
#undef P_
        }
        char pre[40];
        snprintf(pre, sizeof pre, "%s.ln_f", bname[b]);
        net->br[b].ln_f = add_ln(L, pre);
    }
    /* fill the shapes of 1-D (LN, bias: [d]) and 2-D linear ([d, d]) specs */
    for (int i = 0; i < L->n; i++) {
        if (L->s[i].ndim == 1)
            L->s[i].shape[0] = d;
        else if (L->s[i].shape[0] == 0) {
            L->s[i].shape[0] = d;
            L->s[i].shape[1] = d;
        }
    }
    rlab_rng rng;
    rlab_rng_seed(&rng, cfg->seed);
    net->P = rlab_params_new(L->s, L->n, &rng, err);
    rlab_free(L);
    if (!net->P) {
        rlab_free(net);
        return NULL;
    }
    rlab_tensor *E = &net->P->t[net->E];
    memset(E->data + (size_t)n_items * (size_t)d, 0, (size_t)d * sizeof(float));
    net->frozen = rlab_calloc((size_t)net->P->n, sizeof *net->frozen);
    if (!net->frozen) {
        seqrec_net_free(net);
        rlab_errf(err, RLAB_ENOMEM, "seqrec: out of memory");
        return NULL;
    }
    for (int i = 0; i < net->P->n; i++) {
        net->frozen[i] = net->P->t[i];
        net->frozen[i].grad = NULL;
        net->frozen[i].flags = 0;
        net->frozen[i].op = "input";
    }
    return net;
}

int seqrec_net_set_sid(seqrec_net *net, const int32_t *codes, int stride, rlab_err *err)
{
    const int L = net->cfg.sid_levels, K = net->cfg.sid_codes;
    const int32_t N = net->n_items;
    if (net->sid < 0 || L < 1 || stride < L)
        return rlab_errf(err, RLAB_EINVAL, "seqrec: this network has no semantic-ID table");
    int32_t *ids = rlab_malloc(((size_t)N + 1) * (size_t)L * sizeof *ids);
    if (!ids)
        return rlab_errf(err, RLAB_ENOMEM, "seqrec: out of memory");
    for (int32_t i = 0; i < N; i++)
        for (int l = 0; l < L; l++) {
            const int32_t c = codes[(size_t)i * stride + l];
            if (c < 0 || c >= K) {
                rlab_free(ids);
                return rlab_errf(err, RLAB_EINVAL,
                                 "seqrec: item %d has code %d at level %d, not in [0, %d)", (int)i,
                                 (int)c, l + 1, K);
            }
            ids[(size_t)i * L + l] = l * K + c;
        }
    for (int l = 0; l < L; l++)
        ids[(size_t)N * L + l] = -1;
    rlab_free(net->sid_ids);
    net->sid_ids = ids;
    return RLAB_OK;
}

rlab_tensor *seqrec_item_table(const seqrec_net *net, rlab_tape *t, rlab_tensor *W)
{
    if (net->sid < 0)
        return &W[net->E];
    if (!net->sid_ids)
        return rlab_tape_fail(t, RLAB_ESTATE, "seqrec: semantic-ID codes not set");
    const int L = net->cfg.sid_levels;
    const int64_t N1 = (int64_t)net->n_items + 1, d = net->cfg.dim;
    rlab_tensor *g =
        rlab_t_gather(t, &W[net->sid], net->sid_ids, N1 * L, -1, 3, (int64_t[]){N1, L, d});
    return rlab_t_add(t, &W[net->E], rlab_t_sum(t, g, 1));
}

void seqrec_net_free(seqrec_net *net)
{
    if (!net)
        return;
    rlab_params_free(net->P);
    rlab_free(net->frozen);
    rlab_free(net->sid_ids);
    rlab_free(net);
}

/* ---- forward ---------------------------------------------------------------------------- */

/* x W + b, and relu(x W + b), each one fused op (bias and ReLU applied right after the
 * product, one backward pass for both) */
static rlab_tensor *linear(rlab_tape *t, rlab_tensor *W, seqrec_lin l, rlab_tensor *x)
{
    return rlab_t_linear(t, x, &W[l.w], &W[l.b], NULL, RLAB_ACT_NONE);
}

static rlab_tensor *linear_relu(rlab_tape *t, rlab_tensor *W, seqrec_lin l, rlab_tensor *x)
{
    return rlab_t_linear(t, x, &W[l.w], &W[l.b], NULL, RLAB_ACT_RELU);
}

static rlab_tensor *lnorm(rlab_tape *t, rlab_tensor *W, seqrec_ln l, rlab_tensor *x, float eps)
{
    return rlab_t_layernorm(t, x, &W[l.g], &W[l.b], eps);
}

/* Layout. Position-wise ops (linear, LN, FFN, dropout, residuals) run on the compact rows of
 * the real positions only, [n, d]; attention and the L-query mean need the padded [B, Tb, d]
 * layout and get it through a gather (rows of padding are zero, and are masked out as keys
 * and zeroed as queries, exactly as the official code's masks do). On Beauty about 1 position
 * in 8 is real, so this removes most of the work of the blocks. */
typedef struct layout {
    int B, Tb;
    int64_t n;            /* real positions */
    const int32_t *comp;  /* [n] flat index b * Tb + t of each real position */
    const int32_t *padix; /* [B * Tb] compact row of each position, -1 = padding */
    const uint8_t *valid; /* [B * Tb] */
} layout;

static rlab_tensor *to_padded(rlab_tape *t, const layout *lo, rlab_tensor *xc)
{
    const int64_t shp[3] = {lo->B, lo->Tb, rlab_t_cols(xc)};
    return rlab_t_gather(t, xc, lo->padix, (int64_t)lo->B * lo->Tb, -1, 3, shp);
}

static rlab_tensor *to_compact(rlab_tape *t, const layout *lo, rlab_tensor *xp)
{
    rlab_tensor *flat =
        rlab_t_reshape(t, xp, 2, (int64_t[]){(int64_t)lo->B * lo->Tb, rlab_t_cols(xp)});
    return rlab_t_gather(t, flat, lo->comp, lo->n, -1, 0, NULL);
}

static rlab_tensor *attend(const seqrec_net *net, rlab_tape *t, const layout *lo, rlab_tensor *Q,
                           rlab_tensor *K, rlab_tensor *V)
{
    const seqrec_config *c = &net->cfg;
    /* key mask, causal mask, softmax, zero padded query rows, dropout on the weights */
    rlab_tensor *A =
        rlab_t_attention(t, to_padded(t, lo, Q), to_padded(t, lo, K), to_padded(t, lo, V), c->heads,
                         lo->valid, lo->valid, RLAB_ATTN_CAUSAL, c->dropout);
    return to_compact(t, lo, A);
}

/* One branch over the compact X0 [n, d]. long_q: the query is the causal L-mean. */
static rlab_tensor *branch(const seqrec_net *net, rlab_tape *t, rlab_tensor *W,
                           const seqrec_branch *br, int long_q, rlab_tensor *x, const layout *lo)
{
    const seqrec_config *c = &net->cfg;
    const float p = c->dropout, eps = c->ln_eps;
    for (int k = 0; k < c->blocks; k++) {
        const seqrec_block *bl = &br->blk[k];
        /* L-query: mean of the real rows among t, t-1, ..., t-L+1 of this block's input */
        rlab_tensor *q_in =
            long_q ? to_compact(t, lo,
                                rlab_t_causal_moving_avg(t, to_padded(t, lo, x), lo->valid, c->L))
                   : x;
        if (c->ln == SEQREC_LN_PRE) {
            /* MQSA_TED.py / kang205: Q = dense(LN(query)), K = dense(X), V = dense(X) */
            rlab_tensor *qn = lnorm(t, W, bl->ln_q, q_in, eps);
            rlab_tensor *A = attend(net, t, lo, linear(t, W, bl->wq, qn), linear(t, W, bl->wk, x),
                                    linear(t, W, bl->wv, x));
            A = rlab_t_add(t, A, qn); /* residual from the normalised query */
            rlab_tensor *O = lnorm(t, W, bl->ln_a, A, eps);
            rlab_tensor *F = rlab_t_dropout(t, linear_relu(t, W, bl->f1, O), p);
            F = rlab_t_dropout(t, linear(t, W, bl->f2, F), p);
            x = rlab_t_add(t, O, F); /* "* mask": compact rows are all real */
        } else {
            /* post-LN (choice, documented): X1 = LN(Xq + Attn(Xq Wq, X Wk, X Wv)),
             * X2 = LN(X1 + FFN(X1)); no final LN. */
            rlab_tensor *A = attend(net, t, lo, linear(t, W, bl->wq, q_in), linear(t, W, bl->wk, x),
                                    linear(t, W, bl->wv, x));
            rlab_tensor *X1 = lnorm(t, W, bl->ln_q, rlab_t_add(t, q_in, A), eps);
            rlab_tensor *F = rlab_t_dropout(t, linear_relu(t, W, bl->f1, X1), p);
            F = rlab_t_dropout(t, linear(t, W, bl->f2, F), p);
            x = lnorm(t, W, bl->ln_a, rlab_t_add(t, X1, F), eps);
        }
    }
    if (c->ln == SEQREC_LN_PRE)
        x = lnorm(t, W, br->ln_f, x, eps);
    return x;
}

rlab_tensor *seqrec_forward(const seqrec_net *net, rlab_tape *t, rlab_tensor *W, const int32_t *ids,
                            const uint8_t *valid, const int32_t *pos_ids, int B, int Tb,
                            const int32_t **padix_out)
{
    return seqrec_forward_tab(net, t, W, seqrec_item_table(net, t, W), ids, valid, pos_ids, B, Tb,
                              padix_out);
}

rlab_tensor *seqrec_forward_tab(const seqrec_net *net, rlab_tape *t, rlab_tensor *W,
                                rlab_tensor *Etab, const int32_t *ids, const uint8_t *valid,
                                const int32_t *pos_ids, int B, int Tb, const int32_t **padix_out)
{
    const seqrec_config *c = &net->cfg;
    const int64_t nt = (int64_t)B * Tb;
    int32_t *padix = rlab_tape_alloc(t, (size_t)nt * sizeof(int32_t));
    int32_t *comp = rlab_tape_alloc(t, (size_t)(nt ? nt : 1) * sizeof(int32_t));
    int32_t *cid = rlab_tape_alloc(t, (size_t)(nt ? nt : 1) * sizeof(int32_t));
    int32_t *cpos = rlab_tape_alloc(t, (size_t)(nt ? nt : 1) * sizeof(int32_t));
    if (!padix || !comp || !cid || !cpos)
        return rlab_tape_fail(t, RLAB_ENOMEM, "seqrec: arena full");
    int64_t n = 0;
    for (int64_t i = 0; i < nt; i++) {
        if (valid[i]) {
            comp[n] = (int32_t)i;
            cid[n] = ids[i];
            cpos[n] = pos_ids[i];
            padix[i] = (int32_t)n++;
        } else
            padix[i] = -1;
    }
    if (padix_out)
        *padix_out = padix;
    if (n == 0)
        return rlab_tape_fail(t, RLAB_EINVAL, "seqrec: a batch without any real position");
    layout lo = {.B = B, .Tb = Tb, .n = n, .comp = comp, .padix = padix, .valid = valid};
    rlab_tensor *x = rlab_t_gather(t, Etab, cid, n, net->n_items, 0, NULL);
    x = rlab_t_scale(t, x, sqrtf((float)c->dim));
    x = rlab_t_add(t, x, rlab_t_gather(t, &W[net->pos], cpos, n, -1, 0, NULL));
    x = rlab_t_dropout(t, x, c->dropout);
    rlab_tensor *hs = net->br[0].on ? branch(net, t, W, &net->br[0], 0, x, &lo) : NULL;
    rlab_tensor *hl = net->br[1].on ? branch(net, t, W, &net->br[1], 1, x, &lo) : NULL;
    if (hs && hl) {
        /* alpha * (H_s E^T) + (1 - alpha) * (H_l E^T) == (alpha H_s + (1 - alpha) H_l) E^T:
         * mixing before the (linear) output product gives the same logits with one product.
         */
        return rlab_t_add(t, rlab_t_scale(t, hs, c->alpha), rlab_t_scale(t, hl, 1.0f - c->alpha));
    }
    return hs ? hs : hl;
}

size_t seqrec_arena_bytes(const seqrec_config *c, int32_t n_items, int B, int T, int training)
{
    const size_t act = (size_t)B * (size_t)T * (size_t)c->dim * sizeof(float);
    const int nbr = (c->model == SEQREC_MQSA && c->branches == SEQREC_BR_BOTH) ? 2 : 1;
    /* ~22 [B,T,d] tensors per block, the embedding stage and the mix ~10 */
    size_t per = act * (training ? 2 : 1);
    size_t bytes = per * (size_t)(22 * c->blocks * nbr + 12);
    bytes += (size_t)B * (size_t)c->heads * (size_t)T * (size_t)T * sizeof(float) *
             (size_t)(c->blocks * nbr) * 2;
    size_t chunk = (size_t)(c->chunk > 0 ? c->chunk : 512);
    bytes += chunk * ((size_t)n_items + 1) * sizeof(float) * 4; /* softmax chunk buffers */
    /* the item table packed for the logits kernel, once per loss (CE and TED) */
    bytes += 2 * ((size_t)n_items + 17) * (size_t)c->dim * sizeof(float);
    /* (training: the CE runs on the trainer's head tape, chunk by chunk, not here) */
    bytes += (size_t)B * (size_t)T * 64; /* ids, masks, per-row stats */
    if (c->sid_levels > 0) /* seqrec_item_table: gathered code rows, their sum, E + sum */
        bytes += ((size_t)n_items + 1) * (size_t)c->dim * sizeof(float) *
                 ((size_t)c->sid_levels + 2) * (training ? 2 : 1);
    return bytes + (16u << 20);
}

void seqrec_window(const seqrec_net *net, const int32_t *hist, int32_t n, int32_t *ids)
{
    const int T = net->cfg.maxlen;
    int32_t take = n < T ? n : T;
    for (int t = 0; t < T - take; t++)
        ids[t] = net->n_items;
    for (int32_t k = 0; k < take; k++)
        ids[T - take + k] = hist[n - take + k];
}

int seqrec_infer(const seqrec_net *net, const int32_t *ids, int B, float *scores, float *repr,
                 rlab_err *err)
{
    return seqrec_infer_tape(net, NULL, ids, B, scores, repr, err);
}

int seqrec_infer_tape(const seqrec_net *net, rlab_tape *given, const int32_t *ids, int B,
                      float *scores, float *repr, rlab_err *err)
{
    const int T = net->cfg.maxlen, d = net->cfg.dim;
    const int32_t N = net->n_items;
    /* trim the leading columns that are padding in every row (absolute positions kept) */
    int Tb = 1;
    for (int b = 0; b < B; b++) {
        int len = 0;
        for (int t = T - 1; t >= 0 && ids[(size_t)b * T + t] != N; t--)
            len++;
        if (len > Tb)
            Tb = len;
    }
    const int CH = 512; /* rows per tape */
    int Bc = B < CH ? B : CH;
    rlab_tape *tape = given;
    if (!tape) {
        tape = rlab_tape_new(seqrec_arena_bytes(&net->cfg, N, Bc, Tb, 0), 1024, err);
        if (!tape)
            return err->code;
    }
    rlab_tape_set_training(tape, 0);
    int rc = RLAB_OK;
    float *hl = rlab_malloc((size_t)Bc * (size_t)d * sizeof(float));
    int32_t *bid = rlab_malloc((size_t)Bc * (size_t)Tb * sizeof(int32_t));
    int32_t *pid = rlab_malloc((size_t)Bc * (size_t)Tb * sizeof(int32_t));
    uint8_t *val = rlab_malloc((size_t)Bc * (size_t)Tb);
    if (!hl || !bid || !pid || !val) {
        rc = rlab_errf(err, RLAB_ENOMEM, "seqrec: out of memory");
        goto done;
    }
    for (int b0 = 0; b0 < B; b0 += Bc) {
        int nb = B - b0 < Bc ? B - b0 : Bc;
        for (int b = 0; b < nb; b++)
            for (int t = 0; t < Tb; t++) {
                int32_t id = ids[(size_t)(b0 + b) * T + (T - Tb + t)];
                bid[(size_t)b * Tb + t] = id;
                pid[(size_t)b * Tb + t] = T - Tb + t;
                val[(size_t)b * Tb + t] = id != N;
            }
        rlab_tape_reset(tape);
        const int32_t *padix = NULL;
        rlab_tensor *Etab = seqrec_item_table(net, tape, net->frozen);
        rlab_tensor *H =
            seqrec_forward_tab(net, tape, net->frozen, Etab, bid, val, pid, nb, Tb, &padix);
        if (rlab_tape_error(tape)) {
            rc =
                rlab_errf(err, rlab_tape_error(tape), "seqrec forward: %s", rlab_tape_errmsg(tape));
            goto done;
        }
        for (int b = 0; b < nb; b++) {
            const int32_t r = padix[(size_t)b * Tb + (size_t)(Tb - 1)];
            if (r >= 0)
                memcpy(hl + (size_t)b * d, H->data + (size_t)r * d, (size_t)d * sizeof(float));
            else /* empty history: no state; every item scores 0 */
                memset(hl + (size_t)b * d, 0, (size_t)d * sizeof(float));
        }
        if (repr)
            memcpy(repr + (size_t)b0 * d, hl, (size_t)nb * (size_t)d * sizeof(float));
        if (scores) {
            // scores [nb, N] = hl [nb, d] E[:N]^T
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nb, N, d, 1.0f, hl, d, Etab->data,
                        d, 0.0f, scores + (size_t)b0 * N, N);
        }
    }
done:
    rlab_free(hl);
    rlab_free(bid);
    rlab_free(pid);
    rlab_free(val);
    if (tape != given)
        rlab_tape_free(tape);
    return rc;
}
