/*
 * core/data/loaders: read the common recommender file formats into an rlab_dataset, read
 * dialogue corpora (ReDial, INSPIRED) into rlab_dialogues, and write RecBole atomic files.
 *
 *     rlab_err err = {0};
 *     rlab_dataset *ds = NULL;
 *     if (rlab_data_load("data/ml-100k", NULL, "ml-100k", &ds, &err) != RLAB_OK) {
 *         fprintf(stderr, "%s\n", err.msg);   // "…/u.data:17: expected 4 tab-separated
 *         return 1;                           //  fields (user item rating timestamp), got 3"
 *     }
 *     printf("%d users\n", rlab_vocab_size(&ds->users));
 *     rlab_dataset_free(ds);
 *
 * Common contract of every loader:
 * - On success *out is a new dataset owned by the caller (rlab_dataset_free), with
 *   ds->format and ds->source set. Users and items get dense indices in order of first
 *   appearance; the vocabulary keeps the external id text (numeric ids canonicalised:
 *   "007" -> "7").
 * - On failure *out is NULL, everything built so far has been freed, and err names the file
 *   and line and says what was expected: RLAB_EIO for a missing/unreadable file,
 *   RLAB_EFORMAT for malformed content (wrong field count, non-numeric or overflowing
 *   number, unknown RecBole type, invalid UTF-8 / control bytes in Latin-1 text, truncated
 *   JSON, empty file), RLAB_ENOMEM, RLAB_EINVAL for bad options.
 * - Blank lines are skipped. "\n" and "\r\n" endings are both accepted. A UTF-8 byte-order
 *   mark at the start of a file is skipped (the shared line reader drops it).
 * - Loaders are reentrant (no global state); a dataset is not shared between threads while
 *   being loaded.
 */
#ifndef RLAB_DATA_LOADERS_H
#define RLAB_DATA_LOADERS_H

#include "base/base.h"
#include "data/table.h"

#include <stddef.h>
#include <stdint.h>

/* ---- dispatcher ------------------------------------------------------------------------ */
/* The dialogue format a file is shaped like, from its first non-blank line, else NULL:
 * "redial" for a JSON object with conversationId and messages (ReDial JSON lines),
 * "inspired" for a tab-separated header with dialog_id, speaker and text (INSPIRED). */
RLAB_API const char *rlab_data_dialogue_shape(const char *path);

/* Load path (a file or a folder) of interactions as format, or guess the format when format
 * is NULL. A dialogue-shaped file (rlab_data_dialogue_shape) is refused with RLAB_EFORMAT
 * naming it and how to load it, whatever the format (and format "redial"/"inspired" is
 * RLAB_EINVAL here: dialogues are not an rlab_dataset). The guess:
 *   folder with u.data -> "ml-100k"; folder with ratings.dat / movies.dat /
 *   movies_semicolon.dat / users.dat -> "ml-1m"; folder with <folder-name>.inter or exactly
 *   one *.inter -> "recbole"; file u.data -> "ml-100k" (siblings u.item, u.user, u.genre
 *   are read when present); ratings.dat, movies*.dat, users.dat -> "ml-1m" (its folder);
 *   *.inter -> "recbole"; *.csv / *.tsv -> "csv" with a header and the columns guessed by
 *   name (user/user_id, item/item_id, timestamp/ts/time, rating); anything else is sniffed
 *   from its first 64 non-blank lines: all tab-separated with 4 fields -> "ml-100k" (a
 *   u.data-like file), all with exactly two fields -> "sasrec", else "seqline".
 *   A file that is mostly one of the first two shapes but has a line out of shape (a
 *   u.data file with a 5-field line) is refused with RLAB_EFORMAT naming the file, the line
 *   and the format it looks like, rather than read as "seqline".
 * Formats: "recbole", "ml-100k", "ml-1m", "sasrec", "seqline", "csv" (also "tsv"); the
 * tabular presets of data/tabular.h ("census", "tiny_mtl", "criteo", "criteo_sample",
 * "avazu") give a dataset of CTR / multi-task samples (ds->tab, default parts: valid 0.1,
 * test 0.2, by time when the table has times, else random with seed 0) without interactions;
 * "ratings-mt" reads path's rated interactions (format guessed) and gives them as click /
 * like samples (data/tabular.h rlab_tabular_from_ratings: 1 unrated item per rating, seed 1,
 * like = rating >= 4, history 20; default parts, by time).
 * name (may be NULL) becomes ds->name (default: the file or folder name, see each loader;
 * names over 63 bytes are refused). */
RLAB_API int rlab_data_load(const char *path, const char *format, const char *name,
                            rlab_dataset **out, rlab_err *err);

/* The same loaders over one in-memory file (fuzzing, tests, network sources). buf is
 * borrowed; errors name `label` (NULL: "<buffer>") as the file. Formats: "recbole-inter",
 * "recbole-item", "recbole-user" (features alone: ids are added to the vocabularies),
 * "ml-100k-data", "ml-100k-item", "ml-100k-user", "ml-1m-ratings", "ml-1m-movies",
 * "ml-1m-movies-semicolon", "ml-1m-users", "sasrec", "seqline", "csv" (header, columns
 * guessed by name as above), "item2attributes" (see rlab_load_item_attrs). */
