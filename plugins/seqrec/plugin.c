/*
 * plugins/seqrec/plugin.c: the seqrec plugin descriptor and its commands.
 *
 *   seqrec.train model=mqsa data=Beauty.txt epochs=200 ...   (job: progress per epoch)
 *   seqrec.eval model=NAME [data=...] [neg=100]               (full ranking unless neg > 0)
 *   seqrec.recommend model=NAME user=ID k=10
 *
 * data= names a dataset loaded in the session, or a file / folder that is loaded (and added
 * to the session under its name), or "demo" (the built-in demo world). Every run stores its
 * per-epoch metrics (rlab_ctx_metric: train loss, valid/test HR and NDCG at 5/10/20 with the
 * protocol label) and one row of table seqrec_results with the config and the selected
 * epoch's test metrics.
 */
#include "host/plugin.h"
#include "seqrec.h"

#include "data/loaders.h"
#include "data/world.h"
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const model_choices[] = {"sasrec", "mqsa", NULL};
static const char *const loss_choices[] = {"ce", "bce", NULL};
static const char *const ln_choices[] = {"pre", "post", NULL};
static const char *const branch_choices[] = {"both", "short", "long", NULL};
static const char *const init_choices[] = {"normal", "xavier", NULL};

/* ---- dataset resolution ------------------------------------------------------------------ */

/* The dataset named `spec` in the session, else loaded from the path, else the demo world.
 * *held = 1 when it came from the session (release with rlab_host_dataset_release). */
static rlab_dataset *resolve_data(rlab_ctx *ctx, const char *spec, int *held)
{
    rlab_host *h = rlab_ctx_host(ctx);
    *held = 0;
    rlab_dataset *ds = rlab_host_dataset_get(h, spec);
    if (ds) {
        *held = 1;
        return ds;
    }
    rlab_err *err = rlab_ctx_err(ctx);
    if (strcmp(spec, "demo") == 0) {
        rlab_world *w = NULL;
        if (rlab_world_demo(&w, &ds, err))
            return NULL;
        rlab_world_free(w);
        return ds;
    }
    if (rlab_data_load(spec, NULL, NULL, &ds, err))
        return NULL;
    return ds;
}

static void release_data(rlab_ctx *ctx, rlab_dataset *ds, int held)
{
    if (held)
        rlab_host_dataset_release(rlab_ctx_host(ctx), ds);
    else
        rlab_dataset_free(ds);
}

/* ---- seqrec.train ------------------------------------------------------------------------- */

typedef struct train_ud {
    rlab_ctx *ctx;
    int epochs;
    const char *protocol;
} train_ud;

static int hook_cancelled(void *ud) { return rlab_ctx_cancelled(((train_ud *)ud)->ctx); }

