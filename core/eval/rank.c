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
 * Top-k and target counts in one pass.
 *
 * Order: an item is better than another when its score is higher, or the scores are equal
 * and its index lower; NaN items never enter. Both go into one 64-bit key (the score's bits
 * mapped to an order-preserving integer, then the complemented index), so the selection
 * compares integers without data-dependent double tests. Candidates are (score, item) pairs in a
 * buffer of CAND_MUL * k: an item is appended when it beats the threshold, the worst kept
 * of the last selection; when the buffer is full a quickselect keeps the k best and raises
 * the threshold. Items arrive in index order, so an item scoring exactly the threshold
 * loses to the kept item holding it (lower index) and is rightly refused: the result is the
 * exact top-k under the order above. Appending costs a store, so the k ln(n/k) expected
 * entries of a random row cost far less than heap insertions (each a sift with mispredicted
 * branches, which dominated the previous heap version).
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
static void kv_select(kv *a, int n, int k)
{
    int l = 0, r = n - 1, K = k - 1;
    while (l < r) {
        kv x = a[K];
        int i = l, j = r;
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

/* Widest k kept on the stack; the candidate buffer holds CAND_MUL * k pairs. */
enum { TOPK_STACK = 256, CAND_MUL = 4, CAND_MIN = 64 };

/* Items per block of the vectorised scan: large enough that the compares and their
 * reductions run at full SIMD width, small enough that a block holding a survivor costs
 * little to walk. */
enum { SCAN_BLOCK = 128 };

/* Bit j set iff p[j] > r, for j < 16 (NaN never). SSE2 is part of x86-64. */
static inline unsigned gt_mask16(const float *p, float r)
{
#if defined(__x86_64__) || defined(__SSE2__)
    __m128 v = _mm_set1_ps(r);
    return (unsigned)_mm_movemask_ps(_mm_cmpgt_ps(_mm_loadu_ps(p), v)) |
           (unsigned)_mm_movemask_ps(_mm_cmpgt_ps(_mm_loadu_ps(p + 4), v)) << 4 |
           (unsigned)_mm_movemask_ps(_mm_cmpgt_ps(_mm_loadu_ps(p + 8), v)) << 8 |
           (unsigned)_mm_movemask_ps(_mm_cmpgt_ps(_mm_loadu_ps(p + 12), v)) << 12;
#else
    unsigned m = 0;
    for (int j = 0; j < 16; j++)
        m |= (unsigned)(p[j] > r) << j;
    return m;
#endif
}

/* gt_mask16 for the last n < 16 items of a row. */
static inline unsigned gt_mask_tail(const float *p, int32_t n, float r)
{
    unsigned m = 0;
    for (int32_t j = 0; j < n; j++)
        m |= (unsigned)(p[j] > r) << j;
    return m;
}

/* x86-64: compile the scan for AVX-512 and AVX2 too and pick at load time (the build
 * targets baseline x86-64, i.e. SSE2, so without this the compares run 4 lanes wide).
 * Only integer counts and float compares happen here: every variant gives the same bits. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(RLAB_NO_CLONES)
#define RLAB_SIMD_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define RLAB_SIMD_CLONES
#endif

/* The candidate buffer: c[0..n) of capacity cap; once `warm` (after the first selection)
 * thr is the score of the worst kept item and only items scoring above it can enter. */
typedef struct cands {
    kv *c;
    int n, cap, k, warm;
    float thr;
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

static inline void cands_push(cands *b, float v, int32_t i)
{
    b->c[b->n++] = kv_make(v, i);
    if (b->n > b->cap - 16)
        cands_shrink(b);
}

/*
 * x[0..n): *gt = #(x > s), *ge = #(x >= s) (NaN in neither; s NaN gives 0 and 0), and when
 * b->k > 0 the candidates of the top-k in b. Until the first selection every non-NaN item
 * is taken, item by item (a few dozen); then one vector pass per block counts and tests
 * whether any item beats the threshold, and only blocks holding one are walked, by masks.
 */
RLAB_SIMD_CLONES static void scan_row(const float *x, int32_t n, float s, cands *b, int64_t *gt,
                                      int64_t *ge)
{
    int32_t g = 0, e = 0, i = 0; /* n < 2^31: int32 counts cannot overflow */
    for (; b->k > 0 && !b->warm && i < n; i++) {
        g += x[i] > s;
        e += x[i] >= s;
        if (!isnan(x[i]))
            cands_push(b, x[i], i);
    }
    /* k == 0 (or the row ran out): nothing enters any more (x > +inf is false). */
    float thr = b->warm ? b->thr : INFINITY;
    while (i < n) {
        int32_t end = n - i > SCAN_BLOCK ? i + SCAN_BLOCK : n;
        int32_t bg = 0, be = 0, any = 0;
#pragma omp simd reduction(+ : bg, be) reduction(| : any)
        for (int32_t t = i; t < end; t++) {
            bg += x[t] > s;
            be += x[t] >= s;
            any |= x[t] > thr;
        }
        g += bg;
        e += be;
        if (any) {
            /* Walk only the survivors, 16 items at a time by a bit mask: each set bit is
             * appended without a test (the threshold only moves at a selection), and the
             * buffer keeps 16 slots of slack so a selection is due only between chunks. */
            int32_t t = i;
            for (; t < end; t += 16) {
                unsigned bits =
                    end - t >= 16 ? gt_mask16(x + t, thr) : gt_mask_tail(x + t, end - t, thr);
                for (; bits; bits &= bits - 1) {
                    int32_t j = t + __builtin_ctz(bits);
                    b->c[b->n++] = kv_make(x[j], j);
                }
                if (b->n > b->cap - 16) {
                    cands_shrink(b);
                    thr = b->thr;
                }
            }
        }
        i = end;
    }
    *gt = g;
    *ge = e;
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
    /* capacity: CAND_MUL * k candidates plus 16 of slack (see scan_row) */
    kv stack[CAND_MUL * TOPK_STACK + 16], *buf = stack;
    int cap = (k * CAND_MUL < CAND_MIN ? CAND_MIN : k * CAND_MUL) + 16;
    if (k > TOPK_STACK && !(buf = rlab_malloc((size_t)cap * sizeof *buf)))
        return -1;
    cands b = {.c = buf, .n = 0, .cap = cap, .k = k, .warm = 0, .thr = INFINITY};
    if (n > 0)
        scan_row(scores, n, s, &b, &g, &e);
    if (b.n > k)
        kv_select(b.c, b.n, k);
    int m = b.n < k ? b.n : k;
    qsort(b.c, (size_t)m, sizeof *b.c, cmp_kv_desc);
    for (int j = 0; j < m; j++) {
        items[j] = kv_item(b.c[j]);
        if (scores_out)
            scores_out[j] = scores[items[j]];
    }
    if (buf != stack)
        rlab_free(buf);
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
