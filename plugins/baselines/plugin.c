/*
 * plugins/baselines/plugin.c: the baselines plugin (reclab_baselines.so): the reference
 * recommenders every experiment compares against, and the first real plugin of the ABI.
 *
 *   baselines.train model=pop|itemknn|bprmf data=<dataset> [name=...] [split=loo|none] ...
 *       trains on the leave-one-out train part (split=loo, default) or on every interaction
 *       (split=none) and registers the model under name (default: the model kind)
 *   baselines.eval model=<name> [data=<dataset>] [split=valid|test] [k=10]
 *       full-ranking HR / NDCG / Recall / MRR at 5, 10, 20 (and k) of ANY registered model on
 *       the leave-one-out valid or test item, with the MQSA-TED masking rule; metrics go to
 *       the run with protocol "full" and come back as the table "metrics"
 *
 * Lua: reclab.baselines.train{model="bprmf", data="ml-100k", epochs=30},
 *      reclab.baselines.eval{model="bprmf", data="ml-100k"}.
 */
#include "baselines.h"

#include <stdio.h>
#include <string.h>

static const char *const model_choices[] = {"pop", "itemknn", "bprmf", NULL};
static const char *const split_choices[] = {"loo", "none", NULL};
static const char *const opt_choices[] = {"adamw", "sgd", NULL};
static const char *const eval_choices[] = {"valid", "test", NULL};

/* ---- baselines.train ------------------------------------------------------------------ */

static int train_run(rlab_ctx *ctx, const rlab_args *args)
{
    const char *kind = rlab_args_str(args, "model");
    const char *dname = rlab_args_str(args, "data");
    const char *name = rlab_args_str(args, "name");
    if (!name || !name[0])
        name = kind;
    const rlab_dataset *ds = rlab_ctx_dataset(ctx, dname);
    if (!ds)
        return RLAB_ENOTFOUND;
    bl_train t = {
        .ctx = ctx,
        .dataset = ds->name,
        .k = (int32_t)rlab_args_int(args, "k"),
        .dim = (int32_t)rlab_args_int(args, "dim"),
        .epochs = (int32_t)rlab_args_int(args, "epochs"),
        .batch = (int32_t)rlab_args_int(args, "batch"),
        .neg = (int32_t)rlab_args_int(args, "neg"),
        .eval_every = (int32_t)rlab_args_int(args, "eval_every"),
        .opt = rlab_args_choice(args, "opt") == 1 ? BL_OPT_SGD : BL_OPT_ADAMW,
        .keep_best = rlab_args_bool(args, "keep_best"),
        .lr = rlab_args_float(args, "lr"),
        .reg = rlab_args_float(args, "reg"),
        .wd = rlab_args_float(args, "weight_decay"),
        .seed = (uint64_t)rlab_args_int(args, "seed"),
    };
    int split = rlab_args_choice(args, "split") == 1 ? BL_SPLIT_NONE : BL_SPLIT_LOO;
    bl_data *d = NULL;
    int rc = bl_data_new(ds, split, &d, rlab_ctx_err(ctx));
    if (rc)
        return rc;
    t.data = d;
    double t0 = rlab_now();
    rlab_model *m = NULL;
    int which = rlab_args_choice(args, "model");
    if (which == 0)
        m = bl_pop_train(&t, rlab_ctx_err(ctx));
    else if (which == 1)
        m = bl_knn_train(&t, rlab_ctx_err(ctx));
    else
        m = bl_bpr_train(&t, rlab_ctx_err(ctx));
    double secs = rlab_now() - t0;
    bl_data_free(d);
    if (!m)
        return rlab_ctx_err(ctx)->code ? rlab_ctx_err(ctx)->code : RLAB_ENOMEM;
    snprintf(m->name, sizeof m->name, "%s", name);
    char desc[192];
    rlab_model_describe(m, desc, sizeof desc);
    if ((rc = rlab_ctx_register_model(ctx, m)))
        return rc;
    rlab_ctx_printf(ctx, "model '%s' trained in %.2f s: %s", name, secs, desc);
    rlab_ctx_result_model(ctx, "model", name);
    rlab_ctx_result_float(ctx, "seconds", secs);
    rlab_ctx_result_str(ctx, "describe", desc);
    return RLAB_OK;
}

/* ---- baselines.eval --------------------------------------------------------------------- */

static int eval_cancel(void *ud) { return rlab_ctx_cancelled(ud); }

