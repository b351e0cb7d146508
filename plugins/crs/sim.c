/*
 * plugins/crs/sim.c: the MACRS commands (macrs.h).
 *
 *   crs.simulate data=D [rec=M] [policies=macrs,always,askrec,model] [targets=200] [seed=1]
 *                [turns=5] [ask_first=2] [user=template|llm] [backend=offline|openai]
 *       every policy talks with the same simulated users about the same seeded targets;
 *       table "simulate": success rate, average turns, hit ratio per policy; every dialogue
 *       a conversation of the store's `dialogues` table (conversation = target number, extra
 *       JSON per turn: the act, the planner's scores, the rejected proposals, the state)
 *   crs.chat data=D [rec=M] [model=macrs] [session=RUN] text...
 *       one turn of a chat with a person: the act chosen, the proposals the planner rejected,
 *       the preference state; stored; session=RUN continues a chat (its earlier user turns
 *       are replayed from the store, so it works in a new process too)
 *   crs.replay run=R [conversation=C]
 *       a stored dialogue (simulated or a chat) turn by turn from the store
 */
#include "macrs.h"
#include "crs.h"
#include "data/split.h"
#include "model/model.h"
#include "store/store.h"

#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const backend_names[] = {"offline", "openai", NULL};
static const char *const user_names[] = {"template", "llm", NULL};
static const char *const planner_names[] = {"scored", "llm", NULL};

#define LLM_ARGS_MACRS                                                                             \
    {.name = "backend",                                                                            \
     .type = RLAB_ARG_CHOICE,                                                                      \
     .def = "offline",                                                                             \
     .choices = backend_names,                                                                     \
     .help = "language backend of the CRS responders (offline: templates)"},                       \
        {.name = "llm_url",                                                                        \
         .type = RLAB_ARG_STRING,                                                                  \
         .help = "openai: base URL (default $RECLAB_LLM_BASE_URL)"},                               \
        {.name = "llm_model",                                                                      \
         .type = RLAB_ARG_STRING,                                                                  \
         .help = "openai: model (default $RECLAB_LLM_MODEL)"},                                     \
    {                                                                                              \
        .name = "llm_timeout", .type = RLAB_ARG_FLOAT, .def = "60", .min = 0.1,                    \
        .flags = RLAB_ARGF_MIN, .help = "openai: seconds per attempt"                              \
    }

const rlab_arg crs_simulate_args[] = {
    {.name = "data",
     .type = RLAB_ARG_DATASET,
     .flags = RLAB_ARGF_REQUIRED,
     .help = "items with attributes (a crs.prepare catalogue, ML-100K, Amazon + attributes)"},
    {.name = "rec",
     .type = RLAB_ARG_MODEL,
     .help = "the recommender of the recommend responder (unicrs, sasrec, bprmf...); "
             "default: popularity"},
    {.name = "policies",
     .type = RLAB_ARG_STRING,
     .def = "",
     .help = "comma-separated: macrs, always, askrec, model (default: all that apply)"},
    {.name = "targets",
     .type = RLAB_ARG_INT,
     .def = "200",
     .min = 1,
     .max = 1000000,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
     .help = "simulated users (one target each)"},
    {.name = "seed",
     .type = RLAB_ARG_INT,
     .def = "1",
     .flags = RLAB_ARGF_INT64,
     .help = "seed of the target sample"},
    {.name = "turns",
     .type = RLAB_ARG_INT,
     .def = "5",
     .min = 1,
     .max = 100,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
     .help = "the user leaves after this many turns (the last one is the top-10 list)"},
    {.name = "ask_first",
     .type = RLAB_ARG_INT,
     .def = "2",
     .min = 0,
     .max = 100,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
     .help = "askrec: questions before recommending"},
    {.name = "user",
     .type = RLAB_ARG_CHOICE,
     .def = "template",
     .choices = user_names,
     .help = "the simulated user's words: templates, or the LLM of backend= (same decisions)"},
    {.name = "store",
     .type = RLAB_ARG_BOOL,
     .def = "true",
     .help = "store every dialogue in the `dialogues` table"},
    {.name = "strategy",
     .type = RLAB_ARG_BOOL,
     .def = "true",
     .help = "macrs: strategy-level reflection (false: an ablation)"},
    {.name = "planner",
     .type = RLAB_ARG_CHOICE,
     .def = "scored",
     .choices = planner_names,
     .help = "macrs: the scored choice, or the LLM of backend=openai (scored when unusable)"},
    LLM_ARGS_MACRS,
    {0}};

