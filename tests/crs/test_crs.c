/*
 * tests/crs: the crs plugin. Unit ids "crs.*": title normalisation, the MovieLens movie loader
 * (and its bad-input errors), recommendation instances of a hand-made ReDial corpus, the
 * knowledge graph, the rank with ties and masks, the baselines' scores and Recall (hand
 * computed, through crs.eval and the stored turns), template responses, the host verbs (train,
 * save/load), crs.respond; "crsdata.*" needs $RECLAB_DATA (ReDial, MovieLens titles).
 */
#include "crs.h"
#include "macrs.h"
#include "fake_llm_server.h"
#include "harness_host.h"
#include "data/world.h"
#include "tensor/ops.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- fixtures ---------------------------------------------------------------------------- */

#define MENTIONS                                                                                   \
    "\"movieMentions\": {\"101\": \"Comedy One (1999)\", \"102\": \"Comedy Two (2000)\", "         \
    "\"103\": \"Third Film (1985)\", \"104\": \"Scary Movie Four (2001)\", \"105\": \"Fifth "      \
    "(1995)\"}, \"initiatorQuestions\": {}, \"respondentQuestions\": {}"

#define MSG(t, who, id)                                                                            \
    "{\"timeOffset\": " #id ", \"text\": \"" t "\", \"senderWorkerId\": " #who                     \
    ", \"messageId\": " #id "}"

/* Training: A (2 instances: 102, then 103 which repeats), B (104, then 104 again).
 * Popularity of the training targets: 104: 2, 102: 1, 103: 1, 101: 0. */
static const char train_jsonl[] =
    "{\"conversationId\": \"1\", \"initiatorWorkerId\": 10, \"respondentWorkerId\": 20, "
    "\"messages\": [" MSG("Hi, I like comedies like @101", 10, 1) ", " MSG(
        "You should watch @102", 20,
        2) ", " MSG("I saw @102 already, I liked @103", 10,
                    3) ", " MSG("Then try @103", 20,
                                4) "], " MENTIONS "}\n"
                                   "{\"conversationId\": \"2\", \"initiatorWorkerId\": 11, "
                                   "\"respondentWorkerId\": 21, "
                                   "\"messages\": [" MSG("Any horror?", 11, 5) ", " MSG(
                                       "@104 is scary", 21,
                                       6) ", " MSG("thanks", 11, 7) ", " MSG("Or @104 again", 21,
                                                                             8) "], " MENTIONS
                                                                                "}\n";

/* Test: instances 105 (repeat, context items [101, 105]), 104 (not a repeat, [101, 105]),
 * 101 (repeat, [101, 105, 105, 104]). */
static const char test_jsonl[] =
    "{\"conversationId\": \"3\", \"initiatorWorkerId\": 12, \"respondentWorkerId\": 22, "
    "\"messages\": [" MSG("I loved @101 and @105", 12, 9) ", " MSG(
        "Have you seen @105 ? or @104", 22,
        10) ", " MSG("no", 12, 11) ", " MSG("How about @101 ?", 22, 12) "], " MENTIONS "}\n";

static const char movies_dat[] = "1;Comedy One (1999);Comedy\n"
                                 "2;Comedy Two, The (2000);Comedy|Romance\n"
                                 "3;Scary Movie Four (2001);Horror\n";

static char *write_tmp(const char *name, const char *text)
{
    static char path[8][512];
    static int k;
    char *p = path[k++ % 8];
    snprintf(p, 512, "%s/%s", rlab_test_tmpdir(), name);
    FILE *fp = fopen(p, "w");
    CHECK(fp != NULL);
    if (fp) {
        fputs(text, fp);
        fclose(fp);
    }
    return p;
}

static rlab_dialogues *fixture(const char *text)
{
    rlab_err err = {0};
    rlab_dialogues *d = NULL;
    CHECK_MSG(rlab_dialogues_load_buffer(text, strlen(text), "redial", "fixture", &d, &err) == 0,
              "%s", err.msg);
    return d;
}

/* ---- titles and movies ----------------------------------------------------------------- */

static void t_title(void)
{
    char out[128];
    int y = -1;
    crs_title_norm("Matrix, The (1999)", out, sizeof out, &y);
    CHECK_STR(out, "matrix");
    CHECK_EQ_INT(y, 1999);
    crs_title_norm("The Matrix  (1999) ", out, sizeof out, &y);
    CHECK_STR(out, "matrix");
    CHECK_EQ_INT(y, 1999);
    crs_title_norm("Star Wars: Episode IV - A New Hope", out, sizeof out, &y);
    CHECK_STR(out, "star wars episode iv a new hope");
    CHECK_EQ_INT(y, 0);
    crs_title_norm("American Pie ", out, sizeof out, &y);
    CHECK_STR(out, "american pie");
}

static void t_movies(void)
{
    rlab_err err = {0};
    crs_movies mv = {0};
    CHECK_EQ_INT(crs_movies_load(&mv, write_tmp("m.dat", movies_dat), &err), RLAB_OK);
    CHECK_EQ_INT(mv.n, 3);
    CHECK_EQ_INT(crs_movies_find(&mv, "comedy two", 2000), 1);
    CHECK_EQ_INT(crs_movies_find(&mv, "comedy two", 2001), -1);
    CHECK_EQ_INT(crs_movies_find(&mv, "comedy two", 0), 1);
    CHECK_STR(mv.m[1].genres, "Comedy|Romance");
    /* u.item: id|title|date|video|url|19 flags */
    CHECK_EQ_INT(crs_movies_load(&mv,
                                 write_tmp("u.item", "7|Toy Story (1995)|01-Jan-1995||http://x|0|0|"
                                                     "0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n"),
                                 &err),
                 RLAB_OK);
    CHECK_EQ_INT(mv.n, 4);
    CHECK_STR(mv.m[3].genres, "Animation|Children's|Comedy");
    crs_movies_clear(&mv);
    /* bad input: file and line named */
    CHECK_EQ_INT(crs_movies_load(&mv, write_tmp("bad.dat", "1;A (1999);Drama\n2;only two\n"), &err),
                 RLAB_EFORMAT);
    CHECK_STR_CONTAINS(err.msg, "bad.dat:2:");
    crs_movies_clear(&mv);
    CHECK_EQ_INT(crs_movies_load(&mv,
                                 write_tmp("bad.item", "7|T (1995)|d||u|0|0|0|2|1|1|0|0|0|0|0|0|0|"
                                                       "0|0|0|0|0|0\n"),
                                 &err),
                 RLAB_EFORMAT);
    CHECK_STR_CONTAINS(err.msg, "bad.item:1: genre flag 4 is '2'");
    crs_movies_clear(&mv);
    CHECK_EQ_INT(crs_movies_load(&mv, "/nonexistent/movies.dat", &err), RLAB_EIO);
    CHECK_STR_CONTAINS(err.msg, "/nonexistent/movies.dat");
    crs_movies_clear(&mv);
}

/* ---- instances, graph -------------------------------------------------------------------- */

