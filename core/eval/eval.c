/*
 * core/eval/eval: the batched, OpenMP-parallel ranking evaluator (see eval.h).
 *
 * Per user (one row of the score batch, which the evaluator owns and may overwrite):
 *   1. read the target scores; 2. write NaN over the history (NaN never compares greater,
 *   so masked items drop out of every count, duplicates included); 3. restore the targets;
 *   4. optionally keep the top-k list; 5. write NaN over the targets, so the row holds only
 *   competing non-target items; 6. for each distinct target score s, count competitors with
 *   score > s and >= s (one vectorised pass per distinct score, or one pass with a binary
 *   search when there are many), which gives the tie groups of rank.h; 7. metrics per k.
 * One target under full ranking (leave-one-out, the common case) takes a fast path after
 * step 3: rlab_eval_topk_count gives the top-k list and the target's counts in ONE
 * vectorised pass over the row (the target, still in place, is subtracted from its own
 * ">=" count), the same numbers as steps 4-6.
 * Factorised scoring (spec.dim > 0): the evaluator computes the rows itself, a block of
 * users at a time by sgemm into a per-thread tile that is ranked while it is in cache.
 */
#include "eval/eval.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Per-thread scratch. */
typedef struct scratch {
    int32_t *tg;        /* [max_t] distinct targets of the current user */
    float *ts;          /* [max_t] their scores, then distinct scores descending */
    int64_t *ta;        /* [max_t] count of targets per distinct score */
    int64_t *cnt, *eqc; /* [max_t + 1] histogram for the many-scores path */
    rlab_eval_group *g; /* [max_t] */
    int32_t *neg;       /* [n_neg] */
    float *nsc;         /* [n_neg] */
    uint8_t *mark;      /* [n_items] (sampled protocol) */
    float *tile;        /* [ublock][n_items] (factorised scoring) */
    int fail_b;         /* first failing batch row, or -1 */
    rlab_err err;
} scratch;

static const char *const metric_names[6] = {"hr", "recall", "precision", "ndcg", "mrr", "map"};

/* Count x[i] > s and x[i] >= s over x[0..n); NaN counts in neither.
 * int32 lanes: n < 2^31, so no overflow, and the loop vectorises. */
static void count_gt_ge(const float *x, int32_t n, float s, int64_t *gt, int64_t *ge)
{
    int32_t g = 0, e = 0;
#pragma omp simd reduction(+ : g, e)
    for (int32_t i = 0; i < n; i++) {
        g += x[i] > s;
        e += x[i] >= s;
    }
    *gt = g;
    *ge = e;
}

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

static int cmp_f_desc(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x < y) - (x > y);
}

/*
 * Tie groups of the targets against competitors x[0..n) (targets and masked items already
 * NaN). ts[0..nt) are the target scores (overwritten). Returns the number of groups.
 */
static int make_groups(const float *x, int32_t n, scratch *sc, int nt)
{
    float *v = sc->ts;
    qsort(v, (size_t)nt, sizeof *v, cmp_f_desc);
    int G = 0;
    for (int j = 0; j < nt; j++) {
        if (G > 0 && !(v[G - 1] > v[j])) { /* equal to the previous distinct score */
            sc->ta[G - 1]++;
            continue;
        }
        v[G] = v[j];
        sc->ta[G++] = 1;
    }
    int64_t above = 0; /* targets with a strictly higher score */
    if (G <= 8) {
        for (int g = 0; g < G; g++) {
            int64_t gt, ge;
            count_gt_ge(x, n, v[g], &gt, &ge);
            sc->g[g] =
                (rlab_eval_group){.pos = gt + above, .a = sc->ta[g], .n = sc->ta[g] + ge - gt};
            above += sc->ta[g];
        }
        return G;
    }
    /* Many distinct scores: J(x) = first g with v[g] < x (v descending), so x > v[g] iff
     * g >= J(x); cnt[J]++ and gt[g] = sum_{J <= g} cnt[J]. x == v[J-1] goes to eqc. */
    memset(sc->cnt, 0, (size_t)(G + 1) * sizeof *sc->cnt);
    memset(sc->eqc, 0, (size_t)G * sizeof *sc->eqc);
    for (int32_t i = 0; i < n; i++) {
        float s = x[i];
        if (isnan(s))
            continue;
        int lo = 0, hi = G;
        while (lo < hi) {
            int mid = (lo + hi) / 2;
            if (v[mid] < s)
                hi = mid;
            else
                lo = mid + 1;
        }
        sc->cnt[lo]++;
        if (lo > 0 && !(v[lo - 1] > s))
            sc->eqc[lo - 1]++;
    }
    int64_t gt = 0;
    for (int g = 0; g < G; g++) {
        gt += sc->cnt[g];
        sc->g[g] =
            (rlab_eval_group){.pos = gt + above, .a = sc->ta[g], .n = sc->ta[g] + sc->eqc[g]};
        above += sc->ta[g];
    }
    return G;
}

