/*
 * tests/simulator: RecAgent simulation (plugins/simulator).
 *
 * Test organization:
 *   sim.parse.*     tag parsing of language-model replies: valid, ambiguous, out of range,
 *                   non-integer hours; offline replies round-trip through the parser
 *   sim.memory.*    sensory threshold, short-term enhancement -> long-term with an insight,
 *                   reflection, forgetting, retrieval by relevance
 *   sim.behave.*    behaviour checks on a synthetic world whose truth is known: watches match
 *                   true tastes far above chance; BPR-MF beats random on satisfaction and
 *                   CTR; a post diffuses to followers; homophilous rewiring lowers the genre
 *                   entropy of what agents watch
 *   sim.topk.*      the recommender's bucketed top-k against the heap (the oracle)
 *   sim.repro.*     same seed -> identical event log (and with 1 or 3 threads); a branch
 *                   from a checkpoint continues
 *                   exactly like the original; incremental checkpoints (full images and
 *                   deltas) restore every round byte for byte and refuse broken chains;
 *                   checkpoints compared on threads store the blobs of the sequential compare
 *   sim.llm.*       the openai backend against a local server: decisions by the model; an
 *                   unparsable reply is retried, then decided offline and recorded so;
 *                   an unreachable, 401, hanging or garbage server is shown (first error
 *                   of each kind), counted in the run's metrics and fails the step past
 *                   max_fallback; progress per reply from a slow server
 *   sim.plugin.*    the commands through the host: new/step/interview/edit/rewire/inject/
 *                   post/branch/stats/agent, tables in the store, retraining
 *   sim.profiles.*  CSV profiles; MovieLens-100K u.user (needs $RECLAB_DATA)
 *
 * The BPR-MF recommender comes from plugins/baselines through the host (skipped when that
 * plugin is not built).
 */
#define SIM_INTERNAL
#include "sim.h"

#include "fake_rec_llm.h"
#include "harness_host.h"
#include "data/loaders.h"
#include "host/host.h"
#include "llm/llm.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- fixture: a small world, a host with the plugins, a trained BPR-MF ------------------ */

static rlab_world *W;
static rlab_dataset *DS;
static rlab_host *H;
static rlab_model *BPR; /* +1 reference; NULL when baselines is missing */
static int fixture_done;

static void world_config(rlab_world_config *c)
{
    rlab_world_config_default(c);
    c->seed = 11;
    c->n_users = 300;
    c->n_items = 240;
    c->n_genres = 10;
    c->n_inter = 9000;
    c->avg_follow = 8.0f;
    c->homophily = 4.0f;
}

static void fixture(void)
{
    if (fixture_done)
        return;
    fixture_done = 1;
    rlab_err err = {0};
    rlab_world_config c;
    world_config(&c);
    if (rlab_world_generate(&c, "w", &W, &DS, &err)) {
        fprintf(stderr, "world: %s\n", err.msg);
        return;
    }
    H = rlab_host_new(NULL, &err);
    if (!H)
        return;
    rlab_host_load_all(H, NULL, &err);
    /* the host gets the same world through the plugin (which keeps its ground truth) */
    rlab_result *wr = NULL;
    if (rlab_host_run_sync(H,
                           "simulator.world name=w users=300 items=240 genres=10 "
                           "interactions=9000 follow=8 homophily=4 seed=11",
                           &wr, &err))
        fprintf(stderr, "simulator.world: %s\n", err.msg);
    rlab_result_free(wr);
    if (!rlab_host_find_cmd(H, "train bprmf"))
        return;
    rlab_result *res = NULL;
    if (rlab_host_run_sync(H,
                           "train bprmf data=w name=bpr split=none epochs=30 "
                           "eval_every=0 seed=3",
                           &res, &err)) {
        fprintf(stderr, "bpr: %s\n", err.msg);
        rlab_result_free(res);
        return;
    }
    rlab_result_free(res);
    BPR = rlab_models_get(rlab_host_models(H), "bpr");
}

static sim *make_sim(const sim_config *cfg, rlab_model *m)
{
    rlab_err err = {0};
    sim *s = NULL;
    int rc = sim_new(cfg, DS, W, m, NULL, &s, &err);
    CHECK_MSG(rc == RLAB_OK, "sim_new: %s", err.msg);
    return s;
}

static void base_config(sim_config *c, uint64_t seed)
{
    sim_config_default(c);
    c->seed = seed;
    c->n_agents = 300;
    c->checkpoint_every = 0;
}

static void run(sim *s, int rounds)
{
    rlab_err err = {0};
    int rc = sim_step(s, rounds, NULL, NULL, NULL, NULL, NULL, &err);
    CHECK_MSG(rc == RLAB_OK, "sim_step: %s", err.msg);
}

/* Totals over rounds via the progress callback. */
typedef struct totals {
    double sat, chance;
    long watches, rec_watches, impressions, searches, chats, posts, active;
    int rounds;
} totals;

static void tot_cb(void *ud, int64_t done, int64_t total, const sim_stats *st)
{
    (void)done, (void)total;
    totals *t = ud;
    if (st->watches > 0 && !isnan(st->satisfaction)) {
        t->sat += st->satisfaction * st->watches;
        t->chance += st->sat_chance * st->watches;
    }
    t->watches += st->watches;
    t->rec_watches += st->rec_watches;
    t->impressions += st->impressions;
    t->searches += st->searches;
    t->chats += st->chats;
    t->posts += st->posts;
    t->active += st->active;
    t->rounds++;
}

static totals run_tot(sim *s, int rounds)
{
    totals t = {0};
    rlab_err err = {0};
    int rc = sim_step(s, rounds, tot_cb, &t, NULL, NULL, NULL, &err);
    CHECK_MSG(rc == RLAB_OK, "sim_step: %s", err.msg);
    return t;
}

/* ---- sim.parse ---------------------------------------------------------------------------- */

static void t_parse_basic(void)
{
    fixture();
    sim_config c;
    base_config(&c, 1);
    c.n_agents = 50;
    sim *s = make_sim(&c, NULL);
    if (!s)
        return;
    int32_t page[5] = {3, 4, 5, 6, 7};
    sim_dec d = {.agent = 0, .type = SIM_D_PAGE, .page = page, .npage = 5};
    CHECK(sim_parse(s, &d, "[BUY]:: 3") == 0 && d.choice == 2);
    CHECK(sim_parse(s, &d, "Sure!\n[buy]: 5\n") == 0 && d.choice == 4);
    CHECK(sim_parse(s, &d, "[BUY]:: 6") != 0);     /* past the page */
    CHECK(sim_parse(s, &d, "[BUY]:: three") != 0); /* not a number */
    CHECK(sim_parse(s, &d, "[NEXT]:: next page") == 0 && d.choice == SIM_P_NEXT);
    CHECK(sim_parse(s, &d, "[LEAVE]::") == 0 && d.choice == SIM_P_LEAVE);
    CHECK(sim_parse(s, &d, "[NEXT]:: or [LEAVE]::") != 0); /* ambiguous */
    char line[300];
    snprintf(line, sizeof line, "[SEARCH]:: <%s>", sim_item_title(s, 17));
    CHECK(sim_parse(s, &d, line) == 0 && d.choice == SIM_P_SEARCH && d.target == 17);
    CHECK(sim_parse(s, &d, "[SEARCH]:: a film nobody made") != 0);
    CHECK(sim_parse(s, &d, "I would like to watch something") != 0);
    /* an echo of the prompt lists every tag: rejected */
    d.step = 0;
    char *prompt = sim_prompt(s, &d);
    CHECK(prompt && strstr(prompt, "[BUY]::"));
    CHECK(prompt && sim_parse(s, &d, prompt) != 0);
    rlab_free(prompt);
    sim_dec a = {.agent = 0, .type = SIM_D_ACTION};
    CHECK(sim_parse(s, &a, "[RECOMMENDER]:: enters") == 0 && a.choice == SIM_A_REC);
    CHECK(sim_parse(s, &a, " [NOTHING]:: rests") == 0 && a.choice == SIM_A_NOTHING);
    prompt = sim_prompt(s, &a);
    CHECK(prompt && sim_parse(s, &a, prompt) != 0);
    rlab_free(prompt);
    /* chat with a friend for a non-integer number of hours (RecAgent took integers only) */
    const int32_t *fo;
    int32_t a0 = -1;
    for (int32_t k = 0; k < 50 && a0 < 0; k++)
        if (sim_followees(s, k, &fo) > 0)
            a0 = k;
    CHECK(a0 >= 0);
    if (a0 >= 0) {
        sim_followees(s, a0, &fo);
        sim_dec so = {.agent = a0, .type = SIM_D_SOCIAL};
        snprintf(line, sizeof line, "[CHAT]:: %s\n[TIME]:: 0.5", sim_agent_at(s, fo[0])->name);
        CHECK(sim_parse(s, &so, line) == 0 && so.choice == SIM_S_CHAT && so.target == fo[0]);
        CHECK_NEAR(so.hours, 0.5, 1e-6);
        CHECK(sim_parse(s, &so, "[CHAT]:: Nobody Known\n[TIME]:: 1") != 0);
        snprintf(line, sizeof line, "[CHAT]:: %s\n[TIME]:: -2", sim_agent_at(s, fo[0])->name);
        CHECK(sim_parse(s, &so, line) != 0);
        rlab_free(so.text);
    }
    sim_dec f = {.agent = 0, .type = SIM_D_FEEL, .item = 3};
    CHECK(sim_parse(s, &f, "[FEELING]:: Loved it.") == 0 && f.text && strstr(f.text, "Loved it."));
    CHECK(sim_parse(s, &f, "[FEELING]::   ") != 0);
    rlab_free(f.text);
    sim_free(s);
}

/* Every offline decision, written in the prompt's format, parses back to itself. */
static void t_parse_roundtrip(void)
{
    fixture();
    sim_config c;
    base_config(&c, 5);
    c.n_agents = 120;
    sim *s = make_sim(&c, NULL);
    if (!s)
        return;
    run(s, 3); /* some watches and heard titles, so SEARCH and POST occur */
    int checked = 0, bad = 0;
    int32_t page[5];
    for (int32_t a = 0; a < 120; a++) {
        for (int k = 0; k < 5; k++)
            page[k] = (a * 7 + k * 13) % sim_n_items(s);
        sim_dec ds[3] = {{.agent = a, .type = SIM_D_ACTION},
                         {.agent = a, .type = SIM_D_PAGE, .page = page, .npage = 5, .step = 1},
                         {.agent = a, .type = SIM_D_SOCIAL}};
        for (int k = 0; k < 3; k++) {
            sim_policy(s, &ds[k]);
            if (ds[k].type == SIM_D_SOCIAL && ds[k].choice < 0)
                continue;
            char buf[512];
            sim_policy_reply(s, &ds[k], buf, sizeof buf);
            sim_dec p = ds[k];
            p.choice = -7;
            p.target = -7;
            p.text = NULL;
            int ok = sim_parse(s, &p, buf) == 0 && p.choice == ds[k].choice &&
                     (ds[k].type == SIM_D_ACTION || p.target == ds[k].target);
            rlab_free(p.text);
            checked++;
            if (!ok) {
                bad++;
                fprintf(stderr, "round trip failed for '%s'\n", buf);
            }
        }
    }
    CHECK(checked > 300);
    CHECK_EQ_INT(bad, 0);
    sim_free(s);
}

/* ---- sim.memory ----------------------------------------------------------------------------- */

static void t_memory_pipeline(void)
{
    fixture();
    sim_config c;
    base_config(&c, 2);
    c.n_agents = 20;
    sim *s = make_sim(&c, NULL);
    if (!s)
        return;
    sim_agent *ag = &s->agents[0];
    /* below the sensory threshold: entering the site (3) and small talk (5) are not kept */
    sim_observe(s, 0, SIM_M_VISIT, -1, -1, 0);
    sim_observe(s, 0, SIM_M_CHAT, -1, 1, 0);
    CHECK_EQ_INT(ag->n_stm, 0);
    /* a watch (8) is kept */
    sim_observe(s, 0, SIM_M_WATCH, 5, -1, 1);
    CHECK_EQ_INT(ag->n_stm, 1);
    /* the same item observed again enhances it (cos = 1: p = sigmoid(1.1) = 0.75 >= 0.7, so
     * enhanced with probability 0.75 each time); after enough repeats the entry has moved
     * to long-term memory with an insight naming the item's main genre */
    for (int k = 0; k < 30 && ag->n_ltm == 0; k++)
        sim_observe(s, 0, SIM_M_WATCH, 5, -1, 1);
    CHECK(ag->n_ltm >= 2);
    int has_insight = 0, has_item = 0;
    for (int k = 0; k < ag->n_ltm; k++) {
        if (ag->ltm[k].kind == SIM_M_INSIGHT && ag->ltm[k].aux == s->item_topg[5])
            has_insight = 1;
        if (ag->ltm[k].kind == SIM_M_WATCH && ag->ltm[k].item == 5)
            has_item = 1;
    }
    CHECK(has_insight);
    CHECK(has_item);
    /* capacity: many distinct observations never exceed the short-term capacity */
    for (int32_t i = 0; i < 60; i++)
        sim_observe(s, 0, SIM_M_WATCH, (i * 37) % sim_n_items(s), -1, 1);
    CHECK(ag->n_stm <= SIM_STM_CAP);
    CHECK(ag->n_ltm <= SIM_LTM_CAP);
    /* reflection happened: importance 0.8 per saved memory passes 1.0 quickly */
    int refl = 0;
    for (int k = 0; k < ag->n_ltm; k++)
        refl += ag->ltm[k].kind == SIM_M_REFLECT;
    CHECK(refl >= 1);
    sim_free(s);
}

