/*
 * libFuzzer targets for the text loaders. One source, compiled once per target with
 * FUZZ_FORMAT naming the loader (see tests/fuzz/CMakeLists.txt). The first input byte picks
 * a sub-format where a loader has several files (.inter/.item/.user, u.data/u.item/...);
 * the rest is the file content, loaded through the in-memory entry points. Any crash,
 * sanitizer report or leak is a bug; a clean error return is the expected outcome for
 * garbage. A successful load is checked for basic invariants.
 */
#include "data/loaders.h"
#include "data/split.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const recbole[] = {"recbole-inter", "recbole-item", "recbole-user"};
static const char *const movielens[] = {"ml-100k-data",          "ml-100k-item", "ml-100k-user",
                                        "ml-1m-ratings",         "ml-1m-movies", "ml-1m-users",
                                        "ml-1m-movies-semicolon"};
static const char *const seq[] = {"sasrec", "seqline"};
static const char *const csv[] = {"csv"};
static const char *const dialogue[] = {"redial", "inspired"};

#define PICK(tbl) (tbl)[data[0] % (sizeof(tbl) / sizeof((tbl)[0]))]

static void check(const rlab_dataset *ds)
{
    const rlab_inter *t = &ds->inter;
    for (size_t i = 0; i < t->n; i++)
        if (t->user[i] < 0 || t->user[i] >= ds->users.n || t->item[i] < 0 ||
            t->item[i] >= ds->items.n)
            abort();
    if (ds->item_feats.ncols && ds->item_feats.n_entities != ds->items.n)
        abort();
    if (ds->user_feats.ncols && ds->user_feats.n_entities != ds->users.n)
        abort();
    /* exercise the splits on whatever loaded */
    rlab_split sp;
    if (rlab_split_loo(t, ds->users.n, &sp, NULL) == RLAB_OK) {
        if (sp.train.n + sp.valid.n + sp.test.n != t->n)
            abort();
        rlab_split_clear(&sp);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *fmt = PICK(FUZZ_TABLE);
    rlab_err err = {0};
    if (FUZZ_DIALOGUE) {
        rlab_dialogues *d = NULL;
        if (rlab_dialogues_load_buffer(data + 1, size - 1, fmt, "fuzz", &d, &err) == RLAB_OK) {
            for (size_t i = 0; i < d->n; i++)
                for (int k = 0; k < d->convs[i].nturns; k++)
                    for (int j = 0; j < d->convs[i].turns[k].nitems; j++)
                        if (d->convs[i].turns[k].items[j] >= d->items.n)
                            abort();
            rlab_dialogues_free(d);
        } else if (d || err.msg[0] == '\0') {
            abort(); /* failure must clear *out and explain itself */
        }
        return 0;
    }
    rlab_dataset *ds = NULL;
    if (rlab_data_load_buffer(data + 1, size - 1, fmt, "fuzz", &ds, &err) == RLAB_OK) {
        check(ds);
        rlab_dataset *copy = ds;
        if (rlab_kcore(copy, 2, NULL) == RLAB_OK)
            check(copy);
        rlab_dataset_free(ds);
    } else if (ds || err.msg[0] == '\0') {
        abort();
    }
    return 0;
}
