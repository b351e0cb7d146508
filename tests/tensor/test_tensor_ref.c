/*
 * Test organization: fast kernels against their naive reference twins (kernels.h) on odd
 * shapes, ids tensor.ref.<kernel>.<n>: matmul forward and backward in all four transpose
 * combinations (sgemm vs triple loop, backward accumulating into non-zero buffers), bmm through
 * the op, layer norm and softmax forward/backward (including shapes large enough for the
 * OpenMP path, C = 1 and all -inf rows), gather forward/backward with padding and repeats, the
 * deterministic block sum, and bit-identical results for 1 and 2 threads.
 */
#include "harness.h"
#include "tensor/kernels.h"
#include "tensor/ops.h"

#include <math.h>
#include <string.h>

/* exact comparisons are intended here: copies, zeros and hand-picked values are exact */
#pragma GCC diagnostic ignored "-Wfloat-equal"

static rlab_rng rng;

static float *rnd(int64_t n, float scale)
{
    float *x = rlab_malloc((size_t)(n ? n : 1) * sizeof *x);
    for (int64_t i = 0; i < n; i++)
        x[i] = scale * (2.0f * rlab_rng_uniform(&rng) - 1.0f);
    return x;
}

static float *copy(const float *x, int64_t n)
{
    float *y = rlab_malloc((size_t)(n ? n : 1) * sizeof *y);
    memcpy(y, x, (size_t)n * sizeof *y);
    return y;
}

/* max |a - b| / (1 + |b|) over n */
static double maxrel(const float *a, const float *b, int64_t n)
{
    double w = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]) / (1.0 + fabs((double)b[i]));
        if (!(d <= w)) /* also catches NaN */
            w = isnan(d) ? (double)INFINITY : d;
    }
    return w;
}

static void matmul_case(int64_t M, int64_t N, int64_t K, int ta, int tb)
{
    float *A = rnd(M * K, 1.0f), *B = rnd(K * N, 1.0f), *dC = rnd(M * N, 1.0f);
    float *C1 = rnd(M * N, 1.0f), *C2 = rnd(M * N, 1.0f);   /* garbage: beta must be 0 */
    float *dA1 = rnd(M * K, 1.0f), *dB1 = rnd(K * N, 1.0f); /* non-zero: backward must += */
    float *dA2 = copy(dA1, M * K), *dB2 = copy(dB1, K * N);
    rlab_k_matmul_fwd(C1, A, B, M, N, K, ta, tb);
    rlab_ref_matmul_fwd(C2, A, B, M, N, K, ta, tb);
    rlab_k_matmul_bwd(dA1, dB1, dC, A, B, M, N, K, ta, tb);
    rlab_ref_matmul_bwd(dA2, dB2, dC, A, B, M, N, K, ta, tb);
    double tol = 1e-5 * (double)(K + M + N);
    CHECK_MSG(maxrel(C1, C2, M * N) < tol, "matmul fwd M%lld N%lld K%lld ta%d tb%d: %g",
              (long long)M, (long long)N, (long long)K, ta, tb, maxrel(C1, C2, M * N));
    CHECK_MSG(maxrel(dA1, dA2, M * K) < tol, "matmul dA ta%d tb%d: %g", ta, tb,
              maxrel(dA1, dA2, M * K));
    CHECK_MSG(maxrel(dB1, dB2, K * N) < tol, "matmul dB ta%d tb%d: %g", ta, tb,
              maxrel(dB1, dB2, K * N));
    /* NULL gradients are skipped */
    rlab_k_matmul_bwd(NULL, NULL, dC, A, B, M, N, K, ta, tb);
    float *bufs[] = {A, B, dC, C1, C2, dA1, dB1, dA2, dB2};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++)
        rlab_free(bufs[i]);
}

/* The packed-panel logits kernel against its double-accumulation oracle: partial row tiles
 * (r not a multiple of 6 or 12, groups of 24), a partial last panel (V not a multiple of 16)
 * and an odd panel count (the AVX-512 tiles take panels in pairs), odd
 * widths, an output row stride larger than V, and split calls giving the same bits. Skipped
 * (with a message) on a CPU without AVX2/FMA, where the losses use cblas_sgemm instead. */
