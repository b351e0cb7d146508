/*
 * Test organization (fused layers of core/tensor/nn.h):
 *   nn.attention.*   fast vs naive kernels on odd shapes (outputs and gradients, masks,
 *                    cross-attention, dropout), hand-computed cases, mask semantics, errors
 *   grad.attention.* finite-difference gradient checks of rlab_t_attention
 *   nn.moe.*         routing (top-k, ties, renormalised gates) against a loop reference,
 *                    load-balancing loss values
 *   grad.moe.*       gradient checks of rlab_t_moe (output and aux loss)
 *   nn.rvq.*         codes vs brute force, residual levels, straight-through gradient
 *   grad.rvq.*       gradient checks of the commitment loss
 * The gradcheck.<op> ctests run the grad.<op>. subsets with OPENBLAS_NUM_THREADS=1.
 */
#include "gradcheck.h"
#include "harness.h"
#include "tensor/kernels.h"
#include "tensor/nn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ----------------------------------------------------------------------------- */
static float *rand_buf(rlab_rng *rng, size_t n, float scale)
{
    float *x = malloc(n * sizeof *x + 1);
    for (size_t i = 0; i < n; i++)
        x[i] = scale * rlab_rng_normal(rng);
    return x;
}

static float max_abs_diff(const float *a, const float *b, size_t n)
{
    float m = 0.0f;
    for (size_t i = 0; i < n; i++) {
        float d = fabsf(a[i] - b[i]);
        m = d > m ? d : m;
    }
    return m;
}

/* ---- attention: fast vs naive -------------------------------------------------------------- */
typedef struct {
    int B, Tq, Tk, C, H;
    unsigned flags;
    float dropout;
    int key_pad, query_pad; /* use random masks (with one all-padding key row) */
    int left_pad;           /* key masks are left padding: keys j < random start are masked */
} attn_cfg;

/* 1: compare_attention runs the backward with the 512-bit kernels switched the other way from
 * the forward (the tape may do that between the two) */
static int g_attn_flip;

/* Causal rows of P are written up to the end of their block of query rows (nn.h): past the
 * diagonal an entry may be left as it was. */
static int attn_in_window(unsigned flags, int i, int j)
{
    return !(flags & RLAB_ATTN_CAUSAL) || j <= i;
}

static void compare_attention(const attn_cfg *c, uint64_t seed)
{
    rlab_rng rng;
    rlab_rng_seed(&rng, seed);
    const size_t nq = (size_t)c->B * c->Tq * c->C, nk = (size_t)c->B * c->Tk * c->C;
    const size_t na = (size_t)c->B * c->H * c->Tq * c->Tk;
    float *q = rand_buf(&rng, nq, 1.0f), *k = rand_buf(&rng, nk, 1.0f);
    float *v = rand_buf(&rng, nk, 1.0f), *dout = rand_buf(&rng, nq, 1.0f);
    uint8_t *kv = malloc((size_t)c->B * c->Tk), *qv = malloc((size_t)c->B * c->Tq);
    for (int i = 0; i < c->B * c->Tk; i++)
        kv[i] = rlab_rng_uniform(&rng) < 0.7f;
    for (int b = 0; c->left_pad && b < c->B; b++) { /* starts 0 .. Tk - 1 */
        const int start = (int)(rlab_rng_uniform(&rng) * (float)c->Tk) % c->Tk;
        for (int j = 0; j < c->Tk; j++)
            kv[b * c->Tk + j] = j >= start;
    }
    for (int i = 0; i < c->Tk; i++)
        kv[(c->B - 1) * c->Tk + i] = 0; /* last batch row: every key is padding */
    for (int i = 0; i < c->B * c->Tq; i++)
        qv[i] = rlab_rng_uniform(&rng) < 0.8f;
    const uint8_t *kvp = c->key_pad ? kv : NULL, *qvp = c->query_pad ? qv : NULL;
    float *o1 = calloc(nq, 4), *o2 = calloc(nq, 4), *a1 = malloc(na * 4 + 1), *a2 = calloc(na, 4);
    for (size_t e = 0; e < na; e++) /* what the forward leaves unwritten must never be read */
        a1[e] = NAN;
    float *scratch = calloc(rlab_attention_scratch_floats(c->Tq, c->Tk) + 1, 4);
    float *g1[3], *g2[3];
    for (int i = 0; i < 3; i++) {
        g1[i] = calloc(i ? nk : nq, 4);
        g2[i] = calloc(i ? nk : nq, 4);
        /* non-zero starting grads: backward must accumulate */
        for (size_t e = 0; e < (i ? nk : nq); e++)
            g1[i][e] = g2[i][e] = 0.25f;
    }
    const uint64_t key = 12345;
    rlab_attention_forward(o1, a1, scratch, q, k, v, c->B, c->Tq, c->Tk, c->C, c->H, kvp, qvp,
                           c->flags, c->dropout, key);
    rlab_attention_forward_naive(o2, a2, q, k, v, c->B, c->Tq, c->Tk, c->C, c->H, kvp, qvp,
                                 c->flags, c->dropout, key);
    CHECK_MSG(max_abs_diff(o1, o2, nq) < 1e-5f, "attention out: fast vs naive differ by %g",
              (double)max_abs_diff(o1, o2, nq));
    float dp = 0.0f;
    int outside_bad = 0;
    for (size_t r = 0; r < (size_t)c->B * c->H * c->Tq; r++)
        for (int j = 0; j < c->Tk; j++) {
            const size_t e = r * (size_t)c->Tk + (size_t)j;
            if (attn_in_window(c->flags, (int)(r % (size_t)c->Tq), j)) {
                const float d = fabsf(a1[e] - a2[e]);
                dp = d > dp || isnan(d) || isnan(dp) ? (isnan(dp) ? dp : d) : dp;
            } else {
                outside_bad += !isnan(a1[e]) && fabsf(a1[e]) > 0.0f; /* written: must be 0 */
            }
        }
    CHECK_MSG(dp < 1e-6f, "attention P: fast vs naive differ by %g", (double)dp);
    CHECK(outside_bad == 0);
    const int was = rlab_k_avx512();
    if (g_attn_flip)
        rlab_k_set_avx512(!was);
    rlab_attention_backward(g1[0], g1[1], g1[2], scratch, dout, a1, q, k, v, c->B, c->Tq, c->Tk,
                            c->C, c->H, kvp, c->flags, c->dropout, key);
    rlab_k_set_avx512(was);
    rlab_attention_backward_naive(g2[0], g2[1], g2[2], dout, a2, q, k, v, c->B, c->Tq, c->Tk, c->C,
                                  c->H, c->dropout, key);
    for (int i = 0; i < 3; i++) {
        float d = max_abs_diff(g1[i], g2[i], i ? nk : nq);
        CHECK_MSG(d < 1e-5f, "attention grad d%c: fast vs naive differ by %g", "qkv"[i], (double)d);
    }
    /* mask semantics: padded queries and the all-padding batch give zero rows */
    for (int b = 0; b < c->B; b++)
        for (int i = 0; i < c->Tq; i++) {
            int zero = (qvp && !qvp[b * c->Tq + i]) || (kvp && b == c->B - 1);
            if (!zero)
                continue;
            for (int d = 0; d < c->C; d++)
                CHECK(fabsf(o1[((size_t)b * c->Tq + i) * c->C + d]) <= 0.0f);
        }
    /* every unmasked row of P sums to 1 */
    for (int b = 0; b < c->B; b++)
        for (int h = 0; h < c->H; h++)
            for (int i = 0; i < c->Tq; i++) {
                const float *P = a1 + (((size_t)b * c->H + h) * c->Tq + i) * c->Tk;
                double s = 0;
                for (int j = 0; j < c->Tk; j++)
                    s += attn_in_window(c->flags, i, j) ? (double)P[j] : 0.0;
                int zero = (qvp && !qvp[b * c->Tq + i]) || (kvp && b == c->B - 1);
                if (kvp && !zero) {
                    int any = 0;
                    for (int j = 0; j < c->Tk; j++)
                        any |= kvp[b * c->Tk + j] && (!(c->flags & RLAB_ATTN_CAUSAL) || j <= i);
                    zero = !any;
                }
                CHECK_NEAR(s, zero ? 0.0 : 1.0, 1e-5);
            }
    free(q), free(k), free(v), free(dout), free(kv), free(qv);
    free(o1), free(o2), free(a1), free(a2), free(scratch);
    for (int i = 0; i < 3; i++)
        free(g1[i]), free(g2[i]);
}

