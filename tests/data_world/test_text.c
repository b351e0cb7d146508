/*
 * Test organization: data.text.* text to vectors.
 *   .1 tokenizer (case, separators, UTF-8 kept whole, truncation at a character boundary)
 *   .2 TF-IDF: identical texts identical, shared words closer than disjoint, idf values
 *   .3 Jacobi eigen on hand-computed matrices
 *   .4 truncated SVD of a known low-rank matrix vs an independent power iteration on AᵀA
 *   .5 item embeddings from a TEXT column (world titles)
 */
#include "data/text.h"
#include "data/world.h"
#include "harness.h"

#include <stdlib.h>
#include <string.h>

static void t_tokens(void)
{
    const char *cur = "Café Noir: The BEST-2nd!! 東京";
    char tok[64];
    const char *want[] = {"café", "noir", "the", "best", "2nd", "東京"};
    for (int k = 0; k < 6; k++) {
        size_t n = rlab_text_next_token(&cur, tok, sizeof tok);
        CHECK_EQ_INT(n, strlen(want[k]));
        CHECK_MSG(strcmp(tok, want[k]) == 0, "token %d: '%s' != '%s'", k, tok, want[k]);
    }
    CHECK_EQ_INT(rlab_text_next_token(&cur, tok, sizeof tok), 0);
    CHECK_EQ_INT(rlab_text_next_token(&cur, tok, sizeof tok), 0);
    /* truncation: "abcdeé" is 7 bytes; cap 8 keeps all, cap 7 must drop the partial é */
    cur = "abcdeé";
    CHECK_EQ_INT(rlab_text_next_token(&cur, tok, 8), 7);
    CHECK(strcmp(tok, "abcdeé") == 0);
    cur = "abcdeé";
    CHECK_EQ_INT(rlab_text_next_token(&cur, tok, 7), 7);
    CHECK(strcmp(tok, "abcde") == 0);
    /* hashing is FNV-1a 64: the offset basis for the empty string, a known value for "a" */
    CHECK(rlab_text_hash("", 0) == 14695981039346656037ull);
    CHECK(rlab_text_hash("a", 1) == 0xaf63dc4c8601ec8cull);
    float bow[16];
    CHECK_EQ_INT(rlab_text_hash_bow("the THE the", 16, bow), 3);
    float s = 0;
    for (int j = 0; j < 16; j++)
        s += fabsf(bow[j]);
    CHECK_NEAR(s, 3.0, 0); /* one bucket, |3| */
    CHECK_EQ_INT(rlab_text_hash_bow(NULL, 16, bow), 0);
}

static double dot(const float *a, const float *b, int n)
{
    double d = 0;
    for (int i = 0; i < n; i++)
        d += (double)a[i] * (double)b[i];
    return d;
}

static void t_tfidf(void)
{
    const char *docs[] = {
        "The Silent River",     "The silent river", "Silent River of the Golden Storm",
        "Electric Wolf Circus", "the the the",      NULL,
    };
    enum { D = 512, N = 6 };
    rlab_err err = {0};
    rlab_tfidf tf;
    CHECK_EQ_INT(rlab_tfidf_fit(&tf, docs, N, D, &err), RLAB_OK);
    float X[N][D];
    rlab_tfidf_transform_many(&tf, docs, N, &X[0][0]);
    /* identical titles (up to case) give identical vectors, unit length */
    CHECK(memcmp(X[0], X[1], sizeof X[0]) == 0);
    CHECK_NEAR(dot(X[0], X[0], D), 1.0, 1e-5);
    /* shared words: higher cosine than disjoint */
    double c_shared = dot(X[0], X[2], D), c_disjoint = dot(X[0], X[3], D);
    CHECK_MSG(c_shared > 0.3 && fabs(c_disjoint) < 0.05, "shared %.3f, disjoint %.3f", c_shared,
              c_disjoint);
    /* empty document -> zero vector */
    CHECK_NEAR(dot(X[5], X[5], D), 0.0, 0);
    /* idf: "the" occurs in docs 0,1,2,4 -> ln(7/5) + 1; "wolf" in one doc -> ln(7/2) + 1 */
    uint64_t h_the = rlab_text_hash("the", 3), h_wolf = rlab_text_hash("wolf", 4);
    CHECK_NEAR(tf.idf[h_the % D], log(7.0 / 5.0) + 1.0, 1e-5);
    CHECK_NEAR(tf.idf[h_wolf % D], log(7.0 / 2.0) + 1.0, 1e-5);
    /* an unused bucket has the maximal idf ln(7) + 1 */
    int unused = -1;
    for (int j = 0; j < D && unused < 0; j++) {
        int used = 0;
        for (int d = 0; d < N; d++)
            used |= X[d][j] > 0.0f || X[d][j] < 0.0f;
        if (!used)
            unused = j;
    }
    CHECK(unused >= 0 && fabs((double)tf.idf[unused] - (log(7.0) + 1.0)) < 1e-5);
    rlab_tfidf_clear(&tf);
    CHECK_EQ_INT(rlab_tfidf_fit(&tf, docs, N, 0, &err), RLAB_EINVAL);
}