static void t_memory_forget_retrieve(void)
{
    fixture();
    sim_config c;
    base_config(&c, 3);
    c.n_agents = 20;
    sim *s = make_sim(&c, NULL);
    if (!s)
        return;
    sim_agent *ag = &s->agents[1];
    /* hand-made long-term memory: 10 old low-importance memories, one about item 9 */
    ag->n_ltm = 0;
    for (int k = 0; k < 10; k++) {
        ag->ltm[k] = (sim_mem){.created = 8.0f,
                               .accessed = 8.0f,
                               .importance = 0.2f,
                               .item = (int32_t)(k == 3 ? 9 : 100 + k),
                               .other = -1,
                               .kind = SIM_M_WATCH,
                               .aux = 1};
        ag->n_ltm++;
    }
    /* retrieval with item 9's vector ranks its memory first (equal recency, importance) */
    int idx[SIM_RETRIEVE_K];
    int k = sim_retrieve(s, 1, s->item_vec + 9 * SIM_DIM, 3, idx);
    CHECK_EQ_INT(k, 3);
    CHECK_EQ_INT(idx[0], 3);
    /* its access time was refreshed; the others keep theirs */
    CHECK_NEAR(ag->ltm[3].accessed, s->vtime, 1e-3);
    /* 1000 hours later most old memories are forgotten after a few saves: with r = 0.99^1000
     * ~ 4e-5, score = 0.01 * (0.2 + r) / 2 = 0.001, so each is forgotten with probability
     * about 1/n per save */
    s->vtime += 1000.0;
    /* repeated observations of one item promote it (and its insight) again and again: every
     * long-term save runs a forgetting pass */
    for (int rep = 0; rep < 60; rep++)
        sim_observe(s, 1, SIM_M_WATCH, 60, -1, 1);
    /* forgotten slots are reused, so count the old memories still live: at least half of
     * the 10 must be gone */
    int old_live = 0;
    for (int q = 0; q < ag->n_ltm; q++)
        old_live += ag->ltm[q].state == SIM_MS_LIVE && ag->ltm[q].accessed < 100.0f;
    CHECK_MSG(old_live <= 5, "%d of 10 old memories still live", old_live);
    sim_free(s);
}

/* ---- sim.behave ------------------------------------------------------------------------------ */

static void t_behave_taste(void)
{
    fixture();
    sim_config c;
    base_config(&c, 7);
    sim *s = make_sim(&c, NULL); /* random recommender: the pages carry no taste signal */
    if (!s)
        return;
    totals t = run_tot(s, 10);
    double sat = t.sat / (double)t.watches, chance = t.chance / (double)t.watches;
    printf("  random recommender: %ld watches, mean true affinity %.3f vs chance %.3f\n", t.watches,
           sat, chance);
    CHECK(t.watches > 500);
    CHECK_MSG(sat > 2.5 * chance, "watched affinity %.3f not far above chance %.3f", sat, chance);
    sim_free(s);
}

static void t_behave_bpr(void)
{
    fixture();
    if (!BPR) {
        rlab_test_skip("plugins/baselines (BPR-MF) not available");
        return;
    }
    sim_config c;
    base_config(&c, 8);
    sim *r = make_sim(&c, NULL), *b = make_sim(&c, BPR);
    if (!r || !b)
        return;
    totals tr = run_tot(r, 10), tb = run_tot(b, 10);
    double sr = tr.sat / tr.watches, sb = tb.sat / tb.watches;
    double cr = (double)tr.rec_watches / tr.impressions,
           cb = (double)tb.rec_watches / tb.impressions;
    printf("  random: satisfaction %.3f ctr %.4f; bpr: satisfaction %.3f ctr %.4f\n", sr, cr, sb,
           cb);
    CHECK_MSG(sb > sr + 0.02, "BPR satisfaction %.3f vs random %.3f", sb, sr);
    CHECK_MSG(cb > 1.3 * cr, "BPR ctr %.4f vs random %.4f", cb, cr);
    sim_free(r);
    sim_free(b);
}

/* Followers of an agent who posted about item x, over the next rounds: how many search or
 * watch x. Compared with the same simulation without the post (a restored checkpoint). */
static int diffusion_count(sim *s, int32_t poster, int32_t x, int rounds)
{
    const int32_t *fr;
    int32_t nfr = sim_followers(s, poster, &fr);
    int32_t *fol = rlab_malloc((size_t)nfr * sizeof *fol);
    memcpy(fol, fr, (size_t)nfr * sizeof *fol);
    run(s, rounds);
    int n = 0;
    for (int32_t k = 0; k < nfr; k++)
        n += sim_has_watched(&s->agents[fol[k]], x);
    rlab_free(fol);
    return n;
}

static void t_behave_diffusion(void)
{
    fixture();
    sim_config c;
    base_config(&c, 9);
    sim *a = make_sim(&c, NULL), *b = make_sim(&c, NULL);
    if (!a || !b)
        return;
    run(a, 2);
    uint8_t *st = NULL;
    size_t n = 0;
    rlab_err err = {0};
    CHECK(sim_save_state(a, &st, &n, &err) == RLAB_OK);
    CHECK(sim_load_state(b, st, n, &err) == RLAB_OK);
    rlab_free(st);
    /* the agent with the most followers posts about a niche item none of them has seen */
    int32_t poster = 0, best = -1;
    const int32_t *fr;
    for (int32_t u = 0; u < sim_n_agents(a); u++)
        if (sim_followers(a, u, &fr) > best)
            best = sim_followers(a, u, &fr), poster = u;
    int32_t x = -1;
    double pmin = 1e9;
    for (int32_t i = 0; i < sim_n_items(a); i++)
        if ((double)a->item_pop[i] < pmin && a->item_topg[i] == a->item_topg[0])
            pmin = a->item_pop[i], x = i;
    CHECK(sim_post(b, poster, x, &err) == RLAB_OK);
    int without = diffusion_count(a, poster, x, 4);
    int with = diffusion_count(b, poster, x, 4);
    printf("  %d followers; watched the posted title: %d with the post, %d without\n", best, with,
           without);
    CHECK_MSG(with >= 3 && with > 2 * without, "post diffusion: %d with vs %d without", with,
              without);
    sim_free(a);
    sim_free(b);
}

/* Mean per-agent genre entropy of the watches made after a point. */
static double watch_entropy_since(const sim *s, const float *before)
{
    double h = 0.0;
    int n = 0;
    for (int32_t a = 0; a < s->n; a++) {
        const float *g1 = s->gcount + (size_t)a * (size_t)s->G,
                    *g0 = before + (size_t)a * (size_t)s->G;
        double tot = 0.0, e = 0.0;
        for (int32_t g = 0; g < s->G; g++)
            tot += (double)(g1[g] - g0[g]);
        if (tot < 1.5)
            continue;
        for (int32_t g = 0; g < s->G; g++) {
            double p = (double)(g1[g] - g0[g]) / tot;
            if (p > 1e-9)
                e -= p * log2(p);
        }
        h += e;
        n++;
    }
    return n ? h / n : 0.0;
}

static void t_behave_homophily(void)
{
    fixture();
    sim_config c;
    base_config(&c, 10);
    sim *a = make_sim(&c, NULL), *b = make_sim(&c, NULL);
    if (!a || !b)
        return;
    rlab_err err = {0};
    CHECK(sim_rewire(a, SIM_REWIRE_HOMOPHILY, 8, &err) == RLAB_OK);
    CHECK(sim_rewire(b, SIM_REWIRE_MIXING, 8, &err) == RLAB_OK);
    size_t sz = (size_t)a->n * (size_t)a->G * sizeof(float);
    float *g0 = rlab_malloc(sz);
    memcpy(g0, a->gcount, sz);
    totals ta = run_tot(a, 12), tb = run_tot(b, 12);
    double ha = watch_entropy_since(a, g0), hb = watch_entropy_since(b, g0);
    printf("  homophily: entropy %.3f (%ld searches), mixing: entropy %.3f (%ld searches)\n", ha,
           ta.searches, hb, tb.searches);
    CHECK_MSG(ha < hb - 0.05, "homophily entropy %.3f vs mixing %.3f", ha, hb);
    rlab_free(g0);
    sim_free(a);
    sim_free(b);
}

/* ---- sim.topk --------------------------------------------------------------------------
 * The bucketed top-k of the recommender's candidate lists against the heap it replaced (the
 * oracle): random rows, rows with few distinct values (ties), NaN and infinities, all equal,
 * clumped (a huge offset, tiny spread), masks, n below k; and the [0, 1) variant on uniform
 * draws (its cut at a threshold), on draws skewed towards 0 (too few above the cut: the
 * general path) and on 64 values next to 1 with ties (too many: the general path). Every
 * list must be the same, item for item. */
/* Whether a top-k of scores in [0, 1) goes through the cut (sim.c topk_unit_cut: with m
 * unmasked, at least k and at most 256 of them at or above 1 - (k + 4 sqrt(k) + 8) / m) and
 * the k-th score ties with an unmasked score left out (ref: the heap's list). */
static int tie_through_cut(const float *sc, int32_t n, const uint8_t *mask, int k,
                           const int32_t *ref)
{
    int32_t m = 0, above = 0;
    double want = (double)k + 4.0 * sqrt((double)k) + 8.0;
    for (int32_t i = 0; i < n; i++)
        m += !(mask[i / 8] >> (i % 8) & 1);
    if (m <= k || want >= 0.5 * (double)m)
        return 0;
    float tau = (float)(1.0 - want / (double)m);
    for (int32_t i = 0; i < n; i++)
        above += !(mask[i / 8] >> (i % 8) & 1) && sc[i] >= tau;
    if (above < k || above > 256)
        return 0;
    for (int32_t i = 0; i < n; i++) {
        if ((mask[i / 8] >> (i % 8) & 1) || sc[i] < sc[ref[k - 1]] || sc[i] > sc[ref[k - 1]])
            continue;
        int in = 0;
        for (int j = 0; j < k && !in; j++)
            in = ref[j] == i;
        if (!in)
            return 1;
    }
    return 0;
}

static void t_topk(void)
{
    enum { N = 1001, KMAX = SIM_MAX_PAGE * SIM_MAX_STEPS };
    static float sc[N];
    static uint8_t mask[(N + 63) / 64 * 8], bk[N];
    const int32_t ns[] = {1, 7, 31, 600, N};
    const int ks[] = {1, 5, 30, KMAX};
    rlab_rng r;
    rlab_rng_seed(&r, 99);
    int cases = 0, same = 0, cut_ties = 0;
    for (int kind = 0; kind < 11; kind++)
        for (size_t a = 0; a < sizeof ns / sizeof *ns; a++)
            for (size_t b = 0; b < sizeof ks / sizeof *ks; b++)
                for (int rep = 0; rep < 4; rep++) {
                    int32_t n = ns[a];
                    int k = ks[b];
                    memset(mask, 0, sizeof mask);
                    for (int32_t i = 0; i < n; i++) {
                        float u = rlab_rng_uniform(&r);
                        float v = kind == 0 || kind == 6 ? u
                                  : kind == 1            ? (float)(int)(u * 4.0f)
                                  : kind == 2            ? 1e6f + u * 0.5f
                                  : kind == 3            ? 2.5f
                                  : kind == 7            ? u * u * u * u /* few near 1 */
                                  : kind == 8 ? 1.0f - 0x1p-24f * (float)(1 + (int)(u * 64.0f))
                                  /* [0, 1) on a grid of 16 or 256: ties at and across the cut */
                                  : kind == 9  ? (float)(int)(u * 16.0f) / 16.0f
                                  : kind == 10 ? (float)(int)(u * 256.0f) / 256.0f
                                               : rlab_rng_normal(&r) * 100.0f;
                        if (kind == 4 && u < 0.1f)
                            v = NAN;
                        if (kind == 5 && u < 0.05f)
                            v = u < 0.025f ? INFINITY : -INFINITY;
                        sc[i] = v;
                        if (rep > 0 && rlab_rng_uniform(&r) < 0.1f * (float)rep)
                            mask[i / 8] |= (uint8_t)(1u << (i % 8));
                    }
                    int32_t ref[KMAX], got[KMAX];
                    sim_topk(sc, n, mask, k, ref, bk, 0);
                    sim_topk(sc, n, mask, k, got, bk, kind >= 6 ? 2 : 1);
                    cases++;
                    same += memcmp(ref, got, (size_t)k * sizeof *ref) == 0;
                    if (kind >= 9)
                        cut_ties += tie_through_cut(sc, n, mask, k, ref);
                }
    printf("  %d top-k lists, %d identical to the heap's; %d of the grid's through the cut with "
           "a tie across the k-th\n",
           cases, same, cut_ties);
    CHECK_EQ_INT(same, cases);
    CHECK(cut_ties >= 20);
}

