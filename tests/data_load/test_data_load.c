/*
 * Unit tests of core/data loaders: tokenizer pieces, every format on tiny hand-written files,
 * every kind of bad input (message must name file, line and the expectation; *out NULL),
 * RecBole round trip, the dispatcher and the in-memory entry point.
 */
#include "harness.h"

#include "data/content.h"
#include "data/loaders.h"
#include "data/tokenizer.h"
#include "data/world.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Write content to tmpdir/name; returns the static path (valid until the next call). */
static const char *put(const char *name, const char *content)
{
    static char path[4][512];
    static int slot;
    char *p = path[slot++ & 3];
    snprintf(p, 512, "%s/%s", rlab_test_tmpdir(), name);
    FILE *fp = fopen(p, "wb");
    CHECK(fp != NULL);
    if (fp) {
        fwrite(content, 1, strlen(content), fp);
        fclose(fp);
    }
    return p;
}

static const char *mkdir_tmp(const char *name)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", rlab_test_tmpdir(), name);
    mkdir(path, 0755);
    return path;
}

/* Expect loading to fail with code; the message must contain every needle. */
#define EXPECT_FAIL(call, code, ...)                                                               \
    do {                                                                                           \
        rlab_err e_ = {0};                                                                         \
        rlab_dataset *ds_ = (rlab_dataset *)1;                                                     \
        int rc_ = call(&ds_, &e_);                                                                 \
        CHECK_EQ_INT(rc_, code);                                                                   \
        CHECK(ds_ == NULL);                                                                        \
        const char *needles_[] = {__VA_ARGS__, NULL};                                              \
        for (int k_ = 0; needles_[k_]; k_++)                                                       \
            CHECK_STR_CONTAINS(e_.msg, needles_[k_]);                                              \
        if (ds_ != NULL && ds_ != (rlab_dataset *)1)                                               \
            rlab_dataset_free(ds_);                                                                \
    } while (0)

/* ---- tokenizer ------------------------------------------------------------------------- */
static void t_split(void)
{
    rlab_field f[8];
    CHECK_EQ_INT(rlab_split_fields("a\tb\t\tc", 6, "\t", f, 8), 4);
    CHECK_EQ_INT(f[2].n, 0);
    CHECK_EQ_INT(f[3].n, 1);
    CHECK(f[3].p[0] == 'c');
    CHECK_EQ_INT(rlab_split_fields("1::2::3", 7, "::", f, 8), 3);
    CHECK_EQ_INT(f[1].n, 1);
    CHECK(f[1].p[0] == '2');
    CHECK_EQ_INT(rlab_split_fields("a:b::c:", 7, "::", f, 8), 2); /* lone ':' is data */
    CHECK_EQ_INT(f[0].n, 3);
    CHECK_EQ_INT(f[1].n, 2);
    CHECK_EQ_INT(rlab_split_fields("  1  2\t3 ", 9, NULL, f, 8), 3);
    CHECK_EQ_INT(rlab_split_fields("   ", 3, NULL, f, 8), 0);
    CHECK_EQ_INT(rlab_split_fields("a,b,c,d,e", 9, ",", f, 2), 5); /* total even past maxf */
    CHECK_EQ_INT(rlab_split_fields("", 0, ",", f, 2), 1);
    CHECK_EQ_INT(rlab_split_fields("x,", 2, ",", f, 8), 2);
    CHECK_EQ_INT(f[1].n, 0);
}

static void t_numbers(void)
{
    int32_t i;
    int64_t l;
    float x;
    CHECK_EQ_INT(rlab_parse_i32("2147483647", 10, &i), RLAB_OK);
    CHECK_EQ_INT(i, 2147483647);
    CHECK_EQ_INT(rlab_parse_i32("-2147483648", 11, &i), RLAB_OK);
    CHECK_EQ_INT(i, INT32_MIN);
    CHECK_EQ_INT(rlab_parse_i32("2147483648", 10, &i), RLAB_EINVAL);
    CHECK_EQ_INT(rlab_parse_i32("12a", 3, &i), RLAB_EFORMAT);
    CHECK_EQ_INT(rlab_parse_i32("", 0, &i), RLAB_EFORMAT);
    CHECK_EQ_INT(rlab_parse_i32("-", 1, &i), RLAB_EFORMAT);
    CHECK_EQ_INT(rlab_parse_i32(" 1", 2, &i), RLAB_EFORMAT);
    CHECK_EQ_INT(rlab_parse_i64("9223372036854775807", 19, &l), RLAB_OK);
    CHECK(l == INT64_MAX);
    CHECK_EQ_INT(rlab_parse_i64("-9223372036854775808", 20, &l), RLAB_OK);
    CHECK(l == INT64_MIN);
    CHECK_EQ_INT(rlab_parse_i64("9223372036854775808", 19, &l), RLAB_EINVAL);
    CHECK_EQ_INT(rlab_parse_i64("99999999999999999999x", 21, &l), RLAB_EFORMAT);
    CHECK_EQ_INT(rlab_parse_f32("3.5", 3, &x), RLAB_OK);
    CHECK_NEAR(x, 3.5, 0);
    CHECK_EQ_INT(rlab_parse_f32("-1e-3", 5, &x), RLAB_OK);
    CHECK_NEAR(x, -1e-3, 1e-9);
    CHECK_EQ_INT(rlab_parse_f32("1e39", 4, &x), RLAB_EINVAL);
    CHECK_EQ_INT(rlab_parse_f32("nan", 3, &x), RLAB_EFORMAT);
    CHECK_EQ_INT(rlab_parse_f32("1.0.0", 5, &x), RLAB_EFORMAT);
    CHECK_EQ_INT(rlab_parse_f32(".", 1, &x), RLAB_EFORMAT);
    CHECK_EQ_INT(rlab_parse_ts("881250949.0", 11, &l), RLAB_OK);
    CHECK(l == 881250949);
    CHECK_EQ_INT(rlab_parse_ts("1e19", 4, &l), RLAB_EINVAL);
    const char *s = "007";
    size_t n = 3;
    rlab_id_canon(&s, &n);
    CHECK_EQ_INT(n, 1);
    CHECK(s[0] == '7');
    s = "0";
    n = 1;
    rlab_id_canon(&s, &n);
    CHECK_EQ_INT(n, 1);
}

static void t_text(void)
{
    CHECK_EQ_INT(rlab_utf8_invalid_at("abc", 3), -1);
    CHECK_EQ_INT(rlab_utf8_invalid_at("Mis\xc3\xa9rables", 11), -1);
    CHECK_EQ_INT(rlab_utf8_invalid_at("Mis\xe9rables", 10), 3);       /* Latin-1 e-acute */
    CHECK_EQ_INT(rlab_utf8_invalid_at("ab\xc0\xaf", 4), 2);           /* overlong '/' */
    CHECK_EQ_INT(rlab_utf8_invalid_at("\xed\xa0\x80", 3), 0);         /* surrogate */
    CHECK_EQ_INT(rlab_utf8_invalid_at("\xf4\x90\x80\x80", 4), 0);     /* > U+10FFFF */
    CHECK_EQ_INT(rlab_utf8_invalid_at("\xf0\x9f\x98\x80", 4), -1);    /* emoji */
    CHECK_EQ_INT(rlab_utf8_invalid_at("0123456789\xe2\x82", 12), 10); /* truncated */
    char *u = rlab_latin1_to_utf8("Mis\xe9rables", 10);
    CHECK(u && strcmp(u, "Mis\xc3\xa9rables") == 0);
    rlab_free(u);
    CHECK_EQ_INT(rlab_latin1_invalid_at("caf\xe9\tx", 6), -1);
    CHECK_EQ_INT(rlab_latin1_invalid_at("a\x85", 2), 1);
    CHECK_EQ_INT(rlab_latin1_invalid_at("a\x01", 2), 1);
}

static void t_reader(void)
{
    /* CRLF, a blank line, a last line without newline, and a line longer than the block */
    size_t big = (1u << 20) + 1000;
    char *content = malloc(big + 64);
    CHECK(content != NULL);
    if (!content)
        return;
    strcpy(content, "a\r\n\r\nb\n");
    size_t off = strlen(content);
    memset(content + off, 'x', big);
    off += big;
    strcpy(content + off, "\nlast");
    char path[512];
    snprintf(path, sizeof path, "%s/reader.txt", rlab_test_tmpdir());
    FILE *fp = fopen(path, "wb");
    fwrite(content, 1, strlen(content), fp);
    fclose(fp);
    free(content);
    rlab_reader r;
    rlab_err err = {0};
    CHECK_EQ_INT(rlab_reader_open(&r, path, 0, &err), RLAB_OK);
    const char *s;
    size_t n;
    const size_t want[] = {1, 0, 1, big, 4};
    for (int k = 0; k < 5; k++) {
        CHECK_EQ_INT(rlab_reader_next(&r, &s, &n, &err), RLAB_OK);
        CHECK(s != NULL);
        CHECK_EQ_INT(n, want[k]);
        CHECK_EQ_INT(r.line, k + 1);
    }
    CHECK(memcmp(s, "last", 4) == 0);
    CHECK_EQ_INT(rlab_reader_next(&r, &s, &n, &err), RLAB_OK);
    CHECK(s == NULL);
    rlab_reader_close(&r);
    /* memory reader: NUL byte refused with line and column */
    rlab_reader_open_mem(&r, "ok\nb\0d\n", 7, "mem", 0);
    CHECK_EQ_INT(rlab_reader_next(&r, &s, &n, &err), RLAB_OK);
    CHECK_EQ_INT(rlab_reader_next(&r, &s, &n, &err), RLAB_EFORMAT);
    CHECK_STR_CONTAINS(err.msg, "mem:2:");
    CHECK_STR_CONTAINS(err.msg, "NUL byte at column 2");
    rlab_reader_close(&r);
}

/* ---- ML-100K --------------------------------------------------------------------------- */
static const char *ml_dir(void)
{
    const char *d = mkdir_tmp("ml100k");
    char p[600];
    snprintf(p, sizeof p, "ml100k/u.data");
    put(p, "196\t242\t3\t881250949\n186\t302\t3\t891717742\r\n196\t302\t5\t881250950\n"
           "22\t377\t1\t878887116");
    put("ml100k/u.item",
        "242|Kolya (1996)|24-Jan-1997||http://x|0|0|0|0|0|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
        "302|L.A. Confidential (1997)|01-Jan-1997||http://y|0|0|0|0|0|0|1|0|0|0|0|0|0|1|0|0|"
        "1|0|0\n"
        "543|Mis\xe9rables, Les (1995)|01-Jan-1995||http://z|0|0|0|0|0|0|0|0|1|0|0|0|1|0|0|0|0|"
        "0|0\n");
    put("ml100k/u.user", "196|49|M|writer|55105\n22|25|M|writer|40206\n");
    return d;
}

