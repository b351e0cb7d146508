/*
 * core/host/experiment.c: an experiment's comparison and report (the experiments a sweep
 * records, sweep.c).
 *
 *   compare EXP [baseline=LABEL] [metric=ndcg@10,hr@10]
 *   report EXP file=report.md|report.html|report.tex [format=md|html|latex] [baseline=] [metric=]
 *
 * The table. Rows are configurations (an experiment_runs label: kind and the swept values),
 * grouped by data set; columns are metrics of the test targets. Each configuration's finished
 * runs (one per seed; with successive halving, those of the last rung it reached, labelled
 * "(stopped at rung r)" when it went no further) give:
 *   - mean +- sd over seeds of the run's mean over users (sd with n - 1; 0 for one seed);
 *   - a 95% percentile bootstrap interval over users (rlab_eval_bootstrap, B = 1000, seed 1)
 *     of each user's value averaged over the seeds (users every seed ranked);
 *   - a paired two-sided t-test over users of those per-user values against the baseline's
 *     on the same data set (rlab_eval_ttest_paired; users both have), and Holm's step-down
 *     correction of the p-values over every test in the table (all metrics, all data sets).
 * The best mean per (data set, metric) is marked. The protocol (full or sampled ranking,
 * split, the targets, the number of users and seeds, the test and correction) is printed
 * with every table. Per-user values come from the store's run_users (written by the sweep).
 */
#include "host/host_internal.h"
#include "eval/stats.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { EX_MAX_METRICS = 8, EX_MAX_SEEDS = 64, EX_BOOT = 1000 };

typedef struct ex_cell {
    int nseeds;
    double mean, sd;   /* over seeds */
    double lo, hi;     /* bootstrap over users */
    int64_t n_users;   /* users in the per-user average */
    double diff, t, p; /* vs baseline (p < 0: no test) */
    double p_adj;      /* Holm */
    int best;          /* the best mean of its column */
    double *uval;      /* per-user values averaged over seeds, by user index order */
    int32_t *users;
    char protocol[32];
} ex_cell;

typedef struct ex_conf {
    char label[256], data[64], kind[64], config[1024];
    int nruns;
    int64_t runs[EX_MAX_SEEDS], seeds[EX_MAX_SEEDS];
    char commands[EX_MAX_SEEDS][512];
    int is_base;
    ex_cell cells[EX_MAX_METRICS];
} ex_conf;

typedef struct ex_table {
    int64_t id;
    char name[64], status[16], command[2300], spec[2300], version[64];
    int nmetrics;
    char metrics[EX_MAX_METRICS][32];
    int nconfs;
    ex_conf *confs;
    int ntests;
    char split[32];
} ex_table;

static void table_free(ex_table *t)
{
    for (int c = 0; c < t->nconfs; c++)
        for (int m = 0; m < t->nmetrics; m++) {
            rlab_free(t->confs[c].cells[m].uval);
            rlab_free(t->confs[c].cells[m].users);
        }
    rlab_free(t->confs);
    t->confs = NULL;
    t->nconfs = 0;
}

static int step_row(rlab_db_stmt *s, rlab_err *err)
{
    int rc = rlab_db_step(s, err);
    return rc == RLAB_DB_ROW ? 1 : rc == RLAB_OK ? 0 : -1;
}

static const char *col_text(rlab_db_stmt *s, int i)
{
    const char *v = rlab_db_column_text(s, i);
    return v ? v : "";
}

int rlab__experiment_exists(rlab_ctx *ctx, const char *name)
{
    rlab_db *db = rlab_ctx_db(ctx);
    if (!db)
        return 0;
    rlab_err e = {0};
    rlab_db_stmt *s = rlab_db_prepare(db, "SELECT 1 FROM experiments WHERE name = :n", &e);
    int r = s && !rlab_db_bind_text(s, ":n", name, &e) ? step_row(s, &e) : 0;
    rlab_db_finalize(s);
    return r == 1;
}

/* ---- loading -------------------------------------------------------------------------- */

static int parse_metrics(rlab_ctx *ctx, ex_table *t, const char *s)
{
    if (!s || !*s)
        s = "ndcg@10,hr@10";
    t->nmetrics = 0;
    while (*s) {
        size_t l = strcspn(s, ", ");
        if (l == 0 || l >= sizeof t->metrics[0] || t->nmetrics >= EX_MAX_METRICS)
            return rlab_ctx_errorf(ctx, RLAB_EINVAL,
                                   "bad argument 'metric' (at most %d names such as "
                                   "ndcg@10,hr@10 expected)",
                                   EX_MAX_METRICS);
        snprintf(t->metrics[t->nmetrics++], sizeof t->metrics[0], "%.*s", (int)l, s);
        s += l;
        s += strspn(s, ", ");
    }
    return RLAB_OK;
}

/* Per-user values of one run and metric: users ascending. */
static int load_users(rlab_db *db, int64_t run, const char *metric, int32_t **users, double **vals,
                      int64_t *n, char *protocol, rlab_err *err)
{
    *users = NULL;
    *vals = NULL;
    *n = 0;
    rlab_db_stmt *s = rlab_db_prepare(db,
                                      "SELECT user, value, protocol FROM run_users WHERE run_id ="
                                      " :r AND split = 'test' AND name = :m ORDER BY user",
                                      err);
    if (!s)
        return err->code;
    int rc = rlab_db_bind_int(s, ":r", run, err);
    if (!rc)
        rc = rlab_db_bind_text(s, ":m", metric, err);
    int64_t cap = 0;
    int r = 0;
    while (!rc && (r = step_row(s, err)) == 1) {
        if (*n == cap) {
            cap = cap ? 2 * cap : 1024;
            int32_t *nu = rlab_realloc(*users, (size_t)cap * sizeof *nu);
            if (nu)
                *users = nu;
            double *nv = rlab_realloc(*vals, (size_t)cap * sizeof *nv);
            if (nv)
                *vals = nv;
            if (!nu || !nv) {
                rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
                break;
            }
        }
        (*users)[*n] = (int32_t)rlab_db_column_int(s, 0);
        (*vals)[*n] = rlab_db_column_double(s, 1);
        snprintf(protocol, 32, "%s", col_text(s, 2));
        (*n)++;
    }
    if (!rc && r < 0)
        rc = err->code;
    rlab_db_finalize(s);
    return rc;
}

