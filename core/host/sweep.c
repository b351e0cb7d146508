/*
 * core/host/sweep.c: the `sweep` command: a grid (or random search) of training runs over
 * model kinds, data sets, fields and seeds, grouped in the store as one experiment.
 *
 *   sweep KIND[,KIND...] data=A[,B] field=v1,v2 field2=lo:hi[:log][:N] [KIND.field=...]
 *         seeds=1..3 [search=grid|random n=8 search_seed=0] [halving=ETA] [name=EXP]
 *         [keep=true]
 *   sweep resume=EXP
 *
 * Expansion. For each data set, each kind and each configuration of that kind (the grid of
 * every field the kind declares, or n random draws), one run per seed: `train KIND data=D
 * name=EXP-rI seed=S field=v ...`, the host's train verb, so every kind of every plugin
 * sweeps the same way. A field applies to the kinds that declare it (KIND.field= to one kind
 * only, overriding field= for it); a field no kind declares is an error, and so is a value the
 * train command refuses (both found before anything runs). A range lo:hi gives N points (default 3,
 * linear; :log geometric) on a grid and uniform (log-uniform) draws in random search; integer
 * fields get rounded values.
 *
 * The store (schema v4). `experiments` keeps the name, the spec (JSON: the canonical spec
 * line and its parts) and the status; `experiment_runs` one row per planned run with its
 * exact command, its train run id once finished and a status (pending, done, failed,
 * stopped). After each run the evaluator ranks the test targets of the trained model again
 * and the per-user values go to `run_users` (the same values the run's test metrics average,
 * kept so comparisons pair runs over users); only then is the row `done`. The trained model is
 * then dropped from the session's registry (its run record stays), unless keep=true keeps it
 * as EXP-rI. Resuming (the same
 * sweep line again, or `sweep resume=EXP`) runs only the rows not done: a kill -9 in the
 * middle costs the run that was active. The spec of an existing experiment must match.
 *
 * Successive halving (halving=ETA, ETA >= 2): the configurations first train for epochs /
 * ETA^R epochs (R rungs, so that the last rung trains the full epochs= budget), every seed;
 * after each rung the best 1/ETA configurations by mean validation `select` metric go on
 * with ETA times the epochs, the others are marked stopped. Each rung's rows are added when
 * the previous rung is complete, so a resumed sweep continues where it stopped.
 *
 * Progress: the sweep's own events read "runs" (done of total); the runs it calls report
 * "run 3/12 epoch", so the status line shows both.
 */
#include "host/host_internal.h"
#include "model/fit.h"
#include "store/sha256.h"

#include <json-c/json.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { SW_MAX_VALS = 64, SW_MAX_AXES = 16, SW_MAX_LIST = 32, SW_MAX_RUNS = 10000 };

/* One swept field: a list of values, or a range. */
typedef struct sw_axis {
    char kind[64]; /* "" = every kind that declares it */
    char key[64];
    int nvals;
    char vals[SW_MAX_VALS][64];
    int range, log, npts;
    double lo, hi;
} sw_axis;

typedef struct sw_spec {
    char canon[2048]; /* the spec line, normalised (tokens as given, name= left out) */
    int nkinds, ndata, nseeds, naxes;
    char kinds[SW_MAX_LIST][64];
    char data[SW_MAX_LIST][64];
    int64_t seeds[SW_MAX_VALS];
    sw_axis axes[SW_MAX_AXES];
    int random, n;
    int64_t search_seed;
    int halving;
    int keep; /* keep=true: the trained models stay registered (EXP-rI) */
    char name[64];
} sw_spec;

/* A planned configuration (one row per seed in the store). */
typedef struct sw_conf {
    char kind[64], data[64];
    char label[256]; /* "bprmf dim=64 lr=0.01" */
    char args[768];  /* " dim=64 lr=0.01" (train arguments beyond kind, data, name, seed) */
} sw_conf;

/* ---- parsing the spec ---------------------------------------------------------------- */

static int split_list(const char *s, char out[][64], int max, int *n)
{
    *n = 0;
    while (*s) {
        const char *e = strchr(s, ',');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        if (len == 0 || len >= 64 || *n >= max)
            return RLAB_EINVAL;
        memcpy(out[*n], s, len);
        out[*n][len] = '\0';
        (*n)++;
        if (!e)
            break;
        s = e + 1;
        if (!*s)
            return RLAB_EINVAL;
    }
    return *n ? RLAB_OK : RLAB_EINVAL;
}

static int parse_number(const char *s, double *v)
{
    char *end = NULL;
    *v = strtod(s, &end);
    return end != s && *end == '\0' && isfinite(*v) ? RLAB_OK : RLAB_EINVAL;
}

/* "1..3" or "1,5,9" */
static int parse_seeds(sw_spec *sp, const char *v, rlab_err *err)
{
    const char *dots = strstr(v, "..");
    if (dots) {
        char *end = NULL;
        long long a = strtoll(v, &end, 10);
        if (end != dots)
            goto bad;
        long long b = strtoll(dots + 2, &end, 10);
        if (*end || b < a || b - a >= SW_MAX_VALS)
            goto bad;
        for (long long s = a; s <= b; s++)
            sp->seeds[sp->nseeds++] = s;
        return RLAB_OK;
    }
    char list[SW_MAX_VALS][64];
    int n = 0;
    if (split_list(v, list, SW_MAX_VALS, &n))
        goto bad;
    for (int i = 0; i < n; i++) {
        char *end = NULL;
        sp->seeds[i] = strtoll(list[i], &end, 10);
        if (*end)
            goto bad;
    }
    sp->nseeds = n;
    return RLAB_OK;
bad:
    return rlab_errf(err, RLAB_EINVAL,
                     "sweep: bad seeds '%s' (a range 1..3 or a list 1,5,9 of at most %d expected)",
                     v, SW_MAX_VALS);
}

