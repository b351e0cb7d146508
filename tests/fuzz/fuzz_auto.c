/*
 * fuzz_auto: the loaders' file paths that the in-memory targets (fuzz_loaders.c) do not
 * reach: format detection by file name and by sniffing (core/data/load_auto.c), the
 * multi-file formats joined across files (u.data + u.item + u.user, ratings.dat +
 * movies.dat + users.dat, .inter + .item + .user), the CSV loader with explicit options
 * (separator, header, quoting, columns by index), and the dialogue loaders picked by
 * extension.
 *
 * Input: the first byte picks the scenario (and, for CSV, the second the options); the rest
 * is split at each "\n--\n" into up to three files written to a private temporary folder
 * under the scenario's names, then the folder (or the first file) is loaded. A successful
 * load is checked for basic invariants; a failure must clear *out and explain itself.
 */
#include "data/loaders.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The files of one scenario: the first is loaded when `folder` is 0, else the folder. */
typedef struct scenario {
    const char *files[3];
    int folder;
    const char *format; /* NULL: detect */
} scenario;

static const scenario scenarios[] = {
    {{"u.data", "u.item", "u.user"}, 1, NULL},
    {{"u.data", "u.item", "u.genre"}, 0, NULL},
    {{"ratings.dat", "movies.dat", "users.dat"}, 1, NULL},
    {{"ratings.dat", "movies_semicolon.dat", NULL}, 1, NULL},
    {{"fz.inter", "fz.item", "fz.user"}, 1, NULL},
    {{"fz.inter", "fz.item", "fz.user"}, 0, "recbole"},
    {{"seq.txt", NULL, NULL}, 0, NULL}, /* sniffed: u.data-like, sasrec or seqline */
    {{"train.data", NULL, NULL}, 0, NULL},
    {{"x.csv", NULL, NULL}, 0, NULL},
    {{"x.tsv", NULL, NULL}, 0, NULL},
    {{"x.txt", NULL, NULL}, 0, "sasrec"},
    {{"x.txt", NULL, NULL}, 0, "seqline"},
    {{"x.txt", NULL, NULL}, 0, "ml-1m"}, /* a file where a folder is expected */
    {{"conv.jsonl", NULL, NULL}, 0, "dialogue"},
    {{"conv.tsv", NULL, NULL}, 0, "dialogue"},
    {{"opts.csv", NULL, NULL}, 0, "csv-opts"},
};
#define NSCEN (sizeof scenarios / sizeof scenarios[0])

static char dir[64];

/* Remove the temporary folder and what the calls left in it (at exit). */
static void remove_tree(const char *d)
{
    DIR *dd = opendir(d);
    if (!dd)
        return;
    struct dirent *e;
    char p[512];
    while ((e = readdir(dd)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(p, sizeof p, "%s/%s", d, e->d_name);
            if (unlink(p) != 0)
                remove_tree(p);
        }
    closedir(dd);
    rmdir(d);
}

static void cleanup(void) { remove_tree(dir); }

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
}

static void write_file(const char *name, const uint8_t *p, size_t n)
{
    char path[160];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f)
        abort();
    if (n && fwrite(p, 1, n, f) != n)
        abort();
    fclose(f);
}

static void clean(const scenario *sc)
{
    char path[160];
    for (int i = 0; i < 3; i++)
        if (sc->files[i]) {
            snprintf(path, sizeof path, "%s/%s", dir, sc->files[i]);
            unlink(path);
        }
}

/* CSV options from one byte: separator, header, quoting, user/item/ts/rating by index. */
static void csv_opts(unsigned b, unsigned c, rlab_csv_opts *o)
{
    static const char *const seps[] = {",", "\t", "::", ";"};
    rlab_csv_opts_init(o);
    o->sep = seps[b & 3];
    o->header = (b >> 2) & 1;
    o->quoted = (b >> 3) & 1;
    o->user_col = (int)(c & 3);
    o->item_col = (int)((c >> 2) & 3);
    o->ts_col = (int)((c >> 4) & 3) - 1;
    o->rating_col = (int)((c >> 6) & 3) - 1;
    if ((b >> 4) & 1) {
        o->nlabels = 1;
        o->label_cols[0] = (int)((b >> 5) & 3);
    }
    if (o->header && ((b >> 7) & 1)) { /* by name: overrides the indices */
        o->user_name = "user";
        o->item_name = "item";
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!dir[0]) {
        const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(dir, sizeof dir, "%s/fuzz_auto.XXXXXX", base);
        if (!mkdtemp(dir))
            abort();
        atexit(cleanup);
    }
    if (size < 3)
        return 0;
    const scenario *sc = &scenarios[data[0] % NSCEN];
    unsigned ob = data[1], oc = data[2];
    const uint8_t *p = data + 3, *end = data + size;
    for (int i = 0; i < 3 && sc->files[i]; i++) {
        const uint8_t *cut = NULL;
        for (const uint8_t *q = p; q + 4 <= end; q++)
            if (memcmp(q, "\n--\n", 4) == 0) {
                cut = q;
                break;
            }
        if (i == 2 || !sc->files[i + 1] || !cut)
            cut = end;
        write_file(sc->files[i], p, (size_t)(cut - p));
        p = cut < end ? cut + 4 : end;
        if (p >= end)
            break;
    }
    char path[160];
    if (sc->folder)
        snprintf(path, sizeof path, "%s", dir);
    else
        snprintf(path, sizeof path, "%s/%s", dir, sc->files[0]);

    rlab_err err = {0};
    if (sc->format && strcmp(sc->format, "dialogue") == 0) {
        rlab_dialogues *d = NULL;
        if (rlab_dialogues_load(path, NULL, &d, &err) == RLAB_OK) {
            for (size_t i = 0; i < d->n; i++)
                for (int k = 0; k < d->convs[i].nturns; k++)
                    for (int j = 0; j < d->convs[i].turns[k].nitems; j++)
                        if (d->convs[i].turns[k].items[j] >= d->items.n)
                            abort();
            rlab_dialogues_free(d);
        } else if (d || !err.msg[0]) {
            abort();
        }
        clean(sc);
        return 0;
    }
    rlab_dataset *ds = NULL;
    int rc;
    if (sc->format && strcmp(sc->format, "csv-opts") == 0) {
        rlab_csv_opts o;
        csv_opts(ob, oc, &o);
        rc = rlab_load_csv(path, &o, "fz", &ds, &err);
    } else {
        rc = rlab_data_load(path, sc->format, (ob & 1) ? "fz" : NULL, &ds, &err);
    }
    if (rc == RLAB_OK) {
        if (!ds)
            abort();
        check(ds);
        rlab_dataset_free(ds);
    } else if (ds || !err.msg[0]) {
        abort();
    }
    clean(sc);
    return 0;
}