/* One cell: the runs' per-user values of metric m, seed means, the per-user average over the
 * users every run ranked. */
static int fill_cell(rlab_ctx *ctx, rlab_db *db, ex_conf *c, const char *metric, ex_cell *cell)
{
    rlab_err *err = rlab_ctx_err(ctx);
    memset(cell, 0, sizeof *cell);
    cell->p = -1;
    double seedmean[EX_MAX_SEEDS];
    int rc = RLAB_OK;
    int64_t n0 = 0;
    for (int k = 0; k < c->nruns && !rc; k++) {
        int32_t *u = NULL;
        double *v = NULL;
        int64_t n = 0;
        rc = load_users(db, c->runs[k], metric, &u, &v, &n, cell->protocol, err);
        if (!rc && n == 0)
            rc = rlab_ctx_errorf(ctx, RLAB_ENOTFOUND,
                                 "run %lld (%s) has no per-user values of %s on the test targets",
                                 (long long)c->runs[k], c->label, metric);
        double s = 0;
        for (int64_t i = 0; !rc && i < n; i++)
            s += v[i];
        if (!rc)
            seedmean[k] = s / (double)n;
        if (!rc && k == 0) {
            cell->users = u;
            cell->uval = v;
            n0 = n;
            continue;
        }
        /* intersect with the users so far (both ascending), summing values */
        int64_t w = 0, j = 0;
        for (int64_t i = 0; !rc && i < n0; i++) {
            while (j < n && u[j] < cell->users[i])
                j++;
            if (j < n && u[j] == cell->users[i]) {
                cell->users[w] = cell->users[i];
                cell->uval[w++] = cell->uval[i] + v[j];
            }
        }
        if (!rc)
            n0 = w;
        rlab_free(u);
        rlab_free(v);
    }
    if (rc)
        return rc;
    for (int64_t i = 0; i < n0; i++)
        cell->uval[i] /= c->nruns;
    cell->n_users = n0;
    cell->nseeds = c->nruns;
    double s = 0;
    for (int k = 0; k < c->nruns; k++)
        s += seedmean[k];
    cell->mean = s / c->nruns;
    double ss = 0;
    for (int k = 0; k < c->nruns; k++)
        ss += (seedmean[k] - cell->mean) * (seedmean[k] - cell->mean);
    cell->sd = c->nruns > 1 ? sqrt(ss / (c->nruns - 1)) : 0.0;
    if (n0 < 1)
        return rlab_ctx_errorf(ctx, RLAB_ENOTFOUND, "%s: no user was ranked by every seed",
                               c->label);
    rlab_eval_ci ci;
    if (rlab_eval_bootstrap(cell->uval, n0, EX_BOOT, 0.95, 1, &ci, err))
        return err->code;
    cell->lo = ci.lo;
    cell->hi = ci.hi;
    return RLAB_OK;
}

/* The paired test of cell against base over their common users. */
static int paired(rlab_ctx *ctx, const ex_cell *base, ex_cell *cell)
{
    int64_t n = cell->n_users < base->n_users ? cell->n_users : base->n_users;
    double *a = rlab_malloc((size_t)(n + 1) * sizeof *a),
           *b = rlab_malloc((size_t)(n + 1) * sizeof *b);
    if (!a || !b) {
        rlab_free(a);
        rlab_free(b);
        return rlab_ctx_errorf(ctx, RLAB_ENOMEM, "out of memory");
    }
    int64_t m = 0, j = 0;
    for (int64_t i = 0; i < cell->n_users; i++) {
        while (j < base->n_users && base->users[j] < cell->users[i])
            j++;
        if (j < base->n_users && base->users[j] == cell->users[i]) {
            a[m] = cell->uval[i];
            b[m++] = base->uval[j];
        }
    }
    int rc = RLAB_OK;
    if (m >= 2) {
        rlab_eval_ttest tt;
        rc = rlab_eval_ttest_paired(a, b, m, &tt, rlab_ctx_err(ctx));
        if (!rc) {
            cell->diff = tt.mean_diff;
            cell->t = tt.t;
            cell->p = tt.p;
        }
    }
    rlab_free(a);
    rlab_free(b);
    return rc;
}

/* Holm's step-down adjustment of every p in the table (p < 0: no test). */
static void holm(ex_table *t)
{
    int n = 0;
    for (int c = 0; c < t->nconfs; c++)
        for (int m = 0; m < t->nmetrics; m++)
            n += t->confs[c].cells[m].p >= 0;
    t->ntests = n;
    if (!n)
        return;
    ex_cell **v = rlab_malloc((size_t)n * sizeof *v);
    if (!v)
        return;
    int k = 0;
    for (int c = 0; c < t->nconfs; c++)
        for (int m = 0; m < t->nmetrics; m++)
            if (t->confs[c].cells[m].p >= 0)
                v[k++] = &t->confs[c].cells[m];
    for (int i = 1; i < n; i++) /* insertion sort by p (stable) */
        for (int j = i; j > 0 && v[j]->p < v[j - 1]->p; j--) {
            ex_cell *x = v[j];
            v[j] = v[j - 1];
            v[j - 1] = x;
        }
    double run = 0;
    for (int i = 0; i < n; i++) {
        double a = (double)(n - i) * v[i]->p;
        if (a > 1)
            a = 1;
        if (a > run)
            run = a;
        v[i]->p_adj = run;
    }
    rlab_free(v);
}

