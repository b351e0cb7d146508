/*
 * tests/simulator: behavioural fidelity against real users, and interview answers.
 *
 * Test organization:
 *   sim.fid.binary     accuracy / precision / recall / F1, hand-computed (and the empty cases)
 *   sim.fid.ratings    MAE / RMSE / Spearman of agent vs real ratings, hand-computed
 *   sim.fid.parse      [WATCH] and [RATINGS] replies: valid, none, out of range, incomplete
 *   sim.fid.world      the whole protocol on a generated world (ratings and timestamps, known
 *                      users): every row measured, the fitted policy discriminates better
 *                      than random agents, the same seed gives the same report, and the
 *                      openai backend against the loopback server answers every question
 *                      (no fallback)
 *   sim.fid.ml100k     MovieLens-100K with u.user (needs $RECLAB_DATA): the fitted policy
 *                      beats random agents on discrimination and rating error
 *   sim.interview.fav  the offline answer is in the first person and the genre it calls the
 *                      favourite is the agent's top taste or its most-watched genre
 *   sim.play.engine    role play on the engine: the played agent is skipped by the rounds,
 *                      buys from its page, chats turn by turn (offline, then with the
 *                      loopback language model answering the other side) until a goodbye
 */
#define SIM_INTERNAL
#include "sim.h"

#include "fake_rec_llm.h"
#include "harness.h"
#include "data/loaders.h"
#include "llm/llm.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void t_binary(void)
{
    /* truth {1,1,0,0,1}, pred {1,0,0,1,1}: tp 2, fp 1, fn 1, tn 1 */
    const uint8_t t[] = {1, 1, 0, 0, 1}, p[] = {1, 0, 0, 1, 1};
    double acc, prec, rec, f1;
    sim_fid_binary(t, p, 5, &acc, &prec, &rec, &f1);
    CHECK_NEAR(acc, 0.6, 1e-12);
    CHECK_NEAR(prec, 2.0 / 3.0, 1e-12);
    CHECK_NEAR(rec, 2.0 / 3.0, 1e-12);
    CHECK_NEAR(f1, 2.0 / 3.0, 1e-12);
    /* truth {1,0,0,0}, pred {1,1,1,0}: tp 1, fp 2, tn 1: prec 1/3, rec 1, F1 = 2(1/3)/(4/3)
     * = 0.5, acc 0.5 */
    const uint8_t t2[] = {1, 0, 0, 0}, p2[] = {1, 1, 1, 0};
    sim_fid_binary(t2, p2, 4, &acc, &prec, &rec, &f1);
    CHECK_NEAR(acc, 0.5, 1e-12);
    CHECK_NEAR(prec, 1.0 / 3.0, 1e-12);
    CHECK_NEAR(rec, 1.0, 1e-12);
    CHECK_NEAR(f1, 0.5, 1e-12);
    /* nothing predicted: precision 0 (not NaN), F1 0 */
    const uint8_t z[] = {0, 0, 0, 0};
    sim_fid_binary(t2, z, 4, &acc, &prec, &rec, &f1);
    CHECK_NEAR(acc, 0.75, 1e-12);
    CHECK_NEAR(prec, 0.0, 0);
    CHECK_NEAR(rec, 0.0, 0);
    CHECK_NEAR(f1, 0.0, 0);
}

static void t_ratings(void)
{
    /* agent {4,3,5,1} vs real {5,3,4,2}: |d| = {1,0,1,1}: MAE 0.75, RMSE sqrt(3/4);
     * ranks {3,2,4,1} vs {4,2,3,1}: sum d^2 = 2, rho = 1 - 6*2/(4*15) = 0.8 (no ties) */
    const double a[] = {4, 3, 5, 1}, r[] = {5, 3, 4, 2};
    double mae, rmse, rho;
    rlab_err err = {0};
    CHECK_EQ_INT(sim_fid_ratings(a, r, 4, &mae, &rmse, &rho, &err), RLAB_OK);
    CHECK_NEAR(mae, 0.75, 1e-12);
    CHECK_NEAR(rmse, 0.8660254037844386, 1e-12);
    CHECK_NEAR(rho, 0.8, 1e-12);
    /* ties: agent {3,3,4,5} vs real {1,2,3,3}: ranks {1.5,1.5,3,4} vs {1,2,3.5,3.5}, centred
     * at 2.5: dx {-1,-1,.5,1.5}, dy {-1.5,-.5,1,1}: sxy 1.5+.5+.5+1.5 = 4, sxx 4.5, syy 4.5,
     * rho = 4/4.5 = 0.8888889; |d| = {2,1,1,2}: MAE 1.5, RMSE sqrt(10/4) */
    const double a2[] = {3, 3, 4, 5}, r2[] = {1, 2, 3, 3};
    CHECK_EQ_INT(sim_fid_ratings(a2, r2, 4, &mae, &rmse, &rho, &err), RLAB_OK);
    CHECK_NEAR(rho, 4.0 / 4.5, 1e-12);
    CHECK_NEAR(mae, 1.5, 1e-12);
    CHECK_NEAR(rmse, sqrt(2.5), 1e-12);
    /* a constant agent: Spearman undefined */
    const double c[] = {3, 3, 3, 3};
    sim_fid_ratings(c, r, 4, &mae, &rmse, &rho, &err);
    CHECK(isnan(rho));
    CHECK_EQ_INT(sim_fid_ratings(a, r, 1, &mae, &rmse, &rho, &err), RLAB_EINVAL);
}

