/*
 * core/data/load_csv: CSV / TSV interactions with a caller-given column mapping. Quoted
 * fields ("a, b", "" for a quote) are handled within one line; a quote never spans lines.
 */
#include "data/loaders.h"
#include "data/tokenizer.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

void rlab_csv_opts_init(rlab_csv_opts *o)
{
    memset(o, 0, sizeof *o);
    o->sep = ",";
    o->header = 1;
    o->quoted = 1;
    o->user_col = 0;
    o->item_col = 1;
    o->ts_col = -1;
    o->rating_col = -1;
    for (int k = 0; k < RLAB_INTER_MAX_LABELS; k++)
        o->label_cols[k] = -1;
}

/* Split with quotes; unquoted text is referenced in place, quoted text is unescaped into
 * scratch (at least n bytes). Returns the field count, or -(column) of a malformed quote. */
static long split_quoted(const char *s, size_t n, const char *sep, rlab_field *f, size_t maxf,
                         char *scratch)
{
    size_t sl = strlen(sep), nf = 0, i = 0, o = 0;
    for (;;) {
        rlab_field x;
        if (i < n && s[i] == '"') {
            size_t start = i, b = o;
            i++;
            for (;;) {
                if (i >= n)
                    return -(long)(start + 1); /* unterminated */
                if (s[i] == '"') {
                    if (i + 1 < n && s[i + 1] == '"') {
                        scratch[o++] = '"';
                        i += 2;
                        continue;
                    }
                    i++;
                    break;
                }
                scratch[o++] = s[i++];
            }
            if (i < n && !(n - i >= sl && memcmp(s + i, sep, sl) == 0))
                return -(long)(i + 1); /* text after the closing quote */
            x.p = scratch + b;
            x.n = o - b;
        } else {
            size_t b = i;
            while (i < n && !(s[i] == sep[0] && n - i >= sl && memcmp(s + i, sep, sl) == 0))
                i++;
            x.p = s + b;
            x.n = i - b;
        }
        if (nf < maxf)
            f[nf] = x;
        nf++;
        if (i >= n)
            return (long)nf;
        i += sl; /* at a separator: a field follows, possibly empty */
        if (i >= n) {
            if (nf < maxf) {
                f[nf].p = s + n;
                f[nf].n = 0;
            }
            return (long)(nf + 1);
        }
    }
}

typedef struct csv_state {
    const rlab_csv_opts *o;
    const char *sep;
    rlab_field *f;
    size_t fcap;
    char *scratch;
    size_t scap;
} csv_state;

/* Split one line into st->f (grown as needed). Returns the count or -1 (err filled). */
static long split_line(csv_state *st, rlab_reader *r, const char *s, size_t n, rlab_err *err)
{
    for (;;) {
        long nf;
        if (st->o->quoted) {
            if (st->scap < n + 1) {
                char *p = rlab_realloc(st->scratch, n + 1);
                if (!p) {
                    rlab_errf_at(err, RLAB_ENOMEM, r->name, r->line, "out of memory");
                    return -1;
                }
                st->scratch = p;
                st->scap = n + 1;
            }
            nf = split_quoted(s, n, st->sep, st->f, st->fcap, st->scratch);
            if (nf < 0) {
                rlab_errf_at(err, RLAB_EFORMAT, r->name, r->line,
                             "bad quoting at column %ld, expected \"...\" followed by the "
                             "separator or the end of the line",
                             -nf);
                return -1;
            }
        } else {
            nf = (long)rlab_split_fields(s, n, st->sep, st->f, st->fcap);
        }
        if ((size_t)nf <= st->fcap)
            return nf;
        rlab_field *g = rlab_realloc(st->f, (size_t)nf * sizeof *g);
        if (!g) {
            rlab_errf_at(err, RLAB_ENOMEM, r->name, r->line, "out of memory");
            return -1;
        }
        st->f = g;
        st->fcap = (size_t)nf;
    }
}

/* Resolve a column given by header name (overrides idx). */
static int resolve(const char *name, int *idx, const rlab_field *hdr, long nh, rlab_reader *r,
                   rlab_err *err)
{
    if (!name)
        return RLAB_OK;
    if (!hdr)
        return rlab_errf(err, RLAB_EINVAL, "csv: column '%s' named but header = 0", name);
    size_t l = strlen(name);
    for (long k = 0; k < nh; k++)
        if (hdr[k].n == l && memcmp(hdr[k].p, name, l) == 0) {
            *idx = (int)k;
            return RLAB_OK;
        }
    return rlab_errf_at(err, RLAB_EFORMAT, r->name, r->line,
                        "no column named '%s' in the header, expected it among %ld columns", name,
                        nh);
}

