/*
 * core/data/load_movielens: MovieLens 100K (u.data, u.item, u.user, u.genre) and 1M
 * (ratings.dat, movies.dat, users.dat). Text files of MovieLens are Latin-1: every byte is
 * a character, so only control bytes are refused, and titles are converted to UTF-8.
 */
#include "data/loaders.h"
#include "data/tokenizer.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* The 19 genres of ML-100K in flag order (u.genre), used when u.genre is absent. */
static const char *const ml100k_genres[19] = {
    "unknown",     "Action", "Adventure", "Animation", "Children's", "Comedy",  "Crime",
    "Documentary", "Drama",  "Fantasy",   "Film-Noir", "Horror",     "Musical", "Mystery",
    "Romance",     "Sci-Fi", "Thriller",  "War",       "Western"};

/* Refuse control bytes in a Latin-1 line. */
static int latin1_line(const rlab_reader *r, const char *s, size_t n, rlab_err *err)
{
    long bad = rlab_latin1_invalid_at(s, n);
    if (bad < 0)
        return RLAB_OK;
    return rlab_errf_at(err, RLAB_EFORMAT, r->name, r->line,
                        "control byte 0x%02x at column %ld, expected Latin-1 text",
                        (unsigned char)s[bad], bad + 1);
}

/* Refuse a second row for the same entity. */
static int once(rlab_i64map *seen, const rlab_reader *r, int32_t ent, const char *what,
                rlab_err *err)
{
    int64_t *p = rlab_i64map_at(seen, ent);
    if (!p)
        return rlab_errf_at(err, RLAB_ENOMEM, r->name, r->line, "out of memory");
    if (*p)
        return rlab_errf_at(err, RLAB_EFORMAT, r->name, r->line,
                            "duplicate %s (first on line %lld), expected one row per %s", what,
                            (long long)*p, what);
    *p = r->line;
    return RLAB_OK;
}

/* Status for failed rlab_fb_add_col results: a name clash (-2) is a format error (the same
 * file loaded twice into one dataset), anything else is out of memory. */
static int col_code(int a, int b, int c, int d)
{
    return (a == -2 || b == -2 || c == -2 || d == -2) ? RLAB_EFORMAT : RLAB_ENOMEM;
}

static int oom(const rlab_reader *r, rlab_err *err)
{
    return rlab_errf_at(err, RLAB_ENOMEM, r->name, r->line, "out of memory");
}

/* user SEP item SEP rating SEP ts  (u.data with tab, ratings.dat with "::") */
int rlab_ld_ml_ratings(rlab_reader *r, rlab_dataset *ds, const char *sep, rlab_err *err)
{
    const char *s;
    size_t n;
    int rc;
    rlab_idcache cu = {0}, ci = {0};
    ds->inter.flags |= RLAB_INTER_HAS_TS | RLAB_INTER_HAS_RATING;
    while ((rc = rlab_reader_next(r, &s, &n, err)) == RLAB_OK && s) {
        if (n == 0)
            continue;
        rlab_field f[5];
        size_t nf = rlab_split_fields(s, n, sep, f, 5);
        if (nf != 4) {
            rc = rlab_errf_at(err, RLAB_EFORMAT, r->name, r->line,
                              "expected 4 %s-separated fields (user item rating timestamp), "
                              "got %zu",
                              rlab_ld_sep_word(sep), nf);
            break;
        }
        int32_t u, i;
        if ((rc = rlab_ld_int_id(&ds->users, &cu, r, f[0], "user id", &u, err)) ||
            (rc = rlab_ld_int_id(&ds->items, &ci, r, f[1], "item id", &i, err)))
            break;
        float rating;
        int64_t ts;
        char q[48];
        if ((rc = rlab_parse_f32(f[2].p, f[2].n, &rating))) {
            rlab_ld_quote(q, f[2]);
            rc = rlab_errf_at(err, RLAB_EFORMAT, r->name, r->line,
                              "rating '%s' is %s, expected a number", q, rlab_parse_why(rc));
            break;
        }
        if ((rc = rlab_parse_i64(f[3].p, f[3].n, &ts))) {
            rlab_ld_quote(q, f[3]);
            rc = rlab_errf_at(err, RLAB_EFORMAT, r->name, r->line,
                              "timestamp '%s' is %s, expected a 64-bit integer", q,
                              rlab_parse_why(rc));
            break;
        }
        if (rlab_inter_push(&ds->inter, u, i, ts, rating, NULL)) {
            rc = oom(r, err);
            break;
        }
    }
    rlab_idcache_clear(&cu);
    rlab_idcache_clear(&ci);
    if (rc == RLAB_OK && ds->inter.n == 0)
        rc = rlab_errf_at(err, RLAB_EFORMAT, r->name, 0,
                          "empty file, expected `user item rating timestamp` lines");
    return rc;
}

