/*
 * plugins/attack/promote.c: the downstream attack of Yue et al. (RecSys'21, section 4.3) that
 * the extracted surrogate enables: target-item promotion by data poisoning. Fake user
 * sequences are injected into the victim's training data; the victim is retrained; the target
 * item's exposure is measured before and after.
 *
 * Adversarial sequences (white-box on the surrogate only; no victim query): a random first
 * item, then alternately the target and a filler chosen greedily among the surrogate's top-M
 * items for the prefix (plausible next items): the filler c that maximises the surrogate's
 * margin s(target) - max_{j != target} s(j) after prefix + c, i.e. the item after which the
 * surrogate most wants to recommend the target. The baseline ("random") alternates the target
 * with uniformly random fillers, as the usual random-injection attack does.
 *
 * Exposure of an item in a model over a set of real users (their histories as queries, the
 * history masked, full ranking): the share of users with the item in their top-10, and its
 * mean rank (1 = first) among the items they have not seen; users who already interacted
 * with the item are skipped.
 */
#include "attack.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

int attack_exposure(const rlab_model *m, const int32_t *const *seqs, const int32_t *lens, int64_t n,
                    int32_t target, attack_exposure_stats *out, rlab_err *err)
{
    memset(out, 0, sizeof *out);
    const int32_t N = m->n_items;
    if (target < 0 || target >= N)
        return rlab_errf(err, RLAB_EINVAL, "exposure: target %d outside [0, %d)", target, N);
    enum { CH = 64 };
    float *sc = rlab_malloc((size_t)CH * (size_t)N * sizeof *sc);
    uint8_t *seen = rlab_calloc((size_t)N, 1);
    if (!sc || !seen) {
        rlab_free(sc);
        rlab_free(seen);
        return rlab_errf(err, RLAB_ENOMEM, "exposure: out of memory");
    }
    rlab_query q[CH];
    int64_t idx[CH];
    double rank_sum = 0.0;
    int rc = RLAB_OK;
    for (int64_t u0 = 0; u0 < n && rc == RLAB_OK; u0 += CH) {
        int nq = 0;
        for (int64_t u = u0; u < n && u < u0 + CH; u++) {
            int has = 0;
            for (int32_t j = 0; j < lens[u] && !has; j++)
                has = seqs[u][j] == target;
            if (has)
                continue;
            q[nq] = (rlab_query){.user = -1, .hist = seqs[u], .n_hist = lens[u]};
            idx[nq++] = u;
        }
        if (nq == 0)
            continue;
        rc = rlab_model_score_all(m, q, nq, sc, err);
        for (int b = 0; b < nq && rc == RLAB_OK; b++) {
            const float *s = sc + (size_t)b * (size_t)N;
            const int64_t u = idx[b];
            for (int32_t j = 0; j < lens[u]; j++)
                seen[seqs[u][j]] = 1;
            const float st = s[target];
            int64_t above = 0;
            for (int32_t i = 0; i < N; i++) /* ties count against the target */
                above += !seen[i] && i != target && (s[i] > st || (s[i] >= st && i < target));
            for (int32_t j = 0; j < lens[u]; j++)
                seen[seqs[u][j]] = 0;
            rank_sum += (double)(above + 1);
            out->in_top10 += above < 10;
            out->users++;
        }
    }
    rlab_free(sc);
    rlab_free(seen);
    if (rc == RLAB_OK && out->users > 0) {
        out->mean_rank = rank_sum / (double)out->users;
        out->hit10 = (double)out->in_top10 / (double)out->users;
    }
    return rc;
}

