/*
 * tests/reloop/test_reloop.c: the reloop plugin (ReLoop2 error memory) and the model
 * interface's sample representation it keys on.
 *
 * Test organization:
 *   reloop.mem.*     the error memory by hand: identical keys average their errors, the
 *                    opposite key finds nothing, lazy decay of aggregates, FIFO weights by age,
 *                    softmax over cosine with top-k, the size cap recycling the oldest bucket,
 *                    min_err, bad options
 *   reloop.stream.*  a hand-made dataset cut into periods: time order, labels from ratings,
 *                    histories, count and time cuts, sampled negatives; bad inputs (no ratings,
 *                    an empty period, one class in period 0)
 *   reloop.base.*    the logistic-MF base: fitting lowers the loss, clones are independent;
 *                    the FM base on synthetic CTR samples; each base refuses the other stream
 *                    kind
 *   reloop.hook.*    rlab_model_sample_repr on bprmf and sasrec trained through the host: the
 *                    score equals the model's own score, the first half is user_repr; a model
 *                    without the hook (pop) gives RLAB_ESTATE, a bad item RLAB_EINVAL
 *   reloop.host.*    reloop.stream end to end on a small drifting world (mf and a wrapped
 *                    bprmf), determinism for a seed, argument errors; reloop.ctr on the
 *                    Criteo sample ($RECLAB_DATA; skipped without it)
 */
#include "harness_host.h"
#include "reloop.h"

#include "data/world.h"
#include "host/host.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PDIR RLAB_RELOOP_PLUGIN_DIR

/* ---- the memory ------------------------------------------------------------------------- */

static reloop_mem *mem(int dim, int R, int b, int fifo, int k, float tau, float decay, int64_t cap)
{
    reloop_mem_opts o = reloop_mem_defaults(dim);
    o.tables = R;
    o.bits = b;
    o.fifo = fifo;
    o.k = k;
    o.tau = tau;
    o.decay = decay;
    o.cap = cap;
    rlab_err err = {0};
    reloop_mem *m = reloop_mem_new(&o, &err);
    CHECK_MSG(m != NULL, "reloop_mem_new: %s", err.msg);
    return m;
}

static void t_mem_same_key(void)
{
    for (int fifo = 0; fifo <= 4; fifo += 4) {
        reloop_mem *m = mem(2, 4, 8, fifo, 16, 0.1f, 0.7f, 64);
        const float a[2] = {1.0f, 0.0f}, a2[2] = {3.0f, 0.0f}, neg[2] = {-1.0f, 0.0f};
        reloop_mem_insert(m, a, 0.2f);
        reloop_mem_insert(m, a2, 0.6f); /* same direction: same buckets, cosine 1 */
        double e;
        int n;
        reloop_mem_lookup(m, a, &e, &n);
        CHECK_NEAR(e, 0.4, 1e-6);          /* the mean of 0.2 and 0.6 */
        CHECK_EQ_INT(n, fifo ? 2 : 4);     /* FIFO: two samples once each; aggregates: 4 tables */
        reloop_mem_lookup(m, neg, &e, &n); /* every sign bit flips: no shared bucket */
        CHECK_EQ_INT(n, 0);
        CHECK_NEAR(e, 0.0, 0.0);
        reloop_mem_stats st;
        reloop_mem_get_stats(m, &st);
        CHECK_EQ_INT(st.buckets, 4);
        CHECK_EQ_INT(st.inserted, 2);
        CHECK_EQ_INT(st.entries, fifo ? 8 : 4);
        const float zero[2] = {0.0f, 0.0f};
        reloop_mem_insert(m, zero, 1.0f); /* a zero key is not stored */
        reloop_mem_get_stats(m, &st);
        CHECK_EQ_INT(st.inserted, 2);
        reloop_mem_clear(m);
        reloop_mem_lookup(m, a, &e, &n);
        CHECK_EQ_INT(n, 0);
        reloop_mem_free(m);
    }
}