static void t_parse(void)
{
    uint8_t pick[4];
    CHECK_EQ_INT(sim_fid_parse_watch("Sure.\n[WATCH]:: 1, 3", 4, pick), 0);
    CHECK(pick[0] == 1 && pick[1] == 0 && pick[2] == 1 && pick[3] == 0);
    CHECK_EQ_INT(sim_fid_parse_watch("[watch]: 2 and 4.", 4, pick), 0);
    CHECK(pick[0] == 0 && pick[1] == 1 && pick[2] == 0 && pick[3] == 1);
    CHECK_EQ_INT(sim_fid_parse_watch("[WATCH]:: none", 4, pick), 0);
    CHECK(pick[0] == 0 && pick[1] == 0 && pick[2] == 0 && pick[3] == 0);
    CHECK(sim_fid_parse_watch("[WATCH]:: 5", 4, pick) != 0);           /* out of range */
    CHECK(sim_fid_parse_watch("[WATCH]:: maybe", 4, pick) != 0);       /* no numbers */
    CHECK(sim_fid_parse_watch("I would watch 1 and 2", 4, pick) != 0); /* no tag */
    double r[3];
    CHECK_EQ_INT(sim_fid_parse_ratings("[RATINGS]:: 1:4, 2:2, 3:5", 3, r), 0);
    CHECK_NEAR(r[0], 4.0, 0);
    CHECK_NEAR(r[1], 2.0, 0);
    CHECK_NEAR(r[2], 5.0, 0);
    CHECK_EQ_INT(sim_fid_parse_ratings("[RATINGS]::\n2: 3\n1: 4.4\n3: 1", 3, r), 0);
    CHECK_NEAR(r[0], 4.0, 0);
    CHECK_NEAR(r[1], 3.0, 0);
    CHECK_NEAR(r[2], 1.0, 0);
    CHECK(sim_fid_parse_ratings("[RATINGS]:: 1:4, 2:2", 3, r) != 0);      /* incomplete */
    CHECK(sim_fid_parse_ratings("[RATINGS]:: 1:4, 1:2, 3:3", 3, r) != 0); /* twice */
    CHECK(sim_fid_parse_ratings("[RATINGS]:: 1:6, 2:2, 3:3", 3, r) != 0); /* not 1..5 */
}

/* A world with timestamps and ratings (the generator's users behave by latent tastes). */
static rlab_dataset *world_ds(rlab_world **w)
{
    rlab_world_config c;
    rlab_world_config_default(&c);
    c.seed = 5;
    c.n_users = 240;
    c.n_items = 300;
    c.n_genres = 8;
    c.n_inter = 9000;
    rlab_dataset *ds = NULL;
    rlab_err err = {0};
    if (rlab_world_generate(&c, "fw", w, &ds, &err)) {
        CHECK_MSG(0, "world: %s", err.msg);
        return NULL;
    }
    return ds;
}

