/*
 * plugins/semid/kmeans.c: k-means, OneRec's balanced k-means and residual k-means.
 *
 * Distances: ||x - c||^2 = ||x||^2 - 2 x.c + ||c||^2, the cross terms of all rows and centres
 * from one sgemm per iteration (X [N, D] x C^T [D, K]), accumulated in float; a row's
 * ||x||^2 is kept so distances are true squared distances (the balanced assignment and the
 * empty-cluster rule compare them across rows). Ties go to the lower index everywhere, so a
 * run depends only on the seed.
 *
 * Balanced k-means (OneRec-v1, Algorithm 1; /work/shared/papers/models.md §1.2 step 1):
 *
 *     w = ceil(N / K)
 *     repeat
 *         U = all rows
 *         for k = 0 .. K-1:
 *             V_k = the w rows of U nearest to c_k;  c_k = mean(V_k);  U = U - V_k
 *     until no assignment changes (or iters)
 *
 * Distances within an iteration use the centres from the end of the previous one (c_k moves
 * only after V_k is taken, and no later cluster looks at c_k again in that iteration).
 */
#include "semid.h"

#include <cblas.h>
#include <float.h>
#include <stdlib.h>
#include <string.h>

/* dist [N][K] = squared distances of the rows of X [N][D] (squared norms xn [N]) to the
 * centres C [K][D]; cn [K] is work space. */
static void distances(const float *X, const float *xn, int64_t N, int D, const float *C, int K,
                      float *cn, float *dist)
{
    for (int k = 0; k < K; k++) {
        float s = 0.0f;
        for (int d = 0; d < D; d++)
            s += C[(int64_t)k * D + d] * C[(int64_t)k * D + d];
        cn[k] = s;
    }
    // dist [N, K] = X [N, D] C^T [D, K]
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)N, K, D, 1.0f, X, D, C, D, 0.0f, dist,
                K);
    for (int64_t n = 0; n < N; n++)
        for (int k = 0; k < K; k++) {
            float v = xn[n] - 2.0f * dist[n * K + k] + cn[k];
            dist[n * K + k] = v > 0.0f ? v : 0.0f;
        }
}

void semid_kmeans_pp(const float *X, int64_t N, int D, int K, rlab_rng *rng, float *C)
{
    double *best = rlab_malloc((size_t)N * sizeof *best);
    int64_t first = (int64_t)rlab_rng_below(rng, (uint64_t)N);
    memcpy(C, X + first * D, (size_t)D * sizeof *C);
    if (!best) { /* out of memory: fall back to evenly spaced rows */
        for (int k = 1; k < K; k++)
            memcpy(C + (int64_t)k * D, X + ((int64_t)k * N / K) * D, (size_t)D * sizeof *C);
        return;
    }
    for (int64_t n = 0; n < N; n++)
        best[n] = DBL_MAX;
    for (int k = 1; k <= K; k++) {
        const float *c = C + (int64_t)(k - 1) * D;
        double total = 0.0;
        for (int64_t n = 0; n < N; n++) {
            double s = 0.0;
            for (int d = 0; d < D; d++) {
                double t = (double)X[n * D + d] - (double)c[d];
                s += t * t;
            }
            if (s < best[n])
                best[n] = s;
            total += best[n];
        }
        if (k == K)
            break;
        int64_t pick = -1;
        if (total > 0.0) {
            double u = rlab_rng_double(rng) * total, acc = 0.0;
            for (int64_t n = 0; n < N; n++) {
                acc += best[n];
                if (best[n] > 0.0 && acc >= u) {
                    pick = n;
                    break;
                }
            }
            for (int64_t n = N - 1; pick < 0 && n >= 0; n--) /* rounding at the end */
                if (best[n] > 0.0)
                    pick = n;
        }
        if (pick < 0) /* every row sits on a centre: duplicate centres are unavoidable */
            pick = (int64_t)rlab_rng_below(rng, (uint64_t)N);
        memcpy(C + (int64_t)k * D, X + pick * D, (size_t)D * sizeof *C);
    }
    rlab_free(best);
}

typedef struct {
    float d;
    int32_t n;
} dn;

static int dn_cmp(const void *a, const void *b)
{
    const dn *x = a, *y = b;
    if (x->d < y->d)
        return -1;
    if (x->d > y->d)
        return 1;
    return (x->n > y->n) - (x->n < y->n);
}