/* id|title|release|video|url|flag*ngenres  (Latin-1) */
int rlab_ld_ml100k_item(rlab_reader *r, rlab_dataset *ds, const char *const *genres, int ngenres,
                        rlab_err *err)
{
    rlab_fb fb;
    rlab_fb_init(&fb, &ds->item_feats);
    rlab_i64map seen = {0};
    int c_title = rlab_fb_add_col(&fb, "title", RLAB_FEAT_TEXT);
    int c_rel = rlab_fb_add_col(&fb, "release", RLAB_FEAT_TOKEN);
    int c_gen = rlab_fb_add_col(&fb, "genres", RLAB_FEAT_TOKEN_SEQ);
    const char *s;
    size_t n;
    int rc = RLAB_OK, rows = 0;
    if (c_title < 0 || c_rel < 0 || c_gen < 0)
        rc = rlab_errf_at(err, col_code(c_title, c_rel, c_gen, 0), r->name, 0,
                          "cannot add item columns (out of memory or loaded twice)");
    size_t want = 5 + (size_t)ngenres;
    rlab_field *f = rc ? NULL : rlab_malloc((want + 1) * sizeof *f);
    if (!rc && !f)
        rc = oom(r, err);
    while (rc == RLAB_OK && (rc = rlab_reader_next(r, &s, &n, err)) == RLAB_OK && s) {
        if (n == 0)
            continue;
        if ((rc = latin1_line(r, s, n, err)))
            break;
        size_t nf = rlab_split_fields(s, n, "|", f, want + 1);
        if (nf != want) {
            rc = rlab_errf_at(err, RLAB_EFORMAT, r->name, r->line,
                              "expected %zu '|'-separated fields (id title release video url "
                              "and %d genre flags), got %zu",
                              want, ngenres, nf);
            break;
        }
        int32_t it;
        if ((rc = rlab_ld_int_id(&ds->items, NULL, r, f[0], "item id", &it, err)) ||
            (rc = once(&seen, r, it, "item id", err)))
            break;
        rows++;
        char *title = rlab_latin1_to_utf8(f[1].p, f[1].n);
        if (!title || rlab_fb_set_text(&fb, c_title, it, title) ||
            rlab_fb_set_token(&fb, c_rel, it, f[2].p, f[2].n)) {
            rc = oom(r, err);
            break;
        }
        for (int g = 0; g < ngenres && !rc; g++) {
            rlab_field x = f[5 + g];
            if (x.n != 1 || (x.p[0] != '0' && x.p[0] != '1')) {
                char q[48];
                rlab_ld_quote(q, x);
                rc = rlab_errf_at(err, RLAB_EFORMAT, r->name, r->line,
                                  "genre flag %d is '%s', expected 0 or 1", g + 1, q);
            } else if (x.p[0] == '1' &&
                       rlab_fb_add_seq(&fb, c_gen, it, genres[g], strlen(genres[g]))) {
                rc = oom(r, err);
            }
        }
    }
    rlab_free(f);
    rlab_i64map_clear(&seen);
    if (rc == RLAB_OK && rows == 0)
        rc = rlab_errf_at(err, RLAB_EFORMAT, r->name, 0, "empty file, expected item rows");
    if (rc) {
        rlab_fb_clear(&fb);
        return rc;
    }
    if (rlab_fb_finish(&fb, rlab_vocab_size(&ds->items)))
        return oom(r, err);
    return RLAB_OK;
}

