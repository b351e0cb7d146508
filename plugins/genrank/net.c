/*
 * plugins/genrank/net.c: the config schema, the item-code trie, and the encoder-decoder
 * network (parameters, encoder, decoder with cross-attention and sparse MoE, the per-level
 * heads, the next-token loss and per-sequence log-probabilities).
 */
#include "genrank.h"

#include "tensor/loss.h"
#include "tensor/nn.h"
#include "tensor/ops.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

const char *const genrank_loser_choices[] = {"worst", "far", NULL};
const char *const genrank_guard_choices[] = {"off", "fixed", "ci", "se", NULL};
const char *const genrank_adam_choices[] = {"fresh", "keep", NULL};

const rlab_field genrank_fields[] = {
    RLAB_FIELD_STR(genrank_cfg, semid, "",
                   "the semantic-ID tokenizer model (train rkmeans|brkmeans|rqvae first); \"\" = "
                   "residual k-means of the item content inline (levels, codes)"),
    RLAB_FIELD_INT(genrank_cfg, levels, "3", 1, GENRANK_MAX_LEVELS - 1,
                   "inline tokenizer: code levels (a de-duplication digit is added)"),
    RLAB_FIELD_INT(genrank_cfg, codes, "32", 2, 65536, "inline tokenizer: codes per level"),
    RLAB_FIELD_INT(genrank_cfg, session, "5", 1, 64,
                   "m: items generated per request (1 = point-wise, TIGER-like)"),
    RLAB_FIELD_INT(genrank_cfg, dim, "64", 4, 4096, "model width d"),
    RLAB_FIELD_INT(genrank_cfg, heads, "2", 1, 64, "attention heads (dim % heads == 0)"),
    RLAB_FIELD_INT(genrank_cfg, enc_layers, "2", 1, GENRANK_MAX_LAYERS, "encoder blocks"),
    RLAB_FIELD_INT(genrank_cfg, dec_layers, "2", 1, GENRANK_MAX_LAYERS, "decoder blocks"),
    RLAB_FIELD_INT(genrank_cfg, ffn, "128", 1, 1 << 16, "FFN / expert hidden width"),
    RLAB_FIELD_INT(genrank_cfg, experts, "4", 1, GENRANK_MAX_EXPERTS, "decoder MoE experts N"),
    RLAB_FIELD_INT(genrank_cfg, topk, "2", 1, GENRANK_MAX_EXPERTS, "experts per token"),
    RLAB_FIELD_FLOAT(genrank_cfg, aux, "0.01", 0, 100, "weight of the load-balancing loss"),
    RLAB_FIELD_INT(genrank_cfg, maxlen, "50", 1, 4096, "history items the encoder sees"),
    RLAB_FIELD_FLOAT(genrank_cfg, dropout, "0.1", 0, 0.9, "dropout while training"),
    RLAB_FIELD_DOUBLE(genrank_cfg, lr, "0.001", 0, 10, "Adam learning rate"),
    RLAB_FIELD_INT(genrank_cfg, batch, "128", 1, 1 << 16, "training samples per step"),
    RLAB_FIELD_INT(genrank_cfg, samples, "8", 0, 1 << 20,
                   "training samples per user per epoch (0 = every position)"),
    RLAB_FIELD_INT(genrank_cfg, beam, "20", 1, 1024, "beam width of eval / recommend"),
    RLAB_FIELD_INT(genrank_cfg, r_dim, "32", 2, 4096, "reward model: item vector width"),
    RLAB_FIELD_INT(genrank_cfg, r_epochs, "5", 1, 10000, "reward model: training epochs"),
    RLAB_FIELD_FLOAT(genrank_cfg, like_w, "0.5", 0, 1,
                     "reward = like_w * P(like) + (1 - like_w) * watch, mean over the session"),
    RLAB_FIELD_FLOAT(genrank_cfg, beta, "0.1", 0.0001, 1000, "IPA: DPO temperature beta"),
    RLAB_FIELD_FLOAT(genrank_cfg, lambda, "0.5", 0, 1000, "IPA: L = L_NTP + lambda * L_DPO"),
    RLAB_FIELD_FLOAT(genrank_cfg, ipa_frac, "0.2", 0.0001, 1,
                     "IPA: fraction of users whose beams give preference pairs"),
    RLAB_FIELD_INT(genrank_cfg, ipa_beam, "16", 2, 1024, "IPA: sessions beam-searched per user N"),
    RLAB_FIELD_INT(genrank_cfg, ipa_epochs, "2", 1, 1000, "IPA: passes over the pairs"),
    RLAB_FIELD_INT(genrank_cfg, pairs, "16", 1, 4096, "IPA: DPO pairs per step"),
    RLAB_FIELD_DOUBLE(genrank_cfg, ipa_lr, "0", 0, 10,
                      "IPA: Adam learning rate of the alignment steps (0 = lr)"),
    RLAB_FIELD_FLOAT(genrank_cfg, dpo_smooth, "0.25", 0, 0.49,
                     "IPA: conservative DPO, the preference label smoothed by epsilon"),
    RLAB_FIELD_CHOICE(genrank_cfg, ipa_loser, "worst", genrank_loser_choices,
                      "IPA: the pair's loser: worst = lowest reward, far = the lower-reward "
                      "session sharing the fewest items with the winner"),
    RLAB_FIELD_BOOL(genrank_cfg, ipa_dropout, "true",
                    "IPA: the next-token term of the alignment steps with dropout (as training)"),
    RLAB_FIELD_INT(genrank_cfg, ipa_warmup, "0", 0, 1 << 20,
                   "IPA: steps of linear learning-rate warm-up of a fresh Adam (ipa_adam=fresh)"),
    RLAB_FIELD_CHOICE(genrank_cfg, ipa_adam, "fresh", genrank_adam_choices,
                      "IPA: the alignment steps' Adam: fresh = new moments each iteration, keep "
                      "= continue the training's (moments and step count, then each iterate's)"),
    RLAB_FIELD_FLOAT(genrank_cfg, ipa_ntp, "1", 0, 1000,
                     "IPA: L = ipa_ntp * L_NTP + lambda * L_DPO (0 = DPO only)"),
    RLAB_FIELD_CHOICE(genrank_cfg, ipa_guard, "se", genrank_guard_choices,
                      "IPA validation guard: off; fixed = reject an update whose validation "
                      "session recall@10 falls more than ipa_guard_tol below the previous "
                      "iterate's; ci = more than the paired bootstrap half-width; se = more "
                      "than ipa_guard_z standard errors of the paired difference"),
    RLAB_FIELD_FLOAT(genrank_cfg, ipa_guard_tol, "0.005", -1, 1,
                     "IPA guard (fixed): the largest accepted drop of validation recall@10 (< 0: "
                     "the smallest demanded gain)"),
    RLAB_FIELD_INT(genrank_cfg, ipa_guard_tries, "3", 1, 16,
                   "IPA guard: tries per iteration, each retry with lambda halved; none passes "
                   "= the previous iterate is kept"),
    RLAB_FIELD_BOOL(genrank_cfg, ipa_guard_lr, "false",
                    "IPA guard: a retry also halves the IPA learning rate"),
    RLAB_FIELD_BOOL(genrank_cfg, ipa_guard_lambda, "true",
                    "IPA guard: a retry halves lambda (false: lambda kept)"),
    RLAB_FIELD_FLOAT(genrank_cfg, ipa_guard_z, "1", 0, 10,
                     "IPA guard (se): the largest accepted drop in standard errors of the "
                     "paired difference"),
    RLAB_FIELD_INT(genrank_cfg, ipa_guard_users, "2000", 0, 1 << 30,
                   "IPA guard: users measured, evenly spaced among those with a validation item "
                   "(0 = every one)"),
    RLAB_FIELD_INT(genrank_cfg, ipa_guard_window, "1", 1, 64,
                   "IPA guard: held-out items per user, the validation item and the last "
                   "window - 1 training items (the guard's input stops before them)"),
    RLAB_FIELD_FLOAT(genrank_cfg, ipa_margin, "0", 0, 1,
                     "IPA: a preference pair needs a reward gap of at least this (0 = any)"),
    {0}};

