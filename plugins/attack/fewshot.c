/*
 * plugins/attack/fewshot.c: the few-shot extraction attack's data (Zhang & Liu, arXiv
 * 2411.11677, models.md 6.2, as far as it is known; where it is silent the choices are ours and
 * are listed in the plugin's README):
 *
 *   1. the few-shot real sequences (at most 10% of the users) are queried prefix by prefix:
 *      real sequences with the victim's lists as distillation targets;
 *   2. the probabilistic interaction sampler: a small self-attention model (any registered
 *      model, in practice a seqrec kind trained on the few-shot sequences) whose softmax over
 *      the items not in the prefix gives the next item;
 *   3. the synthesis determinant: a logistic gate p = sigmoid(w . f) on features f of the step
 *      (below); at each step the next item follows the victim's list (uniform over it, as Yue
 *      et al.) with probability p, else it is drawn from the sampler;
 *   4. synthetic sequences start from a prefix of a random few-shot sequence and are extended
 *      step by step; every step is one black-box query, so budgets are counted in queries.
 *
 * With sampler_list (an option of ours, off by default) a sampler step draws from the
 * sampler's softmax restricted to the victim's list of that step, renormalised: the sampler
 * then picks which listed item a real user would take, and every step stays on the victim's
 * answer (the gate's labels compare the two branches' likelihoods of the real item likewise).
 *
 * The gate is fitted (attack_gate_fit) on held-out few-shot prefixes: label 1 when the real
 * next item is more likely under "follow the victim" (1/|list| if it is in the list, else
 * eps) than under the sampler, i.e. the gate learns when the victim's list explains real
 * behaviour better than the sampler does. Logistic regression, full-batch gradient descent.
 */
#include "attack.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- the gate -------------------------------------------------------------------------- */

void attack_gate_features(const float *p, int32_t n_items, const int32_t *list, int w, int t,
                          int len, double f[ATTACK_GATE_NF])
{
    double mass = 0.0, pmax = 0.0;
    for (int j = 0; j < w; j++)
        if (list[j] >= 0 && list[j] < n_items)
            mass += (double)p[list[j]];
    for (int32_t i = 0; i < n_items; i++)
        if ((double)p[i] > pmax)
            pmax = (double)p[i];
    /* overlap of the sampler's 10 best with the list's first 10 */
    int32_t top[10];
    float ts[10];
    int kk = n_items < 10 ? (int)n_items : 10;
    rlab_topk_row(p, n_items, NULL, kk, top, ts);
    int ov = 0;
    for (int a = 0; a < kk; a++)
        for (int j = 0; j < w && j < 10; j++)
            ov += top[a] >= 0 && top[a] == list[j];
    f[0] = 1.0;
    f[1] = mass;
    f[2] = pmax;
    f[3] = (double)t / (double)(len > 1 ? len : 2);
    f[4] = (double)ov / (double)(kk > 0 ? kk : 1);
}

double attack_gate_prob(const double wt[ATTACK_GATE_NF], const double f[ATTACK_GATE_NF])
{
    double z = 0.0;
    for (int i = 0; i < ATTACK_GATE_NF; i++)
        z += wt[i] * f[i];
    return 1.0 / (1.0 + exp(-z));
}

int attack_gate_fit(const double *f, const uint8_t *y, int64_t n, int iters, double lr, double l2,
                    double wt[ATTACK_GATE_NF], rlab_err *err)
{
    if (n < 1 || iters < 1 || !(lr > 0.0))
        return rlab_errf(err, RLAB_EINVAL, "gate: need examples, iters >= 1 and lr > 0");
    for (int i = 0; i < ATTACK_GATE_NF; i++)
        wt[i] = 0.0;
    for (int it = 0; it < iters; it++) {
        double g[ATTACK_GATE_NF] = {0};
        for (int64_t e = 0; e < n; e++) {
            const double *fe = f + e * ATTACK_GATE_NF;
            const double r = attack_gate_prob(wt, fe) - (double)y[e]; /* d logloss / dz */
            for (int i = 0; i < ATTACK_GATE_NF; i++)
                g[i] += r * fe[i];
        }
        for (int i = 0; i < ATTACK_GATE_NF; i++)
            wt[i] -= lr * (g[i] / (double)n + (i ? l2 * wt[i] : 0.0));
    }
    return RLAB_OK;
}

