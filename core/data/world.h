/*
 * core/data/world: the synthetic world generator and the built-in demo world.
 *
 * A world is a small society with a known ground truth, deterministic from a seed and a
 * config:
 *   - G genres; every item has 1-3 of them (its genre vector spreads 1 evenly over them), a
 *     generated title (word lists, some non-ASCII: "Café Noir"), a year, and a popularity
 *     weight following a power law (Zipf exponent `zipf` over a random popularity rank);
 *   - every user has a sparse taste over genres (Dirichlet(taste_alpha)), demographics (age,
 *     gender, occupation) and one of RecAgent's five archetypes (Watcher, Explorer, Critic,
 *     Chatter, Poster) that shapes behaviour: Watchers consume more, Explorers care less
 *     about popularity, Critics rate more harshly, Chatters and Posters follow more people;
 *   - the true affinity of user u for item i at time t is dot(taste_u(t), genres_i), in
 *     [0, 1] (chance level about 1/G);
 *   - interactions: per user a heavy-tailed number of events at increasing timestamps; each
 *     next item is, with probability p_transition, one of the previous item's few
 *     successors (first-order transitions for sequence models to learn), else drawn
 *     proportionally to popularity^pop_power * (affinity + taste_eps)^taste_power, never an item
 *     the user already has; ratings 1-5 grow with affinity;
 *   - a follower graph with homophily (candidate followees weighted by
 *     exp(homophily * cosine(taste_u, taste_v)));
 *   - drift: at each drift time, a fraction of users move their taste towards a fresh draw.
 *
 * The generator fills an rlab_dataset (format "world"): users "u0".."u{U-1}", items
 * "i0".."i{I-1}", interactions sorted by (ts, user) with RLAB_INTER_HAS_TS|HAS_RATING, item
 * features title TEXT, genres TOKEN_SEQ, year FLOAT; user features age FLOAT, gender
 * TOKEN, occupation TOKEN, archetype TOKEN.
 *
 *     rlab_world *w; rlab_dataset *ds;
 *     if (rlab_world_demo(&w, &ds, &err)) return err.code;    // ~1000 users, 600 items
 *     float a = rlab_world_true_affinity(w, 17, 5);           // ground truth for u17, i5
 *     rlab_world_free(w); rlab_dataset_free(ds);
 *
 * Determinism: only the seeded rlab_rng and sequential double arithmetic with libm (no
 * threads, no reductions in varying order), so the same config gives byte-identical output
 * on the same machine; rlab_world_checksum is the regression guard.
 * Ownership: the caller frees both outputs. A world is read-only after generation, so
 * concurrent readers are fine.
 */
#ifndef RLAB_DATA_WORLD_H
#define RLAB_DATA_WORLD_H

#include "data/table.h"

#define RLAB_WORLD_MAX_DRIFT 4
#define RLAB_WORLD_N_ARCHETYPES 5

enum {
    RLAB_ARCH_WATCHER,
    RLAB_ARCH_EXPLORER,
    RLAB_ARCH_CRITIC,
    RLAB_ARCH_CHATTER,
    RLAB_ARCH_POSTER,
};

typedef struct rlab_world_config {
    uint64_t seed;
    int32_t n_users, n_items, n_genres;
    int64_t n_inter;      /* target number of interactions (met within a few percent) */
    int32_t min_per_user; /* every user gets at least this many interactions (>= 1) */
    float taste_alpha;    /* Dirichlet concentration of tastes; < 1 = sparse */
    float zipf;           /* popularity power law exponent (rank^-zipf) */
    float pop_power;      /* exponent on popularity in the choice weight (1 = as is) */
    float taste_power;    /* exponent on affinity in the choice weight */
    float taste_eps;      /* affinity floor in the choice weight (off-taste items) */
    float p_transition;   /* probability that the next item follows the previous one */
    int32_t n_successors; /* likely successors per item (1..8) */
    float avg_follow;     /* mean out-degree of the follower graph (0 = no graph) */
    float homophily;      /* strength of taste similarity in following (0 = random) */
    int64_t t0;           /* first timestamp (unix seconds) */
    int64_t span;         /* all interactions fall in [t0, t0 + span) */
    int n_drift;          /* 0..RLAB_WORLD_MAX_DRIFT drift events */
    int64_t drift_ts[RLAB_WORLD_MAX_DRIFT]; /* increasing, inside (t0, t0 + span) */
    float drift_frac;                       /* fraction of users whose taste moves at each drift */
    float drift_strength;                   /* new taste = (1 - s) old + s fresh */
} rlab_world_config;