const rlab_arg crs_chat_args[] = {
    {.name = "text",
     .type = RLAB_ARG_STRING,
     .def = "",
     .flags = RLAB_ARGF_REST,
     .help = "what you say"},
    {.name = "data",
     .type = RLAB_ARG_DATASET,
     .help = "items with attributes (new chat; default: rec='s dataset, else demo)"},
    {.name = "model",
     .type = RLAB_ARG_STRING,
     .def = "macrs",
     .help = "the CRS: macrs, always, askrec, or a registered model (e.g. unicrs) alone"},
    {.name = "rec", .type = RLAB_ARG_MODEL, .help = "the recommender (default: popularity)"},
    {.name = "session",
     .type = RLAB_ARG_INT,
     .def = "0",
     .min = 0,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_INT64,
     .help = "continue the chat started by this run (0: a new chat)"},
    LLM_ARGS_MACRS,
    {0}};

const rlab_arg crs_replay_args[] = {
    {.name = "run",
     .type = RLAB_ARG_INT,
     .flags = RLAB_ARGF_REQUIRED | RLAB_ARGF_INT64,
     .help = "the run that stored the dialogue (crs.simulate, crs.chat)"},
    {.name = "conversation",
     .type = RLAB_ARG_INT,
     .def = "0",
     .flags = RLAB_ARGF_INT64,
     .help = "its conversation number"},
    {0}};

/* ---- the language backend ----------------------------------------------------------------- */

/* Offline policy of "macrs.user": the templates' words (passed in the prompt's last line). */
static int user_policy(const rlab_llm_req *req, rlab_rng *rng, rlab_llm_out *out, void *ud,
                       rlab_err *err)
{
    (void)rng;
    (void)ud;
    (void)err;
    const char *p = strstr(req->msgs[req->n_msgs - 1].content, "What you mean to say: ");
    char buf[600] = "";
    if (p) {
        p += strlen("What you mean to say: ");
        size_t n = strcspn(p, "\n");
        snprintf(buf, sizeof buf, "%.*s", (int)(n < sizeof buf - 1 ? n : sizeof buf - 1), p);
    }
    return rlab_llm_out_puts(out, buf);
}

/* The language backend's settings: from the command's arguments, or (crs.chat session=N)
 * those the chat was started with where the continuation does not give them. */
typedef struct llm_set {
    int openai;
    char url[256], model[128];
    double timeout;
} llm_set;

static void llm_set_args(llm_set *l, const rlab_args *args, int only_given)
{
    if (!only_given || rlab_args_given(args, "backend"))
        l->openai = rlab_args_choice(args, "backend") == 1;
    const char *url = rlab_args_str(args, "llm_url"), *model = rlab_args_str(args, "llm_model");
    if (!only_given || rlab_args_given(args, "llm_url"))
        snprintf(l->url, sizeof l->url, "%s", url ? url : "");
    if (!only_given || rlab_args_given(args, "llm_model"))
        snprintf(l->model, sizeof l->model, "%s", model ? model : "");
    if (!only_given || rlab_args_given(args, "llm_timeout"))
        l->timeout = rlab_args_float(args, "llm_timeout");
}

static rlab_llm *make_llm_set(rlab_ctx *ctx, const llm_set *l)
{
    rlab_llm_config c = {.backend = l->openai ? "openai" : "offline",
                         .base_url = l->url[0] ? l->url : NULL,
                         .model = l->model[0] ? l->model : NULL,
                         .timeout = l->timeout,
                         .max_attempts = 2};
    rlab_llm *llm = rlab_llm_new(&c, rlab_ctx_err(ctx));
    if (llm &&
        (rlab_llm_register(llm, "macrs.ask", macrs_draft_policy, NULL, rlab_ctx_err(ctx)) ||
         rlab_llm_register(llm, "macrs.recommend", macrs_draft_policy, NULL, rlab_ctx_err(ctx)) ||
         rlab_llm_register(llm, "macrs.chit-chat", macrs_draft_policy, NULL, rlab_ctx_err(ctx)) ||
         rlab_llm_register(llm, "macrs.user", user_policy, NULL, rlab_ctx_err(ctx)))) {
        rlab_llm_free(llm);
        return NULL;
    }
    if (llm && l->openai) {
        char d[256];
        rlab_llm_describe(llm, d, sizeof d);
        rlab_ctx_printf(ctx, "language backend: %s", d);
    }
    return llm;
}

static rlab_llm *make_llm(rlab_ctx *ctx, const rlab_args *args)
{
    llm_set l = {0};
    llm_set_args(&l, args, 0);
    return make_llm_set(ctx, &l);
}

/* ---- crs.simulate --------------------------------------------------------------------------- */

