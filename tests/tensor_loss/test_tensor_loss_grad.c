/*
 * Test organization: finite-difference gradient checks of every loss in core/tensor/loss.h,
 * one id family per op so that ctest runs them as gradcheck.<op>:
 *   grad.softmax_xent.*    chunked full softmax (padding rows, chunk not dividing N, batch 1,
 *                          all-padding, bias / no bias)
 *   grad.sampled_softmax.* with logQ, excluded negatives, repeated items, n_neg = 0
 *   grad.bce_logits.*      weights / no weights, 2-D logits, large logits
 *   grad.bpr.*, grad.margin_rank.*, grad.dpo.*   pairwise losses (DPO with and without ref)
 *   grad.infonce.*         normalize x symmetric, batch 1
 *                          (each in keep mode and in chunk + recompute mode)
 *   grad.kl_div.*, grad.soft_xent.*   temperatures, one-column rows, unnormalised targets
 *   grad.soft_xent_items.* sparse targets (empty rows, base 0, repeated columns), both modes,
 *                          student rows gathered from the item table itself (TED)
 *   grad.softmax_xent.5, grad.soft_xent_items.3   the fused mode (64+ rows, two item blocks)
 * Inputs are seeded parameters (gradcheck.h); integer ids and label arrays come through ud.
 */
#include "gradcheck.h"
#include "harness.h"
#include "tensor/loss.h"
#include "tensor/ops.h"

#include <string.h>

#define SPEC(nm, r, c, sc)                                                                         \
    {                                                                                              \
        nm, 2, {r, c}, RLAB_INIT_NORMAL, sc                                                        \
    }
#define SPEC1(nm, n, sc)                                                                           \
    {                                                                                              \
        nm, 1, {n}, RLAB_INIT_NORMAL, sc                                                           \
    }

/* ---- softmax_xent ------------------------------------------------------------------------ */
typedef struct xent_ud {
    const int32_t *targets;
    int64_t chunk;
    int bias;
    int keep; /* keep mode allowed (rlab_t_loss_set_keep) */
} xent_ud;

static rlab_tensor *build_xent(rlab_tape *t, rlab_tensor **in, void *ud)
{
    const xent_ud *u = ud;
    int old = rlab_t_loss_set_keep(u->keep);
    rlab_tensor *L =
        rlab_t_softmax_xent(t, in[0], in[1], u->bias ? in[2] : NULL, u->targets, u->chunk);
    rlab_t_loss_set_keep(old);
    return L;
}

static int xent_case(const char *desc, int64_t N, int64_t V, int64_t C, const int32_t *targets,
                     int64_t chunk, int bias)
{
    int fails = 0;
    for (int keep = 1; keep >= 0; keep--) { /* [nv, V] kept, then chunk + recompute */
        xent_ud u = {targets, chunk, bias, keep};
        rlab_gc_case c = {
            .op = "softmax_xent",
            .desc = desc,
            .nin = bias ? 3 : 2,
            .in = {SPEC("h", N, C, 1.0f), SPEC("items", V, C, 1.0f), SPEC1("bias", V, 0.5f)},
            .max_check = 48};
        fails += rlab_gradcheck(&c, build_xent, &u);
    }
    return fails;
}

static void t_xent_padding_chunk3(void)
{
    const int32_t tg[7] = {3, -1, 0, 10, -1, 5, 5}; /* N=7, chunk 3 does not divide 5 valid */
    CHECK(xent_case("N7 V11 C5 chunk3 bias", 7, 11, 5, tg, 3, 1) == 0);
    CHECK(xent_case("N7 V11 C5 chunk3", 7, 11, 5, tg, 3, 0) == 0);
}

static void t_xent_batch1(void)
{
    const int32_t tg[1] = {2};
    CHECK(xent_case("N1 V4 C3 default chunk", 1, 4, 3, tg, 0, 1) == 0);
}

static void t_xent_all_padding(void)
{
    const int32_t tg[4] = {-1, -1, -1, -1};
    CHECK(xent_case("N4 all padding", 4, 6, 3, tg, 2, 1) == 0);
}

