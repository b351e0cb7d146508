/*
 * Test organization: data.sampler.* negative samplers.
 *   .1 uniform frequencies (chi-square)      .2 popularity frequencies match the weights
 *   .3 exclusion always holds, incl. the nearly-full fallback and the seen-all error
 *   .4 exclusion with popularity: the restricted distribution is exact
 *   .5 determinism                           .6 argument errors and allocation failures
 */
#include "data/sampler.h"
#include "harness.h"
#include "local_seqs.h"

#include <stdlib.h>
#include <string.h>

/* Pearson chi-square of observed counts against expected probabilities. */
static double chi2(const long *obs, const double *p, int n, long N)
{
    double x = 0;
    for (int i = 0; i < n; i++) {
        double e = p[i] * (double)N;
        if (e > 0)
            x += ((double)obs[i] - e) * ((double)obs[i] - e) / e;
    }
    return x;
}

static void t_uniform(void)
{
    rlab_err err = {0};
    rlab_sampler *s = rlab_sampler_new_uniform(20, &err);
    CHECK(s != NULL);
    rlab_rng r;
    rlab_rng_seed(&r, 1);
    long cnt[20] = {0};
    double p[20];
    for (int i = 0; i < 20; i++)
        p[i] = 1.0 / 20;
    const long N = 200000;
    for (long k = 0; k < N; k++) {
        int32_t x = -1;
        CHECK_EQ_INT(rlab_sampler_draw(s, &r, -1, &x, &err), RLAB_OK);
        CHECK(x >= 0 && x < 20);
        cnt[x]++;
    }
    /* df = 19: the 99.9% quantile is 43.8 */
    double x2 = chi2(cnt, p, 20, N);
    CHECK_MSG(x2 < 43.8, "chi2 = %.1f", x2);
    CHECK_NEAR(rlab_sampler_prob(s, 3), 0.05, 1e-12);
    CHECK_EQ_INT(rlab_sampler_n_items(s), 20);
    rlab_sampler_free(s);
}

static void t_pop(void)
{
    /* counts from a tiny history: item i occurs (i % 5) times for i < 10, item 10 never */
    int32_t items[64], n = 0;
    for (int32_t i = 0; i < 10; i++)
        for (int32_t c = 0; c < i % 5; c++)
            items[n++] = i;
    int32_t lens[2] = {n / 2, n - n / 2};
    rlab_seqs sq = local_seqs(2, lens, items);
    rlab_err err = {0};
    rlab_sampler *s = rlab_sampler_new_pop(&sq, 11, 1.0, &err);
    CHECK(s != NULL);
    double p[11], tot = 0;
    for (int i = 0; i < 11; i++)
        tot += i < 10 ? i % 5 : 0;
    for (int i = 0; i < 11; i++) {
        p[i] = (i < 10 ? i % 5 : 0) / tot;
        CHECK_NEAR(rlab_sampler_prob(s, i), p[i], 1e-12);
    }
    rlab_rng r;
    rlab_rng_seed(&r, 2);
    long cnt[11] = {0};
    const long N = 300000;
    int32_t buf[1000];
    for (long k = 0; k < N; k += 1000) {
        CHECK_EQ_INT(rlab_sampler_draw_n(s, &r, -1, buf, 1000, &err), RLAB_OK);
        for (int j = 0; j < 1000; j++)
            cnt[buf[j]]++;
    }
    /* zero-weight items (0, 5, 10) are never drawn */
    CHECK_EQ_INT(cnt[0] + cnt[5] + cnt[10], 0);
    /* 8 positive cells, df = 7: 99.9% quantile 24.3 */
    double x2 = chi2(cnt, p, 11, N);
    CHECK_MSG(x2 < 24.3, "chi2 = %.1f", x2);
    /* a wrong distribution is rejected by the same statistic (the test can fail) */
    double q[11];
    for (int i = 0; i < 11; i++)
        q[i] = p[i] > 0 ? 1.0 / 8 : 0;
    CHECK(chi2(cnt, q, 11, N) > 1000);
    /* alpha = 0 flattens the popularity to "uniform over seen items" */
    rlab_sampler *s0 = rlab_sampler_new_pop(&sq, 11, 0.0, &err);
    CHECK_NEAR(rlab_sampler_prob(s0, 4), 1.0 / 8, 1e-12);
    CHECK_NEAR(rlab_sampler_prob(s0, 5), 0.0, 0);
    rlab_sampler_free(s0);
    rlab_sampler_free(s);
    local_seqs_free(&sq);
}

