/*
 * plugins/semid/das.c: DAS, dual-aligned semantic IDs (CIKM'25), one stage, on the core loop
 * (/work/shared/papers/models.md section 2), with its two baselines as the option `align`.
 *
 * Three modules trained together, L = L_sem + alpha L_cf + align_beta L_align:
 *
 *   UISM (dual quantisation)  two RQ-VAEs (as rqvae.c), one over item content vectors X_i
 *       [n_items, D] (core/data/content.h), one over user content vectors X_u [n_users, DU]
 *       (semid_user_content: demographics + mean of the history's item content).
 *       L_sem = recon_i + quant_i + recon_u + quant_u; z_i, z_u = the quantised latents [., E].
 *   ICDM (ID-based CF, debiased)  embeddings int [U, E], con [U, E] (user interest,
 *       conformity), pro [I, E], pop [I, E] (item content-driven part, popularity part):
 *         biased   s(u, i) = int_u . pro_i + con_u . pop_i
 *         unbiased s0(u, i) = int_u . pro_i
 *         L_cf = BCE(s) + w_unbiased BCE(s0)          (1 positive : 1 uniform negative)
 *              + w_pop (MSE(pop_i w_p + b_p, zlog(1 + count_i))
 *                       + MSE(con_u w_c + b_c, mean over the history of zlog(1 + count)))
 *              + w_orth mean((int_u . con_u)^2 + (pro_i . pop_i)^2)
 *       zlog = log counts standardised over items (users: over users).
 *   MDAM (six InfoNCE views, in-batch negatives, both directions, temperature temp, cosine)
 *       1 z_u <-> pro_i   2 int_u <-> z_i   3 z_u <-> int_u   4 z_i <-> pro_i
 *       5 z_u <-> z_u'  (u' another user of item i)   6 z_i <-> z_i'  (i' another item of u)
 *       L_align = sum of the views named in `views`.
 *
 * One step = `batch` training interactions (u, i) of the view (shuffled each epoch), with a
 * uniform negative item j, the co-occurrence partners u', i', and `batch` uniform users and
 * items so that every user and item (not only the popular ones) trains the quantisers: each
 * quantiser sees 3 * batch rows (positives, partners, uniform).
 *
 * align:
 *   joint      the paper's one stage: everything above, one Adam per block (tokenizers, CF)
 *   two-stage  first cf_epochs passes of L_cf alone (inside epoch 1), then the tokenizers with
 *              L_sem + align_beta L_align against the frozen CF embeddings (same six views)
 *   none       L_sem only (two RQ-VAEs, no alignment): the no-alignment baseline
 *
 * Every op is an existing core op with a gradient check (matmul, add, sub, mul, sum, mean_all,
 * gather, slice, rvq with its straight-through estimator and commitment loss, infonce,
 * bce_logits); the plugin adds none. The model is a semid tokenizer (tok.c) whose item codes
 * are "semid.codes" and whose user codes are "semid.user_codes".
 */
#include "semid.h"

#include "tensor/loss.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

enum { EW1, EB1, EW2, EB2, CB, DW1, DB1, DW2, DB2, NQ };
enum { C_INT, C_CON, C_PRO, C_POP, C_WP, C_BP, C_WC, C_BC, NC };

static const char *const item_names[NQ] = {"item.enc.w1", "item.enc.b1",    "item.enc.w2",
                                           "item.enc.b2", "item.codebooks", "item.dec.w1",
                                           "item.dec.b1", "item.dec.w2",    "item.dec.b2"};
static const char *const user_names[NQ] = {"user.enc.w1", "user.enc.b1",    "user.enc.w2",
                                           "user.enc.b2", "user.codebooks", "user.dec.w1",
                                           "user.dec.b1", "user.dec.w2",    "user.dec.b2"};

int semid_das_specs(const semid_cfg *c, int D, int DU, rlab_param_spec *s)
{
    semid_rqvae_specs(c, D, s);
    semid_rqvae_specs(c, DU, s + NQ);
    for (int k = 0; k < NQ; k++) {
        s[k].name = item_names[k];
        s[NQ + k].name = user_names[k];
    }
    return 2 * NQ;
}

/* ---- user content vectors ------------------------------------------------------------- */

static int use_col(const rlab_feat_col *col, const char *cols)
{
    if (cols && cols[0]) {
        size_t n = strlen(col->name);
        for (const char *p = cols; *p;) {
            const char *e = strchr(p, ',');
            size_t len = e ? (size_t)(e - p) : strlen(p);
            if (len == n && !strncmp(p, col->name, n))
                return 1;
            p += len + (e ? 1 : 0);
        }
        return 0;
    }
    return (col->kind == RLAB_FEAT_TOKEN && rlab_vocab_size(&col->vocab) <= 64) ||
           col->kind == RLAB_FEAT_FLOAT;
}

static void l2norm(float *v, int n)
{
    double s = 0;
    for (int d = 0; d < n; d++)
        s += (double)v[d] * (double)v[d];
    if (s > 0) {
        float inv = (float)(1.0 / sqrt(s));
        for (int d = 0; d < n; d++)
            v[d] *= inv;
    }
}