static void t_ml100k(void)
{
    rlab_err err = {0};
    rlab_dataset *ds = NULL;
    CHECK_EQ_INT(rlab_data_load(ml_dir(), NULL, NULL, &ds, &err), RLAB_OK);
    CHECK_MSG(ds != NULL, "%s", err.msg);
    if (!ds)
        return;
    CHECK(strcmp(ds->format, "ml-100k") == 0);
    CHECK(strcmp(ds->name, "ml100k") == 0);
    CHECK_STR_CONTAINS(ds->source, "u.data");
    CHECK_STR_CONTAINS(ds->source, "u.item");
    CHECK_EQ_INT(ds->inter.n, 4);
    CHECK_EQ_INT(rlab_vocab_size(&ds->users), 3); /* 196 186 22 */
    CHECK_EQ_INT(rlab_vocab_size(&ds->items), 4); /* 242 302 377 + 543 from u.item */
    CHECK(strcmp(rlab_vocab_name(&ds->items, 3), "543") == 0);
    CHECK_EQ_INT(ds->inter.user[2], 0);
    CHECK_EQ_INT(ds->inter.item[2], 1);
    CHECK_NEAR(ds->inter.rating[2], 5, 0);
    CHECK(ds->inter.ts[1] == 891717742);
    CHECK(ds->inter.flags & RLAB_INTER_HAS_TS);
    rlab_feat_col *title = rlab_feats_find(&ds->item_feats, "title");
    rlab_feat_col *gen = rlab_feats_find(&ds->item_feats, "genres");
    CHECK(title && gen);
    CHECK_EQ_INT(ds->item_feats.n_entities, 4);
    if (title && gen) {
        CHECK(strcmp(title->text[3], "Mis\xc3\xa9rables, Les (1995)") == 0);
        CHECK(title->text[2] == NULL); /* 377 has no u.item row */
        /* 302: Crime (flag 6), Mystery (13), Thriller (16) */
        CHECK_EQ_INT(gen->off[2] - gen->off[1], 3);
        CHECK(strcmp(gen->vocab.names[gen->seq[gen->off[1]]], "Crime") == 0);
        CHECK(strcmp(gen->vocab.names[gen->seq[gen->off[1] + 2]], "Thriller") == 0);
        CHECK_EQ_INT(gen->off[3] - gen->off[2], 0);
    }
    rlab_feat_col *age = rlab_feats_find(&ds->user_feats, "age");
    rlab_feat_col *occ = rlab_feats_find(&ds->user_feats, "occupation");
    CHECK(age && occ);
    if (age && occ) {
        CHECK_EQ_INT(ds->user_feats.n_entities, 3);
        CHECK_NEAR(age->num[2], 25, 0);
        CHECK(isnan(age->num[1])); /* 186 has no u.user row */
        CHECK(strcmp(occ->vocab.names[occ->tok[0]], "writer") == 0);
    }
    rlab_dataset_free(ds);
}

static int ld_udata(rlab_dataset **ds, rlab_err *e)
{
    return rlab_load_ml100k(put("u.data", "1\t2\t3\t4\n1\t2\t3\n"), NULL, ds, e);
}
static int ld_udata_id(rlab_dataset **ds, rlab_err *e)
{
    return rlab_load_ml100k(put("u.data", "1\t2\t3\t4\nx1\t2\t3\t4\n"), NULL, ds, e);
}
static int ld_udata_ovf(rlab_dataset **ds, rlab_err *e)
{
    return rlab_load_ml100k(put("u.data", "1\t2\t3\t4\n1\t\n3\t99999999999\t3\t4\n"), NULL, ds, e);
}
static int ld_udata_ovf2(rlab_dataset **ds, rlab_err *e)
{
    return rlab_load_ml100k(put("u.data", "\n1\t2\t3\t4\n\n3\t99999999999\t3\t4\n"), NULL, ds, e);
}
static int ld_udata_ts(rlab_dataset **ds, rlab_err *e)
{
    return rlab_load_ml100k(put("u.data", "1\t2\t3\t9223372036854775808\n"), NULL, ds, e);
}
static int ld_udata_rating(rlab_dataset **ds, rlab_err *e)
{
    return rlab_load_ml100k(put("u.data", "1\t2\tgood\t4\n"), NULL, ds, e);
}
static int ld_udata_empty(rlab_dataset **ds, rlab_err *e)
{
    return rlab_load_ml100k(put("u.data", ""), NULL, ds, e);
}
static int ld_missing(rlab_dataset **ds, rlab_err *e)
{
    return rlab_data_load("/nonexistent/reclab/u.data", NULL, NULL, ds, e);
}
static int ld_missing_sasrec(rlab_dataset **ds, rlab_err *e)
{
    return rlab_load_sasrec("/nonexistent/reclab/x.txt", NULL, ds, e);
}

static void t_ml100k_bad(void)
{
    EXPECT_FAIL(ld_udata, RLAB_EFORMAT, "u.data:2:", "expected 4 tab-separated fields", "got 3");
    EXPECT_FAIL(ld_udata_id, RLAB_EFORMAT, "u.data:2:", "user id 'x1' is not a number",
                "expected an integer");
    EXPECT_FAIL(ld_udata_ovf, RLAB_EFORMAT, "u.data:2:", "got 2");
    EXPECT_FAIL(ld_udata_ovf2, RLAB_EFORMAT, "u.data:4:", "item id '99999999999' overflows",
                "expected a 32-bit integer");
    EXPECT_FAIL(ld_udata_ts, RLAB_EFORMAT, "u.data:1:", "out of range",
                "expected a 64-bit integer");
    EXPECT_FAIL(ld_udata_rating, RLAB_EFORMAT, "u.data:1:", "rating 'good' is not a number");
    EXPECT_FAIL(ld_udata_empty, RLAB_EFORMAT, "u.data", "empty file");
    EXPECT_FAIL(ld_missing, RLAB_EIO, "/nonexistent/reclab/u.data", "cannot open");
    EXPECT_FAIL(ld_missing_sasrec, RLAB_EIO, "x.txt", "cannot open");
}

/* u.item problems: wrong field count, bad flag, control byte; the whole dataset is freed. */
static int ld_uitem(const char *item, rlab_dataset **ds, rlab_err *e)
{
    mkdir_tmp("mlbad");
    put("mlbad/u.data", "1\t2\t3\t4\n");
    put("mlbad/u.item", item);
    char p[512];
    snprintf(p, sizeof p, "%s/mlbad", rlab_test_tmpdir());
    return rlab_load_ml100k(p, NULL, ds, e);
}
static int ld_uitem_count(rlab_dataset **ds, rlab_err *e)
{
    return ld_uitem("2|T|d||u|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0\n2|T|d||u|0\n", ds, e);
}
static int ld_uitem_flag(rlab_dataset **ds, rlab_err *e)
{
    return ld_uitem("2|T|d||u|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|2|0\n", ds, e);
}
static int ld_uitem_ctrl(rlab_dataset **ds, rlab_err *e)
{
    return ld_uitem("2|T\x85x|d||u|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0\n", ds, e);
}
static int ld_uitem_dup(rlab_dataset **ds, rlab_err *e)
{
    return ld_uitem("2|T|d||u|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
                    "02|T|d||u|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0\n",
                    ds, e);
}

static void t_ml100k_item_bad(void)
{
    EXPECT_FAIL(ld_uitem_count, RLAB_EFORMAT, "u.item:2:", "expected 24 '|'-separated fields",
                "got 6");
    EXPECT_FAIL(ld_uitem_flag, RLAB_EFORMAT, "u.item:1:", "genre flag 18 is '2'",
                "expected 0 or 1");
    EXPECT_FAIL(ld_uitem_ctrl, RLAB_EFORMAT, "u.item:1:", "control byte 0x85 at column 4",
                "expected Latin-1 text");
    EXPECT_FAIL(ld_uitem_dup, RLAB_EFORMAT, "u.item:2:", "duplicate item id", "first on line 1");
}

/* ---- ML-1M ----------------------------------------------------------------------------- */
static void t_ml1m(void)
{
    const char *d = mkdir_tmp("ml1m");
    put("ml1m/movies_semicolon.dat",
        "1;Toy Story (1995);Animation|Children's|Comedy\n2;Caf\xe9 (1999);Drama\n");
    put("ml1m/users.dat", "1::F::1::10::48067\n2::M::56::16::70072\n");
    rlab_err err = {0};
    rlab_dataset *ds = NULL;
    CHECK_EQ_INT(rlab_data_load(d, NULL, "m", &ds, &err), RLAB_OK);
    CHECK_MSG(ds != NULL, "%s", err.msg);
    if (!ds)
        return;
    CHECK(strcmp(ds->format, "ml-1m") == 0);
    CHECK(strcmp(ds->name, "m") == 0);
    CHECK_EQ_INT(ds->inter.n, 0);
    CHECK_EQ_INT(rlab_vocab_size(&ds->items), 2);
    CHECK_EQ_INT(rlab_vocab_size(&ds->users), 2);
    rlab_feat_col *t = rlab_feats_find(&ds->item_feats, "title");
    rlab_feat_col *g = rlab_feats_find(&ds->item_feats, "genres");
    rlab_feat_col *a = rlab_feats_find(&ds->user_feats, "age");
    rlab_feat_col *gd = rlab_feats_find(&ds->user_feats, "gender");
    CHECK(t && g && a && gd);
    if (t && g && a && gd) {
        CHECK(strcmp(t->text[1], "Caf\xc3\xa9 (1999)") == 0);
        CHECK_EQ_INT(g->off[1], 3);
        CHECK(strcmp(g->vocab.names[g->seq[1]], "Children's") == 0);
        CHECK_NEAR(a->num[1], 56, 0);
        CHECK(strcmp(gd->vocab.names[gd->tok[0]], "F") == 0);
    }
    rlab_dataset_free(ds);
    /* the separator option: "::" forced on the semicolon file fails on its line 1 */
    rlab_ml1m_opts o = {.movies_sep = "::"};
    ds = NULL;
    CHECK_EQ_INT(rlab_load_ml1m(d, &o, NULL, &ds, &err), RLAB_EFORMAT);
    CHECK(ds == NULL);
    CHECK_STR_CONTAINS(err.msg, "movies_semicolon.dat:1:");
    CHECK_STR_CONTAINS(err.msg, "expected 3 '::'-separated fields (id title genres), got 1");
}