static void t_panel(void)
{
    rlab_rng_seed(&rng, 13);
    if (!rlab_k_panel_available()) {
        fprintf(stderr, "tensor.ref.panel: no AVX2/FMA kernel on this machine, skipped\n");
        return;
    }
    static const int64_t shapes[][3] = {{1, 1, 1},    {5, 17, 3},     {6, 16, 64},  {25, 33, 64},
                                        {49, 100, 7}, {30, 1001, 70}, {13, 48, 64}, {24, 32, 5}};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        const int64_t r = shapes[s][0], V = shapes[s][1], C = shapes[s][2], ldo = V + 3;
        float *h = rnd(r * C, 1.0f), *E = rnd(V * C, 1.0f);
        float *P = rlab_malloc_aligned(rlab_k_panel_floats(V, C) * sizeof(float));
        float *o1 = rnd(r * ldo, 1.0f), *o2 = copy(o1, r * ldo), *o3 = copy(o1, r * ldo);
        float *m1 = rnd(r, 1.0f), *m2 = rnd(r, 1.0f), *m3 = rnd(r, 1.0f);
        rlab_k_panel_pack(P, E, V, C);
        CHECK_EQ_INT(rlab_k_panel_logits(o1, ldo, m1, h, r, C, P, V), 0);
        rlab_ref_panel_logits(o2, ldo, m2, h, r, C, E, V);
        double w = 0.0;
        for (int64_t i = 0; i < r; i++) {
            w = fmax(w, maxrel(o1 + i * ldo, o2 + i * ldo, V));
            /* the padding columns beyond V are left alone */
            for (int64_t j = V; j < ldo && i + 1 < r; j++)
                CHECK(o1[i * ldo + j] == o3[i * ldo + j]);
        }
        CHECK_MSG(w < 1e-5 * (double)C, "panel r%lld V%lld C%lld: %g", (long long)r, (long long)V,
                  (long long)C, w);
        CHECK_MSG(maxrel(m1, m2, r) < 1e-5 * (double)C, "panel rowmax: %g", maxrel(m1, m2, r));
        for (int64_t i = 0; i < r; i++) { /* the max is one of the row's logits */
            int found = 0;
            for (int64_t j = 0; j < V; j++)
                found |= o1[i * ldo + j] == m1[i];
            CHECK(found);
        }
        /* rows split in two calls at an odd place: the same bits */
        const int64_t r1 = r / 2 + 1 < r ? r / 2 + 1 : r;
        CHECK_EQ_INT(rlab_k_panel_logits(o3, ldo, m3, h, r1, C, P, V), 0);
        if (r1 < r)
            CHECK_EQ_INT(
                rlab_k_panel_logits(o3 + r1 * ldo, ldo, m3 + r1, h + r1 * C, r - r1, C, P, V), 0);
        CHECK(memcmp(o1, o3, (size_t)(r * ldo) * sizeof(float)) == 0);
        CHECK(memcmp(m1, m3, (size_t)r * sizeof(float)) == 0);
        /* the 256-bit kernel (6 x 16 tiles) and the 512-bit one (12 x 32) give the same bits:
         * each logit is the same FMA chain in k order */
        float *o4 = copy(o3, r * ldo), *m4 = copy(m3, r);
        const int wide = rlab_k_set_avx512(0);
        CHECK_EQ_INT(rlab_k_panel_logits(o4, ldo, m4, h, r, C, P, V), 0);
        rlab_k_set_avx512(1);
        if (!wide && s == 0)
            fprintf(stderr, "tensor.ref.panel: no AVX-512F, the 512-bit kernel is not tested\n");
        CHECK(memcmp(o1, o4, (size_t)(r * ldo) * sizeof(float)) == 0);
        CHECK(memcmp(m1, m4, (size_t)r * sizeof(float)) == 0);
        rlab_free(o4);
        rlab_free(m4);
        /* switched off, the kernel declines and writes nothing */
        int was = rlab_k_panel_set_enabled(0);
        CHECK_EQ_INT(rlab_k_panel_logits(o3, ldo, m3, h, r, C, P, V), -1);
        rlab_k_panel_set_enabled(was);
        float *bufs[] = {h, E, o1, o2, o3, m1, m2, m3};
        for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++)
            rlab_free(bufs[i]);
        rlab_free_aligned(P);
    }
}

/* Rows packed once (rlab_k_panel_rows_pack) give the logits and row maxima of
 * rlab_k_panel_logits bit for bit: short last tiles, several groups of 24, a call starting at
 * a later tile (row 12 or 24), widths up to the 128 limit (and a refusal beyond it that writes
 * nothing); the 256-bit-only setting refuses too (the caller then packs per call). */
