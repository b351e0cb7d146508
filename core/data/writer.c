/*
 * core/data/writer: RecBole atomic files out (.inter, .item, .user), the inverse of
 * load_recbole so a dataset round-trips (see rlab_write_recbole in loaders.h).
 */
#include "data/loaders.h"
#include "data/tokenizer.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* Write s with the bytes that would break the format replaced: tab / CR / LF always become
 * a space; with blank_to_underscore, spaces become '_' too (token_seq values). */
static void put_clean(FILE *fp, const char *s, int blank_to_underscore)
{
    for (; *s; s++) {
        char c = *s;
        if (c == '\t' || c == '\n' || c == '\r')
            c = ' ';
        if (c == ' ' && blank_to_underscore)
            c = '_';
        fputc(c, fp);
    }
}

static void put_float(FILE *fp, float v)
{
    if (!isnan(v))
        fprintf(fp, "%.9g", (double)v); /* 9 significant digits round-trip a float */
}

static const char *type_of(rlab_feat_kind k)
{
    switch (k) {
    case RLAB_FEAT_TOKEN:
        return "token";
    case RLAB_FEAT_FLOAT:
        return "float";
    default:
        return "token_seq"; /* TOKEN_SEQ and TEXT */
    }
}

static FILE *open_out(const char *dir, const char *stem, const char *ext, char *path, size_t size,
                      rlab_err *err)
{
    char base[300];
    snprintf(base, sizeof base, "%s%s", stem, ext);
    if (rlab_ld_join(path, size, dir, base)) {
        rlab_errf(err, RLAB_EINVAL, "write: path too long");
        return NULL;
    }
    FILE *fp = fopen(path, "wb");
    if (!fp)
        rlab_errf_at(err, RLAB_EIO, path, 0, "cannot create: %s", strerror(errno));
    return fp;
}

static int close_out(FILE *fp, const char *path, rlab_err *err)
{
    int bad = ferror(fp);
    if (fclose(fp) != 0 || bad)
        return rlab_errf_at(err, RLAB_EIO, path, 0, "write failed: %s", strerror(errno));
    return RLAB_OK;
}

static int write_feats(const rlab_feats *f, const rlab_vocab *ents, const char *key,
                       const char *dir, const char *stem, const char *ext, rlab_err *err)
{
    char path[1100];
    FILE *fp = open_out(dir, stem, ext, path, sizeof path, err);
    if (!fp)
        return err ? err->code : RLAB_EIO;
    fprintf(fp, "%s:token", key);
    for (int c = 0; c < f->ncols; c++)
        fprintf(fp, "\t%s:%s", f->cols[c].name, type_of(f->cols[c].kind));
    fputc('\n', fp);
    int32_t n = f->n_entities < ents->n ? f->n_entities : ents->n;
    for (int32_t e = 0; e < n; e++) {
        put_clean(fp, ents->names[e], 0);
        for (int c = 0; c < f->ncols; c++) {
            const rlab_feat_col *col = &f->cols[c];
            fputc('\t', fp);
            if (col->kind == RLAB_FEAT_TOKEN) {
                if (col->tok[e] >= 0)
                    put_clean(fp, col->vocab.names[col->tok[e]], 0);
            } else if (col->kind == RLAB_FEAT_FLOAT) {
                put_float(fp, col->num[e]);
            } else if (col->kind == RLAB_FEAT_TEXT) {
                if (col->text[e])
                    put_clean(fp, col->text[e], 0);
            } else {
                for (int64_t k = col->off[e]; k < col->off[e + 1]; k++) {
                    if (k > col->off[e])
                        fputc(' ', fp);
                    put_clean(fp, col->vocab.names[col->seq[k]], 1);
                }
            }
        }
        fputc('\n', fp);
    }
    return close_out(fp, path, err);
}

int rlab_write_recbole(const rlab_dataset *ds, const char *dir, const char *stem, rlab_err *err)
{
    char path[1100];
    FILE *fp = open_out(dir, stem, ".inter", path, sizeof path, err);
    if (!fp)
        return err ? err->code : RLAB_EIO;
    setvbuf(fp, NULL, _IOFBF, 1 << 16);
    const rlab_inter *t = &ds->inter;
    int has_rating = (t->flags & RLAB_INTER_HAS_RATING) != 0;
    fputs("user_id:token\titem_id:token", fp);
    if (has_rating)
        fputs("\trating:float", fp);
    fputs("\ttimestamp:float", fp);
    for (int k = 0; k < t->nlabels; k++)
        fprintf(fp, "\t%s:float", t->label_names[k]);
    fputc('\n', fp);
    for (size_t i = 0; i < t->n; i++) {
        put_clean(fp, ds->users.names[t->user[i]], 0);
        fputc('\t', fp);
        put_clean(fp, ds->items.names[t->item[i]], 0);
        if (has_rating) {
            fputc('\t', fp);
            put_float(fp, t->rating[i]);
        }
        fprintf(fp, "\t%lld", (long long)t->ts[i]);
        for (int k = 0; k < t->nlabels; k++) {
            fputc('\t', fp);
            put_float(fp, t->labels[k][i]);
        }
        fputc('\n', fp);
    }
    int rc = close_out(fp, path, err);
    if (rc == RLAB_OK && ds->item_feats.ncols > 0)
        rc = write_feats(&ds->item_feats, &ds->items, "item_id", dir, stem, ".item", err);
    if (rc == RLAB_OK && ds->user_feats.ncols > 0)
        rc = write_feats(&ds->user_feats, &ds->users, "user_id", dir, stem, ".user", err);
    return rc;
}
