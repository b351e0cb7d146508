/*
 * plugins/crs/catalog.c: titles, MovieLens metadata, recommendation instances, the catalogue
 * dataset (crs.prepare) and the knowledge graph over it.
 */
#include "crs.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- titles ------------------------------------------------------------------------------ */

void crs_title_norm(const char *title, char *out, size_t cap, int *year)
{
    char buf[512];
    size_t n = 0;
    int y = 0;
    const char *s = title ? title : "";
    size_t len = strlen(s);
    while (len && isspace((unsigned char)s[len - 1]))
        len--;
    /* a trailing "(yyyy)" is the year */
    if (len >= 6 && s[len - 1] == ')' && s[len - 6] == '(' && isdigit((unsigned char)s[len - 5]) &&
        isdigit((unsigned char)s[len - 4]) && isdigit((unsigned char)s[len - 3]) &&
        isdigit((unsigned char)s[len - 2])) {
        y = atoi(s + len - 5);
        len -= 6;
    }
    /* words of ASCII letters and digits, lower-cased, one blank between */
    for (size_t i = 0; i < len && n + 2 < sizeof buf; i++) {
        unsigned char c = (unsigned char)s[i];
        if (isalnum(c) && c < 128)
            buf[n++] = (char)tolower(c);
        else if (n && buf[n - 1] != ' ')
            buf[n++] = ' ';
    }
    while (n && buf[n - 1] == ' ')
        n--;
    buf[n] = 0;
    /* MovieLens writes "Matrix, The": a trailing article goes; so does a leading one */
    static const char *const arts[] = {"the", "a", "an", "les", "la", "le", "il", "el", NULL};
    char *b = buf;
    for (int k = 0; arts[k]; k++) {
        size_t al = strlen(arts[k]);
        if (n > al + 1 && buf[n - al - 1] == ' ' && strcmp(buf + n - al, arts[k]) == 0) {
            n -= al + 1;
            buf[n] = 0;
            break;
        }
    }
    for (int k = 0; arts[k]; k++) {
        size_t al = strlen(arts[k]);
        if (strlen(b) > al + 1 && strncmp(b, arts[k], al) == 0 && b[al] == ' ') {
            b += al + 1;
            break;
        }
    }
    snprintf(out, cap, "%s", b);
    if (year)
        *year = y;
}

static char *turn_text(const rlab_dialogues *d, const rlab_turn *t, int slots)
{
    const char *s = t->text ? t->text : "";
    size_t cap = strlen(s) + 64, n = 0;
    char *out = rlab_malloc(cap);
    if (!out)
        return NULL;
    while (*s) {
        if (*s == '@' && isdigit((unsigned char)s[1])) {
            const char *e = s + 1;
            while (isdigit((unsigned char)*e))
                e++;
            int32_t it = rlab_vocab_find(&d->items, s + 1, (size_t)(e - s - 1));
            const char *title = slots ? "[MOVIE]"
                                : it >= 0 && d->item_titles && d->item_titles[it]
                                    ? d->item_titles[it]
                                    : NULL;
            size_t tl = title ? strlen(title) : (size_t)(e - s);
            if (n + tl + 2 >= cap) {
                cap = (n + tl + 2) * 2;
                char *p = rlab_realloc(out, cap);
                if (!p) {
                    rlab_free(out);
                    return NULL;
                }
                out = p;
            }
            memcpy(out + n, title ? title : s, tl);
            n += tl;
            s = e;
            continue;
        }
        if (n + 2 >= cap) {
            cap *= 2;
            char *p = rlab_realloc(out, cap);
            if (!p) {
                rlab_free(out);
                return NULL;
            }
            out = p;
        }
        out[n++] = (*s == '\n' || *s == '\r') ? ' ' : *s;
        s++;
    }
    out[n] = 0;
    return out;
}

char *crs_turn_text(const rlab_dialogues *d, const rlab_turn *t) { return turn_text(d, t, 0); }
char *crs_turn_template(const rlab_dialogues *d, const rlab_turn *t) { return turn_text(d, t, 1); }

/* ---- MovieLens metadata ------------------------------------------------------------------- */

