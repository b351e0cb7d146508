/*
 * Test organization (core/tensor ops semantics, tape errors, optimisers, checkpoints):
 *   tensor.ops.*    forward values computed by hand: broadcasting rules and shape errors,
 *                   MQSA-TED's causal moving average, masks, reshape views (grad aliasing),
 *                   gather (padding, touched rows), dropout (rate, scale, reproducibility)
 *   tensor.tape.*   sticky errors: a too-small arena gives ENOMEM + poison and later ops are
 *                   no-ops until reset; node limit; rlab_alloc_fail_after on every allocation
 *                   of rlab_params_new / rlab_opt_new / rlab_tape_new; deterministic mode
 *                   (two fresh runs with dropout give bit-identical grads)
 *   tensor.optim.*  single steps against hand-computed values (SGD momentum, Adam, Adam + L2,
 *                   AdamW), warm-up + cosine schedule values, clipping, lazy rows, l2 penalty;
 *                   the 512-bit Adam bit-identical to the scalar loop
 *   tensor.ckpt.*   safetensors round trips (params, optimiser moments and step, metadata),
 *                   a file written byte by byte in the test, shape mismatch / truncation /
 *                   missing tensor / strict errors naming the file and the tensor
 */
#include "harness.h"
#include "tensor/checkpoint.h"
#include "tensor/kernels.h"
#include "tensor/ops.h"
#include "tensor/optim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* exact comparisons are intended here: copies, zeros and hand-picked values are exact */
#pragma GCC diagnostic ignored "-Wfloat-equal"

static rlab_tape *new_tape(void)
{
    rlab_err err = {0};
    rlab_tape *t = rlab_tape_new(4 << 20, 256, &err);
    CHECK_MSG(t != NULL, "tape: %s", err.msg);
    return t;
}

static rlab_params *new_params(const rlab_param_spec *s, int n, uint64_t seed)
{
    rlab_err err = {0};
    rlab_rng rng;
    rlab_rng_seed(&rng, seed);
    rlab_params *p = rlab_params_new(s, n, &rng, &err);
    CHECK_MSG(p != NULL, "params: %s", err.msg);
    return p;
}

/* ---- ops ------------------------------------------------------------------------------------- */
/* linear against the unfused ops (matmul, add bias, relu, add residual): forward bit for bit,
 * gradients to 1e-5 relative (the bias sum runs over fixed row blocks, add's in row order).
 * Shapes: small, and tall-thin ones that take the row-split sgemm path (M >= 1024, 4M+ MACs). */
/* max |a - b| over 1 + max |b|: sums of many terms (a weight gradient over 1,600 rows) are
 * compared at the scale of the whole tensor, where reordering them moves the last bits */
static float rel_diff(const float *a, const float *b, int64_t n)
{
    float worst = 0.0f, scale = 0.0f;
    for (int64_t i = 0; i < n; i++) {
        const float d = fabsf(a[i] - b[i]);
        worst = d > worst ? d : worst;
        scale = fabsf(b[i]) > scale ? fabsf(b[i]) : scale;
    }
    return worst / (1.0f + scale);
}

static void linear_vs_unfused(int64_t B, int64_t T, int64_t K, int64_t N, int bias, int res,
                              int act)
{
    /* the 64-wide AVX-512 tiles sum in another order than OpenBLAS: rounding only */
    const int exact = !(rlab_k_avx512() && (N == 64 || K == 64));
    const rlab_param_spec specs[] = {
        {"x", 3, {B, T, K}, RLAB_INIT_NORMAL, 1.0f},
        {"w", 2, {K, N}, RLAB_INIT_NORMAL, 0.3f},
        {"b", 1, {N}, RLAB_INIT_NORMAL, 0.5f},
        {"r", 3, {B, T, N}, RLAB_INIT_NORMAL, 1.0f},
    };
    rlab_params *P[2] = {new_params(specs, 4, 7), new_params(specs, 4, 7)};
    rlab_err err = {0};
    rlab_tape *t = rlab_tape_new((size_t)64 << 20, 64, &err);
    CHECK_MSG(t != NULL, "tape: %s", err.msg);
    float *y0 = malloc((size_t)(B * T * N) * sizeof *y0);
    rlab_rng rng;
    rlab_rng_seed(&rng, 11);
    float *seed = malloc((size_t)(B * T * N) * sizeof *seed);
    for (int64_t i = 0; i < B * T * N; i++)
        seed[i] = rlab_rng_normal(&rng);
    size_t nodes[2] = {0, 0};
    for (int fused = 0; fused < 2; fused++) {
        rlab_tape_reset(t);
        rlab_params_zero_grad(P[fused]);
        rlab_tensor *x = &P[fused]->t[0], *w = &P[fused]->t[1];
        rlab_tensor *b = bias ? &P[fused]->t[2] : NULL, *r = res ? &P[fused]->t[3] : NULL;
        rlab_tensor *y;
        if (fused) {
            y = rlab_t_linear(t, x, w, b, r, act);
        } else {
            y = rlab_t_matmul(t, x, w, 0, 0);
            if (b)
                y = rlab_t_add(t, y, b);
            if (act == RLAB_ACT_RELU)
                y = rlab_t_relu(t, y);
            if (r)
                y = rlab_t_add(t, r, y);
        }
        CHECK_EQ_INT(rlab_tape_error(t), RLAB_OK);
        nodes[fused] = t->nnodes; /* the same count: later dropout streams do not move */
        CHECK(y->ndim == 3 && y->shape[0] == B && y->shape[1] == T && y->shape[2] == N);
        if (!fused)
            memcpy(y0, y->data, (size_t)y->n * sizeof *y0);
        else if (!exact)
            CHECK_MSG(rel_diff(y->data, y0, y->n) < 1e-5f,
                      "linear [%lld,%lld,%lld]x[%lld,%lld] b%d r%d act%d: forward differs from the "
                      "unfused ops by %g",
                      (long long)B, (long long)T, (long long)K, (long long)K, (long long)N, bias,
                      res, act, (double)rel_diff(y->data, y0, y->n));
        else
            CHECK_MSG(memcmp(y0, y->data, (size_t)y->n * sizeof *y0) == 0,
                      "linear [%lld,%lld,%lld]x[%lld,%lld] b%d r%d act%d: forward differs from the "
                      "unfused ops by %g",
                      (long long)B, (long long)T, (long long)K, (long long)K, (long long)N, bias,
                      res, act, (double)rel_diff(y->data, y0, y->n));
        CHECK_EQ_INT(rlab_tape_backward_from(t, y, seed), RLAB_OK);
    }
    CHECK_EQ_INT((int)nodes[1], (int)nodes[0]);
    for (int k = 0; k < 4; k++) {
        const rlab_tensor *a = &P[0]->t[k], *f = &P[1]->t[k];
        const float d = rel_diff(f->grad, a->grad, a->n);
        CHECK_MSG(d < 1e-5f, "linear b%d r%d act%d: d%s differs from the unfused ops by %g", bias,
                  res, act, a->name, (double)d);
    }
    /* something flowed: dw is not all zero */
    float s = 0.0f;
    for (int64_t i = 0; i < P[1]->t[1].n; i++)
        s += fabsf(P[1]->t[1].grad[i]);
    CHECK(s > 0.0f);
    free(y0), free(seed);
    rlab_tape_free(t);
    rlab_params_free(P[0]), rlab_params_free(P[1]);
}

static void t_linear_vs_unfused(void)
{
    /* with the 64-wide AVX-512 tiles (where the CPU has them), then with cblas_sgemm only */
    for (int wide = 1; wide >= 0; wide--) {
        const int old = rlab_k_set_avx512(wide);
        for (int v = 0; v < 4; v++) { /* none, bias, bias + relu, bias + residual */
            const int bias = v > 0, act = v == 2 ? RLAB_ACT_RELU : RLAB_ACT_NONE, res = v == 3;
            linear_vs_unfused(2, 3, 5, 4, bias, res, act);
            /* the row-split paths (a few variants: slow under valgrind) */
            if (v == 2 || (v == 3 && !wide))
                linear_vs_unfused(8, 130, 64, 64, bias, res, act);
            if (v == 2 && !wide)
                linear_vs_unfused(3, 401, 48, 80, bias, res, act);
            linear_vs_unfused(5, 7, 64, 64, bias, res, act);  /* 64 wide, one block */
            linear_vs_unfused(3, 95, 64, 37, bias, res, act); /* dx 64 wide, partial tiles */
        }
        linear_vs_unfused(4, 9, 64, 64, 0, 1, RLAB_ACT_NONE); /* residual without bias */
        rlab_k_set_avx512(old);
    }
}

/* linear_multi against n separate linears (h-block2): forward bit for bit, gradients to 1e-5
 * relative (dx summed over the weights in registers, dW over fixed row blocks), the same tape
 * node count; its gradients bit-identical on 1 and 2 threads. */
