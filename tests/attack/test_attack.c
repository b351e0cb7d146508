/*
 * tests/attack/test_attack.c: the attack plugin (model extraction).
 *
 * Test organization:
 *   attack.bb.*    the black box on a scripted model (score = -item index): lists by hand,
 *                  masking, truncation, k beyond the catalogue, query counting, the query
 *                  limit, score noise (reproducible for a seed, masking still holds)
 *   attack.gen.*   the data-free generator: determinism for a seed, one query per answered
 *                  prefix, every next item drawn from the prefix's list, the query limit
 *                  cutting generation short (by hand), the synthetic dataset
 *   attack.gate.*  the synthesis gate: features by hand, the logistic fit recovering a
 *                  separable rule, bad input
 *   attack.fs.*    the few-shot generator on scripted victim and sampler: the query budget
 *                  (budget x (len - 1)), the real sequences first with their lists, synthetic
 *                  sequences starting from a real prefix, no sampler = victim lists only,
 *                  determinism; the lists carried into the synthetic dataset row by row
 *   attack.promo.* exposure by hand (rank among unseen items, users holding the target
 *                  skipped), injected sequences (target at odd positions, fillers from the
 *                  surrogate's candidates), the poisoned dataset keeping every index
 *   attack.fid.*   agreement@1/10, exact-match@10 and KL@100 between two scripted models,
 *                  by hand (the core function itself is tested in tests/eval eval.fid.*)
 *   attack.host.*  attack.extract end to end through the host on the demo world: a tiny
 *                  SASRec victim, a tiny budget, a few seconds; argument errors; the few-shot
 *                  attack with each part switched off (same queries); attack.promote
 */
#include "harness_host.h"
#include "attack.h"
#include "data/world.h"
#include "host/host.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PDIR RLAB_ATTACK_PLUGIN_DIR

/* ---- scripted models ---------------------------------------------------------------------- */

/* score(i) = -i, except the overrides of the "swap" variant: item 1 scores +1 (first) and
 * the last item -9.5 (between 9 and 10); the "flip" variant scores +i (the reverse order).
 * impl: NULL = plain, &flip_tag = flip, any other = swap. */
static int flip_tag;

static int script_score_all(const rlab_model *m, const rlab_query *q, int nq, float *out,
                            rlab_err *err)
{
    (void)q;
    (void)err;
    for (int b = 0; b < nq; b++)
        for (int32_t i = 0; i < m->n_items; i++) {
            float s = -(float)i;
            if (m->impl == &flip_tag) {
                out[(size_t)b * (size_t)m->n_items + (size_t)i] = (float)i;
                continue;
            }
            if (m->impl && i == 1)
                s = 1.0f;
            if (m->impl && i == m->n_items - 1)
                s = -9.5f;
            out[(size_t)b * (size_t)m->n_items + (size_t)i] = s;
        }
    return RLAB_OK;
}

static const rlab_model_vt script_vt = {.score_all = script_score_all};

static rlab_model *script_model(int32_t n_items, int swap)
{
    rlab_err err = {0};
    static int tag;
    void *impl = swap == 2 ? (void *)&flip_tag : swap ? (void *)&tag : NULL;
    rlab_model *m = rlab_model_new(&script_vt, impl,
                                   swap == 2 ? "flip"
                                   : swap    ? "swap"
                                             : "plain",
                                   "script", &err);
    CHECK_MSG(m != NULL, "model: %s", err.msg);
    if (m)
        m->n_items = n_items;
    return m;
}

static attack_bb *bb_of(rlab_model *m, int k, int trunc, double noise, int64_t limit, int mask)
{
    attack_bb_opts o = attack_bb_defaults();
    o.k = k;
    o.trunc = trunc;
    o.noise = noise;
    o.limit = limit;
    o.mask_seen = mask;
    rlab_err err = {0};
    attack_bb *bb = attack_bb_new(m, &o, &err);
    CHECK_MSG(bb != NULL, "bb: %s", err.msg);
    return bb;
}

static void check_row(const int32_t *got, const int32_t *want, int w)
{
    for (int j = 0; j < w; j++)
        CHECK_MSG(got[j] == want[j], "position %d: expected %d, got %d", j, want[j], got[j]);
}

/* ---- the black box ------------------------------------------------------------------------ */

static void t_bb_lists(void)
{
    rlab_model *m = script_model(6, 0);
    attack_bb *bb = bb_of(m, 3, 0, 0.0, 0, 1);
    CHECK_EQ_INT(attack_bb_width(bb), 3);
    const int32_t s0[] = {0}, s1[] = {1, 3};
    const int32_t *seqs[] = {s0, s1};
    const int32_t lens[] = {1, 2};
    int32_t out[6];
    rlab_err err = {0};
    CHECK_EQ_INT(attack_bb_query(bb, seqs, lens, 2, out, &err), RLAB_OK);
    check_row(out, (const int32_t[]){1, 2, 3}, 3);     /* 0 masked */
    check_row(out + 3, (const int32_t[]){0, 2, 4}, 3); /* 1 and 3 masked */
    CHECK_EQ_INT(attack_bb_queries(bb), 2);
    CHECK_EQ_INT(attack_bb_remaining(bb) == INT64_MAX, 1);
    attack_bb_free(bb);
    /* no masking: the query's own items come back */
    bb = bb_of(m, 3, 0, 0.0, 0, 0);
    CHECK_EQ_INT(attack_bb_query(bb, seqs, lens, 1, out, &err), RLAB_OK);
    check_row(out, (const int32_t[]){0, 1, 2}, 3);
    attack_bb_free(bb);
    rlab_model_release(m);
}