static int ld_users_bad(rlab_dataset **ds, rlab_err *e)
{
    return rlab_data_load_buffer("1::F::1::10::48067\n2::M::old::16::70072\n", 41, "ml-1m-users",
                                 "users.dat", ds, e);
}
static int ld_ratings_bad(rlab_dataset **ds, rlab_err *e)
{
    return rlab_data_load_buffer("1::2::5::978300760\n1::2::5\n", 27, "ml-1m-ratings",
                                 "ratings.dat", ds, e);
}

static void t_ml1m_bad(void)
{
    EXPECT_FAIL(ld_users_bad, RLAB_EFORMAT, "users.dat:2:", "age 'old' is not a number",
                "expected an integer");
    EXPECT_FAIL(ld_ratings_bad, RLAB_EFORMAT, "ratings.dat:2:", "expected 4 '::'-separated fields",
                "got 3");
}

/* ---- SASRec / seq-line ----------------------------------------------------------------- */
static void t_sasrec(void)
{
    rlab_err err = {0};
    rlab_dataset *ds = NULL;
    const char *p = put("toy.sasrec.txt", "1 10\n1 11\n2 10\n1 12\n");
    CHECK_EQ_INT(rlab_data_load(p, NULL, NULL, &ds, &err), RLAB_OK);
    CHECK_MSG(ds != NULL, "%s", err.msg);
    if (!ds)
        return;
    CHECK(strcmp(ds->format, "sasrec") == 0);
    CHECK(strcmp(ds->name, "toy.sasrec") == 0);
    CHECK_EQ_INT(ds->inter.n, 4);
    CHECK(ds->inter.flags & RLAB_INTER_SYNTH_TS);
    CHECK(ds->inter.ts[3] == 2); /* user 1's third item */
    CHECK(ds->inter.ts[2] == 0);
    CHECK_EQ_INT(rlab_vocab_size(&ds->items), 3);
    rlab_dataset_free(ds);
    /* seq-line, sniffed because a line has 3+ fields */
    p = put("Toy.txt", "1 5 6 7\n2 5\n3 8 5\n");
    CHECK_EQ_INT(rlab_data_load(p, NULL, NULL, &ds, &err), RLAB_OK);
    if (!ds)
        return;
    CHECK(strcmp(ds->format, "seqline") == 0);
    CHECK_EQ_INT(ds->inter.n, 6);
    CHECK_EQ_INT(rlab_vocab_size(&ds->users), 3);
    CHECK_EQ_INT(rlab_vocab_size(&ds->items), 4);
    CHECK_EQ_INT(ds->inter.item[5], 0); /* "5" */
    CHECK(ds->inter.ts[5] == 1);
    rlab_dataset_free(ds);
}

static int ld_sasrec_3(rlab_dataset **ds, rlab_err *e)
{
    return rlab_load_sasrec(put("s.txt", "1 2\n1 3\n1 2 3\n"), NULL, ds, e);
}
static int ld_sasrec_utf8(rlab_dataset **ds, rlab_err *e)
{
    return rlab_load_sasrec(put("s.txt", "1 2\n\xff 3\n"), NULL, ds, e);
}
static int ld_seq_one(rlab_dataset **ds, rlab_err *e)
{
    return rlab_load_seqline(put("q.txt", "1 2 3\r\n2\r\n"), NULL, ds, e);
}
static int ld_seq_item(rlab_dataset **ds, rlab_err *e)
{
    return rlab_load_seqline(put("q.txt", "1 2 3\n2 4 5x 6\n"), NULL, ds, e);
}
static int ld_seq_blank(rlab_dataset **ds, rlab_err *e)
{
    return rlab_load_seqline(put("q.txt", "\n  \n"), NULL, ds, e);
}

static void t_sasrec_bad(void)
{
    EXPECT_FAIL(ld_sasrec_3, RLAB_EFORMAT,
                "s.txt:3:", "expected 2 blank-separated fields (user item), got 3");
    EXPECT_FAIL(ld_sasrec_utf8, RLAB_EFORMAT, "s.txt:2:", "invalid UTF-8 byte 0xff at column 1");
    EXPECT_FAIL(ld_seq_one, RLAB_EFORMAT, "q.txt:2:", "expected a user followed by at least one");
    EXPECT_FAIL(ld_seq_item, RLAB_EFORMAT, "q.txt:2:", "item id '5x' is not a number");
    EXPECT_FAIL(ld_seq_blank, RLAB_EFORMAT, "q.txt", "empty file");
}

/* ---- RecBole --------------------------------------------------------------------------- */
static const char *rb_dir(void)
{
    const char *d = mkdir_tmp("toy");
    put("toy/toy.inter", "user_id:token\titem_id:token\trating:float\ttimestamp:float\t"
                         "click:float\tnote:token\n"
                         "u1\ti1\t4.5\t100\t1\tx\n"
                         "u2\ti2\t3\t90.0\t0\ty\n"
                         "u1\ti2\t\t110\t1\t\n");
    put("toy/toy.item", "item_id:token\tmovie_title:token_seq\tgenre:token_seq\tyear:float\t"
                        "brand:token\temb:float_seq\n"
                        "i2\tThe Matrix\tAction Sci-Fi\t1999\tWB\t0.1 0.2\n"
                        "i3\tCaf\xc3\xa9\t\t\t\t\n");
    put("toy/toy.user", "user_id:token\tage:float\n"
                        "u2\t30\n");
    return d;
}

static void check_toy(const rlab_dataset *ds)
{
    CHECK_EQ_INT(ds->inter.n, 3);
    CHECK_EQ_INT(rlab_vocab_size(&ds->users), 2);
    CHECK_EQ_INT(rlab_vocab_size(&ds->items), 3);
    CHECK(ds->inter.flags & RLAB_INTER_HAS_TS);
    CHECK(ds->inter.flags & RLAB_INTER_HAS_RATING);
    CHECK_NEAR(ds->inter.rating[0], 4.5, 0);
    CHECK(isnan(ds->inter.rating[2]));
    CHECK(ds->inter.ts[1] == 90);
    CHECK_EQ_INT(ds->inter.nlabels, 1);
    CHECK(strcmp(ds->inter.label_names[0], "click") == 0);
    CHECK_NEAR(ds->inter.labels[0][2], 1, 0);
    const rlab_feat_col *t = rlab_feats_find(&ds->item_feats, "movie_title");
    const rlab_feat_col *g = rlab_feats_find(&ds->item_feats, "genre");
    const rlab_feat_col *y = rlab_feats_find(&ds->item_feats, "year");
    const rlab_feat_col *b = rlab_feats_find(&ds->item_feats, "brand");
    CHECK(t && g && y && b);
    CHECK(rlab_feats_find(&ds->item_feats, "emb") == NULL); /* float_seq dropped */
    if (!(t && g && y && b))
        return;
    CHECK_EQ_INT(t->kind, RLAB_FEAT_TEXT);
    CHECK_EQ_INT(g->kind, RLAB_FEAT_TOKEN_SEQ);
    CHECK_EQ_INT(ds->item_feats.n_entities, 3);
    CHECK(strcmp(t->text[1], "The Matrix") == 0);
    CHECK(strcmp(t->text[2], "Caf\xc3\xa9") == 0);
    CHECK(t->text[0] == NULL);
    CHECK_EQ_INT(g->off[2] - g->off[1], 2);
    CHECK(strcmp(g->vocab.names[g->seq[g->off[1] + 1]], "Sci-Fi") == 0);
    CHECK_NEAR(y->num[1], 1999, 0);
    CHECK(isnan(y->num[2]));
    CHECK_EQ_INT(b->tok[2], -1);
    const rlab_feat_col *a = rlab_feats_find(&ds->user_feats, "age");
    CHECK(a != NULL);
    if (a) {
        CHECK_NEAR(a->num[1], 30, 0);
        CHECK(isnan(a->num[0]));
    }
}

static void t_recbole(void)
{
    rlab_err err = {0};
    rlab_dataset *ds = NULL;
    CHECK_EQ_INT(rlab_data_load(rb_dir(), NULL, NULL, &ds, &err), RLAB_OK);
    CHECK_MSG(ds != NULL, "%s", err.msg);
    if (!ds)
        return;
    CHECK(strcmp(ds->format, "recbole") == 0);
    CHECK_STR_CONTAINS(ds->source, "toy.item");
    check_toy(ds);
    /* round trip through the writer */
    const char *out = mkdir_tmp("toy_out");
    CHECK_EQ_INT(rlab_write_recbole(ds, out, "toy_out", &err), RLAB_OK);
    rlab_dataset *back = NULL;
    CHECK_EQ_INT(rlab_load_recbole(out, NULL, &back, &err), RLAB_OK);
    CHECK_MSG(back != NULL, "%s", err.msg);
    if (back) {
        check_toy(back);
        for (int32_t i = 0; i < ds->items.n; i++)
            CHECK(strcmp(ds->items.names[i], back->items.names[i]) == 0);
        for (size_t i = 0; i < ds->inter.n; i++) {
            CHECK_EQ_INT(back->inter.user[i], ds->inter.user[i]);
            CHECK_EQ_INT(back->inter.item[i], ds->inter.item[i]);
            CHECK(back->inter.ts[i] == ds->inter.ts[i]);
        }
    }
    rlab_dataset_free(back);
    rlab_dataset_free(ds);
}

static int ld_rb(const char *content, rlab_dataset **ds, rlab_err *e)
{
    return rlab_load_recbole(put("bad.inter", content), NULL, ds, e);
}
static int ld_rb_type(rlab_dataset **ds, rlab_err *e)
{
    return ld_rb("user_id:token\titem_id:token\tprice:double\n", ds, e);
}
static int ld_rb_notype(rlab_dataset **ds, rlab_err *e)
{
    return ld_rb("user_id:token\titem_id\n", ds, e);
}
static int ld_rb_count(rlab_dataset **ds, rlab_err *e)
{
    return ld_rb("user_id:token\titem_id:token\trating:float\nu\ti\t1\nu\ti\n", ds, e);
}
static int ld_rb_float(rlab_dataset **ds, rlab_err *e)
{
    return ld_rb("user_id:token\titem_id:token\trating:float\nu\ti\tfive\n", ds, e);
}
static int ld_rb_ts(rlab_dataset **ds, rlab_err *e)
{
    return ld_rb("user_id:token\titem_id:token\ttimestamp:float\nu\ti\t1e30\n", ds, e);
}
static int ld_rb_utf8(rlab_dataset **ds, rlab_err *e)
{
    return ld_rb("user_id:token\titem_id:token\nu\ti\nu\t\xc3\x28\n", ds, e);
}
static int ld_rb_nouser(rlab_dataset **ds, rlab_err *e)
{
    return ld_rb("uid:token\titem_id:token\nu\ti\n", ds, e);
}
static int ld_rb_empty(rlab_dataset **ds, rlab_err *e) { return ld_rb("", ds, e); }
static int ld_rb_header_only(rlab_dataset **ds, rlab_err *e)
{
    return ld_rb("user_id:token\titem_id:token\n", ds, e);
}
static int ld_rb_item(rlab_dataset **ds, rlab_err *e)
{
    mkdir_tmp("rbi");
    put("rbi/rbi.inter", "user_id:token\titem_id:token\nu\ti\n");
    put("rbi/rbi.item", "item_id:token\tyear:float\ni\t1999\nj\tlate\n");
    char p[512];
    snprintf(p, sizeof p, "%s/rbi", rlab_test_tmpdir());
    return rlab_load_recbole(p, NULL, ds, e);
}

