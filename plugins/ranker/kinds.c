/*
 * plugins/ranker/kinds.c: infnet, mmoe, dcnv2 and sharedbottom as host model kinds
 * (RLAB_KIND_TABULAR). The host provides the verbs: `train infnet data=D ...` runs the core
 * loop (model/fit.h) over the tabular branch of the data view (the table's fixed parts),
 * validates by the mean valid AUC over tasks (select=auc), keeps the best epoch and reports
 * per-task test AUC / GAUC / log loss; `eval`, `save`, `load` and `runs` work as for any
 * model. The steps are rk_trainer's (net.c), the same code rk_fit runs.
 *
 * A saved model holds its parameters, the numeric fields' standardisation
 * ("ranker.num_mean" / "ranker.num_std") and the layout of the table it was built for (meta
 * "ranker.schema", rk_schema_text): restore rebuilds the layout from it, so a model loads
 * without its table; `eval` then checks that the table it is given has that layout.
 */
#include "ranker.h"

#include "model/fit.h"
#include "tensor/checkpoint.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- config schemas ---------------------------------------------------------------------- */
/* rk_cfg without kind, epochs, patience and seed: those are the loop's (rlab_fit_fields). */
#define RK_COMMON_FIELDS                                                                           \
    RLAB_FIELD_INT(rk_cfg, dim, "16", 2, 512, "embedding size d"),                                 \
        RLAB_FIELD_INT(rk_cfg, hidden, "64", 1, 4096, "MLP width (towers, experts, deep part)"),   \
        RLAB_FIELD_INT(rk_cfg, batch, "256", 1, 65536, "samples per step"),                        \
        RLAB_FIELD_FLOAT(rk_cfg, lr, "0.001", 0, 10, "Adam learning rate"),                        \
        RLAB_FIELD_FLOAT(rk_cfg, l2, "0", 0, 1, "L2 on every parameter (Adam)"),                   \
        RLAB_FIELD_FLOAT(rk_cfg, dropout, "0", 0, 0.9, "dropout on MLP hidden layers"),            \
        RLAB_FIELD_STR(rk_cfg, task, "", "one label to train on (single-task); empty = all"),      \
        RLAB_FIELD_INT(rk_cfg, max_seq, "20", 1, 1000, "behaviour sequence: the last N items")

static const rlab_field infnet_fields[] = {
    RK_COMMON_FIELDS,
    RLAB_FIELD_INT(rk_cfg, layers, "2", 1, 16, "alternating heterogeneous / homogeneous blocks"),
    RLAB_FIELD_INT(rk_cfg, proxies, "4", 1, 64,
                   "categorical proxies, and sequence proxies per sequence"),
    RLAB_FIELD_INT(rk_cfg, shared_tasks, "2", 0, 64,
                   "shared task tokens (0 = none, task tokens ungated)"),
    RLAB_FIELD_INT(rk_cfg, heads, "2", 1, 64, "attention heads (divide dim)"),
    RLAB_FIELD_BOOL(rk_cfg, hetero, "true", "heterogeneous flow (cross-attention)"),
    RLAB_FIELD_BOOL(rk_cfg, homo, "true", "homogeneous flow (proxy gated units)"),
    {0}};
static const rlab_field mmoe_fields[] = {
    RK_COMMON_FIELDS, RLAB_FIELD_INT(rk_cfg, experts, "4", 1, 64, "experts"), {0}};
static const rlab_field dcnv2_fields[] = {
    RK_COMMON_FIELDS, RLAB_FIELD_INT(rk_cfg, cross_layers, "2", 1, 16, "cross layers"), {0}};
static const rlab_field sharedbottom_fields[] = {RK_COMMON_FIELDS, {0}};

/* The loop's defaults for these kinds: rk_fit's (10 epochs, patience 3, seed 1) and the
 * mean valid AUC as the selection metric. */
static const rlab_kv rk_defaults[] = {{"epochs", "10"},  {"patience", "3"},   {"seed", "1"},
                                      {"select", "auc"}, {"eval_every", "1"}, {0, 0}};