/* Context shared by all users of one call. */
typedef struct ctx {
    const rlab_eval_spec *sp;
    const int *ks;
    int n_ks;
    unsigned metrics;
    int n_metrics;
    rlab_eval_result *r;
} ctx;

/* 7. metrics of user idx at every k from its tie groups sc->g[0..G). */
static void write_metrics(const ctx *c, int64_t idx, const scratch *sc, int G, int nt)
{
    for (int ki = 0; ki < c->n_ks; ki++) {
        rlab_eval_atk m;
        rlab_eval_group_metrics(sc->g, G, nt, c->ks[ki], c->sp->tie, &m);
        const double v[6] = {m.hr, m.recall, m.precision, m.ndcg, m.mrr, m.map};
        int slot = 0;
        for (int t = 0; t < 6; t++) {
            if (!(c->metrics & (1u << t)))
                continue;
            c->r->values[(int64_t)(slot * c->n_ks + ki) * c->r->n_users + idx] = v[t];
            slot++;
        }
    }
}

/* Evaluate user users[idx] whose scores are row[0..n_items). */
static int eval_user(const ctx *c, int64_t idx, float *row, scratch *sc)
{
    const rlab_eval_spec *sp = c->sp;
    int32_t u = c->r->users[idx], N = sp->n_items;
    /* 1. distinct targets and their scores */
    int64_t t0 = sp->tgt_off[u], nt0 = sp->tgt_off[u + 1] - t0;
    memcpy(sc->tg, sp->tgt_items + t0, (size_t)nt0 * sizeof *sc->tg);
    qsort(sc->tg, (size_t)nt0, sizeof *sc->tg, cmp_i32);
    int nt = 0;
    for (int64_t j = 0; j < nt0; j++)
        if (nt == 0 || sc->tg[j] != sc->tg[nt - 1])
            sc->tg[nt++] = sc->tg[j];
    for (int j = 0; j < nt; j++) {
        sc->ts[j] = row[sc->tg[j]];
        if (isnan(sc->ts[j]))
            return rlab_errf(&sc->err, RLAB_EINVAL, "eval: score of user %d, target item %d is NaN",
                             u, sc->tg[j]);
    }
    /* 2-3. mask the history, keep the targets */
    const int32_t *h = NULL;
    int64_t nh = 0;
    if (sp->hist_off) {
        h = sp->hist_items + sp->hist_off[u];
        nh = sp->hist_off[u + 1] - sp->hist_off[u];
        for (int64_t j = 0; j < nh; j++)
            row[h[j]] = NAN;
        for (int j = 0; j < nt; j++)
            row[sc->tg[j]] = sc->ts[j];
    }
    /* Fast path, one target under full ranking (leave-one-out): the top-k list and the
     * target's counts in a single pass over the row. The target is still in place, so it
     * counts in its own ge (never in gt): subtract it. Same groups as make_groups. */
    if (nt == 1 && sp->n_neg <= 0) {
        int64_t gt, ge;
        int32_t *out = sp->keep_topk > 0 ? c->r->topk + idx * sp->keep_topk : NULL;
        int m = rlab_eval_topk_count(row, N, sp->keep_topk, sc->ts[0], out, NULL, &gt, &ge);
        if (m < 0)
            return rlab_errf(&sc->err, RLAB_ENOMEM, "eval: out of memory");
        for (int j = m; j < sp->keep_topk; j++)
            out[j] = -1;
        sc->g[0] = (rlab_eval_group){.pos = gt, .a = 1, .n = 1 + (ge - 1) - gt};
        write_metrics(c, idx, sc, 1, 1);
        return RLAB_OK;
    }
    /* 4. top-k list */
    if (sp->keep_topk > 0) {
        int32_t *out = c->r->topk + idx * sp->keep_topk;
        int m = rlab_eval_topk(row, N, sp->keep_topk, out, NULL);
        if (m < 0)
            return rlab_errf(&sc->err, RLAB_ENOMEM, "eval: out of memory");
        for (int j = m; j < sp->keep_topk; j++)
            out[j] = -1;
    }
    /* 5-6. competitors only, then the tie groups */
    for (int j = 0; j < nt; j++)
        row[sc->tg[j]] = NAN;
    const float *x = row;
    int32_t nx = N;
    if (sp->n_neg > 0) {
        int got = 0;
        int rc = rlab_eval_sample_negatives(N, h, nh, sc->tg, nt, sp->n_neg, sp->seed, u, sc->mark,
                                            sc->neg, &got, &sc->err);
        if (rc)
            return rc;
        for (int j = 0; j < got; j++)
            sc->nsc[j] = row[sc->neg[j]];
        x = sc->nsc;
        nx = got;
    }
    int G = make_groups(x, nx, sc, nt);
    write_metrics(c, idx, sc, G, nt);
    return RLAB_OK;
}