static void t_mem_decay(void)
{
    /* aggregated: e=1 written at tick 0, e=0 at tick 1, decay 0.5: mean (0.5*1 + 0)/(0.5 + 1) */
    reloop_mem *m = mem(2, 1, 4, 0, 16, 0.1f, 0.5f, 64);
    const float a[2] = {0.6f, 0.8f};
    reloop_mem_insert(m, a, 1.0f);
    reloop_mem_tick(m);
    reloop_mem_insert(m, a, 0.0f);
    double e;
    int n;
    reloop_mem_lookup(m, a, &e, &n);
    CHECK_NEAR(e, 1.0 / 3.0, 1e-6);
    CHECK_EQ_INT(n, 1);
    reloop_mem_free(m);
    /* FIFO: the same two samples weigh 0.5 and 1 at lookup */
    m = mem(2, 1, 4, 4, 16, 0.1f, 0.5f, 64);
    reloop_mem_insert(m, a, 1.0f);
    reloop_mem_tick(m);
    reloop_mem_insert(m, a, 0.0f);
    reloop_mem_lookup(m, a, &e, &n);
    CHECK_NEAR(e, 1.0 / 3.0, 1e-6);
    CHECK_EQ_INT(n, 2);
    reloop_mem_tick(m); /* both one tick older: weights 0.25 and 0.5, same ratio */
    reloop_mem_lookup(m, a, &e, &n);
    CHECK_NEAR(e, 1.0 / 3.0, 1e-6);
    reloop_mem_free(m);
}

static void t_mem_softmax(void)
{
    /* one table of one bit: find a seed whose hyperplane puts q=a=(1,0) and b=(0.8,0.6) on
     * the same side, then e_hat = (1*exp(1/tau) + 0*exp(0.8/tau)) / (exp(1/tau) + exp(0.8/tau))
     * = 1 / (1 + exp(-0.2/tau)); with k=1 only a counts. */
    const float a[2] = {1.0f, 0.0f}, b[2] = {0.8f, 0.6f};
    int found = 0;
    for (uint64_t seed = 1; seed < 64 && !found; seed++) {
        for (int k = 1; k <= 2; k++) {
            reloop_mem_opts o = reloop_mem_defaults(2);
            o.tables = 1;
            o.bits = 1;
            o.fifo = 4;
            o.k = k == 1 ? 1 : 16;
            o.tau = 0.1f;
            o.seed = seed;
            rlab_err err = {0};
            reloop_mem *m = reloop_mem_new(&o, &err);
            CHECK(m != NULL);
            if (!m)
                return;
            int32_t ca, cb;
            reloop_mem_codes(m, a, &ca);
            reloop_mem_codes(m, b, &cb);
            if (ca == cb) {
                found = 1;
                reloop_mem_insert(m, a, 1.0f);
                reloop_mem_insert(m, b, 0.0f);
                double e;
                int n;
                reloop_mem_lookup(m, a, &e, &n);
                if (k == 1) {
                    CHECK_NEAR(e, 1.0, 1e-6);
                    CHECK_EQ_INT(n, 1);
                } else {
                    CHECK_NEAR(e, 1.0 / (1.0 + exp(-2.0)), 1e-5);
                    CHECK_EQ_INT(n, 2);
                }
            }
            reloop_mem_free(m);
        }
    }
    CHECK_MSG(found, "no seed put both keys in one bucket");
}

static void t_mem_cap(void)
{
    /* one bucket in all: the second key's bucket recycles the first one's */
    reloop_mem *m = mem(2, 1, 4, 0, 16, 0.1f, 0.7f, 1);
    const float a[2] = {1.0f, 0.0f}, b[2] = {-1.0f, 0.0f};
    reloop_mem_insert(m, a, 1.0f);
    reloop_mem_insert(m, b, -1.0f);
    double e;
    int n;
    reloop_mem_lookup(m, a, &e, &n);
    CHECK_EQ_INT(n, 0);
    reloop_mem_lookup(m, b, &e, &n);
    CHECK_EQ_INT(n, 1);
    CHECK_NEAR(e, -1.0, 1e-6);
    reloop_mem_stats st;
    reloop_mem_get_stats(m, &st);
    CHECK_EQ_INT(st.buckets, 1);
    reloop_mem_free(m);
    /* min_err: small errors are not written */
    reloop_mem_opts o = reloop_mem_defaults(2);
    o.min_err = 0.5f;
    rlab_err err = {0};
    m = reloop_mem_new(&o, &err);
    CHECK(m != NULL);
    if (!m)
        return;
    reloop_mem_insert(m, a, 0.2f);
    reloop_mem_insert(m, a, -0.7f);
    reloop_mem_get_stats(m, &st);
    CHECK_EQ_INT(st.inserted, 1);
    reloop_mem_lookup(m, a, &e, &n);
    CHECK_NEAR(e, -0.7, 1e-6);
    reloop_mem_free(m);
}

