/*
 * tests/model/test_model.c: the pieces the host's model verbs are made of.
 *
 *   model.config.*  config schemas: defaults and overrides, checked parsing with the
 *                   messages users see, canonical text (shortest exact floats), JSON round
 *                   trips that are bit-identical, table checks
 *   model.view.*    the data view: leave-one-out, none, temporal and ratio splits of a tiny
 *                   dataset, by hand (targets, histories for masking, the recommend history)
 *   model.fit.*     the core training loop with a scripted kind: epochs and steps, the loss
 *                   mean, a non-finite loss stops with a message, validation every n epochs,
 *                   keep-best restores the best parameters, patience stops early, a
 *                   cancelled run keeps its model
 */
#include "harness.h"
#include "model/config.h"
#include "model/fit.h"

#include <math.h>
#include <string.h>

/* ---- model.config ------------------------------------------------------------------- */

typedef struct cfg_t {
    int dim;
    float lr;
    double reg;
    int opt, on;
    int64_t seed;
    char sel[16];
} cfg_t;

static const char *const opts[] = {"adamw", "sgd", NULL};
static const rlab_field fields[] = {RLAB_FIELD_INT(cfg_t, dim, "64", 1, 4096, "size"),
                                    RLAB_FIELD_FLOAT(cfg_t, lr, "0.005", 0, 10, "rate"),
                                    RLAB_FIELD_DOUBLE(cfg_t, reg, "0.01", 0, 0, "penalty"),
                                    RLAB_FIELD_CHOICE(cfg_t, opt, "adamw", opts, "optimiser"),
                                    RLAB_FIELD_BOOL(cfg_t, on, "true", "switch"),
                                    RLAB_FIELD_I64(cfg_t, seed, "2023", 0, 0, "seed"),
                                    RLAB_FIELD_STR(cfg_t, sel, "ndcg@10", "metric"),
                                    {0}};

static void t_config_defaults(void)
{
    rlab_err err = {0};
    cfg_t c;
    memset(&c, 0xff, sizeof c);
    const rlab_kv over[] = {{"dim", "8"}, {"opt", "sgd"}, {0, 0}};
    CHECK_EQ_INT(rlab_config_defaults(fields, over, &c, &err), RLAB_OK);
    CHECK_EQ_INT(c.dim, 8);
    CHECK_NEAR(c.lr, 0.005f, 0);
    CHECK_NEAR(c.reg, 0.01, 0);
    CHECK_EQ_INT(c.opt, 1);
    CHECK_EQ_INT(c.on, 1);
    CHECK_EQ_INT(c.seed, 2023);
    CHECK_STR(c.sel, "ndcg@10");
    CHECK_STR(rlab_config_default(rlab_config_find(fields, "dim"), over), "8");
    CHECK_EQ_INT(rlab_config_count(fields), 7);
    /* an override naming no field is refused */
    const rlab_kv bad[] = {{"nope", "1"}, {0, 0}};
    CHECK_EQ_INT(rlab_config_defaults(fields, bad, &c, &err), RLAB_OK); /* ignored here: */
    /* (the host checks a kind's overrides at plugin load, rlab__kind_check) */
}