/* Load experiment `name` and compute its table. */
static int table_load(rlab_ctx *ctx, const char *name, const char *baseline, const char *metrics,
                      ex_table *t)
{
    rlab_err *err = rlab_ctx_err(ctx);
    rlab_db *db = rlab_ctx_db(ctx);
    memset(t, 0, sizeof *t);
    if (!db)
        return rlab_ctx_errorf(ctx, RLAB_ESTATE, "no session store");
    int rc = parse_metrics(ctx, t, metrics);
    if (rc)
        return rc;
    rlab_db_stmt *s = rlab_db_prepare(db,
                                      "SELECT id, name, status, coalesce(command, ''), spec,"
                                      " coalesce(reclab_version, '') FROM experiments WHERE"
                                      " name = :n",
                                      err);
    if (!s)
        return err->code;
    int r = rlab_db_bind_text(s, ":n", name, err) ? -1 : step_row(s, err);
    if (r == 1) {
        t->id = rlab_db_column_int(s, 0);
        snprintf(t->name, sizeof t->name, "%s", col_text(s, 1));
        snprintf(t->status, sizeof t->status, "%s", col_text(s, 2));
        snprintf(t->command, sizeof t->command, "%s", col_text(s, 3));
        snprintf(t->spec, sizeof t->spec, "%s", col_text(s, 4));
        snprintf(t->version, sizeof t->version, "%s", col_text(s, 5));
    }
    rlab_db_finalize(s);
    if (r < 0)
        return err->code;
    if (r == 0)
        return rlab_ctx_errorf(ctx, RLAB_ENOTFOUND, "experiment '%s' not found", name);
    /* the finished runs of each configuration's last rung, in plan order */
    s = rlab_db_prepare(
        db,
        "SELECT e.label || CASE WHEN e.status = 'stopped' THEN ' (stopped at rung ' || e.rung ||"
        " ')' ELSE '' END, e.data, e.kind, e.config, e.run_id, e.seed, e.command,"
        " coalesce(json_extract(r.config, '$.split'), '') FROM experiment_runs e JOIN runs r ON"
        " r.id = e.run_id WHERE e.exp_id = :e AND e.status IN ('done', 'stopped') AND e.rung ="
        " (SELECT max(x.rung) FROM experiment_runs x WHERE x.exp_id = e.exp_id AND x.label ="
        " e.label AND x.status IN ('done', 'stopped')) ORDER BY e.idx",
        err);
    if (!s)
        return err->code;
    rc = rlab_db_bind_int(s, ":e", t->id, err);
    int cap = 0;
    while (!rc && (r = step_row(s, err)) == 1) {
        const char *label = col_text(s, 0), *data = col_text(s, 1);
        ex_conf *c = NULL;
        for (int i = 0; i < t->nconfs && !c; i++)
            if (!strcmp(t->confs[i].label, label) && !strcmp(t->confs[i].data, data))
                c = &t->confs[i];
        if (!c) {
            if (t->nconfs == cap) {
                cap = cap ? 2 * cap : 8;
                ex_conf *nc = rlab_realloc(t->confs, (size_t)cap * sizeof *nc);
                if (!nc) {
                    rc = rlab_ctx_errorf(ctx, RLAB_ENOMEM, "out of memory");
                    break;
                }
                t->confs = nc;
            }
            c = &t->confs[t->nconfs++];
            memset(c, 0, sizeof *c);
            snprintf(c->label, sizeof c->label, "%s", label);
            snprintf(c->data, sizeof c->data, "%s", data);
            snprintf(c->kind, sizeof c->kind, "%s", col_text(s, 2));
            snprintf(c->config, sizeof c->config, "%s", col_text(s, 3));
        }
        if (c->nruns < EX_MAX_SEEDS) {
            c->runs[c->nruns] = rlab_db_column_int(s, 4);
            c->seeds[c->nruns] = rlab_db_column_int(s, 5);
            snprintf(c->commands[c->nruns], sizeof c->commands[0], "%s", col_text(s, 6));
            c->nruns++;
        }
        if (!t->split[0])
            snprintf(t->split, sizeof t->split, "%s", col_text(s, 7));
    }
    if (!rc && r < 0)
        rc = err->code;
    rlab_db_finalize(s);
    if (!rc && t->nconfs == 0)
        rc = rlab_ctx_errorf(ctx, RLAB_ENOTFOUND,
                             "experiment '%s' has no finished run yet (sweep resume=%s)", name,
                             name);
    for (int c = 0; !rc && c < t->nconfs; c++)
        for (int m = 0; !rc && m < t->nmetrics; m++)
            rc = fill_cell(ctx, db, &t->confs[c], t->metrics[m], &t->confs[c].cells[m]);
    if (rc)
        return rc;
    /* the baseline of each data set: the configuration named, else the first */
    for (int c = 0; c < t->nconfs; c++) {
        int first = 1, named = -1;
        for (int o = 0; o < c; o++)
            first &= strcmp(t->confs[o].data, t->confs[c].data) != 0;
        if (baseline && *baseline) {
            for (int o = 0; o < t->nconfs; o++) {
                if (strcmp(t->confs[o].data, t->confs[c].data))
                    continue;
                if (!strcmp(t->confs[o].label, baseline)) {
                    named = o;
                    break;
                }
                if (strstr(t->confs[o].label, baseline) && named < 0)
                    named = o;
            }
            if (named < 0)
                return rlab_ctx_errorf(ctx, RLAB_ENOTFOUND,
                                       "no configuration of experiment '%s' on %s matches "
                                       "baseline '%s'",
                                       name, t->confs[c].data, baseline);
            t->confs[c].is_base = named == c;
        } else {
            t->confs[c].is_base = first;
        }
    }
    for (int c = 0; !rc && c < t->nconfs; c++) {
        if (t->confs[c].is_base)
            continue;
        int b = -1;
        for (int o = 0; o < t->nconfs; o++)
            if (t->confs[o].is_base && !strcmp(t->confs[o].data, t->confs[c].data))
                b = o;
        for (int m = 0; b >= 0 && !rc && m < t->nmetrics; m++)
            rc = paired(ctx, &t->confs[b].cells[m], &t->confs[c].cells[m]);
    }
    if (rc)
        return rc;
    holm(t);
    for (int m = 0; m < t->nmetrics; m++) /* the best mean per (data, metric) */
        for (int c = 0; c < t->nconfs; c++) {
            int best = 1;
            for (int o = 0; o < t->nconfs; o++)
                if (!strcmp(t->confs[o].data, t->confs[c].data) &&
                    t->confs[o].cells[m].mean > t->confs[c].cells[m].mean)
                    best = 0;
            t->confs[c].cells[m].best = best;
        }
    return RLAB_OK;
}

