/*
 * plugins/simulator/sim.h: RecAgent (YuLan-Rec) user simulation, the engine behind the
 * `simulator.*` commands. Internal to the plugin (hidden symbols), also compiled into the
 * tests and the benchmark as a static library so they can drive it without the shell.
 *
 *     sim_config cfg;
 *     sim_config_default(&cfg);                      // 5-item pages, 5 steps, 5 h rounds
 *     cfg.n_agents = 200; cfg.seed = 7;
 *     sim *s;
 *     if (sim_new(&cfg, ds, world, model, NULL, &s, &err)) ...   // model NULL = random
 *     sim_attach_store(s, db, run_id);               // events, stats, checkpoints
 *     sim_step(s, 20, NULL, NULL, &err);             // 20 rounds
 *     char *answer = sim_interview(s, 3, "What did you watch?", NULL, &err);
 *     sim_rewire(s, SIM_REWIRE_HOMOPHILY, 8, &err);
 *     sim_free(s);
 *
 * The model of one round (RecAgent §1.2, with what the language model decides):
 *   1. Activity: agents not busy (watching/chatting until busy_until) are drawn active with
 *      p_i (random: active_prob; pareto: Pareto(10*active_prob) normalised by its max;
 *      marginal: p_i * (rounds without action + 1), reset when the agent acts), visiting
 *      agents in a seeded random order and stopping at max_active.
 *   2. Decision [RECOMMENDER] / [SOCIAL] / [NOTHING] for every active agent.
 *   3. Recommender visits: one score-all per visiting agent per round (batched over the
 *      visitors), items already shown to the agent masked, injected items first; pages of
 *      page_size; up to max_steps decisions [BUY]:: k / [NEXT] / [SEARCH]:: title / [LEAVE].
 *      BUY ends the visit: the agent watches for watch_h hours and writes a one-line feeling.
 *      SEARCH shows the heard-of title first, then its nearest items by text vector.
 *   4. Social: [CHAT]:: friend + [TIME]:: hours (both sides remember the chat and hear of the
 *      titles mentioned; a friend who is watching cannot chat), or [POST]:: text to every
 *      follower (they remember it and hear of the title).
 *   5. Memory (memory.c), statistics, events, the checkpoint; virtual time += interval_h.
 *
 * Offline policies (policy.c, documented there): multinomial-logit choice models over
 * utilities built from the agent's tastes, archetypes, heard-of titles and retrieved
 * memories; every random draw comes from a generator derived from (seed, round, agent,
 * phase, step), so a run is reproducible whatever the order of evaluation, and a branch
 * from a checkpoint continues exactly as the original would have.
 *
 * The openai backend (cfg.use_llm with an rlab_llm handle): the same decisions come from
 * RecAgent-shaped prompts with strict output tags, sent in batches (one per phase/step of
 * a round, so max_in_flight requests are in flight). A reply that does not parse is
 * retried (llm_retries times), then answered by the offline policy; a request that failed
 * (unreachable server, timeout, HTTP error: the llm handle has retried already) is answered
 * by the offline policy at once. Every decision's event records "by": "llm", "offline" or
 * "fallback"; every failed request is counted by kind (sim_stats.llm_errors) with the first
 * message of each kind kept (sim_llm_trouble_get), and a round in which more than
 * cfg.max_fallback of the decisions fell back makes sim_step fail with RLAB_EIO and the
 * round's first error: a server that does not answer is an error, not a silent offline run.
 *
 * Threads: a sim is used by one thread at a time; sim_request_pause may be called from
 * any thread.
 */
#ifndef RLAB_SIMULATOR_SIM_H
#define RLAB_SIMULATOR_SIM_H

#include "base/base.h"
#include "data/table.h"
#include "data/text.h"
#include "data/world.h"
#include "model/model.h"
#include "store/store.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rlab_llm rlab_llm;

