/*
 * Test organization: tensor.overfit.* — a tiny model (token + position embeddings, one pre-LN
 * block: causal multi-head attention and a ReLU FFN, final layer norm, tied softmax
 * cross-entropy) on a fixed toy task exercises ops, fused attention, loss, Adam and
 * checkpoints together:
 *   tensor.overfit.1  it fits a fixed batch to near-zero loss
 *   tensor.overfit.2  a checkpoint (parameters + Adam moments + step) saved at step k and
 *                     loaded into a fresh model continues with a bit-identical loss curve
 *
 * Task: "previous token": the target at position t is the input token at t - 1 (position 0 is
 * padding). Solving it needs attention to the previous position, i.e. positional information
 * in the queries and keys. Dropout (on the residual stream and inside attention) is on while
 * training, so the identical curve also checks that masks derive from (seed, step).
 */
#include "harness.h"
#include "tensor/checkpoint.h"
#include "tensor/loss.h"
#include "tensor/nn.h"
#include "tensor/ops.h"
#include "tensor/optim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { V = 20, T = 8, B = 16, C = 32, H = 2, F = 64 };

static const float drop_p = 0.1f;

/* The fixed batch: random tokens 1..V-1 (0 is never used as input), previous-token targets. */
typedef struct {
    int32_t tok[B * T], pos[B * T], tgt[B * T];
} batch;

static void make_batch(batch *b)
{
    rlab_rng rng;
    rlab_rng_seed(&rng, 2024);
    for (int i = 0; i < B; i++)
        for (int t = 0; t < T; t++) {
            b->tok[i * T + t] = 1 + (int32_t)rlab_rng_below(&rng, V - 1);
            b->pos[i * T + t] = t;
        }
    for (int i = 0; i < B; i++)
        for (int t = 0; t < T; t++)
            b->tgt[i * T + t] = t == 0 ? -1 : b->tok[i * T + t - 1];
}

static rlab_params *tiny_new(uint64_t seed)
{
    const rlab_param_spec specs[] = {
        {"tok.weight", 2, {V, C}, RLAB_INIT_NORMAL, 0.3f},
        {"pos.weight", 2, {T, C}, RLAB_INIT_NORMAL, 0.3f},
        {"ln1.gain", 1, {C}, RLAB_INIT_ONE, 0},
        {"ln1.bias", 1, {C}, RLAB_INIT_ZERO, 0},
        {"attn.wq", 2, {C, C}, RLAB_INIT_XAVIER, 0},
        {"attn.wk", 2, {C, C}, RLAB_INIT_XAVIER, 0},
        {"attn.wv", 2, {C, C}, RLAB_INIT_XAVIER, 0},
        {"attn.wo", 2, {C, C}, RLAB_INIT_XAVIER, 0},
        {"ln2.gain", 1, {C}, RLAB_INIT_ONE, 0},
        {"ln2.bias", 1, {C}, RLAB_INIT_ZERO, 0},
        {"ffn.w1", 2, {C, F}, RLAB_INIT_XAVIER, 0},
        {"ffn.b1", 1, {F}, RLAB_INIT_ZERO, 0},
        {"ffn.w2", 2, {F, C}, RLAB_INIT_XAVIER, 0},
        {"ffn.b2", 1, {C}, RLAB_INIT_ZERO, 0},
        {"lnf.gain", 1, {C}, RLAB_INIT_ONE, 0},
        {"lnf.bias", 1, {C}, RLAB_INIT_ZERO, 0},
    };
    rlab_rng rng;
    rlab_rng_seed(&rng, seed);
    rlab_err err = {0};
    rlab_params *P = rlab_params_new(specs, (int)(sizeof specs / sizeof specs[0]), &rng, &err);
    CHECK_MSG(P != NULL, "params: %s", err.msg);
    return P;
}

#define W(name) rlab_params_get(P, name)

