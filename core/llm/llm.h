/*
 * core/llm: the language backend shared by the simulator (RecAgent) and the CRS plugins.
 *
 * One interface, chat completion: messages (role + content) in, text out, with per-call
 * options, and a batch call that keeps up to `max_in_flight` requests in flight at once.
 * Two backends sit behind it:
 *
 *   offline  (the default) deterministic, seeded, no network. It is NOT a language model:
 *            it dispatches each request, by its `task` tag ("recagent.action"), to a C
 *            policy the caller registered (rlab_llm_register). The policy answers in the
 *            exact output format the prompt asks for ("[BUY]:: 3"), so the caller's
 *            parsing code is the same for both backends. A task with no policy is an
 *            error ("llm: no offline policy for task 'x'"), never an echo.
 *   openai   any OpenAI-compatible POST {base}/v1/chat/completions server (llama.cpp
 *            server, Ollama, vLLM, hosted APIs) over libcurl, with a timeout per attempt,
 *            retries with exponential backoff and seeded jitter on 429 / 5xx / connection
 *            errors / timeouts (honouring Retry-After), and a curl multi loop for
 *            concurrency.
 *
 *     rlab_err err = {0};
 *     rlab_llm_config cfg = {.backend = "offline", .seed = 7};
 *     rlab_llm *llm = rlab_llm_new(&cfg, &err);
 *     rlab_llm_register(llm, "recagent.action", my_policy, my_state, &err);
 *     rlab_llm_msg m[] = {{"system", "You are ..."}, {"user", prompt}};
 *     rlab_llm_req req = {.task = "recagent.action", .msgs = m, .n_msgs = 2, .ctx = agent};
 *     rlab_llm_result res = {0};
 *     if (rlab_llm_chat(llm, &req, &res, &err) == RLAB_OK) parse(res.text);
 *     rlab_llm_result_clear(&res);
 *     rlab_llm_free(llm);
 *
 * The key. api_key (or $RECLAB_LLM_API_KEY, then $OPENAI_API_KEY) is copied into the
 * handle and only ever put in the Authorization header. Every error message and
 * rlab_llm_describe() output is scrubbed of it (a server that echoes the key back in an
 * error body gets "[redacted]"), and the base URL's user:password part, if any, is shown
 * as "***@". So describe() and error texts are safe to store, log and print.
 *
 * Threads. A handle is immutable after setup (create, register policies, set the cancel
 * hook), then rlab_llm_chat / rlab_llm_chat_many may be called from several threads at
 * once; each call (or pipe) runs its own curl multi handle, taken from and given back to a
 * small mutex-guarded list of idle ones on the handle (keeping their open connections).
 * curl_global_init runs once per process (pthread_once) on the first openai handle;
 * curl_global_cleanup is never called (it is not thread-safe, and the OS reclaims at exit).
 * Policies must be thread-safe if the handle is shared between threads (they get their own
 * per-request RNG).
 *
 * Errors: bad arguments RLAB_EINVAL; out of memory RLAB_ENOMEM; any network, HTTP or
 * protocol failure (including malformed JSON) RLAB_ENET; no policy RLAB_ENOTFOUND;
 * cancelled RLAB_ECANCELED. Messages start with "llm: " and name the endpoint URL.
 */
#ifndef RLAB_LLM_H
#define RLAB_LLM_H

#include "base/base.h"

#include <stddef.h>
#include <stdint.h>

typedef struct rlab_llm rlab_llm;

enum { RLAB_LLM_MAX_STOP = 4 };

/* One chat message; both strings are borrowed for the duration of the call. role is
 * "system", "user" or "assistant" (passed through unchecked). */
typedef struct rlab_llm_msg {
    const char *role;
    const char *content;
} rlab_llm_msg;

/* Per-call options. Zero-initialised means: temperature 0 (greedy, as RecAgent uses), no
 * token limit, no stop strings, no seed. */