static void t_mem_bad(void)
{
    reloop_mem_opts o = reloop_mem_defaults(8);
    rlab_err err = {0};
    o.bits = 17;
    CHECK(reloop_mem_new(&o, &err) == NULL);
    CHECK_STR(err.msg, "reloop memory: bits must be in [1, 16] (got 17)");
    o = reloop_mem_defaults(8);
    o.tables = 0;
    CHECK(reloop_mem_new(&o, &err) == NULL);
    CHECK_STR(err.msg, "reloop memory: tables must be in [1, 32] (got 0)");
    o = reloop_mem_defaults(8);
    o.decay = 0.0f;
    CHECK(reloop_mem_new(&o, &err) == NULL);
    CHECK_STR(err.msg, "reloop memory: decay must be in (0, 1]");
    o = reloop_mem_defaults(0);
    CHECK(reloop_mem_new(&o, &err) == NULL);
    CHECK_EQ_INT(err.code, RLAB_EINVAL);
}

/* ---- streams ------------------------------------------------------------------------------ */

/* users u0..u2, items i0..i3; rows (user, item, ts, rating) pushed out of order:
 *   sorted: (0,0,10,5) (1,1,10,2) (0,2,20,4) (2,3,30,1) (1,0,40,4) (2,1,50,3)
 *   labels (>= 4): 1 0 1 0 1 0; histories before each row: 0 0 1 0 1 1 */
static rlab_dataset *tiny(int ratings)
{
    rlab_err err = {0};
    rlab_dataset *ds = rlab_dataset_new("tiny", &err);
    CHECK(ds != NULL);
    char buf[8];
    for (int u = 0; u < 3; u++) {
        snprintf(buf, sizeof buf, "u%d", u);
        rlab_vocab_add(&ds->users, buf, strlen(buf));
    }
    for (int i = 0; i < 4; i++) {
        snprintf(buf, sizeof buf, "i%d", i);
        rlab_vocab_add(&ds->items, buf, strlen(buf));
    }
    static const int rows[6][4] = {{2, 1, 50, 3}, {0, 2, 20, 4}, {1, 0, 40, 4},
                                   {0, 0, 10, 5}, {2, 3, 30, 1}, {1, 1, 10, 2}};
    for (int r = 0; r < 6; r++)
        rlab_inter_push(&ds->inter, rows[r][0], rows[r][1], rows[r][2], (float)rows[r][3], NULL);
    ds->inter.flags = RLAB_INTER_HAS_TS | (ratings ? RLAB_INTER_HAS_RATING : 0u);
    return ds;
}

static void t_stream_count(void)
{
    rlab_dataset *ds = tiny(1);
    reloop_stream s;
    rlab_err err = {0};
    reloop_stream_opts o = {.periods = 2, .cut = RELOOP_CUT_COUNT, .threshold = 4.0f};
    int rc = reloop_stream_build(ds, &o, &s, &err);
    CHECK_MSG(rc == RLAB_OK, "%s", err.msg);
    if (rc == RLAB_OK) {
        static const int32_t U[6] = {0, 1, 0, 2, 1, 2}, I[6] = {0, 1, 2, 3, 0, 1};
        static const uint8_t L[6] = {1, 0, 1, 0, 1, 0};
        static const int64_t H[6] = {0, 0, 1, 0, 1, 1};
        CHECK_EQ_INT(s.n, 6);
        for (int r = 0; r < 6; r++) {
            CHECK_EQ_INT(s.user[r], U[r]);
            CHECK_EQ_INT(s.item[r], I[r]);
            CHECK_EQ_INT(s.label[r], L[r]);
            CHECK_EQ_INT(s.hist_len[r], H[r]);
        }
        CHECK_EQ_INT(s.start[0], 0);
        CHECK_EQ_INT(s.start[1], 3);
        CHECK_EQ_INT(s.start[2], 6);
        CHECK_EQ_INT(s.t_first[1], 30);
        /* u1's history in time order: i1 then i0 */
        CHECK_EQ_INT(s.uhist_off[2] - s.uhist_off[1], 2);
        CHECK_EQ_INT(s.uhist[s.uhist_off[1]], 1);
        CHECK_EQ_INT(s.uhist[s.uhist_off[1] + 1], 0);
        CHECK_STR(s.labels_from, "rating>=4");
        CHECK_EQ_INT(reloop_stream_period_of(&s, 29), 0);
        CHECK_EQ_INT(reloop_stream_period_of(&s, 30), 1);
        CHECK_EQ_INT(reloop_stream_period_of(&s, 5), -1);
        reloop_stream_clear(&s);
    }
    rlab_dataset_free(ds);
}