const rlab_kv genrank_onerec_defaults[] = {
    {"epochs", "20"}, {"eval_every", "5"}, {"select", "ndcg@10"}, {"patience", "0"}, {0, 0}};
const rlab_kv genrank_tiger_defaults[] = {{"session", "1"},    {"epochs", "20"},
                                          {"eval_every", "5"}, {"select", "ndcg@10"},
                                          {"patience", "0"},   {0, 0}};

int genrank_cfg_check(const genrank_cfg *c, rlab_err *err)
{
    if (c->dim % c->heads)
        return rlab_errf(err, RLAB_EINVAL, "genrank: dim %d is not a multiple of heads %d", c->dim,
                         c->heads);
    if (c->topk > c->experts)
        return rlab_errf(err, RLAB_EINVAL, "genrank: topk %d > experts %d", c->topk, c->experts);
    return RLAB_OK;
}

/* ---- codes and trie ------------------------------------------------------------------------- */

void genrank_codes_clear(genrank_codes *c)
{
    if (!c)
        return;
    rlab_free(c->codes);
    for (int l = 0; l < GENRANK_MAX_LEVELS; l++)
        rlab_free(c->child[l]);
    memset(c, 0, sizeof *c);
}

int genrank_codes_init(genrank_codes *c, const int32_t *codes, int32_t n, int Lt, rlab_err *err)
{
    memset(c, 0, sizeof *c);
    if (Lt < 1 || Lt > GENRANK_MAX_LEVELS || n < 1)
        return rlab_errf(err, RLAB_EINVAL, "genrank: %d items with %d code levels (1..%d)", (int)n,
                         Lt, GENRANK_MAX_LEVELS);
    c->n_items = n;
    c->Lt = Lt;
    c->codes = rlab_malloc((size_t)n * (size_t)Lt * sizeof(int32_t));
    if (!c->codes)
        return rlab_errf(err, RLAB_ENOMEM, "genrank: out of memory");
    memcpy(c->codes, codes, (size_t)n * (size_t)Lt * sizeof(int32_t));
    for (int64_t i = 0; i < (int64_t)n * Lt; i++) {
        int l = (int)(i % Lt);
        if (codes[i] < 0 || codes[i] > (1 << 20)) {
            genrank_codes_clear(c);
            return rlab_errf(err, RLAB_EINVAL, "genrank: item %lld has code %d at level %d",
                             (long long)(i / Lt), (int)codes[i], l + 1);
        }
        if (codes[i] + 1 > c->K[l])
            c->K[l] = codes[i] + 1;
    }
    /* nodes per level: level 0 has the root; the others at most n */
    c->nn[0] = 1;
    for (int l = 0; l < Lt; l++) {
        int64_t cap = l == 0 ? 1 : n;
        c->child[l] = rlab_malloc((size_t)cap * (size_t)c->K[l] * sizeof(int32_t));
        if (!c->child[l]) {
            genrank_codes_clear(c);
            return rlab_errf(err, RLAB_ENOMEM, "genrank: out of memory (trie)");
        }
        memset(c->child[l], 0xff, (size_t)cap * (size_t)c->K[l] * sizeof(int32_t));
    }
    for (int l = 1; l < Lt; l++)
        c->nn[l] = 0;
    for (int32_t i = 0; i < n; i++) {
        int32_t node = 0;
        for (int l = 0; l < Lt; l++) {
            int32_t *slot = &c->child[l][(int64_t)node * c->K[l] + c->codes[(int64_t)i * Lt + l]];
            if (l == Lt - 1) {
                if (*slot >= 0) {
                    rlab_errf(err, RLAB_EINVAL,
                              "genrank: items %d and %d have the same semantic ID (the tokenizer "
                              "must append its de-duplication digit)",
                              (int)*slot, (int)i);
                    genrank_codes_clear(c);
                    return RLAB_EINVAL;
                }
                *slot = i;
            } else {
                if (*slot < 0)
                    *slot = c->nn[l + 1]++;
                node = *slot;
            }
        }
    }
    return RLAB_OK;
}

