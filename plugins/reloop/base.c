/*
 * plugins/reloop/base.c: the slow learner (ReLoop2's parametric model), two kinds:
 *
 *   own logistic MF   p = sigmoid(b + b_u + b_i + <p_u, q_i>), h = [p_u ; q_i] (2D)
 *                     factors N(0, 0.1^2), biases 0; plain SGD on log loss with L2 on the
 *                     touched rows; fit on period 0, optionally one pass per later period.
 *   wrapped model M   p = sigmoid(a * z + c + <w, h_M>), z = (s_M - mean) / sd standardised on
 *                     the first rows the head is fitted on, h = h_M (M's sample_repr);
 *                     a = 1, c = 0, w = 0 at start. M itself never changes (any kind of any
 *                     plugin can be wrapped, but only the head can be fine-tuned).
 *
 *   factorisation machine over CTR samples (reloop_base_new_fm, Rendle 2010): biases per id,
 *                     numeric weights, pairwise <v_f, v_g> of the categorical fields; h = the
 *                     field vectors concatenated; N(0, 0.01^2) vectors, SGD with L2.
 *
 * A wrapped model's outputs for a range of rows are cached (M is frozen, so the frozen and the
 * incremental base see the same s_M, h_M): clones share the cache, reference counted.
 */
#include "reloop.h"

#include <math.h>
#include <string.h>

typedef struct wrap_cache {
    int refs;
    int64_t lo, hi, cap;
    float *s; /* [cap] */
    float *h; /* [cap][K] */
} wrap_cache;

struct reloop_base {
    reloop_base_opts o;
    int kind; /* 0 own MF, 1 wrapped, 2 FM over CTR samples */
    int32_t NU, NI, D;
    float *par; /* MF: b, bu[NU], bi[NI], P[NU][D], Q[NI][D]; wrap: a, c, w[K] */
    size_t npar;
    const rlab_model *m;
    int K;
    float mu, sd; /* wrap: standardisation of s_M (sd 0 = not yet set) */
    wrap_cache *cache;
    /* FM: the tabular's categorical fields fld[F]; parameters w0, then per field w[card] and
     * V[card][D] at woff[f] / voff[f], then the numeric weights at noff */
    const rlab_tabular *tab;
    int F;
    int *fld;
    size_t *woff, *voff, noff;
};

static float sigm(float x) { return 1.0f / (1.0f + expf(-x)); }

reloop_base *reloop_base_new_mf(int32_t n_users, int32_t n_items, const reloop_base_opts *o,
                                rlab_err *err)
{
    if (n_users < 1 || n_items < 1 || o->dim < 1) {
        rlab_errf(err, RLAB_EINVAL, "reloop base: %d users, %d items, dim %d", (int)n_users,
                  (int)n_items, o->dim);
        return NULL;
    }
    reloop_base *b = rlab_calloc(1, sizeof *b);
    if (!b) {
        rlab_errf(err, RLAB_ENOMEM, "out of memory");
        return NULL;
    }
    b->o = *o;
    b->NU = n_users;
    b->NI = n_items;
    b->D = o->dim;
    b->K = 2 * o->dim;
    b->npar = 1 + (size_t)n_users + (size_t)n_items + ((size_t)n_users + (size_t)n_items) * b->D;
    b->par = rlab_calloc(b->npar, sizeof(float));
    if (!b->par) {
        rlab_free(b);
        rlab_errf(err, RLAB_ENOMEM, "out of memory");
        return NULL;
    }
    rlab_rng rng;
    rlab_rng_seed(&rng, o->seed);
    for (size_t i = 1 + (size_t)n_users + (size_t)n_items; i < b->npar; i++)
        b->par[i] = 0.1f * rlab_rng_normal(&rng);
    return b;
}

