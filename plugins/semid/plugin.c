/*
 * plugins/semid/plugin.c: the semid plugin (reclab_semid.so): semantic-ID tokenizers as model
 * kinds, and the commands that read their IDs.
 *
 *   train rkmeans|brkmeans|rqvae data=D [levels=3] [codes=64] [field=value ...]
 *   semid.stats model=M             per level: utilisation, entropy, perplexity, collision
 *                                   before de-duplication, reconstruction error
 *   semid.export model=M [file=F]   the IDs as CSV (item,l1..lL,dedup), or as a result table
 *
 * Other plugins read the IDs by name through the plugin API: borrow the model
 * (rlab_ctx_model / rlab_models_get) and read its tensor "semid.codes" (I32 [n_items, L + 1])
 * with rlab_model_state + rlab_ckpt_tensor (model/model.h), or call semid.export without a
 * file through rlab_ctx_call and read the table "ids".
 */
#include "semid.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define SEMID_CONTENT_FIELDS                                                                       \
    RLAB_FIELD_INT(semid_cfg, levels, "3", 1, SEMID_MAX_LEVELS, "code levels L"),                  \
        RLAB_FIELD_INT(semid_cfg, codes, "64", 2, 65536, "codes per level K"),                     \
        RLAB_FIELD_INT(semid_cfg, iters, "25", 1, 10000,                                           \
                       "k-means iterations per level (rqvae: of the codebook init)"),              \
        RLAB_FIELD_INT(semid_cfg, tok_dim, "64", 0, 1 << 16,                                       \
                       "content vector: buckets of the categorical values (genres, attributes)"),  \
        RLAB_FIELD_INT(semid_cfg, text_dim, "64", 0, 1 << 16,                                      \
                       "content vector: TF-IDF buckets of the titles (0 = no text)"),              \
        RLAB_FIELD_FLOAT(semid_cfg, text_weight, "0.5", 0, 100,                                    \
                         "content vector: weight of the text block"),                              \
        RLAB_FIELD_STR(semid_cfg, cols, "",                                                        \
                       "content vector: item feature columns, comma-separated (\"\" = every "      \
                       "token list and text column)")

static const rlab_field km_fields[] = {SEMID_CONTENT_FIELDS, {0}};

#define SEMID_RQ_FIELDS(batch_help)                                                                \
    RLAB_FIELD_INT(semid_cfg, hidden, "128", 1, 1 << 16, "encoder / decoder hidden width"),        \
        RLAB_FIELD_INT(semid_cfg, latent, "32", 1, 1 << 16, "latent (quantised) size"),            \
        RLAB_FIELD_INT(semid_cfg, batch, "256", 1, 1 << 20, batch_help),                           \
        RLAB_FIELD_DOUBLE(semid_cfg, lr, "0.001", 0, 10, "Adam learning rate"),                    \
        RLAB_FIELD_FLOAT(semid_cfg, beta, "0.25", 0, 100, "commitment weight"),                    \
        RLAB_FIELD_BOOL(semid_cfg, restart, "true",                                                \
                        "restart dead codes at the end of every epoch")

static const rlab_field rq_fields[] = {
    SEMID_CONTENT_FIELDS, SEMID_RQ_FIELDS("items per step"), {0}};

static const char *const align_choices[] = {"joint", "two-stage", "none", NULL};