/* Users per factorised block: a tile of about 1 MiB (half the L2 of a core of the machine
 * this was tuned on), so a block's rows are still in cache when they are ranked; a multiple
 * of 8 (the kernel's row group) from 8 to 64. Depends on n_items only, never on threads. */
static int user_block(int32_t n_items)
{
    int64_t ub = ((int64_t)1 << 18) / (n_items > 0 ? n_items : 1);
    ub = ub / 8 * 8;
    return ub < 8 ? 8 : ub > 64 ? 64 : (int)ub;
}

/* Item panels of 16: Vp[p][k][j] = V[16p + j][k] (zero past n_items), so the 16 items of a
 * panel are one 64-byte vector per component k. Packed once per evaluation. */
static float *pack_items(const float *V, int32_t N, int D)
{
    const int64_t np = ((int64_t)N + 15) / 16;
    float *Vp = rlab_malloc_aligned((size_t)(np * 16 * D) * sizeof *Vp);
    if (!Vp)
        return NULL;
    memset(Vp, 0, (size_t)(np * 16 * D) * sizeof *Vp);
    for (int64_t i = 0; i < N; i++)
        for (int k = 0; k < D; k++)
            Vp[(i / 16) * 16 * D + (int64_t)k * 16 + i % 16] = V[i * D + k];
    return Vp;
}

#define RLAB_SIMD_CLONES RLAB_CLONES("avx512f", "avx2", "default")

#if defined(__GNUC__)
typedef float v16f __attribute__((vector_size(64)));
#define RLAB_VEC16 1
#endif

/*
 * T[r][i] = sum_k U[r][k] V[i][k] (+ bias[i]) for r < rows, i < N: the scoring kernel of
 * the factorised path, 8 users x 16 items per step, accumulated in registers over k.
 * Every score is the same chain (k ascending, a multiply then an add: ISO C mode does not
 * contract them into FMAs), whatever the block, the thread or the instruction set the
 * clone was compiled for: the scores are bit-identical across all of them. (A BLAS sgemm
 * is not: this machine's OpenBLAS picks its kernel by CPU detection, and under a VM it
 * took the SSE3 "Prescott" one at a third of the AVX-512 speed.)
 */
