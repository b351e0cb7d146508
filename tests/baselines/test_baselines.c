/*
 * tests/baselines/test_baselines.c: the baselines plugin (Pop, ItemKNN, BPR-MF) driven
 * through the host exactly as the shell and Lua drive it.
 *
 * Test organization:
 *   bl.load.*    the plugin loads from the build tree with its commands and model kinds
 *   bl.args.*    bad arguments get the host's messages
 *   bl.pop.*     Pop scores and full-ranking metrics on a tiny hand-made dataset, computed by
 *                hand (valid and test masking rules, split=none)
 *   bl.knn.*     ItemKNN similarities / scores on the tiny dataset, by hand
 *   bl.bpr.*     BPR-MF scoring from a hand-written checkpoint (incl. fold-in of unknown
 *                users), determinism by seed, decreasing loss
 *   bl.eval.*    evaluating a model on a dataset of another size is refused
 *   bl.save.*    save -> load round trip gives bit-identical scores for all three kinds
 *   bl.cancel.*  cancelling BPR-MF training returns RLAB_ECANCELED promptly
 *   bl.store.*   metrics land in the session store with protocol "full"
 *   bl.demo.*    the demo world: BPR-MF and ItemKNN beat Pop on test HR@10 and NDCG@10
 *   bldata.*     (label data, $RECLAB_DATA) MovieLens-100K and Amazon Beauty: a separate
 *                ctest (baselines.data) so the unit run stays fast
 *
 * The plugin comes from RLAB_BL_PLUGIN_DIR (build/plugins of this build tree).
 */
#include "harness_host.h"
#include "data/loaders.h"
#include "data/world.h"
#include "host/host.h"
#include "tensor/checkpoint.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PDIR RLAB_BL_PLUGIN_DIR

/* ---- helpers ---------------------------------------------------------------------------- */

static rlab_host *new_host(void) { return rlab_test_host(PDIR, "reclab_baselines.so"); }
static rlab_result *run(rlab_host *h, const char *line, int want, const char *want_msg)
{
    return rlab_test_run(h, line, want, want_msg);
}
static double scalar(const rlab_result *r, const char *name) { return rlab_test_scalar(r, name); }

/* The tiny dataset (users u0..u3, items i0..i4, times in brackets):
 *   u0: i0(1) i1(2) i2(3) i3(4)   LOO: train {i0,i1}, valid i2, test i3
 *   u1: i0(1) i2(2) i1(3) i4(4)   LOO: train {i0,i2}, valid i1, test i4
 *   u2: i1(1) i0(2) i3(3)         LOO: train {i1},    valid i0, test i3
 *   u3: i0(1) i4(2)               fewer than 3: all train, no valid/test
 * Rows are pushed in a scrambled order: the split must sort by time. */
static rlab_dataset *tiny(const char *name)
{
    rlab_err err = {0};
    rlab_dataset *ds = rlab_dataset_new(name, &err);
    CHECK(ds != NULL);
    char buf[8];
    for (int u = 0; u < 4; u++) {
        snprintf(buf, sizeof buf, "u%d", u);
        rlab_vocab_add(&ds->users, buf, strlen(buf));
    }
    for (int i = 0; i < 5; i++) {
        snprintf(buf, sizeof buf, "i%d", i);
        rlab_vocab_add(&ds->items, buf, strlen(buf));
    }
    static const int rows[][3] = {{1, 4, 4}, {0, 0, 1}, {2, 3, 3}, {0, 3, 4}, {1, 0, 1},
                                  {3, 4, 2}, {0, 1, 2}, {2, 1, 1}, {1, 2, 2}, {0, 2, 3},
                                  {2, 0, 2}, {3, 0, 1}, {1, 1, 3}};
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++)
        CHECK(rlab_inter_push(&ds->inter, rows[r][0], rows[r][1], rows[r][2], 1.0f, NULL) == 0);
    ds->inter.flags = RLAB_INTER_HAS_TS;
    return ds;
}

static void add_ds(rlab_host *h, rlab_dataset *ds)
{
    rlab_err err = {0};
    CHECK_MSG(rlab_host_add_dataset(h, ds, &err) == RLAB_OK, "add dataset: %s", err.msg);
}

static void add_demo(rlab_host *h)
{
    rlab_err err = {0};
    rlab_world *w = NULL;
    rlab_dataset *ds = NULL;
    CHECK_MSG(rlab_world_demo(&w, &ds, &err) == RLAB_OK, "demo world: %s", err.msg);
    rlab_world_free(w);
    snprintf(ds->name, sizeof ds->name, "demo");
    add_ds(h, ds);
}

