/*
 * plugins/semid/tok.c: the tokenizer model every semid kind produces, and the residual
 * k-means kinds (rkmeans, brkmeans) on the core training loop.
 *
 * State: codes [n_items][L + 1] (the L codes, then the de-duplication digit), the per-level
 * reconstruction error [L], and the parameters (k-means: the codebooks [L][K][D] in content
 * space; RQ-VAE: encoder, codebooks in latent space, decoder). Checkpoint tensors:
 *   semid.codes  I32 [n_items, L + 1]   the semantic IDs (what other plugins read)
 *   semid.recon  F32 [L]                reconstruction error after levels 1..l
 *   <params>     F32                    "codebooks" or the RQ-VAE network
 * and metadata semid.dim (content dims), semid.train_info.
 *
 * As a recommender (so eval / recommend / export work for every kind): the score of item j
 * for a query is the number of (history item h, level l) pairs where h and j share the code
 * prefix c_1..c_l, i.e. sum over the history of the length of the common code prefix with j.
 * Only the codes are used (no content vectors), and the user index is not: the model also
 * recommends for unseen users from their history. Items with no prefix in common score 0
 * (ties: lower item index first, as the generic top-k does).
 */
#include "semid.h"

#include <cblas.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const semid_kind_names[] = {"rkmeans", "brkmeans", "rqvae", "das"};

int semid_cancelled(const rlab_fit *fit)
{
    return fit && fit->cancelled && fit->cancelled(fit->ud);
}

int semid_content(const rlab_fit *fit, const semid_cfg *cfg, float **X, int32_t *D, rlab_err *err)
{
    if (!fit->data)
        return rlab_errf(err, RLAB_EINVAL,
                         "%s needs the dataset's item features (content vectors); this training "
                         "run has no dataset",
                         fit->kind ? fit->kind : "semid");
    rlab_content_opts o = rlab_content_defaults();
    o.tok_dim = cfg->tok_dim;
    o.text_dim = cfg->text_dim;
    o.text_weight = cfg->text_weight;
    o.cols = cfg->cols;
    int rc = rlab_item_content(fit->data, &o, X, D, err);
    if (rc == RLAB_OK && rlab_vocab_size(&fit->data->items) != fit->view->n_items) {
        rlab_free(*X);
        *X = NULL;
        return rlab_errf(err, RLAB_EINVAL, "content vectors: %d items, the view has %d",
                         (int)rlab_vocab_size(&fit->data->items), (int)fit->view->n_items);
    }
    return rc;
}

/* ---- the model ------------------------------------------------------------------------- */

void semid_tok_free(semid_tok *t)
{
    if (!t)
        return;
    rlab_free(t->codes);
    rlab_free(t->recon);
    rlab_free(t->pid);
    rlab_free(t->ucodes);
    rlab_params_free(t->P);
    rlab_free(t);
}

/* q: [nq], out: [nq][n_items] */
static int tok_score_all(const rlab_model *m, const rlab_query *q, int nq, float *out,
                         rlab_err *err)
{
    const semid_tok *t = m->impl;
    const int32_t n = t->n_items;
    const int L = t->L;
    int32_t *cnt = rlab_calloc((size_t)n * (size_t)L + 1, sizeof *cnt); /* [L][n] per call */
    if (!cnt)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    for (int b = 0; b < nq; b++) {
        float *row = out + (size_t)b * (size_t)n;
        for (int32_t h = 0; h < q[b].n_hist; h++) {
            int32_t i = q[b].hist[h];
            if (i >= 0 && i < n)
                for (int l = 0; l < L; l++)
                    cnt[(size_t)l * n + t->pid[(size_t)i * L + l]]++;
        }
        for (int32_t j = 0; j < n; j++) {
            int32_t s = 0;
            for (int l = 0; l < L; l++)
                s += cnt[(size_t)l * n + t->pid[(size_t)j * L + l]];
            row[j] = (float)s;
        }
        for (int32_t h = 0; h < q[b].n_hist; h++) {
            int32_t i = q[b].hist[h];
            if (i >= 0 && i < n)
                for (int l = 0; l < L; l++)
                    cnt[(size_t)l * n + t->pid[(size_t)i * L + l]] = 0;
        }
    }
    rlab_free(cnt);
    return RLAB_OK;
}