static void t_attn_fast_vs_naive(void)
{
    const attn_cfg cases[] = {
        {3, 5, 5, 6, 2, 0, 0.0f, 0, 0, 0},
        {3, 5, 5, 6, 2, RLAB_ATTN_CAUSAL, 0.0f, 1, 1, 0},
        {3, 5, 5, 6, 2, 0, 0.0f, 1, 1, 0},
        {3, 4, 7, 6, 3, 0, 0.0f, 1, 0, 0},                /* cross-attention */
        {2, 7, 4, 6, 1, RLAB_ATTN_CAUSAL, 0.0f, 1, 1, 0}, /* Tq > Tk, causal */
        {3, 5, 5, 6, 2, RLAB_ATTN_CAUSAL, 0.3f, 1, 1, 0}, /* dropout */
        {1, 1, 1, 4, 4, 0, 0.0f, 0, 0, 0},                /* Dh = 1, single position */
        {5, 33, 29, 20, 2, RLAB_ATTN_CAUSAL, 0.1f, 1, 1, 0},
        /* left padding (seqrec's layout): the kernels skip the masked prefix */
        {6, 50, 50, 16, 1, RLAB_ATTN_CAUSAL, 0.2f, 1, 1, 1},
        {6, 40, 40, 16, 2, RLAB_ATTN_CAUSAL, 0.0f, 1, 0, 1},
        {4, 9, 12, 8, 2, 0, 0.2f, 1, 1, 1},
        {4, 12, 7, 8, 2, RLAB_ATTN_CAUSAL, 0.0f, 1, 1, 1}, /* Tq > Tk */
        /* the AVX-512 tiles: full 64-lane heads, partial lanes, partial 12 x 32 and 6-row
         * tiles, several tiles per pair; Dh = 72 takes the cblas path */
        {3, 70, 70, 64, 1, RLAB_ATTN_CAUSAL, 0.2f, 1, 1, 1},
        {2, 45, 45, 128, 2, 0, 0.0f, 1, 1, 0},
        {3, 37, 37, 80, 2, RLAB_ATTN_CAUSAL, 0.1f, 1, 0, 1},
        {2, 50, 41, 96, 3, RLAB_ATTN_CAUSAL, 0.0f, 1, 1, 0}, /* Tq > Tk, Dh = 32 */
        {2, 19, 33, 72, 1, 0, 0.3f, 1, 1, 1},
        /* long causal rows: P's masked triangle beyond the row blocks is not written */
        {2, 90, 90, 64, 1, RLAB_ATTN_CAUSAL, 0.2f, 0, 0, 0},
        {2, 90, 90, 64, 1, RLAB_ATTN_CAUSAL, 0.0f, 0, 1, 0},
        {2, 77, 90, 48, 2, RLAB_ATTN_CAUSAL, 0.1f, 1, 1, 1},
    };
    /* the same cases again without the 512-bit kernels (the cblas path), then with the
     * backward on the other path from the forward */
    for (int pass = 0; pass < 4; pass++) {
        const int old = rlab_k_set_avx512(pass % 2 == 0);
        g_attn_flip = pass >= 2;
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
            compare_attention(&cases[i], 100 + i);
        rlab_k_set_avx512(old);
    }
    g_attn_flip = 0;
}

/* Hand-computed: with q = 0 every valid key gets the same weight, so the output is the mean
 * of the valid values; causal turns it into a running mean. */
static void t_attn_hand(void)
{
    enum { T = 3, C = 2 };
    float q[T * C] = {0}, k[T * C] = {1, 2, 3, 4, 5, 6};
    float v[T * C] = {1, 10, 2, 20, 6, 60};
    float out[T * C], att[T * T];
    uint8_t kv[T] = {1, 0, 1};
    rlab_attention_forward_naive(out, att, q, k, v, 1, T, T, C, 1, kv, NULL, 0, 0.0f, 0);
    for (int i = 0; i < T; i++) {
        CHECK_NEAR(out[i * C + 0], 3.5, 1e-6); /* (1 + 6) / 2 */
        CHECK_NEAR(out[i * C + 1], 35.0, 1e-5);
    }
    float *scratch = calloc(rlab_attention_scratch_floats(T, T), sizeof *scratch);
    CHECK(scratch != NULL);
    rlab_attention_forward(out, att, scratch, q, k, v, 1, T, T, C, 1, NULL, NULL, RLAB_ATTN_CAUSAL,
                           0.0f, 0);
    CHECK_NEAR(out[0], 1.0, 1e-6);
    CHECK_NEAR(out[2], 1.5, 1e-6);
    CHECK_NEAR(out[4], 3.0, 1e-6);
    CHECK_NEAR(out[5], 30.0, 1e-5);
    /* one key dominates: q.k scaled by 1/sqrt(2) */
    float q2[C] = {10, 0}, k2[2 * C] = {1, 0, 0, 0}, v2[2 * C] = {1, 0, 0, 1}, o2[C], a2[2];
    rlab_attention_forward(o2, a2, scratch, q2, k2, v2, 1, 1, 2, C, 1, NULL, NULL, 0, 0.0f, 0);
    double e = exp(10.0 / sqrt(2.0));
    CHECK_NEAR(a2[0], e / (e + 1.0), 1e-6);
    CHECK_NEAR(o2[1], 1.0 / (e + 1.0), 1e-6);
    free(scratch);
}