/* Scores of every item of registered model name for query q into out[n_items]. */
static void scores_of(rlab_host *h, const char *name, const rlab_query *q, float *out, int n)
{
    rlab_model *m = rlab_models_get(rlab_host_models(h), name);
    CHECK_MSG(m != NULL, "model '%s' not registered", name);
    CHECK_EQ_INT(m->n_items, n);
    rlab_err err = {0};
    int rc = rlab_model_score_all(m, q, 1, out, &err);
    rlab_model_release(m);
    CHECK_MSG(rc == RLAB_OK, "score_all: %s", err.msg);
}

/* ---- bl.load -------------------------------------------------------------------------- */

static void t_load(void)
{
    rlab_host *h = new_host();
    /* the plugin declares kinds only; the host gives them the verbs */
    CHECK(rlab_host_find_cmd(h, "train pop") != NULL);
    CHECK(rlab_host_find_cmd(h, "train bprmf") != NULL);
    CHECK(rlab_host_find_cmd(h, "eval") != NULL);
    CHECK(rlab_host_find_cmd(h, "baselines.train") == NULL);
    const char *plugin = NULL;
    CHECK(rlab_host_find_model_kind(h, "pop", &plugin) != NULL);
    CHECK_STR(plugin, "baselines");
    CHECK(rlab_host_find_model_kind(h, "itemknn", NULL) != NULL);
    CHECK(rlab_host_find_model_kind(h, "bprmf", NULL) != NULL);
    rlab_err err = {0};
    char *help = rlab_host_help_cmd(h, "train", &err);
    CHECK_STR_CONTAINS(help, "pop|itemknn|bprmf");
    rlab_free(help);
    help = rlab_host_help_cmd(h, "train bprmf", &err);
    CHECK_STR_CONTAINS(help, "keep_best");
    CHECK_STR_CONTAINS(help, "weight_decay=<float>");
    CHECK_STR_CONTAINS(help, "default 50"); /* the kind's own epochs default */
    rlab_free(help);
    help = rlab_host_help_cmd(h, "train pop", &err); /* one pass: no loop fields */
    CHECK(help && !strstr(help, "epochs="));
    rlab_free(help);
    rlab_host_free(h);
}

/* ---- bl.args -------------------------------------------------------------------------- */

static void t_args(void)
{
    rlab_host *h = new_host();
    add_ds(h, tiny("tiny"));
    rlab_result_free(run(h, "train gru data=tiny", RLAB_ENOTFOUND,
                         "train: unknown model kind 'gru' (pop|itemknn|bprmf)"));
    rlab_result_free(run(h, "train pop", RLAB_EINVAL, "train pop: missing argument 'data'"));
    rlab_result_free(run(h, "train bprmf data=tiny dim=0", RLAB_EINVAL,
                         "train bprmf: bad argument 'dim' (integer in [1, 4096] expected, got 0)"));
    rlab_result_free(run(h, "train bprmf data=tiny lr=-1", RLAB_EINVAL,
                         "train bprmf: bad argument 'lr' (number in [0, 10] expected, got -1)"));
    rlab_result_free(
        run(h, "train pop data=nope", RLAB_ENOTFOUND, "train pop: dataset 'nope' not found"));
    rlab_result_free(
        run(h, "train pop data=tiny epoch=3", RLAB_EINVAL, "train pop: unknown argument 'epoch'"));
    rlab_result_free(
        run(h, "eval model=ghost data=tiny", RLAB_ENOTFOUND, "eval: model 'ghost' not found"));
    rlab_result_free(run(h, "eval model=ghost data=tiny split=train", RLAB_EINVAL,
                         "eval: bad argument 'split' (one of valid|test|both expected, got "
                         "'train')"));
    /* nothing was registered by the failures */
    CHECK_EQ_INT(rlab_models_count(rlab_host_models(h)), 0);
    rlab_host_free(h);
}

/* ---- bl.pop --------------------------------------------------------------------------- */

/* LOO train counts: i0 3 (u0 u1 u3), i1 2 (u0 u2), i2 1 (u1), i3 0, i4 1 (u3). */
static void t_pop_scores(void)
{
    rlab_host *h = new_host();
    add_ds(h, tiny("tiny"));
    rlab_result *res = run(h, "train pop data=tiny", RLAB_OK, NULL);
    const rlab_cell *c = rlab_result_scalar(res, "model");
    CHECK(c && c->type == RLAB_CELL_MODEL);
    CHECK_STR(c->s, "pop");
    rlab_result_free(res);
    float s[5];
    scores_of(h, "pop", &(rlab_query){.user = 2}, s, 5);
    const float want[5] = {3, 2, 1, 0, 1};
    for (int i = 0; i < 5; i++)
        CHECK_NEAR(s[i], want[i], 0);
    /* split=none counts all 13 rows: i0 4, i1 3, i2 2, i3 2, i4 2 */
    rlab_result_free(run(h, "train pop data=tiny split=none name=popall", RLAB_OK, NULL));
    scores_of(h, "popall", &(rlab_query){.user = -1}, s, 5);
    const float want2[5] = {4, 3, 2, 2, 2};
    for (int i = 0; i < 5; i++)
        CHECK_NEAR(s[i], want2[i], 0);
    rlab_host_free(h);
}