/* "full ranking (every item the user has not seen)" or "sampled ranking (1 + N negatives)" */
static void protocol_text(const ex_table *t, const char *data, char *buf, size_t cap)
{
    const ex_conf *c = NULL;
    for (int i = 0; i < t->nconfs && !c; i++)
        if (!strcmp(t->confs[i].data, data))
            c = &t->confs[i];
    const char *proto = c ? c->cells[0].protocol : "";
    char pr[96];
    if (!strncmp(proto, "sampled-", 8))
        snprintf(pr, sizeof pr, "SAMPLED ranking (%s: target vs %s sampled negatives)", proto,
                 proto + 8);
    else
        snprintf(pr, sizeof pr, "full ranking (all items the user has not seen)");
    int nseeds = 0;
    int64_t nu = 0;
    for (int i = 0; i < t->nconfs; i++)
        if (!strcmp(t->confs[i].data, data)) {
            if (t->confs[i].nruns > nseeds)
                nseeds = t->confs[i].nruns;
            if (t->confs[i].cells[0].n_users > nu)
                nu = t->confs[i].cells[0].n_users;
        }
    char ks[64] = "";
    size_t kl = 0;
    for (int m = 0; m < t->nmetrics; m++) { /* the distinct cut-offs of the metric names */
        const char *at = strchr(t->metrics[m], '@');
        int seen = 0;
        for (int o = 0; at && o < m; o++) {
            const char *a2 = strchr(t->metrics[o], '@');
            seen |= a2 && !strcmp(a2, at);
        }
        if (at && !seen && kl < sizeof ks)
            kl += (size_t)snprintf(ks + kl, sizeof ks - kl, "%s%s", kl ? "," : "", at + 1);
    }
    snprintf(buf, cap,
             "protocol: %s; split %s, test targets; %lld users; k=%s; "
             "mean +- sd over %d seed(s); 95%% bootstrap interval over users (B=%d, percentile); "
             "paired t-test over users vs the baseline, Holm-corrected over %d test(s)",
             pr, t->split[0] ? t->split : "loo", (long long)nu, ks[0] ? ks : "-", nseeds, EX_BOOT,
             t->ntests);
}

static void fmt_p(char *buf, size_t cap, double p)
{
    if (p < 0)
        snprintf(buf, cap, "-");
    else if (p < 1e-4)
        snprintf(buf, cap, "%.1e", p);
    else
        snprintf(buf, cap, "%.4f", p);
}

/* ---- compare EXP -------------------------------------------------------------------------- */

/* key=value words after the experiment's name (the shell form puts them in the rest). */
static const char *rest_value(const char *rest, const char *key, char *buf, size_t cap)
{
    size_t kl = strlen(key);
    const char *p = rest;
    while (p && *p) {
        p += strspn(p, " \t,");
        size_t l = strcspn(p, " \t");
        if (l > kl && !strncmp(p, key, kl) && p[kl] == '=') {
            snprintf(buf, cap, "%.*s", (int)(l - kl - 1), p + kl + 1);
            return buf;
        }
        p += l;
    }
    return NULL;
}

static int check_rest(rlab_ctx *ctx, const char *rest, const char *const *keys)
{
    const char *p = rest;
    while (p && *p) {
        p += strspn(p, " \t,");
        size_t l = strcspn(p, " \t");
        if (!l)
            break;
        int ok = 0;
        for (int i = 0; keys[i]; i++) {
            size_t kl = strlen(keys[i]);
            ok |= l > kl && !strncmp(p, keys[i], kl) && p[kl] == '=';
        }
        if (!ok)
            return rlab_ctx_errorf(ctx, RLAB_EINVAL, "unknown argument '%.*s'", (int)l, p);
        p += l;
    }
    return RLAB_OK;
}

static const char *opt(const rlab_args *args, const char *rest, const char *key, char *buf,
                       size_t cap)
{
    if (rlab_args_has(args, key) && rlab_args_given(args, key))
        return rlab_args_str(args, key);
    return rest_value(rest, key, buf, cap);
}

/* The table as result table "compare" and text lines. */
static void emit_compare(rlab_ctx *ctx, const ex_table *t)
{
    rlab_table *rt = rlab_ctx_result_table(
        ctx, "compare", 15,
        (const char *const[]){"data", "config", "metric", "seeds", "mean", "sd", "ci_lo", "ci_hi",
                              "users", "diff", "t", "p", "p_holm", "best", "baseline"});
    for (int c = 0; c < t->nconfs; c++) {
        const ex_conf *cf = &t->confs[c];
        for (int m = 0; m < t->nmetrics; m++) {
            const ex_cell *e = &cf->cells[m];
            rlab_cell none = {.type = RLAB_CELL_NULL};
            rlab_cell row[15] = {
                {.type = RLAB_CELL_TEXT, .s = cf->data},
                {.type = RLAB_CELL_TEXT, .s = cf->label},
                {.type = RLAB_CELL_TEXT, .s = t->metrics[m]},
                {.type = RLAB_CELL_INT, .i = e->nseeds},
                {.type = RLAB_CELL_FLOAT, .f = e->mean},
                {.type = RLAB_CELL_FLOAT, .f = e->sd},
                {.type = RLAB_CELL_FLOAT, .f = e->lo},
                {.type = RLAB_CELL_FLOAT, .f = e->hi},
                {.type = RLAB_CELL_INT, .i = e->n_users},
                e->p >= 0 ? (rlab_cell){.type = RLAB_CELL_FLOAT, .f = e->diff} : none,
                e->p >= 0 ? (rlab_cell){.type = RLAB_CELL_FLOAT, .f = e->t} : none,
                e->p >= 0 ? (rlab_cell){.type = RLAB_CELL_FLOAT, .f = e->p} : none,
                e->p >= 0 ? (rlab_cell){.type = RLAB_CELL_FLOAT, .f = e->p_adj} : none,
                {.type = RLAB_CELL_INT, .i = e->best},
                {.type = RLAB_CELL_INT, .i = cf->is_base}};
            if (rt && rlab_table_add_cells(rt, row) != RLAB_OK)
                ctx->oom = 1;
        }
    }
    /* text: one block per data set */
    for (int c = 0; c < t->nconfs; c++) {
        int first = 1;
        for (int o = 0; o < c; o++)
            first &= strcmp(t->confs[o].data, t->confs[c].data) != 0;
        if (!first)
            continue;
        char proto[640];
        protocol_text(t, t->confs[c].data, proto, sizeof proto);
        rlab_ctx_printf(ctx, "experiment %s on %s (%s)", t->name, t->confs[c].data, t->status);
        rlab_ctx_printf(ctx, "%s", proto);
        char line[1024];
        int k = snprintf(line, sizeof line, "%-28s", "configuration");
        for (int m = 0; m < t->nmetrics; m++)
            k += snprintf(line + k, sizeof line - (size_t)k, "  %-44s", t->metrics[m]);
        rlab_ctx_printf(ctx, "%s", line);
        for (int o = c; o < t->nconfs; o++) {
            const ex_conf *cf = &t->confs[o];
            if (strcmp(cf->data, t->confs[c].data))
                continue;
            char lab[300];
            snprintf(lab, sizeof lab, "%s%s", cf->label, cf->is_base ? " (baseline)" : "");
            k = snprintf(line, sizeof line, "%-28s", lab);
            for (int m = 0; m < t->nmetrics && k < (int)sizeof line; m++) {
                const ex_cell *e = &cf->cells[m];
                char cell[128], p[32];
                fmt_p(p, sizeof p, e->p_adj);
                snprintf(cell, sizeof cell, "%.4f%s +- %.4f [%.4f,%.4f]%s%s", e->mean,
                         e->best ? "*" : " ", e->sd, e->lo, e->hi, e->p >= 0 ? " p=" : "",
                         e->p >= 0 ? p : "");
                k += snprintf(line + k, sizeof line - (size_t)k, "  %-44s", cell);
            }
            rlab_ctx_printf(ctx, "%s", line);
        }
    }
    rlab_ctx_printf(ctx,
                    "* best mean of its column; p: paired t-test vs the baseline, Holm-corrected "
                    "(%d tests)",
                    t->ntests);
    rlab_ctx_result_str(ctx, "experiment", t->name);
    rlab_ctx_result_int(ctx, "tests", t->ntests);
    rlab_ctx_result_str(ctx, "correction", "holm");
}