static void t_eigen(void)
{
    /* [[2,1],[1,2]]: eigenvalues 3 and 1, eigenvectors (1,1)/√2 and (1,-1)/√2 */
    double A[4] = {2, 1, 1, 2}, w[2], V[4];
    rlab_sym_eigen(A, 2, w, V);
    CHECK_NEAR(w[0], 3.0, 1e-12);
    CHECK_NEAR(w[1], 1.0, 1e-12);
    CHECK_NEAR(fabs(V[0]), sqrt(0.5), 1e-12);
    CHECK_NEAR(V[0] * V[2], 0.5, 1e-12); /* same sign in column 0 */
    /* diag(1, 5, 3) with a rotation applied: eigenvalues sorted 5, 3, 1 */
    double c = cos(0.3), s = sin(0.3);
    double R[9] = {c, -s, 0, s, c, 0, 0, 0, 1}, Dg[3] = {1, 5, 3}, B[9];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) {
            B[i * 3 + j] = 0;
            for (int k = 0; k < 3; k++)
                B[i * 3 + j] += R[i * 3 + k] * Dg[k] * R[j * 3 + k];
        }
    double w3[3], V3[9];
    rlab_sym_eigen(B, 3, w3, V3);
    CHECK_NEAR(w3[0], 5.0, 1e-12);
    CHECK_NEAR(w3[1], 3.0, 1e-12);
    CHECK_NEAR(w3[2], 1.0, 1e-12);
}

/* Independent reference: singular values by power iteration with deflation on AᵀA, all in
 * double, naive loops. */
static void ref_singular_values(const float *A, int m, int n, int k, double *sv)
{
    double *M = calloc((size_t)n * n, sizeof *M), *v = malloc((size_t)n * sizeof *v),
           *y = malloc((size_t)n * sizeof *y);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            for (int r = 0; r < m; r++)
                M[i * n + j] += (double)A[r * n + i] * (double)A[r * n + j];
    for (int q = 0; q < k; q++) {
        for (int i = 0; i < n; i++)
            v[i] = 1.0 / (1.0 + i + q);
        double lam = 0;
        for (int it = 0; it < 3000; it++) {
            double nn = 0;
            for (int i = 0; i < n; i++) {
                y[i] = 0;
                for (int j = 0; j < n; j++)
                    y[i] += M[i * n + j] * v[j];
                nn += y[i] * y[i];
            }
            nn = sqrt(nn);
            if (!(nn > 0))
                break;
            for (int i = 0; i < n; i++)
                v[i] = y[i] / nn;
            lam = nn;
        }
        sv[q] = sqrt(lam);
        for (int i = 0; i < n; i++) /* deflate */
            for (int j = 0; j < n; j++)
                M[i * n + j] -= lam * v[i] * v[j];
    }
    free(M);
    free(v);
    free(y);
}