/* ---- the sampler ----------------------------------------------------------------------- */

/* Softmax of the sampler's scores over the items not in the prefix, into p [N] (in place). */
static void sampler_probs(float *p, int32_t N, const int32_t *prefix, int32_t n)
{
    for (int32_t j = 0; j < n; j++)
        if (prefix[j] >= 0 && prefix[j] < N)
            p[prefix[j]] = -INFINITY;
    float mx = -INFINITY;
    for (int32_t i = 0; i < N; i++)
        if (p[i] > mx)
            mx = p[i];
    double z = 0.0;
    for (int32_t i = 0; i < N; i++) {
        const float e = p[i] > -INFINITY ? expf(p[i] - mx) : 0.0f;
        p[i] = e;
        z += (double)e;
    }
    for (int32_t i = 0; i < N; i++)
        p[i] = z > 0.0 ? (float)((double)p[i] / z) : 0.0f;
}

static int32_t draw(const float *p, int32_t N, rlab_rng *rng)
{
    double u = (double)rlab_rng_uniform(rng), acc = 0.0;
    int32_t last = -1;
    for (int32_t i = 0; i < N; i++) {
        if (p[i] <= 0.0f)
            continue;
        last = i;
        acc += (double)p[i];
        if (u < acc)
            return i;
    }
    return last;
}

/* The sampler's probabilities restricted to the c listed items row[0..c), renormalised: one
 * draw. Returns -1 when the sampler gives the list no mass (the caller falls back). */
static int32_t draw_on_list(const float *p, const int32_t *row, int c, rlab_rng *rng)
{
    double z = 0.0;
    for (int j = 0; j < c; j++)
        z += (double)p[row[j]];
    if (!(z > 0.0))
        return -1;
    const double u = (double)rlab_rng_uniform(rng) * z;
    double acc = 0.0;
    int32_t last = -1;
    for (int j = 0; j < c; j++) {
        if (p[row[j]] <= 0.0f)
            continue;
        last = row[j];
        acc += (double)p[row[j]];
        if (u < acc)
            return row[j];
    }
    return last;
}

/* Mass of the sampler's probabilities p on the c listed items row[0..c). */
static double list_mass(const float *p, const int32_t *row, int c)
{
    double z = 0.0;
    for (int j = 0; j < c; j++)
        z += (double)p[row[j]];
    return z;
}

attack_fs_opts attack_fs_defaults(void)
{
    return (attack_fs_opts){.use_sampler = 1,
                            .use_gate = 1,
                            .p_fixed = 0.5,
                            .gate_iters = 300,
                            .gate_lr = 0.5,
                            .gate_hold = 0.2,
                            .sampler_list = 0};
}

/* Grow *p (elements of size sz) to hold at least need elements. */
static int grow(void **p, int64_t *cap, int64_t need, size_t sz)
{
    if (need <= *cap)
        return RLAB_OK;
    int64_t c = *cap ? *cap : 256;
    while (c < need)
        c *= 2;
    void *q = rlab_realloc(*p, (size_t)c * sz);
    if (!q)
        return RLAB_ENOMEM;
    *p = q;
    *cap = c;
    return RLAB_OK;
}

typedef struct synth_buf {
    attack_synth *s;
    int64_t cap_off, cap_items, cap_lists;
} synth_buf;

/* Append one sequence of n items and its n - 1 lists of width w. */
static int synth_push(synth_buf *sb, const int32_t *items, int n, const int32_t *lists, int w)
{
    attack_synth *s = sb->s;
    int64_t k = s->n, at = s->off[k];
    if (grow((void **)&s->off, &sb->cap_off, k + 2, sizeof *s->off) ||
        grow((void **)&s->items, &sb->cap_items, at + n, sizeof *s->items) ||
        grow((void **)&s->lists, &sb->cap_lists, (at - k + n - 1) * w, sizeof *s->lists))
        return RLAB_ENOMEM;
    memcpy(s->items + at, items, (size_t)n * sizeof *items);
    memcpy(s->lists + (size_t)(at - k) * (size_t)w, lists,
           (size_t)(n - 1) * (size_t)w * sizeof *lists);
    s->off[k + 1] = at + n;
    s->n = k + 1;
    return RLAB_OK;
}