/* field=v1,v2 | lo:hi[:log][:N] */
static int parse_axis(sw_axis *ax, const char *key, const char *v, rlab_err *err)
{
    memset(ax, 0, sizeof *ax);
    const char *dot = strchr(key, '.');
    if (dot) {
        if (dot - key >= (ptrdiff_t)sizeof ax->kind)
            return rlab_errf(err, RLAB_EINVAL, "sweep: kind name too long in '%.40s'", key);
        snprintf(ax->kind, sizeof ax->kind, "%.*s", (int)(dot - key), key);
        key = dot + 1;
    }
    if (strlen(key) >= sizeof ax->key)
        return rlab_errf(err, RLAB_EINVAL, "sweep: field name too long: '%.40s...'", key);
    snprintf(ax->key, sizeof ax->key, "%.63s", key);
    if (strchr(v, ':') && !strchr(v, ',')) {
        char parts[4][64];
        int n = 0;
        const char *s = v;
        while (n < 4) {
            const char *e = strchr(s, ':');
            size_t len = e ? (size_t)(e - s) : strlen(s);
            if (len >= 64)
                break;
            memcpy(parts[n], s, len);
            parts[n++][len] = '\0';
            if (!e)
                break;
            s = e + 1;
        }
        ax->range = 1;
        ax->npts = 3;
        int ok = n >= 2 && !parse_number(parts[0], &ax->lo) && !parse_number(parts[1], &ax->hi) &&
                 ax->hi >= ax->lo;
        for (int i = 2; ok && i < n; i++) {
            double p;
            if (strcmp(parts[i], "log") == 0)
                ax->log = 1;
            else if (strcmp(parts[i], "lin") == 0)
                ax->log = 0;
            else if (!parse_number(parts[i], &p) && p >= 1 && p <= SW_MAX_VALS &&
                     !(fmod(p, 1.0) > 0))
                ax->npts = (int)p;
            else
                ok = 0;
        }
        if (ok && ax->log && ax->lo <= 0)
            ok = 0;
        if (!ok)
            return rlab_errf(err, RLAB_EINVAL,
                             "sweep: bad range %s=%s (lo:hi[:log][:N] with lo <= hi, lo > 0 for "
                             "log, N points in [1, %d] expected)",
                             key, v, SW_MAX_VALS);
        return RLAB_OK;
    }
    if (split_list(v, ax->vals, SW_MAX_VALS, &ax->nvals))
        return rlab_errf(err, RLAB_EINVAL,
                         "sweep: bad values %s=%s (a comma-separated list of at most %d values "
                         "expected)",
                         key, v, SW_MAX_VALS);
    return RLAB_OK;
}

static void canon_add(sw_spec *sp, const char *tok)
{
    size_t k = strlen(sp->canon);
    snprintf(sp->canon + k, sizeof sp->canon - k, "%s%s", k ? " " : "", tok);
}

/* Parse a spec line (everything after `sweep`). */
static int spec_parse(sw_spec *sp, const char *line, rlab_err *err)
{
    memset(sp, 0, sizeof *sp);
    sp->n = 8;
    const char *p = line ? line : "";
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == '\n')
            p++;
        if (!*p)
            break;
        const char *e = p;
        while (*e && *e != ' ' && *e != '\t' && *e != '\n')
            e++;
        char tok[512];
        if ((size_t)(e - p) >= sizeof tok)
            return rlab_errf(err, RLAB_EINVAL, "sweep: word too long: '%.40s...'", p);
        memcpy(tok, p, (size_t)(e - p));
        tok[e - p] = '\0';
        p = e;
        char *eq = strchr(tok, '=');
        if (!eq) { /* the kinds */
            if (sp->nkinds)
                return rlab_errf(err, RLAB_EINVAL,
                                 "sweep: '%s': name the kinds once (KIND,KIND) and give every "
                                 "other value as key=value",
                                 tok);
            if (split_list(tok, sp->kinds, SW_MAX_LIST, &sp->nkinds))
                return rlab_errf(err, RLAB_EINVAL, "sweep: bad kind list '%s'", tok);
            canon_add(sp, tok);
            continue;
        }
        *eq = '\0';
        const char *key = tok, *v = eq + 1;
        if (!*v)
            return rlab_errf(err, RLAB_EINVAL, "sweep: %s= has no value", key);
        int rc = RLAB_OK;
        if (strcmp(key, "name") == 0) {
            if (rlab_name_check("experiment", v, err))
                return err->code;
            snprintf(sp->name, sizeof sp->name, "%s", v);
            continue; /* not part of the spec: the same sweep may be named on resume */
        }
        if (strcmp(key, "keep") == 0) { /* not part of the spec either: it changes no result */
            if (strcmp(v, "true") && strcmp(v, "false"))
                return rlab_errf(err, RLAB_EINVAL,
                                 "sweep: bad argument 'keep' (boolean expected, got '%s')", v);
            sp->keep = strcmp(v, "true") == 0;
            continue;
        }
        if (strcmp(key, "kind") == 0) {
            if (sp->nkinds || split_list(v, sp->kinds, SW_MAX_LIST, &sp->nkinds))
                return rlab_errf(err, RLAB_EINVAL, "sweep: bad kind list '%s'", v);
        } else if (strcmp(key, "data") == 0) {
            if (sp->ndata || split_list(v, sp->data, SW_MAX_LIST, &sp->ndata))
                return rlab_errf(err, RLAB_EINVAL, "sweep: bad data list '%s'", v);
        } else if (strcmp(key, "seeds") == 0 || strcmp(key, "seed") == 0) {
            if (sp->nseeds)
                return rlab_errf(err, RLAB_EINVAL, "sweep: seeds given twice");
            rc = parse_seeds(sp, v, err);
        } else if (strcmp(key, "search") == 0) {
            if (strcmp(v, "grid") && strcmp(v, "random"))
                return rlab_errf(err, RLAB_EINVAL,
                                 "sweep: bad argument 'search' (one of grid|random expected, got "
                                 "'%s')",
                                 v);
            sp->random = strcmp(v, "random") == 0;
        } else if (strcmp(key, "n") == 0 || strcmp(key, "halving") == 0 ||
                   strcmp(key, "search_seed") == 0) {
            double d;
            int is_n = key[0] == 'n', is_h = key[0] == 'h';
            if (parse_number(v, &d) || fmod(d, 1.0) > 0 || fmod(d, 1.0) < 0 ||
                (is_n && (d < 1 || d > 1000)) || (is_h && (d < 2 || d > 16)) || fabs(d) > 1e15)
                return rlab_errf(err, RLAB_EINVAL,
                                 "sweep: bad argument '%s' (%s expected, got '%s')", key,
                                 is_n   ? "integer in [1, 1000]"
                                 : is_h ? "integer in [2, 16]"
                                        : "integer",
                                 v);
            if (is_n)
                sp->n = (int)d;
            else if (is_h)
                sp->halving = (int)d;
            else
                sp->search_seed = (int64_t)d;
        } else if (strcmp(key, "data") && sp->naxes < SW_MAX_AXES) {
            for (int i = 0; i < sp->naxes; i++)
                if (strcmp(sp->axes[i].key, key) == 0 && !sp->axes[i].kind[0])
                    return rlab_errf(err, RLAB_EINVAL, "sweep: argument '%s' given twice", key);
            rc = parse_axis(&sp->axes[sp->naxes], key, v, err);
            if (rc == RLAB_OK)
                sp->naxes++;
        } else {
            return rlab_errf(err, RLAB_EINVAL, "sweep: too many swept fields (at most %d)",
                             SW_MAX_AXES);
        }
        if (rc)
            return rc;
        *eq = '=';
        canon_add(sp, tok);
    }
    if (!sp->nkinds)
        return rlab_errf(err, RLAB_EINVAL,
                         "sweep: name the model kinds: sweep KIND[,KIND] data=... (help sweep)");
    if (!sp->ndata)
        return rlab_errf(err, RLAB_EINVAL, "sweep: missing argument 'data'");
    if (!sp->nseeds) { /* one run per configuration, the train verb's default seed */
        sp->seeds[0] = 42;
        sp->nseeds = 1;
    }
    if (sp->halving && sp->random == 0 && sp->naxes == 0 && sp->nkinds < 2)
        return rlab_errf(err, RLAB_EINVAL,
                         "sweep: halving= needs several configurations to choose from");
    return RLAB_OK;
}