/* Mean cross-entropy of the batch (a scalar on the tape). */
static rlab_tensor *tiny_forward(rlab_tape *t, rlab_params *P, const batch *b)
{
    const int64_t btc[3] = {B, T, C};
    rlab_tensor *x = rlab_t_add(t, rlab_t_gather(t, W("tok.weight"), b->tok, B * T, -1, 3, btc),
                                rlab_t_gather(t, W("pos.weight"), b->pos, B * T, -1, 3, btc));
    // attention sub-block: x += Wo attn(LN(x))
    rlab_tensor *h = rlab_t_layernorm(t, x, W("ln1.gain"), W("ln1.bias"), 1e-5f);
    rlab_tensor *q = rlab_t_matmul(t, h, W("attn.wq"), 0, 0);
    rlab_tensor *k = rlab_t_matmul(t, h, W("attn.wk"), 0, 0);
    rlab_tensor *v = rlab_t_matmul(t, h, W("attn.wv"), 0, 0);
    rlab_tensor *a = rlab_t_attention(t, q, k, v, H, NULL, NULL, RLAB_ATTN_CAUSAL, drop_p);
    a = rlab_t_dropout(t, rlab_t_matmul(t, a, W("attn.wo"), 0, 0), drop_p);
    x = rlab_t_add(t, x, a);
    // feed-forward sub-block: x += W2 relu(W1 LN(x) + b1) + b2
    h = rlab_t_layernorm(t, x, W("ln2.gain"), W("ln2.bias"), 1e-5f);
    h = rlab_t_relu(t, rlab_t_add(t, rlab_t_matmul(t, h, W("ffn.w1"), 0, 0), W("ffn.b1")));
    h = rlab_t_add(t, rlab_t_matmul(t, h, W("ffn.w2"), 0, 0), W("ffn.b2"));
    x = rlab_t_add(t, x, rlab_t_dropout(t, h, drop_p));
    // tied output layer
    h = rlab_t_layernorm(t, x, W("lnf.gain"), W("lnf.bias"), 1e-5f);
    h = rlab_t_reshape(t, h, 2, (int64_t[]){B * T, C});
    return rlab_t_softmax_xent(t, h, W("tok.weight"), NULL, b->tgt, 0);
}

static rlab_opt *tiny_opt(rlab_params *P)
{
    rlab_opt_config oc = rlab_opt_defaults(RLAB_OPT_ADAM);
    oc.lr = 1e-2f;
    rlab_err err = {0};
    rlab_opt *opt = rlab_opt_new(P, &oc, &err);
    CHECK_MSG(opt != NULL, "optimiser: %s", err.msg);
    return opt;
}

/* Steps [from, to): forward with dropout, backward, Adam. The tape's dropout stream is
 * (seed 77, step), with the step set explicitly so a resumed run sees the same masks. */
static int train(rlab_tape *t, rlab_params *P, rlab_opt *opt, const batch *b, int from, int to,
                 float *losses)
{
    for (int s = from; s < to; s++) {
        rlab_tape_reset(t);
        rlab_tape_seed(t, 77, (uint64_t)s);
        rlab_tape_set_training(t, 1);
        rlab_tensor *loss = tiny_forward(t, P, b);
        rlab_params_zero_grad(P);
        if (rlab_tape_backward(t, loss) != RLAB_OK) {
            rlab_test_fail(__FILE__, __LINE__, "step %d: %s", s, rlab_tape_errmsg(t));
            return -1;
        }
        losses[s] = loss->data[0];
        rlab_opt_step(opt, P);
    }
    return 0;
}

static float eval_loss(rlab_tape *t, rlab_params *P, const batch *b)
{
    rlab_tape_reset(t);
    rlab_tape_set_training(t, 0);
    rlab_tensor *loss = tiny_forward(t, P, b);
    CHECK_EQ_INT(rlab_tape_error(t), RLAB_OK);
    return loss->data[0];
}