static void linear_multi_case(int64_t B, int64_t T, int64_t K, int64_t N, int n)
{
    const rlab_param_spec specs[] = {
        {"x", 3, {B, T, K}, RLAB_INIT_NORMAL, 1.0f},
        {"w0", 2, {K, N}, RLAB_INIT_NORMAL, 0.3f},
        {"w1", 2, {K, N}, RLAB_INIT_NORMAL, 0.3f},
        {"w2", 2, {K, N}, RLAB_INIT_NORMAL, 0.3f},
    };
    /* [0] separate linears, [1] linear_multi, [2] linear_multi on one thread */
    rlab_params *P[3] = {new_params(specs, 1 + n, 5), new_params(specs, 1 + n, 5),
                         new_params(specs, 1 + n, 5)};
    rlab_err err = {0};
    rlab_tape *t = rlab_tape_new((size_t)64 << 20, 64, &err);
    CHECK_MSG(t != NULL, "tape: %s", err.msg);
    const int64_t M = B * T;
    float *y0 = malloc((size_t)(n * M * N) * sizeof *y0);
    float *seed = malloc((size_t)(n * M * N) * sizeof *seed);
    float *zero = calloc((size_t)(M * N), sizeof *zero);
    rlab_rng rng;
    rlab_rng_seed(&rng, 12);
    for (int64_t i = 0; i < n * M * N; i++)
        seed[i] = rlab_rng_normal(&rng);
    size_t nodes[3] = {0, 0, 0};
    const int threads = rlab_t_num_threads();
    for (int v = 0; v < 3; v++) {
        rlab_t_set_num_threads(v == 2 ? 1 : 2); /* 2 even where the default is 1 */
        rlab_tape_reset(t);
        rlab_params_zero_grad(P[v]);
        rlab_tensor *x = &P[v]->t[0], *w[3] = {&P[v]->t[1], &P[v]->t[2], &P[v]->t[3]}, *y[3];
        if (v == 0) {
            for (int s = 0; s < n; s++)
                y[s] = rlab_t_linear(t, x, w[s], NULL, NULL, RLAB_ACT_NONE);
        } else {
            rlab_tensor *all = rlab_t_linear_multi(t, x, n, w, y);
            CHECK(all->ndim == 4 && all->shape[0] == n && all->shape[3] == N);
        }
        CHECK_EQ_INT(rlab_tape_error(t), RLAB_OK);
        nodes[v] = t->nnodes;
        for (int s = 0; s < n; s++) {
            CHECK(y[s]->ndim == 3 && y[s]->shape[0] == B && y[s]->shape[1] == T &&
                  y[s]->shape[2] == N);
            if (v == 0)
                memcpy(y0 + s * M * N, y[s]->data, (size_t)(M * N) * sizeof *y0);
            else
                CHECK_MSG(memcmp(y0 + s * M * N, y[s]->data, (size_t)(M * N) * sizeof *y0) == 0,
                          "linear_multi [%lld,%lld,%lld] n%d: output %d differs from linear's",
                          (long long)B, (long long)T, (long long)N, n, s);
        }
        for (int s = 0; s < n; s++) /* seed every output, then walk the tape once */
            for (int64_t i = 0; i < M * N; i++)
                y[s]->grad[i] += seed[s * M * N + i];
        CHECK_EQ_INT(rlab_tape_backward_from(t, y[0], zero), RLAB_OK);
        if (v == 2)
            rlab_t_set_num_threads(threads);
    }
    CHECK_EQ_INT((int)nodes[1], (int)nodes[0]);
    for (int k = 0; k <= n; k++) {
        const rlab_tensor *a = &P[0]->t[k], *f = &P[1]->t[k], *o = &P[2]->t[k];
        const float d = rel_diff(f->grad, a->grad, a->n);
        CHECK_MSG(d < 1e-5f, "linear_multi [%lld,%lld,%lld] n%d: d%s differs from linear's by %g",
                  (long long)B, (long long)T, (long long)N, n, a->name, (double)d);
        CHECK_MSG(memcmp(f->grad, o->grad, (size_t)a->n * sizeof *a->grad) == 0,
                  "linear_multi n%d: d%s differs between 1 and %d threads", n, a->name, threads);
    }
    free(y0), free(seed), free(zero);
    rlab_tape_free(t);
    rlab_params_free(P[0]), rlab_params_free(P[1]), rlab_params_free(P[2]);
}

static void t_linear_multi(void)
{
    /* with the 512-bit kernels when the CPU has them (not under valgrind), then without */
    for (int wide = rlab_k_avx512(); wide >= 0; wide--) {
        const int old = rlab_k_set_avx512(wide);
        linear_multi_case(2, 3, 5, 4, 2);
        linear_multi_case(5, 7, 64, 64, 3);  /* 64 wide, one block */
        linear_multi_case(3, 95, 64, 37, 3); /* dx on the tiles, dW not: one by one */
        linear_multi_case(1, 9, 64, 64, 1);
        if (wide)
            linear_multi_case(4, 300, 64, 64, 3); /* 2 row blocks: threaded */
        rlab_k_set_avx512(old);
    }
    /* errors: sticky, and every output poisoned */
    rlab_err err = {0};
    rlab_tape *t = rlab_tape_new((size_t)1 << 20, 16, &err);
    rlab_tensor *X = rlab_t_new(t, 2, (int64_t[]){3, 4}, 0);
    rlab_tensor *W = rlab_t_new(t, 2, (int64_t[]){4, 5}, 0);
    rlab_tensor *W2 = rlab_t_new(t, 2, (int64_t[]){4, 6}, 0), *ws[2] = {W, W2}, *o[2];
    CHECK(rlab_t_linear_multi(t, X, 2, ws, o) == &t->poison && o[0] == &t->poison);
    CHECK_STR_CONTAINS(rlab_tape_errmsg(t), "linear_multi");
    rlab_tape_reset(t);
    CHECK(rlab_t_linear_multi(t, X, 0, ws, o) == &t->poison);
    CHECK_STR_CONTAINS(rlab_tape_errmsg(t), "weights");
    rlab_tape_free(t);
}

/* layernorm_linear_multi against layernorm then linear_multi (h-block2): forward bit for bit,
 * gradients to 1e-5 relative, the same node count, gradients bit-identical on 1 and 2
 * threads; switch = 1: the 512-bit kernels switched off between forward and backward (the
 * backward makes h again with the other kernels). */
static void ln_linear_multi_case(int64_t B, int64_t T, int64_t K, int64_t N, int n, int affine,
                                 int flip, int lbias, int act)
{
    const rlab_param_spec specs[] = {
        {"x", 3, {B, T, K}, RLAB_INIT_NORMAL, 1.0f}, {"g", 1, {K}, RLAB_INIT_NORMAL, 1.0f},
        {"b", 1, {K}, RLAB_INIT_NORMAL, 0.5f},       {"w0", 2, {K, N}, RLAB_INIT_NORMAL, 0.3f},
        {"w1", 2, {K, N}, RLAB_INIT_NORMAL, 0.3f},   {"w2", 2, {K, N}, RLAB_INIT_NORMAL, 0.3f},
        {"b0", 1, {N}, RLAB_INIT_NORMAL, 0.5f},      {"b1", 1, {N}, RLAB_INIT_NORMAL, 0.5f},
        {"b2", 1, {N}, RLAB_INIT_NORMAL, 0.5f},
    };
    rlab_params *P[3] = {new_params(specs, 9, 9), new_params(specs, 9, 9), new_params(specs, 9, 9)};
    rlab_err err = {0};
    rlab_tape *t = rlab_tape_new((size_t)64 << 20, 64, &err);
    CHECK_MSG(t != NULL, "tape: %s", err.msg);
    const int64_t M = B * T;
    float *y0 = malloc((size_t)(n * M * N) * sizeof *y0);
    float *seed = malloc((size_t)(n * M * N) * sizeof *seed);
    float *zero = calloc((size_t)(M * N), sizeof *zero);
    rlab_rng rng;
    rlab_rng_seed(&rng, 13);
    for (int64_t i = 0; i < n * M * N; i++)
        seed[i] = rlab_rng_normal(&rng);
    size_t nodes[3] = {0, 0, 0};
    const int threads = rlab_t_num_threads();
    for (int v = 0; v < 3; v++) {
        rlab_t_set_num_threads(v == 2 ? 1 : 2); /* 2 even where the default is 1 */
        rlab_tape_reset(t);
        rlab_params_zero_grad(P[v]);
        rlab_tensor *x = &P[v]->t[0], *g = affine ? &P[v]->t[1] : NULL;
        rlab_tensor *b = affine ? &P[v]->t[2] : NULL, *y[3];
        rlab_tensor *w[3] = {&P[v]->t[3], &P[v]->t[4], &P[v]->t[5]};
        rlab_tensor *lb[3] = {&P[v]->t[6], &P[v]->t[7], &P[v]->t[8]};
        if (v == 0) {
            rlab_tensor *h = rlab_t_layernorm(t, x, g, b, 1e-5f);
            for (int s = 0; s < n; s++)
                y[s] = rlab_t_linear(t, h, w[s], lbias ? lb[s] : NULL, NULL, act);
        } else {
            rlab_t_layernorm_linear_multi(t, x, g, b, 1e-5f, n, w, lbias ? lb : NULL, act, y);
        }
        CHECK_EQ_INT(rlab_tape_error(t), RLAB_OK);
        nodes[v] = t->nnodes;
        for (int s = 0; s < n; s++) {
            CHECK(y[s]->ndim == 3 && y[s]->shape[2] == N);
            if (v == 0)
                memcpy(y0 + s * M * N, y[s]->data, (size_t)(M * N) * sizeof *y0);
            else
                CHECK_MSG(memcmp(y0 + s * M * N, y[s]->data, (size_t)(M * N) * sizeof *y0) == 0,
                          "layernorm_linear_multi [%lld,%lld,%lld] n%d: output %d differs",
                          (long long)B, (long long)T, (long long)N, n, s);
            for (int64_t i = 0; i < M * N; i++)
                y[s]->grad[i] += seed[s * M * N + i];
        }
        const int was = flip && v > 0 ? rlab_k_set_avx512(0) : -1;
        CHECK_EQ_INT(rlab_tape_backward_from(t, y[0], zero), RLAB_OK);
        if (was >= 0)
            rlab_k_set_avx512(was);
        if (v == 2)
            rlab_t_set_num_threads(threads);
    }
    CHECK_EQ_INT((int)nodes[1], (int)nodes[0]);
    for (int k = 0; k < 9; k++) {
        if ((!affine && (k == 1 || k == 2)) || (k >= 3 && k < 6 && k - 3 >= n) ||
            (k >= 6 && (!lbias || k - 6 >= n)))
            continue;
        const rlab_tensor *a = &P[0]->t[k], *f = &P[1]->t[k], *o = &P[2]->t[k];
        const float d = rel_diff(f->grad, a->grad, a->n);
        CHECK_MSG(d < 1e-5f,
                  "layernorm_linear_multi [%lld,%lld,%lld] n%d flip%d: d%s differs by %g",
                  (long long)B, (long long)T, (long long)N, n, flip, a->name, (double)d);
        CHECK_MSG(memcmp(f->grad, o->grad, (size_t)a->n * sizeof *a->grad) == 0,
                  "layernorm_linear_multi n%d: d%s differs between 1 and %d threads", n, a->name,
                  threads);
    }
    free(y0), free(seed), free(zero);
    rlab_tape_free(t);
    rlab_params_free(P[0]), rlab_params_free(P[1]), rlab_params_free(P[2]);
}