/* ---- sim.repro ----------------------------------------------------------------------------------
 */

static rlab_db *open_db(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", rlab_test_tmpdir(), name);
    rlab_err err = {0};
    rlab_db *db = rlab_db_open(path, 0, &err);
    CHECK_MSG(db != NULL, "db: %s", err.msg);
    if (db)
        CHECK(rlab_db_plugin_migrate(db, "simulator", sim_schema, 1, &err) == RLAB_OK);
    return db;
}

static int64_t begin_run(rlab_db *db)
{
    rlab_db_run_info ri = {.plugin = "simulator", .name = "test"};
    int64_t id = 0;
    rlab_err err = {0};
    CHECK(rlab_db_run_begin(db, &ri, &id, &err) == RLAB_OK);
    return id;
}

static void t_repro_seed(void)
{
    fixture();
    rlab_db *db = open_db("repro.db");
    if (!db)
        return;
    int64_t r1 = begin_run(db), r2 = begin_run(db), r3 = begin_run(db);
    sim_config c;
    base_config(&c, 21);
    c.n_agents = 150;
    sim *s[3] = {make_sim(&c, BPR), make_sim(&c, BPR), NULL};
    c.seed = 22;
    s[2] = make_sim(&c, BPR);
    int64_t runs[3] = {r1, r2, r3};
    for (int k = 0; k < 3; k++) {
        if (!s[k])
            return;
        sim_set_id(s[k], runs[k]);
        sim_attach_store(s[k], db, runs[k]);
        run(s[k], 6);
        sim_free(s[k]);
    }
    rlab_err err = {0};
    const char *q = "SELECT count(*), "
                    "sum(CASE WHEN a.seq = b.seq AND a.round = b.round AND a.vtime = b.vtime AND "
                    "a.agent IS b.agent AND a.kind = b.kind AND a.payload = b.payload THEN 1 "
                    "ELSE 0 END) FROM events a LEFT JOIN events b ON b.run_id = ?2 AND b.seq = "
                    "a.seq WHERE a.run_id = ?1";
    rlab_db_value p12[2] = {{.type = RLAB_DB_INT, .i = r1}, {.type = RLAB_DB_INT, .i = r2}};
    rlab_db_result *res = rlab_db_query_table(db, q, p12, 2, 0, &err);
    CHECK_MSG(res != NULL, "%s", err.msg);
    if (res) {
        int64_t n = rlab_db_result_cell(res, 0, 0)->i, same = rlab_db_result_cell(res, 0, 1)->i;
        printf("  seed 21 twice: %lld events, %lld identical\n", (long long)n, (long long)same);
        CHECK(n > 1000);
        CHECK_EQ_INT(same, n);
        rlab_db_result_free(res);
    }
    rlab_db_value p13[2] = {{.type = RLAB_DB_INT, .i = r1}, {.type = RLAB_DB_INT, .i = r3}};
    res = rlab_db_query_table(db, q, p13, 2, 0, &err);
    if (res) {
        int64_t n = rlab_db_result_cell(res, 0, 0)->i, same = rlab_db_result_cell(res, 0, 1)->i;
        CHECK_MSG(same < n / 2, "another seed gave %lld of %lld identical events", (long long)same,
                  (long long)n);
        rlab_db_result_free(res);
    }
    /* the same counts are in simulator_stats, and the events are valid JSON */
    res = rlab_db_query_table(db,
                              "SELECT count(*) FROM events WHERE run_id = ?1 AND "
                              "json_valid(payload) = 0",
                              p12, 1, 0, &err);
    if (res) {
        CHECK_EQ_INT(rlab_db_result_cell(res, 0, 0)->i, 0);
        rlab_db_result_free(res);
    }
    rlab_db_close(db);
}

/* The round's per-agent work over threads (par.c) gives the simulation of one thread: the
 * same event log and the same final state, with BPR-MF (a model's score chunks) and with the
 * random recommender (rows drawn per visitor), swap_k on. 300 agents over 3 threads, the
 * smallest part lowered from SIM_PAR_MIN to 64 so that all 3 run. */
static void t_repro_threads(void)
{
    fixture();
    rlab_db *db = open_db("threads.db");
    if (!db)
        return;
    rlab_err err = {0};
    for (int m = 0; m < 2; m++) {
        int64_t runs[2];
        uint8_t *img[2] = {NULL, NULL};
        size_t nimg[2] = {0, 0};
        for (int k = 0; k < 2; k++) {
            sim_config c;
            base_config(&c, 31);
            c.swap_k = 2;
            c.threads = k == 0 ? 1 : 3;
            sim *s = make_sim(&c, m == 0 ? BPR : NULL);
            if (!s)
                return;
            s->par_min = 64;
            runs[k] = begin_run(db);
            sim_set_id(s, runs[k]);
            sim_attach_store(s, db, runs[k]);
            run(s, 5);
            CHECK(sim_save_state(s, &img[k], &nimg[k], &err) == RLAB_OK);
            sim_free(s);
        }
        CHECK(nimg[0] == nimg[1] && nimg[0] > 0 && memcmp(img[0], img[1], nimg[0]) == 0);
        rlab_free(img[0]), rlab_free(img[1]);
        rlab_db_value p[2] = {{.type = RLAB_DB_INT, .i = runs[0]},
                              {.type = RLAB_DB_INT, .i = runs[1]}};
        rlab_db_result *res = rlab_db_query_table(
            db,
            "SELECT count(*), sum(CASE WHEN a.round = b.round AND a.agent IS b.agent AND "
            "a.kind = b.kind AND a.payload = b.payload THEN 1 ELSE 0 END), "
            "(SELECT count(*) FROM events WHERE run_id = ?2) FROM events a LEFT JOIN events b "
            "ON b.run_id = ?2 AND b.seq = a.seq WHERE a.run_id = ?1",
            p, 2, 0, &err);
        CHECK_MSG(res != NULL, "%s", err.msg);
        if (res) {
            int64_t n = rlab_db_result_cell(res, 0, 0)->i, same = rlab_db_result_cell(res, 0, 1)->i;
            printf("  %s, 1 vs 3 threads: %lld events, %lld identical\n",
                   m == 0 ? "bprmf" : "random", (long long)n, (long long)same);
            CHECK(n > 1000);
            CHECK_EQ_INT(same, n);
            CHECK_EQ_INT(rlab_db_result_cell(res, 0, 2)->i, n);
            rlab_db_result_free(res);
        }
        if (!BPR)
            m++; /* no BPR-MF: the random case ran first, done */
    }
    rlab_db_close(db);
}

/* Checkpoints on threads (persist.c ck_pass: the live state compared with the last image in
 * blocks on 3 threads, the delta encoded from the changed-word marks; par_min lowered so that
 * a 300-agent image takes that path) store the same blobs, byte for byte, as the sequential
 * compare (delta_stream) of a one-thread run: full images and deltas; and a restore of the
 * last delta continues exactly as the uninterrupted run (the same events). */
static void t_repro_ckpt_threads(void)
{
    fixture();
    rlab_db *db = open_db("ckthreads.db");
    if (!db)
        return;
    rlab_err err = {0};
    int64_t runs[2];
    enum { R = 6 };
    for (int k = 0; k < 2; k++) {
        sim_config c;
        base_config(&c, 43);
        c.checkpoint_every = 1;
        c.checkpoint_full = 4; /* full at rounds 1 and 5, deltas between */
        c.threads = k == 0 ? 1 : 3;
        sim *s = make_sim(&c, NULL);
        if (!s)
            return;
        if (k == 1)
            s->par_min = 8; /* images of >= 1 block by marks, parts of >= 1 block */
        runs[k] = begin_run(db);
        sim_set_id(s, runs[k]);
        sim_attach_store(s, db, runs[k]);
        run(s, R);
        sim_free(s);
    }
    rlab_db_value p[2] = {{.type = RLAB_DB_INT, .i = runs[0]}, {.type = RLAB_DB_INT, .i = runs[1]}};
    rlab_db_result *res = rlab_db_query_table(
        db,
        "SELECT count(*), sum(a.state = b.state), sum(substr(a.state, 1, 8) = "
        "CAST('RLSIMDL2' AS BLOB)), sum(length(a.state)) FROM simulator_checkpoints a "
        "JOIN simulator_checkpoints b ON b.sim = ?2 AND b.round = a.round WHERE a.sim = ?1",
        p, 2, 0, &err);
    CHECK_MSG(res != NULL, "%s", err.msg);
    if (res) {
        int64_t n = rlab_db_result_cell(res, 0, 0)->i, same = rlab_db_result_cell(res, 0, 1)->i;
        int64_t deltas = rlab_db_result_cell(res, 0, 2)->i;
        printf("  checkpoints, 1 thread vs 3 (by marks): %lld rows (%lld deltas, %lld bytes), "
               "%lld identical\n",
               (long long)n, (long long)deltas, (long long)rlab_db_result_cell(res, 0, 3)->i,
               (long long)same);
        CHECK_EQ_INT(n, R);
        CHECK_EQ_INT(deltas, R - 2);
        CHECK_EQ_INT(same, n);
        rlab_db_result_free(res);
    }
    /* restore the last delta of the threaded run into a fresh simulation, run 2 more rounds;
     * the uninterrupted run goes on too: the same events */
    sim_config c;
    base_config(&c, 43);
    c.threads = 3;
    sim *a = make_sim(&c, NULL), *b = make_sim(&c, NULL);
    if (!a || !b)
        return;
    a->par_min = b->par_min = 8;
    CHECK_MSG(sim_restore(a, db, runs[1], R, &err) == RLAB_OK, "%s", err.msg);
    CHECK_MSG(sim_restore(b, db, runs[1], R - 1, &err) == RLAB_OK, "%s", err.msg);
    int64_t ra = begin_run(db), rb = begin_run(db), r0 = begin_run(db);
    sim_set_id(b, r0), sim_attach_store(b, db, r0); /* its events count in seq */
    run(b, 1); /* b: round R by stepping from the full image of R - 1, a: from R's delta */
    sim_set_id(a, ra), sim_attach_store(a, db, ra);
    sim_set_id(b, rb), sim_attach_store(b, db, rb);
    run(a, 2);
    run(b, 2);
    uint8_t *img[2] = {NULL, NULL};
    size_t nimg[2] = {0, 0};
    CHECK(sim_save_state(a, &img[0], &nimg[0], &err) == RLAB_OK);
    CHECK(sim_save_state(b, &img[1], &nimg[1], &err) == RLAB_OK);
    CHECK(nimg[0] == nimg[1] && nimg[0] > 0 && memcmp(img[0], img[1], nimg[0]) == 0);
    rlab_free(img[0]), rlab_free(img[1]);
    sim_free(a), sim_free(b);
    rlab_db_value q[2] = {{.type = RLAB_DB_INT, .i = ra}, {.type = RLAB_DB_INT, .i = rb}};
    res = rlab_db_query_table(db,
                              "SELECT count(*), sum(CASE WHEN a.round = b.round AND a.agent IS "
                              "b.agent AND a.kind = b.kind AND a.payload = b.payload THEN 1 ELSE "
                              "0 END) FROM events a LEFT JOIN events b ON b.run_id = ?2 AND "
                              "b.seq = a.seq WHERE a.run_id = ?1",
                              q, 2, 0, &err);
    CHECK_MSG(res != NULL, "%s", err.msg);
    if (res) {
        int64_t n = rlab_db_result_cell(res, 0, 0)->i, same = rlab_db_result_cell(res, 0, 1)->i;
        printf("  restored from a delta by marks vs stepped: %lld events, %lld identical\n",
               (long long)n, (long long)same);
        CHECK(n > 200);
        CHECK_EQ_INT(same, n);
        rlab_db_result_free(res);
    }
    rlab_db_close(db);
}

/* A checkpoint's row is stored by the next round's writer (sim_step with 2+ threads, the
 * delta's body encoded there): the rows and events of one sim_step of R rounds are those of
 * R steps of one round each (every row written at once), byte for byte; and a step cancelled
 * after 2 rounds still stores the second round's row (left pending, no round took it). */
static int cancel_after_2(void *ud) { return ++*(int *)ud > 2; }