int semid_user_content(const rlab_dataset *ds, const char *cols, const rlab_seqs *hist,
                       const float *X, int D, float **U, int32_t *DU, rlab_err *err)
{
    const int32_t NU = hist->n_users;
    const rlab_feats *f = ds ? &ds->user_feats : NULL;
    int demo = 0;
    for (int c = 0; f && c < f->ncols; c++) {
        const rlab_feat_col *col = &f->cols[c];
        if (!use_col(col, cols))
            continue;
        if (col->kind == RLAB_FEAT_TOKEN)
            demo += rlab_vocab_size(&col->vocab);
        else if (col->kind == RLAB_FEAT_FLOAT)
            demo += 1;
        else if (cols && cols[0])
            return rlab_errf(err, RLAB_EINVAL,
                             "user feature '%s' is neither a category nor a number: it cannot "
                             "be part of the user content vector",
                             col->name);
    }
    const int dim = demo + D;
    float *u = rlab_calloc((size_t)NU * (size_t)dim + 1, sizeof *u);
    if (!u)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    int at = 0;
    for (int c = 0; demo && c < f->ncols; c++) {
        const rlab_feat_col *col = &f->cols[c];
        if (!use_col(col, cols))
            continue;
        const int32_t n = f->n_entities < NU ? f->n_entities : NU;
        if (col->kind == RLAB_FEAT_TOKEN) {
            for (int32_t r = 0; r < n; r++)
                if (col->tok[r] >= 0)
                    u[(size_t)r * dim + at + col->tok[r]] = 1.0f;
            at += rlab_vocab_size(&col->vocab);
        } else if (col->kind == RLAB_FEAT_FLOAT) {
            double s = 0, s2 = 0;
            int64_t m = 0;
            for (int32_t r = 0; r < n; r++)
                if (!isnan(col->num[r])) {
                    s += (double)col->num[r];
                    s2 += (double)col->num[r] * (double)col->num[r];
                    m++;
                }
            const double mean = m ? s / (double)m : 0;
            const double var = m ? s2 / (double)m - mean * mean : 0;
            const double sd = var > 1e-12 ? sqrt(var) : 1;
            for (int32_t r = 0; r < n; r++)
                if (!isnan(col->num[r]))
                    u[(size_t)r * dim + at] = (float)(((double)col->num[r] - mean) / sd);
            at += 1;
        }
    }
    for (int32_t r = 0; r < NU; r++) {
        float *row = u + (size_t)r * dim;
        if (demo)
            l2norm(row, demo);
        const int64_t lo = hist->off[r], hi = hist->off[r + 1];
        for (int64_t k = lo; k < hi; k++) {
            const float *x = X + (size_t)hist->items[k] * D;
            for (int d = 0; d < D; d++)
                row[demo + d] += x[d];
        }
        l2norm(row + demo, D);
    }
    *U = u;
    *DU = dim;
    return RLAB_OK;
}

/* ---- training state ------------------------------------------------------------------- */

typedef struct side {
    int base; /* first tensor of this quantiser in P */
    int32_t N, D;
    float *X;       /* [N][D] content */
    float *xb;      /* [3B][D] rows of the step */
    int32_t *rows;  /* [3B] */
    int32_t *codes; /* [max(3B, chunk)][L] codes of the last forward */
    int64_t *usage; /* [L][K] choices this epoch */
    const float *z; /* encoder output of the last step (restart) */
    int64_t nz;
} side;

typedef struct das_state {
    const rlab_fit *fit;
    const semid_cfg *c;
    side it, us;
    rlab_params *P, *C; /* tokenizers, CF */
    rlab_opt *opt_p, *opt_c;
    rlab_tape *tape;
    rlab_rng rng;
    int views; /* bit v-1 = view v */
    int B;
    int64_t n_pairs;
    int32_t *pu, *pi, *perm; /* training interactions, epoch order */
    int64_t *iu_off;         /* item -> users (CSR) */
    int32_t *iu;
    float *pop_t, *con_t;                   /* [n_items], [n_users] standardised targets */
    int32_t *bu, *bi, *bu2, *bi2, *uu, *ij; /* [B], [B], [B], [B], [2B], [2B] */
    float *labels, *tpop, *tcon;            /* [2B], [2B], [B] */
    float *rbuf;
    int inited, epoch, cf_done;
    int64_t n_steps, steps, built_at, restarts;
    rlab_model *m;
} das_state;

static int tape_err(rlab_tape *t, rlab_err *err)
{
    return rlab_errf(err, rlab_tape_error(t), "das: %s", rlab_tape_errmsg(t));
}

static rlab_tensor *linear(rlab_tape *t, rlab_tensor *x, rlab_params *P, int w, int b)
{
    return rlab_t_add(t, rlab_t_matmul(t, x, &P->t[w], 0, 0), &P->t[b]);
}

static rlab_tensor *encode(rlab_tape *t, rlab_params *P, int base, rlab_tensor *x)
{
    return linear(t, rlab_t_relu(t, linear(t, x, P, base + EW1, base + EB1)), P, base + EW2,
                  base + EB2);
}

static rlab_tensor *decode(rlab_tape *t, rlab_params *P, int base, rlab_tensor *z)
{
    return linear(t, rlab_t_relu(t, linear(t, z, P, base + DW1, base + DB1)), P, base + DW2,
                  base + DB2);
}

/* 1/n sum_r ||a_r - x_r||^2 */
static rlab_tensor *sq_err(rlab_tape *t, rlab_tensor *a, rlab_tensor *x, int64_t n)
{
    rlab_tensor *d = rlab_t_sub(t, a, x);
    return rlab_t_scale(t, rlab_t_sum_all(t, rlab_t_mul(t, d, d)), 1.0f / (float)(n ? n : 1));
}

