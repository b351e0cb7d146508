/*
 * core/data/tabular: the column mapping, the delimited loader on tiny buffers (vocabulary
 * and hashed ids, multi-valued fields, labels by value), bad inputs naming file and line,
 * samples from ratings, the synthetic world, splits; the presets on $RECLAB_DATA/ctr.
 */
#include "data/loaders.h"
#include "data/tabular.h"
#include "harness.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static rlab_tabular *load_buf(const char *text, const rlab_tab_spec *sp, rlab_err *err)
{
    rlab_tabular *t = NULL;
    int rc = rlab_tabular_load_buffer(text, strlen(text), sp, "t.csv", &t, err);
    if (rc)
        return NULL;
    return t;
}

static void t_map(void)
{
    rlab_tab_spec sp;
    rlab_err err = {0};
    rlab_tab_spec_init(&sp);
    CHECK_EQ_INT(
        rlab_tab_spec_map(&sp, " y:label:=yes , c*:cat:hash=7, #3-#4:num, tags:multi:sep=;", &err),
        RLAB_OK);
    CHECK_EQ_INT(sp.nmap, 4);
    CHECK_STR(sp.map[0].positive, "yes");
    CHECK_EQ_INT(sp.map[1].hash, 7);
    CHECK_EQ_INT(sp.map[2].first, 3);
    CHECK_EQ_INT(sp.map[2].last, 4);
    CHECK_STR(sp.map[3].sep, ";");
    CHECK_EQ_INT(rlab_tab_spec_map(&sp, "x:weird", &err), RLAB_EINVAL);
    CHECK_STR_CONTAINS(err.msg, "unknown role 'weird'");
    CHECK_EQ_INT(rlab_tab_spec_map(&sp, "x:num:hash=3", &err), RLAB_EINVAL);
    CHECK_STR_CONTAINS(err.msg, "does not apply");
    CHECK_EQ_INT(rlab_tab_spec_map(&sp, "x", &err), RLAB_EINVAL);
    CHECK_EQ_INT(rlab_tab_spec_map(&sp, "#5-#2:num", &err), RLAB_EINVAL);
    CHECK_EQ_INT(rlab_tab_spec_map(&sp, "x:cat:hash=0", &err), RLAB_EINVAL);
}