static void t_stream_time(void)
{
    rlab_dataset *ds = tiny(1);
    reloop_stream s;
    rlab_err err = {0};
    /* span 41 s from 10: cuts at 10 + 41/3 = 23.7 (row 3, ts 30) and 37.3 (row 4, ts 40) */
    reloop_stream_opts o = {.periods = 3, .cut = RELOOP_CUT_TIME, .threshold = 4.0f};
    int rc = reloop_stream_build(ds, &o, &s, &err);
    CHECK_MSG(rc == RLAB_OK, "%s", err.msg);
    if (rc == RLAB_OK) {
        CHECK_EQ_INT(s.start[1], 3);
        CHECK_EQ_INT(s.start[2], 4);
        CHECK_EQ_INT(s.start[3], 6);
        reloop_stream_clear(&s);
    }
    /* eight periods of 5.1 s: the third (25.4 .. 30.5) has no row */
    o.periods = 8;
    CHECK_EQ_INT(reloop_stream_build(ds, &o, &s, &err), RLAB_EINVAL);
    CHECK_STR(err.msg, "period 2 of 8 has no interactions (6 rows, cut=time)");
    /* six periods of one row each: period 0 holds one positive only */
    o.periods = 6;
    o.cut = RELOOP_CUT_COUNT;
    CHECK_EQ_INT(reloop_stream_build(ds, &o, &s, &err), RLAB_EINVAL);
    CHECK_STR(err.msg, "period 0 has labels of one class only (labels)");
    o.periods = 1;
    CHECK_EQ_INT(reloop_stream_build(ds, &o, &s, &err), RLAB_EINVAL);
    CHECK_STR(err.msg, "periods must be >= 2 (got 1)");
    rlab_dataset_free(ds);
}

static void t_stream_neg(void)
{
    rlab_dataset *ds = tiny(0);
    reloop_stream s;
    rlab_err err = {0};
    reloop_stream_opts o = {.periods = 2, .cut = RELOOP_CUT_COUNT, .threshold = 4.0f};
    CHECK_EQ_INT(reloop_stream_build(ds, &o, &s, &err), RLAB_EINVAL);
    CHECK_STR_CONTAINS(err.msg, "dataset 'tiny' has neither ratings nor a label column");
    o.neg = 2;
    o.seed = 5;
    int rc = reloop_stream_build(ds, &o, &s, &err);
    CHECK_MSG(rc == RLAB_OK, "%s", err.msg);
    if (rc == RLAB_OK) {
        CHECK_EQ_INT(s.n, 18);
        CHECK_EQ_INT(s.start[1], 9);
        for (int64_t r = 0; r < 18; r++) {
            int64_t pos = r - r % 3;
            CHECK_EQ_INT(s.label[r], r % 3 == 0);
            CHECK_EQ_INT(s.user[r], s.user[pos]);
            CHECK_EQ_INT(s.ts[r], s.ts[pos]);
            if (r % 3)
                CHECK(s.item[r] != s.item[pos] && s.item[r] >= 0 && s.item[r] < 4);
        }
        CHECK_STR(s.labels_from, "click+2neg");
        reloop_stream_clear(&s);
    }
    rlab_dataset_free(ds);
}

/* ---- the base ----------------------------------------------------------------------------- */

static rlab_dataset *small_world(uint64_t seed, rlab_world **wout)
{
    rlab_world_config c;
    rlab_world_config_default(&c);
    c.seed = seed;
    c.n_drift = 1;
    c.drift_ts[0] = c.t0 + 182LL * 86400;
    c.drift_frac = 0.6f;
    c.drift_strength = 1.0f;
    rlab_world *w = NULL;
    rlab_dataset *ds = NULL;
    rlab_err err = {0};
    CHECK_MSG(rlab_world_generate(&c, "w", &w, &ds, &err) == RLAB_OK, "world: %s", err.msg);
    if (wout)
        *wout = w;
    else
        rlab_world_free(w);
    return ds;
}