static const rlab_field das_fields[] = {
    SEMID_CONTENT_FIELDS,
    SEMID_RQ_FIELDS("training interactions per step (in-batch negatives of the alignments)"),
    RLAB_FIELD_CHOICE(semid_cfg, align, "joint", align_choices,
                      "joint: DAS one stage; two-stage: CF first, then the tokenizers aligned "
                      "to the frozen CF embeddings; none: no alignment (two RQ-VAEs)"),
    RLAB_FIELD_FLOAT(semid_cfg, alpha, "1", 0, 1000, "weight of L_cf"),
    RLAB_FIELD_FLOAT(semid_cfg, align_beta, "0.5", 0, 1000, "weight of L_align"),
    RLAB_FIELD_FLOAT(semid_cfg, temp, "0.1", 1e-4, 100, "InfoNCE temperature (cosine logits)"),
    RLAB_FIELD_FLOAT(semid_cfg, w_unbiased, "1", 0, 1000,
                     "L_cf: weight of the unbiased (interest . content) BCE"),
    RLAB_FIELD_FLOAT(semid_cfg, w_pop, "1", 0, 1000,
                     "L_cf: weight of the popularity / conformity supervision (log counts)"),
    RLAB_FIELD_FLOAT(semid_cfg, w_orth, "1", 0, 1000,
                     "L_cf: weight of the orthogonality penalty (interest/conformity, "
                     "content/popularity)"),
    RLAB_FIELD_INT(semid_cfg, cf_epochs, "0", 0, 100000,
                   "two-stage: passes of the CF stage (0 = epochs)"),
    RLAB_FIELD_INT(semid_cfg, steps, "0", 0, 1 << 30,
                   "steps per epoch (0 = every training interaction once)"),
    RLAB_FIELD_STR(semid_cfg, views, "123456",
                   "alignments: 1 z_u-pro_i, 2 int_u-z_i, 3 z_u-int_u, 4 z_i-pro_i, 5 z_u-z_u' "
                   "(co-clicked item), 6 z_i-z_i' (same user)"),
    RLAB_FIELD_STR(semid_cfg, user_cols, "",
                   "user content: demographic columns, comma-separated (\"\" = categories of "
                   "at most 64 values and numbers)"),
    {0}};

static const rlab_kv das_defaults[] = {{"epochs", "20"}, {"eval_every", "0"}, {0, 0}};

/* Tokenizers are not selected by a ranking metric: no validation during training (the
 * content recommender's test metrics are still reported). */
static const rlab_kv rq_defaults[] = {{"epochs", "100"}, {"eval_every", "0"}, {0, 0}};

static const rlab_model_kind semid_kinds[] = {
    {.name = "rkmeans",
     .summary = "residual k-means semantic IDs over item content",
     .config = km_fields,
     .config_size = sizeof(semid_cfg),
     .flags = RLAB_KIND_ONESHOT,
     .fit = &semid_rkmeans_fit,
     .restore = semid_rkmeans_restore},
    {.name = "brkmeans",
     .summary = "balanced residual k-means semantic IDs (OneRec): clusters of ceil(N/K) items",
     .config = km_fields,
     .config_size = sizeof(semid_cfg),
     .flags = RLAB_KIND_ONESHOT,
     .fit = &semid_brkmeans_fit,
     .restore = semid_rkmeans_restore},
    {.name = "rqvae",
     .summary = "RQ-VAE semantic IDs: MLP encoder, residual quantiser (STE), MLP decoder",
     .config = rq_fields,
     .config_size = sizeof(semid_cfg),
     .defaults = rq_defaults,
     .fit = &semid_rqvae_fit,
     .restore = semid_rqvae_restore},
    {.name = "das",
     .summary = "DAS dual-aligned semantic IDs: user and item RQ-VAEs, debiased CF two-tower, "
                "six InfoNCE alignments (align=joint|two-stage|none)",
     .config = das_fields,
     .config_size = sizeof(semid_cfg),
     .defaults = das_defaults,
     .fit = &semid_das_fit,
     .restore = semid_das_restore},
    {0}};

/* ---- commands ---------------------------------------------------------------------------- */

static const semid_tok *tok_arg(rlab_ctx *ctx, const rlab_args *args, const rlab_model **mp)
{
    const rlab_model *m = rlab_ctx_model(ctx, rlab_args_str(args, "model"));
    if (!m)
        return NULL;
    const semid_tok *t = semid_tok_of(m);
    if (!t)
        rlab_ctx_errorf(ctx, RLAB_EINVAL,
                        "model '%s' is a %s model, not a semantic-ID tokenizer (rkmeans, "
                        "brkmeans, rqvae, das)",
                        m->name, m->kind);
    *mp = m;
    return t;
}