static void t_load(void)
{
    rlab_tab_spec sp;
    rlab_err err = {0};
    rlab_tab_spec_init(&sp);
    CHECK_EQ_INT(rlab_tab_spec_map(&sp,
                                   "click:label, buy:label:=yes, uid:group, ts:time, "
                                   "tags:multi, hist:seq:sep=;, n*:num, h:cat:hash=5, *:cat",
                                   &err),
                 RLAB_OK);
    const char *csv = "uid,click,buy,ts,city,tags,hist,n1,h\n"
                      "u1,1, yes ,100, paris ,a|b,3;4;5,0.5,zz\n"
                      "\n"
                      "u2,0,no,90,rome,,,,zz\r\n"
                      "u1,0.0,yes,95,paris,b,4,-2,\n";
    rlab_tabular *t = load_buf(csv, &sp, &err);
    CHECK_MSG(t != NULL, "%s", err.msg);
    if (!t)
        return;
    CHECK_EQ_INT(t->n, 3);
    CHECK_EQ_INT(t->nlabels, 2);
    CHECK_STR(t->label_names[0], "click");
    CHECK_STR(t->label_names[1], "buy");
    /* labels: numeric nonzero -> 1; by value (trimmed) */
    CHECK(t->labels[0] > 0.5f && t->labels[1] > 0.5f);
    CHECK(t->labels[2] < 0.5f && t->labels[3] < 0.5f);
    CHECK(t->labels[4] < 0.5f && t->labels[5] > 0.5f);
    /* groups and time */
    CHECK(t->group != NULL && t->time != NULL);
    CHECK_EQ_INT(t->group[0], 0);
    CHECK_EQ_INT(t->group[1], 1);
    CHECK_EQ_INT(t->group[2], 0);
    CHECK_EQ_INT(t->time[1], 90);
    /* fields: uid (group as cat), city, tags, hist, h */
    int fc = rlab_tabular_field(t, "city"), ft = rlab_tabular_field(t, "tags"),
        fh = rlab_tabular_field(t, "hist"), fx = rlab_tabular_field(t, "h"),
        fu = rlab_tabular_field(t, "uid");
    CHECK(fc >= 0 && ft >= 0 && fh >= 0 && fx >= 0 && fu >= 0);
    CHECK_EQ_INT(t->nfields, 5);
    CHECK_EQ_INT(t->fields[fc].ids[0], 1); /* " paris " trimmed */
    CHECK_EQ_INT(t->fields[fc].ids[1], 2);
    CHECK_EQ_INT(t->fields[fc].ids[2], 1);
    CHECK_EQ_INT(t->fields[fc].card, 3);
    CHECK_EQ_INT(t->fields[fu].ids[2], 1);
    /* multi: a|b ; empty ; b */
    CHECK_EQ_INT(t->fields[ft].off[1], 2);
    CHECK_EQ_INT(t->fields[ft].off[2], 2);
    CHECK_EQ_INT(t->fields[ft].off[3], 3);
    CHECK_EQ_INT(t->fields[ft].ids[2], t->fields[ft].ids[1]);
    CHECK_EQ_INT(t->fields[fh].off[1], 3);
    CHECK_EQ_INT(t->fields[fh].role, RLAB_TAB_SEQ);
    /* hashed: same value same id, in 1..5, empty -> 0 */
    CHECK_EQ_INT(t->fields[fx].card, 6);
    CHECK(t->fields[fx].ids[0] >= 1 && t->fields[fx].ids[0] <= 5);
    CHECK_EQ_INT(t->fields[fx].ids[1], t->fields[fx].ids[0]);
    CHECK_EQ_INT(t->fields[fx].ids[2], 0);
    /* numeric, empty -> NAN */
    CHECK_EQ_INT(t->nnum, 1);
    CHECK_NEAR(t->num[0], 0.5, 1e-6);
    CHECK(isnan(t->num[1]));
    CHECK_NEAR(t->num[2], -2.0, 1e-6);
    CHECK_NEAR(rlab_tabular_pos_rate(t, 1), 2.0 / 3.0, 1e-9);
    rlab_tabular_free(t);
}

static void t_headerless(void)
{
    /* a cut trailing field is read as empty with min_fields */
    static const char *const names[] = {"y", "a", "b", "c", NULL};
    rlab_tab_spec sp;
    rlab_err err = {0};
    rlab_tab_spec_init(&sp);
    sp.sep = "\t";
    sp.header = 0;
    sp.min_fields = 2;
    sp.names = names;
    CHECK_EQ_INT(rlab_tab_spec_map(&sp, "#0:label, a:num, *:cat", &err), RLAB_OK);
    rlab_tabular *t = load_buf("1\t3\tx\n0\t4\n1\t\tx\ty\n", &sp, &err);
    CHECK_MSG(t != NULL, "%s", err.msg);
    if (!t)
        return;
    CHECK_EQ_INT(t->n, 3);
    CHECK_EQ_INT(t->nfields, 2);
    CHECK_EQ_INT(t->fields[0].ids[1], 0);
    CHECK_EQ_INT(t->fields[1].ids[2], 1);
    CHECK(isnan(t->num[2]));
    rlab_tabular_free(t);
}

static void expect_bad(const char *text, const rlab_tab_spec *sp, const char *needle)
{
    rlab_err err = {0};
    rlab_tabular *t = NULL;
    int rc = rlab_tabular_load_buffer(text, strlen(text), sp, "bad.csv", &t, &err);
    CHECK_MSG(rc != RLAB_OK, "accepted: %s", text);
    CHECK(t == NULL);
    CHECK_STR_CONTAINS(err.msg, needle);
    CHECK_STR_CONTAINS(err.msg, "bad.csv");
}

