/*
 * core/host/args.c: command arguments. One table (rlab_arg[]) drives the shell parser, the
 * Lua binding's setters, default handling, every error message, `help <cmd>` and tab
 * completion, so the shell and Lua forms cannot drift apart.
 */
#include "host/host_internal.h"

#include <ctype.h>
#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct argval {
    int set;   /* has a value (given or default) */
    int given; /* given by the user */
    int64_t i;
    double f;
    char *s; /* text of the value (owned); for numbers the canonical text */
} argval;

struct rlab_args {
    rlab_host *host;
    const rlab_cmd_rec *rec;
    int nargs;
    int npos; /* positional arguments consumed */
    int finished;
    argval v[];
};

/* ---- small string builder ------------------------------------------------------------ */
typedef struct sbuf {
    char *p;
    size_t n, cap;
    int oom;
} sbuf;

static void sb_add(sbuf *b, const char *fmt, ...) RLAB_PRINTF(2, 3);
static void sb_add(sbuf *b, const char *fmt, ...)
{
    if (b->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = b->cap - b->n;
        int k = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? room : 0, fmt, ap);
        va_end(ap);
        if (k < 0) {
            b->oom = 1;
            return;
        }
        if (b->p && (size_t)k < room) {
            b->n += (size_t)k;
            return;
        }
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + (size_t)k + 1)
            cap *= 2;
        char *np = rlab_realloc(b->p, cap);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
}

static char *sb_take(sbuf *b)
{
    if (b->oom || !b->p) {
        rlab_free(b->p);
        return b->oom ? NULL : rlab_strdup("");
    }
    return b->p;
}

/* ---- declarations -------------------------------------------------------------------- */

const char *rlab__type_name(rlab_type t)
{
    switch (t) {
    case RLAB_ARG_INT:
        return "int";
    case RLAB_ARG_FLOAT:
        return "float";
    case RLAB_ARG_STRING:
        return "string";
    case RLAB_ARG_BOOL:
        return "bool";
    case RLAB_ARG_CHOICE:
        return "choice";
    case RLAB_ARG_DATASET:
        return "dataset";
    case RLAB_ARG_MODEL:
        return "model";
    case RLAB_ARG_PATH:
        return "path";
    }
    return "?";
}

/* The values an RLAB_ARG_INT argument accepts. Without RLAB_ARGF_INT64 the type is int32_t
 * (so `(int)rlab_args_int()` is always safe): declared bounds narrow [INT32_MIN, INT32_MAX],
 * a declared bound outside it is clamped. With RLAB_ARGF_INT64 the declared bounds apply to
 * the int64_t range. *shown_lo / *shown_hi say whether a message should show that bound (a
 * declared one, or the int32 limit). */
static void int_bounds(const rlab_arg *a, int64_t *lo, int64_t *hi, int *shown_lo, int *shown_hi)
{
    int wide = (a->flags & RLAB_ARGF_INT64) != 0;
    int64_t tlo = wide ? INT64_MIN : INT32_MIN, thi = wide ? INT64_MAX : INT32_MAX;
    *lo = tlo;
    *hi = thi;
    /* compare as doubles before converting: (int64_t) of a double beyond the range is UB */
    if (a->flags & RLAB_ARGF_MIN)
        *lo = ceil(a->min) <= (double)tlo   ? tlo
              : ceil(a->min) >= (double)thi ? thi
                                            : (int64_t)ceil(a->min);
    if (a->flags & RLAB_ARGF_MAX)
        *hi = floor(a->max) >= (double)thi   ? thi
              : floor(a->max) <= (double)tlo ? tlo
                                             : (int64_t)floor(a->max);
    *shown_lo = !wide || (a->flags & RLAB_ARGF_MIN);
    *shown_hi = !wide || (a->flags & RLAB_ARGF_MAX);
}

static int int_in_bounds(const rlab_arg *a, int64_t v)
{
    int64_t lo, hi;
    int shown_lo, shown_hi;
    int_bounds(a, &lo, &hi, &shown_lo, &shown_hi);
    return v >= lo && v <= hi;
}

/* "%g" without trailing noise, for bounds and float values in messages */
static void fmt_num(char *buf, size_t size, double v) { snprintf(buf, size, "%.15g", v); }