static void t_xent_chunk1_tail(void)
{
    /* V = 19 exercises the vector tail (19 = 2*8 + 3); chunk 1 = one sgemm per row */
    const int32_t tg[6] = {18, 0, 7, -1, 8, 16};
    CHECK(xent_case("N6 V19 C4 chunk1", 6, 19, 4, tg, 1, 1) == 0);
    CHECK(xent_case("N6 V19 C4 chunk4", 6, 19, 4, tg, 4, 1) == 0);
}

/* ---- sampled softmax --------------------------------------------------------------------- */
typedef struct sampled_ud {
    const int32_t *targets, *negs;
    int n_neg;
    const float *logq;
} sampled_ud;

static rlab_tensor *build_sampled(rlab_tape *t, rlab_tensor **in, void *ud)
{
    const sampled_ud *u = ud;
    return rlab_t_sampled_softmax(t, in[0], in[1], u->targets, u->negs, u->n_neg, u->logq);
}

static void t_sampled_logq(void)
{
    const int32_t tg[5] = {1, 4, -1, 8, 0};
    const int32_t ng[15] = {2, 3, 5, 0, 6, 7, 1, 2, 3, 4, 4, -1, 8, 2, 2}; /* repeats, -1 */
    const float logq[9] = {-1.0f, -2.0f, -0.5f, -3.0f, -1.5f, -2.5f, -0.2f, -1.1f, -0.7f};
    sampled_ud u = {tg, ng, 3, logq};
    rlab_gc_case c = {.op = "sampled_softmax",
                      .desc = "N5 C4 V9 n_neg3 logq",
                      .nin = 2,
                      .in = {SPEC("h", 5, 4, 1.0f), SPEC("items", 9, 4, 1.0f)}};
    CHECK(rlab_gradcheck(&c, build_sampled, &u) == 0);
    u.logq = NULL;
    c.desc = "N5 C4 V9 n_neg3";
    CHECK(rlab_gradcheck(&c, build_sampled, &u) == 0);
}

static void t_sampled_no_negs(void)
{
    /* only the target: loss log(1) = 0 and zero gradients; a 3-D h [1, 2, 3] */
    const int32_t tg[2] = {1, 0};
    sampled_ud u = {tg, NULL, 0, NULL};
    rlab_gc_case c = {
        .op = "sampled_softmax",
        .desc = "h[1,2,3] n_neg0",
        .nin = 2,
        .in = {{"h", 3, {1, 2, 3}, RLAB_INIT_NORMAL, 1.0f}, SPEC("items", 2, 3, 1.0f)}};
    CHECK(rlab_gradcheck(&c, build_sampled, &u) == 0);
}

/* ---- BCE --------------------------------------------------------------------------------- */
typedef struct bce_ud {
    const float *labels, *weight;
} bce_ud;

static rlab_tensor *build_bce(rlab_tape *t, rlab_tensor **in, void *ud)
{
    const bce_ud *u = ud;
    return rlab_t_bce_logits(t, in[0], u->labels, u->weight);
}

static void t_bce(void)
{
    const float y[6] = {1.0f, 0.0f, 0.3f, 1.0f, 0.0f, 0.9f};
    const float w[6] = {1.0f, 2.0f, 0.5f, 0.0f, 1.5f, 3.0f};
    bce_ud u = {y, w};
    rlab_gc_case c = {
        .op = "bce_logits", .desc = "[2,3] weighted", .nin = 1, .in = {SPEC("x", 2, 3, 2.0f)}};
    CHECK(rlab_gradcheck(&c, build_bce, &u) == 0);
    u.weight = NULL;
    c.desc = "[2,3]";
    CHECK(rlab_gradcheck(&c, build_bce, &u) == 0);
    c.desc = "[1] large logits";
    c.in[0] = (rlab_param_spec)SPEC1("x", 1, 12.0f);
    CHECK(rlab_gradcheck(&c, build_bce, &u) == 0);
}