static void t_panel_packed(void)
{
    rlab_rng_seed(&rng, 17);
    if (!rlab_k_panel_available() || !rlab_k_avx512()) {
        fprintf(stderr, "tensor.ref.panel_packed: no AVX-512F kernel on this machine, skipped\n");
        return;
    }
    static const int64_t shapes[][3] = {{1, 1, 1},    {5, 17, 3},    {13, 48, 64},  {25, 33, 64},
                                        {49, 100, 7}, {61, 530, 16}, {30, 77, 128}, {37, 40, 129}};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        const int64_t r = shapes[s][0], V = shapes[s][1], C = shapes[s][2], ldo = V + 5;
        float *h = rnd(r * C, 1.0f), *E = rnd(V * C, 1.0f);
        float *P = rlab_malloc_aligned(rlab_k_panel_floats(V, C) * sizeof(float));
        float *hp = rlab_malloc_aligned(rlab_k_panel_rows_floats(r, C) * sizeof(float));
        CHECK(rlab_k_panel_rows_floats(r, C) >= (size_t)(r * C));
        float *o1 = rnd(r * ldo, 1.0f), *o2 = copy(o1, r * ldo), *o3 = copy(o1, r * ldo);
        float *m1 = rnd(r, 1.0f), *m2 = copy(m1, r), *m3 = copy(m1, r);
        rlab_k_panel_pack(P, E, V, C);
        CHECK_EQ_INT(rlab_k_panel_logits(o1, ldo, m1, h, r, C, P, V), 0);
        if (C > 128) { /* beyond the packed tiles' width: refused, nothing written */
            CHECK_EQ_INT(rlab_k_panel_rows_pack(hp, h, r, C), -1);
            CHECK_EQ_INT(rlab_k_panel_logits_packed(o2, ldo, m2, hp, r, C, P, V), -1);
            CHECK(memcmp(o2, o3, (size_t)(r * ldo) * sizeof(float)) == 0);
        } else {
            CHECK_EQ_INT(rlab_k_panel_rows_pack(hp, h, r, C), 0);
            CHECK_EQ_INT(rlab_k_panel_logits_packed(o2, ldo, m2, hp, r, C, P, V), 0);
            CHECK(memcmp(o1, o2, (size_t)(r * ldo) * sizeof(float)) == 0);
            CHECK(memcmp(m1, m2, (size_t)r * sizeof(float)) == 0);
            /* from a later tile on: rows [g, r) at hp + g C */
            const int64_t g = r > 24 ? 24 : r > 12 ? 12 : 0;
            CHECK_EQ_INT(
                rlab_k_panel_logits_packed(o3 + g * ldo, ldo, m3 + g, hp + g * C, r - g, C, P, V),
                0);
            CHECK(memcmp(o1 + g * ldo, o3 + g * ldo, (size_t)((r - g) * ldo) * sizeof(float)) == 0);
            CHECK(memcmp(m1 + g, m3 + g, (size_t)(r - g) * sizeof(float)) == 0);
            /* the 256-bit setting: refused */
            const int wide = rlab_k_set_avx512(0);
            CHECK_EQ_INT(rlab_k_panel_rows_pack(hp, h, r, C), -1);
            CHECK_EQ_INT(rlab_k_panel_logits_packed(o2, ldo, m2, hp, r, C, P, V), -1);
            rlab_k_set_avx512(wide);
        }
        float *bufs[] = {h, E, o1, o2, o3, m1, m2, m3};
        for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++)
            rlab_free(bufs[i]);
        rlab_free_aligned(P);
        rlab_free_aligned(hp);
    }
}

/* The packed table from the 512-bit packing (16 x 16 shuffle transposes, gathers for the
 * columns beyond a multiple of 16) equals the scalar packing float for float: widths below,
 * at and between multiples of 16, item counts with and without a partial last panel. */
static void t_panel_pack(void)
{
    rlab_rng_seed(&rng, 19);
    if (!rlab_k_avx512()) {
        fprintf(stderr, "tensor.ref.panel_pack: no AVX-512F, skipped\n");
        return;
    }
    static const int64_t shapes[][2] = {{16, 16}, {37, 5},   {100, 64},         {513, 64},
                                        {48, 70}, {33, 128}, {12101 % 1000, 48}};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        const int64_t V = shapes[s][0], C = shapes[s][1];
        const size_t nf = rlab_k_panel_floats(V, C);
        float *E = rnd(V * C, 1.0f);
        float *P1 = rlab_malloc_aligned(nf * sizeof(float)), *P2 = rlab_malloc_aligned(nf * 4);
        rlab_k_panel_pack(P1, E, V, C);
        const int wide = rlab_k_set_avx512(0);
        rlab_k_panel_pack(P2, E, V, C);
        rlab_k_set_avx512(wide);
        CHECK_MSG(memcmp(P1, P2, nf * sizeof(float)) == 0, "pack V%lld C%lld differs", (long long)V,
                  (long long)C);
        /* and the layout: item j, column k at panel j / 16, row k, lane j % 16 */
        int ok = 1;
        for (int64_t j = 0; j < V; j++)
            for (int64_t k = 0; k < C; k++)
                ok &= P1[(j / 16) * C * 16 + k * 16 + j % 16] == E[j * C + k];
        CHECK_MSG(ok, "pack V%lld C%lld layout", (long long)V, (long long)C);
        rlab_free(E);
        rlab_free_aligned(P1);
        rlab_free_aligned(P2);
    }
}

static void t_matmul(void)
{
    rlab_rng_seed(&rng, 11);
    static const int64_t shapes[][3] = {
        {37, 29, 53}, {1, 17, 3}, {64, 1, 7}, {5, 6, 1}, {3, 7, 64}};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                matmul_case(shapes[s][0], shapes[s][1], shapes[s][2], ta, tb);
}

