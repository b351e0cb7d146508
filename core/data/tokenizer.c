/*
 * core/data/tokenizer: block-streaming line reader, field splitter, strict number parsers,
 * UTF-8 / Latin-1 text helpers and the feature-table builder. See tokenizer.h.
 */
#include "data/tokenizer.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define READ_BLOCK (1u << 20) /* 1 MiB: a few reads for every shipped file */

/* ---- line reader ----------------------------------------------------------------------- */
int rlab_reader_open(rlab_reader *r, const char *path, unsigned flags, rlab_err *err)
{
    memset(r, 0, sizeof *r);
    snprintf(r->name, sizeof r->name, "%s", path);
    r->flags = flags;
    struct stat st;
    if (stat(path, &st) != 0)
        return rlab_errf_at(err, RLAB_EIO, path, 0, "cannot open: %s", strerror(errno));
    if (S_ISDIR(st.st_mode))
        return rlab_errf_at(err, RLAB_EIO, path, 0, "is a directory, expected a file");
    r->fp = fopen(path, "rb");
    if (!r->fp)
        return rlab_errf_at(err, RLAB_EIO, path, 0, "cannot open: %s", strerror(errno));
    r->buf = rlab_malloc(READ_BLOCK);
    if (!r->buf) {
        fclose(r->fp);
        r->fp = NULL;
        return rlab_errf(err, RLAB_ENOMEM, "%s: out of memory", path);
    }
    r->cap = READ_BLOCK;
    return RLAB_OK;
}

void rlab_reader_open_mem(rlab_reader *r, const void *buf, size_t n, const char *name,
                          unsigned flags)
{
    memset(r, 0, sizeof *r);
    snprintf(r->name, sizeof r->name, "%s", name ? name : "<buffer>");
    r->flags = flags;
    r->mem = buf ? buf : "";
    r->memlen = buf ? n : 0;
    r->eof = 1;
}

void rlab_reader_close(rlab_reader *r)
{
    if (!r)
        return;
    if (r->fp)
        fclose(r->fp);
    rlab_free(r->buf);
    r->fp = NULL;
    r->buf = NULL;
}

/* Refill the block buffer: keep the partial line at pos, read more after it. Returns
 * RLAB_OK (possibly setting eof) or an error code. */
static int refill(rlab_reader *r, rlab_err *err)
{
    if (r->pos > 0) {
        memmove(r->buf, r->buf + r->pos, r->len - r->pos);
        r->len -= r->pos;
        r->pos = 0;
    }
    if (r->len == r->cap) { /* one line longer than the buffer: grow it */
        char *nb = rlab_realloc(r->buf, r->cap * 2);
        if (!nb)
            return rlab_errf_at(err, RLAB_ENOMEM, r->name, r->line + 1, "out of memory");
        r->buf = nb;
        r->cap *= 2;
    }
    size_t got = fread(r->buf + r->len, 1, r->cap - r->len, r->fp);
    if (got == 0) {
        if (ferror(r->fp))
            return rlab_errf_at(err, RLAB_EIO, r->name, r->line + 1, "read error: %s",
                                strerror(errno));
        r->eof = 1;
    }
    r->len += got;
    return RLAB_OK;
}