/* ---- expansion ------------------------------------------------------------------------- */

/* The declared type of a train argument (0 when the command has none of that name). */
static rlab_type train_arg_type(rlab_args *a, const char *key)
{
    for (int i = 0; i < rlab__args_count(a); i++) {
        const rlab_arg *d = rlab__args_decl(a, i);
        if (strcmp(d->name, key) == 0)
            return d->type;
    }
    return 0;
}

static void fmt_value(char *buf, size_t cap, double v, int integer)
{
    if (integer)
        snprintf(buf, cap, "%lld", (long long)llround(v));
    else
        snprintf(buf, cap, "%.6g", v);
}

/* Value j of a range on the grid. */
static double range_point(const sw_axis *ax, int j)
{
    if (ax->npts == 1)
        return ax->log ? sqrt(ax->lo * ax->hi) : 0.5 * (ax->lo + ax->hi);
    double t = (double)j / (ax->npts - 1);
    return ax->log ? exp(log(ax->lo) + t * (log(ax->hi) - log(ax->lo)))
                   : ax->lo + t * (ax->hi - ax->lo);
}

/* Append " key=value" to dst (cap bytes; the caller checked it fits). */
static void append_kv(char *dst, size_t cap, const char *key, const char *value)
{
    size_t n = strlen(dst), kl = strlen(key), vl = strlen(value);
    if (n + kl + vl + 3 > cap)
        return;
    dst[n++] = ' ';
    memcpy(dst + n, key, kl);
    n += kl;
    dst[n++] = '=';
    memcpy(dst + n, value, vl);
    dst[n + vl] = '\0';
}

typedef struct sw_plan {
    sw_conf *confs;
    int nconfs, cap;
} sw_plan;

static int plan_add(sw_plan *pl, const sw_conf *c)
{
    if (pl->nconfs == pl->cap) {
        int cap = pl->cap ? 2 * pl->cap : 16;
        sw_conf *nc = rlab_realloc(pl->confs, (size_t)cap * sizeof *nc);
        if (!nc)
            return RLAB_ENOMEM;
        pl->confs = nc;
        pl->cap = cap;
    }
    pl->confs[pl->nconfs++] = *c;
    return RLAB_OK;
}

/* The configurations of spec sp: checks every field and value against each kind's train
 * command (so a typo fails before the first run). */