static void t_insts(void)
{
    rlab_dialogues *d = fixture(test_jsonl);
    if (!d)
        return;
    crs_insts in = {0};
    rlab_err err = {0};
    CHECK_EQ_INT(crs_insts_build(d, NULL, &in, &err), RLAB_OK);
    CHECK_EQ_INT((int)in.n, 3);
    if (in.n == 3) {
        const char *id0 = rlab_vocab_name(&d->items, in.v[0].target);
        CHECK_STR(id0, "105");
        CHECK(in.v[0].repeat && !in.v[1].repeat && in.v[2].repeat);
        CHECK_EQ_INT(in.v[0].n_ctx, 2);
        CHECK_EQ_INT(in.v[2].n_ctx, 4);
        CHECK_STR(in.v[0].context, "User: I loved Comedy One (1999) and Fifth (1995)");
        CHECK_STR(in.v[1].tmpl, "Have you seen [MOVIE] ? or [MOVIE]");
        CHECK_STR_CONTAINS(in.v[2].context, "\nUser: no");
        CHECK_EQ_INT(in.v[2].turn, 3);
    }
    crs_insts_clear(&in);
    rlab_dialogues_free(d);
}

static rlab_dataset *catalogue(crs_prepare_stats *st)
{
    rlab_dialogues *tr = fixture(train_jsonl), *te = fixture(test_jsonl);
    rlab_err err = {0};
    crs_movies mv = {0};
    CHECK_EQ_INT(crs_movies_load(&mv, write_tmp("m2.dat", movies_dat), &err), RLAB_OK);
    const rlab_dialogues *trs[1] = {tr}, *tes[1] = {te};
    crs_prepare_opts o = {.train = trs, .n_train = 1, .extra = tes, .n_extra = 1, .movies = &mv};
    rlab_dataset *ds = NULL;
    CHECK_MSG(crs_prepare("cat", &o, &ds, st, &err) == 0, "%s", err.msg);
    crs_movies_clear(&mv);
    rlab_dialogues_free(tr);
    rlab_dialogues_free(te);
    return ds;
}

static void t_graph(void)
{
    crs_prepare_stats st;
    rlab_dataset *ds = catalogue(&st);
    if (!ds)
        return;
    CHECK_EQ_INT(st.items, 5);
    CHECK_EQ_INT(st.linked, 3); /* 101, 102 ("Comedy Two, The"), 104 */
    CHECK_EQ_INT(st.users_real, 4);
    crs_graph g;
    rlab_err err = {0};
    const int32_t pairs[4] = {0, 1, 0, 1}; /* one co-mention edge, given twice */
    CHECK_EQ_INT(crs_graph_build(ds, pairs, 2, &g, &err), RLAB_OK);
    /* entities: 5 items, genres Comedy, Romance, Horror, decades 1990s 2000s 1980s */
    CHECK_EQ_INT(g.n_ent, 5 + 3 + 3);
    const int32_t i102 = rlab_vocab_find(&ds->items, "102", 3);
    const rlab_feat_col *gc = rlab_feats_find(&ds->item_feats, "genres");
    const int32_t comedy = 5 + rlab_vocab_find(&gc->vocab, "Comedy", 6);
    /* item 102 <- its genres Comedy and Romance, each with weight 1/2 */
    const int64_t *rp;
    const int32_t *col;
    const float *val;
    crs_graph_rel(&g, CRS_REL_GENRE, &rp, &col, &val);
    CHECK_EQ_INT((int)(rp[i102 + 1] - rp[i102]), 2);
    CHECK_NEAR(val[rp[i102]], 0.5, 1e-6);
    /* Comedy <- items 101 and 102 (inverse relation) */
    crs_graph_rel(&g, CRS_REL_GENRE_INV, &rp, &col, &val);
    CHECK_EQ_INT((int)(rp[comedy + 1] - rp[comedy]), 2);
    /* an item without metadata (103 has no MovieLens match but a year: decade only) */
    const int32_t i103 = rlab_vocab_find(&ds->items, "103", 3);
    crs_graph_rel(&g, CRS_REL_DECADE, &rp, &col, &val);
    CHECK_EQ_INT((int)(rp[i103 + 1] - rp[i103]), 1);
    CHECK_NEAR(val[rp[i103]], 1.0, 1e-6);
    crs_graph_rel(&g, CRS_REL_COMENTION, &rp, &col, &val);
    CHECK_EQ_INT((int)(rp[1] - rp[0]), 1); /* deduplicated */
    CHECK_EQ_INT(col[rp[0]], 1);
    CHECK_EQ_INT((int)rp[g.n_ent], 1);
    crs_graph_clear(&g);
    rlab_dataset_free(ds);
}

/* ---- metrics ------------------------------------------------------------------------------- */

static void t_rank(void)
{
    const float s[5] = {0.5f, 2.0f, 0.5f, 1.0f, 0.5f};
    CHECK_EQ_INT((int)crs_rank(s, 5, NULL, 1), 1);
    CHECK_EQ_INT((int)crs_rank(s, 5, NULL, 3), 2);
    CHECK_EQ_INT((int)crs_rank(s, 5, NULL, 0), 3); /* ties: the lower index first */
    CHECK_EQ_INT((int)crs_rank(s, 5, NULL, 4), 5);
    const uint8_t mask[5] = {0, 1, 0, 0, 0};
    CHECK_EQ_INT((int)crs_rank(s, 5, mask, 3), 1);
    CHECK_EQ_INT((int)crs_rank(s, 5, mask, 2), 3);
    CHECK_EQ_INT((int)crs_rank(s, 5, mask, 1), 0); /* masked target */
    /* baselines: ctx [2, 0, 2] -> item 2 last (3), item 0 (2); pop breaks the rest */
    const int32_t ctx[3] = {2, 0, 2};
    const float pop[5] = {1, 4, 0, 3, 0};
    float out[5];
    crs_baseline_scores(ctx, 3, NULL, 5, out);
    CHECK_NEAR(out[2], 3.0, 0);
    CHECK_NEAR(out[0], 2.0, 0);
    CHECK_NEAR(out[1], 0.0, 0);
    CHECK_NEAR(out[4], 0.0, 0);
    crs_baseline_scores(ctx, 3, pop, 5, out);
    CHECK_NEAR(out[2], 3.0, 0);
    CHECK_NEAR(out[0], 2.0, 0);
    CHECK_NEAR(out[1], 4.0 / 5.0, 1e-6);
    CHECK_NEAR(out[3], 3.0 / 5.0, 1e-6);
    CHECK_EQ_INT((int)crs_rank(out, 5, NULL, 1), 3);
    CHECK_EQ_INT((int)crs_rank(out, 5, NULL, 4), 5);
}