int rlab_reader_next(rlab_reader *r, const char **line, size_t *len, rlab_err *err)
{
    *line = NULL;
    *len = 0;
    const char *base = r->fp ? r->buf : r->mem;
    size_t have = r->fp ? r->len : r->memlen;
    const char *s;
    size_t n;
    for (;;) {
        const char *nl = have > r->pos ? memchr(base + r->pos, '\n', have - r->pos) : NULL;
        if (nl) {
            s = base + r->pos;
            n = (size_t)(nl - s);
            r->pos += n + 1;
            r->bytes += n + 1;
            break;
        }
        if (r->eof) {
            if (r->pos >= have)
                return RLAB_OK; /* end of input */
            s = base + r->pos;  /* last line without a newline */
            n = have - r->pos;
            r->pos = have;
            r->bytes += n;
            break;
        }
        int rc = refill(r, err);
        if (rc)
            return rc;
        base = r->buf;
        have = r->len;
    }
    r->line++;
    /* A UTF-8 byte-order mark (EF BB BF, written by Windows editors and Excel) is not part
     * of the first line's text: every loader would otherwise see it glued to the first
     * field (user id "<BOM>1" is not a number, "<BOM>user_id:token" not a header name). */
    if (r->line == 1 && n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) {
        s += 3;
        n -= 3;
    }
    if (n > 0 && s[n - 1] == '\r')
        n--;
    const char *nul = memchr(s, '\0', n);
    if (nul)
        return rlab_errf_at(err, RLAB_EFORMAT, r->name, r->line,
                            "NUL byte at column %zu, expected text", (size_t)(nul - s) + 1);
    if (r->flags & RLAB_READ_UTF8) {
        long bad = rlab_utf8_invalid_at(s, n);
        if (bad >= 0)
            return rlab_errf_at(err, RLAB_EFORMAT, r->name, r->line,
                                "invalid UTF-8 byte 0x%02x at column %ld, expected UTF-8 text",
                                (unsigned char)s[bad], bad + 1);
    }
    *line = s;
    *len = n;
    return RLAB_OK;
}

/* ---- fields ---------------------------------------------------------------------------- */
static size_t split_blanks(const char *s, size_t n, rlab_field *f, size_t maxf)
{
    size_t nf = 0, i = 0;
    for (;;) {
        while (i < n && (s[i] == ' ' || s[i] == '\t'))
            i++;
        if (i >= n)
            return nf;
        size_t b = i;
        while (i < n && s[i] != ' ' && s[i] != '\t')
            i++;
        if (nf < maxf) {
            f[nf].p = s + b;
            f[nf].n = i - b;
        }
        nf++;
    }
}

size_t rlab_split_fields(const char *s, size_t n, const char *sep, rlab_field *f, size_t maxf)
{
    if (!sep)
        return split_blanks(s, n, f, maxf);
    size_t sl = strlen(sep), nf = 0, b = 0;
    const char *end = s + n;
    for (const char *p = s;;) {
        const char *hit = p < end ? memchr(p, sep[0], (size_t)(end - p)) : NULL;
        while (hit && sl > 1 && ((size_t)(end - hit) < sl || memcmp(hit, sep, sl) != 0))
            hit = hit + 1 < end ? memchr(hit + 1, sep[0], (size_t)(end - hit - 1)) : NULL;
        size_t e = hit ? (size_t)(hit - s) : n;
        if (nf < maxf) {
            f[nf].p = s + b;
            f[nf].n = e - b;
        }
        nf++;
        if (!hit)
            return nf;
        b = e + sl;
        p = s + b;
    }
}

/* ---- strict numbers -------------------------------------------------------------------- */
int rlab_parse_i64(const char *s, size_t n, int64_t *out)
{
    size_t i = 0;
    int neg = 0;
    if (n > 0 && s[0] == '-') {
        neg = 1;
        i = 1;
    }
    if (i == n)
        return RLAB_EFORMAT;
    uint64_t v = 0, lim = neg ? (uint64_t)INT64_MAX + 1u : (uint64_t)INT64_MAX;
    for (; i < n; i++) {
        unsigned d = (unsigned char)s[i] - '0';
        if (d > 9)
            return RLAB_EFORMAT;
        if (v > (lim - d) / 10) {
            /* keep scanning so "12x" with a huge prefix is still "not a number" */
            for (i++; i < n; i++)
                if ((unsigned)((unsigned char)s[i] - '0') > 9)
                    return RLAB_EFORMAT;
            return RLAB_EINVAL;
        }
        v = v * 10 + d;
    }
    *out = neg ? (int64_t)(0u - v) : (int64_t)v;
    return RLAB_OK;
}

int rlab_parse_i32(const char *s, size_t n, int32_t *out)
{
    int64_t v;
    int rc = rlab_parse_i64(s, n, &v);
    if (rc)
        return rc;
    if (v < INT32_MIN || v > INT32_MAX)
        return RLAB_EINVAL;
    *out = (int32_t)v;
    return RLAB_OK;
}