/* Test item, history = train + valid masked, Pop scores {3,2,1,0,1}:
 *   u0: hist {i0,i1,i2}, target i3 (0); unmasked i4 (1) above      -> rank 1
 *   u1: hist {i0,i2,i1}, target i4 (1); unmasked i3 (0) below      -> rank 0
 *   u2: hist {i1,i0},    target i3 (0); i2 (1), i4 (1) above       -> rank 2
 * (without masking the valid item, u0's i2 would tie i4 above i3: rank 2.)
 *   hr@1 = 1/3, hr@5 = 1, ndcg@5 = (1/log2(3) + 1 + 1/2) / 3, mrr@5 = (1/2 + 1 + 1/3) / 3 */
static void t_pop_test(void)
{
    rlab_host *h = new_host();
    add_ds(h, tiny("tiny"));
    rlab_result_free(run(h, "train pop data=tiny", RLAB_OK, NULL));
    rlab_result *res = run(h, "eval model=pop k=1", RLAB_OK, NULL);
    double l3 = 1.0 / log2(3.0);
    CHECK_NEAR(scalar(res, "test.hr@1"), 1.0 / 3.0, 1e-9);
    CHECK_NEAR(scalar(res, "test.ndcg@1"), 1.0 / 3.0, 1e-9);
    CHECK_NEAR(scalar(res, "test.hr@5"), 1.0, 1e-9);
    CHECK_NEAR(scalar(res, "test.ndcg@5"), (l3 + 1.0 + 0.5) / 3.0, 1e-9);
    CHECK_NEAR(scalar(res, "test.mrr@5"), (0.5 + 1.0 + 1.0 / 3.0) / 3.0, 1e-9);
    CHECK_NEAR(scalar(res, "test.recall@5"), 1.0, 1e-9);
    CHECK_NEAR(scalar(res, "users"), 3, 0);
    /* the result table: metric | valid | test, metric-major over the cut-offs 1, 5, 10, 20 */
    CHECK_EQ_INT(res->ntables, 1);
    const rlab_table *t = res->tables[0];
    CHECK_STR(t->name, "metrics");
    CHECK_EQ_INT(t->ncols, 3);
    CHECK_EQ_INT(t->nrows, 16); /* hr, recall, ndcg, mrr x 4 cut-offs */
    CHECK_STR(t->cells[0].s, "hr@1");
    CHECK_NEAR(t->cells[2].f, 1.0 / 3.0, 1e-9);
    int nd5 = -1;
    for (int r = 0; r < t->nrows; r++)
        if (!strcmp(t->cells[3 * r].s, "ndcg@5"))
            nd5 = r;
    CHECK(nd5 >= 0);
    if (nd5 >= 0)
        CHECK_NEAR(t->cells[3 * nd5 + 2].f, (l3 + 1.0 + 0.5) / 3.0, 1e-9);
    CHECK_STR(t->cells[3 * 3].s, "hr@20");
    CHECK(res->nlines == 1);
    CHECK_STR_CONTAINS(res->lines[0], "hr@1 0.3333");
    rlab_result_free(res);
    rlab_host_free(h);
}

/* The cold-item slice (eval cold=N): LOO train counts of the tiny data are i0 3 (u0, u1, u3),
 * i1 2, i2 1, i3 0, i4 1. cold=1 keeps the test targets of items never seen in train: i3 of
 * u0 (rank 1) and of u2 (rank 2), not u1's i4 (count 1):
 *   hr@1 = 0, hr@5 = 1, ndcg@5 = (1/log2(3) + 1/2) / 2, mrr@5 = (1/2 + 1/3) / 2, 2 users.
 * cold=2 adds u1's i4 (rank 0): the full test set of t_pop_test. */
static void t_pop_cold(void)
{
    rlab_host *h = new_host();
    add_ds(h, tiny("tiny"));
    rlab_result_free(run(h, "train pop data=tiny", RLAB_OK, NULL));
    rlab_result *res = run(h, "eval model=pop split=test k=1 cold=1", RLAB_OK, NULL);
    const double l3 = 1.0 / log2(3.0);
    CHECK_NEAR(scalar(res, "test.hr@1"), 0.0, 1e-9);
    CHECK_NEAR(scalar(res, "test.hr@5"), 1.0, 1e-9);
    CHECK_NEAR(scalar(res, "test.ndcg@5"), (l3 + 0.5) / 2.0, 1e-9);
    CHECK_NEAR(scalar(res, "test.mrr@5"), (0.5 + 1.0 / 3.0) / 2.0, 1e-9);
    CHECK_NEAR(scalar(res, "users"), 2, 0);
    CHECK_NEAR(scalar(res, "cold"), 1, 0);
    CHECK(res && res->nlines == 1);
    if (res && res->nlines)
        CHECK_STR_CONTAINS(res->lines[0], "cold items (< 1 train interactions)");
    rlab_result_free(res);
    res = run(h, "eval model=pop split=test k=1 cold=2", RLAB_OK, NULL);
    CHECK_NEAR(scalar(res, "test.mrr@5"), (0.5 + 1.0 + 1.0 / 3.0) / 3.0, 1e-9);
    CHECK_NEAR(scalar(res, "users"), 3, 0);
    rlab_result_free(res);
    rlab_host_free(h);
}

