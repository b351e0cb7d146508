/*
 * core/data/load_sasrec: SASRec `user item` lines and the S3Rec/ICLRec seq-line form
 * `user item item ...`. Both are already in time order, so ts is the position within the
 * user's sequence (RLAB_INTER_SYNTH_TS).
 */
#include "data/loaders.h"
#include "data/tokenizer.h"

#include <string.h>

int rlab_ld_sasrec(rlab_reader *r, rlab_dataset *ds, rlab_err *err)
{
    rlab_i64map pos = {0};
    rlab_idcache cu = {0}, ci = {0};
    const char *s;
    size_t n;
    int rc;
    ds->inter.flags |= RLAB_INTER_SYNTH_TS;
    while ((rc = rlab_reader_next(r, &s, &n, err)) == RLAB_OK && s) {
        rlab_field f[3];
        size_t nf = rlab_split_fields(s, n, NULL, f, 3);
        if (nf == 0)
            continue;
        if (nf != 2) {
            rc = rlab_errf_at(err, RLAB_EFORMAT, r->name, r->line,
                              "expected 2 blank-separated fields (user item), got %zu", nf);
            break;
        }
        int32_t u, i;
        if ((rc = rlab_ld_int_id(&ds->users, &cu, r, f[0], "user id", &u, err)) ||
            (rc = rlab_ld_int_id(&ds->items, &ci, r, f[1], "item id", &i, err)))
            break;
        int64_t *p = rlab_i64map_at(&pos, u);
        if (!p || rlab_inter_push(&ds->inter, u, i, (*p)++, 1.0f, NULL)) {
            rc = rlab_errf_at(err, RLAB_ENOMEM, r->name, r->line, "out of memory");
            break;
        }
    }
    rlab_i64map_clear(&pos);
    rlab_idcache_clear(&cu);
    rlab_idcache_clear(&ci);
    if (rc == RLAB_OK && ds->inter.n == 0)
        rc = rlab_errf_at(err, RLAB_EFORMAT, r->name, 0, "empty file, expected `user item` lines");
    return rc;
}

int rlab_ld_seqline(rlab_reader *r, rlab_dataset *ds, rlab_err *err)
{
    rlab_i64map pos = {0};
    rlab_idcache cu = {0}, ci = {0};
    const char *s;
    size_t n;
    int rc;
    ds->inter.flags |= RLAB_INTER_SYNTH_TS;
    while ((rc = rlab_reader_next(r, &s, &n, err)) == RLAB_OK && s) {
        /* walk blank-separated tokens without a field array: lines can hold thousands */
        size_t i = 0, nf = 0;
        int32_t u = -1;
        while (rc == RLAB_OK) {
            while (i < n && (s[i] == ' ' || s[i] == '\t'))
                i++;
            if (i >= n)
                break;
            rlab_field f = {s + i, 0};
            while (i < n && s[i] != ' ' && s[i] != '\t')
                i++;
            f.n = (size_t)(s + i - f.p);
            if (nf++ == 0) {
                rc = rlab_ld_int_id(&ds->users, &cu, r, f, "user id", &u, err);
                continue;
            }
            int32_t it;
            if ((rc = rlab_ld_int_id(&ds->items, &ci, r, f, "item id", &it, err)))
                break;
            int64_t *p = rlab_i64map_at(&pos, u);
            if (!p || rlab_inter_push(&ds->inter, u, it, (*p)++, 1.0f, NULL))
                rc = rlab_errf_at(err, RLAB_ENOMEM, r->name, r->line, "out of memory");
        }
        if (rc)
            break;
        if (nf == 1) {
            rc = rlab_errf_at(err, RLAB_EFORMAT, r->name, r->line,
                              "expected a user followed by at least one item, got 1 field");
            break;
        }
    }
    rlab_i64map_clear(&pos);
    rlab_idcache_clear(&cu);
    rlab_idcache_clear(&ci);
    if (rc == RLAB_OK && ds->inter.n == 0)
        rc = rlab_errf_at(err, RLAB_EFORMAT, r->name, 0,
                          "empty file, expected `user item item ...` lines");
    return rc;
}

/* The loaded file's sibling <stem>_item2attributes.json, when present. */
static int with_attrs(int rc, const char *path, rlab_dataset **out, rlab_err *err)
{
    if (rc == RLAB_OK && (rc = rlab_ld_attach_sibling_attrs(*out, path, err)) != RLAB_OK) {
        rlab_dataset_free(*out);
        *out = NULL;
    }
    return rc;
}

int rlab_load_sasrec(const char *path, const char *name, rlab_dataset **out, rlab_err *err)
{
    return with_attrs(rlab_ld_file(path, RLAB_READ_UTF8, name, "sasrec", rlab_ld_sasrec, out, err),
                      path, out, err);
}

int rlab_load_seqline(const char *path, const char *name, rlab_dataset **out, rlab_err *err)
{
    return with_attrs(
        rlab_ld_file(path, RLAB_READ_UTF8, name, "seqline", rlab_ld_seqline, out, err), path, out,
        err);
}