static void t_template(void)
{
    crs_templates t;
    rlab_err err = {0};
    const char *text[2] = {"Have you seen [MOVIE] ?", "I loved [MOVIE] and [MOVIE]"};
    const char *ctx[2] = {"User: I want a horror movie", "User: something funny please"};
    CHECK_EQ_INT(crs_templates_fit(&t, 2, text, ctx, &err), RLAB_OK);
    const char *titles[2] = {"Alien (1979)", "Heat (1995)"};
    char *s = crs_template_respond(&t, "User: any good horror movie?", titles, 2);
    CHECK_STR(s, "Have you seen Alien (1979) ?");
    rlab_free(s);
    s = crs_template_respond(&t, "System: hi\nUser: something funny", titles, 2);
    CHECK_STR(s, "I loved Alien (1979) and Heat (1995)");
    rlab_free(s);
    s = crs_template_respond(&t, "funny", titles, 1); /* slots beyond the titles repeat */
    CHECK_STR(s, "I loved Alien (1979) and Alien (1979)");
    rlab_free(s);
    crs_templates_clear(&t);
    s = crs_template_respond(NULL, "x", titles, 1);
    CHECK_STR(s, "You might like Alien (1979).");
    rlab_free(s);
    /* context ids: left padding, the last token at the end */
    int32_t uni[6], bi[6];
    CHECK_EQ_INT(crs_context_ids("a b c", 6, 100, uni, bi), 3);
    CHECK(uni[0] == -1 && uni[2] == -1 && uni[3] >= 0 && uni[5] >= 0);
    CHECK(bi[3] == -1 && bi[4] >= 0);
    CHECK_EQ_INT(crs_context_ids("a b c d e f g h", 4, 100, uni, bi), 4);
    CHECK(uni[0] >= 0 && bi[0] >= 0);
}

/* ---- the host ----------------------------------------------------------------------------- */

static rlab_host *new_host(void) { return rlab_test_host(RLAB_CRS_PLUGIN_DIR, "reclab_crs.so"); }

static int64_t query_int(rlab_host *h, const char *sql)
{
    rlab_err err = {0};
    rlab_db_stmt *st = rlab_db_prepare(rlab_host_db(h), sql, &err);
    int64_t v = -1;
    if (st && rlab_db_step(st, &err) == RLAB_DB_ROW)
        v = rlab_db_column_int(st, 0);
    CHECK_MSG(st != NULL, "%s: %s", sql, err.msg);
    rlab_db_finalize(st);
    return v;
}

static void t_host(void)
{
    rlab_host *h = new_host();
    rlab_err err = {0};
    char db[600], line[1400];
    snprintf(db, sizeof db, "%s/crs.db", rlab_test_tmpdir());
    remove(db);
    CHECK_MSG(rlab_host_set_store(h, db, &err) == RLAB_OK, "store: %s", err.msg);
    snprintf(line, sizeof line, "load %s name=tr", write_tmp("tr.jsonl", train_jsonl));
    rlab_result_free(rlab_test_run(h, line, RLAB_OK, NULL));
    snprintf(line, sizeof line, "load %s name=te", write_tmp("te.jsonl", test_jsonl));
    rlab_result_free(rlab_test_run(h, line, RLAB_OK, NULL));
    snprintf(line, sizeof line, "crs.prepare dialogues=tr catalog=te movies=%s name=cat",
             write_tmp("m3.dat", movies_dat));
    rlab_result *r = rlab_test_run(h, line, RLAB_OK, NULL);
    CHECK_NEAR(rlab_test_scalar(r, "items"), 5, 0);
    CHECK_NEAR(rlab_test_scalar(r, "instances"), 4, 0);
    rlab_result_free(r);
    /* the test split is never a training corpus by accident: a missing corpus is an error */
    rlab_result_free(rlab_test_run(h, "crs.prepare dialogues=nosuch name=x", RLAB_ENOTFOUND, NULL));
    r = rlab_test_run(h,
                      "train unicrs data=cat epochs=3 dim=16 heads=2 ctx_len=12 buckets=512 "
                      "batch=2 n_prefix=2 seed=3",
                      RLAB_OK, NULL);
    rlab_result_free(r);
    /* the catalogue's item order: 101..104 from training, 105 from the test corpus */
    const rlab_dataset *cat = rlab_host_dataset_get(h, "cat");
    CHECK(cat != NULL);
    if (cat) {
        CHECK_STR(rlab_vocab_name(&cat->items, 1), "102");
        CHECK_STR(rlab_vocab_name(&cat->items, 3), "104");
        CHECK_STR(rlab_vocab_name(&cat->items, 4), "105");
        rlab_host_dataset_release(h, (rlab_dataset *)(uintptr_t)cat);
    }
    r = rlab_test_run(h, "crs.eval model=unicrs data=te", RLAB_OK, NULL);
    /* hand-computed baselines (see the fixtures): ranks with repeats: repeat 1, 5, 3;
     * repeat+pop 1, 3, 3; without repeats (104 only): repeat 3, repeat+pop 1 */
    const rlab_table *t = r && r->ntables ? r->tables[0] : NULL;
    CHECK(t && t->nrows == 6 && t->ncols == 6);
    if (t && t->nrows == 6) {
        /* rows: (unicrs, repeat, repeat+pop) x (with, without) */
        const rlab_cell *c = t->cells;
        CHECK_STR(c[1 * 6 + 0].s, "repeat");
        CHECK_NEAR(c[1 * 6 + 2].f, 1.0 / 3.0, 1e-9); /* repeat R@1 with repeats */
        CHECK_NEAR(c[1 * 6 + 3].f, 1.0, 1e-9);       /* R@10 */
        CHECK_NEAR(c[2 * 6 + 2].f, 1.0 / 3.0, 1e-9); /* repeat+pop R@1 */
        CHECK_EQ_INT((int)c[1 * 6 + 5].i, 3);
        CHECK_NEAR(c[4 * 6 + 2].f, 0.0, 1e-9); /* repeat without repeats: rank 3 */
        CHECK_NEAR(c[4 * 6 + 3].f, 1.0, 1e-9);
        CHECK_NEAR(c[5 * 6 + 2].f, 1.0, 1e-9); /* repeat+pop without repeats: rank 1 */
        CHECK_EQ_INT((int)c[5 * 6 + 5].i, 1);
    }
    CHECK_NEAR(rlab_test_scalar(r, "instances"), 3, 0);
    CHECK_NEAR(rlab_test_scalar(r, "responses"), 2, 0); /* one per recommender turn */
    double d2 = rlab_test_scalar(r, "distinct2"), d2u = rlab_test_scalar(r, "distinct2_unicrs");
    CHECK(d2 > 0 && d2 <= 1 && d2u >= d2);
    rlab_result_free(r);
    /* every scored instance is a stored turn with its ranks */
    CHECK_EQ_INT((int)query_int(h, "SELECT count(*) FROM dialogues"), 3);
    CHECK_EQ_INT((int)query_int(h, "SELECT sum(json_extract(extra, '$.rank_repeat')) FROM "
                                   "dialogues"),
                 1 + 5 + 3);
    CHECK_EQ_INT((int)query_int(h, "SELECT sum(json_extract(extra, '$.rank_repeat_pop')) FROM "
                                   "dialogues"),
                 1 + 3 + 3);
    CHECK_EQ_INT((int)query_int(h, "SELECT count(*) FROM dialogues WHERE json_extract(extra, "
                                   "'$.conversation_id') = '3'"),
                 3);
    CHECK_EQ_INT((int)query_int(h, "SELECT count(*) FROM dialogues WHERE json_extract(extra, "
                                   "'$.repeat') = 0 AND json_extract(extra, '$.rank_norep') > 0"),
                 1);
    /* one turn by hand: the top items and a response recommending the first */
    r = rlab_test_run(h, "crs.respond model=unicrs k=3 mentioned=101 User: I loved Comedy One",
                      RLAB_OK, NULL);
    const rlab_cell *resp = r ? rlab_result_scalar(r, "response") : NULL;
    const rlab_cell *top = r ? rlab_result_scalar(r, "top") : NULL;
    CHECK(resp && top && resp->s && top->s);
    if (resp && top && r->ntables) {
        const char *title = r->tables[0]->cells[2].s;
        CHECK_STR(top->s, r->tables[0]->cells[1].s);
        CHECK_STR_CONTAINS(resp->s, title);
    }
    rlab_result_free(r);
    rlab_result_free(
        rlab_test_run(h, "crs.respond model=unicrs mentioned=999 hi", RLAB_ENOTFOUND, NULL));
    /* save -> load gives the same scores */
    rlab_model *m = rlab_models_get(rlab_host_models(h), "unicrs");
    char *saved = NULL;
    CHECK_MSG(rlab_host_save_model(h, "unicrs", rlab_test_tmpdir(), &saved, &err) == 0, "save: %s",
              err.msg);
    CHECK_MSG(rlab_host_load_model(h, "copy", saved, NULL, &err) == 0, "load: %s", err.msg);
    rlab_free(saved);
    rlab_model *m2 = rlab_models_get(rlab_host_models(h), "copy");
    CHECK(m && m2);
    if (m && m2) {
        const int32_t hist[2] = {0, 3};
        rlab_query q = {.user = -1, .hist = hist, .n_hist = 2, .context = "User: scary please"};
        float a[5], b[5];
        CHECK_EQ_INT(rlab_model_score_all(m, &q, 1, a, &err), RLAB_OK);
        CHECK_EQ_INT(rlab_model_score_all(m2, &q, 1, b, &err), RLAB_OK);
        for (int i = 0; i < 5; i++)
            CHECK_NEAR(a[i], b[i], 1e-5);
        char buf[256];
        rlab_model_describe(m2, buf, sizeof buf);
        CHECK_STR_CONTAINS(buf, "R-GCN over 11 entities (5 items)");
    }
    rlab_model_release(m);
    rlab_model_release(m2);
    /* a catalogue is required: a plain interaction dataset is refused with the reason */
    rlab_result_free(rlab_test_run(h, "crs.eval model=nosuch data=te", RLAB_ENOTFOUND, NULL));
    rlab_host_free(h);
}