/* What a valid value looks like: "integer >= 1", "number in [0, 1]", "one of a|b". */
static void expected(const rlab_arg *a, char *buf, size_t size)
{
    char lo[32], hi[32];
    const char *what = "value";
    switch (a->type) {
    case RLAB_ARG_INT:
        what = "integer";
        break;
    case RLAB_ARG_FLOAT:
        what = "number";
        break;
    case RLAB_ARG_STRING:
        what = "string";
        break;
    case RLAB_ARG_BOOL:
        what = "boolean";
        break;
    case RLAB_ARG_DATASET:
        what = "dataset name";
        break;
    case RLAB_ARG_MODEL:
        what = "model name";
        break;
    case RLAB_ARG_PATH:
        what = "path";
        break;
    case RLAB_ARG_CHOICE: {
        size_t n = (size_t)snprintf(buf, size, "one of ");
        for (int i = 0; a->choices && a->choices[i] && n < size; i++)
            n += (size_t)snprintf(buf + n, size - n, "%s%s", i ? "|" : "", a->choices[i]);
        return;
    }
    }
    int has_lo = (a->flags & RLAB_ARGF_MIN) && a->type == RLAB_ARG_FLOAT;
    int has_hi = (a->flags & RLAB_ARGF_MAX) && a->type == RLAB_ARG_FLOAT;
    if (a->type == RLAB_ARG_INT) {
        int64_t ilo, ihi;
        int_bounds(a, &ilo, &ihi, &has_lo, &has_hi);
        snprintf(lo, sizeof lo, "%lld", (long long)ilo);
        snprintf(hi, sizeof hi, "%lld", (long long)ihi);
    } else {
        fmt_num(lo, sizeof lo, a->min);
        fmt_num(hi, sizeof hi, a->max);
    }
    if (has_lo && has_hi)
        snprintf(buf, size, "%s in [%s, %s]", what, lo, hi);
    else if (has_lo)
        snprintf(buf, size, "%s >= %s", what, lo);
    else if (has_hi)
        snprintf(buf, size, "%s <= %s", what, hi);
    else
        snprintf(buf, size, "%s", what);
}

static int parse_i64(const char *s, int64_t *out)
{
    if (!s || !*s || isspace((unsigned char)*s))
        return 0;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno || *end)
        return 0;
    *out = (int64_t)v;
    return 1;
}

static int parse_f64(const char *s, double *out)
{
    if (!s || !*s || isspace((unsigned char)*s))
        return 0;
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (errno == ERANGE || *end || !isfinite(v))
        return 0;
    *out = v;
    return 1;
}

static int parse_bool(const char *s, int *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return 1;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return 1;
        }
    }
    return 0;
}

static int in_range(const rlab_arg *a, double v)
{
    if ((a->flags & RLAB_ARGF_MIN) && v < a->min)
        return 0;
    if ((a->flags & RLAB_ARGF_MAX) && v > a->max)
        return 0;
    return 1;
}

/* Convert text to a typed value. Returns 0 on success; else 1 = not parseable (got shown
 * quoted), 2 = parseable but out of range/choices (got shown as typed for numbers). */
static int convert(const rlab_arg *a, const char *text, argval *out)
{
    memset(out, 0, sizeof *out);
    switch (a->type) {
    case RLAB_ARG_INT:
        if (!parse_i64(text, &out->i))
            return 1;
        out->f = (double)out->i;
        return int_in_bounds(a, out->i) ? 0 : 2;
    case RLAB_ARG_FLOAT:
        if (!parse_f64(text, &out->f))
            return 1;
        return in_range(a, out->f) ? 0 : 2;
    case RLAB_ARG_BOOL: {
        int b;
        if (!parse_bool(text, &b))
            return 1;
        out->i = b;
        out->f = b;
        return 0;
    }
    case RLAB_ARG_CHOICE:
        for (int i = 0; a->choices && a->choices[i]; i++)
            if (strcmp(a->choices[i], text) == 0) {
                out->i = i;
                return 0;
            }
        return 1;
    case RLAB_ARG_DATASET:
    case RLAB_ARG_MODEL:
        return *text ? 0 : 1;
    case RLAB_ARG_STRING:
    case RLAB_ARG_PATH:
        return 0;
    }
    return 1;
}

int rlab__check_default(const rlab_arg *a, char *why, size_t size)
{
    if (!a->def)
        return 0;
    argval v;
    if (convert(a, a->def, &v) == 0)
        return 0;
    char exp[160];
    expected(a, exp, sizeof exp);
    snprintf(why, size, "bad default '%s' (%s expected)", a->def, exp);
    return 1;
}

/* ---- rlab_args ------------------------------------------------------------------------ */

rlab_args *rlab_args_new(rlab_host *host, const char *full, rlab_err *err)
{
    const rlab_cmd_rec *rec = host && full ? rlab__find_cmd_rec(host, full) : NULL;
    if (!rec) {
        rlab_errf(err, RLAB_ENOTFOUND, "unknown command '%s'", full ? full : "");
        return NULL;
    }
    rlab_args *a = rlab_calloc(1, sizeof *a + (size_t)rec->nargs * sizeof(argval));
    if (!a) {
        rlab_errf(err, RLAB_ENOMEM, "%s: out of memory", rec->full);
        return NULL;
    }
    a->host = host;
    a->rec = rec;
    a->nargs = rec->nargs;
    return a;
}

void rlab_args_free(rlab_args *args)
{
    if (!args)
        return;
    for (int i = 0; i < args->nargs; i++)
        rlab_free(args->v[i].s);
    rlab_free(args);
}

const rlab_cmd_ref *rlab_args_cmd(const rlab_args *args) { return args ? &args->rec->ref : NULL; }

int rlab_args_has(const rlab_args *args, const char *name)
{
    for (int i = 0; args && name && i < args->nargs; i++)
        if (strcmp(args->rec->ref.cmd->args[i].name, name) == 0)
            return 1;
    return 0;
}

const rlab_arg *rlab__args_decl(const rlab_args *args, int i)
{
    return &args->rec->ref.cmd->args[i];
}

int rlab__args_count(const rlab_args *args) { return args->nargs; }

int rlab__args_is_set(const rlab_args *args, int i) { return args->v[i].set; }