/* A kind's rk_cfg: the fields its schema does not set keep rk_fields' defaults. */
static int full_cfg(int kind, const rk_cfg *given, const rlab_field *schema, rk_cfg *c,
                    rlab_err *err)
{
    if (rk_cfg_defaults(kind, c, err))
        return err->code;
    for (const rlab_field *fd = schema; fd->name; fd++) {
        /* the field's bytes (a schema records a size for strings only) */
        size_t n = fd->type == RLAB_F_STR      ? fd->size
                   : fd->type == RLAB_F_I64    ? sizeof(int64_t)
                   : fd->type == RLAB_F_FLOAT  ? sizeof(float)
                   : fd->type == RLAB_F_DOUBLE ? sizeof(double)
                                               : sizeof(int);
        memcpy((char *)c + fd->offset, (const char *)given + fd->offset, n);
    }
    c->kind = kind;
    return RLAB_OK;
}

static int kind_index(const char *name)
{
    for (int i = 0; rk_kind_names[i]; i++)
        if (name && strcmp(name, rk_kind_names[i]) == 0)
            return i;
    return -1;
}

static const rlab_field *const kind_schema[RK_NKINDS] = {infnet_fields, mmoe_fields, dcnv2_fields,
                                                         sharedbottom_fields};

/* ---- the model the host holds -------------------------------------------------------------- */

typedef struct rk_host {
    rk_model *m;
    char *schema; /* rk_schema_text of the table it was built for */
} rk_host;

static int rk_score_all(const rlab_model *hm, const rlab_query *q, int nq, float *out,
                        rlab_err *err)
{
    (void)q, (void)nq, (void)out;
    return rlab_errf(err, RLAB_ESTATE, "model '%s' (%s) scores samples, not items", hm->name,
                     hm->kind);
}

/* out [n][t->nlabels]: the model's tasks' probabilities, NAN for the labels it does not
 * predict. rk_predict keeps its scratch in a tape of its own: safe from several threads. */
static int rk_vt_predict(const rlab_model *hm, const rlab_tabular *t, const int64_t *rows,
                         int64_t n, float *out, rlab_err *err)
{
    rk_model *m = ((const rk_host *)hm->impl)->m;
    int rc = rk_model_fits(m, t, err);
    if (rc)
        return rc;
    const int N = rk_model_ntasks(m), L = t->nlabels;
    float *p = rlab_malloc(((size_t)n + 1) * (size_t)N * sizeof *p);
    if (!p)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    rc = rk_predict(m, t, rows, n, p, err);
    for (int64_t i = 0; rc == RLAB_OK && i < n; i++) {
        for (int j = 0; j < L; j++)
            out[i * L + j] = NAN;
        for (int k = 0; k < N; k++)
            out[i * L + rlab_tabular_label(t, rk_model_task_name(m, k))] = p[i * N + k];
    }
    rlab_free(p);
    return rc;
}

static int rk_vt_tensors(const rlab_model *hm, rlab_ckpt *ck, rlab_err *err)
{
    const rk_host *h = hm->impl;
    int rc = rlab_ckpt_add_params(ck, rk_model_params(h->m), NULL, err);
    for (int w = 0; w < 2 && rc == RLAB_OK; w++) {
        int nn = 0;
        const float *st = rk_model_num_stats(h->m, w, &nn);
        int64_t sh[1] = {nn};
        if (nn)
            rc = rlab_ckpt_add(ck, w ? "ranker.num_std" : "ranker.num_mean", RLAB_DT_F32, 1, sh, st,
                               err);
    }
    return rc ? rc : rlab_ckpt_set_meta(ck, "ranker.schema", h->schema, err);
}

static void rk_vt_describe(const rlab_model *hm, char *buf, size_t size)
{
    rk_model *m = ((const rk_host *)hm->impl)->m;
    const rk_cfg *c = rk_model_cfg(m);
    snprintf(buf, size, "%s, %d task%s%s%s%s, d=%d, %lld parameters%s%s", rk_kind_names[c->kind],
             rk_model_ntasks(m), rk_model_ntasks(m) == 1 ? "" : "s", c->task[0] ? " (" : "",
             c->task, c->task[0] ? ")" : "", c->dim, (long long)rk_model_nparams(m),
             hm->dataset[0] ? " on " : "", hm->dataset);
}

static void rk_vt_free(rlab_model *hm)
{
    rk_host *h = hm->impl;
    if (!h)
        return;
    rk_model_free(h->m);
    rlab_free(h->schema);
    rlab_free(h);
}

