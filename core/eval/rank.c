/*
 * core/eval/rank: ranking metrics at k, target ranks with a tie rule, top-k selection,
 * negative sampling and ranker fidelity. See rank.h for the definitions.
 */
#include "eval/rank.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) || defined(__SSE2__)
#include <emmintrin.h>
#endif

const char *rlab_eval_tie_name(int tie)
{
    switch (tie) {
    case RLAB_TIE_AVERAGE:
        return "average";
    case RLAB_TIE_OPTIMISTIC:
        return "optimistic";
    case RLAB_TIE_PESSIMISTIC:
        return "pessimistic";
    default:
        return "?";
    }
}

/* Discount of 0-based position p. */
static double disc(double p) { return 1.0 / log2(p + 2.0); }

/* Ideal DCG with min(n_rel, k) relevant items on top. */
static double idcg(int64_t n_rel, int k)
{
    double s = 0.0;
    int64_t m = n_rel < k ? n_rel : k;
    for (int64_t i = 0; i < m; i++)
        s += disc((double)i);
    return s;
}

static int contains(const int32_t *a, int64_t n, int32_t x)
{
    for (int64_t i = 0; i < n; i++)
        if (a[i] == x)
            return 1;
    return 0;
}

void rlab_eval_list_metrics(const int32_t *list, int64_t n_list, const int32_t *rel, int64_t n_rel,
                            int k, rlab_eval_atk *out)
{
    memset(out, 0, sizeof *out);
    if (n_rel <= 0 || k < 1)
        return;
    int64_t m = n_list < k ? n_list : k;
    double dcg = 0.0, ap = 0.0;
    int64_t hits = 0;
    for (int64_t p = 0; p < m; p++) {
        if (list[p] < 0 || !contains(rel, n_rel, list[p]))
            continue;
        hits++;
        dcg += disc((double)p);
        ap += (double)hits / (double)(p + 1);
        if (hits == 1)
            out->mrr = 1.0 / (double)(p + 1);
    }
    out->hr = hits > 0 ? 1.0 : 0.0;
    out->recall = (double)hits / (double)n_rel;
    out->precision = (double)hits / (double)k;
    out->ndcg = dcg / idcg(n_rel, k);
    out->map = ap / (double)(n_rel < k ? n_rel : k);
}

double rlab_eval_hr_at_rank(double rank, int k) { return rank < (double)k ? 1.0 : 0.0; }

double rlab_eval_ndcg_at_rank(double rank, int k) { return rank < (double)k ? disc(rank) : 0.0; }

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

int rlab_eval_rank(const float *scores, int32_t n, int32_t target, const int32_t *mask,
                   int64_t n_mask, int tie, double *rank, rlab_err *err)
{
    if (n < 1 || target < 0 || target >= n)
        return rlab_errf(err, RLAB_EINVAL, "rank: target %d outside [0, %d)", target, n);
    if (tie < RLAB_TIE_AVERAGE || tie > RLAB_TIE_PESSIMISTIC)
        return rlab_errf(err, RLAB_EINVAL, "rank: unknown tie rule %d", tie);
    float s = scores[target];
    if (isnan(s))
        return rlab_errf(err, RLAB_EINVAL, "rank: score of target %d is NaN", target);
    int64_t gt = 0, ge = 0;
    for (int32_t i = 0; i < n; i++) {
        gt += scores[i] > s;
        ge += scores[i] >= s;
    }
    ge -= 1; /* the target itself */
    if (n_mask > 0) {
        /* Sorted copy so duplicate history entries are subtracted once. */
        int32_t *m = rlab_malloc((size_t)n_mask * sizeof *m);
        if (!m)
            return rlab_errf(err, RLAB_ENOMEM, "rank: out of memory");
        memcpy(m, mask, (size_t)n_mask * sizeof *m);
        qsort(m, (size_t)n_mask, sizeof *m, cmp_i32);
        for (int64_t j = 0; j < n_mask; j++) {
            if ((j > 0 && m[j] == m[j - 1]) || m[j] == target || m[j] < 0 || m[j] >= n)
                continue;
            gt -= scores[m[j]] > s;
            ge -= scores[m[j]] >= s;
        }
        rlab_free(m);
    }
    int64_t eq = ge - gt;
    *rank = tie == RLAB_TIE_OPTIMISTIC    ? (double)gt
            : tie == RLAB_TIE_PESSIMISTIC ? (double)(gt + eq)
                                          : (double)gt + 0.5 * (double)eq;
    return RLAB_OK;
}