static int tok_tensors(const rlab_model *m, rlab_ckpt *ck, rlab_err *err)
{
    const semid_tok *t = m->impl;
    char dim[24], info[24];
    snprintf(dim, sizeof dim, "%d", t->D);
    snprintf(info, sizeof info, "%lld", (long long)t->train_info);
    int rc = rlab_ckpt_add(ck, "semid.codes", RLAB_DT_I32, 2, (int64_t[]){t->n_items, t->L + 1},
                           t->codes, err);
    if (!rc)
        rc = rlab_ckpt_add(ck, "semid.recon", RLAB_DT_F32, 1, (int64_t[]){t->L}, t->recon, err);
    if (!rc && t->ucodes)
        rc = rlab_ckpt_add(ck, "semid.user_codes", RLAB_DT_I32, 2,
                           (int64_t[]){t->n_ucodes, t->L + 1}, t->ucodes, err);
    if (!rc && t->P)
        rc = rlab_ckpt_add_params(ck, t->P, NULL, err);
    if (!rc)
        rc = rlab_ckpt_set_meta(ck, "semid.dim", dim, err);
    if (!rc)
        rc = rlab_ckpt_set_meta(ck, "semid.train_info", info, err);
    if (!rc && t->ucodes) {
        char udim[24];
        snprintf(udim, sizeof udim, "%d", (int)t->DU);
        rc = rlab_ckpt_set_meta(ck, "semid.user_dim", udim, err);
    }
    return rc;
}

static void tok_describe(const rlab_model *m, char *buf, size_t size)
{
    const semid_tok *t = m->impl;
    snprintf(buf, size,
             "%s semantic IDs: %d levels x %d codes + dedup digit (max %d) of %d items%s%s",
             semid_kind_names[t->kind], t->L, t->K, (int)t->max_dedup, (int)t->n_items,
             m->dataset[0] ? " on " : "", m->dataset);
}

static void tok_free(rlab_model *m) { semid_tok_free(m->impl); }

const rlab_model_vt semid_vt = {
    .score_all = tok_score_all,
    .tensors = tok_tensors,
    .describe = tok_describe,
    .free = tok_free,
};

const semid_tok *semid_tok_of(const rlab_model *m)
{
    return m && m->vt == &semid_vt ? m->impl : NULL;
}

rlab_model *semid_cached_model(rlab_model **m, int64_t *built_at, int64_t steps,
                               rlab_model *(*build)(void *state, rlab_err *err), void *state,
                               const rlab_fit *fit, const char *who)
{
    if (*m && *built_at == steps)
        return *m;
    rlab_err err = {0};
    rlab_model *nm = build(state, &err);
    if (!nm) {
        if (fit && fit->log) {
            char line[400];
            snprintf(line, sizeof line, "%s: cannot build the model: %s", who, err.msg);
            fit->log(fit->ud, line);
        }
        return *m;
    }
    rlab_model_release(*m);
    *m = nm;
    *built_at = steps;
    return nm;
}

rlab_model *semid_tok_wrap(semid_tok *t, int32_t n_users, rlab_err *err)
{
    t->pid = rlab_malloc((size_t)t->n_items * (size_t)t->L * sizeof *t->pid + 1);
    if (!t->pid) {
        semid_tok_free(t);
        rlab_errf(err, RLAB_ENOMEM, "out of memory");
        return NULL;
    }
    if (semid_prefix_ids(t->codes, t->n_items, t->L + 1, t->L, t->pid, err)) {
        semid_tok_free(t);
        return NULL;
    }
    rlab_model *m = rlab_model_new(&semid_vt, t, NULL, semid_kind_names[t->kind], err);
    if (m) {
        m->n_users = n_users;
        m->n_items = t->n_items;
    }
    return m;
}