/* Valid item, history = train masked:
 *   u0: hist {i0,i1}, target i2 (1); i4 (1) ties, i3 (0) below -> expected rank 0.5
 *   u1: hist {i0,i2}, target i1 (2) -> rank 0;  u2: hist {i1}, target i0 (3) -> rank 0
 *   hr@1 = (1/2 + 2) / 3, ndcg@5 = ((1 + 1/log2(3)) / 2 + 2) / 3, mrr@5 = (3/4 + 2) / 3 */
static void t_pop_valid(void)
{
    rlab_host *h = new_host();
    add_ds(h, tiny("tiny"));
    rlab_result_free(run(h, "train pop data=tiny", RLAB_OK, NULL));
    rlab_result *res = run(h, "eval model=pop data=tiny split=valid k=1", RLAB_OK, NULL);
    CHECK_NEAR(scalar(res, "valid.hr@1"), 2.5 / 3.0, 1e-9);
    CHECK_NEAR(scalar(res, "valid.ndcg@5"), ((1.0 + 1.0 / log2(3.0)) / 2.0 + 2.0) / 3.0, 1e-9);
    CHECK_NEAR(scalar(res, "valid.mrr@5"), (0.75 + 2.0) / 3.0, 1e-9);
    rlab_result_free(res);
    rlab_host_free(h);
}

/* ---- bl.knn --------------------------------------------------------------------------- */

/* LOO train binary matrix: u0 {i0,i1}, u1 {i0,i2}, u2 {i1}, u3 {i0,i4}.
 * Item users: i0 {u0,u1,u3}, i1 {u0,u2}, i2 {u1}, i3 {}, i4 {u3}.
 * sim(0,1) = 1/sqrt(6), sim(0,2) = sim(0,4) = 1/sqrt(3); every other pair 0.
 * k=1: N(i0) = {i2} (tie with i4, lower id wins), N(i1) = N(i2) = N(i4) = {i0}, N(i3) = {}.
 * k=2: N(i0) = {i2, i4}. */
static void t_knn(void)
{
    rlab_host *h = new_host();
    add_ds(h, tiny("tiny"));
    rlab_result_free(run(h, "train itemknn data=tiny k=1 name=k1", RLAB_OK, NULL));
    rlab_result_free(run(h, "train itemknn data=tiny k=2 name=k2", RLAB_OK, NULL));
    const float s6 = (float)(1.0 / sqrt(6.0)), s3 = (float)(1.0 / sqrt(3.0));
    float s[5];
    /* history i0, i1 (and a duplicate i0: the matrix is binary) */
    const int32_t hist[] = {0, 1, 0};
    rlab_query q = {.user = 0, .hist = hist, .n_hist = 3};
    scores_of(h, "k1", &q, s, 5);
    const float w1[5] = {s6, 0, s3, 0, 0};
    for (int i = 0; i < 5; i++)
        CHECK_NEAR(s[i], w1[i], 1e-6);
    scores_of(h, "k2", &q, s, 5);
    const float w2[5] = {s6, 0, s3, 0, s3};
    for (int i = 0; i < 5; i++)
        CHECK_NEAR(s[i], w2[i], 1e-6);
    /* the user index plays no role: an unknown user with history i4 gets sim(4,0) on i0 */
    const int32_t h4[] = {4};
    scores_of(h, "k2", &(rlab_query){.user = -1, .hist = h4, .n_hist = 1}, s, 5);
    const float w3[5] = {s3, 0, 0, 0, 0};
    for (int i = 0; i < 5; i++)
        CHECK_NEAR(s[i], w3[i], 1e-6);
    rlab_model *m = rlab_models_get(rlab_host_models(h), "k2");
    char buf[192];
    rlab_model_describe(m, buf, sizeof buf);
    CHECK_STR_CONTAINS(buf, "ItemKNN cosine, k=2");
    CHECK_STR_CONTAINS(buf, "on tiny");
    rlab_model_release(m);
    rlab_host_free(h);
}

/* ---- bl.bpr --------------------------------------------------------------------------- */