static void t_ln_linear_multi(void)
{
    for (int wide = rlab_k_avx512(); wide >= 0; wide--) {
        const int old = rlab_k_set_avx512(wide);
        const int none = RLAB_ACT_NONE, relu = RLAB_ACT_RELU;
        ln_linear_multi_case(2, 3, 5, 4, 2, 1, 0, 0, none);
        ln_linear_multi_case(5, 7, 64, 64, 3, 1, 0, 0, none);
        ln_linear_multi_case(3, 11, 64, 64, 1, 0, 0, 1, relu);
        ln_linear_multi_case(2, 9, 64, 48, 2, 1, 0, 1, none);
        ln_linear_multi_case(3, 5, 7, 9, 1, 1, 0, 1, relu);
        if (wide) {
            ln_linear_multi_case(4, 300, 64, 64, 3, 1, 0, 0, none); /* 2 threaded blocks */
            ln_linear_multi_case(4, 300, 64, 64, 1, 1, 0, 1, relu);
            ln_linear_multi_case(5, 7, 64, 64, 2, 1, 1, 1, none); /* 512-bit off for backward */
            ln_linear_multi_case(5, 7, 64, 64, 1, 1, 1, 1, relu);
        }
        rlab_k_set_avx512(old);
    }
    rlab_err err = {0};
    rlab_tape *t = rlab_tape_new((size_t)1 << 20, 16, &err);
    rlab_tensor *X = rlab_t_new(t, 2, (int64_t[]){3, 4}, 0);
    rlab_tensor *W = rlab_t_new(t, 2, (int64_t[]){4, 5}, 0),
                *G3 = rlab_t_new(t, 1, (int64_t[]){3}, 0);
    rlab_tensor *ws[1] = {W}, *o[1];
    CHECK(rlab_t_layernorm_linear_multi(t, X, G3, NULL, 1e-5f, 1, ws, NULL, RLAB_ACT_NONE, o) ==
          &t->poison);
    CHECK(o[0] == &t->poison);
    CHECK_STR_CONTAINS(rlab_tape_errmsg(t), "gain and bias");
    rlab_tape_reset(t);
    CHECK(rlab_t_layernorm_linear_multi(t, X, NULL, NULL, 1e-5f, 8, ws, NULL, RLAB_ACT_NONE, o) ==
          &t->poison);
    CHECK_STR_CONTAINS(rlab_tape_errmsg(t), "weights");
    rlab_tape_reset(t);
    rlab_tensor *ws2[2] = {W, W}, *o2[2];
    CHECK(rlab_t_layernorm_linear_multi(t, X, NULL, NULL, 1e-5f, 2, ws2, NULL, RLAB_ACT_RELU, o2) ==
          &t->poison);
    CHECK_STR_CONTAINS(rlab_tape_errmsg(t), "ReLU only with one weight");
    rlab_tape_reset(t);
    rlab_tensor *b3[1] = {G3};
    CHECK(rlab_t_layernorm_linear_multi(t, X, NULL, NULL, 1e-5f, 1, ws, b3, RLAB_ACT_NONE, o) ==
          &t->poison);
    CHECK_STR_CONTAINS(rlab_tape_errmsg(t), "bias must have N");
    rlab_tape_free(t);
}

static void t_linear_errors(void)
{
    rlab_tape *t = new_tape();
    float x[6] = {1, 2, 3, 4, 5, 6}, w[6] = {1, 0, 0, 1, 1, 1}, b[3] = {0}, r[4] = {0};
    rlab_tensor *X = rlab_t_input(t, x, 2, (int64_t[]){2, 3});
    rlab_tensor *W = rlab_t_input(t, w, 2, (int64_t[]){3, 2});
    rlab_tensor *B3 = rlab_t_input(t, b, 1, (int64_t[]){3});
    rlab_tensor *R = rlab_t_input(t, r, 2, (int64_t[]){2, 2});
    /* hand-computed: [1 2 3; 4 5 6] [1 0; 0 1; 1 1] = [4 5; 10 11] */
    rlab_tensor *y = rlab_t_linear(t, X, W, NULL, NULL, RLAB_ACT_NONE);
    CHECK(y->data[0] == 4.0f && y->data[1] == 5.0f && y->data[2] == 10.0f && y->data[3] == 11.0f);
    y = rlab_t_linear(t, X, W, NULL, R, RLAB_ACT_RELU);
    CHECK(y == &t->poison);
    CHECK_STR_CONTAINS(rlab_tape_errmsg(t), "residual after the ReLU");
    rlab_tape_reset(t);
    X = rlab_t_input(t, x, 2, (int64_t[]){2, 3});
    W = rlab_t_input(t, w, 2, (int64_t[]){3, 2});
    B3 = rlab_t_input(t, b, 1, (int64_t[]){3});
    y = rlab_t_linear(t, X, W, B3, NULL, RLAB_ACT_NONE);
    CHECK(y == &t->poison);
    CHECK_STR_CONTAINS(rlab_tape_errmsg(t), "linear: bias");
    rlab_tape_reset(t);
    X = rlab_t_input(t, x, 2, (int64_t[]){2, 3});
    y = rlab_t_linear(t, X, X, NULL, NULL, RLAB_ACT_NONE);
    CHECK(y == &t->poison);
    CHECK_STR_CONTAINS(rlab_tape_errmsg(t), "[2, 3] and [2, 3]");
    rlab_tape_free(t);
}

static void t_broadcast(void)
{
    rlab_tape *t = new_tape();
    float a[6] = {1, 2, 3, 4, 5, 6}, row[3] = {10, 20, 30}, s[1] = {2}, bad[2] = {1, 1};
    rlab_tensor *A = rlab_t_input(t, a, 2, (int64_t[]){2, 3});
    rlab_tensor *R = rlab_t_input(t, row, 1, (int64_t[]){3});
    rlab_tensor *S = rlab_t_input(t, s, 1, (int64_t[]){1});
    rlab_tensor *y = rlab_t_add(t, A, R);
    CHECK(y->data[0] == 11.0f && y->data[5] == 36.0f && y->ndim == 2 && y->shape[1] == 3);
    y = rlab_t_sub(t, A, S);
    CHECK(y->data[0] == -1.0f && y->data[5] == 4.0f);
    y = rlab_t_mul(t, A, R);
    CHECK(y->data[1] == 40.0f && y->data[3] == 40.0f);
    CHECK_EQ_INT(rlab_tape_error(t), RLAB_OK);
    /* [2, 3] + [2]: not a shape the rules accept */
    rlab_tensor *B = rlab_t_input(t, bad, 1, (int64_t[]){2});
    y = rlab_t_add(t, A, B);
    CHECK(y == &t->poison);
    CHECK_EQ_INT(rlab_tape_error(t), RLAB_EINVAL);
    CHECK_STR_CONTAINS(rlab_tape_errmsg(t), "add");
    CHECK_STR_CONTAINS(rlab_tape_errmsg(t), "[2, 3] and [2]");
    /* sticky: a valid op after the error does nothing and keeps the first message */
    y = rlab_t_relu(t, A);
    CHECK(y == &t->poison);
    CHECK_STR_CONTAINS(rlab_tape_errmsg(t), "add");
    rlab_tape_reset(t);
    CHECK_EQ_INT(rlab_tape_error(t), RLAB_OK);
    A = rlab_t_input(t, a, 2, (int64_t[]){2, 3});
    CHECK(rlab_t_relu(t, A)->data[2] == 3.0f);
    rlab_tape_free(t);
}