static int hook_epoch(void *ud, const seqrec_epoch_info *in)
{
    train_ud *u = ud;
    rlab_ctx *ctx = u->ctx;
    rlab_metric ms[8];
    int n = 0;
    ms[n++] = (rlab_metric){"loss", in->loss};
    ms[n++] = (rlab_metric){"loss_rec", in->loss_rec};
    if (in->loss_kd > 0)
        ms[n++] = (rlab_metric){"loss_kd", in->loss_kd};
    if (in->evaluated) {
        ms[n++] = (rlab_metric){"valid.ndcg@10", in->valid[4]};
        ms[n++] = (rlab_metric){"valid.ndcg@20", in->valid[5]};
        ms[n++] = (rlab_metric){"valid.hr@10", in->valid[1]};
    }
    ms[n++] = (rlab_metric){"epoch_s", in->train_seconds};
    rlab_ctx_progress(ctx, in->epoch, in->epochs, "epoch", n, ms);
    int rc = rlab_ctx_metric(ctx, in->epoch, "train", "loss", NULL, in->loss);
    if (!rc)
        rc = rlab_ctx_metric(ctx, in->epoch, "train", "loss_rec", NULL, in->loss_rec);
    if (!rc && in->loss_kd > 0)
        rc = rlab_ctx_metric(ctx, in->epoch, "train", "loss_kd", NULL, in->loss_kd);
    if (!rc)
        rc = rlab_ctx_metric(ctx, in->epoch, "train", "epoch_seconds", NULL, in->train_seconds);
    for (int m = 0; !rc && in->evaluated && m < SEQREC_NM; m++)
        rc = rlab_ctx_metric(ctx, in->epoch, "valid", seqrec_metric_names[m], in->protocol,
                             in->valid[m]);
    for (int m = 0; !rc && in->improved && m < SEQREC_NM; m++)
        rc = rlab_ctx_metric(ctx, in->epoch, "test", seqrec_metric_names[m], in->protocol,
                             in->test[m]);
    if (in->evaluated)
        rlab_ctx_printf(ctx,
                        "epoch %d/%d %.1fs loss %.4f | valid ndcg@10 %.4f ndcg@20 %.4f hr@10 %.4f"
                        "%s",
                        in->epoch, in->epochs, in->train_seconds, in->loss, in->valid[4],
                        in->valid[5], in->valid[1], in->improved ? " (best)" : "");
    return rc;
}

static int parse_config(const rlab_args *a, seqrec_config *c)
{
    int model = rlab_args_choice(a, "model") == 1 ? SEQREC_MQSA : SEQREC_SASREC;
    *c = seqrec_config_defaults(model);
#define INT_ARG(k, f)                                                                              \
    if (rlab_args_given(a, k))                                                                     \
    c->f = (int)rlab_args_int(a, k)
#define FLT_ARG(k, f)                                                                              \
    if (rlab_args_given(a, k))                                                                     \
    c->f = (float)rlab_args_float(a, k)
    INT_ARG("epochs", epochs);
    INT_ARG("batch", batch);
    INT_ARG("dim", dim);
    INT_ARG("blocks", blocks);
    INT_ARG("heads", heads);
    INT_ARG("maxlen", maxlen);
    FLT_ARG("dropout", dropout);
    FLT_ARG("lr", lr);
    FLT_ARG("l2", l2);
    INT_ARG("L", L);
    FLT_ARG("alpha", alpha);
    FLT_ARG("lambda_kd", lambda_kd);
    FLT_ARG("tau", tau);
    INT_ARG("patience", patience);
    INT_ARG("eval_every", eval_every);
    INT_ARG("threads", threads);
    INT_ARG("neg", n_neg_eval);
    INT_ARG("chunk", chunk);
    FLT_ARG("ln_eps", ln_eps);
#undef INT_ARG
#undef FLT_ARG
    if (rlab_args_given(a, "seed"))
        c->seed = (uint64_t)rlab_args_int(a, "seed");
    if (rlab_args_given(a, "loss"))
        c->loss = rlab_args_choice(a, "loss") == 1 ? SEQREC_LOSS_BCE : SEQREC_LOSS_CE;
    if (rlab_args_given(a, "ln"))
        c->ln = rlab_args_choice(a, "ln") == 1 ? SEQREC_LN_POST : SEQREC_LN_PRE;
    if (rlab_args_given(a, "ted"))
        c->ted = rlab_args_bool(a, "ted");
    if (rlab_args_given(a, "branches"))
        c->branches = rlab_args_choice(a, "branches");
    if (rlab_args_given(a, "padlogit"))
        c->pad_logit = rlab_args_bool(a, "padlogit");
    if (rlab_args_given(a, "init"))
        c->init = rlab_args_choice(a, "init");
    return RLAB_OK;
}

