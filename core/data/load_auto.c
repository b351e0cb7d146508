/*
 * core/data/load_auto: the format dispatcher (by folder content, file name, extension, then
 * by sniffing the first lines) and the in-memory entry point used by the fuzz targets.
 */
#include "data/loaders.h"
#include "data/tabular.h"
#include "data/tokenizer.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static int has(const char *dir, const char *base)
{
    char p[1100];
    struct stat st;
    return rlab_ld_join(p, sizeof p, dir, base) == RLAB_OK && stat(p, &st) == 0 &&
           S_ISREG(st.st_mode);
}

static int ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

static const char *base_of(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static int dir_has_inter(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int found = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        found |= ends_with(de->d_name, ".inter");
    closedir(d);
    return found;
}

/* Column guesses from header names (case-sensitive common spellings). */
static int is_one_of(rlab_field f, const char *const *names)
{
    for (; *names; names++)
        if (strlen(*names) == f.n && memcmp(*names, f.p, f.n) == 0)
            return 1;
    return 0;
}

static void guess_columns(const char *line, size_t n, rlab_csv_opts *o)
{
    static const char *const users[] = {"user", "user_id", "userId", "uid", "UserID", NULL};
    static const char *const items[] = {"item",    "item_id",  "itemId",  "iid",
                                        "movieId", "movie_id", "MovieID", NULL};
    static const char *const tss[] = {"timestamp", "ts", "time", "Timestamp", NULL};
    static const char *const rats[] = {"rating", "Rating", "score", NULL};
    rlab_field f[256];
    size_t nf = rlab_split_fields(line, n, o->sep, f, 256);
    if (nf > 256)
        nf = 256;
    for (size_t k = 0; k < nf; k++) {
        if (f[k].n >= 2 && f[k].p[0] == '"' && f[k].p[f[k].n - 1] == '"') {
            f[k].p++;
            f[k].n -= 2;
        }
        if (is_one_of(f[k], users))
            o->user_col = (int)k;
        else if (is_one_of(f[k], items))
            o->item_col = (int)k;
        else if (is_one_of(f[k], tss))
            o->ts_col = (int)k;
        else if (is_one_of(f[k], rats))
            o->rating_col = (int)k;
    }
}

#define SNIFF_LINES 64

/* FNV-1a of a field: tells whether a user id appears on two lines. */
static uint64_t field_hash(rlab_field f)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < f.n; i++)
        h = (h ^ (unsigned char)f.p[i]) * 1099511628211ull;
    return h;
}

/* Sniff a text file from its first SNIFF_LINES non-blank lines: "ml-100k" when every line
 * is tab-separated with 4 fields (a u.data-like file), "sasrec" when every line has two
 * fields, else "seqline" (one user and its items per line). A file that is mostly one of
 * the first two shapes is not guessed as seqline: that would read a u.data file with one
 * malformed line as one sequence per line (a user whose "items" include a rating and a
 * timestamp). Seqline has one line per user, so a user id on two lines, or mostly
 * timestamp-like 4th fields, mark an interaction-per-line file, and the first line out of
 * shape is refused (RLAB_EFORMAT naming file and line, and the format it looks like). */
