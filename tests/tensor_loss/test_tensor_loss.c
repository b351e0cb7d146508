/*
 * Test organization (forward values and contracts of core/tensor/loss.h; the gradient checks
 * live in test_tensor_loss_grad.c):
 *   tensor.loss.xent.*     softmax_xent: uniform logits = log V, naive full-[N, V] reference
 *                          for value and all gradients (padding rows, chunk not dividing N,
 *                          vector tails; packed-panel kernel and sgemm), all-padding rows, arena
 * peak O(chunk x V) not O(N x V), bit-identical reruns, a second backward, bad targets / shapes, a
 * full arena tensor.loss.sampled.*  hand-computed sampled softmax with and without logQ
 *   tensor.loss.bce.*, .bpr.*, .margin.*, .dpo.*   closed forms (log 2 at zero margins,
 *                          saturated logits stay finite)
 *   tensor.loss.infonce.*  orthonormal rows by hand, normalisation invariance, symmetric
 *   tensor.loss.kl.*, .soft_xent.*   two-point distributions by hand, temperature
 *   tensor.loss.soft_items.*  sparse-target soft cross-entropy against an item table: equals
 *                          the dense soft_xent of h items^T with the expanded target (value
 *                          and both gradients, keep and chunk modes, repeated columns, rows
 *                          without entries, base 0), hand value, errors
 *   tensor.loss.poison.*   sticky errors propagate
 *   tensor.loss.kernels.1  the fused mode's backward products against their oracles
 *   tensor.loss.xent.fused.*  the fused mode (item blocks): against the row mode (CE and the
 *                          sparse soft CE, to float rounding), against the naive reference,
 *                          bit-identical for 1 and 2 threads, a second backward
 */
#include "harness.h"
#include "tensor/kernels.h"
#include "tensor/loss.h"
#include "tensor/ops.h"

#include <stdlib.h>
#include <string.h>

#define LN2 0.69314718055994531

static rlab_tape *new_tape(size_t mb)
{
    rlab_err err = {0};
    rlab_tape *t = rlab_tape_new(mb << 20, 256, &err);
    CHECK_MSG(t != NULL, "tape: %s", err.msg);
    return t;
}

/* A parameter block with tensors of the given 2-D shapes, N(0, scale^2) from seed. */
static rlab_params *params2(int n, const int64_t (*shapes)[2], float scale, uint64_t seed)
{
    rlab_param_spec specs[4];
    static const char *names[4] = {"p0", "p1", "p2", "p3"};
    for (int i = 0; i < n; i++)
        specs[i] =
            (rlab_param_spec){names[i], 2, {shapes[i][0], shapes[i][1]}, RLAB_INIT_NORMAL, scale};
    rlab_rng rng;
    rlab_rng_seed(&rng, seed);
    rlab_err err = {0};
    rlab_params *P = rlab_params_new(specs, n, &rng, &err);
    CHECK_MSG(P != NULL, "params: %s", err.msg);
    return P;
}

/* ---- softmax_xent ------------------------------------------------------------------------ */
static void t_xent_uniform(void)
{
    /* h = 0: every logit 0, loss log V for any target (V = 37, not a multiple of 8) */
    enum { N = 5, V = 37, C = 3 };
    float h[N * C] = {0}, items[V * C];
    for (int i = 0; i < V * C; i++)
        items[i] = (float)(i % 7) - 3.0f;
    const int32_t tg[N] = {0, 36, -1, 17, 3};
    rlab_tape *t = new_tape(4);
    rlab_tensor *H = rlab_t_input(t, h, 2, (int64_t[]){N, C});
    rlab_tensor *I = rlab_t_input(t, items, 2, (int64_t[]){V, C});
    rlab_tensor *L = rlab_t_softmax_xent(t, H, I, NULL, tg, 2);
    CHECK_EQ_INT(rlab_tape_error(t), RLAB_OK);
    CHECK_NEAR(L->data[0], log(37.0), 1e-5);
    CHECK(L->grad == NULL); /* no source requires grad */
    /* a bias of +log 2 on item 36 only: row with target 36 gets log(38) - log(2) ... */
    float bias[V] = {0};
    bias[36] = (float)LN2;
    rlab_tensor *B = rlab_t_input(t, bias, 1, (int64_t[]){V});
    L = rlab_t_softmax_xent(t, H, I, B, tg, 0);
    /* sum exp = 36 + 2 = 38; targets 0,17,3: log 38; target 36: log 38 - log 2 */
    CHECK_NEAR(L->data[0], log(38.0) - LN2 / 4.0, 1e-5);
    rlab_tape_free(t);
}

/* Naive reference in double: logits [N, V] materialised. Returns the loss; fills dh, di, db
 * (gradients of the mean loss). */
static double xent_naive(const float *h, const float *items, const float *bias, const int32_t *tg,
                         int64_t N, int64_t V, int64_t C, double *dh, double *di, double *db)
{
    double *z = calloc((size_t)(N * V), sizeof *z);
    int64_t nv = 0;
    double loss = 0.0;
    memset(dh, 0, (size_t)(N * C) * sizeof *dh);
    memset(di, 0, (size_t)(V * C) * sizeof *di);
    memset(db, 0, (size_t)V * sizeof *db);
    for (int64_t i = 0; i < N; i++)
        nv += tg[i] >= 0;
    for (int64_t i = 0; i < N; i++) {
        if (tg[i] < 0)
            continue;
        double m = -1e300, s = 0.0;
        for (int64_t v = 0; v < V; v++) {
            double d = bias ? (double)bias[v] : 0.0;
            for (int64_t k = 0; k < C; k++)
                d += (double)h[i * C + k] * (double)items[v * C + k];
            z[i * V + v] = d;
            m = d > m ? d : m;
        }
        for (int64_t v = 0; v < V; v++)
            s += exp(z[i * V + v] - m);
        double lse = m + log(s);
        loss += lse - z[i * V + tg[i]];
        for (int64_t v = 0; v < V; v++) {
            double g = (exp(z[i * V + v] - lse) - (v == tg[i])) / (double)nv;
            db[v] += g;
            for (int64_t k = 0; k < C; k++) {
                dh[i * C + k] += g * (double)items[v * C + k];
                di[v * C + k] += g * (double)h[i * C + k];
            }
        }
    }
    free(z);
    return nv ? loss / (double)nv : 0.0;
}

static double max_abs_diff(const float *a, const double *b, int64_t n)
{
    double w = 0.0;
    for (int64_t i = 0; i < n; i++)
        w = fmax(w, fabs((double)a[i] - b[i]));
    return w;
}

static void xent_vs_naive_mode(int64_t N, int64_t V, int64_t C, int64_t chunk, const int32_t *tg,
                               int with_bias)
{
    const int64_t shapes[3][2] = {{N, C}, {V, C}, {1, V}};
    rlab_params *P = params2(3, shapes, 0.7f, (uint64_t)(N * 131 + V));
    rlab_tape *t = new_tape(16);
    double *dh = malloc((size_t)(N * C) * sizeof *dh), *di = malloc((size_t)(V * C) * sizeof *di),
           *db = malloc((size_t)V * sizeof *db);
    double ref = xent_naive(P->t[0].data, P->t[1].data, with_bias ? P->t[2].data : NULL, tg, N, V,
                            C, dh, di, db);
    rlab_params_zero_grad(P);
    rlab_tensor *L =
        rlab_t_softmax_xent(t, &P->t[0], &P->t[1], with_bias ? &P->t[2] : NULL, tg, chunk);
    CHECK_EQ_INT(rlab_tape_backward(t, L), RLAB_OK);
    CHECK(L->p.i[1] == (int64_t)rlab_t_loss_set_keep(1)); /* mode as asked (and restore) */
    CHECK_MSG(fabs((double)L->data[0] - ref) <= 1e-5 * fmax(1.0, fabs(ref)),
              "N %lld V %lld chunk %lld: loss %.9g vs naive %.9g", (long long)N, (long long)V,
              (long long)chunk, (double)L->data[0], ref);
    CHECK_NEAR(max_abs_diff(P->t[0].grad, dh, N * C), 0.0, 2e-6);
    CHECK_NEAR(max_abs_diff(P->t[1].grad, di, V * C), 0.0, 2e-6);
    if (with_bias)
        CHECK_NEAR(max_abs_diff(P->t[2].grad, db, V), 0.0, 2e-6);
    else
        CHECK_NEAR(max_abs_diff(P->t[2].grad, (double[1]){0}, 1), 0.0, 0.0);
    free(dh);
    free(di);
    free(db);
    rlab_tape_free(t);
    rlab_params_free(P);
}