static void store_result(rlab_ctx *ctx, const char *name, const char *dsname, const char *cfgs,
                         const seqrec_config *c, const seqrec_result *r)
{
    rlab_db *db = rlab_ctx_db(ctx);
    if (!db)
        return;
    rlab_err e = {0};
    rlab_db_stmt *s = rlab_db_prepare(
        db,
        "INSERT INTO seqrec_results(run_id, name, model, dataset, config, protocol, best_epoch,"
        " epochs_run, epoch_seconds, valid_ndcg20, hr5, hr10, hr20, ndcg5, ndcg10, ndcg20)"
        " VALUES(:run, :name, :model, :data, :cfg, :proto, :best, :ep, :es, :v, :h5, :h10,"
        " :h20, :n5, :n10, :n20)",
        &e);
    if (!s) {
        rlab_ctx_printf(ctx, "warning: cannot store the result row: %s", e.msg);
        return;
    }
    rlab_db_bind_int(s, ":run", rlab_ctx_run_id(ctx), &e);
    rlab_db_bind_text(s, ":name", name, &e);
    rlab_db_bind_text(s, ":model", c->model == SEQREC_MQSA ? "mqsa" : "sasrec", &e);
    rlab_db_bind_text(s, ":data", dsname, &e);
    rlab_db_bind_text(s, ":cfg", cfgs, &e);
    rlab_db_bind_text(s, ":proto", r->protocol, &e);
    rlab_db_bind_int(s, ":best", r->best_epoch, &e);
    rlab_db_bind_int(s, ":ep", r->epochs_run, &e);
    rlab_db_bind_double(s, ":es", r->mean_epoch_seconds, &e);
    rlab_db_bind_double(s, ":v", r->best_valid[5], &e);
    static const char *const k[SEQREC_NM] = {":h5", ":h10", ":h20", ":n5", ":n10", ":n20"};
    for (int m = 0; m < SEQREC_NM; m++)
        rlab_db_bind_double(s, k[m], r->best_test[m], &e);
    int rc = rlab_db_step(s, &e);
    rlab_db_finalize(s);
    if (rc != RLAB_OK && rc != RLAB_DB_ROW)
        rlab_ctx_printf(ctx, "warning: cannot store the result row: %s", e.msg);
}

static int train_run(rlab_ctx *ctx, const rlab_args *args)
{
    seqrec_config c;
    parse_config(args, &c);
    rlab_err *err = rlab_ctx_err(ctx);
    if (seqrec_config_check(&c, err))
        return err->code;
    int held = 0;
    const char *spec = rlab_args_str(args, "data");
    rlab_dataset *ds = resolve_data(ctx, spec, &held);
    if (!ds)
        return err->code ? err->code : RLAB_ENOTFOUND;
    seqrec_data d;
    int rc = seqrec_data_build(ds, c.maxlen, &d, err);
    char dsname[64];
    snprintf(dsname, sizeof dsname, "%s", ds->name);
    release_data(ctx, ds, held);
    if (rc)
        return rc;
    seqrec_net *net = seqrec_net_new(&c, d.n_items, err);
    if (!net) {
        seqrec_data_clear(&d);
        return err->code;
    }
    char cfgs[400];
    seqrec_config_str(&c, cfgs, sizeof cfgs);
    rlab_ctx_printf(ctx, "%s on %s: %d users, %d items", cfgs, dsname, d.n_users, d.n_items);
    rlab_ctx_run_describe(ctx, c.model == SEQREC_MQSA ? "mqsa" : "sasrec", dsname);
    train_ud ud = {.ctx = ctx, .epochs = c.epochs};
    seqrec_hooks hk = {.ud = &ud, .cancelled = hook_cancelled, .on_epoch = hook_epoch};
    seqrec_result res;
    rc = seqrec_fit(net, &d, &hk, &res, err);
    if (rc && rc != RLAB_ECANCELED) {
        seqrec_net_free(net);
        seqrec_data_clear(&d);
        return rc;
    }
    const char *name = rlab_args_str(args, "name");
    char defname[64];
    if (!name || !*name) {
        snprintf(defname, sizeof defname, "%s", c.model == SEQREC_MQSA ? "mqsa" : "sasrec");
        name = defname;
    }
    store_result(ctx, name, dsname, cfgs, &c, &res);
    rlab_ctx_result_int(ctx, "best_epoch", res.best_epoch);
    rlab_ctx_result_int(ctx, "epochs_run", res.epochs_run);
    rlab_ctx_result_float(ctx, "epoch_seconds", res.mean_epoch_seconds);
    rlab_ctx_result_str(ctx, "protocol", res.protocol);
    rlab_ctx_result_str(ctx, "config", cfgs);
    rlab_table *t =
        rlab_ctx_result_table(ctx, "metrics", 3, (const char *const[]){"metric", "valid", "test"});
    for (int m = 0; t && m < SEQREC_NM; m++)
        rlab_table_add_row(t, "sff", seqrec_metric_names[m], res.best_valid[m], res.best_test[m]);
    for (int m = 0; m < SEQREC_NM; m++) {
        char k[32];
        snprintf(k, sizeof k, "test.%s", seqrec_metric_names[m]);
        rlab_ctx_result_float(ctx, k, res.best_test[m]);
    }
    rlab_ctx_printf(
        ctx, "selected epoch %d (valid ndcg@20 %.4f): test hr@10 %.4f ndcg@10 %.4f (%s)",
        res.best_epoch, res.best_valid[5], res.best_test[1], res.best_test[4], res.protocol);
    rlab_model *m = seqrec_model_wrap(net, &d.all, name, dsname, err);
    seqrec_data_clear(&d);
    if (!m)
        return err->code;
    int rc2 = rlab_ctx_register_model(ctx, m);
    if (rc2)
        return rc2;
    rlab_ctx_result_model(ctx, "model", name);
    return rc; /* RLAB_ECANCELED keeps the best-so-far model registered */
}

