/*
 * plugins/genrank/train.c: training samples, and OneRec / the point-wise variant on the core
 * training loop (model/fit.h). begin reads the tokenizer's codes (the model named by
 * semid=..., borrowed from the host's registry: rlab_fit.host), builds the network and the
 * sample batcher; a step is one Adam step on L_NTP + aux * L_balance; validation is the
 * host's evaluator on the model's ranking (gen.c genrank_rank_scores).
 */
#include "genrank.h"

#include "host/plugin.h"
#include "tensor/checkpoint.h"
#include "tensor/optim.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- samples ---------------------------------------------------------------------------- */

int genrank_batcher_init(genrank_batcher *b, const rlab_seqs *s, int maxlen, int m, int B,
                         int samples, uint64_t seed, rlab_err *err)
{
    memset(b, 0, sizeof *b);
    b->s = s;
    b->maxlen = maxlen;
    b->m = m;
    b->B = B;
    b->samples = samples;
    int64_t n = 0;
    for (int32_t u = 0; u < s->n_users; u++) {
        const int64_t len = s->off[u + 1] - s->off[u];
        if (len >= 2)
            n += samples > 0 && samples < len - 1 ? samples : len - 1;
    }
    b->n = n;
    b->su = rlab_malloc((size_t)(n ? n : 1) * sizeof(int32_t));
    b->st = rlab_malloc((size_t)(n ? n : 1) * sizeof(int32_t));
    b->hist = rlab_malloc((size_t)B * maxlen * sizeof(int32_t));
    b->items = rlab_malloc((size_t)B * m * sizeof(int32_t));
    if (!b->su || !b->st || !b->hist || !b->items) {
        genrank_batcher_clear(b);
        return rlab_errf(err, RLAB_ENOMEM, "genrank: out of memory (samples)");
    }
    rlab_rng_seed(&b->rng, seed ^ 0x73616d706c6573ULL);
    genrank_batcher_epoch(b);
    return RLAB_OK;
}

/* A new draw of positions (samples > 0: that many per user, uniformly among 1..len-1) and a
 * new order. */
void genrank_batcher_epoch(genrank_batcher *b)
{
    const rlab_seqs *s = b->s;
    int64_t k = 0;
    for (int32_t u = 0; u < s->n_users; u++) {
        const int64_t len = s->off[u + 1] - s->off[u];
        if (len < 2)
            continue;
        if (b->samples > 0 && b->samples < len - 1)
            for (int i = 0; i < b->samples; i++) {
                b->su[k] = u;
                b->st[k++] = 1 + (int32_t)rlab_rng_below(&b->rng, (uint64_t)(len - 1));
            }
        else
            for (int64_t p = 1; p < len; p++) {
                b->su[k] = u;
                b->st[k++] = (int32_t)p;
            }
    }
    /* shuffle pairs together (Fisher-Yates) */
    for (int64_t i = k - 1; i > 0; i--) {
        int64_t j = (int64_t)rlab_rng_below(&b->rng, (uint64_t)i + 1);
        int32_t a = b->su[i], c = b->st[i];
        b->su[i] = b->su[j];
        b->st[i] = b->st[j];
        b->su[j] = a;
        b->st[j] = c;
    }
    b->next = 0;
}

int genrank_batcher_next(genrank_batcher *b)
{
    int r = 0;
    while (r < b->B && b->next < b->n) {
        const int32_t u = b->su[b->next], p = b->st[b->next];
        b->next++;
        const int32_t *s = b->s->items + b->s->off[u];
        const int64_t len = b->s->off[u + 1] - b->s->off[u];
        const int T = b->maxlen;
        const int64_t k = p < T ? p : T;
        int32_t *w = b->hist + (size_t)r * T;
        for (int i = 0; i < T; i++)
            w[i] = -1;
        for (int64_t i = 0; i < k; i++)
            w[T - k + i] = s[p - k + i];
        for (int i = 0; i < b->m; i++)
            b->items[(size_t)r * b->m + i] = p + i < len ? s[p + i] : -1;
        r++;
    }
    return r;
}

void genrank_batcher_clear(genrank_batcher *b)
{
    rlab_free(b->su);
    rlab_free(b->st);
    rlab_free(b->hist);
    rlab_free(b->items);
    memset(b, 0, sizeof *b);
}

