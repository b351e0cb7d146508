/*
 * plugins/genrank/gen.c: generation. Beam search over semantic-ID tokens, constrained by the
 * prefix trie of valid tuples (every generated tuple is a real item, never one of the
 * history, never twice in a session) or unconstrained (to measure the legality ratio); the
 * model's full-catalogue ranking; the session measures of a model on a view.
 *
 * Per history the encoder runs once and the cross-attention keys / values of every decoder
 * layer are computed once. The decoder keeps a KV cache: step j runs only position j of every
 * beam (genrank_decode_step) against the self-attention keys / values of positions 0..j-1,
 * which are reordered with the beams (a surviving beam takes its parent's rows). Without the
 * cache (GENRANK_BEAM_NO_CACHE, the tests' and the benchmark's reference) step j re-runs the
 * full causal decoder over the j + 1 tokens of every beam.
 */
#include "genrank.h"

#include "data/world.h"
#include "eval/rank.h"
#include "tensor/ops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void genrank_beam_out_clear(genrank_beam_out *o)
{
    if (!o)
        return;
    rlab_free(o->items);
    rlab_free(o->tokens);
    rlab_free(o->logp);
    rlab_free(o->first);
    memset(o, 0, sizeof *o);
}

typedef struct cand {
    float s;
    int32_t w, c;
} cand;

static int cand_cmp(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->s > y->s)
        return -1;
    if (x->s < y->s)
        return 1;
    if (x->w != y->w)
        return x->w < y->w ? -1 : 1;
    return x->c < y->c ? -1 : (x->c > y->c);
}

static size_t infer_bytes(const genrank_net *net, int W)
{
    genrank_cfg c = net->cfg;
    c.dropout = 0;
    return genrank_arena_bytes(&c, net->codes.n_items, W) / 2 + (16u << 20);
}

int genrank_beam(const genrank_net *net, const int32_t *hist, int64_t n_hist, const int32_t *mask,
                 int64_t n_mask, int W, int m, int constrained, genrank_beam_out *out,
                 rlab_err *err)
{
    return genrank_beam_ex(net, hist, n_hist, mask, n_mask, W, m, constrained, 0, out, err);
}