/* ---- seqrec.eval ------------------------------------------------------------------------- */

static int eval_run(rlab_ctx *ctx, const rlab_args *args)
{
    rlab_err *err = rlab_ctx_err(ctx);
    const rlab_model *m = rlab_ctx_model(ctx, rlab_args_str(args, "model"));
    if (!m)
        return RLAB_ENOTFOUND;
    if (strcmp(m->kind, "sasrec") != 0 && strcmp(m->kind, "mqsa") != 0)
        return rlab_ctx_errorf(ctx, RLAB_EINVAL, "model '%s' is a %s, not a seqrec model", m->name,
                               m->kind);
    seqrec_net *net = seqrec_model_net(m);
    const char *spec = rlab_args_given(args, "data") ? rlab_args_str(args, "data") : m->dataset;
    int held = 0;
    rlab_dataset *ds = resolve_data(ctx, spec, &held);
    if (!ds)
        return err->code ? err->code : RLAB_ENOTFOUND;
    seqrec_data d;
    int rc = seqrec_data_build(ds, net->cfg.maxlen, &d, err);
    release_data(ctx, ds, held);
    if (rc)
        return rc;
    if (d.n_items != net->n_items) {
        seqrec_data_clear(&d);
        return rlab_ctx_errorf(ctx, RLAB_EINVAL, "dataset has %d items, the model %d", d.n_items,
                               net->n_items);
    }
    /* a copy of the net's config with the requested protocol (the net itself is shared) */
    seqrec_net view = *net;
    view.cfg.n_neg_eval = (int)rlab_args_int(args, "neg");
    rlab_table *t =
        rlab_ctx_result_table(ctx, "metrics", 3, (const char *const[]){"metric", "valid", "test"});
    double v[2][SEQREC_NM];
    char proto[32] = "";
    for (int w = 0; w < 2 && !rc; w++) {
        rlab_eval_result *r = seqrec_evaluate(&view, &d, w, err);
        if (!r) {
            rc = err->code;
            break;
        }
        snprintf(proto, sizeof proto, "%s", r->protocol);
        for (int k = 0; k < SEQREC_NM; k++) {
            int i = rlab_eval_result_find(r, seqrec_metric_names[k]);
            v[w][k] = i >= 0 ? r->mean[i] : 0.0;
            rlab_ctx_metric(ctx, 0, w ? "test" : "valid", seqrec_metric_names[k], r->protocol,
                            v[w][k]);
        }
        rlab_eval_result_free(r);
    }
    seqrec_data_clear(&d);
    if (rc)
        return rc;
    for (int k = 0; t && k < SEQREC_NM; k++)
        rlab_table_add_row(t, "sff", seqrec_metric_names[k], v[0][k], v[1][k]);
    rlab_ctx_result_str(ctx, "protocol", proto);
    rlab_ctx_printf(ctx, "%s (%s): valid ndcg@10 %.4f, test hr@10 %.4f ndcg@10 %.4f", m->name,
                    proto, v[0][4], v[1][1], v[1][4]);
    return RLAB_OK;
}

