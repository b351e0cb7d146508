/*
 * core/data/load_recbole: RecBole atomic files (.inter, .item, .user). The first line is a
 * tab-separated header of `name:type`; every later line has exactly as many tab-separated
 * fields. token_seq / float_seq values are space separated inside their field.
 */
#include "data/loaders.h"
#include "data/tokenizer.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

typedef enum { T_TOKEN, T_TOKEN_SEQ, T_FLOAT, T_FLOAT_SEQ } atype;

typedef struct hcol {
    char name[64];
    atype type;
    int role; /* what the loader does with the column (R_* below) */
    int slot; /* label index or feature column index */
} hcol;

enum { R_IGNORE, R_USER, R_ITEM, R_TS, R_RATING, R_LABEL, R_KEY, R_FEAT };

#define MAX_COLS 256

/* Parse the header line into cols; returns the column count or -1 (err filled). */
static int parse_header(rlab_reader *r, const char *s, size_t n, hcol *cols, rlab_err *err)
{
    rlab_field f[MAX_COLS + 1];
    size_t nf = rlab_split_fields(s, n, "\t", f, MAX_COLS + 1);
    if (nf > MAX_COLS) {
        rlab_errf_at(err, RLAB_EFORMAT, r->name, r->line,
                     "header has %zu fields, expected at most %d", nf, MAX_COLS);
        return -1;
    }
    for (size_t i = 0; i < nf; i++) {
        char q[48];
        rlab_ld_quote(q, f[i]);
        const char *colon = NULL;
        for (size_t k = f[i].n; k > 0; k--)
            if (f[i].p[k - 1] == ':') {
                colon = f[i].p + k - 1;
                break;
            }
        if (!colon || colon == f[i].p) {
            rlab_errf_at(err, RLAB_EFORMAT, r->name, r->line,
                         "header field %zu '%s' is not name:type, expected e.g. item_id:token",
                         i + 1, q);
            return -1;
        }
        size_t nl = (size_t)(colon - f[i].p), tl = f[i].n - nl - 1;
        const char *t = colon + 1;
        if (nl >= sizeof cols[i].name) {
            rlab_errf_at(err, RLAB_EFORMAT, r->name, r->line,
                         "header field %zu name is %zu bytes, expected at most 63", i + 1, nl);
            return -1;
        }
        hcol *c = &cols[i];
        memset(c, 0, sizeof *c);
        memcpy(c->name, f[i].p, nl);
        c->name[nl] = '\0';
        if (tl == 5 && memcmp(t, "token", 5) == 0)
            c->type = T_TOKEN;
        else if (tl == 9 && memcmp(t, "token_seq", 9) == 0)
            c->type = T_TOKEN_SEQ;
        else if (tl == 5 && memcmp(t, "float", 5) == 0)
            c->type = T_FLOAT;
        else if (tl == 9 && memcmp(t, "float_seq", 9) == 0)
            c->type = T_FLOAT_SEQ;
        else {
            rlab_errf_at(err, RLAB_EFORMAT, r->name, r->line,
                         "unknown type in header field '%s', expected token, token_seq, "
                         "float or float_seq",
                         q);
            return -1;
        }
        for (size_t k = 0; k < i; k++)
            if (strcmp(cols[k].name, c->name) == 0) {
                rlab_errf_at(err, RLAB_EFORMAT, r->name, r->line,
                             "duplicate header field '%s', expected unique names", c->name);
                return -1;
            }
    }
    return (int)nf;
}

/* Validate every space-separated number of a float_seq field. */
static int check_float_seq(rlab_reader *r, rlab_field f, const hcol *c, rlab_err *err)
{
    rlab_field v[1];
    const char *p = f.p, *end = f.p + f.n;
    while (p < end) {
        const char *sp = memchr(p, ' ', (size_t)(end - p));
        const char *e = sp ? sp : end;
        double x;
        if (e > p && rlab_parse_f64(p, (size_t)(e - p), &x)) {
            v[0].p = p;
            v[0].n = (size_t)(e - p);
            char q[48];
            rlab_ld_quote(q, v[0]);
            return rlab_errf_at(err, RLAB_EFORMAT, r->name, r->line,
                                "column %s: '%s' is not a number, expected float_seq values",
                                c->name, q);
        }
        p = sp ? sp + 1 : end;
    }
    return RLAB_OK;
}