static void t_bad(void)
{
    rlab_tab_spec sp;
    rlab_err err = {0};
    rlab_tab_spec_init(&sp);
    CHECK_EQ_INT(rlab_tab_spec_map(&sp, "y:label, x:num, ts:time, *:cat", &err), RLAB_OK);
    expect_bad("y,x,ts,c\n1,2,3\n", &sp, "bad.csv:2: expected 4 comma-separated fields");
    expect_bad("y,x,ts,c\n1,2,3,a\n1,2,3,a,b\n", &sp, "bad.csv:3:");
    expect_bad("y,x,ts,c\nyes,2,3,a\n", &sp, "bad.csv:2: label 'y' (column 1) is 'yes'");
    expect_bad("y,x,ts,c\n1,2,3,a\n0,abc,3,a\n", &sp, "bad.csv:3: numeric column 'x'");
    expect_bad("y,x,ts,c\n1,2,later,a\n", &sp, "bad.csv:2: time column 'ts'");
    expect_bad("y,x,ts,c\n,2,3,a\n", &sp, "bad.csv:2: label");
    expect_bad("", &sp, "empty file");
    expect_bad("y,x,ts,c\n", &sp, "no samples");
    expect_bad("x,ts,c\n2,3,a\n", &sp, "no column named 'y'");
    rlab_tab_spec sp2;
    rlab_tab_spec_init(&sp2);
    CHECK_EQ_INT(rlab_tab_spec_map(&sp2, "a:cat", &err), RLAB_OK);
    expect_bad("a,b\n1,2\n", &sp2, "no label column");
    rlab_tab_spec_init(&sp2);
    sp2.header = 0;
    CHECK_EQ_INT(rlab_tab_spec_map(&sp2, "#0:label, #7:num", &err), RLAB_OK);
    expect_bad("1,2\n", &sp2, "field #7 is past the 2 fields");
    /* a file that does not exist */
    rlab_tabular *t = NULL;
    CHECK_EQ_INT(rlab_tabular_load("/nonexistent/x.csv", &sp, NULL, &t, &err), RLAB_EIO);
    CHECK_STR_CONTAINS(err.msg, "/nonexistent/x.csv");
    CHECK_EQ_INT(rlab_tabular_load_preset("nope", "x", NULL, &t, &err), RLAB_EINVAL);
    CHECK_STR_CONTAINS(err.msg, "census");
}

static void t_ratings(void)
{
    /* 2 users, 4 items; user 1 rates items 10 (5 stars, t=1), 11 (2 stars, t=2) */
    const char *udata = "1\t10\t5\t1\n1\t11\t2\t2\n2\t12\t4\t5\n2\t13\t1\t3\n";
    rlab_err err = {0};
    rlab_dataset *ds = NULL;
    CHECK_EQ_INT(rlab_data_load_buffer(udata, strlen(udata), "ml-100k-data", "u.data", &ds, &err),
                 RLAB_OK);
    if (!ds)
        return;
    rlab_tab_mt_opts o;
    rlab_tab_mt_opts_init(&o);
    o.negatives = 1;
    o.seed = 3;
    rlab_tabular *t = NULL;
    CHECK_EQ_INT(rlab_tabular_from_ratings(ds, &o, &t, &err), RLAB_OK);
    if (!t) {
        rlab_dataset_free(ds);
        return;
    }
    CHECK_EQ_INT(t->n, 8);
    CHECK_EQ_INT(t->nlabels, 2);
    int fi = rlab_tabular_field(t, "item"), fh = rlab_tabular_field(t, "history");
    CHECK(fi >= 0 && fh >= 0);
    CHECK_EQ_INT(t->fields[fh].shares, fi);
    /* user 1 (dense 0): rows 0 (pos, item 10, like), 1 (neg), 2 (pos item 11, no like), 3 */
    CHECK(t->labels[0] > 0.5f && t->labels[1] > 0.5f);
    CHECK(t->labels[2] < 0.5f && t->labels[3] < 0.5f);
    CHECK(t->labels[4] > 0.5f && t->labels[5] < 0.5f);
    CHECK_EQ_INT(t->fields[fi].ids[0], 1);
    CHECK_EQ_INT(t->fields[fi].ids[2], 2);
    /* the negatives are items the user never rated */
    CHECK(t->fields[fi].ids[1] >= 3);
    /* history: empty before the first rating, [item 10] before the second */
    CHECK_EQ_INT(t->fields[fh].off[1] - t->fields[fh].off[0], 0);
    CHECK_EQ_INT(t->fields[fh].off[3] - t->fields[fh].off[2], 1);
    CHECK_EQ_INT(t->fields[fh].ids[t->fields[fh].off[2]], 1);
    /* user 2 (dense 1): time order puts item 13 (t=3) before item 12 (t=5) */
    CHECK_EQ_INT(t->fields[fi].ids[4], 4);
    CHECK_EQ_INT(t->group[4], 1);
    CHECK_EQ_INT(t->time[4], 3);
    rlab_tabular_free(t);
    /* no ratings: refused */
    rlab_dataset *s = NULL;
    const char *sas = "1 2\n1 3\n";
    CHECK_EQ_INT(rlab_data_load_buffer(sas, strlen(sas), "sasrec", "s.txt", &s, &err), RLAB_OK);
    if (s) {
        CHECK_EQ_INT(rlab_tabular_from_ratings(s, &o, &t, &err), RLAB_EINVAL);
        CHECK_STR_CONTAINS(err.msg, "no ratings");
        rlab_dataset_free(s);
    }
    rlab_dataset_free(ds);
}