/* ---- seqrec.recommend ---------------------------------------------------------------------- */

/* The dense index of a user named in a command: "#N" is the index N itself; anything else is
 * the user's id in the model's dataset (when that dataset is loaded), falling back to a plain
 * number as an index for models whose dataset is not in the session. -1 with an error. */
static int64_t resolve_user(rlab_ctx *ctx, const rlab_model *m, const rlab_dataset *ds,
                            const char *s)
{
    char *end = NULL;
    if (s[0] == '#') {
        long long v = strtoll(s + 1, &end, 10);
        if (end != s + 1 && !*end && v >= 0 && v < m->n_users)
            return v;
        rlab_ctx_errorf(ctx, RLAB_EINVAL, "user %s: no such index (the model has %d users)", s,
                        (int)m->n_users);
        return -1;
    }
    if (ds) {
        int32_t u = rlab_vocab_find(&ds->users, s, strlen(s));
        if (u >= 0 && u < m->n_users)
            return u;
        rlab_ctx_errorf(ctx, RLAB_ENOTFOUND, "user '%s' is not in dataset '%s'", s, ds->name);
        return -1;
    }
    long long v = strtoll(s, &end, 10);
    if (end != s && !*end && v >= 0 && v < m->n_users)
        return v;
    rlab_ctx_errorf(ctx, RLAB_ENOTFOUND,
                    "user '%s': dataset '%s' of model '%s' is not loaded, so only dense indices "
                    "(#N, N < %d) can be used",
                    s, m->dataset, m->name, (int)m->n_users);
    return -1;
}