static int sniff(rlab_reader *r, const char **format, rlab_err *err)
{
    const char *s;
    size_t n;
    int lines = 0, two = 0, tab4 = 0, stamped = 0, repeats = 0;
    int nf_at[SNIFF_LINES], ntab_at[SNIFF_LINES], line_at[SNIFF_LINES];
    uint64_t user_at[SNIFF_LINES];
    while (lines < SNIFF_LINES && rlab_reader_next(r, &s, &n, NULL) == RLAB_OK && s) {
        rlab_field f[4];
        size_t nf = rlab_split_fields(s, n, NULL, f, 4);
        if (nf == 0)
            continue;
        uint64_t u = field_hash(f[0]);
        for (int k = 0; k < lines && !repeats; k++)
            repeats = user_at[k] == u;
        size_t ntab = rlab_split_fields(s, n, "\t", f, 4);
        int64_t ts;
        /* a unix time after 1973 in the 4th column: u.data's timestamp, not an item id */
        stamped += ntab == 4 && rlab_parse_i64(f[3].p, f[3].n, &ts) == RLAB_OK && ts >= 100000000;
        nf_at[lines] = (int)nf;
        ntab_at[lines] = (int)ntab;
        line_at[lines] = r->line;
        user_at[lines] = u;
        lines++;
        two += nf == 2;
        tab4 += ntab == 4;
    }
    *format = "seqline";
    if (lines > 0 && tab4 == lines) {
        *format = "ml-100k";
    } else if (lines > 0 && two == lines) {
        *format = "sasrec";
    } else if (2 * tab4 > lines && (repeats || 2 * stamped > tab4)) {
        int k = 0;
        while (ntab_at[k] == 4)
            k++;
        return rlab_errf_at(err, RLAB_EFORMAT, r->name, line_at[k],
                            "%d tab-separated fields, expected 4: %d of the first %d lines are "
                            "u.data-style (user item rating timestamp), so this looks like a "
                            "u.data file with a malformed line; fix the line, or pass a format "
                            "(ml-100k, seqline, csv...) instead of letting it be guessed",
                            ntab_at[k], tab4, lines);
    } else if (2 * two > lines && repeats) {
        int k = 0;
        while (nf_at[k] == 2)
            k++;
        return rlab_errf_at(err, RLAB_EFORMAT, r->name, line_at[k],
                            "%d fields, expected 2: %d of the first %d lines are SASRec-style "
                            "(user item, a user on several lines), so this looks like SASRec text "
                            "with a malformed line; fix the line, or pass a format (sasrec, "
                            "seqline...) instead of letting it be guessed",
                            nf_at[k], two, lines);
    }
    return RLAB_OK;
}

/* ---- dialogue-shaped files ------------------------------------------------------------- */

static int field_is(rlab_field f, const char *s)
{
    return f.n == strlen(s) && memcmp(f.p, s, f.n) == 0;
}

static int has_text(const char *s, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(s + i, needle, k) == 0)
            return 1;
    return 0;
}

const char *rlab_data_dialogue_shape(const char *path)
{
    rlab_reader r;
    rlab_err e = {0};
    if (!path || rlab_reader_open(&r, path, 0, &e) != RLAB_OK)
        return NULL;
    const char *s = NULL, *shape = NULL;
    size_t n = 0;
    while (rlab_reader_next(&r, &s, &n, NULL) == RLAB_OK && s && n == 0) {
    }
    if (s && n > 0 && s[0] == '{') {
        /* one JSON object per line holding a conversation: ReDial's keys */
        if (has_text(s, n, "\"conversationId\"") && has_text(s, n, "\"messages\""))
            shape = "redial";
    } else if (s && n > 0) {
        /* a header naming a dialogue id, a speaker and the utterance: INSPIRED's columns */
        rlab_field f[64];
        size_t nf = rlab_split_fields(s, n, "\t", f, 64);
        int id = 0, sp = 0, text = 0;
        for (size_t k = 0; k < nf && k < 64; k++) {
            id |= field_is(f[k], "dialog_id");
            sp |= field_is(f[k], "speaker");
            text |= field_is(f[k], "text");
        }
        if (id && sp && text)
            shape = "inspired";
    }
    rlab_reader_close(&r);
    return shape;
}

/* The refusal of an interaction loader given a dialogue file: what it is and how to load it. */
static int refuse_dialogue(const char *path, const char *shape, rlab_err *err)
{
    int redial = strcmp(shape, "redial") == 0;
    return rlab_errf_at(err, RLAB_EFORMAT, path, 0,
                        "%s, not interactions: load it as a dialogue dataset (shell: load PATH "
                        "format=%s; Lua: reclab.datasets.load(path, {format = \"%s\"}))",
                        redial ? "ReDial dialogues (JSON lines with conversationId and messages)"
                               : "INSPIRED dialogues (a TSV with dialog_id, speaker and text "
                                 "columns: dialogue and utterance ids, not users and items)",
                        shape, shape);
}