static const char *const ml100k_genres[19] = {
    "unknown",     "Action", "Adventure", "Animation", "Children's", "Comedy",  "Crime",
    "Documentary", "Drama",  "Fantasy",   "Film-Noir", "Horror",     "Musical", "Mystery",
    "Romance",     "Sci-Fi", "Thriller",  "War",       "Western"};

static int movies_push(crs_movies *mv, const char *title, size_t tlen, const char *genres)
{
    if (mv->n == mv->cap) {
        int32_t cap = mv->cap ? mv->cap * 2 : 1024;
        crs_movie *p = rlab_realloc(mv->m, (size_t)cap * sizeof *p);
        if (!p)
            return RLAB_ENOMEM;
        mv->m = p;
        mv->cap = cap;
    }
    char t[512], norm[512];
    snprintf(t, sizeof t, "%.*s", (int)(tlen < 500 ? tlen : 500), title);
    crs_movie *m = &mv->m[mv->n];
    crs_title_norm(t, norm, sizeof norm, &m->year);
    m->norm = rlab_strdup(norm);
    m->genres = rlab_strdup(genres);
    if (!m->norm || !m->genres) {
        rlab_free(m->norm);
        rlab_free(m->genres);
        return RLAB_ENOMEM;
    }
    mv->n++;
    return RLAB_OK;
}

/* Fields of line split on sep (at most max), into f/fl; returns the count. */
static int split(char *line, const char *sep, char **f, int max)
{
    int n = 0;
    size_t sl = strlen(sep);
    char *p = line;
    while (n < max) {
        f[n++] = p;
        char *q = strstr(p, sep);
        if (!q)
            break;
        *q = 0;
        p = q + sl;
    }
    return n;
}

int crs_movies_load(crs_movies *mv, const char *path, rlab_err *err)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return rlab_errf(err, RLAB_EIO, "%s: cannot open: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long lineno = 0;
    int rc = RLAB_OK;
    while (rc == RLAB_OK && (len = getline(&line, &cap, fp)) >= 0) {
        lineno++;
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = 0;
        if (!len)
            continue;
        char *f[32];
        int nf;
        char genres[512] = "";
        int bars = 0;
        for (const char *p = line; *p; p++)
            bars += *p == '|';
        if (bars == 23 && !strstr(line, "::") &&
            (nf = split(line, "|", f, 32)) == 24) { /* u.item: id|title|date|video|url|19 flags */
            size_t gl = 0;
            for (int g = 0; g < 19; g++) {
                if (strcmp(f[5 + g], "1") == 0)
                    gl += (size_t)snprintf(genres + gl, sizeof genres - gl, "%s%s", gl ? "|" : "",
                                           ml100k_genres[g]);
                else if (strcmp(f[5 + g], "0") != 0) {
                    rc = rlab_errf(err, RLAB_EFORMAT,
                                   "%s:%ld: genre flag %d is '%s' (0 or 1 expected)", path, lineno,
                                   g + 1, f[5 + g]);
                    break;
                }
            }
            if (!rc)
                rc = movies_push(mv, f[1], strlen(f[1]), genres);
            continue;
        }
        /* movies.dat: id::title::genres, or the mirror's id;title;genres */
        const char *sep = strstr(line, "::") ? "::" : ";";
        nf = split(line, sep, f, 4);
        char *end = NULL;
        long id = nf >= 1 ? strtol(f[0], &end, 10) : 0;
        if (nf != 3 || !end || *end || id <= 0) {
            rc = rlab_errf(err, RLAB_EFORMAT,
                           "%s:%ld: expected a MovieLens movie line (id::title::genres, "
                           "id;title;genres or u.item's 24 '|' fields), got %d field(s)",
                           path, lineno, nf);
            break;
        }
        rc = movies_push(mv, f[1], strlen(f[1]), f[2]);
        if (rc == RLAB_ENOMEM)
            rlab_errf(err, rc, "out of memory");
    }
    if (rc == RLAB_OK && ferror(fp))
        rc = rlab_errf(err, RLAB_EIO, "%s: read error", path);
    if (rc == RLAB_OK && lineno == 0)
        rc = rlab_errf(err, RLAB_EFORMAT, "%s: empty file", path);
    free(line);
    fclose(fp);
    return rc;
}