static int find_arg(const rlab_args *args, const char *key)
{
    for (int i = 0; key && i < args->nargs; i++)
        if (strcmp(args->rec->ref.cmd->args[i].name, key) == 0)
            return i;
    return -1;
}

static int bad(const rlab_args *args, const rlab_arg *a, rlab_err *err, const char *fmt, ...)
    RLAB_PRINTF(4, 5);
static int bad(const rlab_args *args, const rlab_arg *a, rlab_err *err, const char *fmt, ...)
{
    char got[200], exp[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(got, sizeof got, fmt, ap);
    va_end(ap);
    expected(a, exp, sizeof exp);
    return rlab_errf(err, RLAB_EINVAL, "%s: bad argument '%s' (%s expected, got %s)",
                     args->rec->full, a->name, exp, got);
}

/* Store v (with its text) into slot i unless it was given already. */
static int store(rlab_args *args, int i, argval *v, const char *text, int given, rlab_err *err)
{
    const rlab_arg *a = &args->rec->ref.cmd->args[i];
    if (given && args->v[i].given)
        return rlab_errf(err, RLAB_EINVAL, "%s: argument '%s' given twice", args->rec->full,
                         a->name);
    v->s = rlab_strdup(text);
    if (!v->s)
        return rlab_errf(err, RLAB_ENOMEM, "%s: out of memory", args->rec->full);
    rlab_free(args->v[i].s);
    v->set = 1;
    v->given = given;
    args->v[i] = *v;
    return RLAB_OK;
}

/* Edit distance of a and b, capped: enough to tell a typo (epoch, dataset=) from another
 * word. */
static int near_words(const char *a, const char *b)
{
    size_t n = strlen(a), m = strlen(b);
    if (n > 31 || m > 31)
        return 99;
    int d[32][32];
    for (size_t i = 0; i <= n; i++)
        for (size_t j = 0; j <= m; j++) {
            if (!i || !j) {
                d[i][j] = (int)(i + j);
                continue;
            }
            int c = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            int x = d[i - 1][j] + 1, y = d[i][j - 1] + 1;
            d[i][j] = c < x ? (c < y ? c : y) : (x < y ? x : y);
        }
    return d[n][m];
}

/* The unknown key's likely meaning: a near name (one edit, two for names of 6+ letters, or a
 * prefix of 3+ letters either way), or the command's one dataset / model argument for data=,
 * dataset=, model=. */
static const char *suggest_arg(const rlab_args *args, const char *key)
{
    const rlab_arg *decl = args->rec->ref.cmd->args;
    const char *best = NULL;
    int bd = 3;
    for (int i = 0; key && *key && i < args->nargs; i++) {
        const char *nm = decl[i].name;
        size_t kn = strlen(key), nn = strlen(nm);
        int d = near_words(key, nm);
        if (d > 2 && kn >= 3 && nn >= 3 &&
            strncmp(key, nm, kn < nn ? kn : nn) == 0) /* dim / dimension */
            d = 1;
        if (d < bd && d <= (nn >= 6 ? 2 : 1) && d < (int)nn) {
            bd = d;
            best = nm;
        }
    }
    if (best || !key)
        return best;
    int want = !strcmp(key, "model") || !strcmp(key, "victim")   ? RLAB_ARG_MODEL
               : !strcmp(key, "data") || !strcmp(key, "dataset") ? RLAB_ARG_DATASET
                                                                 : 0;
    for (int i = 0; want && i < args->nargs; i++)
        if ((int)decl[i].type == want) {
            if (best)
                return NULL; /* two of them: no guess */
            best = decl[i].name;
        }
    return best;
}

static int unknown(const rlab_args *args, const char *key, rlab_err *err)
{
    const char *s = suggest_arg(args, key);
    if (s)
        return rlab_errf(err, RLAB_EINVAL, "%s: unknown argument '%s' (did you mean %s=?)",
                         args->rec->full, key, s);
    return rlab_errf(err, RLAB_EINVAL, "%s: unknown argument '%s'", args->rec->full,
                     key ? key : "");
}

static int set_text(rlab_args *args, int i, const char *value, int given, rlab_err *err)
{
    const rlab_arg *a = &args->rec->ref.cmd->args[i];
    argval v;
    int r = convert(a, value, &v);
    if (r == 1)
        return bad(args, a, err, "'%s'", value);
    if (r == 2)
        return bad(args, a, err, "%s", value);
    return store(args, i, &v, value, given, err);
}

int rlab_args_set(rlab_args *args, const char *key, const char *value, rlab_err *err)
{
    if (!args || !value)
        return rlab_errf(err, RLAB_EINVAL, "rlab_args_set: no args or value");
    int i = find_arg(args, key);
    if (i < 0)
        return unknown(args, key, err);
    return set_text(args, i, value, 1, err);
}

int rlab_args_set_next(rlab_args *args, const char *value, rlab_err *err)
{
    if (!args || !value)
        return rlab_errf(err, RLAB_EINVAL, "rlab_args_set_next: no args or value");
    int last = args->npos - 1;
    if (last >= 0 && (args->rec->ref.cmd->args[last].flags & RLAB_ARGF_REST)) {
        /* the rest of the values: appended to the argument, blank-separated */
        const char *had = args->v[last].s ? args->v[last].s : "";
        size_t n = strlen(had) + strlen(value) + 2;
        char *joined = rlab_malloc(n);
        if (!joined)
            return rlab_errf(err, RLAB_ENOMEM, "%s: out of memory", args->rec->full);
        snprintf(joined, n, "%s%s%s", had, *had ? " " : "", value);
        args->v[last].given = 0; /* replaced, not given twice */
        int rc = set_text(args, last, joined, 1, err);
        rlab_free(joined);
        return rc;
    }
    if (args->npos >= args->nargs)
        return rlab_errf(err, RLAB_EINVAL, "%s: too many arguments (takes %d, got '%s')",
                         args->rec->full, args->nargs, value);
    int rc = set_text(args, args->npos, value, 1, err);
    if (rc == RLAB_OK)
        args->npos++;
    return rc;
}

int rlab_args_set_int(rlab_args *args, const char *key, int64_t v, rlab_err *err)
{
    int i = find_arg(args, key);
    if (i < 0)
        return unknown(args, key, err);
    const rlab_arg *a = &args->rec->ref.cmd->args[i];
    char text[32];
    snprintf(text, sizeof text, "%lld", (long long)v);
    if (a->type != RLAB_ARG_INT && a->type != RLAB_ARG_FLOAT)
        return bad(args, a, err, "number %s", text);
    return set_text(args, i, text, 1, err);
}

int rlab_args_set_float(rlab_args *args, const char *key, double v, rlab_err *err)
{
    int i = find_arg(args, key);
    if (i < 0)
        return unknown(args, key, err);
    const rlab_arg *a = &args->rec->ref.cmd->args[i];
    char text[40];
    fmt_num(text, sizeof text, v);
    if (a->type == RLAB_ARG_INT) {
        /* an integral float (Lua 20.0) is fine; anything else is not an integer */
        if (!(isfinite(v) && v >= -9.2e18 && v <= 9.2e18 && floor(v) >= v))
            return bad(args, a, err, "%s", text);
        return rlab_args_set_int(args, key, (int64_t)v, err);
    }
    if (a->type != RLAB_ARG_FLOAT)
        return bad(args, a, err, "number %s", text);
    if (!isfinite(v))
        return bad(args, a, err, "%s", text);
    return set_text(args, i, text, 1, err);
}

int rlab_args_set_bool(rlab_args *args, const char *key, int v, rlab_err *err)
{
    int i = find_arg(args, key);
    if (i < 0)
        return unknown(args, key, err);
    const rlab_arg *a = &args->rec->ref.cmd->args[i];
    if (a->type != RLAB_ARG_BOOL)
        return bad(args, a, err, "boolean %s", v ? "true" : "false");
    return set_text(args, i, v ? "true" : "false", 1, err);
}

int rlab__args_resolve(rlab_args *args, const char *key, const char *value, rlab_err *err)
{
    int i = args ? find_arg(args, key) : -1;
    if (i < 0)
        return unknown(args, key, err);
    int given = args->v[i].given;
    args->v[i].given = 0; /* a resolved value replaces the given one (not "given twice") */
    int rc = set_text(args, i, value, 0, err);
    if (rc)
        args->v[i].given = given;
    return rc;
}

int rlab_args_type_error(rlab_args *args, const char *key, const char *got, rlab_err *err)
{
    int i = find_arg(args, key);
    if (i < 0)
        return unknown(args, key, err);
    return bad(args, &args->rec->ref.cmd->args[i], err, "%s", got ? got : "nothing");
}

int rlab_args_finish(rlab_args *args, rlab_err *err)
{
    if (!args)
        return rlab_errf(err, RLAB_EINVAL, "rlab_args_finish: no args");
    for (int i = 0; i < args->nargs; i++) {
        const rlab_arg *a = &args->rec->ref.cmd->args[i];
        if (args->v[i].set)
            continue;
        if (a->flags & RLAB_ARGF_REQUIRED)
            return rlab_errf(err, RLAB_EINVAL, "%s: missing argument '%s'", args->rec->full,
                             a->name);
        if (a->def) {
            int rc = set_text(args, i, a->def, 0, err); /* checked at load, cannot fail but OOM */
            if (rc)
                return rc;
        }
    }
    args->finished = 1;
    return RLAB_OK;
}

char *rlab_args_to_json(const rlab_args *args)
{
    if (!args)
        return NULL;
    json_object *o = json_object_new_object();
    if (!o)
        return NULL;
    for (int i = 0; i < args->nargs; i++) {
        const rlab_arg *a = &args->rec->ref.cmd->args[i];
        const argval *v = &args->v[i];
        json_object *j = NULL;
        if (!v->set) {
            continue; /* not given, no default, not resolved: absent, not null */
        } else if (a->type == RLAB_ARG_INT) {
            j = json_object_new_int64(v->i);
        } else if (a->type == RLAB_ARG_FLOAT) {
            /* the shortest text that reads back as the same double: 0.005, not
             * 0.0050000000000000001 (what json-c's default %.17g prints) */
            char num[32];
            for (int prec = 15; prec <= 17; prec++) {
                snprintf(num, sizeof num, "%.*g", prec, v->f);
                double back = strtod(num, NULL);
                if (memcmp(&back, &v->f, sizeof back) == 0) /* exact round trip */
                    break;
            }
            j = json_object_new_double_s(v->f, num);
        } else if (a->type == RLAB_ARG_BOOL) {
            j = json_object_new_boolean(v->i != 0);
        } else {
            j = json_object_new_string(v->s);
        }
        json_object_object_add(o, a->name, j);
    }
    char *out = rlab_strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    return out;
}

/* ---- getters for plugins ------------------------------------------------------------- */

static const argval *getv(const rlab_args *args, const char *name, const char *fn)
{
    int i = args ? find_arg(args, name) : -1;
    if (i < 0) {
        rlab_log(RLAB_LOG_WARN, "%s: %s('%s'): no such argument", args ? args->rec->full : "?", fn,
                 name ? name : "");
        return NULL;
    }
    return args->v[i].set ? &args->v[i] : NULL;
}

int64_t rlab_args_int(const rlab_args *args, const char *name)
{
    const argval *v = getv(args, name, "rlab_args_int");
    return v ? v->i : 0;
}

double rlab_args_float(const rlab_args *args, const char *name)
{
    const argval *v = getv(args, name, "rlab_args_float");
    return v ? v->f : 0.0;
}

int rlab_args_bool(const rlab_args *args, const char *name)
{
    const argval *v = getv(args, name, "rlab_args_bool");
    return v ? (int)v->i : 0;
}

const char *rlab_args_str(const rlab_args *args, const char *name)
{
    const argval *v = getv(args, name, "rlab_args_str");
    return v ? v->s : NULL;
}

int rlab_args_choice(const rlab_args *args, const char *name)
{
    int i = args ? find_arg(args, name) : -1;
    if (i < 0 || !args->v[i].set || args->rec->ref.cmd->args[i].type != RLAB_ARG_CHOICE)
        return -1;
    return (int)args->v[i].i;
}

int rlab_args_given(const rlab_args *args, const char *name)
{
    int i = args ? find_arg(args, name) : -1;
    return i >= 0 && args->v[i].given;
}

/* ---- the shell form --------------------------------------------------------------------- */

static int is_name_char(int c, int first)
{
    return isalpha(c) || c == '_' || (!first && (isdigit(c) || c == '-' || c == '.'));
}

/* Read one token from *pp into a fresh string. *key receives the key of a key=value token
 * (fresh string) or NULL. Returns 1 with a token, 0 at end of line, -1 on an unterminated
 * quote, -2 on ENOMEM. */
static int next_token(const char **pp, char **tok, char **key)
{
    const char *p = *pp;
    *tok = *key = NULL;
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    if (!*p) {
        *pp = p;
        return 0;
    }
    size_t cap = strlen(p) + 1, n = 0;
    char *buf = rlab_malloc(cap);
    if (!buf)
        return -2;
    int bare = 1; /* nothing quoted or escaped yet, and all name characters */
    while (*p && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
        if (*p == '=' && bare && n > 0 && !*key) {
            buf[n] = '\0';
            *key = rlab_strdup(buf);
            if (!*key) {
                rlab_free(buf);
                return -2;
            }
            n = 0;
            p++;
            continue;
        }
        if (*p == '\'' || *p == '"') {
            char q = *p++;
            bare = 0;
            while (*p && *p != q) {
                if (q == '"' && *p == '\\' && (p[1] == '"' || p[1] == '\\'))
                    p++;
                buf[n++] = *p++;
            }
            if (*p != q) {
                rlab_free(buf);
                rlab_free(*key);
                *key = NULL;
                *pp = p;
                return -1;
            }
            p++;
            continue;
        }
        if (*p == '\\' && p[1]) {
            bare = 0;
            p++;
            buf[n++] = *p++;
            continue;
        }
        if (!*key && !is_name_char((unsigned char)*p, n == 0))
            bare = 0;
        buf[n++] = *p++;
    }
    buf[n] = '\0';
    *tok = buf;
    *pp = p;
    return 1;
}

int rlab_host_parse(rlab_host *host, const char *line, rlab_args **out, rlab_err *err)
{
    *out = NULL;
    if (!line)
        return rlab_errf(err, RLAB_EINVAL, "empty command line");
    const char *p = line;
    char *tok, *key;
    int r = next_token(&p, &tok, &key);
    if (r == 0)
        return rlab_errf(err, RLAB_EINVAL, "empty command line");
    if (r == -2)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory parsing a command line");
    if (r == -1)
        return rlab_errf(err, RLAB_EINVAL, "unterminated quote");
    if (key) { /* "x=1" as a command */
        int rc = rlab_errf(err, RLAB_ENOTFOUND, "unknown command '%s=%s'", key, tok);
        rlab_free(key);
        rlab_free(tok);
        return rc;
    }
    if (strcmp(tok, "train") == 0) {
        /* `train KIND ...`: the kind's generated command (verbs.c) */
        const char *q = p;
        char *kt, *kk;
        int r2 = next_token(&q, &kt, &kk);
        if (r2 == 1 && !kk) {
            char full[160];
            snprintf(full, sizeof full, "train %s", kt);
            if (rlab__find_cmd_rec(host, full)) {
                rlab_free(tok);
                tok = rlab_strdup(full);
                p = q;
                if (!tok) {
                    rlab_free(kt);
                    return rlab_errf(err, RLAB_ENOMEM, "out of memory parsing a command line");
                }
            } else {
                char *kinds = rlab__kind_list(host);
                int rc = rlab_errf(err, RLAB_ENOTFOUND, "train: unknown model kind '%s' (%s)", kt,
                                   kinds ? kinds : "");
                rlab_free(kinds);
                rlab_free(kt);
                rlab_free(tok);
                return rc;
            }
        }
        rlab_free(kt);
        rlab_free(kk);
    }
    rlab_args *args = rlab_args_new(host, tok, err);
    rlab_free(tok);
    if (!args)
        return err ? err->code : RLAB_ENOTFOUND;
    int rc = RLAB_OK;
    while (rc == RLAB_OK) {
        const char *start = p; /* where the next word starts (for an RLAB_ARGF_REST value) */
        while (*start == ' ' || *start == '\t' || *start == '\n' || *start == '\r')
            start++;
        r = next_token(&p, &tok, &key);
        if (r == 0)
            break;
        if (r == -1) {
            rc = rlab_errf(err, RLAB_EINVAL, "%s: unterminated quote", args->rec->full);
            break;
        }
        if (r == -2) {
            rc = rlab_errf(err, RLAB_ENOMEM, "%s: out of memory", args->rec->full);
            break;
        }
        if (!key && args->npos < args->nargs &&
            (args->rec->ref.cmd->args[args->npos].flags & RLAB_ARGF_REST)) {
            /* the rest of the line, verbatim from this word on (quotes and '=' kept) */
            size_t n = strlen(start);
            while (n > 0 && (start[n - 1] == ' ' || start[n - 1] == '\t' || start[n - 1] == '\n' ||
                             start[n - 1] == '\r'))
                n--;
            char *rest = rlab_malloc(n + 1);
            if (rest) {
                memcpy(rest, start, n);
                rest[n] = '\0';
                rc = rlab_args_set_next(args, rest, err);
            } else {
                rc = rlab_errf(err, RLAB_ENOMEM, "%s: out of memory", args->rec->full);
            }
            rlab_free(rest);
            rlab_free(tok);
            break;
        }
        rc = key ? rlab_args_set(args, key, tok, err) : rlab_args_set_next(args, tok, err);
        rlab_free(key);
        rlab_free(tok);
    }
    if (rc) {
        rlab_args_free(args);
        return rc;
    }
    *out = args;
    return RLAB_OK;
}

/* ---- help ------------------------------------------------------------------------------ */

static void first_line(const char *s, char *buf, size_t size)
{
    size_t n = 0;
    while (s && s[n] && s[n] != '\n' && n + 1 < size) {
        buf[n] = s[n];
        n++;
    }
    buf[n] = '\0';
}

/* One plugin's section of the help: its name, version and summary, then its commands (a
 * model kind's hidden `train KIND` record shows the kind's summary). */
static void plugin_help(sbuf *b, const rlab_host *host, const rlab_plugin *pl)
{
    sb_add(b, "%s %s: %s\n", pl->name, pl->version ? pl->version : "",
           pl->summary ? pl->summary : "");
    for (int i = 0; i < host->ncmds; i++) {
        const rlab_cmd_rec *c = host->cmds[i];
        if (strcmp(c->plugin->name, pl->name) != 0)
            continue;
        if (c->hidden) {
            sb_add(b, "  %-22s %s\n", c->full, c->kind->summary ? c->kind->summary : "");
            continue;
        }
        char line[160];
        first_line(c->ref.cmd->help, line, sizeof line);
        sb_add(b, "  %-22s %s%s\n", c->full, line,
               (c->ref.cmd->flags & RLAB_CMD_JOB) ? " [job]" : "");
    }
}

char *rlab_host_help(rlab_host *host)
{
    sbuf b = {0};
    sb_add(&b, "Commands (help <command> for details):\n");
    for (int pi = 0; pi < rlab_host_plugin_count(host); pi++)
        plugin_help(&b, host, rlab_host_plugin_at(host, pi));
    char *more = host->help_fn ? host->help_fn(NULL, host->help_ud) : NULL;
    if (more)
        sb_add(&b, "%s%s", more, more[0] && more[strlen(more) - 1] != '\n' ? "\n" : "");
    rlab_free(more);
    return sb_take(&b);
}

void rlab_host_set_help_fn(rlab_host *host, rlab_help_fn fn, void *ud)
{
    if (!host)
        return;
    host->help_fn = fn;
    host->help_ud = fn ? ud : NULL;
}

static int is_example(const char *line) { return strncmp(line, "Example: ", 9) == 0; }

/* The help text without its "Example: " lines (keep = 0), or only those (keep = 1), each
 * example indented under "examples:". */
static void add_help_lines(sbuf *b, const char *help, int examples)
{
    int first = 1;
    for (const char *p = help; p && *p;) {
        const char *nl = strchr(p, '\n');
        int n = nl ? (int)(nl - p) : (int)strlen(p);
        if (is_example(p) == examples) {
            if (examples && first)
                sb_add(b, "examples:\n");
            if (examples)
                sb_add(b, "  %.*s\n", n - 9, p + 9);
            else
                sb_add(b, "%.*s\n", n, p);
            first = 0;
        }
        p = nl ? nl + 1 : p + n;
    }
}

/* "<int>", "a|b", "<dataset>"... for usage lines */
static void placeholder(const rlab_arg *a, char *buf, size_t size)
{
    if (a->type == RLAB_ARG_CHOICE) {
        size_t n = 0;
        buf[0] = '\0';
        for (int i = 0; a->choices && a->choices[i] && n < size; i++)
            n += (size_t)snprintf(buf + n, size - n, "%s%s", i ? "|" : "", a->choices[i]);
        return;
    }
    snprintf(buf, size, "<%s>", rlab__type_name(a->type));
}

char *rlab_host_help_cmd(rlab_host *host, const char *full, rlab_err *err)
{
    const rlab_cmd_rec *c = host && full ? rlab__find_cmd_rec(host, full) : NULL;
    if (!c) {
        char *topic = host && full && host->help_fn ? host->help_fn(full, host->help_ud) : NULL;
        for (int pi = 0; !topic && host && full && pi < rlab_host_plugin_count(host); pi++) {
            const rlab_plugin *pl = rlab_host_plugin_at(host, pi);
            if (strcmp(pl->name, full) != 0)
                continue;
            sbuf b = {0}; /* `help PLUGIN`: the plugin's commands and model kinds */
            plugin_help(&b, host, pl);
            int kinds = 0;
            for (int i = 0; i < host->ncmds; i++)
                kinds += host->cmds[i]->kind && strcmp(host->cmds[i]->plugin->name, pl->name) == 0;
            sb_add(&b, "help %s.COMMAND%s for details.\n", pl->name,
                   kinds ? " (or help train KIND)" : "");
            topic = sb_take(&b);
        }
        if (!topic)
            rlab_errf(err, RLAB_ENOTFOUND, "unknown command '%s'", full ? full : "");
        return topic;
    }
    const rlab_cmd *cmd = c->ref.cmd;
    sbuf b = {0};
    sb_add(&b, "usage: %s", c->full);
    int width = 0;
    for (int i = 0; i < c->nargs; i++) {
        const rlab_arg *a = &cmd->args[i];
        char ph[160];
        placeholder(a, ph, sizeof ph);
        int req = (a->flags & RLAB_ARGF_REQUIRED) != 0;
        if (a->flags & RLAB_ARGF_REST) /* typed as the rest of the line */
            sb_add(&b, " %s%s...%s", req ? "" : "[", a->name, req ? "" : "]");
        else
            sb_add(&b, " %s%s=%s%s", req ? "" : "[", a->name, ph, req ? "" : "]");
        int w = (int)(strlen(a->name) + 1 + strlen(ph));
        if (w > width)
            width = w;
    }
    sb_add(&b, "\n");
    add_help_lines(&b, cmd->help, 0);
    if (strcmp(c->full, "train") == 0) {
        char *kinds = rlab__kind_list(host);
        sb_add(&b, "Model kinds (help train KIND for their fields): %s\n", kinds ? kinds : "");
        rlab_free(kinds);
    }
    if (cmd->flags & RLAB_CMD_JOB)
        sb_add(&b, "Runs as a job: progress in the status line, Ctrl-C cancels.\n");
    if (c->nargs) {
        sb_add(&b, "arguments (key=value, or positional in this order):\n");
        for (int i = 0; i < c->nargs; i++) {
            const rlab_arg *a = &cmd->args[i];
            char ph[160], kv[200], exp[200];
            placeholder(a, ph, sizeof ph);
            snprintf(kv, sizeof kv, "%s=%s", a->name, ph);
            sb_add(&b, "  %-*s  %s (", width, kv, a->help ? a->help : "");
            if (a->flags & RLAB_ARGF_REQUIRED)
                sb_add(&b, "required");
            else if (a->def)
                sb_add(&b, "default %s", a->def);
            else
                sb_add(&b, "optional");
            if ((a->type == RLAB_ARG_INT || a->type == RLAB_ARG_FLOAT) &&
                (a->flags & (RLAB_ARGF_MIN | RLAB_ARGF_MAX))) {
                expected(a, exp, sizeof exp);
                sb_add(&b, "; %s", exp);
            }
            if (a->type == RLAB_ARG_CHOICE) {
                expected(a, exp, sizeof exp);
                sb_add(&b, "; %s", exp);
            }
            if (a->flags & RLAB_ARGF_REST)
                sb_add(&b, "; the rest of the line");
            sb_add(&b, ")\n");
        }
    }
    add_help_lines(&b, cmd->help, 1);
    char *s = sb_take(&b);
    if (!s)
        rlab_errf(err, RLAB_ENOMEM, "out of memory formatting help");
    return s;
}

/* ---- completion ----------------------------------------------------------------------- */

typedef struct strv {
    char **v;
    int n, cap;
    int oom;
} strv;

static void sv_add(strv *s, const char *a, const char *b)
{
    if (s->oom)
        return;
    if (s->n + 2 > s->cap) {
        int cap = s->cap ? 2 * s->cap : 16;
        char **nv = rlab_realloc(s->v, (size_t)cap * sizeof *nv);
        if (!nv) {
            s->oom = 1;
            return;
        }
        s->v = nv;
        s->cap = cap;
    }
    size_t la = strlen(a), lb = b ? strlen(b) : 0;
    char *x = rlab_malloc(la + lb + 1);
    if (!x) {
        s->oom = 1;
        return;
    }
    memcpy(x, a, la);
    if (b)
        memcpy(x + la, b, lb);
    x[la + lb] = '\0';
    s->v[s->n++] = x;
    s->v[s->n] = NULL;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

void rlab_strv_free(char **v)
{
    if (!v)
        return;
    for (char **p = v; *p; p++)
        rlab_free(*p);
    rlab_free(v);
}

static int starts(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

char **rlab_host_complete(rlab_host *host, const char *line)
{
    strv out = {0};
    if (!line)
        line = "";
    /* split off the last word (blank-separated; quotes are not interpreted here) */
    size_t len = strlen(line);
    size_t ws = len;
    while (ws > 0 && line[ws - 1] != ' ' && line[ws - 1] != '\t')
        ws--;
    const char *word = line + ws;
    size_t s0 = 0;
    while (s0 < ws && (line[s0] == ' ' || line[s0] == '\t'))
        s0++;
    if (s0 >= ws) {
        /* first word: command names */
        for (int i = 0; i < host->ncmds; i++)
            if (!host->cmds[i]->hidden && starts(host->cmds[i]->full, word))
                sv_add(&out, host->cmds[i]->full, NULL);
    } else {
        char cmdname[160];
        size_t e = s0;
        while (e < ws && line[e] != ' ' && line[e] != '\t')
            e++;
        snprintf(cmdname, sizeof cmdname, "%.*s", (int)(e - s0), line + s0);
        if (strcmp(cmdname, "train") == 0) {
            /* train KIND: the kind is the second word */
            size_t k0 = e;
            while (k0 < ws && (line[k0] == ' ' || line[k0] == '\t'))
                k0++;
            if (k0 >= ws) {
                for (int i = 0; i < host->ncmds; i++)
                    if (host->cmds[i]->kind && starts(host->cmds[i]->kind->name, word))
                        sv_add(&out, host->cmds[i]->kind->name, NULL);
            } else {
                size_t k1 = k0;
                while (k1 < ws && line[k1] != ' ' && line[k1] != '\t')
                    k1++;
                snprintf(cmdname, sizeof cmdname, "train %.*s", (int)(k1 - k0), line + k0);
            }
        }
        const rlab_cmd_rec *c = rlab__find_cmd_rec(host, cmdname);
        const char *eq = strchr(word, '=');
        for (int i = 0; c && i < c->nargs; i++) {
            const rlab_arg *a = &c->ref.cmd->args[i];
            if (!eq) {
                /* argument names not yet present on the line */
                char pat[80];
                snprintf(pat, sizeof pat, " %s=", a->name);
                if (strstr(line, pat) || !starts(a->name, word))
                    continue;
                sv_add(&out, a->name, "=");
                continue;
            }
            size_t kl = (size_t)(eq - word);
            if (strlen(a->name) != kl || strncmp(a->name, word, kl) != 0)
                continue;
            char key[80];
            snprintf(key, sizeof key, "%s=", a->name);
            const char *val = eq + 1;
            if (a->type == RLAB_ARG_CHOICE) {
                for (int j = 0; a->choices && a->choices[j]; j++)
                    if (starts(a->choices[j], val))
                        sv_add(&out, key, a->choices[j]);
            } else if (a->type == RLAB_ARG_BOOL) {
                if (starts("true", val))
                    sv_add(&out, key, "true");
                if (starts("false", val))
                    sv_add(&out, key, "false");
            } else if (a->type == RLAB_ARG_DATASET) {
                char **names = rlab_host_dataset_names(host);
                for (char **p = names; p && *p; p++)
                    if (starts(*p, val))
                        sv_add(&out, key, *p);
                rlab_strv_free(names);
            } else if (a->type == RLAB_ARG_MODEL) {
                rlab_model_info *info = NULL;
                int n = 0;
                if (rlab_models_list(host->models, &info, &n, NULL) == RLAB_OK)
                    for (int j = 0; j < n; j++)
                        if (starts(info[j].name, val))
                            sv_add(&out, key, info[j].name);
                rlab_free(info);
            }
        }
    }
    if (out.oom) {
        out.v = out.v ? out.v : NULL;
        if (out.v) {
            out.v[out.n] = NULL;
            rlab_strv_free(out.v);
        }
        return NULL;
    }
    if (!out.v) {
        out.v = rlab_calloc(1, sizeof *out.v);
        return out.v;
    }
    qsort(out.v, (size_t)out.n, sizeof *out.v, cmp_str);
    return out.v;
}

/* "pop|itemknn|bprmf|..." of every generated train command. Caller frees. */
char *rlab__kind_list(const rlab_host *host)
{
    sbuf b = {0};
    int n = 0;
    for (int i = 0; i < host->ncmds; i++)
        if (host->cmds[i]->kind)
            sb_add(&b, "%s%s", n++ ? "|" : "", host->cmds[i]->kind->name);
    return sb_take(&b);
}
