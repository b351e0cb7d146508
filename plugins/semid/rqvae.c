/*
 * plugins/semid/rqvae.c: the RQ-VAE tokenizer (TIGER / DAS's quantiser) on the core loop.
 *
 *   x [B, D]  content vectors of a batch of items
 *   h = relu(x We1 + be1)            [B, H]
 *   z = h We2 + be2                  [B, E]     encoder
 *   z_q = rvq(z, codebooks [L, K, E]) [B, E]    residual quantiser, straight-through
 *   g = relu(z_q Wd1 + bd1)          [B, H]
 *   x' = g Wd2 + bd2                 [B, D]     decoder
 *   loss = recon + quant
 *   recon = 1/B sum_b ||x'_b - x_b||^2
 *   quant = sum_l 1/B sum_b beta ||sg(q_l) - r_l||^2 + ||q_l - sg(r_l)||^2   (tensor/nn.h rvq)
 *
 * Every op is an existing core op with a gradient check (matmul, add, relu, sub, mul,
 * sum_all, scale, rvq); the plugin adds none. Choices where the papers are silent (README):
 *   - codebook init: residual k-means (k-means++ seeding, `iters` Lloyd iterations) on the
 *     encoder outputs of the first batch (of all items when the batch holds fewer than K);
 *   - dead-code restart: after the last step of every epoch, a code of level l that no item
 *     of the epoch chose is moved onto the level-l residual of a random item of that last
 *     batch (Adam moments of the row are kept);
 *   - Adam, no weight decay; items shuffled every epoch; one step = `batch` items.
 * The model (tok.c) is rebuilt from the current parameters whenever the loop asks for it:
 * codes of every item, de-duplication, per-level reconstruction error (decoder of the partial
 * sums q_1 + ... + q_l, measured in content space).
 */
#include "semid.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

enum { P_EW1, P_EB1, P_EW2, P_EB2, P_CB, P_DW1, P_DB1, P_DW2, P_DB2, P_N };

int semid_rqvae_specs(const semid_cfg *c, int D, rlab_param_spec *s)
{
    const int H = c->hidden, E = c->latent;
    s[P_EW1] = (rlab_param_spec){"enc.w1", 2, {D, H}, RLAB_INIT_XAVIER, 0};
    s[P_EB1] = (rlab_param_spec){"enc.b1", 1, {H}, RLAB_INIT_ZERO, 0};
    s[P_EW2] = (rlab_param_spec){"enc.w2", 2, {H, E}, RLAB_INIT_XAVIER, 0};
    s[P_EB2] = (rlab_param_spec){"enc.b2", 1, {E}, RLAB_INIT_ZERO, 0};
    s[P_CB] = (rlab_param_spec){"codebooks", 3, {c->levels, c->codes, E}, RLAB_INIT_ZERO, 0};
    s[P_DW1] = (rlab_param_spec){"dec.w1", 2, {E, H}, RLAB_INIT_XAVIER, 0};
    s[P_DB1] = (rlab_param_spec){"dec.b1", 1, {H}, RLAB_INIT_ZERO, 0};
    s[P_DW2] = (rlab_param_spec){"dec.w2", 2, {H, D}, RLAB_INIT_XAVIER, 0};
    s[P_DB2] = (rlab_param_spec){"dec.b2", 1, {D}, RLAB_INIT_ZERO, 0};
    return P_N;
}

typedef struct rq_state {
    const rlab_fit *fit;
    const semid_cfg *c;
    int32_t N, D;
    float *X;      /* [N][D] content vectors */
    float *xb;     /* [batch][D] the current batch */
    int32_t *perm; /* [N] item order of the epoch */
    int32_t *codes;
    int64_t *usage; /* [L][K] choices in the current epoch */
    float *rbuf;    /* [E] work space of the restart */
    rlab_params *P;
    rlab_opt *opt;
    rlab_tape *tape;
    rlab_rng rng;
    int inited;
    int epoch;
    int64_t n_steps, steps, built_at, restarts;
    rlab_model *m;
} rq_state;

static rlab_tensor *linear(rlab_tape *t, rlab_tensor *x, rlab_params *P, int w, int b)
{
    return rlab_t_add(t, rlab_t_matmul(t, x, &P->t[w], 0, 0), &P->t[b]);
}

static rlab_tensor *encode(rlab_tape *t, rlab_params *P, rlab_tensor *x)
{
    return linear(t, rlab_t_relu(t, linear(t, x, P, P_EW1, P_EB1)), P, P_EW2, P_EB2);
}

static rlab_tensor *decode(rlab_tape *t, rlab_params *P, rlab_tensor *zq)
{
    return linear(t, rlab_t_relu(t, linear(t, zq, P, P_DW1, P_DB1)), P, P_DW2, P_DB2);
}

