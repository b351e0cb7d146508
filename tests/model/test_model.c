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
 *   model.view.tabular  the tabular branch of the view: a table's fixed parts (set by hand,
 *                   by rlab_tabular_set_parts with a test file's rows, or the default 70/10/20)
 *   model.fit.tabular   the loop on a tabular view with a hand-written logistic kind: per-task
 *                   CTR validation (select=auc), test metrics equal rlab_eval_ctr_model's,
 *                   an undefined valid AUC keeps every epoch, select=logloss refused
 */
#include "harness.h"
#include "model/config.h"
#include "model/fit.h"
#include "data/tabular.h"

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

/* ---- model.view.tabular / model.fit.tabular ---------------------------------------------- */

/* 20 samples: y = 1 exactly when f = a; z = 1 when f = a and g = u2; group g. */
static rlab_dataset *tab_dataset(int set_parts)
{
    static const char csv[] = "y,z,g,f\n"
                              "1,0,u1,a\n0,0,u1,b\n1,1,u2,a\n0,0,u2,b\n1,0,u3,a\n"
                              "0,0,u3,b\n1,1,u2,a\n0,0,u1,b\n1,0,u1,a\n0,0,u2,b\n"
                              "1,1,u2,a\n0,0,u3,b\n1,0,u1,a\n0,0,u2,b\n1,1,u2,a\n"
                              "0,0,u3,b\n1,0,u3,a\n0,0,u1,b\n1,1,u2,a\n0,0,u2,b\n";
    rlab_err err = {0};
    rlab_tab_spec sp;
    rlab_tab_spec_init(&sp);
    sp.header = 1;
    rlab_tabular *t = NULL;
    if (rlab_tab_spec_map(&sp, "y:label, z:label, g:group, f:cat", &err) ||
        rlab_tabular_load_buffer(csv, sizeof csv - 1, &sp, "tab.csv", &t, &err)) {
        CHECK_MSG(0, "tabular: %s", err.msg);
        return NULL;
    }
    if (set_parts) { /* by hand: train 0..11, valid 12..15, test 16..19 */
        static const int64_t lo[3] = {0, 12, 16}, n[3] = {12, 4, 4};
        for (int k = 0; k < 3; k++) {
            t->part_rows[k] = rlab_malloc((size_t)n[k] * sizeof(int64_t));
            t->part_n[k] = n[k];
            for (int64_t i = 0; i < n[k]; i++)
                t->part_rows[k][i] = lo[k] + i;
        }
    }
    rlab_dataset *ds = rlab_dataset_new("tab", &err);
    ds->tab = t;
    return ds;
}

static void t_view_tabular(void)
{
    rlab_err err = {0};
    rlab_dataset *ds = tab_dataset(1);
    rlab_view *v = NULL;
    CHECK_EQ_INT(rlab_view_new(ds, NULL, &v, &err), RLAB_OK);
    CHECK(v->tab == ds->tab);
    CHECK_EQ_INT((int)v->n_users, 3); /* groups u1 u2 u3 */
    CHECK_EQ_INT((int)v->n_items, 0);
    CHECK_EQ_INT((int)v->nrows[RLAB_VIEW_TRAIN], 12);
    CHECK_EQ_INT((int)v->nrows[RLAB_VIEW_VALID], 4);
    CHECK_EQ_INT((int)v->nrows[RLAB_VIEW_TEST], 4);
    CHECK_EQ_INT((int)v->rows[RLAB_VIEW_VALID][0], 12);
    CHECK_EQ_INT((int)v->rows[RLAB_VIEW_TEST][3], 19);
    CHECK_EQ_INT((int)v->train.n_users, 0); /* no interaction rows */
    rlab_view_free(v);
    /* a test file's rows: [14, 20) test; valid 0.25 of the first 14 at random (3 rows) */
    CHECK_EQ_INT(rlab_tabular_set_parts(ds->tab, 0.25, 0.0, 14, 5, &err), RLAB_OK);
    CHECK_EQ_INT(rlab_view_new(ds, NULL, &v, &err), RLAB_OK);
    CHECK_EQ_INT((int)v->nrows[RLAB_VIEW_TEST], 6);
    CHECK_EQ_INT((int)v->rows[RLAB_VIEW_TEST][0], 14);
    CHECK_EQ_INT((int)v->nrows[RLAB_VIEW_VALID], 3);
    CHECK_EQ_INT((int)v->nrows[RLAB_VIEW_TRAIN], 11);
    uint8_t seen[20] = {0};
    for (int w = 0; w < 3; w++)
        for (int64_t i = 0; i < v->nrows[w]; i++)
            seen[v->rows[w][i]]++;
    for (int i = 0; i < 20; i++)
        CHECK_MSG(seen[i] == 1, "row %d is in %d parts", i, seen[i]);
    CHECK_STR(ds->tab->part_desc, "test file; valid 0.25 random");
    CHECK_EQ_INT(rlab_tabular_set_parts(ds->tab, 0.1, 0.1, 21, 0, &err), RLAB_EINVAL);
    rlab_view_free(v);
    rlab_dataset_free(ds);
    /* no parts: the default 70/10/20 (random, seed 0: no times) */
    ds = tab_dataset(0);
    CHECK_EQ_INT(rlab_view_new(ds, NULL, &v, &err), RLAB_OK);
    CHECK_EQ_INT((int)v->nrows[RLAB_VIEW_TRAIN], 14);
    CHECK_EQ_INT((int)v->nrows[RLAB_VIEW_VALID], 2);
    CHECK_EQ_INT((int)v->nrows[RLAB_VIEW_TEST], 4);
    rlab_view_free(v);
    rlab_dataset_free(ds);
}