static void t_exclude(void)
{
    /* 30 items. user 0: a few items; user 1: all but item 17 (scrambled, with repeats);
     * user 2: everything; user 3: nothing. */
    enum { N = 30 };
    int32_t items[200], n = 0, lens[4];
    int32_t u0[] = {3, 9, 3, 27, 0};
    for (int k = 0; k < 5; k++)
        items[n++] = u0[k];
    lens[0] = 5;
    for (int32_t i = N - 1; i >= 0; i--)
        if (i != 17) {
            items[n++] = i;
            if (i % 7 == 0)
                items[n++] = i; /* repeat */
        }
    lens[1] = n - 5;
    for (int32_t i = 0; i < N; i++)
        items[n++] = (i * 7) % N;
    lens[2] = N;
    lens[3] = 0;
    rlab_seqs sq = local_seqs(4, lens, items);
    rlab_err err = {0};
    rlab_sampler *samplers[2] = {rlab_sampler_new_uniform(N, &err),
                                 rlab_sampler_new_pop(&sq, N, 1.0, &err)};
    for (int si = 0; si < 2; si++) {
        rlab_sampler *s = samplers[si];
        CHECK(s != NULL);
        CHECK_EQ_INT(rlab_sampler_set_exclude(s, &sq, &err), RLAB_OK);
        CHECK(rlab_sampler_is_seen(s, 0, 27) && !rlab_sampler_is_seen(s, 0, 26));
        CHECK(!rlab_sampler_is_seen(s, 3, 0) && !rlab_sampler_is_seen(s, 99, 0));
        rlab_rng r;
        rlab_rng_seed(&r, 3 + (uint64_t)si);
        int bad = 0, not17 = 0;
        for (int k = 0; k < 5000; k++) {
            int32_t x;
            CHECK_EQ_INT(rlab_sampler_draw(s, &r, 0, &x, &err), RLAB_OK);
            bad += x == 3 || x == 9 || x == 27 || x == 0 || x < 0 || x >= N;
            CHECK_EQ_INT(rlab_sampler_draw(s, &r, 1, &x, &err), RLAB_OK);
            not17 += x != 17;
        }
        CHECK_EQ_INT(bad, 0);
        CHECK_EQ_INT(not17, 0);
        int32_t x = 123;
        CHECK_EQ_INT(rlab_sampler_draw(s, &r, 2, &x, &err), RLAB_ESTATE);
        CHECK_STR_CONTAINS(err.msg, "seen all 30 items");
        /* a user with an empty history and a user id past the table draw freely */
        CHECK_EQ_INT(rlab_sampler_draw(s, &r, 3, &x, &err), RLAB_OK);
        CHECK_EQ_INT(rlab_sampler_draw(s, &r, 500, &x, &err), RLAB_OK);
        rlab_sampler_free(s);
    }
    local_seqs_free(&sq);
}

