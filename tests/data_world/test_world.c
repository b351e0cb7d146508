/*
 * Test organization: data.world.* the synthetic world generator and the demo world.
 *   .1 determinism + the recorded checksum constant (regression guard) + export bytes
 *   .2 counts, timestamps, features          .3 heavy-tailed popularity
 *   .4 interactions follow the true taste    .5 first-order transitions are learnable
 *   .6 homophily in the follower graph       .7 drift changes tastes and behaviour
 *   .8 config errors                         .9 allocation failures clean up
 */
#include "data/world.h"
#include "harness.h"
#include "local_seqs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The checksum of rlab_world_demo. It changes only when the generator changes on purpose;
 * then update it here AND say so in data/README.md (the demo world's numbers move). */
#define DEMO_CHECKSUM 0xf936e917e40020b3ull

static rlab_world *g_w;
static rlab_dataset *g_ds;
static rlab_seqs g_seqs;

static void demo(void)
{
    if (g_w)
        return;
    rlab_err err = {0};
    double t0 = rlab_now();
    int rc = rlab_world_demo(&g_w, &g_ds, &err);
    double dt = rlab_now() - t0;
    CHECK_MSG(rc == RLAB_OK, "demo: %s", err.msg);
    if (rc != RLAB_OK)
        return;
    printf("  demo world generated in %.3f s: %d users, %d items, %zu interactions\n", dt,
           rlab_vocab_size(&g_ds->users), rlab_vocab_size(&g_ds->items), g_ds->inter.n);
    g_seqs = local_seqs_from_inter(&g_ds->inter, g_w->n_users);
}

static char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)sz + 1);
    *n = fread(b, 1, (size_t)sz, f);
    b[*n] = 0;
    fclose(f);
    return b;
}

static void t_determinism(void)
{
    demo();
    if (!g_w)
        return;
    rlab_err err = {0};
    rlab_world *w2;
    rlab_dataset *ds2;
    CHECK_EQ_INT(rlab_world_demo(&w2, &ds2, &err), RLAB_OK);
    uint64_t h1 = rlab_world_checksum(g_w, g_ds), h2 = rlab_world_checksum(w2, ds2);
    printf("  demo checksum 0x%016llx\n", (unsigned long long)h1);
    CHECK(h1 == h2);
    CHECK_MSG(h1 == DEMO_CHECKSUM, "demo checksum 0x%016llx != recorded 0x%016llx",
              (unsigned long long)h1, (unsigned long long)DEMO_CHECKSUM);
    /* byte-identical export */
    char d1[512], d2[512];
    snprintf(d1, sizeof d1, "%s", rlab_test_tmpdir());
    CHECK_EQ_INT(rlab_world_write_recbole(g_w, g_ds, d1, "a", &err), RLAB_OK);
    CHECK_EQ_INT(rlab_world_write_recbole(w2, ds2, d1, "b", &err), RLAB_OK);
    static const char *const ext[] = {"inter", "item", "user", "net"};
    for (int k = 0; k < 4; k++) {
        size_t n1 = 0, n2 = 0;
        snprintf(d1, sizeof d1, "%s/a.%s", rlab_test_tmpdir(), ext[k]);
        snprintf(d2, sizeof d2, "%s/b.%s", rlab_test_tmpdir(), ext[k]);
        char *b1 = slurp(d1, &n1), *b2 = slurp(d2, &n2);
        CHECK_MSG(b1 && b2 && n1 == n2 && memcmp(b1, b2, n1) == 0, "%s differs", ext[k]);
        if (k == 0 && b1) { /* header + one line per interaction */
            size_t lines = 0;
            for (size_t i = 0; i < n1; i++)
                lines += b1[i] == '\n';
            CHECK_EQ_INT(lines, g_ds->inter.n + 1);
            CHECK(strncmp(b1, "user_id:token\titem_id:token\trating:float\ttimestamp:float\n",
                          57) == 0);
        }
        if (k == 1 && b1)
            CHECK_STR_CONTAINS(b1, "\tCafé Noir\t");
        free(b1);
        free(b2);
    }
    /* a different seed gives a different world */
    rlab_world_config c;
    rlab_world_config_demo(&c);
    c.seed++;
    rlab_world *w3;
    rlab_dataset *ds3;
    CHECK_EQ_INT(rlab_world_generate(&c, "x", &w3, &ds3, &err), RLAB_OK);
    CHECK(rlab_world_checksum(w3, ds3) != h1);
    rlab_world_free(w2);
    rlab_dataset_free(ds2);
    rlab_world_free(w3);
    rlab_dataset_free(ds3);
}

