/*
 * plugins/simulator/sim_internal.h: the sim struct and the functions the engine files
 * (sim.c, memory.c, policy.c, persist.c) share. Not for the plugin commands or tests.
 */
#ifndef RLAB_SIMULATOR_SIM_INTERNAL_H
#define RLAB_SIMULATOR_SIM_INTERNAL_H

#include "sim.h"

#include "llm/llm.h"

#include <pthread.h>

/* A pending decision: filled by the round loop, answered by the offline policy or the
 * language model (policy.c). */
typedef struct sim_dec {
    int32_t agent;
    int type; /* SIM_D_* */
    int step; /* page step (0-based) */
    /* page context */
    const int32_t *page;
    int npage;
    int searched; /* a search already happened this visit */
    /* watch context (feeling) */
    int32_t item;
    /* answer */
    int choice;     /* SIM_A_*, page index / SIM_P_*, SIM_S_* */
    int32_t target; /* search item, chat partner agent, post item */
    float hours;    /* chat duration */
    int liked;      /* feeling */
    uint8_t by;     /* SIM_BY_* */
    char *text;     /* llm reply text kept for the event (feeling, post), owned */
} sim_dec;

enum { SIM_D_ACTION, SIM_D_PAGE, SIM_D_SOCIAL, SIM_D_FEEL, SIM_D_INTERVIEW };

/* One decision asked through an rlab_llm_pipe (policy.c, sim_ask_*): the prompt, how many
 * times it was sent, and where it stands. */
typedef struct sim_ask {
    char *prompt;
    int attempt;
    int state; /* SIM_ASK_* */
} sim_ask;

enum {
    SIM_ASK_WAIT = 1,     /* in flight */
    SIM_ASK_DONE,         /* decided (by the llm, or by the fallback) */
    SIM_ASK_FALLBACK,     /* asking ended without a parsed reply: sim_ask_fallback decides */
    SIM_LLM_DOWN_RUN = 16 /* failed requests in a row that mark the server down */
};

enum { SIM_NBR = 64 }; /* cached text neighbours per searched item */

/* A bounded output buffer (sim.c's JSON writer). */
typedef struct jw {
    char *p;
    size_t len, cap;
} jw;
#define jw_lit(w, lit) jw_raw((w), (lit), sizeof(lit) - 1)

struct visit_state;

/* What the last sim_checkpoint did (persist.c; read by bench/simulator): wall seconds of its
 * parts on the calling thread. A row left to the next round's writer (deferred) has its
 * encoding and insert there, not here (encode_s = row_s = 0); a small image's delta
 * (delta_stream) is encoded within its pass (encode_s = 0). */
#define SIM_HAVE_CK_STATS 1
typedef struct sim_ck_stats {
    int64_t round;
    int full, deferred;
    size_t len;      /* the full image's bytes */
    size_t bytes;    /* the row's blob (0 when deferred: encoded by the writer) */
    double pass_s;   /* the image built, or the compare pass of a delta */
    double encode_s; /* a delta's body from the marks */
    double row_s;    /* the row's insert and commit (with the wait for the previous copy) */
} sim_ck_stats;