static void t_bb_trunc(void)
{
    rlab_model *m = script_model(6, 0);
    attack_bb *bb = bb_of(m, 3, 2, 0.0, 0, 1);
    CHECK_EQ_INT(attack_bb_width(bb), 2);
    const int32_t s0[] = {1};
    const int32_t *seqs[] = {s0};
    int32_t out[2], len = 1;
    rlab_err err = {0};
    CHECK_EQ_INT(attack_bb_query(bb, seqs, &len, 1, out, &err), RLAB_OK);
    check_row(out, (const int32_t[]){0, 2}, 2);
    attack_bb_free(bb);
    /* k beyond the catalogue: 6 items, 1 masked, padded with -1 */
    bb = bb_of(m, 10, 0, 0.0, 0, 1);
    CHECK_EQ_INT(attack_bb_width(bb), 6);
    int32_t o6[6];
    CHECK_EQ_INT(attack_bb_query(bb, seqs, &len, 1, o6, &err), RLAB_OK);
    check_row(o6, (const int32_t[]){0, 2, 3, 4, 5, -1}, 6);
    attack_bb_free(bb);
    /* bad options */
    attack_bb_opts o = attack_bb_defaults();
    o.k = 3;
    o.trunc = 4;
    CHECK(attack_bb_new(m, &o, &err) == NULL && err.code == RLAB_EINVAL);
    rlab_model_release(m);
}

static void t_bb_limit(void)
{
    rlab_model *m = script_model(6, 0);
    attack_bb *bb = bb_of(m, 2, 0, 0.0, 3, 1);
    const int32_t s0[] = {0};
    const int32_t *seqs[] = {s0, s0};
    const int32_t lens[] = {1, 1};
    int32_t out[4];
    rlab_err err = {0};
    CHECK_EQ_INT(attack_bb_query(bb, seqs, lens, 2, out, &err), RLAB_OK);
    CHECK_EQ_INT(attack_bb_remaining(bb), 1);
    /* two more than allowed: refused, nothing counted */
    CHECK_EQ_INT(attack_bb_query(bb, seqs, lens, 2, out, &err), RLAB_ESTATE);
    CHECK_MSG(strstr(err.msg, "query limit") != NULL, "message: %s", err.msg);
    CHECK_EQ_INT(attack_bb_queries(bb), 2);
    CHECK_EQ_INT(attack_bb_query(bb, seqs, lens, 1, out, &err), RLAB_OK);
    CHECK_EQ_INT(attack_bb_queries(bb), 3);
    CHECK_EQ_INT(attack_bb_remaining(bb), 0);
    CHECK_EQ_INT(attack_bb_query(bb, seqs, lens, 1, out, &err), RLAB_ESTATE);
    attack_bb_free(bb);
    rlab_model_release(m);
}

static void t_bb_noise(void)
{
    rlab_model *m = script_model(40, 0);
    enum { NQ = 20, K = 10 };
    int32_t s[NQ];
    const int32_t *seqs[NQ];
    int32_t lens[NQ];
    for (int q = 0; q < NQ; q++) {
        s[q] = q;
        seqs[q] = &s[q];
        lens[q] = 1;
    }
    int32_t a[NQ * K], b[NQ * K], c[NQ * K];
    rlab_err err = {0};
    attack_bb *bb = bb_of(m, K, 0, 0.0, 0, 1);
    CHECK_EQ_INT(attack_bb_query(bb, seqs, lens, NQ, a, &err), RLAB_OK);
    attack_bb_free(bb);
    /* noise of one score sd (the scores -0..-39 have sd 11.5): lists change, same seed ->
     * same lists, the query's item never returned */
    bb = bb_of(m, K, 0, 1.0, 0, 1);
    CHECK_EQ_INT(attack_bb_query(bb, seqs, lens, NQ, b, &err), RLAB_OK);
    attack_bb_free(bb);
    bb = bb_of(m, K, 0, 1.0, 0, 1);
    CHECK_EQ_INT(attack_bb_query(bb, seqs, lens, NQ, c, &err), RLAB_OK);
    attack_bb_free(bb);
    CHECK(memcmp(a, b, sizeof a) != 0);
    CHECK(memcmp(b, c, sizeof b) == 0);
    for (int q = 0; q < NQ; q++)
        for (int j = 0; j < K; j++)
            CHECK(b[q * K + j] != q && b[q * K + j] >= 0 && b[q * K + j] < 40);
    rlab_model_release(m);
}

/* ---- the data-free generator -------------------------------------------------------------- */

static void gen(rlab_model *m, uint64_t seed, int64_t n, int len, int batch, int64_t limit,
                attack_synth *s, int64_t *queries)
{
    attack_bb *bb = bb_of(m, 5, 0, 0.0, limit, 1);
    attack_gen_opts o = attack_gen_defaults();
    o.n_seqs = n;
    o.len = len;
    o.batch = batch;
    o.seed = seed;
    o.keep_lists = 1;
    rlab_err err = {0};
    CHECK_MSG(attack_gen_datafree(bb, &o, NULL, NULL, s, &err) == RLAB_OK, "gen: %s", err.msg);
    *queries = attack_bb_queries(bb);
    attack_bb_free(bb);
}