typedef struct target {
    int32_t item, user;
    int64_t h0, nh; /* the user's items before the target: seq.items[h0 .. h0 + nh) */
} target;

static int store_dialogue(rlab_db *db, int64_t run, int64_t conv, const macrs_result *r,
                          rlab_err *err)
{
    int rc = RLAB_OK;
    for (int i = 0; rc == RLAB_OK && i < r->n_turns; i++)
        rc = rlab_db_dialogue(db, run, conv, i, r->t[i].role, r->t[i].text, r->t[i].extra, err);
    return rc;
}

int crs_simulate_run(rlab_ctx *ctx, const rlab_args *args)
{
    const rlab_dataset *ds = rlab_ctx_dataset(ctx, rlab_args_str(args, "data"));
    if (!ds)
        return rlab_ctx_err(ctx)->code ? rlab_ctx_err(ctx)->code : RLAB_ENOTFOUND;
    const char *rn = rlab_args_str(args, "rec");
    const rlab_model *rec = rn && *rn ? rlab_ctx_model(ctx, rn) : NULL;
    if (rn && *rn && !rec)
        return rlab_ctx_err(ctx)->code;
    if (rec && rec->n_items != ds->items.n)
        return rlab_ctx_errorf(ctx, RLAB_EINVAL,
                               "model '%s' ranks %d items, dataset '%s' has %d: not its items",
                               rec->name, rec->n_items, ds->name, ds->items.n);
    /* the policies */
    int use[MACRS_NP] = {0}, n_use = 0;
    const char *pl = rlab_args_str(args, "policies");
    if (!pl || !*pl) {
        use[MACRS_P_MACRS] = use[MACRS_P_ALWAYS] = use[MACRS_P_ASKREC] = 1;
        use[MACRS_P_MODEL] = rec != NULL;
    } else {
        for (const char *p = pl; *p;) {
            size_t l = strcspn(p, ",");
            int found = 0;
            for (int k = 0; k < MACRS_NP; k++)
                if (strlen(macrs_policy_names[k]) == l && strncmp(p, macrs_policy_names[k], l) == 0)
                    use[k] = found = 1;
            if (!found)
                return rlab_ctx_errorf(ctx, RLAB_EINVAL,
                                       "unknown policy '%.*s' (macrs, always, askrec, model)",
                                       (int)l, p);
            p += l + (p[l] == ',');
        }
    }
    if (use[MACRS_P_MODEL] && !rec)
        return rlab_ctx_errorf(ctx, RLAB_EINVAL, "policy 'model' needs a recommender: rec=...");
    for (int k = 0; k < MACRS_NP; k++)
        n_use += use[k];
    macrs_world w;
    int rc = macrs_world_build(ds, &w, rlab_ctx_err(ctx));
    if (rc)
        return rc;
    /* the targets: users' last items (their earlier items as the query history) when enough
     * users have 3+ interactions, else items with 2+ attribute values; a seeded sample */
    const int N = (int)rlab_args_int(args, "targets");
    const uint64_t seed = (uint64_t)rlab_args_int(args, "seed");
    rlab_seqs seq = {0};
    target *tg = rlab_calloc((size_t)N, sizeof *tg);
    int32_t *pool = rlab_malloc(((size_t)ds->users.n + (size_t)ds->items.n + 1) * sizeof *pool);
    int32_t npool = 0, by_user = 0;
    if (!tg || !pool)
        rc = rlab_ctx_errorf(ctx, RLAB_ENOMEM, "out of memory");
    if (!rc && rlab_seqs_from_inter(&ds->inter, ds->users.n, &seq, rlab_ctx_err(ctx)) == RLAB_OK) {
        for (int32_t u = 0; u < seq.n_users; u++) {
            int64_t n = seq.off[u + 1] - seq.off[u];
            int32_t last = n ? seq.items[seq.off[u + 1] - 1] : -1;
            if (n >= 3 && w.off[last + 1] - w.off[last] >= 2)
                pool[npool++] = u;
        }
        by_user = npool >= N;
    }
    if (!rc && !by_user) {
        npool = 0;
        for (int32_t i = 0; i < w.n_items; i++)
            if (w.off[i + 1] - w.off[i] >= 2)
                pool[npool++] = i;
    }
    if (!rc && npool == 0)
        rc = rlab_ctx_errorf(ctx, RLAB_EINVAL,
                             "no item of '%s' has two attribute values to talk about", ds->name);
    if (!rc) {
        rlab_rng rng;
        rlab_rng_seed(&rng, seed);
        rlab_rng_shuffle_i32(&rng, pool, (size_t)npool);
        for (int i = 0; i < N; i++) {
            int32_t x = pool[i % npool];
            if (by_user) {
                tg[i].user = x;
                tg[i].h0 = seq.off[x];
                tg[i].nh = seq.off[x + 1] - seq.off[x] - 1;
                tg[i].item = seq.items[seq.off[x + 1] - 1];
            } else {
                tg[i].user = -1;
                tg[i].item = x;
            }
        }
        rlab_ctx_printf(ctx,
                        "%d targets (seed %llu): %s; %d attribute values over %d attributes; "
                        "recommender: %s",
                        N, (unsigned long long)seed,
                        by_user ? "users' last items, their earlier items as history"
                                : "items with 2+ attribute values",
                        (int)w.n_vals, w.n_attr, rec ? rec->name : "popularity");
    }
    rlab_llm *llm = rc ? NULL : make_llm(ctx, args);
    if (!rc && !llm)
        rc = rlab_ctx_err(ctx)->code ? rlab_ctx_err(ctx)->code : RLAB_ENOMEM;
    /* the user's index and history mean something to rec only on the dataset it was trained
     * on (same vocabularies) */
    const int same = rec && strcmp(rec->dataset, ds->name) == 0 && rec->n_users == ds->users.n;
    const int llm_user = rlab_args_choice(args, "user") == 1;
    const int openai = rlab_args_choice(args, "backend") == 1;
    rlab_db *db = rlab_args_bool(args, "store") ? rlab_ctx_db(ctx) : NULL;
    const int64_t run = rlab_ctx_run_id(ctx);
    double succ[MACRS_NP] = {0}, turns[MACRS_NP] = {0}, hits[MACRS_NP] = {0};
    int64_t done = 0, total = (int64_t)N * n_use;
    for (int k = 0; !rc && k < MACRS_NP; k++) {
        if (!use[k])
            continue;
        for (int i = 0; !rc && i < N; i++) {
            if (rlab_ctx_cancelled(ctx)) {
                rc = RLAB_ECANCELED;
                break;
            }
            macrs_opts o = {.policy = k,
                            .max_turns = (int)rlab_args_int(args, "turns"),
                            .ask_first = (int)rlab_args_int(args, "ask_first"),
                            .no_strategy = !rlab_args_bool(args, "strategy"),
                            .rec = rec,
                            .user = same && by_user ? tg[i].user : -1,
                            .hist = same && by_user ? seq.items + tg[i].h0 : NULL,
                            .n_hist = same && by_user ? (int32_t)tg[i].nh : 0,
                            .llm = openai ? llm : NULL,
                            .llm_planner = openai && rlab_args_choice(args, "planner") == 1,
                            .user_llm = llm_user ? llm : NULL};
            macrs_result r;
            rc = macrs_episode(&w, tg[i].item, &o, &r, rlab_ctx_err(ctx));
            if (!rc) {
                succ[k] += r.success;
                hits[k] += r.hit;
                turns[k] += r.turns;
                /* conversation: policy * targets + target number; one transaction per
                 * dialogue, so other sessions on the store never wait long */
                if (db && !(rc = rlab_db_begin(db, rlab_ctx_err(ctx)))) {
                    rc = store_dialogue(db, run, (int64_t)k * N + i, &r, rlab_ctx_err(ctx));
                    if (rc)
                        rlab_db_rollback(db);
                    else
                        rc = rlab_db_commit(db, rlab_ctx_err(ctx));
                }
            }
            macrs_result_clear(&r);
            rlab_ctx_progress(ctx, ++done, total, "dialogues", 0, NULL);
        }
    }
    if (!rc) {
        static const char *const cols[] = {"policy",    "success_rate", "avg_turns",
                                           "hit_ratio", "targets",      "conversations"};
        rlab_table *t = rlab_ctx_result_table(ctx, "simulate", 6, cols);
        for (int k = 0; t && k < MACRS_NP; k++) {
            if (!use[k])
                continue;
            double sr = succ[k] / N, at = turns[k] / N, hr = hits[k] / N;
            char conv[48];
            snprintf(conv, sizeof conv, "%lld..%lld", (long long)k * N, (long long)k * N + N - 1);
            rlab_table_add_row(t, "sfffis", macrs_policy_names[k], sr, at, hr, N, conv);
            rlab_ctx_printf(ctx, "%-7s success %.3f  avg turns %.2f  hit ratio %.3f  (n=%d)",
                            macrs_policy_names[k], sr, at, hr, N);
            char key[64];
            snprintf(key, sizeof key, "%s.success", macrs_policy_names[k]);
            rlab_ctx_metric(ctx, 0, "test", key, "simulated", sr);
            rlab_ctx_result_float(ctx, key, sr);
            snprintf(key, sizeof key, "%s.turns", macrs_policy_names[k]);
            rlab_ctx_metric(ctx, 0, "test", key, "simulated", at);
            rlab_ctx_result_float(ctx, key, at);
            snprintf(key, sizeof key, "%s.hit", macrs_policy_names[k]);
            rlab_ctx_metric(ctx, 0, "test", key, "simulated", hr);
            rlab_ctx_result_float(ctx, key, hr);
        }
        rlab_ctx_result_int(ctx, "run", run);
    }
    rlab_llm_free(llm);
    rlab_free(tg);
    rlab_free(pool);
    rlab_free(seq.off);
    rlab_free(seq.items);
    rlab_free(seq.ts);
    macrs_world_clear(&w);
    return rc;
}

