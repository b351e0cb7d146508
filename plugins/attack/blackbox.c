/*
 * plugins/attack/blackbox.c: the black box an extraction attack talks to. It wraps any
 * registered model (whatever plugin made it) and answers a query sequence with a ranked top-k
 * list of item indices only: no scores, no user id (the service does not know the attacker),
 * the query's own items masked as `recommend` masks a user's history. Every query sequence
 * counts as one query. Defences to study: Gaussian noise on the scores before ranking (scaled
 * by the row's own spread, so one setting means the same for every kind of model), lists cut
 * to their first trunc items, and a limit on the number of queries.
 *
 * It is deliberately not a registered model kind: a registered model would expose score_all
 * and the stored histories to any command, which is exactly what the attacker must not see.
 */
#include "attack.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

enum { BB_CHUNK = 64 }; /* queries scored together (mask and score buffers bound memory) */

struct attack_bb {
    rlab_model *m;
    attack_bb_opts o;
    int kk; /* min(k, n_items): what the service ranks */
    int w;  /* what it returns */
    int64_t queries;
    rlab_rng rng;
};

attack_bb_opts attack_bb_defaults(void)
{
    return (attack_bb_opts){.k = 100, .mask_seen = 1, .seed = 1};
}

attack_bb *attack_bb_new(rlab_model *victim, const attack_bb_opts *o, rlab_err *err)
{
    if (!victim || victim->n_items < 1) {
        rlab_errf(err, RLAB_EINVAL, "black box: the victim has no items");
        return NULL;
    }
    if (o->k < 1 || o->trunc < 0 || o->trunc > o->k || !(o->noise >= 0.0) || o->limit < 0) {
        rlab_errf(err, RLAB_EINVAL,
                  "black box: need k >= 1, 0 <= trunc <= k, noise >= 0, limit >= 0");
        return NULL;
    }
    attack_bb *bb = rlab_calloc(1, sizeof *bb);
    if (!bb) {
        rlab_errf(err, RLAB_ENOMEM, "black box: out of memory");
        return NULL;
    }
    bb->m = rlab_model_retain(victim);
    bb->o = *o;
    bb->kk = o->k < victim->n_items ? o->k : victim->n_items;
    bb->w = o->trunc > 0 && o->trunc < bb->kk ? o->trunc : bb->kk;
    rlab_rng_seed(&bb->rng, o->seed);
    return bb;
}

void attack_bb_free(attack_bb *bb)
{
    if (!bb)
        return;
    rlab_model_release(bb->m);
    rlab_free(bb);
}

int attack_bb_width(const attack_bb *bb) { return bb->w; }
int64_t attack_bb_queries(const attack_bb *bb) { return bb->queries; }
int32_t attack_bb_n_items(const attack_bb *bb) { return bb->m->n_items; }

int64_t attack_bb_remaining(const attack_bb *bb)
{
    return bb->o.limit > 0 ? bb->o.limit - bb->queries : INT64_MAX;
}

/* Noise on one score row: s += noise * sd(s over allowed items) * N(0, 1), in item order so
 * the draw does not depend on the chunking. A constant row gets sd 1 (noise still acts). */
static void add_noise(attack_bb *bb, float *s, int32_t n, const uint8_t *mask)
{
    double sum = 0.0, sq = 0.0;
    int64_t cnt = 0;
    for (int32_t i = 0; i < n; i++)
        if ((!mask || !mask[i]) && isfinite(s[i])) {
            sum += (double)s[i];
            sq += (double)s[i] * (double)s[i];
            cnt++;
        }
    double mean = cnt ? sum / (double)cnt : 0.0;
    double var = cnt ? sq / (double)cnt - mean * mean : 0.0;
    double sd = var > 1e-12 ? sqrt(var) : 1.0;
    float a = (float)(bb->o.noise * sd);
    for (int32_t i = 0; i < n; i++)
        s[i] += a * rlab_rng_normal(&bb->rng);
}

int attack_bb_query(attack_bb *bb, const int32_t *const *seqs, const int32_t *lens, int nq,
                    int32_t *out, rlab_err *err)
{
    if (nq < 0)
        return rlab_errf(err, RLAB_EINVAL, "black box: negative query count");
    if ((int64_t)nq > attack_bb_remaining(bb))
        return rlab_errf(err, RLAB_ESTATE, "black box: query limit reached (%lld of %lld used)",
                         (long long)bb->queries, (long long)bb->o.limit);
    const int32_t N = bb->m->n_items;
    const int nc_max = nq < BB_CHUNK ? nq : BB_CHUNK;
    if (nq == 0)
        return RLAB_OK;
    uint8_t *mask = rlab_calloc((size_t)nc_max * (size_t)N, 1);
    int32_t *top = rlab_malloc((size_t)nc_max * (size_t)bb->kk * sizeof *top);
    float *sc = bb->o.noise > 0.0 ? rlab_malloc((size_t)nc_max * (size_t)N * sizeof *sc) : NULL;
    rlab_query *q = rlab_calloc((size_t)nc_max, sizeof *q);
    int rc = RLAB_OK;
    if (!mask || !top || !q || (bb->o.noise > 0.0 && !sc))
        rc = rlab_errf(err, RLAB_ENOMEM, "black box: out of memory");
    for (int q0 = 0; q0 < nq && rc == RLAB_OK; q0 += BB_CHUNK) {
        int nc = nq - q0 < BB_CHUNK ? nq - q0 : BB_CHUNK;
        for (int b = 0; b < nc; b++) {
            const int32_t *s = seqs[q0 + b];
            int32_t L = lens[q0 + b];
            for (int32_t j = 0; j < L; j++)
                if (s[j] < 0 || s[j] >= N) {
                    rc = rlab_errf(err, RLAB_EINVAL, "black box: item %d outside [0, %d)", s[j], N);
                    break;
                }
            q[b] = (rlab_query){.user = -1, .hist = s, .n_hist = L};
            if (bb->o.mask_seen)
                for (int32_t j = 0; j < L && rc == RLAB_OK; j++)
                    mask[(size_t)b * (size_t)N + (size_t)s[j]] = 1;
        }
        if (rc == RLAB_OK && sc) {
            rc = rlab_model_score_all(bb->m, q, nc, sc, err);
            for (int b = 0; b < nc && rc == RLAB_OK; b++) {
                float *row = sc + (size_t)b * (size_t)N;
                const uint8_t *mrow = mask + (size_t)b * (size_t)N;
                add_noise(bb, row, N, mrow);
                rlab_topk_row(row, N, mrow, bb->kk, top + (size_t)b * (size_t)bb->kk, NULL);
            }
        } else if (rc == RLAB_OK) {
            rc = rlab_model_topk(bb->m, q, nc, bb->kk, mask, top, NULL, err);
        }
        for (int b = 0; b < nc && rc == RLAB_OK; b++)
            memcpy(out + (size_t)(q0 + b) * (size_t)bb->w, top + (size_t)b * (size_t)bb->kk,
                   (size_t)bb->w * sizeof *out);
        memset(mask, 0, (size_t)nc_max * (size_t)N); /* cheaper than undoing item by item */
    }
    if (rc == RLAB_OK)
        bb->queries += nq;
    rlab_free(mask);
    rlab_free(top);
    rlab_free(sc);
    rlab_free(q);
    return rc;
}