int genrank_beam_ex(const genrank_net *net, const int32_t *hist, int64_t n_hist,
                    const int32_t *mask, int64_t n_mask, int W, int m, int constrained,
                    unsigned flags, genrank_beam_out *out, rlab_err *err)
{
    memset(out, 0, sizeof *out);
    const genrank_codes *cd = &net->codes;
    const int Lt = cd->Lt, d = net->cfg.dim, n = net->cfg.maxlen, N = cd->n_items;
    if (m < 1 || m > net->cfg.session)
        return rlab_errf(err, RLAB_EINVAL, "genrank: session of %d items (model: 1..%d)", m,
                         net->cfg.session);
    const int S = m * Lt;
    int Kmax = 1;
    for (int l = 0; l < Lt; l++)
        Kmax = cd->K[l] > Kmax ? cd->K[l] : Kmax;
    rlab_tape *t = rlab_tape_new(infer_bytes(net, W), 4096, err);
    int32_t *win = rlab_malloc((size_t)n * sizeof(int32_t));
    uint8_t *seen = rlab_calloc((size_t)N, 1);
    int32_t *tok = rlab_malloc((size_t)W * (size_t)(S + 1) * sizeof(int32_t) * 2);
    int32_t *node = rlab_malloc((size_t)W * 2 * sizeof(int32_t));
    int32_t *items = rlab_malloc((size_t)W * (size_t)m * 2 * sizeof(int32_t));
    float *lp = rlab_malloc((size_t)W * 2 * sizeof(float));
    float *encd =
        rlab_malloc((size_t)2 * net->cfg.dec_layers * W * (size_t)n * (size_t)d * sizeof(float));
    uint8_t *ev = rlab_malloc((size_t)W * (size_t)n);
    float *logits = rlab_malloc((size_t)W * (size_t)Kmax * sizeof(float));
    cand *cands = rlab_malloc((size_t)W * (size_t)Kmax * sizeof(cand));
    /* self-attention KV cache: [cur / nxt][K / V][layer] blocks of W * (S + 1) * d floats;
     * at step j a block holds [nb][j + 1][d] */
    const int use_cache = !(flags & GENRANK_BEAM_NO_CACHE);
    const size_t cblk = (size_t)W * (size_t)(S + 1) * (size_t)d;
    float *cache =
        use_cache ? rlab_malloc((size_t)4 * net->cfg.dec_layers * cblk * sizeof(float)) : NULL;
    int32_t *alive_buf = NULL, *alive[GENRANK_MAX_LEVELS] = {0};
    int rc = RLAB_OK;
    if (!t || !win || !seen || !tok || !node || !items || !lp || !encd || !ev || !logits ||
        !cands || (use_cache && !cache)) {
        rc = err->code ? err->code : rlab_errf(err, RLAB_ENOMEM, "genrank: out of memory (beam)");
        goto done;
    }
    for (int64_t i = 0; i < n_mask; i++)
        if (mask[i] >= 0 && mask[i] < N)
            seen[mask[i]] = 1;
    /* alive[l][node]: unmasked items below the node (levels 1..Lt-1) */
    int64_t tot_nodes = 0;
    for (int l = 1; l < Lt; l++)
        tot_nodes += cd->nn[l];
    alive_buf = rlab_calloc((size_t)(tot_nodes ? tot_nodes : 1), sizeof(int32_t));
    if (!alive_buf) {
        rc = rlab_errf(err, RLAB_ENOMEM, "genrank: out of memory (beam)");
        goto done;
    }
    for (int l = 1, o = 0; l < Lt; o += cd->nn[l], l++)
        alive[l] = alive_buf + o;
    for (int32_t i = 0; i < N; i++) {
        if (seen[i])
            continue;
        int32_t nd = 0;
        for (int l = 0; l < Lt - 1; l++) {
            nd = cd->child[l][(int64_t)nd * cd->K[l] + cd->codes[(int64_t)i * Lt + l]];
            alive[l + 1][nd]++;
        }
    }
    /* encoder once */
    genrank_window(net, hist, n_hist, win);
    rlab_tape_reset(t);
    rlab_tape_set_training(t, 0);
    const uint8_t *evalid = NULL;
    rlab_tensor *E1 = genrank_encode(net, t, net->frozen, win, 1, &evalid);
    if (rlab_tape_error(t)) {
        rc = rlab_errf(err, rlab_tape_error(t), "genrank encoder: %s", rlab_tape_errmsg(t));
        goto done;
    }
    /* the cross-attention keys and values of every decoder layer, once, replicated W times */
    const int nl = net->cfg.dec_layers;
    for (int i = 0; i < 2 * nl; i++) {
        const int wi = i % 2 ? net->dec[i / 2].cv : net->dec[i / 2].ck;
        rlab_tensor *kv1 = rlab_t_matmul(t, E1, &net->frozen[wi], 0, 0);
        if (rlab_tape_error(t)) {
            rc = rlab_errf(err, rlab_tape_error(t), "genrank encoder: %s", rlab_tape_errmsg(t));
            goto done;
        }
        for (int w = 0; w < W; w++)
            memcpy(encd + ((size_t)i * W + w) * n * d, kv1->data, (size_t)n * d * sizeof(float));
    }
    for (int w = 0; w < W; w++)
        memcpy(ev + (size_t)w * n, evalid, (size_t)n);
    int32_t *tok_cur = tok, *tok_nxt = tok + (size_t)W * (S + 1);
    int32_t *node_cur = node, *node_nxt = node + W;
    int32_t *it_cur = items, *it_nxt = items + (size_t)W * m;
    float *lp_cur = lp, *lp_nxt = lp + W;
    int nb = 1;          /* live beams */
    float *ccur = cache; /* the cache half of the current beams */
    tok_cur[0] = -1;
    node_cur[0] = 0;
    lp_cur[0] = 0.0f;
    for (int i = 0; i < m; i++)
        it_cur[i] = -1;
    for (int j = 0; j < S; j++) {
        const int l = j % Lt, K = cd->K[l], T = j + 1;
        rlab_tape_reset(t);
        rlab_tape_set_training(t, 0);
        rlab_tensor *kv[2 * GENRANK_MAX_LAYERS];
        for (int i = 0; i < 2 * nl; i++)
            kv[i] = rlab_t_input(t, encd + (size_t)i * W * n * d, 3, (int64_t[]){nb, n, d});
        int32_t *tk = rlab_tape_alloc(t, (size_t)nb * T * sizeof(int32_t));
        if (!tk) {
            rc = rlab_errf(err, RLAB_ENOMEM, "genrank: beam tape too small");
            goto done;
        }
        rlab_tensor *H;
        int Hrows; /* rows of H per beam: the last one is position j */
        if (use_cache) {
            float *kc[GENRANK_MAX_LAYERS], *vc[GENRANK_MAX_LAYERS];
            for (int i = 0; i < nl; i++) {
                kc[i] = ccur + (size_t)(2 * i) * cblk;
                vc[i] = ccur + (size_t)(2 * i + 1) * cblk;
            }
            for (int b = 0; b < nb; b++)
                tk[b] = tok_cur[(size_t)b * (S + 1) + j];
            H = genrank_decode_step(net, t, net->frozen, tk, nb, j, kc, vc, kv, ev, out->load);
            Hrows = 1;
        } else {
            for (int b = 0; b < nb; b++)
                memcpy(tk + (size_t)b * T, tok_cur + (size_t)b * (S + 1),
                       (size_t)T * sizeof(int32_t));
            H = genrank_decode_kv(net, t, net->frozen, tk, nb, T, NULL, kv, ev, NULL, out->load);
            Hrows = T;
        }
        if (rlab_tape_error(t)) {
            rc = rlab_errf(err, rlab_tape_error(t), "genrank decoder: %s", rlab_tape_errmsg(t));
            goto done;
        }
        /* log-softmax of the last position's logits over level l's codes */
        const float *hw = net->P->t[net->head[l]].data, *hb = net->P->t[net->head_b[l]].data;
        int nc = 0;
        for (int b = 0; b < nb; b++) {
            const float *h = H->data + ((size_t)b * Hrows + (size_t)(Hrows - 1)) * d;
            float *z = logits + (size_t)b * K;
            float mx = -INFINITY;
            for (int k = 0; k < K; k++) {
                float s = hb[k];
                for (int q = 0; q < d; q++)
                    s += h[q] * hw[(size_t)k * d + q];
                z[k] = s;
                mx = s > mx ? s : mx;
            }
            double se = 0.0;
            for (int k = 0; k < K; k++)
                se += exp((double)(z[k] - mx));
            const float lse = mx + (float)log(se);
            double ent = 0.0;
            for (int k = 0; k < K; k++) {
                z[k] -= lse;
                ent -= exp((double)z[k]) * (double)z[k];
            }
            if (j == 0 && (flags & GENRANK_BEAM_FIRST)) {
                out->first = rlab_malloc((size_t)K * sizeof(float));
                if (!out->first) {
                    rc = rlab_errf(err, RLAB_ENOMEM, "genrank: out of memory (beam)");
                    goto done;
                }
                memcpy(out->first, z, (size_t)K * sizeof(float));
            }
            out->ent[l] += ent;
            out->ent_n[l]++;
            for (int k = 0; k < K; k++) {
                const int32_t nd = node_cur[b];
                int32_t nx = nd >= 0 ? cd->child[l][(int64_t)nd * K + k] : -1;
                if (constrained) {
                    if (nx < 0)
                        continue;
                    if (l == Lt - 1) {
                        if (seen[nx])
                            continue;
                        int dup = 0;
                        for (int i = 0; i < m; i++)
                            dup |= it_cur[(size_t)b * m + i] == nx;
                        if (dup)
                            continue;
                    } else {
                        /* a prefix leads somewhere only if one of its items is neither
                         * masked nor already in this session */
                        int64_t left = alive[l + 1][nx];
                        const int32_t *pre = tok_cur + (size_t)b * (S + 1) + (j - l + 1);
                        for (int i = 0; i < j / Lt && left > 0; i++) {
                            const int32_t it = it_cur[(size_t)b * m + i];
                            if (it < 0 || seen[it] || cd->codes[(int64_t)it * Lt + l] != k)
                                continue;
                            int same = 1;
                            for (int q = 0; q < l && same; q++)
                                same = cd->codes[(int64_t)it * Lt + q] == pre[q];
                            left -= same;
                        }
                        if (left <= 0)
                            continue;
                    }
                }
                cands[nc++] = (cand){lp_cur[b] + z[k], b, k};
            }
        }
        if (nc == 0) {
            nb = 0;
            break;
        }
        qsort(cands, (size_t)nc, sizeof *cands, cand_cmp);
        const int nn = nc < W ? nc : W;
        for (int q = 0; q < nn; q++) {
            const int b = cands[q].w, k = cands[q].c;
            memcpy(tok_nxt + (size_t)q * (S + 1), tok_cur + (size_t)b * (S + 1),
                   (size_t)(S + 1) * sizeof(int32_t));
            tok_nxt[(size_t)q * (S + 1) + j + 1] = k;
            memcpy(it_nxt + (size_t)q * m, it_cur + (size_t)b * m, (size_t)m * sizeof(int32_t));
            lp_nxt[q] = cands[q].s;
            const int32_t nd = node_cur[b];
            const int32_t nx = nd >= 0 ? cd->child[l][(int64_t)nd * K + k] : -1;
            if (l == Lt - 1) {
                it_nxt[(size_t)q * m + j / Lt] = nx; /* -1: not an item (unconstrained) */
                node_nxt[q] = 0;
            } else
                node_nxt[q] = nx;
        }
        if (use_cache && j + 1 < S) {
            /* reorder the cache with the beams: the survivor q takes its parent's rows
             * 0..j, laid out [nn][j + 2][d] for the next step (the other half of the
             * double buffer), then the halves swap */
            float *nxt = ccur == cache ? cache + (size_t)2 * nl * cblk : cache;
            for (int i = 0; i < 2 * nl; i++) {
                const float *src = ccur + (size_t)i * cblk;
                float *dst = nxt + (size_t)i * cblk;
                for (int q = 0; q < nn; q++)
                    memcpy(dst + (size_t)q * (j + 2) * d, src + (size_t)cands[q].w * (j + 1) * d,
                           (size_t)(j + 1) * d * sizeof(float));
            }
            ccur = nxt;
        }
        nb = nn;
        int32_t *sw;
        float *sf;
        sw = tok_cur, tok_cur = tok_nxt, tok_nxt = sw;
        sw = node_cur, node_cur = node_nxt, node_nxt = sw;
        sw = it_cur, it_cur = it_nxt, it_nxt = sw;
        sf = lp_cur, lp_cur = lp_nxt, lp_nxt = sf;
    }
    out->W = nb;
    out->m = m;
    out->items = rlab_malloc((size_t)(nb ? nb : 1) * (size_t)m * sizeof(int32_t));
    out->tokens = rlab_malloc((size_t)(nb ? nb : 1) * (size_t)S * sizeof(int32_t));
    out->logp = rlab_malloc((size_t)(nb ? nb : 1) * sizeof(float));
    if (!out->items || !out->tokens || !out->logp) {
        rc = rlab_errf(err, RLAB_ENOMEM, "genrank: out of memory (beam)");
        goto done;
    }
    for (int b = 0; b < nb; b++) {
        for (int i = 0; i < m; i++) { /* legality of the returned sessions' tuples */
            out->generated++;
            out->legal += it_cur[(size_t)b * m + i] >= 0;
        }
        memcpy(out->items + (size_t)b * m, it_cur + (size_t)b * m, (size_t)m * sizeof(int32_t));
        memcpy(out->tokens + (size_t)b * S, tok_cur + (size_t)b * (S + 1) + 1,
               (size_t)S * sizeof(int32_t));
        out->logp[b] = lp_cur[b];
    }
done:
    rlab_tape_free(t);
    rlab_free(win);
    rlab_free(seen);
    rlab_free(tok);
    rlab_free(node);
    rlab_free(items);
    rlab_free(lp);
    rlab_free(encd);
    rlab_free(ev);
    rlab_free(logits);
    rlab_free(cands);
    rlab_free(alive_buf);
    rlab_free(cache);
    if (rc)
        genrank_beam_out_clear(out);
    return rc;
}