/* ---- the training loop's steps ---------------------------------------------------------- */

typedef struct gr_state {
    genrank_cfg cfg;
    genrank_net *net; /* owned by m */
    rlab_model *m;
    genrank_batcher bt;
    rlab_tape *tape;
    rlab_opt *opt;
    uint64_t step;
} gr_state;

static void gr_end(void *state)
{
    gr_state *st = state;
    /* the model keeps the training's Adam state (ipa_adam=keep continues it); with keep-best
     * and an earlier best epoch, the moments are those of the last step, not of that epoch */
    if (st->m && st->net && st->opt && rlab_opt_steps(st->opt) > 0) {
        rlab_err e = {0};
        (void)genrank_net_keep_adam(st->net, st->opt, &e); /* ENOMEM: the model keeps none */
    }
    genrank_batcher_clear(&st->bt);
    rlab_tape_free(st->tape);
    rlab_opt_free(st->opt);
    rlab_model_release(st->m);
    rlab_free(st);
}

/* The codes of tokenizer model `name` ([n][Lt], caller frees) from the host's registry. */
static int read_codes(const rlab_fit *fit, const char *name, int32_t n_items, int32_t **codes,
                      int *Lt, rlab_err *err)
{
    if (!fit->host)
        return rlab_errf(err, RLAB_EINVAL,
                         "genrank: training needs the host's model registry (semid=%s)", name);
    rlab_model *sm = rlab_host_model_get(fit->host, name, NULL);
    if (!sm)
        return rlab_errf(err, RLAB_ENOTFOUND,
                         "genrank: no model '%s' (train a tokenizer first: train brkmeans "
                         "data=... name=%s)",
                         name, name);
    int rc = RLAB_OK;
    rlab_ckpt *ck = rlab_model_state(sm, err);
    int nd = 0;
    int64_t sh[8];
    const int32_t *ids = ck ? rlab_ckpt_tensor(ck, "semid.codes", RLAB_DT_I32, &nd, sh, err) : NULL;
    if (!ids)
        rc = rlab_errf(err, RLAB_EINVAL,
                       "genrank: model '%s' (%s) has no semantic IDs (tensor semid.codes)", name,
                       sm->kind);
    else if (nd != 2 || sh[0] != n_items || sh[1] < 1 || sh[1] > GENRANK_MAX_LEVELS)
        rc = rlab_errf(err, RLAB_EINVAL,
                       "genrank: tokenizer '%s' has codes for %lld items x %lld levels; the data "
                       "has %d items (train it on the same dataset)",
                       name, (long long)sh[0], nd == 2 ? (long long)sh[1] : 0LL, (int)n_items);
    else {
        *Lt = (int)sh[1];
        *codes = rlab_malloc((size_t)sh[0] * (size_t)sh[1] * sizeof(int32_t));
        if (!*codes)
            rc = rlab_errf(err, RLAB_ENOMEM, "genrank: out of memory");
        else
            memcpy(*codes, ids, (size_t)sh[0] * (size_t)sh[1] * sizeof(int32_t));
    }
    rlab_ckpt_free(ck);
    rlab_model_release(sm);
    return rc;
}