static int plan_build(rlab_ctx *ctx, const sw_spec *sp, sw_plan *pl)
{
    rlab_err *err = rlab_ctx_err(ctx);
    int used[SW_MAX_AXES] = {0};
    rlab_rng rng;
    rlab_rng_seed(&rng, (uint64_t)sp->search_seed);
    for (int d = 0; d < sp->ndata; d++) {
        for (int k = 0; k < sp->nkinds; k++) {
            char full[160];
            snprintf(full, sizeof full, "train %s", sp->kinds[k]);
            rlab_args *a = rlab_ctx_args(ctx, full);
            if (!a)
                return rlab_errf(err, RLAB_ENOTFOUND, "sweep: unknown model kind '%s'",
                                 sp->kinds[k]);
            /* the axes of this kind */
            int ax[SW_MAX_AXES], nax = 0, integer[SW_MAX_AXES] = {0};
            for (int i = 0; i < sp->naxes; i++) {
                const sw_axis *x = &sp->axes[i];
                if (x->kind[0] && strcmp(x->kind, sp->kinds[k]) != 0)
                    continue;
                int overridden = 0; /* KIND.field= wins over field= for that kind */
                for (int o = 0; !x->kind[0] && o < sp->naxes; o++)
                    overridden |=
                        !strcmp(sp->axes[o].kind, sp->kinds[k]) && !strcmp(sp->axes[o].key, x->key);
                if (overridden) {
                    used[i] = 1;
                    continue;
                }
                rlab_type t = train_arg_type(a, x->key);
                if (t && sp->halving && !strcmp(x->key, "epochs")) {
                    used[i] = 1; /* the budget: each rung sets its own epochs= */
                    continue;
                }
                if (!t || !strcmp(x->key, "data") || !strcmp(x->key, "name") ||
                    !strcmp(x->key, "seed"))
                    continue;
                if (x->range && t != RLAB_ARG_INT && t != RLAB_ARG_FLOAT) {
                    rlab_args_free(a);
                    return rlab_errf(err, RLAB_EINVAL,
                                     "sweep: %s.%s is not a number: give a list of values, not "
                                     "a range",
                                     sp->kinds[k], x->key);
                }
                integer[nax] = t == RLAB_ARG_INT;
                used[i] = 1;
                ax[nax++] = i;
            }
            int total = 1;
            for (int i = 0; i < nax; i++) {
                const sw_axis *x = &sp->axes[ax[i]];
                total *= x->range ? x->npts : x->nvals;
                if (total > SW_MAX_RUNS) {
                    rlab_args_free(a);
                    return rlab_errf(err, RLAB_EINVAL, "sweep: more than %d configurations",
                                     SW_MAX_RUNS);
                }
            }
            int nconf = sp->random ? sp->n : total;
            for (int c = 0; c < nconf; c++) {
                sw_conf conf;
                memset(&conf, 0, sizeof conf);
                snprintf(conf.kind, sizeof conf.kind, "%s", sp->kinds[k]);
                snprintf(conf.data, sizeof conf.data, "%s", sp->data[d]);
                snprintf(conf.label, sizeof conf.label, "%s", sp->kinds[k]);
                int rest = c;
                for (int i = 0; i < nax; i++) {
                    const sw_axis *x = &sp->axes[ax[i]];
                    char v[64];
                    if (sp->random) {
                        double u = rlab_rng_double(&rng);
                        if (!x->range)
                            snprintf(v, sizeof v, "%s",
                                     x->vals[rlab_rng_below(&rng, (uint64_t)x->nvals)]);
                        else if (x->log)
                            fmt_value(v, sizeof v, exp(log(x->lo) + u * (log(x->hi) - log(x->lo))),
                                      integer[i]);
                        else
                            fmt_value(v, sizeof v, x->lo + u * (x->hi - x->lo), integer[i]);
                    } else {
                        int m = x->range ? x->npts : x->nvals, j = rest % m;
                        rest /= m;
                        if (x->range)
                            fmt_value(v, sizeof v, range_point(x, j), integer[i]);
                        else
                            snprintf(v, sizeof v, "%s", x->vals[j]);
                    }
                    int rc = rlab_args_set(a, x->key, v, err); /* the train command's check */
                    if (rc) {
                        rlab_args_free(a);
                        return rc;
                    }
                    size_t la = strlen(conf.args), ll = strlen(conf.label);
                    size_t need = strlen(x->key) + strlen(v) + 2;
                    /* the label names what varies; a fixed field (one value) stays in args */
                    int in_label = x->range || x->nvals > 1;
                    if (la + need >= sizeof conf.args ||
                        (in_label && ll + need >= sizeof conf.label - 80)) {
                        rlab_args_free(a);
                        return rlab_errf(err, RLAB_EINVAL,
                                         "sweep: the configuration of %s is too long (at most %zu "
                                         "bytes of fields, %zu of swept ones)",
                                         sp->kinds[k], sizeof conf.args - 1,
                                         sizeof conf.label - 81);
                    }
                    append_kv(conf.args, sizeof conf.args, x->key, v);
                    if (in_label)
                        append_kv(conf.label, sizeof conf.label, x->key, v);
                }
                /* a fresh args for the next configuration: set twice is an error */
                rlab_args_free(a);
                a = rlab_ctx_args(ctx, full);
                if (!a)
                    return err->code;
                if (sp->ndata > 1) {
                    size_t ll = strlen(conf.label);
                    snprintf(conf.label + ll, sizeof conf.label - ll, " @%s", sp->data[d]);
                }
                if (plan_add(pl, &conf))
                    return rlab_errf(err, RLAB_ENOMEM, "out of memory");
            }
            rlab_args_free(a);
        }
    }
    for (int i = 0; i < sp->naxes; i++)
        if (!used[i])
            return rlab_errf(err, RLAB_EINVAL, "sweep: no kind of %s%s%s takes '%s'",
                             sp->axes[i].kind[0] ? sp->axes[i].kind : "", "",
                             sp->axes[i].kind[0] ? "" : "the sweep", sp->axes[i].key);
    if ((int64_t)pl->nconfs * sp->nseeds > SW_MAX_RUNS)
        return rlab_errf(err, RLAB_EINVAL, "sweep: more than %d runs", SW_MAX_RUNS);
    return RLAB_OK;
}

/* ---- the store ------------------------------------------------------------------------- */

static char *spec_json(const sw_spec *sp)
{
    json_object *o = json_object_new_object(), *a;
    if (!o)
        return NULL;
    json_object_object_add(o, "line", json_object_new_string(sp->canon));
    a = json_object_new_array();
    for (int i = 0; i < sp->nkinds; i++)
        json_object_array_add(a, json_object_new_string(sp->kinds[i]));
    json_object_object_add(o, "kinds", a);
    a = json_object_new_array();
    for (int i = 0; i < sp->ndata; i++)
        json_object_array_add(a, json_object_new_string(sp->data[i]));
    json_object_object_add(o, "data", a);
    a = json_object_new_array();
    for (int i = 0; i < sp->nseeds; i++)
        json_object_array_add(a, json_object_new_int64(sp->seeds[i]));
    json_object_object_add(o, "seeds", a);
    json_object_object_add(o, "search", json_object_new_string(sp->random ? "random" : "grid"));
    if (sp->random) {
        json_object_object_add(o, "n", json_object_new_int(sp->n));
        json_object_object_add(o, "search_seed", json_object_new_int64(sp->search_seed));
    }
    if (sp->halving)
        json_object_object_add(o, "halving", json_object_new_int(sp->halving));
    char *s = rlab_strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    return s;
}

/* 1 when the statement gave a row, 0 when done, <0 on error */
static int step_row(rlab_db_stmt *s, rlab_err *err)
{
    int rc = rlab_db_step(s, err);
    return rc == RLAB_DB_ROW ? 1 : rc == RLAB_OK ? 0 : -1;
}

/* Find experiment name: *id (0 = none) and its spec line in line[]. */
static int exp_find(rlab_db *db, const char *name, int64_t *id, char *line, size_t cap,
                    rlab_err *err)
{
    *id = 0;
    rlab_db_stmt *s = rlab_db_prepare(
        db, "SELECT id, json_extract(spec, '$.line') FROM experiments WHERE name = :n", err);
    if (!s)
        return err->code;
    int r = rlab_db_bind_text(s, ":n", name, err) ? -1 : step_row(s, err);
    if (r == 1) {
        *id = rlab_db_column_int(s, 0);
        const char *l = rlab_db_column_text(s, 1);
        snprintf(line, cap, "%s", l ? l : "");
    }
    rlab_db_finalize(s);
    return r < 0 ? err->code : RLAB_OK;
}

