/*
 * core/data/tokenizer: the hand-rolled text plumbing under every loader (no regex, no
 * scanf). A reader streams a file (or a memory buffer) in large blocks and hands out one
 * line at a time; a splitter cuts a line into fields on a one- or multi-character
 * separator; strict number parsers refuse anything that is not exactly a number and detect
 * overflow; text helpers validate UTF-8 and convert Latin-1 to UTF-8. The feature builder
 * at the end fills rlab_feats tables row by row in any entity order (used by the loaders of
 * .item/.user, u.item, movies.dat...).
 *
 *     rlab_reader r;
 *     if (rlab_reader_open(&r, "u.data", RLAB_READ_UTF8, &err)) return err.code;
 *     const char *s; size_t n; rlab_field f[4];
 *     while (rlab_reader_next(&r, &s, &n, &err) == RLAB_OK && s) {
 *         size_t nf = rlab_split_fields(s, n, "\t", f, 4);
 *         if (nf != 4) return rlab_errf_at(&err, RLAB_EFORMAT, r.name, r.line, "...");
 *     }
 *     rlab_reader_close(&r);
 *
 * Lines never include their terminator ("\n" or "\r\n"); a last line without a newline is
 * returned like any other. A UTF-8 byte-order mark (EF BB BF) at the very start of the input
 * is skipped, so every loader reads files saved "with BOM" like files without one. Returned line
 * pointers stay valid until the next call. Lines are NOT NUL-terminated: every function here takes
 * (pointer, length).
 *
 * The reader, splitter, number and text functions are exported (other parsers in core and
 * the plugins reuse them); the feature builder and the loader internals at the end are
 * private to core/data. Nothing here is thread-safe on a shared reader; separate readers
 * are independent.
 */
#ifndef RLAB_DATA_TOKENIZER_H
#define RLAB_DATA_TOKENIZER_H

#include "base/base.h"
#include "data/table.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- line reader ----------------------------------------------------------------------- */
enum {
    RLAB_READ_UTF8 = 1u << 0, /* every line must be valid UTF-8 (error names the byte) */
};

typedef struct rlab_reader {
    char name[192];       /* display name used in error messages (file path or label) */
    int line;             /* 1-based number of the line last returned (0 before the first) */
    unsigned flags;       /* RLAB_READ_* */
    FILE *fp;             /* NULL for a memory reader */
    char *buf;            /* block buffer (file reader), owned */
    size_t cap, len, pos; /* buffer capacity, bytes held, start of the next line */
    const char *mem;      /* memory reader: the caller's bytes (borrowed) */
    size_t memlen;
    int eof;        /* the file has been read to its end */
    uint64_t bytes; /* total bytes in lines returned so far (terminators included) */
} rlab_reader;

/* Open path for reading. RLAB_EIO (message names the file and the OS reason) when it cannot
 * be opened or is a directory. The reader must be closed with rlab_reader_close. */
RLAB_API int rlab_reader_open(rlab_reader *r, const char *path, unsigned flags, rlab_err *err);
/* A reader over n bytes at buf (borrowed: must outlive the reader). name labels errors. */
RLAB_API void rlab_reader_open_mem(rlab_reader *r, const void *buf, size_t n, const char *name,
                                   unsigned flags);
/* Next line into (*line, *len); *line == NULL at end of input. Errors: RLAB_EIO (read
 * failure), RLAB_ENOMEM, RLAB_EFORMAT (NUL byte in a line, invalid UTF-8 with
 * RLAB_READ_UTF8), each naming file and line. */
RLAB_API int rlab_reader_next(rlab_reader *r, const char **line, size_t *len, rlab_err *err);
RLAB_API void rlab_reader_close(rlab_reader *r);

/* ---- fields ---------------------------------------------------------------------------- */
typedef struct rlab_field {
    const char *p;
    size_t n;
} rlab_field;

/* Split s[0..n) on sep (a NUL-terminated separator of one or more bytes, e.g. "\t", "::").
 * Stores at most maxf fields in f and returns the TOTAL number of fields in the line, so a
 * caller can report "expected 4 fields, got 7". Empty fields are kept ("a\t\tb" -> 3).
 * sep == NULL splits on runs of blanks (space or tab) and drops leading/trailing blanks, so
 * a blank line has 0 fields. */
RLAB_API size_t rlab_split_fields(const char *s, size_t n, const char *sep, rlab_field *f,
                                  size_t maxf);

/* ---- strict numbers -------------------------------------------------------------------- */
/* Each parser accepts exactly the whole field (no spaces, no trailing bytes) and returns
 * RLAB_OK, or RLAB_EFORMAT for a non-number, or RLAB_EINVAL for a number out of range
 * (overflow). Integers: optional '-' then decimal digits. Floats: what strtod accepts in
 * decimal (digits, '.', exponent), plus "nan"/"inf" are refused. */