/* ---- pairwise losses --------------------------------------------------------------------- */
static rlab_tensor *build_bpr(rlab_tape *t, rlab_tensor **in, void *ud)
{
    (void)ud;
    return rlab_t_bpr(t, in[0], in[1]);
}

static void t_bpr(void)
{
    rlab_gc_case c = {
        .op = "bpr", .desc = "[7]", .nin = 2, .in = {SPEC1("pos", 7, 2.0f), SPEC1("neg", 7, 2.0f)}};
    CHECK(rlab_gradcheck(&c, build_bpr, NULL) == 0);
    c.desc = "[1]";
    c.in[0] = (rlab_param_spec)SPEC1("pos", 1, 1.0f);
    c.in[1] = (rlab_param_spec)SPEC1("neg", 1, 1.0f);
    CHECK(rlab_gradcheck(&c, build_bpr, NULL) == 0);
    c.desc = "[3,2]";
    c.in[0] = (rlab_param_spec)SPEC("pos", 3, 2, 3.0f);
    c.in[1] = (rlab_param_spec)SPEC("neg", 3, 2, 3.0f);
    CHECK(rlab_gradcheck(&c, build_bpr, NULL) == 0);
}

static rlab_tensor *build_margin(rlab_tape *t, rlab_tensor **in, void *ud)
{
    return rlab_t_margin_rank(t, in[0], in[1], *(const float *)ud);
}

/* keep margin - (pos - neg) at least 0.1 away from the kink (h = 1e-2) */
static void margin_nudge(rlab_tensor **in, int nin, void *ud)
{
    (void)nin;
    const float m = *(const float *)ud;
    for (int64_t i = 0; i < in[0]->n; i++) {
        float v = m - (in[0]->data[i] - in[1]->data[i]);
        if (fabsf(v) < 0.1f)
            in[0]->data[i] += v > 0 ? -0.2f : 0.2f;
    }
}

static void t_margin_rank(void)
{
    float margin = 0.5f;
    rlab_gc_case c = {.op = "margin_rank",
                      .desc = "[9] margin 0.5",
                      .nin = 2,
                      .in = {SPEC1("pos", 9, 1.0f), SPEC1("neg", 9, 1.0f)},
                      .init = margin_nudge};
    CHECK(rlab_gradcheck(&c, build_margin, &margin) == 0);
    margin = 0.0f;
    c.desc = "[1] margin 0";
    c.in[0] = (rlab_param_spec)SPEC1("pos", 1, 1.0f);
    c.in[1] = (rlab_param_spec)SPEC1("neg", 1, 1.0f);
    CHECK(rlab_gradcheck(&c, build_margin, &margin) == 0);
}

static rlab_tensor *build_dpo(rlab_tape *t, rlab_tensor **in, void *ud)
{
    const float beta = *(const float *)ud;
    return rlab_t_dpo(t, in[0], in[1], in[2], in[3], beta);
}

static rlab_tensor *build_dpo_noref(rlab_tape *t, rlab_tensor **in, void *ud)
{
    return rlab_t_dpo(t, in[0], in[1], NULL, NULL, *(const float *)ud);
}

static void t_dpo(void)
{
    float beta = 0.5f;
    rlab_gc_case c = {.op = "dpo",
                      .desc = "[5] beta 0.5 (ref grads checked too)",
                      .nin = 4,
                      .in = {SPEC1("pw", 5, 2.0f), SPEC1("pl", 5, 2.0f), SPEC1("rw", 5, 2.0f),
                             SPEC1("rl", 5, 2.0f)}};
    CHECK(rlab_gradcheck(&c, build_dpo, &beta) == 0);
    beta = 3.0f;
    c.desc = "[1] beta 3, no reference";
    c.nin = 2;
    c.in[0] = (rlab_param_spec)SPEC1("pw", 1, 1.0f);
    c.in[1] = (rlab_param_spec)SPEC1("pl", 1, 1.0f);
    CHECK(rlab_gradcheck(&c, build_dpo_noref, &beta) == 0);
}

/* ---- InfoNCE ----------------------------------------------------------------------------- */
typedef struct infonce_ud {
    float temp;
    int normalize, symmetric;
} infonce_ud;

