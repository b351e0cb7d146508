/*
 * tests/semid/test_semid.c: the semid plugin (semantic-ID tokenizers).
 *
 * Test organization:
 *   semid.kmeans.*  Lloyd and OneRec's balanced assignment from given centres, by hand;
 *                   balanced cluster sizes ceil(N/K) with the tail
 *   semid.rkmeans.* residual k-means on a 2-D set with a hand-known answer
 *   semid.dedup.*   de-duplication digits by hand, every (tuple, digit) unique
 *   semid.stats.*   utilisation / entropy / perplexity / collision against a hand computation
 *   semid.rqvae.*   on a synthetic set: training loss falls and the reconstruction error of
 *                   a longer run is lower (the core loop driven directly)
 *   semid.host.*    through the host: train the three kinds, semid.stats equals the hand
 *                   functions, semid.export (CSV and table), rlab_model_state, save/load
 *   semiddata.*     ($RECLAB_DATA) ML-100K and Beauty: the kinds train and IDs are unique
 *
 * No new tensor op is added by the plugin (RQ-VAE is built from matmul, add, relu, sub, mul,
 * sum_all, scale and rvq, each gradient-checked in tests/tensor*), so there is no grad.* here.
 */
#include "harness_host.h"
#include "data/content.h"
#include "data/loaders.h"
#include "host/host.h"
#include "semid.h"
#include "tensor/checkpoint.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define PDIR RLAB_SEMID_PLUGIN_DIR

/* ---- k-means by hand -------------------------------------------------------------------- */

static void t_kmeans_lloyd(void)
{
    /* 1-D {0,1,2,3,10,11} from centres {0,10}: {0,1,2,3} -> 1.5, {10,11} -> 10.5 */
    const float X[6] = {0, 1, 2, 3, 10, 11};
    float C[2] = {0, 10};
    int32_t a[6];
    int it = semid_kmeans_run(X, 6, 1, 2, 10, 0, C, a);
    CHECK(it >= 1 && it <= 3);
    static const int32_t want[6] = {0, 0, 0, 0, 1, 1};
    for (int i = 0; i < 6; i++)
        CHECK_EQ_INT(a[i], want[i]);
    CHECK_NEAR(C[0], 1.5, 1e-6);
    CHECK_NEAR(C[1], 10.5, 1e-6);
}

static void t_kmeans_balanced(void)
{
    /* same set, w = 3. Iteration 1: cluster 0 takes the 3 nearest to 0 -> {0,1,2}, centre 1;
     * cluster 1 takes what is left {3,10,11}, centre 8. Iteration 2 (distances to 1 and 8):
     * cluster 0 -> {1, 0, 2} (0 and 2 tie at distance 1: lower index first), centre 1;
     * cluster 1 -> {3, 10, 11}, centre 8: no change, stop. */
    const float X[6] = {0, 1, 2, 3, 10, 11};
    float C[2] = {0, 10};
    int32_t a[6];
    int it = semid_kmeans_run(X, 6, 1, 2, 10, 1, C, a);
    CHECK_EQ_INT(it, 2);
    static const int32_t want[6] = {0, 0, 0, 1, 1, 1};
    for (int i = 0; i < 6; i++)
        CHECK_EQ_INT(a[i], want[i]);
    CHECK_NEAR(C[0], 1.0, 1e-6);
    CHECK_NEAR(C[1], 8.0, 1e-6);
}

static void t_kmeans_tail(void)
{
    /* N = 10, K = 4: w = 3, sizes 3, 3, 3, 1 whatever the data */
    float X[20];
    for (int i = 0; i < 20; i++)
        X[i] = (float)((i * 7919) % 13) / 13.0f;
    float C[8];
    rlab_rng rng;
    rlab_rng_seed(&rng, 5);
    semid_kmeans_pp(X, 10, 2, 4, &rng, C);
    int32_t a[10];
    CHECK(semid_kmeans_run(X, 10, 2, 4, 20, 1, C, a) >= 1);
    int cnt[4] = {0};
    for (int i = 0; i < 10; i++) {
        CHECK(a[i] >= 0 && a[i] < 4);
        cnt[a[i]]++;
    }
    CHECK_EQ_INT(cnt[0], 3);
    CHECK_EQ_INT(cnt[1], 3);
    CHECK_EQ_INT(cnt[2], 3);
    CHECK_EQ_INT(cnt[3], 1);
}

static void t_rkmeans(void)
{
    /* (0,0) (0,1) (1000,0) (1000,1): level 1 splits on x (centres (0,.5), (1000,.5)), level 2
     * splits the residuals (0,-.5) / (0,.5); after 2 levels the reconstruction is exact */
    const float X[8] = {0, 0, 0, 1, 1000, 0, 1000, 1};
    float C[2 * 2 * 2];
    int32_t codes[4 * 3];
    double recon[2];
    rlab_rng rng;
    rlab_rng_seed(&rng, 1);
    rlab_err err = {0};
    CHECK(semid_rkmeans(X, 4, 2, 2, 2, 10, 0, &rng, C, codes, 3, recon, NULL, NULL, &err) == 0);
    CHECK(codes[0 * 3] == codes[1 * 3] && codes[2 * 3] == codes[3 * 3]);
    CHECK(codes[0 * 3] != codes[2 * 3]);
    CHECK(codes[0 * 3 + 1] == codes[2 * 3 + 1] && codes[1 * 3 + 1] == codes[3 * 3 + 1]);
    CHECK(codes[0 * 3 + 1] != codes[1 * 3 + 1]);
    CHECK_NEAR(recon[0], 0.25, 1e-6); /* each row is 0.5 off in y */
    CHECK_NEAR(recon[1], 0.0, 1e-6);
    const float *c0 = C + codes[0] * 2;
    CHECK_NEAR(c0[0], 0.0, 1e-6);
    CHECK_NEAR(c0[1], 0.5, 1e-6);
}