int32_t genrank_codes_item(const genrank_codes *c, const int32_t *tuple)
{
    int32_t node = 0;
    for (int l = 0; l < c->Lt; l++) {
        if (tuple[l] < 0 || tuple[l] >= c->K[l] || node < 0)
            return -1;
        node = c->child[l][(int64_t)node * c->K[l] + tuple[l]];
    }
    return node;
}

/* ---- parameters ----------------------------------------------------------------------------- */

typedef struct spec_list {
    rlab_param_spec s[512];
    char names[512][48];
    int n;
} spec_list;

static int add_spec(spec_list *L, int *idx, const char *name, int ndim, int64_t a, int64_t b,
                    int64_t c, int init, float scale)
{
    if (L->n >= 512)
        return -1;
    snprintf(L->names[L->n], sizeof L->names[0], "%s", name);
    rlab_param_spec *s = &L->s[L->n];
    s->name = L->names[L->n];
    s->ndim = ndim;
    s->shape[0] = a;
    s->shape[1] = b;
    s->shape[2] = c;
    s->init = init;
    s->scale = scale;
    *idx = L->n++;
    return 0;
}

static void make_specs(const genrank_cfg *c, const genrank_codes *cd, int S, spec_list *L,
                       genrank_net *net)
{
    const int d = c->dim, F = c->ffn, E = c->experts;
    char nm[48];
    for (int l = 0; l < cd->Lt; l++) {
        snprintf(nm, sizeof nm, "enc.emb.%d", l);
        add_spec(L, &net->enc_emb[l], nm, 2, cd->K[l], d, 0, RLAB_INIT_NORMAL, 0.02f);
        snprintf(nm, sizeof nm, "dec.emb.%d", l);
        add_spec(L, &net->dec_emb[l], nm, 2, cd->K[l], d, 0, RLAB_INIT_NORMAL, 0.02f);
        snprintf(nm, sizeof nm, "head.%d.weight", l);
        add_spec(L, &net->head[l], nm, 2, cd->K[l], d, 0, RLAB_INIT_NORMAL, 0.02f);
        snprintf(nm, sizeof nm, "head.%d.bias", l);
        add_spec(L, &net->head_b[l], nm, 1, cd->K[l], 0, 0, RLAB_INIT_ZERO, 0);
    }
    add_spec(L, &net->enc_pos, "enc.pos", 2, c->maxlen, d, 0, RLAB_INIT_NORMAL, 0.02f);
    add_spec(L, &net->dec_bos, "dec.bos", 2, 1, d, 0, RLAB_INIT_NORMAL, 0.02f);
    add_spec(L, &net->dec_pos, "dec.pos", 2, S, d, 0, RLAB_INIT_NORMAL, 0.02f);
    add_spec(L, &net->enc_lnf_g, "enc.lnf.g", 1, d, 0, 0, RLAB_INIT_ONE, 0);
    add_spec(L, &net->enc_lnf_b, "enc.lnf.b", 1, d, 0, 0, RLAB_INIT_ZERO, 0);
    add_spec(L, &net->dec_lnf_g, "dec.lnf.g", 1, d, 0, 0, RLAB_INIT_ONE, 0);
    add_spec(L, &net->dec_lnf_b, "dec.lnf.b", 1, d, 0, 0, RLAB_INIT_ZERO, 0);
    for (int side = 0; side < 2; side++) {
        const int nl = side == 0 ? c->enc_layers : c->dec_layers;
        const char *p = side == 0 ? "enc" : "dec";
        for (int i = 0; i < nl; i++) {
            genrank_blk *b = side == 0 ? &net->enc[i] : &net->dec[i];
#define SPEC(field, suffix, nd, a, bb, cc, init, sc)                                               \
    do {                                                                                           \
        snprintf(nm, sizeof nm, "%s.%d.%s", p, i, suffix);                                         \
        add_spec(L, &b->field, nm, nd, a, bb, cc, init, sc);                                       \
    } while (0)
            SPEC(ln1g, "ln1.g", 1, d, 0, 0, RLAB_INIT_ONE, 0);
            SPEC(ln1b, "ln1.b", 1, d, 0, 0, RLAB_INIT_ZERO, 0);
            SPEC(wq, "self.wq", 2, d, d, 0, RLAB_INIT_XAVIER, 0);
            SPEC(wk, "self.wk", 2, d, d, 0, RLAB_INIT_XAVIER, 0);
            SPEC(wv, "self.wv", 2, d, d, 0, RLAB_INIT_XAVIER, 0);
            SPEC(wo, "self.wo", 2, d, d, 0, RLAB_INIT_XAVIER, 0);
            SPEC(ln2g, "ln2.g", 1, d, 0, 0, RLAB_INIT_ONE, 0);
            SPEC(ln2b, "ln2.b", 1, d, 0, 0, RLAB_INIT_ZERO, 0);
            if (side == 0) {
                SPEC(f1, "ffn.w1", 2, d, F, 0, RLAB_INIT_XAVIER, 0);
                SPEC(fb1, "ffn.b1", 1, F, 0, 0, RLAB_INIT_ZERO, 0);
                SPEC(f2, "ffn.w2", 2, F, d, 0, RLAB_INIT_XAVIER, 0);
                SPEC(fb2, "ffn.b2", 1, d, 0, 0, RLAB_INIT_ZERO, 0);
            } else {
                SPEC(cq, "cross.wq", 2, d, d, 0, RLAB_INIT_XAVIER, 0);
                SPEC(ck, "cross.wk", 2, d, d, 0, RLAB_INIT_XAVIER, 0);
                SPEC(cv, "cross.wv", 2, d, d, 0, RLAB_INIT_XAVIER, 0);
                SPEC(co, "cross.wo", 2, d, d, 0, RLAB_INIT_XAVIER, 0);
                SPEC(ln3g, "ln3.g", 1, d, 0, 0, RLAB_INIT_ONE, 0);
                SPEC(ln3b, "ln3.b", 1, d, 0, 0, RLAB_INIT_ZERO, 0);
                SPEC(gate, "moe.gate", 2, d, E, 0, RLAB_INIT_NORMAL, 0.02f);
                SPEC(e1, "moe.w1", 3, E, d, F, RLAB_INIT_XAVIER, 0);
                SPEC(eb1, "moe.b1", 2, E, F, 0, RLAB_INIT_ZERO, 0);
                SPEC(e2, "moe.w2", 3, E, F, d, RLAB_INIT_XAVIER, 0);
                SPEC(eb2, "moe.b2", 2, E, d, 0, RLAB_INIT_ZERO, 0);
            }
#undef SPEC
        }
    }
}