reloop_base *reloop_base_new_wrap(const rlab_model *m, const reloop_base_opts *o, rlab_err *err)
{
    if (m->sample_dim <= 0 || !m->vt->sample_repr) {
        rlab_errf(err, RLAB_ESTATE,
                  "model '%s' (%s) has no sample representation (model/model.h sample_repr): "
                  "it cannot key an error memory",
                  m->name, m->kind);
        return NULL;
    }
    reloop_base *b = rlab_calloc(1, sizeof *b);
    wrap_cache *c = rlab_calloc(1, sizeof *c);
    if (b)
        b->par = rlab_calloc(2 + (size_t)m->sample_dim, sizeof(float));
    if (!b || !c || !b->par) {
        if (b)
            rlab_free(b->par);
        rlab_free(b);
        rlab_free(c);
        rlab_errf(err, RLAB_ENOMEM, "out of memory");
        return NULL;
    }
    c->refs = 1;
    b->o = *o;
    b->kind = 1;
    b->m = m;
    b->K = m->sample_dim;
    b->npar = 2 + (size_t)m->sample_dim;
    b->par[0] = 1.0f;
    b->cache = c;
    b->NU = m->n_users;
    b->NI = m->n_items;
    return b;
}

reloop_base *reloop_base_clone(const reloop_base *src, rlab_err *err)
{
    reloop_base *b = rlab_malloc(sizeof *b);
    float *par = rlab_malloc(src->npar * sizeof(float));
    if (!b || !par) {
        rlab_free(b);
        rlab_free(par);
        rlab_errf(err, RLAB_ENOMEM, "out of memory");
        return NULL;
    }
    *b = *src;
    memcpy(par, src->par, src->npar * sizeof(float));
    b->par = par;
    if (b->cache)
        b->cache->refs++;
    if (b->fld)
        b->fld[b->F]++;
    return b;
}

void reloop_base_free(reloop_base *b)
{
    if (!b)
        return;
    if (b->fld && --b->fld[b->F] == 0) { /* FM tables are shared by clones: count at fld[F] */
        rlab_free(b->fld);
        rlab_free(b->woff);
        rlab_free(b->voff);
    }
    if (b->cache && --b->cache->refs == 0) {
        rlab_free(b->cache->s);
        rlab_free(b->cache->h);
        rlab_free(b->cache);
    }
    rlab_free(b->par);
    rlab_free(b);
}

reloop_base *reloop_base_new_fm(const rlab_tabular *t, const reloop_base_opts *o, rlab_err *err)
{
    int F = 0;
    for (int f = 0; f < t->nfields; f++)
        F += t->fields[f].role == RLAB_TAB_CAT;
    if (F < 1 || o->dim < 1) {
        rlab_errf(err, RLAB_EINVAL, "reloop fm: samples '%s' have no categorical field", t->name);
        return NULL;
    }
    reloop_base *b = rlab_calloc(1, sizeof *b);
    if (b) {
        b->fld = rlab_calloc((size_t)F + 1, sizeof(int));
        b->woff = rlab_calloc((size_t)F, sizeof(size_t));
        b->voff = rlab_calloc((size_t)F, sizeof(size_t));
    }
    if (!b || !b->fld || !b->woff || !b->voff) {
        if (b) {
            rlab_free(b->fld);
            rlab_free(b->woff);
            rlab_free(b->voff);
        }
        rlab_free(b);
        rlab_errf(err, RLAB_ENOMEM, "out of memory");
        return NULL;
    }
    b->o = *o;
    b->kind = 2;
    b->tab = t;
    b->D = o->dim;
    b->F = F;
    b->fld[F] = 1; /* reference count of the shared tables */
    size_t off = 1;
    for (int f = 0, j = 0; f < t->nfields; f++) {
        if (t->fields[f].role != RLAB_TAB_CAT)
            continue;
        b->fld[j] = f;
        b->woff[j] = off;
        off += (size_t)t->fields[f].card;
        b->voff[j] = off;
        off += (size_t)t->fields[f].card * (size_t)b->D;
        j++;
    }
    b->noff = off;
    b->npar = off + (size_t)t->nnum;
    b->K = F * b->D;
    b->par = rlab_calloc(b->npar, sizeof(float));
    if (!b->par) {
        reloop_base_free(b);
        rlab_errf(err, RLAB_ENOMEM, "out of memory");
        return NULL;
    }
    rlab_rng rng;
    rlab_rng_seed(&rng, o->seed);
    for (int j = 0; j < F; j++)
        for (size_t i = 0; i < (size_t)t->fields[b->fld[j]].card * (size_t)b->D; i++)
            b->par[b->voff[j] + i] = 0.01f * rlab_rng_normal(&rng);
    return b;
}

