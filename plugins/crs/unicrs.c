/*
 * plugins/crs/unicrs.c: the `unicrs` model kind, a UniCRS-style recommender (Wang et al.,
 * KDD'22) built small and offline. Not a reproduction: no pretrained language model exists
 * here, so the frozen RoBERTa / DialoGPT are replaced by a transformer trained from scratch.
 *
 *   entities    items, genres and decades of the catalogue (crs.prepare); an R-GCN layer with
 *               basis decomposition over the relations item<->genre, item<->decade
 *               (rlab_t_spmm per relation, 1/|N_r(i)| normalisation), a self-loop and a
 *               residual, then an MLP (UniCRS KGPrompt.get_entity_embeds)
 *   context     the last ctx_len words of the dialogue, each the sum of a hashed unigram and a
 *               hashed bigram embedding plus a position; one pre-norm transformer block
 *   fusion      the entities mentioned so far attend to the context tokens through a bilinear
 *               map (UniCRS's entity-length prompt for recommendation)
 *   prompt      n_prefix learned soft tokens for the recommendation task, before the fused
 *               entities
 *   readout     the last context token attends over [prompt; fused entities; tokens]; the
 *               result scores every item by a dot product with its entity state plus a bias,
 *               plus (copy=true, not in UniCRS) a copy gate: learned weights on "mentioned before",
 *               "among the last two mentions" and "the last mention" (ReDial's recommenders
 *               often repeat)
 *   training    softmax cross-entropy over all items (the item bias starts at log(1 + count)
 *               of the training targets); the first `pretrain` epochs feed the
 *               gold response after the context (UniCRS stage 1: the answer is in the input,
 *               so the loss must drop fast); the rest the context only (stage 3)
 */
#include "crs.h"
#include "model/fit.h"
#include "tensor/checkpoint.h"
#include "tensor/loss.h"
#include "tensor/nn.h"
#include "tensor/ops.h"
#include "tensor/optim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const rlab_field crs_unicrs_fields[] = {
    RLAB_FIELD_INT(crs_cfg, dim, "64", 8, 1024, "hidden size (entities, tokens, prompts)"),
    RLAB_FIELD_INT(crs_cfg, heads, "2", 1, 16, "attention heads (must divide dim)"),
    RLAB_FIELD_INT(crs_cfg, ctx_len, "48", 4, 512, "context words kept (the last ones)"),
    RLAB_FIELD_INT(crs_cfg, n_ent_ctx, "8", 1, 64, "mentioned items kept (the last ones)"),
    RLAB_FIELD_INT(crs_cfg, n_prefix, "10", 1, 64, "soft prompt tokens (UniCRS n_prefix_rec)"),
    RLAB_FIELD_INT(crs_cfg, buckets, "4096", 64, 1 << 22, "hash buckets of word n-grams"),
    RLAB_FIELD_INT(crs_cfg, batch, "64", 1, 4096, "instances per step"),
    RLAB_FIELD_INT(crs_cfg, pretrain, "1", 0, 1000,
                   "first epochs with the gold response in the input (UniCRS stage 1)"),
    RLAB_FIELD_DOUBLE(crs_cfg, lr, "0.0003", 0, 10, "AdamW learning rate"),
    RLAB_FIELD_DOUBLE(crs_cfg, wd, "0.1", 0, 10, "AdamW weight decay"),
    RLAB_FIELD_DOUBLE(crs_cfg, dev, "0.1", 0, 0.5,
                      "share of the training conversations held out to pick the epoch (mean "
                      "Recall@1/10/50 with and without repeats on them; 0 = keep the last "
                      "epoch)"),
    RLAB_FIELD_FLOAT(crs_cfg, dropout, "0.3", 0, 0.9, "dropout on tokens and attention"),
    RLAB_FIELD_BOOL(crs_cfg, comention, "true",
                    "a fifth graph relation: movies mentioned with a target earlier in a "
                    "training conversation (not in UniCRS's DBpedia graph; false = without)"),
    RLAB_FIELD_BOOL(crs_cfg, copy, "true",
                    "copy gate: learned weights on 'mentioned before', 'among the last two "
                    "mentions' and 'the last mention' added to the item scores (not in UniCRS; "
                    "false = without)"),
    {0}};

/* Trained on every instance (the evaluation is crs.eval on held-out dialogues). */
const rlab_kv crs_unicrs_defaults[] = {
    {"epochs", "4"}, {"split", "none"}, {"eval_every", "0"}, {"eval_test", "0"}, {0, 0}};

enum {
    P_ENT,
    P_W0,
    P_BASES,
    P_COEF,
    P_EP1,
    P_EP2,
    P_TOK,
    P_POS,
    P_LN1G,
    P_LN1B,
    P_WQ,
    P_WK,
    P_WV,
    P_WO,
    P_LN2G,
    P_LN2B,
    P_FF1,
    P_FF2,
    P_FUSE,
    P_PROMPT,
    P_RQ,
    P_LN3G,
    P_LN3B,
    P_OUT,
    P_BIAS,
    P_COPY,
    P_N
};
#define NBASES 8
/* The copy gate's features are this large instead of 1: Adam moves a weight by about lr per
 * step, so the gate's three weights learn COPY_SCALE times faster than the other parameters
 * (a per-parameter learning-rate multiplier; at lr 1e-3 they would otherwise need thousands of
 * steps to reach the log-odds a repeated movie deserves). */
#define COPY_SCALE 8.0f

static void specs_of(const crs_cfg *c, int32_t n_ent, int32_t n_items, rlab_param_spec *s)
{
    const int64_t d = c->dim;
    const float sd = 1.0f / sqrtf((float)d);
    s[P_ENT] = (rlab_param_spec){"ent", 2, {n_ent, d}, RLAB_INIT_NORMAL, 0.1f};
    s[P_W0] = (rlab_param_spec){"rgcn.self", 2, {d, d}, RLAB_INIT_XAVIER, 1};
    s[P_BASES] = (rlab_param_spec){"rgcn.bases", 2, {NBASES, d * d}, RLAB_INIT_NORMAL, sd};
    s[P_COEF] = (rlab_param_spec){"rgcn.coef", 2, {CRS_NREL, NBASES}, RLAB_INIT_NORMAL, 0.35f};
    s[P_EP1] = (rlab_param_spec){"ent.proj1", 2, {d, d}, RLAB_INIT_XAVIER, 1};
    s[P_EP2] = (rlab_param_spec){"ent.proj2", 2, {d, d}, RLAB_INIT_XAVIER, 1};
    s[P_TOK] = (rlab_param_spec){"tok", 2, {c->buckets, d}, RLAB_INIT_NORMAL, 0.1f};
    s[P_POS] = (rlab_param_spec){"pos", 2, {c->ctx_len, d}, RLAB_INIT_NORMAL, 0.02f};
    s[P_LN1G] = (rlab_param_spec){"ln1.g", 1, {d}, RLAB_INIT_ONE, 0};
    s[P_LN1B] = (rlab_param_spec){"ln1.b", 1, {d}, RLAB_INIT_ZERO, 0};
    s[P_WQ] = (rlab_param_spec){"attn.q", 2, {d, d}, RLAB_INIT_XAVIER, 1};
    s[P_WK] = (rlab_param_spec){"attn.k", 2, {d, d}, RLAB_INIT_XAVIER, 1};
    s[P_WV] = (rlab_param_spec){"attn.v", 2, {d, d}, RLAB_INIT_XAVIER, 1};
    s[P_WO] = (rlab_param_spec){"attn.o", 2, {d, d}, RLAB_INIT_XAVIER, 1};
    s[P_LN2G] = (rlab_param_spec){"ln2.g", 1, {d}, RLAB_INIT_ONE, 0};
    s[P_LN2B] = (rlab_param_spec){"ln2.b", 1, {d}, RLAB_INIT_ZERO, 0};
    s[P_FF1] = (rlab_param_spec){"ff1", 2, {d, 2 * d}, RLAB_INIT_XAVIER, 1};
    s[P_FF2] = (rlab_param_spec){"ff2", 2, {2 * d, d}, RLAB_INIT_XAVIER, 1};
    s[P_FUSE] = (rlab_param_spec){"fuse", 2, {d, d}, RLAB_INIT_XAVIER, 1};
    s[P_PROMPT] = (rlab_param_spec){"prompt.rec", 2, {c->n_prefix, d}, RLAB_INIT_NORMAL, 0.1f};
    s[P_RQ] = (rlab_param_spec){"read.q", 2, {d, d}, RLAB_INIT_XAVIER, 1};
    s[P_LN3G] = (rlab_param_spec){"ln3.g", 1, {d}, RLAB_INIT_ONE, 0};
    s[P_LN3B] = (rlab_param_spec){"ln3.b", 1, {d}, RLAB_INIT_ZERO, 0};
    /* zero: the first scores are the prior alone (bias + copy gate); the learned part grows
     * from there */
    s[P_OUT] = (rlab_param_spec){"read.out", 2, {d, d}, RLAB_INIT_ZERO, 0};
    s[P_BIAS] = (rlab_param_spec){"item.bias", 1, {n_items}, RLAB_INIT_ZERO, 0};
    s[P_COPY] = (rlab_param_spec){"copy", 1, {3}, RLAB_INIT_ZERO, 0};
}