static void t_world(void)
{
    rlab_world *w = NULL;
    rlab_dataset *ds = world_ds(&w);
    if (!ds)
        return;
    sim_fid_config c;
    sim_fid_config_default(&c);
    c.seed = 3;
    sim_fid_report r, r2;
    rlab_err err = {0};
    int rc = sim_fidelity(ds, &c, NULL, NULL, &r, &err);
    CHECK_MSG(rc == RLAB_OK, "%s", err.msg);
    if (rc == RLAB_OK) {
        CHECK(r.fit_users > 50 && r.report_users > 50);
        CHECK(r.has_rating);
        for (int p = 0; p < SIM_FID_LLM; p++) {
            CHECK(r.have[p]);
            CHECK(r.pol[p].pairs > 0 && r.pol[p].rated > 1 && r.pol[p].pages > 0);
            CHECK(r.pol[p].acc >= 0.0 && r.pol[p].acc <= 1.0);
        }
        CHECK(!r.have[SIM_FID_LLM]);
        /* measured comparisons: the fitted policy knows the users better than coin flips */
        CHECK_MSG(r.pol[SIM_FID_FIT].acc > r.pol[SIM_FID_RANDOM].acc + 0.05,
                  "fit acc %.3f vs random %.3f", r.pol[SIM_FID_FIT].acc, r.pol[SIM_FID_RANDOM].acc);
        CHECK_MSG(r.pol[SIM_FID_FIT].mae < r.pol[SIM_FID_RANDOM].mae, "fit MAE %.3f vs random %.3f",
                  r.pol[SIM_FID_FIT].mae, r.pol[SIM_FID_RANDOM].mae);
        int64_t tot = 0;
        for (int k = 0; k < 5; k++)
            tot += r.real_dist[k];
        CHECK_EQ_INT(tot, r.pol[SIM_FID_RANDOM].rated);
        /* same seed, same report */
        CHECK_EQ_INT(sim_fidelity(ds, &c, NULL, NULL, &r2, &err), RLAB_OK);
        CHECK(memcmp(r.pol, r2.pol, sizeof r.pol) == 0);
    }
    /* the openai backend against the loopback server */
    fake_rec_llm *srv = fake_rec_llm_start();
    if (!srv) {
        rlab_test_skip("cannot start the loopback server");
    } else {
        char url[64];
        snprintf(url, sizeof url, "http://127.0.0.1:%d", fake_rec_llm_port(srv));
        rlab_llm_config lc = {.backend = "openai",
                              .base_url = url,
                              .model = "agent",
                              .api_key = "",
                              .timeout = 10,
                              .max_attempts = 1,
                              .max_in_flight = 8};
        rlab_llm *llm = rlab_llm_new(&lc, &err);
        CHECK_MSG(llm != NULL, "%s", err.msg);
        c.n_agents = 120;
        c.llm = llm;
        long before = fake_rec_llm_requests(srv);
        rc = llm ? sim_fidelity(ds, &c, NULL, NULL, &r, &err) : -1;
        CHECK_MSG(rc == RLAB_OK, "%s", err.msg);
        if (rc == RLAB_OK) {
            const sim_fid_result *x = &r.pol[SIM_FID_LLM];
            CHECK(r.have[SIM_FID_LLM]);
            CHECK_EQ_INT(x->llm_asked, 3 * (int64_t)r.report_users);
            CHECK_MSG(x->llm_fallback == 0, "%lld fallbacks: %s", (long long)x->llm_fallback,
                      r.first_llm_error);
            CHECK(fake_rec_llm_requests(srv) - before >= 3 * (long)r.report_users);
            /* the server picks the odd-numbered items and rates 4/3 stars: its answers are
             * the ones scored */
            CHECK(x->dist[0] == 0 && x->dist[1] == 0 && x->dist[4] == 0);
            CHECK(x->dist[2] + x->dist[3] == x->rated);
            /* it always buys the first item of the page */
            CHECK_NEAR(x->buy, 1.0, 0);
        }
        rlab_llm_free(llm);
        fake_rec_llm_stop(srv);
    }
    rlab_dataset_free(ds);
    rlab_world_free(w);
}

static void t_ml100k(void)
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
    sim_fid_config c;
    sim_fid_config_default(&c);
    c.n_agents = 400;
    sim_fid_report r;
    int rc = sim_fidelity(ds, &c, NULL, NULL, &r, &err);
    CHECK_MSG(rc == RLAB_OK, "%s", err.msg);
    if (rc == RLAB_OK) {
        CHECK(r.has_rating);
        CHECK(r.report_users > 100);
        CHECK_MSG(r.pol[SIM_FID_FIT].acc > r.pol[SIM_FID_RANDOM].acc, "fit acc %.3f vs random %.3f",
                  r.pol[SIM_FID_FIT].acc, r.pol[SIM_FID_RANDOM].acc);
        CHECK_MSG(r.pol[SIM_FID_FIT].mae < r.pol[SIM_FID_RANDOM].mae, "fit MAE %.3f vs random %.3f",
                  r.pol[SIM_FID_FIT].mae, r.pol[SIM_FID_RANDOM].mae);
        CHECK(r.real_hit > 0.0 && r.real_hit <= 1.0);
    }
    rlab_dataset_free(ds);
}