static void t_base_fit(void)
{
    rlab_dataset *ds = small_world(3, NULL);
    if (!ds)
        return;
    reloop_stream s;
    rlab_err err = {0};
    reloop_stream_opts so = {.periods = 4, .cut = RELOOP_CUT_COUNT, .threshold = 4.0f};
    CHECK_EQ_INT(reloop_stream_build(ds, &so, &s, &err), RLAB_OK);
    reloop_base_opts bo = {.dim = 8, .epochs = 1, .lr = 0.05f, .l2 = 1e-4f, .seed = 1};
    reloop_base *b = reloop_base_new_mf(s.n_users, s.n_items, &bo, &err);
    CHECK(b != NULL);
    if (!b) {
        reloop_stream_clear(&s);
        rlab_dataset_free(ds);
        return;
    }
    CHECK_EQ_INT(reloop_base_key_dim(b), 16);
    double l1 = 0, l5 = 0;
    CHECK_EQ_INT(reloop_base_fit(b, &s, 0, s.start[1], 1, 0.05f, 9, &l1, &err), RLAB_OK);
    CHECK_EQ_INT(reloop_base_fit(b, &s, 0, s.start[1], 4, 0.05f, 9, &l5, &err), RLAB_OK);
    CHECK_MSG(l5 < l1 && l1 < 0.7, "train loss %g after 1 epoch, %g after 5", l1, l5);
    reloop_base *c = reloop_base_clone(b, &err);
    CHECK(c != NULL);
    int64_t n = s.start[2] - s.start[1];
    float *p1 = malloc((size_t)n * sizeof(float)), *p2 = malloc((size_t)n * sizeof(float));
    float *h = malloc((size_t)n * 16 * sizeof(float));
    if (c && p1 && p2 && h) {
        reloop_base_predict(b, &s, s.start[1], s.start[2], p1, h, &err);
        reloop_base_predict(c, &s, s.start[1], s.start[2], p2, NULL, &err);
        CHECK(memcmp(p1, p2, (size_t)n * sizeof(float)) == 0);
        for (int64_t r = 0; r < n; r++)
            CHECK(p1[r] > 0.0f && p1[r] < 1.0f);
        CHECK_EQ_INT(reloop_base_sgd(c, &s, s.start[1], s.start[2], 0.02f, NULL, &err), RLAB_OK);
        reloop_base_predict(c, &s, s.start[1], s.start[2], p2, NULL, &err);
        CHECK(memcmp(p1, p2, (size_t)n * sizeof(float)) != 0); /* the clone learnt */
        reloop_base_predict(b, &s, s.start[1], s.start[2], p2, NULL, &err);
        CHECK(memcmp(p1, p2, (size_t)n * sizeof(float)) == 0); /* the original did not */
    }
    free(p1);
    free(p2);
    free(h);
    reloop_base_free(c);
    reloop_base_free(b);
    reloop_stream_clear(&s);
    rlab_dataset_free(ds);
}