/* The catalogue has a recipe: a reopened workspace rebuilds it (from the recorded dialogues
 * and movie files, checked by sha256) and crs.eval of the saved model gives the same table. */
static void t_reopen(void)
{
    rlab_host *h = new_host();
    rlab_err err = {0};
    char db[600], line[1400];
    snprintf(db, sizeof db, "%s/crs_reopen.db", rlab_test_tmpdir());
    remove(db);
    CHECK_MSG(rlab_host_set_store(h, db, &err) == RLAB_OK, "store: %s", err.msg);
    snprintf(line, sizeof line, "load %s name=tr", write_tmp("tr5.jsonl", train_jsonl));
    rlab_result_free(rlab_test_run(h, line, RLAB_OK, NULL));
    snprintf(line, sizeof line, "load %s name=te", write_tmp("te5.jsonl", test_jsonl));
    rlab_result_free(rlab_test_run(h, line, RLAB_OK, NULL));
    const char *movies = write_tmp("m5.dat", movies_dat);
    snprintf(line, sizeof line, "crs.prepare dialogues=tr catalog=te movies=%s name=cat", movies);
    rlab_result_free(rlab_test_run(h, line, RLAB_OK, NULL));
    rlab_result_free(rlab_test_run(h,
                                   "train unicrs data=cat epochs=2 dim=16 ctx_len=12 buckets=512 "
                                   "batch=2 n_prefix=2 seed=5",
                                   RLAB_OK, NULL));
    rlab_result_free(rlab_test_run(h, "save model=unicrs", RLAB_OK, NULL));
    rlab_result *a = rlab_test_run(h, "crs.eval model=unicrs data=te", RLAB_OK, NULL);
    rlab_host_free(h);
    /* the second session: nothing loaded, the store says how to rebuild everything */
    h = new_host();
    CHECK_MSG(rlab_host_set_store(h, db, &err) == RLAB_OK, "store: %s", err.msg);
    rlab_dataset_brief br;
    CHECK_EQ_INT(rlab_host_dataset_brief(h, "cat", &br), RLAB_OK);
    CHECK_EQ_INT((int)br.state, (int)RLAB_DS_RECORDED);
    rlab_result *b = rlab_test_run(h, "crs.eval model=unicrs data=te", RLAB_OK, NULL);
    const rlab_table *ta = a && a->ntables ? a->tables[0] : NULL;
    const rlab_table *tb = b && b->ntables ? b->tables[0] : NULL;
    CHECK(ta && tb && ta->nrows == 6 && tb->nrows == 6 && ta->ncols == tb->ncols);
    for (int64_t i = 0; ta && tb && ta->nrows == tb->nrows && i < ta->nrows * ta->ncols; i++) {
        const rlab_cell *x = &ta->cells[i], *y = &tb->cells[i];
        if (x->s || y->s)
            CHECK_STR(x->s ? x->s : "", y->s ? y->s : "");
        else
            CHECK_MSG(memcmp(&x->f, &y->f, sizeof x->f) == 0 && x->i == y->i,
                      "cell %lld: %.9g/%lld, reopened %.9g/%lld", (long long)i, x->f,
                      (long long)x->i, y->f, (long long)y->i);
    }
    CHECK_NEAR(rlab_test_scalar(a, "distinct2"), rlab_test_scalar(b, "distinct2"), 0);
    rlab_result_free(a);
    rlab_result_free(b);
    CHECK_EQ_INT(rlab_host_dataset_brief(h, "cat", &br), RLAB_OK);
    CHECK_EQ_INT((int)br.state, (int)RLAB_DS_LOADED);
    rlab_host_free(h);
    /* a movie file that changed since: the catalogue is not rebuilt, and the error says why */
    FILE *fp = fopen(movies, "a");
    CHECK(fp != NULL);
    if (fp) {
        fputs("4;Another (1990);Drama\n", fp);
        fclose(fp);
    }
    h = new_host();
    CHECK_MSG(rlab_host_set_store(h, db, &err) == RLAB_OK, "store: %s", err.msg);
    rlab_result *c = NULL;
    rlab_err ce = {0};
    CHECK_EQ_INT(rlab_host_run_sync(h, "crs.eval model=unicrs data=te", &c, &ce), RLAB_ESTATE);
    CHECK_STR_CONTAINS(ce.msg, "m5.dat changed since the catalogue was made");
    rlab_result_free(c);
    rlab_host_free(h);
}

