/*
 * plugins/ranker: model-level finite-difference gradient checks of the four kinds (every
 * parameter tensor through the whole forward: tokens, proxies, cross-attention, PGUs, experts,
 * cross layers, heads), the config switches, metrics on one-class data, determinism, the
 * table layout a saved model keeps (ranker.schema.1: text round trip, a model rebuilt from it
 * has the same parameters and predicts the same, another layout is refused), and learning on
 * the synthetic multi-task world (ranker_learn, heavy).
 */
#include "harness.h"
#include "ranker.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static rlab_tabular *synth(int64_t n, int fields, uint64_t seed)
{
    rlab_err err = {0};
    rlab_tabular *t = NULL;
    CHECK_EQ_INT(rlab_tabular_synth(n, fields, 7, seed, &t, &err), RLAB_OK);
    return t;
}

static void tiny_cfg(int kind, rk_cfg *c)
{
    rlab_err err = {0};
    CHECK_EQ_INT(rk_cfg_defaults(kind, c, &err), RLAB_OK);
    c->dim = 4;
    c->hidden = 6;
    c->heads = 2;
    c->proxies = 2;
    c->shared_tasks = 2;
    c->layers = 2;
    c->experts = 3;
    c->cross_layers = 2;
    c->max_seq = 4;
    c->seed = 5;
}

/* Mean BCE of the batch at the current parameters, in float as the op computes it. */
static double batch_loss(rk_model *m, rlab_tape *tp, const rlab_tabular *t, const int64_t *rows,
                         int B, const float *lab)
{
    rlab_tape_reset(tp);
    rlab_tensor *lg = rk_forward(m, tp, t, rows, B);
    rlab_tensor *l = rlab_t_bce_logits(tp, lg, lab, NULL);
    return rlab_tape_error(tp) ? (double)NAN : (double)l->data[0];
}

static void gradcheck(int kind, int shared, int hetero, int homo)
{
    rlab_tabular *t = synth(64, 3, 3);
    if (!t)
        return;
    rk_cfg c;
    tiny_cfg(kind, &c);
    c.shared_tasks = shared;
    c.hetero = hetero;
    c.homo = homo;
    rlab_err err = {0};
    int64_t rows[8] = {0, 3, 5, 9, 12, 20, 33, 40};
    rk_model *m = rk_model_new(&c, t, rows, 8, &err);
    CHECK_MSG(m != NULL, "%s", err.msg);
    if (!m) {
        rlab_tabular_free(t);
        return;
    }
    const int B = 8, N = rk_model_ntasks(m);
    float lab[16];
    for (int b = 0; b < B; b++)
        for (int k = 0; k < N; k++)
            lab[b * N + k] = t->labels[rows[b] * t->nlabels + k];
    rlab_tape *tp = rlab_tape_new(64u << 20, 1u << 14, &err);
    rlab_params *P = rk_model_params(m);
    rlab_tape_set_training(tp, 0);
    rlab_params_zero_grad(P);
    rlab_tape_reset(tp);
    rlab_tensor *lg = rk_forward(m, tp, t, rows, B);
    rlab_tensor *loss = rlab_t_bce_logits(tp, lg, lab, NULL);
    CHECK_EQ_INT(rlab_tape_backward(tp, loss), RLAB_OK);
    float *g = rlab_malloc(P->count * sizeof *g);
    memcpy(g, P->grad, P->count * sizeof *g);
    rlab_rng rng;
    rlab_rng_seed(&rng, 11);
    const float h = 2e-3f;
    int checked = 0, skipped = 0, nonzero = 0;
    double worst = 0;
    const char *worst_name = "";
    for (int p = 0; p < P->n; p++) {
        rlab_tensor *pt = &P->t[p];
        int64_t base = pt->data - P->data;
        for (int s = 0; s < 4; s++) {
            int64_t i = base + (int64_t)rlab_rng_below(&rng, (uint64_t)pt->n);
            float x0 = P->data[i];
            double bp = (double)g[i], l0 = batch_loss(m, tp, t, rows, B, lab);
            /* Central differences at three step sizes. A ReLU kink inside [x - h, x + h]
             * shows as left and right slopes that disagree (the tape gives one side's
             * subgradient there), and several rows' kinks can cancel that sign at one scale:
             * the element passes when some smooth scale agrees with backprop; it is skipped
             * when no scale is smooth. */
            double ex = INFINITY, fd = 0, left = 0, right = 0;
            int smooth = 0, kink_ok = 0;
            for (float hh = h; hh > h / 20; hh /= 4) {
                P->data[i] = x0 + hh;
                double lp = batch_loss(m, tp, t, rows, B, lab);
                P->data[i] = x0 - hh;
                double lm = batch_loss(m, tp, t, rows, B, lab);
                P->data[i] = x0;
                double f = (lp - lm) / (2.0 * (double)hh), le = (l0 - lm) / (double)hh,
                       ri = (lp - l0) / (double)hh;
                double tol = 1e-3 + 1e-2 * fmax(fabs(bp), fabs(f));
                if (fabs(ri - le) > 1e-3 + 0.01 * fabs(f)) {
                    /* a kink: backprop must be a subgradient, between the one-sided slopes */
                    if (bp >= fmin(le, ri) - tol && bp <= fmax(le, ri) + tol)
                        kink_ok = 1;
                    continue;
                }
                smooth = 1;
                if (fabs(bp - f) / tol < ex)
                    ex = fabs(bp - f) / tol, fd = f, left = le, right = ri;
                if (ex <= 1.0)
                    break; /* agrees: the smaller scales are not needed */
            }
            if (ex > 1.0 && kink_ok)
                ex = 0.0, smooth = 1; /* a subgradient at a kink at some scale */
            if (!smooth) {
                skipped++;
                continue;
            }
            if (ex > worst)
                worst = ex, worst_name = pt->name;
            if (ex > 1.0)
                fprintf(stderr,
                        "  %s[%lld]: backprop %.6g, central difference %.6g (left %.6g, right "
                        "%.6g)\n",
                        pt->name, (long long)(i - base), bp, fd, left, right);
            nonzero += fabs(bp) > 1e-6;
            checked++;
        }
    }
    CHECK_MSG(worst <= 1.0, "%s: worst gradient mismatch %.2f x tolerance in %s",
              rk_kind_names[kind], worst, worst_name);
    CHECK_MSG(skipped * 10 < checked, "%d of %d elements skipped near kinks", skipped, checked);
    CHECK_MSG(nonzero * 4 > checked, "only %d of %d checked gradients nonzero", nonzero, checked);
    rlab_free(g);
    rlab_tape_free(tp);
    rk_model_free(m);
    rlab_tabular_free(t);
}