static int make_frozen(genrank_net *net, rlab_err *err)
{
    net->frozen = rlab_calloc((size_t)net->P->n, sizeof *net->frozen);
    if (!net->frozen)
        return rlab_errf(err, RLAB_ENOMEM, "genrank: out of memory");
    for (int i = 0; i < net->P->n; i++) {
        net->frozen[i] = net->P->t[i];
        net->frozen[i].grad = NULL;
        net->frozen[i].flags = 0;
        net->frozen[i].op = "input";
    }
    return RLAB_OK;
}

genrank_net *genrank_net_new(const genrank_cfg *cfg, const int32_t *codes, int32_t n_items, int Lt,
                             rlab_err *err)
{
    if (genrank_cfg_check(cfg, err))
        return NULL;
    genrank_net *net = rlab_calloc(1, sizeof *net);
    spec_list *L = rlab_calloc(1, sizeof *L);
    if (!net || !L) {
        rlab_free(net);
        rlab_free(L);
        rlab_errf(err, RLAB_ENOMEM, "genrank: out of memory");
        return NULL;
    }
    net->cfg = *cfg;
    if (genrank_codes_init(&net->codes, codes, n_items, Lt, err)) {
        rlab_free(L);
        rlab_free(net);
        return NULL;
    }
    net->S = cfg->session * Lt;
    make_specs(cfg, &net->codes, net->S, L, net);
    rlab_rng rng;
    rlab_rng_seed(&rng, cfg->seed ^ 0x67656e72616e6bULL);
    net->P = rlab_params_new(L->s, L->n, &rng, err);
    rlab_free(L);
    if (!net->P || make_frozen(net, err)) {
        genrank_net_free(net);
        return NULL;
    }
    return net;
}

genrank_net *genrank_net_clone(const genrank_net *src, rlab_err *err)
{
    genrank_net *net =
        genrank_net_new(&src->cfg, src->codes.codes, src->codes.n_items, src->codes.Lt, err);
    if (!net)
        return NULL;
    memcpy(net->P->data, src->P->data, src->P->count * sizeof(float));
    net->ipa_iter = src->ipa_iter;
    if (src->pop) {
        net->pop = rlab_malloc((size_t)src->codes.n_items * sizeof(int32_t));
        if (!net->pop) {
            genrank_net_free(net);
            rlab_errf(err, RLAB_ENOMEM, "genrank: out of memory");
            return NULL;
        }
        memcpy(net->pop, src->pop, (size_t)src->codes.n_items * sizeof(int32_t));
    }
    if (src->adam_m && genrank_net_set_adam(net, src->adam_m, src->adam_v, src->adam_t, err)) {
        genrank_net_free(net);
        return NULL;
    }
    return net;
}

int genrank_net_set_adam(genrank_net *net, const float *m, const float *v, int64_t t, rlab_err *err)
{
    const size_t nb = net->P->count * sizeof(float);
    rlab_free(net->adam_m);
    rlab_free(net->adam_v);
    net->adam_m = rlab_malloc(nb);
    net->adam_v = rlab_malloc(nb);
    if (!net->adam_m || !net->adam_v)
        return rlab_errf(err, RLAB_ENOMEM, "genrank: out of memory");
    memcpy(net->adam_m, m, nb);
    memcpy(net->adam_v, v, nb);
    net->adam_t = t;
    return RLAB_OK;
}