RLAB_SIMD_CLONES static void score_tile(const float *U, int rows, int D, const float *Vp, int32_t N,
                                        const float *bias, float *T)
{
    const int64_t np = ((int64_t)N + 15) / 16;
    for (int64_t p = 0; p < np; p++) {
        const float *P = Vp + p * 16 * D;
        const int64_t i0 = p * 16;
        const int w = N - i0 < 16 ? (int)(N - i0) : 16;
        for (int r0 = 0; r0 < rows; r0 += 8) {
            const int nr = rows - r0 < 8 ? rows - r0 : 8;
            const float *u = U + (int64_t)r0 * D;
            float out[8][16];
#ifdef RLAB_VEC16
            if (nr == 8) {
                v16f a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, a4 = {0}, a5 = {0}, a6 = {0}, a7 = {0};
                for (int k = 0; k < D; k++) {
                    v16f v;
                    memcpy(&v, P + k * 16, sizeof v);
                    a0 += v * u[k];
                    a1 += v * u[D + k];
                    a2 += v * u[2 * D + k];
                    a3 += v * u[3 * D + k];
                    a4 += v * u[4 * D + k];
                    a5 += v * u[5 * D + k];
                    a6 += v * u[6 * D + k];
                    a7 += v * u[7 * D + k];
                }
                memcpy(out[0], &a0, sizeof a0);
                memcpy(out[1], &a1, sizeof a1);
                memcpy(out[2], &a2, sizeof a2);
                memcpy(out[3], &a3, sizeof a3);
                memcpy(out[4], &a4, sizeof a4);
                memcpy(out[5], &a5, sizeof a5);
                memcpy(out[6], &a6, sizeof a6);
                memcpy(out[7], &a7, sizeof a7);
            } else
#endif
            {
                for (int r = 0; r < nr; r++)
                    for (int j = 0; j < 16; j++) {
                        float a = 0.0f;
                        for (int k = 0; k < D; k++)
                            a += P[k * 16 + j] * u[(int64_t)r * D + k];
                        out[r][j] = a;
                    }
            }
            for (int r = 0; r < nr; r++) {
                float *t = T + (int64_t)(r0 + r) * N + i0;
                if (bias)
                    for (int j = 0; j < w; j++)
                        t[j] = out[r][j] + bias[i0 + j];
                else
                    memcpy(t, out[r], (size_t)w * sizeof *t);
            }
        }
    }
}

/*
 * Factorised scoring of the batch users b0..b0+nb whose vectors are U[nb][dim]: blocks of
 * ub users, each scored on one thread into that thread's tile and ranked row by row at once,
 * while the tile is in cache.
 */
static void eval_factorised(const ctx *c, int64_t b0, int nb, const float *U, const float *Vp,
                            int ub, scratch *sc, int n_threads)
{
    const rlab_eval_spec *sp = c->sp;
    const int32_t N = sp->n_items;
    const int D = sp->dim;
    const int nblk = (nb + ub - 1) / ub;
#pragma omp parallel for schedule(dynamic, 1) num_threads(n_threads)
    for (int blk = 0; blk < nblk; blk++) {
        scratch *s = &sc[omp_get_thread_num()];
        if (s->fail_b >= 0)
            continue;
        const int r0 = blk * ub, rows = nb - r0 < ub ? nb - r0 : ub;
        score_tile(U + (int64_t)r0 * D, rows, D, Vp, N, sp->item_bias, s->tile);
        for (int r = 0; r < rows; r++) {
            if (eval_user(c, b0 + r0 + r, s->tile + (int64_t)r * N, s)) {
                s->fail_b = r0 + r;
                break;
            }
        }
    }
}

