/*
 * core/eval/text: Distinct-n (two definitions) and corpus BLEU.
 *
 * Words are interned to dense ids (a string hash table pointing into the borrowed input),
 * and n-grams are id tuples in an open-addressing map holding two counts (hypothesis and
 * reference side).
 */
#include "eval/text.h"

#include <math.h>
#include <string.h>

/* ---- word interning ---------------------------------------------------------------- */
typedef struct word {
    const char *s; /* NULL = empty slot */
    int32_t len, id;
    uint64_t h;
} word;

typedef struct vocab {
    word *w;
    int64_t cap, n;
} vocab;

static uint64_t fnv(const char *s, int32_t len)
{
    uint64_t h = 1469598103934665603ull;
    for (int32_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

/* Id of word s[0..len), inserting it if new; -1 on allocation failure. */
static int32_t vocab_id(vocab *v, const char *s, int32_t len)
{
    if (2 * (v->n + 1) > v->cap) {
        int64_t nc = v->cap ? 2 * v->cap : 256;
        word *nw = rlab_calloc((size_t)nc, sizeof *nw);
        if (!nw)
            return -1;
        for (int64_t i = 0; i < v->cap; i++) {
            if (!v->w[i].s)
                continue;
            int64_t j = (int64_t)(v->w[i].h & (uint64_t)(nc - 1));
            while (nw[j].s)
                j = (j + 1) & (nc - 1);
            nw[j] = v->w[i];
        }
        rlab_free(v->w);
        v->w = nw;
        v->cap = nc;
    }
    uint64_t h = fnv(s, len);
    int64_t j = (int64_t)(h & (uint64_t)(v->cap - 1));
    while (v->w[j].s) {
        if (v->w[j].h == h && v->w[j].len == len && memcmp(v->w[j].s, s, (size_t)len) == 0)
            return v->w[j].id;
        j = (j + 1) & (v->cap - 1);
    }
    v->w[j] = (word){.s = s, .len = len, .id = (int32_t)v->n, .h = h};
    return (int32_t)v->n++;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Token ids of sentence s into *buf (grown as needed); returns the count or -1 on ENOMEM. */
static int64_t tokenize(vocab *v, const char *s, int32_t **buf, int64_t *cap)
{
    int64_t n = 0;
    while (*s) {
        while (*s && is_space(*s))
            s++;
        if (!*s)
            break;
        const char *b = s;
        while (*s && !is_space(*s))
            s++;
        if (n == *cap) {
            int64_t nc = *cap ? 2 * *cap : 64;
            int32_t *nb = rlab_realloc(*buf, (size_t)nc * sizeof *nb);
            if (!nb)
                return -1;
            *buf = nb;
            *cap = nc;
        }
        int32_t id = vocab_id(v, b, (int32_t)(s - b));
        if (id < 0)
            return -1;
        (*buf)[n++] = id;
    }
    return n;
}

/* ---- n-gram map ---------------------------------------------------------------------- */
typedef struct gram {
    int32_t k[4];
    int32_t len;  /* 0 = empty slot */
    int64_t c[2]; /* counts: [0] hypothesis side, [1] reference side */
} gram;

typedef struct gmap {
    gram *e;
    int64_t cap, n;
    int64_t *used; /* occupied slots, for a cheap reset */
} gmap;

static uint64_t gram_hash(const int32_t *k, int len)
{
    uint64_t h = (uint64_t)len * 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < len; i++) {
        h ^= (uint32_t)k[i];
        h *= 0xBF58476D1CE4E5B9ull;
        h ^= h >> 31;
    }
    return h;
}

static int64_t gmap_find(const gram *e, int64_t cap, const int32_t *k, int len)
{
    int64_t j = (int64_t)(gram_hash(k, len) & (uint64_t)(cap - 1));
    while (e[j].len && !(e[j].len == len && memcmp(e[j].k, k, (size_t)len * 4) == 0))
        j = (j + 1) & (cap - 1);
    return j;
}

/* Add one occurrence of k[0..len) on side `side`. Returns 1 if the n-gram is new, 0 if it
 * was present, -1 on ENOMEM. */
static int gmap_add(gmap *m, const int32_t *k, int len, int side)
{
    if (2 * (m->n + 1) > m->cap) {
        int64_t nc = m->cap ? 2 * m->cap : 1024;
        gram *ne = rlab_calloc((size_t)nc, sizeof *ne);
        int64_t *nu = rlab_malloc((size_t)nc / 2 * sizeof *nu);
        if (!ne || !nu) {
            rlab_free(ne);
            rlab_free(nu);
            return -1;
        }
        for (int64_t i = 0; i < m->n; i++) {
            const gram *g = &m->e[m->used[i]];
            int64_t j = gmap_find(ne, nc, g->k, g->len);
            ne[j] = *g;
            nu[i] = j;
        }
        rlab_free(m->e);
        rlab_free(m->used);
        m->e = ne;
        m->used = nu;
        m->cap = nc;
    }
    int64_t j = gmap_find(m->e, m->cap, k, len);
    int fresh = m->e[j].len == 0;
    if (fresh) {
        memset(&m->e[j], 0, sizeof m->e[j]);
        memcpy(m->e[j].k, k, (size_t)len * 4);
        m->e[j].len = len;
        m->used[m->n++] = j;
    }
    m->e[j].c[side]++;
    return fresh;
}

static void gmap_reset(gmap *m)
{
    for (int64_t i = 0; i < m->n; i++)
        m->e[m->used[i]].len = 0;
    m->n = 0;
}

static void gmap_free(gmap *m)
{
    rlab_free(m->e);
    rlab_free(m->used);
}

/* ---- metrics ----------------------------------------------------------------------- */
int rlab_eval_distinct(const char *const *sents, int64_t n_sents, int n, int variant, double *out,
                       rlab_err *err)
{
    if (n < 1 || n > 4)
        return rlab_errf(err, RLAB_EINVAL, "distinct: n must be in 1..4, got %d", n);
    if (variant != RLAB_DISTINCT_STANDARD && variant != RLAB_DISTINCT_UNICRS)
        return rlab_errf(err, RLAB_EINVAL, "distinct: unknown variant %d", variant);
    vocab v = {0};
    gmap m = {0};
    int32_t *tok = NULL;
    int64_t tcap = 0, total = 0, unique = 0, nonempty = 0;
    int rc = RLAB_OK;
    for (int64_t i = 0; i < n_sents && rc == RLAB_OK; i++) {
        if (!sents[i]) {
            rc = rlab_errf(err, RLAB_EINVAL, "distinct: sentence %lld is NULL", (long long)i);
            break;
        }
        int64_t nt = tokenize(&v, sents[i], &tok, &tcap);
        if (nt < 0) {
            rc = rlab_errf(err, RLAB_ENOMEM, "distinct: out of memory");
            break;
        }
        nonempty += nt > 0;
        for (int64_t p = 0; p + n <= nt; p++) {
            int fresh = gmap_add(&m, tok + p, n, 0);
            if (fresh < 0) {
                rc = rlab_errf(err, RLAB_ENOMEM, "distinct: out of memory");
                break;
            }
            unique += fresh;
            total++;
        }
    }
    if (rc == RLAB_OK) {
        if (variant == RLAB_DISTINCT_STANDARD)
            *out = total ? (double)unique / (double)total : 0.0;
        else
            *out = nonempty > 0 ? (double)unique / (double)nonempty : 0.0;
    }
    rlab_free(tok);
    rlab_free(v.w);
    gmap_free(&m);
    return rc;
}

int rlab_eval_bleu(const char *const *hyps, const char *const *refs, int64_t n_pairs, int max_n,
                   double *bleu, rlab_err *err)
{
    if (max_n < 1 || max_n > 4)
        return rlab_errf(err, RLAB_EINVAL, "bleu: n must be in 1..4, got %d", max_n);
    vocab v = {0};
    gmap m = {0};
    int32_t *th = NULL, *tr = NULL;
    int64_t chc = 0, crc = 0;
    int64_t clipped[4] = {0}, total[4] = {0}, c = 0, r = 0;
    int rc = RLAB_OK;
    for (int64_t i = 0; i < n_pairs && rc == RLAB_OK; i++) {
        if (!hyps[i] || !refs[i]) {
            rc = rlab_errf(err, RLAB_EINVAL, "bleu: sentence pair %lld has a NULL", (long long)i);
            break;
        }
        int64_t nh = tokenize(&v, hyps[i], &th, &chc);
        int64_t nr = nh < 0 ? -1 : tokenize(&v, refs[i], &tr, &crc);
        if (nr < 0) {
            rc = rlab_errf(err, RLAB_ENOMEM, "bleu: out of memory");
            break;
        }
        c += nh;
        r += nr;
        gmap_reset(&m);
        for (int n = 1; n <= max_n && rc == RLAB_OK; n++) {
            for (int64_t p = 0; p + n <= nh && rc == RLAB_OK; p++)
                if (gmap_add(&m, th + p, n, 0) < 0)
                    rc = rlab_errf(err, RLAB_ENOMEM, "bleu: out of memory");
            for (int64_t p = 0; p + n <= nr && rc == RLAB_OK; p++)
                if (gmap_add(&m, tr + p, n, 1) < 0)
                    rc = rlab_errf(err, RLAB_ENOMEM, "bleu: out of memory");
        }
        /* Clipped counts: each hypothesis n-gram counts at most as often as in the ref. */
        for (int64_t j = 0; j < m.n && rc == RLAB_OK; j++) {
            const gram *g = &m.e[m.used[j]];
            clipped[g->len - 1] += g->c[0] < g->c[1] ? g->c[0] : g->c[1];
            total[g->len - 1] += g->c[0];
        }
    }
    if (rc == RLAB_OK) {
        double logp = 0.0;
        int zero = c == 0;
        for (int n = 0; n < max_n && !zero; n++) {
            if (clipped[n] == 0)
                zero = 1;
            else
                logp += log((double)clipped[n] / (double)total[n]) / (double)max_n;
        }
        double bp = c > r ? 1.0 : exp(1.0 - (double)r / (double)(c ? c : 1));
        *bleu = zero ? 0.0 : bp * exp(logp);
    }
    rlab_free(th);
    rlab_free(tr);
    rlab_free(v.w);
    gmap_free(&m);
    return rc;
}