static void t_repro_ckpt_defer(void)
{
    fixture();
    rlab_db *db = open_db("ckdefer.db");
    if (!db)
        return;
    rlab_err err = {0};
    int64_t runs[3];
    enum { R = 5 };
    for (int k = 0; k < 3; k++) {
        sim_config c;
        base_config(&c, 47);
        c.checkpoint_every = 1;
        c.checkpoint_full = 3; /* full at rounds 1 and 4, deltas between */
        c.threads = 2;
        sim *s = make_sim(&c, NULL);
        if (!s)
            return;
        s->par_min = 8; /* deltas by marks (the deferred encoding) */
        runs[k] = begin_run(db);
        sim_set_id(s, runs[k]);
        sim_attach_store(s, db, runs[k]);
        if (k == 0) {
            run(s, R);
        } else if (k == 1) {
            for (int r = 0; r < R; r++)
                run(s, 1);
        } else {
            int calls = 0, done = -1;
            int rc = sim_step(s, R, NULL, NULL, cancel_after_2, &calls, &done, &err);
            CHECK_EQ_INT(rc, RLAB_ECANCELED);
            CHECK_EQ_INT(done, 2);
        }
        sim_free(s);
    }
    for (int k = 1; k < 3; k++) {
        rlab_db_value p[2] = {{.type = RLAB_DB_INT, .i = runs[0]},
                              {.type = RLAB_DB_INT, .i = runs[k]}};
        rlab_db_result *res = rlab_db_query_table(
            db,
            "SELECT count(*), sum(a.state = b.state AND a.bytes = b.bytes), "
            "sum(substr(a.state, 1, 8) = CAST('RLSIMDL2' AS BLOB)), (SELECT count(*) FROM "
            "events e JOIN events f ON f.run_id = ?2 AND f.seq = e.seq AND f.kind = e.kind AND "
            "f.payload = e.payload AND f.agent IS e.agent WHERE e.run_id = ?1), (SELECT "
            "count(*) FROM events WHERE run_id = ?2) FROM simulator_checkpoints a JOIN "
            "simulator_checkpoints b ON b.sim = ?2 AND b.round = a.round WHERE a.sim = ?1",
            p, 2, 0, &err);
        CHECK_MSG(res != NULL, "%s", err.msg);
        if (res) {
            int64_t n = rlab_db_result_cell(res, 0, 0)->i, same = rlab_db_result_cell(res, 0, 1)->i;
            int64_t deltas = rlab_db_result_cell(res, 0, 2)->i;
            int64_t ev_same = rlab_db_result_cell(res, 0, 3)->i;
            int64_t ev = rlab_db_result_cell(res, 0, 4)->i;
            printf("  checkpoints, one step of %d rounds vs %s: %lld rows (%lld deltas), %lld "
                   "identical; events %lld, %lld identical\n",
                   R, k == 1 ? "steps of one round" : "a step cancelled after 2", (long long)n,
                   (long long)deltas, (long long)same, (long long)ev, (long long)ev_same);
            CHECK_EQ_INT(n, k == 1 ? R : 2);
            CHECK_EQ_INT(deltas, k == 1 ? R - 2 : 1);
            CHECK_EQ_INT(same, n);
            CHECK(ev > 100);
            CHECK_EQ_INT(ev_same, ev);
            rlab_db_result_free(res);
        }
    }
    rlab_db_close(db);
}

/* A deferred checkpoint row that the store refuses (a trigger stands for a full disk): the
 * failure comes out of sim_step at the end of the round whose writer tried it (round 3 for
 * round 2's row: 2 rounds counted done, round 3 ran and is not checkpointed), the image is
 * then no base, and the next step's first checkpoint (round 4) is a full image; round 5's
 * delta to it restores the state. */
static void t_ckpt_defer_fail(void)
{
    fixture();
    rlab_db *db = open_db("ckdeferfail.db");
    if (!db)
        return;
    rlab_err err = {0};
    sim_config c;
    base_config(&c, 53);
    c.checkpoint_every = 1;
    c.threads = 2;
    sim *s = make_sim(&c, NULL);
    if (!s)
        return;
    s->par_min = 8;
    int64_t id = begin_run(db);
    sim_set_id(s, id);
    sim_attach_store(s, db, id);
    CHECK(rlab_db_exec(db,
                       "CREATE TEMP TRIGGER no_room BEFORE INSERT ON simulator_checkpoints "
                       "WHEN NEW.round = 2 BEGIN SELECT RAISE(ABORT, 'no room for round 2'); END",
                       &err) == RLAB_OK);
    int done = -1;
    int rc = sim_step(s, 5, NULL, NULL, NULL, NULL, &done, &err);
    printf("  deferred row refused: rc %d, %d rounds done: %s\n", rc, done, err.msg);
    CHECK(rc != RLAB_OK);
    CHECK(strstr(err.msg, "no room for round 2") != NULL);
    CHECK_EQ_INT(done, 2);
    CHECK(rlab_db_exec(db, "DROP TRIGGER no_room", &err) == RLAB_OK);
    err = (rlab_err){0};
    run(s, 2); /* rounds 4 and 5: a full image, then a delta (round 3 ran in the failed step) */
    rlab_db_value p[1] = {{.type = RLAB_DB_INT, .i = id}};
    rlab_db_result *res = rlab_db_query_table(
        db,
        "SELECT group_concat(round || substr(CAST(substr(state, 1, 8) AS TEXT), 6, 1), ',') "
        "FROM (SELECT round, state FROM simulator_checkpoints WHERE sim = ?1 ORDER BY round)",
        p, 1, 0, &err);
    CHECK_MSG(res != NULL, "%s", err.msg);
    if (res) {
        const char *rows = rlab_db_result_cell(res, 0, 0)->s;
        printf("  rows (round, C = full, D = delta): %s\n", rows ? rows : "(none)");
        CHECK(rows && strcmp(rows, "1C,4C,5D") == 0);
        rlab_db_result_free(res);
    }
    sim *b = make_sim(&c, NULL);
    if (b) {
        CHECK_MSG(sim_restore(b, db, id, 5, &err) == RLAB_OK, "%s", err.msg);
        uint8_t *img[2] = {NULL, NULL};
        size_t nimg[2] = {0, 0};
        CHECK(sim_save_state(s, &img[0], &nimg[0], &err) == RLAB_OK);
        CHECK(sim_save_state(b, &img[1], &nimg[1], &err) == RLAB_OK);
        CHECK(nimg[0] == nimg[1] && nimg[0] > 0 && memcmp(img[0], img[1], nimg[0]) == 0);
        rlab_free(img[0]), rlab_free(img[1]);
        sim_free(b);
    }
    sim_free(s);
    rlab_db_close(db);
}

static void t_repro_branch(void)
{
    fixture();
    rlab_db *db = open_db("branch.db");
    if (!db)
        return;
    int64_t r1 = begin_run(db), r2 = begin_run(db);
    sim_config c;
    base_config(&c, 31);
    c.n_agents = 200;
    c.checkpoint_every = 1;
    sim *a = make_sim(&c, NULL);
    if (!a)
        return;
    sim_set_id(a, r1);
    sim_attach_store(a, db, r1);
    run(a, 7);
    /* restore round 4 into a fresh simulation and run 3 rounds: the same events as the
     * original's rounds 5..7 */
    rlab_err err = {0};
    sim *b = make_sim(&c, NULL);
    if (!b)
        return;
    /* round 4 is stored as a delta to round 3 (round 1 is the full image): alone it is
     * refused with a message, from the store it restores through the chain */
    rlab_db_value p[1] = {{.type = RLAB_DB_INT, .i = r1}};
    rlab_db_result *res = rlab_db_query_table(
        db, "SELECT round, state, bytes FROM simulator_checkpoints WHERE sim = ?1 ORDER BY round",
        p, 1, 0, &err);
    CHECK(res && res->nrow == 7);
    if (!res || res->nrow != 7)
        return;
    const rlab_db_value *full = rlab_db_result_cell(res, 0, 1),
                        *d4 = rlab_db_result_cell(res, 3, 1);
    CHECK_EQ_INT(rlab_db_result_cell(res, 3, 0)->i, 4);
    CHECK_EQ_INT((int64_t)d4->n, rlab_db_result_cell(res, 3, 2)->i);
    /* a delta is a small part of the full image; the full image's row ("RLSIMCK3", its
     * non-zero words) is smaller than the image */
    uint8_t *img = NULL;
    size_t nimg = 0;
    CHECK(sim_save_state(a, &img, &nimg, &err) == RLAB_OK);
    CHECK(d4->n * 5 < nimg);
    CHECK(full->n < nimg);
    CHECK(memcmp(full->s, "RLSIMCK3", 8) == 0);
    rlab_free(img);
    CHECK(sim_load_state(b, (const uint8_t *)d4->s, d4->n, &err) == RLAB_EFORMAT);
    CHECK_STR_CONTAINS(err.msg, "delta");
    /* a truncated full image is refused */
    err = (rlab_err){0};
    CHECK(sim_load_state(b, (const uint8_t *)full->s, full->n / 2, &err) == RLAB_EFORMAT);
    CHECK(sim_load_state(b, (const uint8_t *)full->s, full->n, &err) == RLAB_OK);
    CHECK_EQ_INT(sim_round(b), 1);
    rlab_db_result_free(res);
    CHECK_MSG(sim_restore(b, db, r1, 4, &err) == RLAB_OK, "%s", err.msg);
    CHECK_EQ_INT(sim_round(b), 4);
    sim_set_id(b, r2);
    sim_attach_store(b, db, r2);
    run(b, 3);
    rlab_db_value p12[2] = {{.type = RLAB_DB_INT, .i = r1}, {.type = RLAB_DB_INT, .i = r2}};
    res = rlab_db_query_table(
        db,
        "SELECT count(*), sum(b.payload IS a.payload AND b.agent IS a.agent AND b.kind = a.kind)"
        " FROM events a LEFT JOIN events b ON b.run_id = ?2 AND b.seq = a.seq"
        " WHERE a.run_id = ?1 AND a.round > 4",
        p12, 2, 0, &err);
    CHECK_MSG(res != NULL, "%s", err.msg);
    if (res) {
        int64_t n = rlab_db_result_cell(res, 0, 0)->i, same = rlab_db_result_cell(res, 0, 1)->i;
        printf("  branch of round 4: %lld events after it, %lld identical\n", (long long)n,
               (long long)same);
        CHECK(n > 300);
        CHECK_EQ_INT(same, n);
        rlab_db_result_free(res);
    }
    sim_free(a);
    sim_free(b);
    rlab_db_close(db);
}

/* Is the stored checkpoint of round r a delta ("RLSIMDL2")? -1 when missing. */
static int ck_is_delta(rlab_db *db, int64_t id, int64_t r)
{
    rlab_err err = {0};
    rlab_db_value p[2] = {{.type = RLAB_DB_INT, .i = id}, {.type = RLAB_DB_INT, .i = r}};
    rlab_db_result *res = rlab_db_query_table(
        db, "SELECT state FROM simulator_checkpoints WHERE sim = ?1 AND round = ?2", p, 2, 0, &err);
    int v = -1;
    if (res && res->nrow == 1) {
        const rlab_db_value *c = rlab_db_result_cell(res, 0, 0);
        v = c->n >= 8 && memcmp(c->s, "RLSIMDL2", 8) == 0;
    }
    rlab_db_result_free(res);
    return v;
}

/* Incremental checkpoints: a full image every checkpoint_full checkpoints and when the
 * layout changes (a rewire to another edge count) or a round is checkpointed again, deltas
 * otherwise; every round restores to exactly the state saved at that round (byte-equal
 * images); a corrupt delta or a missing base is refused, not restored wrongly. */