/* A hand-written BPR-MF checkpoint: 2 users, 3 items, d = 2. */
static const char *write_bpr_ckpt(const char *file, const char *kind, const char *n_users)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", rlab_test_tmpdir(), file);
    rlab_param_spec sp[3] = {{"user_emb", 2, {2, 2}, RLAB_INIT_ZERO, 0},
                             {"item_emb", 2, {3, 2}, RLAB_INIT_ZERO, 0},
                             {"item_bias", 1, {3}, RLAB_INIT_ZERO, 0}};
    rlab_err err = {0};
    rlab_params *P = rlab_params_new(sp, 3, NULL, &err);
    CHECK(P != NULL);
    const float U[] = {1, 2, -1, 0.5f}, V[] = {1, 0, 0, 1, 2, -2}, b[] = {0.5f, 0, -1};
    memcpy(P->t[0].data, U, sizeof U);
    memcpy(P->t[1].data, V, sizeof V);
    memcpy(P->t[2].data, b, sizeof b);
    /* the host's metadata (reclab.*) and the kind's config and info */
    rlab_kv kv[] = {
        {"reclab.format", "reclab-model-1"}, {"reclab.kind", kind},       {"reclab.name", "hand"},
        {"reclab.dataset", "hand"},          {"reclab.n_users", n_users}, {"reclab.n_items", "3"},
        {"reclab.config", "{\"dim\":2}"},    {"bprmf.info", "by hand"}};
    int rc = rlab_ckpt_save(path, P, NULL, kv, 8, &err);
    rlab_params_free(P);
    CHECK_MSG(rc == RLAB_OK, "ckpt save: %s", err.msg);
    return path;
}

static void t_bpr_hand(void)
{
    rlab_host *h = new_host();
    rlab_err err = {0};
    const char *path = write_bpr_ckpt("hand.safetensors", "bprmf", "2");
    int rc = rlab_host_load_model(h, "hand", path, "bprmf", &err);
    CHECK_MSG(rc == RLAB_OK, "load: %s", err.msg);
    float s[3];
    /* user 0 = (1, 2): items (1,0)+.5, (0,1)+0, (2,-2)-1 */
    scores_of(h, "hand", &(rlab_query){.user = 0}, s, 3);
    CHECK_NEAR(s[0], 1.5, 1e-6);
    CHECK_NEAR(s[1], 2.0, 1e-6);
    CHECK_NEAR(s[2], -3.0, 1e-6);
    /* user 1 = (-1, .5) */
    scores_of(h, "hand", &(rlab_query){.user = 1}, s, 3);
    CHECK_NEAR(s[0], -0.5, 1e-6);
    CHECK_NEAR(s[1], 0.5, 1e-6);
    CHECK_NEAR(s[2], -4.0, 1e-6);
    /* unknown user with history i0, i2: folded in as the mean (1.5, -1) */
    const int32_t hist[] = {0, 2};
    scores_of(h, "hand", &(rlab_query){.user = -1, .hist = hist, .n_hist = 2}, s, 3);
    CHECK_NEAR(s[0], 2.0, 1e-6);
    CHECK_NEAR(s[1], -1.0, 1e-6);
    CHECK_NEAR(s[2], 4.0, 1e-6);
    /* user_repr */
    rlab_model *m = rlab_models_get(rlab_host_models(h), "hand");
    CHECK_EQ_INT(m->repr_dim, 2);
    float r[4];
    rlab_query qs[2] = {{.user = 1}, {.user = -1, .hist = hist, .n_hist = 2}};
    CHECK(rlab_model_user_repr(m, qs, 2, r, &err) == RLAB_OK);
    CHECK_NEAR(r[0], -1, 0);
    CHECK_NEAR(r[1], 0.5, 0);
    CHECK_NEAR(r[2], 1.5, 0);
    CHECK_NEAR(r[3], -1, 0);
    char buf[192];
    rlab_model_describe(m, buf, sizeof buf);
    CHECK_STR(buf, "BPR-MF d=2, by hand on hand");
    rlab_model_release(m);
    /* the wrong kind is refused with a message naming both */
    rc = rlab_host_load_model(h, "bad", path, "pop", &err);
    CHECK_EQ_INT(rc, RLAB_EFORMAT);
    CHECK_STR_CONTAINS(err.msg, "holds a 'bprmf' model, not 'pop'");
    /* a checkpoint whose tensors do not match its sizes is refused */
    path = write_bpr_ckpt("bad.safetensors", "bprmf", "3");
    rc = rlab_host_load_model(h, "bad", path, "bprmf", &err);
    CHECK_EQ_INT(rc, RLAB_EINVAL);
    CHECK_STR_CONTAINS(err.msg, "user_emb");
    CHECK_EQ_INT(rlab_models_count(rlab_host_models(h)), 1);
    rlab_host_free(h);
}

typedef struct losses {
    _Atomic int n;
    double loss[64];
    _Atomic int64_t step;
} losses;