/* Dropout masks: reproducible from the key, different for another key, keep rate ~ 1 - p. */
static void t_attn_dropout_mask(void)
{
    int kept = 0, same = 0, n = 100000;
    for (int i = 0; i < n; i++) {
        int a = rlab_attention_keep(7, (uint64_t)i, 0.25f);
        kept += a;
        same += a == rlab_attention_keep(7, (uint64_t)i, 0.25f);
        (void)0;
    }
    CHECK_EQ_INT(same, n);
    CHECK_MSG(fabs(kept / (double)n - 0.75) < 0.01, "keep rate %g", kept / (double)n);
    int diff = 0;
    for (int i = 0; i < 1000; i++)
        diff +=
            rlab_attention_keep(7, (uint64_t)i, 0.5f) != rlab_attention_keep(8, (uint64_t)i, 0.5f);
    CHECK(diff > 400 && diff < 600);
    CHECK_EQ_INT(rlab_attention_keep(7, 3, 0.0f), 1);
}

/* The op: shapes and errors, dropout only while training, same mask for the same step. */
static void t_attn_op(void)
{
    rlab_err err = {0};
    rlab_tape *t = rlab_tape_new(1 << 20, 64, &err);
    rlab_rng rng;
    rlab_rng_seed(&rng, 3);
    float *x = rand_buf(&rng, 2 * 4 * 6, 1.0f), *y = rand_buf(&rng, 2 * 3 * 6, 1.0f);
    rlab_tensor *a = rlab_t_input(t, x, 3, (int64_t[]){2, 4, 6});
    rlab_tensor *b = rlab_t_input(t, y, 3, (int64_t[]){2, 3, 6});
    rlab_tensor *o = rlab_t_attention(t, a, b, b, 2, NULL, NULL, 0, 0.0f);
    CHECK_EQ_INT(rlab_tape_error(t), RLAB_OK);
    CHECK(o->ndim == 3 && o->shape[0] == 2 && o->shape[1] == 4 && o->shape[2] == 6);
    rlab_t_attention(t, a, b, a, 2, NULL, NULL, 0, 0.0f); /* v length differs from k */
    CHECK_EQ_INT(rlab_tape_error(t), RLAB_EINVAL);
    CHECK_STR_CONTAINS(rlab_tape_errmsg(t), "attention");
    rlab_tape_reset(t);
    a = rlab_t_input(t, x, 3, (int64_t[]){2, 4, 6});
    rlab_t_attention(t, a, a, a, 4, NULL, NULL, 0, 0.0f);
    CHECK_STR_CONTAINS(rlab_tape_errmsg(t), "4 heads do not divide width 6");
    rlab_tape_reset(t);
    a = rlab_t_input(t, x, 3, (int64_t[]){2, 4, 6});
    rlab_t_attention(t, a, a, a, 2, NULL, NULL, 0, 1.0f);
    CHECK_STR_CONTAINS(rlab_tape_errmsg(t), "dropout");

    /* not training: dropout is the identity */
    float o_eval[48], o_tr1[48], o_tr2[48];
    rlab_tape_reset(t);
    rlab_tape_set_training(t, 0);
    a = rlab_t_input(t, x, 3, (int64_t[]){2, 4, 6});
    memcpy(o_eval, rlab_t_attention(t, a, a, a, 2, NULL, NULL, 0, 0.0f)->data, sizeof o_eval);
    o = rlab_t_attention(t, a, a, a, 2, NULL, NULL, 0, 0.5f);
    CHECK(max_abs_diff(o->data, o_eval, 48) <= 0.0f);
    rlab_tape_set_training(t, 1);
    rlab_tape_reset(t);
    rlab_tape_seed(t, 9, 5);
    a = rlab_t_input(t, x, 3, (int64_t[]){2, 4, 6});
    memcpy(o_tr1, rlab_t_attention(t, a, a, a, 2, NULL, NULL, 0, 0.5f)->data, sizeof o_tr1);
    CHECK(max_abs_diff(o_tr1, o_eval, 48) > 1e-3f);
    rlab_tape_reset(t);
    rlab_tape_seed(t, 9, 5);
    a = rlab_t_input(t, x, 3, (int64_t[]){2, 4, 6});
    memcpy(o_tr2, rlab_t_attention(t, a, a, a, 2, NULL, NULL, 0, 0.5f)->data, sizeof o_tr2);
    CHECK(max_abs_diff(o_tr1, o_tr2, 48) <= 0.0f);
    rlab_tape_reset(t); /* next step: another mask */
    a = rlab_t_input(t, x, 3, (int64_t[]){2, 4, 6});
    o = rlab_t_attention(t, a, a, a, 2, NULL, NULL, 0, 0.5f);
    CHECK(max_abs_diff(o->data, o_tr1, 48) > 1e-3f);
    rlab_tape_free(t);
    free(x), free(y);
}

/* The op keeps the forward's dropout keep bits for its backward (AVX-512DQ fast path): the
 * gradients must equal those of a backward that hashes the masks again (the cblas path,
 * rlab_k_set_avx512(0) between forward and backward), up to rounding. SASRec-like shapes. */
static void t_attn_op_keep_bits(void)
{
    enum { B = 3, T = 45, C = 64 };
    rlab_err err = {0};
    rlab_tape *t = rlab_tape_new(16 << 20, 64, &err);
    CHECK(t != NULL);
    rlab_rng rng;
    rlab_rng_seed(&rng, 8);
    float *x = rand_buf(&rng, B * T * C, 1.0f), *seed = rand_buf(&rng, B * T * C, 1.0f);
    uint8_t kv[B * T];
    for (int b = 0; b < B; b++)
        for (int i = 0; i < T; i++)
            kv[b * T + i] = i >= 7 * b; /* left padding */
    float *g[2];
    for (int pass = 0; pass < 2; pass++) {
        rlab_tape_reset(t);
        rlab_tape_set_training(t, 1);
        rlab_tape_seed(t, 9, 5);
        rlab_tensor *a = rlab_t_new(t, 3, (int64_t[]){B, T, C}, 1);
        memcpy(a->data, x, sizeof(float) * B * T * C);
        rlab_tensor *o = rlab_t_attention(t, a, a, a, 1, kv, kv, RLAB_ATTN_CAUSAL, 0.3f);
        CHECK_EQ_INT(rlab_tape_error(t), RLAB_OK);
        const int old = pass ? rlab_k_set_avx512(0) : rlab_k_avx512();
        CHECK_EQ_INT(rlab_tape_backward_from(t, o, seed), RLAB_OK);
        rlab_k_set_avx512(old);
        g[pass] = malloc(sizeof(float) * B * T * C);
        memcpy(g[pass], a->grad, sizeof(float) * B * T * C);
    }
    const float d = max_abs_diff(g[0], g[1], B * T * C);
    CHECK_MSG(d < 1e-4f, "attention op: gradient with the kept bits vs hashed again differ by %g",
              (double)d);
    float mx = 0.0f;
    for (int i = 0; i < B * T * C; i++)
        mx = fabsf(g[1][i]) > mx ? fabsf(g[1][i]) : mx;
    CHECK(mx > 1e-2f); /* a gradient flowed */
    free(g[0]), free(g[1]), free(x), free(seed);
    rlab_tape_free(t);
}

