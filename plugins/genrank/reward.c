/*
 * plugins/genrank/reward.c: the reward model R(user, session) of OneRec-v1 (models.md 1.2
 * step 4) at workbench scale.
 *
 *   u      = mean of the item vectors of the user's last maxlen history items    [B, d]
 *   e_i    = v_i * u (target-aware item vectors, elementwise)                      [B, m, d]
 *   x_i    = e_i + Attn(e Wq, e Wk, e Wv)_i (self-attention across the session, one head)
 *   towers = per feedback signal k: logit_k(i) = relu(x_i W1_k + b1_k) W2_k + b2_k + c_k[i]
 *            (c_k [N]: a per-item bias of the signal, the item's own quality), BCE
 *   R(u,S) = mean over the session's items of like_w * s(like) + (1 - like_w) * s(watch)
 *
 * Signals from ratings: like = [rating >= 4], watch = rating / 5 (a watch-time proxy; a soft
 * BCE label). Training sessions are windows of m consecutive training items of a user (the
 * history is everything before), each item replaced with probability 1/2 by a uniformly
 * drawn item the user never interacted with, labelled 0 for both signals (not shown means
 * not liked, not watched). Every 10th session is held out: the like tower's AUC and the mean
 * BCE there are reported. Implicit data (no ratings): every interaction counts as rating 5.
 * On a synthetic world with `truth` given (genrank.align signal=truth) the second tower
 * learns the user's true satisfaction instead of rating / 5: the world's affinity of the
 * user for the item over the user's largest affinity, clipped to [0, 1], for every session
 * item including the random replacements (the truth is known for every item).
 */
#include "genrank.h"

#include "data/world.h"
#include "eval/ctr.h"
#include "tensor/loss.h"
#include "tensor/nn.h"
#include "tensor/ops.h"
#include "tensor/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

genrank_reward *genrank_reward_new(int n_items, int d, int m, int maxlen, float like_w,
                                   uint64_t seed, rlab_err *err)
{
    genrank_reward *r = rlab_calloc(1, sizeof *r);
    if (!r) {
        rlab_errf(err, RLAB_ENOMEM, "genrank: out of memory");
        return NULL;
    }
    r->d = d;
    r->m = m;
    r->n_items = n_items;
    r->maxlen = maxlen;
    r->like_w = like_w;
    rlab_param_spec s[16] = {
        {"reward.emb", 2, {n_items, d}, RLAB_INIT_NORMAL, 0.1f},
        {"reward.wq", 2, {d, d}, RLAB_INIT_XAVIER, 0},
        {"reward.wk", 2, {d, d}, RLAB_INIT_XAVIER, 0},
        {"reward.wv", 2, {d, d}, RLAB_INIT_XAVIER, 0},
        {"reward.like.w1", 2, {d, d}, RLAB_INIT_XAVIER, 0},
        {"reward.like.b1", 1, {d}, RLAB_INIT_ZERO, 0},
        {"reward.like.w2", 2, {d, 1}, RLAB_INIT_XAVIER, 0},
        {"reward.like.b2", 1, {1}, RLAB_INIT_ZERO, 0},
        {"reward.watch.w1", 2, {d, d}, RLAB_INIT_XAVIER, 0},
        {"reward.watch.b1", 1, {d}, RLAB_INIT_ZERO, 0},
        {"reward.watch.w2", 2, {d, 1}, RLAB_INIT_XAVIER, 0},
        {"reward.watch.b2", 1, {1}, RLAB_INIT_ZERO, 0},
        {"reward.item_bias", 2, {n_items, 2}, RLAB_INIT_ZERO, 0},
    };
    rlab_rng rng;
    rlab_rng_seed(&rng, seed ^ 0x726577617264ULL);
    r->P = rlab_params_new(s, 13, &rng, err);
    if (!r->P) {
        rlab_free(r);
        return NULL;
    }
    r->emb = 0;
    r->ibias = 12;
    r->wq = 1;
    r->wk = 2;
    r->wv = 3;
    for (int k = 0; k < 2; k++) {
        r->t1[k] = 4 + 4 * k;
        r->tb1[k] = 5 + 4 * k;
        r->t2[k] = 6 + 4 * k;
        r->tb2[k] = 7 + 4 * k;
    }
    r->frozen = rlab_calloc((size_t)r->P->n, sizeof *r->frozen);
    if (!r->frozen) {
        genrank_reward_free(r);
        rlab_errf(err, RLAB_ENOMEM, "genrank: out of memory");
        return NULL;
    }
    for (int i = 0; i < r->P->n; i++) {
        r->frozen[i] = r->P->t[i];
        r->frozen[i].grad = NULL;
        r->frozen[i].flags = 0;
        r->frozen[i].op = "input";
    }
    return r;
}