/* Users of ML-100K (id|age|gender|occupation|zip) and ML-1M (id::gender::age::occ::zip). */
static int ml_users(rlab_reader *r, rlab_dataset *ds, const char *sep, int age_at, rlab_err *err)
{
    rlab_fb fb;
    rlab_fb_init(&fb, &ds->user_feats);
    rlab_i64map seen = {0};
    int c_age = rlab_fb_add_col(&fb, "age", RLAB_FEAT_FLOAT);
    int c_gender = rlab_fb_add_col(&fb, "gender", RLAB_FEAT_TOKEN);
    int c_occ = rlab_fb_add_col(&fb, "occupation", RLAB_FEAT_TOKEN);
    int c_zip = rlab_fb_add_col(&fb, "zip", RLAB_FEAT_TOKEN);
    int gender_at = age_at == 1 ? 2 : 1;
    const char *s;
    size_t n;
    int rc = RLAB_OK, rows = 0;
    if (c_age < 0 || c_gender < 0 || c_occ < 0 || c_zip < 0)
        rc = rlab_errf_at(err, col_code(c_age, c_gender, c_occ, c_zip), r->name, 0,
                          "cannot add user columns (out of memory or loaded twice)");
    while (rc == RLAB_OK && (rc = rlab_reader_next(r, &s, &n, err)) == RLAB_OK && s) {
        if (n == 0)
            continue;
        if ((rc = latin1_line(r, s, n, err)))
            break;
        rlab_field f[6];
        size_t nf = rlab_split_fields(s, n, sep, f, 6);
        if (nf != 5) {
            rc = rlab_errf_at(err, RLAB_EFORMAT, r->name, r->line,
                              age_at == 1 ? "expected 5 %s-separated fields (id age gender "
                                            "occupation zip), got %zu"
                                          : "expected 5 %s-separated fields (id gender age "
                                            "occupation zip), got %zu",
                              rlab_ld_sep_word(sep), nf);
            break;
        }
        int32_t u, age;
        if ((rc = rlab_ld_int_id(&ds->users, NULL, r, f[0], "user id", &u, err)) ||
            (rc = once(&seen, r, u, "user id", err)))
            break;
        rows++;
        if ((rc = rlab_parse_i32(f[age_at].p, f[age_at].n, &age))) {
            char q[48];
            rlab_ld_quote(q, f[age_at]);
            rc = rlab_errf_at(err, RLAB_EFORMAT, r->name, r->line,
                              "age '%s' is %s, expected an integer", q, rlab_parse_why(rc));
            break;
        }
        if (rlab_fb_set_float(&fb, c_age, u, (float)age) ||
            rlab_fb_set_token(&fb, c_gender, u, f[gender_at].p, f[gender_at].n) ||
            rlab_fb_set_token(&fb, c_occ, u, f[3].p, f[3].n) ||
            rlab_fb_set_token(&fb, c_zip, u, f[4].p, f[4].n)) {
            rc = oom(r, err);
            break;
        }
    }
    rlab_i64map_clear(&seen);
    if (rc == RLAB_OK && rows == 0)
        rc = rlab_errf_at(err, RLAB_EFORMAT, r->name, 0, "empty file, expected user rows");
    if (rc) {
        rlab_fb_clear(&fb);
        return rc;
    }
    if (rlab_fb_finish(&fb, rlab_vocab_size(&ds->users)))
        return oom(r, err);
    return RLAB_OK;
}