/* ---- the model object ------------------------------------------------------------------- */

typedef struct unicrs {
    crs_cfg c;
    rlab_params *P;
    crs_graph g;
    int32_t n_items;
    float *H;      /* [n_ent][dim] entity states of the current parameters */
    char **titles; /* [n_items] */
    char **info;   /* [n_items] "genres; decade" */
    crs_templates tpl;
    int epochs;
} unicrs;

static void unicrs_free_impl(unicrs *u)
{
    if (!u)
        return;
    rlab_params_free(u->P);
    crs_graph_clear(&u->g);
    rlab_free(u->H);
    for (int32_t i = 0; i < u->n_items; i++) {
        if (u->titles)
            rlab_free(u->titles[i]);
        if (u->info)
            rlab_free(u->info[i]);
    }
    rlab_free(u->titles);
    rlab_free(u->info);
    crs_templates_clear(&u->tpl);
    rlab_free(u);
}

/* ---- context ids ------------------------------------------------------------------------- */

int crs_context_ids(const char *text, int len, int buckets, int32_t *uni, int32_t *bi)
{
    /* the hashes of every token, keeping the last len in a ring */
    uint64_t ring[512];
    int64_t n = 0;
    const char *cur = text ? text : "";
    char tok[64];
    while (rlab_text_next_token(&cur, tok, sizeof tok) > 0)
        ring[n++ % 512] = rlab_text_hash(tok, strlen(tok));
    const int keep = (int)(n < len ? n : len);
    for (int i = 0; i < len; i++)
        uni[i] = bi[i] = -1;
    for (int i = 0; i < keep; i++) {
        const int64_t at = n - keep + i; /* token index */
        const uint64_t h = ring[at % 512];
        const int slot = len - keep + i; /* left padding: the last token at len - 1 */
        uni[slot] = (int32_t)(h % (uint64_t)buckets);
        if (at > 0) {
            uint64_t h2 =
                (ring[(at - 1) % 512] * 0x9E3779B97F4A7C15ull) ^ (h + 0x632BE59BD9B4E019ull);
            bi[slot] = (int32_t)(h2 % (uint64_t)buckets);
        }
    }
    return keep;
}

/* ---- batches ----------------------------------------------------------------------------- */

typedef struct batch {
    int cap, B;
    int32_t *uni, *bi, *pos, *ent, *pre, *tgt;
    uint8_t *valid, *ent_valid, *all_valid;
    int32_t n_items;
    float *m1, *m2, *m3, *onehot; /* [cap][n_items]: mentioned, among the last two, the last,
                                     the target */
} batch;

static void batch_free(batch *b)
{
    rlab_free(b->uni);
    rlab_free(b->bi);
    rlab_free(b->pos);
    rlab_free(b->ent);
    rlab_free(b->pre);
    rlab_free(b->tgt);
    rlab_free(b->valid);
    rlab_free(b->ent_valid);
    rlab_free(b->all_valid);
    rlab_free(b->m1);
    rlab_free(b->m2);
    rlab_free(b->m3);
    rlab_free(b->onehot);
    memset(b, 0, sizeof *b);
}

static int batch_init(batch *b, const crs_cfg *c, int cap, int32_t n_items)
{
    memset(b, 0, sizeof *b);
    const size_t L = (size_t)c->ctx_len, M = (size_t)c->n_ent_ctx, NP = (size_t)c->n_prefix;
    b->cap = cap;
    b->uni = rlab_malloc(sizeof(int32_t) * L * (size_t)cap);
    b->bi = rlab_malloc(sizeof(int32_t) * L * (size_t)cap);
    b->pos = rlab_malloc(sizeof(int32_t) * L * (size_t)cap);
    b->ent = rlab_malloc(sizeof(int32_t) * M * (size_t)cap);
    b->pre = rlab_malloc(sizeof(int32_t) * NP * (size_t)cap);
    b->tgt = rlab_malloc(sizeof(int32_t) * (size_t)cap);
    b->valid = rlab_malloc(L * (size_t)cap);
    b->ent_valid = rlab_malloc(M * (size_t)cap);
    b->all_valid = rlab_malloc((NP + M + L) * (size_t)cap);
    b->n_items = n_items;
    b->m1 = rlab_calloc((size_t)n_items * (size_t)cap, sizeof(float));
    b->m2 = rlab_calloc((size_t)n_items * (size_t)cap, sizeof(float));
    b->m3 = rlab_calloc((size_t)n_items * (size_t)cap, sizeof(float));
    b->onehot = rlab_calloc((size_t)n_items * (size_t)cap, sizeof(float));
    if (!b->m1 || !b->m2 || !b->m3 || !b->onehot || !b->uni || !b->bi || !b->pos || !b->ent ||
        !b->pre || !b->tgt || !b->valid || !b->ent_valid || !b->all_valid) {
        batch_free(b);
        return RLAB_ENOMEM;
    }
    return RLAB_OK;
}

/* Row r of the batch from a context text (and an optional response appended) and the
 * mentioned items (oldest first). */