static int recommend_run(rlab_ctx *ctx, const rlab_args *args)
{
    rlab_err *err = rlab_ctx_err(ctx);
    const rlab_model *m = rlab_ctx_model(ctx, rlab_args_str(args, "model"));
    if (!m)
        return RLAB_ENOTFOUND;
    /* the model's dataset, when loaded, names users and items; a miss is not an error */
    const rlab_dataset *ds = NULL;
    if (m->dataset[0]) {
        rlab_dataset *d = rlab_host_dataset_get(rlab_ctx_host(ctx), m->dataset);
        if (d) {
            rlab_host_dataset_release(rlab_ctx_host(ctx), d);
            ds = rlab_ctx_dataset(ctx, m->dataset); /* held until the command ends */
        }
    }
    const char *uname = rlab_args_str(args, "user");
    int64_t user = resolve_user(ctx, m, ds, uname);
    if (user < 0)
        return rlab_ctx_err(ctx)->code;
    int k = (int)rlab_args_int(args, "k");
    if (k > m->n_items)
        k = m->n_items;
    rlab_query q = {.user = (int32_t)user};
    /* exclude the items the user has already seen (the stored history) */
    uint8_t *mask = rlab_ctx_alloc(ctx, (size_t)m->n_items);
    int32_t *top = rlab_ctx_alloc(ctx, (size_t)k * sizeof(int32_t));
    float *sc = rlab_ctx_alloc(ctx, (size_t)k * sizeof(float));
    if (!mask || !top || !sc)
        return rlab_ctx_errorf(ctx, RLAB_ENOMEM, "out of memory");
    memset(mask, 0, (size_t)m->n_items);
    if (strcmp(m->kind, "sasrec") == 0 || strcmp(m->kind, "mqsa") == 0) {
        const int32_t *hist = NULL;
        int64_t nh = seqrec_model_user_hist(m, (int32_t)user, &hist);
        for (int64_t j = 0; j < nh; j++)
            mask[hist[j]] = 1;
    }
    int rc = rlab_model_topk(m, &q, 1, k, rlab_args_bool(args, "seen") ? NULL : mask, top, sc, err);
    if (rc)
        return rc;
    const rlab_feat_col *titles = ds ? rlab_feats_find(&ds->item_feats, "title") : NULL;
    if (titles && titles->kind != RLAB_FEAT_TEXT)
        titles = NULL;
    rlab_table *t = rlab_ctx_result_table(ctx, "items", 4,
                                          (const char *const[]){"rank", "item", "score", "title"});
    for (int i = 0; t && i < k; i++) {
        const char *id = ds ? rlab_vocab_name(&ds->items, top[i]) : NULL;
        char buf[24];
        if (!id) {
            snprintf(buf, sizeof buf, "#%d", (int)top[i]);
            id = buf;
        }
        const char *title = titles && titles->text[top[i]] ? titles->text[top[i]] : "";
        rlab_table_add_row(t, "isfs", i + 1, id, (double)sc[i], title);
    }
    rlab_ctx_printf(ctx, "top-%d for user %s from %s", k, uname, m->name);
    return RLAB_OK;
}

/* ---- model kinds -------------------------------------------------------------------------- */

static rlab_model *kind_load(rlab_host *host, const char *path, const char *meta, rlab_err *err)
{
    (void)host;
    rlab_model *m = seqrec_model_load_file(path, err);
    const char *dd = meta ? strstr(meta, "\"dataset\"") : NULL;
    if (m && dd && sscanf(dd, "\"dataset\": \"%63[^\"]\"", m->dataset) != 1 &&
        sscanf(dd, "\"dataset\":\"%63[^\"]\"", m->dataset) != 1)
        m->dataset[0] = '\0';
    return m;
}

/* ---- tables ----------------------------------------------------------------------------- */