/* ---- dedup and stats ------------------------------------------------------------------- */

static void t_dedup(void)
{
    /* tuples (1,2) (1,2) (0,0) (1,2) (0,0) (3,1) -> digits 0 1 0 2 1 0 */
    int32_t c[6 * 3] = {1, 2, 9, 1, 2, 9, 0, 0, 9, 1, 2, 9, 0, 0, 9, 3, 1, 9};
    CHECK_EQ_INT(semid_dedup(c, 6, 2), 2);
    static const int32_t want[6] = {0, 1, 0, 2, 1, 0};
    for (int i = 0; i < 6; i++)
        CHECK_EQ_INT(c[i * 3 + 2], want[i]);
    for (int i = 0; i < 6; i++)
        for (int j = i + 1; j < 6; j++)
            CHECK(memcmp(c + i * 3, c + j * 3, 3 * sizeof(int32_t)) != 0);
}

static void t_stats(void)
{
    /* codes (0,0) (0,1) (1,0) (0,0), K = 4.
     * level 1: codes {0: 3, 1: 1}: used 2, util .5, H = -(.75 ln .75 + .25 ln .25) = .562335;
     *          prefixes {0, 1}: collision 1 - 2/4 = .5, largest group 3
     * level 2: codes {0: 3, 1: 1}: same H; prefixes {00, 01, 10}: collision .25, largest 2 */
    const int32_t c[4 * 3] = {0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 1};
    semid_level_stats s[2];
    rlab_err err = {0};
    CHECK(semid_stats(c, 4, 3, 2, 4, s, &err) == 0);
    const double H = -(0.75 * log(0.75) + 0.25 * log(0.25));
    CHECK_EQ_INT(s[0].used, 2);
    CHECK_NEAR(s[0].util, 0.5, 1e-12);
    CHECK_NEAR(s[0].entropy, H, 1e-12);
    CHECK_NEAR(s[0].perplexity, exp(H), 1e-12);
    CHECK_NEAR(s[0].collision, 0.5, 1e-12);
    CHECK_EQ_INT(s[0].max_bucket, 3);
    CHECK_EQ_INT(s[1].used, 2);
    CHECK_NEAR(s[1].entropy, H, 1e-12);
    CHECK_NEAR(s[1].collision, 0.25, 1e-12);
    CHECK_EQ_INT(s[1].max_bucket, 2);
}

/* ---- a synthetic dataset with item attributes ------------------------------------------ */

/* n_items items in 8 groups; item i has attributes {g, 8 + (i % 5), 13 + (i % 3)} with
 * g = i % 8 (built through the "item2attributes" buffer loader), and n_users users with 6
 * interactions each, mostly in one group. */
static rlab_dataset *synth(const char *name, int n_items, int n_users)
{
    size_t cap = (size_t)n_items * 48 + 16;
    char *js = malloc(cap);
    size_t o = 0;
    o += (size_t)snprintf(js + o, cap - o, "{");
    for (int i = 0; i < n_items; i++)
        o += (size_t)snprintf(js + o, cap - o, "%s\"%d\": [%d, %d, %d]", i ? ", " : "", i + 1,
                              i % 8, 8 + i % 5, 13 + i % 3);
    o += (size_t)snprintf(js + o, cap - o, "}");
    rlab_dataset *ds = NULL;
    rlab_err err = {0};
    CHECK_MSG(rlab_data_load_buffer(js, o, "item2attributes", name, &ds, &err) == RLAB_OK,
              "item2attributes: %s", err.msg);
    free(js);
    if (!ds)
        return NULL;
    CHECK_EQ_INT(rlab_vocab_size(&ds->items), n_items);
    rlab_rng rng;
    rlab_rng_seed(&rng, 3);
    for (int u = 0; u < n_users; u++) {
        char b[16];
        snprintf(b, sizeof b, "u%d", u);
        int32_t uu = rlab_vocab_add(&ds->users, b, strlen(b));
        int g = u % 8;
        for (int t = 0; t < 6; t++) {
            int32_t it = (int32_t)(rlab_rng_below(&rng, (uint64_t)(n_items / 8)) * 8 + (uint64_t)g);
            if (t == 5)
                it = (int32_t)rlab_rng_below(&rng, (uint64_t)n_items);
            CHECK(rlab_inter_push(&ds->inter, uu, it, t, 1.0f, NULL) == 0);
        }
    }
    ds->inter.flags = RLAB_INTER_HAS_TS;
    return ds;
}

/* ---- rq-vae on the core loop ------------------------------------------------------------ */

typedef struct {
    double loss[64], align[64];
    int n;
} losses;

static int on_metric(void *ud, int64_t step, const char *split, const char *name,
                     const char *protocol, double value)
{
    (void)protocol;
    losses *l = ud;
    if (!strcmp(split, "train") && !strcmp(name, "loss") && step >= 1 && step <= 64)
        l->loss[step - 1] = value, l->n = (int)step;
    if (!strcmp(split, "train") && !strcmp(name, "align") && step >= 1 && step <= 64)
        l->align[step - 1] = value;
    return RLAB_OK;
}