static void on_event(const rlab_event *ev, void *ud)
{
    losses *L = ud;
    if (ev->type != RLAB_EV_PROGRESS)
        return;
    atomic_store(&L->step, ev->step);
    for (int i = 0; i < ev->nmetrics; i++)
        if (strcmp(ev->metrics[i].name, "loss") == 0) {
            int n = atomic_load(&L->n);
            if (n < 64) {
                L->loss[n] = ev->metrics[i].value;
                atomic_store(&L->n, n + 1);
            }
        }
}

static void t_bpr_train(void)
{
    rlab_host *h = new_host();
    add_demo(h);
    losses L = {0};
    rlab_host_set_event_fn(h, on_event, &L);
    rlab_result *res =
        run(h, "train bprmf data=demo epochs=6 eval_every=3 seed=7 dim=16 name=a", RLAB_OK, NULL);
    CHECK_EQ_INT(atomic_load(&L.n), 6);
    for (int e = 1; e < 6; e++)
        CHECK_MSG(L.loss[e] < L.loss[e - 1], "loss went up at epoch %d: %g -> %g", e + 1,
                  L.loss[e - 1], L.loss[e]);
    CHECK(L.loss[0] < 0.6932 && L.loss[5] > 0); /* starts below log 2 (tiny init), stays > 0 */
    CHECK(scalar(res, "valid.ndcg@10") > 0);    /* the kept epoch's selection metric */
    CHECK(scalar(res, "test.ndcg@10") > 0);     /* the kept model on the test targets */
    CHECK_EQ_INT((int)scalar(res, "epochs_run"), 6);
    rlab_result_free(res);
    rlab_host_set_event_fn(h, NULL, NULL);
    rlab_result_free(
        run(h, "train bprmf data=demo epochs=2 eval_every=0 seed=7 dim=16 name=b", RLAB_OK, NULL));
    rlab_result_free(
        run(h, "train bprmf data=demo epochs=2 eval_every=0 seed=7 dim=16 name=c", RLAB_OK, NULL));
    rlab_result_free(
        run(h, "train bprmf data=demo epochs=2 eval_every=0 seed=8 dim=16 name=d", RLAB_OK, NULL));
    float *sb = malloc(600 * sizeof(float)), *sc = malloc(600 * sizeof(float)),
          *sd = malloc(600 * sizeof(float));
    scores_of(h, "b", &(rlab_query){.user = 5}, sb, 600);
    scores_of(h, "c", &(rlab_query){.user = 5}, sc, 600);
    scores_of(h, "d", &(rlab_query){.user = 5}, sd, 600);
    CHECK_MSG(memcmp(sb, sc, 600 * sizeof(float)) == 0, "same seed, different scores");
    CHECK_MSG(memcmp(sb, sd, 600 * sizeof(float)) != 0, "different seeds, same scores");
    free(sb);
    free(sc);
    free(sd);
    rlab_host_free(h);
}

/* ---- bl.eval -------------------------------------------------------------------------- */

static void t_eval_mismatch(void)
{
    rlab_host *h = new_host();
    add_ds(h, tiny("tiny"));
    add_demo(h);
    rlab_result_free(run(h, "train pop data=tiny", RLAB_OK, NULL));
    rlab_result_free(run(h, "eval model=pop data=demo", RLAB_EINVAL,
                         "eval: model 'pop' scores 5 items, dataset 'demo' has 600"));
    /* a model whose dataset is gone needs data= */
    rlab_err err = {0};
    CHECK(rlab_host_remove_dataset(h, "tiny", &err) == RLAB_OK);
    rlab_result_free(run(h, "eval model=pop", RLAB_ENOTFOUND, "eval: dataset 'tiny' not found"));
    rlab_host_free(h);
}

/* ---- bl.save -------------------------------------------------------------------------- */

static void t_save(void)
{
    rlab_host *h = new_host();
    add_demo(h);
    rlab_result_free(run(h, "train pop data=demo", RLAB_OK, NULL));
    rlab_result_free(run(h, "train itemknn data=demo k=30", RLAB_OK, NULL));
    rlab_result_free(run(h, "train bprmf data=demo epochs=2 dim=16 eval_every=0", RLAB_OK, NULL));
    static const char *const names[] = {"pop", "itemknn", "bprmf"};
    const int32_t hist[] = {3, 17, 40, 41, 599};
    float *a = malloc(600 * sizeof(float)), *b = malloc(600 * sizeof(float));
    for (int k = 0; k < 3; k++) {
        rlab_err err = {0};
        char *path = NULL;
        int rc = rlab_host_save_model(h, names[k], rlab_test_tmpdir(), &path, &err);
        CHECK_MSG(rc == RLAB_OK, "save %s: %s", names[k], err.msg);
        char copy[80];
        snprintf(copy, sizeof copy, "%s_copy", names[k]);
        rc = rlab_host_load_model(h, copy, path, NULL, &err);
        CHECK_MSG(rc == RLAB_OK, "load %s: %s", names[k], err.msg);
        rlab_free(path);
        for (int user = -1; user < 1000; user += 333) {
            rlab_query q = {.user = user, .hist = hist, .n_hist = 5};
            scores_of(h, names[k], &q, a, 600);
            scores_of(h, copy, &q, b, 600);
            CHECK_MSG(memcmp(a, b, 600 * sizeof(float)) == 0, "%s: scores differ after reload",
                      names[k]);
        }
        rlab_model *m1 = rlab_models_get(rlab_host_models(h), names[k]);
        rlab_model *m2 = rlab_models_get(rlab_host_models(h), copy);
        char d1[192], d2[192];
        rlab_model_describe(m1, d1, sizeof d1);
        rlab_model_describe(m2, d2, sizeof d2);
        CHECK_STR(d2, d1);
        CHECK_STR(m2->dataset, "demo");
        CHECK_STR(m2->kind, names[k]);
        CHECK_EQ_INT(m2->n_users, 1000);
        rlab_model_release(m1);
        rlab_model_release(m2);
    }
    free(a);
    free(b);
    rlab_host_free(h);
}

