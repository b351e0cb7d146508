/*
 * core/data/text: item text (titles, descriptions) to dense vectors.
 *
 * Pipeline: tokenize -> signed hashed bag of words in D buckets -> TF-IDF -> L2 normalise,
 * then an optional truncated SVD that reduces the n x D TF-IDF matrix to k dimensions
 * (content embeddings for DAS's semantic IDs, cold-start items, the CRS).
 *
 * Tokens: maximal runs of ASCII letters/digits and non-ASCII bytes (so every multi-byte
 * UTF-8 character stays inside its token: "Café Noir" -> "café", "noir"); ASCII is
 * lower-cased, non-ASCII bytes are kept as they are; every other ASCII byte separates.
 * Hashing: 64-bit FNV-1a of the token; bucket = h mod D, sign from bit 63 (the sign keeps
 * colliding tokens from adding up on average: Weinberger et al.'s feature hashing).
 * IDF (smooth, as scikit-learn): idf_j = ln((1 + N) / (1 + df_j)) + 1 over buckets.
 *
 *     rlab_tfidf tf;
 *     rlab_tfidf_fit(&tf, titles, n_items, 1024, &err);       // document frequencies
 *     float *X = malloc(n_items * 1024 * sizeof *X);
 *     rlab_tfidf_transform_many(&tf, titles, n_items, X);      // [n_items][1024], rows L2=1
 *     rlab_svd_truncated(X, n_items, 1024, 32, 8, 2, seed, U, S, NULL, &err); // top 32
 *     rlab_tfidf_clear(&tf);
 *
 * Matrices are row-major float. Determinism: single-threaded BLAS calls of fixed shapes
 * give the same result on the same machine. Functions are thread-safe on distinct outputs.
 */
#ifndef RLAB_DATA_TEXT_H
#define RLAB_DATA_TEXT_H

#include "base/base.h"
#include "data/table.h"

#include <stddef.h>
#include <stdint.h>

/* Next token of *cursor (a NUL-terminated UTF-8 string); advances *cursor past it. Writes
 * the lower-cased token to out (NUL-terminated, truncated to cap-1 bytes at a character
 * boundary; cap >= 8) and returns its full length in bytes before truncation, 0 when no
 * token is left. */
RLAB_API size_t rlab_text_next_token(const char **cursor, char *out, size_t cap);

/* 64-bit FNV-1a of a token's bytes. */
RLAB_API uint64_t rlab_text_hash(const char *tok, size_t len);

/* Signed hashed bag of words of text into out[D] (overwritten): out[h mod D] += sign(h)
 * per token occurrence. Returns the number of tokens. text may be NULL (empty). */
RLAB_API int32_t rlab_text_hash_bow(const char *text, int32_t D, float *out);

typedef struct rlab_tfidf {
    int32_t D;
    int32_t n_docs;
    float *idf; /* [D] owned */
} rlab_tfidf;

/* Fit the idf over n documents (NULL entries count as empty documents). D >= 1.
 * EINVAL, ENOMEM. */
RLAB_API int rlab_tfidf_fit(rlab_tfidf *m, const char *const *docs, int32_t n, int32_t D,
                            rlab_err *err);
RLAB_API void rlab_tfidf_clear(rlab_tfidf *m);
/* TF-IDF vector of one text into out[D], L2-normalised (an empty text gives zeros). */
RLAB_API void rlab_tfidf_transform(const rlab_tfidf *m, const char *text, float *out);
/* Rows of X[n][D] for n texts. */
RLAB_API void rlab_tfidf_transform_many(const rlab_tfidf *m, const char *const *docs, int32_t n,
                                        float *X);

/* Truncated SVD A ~= U diag(S) Vt of A[m][n] by a randomized range finder (Halko, Martinsson
 * & Tropp 2011): a Gaussian test matrix of k + oversample columns, n_iter power iterations
 * with re-orthonormalisation (modified Gram-Schmidt), then the small l x l problem B Bᵀ
 * (B = Qᵀ A) solved by cyclic Jacobi. Outputs (each may be NULL): U[m][k], S[k] descending
 * and >= 0, Vt[k][n]. Requires 1 <= k <= min(m, n). Singular values beyond the rank of A
 * come out as 0 with zero vectors. Seeded; EINVAL, ENOMEM. */
RLAB_API int rlab_svd_truncated(const float *A, int32_t m, int32_t n, int32_t k, int32_t oversample,
                                int32_t n_iter, uint64_t seed, float *U, float *S, float *Vt,
                                rlab_err *err);

/* Eigen-decomposition of a symmetric matrix A[n][n] (double, destroyed) by cyclic Jacobi:
 * eigenvalues in w[n] sorted descending, eigenvectors in the columns of V[n][n]. Exposed
 * for tests and small problems (n up to a few hundred). */
RLAB_API void rlab_sym_eigen(double *A, int32_t n, double *w, double *V);

/* Item content embeddings from a TEXT feature column: TF-IDF over D buckets of the n texts,
 * then the k-dim SVD projection U diag(S) into out[n][k]. EINVAL, ENOMEM. */
RLAB_API int rlab_text_embed(const rlab_feat_col *col, int32_t n, int32_t D, int32_t k,
                             uint64_t seed, float *out, rlab_err *err);

#endif /* RLAB_DATA_TEXT_H */