RLAB_API int rlab_parse_i32(const char *s, size_t n, int32_t *out);
RLAB_API int rlab_parse_i64(const char *s, size_t n, int64_t *out);
RLAB_API int rlab_parse_f64(const char *s, size_t n, double *out);
RLAB_API int rlab_parse_f32(const char *s, size_t n, float *out);
/* A timestamp: an int64, or a float (RecBole writes "881250949.0") whose value fits in
 * int64; the fraction is truncated toward zero. */
RLAB_API int rlab_parse_ts(const char *s, size_t n, int64_t *out);
/* Human word for a failed parse: "not a number" / "out of range". */
RLAB_API const char *rlab_parse_why(int code);
/* Canonical id text of a strictly parsed integer field: drops leading zeros ("007" -> "7"),
 * so the same id always maps to the same vocabulary entry. Returns the new start/length. */
RLAB_API void rlab_id_canon(const char **s, size_t *n);

/* ---- text ------------------------------------------------------------------------------ */
/* Offset of the first byte of an invalid UTF-8 sequence in s[0..n) (overlong forms,
 * surrogates and code points above U+10FFFF are invalid), or -1 when all valid. */
RLAB_API long rlab_utf8_invalid_at(const char *s, size_t n);
/* Offset of the first byte that is not printable Latin-1 text (C0 controls except tab, DEL,
 * C1 controls 0x80-0x9F), or -1. */
RLAB_API long rlab_latin1_invalid_at(const char *s, size_t n);
/* Latin-1 s[0..n) to a new NUL-terminated UTF-8 string (rlab_free it); NULL on ENOMEM. */
RLAB_API char *rlab_latin1_to_utf8(const char *s, size_t n);
/* A NUL-terminated copy of s[0..n); NULL on ENOMEM. */
RLAB_API char *rlab_strndup(const char *s, size_t n);

/* ---- feature builder ------------------------------------------------------------------- */
/* Fills a rlab_feats table row by row, rows addressed by entity index in any order, growing
 * as new entities appear. TOKEN_SEQ values are collected as (entity, value) pairs and turned
 * into CSR in rlab_fb_finish. Until finish, f->n_entities is the number of ALLOCATED rows so
 * rlab_feats_clear can always free a half-built table. */
typedef struct rlab_fb_pairs {
    int32_t *ent, *val;
    size_t n, cap;
} rlab_fb_pairs;

typedef struct rlab_fb {
    rlab_feats *f;
    rlab_fb_pairs *pairs; /* [f->cap] one per column (used by TOKEN_SEQ columns) */
    int pcap;
} rlab_fb;

void rlab_fb_init(rlab_fb *b, rlab_feats *f);
/* Add a column; returns its index, -1 on ENOMEM, -2 when a column of that name exists. */
int rlab_fb_add_col(rlab_fb *b, const char *name, rlab_feat_kind kind);
/* Setters return RLAB_OK or RLAB_ENOMEM. ent >= 0. An empty token (len 0) means missing. */
int rlab_fb_set_token(rlab_fb *b, int col, int32_t ent, const char *s, size_t n);
int rlab_fb_add_seq(rlab_fb *b, int col, int32_t ent, const char *s, size_t n);
int rlab_fb_set_float(rlab_fb *b, int col, int32_t ent, float v);
/* Takes ownership of text (rlab_malloc'd, NUL-terminated); frees any previous value. */
int rlab_fb_set_text(rlab_fb *b, int col, int32_t ent, char *text);
/* Size every column to exactly n_entities rows (missing rows: -1 / NAN / NULL / empty) and
 * build the TOKEN_SEQ offsets. Frees the builder's scratch (also on failure). */
int rlab_fb_finish(rlab_fb *b, int32_t n_entities);
/* Free the scratch without finishing (the feats table itself stays for its owner). */
void rlab_fb_clear(rlab_fb *b);

/* ---- loader internals (shared by the load_*.c files of core/data only) ------------------ */
/* A growable int64 array addressed by dense index, zero-filled: per-user positions for
 * synthetic timestamps, first-seen line numbers for duplicate detection. */
typedef struct rlab_i64map {
    int64_t *v;
    size_t cap;
} rlab_i64map;
/* Pointer to slot i (>= 0), growing as needed; NULL on ENOMEM. */
int64_t *rlab_i64map_at(rlab_i64map *m, int32_t i);
void rlab_i64map_clear(rlab_i64map *m);

/* Direct-mapped cache integer id -> dense index + 1 (0 = unknown) for ids in [0, 2^20):
 * the hot loops of integer-id files skip hashing the id text. Pairs with one vocabulary. */
typedef struct rlab_idcache {
    int32_t *v;
    size_t cap;
} rlab_idcache;
void rlab_idcache_clear(rlab_idcache *c);