int rlab__compare_experiment(rlab_ctx *ctx, const char *exp, const char *rest,
                             const rlab_args *args)
{
    static const char *const keys[] = {"baseline", "metric", NULL};
    int rc = check_rest(ctx, rest, keys);
    if (rc)
        return rc;
    char b1[256], b2[256];
    ex_table t;
    rc = table_load(ctx, exp, opt(args, rest, "baseline", b1, sizeof b1),
                    opt(args, rest, "metric", b2, sizeof b2), &t);
    if (!rc)
        emit_compare(ctx, &t);
    table_free(&t);
    return rc;
}

/* ---- report ------------------------------------------------------------------------------ */

static void xml(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '<')
            fputs("&lt;", f);
        else if (*s == '>')
            fputs("&gt;", f);
        else if (*s == '&')
            fputs("&amp;", f);
        else if (*s == '"')
            fputs("&quot;", f);
        else
            fputc(*s, f);
    }
}

static void tex(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (s[0] == '+' && s[1] == '-') { /* "mean +- sd" */
            fputs("$\\pm$", f);
            s++;
        } else if (strchr("&%$#_{}", *s))
            fprintf(f, "\\%c", *s);
        else if (*s == '~' || *s == '^' || *s == '\\')
            fprintf(f, "\\textascii%s{}", *s == '~' ? "tilde" : *s == '^' ? "circum" : "");
        else
            fputc(*s, f);
    }
}

/* A bar chart of one metric: one bar per configuration (mean over seeds), the bootstrap
 * interval as a whisker, the best bar darker; self-contained SVG. */
static void svg_bars(FILE *f, const ex_table *t, const char *data, int m)
{
    int n = 0;
    double hi = 0;
    for (int c = 0; c < t->nconfs; c++)
        if (!strcmp(t->confs[c].data, data)) {
            n++;
            const ex_cell *e = &t->confs[c].cells[m];
            if (e->hi > hi)
                hi = e->hi;
            if (e->mean > hi)
                hi = e->mean;
        }
    if (hi <= 0)
        hi = 1;
    /* a "nice" axis: 4 ticks of 1, 2 or 5 x 10^k */
    double raw = hi / 4, mag = pow(10, floor(log10(raw))), step = 10 * mag;
    if (raw <= mag)
        step = mag;
    else if (raw <= 2 * mag)
        step = 2 * mag;
    else if (raw <= 5 * mag)
        step = 5 * mag;
    int nt = (int)ceil(hi / step - 1e-9);
    hi = nt * step;
    const int W = 640, rowh = 28, left = 220, top = 40, H = top + n * rowh + 40;
    const double pw = W - left - 60;
    fprintf(f,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 "
            "%d %d\" font-family=\"sans-serif\" font-size=\"12\" class=\"bars\">\n",
            W, H, W, H);
    fprintf(f, "<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n", W, H);
    fprintf(f, "<text x=\"%d\" y=\"22\" font-size=\"14\" font-weight=\"bold\">", W / 2 - 150);
    xml(f, t->metrics[m]);
    fprintf(f, " on ");
    xml(f, data);
    fprintf(f, " (test; mean over seeds, 95%% bootstrap CI)</text>\n");
    int i = 0;
    for (int c = 0; c < t->nconfs; c++) {
        const ex_conf *cf = &t->confs[c];
        if (strcmp(cf->data, data))
            continue;
        const ex_cell *e = &cf->cells[m];
        double y = top + i * rowh, x1 = left + pw * e->mean / hi;
        fprintf(f, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">", left - 8, y + 17);
        xml(f, cf->label);
        fprintf(f, "</text>\n");
        fprintf(f,
                "<rect x=\"%d\" y=\"%.1f\" width=\"%.1f\" height=\"%d\" fill=\"%s\"><title>%.4f"
                "</title></rect>\n",
                left, y + 4, x1 - left, rowh - 8, e->best ? "#1f4e9a" : "#7fa7e0", e->mean);
        double a = left + pw * e->lo / hi, b = left + pw * e->hi / hi, ym = y + rowh / 2.0;
        fprintf(f,
                "<path d=\"M%.1f %.1fH%.1fM%.1f %.1fV%.1fM%.1f %.1fV%.1f\" stroke=\"black\" "
                "fill=\"none\"/>\n",
                a, ym, b, a, ym - 6, ym + 6, b, ym - 6, ym + 6);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\">%.4f</text>\n", b + 4, y + 17,
                e->mean);
        i++;
    }
    double yb = top + n * rowh + 4;
    fprintf(f, "<path d=\"M%d %.1fH%.1f\" stroke=\"black\"/>\n", left, yb, left + pw);
    for (int k = 0; k <= nt; k++) {
        double x = left + pw * k / nt;
        fprintf(f, "<path d=\"M%.1f %.1fV%.1f\" stroke=\"black\"/>", x, yb, yb + 5);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%.3g</text>\n", x, yb + 18,
                step * k);
    }
    fprintf(f, "</svg>\n");
}