/* ---- attention gradient checks ------------------------------------------------------------- */
typedef struct {
    int H;
    unsigned flags;
    float dropout;
    const uint8_t *kv, *qv;
    int self; /* q = k = v = in[0] */
} attn_gc;

static rlab_tensor *build_attn(rlab_tape *t, rlab_tensor **in, void *ud)
{
    const attn_gc *g = ud;
    if (g->self)
        return rlab_t_attention(t, in[0], in[0], in[0], g->H, g->kv, g->qv, g->flags, g->dropout);
    return rlab_t_attention(t, in[0], in[1], in[2], g->H, g->kv, g->qv, g->flags, g->dropout);
}

static int gc_attn(const char *desc, int B, int Tq, int Tk, int C, attn_gc *g, int training)
{
    rlab_gc_case c = {
        .op = "attention", .desc = desc, .nin = 3, .training = training, .max_check = 48};
    c.in[0] = (rlab_param_spec){"q", 3, {B, Tq, C}, RLAB_INIT_NORMAL, 1.0f};
    c.in[1] = (rlab_param_spec){"k", 3, {B, Tk, C}, RLAB_INIT_NORMAL, 1.0f};
    c.in[2] = (rlab_param_spec){"v", 3, {B, Tk, C}, RLAB_INIT_NORMAL, 1.0f};
    if (g->self)
        c.nin = 1;
    return rlab_gradcheck(&c, build_attn, g);
}

static void t_gc_attn_plain(void)
{
    attn_gc g = {.H = 2};
    CHECK_EQ_INT(gc_attn("B=2 T=4 C=6 H=2", 2, 4, 4, 6, &g, 0), 0);
}

static void t_gc_attn_causal(void)
{
    attn_gc g = {.H = 3, .flags = RLAB_ATTN_CAUSAL};
    CHECK_EQ_INT(gc_attn("causal B=2 T=5 C=6 H=3", 2, 5, 5, 6, &g, 0), 0);
    g.H = 1;
    CHECK_EQ_INT(gc_attn("causal B=1 T=3 C=4 H=1", 1, 3, 3, 4, &g, 0), 0);
}

static void t_gc_attn_padding(void)
{
    /* batch 1 has only padding keys; queries 0 of batch 0 and 2 of batch 1 are padding */
    static const uint8_t kv[2 * 4] = {1, 0, 1, 1, 0, 0, 0, 0};
    static const uint8_t qv[2 * 4] = {0, 1, 1, 1, 1, 1, 0, 1};
    attn_gc g = {.H = 2, .kv = kv, .qv = qv};
    CHECK_EQ_INT(gc_attn("padding B=2 T=4 C=6 H=2", 2, 4, 4, 6, &g, 0), 0);
    g.flags = RLAB_ATTN_CAUSAL; /* query 1 of batch 0 sees only key 0 */
    CHECK_EQ_INT(gc_attn("padding+causal B=2 T=4 C=6 H=2", 2, 4, 4, 6, &g, 0), 0);
}

static void t_gc_attn_cross(void)
{
    static const uint8_t kv[2 * 5] = {1, 1, 0, 1, 0, 1, 1, 1, 1, 1};
    attn_gc g = {.H = 1, .kv = kv};
    CHECK_EQ_INT(gc_attn("cross Tq=3 Tk=5 C=4 H=1", 2, 3, 5, 4, &g, 0), 0);
    g.H = 3;
    CHECK_EQ_INT(gc_attn("cross Tq=3 Tk=5 C=6 H=3", 2, 3, 5, 6, &g, 0), 0);
}

static void t_gc_attn_dropout(void)
{
    attn_gc g = {.H = 2, .dropout = 0.3f, .flags = RLAB_ATTN_CAUSAL};
    CHECK_EQ_INT(gc_attn("dropout 0.3 B=2 T=5 C=6 H=2", 2, 5, 5, 6, &g, 1), 0);
}

static void t_gc_attn_self(void)
{
    attn_gc g = {.H = 2, .self = 1, .flags = RLAB_ATTN_CAUSAL};
    CHECK_EQ_INT(gc_attn("q=k=v B=2 T=4 C=6 H=2", 2, 4, 4, 6, &g, 0), 0);
}

/* ---- mixture of experts ------------------------------------------------------------------- */
/* Loop reference in double: route, renormalise the top-k gates, run the selected experts. */
static void moe_ref(double *out, int32_t *sel_out, const float *x, const float *wg, const float *w1,
                    const float *b1, const float *w2, const float *b2, int N, int C, int E, int F,
                    int K)
{
    double p[16], h[16];
    for (int n = 0; n < N; n++) {
        double mx = -1e300, sum = 0.0;
        for (int e = 0; e < E; e++) {
            p[e] = 0.0;
            for (int c = 0; c < C; c++)
                p[e] += (double)x[n * C + c] * (double)wg[c * E + e];
            mx = fmax(mx, p[e]);
        }
        for (int e = 0; e < E; e++)
            sum += (p[e] = exp(p[e] - mx));
        for (int e = 0; e < E; e++)
            p[e] /= sum;
        int taken[16] = {0}, sel[16];
        double S = 0.0;
        for (int s = 0; s < K; s++) {
            int best = -1;
            for (int e = 0; e < E; e++)
                if (!taken[e] && (best < 0 || p[e] > p[best]))
                    best = e;
            taken[best] = 1;
            sel[s] = best;
            S += p[best];
            if (sel_out)
                sel_out[n * K + s] = best;
        }
        for (int c = 0; c < C; c++)
            out[n * C + c] = 0.0;
        for (int s = 0; s < K; s++) {
            int e = sel[s];
            for (int f = 0; f < F; f++) {
                h[f] = b1[e * F + f];
                for (int c = 0; c < C; c++)
                    h[f] += (double)x[n * C + c] * (double)w1[(e * C + c) * F + f];
                h[f] = h[f] > 0.0 ? h[f] : 0.0;
            }
            for (int c = 0; c < C; c++) {
                double y = b2[e * C + c];
                for (int f = 0; f < F; f++)
                    y += h[f] * (double)w2[(e * F + f) * C + c];
                out[n * C + c] += p[e] / S * y;
            }
        }
    }
}

typedef struct {
    rlab_tensor *x, *wg, *w1, *b1, *w2, *b2;
} moe_params;

