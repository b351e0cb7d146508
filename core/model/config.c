/*
 * core/model/config.c: typed configuration schemas (see config.h). Parsing is strict (the
 * whole text must be one value of the field's type, inside its range); the canonical text of
 * a float is the shortest that reads back bit-identically, so configs survive JSON and
 * checkpoint metadata exactly.
 */
#include "model/config.h"

#include <ctype.h>
#include <errno.h>
#include <json-c/json.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- access ---------------------------------------------------------------------------- */

static void *at(void *cfg, const rlab_field *fd) { return (char *)cfg + fd->offset; }
static const void *cat(const void *cfg, const rlab_field *fd)
{
    return (const char *)cfg + fd->offset;
}

int rlab_config_count(const rlab_field *f)
{
    int n = 0;
    while (f && f[n].name)
        n++;
    return n;
}

const rlab_field *rlab_config_find(const rlab_field *f, const char *name)
{
    for (; f && f->name && name; f++)
        if (strcmp(f->name, name) == 0)
            return f;
    return NULL;
}

/* The effective bounds of a numeric field: the declared ones, clipped to the C type. */
static void bounds(const rlab_field *fd, double *lo, double *hi)
{
    double tlo = -INFINITY, thi = INFINITY;
    if (fd->type == RLAB_F_INT) {
        tlo = (double)INT_MIN;
        thi = (double)INT_MAX;
    } else if (fd->type == RLAB_F_I64) {
        tlo = -9223372036854775807.0;
        thi = 9223372036854775807.0;
    } else if (fd->type == RLAB_F_FLOAT) {
        tlo = -3.4028234663852886e38;
        thi = 3.4028234663852886e38;
    }
    *lo = tlo;
    *hi = thi;
    if (fd->min < fd->max) {
        *lo = fd->min > tlo ? fd->min : tlo;
        *hi = fd->max < thi ? fd->max : thi;
    }
}

/* Shortest %g text of v that reads back as the same value (as float when is_float); whole
 * numbers below 1e15 in plain digits ("10", not "1e+01"). */
static void fmt_real(double v, int is_float, char *buf, size_t size)
{
    double fl = floor(v);
    if (fabs(v) < 1e15 && !(v > fl) && !(v < fl)) {
        snprintf(buf, size, "%.0f", v);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, size, "%.*g", prec, v);
        double back = strtod(buf, NULL);
        float fb = (float)back, fv = (float)v;
        if (is_float ? memcmp(&fb, &fv, sizeof fb) == 0 : memcmp(&back, &v, sizeof v) == 0)
            return;
    }
}

void rlab_config_expected(const rlab_field *fd, char *buf, size_t size)
{
    double lo, hi;
    bounds(fd, &lo, &hi);
    char a[40], b[40];
    switch (fd->type) {
    case RLAB_F_INT:
    case RLAB_F_I64:
        snprintf(buf, size, "integer in [%.0f, %.0f]", lo, hi);
        return;
    case RLAB_F_FLOAT:
    case RLAB_F_DOUBLE:
        if (fd->min < fd->max) {
            fmt_real(lo, 0, a, sizeof a);
            fmt_real(hi, 0, b, sizeof b);
            snprintf(buf, size, "number in [%s, %s]", a, b);
        } else {
            snprintf(buf, size, "number");
        }
        return;
    case RLAB_F_BOOL:
        snprintf(buf, size, "boolean");
        return;
    case RLAB_F_CHOICE: {
        size_t o = (size_t)snprintf(buf, size, "one of ");
        for (int i = 0; fd->choices && fd->choices[i] && o < size; i++)
            o += (size_t)snprintf(buf + o, size - o, "%s%s", i ? "|" : "", fd->choices[i]);
        return;
    }
    case RLAB_F_STR:
        snprintf(buf, size, "text of at most %zu bytes", fd->size ? fd->size - 1 : 0);
        return;
    }
    snprintf(buf, size, "value");
}

static int parse_bool(const char *s, int *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1", NULL};
    static const char *const no[] = {"false", "no", "off", "0", NULL};
    for (int i = 0; yes[i]; i++)
        if (strcasecmp(s, yes[i]) == 0)
            return *out = 1, 1;
    for (int i = 0; no[i]; i++)
        if (strcasecmp(s, no[i]) == 0)
            return *out = 0, 1;
    return 0;
}