static void t_counts(void)
{
    demo();
    if (!g_w)
        return;
    const rlab_inter *t = &g_ds->inter;
    CHECK_EQ_INT(rlab_vocab_size(&g_ds->users), 1000);
    CHECK_EQ_INT(rlab_vocab_size(&g_ds->items), 600);
    CHECK_EQ_INT(t->n, 60000);
    CHECK(strcmp(rlab_vocab_name(&g_ds->users, 17), "u17") == 0);
    CHECK(strcmp(rlab_vocab_name(&g_ds->items, 5), "i5") == 0);
    CHECK_EQ_INT(t->flags, RLAB_INTER_HAS_TS | RLAB_INTER_HAS_RATING);
    /* global time order, per-user strictly increasing, no repeated item per user */
    int bad_order = 0, bad_rating = 0;
    for (size_t k = 1; k < t->n; k++)
        bad_order += t->ts[k] < t->ts[k - 1];
    for (size_t k = 0; k < t->n; k++)
        bad_rating += !(t->rating[k] >= 1.0f && t->rating[k] <= 5.0f);
    CHECK_EQ_INT(bad_order, 0);
    CHECK_EQ_INT(bad_rating, 0);
    int bad_inc = 0, repeats = 0, short_users = 0;
    char *seen = calloc(600, 1);
    for (int32_t u = 0; u < g_seqs.n_users; u++) {
        int64_t a = g_seqs.off[u], b = g_seqs.off[u + 1];
        short_users += b - a < g_w->cfg.min_per_user;
        memset(seen, 0, 600);
        for (int64_t k = a; k < b; k++) {
            if (k > a && g_seqs.ts[k] <= g_seqs.ts[k - 1])
                bad_inc++;
            repeats += seen[g_seqs.items[k]]++ > 0;
            if (g_seqs.ts[k] < g_w->cfg.t0 || g_seqs.ts[k] >= g_w->cfg.t0 + g_w->cfg.span)
                bad_inc++;
        }
    }
    free(seen);
    CHECK_EQ_INT(bad_inc, 0);
    CHECK_EQ_INT(repeats, 0);
    CHECK_EQ_INT(short_users, 0);
    /* features */
    rlab_feat_col *c = rlab_feats_find(&g_ds->item_feats, "title");
    CHECK(c && c->kind == RLAB_FEAT_TEXT);
    int cafe = 0;
    for (int32_t i = 0; c && i < 600; i++)
        cafe += c->text[i] && strcmp(c->text[i], "Café Noir") == 0;
    CHECK_EQ_INT(cafe, 1);
    c = rlab_feats_find(&g_ds->item_feats, "genres");
    CHECK(c && c->kind == RLAB_FEAT_TOKEN_SEQ && rlab_vocab_size(&c->vocab) == 18);
    for (int32_t i = 0; c && i < 600; i++) {
        int64_t ng = c->off[i + 1] - c->off[i];
        CHECK(ng >= 1 && ng <= 3);
        float s = 0;
        for (int g = 0; g < 18; g++)
            s += g_w->item_genre[i * 18 + g];
        CHECK_NEAR(s, 1.0, 1e-5);
    }
    c = rlab_feats_find(&g_ds->item_feats, "year");
    CHECK(c && c->kind == RLAB_FEAT_FLOAT && c->num[0] >= 1930.0f && c->num[0] <= 2023.0f);
    c = rlab_feats_find(&g_ds->user_feats, "archetype");
    CHECK(c && c->kind == RLAB_FEAT_TOKEN && rlab_vocab_size(&c->vocab) == 5);
    int arch_count[5] = {0};
    for (int32_t u = 0; c && u < 1000; u++) {
        CHECK(c->tok[u] == g_w->archetype[u]);
        arch_count[c->tok[u]]++;
    }
    for (int a = 0; a < 5; a++)
        CHECK_MSG(arch_count[a] > 80, "archetype %s: %d users", rlab_world_archetype_name(a),
                  arch_count[a]);
    CHECK(strcmp(rlab_vocab_name(&c->vocab, RLAB_ARCH_CHATTER), "Chatter") == 0);
    CHECK(rlab_feats_find(&g_ds->user_feats, "age") != NULL);
    CHECK(rlab_feats_find(&g_ds->user_feats, "gender") != NULL);
    CHECK(rlab_feats_find(&g_ds->user_feats, "occupation") != NULL);
}