/* Tall, thin products (the SASRec shapes) take the op's split path: row blocks on threads for
 * C and dA, fixed-order partial sums for dB. Compare forward and backward with the reference
 * in all four transpose combinations, through the op (the split lives there, not in the
 * kernel). */
static void t_matmul_split(void)
{
    rlab_rng_seed(&rng, 12);
    const int64_t M = 2053, K = 64, N = 48; /* tall enough for the split: M N K >= 2^22 */
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            rlab_err err = {0};
            rlab_param_spec specs[2] = {
                {"a", 2, {ta ? K : M, ta ? M : K}, RLAB_INIT_UNIFORM, 1.0f},
                {"b", 2, {tb ? N : K, tb ? K : N}, RLAB_INIT_UNIFORM, 1.0f},
            };
            rlab_params *P = rlab_params_new(specs, 2, &rng, &err);
            rlab_tape *tape = rlab_tape_new((size_t)64 << 20, 64, &err);
            CHECK(P && tape);
            if (!P || !tape) {
                rlab_params_free(P);
                rlab_tape_free(tape);
                return;
            }
            rlab_tensor *a = &P->t[0], *b = &P->t[1];
            rlab_tensor *c = rlab_t_matmul(tape, a, b, ta, tb);
            CHECK_MSG(!rlab_tape_error(tape), "%s", rlab_tape_errmsg(tape));
            float *dC = rnd(M * N, 1.0f), *C2 = rnd(M * N, 1.0f);
            float *dA2 = rlab_calloc((size_t)(M * K), sizeof(float));
            float *dB2 = rlab_calloc((size_t)(K * N), sizeof(float));
            rlab_ref_matmul_fwd(C2, a->data, b->data, M, N, K, ta, tb);
            rlab_ref_matmul_bwd(dA2, dB2, dC, a->data, b->data, M, N, K, ta, tb);
            rlab_params_zero_grad(P);
            CHECK_EQ_INT(rlab_tape_backward_from(tape, c, dC), RLAB_OK);
            double tol = 1e-5 * (double)(K + M + N);
            CHECK_MSG(maxrel(c->data, C2, M * N) < tol, "split fwd ta%d tb%d: %g", ta, tb,
                      maxrel(c->data, C2, M * N));
            CHECK_MSG(maxrel(a->grad, dA2, M * K) < tol, "split dA ta%d tb%d: %g", ta, tb,
                      maxrel(a->grad, dA2, M * K));
            CHECK_MSG(maxrel(b->grad, dB2, K * N) < tol, "split dB ta%d tb%d: %g", ta, tb,
                      maxrel(b->grad, dB2, K * N));
            rlab_free(dC);
            rlab_free(C2);
            rlab_free(dA2);
            rlab_free(dB2);
            rlab_tape_free(tape);
            rlab_params_free(P);
        }
}

static void t_bmm(void)
{
    rlab_rng_seed(&rng, 12);
    rlab_err err = {0};
    rlab_tape *tape = rlab_tape_new(1 << 20, 64, &err);
    const int64_t Bt = 3, M = 5, N = 7, K = 9;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            rlab_tape_reset(tape);
            float *A = rnd(Bt * M * K, 1.0f), *B = rnd(Bt * K * N, 1.0f);
            float *ref = rnd(Bt * M * N, 1.0f);
            rlab_tensor *a =
                rlab_t_input(tape, A, 3, ta ? (int64_t[]){Bt, K, M} : (int64_t[]){Bt, M, K});
            rlab_tensor *b =
                rlab_t_input(tape, B, 3, tb ? (int64_t[]){Bt, N, K} : (int64_t[]){Bt, K, N});
            rlab_tensor *c = rlab_t_bmm(tape, a, b, ta, tb);
            CHECK_EQ_INT(rlab_tape_error(tape), RLAB_OK);
            CHECK(c->ndim == 3 && c->shape[0] == Bt && c->shape[1] == M && c->shape[2] == N);
            for (int64_t i = 0; i < Bt; i++)
                rlab_ref_matmul_fwd(ref + i * M * N, A + i * M * K, B + i * K * N, M, N, K, ta, tb);
            CHECK_MSG(maxrel(c->data, ref, Bt * M * N) < 1e-5, "bmm ta%d tb%d: %g", ta, tb,
                      maxrel(c->data, ref, Bt * M * N));
            rlab_free(A);
            rlab_free(B);
            rlab_free(ref);
        }
    rlab_tape_free(tape);
}