/*
 * Expected metrics over uniformly random tie breaking, group by group. In a group starting
 * at pos with a relevant items among n slots, slot j holds a relevant item with probability
 * a/n; given it does, the expected number of relevant items in earlier slots of the group
 * is (a-1) j/(n-1). DCG, hits and the AP sum are linear in those, so they are exact. HR and
 * MRR depend on the first relevant slot X of the first group: P(X >= x) = C(n-x, a)/C(n, a).
 * The optimistic and pessimistic rules are the special case n = a after moving pos.
 */
void rlab_eval_group_metrics(const rlab_eval_group *g, int ng, int64_t n_rel, int k, int tie,
                             rlab_eval_atk *out)
{
    memset(out, 0, sizeof *out);
    if (n_rel <= 0 || k < 1)
        return;
    double dcg = 0.0, hits = 0.0, ap = 0.0;
    int64_t before = 0; /* relevant items in earlier groups */
    int first = 1;
    for (int i = 0; i < ng; i++) {
        int64_t pos = g[i].pos, a = g[i].a, n = g[i].n;
        if (a <= 0 || n < a)
            continue;
        if (tie == RLAB_TIE_OPTIMISTIC) {
            n = a;
        } else if (tie == RLAB_TIE_PESSIMISTIC) {
            pos += n - a;
            n = a;
        }
        if (pos >= k)
            break; /* groups are ordered: nothing later reaches the top k */
        double pa = (double)a / (double)n;
        int64_t m = n < k - pos ? n : k - pos; /* slots of this group inside the top k */
        for (int64_t j = 0; j < m; j++) {
            double p = (double)(pos + j);
            double prior = n > 1 ? (double)(a - 1) * (double)j / (double)(n - 1) : 0.0;
            dcg += pa * disc(p);
            ap += pa * ((double)before + 1.0 + prior) / (p + 1.0);
        }
        hits += pa * (double)m;
        if (first) {
            first = 0;
            double s = 1.0; /* P(X >= x) */
            for (int64_t x = 0; x < m && s > 0.0; x++) {
                double next = s * (double)(n - x - a) / (double)(n - x);
                if (next < 0.0)
                    next = 0.0;
                out->mrr += (s - next) / (double)(pos + x + 1);
                s = next;
            }
            out->hr = 1.0 - s; /* s = P(no relevant item in the m top-k slots) */
        }
        before += a;
    }
    out->recall = hits / (double)n_rel;
    out->precision = hits / (double)k;
    out->ndcg = dcg / idcg(n_rel, k);
    out->map = ap / (double)(n_rel < k ? n_rel : k);
}

/*
 * Top-k and target counts: one vector pass over the row, then a few of its blocks again.
 *
 * Order: an item is better than another when its score is higher, or the scores are equal
 * and its index lower; NaN items never enter. Both go into one 64-bit key (the score's bits
 * mapped to an order-preserving integer, then the complemented index), so selections
 * compare integers.
 *
 * Pass 1 counts #(x > s) and #(x >= s) and records the maximum of every block of B items.
 * The k largest block maxima are k distinct items, so T = the k-th largest block maximum
 * is a lower bound of the k-th best score: an item scoring below T cannot be in the top k,
 * and a block whose maximum is below T holds none. On a random row only ~k blocks reach T
 * and ~k items in them, so pass 2 walks those blocks (bit masks of x >= T) and appends the
 * survivors to a candidate buffer; the buffer keeps the k best by a quickselect when it
 * fills (then only items scoring ABOVE its worst kept can enter: later items have higher
 * indices and lose ties). The result is the exact top-k under the order above, whatever
 * the scores (sorted rows, all ties): only the amount of work varies.
 */