/* ---- bl.cancel ------------------------------------------------------------------------ */

static void t_cancel(void)
{
    rlab_host *h = new_host();
    add_demo(h);
    losses L = {0};
    rlab_host_set_event_fn(h, on_event, &L);
    rlab_err err = {0};
    int job = 0;
    int rc = rlab_host_submit(h, "train bprmf data=demo epochs=100000", &job, &err);
    CHECK_MSG(rc == RLAB_OK, "submit: %s", err.msg);
    /* wait until the first epoch is reported, so the cancel lands inside training */
    double t0 = rlab_now();
    while (atomic_load(&L.step) < 1 && rlab_now() - t0 < 60) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    CHECK(atomic_load(&L.step) >= 1);
    double tc = rlab_now();
    CHECK(rlab_host_cancel(h, job) == RLAB_OK);
    rc = rlab_host_wait(h, job, NULL, &err);
    double latency = rlab_now() - tc;
    CHECK_EQ_INT(rc, RLAB_ECANCELED);
    CHECK_MSG(latency < 1.0, "cancel took %.3f s", latency);
    /* a cancelled run keeps the model as far as it got (the best validation so far) */
    rlab_model *m = rlab_models_get(rlab_host_models(h), "bprmf");
    CHECK(m != NULL);
    rlab_model_release(m);
    fprintf(stderr, "bl.cancel: returned %.1f ms after the cancel\n", latency * 1e3);
    rlab_host_free(h);
}

/* ---- bl.store ------------------------------------------------------------------------- */

static double db_value(rlab_host *h, const char *sql, int *nrow)
{
    rlab_err err = {0};
    rlab_db_result *r = rlab_db_query_table(rlab_host_db(h), sql, NULL, 0, 0, &err);
    CHECK_MSG(r != NULL, "query: %s", err.msg);
    *nrow = r->nrow;
    double v = (double)NAN;
    if (r->nrow) {
        const rlab_db_value *c = rlab_db_result_cell(r, 0, 0);
        v = c->type == RLAB_DB_INT ? (double)c->i : c->r;
    }
    rlab_db_result_free(r);
    return v;
}

static void t_store(void)
{
    rlab_host *h = new_host();
    char path[512];
    snprintf(path, sizeof path, "%s/bl.db", rlab_test_tmpdir());
    rlab_err err = {0};
    CHECK_MSG(rlab_host_set_store(h, path, &err) == RLAB_OK, "store: %s", err.msg);
    add_ds(h, tiny("tiny"));
    rlab_result_free(run(h, "train pop data=tiny", RLAB_OK, NULL));
    rlab_result *res = run(h, "eval model=pop data=tiny", RLAB_OK, NULL);
    double ndcg = scalar(res, "test.ndcg@10");
    rlab_result_free(res);
    int n = 0;
    double v = db_value(h,
                        "SELECT m.value FROM metrics m JOIN runs r ON r.id = m.run_id WHERE "
                        "r.plugin = 'baselines' AND m.split = 'test' AND m.name = 'ndcg@10' AND "
                        "m.protocol = 'full'",
                        &n);
    CHECK_EQ_INT(n, 1);
    CHECK_NEAR(v, ndcg, 1e-12);
    db_value(h, "SELECT name FROM metrics WHERE split = 'test'", &n);
    CHECK_EQ_INT(n, 24); /* hr, ndcg, recall, mrr at 5, 10, 20: by train (the kept model) and
                            by eval */
    /* BPR-MF: one loss row per epoch, valid rows at epochs 2 and 4 with protocol full */
    rlab_result_free(run(h, "train bprmf data=tiny epochs=4 eval_every=2 dim=4", RLAB_OK, NULL));
    db_value(h, "SELECT step FROM metrics WHERE name = 'loss' AND split = 'train'", &n);
    CHECK_EQ_INT(n, 4);
    v = db_value(h,
                 "SELECT count(*) FROM metrics WHERE split = 'valid' AND name = 'ndcg@10' AND "
                 "protocol = 'full' AND step IN (2, 4)",
                 &n);
    CHECK_NEAR(v, 2, 0);
    rlab_host_free(h);
}

