/*
 * plugins/crs/macrs.h: MACRS-style multi-agent conversational recommendation (issue 19) and
 * the user simulator every CRS here is measured with.
 *
 * The world: the items of a dataset with their attribute values, taken from its item features
 * (every TOKEN column with 2..64 values and TOKEN_SEQ column with 2..4096: single-valued
 * columns with more are identifier-like, release dates or URLs; the crs.prepare catalogue's genres
 * and decade, MovieLens-100K's genres, the Amazon "attributes" = brand + categories) plus a
 * "decade" derived from a year in the title or release date when the data has none.
 *
 * One dialogue (macrs_episode): the simulated user holds a target item. Each turn the user
 * speaks, the CRS updates its user-preference state from the text (information-level
 * reflection), its three responders propose a reply (ask, recommend, chit-chat), the planner
 * picks one, and the user answers. A failed recommendation triggers the strategy-level
 * reflection. At the last turn the CRS gives a top-10 list. Policies:
 *   MACRS_P_MACRS   the planner's scored choice between the three responders (below)
 *   MACRS_P_ALWAYS  single agent: recommend every turn (same state, same recommender)
 *   MACRS_P_ASKREC  ask `ask_first` information-gain questions, then recommend every turn
 *   MACRS_P_MODEL   the recommender model alone, reading the dialogue text (query.context):
 *                   recommend its top item not yet rejected every turn (UniCRS as a CRS)
 * Scores the recommender gives (any registered rlab_model, or popularity without one) are
 * standardised over the catalogue and combined with the state: + match of each wanted value,
 * - each unwanted one; items with an unwanted value, without a wanted one, or rejected are
 * out of the candidate set C. The belief over C is softmax(score).
 *
 * The planner (documented choice): score(recommend) = ln(p_top / tau) with p_top the belief
 * of the best candidate; score(ask) = IG - g, the information gain (bits) of the best
 * yes/no attribute question over the belief minus a floor g = 0.1; score(chit-chat) =
 * H(q) - g - 0.05, q the belief's distribution of the value the user would volunteer after
 * chit-chat (uniform over each candidate's unknown values: the CRS cannot tell which one).
 * Highest score wins (ties: recommend, then ask); the last turn is always the top-10 list. In
 * a chat with a person (macrs_chat), a turn answered without anything the CRS knows (no value,
 * no title, no yes/no to its question, no "no" to its recommendation) takes that act on that
 * value / item out of the next turn's choice: a person, unlike the simulated user, may let a
 * turn pass, and the same turn again would repeat the same words. With
 * planner=llm (online) MACRS's planner prompt picks the act instead when its reply names one.
 * tau starts
 * at 0.35; the strategy reflection after a failure raises it by 0.15 (the planner's lesson:
 * "require more evidence"), tells the ask responder to prefer the unknown values of the
 * rejected item (+0.15 bits), and the recommend responder to avoid items sharing them
 * (-0.5 per shared value still unknown).
 *
 * The user simulator (template or LLM): answers yes/no questions truthfully from the target's
 * values, reveals the next unrevealed target value on chit-chat (and in its opening line),
 * accepts only the target, leaves after max_turns turns.
 */
#ifndef RLAB_CRS_MACRS_H
#define RLAB_CRS_MACRS_H

#include "host/plugin.h"
#include "llm/llm.h"

#include <stdint.h>

enum { MACRS_P_MACRS = 0, MACRS_P_ALWAYS, MACRS_P_ASKREC, MACRS_P_MODEL, MACRS_NP };
extern const char *const macrs_policy_names[MACRS_NP + 1];
enum { MACRS_ACT_ASK = 0, MACRS_ACT_REC, MACRS_ACT_CHAT, MACRS_ACT_LIST, MACRS_NACT };
extern const char *const macrs_act_names[MACRS_NACT];