static rlab_tensor *build_infonce(rlab_tape *t, rlab_tensor **in, void *ud)
{
    const infonce_ud *u = ud;
    return rlab_t_infonce(t, in[0], in[1], u->temp, u->normalize, u->symmetric);
}

static void t_infonce(void)
{
    for (int nz = 0; nz < 2; nz++)
        for (int sym = 0; sym < 2; sym++) {
            infonce_ud u = {nz ? 0.2f : 0.7f, nz, sym};
            rlab_gc_case c = {.op = "infonce",
                              .desc = nz ? (sym ? "B5 C4 norm sym" : "B5 C4 norm")
                                         : (sym ? "B5 C4 sym" : "B5 C4"),
                              .nin = 2,
                              .in = {SPEC("a", 5, 4, 1.0f), SPEC("b", 5, 4, 1.0f)}};
            CHECK_MSG(rlab_gradcheck(&c, build_infonce, &u) == 0, "%s", c.desc);
        }
}

static void t_infonce_batch1(void)
{
    /* one row: the positive is the only column, loss 0 and zero gradient */
    infonce_ud u = {0.5f, 1, 1};
    rlab_gc_case c = {.op = "infonce",
                      .desc = "B1 C3 norm sym",
                      .nin = 2,
                      .in = {SPEC("a", 1, 3, 1.0f), SPEC("b", 1, 3, 1.0f)}};
    CHECK(rlab_gradcheck(&c, build_infonce, &u) == 0);
    u = (infonce_ud){1.0f, 0, 0};
    c.desc = "B3 C7";
    c.in[0] = (rlab_param_spec)SPEC("a", 3, 7, 0.5f);
    c.in[1] = (rlab_param_spec)SPEC("b", 3, 7, 0.5f);
    CHECK(rlab_gradcheck(&c, build_infonce, &u) == 0);
}

/* ---- KL / soft cross-entropy ------------------------------------------------------------- */
static rlab_tensor *build_kl(rlab_tape *t, rlab_tensor **in, void *ud)
{
    return rlab_t_kl_div(t, in[0], in[1], *(const float *)ud);
}

static void t_kl_div(void)
{
    float temp = 2.0f;
    rlab_gc_case c = {.op = "kl_div",
                      .desc = "[3,6] temp 2",
                      .nin = 2,
                      .in = {SPEC("p", 3, 6, 2.0f), SPEC("q", 3, 6, 2.0f)}};
    CHECK(rlab_gradcheck(&c, build_kl, &temp) == 0);
    temp = 0.7f;
    c.desc = "[2,2,11] temp 0.7";
    c.in[0] = (rlab_param_spec){"p", 3, {2, 2, 11}, RLAB_INIT_NORMAL, 1.0f};
    c.in[1] = (rlab_param_spec){"q", 3, {2, 2, 11}, RLAB_INIT_NORMAL, 1.0f};
    CHECK(rlab_gradcheck(&c, build_kl, &temp) == 0);
    temp = 1.0f;
    c.desc = "[2,1] one column";
    c.in[0] = (rlab_param_spec)SPEC("p", 2, 1, 1.0f);
    c.in[1] = (rlab_param_spec)SPEC("q", 2, 1, 1.0f);
    CHECK(rlab_gradcheck(&c, build_kl, &temp) == 0);
}

typedef struct soft_ud {
    const float *p;
    float temp;
} soft_ud;

static rlab_tensor *build_soft(rlab_tape *t, rlab_tensor **in, void *ud)
{
    const soft_ud *u = ud;
    return rlab_t_soft_xent(t, u->p, in[0], u->temp);
}