/* Train RQ-VAE for `epochs` on ds; the final model's last-level reconstruction error. */
static double rq_train(rlab_dataset *ds, int epochs, losses *ls)
{
    rlab_err err = {0};
    rlab_view_opts vo = rlab_view_defaults();
    vo.split = RLAB_SPLIT_NONE;
    rlab_view *v = NULL;
    CHECK(rlab_view_new(ds, &vo, &v, &err) == RLAB_OK);
    semid_cfg c = {.levels = 2,
                   .codes = 8,
                   .iters = 10,
                   .tok_dim = 32,
                   .text_dim = 0,
                   .text_weight = 0.5f,
                   .hidden = 32,
                   .latent = 8,
                   .batch = 64,
                   .lr = 3e-3,
                   .beta = 0.25f,
                   .restart = 1};
    rlab_fit_opts o = {.epochs = epochs, .eval_every = 0, .seed = 7, .split = RLAB_SPLIT_NONE};
    rlab_fit fit = {.view = v,
                    .cfg = &c,
                    .opts = &o,
                    .kind = "rqvae",
                    .data = ds,
                    .ud = ls,
                    .metric = on_metric};
    rlab_fit_result res;
    rlab_model *m = rlab_fit_run(&semid_rqvae_fit, &fit, &res, &err);
    CHECK_MSG(m != NULL, "rqvae: %s", err.msg);
    double r = NAN;
    if (m) {
        const semid_tok *t = semid_tok_of(m);
        CHECK(t != NULL);
        r = t ? (double)t->recon[t->L - 1] : (double)NAN;
        /* the de-duplicated tuples are unique */
        int32_t *pid = malloc((size_t)t->n_items * 3 * sizeof *pid);
        CHECK(semid_prefix_ids(t->codes, t->n_items, 3, 3, pid, &err) == 0);
        int32_t mx = 0;
        for (int32_t i = 0; i < t->n_items; i++)
            mx = pid[i * 3 + 2] > mx ? pid[i * 3 + 2] : mx;
        CHECK_EQ_INT(mx + 1, t->n_items);
        free(pid);
        rlab_model_release(m);
    }
    rlab_view_free(v);
    return r;
}

static void t_rqvae(void)
{
    rlab_dataset *ds = synth("syn", 240, 40);
    losses a = {0}, b = {0};
    double r1 = rq_train(ds, 1, &a);
    double r40 = rq_train(ds, 40, &b);
    CHECK_EQ_INT(b.n, 40);
    CHECK_MSG(b.loss[39] < 0.75 * b.loss[0], "loss %g -> %g: expected to fall by a quarter",
              b.loss[0], b.loss[39]);
    CHECK_MSG(r40 < r1, "reconstruction %g after 1 epoch, %g after 40: expected to fall", r1, r40);
    /* the same seed gives the same run */
    losses c = {0};
    double r40b = rq_train(ds, 40, &c);
    CHECK(memcmp(&r40b, &r40, sizeof r40) == 0);
    CHECK(memcmp(&c.loss[39], &b.loss[39], sizeof(double)) == 0);
    rlab_dataset_free(ds);
}

/* ---- through the host ------------------------------------------------------------------- */

static rlab_host *new_host(void) { return rlab_test_host(PDIR, "reclab_semid.so"); }

static void add_ds(rlab_host *h, rlab_dataset *ds)
{
    rlab_err err = {0};
    CHECK_MSG(rlab_host_add_dataset(h, ds, &err) == RLAB_OK, "add dataset: %s", err.msg);
}

/* The codes of a registered model through the plugin-API accessor. */
static int32_t *codes_of(rlab_host *h, const char *name, int64_t sh[2])
{
    rlab_model *m = rlab_models_get(rlab_host_models(h), name);
    CHECK_MSG(m != NULL, "model %s", name);
    rlab_err err = {0};
    rlab_ckpt *ck = rlab_model_state(m, &err);
    CHECK_MSG(ck != NULL, "state: %s", err.msg);
    int nd = 0;
    int64_t s[8];
    const int32_t *c = ck ? rlab_ckpt_tensor(ck, "semid.codes", RLAB_DT_I32, &nd, s, &err) : NULL;
    CHECK_MSG(c != NULL && nd == 2, "semid.codes: %s", err.msg);
    int32_t *copy = NULL;
    if (c) {
        copy = malloc((size_t)(s[0] * s[1]) * sizeof *copy);
        memcpy(copy, c, (size_t)(s[0] * s[1]) * sizeof *copy);
        sh[0] = s[0];
        sh[1] = s[1];
    }
    rlab_ckpt_free(ck);
    rlab_model_release(m);
    return copy;
}