static void t_cma(void)
{
    rlab_tape *t = new_tape();
    /* one sequence, C = 1: x = 1..5, left padding at t = 0, L = 3 */
    float x[5] = {1, 2, 3, 4, 5};
    uint8_t valid[5] = {0, 1, 1, 1, 1};
    rlab_tensor *X = rlab_t_input(t, x, 3, (int64_t[]){1, 5, 1});
    rlab_tensor *y = rlab_t_causal_moving_avg(t, X, valid, 3);
    const float want[5] = {0.0f, 2.0f, 2.5f, 3.0f, 4.0f}; /* 2/1, (2+3)/2, (2+3+4)/3, (3+4+5)/3 */
    for (int i = 0; i < 5; i++)
        CHECK_NEAR(y->data[i], want[i], 1e-6);
    /* a hole: t = 1 is padding, so t = 2 averages x0 and x2 only; padded query -> 0 */
    float x2[6] = {1, 10, 2, 20, 3, 30};
    uint8_t v2[3] = {1, 0, 1};
    X = rlab_t_input(t, x2, 3, (int64_t[]){1, 3, 2});
    y = rlab_t_causal_moving_avg(t, X, v2, 3);
    CHECK_NEAR(y->data[0], 1.0, 1e-6);
    CHECK_NEAR(y->data[1], 10.0, 1e-6);
    CHECK(y->data[2] == 0.0f && y->data[3] == 0.0f);
    CHECK_NEAR(y->data[4], 2.0, 1e-6);  /* (1 + 3) / 2 */
    CHECK_NEAR(y->data[5], 20.0, 1e-6); /* (10 + 30) / 2 */
    /* not [B, T, C] */
    y = rlab_t_causal_moving_avg(t, rlab_t_input(t, x, 1, (int64_t[]){5}), valid, 3);
    CHECK(y == &t->poison);
    CHECK_STR_CONTAINS(rlab_tape_errmsg(t), "causal_moving_avg");
    rlab_tape_free(t);
}

static void t_masks(void)
{
    rlab_tape *t = new_tape();
    float x[6] = {1, 2, 3, 4, 5, 6};
    uint8_t valid[2] = {0, 1}, row[3] = {0, 1, 0};
    rlab_tensor *X = rlab_t_input(t, x, 3, (int64_t[]){1, 2, 3});
    rlab_tensor *y = rlab_t_mask_rows(t, X, valid);
    CHECK(y->data[0] == 0.0f && y->data[2] == 0.0f && y->data[3] == 4.0f && y->data[5] == 6.0f);
    y = rlab_t_masked_fill(t, X, row, 3, -7.0f);
    CHECK(y->data[0] == 1.0f && y->data[1] == -7.0f && y->data[4] == -7.0f && y->data[5] == 6.0f);
    CHECK(rlab_t_masked_fill(t, X, row, 2, 0.0f) == &t->poison); /* neither n nor cols */
    CHECK_STR_CONTAINS(rlab_tape_errmsg(t), "masked_fill");
    rlab_tape_free(t);
}

static void t_reshape(void)
{
    rlab_param_spec s[1] = {{"w", 2, {3, 4}, RLAB_INIT_NORMAL, 1.0f}};
    rlab_params *P = new_params(s, 1, 3);
    rlab_tape *t = new_tape();
    rlab_tensor *w = &P->t[0];
    rlab_tensor *v = rlab_t_reshape(t, w, 3, (int64_t[]){2, -1, 3});
    CHECK(v->ndim == 3 && v->shape[1] == 2 && v->n == 12);
    CHECK(v->data == w->data && v->grad == w->grad); /* a view: data and grad alias */
    CHECK((v->flags & RLAB_T_VIEW) && !(v->flags & RLAB_T_PARAM));
    /* a gradient into the view lands in the parameter's grad */
    rlab_tensor *loss = rlab_t_sum_all(t, rlab_t_scale(t, v, 2.0f));
    rlab_params_zero_grad(P);
    CHECK_EQ_INT(rlab_tape_backward(t, loss), RLAB_OK);
    for (int i = 0; i < 12; i++)
        CHECK(w->grad[i] == 2.0f);
    CHECK(rlab_t_reshape(t, w, 2, (int64_t[]){5, 2}) == &t->poison);
    CHECK_STR_CONTAINS(rlab_tape_errmsg(t), "12 elements cannot become 10");
    rlab_tape_free(t);
    rlab_params_free(P);
}

static void t_gather(void)
{
    rlab_param_spec s[1] = {{"emb", 2, {6, 2}, RLAB_INIT_NORMAL, 1.0f}};
    rlab_params *P = new_params(s, 1, 4);
    rlab_err err = {0};
    rlab_tensor *E = &P->t[0];
    CHECK_EQ_INT(rlab_params_track_rows(P, E, &err), RLAB_OK);
    rlab_tape *t = new_tape();
    int32_t ids[5] = {4, 5, 4, -1, 1}; /* 5 = pad id */
    rlab_tensor *y = rlab_t_gather(t, E, ids, 5, 5, 0, NULL);
    CHECK(y->ndim == 2 && y->shape[0] == 5 && y->shape[1] == 2);
    CHECK(y->data[0] == E->data[8] && y->data[2] == 0.0f && y->data[6] == 0.0f);
    rlab_params_zero_grad(P);
    CHECK_EQ_INT(rlab_tape_backward(t, rlab_t_sum_all(t, y)), RLAB_OK);
    const uint8_t *touched = P->row_touched[0];
    CHECK(touched[4] && touched[1] && !touched[5] && !touched[0] && !touched[2]);
    CHECK(E->grad[8] == 2.0f && E->grad[2] == 1.0f && E->grad[10] == 0.0f && E->grad[0] == 0.0f);
    rlab_params_zero_grad(P);
    CHECK(!touched[4]);
    /* out-of-range ids are an error naming the id */
    ids[0] = 9;
    CHECK(rlab_t_gather(t, E, ids, 5, 5, 0, NULL) == &t->poison);
    CHECK_STR_CONTAINS(rlab_tape_errmsg(t), "id 9");
    rlab_tape_free(t);
    rlab_params_free(P);
}

static void t_dropout(void)
{
    rlab_tape *t = new_tape();
    enum { N = 20000 };
    float *x = rlab_malloc(N * sizeof *x);
    for (int i = 0; i < N; i++)
        x[i] = 1.0f;
    rlab_tape_seed(t, 42, 0);
    rlab_tensor *X = rlab_t_input(t, x, 2, (int64_t[]){100, 200});
    rlab_tensor *y = rlab_t_dropout(t, X, 0.25f);
    int kept = 0;
    for (int i = 0; i < N; i++) {
        CHECK(y->data[i] == 0.0f || fabsf(y->data[i] - 1.0f / 0.75f) < 1e-6f);
        kept += y->data[i] != 0.0f;
    }
    CHECK_MSG(fabs(kept / (double)N - 0.75) < 0.015, "kept fraction %g", kept / (double)N);
    /* same seed, step and node index: the same mask; next step: another one */
    rlab_tensor *y2 = rlab_t_dropout(t, X, 0.25f); /* a different node index */
    CHECK(memcmp(y->data, y2->data, N * sizeof(float)) != 0);
    float *first = rlab_malloc(N * sizeof *first);
    memcpy(first, y->data, N * sizeof *first);
    rlab_tape_reset(t);
    rlab_tape_seed(t, 42, 0);
    X = rlab_t_input(t, x, 2, (int64_t[]){100, 200});
    CHECK(memcmp(rlab_t_dropout(t, X, 0.25f)->data, first, N * sizeof(float)) == 0);
    rlab_tape_reset(t); /* step 1 */
    X = rlab_t_input(t, x, 2, (int64_t[]){100, 200});
    CHECK(memcmp(rlab_t_dropout(t, X, 0.25f)->data, first, N * sizeof(float)) != 0);
    /* evaluation: identity, no node */
    rlab_tape_set_training(t, 0);
    CHECK(rlab_t_dropout(t, X, 0.25f) == X);
    CHECK(rlab_t_dropout(t, X, 1.0f) == &t->poison);
    rlab_free(first);
    rlab_free(x);
    rlab_tape_free(t);
}