/* "Honestly, <G> is what I enjoy most." -> G. */
static int favourite_in(const sim *s, const char *ans)
{
    const char *p = strstr(ans, "Honestly, ");
    if (!p)
        return -1;
    p += 10;
    for (int32_t g = 0; g < sim_n_genres(s); g++) {
        const char *nm = sim_genre_name(s, g);
        size_t l = strlen(nm);
        if (strncmp(p, nm, l) == 0 && strncmp(p + l, " is what I enjoy most", 21) == 0)
            return g;
    }
    return -2;
}

static void t_interview(void)
{
    rlab_world *w = NULL;
    rlab_dataset *ds = world_ds(&w);
    if (!ds)
        return;
    sim_config c;
    sim_config_default(&c);
    c.seed = 9;
    c.n_agents = 60;
    c.checkpoint_every = 0;
    sim *s = NULL;
    rlab_err err = {0};
    /* agents with their past (the memories an answer draws on), then some rounds */
    sim_profiles prof = {.seed_memory = 1};
    CHECK_MSG(sim_new(&c, ds, w, NULL, &prof, &s, &err) == RLAB_OK, "%s", err.msg);
    if (!s) {
        rlab_dataset_free(ds);
        rlab_world_free(w);
        return;
    }
    CHECK_EQ_INT(sim_step(s, 6, NULL, NULL, NULL, NULL, NULL, &err), RLAB_OK);
    static const char *const qs[] = {"What kind of movies do you like?",
                                     "How do you feel about the movies you watched recently?",
                                     "Which genre is your favourite?"};
    int checked = 0, reflections = 0;
    for (int32_t a = 0; a < sim_n_agents(s); a++) {
        const sim_agent *ag = sim_agent_at(s, a);
        for (int k = 0; k < ag->n_ltm; k++)
            reflections += ag->ltm[k].kind == SIM_M_REFLECT;
        for (int q = 0; q < 3; q++) {
            char *ans = sim_interview(s, a, qs[q], NULL, &err);
            CHECK(ans != NULL);
            if (!ans)
                continue;
            /* first person: the name appears once, in "I'm <name>.", never as a subject */
            char intro[64];
            snprintf(intro, sizeof intro, "I'm %s.", ag->name);
            CHECK_MSG(strncmp(ans, intro, strlen(intro)) == 0, "%s", ans);
            CHECK_MSG(strstr(ans + strlen(intro), ag->name) == NULL, "third person: %s", ans);
            CHECK_MSG(strstr(ans, "Above all") == NULL, "a second favourite: %s", ans);
            /* the favourite it names agrees with its tastes or its watches */
            int g = favourite_in(s, ans);
            const float *t = sim_taste(s, a);
            int32_t top = 0;
            for (int32_t x = 1; x < sim_n_genres(s); x++)
                if (t[x] > t[top])
                    top = x;
            int32_t mw = sim_most_watched_genre(s, a);
            CHECK_MSG(g >= 0 && (g == top || g == mw),
                      "agent %d names genre %d; top taste %d, most watched %d: %s", (int)a, g,
                      (int)top, (int)mw, ans);
            checked++;
            rlab_free(ans);
        }
    }
    CHECK(checked == 3 * sim_n_agents(s));
    CHECK(reflections > 0); /* the case the old answer got wrong was exercised */
    sim_free(s);
    rlab_dataset_free(ds);
    rlab_world_free(w);
}