typedef struct rlab_world {
    rlab_world_config cfg;
    int32_t n_users, n_items, n_genres;
    int n_epochs;                                  /* 1 + cfg.n_drift taste epochs */
    int64_t epoch_start[RLAB_WORLD_MAX_DRIFT + 1]; /* epoch e starts at epoch_start[e] */
    float *taste;       /* [n_epochs][n_users][n_genres], rows sum to 1 */
    uint8_t *drifted;   /* [n_drift][n_users] 1 when the user's taste moved at that drift */
    float *item_genre;  /* [n_items][n_genres], rows sum to 1 over the item's genres */
    double *pop;        /* [n_items] popularity weights, sum 1 */
    int32_t *succ;      /* [n_items][n_successors] likely next items, most likely first */
    float *succ_w;      /* [n_successors] successor probabilities, descending, sum 1 */
    uint8_t *archetype; /* [n_users] RLAB_ARCH_* */
    /* follower graph: user u follows follow[follow_off[u] .. follow_off[u+1]) (sorted), and
     * is followed by follower[follower_off[u] .. follower_off[u+1]) (sorted) */
    int64_t *follow_off;
    int32_t *follow;
    int64_t *follower_off;
    int32_t *follower;
} rlab_world;

/* Defaults: a small world (200 users, 100 items, 5000 interactions), seed 1. */
RLAB_API void rlab_world_config_default(rlab_world_config *c);
/* The demo world's config: 1000 users, 600 items, 60000 interactions, 18 genres, a social
 * graph, one drift; fixed seed. */
RLAB_API void rlab_world_config_demo(rlab_world_config *c);

/* Generate a world and its dataset (named name, format "world"). On success *world and *ds
 * are the caller's (free with rlab_world_free / rlab_dataset_free); on failure both are
 * NULL. EINVAL for a bad config (message names the field), ENOMEM. */
RLAB_API int rlab_world_generate(const rlab_world_config *cfg, const char *name, rlab_world **world,
                                 rlab_dataset **ds, rlab_err *err);
/* The built-in demo world (dataset "demo"), byte-identical on every call. */
RLAB_API int rlab_world_demo(rlab_world **world, rlab_dataset **ds, rlab_err *err);
RLAB_API void rlab_world_free(rlab_world *w);

/* The taste vector [n_genres] of user at time ts (the epoch containing ts). */
RLAB_API const float *rlab_world_taste(const rlab_world *w, int32_t user, int64_t ts);
/* dot(taste, genres of item) at time ts, and with the final (latest) taste. Out-of-range
 * user or item gives 0. */
RLAB_API float rlab_world_true_affinity_at(const rlab_world *w, int32_t user, int32_t item,
                                           int64_t ts);
RLAB_API float rlab_world_true_affinity(const rlab_world *w, int32_t user, int32_t item);

/* Stable names: archetype ("Watcher"...), genre ("Action"... or "genre19" beyond the list). */
RLAB_API const char *rlab_world_archetype_name(int a);
RLAB_API const char *rlab_world_genre_name(int g, char *buf, size_t cap);

/* 64-bit FNV-1a over every array of the world and the dataset (ids, interactions, features),
 * in a fixed order: equal checksums <=> (with overwhelming probability) identical output. */
RLAB_API uint64_t rlab_world_checksum(const rlab_world *w, const rlab_dataset *ds);

/* Write RecBole atomic files DIR/NAME.inter, .item, .user and (when the world has a graph)
 * .net (source_id:token target_id:token = "source follows target"). Deterministic bytes.
 * Titles go out as `title:token_seq` with tabs/newlines replaced by spaces. DIR is created
 * when missing (one level). EIO names the file. */
RLAB_API int rlab_world_write_recbole(const rlab_world *w, const rlab_dataset *ds, const char *dir,
                                      const char *name, rlab_err *err);

#endif /* RLAB_DATA_WORLD_H */