/* 1/B sum_b ||a_b - x_b||^2 */
static rlab_tensor *sq_err(rlab_tape *t, rlab_tensor *a, rlab_tensor *x, int64_t B)
{
    rlab_tensor *d = rlab_t_sub(t, a, x);
    return rlab_t_scale(t, rlab_t_sum_all(t, rlab_t_mul(t, d, d)), 1.0f / (float)(B ? B : 1));
}

static int tape_err(rlab_tape *t, rlab_err *err)
{
    return rlab_errf(err, rlab_tape_error(t), "rqvae: %s", rlab_tape_errmsg(t));
}

/* Codebooks from residual k-means of the encoder outputs of rows idx[0..n). */
static int init_codebooks(rq_state *s, const int32_t *idx, int64_t n, rlab_err *err)
{
    const semid_cfg *c = s->c;
    const int E = c->latent;
    float *Z = rlab_malloc((size_t)(n * E) * sizeof *Z + 1);
    float *xs = rlab_malloc((size_t)(n * s->D) * sizeof *xs + 1);
    int32_t *cd = rlab_malloc((size_t)(n * c->levels) * sizeof *cd + 1);
    int rc = (!Z || !xs || !cd) ? rlab_errf(err, RLAB_ENOMEM, "out of memory") : RLAB_OK;
    if (!rc) {
        for (int64_t j = 0; j < n; j++)
            memcpy(xs + j * s->D, s->X + (size_t)idx[j] * s->D, (size_t)s->D * sizeof *xs);
        rlab_tape_reset(s->tape);
        rlab_tensor *z = encode(s->tape, s->P, rlab_t_input(s->tape, xs, 2, (int64_t[]){n, s->D}));
        if (rlab_tape_error(s->tape))
            rc = tape_err(s->tape, err);
        else
            memcpy(Z, z->data, (size_t)(n * E) * sizeof *Z);
    }
    if (!rc)
        rc = semid_rkmeans(Z, n, E, c->levels, c->codes, c->iters, 0, &s->rng, s->P->t[P_CB].data,
                           cd, c->levels, NULL, NULL, NULL, err);
    rlab_free(Z);
    rlab_free(xs);
    rlab_free(cd);
    return rc;
}

static void rq_end(void *state);

static int rq_setup(rq_state *s, const rlab_fit *fit, rlab_err *err)
{
    const semid_cfg *c = fit->cfg;
    s->fit = fit;
    s->c = c;
    s->N = fit->view->n_items;
    rlab_rng_seed(&s->rng, (uint64_t)fit->opts->seed);
    int rc = semid_content(fit, c, &s->X, &s->D, err);
    if (rc)
        return rc;
    if (c->codes > s->N)
        return rlab_errf(err, RLAB_EINVAL, "codes=%d is more than the %d items", c->codes,
                         (int)s->N);
    rlab_param_spec specs[P_N];
    semid_rqvae_specs(c, s->D, specs);
    s->P = rlab_params_new(specs, P_N, &s->rng, err);
    if (!s->P)
        return err->code ? err->code : RLAB_ENOMEM;
    rlab_opt_config oc = rlab_opt_defaults(RLAB_OPT_ADAM);
    oc.lr = (float)c->lr;
    s->opt = rlab_opt_new(s->P, &oc, err);
    s->tape = rlab_tape_new((size_t)64 << 20, 256, err);
    const int B = c->batch < s->N ? c->batch : s->N;
    s->xb = rlab_malloc((size_t)B * (size_t)s->D * sizeof *s->xb + 1);
    s->perm = rlab_malloc((size_t)s->N * sizeof *s->perm);
    s->codes = rlab_malloc((size_t)(B > 1024 ? B : 1024) * (size_t)c->levels * sizeof *s->codes);
    s->usage = rlab_calloc((size_t)c->levels * (size_t)c->codes, sizeof *s->usage);
    s->rbuf = rlab_malloc((size_t)c->latent * sizeof *s->rbuf);
    if (!s->opt || !s->tape)
        return err->code ? err->code : RLAB_ENOMEM;
    if (!s->xb || !s->perm || !s->codes || !s->usage || !s->rbuf)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    for (int32_t i = 0; i < s->N; i++)
        s->perm[i] = i;
    return RLAB_OK;
}

static int rq_begin(const rlab_fit *fit, void **state, rlab_err *err)
{
    rq_state *s = rlab_calloc(1, sizeof *s);
    if (!s)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    int rc = rq_setup(s, fit, err);
    if (rc) { /* the loop calls end only after a successful begin */
        rq_end(s);
        return rc;
    }
    *state = s;
    return RLAB_OK;
}