static void t_soft_xent(void)
{
    float p[3 * 9];
    rlab_rng rng;
    rlab_rng_seed(&rng, 5);
    for (int r = 0; r < 3; r++) {
        float s = 0.0f;
        for (int j = 0; j < 9; j++)
            s += p[r * 9 + j] = rlab_rng_uniform(&rng);
        for (int j = 0; j < 9; j++)
            p[r * 9 + j] /= s;
    }
    soft_ud u = {p, 2.0f};
    rlab_gc_case c = {
        .op = "soft_xent", .desc = "[3,9] temp 2", .nin = 1, .in = {SPEC("q", 3, 9, 2.0f)}};
    CHECK(rlab_gradcheck(&c, build_soft, &u) == 0);
    u.temp = 0.5f;
    p[4] += 0.7f; /* rows need not sum to 1: the gradient is (sum p) q - p */
    c.desc = "[3,9] temp 0.5 unnormalised";
    CHECK(rlab_gradcheck(&c, build_soft, &u) == 0);
    u.temp = 1.0f;
    c.desc = "[1,1]";
    c.in[0] = (rlab_param_spec)SPEC("q", 1, 1, 1.0f);
    CHECK(rlab_gradcheck(&c, build_soft, &u) == 0);
}

/* ---- sparse-target soft cross-entropy against items ---------------------------------------- */
typedef struct soft_items_ud {
    const float *base;
    const int64_t *off;
    const int32_t *col;
    const float *delta;
    float temp;
    int64_t chunk;
    int keep;
    const int32_t *gather; /* NULL: h is in[0]; else h = items[gather] (shared table, TED) */
    int64_t R;
} soft_items_ud;

static rlab_tensor *build_soft_items(rlab_tape *t, rlab_tensor **in, void *ud)
{
    const soft_items_ud *u = ud;
    rlab_tensor *items = u->gather ? in[0] : in[1];
    rlab_tensor *h =
        u->gather ? rlab_t_scale(t, rlab_t_gather(t, items, u->gather, u->R, -1, 0, NULL), 1.5f)
                  : in[0];
    int old = rlab_t_loss_set_keep(u->keep);
    rlab_tensor *L =
        rlab_t_soft_xent_items(t, h, items, u->base, u->off, u->col, u->delta, u->temp, u->chunk);
    rlab_t_loss_set_keep(old);
    return L;
}

static void t_soft_items(void)
{
    /* 5 rows over 13 items: row 1 without entries, row 3 base 0, row 4 a repeated column */
    static const int64_t off[6] = {0, 2, 2, 4, 5, 8};
    static const int32_t col[8] = {0, 12, 3, 4, 7, 9, 9, 1};
    static const float delta[8] = {0.4f, 0.2f, 0.3f, 0.3f, 1.0f, 0.2f, 0.3f, 0.1f};
    static const float base[5] = {0.02f, 1.0f / 13.0f, 0.01f, 0.0f, 0.03f};
    for (int keep = 1; keep >= 0; keep--) {
        soft_items_ud u = {base, off, col, delta, 0.5f, keep ? 0 : 2, keep, NULL, 5};
        rlab_gc_case c = {.op = "soft_xent_items",
                          .desc = keep ? "R5 V13 C4 temp 0.5 keep" : "R5 V13 C4 temp 0.5 chunk 2",
                          .nin = 2,
                          .in = {SPEC("h", 5, 4, 1.0f), SPEC("items", 13, 4, 1.0f)}};
        CHECK_MSG(rlab_gradcheck(&c, build_soft_items, &u) == 0, "%s", c.desc);
    }
}

static void t_soft_items_shared(void)
{
    /* TED: the student rows are items gathered from the same table (grads add up), temp 0.1 */
    static const int64_t off[4] = {0, 1, 3, 3};
    static const int32_t col[3] = {2, 0, 5}, rows[3] = {1, 4, 1};
    static const float delta[3] = {0.5f, 0.25f, 0.25f};
    static const float base[3] = {0.05f, 0.05f, 1.0f / 6.0f};
    for (int keep = 1; keep >= 0; keep--) {
        soft_items_ud u = {base, off, col, delta, 0.1f, 1, keep, rows, 3};
        rlab_gc_case c = {.op = "soft_xent_items",
                          .desc = keep ? "items[6,3] shared, temp 0.1 keep"
                                       : "items[6,3] shared, temp 0.1 chunk 1",
                          .nin = 1,
                          .in = {SPEC("items", 6, 3, 0.3f)},
                          .h = 2e-3f};
        CHECK_MSG(rlab_gradcheck(&c, build_soft_items, &u) == 0, "%s", c.desc);
    }
}