struct sim {
    sim_config cfg;
    const rlab_dataset *ds;
    const rlab_world *world;
    rlab_model *model;   /* +1 reference, NULL = random */
    const uint8_t *keep; /* sim_new only: the history cut (sim_profiles.keep) */
    char model_name[64];
    rlab_llm *llm;
    int32_t n_items, G;
    /* items */
    float *item_genre; /* [n_items][G], rows sum to 1 (0 for items without genres) */
    int64_t *g_off;    /* [n_items + 1] genre CSR for rlab_eval_genre_entropy */
    int32_t *g_items;
    uint8_t *item_topg; /* [n_items] main genre */
    float *item_vec;    /* [n_items][SIM_DIM], L2 = 1 */
    float *genre_vec;   /* [G][SIM_DIM] */
    float kind_vec[SIM_M_KINDS][SIM_DIM];
    const char **titles; /* [n_items] borrowed from the dataset or the strings below */
    char *title_store;
    char **genre_names;  /* [G] owned */
    int32_t *attr_order; /* attributes as genres: genre g = attribute value attr_order[g] */
    int32_t *attr_map;   /* attribute value -> genre, -1 = not among the 255 kept */
    rlab_tfidf tfidf;    /* question encoder */
    float *Vt;           /* [SIM_DIM][tfidf.D] */
    float *item_pop;     /* [n_items] dataset popularity share */
    int32_t *nbr;        /* [n_items][SIM_NBR] nearest items by text vector (search pages) */
    int16_t *nbr_n;      /* [n_items] entries of nbr, -1 = not computed yet */
    /* agents */
    int32_t n;
    sim_agent *agents;
    float *taste;      /* [n][G] believed taste, sums to 1 */
    float *amax;       /* [n] max_g taste */
    float *taste_vec;  /* [n][SIM_DIM] */
    float *gcount;     /* [n][G] genre mass of all watches */
    float *recall;     /* [n][SIM_DIM] retrieved-memory vector of the current visit */
    float *chance_aff; /* [n] mean true affinity of a random item (chance level) */
    uint8_t *shown;    /* [n][shown_row] bitsets: item i of agent a shown already = bit i % 8 of
                          byte i / 8 of row a (sim_shown); the checkpoint image's layout */
    size_t shown_row;  /* bytes per agent: (n_items + 63) / 64 * 8 */
    /* follow graph: a follows fo[fo_off[a]..fo_off[a+1]); followed by fr[...] */
    int64_t *fo_off, *fr_off;
    int32_t *fo, *fr;
    float *fo_last; /* [edges] last chat time with that followee (-1e9 = never) */
    /* clock */
    int64_t round;
    double vtime, t0;
    int64_t seq; /* next event seq */
    int32_t inject[SIM_MAX_INJECT];
    int n_inject;
    int64_t inject_until; /* last round with injections */
    /* simulated interactions (for retraining and the log) */
    int32_t *x_user, *x_item;
    double *x_time;
    int64_t n_x, cap_x;
    sim_retrain_fn retrain;
    void *retrain_ud;
    /* store */
    rlab_db *db;
    int64_t run_id, id;
    /* pause */
    atomic_int pause;
    sim_stats last;
    int32_t acc_llm_calls, acc_llm_fallbacks; /* this round so far */
    int32_t acc_llm_decisions, acc_llm_err[SIM_LLM_NKINDS];
    char llm_round_first[320]; /* the first llm error of the round ("" = none) */
    int llm_fail_run;          /* failed requests in a row (pipelined rounds) */
    int llm_down; /* every request of a batch failed: the round's other decisions fall back
                     without asking (a dead server costs one batch of timeouts, not all) */
    sim_llm_trouble trouble;
    /* round scratch (allocated once) */
    int32_t *order;   /* [n] */
    int32_t *active;  /* [n] */
    uint8_t *action;  /* [n] */
    float *scores;    /* [rows][n_items], a chunk of visitors at a time (a model's scores) */
    int threads;      /* sim_par_for's threads (sim_threads_resolve) */
    int32_t par_min;  /* the round's smallest part per thread (SIM_PAR_MIN; tests lower it) */
    uint8_t *topk_bk; /* [threads][n_items] topk_bucket's buckets */
    float *rowbuf;    /* [threads][n_items] the random recommender's score rows */
    int32_t *cand;    /* [n][K] page candidates, K = page_size * (max_steps + 1) */
    int32_t K;
    rlab_query *q;
    int32_t *qbuf;     /* [n][SIM_QHIST] query histories linearised */
    int32_t *mentions; /* [n_items] this round */
    int32_t *expo;     /* exposures this round, [cap][page_size] */
    int64_t n_expo, cap_expo;
    int32_t *expo_agent; /* [cap_expo] the agent each exposure row was shown to */
    int32_t acc_swapped; /* items swapped onto pages this round (swap_k) */
    float *expo_gmass;   /* [n][G] scratch of the per-agent exposure entropy (kept zero) */
    int32_t *watch_list;
    sim_dec *decs;              /* [n] */
    int32_t *visit_pos;         /* [n] next candidate index */
    struct visit_state *visits; /* [n] recommender visits of the round */
    char *visit_buf;            /* [n][visit_cap] their event payloads */
    size_t visit_cap;
    sim_dec *vdecs; /* [n] page / feeling decisions */
    int32_t *vwho;  /* [n] */
    char *buf;      /* payload buffer */
    size_t buf_cap;
    rlab_db_stmt *st_stats, *st_ckpt;
    /* role play (sim_play_*): the agent a person decides for, -1 = none */
    int32_t played;
    int32_t play_page[SIM_MAX_PAGE];
    int play_np, play_in_visit, play_from_search, play_searched, play_steps;
    char play_visit[2048]; /* the visit event's steps so far */
    size_t play_visit_len;
    int32_t play_chat_with, play_said, play_heard; /* partner; first titles each side named */
    int play_chat_turns;
    char play_chat[4096]; /* the conversation so far ("[name]: text" lines) */
    /* incremental checkpoints (persist.c): the image of the last checkpoint written, to
     * which the next one is a delta when it goes to the same store and simulation id */
    uint8_t *ck_prev, *ck_out;         /* [ck_cap] that image, [ck_out_cap] an encoded delta */
    size_t ck_len, ck_cap, ck_out_cap; /* ck_len: length of ck_prev, 0 = none */
    uint64_t ck_prev_hash;
    int64_t ck_prev_round, ck_id;
    rlab_db *ck_db;
    int ck_since_full; /* deltas written since the last full image */
    /* a checkpoint's row left to the next round's writer (sim_step sets ck_defer; the row is
     * stored by sim_ck_flush, a delta's body encoded there from the marks ck_pend_dirty) */
    int ck_defer, ck_pend;
    int ck_pend_rc; /* sim_ck_flush's result on the writer thread */
    int64_t ck_pend_round;
    size_t ck_pend_n; /* the blob's length; 0 for a delta encoded by sim_ck_flush */
    uint64_t *ck_pend_dirty;
    char *ck_pend_model;
    rlab_err ck_pend_err;
    sim_ck_stats ck_last; /* the last sim_checkpoint's measurements */
    /* MPI partition (shard.c): this rank owns and steps agents [part_lo, part_hi) */
    int part; /* 1: partitioned rounds (cfg.partition) */
    int32_t part_lo, part_hi;
    struct sim_shard *sh;  /* the round's exchange buffers */
    struct sim_writer *wr; /* the round's store writer (sim.c wr_open), NULL = none */
};