/* A learning-curve picture by the `chart` command (its SVG export) for the first seed's run of
 * up to 8 configurations of data set `data`, written to path. */
static int learning_chart(rlab_ctx *ctx, const ex_table *t, const char *data, const char path[1200])
{
    char runs[256] = "";
    size_t k = 0;
    int n = 0;
    for (int c = 0; c < t->nconfs && n < 8; c++)
        if (!strcmp(t->confs[c].data, data)) {
            k += (size_t)snprintf(runs + k, sizeof runs - k, "%s%lld", n ? "," : "",
                                  (long long)t->confs[c].runs[0]);
            n++;
        }
    char line[2048];
    snprintf(line, sizeof line,
             "chart valid.%s,train.loss runs=%s file='%s' title='Learning curves on %s (first "
             "seed)'",
             t->metrics[0], runs, path, data);
    rlab_result *res = NULL;
    int rc = rlab_ctx_call_line(ctx, line, &res);
    rlab_result_free(res);
    return rc;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = n >= 0 ? rlab_malloc((size_t)n + 1) : NULL;
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        rlab_free(s);
        s = NULL;
    }
    if (s)
        s[n] = '\0';
    fclose(f);
    return s;
}

typedef enum { FMT_MD, FMT_HTML, FMT_LATEX } ex_fmt;

static void cell_text(char *buf, size_t cap, const ex_cell *e)
{
    char p[32];
    fmt_p(p, sizeof p, e->p_adj);
    snprintf(buf, cap, "%.4f ± %.4f [%.4f, %.4f]%s%s", e->mean, e->sd, e->lo, e->hi,
             e->p >= 0 ? " p=" : "", e->p >= 0 ? p : "");
}

static void write_latex(FILE *f, const ex_table *t)
{
    fprintf(f,
            "%% reclab report of experiment %s (reclab %s, git %s); needs "
            "\\usepackage{booktabs}\n",
            t->name, rlab_version(), rlab_build_git());
    for (int c = 0; c < t->nconfs; c++) {
        int first = 1;
        for (int o = 0; o < c; o++)
            first &= strcmp(t->confs[o].data, t->confs[c].data) != 0;
        if (!first)
            continue;
        char proto[640];
        protocol_text(t, t->confs[c].data, proto, sizeof proto);
        fprintf(f, "\\begin{table}[t]\n\\centering\n\\caption{");
        tex(f, t->confs[c].data);
        fprintf(f, ": test results, mean $\\pm$ sd over seeds with 95\\%% bootstrap interval; "
                   "best in bold; $p$: paired t-test vs.\\ the baseline, Holm-corrected. ");
        tex(f, proto);
        fprintf(f, "}\n\\begin{tabular}{l");
        for (int m = 0; m < t->nmetrics; m++)
            fprintf(f, "cc");
        fprintf(f, "}\n\\toprule\nConfiguration");
        for (int m = 0; m < t->nmetrics; m++) {
            fprintf(f, " & ");
            tex(f, t->metrics[m]);
            fprintf(f, " & $p$");
        }
        fprintf(f, " \\\\\n\\midrule\n");
        for (int o = c; o < t->nconfs; o++) {
            const ex_conf *cf = &t->confs[o];
            if (strcmp(cf->data, t->confs[c].data))
                continue;
            tex(f, cf->label);
            if (cf->is_base)
                fprintf(f, " (baseline)");
            for (int m = 0; m < t->nmetrics; m++) {
                const ex_cell *e = &cf->cells[m];
                char p[32];
                fmt_p(p, sizeof p, e->p_adj);
                fprintf(f, " & %s%.4f $\\pm$ %.4f%s {\\scriptsize [%.4f, %.4f]} & %s",
                        e->best ? "\\textbf{" : "", e->mean, e->sd, e->best ? "}" : "", e->lo,
                        e->hi, e->p >= 0 ? p : "--");
            }
            fprintf(f, " \\\\\n");
        }
        fprintf(f, "\\bottomrule\n\\end{tabular}\n\\end{table}\n\n");
    }
}

/* Everything a reader needs to rerun the experiment: per run the command, the seed, the
 * versions; per data set its recorded hash. */