static void batch_row(batch *b, const crs_cfg *c, int r, const char *context, const char *resp,
                      const int32_t *ents, int n_ents, int32_t n_items)
{
    const int L = c->ctx_len, M = c->n_ent_ctx, NP = c->n_prefix;
    char *joined = NULL;
    if (resp && resp[0]) {
        size_t a = context ? strlen(context) : 0, bl = strlen(resp);
        joined = rlab_malloc(a + bl + 16);
        if (joined)
            snprintf(joined, a + bl + 16, "%s\nSystem: %s", context ? context : "", resp);
    }
    crs_context_ids(joined ? joined : context, L, c->buckets, b->uni + (size_t)r * L,
                    b->bi + (size_t)r * L);
    rlab_free(joined);
    for (int i = 0; i < L; i++) {
        const int v = b->uni[(size_t)r * L + i] >= 0;
        b->valid[(size_t)r * L + i] = (uint8_t)v;
        b->pos[(size_t)r * L + i] = v ? i : -1;
    }
    /* the last M distinct mentions, left-padded */
    int32_t e[64];
    int ne = 0;
    for (int k = n_ents - 1; k >= 0 && ne < M; k--) {
        if (ents[k] < 0 || ents[k] >= n_items)
            continue;
        int dup = 0;
        for (int j = 0; j < ne; j++)
            dup |= e[j] == ents[k];
        if (!dup)
            e[ne++] = ents[k];
    }
    for (int i = 0; i < M; i++) {
        const int from_end = M - 1 - i; /* e[0] is the most recent: it goes last */
        const int32_t id = from_end < ne ? e[from_end] : -1;
        b->ent[(size_t)r * M + i] = id;
        b->ent_valid[(size_t)r * M + i] = id >= 0;
    }
    uint8_t *av = b->all_valid + (size_t)r * (NP + M + L);
    for (int i = 0; i < NP; i++) {
        b->pre[(size_t)r * NP + i] = i;
        av[i] = 1;
    }
    memcpy(av + NP, b->ent_valid + (size_t)r * M, (size_t)M);
    memcpy(av + NP + M, b->valid + (size_t)r * L, (size_t)L);
    /* mention features of the copy gate */
    float *m1 = b->m1 + (size_t)r * (size_t)n_items, *m2 = b->m2 + (size_t)r * (size_t)n_items;
    memset(m1, 0, (size_t)n_items * sizeof *m1);
    memset(m2, 0, (size_t)n_items * sizeof *m2);
    float *m3 = b->m3 + (size_t)r * (size_t)n_items;
    memset(m3, 0, (size_t)n_items * sizeof *m3);
    if (ne > 0)
        m3[e[0]] = COPY_SCALE;
    for (int k = 0; k < n_ents; k++)
        if (ents[k] >= 0 && ents[k] < n_items)
            m1[ents[k]] = COPY_SCALE;
    for (int k = 0; k < ne && k < 2; k++)
        m2[e[k]] = COPY_SCALE;
}

/* Item logits [B, n_items] of query states h: dot products with the item states, the bias,
 * and the copy gate's mention terms. */
static rlab_tensor *item_logits(rlab_tape *t, rlab_params *P, const crs_cfg *c, rlab_tensor *H,
                                rlab_tensor *h, const batch *b)
{
    const int64_t sh[2] = {b->B, b->n_items};
    rlab_tensor *items = rlab_t_slice(t, H, 0, 0, b->n_items);
    rlab_tensor *z = rlab_t_add(t, rlab_t_matmul(t, h, items, 0, 1), &P->t[P_BIAS]);
    if (!c->copy)
        return z;
    rlab_tensor *w1 = rlab_t_slice(t, &P->t[P_COPY], 0, 0, 1);
    rlab_tensor *w2 = rlab_t_slice(t, &P->t[P_COPY], 0, 1, 1);
    rlab_tensor *w3 = rlab_t_slice(t, &P->t[P_COPY], 0, 2, 1);
    z = rlab_t_add(t, z, rlab_t_mul(t, rlab_t_input(t, b->m1, 2, sh), w1));
    z = rlab_t_add(t, z, rlab_t_mul(t, rlab_t_input(t, b->m2, 2, sh), w2));
    return rlab_t_add(t, z, rlab_t_mul(t, rlab_t_input(t, b->m3, 2, sh), w3));
}

/* ---- forward ----------------------------------------------------------------------------- */

/* Entity states [n_ent, d] of the parameters (R-GCN with basis decomposition + residual, then
 * a residual MLP). */
static rlab_tensor *entity_states(rlab_tape *t, rlab_params *P, const crs_graph *g, int d)
{
    rlab_tensor *E0 = &P->t[P_ENT];
    rlab_tensor *Wall = rlab_t_matmul(t, &P->t[P_COEF], &P->t[P_BASES], 0, 0); /* [R, d*d] */
    rlab_tensor *H = rlab_t_matmul(t, E0, &P->t[P_W0], 0, 0);
    for (int r = 0; r < CRS_NREL; r++) {
        const int64_t *rp;
        const int32_t *col;
        const float *val;
        crs_graph_rel(g, r, &rp, &col, &val);
        rlab_tensor *S = rlab_t_spmm(t, g->n_ent, rp, col, val, E0);
        rlab_tensor *Wr = rlab_t_reshape(t, rlab_t_slice(t, Wall, 0, r, 1), 2, (int64_t[]){d, d});
        H = rlab_t_add(t, H, rlab_t_matmul(t, S, Wr, 0, 0));
    }
    H = rlab_t_add(t, E0, H);
    rlab_tensor *m = rlab_t_relu(t, rlab_t_matmul(t, H, &P->t[P_EP1], 0, 0));
    return rlab_t_add(t, H, rlab_t_matmul(t, m, &P->t[P_EP2], 0, 0));
}

/* The query vectors [B, d] of a batch given the entity states H [n_ent, d]. */
static rlab_tensor *query_states(rlab_tape *t, rlab_params *P, const crs_cfg *c, rlab_tensor *H,
                                 const batch *b, float drop)
{
    const int64_t B = b->B, L = c->ctx_len, M = c->n_ent_ctx, NP = c->n_prefix, d = c->dim;
    const int64_t sh_l[3] = {B, L, d};
    rlab_tensor *X = rlab_t_add(t, rlab_t_gather(t, &P->t[P_TOK], b->uni, B * L, -1, 3, sh_l),
                                rlab_t_gather(t, &P->t[P_TOK], b->bi, B * L, -1, 3, sh_l));
    X = rlab_t_add(t, X, rlab_t_gather(t, &P->t[P_POS], b->pos, B * L, -1, 3, sh_l));
    X = rlab_t_dropout(t, X, drop);
    /* one pre-norm transformer block */
    rlab_tensor *Xn = rlab_t_layernorm(t, X, &P->t[P_LN1G], &P->t[P_LN1B], 1e-5f);
    rlab_tensor *A = rlab_t_attention(
        t, rlab_t_matmul(t, Xn, &P->t[P_WQ], 0, 0), rlab_t_matmul(t, Xn, &P->t[P_WK], 0, 0),
        rlab_t_matmul(t, Xn, &P->t[P_WV], 0, 0), c->heads, b->valid, b->valid, 0, drop);
    X = rlab_t_add(t, X, rlab_t_matmul(t, A, &P->t[P_WO], 0, 0));
    rlab_tensor *F =
        rlab_t_relu(t, rlab_t_matmul(t, rlab_t_layernorm(t, X, &P->t[P_LN2G], &P->t[P_LN2B], 1e-5f),
                                     &P->t[P_FF1], 0, 0));
    rlab_tensor *C = rlab_t_add(t, X, rlab_t_matmul(t, F, &P->t[P_FF2], 0, 0)); /* [B, L, d] */
    /* fusion: the mentioned entities attend to the tokens (bilinear scores) */
    rlab_tensor *Ent = rlab_t_gather(t, H, b->ent, B * M, -1, 3, (int64_t[]){B, M, d});
    rlab_tensor *Fu = rlab_t_attention(t, rlab_t_matmul(t, Ent, &P->t[P_FUSE], 0, 0), C, C, 1,
                                       b->valid, b->ent_valid, 0, 0.0f);
    rlab_tensor *Ent2 = rlab_t_add(t, Ent, Fu);
    /* soft prompt tokens for the recommendation task */
    rlab_tensor *Pp =
        rlab_t_gather(t, &P->t[P_PROMPT], b->pre, B * NP, -1, 3, (int64_t[]){B, NP, d});
    rlab_tensor *seq[3] = {Pp, Ent2, C};
    rlab_tensor *S = rlab_t_concat(t, seq, 3, 1); /* [B, NP + M + L, d] */
    rlab_tensor *last = rlab_t_slice(t, C, 1, L - 1, 1);
    rlab_tensor *h = rlab_t_attention(t, rlab_t_matmul(t, last, &P->t[P_RQ], 0, 0), S, S, c->heads,
                                      b->all_valid, NULL, 0, drop);
    h = rlab_t_add(t, h, last);
    h = rlab_t_matmul(t, rlab_t_layernorm(t, h, &P->t[P_LN3G], &P->t[P_LN3B], 1e-5f), &P->t[P_OUT],
                      0, 0);
    return rlab_t_reshape(t, h, 2, (int64_t[]){B, d});
}