typedef uint64_t kv; /* (score, item) as one key: a larger key is a better item */

/* Order-preserving map of a non-NaN float to uint32 (-0 taken as +0, as "==" does):
 * flip every bit of negatives, the sign bit of the rest. */
static inline kv kv_make(float v, int32_t i)
{
    uint32_t u;
    v += 0.0f; /* -0 -> +0 */
    memcpy(&u, &v, sizeof u);
    u ^= (u >> 31) ? 0xFFFFFFFFu : 0x80000000u;
    return (uint64_t)u << 32 | (uint32_t)(0xFFFFFFFFu - (uint32_t)i);
}

static inline int32_t kv_item(kv a) { return (int32_t)(0xFFFFFFFFu - (uint32_t)a); }

static inline float kv_score(kv a)
{
    uint32_t u = (uint32_t)(a >> 32);
    u ^= (u >> 31) ? 0x80000000u : 0xFFFFFFFFu;
    float v;
    memcpy(&v, &u, sizeof v);
    return v;
}

/* Reorder a[0..n) so a[0..k) are the k largest keys (in no order), 0 < k < n: Wirth's
 * selection of the element of rank k-1 (keys are distinct: items are). */
static void kv_select(kv *a, int64_t n, int64_t k)
{
    int64_t l = 0, r = n - 1, K = k - 1;
    while (l < r) {
        kv x = a[K];
        int64_t i = l, j = r;
        do {
            while (a[i] > x)
                i++;
            while (x > a[j])
                j--;
            if (i <= j) {
                kv t = a[i];
                a[i] = a[j];
                a[j] = t;
                i++;
                j--;
            }
        } while (i <= j);
        if (j < K)
            l = i;
        if (K < i)
            r = j;
    }
}

/* Widest k kept on the stack; the candidate buffer holds CAND_MUL * k pairs + 16 slack.
 * MAX_BLOCKS block maxima are kept per row (on the stack): rows longer than
 * MAX_BLOCKS * 128 items use longer blocks. */
enum { TOPK_STACK = 256, CAND_MUL = 4, CAND_MIN = 64, MAX_BLOCKS = 1024 };

/* Bit j set iff p[j] > r (ge: p[j] >= r), for j < 16; NaN never. SSE2 is part of x86-64. */
static inline unsigned cmp_mask16(const float *p, float r, int ge)
{
#if defined(__x86_64__) || defined(__SSE2__)
    __m128 v = _mm_set1_ps(r);
    if (ge)
        return (unsigned)_mm_movemask_ps(_mm_cmpge_ps(_mm_loadu_ps(p), v)) |
               (unsigned)_mm_movemask_ps(_mm_cmpge_ps(_mm_loadu_ps(p + 4), v)) << 4 |
               (unsigned)_mm_movemask_ps(_mm_cmpge_ps(_mm_loadu_ps(p + 8), v)) << 8 |
               (unsigned)_mm_movemask_ps(_mm_cmpge_ps(_mm_loadu_ps(p + 12), v)) << 12;
    return (unsigned)_mm_movemask_ps(_mm_cmpgt_ps(_mm_loadu_ps(p), v)) |
           (unsigned)_mm_movemask_ps(_mm_cmpgt_ps(_mm_loadu_ps(p + 4), v)) << 4 |
           (unsigned)_mm_movemask_ps(_mm_cmpgt_ps(_mm_loadu_ps(p + 8), v)) << 8 |
           (unsigned)_mm_movemask_ps(_mm_cmpgt_ps(_mm_loadu_ps(p + 12), v)) << 12;
#else
    unsigned m = 0;
    for (int j = 0; j < 16; j++)
        m |= (unsigned)(ge ? p[j] >= r : p[j] > r) << j;
    return m;
#endif
}