int rlab_parse_f64(const char *s, size_t n, double *out)
{
    int64_t iv;
    if (n > 0 && n < 16 && rlab_parse_i64(s, n, &iv) == RLAB_OK) {
        *out = (double)iv; /* fast path: small integers ("3") are exact in a double */
        return RLAB_OK;
    }
    char tmp[128];
    if (n == 0 || n >= sizeof tmp)
        return RLAB_EFORMAT;
    int digits = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c >= '0' && c <= '9')
            digits = 1;
        else if (c != '.' && c != '-' && c != '+' && c != 'e' && c != 'E')
            return RLAB_EFORMAT; /* refuses blanks, "nan", "inf", hex floats */
    }
    if (!digits)
        return RLAB_EFORMAT;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    char *end;
    errno = 0;
    double v = strtod(tmp, &end);
    if (end != tmp + n)
        return RLAB_EFORMAT;
    if (errno == ERANGE && fabs(v) > 1.0)
        return RLAB_EINVAL; /* overflow; underflow to ~0 is accepted */
    *out = v;
    return RLAB_OK;
}

int rlab_parse_f32(const char *s, size_t n, float *out)
{
    double v;
    int rc = rlab_parse_f64(s, n, &v);
    if (rc)
        return rc;
    if (fabs(v) > (double)FLT_MAX)
        return RLAB_EINVAL;
    *out = (float)v;
    return RLAB_OK;
}

int rlab_parse_ts(const char *s, size_t n, int64_t *out)
{
    int rc = rlab_parse_i64(s, n, out);
    if (rc != RLAB_EFORMAT)
        return rc;
    double v;
    rc = rlab_parse_f64(s, n, &v);
    if (rc)
        return rc;
    /* 2^63 is exactly representable; anything at or beyond it does not fit */
    if (!(v > -9223372036854775808.0 && v < 9223372036854775808.0))
        return RLAB_EINVAL;
    *out = (int64_t)v;
    return RLAB_OK;
}

const char *rlab_parse_why(int code)
{
    return code == RLAB_EINVAL ? "out of range" : "not a number";
}

void rlab_id_canon(const char **s, size_t *n)
{
    const char *p = *s;
    size_t k = *n;
    if (k > 0 && p[0] == '-')
        return; /* negative ids are rare; keep them verbatim */
    while (k > 1 && p[0] == '0') {
        p++;
        k--;
    }
    *s = p;
    *n = k;
}

/* ---- text ------------------------------------------------------------------------------ */
long rlab_utf8_invalid_at(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        /* ASCII fast path, 8 bytes at a time */
        while (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, u + i, 8);
            if (w & 0x8080808080808080ull)
                break;
            i += 8;
        }
        if (i >= n)
            break;
        unsigned c = u[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        uint32_t cp;
        if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            cp = c & 0x07;
        } else {
            return (long)i; /* continuation byte, overlong lead C0/C1, or F5..FF */
        }
        if (i + need >= n)
            return (long)i; /* truncated sequence */
        for (size_t k = 1; k <= need; k++) {
            if ((u[i + k] & 0xC0) != 0x80)
                return (long)i;
            cp = (cp << 6) | (u[i + k] & 0x3F);
        }
        if ((need == 2 && cp < 0x800) || (need == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return (long)i;
        i += need + 1;
    }
    return -1;
}

long rlab_latin1_invalid_at(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n; i++) {
        unsigned c = u[i];
        if ((c < 0x20 && c != '\t') || c == 0x7F || (c >= 0x80 && c <= 0x9F))
            return (long)i;
    }
    return -1;
}

char *rlab_latin1_to_utf8(const char *s, size_t n)
{
    size_t extra = 0;
    for (size_t i = 0; i < n; i++)
        extra += (unsigned char)s[i] >= 0x80;
    char *out = rlab_malloc(n + extra + 1);
    if (!out)
        return NULL;
    char *o = out;
    for (size_t i = 0; i < n; i++) {
        unsigned c = (unsigned char)s[i];
        if (c < 0x80) {
            *o++ = (char)c;
        } else {
            *o++ = (char)(0xC0 | (c >> 6));
            *o++ = (char)(0x80 | (c & 0x3F));
        }
    }
    *o = '\0';
    return out;
}