static int stats_run(rlab_ctx *ctx, const rlab_args *args)
{
    const rlab_model *m = NULL;
    const semid_tok *t = tok_arg(ctx, args, &m);
    if (!t)
        return rlab_ctx_err(ctx)->code;
    semid_level_stats st[SEMID_MAX_LEVELS];
    int rc = semid_stats(t->codes, t->n_items, t->L + 1, t->L, t->K, st, rlab_ctx_err(ctx));
    if (rc)
        return rc;
    rlab_table *tb = rlab_ctx_result_table(ctx, "levels", 8,
                                           (const char *const[]){"level", "used", "util", "entropy",
                                                                 "perplexity", "collision",
                                                                 "max_bucket", "recon"});
    if (!tb)
        return RLAB_ENOMEM;
    for (int l = 0; l < t->L; l++) {
        rlab_table_add_row(tb, "iifffflf", l + 1, st[l].used, st[l].util, st[l].entropy,
                           st[l].perplexity, st[l].collision, (int64_t)st[l].max_bucket,
                           (double)t->recon[l]);
        rlab_ctx_printf(ctx,
                        "level %d: %d/%d codes (util %.3f), entropy %.3f nats, perplexity %.1f, "
                        "collision %.4f, largest prefix group %lld, recon %.5f",
                        l + 1, st[l].used, t->K, st[l].util, st[l].entropy, st[l].perplexity,
                        st[l].collision, (long long)st[l].max_bucket, (double)t->recon[l]);
    }
    rlab_ctx_result_int(ctx, "levels", t->L);
    rlab_ctx_result_int(ctx, "codes", t->K);
    rlab_ctx_result_int(ctx, "items", t->n_items);
    rlab_ctx_result_float(ctx, "collision", st[t->L - 1].collision);
    rlab_ctx_result_int(ctx, "max_dedup", t->max_dedup);
    return RLAB_OK;
}

static int export_run(rlab_ctx *ctx, const rlab_args *args)
{
    const rlab_model *m = NULL;
    const semid_tok *t = tok_arg(ctx, args, &m);
    if (!t)
        return rlab_ctx_err(ctx)->code;
    const char *file = rlab_args_str(args, "file");
    /* external item ids from the model's dataset when it is loaded, else "#<index>" */
    rlab_host *h = rlab_ctx_host(ctx);
    rlab_dataset *ds = m->dataset[0] ? rlab_host_dataset_get(h, m->dataset) : NULL;
    if (ds && rlab_vocab_size(&ds->items) != t->n_items) {
        rlab_host_dataset_release(h, ds);
        ds = NULL;
    }
    const int L = t->L;
    int rc = RLAB_OK;
    if (file && file[0]) {
        FILE *fp = fopen(file, "w");
        if (!fp)
            rc = rlab_ctx_errorf(ctx, RLAB_EIO, "%s: cannot open: %s", file, strerror(errno));
        for (int l = 0; !rc && l < L; l++)
            fprintf(fp, l ? ",l%d" : "item,l%d", l + 1);
        if (!rc)
            fprintf(fp, ",dedup\n");
        for (int32_t i = 0; !rc && i < t->n_items; i++) {
            if (ds)
                fprintf(fp, "%s", rlab_vocab_name(&ds->items, i));
            else
                fprintf(fp, "#%d", (int)i);
            for (int l = 0; l <= L; l++)
                fprintf(fp, ",%d", (int)t->codes[(size_t)i * (L + 1) + l]);
            fputc('\n', fp);
        }
        if (fp && fclose(fp) != 0 && !rc)
            rc = rlab_ctx_errorf(ctx, RLAB_EIO, "%s: write failed: %s", file, strerror(errno));
        if (!rc)
            rlab_ctx_printf(ctx, "wrote %d semantic IDs (%d levels + dedup digit) to %s",
                            (int)t->n_items, L, file);
    } else {
        const char *cols[SEMID_MAX_LEVELS + 3];
        char names[SEMID_MAX_LEVELS][16];
        cols[0] = "item";
        cols[1] = "index";
        for (int l = 0; l < L; l++) {
            snprintf(names[l], sizeof names[l], "l%d", l + 1);
            cols[2 + l] = names[l];
        }
        cols[2 + L] = "dedup";
        rlab_table *tb = rlab_ctx_result_table(ctx, "ids", L + 3, cols);
        rlab_cell row[SEMID_MAX_LEVELS + 3];
        char idx[16];
        for (int32_t i = 0; tb && !rc && i < t->n_items; i++) {
            snprintf(idx, sizeof idx, "#%d", (int)i);
            row[0] =
                (rlab_cell){.type = RLAB_CELL_TEXT, .s = ds ? rlab_vocab_name(&ds->items, i) : idx};
            row[1] = (rlab_cell){.type = RLAB_CELL_INT, .i = i};
            for (int l = 0; l <= L; l++)
                row[2 + l] =
                    (rlab_cell){.type = RLAB_CELL_INT, .i = t->codes[(size_t)i * (L + 1) + l]};
            rc = rlab_table_add_cells(tb, row);
        }
        if (!tb)
            rc = RLAB_ENOMEM;
    }
    if (ds)
        rlab_host_dataset_release(h, ds);
    if (!rc) {
        rlab_ctx_result_int(ctx, "items", t->n_items);
        rlab_ctx_result_int(ctx, "levels", L);
    }
    return rc;
}