/* A float field: empty -> NAN (missing). */
static int get_float(rlab_reader *r, rlab_field f, const hcol *c, float *out, rlab_err *err)
{
    if (f.n == 0) {
        *out = NAN;
        return RLAB_OK;
    }
    int rc = rlab_parse_f32(f.p, f.n, out);
    if (rc) {
        char q[48];
        rlab_ld_quote(q, f);
        return rlab_errf_at(err, RLAB_EFORMAT, r->name, r->line, "column %s: '%s' is %s, %s",
                            c->name, q, rlab_parse_why(rc),
                            rc == RLAB_EINVAL ? "expected a float in float32 range"
                                              : "expected a float");
    }
    return RLAB_OK;
}

/* Read the first non-blank line as header. */
static int read_header(rlab_reader *r, hcol *cols, int *ncols, const char *what, rlab_err *err)
{
    const char *s;
    size_t n;
    int rc;
    while ((rc = rlab_reader_next(r, &s, &n, err)) == RLAB_OK && s && n == 0) {
    }
    if (rc)
        return rc;
    if (!s)
        return rlab_errf_at(err, RLAB_EFORMAT, r->name, 0,
                            "empty file, expected a header of name:type fields (%s)", what);
    int nc = parse_header(r, s, n, cols, err);
    if (nc < 0)
        return err ? err->code : RLAB_EFORMAT;
    *ncols = nc;
    return RLAB_OK;
}