/* ---- crs.chat ---------------------------------------------------------------------------- */

/* A system turn's detail for a person (the JSON stays the `detail` result and in the store):
 *   [recommend] scores ask 0.72 · recommend 1.10 · chit-chat 0.31
 *   rejected: ask "Would you like ...?" · chit-chat "..."
 *   state: wanted Comedy; unwanted Horror; rejected 1 item; 63 candidates */
static const char *jstr(json_object *o) /* "" for a missing value or JSON null */
{
    const char *s = o ? json_object_get_string(o) : NULL;
    return s ? s : "";
}

static void print_detail(rlab_ctx *ctx, const char *extra)
{
    json_object *j = json_tokener_parse(extra), *v, *x;
    if (!j) {
        rlab_ctx_printf(ctx, "  detail %s", extra);
        return;
    }
    char line[1024];
    int o = snprintf(line, sizeof line, "  [%s]",
                     json_object_object_get_ex(j, "act", &v) ? jstr(v) : "?");
    if (json_object_object_get_ex(j, "scores", &v)) {
        const char *sep = " scores ";
        json_object_object_foreach(v, k, sv)
        {
            const double sx = json_object_get_double(sv); /* -99: not available this turn */
            if (o < (int)sizeof line && sx > -98)
                o += snprintf(line + o, sizeof line - (size_t)o, "%s%s %.2f", sep, k, sx);
            else if (o < (int)sizeof line)
                o += snprintf(line + o, sizeof line - (size_t)o, "%s%s -", sep, k);
            sep = " · ";
        }
    }
    if (json_object_object_get_ex(j, "repeat_off", &v) && o < (int)sizeof line)
        o += snprintf(line + o, sizeof line - (size_t)o, " (not the same %s)", jstr(v));
    if (json_object_object_get_ex(j, "quiet", &v) && o < (int)sizeof line)
        o += snprintf(line + o, sizeof line - (size_t)o, " (%s)", jstr(v));
    if (json_object_object_get_ex(j, "asked", &v) && o < (int)sizeof line)
        o += snprintf(line + o, sizeof line - (size_t)o, "  asked %s", jstr(v));
    if (json_object_object_get_ex(j, "item", &v) && o < (int)sizeof line)
        snprintf(line + o, sizeof line - (size_t)o, "  item %s", jstr(v));
    rlab_ctx_printf(ctx, "%s", line);
    if (json_object_object_get_ex(j, "rejected_proposals", &v) && json_object_array_length(v)) {
        o = snprintf(line, sizeof line, "  rejected:");
        for (size_t i = 0; i < json_object_array_length(v) && o < (int)sizeof line; i++) {
            json_object *p = json_object_array_get_idx(v, i), *a, *t;
            o += snprintf(line + o, sizeof line - (size_t)o, "%s %s \"%s\"", i ? " ·" : "",
                          json_object_object_get_ex(p, "act", &a) ? jstr(a) : "",
                          json_object_object_get_ex(p, "text", &t) ? jstr(t) : "");
        }
        rlab_ctx_printf(ctx, "%s", line);
    }
    if (json_object_object_get_ex(j, "state", &v)) {
        o = snprintf(line, sizeof line, "  state:");
        static const char *const lists[] = {"wanted", "unwanted"};
        for (int l = 0; l < 2; l++) {
            if (o < (int)sizeof line)
                o += snprintf(line + o, sizeof line - (size_t)o, "%s %s", l ? ";" : "", lists[l]);
            size_t n = json_object_object_get_ex(v, lists[l], &x) ? json_object_array_length(x) : 0;
            for (size_t i = 0; i < n && o < (int)sizeof line; i++)
                o += snprintf(line + o, sizeof line - (size_t)o, "%s%s", i ? ", " : " ",
                              jstr(json_object_array_get_idx(x, i)));
            if (!n && o < (int)sizeof line)
                o += snprintf(line + o, sizeof line - (size_t)o, " -");
        }
        size_t nr = json_object_object_get_ex(v, "rejected", &x) ? json_object_array_length(x) : 0;
        if (o < (int)sizeof line)
            o += snprintf(line + o, sizeof line - (size_t)o, "; rejected %zu item%s", nr,
                          nr == 1 ? "" : "s");
        if (json_object_object_get_ex(v, "candidates", &x) && o < (int)sizeof line)
            o += snprintf(line + o, sizeof line - (size_t)o, "; %d candidates",
                          json_object_get_int(x));
        if (json_object_object_get_ex(v, "recommender", &x) && o < (int)sizeof line)
            snprintf(line + o, sizeof line - (size_t)o, "; recommender: %s", jstr(x));
        rlab_ctx_printf(ctx, "%s", line);
    }
    json_object_put(j);
}