/* ---- the fused mode (loss.c: blocks of 512 items; from 64 rows, C in {16, 32, 48, 64}, with
 * AVX-512F; elsewhere these cases run the row mode): two blocks, the second a tail ---------- */
static void t_xent_fused(void)
{
    enum { N = 72, V = 530, C = 16 };
    int32_t tg[N];
    for (int i = 0; i < N; i++) /* 8 padding rows, 64 valid */
        tg[i] = i % 9 == 4 ? -1 : (int32_t)((i * 131) % V);
    CHECK(xent_case("N72 V530 C16 (fused when kept)", N, V, C, tg, 0, 0) == 0);
}

static void t_soft_items_fused(void)
{
    enum { R = 66, V = 530, C = 16 };
    static int64_t off[R + 1];
    static int32_t col[3 * R], rows[R];
    static float delta[3 * R], base[R];
    off[0] = 0;
    for (int i = 0; i < R; i++) { /* 0 to 3 entries per row, repeats, columns in both blocks */
        int64_t k = off[i];
        for (int q = 0; q < i % 4; q++, k++) {
            col[k] = (int32_t)((i * 37 + (q == 2 ? 0 : q) * 211) % V);
            delta[k] = 0.2f + 0.1f * (float)q;
        }
        off[i + 1] = k;
        base[i] = i % 5 == 0 ? 0.0f : 0.2f / (float)V;
        rows[i] = (int32_t)((i * 7) % V);
    }
    for (int keep = 1; keep >= 0; keep--) {
        soft_items_ud u = {base, off, col, delta, 0.3f, 0, keep, NULL, R};
        rlab_gc_case c = {.op = "soft_xent_items",
                          .desc = keep ? "R66 V530 C16 temp 0.3 (fused)" : "R66 V530 C16 chunk",
                          .nin = 2,
                          .in = {SPEC("h", R, C, 1.0f), SPEC("items", V, C, 1.0f)}};
        CHECK_MSG(rlab_gradcheck(&c, build_soft_items, &u) == 0, "%s", c.desc);
        /* TED: student rows gathered from the table itself, temp 0.1 */
        soft_items_ud w = {base, off, col, delta, 0.1f, 0, keep, rows, R};
        rlab_gc_case d = {.op = "soft_xent_items",
                          .desc = keep ? "items[530,16] shared, temp 0.1 (fused)"
                                       : "items[530,16] shared, temp 0.1 chunk",
                          .nin = 1,
                          .in = {SPEC("items", V, C, 0.3f)},
                          .h = 2e-3f};
        CHECK_MSG(rlab_gradcheck(&d, build_soft_items, &w) == 0, "%s", d.desc);
    }
}

static const rlab_test tests[] = {
    {"grad.softmax_xent.1", t_xent_padding_chunk3},
    {"grad.softmax_xent.2", t_xent_batch1},
    {"grad.softmax_xent.3", t_xent_all_padding},
    {"grad.softmax_xent.4", t_xent_chunk1_tail},
    {"grad.softmax_xent.5", t_xent_fused},
    {"grad.sampled_softmax.1", t_sampled_logq},
    {"grad.sampled_softmax.2", t_sampled_no_negs},
    {"grad.bce_logits.1", t_bce},
    {"grad.bpr.1", t_bpr},
    {"grad.infonce.1", t_infonce},
    {"grad.infonce.2", t_infonce_batch1},
    {"grad.kl_div.1", t_kl_div},
    {"grad.soft_xent.1", t_soft_xent},
    {"grad.soft_xent_items.1", t_soft_items},
    {"grad.soft_xent_items.2", t_soft_items_shared},
    {"grad.soft_xent_items.3", t_soft_items_fused},
    {"grad.margin_rank.1", t_margin_rank},
    {"grad.dpo.1", t_dpo},
    {NULL, NULL},
};

int main(int argc, char **argv) { return rlab_test_main(argc, argv, tests); }