static void t_host(void)
{
    rlab_host *h = new_host();
    add_ds(h, synth("syn", 240, 40));
    static const char *const lines[] = {
        "train rkmeans data=syn levels=2 codes=8 tok_dim=32 text_dim=0",
        "train brkmeans data=syn levels=2 codes=8 tok_dim=32 text_dim=0",
        "train rqvae data=syn levels=2 codes=8 tok_dim=32 text_dim=0 epochs=5 hidden=16 latent=8"};
    static const char *const names[] = {"rkmeans", "brkmeans", "rqvae"};
    for (int k = 0; k < 3; k++) {
        rlab_result *r = rlab_test_run(h, lines[k], RLAB_OK, NULL);
        CHECK(rlab_test_scalar(r, "test.hr@10") >= 0.0); /* the content recommender ranks */
        rlab_result_free(r);
        int64_t sh[2];
        int32_t *c = codes_of(h, names[k], sh);
        CHECK_EQ_INT(sh[0], 240);
        CHECK_EQ_INT(sh[1], 3);
        /* semid.stats equals the hand functions on the stored codes */
        semid_level_stats st[2];
        rlab_err err = {0};
        CHECK(semid_stats(c, 240, 3, 2, 8, st, &err) == 0);
        char line[700];
        snprintf(line, sizeof line, "semid.stats model=%s", names[k]);
        r = rlab_test_run(h, line, RLAB_OK, NULL);
        const rlab_table *tb = r && r->ntables ? r->tables[0] : NULL;
        CHECK(tb && tb->nrows == 2 && tb->ncols == 8);
        for (int l = 0; tb && l < 2; l++) {
            const rlab_cell *row = tb->cells + l * tb->ncols;
            CHECK_EQ_INT(row[0].i, l + 1);
            CHECK_EQ_INT(row[1].i, st[l].used);
            CHECK_NEAR(row[2].f, st[l].util, 1e-12);
            CHECK_NEAR(row[3].f, st[l].entropy, 1e-12);
            CHECK_NEAR(row[5].f, st[l].collision, 1e-12);
            CHECK(row[7].f >= 0.0);
        }
        if (k == 1) /* balanced: 240 / 8 = 30 items per first-level code: entropy ln 8 */
            CHECK_NEAR(st[0].entropy, log(8.0), 1e-9);
        rlab_result_free(r);
        /* export: CSV rows and the table agree with the state */
        char path[512];
        snprintf(path, sizeof path, "%s/%s.csv", rlab_test_tmpdir(), names[k]);
        snprintf(line, sizeof line, "semid.export model=%s file=%s", names[k], path);
        rlab_result_free(rlab_test_run(h, line, RLAB_OK, NULL));
        FILE *fp = fopen(path, "r");
        CHECK(fp != NULL);
        char buf[128];
        int nl = 0;
        while (fp && fgets(buf, sizeof buf, fp)) {
            if (nl == 0)
                CHECK_STR(buf, "item,l1,l2,dedup\n");
            else if (nl == 1) {
                char want[64];
                snprintf(want, sizeof want, "1,%d,%d,%d\n", c[0], c[1], c[2]);
                CHECK_STR(buf, want);
            }
            nl++;
        }
        if (fp)
            fclose(fp);
        CHECK_EQ_INT(nl, 241);
        snprintf(line, sizeof line, "semid.export model=%s", names[k]);
        r = rlab_test_run(h, line, RLAB_OK, NULL);
        tb = r && r->ntables ? r->tables[0] : NULL;
        CHECK(tb && tb->nrows == 240 && tb->ncols == 5);
        if (tb)
            CHECK(tb->cells[5 * 7 + 2].i == c[7 * 3] && tb->cells[5 * 7 + 4].i == c[7 * 3 + 2]);
        rlab_result_free(r);
        /* save -> load keeps the IDs */
        char *saved = NULL;
        CHECK_MSG(rlab_host_save_model(h, names[k], rlab_test_tmpdir(), &saved, &err) == 0,
                  "save: %s", err.msg);
        char copy[32];
        snprintf(copy, sizeof copy, "%s_copy", names[k]);
        CHECK_MSG(rlab_host_load_model(h, copy, saved, NULL, &err) == 0, "load: %s", err.msg);
        rlab_free(saved);
        int64_t sh2[2];
        int32_t *c2 = codes_of(h, copy, sh2);
        CHECK(c2 && memcmp(c, c2, 240 * 3 * sizeof *c) == 0);
        free(c2);
        free(c);
    }
    /* a model of another plugin kind is refused by the commands */
    rlab_result_free(rlab_test_run(h, "semid.stats model=nosuch", RLAB_ENOTFOUND, NULL));
    rlab_host_free(h);
}

static void t_host_nofeat(void)
{
    /* a dataset without item features: a clear error */
    rlab_host *h = new_host();
    rlab_err err = {0};
    rlab_dataset *ds = rlab_dataset_new("bare", &err);
    for (int u = 0; u < 4; u++)
        for (int i = 0; i < 4; i++) {
            char b[8];
            snprintf(b, sizeof b, "u%d", u);
            rlab_vocab_add(&ds->users, b, strlen(b));
            snprintf(b, sizeof b, "i%d", i);
            rlab_vocab_add(&ds->items, b, strlen(b));
            rlab_inter_push(&ds->inter, u, i, i, 1.0f, NULL);
        }
    add_ds(h, ds);
    rlab_result_free(rlab_test_run(
        h, "train rkmeans data=bare codes=2", RLAB_EINVAL,
        "train rkmeans: dataset 'bare' has no item features to build content vectors from "
        "(token lists such as genres or attributes, or titles)"));
    rlab_host_free(h);
}

/* ---- DAS ------------------------------------------------------------------------------- */

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[1024];
    int k = snprintf(path, sizeof path, "%s/%s", dir, name);
    CHECK(k > 0 && (size_t)k < sizeof path);
    if (k <= 0 || (size_t)k >= sizeof path)
        return; /* the path would be cut: never write to the wrong file */
    FILE *fp = fopen(path, "w");
    CHECK(fp != NULL);
    if (fp) {
        fputs(text, fp);
        fclose(fp);
    }
}