static void t_repro_delta(void)
{
    fixture();
    rlab_db *db = open_db("delta.db");
    if (!db)
        return;
    int64_t r1 = begin_run(db);
    sim_config c;
    base_config(&c, 41);
    c.n_agents = 150;
    c.checkpoint_every = 1;
    c.checkpoint_full = 4;
    sim *a = make_sim(&c, NULL), *b = make_sim(&c, NULL);
    if (!a || !b)
        return;
    sim_set_id(a, r1);
    sim_attach_store(a, db, r1);
    enum { R = 11 };
    uint8_t *img[R + 1] = {0};
    size_t len[R + 1] = {0};
    rlab_err err = {0};
    int64_t m_before = 0, m_after = 0;
    for (int r = 1; r <= R; r++) {
        if (r == 3)
            CHECK(sim_edit(a, 5, "name", "Delta Tester", &err) == RLAB_OK);
        if (r == 7) {
            const int32_t *x;
            for (int32_t k = 0; k < sim_n_agents(a); k++)
                m_before += sim_followees(a, k, &x);
            CHECK(sim_rewire(a, SIM_REWIRE_MIXING, 3, &err) == RLAB_OK);
            for (int32_t k = 0; k < sim_n_agents(a); k++)
                m_after += sim_followees(a, k, &x);
        }
        run(a, 1);
        CHECK(sim_save_state(a, &img[r], &len[r], &err) == RLAB_OK);
    }
    CHECK(m_after != m_before);
    /* full: 1 (first), 5 (every 4), 7 (graph of another size), 11 (every 4); deltas between */
    static const int want[R + 1] = {-1, 0, 1, 1, 1, 0, 1, 0, 1, 1, 1, 0};
    for (int r = 1; r <= R; r++)
        CHECK_MSG(ck_is_delta(db, r1, r) == want[r], "round %d: delta %d, want %d", r,
                  ck_is_delta(db, r1, r), want[r]);
    for (int r = 1; r <= R; r++) {
        err = (rlab_err){0};
        int rc = sim_restore(b, db, r1, r, &err);
        CHECK_MSG(rc == RLAB_OK, "restore %d: %s", r, err.msg);
        uint8_t *got = NULL;
        size_t n = 0;
        CHECK(sim_save_state(b, &got, &n, &err) == RLAB_OK);
        size_t at = 0;
        while (got && at < n && at < len[r] && got[at] == img[r][at])
            at++;
        CHECK_MSG(n == len[r] && at == n, "round %d differs at byte %zu of %zu", r, at, n);
        rlab_free(got);
    }
    CHECK_STR_CONTAINS(sim_agent_at(b, 5)->name, "Delta Tester");
    /* the same round again (after an edit) is a full image that replaces the row */
    CHECK(sim_edit(a, 6, "name", "Late Edit", &err) == RLAB_OK);
    CHECK(sim_checkpoint(a, &err) == RLAB_OK);
    CHECK_EQ_INT(ck_is_delta(db, r1, R), 0);
    CHECK(sim_restore(b, db, r1, R, &err) == RLAB_OK);
    CHECK_STR_CONTAINS(sim_agent_at(b, 6)->name, "Late Edit");
    /* a corrupt delta (round 3) breaks rounds 3 and 4, not 2 or 5 */
    rlab_db_value p[2] = {{.type = RLAB_DB_INT, .i = r1}, {.type = RLAB_DB_INT, .i = 3}};
    rlab_db_result *res = rlab_db_query_table(
        db, "SELECT state FROM simulator_checkpoints WHERE sim = ?1 AND round = ?2", p, 2, 0, &err);
    CHECK(res && res->nrow == 1);
    if (res && res->nrow == 1) {
        const rlab_db_value *cell = rlab_db_result_cell(res, 0, 0);
        uint8_t *bad = rlab_malloc(cell->n);
        memcpy(bad, cell->s, cell->n);
        bad[cell->n - 3] ^= 0x5a; /* inside the last replaced word */
        rlab_db_value u[3] = {{.type = RLAB_DB_INT, .i = r1},
                              {.type = RLAB_DB_INT, .i = 3},
                              {.type = RLAB_DB_BLOB, .s = (const char *)bad, .n = cell->n}};
        CHECK_MSG(rlab_db_query(db,
                                "UPDATE simulator_checkpoints SET state = ?3 WHERE sim = ?1 AND "
                                "round = ?2",
                                u, 3, RLAB_DB_ALLOW_WRITES, NULL, NULL, &err) == RLAB_OK,
                  "%s", err.msg);
        rlab_free(bad);
    }
    rlab_db_result_free(res);
    err = (rlab_err){0};
    CHECK(sim_restore(b, db, r1, 4, &err) == RLAB_EFORMAT);
    CHECK_STR_CONTAINS(err.msg, "round");
    CHECK(sim_restore(b, db, r1, 3, &err) == RLAB_EFORMAT);
    CHECK(sim_restore(b, db, r1, 2, &err) == RLAB_OK);
    CHECK(sim_restore(b, db, r1, 5, &err) == RLAB_OK);
    /* a missing base */
    CHECK(rlab_db_query(db, "DELETE FROM simulator_checkpoints WHERE sim = ?1 AND round = 5", p, 1,
                        RLAB_DB_ALLOW_WRITES, NULL, NULL, &err) == RLAB_OK);
    err = (rlab_err){0};
    CHECK(sim_restore(b, db, r1, 6, &err) == RLAB_ENOTFOUND);
    CHECK_STR_CONTAINS(err.msg, "round 5");
    CHECK(sim_restore(b, db, r1, 99, &err) == RLAB_ENOTFOUND);
    for (int r = 1; r <= R; r++)
        rlab_free(img[r]);
    sim_free(a);
    sim_free(b);
    rlab_db_close(db);
}

/* A stored checkpoint row of round r (a copy, rlab_free; NULL when missing). */
static uint8_t *ck_row(rlab_db *db, int64_t id, int64_t r, size_t *n)
{
    rlab_err err = {0};
    rlab_db_value p[2] = {{.type = RLAB_DB_INT, .i = id}, {.type = RLAB_DB_INT, .i = r}};
    rlab_db_result *res = rlab_db_query_table(
        db, "SELECT state FROM simulator_checkpoints WHERE sim = ?1 AND round = ?2", p, 2, 0, &err);
    uint8_t *b = NULL;
    if (res && res->nrow == 1) {
        const rlab_db_value *c = rlab_db_result_cell(res, 0, 0);
        b = rlab_malloc(c->n ? c->n : 1);
        if (b && c->n)
            memcpy(b, c->s, c->n);
        *n = c->n;
    }
    rlab_db_result_free(res);
    return b;
}

static void ck_put_row(rlab_db *db, int64_t id, int64_t r, const uint8_t *b, size_t n)
{
    rlab_err err = {0};
    rlab_db_value u[3] = {{.type = RLAB_DB_INT, .i = id},
                          {.type = RLAB_DB_INT, .i = r},
                          {.type = RLAB_DB_BLOB, .s = (const char *)b, .n = n}};
    CHECK_MSG(rlab_db_query(db,
                            "UPDATE simulator_checkpoints SET state = ?3 WHERE sim = ?1 AND "
                            "round = ?2",
                            u, 3, RLAB_DB_ALLOW_WRITES, NULL, NULL, &err) == RLAB_OK,
              "%s", err.msg);
}

/* Does b's state equal the image img of len bytes? */
static int same_image(const sim *b, const uint8_t *img, size_t len)
{
    rlab_err err = {0};
    uint8_t *got = NULL;
    size_t n = 0;
    int same =
        sim_save_state(b, &got, &n, &err) == RLAB_OK && n == len && memcmp(got, img, len) == 0;
    rlab_free(got);
    return same;
}

/* Full images without their zero words ("RLSIMCK3"): the encoding of images with no zero
 * word, nearly all zeros and all zeros (sizes computed by hand), malformed bodies refused;
 * a simulation's full rows are RLSIMCK3 and smaller than the image, every round restores to
 * the saved state; an old full row ("RLSIMCK2", as earlier versions stored it) under the new
 * deltas still restores; a malformed RLSIMCK3 row is refused naming its round and changes
 * nothing. */
static void t_repro_zfull(void)
{
    rlab_err err = {0};
    /* no zero word: one run (skip 0: 1 byte, count 777: 2 bytes) and the words */
    enum { NW1 = 777, NW2 = 100000 };
    uint64_t *w1 = rlab_malloc(NW1 * 8), *w2 = rlab_calloc(NW2, 8), *back = rlab_malloc(NW2 * 8);
    uint64_t x = 0x12345;
    for (int i = 0; i < NW1; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        w1[i] = x | 1;
    }
    uint8_t *body = NULL;
    size_t n = 0;
    CHECK(sim_ck_zencode((const uint8_t *)w1, NW1 * 8, &body, &n, &err) == RLAB_OK);
    CHECK_EQ_INT((int64_t)n, 1 + 2 + NW1 * 8);
    CHECK(sim_ck_zdecode(body, n, (uint8_t *)back, NW1 * 8) == 0);
    CHECK(memcmp(back, w1, NW1 * 8) == 0);
    CHECK(sim_ck_zdecode(body, n - 1, (uint8_t *)back, NW1 * 8) != 0); /* truncated */
    CHECK(sim_ck_zdecode(body, n, (uint8_t *)back, NW1 * 8 - 8) != 0); /* past the image */
    rlab_free(body);
    /* nearly all zeros: words 0, 50000 and 99999; runs (0, 1), (49999, 1), (49998, 1): 1 + 1,
     * 3 + 1 and 3 + 1 bytes of varints and 3 words */
    w2[0] = 7, w2[50000] = ~0ull, w2[NW2 - 1] = 1ull << 63;
    CHECK(sim_ck_zencode((const uint8_t *)w2, NW2 * 8, &body, &n, &err) == RLAB_OK);
    CHECK_EQ_INT((int64_t)n, 2 + 4 + 4 + 3 * 8);
    memset(back, 0xab, NW2 * 8);
    CHECK(sim_ck_zdecode(body, n, (uint8_t *)back, NW2 * 8) == 0);
    CHECK(memcmp(back, w2, NW2 * 8) == 0);
    CHECK(sim_ck_zdecode(body, n, (uint8_t *)back, NW2 * 4) != 0);
    rlab_free(body);
    /* all zeros: an empty body */
    memset(w2, 0, NW2 * 8);
    CHECK(sim_ck_zencode((const uint8_t *)w2, NW2 * 8, &body, &n, &err) == RLAB_OK);
    CHECK_EQ_INT((int64_t)n, 0);
    CHECK(sim_ck_zdecode(body, n, (uint8_t *)back, NW2 * 8) == 0);
    CHECK(memcmp(back, w2, NW2 * 8) == 0);
    rlab_free(body);
    rlab_free(w1), rlab_free(w2), rlab_free(back);

    fixture();
    rlab_db *db = open_db("zfull.db");
    if (!db)
        return;
    int64_t r1 = begin_run(db);
    sim_config c;
    base_config(&c, 43);
    c.n_agents = 150;
    c.checkpoint_every = 1;
    c.checkpoint_full = 3;
    sim *a = make_sim(&c, NULL), *b = make_sim(&c, NULL);
    if (!a || !b)
        return;
    sim_set_id(a, r1);
    sim_attach_store(a, db, r1);
    enum { R = 5 };
    uint8_t *img[R + 1] = {0};
    size_t len[R + 1] = {0};
    for (int r = 1; r <= R; r++) {
        run(a, 1);
        CHECK(sim_save_state(a, &img[r], &len[r], &err) == RLAB_OK);
    }
    /* full: rounds 1 and 4, without their zero words */
    for (int r = 1; r <= R; r++) {
        uint8_t *row = ck_row(db, r1, r, &n);
        int want_full = r == 1 || r == 4;
        CHECK_MSG(row && n >= 8 && memcmp(row, want_full ? "RLSIMCK3" : "RLSIMDL2", 8) == 0,
                  "round %d", r);
        if (row && want_full) {
            printf("  round %d: full image %zu bytes, its row %zu\n", r, len[r], n);
            CHECK(n < len[r]);
        }
        rlab_free(row);
        err = (rlab_err){0};
        CHECK_MSG(sim_restore(b, db, r1, r, &err) == RLAB_OK, "restore %d: %s", r, err.msg);
        CHECK_MSG(same_image(b, img[r], len[r]), "round %d restored differs", r);
    }
    /* a full row alone loads */
    uint8_t *row4 = ck_row(db, r1, 4, &n);
    CHECK(row4 && sim_load_state(b, row4, n, &err) == RLAB_OK);
    CHECK(same_image(b, img[4], len[4]));
    /* malformed RLSIMCK3 rows of round 4: refused naming the round, b unchanged */
    CHECK(sim_restore(b, db, r1, 2, &err) == RLAB_OK);
    for (int k = 0; row4 && k < 6; k++) {
        uint8_t *bad = rlab_malloc(n);
        memcpy(bad, row4, n);
        size_t nb = n;
        if (k == 5) {
            /* the header's follow-edge count (the last word of its section) raised by 1000,
             * still a count the header check allows (<= n^2): it sizes the image, so it is
             * refused before anything is allocated */
            sim_ck_section sec[SIM_CK_NSECT];
            sim_ck_sections(b, sec);
            uint8_t *im = rlab_malloc(len[4]), *zb = NULL;
            size_t zn = 0;
            memcpy(im, img[4], len[4]);
            int64_t m;
            memcpy(&m, im + sec[0].len - 8, 8);
            /* the follow graph's two per-edge sections: 4 bytes an edge each, padded */
            CHECK(sec[6].len == (size_t)(m * 4 + 7) / 8 * 8 && sec[7].len == sec[6].len);
            m += 1000;
            CHECK(m <= (int64_t)b->n * b->n);
            memcpy(im + sec[0].len - 8, &m, 8);
            /* and the row's length the one that count's layout has, as a forger would */
            const uint64_t want = len[4] - 2 * sec[6].len + 2 * (((uint64_t)m * 4 + 7) / 8 * 8);
            CHECK(sim_ck_zencode(im, len[4], &zb, &zn, &err) == RLAB_OK);
            rlab_free(bad);
            bad = rlab_malloc(48 + zn); /* ck_dhead, then the body */
            memcpy(bad, row4, 48);
            memcpy(bad + 40, &want, 8); /* ck_dhead.len */
            if (zb)
                memcpy(bad + 48, zb, zn);
            nb = 48 + zn;
            rlab_free(zb);
            rlab_free(im);
        }
        uint64_t v;
        if (k == 0) {
            bad[n - 3] ^= 0x5a; /* a word of the image: the hash check */
        } else if (k == 1) {
            nb = n / 2; /* truncated */
        } else if (k == 2) {
            memcpy(&v, bad + 40, 8); /* ck_dhead.len: another image length */
            v += 8;
            memcpy(bad + 40, &v, 8);
        } else if (k == 3) {
            memcpy(&v, bad + 16, 8); /* ck_dhead.base_round: not "zeros" */
            v = 2;
            memcpy(bad + 16, &v, 8);
        } else if (k == 4) {
            nb = 47; /* shorter than its header */
        }
        ck_put_row(db, r1, 4, bad, nb);
        err = (rlab_err){0};
        int rc = sim_restore(b, db, r1, 4, &err);
        CHECK_MSG(rc == RLAB_EFORMAT, "case %d: rc %d", k, rc);
        printf("  malformed row %d: %s\n", k, err.msg);
        if (k != 4)
            CHECK_STR_CONTAINS(err.msg, "round 4");
        if (k == 5)
            CHECK_STR_CONTAINS(err.msg, "follow edges");
        CHECK_MSG(same_image(b, img[2], len[2]), "case %d changed the simulation", k);
        err = (rlab_err){0};
        CHECK(sim_restore(b, db, r1, 5, &err) == RLAB_EFORMAT); /* its delta too */
        CHECK(same_image(b, img[2], len[2]));
        CHECK(sim_load_state(b, bad, nb, &err) == RLAB_EFORMAT);
        CHECK(same_image(b, img[2], len[2]));
        rlab_free(bad);
    }
    if (row4)
        ck_put_row(db, r1, 4, row4, n);
    rlab_free(row4);
    CHECK(sim_restore(b, db, r1, 5, &err) == RLAB_OK && same_image(b, img[5], len[5]));
    /* an old full row (RLSIMCK2: the image verbatim) under the deltas of rounds 2 and 3 */
    ck_put_row(db, r1, 1, img[1], len[1]);
    for (int r = 1; r <= 3; r++) {
        err = (rlab_err){0};
        CHECK_MSG(sim_restore(b, db, r1, r, &err) == RLAB_OK, "old row, restore %d: %s", r,
                  err.msg);
        CHECK_MSG(same_image(b, img[r], len[r]), "old row: round %d restored differs", r);
    }
    for (int r = 1; r <= R; r++)
        rlab_free(img[r]);
    sim_free(a);
    sim_free(b);
    rlab_db_close(db);
}