static const rlab_model_vt rk_vt = {.score_all = rk_score_all,
                                    .tensors = rk_vt_tensors,
                                    .describe = rk_vt_describe,
                                    .free = rk_vt_free,
                                    .predict = rk_vt_predict};

/* Wrap m (taken, also on failure) with the schema text (taken) as a host model. */
static rlab_model *wrap(rk_model *m, char *schema, int32_t n_groups, rlab_err *err)
{
    rk_host *h = rlab_calloc(1, sizeof *h);
    if (!h || !schema) {
        rlab_free(h);
        rlab_free(schema);
        rk_model_free(m);
        return rlab_errf(err, RLAB_ENOMEM, "out of memory"), NULL;
    }
    h->m = m;
    h->schema = schema;
    rlab_model *hm = rlab_model_new(&rk_vt, h, NULL, rk_kind_names[rk_model_cfg(m)->kind], err);
    if (hm)
        hm->n_users = n_groups;
    return hm;
}

/* ---- training: the core loop's step functions ------------------------------------------------ */

typedef struct rk_fit_state {
    rk_trainer *tr;
    rlab_model *hm; /* owns the rk_model */
    rk_model *m;
} rk_fit_state;

static int fit_begin(const rlab_fit *fit, void **state, rlab_err *err)
{
    const rlab_view *v = fit->view;
    int kind = kind_index(fit->kind);
    if (kind < 0)
        return rlab_errf(err, RLAB_EINVAL, "unknown ranker kind '%s'", fit->kind);
    if (!v->tab)
        return rlab_errf(err, RLAB_EINVAL, "%s learns from tabular samples", fit->kind);
    rk_cfg c;
    if (full_cfg(kind, fit->cfg, kind_schema[kind], &c, err))
        return err->code;
    c.epochs = fit->opts->epochs;
    c.patience = fit->opts->patience;
    c.seed = fit->opts->seed;
    rk_fit_state *s = rlab_calloc(1, sizeof *s);
    if (!s)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    const int64_t *tr = v->rows[RLAB_VIEW_TRAIN];
    int64_t ntr = v->nrows[RLAB_VIEW_TRAIN];
    s->m = rk_model_new(&c, v->tab, tr, ntr, err);
    if (!s->m) {
        rlab_free(s);
        return err->code ? err->code : RLAB_ENOMEM;
    }
    rk_model *m = s->m;
    s->hm = wrap(m, rk_schema_text(v->tab), v->n_users, err);
    s->tr = s->hm ? rk_trainer_new(m, v->tab, tr, ntr, err) : NULL;
    if (!s->tr) {
        rlab_model_release(s->hm);
        rlab_free(s);
        return err->code ? err->code : RLAB_ENOMEM;
    }
    if (fit->log) {
        char line[256];
        snprintf(line, sizeof line, "%s: %lld parameters, %d task(s), batch %d, lr %g", fit->kind,
                 (long long)rk_model_nparams(m), rk_model_ntasks(m), c.batch, (double)c.lr);
        fit->log(fit->ud, line);
    }
    *state = s;
    return RLAB_OK;
}

static int fit_epoch(void *state, int e, int64_t *n_steps, rlab_err *err)
{
    (void)e, (void)err;
    rk_fit_state *s = state;
    *n_steps = rk_trainer_epoch(s->tr);
    return RLAB_OK;
}

static int fit_step(void *state, int64_t i, double *loss, double *weight, double *parts,
                    rlab_err *err)
{
    (void)parts;
    rk_fit_state *s = state;
    return rk_trainer_step(s->tr, i, loss, weight, err);
}

static rlab_model *fit_model(void *state) { return ((rk_fit_state *)state)->hm; }
static rlab_params *fit_params(void *state) { return rk_model_params(((rk_fit_state *)state)->m); }

static void fit_end(void *state)
{
    rk_fit_state *s = state;
    rk_trainer_free(s->tr);
    rlab_model_release(s->hm); /* the loop holds its own reference */
    rlab_free(s);
}

static const rlab_fit_ops rk_fit_ops = {.begin = fit_begin,
                                        .epoch = fit_epoch,
                                        .step = fit_step,
                                        .model = fit_model,
                                        .params = fit_params,
                                        .end = fit_end};