static void t_base_fm(void)
{
    rlab_tabular *t = NULL;
    rlab_err err = {0};
    CHECK_EQ_INT(rlab_tabular_synth(3000, 6, 50, 4, &t, &err), RLAB_OK);
    if (!t)
        return;
    reloop_stream s;
    reloop_stream_opts so = {.periods = 3, .cut = RELOOP_CUT_COUNT};
    int rc = reloop_stream_build_tab(t, 0, &so, &s, &err);
    CHECK_MSG(rc == RLAB_OK, "%s", err.msg);
    reloop_base_opts bo = {.dim = 4, .epochs = 1, .lr = 0.05f, .l2 = 1e-4f, .seed = 1};
    reloop_base *b = rc ? NULL : reloop_base_new_fm(t, &bo, &err);
    CHECK(rc || b != NULL);
    if (b) {
        int F = 0;
        for (int f = 0; f < t->nfields; f++)
            F += t->fields[f].role == RLAB_TAB_CAT;
        CHECK_EQ_INT(reloop_base_key_dim(b), F * 4);
        double l1 = 0, l2 = 0;
        CHECK_EQ_INT(reloop_base_fit(b, &s, 0, s.start[1], 1, 0.05f, 3, &l1, &err), RLAB_OK);
        CHECK_EQ_INT(reloop_base_fit(b, &s, 0, s.start[1], 3, 0.05f, 3, &l2, &err), RLAB_OK);
        CHECK_MSG(l2 < l1, "fm train loss %g after 1 epoch, %g after 4", l1, l2);
        /* the FM base refuses a rating stream, the MF base a CTR stream */
        float p1;
        rlab_dataset *ds = tiny(1);
        reloop_stream s2;
        reloop_stream_opts o2 = {.periods = 2, .threshold = 4.0f};
        CHECK_EQ_INT(reloop_stream_build(ds, &o2, &s2, &err), RLAB_OK);
        CHECK_EQ_INT(reloop_base_predict(b, &s2, 0, 1, &p1, NULL, &err), RLAB_EINVAL);
        reloop_base *m = reloop_base_new_mf(3, 4, &bo, &err);
        CHECK(m != NULL);
        if (m)
            CHECK_EQ_INT(reloop_base_predict(m, &s, 0, 1, &p1, NULL, &err), RLAB_EINVAL);
        reloop_base_free(m);
        reloop_stream_clear(&s2);
        rlab_dataset_free(ds);
    }
    reloop_base_free(b);
    if (rc == RLAB_OK)
        reloop_stream_clear(&s);
    /* a label that does not exist, a time cut without a time column */
    CHECK_EQ_INT(reloop_stream_build_tab(t, 5, &so, &s, &err), RLAB_EINVAL);
    rlab_tabular_free(t);
}

/* ---- the hook ----------------------------------------------------------------------------- */

static rlab_host *new_host(void)
{
    return rlab_test_host(PDIR, "reclab_baselines.so", "reclab_seqrec.so", "reclab_reloop.so");
}

static void add_world(rlab_host *h)
{
    rlab_dataset *ds = small_world(3, NULL);
    rlab_err err = {0};
    if (ds)
        CHECK_MSG(rlab_host_add_dataset(h, ds, &err) == RLAB_OK, "add: %s", err.msg);
}

static void check_hook(rlab_host *h, const char *name, int with_hist)
{
    rlab_model *m = rlab_models_get(rlab_host_models(h), name);
    CHECK_MSG(m != NULL, "model %s", name);
    if (!m)
        return;
    const int K = m->sample_dim, D = m->repr_dim;
    CHECK_EQ_INT(K, 2 * D);
    static const int32_t hist[3] = {4, 9, 2};
    rlab_query q[3];
    int32_t it[3];
    for (int b = 0; b < 3; b++) {
        q[b] = (rlab_query){
            .user = b, .hist = with_hist ? hist : NULL, .n_hist = with_hist ? b + 1 : 0};
        it[b] = 5 + 3 * b;
    }
    float *repr = malloc((size_t)3 * (size_t)K * sizeof(float));
    float *ur = malloc((size_t)3 * (size_t)D * sizeof(float));
    float score[3], own;
    rlab_err err = {0};
    CHECK_EQ_INT(rlab_model_sample_repr(m, q, 3, it, repr, score, &err), RLAB_OK);
    CHECK_EQ_INT(rlab_model_user_repr(m, q, 3, ur, &err), RLAB_OK);
    for (int b = 0; b < 3; b++) {
        CHECK_EQ_INT(rlab_model_score(m, &q[b], 1, &it[b], 1, &own, &err), RLAB_OK);
        CHECK_NEAR(score[b], own, 1e-4);
        for (int d = 0; d < D; d++)
            CHECK_NEAR(repr[(size_t)b * K + d], ur[(size_t)b * D + d], 1e-6);
    }
    /* score alone, repr alone */
    float s2[3];
    CHECK_EQ_INT(rlab_model_sample_repr(m, q, 3, it, NULL, s2, &err), RLAB_OK);
    CHECK(memcmp(s2, score, sizeof s2) == 0);
    int32_t bad[1] = {m->n_items};
    CHECK_EQ_INT(rlab_model_sample_repr(m, q, 1, bad, repr, NULL, &err), RLAB_EINVAL);
    free(repr);
    free(ur);
    rlab_model_release(m);
}