int genrank_net_keep_adam(genrank_net *net, rlab_opt *opt, rlab_err *err)
{
    const size_t n = net->P->count;
    if (rlab_opt_state_count(opt) != n || !rlab_opt_state_m(opt) || !rlab_opt_state_v(opt))
        return rlab_errf(err, RLAB_EINVAL, "genrank: the optimiser is not an Adam over the model");
    if (!net->adam_m)
        net->adam_m = rlab_malloc(n * sizeof(float));
    if (!net->adam_v)
        net->adam_v = rlab_malloc(n * sizeof(float));
    if (!net->adam_m || !net->adam_v)
        return rlab_errf(err, RLAB_ENOMEM, "genrank: out of memory");
    memcpy(net->adam_m, rlab_opt_state_m(opt), n * sizeof(float));
    memcpy(net->adam_v, rlab_opt_state_v(opt), n * sizeof(float));
    net->adam_t = rlab_opt_steps(opt);
    return RLAB_OK;
}

int genrank_net_resume_adam(const genrank_net *net, rlab_opt *opt, rlab_err *err)
{
    const size_t n = net->P->count;
    if (!net->adam_m || !net->adam_v)
        return rlab_errf(err, RLAB_EINVAL,
                         "genrank: ipa_adam=keep needs the training's optimiser state, and this "
                         "model has none (a checkpoint saved without it): use ipa_adam=fresh");
    if (rlab_opt_state_count(opt) != n || !rlab_opt_state_m(opt) || !rlab_opt_state_v(opt))
        return rlab_errf(err, RLAB_EINVAL, "genrank: the optimiser is not an Adam over the model");
    memcpy(rlab_opt_state_m(opt), net->adam_m, n * sizeof(float));
    memcpy(rlab_opt_state_v(opt), net->adam_v, n * sizeof(float));
    rlab_opt_set_steps(opt, net->adam_t);
    return RLAB_OK;
}

void genrank_net_free(genrank_net *net)
{
    if (!net)
        return;
    rlab_params_free(net->P);
    rlab_free(net->frozen);
    rlab_free(net->pop);
    rlab_free(net->adam_m);
    rlab_free(net->adam_v);
    genrank_codes_clear(&net->codes);
    rlab_free(net);
}

size_t genrank_arena_bytes(const genrank_cfg *c, int n_items, int B)
{
    (void)n_items;
    const size_t n = (size_t)c->maxlen, S = (size_t)c->session * GENRANK_MAX_LEVELS + 1;
    const size_t d = (size_t)c->dim, F = (size_t)c->ffn, H = (size_t)c->heads;
    const size_t layers = (size_t)(c->enc_layers + c->dec_layers);
    /* activations + grads (x2) of every op per token, attention probabilities, MoE buffers,
     * and the head logits, with slack */
    size_t tok = (size_t)B * (n + S);
    size_t per = tok * (d * 24 + F * 4 + (size_t)c->topk * (F + d) * 4) * layers;
    size_t att = (size_t)B * H * (n * n + S * S + S * n) * layers * 2;
    size_t head = (size_t)B * S * 4096;
    return (per + att + head) * sizeof(float) * 2 + (64u << 20);
}

/* ---- forward -------------------------------------------------------------------------------- */

static rlab_tensor *lin(rlab_tape *t, rlab_tensor *W, rlab_tensor *x, int w, int b)
{
    rlab_tensor *y = rlab_t_matmul(t, x, &W[w], 0, 0);
    return b >= 0 ? rlab_t_add(t, y, &W[b]) : y;
}

static rlab_tensor *ln(rlab_tape *t, rlab_tensor *W, rlab_tensor *x, int g, int b)
{
    return rlab_t_layernorm(t, x, &W[g], &W[b], 1e-5f);
}

void genrank_window(const genrank_net *net, const int32_t *hist, int64_t n, int32_t *w)
{
    const int T = net->cfg.maxlen;
    const int64_t k = n < T ? n : T;
    for (int i = 0; i < T; i++)
        w[i] = -1;
    for (int64_t i = 0; i < k; i++)
        w[T - k + i] = hist[n - k + i];
}

rlab_tensor *genrank_encode(const genrank_net *net, rlab_tape *t, rlab_tensor *W,
                            const int32_t *hist, int B, const uint8_t **valid_out)
{
    const genrank_cfg *c = &net->cfg;
    const int n = c->maxlen, d = c->dim, Lt = net->codes.Lt;
    const int64_t N = (int64_t)B * n;
    uint8_t *valid = rlab_tape_alloc(t, (size_t)N);
    int32_t *ids = rlab_tape_alloc(t, (size_t)N * (size_t)(Lt + 1) * sizeof(int32_t));
    if (!valid || !ids)
        return rlab_tape_fail(t, RLAB_ENOMEM, "genrank: tape arena too small (encoder)");
    int32_t *pos = ids + (size_t)N * Lt;
    for (int64_t r = 0; r < N; r++) {
        const int32_t it = hist[r];
        valid[r] = it >= 0;
        pos[r] = it >= 0 ? (int32_t)(r % n) : -1;
        for (int l = 0; l < Lt; l++)
            ids[(int64_t)l * N + r] = it >= 0 ? net->codes.codes[(int64_t)it * Lt + l] : -1;
    }
    const int64_t shp[3] = {B, n, d};
    rlab_tensor *X = rlab_t_gather(t, &W[net->enc_pos], pos, N, -1, 3, shp);
    for (int l = 0; l < Lt; l++)
        X = rlab_t_add(t, X,
                       rlab_t_gather(t, &W[net->enc_emb[l]], ids + (int64_t)l * N, N, -1, 3, shp));
    X = rlab_t_dropout(t, X, c->dropout);
    for (int i = 0; i < c->enc_layers; i++) {
        const genrank_blk *b = &net->enc[i];
        rlab_tensor *h = ln(t, W, X, b->ln1g, b->ln1b);
        rlab_tensor *a =
            rlab_t_attention(t, lin(t, W, h, b->wq, -1), lin(t, W, h, b->wk, -1),
                             lin(t, W, h, b->wv, -1), c->heads, valid, valid, 0, c->dropout);
        X = rlab_t_add(t, X, lin(t, W, a, b->wo, -1));
        h = ln(t, W, X, b->ln2g, b->ln2b);
        rlab_tensor *f = lin(t, W, rlab_t_relu(t, lin(t, W, h, b->f1, b->fb1)), b->f2, b->fb2);
        X = rlab_t_mask_rows(t, rlab_t_add(t, X, rlab_t_dropout(t, f, c->dropout)), valid);
    }
    X = ln(t, W, X, net->enc_lnf_g, net->enc_lnf_b);
    if (valid_out)
        *valid_out = valid;
    return X;
}