void crs_movies_clear(crs_movies *mv)
{
    for (int32_t i = 0; i < mv->n; i++) {
        rlab_free(mv->m[i].norm);
        rlab_free(mv->m[i].genres);
    }
    rlab_free(mv->m);
    memset(mv, 0, sizeof *mv);
}

int32_t crs_movies_find(const crs_movies *mv, const char *norm, int year)
{
    int32_t any = -1;
    for (int32_t i = 0; mv && i < mv->n; i++)
        if (strcmp(mv->m[i].norm, norm) == 0) {
            if (year && mv->m[i].year == year)
                return i;
            if (!year && any < 0)
                any = i;
        }
    return any;
}

/* ---- recommendation instances ------------------------------------------------------------ */

static int insts_push(crs_insts *s, const crs_inst *x)
{
    if (s->n == s->cap) {
        int64_t cap = s->cap ? s->cap * 2 : 256;
        crs_inst *p = rlab_realloc(s->v, (size_t)cap * sizeof *p);
        if (!p)
            return RLAB_ENOMEM;
        s->v = p;
        s->cap = cap;
    }
    s->v[s->n++] = *x;
    return RLAB_OK;
}

void crs_insts_clear(crs_insts *s)
{
    for (int64_t i = 0; i < s->n; i++) {
        rlab_free(s->v[i].ctx);
        rlab_free(s->v[i].context);
        rlab_free(s->v[i].response);
        rlab_free(s->v[i].tmpl);
    }
    rlab_free(s->v);
    memset(s, 0, sizeof *s);
}

static int32_t map_item(const rlab_dialogues *d, const rlab_vocab *cat, int32_t it)
{
    if (!cat)
        return it;
    const char *id = rlab_vocab_name(&d->items, it);
    return id ? rlab_vocab_find(cat, id, strlen(id)) : -1;
}

int crs_insts_build(const rlab_dialogues *d, const rlab_vocab *cat, crs_insts *out, rlab_err *err)
{
    int rc = RLAB_OK;
    for (size_t c = 0; c < d->n && !rc; c++) {
        const rlab_conv *cv = &d->convs[c];
        size_t ctx_cap = 256, ctx_n = 0;
        char *ctx = rlab_malloc(ctx_cap);
        int32_t *seen = rlab_malloc(sizeof *seen * 4096);
        int32_t n_seen = 0;
        if (!ctx || !seen) {
            rlab_free(ctx);
            rlab_free(seen);
            return rlab_errf(err, RLAB_ENOMEM, "out of memory");
        }
        ctx[0] = 0;
        for (int t = 0; t < cv->nturns && !rc; t++) {
            const rlab_turn *tu = &cv->turns[t];
            char *text = crs_turn_text(d, tu);
            if (!text) {
                rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
                break;
            }
            if (tu->role == RLAB_ROLE_RECOMMENDER && tu->nitems > 0) {
                for (int k = 0; k < tu->nitems && !rc; k++) {
                    int dup = 0; /* one instance per distinct item of the turn */
                    for (int j = 0; j < k; j++)
                        dup |= tu->items[j] == tu->items[k];
                    if (dup)
                        continue;
                    crs_inst x = {.conv = (int32_t)c, .turn = t};
                    x.target = map_item(d, cat, tu->items[k]);
                    x.n_ctx = n_seen;
                    x.ctx = rlab_malloc(sizeof *x.ctx * (size_t)(n_seen ? n_seen : 1));
                    x.context = rlab_strdup(ctx);
                    x.response = rlab_strdup(text);
                    x.tmpl = crs_turn_template(d, tu);
                    if (!x.ctx || !x.context || !x.response || !x.tmpl) {
                        rlab_free(x.ctx);
                        rlab_free(x.context);
                        rlab_free(x.response);
                        rlab_free(x.tmpl);
                        rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
                        break;
                    }
                    memcpy(x.ctx, seen, sizeof *seen * (size_t)n_seen);
                    for (int32_t j = 0; j < n_seen; j++)
                        x.repeat |= seen[j] == x.target && x.target >= 0;
                    if (insts_push(out, &x)) {
                        rlab_free(x.ctx);
                        rlab_free(x.context);
                        rlab_free(x.response);
                        rlab_free(x.tmpl);
                        rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
                    }
                }
            }
            /* the turn joins the context */
            size_t tl = strlen(text) + 16;
            if (ctx_n + tl + 1 > ctx_cap) {
                ctx_cap = (ctx_n + tl + 1) * 2;
                char *p = rlab_realloc(ctx, ctx_cap);
                if (!p) {
                    rlab_free(text);
                    rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
                    break;
                }
                ctx = p;
            }
            ctx_n += (size_t)snprintf(ctx + ctx_n, ctx_cap - ctx_n, "%s%s: %s", ctx_n ? "\n" : "",
                                      tu->role == RLAB_ROLE_RECOMMENDER ? "System" : "User", text);
            rlab_free(text);
            for (int k = 0; k < tu->nitems && n_seen < 4096; k++) {
                int32_t it = map_item(d, cat, tu->items[k]);
                if (it >= 0)
                    seen[n_seen++] = it;
            }
        }
        rlab_free(ctx);
        rlab_free(seen);
    }
    return rc;
}