static rlab_params *moe_make(int N, int C, int E, int F, uint64_t seed, moe_params *m)
{
    rlab_param_spec specs[] = {
        {"x", 2, {N, C}, RLAB_INIT_NORMAL, 1.0f},     {"wg", 2, {C, E}, RLAB_INIT_NORMAL, 1.0f},
        {"w1", 3, {E, C, F}, RLAB_INIT_NORMAL, 0.7f}, {"b1", 2, {E, F}, RLAB_INIT_NORMAL, 0.3f},
        {"w2", 3, {E, F, C}, RLAB_INIT_NORMAL, 0.7f}, {"b2", 2, {E, C}, RLAB_INIT_NORMAL, 0.3f},
    };
    rlab_rng rng;
    rlab_rng_seed(&rng, seed);
    rlab_err err = {0};
    rlab_params *P = rlab_params_new(specs, 6, &rng, &err);
    m->x = &P->t[0], m->wg = &P->t[1], m->w1 = &P->t[2];
    m->b1 = &P->t[3], m->w2 = &P->t[4], m->b2 = &P->t[5];
    return P;
}

static void t_moe_vs_ref(void)
{
    const int shapes[][5] = {
        {7, 5, 4, 3, 2}, {7, 5, 4, 3, 1}, {6, 3, 3, 4, 3}, {1, 2, 5, 1, 2}, {40, 8, 6, 16, 2}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const int N = shapes[i][0], C = shapes[i][1], E = shapes[i][2], F = shapes[i][3],
                  K = shapes[i][4];
        moe_params m;
        rlab_params *P = moe_make(N, C, E, F, 20 + i, &m);
        rlab_err err = {0};
        rlab_tape *t = rlab_tape_new(1 << 20, 64, &err);
        rlab_tensor *aux = NULL;
        rlab_tensor *o = rlab_t_moe(t, m.x, m.wg, m.w1, m.b1, m.w2, m.b2, K, &aux);
        CHECK_EQ_INT(rlab_tape_error(t), RLAB_OK);
        double *ref = calloc((size_t)N * C, sizeof *ref);
        moe_ref(ref, NULL, m.x->data, m.wg->data, m.w1->data, m.b1->data, m.w2->data, m.b2->data, N,
                C, E, F, K);
        double worst = 0;
        for (int j = 0; j < N * C; j++)
            worst = fmax(worst, fabs((double)o->data[j] - ref[j]));
        CHECK_MSG(worst < 1e-5, "moe shape %zu: differs from reference by %g", i, worst);
        CHECK(aux->n == 1 && aux->grad != NULL);
        free(ref);
        rlab_tape_free(t);
        rlab_params_free(P);
    }
}

/* A router of zeros ties every expert: top-k must take experts 0..k-1 with gates 1/k, and the
 * aux loss is E * sum_{e<k} (1/k)(1/E) = 1. */
static void t_moe_ties(void)
{
    const int N = 5, C = 3, E = 4, F = 2, K = 2;
    moe_params m;
    rlab_params *P = moe_make(N, C, E, F, 5, &m);
    memset(m.wg->data, 0, (size_t)m.wg->n * sizeof(float));
    rlab_err err = {0};
    rlab_tape *t = rlab_tape_new(1 << 20, 64, &err);
    rlab_tensor *aux = NULL;
    rlab_tensor *o = rlab_t_moe(t, m.x, m.wg, m.w1, m.b1, m.w2, m.b2, K, &aux);
    /* expected: the mean of experts 0 and 1, computed with k = 1 routers forced by hand */
    double *ref = calloc((size_t)N * C, sizeof *ref);
    int32_t *sel = calloc((size_t)N * K, sizeof *sel);
    moe_ref(ref, sel, m.x->data, m.wg->data, m.w1->data, m.b1->data, m.w2->data, m.b2->data, N, C,
            E, F, K);
    for (int n = 0; n < N; n++)
        CHECK(sel[n * K] == 0 && sel[n * K + 1] == 1);
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) {
            double y[2];
            for (int e = 0; e < 2; e++) {
                y[e] = m.b2->data[e * C + c];
                for (int f = 0; f < F; f++) {
                    double h = m.b1->data[e * F + f];
                    for (int cc = 0; cc < C; cc++)
                        h += (double)m.x->data[n * C + cc] *
                             (double)m.w1->data[(e * C + cc) * F + f];
                    y[e] += fmax(h, 0.0) * (double)m.w2->data[(e * F + f) * C + c];
                }
            }
            CHECK_NEAR(o->data[n * C + c], 0.5 * (y[0] + y[1]), 1e-5);
        }
    CHECK_NEAR(aux->data[0], 1.0, 1e-6);
    free(ref);
    free(sel);
    rlab_tape_free(t);
    rlab_params_free(P);
}

/* A router that sends everything to expert 0 with probability p0 has aux = E * 1 * p0 (k = 1),
 * larger than a uniform router's 1. */
static void t_moe_aux_balance(void)
{
    const int N = 8, C = 2, E = 4, F = 3;
    moe_params m;
    rlab_params *P = moe_make(N, C, E, F, 6, &m);
    for (int i = 0; i < N * C; i++)
        m.x->data[i] = 1.0f;
    memset(m.wg->data, 0, (size_t)m.wg->n * sizeof(float));
    rlab_err err = {0};
    rlab_tape *t = rlab_tape_new(1 << 20, 64, &err);
    rlab_tensor *aux = NULL;
    rlab_t_moe(t, m.x, m.wg, m.w1, m.b1, m.w2, m.b2, 1, &aux);
    double uniform = aux->data[0];
    CHECK_NEAR(uniform, 1.0, 1e-6);
    m.wg->data[0 * E + 0] = m.wg->data[1 * E + 0] = 1.5f; /* logit of expert 0: 3, others 0 */
    rlab_tape_reset(t);
    rlab_t_moe(t, m.x, m.wg, m.w1, m.b1, m.w2, m.b2, 1, &aux);
    double p0 = exp(3.0) / (exp(3.0) + 3.0);
    CHECK_NEAR(aux->data[0], E * p0, 1e-5);
    CHECK((double)aux->data[0] > uniform + 1.0);
    /* a balanced router: token n prefers expert n % E strongly -> f_e = 1/E, P_e = 1/E */
    float *xb = m.x->data;
    for (int n = 0; n < N; n++)
        xb[n * C] = (float)(n % E), xb[n * C + 1] = 1.0f;
    rlab_tape_reset(t);
    rlab_t_moe(t, m.x, m.wg, m.w1, m.b1, m.w2, m.b2, 1, &aux);
    CHECK_EQ_INT(rlab_tape_error(t), RLAB_OK);
    CHECK((double)aux->data[0] < E * p0);
    /* errors */
    rlab_tape_reset(t);
    rlab_t_moe(t, m.x, m.wg, m.w1, m.b1, m.w2, m.b2, E + 1, &aux);
    CHECK_STR_CONTAINS(rlab_tape_errmsg(t), "top_k 5 outside [1, 4]");
    CHECK(aux->flags & RLAB_T_POISON);
    rlab_tape_reset(t);
    rlab_t_moe(t, m.x, m.w1, m.w1, m.b1, m.w2, m.b2, 1, NULL);
    CHECK_STR_CONTAINS(rlab_tape_errmsg(t), "moe: need");
    rlab_tape_free(t);
    rlab_params_free(P);
}