static void t_hook(void)
{
    rlab_host *h = new_host();
    add_world(h);
    rlab_result_free(rlab_test_run(
        h, "train bprmf data=w epochs=1 dim=8 eval_every=0 eval_test=false name=b", RLAB_OK, NULL));
    rlab_result_free(rlab_test_run(h,
                                   "train sasrec data=w epochs=1 dim=16 blocks=1 maxlen=20 "
                                   "eval_every=0 eval_test=false name=s",
                                   RLAB_OK, NULL));
    rlab_result_free(rlab_test_run(h, "train pop data=w name=p", RLAB_OK, NULL));
    check_hook(h, "b", 0);
    check_hook(h, "s", 1);
    rlab_model *m = rlab_models_get(rlab_host_models(h), "p");
    CHECK(m != NULL);
    if (m) {
        rlab_query q = {.user = 0};
        int32_t it = 0;
        float sc;
        rlab_err err = {0};
        CHECK_EQ_INT(rlab_model_sample_repr(m, &q, 1, &it, NULL, &sc, &err), RLAB_ESTATE);
        CHECK_STR(err.msg, "model 'p' (pop) has no sample representation");
        rlab_model_release(m);
    }
    rlab_host_free(h);
}

/* ---- the command -------------------------------------------------------------------------- */

static void t_host_stream(void)
{
    rlab_host *h = new_host();
    add_world(h);
    /* drift at t0 + 182 days of a 365-day span, 6 time periods: in period 2 (122..183 days) */
    char line[256];
    snprintf(line, sizeof line,
             "reloop.stream data=w periods=6 cut=time epochs=5 dim=8 drift=%lld seed=3",
             (long long)(1577836800LL + 182LL * 86400));
    rlab_result *r = rlab_test_run(h, line, RLAB_OK, NULL);
    if (r) {
        CHECK_NEAR(rlab_test_scalar(r, "drift_period"), 2, 0);
        static const char *const v[] = {"frozen", "incremental", "memory", "meminc"};
        for (int i = 0; i < 4; i++) {
            char nm[64];
            snprintf(nm, sizeof nm, "mean_auc_%s", v[i]);
            double a = rlab_test_scalar(r, nm);
            CHECK_MSG(a > 0.55 && a < 1.0, "%s = %g", nm, a);
            snprintf(nm, sizeof nm, "mean_logloss_%s", v[i]);
            double l = rlab_test_scalar(r, nm);
            CHECK_MSG(l > 0.0 && l < 1.0, "%s = %g", nm, l);
            snprintf(nm, sizeof nm, "recover_%s", v[i]);
            double rec = rlab_test_scalar(r, nm);
            CHECK(rec >= -1 && rec <= 3);
        }
        CHECK(rlab_test_scalar(r, "mem_entries") > 0);
        CHECK(rlab_test_scalar(r, "lookup_ns") > 0);
        CHECK_EQ_INT(r->ntables, 1);
        if (r->ntables == 1) {
            const rlab_table *t = r->tables[0];
            CHECK_STR(t->name, "reloop");
            CHECK_EQ_INT(t->nrows, 6); /* periods 1..5 and the mean */
            CHECK_EQ_INT(t->ncols, 11);
            /* the first replayed period: memory empty at its start, and no incremental pass
             * yet, so the incremental base predicts as the frozen one */
            CHECK_NEAR(t->cells[3].f, t->cells[4].f, 0.0);
        }
        /* the same seed gives the same numbers */
        rlab_result *r2 = rlab_test_run(h, line, RLAB_OK, NULL);
        if (r2)
            CHECK_NEAR(rlab_test_scalar(r2, "mean_auc_memory"),
                       rlab_test_scalar(r, "mean_auc_memory"), 0.0);
        rlab_result_free(r2);
    }
    rlab_result_free(r);
    /* a wrapped registered model */
    rlab_result_free(rlab_test_run(
        h, "train bprmf data=w epochs=2 dim=8 eval_every=0 eval_test=false name=b", RLAB_OK, NULL));
    r = rlab_test_run(h, "reloop.stream data=w base=b periods=4 epochs=2 fifo=4", RLAB_OK, NULL);
    if (r) {
        double a = rlab_test_scalar(r, "mean_auc_memory");
        CHECK_MSG(a > 0.5 && a < 1.0, "wrapped bprmf: mean_auc_memory %g", a);
    }
    rlab_result_free(r);
    /* a kind trained on period 0 by the host's verb, then wrapped */
    r = rlab_test_run(h, "reloop.stream data=w train=\"bprmf dim=8 epochs=2\" periods=4 epochs=2",
                      RLAB_OK, NULL);
    if (r) {
        double a = rlab_test_scalar(r, "mean_auc_frozen");
        CHECK_MSG(a > 0.5 && a < 1.0, "bprmf trained on period 0: mean_auc_frozen %g", a);
        rlab_model *m = rlab_models_get(rlab_host_models(h), "w.p0");
        CHECK(m != NULL);
        rlab_dataset *d0 = rlab_host_dataset_get(h, "w.p0");
        CHECK(d0 != NULL);
        if (d0) { /* period 0 only: a quarter of the interactions */
            CHECK_EQ_INT(d0->users.n, m ? m->n_users : -1);
            CHECK(d0->inter.n > 1000 && d0->inter.n < 1400);
        }
        rlab_host_dataset_release(h, d0);
        rlab_model_release(m);
    }
    rlab_result_free(r);
    rlab_result_free(rlab_test_run(h, "reloop.stream data=w train=bprmf base=b", RLAB_EINVAL,
                                   "reloop.stream: give base= (a registered model) or train= (a "
                                   "kind trained on period 0), not both"));
    /* errors */
    rlab_result_free(rlab_test_run(h, "train pop data=w name=p", RLAB_OK, NULL));
    rlab_result_free(rlab_test_run(h, "reloop.stream data=w base=p", RLAB_ESTATE,
                                   "reloop.stream: model 'p' (pop) has no sample representation "
                                   "(model/model.h sample_repr): it cannot key an error memory"));
    rlab_result_free(rlab_test_run(h, "reloop.stream data=w base=nope", RLAB_ENOTFOUND,
                                   "reloop.stream: model 'nope' not found"));
    rlab_result_free(rlab_test_run(h, "reloop.stream data=w bits=17", RLAB_EINVAL, NULL));
    rlab_host_free(h);
}