/* The openai backend writes the response from the fused knowledge; a failing server falls
 * back to the template. */
static void t_llm(void)
{
    char e[256];
    fake_llm *srv = fake_llm_start(0, e, sizeof e);
    CHECK_MSG(srv != NULL, "fake server: %s", e);
    if (!srv)
        return;
    rlab_host *h = new_host();
    char line[1400];
    snprintf(line, sizeof line, "load %s name=tr", write_tmp("tr2.jsonl", train_jsonl));
    rlab_result_free(rlab_test_run(h, line, RLAB_OK, NULL));
    snprintf(line, sizeof line, "crs.prepare dialogues=tr movies=%s name=cat",
             write_tmp("m4.dat", movies_dat));
    rlab_result_free(rlab_test_run(h, line, RLAB_OK, NULL));
    rlab_result_free(rlab_test_run(h,
                                   "train unicrs data=cat epochs=1 dim=16 ctx_len=8 buckets=64 "
                                   "n_prefix=1 dev=0",
                                   RLAB_OK, NULL));
    snprintf(line, sizeof line,
             "crs.respond model=unicrs k=2 backend=openai llm_url=http://127.0.0.1:%d "
             "llm_model=echo User: something scary?",
             fake_llm_port(srv));
    rlab_result *r = rlab_test_run(h, line, RLAB_OK, NULL);
    const rlab_cell *resp = r ? rlab_result_scalar(r, "response") : NULL;
    CHECK(resp && resp->s);
    if (resp && resp->s && r->ntables) {
        /* the echo server returns the prompt: the candidates with their metadata, the dialogue */
        CHECK_STR_CONTAINS(resp->s, "echo: You are a movie recommender");
        CHECK_STR_CONTAINS(resp->s, r->tables[0]->cells[2].s); /* the top title */
        CHECK_STR_CONTAINS(resp->s, "User: something scary?");
    }
    rlab_result_free(r);
    CHECK(fake_llm_requests(srv) >= 1);
    /* a server that drops the connection: the template answers */
    snprintf(line, sizeof line,
             "crs.respond model=unicrs k=2 backend=openai llm_url=http://127.0.0.1:%d "
             "llm_model=drop llm_timeout=5 User: something scary?",
             fake_llm_port(srv));
    r = rlab_test_run(h, line, RLAB_OK, NULL);
    resp = r ? rlab_result_scalar(r, "response") : NULL;
    CHECK(resp && resp->s && strncmp(resp->s, "echo:", 5) != 0);
    rlab_result_free(r);
    rlab_host_free(h);
    fake_llm_stop(srv);
}

/* ---- MACRS ------------------------------------------------------------------------------- */

/* A hand-made world: 4 items, values comedy / drama (genre) and 1990s / 2000s (decade), equal
 * popularity. item 0 {comedy, 1990s}, 1 {comedy, 2000s}, 2 {drama, 1990s}, 3 {drama, 2000s}. */
static void tiny_world(macrs_world *w)
{
    static char v0[] = "comedy", v1[] = "drama", v2[] = "1990s", v3[] = "2000s";
    static char *vals[4] = {v0, v1, v2, v3};
    static int va[4] = {0, 0, 1, 1};
    static int64_t off[5] = {0, 2, 4, 6, 8};
    static int32_t iv[8] = {0, 2, 0, 3, 1, 2, 1, 3};
    static float prior[4] = {0, 0, 0, 0};
    static const char *title[4] = {"Funny Old", "Funny New", "Sad Old", "Sad New"};
    memset(w, 0, sizeof *w);
    w->n_items = 4;
    w->n_vals = 4;
    w->n_attr = 2;
    snprintf(w->attr[0], sizeof w->attr[0], "genre");
    snprintf(w->attr[1], sizeof w->attr[1], "decade");
    w->val = vals;
    w->val_attr = va;
    w->off = off;
    w->iv = iv;
    w->prior = prior;
    w->title = title;
}

/* One dialogue by hand (target 3 = {drama, 2000s}):
 *  user: opens with its first value, "drama" -> wanted {drama}; candidates {2, 3}, belief 1/2
 *  planner: recommend ln(0.5/0.35) = 0.357; ask "1990s" (IG 1 bit) 1 - 0.1 = 0.9; chit-chat
 *           (expected volunteered value: 1990s or 2000s, 1 bit) 1 - 0.1 - 0.05 = 0.85 -> ask
 *  user: "No, nothing 1990s." -> unwanted {1990s}; candidates {3}, belief 1
 *  planner: recommend ln(1/0.35) = 1.05 > ask (IG 0) -0.1 > chit-chat -0.15 -> "Sad New"
 *  user accepts: success at turn 2. */
static void t_macrs_episode(void)
{
    macrs_world w;
    tiny_world(&w);
    rlab_err err = {0};
    macrs_opts o = {.policy = MACRS_P_MACRS, .max_turns = 5, .user = -1};
    macrs_result r;
    CHECK_EQ_INT(macrs_episode(&w, 3, &o, &r, &err), RLAB_OK);
    CHECK_EQ_INT(r.success, 1);
    CHECK_EQ_INT(r.hit, 1);
    CHECK_EQ_INT(r.turns, 2);
    CHECK_EQ_INT(r.n_turns, 5);
    if (r.n_turns == 5) {
        CHECK_STR(r.t[0].text, "Hi! I'm looking for something drama.");
        CHECK_STR(r.t[1].text, "Would you like something 1990s?");
        CHECK_STR_CONTAINS(r.t[1].extra, "\"act\":\"ask\"");
        CHECK_STR_CONTAINS(r.t[1].extra, "\"info_gain\":1.0000");
        CHECK_STR_CONTAINS(r.t[1].extra,
                           "\"scores\":{\"ask\":0.9000,\"recommend\":0.3567,\"chit-chat\":0.8500}");
        CHECK_STR_CONTAINS(r.t[1].extra, "{\"act\":\"recommend\",\"text\":\"How about Sad Old?\"}");
        CHECK_STR_CONTAINS(r.t[1].extra, "\"wanted\":[\"drama\"],\"unwanted\":[]");
        CHECK_STR(r.t[2].text, "No, nothing 1990s.");
        CHECK_STR(r.t[3].text, "How about Sad New?");
        CHECK_STR_CONTAINS(r.t[3].extra, "\"wanted\":[\"drama\"],\"unwanted\":[\"1990s\"]");
        CHECK_STR_CONTAINS(r.t[3].extra, "\"candidates\":1");
        CHECK_STR_CONTAINS(r.t[4].extra, "accept");
    }
    macrs_result_clear(&r);
    /* always-recommend: "Sad Old" (the lower index among the equal drama items) is rejected,
     * then "Sad New" accepted at turn 2; no question is ever asked */
    o.policy = MACRS_P_ALWAYS;
    CHECK_EQ_INT(macrs_episode(&w, 3, &o, &r, &err), RLAB_OK);
    CHECK_EQ_INT(r.success, 1);
    CHECK_EQ_INT(r.turns, 2);
    if (r.n_turns >= 4) {
        CHECK_STR(r.t[1].text, "How about Sad Old?");
        CHECK_STR(r.t[3].text, "How about Sad New?");
        CHECK_STR_CONTAINS(r.t[3].extra, "\"rejected\":[\"Sad Old\"]");
    }
    macrs_result_clear(&r);
    /* one turn only: the top-10 list; the target is in it (hit), not a success */
    o.policy = MACRS_P_MACRS;
    o.max_turns = 1;
    CHECK_EQ_INT(macrs_episode(&w, 0, &o, &r, &err), RLAB_OK);
    CHECK_EQ_INT(r.success, 0);
    CHECK_EQ_INT(r.hit, 1);
    CHECK(r.n_turns >= 2 && strstr(r.t[1].text, "My top picks for you: 1. Funny Old") != NULL);
    macrs_result_clear(&r);
}