static int exp_status(rlab_db *db, int64_t id, const char *status, rlab_err *err)
{
    rlab_db_stmt *s = rlab_db_prepare(
        db,
        "UPDATE experiments SET status = :s, ended = CASE WHEN :s = 'running' THEN NULL ELSE"
        " (julianday('now') - 2440587.5) * 86400.0 END WHERE id = :id",
        err);
    if (!s)
        return err->code;
    int rc = rlab_db_bind_text(s, ":s", status, err);
    if (!rc)
        rc = rlab_db_bind_int(s, ":id", id, err);
    if (!rc)
        rc = step_row(s, err) < 0 ? err->code : RLAB_OK;
    rlab_db_finalize(s);
    return rc;
}

/* Append rows for configurations confs[] (each seed), rung r, epochs (0 = as configured). */
static int rows_add(rlab_db *db, int64_t exp, const char *ename, const sw_spec *sp,
                    const sw_conf *confs, int n, int rung, int epochs, int64_t *next_idx,
                    rlab_err *err)
{
    rlab_db_stmt *s = rlab_db_prepare(
        db,
        "INSERT INTO experiment_runs(exp_id, idx, config, label, kind, data, seed, rung,"
        " command) VALUES(:e, :i, :c, :l, :k, :d, :s, :r, :cmd)",
        err);
    if (!s)
        return err->code;
    int rc = RLAB_OK;
    for (int c = 0; c < n && !rc; c++) {
        char cfg[1024];
        snprintf(cfg, sizeof cfg, "%s data=%s%s", confs[c].kind, confs[c].data, confs[c].args);
        for (int k = 0; k < sp->nseeds && !rc; k++) {
            int64_t idx = (*next_idx)++;
            char cmd[1536], ep[32] = "";
            if (epochs > 0)
                snprintf(ep, sizeof ep, " epochs=%d", epochs);
            snprintf(cmd, sizeof cmd, "train %s data=%s name=%s-r%lld seed=%lld%s%s", confs[c].kind,
                     confs[c].data, ename, (long long)idx, (long long)sp->seeds[k], confs[c].args,
                     ep);
            rc = rlab_db_bind_int(s, ":e", exp, err);
            if (!rc)
                rc = rlab_db_bind_int(s, ":i", idx, err);
            if (!rc)
                rc = rlab_db_bind_text(s, ":c", cfg, err);
            if (!rc)
                rc = rlab_db_bind_text(s, ":l", confs[c].label, err);
            if (!rc)
                rc = rlab_db_bind_text(s, ":k", confs[c].kind, err);
            if (!rc)
                rc = rlab_db_bind_text(s, ":d", confs[c].data, err);
            if (!rc)
                rc = rlab_db_bind_int(s, ":s", sp->seeds[k], err);
            if (!rc)
                rc = rlab_db_bind_int(s, ":r", rung, err);
            if (!rc)
                rc = rlab_db_bind_text(s, ":cmd", cmd, err);
            if (!rc && step_row(s, err) < 0)
                rc = err->code;
        }
    }
    rlab_db_finalize(s);
    return rc;
}

static int exp_create(rlab_db *db, const char *name, const sw_spec *sp, const char *json,
                      const sw_plan *pl, int epochs0, int64_t *id, rlab_err *err)
{
    int rc = rlab_db_begin(db, err);
    if (rc)
        return rc;
    rlab_db_stmt *s = rlab_db_prepare(
        db,
        "INSERT INTO experiments(name, spec, command, created,"
        " reclab_version) VALUES(:n, :s, :c, (julianday('now') - 2440587.5) * 86400.0, :v)",
        err);
    char cmd[2200];
    snprintf(cmd, sizeof cmd, "sweep %s name=%s", sp->canon, name);
    rc = s ? RLAB_OK : err->code;
    if (!rc)
        rc = rlab_db_bind_text(s, ":n", name, err);
    if (!rc)
        rc = rlab_db_bind_text(s, ":s", json, err);
    if (!rc)
        rc = rlab_db_bind_text(s, ":c", cmd, err);
    if (!rc)
        rc = rlab_db_bind_text(s, ":v", rlab_version(), err);
    if (!rc && step_row(s, err) < 0)
        rc = err->code;
    rlab_db_finalize(s);
    if (!rc) {
        *id = rlab_db_last_insert_id(db);
        int64_t next = 1;
        rc = rows_add(db, *id, name, sp, pl->confs, pl->nconfs, 0, epochs0, &next, err);
    }
    if (!rc)
        rc = rlab_db_commit(db, err);
    if (rc)
        rlab_db_rollback(db);
    return rc;
}

static int row_update(rlab_db *db, int64_t exp, int64_t idx, const char *status, int64_t run,
                      rlab_err *err)
{
    rlab_db_stmt *s = rlab_db_prepare(db,
                                      "UPDATE experiment_runs SET status = :s, run_id = :r"
                                      " WHERE exp_id = :e AND idx = :i",
                                      err);
    if (!s)
        return err->code;
    int rc = rlab_db_bind_text(s, ":s", status, err);
    if (!rc)
        rc = run > 0 ? rlab_db_bind_int(s, ":r", run, err) : rlab_db_bind_null(s, ":r", err);
    if (!rc)
        rc = rlab_db_bind_int(s, ":e", exp, err);
    if (!rc)
        rc = rlab_db_bind_int(s, ":i", idx, err);
    if (!rc && step_row(s, err) < 0)
        rc = err->code;
    rlab_db_finalize(s);
    return rc;
}

/* ---- per-user values of a trained model ------------------------------------------------- */

static int sweep_cancelled(void *ud) { return rlab_ctx_cancelled(ud); }

/* Rank the test targets of model `name` (on the split it was trained with, the protocol of its
 * own test metrics) and store every user's value of every metric under run. */