static void layernorm_case(int64_t R, int64_t C, int with_gain, int with_bias)
{
    float *x = rnd(R * C, 2.0f), *g = rnd(C, 1.0f), *b = rnd(C, 1.0f), *dy = rnd(R * C, 1.0f);
    for (int64_t i = 0; i < R * C; i++)
        x[i] += 3.0f; /* an offset mean makes the variance computation matter */
    float *y1 = rnd(R * C, 1.0f), *y2 = rnd(R * C, 1.0f);
    float *m1 = rnd(R, 1.0f), *s1 = rnd(R, 1.0f), *m2 = rnd(R, 1.0f), *s2 = rnd(R, 1.0f);
    float *dx1 = rnd(R * C, 1.0f), *dg1 = rnd(C, 1.0f), *db1 = rnd(C, 1.0f);
    float *dx2 = copy(dx1, R * C), *dg2 = copy(dg1, C), *db2 = copy(db1, C);
    const float *G = with_gain ? g : NULL, *Bi = with_bias ? b : NULL;
    rlab_k_layernorm_fwd(y1, m1, s1, x, G, Bi, R, C, 1e-5f);
    rlab_ref_layernorm_fwd(y2, m2, s2, x, G, Bi, R, C, 1e-5f);
    CHECK_MSG(maxrel(y1, y2, R * C) < 1e-4, "layernorm fwd R%lld C%lld: %g", (long long)R,
              (long long)C, maxrel(y1, y2, R * C));
    CHECK(maxrel(m1, m2, R) < 1e-5 && maxrel(s1, s2, R) < 1e-3);
    rlab_k_layernorm_bwd(dx1, with_gain ? dg1 : NULL, with_bias ? db1 : NULL, dy, x, m2, s2, G, R,
                         C);
    rlab_ref_layernorm_bwd(dx2, with_gain ? dg2 : NULL, with_bias ? db2 : NULL, dy, x, m2, s2, G, R,
                           C);
    CHECK_MSG(maxrel(dx1, dx2, R * C) < 1e-3, "layernorm dx R%lld C%lld: %g", (long long)R,
              (long long)C, maxrel(dx1, dx2, R * C));
    CHECK_MSG(maxrel(dg1, dg2, C) < 1e-4 * (double)R, "layernorm dgain: %g", maxrel(dg1, dg2, C));
    CHECK_MSG(maxrel(db1, db2, C) < 1e-4 * (double)R, "layernorm dbias: %g", maxrel(db1, db2, C));
    float *bufs[] = {x, g, b, dy, y1, y2, m1, s1, m2, s2, dx1, dg1, db1, dx2, dg2, db2};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++)
        rlab_free(bufs[i]);
}

static void t_layernorm(void)
{
    rlab_rng_seed(&rng, 13);
    layernorm_case(33, 67, 1, 1);
    layernorm_case(1, 5, 0, 1);
    layernorm_case(7, 1, 1, 0);
    layernorm_case(601, 64, 1, 1); /* > RLAB_K_PAR_MIN: the OpenMP path */
    layernorm_case(3, 2049, 0, 0);
    /* C = 16 n <= 128: the 16-lane kernels with AVX-512F, then the 4-lane ones */
    for (int wide = rlab_k_avx512(); wide >= 0; wide--) {
        const int old = rlab_k_set_avx512(wide);
        layernorm_case(40, 16, 0, 0);
        layernorm_case(9, 128, 1, 0);
        layernorm_case(601, 48, 0, 1);
        layernorm_case(700, 64, 1, 1);
        rlab_k_set_avx512(old);
    }
}

static void softmax_case(int64_t R, int64_t C, float scale)
{
    float *x = rnd(R * C, scale), *dy = rnd(R * C, 1.0f);
    if (R > 2) {
        for (int64_t c = 0; c < C; c++)
            x[1 * C + c] = -INFINITY; /* an all -inf row -> zeros */
        x[2 * C] = -INFINITY;         /* one -inf entry -> exact zero there */
    }
    float *y1 = rnd(R * C, 1.0f), *y2 = rnd(R * C, 1.0f);
    float *dx1 = rnd(R * C, 1.0f), *dx2 = copy(dx1, R * C);
    rlab_k_softmax_fwd(y1, x, R, C);
    rlab_ref_softmax_fwd(y2, x, R, C);
    CHECK_MSG(maxrel(y1, y2, R * C) < 1e-5, "softmax fwd R%lld C%lld: %g", (long long)R,
              (long long)C, maxrel(y1, y2, R * C));
    if (R > 2) {
        for (int64_t c = 0; c < C; c++)
            CHECK(y1[C + c] == 0.0f);
        CHECK(y1[2 * C] == 0.0f);
    }
    rlab_k_softmax_bwd(dx1, dy, y2, R, C);
    rlab_ref_softmax_bwd(dx2, dy, y2, R, C);
    CHECK_MSG(maxrel(dx1, dx2, R * C) < 1e-5, "softmax bwd: %g", maxrel(dx1, dx2, R * C));
    float *bufs[] = {x, dy, y1, y2, dx1, dx2};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++)
        rlab_free(bufs[i]);
}

static void t_softmax(void)
{
    rlab_rng_seed(&rng, 14);
    softmax_case(5, 13, 4.0f);
    softmax_case(1, 1, 1.0f);
    softmax_case(700, 50, 20.0f); /* large logits: max-subtraction matters; OpenMP path */
}