/* User content vectors by hand: ML-100K files with two users (ages 20 and 40 -> z-scores -1
 * and +1; genders M and F), three items; user 1 rated items 1 and 2, user 2 item 3. */
static void t_user_content(void)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/ucontent", rlab_test_tmpdir());
    mkdir(dir, 0700);
    write_file(dir, "u.data", "1\t1\t5\t100\n1\t2\t3\t101\n2\t3\t4\t102\n");
    write_file(dir, "u.item",
               "1|A (1995)|01-Jan-1995||x|0|1|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
               "2|B (1995)|01-Jan-1995||x|0|0|1|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
               "3|C (1995)|01-Jan-1995||x|0|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0\n");
    write_file(dir, "u.user", "1|20|M|student|11111\n2|40|F|writer|22222\n");
    rlab_dataset *ds = NULL;
    rlab_err err = {0};
    CHECK_MSG(rlab_load_ml100k(dir, "uc", &ds, &err) == 0, "load: %s", err.msg);
    if (!ds)
        return;
    rlab_view_opts vo = rlab_view_defaults();
    vo.split = RLAB_SPLIT_NONE;
    rlab_view *v = NULL;
    CHECK(rlab_view_new(ds, &vo, &v, &err) == RLAB_OK);
    /* items: one-hot genres only (no text): x1 = e_0, x2 = e_1, x3 = (e_0 + e_1) / sqrt 2 */
    rlab_content_opts co = rlab_content_defaults();
    co.text_dim = 0;
    float *X = NULL, *U = NULL;
    int32_t D = 0, DU = 0;
    CHECK(rlab_item_content(ds, &co, &X, &D, &err) == 0);
    /* the history block: user 1 = mean(x1, x2) normalised = (1, 1) / sqrt 2; user 2 had item 3 */
    CHECK_MSG(semid_user_content(ds, "age,gender", &v->train, X, D, &U, &DU, &err) == 0, "%s",
              err.msg);
    CHECK_EQ_INT(DU, 3 + D);
    const double r2 = 1.0 / sqrt(2.0);
    /* demographics: [age z-score, M, F] normalised: user 1 (-1, 1, 0)/sqrt 2, user 2 (1, 0, 1)/sqrt
     * 2 */
    CHECK_NEAR(U[0], -r2, 1e-6);
    CHECK_NEAR(U[1], r2, 1e-6);
    CHECK_NEAR(U[2], 0.0, 1e-6);
    CHECK_NEAR(U[DU + 0], r2, 1e-6);
    CHECK_NEAR(U[DU + 1], 0.0, 1e-6);
    CHECK_NEAR(U[DU + 2], r2, 1e-6);
    /* x1 and x2 are orthogonal unit vectors: their normalised mean is (x1 + x2) / sqrt 2 */
    CHECK_NEAR(X[0] * X[D] + X[1] * X[D + 1], 0.0, 1e-9);
    for (int d = 0; d < D; d++) {
        CHECK_NEAR(U[3 + d], (double)(X[d] + X[D + d]) * r2, 1e-6);
        CHECK_NEAR(U[DU + 3 + d], X[2 * D + d], 1e-6); /* one item: its (unit) vector */
    }
    rlab_free(U);
    /* automatic columns: age (number), gender, occupation and zip (categories of <= 64
     * values): 1 + 2 + 2 + 2 */
    CHECK(semid_user_content(ds, "", &v->train, X, D, &U, &DU, &err) == 0);
    CHECK_EQ_INT(DU, 7 + D);
    rlab_free(U);
    rlab_free(X);
    rlab_view_free(v);
    rlab_dataset_free(ds);
}

/* The state tensors of a DAS model: item codes [n_items, L + 1], user codes [n_users, L + 1]. */
static void das_codes(rlab_host *h, const char *name, int32_t **ic, int32_t **uc, int64_t *ni,
                      int64_t *nu)
{
    rlab_model *m = rlab_models_get(rlab_host_models(h), name);
    CHECK_MSG(m != NULL, "model %s", name);
    if (!m)
        return;
    rlab_err err = {0};
    rlab_ckpt *ck = rlab_model_state(m, &err);
    int nd = 0;
    int64_t s[8];
    const int32_t *c = rlab_ckpt_tensor(ck, "semid.codes", RLAB_DT_I32, &nd, s, &err);
    CHECK(c && nd == 2);
    *ni = s[0];
    *ic = malloc((size_t)(s[0] * s[1]) * sizeof **ic);
    memcpy(*ic, c, (size_t)(s[0] * s[1]) * sizeof **ic);
    c = rlab_ckpt_tensor(ck, "semid.user_codes", RLAB_DT_I32, &nd, s, &err);
    CHECK_MSG(c && nd == 2, "semid.user_codes: %s", err.msg);
    *nu = s[0];
    *uc = malloc((size_t)(s[0] * s[1]) * sizeof **uc);
    memcpy(*uc, c, (size_t)(s[0] * s[1]) * sizeof **uc);
    rlab_ckpt_free(ck);
    rlab_model_release(m);
}

static int64_t n_unique(const int32_t *codes, int64_t n, int L)
{
    int32_t *pid = malloc((size_t)(n * L) * sizeof *pid);
    rlab_err err = {0};
    CHECK(semid_prefix_ids(codes, n, L, L, pid, &err) == 0);
    int32_t mx = 0;
    for (int64_t i = 0; i < n; i++)
        mx = pid[i * L + L - 1] > mx ? pid[i * L + L - 1] : mx;
    free(pid);
    return mx + 1;
}