static void t_host_ctr(void)
{
    const char *dir = rlab_test_data_dir();
    if (!dir) {
        rlab_test_skip("RECLAB_DATA not set: no CTR samples");
        return;
    }
    rlab_host *h = new_host();
    char line[1024];
    snprintf(line, sizeof line,
             "reloop.ctr file=%s/ctr/criteo_dac_head999.txt preset=criteo periods=4 dim=4 "
             "epochs=3 seed=1",
             dir);
    rlab_result *r = rlab_test_run(h, line, RLAB_OK, NULL);
    if (r) {
        double a = rlab_test_scalar(r, "mean_auc_memory");
        CHECK_MSG(a > 0.5 && a < 1.0, "criteo: mean_auc_memory %g", a);
        CHECK_EQ_INT(r->ntables, 1);
        if (r->ntables == 1)
            CHECK_EQ_INT(r->tables[0]->nrows, 4);
    }
    rlab_result_free(r);
    snprintf(line, sizeof line,
             "reloop.ctr file=%s/ctr/criteo_dac_head999.txt preset=criteo label=nope", dir);
    rlab_result_free(rlab_test_run(
        h, line, RLAB_EINVAL, "reloop.ctr: samples 'criteo_dac_head999' have no label 'nope'"));
    rlab_host_free(h);
}

static const rlab_test tests[] = {
    {"reloop.mem.1", t_mem_same_key},   {"reloop.mem.2", t_mem_decay},
    {"reloop.mem.3", t_mem_softmax},    {"reloop.mem.4", t_mem_cap},
    {"reloop.mem.5", t_mem_bad},        {"reloop.stream.1", t_stream_count},
    {"reloop.stream.2", t_stream_time}, {"reloop.stream.3", t_stream_neg},
    {"reloop.base.1", t_base_fit},      {"reloop.hook.1", t_hook},
    {"reloop.host.1", t_host_stream},   {"reloop.base.2", t_base_fm},
    {"reloop.host.2", t_host_ctr},      {NULL, NULL},
};

int main(int argc, char **argv) { return rlab_test_main(argc, argv, tests); }