/* both modes: [nv, V] kept for the backward, and one chunk buffer with a recompute; each with
 * the packed-panel logits kernel (where the CPU has it; not with a bias) and with sgemm */
static void xent_vs_naive(int64_t N, int64_t V, int64_t C, int64_t chunk, const int32_t *tg,
                          int with_bias)
{
    for (int panel = 1; panel >= 0; panel--)
        for (int keep = 1; keep >= 0; keep--) {
            int was = rlab_k_panel_set_enabled(panel);
            rlab_t_loss_set_keep(keep);
            xent_vs_naive_mode(N, V, C, chunk, tg, with_bias);
            rlab_k_panel_set_enabled(was);
        }
}

static void t_xent_naive_small(void)
{
    const int32_t tg[7] = {12, -1, 0, 5, -1, 5, 7}; /* N = 7, chunk 3 */
    xent_vs_naive(7, 13, 6, 3, tg, 1);
    xent_vs_naive(7, 13, 6, 3, tg, 0);
    xent_vs_naive(7, 13, 6, 100, tg, 1); /* chunk larger than N */
}

static void t_xent_naive_larger(void)
{
    enum { N = 50, V = 301, C = 16 };
    int32_t tg[N];
    for (int i = 0; i < N; i++)
        tg[i] = i % 9 == 4 ? -1 : (int32_t)((i * 37) % V);
    xent_vs_naive(N, V, C, 7, tg, 1);
    xent_vs_naive(N, V, C, 0, tg, 0);
    /* 45 x 1000 logits per chunk: large enough for the multi-threaded row loops */
    int32_t tg2[N];
    for (int i = 0; i < N; i++)
        tg2[i] = i % 10 == 3 ? -1 : (int32_t)((i * 53) % 1000);
    xent_vs_naive(N, 1000, 8, 0, tg2, 1);
}

static void t_xent_all_padding(void)
{
    const int32_t tg[4] = {-1, -1, -1, -1};
    const int64_t shapes[3][2] = {{4, 3}, {5, 3}, {1, 5}};
    rlab_params *P = params2(3, shapes, 1.0f, 3);
    rlab_tape *t = new_tape(4);
    rlab_params_zero_grad(P);
    rlab_tensor *L = rlab_t_softmax_xent(t, &P->t[0], &P->t[1], &P->t[2], tg, 2);
    CHECK_EQ_INT(rlab_tape_backward(t, L), RLAB_OK);
    CHECK_NEAR(L->data[0], 0.0, 0.0); /* no NaN from 0/0 */
    for (size_t i = 0; i < P->count; i++)
        CHECK_NEAR(P->grad[i], 0.0, 0.0);
    rlab_tape_free(t);
    rlab_params_free(P);
}

/* Peak arena bytes of one forward+backward with N rows, V items, chunk rows, an arena of mb
 * MB and keep mode allowed or not; *kept = the mode used. */
static size_t xent_peak(int64_t N, int64_t V, int64_t C, int64_t chunk, size_t mb, int keep,
                        int *kept)
{
    const int64_t shapes[2][2] = {{N, C}, {V, C}};
    rlab_params *P = params2(2, shapes, 0.3f, 11);
    int32_t *tg = malloc((size_t)N * sizeof *tg);
    for (int64_t i = 0; i < N; i++)
        tg[i] = (int32_t)(i % V);
    rlab_tape *t = new_tape(mb);
    int old = rlab_t_loss_set_keep(keep);
    rlab_tensor *L = rlab_t_softmax_xent(t, &P->t[0], &P->t[1], NULL, tg, chunk);
    rlab_t_loss_set_keep(old);
    CHECK_EQ_INT(rlab_tape_backward(t, L), RLAB_OK);
    *kept = (int)L->p.i[1];
    size_t peak = rlab_tape_peak(t);
    rlab_tape_free(t);
    rlab_params_free(P);
    free(tg);
    return peak;
}

static void t_xent_peak(void)
{
    enum { V = 2000, C = 8, CHUNK = 16 };
    int k1, k2;
    const size_t chunk_buf = (size_t)CHUNK * V * sizeof(float); /* 128 KB */
    for (int keep = 0; keep < 2; keep++) {
        /* keep forbidden, or allowed but [N, V] (8 MB at N = 1024) not fitting a 2 MB arena */
        size_t p1 = xent_peak(64, V, C, CHUNK, keep ? 1 : 64, keep, &k1),
               p2 = xent_peak(1024, V, C, CHUNK, keep ? 2 : 64, keep, &k2);
        CHECK(k2 == 0 && (keep || k1 == 0));
        if (keep) /* 64 x 2000 floats = 512 KB fits 3/4 of a 1 MB arena: kept */
            CHECK_MSG(k1 == 1 && p1 >= (size_t)64 * V * sizeof(float), "kept %d peak %zu", k1, p1);
        /* one chunk buffer, the packed item table when the panel kernel runs (V C floats, as
         * big as the items themselves) plus O(N) bookkeeping; [N, V] would be 8 MB at N = 1024 */
        const size_t packed =
            rlab_k_panel_available() ? rlab_k_panel_floats(V, C) * sizeof(float) : 0;
        CHECK_MSG(p2 < chunk_buf + packed + 64 * 1024,
                  "peak %zu for N=1024 exceeds chunk buffer %zu + packed %zu + 64K", p2, chunk_buf,
                  packed);
        CHECK_MSG(p2 >= chunk_buf, "peak %zu below the chunk buffer %zu?", p2, chunk_buf);
        /* growth with N: 960 more rows cost a few floats each, not V floats each */
        if (!keep)
            CHECK_MSG(p2 - p1 < (size_t)(1024 - 64) * 32,
                      "peak grew by %zu bytes from N=64 to N=1024", p2 - p1);
    }
    /* a large arena keeps all rows: peak >= [N, V] */
    size_t p3 = xent_peak(1024, V, C, CHUNK, 64, 1, &k1);
    CHECK_MSG(k1 == 1 && p3 >= (size_t)1024 * V * sizeof(float), "kept %d peak %zu", k1, p3);
}

/* keep mode and chunk mode agree to float rounding (value and every gradient) */
static void t_xent_keep_vs_chunk(void)
{
    enum { N = 200, V = 1500, C = 24 };
    int32_t tg[N];
    for (int i = 0; i < N; i++)
        tg[i] = i % 7 == 2 ? -1 : (int32_t)((i * 211) % V);
    const int64_t shapes[3][2] = {{N, C}, {V, C}, {1, V}};
    rlab_params *P = params2(3, shapes, 0.8f, 21);
    float *g[2] = {malloc(P->count * sizeof(float)), malloc(P->count * sizeof(float))};
    float l[2] = {0};
    int kept[2] = {0};
    rlab_tape *t = new_tape(16);
    for (int keep = 0; keep < 2; keep++) {
        rlab_tape_reset(t);
        rlab_params_zero_grad(P);
        int old = rlab_t_loss_set_keep(keep);
        rlab_tensor *L = rlab_t_softmax_xent(t, &P->t[0], &P->t[1], &P->t[2], tg, 32);
        rlab_t_loss_set_keep(old);
        CHECK_EQ_INT(rlab_tape_backward(t, L), RLAB_OK);
        l[keep] = L->data[0];
        kept[keep] = (int)L->p.i[1];
        memcpy(g[keep], P->grad, P->count * sizeof(float));
    }
    CHECK(kept[0] == 0 && kept[1] == 1);
    CHECK_NEAR(l[0], l[1], 1e-6 * fabs((double)l[0]));
    double worst = 0.0, big = 0.0;
    for (size_t i = 0; i < P->count; i++) {
        worst = fmax(worst, fabs((double)g[0][i] - (double)g[1][i]));
        big = fmax(big, fabs((double)g[0][i]));
    }
    CHECK_MSG(worst <= 1e-5 * big && big > 0.0, "grads differ by %g (max %g)", worst, big);
    free(g[0]);
    free(g[1]);
    rlab_tape_free(t);
    rlab_params_free(P);
}