typedef struct rlab_llm_opts {
    double temperature;                  /* >= 0 is sent; < 0 leaves it to the server */
    int max_tokens;                      /* > 0 is sent; 0 = server default */
    const char *stop[RLAB_LLM_MAX_STOP]; /* up to 4 stop strings; unused slots NULL */
    int has_seed;                        /* nonzero: send `seed` (and mix it offline) */
    uint64_t seed;
} rlab_llm_opts;

/* One request. Everything is borrowed for the duration of the call. */
typedef struct rlab_llm_req {
    const char *task;         /* tag routing offline policies ("recagent.action"); may be
                                 NULL for the openai backend; never sent to a server */
    const rlab_llm_msg *msgs; /* n_msgs >= 1 */
    int n_msgs;
    rlab_llm_opts opts;
    const char *model; /* NULL: the handle's model; else overrides it for this request */
    void *ctx;         /* opaque caller data handed to the offline policy (agent state) */
} rlab_llm_req;

/* The outcome of one request. Fill-in only: zero-initialise, then free `text` with
 * rlab_llm_result_clear (also before reusing the struct). */
typedef struct rlab_llm_result {
    int status;             /* RLAB_OK or an error code */
    char *text;             /* the reply (owned), NULL on failure */
    int http_status;        /* last HTTP status seen; 0 offline or with no response */
    int attempts;           /* requests sent (1 + retries); 1 offline */
    double latency;         /* seconds from the request's first send to its outcome,
                               retries and backoff included (queueing excluded) */
    int prompt_tokens;      /* from the server's usage block; -1 when absent */
    int completion_tokens;  /* idem */
    char finish_reason[24]; /* "stop", "length", ... ; "" when absent */
    char error[320];        /* "" on success; else the message, key-redacted */
} rlab_llm_result;

/* Backend configuration. Zero-initialised = offline backend, seed 0. Strings are copied. */
typedef struct rlab_llm_config {
    const char *backend;    /* "offline" (NULL/"" too) or "openai" */
    const char *base_url;   /* openai: "http://127.0.0.1:8080", ".../v1" or the full
                               ".../v1/chat/completions"; NULL: $RECLAB_LLM_BASE_URL, else
                               "http://127.0.0.1:8080/v1" */
    const char *model;      /* NULL: $RECLAB_LLM_MODEL, else "default" */
    const char *api_key;    /* NULL: $RECLAB_LLM_API_KEY, else $OPENAI_API_KEY, else none
                               ("" = explicitly none) */
    double timeout;         /* seconds per attempt (whole transfer); 0 = 60 */
    double connect_timeout; /* seconds; 0 = min(10, timeout) */
    int max_attempts;       /* total attempts per request (1 = no retry); 0 = 4 */
    double backoff_base;    /* first retry delay in seconds; 0 = 0.5; doubles each retry */
    double backoff_max;     /* cap on any delay, Retry-After included; 0 = 30 */
    int max_in_flight;      /* concurrent requests in rlab_llm_chat_many; 0 = 8 */
    uint64_t seed;          /* offline policies' RNG and the backoff jitter */
} rlab_llm_config;

/* Create a backend. Returns NULL with err filled on a bad config (unknown backend name,
 * URL not http(s)://, negative numbers) or on allocation failure. No network I/O here. */
RLAB_API rlab_llm *rlab_llm_new(const rlab_llm_config *cfg, rlab_err *err);
/* Free the handle (NULL ok). No call may be running on it. */
RLAB_API void rlab_llm_free(rlab_llm *llm);

/* "offline" or "openai". */
RLAB_API const char *rlab_llm_backend_name(const rlab_llm *llm);
/* One line describing the backend, safe to store/log/print (the key appears only as
 * "key=set" or "key=none", never its value). Writes at most n bytes, NUL-terminated;
 * returns the length it wanted (snprintf rule). */
RLAB_API int rlab_llm_describe(const rlab_llm *llm, char *buf, size_t n);

/* ---- calls --------------------------------------------------------------------------- */

/* Run one request. Returns res->status, fills res (text on success, error otherwise) and
 * copies the error into err. */
RLAB_API int rlab_llm_chat(rlab_llm *llm, const rlab_llm_req *req, rlab_llm_result *res,
                           rlab_err *err);