/* ---- rng ---- */
enum {
    SIM_PH_ACTIVE = 1,
    SIM_PH_ACTION,
    SIM_PH_PAGE,
    SIM_PH_SOCIAL,
    SIM_PH_FEEL,
    SIM_PH_MEM,
    SIM_PH_INTERVIEW,
    SIM_PH_REWIRE,
    SIM_PH_RANDOMREC,
    SIM_PH_FIDELITY
};
void sim_rng(const sim *s, int phase, int64_t round, int32_t agent, int32_t step, rlab_rng *r);

/* ---- helpers (sim.c) ---- */
static inline const uint8_t *sim_shown_row(const sim *s, int32_t a)
{
    return s->shown + (size_t)a * s->shown_row;
}
static inline int sim_shown_bit(const uint8_t *row, int32_t i)
{
    return (row[i >> 3] >> (i & 7)) & 1;
}
static inline int sim_shown(const sim *s, int32_t a, int32_t i)
{
    return sim_shown_bit(sim_shown_row(s, a), i);
}
static inline void sim_show(sim *s, int32_t a, int32_t i)
{
    s->shown[(size_t)a * s->shown_row + (size_t)(i >> 3)] |= (uint8_t)(1u << (i & 7));
}
float sim_affinity(const sim *s, int32_t a, int32_t item);      /* believed taste . genres */
float sim_true_affinity(const sim *s, int32_t a, int32_t item); /* world truth or believed */
int sim_has_watched(const sim_agent *ag, int32_t item);
int sim_heard_index(const sim_agent *ag, int32_t item);
int32_t sim_best_heard(const sim *s, int32_t a);        /* most-mentioned heard, unwatched; -1 */
int32_t sim_find_title(const sim *s, const char *text); /* item whose title is in text */
void sim_hear(sim *s, int32_t a, int32_t item);
void sim_emit(sim *s, int32_t agent, const char *kind, const char *payload);
/* Replace the follow graph by the edge list (src follows dst). */
int sim_set_graph_edges(sim *s, const int32_t *src, const int32_t *dst, int64_t m, rlab_err *err);
/* Recompute amax / taste vectors after the tastes changed (checkpoint restore). */
void sim_refresh_tastes(sim *s);
/* Vector of a free text (interview question) in the item space; out: [SIM_DIM]. */
void sim_question_vec(const sim *s, const char *q, float *out);
/* JSON string escape of src appended to dst (buffer of n, NUL-terminated). */
void sim_json_str(char *dst, size_t n, const char *src);