static int validate(const rlab_eval_spec *sp, rlab_err *err)
{
    if (sp->n_users < 1 || sp->n_items < 1)
        return rlab_errf(err, RLAB_EINVAL, "eval: n_users and n_items must be > 0");
    if (sp->dim < 0 || (sp->dim > 0 && (!sp->user_vecs || !sp->item_vecs)))
        return rlab_errf(err, RLAB_EINVAL,
                         "eval: factorised scoring needs dim > 0, user_vecs "
                         "and item_vecs");
    if (!sp->tgt_off || !sp->tgt_items || (!sp->score && sp->dim == 0))
        return rlab_errf(err, RLAB_EINVAL, "eval: targets and a scorer are required");
    if (sp->hist_off && !sp->hist_items)
        return rlab_errf(err, RLAB_EINVAL, "eval: hist_off given without hist_items");
    if (sp->tie < RLAB_TIE_AVERAGE || sp->tie > RLAB_TIE_PESSIMISTIC)
        return rlab_errf(err, RLAB_EINVAL, "eval: unknown tie rule %d", sp->tie);
    if (sp->n_neg < 0 || sp->batch < 0 || sp->keep_topk < 0 || sp->n_threads < 0 ||
        (sp->ks && sp->n_ks < 1) || (sp->users && sp->n_eval < 0))
        return rlab_errf(err, RLAB_EINVAL, "eval: negative count in spec");
    if (sp->metrics & ~RLAB_EM_ALL)
        return rlab_errf(err, RLAB_EINVAL, "eval: unknown metric bits 0x%x", sp->metrics);
    for (int i = 0; sp->ks && i < sp->n_ks; i++)
        if (sp->ks[i] < 1)
            return rlab_errf(err, RLAB_EINVAL, "eval: cut-off k=%d must be >= 1", sp->ks[i]);
    for (int pass = 0; pass < 2; pass++) {
        const int64_t *off = pass ? sp->hist_off : sp->tgt_off;
        const int32_t *it = pass ? sp->hist_items : sp->tgt_items;
        const char *what = pass ? "history" : "target";
        if (!off)
            continue;
        if (off[0] != 0)
            return rlab_errf(err, RLAB_EINVAL, "eval: %s offsets must start at 0", what);
        for (int32_t u = 0; u < sp->n_users; u++) {
            if (off[u + 1] < off[u])
                return rlab_errf(err, RLAB_EINVAL, "eval: %s offsets decrease at user %d", what, u);
            for (int64_t j = off[u]; j < off[u + 1]; j++)
                if (it[j] < 0 || it[j] >= sp->n_items)
                    return rlab_errf(err, RLAB_EINVAL,
                                     "eval: %s item %d of user %d outside [0, %d)", what, it[j], u,
                                     sp->n_items);
        }
    }
    for (int64_t i = 0; sp->users && i < sp->n_eval; i++)
        if (sp->users[i] < 0 || sp->users[i] >= sp->n_users)
            return rlab_errf(err, RLAB_EINVAL, "eval: user %d outside [0, %d)", sp->users[i],
                             sp->n_users);
    return RLAB_OK;
}

static void free_scratch(scratch *s, int n)
{
    for (int i = 0; s && i < n; i++) {
        rlab_free(s[i].tg);
        rlab_free(s[i].ts);
        rlab_free(s[i].ta);
        rlab_free(s[i].cnt);
        rlab_free(s[i].eqc);
        rlab_free(s[i].g);
        rlab_free(s[i].neg);
        rlab_free(s[i].nsc);
        rlab_free(s[i].mark);
        rlab_free_aligned(s[i].tile);
    }
    rlab_free(s);
}