int semid_tok_finish(semid_tok *t, const rlab_fit *fit, rlab_err *err)
{
    t->max_dedup = semid_dedup(t->codes, t->n_items, t->L);
    if (t->max_dedup < 0)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    semid_level_stats st[SEMID_MAX_LEVELS];
    int rc = semid_stats(t->codes, t->n_items, t->L + 1, t->L, t->K, st, err);
    if (rc || !fit)
        return rc;
    for (int l = 0; l < t->L; l++) {
        char line[160];
        snprintf(line, sizeof line,
                 "level %d: %d/%d codes used (%.1f%%), entropy %.3f nats (perplexity %.1f), "
                 "collision %.4f, recon %.5f",
                 l + 1, st[l].used, t->K, 100.0 * st[l].util, st[l].entropy, st[l].perplexity,
                 st[l].collision, (double)t->recon[l]);
        if (fit->log)
            fit->log(fit->ud, line);
        if (fit->metric) {
            static const char *const what[] = {"util", "entropy", "collision", "recon"};
            double v[4] = {st[l].util, st[l].entropy, st[l].collision, (double)t->recon[l]};
            for (int w = 0; w < 4; w++) {
                char name[32];
                snprintf(name, sizeof name, "%s.l%d", what[w], l + 1);
                fit->metric(fit->ud, l + 1, "train", name, NULL, v[w]);
            }
        }
    }
    if (fit->log) {
        char line[128];
        snprintf(line, sizeof line, "dedup digit: max %d (%.4f of items share their %d-code tuple)",
                 (int)t->max_dedup, st[t->L - 1].collision, t->L);
        fit->log(fit->ud, line);
    }
    return RLAB_OK;
}

/* ---- residual k-means kinds -------------------------------------------------------------- */

typedef struct km_state {
    const rlab_fit *fit;
    rlab_model *m;
} km_state;

static int km_cancel(void *ud) { return semid_cancelled(((km_state *)ud)->fit); }

static int km_step(void *state, int64_t i, double *loss, double *weight, double *parts,
                   rlab_err *err)
{
    (void)i;
    (void)weight;
    (void)parts;
    km_state *s = state;
    const rlab_fit *fit = s->fit;
    const semid_cfg *c = fit->cfg;
    *loss = 0.0;
    float *X = NULL;
    int32_t D = 0;
    int rc = semid_content(fit, c, &X, &D, err);
    if (rc)
        return rc;
    const int32_t N = fit->view->n_items;
    const int L = c->levels, K = c->codes;
    semid_tok *t = rlab_calloc(1, sizeof *t);
    rlab_param_spec spec = {.name = "codebooks", .ndim = 3, .shape = {L, K, D}};
    double recon[SEMID_MAX_LEVELS];
    if (!t || !(t->codes = rlab_calloc((size_t)N * (size_t)(L + 1) + 1, sizeof *t->codes)) ||
        !(t->recon = rlab_calloc((size_t)L, sizeof *t->recon))) {
        rlab_free(X);
        semid_tok_free(t);
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    }
    *t = (semid_tok){.kind = c->balanced ? SEMID_BRKMEANS : SEMID_RKMEANS,
                     .L = L,
                     .K = K,
                     .D = D,
                     .n_items = N,
                     .codes = t->codes,
                     .recon = t->recon,
                     .train_info = c->iters};
    rlab_rng rng;
    rlab_rng_seed(&rng, (uint64_t)fit->opts->seed);
    t->P = rlab_params_new(&spec, 1, NULL, err);
    if (!t->P)
        rc = err->code ? err->code : RLAB_ENOMEM;
    if (!rc && K > N)
        rc = rlab_errf(err, RLAB_EINVAL, "codes=%d is more than the %d items", K, (int)N);
    if (!rc)
        rc = semid_rkmeans(X, N, D, L, K, c->iters, c->balanced, &rng, t->P->t[0].data, t->codes,
                           L + 1, recon, km_cancel, s, err);
    rlab_free(X);
    for (int l = 0; !rc && l < L; l++)
        t->recon[l] = (float)recon[l];
    if (!rc)
        rc = semid_tok_finish(t, fit, err);
    if (rc) {
        semid_tok_free(t);
        return rc;
    }
    *loss = recon[L - 1];
    rlab_model_release(s->m);
    s->m = semid_tok_wrap(t, fit->view->n_users, err);
    return s->m ? RLAB_OK : err->code;
}

static int km_begin(const rlab_fit *fit, void **state, rlab_err *err)
{
    km_state *s = rlab_calloc(1, sizeof *s);
    if (!s)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    s->fit = fit;
    *state = s;
    return RLAB_OK;
}

static int bkm_begin(const rlab_fit *fit, void **state, rlab_err *err)
{
    /* the kind decides balancing; the config struct is the host's (const): copy it */
    km_state *s = rlab_calloc(1, sizeof *s + sizeof(rlab_fit) + sizeof(semid_cfg));
    if (!s)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    rlab_fit *f = (rlab_fit *)(s + 1);
    semid_cfg *c = (semid_cfg *)(f + 1);
    *f = *fit;
    *c = *(const semid_cfg *)fit->cfg;
    c->balanced = 1;
    f->cfg = c;
    s->fit = f;
    *state = s;
    return RLAB_OK;
}