/* Quantiser forward on rows s->rows[0..n): returns z_q [n, E]; *rec and *commit the losses. */
static rlab_tensor *side_forward(das_state *st, side *s, int64_t n, rlab_tensor **rec,
                                 rlab_tensor **commit)
{
    rlab_tape *t = st->tape;
    for (int64_t r = 0; r < n; r++)
        memcpy(s->xb + r * s->D, s->X + (size_t)s->rows[r] * s->D, (size_t)s->D * sizeof *s->xb);
    rlab_tensor *x = rlab_t_input(t, s->xb, 2, (int64_t[]){n, s->D});
    rlab_tensor *z = encode(t, st->P, s->base, x);
    rlab_tensor *zq = rlab_t_rvq(t, z, &st->P->t[s->base + CB], st->c->beta, s->codes, commit);
    *rec = sq_err(t, decode(t, st->P, s->base, zq), x, n);
    s->z = z->data;
    s->nz = n;
    return zq;
}

/* Codebooks of a quantiser from residual k-means of the encoder outputs of rows[0..n). */
static int init_codebooks(das_state *st, side *s, const int32_t *rows, int64_t n, rlab_err *err)
{
    const semid_cfg *c = st->c;
    const int E = c->latent;
    float *xs = rlab_malloc((size_t)(n * s->D) * sizeof *xs + 1);
    float *Z = rlab_malloc((size_t)(n * E) * sizeof *Z + 1);
    int32_t *cd = rlab_malloc((size_t)(n * c->levels) * sizeof *cd + 1);
    int rc = (!Z || !xs || !cd) ? rlab_errf(err, RLAB_ENOMEM, "out of memory") : RLAB_OK;
    if (!rc) {
        for (int64_t r = 0; r < n; r++)
            memcpy(xs + r * s->D, s->X + (size_t)rows[r] * s->D, (size_t)s->D * sizeof *xs);
        rlab_tape_reset(st->tape);
        rlab_tensor *z =
            encode(st->tape, st->P, s->base, rlab_t_input(st->tape, xs, 2, (int64_t[]){n, s->D}));
        if (rlab_tape_error(st->tape))
            rc = tape_err(st->tape, err);
        else
            memcpy(Z, z->data, (size_t)(n * E) * sizeof *Z);
    }
    if (!rc)
        rc = semid_rkmeans(Z, n, E, c->levels, c->codes, c->iters, 0, &st->rng,
                           st->P->t[s->base + CB].data, cd, c->levels, NULL, NULL, NULL, err);
    rlab_free(xs);
    rlab_free(Z);
    rlab_free(cd);
    return rc;
}

/* Move every code no row chose this epoch onto the residual of a random row of the last
 * forward (as rqvae.c). */
static void restart_dead(das_state *st, side *s)
{
    const int L = st->c->levels, K = st->c->codes, E = st->c->latent;
    float *cb = st->P->t[s->base + CB].data, *r = st->rbuf;
    if (!s->z || s->nz < 1)
        return;
    for (int l = 0; l < L; l++)
        for (int k = 0; k < K; k++) {
            if (s->usage[(size_t)l * K + k])
                continue;
            int64_t b = (int64_t)rlab_rng_below(&st->rng, (uint64_t)s->nz);
            memcpy(r, s->z + b * E, (size_t)E * sizeof *r);
            for (int j = 0; j < l; j++) {
                const float *q = cb + ((size_t)j * K + (size_t)s->codes[b * L + j]) * E;
                for (int d = 0; d < E; d++)
                    r[d] -= q[d];
            }
            memcpy(cb + ((size_t)l * K + k) * E, r, (size_t)E * sizeof *r);
            st->restarts++;
        }
}

static void das_end(void *state);

static int side_alloc(side *s, int base, int32_t N, int64_t rows, const semid_cfg *c)
{
    s->base = base;
    s->N = N;
    const int64_t cr = rows > 1024 ? rows : 1024;
    s->xb = rlab_malloc((size_t)(cr * s->D) * sizeof *s->xb + 1);
    s->rows = rlab_malloc((size_t)cr * sizeof *s->rows + 1);
    s->codes = rlab_malloc((size_t)(cr * c->levels) * sizeof *s->codes + 1);
    s->usage = rlab_calloc((size_t)c->levels * (size_t)c->codes, sizeof *s->usage);
    return s->xb && s->rows && s->codes && s->usage;
}

static void side_free(side *s)
{
    rlab_free(s->X);
    rlab_free(s->xb);
    rlab_free(s->rows);
    rlab_free(s->codes);
    rlab_free(s->usage);
}

/* Standardise v[0..n) in place (sd 0: centred only). */
static void zscore(float *v, int64_t n)
{
    double s = 0, s2 = 0;
    for (int64_t k = 0; k < n; k++) {
        s += (double)v[k];
        s2 += (double)v[k] * (double)v[k];
    }
    const double mean = n ? s / (double)n : 0, var = n ? s2 / (double)n - mean * mean : 0;
    const double sd = var > 1e-12 ? sqrt(var) : 1;
    for (int64_t k = 0; k < n; k++)
        v[k] = (float)(((double)v[k] - mean) / sd);
}