char *rlab_strndup(const char *s, size_t n)
{
    char *out = rlab_malloc(n + 1);
    if (!out)
        return NULL;
    memcpy(out, s, n);
    out[n] = '\0';
    return out;
}

/* ---- feature builder ------------------------------------------------------------------- */
void rlab_fb_init(rlab_fb *b, rlab_feats *f)
{
    memset(b, 0, sizeof *b);
    b->f = f;
}

void rlab_fb_clear(rlab_fb *b)
{
    if (!b)
        return;
    for (int c = 0; c < b->pcap; c++) {
        rlab_free(b->pairs[c].ent);
        rlab_free(b->pairs[c].val);
    }
    rlab_free(b->pairs);
    b->pairs = NULL;
    b->pcap = 0;
}

/* Resize one column's per-row array from rows `old` to `rows`, filling new rows. */
static int col_resize(rlab_feat_col *c, int32_t old, int32_t rows)
{
    size_t n = rows > 0 ? (size_t)rows : 1;
    if (c->kind == RLAB_FEAT_TOKEN) {
        int32_t *p = rlab_realloc(c->tok, n * sizeof *p);
        if (!p)
            return RLAB_ENOMEM;
        for (int32_t i = old; i < rows; i++)
            p[i] = -1;
        c->tok = p;
    } else if (c->kind == RLAB_FEAT_FLOAT) {
        float *p = rlab_realloc(c->num, n * sizeof *p);
        if (!p)
            return RLAB_ENOMEM;
        for (int32_t i = old; i < rows; i++)
            p[i] = NAN;
        c->num = p;
    } else if (c->kind == RLAB_FEAT_TEXT) {
        char **p = rlab_realloc(c->text, n * sizeof *p);
        if (!p)
            return RLAB_ENOMEM;
        for (int32_t i = old; i < rows; i++)
            p[i] = NULL;
        c->text = p;
    }
    return RLAB_OK;
}

/* Make sure rows [0, need) exist in every column (geometric growth). */
static int ensure_rows(rlab_fb *b, int32_t need)
{
    rlab_feats *f = b->f;
    if (need <= f->n_entities)
        return RLAB_OK;
    int64_t nc = (int64_t)f->n_entities * 2;
    if (nc < need)
        nc = need;
    if (nc < 64)
        nc = 64;
    if (nc > INT32_MAX)
        nc = INT32_MAX;
    for (int c = 0; c < f->ncols; c++) {
        /* text rows must be NULL-filled before n_entities covers them, hence per column */
        if (col_resize(&f->cols[c], f->n_entities, (int32_t)nc))
            return RLAB_ENOMEM;
    }
    f->n_entities = (int32_t)nc;
    return RLAB_OK;
}

int rlab_fb_add_col(rlab_fb *b, const char *name, rlab_feat_kind kind)
{
    rlab_feats *f = b->f;
    if (rlab_feats_find(f, name))
        return -2;
    if (f->ncols == f->cap) {
        int nc = f->cap ? f->cap * 2 : 8;
        rlab_feat_col *cols = rlab_realloc(f->cols, (size_t)nc * sizeof *cols);
        if (!cols)
            return -1;
        f->cols = cols;
        f->cap = nc;
    }
    if (f->ncols >= b->pcap) {
        int np = f->cap;
        rlab_fb_pairs *pp = rlab_realloc(b->pairs, (size_t)np * sizeof *pp);
        if (!pp)
            return -1;
        memset(pp + b->pcap, 0, (size_t)(np - b->pcap) * sizeof *pp);
        b->pairs = pp;
        b->pcap = np;
    }
    rlab_feat_col *c = &f->cols[f->ncols];
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s", name);
    c->kind = kind;
    rlab_vocab_init(&c->vocab);
    if (col_resize(c, 0, f->n_entities)) {
        rlab_free(c->tok);
        rlab_free(c->num);
        rlab_free(c->text);
        return -1;
    }
    return f->ncols++;
}