static int write_details(rlab_ctx *ctx, FILE *f, const ex_table *t, ex_fmt fmt)
{
    rlab_db *db = rlab_ctx_db(ctx);
    rlab_err *err = rlab_ctx_err(ctx);
    int html = fmt == FMT_HTML;
    fprintf(f, html ? "<h2>Data sets</h2>\n<table class=\"runs\"><tr><th>name</th><th>source</th>"
                      "<th>sha256</th><th>users</th><th>items</th><th>interactions</th></tr>\n"
                    : "\n## Data sets\n\n| name | source | sha256 | users | items | "
                      "interactions |\n|---|---|---|---|---|---|\n");
    rlab_db_stmt *s = rlab_db_prepare(
        db,
        "SELECT name, coalesce(source, ''), coalesce(sha256, 'checksum ' ||"
        " json_extract(recipe, '$.checksum'), ''), coalesce(n_users, 0),"
        " coalesce(n_items, 0), coalesce(n_inter, 0) FROM datasets WHERE name IN (SELECT DISTINCT"
        " data FROM experiment_runs WHERE exp_id = :e) ORDER BY name",
        err);
    if (!s)
        return err->code;
    int r, rc = rlab_db_bind_int(s, ":e", t->id, err);
    int ndata = 0;
    while (!rc && (r = step_row(s, err)) == 1) {
        ndata++;
        if (html) {
            fprintf(f, "<tr><td>");
            xml(f, col_text(s, 0));
            fprintf(f, "</td><td>");
            xml(f, col_text(s, 1));
            fprintf(f,
                    "</td><td><code>%s</code></td><td>%lld</td><td>%lld</td><td>%lld</td></tr>\n",
                    col_text(s, 2), (long long)rlab_db_column_int(s, 3),
                    (long long)rlab_db_column_int(s, 4), (long long)rlab_db_column_int(s, 5));
        } else {
            fprintf(f, "| %s | %s | `%s` | %lld | %lld | %lld |\n", col_text(s, 0), col_text(s, 1),
                    col_text(s, 2), (long long)rlab_db_column_int(s, 3),
                    (long long)rlab_db_column_int(s, 4), (long long)rlab_db_column_int(s, 5));
        }
    }
    rlab_db_finalize(s);
    if (rc)
        return rc;
    if (html)
        fprintf(f, "</table>\n");
    if (!ndata)
        fprintf(f, html ? "<p>(the data sets are not recorded in this store)</p>\n"
                        : "\n(the data sets are not recorded in this store)\n");
    fprintf(f, html ? "<h2>Runs</h2>\n<table class=\"runs\"><tr><th>#</th><th>configuration"
                      "</th><th>data</th><th>seed</th><th>run</th><th>status</th><th>versions</th>"
                      "<th>config (resolved)</th><th>command to reproduce</th></tr>\n"
                    : "\n## Runs\n\n| # | configuration | data | seed | run | status | versions | "
                      "command to reproduce |\n|---|---|---|---|---|---|---|---|\n");
    s = rlab_db_prepare(db,
                        "SELECT e.idx, e.label, e.data, e.seed, coalesce(e.run_id, 0), e.status,"
                        " coalesce(r.reclab_version, ''), coalesce(r.plugin || ' ' ||"
                        " r.plugin_version, ''), coalesce(r.config, ''), e.command, e.rung FROM"
                        " experiment_runs e LEFT JOIN runs r ON r.id = e.run_id WHERE e.exp_id ="
                        " :e ORDER BY e.idx",
                        err);
    if (!s)
        return err->code;
    rc = rlab_db_bind_int(s, ":e", t->id, err);
    const char *dbp = rlab_db_path(db);
    while (!rc && (r = step_row(s, err)) == 1) {
        char cmd[2048];
        snprintf(cmd, sizeof cmd, "reclab --db %s -c \"%s\"", dbp, col_text(s, 9));
        char ver[160];
        snprintf(ver, sizeof ver, "reclab %s, %s", col_text(s, 6), col_text(s, 7));
        if (html) {
            fprintf(f, "<tr><td>%lld</td><td>", (long long)rlab_db_column_int(s, 0));
            xml(f, col_text(s, 1));
            fprintf(f, "</td><td>");
            xml(f, col_text(s, 2));
            fprintf(f, "</td><td>%lld</td><td>%lld</td><td>%s</td><td>",
                    (long long)rlab_db_column_int(s, 3), (long long)rlab_db_column_int(s, 4),
                    col_text(s, 5));
            xml(f, ver);
            fprintf(f, "</td><td><code>");
            xml(f, col_text(s, 8));
            fprintf(f, "</code></td><td><code>");
            xml(f, cmd);
            fprintf(f, "</code></td></tr>\n");
        } else {
            fprintf(f, "| %lld | %s | %s | %lld | %lld | %s | %s | `%s` |\n",
                    (long long)rlab_db_column_int(s, 0), col_text(s, 1), col_text(s, 2),
                    (long long)rlab_db_column_int(s, 3), (long long)rlab_db_column_int(s, 4),
                    col_text(s, 5), ver, cmd);
        }
    }
    rlab_db_finalize(s);
    if (html)
        fprintf(f, "</table>\n");
    if (!html) { /* the resolved configs, one code block (too wide for the table) */
        fprintf(f, "\n### Resolved configurations\n\n```\n");
        s = rlab_db_prepare(db,
                            "SELECT e.idx, r.config FROM experiment_runs e JOIN runs r ON r.id ="
                            " e.run_id WHERE e.exp_id = :e ORDER BY e.idx",
                            err);
        if (!s)
            return err->code;
        rc = rlab_db_bind_int(s, ":e", t->id, err);
        while (!rc && (r = step_row(s, err)) == 1)
            fprintf(f, "%lld %s\n", (long long)rlab_db_column_int(s, 0), col_text(s, 1));
        rlab_db_finalize(s);
        fprintf(f, "```\n");
    }
    return rc;
}