int rlab_config_set_field(const rlab_field *fd, void *cfg, const char *text, rlab_err *err)
{
    char exp[160];
    if (!text)
        text = "";
    double lo, hi;
    bounds(fd, &lo, &hi);
    switch (fd->type) {
    case RLAB_F_INT:
    case RLAB_F_I64: {
        char *end = NULL;
        errno = 0;
        long long v = strtoll(text, &end, 10);
        if (end == text || *end || errno || (double)v < lo || (double)v > hi)
            break;
        if (fd->type == RLAB_F_INT)
            *(int *)at(cfg, fd) = (int)v;
        else
            *(int64_t *)at(cfg, fd) = (int64_t)v;
        return RLAB_OK;
    }
    case RLAB_F_FLOAT:
    case RLAB_F_DOUBLE: {
        char *end = NULL;
        errno = 0;
        double v = strtod(text, &end);
        if (end == text || *end || !isfinite(v) || v < lo || v > hi)
            break;
        if (fd->type == RLAB_F_FLOAT)
            *(float *)at(cfg, fd) = (float)v;
        else
            *(double *)at(cfg, fd) = v;
        return RLAB_OK;
    }
    case RLAB_F_BOOL: {
        int b = 0;
        if (!parse_bool(text, &b))
            break;
        *(int *)at(cfg, fd) = b;
        return RLAB_OK;
    }
    case RLAB_F_CHOICE:
        for (int i = 0; fd->choices && fd->choices[i]; i++)
            if (strcmp(fd->choices[i], text) == 0) {
                *(int *)at(cfg, fd) = i;
                return RLAB_OK;
            }
        break;
    case RLAB_F_STR:
        if (strlen(text) + 1 > fd->size)
            break;
        memcpy(at(cfg, fd), text, strlen(text) + 1);
        return RLAB_OK;
    }
    rlab_config_expected(fd, exp, sizeof exp);
    return rlab_errf(err, RLAB_EINVAL, "bad value for '%s' (%s expected, got '%s')", fd->name, exp,
                     text);
}

int rlab_config_set(const rlab_field *f, void *cfg, const char *key, const char *text,
                    rlab_err *err)
{
    const rlab_field *fd = rlab_config_find(f, key);
    if (!fd)
        return rlab_errf(err, RLAB_ENOTFOUND, "unknown field '%s'", key ? key : "");
    return rlab_config_set_field(fd, cfg, text, err);
}

void rlab_config_text(const rlab_field *fd, const void *cfg, char *buf, size_t size)
{
    const void *p = cat(cfg, fd);
    switch (fd->type) {
    case RLAB_F_INT:
        snprintf(buf, size, "%d", *(const int *)p);
        return;
    case RLAB_F_I64:
        snprintf(buf, size, "%lld", (long long)*(const int64_t *)p);
        return;
    case RLAB_F_FLOAT:
        fmt_real((double)*(const float *)p, 1, buf, size);
        return;
    case RLAB_F_DOUBLE:
        fmt_real(*(const double *)p, 0, buf, size);
        return;
    case RLAB_F_BOOL:
        snprintf(buf, size, "%s", *(const int *)p ? "true" : "false");
        return;
    case RLAB_F_CHOICE: {
        int i = *(const int *)p, n = 0;
        while (fd->choices && fd->choices[n])
            n++;
        snprintf(buf, size, "%s", i >= 0 && i < n ? fd->choices[i] : "");
        return;
    }
    case RLAB_F_STR:
        snprintf(buf, size, "%s", (const char *)p);
        return;
    }
    if (size)
        buf[0] = '\0';
}

const char *rlab_config_default(const rlab_field *fd, const rlab_kv *overrides)
{
    for (const rlab_kv *o = overrides; o && o->key; o++)
        if (strcmp(o->key, fd->name) == 0)
            return o->value;
    return fd->def;
}

int rlab_config_defaults(const rlab_field *f, const rlab_kv *overrides, void *cfg, rlab_err *err)
{
    for (const rlab_field *fd = f; fd && fd->name; fd++) {
        const char *d = rlab_config_default(fd, overrides);
        if (!d) {
            /* no default: the type's zero */
            if (fd->type == RLAB_F_STR)
                memset(at(cfg, fd), 0, fd->size);
            else if (rlab_config_set_field(fd, cfg,
                                           fd->type == RLAB_F_CHOICE ? fd->choices[0]
                                           : fd->type == RLAB_F_BOOL ? "false"
                                                                     : "0",
                                           err))
                return err ? err->code : RLAB_EINVAL;
            continue;
        }
        if (rlab_config_set_field(fd, cfg, d, err))
            return err ? err->code : RLAB_EINVAL;
    }
    return RLAB_OK;
}

int rlab_config_check_value(const rlab_field *fd, const char *text, rlab_err *err)
{
    /* parse into scratch space big enough for any field */
    union {
        int64_t i;
        double d;
        char s[256];
    } scratch;
    rlab_field probe = *fd;
    probe.offset = 0;
    if (probe.type == RLAB_F_STR && probe.size > sizeof scratch.s)
        probe.size = sizeof scratch.s;
    return rlab_config_set_field(&probe, &scratch, text, err);
}