/* The chat's header row (turn -1 of conversation 0): {"chat":{data, model, rec}} */
static int chat_header(rlab_ctx *ctx, rlab_db *db, int64_t session, char *data, char *policy,
                       char *rec, llm_set *l)
{
    rlab_err *err = rlab_ctx_err(ctx);
    rlab_db_stmt *s = rlab_db_prepare(db,
                                      "SELECT json_extract(extra,'$.chat.data'),"
                                      " json_extract(extra,'$.chat.model'),"
                                      " json_extract(extra,'$.chat.rec'),"
                                      " json_extract(extra,'$.chat.backend'),"
                                      " json_extract(extra,'$.chat.llm_url'),"
                                      " json_extract(extra,'$.chat.llm_model'),"
                                      " json_extract(extra,'$.chat.llm_timeout') FROM dialogues"
                                      " WHERE run_id = :run AND turn = -1",
                                      err);
    if (!s)
        return err->code;
    rlab_db_bind_int(s, ":run", session, err);
    int rc = rlab_db_step(s, err);
    if (rc == RLAB_DB_ROW) {
        const char *a = rlab_db_column_text(s, 0), *b = rlab_db_column_text(s, 1),
                   *c = rlab_db_column_text(s, 2);
        snprintf(data, 64, "%s", a ? a : "");
        snprintf(policy, 16, "%s", b ? b : "macrs");
        snprintf(rec, 64, "%s", c ? c : "");
        /* chats stored before the backend was recorded: offline */
        const char *be = rlab_db_column_text(s, 3), *u = rlab_db_column_text(s, 4),
                   *m = rlab_db_column_text(s, 5);
        l->openai = be && strcmp(be, "openai") == 0;
        snprintf(l->url, sizeof l->url, "%s", u ? u : "");
        snprintf(l->model, sizeof l->model, "%s", m ? m : "");
        if (rlab_db_column_type(s, 6) != RLAB_DB_NULL)
            l->timeout = rlab_db_column_double(s, 6);
        rc = RLAB_OK;
    } else if (rc == RLAB_OK) {
        rc = rlab_ctx_errorf(ctx, RLAB_ENOTFOUND, "no chat was started by run %lld",
                             (long long)session);
    }
    rlab_db_finalize(s);
    return rc;
}