/* The numeric input j of sample i: sign(x) log(1 + |x|), 0 when missing. */
static float fm_num(const rlab_tabular *t, int64_t i, int j)
{
    float x = t->num[(size_t)i * (size_t)t->nnum + (size_t)j];
    if (isnan(x))
        return 0.0f;
    return x < 0.0f ? -log1pf(-x) : log1pf(x);
}

/* FM logit of sample i; S[D] receives sum_f v_f, h (may be NULL) the concatenated v_f. */
static float fm_logit(const reloop_base *b, int64_t i, float *S, float *h)
{
    const rlab_tabular *t = b->tab;
    const int D = b->D;
    float z = b->par[0], sq = 0.0f;
    for (int k = 0; k < D; k++)
        S[k] = 0.0f;
    for (int f = 0; f < b->F; f++) {
        int32_t id = t->fields[b->fld[f]].ids[i];
        z += b->par[b->woff[f] + (size_t)id];
        const float *v = b->par + b->voff[f] + (size_t)id * (size_t)D;
        for (int k = 0; k < D; k++) {
            S[k] += v[k];
            sq += v[k] * v[k];
        }
        if (h)
            memcpy(h + (size_t)f * (size_t)D, v, (size_t)D * sizeof(float));
    }
    for (int j = 0; j < t->nnum; j++)
        z += b->par[b->noff + (size_t)j] * fm_num(t, i, j);
    float ss = 0.0f;
    for (int k = 0; k < D; k++)
        ss += S[k] * S[k];
    return z + 0.5f * (ss - sq);
}

int reloop_base_key_dim(const reloop_base *b) { return b->K; }

/* Wrapped: M's score and representation of rows [lo, hi) into the cache. */
static int wrap_fill(const reloop_base *b, const reloop_stream *s, int64_t lo, int64_t hi,
                     rlab_err *err)
{
    wrap_cache *c = b->cache;
    if (c->lo == lo && c->hi == hi && c->s)
        return RLAB_OK;
    if (b->m->n_items != s->n_items)
        return rlab_errf(err, RLAB_EINVAL,
                         "model '%s' has %d items, the stream's dataset %d: wrap a model trained "
                         "on the same dataset",
                         b->m->name, (int)b->m->n_items, (int)s->n_items);
    int64_t n = hi - lo;
    if (n > c->cap) {
        rlab_free(c->s);
        rlab_free(c->h);
        c->s = rlab_malloc((size_t)n * sizeof(float));
        c->h = rlab_malloc((size_t)n * (size_t)b->K * sizeof(float));
        c->cap = c->s && c->h ? n : 0;
        if (!c->cap)
            return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    }
    c->lo = c->hi = 0;
    enum { CH = 256 };
    rlab_query q[CH];
    int32_t it[CH];
    for (int64_t r0 = lo; r0 < hi; r0 += CH) {
        int nb = hi - r0 < CH ? (int)(hi - r0) : CH;
        for (int j = 0; j < nb; j++) {
            int64_t r = r0 + j;
            int32_t u = s->user[r];
            int known = u >= 0 && u < b->m->n_users;
            q[j] = (rlab_query){.user = known ? u : -1,
                                .hist = s->uhist + s->uhist_off[u],
                                .n_hist = (int32_t)s->hist_len[r]};
            it[j] = s->item[r];
        }
        int rc = rlab_model_sample_repr(b->m, q, nb, it, c->h + (size_t)(r0 - lo) * (size_t)b->K,
                                        c->s + (r0 - lo), err);
        if (rc)
            return rc;
    }
    c->lo = lo;
    c->hi = hi;
    return RLAB_OK;
}

