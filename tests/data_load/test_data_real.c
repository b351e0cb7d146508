/*
 * Loaders on the real data sets of $RECLAB_DATA (skipped when unset). Expected counts come
 * from /work/shared/data/README.md and were re-checked with awk / wc on the files.
 */
#include "harness.h"

#include "data/loaders.h"
#include "data/split.h"
#include "data/tokenizer.h"

#include <stdio.h>
#include <string.h>

static int path(char *out, size_t n, const char *rel)
{
    const char *d = rlab_test_data_dir();
    if (!d) {
        rlab_test_skip("RECLAB_DATA not set: real-data loader tests skipped");
        return 0;
    }
    snprintf(out, n, "%s/%s", d, rel);
    return 1;
}

static rlab_dataset *load(const char *rel, const char *format)
{
    char p[1024];
    if (!path(p, sizeof p, rel))
        return NULL;
    rlab_err err = {0};
    rlab_dataset *ds = NULL;
    int rc = rlab_data_load(p, format, NULL, &ds, &err);
    CHECK_MSG(rc == RLAB_OK, "%s: %s", rel, err.msg);
    return ds;
}

static void counts(const rlab_dataset *ds, int users, int items, size_t n)
{
    CHECK_EQ_INT(rlab_vocab_size(&ds->users), users);
    CHECK_EQ_INT(rlab_vocab_size(&ds->items), items);
    CHECK_EQ_INT(ds->inter.n, n);
}

static void t_ml100k(void)
{
    rlab_dataset *ds = load("movielens-100k", NULL);
    if (!ds)
        return;
    CHECK(strcmp(ds->format, "ml-100k") == 0);
    counts(ds, 943, 1682, 100000);
    rlab_feat_col *title = rlab_feats_find(&ds->item_feats, "title");
    rlab_feat_col *gen = rlab_feats_find(&ds->item_feats, "genres");
    CHECK(title && gen);
    if (title && gen) {
        int ntitles = 0, accented = 0;
        for (int32_t i = 0; i < ds->item_feats.n_entities; i++) {
            const char *t = title->text[i];
            if (!t)
                continue;
            ntitles++;
            CHECK(rlab_utf8_invalid_at(t, strlen(t)) < 0);
            if (strstr(t, "\xc3\xa9")) /* U+00E9 e-acute */
                accented++;
        }
        CHECK_EQ_INT(ntitles, 1682);
        CHECK(accented > 0);
        int32_t k = rlab_vocab_find(&ds->items, "543", 3);
        CHECK(k >= 0);
        if (k >= 0)
            CHECK(strcmp(title->text[k], "Mis\xc3\xa9rables, Les (1995)") == 0);
        CHECK_EQ_INT(gen->vocab.n, 19);
        CHECK(strcmp(gen->vocab.names[0], "Animation") == 0); /* Toy Story's first genre */
    }
    CHECK_EQ_INT(ds->user_feats.n_entities, 943);
    rlab_feat_col *occ = rlab_feats_find(&ds->user_feats, "occupation");
    CHECK(occ && occ->vocab.n == 21); /* u.occupation lists 21 */
    rlab_dataset_free(ds);
}

static void t_ml100k_sasrec(void)
{
    rlab_dataset *ds = load("movielens-100k/ml-100k.sasrec.txt", NULL);
    if (!ds)
        return;
    CHECK(strcmp(ds->format, "sasrec") == 0);
    counts(ds, 943, 1682, 100000);
    rlab_dataset_free(ds);
}

static void t_beauty(void)
{
    rlab_dataset *a = load("amazon-beauty/Beauty.txt", NULL);
    rlab_dataset *b = load("amazon-beauty/Beauty.sasrec.txt", NULL);
    if (!a || !b) {
        rlab_dataset_free(a);
        rlab_dataset_free(b);
        return;
    }
    CHECK(strcmp(a->format, "seqline") == 0);
    CHECK(strcmp(b->format, "sasrec") == 0);
    counts(a, 22363, 12101, 198502);
    counts(b, 22363, 12101, 198502);
    /* same sequences, same order (the .sasrec file is derived line by line) */
    int same = 1;
    for (size_t i = 0; i < a->inter.n && same; i++)
        same = strcmp(a->users.names[a->inter.user[i]], b->users.names[b->inter.user[i]]) == 0 &&
               strcmp(a->items.names[a->inter.item[i]], b->items.names[b->inter.item[i]]) == 0 &&
               a->inter.ts[i] == b->inter.ts[i];
    CHECK(same);
    rlab_split sp;
    rlab_err err = {0};
    CHECK_EQ_INT(rlab_split_loo(&a->inter, rlab_vocab_size(&a->users), &sp, &err), RLAB_OK);
    CHECK_EQ_INT(sp.valid.n, 22363);
    CHECK_EQ_INT(sp.test.n, 22363);
    CHECK_EQ_INT(sp.train.n, 198502 - 2 * 22363);
    rlab_split_clear(&sp);
    /* 5-core data: k-core with k = 5 keeps everything */
    CHECK_EQ_INT(rlab_kcore(a, 5, &err), RLAB_OK);
    counts(a, 22363, 12101, 198502);
    rlab_dataset_free(a);
    rlab_dataset_free(b);
}