enum {
    SIM_HIST = 10,      /* watched / heard rings (RecAgent BUFFERSIZE) */
    SIM_QHIST = 32,     /* items kept for the recommender's query history */
    SIM_STM_CAP = 10,   /* short-term memory capacity */
    SIM_LTM_CAP = 24,   /* long-term memory slots (forgetting frees them) */
    SIM_DIM = 32,       /* memory / item vector size (TF-IDF + SVD) */
    SIM_MAX_PAGE = 10,  /* page_size bound */
    SIM_MAX_STEPS = 10, /* max_steps bound */
    SIM_MAX_INJECT = 8, /* injected items at once */
    SIM_RETRIEVE_K = 5, /* memories retrieved per reaction */
};
enum { SIM_MAX_THREADS = 8 }; /* threads bound (sim_config.threads) */

/* Bytes of the per-agent x per-item tables (the shown-items bytes) sim_new accepts: 8 GiB,
 * so that a simulation fits a 24 GB machine. */
#define SIM_MAX_SHOWN ((int64_t)8 << 30)

/* Activity draws. */
enum { SIM_ACT_RANDOM, SIM_ACT_PARETO, SIM_ACT_MARGINAL };
/* Top-level actions. */
enum { SIM_A_REC, SIM_A_SOCIAL, SIM_A_NOTHING };
/* Page actions: 0..page_size-1 = BUY index, then these. */
enum { SIM_P_NEXT = 100, SIM_P_SEARCH, SIM_P_LEAVE };
/* Social actions. */
enum { SIM_S_CHAT, SIM_S_POST };
/* Who decided. */
enum { SIM_BY_OFFLINE, SIM_BY_LLM, SIM_BY_FALLBACK, SIM_BY_HUMAN };
/* Archetype bits (1u << RLAB_ARCH_*). */
#define SIM_ARCH(a) ((uint8_t)(1u << (a)))
/* Rewiring modes. */
enum { SIM_REWIRE_HOMOPHILY, SIM_REWIRE_MIXING };
/* Kinds of language-model trouble, by failed request (sim_llm_kind_name: "unreachable",
 * "timeout", "auth" (HTTP 401/403), "http" (other HTTP errors), "protocol" (malformed or
 * empty replies), "unparsable" (a reply without the asked-for tags), "other"). */
enum {
    SIM_LLM_UNREACHABLE,
    SIM_LLM_TIMEOUT,
    SIM_LLM_AUTH,
    SIM_LLM_HTTP,
    SIM_LLM_PROTOCOL,
    SIM_LLM_UNPARSABLE,
    SIM_LLM_OTHER,
    SIM_LLM_NKINDS
};

/* Memory kinds: a memory is a structured record (never text in the hot path); its text is
 * rendered on demand (sim_memory_text) and its vector looked up (item, genre or kind). */
enum {
    SIM_M_WATCH = 1, /* watched item (aux: 1 liked) */
    SIM_M_CHAT,      /* chatted with other about item (or none) */
    SIM_M_HEARD,     /* heard other's post about item */
    SIM_M_POSTED,    /* posted about item */
    SIM_M_VISIT,     /* entered the recommender, left without watching */
    SIM_M_INSIGHT,   /* STM promotion insight: likes genre aux */
    SIM_M_REFLECT,   /* reflection: most of all likes genre aux */
    SIM_M_KINDS
};
/* Memory states (LTM). */
enum { SIM_MS_LIVE = 0, SIM_MS_FORGET, SIM_MS_MERGE };

typedef struct sim_mem {
    float created, accessed;       /* virtual hours */
    float importance;              /* raw score / 10, in [0, 1] */
    int32_t item;                  /* -1 = none */
    int32_t other;                 /* other agent, -1 = none */
    uint8_t kind, aux, state, enh; /* enh: STM enhancement count */
} sim_mem;