static void t_xent_deterministic(void)
{
    enum { N = 40, V = 777, C = 12 };
    int32_t tg[N];
    for (int i = 0; i < N; i++)
        tg[i] = i % 5 == 0 ? -1 : (int32_t)((i * 101) % V);
    const int64_t shapes[3][2] = {{N, C}, {V, C}, {1, V}};
    rlab_params *P = params2(3, shapes, 1.0f, 9);
    float *g1 = malloc(P->count * sizeof *g1);
    float l1 = 0.0f;
    rlab_tape *t = new_tape(16);
    for (int rep = 0; rep < 4; rep++) {
        rlab_t_loss_set_keep(rep < 2);
        rlab_tape_reset(t);
        rlab_params_zero_grad(P);
        rlab_tensor *L = rlab_t_softmax_xent(t, &P->t[0], &P->t[1], &P->t[2], tg, 6);
        CHECK_EQ_INT(rlab_tape_backward(t, L), RLAB_OK);
        if (rep % 2 == 0) {
            l1 = L->data[0];
            memcpy(g1, P->grad, P->count * sizeof *g1);
        } else {
            CHECK(memcmp(&l1, L->data, sizeof l1) == 0);
            CHECK(memcmp(g1, P->grad, P->count * sizeof *g1) == 0);
        }
    }
    rlab_t_loss_set_keep(1);
    /* without a bias, on the panel kernel (where the CPU has it): the same bits for 1 and 2
     * threads (rows are split between threads, the backward sgemms into fixed blocks) */
    if (rlab_k_panel_available()) {
        const int nt0 = rlab_t_num_threads();
        for (int nt = 1; nt <= 2; nt++) {
            rlab_t_set_num_threads(nt);
            rlab_tape_reset(t);
            rlab_params_zero_grad(P);
            rlab_tensor *L = rlab_t_softmax_xent(t, &P->t[0], &P->t[1], NULL, tg, 0);
            CHECK_EQ_INT(rlab_tape_backward(t, L), RLAB_OK);
            if (nt == 1) {
                l1 = L->data[0];
                memcpy(g1, P->grad, P->count * sizeof *g1);
            } else {
                CHECK(memcmp(&l1, L->data, sizeof l1) == 0);
                CHECK(memcmp(g1, P->grad, P->count * sizeof *g1) == 0);
            }
        }
        rlab_t_set_num_threads(nt0);
    }
    free(g1);
    rlab_tape_free(t);
    rlab_params_free(P);
}

/* A second backward over the same forward (seed 1 again: out->grad becomes 2) must add twice
 * the gradient again: the backward may not trust buffers it overwrote the first time. */
static void t_xent_backward_twice(void)
{
    enum { N = 9, V = 21, C = 5 };
    const int32_t tg[N] = {1, 20, -1, 3, 4, 5, 6, 0, 19};
    const int64_t shapes[3][2] = {{N, C}, {V, C}, {1, V}};
    rlab_params *P = params2(3, shapes, 1.0f, 4);
    float *g1 = malloc(P->count * sizeof *g1);
    rlab_tape *t = new_tape(4);
    for (int64_t chunk = 2; chunk <= 16 * 8 + 1; chunk *= 8) { /* several chunks, then one */
        rlab_t_loss_set_keep(chunk > 16);                      /* chunk mode, then keep mode */
        rlab_tape_reset(t);
        rlab_params_zero_grad(P);
        rlab_tensor *L = rlab_t_softmax_xent(t, &P->t[0], &P->t[1], &P->t[2], tg, chunk);
        CHECK_EQ_INT(rlab_tape_backward(t, L), RLAB_OK);
        memcpy(g1, P->grad, P->count * sizeof *g1);
        CHECK_EQ_INT(rlab_tape_backward(t, L), RLAB_OK);
        double worst = 0.0;
        for (size_t i = 0; i < P->count; i++)
            worst = fmax(worst, fabs((double)P->grad[i] - 3.0 * (double)g1[i]));
        CHECK_MSG(worst < 1e-5, "chunk %lld: second backward off by %g", (long long)chunk, worst);
    }
    rlab_t_loss_set_keep(1);
    free(g1);
    rlab_tape_free(t);
    rlab_params_free(P);
}

static void t_xent_errors(void)
{
    float h[6] = {0}, items[9] = {0}, bias[2] = {0};
    const int32_t bad[2] = {0, 3}, ok[2] = {0, 2};
    rlab_tape *t = new_tape(1);
    rlab_tensor *H = rlab_t_input(t, h, 2, (int64_t[]){2, 3});
    rlab_tensor *I = rlab_t_input(t, items, 2, (int64_t[]){3, 3});
    rlab_tensor *L = rlab_t_softmax_xent(t, H, I, NULL, bad, 0);
    CHECK(L->flags & RLAB_T_POISON);
    CHECK_EQ_INT(rlab_tape_error(t), RLAB_EINVAL);
    CHECK_STR_CONTAINS(rlab_tape_errmsg(t), "target 3 of row 1");
    rlab_tape_reset(t);
    H = rlab_t_input(t, h, 2, (int64_t[]){3, 2}); /* C = 2 vs items C = 3 */
    I = rlab_t_input(t, items, 2, (int64_t[]){3, 3});
    L = rlab_t_softmax_xent(t, H, I, NULL, ok, 0);
    CHECK_EQ_INT(rlab_tape_error(t), RLAB_EINVAL);
    CHECK_STR_CONTAINS(rlab_tape_errmsg(t), "[3, 2]");
    rlab_tape_reset(t);
    H = rlab_t_input(t, h, 2, (int64_t[]){2, 3});
    I = rlab_t_input(t, items, 2, (int64_t[]){3, 3});
    rlab_tensor *B = rlab_t_input(t, bias, 1, (int64_t[]){2});
    L = rlab_t_softmax_xent(t, H, I, B, ok, 0);
    CHECK_STR_CONTAINS(rlab_tape_errmsg(t), "bias");
    rlab_tape_free(t);
}

static void t_xent_arena_full(void)
{
    /* chunk buffer 64 x 5000 floats = 1.28 MB does not fit a 1 MB arena: ENOMEM, no crash */
    enum { N = 64, V = 5000, C = 4 };
    const int64_t shapes[2][2] = {{N, C}, {V, C}};
    rlab_params *P = params2(2, shapes, 1.0f, 2);
    int32_t tg[N] = {0};
    rlab_tape *t = new_tape(1);
    rlab_tensor *L = rlab_t_softmax_xent(t, &P->t[0], &P->t[1], NULL, tg, 64);
    CHECK(L->flags & RLAB_T_POISON);
    CHECK_EQ_INT(rlab_tape_error(t), RLAB_ENOMEM);
    rlab_tape_reset(t);
    L = rlab_t_softmax_xent(t, &P->t[0], &P->t[1], NULL, tg, 8); /* a smaller chunk fits */
    CHECK_EQ_INT(rlab_tape_error(t), RLAB_OK);
    CHECK_NEAR(L->data[0], L->data[0], 0.0); /* finite */
    rlab_tape_free(t);
    rlab_params_free(P);
}

/* ---- sampled softmax --------------------------------------------------------------------- */
static void t_sampled_hand(void)
{
    /* h = [1, 0]; items: 0 -> [2, 0], 1 -> [0, 5], 2 -> [1, 1]: logits 2, 0, 1 */
    float h[4] = {1.0f, 0.0f, 0.0f, 1.0f}, items[6] = {2, 0, 0, 5, 1, 1};
    const int32_t tg[2] = {0, -1}, negs[4] = {1, 2, 0, 0};
    rlab_tape *t = new_tape(1);
    rlab_tensor *H = rlab_t_input(t, h, 2, (int64_t[]){2, 2});
    rlab_tensor *I = rlab_t_input(t, items, 2, (int64_t[]){3, 2});
    rlab_tensor *L = rlab_t_sampled_softmax(t, H, I, tg, negs, 2, NULL);
    CHECK_EQ_INT(rlab_tape_error(t), RLAB_OK);
    double want = log(exp(2.0) + exp(0.0) + exp(1.0)) - 2.0; /* row 1 is padding */
    CHECK_NEAR(L->data[0], want, 1e-6);
    /* logQ: subtract log q; q = (e^-2, 1, e^-1) makes the corrected logits 4, 0, 2 */
    const float logq[3] = {-2.0f, 0.0f, -1.0f};
    L = rlab_t_sampled_softmax(t, H, I, tg, negs, 2, logq);
    CHECK_NEAR(L->data[0], log(exp(4.0) + 1.0 + exp(2.0)) - 4.0, 1e-6);
    /* an excluded negative (-1) drops out of the denominator */
    const int32_t negs2[4] = {-1, 2, 0, 0};
    L = rlab_t_sampled_softmax(t, H, I, tg, negs2, 2, NULL);
    CHECK_NEAR(L->data[0], log(exp(2.0) + exp(1.0)) - 2.0, 1e-6);
    const int32_t negs3[4] = {1, 7, 0, 0};
    L = rlab_t_sampled_softmax(t, H, I, tg, negs3, 2, NULL);
    CHECK_STR_CONTAINS(rlab_tape_errmsg(t), "item id 7");
    rlab_tape_free(t);
}