int semid_kmeans_run(const float *X, int64_t N, int D, int K, int iters, int balanced, float *C,
                     int32_t *assign)
{
    float *dist = rlab_malloc((size_t)(N * K) * sizeof *dist + 1);
    float *xn = rlab_malloc((size_t)N * sizeof *xn + 1);
    double *sum = rlab_malloc((size_t)K * (size_t)D * sizeof *sum);
    int64_t *cnt = rlab_malloc((size_t)K * sizeof *cnt);
    float *cn = rlab_malloc((size_t)K * sizeof *cn);
    dn *buf = balanced ? rlab_malloc((size_t)N * sizeof *buf + 1) : NULL;
    uint8_t *taken = balanced ? rlab_malloc((size_t)N + 1) : NULL;
    int it = -1;
    if (!dist || !xn || !sum || !cnt || !cn || (balanced && (!buf || !taken)))
        goto done;
    for (int64_t n = 0; n < N; n++) {
        float s = 0.0f;
        for (int d = 0; d < D; d++)
            s += X[n * D + d] * X[n * D + d];
        xn[n] = s;
        assign[n] = -1;
    }
    const int64_t w = (N + K - 1) / K;
    const size_t nrows = N > 0 ? (size_t)N : 0; /* N >= 0; says so to GCC's memset check */
    for (it = 0; it < iters;) {
        distances(X, xn, N, D, C, K, cn, dist);
        int64_t changed = 0;
        if (balanced) {
            memset(taken, 0, nrows);
            for (int k = 0; k < K; k++) {
                int64_t m = 0;
                for (int64_t n = 0; n < N; n++)
                    if (!taken[n])
                        buf[m++] = (dn){dist[n * K + k], (int32_t)n};
                int64_t take = m < w ? m : w;
                qsort(buf, (size_t)m, sizeof *buf, dn_cmp);
                if (take == 0)
                    continue; /* no row left: the centre stays */
                double *s = sum;
                memset(s, 0, (size_t)D * sizeof *s);
                for (int64_t j = 0; j < take; j++) {
                    int32_t n = buf[j].n;
                    taken[n] = 1;
                    changed += assign[n] != k;
                    assign[n] = k;
                    for (int d = 0; d < D; d++)
                        s[d] += (double)X[(int64_t)n * D + d];
                }
                for (int d = 0; d < D; d++)
                    C[(int64_t)k * D + d] = (float)(s[d] / (double)take);
            }
        } else {
            for (int64_t n = 0; n < N; n++) {
                const float *dr = dist + n * K;
                int arg = 0;
                for (int k = 1; k < K; k++)
                    if (dr[k] < dr[arg])
                        arg = k;
                changed += assign[n] != arg;
                assign[n] = arg;
            }
            memset(sum, 0, (size_t)K * (size_t)D * sizeof *sum);
            memset(cnt, 0, (size_t)K * sizeof *cnt);
            for (int64_t n = 0; n < N; n++) {
                cnt[assign[n]]++;
                for (int d = 0; d < D; d++)
                    sum[(int64_t)assign[n] * D + d] += (double)X[n * D + d];
            }
            for (int k = 0; k < K; k++) {
                if (cnt[k] > 0) {
                    for (int d = 0; d < D; d++)
                        C[(int64_t)k * D + d] = (float)(sum[(int64_t)k * D + d] / (double)cnt[k]);
                    continue;
                }
                /* empty: take the row farthest from its own centre, out of a cluster of >= 2 */
                int64_t far = -1;
                for (int64_t n = 0; n < N; n++)
                    if (cnt[assign[n]] > 1 &&
                        (far < 0 || dist[n * K + assign[n]] > dist[far * K + assign[far]]))
                        far = n;
                if (far < 0)
                    continue;
                cnt[assign[far]]--;
                assign[far] = k;
                cnt[k] = 1;
                dist[far * K + k] = 0.0f;
                memcpy(C + (int64_t)k * D, X + far * D, (size_t)D * sizeof *C);
                changed++;
            }
        }
        it++;
        if (changed == 0)
            break;
    }
done:
    rlab_free(dist);
    rlab_free(xn);
    rlab_free(sum);
    rlab_free(cnt);
    rlab_free(cn);
    rlab_free(buf);
    rlab_free(taken);
    return it;
}

int semid_rkmeans(const float *X, int64_t N, int D, int L, int K, int iters, int balanced,
                  rlab_rng *rng, float *C, int32_t *codes, int stride, double *recon,
                  int (*cancel)(void *), void *ud, rlab_err *err)
{
    float *R = rlab_malloc((size_t)(N * D) * sizeof *R + 1);
    int32_t *a = rlab_malloc((size_t)N * sizeof *a + 1);
    if (!R || !a) {
        rlab_free(R);
        rlab_free(a);
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    }
    memcpy(R, X, (size_t)(N * D) * sizeof *R);
    int rc = RLAB_OK;
    for (int l = 0; l < L; l++) {
        if (cancel && cancel(ud)) {
            rc = rlab_errf(err, RLAB_ECANCELED, "cancelled");
            break;
        }
        float *Cl = C + (size_t)l * K * D;
        semid_kmeans_pp(R, N, D, K, rng, Cl);
        if (semid_kmeans_run(R, N, D, K, iters, balanced, Cl, a) < 0) {
            rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
            break;
        }
        double e = 0.0;
        for (int64_t n = 0; n < N; n++) {
            codes[n * stride + l] = a[n];
            const float *c = Cl + (int64_t)a[n] * D;
            for (int d = 0; d < D; d++) {
                R[n * D + d] -= c[d];
                e += (double)R[n * D + d] * (double)R[n * D + d];
            }
        }
        if (recon)
            recon[l] = N ? e / (double)N : 0.0;
    }
    rlab_free(R);
    rlab_free(a);
    return rc;
}