static void t_gather(void)
{
    rlab_rng_seed(&rng, 15);
    const int64_t V = 11, D = 7, n = 9, pad = 10;
    static const int32_t ids[9] = {3, 10, 0, 3, -5, 9, 3, 10, 1};
    float *table = rnd(V * D, 1.0f), *o1 = rnd(n * D, 1.0f), *o2 = rnd(n * D, 1.0f);
    float *dout = rnd(n * D, 1.0f), *dt = rnd(V * D, 1.0f), *dt_ref = copy(dt, V * D);
    rlab_k_gather_fwd(o1, table, ids, n, V, D, pad);
    rlab_ref_gather_fwd(o2, table, ids, n, V, D, pad);
    CHECK(memcmp(o1, o2, (size_t)(n * D) * sizeof *o1) == 0);
    for (int64_t d = 0; d < D; d++) /* padding rows are zero, real rows are copies */
        CHECK(o1[1 * D + d] == 0.0f && o1[4 * D + d] == 0.0f && o1[d] == table[3 * D + d]);
    rlab_k_gather_bwd(dt, dout, ids, n, V, D, pad);
    for (int64_t i = 0; i < n; i++) /* naive: add every non-padding row */
        if (ids[i] >= 0 && ids[i] != pad)
            for (int64_t d = 0; d < D; d++)
                dt_ref[ids[i] * D + d] += dout[i * D + d];
    CHECK(maxrel(dt, dt_ref, V * D) < 1e-6);
    float *bufs[] = {table, o1, o2, dout, dt, dt_ref};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++)
        rlab_free(bufs[i]);
    /* a large scatter (the columns split over 2 threads; D = 72: a last piece of 8) with many
     * repeats: the same bits as the naive serial loop, on 1 and on 2 threads */
    const int64_t V2 = 50, D2 = 72, n2 = 3000, pad2 = 0;
    int32_t *ids2 = rlab_malloc((size_t)n2 * sizeof *ids2);
    for (int64_t i = 0; i < n2; i++)
        ids2[i] = (int32_t)rlab_rng_below(&rng, (uint64_t)V2 + 3) - 1; /* -1 .. V2 + 1 */
    float *g2 = rnd(n2 * D2, 1.0f), *t0 = rnd(V2 * D2, 1.0f);
    float *naive = copy(t0, V2 * D2), *t1 = copy(t0, V2 * D2), *t2 = copy(t0, V2 * D2);
    for (int64_t i = 0; i < n2; i++)
        if (ids2[i] >= 0 && ids2[i] != pad2 && ids2[i] < V2)
            for (int64_t d = 0; d < D2; d++)
                naive[ids2[i] * D2 + d] += g2[i * D2 + d];
    rlab_t_set_num_threads(1);
    rlab_k_gather_bwd(t1, g2, ids2, n2, V2, D2, pad2);
    rlab_t_set_num_threads(2);
    rlab_k_gather_bwd(t2, g2, ids2, n2, V2, D2, pad2);
    CHECK(memcmp(t1, naive, (size_t)(V2 * D2) * sizeof *t1) == 0);
    CHECK(memcmp(t2, naive, (size_t)(V2 * D2) * sizeof *t2) == 0);
    CHECK(memcmp(t0, naive, (size_t)(V2 * D2) * sizeof *t0) != 0); /* it did add */
    float *bufs2[] = {g2, t0, naive, t1, t2};
    for (size_t i = 0; i < sizeof bufs2 / sizeof *bufs2; i++)
        rlab_free(bufs2[i]);
    rlab_free(ids2);
}

/* The linear backward at SASRec's size (800 rows: one row block, dx on one thread and dW / db
 * / dr on the other): the same bits on 1 and 2 threads, with and without the ReLU, and for
 * three weights sharing the input (rlab_k_linear_multi_bwd). */