static int store_per_user(rlab_ctx *ctx, const char *name, int64_t run)
{
    rlab_err *err = rlab_ctx_err(ctx);
    const rlab_model *m = rlab_ctx_model(ctx, name);
    if (!m)
        return err->code;
    const rlab_dataset *ds = rlab_ctx_dataset(ctx, m->dataset);
    if (!ds)
        return err->code;
    rlab_fit_opts o;
    memset(&o, 0, sizeof o);
    rlab_config_defaults(rlab_fit_fields, NULL, &o, NULL);
    if (m->train_opts)
        rlab_config_from_json(rlab_fit_fields, &o, m->train_opts, 0, NULL);
    if (o.split == RLAB_SPLIT_NONE)
        return RLAB_OK; /* trained on everything: no test targets of its own */
    rlab_view_opts vo = {.split = o.split,
                         .valid_frac = o.valid_frac,
                         .test_frac = o.test_frac,
                         .seed = (uint64_t)o.seed};
    rlab_view *v = NULL;
    int rc = rlab_view_new(ds, &vo, &v, err);
    if (rc)
        return rc;
    rlab_eval_opts eo = {
        .neg = o.eval_neg, .seed = (uint64_t)o.seed, .cancel = sweep_cancelled, .cancel_ud = ctx};
    rlab_eval_result *r = rlab_eval_model(m, v, RLAB_VIEW_TEST, &eo, err);
    rlab_view_free(v);
    if (!r)
        return err->code ? err->code : RLAB_ENOMEM;
    rlab_db *db = rlab_ctx_db(ctx);
    rc = rlab_db_begin(db, err);
    rlab_db_stmt *s = rc ? NULL
                         : rlab_db_prepare(db,
                                           "INSERT OR REPLACE INTO run_users(run_id, split, name,"
                                           " protocol, user, value) VALUES(:r, 'test', :n, :p,"
                                           " :u, :v)",
                                           err);
    if (!rc && !s)
        rc = err->code;
    for (int i = 0; !rc && i < r->n_metrics; i++)
        for (int64_t u = 0; !rc && u < r->n_users; u++) {
            rc = rlab_db_bind_int(s, ":r", run, err);
            if (!rc)
                rc = rlab_db_bind_text(s, ":n", r->names[i], err);
            if (!rc)
                rc = rlab_db_bind_text(s, ":p", r->protocol, err);
            if (!rc)
                rc = rlab_db_bind_int(s, ":u", r->users[u], err);
            if (!rc)
                rc = rlab_db_bind_double(s, ":v", r->values[(size_t)i * r->n_users + u], err);
            if (!rc && step_row(s, err) < 0)
                rc = err->code;
        }
    rlab_db_finalize(s);
    if (!rc)
        rc = rlab_db_commit(db, err);
    else if (s)
        rlab_db_rollback(db);
    rlab_eval_result_free(r);
    return rc;
}

/* ---- running ----------------------------------------------------------------------------- */

typedef struct sw_row {
    int64_t idx, seed, run;
    int rung;
    char status[16];
    char label[256];
    char command[1536];
} sw_row;

static int rows_load(rlab_db *db, int64_t exp, sw_row **out, int *n, rlab_err *err)
{
    *out = NULL;
    *n = 0;
    rlab_db_stmt *s = rlab_db_prepare(db,
                                      "SELECT idx, seed, coalesce(run_id, 0), rung, status,"
                                      " label, command FROM experiment_runs WHERE exp_id = :e"
                                      " ORDER BY idx",
                                      err);
    if (!s)
        return err->code;
    int rc = rlab_db_bind_int(s, ":e", exp, err), r = 0, cap = 0;
    while (!rc && (r = step_row(s, err)) == 1) {
        if (*n == cap) {
            cap = cap ? 2 * cap : 32;
            sw_row *nr = rlab_realloc(*out, (size_t)cap * sizeof *nr);
            if (!nr) {
                rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
                break;
            }
            *out = nr;
        }
        sw_row *w = &(*out)[(*n)++];
        w->idx = rlab_db_column_int(s, 0);
        w->seed = rlab_db_column_int(s, 1);
        w->run = rlab_db_column_int(s, 2);
        w->rung = (int)rlab_db_column_int(s, 3);
        snprintf(w->status, sizeof w->status, "%s", rlab_db_column_text(s, 4));
        snprintf(w->label, sizeof w->label, "%s", rlab_db_column_text(s, 5));
        snprintf(w->command, sizeof w->command, "%s", rlab_db_column_text(s, 6));
    }
    if (r < 0 && !rc)
        rc = err->code;
    rlab_db_finalize(s);
    return rc;
}

/* The training budget of the first rung of successive halving, and the rung count. */
static void halving_plan(int epochs, int eta, int nconfs, int *rungs, int *e0)
{
    int R = 0;
    for (int n = nconfs; n > 1; n = (n + eta - 1) / eta)
        R++;
    int e = epochs;
    for (int i = 0; i < R && e / eta >= 1; i++)
        e /= eta;
    *rungs = R;
    *e0 = e;
}

/* The epochs= of a kind's train command (its default when the spec does not sweep it). */
static int kind_epochs(rlab_ctx *ctx, const sw_spec *sp)
{
    for (int i = 0; i < sp->naxes; i++)
        if (!strcmp(sp->axes[i].key, "epochs") && !sp->axes[i].range && sp->axes[i].nvals == 1)
            return atoi(sp->axes[i].vals[0]);
    char full[160];
    snprintf(full, sizeof full, "train %s", sp->kinds[0]);
    rlab_args *a = rlab_ctx_args(ctx, full);
    int e = 0;
    if (a && rlab_args_finish(a, rlab_ctx_err(ctx)) == RLAB_OK && rlab_args_has(a, "epochs"))
        e = (int)rlab_args_int(a, "epochs");
    rlab_args_free(a);
    return e;
}

/* After rung r is complete: keep the best 1/eta configurations (mean validation select metric
 * over seeds of each label), add their rows for rung r + 1 with eta times the epochs, mark the
 * others stopped. Returns the number of rows added (0 = the last rung is done). */