/* Routed assignments of x [rows, d] (valid rows only) to the top-k experts of gate [d, E]. */
static void count_load(const float *x, const uint8_t *valid, int64_t rows, int d, const float *gate,
                       int E, int k, double *load)
{
    float lg[GENRANK_MAX_EXPERTS];
    for (int64_t r = 0; r < rows; r++) {
        if (valid && !valid[r])
            continue;
        for (int e = 0; e < E; e++)
            lg[e] = 0.0f;
        for (int j = 0; j < d; j++) {
            const float v = x[r * d + j];
            for (int e = 0; e < E; e++)
                lg[e] += v * gate[(int64_t)j * E + e];
        }
        uint64_t used = 0;
        for (int s = 0; s < k; s++) {
            int best = -1;
            for (int e = 0; e < E; e++)
                if (!(used >> e & 1) && (best < 0 || lg[e] > lg[best]))
                    best = e;
            used |= 1ull << best;
            load[best] += 1.0;
        }
    }
}

rlab_tensor *genrank_decode(const genrank_net *net, rlab_tape *t, rlab_tensor *W,
                            const int32_t *tok, int B, int T, rlab_tensor *enc,
                            const uint8_t *evalid, rlab_tensor **aux, double *load)
{
    return genrank_decode_kv(net, t, W, tok, B, T, enc, NULL, evalid, aux, load);
}

rlab_tensor *genrank_decode_kv(const genrank_net *net, rlab_tape *t, rlab_tensor *W,
                               const int32_t *tok, int B, int T, rlab_tensor *enc,
                               rlab_tensor *const *kv, const uint8_t *evalid, rlab_tensor **aux,
                               double *load)
{
    const genrank_cfg *c = &net->cfg;
    const int d = c->dim, Lt = net->codes.Lt;
    const int64_t N = (int64_t)B * T;
    uint8_t *valid = rlab_tape_alloc(t, (size_t)N);
    int32_t *ids = rlab_tape_alloc(t, (size_t)N * (size_t)(Lt + 2) * sizeof(int32_t));
    if (!valid || !ids)
        return rlab_tape_fail(t, RLAB_ENOMEM, "genrank: tape arena too small (decoder)");
    int32_t *pos = ids + (size_t)N * Lt, *bos = pos + N;
    for (int64_t r = 0; r < N; r++) {
        const int p = (int)(r % T);
        const int32_t v = tok[r];
        valid[r] = p == 0 || v >= 0;
        pos[r] = valid[r] ? p : -1;
        bos[r] = p == 0 ? 0 : -1;
        for (int l = 0; l < Lt; l++)
            ids[(int64_t)l * N + r] = p > 0 && v >= 0 && (p - 1) % Lt == l ? v : -1;
    }
    const int64_t shp[3] = {B, T, d};
    rlab_tensor *X = rlab_t_add(t, rlab_t_gather(t, &W[net->dec_pos], pos, N, -1, 3, shp),
                                rlab_t_gather(t, &W[net->dec_bos], bos, N, -1, 3, shp));
    for (int l = 0; l < Lt; l++)
        X = rlab_t_add(t, X,
                       rlab_t_gather(t, &W[net->dec_emb[l]], ids + (int64_t)l * N, N, -1, 3, shp));
    X = rlab_t_dropout(t, X, c->dropout);
    rlab_tensor *auxs = NULL;
    for (int i = 0; i < c->dec_layers; i++) {
        const genrank_blk *b = &net->dec[i];
        rlab_tensor *h = ln(t, W, X, b->ln1g, b->ln1b);
        rlab_tensor *a = rlab_t_attention(t, lin(t, W, h, b->wq, -1), lin(t, W, h, b->wk, -1),
                                          lin(t, W, h, b->wv, -1), c->heads, valid, valid,
                                          RLAB_ATTN_CAUSAL, c->dropout);
        X = rlab_t_add(t, X, lin(t, W, a, b->wo, -1));
        h = ln(t, W, X, b->ln2g, b->ln2b);
        rlab_tensor *ck = kv ? kv[2 * i] : lin(t, W, enc, b->ck, -1);
        rlab_tensor *cv = kv ? kv[2 * i + 1] : lin(t, W, enc, b->cv, -1);
        a = rlab_t_attention(t, lin(t, W, h, b->cq, -1), ck, cv, c->heads, evalid, valid, 0,
                             c->dropout);
        X = rlab_t_add(t, X, lin(t, W, a, b->co, -1));
        h = ln(t, W, X, b->ln3g, b->ln3b);
        rlab_tensor *al = NULL;
        rlab_tensor *f = rlab_t_moe(t, h, &W[b->gate], &W[b->e1], &W[b->eb1], &W[b->e2], &W[b->eb2],
                                    c->topk, aux ? &al : NULL);
        if (load && !rlab_tape_error(t))
            count_load(h->data, valid, N, d, W[b->gate].data, c->experts, c->topk, load);
        if (aux)
            auxs = auxs ? rlab_t_add(t, auxs, al) : al;
        X = rlab_t_mask_rows(t, rlab_t_add(t, X, rlab_t_dropout(t, f, c->dropout)), valid);
    }
    if (aux)
        *aux = auxs;
    return ln(t, W, X, net->dec_lnf_g, net->dec_lnf_b);
}