/* cmp_mask16 for the last n < 16 items of a row. */
static inline unsigned cmp_mask_tail(const float *p, int32_t n, float r, int ge)
{
    unsigned m = 0;
    for (int32_t j = 0; j < n; j++)
        m |= (unsigned)(ge ? p[j] >= r : p[j] > r) << j;
    return m;
}

/* x86-64: compile pass 1 for AVX-512 and AVX2 too and pick at load time (the build targets
 * baseline x86-64, i.e. SSE2, so without this the compares run 4 lanes wide). Only integer
 * counts, float compares and maxima happen there: every variant gives the same bits. */
#define RLAB_SIMD_CLONES RLAB_CLONES("avx512f", "avx2", "default")

#if defined(__GNUC__)
/* 16 floats / 16 int32 as GCC vector types: the count accumulators stay in registers for the
 * whole row (an `omp simd` reduction per block spilled them and summed 16 lanes by scalar
 * adds every block). A compare gives -1 (true) or 0 per lane. */
typedef float v16f __attribute__((vector_size(64)));
typedef int32_t v16i __attribute__((vector_size(64)));
typedef float v4f __attribute__((vector_size(16)));
typedef int32_t v4i __attribute__((vector_size(16)));
#define RLAB_VEC16 1
#endif

/*
 * Pass 1 over x[0..n) in blocks of B (a multiple of 16): *gt = #(x > s), *ge = #(x >= s)
 * (NaN in neither; s NaN gives 0 and 0) and, when bmax is not NULL, bmax[j] = the largest
 * non-NaN score of block j (-inf if none).
 */
RLAB_SIMD_CLONES static void count_pass(const float *x, int32_t n, float s, int32_t B, float *bmax,
                                        int64_t *gt, int64_t *ge)
{
    int32_t g = 0, e = 0, i = 0; /* n < 2^31: int32 counts cannot overflow */
#ifdef RLAB_VEC16
    v16i cg = {0}, ce = {0};
    const v16f sv = (v16f){0} + s, ninf = (v16f){0} - INFINITY;
    for (; n - i >= B; i += B) {
        v16f m = ninf;
        for (int32_t j = i; j < i + B; j += 16) {
            v16f v;
            memcpy(&v, x + j, sizeof v);
            cg += (v16i)(v > sv);
            ce += (v16i)(v >= sv);
            v16i up = (v16i)(v > m); /* NaN never */
            m = (v16f)(((v16i)v & up) | ((v16i)m & ~up));
        }
        if (bmax) { /* fold 16 lanes to 4, then 4 scalars */
            v4f q[4];
            memcpy(q, &m, sizeof q);
            for (int h = 1; h < 4; h++) {
                v4i up = (v4i)(q[h] > q[0]);
                q[0] = (v4f)(((v4i)q[h] & up) | ((v4i)q[0] & ~up));
            }
            float w = q[0][0];
            for (int h = 1; h < 4; h++)
                w = q[0][h] > w ? q[0][h] : w;
            bmax[i / B] = w;
        }
    }
    int32_t lg[16], le[16];
    memcpy(lg, &cg, sizeof lg);
    memcpy(le, &ce, sizeof le);
    for (int j = 0; j < 16; j++) {
        g -= lg[j];
        e -= le[j];
    }
#endif
    for (; i < n; i += B) { /* the tail (or every block without vector types) */
        int32_t end = n - i > B ? i + B : n;
        float w = -INFINITY;
        for (int32_t t = i; t < end; t++) {
            g += x[t] > s;
            e += x[t] >= s;
            w = x[t] > w ? x[t] : w;
        }
        if (bmax)
            bmax[i / B] = w;
    }
    *gt = g;
    *ge = e;
}

/* The candidate buffer c[0..n), selected down to k once n reaches cap (room: cap + 16). Before the
 * first selection items >= lo enter; once `warm`, thr is the score of the worst kept item and only
 * items above it enter. */
typedef struct cands {
    kv *c;
    int64_t n, cap;
    int k, warm;
    float lo, thr;
} cands;