static void t_svd(void)
{
    enum { M = 80, N = 50, R = 5 };
    /* A = X diag(scale) Y with random Gaussian X[M][R], Y[R][N]: rank R, spread spectrum */
    static float A[M * N];
    float X[M * R], Y[R * N];
    const float scale[R] = {20, 10, 6, 3, 1};
    rlab_rng r;
    rlab_rng_seed(&r, 11);
    for (int i = 0; i < M * R; i++)
        X[i] = rlab_rng_normal(&r);
    for (int i = 0; i < R * N; i++)
        Y[i] = rlab_rng_normal(&r);
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double d = 0;
            for (int q = 0; q < R; q++)
                d += (double)X[i * R + q] * (double)scale[q] * (double)Y[q * N + j];
            A[i * N + j] = (float)d;
        }
    double ref[R];
    ref_singular_values(A, M, N, R, ref);
    printf("  reference singular values: %.4f %.4f %.4f %.4f %.4f\n", ref[0], ref[1], ref[2],
           ref[3], ref[4]);
    enum { K = 7 };
    float U[M * K], S[K], Vt[K * N];
    rlab_err err = {0};
    CHECK_EQ_INT(rlab_svd_truncated(A, M, N, K, 5, 2, 1, U, S, Vt, &err), RLAB_OK);
    for (int q = 0; q < R; q++)
        CHECK_MSG(fabs((double)S[q] - ref[q]) < 1e-4 * ref[q], "S[%d] = %.5f, ref %.5f", q,
                  (double)S[q], ref[q]);
    /* beyond the rank: (near) zero */
    CHECK((double)S[5] < 1e-3 * ref[0] && (double)S[6] < 1e-3 * ref[0]);
    /* U columns orthonormal, reconstruction U S Vt == A */
    for (int a = 0; a < R; a++)
        for (int b = 0; b < R; b++) {
            double d = 0;
            for (int i = 0; i < M; i++)
                d += (double)U[i * K + a] * (double)U[i * K + b];
            CHECK_NEAR(d, a == b ? 1.0 : 0.0, 1e-4);
        }
    double err2 = 0, nrm = 0;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double d = 0;
            for (int q = 0; q < K; q++)
                d += (double)U[i * K + q] * (double)S[q] * (double)Vt[q * N + j];
            err2 += (d - (double)A[i * N + j]) * (d - (double)A[i * N + j]);
            nrm += (double)A[i * N + j] * (double)A[i * N + j];
        }
    CHECK_MSG(sqrt(err2 / nrm) < 1e-4, "relative reconstruction error %.2e", sqrt(err2 / nrm));
    /* truncating to k = 2 keeps the two leading values */
    float S2[2];
    CHECK_EQ_INT(rlab_svd_truncated(A, M, N, 2, 8, 2, 3, NULL, S2, NULL, &err), RLAB_OK);
    CHECK_NEAR(S2[0], ref[0], 1e-3 * ref[0]);
    CHECK_NEAR(S2[1], ref[1], 1e-3 * ref[0]);
    CHECK_EQ_INT(rlab_svd_truncated(A, M, N, 51, 0, 0, 1, NULL, S2, NULL, &err), RLAB_EINVAL);
}

static void t_embed(void)
{
    rlab_err err = {0};
    rlab_world *w;
    rlab_dataset *ds;
    rlab_world_config c;
    rlab_world_config_default(&c);
    CHECK_EQ_INT(rlab_world_generate(&c, "t", &w, &ds, &err), RLAB_OK);
    rlab_feat_col *col = rlab_feats_find(&ds->item_feats, "title");
    int32_t n = ds->item_feats.n_entities;
    enum { K = 16 };
    float *E = malloc((size_t)n * K * sizeof *E);
    CHECK_EQ_INT(rlab_text_embed(col, n, 256, K, 7, E, &err), RLAB_OK);
    /* pairs of titles sharing a content word are closer on average than pairs sharing
     * none (stop words "the", "of", "and" ignored) */
    double sum_share = 0, sum_disj = 0;
    long n_share = 0, n_disj = 0;
    for (int32_t i = 0; i < n; i++)
        for (int32_t j = i + 1; j < n; j++) {
            int share = 0;
            const char *cur = col->text[i];
            char t1[64], t2[64];
            while (rlab_text_next_token(&cur, t1, sizeof t1)) {
                if (strcmp(t1, "the") == 0 || strcmp(t1, "of") == 0 || strcmp(t1, "and") == 0)
                    continue;
                const char *cur2 = col->text[j];
                while (rlab_text_next_token(&cur2, t2, sizeof t2))
                    share |= strcmp(t1, t2) == 0;
            }
            double na = dot(E + i * K, E + i * K, K), nb = dot(E + j * K, E + j * K, K);
            double cs = (na > 0 && nb > 0) ? dot(E + i * K, E + j * K, K) / sqrt(na * nb) : 0;
            if (share) {
                sum_share += cs;
                n_share++;
            } else {
                sum_disj += cs;
                n_disj++;
            }
        }
    printf("  embedding cosine: %ld pairs sharing a word %.3f, %ld disjoint pairs %.3f\n", n_share,
           sum_share / (double)n_share, n_disj, sum_disj / (double)n_disj);
    CHECK(n_share > 50 && n_disj > 1000);
    CHECK(sum_share / (double)n_share > sum_disj / (double)n_disj + 0.15);
    rlab_feat_col *bad = rlab_feats_find(&ds->item_feats, "year");
    CHECK_EQ_INT(rlab_text_embed(bad, n, 256, K, 7, E, &err), RLAB_EINVAL);
    free(E);
    rlab_world_free(w);
    rlab_dataset_free(ds);
}

static const rlab_test tests[] = {
    {"data.text.1", t_tokens}, {"data.text.2", t_tfidf}, {"data.text.3", t_eigen},
    {"data.text.4", t_svd},    {"data.text.5", t_embed}, {NULL, NULL},
};

int main(int argc, char **argv) { return rlab_test_main(argc, argv, tests); }
