/*
 * plugins/baselines/itemknn.c: ItemKNN, item-based nearest neighbours on the binary
 * user-item matrix of the training interactions.
 *
 *   sim(i, j) = |U_i ∩ U_j| / sqrt(|U_i| |U_j|)      (cosine of the binary item columns)
 *   N_k(i)    = the k items j != i with the highest sim(i, j) > 0 (ties: lower index first)
 *   score(u, j) = sum over distinct items h of u's history with j in N_k(h) of sim(h, j)
 *
 * Training never forms the item x item matrix: for item i it walks its users' item lists
 * (the inverted lists), accumulating co-occurrence counts in a dense row with a touched
 * list, then keeps the top k with a bounded heap. Cost: sum over users of |items(u)|^2 plus
 * O(T log k) selection per item. Scoring scatters from the history: O(|hist| k) per query.
 * The score depends only on the history in the query (the user index is not used), so the
 * model also recommends for users it never saw.
 *
 * Parameters (one rlab_params block): "knn.items" [n_items][k] neighbour ids as F32 (exact,
 * n_items < 2^24; -1 pads rows with fewer than k neighbours) and "knn.sims" [n_items][k].
 */
#include "baselines.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BL_KNN_MAX_ITEMS (1 << 24) /* ids stored exactly as F32 */

typedef struct bl_knn {
    rlab_params *P;
    int32_t K;        /* neighbour slots per item */
    int32_t *nb;      /* [n_items][K] neighbour ids, -1 = empty */
    const float *sim; /* [n_items][K] view into P */
    int64_t n_nb;     /* neighbours kept in total */
} bl_knn;

/* ---- scoring ---------------------------------------------------------------------------- */

/* q: [nq], out: [nq][n_items] */
static int knn_score_all(const rlab_model *m, const rlab_query *q, int nq, float *out,
                         rlab_err *err)
{
    const bl_knn *kn = m->impl;
    size_t ni = (size_t)m->n_items;
    uint8_t *seen = rlab_calloc(ni, 1); /* per call: models are scored from several threads */
    if (!seen)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    for (int b = 0; b < nq; b++) {
        float *row = out + (size_t)b * ni;
        memset(row, 0, ni * sizeof(float));
        for (int32_t t = 0; t < q[b].n_hist; t++) {
            int32_t h = q[b].hist[t];
            if (h < 0 || (size_t)h >= ni || seen[h])
                continue;
            seen[h] = 1;
            const int32_t *nb = kn->nb + (size_t)h * (size_t)kn->K;
            const float *s = kn->sim + (size_t)h * (size_t)kn->K;
            for (int32_t k = 0; k < kn->K && nb[k] >= 0; k++)
                row[nb[k]] += s[k];
        }
        for (int32_t t = 0; t < q[b].n_hist; t++)
            if (q[b].hist[t] >= 0 && (size_t)q[b].hist[t] < ni)
                seen[q[b].hist[t]] = 0;
    }
    rlab_free(seen);
    return RLAB_OK;
}

static int knn_tensors(const rlab_model *m, rlab_ckpt *ck, rlab_err *err)
{
    const bl_knn *kn = m->impl;
    return rlab_ckpt_add_params(ck, kn->P, NULL, err);
}

static void knn_describe(const rlab_model *m, char *buf, size_t size)
{
    const bl_knn *kn = m->impl;
    snprintf(buf, size, "ItemKNN cosine, k=%d neighbours per item (%.1f kept on average)%s%s",
             (int)kn->K, m->n_items ? (double)kn->n_nb / (double)m->n_items : 0.0,
             m->dataset[0] ? " on " : "", m->dataset);
}

static void knn_free(rlab_model *m)
{
    bl_knn *kn = m->impl;
    if (!kn)
        return;
    rlab_params_free(kn->P);
    rlab_free(kn->nb);
    rlab_free(kn);
}

static const rlab_model_vt knn_vt = {
    .score_all = knn_score_all,
    .tensors = knn_tensors,
    .describe = knn_describe,
    .free = knn_free,
};

static void knn_specs(rlab_param_spec s[2], int32_t n_items, int32_t K)
{
    s[0] = (rlab_param_spec){.name = "knn.items", .ndim = 2, .shape = {n_items, K}};
    s[1] = (rlab_param_spec){.name = "knn.sims", .ndim = 2, .shape = {n_items, K}};
}