static int das_setup(das_state *s, const rlab_fit *fit, rlab_err *err)
{
    const semid_cfg *c = fit->cfg;
    const rlab_view *v = fit->view;
    s->fit = fit;
    s->c = c;
    rlab_rng_seed(&s->rng, (uint64_t)fit->opts->seed);
    for (const char *p = c->views; *p; p++) {
        if (*p < '1' || *p > '6')
            return rlab_errf(err, RLAB_EINVAL,
                             "views='%s': expected digits 1-6 (the six alignments)", c->views);
        s->views |= 1 << (*p - '1');
    }
    int rc = semid_content(fit, c, &s->it.X, &s->it.D, err);
    if (rc)
        return rc;
    if (c->codes > v->n_items || c->codes > v->n_users)
        return rlab_errf(err, RLAB_EINVAL, "codes=%d is more than the %d items or %d users",
                         c->codes, (int)v->n_items, (int)v->n_users);
    rc = semid_user_content(fit->data, c->user_cols, &v->train, s->it.X, s->it.D, &s->us.X,
                            &s->us.D, err);
    if (rc)
        return rc;
    const int B = c->batch;
    s->B = B;
    if (!side_alloc(&s->it, 0, v->n_items, 3 * (int64_t)B, c) ||
        !side_alloc(&s->us, NQ, v->n_users, 3 * (int64_t)B, c))
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    /* parameters */
    rlab_param_spec specs[2 * NQ];
    semid_das_specs(c, s->it.D, s->us.D, specs);
    s->P = rlab_params_new(specs, 2 * NQ, &s->rng, err);
    if (!s->P)
        return err->code ? err->code : RLAB_ENOMEM;
    const int E = c->latent, U = v->n_users, I = v->n_items;
    const rlab_param_spec cs[NC] = {
        {"cf.user.int", 2, {U, E}, RLAB_INIT_NORMAL, 0.1f},
        {"cf.user.con", 2, {U, E}, RLAB_INIT_NORMAL, 0.1f},
        {"cf.item.pro", 2, {I, E}, RLAB_INIT_NORMAL, 0.1f},
        {"cf.item.pop", 2, {I, E}, RLAB_INIT_NORMAL, 0.1f},
        {"cf.pop.w", 2, {E, 1}, RLAB_INIT_XAVIER, 0},
        {"cf.pop.b", 1, {1}, RLAB_INIT_ZERO, 0},
        {"cf.con.w", 2, {E, 1}, RLAB_INIT_XAVIER, 0},
        {"cf.con.b", 1, {1}, RLAB_INIT_ZERO, 0},
    };
    s->C = rlab_params_new(cs, NC, &s->rng, err);
    if (!s->C)
        return err->code ? err->code : RLAB_ENOMEM;
    rlab_opt_config oc = rlab_opt_defaults(RLAB_OPT_ADAM);
    oc.lr = (float)c->lr;
    s->opt_p = rlab_opt_new(s->P, &oc, err);
    s->opt_c = s->opt_p ? rlab_opt_new(s->C, &oc, err) : NULL;
    s->tape = s->opt_c ? rlab_tape_new((size_t)128 << 20, 512, err) : NULL;
    if (!s->tape)
        return err->code ? err->code : RLAB_ENOMEM;
    /* interactions, item -> users, popularity targets */
    const rlab_seqs *tr = &v->train;
    s->n_pairs = tr->off[U];
    if (s->n_pairs < 1)
        return rlab_errf(err, RLAB_EINVAL, "das: the training split has no interactions");
    if (s->n_pairs > INT32_MAX)
        return rlab_errf(err, RLAB_EINVAL, "das: too many interactions");
    s->pu = rlab_malloc((size_t)s->n_pairs * sizeof *s->pu);
    s->pi = rlab_malloc((size_t)s->n_pairs * sizeof *s->pi);
    s->perm = rlab_malloc((size_t)s->n_pairs * sizeof *s->perm);
    s->iu_off = rlab_calloc((size_t)I + 1, sizeof *s->iu_off);
    s->iu = rlab_malloc((size_t)s->n_pairs * sizeof *s->iu);
    s->pop_t = rlab_calloc((size_t)I + 1, sizeof *s->pop_t);
    s->con_t = rlab_calloc((size_t)U + 1, sizeof *s->con_t);
    s->bu = rlab_malloc((size_t)B * 4 * sizeof *s->bu);
    s->uu = rlab_malloc((size_t)B * 4 * sizeof *s->uu);
    s->labels = rlab_malloc((size_t)B * 5 * sizeof *s->labels);
    s->rbuf = rlab_malloc((size_t)E * sizeof *s->rbuf);
    if (!s->pu || !s->pi || !s->perm || !s->iu_off || !s->iu || !s->pop_t || !s->con_t || !s->bu ||
        !s->uu || !s->labels || !s->rbuf)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    s->bi = s->bu + B;
    s->bu2 = s->bi + B;
    s->bi2 = s->bu2 + B;
    s->ij = s->uu + 2 * B;
    s->tpop = s->labels + 2 * B;
    s->tcon = s->tpop + 2 * B;
    for (int32_t u = 0; u < U; u++)
        for (int64_t k = tr->off[u]; k < tr->off[u + 1]; k++) {
            s->pu[k] = u;
            s->pi[k] = tr->items[k];
            s->perm[k] = (int32_t)k;
            s->iu_off[tr->items[k] + 1]++;
        }
    for (int32_t i = 0; i < I; i++)
        s->iu_off[i + 1] += s->iu_off[i];
    {
        int64_t *fill = rlab_malloc((size_t)I * sizeof *fill + 1);
        if (!fill)
            return rlab_errf(err, RLAB_ENOMEM, "out of memory");
        memcpy(fill, s->iu_off, (size_t)I * sizeof *fill);
        for (int64_t k = 0; k < s->n_pairs; k++)
            s->iu[fill[s->pi[k]]++] = s->pu[k];
        rlab_free(fill);
    }
    for (int32_t i = 0; i < I; i++)
        s->pop_t[i] = (float)log1p((double)(s->iu_off[i + 1] - s->iu_off[i]));
    for (int32_t u = 0; u < U; u++) {
        double a = 0;
        for (int64_t k = tr->off[u]; k < tr->off[u + 1]; k++)
            a += (double)s->pop_t[tr->items[k]];
        const int64_t n = tr->off[u + 1] - tr->off[u];
        s->con_t[u] = n ? (float)(a / (double)n) : 0.0f;
    }
    zscore(s->pop_t, I);
    zscore(s->con_t, U);
    for (int b = 0; b < 2 * B; b++)
        s->labels[b] = b < B ? 1.0f : 0.0f;
    return RLAB_OK;
}