/* ---- moe gradient checks ---- */
typedef struct {
    int K, which; /* which: 0 = output, 1 = aux loss, 2 = output + 0.7 * aux */
    int C, E;
    float min_gap; /* filled by the init hook: smallest logit gap at the top-k boundary */
} moe_gc;

/* out + s * aux (aux a scalar), a test-local op so the fused ops are tested on their own. */
static void add_scaled_scalar_backward(rlab_tape *t, rlab_tensor *out)
{
    (void)t;
    rlab_tensor *a = out->src[0], *b = out->src[1];
    for (int64_t i = 0; i < out->n; i++) {
        if (a->grad)
            a->grad[i] += out->grad[i];
        if (b->grad)
            b->grad[0] += out->p.f[0] * out->grad[i];
    }
}

static rlab_tensor *add_scaled_scalar(rlab_tape *t, rlab_tensor *a, rlab_tensor *b, float s)
{
    rlab_tensor *src[2] = {a, b};
    rlab_tensor *o =
        rlab_tape_op(t, "test_add_scalar", a->ndim, a->shape, src, 2, add_scaled_scalar_backward);
    if (o->flags & RLAB_T_POISON)
        return o;
    o->p.f[0] = s;
    for (int64_t i = 0; i < o->n; i++)
        o->data[i] = a->data[i] + s * b->data[0];
    return o;
}

static rlab_tensor *build_moe(rlab_tape *t, rlab_tensor **in, void *ud)
{
    const moe_gc *g = ud;
    rlab_tensor *aux = NULL;
    rlab_tensor *o = rlab_t_moe(t, in[0], in[1], in[2], in[3], in[4], in[5], g->K, &aux);
    if (g->which == 1)
        return aux;
    if (g->which == 2)
        return add_scaled_scalar(t, o, aux, 0.7f);
    return o;
}

/* Records how far the routing is from a tie (finite differences must not flip it). */
static void moe_gap_hook(rlab_tensor **in, int nin, void *ud)
{
    (void)nin;
    moe_gc *g = ud;
    const int N = (int)in[0]->shape[0], C = g->C, E = g->E;
    g->min_gap = 1e30f;
    for (int n = 0; n < N; n++) {
        float l[16];
        for (int e = 0; e < E; e++) {
            l[e] = 0.0f;
            for (int c = 0; c < C; c++)
                l[e] += in[0]->data[n * C + c] * in[1]->data[c * E + e];
        }
        /* gap between the k-th and (k+1)-th largest logits */
        for (int i = 0; i < E; i++)
            for (int j = i + 1; j < E; j++)
                if (l[j] > l[i]) {
                    float tmp = l[i];
                    l[i] = l[j];
                    l[j] = tmp;
                }
        if (g->K < E && l[g->K - 1] - l[g->K] < g->min_gap)
            g->min_gap = l[g->K - 1] - l[g->K];
    }
}

static int gc_moe(const char *desc, int N, int C, int E, int F, moe_gc *g, uint64_t seed)
{
    g->C = C, g->E = E;
    rlab_gc_case c = {.op = "moe",
                      .desc = desc,
                      .nin = 6,
                      .h = 2e-3f,
                      .seed = seed,
                      .init = moe_gap_hook,
                      .atol = 2e-3f};
    c.in[0] = (rlab_param_spec){"x", 2, {N, C}, RLAB_INIT_NORMAL, 1.0f};
    c.in[1] = (rlab_param_spec){"w_gate", 2, {C, E}, RLAB_INIT_NORMAL, 1.0f};
    c.in[2] = (rlab_param_spec){"w1", 3, {E, C, F}, RLAB_INIT_NORMAL, 0.7f};
    c.in[3] = (rlab_param_spec){"b1", 2, {E, F}, RLAB_INIT_NORMAL, 0.3f};
    c.in[4] = (rlab_param_spec){"w2", 3, {E, F, C}, RLAB_INIT_NORMAL, 0.7f};
    c.in[5] = (rlab_param_spec){"b2", 2, {E, C}, RLAB_INIT_NORMAL, 0.3f};
    int r = rlab_gradcheck(&c, build_moe, g);
    CHECK_MSG(g->min_gap > 0.05f, "moe %s: routing too close to a tie (gap %g); pick a seed", desc,
              (double)g->min_gap);
    return r;
}

static void t_gc_moe_out(void)
{
    moe_gc g = {.K = 2};
    CHECK_EQ_INT(gc_moe("N=6 C=5 E=4 F=3 k=2", 6, 5, 4, 3, &g, 3), 0);
}

static void t_gc_moe_aux(void)
{
    /* N k = 14 rows over 4 experts cannot be balanced: with equal f_e the aux gradient would
     * vanish identically (softmax of a constant shift) and the check would test nothing */
    moe_gc g = {.K = 2, .which = 1};
    CHECK_EQ_INT(gc_moe("aux N=7 C=5 E=4 F=3 k=2", 7, 5, 4, 3, &g, 4), 0);
    g.which = 2;
    CHECK_EQ_INT(gc_moe("out+aux N=7 C=5 E=4 F=3 k=2", 7, 5, 4, 3, &g, 4), 0);
}

static void t_gc_moe_k(void)
{
    moe_gc g = {.K = 1};
    CHECK_EQ_INT(gc_moe("N=5 C=4 E=3 F=2 k=1", 5, 4, 3, 2, &g, 11), 0);
    g.K = 3; /* k = E: the gates are the router probabilities */
    CHECK_EQ_INT(gc_moe("N=5 C=4 E=3 F=2 k=E", 5, 4, 3, 2, &g, 12), 0);
}

/* ---- residual vector quantisation ---------------------------------------------------------- */
static rlab_params *rvq_make(int N, int C, int Lv, int K, uint64_t seed)
{
    rlab_param_spec specs[] = {
        {"x", 2, {N, C}, RLAB_INIT_NORMAL, 1.0f},
        {"codebooks", 3, {Lv, K, C}, RLAB_INIT_NORMAL, 0.8f},
    };
    rlab_rng rng;
    rlab_rng_seed(&rng, seed);
    rlab_err err = {0};
    return rlab_params_new(specs, 2, &rng, &err);
}