static int load_csv_guess(const char *path, const char *sep, const char *name, rlab_dataset **out,
                          rlab_err *err)
{
    rlab_csv_opts o;
    rlab_csv_opts_init(&o);
    o.sep = sep;
    rlab_reader r;
    int rc = rlab_reader_open(&r, path, RLAB_READ_UTF8, err);
    const char *s = NULL;
    size_t n = 0;
    while (rc == RLAB_OK && (rc = rlab_reader_next(&r, &s, &n, err)) == RLAB_OK && s && n == 0) {
    }
    if (rc == RLAB_OK && s)
        guess_columns(s, n, &o);
    rlab_reader_close(&r);
    if (rc)
        return rc;
    return rlab_load_csv(path, &o, name, out, err);
}

/* A tabular preset's file (data/tabular.h) as a dataset with samples: no interactions, the
 * table in ds->tab with the default parts (valid 0.1, test 0.2; by time when it has times,
 * else at random with seed 0). */
static int load_tabular(const char *path, const char *preset, const char *name, rlab_dataset **out,
                        rlab_err *err)
{
    rlab_tabular *t = NULL;
    int rc = rlab_tabular_load_preset(preset, path, name, &t, err);
    if (rc == RLAB_OK)
        rc = rlab_tabular_set_parts(t, 0.1, 0.2, -1, 0, err);
    rlab_dataset *ds = rc ? NULL : rlab_dataset_new(t->name, err);
    if (!ds) {
        rlab_tabular_free(t);
        return rc ? rc : err->code;
    }
    snprintf(t->preset, sizeof t->preset, "%s", preset);
    ds->tab = t;
    snprintf(ds->source, sizeof ds->source, "%s", path);
    snprintf(ds->format, sizeof ds->format, "%s", preset);
    *out = ds;
    return RLAB_OK;
}

/* Format "ratings-mt": the rated interactions of path (any interaction format, guessed) as
 * multi-task samples (rlab_tabular_from_ratings with 1 unrated item per rating, seed 1, like
 * = rating >= 4, the last 20 ratings as the history), with the default parts (by time). */
static int load_ratings_mt(const char *path, const char *name, rlab_dataset **out, rlab_err *err)
{
    rlab_dataset *src = NULL;
    int rc = rlab_data_load(path, NULL, name, &src, err);
    if (rc)
        return rc;
    rlab_tab_mt_opts o;
    rlab_tab_mt_opts_init(&o);
    o.seed = 1;
    rlab_tabular *t = NULL;
    rc = rlab_tabular_from_ratings(src, &o, &t, err);
    if (rc == RLAB_OK)
        rc = rlab_tabular_set_parts(t, 0.1, 0.2, -1, 0, err);
    rlab_dataset *ds = rc ? NULL : rlab_dataset_new(src->name, err);
    if (!ds) {
        rlab_tabular_free(t);
        rlab_dataset_free(src);
        return rc ? rc : err->code;
    }
    snprintf(t->name, sizeof t->name, "%s", src->name);
    snprintf(ds->source, sizeof ds->source, "%s", src->source);
    snprintf(ds->format, sizeof ds->format, "ratings-mt");
    ds->tab = t;
    rlab_dataset_free(src);
    *out = ds;
    return RLAB_OK;
}