static int das_begin(const rlab_fit *fit, void **state, rlab_err *err)
{
    das_state *s = rlab_calloc(1, sizeof *s);
    if (!s)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    int rc = das_setup(s, fit, err);
    if (rc) {
        das_end(s);
        return rc;
    }
    *state = s;
    return RLAB_OK;
}

/* Fill the step's pairs (i-th batch of the epoch order), negatives, partners, uniform rows. */
static void sample(das_state *s, int64_t i)
{
    const int B = s->B;
    const rlab_seqs *tr = &s->fit->view->train;
    const int32_t I = s->it.N, U = s->us.N;
    for (int b = 0; b < B; b++) {
        const int32_t k = s->perm[((int64_t)i * B + b) % s->n_pairs];
        const int32_t u = s->pu[k], it = s->pi[k];
        s->bu[b] = u;
        s->bi[b] = it;
        s->uu[b] = s->uu[B + b] = u;
        s->ij[b] = it;
        s->ij[B + b] = (int32_t)rlab_rng_below(&s->rng, (uint64_t)I);
        /* co-occurrence partners (another user of the item, another item of the user;
         * the same one when there is no other) */
        const int64_t n_u = s->iu_off[it + 1] - s->iu_off[it];
        int32_t u2 = s->iu[s->iu_off[it] + (int64_t)rlab_rng_below(&s->rng, (uint64_t)n_u)];
        if (u2 == u && n_u > 1)
            u2 = s->iu[s->iu_off[it] + (int64_t)rlab_rng_below(&s->rng, (uint64_t)n_u)];
        const int64_t n_i = tr->off[u + 1] - tr->off[u];
        int32_t i2 = tr->items[tr->off[u] + (int64_t)rlab_rng_below(&s->rng, (uint64_t)n_i)];
        if (i2 == it && n_i > 1)
            i2 = tr->items[tr->off[u] + (int64_t)rlab_rng_below(&s->rng, (uint64_t)n_i)];
        s->bu2[b] = u2;
        s->bi2[b] = i2;
        s->tpop[b] = s->pop_t[it];
        s->tpop[B + b] = s->pop_t[s->ij[B + b]];
        s->tcon[b] = s->con_t[u];
        /* quantiser rows: positives, partners, uniform */
        s->it.rows[b] = it;
        s->it.rows[B + b] = i2;
        s->it.rows[2 * B + b] = (int32_t)rlab_rng_below(&s->rng, (uint64_t)I);
        s->us.rows[b] = u;
        s->us.rows[B + b] = u2;
        s->us.rows[2 * B + b] = (int32_t)rlab_rng_below(&s->rng, (uint64_t)U);
    }
}

/* sum over the last dim of a * b: [n, E] x [n, E] -> [n] */
static rlab_tensor *rowdot(rlab_tape *t, rlab_tensor *a, rlab_tensor *b)
{
    return rlab_t_sum(t, rlab_t_mul(t, a, b), -1);
}

static rlab_tensor *mse(rlab_tape *t, rlab_tensor *pred, float *target, int64_t n)
{
    rlab_tensor *d = rlab_t_sub(t, pred, rlab_t_input(t, target, 2, (int64_t[]){n, 1}));
    return rlab_t_mean_all(t, rlab_t_mul(t, d, d));
}

typedef struct cf_out {
    rlab_tensor *loss, *int_u, *pro_i; /* int_u [B, E] and pro_i [B, E] of the positives */
} cf_out;

/* L_cf of the sampled batch with the CF tensors tb[NC] (parameters or frozen inputs). */
static cf_out cf_loss(das_state *s, rlab_tensor *const *tb)
{
    rlab_tape *t = s->tape;
    const semid_cfg *c = s->c;
    const int B = s->B;
    rlab_tensor *ui = rlab_t_gather(t, tb[C_INT], s->uu, 2 * B, -1, 0, NULL);
    rlab_tensor *uc = rlab_t_gather(t, tb[C_CON], s->uu, 2 * B, -1, 0, NULL);
    rlab_tensor *ip = rlab_t_gather(t, tb[C_PRO], s->ij, 2 * B, -1, 0, NULL);
    rlab_tensor *iq = rlab_t_gather(t, tb[C_POP], s->ij, 2 * B, -1, 0, NULL);
    rlab_tensor *d_int = rowdot(t, ui, ip), *d_con = rowdot(t, uc, iq);
    rlab_tensor *l = rlab_t_bce_logits(t, rlab_t_add(t, d_int, d_con), s->labels, NULL);
    if (c->w_unbiased > 0)
        l = rlab_t_add(
            t, l, rlab_t_scale(t, rlab_t_bce_logits(t, d_int, s->labels, NULL), c->w_unbiased));
    rlab_tensor *uc1 = rlab_t_slice(t, uc, 0, 0, B), *ui1 = rlab_t_slice(t, ui, 0, 0, B);
    if (c->w_pop > 0) {
        rlab_tensor *pp = rlab_t_add(t, rlab_t_matmul(t, iq, tb[C_WP], 0, 0), tb[C_BP]);
        rlab_tensor *pc = rlab_t_add(t, rlab_t_matmul(t, uc1, tb[C_WC], 0, 0), tb[C_BC]);
        l = rlab_t_add(
            t, l,
            rlab_t_scale(t, rlab_t_add(t, mse(t, pp, s->tpop, 2 * B), mse(t, pc, s->tcon, B)),
                         c->w_pop));
    }
    if (c->w_orth > 0) {
        rlab_tensor *o1 = rowdot(t, ui1, uc1), *o2 = rowdot(t, ip, iq);
        rlab_tensor *orth = rlab_t_add(t, rlab_t_mean_all(t, rlab_t_mul(t, o1, o1)),
                                       rlab_t_mean_all(t, rlab_t_mul(t, o2, o2)));
        l = rlab_t_add(t, l, rlab_t_scale(t, orth, c->w_orth));
    }
    return (cf_out){l, ui1, rlab_t_slice(t, ip, 0, 0, B)};
}