/* One agent. Fixed size and pointer-free: checkpoints copy the head verbatim (up to
 * offsetof(sim_agent, stm)) plus the used memory slots. */
typedef struct sim_agent {
    int32_t user; /* dense user index in the dataset (recommender query), -1 = none */
    char name[32];
    int32_t age;
    char gender[8];
    char occupation[24];
    char traits[96];
    char status[48];
    uint8_t arch;              /* SIM_ARCH bits */
    uint8_t busy_kind;         /* 0 idle, 1 watching, 2 chatting, 3 posting */
    uint16_t unshared;         /* liked watches not yet told anyone */
    float p_active;            /* base activity probability */
    int32_t no_action;         /* rounds since the agent last acted (marginal activity) */
    double busy_until;         /* virtual hours */
    int32_t watched[SIM_HIST]; /* ring, -1 empty; watched_pos = next slot */
    int32_t heard[SIM_HIST];
    uint16_t heard_n[SIM_HIST]; /* times heard of */
    int32_t watched_pos, heard_pos;
    int32_t qhist[SIM_QHIST]; /* last items for the recommender (a ring once full) */
    int32_t n_qhist;          /* < SIM_QHIST: items; else full, oldest at n_qhist - SIM_QHIST */
    int32_t n_watch;          /* total watches */
    int32_t n_obs;            /* observations so far (seeds the memory draws) */
    float refl_acc;           /* importance accumulated since the last reflection */
    int32_t n_stm, n_ltm;
    /* ---- memory (only the used slots are checkpointed) ---- */
    sim_mem stm[SIM_STM_CAP];
    int32_t stm_enh_items[SIM_STM_CAP][3];
    sim_mem ltm[SIM_LTM_CAP];
} sim_agent;

typedef struct sim_config {
    uint64_t seed;
    int32_t n_agents;     /* first n users of the dataset (0 or more than exist: all) */
    int page_size;        /* 5 */
    int max_steps;        /* 5 */
    int activity;         /* SIM_ACT_* */
    double active_prob;   /* 1.0 */
    int32_t max_active;   /* cap on active agents per round, 0 = none */
    double interval_h;    /* virtual hours per round, 5 */
    double watch_h;       /* watching duration, 2 */
    double temperature;   /* offline choice temperature multiplier, 1 */
    int retrain_every;    /* rounds between recommender retraining, 0 = never */
    int checkpoint_every; /* 1 = every round, 0 = never */
    int checkpoint_full;  /* a full image every n checkpoints, deltas between (0 = 25) */
    int use_llm;          /* decisions from the llm handle (sim_set_llm) */
    int llm_retries;      /* re-asks after an unparsable reply before the fallback, 1 */
    int llm_step_batches; /* 1: ask the round's page decisions step by step, one batch per
                             step (every visitor's step k before any step k+1), and the
                             social ones after the visits; 0 (default): pipelined, each
                             agent's next request sent when its previous reply is back
                             (the same decisions, fewer idle slots) */
    double max_fallback;  /* sim_step fails (RLAB_EIO) after a round in which more than this
                             share of the llm decisions fell back to the offline policy;
                             0.5; >= 1 never */
    int rewire_k;         /* friends per agent when the graph is rebuilt (no world graph) */
    int swap_k;           /* diversity intervention: items swapped between the first pages of
                             symmetric visitors each round (RecAgent rec_random_k), 0 = none */
    int partition;        /* SIM_PART_*: agents partitioned over MPI ranks (shard.c) */
    int threads;          /* threads for the round's per-agent work (candidate lists, offline
                             decisions and visits, checkpoint compares), 0 = the machine's
                             cores (one under MPI), at most SIM_MAX_THREADS; the results do
                             not depend on it */
} sim_config;

/* cfg.partition: AUTO = on under MPI with more than one rank (unless swap_k), else off; ON =
 * partitioned rounds (social effects on other agents delivered at the round's end), also on
 * one process (the reference the ranks reproduce); OFF = every rank holds every agent and
 * only the decisions are shared out. */
