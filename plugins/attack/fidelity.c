/*
 * plugins/attack/fidelity.c: how closely a surrogate copies its victim, measured as Yue et al.
 * do (trainer/utils.py) on full-catalogue rankings of held-out real sequences: Agreement@k
 * and exact-match@k between the two top-10 lists (core/eval rlab_eval_agreement), and the KL
 * divergence KL(p_victim || p_surrogate) where p = softmax of each model's scores over the
 * victim's top-100 items. This is the experimenter's view: both models are scored directly,
 * and none of it counts as black-box queries.
 */
#include "attack.h"

#include "eval/rank.h"

#include <math.h>
#include <string.h>

enum { FID_CHUNK = 64, FID_K = 10, FID_KL = 100 };

/* KL(softmax(a) || softmax(b)) over the first n entries, in double. */
static double kl_softmax(const float *a, const float *b, int n)
{
    double ma = -INFINITY, mb = -INFINITY;
    for (int j = 0; j < n; j++) {
        ma = (double)a[j] > ma ? (double)a[j] : ma;
        mb = (double)b[j] > mb ? (double)b[j] : mb;
    }
    double za = 0.0, zb = 0.0;
    for (int j = 0; j < n; j++) {
        za += exp((double)a[j] - ma);
        zb += exp((double)b[j] - mb);
    }
    double la = log(za) + ma, lb = log(zb) + mb, kl = 0.0;
    for (int j = 0; j < n; j++) {
        double lpa = (double)a[j] - la, lpb = (double)b[j] - lb;
        kl += exp(lpa) * (lpa - lpb);
    }
    return kl;
}

int attack_fidelity_eval(const rlab_model *victim, const rlab_model *surrogate,
                         const int32_t *const *seqs, const int32_t *lens, int64_t n,
                         attack_fidelity *out, rlab_err *err)
{
    memset(out, 0, sizeof *out);
    const int32_t N = victim->n_items;
    if (surrogate->n_items != N)
        return rlab_errf(err, RLAB_EINVAL, "fidelity: victim has %d items, surrogate %d", N,
                         surrogate->n_items);
    if (n < 1)
        return rlab_errf(err, RLAB_EINVAL, "fidelity: no held-out sequences");
    const int kv = N < FID_KL ? (int)N : FID_KL;
    const int k10 = kv < FID_K ? kv : FID_K;
    int32_t *va = rlab_malloc((size_t)n * FID_K * sizeof *va); /* victim top-10 [n][10] */
    int32_t *sa = rlab_malloc((size_t)n * FID_K * sizeof *sa); /* surrogate top-10 */
    uint8_t *mask = rlab_calloc((size_t)FID_CHUNK * (size_t)N, 1);
    int32_t *vtop = rlab_malloc((size_t)FID_CHUNK * (size_t)kv * sizeof *vtop);
    float *vsc = rlab_malloc((size_t)FID_CHUNK * (size_t)kv * sizeof *vsc);
    float *ssc = rlab_malloc((size_t)FID_CHUNK * (size_t)kv * sizeof *ssc);
    int32_t *stop = rlab_malloc((size_t)FID_CHUNK * FID_K * sizeof *stop);
    rlab_query q[FID_CHUNK];
    int rc = RLAB_OK;
    if (!va || !sa || !mask || !vtop || !vsc || !ssc || !stop)
        rc = rlab_errf(err, RLAB_ENOMEM, "fidelity: out of memory");
    double kl = 0.0;
    for (int64_t q0 = 0; q0 < n && rc == RLAB_OK; q0 += FID_CHUNK) {
        int nc = n - q0 < FID_CHUNK ? (int)(n - q0) : FID_CHUNK;
        memset(mask, 0, (size_t)FID_CHUNK * (size_t)N);
        for (int b = 0; b < nc; b++) {
            q[b] = (rlab_query){.user = -1, .hist = seqs[q0 + b], .n_hist = lens[q0 + b]};
            for (int32_t j = 0; j < lens[q0 + b]; j++)
                if (seqs[q0 + b][j] >= 0 && seqs[q0 + b][j] < N)
                    mask[(size_t)b * (size_t)N + (size_t)seqs[q0 + b][j]] = 1;
        }
        rc = rlab_model_topk(victim, q, nc, kv, mask, vtop, vsc, err);
        if (rc == RLAB_OK)
            rc = rlab_model_topk(surrogate, q, nc, k10, mask, stop, NULL, err);
        /* the surrogate's scores of the victim's top list (padding -1 scored as item 0 and
         * left out of the KL) */
        int32_t *cand = rc == RLAB_OK ? rlab_malloc((size_t)nc * (size_t)kv * sizeof *cand) : NULL;
        if (rc == RLAB_OK && !cand)
            rc = rlab_errf(err, RLAB_ENOMEM, "fidelity: out of memory");
        for (int64_t i = 0; rc == RLAB_OK && i < (int64_t)nc * kv; i++)
            cand[i] = vtop[i] >= 0 ? vtop[i] : 0;
        if (rc == RLAB_OK)
            rc = rlab_model_score(surrogate, q, nc, cand, kv, ssc, err);
        rlab_free(cand);
        for (int b = 0; b < nc && rc == RLAB_OK; b++) {
            const int32_t *vr = vtop + (size_t)b * (size_t)kv;
            int c = 0;
            while (c < kv && vr[c] >= 0)
                c++;
            if (c > 0)
                kl += kl_softmax(vsc + (size_t)b * (size_t)kv, ssc + (size_t)b * (size_t)kv, c);
            for (int j = 0; j < FID_K; j++) {
                va[(q0 + b) * FID_K + j] = j < k10 ? vr[j] : -1;
                sa[(q0 + b) * FID_K + j] = j < k10 ? stop[(size_t)b * (size_t)k10 + (size_t)j] : -1;
            }
        }
    }
    if (rc == RLAB_OK)
        rc = rlab_eval_agreement(va, sa, n, FID_K, 1, &out->agr1, NULL, err);
    if (rc == RLAB_OK)
        rc = rlab_eval_agreement(va, sa, n, FID_K, k10, &out->agr10, &out->em10, err);
    if (rc == RLAB_OK) {
        out->n_users = n;
        out->kl100 = kl / (double)n;
    }
    rlab_free(va);
    rlab_free(sa);
    rlab_free(mask);
    rlab_free(vtop);
    rlab_free(vsc);
    rlab_free(ssc);
    rlab_free(stop);
    return rc;
}