static int eval_run(rlab_ctx *ctx, const rlab_args *args)
{
    const char *mname = rlab_args_str(args, "model");
    const rlab_model *m = rlab_ctx_model(ctx, mname);
    if (!m)
        return RLAB_ENOTFOUND;
    const char *dname = rlab_args_str(args, "data");
    if (!dname || !dname[0]) {
        if (!m->dataset[0])
            return rlab_ctx_errorf(ctx, RLAB_EINVAL,
                                   "model '%s' does not name its dataset: give data=<dataset>",
                                   mname);
        dname = m->dataset;
    }
    const rlab_dataset *ds = rlab_ctx_dataset(ctx, dname);
    if (!ds)
        return RLAB_ENOTFOUND;
    int which = rlab_args_choice(args, "split") == 0 ? BL_EVAL_VALID : BL_EVAL_TEST;
    const char *sname = which == BL_EVAL_VALID ? "valid" : "test";
    int k = (int)rlab_args_int(args, "k");
    int ks[4] = {5, 10, 20}, nks = 3;
    if (k != 5 && k != 10 && k != 20)
        ks[nks++] = k;
    bl_data *d = NULL;
    int rc = bl_data_new(ds, BL_SPLIT_LOO, &d, rlab_ctx_err(ctx));
    if (rc)
        return rc;
    rlab_eval_result *r = bl_evaluate(m, d, which, ks, nks, eval_cancel, ctx, rlab_ctx_err(ctx));
    bl_data_free(d);
    if (!r)
        return rlab_ctx_err(ctx)->code;
    /* sort the cut-offs for the table (k may be anywhere) */
    for (int a = 1; a < nks; a++)
        for (int b = a; b > 0 && ks[b] < ks[b - 1]; b--) {
            int x = ks[b];
            ks[b] = ks[b - 1];
            ks[b - 1] = x;
        }
    static const char *const mets[] = {"hr", "ndcg", "recall", "mrr"};
    rlab_table *tab = rlab_ctx_result_table(
        ctx, "metrics", 5, (const char *const[]){"k", "hr", "ndcg", "recall", "mrr"});
    for (int c = 0; c < nks && rc == RLAB_OK; c++) {
        double v[4];
        for (int j = 0; j < 4; j++) {
            char nm[32];
            snprintf(nm, sizeof nm, "%s@%d", mets[j], ks[c]);
            int idx = rlab_eval_result_find(r, nm);
            v[j] = idx >= 0 ? r->mean[idx] : 0.0;
            if ((rc = rlab_ctx_metric(ctx, 0, sname, nm, r->protocol, v[j])))
                break;
        }
        if (rc == RLAB_OK && tab)
            rc = rlab_table_add_row(tab, "iffff", ks[c], v[0], v[1], v[2], v[3]);
    }
    if (rc == RLAB_OK) {
        char nm[32];
        snprintf(nm, sizeof nm, "hr@%d", k);
        double hr = r->mean[rlab_eval_result_find(r, nm)];
        snprintf(nm, sizeof nm, "ndcg@%d", k);
        double ndcg = r->mean[rlab_eval_result_find(r, nm)];
        rlab_ctx_printf(ctx, "%s on %s, %s item (%s ranking, %lld users): hr@%d %.4f  ndcg@%d %.4f",
                        mname, ds->name, sname, r->protocol, (long long)r->n_users, k, hr, k, ndcg);
        rlab_ctx_result_str(ctx, "protocol", r->protocol);
        rlab_ctx_result_int(ctx, "users", r->n_users);
        rlab_ctx_result_str(ctx, "split", sname);
        rlab_ctx_result_model(ctx, "model", mname);
    }
    rlab_eval_result_free(r);
    return rc;
}

/* ---- declarations ----------------------------------------------------------------------- */

