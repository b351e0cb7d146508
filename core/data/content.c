/*
 * core/data/content: item content vectors (see content.h).
 */
#include "data/content.h"
#include "data/text.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

rlab_content_opts rlab_content_defaults(void)
{
    return (rlab_content_opts){.tok_dim = 64, .text_dim = 64, .text_weight = 0.5f, .cols = NULL};
}

/* 1 when column name is listed in the comma-separated cols. */
static int listed(const char *cols, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = cols; *p;) {
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        while (l && *p == ' ')
            p++, l--;
        while (l && p[l - 1] == ' ')
            l--;
        if (l == n && memcmp(p, name, n) == 0)
            return 1;
        if (!e)
            break;
        p = e + 1;
    }
    return 0;
}

static void l2_normalise(float *x, int32_t n, float scale)
{
    double s = 0.0;
    for (int32_t i = 0; i < n; i++)
        s += (double)x[i] * (double)x[i];
    if (s <= 0.0)
        return;
    float f = (float)((double)scale / sqrt(s));
    for (int32_t i = 0; i < n; i++)
        x[i] *= f;
}

int rlab_item_content(const rlab_dataset *ds, const rlab_content_opts *o, float **out, int32_t *dim,
                      rlab_err *err)
{
    *out = NULL;
    *dim = 0;
    const rlab_feats *f = &ds->item_feats;
    const int use_all = !o->cols || !o->cols[0];
    if (o->tok_dim < 0 || o->text_dim < 0 || o->tok_dim + o->text_dim < 1)
        return rlab_errf(err, RLAB_EINVAL, "content vectors: tok_dim + text_dim must be >= 1");
    /* named columns must exist and have a vector form */
    if (!use_all) {
        for (const char *p = o->cols; *p;) {
            const char *e = strchr(p, ',');
            size_t l = e ? (size_t)(e - p) : strlen(p);
            char name[64];
            snprintf(name, sizeof name, "%.*s", (int)l, p);
            const rlab_feat_col *c = rlab_feats_find(f, name);
            if (!c)
                return rlab_errf(err, RLAB_EINVAL,
                                 "dataset '%s' has no item feature '%s' (content columns)",
                                 ds->name, name);
            if (c->kind == RLAB_FEAT_FLOAT)
                return rlab_errf(err, RLAB_EINVAL,
                                 "item feature '%s' is numeric: content vectors take token, "
                                 "token-list and text columns",
                                 name);
            if (!e)
                break;
            p = e + 1;
        }
    }
    const int32_t n = rlab_vocab_size(&ds->items);
    const int32_t nf = f->n_entities < n ? f->n_entities : n;
    const int32_t T = o->tok_dim, D = o->text_dim, W = T + D;
    /* which columns, and whether the categorical values fit exactly */
    int64_t n_values = 0;
    int n_tok = 0, n_text = 0;
    for (int c = 0; c < f->ncols; c++) {
        const rlab_feat_col *col = &f->cols[c];
        int use = use_all ? (col->kind == RLAB_FEAT_TOKEN_SEQ || col->kind == RLAB_FEAT_TEXT)
                          : listed(o->cols, col->name);
        if (!use)
            continue;
        if (col->kind == RLAB_FEAT_TEXT)
            n_text++;
        else if (col->kind == RLAB_FEAT_TOKEN || col->kind == RLAB_FEAT_TOKEN_SEQ) {
            n_tok++;
            n_values += rlab_vocab_size(&col->vocab);
        }
    }
    if ((n_tok == 0 || T == 0) && (n_text == 0 || D == 0))
        return rlab_errf(err, RLAB_EINVAL,
                         "dataset '%s' has no item features to build content vectors from "
                         "(token lists such as genres or attributes, or titles)",
                         ds->name);
    float *X = rlab_calloc((size_t)(n ? n : 1) * (size_t)W, sizeof *X);
    if (!X)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    const int exact = n_values <= T;
    /* categorical block */
    int64_t base = 0;
    for (int c = 0; T > 0 && c < f->ncols; c++) {
        const rlab_feat_col *col = &f->cols[c];
        int use = use_all ? col->kind == RLAB_FEAT_TOKEN_SEQ : listed(o->cols, col->name);
        if (!use || (col->kind != RLAB_FEAT_TOKEN && col->kind != RLAB_FEAT_TOKEN_SEQ))
            continue;
        /* bucket of every value of this column */
        int32_t nv = rlab_vocab_size(&col->vocab);
        int32_t *bucket = rlab_malloc((size_t)(nv ? nv : 1) * sizeof *bucket);
        if (!bucket) {
            rlab_free(X);
            return rlab_errf(err, RLAB_ENOMEM, "out of memory");
        }
        for (int32_t v = 0; v < nv; v++) {
            if (exact) {
                bucket[v] = (int32_t)(base + v);
                continue;
            }
            char key[256];
            int l = snprintf(key, sizeof key, "%s=%s", col->name, rlab_vocab_name(&col->vocab, v));
            size_t kl = l < 0 ? 0 : ((size_t)l < sizeof key ? (size_t)l : sizeof key - 1);
            bucket[v] = (int32_t)(rlab_text_hash(key, kl) % (uint64_t)T);
        }
        base += nv;
        for (int32_t i = 0; i < nf; i++) {
            float *x = X + (size_t)i * W;
            if (col->kind == RLAB_FEAT_TOKEN) {
                if (col->tok[i] >= 0)
                    x[bucket[col->tok[i]]] = 1.0f;
            } else {
                for (int64_t k = col->off[i]; k < col->off[i + 1]; k++)
                    x[bucket[col->seq[k]]] = 1.0f;
            }
        }
        rlab_free(bucket);
    }
    /* text block: every text column's TF-IDF vector, summed */
    if (D > 0 && n_text > 0) {
        const char **docs = rlab_malloc((size_t)(nf ? nf : 1) * sizeof *docs);
        float *row = rlab_malloc((size_t)D * sizeof *row);
        rlab_tfidf tf = {0};
        int rc = (!docs || !row) ? rlab_errf(err, RLAB_ENOMEM, "out of memory") : RLAB_OK;
        for (int c = 0; rc == RLAB_OK && c < f->ncols; c++) {
            const rlab_feat_col *col = &f->cols[c];
            if (col->kind != RLAB_FEAT_TEXT || (!use_all && !listed(o->cols, col->name)))
                continue;
            for (int32_t i = 0; i < nf; i++)
                docs[i] = col->text[i];
            if ((rc = rlab_tfidf_fit(&tf, docs, nf, D, err)))
                break;
            for (int32_t i = 0; i < nf; i++) {
                rlab_tfidf_transform(&tf, docs[i], row);
                float *x = X + (size_t)i * W + T;
                for (int32_t j = 0; j < D; j++)
                    x[j] += row[j];
            }
            rlab_tfidf_clear(&tf);
        }
        rlab_free(docs);
        rlab_free(row);
        if (rc) {
            rlab_free(X);
            return rc;
        }
    }
    for (int32_t i = 0; i < n; i++) {
        if (T > 0)
            l2_normalise(X + (size_t)i * W, T, 1.0f);
        if (D > 0)
            l2_normalise(X + (size_t)i * W + T, D, o->text_weight);
    }
    *out = X;
    *dim = W;
    return RLAB_OK;
}