rlab_tensor *genrank_decode_step(const genrank_net *net, rlab_tape *t, rlab_tensor *W,
                                 const int32_t *tok, int B, int p, float *const *kc,
                                 float *const *vc, rlab_tensor *const *ckv, const uint8_t *evalid,
                                 double *load)
{
    const genrank_cfg *c = &net->cfg;
    const int d = c->dim, Lt = net->codes.Lt;
    int32_t *ids = rlab_tape_alloc(t, (size_t)B * (size_t)(Lt + 2) * sizeof(int32_t));
    if (!ids)
        return rlab_tape_fail(t, RLAB_ENOMEM, "genrank: tape arena too small (decoder step)");
    /* the same embedding sum as genrank_decode_kv for position p: position + BOS (p = 0) +
     * the token's level table (p > 0); gathers of -1 are zero rows, so the order of the
     * additions, and with it the rounding, is the full decoder's */
    int32_t *pos = ids + (size_t)B * Lt, *bos = pos + B;
    for (int b = 0; b < B; b++) {
        const int32_t v = tok[b];
        pos[b] = p;
        bos[b] = p == 0 ? 0 : -1;
        for (int l = 0; l < Lt; l++)
            ids[(int64_t)l * B + b] = p > 0 && v >= 0 && (p - 1) % Lt == l ? v : -1;
    }
    const int64_t shp[3] = {B, 1, d};
    rlab_tensor *X = rlab_t_add(t, rlab_t_gather(t, &W[net->dec_pos], pos, B, -1, 3, shp),
                                rlab_t_gather(t, &W[net->dec_bos], bos, B, -1, 3, shp));
    for (int l = 0; l < Lt; l++)
        X = rlab_t_add(t, X,
                       rlab_t_gather(t, &W[net->dec_emb[l]], ids + (int64_t)l * B, B, -1, 3, shp));
    const int64_t cshp[3] = {B, p + 1, d};
    for (int i = 0; i < c->dec_layers; i++) {
        const genrank_blk *b = &net->dec[i];
        rlab_tensor *h = ln(t, W, X, b->ln1g, b->ln1b);
        rlab_tensor *q = lin(t, W, h, b->wq, -1), *k = lin(t, W, h, b->wk, -1),
                    *v = lin(t, W, h, b->wv, -1);
        if (rlab_tape_error(t))
            return &t->poison;
        /* this position's key and value into row p of every beam's cache [B][p + 1][d] */
        for (int r = 0; r < B; r++) {
            memcpy(kc[i] + ((size_t)r * (p + 1) + p) * d, k->data + (size_t)r * d,
                   (size_t)d * sizeof(float));
            memcpy(vc[i] + ((size_t)r * (p + 1) + p) * d, v->data + (size_t)r * d,
                   (size_t)d * sizeof(float));
        }
        /* one query over keys 0..p: what the causal mask leaves to the last row */
        rlab_tensor *a =
            rlab_t_attention(t, q, rlab_t_input(t, kc[i], 3, cshp), rlab_t_input(t, vc[i], 3, cshp),
                             c->heads, NULL, NULL, 0, 0.0f);
        X = rlab_t_add(t, X, lin(t, W, a, b->wo, -1));
        h = ln(t, W, X, b->ln2g, b->ln2b);
        a = rlab_t_attention(t, lin(t, W, h, b->cq, -1), ckv[2 * i], ckv[2 * i + 1], c->heads,
                             evalid, NULL, 0, 0.0f);
        X = rlab_t_add(t, X, lin(t, W, a, b->co, -1));
        h = ln(t, W, X, b->ln3g, b->ln3b);
        rlab_tensor *f = rlab_t_moe(t, h, &W[b->gate], &W[b->e1], &W[b->eb1], &W[b->e2], &W[b->eb2],
                                    c->topk, NULL);
        if (load && !rlab_tape_error(t))
            count_load(h->data, NULL, B, d, W[b->gate].data, c->experts, c->topk, load);
        X = rlab_t_add(t, X, f);
    }
    return ln(t, W, X, net->dec_lnf_g, net->dec_lnf_b);
}

void genrank_session_tokens(const genrank_net *net, const int32_t *items, int B, int32_t *tok,
                            int32_t *tgt)
{
    const int m = net->cfg.session, Lt = net->codes.Lt, S = net->S;
    for (int b = 0; b < B; b++) {
        for (int j = 0; j < S; j++) {
            const int32_t it = items[(int64_t)b * m + j / Lt];
            tgt[(int64_t)b * S + j] = it >= 0 ? net->codes.codes[(int64_t)it * Lt + j % Lt] : -1;
        }
        tok[(int64_t)b * S] = -1;
        for (int j = 1; j < S; j++)
            tok[(int64_t)b * S + j] = tgt[(int64_t)b * S + j - 1];
    }
}