int rlab_data_load(const char *path, const char *format, const char *name, rlab_dataset **out,
                   rlab_err *err)
{
    *out = NULL;
    if (!path)
        return rlab_errf(err, RLAB_EINVAL, "data.load: no path");
    struct stat st;
    if (stat(path, &st) != 0)
        return rlab_errf_at(err, RLAB_EIO, path, 0, "cannot open: %s", strerror(errno));
    int dir = S_ISDIR(st.st_mode);
    const char *b = base_of(path);
    if (format && (strcmp(format, "redial") == 0 || strcmp(format, "inspired") == 0))
        return rlab_errf_at(err, RLAB_EINVAL, path, 0,
                            "'%s' is a dialogue format: rlab_data_load reads interactions; "
                            "dialogues load with rlab_dialogues_load (or the host's "
                            "rlab_host_load_dataset, which keeps them in the session)",
                            format);
    /* a dialogue file is never interaction data, whatever the format asked for: reading
     * dialogue and utterance ids as users and items would be a silent wrong answer */
    const char *shape = dir ? NULL : rlab_data_dialogue_shape(path);
    if (shape)
        return refuse_dialogue(path, shape, err);
    if (!format) {
        if (dir) {
            if (has(path, "u.data"))
                format = "ml-100k";
            else if (has(path, "ratings.dat") || has(path, "movies.dat") ||
                     has(path, "movies_semicolon.dat") || has(path, "users.dat"))
                format = "ml-1m";
            else if (dir_has_inter(path))
                format = "recbole";
            else
                return rlab_errf_at(err, RLAB_ENOTFOUND, path, 0,
                                    "no known dataset files, expected u.data, ratings.dat, "
                                    "movies.dat, users.dat or a .inter file");
        } else if (strcmp(b, "u.data") == 0) {
            format = "ml-100k";
        } else if (strcmp(b, "ratings.dat") == 0 || strncmp(b, "movies", 6) == 0 ||
                   strcmp(b, "users.dat") == 0) {
            format = "ml-1m";
        } else if (ends_with(b, ".inter")) {
            format = "recbole";
        } else if (ends_with(b, ".csv")) {
            format = "csv";
        } else if (ends_with(b, ".tsv")) {
            format = "tsv";
        } else if (ends_with(b, ".jsonl") || ends_with(b, ".json")) {
            return rlab_errf_at(err, RLAB_EFORMAT, path, 0,
                                "JSON is not an interaction format reclab reads (dialogues in "
                                "ReDial JSON lines load with format=redial), expected u.data, "
                                "ratings.dat, .inter, .csv, .tsv or SASRec text");
        } else {
            rlab_reader r;
            int rc = rlab_reader_open(&r, path, 0, err);
            if (rc == RLAB_OK)
                rc = sniff(&r, &format, err);
            rlab_reader_close(&r);
            if (rc)
                return rc;
        }
    }
    rlab_tab_spec tsp;
    if (rlab_tab_preset_spec(format, &tsp, NULL) == RLAB_OK) /* CTR / multi-task samples */
        return load_tabular(path, format, name, out, err);
    if (strcmp(format, "ratings-mt") == 0) /* rated interactions as click / like samples */
        return load_ratings_mt(path, name, out, err);
    if (strcmp(format, "recbole") == 0)
        return rlab_load_recbole(path, name, out, err);
    if (strcmp(format, "ml-100k") == 0)
        return rlab_load_ml100k(path, name, out, err);
    if (strcmp(format, "sasrec") == 0)
        return rlab_load_sasrec(path, name, out, err);
    if (strcmp(format, "seqline") == 0)
        return rlab_load_seqline(path, name, out, err);
    if (strcmp(format, "csv") == 0)
        return load_csv_guess(path, ",", name, out, err);
    if (strcmp(format, "tsv") == 0)
        return load_csv_guess(path, "\t", name, out, err);
    if (strcmp(format, "ml-1m") == 0) {
        if (dir)
            return rlab_load_ml1m(path, NULL, name, out, err);
        char d[1024];
        snprintf(d, sizeof d, "%.*s", b > path ? (int)(b - path - 1) : 1, b > path ? path : ".");
        return rlab_load_ml1m(d, NULL, name, out, err);
    }
    return rlab_errf(err, RLAB_EINVAL,
                     "unknown data format '%s', expected recbole, ml-100k, ml-1m, sasrec, "
                     "seqline, csv or tsv",
                     format);
}

/* ---- in-memory entry point ----------------------------------------------------------- */
static int buf_ml100k_item(rlab_reader *r, rlab_dataset *ds, rlab_err *err)
{
    static const char *const g[19] = {
        "unknown",     "Action", "Adventure", "Animation", "Children's", "Comedy",  "Crime",
        "Documentary", "Drama",  "Fantasy",   "Film-Noir", "Horror",     "Musical", "Mystery",
        "Romance",     "Sci-Fi", "Thriller",  "War",       "Western"};
    return rlab_ld_ml100k_item(r, ds, g, 19, err);
}
static int buf_ml100k_data(rlab_reader *r, rlab_dataset *ds, rlab_err *err)
{
    return rlab_ld_ml_ratings(r, ds, "\t", err);
}
static int buf_ml1m_ratings(rlab_reader *r, rlab_dataset *ds, rlab_err *err)
{
    return rlab_ld_ml_ratings(r, ds, "::", err);
}
static int buf_ml1m_movies(rlab_reader *r, rlab_dataset *ds, rlab_err *err)
{
    return rlab_ld_ml1m_movies(r, ds, "::", err);
}
static int buf_ml1m_movies_semi(rlab_reader *r, rlab_dataset *ds, rlab_err *err)
{
    return rlab_ld_ml1m_movies(r, ds, ";", err);
}
static int buf_rb_item(rlab_reader *r, rlab_dataset *ds, rlab_err *err)
{
    return rlab_ld_recbole_feats(r, ds, 0, err);
}
static int buf_rb_user(rlab_reader *r, rlab_dataset *ds, rlab_err *err)
{
    return rlab_ld_recbole_feats(r, ds, 1, err);
}
static int buf_csv(rlab_reader *r, rlab_dataset *ds, rlab_err *err)
{
    rlab_csv_opts o;
    rlab_csv_opts_init(&o);
    /* guess columns from the first line, then read again from the start */
    rlab_reader probe = *r;
    const char *s;
    size_t n;
    while (rlab_reader_next(&probe, &s, &n, NULL) == RLAB_OK && s && n == 0) {
    }
    if (s)
        guess_columns(s, n, &o);
    return rlab_ld_csv(r, &o, ds, err);
}