int crs_chat_run(rlab_ctx *ctx, const rlab_args *args)
{
    rlab_db *db = rlab_ctx_db(ctx);
    if (!db)
        return rlab_ctx_errorf(ctx, RLAB_ESTATE, "a chat is kept in the session store: open one");
    int64_t session = rlab_args_int(args, "session");
    char data[64], policy[16], recn[64];
    llm_set ls = {0};
    llm_set_args(&ls, args, 0);
    int rc;
    if (session > 0) { /* the stored backend unless this line names another */
        if ((rc = chat_header(ctx, db, session, data, policy, recn, &ls)))
            return rc;
        llm_set_args(&ls, args, 1);
    } else {
        const char *d = rlab_args_str(args, "data"), *r = rlab_args_str(args, "rec");
        const char *mn = rlab_args_str(args, "model");
        snprintf(policy, sizeof policy, "%s", mn && *mn ? mn : "macrs");
        snprintf(recn, sizeof recn, "%s", r ? r : "");
        int is_policy = 0;
        for (int k = 0; k < MACRS_NP; k++)
            is_policy |= strcmp(policy, macrs_policy_names[k]) == 0;
        if (!is_policy) { /* a registered model talks alone: model=unicrs */
            if (!rlab_ctx_model(ctx, mn))
                return rlab_ctx_errorf(ctx, RLAB_EINVAL,
                                       "model '%s' is neither a CRS policy (macrs, always, "
                                       "askrec, model) nor a registered model",
                                       mn);
            snprintf(recn, sizeof recn, "%s", mn);
            snprintf(policy, sizeof policy, "model");
        }
        const rlab_model *rm = recn[0] ? rlab_ctx_model(ctx, recn) : NULL;
        if (recn[0] && !rm)
            return rlab_ctx_err(ctx)->code;
        snprintf(data, sizeof data, "%s",
                 d && *d ? d : (rm && rm->dataset[0] ? rm->dataset : "demo"));
        session = rlab_ctx_run_id(ctx);
    }
    const rlab_dataset *ds = rlab_ctx_dataset(ctx, data);
    if (!ds)
        return rlab_ctx_err(ctx)->code;
    const rlab_model *rec = recn[0] ? rlab_ctx_model(ctx, recn) : NULL;
    if (recn[0] && !rec)
        return rlab_ctx_err(ctx)->code;
    int pol = 0;
    for (int k = 0; k < MACRS_NP; k++)
        if (strcmp(policy, macrs_policy_names[k]) == 0)
            pol = k;
    if (pol == MACRS_P_MODEL && !rec)
        return rlab_ctx_errorf(ctx, RLAB_EINVAL, "model=model needs a recommender: rec=...");
    macrs_world w;
    if ((rc = macrs_world_build(ds, &w, rlab_ctx_err(ctx))))
        return rc;
    rlab_llm *llm = make_llm_set(ctx, &ls);
    macrs_opts o = {
        .policy = pol, .max_turns = 1000, .rec = rec, .user = -1, .llm = ls.openai ? llm : NULL};
    macrs_chat *c = llm ? macrs_chat_new(&w, &o, rlab_ctx_err(ctx)) : NULL;
    macrs_result res = {0};
    rc = c ? RLAB_OK : (rlab_ctx_err(ctx)->code ? rlab_ctx_err(ctx)->code : RLAB_ENOMEM);
    int64_t first_new = 0;
    /* an earlier chat: its turns replayed with the recorded system texts (the decisions are
     * deterministic; the language model is not asked again) */
    if (!rc && rlab_args_int(args, "session") > 0) {
        rlab_db_stmt *s = rlab_db_prepare(db,
                                          "SELECT u.text, y.text FROM dialogues u LEFT JOIN"
                                          " dialogues y ON y.run_id = u.run_id AND"
                                          " y.conversation = 0 AND y.role = 'system' AND"
                                          " y.turn = u.turn + 1 WHERE u.run_id = :run AND"
                                          " u.conversation = 0 AND u.role = 'user' AND"
                                          " u.turn >= 0 ORDER BY u.turn",
                                          rlab_ctx_err(ctx));
        if (!s)
            rc = rlab_ctx_err(ctx)->code;
        else
            rc = rlab_db_bind_int(s, ":run", session, rlab_ctx_err(ctx));
        while (!rc && rlab_db_step(s, rlab_ctx_err(ctx)) == RLAB_DB_ROW) {
            const char *t = rlab_db_column_text(s, 0), *y = rlab_db_column_text(s, 1);
            rc = y ? macrs_chat_replay(c, t ? t : "", y, &res, rlab_ctx_err(ctx))
                   : macrs_chat_turn(c, t ? t : "", &res, rlab_ctx_err(ctx));
        }
        rlab_db_finalize(s);
        first_new = res.n_turns;
    }
    const char *text = rlab_args_str(args, "text");
    if (!rc && text && *text) {
        rc = macrs_chat_turn(c, text, &res, rlab_ctx_err(ctx));
    } else if (!rc && (!text || !*text) && rlab_args_int(args, "session") == 0) {
        rc = rlab_ctx_errorf(ctx, RLAB_EINVAL, "say something: crs.chat data=... I want ...");
    }
    if (!rc && rlab_args_int(args, "session") == 0) {
        json_object *hj = json_object_new_object(), *cj = json_object_new_object();
        json_object_object_add(cj, "data", json_object_new_string(data));
        json_object_object_add(cj, "model", json_object_new_string(policy));
        json_object_object_add(cj, "rec", json_object_new_string(recn));
        json_object_object_add(cj, "backend",
                               json_object_new_string(ls.openai ? "openai" : "offline"));
        json_object_object_add(cj, "llm_url", json_object_new_string(ls.url));
        json_object_object_add(cj, "llm_model", json_object_new_string(ls.model));
        json_object_object_add(cj, "llm_timeout", json_object_new_double(ls.timeout));
        json_object_object_add(hj, "chat", cj);
        const char *hdr = json_object_to_json_string_ext(hj, JSON_C_TO_STRING_PLAIN);
        rc = hdr ? rlab_db_dialogue(db, session, 0, -1, "header", "", hdr, rlab_ctx_err(ctx))
                 : rlab_ctx_errorf(ctx, RLAB_ENOMEM, "out of memory");
        json_object_put(hj);
    }
    /* the new turns: stored under the chat's run, shown with the act, the rejected proposals
     * and the state */
    for (int i = (int)first_new; !rc && i < res.n_turns; i++) {
        const macrs_turn *t = &res.t[i];
        rc = rlab_db_dialogue(db, session, 0, i, t->role, t->text, t->extra, rlab_ctx_err(ctx));
        rlab_ctx_printf(ctx, "%-6s %s", strcmp(t->role, "user") == 0 ? "you:" : "crs:", t->text);
        if (strcmp(t->role, "system") == 0 && t->extra) {
            print_detail(ctx, t->extra);
            rlab_ctx_result_str(ctx, "response", t->text);
            rlab_ctx_result_str(ctx, "detail", t->extra);
        }
    }
    if (!rc) {
        rlab_ctx_result_int(ctx, "session", session);
        /* the shell's talk mode: the next lines a person types continue this chat */
        char cont[64];
        snprintf(cont, sizeof cont, "crs.chat session=%lld text=", (long long)session);
        rlab_ctx_result_str(ctx, "continue", cont);
        rlab_ctx_printf(ctx,
                        "chat %lld (continue: crs.chat session=%lld ...; replay: crs.replay "
                        "run=%lld)",
                        (long long)session, (long long)session, (long long)session);
    }
    macrs_result_clear(&res);
    macrs_chat_free(c);
    rlab_llm_free(llm);
    macrs_world_clear(&w);
    return rc;
}