static void t_grad_infnet(void) { gradcheck(RK_INFNET, 2, 1, 1); }
static void t_grad_infnet_noshared(void) { gradcheck(RK_INFNET, 0, 1, 1); }
static void t_grad_infnet_nohomo(void) { gradcheck(RK_INFNET, 2, 1, 0); }
static void t_grad_mmoe(void) { gradcheck(RK_MMOE, 2, 1, 1); }
static void t_grad_dcnv2(void) { gradcheck(RK_DCNV2, 2, 1, 1); }
static void t_grad_sharedbottom(void) { gradcheck(RK_SHAREDBOTTOM, 2, 1, 1); }

static void t_config(void)
{
    rlab_tabular *t = synth(50, 3, 1);
    if (!t)
        return;
    int64_t rows[50];
    for (int i = 0; i < 50; i++)
        rows[i] = i;
    rlab_err err = {0};
    rk_cfg c;
    CHECK_EQ_INT(rk_cfg_defaults(RK_INFNET, &c, &err), RLAB_OK);
    /* the paper's best setting */
    CHECK_EQ_INT(c.proxies, 4);
    CHECK_EQ_INT(c.shared_tasks, 2);
    rk_model *a = rk_model_new(&c, t, rows, 50, &err);
    c.shared_tasks = 0;
    rk_model *b = rk_model_new(&c, t, rows, 50, &err);
    c.shared_tasks = 2;
    c.hetero = 0;
    rk_model *h = rk_model_new(&c, t, rows, 50, &err);
    c.hetero = 1;
    snprintf(c.task, sizeof c.task, "conversion");
    rk_model *s = rk_model_new(&c, t, rows, 50, &err);
    CHECK(a && b && h && s);
    if (a && b && h && s) {
        CHECK(rk_model_nparams(b) < rk_model_nparams(a));
        CHECK(rk_model_nparams(h) < rk_model_nparams(a));
        CHECK_EQ_INT(rk_model_ntasks(a), 2);
        CHECK_EQ_INT(rk_model_ntasks(s), 1);
        CHECK_STR(rk_model_task_name(s, 0), "conversion");
    }
    rk_model_free(a), rk_model_free(b), rk_model_free(h), rk_model_free(s);
    snprintf(c.task, sizeof c.task, "nope");
    CHECK(rk_model_new(&c, t, rows, 50, &err) == NULL);
    CHECK_STR_CONTAINS(err.msg, "no such label");
    c.task[0] = '\0';
    c.heads = 3;
    CHECK(rk_model_new(&c, t, rows, 50, &err) == NULL);
    CHECK_STR_CONTAINS(err.msg, "heads");
    /* the schema: every field has a default that parses */
    CHECK_EQ_INT(rlab_config_check_table(rk_fields, &err), RLAB_OK);
    rlab_tabular_free(t);
}