enum { SIM_PART_AUTO, SIM_PART_ON, SIM_PART_OFF };

/* Per-round statistics (stored in simulator_stats). */
typedef struct sim_stats {
    int64_t round;
    double vtime;
    int32_t active, visits, watches, rec_watches, search_watches, searches, chats, posts, nothing,
        busy, impressions;
    double ctr;                       /* rec_watches / impressions */
    double coverage;                  /* distinct items exposed this round / n_items */
    double exp_entropy;               /* genre entropy (bits) of this round's exposures */
    double watch_entropy;             /* mean per-agent genre entropy of all its watches so far */
    int32_t swapped;                  /* items the swap_k intervention put on pages */
    double agent_exp_entropy;         /* mean over visiting agents of the genre entropy of the
                                         first recommended page each was shown this round */
    double density;                   /* follow edges / (n (n - 1)) */
    double satisfaction;              /* mean true affinity of this round's watches (world), NAN */
    double sat_chance;                /* mean true affinity of random items for the same agents */
    int32_t llm_calls, llm_fallbacks; /* requests sent, decisions that fell back */
    int32_t llm_decisions;            /* decisions asked of the llm */
    int32_t llm_errors[SIM_LLM_NKINDS];  /* failed requests by kind */
    int32_t top_items[3], top_counts[3]; /* most mentioned items this round */
} sim_stats;

typedef void (*sim_progress_fn)(void *ud, int64_t done, int64_t total, const sim_stats *st);
typedef int (*sim_cancel_fn)(void *ud);

typedef struct sim sim;

/* Profiles from a CSV: header with id,name,age,gender,traits,status,interests,feature
 * (interests: genre names separated by ';' or '|'; feature: archetype names likewise). id
 * is the user's external id in the dataset (rows of unknown ids are skipped). */
typedef struct sim_profiles {
    const char *csv_path; /* NULL: profiles from the world or the dataset */
    /* History cut (fidelity studies): keep[r] = 1 when row r of ds->inter is part of the
     * agents' past; rows with 0 are ignored everywhere (tastes, the shown mask, the query
     * history, popularity), as if the user had not done them yet. NULL = every row. */
    const uint8_t *keep;
    /* Nonzero: the agents start with their past, not blank: the watched ring holds the last
     * SIM_HIST items of the (kept) history in time order, the genre counts of all of it,
     * and the last SIM_HIST items are observed as watch memories (liked = rated >= 4 when
     * the data has ratings, else the believed-taste rule of the feeling). */
    int seed_memory;
    /* Nonzero: no follow graph (no world graph, no homophilous rewiring, whose cost grows
     * with the square of the agents); for studies without the social side (fidelity). */
    int no_social;
} sim_profiles;

void sim_config_default(sim_config *c);

/* New simulation over dataset ds (borrowed; must outlive the sim), optional world w (ground
 * truth: tastes, archetypes, social graph; borrowed), recommender model (retained: the sim
 * takes one reference; NULL = seeded random). Its catalogue must equal the dataset's items.
 * Agents are the first cfg.n_agents users. Errors EINVAL, ENOMEM, EIO (profiles CSV). */
int sim_new(const sim_config *cfg, const rlab_dataset *ds, const rlab_world *w, rlab_model *model,
            const sim_profiles *prof, sim **out, rlab_err *err);
void sim_free(sim *s);

/* Accessors. */
const sim_config *sim_cfg(const sim *s);
int64_t sim_round(const sim *s);
double sim_vtime(const sim *s);
int32_t sim_n_agents(const sim *s);
const sim_agent *sim_agent_at(const sim *s, int32_t a);
/* One interaction (user, item, virtual time) appended to the simulation's log of simulated
 * interactions, the retraining data (a branch copies its parent's). RLAB_ENOMEM, log
 * unchanged, when it cannot grow. */