int rlab_ld_recbole_inter(rlab_reader *r, rlab_dataset *ds, rlab_err *err)
{
    hcol cols[MAX_COLS];
    int nc, rc;
    if ((rc = read_header(r, cols, &nc, "user_id:token item_id:token ...", err)))
        return rc;
    int cu = -1, ci = -1, cts = -1, crat = -1;
    rlab_inter *t = &ds->inter;
    for (int k = 0; k < nc; k++) {
        hcol *c = &cols[k];
        if (strcmp(c->name, "user_id") == 0 || strcmp(c->name, "item_id") == 0) {
            if (c->type != T_TOKEN)
                return rlab_errf_at(err, RLAB_EFORMAT, r->name, r->line,
                                    "column %s must have type token", c->name);
            c->role = c->name[0] == 'u' ? R_USER : R_ITEM;
            *(c->name[0] == 'u' ? &cu : &ci) = k;
        } else if (strcmp(c->name, "timestamp") == 0 && c->type == T_FLOAT) {
            c->role = R_TS;
            cts = k;
        } else if (strcmp(c->name, "rating") == 0 && c->type == T_FLOAT) {
            c->role = R_RATING;
            crat = k;
        } else if (c->type == T_FLOAT && t->nlabels < RLAB_INTER_MAX_LABELS) {
            c->role = R_LABEL;
            c->slot = t->nlabels;
            size_t l = strlen(c->name); /* label names are cut at 31 bytes */
            l = l < sizeof t->label_names[0] ? l : sizeof t->label_names[0] - 1;
            memcpy(t->label_names[t->nlabels], c->name, l);
            t->label_names[t->nlabels][l] = '\0';
            t->nlabels++;
        } else if (c->type == T_FLOAT) {
            rlab_log(RLAB_LOG_WARN, "%s: more than %d label columns, '%s' ignored", r->name,
                     RLAB_INTER_MAX_LABELS, c->name);
        }
    }
    if (cu < 0 || ci < 0)
        return rlab_errf_at(err, RLAB_EFORMAT, r->name, r->line,
                            "header lacks %s, expected user_id:token and item_id:token",
                            cu < 0 ? "user_id" : "item_id");
    t->flags |= cts >= 0 ? RLAB_INTER_HAS_TS : RLAB_INTER_SYNTH_TS;
    if (crat >= 0)
        t->flags |= RLAB_INTER_HAS_RATING;
    rlab_i64map pos = {0};
    rlab_field f[MAX_COLS + 1];
    const char *s;
    size_t n;
    while ((rc = rlab_reader_next(r, &s, &n, err)) == RLAB_OK && s) {
        if (n == 0)
            continue;
        size_t nf = rlab_split_fields(s, n, "\t", f, MAX_COLS + 1);
        if (nf != (size_t)nc) {
            rc = rlab_errf_at(err, RLAB_EFORMAT, r->name, r->line,
                              "expected %d tab-separated fields (as in the header), got %zu", nc,
                              nf);
            break;
        }
        if (f[cu].n == 0 || f[ci].n == 0) {
            rc = rlab_errf_at(err, RLAB_EFORMAT, r->name, r->line, "empty %s, expected a token",
                              f[cu].n == 0 ? "user_id" : "item_id");
            break;
        }
        int32_t u = rlab_vocab_add(&ds->users, f[cu].p, f[cu].n);
        int32_t i = rlab_vocab_add(&ds->items, f[ci].p, f[ci].n);
        float rating = 1.0f, labels[RLAB_INTER_MAX_LABELS] = {0};
        int64_t ts = 0;
        if (u < 0 || i < 0) {
            rc = rlab_errf_at(err, RLAB_ENOMEM, r->name, r->line, "out of memory");
            break;
        }
        for (int k = 0; k < nc && !rc; k++) {
            hcol *c = &cols[k];
            if (c->role == R_RATING) {
                rc = get_float(r, f[k], c, &rating, err);
            } else if (c->role == R_LABEL) {
                rc = get_float(r, f[k], c, &labels[c->slot], err);
            } else if (c->role == R_TS) {
                int prc = rlab_parse_ts(f[k].p, f[k].n, &ts);
                if (prc) {
                    char q[48];
                    rlab_ld_quote(q, f[k]);
                    rc = rlab_errf_at(err, RLAB_EFORMAT, r->name, r->line,
                                      "timestamp '%s' is %s, expected a number that fits in "
                                      "64-bit seconds",
                                      q, rlab_parse_why(prc));
                }
            } else if (c->type == T_FLOAT && f[k].n) {
                float x;
                rc = get_float(r, f[k], c, &x, err);
            } else if (c->type == T_FLOAT_SEQ) {
                rc = check_float_seq(r, f[k], c, err);
            }
        }
        if (rc)
            break;
        if (cts < 0) {
            int64_t *p = rlab_i64map_at(&pos, u);
            if (!p) {
                rc = rlab_errf_at(err, RLAB_ENOMEM, r->name, r->line, "out of memory");
                break;
            }
            ts = (*p)++;
        }
        if (rlab_inter_push(t, u, i, ts, rating, labels)) {
            rc = rlab_errf_at(err, RLAB_ENOMEM, r->name, r->line, "out of memory");
            break;
        }
    }
    rlab_i64map_clear(&pos);
    if (rc == RLAB_OK && t->n == 0)
        rc = rlab_errf_at(err, RLAB_EFORMAT, r->name, 0,
                          "no interactions after the header, expected at least one row");
    return rc;
}

static int name_is_text(const char *name)
{
    static const char *const words[] = {"title", "name", "desc", "text", "review"};
    for (size_t k = 0; k < sizeof words / sizeof words[0]; k++)
        if (strstr(name, words[k]))
            return 1;
    return 0;
}