/* semid.encode: content -> codes of a dataset's items under a trained tokenizer. */
static int encode_run(rlab_ctx *ctx, const rlab_args *args)
{
    const rlab_model *m = NULL;
    const semid_tok *t = tok_arg(ctx, args, &m);
    if (!t)
        return rlab_ctx_err(ctx)->code;
    rlab_err *err = rlab_ctx_err(ctx);
    /* the content options the tokenizer was trained with (its stored config) */
    const rlab_field *fields = t->kind == SEMID_DAS     ? das_fields
                               : t->kind == SEMID_RQVAE ? rq_fields
                                                        : km_fields;
    semid_cfg c;
    memset(&c, 0, sizeof c);
    int rc = rlab_config_defaults(fields, NULL, &c, err);
    if (!rc && m->config)
        rc = rlab_config_from_json(fields, &c, m->config, 0, err);
    if (rc)
        return rc;
    const char *dname = rlab_args_str(args, "data");
    rlab_host *h = rlab_ctx_host(ctx);
    rlab_dataset *ds = rlab_host_dataset_get(h, dname);
    if (!ds)
        return rlab_ctx_errorf(ctx, RLAB_ENOTFOUND, "dataset '%s' not found", dname);
    rlab_content_opts o = rlab_content_defaults();
    o.tok_dim = c.tok_dim;
    o.text_dim = c.text_dim;
    o.text_weight = c.text_weight;
    o.cols = c.cols;
    float *X = NULL;
    int32_t D = 0, *codes = NULL;
    rc = rlab_item_content(ds, &o, &X, &D, err);
    const int32_t N = rc ? 0 : rlab_vocab_size(&ds->items);
    const int L = t->L;
    if (!rc && D != t->D)
        rc = rlab_ctx_errorf(ctx, RLAB_EINVAL,
                             "semid.encode: the content vectors of '%s' have %d dims, the "
                             "tokenizer '%s' was trained on %d",
                             dname, (int)D, m->name, t->D);
    if (!rc && !(codes = rlab_malloc((size_t)N * (size_t)(L + 1) * sizeof *codes + 1)))
        rc = rlab_ctx_errorf(ctx, RLAB_ENOMEM, "out of memory");
    int32_t *lv = NULL;
    if (!rc && !(lv = rlab_malloc((size_t)N * (size_t)L * sizeof *lv + 1)))
        rc = rlab_ctx_errorf(ctx, RLAB_ENOMEM, "out of memory");
    const double t0 = rlab_now();
    if (!rc)
        rc = semid_encode(t, X, N, lv, err);
    const double secs = rlab_now() - t0;
    for (int32_t i = 0; !rc && i < N; i++)
        for (int l = 0; l < L; l++)
            codes[(size_t)i * (L + 1) + l] = lv[(size_t)i * L + l];
    int32_t mx = 0;
    if (!rc && (mx = semid_dedup(codes, N, L)) < 0)
        rc = rlab_ctx_errorf(ctx, RLAB_ENOMEM, "out of memory");
    const char *file = rlab_args_str(args, "file");
    if (!rc && file && file[0]) {
        FILE *fp = fopen(file, "w");
        if (!fp)
            rc = rlab_ctx_errorf(ctx, RLAB_EIO, "%s: cannot open: %s", file, strerror(errno));
        for (int l = 0; !rc && l < L; l++)
            fprintf(fp, l ? ",l%d" : "item,l%d", l + 1);
        if (!rc)
            fprintf(fp, ",dedup\n");
        for (int32_t i = 0; !rc && i < N; i++) {
            fprintf(fp, "%s", rlab_vocab_name(&ds->items, i));
            for (int l = 0; l <= L; l++)
                fprintf(fp, ",%d", (int)codes[(size_t)i * (L + 1) + l]);
            fputc('\n', fp);
        }
        if (fp && fclose(fp) != 0 && !rc)
            rc = rlab_ctx_errorf(ctx, RLAB_EIO, "%s: write failed: %s", file, strerror(errno));
    } else if (!rc) {
        const char *cols[SEMID_MAX_LEVELS + 2];
        char names[SEMID_MAX_LEVELS][16];
        cols[0] = "item";
        for (int l = 0; l < L; l++) {
            snprintf(names[l], sizeof names[l], "l%d", l + 1);
            cols[1 + l] = names[l];
        }
        cols[1 + L] = "dedup";
        rlab_table *tb = rlab_ctx_result_table(ctx, "ids", L + 2, cols);
        rlab_cell row[SEMID_MAX_LEVELS + 2];
        for (int32_t i = 0; tb && !rc && i < N; i++) {
            row[0] = (rlab_cell){.type = RLAB_CELL_TEXT, .s = rlab_vocab_name(&ds->items, i)};
            for (int l = 0; l <= L; l++)
                row[1 + l] =
                    (rlab_cell){.type = RLAB_CELL_INT, .i = codes[(size_t)i * (L + 1) + l]};
            rc = rlab_table_add_cells(tb, row);
        }
        if (!tb)
            rc = RLAB_ENOMEM;
    }
    if (!rc) {
        rlab_ctx_printf(ctx,
                        "encoded %d items of '%s' with %s '%s' (%d levels; dedup digit among "
                        "these items, max %d) in %.3f s",
                        (int)N, dname, m->kind, m->name, L, (int)mx, secs);
        rlab_ctx_result_int(ctx, "items", N);
        rlab_ctx_result_int(ctx, "max_dedup", mx);
        rlab_ctx_result_float(ctx, "items_per_second", secs > 0 ? (double)N / secs : 0.0);
    }
    rlab_free(X);
    rlab_free(codes);
    rlab_free(lv);
    rlab_host_dataset_release(h, ds);
    return rc;
}