typedef struct macrs_world {
    int32_t n_items, n_vals;
    int n_attr;
    char attr[8][64];   /* attribute names ("genres", "decade") */
    char **val;         /* [n_vals] value text */
    int *val_attr;      /* [n_vals] */
    int64_t *off;       /* [n_items + 1] */
    int32_t *iv;        /* item values, sorted per item */
    float *prior;       /* [n_items] log(1 + interactions) */
    const char **title; /* [n_items] borrowed from the dataset (title feature or id) */
} macrs_world;

/* The world of dataset ds (borrowed: titles point into it). RLAB_EINVAL when its items have
 * no usable attribute. */
int macrs_world_build(const rlab_dataset *ds, macrs_world *w, rlab_err *err);
void macrs_world_clear(macrs_world *w);

typedef struct macrs_opts {
    int policy, max_turns, ask_first;
    int no_strategy;       /* ablation: no strategy-level reflection (the rejected item is still
                              excluded; no hints, tau stays) */
    const rlab_model *rec; /* may be NULL: popularity */
    int32_t user;          /* the simulated user's index in rec's dataset, -1 */
    const int32_t *hist;   /* the user's items before the target (query.hist), may be NULL */
    int32_t n_hist;
    rlab_llm *llm;      /* system responders' text (NULL or offline: templates) */
    int llm_planner;    /* with llm: the planner's act from the LLM (fallback: scored) */
    rlab_llm *user_llm; /* the simulated user's text (NULL: templates) */
} macrs_opts;

/* One turn as stored / shown. */
typedef struct macrs_turn {
    char role[8]; /* "user" / "system" */
    char *text;
    char *extra; /* JSON: act, scores, rejected proposals, state (system turns) */
} macrs_turn;

typedef struct macrs_result {
    int success, hit, turns; /* accepted before the last turn; target recommended at all */
    int n_turns, cap;
    macrs_turn *t;
} macrs_result;

/* A dialogue about target (an item with values) under o into res (cleared first; free with
 * macrs_result_clear). Deterministic offline (no random choice anywhere). Errors:
 * RLAB_EINVAL (target outside the catalogue), RLAB_ENOMEM, the recommender's. */
int macrs_episode(const macrs_world *w, int32_t target, const macrs_opts *o, macrs_result *res,
                  rlab_err *err);
void macrs_result_clear(macrs_result *r);

/* ---- interactive (crs.chat) --------------------------------------------------------------- */
/* A chat with a person: the same agents without a simulator. macrs_chat_turn takes the
 * person's utterance (information-level reflection; "no" after a recommendation rejects it:
 * strategy-level reflection), appends the user turn and the system's turn to res. */
typedef struct macrs_chat macrs_chat;
macrs_chat *macrs_chat_new(const macrs_world *w, const macrs_opts *o, rlab_err *err);
void macrs_chat_free(macrs_chat *c);
/* One user utterance -> the system's turn appended to res (text, extra). */
int macrs_chat_turn(macrs_chat *c, const char *user_text, macrs_result *res, rlab_err *err);
/* An earlier turn replayed from the store: the person's utterance and the system's recorded
 * text. The turn is decided again without the language model (its decisions never depend on
 * the responders' wording: they only rephrase the drafts) and the recorded text, not the
 * draft, goes into the dialogue the recommender and the later prompts read; so a chat with
 * the openai backend continues from the same state without asking the server again. */
int macrs_chat_replay(macrs_chat *c, const char *user_text, const char *system_text,
                      macrs_result *res, rlab_err *err);

/* Offline policy of the LLM tasks "macrs.ask", "macrs.recommend", "macrs.chit-chat": the
 * responder's draft (req->ctx, a string), so both backends share one code path. */
int macrs_draft_policy(const rlab_llm_req *req, rlab_rng *rng, rlab_llm_out *out, void *ud,
                       rlab_err *err);

int crs_simulate_run(rlab_ctx *ctx, const rlab_args *args);
int crs_chat_run(rlab_ctx *ctx, const rlab_args *args);
int crs_replay_run(rlab_ctx *ctx, const rlab_args *args);
extern const rlab_arg crs_simulate_args[], crs_chat_args[], crs_replay_args[];

#endif /* RLAB_CRS_MACRS_H */