int rlab_ld_ml100k_user(rlab_reader *r, rlab_dataset *ds, rlab_err *err)
{
    return ml_users(r, ds, "|", 1, err);
}

int rlab_ld_ml1m_users(rlab_reader *r, rlab_dataset *ds, rlab_err *err)
{
    return ml_users(r, ds, "::", 2, err);
}

/* id SEP title SEP genre|genre  (Latin-1) */
int rlab_ld_ml1m_movies(rlab_reader *r, rlab_dataset *ds, const char *sep, rlab_err *err)
{
    rlab_fb fb;
    rlab_fb_init(&fb, &ds->item_feats);
    rlab_i64map seen = {0};
    int c_title = rlab_fb_add_col(&fb, "title", RLAB_FEAT_TEXT);
    int c_gen = rlab_fb_add_col(&fb, "genres", RLAB_FEAT_TOKEN_SEQ);
    const char *s;
    size_t n;
    int rc = RLAB_OK, rows = 0;
    if (c_title < 0 || c_gen < 0)
        rc = rlab_errf_at(err, col_code(c_title, c_gen, 0, 0), r->name, 0,
                          "cannot add item columns (out of memory or loaded twice)");
    while (rc == RLAB_OK && (rc = rlab_reader_next(r, &s, &n, err)) == RLAB_OK && s) {
        if (n == 0)
            continue;
        if ((rc = latin1_line(r, s, n, err)))
            break;
        rlab_field f[4];
        size_t nf = rlab_split_fields(s, n, sep, f, 4);
        if (nf != 3) {
            rc = rlab_errf_at(err, RLAB_EFORMAT, r->name, r->line,
                              "expected 3 %s-separated fields (id title genres), got %zu",
                              rlab_ld_sep_word(sep), nf);
            break;
        }
        int32_t it;
        if ((rc = rlab_ld_int_id(&ds->items, NULL, r, f[0], "movie id", &it, err)) ||
            (rc = once(&seen, r, it, "movie id", err)))
            break;
        rows++;
        char *title = rlab_latin1_to_utf8(f[1].p, f[1].n);
        if (!title || rlab_fb_set_text(&fb, c_title, it, title)) {
            rc = oom(r, err);
            break;
        }
        /* genres: '|' separated names; each converted to UTF-8 (they are ASCII in practice) */
        const char *g = f[2].p, *end = f[2].p + f[2].n;
        while (g < end && !rc) {
            const char *bar = memchr(g, '|', (size_t)(end - g));
            const char *e = bar ? bar : end;
            char *name = rlab_latin1_to_utf8(g, (size_t)(e - g));
            if (!name || rlab_fb_add_seq(&fb, c_gen, it, name, strlen(name)))
                rc = oom(r, err);
            rlab_free(name);
            g = bar ? bar + 1 : end;
        }
    }
    rlab_i64map_clear(&seen);
    if (rc == RLAB_OK && rows == 0)
        rc = rlab_errf_at(err, RLAB_EFORMAT, r->name, 0, "empty file, expected movie rows");
    if (rc) {
        rlab_fb_clear(&fb);
        return rc;
    }
    if (rlab_fb_finish(&fb, rlab_vocab_size(&ds->items)))
        return oom(r, err);
    return RLAB_OK;
}

/* ---- folder loaders -------------------------------------------------------------------- */
static int is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Run fn over the file dir/base (with the reader flags), appending it to ds->source. */
typedef int (*sep_fn)(rlab_reader *, rlab_dataset *, const char *, rlab_err *);

static int run_file(const char *path, rlab_dataset *ds, rlab_ld_fn fn, sep_fn sfn, const char *sep,
                    rlab_err *err)
{
    rlab_reader r;
    int rc = rlab_reader_open(&r, path, 0, err);
    if (rc == RLAB_OK)
        rc = fn ? fn(&r, ds, err) : sfn(&r, ds, sep, err);
    rlab_reader_close(&r);
    if (rc == RLAB_OK)
        rlab_ld_set(ds, NULL, path);
    return rc;
}