/* DAS through the host: the three alignment modes train, item and user IDs are unique,
 * save / load keeps both, bad views are refused. */
static void t_das_host(void)
{
    rlab_host *h = new_host();
    add_ds(h, synth("syn", 240, 40));
    static const char *const modes[] = {"joint", "two-stage", "none"};
    for (int k = 0; k < 3; k++) {
        char line[400], name[32];
        snprintf(name, sizeof name, "das_%d", k);
        snprintf(line, sizeof line,
                 "train das data=syn name=%s align=%s levels=2 codes=8 tok_dim=32 text_dim=0 "
                 "epochs=4 cf_epochs=2 hidden=16 latent=8 batch=32 steps=6 seed=5",
                 name, modes[k]);
        rlab_result *r = rlab_test_run(h, line, RLAB_OK, NULL);
        CHECK(rlab_test_scalar(r, "test.hr@10") >= 0.0);
        rlab_result_free(r);
        int32_t *ic = NULL, *uc = NULL;
        int64_t ni = 0, nu = 0;
        das_codes(h, name, &ic, &uc, &ni, &nu);
        CHECK_EQ_INT(ni, 240);
        CHECK_EQ_INT(nu, 40);
        CHECK_EQ_INT(n_unique(ic, ni, 3), 240);
        CHECK_EQ_INT(n_unique(uc, nu, 3), 40);
        /* save -> load keeps both */
        rlab_err err = {0};
        char *saved = NULL;
        CHECK_MSG(rlab_host_save_model(h, name, rlab_test_tmpdir(), &saved, &err) == 0, "save: %s",
                  err.msg);
        char copy[40];
        snprintf(copy, sizeof copy, "%s_copy", name);
        CHECK_MSG(rlab_host_load_model(h, copy, saved, NULL, &err) == 0, "load: %s", err.msg);
        rlab_free(saved);
        int32_t *ic2 = NULL, *uc2 = NULL;
        int64_t ni2 = 0, nu2 = 0;
        das_codes(h, copy, &ic2, &uc2, &ni2, &nu2);
        CHECK(ic2 && ni2 == ni && memcmp(ic, ic2, (size_t)ni * 3 * sizeof *ic) == 0);
        CHECK(uc2 && nu2 == nu && memcmp(uc, uc2, (size_t)nu * 3 * sizeof *uc) == 0);
        free(ic);
        free(uc);
        free(ic2);
        free(uc2);
    }
    rlab_result_free(rlab_test_run(h, "train das data=syn codes=8 views=17", RLAB_EINVAL,
                                   "train das: views='17': expected digits 1-6 (the six "
                                   "alignments)"));
    rlab_host_free(h);
}

/* The objective learns (the core loop driven directly, metrics per epoch): over 30 epochs the
 * joint loss and its alignment part fall, align=none has no alignment part, and the same
 * seed gives the same run. */
static void das_train(rlab_dataset *ds, int align, losses *ls)
{
    rlab_err err = {0};
    rlab_view_opts vo = rlab_view_defaults();
    rlab_view *v = NULL;
    CHECK(rlab_view_new(ds, &vo, &v, &err) == RLAB_OK);
    semid_cfg c = {.levels = 2,
                   .codes = 8,
                   .iters = 10,
                   .tok_dim = 32,
                   .text_dim = 0,
                   .text_weight = 0.5f,
                   .hidden = 32,
                   .latent = 8,
                   .batch = 32,
                   .lr = 3e-3,
                   .beta = 0.25f,
                   .restart = 1,
                   .align = align,
                   .alpha = 1,
                   .align_beta = 0.5f,
                   .temp = 0.1f,
                   .w_unbiased = 1,
                   .w_pop = 1,
                   .w_orth = 1,
                   .steps = 4,
                   .views = "123456"};
    rlab_fit_opts o = {.epochs = 30, .eval_every = 0, .seed = 7};
    rlab_fit fit = {
        .view = v, .cfg = &c, .opts = &o, .kind = "das", .data = ds, .ud = ls, .metric = on_metric};
    rlab_fit_result res;
    rlab_model *m = rlab_fit_run(&semid_das_fit, &fit, &res, &err);
    CHECK_MSG(m != NULL, "das: %s", err.msg);
    rlab_model_release(m);
    rlab_view_free(v);
}

static void t_das_learns(void)
{
    rlab_dataset *ds = synth("syn", 240, 40);
    losses a = {0}, b = {0};
    das_train(ds, SEMID_ALIGN_JOINT, &a);
    CHECK_EQ_INT(a.n, 30);
    CHECK_MSG(a.loss[29] < 0.8 * a.loss[0], "loss %g -> %g: expected to fall by a fifth", a.loss[0],
              a.loss[29]);
    /* 6 symmetric views of 32 rows start near 6 ln 32 = 20.8 */
    CHECK_MSG(a.align[0] > 10.0 && a.align[29] < 0.8 * a.align[0],
              "align %g -> %g: expected to fall by a fifth", a.align[0], a.align[29]);
    das_train(ds, SEMID_ALIGN_JOINT, &b);
    CHECK(memcmp(a.loss, b.loss, sizeof a.loss) == 0);
    losses c = {0};
    das_train(ds, SEMID_ALIGN_NONE, &c);
    CHECK_EQ_INT(c.n, 30);
    for (int e = 0; e < 30; e++)
        CHECK_NEAR(c.align[e], 0.0, 0.0);
    rlab_dataset_free(ds);
}