static const struct {
    const char *name;
    const char *format;
    unsigned flags;
    rlab_ld_fn fn;
} buffer_formats[] = {
    {.name = "recbole-inter",
     .format = "recbole",
     .flags = RLAB_READ_UTF8,
     .fn = rlab_ld_recbole_inter},
    {.name = "recbole-item", .format = "recbole", .flags = RLAB_READ_UTF8, .fn = buf_rb_item},
    {.name = "recbole-user", .format = "recbole", .flags = RLAB_READ_UTF8, .fn = buf_rb_user},
    {.name = "ml-100k-data", .format = "ml-100k", .flags = 0, .fn = buf_ml100k_data},
    {.name = "ml-100k-item", .format = "ml-100k", .flags = 0, .fn = buf_ml100k_item},
    {.name = "ml-100k-user", .format = "ml-100k", .flags = 0, .fn = rlab_ld_ml100k_user},
    {.name = "ml-1m-ratings", .format = "ml-1m", .flags = 0, .fn = buf_ml1m_ratings},
    {.name = "ml-1m-movies", .format = "ml-1m", .flags = 0, .fn = buf_ml1m_movies},
    {.name = "ml-1m-movies-semicolon", .format = "ml-1m", .flags = 0, .fn = buf_ml1m_movies_semi},
    {.name = "ml-1m-users", .format = "ml-1m", .flags = 0, .fn = rlab_ld_ml1m_users},
    {.name = "sasrec", .format = "sasrec", .flags = RLAB_READ_UTF8, .fn = rlab_ld_sasrec},
    {.name = "seqline", .format = "seqline", .flags = RLAB_READ_UTF8, .fn = rlab_ld_seqline},
    {.name = "csv", .format = "csv", .flags = RLAB_READ_UTF8, .fn = buf_csv},
    {.name = "item2attributes",
     .format = "item2attributes",
     .flags = RLAB_READ_UTF8,
     .fn = rlab_ld_item_attrs_buffer},
};

int rlab_data_load_buffer(const void *buf, size_t n, const char *format, const char *label,
                          rlab_dataset **out, rlab_err *err)
{
    *out = NULL;
    if (!format)
        return rlab_errf(err, RLAB_EINVAL, "data.load_buffer: format required");
    for (size_t k = 0; k < sizeof buffer_formats / sizeof buffer_formats[0]; k++) {
        if (strcmp(format, buffer_formats[k].name) != 0)
            continue;
        rlab_dataset *ds = NULL;
        int rc = rlab_ld_new_dataset(label ? label : "buffer", 0, &ds, err);
        if (rc)
            return rc;
        rlab_reader r;
        rlab_reader_open_mem(&r, buf, n, label, buffer_formats[k].flags);
        rc = buffer_formats[k].fn(&r, ds, err);
        rlab_reader_close(&r);
        if (rc) {
            rlab_dataset_free(ds);
            return rc;
        }
        rlab_ld_set(ds, buffer_formats[k].format, r.name);
        *out = ds;
        return RLAB_OK;
    }
    return rlab_errf(err, RLAB_EINVAL, "data.load_buffer: unknown format '%s'", format);
}