/* A logistic kind on one categorical field: the logit of label j is w[id of f][j], trained
 * by full-batch gradient descent on the mean BCE. */
typedef struct toy {
    float w[8][2];
    const rlab_view *v;
    rlab_model *m;
} toy;

static int toy_predict(const rlab_model *m, const rlab_tabular *t, const int64_t *rows, int64_t n,
                       float *out, rlab_err *err)
{
    (void)err;
    const toy *s = m->impl;
    const rlab_tab_field *f = &t->fields[rlab_tabular_field(t, "f")];
    for (int64_t i = 0; i < n; i++)
        for (int j = 0; j < t->nlabels; j++)
            out[i * t->nlabels + j] = 1.0f / (1.0f + expf(-s->w[f->ids[rows[i]]][j]));
    return RLAB_OK;
}

static int toy_score_all(const rlab_model *m, const rlab_query *q, int nq, float *out,
                         rlab_err *err)
{
    (void)m, (void)q, (void)nq, (void)out;
    return rlab_errf(err, RLAB_ESTATE, "toy scores samples");
}

static void toy_free(rlab_model *m) { rlab_free(m->impl); }

static const rlab_model_vt toy_vt = {
    .score_all = toy_score_all, .predict = toy_predict, .free = toy_free};

static int toy_begin(const rlab_fit *fit, void **state, rlab_err *err)
{
    toy *s = rlab_calloc(1, sizeof *s);
    if (!s)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    s->v = fit->view;
    s->m = rlab_model_new(&toy_vt, s, "toy", "toy", err);
    *state = s;
    return s->m ? RLAB_OK : err->code;
}

static int toy_step(void *state, int64_t i, double *loss, double *weight, double *parts,
                    rlab_err *err)
{
    (void)i, (void)parts;
    toy *s = state;
    const rlab_tabular *t = s->v->tab;
    const int64_t *rows = s->v->rows[RLAB_VIEW_TRAIN], n = s->v->nrows[RLAB_VIEW_TRAIN];
    float *p = rlab_malloc((size_t)n * 2 * sizeof *p);
    if (!p)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    toy_predict(s->m, t, rows, n, p, err);
    const rlab_tab_field *f = &t->fields[rlab_tabular_field(t, "f")];
    float g[8][2] = {{0}};
    double l = 0;
    for (int64_t r = 0; r < n; r++)
        for (int j = 0; j < 2; j++) {
            float y = t->labels[rows[r] * 2 + j], q = p[r * 2 + j];
            l -= y > 0.5f ? log((double)q) : log(1.0 - (double)q);
            g[f->ids[rows[r]]][j] += (q - y) / (float)n;
        }
    for (int k = 0; k < 8; k++)
        for (int j = 0; j < 2; j++)
            s->w[k][j] -= 2.0f * g[k][j];
    rlab_free(p);
    *loss = l / (double)(2 * n);
    *weight = 1;
    return RLAB_OK;
}