int sim_x_append(sim *s, int32_t user, int32_t item, double t);
const sim_stats *sim_last_stats(const sim *s);
/* 1 when the agents are partitioned over MPI ranks (cfg.partition); [*lo, *hi) = the agents
 * this rank steps (every agent when not partitioned). */
int sim_owned(const sim *s, int32_t *lo, int32_t *hi);
const char *sim_item_title(const sim *s, int32_t item);
const char *sim_model_name(const sim *s);
int32_t sim_n_items(const sim *s);
/* Followers / followees of an agent (CSR slices). */
int32_t sim_followers(const sim *s, int32_t a, const int32_t **out);
int32_t sim_followees(const sim *s, int32_t a, const int32_t **out);
/* The agent's believed taste [G] and the genre count. */
const float *sim_taste(const sim *s, int32_t a);
int32_t sim_n_genres(const sim *s);
const char *sim_genre_name(const sim *s, int32_t g);

/* Replace the recommender (retained; NULL = random). Takes effect next round. */
void sim_set_model(sim *s, rlab_model *m);
/* Use an llm handle for decisions (borrowed; NULL = offline). Registers the offline
 * policies on it (setup-time: call before running). */
int sim_set_llm(sim *s, rlab_llm *llm, rlab_err *err);
/* Store sink: events (run_id), stats and checkpoints (sim id = run_id). db may be NULL. */
void sim_attach_store(sim *s, rlab_db *db, int64_t run_id);
int64_t sim_id(const sim *s);
void sim_set_id(sim *s, int64_t id);

/* Retraining hook, called every cfg.retrain_every rounds with the simulated interactions
 * so far (user, item, vtime hours; the user is the dataset user index). It returns a new
 * model (one reference, handed to the sim) or NULL to keep the current one. */
typedef rlab_model *(*sim_retrain_fn)(void *ud, sim *s, const int32_t *users, const int32_t *items,
                                      const double *times, int64_t n, rlab_err *err);
void sim_set_retrain(sim *s, sim_retrain_fn fn, void *ud);

/* Run rounds. cancel (may be NULL) is polled between rounds; pause requests (below) stop
 * after the current round with RLAB_OK and *done (may be NULL) < rounds. A round in which
 * more than cfg.max_fallback of the llm decisions fell back ends the step after that round
 * (stored, checkpointed, reported to progress) with RLAB_EIO: "<the round's first llm
 * error> (n of m language-model decisions fell back ...)". */
int sim_step(sim *s, int rounds, sim_progress_fn progress, void *ud, sim_cancel_fn cancel,
             void *cud, int *done, rlab_err *err);
void sim_request_pause(sim *s);
/* Language-model trouble since the last sim_llm_trouble_clear (or sim_new): failed requests
 * of each kind, and the first message of each kind ("" when none). */
typedef struct sim_llm_trouble {
    int64_t n[SIM_LLM_NKINDS];
    char first[SIM_LLM_NKINDS][320];
} sim_llm_trouble;
const sim_llm_trouble *sim_llm_trouble_get(const sim *s);
void sim_llm_trouble_clear(sim *s);
const char *sim_llm_kind_name(int kind);
int sim_paused(const sim *s);
void sim_clear_pause(sim *s);

/* ---- interventions ---- */
/* field: name, age, gender, occupation, traits, status, interests (genre names separated by
 * ';', ',' or '|'), feature (archetype names likewise). EINVAL for an unknown field or
 * value. */
int sim_edit(sim *s, int32_t agent, const char *field, const char *value, rlab_err *err);
/* Answer a free question from the agent's memories (retrieval by the question's text
 * vector). Returns a new string (rlab_free); *by (may be NULL) receives SIM_BY_*. */
char *sim_interview(sim *s, int32_t agent, const char *question, int *by, rlab_err *err);
/* Rebuild the follow graph: every agent follows k others drawn with weight
 * exp(+beta cos(taste_u, taste_v)) (homophily) or exp(-beta cos) (mixing), beta = 8. */