static void t_config_set(void)
{
    rlab_err err = {0};
    cfg_t c;
    rlab_config_defaults(fields, NULL, &c, &err);
    CHECK_EQ_INT(rlab_config_set(fields, &c, "dim", "0", &err), RLAB_EINVAL);
    CHECK_STR(err.msg, "bad value for 'dim' (integer in [1, 4096] expected, got '0')");
    CHECK_EQ_INT(c.dim, 64); /* unchanged */
    CHECK_EQ_INT(rlab_config_set(fields, &c, "dim", "4294967360", &err), RLAB_EINVAL);
    CHECK_EQ_INT(rlab_config_set(fields, &c, "dim", "12x", &err), RLAB_EINVAL);
    CHECK_EQ_INT(rlab_config_set(fields, &c, "lr", "11", &err), RLAB_EINVAL);
    CHECK_STR(err.msg, "bad value for 'lr' (number in [0, 10] expected, got '11')");
    CHECK_EQ_INT(rlab_config_set(fields, &c, "lr", "nan", &err), RLAB_EINVAL);
    CHECK_EQ_INT(rlab_config_set(fields, &c, "opt", "adam", &err), RLAB_EINVAL);
    CHECK_STR(err.msg, "bad value for 'opt' (one of adamw|sgd expected, got 'adam')");
    CHECK_EQ_INT(rlab_config_set(fields, &c, "on", "off", &err), RLAB_OK);
    CHECK_EQ_INT(c.on, 0);
    CHECK_EQ_INT(rlab_config_set(fields, &c, "seed", "9223372036854775807", &err), RLAB_OK);
    CHECK(c.seed == INT64_MAX);
    CHECK_EQ_INT(rlab_config_set(fields, &c, "sel", "0123456789abcdef", &err), RLAB_EINVAL);
    CHECK_EQ_INT(rlab_config_set(fields, &c, "nope", "1", &err), RLAB_ENOTFOUND);
    CHECK_STR(err.msg, "unknown field 'nope'");
}

static void t_config_text_json(void)
{
    rlab_err err = {0};
    cfg_t c, d;
    rlab_config_defaults(fields, NULL, &c, &err);
    char buf[64];
    rlab_config_text(rlab_config_find(fields, "lr"), &c, buf, sizeof buf);
    CHECK_STR(buf, "0.005"); /* shortest text of the float, not 0.004999999888 */
    rlab_config_text(rlab_config_find(fields, "reg"), &c, buf, sizeof buf);
    CHECK_STR(buf, "0.01");
    c.lr = 1.0f / 3.0f;
    c.reg = 1.0 / 3.0;
    char *j = rlab_config_to_json(fields, &c);
    CHECK(j != NULL);
    CHECK_STR_CONTAINS(j, "\"opt\":\"adamw\"");
    CHECK_STR_CONTAINS(j, "\"on\":true");
    CHECK_STR_CONTAINS(j, "\"seed\":2023");
    memset(&d, 0, sizeof d);
    CHECK_EQ_INT(rlab_config_from_json(fields, &d, j, 1, &err), RLAB_OK);
    CHECK(memcmp(&c.lr, &d.lr, sizeof c.lr) == 0); /* bit-identical round trip */
    CHECK(memcmp(&c.reg, &d.reg, sizeof c.reg) == 0);
    CHECK_EQ_INT(d.dim, 64);
    CHECK_STR(d.sel, "ndcg@10");
    rlab_free(j);
    CHECK_EQ_INT(rlab_config_from_json(fields, &d, "{\"zzz\":1}", 1, &err), RLAB_EFORMAT);
    CHECK_EQ_INT(rlab_config_from_json(fields, &d, "{\"zzz\":1}", 0, &err), RLAB_OK);
    CHECK_EQ_INT(rlab_config_from_json(fields, &d, "{\"dim\":0}", 0, &err), RLAB_EFORMAT);
    CHECK_EQ_INT(rlab_config_from_json(fields, &d, "[1]", 0, &err), RLAB_EFORMAT);
}

static void t_config_table(void)
{
    rlab_err err = {0};
    CHECK_EQ_INT(rlab_config_check_table(fields, &err), RLAB_OK);
    const rlab_field dup[] = {RLAB_FIELD_INT(cfg_t, dim, "1", 0, 0, "a"),
                              RLAB_FIELD_INT(cfg_t, dim, "1", 0, 0, "b"),
                              {0}};
    CHECK_EQ_INT(rlab_config_check_table(dup, &err), RLAB_EINVAL);
    CHECK_STR(err.msg, "config field 'dim' declared twice");
    const rlab_field baddef[] = {RLAB_FIELD_INT(cfg_t, dim, "x", 0, 0, "a"), {0}};
    CHECK_EQ_INT(rlab_config_check_table(baddef, &err), RLAB_EINVAL);
    CHECK_STR_CONTAINS(err.msg, "bad default");
    CHECK_EQ_INT(rlab_config_check_value(&fields[0], "5000", &err), RLAB_EINVAL);
}