/* The two reflections in a chat with a person: values named (negated or not) update the
 * state; "no" to a recommendation rejects it, raises tau and writes the hints. */
static void t_macrs_chat(void)
{
    macrs_world w;
    tiny_world(&w);
    rlab_err err = {0};
    macrs_opts o = {.policy = MACRS_P_MACRS, .max_turns = 1000, .user = -1};
    macrs_chat *c = macrs_chat_new(&w, &o, &err);
    CHECK(c != NULL);
    if (!c)
        return;
    macrs_result r = {0};
    CHECK_EQ_INT(macrs_chat_turn(c, "I want a comedy, but not from the 1990s", &r, &err), RLAB_OK);
    /* one candidate left (Funny New): recommended */
    CHECK(r.n_turns == 2);
    if (r.n_turns == 2) {
        CHECK_STR_CONTAINS(r.t[1].extra, "\"wanted\":[\"comedy\"],\"unwanted\":[\"1990s\"]");
        CHECK_STR(r.t[1].text, "How about Funny New?");
    }
    CHECK_EQ_INT(macrs_chat_turn(c, "no, I don't like that one", &r, &err), RLAB_OK);
    CHECK(r.n_turns == 4);
    if (r.n_turns == 4) {
        CHECK_STR_CONTAINS(r.t[3].extra, "\"rejected\":[\"Funny New\"]");
        CHECK_STR_CONTAINS(r.t[3].extra, "\"tau\":0.500");
        CHECK_STR_CONTAINS(r.t[3].extra, "Funny New was rejected at confidence above 0.35");
    }
    macrs_result_clear(&r);
    macrs_chat_free(c);
    /* a title the person names joins the history (the recommender's query) and is never
     * recommended back: "Sad Old" seen, drama wanted -> "Sad New" */
    c = macrs_chat_new(&w, &o, &err);
    CHECK(c != NULL);
    if (!c)
        return;
    CHECK_EQ_INT(macrs_chat_turn(c, "I loved sad old, any drama from the 2000s?", &r, &err),
                 RLAB_OK);
    CHECK(r.n_turns == 2);
    if (r.n_turns == 2) {
        CHECK_STR_CONTAINS(r.t[1].extra, "\"history\":1,\"mentioned\":[\"Sad Old\"]");
        CHECK_STR(r.t[1].text, "How about Sad New?");
    }
    macrs_result_clear(&r);
    macrs_chat_free(c);
    /* everyday words for a genre: "funny" wants comedy, "no dramatic" rejects drama */
    c = macrs_chat_new(&w, &o, &err);
    CHECK(c != NULL);
    if (!c)
        return;
    CHECK_EQ_INT(macrs_chat_turn(c, "something funny, no dramatic stuff", &r, &err), RLAB_OK);
    CHECK(r.n_turns == 2);
    if (r.n_turns == 2)
        CHECK_STR_CONTAINS(r.t[1].extra, "\"wanted\":[\"comedy\"],\"unwanted\":[\"drama\"]");
    macrs_result_clear(&r);
    macrs_chat_free(c);
    /* a person who lets a chit-chat pass (nothing the CRS knows named): the next turn is not
     * chit-chat again, so the same words are not repeated */
    c = macrs_chat_new(&w, &o, &err);
    CHECK(c != NULL);
    if (!c)
        return;
    CHECK_EQ_INT(macrs_chat_turn(c, "hello", &r, &err), RLAB_OK);
    CHECK(r.n_turns == 2 && strstr(r.t[1].extra, "{\"policy\":\"macrs\",\"act\":\"chit-chat\""));
    CHECK_EQ_INT(macrs_chat_turn(c, "hmm, not sure", &r, &err), RLAB_OK);
    CHECK(r.n_turns == 4);
    if (r.n_turns == 4) {
        CHECK(strstr(r.t[3].extra, "{\"policy\":\"macrs\",\"act\":\"chit-chat\"") == NULL);
        CHECK_STR_CONTAINS(r.t[3].extra, "\"repeat_off\":\"chit-chat: the last one told nothing\"");
        CHECK(strcmp(r.t[3].text, r.t[1].text) != 0);
    }
    /* a greeting and a second turn let pass: no more questions or chit-chat (they used to
     * alternate) but an item; a third: the runner-up, not the item just passed over */
    if (r.n_turns == 4)
        CHECK_STR_CONTAINS(r.t[3].extra, "\"quiet\":\"2 turns told nothing: recommend\"");
    CHECK_EQ_INT(macrs_chat_turn(c, "dunno", &r, &err), RLAB_OK);
    CHECK(r.n_turns == 6);
    if (r.n_turns == 6) {
        CHECK(strstr(r.t[5].extra, "{\"policy\":\"macrs\",\"act\":\"recommend\"") != NULL);
        CHECK_STR_CONTAINS(r.t[5].extra, "\"quiet\":\"3 turns told nothing: recommend\"");
        CHECK_STR(r.t[3].text, "How about Funny Old?");
        CHECK_STR(r.t[5].text, "How about Funny New?"); /* the runner-up */
    }
    /* naming something ends the quiet run: the planner chooses freely again */
    CHECK_EQ_INT(macrs_chat_turn(c, "something from the 2000s", &r, &err), RLAB_OK);
    CHECK(r.n_turns == 8);
    if (r.n_turns == 8)
        CHECK(strstr(r.t[7].extra, "\"quiet\":") == NULL);
    macrs_result_clear(&r);
    macrs_chat_free(c);
}

/* Through the host: crs.simulate on the fixture catalogue (every policy, the same targets),
 * the dialogues stored and replayed; a chat continued in a new session from the store. */