static int csv_body(csv_state *st, rlab_reader *r, rlab_dataset *ds, rlab_err *err)
{
    const rlab_csv_opts *o = st->o;
    rlab_inter *t = &ds->inter;
    int cu = o->user_col, ci = o->item_col, cts = o->ts_col, crat = o->rating_col;
    int nl = o->nlabels, cl[RLAB_INTER_MAX_LABELS];
    if (nl < 0 || nl > RLAB_INTER_MAX_LABELS)
        return rlab_errf(err, RLAB_EINVAL, "csv: nlabels %d, expected 0..%d", nl,
                         RLAB_INTER_MAX_LABELS);
    for (int k = 0; k < nl; k++)
        cl[k] = o->label_cols[k];
    const char *s;
    size_t n;
    int rc;
    long ncols = -1;
    char hdrnames[RLAB_INTER_MAX_LABELS][32];
    memset(hdrnames, 0, sizeof hdrnames);
    if (o->header) {
        while ((rc = rlab_reader_next(r, &s, &n, err)) == RLAB_OK && s && n == 0) {
        }
        if (rc)
            return rc;
        if (!s)
            return rlab_errf_at(err, RLAB_EFORMAT, r->name, 0,
                                "empty file, expected a header line");
        ncols = split_line(st, r, s, n, err);
        if (ncols < 0)
            return err ? err->code : RLAB_EFORMAT;
        if ((rc = resolve(o->user_name, &cu, st->f, ncols, r, err)) ||
            (rc = resolve(o->item_name, &ci, st->f, ncols, r, err)) ||
            (rc = resolve(o->ts_name, &cts, st->f, ncols, r, err)) ||
            (rc = resolve(o->rating_name, &crat, st->f, ncols, r, err)))
            return rc;
        for (int k = 0; k < nl; k++) {
            if ((rc = resolve(o->label_names[k], &cl[k], st->f, ncols, r, err)))
                return rc;
            if (cl[k] >= 0 && cl[k] < ncols) {
                size_t l = st->f[cl[k]].n < 31 ? st->f[cl[k]].n : 31;
                memcpy(hdrnames[k], st->f[cl[k]].p, l);
            }
        }
    } else if (o->user_name || o->item_name || o->ts_name || o->rating_name) {
        return rlab_errf(err, RLAB_EINVAL, "csv: columns named but header = 0");
    }
    if (cu < 0 || ci < 0)
        return rlab_errf(err, RLAB_EINVAL, "csv: user and item columns are required");
    for (int k = 0; k < nl; k++)
        if (cl[k] < 0)
            return rlab_errf(err, RLAB_EINVAL, "csv: label %d has no column", k);
    t->nlabels = nl;
    for (int k = 0; k < nl; k++) {
        if (hdrnames[k][0])
            memcpy(t->label_names[k], hdrnames[k], sizeof hdrnames[k]);
        else
            snprintf(t->label_names[k], sizeof t->label_names[k], "label%d", k);
    }
    t->flags |= cts >= 0 ? RLAB_INTER_HAS_TS : RLAB_INTER_SYNTH_TS;
    if (crat >= 0)
        t->flags |= RLAB_INTER_HAS_RATING;
    int maxcol = cu > ci ? cu : ci;
    maxcol = cts > maxcol ? cts : maxcol;
    maxcol = crat > maxcol ? crat : maxcol;
    for (int k = 0; k < nl; k++)
        maxcol = cl[k] > maxcol ? cl[k] : maxcol;
    rlab_i64map pos = {0};
    while ((rc = rlab_reader_next(r, &s, &n, err)) == RLAB_OK && s) {
        if (n == 0)
            continue;
        long nf = split_line(st, r, s, n, err);
        if (nf < 0) {
            rc = err ? err->code : RLAB_EFORMAT;
            break;
        }
        if (ncols < 0) {
            ncols = nf;
            if (maxcol >= ncols) {
                rc =
                    rlab_errf_at(err, RLAB_EFORMAT, r->name, r->line,
                                 "column %d is mapped but rows have %ld fields", maxcol + 1, ncols);
                break;
            }
        }
        if (nf != ncols) {
            rc = rlab_errf_at(err, RLAB_EFORMAT, r->name, r->line,
                              "expected %ld %s-separated fields, got %ld", ncols,
                              rlab_ld_sep_word(st->sep), nf);
            break;
        }
        if (maxcol >= ncols) {
            rc = rlab_errf_at(err, RLAB_EFORMAT, r->name, r->line,
                              "column %d is mapped but the header has %ld fields", maxcol + 1,
                              ncols);
            break;
        }
        rlab_field *f = st->f;
        if (f[cu].n == 0 || f[ci].n == 0) {
            rc = rlab_errf_at(err, RLAB_EFORMAT, r->name, r->line,
                              "empty %s id in column %d, expected an id",
                              f[cu].n == 0 ? "user" : "item", (f[cu].n == 0 ? cu : ci) + 1);
            break;
        }
        int32_t u = rlab_vocab_add(&ds->users, f[cu].p, f[cu].n);
        int32_t i = rlab_vocab_add(&ds->items, f[ci].p, f[ci].n);
        if (u < 0 || i < 0) {
            rc = rlab_errf_at(err, RLAB_ENOMEM, r->name, r->line, "out of memory");
            break;
        }
        int64_t ts = 0;
        float rating = 1.0f, labels[RLAB_INTER_MAX_LABELS] = {0};
        int prc = 0, bad = -1;
        if (cts >= 0 && (prc = rlab_parse_ts(f[cts].p, f[cts].n, &ts)))
            bad = cts;
        if (!prc && crat >= 0) {
            if (f[crat].n == 0)
                rating = NAN;
            else if ((prc = rlab_parse_f32(f[crat].p, f[crat].n, &rating)))
                bad = crat;
        }
        for (int k = 0; k < nl && !prc; k++) {
            if (f[cl[k]].n == 0)
                labels[k] = NAN;
            else if ((prc = rlab_parse_f32(f[cl[k]].p, f[cl[k]].n, &labels[k])))
                bad = cl[k];
        }
        if (prc) {
            char q[48];
            rlab_ld_quote(q, f[bad]);
            rc = rlab_errf_at(err, RLAB_EFORMAT, r->name, r->line,
                              "column %d: '%s' is %s, expected %s", bad + 1, q, rlab_parse_why(prc),
                              bad == cts ? "a timestamp (64-bit integer or float)" : "a number");
            break;
        }
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
                          o->header ? "no rows after the header, expected interactions"
                                    : "empty file, expected interaction rows");
    return rc;
}