/* The k best of n scores (not NaN, mask bit clear: sim_shown_bit), best first, ties to the
 * lower index, -1 padded: how 0 = the heap (the reference), 1 = by buckets (score_visitors'),
 * 2 = by buckets for scores in [0, 1). mask: a bitset padded to whole 8-byte words, as the
 * shown rows are; bk: [n] scratch. For tests. */
void sim_topk(const float *sc, int32_t n, const uint8_t *mask, int k, int32_t *out, uint8_t *bk,
              int how);

/* The first recommended page of each agent (the recommender's top page_size items not shown
 * to it yet, injected items first), as a visit of the next round would see it: pages
 * [n][page_size], np[n] their sizes. */
int sim_first_pages(sim *s, const int32_t *agents, int32_t n, int32_t *pages, int *np,
                    rlab_err *err);

/* ---- memory (memory.c) ---- */
/* An observation: passes the sensory threshold (raw importance >= 7), then the short-term
 * memory (enhancement, promotion with an insight into long-term memory, reflection,
 * forgetting). */
void sim_observe(sim *s, int32_t a, int kind, int32_t item, int32_t other, int aux);
/* Importance (raw 1..10) of an observation (offline rule). */
int sim_importance(const sim *s, int32_t a, int kind, int32_t item, int aux);
/* Retrieve up to k long-term memories for query vector qv (NULL = the agent's taste
 * vector); updates their access time. Returns the count; idx receives LTM slots. */
int sim_retrieve(sim *s, int32_t a, const float *qv, int k, int *idx);
const float *sim_mem_vec(const sim *s, const sim_mem *m);

/* ---- decisions (policy.c) ---- */
void sim_policy(sim *s, sim_dec *d);                      /* offline */
int sim_decide(sim *s, sim_dec *d, int n, rlab_err *err); /* offline or llm */
/* sim_decide over MPI ranks: each decides its shard, all get every answer (shard.c) */
int sim_decide_all(sim *s, sim_dec *d, int n, rlab_err *err);
int sim_register_policies(sim *s, rlab_llm *llm, rlab_err *err);
/* Pipelined decisions (a round's visits and social actions, sim.c): start asks d through
 * the pipe under `tag` (q->state WAIT), or marks it FALLBACK when the server is down;
 * reply handles the pipe's result for that tag: DONE when it parsed, WAIT again when it was
 * re-asked (llm_retries), FALLBACK otherwise (RLAB_ECANCELED when the request was
 * cancelled). fallback decides a FALLBACK decision with the offline policy; the caller picks
 * the moment (a social decision's fallback reads who is watching, known after the visits).
 * Each depends only on d's agent's own state, so the order replies arrive in does not
 * change any decision. clear frees the prompt. */