static void cands_shrink(cands *b)
{
    kv_select(b->c, b->n, b->k);
    b->n = b->k;
    kv w = b->c[0];
    for (int j = 1; j < b->k; j++)
        w = b->c[j] < w ? b->c[j] : w;
    b->thr = kv_score(w);
    b->warm = 1;
}

/* Pass 2 over one block x[i..end): append its candidates. */
static void walk_block(const float *x, int32_t i, int32_t end, cands *b)
{
    for (int32_t t = i; t < end; t += 16) {
        float r = b->warm ? b->thr : b->lo;
        int ge = !b->warm;
        unsigned bits =
            end - t >= 16 ? cmp_mask16(x + t, r, ge) : cmp_mask_tail(x + t, end - t, r, ge);
        for (; bits; bits &= bits - 1) {
            int32_t j = t + __builtin_ctz(bits);
            b->c[b->n++] = kv_make(x[j], j);
        }
        if (b->n >= b->cap)
            cands_shrink(b);
    }
}

static int cmp_kv_desc(const void *pa, const void *pb)
{
    kv a = *(const kv *)pa, b = *(const kv *)pb;
    return (a < b) - (a > b);
}

int rlab_eval_topk_count(const float *scores, int32_t n, int k, float s, int32_t *items,
                         float *scores_out, int64_t *gt, int64_t *ge)
{
    int64_t g = 0, e = 0;
    if (n < 1 || k < 0)
        k = 0;
    /* block length: 128 items; shorter (down to 16) so there are >= 4k blocks when k is
     * large for the row, longer when the row has more than MAX_BLOCKS blocks */
    int32_t B = 128;
    while (B > 16 && n / B < 4 * (int64_t)k)
        B /= 2;
    while ((int64_t)MAX_BLOCKS * B < n)
        B *= 2;
    const int32_t nblk = n > 0 ? (n + B - 1) / B : 0;
    float bmax[MAX_BLOCKS];
    if (n > 0)
        count_pass(scores, n, s, B, k > 0 ? bmax : NULL, &g, &e);
    int m = 0;
    if (k > 0) {
        /* candidates: cap of them, + 16 slack (a chunk of pass 2 appends up to 16) */
        const int64_t cap = k * CAND_MUL < CAND_MIN ? CAND_MIN : (int64_t)k * CAND_MUL;
        kv stack[CAND_MUL * TOPK_STACK + 16], *buf = stack;
        if (k > TOPK_STACK && !(buf = rlab_malloc((size_t)(cap + 16) * sizeof *buf)))
            return -1;
        /* T = the k-th largest block maximum (-inf when there are fewer than k blocks) */
        float T = -INFINITY;
        if (nblk >= k) {
            kv mk[MAX_BLOCKS];
            for (int32_t j = 0; j < nblk; j++)
                mk[j] = kv_make(bmax[j], j);
            if (nblk > k)
                kv_select(mk, nblk, k);
            kv w = mk[0];
            for (int j = 1; j < k; j++)
                w = mk[j] < w ? mk[j] : w;
            T = kv_score(w);
        }
        cands b = {.c = buf, .n = 0, .cap = cap, .k = k, .warm = 0, .lo = T, .thr = INFINITY};
        for (int32_t j = 0; j < nblk; j++) {
            /* a block can hold a candidate only if its maximum passes the current rule */
            int pass = b.warm ? bmax[j] > b.thr : bmax[j] >= T;
            if (pass)
                walk_block(scores, j * B, j * B + B < n ? j * B + B : n, &b);
        }
        if (b.n > k)
            kv_select(b.c, b.n, k);
        m = (int)(b.n < k ? b.n : k);
        qsort(b.c, (size_t)m, sizeof *b.c, cmp_kv_desc);
        for (int j = 0; j < m; j++) {
            items[j] = kv_item(b.c[j]);
            if (scores_out)
                scores_out[j] = scores[items[j]];
        }
        if (buf != stack)
            rlab_free(buf);
    }
    if (gt)
        *gt = g;
    if (ge)
        *ge = e;
    return m;
}