static const rlab_arg train_args[] = {
    {.name = "model",
     .type = RLAB_ARG_CHOICE,
     .choices = model_choices,
     .flags = RLAB_ARGF_REQUIRED,
     .help = "pop (popularity), itemknn (item cosine kNN) or bprmf (BPR matrix factorisation)"},
    {.name = "data",
     .type = RLAB_ARG_DATASET,
     .flags = RLAB_ARGF_REQUIRED,
     .help = "loaded dataset to train on"},
    {.name = "name",
     .type = RLAB_ARG_MODEL,
     .flags = RLAB_ARGF_NEW,
     .help = "name to register the model under (default: the model kind; replaces a model "
             "of that name)"},
    {.name = "split",
     .type = RLAB_ARG_CHOICE,
     .choices = split_choices,
     .def = "loo",
     .help = "loo: train on the leave-one-out train part (honest valid/test); none: on every "
             "interaction"},
    {.name = "k",
     .type = RLAB_ARG_INT,
     .def = "100",
     .min = 1,
     .flags = RLAB_ARGF_MIN,
     .help = "itemknn: neighbours kept per item"},
    {.name = "dim",
     .type = RLAB_ARG_INT,
     .def = "64",
     .min = 1,
     .max = 4096,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
     .help = "bprmf: embedding size"},
    {.name = "epochs",
     .type = RLAB_ARG_INT,
     .def = "50",
     .min = 1,
     .max = 100000,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
     .help = "bprmf: passes over the training interactions"},
    {.name = "batch",
     .type = RLAB_ARG_INT,
     .def = "1024",
     .min = 1,
     .max = 1 << 20,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
     .help = "bprmf: positives per update"},
    {.name = "lr",
     .type = RLAB_ARG_FLOAT,
     .def = "0.005",
     .min = 0,
     .max = 10,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
     .help = "bprmf: learning rate"},
    {.name = "reg",
     .type = RLAB_ARG_FLOAT,
     .def = "0.01",
     .min = 0,
     .flags = RLAB_ARGF_MIN,
     .help = "bprmf: L2 penalty on the embedding rows of each triple"},
    {.name = "weight_decay",
     .type = RLAB_ARG_FLOAT,
     .def = "0",
     .min = 0,
     .flags = RLAB_ARGF_MIN,
     .help = "bprmf: decoupled weight decay (AdamW's weight_decay; with sgd, the same "
             "shrinkage)"},
    {.name = "neg",
     .type = RLAB_ARG_INT,
     .def = "1",
     .min = 1,
     .max = 1000,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
     .help = "bprmf: sampled negatives per positive (never an item of the user's training "
             "history)"},
    {.name = "opt",
     .type = RLAB_ARG_CHOICE,
     .choices = opt_choices,
     .def = "adamw",
     .help = "bprmf: optimiser, sparse (only the rows of each batch move); sgd follows the "
             "batch-mean gradient and needs a far larger lr than adamw"},
    {.name = "eval_every",
     .type = RLAB_ARG_INT,
     .def = "5",
     .min = 0,
     .flags = RLAB_ARGF_MIN,
     .help = "bprmf: full-ranking valid HR@10 / NDCG@10 every n epochs (0 = never; split=loo "
             "only)"},
    {.name = "keep_best",
     .type = RLAB_ARG_BOOL,
     .def = "true",
     .help = "bprmf: keep the parameters of the epoch with the best valid NDCG@10"},
    {.name = "seed",
     .type = RLAB_ARG_INT,
     .def = "42",
     .min = 0,
     .flags = RLAB_ARGF_MIN,
     .help = "random seed (initialisation, shuffling, negatives)"},
    {0}};

static const rlab_arg eval_args[] = {
    {.name = "model",
     .type = RLAB_ARG_MODEL,
     .flags = RLAB_ARGF_REQUIRED,
     .help = "registered model to evaluate (any plugin's)"},
    {.name = "data",
     .type = RLAB_ARG_DATASET,
     .help = "dataset whose leave-one-out split is ranked (default: the model's dataset)"},
    {.name = "split",
     .type = RLAB_ARG_CHOICE,
     .choices = eval_choices,
     .def = "test",
     .help = "valid: rank each user's second-last item, train items masked; test: the last "
             "item, train + valid items masked"},
    {.name = "k",
     .type = RLAB_ARG_INT,
     .def = "10",
     .min = 1,
     .max = 10000,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
     .help = "cut-off of the summary line (metrics at 5, 10, 20 and k are all stored)"},
    {0}};

static const rlab_cmd baselines_cmds[] = {
    {.name = "train",
     .args = train_args,
     .flags = RLAB_CMD_JOB,
     .run = train_run,
     .help = "Train Pop, ItemKNN or BPR-MF on a dataset and register the model.\n"
             "pop: training-interaction counts. itemknn: cosine similarity of the binary item "
             "columns, k neighbours per item, score = sum of the similarities from the user's "
             "history. bprmf: user/item embeddings + item bias trained with sampled BPR "
             "(history-excluding negatives) and sparse AdamW; validates every eval_every "
             "epochs (full ranking) and keeps the best epoch.\n"
             "Reports per-epoch loss (metric train/loss) and valid hr@10 / ndcg@10."},
    {.name = "eval",
     .args = eval_args,
     .flags = RLAB_CMD_JOB,
     .run = eval_run,
     .help = "Full-ranking leave-one-out evaluation of a registered model.\n"
             "Ranks the valid or test item of every user against all items not in the "
             "history (valid: train items masked; test: train + valid items masked, the "
             "valid item joins the history). Stores hr, ndcg, recall, mrr at 5/10/20 (and k) "
             "with protocol \"full\" and returns them as the table \"metrics\"."},
    {0}};

static const rlab_model_kind baselines_kinds[] = {
    {.name = "pop", .summary = "most popular items (training counts)", .load = bl_pop_load},
    {.name = "itemknn", .summary = "item-based cosine kNN", .load = bl_knn_load},
    {.name = "bprmf", .summary = "BPR matrix factorisation with item bias", .load = bl_bpr_load},
    {0}};

RLAB_PLUGIN(baselines)
{
    RLAB_PLUGIN_INIT(out);
    out->name = "baselines";
    out->version = "1.0.0";
    out->summary = "Pop, ItemKNN and BPR-MF reference recommenders with full-ranking eval";
    out->commands = baselines_cmds;
    out->models = baselines_kinds;
    return RLAB_OK;
}