/* ---- the catalogue dataset ----------------------------------------------------------------- */

static int add_text(rlab_feat_col *col, int32_t i, const char *s)
{
    if (col->text[i])
        return RLAB_OK;
    col->text[i] = rlab_strdup(s ? s : "");
    return col->text[i] ? RLAB_OK : RLAB_ENOMEM;
}

/* A TOKEN_SEQ column from per-entity lists (values as text, '|'-separated). */
static int seq_col(rlab_feats *f, const char *name, int32_t n, char **vals)
{
    rlab_feat_col *c = rlab_feats_add(f, name, RLAB_FEAT_TOKEN_SEQ);
    if (!c || !(c->off = rlab_calloc((size_t)n + 1, sizeof *c->off)))
        return RLAB_ENOMEM;
    int64_t cap = 16, m = 0;
    c->seq = rlab_malloc((size_t)cap * sizeof *c->seq);
    if (!c->seq)
        return RLAB_ENOMEM;
    for (int32_t i = 0; i < n; i++) {
        const char *s = vals[i] ? vals[i] : "";
        while (*s) {
            size_t l = strcspn(s, "|");
            if (l) {
                int32_t v = rlab_vocab_add(&c->vocab, s, l);
                if (v < 0)
                    return RLAB_ENOMEM;
                if (m == cap) {
                    cap *= 2;
                    int32_t *p = rlab_realloc(c->seq, (size_t)cap * sizeof *p);
                    if (!p)
                        return RLAB_ENOMEM;
                    c->seq = p;
                }
                c->seq[m++] = v;
            }
            s += l;
            if (*s)
                s++;
        }
        c->off[i + 1] = m;
    }
    return RLAB_OK;
}

static const char *const synth_open[] = {
    "Hi! I am looking for a good %s movie.", "Hello, can you recommend a %s film?",
    "Hey, I'm in the mood for some %s.", "Hi there, I love %s movies."};
static const char *const synth_liked[] = {"I really enjoyed %s.", "I liked %s a lot.",
                                          "%s is one of my favourites.",
                                          "Have you seen %s? Loved it."};
static const char *const synth_resp[] = {"You should watch %s.", "Have you seen %s? It is great.",
                                         "I would suggest %s.", "Then try %s!"};

/* tpl with its one "%s" replaced by arg. */
static void fill1(char *out, size_t cap, const char *tpl, const char *arg)
{
    const char *at = strstr(tpl, "%s");
    if (!at) {
        snprintf(out, cap, "%s", tpl);
        return;
    }
    snprintf(out, cap, "%.*s%s%s", (int)(at - tpl), tpl, arg, at + 2);
}