rlab_eval_result *rlab_eval_ranking(const rlab_eval_spec *sp, rlab_err *err)
{
    double t_start = rlab_now();
    if (!sp) {
        rlab_errf(err, RLAB_EINVAL, "eval: no spec");
        return NULL;
    }
    if (validate(sp, err))
        return NULL;
    static const int default_ks[3] = {5, 10, 20};
    ctx c = {.sp = sp,
             .ks = sp->ks ? sp->ks : default_ks,
             .n_ks = sp->ks ? sp->n_ks : 3,
             .metrics = sp->metrics ? sp->metrics : RLAB_EM_ALL};
    int n_types = 0;
    for (int t = 0; t < 6; t++)
        n_types += (c.metrics >> t) & 1u;
    c.n_metrics = n_types * c.n_ks;
    int batch = sp->batch ? sp->batch : 256;
    int n_threads = sp->n_threads ? sp->n_threads : omp_get_max_threads();

    rlab_eval_result *r = rlab_calloc(1, sizeof *r);
    scratch *sc = NULL;
    float *scores = NULL, *Vp = NULL;
    if (!r)
        goto oom;
    c.r = r;
    r->tie = sp->tie;
    r->n_metrics = c.n_metrics;
    if (sp->n_neg > 0)
        snprintf(r->protocol, sizeof r->protocol, "sampled-%d", sp->n_neg);
    else
        snprintf(r->protocol, sizeof r->protocol, "full");

    /* The users to evaluate: those with at least one target. */
    int64_t cand = sp->users ? sp->n_eval : sp->n_users, max_t = 1;
    r->users = rlab_malloc((size_t)(cand > 0 ? cand : 1) * sizeof *r->users);
    if (!r->users)
        goto oom;
    for (int64_t i = 0; i < cand; i++) {
        int32_t u = sp->users ? sp->users[i] : (int32_t)i;
        int64_t nt = sp->tgt_off[u + 1] - sp->tgt_off[u];
        if (nt < 1)
            continue;
        r->users[r->n_users++] = u;
        if (nt > max_t)
            max_t = nt;
    }

    /* Names, values, lists. */
    r->names = rlab_calloc((size_t)(c.n_metrics ? c.n_metrics : 1), sizeof *r->names);
    r->mean = rlab_calloc((size_t)(c.n_metrics ? c.n_metrics : 1), sizeof *r->mean);
    r->values =
        rlab_calloc((size_t)(c.n_metrics * (r->n_users ? r->n_users : 1)), sizeof *r->values);
    if (!r->names || !r->mean || !r->values)
        goto oom;
    int slot = 0;
    for (int t = 0; t < 6; t++) {
        if (!(c.metrics & (1u << t)))
            continue;
        for (int ki = 0; ki < c.n_ks; ki++) {
            char buf[32];
            snprintf(buf, sizeof buf, "%s@%d", metric_names[t], c.ks[ki]);
            if (!(r->names[slot * c.n_ks + ki] = rlab_strdup(buf)))
                goto oom;
        }
        slot++;
    }
    if (sp->keep_topk > 0) {
        r->topk_w = sp->keep_topk;
        r->topk = rlab_malloc((size_t)(r->n_users ? r->n_users : 1) * (size_t)sp->keep_topk *
                              sizeof *r->topk);
        if (!r->topk)
            goto oom;
    }

    /* Per-thread scratch and the score batch (batch x n_items floats). */
    sc = rlab_calloc((size_t)n_threads, sizeof *sc);
    if (!sc)
        goto oom;
    for (int i = 0; i < n_threads; i++) {
        scratch *s = &sc[i];
        s->tg = rlab_malloc((size_t)max_t * sizeof *s->tg);
        s->ts = rlab_malloc((size_t)max_t * sizeof *s->ts);
        s->ta = rlab_malloc((size_t)max_t * sizeof *s->ta);
        s->cnt = rlab_malloc((size_t)(max_t + 1) * sizeof *s->cnt);
        s->eqc = rlab_malloc((size_t)max_t * sizeof *s->eqc);
        s->g = rlab_malloc((size_t)max_t * sizeof *s->g);
        if (!s->tg || !s->ts || !s->ta || !s->cnt || !s->eqc || !s->g)
            goto oom;
        if (sp->n_neg > 0) {
            s->neg = rlab_malloc((size_t)sp->n_neg * sizeof *s->neg);
            s->nsc = rlab_malloc((size_t)sp->n_neg * sizeof *s->nsc);
            s->mark = rlab_calloc((size_t)sp->n_items, 1);
            if (!s->neg || !s->nsc || !s->mark)
                goto oom;
        }
    }
    int64_t nb_max = r->n_users < batch ? r->n_users : batch;
    const int ub = user_block(sp->n_items);
    if (sp->dim > 0) {
        if (!(Vp = pack_items(sp->item_vecs, sp->n_items, sp->dim)))
            goto oom;
        /* the batch holds user vectors; each thread scores into its own tile */
        scores =
            rlab_malloc_aligned((size_t)(nb_max ? nb_max : 1) * (size_t)sp->dim * sizeof *scores);
        for (int i = 0; scores && i < n_threads; i++)
            if (!(sc[i].tile =
                      rlab_malloc_aligned((size_t)ub * (size_t)sp->n_items * sizeof *sc[i].tile)))
                goto oom;
    } else {
        scores = rlab_malloc_aligned((size_t)(nb_max ? nb_max : 1) * (size_t)sp->n_items *
                                     sizeof *scores);
    }
    if (!scores)
        goto oom;

    for (int64_t b0 = 0; b0 < r->n_users; b0 += batch) {
        if (sp->cancel && sp->cancel(sp->cancel_ud)) {
            rlab_errf(err, RLAB_ECANCELED, "eval: cancelled after %lld of %lld users",
                      (long long)b0, (long long)r->n_users);
            goto fail;
        }
        int nb = (int)(r->n_users - b0 < batch ? r->n_users - b0 : batch);
        rlab_err serr = {0};
        int rc = sp->dim > 0 ? sp->user_vecs(sp->vec_ud, r->users + b0, nb, scores, &serr)
                             : sp->score(sp->score_ud, r->users + b0, nb, scores, &serr);
        if (rc) {
            if (serr.code && err)
                *err = serr;
            else
                rlab_errf(err, rc, "eval: scorer failed with %s", rlab_status_name(rc));
            if (err)
                err->code = rc;
            goto fail;
        }
        for (int i = 0; i < n_threads; i++)
            sc[i].fail_b = -1;
        if (sp->dim > 0) {
            eval_factorised(&c, b0, nb, scores, Vp, ub, sc, n_threads);
        } else {
#pragma omp parallel for schedule(dynamic, 4) num_threads(n_threads)
            for (int b = 0; b < nb; b++) {
                scratch *s = &sc[omp_get_thread_num()];
                if (s->fail_b >= 0)
                    continue;
                if (eval_user(&c, b0 + b, scores + (int64_t)b * sp->n_items, s))
                    s->fail_b = b;
            }
        }
        /* Report the failure of the lowest batch row (deterministic across threads). */
        int worst = -1;
        for (int i = 0; i < n_threads; i++)
            if (sc[i].fail_b >= 0 && (worst < 0 || sc[i].fail_b < sc[worst].fail_b))
                worst = i;
        if (worst >= 0) {
            if (err)
                *err = sc[worst].err;
            goto fail;
        }
    }

    /* Means, summed serially in user order. */
    for (int m = 0; m < c.n_metrics; m++) {
        double s = 0.0;
        for (int64_t i = 0; i < r->n_users; i++)
            s += r->values[(int64_t)m * r->n_users + i];
        r->mean[m] = r->n_users ? s / (double)r->n_users : 0.0;
    }
    free_scratch(sc, n_threads);
    rlab_free_aligned(scores);
    rlab_free_aligned(Vp);
    r->seconds = rlab_now() - t_start;
    return r;

oom:
    rlab_errf(err, RLAB_ENOMEM, "eval: out of memory");
fail:
    free_scratch(sc, n_threads);
    rlab_free_aligned(scores);
    rlab_free_aligned(Vp);
    rlab_eval_result_free(r);
    return NULL;
}

int rlab_eval_result_find(const rlab_eval_result *r, const char *name)
{
    for (int i = 0; r && name && i < r->n_metrics; i++)
        if (r->names[i] && strcmp(r->names[i], name) == 0)
            return i;
    return -1;
}

void rlab_eval_result_free(rlab_eval_result *r)
{
    if (!r)
        return;
    for (int i = 0; r->names && i < r->n_metrics; i++)
        rlab_free(r->names[i]);
    rlab_free(r->names);
    rlab_free(r->mean);
    rlab_free(r->values);
    rlab_free(r->users);
    rlab_free(r->topk);
    rlab_free(r);
}