/* Row r's logit and key; w_* for the wrapped head's inputs. */
static float mf_logit(const reloop_base *b, int32_t u, int32_t i, float *h)
{
    const float *bu = b->par + 1, *bi = bu + b->NU, *P = bi + b->NI, *Q = P + (size_t)b->NU * b->D;
    float z = b->par[0];
    const float *pu = NULL, *qi = NULL;
    if (u >= 0 && u < b->NU) {
        z += bu[u];
        pu = P + (size_t)u * b->D;
    }
    if (i >= 0 && i < b->NI) {
        z += bi[i];
        qi = Q + (size_t)i * b->D;
    }
    for (int d = 0; d < b->D; d++) {
        float x = pu ? pu[d] : 0.0f, y = qi ? qi[d] : 0.0f;
        z += x * y;
        if (h) {
            h[d] = x;
            h[b->D + d] = y;
        }
    }
    return z;
}

static float wrap_logit(const reloop_base *b, float sm, const float *hm)
{
    float z = b->par[0] * (sm - b->mu) / b->sd + b->par[1];
    const float *w = b->par + 2;
    for (int k = 0; k < b->K; k++)
        z += w[k] * hm[k];
    return z;
}

int reloop_base_predict(const reloop_base *b, const reloop_stream *s, int64_t lo, int64_t hi,
                        float *p, float *h, rlab_err *err)
{
    if (b->kind == 2) {
        float S[1024];
        if (b->D > 1024 || !s->tab)
            return rlab_errf(err, RLAB_EINVAL, "reloop fm: needs a CTR stream and dim <= 1024");
        for (int64_t r = lo; r < hi; r++)
            p[r - lo] =
                sigm(fm_logit(b, s->row[r], S, h ? h + (size_t)(r - lo) * (size_t)b->K : NULL));
        return RLAB_OK;
    }
    if (s->tab)
        return rlab_errf(err, RLAB_EINVAL, "reloop: a CTR stream needs the fm base");
    if (b->kind == 0) {
        for (int64_t r = lo; r < hi; r++)
            p[r - lo] = sigm(mf_logit(b, s->user[r], s->item[r],
                                      h ? h + (size_t)(r - lo) * (size_t)b->K : NULL));
        return RLAB_OK;
    }
    if (!(b->sd > 0.0f))
        return rlab_errf(err, RLAB_ESTATE, "reloop base: the head is not fitted yet");
    int rc = wrap_fill(b, s, lo, hi, err);
    if (rc)
        return rc;
    const wrap_cache *c = b->cache;
    for (int64_t r = lo; r < hi; r++) {
        const float *hm = c->h + (size_t)(r - lo) * (size_t)b->K;
        p[r - lo] = sigm(wrap_logit(b, c->s[r - lo], hm));
        if (h)
            memcpy(h + (size_t)(r - lo) * (size_t)b->K, hm, (size_t)b->K * sizeof(float));
    }
    return RLAB_OK;
}