int rlab_eval_topk(const float *scores, int32_t n, int k, int32_t *items, float *scores_out)
{
    if (k < 1 || n < 1)
        return 0;
    return rlab_eval_topk_count(scores, n, k, NAN, items, scores_out, NULL, NULL);
}

int rlab_eval_sample_negatives(int32_t n_items, const int32_t *hist, int64_t n_hist,
                               const int32_t *tgt, int64_t n_tgt, int n_neg, uint64_t seed,
                               int32_t user, uint8_t *mark, int32_t *out, int *n_out, rlab_err *err)
{
    *n_out = 0;
    if (n_items < 1 || n_neg < 0 || !mark)
        return rlab_errf(err, RLAB_EINVAL, "sample_negatives: bad arguments");
    int64_t n_marked = 0;
    for (int pass = 0; pass < 2; pass++) {
        const int32_t *a = pass ? tgt : hist;
        int64_t na = pass ? n_tgt : n_hist;
        for (int64_t j = 0; j < na; j++) {
            if (a[j] < 0 || a[j] >= n_items)
                continue;
            if (!mark[a[j]])
                n_marked++;
            mark[a[j]] = 1;
        }
    }
    int64_t eligible = n_items - n_marked;
    rlab_rng r;
    /* The user id is mixed in by splitmix inside rlab_rng_seed. */
    rlab_rng_seed(&r, seed ^ (0x9E3779B97F4A7C15ull * (uint64_t)((int64_t)user + 1)));
    int got = 0;
    if (eligible <= n_neg) {
        for (int32_t i = 0; i < n_items; i++)
            if (!mark[i])
                out[got++] = i;
    } else if (eligible * 4 >= n_items) {
        /* Rejection: at most 4 expected draws per accepted item. */
        while (got < n_neg) {
            int32_t i = (int32_t)rlab_rng_below(&r, (uint64_t)n_items);
            if (mark[i])
                continue;
            mark[i] = 2;
            out[got++] = i;
        }
        for (int j = 0; j < got; j++)
            mark[out[j]] = 0;
    } else {
        /* Dense history: reservoir sampling over the eligible items in one pass. */
        int64_t seen = 0;
        for (int32_t i = 0; i < n_items; i++) {
            if (mark[i])
                continue;
            if (got < n_neg) {
                out[got++] = i;
            } else {
                uint64_t j = rlab_rng_below(&r, (uint64_t)(seen + 1));
                if (j < (uint64_t)n_neg)
                    out[j] = i;
            }
            seen++;
        }
    }
    for (int pass = 0; pass < 2; pass++) {
        const int32_t *a = pass ? tgt : hist;
        int64_t na = pass ? n_tgt : n_hist;
        for (int64_t j = 0; j < na; j++)
            if (a[j] >= 0 && a[j] < n_items)
                mark[a[j]] = 0;
    }
    *n_out = got;
    return RLAB_OK;
}

int rlab_eval_agreement(const int32_t *a, const int32_t *b, int64_t n_users, int w, int k,
                        double *agreement, double *exact_match, rlab_err *err)
{
    if (k < 1 || k > w || n_users < 1)
        return rlab_errf(err, RLAB_EINVAL, "agreement: need 1 <= k <= width and users > 0");
    double agr = 0.0, ex = 0.0;
    for (int64_t u = 0; u < n_users; u++) {
        const int32_t *ra = a + u * w, *rb = b + u * w;
        int inter = 0, same = 0;
        for (int r = 0; r < k; r++) {
            if (ra[r] < 0)
                continue;
            same += ra[r] == rb[r];
            inter += contains(rb, k, ra[r]);
        }
        agr += (double)inter / (double)k;
        ex += (double)same / (double)k;
    }
    if (agreement)
        *agreement = agr / (double)n_users;
    if (exact_match)
        *exact_match = ex / (double)n_users;
    return RLAB_OK;
}
