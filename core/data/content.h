/*
 * core/data/content: fixed-size content vectors of items from their feature table, the input
 * of semantic-ID tokenizers (plugins/semid), cold-start items and content recommenders.
 *
 * One vector of dim = tok_dim + text_dim floats per item, in two blocks:
 *
 *   tokens  [tok_dim]   multi-hot of the item's categorical values (every TOKEN_SEQ column:
 *                       ML genres, Amazon brand + categories "attributes"; TOKEN columns
 *                       only when named in cols), each value "<column>=<value>" hashed
 *                       (64-bit FNV-1a) into a bucket, the block L2-normalised
 *   text    [text_dim]  TF-IDF of the TEXT columns (titles) over text_dim hashed buckets
 *                       (data/text.h rlab_tfidf: signed feature hashing, smooth idf),
 *                       L2-normalised, times text_weight
 *
 * An item without values in a block has zeros there. When tok_dim covers the number of
 * distinct values, buckets are exact (a value's bucket is its order of first appearance, not
 * its hash), so ML-100K's 19 genres are 19 exact one-hot columns.
 *
 *     rlab_content_opts o = rlab_content_defaults();   // 64 token + 64 text dims
 *     float *X = NULL; int32_t dim = 0;
 *     if (rlab_item_content(ds, &o, &X, &dim, &err)) ...  // X [n_items][dim]
 *     rlab_free(X);
 *
 * Deterministic (no randomness); thread-safe on distinct outputs.
 */
#ifndef RLAB_DATA_CONTENT_H
#define RLAB_DATA_CONTENT_H

#include "base/base.h"
#include "data/table.h"

typedef struct rlab_content_opts {
    int32_t tok_dim;   /* buckets of the categorical block (0 = no such block) */
    int32_t text_dim;  /* buckets of the text block (0 = no text) */
    float text_weight; /* scale of the text block after normalisation */
    /* Comma-separated column names to use ("genres,title"); NULL or "" = every TOKEN_SEQ
     * and TEXT column. A named column that does not exist is an error. */
    const char *cols;
} rlab_content_opts;

/* tok_dim 64, text_dim 64, text_weight 0.5, cols NULL. */
RLAB_API rlab_content_opts rlab_content_defaults(void);

/* Content vectors of every item of ds (rows indexed by the dataset's dense item index, n =
 * rlab_vocab_size(&ds->items)) into a new array *out [n][*dim] (rlab_free it). Items beyond
 * the feature table's rows get zeros. RLAB_EINVAL when dim would be 0, a named column is
 * missing or of a kind without a vector form (FLOAT), or the dataset has no usable column
 * ("dataset 'x' has no item features to build content vectors from"); RLAB_ENOMEM. */
RLAB_API int rlab_item_content(const rlab_dataset *ds, const rlab_content_opts *o, float **out,
                               int32_t *dim, rlab_err *err);

#endif /* RLAB_DATA_CONTENT_H */