static int synth_equal(const attack_synth *a, const attack_synth *b)
{
    if (a->n != b->n || a->off[a->n] != b->off[b->n] || a->w != b->w)
        return 0;
    return !memcmp(a->off, b->off, (size_t)(a->n + 1) * sizeof *a->off) &&
           !memcmp(a->items, b->items, (size_t)a->off[a->n] * sizeof *a->items) &&
           !memcmp(a->lists, b->lists,
                   (size_t)(a->off[a->n] - a->n) * (size_t)a->w * sizeof *a->lists);
}

static void t_gen_determinism(void)
{
    rlab_model *m = script_model(30, 0);
    attack_synth a = {0}, b = {0}, c = {0};
    int64_t qa = 0, qb = 0, qc = 0;
    gen(m, 7, 12, 6, 5, 0, &a, &qa);
    gen(m, 7, 12, 6, 5, 0, &b, &qb);
    gen(m, 8, 12, 6, 5, 0, &c, &qc);
    CHECK(synth_equal(&a, &b));
    CHECK(!synth_equal(&a, &c));
    CHECK_EQ_INT(a.n, 12);
    CHECK_EQ_INT(qa, 12 * 5); /* one query per answered prefix */
    CHECK_EQ_INT(a.w, 5);
    for (int64_t s = 0; s < a.n; s++) {
        CHECK_EQ_INT(a.off[s + 1] - a.off[s], 6);
        for (int64_t t = 1; t < 6; t++) {
            int32_t x = a.items[a.off[s] + t];
            const int32_t *lst = a.lists + (size_t)(a.off[s] - s + t - 1) * (size_t)a.w;
            int in = 0;
            for (int j = 0; j < a.w; j++)
                in |= lst[j] == x;
            CHECK_MSG(in, "sequence %lld step %lld: item %d not in the prefix's list", (long long)s,
                      (long long)t, x);
            for (int64_t p = 0; p < t; p++) /* masked: never a repeat */
                CHECK(a.items[a.off[s] + p] != x);
        }
    }
    attack_synth_clear(&a);
    attack_synth_clear(&b);
    attack_synth_clear(&c);
    rlab_model_release(m);
}

static void t_gen_limit(void)
{
    /* 4 sequences of 5 in batches of 2 with a limit of 10 queries: the first batch uses
     * 2 x 4 = 8; the second answers step 1 (2 queries) and stops: lengths 5, 5, 2, 2 */
    rlab_model *m = script_model(30, 0);
    attack_synth a = {0};
    int64_t q = 0;
    gen(m, 3, 4, 5, 2, 10, &a, &q);
    CHECK_EQ_INT(q, 10);
    CHECK_EQ_INT(a.n, 4);
    static const int want[4] = {5, 5, 2, 2};
    for (int s = 0; s < 4 && s < a.n; s++)
        CHECK_EQ_INT(a.off[s + 1] - a.off[s], want[s]);
    /* the synthetic dataset: the catalogue copied in order, one user per sequence */
    rlab_vocab items;
    rlab_vocab_init(&items);
    for (int i = 0; i < 30; i++) {
        char nm[16];
        int n = snprintf(nm, sizeof nm, "it%d", i);
        rlab_vocab_add(&items, nm, (size_t)n);
    }
    rlab_err err = {0};
    rlab_dataset *ds = attack_synth_dataset(&a, "syn", &items, &err);
    CHECK_MSG(ds != NULL, "dataset: %s", err.msg);
    if (ds) {
        CHECK_EQ_INT(ds->items.n, 30);
        CHECK(strcmp(rlab_vocab_name(&ds->items, 17), "it17") == 0);
        CHECK_EQ_INT(ds->users.n, 4);
        CHECK_EQ_INT((int64_t)ds->inter.n, 14);
        CHECK_EQ_INT(ds->inter.item[3], a.items[3]);
        CHECK_EQ_INT(ds->inter.ts[6], 1); /* second item of the second sequence */
    }
    rlab_dataset_free(ds);
    rlab_vocab_clear(&items);
    attack_synth_clear(&a);
    rlab_model_release(m);
}

/* ---- the gate ----------------------------------------------------------------------------- */