static int halving_next(rlab_ctx *ctx, int64_t exp, const char *ename, const sw_spec *sp,
                        const sw_plan *pl, int rung, int epochs, int eta, int *added)
{
    rlab_err *err = rlab_ctx_err(ctx);
    rlab_db *db = rlab_ctx_db(ctx);
    *added = 0;
    /* the score of each configuration at this rung: the best validation value of the select
     * metric the run recorded (the kept epoch), averaged over seeds */
    rlab_db_stmt *s = rlab_db_prepare(
        db,
        "SELECT e.label, avg(v.best) FROM experiment_runs e JOIN (SELECT m.run_id,"
        " max(m.value) AS best FROM metrics m JOIN runs r ON r.id = m.run_id WHERE m.split ="
        " 'valid' AND m.name = coalesce(json_extract(r.config, '$.select'), 'ndcg@10') GROUP BY"
        " m.run_id) v ON v.run_id = e.run_id WHERE e.exp_id = :e AND e.rung = :r AND e.status ="
        " 'done' GROUP BY e.label ORDER BY 2 DESC, e.label",
        err);
    if (!s)
        return err->code;
    char keep[64][256];
    int nk = 0, nlabels = 0, rc = rlab_db_bind_int(s, ":e", exp, err);
    if (!rc)
        rc = rlab_db_bind_int(s, ":r", rung, err);
    char labels[64][256];
    int r;
    while (!rc && (r = step_row(s, err)) == 1)
        if (nlabels < 64)
            snprintf(labels[nlabels++], 256, "%s", rlab_db_column_text(s, 0));
    rlab_db_finalize(s);
    if (rc || err->code)
        return rc ? rc : err->code;
    int want = nlabels / eta;
    if (nlabels <= 1 || want < 1)
        return RLAB_OK; /* one configuration left: done */
    for (int i = 0; i < want; i++)
        snprintf(keep[nk++], 256, "%s", labels[i]);
    sw_conf next[64];
    int nn = 0;
    for (int c = 0; c < pl->nconfs && nn < 64; c++)
        for (int i = 0; i < nk; i++)
            if (!strcmp(pl->confs[c].label, keep[i]))
                next[nn++] = pl->confs[c];
    rlab_ctx_printf(ctx, "sweep %s: rung %d done; %d of %d configurations go on with %d epochs",
                    ename, rung, nn, nlabels, epochs);
    rc = rlab_db_begin(db, err);
    if (rc)
        return rc;
    rlab_db_stmt *st = rlab_db_prepare(db,
                                       "UPDATE experiment_runs SET status = 'stopped' WHERE"
                                       " exp_id = :e AND rung = :r AND status = 'done' AND label"
                                       " NOT IN (SELECT value FROM json_each(:keep))",
                                       err);
    json_object *ka = json_object_new_array();
    for (int i = 0; i < nk; i++)
        json_object_array_add(ka, json_object_new_string(keep[i]));
    rc = st ? rlab_db_bind_int(st, ":e", exp, err) : err->code;
    if (!rc)
        rc = rlab_db_bind_int(st, ":r", rung, err);
    if (!rc)
        rc = rlab_db_bind_text(st, ":keep", json_object_to_json_string(ka), err);
    if (!rc && step_row(st, err) < 0)
        rc = err->code;
    rlab_db_finalize(st);
    json_object_put(ka);
    int64_t next_idx = 0;
    if (!rc) {
        rlab_db_stmt *q = rlab_db_prepare(
            db, "SELECT coalesce(max(idx), 0) + 1 FROM experiment_runs WHERE exp_id = :e", err);
        rc = q ? rlab_db_bind_int(q, ":e", exp, err) : err->code;
        if (!rc && step_row(q, err) == 1)
            next_idx = rlab_db_column_int(q, 0);
        else if (!rc)
            rc = err->code;
        rlab_db_finalize(q);
    }
    if (!rc)
        rc = rows_add(db, exp, ename, sp, next, nn, rung + 1, epochs, &next_idx, err);
    if (!rc)
        rc = rlab_db_commit(db, err);
    else
        rlab_db_rollback(db);
    if (!rc)
        *added = nn * sp->nseeds;
    return rc;
}