/* Encoder windows, decoder tokens and targets on the tape for B samples. */
static rlab_tensor *forward_batch(const genrank_net *net, rlab_tape *t, rlab_tensor *W,
                                  const int32_t *hist, const int32_t *items, int B, int32_t **tgt,
                                  rlab_tensor **aux)
{
    const int S = net->S;
    int32_t *tok = rlab_tape_alloc(t, (size_t)B * S * 2 * sizeof(int32_t));
    if (!tok)
        return rlab_tape_fail(t, RLAB_ENOMEM, "genrank: tape arena too small");
    *tgt = tok + (size_t)B * S;
    genrank_session_tokens(net, items, B, tok, *tgt);
    const uint8_t *ev = NULL;
    rlab_tensor *enc = genrank_encode(net, t, W, hist, B, &ev);
    rlab_tensor *H = genrank_decode(net, t, W, tok, B, S, enc, ev, aux, NULL);
    return rlab_t_reshape(t, H, 2, (int64_t[]){(int64_t)B * S, net->cfg.dim});
}

rlab_tensor *genrank_ntp_loss(const genrank_net *net, rlab_tape *t, const int32_t *hist,
                              const int32_t *items, int B, double *ntp)
{
    rlab_tensor *W = net->P->t;
    const int S = net->S, Lt = net->codes.Lt;
    int32_t *tgt = NULL;
    rlab_tensor *aux = NULL;
    rlab_tensor *H = forward_batch(net, t, W, hist, items, B, &tgt, &aux);
    if (rlab_tape_error(t))
        return &t->poison;
    int32_t *rows = rlab_tape_alloc(t, (size_t)B * S * 2 * sizeof(int32_t));
    if (!rows)
        return rlab_tape_fail(t, RLAB_ENOMEM, "genrank: tape arena too small");
    int64_t total = 0;
    for (int64_t r = 0; r < (int64_t)B * S; r++)
        total += tgt[r] >= 0;
    if (total == 0)
        return rlab_tape_fail(t, RLAB_EINVAL, "genrank: a batch without targets");
    rlab_tensor *loss = NULL;
    int64_t off = 0;
    for (int l = 0; l < Lt; l++) {
        int32_t *rl = rows + off, *tl = rows + (size_t)B * S + off;
        int64_t nl = 0;
        for (int64_t r = 0; r < (int64_t)B * S; r++)
            if ((r % S) % Lt == l && tgt[r] >= 0) {
                rl[nl] = (int32_t)r;
                tl[nl++] = tgt[r];
            }
        off += nl;
        if (nl == 0)
            continue;
        rlab_tensor *h = rlab_t_gather(t, H, rl, nl, -1, 0, NULL);
        rlab_tensor *x = rlab_t_softmax_xent(t, h, &W[net->head[l]], &W[net->head_b[l]], tl, 0);
        x = rlab_t_scale(t, x, (float)((double)nl / (double)total));
        loss = loss ? rlab_t_add(t, loss, x) : x;
    }
    if (ntp)
        *ntp = rlab_tape_error(t) ? (double)NAN : (double)loss->data[0];
    if (aux && net->cfg.aux > 0.0f)
        loss = rlab_t_add(t, loss, rlab_t_scale(t, aux, net->cfg.aux));
    return loss;
}

/* Concatenate n 1-D tensors (an op records at most RLAB_T_MAXSRC sources: a tree of
 * concats, in order). */
static rlab_tensor *concat_many(rlab_tape *t, rlab_tensor **xs, int n)
{
    while (n > 1) {
        int k = 0;
        for (int i = 0; i < n; i += RLAB_T_MAXSRC) {
            const int c = n - i < RLAB_T_MAXSRC ? n - i : RLAB_T_MAXSRC;
            xs[k++] = c == 1 ? xs[i] : rlab_t_concat(t, xs + i, c, 0);
        }
        n = k;
    }
    return xs[0];
}

rlab_tensor *genrank_seq_logp(const genrank_net *net, rlab_tape *t, rlab_tensor *W,
                              const int32_t *hist, const int32_t *items, int B)
{
    const int S = net->S, Lt = net->codes.Lt;
    int32_t *tgt = NULL;
    rlab_tensor *H = forward_batch(net, t, W, hist, items, B, &tgt, NULL);
    rlab_tensor **parts = rlab_tape_alloc(t, (size_t)B * sizeof *parts);
    int32_t *rows = rlab_tape_alloc(t, (size_t)B * S * 2 * sizeof(int32_t));
    if (!parts || !rows)
        return rlab_tape_fail(t, RLAB_ENOMEM, "genrank: tape arena too small");
    if (rlab_tape_error(t))
        return &t->poison;
    int64_t off = 0;
    for (int b = 0; b < B; b++) {
        rlab_tensor *lp = NULL;
        for (int l = 0; l < Lt; l++) {
            int32_t *rl = rows + off, *tl = rows + (size_t)B * S + off;
            int64_t nl = 0;
            for (int j = l; j < S; j += Lt)
                if (tgt[(int64_t)b * S + j] >= 0) {
                    rl[nl] = b * S + j;
                    tl[nl++] = tgt[(int64_t)b * S + j];
                }
            off += nl;
            if (nl == 0)
                continue;
            rlab_tensor *h = rlab_t_gather(t, H, rl, nl, -1, 0, NULL);
            rlab_tensor *x = rlab_t_softmax_xent(t, h, &W[net->head[l]], &W[net->head_b[l]], tl, 0);
            x = rlab_t_scale(t, x, -(float)nl); /* mean -log p over nl tokens -> sum log p */
            lp = lp ? rlab_t_add(t, lp, x) : x;
        }
        if (!lp)
            return rlab_tape_fail(t, RLAB_EINVAL, "genrank: an empty session");
        parts[b] = lp;
    }
    return concat_many(t, parts, B);
}