static void t_gate(void)
{
    /* features by hand: p over 12 items, the list {2, 0, 11}, step 3 of 10 */
    float p[12] = {0.1f, 0.0f, 0.3f, 0.05f, 0.05f, 0.1f, 0.1f, 0.1f, 0.05f, 0.05f, 0.05f, 0.05f};
    const int32_t list[3] = {2, 0, 11};
    double f[ATTACK_GATE_NF];
    attack_gate_features(p, 12, list, 3, 3, 10, f);
    CHECK_NEAR(f[0], 1.0, 1e-12);
    CHECK_NEAR(f[1], 0.45, 1e-6);
    CHECK_NEAR(f[2], 0.3, 1e-6);
    CHECK_NEAR(f[3], 0.3, 1e-12);
    /* the sampler's top-10 (ties to the lower index) holds 2, 0 but not 11: 2 of 10 */
    CHECK_NEAR(f[4], 0.2, 1e-12);
    /* a separable rule: y = 1 iff f1 > 0.5 */
    enum { n = 200 };
    double *F = rlab_malloc(n * ATTACK_GATE_NF * sizeof *F);
    uint8_t y[n];
    rlab_rng rng;
    rlab_rng_seed(&rng, 4);
    for (int e = 0; e < n; e++) {
        double *fe = F + e * ATTACK_GATE_NF;
        fe[0] = 1.0;
        for (int i = 1; i < ATTACK_GATE_NF; i++)
            fe[i] = (double)rlab_rng_uniform(&rng);
        y[e] = fe[1] > 0.5;
    }
    double wt[ATTACK_GATE_NF];
    rlab_err err = {0};
    CHECK_EQ_INT(attack_gate_fit(F, y, n, 2000, 2.0, 0.0, wt, &err), RLAB_OK);
    int right = 0;
    for (int e = 0; e < n; e++)
        right += (attack_gate_prob(wt, F + e * ATTACK_GATE_NF) > 0.5) == y[e];
    CHECK_MSG(right >= 190, "%d of %d right", right, n);
    CHECK(wt[1] > 0.0 && fabs(wt[1]) > 3.0 * fabs(wt[2]));
    CHECK_EQ_INT(attack_gate_fit(F, y, 0, 10, 1.0, 0.0, wt, &err), RLAB_EINVAL);
    CHECK_EQ_INT(attack_gate_fit(F, y, n, 10, 0.0, 0.0, wt, &err), RLAB_EINVAL);
    rlab_free(F);
}

/* ---- the few-shot generator ---------------------------------------------------------------- */

static int fs_gen_list(rlab_model *victim, rlab_model *sampler, int use_sampler, int use_gate,
                       int on_list, uint64_t seed, attack_synth *s, attack_fs_stats *st);

static int fs_gen(rlab_model *victim, rlab_model *sampler, int use_sampler, int use_gate,
                  uint64_t seed, attack_synth *s, attack_fs_stats *st)
{
    return fs_gen_list(victim, sampler, use_sampler, use_gate, 0, seed, s, st);
}

static int fs_gen_list(rlab_model *victim, rlab_model *sampler, int use_sampler, int use_gate,
                       int on_list, uint64_t seed, attack_synth *s, attack_fs_stats *st)
{
    attack_bb *bb = bb_of(victim, 5, 0, 0.0, 0, 1);
    attack_gen_opts o = attack_gen_defaults();
    o.n_seqs = 10;
    o.len = 6; /* 50 queries */
    o.batch = 4;
    o.seed = seed;
    attack_fs_opts fo = attack_fs_defaults();
    fo.use_sampler = use_sampler;
    fo.use_gate = use_gate;
    fo.gate_hold = 0.5;
    fo.sampler_list = on_list;
    static const int32_t r0[] = {3, 7, 9, 12}, r1[] = {20, 21}, r2[] = {5, 4, 3, 2, 1, 0, 8, 6};
    const int32_t *real[] = {r0, r1, r2};
    const int32_t lens[] = {4, 2, 8};
    rlab_err err = {0};
    int rc = attack_gen_fewshot(bb, &o, &fo, real, lens, 3, use_sampler ? sampler : NULL, NULL,
                                NULL, s, st, &err);
    CHECK_MSG(rc == RLAB_OK, "few-shot: %s", err.msg);
    CHECK_EQ_INT(attack_bb_queries(bb), st->queries);
    attack_bb_free(bb);
    return rc;
}

