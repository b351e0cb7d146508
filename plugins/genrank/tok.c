/*
 * plugins/genrank/tok.c: the inline tokenizer, for `train onerec` without semid=MODEL:
 * residual k-means (OneRec technical report's RQ-Kmeans, models.md 1.3) over the items'
 * content vectors (core/data/content.h), `levels` levels of `codes` centres, then a
 * de-duplication digit (items sharing the same L codes get 0, 1, 2, ... in item order), so
 * every tuple names one item. A tokenizer model of plugins/semid (brkmeans, rqvae) offers
 * more (balanced clusters, statistics, export); this one keeps a model trainable from raw
 * data in one command.
 *
 * Per level: k-means++ seeding from the run's seed, Lloyd iterations until nothing moves (at
 * most 25), an empty cluster takes the row farthest from its centre; ties to the lower index.
 */
#include "genrank.h"

#include "data/content.h"

#include <float.h>
#include <string.h>

static double dist2(const float *a, const float *b, int D)
{
    double s = 0.0;
    for (int j = 0; j < D; j++) {
        const double d = (double)a[j] - (double)b[j];
        s += d * d;
    }
    return s;
}

/* k-means of X [N][D] into K centres C [K][D]; codes [N]. */
static void kmeans(const float *X, int32_t N, int D, int K, rlab_rng *rng, float *C, int32_t *code,
                   double *best)
{
    /* k-means++ */
    int32_t first = (int32_t)rlab_rng_below(rng, (uint64_t)N);
    memcpy(C, X + (size_t)first * D, (size_t)D * sizeof(float));
    for (int32_t i = 0; i < N; i++)
        best[i] = dist2(X + (size_t)i * D, C, D);
    for (int k = 1; k < K; k++) {
        double tot = 0.0;
        for (int32_t i = 0; i < N; i++)
            tot += best[i];
        int32_t pick = N - 1;
        if (tot > 0.0) {
            double r = rlab_rng_double(rng) * tot;
            for (int32_t i = 0; i < N; i++) {
                r -= best[i];
                if (r < 0.0) {
                    pick = i;
                    break;
                }
            }
        } else
            pick = (int32_t)rlab_rng_below(rng, (uint64_t)N);
        memcpy(C + (size_t)k * D, X + (size_t)pick * D, (size_t)D * sizeof(float));
        for (int32_t i = 0; i < N; i++) {
            const double d = dist2(X + (size_t)i * D, C + (size_t)k * D, D);
            if (d < best[i])
                best[i] = d;
        }
    }
    for (int32_t i = 0; i < N; i++)
        code[i] = -1;
    for (int it = 0; it < 25; it++) {
        int moved = 0;
        for (int32_t i = 0; i < N; i++) {
            int bk = 0;
            double bd = DBL_MAX;
            for (int k = 0; k < K; k++) {
                const double d = dist2(X + (size_t)i * D, C + (size_t)k * D, D);
                if (d < bd) {
                    bd = d;
                    bk = k;
                }
            }
            best[i] = bd;
            moved += code[i] != bk;
            code[i] = bk;
        }
        if (!moved && it > 0)
            break;
        /* centres = means; an empty cluster takes the farthest row of a cluster of >= 2 */
        memset(C, 0, (size_t)K * D * sizeof(float));
        int32_t *cnt = (int32_t *)(best + N); /* scratch after best: K ints */
        memset(cnt, 0, (size_t)K * sizeof(int32_t));
        for (int32_t i = 0; i < N; i++) {
            cnt[code[i]]++;
            for (int j = 0; j < D; j++)
                C[(size_t)code[i] * D + j] += X[(size_t)i * D + j];
        }
        for (int k = 0; k < K; k++) {
            if (cnt[k] == 0) {
                int32_t far = -1;
                for (int32_t i = 0; i < N; i++)
                    if (cnt[code[i]] >= 2 && (far < 0 || best[i] > best[far]))
                        far = i;
                if (far < 0)
                    continue;
                cnt[code[far]]--;
                for (int j = 0; j < D; j++)
                    C[(size_t)code[far] * D + j] -= X[(size_t)far * D + j];
                code[far] = k;
                best[far] = 0.0;
                cnt[k] = 1;
                memcpy(C + (size_t)k * D, X + (size_t)far * D, (size_t)D * sizeof(float));
                continue;
            }
        }
        for (int k = 0; k < K; k++)
            for (int j = 0; cnt[k] > 0 && j < D; j++)
                C[(size_t)k * D + j] /= (float)cnt[k];
    }
}

int genrank_inline_codes(const rlab_dataset *ds, int32_t n_items, int L, int K, uint64_t seed,
                         int32_t **codes_out, int *Lt_out, rlab_err *err)
{
    if (!ds)
        return rlab_errf(err, RLAB_EINVAL,
                         "genrank: no semid=MODEL and no dataset to tokenize inline");
    rlab_content_opts o = rlab_content_defaults();
    float *X = NULL;
    int32_t D = 0;
    int rc = rlab_item_content(ds, &o, &X, &D, err);
    if (rc)
        return rc;
    if (rlab_vocab_size(&ds->items) != n_items) {
        rlab_free(X);
        return rlab_errf(err, RLAB_EINVAL, "genrank: content of %d items, the view has %d",
                         (int)rlab_vocab_size(&ds->items), (int)n_items);
    }
    if (K > n_items)
        K = n_items;
    const int Lt = L + 1;
    int32_t *codes = rlab_malloc((size_t)n_items * Lt * sizeof(int32_t));
    int32_t *code = rlab_malloc((size_t)n_items * sizeof(int32_t));
    float *C = rlab_malloc((size_t)K * D * sizeof(float));
    double *best = rlab_malloc((size_t)n_items * sizeof(double) + (size_t)K * sizeof(int32_t));
    if (!codes || !code || !C || !best) {
        rlab_free(X);
        rlab_free(codes);
        rlab_free(code);
        rlab_free(C);
        rlab_free(best);
        return rlab_errf(err, RLAB_ENOMEM, "genrank: out of memory (tokenizer)");
    }
    rlab_rng rng;
    rlab_rng_seed(&rng, seed ^ 0x746f6b656eULL);
    for (int l = 0; l < L; l++) {
        kmeans(X, n_items, D, K, &rng, C, code, best);
        for (int32_t i = 0; i < n_items; i++) {
            codes[(size_t)i * Lt + l] = code[i];
            for (int j = 0; j < D; j++) /* the residual */
                X[(size_t)i * D + j] -= C[(size_t)code[i] * D + j];
        }
    }
    /* de-duplication digit: order of appearance among items with the same L codes */
    for (int32_t i = 0; i < n_items; i++) {
        int32_t dd = 0;
        for (int32_t q = 0; q < i; q++)
            dd += memcmp(codes + (size_t)q * Lt, codes + (size_t)i * Lt,
                         (size_t)L * sizeof(int32_t)) == 0;
        codes[(size_t)i * Lt + L] = dd;
    }
    rlab_free(X);
    rlab_free(code);
    rlab_free(C);
    rlab_free(best);
    *codes_out = codes;
    *Lt_out = Lt;
    return RLAB_OK;
}