static void t_macrs_host(void)
{
    rlab_host *h = new_host();
    rlab_err err = {0};
    char db[600], line[1400];
    snprintf(db, sizeof db, "%s/crs_macrs.db", rlab_test_tmpdir());
    remove(db);
    CHECK_MSG(rlab_host_set_store(h, db, &err) == RLAB_OK, "store: %s", err.msg);
    snprintf(line, sizeof line, "load %s name=tr", write_tmp("tr6.jsonl", train_jsonl));
    rlab_result_free(rlab_test_run(h, line, RLAB_OK, NULL));
    snprintf(line, sizeof line, "load %s name=te", write_tmp("te6.jsonl", test_jsonl));
    rlab_result_free(rlab_test_run(h, line, RLAB_OK, NULL));
    snprintf(line, sizeof line, "crs.prepare dialogues=tr catalog=te movies=%s name=cat",
             write_tmp("m6.dat", movies_dat));
    rlab_result_free(rlab_test_run(h, line, RLAB_OK, NULL));
    rlab_result_free(rlab_test_run(h,
                                   "train unicrs data=cat epochs=1 dim=16 ctx_len=12 buckets=512 "
                                   "batch=2 n_prefix=2 seed=3",
                                   RLAB_OK, NULL));
    rlab_result *r = rlab_test_run(h, "crs.simulate data=cat rec=unicrs targets=6 seed=2 turns=4",
                                   RLAB_OK, NULL);
    const rlab_table *t = r && r->ntables ? r->tables[0] : NULL;
    CHECK(t && t->nrows == 4 && t->ncols == 6);
    int64_t run = r ? (int64_t)rlab_test_scalar(r, "run") : 0;
    for (int64_t i = 0; t && i < t->nrows; i++) {
        const rlab_cell *c = t->cells + i * t->ncols;
        CHECK(c[1].f >= 0 && c[1].f <= c[3].f && c[3].f <= 1); /* success <= hit */
        CHECK(c[2].f >= 1 && c[2].f <= 4);
    }
    rlab_result_free(r);
    /* 4 policies x 6 dialogues, each opening with the user */
    snprintf(line, sizeof line,
             "SELECT count(DISTINCT conversation) FROM dialogues WHERE run_id = %lld",
             (long long)run);
    CHECK_EQ_INT((int)query_int(h, line), 24);
    snprintf(line, sizeof line,
             "SELECT count(*) FROM dialogues WHERE run_id = %lld AND turn = 0 AND role = 'user'",
             (long long)run);
    CHECK_EQ_INT((int)query_int(h, line), 24);
    snprintf(line, sizeof line, "crs.replay run=%lld conversation=0", (long long)run);
    r = rlab_test_run(h, line, RLAB_OK, NULL);
    CHECK(r && r->ntables && r->tables[0]->nrows >= 3);
    if (r && r->ntables && r->tables[0]->nrows >= 2)
        CHECK_STR(r->tables[0]->cells[1 * 6 + 1].s, "system");
    rlab_result_free(r);
    /* the same seed gives the same table */
    r = rlab_test_run(h, "crs.simulate data=cat rec=unicrs targets=6 seed=2 turns=4 store=false",
                      RLAB_OK, NULL);
    const rlab_table *t2 = r && r->ntables ? r->tables[0] : NULL;
    CHECK(t2 && t && t2->nrows == 4);
    rlab_result_free(r);
    rlab_result_free(rlab_test_run(h, "crs.simulate data=cat policies=nope", RLAB_EINVAL, NULL));
    /* a chat: started, then continued in a NEW session from the store */
    r = rlab_test_run(h, "crs.chat data=cat model=macrs I want a comedy", RLAB_OK, NULL);
    int64_t chat = r ? (int64_t)rlab_test_scalar(r, "session") : 0;
    const rlab_cell *d1 = r ? rlab_result_scalar(r, "detail") : NULL;
    CHECK(d1 && d1->s && strstr(d1->s, "\"wanted\":[\"Comedy\"]"));
    CHECK(d1 && d1->s && strstr(d1->s, "\"rejected_proposals\":["));
    rlab_result_free(r);
    rlab_host_free(h);
    h = new_host();
    CHECK_MSG(rlab_host_set_store(h, db, &err) == RLAB_OK, "store: %s", err.msg);
    snprintf(line, sizeof line, "crs.chat session=%lld not from the 2000s please", (long long)chat);
    r = rlab_test_run(h, line, RLAB_OK, NULL);
    const rlab_cell *d2 = r ? rlab_result_scalar(r, "detail") : NULL;
    CHECK(d2 && d2->s && strstr(d2->s, "\"wanted\":[\"Comedy\"],\"unwanted\":[\"2000s\"]"));
    rlab_result_free(r);
    snprintf(line, sizeof line, "crs.replay run=%lld", (long long)chat);
    r = rlab_test_run(h, line, RLAB_OK, NULL);
    CHECK(r && r->ntables && r->tables[0]->nrows == 4);
    if (r && r->ntables && r->tables[0]->nrows == 4)
        CHECK_STR(r->tables[0]->cells[2 * 6 + 2].s, "not from the 2000s please");
    rlab_result_free(r);
    rlab_host_free(h);
}

/* A sequential recommender in a chat with a person: nothing to read before a title is named,
 * so popularity answers (and the state says so); a title named, the recommender's own. */
static void t_macrs_seqrec(void)
{
    rlab_host *h = rlab_test_host(RLAB_CRS_PLUGIN_DIR, "reclab_crs.so", "reclab_seqrec.so");
    rlab_err err = {0};
    char db[600];
    snprintf(db, sizeof db, "%s/crs_macrs_seqrec.db", rlab_test_tmpdir());
    remove(db);
    CHECK_MSG(rlab_host_set_store(h, db, &err) == RLAB_OK, "store: %s", err.msg);
    rlab_world *w = NULL;
    rlab_dataset *ds = NULL;
    CHECK_MSG(rlab_world_demo(&w, &ds, &err) == RLAB_OK, "demo: %s", err.msg);
    rlab_world_free(w);
    CHECK_MSG(rlab_host_add_dataset(h, ds, &err) == RLAB_OK, "add: %s", err.msg);
    rlab_result_free(rlab_test_run(
        h, "train sasrec data=demo epochs=1 dim=8 maxlen=10 name=sq seed=1", RLAB_OK, NULL));
    rlab_result *r =
        rlab_test_run(h, "crs.chat data=demo rec=sq I want something scary", RLAB_OK, NULL);
    const rlab_cell *d = r ? rlab_result_scalar(r, "detail") : NULL;
    CHECK(d && d->s && strstr(d->s, "\"recommender\":\"popularity"));
    CHECK(d && d->s && strstr(d->s, "\"wanted\":[\"Horror\"]"));
    rlab_result_free(r);
    rlab_host_free(h);
}

/* The openai backend against the local fake server: the responders' prompt (MACRS's format)
 * and the LLM user; the echo server's replies are what is stored. */
