/*
 * core/data/tabular: CTR / multi-task sample tables (see tabular.h): the column mapping,
 * the delimited-file loader, presets, samples from ratings, a synthetic world, splits.
 */
#include "data/tabular.h"
#include "data/tokenizer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- spec and mapping ------------------------------------------------------------------ */
void rlab_tab_spec_init(rlab_tab_spec *sp)
{
    memset(sp, 0, sizeof *sp);
    sp->sep = ",";
    sp->header = 1;
}

static const char *const role_names[] = {"skip", "label", "cat",   "multi",
                                         "seq",  "num",   "group", "time"};

static void trim(const char **s, size_t *n)
{
    while (*n && (**s == ' ' || **s == '\t'))
        (*s)++, (*n)--;
    while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
        (*n)--;
}

static int parse_index(const char *s, size_t n, int *out)
{
    int32_t v;
    if (rlab_parse_i32(s, n, &v) || v < 0 || v >= RLAB_TAB_MAX_COLS)
        return -1;
    *out = v;
    return 0;
}

int rlab_tab_spec_map(rlab_tab_spec *sp, const char *text, rlab_err *err)
{
    if (!text)
        return RLAB_OK;
    const char *p = text;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        const char *s = p;
        size_t n = len;
        p = e ? e + 1 : p + len;
        trim(&s, &n);
        if (n == 0)
            continue;
        if (sp->nmap >= RLAB_TAB_MAX_MAP)
            return rlab_errf(err, RLAB_EINVAL, "column mapping: more than %d entries",
                             RLAB_TAB_MAX_MAP);
        rlab_tab_map *m = &sp->map[sp->nmap];
        memset(m, 0, sizeof *m);
        m->first = m->last = -1;
        rlab_field f[3];
        size_t nf = rlab_split_fields(s, n, ":", f, 3);
        if (nf < 2 || nf > 3)
            return rlab_errf(err, RLAB_EINVAL,
                             "column mapping entry '%.*s': expected SELECTOR:ROLE[:OPTION]", (int)n,
                             s);
        trim(&f[0].p, &f[0].n);
        trim(&f[1].p, &f[1].n);
        if (f[0].n == 0 || f[0].n >= sizeof m->pattern)
            return rlab_errf(err, RLAB_EINVAL, "column mapping entry '%.*s': bad column", (int)n,
                             s);
        if (f[0].p[0] == '#') {
            const char *dash = memchr(f[0].p, '-', f[0].n);
            const char *a = f[0].p + 1;
            size_t an = dash ? (size_t)(dash - a) : f[0].n - 1;
            if (parse_index(a, an, &m->first))
                return rlab_errf(err, RLAB_EINVAL,
                                 "column mapping entry '%.*s': bad field index (0..%d)", (int)n, s,
                                 RLAB_TAB_MAX_COLS - 1);
            m->last = m->first;
            if (dash) {
                const char *b = dash + 1;
                size_t bn = (size_t)(f[0].p + f[0].n - b);
                if (bn && *b == '#')
                    b++, bn--;
                if (parse_index(b, bn, &m->last) || m->last < m->first)
                    return rlab_errf(err, RLAB_EINVAL,
                                     "column mapping entry '%.*s': bad field range", (int)n, s);
            }
        } else {
            memcpy(m->pattern, f[0].p, f[0].n);
        }
        int role = -1;
        for (int r = 0; r < (int)(sizeof role_names / sizeof *role_names); r++)
            if (strlen(role_names[r]) == f[1].n && memcmp(role_names[r], f[1].p, f[1].n) == 0)
                role = r;
        if (role < 0)
            return rlab_errf(err, RLAB_EINVAL,
                             "column mapping entry '%.*s': unknown role '%.*s' (label, cat, "
                             "multi, seq, num, group, time, skip)",
                             (int)n, s, (int)f[1].n, f[1].p);
        m->role = (rlab_tab_role)role;
        snprintf(m->sep, sizeof m->sep, "|");
        if (nf == 3) {
            const char *o = f[2].p;
            size_t on = f[2].n;
            trim(&o, &on);
            if (m->role == RLAB_TAB_LABEL && on >= 1 && o[0] == '=') {
                o++, on--;
                trim(&o, &on);
                if (on >= sizeof m->positive)
                    return rlab_errf(err, RLAB_EINVAL,
                                     "column mapping entry '%.*s': value too long", (int)n, s);
                memcpy(m->positive, o, on);
                m->has_positive = 1;
            } else if ((m->role == RLAB_TAB_CAT || m->role == RLAB_TAB_MULTI ||
                        m->role == RLAB_TAB_SEQ) &&
                       on > 5 && memcmp(o, "hash=", 5) == 0) {
                int32_t h;
                if (rlab_parse_i32(o + 5, on - 5, &h) || h < 1 || h > (1 << 28))
                    return rlab_errf(err, RLAB_EINVAL,
                                     "column mapping entry '%.*s': hash=N needs 1 <= N <= 2^28",
                                     (int)n, s);
                m->hash = (uint32_t)h;
            } else if ((m->role == RLAB_TAB_MULTI || m->role == RLAB_TAB_SEQ) && on > 4 &&
                       memcmp(o, "sep=", 4) == 0 && on - 4 < sizeof m->sep) {
                memcpy(m->sep, o + 4, on - 4);
                m->sep[on - 4] = '\0';
            } else {
                return rlab_errf(err, RLAB_EINVAL,
                                 "column mapping entry '%.*s': option '%.*s' does not apply to "
                                 "role %s (label:=VALUE, cat/multi/seq:hash=N, multi/seq:sep=X)",
                                 (int)n, s, (int)on, o, role_names[role]);
            }
        }
        sp->nmap++;
    }
    return RLAB_OK;
}

static int map_matches(const rlab_tab_map *m, int col, const char *name)
{
    if (m->first >= 0)
        return col >= m->first && col <= m->last;
    size_t pn = strlen(m->pattern);
    if (pn && m->pattern[pn - 1] == '*')
        return strncmp(name, m->pattern, pn - 1) == 0;
    return strcmp(name, m->pattern) == 0;
}

/* ---- the table -------------------------------------------------------------------------- */
void rlab_tabular_free(rlab_tabular *t)
{
    if (!t)
        return;
    for (int i = 0; i < t->nfields; i++) {
        rlab_vocab_clear(&t->fields[i].vocab);
        rlab_free(t->fields[i].ids);
        rlab_free(t->fields[i].off);
    }
    rlab_free(t->fields);
    rlab_free(t->labels);
    rlab_free(t->num_names);
    rlab_free(t->num);
    rlab_free(t->group);
    rlab_vocab_clear(&t->groups);
    rlab_free(t->time);
    for (int k = 0; k < 3; k++)
        rlab_free(t->part_rows[k]);
    rlab_free(t);
}