static const rlab_arg encode_args[] = {
    {.name = "model",
     .type = RLAB_ARG_MODEL,
     .flags = RLAB_ARGF_REQUIRED,
     .help = "a trained tokenizer (rkmeans, brkmeans, rqvae, das)"},
    {.name = "data",
     .type = RLAB_ARG_DATASET,
     .flags = RLAB_ARGF_REQUIRED,
     .help = "dataset whose items to encode (item features of the same columns)"},
    {.name = "file",
     .type = RLAB_ARG_PATH,
     .help = "CSV to write (item,l1..lL,dedup); none = the result table 'ids'"},
    {0}};

static const rlab_arg stats_args[] = {{.name = "model",
                                       .type = RLAB_ARG_MODEL,
                                       .flags = RLAB_ARGF_REQUIRED,
                                       .help = "a tokenizer (rkmeans, brkmeans, rqvae, das)"},
                                      {0}};
static const rlab_arg export_args[] = {
    {.name = "model",
     .type = RLAB_ARG_MODEL,
     .flags = RLAB_ARGF_REQUIRED,
     .help = "a tokenizer (rkmeans, brkmeans, rqvae, das)"},
    {.name = "file",
     .type = RLAB_ARG_PATH,
     .help = "CSV to write (item,l1..lL,dedup); none = the result table 'ids'"},
    {0}};