static void t_recbole_bad(void)
{
    EXPECT_FAIL(ld_rb_type, RLAB_EFORMAT, "bad.inter:1:", "unknown type", "'price:double'",
                "expected token, token_seq, float or float_seq");
    EXPECT_FAIL(ld_rb_notype, RLAB_EFORMAT, "bad.inter:1:", "'item_id' is not name:type");
    EXPECT_FAIL(ld_rb_count, RLAB_EFORMAT,
                "bad.inter:3:", "expected 3 tab-separated fields (as in the header), got 2");
    EXPECT_FAIL(ld_rb_float, RLAB_EFORMAT, "bad.inter:2:", "column rating: 'five' is not a",
                "expected a float");
    EXPECT_FAIL(ld_rb_ts, RLAB_EFORMAT, "bad.inter:2:", "timestamp '1e30' is out of range");
    EXPECT_FAIL(ld_rb_utf8, RLAB_EFORMAT, "bad.inter:3:", "invalid UTF-8 byte 0xc3 at column 3");
    EXPECT_FAIL(ld_rb_nouser, RLAB_EFORMAT, "bad.inter:1:", "header lacks user_id");
    EXPECT_FAIL(ld_rb_empty, RLAB_EFORMAT, "bad.inter", "empty file");
    EXPECT_FAIL(ld_rb_header_only, RLAB_EFORMAT, "bad.inter", "no interactions");
    EXPECT_FAIL(ld_rb_item, RLAB_EFORMAT, "rbi.item:3:", "column year: 'late' is not a");
}

/* ---- CSV ------------------------------------------------------------------------------- */
static void t_csv(void)
{
    rlab_err err = {0};
    rlab_dataset *ds = NULL;
    const char *p = put("x.csv", "id,userId,movieId,rating,timestamp,click\n"
                                 "1,7,\"A, the \"\"movie\"\"\",4.0,1000,1\n"
                                 "2,8,B,,999,0\n");
    CHECK_EQ_INT(rlab_data_load(p, NULL, NULL, &ds, &err), RLAB_OK); /* guessed by name */
    CHECK_MSG(ds != NULL, "%s", err.msg);
    if (ds) {
        CHECK(strcmp(ds->format, "csv") == 0);
        CHECK_EQ_INT(ds->inter.n, 2);
        CHECK(strcmp(ds->items.names[0], "A, the \"movie\"") == 0);
        CHECK(ds->inter.ts[1] == 999);
        CHECK(isnan(ds->inter.rating[1]));
        rlab_dataset_free(ds);
    }
    rlab_csv_opts o;
    rlab_csv_opts_init(&o);
    o.header = 1;
    o.user_name = "userId";
    o.item_name = "movieId";
    o.nlabels = 1;
    o.label_names[0] = "click";
    CHECK_EQ_INT(rlab_load_csv(p, &o, "c", &ds, &err), RLAB_OK);
    if (ds) {
        CHECK(ds->inter.flags & RLAB_INTER_SYNTH_TS);
        CHECK(strcmp(ds->inter.label_names[0], "click") == 0);
        CHECK_NEAR(ds->inter.labels[0][0], 1, 0);
        CHECK_NEAR(ds->inter.labels[0][1], 0, 0);
        rlab_dataset_free(ds);
    }
    /* TSV, no header, "::" separator */
    rlab_csv_opts_init(&o);
    o.sep = "::";
    o.header = 0;
    o.quoted = 0;
    o.ts_col = 2;
    CHECK_EQ_INT(rlab_load_csv(put("y.dat", "a::b::5\nc::b::6\n"), &o, NULL, &ds, &err), RLAB_OK);
    if (ds) {
        CHECK_EQ_INT(rlab_vocab_size(&ds->items), 1);
        CHECK(ds->inter.ts[1] == 6);
        rlab_dataset_free(ds);
    }
}

static int ld_csv_cols(rlab_dataset **ds, rlab_err *e)
{
    return rlab_load_csv(put("z.csv", "u,i\n1,2\n1,2,3\n"), NULL, NULL, ds, e);
}
static int ld_csv_quote(rlab_dataset **ds, rlab_err *e)
{
    return rlab_load_csv(put("z.csv", "u,i\n1,\"2\n"), NULL, NULL, ds, e);
}
static int ld_csv_name(rlab_dataset **ds, rlab_err *e)
{
    rlab_csv_opts o;
    rlab_csv_opts_init(&o);
    o.ts_name = "when";
    return rlab_load_csv(put("z.csv", "u,i\n1,2\n"), &o, NULL, ds, e);
}
static int ld_csv_ts(rlab_dataset **ds, rlab_err *e)
{
    rlab_csv_opts o;
    rlab_csv_opts_init(&o);
    o.ts_col = 2;
    return rlab_load_csv(put("z.csv", "u,i,t\n1,2,3\n1,2,soon\n"), &o, NULL, ds, e);
}

static void t_csv_bad(void)
{
    EXPECT_FAIL(ld_csv_cols, RLAB_EFORMAT, "z.csv:3:", "expected 2 comma-separated fields, got 3");
    EXPECT_FAIL(ld_csv_quote, RLAB_EFORMAT, "z.csv:2:", "bad quoting at column 3");
    EXPECT_FAIL(ld_csv_name, RLAB_EFORMAT, "z.csv:1:", "no column named 'when'");
    EXPECT_FAIL(ld_csv_ts, RLAB_EFORMAT, "z.csv:3:", "column 3: 'soon' is not a number",
                "expected a timestamp");
}

/* ---- dialogues ------------------------------------------------------------------------- */
static void t_redial(void)
{
    const char *p =
        put("r.jsonl",
            "{\"movieMentions\": {\"111\": \"Super Troopers (2001)\", \"222\": \"Caf\\u00e9\"}, "
            "\"messages\": [{\"timeOffset\": 0, \"text\": \"Hi, like @111?\", \"senderWorkerId\": "
            "5, \"messageId\": 1}, {\"timeOffset\": 9, \"text\": \"Try @222 or @111 and @333\", "
            "\"senderWorkerId\": 6, \"messageId\": 2}], \"conversationId\": \"20001\", "
            "\"respondentWorkerId\": 6, \"initiatorWorkerId\": 5}\n"
            "{\"movieMentions\": [], \"messages\": [], \"conversationId\": 7, "
            "\"respondentWorkerId\": 1, \"initiatorWorkerId\": 2}\n");
    rlab_err err = {0};
    rlab_dialogues *d = NULL;
    CHECK_EQ_INT(rlab_dialogues_load(p, NULL, &d, &err), RLAB_OK);
    CHECK_MSG(d != NULL, "%s", err.msg);
    if (!d)
        return;
    CHECK_EQ_INT(d->n, 2);
    CHECK(strcmp(d->convs[0].id, "20001") == 0);
    CHECK(strcmp(d->convs[1].id, "7") == 0);
    CHECK_EQ_INT(d->convs[0].nturns, 2);
    rlab_turn *t = &d->convs[0].turns[1];
    CHECK_EQ_INT(t->role, RLAB_ROLE_RECOMMENDER);
    CHECK_EQ_INT(d->convs[0].turns[0].role, RLAB_ROLE_SEEKER);
    CHECK(t->time == 9);
    CHECK_EQ_INT(t->nitems, 3);
    CHECK(strcmp(d->items.names[t->items[0]], "222") == 0);
    CHECK(strcmp(d->items.names[t->items[2]], "333") == 0);
    CHECK(strcmp(d->item_titles[t->items[0]], "Caf\xc3\xa9") == 0);
    CHECK(d->item_titles[t->items[2]] == NULL);
    rlab_dialogues_free(d);
}

static int ld_dlg(const char *name, const char *content, rlab_dataset **ds, rlab_err *e)
{
    rlab_dialogues *d = (rlab_dialogues *)1;
    int rc = rlab_dialogues_load(put(name, content), NULL, &d, e);
    *ds = d ? (rlab_dataset *)1 : NULL; /* EXPECT_FAIL checks the out pointer was cleared */
    if (d && d != (rlab_dialogues *)1)
        rlab_dialogues_free(d);
    return rc;
}
static int ld_redial_trunc(rlab_dataset **ds, rlab_err *e)
{
    return ld_dlg("t.jsonl",
                  "{\"messages\": [], \"conversationId\": \"1\", \"respondentWorkerId\": 1, "
                  "\"initiatorWorkerId\": 2}\n{\"messages\": [{\"text\": \"hi",
                  ds, e);
}
static int ld_redial_key(rlab_dataset **ds, rlab_err *e)
{
    return ld_dlg("t.jsonl", "{\"messages\": [], \"respondentWorkerId\": 1}\n", ds, e);
}
static int ld_redial_sender(rlab_dataset **ds, rlab_err *e)
{
    return ld_dlg("t.jsonl",
                  "{\"messages\": [{\"text\": \"x\", \"senderWorkerId\": 9}], "
                  "\"conversationId\": \"1\", \"respondentWorkerId\": 1, "
                  "\"initiatorWorkerId\": 2}\n",
                  ds, e);
}
static int ld_redial_garbage(rlab_dataset **ds, rlab_err *e)
{
    return ld_dlg("t.jsonl", "{\"a\": 1} x\n", ds, e);
}
static int ld_inspired_speaker(rlab_dataset **ds, rlab_err *e)
{
    return ld_dlg("d.tsv",
                  "dialog_id\tspeaker\tturn_id\ttext\tmovies\n"
                  "a\tSEEKER\t1\thi\t\na\tBOT\t2\thello\t\n",
                  ds, e);
}
static int ld_inspired_split(rlab_dataset **ds, rlab_err *e)
{
    return ld_dlg("d.tsv",
                  "dialog_id\tspeaker\tturn_id\ttext\tmovies\n"
                  "a\tSEEKER\t1\thi\t\nb\tSEEKER\t1\thi\t\na\tSEEKER\t2\thi\t\n",
                  ds, e);
}