/* u.genre: name|id lines, ids 0..n-1 in order. */
static int read_genres(const char *path, char ***out, int *nout, rlab_err *err)
{
    rlab_reader r;
    int rc = rlab_reader_open(&r, path, 0, err);
    char **names = NULL;
    int n = 0;
    const char *s;
    size_t len;
    while (rc == RLAB_OK && (rc = rlab_reader_next(&r, &s, &len, err)) == RLAB_OK && s) {
        if (len == 0)
            continue;
        rlab_field f[3];
        int32_t id;
        size_t nf = rlab_split_fields(s, len, "|", f, 3);
        if (nf != 2 || f[0].n == 0 || rlab_parse_i32(f[1].p, f[1].n, &id) || id != n) {
            rc = rlab_errf_at(err, RLAB_EFORMAT, r.name, r.line,
                              "expected `name|%d` (genre ids in order)", n);
            break;
        }
        char **nn = n < 64 ? rlab_realloc(names, (size_t)(n + 1) * sizeof *nn) : NULL;
        char *name = nn ? rlab_latin1_to_utf8(f[0].p, f[0].n) : NULL;
        if (nn)
            names = nn;
        if (!name) {
            rc = n < 64 ? oom(&r, err)
                        : rlab_errf_at(err, RLAB_EFORMAT, r.name, r.line,
                                       "more than 64 genres, expected at most 64");
            break;
        }
        names[n++] = name;
    }
    rlab_reader_close(&r);
    if (rc == RLAB_OK && n == 0)
        rc = rlab_errf_at(err, RLAB_EFORMAT, path, 0, "empty file, expected `name|id` lines");
    if (rc) {
        for (int i = 0; i < n; i++)
            rlab_free(names[i]);
        rlab_free(names);
        return rc;
    }
    *out = names;
    *nout = n;
    return RLAB_OK;
}

static int ml100k_dir(const char *dir, const char *data, rlab_dataset *ds, rlab_err *err)
{
    char p[1024];
    int rc = run_file(data, ds, NULL, rlab_ld_ml_ratings, "\t", err);
    if (rc)
        return rc;
    char **owned = NULL;
    const char *genres[64];
    int ngenres = 19;
    for (int g = 0; g < 19; g++)
        genres[g] = ml100k_genres[g];
    (void)rlab_ld_join(p, sizeof p, dir, "u.genre");
    if (is_file(p)) {
        if ((rc = read_genres(p, &owned, &ngenres, err)))
            return rc;
        for (int g = 0; g < ngenres; g++)
            genres[g] = owned[g];
    }
    (void)rlab_ld_join(p, sizeof p, dir, "u.item");
    if (is_file(p)) {
        rlab_reader r;
        rc = rlab_reader_open(&r, p, 0, err);
        if (rc == RLAB_OK)
            rc = rlab_ld_ml100k_item(&r, ds, genres, ngenres, err);
        rlab_reader_close(&r);
        if (rc == RLAB_OK)
            rlab_ld_set(ds, NULL, p);
    }
    if (owned) {
        for (int i = 0; i < ngenres; i++)
            rlab_free(owned[i]);
        rlab_free(owned);
    }
    if (rc)
        return rc;
    (void)rlab_ld_join(p, sizeof p, dir, "u.user");
    if (is_file(p))
        rc = run_file(p, ds, rlab_ld_ml100k_user, NULL, NULL, err);
    return rc;
}