RLAB_API int rlab_data_load_buffer(const void *buf, size_t n, const char *format, const char *label,
                                   rlab_dataset **out, rlab_err *err);

/* ---- RecBole atomic files -------------------------------------------------------------- */
/* path is an .inter file, or a folder holding <folder-name>.inter. The sibling .item and
 * .user files with the same stem are loaded when present. Header: tab-separated
 * `name:type`, type in token, token_seq, float, float_seq (anything else: RLAB_EFORMAT).
 * .inter: user_id:token and item_id:token are required; timestamp:float -> ts
 * (RLAB_INTER_HAS_TS, else SYNTH_TS = position in the user's rows); rating:float -> rating
 * (RLAB_INTER_HAS_RATING); up to RLAB_INTER_MAX_LABELS other float columns (label, click,
 * conversion...) -> label columns; other columns are validated and ignored.
 * .item/.user: the first field named item_id / user_id is the key; token -> TOKEN,
 * float -> FLOAT, token_seq -> TOKEN_SEQ (space separated) EXCEPT a token_seq column whose
 * name contains "title", "name", "desc", "text" or "review", which becomes TEXT (the whole
 * field, as written). float_seq columns are validated and skipped (no feature kind). */
RLAB_API int rlab_load_recbole(const char *path, const char *name, rlab_dataset **out,
                               rlab_err *err);

/* ---- MovieLens ------------------------------------------------------------------------- */
/* ML-100K folder (or the path of its u.data, or of any u.data-like file: its folder's u.item,
 * u.user and u.genre are read too): u.data (tab: user item rating ts) required;
 * u.item (pipe: id|title|release|video|url|19 genre flags; Latin-1 converted to UTF-8) ->
 * item features title (TEXT), release (TOKEN), genres (TOKEN_SEQ, names from u.genre in id
 * order, or the standard 19 names when u.genre is absent); u.user (id|age|gender|
 * occupation|zip) -> user features age (FLOAT), gender, occupation, zip (TOKEN). Default
 * name: the folder's name for the folder or its u.data; for another file its name without a
 * ".data" extension ("train.data" -> "train", "u1.base" -> "u1.base"), so two files of one
 * folder never share a name. */
RLAB_API int rlab_load_ml100k(const char *path, const char *name, rlab_dataset **out,
                              rlab_err *err);

typedef struct rlab_ml1m_opts {
    /* separator of movies.dat fields; NULL = "::" except ";" for a file whose name contains
     * "semicolon" (the Blosc mirror). ratings.dat and users.dat always use "::". */
    const char *movies_sep;
} rlab_ml1m_opts;

/* ML-1M folder: ratings.dat (user::item::rating::ts), movies.dat or movies_semicolon.dat
 * (id::title::genre|genre; Latin-1) -> title (TEXT), genres (TOKEN_SEQ), users.dat
 * (id::gender::age::occupation::zip) -> gender, occupation, zip (TOKEN), age (FLOAT). Each
 * file is optional but at least one must exist; without ratings.dat the dataset has
 * features and vocabularies but no interactions. opts may be NULL. */
RLAB_API int rlab_load_ml1m(const char *dir, const rlab_ml1m_opts *opts, const char *name,
                            rlab_dataset **out, rlab_err *err);

/* ---- SASRec / seq-line text ------------------------------------------------------------ */
/* SASRec: `user item` per line (blank separated integers), each user's lines in time order;
 * ts = position within the user's sequence (RLAB_INTER_SYNTH_TS). */
RLAB_API int rlab_load_sasrec(const char *path, const char *name, rlab_dataset **out,
                              rlab_err *err);
/* S3Rec/ICLRec: `user item item ...` per line (at least one item); ts = position. */
RLAB_API int rlab_load_seqline(const char *path, const char *name, rlab_dataset **out,
                               rlab_err *err);

/* ---- item attributes ------------------------------------------------------------------ */
/* S3Rec's <name>_item2attributes.json (Amazon Beauty / Sports / Toys: brand + categories as
 * integer ids): one JSON object {"item id": [attribute id, ...], ...} added to ds as the item
 * feature "attributes" (TOKEN_SEQ; values are the ids as text, in file order). Item ids are
 * matched against ds->items (numeric ids canonicalised); items ds does not have are skipped
 * and counted in *skipped (may be NULL). rlab_load_sasrec / rlab_load_seqline (and so
 * rlab_data_load) read <stem>_item2attributes.json next to <stem>.txt or <stem>.sasrec.txt
 * when it exists. Buffer format "item2attributes" (rlab_data_load_buffer) reads the object
 * alone, adding its items to the vocabulary. Errors: RLAB_EIO, RLAB_EFORMAT (invalid or
 * truncated JSON, not an object, a value that is not an array of integer / short string ids),
 * RLAB_EINVAL (ds already has an "attributes" item feature), RLAB_ENOMEM. */