/* Codes equal the brute-force nearest codes level by level; x_q is the sum of the codes. */
static void t_rvq_codes(void)
{
    const int N = 50, C = 7, Lv = 3, K = 13;
    rlab_params *P = rvq_make(N, C, Lv, K, 31);
    rlab_tensor *x = &P->t[0], *cb = &P->t[1];
    rlab_err err = {0};
    rlab_tape *t = rlab_tape_new(1 << 20, 64, &err);
    int32_t *codes = calloc((size_t)N * Lv, sizeof *codes), *bf = calloc((size_t)N, sizeof *bf);
    rlab_tensor *loss = NULL;
    rlab_tensor *xq = rlab_t_rvq(t, x, cb, 0.25f, codes, &loss);
    CHECK_EQ_INT(rlab_tape_error(t), RLAB_OK);
    float *r = malloc((size_t)N * C * sizeof *r);
    memcpy(r, x->data, (size_t)N * C * sizeof *r);
    double commit = 0.0;
    for (int l = 0; l < Lv; l++) {
        const float *cbl = cb->data + (size_t)l * K * C;
        rlab_rvq_nearest_naive(bf, r, cbl, N, K, C);
        for (int n = 0; n < N; n++) {
            CHECK_EQ_INT(codes[n * Lv + l], bf[n]);
            for (int c = 0; c < C; c++) {
                double d = (double)r[n * C + c] - (double)cbl[bf[n] * C + c];
                commit += d * d;
                r[n * C + c] -= cbl[bf[n] * C + c];
            }
        }
    }
    for (int i = 0; i < N * C; i++) /* x_q = x - final residual */
        CHECK_NEAR(xq->data[i], x->data[i] - r[i], 1e-5);
    CHECK_NEAR(loss->data[0], 1.25 * commit / N, 1e-4);
    free(codes), free(bf), free(r);
    rlab_tape_free(t);
    rlab_params_free(P);
}

/* Hand-computed: x = (1, 0); level 0 codes {(0,0), (2,1)} -> code 0 (distance 1 vs 2), level 1
 * codes {(3,3), (0.5,0)} -> code 1 (0.25 vs 13). x_q = (0.5, 0); loss = 1.25 * (1 + 0.25).
 * Duplicate codes tie: the lower index wins. */
static void t_rvq_hand(void)
{
    float x[2] = {1, 0}, cb[2 * 2 * 2] = {0, 0, 2, 1, 3, 3, 0.5f, 0};
    rlab_err err = {0};
    rlab_tape *t = rlab_tape_new(1 << 16, 16, &err);
    rlab_tensor *xt = rlab_t_input(t, x, 2, (int64_t[]){1, 2});
    rlab_tensor *ct = rlab_t_input(t, cb, 3, (int64_t[]){2, 2, 2});
    int32_t codes[2];
    rlab_tensor *loss;
    rlab_tensor *xq = rlab_t_rvq(t, xt, ct, 0.25f, codes, &loss);
    CHECK(codes[0] == 0 && codes[1] == 1);
    CHECK_NEAR(xq->data[0], 0.5, 1e-7);
    CHECK_NEAR(xq->data[1], 0.0, 1e-7);
    CHECK_NEAR(loss->data[0], 1.25 * 1.25, 1e-6);
    float dup[3 * 2] = {5, 5, 1, 1, 1, 1}; /* codes 1 and 2 are equal */
    rlab_tensor *dt = rlab_t_input(t, dup, 3, (int64_t[]){1, 3, 2});
    rlab_t_rvq(t, xt, dt, 0.25f, codes, NULL);
    CHECK_EQ_INT(codes[0], 1);
    rlab_t_rvq(t, xt, xt, 0.25f, codes, NULL); /* codebooks not 3-D */
    CHECK_STR_CONTAINS(rlab_tape_errmsg(t), "rvq: need x [N, C] and codebooks [Lv, K, C]");
    rlab_tape_free(t);
}

/* A residual level reduces the reconstruction error: level 1 holds the zero code (so no row
 * gets worse) and the level-0 residuals of rows 0..3 (so those rows become exact). */
static void t_rvq_residual_helps(void)
{
    const int N = 30, C = 5, K = 8;
    rlab_params *P = rvq_make(N, C, 2, K, 41);
    rlab_tensor *x = &P->t[0], *cb = &P->t[1];
    rlab_err err = {0};
    rlab_tape *t = rlab_tape_new(1 << 20, 64, &err);
    int32_t codes[2 * 30];
    /* one level only: the level-0 codebook alone */
    rlab_tensor *cb0 = rlab_t_input(t, cb->data, 3, (int64_t[]){1, K, C});
    rlab_tensor *xq1 = rlab_t_rvq(t, x, cb0, 0.25f, codes, NULL);
    float *cb1 = cb->data + K * C;
    memset(cb1, 0, (size_t)K * C * sizeof *cb1);
    for (int n = 0; n < 4; n++)
        for (int c = 0; c < C; c++)
            cb1[(n + 1) * C + c] = x->data[n * C + c] - xq1->data[n * C + c];
    rlab_tensor *xq2 = rlab_t_rvq(t, x, cb, 0.25f, codes, NULL);
    CHECK_EQ_INT(rlab_tape_error(t), RLAB_OK);
    double e1 = 0, e2 = 0;
    for (int n = 0; n < N; n++) {
        double r1 = 0, r2 = 0;
        for (int c = 0; c < C; c++) {
            double d1 = (double)x->data[n * C + c] - (double)xq1->data[n * C + c];
            double d2 = (double)x->data[n * C + c] - (double)xq2->data[n * C + c];
            r1 += d1 * d1, r2 += d2 * d2;
        }
        CHECK_MSG(r2 <= r1 + 1e-6, "row %d: error %g after the residual level vs %g before", n, r2,
                  r1);
        if (n < 4)
            CHECK_NEAR(r2, 0.0, 1e-10);
        e1 += r1, e2 += r2;
    }
    CHECK_MSG(e2 < 0.9 * e1, "reconstruction error %g with two levels vs %g with one", e2, e1);
    rlab_tape_free(t);
    rlab_params_free(P);
}

/* Straight-through: the Jacobian of x_q with respect to x is the identity (checked column by
 * column with one-hot seeds), and no gradient reaches the codebooks from x_q. A finite
 * difference cannot check this (x_q is piecewise constant), hence the dedicated check. */
static void t_rvq_straight_through(void)
{
    const int N = 4, C = 3, Lv = 2, K = 5;
    rlab_params *P = rvq_make(N, C, Lv, K, 51);
    rlab_err err = {0};
    rlab_tape *t = rlab_tape_new(1 << 20, 64, &err);
    float seed[12];
    int bad = 0;
    for (int i = 0; i < N * C; i++) {
        rlab_tape_reset(t);
        rlab_params_zero_grad(P);
        rlab_tensor *xq = rlab_t_rvq(t, &P->t[0], &P->t[1], 0.25f, NULL, NULL);
        memset(seed, 0, sizeof seed);
        seed[i] = 1.0f;
        CHECK_EQ_INT(rlab_tape_backward_from(t, xq, seed), RLAB_OK);
        for (int j = 0; j < N * C; j++)
            bad += fabsf(P->t[0].grad[j] - (i == j ? 1.0f : 0.0f)) > 0.0f;
        for (int j = 0; j < Lv * K * C; j++)
            bad += fabsf(P->t[1].grad[j]) > 0.0f;
    }
    CHECK_EQ_INT(bad, 0);
    rlab_tape_free(t);
    rlab_params_free(P);
}