static rlab_model *km_model(void *state) { return ((km_state *)state)->m; }

static void km_end(void *state)
{
    km_state *s = state;
    rlab_model_release(s->m);
    rlab_free(s);
}

const rlab_fit_ops semid_rkmeans_fit = {
    .begin = km_begin, .step = km_step, .model = km_model, .end = km_end};
const rlab_fit_ops semid_brkmeans_fit = {
    .begin = bkm_begin, .step = km_step, .model = km_model, .end = km_end};

/* ---- checkpoints ----------------------------------------------------------------------- */

int semid_ckpt_int(const rlab_ckpt *ck, const char *key, int64_t lo, int64_t hi, int64_t *out,
                   rlab_err *err)
{
    const char *v = rlab_ckpt_meta_get(ck, key);
    if (!v)
        return rlab_errf(err, RLAB_EFORMAT, "checkpoint: metadata '%s' missing", key);
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi)
        return rlab_errf(err, RLAB_EFORMAT,
                         "checkpoint: metadata '%s' = '%s' is not an integer in [%lld, %lld]", key,
                         v, (long long)lo, (long long)hi);
    *out = x;
    return RLAB_OK;
}

rlab_model *semid_restore_common(const rlab_ckpt *ck, const semid_cfg *cfg, int kind,
                                 const rlab_param_spec *specs, int nspecs, rlab_err *err)
{
    int64_t nu = 0, ni = 0, info = 0; /* set by semid_ckpt_int on success */
    if (semid_ckpt_int(ck, "reclab.n_users", 0, INT32_MAX, &nu, err) ||
        semid_ckpt_int(ck, "reclab.n_items", 1, INT32_MAX, &ni, err) ||
        semid_ckpt_int(ck, "semid.train_info", 0, INT64_MAX, &info, err))
        return NULL;
    const int L = cfg->levels, K = cfg->codes;
    int nd = 0;
    int64_t sh[RLAB_CKPT_MAXDIM];
    const int32_t *codes = rlab_ckpt_tensor(ck, "semid.codes", RLAB_DT_I32, &nd, sh, err);
    if (!codes)
        return NULL;
    if (nd != 2 || sh[0] != ni || sh[1] != L + 1) {
        rlab_errf(err, RLAB_EFORMAT, "checkpoint: semid.codes is not [%lld, %d]", (long long)ni,
                  L + 1);
        return NULL;
    }
    for (int64_t x = 0; x < ni * (L + 1); x++)
        if (codes[x] < 0 || (x % (L + 1) < L && codes[x] >= K) || codes[x] >= ni) {
            rlab_errf(err, RLAB_EFORMAT, "checkpoint: semid.codes holds %d, not a code",
                      (int)codes[x]);
            return NULL;
        }
    const float *recon = rlab_ckpt_tensor(ck, "semid.recon", RLAB_DT_F32, &nd, sh, err);
    if (!recon)
        return NULL;
    if (nd != 1 || sh[0] != L) {
        rlab_errf(err, RLAB_EFORMAT, "checkpoint: semid.recon is not [%d]", L);
        return NULL;
    }
    semid_tok *t = rlab_calloc(1, sizeof *t);
    if (!t || !(t->codes = rlab_malloc((size_t)(ni * (L + 1)) * sizeof *t->codes)) ||
        !(t->recon = rlab_malloc((size_t)L * sizeof *t->recon))) {
        semid_tok_free(t);
        rlab_errf(err, RLAB_ENOMEM, "out of memory");
        return NULL;
    }
    memcpy(t->codes, codes, (size_t)(ni * (L + 1)) * sizeof *codes);
    memcpy(t->recon, recon, (size_t)L * sizeof *recon);
    t->kind = kind;
    t->L = L;
    t->K = K;
    t->n_items = (int32_t)ni;
    t->train_info = info;
    for (int64_t i = 0; i < ni; i++)
        if (t->codes[i * (L + 1) + L] > t->max_dedup)
            t->max_dedup = t->codes[i * (L + 1) + L];
    int64_t dim = 0; /* set by semid_ckpt_int on success */
    if (semid_ckpt_int(ck, "semid.dim", 1, 1 << 24, &dim, err)) {
        semid_tok_free(t);
        return NULL;
    }
    t->D = (int)dim;
    rlab_rng rng;
    rlab_rng_seed(&rng, 0);
    t->P = rlab_params_new(specs, nspecs, &rng, err);
    if (!t->P || rlab_ckpt_get_params(ck, t->P, NULL, 0, err)) {
        semid_tok_free(t);
        return NULL;
    }
    return semid_tok_wrap(t, (int32_t)nu, err);
}