/* Wrap P (owned from now on, also on failure); checks and converts the neighbour ids. */
static rlab_model *knn_wrap(rlab_params *P, int32_t K, int32_t n_users, int32_t n_items,
                            const char *path, rlab_err *err)
{
    bl_knn *kn = rlab_calloc(1, sizeof *kn);
    size_t n = (size_t)n_items * (size_t)K;
    int32_t *nb = rlab_malloc((n ? n : 1) * sizeof *nb);
    if (!kn || !nb) {
        rlab_free(kn);
        rlab_free(nb);
        rlab_params_free(P);
        rlab_errf(err, RLAB_ENOMEM, "out of memory");
        return NULL;
    }
    const float *fid = P->t[0].data;
    for (size_t x = 0; x < n; x++) {
        float f = fid[x];
        if (!(f >= -1.0f && f < (float)n_items) || fabsf(f - floorf(f)) > 0.0f) {
            rlab_free(kn);
            rlab_free(nb);
            rlab_params_free(P);
            rlab_errf(err, RLAB_EFORMAT, "%s: tensor 'knn.items' holds %g, not an item id",
                      path ? path : "itemknn", (double)f);
            return NULL;
        }
        nb[x] = (int32_t)f;
        kn->n_nb += nb[x] >= 0;
    }
    kn->P = P;
    kn->K = K;
    kn->nb = nb;
    kn->sim = P->t[1].data;
    rlab_model *m = rlab_model_new(&knn_vt, kn, NULL, "itemknn", err);
    if (m) {
        m->n_users = n_users;
        m->n_items = n_items;
    }
    return m;
}

/* ---- training --------------------------------------------------------------------------- */

/* A candidate neighbour; "better" = higher sim, then lower id. */
typedef struct cand {
    float s;
    int32_t j;
} cand;

static int better(cand a, cand b) { return a.s > b.s || (!(a.s < b.s) && a.j < b.j); }

/* Min-heap on "better": the root is the worst kept candidate. */
static void heap_down(cand *h, int n, int i)
{
    for (;;) {
        int l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && better(h[w], h[l]))
            w = l;
        if (r < n && better(h[w], h[r]))
            w = r;
        if (w == i)
            return;
        cand t = h[i];
        h[i] = h[w];
        h[w] = t;
        i = w;
    }
}

static void heap_up(cand *h, int i)
{
    while (i > 0) {
        int p = (i - 1) / 2;
        if (!better(h[p], h[i]))
            return;
        cand t = h[i];
        h[i] = h[p];
        h[p] = t;
        i = p;
    }
}

/* Distinct items of every user as CSR (sorted), and its transpose. */
typedef struct binmat {
    int64_t *u_off; /* [n_users+1] */
    int32_t *u_it;  /* distinct items per user, ascending */
    int64_t *i_off; /* [n_items+1] */
    int32_t *i_us;  /* users per item */
} binmat;

static void binmat_clear(binmat *b)
{
    rlab_free(b->u_off);
    rlab_free(b->u_it);
    rlab_free(b->i_off);
    rlab_free(b->i_us);
}

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

static int binmat_build(const rlab_seqs *s, int32_t nu, int32_t ni, binmat *b, rlab_err *err)
{
    memset(b, 0, sizeof *b);
    int64_t nnz = s->off[nu];
    b->u_off = rlab_calloc((size_t)nu + 1, sizeof *b->u_off);
    b->u_it = rlab_malloc((size_t)(nnz ? nnz : 1) * sizeof *b->u_it);
    b->i_off = rlab_calloc((size_t)ni + 1, sizeof *b->i_off);
    if (!b->u_off || !b->u_it || !b->i_off)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    int64_t w = 0;
    for (int32_t u = 0; u < nu; u++) {
        int64_t start = w;
        memcpy(b->u_it + w, s->items + s->off[u],
               (size_t)(s->off[u + 1] - s->off[u]) * sizeof(int32_t));
        int64_t n = s->off[u + 1] - s->off[u];
        qsort(b->u_it + start, (size_t)n, sizeof(int32_t), cmp_i32);
        for (int64_t k = 0; k < n; k++)
            if (w == start || b->u_it[start + k] != b->u_it[w - 1])
                b->u_it[w++] = b->u_it[start + k];
        b->u_off[u + 1] = w;
    }
    for (int64_t k = 0; k < w; k++)
        b->i_off[b->u_it[k] + 1]++;
    for (int32_t i = 0; i < ni; i++)
        b->i_off[i + 1] += b->i_off[i];
    b->i_us = rlab_malloc((size_t)(w ? w : 1) * sizeof *b->i_us);
    int64_t *fill = rlab_malloc(((size_t)ni + 1) * sizeof *fill);
    if (!b->i_us || !fill) {
        rlab_free(fill);
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    }
    memcpy(fill, b->i_off, ((size_t)ni + 1) * sizeof *fill);
    for (int32_t u = 0; u < nu; u++)
        for (int64_t k = b->u_off[u]; k < b->u_off[u + 1]; k++)
            b->i_us[fill[b->u_it[k]]++] = u;
    rlab_free(fill);
    return RLAB_OK;
}