/* ---- sim.llm
 * ------------------------------------------------------------------------------------- */

static void t_llm_backend(void)
{
    fixture();
    fake_rec_llm *srv = fake_rec_llm_start();
    if (!srv) {
        rlab_test_skip("cannot start the loopback server");
        return;
    }
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", fake_rec_llm_port(srv));
    rlab_err err = {0};
    rlab_db *db = open_db("llm.db");
    if (!db)
        return;
    for (int garbage = 0; garbage < 2; garbage++) {
        rlab_llm_config lc = {.backend = "openai",
                              .base_url = url,
                              .model = garbage ? "garbage" : "agent",
                              .api_key = "",
                              .timeout = 10,
                              .max_attempts = 1,
                              .max_in_flight = 8};
        rlab_llm *llm = rlab_llm_new(&lc, &err);
        CHECK_MSG(llm != NULL, "%s", err.msg);
        if (!llm)
            break;
        sim_config c;
        base_config(&c, 41);
        c.n_agents = 24;
        c.use_llm = 1;
        c.max_fallback = 1.0; /* the garbage server: every decision falls back, on purpose */
        sim *s = make_sim(&c, NULL);
        CHECK(sim_set_llm(s, llm, &err) == RLAB_OK);
        int64_t run_id = begin_run(db);
        sim_set_id(s, run_id);
        sim_attach_store(s, db, run_id);
        long before = fake_rec_llm_requests(srv);
        totals t = run_tot(s, 2);
        long sent = fake_rec_llm_requests(srv) - before;
        /* who decided, from the events */
        rlab_db_value p[1] = {{.type = RLAB_DB_INT, .i = run_id}};
        rlab_db_result *res = rlab_db_query_table(
            db,
            "SELECT sum(json_extract(payload, '$.by') = 'llm'), "
            "sum(json_extract(payload, '$.by') = 'fallback'), "
            "sum(json_extract(payload, '$.by') = 'offline'), count(*) FROM events "
            "WHERE run_id = ?1 AND kind IN ('visit', 'watch', 'chat', 'post', 'nothing')",
            p, 1, 0, &err);
        CHECK_MSG(res != NULL, "%s", err.msg);
        if (res) {
            int64_t by_llm = rlab_db_result_cell(res, 0, 0)->i;
            int64_t by_fb = rlab_db_result_cell(res, 0, 1)->i;
            int64_t by_off = rlab_db_result_cell(res, 0, 2)->i;
            int64_t n = rlab_db_result_cell(res, 0, 3)->i;
            printf("  %s server: %ld requests, events by llm %lld, fallback %lld, offline %lld "
                   "of %lld\n",
                   garbage ? "garbage" : "agent", sent, (long long)by_llm, (long long)by_fb,
                   (long long)by_off, (long long)n);
            CHECK(n > 20);
            CHECK_EQ_INT(by_off, 0);
            if (!garbage) {
                /* the fake model always enters the site and buys the first item */
                CHECK_EQ_INT(by_llm, n);
                CHECK_EQ_INT(by_fb, 0);
                CHECK(t.rec_watches > 20);
            } else {
                CHECK_EQ_INT(by_fb, n);
                CHECK_EQ_INT(by_llm, 0);
                /* each decision asked twice (one retry), then decided offline */
                CHECK(sent >= 2 * t.active);
                /* and counted as unparsable, with the first reply quoted */
                const sim_llm_trouble *tr = sim_llm_trouble_get(s);
                CHECK(tr->n[SIM_LLM_UNPARSABLE] >= 2 * t.active);
                CHECK_STR_CONTAINS(tr->first[SIM_LLM_UNPARSABLE], "'I am not sure.'");
                CHECK_EQ_INT(sim_last_stats(s)->llm_fallbacks, sim_last_stats(s)->llm_decisions);
            }
            rlab_db_result_free(res);
        }
        /* the interview goes through the model too */
        int by = -1;
        char *ans = sim_interview(s, 3, "What did you watch?", &by, &err);
        CHECK(ans != NULL);
        if (!garbage) {
            CHECK_EQ_INT(by, SIM_BY_LLM);
            CHECK_STR_CONTAINS(ans, "last movie");
        } else {
            CHECK_EQ_INT(by, SIM_BY_FALLBACK);
            CHECK_STR_CONTAINS(ans, "I'm ");
        }
        rlab_free(ans);
        sim_free(s);
        rlab_llm_free(llm);
    }
    /* an HTTP-level failure (nothing listens on the port any more) also falls back */
    fake_rec_llm_stop(srv);
    rlab_llm_config lc = {.backend = "openai",
                          .base_url = url,
                          .model = "agent",
                          .api_key = "",
                          .timeout = 2,
                          .connect_timeout = 1,
                          .max_attempts = 1};
    rlab_llm *llm = rlab_llm_new(&lc, &err);
    if (llm) {
        sim_config c;
        base_config(&c, 42);
        c.n_agents = 10;
        c.use_llm = 1;
        c.llm_retries = 0;
        c.max_fallback = 1.0;
        sim *s = make_sim(&c, NULL);
        sim_set_llm(s, llm, &err);
        totals t = run_tot(s, 1);
        CHECK(t.active > 0);
        CHECK(sim_last_stats(s)->llm_fallbacks >= t.active);
        CHECK(sim_last_stats(s)->llm_errors[SIM_LLM_UNREACHABLE] > 0);
        /* with the default max_fallback the same round is an error naming the cause */
        s->cfg.max_fallback = 0.5;
        int done = -1;
        CHECK_EQ_INT(sim_step(s, 3, NULL, NULL, NULL, NULL, &done, &err), RLAB_EIO);
        CHECK_EQ_INT(done, 1);
        CHECK_STR_CONTAINS(err.msg, "llm: connection error");
        CHECK_STR_CONTAINS(err.msg, "more than max_fallback=0.5");
        sim_free(s);
        rlab_llm_free(llm);
    }
    rlab_db_close(db);
}

/* ---- sim.plugin
 * ----------------------------------------------------------------------------------- */

static rlab_result *cmd(const char *line);
static int64_t res_int(const rlab_result *r, const char *name);
static int64_t q_int(const char *sql, int64_t a);

/* Progress events of the commands run while installed. */
typedef struct prog_count {
    int replies, mid_batch, rounds;
} prog_count;

static void count_progress(const rlab_event *ev, void *ud)
{
    prog_count *pc = ud;
    if (ev->type != RLAB_EV_PROGRESS || !ev->label)
        return;
    if (strcmp(ev->label, "llm replies") == 0) {
        pc->replies++;
        pc->mid_batch += ev->step < ev->total;
    } else if (strcmp(ev->label, "round") == 0) {
        pc->rounds++;
    }
}

/* A bad language server is an error, not a silent offline run: unreachable (a closed port),
 * garbage replies, HTTP 401 and a server that never answers (short llm_timeout) each print
 * their first error, count fallbacks and errors per round in the step's metrics and fail
 * the step (RLAB_EIO, run `failed`) past max_fallback; max_fallback=1 tolerates them. */
/* sim.llm.pipeline: the pipelined round (each agent's next request sent when its previous
 * reply is back, core/llm's pipe) makes the same simulation as the step-by-step batches,
 * with 1 and with 16 requests in flight, while the server answers out of order (a random
 * 0-8 ms per reply) and visits run several steps ("mixed": BUY / NEXT / LEAVE by a hash of
 * the prompt). Compared: every event (seq, round, time, agent, kind, payload) and the
 * round totals, satisfaction sums included (bit for bit: the shared effects are replayed
 * in one order). */
static void t_llm_pipeline(void)
{
    fixture();
    fake_rec_llm *srv = fake_rec_llm_start();
    if (!srv) {
        rlab_test_skip("cannot start the loopback server");
        return;
    }
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", fake_rec_llm_port(srv));
    rlab_db *db = open_db("pipe.db");
    if (!db) {
        fake_rec_llm_stop(srv);
        return;
    }
    /* {step batches, in flight}: the reference first */
    const int variant[4][2] = {{1, 1}, {0, 1}, {0, 16}, {0, 16}};
    int64_t runs[4] = {0};
    totals tot[4];
    long sent[4] = {0};
    rlab_err err = {0};
    for (int v = 0; v < 4; v++) {
        rlab_llm_config lc = {.backend = "openai",
                              .base_url = url,
                              .model = "delay:0~8,mixed",
                              .api_key = "",
                              .timeout = 20,
                              .max_in_flight = variant[v][1]};
        rlab_llm *llm = rlab_llm_new(&lc, &err);
        CHECK_MSG(llm != NULL, "%s", err.msg);
        if (!llm)
            break;
        sim_config c;
        base_config(&c, 43);
        c.n_agents = 40;
        c.use_llm = 1;
        c.llm_step_batches = variant[v][0];
        sim *s = make_sim(&c, BPR);
        if (!s) {
            rlab_llm_free(llm);
            break;
        }
        CHECK(sim_set_llm(s, llm, &err) == RLAB_OK);
        runs[v] = begin_run(db);
        sim_set_id(s, runs[v]);
        sim_attach_store(s, db, runs[v]);
        long before = fake_rec_llm_requests(srv);
        tot[v] = run_tot(s, 3);
        sent[v] = fake_rec_llm_requests(srv) - before;
        sim_free(s);
        rlab_llm_free(llm);
    }
    fake_rec_llm_stop(srv);
    const char *q = "SELECT count(*), "
                    "sum(CASE WHEN a.seq = b.seq AND a.round = b.round AND a.vtime = b.vtime AND "
                    "a.agent IS b.agent AND a.kind = b.kind AND a.payload = b.payload THEN 1 "
                    "ELSE 0 END), "
                    "sum(a.kind = 'visit' AND json_extract(a.payload, '$.by') = 'llm' AND "
                    "json_array_length(a.payload, '$.steps') > 1) "
                    "FROM events a LEFT JOIN events b ON b.run_id = ?2 AND b.seq = "
                    "a.seq WHERE a.run_id = ?1";
    for (int v = 1; v < 4 && runs[v]; v++) {
        rlab_db_value p[2] = {{.type = RLAB_DB_INT, .i = runs[0]},
                              {.type = RLAB_DB_INT, .i = runs[v]}};
        rlab_db_result *res = rlab_db_query_table(db, q, p, 2, 0, &err);
        CHECK_MSG(res != NULL, "%s", err.msg);
        if (!res)
            continue;
        int64_t n = rlab_db_result_cell(res, 0, 0)->i, same = rlab_db_result_cell(res, 0, 1)->i;
        int64_t multi = rlab_db_result_cell(res, 0, 2)->i;
        printf("  pipelined=%d in_flight=%d: %lld events, %lld identical to step batches "
               "(%lld llm visits of several steps), %ld vs %ld requests\n",
               !variant[v][0], variant[v][1], (long long)n, (long long)same, (long long)multi,
               sent[v], sent[0]);
        CHECK(n > 100);
        CHECK(multi > 0);
        CHECK_EQ_INT(same, n);
        rlab_db_result_free(res);
        CHECK_EQ_INT(sent[v], sent[0]);
        CHECK_EQ_INT(tot[v].watches, tot[0].watches);
        CHECK_EQ_INT(tot[v].impressions, tot[0].impressions);
        CHECK_EQ_INT(tot[v].chats + tot[v].posts, tot[0].chats + tot[0].posts);
        CHECK_MSG(memcmp(&tot[v].sat, &tot[0].sat, sizeof(double)) == 0 &&
                      memcmp(&tot[v].chance, &tot[0].chance, sizeof(double)) == 0,
                  "satisfaction sums %.17g / %.17g vs %.17g / %.17g", tot[v].sat, tot[v].chance,
                  tot[0].sat, tot[0].chance);
    }
    rlab_db_close(db);
}