static void t_linear_bwd_threads(void)
{
    rlab_rng_seed(&rng, 18);
    const int64_t M = 800, N = 64, K = 64;
    float *x = rnd(M * K, 1.0f), *dy = rnd(3 * M * N, 1.0f), *y = rnd(M * N, 1.0f);
    float *w[3] = {rnd(K * N, 0.2f), rnd(K * N, 0.2f), rnd(K * N, 0.2f)};
    const size_t sc = rlab_k_linear_scratch_floats(M, N, K, RLAB_K_ACT_RELU),
                 sm = rlab_k_linear_multi_scratch_floats(M, N, K, 3);
    float *scratch = rlab_malloc((sc > sm ? sc : sm) * sizeof(float));
    for (int act = 0; act < 2; act++) {
        float *dx[2], *dw[2], *db[2], *dr[2], *mdx[2], *mdw[2][3];
        for (int k = 0; k < 2; k++) {
            rlab_t_set_num_threads(k + 1);
            rlab_rng_seed(&rng, 19); /* the same starting values on both */
            dx[k] = rnd(M * K, 0.5f);
            dr[k] = rnd(M * N, 0.5f);
            dw[k] = rnd(K * N, 0.5f);
            db[k] = rnd(N, 0.5f);
            mdx[k] = copy(dx[k], M * K);
            for (int s = 0; s < 3; s++)
                mdw[k][s] = copy(dw[k], K * N);
            rlab_k_linear_bwd(dx[k], dw[k], db[k], dr[k], dy, x, w[0], y, M, N, K,
                              act ? RLAB_K_ACT_RELU : RLAB_K_ACT_NONE, scratch);
            if (!act)
                rlab_k_linear_multi_bwd(mdx[k], mdw[k], dy, x, (const float *const *)w, 3, M, N, K,
                                        scratch);
        }
        rlab_t_set_num_threads(2);
        CHECK(memcmp(dx[0], dx[1], (size_t)(M * K) * sizeof(float)) == 0);
        CHECK(memcmp(dr[0], dr[1], (size_t)(M * N) * sizeof(float)) == 0);
        CHECK(memcmp(dw[0], dw[1], (size_t)(K * N) * sizeof(float)) == 0);
        CHECK(memcmp(db[0], db[1], (size_t)N * sizeof(float)) == 0);
        CHECK(memcmp(mdx[0], mdx[1], (size_t)(M * K) * sizeof(float)) == 0);
        for (int s = 0; s < 3; s++)
            CHECK(memcmp(mdw[0][s], mdw[1][s], (size_t)(K * N) * sizeof(float)) == 0);
        CHECK(memcmp(mdx[0], dx[0], (size_t)(M * K) * sizeof(float)) != 0); /* it did add */
        for (int k = 0; k < 2; k++) {
            rlab_free(dx[k]);
            rlab_free(dw[k]);
            rlab_free(db[k]);
            rlab_free(dr[k]);
            rlab_free(mdx[k]);
            for (int s = 0; s < 3; s++)
                rlab_free(mdw[k][s]);
        }
    }
    rlab_free(scratch);
    rlab_free(x);
    rlab_free(dy);
    rlab_free(y);
    for (int s = 0; s < 3; s++)
        rlab_free(w[s]);
}

static void t_sum(void)
{
    rlab_rng_seed(&rng, 16);
    static const int64_t ns[] = {0, 1, 63, 4097, 300001};
    for (size_t k = 0; k < sizeof ns / sizeof *ns; k++) {
        float *x = rnd(ns[k], 1.0f);
        double ref = 0.0, ref2 = 0.0;
        for (int64_t i = 0; i < ns[k]; i++) {
            ref += (double)x[i];
            ref2 += (double)x[i] * (double)x[i];
        }
        CHECK_NEAR(rlab_k_sum(x, ns[k]), ref, 1e-6 * (double)(ns[k] + 1));
        CHECK_NEAR(rlab_k_sumsq(x, ns[k]), ref2, 1e-6 * (double)(ns[k] + 1));
        rlab_free(x);
    }
}

/* rlab_k_zero zeroes exactly [p, p + bytes): small (one thread), large with a short last
 * piece (the threads), from inside a parallel region too; the bytes around stay as they were. */
static void t_zero(void)
{
    static const size_t sizes[] = {
        0, 1, 4099, RLAB_K_ZERO_PAR_MIN - 1, RLAB_K_ZERO_PAR_MIN, 3 * RLAB_K_ZERO_PAR_MIN + 12345};
    const size_t cap = 3 * RLAB_K_ZERO_PAR_MIN + 12345 + 64;
    unsigned char *buf = rlab_malloc(cap);
    CHECK(buf != NULL);
    if (!buf)
        return;
    /* nested: the right bytes zeroed from inside a region (a nested team would zero the same
     * bytes, so this checks the result, not that the in-region path is taken) */
    for (int nested = 0; nested < 2; nested++)
        for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
            const size_t off = 3 + k, n = sizes[k];
            memset(buf, 0xab, cap);
            if (nested) {
#pragma omp parallel num_threads(2)
                {
#pragma omp single
                    rlab_k_zero(buf + off, n);
                }
            } else
                rlab_k_zero(buf + off, n);
            size_t bad = 0;
            for (size_t i = 0; i < cap; i++)
                bad += buf[i] != (i >= off && i < off + n ? 0x00 : 0xab);
            CHECK_MSG(bad == 0, "rlab_k_zero(%zu bytes, nested %d): %zu bytes wrong", n, nested,
                      bad);
        }
    rlab_free(buf);
}