static int cmp_desc(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x < y) - (x > y);
}

static void t_popularity(void)
{
    demo();
    if (!g_w)
        return;
    int64_t cnt[600] = {0};
    for (size_t k = 0; k < g_ds->inter.n; k++)
        cnt[g_ds->inter.item[k]]++;
    qsort(cnt, 600, sizeof cnt[0], cmp_desc);
    int64_t top = 0;
    for (int i = 0; i < 60; i++)
        top += cnt[i];
    double share = (double)top / (double)g_ds->inter.n;
    printf("  top 10%% items get %.1f%% of interactions; most popular %lld, median %lld\n",
           100 * share, (long long)cnt[0], (long long)cnt[300]);
    CHECK_MSG(share > 0.35, "top-10%% share %.3f", share);
    CHECK(cnt[0] > 5 * cnt[300]);
}

static void t_taste(void)
{
    demo();
    if (!g_w)
        return;
    double sum_int = 0, sum_rnd = 0;
    rlab_rng r;
    rlab_rng_seed(&r, 5);
    const rlab_inter *t = &g_ds->inter;
    for (size_t k = 0; k < t->n; k++) {
        sum_int += (double)rlab_world_true_affinity_at(g_w, t->user[k], t->item[k], t->ts[k]);
        int32_t ri = (int32_t)rlab_rng_below(&r, 600);
        sum_rnd += (double)rlab_world_true_affinity_at(g_w, t->user[k], ri, t->ts[k]);
    }
    double mi = sum_int / (double)t->n, mr = sum_rnd / (double)t->n;
    printf("  mean true affinity: interacted %.4f, random %.4f (ratio %.2f)\n", mi, mr, mi / mr);
    CHECK_MSG(mi > 2.5 * mr, "interacted %.4f vs random %.4f", mi, mr);
    /* ratings grow with affinity: mean rating of high-affinity rows beats low ones */
    double hi = 0, lo = 0;
    long nh = 0, nl = 0;
    for (size_t k = 0; k < t->n; k++) {
        float a = rlab_world_true_affinity_at(g_w, t->user[k], t->item[k], t->ts[k]);
        if (a > 0.3f) {
            hi += (double)t->rating[k];
            nh++;
        } else if (a < 0.05f) {
            lo += (double)t->rating[k];
            nl++;
        }
    }
    CHECK(nh > 100 && nl > 100);
    CHECK_MSG(hi / (double)nh > lo / (double)nl + 1.0, "ratings %.2f vs %.2f", hi / (double)nh,
              lo / (double)nl);
    CHECK_NEAR(rlab_world_true_affinity(g_w, -1, 0), 0.0, 0.0);
}

static void t_transitions(void)
{
    demo();
    if (!g_w)
        return;
    int NS = g_w->cfg.n_successors;
    long pairs = 0, hits = 0, rnd_hits = 0;
    rlab_rng r;
    rlab_rng_seed(&r, 9);
    for (int32_t u = 0; u < g_seqs.n_users; u++)
        for (int64_t k = g_seqs.off[u] + 1; k < g_seqs.off[u + 1]; k++) {
            int32_t prev = g_seqs.items[k - 1], next = g_seqs.items[k];
            pairs++;
            hits += next == g_w->succ[(size_t)prev * NS];
            /* chance: the top successor of a random other item */
            int32_t other = (int32_t)rlab_rng_below(&r, 600);
            rnd_hits += next == g_w->succ[(size_t)other * NS];
        }
    double p = (double)hits / (double)pairs, pr = (double)rnd_hits / (double)pairs;
    printf("  next == top successor of prev: %.4f (chance %.4f)\n", p, pr);
    CHECK_MSG(p > 0.08 && p > 10 * pr, "transition rate %.4f vs chance %.4f", p, pr);
}