/* ---- downstream: semid.ctr and seqrec's semid= ------------------------------------------ */

/* semid.ctr on the synthetic data (no ratings: one sampled negative per positive): two AUCs
 * in [0, 1] over the held-out rows (2 x (valid + test targets)), the same again with the same
 * seed, DAS adds its user codes. */
static void t_ctr(void)
{
    rlab_host *h = new_host();
    add_ds(h, synth("syn", 240, 40));
    rlab_result_free(rlab_test_run(
        h, "train brkmeans data=syn levels=2 codes=8 tok_dim=32 text_dim=0", RLAB_OK, NULL));
    rlab_result *r = rlab_test_run(h, "semid.ctr model=brkmeans epochs=3", RLAB_OK, NULL);
    const double a0 = rlab_test_scalar(r, "auc.id"), a1 = rlab_test_scalar(r, "auc.sid");
    CHECK_MSG(a0 >= 0 && a0 <= 1 && a1 >= 0 && a1 <= 1, "auc %g %g", a0, a1);
    CHECK_NEAR(rlab_test_scalar(r, "rows"), 2 * 2 * 40, 0); /* every user has 6 items */
    CHECK(r && r->ntables == 1 && r->tables[0]->nrows == 2);
    if (r && r->ntables)
        CHECK_STR(r->tables[0]->cells[5].s, "id+sid(item)");
    CHECK(r && r->nlines >= 1);
    if (r && r->nlines)
        CHECK_STR_CONTAINS(r->lines[0], "sampled negatives 1:1");
    rlab_result *r2 = rlab_test_run(h, "semid.ctr model=brkmeans epochs=3", RLAB_OK, NULL);
    CHECK_NEAR(rlab_test_scalar(r2, "auc.sid"), a1, 0.0);
    rlab_result_free(r);
    rlab_result_free(r2);
    /* DAS: the user codes are features too */
    rlab_result_free(rlab_test_run(h,
                                   "train das data=syn levels=2 codes=8 tok_dim=32 text_dim=0 "
                                   "epochs=2 hidden=16 latent=8 batch=32 steps=4",
                                   RLAB_OK, NULL));
    r = rlab_test_run(h, "semid.ctr model=das epochs=3", RLAB_OK, NULL);
    if (r && r->ntables)
        CHECK_STR(r->tables[0]->cells[5].s, "id+sid(item,user)");
    rlab_result_free(r);
    rlab_result_free(rlab_test_run(h, "semid.ctr model=nosuch", RLAB_ENOTFOUND, NULL));
    rlab_host_free(h);
}

/* SASRec with semantic-ID embeddings: semid=<tokenizer> adds a [L K, d] table, the codes
 * come through rlab_model_state, save / load gives the same scores, and bad names fail. */
static void t_seqrec_semid(void)
{
    static const char *const load[] = {"reclab_semid.so", "reclab_seqrec.so", NULL};
    rlab_host *h = rlab_test_host_v(PDIR, load);
    add_ds(h, synth("syn", 240, 40));
    rlab_result_free(rlab_test_run(
        h, "train brkmeans data=syn levels=2 codes=8 tok_dim=32 text_dim=0", RLAB_OK, NULL));
    rlab_result *r = rlab_test_run(h,
                                   "train sasrec data=syn name=s1 semid=brkmeans epochs=2 dim=16 "
                                   "blocks=1 maxlen=8 batch=16 eval_every=0",
                                   RLAB_OK, NULL);
    CHECK(rlab_test_scalar(r, "test.hr@10") >= 0.0);
    rlab_result_free(r);
    rlab_model *m = rlab_models_get(rlab_host_models(h), "s1");
    CHECK(m != NULL);
    rlab_err err = {0};
    rlab_ckpt *ck = m ? rlab_model_state(m, &err) : NULL;
    int nd = 0;
    int64_t sh[8];
    CHECK(ck && rlab_ckpt_tensor(ck, "sid_emb", RLAB_DT_F32, &nd, sh, &err) != NULL);
    CHECK(nd == 2 && sh[0] == 2 * 8 && sh[1] == 16);
    rlab_ckpt_free(ck);
    /* save -> load: the same scores */
    char *saved = NULL;
    CHECK_MSG(rlab_host_save_model(h, "s1", rlab_test_tmpdir(), &saved, &err) == 0, "save: %s",
              err.msg);
    CHECK_MSG(rlab_host_load_model(h, "s1_copy", saved, NULL, &err) == 0, "load: %s", err.msg);
    rlab_free(saved);
    rlab_model *m2 = rlab_models_get(rlab_host_models(h), "s1_copy");
    const int32_t hist[3] = {3, 11, 19};
    rlab_query q = {.user = 0, .hist = hist, .n_hist = 3};
    float *a = malloc(240 * sizeof *a), *b = malloc(240 * sizeof *b);
    CHECK(m && m2 && rlab_model_score_all(m, &q, 1, a, &err) == 0 &&
          rlab_model_score_all(m2, &q, 1, b, &err) == 0);
    CHECK(memcmp(a, b, 240 * sizeof *a) == 0);
    free(a);
    free(b);
    rlab_model_release(m);
    rlab_model_release(m2);
    rlab_result_free(rlab_test_run(h, "train sasrec data=syn semid=nosuch epochs=1 dim=16",
                                   RLAB_ENOTFOUND, "train sasrec: semid=nosuch: no such model"));
    rlab_result_free(rlab_test_run(
        h, "train sasrec data=syn semid=s1 epochs=1 dim=16", RLAB_EINVAL,
        "train sasrec: semid=s1: a sasrec model has no semantic IDs (tensor semid.codes)"));
    rlab_host_free(h);
}