/* ---- tape errors ----------------------------------------------------------------------------- */
static void t_enomem(void)
{
    rlab_err err = {0};
    rlab_tape *t = rlab_tape_new(8192, 64, &err);
    CHECK(t != NULL);
    static float x[64 * 64];
    rlab_tensor *X = rlab_t_input(t, x, 2, (int64_t[]){64, 64});
    rlab_tensor *y = rlab_t_relu(t, X); /* needs 16 KB of output */
    CHECK(y == &t->poison && (y->flags & RLAB_T_POISON));
    CHECK_EQ_INT(rlab_tape_error(t), RLAB_ENOMEM);
    CHECK_STR_CONTAINS(rlab_tape_errmsg(t), "arena full");
    const size_t used = rlab_tape_used(t);
    CHECK(rlab_t_add(t, y, y) == &t->poison); /* later ops: no-ops, no allocation */
    CHECK(rlab_t_layernorm(t, X, NULL, NULL, 1e-5f) == &t->poison);
    CHECK(rlab_t_sum_all(t, rlab_t_matmul(t, y, X, 0, 0)) == &t->poison);
    CHECK(rlab_tape_used(t) == used);
    CHECK_EQ_INT(rlab_tape_error(t), RLAB_ENOMEM);
    CHECK_EQ_INT(rlab_tape_backward(t, y), RLAB_ENOMEM);
    rlab_tape_reset(t);
    CHECK_EQ_INT(rlab_tape_error(t), RLAB_OK);
    X = rlab_t_input(t, x, 2, (int64_t[]){4, 4});
    CHECK(!(rlab_t_relu(t, X)->flags & RLAB_T_POISON));
    rlab_tape_free(t);
    /* the node limit is an error too */
    t = rlab_tape_new(1 << 16, 2, &err);
    X = rlab_t_input(t, x, 2, (int64_t[]){2, 2});
    rlab_t_relu(t, rlab_t_relu(t, X));
    CHECK(rlab_t_relu(t, X) == &t->poison);
    CHECK_STR_CONTAINS(rlab_tape_errmsg(t), "at most 2 ops");
    rlab_tape_free(t);
}

static void t_allocfail(void)
{
    rlab_param_spec s[2] = {{"a", 2, {3, 5}, RLAB_INIT_NORMAL, 1.0f},
                            {"b", 1, {7}, RLAB_INIT_ZERO, 0.0f}};
    rlab_opt_config oc = rlab_opt_defaults(RLAB_OPT_ADAM);
    int ok_p = 0, ok_o = 0, ok_t = 0;
    for (long k = 0; k < 20 && !(ok_p && ok_o && ok_t); k++) {
        rlab_err err = {0};
        rlab_rng rng;
        rlab_rng_seed(&rng, 1);
        rlab_alloc_fail_after(k);
        rlab_params *P = rlab_params_new(s, 2, &rng, &err);
        rlab_alloc_fail_after(-1);
        if (!P) {
            CHECK_EQ_INT(err.code, RLAB_ENOMEM);
            CHECK_STR_CONTAINS(err.msg, "out of memory");
            continue;
        }
        ok_p = 1;
        rlab_err_clear(&err);
        rlab_alloc_fail_after(k);
        rlab_opt *o = rlab_opt_new(P, &oc, &err);
        rlab_tape *t = rlab_tape_new(1 << 12, 8, &err);
        rlab_alloc_fail_after(-1);
        if (o)
            ok_o = 1;
        if (t)
            ok_t = 1;
        if (!o || !t)
            CHECK_EQ_INT(err.code, RLAB_ENOMEM);
        rlab_opt_free(o);
        rlab_tape_free(t);
        rlab_params_free(P);
    }
    CHECK(ok_p && ok_o && ok_t);
}

/* gather -> layernorm -> matmul -> gelu -> dropout -> masked softmax -> mean */
static void small_model(rlab_params *P, uint64_t seed, float *grads_out)
{
    rlab_tape *t = new_tape();
    static const int32_t ids[8] = {1, 2, 0, 3, 3, 4, 1, 0};
    static const uint8_t mask[5] = {0, 0, 1, 0, 0};
    rlab_tape_seed(t, seed, 5);
    rlab_tensor *h =
        rlab_t_gather(t, rlab_params_get(P, "emb"), ids, 8, 0, 3, (int64_t[]){2, 4, 6});
    h = rlab_t_layernorm(t, h, rlab_params_get(P, "ln.g"), rlab_params_get(P, "ln.b"), 1e-5f);
    h = rlab_t_gelu(t, rlab_t_matmul(t, h, rlab_params_get(P, "w"), 0, 0));
    h = rlab_t_dropout(t, h, 0.3f);
    h = rlab_t_softmax(t, rlab_t_masked_fill(t, h, mask, 5, -1e9f));
    rlab_tensor *loss = rlab_t_mean_all(t, rlab_t_mul(t, h, h));
    rlab_params_zero_grad(P);
    CHECK_EQ_INT(rlab_tape_backward(t, loss), RLAB_OK);
    memcpy(grads_out, P->grad, P->count * sizeof(float));
    rlab_tape_free(t);
}

static void t_determinism(void)
{
    rlab_param_spec s[4] = {{"emb", 2, {5, 6}, RLAB_INIT_NORMAL, 1.0f},
                            {"ln.g", 1, {6}, RLAB_INIT_ONE, 0.0f},
                            {"ln.b", 1, {6}, RLAB_INIT_ZERO, 0.0f},
                            {"w", 2, {6, 5}, RLAB_INIT_XAVIER, 0.0f}};
    rlab_params *P = new_params(s, 4, 9);
    rlab_t_set_deterministic(1);
    float *g1 = rlab_malloc(P->count * sizeof(float)), *g2 = rlab_malloc(P->count * sizeof(float));
    small_model(P, 123, g1);
    small_model(P, 123, g2);
    CHECK(memcmp(g1, g2, P->count * sizeof(float)) == 0);
    double n1 = rlab_k_sumsq(g1, (int64_t)P->count);
    CHECK(n1 > 0.0);
    small_model(P, 124, g2); /* another dropout seed: the check above can fail */
    CHECK(memcmp(g1, g2, P->count * sizeof(float)) != 0);
    rlab_t_set_deterministic(0);
    rlab_free(g1);
    rlab_free(g2);
    rlab_params_free(P);
}

/* ---- optimisers --------------------------------------------------------------------------------
 */
static rlab_params *opt_params(void)
{
    rlab_param_spec s[2] = {{"a", 2, {3, 5}, RLAB_INIT_NORMAL, 1.0f},
                            {"b", 1, {7}, RLAB_INIT_NORMAL, 1.0f}};
    rlab_params *P = new_params(s, 2, 21);
    rlab_rng rng;
    rlab_rng_seed(&rng, 22);
    for (int k = 0; k < P->n; k++)
        for (int64_t i = 0; i < P->t[k].n; i++) /* |g| >= 0.01: far from the eps of Adam */
            P->t[k].grad[i] =
                (rlab_rng_uniform(&rng) < 0.5f ? -1.0f : 1.0f) * (0.01f + rlab_rng_uniform(&rng));
    return P;
}

static float sgnf(float x) { return x > 0.0f ? 1.0f : x < 0.0f ? -1.0f : 0.0f; }

static void t_adam(void)
{
    for (int kind = 0; kind < 3; kind++) { /* plain Adam, Adam + L2, AdamW */
        rlab_params *P = opt_params();
        rlab_err err = {0};
        rlab_opt_config oc = rlab_opt_defaults(kind == 2 ? RLAB_OPT_ADAMW : RLAB_OPT_ADAM);
        oc.lr = 0.01f;
        oc.weight_decay = kind == 0 ? 0.0f : 0.5f;
        rlab_opt *o = rlab_opt_new(P, &oc, &err);
        CHECK(o != NULL);
        float *x0 = rlab_malloc(P->count * sizeof(float));
        memcpy(x0, P->data, P->count * sizeof(float));
        CHECK_EQ_INT(rlab_opt_step(o, P), RLAB_OK);
        CHECK_EQ_INT(rlab_opt_steps(o), 1);
        for (int k = 0; k < P->n; k++)
            for (int64_t i = 0; i < P->t[k].n; i++) {
                size_t j = (size_t)(P->t[k].data - P->data) + (size_t)i;
                float g = P->grad[j], want;
                if (kind == 0) /* first step: m^ = g, v^ = g^2 -> moves by lr * sign(g) */
                    want = x0[j] - 0.01f * sgnf(g);
                else if (kind == 1) /* L2 joins the gradient before the moments */
                    want = x0[j] - 0.01f * sgnf(g + 0.5f * x0[j]);
                else /* decoupled: the decay is applied outside the moments */
                    want = x0[j] - 0.01f * (sgnf(g) + 0.5f * x0[j]);
                CHECK_NEAR(P->data[j], want, 2e-6);
            }
        /* second step, with the same gradient, against the formula in double */
        if (kind == 0) {
            memcpy(x0, P->data, P->count * sizeof(float));
            rlab_opt_step(o, P);
            for (size_t j = 0; j < P->count; j++) {
                double g = (double)P->grad[j];
                double m = 0.1 * g * (1 + 0.9), v = 0.001 * g * g * (1 + 0.999);
                double mh = m / (1 - 0.81), vh = v / (1 - 0.999 * 0.999);
                CHECK_NEAR(P->data[j], (double)x0[j] - 0.01 * mh / (sqrt(vh) + 1e-8), 2e-6);
            }
        }
        rlab_free(x0);
        rlab_opt_free(o);
        rlab_params_free(P);
    }
}