/* ---- BCE / BPR / margin / DPO ------------------------------------------------------------ */
static void t_bce_values(void)
{
    float x[4] = {0.0f, 0.0f, 40.0f, -40.0f};
    const float y[4] = {1.0f, 0.0f, 1.0f, 1.0f}, w[4] = {1.0f, 3.0f, 1.0f, 0.5f};
    rlab_tape *t = new_tape(1);
    rlab_tensor *X = rlab_t_input(t, x, 1, (int64_t[]){2});
    CHECK_NEAR(rlab_t_bce_logits(t, X, y, NULL)->data[0], LN2, 1e-7); /* logit 0: log 2 */
    X = rlab_t_input(t, x, 1, (int64_t[]){4});
    /* (log2 + 3 log2 + ~0 + 0.5 * 40) / 4: saturated logits stay finite */
    CHECK_NEAR(rlab_t_bce_logits(t, X, y, w)->data[0], (4.0 * LN2 + 20.0) / 4.0, 1e-5);
    CHECK_EQ_INT(rlab_tape_error(t), RLAB_OK);
    rlab_tape_free(t);
}

static void t_bpr_values(void)
{
    float p[3] = {1.5f, 100.0f, -50.0f}, n[3] = {1.5f, 0.0f, 50.0f};
    rlab_tape *t = new_tape(1);
    rlab_tensor *P = rlab_t_input(t, p, 1, (int64_t[]){1}),
                *N = rlab_t_input(t, n, 1, (int64_t[]){1});
    CHECK_NEAR(rlab_t_bpr(t, P, N)->data[0], LN2, 1e-7); /* pos = neg: log 2 */
    P = rlab_t_input(t, p, 1, (int64_t[]){3});
    N = rlab_t_input(t, n, 1, (int64_t[]){3});
    CHECK_NEAR(rlab_t_bpr(t, P, N)->data[0], (LN2 + 0.0 + 100.0) / 3.0, 1e-5);
    rlab_tensor *N2 = rlab_t_input(t, n, 1, (int64_t[]){2});
    rlab_t_bpr(t, P, N2);
    CHECK_STR_CONTAINS(rlab_tape_errmsg(t), "differ");
    rlab_tape_free(t);
}

static void t_margin_values(void)
{
    float p[3] = {1.0f, 3.0f, 0.5f}, n[3] = {0.0f, 0.0f, 0.5f};
    rlab_tape *t = new_tape(1);
    rlab_tensor *P = rlab_t_input(t, p, 1, (int64_t[]){3}),
                *N = rlab_t_input(t, n, 1, (int64_t[]){3});
    /* margin 2: max(0, 2-1) + max(0, 2-3) + max(0, 2-0) = 1 + 0 + 2 */
    CHECK_NEAR(rlab_t_margin_rank(t, P, N, 2.0f)->data[0], 1.0, 1e-7);
    rlab_tape_free(t);
}

static void t_dpo_values(void)
{
    float pw[2] = {-3.0f, -1.0f}, pl[2] = {-3.0f, -4.0f}, rw[2] = {-2.0f, -2.0f},
          rl[2] = {-2.0f, -3.0f};
    rlab_tape *t = new_tape(1);
    rlab_tensor *PW = rlab_t_input(t, pw, 1, (int64_t[]){1}),
                *PL = rlab_t_input(t, pl, 1, (int64_t[]){1}),
                *RW = rlab_t_input(t, rw, 1, (int64_t[]){1}),
                *RL = rlab_t_input(t, rl, 1, (int64_t[]){1});
    CHECK_NEAR(rlab_t_dpo(t, PW, PL, RW, RL, 1.0f)->data[0], LN2, 1e-7); /* zero margin */
    PW = rlab_t_input(t, pw, 1, (int64_t[]){2});
    PL = rlab_t_input(t, pl, 1, (int64_t[]){2});
    RW = rlab_t_input(t, rw, 1, (int64_t[]){2});
    RL = rlab_t_input(t, rl, 1, (int64_t[]){2});
    /* row 2: (pw - rw) - (pl - rl) = 1 - (-1) = 2, beta 0.5: softplus(-1) */
    CHECK_NEAR(rlab_t_dpo(t, PW, PL, RW, RL, 0.5f)->data[0], (LN2 + log1p(exp(-1.0))) / 2.0, 1e-6);
    /* without a reference: z = 0.5 ((pw - pl)) = 0 and 1.5 */
    CHECK_NEAR(rlab_t_dpo(t, PW, PL, NULL, NULL, 0.5f)->data[0], (LN2 + log1p(exp(-1.5))) / 2.0,
               1e-6);
    CHECK_EQ_INT(rlab_tape_error(t), RLAB_OK);
    rlab_tape_free(t);
}

/* ---- InfoNCE ----------------------------------------------------------------------------- */
static void t_infonce_hand(void)
{
    /* a = b = rows of I3: S = I / tau; each row: log(e^(1/tau) + 2) - 1/tau */
    float a[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1}, a3[9] = {3, 0, 0, 0, 0.5f, 0, 0, 0, 7};
    const double tau = 0.5, want = log(exp(1.0 / tau) + 2.0) - 1.0 / tau;
    rlab_tape *t = new_tape(1);
    rlab_tensor *A = rlab_t_input(t, a, 2, (int64_t[]){3, 3});
    CHECK_NEAR(rlab_t_infonce(t, A, A, 0.5f, 0, 0)->data[0], want, 1e-6);
    CHECK_NEAR(rlab_t_infonce(t, A, A, 0.5f, 1, 1)->data[0], want, 1e-6);
    /* scaled rows: normalisation restores the same value */
    rlab_tensor *A3 = rlab_t_input(t, a3, 2, (int64_t[]){3, 3});
    CHECK_NEAR(rlab_t_infonce(t, A3, A, 0.5f, 1, 0)->data[0], want, 1e-6);
    /* without normalisation row 0 has S = [6, 0, 0]: log(e^6 + 2) - 6 */
    double r0 = log(exp(6.0) + 2.0) - 6.0, r1 = log(exp(1.0) + 2.0) - 1.0,
           r2 = log(exp(14.0) + 2.0) - 14.0;
    CHECK_NEAR(rlab_t_infonce(t, A3, A, 0.5f, 0, 0)->data[0], (r0 + r1 + r2) / 3.0, 1e-6);
    /* asymmetric case for the symmetric flag: b = [[1,1],[0,1]], a = I2, tau = 1:
     * S = a b^T = [[1, 0], [1, 1]]; rows: log(e+1)-1, log(2e)-1;
     * cols: col0 [1, 1] -> log(2e)-1, col1 [0, 1] -> log(1+e)-1 */
    float i2[4] = {1, 0, 0, 1}, bb[4] = {1, 1, 0, 1};
    rlab_tensor *I2 = rlab_t_input(t, i2, 2, (int64_t[]){2, 2}),
                *BB = rlab_t_input(t, bb, 2, (int64_t[]){2, 2});
    double rows = (log(exp(1.0) + 1.0) - 1.0 + log(2.0 * exp(1.0)) - 1.0) / 2.0;
    double cols = (log(2.0 * exp(1.0)) - 1.0 + log(1.0 + exp(1.0)) - 1.0) / 2.0;
    CHECK_NEAR(rlab_t_infonce(t, I2, BB, 1.0f, 0, 0)->data[0], rows, 1e-6);
    CHECK_NEAR(rlab_t_infonce(t, I2, BB, 1.0f, 0, 1)->data[0], (rows + cols) / 2.0, 1e-6);
    CHECK_EQ_INT(rlab_tape_error(t), RLAB_OK);
    rlab_t_infonce(t, I2, BB, 0.0f, 0, 0);
    CHECK_STR_CONTAINS(rlab_tape_errmsg(t), "temperature");
    rlab_tape_free(t);
}