static const rlab_arg ctr_args[] = {
    {.name = "model",
     .type = RLAB_ARG_MODEL,
     .flags = RLAB_ARGF_REQUIRED,
     .help = "a tokenizer (rkmeans, brkmeans, rqvae, das)"},
    {.name = "data", .type = RLAB_ARG_STRING, .def = "", .help = "dataset (default: the model's)"},
    {.name = "epochs",
     .type = RLAB_ARG_INT,
     .def = "5",
     .min = 1,
     .max = 1000,
     .help = "SGD passes"},
    {.name = "lr",
     .type = RLAB_ARG_FLOAT,
     .def = "0.05",
     .min = 0,
     .max = 10,
     .help = "SGD learning rate"},
    {.name = "l2",
     .type = RLAB_ARG_FLOAT,
     .def = "1e-5",
     .min = 0,
     .max = 10,
     .help = "L2 weight on the touched weights"},
    {.name = "like",
     .type = RLAB_ARG_FLOAT,
     .def = "4",
     .min = -1e9,
     .max = 1e9,
     .help = "ratings: label 1 when rating >= like"},
    {.name = "cold",
     .type = RLAB_ARG_INT,
     .def = "5",
     .min = 1,
     .max = 1 << 30,
     .help = "cold slice: items with fewer training interactions"},
    {.name = "seed",
     .type = RLAB_ARG_INT,
     .def = "1",
     .flags = RLAB_ARGF_INT64,
     .help = "SGD order and negative sampling"},
    {0}};

static const rlab_cmd semid_cmds[] = {
    {.name = "stats",
     .args = stats_args,
     .help = "Per-level statistics of a tokenizer's semantic IDs.\n"
             "Utilisation (codes used / K), entropy of the code distribution (nats) and\n"
             "perplexity, collision rate of the code prefix up to the level before\n"
             "de-duplication (1 - distinct prefixes / items), the largest prefix group, and\n"
             "the reconstruction error (content space) from levels 1..l.",
     .flags = RLAB_CMD_READONLY,
     .run = stats_run},
    {.name = "export",
     .args = export_args,
     .help = "Write a tokenizer's semantic IDs as CSV, or return them as the table 'ids'.\n"
             "Columns: item (the dataset's item id, or #index when the dataset is not\n"
             "loaded), the L codes, the de-duplication digit.",
     .flags = RLAB_CMD_READONLY,
     .run = export_run},
    {.name = "encode",
     .args = encode_args,
     .help = "Semantic IDs of a dataset's items from their content, with a trained tokenizer.\n"
             "The content vectors are built with the tokenizer's own settings (tok_dim,\n"
             "text_dim, text_weight, cols) and must have its dims; each item then gets the\n"
             "codes training would assign (encoder, then the nearest code of each level's\n"
             "residual) and a de-duplication digit among the encoded items. Exact value\n"
             "buckets follow the dataset's own value order: new items must come with the\n"
             "same feature columns (hashed buckets are stable across datasets).",
     .flags = RLAB_CMD_JOB | RLAB_CMD_READONLY,
     .run = encode_run},
    {.name = "ctr",
     .args = ctr_args,
     .help = "Downstream CTR AUC with vs without a tokenizer's semantic-ID features.\n"
             "Logistic regression (bias + user + item one-hot; + one weight per item code\n"
             "prefix, and per user code prefix for DAS) trained on the leave-one-out train\n"
             "interactions, scored on the held-out ones (valid + test targets). Labels:\n"
             "rating >= like when the data has ratings, else positives with one sampled\n"
             "negative each. AUC overall and on the cold-item slice (items with fewer than\n"
             "`cold` training interactions).",
     .flags = RLAB_CMD_JOB | RLAB_CMD_READONLY,
     .run = semid_ctr_run},
    {0}};

RLAB_PLUGIN(semid)
{
    RLAB_PLUGIN_INIT(out);
    out->name = "semid";
    out->version = "0.1.0";
    out->summary = "semantic IDs: residual k-means, balanced residual k-means, RQ-VAE, DAS";
    out->models = semid_kinds;
    out->commands = semid_cmds;
    return RLAB_OK;
}