int sim_ask_start(sim *s, rlab_llm_pipe *p, sim_dec *d, sim_ask *q, int64_t tag, rlab_err *err);
int sim_ask_reply(sim *s, rlab_llm_pipe *p, sim_dec *d, sim_ask *q, int64_t tag,
                  const rlab_llm_result *r, rlab_err *err);
void sim_ask_fallback(sim *s, sim_dec *d, sim_ask *q);
void sim_ask_clear(sim_ask *q);
/* The RecAgent prompt header of agent a (profile, time, heard / watched, retrieved
 * memories), appended to a new string (rlab_free; NULL on ENOMEM). */
char *sim_prompt_header(sim *s, int32_t a);
/* Prompt text for a decision (rlab_free). */
char *sim_prompt(sim *s, const sim_dec *d);
/* Parse a reply into d; 0 when it parses. */
int sim_parse(sim *s, sim_dec *d, const char *text);
/* Tagged reply the offline policy gives (same format the prompt asks for). */
void sim_policy_reply(sim *s, const sim_dec *d, char *buf, size_t n);
/* Offline interview answer. */
char *sim_offline_answer(sim *s, int32_t a, const char *question);

/* ---- partitioned rounds (shard.c) ----
 * With cfg.partition on (the default under mpirun with more than one rank), rank r owns the
 * agents [part_lo, part_hi) (rlab_mpi_shard) and steps only them: their activity draws,
 * decisions, visits and social actions. What an action does to an agent of another rank (a
 * chat partner, a post's followers) is a message delivered at the round's end, to every
 * agent in the activity order of the senders (MPI_Alltoallv); a chat reads its partner's
 * titles as they stood after the visits (asked of the owner) and who is watching from a
 * bitmap exchanged after the visits. The round's events go to rank 0 in the one-process
 * order, watches and exposure rows to every rank in that order, counters are summed. One
 * process with partition=on runs the same code as a single owner: the same events. */
enum { SIM_EV_VISIT = 1, SIM_EV_NOTHING, SIM_EV_SOCIAL };
int sim_shard_setup(sim *s, rlab_err *err);
void sim_shard_free(sim *s);
void sim_shard_round_begin(sim *s);      /* after the activity order is drawn */
void sim_shard_round_done(sim *s);       /* the round ended (or failed): events written again */
void sim_shard_phase(sim *s, int phase); /* SIM_EV_* of the events that follow */
void sim_shard_step(sim *s, int step);   /* page step of the watches that follow */
int sim_shard_cap(sim *s, int32_t *na, rlab_err *err);
int sim_shard_buffering(const sim *s);
void sim_shard_event(sim *s, int32_t agent, const char *kind, const char *payload);
void sim_shard_watch(sim *s, int32_t a, int32_t item);
void sim_shard_expo(sim *s, int64_t row, int32_t a, int step);
int sim_owner(const sim *s, int32_t a); /* rank that owns agent a */
/* Agent b is watching (in partitioned rounds: the exchanged bitmap). */
int sim_watching(const sim *s, int32_t b);
int sim_shard_watching(sim *s, rlab_err *err);
int sim_shard_cards(sim *s, const int32_t *b, int n, int (*titles)(const sim *, int32_t, int32_t *),
                    int32_t (*cards)[3], rlab_err *err);
void sim_shard_msg(sim *s, int type, int32_t to, int32_t from, int32_t sub, const int32_t *items,
                   int n, int32_t mem, double hours);