/* ---- restore ------------------------------------------------------------------------------- */

static rlab_model *restore(int kind, const rlab_ckpt *ck, const void *cfg, rlab_err *err)
{
    rk_cfg c;
    if (full_cfg(kind, cfg, kind_schema[kind], &c, err))
        return NULL;
    const char *schema = rlab_ckpt_meta_get(ck, "ranker.schema");
    if (!schema)
        return rlab_errf(err, RLAB_EFORMAT, "checkpoint has no 'ranker.schema' (the table layout)"),
               NULL;
    rlab_tabular *shape = rk_schema_table(schema, err);
    if (!shape)
        return NULL;
    rk_model *m = rk_model_new(&c, shape, NULL, 0, err);
    rlab_tabular_free(shape);
    if (!m)
        return NULL;
    int rc = rlab_ckpt_get_params(ck, rk_model_params(m), NULL, 0, err);
    for (int w = 0; w < 2 && rc == RLAB_OK; w++) {
        int nn = 0, nd = 0;
        int64_t sh[8];
        float *dst = rk_model_num_stats(m, w, &nn);
        if (!nn)
            continue;
        const float *src = rlab_ckpt_tensor(ck, w ? "ranker.num_std" : "ranker.num_mean",
                                            RLAB_DT_F32, &nd, sh, err);
        if (!src)
            rc = err->code;
        else if (nd != 1 || sh[0] != nn)
            rc = rlab_errf(err, RLAB_EFORMAT, "numeric statistics: %lld values, %d expected",
                           (long long)sh[0], nn);
        else
            memcpy(dst, src, (size_t)nn * sizeof *dst);
    }
    char *text = rc ? NULL : rlab_strdup(schema);
    if (rc) {
        rk_model_free(m);
        return NULL;
    }
    return wrap(m, text, 0, err);
}

static rlab_model *restore_infnet(rlab_host *h, const rlab_ckpt *ck, const void *cfg, rlab_err *err)
{
    (void)h;
    return restore(RK_INFNET, ck, cfg, err);
}
static rlab_model *restore_mmoe(rlab_host *h, const rlab_ckpt *ck, const void *cfg, rlab_err *err)
{
    (void)h;
    return restore(RK_MMOE, ck, cfg, err);
}
static rlab_model *restore_dcnv2(rlab_host *h, const rlab_ckpt *ck, const void *cfg, rlab_err *err)
{
    (void)h;
    return restore(RK_DCNV2, ck, cfg, err);
}
static rlab_model *restore_sharedbottom(rlab_host *h, const rlab_ckpt *ck, const void *cfg,
                                        rlab_err *err)
{
    (void)h;
    return restore(RK_SHAREDBOTTOM, ck, cfg, err);
}

/* ---- the schema text ---------------------------------------------------------------------- */
/* "ranker-schema 1\n", then one line per label "L\t<name>", per token field
 * "F\t<role>\t<card>\t<shares>\t<hash>\t<name>", per numeric field "N\t<name>". */

char *rk_schema_text(const rlab_tabular *t)
{
    size_t cap = 64 + (size_t)(t->nlabels + t->nfields + t->nnum) * 128, n = 0;
    char *b = rlab_malloc(cap);
    if (!b)
        return NULL;
    n += (size_t)snprintf(b + n, cap - n, "ranker-schema 1\n");
    for (int j = 0; j < t->nlabels; j++)
        n += (size_t)snprintf(b + n, cap - n, "L\t%.31s\n", t->label_names[j]);
    for (int f = 0; f < t->nfields; f++) {
        const rlab_tab_field *fl = &t->fields[f];
        n += (size_t)snprintf(b + n, cap - n, "F\t%d\t%d\t%d\t%u\t%.63s\n", (int)fl->role,
                              (int)fl->card, fl->shares, (unsigned)fl->hash, fl->name);
    }
    for (int k = 0; k < t->nnum; k++)
        n += (size_t)snprintf(b + n, cap - n, "N\t%.63s\n", t->num_names[k]);
    return b;
}