static rlab_model *knn_train(const rlab_fit *fit, rlab_err *err)
{
    const rlab_view *d = fit->view;
    const bl_knn_cfg *cfg = fit->cfg;
    int32_t ni = d->n_items, nu = d->n_users;
    if (ni >= BL_KNN_MAX_ITEMS) {
        rlab_errf(err, RLAB_EINVAL, "ItemKNN supports fewer than %d items, the dataset has %d",
                  BL_KNN_MAX_ITEMS, (int)ni);
        return NULL;
    }
    int32_t K = cfg->k < ni - 1 ? cfg->k : ni - 1;
    if (K < 1)
        K = 1;
    rlab_param_spec specs[2];
    knn_specs(specs, ni, K);
    binmat bm;
    rlab_params *P = NULL;
    int32_t *acc = NULL; /* [n_items] co-occurrence counts of the current item */
    int32_t *touched = NULL;
    cand *heap = NULL;
    rlab_model *m = NULL;
    if (binmat_build(&d->train, nu, ni, &bm, err))
        goto done;
    P = rlab_params_new(specs, 2, NULL, err);
    acc = rlab_calloc((size_t)ni, sizeof *acc);
    touched = rlab_malloc((size_t)ni * sizeof *touched);
    heap = rlab_malloc((size_t)K * sizeof *heap);
    if (!P || !acc || !touched || !heap) {
        if (P)
            rlab_errf(err, RLAB_ENOMEM, "out of memory");
        goto done;
    }
    float *ids = P->t[0].data, *sims = P->t[1].data;
    for (int32_t i = 0; i < ni; i++) {
        if ((i & 63) == 0 && bl_cancelled(fit)) {
            rlab_errf(err, RLAB_ECANCELED, "cancelled");
            goto done;
        }
        /* co-occurrence counts of i with every item sharing a user: acc[j] = |U_i ∩ U_j| */
        int32_t nt = 0;
        for (int64_t a = bm.i_off[i]; a < bm.i_off[i + 1]; a++) {
            int32_t u = bm.i_us[a];
            for (int64_t k = bm.u_off[u]; k < bm.u_off[u + 1]; k++) {
                int32_t j = bm.u_it[k];
                if (j == i)
                    continue;
                if (acc[j]++ == 0)
                    touched[nt++] = j;
            }
        }
        double di = (double)(bm.i_off[i + 1] - bm.i_off[i]);
        int nh = 0;
        for (int32_t x = 0; x < nt; x++) {
            int32_t j = touched[x];
            double dj = (double)(bm.i_off[j + 1] - bm.i_off[j]);
            cand c = {(float)((double)acc[j] / sqrt(di * dj)), j};
            acc[j] = 0;
            if (nh < K) {
                heap[nh] = c;
                heap_up(heap, nh++);
            } else if (better(c, heap[0])) {
                heap[0] = c;
                heap_down(heap, nh, 0);
            }
        }
        /* pop worst-first into the slots from the back: best first */
        float *ri = ids + (size_t)i * (size_t)K, *rs = sims + (size_t)i * (size_t)K;
        for (int32_t k = nh; k < K; k++) {
            ri[k] = -1.0f;
            rs[k] = 0.0f;
        }
        for (int n = nh; n > 0; n--) {
            ri[n - 1] = (float)heap[0].j;
            rs[n - 1] = heap[0].s;
            heap[0] = heap[n - 1];
            heap_down(heap, n - 1, 0);
        }
    }
    m = knn_wrap(P, K, nu, ni, NULL, err);
    P = NULL;
done:
    binmat_clear(&bm);
    rlab_params_free(P);
    rlab_free(acc);
    rlab_free(touched);
    rlab_free(heap);
    return m;
}

static int knn_begin(const rlab_fit *fit, void **state, rlab_err *err)
{
    bl_once *o = rlab_calloc(1, sizeof *o);
    if (!o)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    *o = (bl_once){.fit = fit, .train = knn_train};
    *state = o;
    return RLAB_OK;
}

const rlab_fit_ops bl_knn_fit = {.begin = knn_begin,
                                 .step = bl_once_step,
                                 .model = bl_once_model,
                                 .no_loss = 1,
                                 .end = bl_once_end};

rlab_model *bl_knn_restore(rlab_host *host, const rlab_ckpt *ck, const void *cfg, rlab_err *err)
{
    (void)host;
    (void)cfg;
    int32_t nu, ni;
    if (bl_ckpt_sizes(ck, &nu, &ni, err))
        return NULL;
    if (ni >= BL_KNN_MAX_ITEMS) {
        rlab_errf(err, RLAB_EFORMAT, "checkpoint: %d items is too many for ItemKNN", (int)ni);
        return NULL;
    }
    int nd = 0;
    int64_t sh[8];
    if (!rlab_ckpt_tensor(ck, "knn.items", RLAB_DT_F32, &nd, sh, err))
        return NULL;
    if (nd != 2 || sh[0] != ni || sh[1] < 1 || sh[1] > BL_KNN_MAX_ITEMS) {
        rlab_errf(err, RLAB_EFORMAT, "checkpoint: tensor 'knn.items' has a bad shape");
        return NULL;
    }
    rlab_param_spec specs[2];
    knn_specs(specs, ni, (int32_t)sh[1]);
    rlab_params *P = bl_ckpt_params(ck, specs, 2, err);
    return P ? knn_wrap(P, (int32_t)sh[1], nu, ni, "checkpoint", err) : NULL;
}