RLAB_API int rlab_load_item_attrs(rlab_dataset *ds, const char *path, int64_t *skipped,
                                  rlab_err *err);

/* ---- CSV / TSV ------------------------------------------------------------------------- */
typedef struct rlab_csv_opts {
    const char *sep; /* field separator, e.g. ",", "\t", "::" (NULL: ",") */
    int header;      /* 1: the first line names the columns */
    int quoted;      /* 1: fields may be "double quoted" ("" = a quote), within one line */
    /* Columns by 0-based index (-1 = absent), or by header name (overrides the index when
     * non-NULL; needs header). user and item are required. */
    int user_col, item_col, ts_col, rating_col;
    const char *user_name, *item_name, *ts_name, *rating_name;
    int nlabels; /* <= RLAB_INTER_MAX_LABELS float label columns */
    int label_cols[RLAB_INTER_MAX_LABELS];
    const char *label_names[RLAB_INTER_MAX_LABELS];
} rlab_csv_opts;

/* Defaults: sep ",", header 1, quoted 1, user 0, item 1, everything else absent. */
RLAB_API void rlab_csv_opts_init(rlab_csv_opts *o);
/* ts values may be integers or floats (truncated); ratings/labels floats. Without a ts
 * column ts = position in the user's rows (SYNTH_TS). Every row must have exactly as many
 * fields as the first row (or the header). */
RLAB_API int rlab_load_csv(const char *path, const rlab_csv_opts *opts, const char *name,
                           rlab_dataset **out, rlab_err *err);

/* ---- RecBole writer -------------------------------------------------------------------- */
/* Write dir/stem.inter (user_id:token item_id:token [rating:float] timestamp:float
 * [labels:float...]) and, when the dataset has item / user features, dir/stem.item and
 * dir/stem.user. TEXT columns are written as token_seq (tabs and newlines become spaces, so
 * a title round-trips as TEXT when its name matches the rule above); token values of
 * TOKEN_SEQ columns must not contain blanks (they are replaced by '_'). Round trip:
 * rlab_load_recbole of the written files gives the same vocabularies, rows and features.
 * Errors: RLAB_EIO naming the file. */
RLAB_API int rlab_write_recbole(const rlab_dataset *ds, const char *dir, const char *stem,
                                rlab_err *err);

/* ---- dialogues ------------------------------------------------------------------------- */
enum { RLAB_ROLE_SEEKER = 0, RLAB_ROLE_RECOMMENDER = 1 };

typedef struct rlab_turn {
    int role;      /* RLAB_ROLE_* (ReDial: initiator = seeker) */
    char *speaker; /* sender id as text (ReDial worker id, INSPIRED role name) */
    char *text;    /* UTF-8 utterance, owned */
    int64_t time;  /* ReDial timeOffset, INSPIRED turn_id */
    int nitems;
    int32_t *items; /* [nitems] indices into rlab_dialogues.items, owned */
} rlab_turn;

typedef struct rlab_conv {
    char *id; /* conversationId / dialog_id, owned */
    int nturns, cap;
    rlab_turn *turns; /* [nturns] owned */
} rlab_conv;

typedef struct rlab_dialogues {
    char format[16];    /* "redial" or "inspired" */
    size_t n, cap;      /* conversations (cap: allocated) */
    rlab_conv *convs;   /* [n] */
    rlab_vocab items;   /* mentioned items: ReDial movie id, INSPIRED movie title */
    char **item_titles; /* [items.n] title as mentioned (ReDial movieMentions), may be NULL */
    int32_t titles_cap; /* internal: slots allocated in item_titles */
} rlab_dialogues;

/* ReDial JSON lines: one conversation per line (conversationId, messages[{text,
 * senderWorkerId, messageId, timeOffset}], movieMentions{id: name}, initiatorWorkerId,
 * respondentWorkerId). Items mentioned in a message are its "@<digits>" references.
 * Errors: truncated / invalid JSON, missing or mistyped keys, invalid UTF-8. */
RLAB_API int rlab_load_redial(const char *path, rlab_dialogues **out, rlab_err *err);
/* INSPIRED TSV with header (dialog_id, utt_id, speaker, turn_id, text, ..., movies, ...):
 * consecutive rows with the same dialog_id form a conversation; speaker RECOMMENDER /
 * SEEKER; items are the `movies` column split on ';' (trimmed). */
RLAB_API int rlab_load_inspired(const char *path, rlab_dialogues **out, rlab_err *err);
/* Pick by extension: .jsonl / .json -> redial, .tsv -> inspired (format may force one). */
RLAB_API int rlab_dialogues_load(const char *path, const char *format, rlab_dialogues **out,
                                 rlab_err *err);
/* In-memory form: format "redial" or "inspired"; label names the buffer in errors. */
RLAB_API int rlab_dialogues_load_buffer(const void *buf, size_t n, const char *format,
                                        const char *label, rlab_dialogues **out, rlab_err *err);
RLAB_API void rlab_dialogues_free(rlab_dialogues *d);

#endif /* RLAB_DATA_LOADERS_H */