static void t_llm_errors(void)
{
    fixture();
    if (!H || !rlab_host_find_cmd(H, "simulator.new")) {
        rlab_test_skip("simulator plugin not loaded");
        return;
    }
    rlab_err err = {0};
    if (!rlab_host_db(H)) {
        char path[512];
        snprintf(path, sizeof path, "%s/llmerr.db", rlab_test_tmpdir());
        CHECK_MSG(rlab_host_set_store(H, path, &err) == RLAB_OK, "%s", err.msg);
    }
    fake_rec_llm *srv = fake_rec_llm_start(), *dead = fake_rec_llm_start();
    if (!srv || !dead) {
        fake_rec_llm_stop(srv);
        fake_rec_llm_stop(dead);
        rlab_test_skip("cannot start the loopback server");
        return;
    }
    int dead_port = fake_rec_llm_port(dead);
    fake_rec_llm_stop(dead); /* nothing listens there any more */
    static const struct {
        const char *name, *model, *kind, *msg;
        int dead;
        double timeout;
    } cases[] = {
        {"unreachable", "agent", "unreachable", "llm: connection error", 1, 5},
        {"garbage", "garbage", "unparsable", "llm: unparsable reply to a recagent.", 0, 5},
        {"401", "auth", "auth", "llm: HTTP 401", 0, 5},
        {"hanging", "hang", "timeout", "llm: timeout after 0.3 s", 0, 0.3},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char line[320];
        snprintf(line, sizeof line,
                 "simulator.new data=w agents=8 seed=3 backend=openai "
                 "llm_url=http://127.0.0.1:%d llm_model=%s llm_timeout=%g",
                 cases[i].dead ? dead_port : fake_rec_llm_port(srv), cases[i].model,
                 cases[i].timeout);
        rlab_result *r = cmd(line);
        int64_t sim_id = res_int(r, "sim");
        rlab_result_free(r);
        rlab_result *res = NULL;
        int rc = rlab_host_run_sync(H, "simulator.step rounds=3", &res, &err);
        CHECK_MSG(rc == RLAB_EIO, "%s: status %d (%s), expected EIO", cases[i].name, rc, err.msg);
        CHECK_STR_CONTAINS(err.msg, cases[i].msg);
        CHECK_STR_CONTAINS(err.msg, "language-model decisions fell back to the offline policy in "
                                    "round 1, more than max_fallback=0.5");
        CHECK_MSG(strncmp(err.msg, "simulator.step: llm: ", 21) == 0, "%s: %s", cases[i].name,
                  err.msg);
        CHECK_EQ_INT(res_int(res, "rounds_done"), 1);
        /* the first error of its kind is in the output, once */
        char want[64];
        snprintf(want, sizeof want, "language model error (%s): ", cases[i].kind);
        int shown = 0;
        for (int k = 0; res && k < res->nlines; k++)
            if (strncmp(res->lines[k], want, strlen(want)) == 0) {
                shown++;
                CHECK_STR_CONTAINS(res->lines[k], cases[i].msg);
            }
        CHECK_MSG(shown == 1, "%s: '%s' shown %d times", cases[i].name, want, shown);
        rlab_result_free(res);
        /* the run failed and its metrics count the round's fallbacks and errors */
        int64_t run = q_int("SELECT max(id) FROM runs WHERE name = 'simulator.step'", 0);
        CHECK_EQ_INT(q_int("SELECT count(*) FROM runs WHERE id = ?1 AND status = 'failed' AND "
                           "error LIKE '%max_fallback%'",
                           run),
                     1);
        int64_t dec = q_int(
            "SELECT CAST(value AS INTEGER) FROM metrics WHERE run_id = ?1 AND split = 'sim' AND "
            "name = 'llm_decisions' AND step = 1",
            run);
        CHECK(dec > 0);
        CHECK_EQ_INT(q_int("SELECT CAST(value AS INTEGER) FROM metrics WHERE run_id = ?1 AND split "
                           "= 'sim' AND "
                           "name = 'llm_fallbacks' AND step = 1",
                           run),
                     dec);
        char sql[256];
        snprintf(sql, sizeof sql,
                 "SELECT CAST(value AS INTEGER) FROM metrics WHERE run_id = ?1 AND split = 'sim' "
                 "AND name = "
                 "'llm_errors.%s' AND step = 1",
                 cases[i].kind);
        CHECK(q_int(sql, run) > 0);
        /* the events of the stored round say so too */
        CHECK(q_int("SELECT count(*) FROM events WHERE run_id = ?1 AND round = 1 AND "
                    "json_extract(payload, '$.by') = 'fallback'",
                    sim_id) > 0);
        CHECK_EQ_INT(q_int("SELECT count(*) FROM events WHERE run_id = ?1 AND round = 1 AND "
                           "json_extract(payload, '$.by') = 'llm'",
                           sim_id),
                     0);
    }
    /* max_fallback=1 tolerates a garbage server: the step runs, the error is still shown
     * (a fresh server: the fake serves a bounded number of connections) */
    fake_rec_llm_stop(srv);
    srv = fake_rec_llm_start();
    if (!srv)
        return;
    char line[320];
    snprintf(line, sizeof line,
             "simulator.new data=w agents=8 seed=3 backend=openai llm_url=http://127.0.0.1:%d "
             "llm_model=garbage",
             fake_rec_llm_port(srv));
    rlab_result_free(cmd(line));
    rlab_result *r = cmd("simulator.step rounds=2 max_fallback=1");
    CHECK_EQ_INT(res_int(r, "rounds_done"), 2);
    int shown = 0;
    for (int k = 0; r && k < r->nlines; k++)
        shown += strncmp(r->lines[k], "language model error (unparsable): ", 35) == 0;
    CHECK_EQ_INT(shown, 1);
    rlab_result_free(r);
    /* a slow server: progress per reply, not only per round */
    fake_rec_llm_stop(srv);
    srv = fake_rec_llm_start();
    if (!srv)
        return;
    snprintf(line, sizeof line,
             "simulator.new data=w agents=8 seed=3 backend=openai llm_url=http://127.0.0.1:%d "
             "llm_model=delay:20 in_flight=2",
             fake_rec_llm_port(srv));
    rlab_result_free(cmd(line));
    prog_count pc = {0};
    rlab_host_set_event_fn(H, count_progress, &pc);
    r = cmd("simulator.step rounds=1");
    rlab_host_set_event_fn(H, NULL, NULL);
    CHECK_EQ_INT(res_int(r, "rounds_done"), 1);
    rlab_result_free(r);
    CHECK_EQ_INT(pc.rounds, 1);
    CHECK_MSG(pc.replies >= 8 && pc.mid_batch > 0, "%d reply events, %d within a batch", pc.replies,
              pc.mid_batch);
    fake_rec_llm_stop(srv);
}

static rlab_result *cmd(const char *line) { return rlab_test_run(H, line, RLAB_OK, NULL); }

static int64_t res_int(const rlab_result *r, const char *name)
{
    const rlab_cell *c = r ? rlab_result_scalar(r, name) : NULL;
    return c ? c->i : -1;
}

static int64_t q_int(const char *sql, int64_t a)
{
    rlab_err err = {0};
    rlab_db_value p[1] = {{.type = RLAB_DB_INT, .i = a}};
    rlab_db_result *r =
        rlab_db_query_table(rlab_host_db(H), sql, p, strstr(sql, "?1") ? 1 : 0, 0, &err);
    CHECK_MSG(r != NULL, "%s: %s", sql, err.msg);
    int64_t v = r && r->nrow > 0 ? rlab_db_result_cell(r, 0, 0)->i : -1;
    rlab_db_result_free(r);
    return v;
}

static void t_plugin_commands(void)
{
    fixture();
    if (!H || !rlab_host_find_cmd(H, "simulator.new")) {
        rlab_test_skip("simulator plugin not loaded");
        return;
    }
    char path[512];
    snprintf(path, sizeof path, "%s/plugin.db", rlab_test_tmpdir());
    rlab_err err = {0};
    CHECK_MSG(rlab_host_set_store(H, path, &err) == RLAB_OK, "%s", err.msg);
    const char *model = BPR ? "bpr" : "random";
    char line[256];
    snprintf(line, sizeof line, "simulator.new data=w agents=120 model=%s seed=5", model);
    rlab_result *r = cmd(line);
    int64_t sim1 = res_int(r, "sim");
    CHECK(sim1 > 0);
    CHECK_EQ_INT(res_int(r, "ground_truth"), 1);
    rlab_result_free(r);
    r = cmd("simulator.step rounds=6");
    CHECK_EQ_INT(res_int(r, "round"), 6);
    rlab_result_free(r);
    CHECK_EQ_INT(q_int("SELECT count(*) FROM simulator_stats WHERE sim = ?1", sim1), 6);
    CHECK_EQ_INT(q_int("SELECT count(*) FROM simulator_checkpoints WHERE sim = ?1", sim1), 7);
    CHECK(q_int("SELECT count(*) FROM events WHERE run_id = ?1 AND kind = 'watch'", sim1) > 50);
    /* watches in the stats equal watch events */
    CHECK_EQ_INT(q_int("SELECT sum(watches) FROM simulator_stats WHERE sim = ?1", sim1),
                 q_int("SELECT count(*) FROM events WHERE run_id = ?1 AND kind = 'watch'", sim1));
    r = cmd("simulator.interview agent=4 question=\"Which movies did you like lately?\"");
    const rlab_cell *ans = r ? rlab_result_scalar(r, "answer") : NULL;
    CHECK(ans && ans->s && strstr(ans->s, "I'm "));
    rlab_result_free(r);
    r = cmd("simulator.edit agent=4 field=interests value=\"Action;Comedy\"");
    rlab_result_free(r);
    {
        rlab_result *bad = NULL;
        CHECK(rlab_host_run_sync(H, "simulator.edit agent=4 field=interests value=Nonsense", &bad,
                                 &err) == RLAB_EINVAL);
        CHECK_STR_CONTAINS(err.msg, "unknown genre 'Nonsense'");
        rlab_result_free(bad);
    }
    r = cmd("simulator.rewire mode=homophily k=6");
    CHECK_EQ_INT(res_int(r, "edges"), 120 * 6);
    rlab_result_free(r);
    r = cmd("simulator.inject items=i3,i4 rounds=1");
    rlab_result_free(r);
    r = cmd("simulator.post agent=2 item=i5");
    rlab_result_free(r);
    r = cmd("simulator.step rounds=2");
    rlab_result_free(r);
    /* the injected items led the first page of every visit in round 7 */
    CHECK_EQ_INT(q_int("SELECT count(*) FROM events WHERE run_id = ?1 AND round = 7 AND kind = "
                       "'visit' AND json_extract(payload, '$.steps[0].page[0]') != 3",
                       sim1),
                 0);
    CHECK(q_int("SELECT count(*) FROM events WHERE run_id = ?1 AND round = 7 AND kind = 'visit'",
                sim1) > 0);
    CHECK_EQ_INT(q_int("SELECT count(*) FROM simulator_interventions WHERE sim = ?1", sim1), 5);
    /* branch from round 3 with the random recommender; the parent is untouched */
    r = cmd("simulator.branch round=3 model=random");
    int64_t sim2 = res_int(r, "sim");
    CHECK(sim2 > sim1);
    rlab_result_free(r);
    r = cmd("simulator.step rounds=3");
    CHECK_EQ_INT(res_int(r, "round"), 6);
    rlab_result_free(r);
    CHECK_EQ_INT(q_int("SELECT count(*) FROM simulator_stats WHERE sim = ?1", sim2), 3);
    CHECK_EQ_INT(q_int("SELECT parent FROM simulator_sims WHERE sim = ?1", sim2), sim1);
    r = cmd("simulator.stats");
    CHECK(r && r->ntables == 1 && r->tables[0]->nrows == 6);
    rlab_result_free(r);
    r = cmd("simulator.agent agent=4");
    CHECK(r && r->ntables == 2);
    rlab_result_free(r);
    /* pause before a step: the step runs no round and reports what is left */
    r = cmd("simulator.pause");
    rlab_result_free(r);
    r = cmd("simulator.step rounds=2");
    CHECK_EQ_INT(res_int(r, "rounds_done"), 2); /* a step clears an earlier pause */
    rlab_result_free(r);
    /* as a job on the host's worker thread (its own store connection) */
    int job = 0;
    CHECK(rlab_host_submit(H, "simulator.step rounds=1", &job, &err) == RLAB_OK);
    rlab_result *jr = NULL;
    CHECK_MSG(rlab_host_wait(H, job, &jr, &err) == RLAB_OK, "%s", err.msg);
    CHECK_EQ_INT(res_int(jr, "round"), 9);
    rlab_result_free(jr);
    CHECK_EQ_INT(q_int("SELECT count(*) FROM simulator_stats WHERE sim = ?1 AND round = 9", sim2),
                 1);
    CHECK(q_int("SELECT count(*) FROM events WHERE run_id = ?1 AND round = 9", sim2) > 0);
    /* errors */
    rlab_result *bad = NULL;
    CHECK(rlab_host_run_sync(H, "simulator.branch round=99", &bad, &err) == RLAB_ENOTFOUND);
    rlab_result_free(bad);
    bad = NULL;
    CHECK(rlab_host_run_sync(H, "simulator.new data=w model=nosuch", &bad, &err) == RLAB_ENOTFOUND);
    CHECK_STR_CONTAINS(err.msg, "model 'nosuch' not found");
    rlab_result_free(bad);
}