static void t_fewshot(void)
{
    rlab_model *victim = script_model(30, 0), *sampler = script_model(30, 1);
    attack_synth a = {0}, b = {0}, c = {0};
    attack_fs_stats sa, sb, sc;
    fs_gen(victim, sampler, 1, 1, 5, &a, &sa);
    fs_gen(victim, sampler, 1, 1, 5, &b, &sb);
    CHECK(synth_equal(&a, &b));
    CHECK_EQ_INT(sa.queries, 10 * 5); /* the budget: 10 sequences of 6 */
    CHECK_EQ_INT(sa.real_seqs, 3);
    /* real prefixes: 3 + 1 + 5 (r2 cut to its last 6 items) = 9 queries; the gate learns from
     * the last ceil(0.5 * 3) = 2 real sequences: 1 + 5 prefixes */
    CHECK_EQ_INT(sa.gate_examples, 6);
    CHECK_EQ_INT(a.w, 5);
    /* the real sequences come first, whole, with the victim's lists (score -i, prefix masked) */
    CHECK_EQ_INT(a.off[1], 4);
    check_row(a.items, (const int32_t[]){3, 7, 9, 12}, 4);
    check_row(a.lists, (const int32_t[]){0, 1, 2, 4, 5}, 5);         /* after {3} */
    check_row(a.lists + 2 * 5, (const int32_t[]){0, 1, 2, 4, 5}, 5); /* after {3, 7, 9} */
    CHECK_EQ_INT(a.off[3] - a.off[2], 6);
    check_row(a.items + a.off[2], (const int32_t[]){3, 2, 1, 0, 8, 6}, 6);
    /* then synthetic sequences, each starting with a prefix of a real one */
    int64_t items = 0;
    for (int64_t s = 3; s < a.n; s++) {
        const int32_t *x = a.items + a.off[s];
        CHECK(x[0] == 3 || x[0] == 20 || x[0] == 5);
        items += a.off[s + 1] - a.off[s] - 1;
    }
    CHECK_EQ_INT(items + 9, 50); /* every query answers one prefix of the output */
    /* no sampler: every synthetic step beyond the real prefix is in the victim's list */
    fs_gen(victim, sampler, 0, 1, 5, &c, &sc);
    CHECK_EQ_INT(sc.queries, 50);
    CHECK_NEAR(sc.victim_share, 1.0, 1e-12);
    CHECK_EQ_INT(sc.gate_examples, 0);
    /* the sampler ("swap": item 1 first, then 0, 2, 3...) shows when the gate lets it */
    CHECK(sa.victim_share < 1.0);
    /* the lists ride along into the dataset: row j answers the prefix ending at row j */
    rlab_vocab iv;
    rlab_vocab_init(&iv);
    for (int i = 0; i < 30; i++) {
        char nm[16];
        int n = snprintf(nm, sizeof nm, "it%d", i);
        rlab_vocab_add(&iv, nm, (size_t)n);
    }
    rlab_err err = {0};
    rlab_dataset *ds = attack_synth_dataset(&a, "fs", &iv, &err);
    CHECK_MSG(ds != NULL, "dataset: %s", err.msg);
    if (ds) {
        CHECK_EQ_INT(ds->lists.w, 5);
        check_row(ds->lists.items + 2 * 5, a.lists + 2 * 5, 5); /* user 0, row 2 */
        check_row(ds->lists.items + 3 * 5, (const int32_t[]){-1, -1, -1, -1, -1}, 5);
        check_row(ds->lists.items + 4 * 5, a.lists + 3 * 5, 5); /* user 1, row 0 */
    }
    rlab_dataset_free(ds);
    rlab_vocab_clear(&iv);
    attack_synth_clear(&a);
    attack_synth_clear(&b);
    attack_synth_clear(&c);
    rlab_model_release(victim);
    rlab_model_release(sampler);
}

/* 1 when x[0..n) is the start of one of fs_gen's real sequences */
static int real_start(const int32_t *x, int n)
{
    static const int32_t r0[] = {3, 7, 9, 12}, r1[] = {20, 21}, r2[] = {5, 4, 3, 2, 1, 0, 8, 6};
    const int32_t *real[] = {r0, r1, r2};
    const int lens[] = {4, 2, 8};
    for (int r = 0; r < 3; r++)
        if (n <= lens[r] && memcmp(x, real[r], (size_t)n * sizeof *x) == 0)
            return 1;
    return 0;
}

/* Steps of the synthetic sequences of a (past their real prefix) whose item is not in the
 * list answered for the prefix before it; *on gets those in the list. */
static int off_list_steps(const attack_synth *a, int64_t n_real, int *on)
{
    int off = 0;
    *on = 0;
    for (int64_t q = n_real; q < a->n; q++) {
        const int32_t *x = a->items + a->off[q];
        const int n = (int)(a->off[q + 1] - a->off[q]);
        for (int t = 1; t < n; t++) {
            if (real_start(x, t + 1))
                continue; /* still the real prefix */
            const int32_t *row = a->lists + (size_t)(a->off[q] - q + t - 1) * (size_t)a->w;
            int in = 0;
            for (int j = 0; j < a->w; j++)
                in |= row[j] == x[t];
            *on += in;
            off += !in;
        }
    }
    return off;
}

/* sampler_list: a sampler step draws only among the victim's listed items. The "flip" sampler
 * prefers the highest ids, which the victim (score -i, lists of 5) never lists: without the
 * option its steps leave the list, with it every step past the real prefix is in the list
 * answered for the prefix before it. */
static void t_fewshot_on_list(void)
{
    rlab_model *victim = script_model(30, 0), *sampler = script_model(30, 2);
    attack_synth a = {0}, b = {0}, f = {0}, o = {0};
    attack_fs_stats sa, sb, sf, so;
    int on = 0, on_o = 0;
    /* fixed 50/50 mix (no gate): about half of the steps are the sampler's */
    fs_gen_list(victim, sampler, 1, 0, 0, 9, &o, &so);
    CHECK_MSG(off_list_steps(&o, so.real_seqs, &on_o) > 0, "the flip sampler left the list");
    CHECK(so.sampler_mass >= 0.0 && so.sampler_mass < 1e-3); /* mass on ids <= 5 of 0..29 */
    fs_gen_list(victim, sampler, 1, 0, 1, 9, &f, &sf);
    CHECK_EQ_INT(sf.queries, 50);
    CHECK(sf.victim_share > 0.2 && sf.victim_share < 0.8);
    CHECK_EQ_INT(off_list_steps(&f, sf.real_seqs, &on), 0);
    CHECK(on > 0);
    CHECK_NEAR(sf.sampler_mass, so.sampler_mass, 1e-3);
    /* with the gate: deterministic, and on the list too */
    fs_gen_list(victim, sampler, 1, 1, 1, 9, &a, &sa);
    fs_gen_list(victim, sampler, 1, 1, 1, 9, &b, &sb);
    CHECK(synth_equal(&a, &b));
    CHECK_EQ_INT(off_list_steps(&a, sa.real_seqs, &on), 0);
    attack_synth_clear(&a);
    attack_synth_clear(&b);
    attack_synth_clear(&f);
    attack_synth_clear(&o);
    rlab_model_release(victim);
    rlab_model_release(sampler);
}