static const rlab_arg train_args[] = {
    {.name = "model",
     .type = RLAB_ARG_CHOICE,
     .def = "mqsa",
     .choices = model_choices,
     .help = "sasrec or mqsa (MQSA-TED)"},
    {.name = "data",
     .type = RLAB_ARG_STRING,
     .flags = RLAB_ARGF_REQUIRED,
     .help = "dataset name in the session, a file/folder to load, or demo"},
    {.name = "name",
     .type = RLAB_ARG_STRING,
     .help = "name of the trained model (default: the model kind)"},
    {.name = "epochs",
     .type = RLAB_ARG_INT,
     .min = 1,
     .flags = RLAB_ARGF_MIN,
     .help = "epochs (default 200)"},
    {.name = "batch",
     .type = RLAB_ARG_INT,
     .min = 1,
     .flags = RLAB_ARGF_MIN,
     .help = "batch size (mqsa 256, sasrec 128)"},
    {.name = "dim", .type = RLAB_ARG_INT, .min = 1, .flags = RLAB_ARGF_MIN, .help = "width d (64)"},
    {.name = "blocks",
     .type = RLAB_ARG_INT,
     .min = 1,
     .max = SEQREC_MAX_BLOCKS,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
     .help = "attention blocks (mqsa 1, sasrec 2)"},
    {.name = "heads", .type = RLAB_ARG_INT, .min = 1, .flags = RLAB_ARGF_MIN, .help = "heads (1)"},
    {.name = "maxlen",
     .type = RLAB_ARG_INT,
     .min = 2,
     .flags = RLAB_ARGF_MIN,
     .help = "max sequence length (50)"},
    {.name = "dropout",
     .type = RLAB_ARG_FLOAT,
     .min = 0,
     .max = 0.99,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
     .help = "dropout (0.5)"},
    {.name = "lr",
     .type = RLAB_ARG_FLOAT,
     .min = 0,
     .flags = RLAB_ARGF_MIN,
     .help = "Adam learning rate (1e-3)"},
    {.name = "l2",
     .type = RLAB_ARG_FLOAT,
     .min = 0,
     .flags = RLAB_ARGF_MIN,
     .help = "L2 on all parameters (mqsa 1e-4, sasrec 0)"},
    {.name = "loss",
     .type = RLAB_ARG_CHOICE,
     .choices = loss_choices,
     .help = "ce (full softmax) or bce (1 sampled negative; SASRec's original)"},
    {.name = "ln",
     .type = RLAB_ARG_CHOICE,
     .choices = ln_choices,
     .help = "pre (original code) or post layer norm"},
    {.name = "ln_eps",
     .type = RLAB_ARG_FLOAT,
     .min = 0,
     .flags = RLAB_ARGF_MIN,
     .help = "LN epsilon (mqsa 1e-24, sasrec 1e-8)"},
    {.name = "L",
     .type = RLAB_ARG_INT,
     .min = 1,
     .flags = RLAB_ARGF_MIN,
     .help = "L-query window (3)"},
    {.name = "alpha",
     .type = RLAB_ARG_FLOAT,
     .min = 0,
     .max = 1,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
     .help = "short-branch logit weight (0.5)"},
    {.name = "lambda_kd",
     .type = RLAB_ARG_FLOAT,
     .min = 0,
     .flags = RLAB_ARGF_MIN,
     .help = "TED weight (0.1)"},
    {.name = "tau",
     .type = RLAB_ARG_FLOAT,
     .min = 1e-6,
     .flags = RLAB_ARGF_MIN,
     .help = "TED temperature (0.1)"},
    {.name = "ted", .type = RLAB_ARG_BOOL, .help = "TED distillation (mqsa on)"},
    {.name = "branches",
     .type = RLAB_ARG_CHOICE,
     .choices = branch_choices,
     .help = "mqsa branches: both, short (no L-query), long"},
    {.name = "padlogit",
     .type = RLAB_ARG_BOOL,
     .help = "include the padding column in the CE softmax (mqsa on, as the official code)"},
    {.name = "init",
     .type = RLAB_ARG_CHOICE,
     .choices = init_choices,
     .help = "embedding init normal(0.01) or xavier"},
    {.name = "patience",
     .type = RLAB_ARG_INT,
     .min = 0,
     .flags = RLAB_ARGF_MIN,
     .help = "early stopping: evaluations without a better valid NDCG@20 (20; 0 = off)"},
    {.name = "eval_every",
     .type = RLAB_ARG_INT,
     .min = 1,
     .flags = RLAB_ARGF_MIN,
     .help = "evaluate every k epochs (1)"},
    {.name = "neg",
     .type = RLAB_ARG_INT,
     .min = 0,
     .flags = RLAB_ARGF_MIN,
     .help = "0 = full ranking; N = sampled 1+N protocol (labelled)"},
    {.name = "chunk",
     .type = RLAB_ARG_INT,
     .min = 1,
     .flags = RLAB_ARGF_MIN,
     .help = "softmax rows per chunk (512)"},
    {.name = "seed", .type = RLAB_ARG_INT, .min = 0, .flags = RLAB_ARGF_MIN, .help = "seed (2023)"},
    {.name = "threads",
     .type = RLAB_ARG_INT,
     .min = 0,
     .flags = RLAB_ARGF_MIN,
     .help = "threads (0 = default)"},
    {0}};