/* semid.encode: the trained tokenizers re-encode their own items from content to the codes
 * they store (RQ-VAE and DAS: the same encoder and nearest codes; residual k-means with
 * enough iterations to converge: the centres are the means of the final assignment), and a
 * dataset without item features is refused. */
static void t_encode(void)
{
    rlab_host *h = new_host();
    add_ds(h, synth("syn", 240, 40));
    static const char *const lines[] = {
        "train rkmeans data=syn levels=2 codes=8 tok_dim=32 text_dim=0 iters=200",
        "train rqvae data=syn levels=2 codes=8 tok_dim=32 text_dim=0 epochs=5 hidden=16 latent=8",
        "train das data=syn levels=2 codes=8 tok_dim=32 text_dim=0 epochs=2 hidden=16 latent=8 "
        "batch=32 steps=4"};
    static const char *const names[] = {"rkmeans", "rqvae", "das"};
    for (int k = 0; k < 3; k++) {
        rlab_result_free(rlab_test_run(h, lines[k], RLAB_OK, NULL));
        int64_t sh[2];
        int32_t *c = codes_of(h, names[k], sh);
        char line[128];
        snprintf(line, sizeof line, "semid.encode model=%s data=syn", names[k]);
        rlab_result *r = rlab_test_run(h, line, RLAB_OK, NULL);
        const rlab_table *tb = r && r->ntables ? r->tables[0] : NULL;
        CHECK(tb && tb->nrows == 240 && tb->ncols == 4);
        int same = 0;
        for (int i = 0; tb && c && i < 240; i++)
            same += tb->cells[i * 4 + 1].i == c[i * 3] && tb->cells[i * 4 + 2].i == c[i * 3 + 1];
        CHECK_MSG(same == 240, "%s: %d of 240 items re-encoded to their codes", names[k], same);
        CHECK(rlab_test_scalar(r, "items_per_second") > 0);
        rlab_result_free(r);
        free(c);
    }
    rlab_err err = {0};
    rlab_dataset *ds = rlab_dataset_new("bare", &err);
    rlab_vocab_add(&ds->users, "u", 1);
    rlab_vocab_add(&ds->items, "i", 1);
    rlab_inter_push(&ds->inter, 0, 0, 0, 1.0f, NULL);
    add_ds(h, ds);
    rlab_result_free(rlab_test_run(h, "semid.encode model=rqvae data=bare", RLAB_EINVAL,
                                   "semid.encode: dataset 'bare' has no item features to build "
                                   "content vectors from (token lists such as genres or "
                                   "attributes, or titles)"));
    rlab_host_free(h);
}

/* ---- real data -------------------------------------------------------------------------- */

static void real(const char *rel, const char *name, int codes)
{
    const char *dir = rlab_test_data_dir();
    if (!dir) {
        rlab_test_skip("RECLAB_DATA not set");
        return;
    }
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    rlab_dataset *ds = NULL;
    rlab_err err = {0};
    CHECK_MSG(rlab_data_load(path, NULL, name, &ds, &err) == 0, "%s: %s", path, err.msg);
    if (!ds)
        return;
    rlab_host *h = new_host();
    add_ds(h, ds);
    char line[160];
    snprintf(line, sizeof line, "train brkmeans data=%s codes=%d", name, codes);
    rlab_result_free(rlab_test_run(h, line, RLAB_OK, NULL));
    int64_t sh[2];
    int32_t *c = codes_of(h, "brkmeans", sh);
    int32_t *pid = malloc((size_t)(sh[0] * 4) * sizeof *pid);
    CHECK(semid_prefix_ids(c, sh[0], 4, 4, pid, &err) == 0);
    int32_t mx = 0;
    for (int64_t i = 0; i < sh[0]; i++)
        mx = pid[i * 4 + 3] > mx ? pid[i * 4 + 3] : mx;
    CHECK_EQ_INT(mx + 1, sh[0]); /* unique after de-duplication */
    free(pid);
    free(c);
    rlab_host_free(h);
}

static void t_ml100k(void) { real("movielens-100k", "ml100k", 32); }
static void t_beauty(void) { real("amazon-beauty/Beauty.txt", "beauty", 64); }

static const rlab_test tests[] = {{"semid.kmeans.1", t_kmeans_lloyd},
                                  {"semid.kmeans.2", t_kmeans_balanced},
                                  {"semid.kmeans.3", t_kmeans_tail},
                                  {"semid.rkmeans.1", t_rkmeans},
                                  {"semid.dedup.1", t_dedup},
                                  {"semid.stats.1", t_stats},
                                  {"semid.rqvae.1", t_rqvae},
                                  {"semid.host.1", t_host},
                                  {"semid.host.2", t_host_nofeat},
                                  {"semid.das.1", t_user_content},
                                  {"semid.das.2", t_das_host},
                                  {"semid.das.3", t_das_learns},
                                  {"semid.down.1", t_ctr},
                                  {"semid.down.2", t_seqrec_semid},
                                  {"semid.encode.1", t_encode},
                                  {"semiddata.ml100k", t_ml100k},
                                  {"semiddata.beauty", t_beauty},
                                  {NULL, NULL}};

int main(int argc, char **argv) { return rlab_test_main(argc, argv, tests); }
