/*
 * plugins/crs/respond.c: response templates (retrieval + [MOVIE] slot filling) and the
 * recommendation metrics' building blocks (rank with a mask, the two baselines).
 */
#include "crs.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define TPL_D 2048
#define TPL_CTX_CHARS 400 /* retrieval looks at the end of the context only */

/* The last TPL_CTX_CHARS bytes of a context (at a word start). */
static const char *ctx_tail(const char *ctx)
{
    size_t n = ctx ? strlen(ctx) : 0;
    if (n <= TPL_CTX_CHARS)
        return ctx ? ctx : "";
    const char *p = ctx + n - TPL_CTX_CHARS;
    while (*p && *p != ' ' && *p != '\n')
        p++;
    return p;
}

void crs_templates_clear(crs_templates *t)
{
    for (int32_t i = 0; i < t->n; i++) {
        rlab_free(t->text[i]);
        rlab_free(t->ctx[i]);
    }
    rlab_free(t->text);
    rlab_free(t->ctx);
    rlab_free(t->X);
    rlab_tfidf_clear(&t->tf);
    memset(t, 0, sizeof *t);
}

int crs_templates_fit(crs_templates *t, int32_t n, const char *const *text, const char *const *ctx,
                      rlab_err *err)
{
    memset(t, 0, sizeof *t);
    if (n == 0)
        return RLAB_OK;
    t->text = rlab_calloc((size_t)n, sizeof *t->text);
    t->ctx = rlab_calloc((size_t)n, sizeof *t->ctx);
    t->X = rlab_malloc((size_t)n * TPL_D * sizeof *t->X);
    const char **tails = rlab_malloc((size_t)n * sizeof *tails);
    if (!t->text || !t->ctx || !t->X || !tails) {
        rlab_free(tails);
        crs_templates_clear(t);
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    }
    t->n = n;
    t->D = TPL_D;
    for (int32_t i = 0; i < n; i++) {
        t->text[i] = rlab_strdup(text[i] ? text[i] : "");
        t->ctx[i] = rlab_strdup(ctx_tail(ctx[i]));
        if (!t->text[i] || !t->ctx[i]) {
            rlab_free(tails);
            crs_templates_clear(t);
            return rlab_errf(err, RLAB_ENOMEM, "out of memory");
        }
        tails[i] = t->ctx[i];
    }
    int rc = rlab_tfidf_fit(&t->tf, tails, n, TPL_D, err);
    if (!rc)
        rlab_tfidf_transform_many(&t->tf, tails, n, t->X);
    rlab_free(tails);
    if (rc)
        crs_templates_clear(t);
    return rc;
}

char *crs_template_respond(const crs_templates *t, const char *context, const char *const *titles,
                           int n_titles)
{
    const char *tpl = "You might like [MOVIE].";
    if (t && t->n > 0) {
        float q[TPL_D];
        int nz[TPL_D], nnz = 0;
        rlab_tfidf_transform(&t->tf, ctx_tail(context), q);
        for (int k = 0; k < TPL_D; k++) /* the query is sparse: only its buckets count */
            if (q[k] > 0.0f || q[k] < 0.0f)
                nz[nnz++] = k;
        int32_t best = 0;
        float bs = -INFINITY;
        for (int32_t i = 0; i < t->n; i++) {
            const float *x = t->X + (size_t)i * TPL_D;
            float s = 0;
            for (int j = 0; j < nnz; j++)
                s += q[nz[j]] * x[nz[j]];
            if (s > bs) { /* ties: the first template */
                bs = s;
                best = i;
            }
        }
        tpl = t->text[best];
    }
    /* fill the slots in order with the titles (the last title repeats when slots run out) */
    size_t cap = strlen(tpl) + 1, n = 0;
    for (int i = 0; i < n_titles; i++)
        cap += strlen(titles[i] ? titles[i] : "") * 4 + 8;
    char *out = rlab_malloc(cap);
    if (!out)
        return NULL;
    int slot = 0;
    for (const char *p = tpl; *p;) {
        if (strncmp(p, "[MOVIE]", 7) == 0 && n_titles > 0) {
            const char *ti = titles[slot < n_titles ? slot : n_titles - 1];
            n += (size_t)snprintf(out + n, cap - n, "%s", ti ? ti : "");
            slot++;
            p += 7;
            continue;
        }
        if (n + 1 < cap)
            out[n++] = *p;
        p++;
    }
    out[n] = 0;
    return out;
}

/* ---- metrics --------------------------------------------------------------------------- */

int64_t crs_rank(const float *scores, int32_t n, const uint8_t *mask, int32_t target)
{
    if (target < 0 || target >= n || (mask && mask[target]))
        return 0;
    const float st = scores[target];
    int64_t r = 1;
    for (int32_t i = 0; i < n; i++) {
        if (i == target || (mask && mask[i]))
            continue;
        if (scores[i] > st || (scores[i] >= st && i < target))
            r++;
    }
    return r;
}

void crs_baseline_scores(const int32_t *ctx, int32_t n_ctx, const float *pop, int32_t n_items,
                         float *out)
{
    float mx = 0;
    for (int32_t i = 0; pop && i < n_items; i++)
        mx = pop[i] > mx ? pop[i] : mx;
    for (int32_t i = 0; i < n_items; i++)
        out[i] = pop ? pop[i] / (1.0f + mx) : 0.0f;
    for (int32_t k = 0; k < n_ctx; k++)
        if (ctx[k] >= 0 && ctx[k] < n_items)
            out[ctx[k]] = (float)(k + 1); /* the last mention wins: later = higher */
}
