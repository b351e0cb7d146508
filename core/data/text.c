/*
 * core/data/text: tokenizer, signed feature hashing, TF-IDF and a randomized truncated SVD
 * (sgemm for the big products; Gram-Schmidt and Jacobi in double for the small ones).
 * See text.h.
 */
#include "data/text.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

/* ---- tokens -------------------------------------------------------------------------- */
static int is_tok_byte(unsigned char c)
{
    return c >= 0x80 || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

size_t rlab_text_next_token(const char **cursor, char *out, size_t cap)
{
    const unsigned char *p = (const unsigned char *)*cursor;
    while (*p && !is_tok_byte(*p))
        p++;
    size_t len = 0, w = 0;
    while (*p && is_tok_byte(*p)) {
        unsigned char c = *p++;
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c - 'A' + 'a');
        if (w + 1 < cap)
            out[w++] = (char)c;
        len++;
    }
    if (w < len && w > 0) {
        /* Truncated: drop a partial UTF-8 character at the end. Back up to the start of the
         * last character and keep it only if all its bytes fit. */
        size_t s = w;
        while (s > 0 && ((unsigned char)out[s - 1] & 0xC0) == 0x80)
            s--;
        if (s > 0) {
            unsigned char lead = (unsigned char)out[s - 1];
            size_t need = lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
            if (w - (s - 1) < need)
                w = s - 1;
        }
    }
    if (cap > 0)
        out[w] = '\0';
    *cursor = (const char *)p;
    return len;
}

uint64_t rlab_text_hash(const char *tok, size_t len)
{
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)tok[i];
        h *= 1099511628211ull;
    }
    return h;
}

int32_t rlab_text_hash_bow(const char *text, int32_t D, float *out)
{
    memset(out, 0, (size_t)D * sizeof *out);
    if (!text)
        return 0;
    char tok[256];
    int32_t n = 0;
    const char *cur = text;
    while (rlab_text_next_token(&cur, tok, sizeof tok) > 0) {
        uint64_t h = rlab_text_hash(tok, strlen(tok));
        out[h % (uint64_t)D] += (h >> 63) ? -1.0f : 1.0f;
        n++;
    }
    return n;
}

/* ---- TF-IDF -------------------------------------------------------------------------- */
int rlab_tfidf_fit(rlab_tfidf *m, const char *const *docs, int32_t n, int32_t D, rlab_err *err)
{
    memset(m, 0, sizeof *m);
    if (D < 1 || n < 0)
        return rlab_errf(err, RLAB_EINVAL, "tfidf: need D >= 1 and n >= 0 (got %d, %d)", (int)D,
                         (int)n);
    m->idf = rlab_malloc((size_t)D * sizeof *m->idf);
    float *bow = rlab_malloc((size_t)D * sizeof *bow);
    int32_t *df = rlab_calloc((size_t)D, sizeof *df);
    if (!m->idf || !bow || !df) {
        rlab_free(bow);
        rlab_free(df);
        rlab_tfidf_clear(m);
        return rlab_errf(err, RLAB_ENOMEM, "tfidf: out of memory");
    }
    /* Document frequency per bucket: a bucket counts when any token hashed into it (even if
     * signed contributions cancel). */
    char tok[256];
    for (int32_t d = 0; d < n; d++) {
        if (!docs[d])
            continue;
        memset(bow, 0, (size_t)D * sizeof *bow);
        const char *cur = docs[d];
        while (rlab_text_next_token(&cur, tok, sizeof tok) > 0) {
            uint64_t h = rlab_text_hash(tok, strlen(tok));
            bow[h % (uint64_t)D] = 1.0f;
        }
        for (int32_t j = 0; j < D; j++)
            df[j] += bow[j] > 0.0f;
    }
    for (int32_t j = 0; j < D; j++)
        m->idf[j] = (float)(log((1.0 + n) / (1.0 + df[j])) + 1.0);
    m->D = D;
    m->n_docs = n;
    rlab_free(bow);
    rlab_free(df);
    return RLAB_OK;
}