int rlab_config_check_table(const rlab_field *f, rlab_err *err)
{
    for (const rlab_field *fd = f; fd && fd->name; fd++) {
        if (!fd->name[0])
            return rlab_errf(err, RLAB_EINVAL, "config field with an empty name");
        for (const char *c = fd->name; *c; c++)
            if (!isalnum((unsigned char)*c) && *c != '_')
                return rlab_errf(err, RLAB_EINVAL, "config field '%s': bad name", fd->name);
        for (const rlab_field *e = f; e != fd; e++)
            if (strcmp(e->name, fd->name) == 0)
                return rlab_errf(err, RLAB_EINVAL, "config field '%s' declared twice", fd->name);
        if (fd->type < RLAB_F_INT || fd->type > RLAB_F_STR)
            return rlab_errf(err, RLAB_EINVAL, "config field '%s' has no type", fd->name);
        if (fd->type == RLAB_F_CHOICE && (!fd->choices || !fd->choices[0]))
            return rlab_errf(err, RLAB_EINVAL, "config field '%s' has no choices", fd->name);
        if (fd->type == RLAB_F_STR && fd->size < 2)
            return rlab_errf(err, RLAB_EINVAL, "config field '%s' has no buffer size", fd->name);
        rlab_err e = {0};
        if (fd->def && rlab_config_check_value(fd, fd->def, &e))
            return rlab_errf(err, RLAB_EINVAL, "config field '%s': bad default: %s", fd->name,
                             e.msg);
    }
    return RLAB_OK;
}

/* ---- JSON ------------------------------------------------------------------------------- */

char *rlab_config_to_json(const rlab_field *f, const void *cfg)
{
    json_object *o = json_object_new_object();
    if (!o)
        return NULL;
    char buf[512];
    for (const rlab_field *fd = f; fd && fd->name; fd++) {
        json_object *j = NULL;
        rlab_config_text(fd, cfg, buf, sizeof buf);
        switch (fd->type) {
        case RLAB_F_INT:
            j = json_object_new_int64(*(const int *)cat(cfg, fd));
            break;
        case RLAB_F_I64:
            j = json_object_new_int64(*(const int64_t *)cat(cfg, fd));
            break;
        case RLAB_F_FLOAT:
        case RLAB_F_DOUBLE:
            j = json_object_new_double_s(strtod(buf, NULL), buf);
            break;
        case RLAB_F_BOOL:
            j = json_object_new_boolean(*(const int *)cat(cfg, fd) != 0);
            break;
        case RLAB_F_CHOICE:
        case RLAB_F_STR:
            j = json_object_new_string(buf);
            break;
        }
        json_object_object_add(o, fd->name, j);
    }
    char *out = rlab_strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    return out;
}

int rlab_config_from_json(const rlab_field *f, void *cfg, const char *json, int strict,
                          rlab_err *err)
{
    json_tokener *tok = json_tokener_new();
    if (!tok)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    json_object *o = json_tokener_parse_ex(tok, json ? json : "", json ? (int)strlen(json) : 0);
    int ok = o && json_tokener_get_error(tok) == json_tokener_success &&
             json_object_is_type(o, json_type_object);
    json_tokener_free(tok);
    if (!ok) {
        json_object_put(o);
        return rlab_errf(err, RLAB_EFORMAT, "config: not a JSON object");
    }
    int rc = RLAB_OK;
    json_object_object_foreach(o, key, val)
    {
        const rlab_field *fd = rlab_config_find(f, key);
        if (!fd) {
            if (strict) {
                rc = rlab_errf(err, RLAB_EFORMAT, "config: unknown field '%s'", key);
                break;
            }
            continue;
        }
        const char *text;
        char buf[64];
        if (json_object_is_type(val, json_type_boolean)) {
            text = json_object_get_boolean(val) ? "true" : "false";
        } else if (json_object_is_type(val, json_type_int)) {
            snprintf(buf, sizeof buf, "%lld", (long long)json_object_get_int64(val));
            text = buf;
        } else if (json_object_is_type(val, json_type_double) ||
                   json_object_is_type(val, json_type_string)) {
            text = json_object_get_string(val); /* the number's original text for doubles */
        } else {
            rc = rlab_errf(err, RLAB_EFORMAT, "config: field '%s' has a %s value", key,
                           json_type_to_name(json_object_get_type(val)));
            break;
        }
        rlab_err e = {0};
        if (rlab_config_set_field(fd, cfg, text, &e)) {
            rc = rlab_errf(err, RLAB_EFORMAT, "config: %s", e.msg);
            break;
        }
    }
    json_object_put(o);
    return rc;
}