/* ---- crs.replay ---------------------------------------------------------------------------- */

int crs_replay_run(rlab_ctx *ctx, const rlab_args *args)
{
    rlab_db *db = rlab_ctx_db(ctx);
    if (!db)
        return rlab_ctx_errorf(ctx, RLAB_ESTATE, "no session store");
    rlab_db_stmt *s = rlab_db_prepare(db,
                                      "SELECT turn, role, text, json_extract(extra,'$.act'),"
                                      " json_extract(extra,'$.rejected_proposals'),"
                                      " json_extract(extra,'$.state') FROM dialogues"
                                      " WHERE run_id = :run AND conversation = :conv AND turn >= 0"
                                      " ORDER BY turn, id",
                                      rlab_ctx_err(ctx));
    if (!s)
        return rlab_ctx_err(ctx)->code;
    rlab_db_bind_int(s, ":run", rlab_args_int(args, "run"), rlab_ctx_err(ctx));
    rlab_db_bind_int(s, ":conv", rlab_args_int(args, "conversation"), rlab_ctx_err(ctx));
    static const char *const cols[] = {"turn", "role", "text", "act", "rejected", "state"};
    rlab_table *t = rlab_ctx_result_table(ctx, "dialogue", 6, cols);
    int n = 0, rc;
    while ((rc = rlab_db_step(s, rlab_ctx_err(ctx))) == RLAB_DB_ROW) {
        const char *role = rlab_db_column_text(s, 1), *text = rlab_db_column_text(s, 2);
        const char *act = rlab_db_column_text(s, 3), *rej = rlab_db_column_text(s, 4);
        const char *st = rlab_db_column_text(s, 5);
        if (t)
            rlab_table_add_row(t, "lsssss", (int64_t)rlab_db_column_int(s, 0), role, text, act, rej,
                               st);
        rlab_ctx_printf(ctx, "%-6s %s%s%s%s", role ? role : "", text ? text : "", act ? "   [" : "",
                        act ? act : "", act ? "]" : "");
        if (rej)
            rlab_ctx_printf(ctx, "       rejected: %s", rej);
        if (st)
            rlab_ctx_printf(ctx, "       state: %s", st);
        n++;
    }
    rlab_db_finalize(s);
    if (rc != RLAB_OK)
        return rlab_ctx_err(ctx)->code ? rlab_ctx_err(ctx)->code : RLAB_EDB;
    if (n == 0)
        return rlab_ctx_errorf(ctx, RLAB_ENOTFOUND,
                               "no dialogue stored for run %lld "
                               "conversation %lld",
                               (long long)rlab_args_int(args, "run"),
                               (long long)rlab_args_int(args, "conversation"));
    rlab_ctx_result_int(ctx, "turns", n);
    return RLAB_OK;
}