static void t_dialogue_bad(void)
{
    EXPECT_FAIL(ld_redial_trunc, RLAB_EFORMAT, "t.jsonl:2:", "truncated JSON",
                "expected one complete object per line");
    EXPECT_FAIL(ld_redial_key, RLAB_EFORMAT, "t.jsonl:1:", "conversationId");
    EXPECT_FAIL(ld_redial_sender, RLAB_EFORMAT,
                "t.jsonl:1:", "senderWorkerId 9 is neither the initiator");
    EXPECT_FAIL(ld_redial_garbage, RLAB_EFORMAT, "t.jsonl:1:", "text after the JSON object");
    EXPECT_FAIL(ld_inspired_speaker, RLAB_EFORMAT,
                "d.tsv:3:", "speaker 'BOT', expected RECOMMENDER or SEEKER");
    EXPECT_FAIL(ld_inspired_split, RLAB_EFORMAT, "d.tsv:4:", "dialog_id 'a' reappears");
}

/* Dialogue-shaped files are refused by the interaction loaders, whatever the format asked
 * for, with a message naming the file, what it is and how to load it. */
static void t_dialogue_refused(void)
{
    const char *tsv = put("dlg.tsv", "dialog_id\tutt_id\tspeaker\tturn_id\ttext\tmovies\n"
                                     "x\t1\tRECOMMENDER\t1\tHello\t\n"
                                     "x\t2\tSEEKER\t1\tI liked Up\tUp (2009)\n");
    CHECK_STR(rlab_data_dialogue_shape(tsv), "inspired");
    const char *fmts[] = {NULL, "tsv", "csv", "seqline", "sasrec", "ml-100k"};
    for (int i = 0; i < 6; i++) {
        rlab_err err = {0};
        rlab_dataset *ds = (rlab_dataset *)1;
        CHECK_EQ_INT(rlab_data_load(tsv, fmts[i], NULL, &ds, &err), RLAB_EFORMAT);
        CHECK(ds == NULL);
        CHECK_STR_CONTAINS(err.msg, "dlg.tsv");
        CHECK_STR_CONTAINS(err.msg, "INSPIRED dialogues");
        CHECK_STR_CONTAINS(err.msg, "not interactions");
        CHECK_STR_CONTAINS(err.msg, "format=inspired");
    }
    const char *jl = put("dlg.jsonl", "{\"conversationId\": \"1\", \"messages\": [], "
                                      "\"initiatorWorkerId\": 1, \"respondentWorkerId\": 2}\n");
    CHECK_STR(rlab_data_dialogue_shape(jl), "redial");
    const char *txt = put("dlg.txt", "{\"conversationId\": \"1\", \"messages\": []}\n");
    for (int i = 0; i < 2; i++) {
        rlab_err err = {0};
        rlab_dataset *ds = NULL;
        CHECK_EQ_INT(rlab_data_load(i ? txt : jl, NULL, NULL, &ds, &err), RLAB_EFORMAT);
        CHECK(ds == NULL);
        CHECK_STR_CONTAINS(err.msg, "ReDial dialogues");
        CHECK_STR_CONTAINS(err.msg, "format=redial");
    }
    /* the dialogue formats themselves are not interaction formats */
    rlab_err err = {0};
    rlab_dataset *ds = NULL;
    CHECK_EQ_INT(rlab_data_load(jl, "redial", NULL, &ds, &err), RLAB_EINVAL);
    CHECK_STR_CONTAINS(err.msg, "dialogue format");
    /* interaction files are not dialogue-shaped */
    CHECK(rlab_data_dialogue_shape(put("u.tsv", "user\titem\n1\t2\n")) == NULL);
    CHECK(rlab_data_dialogue_shape(put("s.txt", "1 2\n1 3\n")) == NULL);
    CHECK(rlab_data_dialogue_shape(put("o.json", "{\"user\": 1}\n")) == NULL);
}

static void t_inspired(void)
{
    const char *p = put("i.tsv", "dialog_id\tutt_id\tspeaker\tturn_id\ttext\tmovies\n"
                                 "x\t1\tRECOMMENDER\t1\tHello\t\n"
                                 "x\t2\tSEEKER\t1\tI liked Toy Story\tToy Story (1995); Up (2009)\n"
                                 "y\t1\tSEEKER\t1\tHi\t Up (2009) \n");
    rlab_err err = {0};
    rlab_dialogues *d = NULL;
    CHECK_EQ_INT(rlab_dialogues_load(p, NULL, &d, &err), RLAB_OK);
    CHECK_MSG(d != NULL, "%s", err.msg);
    if (!d)
        return;
    CHECK(strcmp(d->format, "inspired") == 0);
    CHECK_EQ_INT(d->n, 2);
    CHECK_EQ_INT(d->convs[0].nturns, 2);
    CHECK_EQ_INT(d->convs[0].turns[0].role, RLAB_ROLE_RECOMMENDER);
    CHECK_EQ_INT(d->convs[0].turns[1].nitems, 2);
    CHECK_EQ_INT(d->items.n, 2);
    CHECK_EQ_INT(d->convs[1].turns[0].items[0], 1); /* "Up (2009)" trimmed, same item */
    rlab_dialogues_free(d);
}

/* ---- buffer entry point and allocation failures ---------------------------------------- */
static void t_buffer(void)
{
    rlab_err err = {0};
    rlab_dataset *ds = NULL;
    const char *b = "1 2 3\n2 3";
    CHECK_EQ_INT(rlab_data_load_buffer(b, strlen(b), "seqline", "mem", &ds, &err), RLAB_OK);
    if (ds) {
        CHECK_EQ_INT(ds->inter.n, 3);
        CHECK(strcmp(ds->source, "mem") == 0);
        rlab_dataset_free(ds);
    }
    CHECK_EQ_INT(rlab_data_load_buffer(b, strlen(b), "nope", "mem", &ds, &err), RLAB_EINVAL);
    CHECK(ds == NULL);
}

/* Every allocation failure point of a load returns ENOMEM cleanly with *out NULL (ASan
 * checks nothing leaks). */
static int al_ml(rlab_dataset **ds, rlab_err *e)
{
    return rlab_data_load(ml_dir(), NULL, NULL, ds, e);
}
static int al_rb(rlab_dataset **ds, rlab_err *e)
{
    return rlab_data_load(rb_dir(), NULL, NULL, ds, e);
}
static int al_seq(rlab_dataset **ds, rlab_err *e)
{
    return rlab_data_load(put("al.txt", "1 5 6 7\n2 5\n3 8 5\n"), NULL, NULL, ds, e);
}
static int al_csv(rlab_dataset **ds, rlab_err *e)
{
    return rlab_data_load(put("al.csv", "user,item,rating\n1,\"a\",2\n2,b,3\n"), NULL, NULL, ds, e);
}
static int al_redial(rlab_dataset **ds, rlab_err *e)
{
    return ld_dlg("al.jsonl",
                  "{\"movieMentions\": {\"1\": \"A\"}, \"messages\": [{\"text\": \"@1 @2\", "
                  "\"senderWorkerId\": 5}, {\"text\": \"x\", \"senderWorkerId\": 6}], "
                  "\"conversationId\": \"9\", \"respondentWorkerId\": 6, "
                  "\"initiatorWorkerId\": 5}\n",
                  ds, e);
}
static int al_inspired(rlab_dataset **ds, rlab_err *e)
{
    return ld_dlg("al.tsv",
                  "dialog_id\tspeaker\ttext\tmovies\na\tSEEKER\thi\tA; B\n"
                  "b\tRECOMMENDER\tyo\tB\n",
                  ds, e);
}

static void t_alloc_fail(void)
{
    int (*fns[])(rlab_dataset **, rlab_err *) = {al_ml,  al_rb,     al_seq,
                                                 al_csv, al_redial, al_inspired};
    for (size_t f = 0; f < sizeof fns / sizeof fns[0]; f++) {
        int failures = 0, ok = 0;
        for (long k = 0; k < 1000 && !ok; k++) {
            rlab_err err = {0};
            rlab_dataset *ds = (rlab_dataset *)1;
            rlab_alloc_fail_after(k);
            int rc = fns[f](&ds, &err);
            rlab_alloc_fail_after(-1);
            if (rc == RLAB_OK) {
                CHECK(ds != NULL);
                if (ds != (rlab_dataset *)1)
                    rlab_dataset_free(ds);
                ok = 1;
                break;
            }
            failures++;
            CHECK_MSG(rc == RLAB_ENOMEM, "loader %zu, fail after %ld: %s", f, k, err.msg);
            CHECK(ds == NULL);
        }
        CHECK_MSG(ok && failures > 3, "loader %zu: %d failure points, ok %d", f, failures, ok);
    }
}

/* ---- UTF-8 byte-order mark ------------------------------------------------------------- */
#define BOM "\xEF\xBB\xBF"

/* Write BOM + content to tmpdir/name (the plain twin is written with put). */
static const char *put_bom(const char *name, const char *content)
{
    char *buf = malloc(strlen(content) + 4);
    CHECK(buf != NULL);
    if (!buf)
        return NULL;
    memcpy(buf, BOM, 3);
    strcpy(buf + 3, content);
    const char *p = put(name, buf);
    free(buf);
    return p;
}

/* Equal floats, NaN equal to NaN (missing values). */
static int same_f(float a, float b) { return (isnan(a) && isnan(b)) || !(a < b || a > b); }

static int same_vocab(const rlab_vocab *a, const rlab_vocab *b)
{
    if (a->n != b->n)
        return 0;
    for (int32_t i = 0; i < a->n; i++)
        if (strcmp(a->names[i], b->names[i]) != 0)
            return 0;
    return 1;
}