void genrank_reward_free(genrank_reward *r)
{
    if (!r)
        return;
    rlab_params_free(r->P);
    rlab_free(r->frozen);
    rlab_free(r);
}

void genrank_reward_window(const genrank_reward *r, const int32_t *hist, int64_t n, int32_t *w)
{
    const int T = r->maxlen;
    const int64_t k = n < T ? n : T;
    for (int i = 0; i < T; i++)
        w[i] = -1;
    for (int64_t i = 0; i < k; i++)
        w[T - k + i] = hist[n - k + i];
}

/* Tower logits [2][B * m] (like, watch) on tape t. */
static int forward(const genrank_reward *r, rlab_tape *t, rlab_tensor *W, const int32_t *win,
                   const int32_t *items, int B, rlab_tensor **lg, uint8_t **ivalid)
{
    const int n = r->maxlen, d = r->d, m = r->m;
    float *A = rlab_tape_calloc(t, (size_t)B * (size_t)B * n * sizeof(float));
    int32_t *urow = rlab_tape_alloc(t, (size_t)B * m * sizeof(int32_t));
    uint8_t *iv = rlab_tape_alloc(t, (size_t)B * m);
    if (!A || !urow || !iv) {
        rlab_tape_fail(t, RLAB_ENOMEM, "genrank reward: tape arena too small");
        return RLAB_ENOMEM;
    }
    for (int b = 0; b < B; b++) {
        int len = 0;
        for (int i = 0; i < n; i++)
            len += win[(size_t)b * n + i] >= 0;
        for (int i = 0; i < n && len; i++)
            if (win[(size_t)b * n + i] >= 0)
                A[(size_t)b * B * n + (size_t)b * n + i] = 1.0f / (float)len;
        for (int i = 0; i < m; i++) {
            urow[(size_t)b * m + i] = b;
            iv[(size_t)b * m + i] = items[(size_t)b * m + i] >= 0;
        }
    }
    rlab_tensor *G = rlab_t_gather(t, &W[r->emb], win, (int64_t)B * n, -1, 0, NULL);
    rlab_tensor *U =
        rlab_t_matmul(t, rlab_t_input(t, A, 2, (int64_t[]){B, (int64_t)B * n}), G, 0, 0);
    rlab_tensor *V = rlab_t_gather(t, &W[r->emb], items, (int64_t)B * m, -1, 0, NULL);
    rlab_tensor *Ue = rlab_t_gather(t, U, urow, (int64_t)B * m, -1, 0, NULL);
    rlab_tensor *E = rlab_t_reshape(t, rlab_t_mul(t, V, Ue), 3, (int64_t[]){B, m, d});
    rlab_tensor *a = rlab_t_attention(t, rlab_t_matmul(t, E, &W[r->wq], 0, 0),
                                      rlab_t_matmul(t, E, &W[r->wk], 0, 0),
                                      rlab_t_matmul(t, E, &W[r->wv], 0, 0), 1, iv, iv, 0, 0.0f);
    rlab_tensor *X = rlab_t_add(t, E, a);
    rlab_tensor *ib = rlab_t_gather(t, &W[r->ibias], items, (int64_t)B * m, -1, 0, NULL);
    for (int k = 0; k < 2; k++) {
        rlab_tensor *h =
            rlab_t_relu(t, rlab_t_add(t, rlab_t_matmul(t, X, &W[r->t1[k]], 0, 0), &W[r->tb1[k]]));
        lg[k] = rlab_t_add(t, rlab_t_matmul(t, h, &W[r->t2[k]], 0, 0), &W[r->tb2[k]]);
        lg[k] = rlab_t_add(t, lg[k], rlab_t_slice(t, ib, 1, k, 1));
    }
    *ivalid = iv;
    return rlab_tape_error(t);
}