static rlab_tensor *cf_param(das_state *s, int k, int frozen)
{
    rlab_tensor *p = &s->C->t[k];
    return frozen ? rlab_t_input(s->tape, p->data, p->ndim, p->shape) : p;
}

/* One CF-only step (two-stage's first stage). */
static int cf_step(das_state *s, int64_t i, double *loss, rlab_err *err)
{
    rlab_tape *t = s->tape;
    sample(s, i);
    rlab_tape_reset(t);
    rlab_tensor *tb[NC];
    for (int k = 0; k < NC; k++)
        tb[k] = cf_param(s, k, 0);
    cf_out cf = cf_loss(s, tb);
    if (rlab_tape_error(t))
        return tape_err(t, err);
    rlab_params_zero_grad(s->C);
    if (rlab_tape_backward(t, cf.loss))
        return tape_err(t, err);
    int rc = rlab_opt_step(s->opt_c, s->C);
    if (rc)
        return rlab_errf(err, rc, "das: optimiser step failed");
    *loss = (double)cf.loss->data[0];
    return RLAB_OK;
}

static int64_t steps_per_epoch(const das_state *s)
{
    return s->c->steps ? s->c->steps : (s->n_pairs + s->B - 1) / s->B;
}

static int das_epoch(void *state, int e, int64_t *n_steps, rlab_err *err)
{
    das_state *s = state;
    const semid_cfg *c = s->c;
    s->epoch = e;
    s->n_steps = steps_per_epoch(s);
    if (c->align == SEMID_ALIGN_TWO_STAGE && !s->cf_done) {
        const int ce = c->cf_epochs ? c->cf_epochs : s->fit->opts->epochs;
        for (int ep = 1; ep <= ce; ep++) {
            rlab_rng_shuffle_i32(&s->rng, s->perm, (size_t)s->n_pairs);
            double sum = 0;
            for (int64_t i = 0; i < s->n_steps; i++) {
                if (semid_cancelled(s->fit))
                    return rlab_errf(err, RLAB_ECANCELED, "cancelled");
                double l = 0;
                int rc = cf_step(s, i, &l, err);
                if (rc)
                    return rc;
                sum += l;
            }
            if (s->fit->log) {
                char line[96];
                snprintf(line, sizeof line, "two-stage: CF epoch %d/%d  loss %.4f", ep, ce,
                         sum / (double)s->n_steps);
                s->fit->log(s->fit->ud, line);
            }
        }
        s->cf_done = 1;
    }
    rlab_rng_shuffle_i32(&s->rng, s->perm, (size_t)s->n_pairs);
    *n_steps = s->n_steps;
    memset(s->it.usage, 0, (size_t)c->levels * (size_t)c->codes * sizeof *s->it.usage);
    memset(s->us.usage, 0, (size_t)c->levels * (size_t)c->codes * sizeof *s->us.usage);
    return RLAB_OK;
}