static int same_feats(const rlab_feats *a, const rlab_feats *b)
{
    if (a->ncols != b->ncols || a->n_entities != b->n_entities)
        return 0;
    for (int c = 0; c < a->ncols; c++) {
        const rlab_feat_col *x = &a->cols[c], *y = &b->cols[c];
        if (strcmp(x->name, y->name) != 0 || x->kind != y->kind ||
            !same_vocab(&x->vocab, &y->vocab))
            return 0;
        for (int32_t e = 0; e < a->n_entities; e++) {
            switch (x->kind) {
            case RLAB_FEAT_TOKEN:
                if (x->tok[e] != y->tok[e])
                    return 0;
                break;
            case RLAB_FEAT_TOKEN_SEQ:
                if (x->off[e + 1] - x->off[e] != y->off[e + 1] - y->off[e])
                    return 0;
                for (int64_t k = x->off[e]; k < x->off[e + 1]; k++)
                    if (x->seq[k] != y->seq[k - x->off[e] + y->off[e]])
                        return 0;
                break;
            case RLAB_FEAT_FLOAT:
                if (!same_f(x->num[e], y->num[e]))
                    return 0;
                break;
            case RLAB_FEAT_TEXT:
                if ((x->text[e] == NULL) != (y->text[e] == NULL) ||
                    (x->text[e] && strcmp(x->text[e], y->text[e]) != 0))
                    return 0;
                break;
            }
        }
    }
    return 1;
}

/* Same content (vocabularies, rows, features, format); names and sources may differ. */
static void check_same_ds(const rlab_dataset *a, const rlab_dataset *b)
{
    CHECK(a != NULL && b != NULL);
    if (!a || !b)
        return;
    CHECK_MSG(strcmp(a->format, b->format) == 0, "format %s vs %s", a->format, b->format);
    CHECK_MSG(same_vocab(&a->users, &b->users), "users differ (%d vs %d, first '%s' vs '%s')",
              a->users.n, b->users.n, a->users.n ? a->users.names[0] : "",
              b->users.n ? b->users.names[0] : "");
    CHECK_MSG(same_vocab(&a->items, &b->items), "items differ (%d vs %d, first '%s' vs '%s')",
              a->items.n, b->items.n, a->items.n ? a->items.names[0] : "",
              b->items.n ? b->items.names[0] : "");
    CHECK_EQ_INT(a->inter.n, b->inter.n);
    CHECK_EQ_INT(a->inter.flags, b->inter.flags);
    CHECK_EQ_INT(a->inter.nlabels, b->inter.nlabels);
    for (size_t i = 0; i < a->inter.n && i < b->inter.n; i++) {
        CHECK_EQ_INT(a->inter.user[i], b->inter.user[i]);
        CHECK_EQ_INT(a->inter.item[i], b->inter.item[i]);
        CHECK(a->inter.ts[i] == b->inter.ts[i]);
        CHECK(same_f(a->inter.rating[i], b->inter.rating[i]));
    }
    CHECK_MSG(same_feats(&a->item_feats, &b->item_feats), "item features differ");
    CHECK_MSG(same_feats(&a->user_feats, &b->user_feats), "user features differ");
}

/* Load plain and with-BOM paths with the same call; both must succeed and agree. */
static void check_bom_pair(int (*load)(const char *, rlab_dataset **, rlab_err *),
                           const char *plain, const char *bom)
{
    rlab_err e1 = {0}, e2 = {0};
    rlab_dataset *a = NULL, *b = NULL;
    CHECK_MSG(load(plain, &a, &e1) == RLAB_OK, "%s: %s", plain, e1.msg);
    CHECK_MSG(load(bom, &b, &e2) == RLAB_OK, "%s (with BOM): %s", bom, e2.msg);
    if (a && b)
        check_same_ds(a, b);
    rlab_dataset_free(a);
    rlab_dataset_free(b);
}

static int ld_auto(const char *p, rlab_dataset **ds, rlab_err *e)
{
    return rlab_data_load(p, NULL, NULL, ds, e);
}

/* The reader drops a BOM on line 1 only (files and buffers). */
static void t_bom_reader(void)
{
    rlab_reader r;
    rlab_err err = {0};
    const char *s;
    size_t n;
    const char *p = put_bom("bom_reader.txt", "ab\r\n" BOM "cd\n");
    CHECK_EQ_INT(rlab_reader_open(&r, p, RLAB_READ_UTF8, &err), RLAB_OK);
    CHECK_EQ_INT(rlab_reader_next(&r, &s, &n, &err), RLAB_OK);
    CHECK(s && n == 2 && memcmp(s, "ab", 2) == 0);
    CHECK_EQ_INT(rlab_reader_next(&r, &s, &n, &err), RLAB_OK);
    CHECK(s && n == 5 && memcmp(s, BOM "cd", 5) == 0); /* not at the start: data */
    rlab_reader_close(&r);
    rlab_reader_open_mem(&r, BOM "x", 4, "mem", 0);
    CHECK_EQ_INT(rlab_reader_next(&r, &s, &n, &err), RLAB_OK);
    CHECK(s && n == 1 && s[0] == 'x');
    CHECK_EQ_INT(r.line, 1);
    rlab_reader_close(&r);
    /* a file holding only a BOM is an empty file */
    rlab_dataset *ds = NULL;
    CHECK_EQ_INT(rlab_load_sasrec(put_bom("bom_empty.txt", ""), NULL, &ds, &err), RLAB_EFORMAT);
    CHECK_STR_CONTAINS(err.msg, "empty");
}

/* ML-100K: u.data, u.item, u.user and u.genre, each saved with a BOM. */
static void t_bom_ml100k(void)
{
    const char *data = "196\t242\t3\t881250949\n186\t302\t3\t891717742\n";
    const char *item = "242|Kolya (1996)|24-Jan-1997||http://x|0|0|0|0|0|1|0|0|0|0|0|0|0|0|0|0|0"
                       "|0|0\n302|L.A. Confidential (1997)|01-Jan-1997||http://y|0|0|0|0|0|0|1|0|"
                       "0|0|0|0|0|1|0|0|1|0|0\n";
    const char *user = "196|49|M|writer|55105\n";
    const char *genre = "unknown|0\nAction|1\nAdventure|2\nAnimation|3\nChildren's|4\nComedy|5\n"
                        "Crime|6\nDocumentary|7\nDrama|8\nFantasy|9\nFilm-Noir|10\nHorror|11\n"
                        "Musical|12\nMystery|13\nRomance|14\nSci-Fi|15\nThriller|16\nWar|17\n"
                        "Western|18\n";
    mkdir_tmp("bom_ml_a");
    mkdir_tmp("bom_ml_b");
    put("bom_ml_a/u.data", data);
    put("bom_ml_a/u.item", item);
    put("bom_ml_a/u.user", user);
    put("bom_ml_a/u.genre", genre);
    put_bom("bom_ml_b/u.data", data);
    put_bom("bom_ml_b/u.item", item);
    put_bom("bom_ml_b/u.user", user);
    put_bom("bom_ml_b/u.genre", genre);
    char a[512], b[512];
    snprintf(a, sizeof a, "%s/bom_ml_a", rlab_test_tmpdir());
    snprintf(b, sizeof b, "%s/bom_ml_b", rlab_test_tmpdir());
    check_bom_pair(ld_auto, a, b);
    /* the file itself, through the dispatcher */
    strcat(a, "/u.data");
    strcat(b, "/u.data");
    check_bom_pair(ld_auto, a, b);
}

/* ML-1M: ratings.dat, movies.dat and users.dat with a BOM. */
static void t_bom_ml1m(void)
{
    const char *ratings = "1::1193::5::978300760\n2::661::3::978302109\n";
    const char *movies = "1193::One Flew (1975)::Drama\n661::James (1996)::Animation|Musical\n";
    const char *users = "1::F::1::10::48067\n2::M::56::16::70072\n";
    mkdir_tmp("bom_m1_a");
    mkdir_tmp("bom_m1_b");
    put("bom_m1_a/ratings.dat", ratings);
    put("bom_m1_a/movies.dat", movies);
    put("bom_m1_a/users.dat", users);
    put_bom("bom_m1_b/ratings.dat", ratings);
    put_bom("bom_m1_b/movies.dat", movies);
    put_bom("bom_m1_b/users.dat", users);
    char a[512], b[512];
    snprintf(a, sizeof a, "%s/bom_m1_a", rlab_test_tmpdir());
    snprintf(b, sizeof b, "%s/bom_m1_b", rlab_test_tmpdir());
    check_bom_pair(ld_auto, a, b);
}

/* SASRec and seq-line text, sniffed by the dispatcher (which must see through the BOM). */
static void t_bom_sasrec(void)
{
    check_bom_pair(ld_auto, put("bom_s_a.txt", "1 10\n1 11\n2 10\n"),
                   put_bom("bom_s_b.txt", "1 10\n1 11\n2 10\n"));
    rlab_err err = {0};
    rlab_dataset *ds = NULL;
    CHECK_EQ_INT(
        rlab_data_load(put_bom("bom_s_c.txt", "1 10\n1 11\n2 10\n"), NULL, NULL, &ds, &err),
        RLAB_OK);
    CHECK(ds && strcmp(ds->format, "sasrec") == 0);
    rlab_dataset_free(ds);
    check_bom_pair(ld_auto, put("bom_q_a.txt", "1 5 6 7\n2 5\n"),
                   put_bom("bom_q_b.txt", "1 5 6 7\n2 5\n"));
    /* a u.data-like file under another name is sniffed as ml-100k */
    check_bom_pair(ld_auto, put("bom_ud_a.tsv.txt", "1\t2\t3\t4\n2\t2\t5\t6\n"),
                   put_bom("bom_ud_b.tsv.txt", "1\t2\t3\t4\n2\t2\t5\t6\n"));
}

/* RecBole atomic files: the header's first name must be read as user_id. */
static void t_bom_recbole(void)
{
    const char *inter = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
                        "u1\ti1\t4\t100\nu2\ti1\t5\t101\n";
    const char *item = "item_id:token\ttitle:token_seq\tyear:float\ni1\tToy Story\t1995\n";
    mkdir_tmp("bom_rb_a");
    mkdir_tmp("bom_rb_b");
    put("bom_rb_a/bom_rb_a.inter", inter);
    put("bom_rb_a/bom_rb_a.item", item);
    put_bom("bom_rb_b/bom_rb_b.inter", inter);
    put_bom("bom_rb_b/bom_rb_b.item", item);
    char a[512], b[512];
    snprintf(a, sizeof a, "%s/bom_rb_a", rlab_test_tmpdir());
    snprintf(b, sizeof b, "%s/bom_rb_b", rlab_test_tmpdir());
    check_bom_pair(ld_auto, a, b);
}