static void t_plugin_retrain(void)
{
    fixture();
    if (!H || !BPR || !rlab_host_db(H)) {
        rlab_test_skip("needs the baselines plugin and the store of sim.plugin.1");
        return;
    }
    rlab_result *r = cmd("simulator.new data=w agents=80 model=bpr seed=6 retrain_every=2 "
                         "retrain_epochs=3");
    int64_t id = res_int(r, "sim");
    rlab_result_free(r);
    r = cmd("simulator.step rounds=3");
    const rlab_cell *m = r ? rlab_result_scalar(r, "model") : NULL;
    char want[64];
    snprintf(want, sizeof want, "sim%lld.rec", (long long)id);
    CHECK(m && m->s && strcmp(m->s, want) == 0);
    rlab_result_free(r);
    CHECK_EQ_INT(q_int("SELECT count(*) FROM events WHERE run_id = ?1 AND kind = 'retrain'", id),
                 1);
    /* round 3 used the retrained model */
    rlab_err err = {0};
    rlab_db_value p[1] = {{.type = RLAB_DB_INT, .i = id}};
    rlab_db_result *q = rlab_db_query_table(
        rlab_host_db(H), "SELECT model FROM simulator_stats WHERE sim = ?1 ORDER BY round", p, 1, 0,
        &err);
    CHECK(q && q->nrow == 3);
    if (q && q->nrow == 3) {
        CHECK(strcmp(rlab_db_result_cell(q, 1, 0)->s, "bpr") == 0);
        CHECK(strcmp(rlab_db_result_cell(q, 2, 0)->s, want) == 0);
    }
    rlab_db_result_free(q);
    rlab_model *rm = rlab_models_get(rlab_host_models(H), want);
    CHECK(rm != NULL);
    rlab_model_release(rm);
    /* as a job: the retraining runs inside the step (a nested call with the job's store
     * connection), which adopts the new model for round 3; nothing else is queued */
    r = cmd("simulator.new data=w agents=80 model=bpr seed=6 retrain_every=2 retrain_epochs=3");
    int64_t id2 = res_int(r, "sim");
    rlab_result_free(r);
    int job = 0;
    CHECK(rlab_host_submit(H, "simulator.step rounds=3", &job, &err) == RLAB_OK);
    CHECK(rlab_host_wait(H, job, NULL, &err) == RLAB_OK);
    for (int guard = 0; guard < 10; guard++) { /* the queued train and resume jobs */
        rlab_job_info ji[8];
        int nj = rlab_host_jobs(H, ji, 8);
        if (nj == 0)
            break;
        for (int k = 0; k < nj; k++)
            CHECK_MSG(rlab_host_wait(H, ji[k].id, NULL, &err) == RLAB_OK, "%s: %s", ji[k].cmd,
                      err.msg);
    }
    snprintf(want, sizeof want, "sim%lld.rec", (long long)id2);
    rlab_db_value p2[1] = {{.type = RLAB_DB_INT, .i = id2}};
    q = rlab_db_query_table(rlab_host_db(H),
                            "SELECT model FROM simulator_stats WHERE sim = ?1 ORDER BY round", p2,
                            1, 0, &err);
    CHECK(q && q->nrow == 3);
    if (q && q->nrow == 3)
        CHECK(strcmp(rlab_db_result_cell(q, 2, 0)->s, want) == 0);
    rlab_db_result_free(q);
}

/* Integer arguments are checked against their C type and the declared maxima: values that
 * used to be cut to 32 bits (rounds=2^32+2 ran 2 rounds, rounds=2^31 ran none and reported
 * done, agent=2^32+5 showed agent 5) are refused; seeds stay 64-bit. */
static void t_plugin_args(void)
{
    fixture();
    if (!H || !rlab_host_find_cmd(H, "simulator.new")) {
        rlab_test_skip("simulator plugin not loaded");
        return;
    }
    rlab_err err = {0};
    if (!rlab_host_db(H)) {
        char path[512];
        snprintf(path, sizeof path, "%s/args.db", rlab_test_tmpdir());
        CHECK_MSG(rlab_host_set_store(H, path, &err) == RLAB_OK, "%s", err.msg);
    }
    static const struct {
        const char *line, *msg;
    } bad[] = {
        {"simulator.step rounds=4294967298",
         "simulator.step: bad argument 'rounds' (integer in [1, 1000000] expected, got "
         "4294967298)"},
        {"simulator.step rounds=2147483648",
         "simulator.step: bad argument 'rounds' (integer in [1, 1000000] expected, got "
         "2147483648)"},
        {"simulator.agent agent=4294967301",
         "simulator.agent: bad argument 'agent' (integer in [0, 999999] expected, got "
         "4294967301)"},
        {"simulator.resume rounds=1000001",
         "simulator.resume: bad argument 'rounds' (integer in [0, 1000000] expected, got "
         "1000001)"},
        {"simulator.new agents=4294967496",
         "simulator.new: bad argument 'agents' (integer in [0, 1000000] expected, got "
         "4294967496)"},
        {"simulator.rewire k=4294967304",
         "simulator.rewire: bad argument 'k' (integer in [1, 1000] expected, got 4294967304)"},
        {"simulator.world interactions=100000001",
         "simulator.world: bad argument 'interactions' (integer in [1, 100000000] expected, got "
         "100000001)"},
        {"simulator.new seed=-1",
         "simulator.new: bad argument 'seed' (integer >= 0 expected, got -1)"},
    };
    int64_t runs0 = q_int("SELECT count(*) FROM runs", 0);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rlab_result *res = NULL;
        int rc = rlab_host_run_sync(H, bad[i].line, &res, &err);
        CHECK_MSG(rc == RLAB_EINVAL, "'%s': status %d, expected EINVAL", bad[i].line, rc);
        CHECK_MSG(strcmp(err.msg, bad[i].msg) == 0, "'%s':\n  got      '%s'\n  expected '%s'",
                  bad[i].line, err.msg, bad[i].msg);
        rlab_result_free(res);
    }
    CHECK_EQ_INT(q_int("SELECT count(*) FROM runs", 0), runs0); /* refused before running */
    /* a seed of 2^40 works, and is recorded whole */
    rlab_result *r = cmd("simulator.new data=w agents=20 seed=1099511627776");
    int64_t id = res_int(r, "sim");
    rlab_result_free(r);
    CHECK(id > 0);
    CHECK(q_int("SELECT seed FROM simulator_sims WHERE sim = ?1", id) == (int64_t)1 << 40);
    CHECK(q_int("SELECT seed FROM runs WHERE id = ?1", id) == (int64_t)1 << 40);
    r = cmd("simulator.step rounds=2");
    CHECK_EQ_INT(res_int(r, "rounds_done"), 2);
    rlab_result_free(r);
    r = cmd("simulator.branch round=1 seed=9223372036854775807");
    int64_t id2 = res_int(r, "sim");
    rlab_result_free(r);
    CHECK(q_int("SELECT seed FROM simulator_sims WHERE sim = ?1", id2) == INT64_MAX);
    /* the help names the maxima */
    char *help = rlab_host_help_cmd(H, "simulator.step", &err);
    CHECK_STR_CONTAINS(help, "rounds to run (default 1; integer in [1, 1000000])");
    rlab_free(help);
}

/* ---- sim.profiles -------------------------------------------------------------------------------
 */

static void t_profiles_csv(void)
{
    fixture();
    char path[512];
    snprintf(path, sizeof path, "%s/profiles.csv", rlab_test_tmpdir());
    FILE *f = fopen(path, "w");
    if (!f)
        return;
    char b0[64], b1[64];
    const char *g0 = rlab_world_genre_name(0, b0, sizeof b0);
    const char *g1 = rlab_world_genre_name(1, b1, sizeof b1);
    fprintf(f,
            "id,name,age,gender,traits,status,interests,feature\n"
            "u0,Tommy Test,31,M,curious,student,%s;%s,Explorer;Poster\n"
            "u999,Nobody,20,F,x,y,%s,Watcher\n",
            g0, g1, g0);
    fclose(f);
    sim_config c;
    base_config(&c, 1);
    c.n_agents = 10;
    sim *s = NULL;
    rlab_err err = {0};
    sim_profiles pr = {.csv_path = path};
    CHECK_MSG(sim_new(&c, DS, W, NULL, &pr, &s, &err) == RLAB_OK, "%s", err.msg);
    if (!s)
        return;
    const sim_agent *a = sim_agent_at(s, 0);
    CHECK(strcmp(a->name, "Tommy Test") == 0);
    CHECK_EQ_INT(a->age, 31);
    CHECK_EQ_INT(a->arch, SIM_ARCH(RLAB_ARCH_EXPLORER) | SIM_ARCH(RLAB_ARCH_POSTER));
    CHECK_NEAR(sim_taste(s, 0)[0], 0.5, 1e-6);
    CHECK_NEAR(sim_taste(s, 0)[1], 0.5, 1e-6);
    sim_free(s);
    /* a bad genre names the file and line */
    f = fopen(path, "w");
    fprintf(f, "id,interests\nu1,Nonsense\n");
    fclose(f);
    CHECK(sim_new(&c, DS, W, NULL, &pr, &s, &err) == RLAB_EINVAL);
    CHECK_STR_CONTAINS(err.msg, "unknown genre");
    CHECK_EQ_INT(err.line, 2);
}

static void t_profiles_ml100k(void)
{
    const char *dir = rlab_test_data_dir();
    if (!dir) {
        rlab_test_skip("RECLAB_DATA not set");
        return;
    }
    char path[512];
    snprintf(path, sizeof path, "%s/movielens-100k", dir);
    rlab_dataset *ds = NULL;
    rlab_err err = {0};
    if (rlab_load_ml100k(path, "ml", &ds, &err)) {
        rlab_test_skip("no movielens-100k");
        return;
    }
    sim_config c;
    sim_config_default(&c);
    c.n_agents = 0; /* all 943 users */
    c.checkpoint_every = 0;
    sim *s = NULL;
    CHECK_MSG(sim_new(&c, ds, NULL, NULL, NULL, &s, &err) == RLAB_OK, "%s", err.msg);
    int32_t u1 = rlab_vocab_find(&ds->users, "1", 1);
    CHECK(u1 >= 0);
    if (s && u1 >= 0) {
        CHECK_EQ_INT(sim_n_agents(s), 943);
        /* u.user line 1: 1|24|M|technician|85711 */
        const sim_agent *a = sim_agent_at(s, u1);
        CHECK_EQ_INT(a->age, 24);
        CHECK(strcmp(a->gender, "M") == 0);
        CHECK(strcmp(a->occupation, "technician") == 0);
        CHECK_EQ_INT(sim_n_genres(s), 19);
        totals t = run_tot(s, 3);
        CHECK(t.watches > 50);
        CHECK(isnan(sim_last_stats(s)->satisfaction)); /* no ground truth */
        char *ans = sim_interview(s, u1, "What do you like?", NULL, &err);
        CHECK(ans && strstr(ans, "enjoy most"));
        rlab_free(ans);
        sim_free(s);
    }
    rlab_dataset_free(ds);
}

static const rlab_test tests[] = {{"sim.parse.1", t_parse_basic},
                                  {"sim.parse.2", t_parse_roundtrip},
                                  {"sim.memory.1", t_memory_pipeline},
                                  {"sim.memory.2", t_memory_forget_retrieve},
                                  {"sim.behave.taste", t_behave_taste},
                                  {"sim.behave.bpr", t_behave_bpr},
                                  {"sim.behave.diffusion", t_behave_diffusion},
                                  {"sim.behave.homophily", t_behave_homophily},
                                  {"sim.repro.seed", t_repro_seed},
                                  {"sim.topk.1", t_topk},
                                  {"sim.repro.threads", t_repro_threads},
                                  {"sim.repro.ckpt_threads", t_repro_ckpt_threads},
                                  {"sim.repro.ckpt_defer", t_repro_ckpt_defer},
                                  {"sim.ckpt_defer_fail", t_ckpt_defer_fail},
                                  {"sim.repro.branch", t_repro_branch},
                                  {"sim.repro.delta", t_repro_delta},
                                  {"sim.repro.zfull", t_repro_zfull},
                                  {"sim.llm.1", t_llm_backend},
                                  {"sim.llm.errors", t_llm_errors},
                                  {"sim.llm.pipeline", t_llm_pipeline},
                                  {"sim.plugin.1", t_plugin_commands},
                                  {"sim.plugin.retrain", t_plugin_retrain},
                                  {"sim.plugin.args", t_plugin_args},
                                  {"sim.profiles.csv", t_profiles_csv},
                                  {"sim.profiles.ml100k", t_profiles_ml100k},
                                  {NULL, NULL}};

int main(int argc, char **argv)
{
    int rc = rlab_test_main(argc, argv, tests);
    rlab_model_release(BPR);
    rlab_host_free(H);
    rlab_world_free(W);
    rlab_dataset_free(DS);
    return rc;
}