/* AUC is undefined on one-class rows: NAN, not a number made up. */
static void t_metrics_one_class(void)
{
    rlab_tabular *t = synth(200, 3, 2);
    if (!t)
        return;
    int64_t rows[200], nneg = 0;
    for (int64_t i = 0; i < t->n; i++)
        if (t->labels[i * 2] < 0.5f)
            rows[nneg++] = i; /* clicks all 0 here, so conversions too */
    rlab_err err = {0};
    rk_cfg c;
    tiny_cfg(RK_SHAREDBOTTOM, &c);
    rk_model *m = rk_model_new(&c, t, rows, nneg, &err);
    rk_metrics x;
    CHECK_EQ_INT(rk_evaluate(m, t, rows, nneg, &x, &err), RLAB_OK);
    CHECK(isnan(x.auc[0]) && isnan(x.auc[1]) && isnan(x.gauc[0]));
    CHECK(!isnan(x.logloss[0]) && x.logloss[0] > 0);
    CHECK(isnan(rk_mean_auc(&x)));
    CHECK_EQ_INT(x.n, nneg);
    rk_model_free(m);
    rlab_tabular_free(t);
}

static int train_eval(int kind, const rlab_tabular *t, int epochs, int dim, rk_metrics *te,
                      float *pred, int npred)
{
    rlab_err err = {0};
    int64_t *tr, *va, *ts, ntr, nva, nts;
    if (rlab_tabular_split(t, 0.1, 0.2, 0, 3, &tr, &ntr, &va, &nva, &ts, &nts, &err))
        return -1;
    rk_cfg c;
    rk_cfg_defaults(kind, &c, &err);
    c.epochs = epochs;
    c.seed = 2;
    if (dim) {
        c.dim = dim;
        c.hidden = 2 * dim;
    }
    rk_model *m = rk_model_new(&c, t, tr, ntr, &err);
    rk_fit_result fr;
    int rc = m ? rk_fit(m, t, tr, ntr, va, nva, NULL, &fr, &err) : -1;
    CHECK_MSG(rc == RLAB_OK, "%s", err.msg);
    if (rc == RLAB_OK)
        rc = rk_evaluate(m, t, ts, nts, te, &err);
    if (rc == RLAB_OK && pred)
        rc = rk_predict(m, t, ts, npred, pred, &err);
    rk_model_free(m);
    rlab_free(tr), rlab_free(va), rlab_free(ts);
    return rc;
}

static void t_determinism(void)
{
    rlab_tabular *t = synth(300, 4, 4);
    if (!t)
        return;
    float a[32 * 2], b[32 * 2];
    rk_metrics x, y;
    CHECK_EQ_INT(train_eval(RK_INFNET, t, 1, 8, &x, a, 32), RLAB_OK);
    CHECK_EQ_INT(train_eval(RK_INFNET, t, 1, 8, &y, b, 32), RLAB_OK);
    CHECK(memcmp(a, b, sizeof a) == 0);
    CHECK(memcmp(&x.auc[0], &y.auc[0], sizeof x.auc[0]) == 0);
    rlab_tabular_free(t);
}

/* Every kind learns the synthetic world's click and conversion well above chance. */
static void learn(int kind)
{
    rlab_tabular *t = synth(8000, 8, 9);
    if (!t)
        return;
    rk_metrics x;
    CHECK_EQ_INT(train_eval(kind, t, 3, 0, &x, NULL, 0), RLAB_OK);
    CHECK_MSG(x.auc[0] > 0.62, "%s click AUC %.4f", rk_kind_names[kind], x.auc[0]);
    CHECK_MSG(x.auc[1] > 0.62, "%s conversion AUC %.4f", rk_kind_names[kind], x.auc[1]);
    CHECK_MSG(!isnan(x.gauc[0]), "%s click GAUC undefined", rk_kind_names[kind]);
    rlab_tabular_free(t);
}
static void t_learn_infnet(void) { learn(RK_INFNET); }
static void t_learn_mmoe(void) { learn(RK_MMOE); }
static void t_learn_dcnv2(void) { learn(RK_DCNV2); }
static void t_learn_sharedbottom(void) { learn(RK_SHAREDBOTTOM); }