int rlab__cmd_report(rlab_ctx *ctx, const rlab_args *args)
{
    const char *name = rlab_args_str(args, "experiment");
    const char *file = rlab_args_str(args, "file");
    const char *format = rlab_args_str(args, "format");
    ex_fmt fmt = FMT_MD;
    size_t fl = strlen(file);
    if (format && *format) {
        fmt = !strcmp(format, "html") ? FMT_HTML : !strcmp(format, "latex") ? FMT_LATEX : FMT_MD;
    } else if ((fl > 5 && !strcmp(file + fl - 5, ".html")) ||
               (fl > 4 && !strcmp(file + fl - 4, ".htm"))) {
        fmt = FMT_HTML;
    } else if (fl > 4 && !strcmp(file + fl - 4, ".tex")) {
        fmt = FMT_LATEX;
    }
    ex_table t;
    int rc =
        table_load(ctx, name, rlab_args_str(args, "baseline"), rlab_args_str(args, "metric"), &t);
    if (rc) {
        table_free(&t);
        return rc;
    }
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp", file);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        table_free(&t);
        return rlab_ctx_errorf(ctx, RLAB_EIO, "cannot write %s: %s", tmp, strerror(errno));
    }
    int nfig = 0;
    if (fmt == FMT_LATEX) {
        write_latex(f, &t);
    } else {
        int html = fmt == FMT_HTML;
        if (html) {
            fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                       "<title>reclab experiment ");
            xml(f, t.name);
            fprintf(f, "</title>\n<style>body{font-family:sans-serif;max-width:1100px;margin:2em "
                       "auto;color:#222}table{border-collapse:collapse;margin:1em 0}td,th{border:"
                       "1px solid #bbb;padding:3px 8px;font-size:13px}th{background:#eef}td.best"
                       "{font-weight:bold;background:#e6f0ff}code{font-size:12px}.runs td{"
                       "font-size:11px;word-break:break-all}p.protocol{font-size:13px;color:#444}"
                       "</style></head><body>\n<h1>Experiment ");
            xml(f, t.name);
            fprintf(f, "</h1>\n<p>Status: %s. Spec: <code>", t.status);
            xml(f, t.command);
            fprintf(f,
                    "</code>. Report by reclab %s (git %s); the experiment was created by "
                    "reclab %s.</p>\n",
                    rlab_version(), rlab_build_git(), t.version);
        } else {
            fprintf(f,
                    "# Experiment %s\n\nStatus: %s. Spec: `%s`. Report by reclab %s (git %s); "
                    "the experiment was created by reclab %s.\n",
                    t.name, t.status, t.command, rlab_version(), rlab_build_git(), t.version);
        }
        for (int c = 0; c < t.nconfs && rc == RLAB_OK; c++) {
            int first = 1;
            for (int o = 0; o < c; o++)
                first &= strcmp(t.confs[o].data, t.confs[c].data) != 0;
            if (!first)
                continue;
            const char *data = t.confs[c].data;
            char proto[640];
            protocol_text(&t, data, proto, sizeof proto);
            if (html) {
                fprintf(f, "<h2>Results on ");
                xml(f, data);
                fprintf(f, "</h2>\n<p class=\"protocol\">");
                xml(f, proto);
                fprintf(f, "</p>\n<table class=\"results\"><tr><th>configuration</th>");
                for (int m = 0; m < t.nmetrics; m++)
                    fprintf(f, "<th>%s (mean &plusmn; sd [95%% CI] p)</th>", t.metrics[m]);
                fprintf(f, "</tr>\n");
            } else {
                fprintf(f, "\n## Results on %s\n\n%s\n\n| configuration |", data, proto);
                for (int m = 0; m < t.nmetrics; m++)
                    fprintf(f, " %s |", t.metrics[m]);
                fprintf(f, "\n|---|");
                for (int m = 0; m < t.nmetrics; m++)
                    fprintf(f, "---|");
                fprintf(f, "\n");
            }
            for (int o = c; o < t.nconfs; o++) {
                const ex_conf *cf = &t.confs[o];
                if (strcmp(cf->data, data))
                    continue;
                if (html) {
                    fprintf(f, "<tr><td>");
                    xml(f, cf->label);
                    fprintf(f, "%s</td>", cf->is_base ? " (baseline)" : "");
                } else {
                    fprintf(f, "| %s%s |", cf->label, cf->is_base ? " (baseline)" : "");
                }
                for (int m = 0; m < t.nmetrics; m++) {
                    char ct[160];
                    cell_text(ct, sizeof ct, &cf->cells[m]);
                    if (html)
                        fprintf(f, "<td%s>%s</td>", cf->cells[m].best ? " class=\"best\"" : "", ct);
                    else if (cf->cells[m].best)
                        fprintf(f, " **%s** |", ct);
                    else
                        fprintf(f, " %s |", ct);
                }
                fprintf(f, html ? "</tr>\n" : "\n");
            }
            fprintf(f,
                    html ? "</table>\n<p>Bold: best mean of its column. p: paired t-test over "
                           "users against the baseline, Holm-corrected over %d tests.</p>\n"
                         : "\nBold: best mean of its column. p: paired t-test over users "
                           "against the baseline, Holm-corrected over %d tests.\n",
                    t.ntests);
            /* figures: the comparison bars (drawn here) and the learning curves (chart export) */
            for (int m = 0; m < t.nmetrics; m++) {
                if (html) {
                    fprintf(f, "<figure>\n");
                    svg_bars(f, &t, data, m);
                    fprintf(f, "</figure>\n");
                } else {
                    char fig[1200];
                    snprintf(fig, sizeof fig, "%s.fig%d.svg", file, ++nfig);
                    FILE *g = fopen(fig, "w");
                    if (!g) {
                        rc = rlab_ctx_errorf(ctx, RLAB_EIO, "cannot write %s: %s", fig,
                                             strerror(errno));
                        break;
                    }
                    svg_bars(g, &t, data, m);
                    fclose(g);
                    const char *base = strrchr(fig, '/');
                    fprintf(f, "\n![%s on %s](%s)\n", t.metrics[m], data, base ? base + 1 : fig);
                }
            }
            char fig[1200];
            snprintf(fig, sizeof fig, "%s.fig%d.svg", file, ++nfig);
            int crc = rc ? rc : learning_chart(ctx, &t, data, fig);
            if (crc == RLAB_OK && html) {
                char *svg = slurp(fig);
                unlink(fig);
                const char *body = svg ? strstr(svg, "<svg") : NULL;
                if (body)
                    fprintf(f, "<figure class=\"curves\">\n%s</figure>\n", body);
                rlab_free(svg);
            } else if (crc == RLAB_OK) {
                const char *base = strrchr(fig, '/');
                fprintf(f, "\n![learning curves on %s](%s)\n", data, base ? base + 1 : fig);
            } else if (!rc) { /* runs without curves (one-shot kinds): say so, go on */
                fprintf(f,
                        html ? "<p>(no learning curves: %s)</p>\n" : "\n(no learning curves: %s)\n",
                        rlab_ctx_err(ctx)->msg);
                rlab_ctx_err(ctx)->code = RLAB_OK;
                rlab_ctx_err(ctx)->msg[0] = '\0';
            }
        }
        if (rc == RLAB_OK)
            rc = write_details(ctx, f, &t, fmt);
        if (html)
            fprintf(f, "</body></html>\n");
    }
    int bad = ferror(f);
    if (fclose(f) != 0)
        bad = 1;
    if (rc == RLAB_OK && bad)
        rc = rlab_ctx_errorf(ctx, RLAB_EIO, "cannot write %s", tmp);
    if (rc == RLAB_OK && rename(tmp, file) != 0)
        rc = rlab_ctx_errorf(ctx, RLAB_EIO, "cannot write %s: %s", file, strerror(errno));
    if (rc)
        unlink(tmp);
    else {
        rlab_ctx_printf(ctx, "report of experiment %s written to %s (%s, %d configuration(s))",
                        t.name, file,
                        fmt == FMT_HTML    ? "html"
                        : fmt == FMT_LATEX ? "latex"
                                           : "markdown",
                        t.nconfs);
        rlab_ctx_result_str(ctx, "file", file);
    }
    table_free(&t);
    return rc;
}

static const char *const report_formats[] = {"md", "html", "latex", NULL};
const rlab_arg rlab__report_args[] = {
    {.name = "experiment", .type = RLAB_ARG_STRING, .flags = RLAB_ARGF_REQUIRED, .help = "name"},
    {.name = "file", .type = RLAB_ARG_PATH, .flags = RLAB_ARGF_REQUIRED, .help = "file to write"},
    {.name = "format",
     .type = RLAB_ARG_CHOICE,
     .choices = report_formats,
     .help = "md, html or latex (default: from the file name: .html, .tex, else md)"},
    {.name = "baseline", .type = RLAB_ARG_STRING, .help = "configuration tested against"},
    {.name = "metric", .type = RLAB_ARG_STRING, .help = "metrics (default ndcg@10,hr@10)"},
    {0}};