rlab_tabular *rk_schema_table(const char *text, rlab_err *err)
{
    if (strncmp(text, "ranker-schema 1\n", 16) != 0)
        return rlab_errf(err, RLAB_EFORMAT, "ranker.schema: unknown version"), NULL;
    int nl = 0, nf = 0, nn = 0;
    for (const char *p = text + 16; *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : p + strlen(p))
        nl += *p == 'L', nf += *p == 'F', nn += *p == 'N';
    rlab_tabular *t = rlab_calloc(1, sizeof *t);
    if (!t)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory"), NULL;
    rlab_vocab_init(&t->groups);
    t->fields = rlab_calloc((size_t)nf + 1, sizeof *t->fields);
    t->num_names = rlab_calloc((size_t)nn + 1, sizeof *t->num_names);
    if (!t->fields || !t->num_names || nl > RLAB_TAB_MAX_LABELS || nf > RLAB_TAB_MAX_COLS) {
        rlab_tabular_free(t);
        return rlab_errf(err, RLAB_EFORMAT, "ranker.schema: %d labels, %d fields", nl, nf), NULL;
    }
    int line = 1;
    for (const char *p = text + 16; *p; line++) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char buf[160];
        snprintf(buf, sizeof buf, "%.*s", (int)(len < sizeof buf ? len : sizeof buf - 1), p);
        int ok = 0;
        if (buf[0] == 'L' && buf[1] == '\t') {
            snprintf(t->label_names[t->nlabels++], 32, "%.31s", buf + 2);
            ok = 1;
        } else if (buf[0] == 'N' && buf[1] == '\t') {
            snprintf(t->num_names[t->nnum++], 64, "%.63s", buf + 2);
            ok = 1;
        } else if (buf[0] == 'F' && buf[1] == '\t') {
            int role = 0, card = 0, shares = 0, pos = 0;
            unsigned hash = 0;
            if (sscanf(buf + 2, "%d\t%d\t%d\t%u\t%n", &role, &card, &shares, &hash, &pos) == 4 &&
                card >= 1 && shares < nf && role >= RLAB_TAB_CAT && role <= RLAB_TAB_GROUP) {
                rlab_tab_field *fl = &t->fields[t->nfields++];
                snprintf(fl->name, sizeof fl->name, "%.63s", buf + 2 + pos);
                fl->role = (rlab_tab_role)role;
                fl->card = card;
                fl->shares = shares;
                fl->hash = hash;
                rlab_vocab_init(&fl->vocab);
                ok = 1;
            }
        }
        if (!ok) {
            rlab_tabular_free(t);
            return rlab_errf(err, RLAB_EFORMAT, "ranker.schema line %d: '%s'", line + 1, buf), NULL;
        }
        p = e ? e + 1 : p + len;
    }
    return t;
}

/* ---- the kinds ---------------------------------------------------------------------------- */

const rlab_model_kind rk_model_kinds[] = {
    {.name = "infnet",
     .summary = "INFNet multi-task CTR ranker: categorical, sequence and task tokens, proxy "
                "cross-attention, Proxy Gated Units",
     .config = infnet_fields,
     .config_size = sizeof(rk_cfg),
     .defaults = rk_defaults,
     .flags = RLAB_KIND_TABULAR,
     .fit = &rk_fit_ops,
     .restore = restore_infnet},
    {.name = "mmoe",
     .summary = "MMoE multi-task CTR ranker (experts, per-task gates and towers)",
     .config = mmoe_fields,
     .config_size = sizeof(rk_cfg),
     .defaults = rk_defaults,
     .flags = RLAB_KIND_TABULAR,
     .fit = &rk_fit_ops,
     .restore = restore_mmoe},
    {.name = "dcnv2",
     .summary = "DCN-v2 CTR ranker (cross layers + deep MLP; task= for single-task)",
     .config = dcnv2_fields,
     .config_size = sizeof(rk_cfg),
     .defaults = rk_defaults,
     .flags = RLAB_KIND_TABULAR,
     .fit = &rk_fit_ops,
     .restore = restore_dcnv2},
    {.name = "sharedbottom",
     .summary = "shared-bottom multi-task CTR ranker (one MLP under per-task towers)",
     .config = sharedbottom_fields,
     .config_size = sizeof(rk_cfg),
     .defaults = rk_defaults,
     .flags = RLAB_KIND_TABULAR,
     .fit = &rk_fit_ops,
     .restore = restore_sharedbottom},
    {0}};