/* CSV / TSV: the header's first column name is guessed through the BOM. */
static void t_bom_csv(void)
{
    const char *csv = "user,item,rating,timestamp\n7,a,4.0,1000\n8,b,3.5,999\n";
    check_bom_pair(ld_auto, put("bom_c_a.csv", csv), put_bom("bom_c_b.csv", csv));
    const char *tsv = "userId\tmovieId\n7\ta\n8\tb\n";
    check_bom_pair(ld_auto, put("bom_t_a.tsv", tsv), put_bom("bom_t_b.tsv", tsv));
    /* explicit options, column chosen by header name */
    rlab_csv_opts o;
    rlab_csv_opts_init(&o);
    o.user_name = "user";
    o.item_name = "item";
    rlab_err err = {0};
    rlab_dataset *ds = NULL;
    CHECK_EQ_INT(rlab_load_csv(put_bom("bom_c_c.csv", csv), &o, NULL, &ds, &err), RLAB_OK);
    CHECK_MSG(ds != NULL, "%s", err.msg);
    if (ds)
        CHECK(strcmp(ds->users.names[0], "7") == 0);
    rlab_dataset_free(ds);
}

/* In-memory buffers take the same path. */
static void t_bom_buffer(void)
{
    rlab_err err = {0};
    rlab_dataset *a = NULL, *b = NULL;
    const char *plain = "1\t2\t3\t4\n";
    const char *bom = BOM "1\t2\t3\t4\n";
    CHECK_EQ_INT(rlab_data_load_buffer(plain, strlen(plain), "ml-100k-data", "u.data", &a, &err),
                 RLAB_OK);
    CHECK_EQ_INT(rlab_data_load_buffer(bom, strlen(bom), "ml-100k-data", "u.data", &b, &err),
                 RLAB_OK);
    CHECK_MSG(b != NULL, "%s", err.msg);
    if (a && b)
        check_same_ds(a, b);
    rlab_dataset_free(a);
    rlab_dataset_free(b);
}

/* Dialogues: ReDial JSON lines and INSPIRED TSV. */
static void check_same_dialogues(const char *plain, const char *bom)
{
    rlab_err e1 = {0}, e2 = {0};
    rlab_dialogues *a = NULL, *b = NULL;
    CHECK_MSG(rlab_dialogues_load(plain, NULL, &a, &e1) == RLAB_OK, "%s", e1.msg);
    CHECK_MSG(rlab_dialogues_load(bom, NULL, &b, &e2) == RLAB_OK, "%s (with BOM): %s", bom, e2.msg);
    if (a && b) {
        CHECK(strcmp(a->format, b->format) == 0);
        CHECK_EQ_INT(a->n, b->n);
        CHECK(same_vocab(&a->items, &b->items));
        for (size_t i = 0; i < a->n && i < b->n; i++) {
            CHECK(strcmp(a->convs[i].id, b->convs[i].id) == 0);
            CHECK_EQ_INT(a->convs[i].nturns, b->convs[i].nturns);
            for (int t = 0; t < a->convs[i].nturns && t < b->convs[i].nturns; t++) {
                CHECK(strcmp(a->convs[i].turns[t].text, b->convs[i].turns[t].text) == 0);
                CHECK_EQ_INT(a->convs[i].turns[t].role, b->convs[i].turns[t].role);
                CHECK_EQ_INT(a->convs[i].turns[t].nitems, b->convs[i].turns[t].nitems);
            }
        }
    }
    rlab_dialogues_free(a);
    rlab_dialogues_free(b);
}

static void t_bom_redial(void)
{
    const char *j = "{\"movieMentions\": {\"111\": \"Super Troopers (2001)\"}, \"messages\": "
                    "[{\"timeOffset\": 0, \"text\": \"Hi, like @111?\", \"senderWorkerId\": 5, "
                    "\"messageId\": 1}], \"conversationId\": \"20001\", "
                    "\"respondentWorkerId\": 6, \"initiatorWorkerId\": 5}\n";
    check_same_dialogues(put("bom_r_a.jsonl", j), put_bom("bom_r_b.jsonl", j));
}

static void t_bom_inspired(void)
{
    const char *t = "dialog_id\tutt_id\tspeaker\tturn_id\ttext\tmovies\n"
                    "x\t1\tRECOMMENDER\t1\tHello\t\n"
                    "x\t2\tSEEKER\t1\tI liked Toy Story\tToy Story (1995)\n";
    check_same_dialogues(put("bom_i_a.tsv", t), put_bom("bom_i_b.tsv", t));
}

/* ---- dataset names --------------------------------------------------------------------- */

/* Names over 63 bytes are refused by every loader (given or derived from the path), never
 * cut to a prefix another dataset may share. */
static void t_name_long(void)
{
    char a63[64], x64[65], want[128];
    memset(a63, 'a', 63);
    a63[63] = '\0';
    snprintf(x64, sizeof x64, "%sx", a63);
    snprintf(want, sizeof want, "dataset name '%.40s...' is longer than 63 bytes", a63);
    rlab_err err = {0};
    rlab_dataset *ds = NULL;
    const char *p = put("name_s.txt", "1 10\n1 11\n");
    CHECK_EQ_INT(rlab_data_load(p, NULL, x64, &ds, &err), RLAB_EINVAL);
    CHECK(ds == NULL);
    CHECK_STR_CONTAINS(err.msg, want);
    CHECK_EQ_INT(rlab_data_load(p, NULL, a63, &ds, &err), RLAB_OK);
    CHECK(ds && strcmp(ds->name, a63) == 0);
    rlab_dataset_free(ds);
    ds = NULL;
    /* derived from a long file name: the message says so */
    char fname[80];
    snprintf(fname, sizeof fname, "%s.txt", x64);
    CHECK_EQ_INT(rlab_data_load(put(fname, "1 10\n1 11\n"), NULL, NULL, &ds, &err), RLAB_EINVAL);
    CHECK(ds == NULL);
    CHECK_STR_CONTAINS(err.msg, want);
    CHECK_STR_CONTAINS(err.msg, "derived from the path");
    /* every public constructor path */
    CHECK_EQ_INT(rlab_load_ml100k(ml_dir(), x64, &ds, &err), RLAB_EINVAL);
    CHECK_EQ_INT(rlab_load_recbole(rb_dir(), x64, &ds, &err), RLAB_EINVAL);
    CHECK_EQ_INT(rlab_load_csv(put("name.csv", "u,i\n1,2\n"), NULL, x64, &ds, &err), RLAB_EINVAL);
    CHECK_EQ_INT(rlab_data_load_buffer("1 2\n", 4, "sasrec", x64, &ds, &err), RLAB_EINVAL);
    CHECK_STR_CONTAINS(err.msg, want);
    CHECK(ds == NULL);
    rlab_world_config c;
    rlab_world_config_demo(&c);
    rlab_world *w = NULL;
    CHECK_EQ_INT(rlab_world_generate(&c, x64, &w, &ds, &err), RLAB_EINVAL);
    CHECK_STR_CONTAINS(err.msg, want);
    CHECK(w == NULL && ds == NULL);
}

/* ---- format sniffing --------------------------------------------------------------------- */

static int ld_sniff_udata(rlab_dataset **ds, rlab_err *e)
{
    return rlab_data_load(put("ud_bad.txt", "196\t242\t3\t881250949\n186\t302\t3\t891717742\n"
                                            "22\t377\t1\t878887116\t9\n196\t51\t2\t880606923\n"
                                            "186\t346\t1\t886397596\n"),
                          NULL, NULL, ds, e);
}
/* distinct users in the first lines: the timestamps give it away */
static int ld_sniff_udata_ts(rlab_dataset **ds, rlab_err *e)
{
    return rlab_data_load(put("ud_bad2.txt", "1\t242\t3\t881250949\n2\t302\t3\t891717742\n"
                                             "3\t377\t1\n4\t51\t2\t880606923\n"),
                          NULL, NULL, ds, e);
}
static int ld_sniff_sasrec(rlab_dataset **ds, rlab_err *e)
{
    return rlab_data_load(put("ss_bad.txt", "1 10\n1 11\n1 12 13\n2 10\n2 14\n"), NULL, NULL, ds,
                          e);
}

/* A file mostly in one interaction-per-line shape with a line out of shape is refused,
 * naming file, line and the format it looks like; before, it became "seqline" (one user
 * whose items included ratings and timestamps). Real seq-line files still sniff as such. */
static void t_sniff_malformed(void)
{
    EXPECT_FAIL(ld_sniff_udata, RLAB_EFORMAT, "ud_bad.txt:3:", "5 tab-separated fields, expected 4",
                "looks like a u.data file", "pass a format");
    EXPECT_FAIL(ld_sniff_udata_ts, RLAB_EFORMAT,
                "ud_bad2.txt:3:", "3 tab-separated fields, expected 4", "u.data");
    EXPECT_FAIL(ld_sniff_sasrec, RLAB_EFORMAT, "ss_bad.txt:3:", "3 fields, expected 2",
                "looks like SASRec text");
    /* tab-separated seq-lines (one line per user, small ids) are still seq-lines */
    rlab_err err = {0};
    rlab_dataset *ds = NULL;
    const char *p = put("seq_tab.txt", "1\t5\t6\t7\n2\t5\n3\t8\t5\t9\n");
    CHECK_EQ_INT(rlab_data_load(p, NULL, NULL, &ds, &err), RLAB_OK);
    CHECK_MSG(ds && strcmp(ds->format, "seqline") == 0, "%s", err.msg);
    rlab_dataset_free(ds);
    /* a format given explicitly is not second-guessed */
    ds = NULL;
    CHECK_EQ_INT(rlab_data_load(put("ss_bad.txt", "1 10\n1 11\n1 12 13\n2 10\n2 14\n"), "seqline",
                                NULL, &ds, &err),
                 RLAB_OK);
    CHECK(ds && strcmp(ds->format, "seqline") == 0);
    rlab_dataset_free(ds);
}

/* Loose u.data-like files of one folder get distinct default names (their file names); the
 * folder, or its u.data, keeps the folder's name. */
static void t_name_loose_files(void)
{
    mkdir_tmp("loose");
    const char *rows = "1\t2\t3\t881250949\n2\t2\t4\t881250950\n";
    put("loose/u.data", rows);
    put("loose/train.data", rows);
    put("loose/test.data", rows);
    put("loose/u1.base", rows);
    put("loose/u1.test", rows);
    static const char *const files[] = {"",          "u.data",  "train.data",
                                        "test.data", "u1.base", "u1.test"};
    static const char *const want[] = {"loose", "loose", "train", "test", "u1.base", "u1.test"};
    for (int i = 0; i < 6; i++) {
        char p[512];
        snprintf(p, sizeof p, "%s/loose%s%s", rlab_test_tmpdir(), files[i][0] ? "/" : "", files[i]);
        rlab_err err = {0};
        rlab_dataset *ds = NULL;
        CHECK_MSG(rlab_data_load(p, NULL, NULL, &ds, &err) == RLAB_OK, "%s: %s", p, err.msg);
        if (ds) {
            CHECK_MSG(strcmp(ds->name, want[i]) == 0, "%s: name '%s', expected '%s'", files[i],
                      ds->name, want[i]);
            CHECK(strcmp(ds->format, "ml-100k") == 0);
        }
        rlab_dataset_free(ds);
    }
}

