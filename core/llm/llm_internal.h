/*
 * core/llm private parts shared by llm.c (handle, registry, offline backend, templates)
 * and llm_openai.c (the libcurl engine). Not installed.
 */
#ifndef RLAB_LLM_INTERNAL_H
#define RLAB_LLM_INTERNAL_H

#include "llm/llm.h"

#include <pthread.h>
#include <stdarg.h>

enum { RLAB_LLM_OFFLINE = 0, RLAB_LLM_OPENAI = 1 };
/* idle curl multi handles (each with its open connections) kept between calls */
enum { RLAB_LLM_IDLE_MULTI = 4 };

typedef struct rlab_llm_policy {
    char *task;
    rlab_llm_policy_fn fn;
    void *ud;
} rlab_llm_policy;

struct rlab_llm {
    int kind;
    char *url;       /* full endpoint ".../v1/chat/completions" */
    char *url_shown; /* the same with any user:password@ replaced by ***@ */
    char *model;
    char *key; /* NULL when none; never printed */
    const char *key_source;
    char *no_proxy; /* $no_proxy plus loopback names */
    double timeout, connect_timeout, backoff_base, backoff_max;
    int max_attempts, max_in_flight;
    uint64_t seed;
    uint64_t calls; /* atomic counter: per-call jitter streams */
    rlab_llm_policy *pol;
    int n_pol, cap_pol;
    rlab_llm_cancel_fn cancel;
    void *cancel_ud;
    rlab_llm_progress_fn progress;
    void *progress_ud;
    pthread_mutex_t idle_mu; /* guards idle / n_idle (calls may run on several threads) */
    void *idle[RLAB_LLM_IDLE_MULTI];
    int n_idle;
};

/* Replace every occurrence of the key in buf (NUL-terminated, capacity cap) by
 * "[redacted]". Safe with llm == NULL or no key. */
void rlab_llm__redact(const rlab_llm *llm, char *buf, size_t cap);
/* printf into res->error, then redact; sets res->status = code. Returns code. */
int rlab_llm__fail(const rlab_llm *llm, rlab_llm_result *res, int code, const char *fmt, ...)
    RLAB_PRINTF(4, 5);
/* Nonzero when the cancel hook says stop. */
int rlab_llm__cancelled(const rlab_llm *llm);
/* Check one request's shape; fills res on failure. */
int rlab_llm__check_req(const rlab_llm *llm, const rlab_llm_req *req, rlab_llm_result *res);
/* Cut text at the first occurrence of any stop string (in place). */
void rlab_llm__apply_stop(char *text, const rlab_llm_opts *opts);

/* llm_openai.c */
int rlab_llm__openai_init(rlab_err *err);
/* Run n requests over HTTP; fills every results[i] (initialised by the caller). */
void rlab_llm__openai_run(rlab_llm *llm, const rlab_llm_req *reqs, int n, rlab_llm_result *results);
/* Free the idle multi handles (rlab_llm_free). */
void rlab_llm__openai_release(rlab_llm *llm);

/* The HTTP pipe behind rlab_llm_pipe (llm.h). new: NULL on allocation failure (a failed
 * curl setup is reported per request). submit: the body is built at once (req is not kept);
 * RLAB_ENOMEM when the request could not be queued, else RLAB_OK (a bad request is queued
 * as finished with its error). next: waits for a finished request, moves its result into
 * *res (the text is the caller's) and returns 1; 0 when nothing is pending. On
 * cancellation every unfinished request finishes with RLAB_ECANCELED. */
typedef struct rlab_llm__opipe rlab_llm__opipe;
rlab_llm__opipe *rlab_llm__opipe_new(rlab_llm *llm);
int rlab_llm__opipe_submit(rlab_llm__opipe *p, const rlab_llm_req *req, int64_t tag);
int rlab_llm__opipe_next(rlab_llm__opipe *p, int64_t *tag, rlab_llm_result *res);
int rlab_llm__opipe_pending(const rlab_llm__opipe *p);
void rlab_llm__opipe_free(rlab_llm__opipe *p);

#endif