static const rlab_arg eval_args[] = {{.name = "model",
                                      .type = RLAB_ARG_MODEL,
                                      .flags = RLAB_ARGF_REQUIRED,
                                      .help = "a sasrec/mqsa model"},
                                     {.name = "data",
                                      .type = RLAB_ARG_STRING,
                                      .help = "dataset (default: the one it was trained on)"},
                                     {.name = "neg",
                                      .type = RLAB_ARG_INT,
                                      .def = "0",
                                      .min = 0,
                                      .flags = RLAB_ARGF_MIN,
                                      .help = "0 = full ranking; N = sampled 1+N (labelled)"},
                                     {0}};

static const rlab_arg rec_args[] = {
    {.name = "model",
     .type = RLAB_ARG_MODEL,
     .flags = RLAB_ARGF_REQUIRED,
     .help = "a registered model"},
    {.name = "user",
     .type = RLAB_ARG_STRING,
     .flags = RLAB_ARGF_REQUIRED,
     .help = "user id as in the dataset (e.g. u17, or 17 for MovieLens), or #N for the dense "
             "index N"},
    {.name = "k",
     .type = RLAB_ARG_INT,
     .def = "10",
     .min = 1,
     .flags = RLAB_ARGF_MIN,
     .help = "list length"},
    {.name = "seen", .type = RLAB_ARG_BOOL, .def = "false", .help = "allow already-seen items"},
    {0}};

static const rlab_cmd seqrec_cmds[] = {
    {.name = "train",
     .args = train_args,
     .flags = RLAB_CMD_JOB,
     .run = train_run,
     .help = "Train SASRec or MQSA-TED (leave-one-out, full ranking, selection by valid NDCG@20).\n"
             "Reports loss and validation metrics per epoch; stores per-epoch metrics and a\n"
             "seqrec_results row; registers the model of the selected epoch."},
    {.name = "eval",
     .args = eval_args,
     .flags = RLAB_CMD_JOB,
     .run = eval_run,
     .help = "Evaluate a seqrec model on valid and test (full ranking unless neg > 0)."},
    {.name = "recommend",
     .args = rec_args,
     .flags = RLAB_CMD_READONLY,
     .run = recommend_run,
     .help = "Top-k items for a user after the whole stored history."},
    {0}};

static const rlab_model_kind seqrec_kinds[] = {
    {.name = "sasrec", .summary = "SASRec (Kang & McAuley 2018)", .load = kind_load},
    {.name = "mqsa", .summary = "MQSA-TED (Zhu et al., WSDM 2024)", .load = kind_load},
    {0}};

static const rlab_migration seqrec_schema[] = {
    {.sql = "CREATE TABLE seqrec_results(id INTEGER PRIMARY KEY, run_id INTEGER, name TEXT,"
            " model TEXT, dataset TEXT, config TEXT, protocol TEXT, best_epoch INTEGER,"
            " epochs_run INTEGER, epoch_seconds REAL, valid_ndcg20 REAL, hr5 REAL, hr10 REAL,"
            " hr20 REAL, ndcg5 REAL, ndcg10 REAL, ndcg20 REAL)",
     .note = "one row per seqrec.train run: config and the selected epoch's test metrics"},
    {0}};

static const rlab_view_kind seqrec_views[] = {
    {.name = "results",
     .title = "seqrec results",
     .kind = "table",
     .source = "SELECT name, model, dataset, best_epoch, hr10, ndcg10, hr20, ndcg20, protocol"
               " FROM seqrec_results ORDER BY id"},
    {0}};

RLAB_PLUGIN(seqrec)
{
    RLAB_PLUGIN_INIT(out);
    out->name = "seqrec";
    out->version = "0.1.0";
    out->summary = "SASRec and MQSA-TED sequential recommenders";
    out->commands = seqrec_cmds;
    out->models = seqrec_kinds;
    out->schema = seqrec_schema;
    out->views = seqrec_views;
    return RLAB_OK;
}