static int das_step(void *state, int64_t i, double *loss, double *weight, double *parts,
                    rlab_err *err)
{
    das_state *s = state;
    const semid_cfg *c = s->c;
    const int B = s->B;
    rlab_tape *t = s->tape;
    sample(s, i);
    if (!s->inited) {
        int rc = init_codebooks(s, &s->it, s->it.rows, 3 * (int64_t)B, err);
        if (!rc)
            rc = init_codebooks(s, &s->us, s->us.rows, 3 * (int64_t)B, err);
        if (rc)
            return rc;
        s->inited = 1;
    }
    rlab_tape_reset(t);
    rlab_tensor *rec_i, *com_i, *rec_u, *com_u;
    rlab_tensor *zi = side_forward(s, &s->it, 3 * (int64_t)B, &rec_i, &com_i);
    rlab_tensor *zu = side_forward(s, &s->us, 3 * (int64_t)B, &rec_u, &com_u);
    rlab_tensor *sem = rlab_t_add(t, rlab_t_add(t, rec_i, com_i), rlab_t_add(t, rec_u, com_u));
    rlab_tensor *l = sem, *lcf = NULL, *lal = NULL;
    const int joint = c->align == SEMID_ALIGN_JOINT;
    if (c->align != SEMID_ALIGN_NONE) {
        rlab_tensor *tb[NC];
        for (int k = 0; k < NC; k++)
            tb[k] = cf_param(s, k, !joint);
        cf_out cf = cf_loss(s, tb);
        if (joint) {
            lcf = cf.loss;
            l = rlab_t_add(t, l, rlab_t_scale(t, lcf, c->alpha));
        }
        rlab_tensor *z_i = rlab_t_slice(t, zi, 0, 0, B), *z_i2 = rlab_t_slice(t, zi, 0, B, B);
        rlab_tensor *z_u = rlab_t_slice(t, zu, 0, 0, B), *z_u2 = rlab_t_slice(t, zu, 0, B, B);
        rlab_tensor *pairs[6][2] = {{z_u, cf.pro_i}, {cf.int_u, z_i}, {z_u, cf.int_u},
                                    {z_i, cf.pro_i}, {z_u, z_u2},     {z_i, z_i2}};
        for (int v = 0; v < 6; v++) {
            if (!(s->views & (1 << v)))
                continue;
            rlab_tensor *a = rlab_t_infonce(t, pairs[v][0], pairs[v][1], c->temp, 1, 1);
            lal = lal ? rlab_t_add(t, lal, a) : a;
        }
        if (lal)
            l = rlab_t_add(t, l, rlab_t_scale(t, lal, c->align_beta));
    }
    if (rlab_tape_error(t))
        return tape_err(t, err);
    rlab_params_zero_grad(s->P);
    rlab_params_zero_grad(s->C);
    if (rlab_tape_backward(t, l))
        return tape_err(t, err);
    int rc = rlab_opt_step(s->opt_p, s->P);
    if (!rc && joint)
        rc = rlab_opt_step(s->opt_c, s->C);
    if (rc)
        return rlab_errf(err, rc, "das: optimiser step failed");
    const int L = c->levels, K = c->codes;
    for (int64_t r = 0; r < 3 * (int64_t)B; r++)
        for (int lv = 0; lv < L; lv++) {
            s->it.usage[(size_t)lv * K + s->it.codes[r * L + lv]]++;
            s->us.usage[(size_t)lv * K + s->us.codes[r * L + lv]]++;
        }
    if (c->restart && i == s->n_steps - 1) {
        restart_dead(s, &s->it);
        restart_dead(s, &s->us);
    }
    *loss = (double)l->data[0];
    *weight = (double)B;
    parts[0] = (double)(rec_i->data[0] + rec_u->data[0]);
    parts[1] = (double)(com_i->data[0] + com_u->data[0]);
    parts[2] = lcf ? (double)lcf->data[0] : 0.0;
    parts[3] = lal ? (double)lal->data[0] : 0.0;
    s->steps++;
    return RLAB_OK;
}

/* Codes [N][L + 1] (levels only) of every row of a side, and recon [L] (may be NULL). */
static int side_codes(das_state *s, side *sd, int32_t *codes, float *recon, rlab_err *err)
{
    const semid_cfg *c = s->c;
    const int L = c->levels, K = c->codes, E = c->latent;
    const int64_t N = sd->N, CH = 1024;
    double rec[SEMID_MAX_LEVELS] = {0};
    float *zq = rlab_malloc((size_t)(CH * E) * sizeof *zq);
    if (!zq)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    const float *cb = s->P->t[sd->base + CB].data;
    rlab_tape *tp = s->tape;
    int rc = RLAB_OK;
    for (int64_t lo = 0; !rc && lo < N; lo += CH) {
        const int64_t B = lo + CH < N ? CH : N - lo;
        rlab_tape_reset(tp);
        rlab_tensor *x = rlab_t_input(tp, sd->X + lo * sd->D, 2, (int64_t[]){B, sd->D});
        rlab_t_rvq(tp, encode(tp, s->P, sd->base, x), &s->P->t[sd->base + CB], c->beta, sd->codes,
                   NULL);
        if (rlab_tape_error(tp)) {
            rc = tape_err(tp, err);
            break;
        }
        memset(zq, 0, (size_t)(B * E) * sizeof *zq);
        for (int l = 0; l < L && !rc; l++) {
            for (int64_t b = 0; b < B; b++) {
                int32_t code = sd->codes[b * L + l];
                codes[(lo + b) * (L + 1) + l] = code;
                const float *q = cb + ((size_t)l * K + (size_t)code) * E;
                for (int d = 0; d < E; d++)
                    zq[b * E + d] += q[d];
            }
            if (!recon)
                continue;
            rlab_tape_reset(tp);
            rlab_tensor *xi = rlab_t_input(tp, sd->X + lo * sd->D, 2, (int64_t[]){B, sd->D});
            rlab_tensor *e = sq_err(
                tp, decode(tp, s->P, sd->base, rlab_t_input(tp, zq, 2, (int64_t[]){B, E})), xi, 1);
            if (rlab_tape_error(tp))
                rc = tape_err(tp, err);
            else
                rec[l] += (double)e->data[0];
        }
    }
    rlab_free(zq);
    for (int l = 0; !rc && recon && l < L; l++)
        recon[l] = (float)(rec[l] / (double)(N ? N : 1));
    return rc;
}