static int tape_err(rlab_tape *t, rlab_err *err)
{
    return rlab_errf(err, rlab_tape_error(t) ? rlab_tape_error(t) : RLAB_ENOMEM, "unicrs: %s",
                     rlab_tape_errmsg(t));
}

static size_t arena_for(const crs_cfg *c, int32_t n_ent, int32_t n_items, int B)
{
    const size_t d = (size_t)c->dim, L = (size_t)c->ctx_len;
    size_t tok = (size_t)B * L * d * 4 * 40, ent = (size_t)n_ent * d * 4 * 24;
    size_t att = (size_t)B * (size_t)c->heads * L * (L + 128) * 4 * 3;
    size_t out = (size_t)B * (size_t)n_items * 4 * 4;
    return tok + ent + att + out + ((size_t)64 << 20);
}

/* Recompute the cached entity states from the parameters. */
static int refresh_H(unicrs *u, rlab_err *err)
{
    const size_t n = (size_t)u->g.n_ent * (size_t)u->c.dim;
    rlab_tape *t = rlab_tape_new(
        (size_t)u->g.n_ent * (size_t)u->c.dim * 4 * 24 + ((size_t)16 << 20), 4096, err);
    if (!t)
        return err->code ? err->code : RLAB_ENOMEM;
    rlab_tensor *H = entity_states(t, u->P, &u->g, u->c.dim);
    int rc = RLAB_OK;
    if (rlab_tape_error(t))
        rc = tape_err(t, err);
    else if (!u->H && !(u->H = rlab_malloc(n * sizeof *u->H)))
        rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
    else
        memcpy(u->H, H->data, n * sizeof *u->H);
    rlab_tape_free(t);
    return rc;
}

/* ---- scoring ----------------------------------------------------------------------------- */

static int unicrs_score_all(const rlab_model *m, const rlab_query *q, int nq, float *out,
                            rlab_err *err)
{
    const unicrs *u = m->impl;
    const crs_cfg *c = &u->c;
    const int CH = 32;
    batch b;
    if (batch_init(&b, c, CH, u->n_items))
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    rlab_tape *t = rlab_tape_new(arena_for(c, u->g.n_ent, u->n_items, CH), 4096, err);
    int rc = t ? RLAB_OK : (err->code ? err->code : RLAB_ENOMEM);
    for (int lo = 0; !rc && lo < nq; lo += CH) {
        b.B = nq - lo < CH ? nq - lo : CH;
        for (int r = 0; r < b.B; r++)
            batch_row(&b, c, r, q[lo + r].context, NULL, q[lo + r].hist, q[lo + r].n_hist,
                      u->n_items);
        rlab_tape_reset(t);
        rlab_tensor *H = rlab_t_input(t, u->H, 2, (int64_t[]){u->g.n_ent, c->dim});
        rlab_tensor *h = query_states(t, u->P, c, H, &b, 0.0f);
        rlab_tensor *s = item_logits(t, u->P, c, H, h, &b);
        if (rlab_tape_error(t)) {
            rc = tape_err(t, err);
            break;
        }
        memcpy(out + (size_t)lo * (size_t)u->n_items, s->data,
               (size_t)b.B * (size_t)u->n_items * sizeof *out);
    }
    rlab_tape_free(t);
    batch_free(&b);
    return rc;
}

static void unicrs_describe(const rlab_model *m, char *buf, size_t size)
{
    const unicrs *u = m->impl;
    snprintf(buf, size,
             "UniCRS-style CRS d=%d: R-GCN over %d entities (%d items), context transformer "
             "over %d hashed n-gram buckets, %d soft prompt tokens, %d response templates",
             u->c.dim, (int)u->g.n_ent, (int)u->n_items, u->c.buckets, u->c.n_prefix,
             (int)u->tpl.n);
}

/* Strings joined by '\n' (newlines inside replaced by blanks). Caller frees. */
static char *join_lines(char *const *s, int32_t n)
{
    size_t len = 1;
    for (int32_t i = 0; i < n; i++)
        len += (s[i] ? strlen(s[i]) : 0) + 1;
    char *out = rlab_malloc(len), *p = out;
    if (!out)
        return NULL;
    for (int32_t i = 0; i < n; i++) {
        for (const char *q = s[i] ? s[i] : ""; *q; q++)
            *p++ = *q == '\n' ? ' ' : *q;
        if (i + 1 < n)
            *p++ = '\n';
    }
    *p = 0;
    return out;
}

static int unicrs_tensors(const rlab_model *m, rlab_ckpt *ck, rlab_err *err)
{
    const unicrs *u = m->impl;
    const int64_t NE = u->g.n_ent;
    char num[64];
    int rc = rlab_ckpt_add_params(ck, u->P, "params.", err);
    if (!rc)
        rc = rlab_ckpt_add(ck, "crs.rowptr", RLAB_DT_I64, 1, (int64_t[]){CRS_NREL * (NE + 1)},
                           u->g.rowptr, err);
    if (!rc)
        rc = rlab_ckpt_add(ck, "crs.col", RLAB_DT_I32, 1, (int64_t[]){u->g.nnz ? u->g.nnz : 1},
                           u->g.col, err);
    if (!rc)
        rc = rlab_ckpt_add(ck, "crs.val", RLAB_DT_F32, 1, (int64_t[]){u->g.nnz ? u->g.nnz : 1},
                           u->g.val, err);
    snprintf(num, sizeof num, "%d %d %lld %d", (int)u->n_items, (int)NE, (long long)u->g.nnz,
             u->epochs);
    if (!rc)
        rc = rlab_ckpt_set_meta(ck, "crs.sizes", num, err);
    const char *keys[4] = {"crs.titles", "crs.info", "crs.tpl_text", "crs.tpl_ctx"};
    char *const *vals[4] = {u->titles, u->info, u->tpl.text, u->tpl.ctx};
    const int32_t ns[4] = {u->n_items, u->n_items, u->tpl.n, u->tpl.n};
    for (int k = 0; k < 4 && !rc; k++) {
        char *j = join_lines(vals[k], ns[k]);
        rc = j ? rlab_ckpt_set_meta(ck, keys[k], j, err)
               : rlab_errf(err, RLAB_ENOMEM, "out of memory");
        rlab_free(j);
    }
    return rc;
}

static void unicrs_vfree(rlab_model *m) { unicrs_free_impl(m->impl); }

static const rlab_model_vt unicrs_vt = {.score_all = unicrs_score_all,
                                        .tensors = unicrs_tensors,
                                        .describe = unicrs_describe,
                                        .free = unicrs_vfree};

int crs_is_unicrs(const rlab_model *m) { return m && m->vt == &unicrs_vt; }