/* ---- the promotion attack ----------------------------------------------------------------- */

static void t_promo(void)
{
    rlab_model *m = script_model(30, 0); /* score -i: item i ranks i-th */
    static const int32_t h0[] = {0}, h1[] = {5, 1, 2}, h2[] = {4, 9};
    const int32_t *hs[] = {h0, h1, h2};
    const int32_t hl[] = {1, 3, 2};
    attack_exposure_stats e;
    rlab_err err = {0};
    /* target 4: user 0 ranks it 4th (1, 2, 3 above), user 1 3rd (0, 3 above), user 2 holds it */
    CHECK_EQ_INT(attack_exposure(m, hs, hl, 3, 4, &e, &err), RLAB_OK);
    CHECK_EQ_INT(e.users, 2);
    CHECK_EQ_INT(e.in_top10, 2);
    CHECK_NEAR(e.mean_rank, 3.5, 1e-12);
    /* target 20: rank 20 for user 0 (1..19 above), 18 for user 1 (0..19 but 1, 2, 5), 19 for
     * user 2 (0..19 but 4, 9) */
    CHECK_EQ_INT(attack_exposure(m, hs, hl, 3, 20, &e, &err), RLAB_OK);
    CHECK_EQ_INT(e.in_top10, 0);
    CHECK_NEAR(e.mean_rank, (20.0 + 18.0 + 19.0) / 3.0, 1e-12);
    CHECK_EQ_INT(attack_exposure(m, hs, hl, 3, 30, &e, &err), RLAB_EINVAL);
    /* injected sequences: target at odd positions; with the surrogate, fillers are among its
     * top-cand for the prefix (score -i: the lowest unused indices other than the target) */
    attack_synth a = {0};
    CHECK_EQ_INT(attack_promo_sequences(m, 30, 2, 2, 7, 3, ATTACK_PROMO_SURROGATE, 1, &a, &err),
                 RLAB_OK);
    CHECK_EQ_INT(a.n, 2);
    for (int64_t f = 0; f < a.n; f++) {
        const int32_t *x = a.items + a.off[f];
        CHECK_EQ_INT(a.off[f + 1] - a.off[f], 7);
        for (int t = 1; t < 7; t += 2)
            CHECK_EQ_INT(x[t], 2);
        for (int t = 2; t < 7; t += 2) {
            CHECK(x[t] != 2);
            int lower = 0; /* at most 3 candidates: fewer than 3 unused items rank above it */
            for (int32_t i = 0; i < x[t]; i++) {
                int used = i == 2;
                for (int j = 0; j < t; j++)
                    used |= x[j] == i;
                lower += !used;
            }
            CHECK_MSG(lower < 3, "filler %d at %d: %d unused items rank above", x[t], t, lower);
        }
    }
    /* the poisoned dataset: every index kept, the fakes appended after every timestamp */
    rlab_dataset *ds = rlab_dataset_new("d", &err);
    for (int i = 0; i < 30; i++) {
        char nm[16];
        int n = snprintf(nm, sizeof nm, "it%d", i);
        rlab_vocab_add(&ds->items, nm, (size_t)n);
    }
    rlab_vocab_add(&ds->users, "alice", 5);
    rlab_inter_push(&ds->inter, 0, 3, 100, 1.0f, NULL);
    rlab_inter_push(&ds->inter, 0, 4, 200, 1.0f, NULL);
    rlab_dataset *p = attack_poisoned_dataset(ds, &a, "p", &err);
    CHECK_MSG(p != NULL, "poisoned: %s", err.msg);
    if (p) {
        CHECK_EQ_INT(p->items.n, 30);
        CHECK_EQ_INT(p->users.n, 3);
        CHECK(strcmp(rlab_vocab_name(&p->users, 1), "fake0") == 0);
        CHECK_EQ_INT((int64_t)p->inter.n, 2 + 14);
        CHECK_EQ_INT(p->inter.item[2], a.items[0]);
        CHECK_EQ_INT(p->inter.ts[2], 201);
    }
    rlab_dataset_free(p);
    rlab_dataset_free(ds);
    attack_synth_clear(&a);
    rlab_model_release(m);
}

/* ---- fidelity by hand --------------------------------------------------------------------- */

