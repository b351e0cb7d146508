/*
 * plugins/semid/codes.c: what is computed from code tuples alone: the de-duplication digit,
 * dense prefix ids, and the per-level statistics of semid.stats.
 *
 * Definitions (semid_level_stats):
 *   util_l        = |{codes used at level l}| / K
 *   entropy_l     = -sum_k p_k ln p_k,  p_k = share of items with code k at level l (nats)
 *   perplexity_l  = exp(entropy_l)
 *   collision_l   = 1 - |{distinct prefixes (c_0..c_l)}| / N   (0 = every prefix unique;
 *                   at l = L-1 the collision rate of the full tuple before de-duplication)
 */
#include "semid.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Sort rows by (key, row). */
typedef struct {
    int64_t key;
    int32_t row;
} kr;

static int kr_cmp(const void *a, const void *b)
{
    const kr *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return (x->row > y->row) - (x->row < y->row);
}

int semid_prefix_ids(const int32_t *codes, int64_t N, int stride, int L, int32_t *pid,
                     rlab_err *err)
{
    kr *b = rlab_malloc((size_t)N * sizeof *b + 1);
    if (!b)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    for (int l = 0; l < L; l++) {
        /* key of (prefix id of level l-1, code l): ids < N, codes < 2^31 */
        for (int64_t n = 0; n < N; n++) {
            int64_t up = l ? pid[n * L + l - 1] : 0;
            b[n] = (kr){up * ((int64_t)1 << 31) + codes[n * stride + l], (int32_t)n};
        }
        qsort(b, (size_t)N, sizeof *b, kr_cmp);
        int32_t id = -1;
        for (int64_t j = 0; j < N; j++) {
            if (j == 0 || b[j].key != b[j - 1].key)
                id++;
            pid[(int64_t)b[j].row * L + l] = id;
        }
    }
    rlab_free(b);
    return RLAB_OK;
}

int32_t semid_dedup(int32_t *codes, int64_t N, int L)
{
    const int S = L + 1;
    int32_t *pid = rlab_malloc((size_t)(N * L) * sizeof *pid + 1);
    int32_t *next = rlab_calloc((size_t)N + 1, sizeof *next);
    int32_t mx = 0;
    if (!pid || !next || semid_prefix_ids(codes, N, S, L, pid, NULL)) {
        rlab_free(pid);
        rlab_free(next);
        return -1;
    }
    for (int64_t n = 0; n < N; n++) { /* index order: the first of a tuple gets 0 */
        int32_t g = pid[n * L + L - 1];
        int32_t d = next[g]++;
        codes[n * S + L] = d;
        if (d > mx)
            mx = d;
    }
    rlab_free(pid);
    rlab_free(next);
    return mx;
}

int semid_stats(const int32_t *codes, int64_t N, int stride, int L, int K, semid_level_stats *out,
                rlab_err *err)
{
    int32_t *pid = rlab_malloc((size_t)(N * L) * sizeof *pid + 1);
    int64_t *cnt = rlab_malloc(((size_t)(K > N ? K : N) + 1) * sizeof *cnt);
    if (!pid || !cnt) {
        rlab_free(pid);
        rlab_free(cnt);
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    }
    int rc = semid_prefix_ids(codes, N, stride, L, pid, err);
    for (int l = 0; rc == RLAB_OK && l < L; l++) {
        semid_level_stats *s = &out[l];
        memset(s, 0, sizeof *s);
        memset(cnt, 0, (size_t)K * sizeof *cnt);
        for (int64_t n = 0; n < N; n++) {
            int32_t c = codes[n * stride + l];
            if (c >= 0 && c < K)
                cnt[c]++;
        }
        double h = 0.0;
        for (int k = 0; k < K; k++) {
            if (!cnt[k])
                continue;
            s->used++;
            double p = (double)cnt[k] / (double)N;
            h -= p * log(p);
        }
        s->util = (double)s->used / (double)K;
        s->entropy = h;
        s->perplexity = exp(h);
        /* prefixes: ids are dense, so the largest id + 1 is their number */
        memset(cnt, 0, (size_t)N * sizeof *cnt);
        int32_t np = 0;
        for (int64_t n = 0; n < N; n++) {
            int32_t g = pid[n * L + l];
            if (g + 1 > np)
                np = g + 1;
            if (++cnt[g] > s->max_bucket)
                s->max_bucket = cnt[g];
        }
        s->collision = N ? 1.0 - (double)np / (double)N : 0.0;
    }
    rlab_free(pid);
    rlab_free(cnt);
    return rc;
}