int rlab_ld_csv(rlab_reader *r, const rlab_csv_opts *o, rlab_dataset *ds, rlab_err *err)
{
    csv_state st;
    memset(&st, 0, sizeof st);
    st.o = o;
    st.sep = o->sep && o->sep[0] ? o->sep : ",";
    st.fcap = 64;
    st.f = rlab_malloc(st.fcap * sizeof *st.f);
    if (!st.f)
        return rlab_errf(err, RLAB_ENOMEM, "csv: out of memory");
    int rc = csv_body(&st, r, ds, err);
    rlab_free(st.f);
    rlab_free(st.scratch);
    return rc;
}

int rlab_load_csv(const char *path, const rlab_csv_opts *opts, const char *name, rlab_dataset **out,
                  rlab_err *err)
{
    *out = NULL;
    rlab_csv_opts def;
    if (!opts) {
        rlab_csv_opts_init(&def);
        opts = &def;
    }
    char nm[RLAB_LD_NAME_BUF];
    if (!name) {
        rlab_ld_default_name(path, nm, sizeof nm);
        name = nm;
    }
    rlab_dataset *ds = NULL;
    int rc = rlab_ld_new_dataset(name, name == nm, &ds, err);
    if (rc)
        return rc;
    rlab_reader r;
    rc = rlab_reader_open(&r, path, RLAB_READ_UTF8, err);
    if (rc == RLAB_OK)
        rc = rlab_ld_csv(&r, opts, ds, err);
    rlab_reader_close(&r);
    if (rc) {
        rlab_dataset_free(ds);
        return rc;
    }
    rlab_ld_set(ds, "csv", path);
    *out = ds;
    return RLAB_OK;
}