static rlab_model *build(das_state *s, rlab_err *err)
{
    const semid_cfg *c = s->c;
    const int L = c->levels;
    const int64_t N = s->it.N, NU = s->us.N;
    semid_tok *t = rlab_calloc(1, sizeof *t);
    if (!t || !(t->codes = rlab_malloc((size_t)(N * (L + 1)) * sizeof *t->codes)) ||
        !(t->ucodes = rlab_malloc((size_t)(NU * (L + 1)) * sizeof *t->ucodes)) ||
        !(t->recon = rlab_calloc((size_t)L, sizeof *t->recon))) {
        semid_tok_free(t);
        rlab_errf(err, RLAB_ENOMEM, "out of memory");
        return NULL;
    }
    t->kind = SEMID_DAS;
    t->L = L;
    t->K = c->codes;
    t->D = s->it.D;
    t->DU = s->us.D;
    t->n_items = (int32_t)N;
    t->n_ucodes = (int32_t)NU;
    t->train_info = s->epoch;
    rlab_param_spec specs[2 * NQ];
    semid_das_specs(c, s->it.D, s->us.D, specs);
    rlab_rng rng;
    rlab_rng_seed(&rng, 0);
    t->P = rlab_params_new(specs, 2 * NQ, &rng, err);
    int rc = t->P ? RLAB_OK : (err->code ? err->code : RLAB_ENOMEM);
    if (!rc)
        memcpy(t->P->data, s->P->data, s->P->count * sizeof *s->P->data);
    if (!rc)
        rc = side_codes(s, &s->it, t->codes, t->recon, err);
    if (!rc)
        rc = side_codes(s, &s->us, t->ucodes, NULL, err);
    if (!rc && (t->umax_dedup = semid_dedup(t->ucodes, NU, L)) < 0)
        rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
    if (!rc)
        rc = semid_tok_finish(t, s->fit, err);
    semid_level_stats st[SEMID_MAX_LEVELS];
    if (!rc)
        rc = semid_stats(t->ucodes, NU, L + 1, L, c->codes, st, err);
    for (int l = 0; !rc && l < L; l++) {
        if (s->fit->log) {
            char line[160];
            snprintf(line, sizeof line,
                     "user level %d: %d/%d codes used, entropy %.3f nats, collision %.4f", l + 1,
                     st[l].used, c->codes, st[l].entropy, st[l].collision);
            s->fit->log(s->fit->ud, line);
        }
        if (s->fit->metric) {
            char name[32];
            snprintf(name, sizeof name, "user.util.l%d", l + 1);
            s->fit->metric(s->fit->ud, l + 1, "train", name, NULL, st[l].util);
            snprintf(name, sizeof name, "user.collision.l%d", l + 1);
            s->fit->metric(s->fit->ud, l + 1, "train", name, NULL, st[l].collision);
        }
    }
    if (rc) {
        semid_tok_free(t);
        return NULL;
    }
    return semid_tok_wrap(t, s->fit->view->n_users, err);
}

static rlab_model *build_any(void *state, rlab_err *err) { return build(state, err); }

static rlab_model *das_model(void *state)
{
    das_state *s = state;
    return semid_cached_model(&s->m, &s->built_at, s->steps, build_any, s, s->fit, "das");
}

static void das_end(void *state)
{
    das_state *s = state;
    rlab_model_release(s->m);
    side_free(&s->it);
    side_free(&s->us);
    rlab_free(s->pu);
    rlab_free(s->pi);
    rlab_free(s->perm);
    rlab_free(s->iu_off);
    rlab_free(s->iu);
    rlab_free(s->pop_t);
    rlab_free(s->con_t);
    rlab_free(s->bu);
    rlab_free(s->uu);
    rlab_free(s->labels);
    rlab_free(s->rbuf);
    rlab_opt_free(s->opt_p);
    rlab_opt_free(s->opt_c);
    rlab_tape_free(s->tape);
    rlab_params_free(s->P);
    rlab_params_free(s->C);
    rlab_free(s);
}

static const char *const das_parts[] = {"recon", "quant", "cf", "align", NULL};

const rlab_fit_ops semid_das_fit = {.begin = das_begin,
                                    .epoch = das_epoch,
                                    .step = das_step,
                                    .part_names = das_parts,
                                    .model = das_model,
                                    .end = das_end};

rlab_model *semid_das_restore(rlab_host *host, const rlab_ckpt *ck, const void *cfg, rlab_err *err)
{
    (void)host;
    const semid_cfg *c = cfg;
    int64_t dim = 0, udim = 0; /* set by semid_ckpt_int on success */
    if (semid_ckpt_int(ck, "semid.dim", 1, 1 << 24, &dim, err) ||
        semid_ckpt_int(ck, "semid.user_dim", 1, 1 << 24, &udim, err))
        return NULL;
    int nd = 0;
    int64_t sh[RLAB_CKPT_MAXDIM];
    const int32_t *uc = rlab_ckpt_tensor(ck, "semid.user_codes", RLAB_DT_I32, &nd, sh, err);
    if (!uc)
        return NULL;
    const int L = c->levels;
    if (nd != 2 || sh[0] < 1 || sh[0] > INT32_MAX || sh[1] != L + 1) {
        rlab_errf(err, RLAB_EFORMAT, "checkpoint: semid.user_codes is not [users, %d]", L + 1);
        return NULL;
    }
    for (int64_t x = 0; x < sh[0] * (L + 1); x++)
        if (uc[x] < 0 || (x % (L + 1) < L && uc[x] >= c->codes) || uc[x] >= sh[0]) {
            rlab_errf(err, RLAB_EFORMAT, "checkpoint: semid.user_codes holds %d, not a code",
                      (int)uc[x]);
            return NULL;
        }
    rlab_param_spec specs[2 * NQ];
    semid_das_specs(c, (int)dim, (int)udim, specs);
    rlab_model *m = semid_restore_common(ck, c, SEMID_DAS, specs, 2 * NQ, err);
    if (!m)
        return NULL;
    semid_tok *t = m->impl;
    t->ucodes = rlab_malloc((size_t)(sh[0] * (L + 1)) * sizeof *t->ucodes);
    if (!t->ucodes) {
        rlab_model_release(m);
        rlab_errf(err, RLAB_ENOMEM, "out of memory");
        return NULL;
    }
    memcpy(t->ucodes, uc, (size_t)(sh[0] * (L + 1)) * sizeof *uc);
    t->n_ucodes = (int32_t)sh[0];
    t->DU = (int32_t)udim;
    for (int64_t u = 0; u < sh[0]; u++)
        if (t->ucodes[u * (L + 1) + L] > t->umax_dedup)
            t->umax_dedup = t->ucodes[u * (L + 1) + L];
    return m;
}