int attack_gen_fewshot(attack_bb *bb, const attack_gen_opts *o, const attack_fs_opts *fo,
                       const int32_t *const *real, const int32_t *real_len, int64_t n_real,
                       const rlab_model *sampler, attack_progress_fn progress, void *ud,
                       attack_synth *out, attack_fs_stats *st, rlab_err *err)
{
    memset(out, 0, sizeof *out);
    memset(st, 0, sizeof *st);
    if (o->n_seqs < 1 || o->len < 2 || o->batch < 1 || o->batch > 4096 || n_real < 1)
        return rlab_errf(err, RLAB_EINVAL,
                         "few-shot: need budget >= 1, len >= 2, batch in [1, 4096] and real "
                         "sequences");
    if (fo->use_sampler && !sampler)
        return rlab_errf(err, RLAB_EINVAL, "few-shot: the sampler is on but no model was given");
    const int32_t N = attack_bb_n_items(bb);
    if (sampler && sampler->n_items != N)
        return rlab_errf(err, RLAB_EINVAL, "few-shot: sampler has %d items, the victim %d",
                         sampler->n_items, N);
    const int w = attack_bb_width(bb), L = o->len, B = o->batch;
    const int64_t budget = o->n_seqs * (int64_t)(L - 1); /* queries, as data-free spends */
    rlab_rng rng;
    rlab_rng_seed(&rng, o->seed);
    synth_buf sb = {.s = out};
    int rc = RLAB_OK;
    int32_t *seq = rlab_malloc((size_t)B * (size_t)L * sizeof *seq);             /* [B][L] */
    int32_t *lst = rlab_malloc((size_t)B * (size_t)L * (size_t)w * sizeof *lst); /* [B][L][w] */
    int32_t *len = rlab_malloc((size_t)B * sizeof *len), *start = rlab_malloc((size_t)B * 4);
    int32_t *ans = rlab_malloc((size_t)B * (size_t)w * sizeof *ans);
    float *ps = rlab_malloc((size_t)B * (size_t)N * sizeof *ps);
    const int32_t **qs = rlab_malloc((size_t)B * sizeof *qs);
    int32_t *ql = rlab_malloc((size_t)B * sizeof *ql);
    int64_t *src = rlab_malloc((size_t)B * sizeof *src);
    rlab_query *qq = rlab_calloc((size_t)B, sizeof *qq);
    /* gate examples: [n][NF] features and labels */
    int64_t gcap = 0, gn = 0;
    double *gf = NULL;
    uint8_t *gy = NULL;
    int64_t gycap = 0;
    if (!seq || !lst || !len || !start || !ans || !ps || !qs || !ql || !src || !qq ||
        grow((void **)&out->off, &sb.cap_off, 1, sizeof *out->off))
        rc = rlab_errf(err, RLAB_ENOMEM, "few-shot: out of memory");
    if (rc == RLAB_OK) {
        out->off[0] = 0;
        out->w = w;
    }
    /* the sequences the gate learns from: the last gate_hold of the real ones (the sampler
     * was trained on the others: see attack.extract) */
    const int64_t n_hold =
        fo->use_gate && fo->use_sampler ? (int64_t)ceil((double)n_real * fo->gate_hold) : 0;

    /* 1. the real sequences (their last L items), every prefix queried */
    for (int64_t r0 = 0; r0 < n_real && rc == RLAB_OK; r0 += B) {
        int nb = 0;
        for (int64_t r = r0; r < n_real && r < r0 + B; r++) {
            int32_t n = real_len[r] < L ? real_len[r] : L;
            if (n < 2)
                continue;
            memcpy(seq + (size_t)nb * (size_t)L, real[r] + (real_len[r] - n),
                   (size_t)n * sizeof *seq);
            len[nb] = n;
            src[nb++] = r;
        }
        for (int t = 1; t < L && rc == RLAB_OK; t++) {
            int na = 0;
            int bidx[4096];
            for (int b = 0; b < nb; b++)
                if (len[b] > t) {
                    qs[na] = seq + (size_t)b * (size_t)L;
                    ql[na] = t;
                    bidx[na++] = b;
                }
            if (na == 0)
                break;
            if ((int64_t)na > attack_bb_remaining(bb) || st->queries + na > budget) {
                for (int b = 0; b < nb; b++) /* cut every sequence at the answered prefixes */
                    if (len[b] > t)
                        len[b] = t;
                break;
            }
            rc = attack_bb_query(bb, qs, ql, na, ans, err);
            st->queries += na;
            int64_t hold_na = 0;
            for (int a = 0; a < na && rc == RLAB_OK; a++) {
                const int b = bidx[a];
                memcpy(lst + ((size_t)b * (size_t)L + (size_t)(t - 1)) * (size_t)w,
                       ans + (size_t)a * (size_t)w, (size_t)w * sizeof *ans);
                if (src[b] >= n_real - n_hold)
                    qq[hold_na++] =
                        (rlab_query){.user = -1, .hist = seq + (size_t)b * (size_t)L, .n_hist = t};
            }
            if (rc == RLAB_OK && hold_na > 0) {
                /* gate examples: sampler vs victim on the real next item */
                rc = rlab_model_score_all(sampler, qq, (int)hold_na, ps, err);
                int64_t e = 0;
                for (int a = 0; a < na && rc == RLAB_OK; a++) {
                    const int b = bidx[a];
                    if (src[b] < n_real - n_hold)
                        continue;
                    float *p = ps + (size_t)e++ * (size_t)N;
                    const int32_t *pre = seq + (size_t)b * (size_t)L;
                    sampler_probs(p, N, pre, t);
                    const int32_t *row = ans + (size_t)a * (size_t)w;
                    const int32_t x = pre[t];
                    int c = 0, in = 0;
                    while (c < w && row[c] >= 0)
                        in |= row[c++] == x;
                    const double pv = in ? 1.0 / (double)c : 1e-6;
                    /* the sampler branch's likelihood of the real item: its softmax, or with
                     * sampler_list that softmax renormalised over the list (an item off the
                     * list gets the same floor as the victim branch) */
                    double psx = (double)p[x];
                    if (fo->sampler_list) {
                        const double m = list_mass(p, row, c);
                        psx = in && m > 0.0 ? (double)p[x] / m : 1e-6;
                    }
                    if (grow((void **)&gf, &gcap, (gn + 1) * ATTACK_GATE_NF, sizeof *gf) ||
                        grow((void **)&gy, &gycap, gn + 1, 1)) {
                        rc = rlab_errf(err, RLAB_ENOMEM, "few-shot: out of memory");
                        break;
                    }
                    attack_gate_features(p, N, row, w, t, L, gf + gn * ATTACK_GATE_NF);
                    gy[gn++] = pv > psx;
                }
            }
        }
        for (int b = 0; b < nb && rc == RLAB_OK; b++)
            if (len[b] >= 2) {
                if (synth_push(&sb, seq + (size_t)b * (size_t)L, len[b],
                               lst + (size_t)b * (size_t)L * (size_t)w, w))
                    rc = rlab_errf(err, RLAB_ENOMEM, "few-shot: out of memory");
                st->real_seqs++;
            }
    }
    /* 2. the gate */
    for (int i = 0; i < ATTACK_GATE_NF; i++)
        st->gate_w[i] = 0.0;
    if (rc == RLAB_OK && fo->use_gate && fo->use_sampler && gn > 0) {
        rc = attack_gate_fit(gf, gy, gn, fo->gate_iters, fo->gate_lr, 1e-3, st->gate_w, err);
        st->gate_examples = gn;
        for (int64_t e = 0; e < gn; e++)
            st->gate_pos += gy[e];
    }
    /* 3. synthetic sequences from few-shot prefixes, until the budget is spent */
    int64_t steps = 0, victim_steps = 0;
    double mass_sum = 0.0;
    while (rc == RLAB_OK && st->queries < budget && attack_bb_remaining(bb) > 0) {
        int nb = 0;
        for (int b = 0; b < B; b++) {
            /* a random real sequence; its first s items, s uniform in [1, min(n, L / 2)] */
            const int64_t r = (int64_t)rlab_rng_below(&rng, (uint64_t)n_real);
            const int32_t n = real_len[r] < L ? real_len[r] : L;
            if (n < 1)
                continue;
            const int32_t smax = n < L / 2 ? n : (L / 2 > 0 ? L / 2 : 1);
            const int32_t s = 1 + (int32_t)rlab_rng_below(&rng, (uint64_t)smax);
            memcpy(seq + (size_t)nb * (size_t)L, real[r], (size_t)s * sizeof *seq);
            start[nb] = s;
            len[nb++] = 1;
        }
        for (int t = 1; t < L && rc == RLAB_OK; t++) {
            int na = 0;
            int bidx[4096];
            for (int b = 0; b < nb; b++)
                if (len[b] == t) {
                    qs[na] = seq + (size_t)b * (size_t)L;
                    ql[na] = t;
                    bidx[na++] = b;
                }
            if (na == 0)
                break;
            int64_t left = budget - st->queries;
            if (attack_bb_remaining(bb) < left)
                left = attack_bb_remaining(bb);
            if (left <= 0)
                break;
            if (na > left)
                na = (int)left; /* the last queries of the budget: the first rows only */
            rc = attack_bb_query(bb, qs, ql, na, ans, err);
            st->queries += na;
            if (rc == RLAB_OK && fo->use_sampler) {
                int nq = 0;
                for (int a = 0; a < na; a++)
                    if (start[bidx[a]] <= t)
                        qq[nq++] = (rlab_query){.user = -1, .hist = qs[a], .n_hist = t};
                if (nq > 0)
                    rc = rlab_model_score_all(sampler, qq, nq, ps, err);
            }
            for (int a = 0, e = 0; a < na && rc == RLAB_OK; a++) {
                const int b = bidx[a];
                int32_t *sq = seq + (size_t)b * (size_t)L;
                const int32_t *row = ans + (size_t)a * (size_t)w;
                memcpy(lst + ((size_t)b * (size_t)L + (size_t)(t - 1)) * (size_t)w, row,
                       (size_t)w * sizeof *row);
                len[b] = t + 1;
                if (start[b] > t) /* still inside the real prefix */
                    continue;
                int c = 0;
                while (c < w && row[c] >= 0)
                    c++;
                double pg = 1.0;
                float *p = NULL;
                if (fo->use_sampler) {
                    p = ps + (size_t)e++ * (size_t)N;
                    sampler_probs(p, N, sq, t);
                    mass_sum += list_mass(p, row, c);
                    if (fo->use_gate) {
                        double f[ATTACK_GATE_NF];
                        attack_gate_features(p, N, row, w, t, L, f);
                        pg = attack_gate_prob(st->gate_w, f);
                    } else
                        pg = fo->p_fixed;
                }
                steps++;
                int32_t x = -1;
                if (c > 0 && (double)rlab_rng_uniform(&rng) < pg) {
                    x = row[rlab_rng_below(&rng, (uint64_t)c)];
                    victim_steps++;
                } else if (p && fo->sampler_list) {
                    x = draw_on_list(p, row, c, &rng);
                    if (x < 0 && c > 0) /* no sampler mass on the list: uniform over it */
                        x = row[rlab_rng_below(&rng, (uint64_t)c)];
                } else if (p)
                    x = draw(p, N, &rng);
                else if (c > 0)
                    x = row[rlab_rng_below(&rng, (uint64_t)c)];
                if (x < 0) { /* nothing left to add: the sequence ends here */
                    len[b] = t;
                    continue;
                }
                sq[t] = x;
            }
        }
        for (int b = 0; b < nb && rc == RLAB_OK; b++) {
            /* a sequence of n items has n - 1 answered prefixes: keep the answered part */
            int32_t n = len[b];
            if (n > L)
                n = L;
            if (n >= 2) {
                if (synth_push(&sb, seq + (size_t)b * (size_t)L, n,
                               lst + (size_t)b * (size_t)L * (size_t)w, w))
                    rc = rlab_errf(err, RLAB_ENOMEM, "few-shot: out of memory");
                st->synth_seqs++;
            }
        }
        if (rc == RLAB_OK && progress && progress(ud, st->queries, budget))
            rc = rlab_errf(err, RLAB_ECANCELED, "few-shot: cancelled");
    }
    st->victim_share = steps ? (double)victim_steps / (double)steps : 0.0;
    st->sampler_mass = steps && fo->use_sampler ? mass_sum / (double)steps : 0.0;
    rlab_free(seq);
    rlab_free(lst);
    rlab_free(len);
    rlab_free(start);
    rlab_free(ans);
    rlab_free(ps);
    rlab_free(qs);
    rlab_free(ql);
    rlab_free(src);
    rlab_free(qq);
    rlab_free(gf);
    rlab_free(gy);
    if (rc != RLAB_OK)
        attack_synth_clear(out);
    return rc;
}