static double cosf_(const float *a, const float *b, int n)
{
    double d = 0, na = 0, nb = 0;
    for (int k = 0; k < n; k++) {
        d += (double)a[k] * (double)b[k];
        na += (double)a[k] * (double)a[k];
        nb += (double)b[k] * (double)b[k];
    }
    return d / sqrt(na * nb);
}

static void t_homophily(void)
{
    demo();
    if (!g_w)
        return;
    int G = g_w->n_genres;
    int64_t E = g_w->follow_off[g_w->n_users];
    printf("  follower graph: %lld edges (%.1f per user)\n", (long long)E,
           (double)E / g_w->n_users);
    CHECK(E > 5000);
    CHECK_EQ_INT(g_w->follower_off[g_w->n_users], E);
    double sf = 0, sr = 0;
    rlab_rng r;
    rlab_rng_seed(&r, 3);
    int self = 0, unsorted = 0;
    for (int32_t u = 0; u < g_w->n_users; u++)
        for (int64_t e = g_w->follow_off[u]; e < g_w->follow_off[u + 1]; e++) {
            int32_t v = g_w->follow[e];
            self += v == u;
            unsorted += e > g_w->follow_off[u] && g_w->follow[e - 1] >= v;
            sf += cosf_(g_w->taste + (size_t)u * G, g_w->taste + (size_t)v * G, G);
            int32_t x = (int32_t)rlab_rng_below(&r, (uint64_t)g_w->n_users);
            sr += cosf_(g_w->taste + (size_t)u * G, g_w->taste + (size_t)x * G, G);
        }
    CHECK_EQ_INT(self, 0);
    CHECK_EQ_INT(unsorted, 0);
    printf("  taste cosine: followed %.3f, random %.3f\n", sf / (double)E, sr / (double)E);
    CHECK_MSG(sf > 1.5 * sr, "followed %.3f vs random %.3f", sf / (double)E, sr / (double)E);
    /* the reverse CSR agrees with the forward one: v in follow(u) <=> u in follower(v) */
    int mism = 0;
    for (int32_t v = 0; v < g_w->n_users; v++)
        for (int64_t e = g_w->follower_off[v]; e < g_w->follower_off[v + 1]; e++) {
            int32_t u = g_w->follower[e], found = 0;
            for (int64_t f = g_w->follow_off[u]; f < g_w->follow_off[u + 1]; f++)
                found |= g_w->follow[f] == v;
            mism += !found;
        }
    CHECK_EQ_INT(mism, 0);
}

static void t_drift(void)
{
    demo();
    if (!g_w)
        return;
    int G = g_w->n_genres;
    int64_t td = g_w->cfg.drift_ts[0];
    CHECK_EQ_INT(g_w->n_epochs, 2);
    int nd = 0, changed_ok = 0, unchanged_ok = 0;
    for (int32_t u = 0; u < g_w->n_users; u++) {
        const float *before = rlab_world_taste(g_w, u, td - 1);
        const float *after = rlab_world_taste(g_w, u, td);
        double l1 = 0;
        for (int k = 0; k < G; k++)
            l1 += fabs((double)before[k] - (double)after[k]);
        if (g_w->drifted[u]) {
            nd++;
            changed_ok += l1 > 0.1;
        } else {
            unchanged_ok += !(l1 > 0.0);
        }
    }
    printf("  drift: %d users drifted\n", nd);
    CHECK(nd > 200 && nd < 400); /* drift_frac 0.3 of 1000 */
    CHECK(changed_ok > nd * 9 / 10);
    CHECK_EQ_INT(unchanged_ok, g_w->n_users - nd);
    /* behaviour follows: after the drift, drifted users pick items that match the new taste
     * better than the old one */
    double a_new = 0, a_old = 0;
    long n = 0;
    const rlab_inter *t = &g_ds->inter;
    for (size_t k = 0; k < t->n; k++)
        if (t->ts[k] >= td && g_w->drifted[t->user[k]]) {
            a_new += (double)rlab_world_true_affinity_at(g_w, t->user[k], t->item[k], t->ts[k]);
            a_old += (double)rlab_world_true_affinity_at(g_w, t->user[k], t->item[k], td - 1);
            n++;
        }
    printf("  after drift (%ld rows): affinity new taste %.3f, old taste %.3f\n", n,
           a_new / (double)n, a_old / (double)n);
    CHECK(n > 1000);
    CHECK(a_new > 1.3 * a_old);
    /* true_affinity uses the latest taste */
    CHECK_NEAR(rlab_world_true_affinity(g_w, 3, 4), rlab_world_true_affinity_at(g_w, 3, 4, td),
               0.0);
}

