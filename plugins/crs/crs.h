/*
 * plugins/crs/crs.h: conversational recommendation (UniCRS-style, issue 18), shared by the
 * plugin module, its tests and its benchmark.
 *
 * The CRS interface, reusable by later agents (MACRS, issue 19): a CRS is a registered
 * rlab_model whose queries carry the dialogue so far as rlab_query.context (turns joined by
 * newlines, "User: ..." / "System: ...", movie mentions written as titles) and the items
 * mentioned so far as rlab_query.hist (oldest first). rlab_model_score_all gives the item
 * scores; crs_respond gives the response (a template with its [MOVIE] slots filled by the
 * recommendation, or the LLM's text).
 *
 * Data flow:
 *   crs.prepare  dialogues -> a catalogue dataset (items = movies with title, year and genres
 *                from MovieLens where the title matches; users = training recommendation
 *                instances with their context as user features; one interaction each)
 *   train unicrs data=<catalogue>   the host's verb: R-GCN + context transformer + fusion
 *   crs.eval     Recall@1/10/50 with and without repeated items, the two baselines,
 *                Distinct-n of the responses, every scored turn stored in `dialogues`
 */
#ifndef RLAB_CRS_H
#define RLAB_CRS_H

#include "data/text.h"
#include "host/plugin.h"
#include "model/fit.h"

#include <stdint.h>

/* ---- text --------------------------------------------------------------------------------- */
/* A title normalised for matching: lower-case ASCII letters and digits, one blank between
 * words, a leading article ("the", "a", "an") moved away, a trailing "(yyyy)" cut off into
 * *year (0 when absent); MovieLens' "Matrix, The (1999)" and ReDial's "The Matrix (1999)"
 * both give "matrix" and 1999. out has cap bytes. */
void crs_title_norm(const char *title, char *out, size_t cap, int *year);

/* Utterance text with ReDial's "@<id>" mentions replaced by the titles of d (the id itself
 * when d has no title for it). Caller frees. */
char *crs_turn_text(const rlab_dialogues *d, const rlab_turn *t);
/* The same with every mention written "[MOVIE]" (a response template). Caller frees. */
char *crs_turn_template(const rlab_dialogues *d, const rlab_turn *t);

/* ---- MovieLens metadata ------------------------------------------------------------------- */
typedef struct crs_movie {
    char *norm; /* normalised title */
    int year;
    char *genres; /* '|'-separated */
} crs_movie;

typedef struct crs_movies {
    int32_t n, cap;
    crs_movie *m;
} crs_movies;

/* Append the movies of a MovieLens file: ML-1M `id;title;genres` or `id::title::genres`
 * (movies.dat) or ML-100K `u.item` (id|title|date|video|url|19 genre flags); the format is
 * told by the line. Latin-1 text is converted. Errors name the file and line (RLAB_EFORMAT),
 * RLAB_EIO, RLAB_ENOMEM. */
int crs_movies_load(crs_movies *mv, const char *path, rlab_err *err);
void crs_movies_clear(crs_movies *mv);
/* Index of the movie with this normalised title and year (year 0 = any), or -1. */
int32_t crs_movies_find(const crs_movies *mv, const char *norm, int year);

/* ---- recommendation instances ------------------------------------------------------------- */
/* One recommendation instance (UniCRS): a recommender turn that mentions items, one instance
 * per mentioned item. Item indices are the catalogue's. */
typedef struct crs_inst {
    int32_t conv, turn; /* conversation index in its corpus, turn index */
    int32_t target;     /* catalogue item (-1: not in the catalogue) */
    int32_t n_ctx;      /* items mentioned before the turn, oldest first (repeats kept) */
    int32_t *ctx;
    char *context;  /* turns before, "User: ...\nSystem: ..." with titles */
    char *response; /* the gold response (titles written out) */
    char *tmpl;     /* the gold response with its mentions as [MOVIE] */
    int repeat;     /* the target was mentioned before */
} crs_inst;

typedef struct crs_insts {
    int64_t n, cap;
    crs_inst *v;
} crs_insts;

/* The instances of corpus d, items mapped to the catalogue by their id text (items vocab of
 * a catalogue dataset; NULL = d's own indices). */
int crs_insts_build(const rlab_dialogues *d, const rlab_vocab *catalogue, crs_insts *out,
                    rlab_err *err);
void crs_insts_clear(crs_insts *s);

/* ---- the catalogue dataset (crs.prepare) ------------------------------------------------ */
typedef struct crs_prepare_opts {
    const rlab_dialogues *const *train; /* corpora whose instances are the training users */
    int n_train;
    const rlab_dialogues *const *extra; /* corpora that only add items to the catalogue */
    int n_extra;
    const crs_movies *movies; /* may be NULL: no genres */
    int synth;                /* template dialogues generated from the metadata */
    uint64_t seed;
} crs_prepare_opts;

typedef struct crs_prepare_stats {
    int32_t items, linked, users_real, users_synth;
} crs_prepare_stats;

int crs_prepare(const char *name, const crs_prepare_opts *o, rlab_dataset **out,
                crs_prepare_stats *st, rlab_err *err);