int rlab_ld_recbole_feats(rlab_reader *r, rlab_dataset *ds, int user_side, rlab_err *err)
{
    hcol cols[MAX_COLS];
    int nc, rc;
    const char *key = user_side ? "user_id" : "item_id";
    rlab_vocab *ents = user_side ? &ds->users : &ds->items;
    rlab_feats *feats = user_side ? &ds->user_feats : &ds->item_feats;
    if ((rc = read_header(r, cols, &nc, key, err)))
        return rc;
    rlab_fb fb;
    rlab_fb_init(&fb, feats);
    int ck = -1;
    for (int k = 0; k < nc && !rc; k++) {
        hcol *c = &cols[k];
        if (strcmp(c->name, key) == 0 && ck < 0) {
            if (c->type != T_TOKEN)
                rc = rlab_errf_at(err, RLAB_EFORMAT, r->name, r->line,
                                  "column %s must have type token", key);
            c->role = R_KEY;
            ck = k;
            continue;
        }
        if (c->type == T_FLOAT_SEQ)
            continue; /* no feature kind: validated, then dropped */
        rlab_feat_kind kind = c->type == T_TOKEN      ? RLAB_FEAT_TOKEN
                              : c->type == T_FLOAT    ? RLAB_FEAT_FLOAT
                              : name_is_text(c->name) ? RLAB_FEAT_TEXT
                                                      : RLAB_FEAT_TOKEN_SEQ;
        c->role = R_FEAT;
        c->slot = rlab_fb_add_col(&fb, c->name, kind);
        if (c->slot < 0)
            rc = rlab_errf_at(err, c->slot == -2 ? RLAB_EFORMAT : RLAB_ENOMEM, r->name, r->line,
                              "cannot add column '%s' (out of memory or already loaded)", c->name);
    }
    if (!rc && ck < 0)
        rc = rlab_errf_at(err, RLAB_EFORMAT, r->name, r->line, "header lacks %s, expected %s:token",
                          key, key);
    rlab_i64map seen = {0};
    rlab_field f[MAX_COLS + 1];
    const char *s;
    size_t n;
    int rows = 0;
    while (!rc && (rc = rlab_reader_next(r, &s, &n, err)) == RLAB_OK && s) {
        if (n == 0)
            continue;
        size_t nf = rlab_split_fields(s, n, "\t", f, MAX_COLS + 1);
        if (nf != (size_t)nc) {
            rc = rlab_errf_at(err, RLAB_EFORMAT, r->name, r->line,
                              "expected %d tab-separated fields (as in the header), got %zu", nc,
                              nf);
            break;
        }
        if (f[ck].n == 0) {
            rc = rlab_errf_at(err, RLAB_EFORMAT, r->name, r->line, "empty %s, expected a token",
                              key);
            break;
        }
        int32_t e = rlab_vocab_add(ents, f[ck].p, f[ck].n);
        int64_t *seenp = e >= 0 ? rlab_i64map_at(&seen, e) : NULL;
        if (!seenp) {
            rc = rlab_errf_at(err, RLAB_ENOMEM, r->name, r->line, "out of memory");
            break;
        }
        if (*seenp) {
            rc = rlab_errf_at(err, RLAB_EFORMAT, r->name, r->line,
                              "duplicate %s (first on line %lld), expected one row per %s", key,
                              (long long)*seenp, key);
            break;
        }
        *seenp = r->line;
        rows++;
        for (int k = 0; k < nc && !rc; k++) {
            hcol *c = &cols[k];
            if (c->type == T_FLOAT_SEQ) {
                rc = check_float_seq(r, f[k], c, err);
                continue;
            }
            if (c->role != R_FEAT)
                continue;
            rlab_feat_col *fc = &feats->cols[c->slot];
            int mem = RLAB_OK;
            if (fc->kind == RLAB_FEAT_TOKEN) {
                mem = rlab_fb_set_token(&fb, c->slot, e, f[k].p, f[k].n);
            } else if (fc->kind == RLAB_FEAT_FLOAT) {
                float x;
                rc = get_float(r, f[k], c, &x, err);
                if (!rc)
                    mem = rlab_fb_set_float(&fb, c->slot, e, x);
            } else if (fc->kind == RLAB_FEAT_TEXT) {
                char *txt = f[k].n ? rlab_strndup(f[k].p, f[k].n) : NULL;
                mem = f[k].n && !txt ? RLAB_ENOMEM : rlab_fb_set_text(&fb, c->slot, e, txt);
            } else {
                const char *p = f[k].p, *end = f[k].p + f[k].n;
                while (p < end && !mem) {
                    const char *sp = memchr(p, ' ', (size_t)(end - p));
                    const char *q = sp ? sp : end;
                    if (q > p)
                        mem = rlab_fb_add_seq(&fb, c->slot, e, p, (size_t)(q - p));
                    p = sp ? sp + 1 : end;
                }
            }
            if (mem)
                rc = rlab_errf_at(err, RLAB_ENOMEM, r->name, r->line, "out of memory");
        }
    }
    rlab_i64map_clear(&seen);
    if (!rc && rows == 0)
        rc = rlab_errf_at(err, RLAB_EFORMAT, r->name, 0,
                          "no rows after the header, expected one row per %s", key);
    if (rc) {
        rlab_fb_clear(&fb);
        return rc;
    }
    if (rlab_fb_finish(&fb, rlab_vocab_size(ents)))
        return rlab_errf_at(err, RLAB_ENOMEM, r->name, 0, "out of memory");
    return RLAB_OK;
}