/* ---- bl.demo and bl.real: the comparison ---------------------------------------------- */

typedef struct figures {
    double hr, ndcg, secs;
} figures;

static figures train_eval(rlab_host *h, const char *data, const char *model, const char *extra)
{
    char line[256];
    snprintf(line, sizeof line, "train %s data=%s %s", model, data, extra);
    rlab_result *res = run(h, line, RLAB_OK, NULL);
    figures f = {.secs = scalar(res, "seconds")};
    rlab_result_free(res);
    snprintf(line, sizeof line, "eval model=%s data=%s split=test", model, data);
    res = run(h, line, RLAB_OK, NULL);
    f.hr = scalar(res, "test.hr@10");
    f.ndcg = scalar(res, "test.ndcg@10");
    rlab_result_free(res);
    fprintf(stderr, "%s %-8s test (full, LOO)  HR@10 %.4f  NDCG@10 %.4f  train %.2f s\n", data,
            model, f.hr, f.ndcg, f.secs);
    return f;
}

static void compare(rlab_host *h, const char *data, const char *bpr_extra)
{
    figures pop = train_eval(h, data, "pop", "");
    figures knn = train_eval(h, data, "itemknn", "");
    figures bpr = train_eval(h, data, "bprmf", bpr_extra);
    CHECK_MSG(knn.hr > pop.hr && knn.ndcg > pop.ndcg, "ItemKNN (%.4f/%.4f) <= Pop (%.4f/%.4f)",
              knn.hr, knn.ndcg, pop.hr, pop.ndcg);
    CHECK_MSG(bpr.hr > pop.hr && bpr.ndcg > pop.ndcg, "BPR-MF (%.4f/%.4f) <= Pop (%.4f/%.4f)",
              bpr.hr, bpr.ndcg, pop.hr, pop.ndcg);
}

static void t_demo(void)
{
    rlab_host *h = new_host();
    add_demo(h);
    compare(h, "demo", "epochs=10");
    rlab_host_free(h);
}

static void t_ml100k(void)
{
    const char *dir = rlab_test_data_dir();
    if (!dir)
        rlab_test_skip("RECLAB_DATA not set");
    char path[512];
    snprintf(path, sizeof path, "%s/movielens-100k/u.data", dir);
    rlab_err err = {0};
    rlab_dataset *ds = NULL;
    if (rlab_data_load(path, NULL, "ml-100k", &ds, &err) != RLAB_OK)
        rlab_test_skip(err.msg);
    CHECK_EQ_INT(rlab_vocab_size(&ds->users), 943);
    CHECK_EQ_INT(rlab_vocab_size(&ds->items), 1682);
    rlab_host *h = new_host();
    add_ds(h, ds);
    compare(h, "ml-100k", "");
    rlab_host_free(h);
}

static void t_beauty(void)
{
    const char *dir = rlab_test_data_dir();
    if (!dir)
        rlab_test_skip("RECLAB_DATA not set");
    char path[512];
    snprintf(path, sizeof path, "%s/amazon-beauty/Beauty.sasrec.txt", dir);
    rlab_err err = {0};
    rlab_dataset *ds = NULL;
    if (rlab_data_load(path, "sasrec", "beauty", &ds, &err) != RLAB_OK)
        rlab_test_skip(err.msg);
    rlab_host *h = new_host();
    add_ds(h, ds);
    figures pop = train_eval(h, "beauty", "pop", "");
    figures knn = train_eval(h, "beauty", "itemknn", "");
    CHECK_MSG(knn.ndcg > pop.ndcg, "ItemKNN %.4f <= Pop %.4f", knn.ndcg, pop.ndcg);
    CHECK_MSG(knn.secs < 5.0, "ItemKNN took %.2f s on Beauty", knn.secs);
    rlab_host_free(h);
}

static const rlab_test tests[] = {
    {"bl.load.1", t_load},
    {"bl.args.1", t_args},
    {"bl.pop.1", t_pop_scores},
    {"bl.pop.2", t_pop_test},
    {"bl.pop.3", t_pop_valid},
    {"bl.pop.4", t_pop_cold},
    {"bl.knn.1", t_knn},
    {"bl.bpr.1", t_bpr_hand},
    {"bl.bpr.2", t_bpr_train},
    {"bl.eval.1", t_eval_mismatch},
    {"bl.save.1", t_save},
    {"bl.cancel.1", t_cancel},
    {"bl.store.1", t_store},
    {"bl.demo.1", t_demo},
    {"bldata.ml100k", t_ml100k},
    {"bldata.beauty", t_beauty},
    {NULL, NULL},
};

int main(int argc, char **argv) { return rlab_test_main(argc, argv, tests); }