/* The 512-bit Adam (h-ce) against the scalar loop: bit-identical parameters and moments after
 * three steps, for Adam, Adam + L2 and AdamW, on tensors whose sizes leave 16-lane tails and
 * cross the 4096-float pieces of the threaded loop. */
static void t_adam_wide(void)
{
    if (!rlab_k_avx512()) {
        fprintf(stderr, "tensor.optim.adam.2: no AVX-512F, only the scalar loop runs: skipped\n");
        return;
    }
    const rlab_param_spec sp[3] = {{"a", 2, {77, 61}, RLAB_INIT_NORMAL, 0.5f},
                                   {"b", 1, {13}, RLAB_INIT_NORMAL, 0.5f},
                                   {"c", 2, {300, 33}, RLAB_INIT_NORMAL, 0.5f}};
    for (int kind = 0; kind < 3; kind++) {
        rlab_params *P[2];
        rlab_opt *o[2];
        for (int w = 0; w < 2; w++) {
            rlab_rng rng;
            rlab_rng_seed(&rng, 17);
            rlab_err err = {0};
            P[w] = rlab_params_new(sp, 3, &rng, &err);
            rlab_opt_config oc = rlab_opt_defaults(kind == 2 ? RLAB_OPT_ADAMW : RLAB_OPT_ADAM);
            oc.weight_decay = kind == 0 ? 0.0f : 0.05f;
            o[w] = rlab_opt_new(P[w], &oc, &err);
            CHECK(P[w] && o[w]);
        }
        for (int step = 0; step < 3; step++)
            for (int w = 0; w < 2; w++) {
                for (size_t j = 0; j < P[w]->count; j++) /* the same gradients for both */
                    P[w]->grad[j] =
                        0.01f * (float)((int)((j * 7919 + (size_t)step * 31) % 201) - 100);
                const int was = rlab_k_set_avx512(w);
                CHECK_EQ_INT(rlab_opt_step(o[w], P[w]), RLAB_OK);
                rlab_k_set_avx512(was);
            }
        const size_t n = P[0]->count;
        CHECK(memcmp(P[0]->data, P[1]->data, n * sizeof(float)) == 0);
        CHECK(memcmp(rlab_opt_state_m(o[0]), rlab_opt_state_m(o[1]), n * sizeof(float)) == 0);
        CHECK(memcmp(rlab_opt_state_v(o[0]), rlab_opt_state_v(o[1]), n * sizeof(float)) == 0);
        for (int w = 0; w < 2; w++) {
            rlab_opt_free(o[w]);
            rlab_params_free(P[w]);
        }
    }
}

static void t_sgd(void)
{
    rlab_params *P = opt_params();
    rlab_err err = {0};
    rlab_opt_config oc = rlab_opt_defaults(RLAB_OPT_SGD);
    oc.lr = 0.1f;
    oc.momentum = 0.9f;
    rlab_opt *o = rlab_opt_new(P, &oc, &err);
    float *x0 = rlab_malloc(P->count * sizeof(float));
    memcpy(x0, P->data, P->count * sizeof(float));
    rlab_opt_step(o, P);
    rlab_opt_step(o, P); /* buffer: g, then 1.9 g -> moved by 0.1 g + 0.19 g */
    for (size_t j = 0; j < P->count; j++)
        CHECK_NEAR(P->data[j], x0[j] - 0.29f * P->grad[j], 1e-6);
    rlab_opt_free(o);
    /* no momentum, decoupled decay: x -= lr (g + wd x) */
    oc.momentum = 0.0f;
    oc.weight_decay = 0.1f;
    o = rlab_opt_new(P, &oc, &err);
    CHECK(rlab_opt_state_m(o) == NULL && rlab_opt_state_v(o) == NULL);
    memcpy(x0, P->data, P->count * sizeof(float));
    rlab_opt_step(o, P);
    for (size_t j = 0; j < P->count; j++)
        CHECK_NEAR(P->data[j], x0[j] - 0.1f * (P->grad[j] + 0.1f * x0[j]), 1e-6);
    rlab_opt_free(o);
    rlab_free(x0);
    rlab_params_free(P);
}

static void t_schedule(void)
{
    rlab_params *P = opt_params();
    rlab_err err = {0};
    rlab_opt_config oc = rlab_opt_defaults(RLAB_OPT_ADAM);
    oc.lr = 1.0f;
    oc.sched = RLAB_SCHED_COSINE;
    oc.warmup_steps = 10;
    oc.total_steps = 110;
    oc.min_lr = 0.1f;
    rlab_opt *o = rlab_opt_new(P, &oc, &err);
    static const struct {
        int64_t step;
        double lr;
    } want[] = {{0, 0.1},
                {4, 0.5},
                {9, 1.0},
                {10, 1.0},
                {35, 0.86819805153394639 /* 0.1 + 0.45 (1 + cos(pi/4)) */},
                {60, 0.55},
                {110, 0.1},
                {500, 0.1}};
    for (size_t k = 0; k < sizeof want / sizeof *want; k++) {
        rlab_opt_set_steps(o, want[k].step);
        CHECK_NEAR(rlab_opt_lr(o), want[k].lr, 1e-6);
    }
    rlab_opt_set_steps(o, 0);
    rlab_opt_step(o, P);
    CHECK_NEAR(rlab_opt_lr(o), 0.2, 1e-6); /* the step advanced the schedule */
    rlab_opt_free(o);
    /* constant with warm-up */
    oc.sched = RLAB_SCHED_CONSTANT;
    oc.warmup_steps = 4;
    o = rlab_opt_new(P, &oc, &err);
    CHECK_NEAR(rlab_opt_lr(o), 0.25, 1e-7);
    rlab_opt_set_steps(o, 1000);
    CHECK_NEAR(rlab_opt_lr(o), 1.0, 1e-7);
    rlab_opt_free(o);
    /* a cosine schedule without total_steps is refused */
    oc.sched = RLAB_SCHED_COSINE;
    oc.total_steps = 0;
    CHECK(rlab_opt_new(P, &oc, &err) == NULL);
    CHECK_EQ_INT(err.code, RLAB_EINVAL);
    rlab_params_free(P);
}

static void t_clip(void)
{
    rlab_param_spec s[2] = {{"a", 1, {1}, RLAB_INIT_ZERO, 0.0f},
                            {"b", 1, {1}, RLAB_INIT_ZERO, 0.0f}};
    rlab_params *P = new_params(s, 2, 1);
    P->t[0].grad[0] = 3.0f;
    P->t[1].grad[0] = -4.0f;
    CHECK_NEAR(rlab_opt_clip_grad_norm(P, 10.0f), 5.0, 1e-6); /* below: untouched */
    CHECK(P->t[0].grad[0] == 3.0f);
    CHECK_NEAR(rlab_opt_clip_grad_norm(P, 1.0f), 5.0, 1e-6);
    CHECK_NEAR(P->t[0].grad[0], 0.6, 1e-6);
    CHECK_NEAR(P->t[1].grad[0], -0.8, 1e-6);
    /* clipping inside the step: SGD lr 1, clip 0.5 -> moves by g * 0.5 / 1 */
    rlab_err err = {0};
    rlab_opt_config oc = rlab_opt_defaults(RLAB_OPT_SGD);
    oc.lr = 1.0f;
    oc.clip_norm = 0.5f;
    rlab_opt *o = rlab_opt_new(P, &oc, &err);
    rlab_opt_step(o, P);
    CHECK_NEAR(P->t[0].data[0], -0.3, 1e-6);
    CHECK_NEAR(P->t[1].data[0], 0.4, 1e-6);
    rlab_opt_free(o);
    rlab_params_free(P);
}

/* lazy Adam: untouched rows (and their moments) stay bit-identical; dense Adam keeps moving
 * rows through momentum even when their gradient is zero */
static void lazy_run(int lazy, float *row1_after1, float *row1_after2, float *rows02_before,
                     float *rows02_after)
{
    rlab_param_spec s[2] = {{"emb", 2, {5, 3}, RLAB_INIT_NORMAL, 1.0f},
                            {"bias", 1, {3}, RLAB_INIT_NORMAL, 1.0f}};
    rlab_params *P = new_params(s, 2, 31);
    rlab_err err = {0};
    rlab_tensor *E = &P->t[0], *b = &P->t[1];
    CHECK_EQ_INT(rlab_params_track_rows(P, E, &err), RLAB_OK);
    rlab_opt_config oc = rlab_opt_defaults(RLAB_OPT_ADAMW);
    oc.lazy = lazy;
    rlab_opt *o = rlab_opt_new(P, &oc, &err);
    rlab_tape *t = new_tape();
    memcpy(rows02_before, E->data, 9 * sizeof(float)); /* rows 0..2 */
    static const int32_t ids1[2] = {1, 3}, ids2[1] = {3};
    for (int step = 0; step < 2; step++) {
        rlab_tape_reset(t);
        rlab_tensor *h = rlab_t_gather(t, E, step ? ids2 : ids1, step ? 1 : 2, -1, 0, NULL);
        rlab_tensor *loss = rlab_t_sum_all(t, rlab_t_mul(t, rlab_t_add(t, h, b), h));
        rlab_params_zero_grad(P);
        CHECK_EQ_INT(rlab_tape_backward(t, loss), RLAB_OK);
        CHECK_EQ_INT(rlab_opt_step(o, P), RLAB_OK);
        memcpy(step ? row1_after2 : row1_after1, E->data + 3, 3 * sizeof(float));
    }
    memcpy(rows02_after, E->data, 9 * sizeof(float));
    if (lazy) { /* moments of never-touched rows are still zero */
        CHECK(rlab_opt_state_m(o)[0] == 0.0f && rlab_opt_state_v(o)[8] == 0.0f);
        CHECK(rlab_opt_state_m(o)[3] != 0.0f);
    }
    rlab_tape_free(t);
    rlab_opt_free(o);
    rlab_params_free(P);
}