/* ---- rvq gradient checks ----
 * Finite differences cannot see stop-gradients: the loss VALUE is (1 + beta) S with
 * S = 1/N sum ||q_l - r_l||^2, while by definition dL/dx = beta dS/dx (codes fixed, d r_l/dx = I)
 * and dL/dcb = dS/dcb with the residuals held fixed (true of the full derivative for Lv = 1).
 * The builder therefore returns the loss through a test op whose forward multiplies the value
 * by beta / (1 + beta) (x checks) or 1 / (1 + beta) (codebook checks) and whose backward
 * passes the gradient through unscaled: the finite difference of that value is exactly the
 * gradient the op must produce. */
typedef struct {
    float beta;
    int wrt_cb;    /* 0: check x (codebooks skipped); 1: check the codebooks (x skipped) */
    float min_gap; /* init hook: smallest distance gap between the best and second code */
} rvq_gc;

static void value_scale_backward(rlab_tape *t, rlab_tensor *out)
{
    (void)t;
    if (out->src[0]->grad)
        out->src[0]->grad[0] += out->grad[0];
}

static rlab_tensor *value_scale(rlab_tape *t, rlab_tensor *a, float s)
{
    rlab_tensor *o =
        rlab_tape_op(t, "test_value_scale", 1, (int64_t[]){1}, &a, 1, value_scale_backward);
    if (!(o->flags & RLAB_T_POISON))
        o->data[0] = s * a->data[0];
    return o;
}

static rlab_tensor *build_rvq(rlab_tape *t, rlab_tensor **in, void *ud)
{
    const rvq_gc *g = ud;
    rlab_tensor *loss = NULL;
    rlab_t_rvq(t, in[0], in[1], g->beta, NULL, &loss);
    return value_scale(t, loss, g->wrt_cb ? 1.0f / (1.0f + g->beta) : g->beta / (1.0f + g->beta));
}

static void rvq_gap_hook(rlab_tensor **in, int nin, void *ud)
{
    (void)nin;
    rvq_gc *g = ud;
    const int N = (int)in[0]->shape[0], C = (int)in[0]->shape[1];
    const int Lv = (int)in[1]->shape[0], K = (int)in[1]->shape[1];
    double r[64];
    g->min_gap = 1e30f;
    for (int n = 0; n < N; n++) {
        for (int c = 0; c < C; c++)
            r[c] = in[0]->data[n * C + c];
        for (int l = 0; l < Lv; l++) {
            const float *cb = in[1]->data + (size_t)l * K * C;
            double d1 = 1e300, d2 = 1e300;
            int arg = 0;
            for (int k = 0; k < K; k++) {
                double d = 0;
                for (int c = 0; c < C; c++)
                    d += (r[c] - (double)cb[k * C + c]) * (r[c] - (double)cb[k * C + c]);
                if (d < d1)
                    d2 = d1, d1 = d, arg = k;
                else if (d < d2)
                    d2 = d;
            }
            if (d2 - d1 < (double)g->min_gap)
                g->min_gap = (float)(d2 - d1);
            for (int c = 0; c < C; c++)
                r[c] -= (double)cb[arg * C + c];
        }
    }
}

static int gc_rvq(const char *desc, int N, int C, int Lv, int K, rvq_gc *g, uint64_t seed)
{
    rlab_gc_case c = {
        .op = "rvq", .desc = desc, .nin = 2, .seed = seed, .init = rvq_gap_hook, .h = 2e-3f};
    c.in[0] = (rlab_param_spec){"x", 2, {N, C}, RLAB_INIT_NORMAL, 1.0f};
    c.in[1] = (rlab_param_spec){"codebooks", 3, {Lv, K, C}, RLAB_INIT_NORMAL, 0.8f};
    c.skip[g->wrt_cb ? 0 : 1] = 1;
    int r = rlab_gradcheck(&c, build_rvq, g);
    CHECK_MSG(g->min_gap > 0.05f, "rvq %s: a code choice is near a tie (gap %g); pick a seed", desc,
              (double)g->min_gap);
    return r;
}

static void t_gc_rvq_commit(void)
{
    rvq_gc g = {.beta = 0.25f};
    CHECK_EQ_INT(gc_rvq("d/dx N=6 C=3 Lv=2 K=4", 6, 3, 2, 4, &g, 5), 0);
    g.beta = 1.5f;
    CHECK_EQ_INT(gc_rvq("d/dx beta=1.5 N=5 C=4 Lv=3 K=3", 5, 4, 3, 3, &g, 6), 0);
    g.wrt_cb = 1;
    CHECK_EQ_INT(gc_rvq("d/dcb beta=1.5 N=9 C=3 Lv=1 K=4", 9, 3, 1, 4, &g, 9), 0);
    g.beta = 0.25f;
    CHECK_EQ_INT(gc_rvq("d/dcb N=7 C=5 Lv=1 K=3", 7, 5, 1, 3, &g, 8), 0);
}

static const rlab_test tests[] = {
    {"nn.attention.1", t_attn_fast_vs_naive},
    {"nn.attention.2", t_attn_hand},
    {"nn.attention.3", t_attn_dropout_mask},
    {"nn.attention.5", t_attn_op_keep_bits},
    {"nn.attention.4", t_attn_op},
    {"grad.attention.1", t_gc_attn_plain},
    {"grad.attention.2", t_gc_attn_causal},
    {"grad.attention.3", t_gc_attn_padding},
    {"grad.attention.4", t_gc_attn_cross},
    {"grad.attention.5", t_gc_attn_dropout},
    {"grad.attention.6", t_gc_attn_self},
    {"nn.moe.1", t_moe_vs_ref},
    {"nn.moe.2", t_moe_ties},
    {"nn.moe.3", t_moe_aux_balance},
    {"grad.moe.1", t_gc_moe_out},
    {"grad.moe.2", t_gc_moe_aux},
    {"grad.moe.3", t_gc_moe_k},
    {"nn.rvq.1", t_rvq_codes},
    {"nn.rvq.2", t_rvq_hand},
    {"nn.rvq.3", t_rvq_residual_helps},
    {"grad.rvq.1", t_gc_rvq_commit},
    {"grad.rvq.2", t_rvq_straight_through},
    {NULL, NULL},
};

int main(int argc, char **argv) { return rlab_test_main(argc, argv, tests); }