int rlab_fb_set_token(rlab_fb *b, int col, int32_t ent, const char *s, size_t n)
{
    if (ensure_rows(b, ent + 1))
        return RLAB_ENOMEM;
    rlab_feat_col *c = &b->f->cols[col];
    if (n == 0) {
        c->tok[ent] = -1;
        return RLAB_OK;
    }
    int32_t v = rlab_vocab_add(&c->vocab, s, n);
    if (v < 0)
        return RLAB_ENOMEM;
    c->tok[ent] = v;
    return RLAB_OK;
}

int rlab_fb_add_seq(rlab_fb *b, int col, int32_t ent, const char *s, size_t n)
{
    if (ensure_rows(b, ent + 1))
        return RLAB_ENOMEM;
    if (n == 0)
        return RLAB_OK;
    rlab_feat_col *c = &b->f->cols[col];
    int32_t v = rlab_vocab_add(&c->vocab, s, n);
    if (v < 0)
        return RLAB_ENOMEM;
    rlab_fb_pairs *p = &b->pairs[col];
    if (p->n == p->cap) {
        size_t nc = p->cap ? p->cap * 2 : 256;
        int32_t *e = rlab_realloc(p->ent, nc * sizeof *e);
        if (!e)
            return RLAB_ENOMEM;
        p->ent = e;
        int32_t *w = rlab_realloc(p->val, nc * sizeof *w);
        if (!w)
            return RLAB_ENOMEM;
        p->val = w;
        p->cap = nc;
    }
    p->ent[p->n] = ent;
    p->val[p->n] = v;
    p->n++;
    return RLAB_OK;
}

int rlab_fb_set_float(rlab_fb *b, int col, int32_t ent, float v)
{
    if (ensure_rows(b, ent + 1))
        return RLAB_ENOMEM;
    b->f->cols[col].num[ent] = v;
    return RLAB_OK;
}

int rlab_fb_set_text(rlab_fb *b, int col, int32_t ent, char *text)
{
    if (ensure_rows(b, ent + 1)) {
        rlab_free(text);
        return RLAB_ENOMEM;
    }
    rlab_feat_col *c = &b->f->cols[col];
    rlab_free(c->text[ent]);
    c->text[ent] = text;
    return RLAB_OK;
}

int rlab_fb_finish(rlab_fb *b, int32_t n)
{
    rlab_feats *f = b->f;
    int rc = RLAB_OK;
    if (ensure_rows(b, n)) {
        rc = RLAB_ENOMEM;
        goto done;
    }
    /* shrink to exactly n rows; a failed shrinking realloc keeps the larger block */
    for (int c = 0; c < f->ncols; c++) {
        rlab_feat_col *col = &f->cols[c];
        if (col->text)
            for (int32_t i = n; i < f->n_entities; i++) {
                rlab_free(col->text[i]);
                col->text[i] = NULL;
            }
        if (n > 0)
            (void)col_resize(col, n, n);
    }
    f->n_entities = n;
    for (int c = 0; c < f->ncols; c++) {
        rlab_feat_col *col = &f->cols[c];
        if (col->kind != RLAB_FEAT_TOKEN_SEQ)
            continue;
        rlab_fb_pairs *p = c < b->pcap ? &b->pairs[c] : NULL;
        size_t np = p ? p->n : 0;
        col->off = rlab_calloc((size_t)n + 1, sizeof *col->off);
        col->seq = rlab_malloc((np ? np : 1) * sizeof *col->seq);
        if (!col->off || !col->seq) {
            rc = RLAB_ENOMEM;
            goto done;
        }
        /* counting sort by entity, stable: values keep their file order */
        for (size_t i = 0; i < np; i++)
            col->off[p->ent[i] + 1]++;
        for (int32_t i = 0; i < n; i++)
            col->off[i + 1] += col->off[i];
        int64_t *cur = rlab_malloc(((size_t)n + 1) * sizeof *cur);
        if (!cur) {
            rc = RLAB_ENOMEM;
            goto done;
        }
        memcpy(cur, col->off, ((size_t)n + 1) * sizeof *cur);
        for (size_t i = 0; i < np; i++)
            col->seq[cur[p->ent[i]]++] = p->val[i];
        rlab_free(cur);
    }
done:
    rlab_fb_clear(b);
    return rc;
}