static float sig(float x) { return 1.0f / (1.0f + expf(-x)); }

int genrank_reward_score(const genrank_reward *r, const int32_t *win, const int32_t *items, int B,
                         float *out, float *like, float *watch, rlab_err *err)
{
    const int m = r->m;
    const size_t bytes =
        (size_t)B * ((size_t)B * r->maxlen * 4 + (size_t)(r->maxlen + m) * r->d * 64) + (8u << 20);
    rlab_tape *t = rlab_tape_new(bytes, 256, err);
    if (!t)
        return err->code ? err->code : RLAB_ENOMEM;
    rlab_tensor *lg[2] = {0};
    uint8_t *iv = NULL;
    if (forward(r, t, r->frozen, win, items, B, lg, &iv)) {
        int rc = rlab_errf(err, rlab_tape_error(t), "genrank reward: %s", rlab_tape_errmsg(t));
        rlab_tape_free(t);
        return rc;
    }
    for (int b = 0; b < B; b++) {
        double s = 0.0, sl = 0.0, sw = 0.0;
        int c = 0;
        for (int i = 0; i < m; i++) {
            const size_t k = (size_t)b * m + i;
            if (!iv[k])
                continue;
            const float pl = sig(lg[0]->data[k]), pw = sig(lg[1]->data[k]);
            s += (double)(r->like_w * pl + (1.0f - r->like_w) * pw);
            sl += (double)pl;
            sw += (double)pw;
            c++;
        }
        out[b] = c ? (float)(s / c) : 0.0f;
        if (like)
            like[b] = c ? (float)(sl / c) : 0.0f;
        if (watch)
            watch[b] = c ? (float)(sw / c) : 0.0f;
    }
    rlab_tape_free(t);
    return RLAB_OK;
}

/* ---- training ------------------------------------------------------------------------------- */

typedef struct ir {
    int32_t item;
    float rating;
} ir;

static int ir_cmp(const void *a, const void *b)
{
    const ir *x = a, *y = b;
    return (x->item > y->item) - (x->item < y->item);
}