/* ---- KL / soft cross-entropy ------------------------------------------------------------- */
static void t_kl_hand(void)
{
    /* p = softmax([0, log 3]) = [1/4, 3/4], q = softmax([0, 0]) = [1/2, 1/2] */
    float pl[2] = {0.0f, (float)log(3.0)}, ql[2] = {0.0f, 0.0f};
    rlab_tape *t = new_tape(1);
    rlab_tensor *P = rlab_t_input(t, pl, 2, (int64_t[]){1, 2}),
                *Q = rlab_t_input(t, ql, 2, (int64_t[]){1, 2});
    double want = 0.25 * log(0.5) + 0.75 * log(1.5);
    CHECK_NEAR(rlab_t_kl_div(t, P, Q, 1.0f)->data[0], want, 1e-6);
    CHECK_NEAR(rlab_t_kl_div(t, P, P, 1.0f)->data[0], 0.0, 1e-7);
    /* temperature 2 on logits [0, 2 log 3] gives the same p */
    float pl2[2] = {0.0f, (float)(2.0 * log(3.0))};
    rlab_tensor *P2 = rlab_t_input(t, pl2, 2, (int64_t[]){1, 2});
    CHECK_NEAR(rlab_t_kl_div(t, P2, Q, 2.0f)->data[0], want, 1e-6);
    CHECK_EQ_INT(rlab_tape_error(t), RLAB_OK);
    rlab_tape_free(t);
}

static void t_soft_xent_hand(void)
{
    const float p[4] = {0.25f, 0.75f, 1.0f, 0.0f};
    float ql[4] = {0.0f, 0.0f, 0.0f, 2.0f};
    rlab_tape *t = new_tape(1);
    rlab_tensor *Q = rlab_t_input(t, ql, 2, (int64_t[]){1, 2});
    CHECK_NEAR(rlab_t_soft_xent(t, p, Q, 1.0f)->data[0], LN2, 1e-6); /* uniform q */
    Q = rlab_t_input(t, ql, 2, (int64_t[]){2, 2});
    /* row 2, temp 2: q = softmax([0, 1]); -log q0 = log(1 + e) */
    CHECK_NEAR(rlab_t_soft_xent(t, p, Q, 2.0f)->data[0], (LN2 + log(1.0 + exp(1.0))) / 2.0, 1e-6);
    /* soft_xent = KL + H(p) when p is a softmax */
    float pl[2] = {0.0f, (float)log(3.0)};
    rlab_tensor *P = rlab_t_input(t, pl, 2, (int64_t[]){1, 2}),
                *Q1 = rlab_t_input(t, ql + 2, 2, (int64_t[]){1, 2});
    double H = -(0.25 * log(0.25) + 0.75 * log(0.75));
    CHECK_NEAR(rlab_t_soft_xent(t, p, Q1, 1.0f)->data[0],
               (double)rlab_t_kl_div(t, P, Q1, 1.0f)->data[0] + H, 1e-6);
    CHECK_EQ_INT(rlab_tape_error(t), RLAB_OK);
    rlab_tape_free(t);
}

/* ---- sparse-target soft cross-entropy against items --------------------------------------- */
enum { SI_R = 9, SI_V = 37, SI_C = 6 };
/* rows: 0..8; row 3 has no entries, row 5 has base 0, row 7 repeats a column */
static const int64_t si_off[SI_R + 1] = {0, 2, 3, 5, 5, 8, 9, 10, 13, 14};
static const int32_t si_col[14] = {4, 36, 0, 7, 8, 1, 2, 3, 30, 11, 5, 5, 6, 20};
static const float si_delta[14] = {0.3f, 0.1f, 0.5f,   0.2f, 0.05f, 0.4f, 0.4f,
                                   0.2f, 0.9f, -0.01f, 0.1f, 0.2f,  0.3f, 0.25f};
static const float si_base[SI_R] = {0.01f, 0.02f, 0.005f, 1.0f / SI_V, 0.001f,
                                    0.0f,  0.01f, 0.003f, 0.015f};

static void si_dense(float *p)
{
    for (int r = 0; r < SI_R; r++) {
        for (int j = 0; j < SI_V; j++)
            p[r * SI_V + j] = si_base[r];
        for (int64_t k = si_off[r]; k < si_off[r + 1]; k++)
            p[r * SI_V + si_col[k]] += si_delta[k];
    }
}

static void t_soft_items_vs_dense(void)
{
    static float p[SI_R * SI_V];
    si_dense(p);
    const int64_t shapes[2][2] = {{SI_R, SI_C}, {SI_V, SI_C}};
    for (int mode = 0; mode < 4; mode++)
        for (int chunk = 0; chunk <= 4; chunk += 4) {
            const int keep = !(mode & 1), panel = !(mode & 2); /* panel kernel, then sgemm */
            rlab_params *P = params2(2, shapes, 0.6f, 33);
            rlab_tape *t = new_tape(4);
            int old = rlab_t_loss_set_keep(keep), was = rlab_k_panel_set_enabled(panel);
            rlab_tensor *L = rlab_t_soft_xent_items(t, &P->t[0], &P->t[1], si_base, si_off, si_col,
                                                    si_delta, 0.3f, chunk);
            rlab_t_loss_set_keep(old);
            CHECK_EQ_INT(rlab_tape_backward(t, L), RLAB_OK);
            rlab_k_panel_set_enabled(was);
            CHECK_EQ_INT((int)L->p.i[1], keep);
            float *g1 = malloc(P->count * sizeof(float));
            memcpy(g1, P->grad, P->count * sizeof(float));
            const float l1 = L->data[0];
            rlab_tape_reset(t);
            rlab_params_zero_grad(P);
            rlab_tensor *Z = rlab_t_matmul(t, &P->t[0], &P->t[1], 0, 1);
            rlab_tensor *L2 = rlab_t_soft_xent(t, p, Z, 0.3f);
            CHECK_EQ_INT(rlab_tape_backward(t, L2), RLAB_OK);
            CHECK_MSG(fabs((double)l1 - (double)L2->data[0]) <= 2e-6 * fabs((double)l1),
                      "keep %d chunk %d: sparse %.9g dense %.9g", keep, chunk, (double)l1,
                      (double)L2->data[0]);
            double worst = 0.0, big = 0.0;
            for (size_t i = 0; i < P->count; i++) {
                worst = fmax(worst, fabs((double)g1[i] - (double)P->grad[i]));
                big = fmax(big, fabs((double)P->grad[i]));
            }
            CHECK_MSG(big > 1e-3 && worst <= 2e-5 * big, "keep %d chunk %d: grads differ by %g",
                      keep, chunk, worst);
            free(g1);
            rlab_tape_free(t);
            rlab_params_free(P);
        }
}