/* Per-field capacity of the MULTI/SEQ id arrays, kept beside the table while building. */
typedef struct tab_build {
    rlab_tabular *t;
    int64_t *idcap; /* [nfields] */
    int has_group, has_time;
} tab_build;

static rlab_tabular *tab_new(const char *name)
{
    rlab_tabular *t = rlab_calloc(1, sizeof *t);
    if (!t)
        return NULL;
    snprintf(t->name, sizeof t->name, "%.63s", name ? name : "");
    rlab_vocab_init(&t->groups);
    return t;
}

static int tab_add_field(tab_build *b, const char *name, rlab_tab_role role, uint32_t hash)
{
    rlab_tabular *t = b->t;
    rlab_tab_field *nf = rlab_realloc(t->fields, (size_t)(t->nfields + 1) * sizeof *nf);
    if (!nf)
        return -1;
    t->fields = nf;
    int64_t *nc = rlab_realloc(b->idcap, (size_t)(t->nfields + 1) * sizeof *nc);
    if (!nc)
        return -1;
    b->idcap = nc;
    rlab_tab_field *f = &t->fields[t->nfields];
    memset(f, 0, sizeof *f);
    snprintf(f->name, sizeof f->name, "%s", name);
    f->role = role;
    f->hash = hash;
    f->card = hash ? (int32_t)hash + 1 : 1;
    f->shares = -1;
    rlab_vocab_init(&f->vocab);
    nc[t->nfields] = 0;
    return t->nfields++;
}

static int tab_add_num(rlab_tabular *t, const char *name)
{
    char(*nn)[64] = rlab_realloc(t->num_names, (size_t)(t->nnum + 1) * sizeof *nn);
    if (!nn)
        return -1;
    t->num_names = nn;
    snprintf(nn[t->nnum], 64, "%s", name);
    return t->nnum++;
}

static int tab_add_label(rlab_tabular *t, const char *name)
{
    if (t->nlabels >= RLAB_TAB_MAX_LABELS)
        return -1;
    snprintf(t->label_names[t->nlabels], 32, "%s", name);
    return t->nlabels++;
}

/* Room for one more sample (row t->n). */
static int tab_grow(tab_build *b)
{
    rlab_tabular *t = b->t;
    if (t->n < t->cap)
        return RLAB_OK;
    int64_t nc = t->cap ? t->cap * 2 : 1024;
    float *l =
        rlab_realloc(t->labels, (size_t)nc * (size_t)(t->nlabels ? t->nlabels : 1) * sizeof *l);
    if (!l)
        return RLAB_ENOMEM;
    t->labels = l;
    if (t->nnum) {
        float *v = rlab_realloc(t->num, (size_t)nc * (size_t)t->nnum * sizeof *v);
        if (!v)
            return RLAB_ENOMEM;
        t->num = v;
    }
    for (int i = 0; i < t->nfields; i++) {
        rlab_tab_field *f = &t->fields[i];
        if (f->role == RLAB_TAB_CAT || f->role == RLAB_TAB_GROUP) {
            int32_t *ids = rlab_realloc(f->ids, (size_t)nc * sizeof *ids);
            if (!ids)
                return RLAB_ENOMEM;
            f->ids = ids;
        } else {
            int64_t *off = rlab_realloc(f->off, (size_t)(nc + 1) * sizeof *off);
            if (!off)
                return RLAB_ENOMEM;
            if (!f->off)
                off[0] = 0;
            f->off = off;
        }
    }
    if (b->has_group) {
        int32_t *g = rlab_realloc(t->group, (size_t)nc * sizeof *g);
        if (!g)
            return RLAB_ENOMEM;
        t->group = g;
    }
    if (b->has_time) {
        int64_t *tm = rlab_realloc(t->time, (size_t)nc * sizeof *tm);
        if (!tm)
            return RLAB_ENOMEM;
        t->time = tm;
    }
    t->cap = nc;
    return RLAB_OK;
}