int genrank_rank_scores(const genrank_net *net, const int32_t *hist, int64_t n_hist, float *scores,
                        rlab_err *err)
{
    const genrank_codes *cd = &net->codes;
    const int32_t N = cd->n_items;
    /* one search: the point-wise beam, and its first step's level-0 log-probabilities for the
     * items beyond it (the search's encoder and first decoder step, not a second pass) */
    genrank_beam_out bo;
    int rc = genrank_beam_ex(net, hist, n_hist, hist, n_hist, net->cfg.beam, 1, 1,
                             GENRANK_BEAM_FIRST, &bo, err);
    if (rc)
        return rc;
    if (!bo.first) { /* every item masked: nothing was decoded */
        for (int32_t i = 0; i < N; i++)
            scores[i] = -500.0f;
        genrank_beam_out_clear(&bo);
        return RLAB_OK;
    }
    int32_t maxpop = 1;
    for (int32_t i = 0; net->pop && i < N; i++)
        maxpop = net->pop[i] > maxpop ? net->pop[i] : maxpop;
    /* beyond the beam: log p(first-level code) at the first step in [-~100, 0], popularity
     * as a tie-break below 1e-3 */
    for (int32_t i = 0; i < N; i++) {
        float s = bo.first[cd->codes[(int64_t)i * cd->Lt]];
        if (s < -500.0f)
            s = -500.0f;
        if (net->pop)
            s += 1e-3f * logf(1.0f + (float)net->pop[i]) / logf(1.0f + (float)maxpop);
        scores[i] = s;
    }
    for (int b = 0; b < bo.W; b++)
        if (bo.items[b] >= 0)
            scores[bo.items[b]] = 1000.0f + (float)(bo.W - b);
    genrank_beam_out_clear(&bo);
    return RLAB_OK;
}