void rlab_tfidf_clear(rlab_tfidf *m)
{
    if (!m)
        return;
    rlab_free(m->idf);
    memset(m, 0, sizeof *m);
}

void rlab_tfidf_transform(const rlab_tfidf *m, const char *text, float *out)
{
    rlab_text_hash_bow(text, m->D, out);
    double ss = 0.0;
    for (int32_t j = 0; j < m->D; j++) {
        out[j] *= m->idf[j];
        ss += (double)out[j] * (double)out[j];
    }
    if (ss > 0.0) {
        float inv = (float)(1.0 / sqrt(ss));
        for (int32_t j = 0; j < m->D; j++)
            out[j] *= inv;
    }
}

void rlab_tfidf_transform_many(const rlab_tfidf *m, const char *const *docs, int32_t n, float *X)
{
    for (int32_t d = 0; d < n; d++)
        rlab_tfidf_transform(m, docs[d], X + (size_t)d * (size_t)m->D);
}

/* ---- small dense linear algebra ------------------------------------------------------ */
void rlab_sym_eigen(double *A, int32_t n, double *w, double *V)
{
    for (int32_t i = 0; i < n; i++)
        for (int32_t j = 0; j < n; j++)
            V[(size_t)i * n + j] = i == j ? 1.0 : 0.0;
#define AT(i, j) A[(size_t)(i) * (size_t)n + (size_t)(j)]
    for (int sweep = 0; sweep < 100; sweep++) {
        double off = 0.0, tot = 0.0;
        for (int32_t i = 0; i < n; i++)
            for (int32_t j = 0; j < n; j++) {
                tot += AT(i, j) * AT(i, j);
                if (i != j)
                    off += AT(i, j) * AT(i, j);
            }
        if (off <= 1e-30 * tot || !(off > 0.0))
            break;
        for (int32_t p = 0; p < n - 1; p++) {
            for (int32_t q = p + 1; q < n; q++) {
                double apq = AT(p, q);
                if (fabs(apq) < 1e-300)
                    continue;
                /* Rotation that zeroes A[p][q] (Rutishauser's stable form). */
                double theta = (AT(q, q) - AT(p, p)) / (2.0 * apq);
                double t = fabs(theta) > 1e150 ? 0.5 / theta
                                               : (theta >= 0 ? 1.0 : -1.0) /
                                                     (fabs(theta) + sqrt(theta * theta + 1.0));
                double c = 1.0 / sqrt(t * t + 1.0), s = t * c;
                for (int32_t k = 0; k < n; k++) { /* columns p, q: A <- A P */
                    double akp = AT(k, p), akq = AT(k, q);
                    AT(k, p) = c * akp - s * akq;
                    AT(k, q) = s * akp + c * akq;
                }
                for (int32_t k = 0; k < n; k++) { /* rows p, q: A <- Pᵀ A */
                    double apk = AT(p, k), aqk = AT(q, k);
                    AT(p, k) = c * apk - s * aqk;
                    AT(q, k) = s * apk + c * aqk;
                }
                for (int32_t k = 0; k < n; k++) { /* V <- V P */
                    double vkp = V[(size_t)k * n + p], vkq = V[(size_t)k * n + q];
                    V[(size_t)k * n + p] = c * vkp - s * vkq;
                    V[(size_t)k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    for (int32_t i = 0; i < n; i++)
        w[i] = AT(i, i);
#undef AT
    /* selection sort, descending, permuting the eigenvector columns alongside */
    for (int32_t i = 0; i < n; i++) {
        int32_t best = i;
        for (int32_t j = i + 1; j < n; j++)
            if (w[j] > w[best])
                best = j;
        if (best != i) {
            double tw = w[i];
            w[i] = w[best];
            w[best] = tw;
            for (int32_t k = 0; k < n; k++) {
                double tv = V[(size_t)k * n + i];
                V[(size_t)k * n + i] = V[(size_t)k * n + best];
                V[(size_t)k * n + best] = tv;
            }
        }
    }
}

/* Orthonormalise the l columns of Y[m][l] in place (modified Gram-Schmidt, twice for
 * stability, in double). Columns that vanish (dependent) become zero. tmp: m*l doubles. */
static void orthonormalise(float *Y, int32_t m, int32_t l, double *tmp)
{
    /* tmp holds the columns contiguously: tmp[j*m + i] = Y[i][j] */
    for (int32_t i = 0; i < m; i++)
        for (int32_t j = 0; j < l; j++)
            tmp[(size_t)j * m + i] = Y[(size_t)i * l + j];
    for (int32_t j = 0; j < l; j++) {
        double *qj = tmp + (size_t)j * m;
        double n0 = 0.0;
        for (int32_t i = 0; i < m; i++)
            n0 += qj[i] * qj[i];
        for (int pass = 0; pass < 2; pass++) {
            for (int32_t r = 0; r < j; r++) {
                const double *qr = tmp + (size_t)r * m;
                double d = 0.0;
                for (int32_t i = 0; i < m; i++)
                    d += qr[i] * qj[i];
                for (int32_t i = 0; i < m; i++)
                    qj[i] -= d * qr[i];
            }
        }
        double nn = 0.0;
        for (int32_t i = 0; i < m; i++)
            nn += qj[i] * qj[i];
        /* relative drop to ~ float epsilon means the column was in the span already */
        double scale = (nn > 1e-10 * n0 && nn > 0.0) ? 1.0 / sqrt(nn) : 0.0;
        for (int32_t i = 0; i < m; i++)
            qj[i] *= scale;
    }
    for (int32_t i = 0; i < m; i++)
        for (int32_t j = 0; j < l; j++)
            Y[(size_t)i * l + j] = (float)tmp[(size_t)j * m + i];
}

int rlab_svd_truncated(const float *A, int32_t m, int32_t n, int32_t k, int32_t oversample,
                       int32_t n_iter, uint64_t seed, float *U, float *S, float *Vt, rlab_err *err)
{
    int32_t mn = m < n ? m : n;
    if (m < 1 || n < 1 || k < 1 || k > mn || oversample < 0 || n_iter < 0)
        return rlab_errf(err, RLAB_EINVAL,
                         "svd: need 1 <= k <= min(m, n) (k=%d, m=%d, n=%d), oversample, "
                         "n_iter >= 0",
                         (int)k, (int)m, (int)n);
    int32_t l = k + oversample < mn ? k + oversample : mn;
    size_t big = (size_t)(m > n ? m : n);
    float *Om = rlab_malloc((size_t)n * l * sizeof *Om); /* [n][l] Gaussian test matrix */
    float *Y = rlab_malloc((size_t)m * l * sizeof *Y);   /* [m][l] range basis Q */
    float *Z = rlab_malloc((size_t)n * l * sizeof *Z);   /* [n][l] co-range basis */
    float *B = rlab_malloc((size_t)l * n * sizeof *B);   /* [l][n] = Qᵀ A */
    double *tmp = rlab_malloc(big * (size_t)l * sizeof *tmp);
    double *C = rlab_malloc((size_t)l * l * sizeof *C); /* [l][l] = B Bᵀ */
    double *W = rlab_malloc((size_t)l * l * sizeof *W);
    double *ev = rlab_malloc((size_t)l * sizeof *ev);
    int rc = RLAB_OK;
    if (!Om || !Y || !Z || !B || !tmp || !C || !W || !ev) {
        rc = rlab_errf(err, RLAB_ENOMEM, "svd: out of memory");
        goto done;
    }
    rlab_rng rng;
    rlab_rng_seed(&rng, seed);
    for (size_t i = 0; i < (size_t)n * l; i++)
        Om[i] = rlab_rng_normal(&rng);
    /* Y[m][l] = A[m][n] Om[n][l], then power iterations Y <- A (Aᵀ Y), orthonormalising
     * between products so the small singular directions are not lost in rounding. */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, l, n, 1.0f, A, n, Om, l, 0.0f, Y, l);
    orthonormalise(Y, m, l, tmp);
    for (int32_t it = 0; it < n_iter; it++) {
        /* Z[n][l] = Aᵀ Y */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, l, m, 1.0f, A, n, Y, l, 0.0f, Z, l);
        orthonormalise(Z, n, l, tmp);
        /* Y[m][l] = A Z */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, l, n, 1.0f, A, n, Z, l, 0.0f, Y,
                    l);
        orthonormalise(Y, m, l, tmp);
    }
    /* B[l][n] = Yᵀ A */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, l, n, m, 1.0f, Y, l, A, n, 0.0f, B, n);
    /* C = B Bᵀ in double: its eigenvalues are the squared singular values of B (and A). */
    for (int32_t a = 0; a < l; a++)
        for (int32_t b = 0; b <= a; b++) {
            double d = 0.0;
            const float *ra = B + (size_t)a * n, *rb = B + (size_t)b * n;
            for (int32_t j = 0; j < n; j++)
                d += (double)ra[j] * (double)rb[j];
            C[(size_t)a * l + b] = C[(size_t)b * l + a] = d;
        }
    rlab_sym_eigen(C, l, ev, W);
    double s0 = ev[0] > 0.0 ? sqrt(ev[0]) : 0.0;
    for (int32_t j = 0; j < k; j++) {
        double sj = ev[j] > 0.0 ? sqrt(ev[j]) : 0.0;
        int live = sj > 1e-6 * s0 && sj > 0.0;
        if (S)
            S[j] = (float)sj;
        if (U) /* U[:, j] = Q W[:, j] */
            for (int32_t i = 0; i < m; i++) {
                double d = 0.0;
                for (int32_t r = 0; r < l; r++)
                    d += (double)Y[(size_t)i * l + r] * W[(size_t)r * l + j];
                U[(size_t)i * k + j] = live ? (float)d : 0.0f;
            }
        if (Vt) /* Vt[j, :] = W[:, j]ᵀ B / s_j */
            for (int32_t c = 0; c < n; c++) {
                double d = 0.0;
                for (int32_t r = 0; r < l; r++)
                    d += W[(size_t)r * l + j] * (double)B[(size_t)r * n + c];
                Vt[(size_t)j * n + c] = live ? (float)(d / sj) : 0.0f;
            }
    }
done:
    rlab_free(Om);
    rlab_free(Y);
    rlab_free(Z);
    rlab_free(B);
    rlab_free(tmp);
    rlab_free(C);
    rlab_free(W);
    rlab_free(ev);
    return rc;
}

int rlab_text_embed(const rlab_feat_col *col, int32_t n, int32_t D, int32_t k, uint64_t seed,
                    float *out, rlab_err *err)
{
    if (!col || col->kind != RLAB_FEAT_TEXT || !col->text)
        return rlab_errf(err, RLAB_EINVAL, "text embed: need a TEXT feature column");
    rlab_tfidf tf;
    int rc = rlab_tfidf_fit(&tf, (const char *const *)col->text, n, D, err);
    if (rc != RLAB_OK)
        return rc;
    float *X = rlab_malloc((size_t)n * (size_t)D * sizeof *X);
    float *S = rlab_malloc((size_t)k * sizeof *S);
    if (!X || !S) {
        rlab_free(X);
        rlab_free(S);
        rlab_tfidf_clear(&tf);
        return rlab_errf(err, RLAB_ENOMEM, "text embed: out of memory");
    }
    rlab_tfidf_transform_many(&tf, (const char *const *)col->text, n, X);
    rc = rlab_svd_truncated(X, n, D, k, 10, 2, seed, out, S, NULL, err);
    if (rc == RLAB_OK)
        for (int32_t i = 0; i < n; i++)
            for (int32_t j = 0; j < k; j++)
                out[(size_t)i * k + j] *= S[j];
    rlab_free(X);
    rlab_free(S);
    rlab_tfidf_clear(&tf);
    return rc;
}