static void t_exclude_pop_exact(void)
{
    /* weights: item i has weight i+1 (0..39); the user has seen everything except items 2
     * and 5, so the conditional distribution is 3/9 vs 6/9. Rejection nearly always fails
     * (the unseen mass is 9/820), so this exercises the exact fallback. */
    enum { N = 40 };
    double w[N];
    for (int i = 0; i < N; i++)
        w[i] = i + 1;
    int32_t items[N], n = 0;
    for (int32_t i = 0; i < N; i++)
        if (i != 2 && i != 5)
            items[n++] = i;
    int32_t lens[1] = {n};
    rlab_seqs sq = local_seqs(1, lens, items);
    rlab_err err = {0};
    rlab_sampler *s = rlab_sampler_new_weighted(w, N, &err);
    CHECK_EQ_INT(rlab_sampler_set_exclude(s, &sq, &err), RLAB_OK);
    rlab_rng r;
    rlab_rng_seed(&r, 4);
    long c2 = 0, c5 = 0, other = 0;
    const long T = 30000;
    for (long k = 0; k < T; k++) {
        int32_t x;
        rlab_sampler_draw(s, &r, 0, &x, &err);
        c2 += x == 2;
        c5 += x == 5;
        other += x != 2 && x != 5;
    }
    CHECK_EQ_INT(other, 0);
    /* binomial sd = sqrt(T p q) ~ 82: 5 sd tolerance */
    CHECK_NEAR((double)c2, T * 3.0 / 9.0, 410);
    CHECK_NEAR((double)c5, T * 6.0 / 9.0, 410);
    rlab_sampler_free(s);

    /* every unseen item has weight zero: uniform among the unseen (documented) */
    double wz[N];
    for (int i = 0; i < N; i++)
        wz[i] = (i == 2 || i == 5) ? 0.0 : 1.0;
    s = rlab_sampler_new_weighted(wz, N, &err);
    rlab_sampler_set_exclude(s, &sq, &err);
    c2 = c5 = 0;
    for (long k = 0; k < 2000; k++) {
        int32_t x;
        CHECK_EQ_INT(rlab_sampler_draw(s, &r, 0, &x, &err), RLAB_OK);
        c2 += x == 2;
        c5 += x == 5;
    }
    CHECK_EQ_INT(c2 + c5, 2000);
    CHECK(c2 > 800 && c5 > 800);
    rlab_sampler_free(s);
    local_seqs_free(&sq);
}

static void t_determinism(void)
{
    rlab_err err = {0};
    double w[50];
    for (int i = 0; i < 50; i++)
        w[i] = 1.0 / (i + 1);
    rlab_sampler *s = rlab_sampler_new_weighted(w, 50, &err);
    rlab_rng a, b, c;
    rlab_rng_seed(&a, 77);
    rlab_rng_seed(&b, 77);
    rlab_rng_seed(&c, 78);
    int32_t xa[200], xb[200], xc[200];
    rlab_sampler_draw_n(s, &a, -1, xa, 200, &err);
    rlab_sampler_draw_n(s, &b, -1, xb, 200, &err);
    rlab_sampler_draw_n(s, &c, -1, xc, 200, &err);
    CHECK(memcmp(xa, xb, sizeof xa) == 0);
    CHECK(memcmp(xa, xc, sizeof xa) != 0);
    rlab_sampler_free(s);
}

static void t_errors(void)
{
    rlab_err err = {0};
    CHECK(rlab_sampler_new_uniform(0, &err) == NULL);
    CHECK_EQ_INT(err.code, RLAB_EINVAL);
    double w[3] = {1, -1, 2};
    CHECK(rlab_sampler_new_weighted(w, 3, &err) == NULL);
    CHECK_STR_CONTAINS(err.msg, "weight 1");
    double z[3] = {0, 0, 0};
    CHECK(rlab_sampler_new_weighted(z, 3, &err) == NULL);
    int32_t items[2] = {1, 7}, lens[1] = {2};
    rlab_seqs sq = local_seqs(1, lens, items);
    CHECK(rlab_sampler_new_pop(&sq, 5, 1.0, &err) == NULL);
    CHECK_STR_CONTAINS(err.msg, "item 7");
    rlab_sampler *s = rlab_sampler_new_uniform(5, &err);
    CHECK_EQ_INT(rlab_sampler_set_exclude(s, &sq, &err), RLAB_EINVAL);
    rlab_sampler_free(s);
    rlab_sampler_free(NULL);
    /* allocation failures at every step of construction are reported, never crash */
    double w2[4] = {1, 2, 3, 4};
    for (long k = 0; k < 6; k++) {
        rlab_alloc_fail_after(k);
        rlab_sampler *f = rlab_sampler_new_weighted(w2, 4, &err);
        rlab_alloc_fail_after(-1);
        CHECK(f != NULL || err.code == RLAB_ENOMEM);
        rlab_sampler_free(f);
    }
    local_seqs_free(&sq);
}

static const rlab_test tests[] = {
    {"data.sampler.1", t_uniform},
    {"data.sampler.2", t_pop},
    {"data.sampler.3", t_exclude},
    {"data.sampler.4", t_exclude_pop_exact},
    {"data.sampler.5", t_determinism},
    {"data.sampler.6", t_errors},
    {NULL, NULL},
};

int main(int argc, char **argv) { return rlab_test_main(argc, argv, tests); }