static void t_overfit(void)
{
    enum { STEPS = 300 };
    batch b;
    make_batch(&b);
    rlab_t_set_deterministic(1);
    rlab_err err = {0};
    rlab_tape *t = rlab_tape_new(16 << 20, 256, &err);
    rlab_params *P = tiny_new(1);
    rlab_opt *opt = tiny_opt(P);
    static float losses[STEPS];
    float start = eval_loss(t, P, &b);
    /* chance level is about log(V - 1) */
    CHECK_MSG(start > 2.0f, "initial loss %g is suspiciously low", (double)start);
    if (train(t, P, opt, &b, 0, STEPS, losses) == 0) {
        float end = eval_loss(t, P, &b);
        CHECK_MSG(end < 0.05f, "loss after %d steps: %g (started at %g)", STEPS, (double)end,
                  (double)start);
        rlab_log(1, "overfit: eval loss %.4f -> %.5f, last train loss %.5f", (double)start,
                 (double)end, (double)losses[STEPS - 1]);
    }
    rlab_opt_free(opt);
    rlab_params_free(P);
    rlab_tape_free(t);
}

static void t_resume(void)
{
    enum { K = 40, N = 80 };
    batch b;
    make_batch(&b);
    rlab_t_set_deterministic(1);
    rlab_err err = {0};
    rlab_tape *t = rlab_tape_new(16 << 20, 256, &err);
    char path[512];
    snprintf(path, sizeof path, "%s/tiny.safetensors", rlab_test_tmpdir());
    static float ref[N], res[N], noopt[N];

    // the reference run, saving at step K
    rlab_params *P = tiny_new(1);
    rlab_opt *opt = tiny_opt(P);
    if (train(t, P, opt, &b, 0, K, ref) != 0)
        goto done;
    char step[32];
    snprintf(step, sizeof step, "%d", K);
    rlab_kv meta[] = {{"train.step", step}};
    CHECK_EQ_INT(rlab_ckpt_save(path, P, opt, meta, 1, &err), RLAB_OK);
    train(t, P, opt, &b, K, N, ref);
    rlab_opt_free(opt);
    rlab_params_free(P);

    // a fresh model (other init) loads the checkpoint and continues from the saved step
    P = tiny_new(99);
    opt = tiny_opt(P);
    char buf[32] = "";
    CHECK_EQ_INT(rlab_ckpt_meta(path, "train.step", buf, sizeof buf, &err), RLAB_OK);
    CHECK_EQ_INT(atoi(buf), K);
    CHECK_EQ_INT(rlab_ckpt_load(path, P, opt, 1, &err), RLAB_OK);
    CHECK_EQ_INT(rlab_opt_steps(opt), K);
    train(t, P, opt, &b, atoi(buf), N, res);
    int same = memcmp(ref + K, res + K, (N - K) * sizeof(float)) == 0;
    CHECK_MSG(same, "resumed losses differ: step %d %.9g vs %.9g, step %d %.9g vs %.9g", K,
              (double)ref[K], (double)res[K], N - 1, (double)ref[N - 1], (double)res[N - 1]);
    rlab_opt_free(opt);

    // sensitivity: loading the parameters without the Adam state changes the curve
    opt = tiny_opt(P);
    CHECK_EQ_INT(rlab_ckpt_load(path, P, NULL, 0, &err), RLAB_OK); /* moments ignored */
    train(t, P, opt, &b, K, N, noopt);
    CHECK(memcmp(ref + K + 1, noopt + K + 1, (N - K - 1) * sizeof(float)) != 0);
    CHECK(ref[N - 1] < ref[0]);
done:
    rlab_opt_free(opt);
    rlab_params_free(P);
    rlab_tape_free(t);
}

static const rlab_test tests[] = {
    {"tensor.overfit.1", t_overfit},
    {"tensor.overfit.2", t_resume},
    {NULL, NULL},
};

int main(int argc, char **argv) { return rlab_test_main(argc, argv, tests); }