/* Run n requests, up to max_in_flight at once (openai) or one after another (offline);
 * results[i] belongs to reqs[i] whatever the completion order. Every results[i] is filled
 * (status, text or error, latency, attempts). Returns RLAB_OK when all succeeded; else
 * the status of the first failed request in request order, with err reading
 * "llm: request i of n failed: <its error>" (RLAB_ECANCELED if cancelled: requests not
 * finished by then get RLAB_ECANCELED). Results must be cleared with
 * rlab_llm_results_clear. */
RLAB_API int rlab_llm_chat_many(rlab_llm *llm, const rlab_llm_req *reqs, int n,
                                rlab_llm_result *results, rlab_err *err);

/* ---- pipelined requests ----------------------------------------------------------------- */

/* A pipe keeps requests in flight while its caller submits more: a caller whose next
 * request depends on an earlier reply (an agent's next step) submits it as soon as that
 * reply is back, instead of waiting for a whole batch (rlab_llm_chat_many waits for its
 * slowest request). Up to max_in_flight requests run at once (openai); the others wait in
 * submission order. Offline, a request is answered when it is submitted and results come
 * back in submission order.
 *
 *     rlab_llm_pipe *p = rlab_llm_pipe_new(llm, &err);
 *     for (a = 0; a < n; a++) rlab_llm_pipe_submit(p, &first_req[a], a, &err);
 *     int64_t a; rlab_llm_result r = {0};
 *     while (rlab_llm_pipe_next(p, &a, &r)) {        // in completion order
 *         if (more_to_ask(a, &r)) rlab_llm_pipe_submit(p, &next_req[a], a, &err);
 *         rlab_llm_result_clear(&r);
 *     }
 *     rlab_llm_pipe_free(p);
 *
 * Results arrive in completion order (which varies from run to run): a caller that must be
 * deterministic makes each request depend only on its own chain's earlier replies and
 * orders its side effects by tag, not by arrival. Connections stay open between pipes and
 * calls on the same handle. A pipe is used by one thread at a time (several pipes of one
 * handle may run on different threads). The cancel hook is polled as in chat_many; when it
 * fires, every unfinished request finishes with RLAB_ECANCELED. The progress hook is called
 * on each result returned, with (results returned so far, those + the pending ones). */
typedef struct rlab_llm_pipe rlab_llm_pipe;

/* NULL with err filled (EINVAL without a handle, ENOMEM). */
RLAB_API rlab_llm_pipe *rlab_llm_pipe_new(rlab_llm *llm, rlab_err *err);
/* Queue a request; everything in req is copied or used at once (the JSON body is built
 * now; an offline policy runs now), so req may be freed on return. tag comes back with the
 * result. RLAB_OK, or RLAB_ENOMEM / RLAB_EINVAL when the request was not queued (a request
 * that is queued but bad, e.g. without messages, finishes with its error as status). */
RLAB_API int rlab_llm_pipe_submit(rlab_llm_pipe *p, const rlab_llm_req *req, int64_t tag,
                                  rlab_err *err);
/* Requests submitted and not yet returned by rlab_llm_pipe_next. */
RLAB_API int rlab_llm_pipe_pending(const rlab_llm_pipe *p);
/* Wait for the next finished request: 1 with *tag and *res filled (res->status says how
 * it went; clear res with rlab_llm_result_clear), 0 when nothing is pending. */
RLAB_API int rlab_llm_pipe_next(rlab_llm_pipe *p, int64_t *tag, rlab_llm_result *res);
/* Free the pipe (NULL ok); requests still in flight are abandoned and their results
 * dropped. */
RLAB_API void rlab_llm_pipe_free(rlab_llm_pipe *p);

RLAB_API void rlab_llm_result_clear(rlab_llm_result *res);
RLAB_API void rlab_llm_results_clear(rlab_llm_result *res, int n);

/* Cancel hook: polled between retries and at least every 50 ms while requests are in
 * flight; a nonzero return aborts the call with RLAB_ECANCELED. NULL removes it. Set it
 * during setup (not while calls run). */