int sim_rewire(sim *s, int mode, int k, rlab_err *err);
/* Put items first on every page shown during the next `rounds` rounds. */
int sim_inject(sim *s, const int32_t *items, int n, int rounds, rlab_err *err);
/* Make agent post about item now (an event; followers hear of it). */
int sim_post(sim *s, int32_t agent, int32_t item, rlab_err *err);

/* ---- role play (YuLan-Rec --play_role) ----
 * A person takes over one agent: the rounds skip it (sim_step goes on around it), and the
 * person's choices are applied between rounds and stored as the agent's events, "by":
 * "human" (a "visit" and a "watch" event for a visit, "chat_turn" per turn and a "chat"
 * event when a chat ends, "play" start/stop). */
typedef struct sim_play_out {
    int32_t item;   /* bought or searched item, -1 */
    int liked;      /* BUY: by the feeling rule */
    int visit_over; /* BUY, LEAVE, or NEXT past the last page */
    char text[400]; /* BUY: the feeling */
} sim_play_out;
int sim_play_begin(sim *s, int32_t agent, rlab_err *err);
void sim_play_end(sim *s);
int32_t sim_played(const sim *s);
/* The played agent's current page (a visit starts when none is going on). *page points into
 * the sim until the next call. ESTATE when no agent is played. */
int sim_play_page(sim *s, const int32_t **page, int *np, int *from_search, rlab_err *err);
/* act: 0..page-1 = BUY that item (arg: the person's feeling, NULL = the template), SIM_P_NEXT,
 * SIM_P_SEARCH (arg: a title), SIM_P_LEAVE. EINVAL for an index off the page, ENOTFOUND for
 * an unknown title. */
int sim_play_act(sim *s, int act, const char *arg, sim_play_out *out, rlab_err *err);
/* One chat turn with agent `with` (-1: the current partner): the person says `text`, the
 * other side answers (the language model with [SAY]/[GOODBYE] tags when the sim decides
 * with one, else the offline turn: a greeting from its memories, a suggestion, goodbye on
 * the third turn or after the person's goodbye). *reply: new string (rlab_free); *ended = 1
 * when someone said goodbye (the chat event is stored, both sides remember it). */
int sim_play_chat(sim *s, int32_t with, const char *text, char **reply, int *ended, int *by,
                  rlab_err *err);

/* ---- checkpoints ----
 * A checkpoint row (simulator_checkpoints) holds either a full image of the state or a
 * delta to the simulation's previous checkpoint row (the 8-byte words that changed since,
 * with the base round and hashes of both images). sim_checkpoint writes a full image the
 * first time it writes to a store/simulation id, after a restore, when the layout changed
 * (a rewired graph of another size), when the round was checkpointed already, and every
 * cfg.checkpoint_full checkpoints; deltas otherwise (a few % of a full image). */
/* Serialise the whole state as a full image (rlab_free the buffer). */
int sim_save_state(const sim *s, uint8_t **buf, size_t *n, rlab_err *err);
/* Restore a full image saved by a sim over the same dataset and config (also the format
 * of earlier versions). EFORMAT on mismatch, on a truncated image and on a delta (those
 * need their base: sim_restore). */
int sim_load_state(sim *s, const uint8_t *buf, size_t n, rlab_err *err);
/* Restore the checkpoint of simulation `id` at `round` from the store: its last full image
 * and the deltas after it, each checked against its recorded hashes. ENOTFOUND when the row
 * (or a base it needs) is missing, EFORMAT when a chain is broken or corrupt. */
int sim_restore(sim *s, rlab_db *db, int64_t id, int64_t round, rlab_err *err);
/* Write the checkpoint of the current round to the store (simulator_checkpoints). Inside
 * sim_step, when another round with a store writer follows, the row is stored by that
 * round's writer (a failure is then sim_step's error at the end of that round); every row
 * is in the store when sim_step returns. */