static int rq_epoch(void *state, int e, int64_t *n_steps, rlab_err *err)
{
    (void)err;
    rq_state *s = state;
    s->epoch = e;
    rlab_rng_shuffle_i32(&s->rng, s->perm, (size_t)s->N);
    const int B = s->c->batch;
    s->n_steps = (s->N + B - 1) / B;
    *n_steps = s->n_steps;
    memset(s->usage, 0, (size_t)s->c->levels * (size_t)s->c->codes * sizeof *s->usage);
    return RLAB_OK;
}

/* Move every code no item chose this epoch onto the residual of a random row of the batch
 * whose encoder output z [B][E] and codes [B][L] are given. */
static void restart_dead(rq_state *s, const float *z, int64_t B)
{
    const int L = s->c->levels, K = s->c->codes, E = s->c->latent;
    float *cb = s->P->t[P_CB].data, *r = s->rbuf;
    for (int l = 0; l < L; l++)
        for (int k = 0; k < K; k++) {
            if (s->usage[(size_t)l * K + k])
                continue;
            int64_t b = (int64_t)rlab_rng_below(&s->rng, (uint64_t)B);
            memcpy(r, z + b * E, (size_t)E * sizeof *r);
            for (int j = 0; j < l; j++) { /* residual entering level l */
                const float *q = cb + ((size_t)j * K + (size_t)s->codes[b * L + j]) * E;
                for (int d = 0; d < E; d++)
                    r[d] -= q[d];
            }
            memcpy(cb + ((size_t)l * K + k) * E, r, (size_t)E * sizeof *r);
            s->restarts++;
        }
}

static int rq_step(void *state, int64_t i, double *loss, double *weight, double *parts,
                   rlab_err *err)
{
    rq_state *s = state;
    const semid_cfg *c = s->c;
    const int64_t lo = i * c->batch, hi = lo + c->batch < s->N ? lo + c->batch : s->N;
    const int64_t B = hi - lo;
    if (!s->inited) {
        int rc = B >= c->codes ? init_codebooks(s, s->perm + lo, B, err)
                               : init_codebooks(s, s->perm, s->N, err);
        if (rc)
            return rc;
        s->inited = 1;
    }
    for (int64_t j = 0; j < B; j++)
        memcpy(s->xb + j * s->D, s->X + (size_t)s->perm[lo + j] * s->D,
               (size_t)s->D * sizeof *s->xb);
    rlab_tape *t = s->tape;
    rlab_tape_reset(t);
    rlab_tensor *x = rlab_t_input(t, s->xb, 2, (int64_t[]){B, s->D});
    rlab_tensor *z = encode(t, s->P, x), *commit = NULL;
    rlab_tensor *zq = rlab_t_rvq(t, z, &s->P->t[P_CB], c->beta, s->codes, &commit);
    rlab_tensor *rec = sq_err(t, decode(t, s->P, zq), x, B);
    rlab_tensor *l = rlab_t_add(t, rec, commit);
    if (rlab_tape_error(t))
        return tape_err(t, err);
    rlab_params_zero_grad(s->P);
    if (rlab_tape_backward(t, l))
        return tape_err(t, err);
    int rc = rlab_opt_step(s->opt, s->P);
    if (rc)
        return rlab_errf(err, rc, "rqvae: optimiser step failed");
    for (int64_t b = 0; b < B; b++)
        for (int lv = 0; lv < c->levels; lv++)
            s->usage[(size_t)lv * c->codes + s->codes[b * c->levels + lv]]++;
    if (c->restart && i == s->n_steps - 1)
        restart_dead(s, z->data, B);
    *loss = (double)l->data[0];
    *weight = (double)B;
    parts[0] = (double)rec->data[0];
    parts[1] = (double)commit->data[0];
    s->steps++;
    return RLAB_OK;
}