static rlab_model *toy_model(void *state) { return ((toy *)state)->m; }
static void toy_end(void *state) { rlab_model_release(((toy *)state)->m); }

static const rlab_fit_ops toy_ops = {
    .begin = toy_begin, .step = toy_step, .model = toy_model, .end = toy_end};

static void t_fit_tabular(void)
{
    rlab_err err = {0};
    rlab_dataset *ds = tab_dataset(1);
    rlab_view *v = NULL;
    rlab_view_new(ds, NULL, &v, &err);
    rlab_fit_opts o = opts_default();
    o.epochs = 5;
    o.eval_test = 1;
    snprintf(o.select, sizeof o.select, "auc");
    record rec = {0};
    rlab_fit fit = {.view = v, .opts = &o, .kind = "toy", .ud = &rec, .metric = rec_metric};
    rlab_fit_result res;
    rlab_model *m = rlab_fit_run(&toy_ops, &fit, &res, &err);
    CHECK_MSG(m != NULL, "fit: %s", err.msg);
    if (!m) {
        rlab_view_free(v);
        rlab_dataset_free(ds);
        return;
    }
    CHECK_STR(res.protocol, "ctr");
    CHECK_EQ_INT(res.n_metrics, 9); /* auc gauc logloss, then y.* and z.* */
    CHECK_STR(res.names[0], "auc");
    CHECK_STR(res.names[3], "y.auc");
    CHECK_STR(res.names[8], "z.logloss");
    CHECK(res.has_valid && res.has_test);
    CHECK(rec.train_loss[4] < rec.train_loss[0]);
    /* valid rows 12..15: y = 1 0 1 0 with f = a b a b: the a logit is the higher after any
     * step, so AUC(y) = 1; z = 0 0 1 0, the only positive has f = a, tied with row 12's
     * negative a: AUC(z) = (1 + 1 + 0.5) / 3 */
    CHECK_NEAR(res.valid[3], 1.0, 1e-12);
    CHECK_NEAR(res.valid[6], 2.5 / 3.0, 1e-12);
    CHECK_NEAR(res.valid[0], (1.0 + 2.5 / 3.0) / 2.0, 1e-12);
    rlab_ctr_result r;
    CHECK_EQ_INT(rlab_eval_ctr_model(m, v, RLAB_VIEW_TEST, &r, &err), RLAB_OK);
    CHECK_EQ_INT(r.ntasks, 2);
    CHECK_NEAR(r.auc[0], res.test[3], 1e-12);
    CHECK_NEAR(r.logloss[1], res.test[8], 1e-12);
    CHECK_NEAR(r.mean_auc, res.test[0], 1e-12);
    rlab_model_release(m);
    /* a valid part with one class (rows 1 3 5 7: y = z = 0): AUC undefined, every epoch is
     * kept as without validation and patience does not stop the run */
    rlab_view_free(v);
    static const int64_t one_class[4] = {1, 3, 5, 7};
    memcpy(ds->tab->part_rows[1], one_class, sizeof one_class);
    rlab_view_new(ds, NULL, &v, &err);
    fit.view = v;
    o.epochs = 4;
    o.patience = 1;
    m = rlab_fit_run(&toy_ops, &fit, &res, &err);
    CHECK_MSG(m != NULL, "fit: %s", err.msg);
    CHECK_EQ_INT(res.epochs_run, 4);
    CHECK_EQ_INT(res.best_epoch, 4);
    CHECK(isnan(res.valid[0]));
    rlab_model_release(m);
    /* a logloss selection is refused */
    snprintf(o.select, sizeof o.select, "logloss");
    m = rlab_fit_run(&toy_ops, &fit, &res, &err);
    CHECK(m == NULL);
    CHECK_EQ_INT(err.code, RLAB_EINVAL);
    CHECK_STR_CONTAINS(err.msg, "select=logloss is not a validation metric of a tabular model");
    rlab_view_free(v);
    rlab_dataset_free(ds);
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
    {"model.view.tabular", t_view_tabular},
    {"model.fit.tabular", t_fit_tabular},
    {NULL, NULL},
};

int main(int argc, char **argv) { return rlab_test_main(argc, argv, tests); }