static void t_lazy(void)
{
    float r1a[3], r1b[3], before[9], after[9];
    lazy_run(1, r1a, r1b, before, after);
    CHECK(memcmp(r1a, r1b, sizeof r1a) == 0);             /* row 1 untouched in step 2: frozen */
    CHECK(memcmp(before, after, 3 * sizeof(float)) == 0); /* row 0: never touched */
    CHECK(memcmp(before + 6, after + 6, 3 * sizeof(float)) == 0); /* row 2: never touched */
    CHECK(memcmp(before + 3, after + 3, 3 * sizeof(float)) != 0); /* row 1 moved in step 1 */
    lazy_run(0, r1a, r1b, before, after);
    CHECK(memcmp(r1a, r1b, sizeof r1a) != 0); /* dense: momentum (and decay) keep moving it */
    CHECK(memcmp(before, after, 3 * sizeof(float)) != 0); /* dense AdamW decays row 0 */
}

static void t_l2(void)
{
    rlab_param_spec s[2] = {{"a", 1, {2}, RLAB_INIT_ZERO, 0.0f},
                            {"b", 1, {1}, RLAB_INIT_ZERO, 0.0f}};
    rlab_params *P = new_params(s, 2, 1);
    P->t[0].data[0] = 1.0f;
    P->t[0].data[1] = 2.0f;
    P->t[1].data[0] = -3.0f;
    P->t[1].grad[0] = 1.0f;
    CHECK_NEAR(rlab_opt_l2_penalty(P, 0.1f), 0.1 * 14.0 / 2.0, 1e-7);
    CHECK_NEAR(P->t[0].grad[1], 0.2, 1e-7);
    CHECK_NEAR(P->t[1].grad[0], 1.0 - 0.3, 1e-7);
    rlab_params_free(P);
}

/* ---- checkpoints -------------------------------------------------------------------------------
 */
static const char *tmp_path(const char *name)
{
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", rlab_test_tmpdir(), name);
    return buf[k];
}

static rlab_params *ck_params(uint64_t seed, int64_t d0, int64_t d1)
{
    rlab_param_spec s[3] = {{"blocks.0.w", 2, {d0, d1}, RLAB_INIT_NORMAL, 1.0f},
                            {"blocks.0.b", 1, {5}, RLAB_INIT_NORMAL, 1.0f},
                            {"emb", 3, {2, 3, 2}, RLAB_INIT_UNIFORM, 1.0f}};
    return new_params(s, 3, seed);
}

static void t_ckpt_roundtrip(void)
{
    const char *path = tmp_path("rt.safetensors");
    rlab_params *A = ck_params(1, 3, 4), *B = ck_params(2, 3, 4);
    rlab_err err = {0};
    rlab_kv meta[2] = {{"model", "sasrec"}, {"epoch", "7"}};
    CHECK_EQ_INT(rlab_ckpt_save(path, A, NULL, meta, 2, &err), RLAB_OK);
    CHECK(memcmp(A->data, B->data, A->count * sizeof(float)) != 0);
    CHECK_EQ_INT(rlab_ckpt_load(path, B, NULL, 1, &err), RLAB_OK);
    CHECK(memcmp(A->data, B->data, A->count * sizeof(float)) == 0); /* bit-exact */
    char buf[32];
    CHECK_EQ_INT(rlab_ckpt_meta(path, "model", buf, sizeof buf, &err), RLAB_OK);
    CHECK(strcmp(buf, "sasrec") == 0);
    CHECK_EQ_INT(rlab_ckpt_meta(path, "nope", buf, sizeof buf, &err), RLAB_ENOTFOUND);
    CHECK_STR_CONTAINS(err.msg, "nope");
    /* the header: length is a multiple of 8 and the file is exactly 8 + N + data bytes */
    FILE *f = fopen(path, "rb");
    unsigned char len8[8];
    CHECK(f && fread(len8, 1, 8, f) == 8);
    uint64_t n = 0;
    for (int b = 7; b >= 0; b--)
        n = (n << 8) | len8[b];
    fseek(f, 0, SEEK_END);
    CHECK(n % 8 == 0);
    CHECK_EQ_INT(ftell(f), (long)(8 + n + (12 + 5 + 12) * 4));
    fclose(f);
    char tmpname[600];
    snprintf(tmpname, sizeof tmpname, "%s.tmp.%ld", path, (long)getpid());
    CHECK(access(tmpname, F_OK) != 0); /* the temporary was renamed away */
    rlab_params_free(A);
    rlab_params_free(B);
}

static void t_ckpt_opt(void)
{
    const char *path = tmp_path("opt.safetensors");
    rlab_params *A = ck_params(1, 3, 4), *B = ck_params(2, 3, 4);
    rlab_err err = {0};
    rlab_opt_config oc = rlab_opt_defaults(RLAB_OPT_ADAM);
    rlab_opt *oa = rlab_opt_new(A, &oc, &err), *ob = rlab_opt_new(B, &oc, &err);
    for (int s = 0; s < 3; s++) {
        for (size_t j = 0; j < A->count; j++)
            A->grad[j] = (float)((int)(j * 7 + (size_t)s) % 5) - 2.0f;
        rlab_opt_step(oa, A);
    }
    CHECK_EQ_INT(rlab_ckpt_save(path, A, oa, NULL, 0, &err), RLAB_OK);
    CHECK_EQ_INT(rlab_ckpt_load(path, B, ob, 1, &err), RLAB_OK);
    CHECK_EQ_INT(rlab_opt_steps(ob), 3);
    const size_t bytes = A->count * sizeof(float);
    CHECK(memcmp(A->data, B->data, bytes) == 0);
    CHECK(memcmp(rlab_opt_state_m(oa), rlab_opt_state_m(ob), bytes) == 0);
    CHECK(memcmp(rlab_opt_state_v(oa), rlab_opt_state_v(ob), bytes) == 0);
    /* a params-only file cannot restore an optimiser: the error names the missing tensor */
    const char *p2 = tmp_path("noopt.safetensors");
    CHECK_EQ_INT(rlab_ckpt_save(p2, A, NULL, NULL, 0, &err), RLAB_OK);
    CHECK_EQ_INT(rlab_ckpt_load(p2, B, ob, 0, &err), RLAB_ENOTFOUND);
    CHECK_STR_CONTAINS(err.msg, "opt.m.blocks.0.w");
    /* loading params only from a file with moments: fine even when strict */
    CHECK_EQ_INT(rlab_ckpt_load(path, B, NULL, 1, &err), RLAB_OK);
    rlab_opt_free(oa);
    rlab_opt_free(ob);
    rlab_params_free(A);
    rlab_params_free(B);
}

static void t_ckpt_errors(void)
{
    const char *path = tmp_path("err.safetensors");
    rlab_params *A = ck_params(1, 3, 4), *B = ck_params(2, 4, 3);
    rlab_err err = {0};
    CHECK_EQ_INT(rlab_ckpt_save(path, A, NULL, NULL, 0, &err), RLAB_OK);
    float *before = rlab_malloc(B->count * sizeof(float));
    memcpy(before, B->data, B->count * sizeof(float));
    /* shape mismatch: names file and tensor, leaves the block untouched */
    CHECK_EQ_INT(rlab_ckpt_load(path, B, NULL, 0, &err), RLAB_EINVAL);
    CHECK_STR_CONTAINS(err.msg, "err.safetensors");
    CHECK_STR_CONTAINS(err.msg, "'blocks.0.w'");
    CHECK_STR_CONTAINS(err.msg, "[3, 4] in the file, [4, 3] expected");
    CHECK(memcmp(before, B->data, B->count * sizeof(float)) == 0);
    /* truncated data */
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fclose(f);
    CHECK(truncate(path, size - 6) == 0);
    CHECK_EQ_INT(rlab_ckpt_load(path, A, NULL, 0, &err), RLAB_EFORMAT);
    CHECK_STR_CONTAINS(err.msg, "truncated");
    CHECK_STR_CONTAINS(err.msg, "'emb'");
    CHECK_STR_CONTAINS(err.msg, "err.safetensors");
    /* truncated inside the header, and shorter than the length prefix */
    CHECK(truncate(path, 40) == 0);
    CHECK_EQ_INT(rlab_ckpt_load(path, A, NULL, 0, &err), RLAB_EFORMAT);
    CHECK_STR_CONTAINS(err.msg, "truncated");
    CHECK(truncate(path, 5) == 0);
    CHECK_EQ_INT(rlab_ckpt_load(path, A, NULL, 0, &err), RLAB_EFORMAT);
    CHECK_STR_CONTAINS(err.msg, "truncated");
    CHECK_EQ_INT(rlab_ckpt_load(tmp_path("missing.safetensors"), A, NULL, 0, &err), RLAB_ENOTFOUND);
    rlab_free(before);
    rlab_params_free(A);
    rlab_params_free(B);
}