const crs_templates *crs_model_templates(const rlab_model *m)
{
    return crs_is_unicrs(m) ? &((const unicrs *)m->impl)->tpl : NULL;
}

const char *crs_model_title(const rlab_model *m, int32_t item)
{
    if (!crs_is_unicrs(m))
        return NULL;
    const unicrs *u = m->impl;
    return item >= 0 && item < u->n_items ? u->titles[item] : NULL;
}

char *crs_llm_prompt(const rlab_model *m, const char *context, const int32_t *cands, int n_cands)
{
    if (!crs_is_unicrs(m))
        return NULL;
    const unicrs *u = m->impl;
    size_t cap = strlen(context ? context : "") + 512 + (size_t)n_cands * 256, n = 0;
    char *s = rlab_malloc(cap);
    if (!s)
        return NULL;
    n += (size_t)snprintf(s + n, cap - n,
                          "You are a movie recommender in a conversation. Knowledge about the "
                          "candidate movies (ranked by a knowledge-graph recommender, best "
                          "first):\n");
    for (int i = 0; i < n_cands && n + 8 < cap; i++)
        if (cands[i] >= 0 && cands[i] < u->n_items)
            n += (size_t)snprintf(s + n, cap - n, "%d. %s (%s)\n", i + 1, u->titles[cands[i]],
                                  u->info[cands[i]]);
    if (n + 8 < cap)
        n += (size_t)snprintf(s + n, cap - n,
                              "Dialogue so far:\n%s\nReply in one or two sentences as the System, "
                              "recommending one of the candidates by its title.",
                              context ? context : "");
    return s;
}

/* ---- a model from a dataset's items and a parameter block ---------------------------- */

static unicrs *unicrs_new(const crs_cfg *c, const rlab_dataset *ds, const int32_t *pairs,
                          int64_t n_pairs, rlab_rng *rng, rlab_err *err)
{
    unicrs *u = rlab_calloc(1, sizeof *u);
    if (!u) {
        rlab_errf(err, RLAB_ENOMEM, "out of memory");
        return NULL;
    }
    u->c = *c;
    u->n_items = ds->items.n;
    if (crs_graph_build(ds, pairs, n_pairs, &u->g, err)) {
        unicrs_free_impl(u);
        return NULL;
    }
    rlab_param_spec specs[P_N];
    specs_of(c, u->g.n_ent, u->n_items, specs);
    u->P = rlab_params_new(specs, P_N, rng, err);
    u->titles = rlab_calloc((size_t)u->n_items, sizeof *u->titles);
    u->info = rlab_calloc((size_t)u->n_items, sizeof *u->info);
    if (!u->P || !u->titles || !u->info) {
        if (!err->code)
            rlab_errf(err, RLAB_ENOMEM, "out of memory");
        unicrs_free_impl(u);
        return NULL;
    }
    const rlab_feat_col *tc = rlab_feats_find(&ds->item_feats, "title");
    const rlab_feat_col *gc = rlab_feats_find(&ds->item_feats, "genres");
    const rlab_feat_col *dc = rlab_feats_find(&ds->item_feats, "decade");
    for (int32_t i = 0; i < u->n_items; i++) {
        char info[256];
        size_t n = 0;
        info[0] = 0;
        for (int64_t k = gc->off[i]; k < gc->off[i + 1] && n + 40 < sizeof info; k++)
            n += (size_t)snprintf(info + n, sizeof info - n, "%s%s", n ? ", " : "",
                                  rlab_vocab_name(&gc->vocab, gc->seq[k]));
        for (int64_t k = dc->off[i]; k < dc->off[i + 1] && n + 16 < sizeof info; k++)
            n += (size_t)snprintf(info + n, sizeof info - n, "%s%s", n ? "; " : "",
                                  rlab_vocab_name(&dc->vocab, dc->seq[k]));
        const char *title = tc && tc->kind == RLAB_FEAT_TEXT && tc->text[i]
                                ? tc->text[i]
                                : rlab_vocab_name(&ds->items, i);
        u->titles[i] = rlab_strdup(title);
        u->info[i] = rlab_strdup(n ? info : "no metadata");
        if (!u->titles[i] || !u->info[i]) {
            rlab_errf(err, RLAB_ENOMEM, "out of memory");
            unicrs_free_impl(u);
            return NULL;
        }
    }
    return u;
}

static rlab_model *wrap(unicrs *u, rlab_err *err)
{
    rlab_model *m = rlab_model_new(&unicrs_vt, u, NULL, "unicrs", err);
    if (m)
        m->n_items = u->n_items;
    return m;
}

/* ---- training ---------------------------------------------------------------------------- */

typedef struct ustate {
    const rlab_fit *fit;
    crs_cfg c;
    unicrs *u;
    rlab_model *m;
    int64_t N;        /* instances */
    const char **ctx; /* [N] borrowed from the dataset */
    const char **resp;
    int32_t *tgt;
    int64_t *ent_off; /* [N + 1] */
    int32_t *ents;
    int32_t *perm; /* [N_train] training instances, shuffled */
    int64_t N_train;
    int32_t *dev_idx; /* [n_dev] held-out instances (whole conversations) */
    int64_t n_dev;
    float *best; /* parameters of the best dev epoch */
    double best_score;
    int best_epoch, finished, restored;
    int64_t n_steps;
    batch b;
    rlab_tape *tape;
    rlab_opt *opt;
    rlab_rng rng;
    int epoch;
    int64_t steps, built_at;
} ustate;

static void u_end(void *state)
{
    ustate *s = state;
    rlab_model_release(s->m); /* frees u with it */
    if (!s->m)
        unicrs_free_impl(s->u);
    rlab_free(s->ctx);
    rlab_free(s->resp);
    rlab_free(s->tgt);
    rlab_free(s->ent_off);
    rlab_free(s->ents);
    rlab_free(s->perm);
    rlab_free(s->dev_idx);
    rlab_free(s->best);
    batch_free(&s->b);
    rlab_tape_free(s->tape);
    rlab_opt_free(s->opt);
    rlab_free(s);
}