static int gr_begin(const rlab_fit *fit, void **state, rlab_err *err)
{
    gr_state *st = rlab_calloc(1, sizeof *st);
    if (!st)
        return rlab_errf(err, RLAB_ENOMEM, "genrank: out of memory");
    st->cfg = *(const genrank_cfg *)fit->cfg;
    genrank_cfg *c = &st->cfg;
    c->seed = (uint64_t)fit->opts->seed;
    const rlab_view *v = fit->view;
    int32_t *codes = NULL;
    int Lt = 0;
    int rc = genrank_cfg_check(c, err);
    if (!rc && c->semid[0])
        rc = read_codes(fit, c->semid, v->n_items, &codes, &Lt, err);
    else if (!rc)
        rc = genrank_inline_codes(fit->data, v->n_items, c->levels, c->codes, c->seed, &codes, &Lt,
                                  err);
    if (!rc && !(st->net = genrank_net_new(c, codes, v->n_items, Lt, err)))
        rc = err->code ? err->code : RLAB_ENOMEM;
    rlab_free(codes);
    if (!rc) {
        st->net->pop = rlab_calloc((size_t)v->n_items, sizeof(int32_t));
        if (!st->net->pop)
            rc = rlab_errf(err, RLAB_ENOMEM, "genrank: out of memory");
        for (int64_t i = 0; !rc && i < v->train.off[v->n_users]; i++)
            st->net->pop[v->train.items[i]]++;
    }
    if (!rc) {
        st->m = genrank_model_wrap(st->net, NULL, NULL, fit->kind ? fit->kind : "onerec", err);
        if (!st->m) {
            st->net = NULL;
            rc = err->code ? err->code : RLAB_ENOMEM;
        }
    }
    if (!rc)
        rc = genrank_batcher_init(&st->bt, &v->train, c->maxlen, c->session, c->batch, c->samples,
                                  c->seed, err);
    if (!rc &&
        !(st->tape = rlab_tape_new(genrank_arena_bytes(c, v->n_items, c->batch), 16384, err)))
        rc = err->code ? err->code : RLAB_ENOMEM;
    if (!rc) {
        rlab_opt_config oc = rlab_opt_defaults(RLAB_OPT_ADAM);
        oc.lr = (float)c->lr;
        if (!(st->opt = rlab_opt_new(st->net->P, &oc, err)))
            rc = err->code ? err->code : RLAB_ENOMEM;
    }
    if (rc) {
        if (!st->m)
            genrank_net_free(st->net);
        gr_end(st);
        return rc;
    }
    if (fit->log) {
        char line[256];
        snprintf(line, sizeof line,
                 "genrank %s: m=%d items x %d levels (K %d/%d/...), d=%d, %d+%d blocks, %d "
                 "experts top-%d, %lld samples/epoch, %zu parameters",
                 fit->kind ? fit->kind : "onerec", c->session, Lt, st->net->codes.K[0],
                 Lt > 1 ? st->net->codes.K[1] : 0, c->dim, c->enc_layers, c->dec_layers, c->experts,
                 c->topk, (long long)st->bt.n, st->net->P->count);
        fit->log(fit->ud, line);
    }
    *state = st;
    return RLAB_OK;
}

static int gr_epoch(void *state, int e, int64_t *n_steps, rlab_err *err)
{
    (void)err;
    gr_state *st = state;
    if (e > 1)
        genrank_batcher_epoch(&st->bt);
    *n_steps = (st->bt.n + st->bt.B - 1) / st->bt.B;
    return RLAB_OK;
}

static int gr_step(void *state, int64_t i, double *loss, double *weight, double *parts,
                   rlab_err *err)
{
    (void)i;
    gr_state *st = state;
    const int B = genrank_batcher_next(&st->bt);
    if (B <= 0) {
        *weight = 0.0;
        return RLAB_OK;
    }
    rlab_tape *t = st->tape;
    rlab_tape_reset(t);
    rlab_tape_seed(t, st->cfg.seed, st->step++);
    rlab_tape_set_training(t, 1);
    rlab_params_zero_grad(st->net->P);
    double ntp = 0.0;
    rlab_tensor *L = genrank_ntp_loss(st->net, t, st->bt.hist, st->bt.items, B, &ntp);
    if (rlab_tape_error(t) || rlab_tape_backward(t, L))
        return rlab_errf(err, rlab_tape_error(t), "genrank step: %s", rlab_tape_errmsg(t));
    if (rlab_opt_step(st->opt, st->net->P))
        return rlab_errf(err, RLAB_EINVAL, "genrank: optimiser step failed");
    *loss = L->data[0];
    *weight = B;
    parts[0] = ntp;
    parts[1] = (double)L->data[0] - ntp;
    return RLAB_OK;
}

static rlab_model *gr_model(void *state) { return ((gr_state *)state)->m; }
static rlab_params *gr_params(void *state) { return ((gr_state *)state)->net->P; }
static const char *const gr_parts[] = {"loss_ntp", "loss_balance", NULL};

const rlab_fit_ops genrank_fit_ops = {.begin = gr_begin,
                                      .epoch = gr_epoch,
                                      .step = gr_step,
                                      .part_names = gr_parts,
                                      .model = gr_model,
                                      .params = gr_params,
                                      .end = gr_end};