int crs_prepare(const char *name, const crs_prepare_opts *o, rlab_dataset **out,
                crs_prepare_stats *st, rlab_err *err)
{
    *out = NULL;
    memset(st, 0, sizeof *st);
    rlab_dataset *ds = rlab_dataset_new(name, err);
    if (!ds)
        return err->code;
    int rc = RLAB_OK;
    char **titles = NULL, **years = NULL, **genres = NULL, **uctx = NULL, **uresp = NULL,
         **uent = NULL, **utpl = NULL;
    int32_t *linked = NULL;
    crs_insts all = {0};
    /* items: every movie of every corpus, in order of first appearance */
    const rlab_dialogues *corpora[64];
    int nc = 0;
    for (int i = 0; i < o->n_train && nc < 64; i++)
        corpora[nc++] = o->train[i];
    for (int i = 0; i < o->n_extra && nc < 64; i++)
        corpora[nc++] = o->extra[i];
    for (int c = 0; c < nc && !rc; c++)
        for (int32_t i = 0; i < corpora[c]->items.n; i++) {
            const char *id = rlab_vocab_name(&corpora[c]->items, i);
            if (rlab_vocab_add(&ds->items, id, strlen(id)) < 0)
                rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
        }
    const int32_t NI = ds->items.n;
    if (!rc && NI == 0)
        rc = rlab_errf(err, RLAB_EINVAL, "the dialogues mention no items");
    if (!rc && (!(titles = rlab_calloc((size_t)NI, sizeof *titles)) ||
                !(years = rlab_calloc((size_t)NI, sizeof *years)) ||
                !(genres = rlab_calloc((size_t)NI, sizeof *genres)) ||
                !(linked = rlab_malloc((size_t)NI * sizeof *linked))))
        rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
    /* titles (the first corpus naming an item wins) and the MovieLens link */
    for (int c = 0; c < nc && !rc; c++) {
        const rlab_dialogues *d = corpora[c];
        for (int32_t i = 0; i < d->items.n && !rc; i++) {
            const char *id = rlab_vocab_name(&d->items, i);
            int32_t j = rlab_vocab_find(&ds->items, id, strlen(id));
            if (j < 0 || titles[j])
                continue;
            const char *t = d->item_titles && d->item_titles[i] ? d->item_titles[i] : id;
            titles[j] = rlab_strdup(t);
            if (!titles[j])
                rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
        }
    }
    for (int32_t j = 0; j < NI && !rc; j++) {
        char norm[512], yb[16] = "";
        int y = 0;
        crs_title_norm(titles[j], norm, sizeof norm, &y);
        linked[j] = o->movies ? crs_movies_find(o->movies, norm, y) : -1;
        if (linked[j] < 0 && o->movies && y) /* ReDial years are sometimes off by one */
            for (int dy = -1; dy <= 1 && linked[j] < 0; dy += 2)
                linked[j] = crs_movies_find(o->movies, norm, y + dy);
        if (linked[j] >= 0) {
            st->linked++;
            if (!y)
                y = o->movies->m[linked[j]].year;
        }
        if (y)
            snprintf(yb, sizeof yb, "%ds", y / 10 * 10);
        years[j] = rlab_strdup(yb);
        genres[j] = rlab_strdup(linked[j] >= 0 ? o->movies->m[linked[j]].genres : "");
        if (!years[j] || !genres[j])
            rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
    }
    /* users: the training instances of the training corpora, then template dialogues */
    for (int c = 0; c < o->n_train && !rc; c++) {
        int64_t before = all.n;
        rc = crs_insts_build(o->train[c], &ds->items, &all, err);
        for (int64_t i = before; i < all.n; i++)
            all.v[i].conv += c << 20; /* distinct user names across corpora */
    }
    st->users_real = (int32_t)all.n;
    rlab_rng rng;
    rlab_rng_seed(&rng, o->seed);
    int32_t *with_genre = NULL, n_wg = 0;
    if (!rc && o->synth > 0 && o->movies) {
        with_genre = rlab_malloc((size_t)NI * sizeof *with_genre);
        if (!with_genre)
            rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
        for (int32_t j = 0; !rc && j < NI; j++)
            if (genres[j][0])
                with_genre[n_wg++] = j;
    }
    for (int s = 0; !rc && n_wg > 1 && s < o->synth; s++) {
        /* a seeker names a genre and a liked movie of it; the recommender answers with another
         * movie sharing the genre (the nearest in year among 8 tries) */
        int32_t a = with_genre[rlab_rng_below(&rng, (uint64_t)n_wg)];
        char g[64];
        size_t gl = strcspn(genres[a], "|");
        snprintf(g, sizeof g, "%.*s", (int)(gl < 63 ? gl : 63), genres[a]);
        int32_t b = -1;
        for (int tries = 0; tries < 8; tries++) {
            int32_t cand = with_genre[rlab_rng_below(&rng, (uint64_t)n_wg)];
            if (cand != a && strstr(genres[cand], g) &&
                (b < 0 ||
                 abs(atoi(years[cand]) - atoi(years[a])) < abs(atoi(years[b]) - atoi(years[a]))))
                b = cand;
        }
        if (b < 0)
            continue;
        char ctx[1024], resp[512], l1[256], l2[512];
        fill1(l1, sizeof l1, synth_open[rlab_rng_below(&rng, 4)], g);
        for (char *p = l1; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        fill1(l2, sizeof l2, synth_liked[rlab_rng_below(&rng, 4)], titles[a]);
        snprintf(ctx, sizeof ctx, "User: %s %s", l1, l2);
        fill1(resp, sizeof resp, synth_resp[rlab_rng_below(&rng, 4)], titles[b]);
        crs_inst x = {.conv = -1 - s, .turn = 1, .target = b, .n_ctx = 1};
        x.ctx = rlab_malloc(sizeof *x.ctx);
        x.context = rlab_strdup(ctx);
        x.response = rlab_strdup(resp);
        fill1(resp, sizeof resp, synth_resp[rlab_rng_below(&rng, 4)], "[MOVIE]");
        x.tmpl = rlab_strdup(resp);
        if (!x.ctx || !x.context || !x.response || !x.tmpl || insts_push(&all, &x)) {
            rlab_free(x.ctx);
            rlab_free(x.context);
            rlab_free(x.response);
            rlab_free(x.tmpl);
            rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
            break;
        }
        all.v[all.n - 1].ctx[0] = a;
        st->users_synth++;
    }
    rlab_free(with_genre);
    const int64_t NU = all.n;
    if (!rc && NU == 0)
        rc = rlab_errf(err, RLAB_EINVAL,
                       "no training instance: the training dialogues have no recommender turn "
                       "that mentions a movie");
    if (!rc && (!(uctx = rlab_calloc((size_t)NU, sizeof *uctx)) ||
                !(uresp = rlab_calloc((size_t)NU, sizeof *uresp)) ||
                !(uent = rlab_calloc((size_t)NU, sizeof *uent)) ||
                !(utpl = rlab_calloc((size_t)NU, sizeof *utpl))))
        rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
    for (int64_t u = 0; u < NU && !rc; u++) {
        const crs_inst *x = &all.v[u];
        char uname[64];
        if (x->conv < 0)
            snprintf(uname, sizeof uname, "synth%d", -x->conv - 1);
        else
            snprintf(uname, sizeof uname, "c%d.%d.t%d.%lld", x->conv >> 20, x->conv & 0xfffff,
                     x->turn, (long long)u);
        int32_t ui = rlab_vocab_add(&ds->users, uname, strlen(uname));
        if (ui < 0 || x->target < 0 ||
            rlab_inter_push(&ds->inter, ui, x->target, (int64_t)u, 1.0f, NULL))
            rc = x->target < 0 ? rlab_errf(err, RLAB_ESTATE, "instance without a catalogue item")
                               : rlab_errf(err, RLAB_ENOMEM, "out of memory");
        uctx[u] = x->context;
        uresp[u] = x->response;
        utpl[u] = x->tmpl;
        /* entity list as item ids, '|'-separated */
        size_t cap = 16 * (size_t)(x->n_ctx + 1), n = 0;
        uent[u] = rlab_malloc(cap);
        if (!uent[u]) {
            rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
            break;
        }
        uent[u][0] = 0;
        for (int32_t k = 0; k < x->n_ctx && n + 16 < cap; k++)
            n += (size_t)snprintf(uent[u] + n, cap - n, "%s%s", n ? "|" : "",
                                  rlab_vocab_name(&ds->items, x->ctx[k]));
    }
    ds->inter.flags |= RLAB_INTER_SYNTH_TS;
    /* feature tables */
    if (!rc) {
        ds->item_feats.n_entities = NI;
        rlab_feat_col *tc = rlab_feats_add(&ds->item_feats, "title", RLAB_FEAT_TEXT);
        if (!tc || !(tc->text = rlab_calloc((size_t)NI, sizeof *tc->text)))
            rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
        for (int32_t j = 0; j < NI && !rc; j++)
            if (add_text(tc, j, titles[j]))
                rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
        if (!rc && (seq_col(&ds->item_feats, "genres", NI, genres) ||
                    seq_col(&ds->item_feats, "decade", NI, years)))
            rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
        rlab_feat_col *mc =
            rc ? NULL : rlab_feats_add(&ds->item_feats, "ml_linked", RLAB_FEAT_FLOAT);
        if (!rc && (!mc || !(mc->num = rlab_malloc((size_t)NI * sizeof *mc->num))))
            rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
        for (int32_t j = 0; j < NI && !rc; j++)
            mc->num[j] = linked[j] >= 0 ? 1.0f : 0.0f;
    }
    if (!rc) {
        ds->user_feats.n_entities = (int32_t)NU;
        rlab_feat_col *cc = rlab_feats_add(&ds->user_feats, "context", RLAB_FEAT_TEXT);
        if (cc)
            cc->text = rlab_calloc((size_t)NU, sizeof *cc->text);
        rlab_feat_col *rr =
            cc && cc->text ? rlab_feats_add(&ds->user_feats, "response", RLAB_FEAT_TEXT) : NULL;
        if (rr)
            rr->text = rlab_calloc((size_t)NU, sizeof *rr->text);
        rlab_feat_col *tt =
            rr && rr->text ? rlab_feats_add(&ds->user_feats, "template", RLAB_FEAT_TEXT) : NULL;
        if (tt)
            tt->text = rlab_calloc((size_t)NU, sizeof *tt->text);
        cc = &ds->user_feats.cols[0]; /* new_col may have moved the array */
        rr = ds->user_feats.ncols > 1 ? &ds->user_feats.cols[1] : NULL;
        if (!rr || !tt || !cc->text || !rr->text || !tt->text)
            rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
        for (int64_t u = 0; u < NU && !rc; u++)
            if (add_text(cc, (int32_t)u, uctx[u]) || add_text(rr, (int32_t)u, uresp[u]) ||
                add_text(tt, (int32_t)u, utpl[u]))
                rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
        if (!rc && seq_col(&ds->user_feats, "mentioned", (int32_t)NU, uent))
            rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
        /* the conversation of each instance (corpus << 20 | index; -1 for templates): a
         * model holds out whole conversations for its epoch selection */
        rlab_feat_col *vc =
            rc ? NULL : rlab_feats_add(&ds->user_feats, "conversation", RLAB_FEAT_FLOAT);
        if (!rc && (!vc || !(vc->num = rlab_malloc((size_t)NU * sizeof *vc->num))))
            rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
        for (int64_t u = 0; u < NU && !rc; u++)
            vc->num[u] = all.v[u].conv < 0 ? -1.0f : (float)all.v[u].conv;
    }
    snprintf(ds->format, sizeof ds->format, "crs");
    snprintf(ds->source, sizeof ds->source, "crs.prepare");
    st->items = NI;
    for (int32_t j = 0; titles && j < NI; j++) {
        rlab_free(titles[j]);
        rlab_free(years[j]);
        rlab_free(genres[j]);
    }
    for (int64_t u = 0; uent && u < NU; u++)
        rlab_free(uent[u]);
    rlab_free(titles);
    rlab_free(years);
    rlab_free(genres);
    rlab_free(linked);
    rlab_free(uctx);
    rlab_free(uresp);
    rlab_free(uent);
    rlab_free(utpl);
    crs_insts_clear(&all);
    if (rc) {
        rlab_dataset_free(ds);
        return rc;
    }
    *out = ds;
    return RLAB_OK;
}

/* ---- the knowledge graph ------------------------------------------------------------------- */

void crs_graph_clear(crs_graph *g)
{
    rlab_free(g->rowptr);
    rlab_free(g->col);
    rlab_free(g->val);
    memset(g, 0, sizeof *g);
}

typedef struct edge {
    int32_t r, dst, src;
} edge;

static int edge_cmp(const void *a, const void *b)
{
    const edge *x = a, *y = b;
    if (x->r != y->r)
        return x->r < y->r ? -1 : 1;
    if (x->dst != y->dst)
        return x->dst < y->dst ? -1 : 1;
    return (x->src > y->src) - (x->src < y->src);
}

int crs_graph_build(const rlab_dataset *ds, const int32_t *pairs, int64_t n_pairs, crs_graph *g,
                    rlab_err *err)
{
    memset(g, 0, sizeof *g);
    const int32_t NI = ds->items.n;
    const rlab_feat_col *gc = rlab_feats_find(&ds->item_feats, "genres");
    const rlab_feat_col *dc = rlab_feats_find(&ds->item_feats, "decade");
    if (!gc || !dc || gc->kind != RLAB_FEAT_TOKEN_SEQ || dc->kind != RLAB_FEAT_TOKEN_SEQ)
        return rlab_errf(err, RLAB_EINVAL,
                         "dataset '%s' is not a CRS catalogue (no genres / decade item "
                         "features): make one with crs.prepare",
                         ds->name);
    const int32_t NG = gc->vocab.n, ND = dc->vocab.n, NE = NI + NG + ND;
    g->n_items = NI;
    g->n_ent = NE;
    /* the edge list (relation, dst, src): dst aggregates src */
    int64_t cap = 2 * (gc->off[NI] + dc->off[NI]) + n_pairs + 1, n = 0;
    edge *E = rlab_malloc((size_t)cap * sizeof *E);
    g->rowptr = rlab_calloc((size_t)CRS_NREL * ((size_t)NE + 1), sizeof *g->rowptr);
    if (!E || !g->rowptr) {
        rlab_free(E);
        crs_graph_clear(g);
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    }
    for (int32_t i = 0; i < NI; i++) {
        for (int64_t k = gc->off[i]; k < gc->off[i + 1]; k++) {
            const int32_t a = NI + gc->seq[k];
            E[n++] = (edge){CRS_REL_GENRE, i, a};
            E[n++] = (edge){CRS_REL_GENRE_INV, a, i};
        }
        for (int64_t k = dc->off[i]; k < dc->off[i + 1]; k++) {
            const int32_t a = NI + NG + dc->seq[k];
            E[n++] = (edge){CRS_REL_DECADE, i, a};
            E[n++] = (edge){CRS_REL_DECADE_INV, a, i};
        }
    }
    for (int64_t k = 0; k < n_pairs; k++)
        if (pairs[2 * k] >= 0 && pairs[2 * k] < NI && pairs[2 * k + 1] >= 0 &&
            pairs[2 * k + 1] < NI && pairs[2 * k] != pairs[2 * k + 1])
            E[n++] = (edge){CRS_REL_COMENTION, pairs[2 * k], pairs[2 * k + 1]};
    qsort(E, (size_t)n, sizeof *E, edge_cmp);
    { /* one edge per (relation, dst, src) */
        int64_t m = 0;
        for (int64_t k = 0; k < n; k++)
            if (m == 0 || edge_cmp(&E[m - 1], &E[k]) != 0)
                E[m++] = E[k];
        n = m;
    }
    g->nnz = n;
    g->col = rlab_malloc((size_t)(n ? n : 1) * sizeof *g->col);
    g->val = rlab_malloc((size_t)(n ? n : 1) * sizeof *g->val);
    if (!g->col || !g->val) {
        rlab_free(E);
        crs_graph_clear(g);
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    }
    /* relation r's entries follow relation r-1's in col and val; its row pointers start at
     * 0 (crs_graph_rel) */
    for (int64_t k = 0; k < n; k++) {
        g->rowptr[(size_t)E[k].r * ((size_t)NE + 1) + (size_t)E[k].dst + 1]++;
        g->col[k] = E[k].src;
    }
    int64_t acc = 0;
    for (int r = 0; r < CRS_NREL; r++) {
        int64_t *rp = g->rowptr + (size_t)r * ((size_t)NE + 1);
        for (int32_t v = 0; v < NE; v++)
            rp[v + 1] += rp[v];
        for (int32_t v = 0; v < NE; v++)
            for (int64_t k = rp[v]; k < rp[v + 1]; k++)
                g->val[acc + k] = 1.0f / (float)(rp[v + 1] - rp[v]);
        acc += rp[NE];
    }
    rlab_free(E);
    return RLAB_OK;
}