/* A safetensors file written byte by byte from a literal header (as any other writer would
 * produce it: tensors out of our order, no padding, an extra tensor and F16 dtype elsewhere). */
static void write_handmade(const char *path, const char *hdr, const float *data, size_t nfloat)
{
    size_t n = strlen(hdr);
    unsigned char len8[8];
    for (int b = 0; b < 8; b++)
        len8[b] = (unsigned char)((uint64_t)n >> (8 * b));
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    fwrite(len8, 1, 8, f);
    fwrite(hdr, 1, n, f);
    fwrite(data, sizeof(float), nfloat, f);
    fclose(f);
}

static void t_ckpt_handmade(void)
{
    const char *path = tmp_path("hand.safetensors");
    /* b = [1.5, -2] at bytes [0, 8); a = [[0.25, 3, -1]] at [8, 20); extra = [7] at [20, 24) */
    const char *hdr = "{\"__metadata__\":{\"format\":\"pt\"},"
                      "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                      "\"a\":{\"dtype\":\"F32\",\"shape\":[1,3],\"data_offsets\":[8,20]},"
                      "\"extra\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[20,24]}}";
    const float data[6] = {1.5f, -2.0f, 0.25f, 3.0f, -1.0f, 7.0f};
    write_handmade(path, hdr, data, 6);
    rlab_param_spec s[2] = {{"a", 2, {1, 3}, RLAB_INIT_ZERO, 0.0f},
                            {"b", 1, {2}, RLAB_INIT_ZERO, 0.0f}};
    rlab_params *P = new_params(s, 2, 1);
    rlab_err err = {0};
    CHECK_EQ_INT(rlab_ckpt_load(path, P, NULL, 0, &err), RLAB_OK);
    CHECK(P->t[0].data[0] == 0.25f && P->t[0].data[1] == 3.0f && P->t[0].data[2] == -1.0f);
    CHECK(P->t[1].data[0] == 1.5f && P->t[1].data[1] == -2.0f);
    char buf[8];
    CHECK_EQ_INT(rlab_ckpt_meta(path, "format", buf, sizeof buf, &err), RLAB_OK);
    CHECK(strcmp(buf, "pt") == 0);
    /* strict refuses the extra tensor, by name */
    CHECK_EQ_INT(rlab_ckpt_load(path, P, NULL, 1, &err), RLAB_EINVAL);
    CHECK_STR_CONTAINS(err.msg, "'extra'");
    /* a wrong dtype and a missing tensor */
    const char *h2 = "{\"a\":{\"dtype\":\"F16\",\"shape\":[1,3],\"data_offsets\":[0,6]}}";
    write_handmade(path, h2, data, 2);
    CHECK_EQ_INT(rlab_ckpt_load(path, P, NULL, 0, &err), RLAB_EFORMAT);
    CHECK_STR_CONTAINS(err.msg, "F16");
    const char *h3 = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,3],\"data_offsets\":[0,12]}}";
    write_handmade(path, h3, data, 3);
    CHECK_EQ_INT(rlab_ckpt_load(path, P, NULL, 0, &err), RLAB_ENOTFOUND);
    CHECK_STR_CONTAINS(err.msg, "'b' not found");
    write_handmade(path, "{not json", data, 0);
    CHECK_EQ_INT(rlab_ckpt_load(path, P, NULL, 0, &err), RLAB_EFORMAT);
    rlab_params_free(P);
}

static void t_spmm(void)
{
    rlab_tape *t = new_tape();
    /* S = [[2, 0, 1], [0, 0, 0]] (row 1 empty), x = [[1, 2], [3, 4], [5, 6]] */
    float x[6] = {1, 2, 3, 4, 5, 6};
    const int64_t rp[3] = {0, 2, 2};
    const int32_t col[2] = {0, 2};
    const float val[2] = {2.0f, 1.0f};
    rlab_tensor *X = rlab_t_input(t, x, 2, (int64_t[]){3, 2});
    rlab_tensor *y = rlab_t_spmm(t, 2, rp, col, val, X);
    CHECK_EQ_INT((int)y->shape[0], 2);
    CHECK_NEAR(y->data[0], 7.0, 1e-6);  /* 2*1 + 5 */
    CHECK_NEAR(y->data[1], 10.0, 1e-6); /* 2*2 + 6 */
    CHECK(y->data[2] == 0.0f && y->data[3] == 0.0f);
    y = rlab_t_spmm(t, 2, rp, col, NULL, X); /* all ones */
    CHECK_NEAR(y->data[0], 6.0, 1e-6);
    /* a column out of range names the entry */
    const int32_t bad[2] = {0, 3};
    CHECK(rlab_t_spmm(t, 2, rp, bad, val, X) == &t->poison);
    CHECK_STR_CONTAINS(rlab_tape_errmsg(t), "spmm: column 3 at entry 1");
    rlab_tape_free(t);
}

/* The OPENBLAS_CORETYPE choice, by hand: only a generic fallback core is overridden, with
 * the best kernels the CPU can run; a recognised core is kept. */
static void t_blas_core(void)
{
    CHECK_STR(rlab_t_blas_pick_core("Prescott", 1, 1), "SkylakeX");
    CHECK_STR(rlab_t_blas_pick_core("prescott", 0, 1), "Haswell");
    CHECK_STR(rlab_t_blas_pick_core("Nehalem", 1, 1), "SkylakeX");
    CHECK_STR(rlab_t_blas_pick_core("Core2", 0, 1), "Haswell");
    CHECK_STR(rlab_t_blas_pick_core(NULL, 1, 1), "SkylakeX");
    CHECK_STR(rlab_t_blas_pick_core("", 0, 1), "Haswell");
    CHECK(rlab_t_blas_pick_core("Prescott", 0, 0) == NULL); /* nothing better to run */
    CHECK(rlab_t_blas_pick_core("Haswell", 1, 1) == NULL);  /* detected: kept */
    CHECK(rlab_t_blas_pick_core("SkylakeX", 1, 1) == NULL);
    CHECK(rlab_t_blas_pick_core("Zen", 0, 1) == NULL);
    CHECK(rlab_t_blas_pick_core("Sandybridge", 1, 1) == NULL);
    /* the running core has a name; an explicit OPENBLAS_CORETYPE is never overridden */
    CHECK(strlen(rlab_t_blas_core()) > 0);
    const char *old = getenv("OPENBLAS_CORETYPE");
    char saved[64] = "";
    if (old)
        snprintf(saved, sizeof saved, "%s", old);
    CHECK(setenv("OPENBLAS_CORETYPE", "Haswell", 1) == 0);
    CHECK_EQ_INT(rlab_t_blas_core_env(), 0);
    CHECK_STR(getenv("OPENBLAS_CORETYPE"), "Haswell");
    if (old)
        setenv("OPENBLAS_CORETYPE", saved, 1);
    else
        unsetenv("OPENBLAS_CORETYPE");
}

static const rlab_test tests[] = {
    {"tensor.blas.core.1", t_blas_core},
    {"tensor.ops.spmm.1", t_spmm},
    {"tensor.ops.broadcast.1", t_broadcast},
    {"tensor.ops.causal_moving_avg.1", t_cma},
    {"tensor.ops.masks.1", t_masks},
    {"tensor.ops.reshape.1", t_reshape},
    {"tensor.ops.gather.1", t_gather},
    {"tensor.ops.dropout.1", t_dropout},
    {"tensor.tape.enomem.1", t_enomem},
    {"tensor.tape.allocfail.1", t_allocfail},
    {"tensor.tape.determinism.1", t_determinism},
    {"tensor.optim.adam.1", t_adam},
    {"tensor.optim.adam.2", t_adam_wide},
    {"tensor.optim.sgd.1", t_sgd},
    {"tensor.optim.schedule.1", t_schedule},
    {"tensor.optim.clip.1", t_clip},
    {"tensor.optim.lazy.1", t_lazy},
    {"tensor.optim.l2.1", t_l2},
    {"tensor.ckpt.roundtrip.1", t_ckpt_roundtrip},
    {"tensor.ckpt.opt.1", t_ckpt_opt},
    {"tensor.ckpt.errors.1", t_ckpt_errors},
    {"tensor.ckpt.handmade.1", t_ckpt_handmade},
    {"tensor.linear.1", t_linear_vs_unfused},
    {"tensor.linear.2", t_linear_errors},
    {"tensor.linear.3", t_linear_multi},
    {"tensor.linear.4", t_ln_linear_multi},
    {NULL, NULL},
};

int main(int argc, char **argv) { return rlab_test_main(argc, argv, tests); }