/* ---- measures ------------------------------------------------------------------------------- */

/* The session list of a beam: the best session's items, then the other beams' new items, in
 * beam order (list holds W * m). Returns its length. */
static int session_list(const genrank_beam_out *bo, int m, int32_t *list)
{
    int nl = 0;
    for (int b = 0; b < bo->W; b++)
        for (int i = 0; i < m; i++) {
            const int32_t it = bo->items[(size_t)b * m + i];
            int dup = it < 0;
            for (int q = 0; q < nl && !dup; q++)
                dup = list[q] == it;
            if (!dup)
                list[nl++] = it;
        }
    return nl;
}

/* The measured users: every stride-th user with a validation item (genrank_measure's rule). */
static int64_t measure_stride(const rlab_view *v, int max_users, int64_t *eligible_out)
{
    int64_t eligible = 0;
    for (int32_t u = 0; u < v->n_users; u++)
        eligible += v->valid.off[u + 1] > v->valid.off[u];
    *eligible_out = eligible;
    return max_users > 0 && eligible > max_users ? (eligible + max_users - 1) / max_users : 1;
}

int genrank_valid_recall(const genrank_net *net, const rlab_view *v, int max_users, int window,
                         int W, double **pu, int64_t *n_users, double *mean, int (*cancel)(void *),
                         void *ud, rlab_err *err)
{
    *pu = NULL;
    *n_users = 0;
    *mean = (double)NAN;
    const int m = net->cfg.session;
    int64_t eligible = 0;
    const int64_t stride = measure_stride(v, max_users, &eligible);
    if (eligible == 0)
        return rlab_errf(err, RLAB_EINVAL,
                         "genrank: the IPA guard needs validation items, and no user of the "
                         "view has one");
    double *out = rlab_malloc((size_t)(eligible / stride + 1) * sizeof(double));
    int32_t *list = rlab_malloc((size_t)W * (size_t)m * sizeof(int32_t));
    const int wextra = window > 1 ? window - 1 : 0; /* training items held out */
    int32_t *truth = rlab_malloc((size_t)(m + wextra) * sizeof(int32_t));
    int rc = RLAB_OK;
    if (!out || !list || !truth) {
        rc = rlab_errf(err, RLAB_ENOMEM, "genrank: out of memory");
        goto done;
    }
    int64_t k_el = -1, n = 0;
    double s = 0.0;
    for (int32_t u = 0; u < v->n_users; u++) {
        if (v->valid.off[u + 1] == v->valid.off[u] || ++k_el % stride)
            continue;
        if (cancel && cancel(ud)) {
            rc = rlab_errf(err, RLAB_ECANCELED, "cancelled");
            goto done;
        }
        const int32_t *h = v->hist_valid.items + v->hist_valid.off[u];
        int64_t nh = v->hist_valid.off[u + 1] - v->hist_valid.off[u];
        /* the held-out window: the last wextra train items (the input keeps >= 1 item), then
         * the validation items; the test items are never read */
        const int64_t hold = nh - 1 < wextra ? (nh > 1 ? nh - 1 : 0) : wextra;
        int nt = 0;
        for (int64_t k = nh - hold; k < nh; k++)
            truth[nt++] = h[k];
        nh -= hold;
        for (int64_t k = v->valid.off[u]; k < v->valid.off[u + 1] && nt < m + wextra; k++)
            truth[nt++] = v->valid.items[k];
        genrank_beam_out bo;
        if ((rc = genrank_beam(net, h, nh, h, nh, W, m, 1, &bo, err)))
            goto done;
        const int nl = session_list(&bo, m, list);
        genrank_beam_out_clear(&bo);
        rlab_eval_atk a;
        rlab_eval_list_metrics(list, nl, truth, nt, 10, &a);
        out[n++] = a.recall;
        s += a.recall;
    }
    *pu = out;
    out = NULL;
    *n_users = n;
    *mean = n ? s / (double)n : (double)NAN;
done:
    rlab_free(out);
    rlab_free(list);
    rlab_free(truth);
    return rc;
}