/* One SGD step on row r (index into the stream); returns its log loss. */
static double step(reloop_base *b, const reloop_stream *s, int64_t r, int64_t lo, float lr)
{
    const float y = (float)s->label[r], l2 = b->o.l2;
    float p, g;
    if (b->kind == 2) {
        const rlab_tabular *t = b->tab;
        const int64_t i = s->row[r];
        const int D = b->D;
        float S[1024];
        p = sigm(fm_logit(b, i, S, NULL));
        g = p - y;
        b->par[0] -= lr * g;
        for (int f = 0; f < b->F; f++) {
            int32_t id = t->fields[b->fld[f]].ids[i];
            float *w = b->par + b->woff[f] + (size_t)id;
            *w -= lr * (g + l2 * *w);
            float *v = b->par + b->voff[f] + (size_t)id * (size_t)D;
            for (int k = 0; k < D; k++) /* d logit / d v_fk = S_k - v_fk */
                v[k] -= lr * (g * (S[k] - v[k]) + l2 * v[k]);
        }
        for (int j = 0; j < t->nnum; j++) {
            float *w = b->par + b->noff + (size_t)j;
            *w -= lr * (g * fm_num(t, i, j) + l2 * *w);
        }
    } else if (b->kind == 0) {
        int32_t u = s->user[r], i = s->item[r];
        p = sigm(mf_logit(b, u, i, NULL));
        g = p - y;
        float *bu = b->par + 1, *bi = bu + b->NU, *P = bi + b->NI, *Q = P + (size_t)b->NU * b->D;
        b->par[0] -= lr * g;
        if (u >= 0 && u < b->NU && i >= 0 && i < b->NI) {
            float *pu = P + (size_t)u * b->D, *qi = Q + (size_t)i * b->D;
            bu[u] -= lr * (g + l2 * bu[u]);
            bi[i] -= lr * (g + l2 * bi[i]);
            for (int d = 0; d < b->D; d++) {
                float x = pu[d], z = qi[d];
                pu[d] -= lr * (g * z + l2 * x);
                qi[d] -= lr * (g * x + l2 * z);
            }
        }
    } else {
        const wrap_cache *c = b->cache;
        const float sm = c->s[r - lo], *hm = c->h + (size_t)(r - lo) * (size_t)b->K;
        p = sigm(wrap_logit(b, sm, hm));
        g = p - y;
        b->par[0] -= lr * g * (sm - b->mu) / b->sd;
        b->par[1] -= lr * g;
        float *w = b->par + 2;
        for (int k = 0; k < b->K; k++)
            w[k] -= lr * (g * hm[k] + l2 * w[k]);
    }
    const double pc = p < 1e-7f ? 1e-7 : (p > 1.0f - 1e-7f ? 1.0 - 1e-7 : (double)p);
    return y > 0.5f ? -log(pc) : -log(1.0 - pc);
}

static int prepare(reloop_base *b, const reloop_stream *s, int64_t lo, int64_t hi, rlab_err *err)
{
    if (b->kind != 1)
        return RLAB_OK;
    int rc = wrap_fill(b, s, lo, hi, err);
    if (rc || b->sd > 0.0f)
        return rc;
    double m1 = 0.0, m2 = 0.0; /* standardise s_M on the first range fitted */
    for (int64_t r = 0; r < hi - lo; r++) {
        m1 += (double)b->cache->s[r];
        m2 += (double)b->cache->s[r] * (double)b->cache->s[r];
    }
    m1 /= (double)(hi - lo);
    double var = m2 / (double)(hi - lo) - m1 * m1;
    b->mu = (float)m1;
    b->sd = var > 1e-12 ? (float)sqrt(var) : 1.0f;
    return RLAB_OK;
}

int reloop_base_sgd(reloop_base *b, const reloop_stream *s, int64_t lo, int64_t hi, float lr,
                    double *loss, rlab_err *err)
{
    int rc = prepare(b, s, lo, hi, err);
    if (rc)
        return rc;
    double acc = 0.0;
    for (int64_t r = lo; r < hi; r++)
        acc += step(b, s, r, lo, lr);
    if (loss)
        *loss = hi > lo ? acc / (double)(hi - lo) : 0.0;
    return RLAB_OK;
}

int reloop_base_fit(reloop_base *b, const reloop_stream *s, int64_t lo, int64_t hi, int epochs,
                    float lr, uint64_t seed, double *loss, rlab_err *err)
{
    int rc = prepare(b, s, lo, hi, err);
    if (rc)
        return rc;
    int64_t n = hi - lo;
    int64_t *perm = rlab_malloc((size_t)(n > 0 ? n : 1) * sizeof(int64_t));
    if (!perm)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    for (int64_t i = 0; i < n; i++)
        perm[i] = lo + i;
    rlab_rng rng;
    rlab_rng_seed(&rng, seed);
    double acc = 0.0;
    for (int e = 0; e < epochs; e++) {
        for (int64_t i = n - 1; i > 0; i--) { /* Fisher-Yates */
            int64_t j = (int64_t)rlab_rng_below(&rng, (uint64_t)i + 1);
            int64_t t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        acc = 0.0;
        for (int64_t i = 0; i < n; i++)
            acc += step(b, s, perm[i], lo, lr);
    }
    rlab_free(perm);
    if (loss)
        *loss = n > 0 ? acc / (double)n : 0.0;
    return RLAB_OK;
}