/* ---- model.view ----------------------------------------------------------------------- */

/* u0: i0 i1 i2 i3 (times 1..4); u1: i2 i0 i4 (1..3); u2: i1 i3 (1, 2) */
static rlab_dataset *tiny(void)
{
    rlab_err err = {0};
    rlab_dataset *ds = rlab_dataset_new("tiny", &err);
    char b[8];
    for (int u = 0; u < 3; u++) {
        snprintf(b, sizeof b, "u%d", u);
        rlab_vocab_add(&ds->users, b, strlen(b));
    }
    for (int i = 0; i < 5; i++) {
        snprintf(b, sizeof b, "i%d", i);
        rlab_vocab_add(&ds->items, b, strlen(b));
    }
    static const int rows[][3] = {{1, 4, 3}, {0, 3, 4}, {0, 0, 1}, {2, 3, 2}, {0, 2, 3},
                                  {1, 2, 1}, {0, 1, 2}, {1, 0, 2}, {2, 1, 1}};
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++)
        rlab_inter_push(&ds->inter, rows[r][0], rows[r][1], rows[r][2], 1.0f, NULL);
    ds->inter.flags = RLAB_INTER_HAS_TS;
    return ds;
}

static int row(const rlab_seqs *s, int u, int32_t *out)
{
    int n = (int)(s->off[u + 1] - s->off[u]);
    for (int k = 0; k < n; k++)
        out[k] = s->items[s->off[u] + k];
    return n;
}

static void t_view_loo(void)
{
    rlab_err err = {0};
    rlab_dataset *ds = tiny();
    rlab_view *v = NULL;
    CHECK_EQ_INT(rlab_view_new(ds, NULL, &v, &err), RLAB_OK);
    if (!v) {
        rlab_dataset_free(ds);
        return;
    }
    int32_t r[8];
    CHECK_EQ_INT(row(&v->train, 0, r), 2); /* u0 train i0 i1, valid i2, test i3 */
    CHECK(r[0] == 0 && r[1] == 1);
    CHECK_EQ_INT(row(&v->valid, 0, r), 1);
    CHECK_EQ_INT(r[0], 2);
    CHECK_EQ_INT(row(&v->test, 0, r), 1);
    CHECK_EQ_INT(r[0], 3);
    CHECK_EQ_INT(row(&v->hist_test, 0, r), 3); /* train + valid, in time order */
    CHECK(r[0] == 0 && r[1] == 1 && r[2] == 2);
    CHECK_EQ_INT(row(&v->hist_valid, 1, r), 1); /* u1: train i2 */
    CHECK_EQ_INT(r[0], 2);
    CHECK_EQ_INT(row(&v->train, 2, r), 2); /* u2: fewer than 3 -> all train, no targets */
    CHECK_EQ_INT(row(&v->test, 2, r), 0);
    CHECK_EQ_INT(row(&v->all, 1, r), 3); /* everything, time order: i2 i0 i4 */
    CHECK(r[0] == 2 && r[1] == 0 && r[2] == 4);
    rlab_view_free(v);
    /* none: everything trains, nothing to rank */
    rlab_view_opts o = rlab_view_defaults();
    o.split = RLAB_SPLIT_NONE;
    CHECK_EQ_INT(rlab_view_new(ds, &o, &v, &err), RLAB_OK);
    if (v) {
        CHECK_EQ_INT(row(&v->train, 0, r), 4);
        CHECK_EQ_INT(v->test.off[3], 0);
        CHECK_EQ_INT(v->valid.off[3], 0);
    }
    rlab_view_free(v);
    rlab_dataset_free(ds);
}