typedef int (*rlab_llm_cancel_fn)(void *ud);
RLAB_API void rlab_llm_set_cancel(rlab_llm *llm, rlab_llm_cancel_fn fn, void *ud);

/* Progress hook: called by rlab_llm_chat_many / rlab_llm_chat on the calling thread each
 * time requests finish (success or failure, retries included in the wait), with how many
 * of the call's n requests are finished; a caller waiting on a slow server can show
 * progress per reply instead of per batch. NULL removes it. Set it during setup (not while
 * calls run), like the cancel hook. */
typedef void (*rlab_llm_progress_fn)(void *ud, int done, int n);
RLAB_API void rlab_llm_set_progress(rlab_llm *llm, rlab_llm_progress_fn fn, void *ud);

/* ---- offline policies ------------------------------------------------------------------ */

/* Growable output text handed to policies. */
typedef struct rlab_llm_out rlab_llm_out;
RLAB_API int rlab_llm_out_puts(rlab_llm_out *out, const char *s);
RLAB_API int rlab_llm_out_printf(rlab_llm_out *out, const char *fmt, ...) RLAB_PRINTF(2, 3);
/* The text written so far (valid until the next write). */
RLAB_API const char *rlab_llm_out_text(const rlab_llm_out *out);

/* A policy: write the reply for req into out, drawing randomness only from rng (a fresh
 * generator per request, seeded from the handle's seed, req->opts.seed when has_seed, the
 * task and the message texts: the same request gives the same reply whatever the call
 * order or thread). ud is the pointer given at registration, req->ctx the caller's
 * per-request data. Return RLAB_OK, or an error code with err filled. */
typedef int (*rlab_llm_policy_fn)(const rlab_llm_req *req, rlab_rng *rng, rlab_llm_out *out,
                                  void *ud, rlab_err *err);

/* Register (or replace) the policy for a task. `task` is an exact tag ("recagent.action")
 * or a prefix pattern ending in ".*" ("recagent.*", the longest matching pattern wins
 * when no exact tag matches) or "*" (catch-all). Works on any backend: an openai handle
 * keeps the registry for rlab_llm_chat_offline. Setup-time only (not thread-safe against
 * running calls). */
RLAB_API int rlab_llm_register(rlab_llm *llm, const char *task, rlab_llm_policy_fn fn, void *ud,
                               rlab_err *err);
/* Remove a task's policy; RLAB_ENOTFOUND when it had none. */
RLAB_API int rlab_llm_unregister(rlab_llm *llm, const char *task, rlab_err *err);
/* Nonzero if some policy would handle `task`. */
RLAB_API int rlab_llm_has_policy(const rlab_llm *llm, const char *task);

/* Run the request through the registered policy, whatever the backend: the fallback a
 * caller uses after an unparsable model reply. Stop strings cut the text as a server
 * would (at the first occurrence, excluded); max_tokens and temperature are ignored. */
RLAB_API int rlab_llm_chat_offline(rlab_llm *llm, const rlab_llm_req *req, rlab_llm_result *res,
                                   rlab_err *err);

/* ---- templates ------------------------------------------------------------------------ */

/* A template variable. */
typedef struct rlab_llm_var {
    const char *name;
    const char *value;
} rlab_llm_var;

/* Render `tmpl`, replacing each {{name}} (spaces inside the braces allowed) by the value
 * of the variable of that name; "{{{{" produces a literal "{{". An unknown name or an
 * unclosed "{{" is RLAB_EINVAL naming the variable / byte offset. Returns a new string
 * (rlab_free) or NULL with err filled. Used by callers to build prompts and by offline
 * policies to produce their tagged replies from the same wording. */
RLAB_API char *rlab_llm_render(const char *tmpl, const rlab_llm_var *vars, int n_vars,
                               rlab_err *err);

/* The last message with role "user" in req, or NULL. */
RLAB_API const char *rlab_llm_last_user(const rlab_llm_req *req);

#endif /* RLAB_LLM_H */