/* Parse field f as an int32 id (what = "user id", "item id"...) and add its canonical text
 * to v; *idx = dense index. cache (may be NULL) must always be used with the same v.
 * EFORMAT / ENOMEM with file and line of r. */
int rlab_ld_int_id(rlab_vocab *v, rlab_idcache *cache, const rlab_reader *r, rlab_field f,
                   const char *what, int32_t *idx, rlab_err *err);
/* Copy of at most 40 bytes of a field for messages, with non-printable bytes as '?'. */
void rlab_ld_quote(char out[48], rlab_field f);
/* Fill name / format / source (source appended with "; " when already set). */
void rlab_ld_set(rlab_dataset *ds, const char *format, const char *source);

/* Default dataset name from a path: last component without its extension ("Beauty.txt" ->
 * "Beauty", "data/ml-100k/" -> "ml-100k"). Use an out buffer of RLAB_LD_NAME_BUF bytes, so
 * a name too long for a dataset is refused by rlab_ld_new_dataset instead of cut here. */
#define RLAB_LD_NAME_BUF 256
void rlab_ld_default_name(const char *path, char *out, size_t size);
/* A new empty dataset named name into *out. Names over 63 bytes are refused (RLAB_EINVAL,
 * see rlab_name_check); derived != 0 says the name came from the path, which the message
 * then adds. RLAB_ENOMEM. */
int rlab_ld_new_dataset(const char *name, int derived, rlab_dataset **out, rlab_err *err);
/* "tab", "'::'", "comma"... for messages. */
const char *rlab_ld_sep_word(const char *sep);
/* out = dir + "/" + base; RLAB_EINVAL when it does not fit (out then holds a prefix). */
int rlab_ld_join(char *out, size_t size, const char *dir, const char *base);
typedef int (*rlab_ld_fn)(rlab_reader *r, rlab_dataset *ds, rlab_err *err);
/* Open path (reader flags), make a dataset named name (NULL: default), run fn, set format
 * and source; on failure free everything and leave *out NULL. */
int rlab_ld_file(const char *path, unsigned flags, const char *name, const char *format,
                 rlab_ld_fn fn, rlab_dataset **out, rlab_err *err);

/* Reader-based loaders behind the public path and buffer entry points. Each appends to ds
 * (or d) and returns an rlab status; the caller frees on failure. */
typedef struct rlab_csv_opts rlab_csv_opts;
typedef struct rlab_dialogues rlab_dialogues;
/* load_attrs.c: the item2attributes object of a memory reader; a sibling attributes file of
 * a SASRec / seq-line file read into ds when present. */
int rlab_ld_item_attrs_buffer(rlab_reader *r, rlab_dataset *ds, rlab_err *err);
int rlab_ld_attach_sibling_attrs(rlab_dataset *ds, const char *path, rlab_err *err);
int rlab_ld_recbole_inter(rlab_reader *r, rlab_dataset *ds, rlab_err *err);
int rlab_ld_recbole_feats(rlab_reader *r, rlab_dataset *ds, int user_side, rlab_err *err);
int rlab_ld_ml_ratings(rlab_reader *r, rlab_dataset *ds, const char *sep, rlab_err *err);
int rlab_ld_ml100k_item(rlab_reader *r, rlab_dataset *ds, const char *const *genres, int ngenres,
                        rlab_err *err);
int rlab_ld_ml100k_user(rlab_reader *r, rlab_dataset *ds, rlab_err *err);
int rlab_ld_ml1m_movies(rlab_reader *r, rlab_dataset *ds, const char *sep, rlab_err *err);
int rlab_ld_ml1m_users(rlab_reader *r, rlab_dataset *ds, rlab_err *err);
int rlab_ld_sasrec(rlab_reader *r, rlab_dataset *ds, rlab_err *err);
int rlab_ld_seqline(rlab_reader *r, rlab_dataset *ds, rlab_err *err);
int rlab_ld_csv(rlab_reader *r, const rlab_csv_opts *o, rlab_dataset *ds, rlab_err *err);
/* Dialogue helpers: index of item id s[0..n) in d->items, adding it (and its title, copied,
 * when title != NULL and none is known yet); -1 on ENOMEM. New conversation / turn appended
 * at the end (NULL on ENOMEM). */
int32_t rlab_dlg_item(rlab_dialogues *d, const char *s, size_t n, const char *title);
struct rlab_conv *rlab_dlg_conv(rlab_dialogues *d, const char *id, size_t n);
struct rlab_turn *rlab_dlg_turn(struct rlab_conv *c);
/* Append item index to a turn (ENOMEM). */
int rlab_dlg_turn_item(struct rlab_turn *t, int32_t item);
int rlab_ld_redial(rlab_reader *r, rlab_dialogues *d, rlab_err *err);
int rlab_ld_inspired(rlab_reader *r, rlab_dialogues *d, rlab_err *err);

#endif /* RLAB_DATA_TOKENIZER_H */