static void t_synth_split(void)
{
    rlab_err err = {0};
    rlab_tabular *a = NULL, *b = NULL;
    CHECK_EQ_INT(rlab_tabular_synth(2000, 6, 50, 7, &a, &err), RLAB_OK);
    CHECK_EQ_INT(rlab_tabular_synth(2000, 6, 50, 7, &b, &err), RLAB_OK);
    if (!a || !b)
        return;
    CHECK_EQ_INT(a->n, 2000);
    CHECK(memcmp(a->labels, b->labels, 2000 * 2 * sizeof(float)) == 0);
    double pc = rlab_tabular_pos_rate(a, 0), pv = rlab_tabular_pos_rate(a, 1);
    CHECK_MSG(pc > 0.1 && pc < 0.9, "click rate %g", pc);
    CHECK_MSG(pv > 0.01 && pv < pc, "conversion rate %g (click %g)", pv, pc);
    /* conversion only after a click */
    for (int64_t i = 0; i < a->n; i++)
        if (a->labels[i * 2 + 1] > 0.5f)
            CHECK(a->labels[i * 2] > 0.5f);
    int64_t *tr, *va, *te, ntr, nva, nte;
    CHECK_EQ_INT(rlab_tabular_split(a, 0.1, 0.2, 0, 1, &tr, &ntr, &va, &nva, &te, &nte, &err),
                 RLAB_OK);
    CHECK_EQ_INT(ntr + nva + nte, 2000);
    CHECK_EQ_INT(nte, 400);
    CHECK_EQ_INT(nva, 200);
    /* a permutation: every index once */
    unsigned char seen[2000] = {0};
    for (int64_t i = 0; i < ntr; i++)
        seen[tr[i]]++;
    for (int64_t i = 0; i < nva; i++)
        seen[va[i]]++;
    for (int64_t i = 0; i < nte; i++)
        seen[te[i]]++;
    int ok = 1;
    for (int i = 0; i < 2000; i++)
        ok &= seen[i] == 1;
    CHECK(ok);
    rlab_free(tr), rlab_free(va), rlab_free(te);
    CHECK_EQ_INT(rlab_tabular_split(a, 0.5, 0.5, 0, 1, &tr, &ntr, &va, &nva, &te, &nte, &err),
                 RLAB_EINVAL);
    rlab_tabular_free(a);
    rlab_tabular_free(b);
}

/* ---- real files ------------------------------------------------------------------------- */
static rlab_tabular *real(const char *preset, const char *file)
{
    const char *dir = rlab_test_data_dir();
    if (!dir) {
        rlab_test_skip("RECLAB_DATA not set: tabular presets on real files skipped");
        return NULL;
    }
    char path[1024];
    snprintf(path, sizeof path, "%s/ctr/%s", dir, file);
    rlab_err err = {0};
    rlab_tabular *t = NULL;
    int rc = rlab_tabular_load_preset(preset, path, NULL, &t, &err);
    CHECK_MSG(rc == RLAB_OK, "%s: %s", file, err.msg);
    return t;
}