static int is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* Find the .inter file of a folder: <folder>.inter, else the only *.inter in it. */
static int find_inter(const char *dir, char *out, size_t size, rlab_err *err)
{
    char base[RLAB_LD_NAME_BUF];
    rlab_ld_default_name(dir, base, sizeof base);
    char want[RLAB_LD_NAME_BUF + 8];
    snprintf(want, sizeof want, "%s.inter", base);
    if (rlab_ld_join(out, size, dir, want) == RLAB_OK && is_file(out))
        return RLAB_OK;
    DIR *d = opendir(dir);
    if (!d)
        return rlab_errf_at(err, RLAB_EIO, dir, 0, "cannot open folder");
    int found = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (l > 6 && strcmp(de->d_name + l - 6, ".inter") == 0) {
            if (found++ == 0 && rlab_ld_join(out, size, dir, de->d_name) != RLAB_OK)
                found = 99;
        }
    }
    closedir(d);
    if (found == 1)
        return RLAB_OK;
    return rlab_errf_at(err, RLAB_EIO, dir, 0,
                        found ? "several .inter files, expected %s or exactly one .inter"
                              : "no .inter file, expected %s",
                        want);
}

static int run(const char *path, rlab_dataset *ds, int kind, rlab_err *err)
{
    rlab_reader r;
    int rc = rlab_reader_open(&r, path, RLAB_READ_UTF8, err);
    if (rc == RLAB_OK)
        rc = kind == 0 ? rlab_ld_recbole_inter(&r, ds, err)
                       : rlab_ld_recbole_feats(&r, ds, kind == 2, err);
    rlab_reader_close(&r);
    if (rc == RLAB_OK)
        rlab_ld_set(ds, NULL, path);
    return rc;
}

int rlab_load_recbole(const char *path, const char *name, rlab_dataset **out, rlab_err *err)
{
    *out = NULL;
    char inter[1024], sib[1100];
    struct stat st;
    int rc;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        if ((rc = find_inter(path, inter, sizeof inter, err)))
            return rc;
    } else {
        size_t l = strlen(path);
        if (l < 6 || strcmp(path + l - 6, ".inter") != 0 || l >= sizeof inter)
            return rlab_errf_at(err, RLAB_EINVAL, path, 0,
                                "expected a .inter file or a folder holding one");
        memcpy(inter, path, l + 1);
    }
    char def[RLAB_LD_NAME_BUF];
    if (!name) {
        rlab_ld_default_name(inter, def, sizeof def);
        name = def;
    }
    rlab_dataset *ds = NULL;
    if ((rc = rlab_ld_new_dataset(name, name == def, &ds, err)))
        return rc;
    rc = run(inter, ds, 0, err);
    size_t stem = strlen(inter) - 6;
    for (int kind = 1; kind <= 2 && rc == RLAB_OK; kind++) {
        snprintf(sib, sizeof sib, "%.*s%s", (int)stem, inter, kind == 1 ? ".item" : ".user");
        if (is_file(sib))
            rc = run(sib, ds, kind, err);
    }
    if (rc) {
        rlab_dataset_free(ds);
        return rc;
    }
    rlab_ld_set(ds, "recbole", NULL);
    *out = ds;
    return RLAB_OK;
}