int genrank_measure(const genrank_net *net, const genrank_reward *r, const rlab_world *world,
                    const rlab_view *v, int max_users, int W, genrank_measures *out,
                    int (*cancel)(void *), void *ud, rlab_err *err)
{
    memset(out, 0, sizeof *out);
    out->true_mean = out->true_max = world ? 0.0 : (double)NAN;
    const int m = net->cfg.session, Lt = net->codes.Lt;
    static const int ks[3] = {5, 10, 20};
    int64_t eligible = 0;
    const int64_t stride = measure_stride(v, max_users, &eligible);
    const int64_t cap = eligible / stride + 1;
    out->pu_user = rlab_malloc((size_t)cap * sizeof(int32_t));
    out->pu = rlab_malloc((size_t)cap * GENRANK_PU * sizeof(double));
    int32_t *list = rlab_malloc((size_t)W * (size_t)m * sizeof(int32_t));
    int32_t *truth = rlab_malloc((size_t)m * sizeof(int32_t));
    int32_t *rw = r ? rlab_malloc((size_t)W * (size_t)r->maxlen * sizeof(int32_t)) : NULL;
    int32_t *ritems = r ? rlab_malloc((size_t)W * (size_t)r->m * sizeof(int32_t)) : NULL;
    float *rs = r ? rlab_malloc((size_t)W * sizeof(float)) : NULL;
    double ent[GENRANK_MAX_LEVELS] = {0};
    int64_t entn[GENRANK_MAX_LEVELS] = {0}, legal = 0, gen = 0, rusers = 0;
    int rc = RLAB_OK;
    if (!list || !truth || !out->pu_user || !out->pu || (r && (!rw || !ritems || !rs))) {
        rc = rlab_errf(err, RLAB_ENOMEM, "genrank: out of memory");
        goto done;
    }
    int64_t k_el = -1;
    for (int32_t u = 0; u < v->n_users; u++) {
        const int64_t nv = v->valid.off[u + 1] - v->valid.off[u];
        if (nv == 0)
            continue;
        if (++k_el % stride)
            continue;
        if (cancel && cancel(ud)) {
            rc = rlab_errf(err, RLAB_ECANCELED, "cancelled");
            goto done;
        }
        const int32_t *h = v->hist_valid.items + v->hist_valid.off[u];
        const int64_t nh = v->hist_valid.off[u + 1] - v->hist_valid.off[u];
        int nt = 0;
        for (int64_t k = v->valid.off[u]; k < v->valid.off[u + 1] && nt < m; k++)
            truth[nt++] = v->valid.items[k];
        for (int64_t k = v->test.off[u]; k < v->test.off[u + 1] && nt < m; k++)
            truth[nt++] = v->test.items[k];
        double *pu = out->pu + (size_t)out->users * GENRANK_PU;
        out->pu_user[out->users] = u;
        pu[GENRANK_PU_REWARD_MEAN] = pu[GENRANK_PU_TRUE_MEAN] = (double)NAN;
        genrank_beam_out bo;
        if ((rc = genrank_beam(net, h, nh, h, nh, W, m, 1, &bo, err)))
            goto done;
        for (int l = 0; l < Lt; l++) {
            ent[l] += bo.ent[l];
            entn[l] += bo.ent_n[l];
        }
        for (int e = 0; e < net->cfg.experts; e++)
            out->load[e] += bo.load[e];
        const int nl = session_list(&bo, m, list);
        { /* the validation and the test targets apart (nv validation items first) */
            const int nvt = nv < nt ? (int)nv : nt;
            rlab_eval_atk av = {0}, at = {0};
            if (nvt > 0)
                rlab_eval_list_metrics(list, nl, truth, nvt, 10, &av);
            if (nt > nvt)
                rlab_eval_list_metrics(list, nl, truth + nvt, nt - nvt, 10, &at);
            pu[GENRANK_PU_VALID_R10] = nvt > 0 ? av.recall : (double)NAN;
            pu[GENRANK_PU_TEST_R10] = nt > nvt ? at.recall : (double)NAN;
        }
        for (int q = 0; q < 3; q++) {
            rlab_eval_atk a;
            rlab_eval_list_metrics(list, nl, truth, nt, ks[q], &a);
            out->recall[q] += a.recall;
            out->ndcg[q] += a.ndcg;
            if (q == 1) {
                pu[GENRANK_PU_RECALL10] = a.recall;
                pu[GENRANK_PU_NDCG10] = a.ndcg;
            }
        }
        /* the first item vs the next item: the point-wise beam (m = 1, the ranking of
         * score_all) */
        int nf = 0;
        {
            genrank_beam_out b1;
            if ((rc = genrank_beam(net, h, nh, h, nh, W, 1, 1, &b1, err))) {
                genrank_beam_out_clear(&bo);
                goto done;
            }
            for (int b = 0; b < b1.W; b++)
                if (b1.items[b] >= 0)
                    list[nf++] = b1.items[b];
            genrank_beam_out_clear(&b1);
        }
        rlab_eval_atk a1;
        rlab_eval_list_metrics(list, nf, truth, 1, 10, &a1);
        out->first_recall10 += a1.recall;
        out->first_ndcg10 += a1.ndcg;
        pu[GENRANK_PU_FIRST_R10] = a1.recall;
        if (r && bo.W > 0) {
            for (int b = 0; b < bo.W; b++) {
                genrank_reward_window(r, h, nh, rw + (size_t)b * r->maxlen);
                for (int i = 0; i < r->m; i++)
                    ritems[(size_t)b * r->m + i] = i < m ? bo.items[(size_t)b * m + i] : -1;
            }
            if ((rc = genrank_reward_score(r, rw, ritems, bo.W, rs, NULL, NULL, err))) {
                genrank_beam_out_clear(&bo);
                goto done;
            }
            double s = 0.0, mx = -INFINITY;
            for (int b = 0; b < bo.W; b++) {
                s += (double)rs[b];
                mx = (double)rs[b] > mx ? (double)rs[b] : mx;
            }
            out->reward_mean += s / bo.W;
            pu[GENRANK_PU_REWARD_MEAN] = s / bo.W;
            out->reward_max += mx;
            rusers++;
        }
        if (world && bo.W > 0) {
            double s = 0.0, mx = -INFINITY;
            for (int b = 0; b < bo.W; b++) {
                double a = 0.0;
                for (int i = 0; i < m; i++)
                    a += (double)rlab_world_true_affinity(world, u, bo.items[(size_t)b * m + i]);
                a /= m;
                s += a;
                mx = a > mx ? a : mx;
            }
            out->true_mean += s / bo.W;
            pu[GENRANK_PU_TRUE_MEAN] = s / bo.W;
            out->true_max += mx;
        }
        genrank_beam_out_clear(&bo);
        /* legality without the trie */
        if ((rc = genrank_beam(net, h, nh, NULL, 0, W, m, 0, &bo, err)))
            goto done;
        legal += bo.legal;
        gen += bo.generated;
        genrank_beam_out_clear(&bo);
        out->users++;
    }
    if (out->users) {
        for (int q = 0; q < 3; q++) {
            out->recall[q] /= (double)out->users;
            out->ndcg[q] /= (double)out->users;
        }
        out->first_recall10 /= (double)out->users;
        out->first_ndcg10 /= (double)out->users;
    }
    if (world && out->users) {
        out->true_mean /= (double)out->users;
        out->true_max /= (double)out->users;
    }
    if (rusers) {
        out->reward_mean /= (double)rusers;
        out->reward_max /= (double)rusers;
    }
    for (int l = 0; l < Lt; l++)
        out->ent[l] = entn[l] ? ent[l] / (double)entn[l] : 0.0;
    double tot = 0.0;
    for (int e = 0; e < net->cfg.experts; e++)
        tot += out->load[e];
    for (int e = 0; e < net->cfg.experts && tot > 0; e++)
        out->load[e] /= tot;
    out->legality = gen ? (double)legal / (double)gen : 0.0;
done:
    rlab_free(list);
    rlab_free(truth);
    rlab_free(rw);
    rlab_free(ritems);
    rlab_free(rs);
    if (rc)
        genrank_measures_clear(out);
    return rc;
}