static void t_real_presets(void)
{
    rlab_tabular *t = real("criteo", "criteo_dac_head999.txt");
    if (!t)
        return;
    CHECK_EQ_INT(t->n, 1000); /* 999 newlines, the last row has none */
    CHECK_EQ_INT(t->nlabels, 1);
    CHECK_EQ_INT(t->nnum, 13);
    CHECK_EQ_INT(t->nfields, 26);
    rlab_tabular_free(t);
    t = real("criteo_sample", "criteo_sample.txt");
    if (t) {
        CHECK_EQ_INT(t->n, 200);
        CHECK_EQ_INT(t->nnum, 13);
        CHECK_EQ_INT(t->nfields, 26);
        rlab_tabular_free(t);
    }
    t = real("avazu", "avazu_sample.txt");
    if (t) {
        CHECK_EQ_INT(t->n, 100);
        CHECK_EQ_INT(t->nfields, 22);
        CHECK_STR(t->label_names[0], "click");
        rlab_tabular_free(t);
    }
    t = real("census", "census-income.sample");
    if (t) {
        CHECK_EQ_INT(t->n, 200);
        CHECK_EQ_INT(t->nlabels, 2);
        CHECK_STR(t->label_names[0], "marital_stat");
        CHECK_STR(t->label_names[1], "income_50k");
        CHECK_EQ_INT(t->nnum, 11);
        CHECK_EQ_INT(t->nfields, 29);
        /* first row: married, income 50000+ */
        CHECK(t->labels[0] < 0.5f && t->labels[1] > 0.5f);
        double pm = rlab_tabular_pos_rate(t, 0), pi = rlab_tabular_pos_rate(t, 1);
        CHECK_MSG(pm > 0.05 && pm < 0.95 && pi > 0.0 && pi < 0.5, "rates %g %g", pm, pi);
        rlab_tabular_free(t);
    }
    t = real("tiny_mtl", "fuxictr_tiny_mtl_train.csv");
    if (t) {
        CHECK_EQ_INT(t->n, 100);
        CHECK_EQ_INT(t->nlabels, 2);
        CHECK(rlab_tabular_label(t, "click") >= 0 && rlab_tabular_label(t, "conversion") >= 0);
        CHECK(t->group != NULL);
        CHECK_EQ_INT(t->nfields, 17);
        CHECK_EQ_INT(t->nnum, 63);
        rlab_tabular_free(t);
    }
}

static void t_real_ml100k(void)
{
    const char *dir = rlab_test_data_dir();
    if (!dir) {
        rlab_test_skip("RECLAB_DATA not set");
        return;
    }
    char path[1024];
    snprintf(path, sizeof path, "%s/movielens-100k", dir);
    rlab_err err = {0};
    rlab_dataset *ds = NULL;
    CHECK_EQ_INT(rlab_data_load(path, NULL, NULL, &ds, &err), RLAB_OK);
    if (!ds)
        return;
    rlab_tabular *t = NULL;
    CHECK_EQ_INT(rlab_tabular_from_ratings(ds, NULL, &t, &err), RLAB_OK);
    if (t) {
        CHECK_EQ_INT(t->n, 200000);
        CHECK_NEAR(rlab_tabular_pos_rate(t, 0), 0.5, 1e-9);
        /* 55,375 of the 100,000 ratings are 4 or 5 */
        CHECK_NEAR(rlab_tabular_pos_rate(t, 1), 55375.0 / 200000.0, 1e-9);
        CHECK(rlab_tabular_field(t, "item_genres") >= 0);
        CHECK(rlab_tabular_field(t, "user_occupation") >= 0);
        rlab_tabular_free(t);
    }
    rlab_dataset_free(ds);
}

static const rlab_test tests[] = {
    {"data.tabular.map.1", t_map},
    {"data.tabular.load.1", t_load},
    {"data.tabular.headerless.1", t_headerless},
    {"data.tabular.bad.1", t_bad},
    {"data.tabular.ratings.1", t_ratings},
    {"data.tabular.synth.1", t_synth_split},
    {"data.tabular.real.1", t_real_presets},
    {"data.tabular.real.2", t_real_ml100k},
    {NULL, NULL},
};

int main(int argc, char **argv) { return rlab_test_main(argc, argv, tests); }