static const ir *ir_find(const ir *a, int64_t n, int32_t item)
{
    int64_t lo = 0, hi = n;
    while (lo < hi) {
        int64_t mid = (lo + hi) / 2;
        if (a[mid].item < item)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && a[lo].item == item ? &a[lo] : NULL;
}

int genrank_reward_train(genrank_reward *r, const rlab_view *v, const rlab_dataset *ds,
                         const rlab_world *truth, int epochs, uint64_t seed, rlab_err *err)
{
    const int m = r->m, n = r->maxlen, Bmax = 128;
    const int32_t NU = v->n_users, NI = v->n_items;
    const rlab_inter *in = &ds->inter;
    int rc = RLAB_OK;
    int64_t *uoff = rlab_calloc((size_t)NU + 1, sizeof(int64_t));
    ir *uir = rlab_malloc((in->n ? in->n : 1) * sizeof(ir));
    int64_t ns = 0;
    for (int32_t u = 0; u < NU; u++) {
        const int64_t len = v->train.off[u + 1] - v->train.off[u];
        ns += len > 1 ? (len - 1 + m - 1) / m : 0;
    }
    int32_t *su = rlab_malloc((size_t)(ns ? ns : 1) * sizeof(int32_t));
    int32_t *st = rlab_malloc((size_t)(ns ? ns : 1) * sizeof(int32_t));
    int32_t *order = rlab_malloc((size_t)(ns ? ns : 1) * sizeof(int32_t));
    int32_t *win = rlab_malloc((size_t)Bmax * n * sizeof(int32_t));
    int32_t *items = rlab_malloc((size_t)Bmax * m * sizeof(int32_t));
    float *lab = rlab_malloc((size_t)Bmax * m * 3 * sizeof(float));
    rlab_tape *t = rlab_tape_new(
        (size_t)Bmax * ((size_t)Bmax * n * 4 + (size_t)(n + m) * r->d * 64) + (16u << 20), 256,
        err);
    rlab_opt_config oc = rlab_opt_defaults(RLAB_OPT_ADAM);
    oc.lr = 3e-3f;
    rlab_opt *opt = t ? rlab_opt_new(r->P, &oc, err) : NULL;
    float *hs = NULL;
    uint8_t *hl = NULL;
    /* truth: each user's largest true affinity over the catalogue (the label's scale) */
    float *amax = truth ? rlab_malloc((size_t)(NU ? NU : 1) * sizeof(float)) : NULL;
    if (truth && !amax) {
        rc = rlab_errf(err, RLAB_ENOMEM, "genrank reward: out of memory");
        goto done;
    }
    for (int32_t u = 0; truth && u < NU; u++) {
        float mx = 0.0f;
        for (int32_t i = 0; i < NI; i++) {
            const float a = rlab_world_true_affinity(truth, u, i);
            mx = a > mx ? a : mx;
        }
        amax[u] = mx > 0.0f ? mx : 1.0f;
    }
    if (!uoff || !uir || !su || !st || !order || !win || !items || !lab || !t || !opt) {
        rc = err->code ? err->code : rlab_errf(err, RLAB_ENOMEM, "genrank reward: out of memory");
        goto done;
    }
    if (in->n == 0) {
        rc = rlab_errf(err, RLAB_EINVAL, "genrank reward: dataset '%s' has no interactions",
                       ds->name);
        goto done;
    }
    /* implicit data (no ratings, e.g. Amazon Beauty: rating[] all 1 without
     * RLAB_INTER_HAS_RATING): every interaction counts as rating 5, so both towers learn
     * "interacted" (1) against the random unseen items (0) */
    const int has_r = in->rating && (in->flags & RLAB_INTER_HAS_RATING);
    for (size_t i = 0; i < in->n; i++)
        if (in->user[i] >= 0 && in->user[i] < NU)
            uoff[in->user[i] + 1]++;
    for (int32_t u = 0; u < NU; u++)
        uoff[u + 1] += uoff[u];
    {
        int64_t *fill = rlab_malloc(((size_t)NU + 1) * sizeof(int64_t));
        if (!fill) {
            rc = rlab_errf(err, RLAB_ENOMEM, "genrank reward: out of memory");
            goto done;
        }
        memcpy(fill, uoff, ((size_t)NU + 1) * sizeof(int64_t));
        for (size_t i = 0; i < in->n; i++)
            if (in->user[i] >= 0 && in->user[i] < NU)
                uir[fill[in->user[i]]++] = (ir){in->item[i], has_r ? in->rating[i] : 5.0f};
        rlab_free(fill);
        for (int32_t u = 0; u < NU; u++)
            qsort(uir + uoff[u], (size_t)(uoff[u + 1] - uoff[u]), sizeof(ir), ir_cmp);
    }
    ns = 0;
    for (int32_t u = 0; u < NU; u++) {
        const int64_t len = v->train.off[u + 1] - v->train.off[u];
        for (int64_t p = 1; p < len; p += m) {
            su[ns] = u;
            st[ns++] = (int32_t)p;
        }
    }
    int64_t ntr = 0, nho = 0;
    for (int64_t i = 0; i < ns; i++)
        if (i % 10 != 9)
            order[ntr++] = (int32_t)i;
    nho = ns - ntr;
    rlab_rng rng;
    rlab_rng_seed(&rng, seed ^ 0x7277747261696eULL);
    /* the corruption of a session is a function of (seed, session): the held-out set is the
     * same every epoch */
    for (int e = 0; e <= epochs; e++) {
        const int last = e == epochs; /* the held-out pass */
        if (!last)
            rlab_rng_shuffle_i32(&rng, order, (size_t)ntr);
        const int64_t cnt = last ? nho : ntr;
        if (last) {
            hs = rlab_malloc((size_t)(nho ? nho : 1) * m * sizeof(float));
            hl = rlab_malloc((size_t)(nho ? nho : 1) * m);
            if (!hs || !hl) {
                rc = rlab_errf(err, RLAB_ENOMEM, "genrank reward: out of memory");
                goto done;
            }
        }
        int64_t nh = 0;
        double bce = 0.0;
        int64_t nbce = 0;
        for (int64_t b0 = 0; b0 < cnt; b0 += Bmax) {
            const int B = (int)(cnt - b0 < Bmax ? cnt - b0 : Bmax);
            float *ll = lab, *lw = lab + (size_t)B * m, *wt = lab + (size_t)2 * B * m;
            for (int b = 0; b < B; b++) {
                const int64_t si = last ? (b0 + b) * 10 + 9 : order[b0 + b];
                const int32_t u = su[si], p = st[si];
                const int32_t *s = v->train.items + v->train.off[u];
                const int64_t len = v->train.off[u + 1] - v->train.off[u];
                genrank_reward_window(r, s, p, win + (size_t)b * n);
                rlab_rng cr;
                rlab_rng_seed(&cr, seed ^ ((uint64_t)si * 0x9e3779b97f4a7c15ULL));
                for (int i = 0; i < m; i++) {
                    const size_t k = (size_t)b * m + i;
                    int32_t it = p + i < len ? s[p + i] : -1;
                    float yl = 0.0f, yw = 0.0f;
                    if (it >= 0 && rlab_rng_uniform(&cr) < 0.5f) {
                        for (int tries = 0; tries < 50; tries++) {
                            it = (int32_t)rlab_rng_below(&cr, (uint64_t)NI);
                            if (!ir_find(uir + uoff[u], uoff[u + 1] - uoff[u], it))
                                break;
                        }
                    } else if (it >= 0) {
                        const ir *f = ir_find(uir + uoff[u], uoff[u + 1] - uoff[u], it);
                        const float rt = f ? f->rating : 0.0f;
                        yl = rt >= 4.0f ? 1.0f : 0.0f;
                        yw = rt > 5.0f ? 1.0f : rt < 0.0f ? 0.0f : rt / 5.0f;
                    }
                    if (truth && it >= 0) { /* the satisfaction tower: every item */
                        const float a = rlab_world_true_affinity(truth, u, it) / amax[u];
                        yw = a < 0.0f ? 0.0f : a > 1.0f ? 1.0f : a;
                    }
                    items[k] = it;
                    ll[k] = yl;
                    lw[k] = yw;
                    wt[k] = it >= 0 ? 1.0f : 0.0f;
                }
            }
            rlab_tape_reset(t);
            rlab_tensor *lg[2] = {0};
            uint8_t *iv = NULL;
            if (last) {
                if (forward(r, t, r->frozen, win, items, B, lg, &iv)) {
                    rc = rlab_errf(err, rlab_tape_error(t), "genrank reward: %s",
                                   rlab_tape_errmsg(t));
                    goto done;
                }
                for (int k = 0; k < B * m; k++) {
                    if (!iv[k])
                        continue;
                    const float pl = sig(lg[0]->data[k]), pw = sig(lg[1]->data[k]);
                    bce -= (double)(ll[k] * logf(pl + 1e-7f) + (1 - ll[k]) * logf(1 - pl + 1e-7f));
                    bce -= (double)(lw[k] * logf(pw + 1e-7f) + (1 - lw[k]) * logf(1 - pw + 1e-7f));
                    nbce += 2;
                    hs[nh] = pl;
                    hl[nh++] = ll[k] > 0.5f;
                }
                continue;
            }
            rlab_params_zero_grad(r->P);
            if (forward(r, t, r->P->t, win, items, B, lg, &iv)) {
                rc = rlab_errf(err, rlab_tape_error(t), "genrank reward: %s", rlab_tape_errmsg(t));
                goto done;
            }
            rlab_tensor *loss = rlab_t_add(t, rlab_t_bce_logits(t, lg[0], ll, wt),
                                           rlab_t_bce_logits(t, lg[1], lw, wt));
            if (rlab_tape_backward(t, loss) || rlab_opt_step(opt, r->P)) {
                rc =
                    rlab_errf(err, RLAB_EINVAL, "genrank reward backward: %s", rlab_tape_errmsg(t));
                goto done;
            }
        }
        if (last) {
            r->bce = nbce ? bce / (double)nbce : 0.0;
            r->auc_like = 0.5;
            rlab_err e2 = {0};
            if (nh > 1 && rlab_eval_auc(hs, hl, nh, &r->auc_like, &e2))
                r->auc_like = NAN; /* one class only */
        }
    }
done:
    rlab_free(amax);
    rlab_free(uoff);
    rlab_free(uir);
    rlab_free(su);
    rlab_free(st);
    rlab_free(order);
    rlab_free(win);
    rlab_free(items);
    rlab_free(lab);
    rlab_free(hs);
    rlab_free(hl);
    rlab_tape_free(t);
    rlab_opt_free(opt);
    return rc;
}