int rlab_load_ml100k(const char *path, const char *name, rlab_dataset **out, rlab_err *err)
{
    *out = NULL;
    char dir[1024], data[1100];
    if (is_dir(path)) {
        snprintf(dir, sizeof dir, "%s", path);
        (void)rlab_ld_join(data, sizeof data, path, "u.data");
    } else {
        snprintf(data, sizeof data, "%s", path);
        const char *slash = strrchr(path, '/');
        if (slash)
            snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
        else
            snprintf(dir, sizeof dir, ".");
    }
    char def[RLAB_LD_NAME_BUF];
    if (!name) {
        const char *base = strrchr(data, '/') ? strrchr(data, '/') + 1 : data;
        size_t bl = strlen(base);
        if (is_dir(path) || strcmp(base, "u.data") == 0) /* the folder's own ratings file */
            rlab_ld_default_name(is_dir(path) ? path : dir, def, sizeof def);
        else if (bl > 5 && strcmp(base + bl - 5, ".data") == 0) /* a.data -> "a" */
            snprintf(def, sizeof def, "%.*s", (int)(bl - 5 < sizeof def ? bl - 5 : sizeof def - 1),
                     base);
        else /* u1.base and u1.test of one folder must not both be "u1" */
            snprintf(def, sizeof def, "%.*s", (int)(sizeof def - 1), base);
        /* (a name cut to the buffer is still far over 63 bytes: refused below) */
        name = def;
    }
    rlab_dataset *ds = NULL;
    int rc = rlab_ld_new_dataset(name, name == def, &ds, err);
    if (rc)
        return rc;
    rc = ml100k_dir(dir, data, ds, err);
    if (rc) {
        rlab_dataset_free(ds);
        return rc;
    }
    rlab_ld_set(ds, "ml-100k", NULL);
    *out = ds;
    return RLAB_OK;
}

int rlab_load_ml1m(const char *dir, const rlab_ml1m_opts *opts, const char *name,
                   rlab_dataset **out, rlab_err *err)
{
    *out = NULL;
    if (!is_dir(dir))
        return rlab_errf_at(err, RLAB_EIO, dir, 0, "not a folder, expected the ML-1M folder");
    char def[RLAB_LD_NAME_BUF];
    if (!name) {
        rlab_ld_default_name(dir, def, sizeof def);
        name = def;
    }
    rlab_dataset *ds = NULL;
    int rc = rlab_ld_new_dataset(name, name == def, &ds, err);
    if (rc)
        return rc;
    char p[1100];
    int found = 0;
    (void)rlab_ld_join(p, sizeof p, dir, "ratings.dat");
    if (is_file(p)) {
        found++;
        rc = run_file(p, ds, NULL, rlab_ld_ml_ratings, "::", err);
    }
    static const char *const movie_files[] = {"movies.dat", "movies_semicolon.dat"};
    for (int k = 0; k < 2 && rc == RLAB_OK; k++) {
        (void)rlab_ld_join(p, sizeof p, dir, movie_files[k]);
        if (!is_file(p))
            continue;
        const char *sep = opts && opts->movies_sep              ? opts->movies_sep
                          : strstr(movie_files[k], "semicolon") ? ";"
                                                                : "::";
        found++;
        rc = run_file(p, ds, NULL, rlab_ld_ml1m_movies, sep, err);
        break; /* one movies file only */
    }
    (void)rlab_ld_join(p, sizeof p, dir, "users.dat");
    if (rc == RLAB_OK && is_file(p)) {
        found++;
        rc = run_file(p, ds, rlab_ld_ml1m_users, NULL, NULL, err);
    }
    if (rc == RLAB_OK && !found)
        rc = rlab_errf_at(err, RLAB_EIO, dir, 0,
                          "no ratings.dat, movies.dat or users.dat, expected ML-1M files");
    if (rc) {
        rlab_dataset_free(ds);
        return rc;
    }
    if (ds->inter.n > 0)
        ds->inter.flags |= RLAB_INTER_HAS_TS | RLAB_INTER_HAS_RATING;
    rlab_ld_set(ds, "ml-1m", NULL);
    *out = ds;
    return RLAB_OK;
}