static uint64_t fnv1a(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* Id of value s[0..n) in field f (0 when empty); -1 on ENOMEM. */
static int32_t field_id(rlab_tab_field *f, const char *s, size_t n)
{
    if (n == 0)
        return 0;
    if (f->hash)
        return 1 + (int32_t)(fnv1a(s, n) % f->hash);
    int32_t k = rlab_vocab_add(&f->vocab, s, n);
    if (k < 0)
        return -1;
    if (k + 2 > f->card)
        f->card = k + 2;
    return k + 1;
}

static int field_push(tab_build *b, int fi, int32_t id)
{
    rlab_tab_field *f = &b->t->fields[fi];
    int64_t at = f->off[b->t->n + 1];
    if (at >= b->idcap[fi]) {
        int64_t nc = b->idcap[fi] ? b->idcap[fi] * 2 : 4096;
        int32_t *ids = rlab_realloc(f->ids, (size_t)nc * sizeof *ids);
        if (!ids)
            return RLAB_ENOMEM;
        f->ids = ids;
        b->idcap[fi] = nc;
    }
    f->ids[at] = id;
    f->off[b->t->n + 1] = at + 1;
    return RLAB_OK;
}

static void build_clear(tab_build *b)
{
    rlab_free(b->idcap);
    b->idcap = NULL;
}

/* ---- the loader ------------------------------------------------------------------------ */
typedef struct col_plan {
    rlab_tab_role role;
    int slot; /* label / field / num index */
    const rlab_tab_map *m;
} col_plan;

static int tab_read(rlab_reader *r, const rlab_tab_spec *sp, rlab_tabular *t, rlab_err *err)
{
    const char *sep = sp->sep ? sp->sep : ",";
    const char *line;
    size_t len;
    rlab_field *f = rlab_malloc(RLAB_TAB_MAX_COLS * sizeof *f);
    col_plan *plan = rlab_calloc(RLAB_TAB_MAX_COLS, sizeof *plan);
    char(*names)[64] = rlab_calloc(RLAB_TAB_MAX_COLS, sizeof *names);
    tab_build b = {.t = t};
    int rc = RLAB_OK, ncols = 0, group_col = -1, time_col = -1;
    if (!f || !plan || !names) {
        rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
        goto done;
    }
    /* the first non-blank line: the header, or the first data row */
    for (;;) {
        rc = rlab_reader_next(r, &line, &len, err);
        if (rc)
            goto done;
        if (!line) {
            rc = rlab_errf_at(err, RLAB_EFORMAT, r->name, r->line, "empty file, expected %s",
                              sp->header ? "a header line" : "samples");
            goto done;
        }
        if (len)
            break;
    }
    size_t nf = rlab_split_fields(line, len, sep, f, RLAB_TAB_MAX_COLS);
    if (nf > RLAB_TAB_MAX_COLS) {
        rc = rlab_errf_at(err, RLAB_EFORMAT, r->name, r->line, "%zu fields, at most %d supported",
                          nf, RLAB_TAB_MAX_COLS);
        goto done;
    }
    ncols = (int)nf;
    if (sp->header) {
        for (int c = 0; c < ncols; c++) {
            const char *s = f[c].p;
            size_t n = f[c].n;
            trim(&s, &n);
            if (n >= 64)
                n = 63;
            memcpy(names[c], s, n);
        }
    } else {
        int nn = 0;
        while (sp->names && sp->names[nn])
            nn++;
        if (nn > ncols && sp->min_fields > 0 && nn <= RLAB_TAB_MAX_COLS)
            ncols = nn;
        for (int c = 0; c < ncols; c++) {
            if (c < nn)
                snprintf(names[c], 64, "%s", sp->names[c]);
            else
                snprintf(names[c], 64, "c%d", c);
        }
    }
    /* every named (non-pattern) entry must name a column; ranges must fit */
    for (int k = 0; k < sp->nmap; k++) {
        const rlab_tab_map *m = &sp->map[k];
        int hit = 0;
        for (int c = 0; c < ncols && !hit; c++)
            hit = map_matches(m, c, names[c]);
        size_t pn = strlen(m->pattern);
        int wild = pn && m->pattern[pn - 1] == '*';
        if (!hit && !wild) {
            if (m->first >= 0)
                rc = rlab_errf_at(err, RLAB_EFORMAT, r->name, r->line,
                                  "column mapping: field #%d is past the %d fields of the file",
                                  m->first, ncols);
            else
                rc = rlab_errf_at(err, RLAB_EFORMAT, r->name, r->line,
                                  "column mapping: no column named '%s'%s", m->pattern,
                                  sp->header ? " in the header" : "");
            goto done;
        }
    }
    for (int c = 0; c < ncols; c++) {
        const rlab_tab_map *m = NULL;
        for (int k = 0; k < sp->nmap && !m; k++)
            if (map_matches(&sp->map[k], c, names[c]))
                m = &sp->map[k];
        plan[c].role = m ? m->role : RLAB_TAB_SKIP;
        plan[c].m = m;
        plan[c].slot = -1;
        switch (plan[c].role) {
        case RLAB_TAB_LABEL:
            plan[c].slot = tab_add_label(t, names[c]);
            if (plan[c].slot < 0) {
                rc = rlab_errf_at(err, RLAB_EFORMAT, r->name, r->line, "more than %d label columns",
                                  RLAB_TAB_MAX_LABELS);
                goto done;
            }
            break;
        case RLAB_TAB_GROUP:
            if (group_col >= 0) {
                rc = rlab_errf_at(err, RLAB_EFORMAT, r->name, r->line,
                                  "two group columns ('%s' and '%s')", names[group_col], names[c]);
                goto done;
            }
            group_col = c;
            b.has_group = 1;
            plan[c].slot = tab_add_field(&b, names[c], RLAB_TAB_CAT, m->hash);
            break;
        case RLAB_TAB_CAT:
        case RLAB_TAB_MULTI:
        case RLAB_TAB_SEQ:
            plan[c].slot = tab_add_field(&b, names[c], plan[c].role, m->hash);
            break;
        case RLAB_TAB_NUM:
            plan[c].slot = tab_add_num(t, names[c]);
            break;
        case RLAB_TAB_TIME:
            if (time_col >= 0) {
                rc = rlab_errf_at(err, RLAB_EFORMAT, r->name, r->line,
                                  "two time columns ('%s' and '%s')", names[time_col], names[c]);
                goto done;
            }
            time_col = c;
            b.has_time = 1;
            break;
        case RLAB_TAB_SKIP:
            break;
        }
        if (plan[c].role != RLAB_TAB_SKIP && plan[c].role != RLAB_TAB_TIME &&
            plan[c].role != RLAB_TAB_LABEL && plan[c].slot < 0) {
            rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
            goto done;
        }
    }
    if (t->nlabels == 0) {
        rc = rlab_errf_at(err, RLAB_EFORMAT, r->name, r->line,
                          "no label column: the mapping marks none as 'label'");
        goto done;
    }
    int first_is_data = !sp->header;
    int lo = (!sp->header && sp->min_fields > 0) ? sp->min_fields : ncols;
    for (;;) {
        if (first_is_data) {
            first_is_data = 0;
        } else {
            rc = rlab_reader_next(r, &line, &len, err);
            if (rc)
                goto done;
            if (!line)
                break;
            if (len == 0)
                continue;
            nf = rlab_split_fields(line, len, sep, f, RLAB_TAB_MAX_COLS);
        }
        if ((int)nf > ncols || (int)nf < lo) {
            if (lo == ncols)
                rc = rlab_errf_at(err, RLAB_EFORMAT, r->name, r->line,
                                  "expected %d %s-separated fields%s, got %zu", ncols,
                                  rlab_ld_sep_word(sep), sp->header ? " (as the header)" : "", nf);
            else
                rc = rlab_errf_at(err, RLAB_EFORMAT, r->name, r->line,
                                  "expected %d to %d %s-separated fields, got %zu", lo, ncols,
                                  rlab_ld_sep_word(sep), nf);
            goto done;
        }
        if ((rc = tab_grow(&b)) != RLAB_OK) {
            rlab_errf_at(err, rc, r->name, r->line, "out of memory");
            goto done;
        }
        int64_t i = t->n;
        for (int fi = 0; fi < t->nfields; fi++)
            if (t->fields[fi].off)
                t->fields[fi].off[i + 1] = t->fields[fi].off[i];
        for (int c = 0; c < ncols; c++) {
            const char *s = c < (int)nf ? f[c].p : "";
            size_t n = c < (int)nf ? f[c].n : 0;
            trim(&s, &n);
            const col_plan *pl = &plan[c];
            char q[48];
            switch (pl->role) {
            case RLAB_TAB_SKIP:
                break;
            case RLAB_TAB_LABEL: {
                float v;
                if (pl->m->has_positive) {
                    v = (strlen(pl->m->positive) == n && memcmp(pl->m->positive, s, n) == 0) ? 1.0f
                                                                                             : 0.0f;
                } else {
                    double d;
                    if (rlab_parse_f64(s, n, &d)) {
                        rlab_ld_quote(q, (rlab_field){s, n});
                        rc = rlab_errf_at(err, RLAB_EFORMAT, r->name, r->line,
                                          "label '%s' (column %d) is '%s', expected a number",
                                          names[c], c + 1, q);
                        goto done;
                    }
                    v = (d > 0.0 || d < 0.0) ? 1.0f : 0.0f;
                }
                t->labels[i * t->nlabels + pl->slot] = v;
                break;
            }
            case RLAB_TAB_NUM: {
                float v = NAN;
                if (n && rlab_parse_f32(s, n, &v)) {
                    rlab_ld_quote(q, (rlab_field){s, n});
                    rc = rlab_errf_at(err, RLAB_EFORMAT, r->name, r->line,
                                      "numeric column '%s' (column %d) is '%s', expected a number "
                                      "or an empty field",
                                      names[c], c + 1, q);
                    goto done;
                }
                t->num[i * t->nnum + pl->slot] = v;
                break;
            }
            case RLAB_TAB_TIME: {
                int64_t v = 0;
                if (rlab_parse_ts(s, n, &v)) {
                    rlab_ld_quote(q, (rlab_field){s, n});
                    rc = rlab_errf_at(err, RLAB_EFORMAT, r->name, r->line,
                                      "time column '%s' (column %d) is '%s', expected a number",
                                      names[c], c + 1, q);
                    goto done;
                }
                t->time[i] = v;
                break;
            }
            case RLAB_TAB_GROUP:
            case RLAB_TAB_CAT: {
                int32_t id = field_id(&t->fields[pl->slot], s, n);
                if (id < 0) {
                    rc = rlab_errf_at(err, RLAB_ENOMEM, r->name, r->line, "out of memory");
                    goto done;
                }
                t->fields[pl->slot].ids[i] = id;
                if (pl->role == RLAB_TAB_GROUP) {
                    int32_t g = rlab_vocab_add(&t->groups, s, n);
                    if (g < 0) {
                        rc = rlab_errf_at(err, RLAB_ENOMEM, r->name, r->line, "out of memory");
                        goto done;
                    }
                    t->group[i] = g;
                }
                break;
            }
            case RLAB_TAB_MULTI:
            case RLAB_TAB_SEQ: {
                const char *vs = pl->m->sep;
                size_t vl = strlen(vs), a = 0;
                while (n && a <= n) {
                    const char *hit = NULL;
                    for (size_t k = a; k + vl <= n; k++)
                        if (memcmp(s + k, vs, vl) == 0) {
                            hit = s + k;
                            break;
                        }
                    size_t e = hit ? (size_t)(hit - s) : n;
                    const char *v = s + a;
                    size_t vn = e - a;
                    trim(&v, &vn);
                    if (vn) {
                        int32_t id = field_id(&t->fields[pl->slot], v, vn);
                        if (id < 0 || field_push(&b, pl->slot, id)) {
                            rc = rlab_errf_at(err, RLAB_ENOMEM, r->name, r->line, "out of memory");
                            goto done;
                        }
                    }
                    if (!hit)
                        break;
                    a = e + vl;
                }
                break;
            }
            }
        }
        t->n++;
    }
    if (t->n == 0) {
        rc = rlab_errf_at(err, RLAB_EFORMAT, r->name, r->line, "no samples after the header");
        goto done;
    }
done:
    build_clear(&b);
    rlab_free(f);
    rlab_free(plan);
    rlab_free(names);
    return rc;
}

static int tab_load_reader(rlab_reader *r, const rlab_tab_spec *sp, const char *name,
                           const char *source, rlab_tabular **out, rlab_err *err)
{
    rlab_tabular *t = tab_new(name);
    if (!t)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    int rc = tab_read(r, sp, t, err);
    if (rc) {
        rlab_tabular_free(t);
        return rc;
    }
    snprintf(t->source, sizeof t->source, "%s", source);
    *out = t;
    return RLAB_OK;
}

int rlab_tabular_load(const char *path, const rlab_tab_spec *sp, const char *name,
                      rlab_tabular **out, rlab_err *err)
{
    *out = NULL;
    char def[RLAB_LD_NAME_BUF];
    if (!name) {
        rlab_ld_default_name(path, def, sizeof def);
        name = def;
    }
    int rc = rlab_name_check("dataset", name, err);
    if (rc)
        return rc;
    rlab_reader r;
    rc = rlab_reader_open(&r, path, 0, err);
    if (rc == RLAB_OK)
        rc = tab_load_reader(&r, sp, name, path, out, err);
    rlab_reader_close(&r);
    return rc;
}

int rlab_tabular_load_buffer(const void *buf, size_t n, const rlab_tab_spec *sp, const char *label,
                             rlab_tabular **out, rlab_err *err)
{
    *out = NULL;
    rlab_reader r;
    rlab_reader_open_mem(&r, buf, n, label ? label : "<buffer>", 0);
    int rc = tab_load_reader(&r, sp, "buffer", r.name, out, err);
    rlab_reader_close(&r);
    return rc;
}

/* ---- presets --------------------------------------------------------------------------- */
static const char *const criteo_names[] = {
    "label", "I1",  "I2",  "I3",  "I4",  "I5",  "I6",  "I7",  "I8",  "I9",  "I10",
    "I11",   "I12", "I13", "C1",  "C2",  "C3",  "C4",  "C5",  "C6",  "C7",  "C8",
    "C9",    "C10", "C11", "C12", "C13", "C14", "C15", "C16", "C17", "C18", "C19",
    "C20",   "C21", "C22", "C23", "C24", "C25", "C26", NULL};

/* DeepCTR examples/run_mtl.py column names, after the file's leading row id. */
static const char *const census_names[] = {"row_id",           "age",
                                           "class_worker",     "det_ind_code",
                                           "det_occ_code",     "education",
                                           "wage_per_hour",    "hs_college",
                                           "marital_stat",     "major_ind_code",
                                           "major_occ_code",   "race",
                                           "hisp_origin",      "sex",
                                           "union_member",     "unemp_reason",
                                           "full_or_part_emp", "capital_gains",
                                           "capital_losses",   "stock_dividends",
                                           "tax_filer_stat",   "region_prev_res",
                                           "state_prev_res",   "det_hh_fam_stat",
                                           "det_hh_summ",      "instance_weight",
                                           "mig_chg_msa",      "mig_chg_reg",
                                           "mig_move_reg",     "mig_same",
                                           "mig_prev_sunbelt", "num_emp",
                                           "fam_under_18",     "country_father",
                                           "country_mother",   "country_self",
                                           "citizenship",      "own_or_self",
                                           "vet_question",     "vet_benefits",
                                           "weeks_worked",     "year",
                                           "income_50k",       NULL};

const char *rlab_tab_presets(void) { return "criteo, criteo_sample, avazu, census, tiny_mtl"; }

int rlab_tab_preset_spec(const char *preset, rlab_tab_spec *sp, rlab_err *err)
{
    rlab_tab_spec_init(sp);
    const char *map = NULL;
    if (preset && strcmp(preset, "criteo") == 0) {
        sp->sep = "\t";
        sp->header = 0;
        sp->min_fields = 14; /* label and the 13 integers; trailing categorical may be cut */
        sp->names = criteo_names;
        map = "label:label, I*:num, C*:cat";
    } else if (preset && strcmp(preset, "criteo_sample") == 0) {
        map = "label:label, I*:num, C*:cat";
    } else if (preset && strcmp(preset, "avazu") == 0) {
        map = "click:label, id:skip, *:cat";
    } else if (preset && strcmp(preset, "census") == 0) {
        sp->header = 0;
        sp->names = census_names;
        map = "row_id:skip, income_50k:label:=50000+., marital_stat:label:=Never married, "
              "age:num, wage_per_hour:num, capital_gains:num, capital_losses:num, "
              "stock_dividends:num, instance_weight:num, num_emp:num, own_or_self:num, "
              "vet_benefits:num, weeks_worked:num, year:num, *:cat";
    } else if (preset && strcmp(preset, "tiny_mtl") == 0) {
        map = "click:label, conversion:label, search_id:group, categorical_*:cat, "
              "numerical_*:num";
    } else {
        return rlab_errf(err, RLAB_EINVAL, "unknown tabular preset '%s' (known: %s)",
                         preset ? preset : "(none)", rlab_tab_presets());
    }
    return rlab_tab_spec_map(sp, map, err);
}

int rlab_tabular_load_preset(const char *preset, const char *path, const char *name,
                             rlab_tabular **out, rlab_err *err)
{
    *out = NULL;
    rlab_tab_spec sp;
    int rc = rlab_tab_preset_spec(preset, &sp, err);
    if (rc)
        return rc;
    rc = rlab_tabular_load(path, &sp, name, out, err);
    if (rc == RLAB_OK)
        snprintf((*out)->preset, sizeof(*out)->preset, "%s", preset);
    return rc;
}

/* ---- lookups ---------------------------------------------------------------------------- */
int rlab_tabular_label(const rlab_tabular *t, const char *name)
{
    for (int j = 0; j < t->nlabels; j++)
        if (strcmp(t->label_names[j], name) == 0)
            return j;
    return -1;
}

int rlab_tabular_field(const rlab_tabular *t, const char *name)
{
    for (int j = 0; j < t->nfields; j++)
        if (strcmp(t->fields[j].name, name) == 0)
            return j;
    return -1;
}

double rlab_tabular_pos_rate(const rlab_tabular *t, int j)
{
    if (j < 0 || j >= t->nlabels || t->n == 0)
        return 0.0;
    double s = 0;
    for (int64_t i = 0; i < t->n; i++)
        s += (double)t->labels[i * t->nlabels + j];
    return s / (double)t->n;
}

/* ---- samples from ratings --------------------------------------------------------------- */
void rlab_tab_mt_opts_init(rlab_tab_mt_opts *o)
{
    o->negatives = 1;
    o->like_min = 4.0f;
    o->max_hist = 20;
    o->seed = 42;
}

typedef struct ts_row {
    int64_t ts;
    int64_t row;
} ts_row;

static int cmp_ts_row(const void *a, const void *b)
{
    const ts_row *x = a, *y = b;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    return x->row < y->row ? -1 : x->row > y->row;
}

static int32_t feat_token_id(const rlab_feat_col *c, int32_t ent)
{
    return c->tok[ent] < 0 ? 0 : c->tok[ent] + 1;
}

/* from_labels: one sample per interaction with the dataset's own label columns (no
 * negatives); else click/like samples from ratings. */
static int from_inter(const rlab_dataset *ds, const rlab_tab_mt_opts *opt, int from_labels,
                      rlab_tabular **out, rlab_err *err)
{
    *out = NULL;
    rlab_tab_mt_opts o;
    if (opt)
        o = *opt;
    else
        rlab_tab_mt_opts_init(&o);
    if (from_labels) {
        if (ds->inter.nlabels < 1)
            return rlab_errf(err, RLAB_EINVAL,
                             "dataset '%s' has no label columns (RecBole .inter float columns "
                             "such as label, click, conversion)",
                             ds->name);
        o.negatives = 0;
    } else if (!(ds->inter.flags & RLAB_INTER_HAS_RATING)) {
        return rlab_errf(err, RLAB_EINVAL,
                         "dataset '%s' has no ratings: click/like samples need them", ds->name);
    }
    if (o.negatives < 0 || o.max_hist < 0)
        return rlab_errf(err, RLAB_EINVAL, "negatives and max_hist must be >= 0");
    int32_t nu = ds->users.n, ni = ds->items.n;
    size_t N = ds->inter.n;
    rlab_tabular *t = tab_new(ds->name);
    tab_build b = {.t = t, .has_group = 1, .has_time = 1};
    ts_row *rows = rlab_malloc((N ? N : 1) * sizeof *rows);
    int64_t *ustart = rlab_calloc((size_t)nu + 1, sizeof *ustart);
    uint8_t *seen = rlab_calloc((size_t)ni + 1, 1);
    int rc = RLAB_OK;
    if (!t || !rows || !ustart || !seen)
        goto nomem;
    if (from_labels)
        snprintf(t->source, sizeof t->source, "%s (its label columns)", ds->name);
    else
        snprintf(t->source, sizeof t->source, "%s (click = rated, like = rating >= %g)", ds->name,
                 (double)o.like_min);
    /* rows grouped by user, each user's rows in time order */
    for (size_t r = 0; r < N; r++)
        ustart[ds->inter.user[r] + 1]++;
    for (int32_t u = 0; u < nu; u++)
        ustart[u + 1] += ustart[u];
    {
        int64_t *fill = rlab_malloc(((size_t)nu + 1) * sizeof *fill);
        if (!fill)
            goto nomem;
        memcpy(fill, ustart, ((size_t)nu + 1) * sizeof *fill);
        for (size_t r = 0; r < N; r++) {
            int32_t u = ds->inter.user[r];
            rows[fill[u]++] = (ts_row){ds->inter.ts[r], (int64_t)r};
        }
        rlab_free(fill);
    }
    for (int32_t u = 0; u < nu; u++)
        qsort(rows + ustart[u], (size_t)(ustart[u + 1] - ustart[u]), sizeof *rows, cmp_ts_row);
    if (from_labels) {
        for (int j = 0; j < ds->inter.nlabels; j++)
            if (tab_add_label(t, ds->inter.label_names[j]) < 0)
                goto nomem;
    } else if (tab_add_label(t, "click") < 0 || tab_add_label(t, "like") < 0) {
        goto nomem;
    }
    const int NL = t->nlabels;
    int f_user = tab_add_field(&b, "user", RLAB_TAB_CAT, 0);
    int f_item = tab_add_field(&b, "item", RLAB_TAB_CAT, 0);
    int f_hist = tab_add_field(&b, "history", RLAB_TAB_SEQ, 0);
    if (f_user < 0 || f_item < 0 || f_hist < 0)
        goto nomem;
    t->fields[f_user].card = nu + 1;
    t->fields[f_item].card = ni + 1;
    t->fields[f_hist].card = ni + 1;
    t->fields[f_hist].shares = f_item;
    /* entity features: [side][col] -> field / num slot */
    int ffirst = t->nfields;
    int nfeat[2] = {ds->item_feats.ncols, ds->user_feats.ncols};
    const rlab_feats *feats[2] = {&ds->item_feats, &ds->user_feats};
    int *slot[2] = {NULL, NULL};
    for (int side = 0; side < 2; side++) {
        slot[side] = rlab_malloc(((size_t)nfeat[side] + 1) * sizeof(int));
        if (!slot[side])
            goto nomem_slots;
        for (int c = 0; c < nfeat[side]; c++) {
            const rlab_feat_col *col = &feats[side]->cols[c];
            char nm[64];
            snprintf(nm, sizeof nm, "%s_%.50s", side ? "user" : "item", col->name);
            slot[side][c] = -1;
            if (col->kind == RLAB_FEAT_TOKEN || col->kind == RLAB_FEAT_TOKEN_SEQ) {
                int k = tab_add_field(
                    &b, nm, col->kind == RLAB_FEAT_TOKEN ? RLAB_TAB_CAT : RLAB_TAB_MULTI, 0);
                if (k < 0)
                    goto nomem_slots;
                t->fields[k].card = col->vocab.n + 1;
                slot[side][c] = k;
            } else if (col->kind == RLAB_FEAT_FLOAT) {
                int k = tab_add_num(t, nm);
                if (k < 0)
                    goto nomem_slots;
                slot[side][c] = k;
            }
        }
    }
    (void)ffirst;
    rlab_rng rng;
    rlab_rng_seed(&rng, o.seed);
    for (int32_t u = 0; u < nu; u++) {
        int64_t a = ustart[u], e = ustart[u + 1];
        for (int64_t k = a; k < e; k++)
            seen[ds->inter.item[rows[k].row]] = 1;
        int64_t nrated = e - a;
        for (int64_t k = a; k < e; k++) {
            int64_t r = rows[k].row;
            for (int s = 0; s <= o.negatives; s++) {
                int32_t item = ds->inter.item[r];
                if (s > 0) {
                    if (nrated >= ni)
                        break;
                    do
                        item = (int32_t)rlab_rng_below(&rng, (uint64_t)ni);
                    while (seen[item]);
                }
                if (tab_grow(&b))
                    goto nomem_slots;
                int64_t i = t->n;
                if (from_labels) {
                    for (int j = 0; j < NL; j++)
                        t->labels[i * NL + j] = ds->inter.labels[j][r] > 0.5f ? 1.0f : 0.0f;
                } else {
                    t->labels[i * 2] = s == 0 ? 1.0f : 0.0f;
                    t->labels[i * 2 + 1] =
                        (s == 0 && (double)ds->inter.rating[r] >= (double)o.like_min) ? 1.0f : 0.0f;
                }
                t->group[i] = u;
                t->time[i] = rows[k].ts;
                for (int fi = 0; fi < t->nfields; fi++)
                    if (t->fields[fi].off)
                        t->fields[fi].off[i + 1] = t->fields[fi].off[i];
                t->fields[f_user].ids[i] = u + 1;
                t->fields[f_item].ids[i] = item + 1;
                int64_t h0 = k - o.max_hist < a ? a : k - o.max_hist;
                for (int64_t h = h0; h < k; h++)
                    if (field_push(&b, f_hist, ds->inter.item[rows[h].row] + 1))
                        goto nomem_slots;
                for (int side = 0; side < 2; side++) {
                    int32_t ent = side ? u : item;
                    for (int c = 0; c < nfeat[side]; c++) {
                        const rlab_feat_col *col = &feats[side]->cols[c];
                        int sl = slot[side][c];
                        if (sl < 0)
                            continue;
                        int inrange = ent < feats[side]->n_entities;
                        if (col->kind == RLAB_FEAT_TOKEN) {
                            t->fields[sl].ids[i] = inrange ? feat_token_id(col, ent) : 0;
                        } else if (col->kind == RLAB_FEAT_TOKEN_SEQ) {
                            if (!inrange)
                                continue;
                            for (int64_t q = col->off[ent]; q < col->off[ent + 1]; q++)
                                if (field_push(&b, sl, col->seq[q] + 1))
                                    goto nomem_slots;
                        } else {
                            t->num[i * t->nnum + sl] = inrange ? col->num[ent] : NAN;
                        }
                    }
                }
                t->n++;
            }
        }
        for (int64_t k = a; k < e; k++)
            seen[ds->inter.item[rows[k].row]] = 0;
    }
    snprintf(t->preset, sizeof t->preset, "%s", from_labels ? "labels" : "ratings");
    goto finish;
nomem_slots:
    rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
finish:
    rlab_free(slot[0]);
    rlab_free(slot[1]);
    goto out;
nomem:
    rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
out:
    build_clear(&b);
    rlab_free(rows);
    rlab_free(ustart);
    rlab_free(seen);
    if (rc) {
        rlab_tabular_free(t);
        return rc;
    }
    *out = t;
    return RLAB_OK;
}

int rlab_tabular_from_ratings(const rlab_dataset *ds, const rlab_tab_mt_opts *o, rlab_tabular **out,
                              rlab_err *err)
{
    return from_inter(ds, o, 0, out, err);
}

int rlab_tabular_from_labels(const rlab_dataset *ds, const rlab_tab_mt_opts *o, rlab_tabular **out,
                             rlab_err *err)
{
    return from_inter(ds, o, 1, out, err);
}

/* ---- synthetic world -------------------------------------------------------------------- */
int rlab_tabular_synth(int64_t n, int fields, int users, uint64_t seed, rlab_tabular **out,
                       rlab_err *err)
{
    *out = NULL;
    if (n < 1 || fields < 2 || fields > 64 || users < 1)
        return rlab_errf(err, RLAB_EINVAL,
                         "synthetic world: n >= 1, 2 <= fields <= 64, users >= 1 expected");
    enum { D = 4, NITEMS = 200, HIST = 10, NNUM = 4 };
    rlab_tabular *t = tab_new("synth");
    tab_build b = {.t = t, .has_group = 1};
    float *emb = NULL;
    int32_t *card = NULL;
    int rc = RLAB_OK;
    if (!t)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    rlab_rng rng;
    rlab_rng_seed(&rng, seed);
    card = rlab_malloc((size_t)(fields + 2) * sizeof *card);
    if (!card || tab_add_label(t, "click") < 0 || tab_add_label(t, "conversion") < 0)
        goto nomem;
    int f_user = tab_add_field(&b, "user", RLAB_TAB_CAT, 0);
    int f_item = tab_add_field(&b, "item", RLAB_TAB_CAT, 0);
    int f_hist = tab_add_field(&b, "history", RLAB_TAB_SEQ, 0);
    if (f_user < 0 || f_item < 0 || f_hist < 0)
        goto nomem;
    t->fields[f_user].card = users + 1;
    t->fields[f_item].card = NITEMS + 1;
    t->fields[f_hist].card = NITEMS + 1;
    t->fields[f_hist].shares = f_item;
    int fbase = t->nfields;
    size_t ncard = 0;
    for (int k = 0; k < fields; k++) {
        char nm[16];
        snprintf(nm, sizeof nm, "f%d", k + 1);
        int fi = tab_add_field(&b, nm, RLAB_TAB_CAT, 0);
        if (fi < 0)
            goto nomem;
        card[k] = 5 + (int32_t)rlab_rng_below(&rng, 196);
        t->fields[fi].card = card[k] + 1;
        ncard += (size_t)card[k];
    }
    for (int k = 0; k < NNUM; k++) {
        char nm[16];
        snprintf(nm, sizeof nm, "x%d", k + 1);
        if (tab_add_num(t, nm) < 0)
            goto nomem;
    }
    /* hidden embeddings: fields' values, then items, then users; two views (click, conv) */
    size_t nemb = (ncard + NITEMS + (size_t)users) * 2 * D;
    emb = rlab_malloc(nemb * sizeof *emb);
    if (!emb)
        goto nomem;
    for (size_t k = 0; k < nemb; k++)
        emb[k] = rlab_rng_normal(&rng) * 0.7f;
    size_t item_base = ncard, user_base = ncard + NITEMS;
    float wnum[2][NNUM];
    for (int k = 0; k < NNUM; k++) {
        wnum[0][k] = rlab_rng_normal(&rng) * 0.5f;
        wnum[1][k] = rlab_rng_normal(&rng) * 0.5f;
    }
    int32_t *val = rlab_malloc((size_t)fields * sizeof *val);
    if (!val)
        goto nomem;
    for (int64_t i = 0; i < n; i++) {
        if (tab_grow(&b)) {
            rlab_free(val);
            goto nomem;
        }
        for (int fi = 0; fi < t->nfields; fi++)
            if (t->fields[fi].off)
                t->fields[fi].off[i + 1] = t->fields[fi].off[i];
        int32_t u = (int32_t)rlab_rng_below(&rng, (uint64_t)users);
        int32_t it = (int32_t)rlab_rng_below(&rng, NITEMS);
        t->group[i] = u;
        t->fields[f_user].ids[i] = u + 1;
        t->fields[f_item].ids[i] = it + 1;
        size_t off = 0;
        for (int k = 0; k < fields; k++) {
            /* skewed values: the square of a uniform favours small ids */
            float x = rlab_rng_uniform(&rng);
            val[k] = (int32_t)(x * x * (float)card[k]);
            if (val[k] >= card[k])
                val[k] = card[k] - 1;
            t->fields[fbase + k].ids[i] = val[k] + 1;
        }
        double logit[2] = {-1.0, -0.5};
        for (int v = 0; v < 2; v++) {
            off = 0;
            const float *ve[64];
            for (int k = 0; k < fields; k++) {
                ve[k] = emb + ((off + (size_t)val[k]) * 2 + (size_t)v) * D;
                off += (size_t)card[k];
            }
            for (int a = 0; a < fields; a++)
                for (int c = a + 1; c < fields; c++) {
                    double dot = 0;
                    for (int d = 0; d < D; d++)
                        dot += (double)(ve[a][d] * ve[c][d]);
                    logit[v] += dot / (double)fields;
                }
        }
        /* user taste x item, and the history's match with the target item */
        const float *ue = emb + ((user_base + (size_t)u) * 2) * D;
        const float *ie = emb + ((item_base + (size_t)it) * 2) * D;
        double ui = 0, hm = 0;
        for (int d = 0; d < D; d++)
            ui += (double)(ue[d] * ie[d]);
        int hl = (int)rlab_rng_below(&rng, HIST + 1);
        for (int h = 0; h < hl; h++) {
            /* history items drawn near the user's taste: half the time the target's
             * neighbour (same id mod 20) */
            int32_t hi = rlab_rng_uniform(&rng) < 0.5f
                             ? (int32_t)((it + 20 * rlab_rng_below(&rng, NITEMS / 20)) % NITEMS)
                             : (int32_t)rlab_rng_below(&rng, NITEMS);
            if (field_push(&b, f_hist, hi + 1)) {
                rlab_free(val);
                goto nomem;
            }
            hm += (hi % 20 == it % 20) ? 1.0 : 0.0;
        }
        double xs[2] = {0, 0};
        for (int k = 0; k < NNUM; k++) {
            float x = rlab_rng_normal(&rng);
            t->num[i * NNUM + k] = x;
            xs[0] += (double)(wnum[0][k] * x);
            xs[1] += (double)(wnum[1][k] * x);
        }
        logit[0] += 0.8 * ui + 0.5 * hm / (double)(hl ? hl : 1) * 3.0 + xs[0];
        logit[1] = 0.5 * logit[0] + logit[1] + xs[1];
        double pc = 1.0 / (1.0 + exp(-logit[0])), pv = 1.0 / (1.0 + exp(-logit[1]));
        int click = rlab_rng_double(&rng) < pc;
        int conv = click && rlab_rng_double(&rng) < pv;
        t->labels[i * 2] = (float)click;
        t->labels[i * 2 + 1] = (float)conv;
        t->n++;
    }
    rlab_free(val);
    for (int32_t u = 0; u < users; u++) {
        char nm[16];
        int k = snprintf(nm, sizeof nm, "%d", u);
        if (rlab_vocab_add(&t->groups, nm, (size_t)k) < 0)
            goto nomem;
    }
    snprintf(t->source, sizeof t->source, "synthetic (n=%lld fields=%d users=%d seed=%llu)",
             (long long)n, fields, users, (unsigned long long)seed);
    snprintf(t->preset, sizeof t->preset, "synth");
    goto done;
nomem:
    rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
done:
    build_clear(&b);
    rlab_free(emb);
    rlab_free(card);
    if (rc) {
        rlab_tabular_free(t);
        return rc;
    }
    *out = t;
    return RLAB_OK;
}

/* ---- split ------------------------------------------------------------------------------ */
int rlab_tabular_split(const rlab_tabular *t, double valid, double test, int by_time, uint64_t seed,
                       int64_t **train, int64_t *ntrain, int64_t **val, int64_t *nval,
                       int64_t **tst, int64_t *ntest, rlab_err *err)
{
    *train = *val = *tst = NULL;
    if (valid < 0 || test < 0 || valid + test >= 1.0)
        return rlab_errf(err, RLAB_EINVAL, "split: valid + test must be in [0, 1)");
    int64_t n = t->n;
    int64_t *perm = rlab_malloc((size_t)(n ? n : 1) * sizeof *perm);
    if (!perm)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    for (int64_t i = 0; i < n; i++)
        perm[i] = i;
    if (by_time && t->time) {
        /* (time, row) pairs: stable and reentrant */
        ts_row *p = rlab_malloc((size_t)(n ? n : 1) * sizeof *p);
        if (!p) {
            rlab_free(perm);
            return rlab_errf(err, RLAB_ENOMEM, "out of memory");
        }
        for (int64_t i = 0; i < n; i++)
            p[i] = (ts_row){t->time[i], i};
        qsort(p, (size_t)n, sizeof *p, cmp_ts_row);
        for (int64_t i = 0; i < n; i++)
            perm[i] = p[i].row;
        rlab_free(p);
    } else {
        rlab_rng rng;
        rlab_rng_seed(&rng, seed);
        for (int64_t i = n - 1; i > 0; i--) {
            int64_t j = (int64_t)rlab_rng_below(&rng, (uint64_t)i + 1);
            int64_t x = perm[i];
            perm[i] = perm[j];
            perm[j] = x;
        }
    }
    int64_t nt = (int64_t)((double)n * test), nv = (int64_t)((double)n * valid);
    int64_t ntr = n - nt - nv;
    int64_t *a = rlab_malloc((size_t)(ntr ? ntr : 1) * sizeof *a);
    int64_t *v = rlab_malloc((size_t)(nv ? nv : 1) * sizeof *v);
    int64_t *s = rlab_malloc((size_t)(nt ? nt : 1) * sizeof *s);
    if (!a || !v || !s) {
        rlab_free(a), rlab_free(v), rlab_free(s), rlab_free(perm);
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    }
    memcpy(a, perm, (size_t)ntr * sizeof *a);
    memcpy(v, perm + ntr, (size_t)nv * sizeof *v);
    memcpy(s, perm + ntr + nv, (size_t)nt * sizeof *s);
    rlab_free(perm);
    *train = a, *ntrain = ntr, *val = v, *nval = nv, *tst = s, *ntest = nt;
    return RLAB_OK;
}

int rlab_tabular_set_parts(rlab_tabular *t, double valid, double test, int64_t test_from,
                           uint64_t seed, rlab_err *err)
{
    int64_t *r[3] = {NULL, NULL, NULL}, n[3] = {0, 0, 0};
    int rc;
    char desc[64];
    if (test_from > t->n)
        return rlab_errf(err, RLAB_EINVAL, "split: test part from row %lld of %lld",
                         (long long)test_from, (long long)t->n);
    if (test_from >= 0) {
        /* the training rows alone, at random (times ignored): valid share; the rest is test */
        rlab_tabular sub = *t;
        sub.n = test_from;
        sub.time = NULL;
        int64_t *none = NULL, nn = 0;
        rc = rlab_tabular_split(&sub, valid, 0.0, 0, seed, &r[0], &n[0], &r[1], &n[1], &none, &nn,
                                err);
        rlab_free(none);
        n[2] = t->n - test_from;
        r[2] = rc ? NULL : rlab_malloc((size_t)(n[2] ? n[2] : 1) * sizeof *r[2]);
        if (!rc && !r[2])
            rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
        for (int64_t i = 0; !rc && i < n[2]; i++)
            r[2][i] = test_from + i;
        snprintf(desc, sizeof desc, "test file; valid %.2f random", valid);
    } else {
        int by_time = t->time != NULL;
        rc = rlab_tabular_split(t, valid, test, by_time, seed, &r[0], &n[0], &r[1], &n[1], &r[2],
                                &n[2], err);
        snprintf(desc, sizeof desc, "%s %.2f/%.2f/%.2f", by_time ? "time" : "random",
                 1.0 - valid - test, valid, test);
    }
    if (rc) {
        for (int k = 0; k < 3; k++)
            rlab_free(r[k]);
        return rc;
    }
    for (int k = 0; k < 3; k++) {
        rlab_free(t->part_rows[k]);
        t->part_rows[k] = r[k];
        t->part_n[k] = n[k];
    }
    snprintf(t->part_desc, sizeof t->part_desc, "%s", desc);
    return RLAB_OK;
}

int32_t rlab_tabular_ngroups(const rlab_tabular *t)
{
    if (!t->group)
        return 0;
    int32_t n = rlab_vocab_size(&t->groups);
    if (n > 0)
        return n;
    for (int64_t i = 0; i < t->n; i++) /* groups given as indices */
        if (t->group[i] + 1 > n)
            n = t->group[i] + 1;
    return n;
}