static void t_macrs_llm(void)
{
    char e[256];
    fake_llm *srv = fake_llm_start(0, e, sizeof e);
    CHECK_MSG(srv != NULL, "fake server: %s", e);
    if (!srv)
        return;
    rlab_host *h = new_host();
    rlab_err err = {0};
    char db[600], line[1400];
    snprintf(db, sizeof db, "%s/crs_macrs_llm.db", rlab_test_tmpdir());
    remove(db);
    CHECK_MSG(rlab_host_set_store(h, db, &err) == RLAB_OK, "store: %s", err.msg);
    snprintf(line, sizeof line, "load %s name=tr", write_tmp("tr7.jsonl", train_jsonl));
    rlab_result_free(rlab_test_run(h, line, RLAB_OK, NULL));
    snprintf(line, sizeof line, "crs.prepare dialogues=tr movies=%s name=cat",
             write_tmp("m7.dat", movies_dat));
    rlab_result_free(rlab_test_run(h, line, RLAB_OK, NULL));
    snprintf(line, sizeof line,
             "crs.simulate data=cat policies=macrs targets=2 turns=3 backend=openai user=llm "
             "planner=llm llm_url=http://127.0.0.1:%d llm_model=echo",
             fake_llm_port(srv));
    rlab_result *r = rlab_test_run(h, line, RLAB_OK, NULL);
    int64_t run = r ? (int64_t)rlab_test_scalar(r, "run") : 0;
    rlab_result_free(r);
    CHECK(fake_llm_requests(srv) >= 2);
    /* the simulated user's words are the LLM's (the echo of its prompt, which is built from
     * the target's values and never names the target) */
    snprintf(line, sizeof line,
             "SELECT count(*) FROM dialogues WHERE run_id = %lld AND role = 'user' AND text LIKE "
             "'echo: You are a user talking to a movie recommender%%'",
             (long long)run);
    CHECK(query_int(h, line) >= 1);
    /* the CRS's words are the LLM's too: the echo of the chosen responder's request (its
     * draft), three requests per MACRS turn */
    snprintf(line, sizeof line,
             "SELECT count(*) FROM dialogues WHERE run_id = %lld AND role = 'system' AND text LIKE "
             "'echo: Draft: %%'",
             (long long)run);
    CHECK(query_int(h, line) >= 1);
    /* the planner asked the LLM too; the echo ("echo: You are the planner...") names no act,
     * so the scored choice stood, and the turn says so */
    snprintf(line, sizeof line,
             "SELECT count(*) FROM dialogues WHERE run_id = %lld AND json_extract(extra, "
             "'$.planner') = 'scored (llm reply unusable)'",
             (long long)run);
    CHECK(query_int(h, line) >= 1);
    /* a chat started with the openai backend continues with it without naming it again, and
     * its earlier turns are replayed from the store, not asked again: 3 requests per turn
     * (the three responders) */
    snprintf(line, sizeof line,
             "crs.chat data=cat model=macrs backend=openai llm_url=http://127.0.0.1:%d "
             "llm_model=echo I want a comedy",
             fake_llm_port(srv));
    r = rlab_test_run(h, line, RLAB_OK, NULL);
    int64_t chat = r ? (int64_t)rlab_test_scalar(r, "session") : 0;
    rlab_result_free(r);
    CHECK(chat > 0);
    long before = fake_llm_requests(srv);
    snprintf(line, sizeof line, "crs.chat session=%lld not from the 2000s please", (long long)chat);
    r = rlab_test_run(h, line, RLAB_OK, NULL);
    const rlab_cell *rc1 = r ? rlab_result_scalar(r, "response") : NULL;
    CHECK(rc1 && rc1->s && strncmp(rc1->s, "echo: Draft: ", 13) == 0);
    rlab_result_free(r);
    CHECK_EQ_INT(fake_llm_requests(srv) - before, 3);
    snprintf(line, sizeof line,
             "SELECT count(*) FROM dialogues WHERE run_id = %lld AND role = 'system' AND turn >= 0"
             " AND text LIKE 'echo: Draft: %%'",
             (long long)chat);
    CHECK_EQ_INT(query_int(h, line), 2);
    /* backend=offline on the line overrides the stored one: templates, no request */
    before = fake_llm_requests(srv);
    snprintf(line, sizeof line, "crs.chat session=%lld backend=offline any drama?",
             (long long)chat);
    r = rlab_test_run(h, line, RLAB_OK, NULL);
    const rlab_cell *rc2 = r ? rlab_result_scalar(r, "response") : NULL;
    CHECK(rc2 && rc2->s && strncmp(rc2->s, "echo:", 5) != 0);
    rlab_result_free(r);
    CHECK_EQ_INT(fake_llm_requests(srv) - before, 0);
    rlab_host_free(h);
    fake_llm_stop(srv);
}

/* The plugin on real data: a short training on ReDial valid, the test split scored. */
static void t_data(void)
{
    const char *dir = rlab_test_data_dir();
    if (!dir)
        return;
    rlab_host *h = new_host();
    char line[2048];
    snprintf(line, sizeof line, "load %s/redial/valid_data.jsonl name=rv", dir);
    rlab_result_free(rlab_test_run(h, line, RLAB_OK, NULL));
    snprintf(line, sizeof line, "load %s/redial/test_data.jsonl name=rt", dir);
    rlab_result_free(rlab_test_run(h, line, RLAB_OK, NULL));
    snprintf(line, sizeof line,
             "crs.prepare dialogues=rv catalog=rt movies=%s/movielens-1m/movies_semicolon.dat,"
             "%s/movielens-100k/u.item name=redial",
             dir, dir);
    rlab_result *r = rlab_test_run(h, line, RLAB_OK, NULL);
    CHECK(rlab_test_scalar(r, "linked") > 500);
    CHECK(rlab_test_scalar(r, "instances") > 3000);
    rlab_result_free(r);
    rlab_result_free(
        rlab_test_run(h, "train unicrs data=redial epochs=1 dim=32 seed=1", RLAB_OK, NULL));
    r = rlab_test_run(h, "crs.eval model=unicrs data=rt limit=300", RLAB_OK, NULL);
    CHECK_NEAR(rlab_test_scalar(r, "instances"), 300, 0);
    const double r50 = rlab_test_scalar(r, "test.recall@50");
    CHECK(r50 > 0.0 && r50 <= 1.0);
    rlab_result_free(r);
    /* MACRS on the ReDial catalogue (MovieLens genres and decades), unicrs recommending */
    r = rlab_test_run(h, "crs.simulate data=redial rec=unicrs targets=20 seed=1 store=false",
                      RLAB_OK, NULL);
    const double sr = rlab_test_scalar(r, "macrs.success"), hr = rlab_test_scalar(r, "macrs.hit");
    CHECK(sr >= 0 && sr <= hr && hr <= 1);
    CHECK(rlab_test_scalar(r, "macrs.turns") >= 1);
    rlab_result_free(r);
    rlab_host_free(h);
}

static const rlab_test tests[] = {
    {"crs.title.1", t_title},
    {"crs.movies.1", t_movies},
    {"crs.insts.1", t_insts},
    {"crs.graph.1", t_graph},
    {"crs.rank.1", t_rank},
    {"crs.template.1", t_template},
    {"crs.host.1", t_host},
    {"crs.llm.1", t_llm},
    {"crs.reopen.1", t_reopen},
    {"crs.macrs.episode.1", t_macrs_episode},
    {"crs.macrs.chat.1", t_macrs_chat},
    {"crs.macrs.host.1", t_macrs_host},
    {"crs.macrs.llm.1", t_macrs_llm},
    {"crs.macrs.seqrec.1", t_macrs_seqrec},
    {"crsdata.redial.1", t_data},
    {NULL, NULL},
};

int main(int argc, char **argv) { return rlab_test_main(argc, argv, tests); }