int attack_promo_sequences(const rlab_model *sur, int32_t n_items, int32_t target, int n_fake,
                           int len, int cand, int method, uint64_t seed, attack_synth *out,
                           rlab_err *err)
{
    memset(out, 0, sizeof *out);
    const int32_t N = n_items;
    if (n_fake < 1 || len < 2 || cand < 1 || target < 0 || target >= N)
        return rlab_errf(err, RLAB_EINVAL,
                         "promotion: need n_fake >= 1, len >= 2, cand >= 1 and a target in "
                         "[0, %d)",
                         N);
    if (method == ATTACK_PROMO_SURROGATE && (!sur || sur->n_items != N))
        return rlab_errf(err, RLAB_EINVAL, "promotion: no surrogate of %d items", N);
    if (cand > N - 1)
        cand = N - 1;
    out->off = rlab_malloc(((size_t)n_fake + 1) * sizeof *out->off);
    out->items = rlab_malloc((size_t)n_fake * (size_t)len * sizeof *out->items);
    float *sc = rlab_malloc((size_t)(cand > 1 ? cand : 1) * (size_t)N * sizeof *sc);
    rlab_query *q = rlab_calloc((size_t)cand, sizeof *q);
    int32_t *buf = rlab_malloc((size_t)cand * (size_t)len * sizeof *buf);
    int32_t *top = rlab_malloc((size_t)cand * sizeof *top);
    uint8_t *mask = rlab_calloc((size_t)N, 1);
    int rc = RLAB_OK;
    if (!out->off || !out->items || !sc || !q || !buf || !top || !mask)
        rc = rlab_errf(err, RLAB_ENOMEM, "promotion: out of memory");
    rlab_rng rng;
    rlab_rng_seed(&rng, seed);
    if (rc == RLAB_OK)
        out->off[0] = 0;
    for (int f = 0; f < n_fake && rc == RLAB_OK; f++) {
        int32_t *s = out->items + (size_t)f * (size_t)len;
        int32_t x;
        do
            x = (int32_t)rlab_rng_below(&rng, (uint64_t)N);
        while (x == target);
        s[0] = x;
        for (int t = 1; t < len && rc == RLAB_OK; t++) {
            if (t % 2 == 1) {
                s[t] = target;
                continue;
            }
            if (method == ATTACK_PROMO_RANDOM) {
                do
                    x = (int32_t)rlab_rng_below(&rng, (uint64_t)N);
                while (x == target);
                s[t] = x;
                continue;
            }
            /* candidates: the surrogate's top-M for the prefix, prefix and target masked */
            rlab_query q0 = {.user = -1, .hist = s, .n_hist = t};
            memset(mask, 0, (size_t)N);
            for (int j = 0; j < t; j++)
                mask[s[j]] = 1;
            mask[target] = 1;
            rc = rlab_model_topk(sur, &q0, 1, cand, mask, top, NULL, err);
            int nc = 0;
            while (rc == RLAB_OK && nc < cand && top[nc] >= 0)
                nc++;
            if (rc != RLAB_OK || nc == 0)
                break;
            for (int c = 0; c < nc; c++) {
                int32_t *p = buf + (size_t)c * (size_t)len;
                memcpy(p, s, (size_t)t * sizeof *p);
                p[t] = top[c];
                q[c] = (rlab_query){.user = -1, .hist = p, .n_hist = t + 1};
            }
            rc = rlab_model_score_all(sur, q, nc, sc, err);
            double best = -INFINITY;
            int32_t pick = top[0];
            for (int c = 0; c < nc && rc == RLAB_OK; c++) {
                const float *r = sc + (size_t)c * (size_t)N;
                float mx = -INFINITY;
                for (int32_t i = 0; i < N; i++)
                    if (i != target && r[i] > mx)
                        mx = r[i];
                const double margin = (double)r[target] - (double)mx;
                if (margin > best) {
                    best = margin;
                    pick = top[c];
                }
            }
            s[t] = pick;
        }
        out->off[f + 1] = out->off[f] + len;
        out->n = f + 1;
    }
    rlab_free(sc);
    rlab_free(q);
    rlab_free(buf);
    rlab_free(top);
    rlab_free(mask);
    if (rc != RLAB_OK)
        attack_synth_clear(out);
    return rc;
}

rlab_dataset *attack_poisoned_dataset(const rlab_dataset *ds, const attack_synth *fake,
                                      const char *name, rlab_err *err)
{
    rlab_dataset *p = rlab_dataset_new(name, err);
    if (!p)
        return NULL;
    snprintf(p->format, sizeof p->format, "synthetic");
    snprintf(p->source, sizeof p->source, "%s + %lld injected sequences", ds->name,
             (long long)fake->n);
    int rc = RLAB_OK;
    for (int32_t i = 0; i < ds->items.n && rc == RLAB_OK; i++)
        if (rlab_vocab_add(&p->items, ds->items.names[i], strlen(ds->items.names[i])) != i)
            rc = RLAB_ENOMEM;
    for (int32_t u = 0; u < ds->users.n && rc == RLAB_OK; u++)
        if (rlab_vocab_add(&p->users, ds->users.names[u], strlen(ds->users.names[u])) != u)
            rc = RLAB_ENOMEM;
    int64_t tmax = 0;
    for (size_t r = 0; r < ds->inter.n; r++)
        if (ds->inter.ts[r] > tmax)
            tmax = ds->inter.ts[r];
    if (rc == RLAB_OK &&
        rlab_inter_reserve(&p->inter, ds->inter.n + (size_t)(fake->n ? fake->off[fake->n] : 0)))
        rc = RLAB_ENOMEM;
    for (size_t r = 0; r < ds->inter.n && rc == RLAB_OK; r++)
        rc = rlab_inter_push(&p->inter, ds->inter.user[r], ds->inter.item[r], ds->inter.ts[r],
                             ds->inter.rating[r], NULL);
    for (int64_t f = 0; f < fake->n && rc == RLAB_OK; f++) {
        char un[48];
        int n = snprintf(un, sizeof un, "fake%lld", (long long)f);
        const int32_t u = rlab_vocab_add(&p->users, un, (size_t)n);
        if (u < 0 || rlab_vocab_find(&ds->users, un, (size_t)n) >= 0) {
            rc = u < 0 ? RLAB_ENOMEM : RLAB_EINVAL;
            break;
        }
        for (int64_t j = fake->off[f]; j < fake->off[f + 1] && rc == RLAB_OK; j++)
            rc = rlab_inter_push(&p->inter, u, fake->items[j], tmax + 1 + (j - fake->off[f]), 1.0f,
                                 NULL);
    }
    if (rc != RLAB_OK) {
        rlab_dataset_free(p);
        rlab_errf(err, rc, "poisoned dataset: %s",
                  rc == RLAB_EINVAL ? "a user of the dataset is already called fake<n>"
                                    : "out of memory");
        return NULL;
    }
    p->inter.flags = ds->inter.flags;
    return p;
}