static void t_config_errors(void)
{
    rlab_err err = {0};
    rlab_world *w = (rlab_world *)1;
    rlab_dataset *ds = (rlab_dataset *)1;
    rlab_world_config c;
    rlab_world_config_default(&c);
    c.n_users = 1;
    CHECK_EQ_INT(rlab_world_generate(&c, "x", &w, &ds, &err), RLAB_EINVAL);
    CHECK(w == NULL && ds == NULL);
    CHECK_STR_CONTAINS(err.msg, "n_users");
    rlab_world_config_default(&c);
    c.n_drift = 1;
    c.drift_ts[0] = c.t0 - 5;
    CHECK_EQ_INT(rlab_world_generate(&c, "x", &w, &ds, &err), RLAB_EINVAL);
    CHECK_STR_CONTAINS(err.msg, "drift_ts[0]");
    rlab_world_config_default(&c);
    c.n_inter = (int64_t)c.n_users * c.n_items; /* users would have to repeat items */
    CHECK_EQ_INT(rlab_world_generate(&c, "x", &w, &ds, &err), RLAB_EINVAL);
    rlab_world_config_default(&c);
    c.p_transition = 1.5f;
    CHECK_EQ_INT(rlab_world_generate(&c, "x", &w, &ds, &err), RLAB_EINVAL);
    CHECK_STR_CONTAINS(err.msg, "p_transition");
    /* a small valid world with no graph and no drift */
    rlab_world_config_default(&c);
    c.avg_follow = 0.0f;
    CHECK_EQ_INT(rlab_world_generate(&c, "small", &w, &ds, &err), RLAB_OK);
    CHECK_EQ_INT(w->follow_off[w->n_users], 0);
    CHECK_EQ_INT(ds->inter.n, 5000);
    CHECK(strcmp(ds->format, "world") == 0);
    CHECK(rlab_world_write_recbole(w, ds, "/nonexistent/dir", "x", &err) == RLAB_EIO);
    CHECK_STR_CONTAINS(err.msg, "/nonexistent/dir");
    rlab_world_free(w);
    rlab_dataset_free(ds);
}

static void t_alloc_fail(void)
{
    rlab_world_config c;
    rlab_world_config_default(&c);
    c.n_users = 40;
    c.n_items = 30;
    c.n_inter = 400;
    c.n_drift = 1;
    c.drift_ts[0] = c.t0 + 100 * 86400;
    int ok = 0;
    long k;
    for (k = 0; k < 2000 && !ok; k++) {
        rlab_err err = {0};
        rlab_world *w;
        rlab_dataset *ds;
        rlab_alloc_fail_after(k);
        int rc = rlab_world_generate(&c, "f", &w, &ds, &err);
        rlab_alloc_fail_after(-1);
        if (rc == RLAB_OK) {
            ok = 1;
            rlab_world_free(w);
            rlab_dataset_free(ds);
        } else {
            CHECK_EQ_INT(rc, RLAB_ENOMEM);
            CHECK(w == NULL && ds == NULL);
        }
    }
    CHECK(ok);
    printf("  generation survives failure of each of its first %ld allocations\n", k - 1);
}

static const rlab_test tests[] = {
    {"data.world.1", t_determinism}, {"data.world.2", t_counts},
    {"data.world.3", t_popularity},  {"data.world.4", t_taste},
    {"data.world.5", t_transitions}, {"data.world.6", t_homophily},
    {"data.world.7", t_drift},       {"data.world.8", t_config_errors},
    {"data.world.9", t_alloc_fail},  {NULL, NULL},
};

int main(int argc, char **argv)
{
    int rc = rlab_test_main(argc, argv, tests);
    rlab_world_free(g_w);
    rlab_dataset_free(g_ds);
    local_seqs_free(&g_seqs);
    return rc;
}