int sim_checkpoint(sim *s, rlab_err *err);

/* ---- text ---- */
/* One memory as a sentence, in the third person (prompts, the agent card). */
void sim_memory_text(const sim *s, int32_t agent, const sim_mem *m, char *buf, size_t n);
/* The same memory as the agent tells it, in the first person (interview answers). */
void sim_memory_text_me(const sim *s, int32_t agent, const sim_mem *m, char *buf, size_t n);
/* The agent's favourite genre as an answer names it: the genre of its largest believed
 * taste; the most-watched genre (all watches, the seeded past included) breaks ties. */
int32_t sim_favourite_genre(const sim *s, int32_t agent);
/* The genre with the largest watch mass (-1 when the agent watched nothing). */
int32_t sim_most_watched_genre(const sim *s, int32_t agent);
/* Profile summary ("Name, 34, F, writer; Watcher; likes Comedy, Drama"). */
void sim_profile_text(const sim *s, int32_t agent, char *buf, size_t n);

/* ---- fidelity against real users (fidelity.c) ----
 * Agents are built from real users whose histories are cut in time: the first `cut` share of
 * each user's interactions (by timestamp, ties by row) builds the agent's tastes, watched
 * list and memories (sim_profiles.keep / seed_memory); the rest is what the user did next.
 * Users with fewer than min_hist interactions are left out; the others are split by a seeded
 * draw into a fitting part (fit_share) and a reporting part. The fitted offline policy
 * learns its weights on the fitting part; every figure is measured on the reporting part.
 *   (a) discrimination (Agent4Rec): per user, up to n_pos held-out items (the first after
 *       the cut) and neg_ratio times as many items the user never interacted with (uniform,
 *       seeded), shuffled; the agent says which it would watch. Accuracy, precision, recall,
 *       F1 over all (user, item) decisions, positive = really chosen next.
 *   (b) ratings: the agent rates the same held-out items 1-5 (integers); MAE, RMSE and
 *       Spearman (average ranks for ties) against the real ratings over all pairs, and both
 *       distributions. Needs ratings in the data.
 *   (c) next-item hit: the recommender's first page (page_size items not in the kept
 *       history); the agent picks one item or leaves. Hit rate = share of pages where the
 *       agent's pick is one of the user's held-out items; the real users' hit rate is the
 *       share of pages holding at least one held-out item (what the user really chose next
 *       was on the page).
 * Policies: random (coin flips; uniform 1-5; a uniform pick among the page and leaving),
 * offline (the simulator's hand-set rules: the feeling's liked rule, 1 + 4 m rounded, the
 * page choice model of simulator.step), offline_fit (weights fitted on the fitting part:
 * logistic choice, least-squares rating, a logit page choice) and openai (prompts with
 * [WATCH] / [RATINGS] tags and the page prompt of simulator.step; a failed or unparsable
 * reply is answered by offline_fit and counted as a fallback). */
enum { SIM_FID_RANDOM, SIM_FID_OFFLINE, SIM_FID_FIT, SIM_FID_LLM, SIM_FID_NPOL };
enum { SIM_FID_NF = 5 }; /* features: 1, match, popularity, recent similarity, item mean */

typedef struct sim_fid_config {
    uint64_t seed;
    int32_t n_agents;  /* first n users (0 = all) */
    double cut;        /* share of each history the agent knows: 0.8 */
    int min_hist;      /* users with fewer interactions are left out: 10 */
    double fit_share;  /* users in the fitting part: 0.5 */
    int n_pos;         /* held-out items per user in (a) and (b): 10 */
    int neg_ratio;     /* not-chosen items per chosen one in (a): 1 */
    int page_size;     /* (c): 5 */
    int rec_pop;       /* (c) recommender: 1 = popularity of the kept rows; 0 = the model */
    rlab_model *model; /* (c) when !rec_pop: borrowed; NULL = seeded random */
    rlab_llm *llm;     /* borrowed; NULL: no openai row */
    int llm_retries;   /* re-asks after an unparsable reply: 1 */
    /* progress (may be NULL): phases done of total (the agents built, the fit, each policy) */
    void (*progress)(void *ud, int done, int total, const char *phase);
    void *progress_ud;
} sim_fid_config;