static void t_view_temporal_ratio(void)
{
    rlab_err err = {0};
    rlab_dataset *ds = tiny();
    rlab_view *v = NULL;
    /* 9 rows, times 1,1,1,2,2,2,3,3,4: test = the last 0.34 (ts >= 3), valid = 0.34 before */
    rlab_view_opts o = {.split = RLAB_SPLIT_TEMPORAL, .valid_frac = 0.34, .test_frac = 0.34};
    CHECK_EQ_INT(rlab_view_new(ds, &o, &v, &err), RLAB_OK);
    if (v) {
        int64_t nt = v->test.off[3], nv = v->valid.off[3], ntr = v->train.off[3];
        CHECK_EQ_INT(nt + nv + ntr, 9);
        CHECK_EQ_INT(nt, 3); /* u0 i2 (3), u0 i3 (4), u1 i4 (3) */
        CHECK_EQ_INT(nv, 3); /* ts 2 */
        CHECK_EQ_INT(ntr, 3);
        int32_t r[8];
        CHECK_EQ_INT(row(&v->hist_test, 0, r), 2); /* u0 sees i0 (1), i1 (2) before the test */
    }
    rlab_view_free(v);
    o.split = RLAB_SPLIT_RATIO;
    o.valid_frac = 0.2;
    o.test_frac = 0.3;
    o.seed = 5;
    CHECK_EQ_INT(rlab_view_new(ds, &o, &v, &err), RLAB_OK);
    if (v)
        CHECK_EQ_INT(v->train.off[3] + v->valid.off[3] + v->test.off[3], 9);
    rlab_view_free(v);
    o.test_frac = 0.95;
    CHECK_EQ_INT(rlab_view_new(ds, &o, &v, &err), RLAB_EINVAL);
    CHECK(v == NULL);
    rlab_dataset_free(ds);
}

/* ---- model.fit: a scripted kind -------------------------------------------------------- */

/* One parameter w; the step sets the loss from a script; the model scores item i with
 * score[i] = w * pref[i], so the validation metric depends on the sign of w. */
typedef struct fake {
    rlab_params *P;
    rlab_model *m;
    const double *losses; /* per step, cycling */
    int nloss, calls;
    const float *w_by_epoch; /* w after each epoch */
    int epoch;
} fake;

typedef struct fake_cfg {
    int steps;
} fake_cfg;

static int fake_score_all(const rlab_model *m, const rlab_query *q, int nq, float *out,
                          rlab_err *err)
{
    (void)err;
    const fake *f = m->impl;
    float w = f->P->t[0].data[0];
    for (int b = 0; b < nq; b++)
        for (int i = 0; i < m->n_items; i++) /* w > 0: later items first */
            out[(size_t)b * (size_t)m->n_items + (size_t)i] = w * (float)i;
    (void)q;
    return RLAB_OK;
}

static const rlab_model_vt fake_vt = {.score_all = fake_score_all};

static fake *FAKE; /* the test's handle on the state */
static const double *SCRIPT;
static int SCRIPT_N;
static const float *WS;

static int fake_begin(const rlab_fit *fit, void **state, rlab_err *err)
{
    fake *f = rlab_calloc(1, sizeof *f);
    rlab_param_spec s = {.name = "w", .ndim = 1, .shape = {1}, .init = RLAB_INIT_ZERO};
    f->P = rlab_params_new(&s, 1, NULL, err);
    f->m = rlab_model_new(&fake_vt, NULL, "fake", "fake", err);
    f->m->impl = f;
    f->m->n_items = fit->view->n_items;
    f->m->n_users = fit->view->n_users;
    f->losses = SCRIPT;
    f->nloss = SCRIPT_N;
    f->w_by_epoch = WS;
    FAKE = f;
    *state = f;
    return RLAB_OK;
}