/* The same kernels with 1 and 2 threads give the same bits (static row schedules). */
static void t_threads(void)
{
    rlab_rng_seed(&rng, 17);
    const int64_t R = 1000, C = 64;
    float *x = rnd(R * C, 1.0f), *dy = rnd(R * C, 1.0f), *g = rnd(C, 1.0f);
    float *out[2], *dx[2], *dg[2], *sm[2], *mean = rnd(R, 1.0f), *rstd = rnd(R, 1.0f);
    double s[2];
    for (int k = 0; k < 2; k++) {
        rlab_t_set_num_threads(k + 1);
        out[k] = rnd(R * C, 0.0f);
        dx[k] = rnd(R * C, 0.0f);
        dg[k] = rnd(C, 0.0f);
        sm[k] = rnd(R * C, 0.0f);
        rlab_k_layernorm_fwd(out[k], mean, rstd, x, g, NULL, R, C, 1e-5f);
        rlab_k_layernorm_bwd(dx[k], dg[k], NULL, dy, x, mean, rstd, g, R, C);
        rlab_k_softmax_fwd(sm[k], x, R, C);
        s[k] = rlab_k_sum(x, R * C);
    }
    rlab_t_set_num_threads(2);
    CHECK(memcmp(out[0], out[1], (size_t)(R * C) * sizeof(float)) == 0);
    CHECK(memcmp(dx[0], dx[1], (size_t)(R * C) * sizeof(float)) == 0);
    CHECK(memcmp(dg[0], dg[1], (size_t)C * sizeof(float)) == 0);
    CHECK(memcmp(sm[0], sm[1], (size_t)(R * C) * sizeof(float)) == 0);
    CHECK(memcmp(&s[0], &s[1], sizeof s[0]) == 0);
    for (int k = 0; k < 2; k++) {
        rlab_free(out[k]);
        rlab_free(dx[k]);
        rlab_free(dg[k]);
        rlab_free(sm[k]);
    }
    rlab_free(x);
    rlab_free(dy);
    rlab_free(g);
    rlab_free(mean);
    rlab_free(rstd);
}

/* rlab_k_expf against exp() in double; edge values */
static void t_exp(void)
{
    double worst = 0.0;
    for (double x = -87.0; x <= 88.3; x += 0.001953125) {
        double want = exp(x), got = (double)rlab_k_expf((float)x);
        double rel = fabs(got - exp((double)(float)x)) / want;
        worst = rel > worst ? rel : worst;
    }
    CHECK_MSG(worst < 4e-7, "rlab_k_expf worst relative error %g", worst);
    CHECK(rlab_k_expf(0.0f) == 1.0f);
    CHECK(rlab_k_expf(-INFINITY) == 0.0f && rlab_k_expf(-100.0f) == 0.0f);
    CHECK(isfinite(rlab_k_expf(100.0f)) && rlab_k_expf(100.0f) > 1e38f);
    CHECK(isnan(rlab_k_expf(NAN)));
}

/* gelu / sigmoid / tanh ops (fast exp inside) against libm in double */
static void t_activations(void)
{
    rlab_err err = {0};
    rlab_tape *tape = rlab_tape_new(1 << 20, 64, &err);
    enum { N = 4001 };
    static float x[N];
    for (int i = 0; i < N; i++)
        x[i] = -20.0f + 40.0f * (float)i / (float)(N - 1);
    rlab_tensor *X = rlab_t_input(tape, x, 1, (int64_t[]){N});
    rlab_tensor *g = rlab_t_gelu(tape, X), *s = rlab_t_sigmoid(tape, X), *t = rlab_t_tanh(tape, X);
    double wg = 0.0, ws = 0.0, wt = 0.0;
    for (int i = 0; i < N; i++) {
        double v = (double)x[i];
        double eg = 0.5 * v * (1.0 + tanh(0.7978845608028654 * (v + 0.044715 * v * v * v)));
        double es = 1.0 / (1.0 + exp(-v)), et = tanh(v);
        wg = fmax(wg, fabs((double)g->data[i] - eg) / (1.0 + fabs(eg)));
        ws = fmax(ws, fabs((double)s->data[i] - es));
        wt = fmax(wt, fabs((double)t->data[i] - et));
    }
    CHECK_MSG(wg < 1e-6, "gelu error %g", wg);
    CHECK_MSG(ws < 1e-6, "sigmoid error %g", ws);
    CHECK_MSG(wt < 1e-6, "tanh error %g", wt);
    rlab_tape_free(tape);
}

static const rlab_test tests[] = {
    {"tensor.ref.matmul.1", t_matmul},
    {"tensor.ref.panel.1", t_panel},
    {"tensor.ref.panel_packed.1", t_panel_packed},
    {"tensor.ref.panel_pack.1", t_panel_pack},
    {"tensor.ref.matmul.2", t_matmul_split},
    {"tensor.ref.bmm.1", t_bmm},
    {"tensor.ref.layernorm.1", t_layernorm},
    {"tensor.ref.softmax.1", t_softmax},
    {"tensor.ref.gather.1", t_gather},
    {"tensor.ref.linear_bwd_threads.1", t_linear_bwd_threads},
    {"tensor.ref.sum.1", t_sum},
    {"tensor.ref.zero.1", t_zero},
    {"tensor.ref.threads.1", t_threads},
    {"tensor.ref.exp.1", t_exp},
    {"tensor.ref.activations.1", t_activations},
    {NULL, NULL},
};

int main(int argc, char **argv) { return rlab_test_main(argc, argv, tests); }