typedef struct sim_fid_result {
    int64_t pairs;                   /* (a) decisions */
    double acc, prec, rec, f1;       /* (a) */
    int64_t rated;                   /* (b) pairs */
    double mae, rmse, spearman;      /* (b) */
    int64_t dist[5];                 /* (b) the agent's ratings 1..5 */
    int64_t pages;                   /* (c) */
    double hit, buy;                 /* (c) hit rate, share of pages with a pick */
    int64_t llm_asked, llm_fallback; /* openai: decisions asked, answered by the fallback */
} sim_fid_result;

typedef struct sim_fid_report {
    int32_t users, fit_users, report_users, skipped; /* skipped: fewer than min_hist */
    int has_rating;
    sim_fid_result pol[SIM_FID_NPOL];
    int have[SIM_FID_NPOL];
    int64_t real_dist[5];                              /* (b) the real ratings of the rated pairs */
    double real_hit;                                   /* (c) */
    double w_choice[SIM_FID_NF], w_rating[SIM_FID_NF]; /* fitted weights */
    double thr;     /* the fitted choice threshold on w_choice . f */
    double fit_acc; /* (a) accuracy of the fitted choice on the fitting part */
    int64_t fit_pairs;
    char first_llm_error[320];
} sim_fid_report;

void sim_fid_config_default(sim_fid_config *c);
/* Run the protocol above on ds (borrowed). Errors EINVAL (too few users), ENOMEM, the
 * model's scoring errors, ECANCELED (cancel polled between phases and users). */
int sim_fidelity(const rlab_dataset *ds, const sim_fid_config *c, sim_cancel_fn cancel, void *cud,
                 sim_fid_report *out, rlab_err *err);
/* The history cut of the protocol: keep[r] = 1 when row r of ds->inter is known to the
 * agents (keep: ds->inter.n bytes), for training a recommender on what the agents know
 * (simulator.fidelity rec=train:<kind>). Errors ENOMEM. */
int sim_fid_keep(const rlab_dataset *ds, const sim_fid_config *c, uint8_t *keep, rlab_err *err);
/* Binary metrics of pred vs truth (1 = chosen), n decisions: accuracy, precision (0 when
 * nothing is predicted positive), recall (0 when there is no positive), F1 (0 when
 * precision + recall = 0). */
void sim_fid_binary(const uint8_t *truth, const uint8_t *pred, int64_t n, double *acc, double *prec,
                    double *rec, double *f1);
/* Rating agreement of agent vs real (n >= 2): MAE, RMSE, Spearman (NaN if a side is
 * constant). */
int sim_fid_ratings(const double *agent, const double *real, int64_t n, double *mae, double *rmse,
                    double *rho, rlab_err *err);
/* Parse a [WATCH]:: reply for n shown items into pick[n] (0/1): "1, 4" or "none".
 * 0 when it parses. */
int sim_fid_parse_watch(const char *text, int n, uint8_t *pick);
/* Parse a [RATINGS]:: reply "1:4, 2:3, ..." into r[n] (1..5): every item rated once. */
int sim_fid_parse_ratings(const char *text, int n, double *r);
const char *sim_fid_policy_name(int p);

/* ---- schema ---- */
extern const rlab_migration sim_schema[];

/* ---- internal, shared between the engine files ---- */
#ifdef SIM_INTERNAL
#include "sim_internal.h"
#endif

#endif /* RLAB_SIMULATOR_SIM_H */