static int u_setup(ustate *s, const rlab_fit *fit, rlab_err *err)
{
    const rlab_dataset *ds = fit->data;
    const crs_cfg *c = fit->cfg;
    s->fit = fit;
    s->c = *c;
    if (c->dim % c->heads)
        return rlab_errf(err, RLAB_EINVAL, "unicrs: heads=%d does not divide dim=%d", c->heads,
                         c->dim);
    if (!ds)
        return rlab_errf(err, RLAB_EINVAL, "unicrs: no dataset");
    const rlab_feat_col *cc = rlab_feats_find(&ds->user_feats, "context");
    const rlab_feat_col *rc_ = rlab_feats_find(&ds->user_feats, "response");
    const rlab_feat_col *tc = rlab_feats_find(&ds->user_feats, "template");
    const rlab_feat_col *mc = rlab_feats_find(&ds->user_feats, "mentioned");
    if (!cc || !rc_ || !tc || !mc || cc->kind != RLAB_FEAT_TEXT || mc->kind != RLAB_FEAT_TOKEN_SEQ)
        return rlab_errf(err, RLAB_EINVAL,
                         "unicrs: dataset '%s' is not a CRS catalogue (users need context, "
                         "response, template and mentioned features): make one with crs.prepare",
                         ds->name);
    rlab_rng_seed(&s->rng, (uint64_t)fit->opts->seed);
    const rlab_seqs *tr = &fit->view->train;
    s->N = tr->off[tr->n_users];
    if (s->N == 0)
        return rlab_errf(err, RLAB_EINVAL, "unicrs: no training instance");
    s->ctx = rlab_malloc((size_t)s->N * sizeof *s->ctx);
    s->resp = rlab_malloc((size_t)s->N * sizeof *s->resp);
    s->tgt = rlab_malloc((size_t)s->N * sizeof *s->tgt);
    s->ent_off = rlab_malloc(((size_t)s->N + 1) * sizeof *s->ent_off);
    s->ents = rlab_malloc(((size_t)mc->off[ds->user_feats.n_entities] + 1) * sizeof *s->ents);
    s->perm = rlab_malloc((size_t)s->N * sizeof *s->perm);
    s->dev_idx = rlab_malloc((size_t)s->N * sizeof *s->dev_idx);
    const rlab_feat_col *vc = rlab_feats_find(&ds->user_feats, "conversation");
    if (!s->dev_idx || !s->ctx || !s->resp || !s->tgt || !s->ent_off || !s->ents || !s->perm ||
        batch_init(&s->b, c, c->batch, ds->items.n))
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    int64_t k = 0, ne = 0;
    s->ent_off[0] = 0;
    for (int32_t uu = 0; uu < tr->n_users; uu++)
        for (int64_t j = tr->off[uu]; j < tr->off[uu + 1]; j++, k++) {
            s->ctx[k] = cc->text[uu] ? cc->text[uu] : "";
            s->resp[k] = rc_->text[uu] ? rc_->text[uu] : "";
            s->tgt[k] = tr->items[j];
            for (int64_t q = mc->off[uu]; q < mc->off[uu + 1]; q++) {
                const char *id = rlab_vocab_name(&mc->vocab, mc->seq[q]);
                s->ents[ne++] = rlab_vocab_find(&ds->items, id, strlen(id));
            }
            s->ent_off[k + 1] = ne;
            /* held out: whole real conversations, chosen by a seeded hash */
            uint64_t z = 0;
            int dev = 0;
            if (c->dev > 0 && vc && vc->kind == RLAB_FEAT_FLOAT && vc->num[uu] >= 0) {
                z = (uint64_t)vc->num[uu] * 0x9E3779B97F4A7C15ull ^ (uint64_t)fit->opts->seed;
                z = (z ^ (z >> 31)) * 0xBF58476D1CE4E5B9ull;
                z ^= z >> 29;
                dev = (double)(z % 100000) < c->dev * 100000.0;
            }
            if (dev)
                s->dev_idx[s->n_dev++] = (int32_t)k;
            else
                s->perm[s->N_train++] = (int32_t)k;
        }
    if (s->N_train == 0)
        return rlab_errf(err, RLAB_EINVAL, "unicrs: every instance was held out (dev=%g)", c->dev);
    /* co-mention edges: every (target, earlier mention) of the training instances, both ways
     * (never the held-out conversations) */
    int64_t np = 0;
    int32_t *pairs = NULL;
    if (c->comention) {
        pairs = rlab_malloc((size_t)(2 * ne + 1) * 2 * sizeof *pairs);
        if (!pairs)
            return rlab_errf(err, RLAB_ENOMEM, "out of memory");
        for (int64_t j = 0; j < s->N_train; j++) {
            const int32_t q = s->perm[j];
            for (int64_t e = s->ent_off[q]; e < s->ent_off[q + 1]; e++) {
                pairs[2 * np] = s->tgt[q], pairs[2 * np + 1] = s->ents[e], np++;
                pairs[2 * np] = s->ents[e], pairs[2 * np + 1] = s->tgt[q], np++;
            }
        }
    }
    s->u = unicrs_new(c, ds, pairs, np, &s->rng, err);
    rlab_free(pairs);
    if (!s->u)
        return err->code;
    /* the item bias starts at log(1 + training count): a popularity prior the model refines;
     * the copy gate starts at +4 for a movie mentioned before, +2 more among the last two and
     * +2 more for the last (mentioned movies first, the latest highest, as the repeat
     * baseline), then learns */
    {
        float *cp = s->u->P->t[P_COPY].data;
        cp[0] = 0.5f;
        cp[1] = 0.25f;
        cp[2] = 0.25f;
        float *bias = s->u->P->t[P_BIAS].data;
        for (int64_t j = 0; j < s->N_train; j++)
            bias[s->tgt[s->perm[j]]] += 1.0f;
        for (int32_t i = 0; i < s->u->n_items; i++)
            bias[i] = logf(1.0f + bias[i]);
    }
    if (s->n_dev > 0 && !(s->best = rlab_malloc(s->u->P->count * sizeof *s->best)))
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    s->best_score = -1;
    /* response templates: one per distinct (turn) template, with its context */
    {
        int32_t nt = 0;
        const char **tt = rlab_malloc((size_t)tr->n_users * sizeof *tt);
        const char **tcx = rlab_malloc((size_t)tr->n_users * sizeof *tcx);
        if (!tt || !tcx) {
            rlab_free(tt);
            rlab_free(tcx);
            return rlab_errf(err, RLAB_ENOMEM, "out of memory");
        }
        for (int32_t uu = 0; uu < tr->n_users; uu++) {
            const char *t = tc->text[uu], *x = cc->text[uu];
            if (!t || !strstr(t, "[MOVIE]"))
                continue;
            if (nt && strcmp(tt[nt - 1], t) == 0 && strcmp(tcx[nt - 1], x ? x : "") == 0)
                continue; /* instances of one turn share it */
            tt[nt] = t;
            tcx[nt++] = x ? x : "";
        }
        int rc = crs_templates_fit(&s->u->tpl, nt, tt, tcx, err);
        rlab_free((void *)(uintptr_t)tt);
        rlab_free((void *)(uintptr_t)tcx);
        if (rc)
            return rc;
    }
    s->tape = rlab_tape_new(arena_for(c, s->u->g.n_ent, s->u->n_items, c->batch), 8192, err);
    if (!s->tape)
        return err->code ? err->code : RLAB_ENOMEM;
    rlab_tape_seed(s->tape, (uint64_t)fit->opts->seed, 0);
    rlab_opt_config oc = rlab_opt_defaults(RLAB_OPT_ADAMW);
    oc.lr = (float)c->lr;
    oc.weight_decay = (float)c->wd;
    oc.clip_norm = 5.0f;
    s->opt = rlab_opt_new(s->u->P, &oc, err);
    if (!s->opt)
        return err->code ? err->code : RLAB_ENOMEM;
    return RLAB_OK;
}

static int u_begin(const rlab_fit *fit, void **state, rlab_err *err)
{
    ustate *s = rlab_calloc(1, sizeof *s);
    if (!s)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    int rc = u_setup(s, fit, err);
    if (rc) {
        u_end(s);
        return rc;
    }
    *state = s;
    return RLAB_OK;
}

static int u_epoch(void *state, int e, int64_t *n_steps, rlab_err *err)
{
    (void)err;
    ustate *s = state;
    s->epoch = e;
    rlab_rng_shuffle_i32(&s->rng, s->perm, (size_t)s->N_train);
    *n_steps = s->n_steps = (s->N_train + s->c.batch - 1) / s->c.batch;
    return RLAB_OK;
}

/* Mean Recall@1/10/50 (full ranking, repeats kept) of the held-out instances under the
 * current parameters; the best epoch's parameters are kept. */