/* ---- item attributes (S3Rec item2attributes.json) and content vectors ------------------- */

static void t_attrs(void)
{
    /* Beauty-like: X.txt with X_item2attributes.json beside it (item 9 has no interaction) */
    mkdir_tmp("attrs");
    put("attrs/X.txt", "1 5 7\n2 7 8\n");
    put("attrs/X_item2attributes.json", "{\"5\": [1, 2], \"7\": [2], \"8\": [], \"9\": [3]}");
    char path[600];
    snprintf(path, sizeof path, "%s/attrs/X.txt", rlab_test_tmpdir());
    rlab_err err = {0};
    rlab_dataset *ds = NULL;
    CHECK_EQ_INT(rlab_data_load(path, NULL, NULL, &ds, &err), RLAB_OK);
    if (!ds)
        return;
    CHECK_EQ_INT(rlab_vocab_size(&ds->items), 3); /* 9 skipped */
    const rlab_feat_col *c = rlab_feats_find(&ds->item_feats, "attributes");
    CHECK(c && c->kind == RLAB_FEAT_TOKEN_SEQ);
    if (c) {
        int32_t i5 = rlab_vocab_find(&ds->items, "5", 1), i8 = rlab_vocab_find(&ds->items, "8", 1);
        CHECK_EQ_INT(c->off[i5 + 1] - c->off[i5], 2);
        CHECK_STR(rlab_vocab_name(&c->vocab, c->seq[c->off[i5]]), "1");
        CHECK_EQ_INT(c->off[i8 + 1] - c->off[i8], 0);
    }
    /* content vectors: 2 distinct values used... 3 in the vocabulary (1, 2, 3) fit tok_dim 4
     * exactly: item 5 = (1, 1, 0, 0)/sqrt 2, item 7 = (0, 1, 0, 0), item 8 = 0 */
    rlab_content_opts o = rlab_content_defaults();
    o.tok_dim = 4;
    o.text_dim = 0;
    float *X = NULL;
    int32_t dim = 0;
    CHECK_EQ_INT(rlab_item_content(ds, &o, &X, &dim, &err), RLAB_OK);
    CHECK_EQ_INT(dim, 4);
    if (X) {
        int32_t i5 = rlab_vocab_find(&ds->items, "5", 1), i7 = rlab_vocab_find(&ds->items, "7", 1),
                i8 = rlab_vocab_find(&ds->items, "8", 1);
        CHECK_NEAR(X[i5 * 4 + 0], 1 / sqrt(2.0), 1e-6);
        CHECK_NEAR(X[i5 * 4 + 1], 1 / sqrt(2.0), 1e-6);
        CHECK_NEAR(X[i5 * 4 + 2], 0, 0);
        CHECK_NEAR(X[i7 * 4 + 1], 1, 1e-6);
        for (int j = 0; j < 4; j++)
            CHECK_NEAR(X[i8 * 4 + j], 0, 0);
    }
    rlab_free(X);
    /* a column that does not exist / is numeric */
    o.cols = "genres";
    CHECK_EQ_INT(rlab_item_content(ds, &o, &X, &dim, &err), RLAB_EINVAL);
    CHECK_STR_CONTAINS(err.msg, "no item feature 'genres'");
    /* attaching twice is refused */
    snprintf(path, sizeof path, "%s/attrs/X_item2attributes.json", rlab_test_tmpdir());
    CHECK_EQ_INT(rlab_load_item_attrs(ds, path, NULL, &err), RLAB_EINVAL);
    rlab_dataset_free(ds);
}

static void t_attrs_bad(void)
{
    static const struct {
        const char *in, *msg;
    } bad[] = {
        {"{\"1\": [1, 2]", "truncated JSON"},
        {"[1, 2]", "expected a JSON object"},
        {"{\"1\": 3}", "item 1: expected an array of attribute ids"},
        {"{\"1\": [1.5]}", "item 1, attribute 1: expected an integer or a short string id"},
        {"{\"1\": [{}]}", "item 1, attribute 1"},
        {"{\"\": [1]}", "empty or invalid UTF-8 item id"},
        {"", "truncated JSON"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        rlab_err err = {0};
        rlab_dataset *ds = (rlab_dataset *)1;
        int rc = rlab_data_load_buffer(bad[k].in, strlen(bad[k].in), "item2attributes", "a.json",
                                       &ds, &err);
        CHECK_MSG(rc == RLAB_EFORMAT, "case %zu: rc %d (%s)", k, rc, err.msg);
        CHECK(ds == NULL);
        CHECK_STR_CONTAINS(err.msg, "a.json");
        CHECK_STR_CONTAINS(err.msg, bad[k].msg);
    }
    rlab_err err = {0};
    rlab_dataset *ds = NULL;
    CHECK_EQ_INT(
        rlab_data_load_buffer("{\"a\": [\"x\", 2]}", 15, "item2attributes", "b", &ds, &err),
        RLAB_OK);
    CHECK(ds && rlab_vocab_size(&ds->items) == 1);
    rlab_dataset_free(ds);
    /* a missing file */
    ds = rlab_dataset_new("d", &err);
    CHECK_EQ_INT(rlab_load_item_attrs(ds, "/nonexistent/x.json", NULL, &err), RLAB_EIO);
    rlab_dataset_free(ds);
}

static void t_content_ml(void)
{
    /* ML-100K-like items: genres (exact one-hot) + a title block */
    const char *items = "1|Toy Story (1995)|01-Jan-1995||u|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
                        "2|GoldenEye (1995)|01-Jan-1995||u|0|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0|0|1|0\n";
    rlab_err err = {0};
    rlab_dataset *ds = NULL;
    CHECK_EQ_INT(rlab_data_load_buffer(items, strlen(items), "ml-100k-item", "u.item", &ds, &err),
                 RLAB_OK);
    if (!ds)
        return;
    rlab_content_opts o = rlab_content_defaults(); /* 64 + 64 */
    float *X = NULL;
    int32_t dim = 0;
    CHECK_EQ_INT(rlab_item_content(ds, &o, &X, &dim, &err), RLAB_OK);
    CHECK_EQ_INT(dim, 128);
    for (int i = 0; X && i < 2; i++) {
        double a = 0, b = 0;
        for (int j = 0; j < 64; j++)
            a += (double)X[i * 128 + j] * (double)X[i * 128 + j];
        for (int j = 64; j < 128; j++)
            b += (double)X[i * 128 + j] * (double)X[i * 128 + j];
        CHECK_NEAR(a, 1.0, 1e-6);  /* genres block, unit norm */
        CHECK_NEAR(b, 0.25, 1e-6); /* title block, norm text_weight = 0.5 */
    }
    /* Toy Story: 3 genres (Animation, Children's, Comedy) in exact columns 0..2 */
    if (X) {
        CHECK_NEAR(X[0], 1 / sqrt(3.0), 1e-6);
        CHECK_NEAR(X[1], 1 / sqrt(3.0), 1e-6);
        CHECK_NEAR(X[2], 1 / sqrt(3.0), 1e-6);
    }
    rlab_free(X);
    rlab_dataset_free(ds);
}

/* rlab_feats_add: columns past the first capacity (8) keep their names, kinds and order */
static void t_feats_add(void)
{
    rlab_feats f;
    rlab_feats_init(&f);
    static const char *const names[] = {"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"};
    for (int k = 0; k < 10; k++) {
        rlab_feat_col *c =
            rlab_feats_add(&f, names[k], k % 2 ? RLAB_FEAT_TEXT : RLAB_FEAT_TOKEN_SEQ);
        CHECK(c != NULL);
        CHECK(c->tok == NULL && c->seq == NULL && c->num == NULL && c->text == NULL);
    }
    CHECK(f.ncols == 10 && f.cap >= 10);
    for (int k = 0; k < 10; k++) {
        const rlab_feat_col *c = rlab_feats_find(&f, names[k]);
        CHECK(c == &f.cols[k]);
        CHECK(c->kind == (k % 2 ? RLAB_FEAT_TEXT : RLAB_FEAT_TOKEN_SEQ));
    }
    CHECK(rlab_feats_find(&f, "k") == NULL);
    rlab_feats_clear(&f);
}

static const rlab_test tests[] = {
    {"data.feats.add.1", t_feats_add},
    {"data.tok.split.1", t_split},
    {"data.tok.numbers.1", t_numbers},
    {"data.tok.text.1", t_text},
    {"data.tok.reader.1", t_reader},
    {"data.ml100k.1", t_ml100k},
    {"data.ml100k.bad.1", t_ml100k_bad},
    {"data.ml100k.bad.2", t_ml100k_item_bad},
    {"data.ml1m.1", t_ml1m},
    {"data.ml1m.bad.1", t_ml1m_bad},
    {"data.sasrec.1", t_sasrec},
    {"data.sasrec.bad.1", t_sasrec_bad},
    {"data.recbole.1", t_recbole},
    {"data.recbole.bad.1", t_recbole_bad},
    {"data.csv.1", t_csv},
    {"data.csv.bad.1", t_csv_bad},
    {"data.redial.1", t_redial},
    {"data.inspired.1", t_inspired},
    {"data.dialogue.bad.1", t_dialogue_bad},
    {"data.dialogue.refused.1", t_dialogue_refused},
    {"data.buffer.1", t_buffer},
    {"data.alloc.1", t_alloc_fail},
    {"data.bom.reader.1", t_bom_reader},
    {"data.bom.ml100k.1", t_bom_ml100k},
    {"data.bom.ml1m.1", t_bom_ml1m},
    {"data.bom.sasrec.1", t_bom_sasrec},
    {"data.bom.recbole.1", t_bom_recbole},
    {"data.bom.csv.1", t_bom_csv},
    {"data.bom.buffer.1", t_bom_buffer},
    {"data.bom.redial.1", t_bom_redial},
    {"data.bom.inspired.1", t_bom_inspired},
    {"data.name.long.1", t_name_long},
    {"data.name.loose.1", t_name_loose_files},
    {"data.sniff.1", t_sniff_malformed},
    {"data.attrs.1", t_attrs},
    {"data.attrs.bad.1", t_attrs_bad},
    {"data.content.1", t_content_ml},
    {NULL, NULL},
};

int main(int argc, char **argv) { return rlab_test_main(argc, argv, tests); }