enum { SIM_MSG_CHAT = 1, SIM_MSG_HEARD };
int sim_shard_deliver(sim *s, rlab_err *err);
int sim_shard_round_end(sim *s, sim_stats *st, double *sat, double *chance, double *hsum,
                        int64_t *hn, rlab_err *err);
int sim_shard_sync(sim *s, int root, rlab_err *err);
/* The shared part of a watch (interaction log, satisfaction sums; sim.c). */
void sim_watch_global(sim *s, int32_t a, int32_t item, double *sat, double *chance);
/* ---- threads (par.c) ---- */
/* The round's parts are at least this many agents per thread (a part is then ~1 ms of work
 * or more against the ~20-50 us a thread costs to start and join on a loaded machine). */
enum { SIM_PAR_MIN = 1024 };
/* Work on agents (or decisions) [lo, hi) as thread tid (0 = the caller). */
typedef void (*sim_par_fn)(sim *s, void *ctx, int32_t lo, int32_t hi, int tid);
/* fn over [0, n) cut into s->threads contiguous ranges of at least min_part (fewer threads
 * for small n), run at once; returns when all are done. fn must write only the slots of its
 * range and read nothing another range writes. */
void sim_par_for(sim *s, int32_t n, int32_t min_part, sim_par_fn fn, void *ctx);
/* sim_par_for without the caller: every range on its own thread, started by sim_par_start
 * (which returns at once; a call smaller than min_part runs there, in the caller), joined by
 * sim_par_wait, so the caller does other work meanwhile (the visits' events of the previous
 * chunk, run_visits_par). The same contract on fn as sim_par_for; the caller must not touch
 * what the ranges write until sim_par_wait returns. */
typedef struct par_part {
    sim *s;
    void *ctx;
    sim_par_fn fn;
    int32_t lo, hi;
    int tid;
} par_part;
typedef struct sim_par_job {
    par_part part[SIM_MAX_THREADS];
    pthread_t th[SIM_MAX_THREADS];
    int started[SIM_MAX_THREADS];
    int T;
} sim_par_job;
void sim_par_start(sim *s, sim_par_job *j, int32_t n, int32_t min_part, sim_par_fn fn, void *ctx);
void sim_par_wait(sim_par_job *j);
/* cfg->threads, or the default (the machine's cores, one under MPI), in 1..SIM_MAX_THREADS */
int sim_threads_resolve(const sim_config *cfg);

/* ---- persistence (persist.c) ---- */
/* One section of a checkpoint's full image (measurements: bench/simulator). */
typedef struct sim_ck_section {
    const char *name;
    size_t off, len; /* bytes of the image */
} sim_ck_section;
enum { SIM_CK_NSECT = 8 };
/* The sections of the current state's image, in order (SIM_CK_NSECT of them). */
void sim_ck_sections(const sim *s, sim_ck_section sec[SIM_CK_NSECT]);
/* The body of a full image without its zero words ("RLSIMCK3", after its header) for any
 * image of len bytes (a multiple of 8), as sim_checkpoint encodes it: into *body
 * (rlab_free) of *n bytes; and back: the image of len bytes from a body (-1 when the body
 * is malformed or does not fit len). For tests. */
int sim_ck_zencode(const uint8_t *img, size_t len, uint8_t **body, size_t *n, rlab_err *err);
int sim_ck_zdecode(const uint8_t *body, size_t n, uint8_t *img, size_t len);
int sim_write_stats(sim *s, rlab_err *err);
void sim_store_detach(sim *s);
/* Forget the last checkpoint image (the next checkpoint is a full image). */
void sim_ck_reset(sim *s);
/* Free the checkpoint buffers. */
void sim_ck_free(sim *s);
/* Store the pending checkpoint row, if any (RLAB_OK when none); on failure the last image is
 * no base for a delta. On the round's writer thread or the main thread. */
int sim_ck_flush(sim *s, rlab_err *err);

#endif