static void t_fid(void)
{
    /* 12 items. victim: 0 > 1 > ... > 11. surrogate ("swap"): 1 > 0 > 2 > ... > 9 > 11 > 10.
     *   query {}  : v 0..9              s 1,0,2..9           agr@1 0  agr@10 1.0  em 8/10
     *   query {5} : v 0-4,6-10          s 1,0,2-4,6-9,11     agr@1 0  agr@10 0.9  em 7/10
     *   query {1} : v 0,2-10            s 0,2-9,11           agr@1 1  agr@10 0.9  em 9/10
     * means: agr@1 1/3, agr@10 2.8/3, em@10 2.4/3 = 0.8 */
    rlab_model *v = script_model(12, 0), *s = script_model(12, 1);
    const int32_t q5[] = {5}, q1[] = {1};
    const int32_t *seqs[] = {NULL, q5, q1};
    const int32_t lens[] = {0, 1, 1};
    attack_fidelity f;
    rlab_err err = {0};
    CHECK_EQ_INT(attack_fidelity_eval(v, s, seqs, lens, 3, &f, &err), RLAB_OK);
    CHECK_EQ_INT(f.n_users, 3);
    CHECK_NEAR(f.agr1, 1.0 / 3.0, 1e-12);
    CHECK_NEAR(f.agr10, 2.8 / 3.0, 1e-12);
    CHECK_NEAR(f.em10, 0.8, 1e-12);
    CHECK(f.kl100 > 0.0);
    /* a model against itself: full agreement, KL 0 */
    CHECK_EQ_INT(attack_fidelity_eval(v, v, seqs, lens, 3, &f, &err), RLAB_OK);
    CHECK_NEAR(f.agr1, 1.0, 1e-12);
    CHECK_NEAR(f.agr10, 1.0, 1e-12);
    CHECK_NEAR(f.em10, 1.0, 1e-12);
    CHECK_NEAR(f.kl100, 0.0, 1e-9);
    rlab_model_release(v);
    rlab_model_release(s);
}

/* ---- end to end through the host ---------------------------------------------------------- */

static rlab_host *demo_host(void)
{
    rlab_host *h = rlab_test_host(PDIR, "reclab_seqrec.so", "reclab_attack.so");
    rlab_world *w = NULL;
    rlab_dataset *ds = NULL;
    rlab_err err = {0};
    CHECK_MSG(rlab_world_demo(&w, &ds, &err) == RLAB_OK, "demo: %s", err.msg);
    rlab_world_free(w);
    CHECK_MSG(rlab_host_add_dataset(h, ds, &err) == RLAB_OK, "add: %s", err.msg);
    rlab_result_free(rlab_test_run(
        h, "train sasrec data=demo name=victim epochs=1 dim=8 maxlen=10 seed=1", RLAB_OK, NULL));
    return h;
}

static void t_host_extract(void)
{
    rlab_host *h = demo_host();
    rlab_result *r = rlab_test_run(h,
                                   "attack.extract victim=victim data=demo budget=16 len=6 "
                                   "epochs=1 train=\"dim=8 maxlen=10\" eval_users=200 seed=3",
                                   RLAB_OK, NULL);
    CHECK_EQ_INT((int64_t)rlab_test_scalar(r, "queries"), 16 * 5);
    CHECK_EQ_INT((int64_t)rlab_test_scalar(r, "fidelity.users"), 200);
    static const char *const unit[] = {"fidelity.agr@1",       "fidelity.agr@10",
                                       "fidelity.em@10",       "surrogate.ndcg@10",
                                       "surrogate.hr@10_s100", "victim.ndcg@10"};
    for (int i = 0; i < 6; i++) {
        double x = rlab_test_scalar(r, unit[i]);
        CHECK_MSG(x >= 0.0 && x <= 1.0, "%s = %g", unit[i], x);
    }
    CHECK(rlab_test_scalar(r, "fidelity.kl@100") >= 0.0);
    rlab_result_free(r);
    rlab_model *sur = rlab_models_get(rlab_host_models(h), "victim.sur");
    CHECK(sur != NULL);
    rlab_dataset *syn = rlab_host_dataset_get(h, "victim.sur.syn");
    CHECK(syn != NULL);
    if (sur && syn) {
        CHECK_EQ_INT(syn->users.n, 16);
        CHECK_EQ_INT((int64_t)syn->inter.n, 16 * 6);
        CHECK_EQ_INT(sur->n_items, syn->items.n);
    }
    rlab_host_dataset_release(h, syn);
    rlab_model_release(sur);
    /* the same seed gives the same numbers */
    r = rlab_test_run(h,
                      "attack.extract victim=victim data=demo budget=16 len=6 name=again "
                      "epochs=1 train=\"dim=8 maxlen=10\" eval_users=200 seed=3",
                      RLAB_OK, NULL);
    rlab_result *r0 = rlab_test_run(h,
                                    "attack.extract victim=victim data=demo budget=16 len=6 "
                                    "name=again2 epochs=1 train=\"dim=8 maxlen=10\" "
                                    "eval_users=200 seed=3",
                                    RLAB_OK, NULL);
    CHECK_NEAR(rlab_test_scalar(r, "fidelity.agr@10"), rlab_test_scalar(r0, "fidelity.agr@10"),
               1e-12);
    rlab_result_free(r);
    rlab_result_free(r0);
    rlab_host_free(h);
}

static void t_host_defences(void)
{
    rlab_host *h = demo_host();
    /* limit 20: step 1 answers all 16 prefixes, step 2 would need 16 more: every sequence
     * has 2 items and 16 queries were used */
    rlab_result *r = rlab_test_run(h,
                                   "attack.extract victim=victim data=demo budget=16 len=6 "
                                   "epochs=1 train=\"dim=8 maxlen=10\" eval_users=50 limit=20 "
                                   "trunc=10 noise=0.5 eval_victim=false",
                                   RLAB_OK, NULL);
    CHECK_EQ_INT((int64_t)rlab_test_scalar(r, "queries"), 16);
    rlab_result_free(r);
    rlab_dataset *syn = rlab_host_dataset_get(h, "victim.sur.syn");
    CHECK(syn != NULL && syn->inter.n == 32);
    rlab_host_dataset_release(h, syn);
    /* argument errors */
    rlab_result_free(rlab_test_run(h, "attack.extract victim=victim data=demo kind=nosuch",
                                   RLAB_ENOTFOUND, NULL));
    rlab_result_free(
        rlab_test_run(h, "attack.extract victim=nosuch data=demo", RLAB_ENOTFOUND, NULL));
    rlab_host_free(h);
}