void genrank_measures_clear(genrank_measures *ms)
{
    rlab_free(ms->pu_user);
    rlab_free(ms->pu);
    ms->pu_user = NULL;
    ms->pu = NULL;
}

enum { BOOT_RESAMPLES = 2000 };

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Mean over users of column col of a (minus b's, paired by user, when b is given) and its 95%
 * percentile bootstrap interval (users resampled with replacement, BOOT_RESAMPLES times, a
 * fixed seed per column: the interval is a function of the data). NAN when any value is NAN,
 * when there are no users, or out of memory. */
int genrank_boot_ci(const double *a, const double *b, int64_t n, int stride, int col, double out[3])
{
    out[0] = out[1] = out[2] = (double)NAN;
    if (n <= 0)
        return RLAB_OK;
    double *x = rlab_malloc((size_t)n * sizeof(double));
    double *bs = rlab_malloc((size_t)BOOT_RESAMPLES * sizeof(double));
    if (!x || !bs) {
        rlab_free(x);
        rlab_free(bs);
        return RLAB_ENOMEM;
    }
    double s = 0.0;
    int bad = 0;
    for (int64_t i = 0; i < n; i++) {
        x[i] = a[(size_t)i * stride + col] - (b ? b[(size_t)i * stride + col] : 0.0);
        bad |= isnan(x[i]);
        s += x[i];
    }
    if (!bad) {
        rlab_rng rng;
        rlab_rng_seed(&rng, 0x626f6f74ULL + (uint64_t)col);
        for (int r = 0; r < BOOT_RESAMPLES; r++) {
            double t = 0.0;
            for (int64_t i = 0; i < n; i++)
                t += x[rlab_rng_below(&rng, (uint64_t)n)];
            bs[r] = t / (double)n;
        }
        qsort(bs, BOOT_RESAMPLES, sizeof(double), cmp_double);
        out[0] = s / (double)n;
        out[1] = bs[(int)(0.025 * BOOT_RESAMPLES)];
        out[2] = bs[(int)(0.975 * BOOT_RESAMPLES) - 1];
    }
    rlab_free(x);
    rlab_free(bs);
    return RLAB_OK;
}