static int fake_epoch(void *state, int e, int64_t *n, rlab_err *err)
{
    (void)err;
    fake *f = state;
    f->epoch = e;
    *n = 2;
    return RLAB_OK;
}

static int fake_step(void *state, int64_t i, double *loss, double *w, double *parts, rlab_err *err)
{
    (void)err;
    (void)parts;
    fake *f = state;
    *loss = f->losses[f->calls++ % f->nloss];
    *w = i == 0 ? 1.0 : 3.0; /* the epoch mean is weighted */
    f->P->t[0].data[0] = f->w_by_epoch[f->epoch - 1];
    return RLAB_OK;
}

static rlab_model *fake_model(void *state) { return ((fake *)state)->m; }
static rlab_params *fake_params(void *state) { return ((fake *)state)->P; }
static void fake_end(void *state)
{
    fake *f = state;
    f->m->impl = NULL; /* the model outlives the state: scores are not used afterwards */
    rlab_model_release(f->m);
    rlab_params_free(f->P);
    rlab_free(f);
}

static const rlab_fit_ops fake_ops = {.begin = fake_begin,
                                      .epoch = fake_epoch,
                                      .step = fake_step,
                                      .model = fake_model,
                                      .params = fake_params,
                                      .end = fake_end};

typedef struct record {
    int nmetric, nprog;
    double train_loss[8];
    int cancel_after; /* cancel once this many metrics were recorded (0 = never) */
} record;

static int rec_metric(void *ud, int64_t step, const char *split, const char *name,
                      const char *proto, double v)
{
    (void)proto;
    record *r = ud;
    r->nmetric++;
    if (!strcmp(split, "train") && !strcmp(name, "loss") && step >= 1 && step <= 8)
        r->train_loss[step - 1] = v;
    return RLAB_OK;
}

static int rec_cancel(void *ud)
{
    const record *r = ud;
    return r->cancel_after > 0 && r->nmetric >= r->cancel_after;
}

/* A view where the valid and test target of every user is their LAST items: w > 0 ranks them
 * high (ndcg@10 near 1 on 5 items), w < 0 low. */
static rlab_model *fit_fake(const double *losses, int nl, const float *ws, rlab_fit_opts *o,
                            record *rec, rlab_fit_result *res, rlab_err *err)
{
    rlab_dataset *ds = tiny();
    rlab_view *v = NULL;
    rlab_view_new(ds, NULL, &v, err);
    SCRIPT = losses;
    SCRIPT_N = nl;
    WS = ws;
    fake_cfg c = {.steps = 2};
    rlab_fit fit = {.view = v,
                    .cfg = &c,
                    .opts = o,
                    .kind = "fake",
                    .ud = rec,
                    .metric = rec_metric,
                    .cancelled = rec_cancel};
    rlab_model *m = rlab_fit_run(&fake_ops, &fit, res, err);
    rlab_view_free(v);
    rlab_dataset_free(ds);
    return m;
}

static rlab_fit_opts opts_default(void)
{
    rlab_fit_opts o;
    memset(&o, 0, sizeof o);
    rlab_config_defaults(rlab_fit_fields, NULL, &o, NULL);
    o.eval_test = 0;
    return o;
}

static void t_fit_loop(void)
{
    rlab_err err = {0};
    record rec = {0};
    rlab_fit_result res;
    /* losses per step: (1, 2) then (3, 5): weights 1 and 3 -> epoch means 1.75, 4.5 */
    static const double L[] = {1, 2, 3, 5};
    static const float W[] = {1, -1, 1, -1};
    rlab_fit_opts o = opts_default();
    o.epochs = 2;
    o.eval_every = 0;
    rlab_model *m = fit_fake(L, 4, W, &o, &rec, &res, &err);
    CHECK_MSG(m != NULL, "fit: %s", err.msg);
    CHECK_EQ_INT(res.epochs_run, 2);
    CHECK_NEAR(rec.train_loss[0], 1.75, 1e-12);
    CHECK_NEAR(rec.train_loss[1], 4.5, 1e-12);
    CHECK_EQ_INT(res.best_epoch, 0); /* never validated */
    rlab_model_release(m);
}