/* The few-shot attack end to end, and each part switched off: the same number of queries. */
static void t_host_fewshot(void)
{
    rlab_host *h = demo_host();
    static const char *const sw[] = {"repair=1", "repair=1 sampler=false", "repair=1 gate=false",
                                     "repair=0", "repair=1 sampler_list=true"};
    for (int i = 0; i < 5; i++) {
        char line[512];
        snprintf(line, sizeof line,
                 "attack.extract victim=victim data=demo budget=100 len=6 epochs=1 "
                 "train=\"dim=8 maxlen=10\" eval_users=100 eval_victim=false fewshot=0.05 "
                 "sampler_epochs=1 sampler_train=\"dim=8\" name=fs%d seed=3 %s",
                 i, sw[i]);
        rlab_result *r = rlab_test_run(h, line, RLAB_OK, NULL);
        CHECK_EQ_INT((int64_t)rlab_test_scalar(r, "queries"), 100 * 5);
        CHECK_EQ_INT((int64_t)rlab_test_scalar(r, "attack.fewshot_real"), 50);
        const double agr = rlab_test_scalar(r, "fidelity.agr@10");
        CHECK_MSG(agr >= 0.0 && agr <= 1.0, "agr@10 %g", agr);
        if (i == 1)
            CHECK_NEAR(rlab_test_scalar(r, "attack.victim_share"), 1.0, 1e-12);
        const double mass = rlab_test_scalar(r, "attack.sampler_mass");
        if (i == 1)
            CHECK_NEAR(mass, 0.0, 1e-12); /* no sampler */
        else
            CHECK_MSG(mass > 0.0 && mass <= 1.0 + 1e-9, "sampler mass %g", mass);
        rlab_result_free(r);
    }
    /* the sampler was trained and registered (first run) */
    rlab_model *smp = rlab_models_get(rlab_host_models(h), "fs0.smp");
    CHECK(smp != NULL);
    rlab_model_release(smp);
    rlab_result_free(rlab_test_run(h,
                                   "attack.extract victim=victim data=demo budget=5 len=6 "
                                   "fewshot=0.0001 epochs=1",
                                   RLAB_EINVAL,
                                   "attack.extract: fewshot=0.0001 of 1000 users leaves 0 "
                                   "sequences"));
    rlab_host_free(h);
}

/* attack.promote end to end: both methods run, the exposure is a share and a rank. */
static void t_host_promote(void)
{
    rlab_host *h = demo_host();
    rlab_result_free(rlab_test_run(h,
                                   "attack.extract victim=victim data=demo budget=16 len=6 "
                                   "epochs=1 train=\"dim=8 maxlen=10\" eval_users=50 "
                                   "eval_victim=false",
                                   RLAB_OK, NULL));
    static const char *const how[] = {"surrogate=victim.sur", "method=random"};
    for (int i = 0; i < 2; i++) {
        char line[320];
        snprintf(line, sizeof line,
                 "attack.promote victim=victim data=demo %s n_fake=5 len=6 epochs=1 "
                 "train=\"dim=8 maxlen=10\" eval_users=100 seed=1",
                 how[i]);
        rlab_result *r = rlab_test_run(h, line, RLAB_OK, NULL);
        const double b = rlab_test_scalar(r, "before.hit@10"),
                     a = rlab_test_scalar(r, "after.hit@10");
        CHECK(b >= 0.0 && b <= 1.0 && a >= 0.0 && a <= 1.0);
        CHECK(rlab_test_scalar(r, "after.mean_rank") >= 1.0);
        CHECK_EQ_INT((int64_t)rlab_test_scalar(r, "attack.fake_users"), 5);
        rlab_result_free(r);
    }
    rlab_result_free(rlab_test_run(h, "attack.promote victim=victim data=demo", RLAB_EINVAL,
                                   "attack.promote: method=surrogate needs surrogate="));
    rlab_host_free(h);
}

static const rlab_test tests[] = {{"attack.bb.1", t_bb_lists},
                                  {"attack.bb.2", t_bb_trunc},
                                  {"attack.bb.3", t_bb_limit},
                                  {"attack.bb.4", t_bb_noise},
                                  {"attack.gen.1", t_gen_determinism},
                                  {"attack.gen.2", t_gen_limit},
                                  {"attack.gate.1", t_gate},
                                  {"attack.fs.1", t_fewshot},
                                  {"attack.fs.2", t_fewshot_on_list},
                                  {"attack.promo.1", t_promo},
                                  {"attack.fid.1", t_fid},
                                  {"attack.host.1", t_host_extract},
                                  {"attack.host.2", t_host_defences},
                                  {"attack.host.3", t_host_fewshot},
                                  {"attack.host.4", t_host_promote},
                                  {NULL, NULL}};

int main(int argc, char **argv) { return rlab_test_main(argc, argv, tests); }