/* ---- the knowledge graph ---------------------------------------------------------------- */
enum {
    CRS_REL_GENRE = 0,
    CRS_REL_GENRE_INV,
    CRS_REL_DECADE,
    CRS_REL_DECADE_INV,
    CRS_REL_COMENTION, /* movie <- movie mentioned in the same training conversation */
    CRS_NREL
};

/* Entities: items 0..n_items-1, then genres, then decades. One CSR adjacency per relation
 * over the entities, row-normalised (1 / in-degree of the relation, as R-GCN's c_{i,r}). */
typedef struct crs_graph {
    int32_t n_items, n_ent;
    int64_t *rowptr; /* [CRS_NREL][n_ent + 1] */
    int32_t *col;    /* [nnz] */
    float *val;      /* [nnz] */
    int64_t nnz;
} crs_graph;

/* pairs [n_pairs][2] (dst, src movie indices) become CRS_REL_COMENTION edges (the model adds
 * both directions of every (target, earlier mention) of its training conversations). */
int crs_graph_build(const rlab_dataset *ds, const int32_t *pairs, int64_t n_pairs, crs_graph *g,
                    rlab_err *err);
/* Relation r's CSR (row pointers from 0, its columns and values). */
static inline void crs_graph_rel(const crs_graph *g, int r, const int64_t **rp, const int32_t **col,
                                 const float **val)
{
    int64_t off = 0;
    for (int q = 0; q < r; q++)
        off += g->rowptr[(size_t)q * ((size_t)g->n_ent + 1) + (size_t)g->n_ent];
    *rp = g->rowptr + (size_t)r * ((size_t)g->n_ent + 1);
    *col = g->col + off;
    *val = g->val + off;
}
void crs_graph_clear(crs_graph *g);

/* ---- the unicrs model ------------------------------------------------------------------ */
typedef struct crs_cfg {
    int dim, heads, ctx_len, n_ent_ctx, n_prefix, buckets, batch, pretrain, copy, comention;
    double lr, wd, dev;
    float dropout;
} crs_cfg;

extern const rlab_field crs_unicrs_fields[];
extern const rlab_fit_ops crs_unicrs_fit;
extern const rlab_kv crs_unicrs_defaults[];
rlab_model *crs_unicrs_restore(rlab_host *host, const rlab_ckpt *ck, const void *cfg,
                               rlab_err *err);
/* 1 when m is a unicrs model. */
int crs_is_unicrs(const rlab_model *m);

/* Context token ids of a text: the last len tokens (left-padded with -1) as hashed unigram
 * and bigram buckets. uni, bi: [len]. Returns the number of real tokens. */
int crs_context_ids(const char *text, int len, int buckets, int32_t *uni, int32_t *bi);

/* ---- responses ------------------------------------------------------------------------- */
/* Response templates: training recommender turns with their movie mentions replaced by
 * "[MOVIE]", retrieved by TF-IDF cosine between the query context and each template's
 * context (UniCRS's conversation stage stands in as retrieval: no language model offline). */
typedef struct crs_templates {
    int32_t n;
    char **text; /* with [MOVIE] slots */
    char **ctx;
    int32_t D;
    float *X; /* [n][D] TF-IDF of the contexts */
    rlab_tfidf tf;
} crs_templates;

int crs_templates_fit(crs_templates *t, int32_t n, const char *const *text, const char *const *ctx,
                      rlab_err *err);
void crs_templates_clear(crs_templates *t);
/* The response to context: the nearest template with its [MOVIE] slots filled with the
 * titles of items[0..n_items) in order (the top-1 when it has one slot). Caller frees.
 * Without templates: "You might like [MOVIE]." */
char *crs_template_respond(const crs_templates *t, const char *context, const char *const *titles,
                           int n_titles);
/* Templates of a unicrs model, and its item titles (NULL when m is not unicrs). */
const crs_templates *crs_model_templates(const rlab_model *m);
const char *crs_model_title(const rlab_model *m, int32_t item);

/* The LLM prompt of the openai backend: the fused knowledge (top context entities, the
 * candidate items with their genres and year) and the dialogue. Caller frees. */
char *crs_llm_prompt(const rlab_model *m, const char *context, const int32_t *cands, int n_cands);

/* ---- metrics ------------------------------------------------------------------------------ */
/* Rank (1-based) of target among scores[0..n) with items whose mask byte is set left out:
 * 1 + the number of allowed items scoring strictly higher, plus the allowed items scoring
 * equal with a lower index (ties to the lower index, as rlab_topk_row). 0 when the target is
 * masked. */
int64_t crs_rank(const float *scores, int32_t n, const uint8_t *mask, int32_t target);
/* The baselines' scores: "repeat" gives item i the position of its last mention in ctx
 * (1..n_ctx, later = higher), others 0; "repeat + popularity" adds pop[i] / (1 + max pop) to
 * break the rest by popularity (mentioned items stay first). pop may be NULL (repeat). */
void crs_baseline_scores(const int32_t *ctx, int32_t n_ctx, const float *pop, int32_t n_items,
                         float *out);

#endif /* RLAB_CRS_H */