static void t_soft_items_hand(void)
{
    /* h = [1, 0], items e0 = [0, 0], e1 = [log 3, 0]: temp 1 gives q = (1/4, 3/4);
     * p = base 0.5 + delta 0.5 at column 0 = (1, 0.5): L = -(log 1/4 + 0.5 log 3/4) */
    float hd[2] = {1.0f, 0.0f}, id[4] = {0.0f, 0.0f, (float)log(3.0), 0.0f};
    const float base[1] = {0.5f}, delta[1] = {0.5f};
    const int64_t off[2] = {0, 1};
    const int32_t col[1] = {0};
    rlab_tape *t = new_tape(1);
    rlab_tensor *H = rlab_t_input(t, hd, 2, (int64_t[]){1, 2});
    rlab_tensor *I = rlab_t_input(t, id, 2, (int64_t[]){2, 2});
    rlab_tensor *L = rlab_t_soft_xent_items(t, H, I, base, off, col, delta, 1.0f, 0);
    CHECK_NEAR(L->data[0], -(log(0.25) + 0.5 * log(0.75)), 1e-6);
    /* temperature 2 on doubled logits gives the same */
    float hd2[2] = {2.0f, 0.0f};
    H = rlab_t_input(t, hd2, 2, (int64_t[]){1, 2});
    L = rlab_t_soft_xent_items(t, H, I, base, off, col, delta, 2.0f, 0);
    CHECK_NEAR(L->data[0], -(log(0.25) + 0.5 * log(0.75)), 1e-6);
    CHECK_EQ_INT(rlab_tape_error(t), RLAB_OK);
    /* errors */
    const int32_t badcol[1] = {2};
    L = rlab_t_soft_xent_items(t, H, I, base, off, badcol, delta, 1.0f, 0);
    CHECK(L->flags & RLAB_T_POISON);
    CHECK_STR_CONTAINS(rlab_tape_errmsg(t), "column 2");
    rlab_tape_reset(t);
    const int64_t badoff[2] = {1, 1};
    H = rlab_t_input(t, hd, 2, (int64_t[]){1, 2});
    I = rlab_t_input(t, id, 2, (int64_t[]){2, 2});
    L = rlab_t_soft_xent_items(t, H, I, base, badoff, col, delta, 1.0f, 0);
    CHECK_STR_CONTAINS(rlab_tape_errmsg(t), "off[0]");
    rlab_tape_reset(t);
    H = rlab_t_input(t, hd, 2, (int64_t[]){1, 2});
    I = rlab_t_input(t, id, 2, (int64_t[]){2, 2});
    L = rlab_t_soft_xent_items(t, H, I, base, off, col, delta, 0.0f, 0);
    CHECK_STR_CONTAINS(rlab_tape_errmsg(t), "temperature");
    rlab_tape_free(t);
}

static void t_poison(void)
{
    float x[2] = {0};
    rlab_tape *t = new_tape(1);
    rlab_tensor *X = rlab_t_input(t, x, 1, (int64_t[]){2});
    rlab_tape_fail(t, RLAB_EINVAL, "earlier failure");
    CHECK(rlab_t_bpr(t, X, X)->flags & RLAB_T_POISON);
    CHECK(rlab_t_bce_logits(t, X, x, NULL)->flags & RLAB_T_POISON);
    CHECK_STR_CONTAINS(rlab_tape_errmsg(t), "earlier failure");
    rlab_tape_reset(t);
    CHECK(rlab_t_bpr(t, &t->poison, &t->poison)->flags & RLAB_T_POISON);
    CHECK_EQ_INT(rlab_tape_error(t), RLAB_EINVAL);
    rlab_tape_free(t);
}

/* The 512-bit kernels (panel tiles, 16-lane row exponentials) against the 256-bit ones: the
 * full-softmax CE and the sparse-target soft CE give bit-identical losses and gradients, in
 * keep and in chunk (recompute) mode, V not a multiple of 16 or 32 (tails). */
static void t_xent_avx512(void)
{
    if (!rlab_k_avx512()) {
        fprintf(stderr, "tensor.loss.xent.avx512: no AVX-512F on this machine, skipped\n");
        return;
    }
    const int64_t R = 37, V = 1003, C = 64;
    const int64_t shapes[2][2] = {{R, C}, {V, C}};
    int32_t tg[37];
    for (int64_t i = 0; i < R; i++)
        tg[i] = i % 5 == 3 ? -1 : (int32_t)((i * 131) % V);
    int64_t off[38];
    int32_t col[74];
    float delta[74], base[37];
    for (int64_t i = 0; i <= R; i++)
        off[i] = 2 * i;
    for (int64_t k = 0; k < 2 * R; k++) {
        col[k] = (int32_t)((k * 389) % V);
        delta[k] = 0.25f + 0.01f * (float)(k % 7);
    }
    for (int64_t i = 0; i < R; i++)
        base[i] = 0.5f / (float)V;
    for (int loss = 0; loss < 2; loss++)
        for (int keep = 0; keep < 2; keep++) {
            float *g[2];
            float l[2];
            for (int wide = 0; wide < 2; wide++) {
                rlab_params *P = params2(2, shapes, 0.7f, 71);
                rlab_tape *t = new_tape(8);
                const int was = rlab_k_set_avx512(wide), old = rlab_t_loss_set_keep(keep);
                rlab_tensor *L = loss ? rlab_t_soft_xent_items(t, &P->t[0], &P->t[1], base, off,
                                                               col, delta, 0.3f, 16)
                                      : rlab_t_softmax_xent(t, &P->t[0], &P->t[1], NULL, tg, 16);
                CHECK_EQ_INT(rlab_tape_backward(t, L), RLAB_OK);
                rlab_t_loss_set_keep(old);
                rlab_k_set_avx512(was);
                CHECK_EQ_INT((int)L->p.i[1], keep);
                l[wide] = L->data[0];
                g[wide] = malloc(P->count * sizeof(float));
                memcpy(g[wide], P->grad, P->count * sizeof(float));
                CHECK(P->count == (size_t)((R + V) * C));
                rlab_tape_free(t);
                rlab_params_free(P);
            }
            CHECK_MSG(memcmp(&l[0], &l[1], sizeof l[0]) == 0, "loss %d keep %d: %.9g vs %.9g", loss,
                      keep, (double)l[0], (double)l[1]);
            CHECK_MSG(memcmp(g[0], g[1], (size_t)((R + V) * C) * sizeof(float)) == 0,
                      "loss %d keep %d: gradients differ", loss, keep);
            CHECK(l[0] > 0.0f);
            free(g[0]);
            free(g[1]);
        }
}

/* ---- the fused mode (h-ce) ---------------------------------------------------------------- */
/* the backward products of the fused mode against their double-accumulating oracles: odd row
 * and item counts (tiles of 6, sub-blocks of 128 items and 16 rows), a row stride wider than
 * the block, every supported width, dh with and without accumulation */
static void t_xent_kernels(void)
{
    if (!rlab_k_xent_available(64)) {
        fprintf(stderr, "tensor.loss.kernels.1: no AVX-512F, the fused kernels do not run\n");
        return;
    }
    CHECK(!rlab_k_xent_available(8) && !rlab_k_xent_available(80) && !rlab_k_xent_available(24));
    rlab_rng rng;
    rlab_rng_seed(&rng, 5);
    const int64_t r = 37, n = 261, lde = 300;
    float *e = malloc((size_t)(r * lde) * sizeof(float));
    for (int64_t i = 0; i < r * lde; i++)
        e[i] = rlab_rng_uniform(&rng);
    for (int64_t C = 16; C <= 64; C += 16) {
        float *it = malloc((size_t)(n * C) * sizeof(float)), *hs = malloc((size_t)(r * C) * 4);
        float *d1 = malloc((size_t)(n * C) * sizeof(float)), *d2 = malloc((size_t)(n * C) * 4);
        for (int64_t i = 0; i < n * C; i++)
            it[i] = rlab_rng_uniform(&rng) - 0.5f;
        for (int64_t i = 0; i < r * C; i++)
            hs[i] = rlab_rng_uniform(&rng) - 0.5f;
        for (int acc = 0; acc < 2; acc++) { /* dh [r, C] */
            for (int64_t i = 0; i < r * C; i++)
                d1[i] = d2[i] = 0.25f * (float)(i % 5);
            CHECK_EQ_INT(rlab_k_xent_dh(d1, acc, e, lde, r, n, it, C), 0);
            rlab_ref_xent_dh(d2, acc, e, lde, r, n, it, C);
            double w = 0.0;
            for (int64_t i = 0; i < r * C; i++)
                w = fmax(w, fabs((double)d1[i] - (double)d2[i]));
            CHECK_MSG(w < 2e-5, "dh C %lld acc %d: off by %g", (long long)C, acc, w);
        }
        for (int64_t i = 0; i < n * C; i++) /* dt [n, C] += */
            d1[i] = d2[i] = 0.5f * (float)(i % 3);
        CHECK_EQ_INT(rlab_k_xent_dt(d1, e, lde, r, n, hs, C), 0);
        rlab_ref_xent_dt(d2, e, lde, r, n, hs, C);
        double w = 0.0;
        for (int64_t i = 0; i < n * C; i++)
            w = fmax(w, fabs((double)d1[i] - (double)d2[i]));
        CHECK_MSG(w < 2e-5, "dt C %lld: off by %g", (long long)C, w);
        free(it);
        free(hs);
        free(d1);
        free(d2);
    }
    /* switched off with the 512-bit kernels: -1, nothing written */
    float x = 7.0f;
    const int was = rlab_k_set_avx512(0);
    CHECK(!rlab_k_xent_available(16));
    CHECK_EQ_INT(rlab_k_xent_dh(&x, 0, e, lde, 0, 0, e, 16), -1);
    CHECK(memcmp(&x, &(float){7.0f}, sizeof x) == 0);
    rlab_k_set_avx512(was);
    free(e);
}