/* The tokenizer of the current parameters: codes of every item, per-level reconstruction. */
static rlab_model *build(rq_state *s, rlab_err *err)
{
    const semid_cfg *c = s->c;
    const int L = c->levels, K = c->codes, E = c->latent;
    const int64_t N = s->N, CH = 1024;
    semid_tok *t = rlab_calloc(1, sizeof *t);
    rlab_param_spec specs[P_N];
    semid_rqvae_specs(c, s->D, specs);
    double rec[SEMID_MAX_LEVELS] = {0};
    float *zq = rlab_malloc((size_t)(CH * E) * sizeof *zq);
    if (!t || !zq || !(t->codes = rlab_malloc((size_t)(N * (L + 1)) * sizeof *t->codes)) ||
        !(t->recon = rlab_calloc((size_t)L, sizeof *t->recon))) {
        rlab_free(zq);
        semid_tok_free(t);
        rlab_errf(err, RLAB_ENOMEM, "out of memory");
        return NULL;
    }
    t->kind = SEMID_RQVAE;
    t->L = L;
    t->K = K;
    t->D = s->D;
    t->n_items = (int32_t)N;
    t->train_info = s->epoch;
    rlab_rng rng; /* the initial values are overwritten by the copy */
    rlab_rng_seed(&rng, 0);
    t->P = rlab_params_new(specs, P_N, &rng, err);
    int rc = t->P ? RLAB_OK : (err->code ? err->code : RLAB_ENOMEM);
    if (!rc)
        memcpy(t->P->data, s->P->data, s->P->count * sizeof *s->P->data);
    const float *cb = s->P->t[P_CB].data;
    for (int64_t lo = 0; !rc && lo < N; lo += CH) {
        const int64_t B = lo + CH < N ? CH : N - lo;
        rlab_tape *tp = s->tape;
        rlab_tape_reset(tp);
        rlab_tensor *x = rlab_t_input(tp, s->X + lo * s->D, 2, (int64_t[]){B, s->D});
        rlab_t_rvq(tp, encode(tp, s->P, x), &s->P->t[P_CB], c->beta, s->codes, NULL);
        if (rlab_tape_error(tp)) {
            rc = tape_err(tp, err);
            break;
        }
        memset(zq, 0, (size_t)(B * E) * sizeof *zq);
        for (int l = 0; l < L && !rc; l++) {
            for (int64_t b = 0; b < B; b++) {
                int32_t code = s->codes[b * L + l];
                t->codes[(lo + b) * (L + 1) + l] = code;
                const float *q = cb + ((size_t)l * K + (size_t)code) * E;
                for (int d = 0; d < E; d++)
                    zq[b * E + d] += q[d];
            }
            rlab_tape_reset(tp);
            rlab_tensor *xi = rlab_t_input(tp, s->X + lo * s->D, 2, (int64_t[]){B, s->D});
            rlab_tensor *e =
                sq_err(tp, decode(tp, s->P, rlab_t_input(tp, zq, 2, (int64_t[]){B, E})), xi, 1);
            if (rlab_tape_error(tp))
                rc = tape_err(tp, err);
            else
                rec[l] += (double)e->data[0];
        }
    }
    rlab_free(zq);
    for (int l = 0; !rc && l < L; l++)
        t->recon[l] = (float)(rec[l] / (double)(N ? N : 1));
    if (!rc)
        rc = semid_tok_finish(t, s->fit, err);
    if (rc) {
        semid_tok_free(t);
        return NULL;
    }
    if (s->fit->log && s->restarts) {
        char line[96];
        snprintf(line, sizeof line, "dead-code restarts so far: %lld", (long long)s->restarts);
        s->fit->log(s->fit->ud, line);
    }
    return semid_tok_wrap(t, s->fit->view->n_users, err);
}

static rlab_model *build_any(void *state, rlab_err *err) { return build(state, err); }

static rlab_model *rq_model(void *state)
{
    rq_state *s = state;
    return semid_cached_model(&s->m, &s->built_at, s->steps, build_any, s, s->fit, "rqvae");
}

static void rq_end(void *state)
{
    rq_state *s = state;
    rlab_model_release(s->m);
    rlab_free(s->X);
    rlab_free(s->xb);
    rlab_free(s->perm);
    rlab_free(s->codes);
    rlab_free(s->usage);
    rlab_free(s->rbuf);
    rlab_opt_free(s->opt);
    rlab_tape_free(s->tape);
    rlab_params_free(s->P);
    rlab_free(s);
}

static const char *const rq_parts[] = {"recon", "quant", NULL};

const rlab_fit_ops semid_rqvae_fit = {.begin = rq_begin,
                                      .epoch = rq_epoch,
                                      .step = rq_step,
                                      .part_names = rq_parts,
                                      .model = rq_model,
                                      .end = rq_end};

rlab_model *semid_rqvae_restore(rlab_host *host, const rlab_ckpt *ck, const void *cfg,
                                rlab_err *err)
{
    (void)host;
    const semid_cfg *c = cfg;
    int64_t dim = 0; /* set by semid_ckpt_int on success */
    if (semid_ckpt_int(ck, "semid.dim", 1, 1 << 24, &dim, err))
        return NULL;
    rlab_param_spec specs[P_N];
    semid_rqvae_specs(c, (int)dim, specs);
    return semid_restore_common(ck, c, SEMID_RQVAE, specs, P_N, err);
}