static void t_play(void)
{
    rlab_world *w = NULL;
    rlab_dataset *ds = world_ds(&w);
    if (!ds)
        return;
    sim_config c;
    sim_config_default(&c);
    c.seed = 4;
    c.n_agents = 40;
    c.checkpoint_every = 0;
    sim *s = NULL;
    rlab_err err = {0};
    CHECK_MSG(sim_new(&c, ds, w, NULL, NULL, &s, &err) == RLAB_OK, "%s", err.msg);
    if (!s)
        goto out;
    const int32_t *pg;
    int np = 0, fs = 0;
    CHECK_EQ_INT(sim_play_page(s, &pg, &np, &fs, &err), RLAB_ESTATE); /* nobody played yet */
    CHECK_EQ_INT(sim_play_begin(s, 6, &err), RLAB_OK);
    CHECK_EQ_INT(sim_play_page(s, &pg, &np, &fs, &err), RLAB_OK);
    CHECK(np == c.page_size && !fs);
    int32_t second = pg[1];
    int before = sim_agent_at(s, 6)->n_watch;
    sim_play_out o;
    CHECK_EQ_INT(sim_play_act(s, 9, NULL, &o, &err), RLAB_EINVAL); /* off the page */
    CHECK_EQ_INT(sim_play_act(s, 1, NULL, &o, &err), RLAB_OK);
    CHECK(o.item == second && o.visit_over && o.text[0]);
    CHECK_EQ_INT(sim_agent_at(s, 6)->n_watch, before + 1);
    /* the rounds go on around the played agent: it never acts by itself */
    int n6 = sim_agent_at(s, 6)->n_watch;
    CHECK_EQ_INT(sim_step(s, 3, NULL, NULL, NULL, NULL, NULL, &err), RLAB_OK);
    CHECK_EQ_INT(sim_agent_at(s, 6)->n_watch, n6);
    CHECK(sim_last_stats(s)->watches > 0);
    /* an offline chat: greeting, then goodbye after the person's goodbye */
    int32_t b = 11;
    while (sim_agent_at(s, b)->busy_kind == 1 && sim_agent_at(s, b)->busy_until > sim_vtime(s))
        b++;
    char *reply = NULL;
    int ended = 0, by = -1;
    CHECK_EQ_INT(sim_play_chat(s, b, "Hi!", &reply, &ended, &by, &err), RLAB_OK);
    CHECK(reply && strstr(reply, "Hi ") == reply && !ended && by == SIM_BY_OFFLINE);
    rlab_free(reply);
    CHECK_EQ_INT(sim_play_chat(s, -1, "ok, goodbye", &reply, &ended, &by, &err), RLAB_OK);
    CHECK(reply && strstr(reply, "Goodbye") && ended);
    rlab_free(reply);
    /* the other side answered by the language model */
    fake_rec_llm *srv = fake_rec_llm_start();
    if (!srv) {
        rlab_test_skip("cannot start the loopback server");
    } else {
        char url[64];
        snprintf(url, sizeof url, "http://127.0.0.1:%d", fake_rec_llm_port(srv));
        rlab_llm_config lc = {.backend = "openai",
                              .base_url = url,
                              .model = "agent",
                              .api_key = "",
                              .timeout = 10,
                              .max_attempts = 1};
        rlab_llm *llm = rlab_llm_new(&lc, &err);
        CHECK(llm && sim_set_llm(s, llm, &err) == RLAB_OK);
        s->cfg.use_llm = 1;
        int32_t b2 = b + 1 < sim_n_agents(s) ? b + 1 : 0;
        if (b2 == 6)
            b2++;
        int rc = sim_play_chat(s, b2, "What did you watch?", &reply, &ended, &by, &err);
        CHECK_MSG(rc == RLAB_OK || rc == RLAB_ESTATE, "%s", err.msg); /* ESTATE: watching */
        if (rc == RLAB_OK) {
            CHECK_MSG(by == SIM_BY_LLM, "by %d", by);
            CHECK(reply && strstr(reply, "I mostly remember the last movie I watched."));
            rlab_free(reply);
            CHECK_EQ_INT(sim_play_chat(s, -1, "Goodbye!", &reply, &ended, &by, &err), RLAB_OK);
            CHECK(ended);
            rlab_free(reply);
        }
        s->cfg.use_llm = 0;
        rlab_llm_free(llm);
        fake_rec_llm_stop(srv);
    }
    sim_play_end(s);
    CHECK_EQ_INT(sim_played(s), -1);
    sim_free(s);
out:
    rlab_dataset_free(ds);
    rlab_world_free(w);
}

static const rlab_test tests[] = {{"sim.fid.binary", t_binary}, {"sim.fid.ratings", t_ratings},
                                  {"sim.fid.parse", t_parse},   {"sim.fid.world", t_world},
                                  {"sim.fid.ml100k", t_ml100k}, {"sim.interview.fav", t_interview},
                                  {"sim.play.engine", t_play},  {NULL, NULL}};

int main(int argc, char **argv) { return rlab_test_main(argc, argv, tests); }