/* One softmax_xent (loss 0) or soft_xent_items (loss 1) forward+backward in the fused mode
 * (fused = 1) or the row mode with everything kept (fused = 0): the loss, the gradients of h
 * and items in g[(R + V) C], and the mode used. */
typedef struct fused_case {
    int64_t R, V, C;
    int32_t *tg; /* owned */
    int64_t *off;
    int32_t *col;
    float *delta, *base;
    float temp;
} fused_case;

static float fused_run(const fused_case *fc, int loss, int fused, float *g, int *mode)
{
    const int64_t shapes[2][2] = {{fc->R, fc->C}, {fc->V, fc->C}};
    rlab_params *P = params2(2, shapes, 0.6f, (uint64_t)(fc->V + fc->C));
    rlab_tape *t = new_tape(64);
    const int old = rlab_t_loss_set_fused(fused);
    rlab_tensor *L = loss ? rlab_t_soft_xent_items(t, &P->t[0], &P->t[1], fc->base, fc->off,
                                                   fc->col, fc->delta, fc->temp, 0)
                          : rlab_t_softmax_xent(t, &P->t[0], &P->t[1], NULL, fc->tg, 0);
    rlab_t_loss_set_fused(old);
    CHECK_EQ_INT(rlab_tape_backward(t, L), RLAB_OK);
    *mode = (int)L->p.i[2] * 2 + (int)L->p.i[1];
    memcpy(g, P->grad, (size_t)((fc->R + fc->V) * fc->C) * sizeof(float));
    const float l = L->data[0];
    rlab_tape_free(t);
    rlab_params_free(P);
    return l;
}

static void fused_case_init(fused_case *fc, int64_t R, int64_t V, int64_t C)
{
    int32_t *tg = malloc((size_t)R * sizeof *tg);
    int64_t *off = malloc((size_t)(R + 1) * sizeof *off);
    int32_t *col = malloc((size_t)(3 * R) * sizeof *col);
    float *delta = malloc((size_t)(3 * R) * sizeof *delta), *base = malloc((size_t)R * 4);
    off[0] = 0;
    for (int64_t i = 0; i < R; i++) {
        tg[i] = i % 11 == 7 ? -1 : (int32_t)((i * 389) % V);
        int64_t k = off[i];
        for (int64_t q = 0; q < i % 4; q++, k++) {
            col[k] = (int32_t)((i * 53 + q * 977) % V);
            delta[k] = 0.3f + 0.05f * (float)q;
        }
        off[i + 1] = k;
        base[i] = i % 3 == 0 ? 0.0f : 0.25f / (float)V;
    }
    *fc = (fused_case){R, V, C, tg, off, col, delta, base, 0.3f};
}

static void fused_case_free(fused_case *fc)
{
    free(fc->tg);
    free(fc->off);
    free(fc->col);
    free(fc->delta);
    free(fc->base);
}

/* fused against the row mode (both keep everything): the same loss and gradients to float
 * rounding, for the CE and the sparse soft CE, three blocks with a tail, C 64 and 32 */
static void t_xent_fused_vs_rows(void)
{
    if (!rlab_k_xent_available(64)) {
        fprintf(stderr, "tensor.loss.xent.fused.1: no AVX-512F, no fused mode: skipped\n");
        return;
    }
    static const int64_t sizes[2][3] = {{150, 1100, 64}, {90, 1037, 32}};
    for (int z = 0; z < 2; z++)
        for (int loss = 0; loss < 2; loss++) {
            fused_case fc;
            fused_case_init(&fc, sizes[z][0], sizes[z][1], sizes[z][2]);
            const size_t n = (size_t)((fc.R + fc.V) * fc.C);
            float *g0 = malloc(n * sizeof(float)), *g1 = malloc(n * sizeof(float));
            int m0, m1;
            const float l0 = fused_run(&fc, loss, 0, g0, &m0),
                        l1 = fused_run(&fc, loss, 1, g1, &m1);
            CHECK_MSG(m0 == 1 && m1 == 3, "modes %d %d (want kept rows 1, fused 3)", m0, m1);
            CHECK_MSG(fabs((double)l0 - (double)l1) <= 1e-6 * fabs((double)l0),
                      "loss %d C %lld: %.9g (rows) vs %.9g (fused)", loss, (long long)fc.C,
                      (double)l0, (double)l1);
            double worst = 0.0, big = 0.0;
            for (size_t i = 0; i < n; i++) {
                worst = fmax(worst, fabs((double)g0[i] - (double)g1[i]));
                big = fmax(big, fabs((double)g0[i]));
            }
            CHECK_MSG(big > 0.0 && worst <= 1e-5 * big, "loss %d C %lld: grads off by %g (max %g)",
                      loss, (long long)fc.C, worst, big);
            free(g0);
            free(g1);
            fused_case_free(&fc);
        }
}

/* fused against the naive double reference (value and both gradients) */
static void t_xent_fused_naive(void)
{
    enum { N = 80, V = 700, C = 16 };
    int32_t tg[N];
    for (int i = 0; i < N; i++)
        tg[i] = i % 13 == 5 ? -1 : (int32_t)((i * 223) % V);
    rlab_t_loss_set_keep(1);
    xent_vs_naive_mode(N, V, C, 0, tg, 0);
}

/* fused: bit-identical for 1 and 2 threads and from run to run; a second backward over the
 * same forward adds the gradient again (out->grad 2: three times the first in all) */
static void t_xent_fused_deterministic(void)
{
    if (!rlab_k_xent_available(48)) {
        fprintf(stderr, "tensor.loss.xent.fused.3: no AVX-512F, no fused mode: skipped\n");
        return;
    }
    for (int loss = 0; loss < 2; loss++) {
        fused_case fc;
        fused_case_init(&fc, 100, 1300, 48);
        const size_t n = (size_t)((fc.R + fc.V) * fc.C);
        float *g[3] = {malloc(n * sizeof(float)), malloc(n * sizeof(float)),
                       malloc(n * sizeof(float))};
        float l[3];
        int m;
        const int nt0 = rlab_t_num_threads();
        for (int k = 0; k < 3; k++) {
            rlab_t_set_num_threads(k == 1 ? 2 : 1);
            l[k] = fused_run(&fc, loss, 1, g[k], &m);
            CHECK_EQ_INT(m, 3);
        }
        rlab_t_set_num_threads(nt0);
        for (int k = 1; k < 3; k++) {
            CHECK(memcmp(&l[0], &l[k], sizeof l[0]) == 0);
            CHECK_MSG(memcmp(g[0], g[k], n * sizeof(float)) == 0, "loss %d run %d differs", loss,
                      k);
        }
        /* the second backward */
        const int64_t shapes[2][2] = {{fc.R, fc.C}, {fc.V, fc.C}};
        rlab_params *P = params2(2, shapes, 0.6f, (uint64_t)(fc.V + fc.C));
        rlab_tape *t = new_tape(64);
        rlab_tensor *L = loss ? rlab_t_soft_xent_items(t, &P->t[0], &P->t[1], fc.base, fc.off,
                                                       fc.col, fc.delta, fc.temp, 0)
                              : rlab_t_softmax_xent(t, &P->t[0], &P->t[1], NULL, fc.tg, 0);
        CHECK_EQ_INT(rlab_tape_backward(t, L), RLAB_OK);
        CHECK_EQ_INT(rlab_tape_backward(t, L), RLAB_OK);
        double worst = 0.0;
        for (size_t i = 0; i < n; i++)
            worst = fmax(worst, fabs((double)P->grad[i] - 3.0 * (double)g[0][i]));
        CHECK_MSG(worst < 1e-5, "loss %d: second backward off by %g", loss, worst);
        rlab_tape_free(t);
        rlab_params_free(P);
        for (int k = 0; k < 3; k++)
            free(g[k]);
        fused_case_free(&fc);
    }
}