static int dev_select(ustate *s, rlab_err *err)
{
    const crs_cfg *c = &s->c;
    unicrs *u = s->u;
    int rc = refresh_H(u, err);
    if (rc)
        return rc;
    rlab_tape *t = s->tape;
    rlab_tape_set_training(t, 0);
    double hits[3] = {0, 0, 0}, hn[3] = {0, 0, 0}; /* with repeats; without (crs.eval's rows) */
    int64_t n_norep = 0;
    static const int ks[3] = {1, 10, 50};
    uint8_t *mask = rlab_calloc((size_t)u->n_items, 1);
    if (!mask)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    for (int64_t lo = 0; lo < s->n_dev; lo += c->batch) {
        const int64_t hi = lo + c->batch < s->n_dev ? lo + c->batch : s->n_dev;
        s->b.B = (int)(hi - lo);
        for (int64_t j = lo; j < hi; j++) {
            const int32_t k = s->dev_idx[j];
            batch_row(&s->b, c, (int)(j - lo), s->ctx[k], NULL, s->ents + s->ent_off[k],
                      (int)(s->ent_off[k + 1] - s->ent_off[k]), u->n_items);
        }
        rlab_tape_reset(t);
        rlab_tensor *H = rlab_t_input(t, u->H, 2, (int64_t[]){u->g.n_ent, c->dim});
        rlab_tensor *z =
            item_logits(t, u->P, c, H, query_states(t, u->P, c, H, &s->b, 0.0f), &s->b);
        if (rlab_tape_error(t)) {
            rlab_free(mask);
            return tape_err(t, err);
        }
        for (int64_t j = lo; j < hi; j++) {
            const int32_t k = s->dev_idx[j], tg = s->tgt[k];
            const float *zr = z->data + (size_t)(j - lo) * (size_t)u->n_items;
            const int64_t r = crs_rank(zr, u->n_items, NULL, tg);
            for (int q = 0; q < 3; q++)
                hits[q] += r <= ks[q];
            int rep = 0;
            for (int64_t e = s->ent_off[k]; e < s->ent_off[k + 1]; e++)
                if (s->ents[e] >= 0) {
                    rep |= s->ents[e] == tg;
                    mask[s->ents[e]] = 1;
                }
            if (!rep) {
                const int64_t r2 = crs_rank(zr, u->n_items, mask, tg);
                for (int q = 0; q < 3; q++)
                    hn[q] += r2 <= ks[q];
                n_norep++;
            }
            for (int64_t e = s->ent_off[k]; e < s->ent_off[k + 1]; e++)
                if (s->ents[e] >= 0)
                    mask[s->ents[e]] = 0;
        }
    }
    rlab_free(mask);
    if (s->epoch == 1 && s->fit->log) { /* the reference: repeat + popularity on the same set */
        float *pop = rlab_calloc((size_t)u->n_items, sizeof *pop);
        float *sc = rlab_malloc((size_t)u->n_items * sizeof *sc);
        double bh[3] = {0, 0, 0};
        for (int64_t j = 0; pop && sc && j < s->N_train; j++)
            pop[s->tgt[s->perm[j]]] += 1.0f;
        for (int64_t j = 0; pop && sc && j < s->n_dev; j++) {
            const int32_t k = s->dev_idx[j];
            crs_baseline_scores(s->ents + s->ent_off[k],
                                (int32_t)(s->ent_off[k + 1] - s->ent_off[k]), pop, u->n_items, sc);
            const int64_t r = crs_rank(sc, u->n_items, NULL, s->tgt[k]);
            for (int q = 0; q < 3; q++)
                bh[q] += r <= ks[q];
        }
        char line[160];
        snprintf(line, sizeof line,
                 "held-out conversations, repeat + popularity: R@1 %.4f R@10 %.4f R@50 %.4f",
                 bh[0] / (double)s->n_dev, bh[1] / (double)s->n_dev, bh[2] / (double)s->n_dev);
        s->fit->log(s->fit->ud, line);
        rlab_free(pop);
        rlab_free(sc);
    }
    /* the selection: the mean of Recall@1/10/50 over both rows */
    double v[3], vn[3], score = 0;
    for (int q = 0; q < 3; q++) {
        v[q] = hits[q] / (double)s->n_dev;
        vn[q] = n_norep ? hn[q] / (double)n_norep : 0.0;
        score += (v[q] + vn[q]) / 6.0;
    }
    const rlab_fit *fit = s->fit;
    if (fit->metric)
        for (int q = 0; q < 3 && !rc; q++) {
            char name[32];
            snprintf(name, sizeof name, "recall@%d", ks[q]);
            rc = fit->metric(fit->ud, s->epoch, "valid", name, "full (held-out conversations)",
                             v[q]);
            snprintf(name, sizeof name, "norep.recall@%d", ks[q]);
            if (!rc)
                rc = fit->metric(fit->ud, s->epoch, "valid", name, "full (held-out conversations)",
                                 vn[q]);
        }
    const int better = score > s->best_score;
    if (better) {
        s->best_score = score;
        s->best_epoch = s->epoch;
        memcpy(s->best, u->P->data, u->P->count * sizeof *s->best);
    }
    if (fit->log) {
        char line[260];
        snprintf(line, sizeof line,
                 "epoch %d: held-out conversations (%lld instances) R@1 %.4f R@10 %.4f R@50 "
                 "%.4f; without repeats (%lld) R@1 %.4f R@10 %.4f R@50 %.4f%s",
                 s->epoch, (long long)s->n_dev, v[0], v[1], v[2], (long long)n_norep, vn[0], vn[1],
                 vn[2], better ? " (best)" : "");
        fit->log(fit->ud, line);
    }
    return rc;
}

static int u_step(void *state, int64_t i, double *loss, double *weight, double *parts,
                  rlab_err *err)
{
    (void)parts;
    ustate *s = state;
    const crs_cfg *c = &s->c;
    const int64_t lo = i * c->batch, hi = lo + c->batch < s->N_train ? lo + c->batch : s->N_train;
    const int pre = s->epoch <= c->pretrain;
    s->b.B = (int)(hi - lo);
    for (int64_t j = lo; j < hi; j++) {
        const int32_t k = s->perm[j];
        batch_row(&s->b, c, (int)(j - lo), s->ctx[k], pre ? s->resp[k] : NULL,
                  s->ents + s->ent_off[k], (int)(s->ent_off[k + 1] - s->ent_off[k]), s->u->n_items);
        s->b.tgt[j - lo] = s->tgt[k];
    }
    memset(s->b.onehot, 0, (size_t)s->b.B * (size_t)s->u->n_items * sizeof *s->b.onehot);
    for (int r = 0; r < s->b.B; r++)
        s->b.onehot[(size_t)r * (size_t)s->u->n_items + (size_t)s->b.tgt[r]] = 1.0f;
    rlab_tape *t = s->tape;
    rlab_tape_reset(t);
    rlab_tape_set_training(t, 1);
    rlab_params *P = s->u->P;
    rlab_tensor *H = entity_states(t, P, &s->u->g, c->dim);
    rlab_tensor *h = query_states(t, P, c, H, &s->b, c->dropout);
    rlab_tensor *l = rlab_t_soft_xent(t, s->b.onehot, item_logits(t, P, c, H, h, &s->b), 1.0f);
    if (rlab_tape_error(t))
        return tape_err(t, err);
    rlab_params_zero_grad(P);
    if (rlab_tape_backward(t, l))
        return tape_err(t, err);
    int rc = rlab_opt_step(s->opt, P);
    if (rc)
        return rlab_errf(err, rc, "unicrs: optimiser step failed");
    *loss = (double)l->data[0];
    *weight = (double)s->b.B;
    s->steps++;
    if (i == s->n_steps - 1) {
        if (s->n_dev > 0 && (rc = dev_select(s, err)))
            return rc;
        s->finished = s->epoch == s->fit->opts->epochs;
    }
    return RLAB_OK;
}