static void t_video(void)
{
    rlab_dataset *ds = load("sasrec-video/Video.txt", NULL);
    if (!ds)
        return;
    CHECK(strcmp(ds->format, "sasrec") == 0);
    counts(ds, 31013, 23715, 287107);
    rlab_dataset_free(ds);
}

static void t_ml1m(void)
{
    rlab_dataset *ds = load("movielens-1m", NULL);
    if (!ds)
        return;
    CHECK(strcmp(ds->format, "ml-1m") == 0);
    CHECK_EQ_INT(rlab_vocab_size(&ds->items), 3883);
    CHECK_EQ_INT(rlab_vocab_size(&ds->users), 6040);
    CHECK_EQ_INT(ds->item_feats.n_entities, 3883);
    rlab_feat_col *g = rlab_feats_find(&ds->item_feats, "genres");
    CHECK(g && g->vocab.n == 18); /* ML-1M README lists 18 genres */
    rlab_dataset_free(ds);
}

static void t_redial(void)
{
    char p[1024];
    if (!path(p, sizeof p, "redial/test_data.jsonl"))
        return;
    rlab_err err = {0};
    rlab_dialogues *d = NULL;
    CHECK_MSG(rlab_dialogues_load(p, NULL, &d, &err) == RLAB_OK, "%s", err.msg);
    if (!d)
        return;
    CHECK_EQ_INT(d->n, 1342);
    CHECK(strcmp(d->convs[0].id, "20001") == 0);
    CHECK_EQ_INT(d->convs[0].turns[0].nitems, 1); /* "Hi I am looking for a movie like @111776" */
    CHECK(strcmp(d->item_titles[d->convs[0].turns[0].items[0]], "Super Troopers (2001)") == 0);
    rlab_dialogues_free(d);
}

static void t_inspired(void)
{
    char p[1024];
    if (!path(p, sizeof p, "inspired/dev.tsv"))
        return;
    rlab_err err = {0};
    rlab_dialogues *d = NULL;
    CHECK_MSG(rlab_dialogues_load(p, NULL, &d, &err) == RLAB_OK, "%s", err.msg);
    if (!d)
        return;
    /* README and SOURCE_README say 100 dialogues; the file has 99 distinct, contiguous
     * dialog_id values (awk -F'\t' 'NR>1{print $1}' dev.tsv | sort -u | wc -l -> 99) */
    CHECK_EQ_INT(d->n, 99);
    size_t turns = 0;
    for (size_t i = 0; i < d->n; i++)
        turns += (size_t)d->convs[i].nturns;
    CHECK_EQ_INT(turns, 3538); /* 3539 lines minus the header */
    rlab_dialogues_free(d);
}

/* INSPIRED test.tsv used to load as interactions ("99 users, 82 items" of dialogue and
 * utterance ids); the interaction loaders refuse it, also as an explicit TSV. */
static void t_inspired_refused(void)
{
    char p[1024];
    if (!path(p, sizeof p, "inspired/test.tsv"))
        return;
    const char *fmts[] = {NULL, "tsv"};
    for (int i = 0; i < 2; i++) {
        rlab_err err = {0};
        rlab_dataset *ds = NULL;
        CHECK_EQ_INT(rlab_data_load(p, fmts[i], NULL, &ds, &err), RLAB_EFORMAT);
        CHECK(ds == NULL);
        CHECK_STR_CONTAINS(err.msg, "INSPIRED dialogues");
    }
    rlab_err err = {0};
    rlab_dataset *ds = NULL;
    if (!path(p, sizeof p, "redial/valid_data.jsonl"))
        return;
    CHECK_EQ_INT(rlab_data_load(p, NULL, NULL, &ds, &err), RLAB_EFORMAT);
    CHECK_STR_CONTAINS(err.msg, "ReDial dialogues");
}

static const rlab_test tests[] = {
    {"data.real.ml100k.1", t_ml100k},
    {"data.real.ml100k.2", t_ml100k_sasrec},
    {"data.real.beauty.1", t_beauty},
    {"data.real.video.1", t_video},
    {"data.real.ml1m.1", t_ml1m},
    {"data.real.redial.1", t_redial},
    {"data.real.inspired.1", t_inspired},
    {"data.real.inspired.2", t_inspired_refused},
    {NULL, NULL},
};

int main(int argc, char **argv) { return rlab_test_main(argc, argv, tests); }