static void t_fit_nan(void)
{
    rlab_err err = {0};
    record rec = {0};
    rlab_fit_result res;
    static const double L[] = {1, 1, 1, NAN};
    static const float W[] = {1, 1, 1};
    rlab_fit_opts o = opts_default();
    o.epochs = 3;
    rlab_model *m = fit_fake(L, 4, W, &o, &rec, &res, &err);
    CHECK(m == NULL);
    CHECK_EQ_INT(err.code, RLAB_ESTATE);
    CHECK_STR_CONTAINS(err.msg, "fake: the loss is nan at epoch 2, step 2");
}

/* The scripted model scores item i with w * i. Valid targets (history masked): u0 i2 among
 * {i2, i3, i4}, u1 i0 among {i0, i1, i3, i4}: w < 0 ranks both first (ndcg 1), w > 0 last.
 * Test targets: u0 i3 among {i3, i4}, u1 i4 among {i1, i3, i4}: w < 0 gives ndcg@10
 * (1 + 1/log2(4)) / 2 = 0.75, w > 0 gives (1/log2(3) + 1) / 2. */
static void t_fit_keep_best(void)
{
    rlab_err err = {0};
    record rec = {0};
    rlab_fit_result res;
    static const double L[] = {1};
    /* w by epoch: best first, then worse: patience 2 stops after epoch 3 */
    static const float W[] = {-1.0f, 2.0f, 2.0f, 2.0f, 2.0f};
    rlab_fit_opts o = opts_default();
    o.epochs = 5;
    o.eval_every = 1;
    o.patience = 2;
    o.eval_test = 1;
    rlab_model *m = fit_fake(L, 1, W, &o, &rec, &res, &err);
    CHECK_MSG(m != NULL, "fit: %s", err.msg);
    CHECK_EQ_INT(res.best_epoch, 1);
    CHECK_EQ_INT(res.epochs_run, 3);
    CHECK_NEAR(res.best_valid, 1.0, 1e-12);
    CHECK(res.has_valid && res.has_test);
    CHECK_STR(res.protocol, "full");
    int nd = -1;
    for (int i = 0; i < res.n_metrics; i++)
        if (!strcmp(res.names[i], "ndcg@10"))
            nd = i;
    CHECK(nd >= 0);
    if (nd >= 0) /* the test was ranked with epoch 1's parameter, restored */
        CHECK_NEAR(res.test[nd], 0.75, 1e-9);
    rlab_model_release(m);
}

static void t_fit_cancel(void)
{
    rlab_err err = {0};
    record rec = {.cancel_after = 3}; /* cancelled in epoch 2 */
    rlab_fit_result res;
    static const double L[] = {1};
    static const float W[] = {1, 1, 1, 1, 1};
    rlab_fit_opts o = opts_default();
    o.epochs = 5;
    rlab_model *m = fit_fake(L, 1, W, &o, &rec, &res, &err);
    CHECK(m != NULL); /* the model as far as it got */
    CHECK_EQ_INT(err.code, RLAB_ECANCELED);
    CHECK(res.epochs_run < 5);
    rlab_model_release(m);
}

static const rlab_test tests[] = {
    {"model.config.defaults", t_config_defaults},
    {"model.config.set", t_config_set},
    {"model.config.text_json", t_config_text_json},
    {"model.config.table", t_config_table},
    {"model.view.loo", t_view_loo},
    {"model.view.temporal_ratio", t_view_temporal_ratio},
    {"model.fit.loop", t_fit_loop},
    {"model.fit.nan", t_fit_nan},
    {"model.fit.keep_best", t_fit_keep_best},
    {"model.fit.cancel", t_fit_cancel},
    {NULL, NULL},
};

int main(int argc, char **argv) { return rlab_test_main(argc, argv, tests); }