rlab_model *semid_rkmeans_restore(rlab_host *host, const rlab_ckpt *ck, const void *cfg,
                                  rlab_err *err)
{
    (void)host;
    const semid_cfg *c = cfg;
    int64_t dim = 0; /* set by semid_ckpt_int on success */
    if (semid_ckpt_int(ck, "semid.dim", 1, 1 << 24, &dim, err))
        return NULL;
    rlab_param_spec spec = {.name = "codebooks", .ndim = 3, .shape = {c->levels, c->codes, dim}};
    const char *kind = rlab_ckpt_meta_get(ck, "reclab.kind");
    return semid_restore_common(
        ck, c, kind && !strcmp(kind, "brkmeans") ? SEMID_BRKMEANS : SEMID_RKMEANS, &spec, 1, err);
}

/* ---- encoding new content ------------------------------------------------------------- */

/* out [n][E] = relu? (x [n][Din] w [Din][E] + b [E]) */
static void dense(const float *x, int64_t n, int din, const rlab_tensor *w, const rlab_tensor *b,
                  int relu, float *out)
{
    const int E = (int)w->shape[1];
    for (int64_t r = 0; r < n; r++)
        memcpy(out + r * E, b->data, (size_t)E * sizeof *out);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, E, din, 1.0f, x, din, w->data, E,
                1.0f, out, E);
    if (relu)
        for (int64_t k = 0; k < n * E; k++)
            out[k] = out[k] > 0.0f ? out[k] : 0.0f;
}

int semid_encode(const semid_tok *t, const float *X, int64_t N, int32_t *codes, rlab_err *err)
{
    if (!t->P)
        return rlab_errf(err, RLAB_EINVAL,
                         "semid: this tokenizer has no parameters to encode with");
    const int L = t->L, K = t->K;
    const int net = t->kind == SEMID_RQVAE || t->kind == SEMID_DAS;
    /* the item network: tensors 0..8 = enc.w1, enc.b1, enc.w2, enc.b2, codebooks, ... (rqvae)
     * or item.* (DAS: the item quantiser comes first) */
    const rlab_tensor *cb = net ? &t->P->t[4] : &t->P->t[0];
    const int E = (int)cb->shape[2];
    const int H = net ? (int)t->P->t[0].shape[1] : 0;
    const int64_t CH = 1024;
    float *h = net ? rlab_malloc((size_t)(CH * H) * sizeof *h) : NULL;
    float *z = rlab_malloc((size_t)(CH * E) * sizeof *z);
    int32_t *c1 = rlab_malloc((size_t)CH * sizeof *c1);
    if ((net && !h) || !z || !c1) {
        rlab_free(h);
        rlab_free(z);
        rlab_free(c1);
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    }
    for (int64_t lo = 0; lo < N; lo += CH) {
        const int64_t n = N - lo < CH ? N - lo : CH;
        if (net) {
            dense(X + lo * t->D, n, t->D, &t->P->t[0], &t->P->t[1], 1, h);
            dense(h, n, H, &t->P->t[2], &t->P->t[3], 0, z);
        } else
            memcpy(z, X + lo * t->D, (size_t)(n * E) * sizeof *z);
        for (int l = 0; l < L; l++) { /* the residual's nearest code, level by level */
            const float *cl = cb->data + (size_t)l * K * E;
            rlab_rvq_nearest_naive(c1, z, cl, n, K, E);
            for (int64_t r = 0; r < n; r++) {
                codes[(lo + r) * L + l] = c1[r];
                const float *q = cl + (size_t)c1[r] * E;
                for (int d = 0; d < E; d++)
                    z[r * E + d] -= q[d];
            }
        }
    }
    rlab_free(h);
    rlab_free(z);
    rlab_free(c1);
    return RLAB_OK;
}