static rlab_model *u_model(void *state)
{
    ustate *s = state;
    rlab_err err = {0};
    if (!s->m) {
        s->m = wrap(s->u, &err);
        if (!s->m) {
            s->u = NULL; /* freed by rlab_model_new on failure */
            return NULL;
        }
        s->built_at = -1;
    }
    if (s->finished && s->best && s->best_epoch > 0 && !s->restored) {
        /* the loop asks for the model once training is over: keep the best dev epoch */
        memcpy(s->u->P->data, s->best, s->u->P->count * sizeof *s->best);
        s->restored = 1;
        s->built_at = -1;
        if (s->fit->log) {
            char line[128];
            snprintf(line, sizeof line,
                     "kept epoch %d (best mean Recall@1/10/50 with and without repeats %.4f "
                     "on the held-out conversations)",
                     s->best_epoch, s->best_score);
            s->fit->log(s->fit->ud, line);
        }
    }
    if (s->built_at != s->steps) {
        if (refresh_H(s->u, &err))
            return NULL;
        s->u->epochs = s->restored ? s->best_epoch : s->epoch;
        s->built_at = s->steps;
    }
    return s->m;
}

static rlab_params *u_params(void *state) { return ((ustate *)state)->u->P; }

const rlab_fit_ops crs_unicrs_fit = {.begin = u_begin,
                                     .epoch = u_epoch,
                                     .step = u_step,
                                     .model = u_model,
                                     .params = u_params,
                                     .end = u_end};

/* ---- restore ----------------------------------------------------------------------------- */

/* n lines of s into a new array of strings. */
static char **split_lines(const char *s, int32_t n)
{
    char **out = rlab_calloc((size_t)(n ? n : 1), sizeof *out);
    if (!out)
        return NULL;
    for (int32_t i = 0; i < n; i++) {
        size_t l = s ? strcspn(s, "\n") : 0;
        out[i] = rlab_malloc(l + 1);
        if (!out[i]) {
            for (int32_t j = 0; j < i; j++)
                rlab_free(out[j]);
            rlab_free(out);
            return NULL;
        }
        if (l)
            memcpy(out[i], s, l);
        out[i][l] = 0;
        if (s) {
            s += l;
            if (*s == '\n')
                s++;
        }
    }
    return out;
}

rlab_model *crs_unicrs_restore(rlab_host *host, const rlab_ckpt *ck, const void *cfg, rlab_err *err)
{
    (void)host;
    const crs_cfg *c = cfg;
    const char *sz = rlab_ckpt_meta_get(ck, "crs.sizes");
    int ni = 0, ne = 0, ep = 0;
    long long nnz = 0;
    if (!sz || sscanf(sz, "%d %d %lld %d", &ni, &ne, &nnz, &ep) != 4 || ni <= 0 || ne < ni ||
        nnz < 0) {
        rlab_errf(err, RLAB_EFORMAT, "unicrs checkpoint: bad or missing crs.sizes");
        return NULL;
    }
    unicrs *u = rlab_calloc(1, sizeof *u);
    if (!u) {
        rlab_errf(err, RLAB_ENOMEM, "out of memory");
        return NULL;
    }
    u->c = *c;
    u->n_items = ni;
    u->epochs = ep;
    u->g.n_items = ni;
    u->g.n_ent = ne;
    u->g.nnz = nnz;
    const int64_t nrp = (int64_t)CRS_NREL * (ne + 1), nv = nnz ? nnz : 1;
    int nd;
    int64_t sh[4];
    const int64_t *rp = rlab_ckpt_tensor(ck, "crs.rowptr", RLAB_DT_I64, &nd, sh, err);
    if (rp && (nd != 1 || sh[0] != nrp))
        rp = NULL;
    const int32_t *col = rp ? rlab_ckpt_tensor(ck, "crs.col", RLAB_DT_I32, &nd, sh, err) : NULL;
    if (col && (nd != 1 || sh[0] != nv))
        col = NULL;
    const float *val = col ? rlab_ckpt_tensor(ck, "crs.val", RLAB_DT_F32, &nd, sh, err) : NULL;
    if (val && (nd != 1 || sh[0] != nv))
        val = NULL;
    if (!val && !err->code)
        rlab_errf(err, RLAB_EFORMAT, "unicrs checkpoint: graph tensors of the wrong size");
    rlab_param_spec specs[P_N];
    specs_of(c, ne, ni, specs);
    rlab_rng rng;
    rlab_rng_seed(&rng, 0);
    if (!val || !(u->g.rowptr = rlab_malloc((size_t)nrp * sizeof *rp)) ||
        !(u->g.col = rlab_malloc((size_t)nv * sizeof *col)) ||
        !(u->g.val = rlab_malloc((size_t)nv * sizeof *val)) ||
        !(u->P = rlab_params_new(specs, P_N, &rng, err)) ||
        rlab_ckpt_get_params(ck, u->P, "params.", 1, err)) {
        if (!err->code)
            rlab_errf(err, RLAB_ENOMEM, "out of memory");
        unicrs_free_impl(u);
        return NULL;
    }
    memcpy(u->g.rowptr, rp, (size_t)nrp * sizeof *rp);
    memcpy(u->g.col, col, (size_t)nv * sizeof *col);
    memcpy(u->g.val, val, (size_t)nv * sizeof *val);
    int64_t total = 0; /* the graph drives indexing: check it */
    for (int r = 0; r < CRS_NREL; r++) {
        const int64_t *q = u->g.rowptr + (size_t)r * ((size_t)ne + 1);
        int mono = q[0] == 0;
        for (int32_t v = 0; v < ne && mono; v++)
            mono = q[v + 1] >= q[v];
        total = mono && total >= 0 ? total + q[ne] : -1;
    }
    if (total != nnz) {
        rlab_errf(err, RLAB_EFORMAT, "unicrs checkpoint: bad crs.rowptr");
        unicrs_free_impl(u);
        return NULL;
    }
    for (int64_t k = 0; k < nnz; k++)
        if (u->g.col[k] < 0 || u->g.col[k] >= ne) {
            rlab_errf(err, RLAB_EFORMAT, "unicrs checkpoint: bad crs.col");
            unicrs_free_impl(u);
            return NULL;
        }
    const char *tpl_text = rlab_ckpt_meta_get(ck, "crs.tpl_text");
    int32_t nt = 0;
    if (tpl_text && tpl_text[0]) {
        nt = 1;
        for (const char *p = tpl_text; *p; p++)
            nt += *p == '\n';
    }
    u->titles = split_lines(rlab_ckpt_meta_get(ck, "crs.titles"), ni);
    u->info = split_lines(rlab_ckpt_meta_get(ck, "crs.info"), ni);
    char **tt = split_lines(tpl_text, nt),
         **tc = split_lines(rlab_ckpt_meta_get(ck, "crs.tpl_ctx"), nt);
    int rc =
        (!u->titles || !u->info || !tt || !tc)
            ? rlab_errf(err, RLAB_ENOMEM, "out of memory")
            : crs_templates_fit(&u->tpl, nt, (const char *const *)tt, (const char *const *)tc, err);
    for (int32_t i = 0; i < nt; i++) {
        if (tt)
            rlab_free(tt[i]);
        if (tc)
            rlab_free(tc[i]);
    }
    rlab_free(tt);
    rlab_free(tc);
    if (!rc)
        rc = refresh_H(u, err);
    if (rc) {
        unicrs_free_impl(u);
        return NULL;
    }
    return wrap(u, err);
}