/* TED-sized sparse targets (40 entries per row, 8,000 in all at C = 64): the fused backward
 * puts the target rows of d_items on threads by item range (loss.c: from 2^18 entry-floats);
 * bit-identical for 1 and 2 threads, and the row mode's loss and gradients to float rounding */
static void t_xent_fused_many_targets(void)
{
    if (!rlab_k_xent_available(64)) {
        fprintf(stderr, "tensor.loss.xent.fused.4: no AVX-512F, no fused mode: skipped\n");
        return;
    }
    enum { R = 200, V = 1300, C = 64, K = 40 };
    fused_case fc;
    fused_case_init(&fc, R, V, C);
    free(fc.col);
    free(fc.delta);
    fc.col = malloc((size_t)(R * K) * sizeof *fc.col);
    fc.delta = malloc((size_t)(R * K) * sizeof *fc.delta);
    for (int64_t i = 0; i < R; i++) {
        fc.off[i + 1] = fc.off[i] + K;
        for (int64_t q = 0; q < K; q++) {
            fc.col[i * K + q] = (int32_t)((i * 31 + q * 211) % V); /* repeats across rows */
            fc.delta[i * K + q] = 0.01f + 0.001f * (float)q;
        }
    }
    const size_t n = (size_t)((R + V) * C);
    float *g[3] = {malloc(n * sizeof(float)), malloc(n * sizeof(float)), malloc(n * sizeof(float))};
    float l[3];
    int m[3];
    const int nt0 = rlab_t_num_threads();
    for (int k = 0; k < 3; k++) {
        rlab_t_set_num_threads(k == 1 ? 2 : 1);
        l[k] = fused_run(&fc, 1, k < 2, g[k], &m[k]);
    }
    rlab_t_set_num_threads(nt0);
    CHECK_MSG(m[0] == 3 && m[1] == 3 && m[2] == 1, "modes %d %d %d", m[0], m[1], m[2]);
    CHECK(memcmp(&l[0], &l[1], sizeof l[0]) == 0);
    CHECK_MSG(memcmp(g[0], g[1], n * sizeof(float)) == 0, "1 and 2 threads differ");
    CHECK_MSG(fabs((double)l[0] - (double)l[2]) <= 1e-6 * fabs((double)l[2]),
              "loss %.9g (fused) vs %.9g (rows)", (double)l[0], (double)l[2]);
    double worst = 0.0, big = 0.0;
    for (size_t i = 0; i < n; i++) {
        worst = fmax(worst, fabs((double)g[0][i] - (double)g[2][i]));
        big = fmax(big, fabs((double)g[2][i]));
    }
    CHECK_MSG(big > 0.0 && worst <= 1e-5 * big, "grads off by %g (max %g)", worst, big);
    for (int k = 0; k < 3; k++)
        free(g[k]);
    fused_case_free(&fc);
}

/* Rows whose columns are sorted (TED's teacher rows) take the bisection path of the fused op
 * (a block visits only its own entries); the same rows with one more entry, column 0 and
 * delta 0, at the end (unsorted: the scanning path, and the extra terms add exact zeros) must
 * give the same loss and gradients bit for bit, on 2 threads and on 1 (the blocks, the row
 * statistics and the target rows of d_items each split over the threads). */
static void t_xent_fused_sorted(void)
{
    if (!rlab_k_xent_available(64)) {
        fprintf(stderr, "tensor.loss.xent.fused.5: no AVX-512F, no fused mode: skipped\n");
        return;
    }
    enum { R = 520, V = 2100, C = 64, K = 40 }; /* 5 blocks: the row statistics on 2 threads */
    fused_case fc[2];
    for (int u = 0; u < 2; u++) {
        fused_case_init(&fc[u], R, V, C);
        free(fc[u].col);
        free(fc[u].delta);
        fc[u].col = malloc((size_t)(R * (K + 1)) * sizeof(int32_t));
        fc[u].delta = malloc((size_t)(R * (K + 1)) * sizeof(float));
        for (int64_t i = 0; i < R; i++) {
            int64_t k = fc[u].off[i] = i * (K + u);
            for (int64_t q = 0; q < K; q++, k++) { /* ascending, one repeat, across blocks */
                fc[u].col[k] = (int32_t)(1 + (i * 7) % 50 + (q == 5 ? 4 : q) * 31);
                fc[u].delta[k] = 0.01f + 0.001f * (float)q;
            }
            if (u == 1) {
                fc[u].col[k] = 0;
                fc[u].delta[k] = 0.0f;
            }
        }
        fc[u].off[R] = (int64_t)R * (K + u);
    }
    const size_t n = (size_t)((R + V) * C);
    float *g[3] = {malloc(n * sizeof(float)), malloc(n * sizeof(float)), malloc(n * sizeof(float))};
    float l[3];
    int m[3];
    const int nt0 = rlab_t_num_threads();
    for (int k = 0; k < 3; k++) {
        rlab_t_set_num_threads(k < 2 ? 2 : 1);
        l[k] = fused_run(&fc[k == 1], 1, 1, g[k], &m[k]);
    }
    rlab_t_set_num_threads(nt0);
    CHECK_MSG(m[0] == 3 && m[1] == 3 && m[2] == 3, "modes %d %d %d", m[0], m[1], m[2]);
    CHECK_MSG(memcmp(&l[0], &l[1], sizeof l[0]) == 0, "loss %.9g sorted vs %.9g scanned",
              (double)l[0], (double)l[1]);
    CHECK_MSG(memcmp(g[0], g[1], n * sizeof(float)) == 0, "sorted and scanned rows differ");
    CHECK(memcmp(&l[0], &l[2], sizeof l[0]) == 0);
    CHECK_MSG(memcmp(g[0], g[2], n * sizeof(float)) == 0, "1 and 2 threads differ");
    double big = 0.0;
    for (size_t i = (size_t)(R * C); i < n; i++)
        big = fmax(big, fabs((double)g[0][i]));
    CHECK(big > 0.0 && isfinite(l[0]));
    for (int k = 0; k < 3; k++)
        free(g[k]);
    fused_case_free(&fc[0]);
    fused_case_free(&fc[1]);
}

static const rlab_test tests[] = {
    {"tensor.loss.kernels.1", t_xent_kernels},
    {"tensor.loss.xent.fused.4", t_xent_fused_many_targets},
    {"tensor.loss.xent.fused.5", t_xent_fused_sorted},
    {"tensor.loss.xent.fused.1", t_xent_fused_vs_rows},
    {"tensor.loss.xent.fused.2", t_xent_fused_naive},
    {"tensor.loss.xent.fused.3", t_xent_fused_deterministic},
    {"tensor.loss.xent.avx512.1", t_xent_avx512},
    {"tensor.loss.xent.1", t_xent_uniform},
    {"tensor.loss.xent.2", t_xent_naive_small},
    {"tensor.loss.xent.3", t_xent_naive_larger},
    {"tensor.loss.xent.4", t_xent_all_padding},
    {"tensor.loss.xent.5", t_xent_peak},
    {"tensor.loss.xent.6", t_xent_deterministic},
    {"tensor.loss.xent.7", t_xent_errors},
    {"tensor.loss.xent.8", t_xent_arena_full},
    {"tensor.loss.xent.9", t_xent_backward_twice},
    {"tensor.loss.xent.10", t_xent_keep_vs_chunk},
    {"tensor.loss.sampled.1", t_sampled_hand},
    {"tensor.loss.bce.1", t_bce_values},
    {"tensor.loss.bpr.1", t_bpr_values},
    {"tensor.loss.margin.1", t_margin_values},
    {"tensor.loss.dpo.1", t_dpo_values},
    {"tensor.loss.infonce.1", t_infonce_hand},
    {"tensor.loss.kl.1", t_kl_hand},
    {"tensor.loss.soft_xent.1", t_soft_xent_hand},
    {"tensor.loss.soft_items.1", t_soft_items_vs_dense},
    {"tensor.loss.soft_items.2", t_soft_items_hand},
    {"tensor.loss.poison.1", t_poison},
    {NULL, NULL},
};

int main(int argc, char **argv) { return rlab_test_main(argc, argv, tests); }