int rlab__cmd_sweep(rlab_ctx *ctx, const rlab_args *args)
{
    rlab_err *err = rlab_ctx_err(ctx);
    rlab_db *db = rlab_ctx_db(ctx);
    if (!db)
        return rlab_ctx_errorf(ctx, RLAB_ESTATE, "no session store: a sweep lives in one");
    sw_spec *sp = rlab_ctx_alloc(ctx, sizeof *sp);
    if (!sp)
        return rlab_ctx_errorf(ctx, RLAB_ENOMEM, "out of memory");
    const char *resume = rlab_args_str(args, "resume");
    const char *line = rlab_args_str(args, "spec");
    char stored[2048] = "";
    int64_t exp = 0;
    if (resume && *resume) {
        if (exp_find(db, resume, &exp, stored, sizeof stored, err))
            return err->code;
        if (!exp)
            return rlab_ctx_errorf(ctx, RLAB_ENOTFOUND, "experiment '%s' not found", resume);
        if (line && *line)
            return rlab_ctx_errorf(ctx, RLAB_EINVAL,
                                   "give either resume=EXP or a sweep spec, not both");
        line = stored;
    }
    if (!line || !*line)
        return rlab_ctx_errorf(ctx, RLAB_EINVAL,
                               "name the model kinds: sweep KIND[,KIND] data=... (help sweep)");
    int rc = spec_parse(sp, line, err);
    if (rc)
        return rc;
    char name[64];
    const char *given = rlab_args_str(args, "name");
    if (resume && *resume)
        snprintf(name, sizeof name, "%s", resume);
    else if (given && *given)
        snprintf(name, sizeof name, "%s", given);
    else if (sp->name[0])
        snprintf(name, sizeof name, "%s", sp->name);
    else { /* the same spec line, the same experiment: repeating the command resumes it */
        char hex[65];
        rlab_sha256_buf(sp->canon, strlen(sp->canon), hex);
        snprintf(name, sizeof name, "sweep-%.8s", hex);
    }
    sw_plan pl = {0};
    rc = plan_build(ctx, sp, &pl);
    int rungs = 0, e0 = 0, epochs = 0;
    if (!rc && sp->halving && pl.nconfs > 64)
        rc = rlab_ctx_errorf(ctx, RLAB_EINVAL,
                             "sweep: halving= takes at most 64 configurations (%d planned)",
                             pl.nconfs);
    if (!rc && sp->halving) {
        epochs = kind_epochs(ctx, sp);
        if (epochs < 1)
            rc = rlab_ctx_errorf(ctx, RLAB_EINVAL,
                                 "sweep: halving= needs kinds trained in epochs (epochs=)");
        for (int i = 0; !rc && i < sp->naxes; i++)
            if (!strcmp(sp->axes[i].key, "epochs") && (sp->axes[i].range || sp->axes[i].nvals > 1))
                rc = rlab_ctx_errorf(ctx, RLAB_EINVAL,
                                     "sweep: halving= sets epochs per rung: do not sweep epochs");
        halving_plan(epochs, sp->halving, pl.nconfs, &rungs, &e0);
    }
    if (!rc && !exp) {
        char line2[2048];
        rc = exp_find(db, name, &exp, line2, sizeof line2, err);
        if (!rc && exp && strcmp(line2, sp->canon) != 0)
            rc = rlab_ctx_errorf(ctx, RLAB_EINVAL,
                                 "experiment '%s' exists with another spec (%s): give another "
                                 "name= or resume it with sweep resume=%s",
                                 name, line2, name);
        if (!rc && !exp) {
            char *json = spec_json(sp);
            rc = json ? exp_create(db, name, sp, json, &pl, sp->halving ? e0 : 0, &exp, err)
                      : rlab_ctx_errorf(ctx, RLAB_ENOMEM, "out of memory");
            rlab_free(json);
            if (!rc)
                rlab_ctx_printf(ctx, "sweep %s: %d configuration(s) x %d seed(s) = %d runs%s", name,
                                pl.nconfs, sp->nseeds, pl.nconfs * sp->nseeds,
                                sp->halving ? " in the first rung" : "");
        } else if (!rc) {
            rlab_ctx_printf(ctx, "sweep %s: resuming", name);
        }
    }
    if (!rc)
        rc = exp_status(db, exp, "running", err);
    sw_row *rows = NULL;
    int nrows = 0, nfail = 0, ran = 0, skipped = 0;
    char first_fail[320] = "";
    for (int pass = 0; !rc; pass++) {
        rlab_free(rows);
        rows = NULL;
        if ((rc = rows_load(db, exp, &rows, &nrows, err)))
            break;
        int ndone = 0, todo = 0, top = 0;
        for (int i = 0; i < nrows; i++) {
            ndone += !strcmp(rows[i].status, "done") || !strcmp(rows[i].status, "stopped");
            if (rows[i].rung > top)
                top = rows[i].rung;
        }
        for (int i = 0; i < nrows && !rc; i++) {
            sw_row *w = &rows[i];
            if (!strcmp(w->status, "done") || !strcmp(w->status, "stopped")) {
                if (pass == 0)
                    skipped++;
                continue;
            }
            if (rlab_ctx_cancelled(ctx)) {
                rc = RLAB_ECANCELED;
                break;
            }
            todo++;
            char group[48];
            snprintf(group, sizeof group, "run %d/%d", ndone + 1, nrows);
            rlab__ctx_group(ctx, group);
            rlab_ctx_progress(ctx, ndone, nrows, "runs", 0, NULL);
            rlab_ctx_printf(ctx, "sweep %s: run %d/%d: %s", name, ndone + 1, nrows, w->command);
            rlab_result *res = NULL;
            int trc = rlab_ctx_call_line(ctx, w->command, &res);
            int64_t run = rlab__ctx_last_call_run(ctx);
            rlab_result_free(res);
            if (trc == RLAB_ECANCELED) {
                rc = trc;
                break;
            }
            char mname[96];
            snprintf(mname, sizeof mname, "%s-r%lld", name, (long long)w->idx);
            if (trc == RLAB_OK)
                trc = store_per_user(ctx, mname, run);
            if (trc == RLAB_ECANCELED) {
                rc = trc;
                break;
            }
            /* the model stays in the store's run record; the registry keeps only the session's
             * models worth naming, so a long sweep does not hold every model in memory */
            rlab_err rm = {0};
            if (!sp->keep || trc != RLAB_OK)
                rlab_models_remove(rlab_host_models(rlab_ctx_host(ctx)), mname, &rm);
            if (trc != RLAB_OK) {
                nfail++;
                if (!first_fail[0])
                    snprintf(first_fail, sizeof first_fail, "%s", err->msg);
                rlab_ctx_printf(ctx, "sweep %s: run %lld failed: %s", name, (long long)w->idx,
                                err->msg);
                err->msg[0] = '\0';
                err->code = RLAB_OK;
                rc = row_update(db, exp, w->idx, "failed", run, err);
            } else {
                rc = row_update(db, exp, w->idx, "done", run, err);
                ndone++;
                ran++;
            }
        }
        rlab__ctx_group(ctx, NULL);
        if (rc || !sp->halving || nfail)
            break;
        /* successive halving: the next rung once this one is complete */
        int e = e0;
        for (int i = 0; i < top + 1; i++)
            e *= sp->halving;
        if (e > epochs || top + 1 > rungs)
            e = epochs;
        int added = 0;
        if (top >= rungs)
            break;
        rc = halving_next(ctx, exp, name, sp, &pl, top, e, sp->halving, &added);
        if (!rc && !added)
            break;
    }
    rlab_free(pl.confs);
    int total = nrows;
    int ndone = 0;
    for (int i = 0; i < nrows; i++)
        ndone += !strcmp(rows[i].status, "done") || !strcmp(rows[i].status, "stopped");
    rlab_free(rows);
    if (exp) {
        rlab_err e2 = {0};
        const char *st = rc == RLAB_ECANCELED ? "interrupted" : rc || nfail ? "failed" : "done";
        exp_status(db, exp, st, &e2);
    }
    if (rc)
        return rc;
    rlab_ctx_progress(ctx, total, total, "runs", 0, NULL);
    rlab_ctx_result_str(ctx, "experiment", name);
    rlab_ctx_result_int(ctx, "runs", total);
    rlab_ctx_result_int(ctx, "ran", ran);
    rlab_ctx_result_int(ctx, "skipped", skipped);
    rlab_ctx_result_int(ctx, "failed", nfail);
    rlab_ctx_printf(ctx, "sweep %s: %d run(s) trained now, %d already done before%s; compare %s",
                    name, ran, skipped, nfail ? ", some failed" : "", name);
    (void)ndone;
    if (nfail)
        return rlab_ctx_errorf(ctx, RLAB_ESTATE, "%d run(s) of sweep %s failed (first: %s)", nfail,
                               name, first_fail);
    return RLAB_OK;
}

const rlab_arg rlab__sweep_args[] = {
    {.name = "spec",
     .type = RLAB_ARG_STRING,
     .flags = RLAB_ARGF_REST,
     .help = "KIND[,KIND] data=A[,B] field=v1,v2 field=lo:hi[:log][:N] seeds=1..3 "
             "[search=grid|random n=N search_seed=S] [halving=ETA] [name=EXP] [keep=true]"},
    {.name = "name",
     .type = RLAB_ARG_STRING,
     .flags = RLAB_ARGF_NEW,
     .help = "experiment name (default: sweep-<hash of the spec>, so the same line resumes)"},
    {.name = "resume",
     .type = RLAB_ARG_STRING,
     .help = "resume experiment EXP from its stored spec"},
    {0}};