static void t_schema(void)
{
    rlab_err err = {0};
    rlab_tabular *t = synth(300, 4, 3);
    char *text = rk_schema_text(t);
    CHECK(text != NULL);
    rlab_tabular *shape = rk_schema_table(text, &err);
    CHECK_MSG(shape != NULL, "schema: %s", err.msg);
    if (!shape) {
        rlab_free(text);
        rlab_tabular_free(t);
        return;
    }
    CHECK_EQ_INT(shape->nfields, t->nfields);
    CHECK_EQ_INT(shape->nnum, t->nnum);
    CHECK_EQ_INT(shape->nlabels, t->nlabels);
    CHECK_EQ_INT((int)shape->n, 0);
    for (int f = 0; f < t->nfields; f++) {
        CHECK_STR(shape->fields[f].name, t->fields[f].name);
        CHECK_EQ_INT((int)shape->fields[f].card, (int)t->fields[f].card);
        CHECK_EQ_INT((int)shape->fields[f].role, (int)t->fields[f].role);
        CHECK_EQ_INT(shape->fields[f].shares, t->fields[f].shares);
    }
    CHECK_STR(shape->label_names[1], t->label_names[1]);
    /* a model built on the shape has the layout of one built on the table: copy the
     * parameters and the numeric statistics and it predicts the same */
    rk_cfg c;
    tiny_cfg(RK_INFNET, &c);
    int64_t rows[300];
    for (int i = 0; i < 300; i++)
        rows[i] = i;
    rk_model *a = rk_model_new(&c, t, rows, 300, &err);
    rk_model *b = rk_model_new(&c, shape, NULL, 0, &err);
    CHECK(a && b);
    if (a && b) {
        CHECK_EQ_INT((int)rk_model_nparams(a), (int)rk_model_nparams(b));
        CHECK_EQ_INT(rk_model_fits(b, t, &err), RLAB_OK);
        memcpy(rk_model_params(b)->data, rk_model_params(a)->data,
               rk_model_params(a)->count * sizeof(float));
        for (int w = 0; w < 2; w++) {
            int na = 0, nb = 0;
            float *sa = rk_model_num_stats(a, w, &na), *sb = rk_model_num_stats(b, w, &nb);
            CHECK_EQ_INT(na, nb);
            memcpy(sb, sa, (size_t)na * sizeof(float));
        }
        float pa[20 * 2], pb[20 * 2];
        CHECK_EQ_INT(rk_predict(a, t, rows, 20, pa, &err), RLAB_OK);
        CHECK_EQ_INT(rk_predict(b, t, rows, 20, pb, &err), RLAB_OK);
        CHECK(memcmp(pa, pb, sizeof pa) == 0);
        /* a table of another layout (other cardinalities) is refused */
        rlab_tabular *o = synth(300, 5, 3);
        CHECK_EQ_INT(rk_model_fits(b, o, &err), RLAB_EINVAL);
        CHECK_STR_CONTAINS(err.msg, "token fields");
        rlab_tabular_free(o);
    }
    rk_model_free(a);
    rk_model_free(b);
    rlab_tabular_free(shape);
    CHECK(rk_schema_table("ranker-schema 1\nL\tclick\nF\tx\n", &err) == NULL);
    CHECK_EQ_INT(err.code, RLAB_EFORMAT);
    CHECK_STR_CONTAINS(err.msg, "ranker.schema line 3");
    CHECK(rk_schema_table("ranker-schema 9\n", &err) == NULL);
    rlab_free(text);
    rlab_tabular_free(t);
}

static const rlab_test tests[] = {
    {"ranker.grad.infnet.1", t_grad_infnet},
    {"ranker.grad.infnet.2", t_grad_infnet_noshared},
    {"ranker.grad.infnet.3", t_grad_infnet_nohomo},
    {"ranker.grad.mmoe.1", t_grad_mmoe},
    {"ranker.grad.dcnv2.1", t_grad_dcnv2},
    {"ranker.grad.sharedbottom.1", t_grad_sharedbottom},
    {"ranker.config.1", t_config},
    {"ranker.metrics.1", t_metrics_one_class},
    {"ranker.determinism.1", t_determinism},
    {"ranker.schema.1", t_schema},
    {"ranker_learn.infnet.1", t_learn_infnet},
    {"ranker_learn.mmoe.1", t_learn_mmoe},
    {"ranker_learn.dcnv2.1", t_learn_dcnv2},
    {"ranker_learn.sharedbottom.1", t_learn_sharedbottom},
    {NULL, NULL},
};

int main(int argc, char **argv) { return rlab_test_main(argc, argv, tests); }
