/*
 * core/llm openai backend: POST {base}/v1/chat/completions over libcurl's multi
 * interface. One call (or pipe) = one multi handle at a time; each request is a job that
 * is started when a slot is free (max_in_flight) and its retry time has come, and that, on
 * a 429 / 5xx / connection error / timeout, waits Retry-After (if the server sent one) or
 * base * 2^(k-1) * U[0.5, 1) seconds (seeded jitter), capped at backoff_max, before its
 * next attempt. The loop wakes at least every 50 ms to poll the cancel hook.
 *
 * The engine is a pipe (rlab_llm__opipe): requests are submitted one at a time while
 * others are in flight, and results come back as they finish, each with its caller's tag;
 * rlab_llm_chat_many is a pipe that is filled at once and drained. A multi handle owns
 * curl's connection cache, so the handle keeps a few idle multi handles between calls
 * (llm->idle): the next call reuses their open keep-alive connections instead of a TCP
 * (and TLS) handshake per request, and a server that bounds its connections is not
 * flooded with new ones.
 *
 * Request bodies are built and replies parsed with json-c; the reply text is
 * choices[0].message.content.
 */
#include <curl/curl.h>
#include <json-c/json.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "llm/llm_internal.h"

enum { JOB_WAIT, JOB_RUNNING, JOB_DONE };
enum { MAX_BODY = 8 << 20, POLL_MS = 50 };

typedef struct job {
    int state;
    int64_t tag; /* the caller's tag, returned with the result */
    int64_t seq; /* submission order */
    rlab_llm_result res;
    int attempts;
    double t_ready; /* earliest start of the next attempt */
    double t_first; /* first send */
    char *body;     /* JSON request body */
    size_t body_len;
    CURL *easy;
    char *resp;
    size_t resp_len, resp_cap;
    int too_big;
    double retry_after; /* seconds from a Retry-After header; -1 when none */
    char errbuf[CURL_ERROR_SIZE];
} job;

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_OK;

static void curl_init_once(void) { curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

int rlab_llm__openai_init(rlab_err *err)
{
    pthread_once(&curl_once, curl_init_once);
    if (curl_init_rc != CURLE_OK)
        return rlab_errf(err, RLAB_ENET, "llm: curl_global_init failed: %s",
                         curl_easy_strerror(curl_init_rc));
    return RLAB_OK;
}

/* ---- request body -------------------------------------------------------------------- */

static int add(json_object *o, const char *k, json_object *v)
{
    if (!v)
        return -1;
    if (json_object_object_add(o, k, v)) {
        json_object_put(v);
        return -1;
    }
    return 0;
}

/* Build the JSON body; NULL on allocation failure. */
static char *build_body(const rlab_llm *llm, const rlab_llm_req *req, size_t *len)
{
    json_object *root = json_object_new_object(), *msgs = json_object_new_array();
    char *out = NULL;
    if (!root || !msgs) {
        json_object_put(msgs);
        goto done;
    }
    if (add(root, "model", json_object_new_string(req->model ? req->model : llm->model)) ||
        add(root, "messages", msgs))
        goto done;
    for (int i = 0; i < req->n_msgs; i++) {
        json_object *m = json_object_new_object();
        if (!m || json_object_array_add(msgs, m)) {
            json_object_put(m);
            goto done;
        }
        if (add(m, "role", json_object_new_string(req->msgs[i].role)) ||
            add(m, "content", json_object_new_string(req->msgs[i].content)))
            goto done;
    }
    const rlab_llm_opts *o = &req->opts;
    if (o->temperature >= 0) {
        char t[32];
        snprintf(t, sizeof t, "%.6g", o->temperature);
        if (add(root, "temperature", json_object_new_double_s(o->temperature, t)))
            goto done;
    }
    if (o->max_tokens > 0 && add(root, "max_tokens", json_object_new_int(o->max_tokens)))
        goto done;
    int n_stop = 0;
    for (int i = 0; i < RLAB_LLM_MAX_STOP; i++)
        n_stop += o->stop[i] && *o->stop[i];
    if (n_stop) {
        json_object *st = json_object_new_array();
        if (add(root, "stop", st))
            goto done;
        for (int i = 0; i < RLAB_LLM_MAX_STOP; i++)
            if (o->stop[i] && *o->stop[i]) {
                json_object *s = json_object_new_string(o->stop[i]);
                if (!s || json_object_array_add(st, s)) {
                    json_object_put(s);
                    goto done;
                }
            }
    }
    if (o->has_seed && add(root, "seed", json_object_new_uint64(o->seed)))
        goto done;
    if (add(root, "stream", json_object_new_boolean(0)))
        goto done;
    size_t n = 0;
    const char *s = json_object_to_json_string_length(
        root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);
    if (s) {
        out = rlab_malloc(n + 1);
        if (out) {
            memcpy(out, s, n + 1);
            *len = n;
        }
    }
done:
    json_object_put(root);
    return out;
}

/* ---- reply parsing ------------------------------------------------------------------- */

/* A printable, one-line excerpt of a body (at most `max` bytes) into dst. */
static void excerpt(char *dst, size_t cap, const char *s, size_t n, size_t max)
{
    size_t k = 0;
    if (!s)
        n = 0;
    for (size_t i = 0; i < n && i < max && k + 1 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        dst[k++] = (c >= 32 && c < 127) ? (char)c : (c == '\n' || c == '\t') ? ' ' : '?';
    }
    if (n > max && k + 4 < cap) {
        memcpy(dst + k, "...", 3);
        k += 3;
    }
    dst[k] = 0;
}

static json_object *parse_json(const char *s, size_t n, char *why, size_t cap)
{
    if (!s || n == 0) {
        snprintf(why, cap, "empty body");
        return NULL;
    }
    json_tokener *tok = json_tokener_new();
    if (!tok) {
        snprintf(why, cap, "out of memory");
        return NULL;
    }
    json_object *o = json_tokener_parse_ex(tok, s, (int)n);
    enum json_tokener_error e = json_tokener_get_error(tok);
    if (!o || e != json_tokener_success) {
        if (e == json_tokener_continue)
            snprintf(why, cap, "truncated JSON");
        else
            snprintf(why, cap, "%s", json_tokener_error_desc(e));
        json_object_put(o);
        o = NULL;
    } else {
        /* anything but whitespace after the value is garbage */
        for (size_t i = json_tokener_get_parse_end(tok); i < n; i++)
            if (s[i] != ' ' && s[i] != '\n' && s[i] != '\r' && s[i] != '\t') {
                snprintf(why, cap, "trailing data after the JSON value");
                json_object_put(o);
                o = NULL;
                break;
            }
    }
    json_tokener_free(tok);
    return o;
}

/* The server's own error text: {"error": {"message": ...}} or {"error": "..."}, else an
 * excerpt of the body. */
static void error_detail(char *dst, size_t cap, const char *body, size_t n)
{
    char why[64];
    json_object *o = parse_json(body, n, why, sizeof why), *e = NULL, *m = NULL;
    if (o && json_object_object_get_ex(o, "error", &e)) {
        if (json_object_is_type(e, json_type_string))
            m = e;
        else if (json_object_is_type(e, json_type_object))
            json_object_object_get_ex(e, "message", &m);
    }
    if (m && json_object_is_type(m, json_type_string)) {
        const char *s = json_object_get_string(m);
        excerpt(dst, cap, s, strlen(s), 200);
    } else if (n) {
        excerpt(dst, cap, body, n, 200);
    } else {
        snprintf(dst, cap, "empty body");
    }
    json_object_put(o);
}

static int get_int(json_object *o, const char *k, int dflt)
{
    json_object *v;
    if (o && json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_int))
        return json_object_get_int(v);
    return dflt;
}

/* Fill res from a 2xx body. */
static void parse_reply(const rlab_llm *llm, job *j, rlab_llm_result *res)
{
    char why[128];
    json_object *root = parse_json(j->resp, j->resp_len, why, sizeof why);
    if (!root) {
        char ex[96];
        excerpt(ex, sizeof ex, j->resp, j->resp_len, 60);
        rlab_llm__fail(llm, res, RLAB_ENET, "llm: malformed JSON from %s: %s (body: '%s')",
                       llm->url_shown, why, ex);
        return;
    }
    json_object *choices = NULL, *c0 = NULL, *msg = NULL, *content = NULL, *e = NULL;
    if (json_object_object_get_ex(root, "error", &e) && !json_object_is_type(e, json_type_null)) {
        char d[240];
        error_detail(d, sizeof d, j->resp, j->resp_len);
        rlab_llm__fail(llm, res, RLAB_ENET, "llm: error from %s: %s", llm->url_shown, d);
    } else if (!json_object_object_get_ex(root, "choices", &choices) ||
               !json_object_is_type(choices, json_type_array) ||
               json_object_array_length(choices) < 1) {
        rlab_llm__fail(llm, res, RLAB_ENET, "llm: malformed JSON from %s: no choices[0]",
                       llm->url_shown);
    } else if (!(c0 = json_object_array_get_idx(choices, 0)) ||
               !json_object_object_get_ex(c0, "message", &msg) ||
               !json_object_object_get_ex(msg, "content", &content) ||
               !json_object_is_type(content, json_type_string)) {
        rlab_llm__fail(llm, res, RLAB_ENET,
                       "llm: malformed JSON from %s: no string choices[0].message.content",
                       llm->url_shown);
    } else {
        const char *s = json_object_get_string(content);
        size_t n = (size_t)json_object_get_string_len(content);
        res->text = rlab_malloc(n + 1);
        if (!res->text) {
            rlab_llm__fail(llm, res, RLAB_ENOMEM, "llm: out of memory for a %zu-byte reply", n);
        } else {
            memcpy(res->text, s, n);
            res->text[n] = 0;
            res->status = RLAB_OK;
            res->error[0] = 0;
            json_object *fr, *usage;
            if (json_object_object_get_ex(c0, "finish_reason", &fr) &&
                json_object_is_type(fr, json_type_string))
                snprintf(res->finish_reason, sizeof res->finish_reason, "%s",
                         json_object_get_string(fr));
            if (json_object_object_get_ex(root, "usage", &usage)) {
                res->prompt_tokens = get_int(usage, "prompt_tokens", -1);
                res->completion_tokens = get_int(usage, "completion_tokens", -1);
            }
        }
    }
    json_object_put(root);
}

/* ---- transfers ----------------------------------------------------------------------- */

static size_t on_write(char *data, size_t size, size_t nmemb, void *ud)
{
    job *j = ud;
    size_t n = size * nmemb;
    if (j->resp_len + n > MAX_BODY) {
        j->too_big = 1;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    if (j->resp_len + n + 1 > j->resp_cap) {
        size_t cap = j->resp_cap ? j->resp_cap : 1024;
        while (cap < j->resp_len + n + 1)
            cap *= 2;
        char *p = rlab_realloc(j->resp, cap);
        if (!p)
            return 0;
        j->resp = p;
        j->resp_cap = cap;
    }
    memcpy(j->resp + j->resp_len, data, n);
    j->resp_len += n;
    j->resp[j->resp_len] = 0;
    return n;
}

/* Header callback: remember Retry-After (delta-seconds or an HTTP date). */
static size_t on_header(char *data, size_t size, size_t nmemb, void *ud)
{
    job *j = ud;
    size_t n = size * nmemb;
    static const char name[] = "retry-after:";
    if (n > sizeof name - 1 && n < 256 && strncasecmp(data, name, sizeof name - 1) == 0) {
        char v[256];
        size_t k = n - (sizeof name - 1);
        memcpy(v, data + sizeof name - 1, k);
        v[k] = 0;
        char *p = v, *end;
        while (*p == ' ' || *p == '\t')
            p++;
        double secs = strtod(p, &end);
        if (end != p && secs >= 0) {
            j->retry_after = secs;
        } else {
            time_t t = curl_getdate(p, NULL);
            if (t != (time_t)-1) {
                double d = difftime(t, time(NULL));
                j->retry_after = d > 0 ? d : 0;
            }
        }
    }
    return n;
}

static int start_job(rlab_llm *llm, CURLM *multi, struct curl_slist *hdrs, job *j)
{
    j->easy = curl_easy_init();
    if (!j->easy)
        return -1;
    j->resp_len = 0;
    j->too_big = 0;
    j->retry_after = -1;
    j->errbuf[0] = 0;
    CURL *e = j->easy;
    curl_easy_setopt(e, CURLOPT_URL, llm->url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_NOPROXY, llm->no_proxy);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, j->body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)j->body_len);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "reclab/" RECLAB_VERSION_STRING);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, j);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, j);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, j->errbuf);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(llm->timeout * 1000.0 + 0.5));
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)(llm->connect_timeout * 1000.0 + 0.5));
    curl_easy_setopt(e, CURLOPT_PRIVATE, (void *)j);
    if (curl_multi_add_handle(multi, e) != CURLM_OK) {
        curl_easy_cleanup(e);
        j->easy = NULL;
        return -1;
    }
    j->state = JOB_RUNNING;
    j->attempts++;
    return 0;
}

static void stop_job(CURLM *multi, job *j)
{
    if (!j->easy)
        return;
    curl_multi_remove_handle(multi, j->easy);
    curl_easy_cleanup(j->easy);
    j->easy = NULL;
}

/* curl failures worth another attempt: the network or the server, not our own setup. */
static int retryable_curl(CURLcode rc)
{
    switch (rc) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_OUT_OF_MEMORY:
    case CURLE_WRITE_ERROR:
    case CURLE_BAD_FUNCTION_ARGUMENT:
    case CURLE_ABORTED_BY_CALLBACK:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_LOGIN_DENIED:
        return 0;
    default:
        return 1;
    }
}

/* A transfer finished: decide success, retry or failure. */
static void finish_job(rlab_llm *llm, CURLM *multi, job *j, CURLcode rc, rlab_llm_result *res,
                       rlab_rng *jitter)
{
    long code = 0;
    curl_easy_getinfo(j->easy, CURLINFO_RESPONSE_CODE, &code);
    stop_job(multi, j);
    double now = rlab_now();
    res->attempts = j->attempts;
    res->http_status = (int)code;
    res->latency = now - j->t_first;
    int retry = 0;
    if (rc != CURLE_OK) {
        if (j->too_big)
            rlab_llm__fail(llm, res, RLAB_ENET, "llm: reply from %s larger than %d bytes",
                           llm->url_shown, (int)MAX_BODY);
        else if (rc == CURLE_OPERATION_TIMEDOUT)
            rlab_llm__fail(llm, res, RLAB_ENET, "llm: timeout after %g s waiting for %s",
                           llm->timeout, llm->url_shown);
        else
            rlab_llm__fail(llm, res, rc == CURLE_WRITE_ERROR ? RLAB_ENOMEM : RLAB_ENET,
                           "llm: connection error with %s: %s", llm->url_shown,
                           j->errbuf[0] ? j->errbuf : curl_easy_strerror(rc));
        retry = !j->too_big && retryable_curl(rc);
    } else if (code < 200 || code > 299) {
        char d[240];
        error_detail(d, sizeof d, j->resp, j->resp_len);
        rlab_llm__fail(llm, res, RLAB_ENET, "llm: HTTP %ld from %s: %s", code, llm->url_shown, d);
        retry = code == 429 || code == 408 || code >= 500;
    } else {
        parse_reply(llm, j, res);
    }
    if (retry && j->attempts < llm->max_attempts) {
        double delay;
        if (j->retry_after >= 0) {
            delay = j->retry_after;
        } else {
            delay = llm->backoff_base * ldexp(1.0, j->attempts - 1);
            delay *= 0.5 + 0.5 * rlab_rng_double(jitter);
        }
        if (delay > llm->backoff_max)
            delay = llm->backoff_max;
        j->t_ready = now + delay;
        j->state = JOB_WAIT;
        return;
    }
    if (res->status != RLAB_OK && j->attempts > 1) {
        size_t k = strlen(res->error);
        snprintf(res->error + k, sizeof res->error - k, " (after %d attempts)", j->attempts);
    }
    j->state = JOB_DONE;
}

/* ---- the pipe ------------------------------------------------------------------------- */

struct rlab_llm__opipe {
    rlab_llm *llm;
    CURLM *multi;
    struct curl_slist *hdrs;
    char *auth;
    int setup_failed; /* multi or headers missing: every request fails at once */
    rlab_rng jitter;
    job **all; /* by submission order; NULL once delivered */
    int64_t n_all, cap_all;
    int64_t next_fresh; /* first never-started job in `all` */
    int64_t *doneq;     /* finished jobs (indices into `all`), in finishing order */
    int64_t n_done, head_done, cap_done;
    int pending; /* submitted and not delivered */
    int running; /* transfers in the multi handle */
    int n_retry; /* jobs waiting for a retry */
};

/* Take an idle multi handle (keeping its open connections) or make one. */
static CURLM *multi_take(rlab_llm *llm)
{
    CURLM *m = NULL;
    pthread_mutex_lock(&llm->idle_mu);
    if (llm->n_idle > 0)
        m = llm->idle[--llm->n_idle];
    pthread_mutex_unlock(&llm->idle_mu);
    if (!m)
        m = curl_multi_init();
    if (m) {
        curl_multi_setopt(m, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)llm->max_in_flight);
        curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, (long)llm->max_in_flight);
    }
    return m;
}

/* Give a multi handle with no transfers back to the handle's idle list, or free it. */
static void multi_give(rlab_llm *llm, CURLM *m)
{
    if (!m)
        return;
    pthread_mutex_lock(&llm->idle_mu);
    int kept = llm->n_idle < RLAB_LLM_IDLE_MULTI;
    if (kept)
        llm->idle[llm->n_idle++] = m;
    pthread_mutex_unlock(&llm->idle_mu);
    if (!kept)
        curl_multi_cleanup(m);
}

void rlab_llm__openai_release(rlab_llm *llm)
{
    for (int i = 0; i < llm->n_idle; i++)
        curl_multi_cleanup(llm->idle[i]);
    llm->n_idle = 0;
}

rlab_llm__opipe *rlab_llm__opipe_new(rlab_llm *llm)
{
    rlab_llm__opipe *p = rlab_calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->llm = llm;
    /* per-pipe jitter stream: seeded, distinct per call */
    uint64_t call = __atomic_fetch_add(&llm->calls, 1, __ATOMIC_RELAXED);
    rlab_rng_seed(&p->jitter, llm->seed ^ (0xA5A5A5A5DEADBEEFull + call * 0x9E3779B97F4A7C15ull));
    p->multi = multi_take(llm);
    p->hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    struct curl_slist *h2 = p->hdrs ? curl_slist_append(p->hdrs, "Accept: application/json") : NULL;
    struct curl_slist *h3 = h2 ? curl_slist_append(h2, "Expect:") : NULL; /* no 100-continue */
    int hdr_ok = h3 != NULL;
    if (hdr_ok && llm->key) {
        size_t len = strlen(llm->key) + 32;
        p->auth = rlab_malloc(len);
        if (p->auth)
            snprintf(p->auth, len, "Authorization: Bearer %s", llm->key);
        hdr_ok = p->auth && curl_slist_append(p->hdrs, p->auth) != NULL;
    }
    p->setup_failed = !p->multi || !hdr_ok;
    return p;
}

int rlab_llm__opipe_pending(const rlab_llm__opipe *p) { return p ? p->pending : 0; }

static int push_done(rlab_llm__opipe *p, int64_t idx)
{
    if (p->n_done == p->cap_done) {
        int64_t cap = p->cap_done ? 2 * p->cap_done : 64;
        int64_t *q = rlab_realloc(p->doneq, (size_t)cap * sizeof *q);
        if (!q)
            return -1;
        p->doneq = q;
        p->cap_done = cap;
    }
    p->doneq[p->n_done++] = idx;
    return 0;
}

int rlab_llm__opipe_submit(rlab_llm__opipe *p, const rlab_llm_req *req, int64_t tag)
{
    if (p->n_all == p->cap_all) {
        int64_t cap = p->cap_all ? 2 * p->cap_all : 64;
        job **a = rlab_realloc(p->all, (size_t)cap * sizeof *a);
        if (!a)
            return RLAB_ENOMEM;
        p->all = a;
        p->cap_all = cap;
    }
    /* reserve the done-queue slot now, so finishing a job never needs memory */
    if (p->n_done + p->pending + 1 > p->cap_done) {
        int64_t cap = p->cap_done ? 2 * p->cap_done : 64;
        while (cap < p->n_done + p->pending + 1)
            cap *= 2;
        int64_t *q = rlab_realloc(p->doneq, (size_t)cap * sizeof *q);
        if (!q)
            return RLAB_ENOMEM;
        p->doneq = q;
        p->cap_done = cap;
    }
    job *j = rlab_calloc(1, sizeof *j);
    if (!j)
        return RLAB_ENOMEM;
    j->tag = tag;
    j->seq = p->n_all;
    j->t_first = -1;
    j->state = JOB_WAIT;
    j->res.prompt_tokens = j->res.completion_tokens = -1;
    p->all[p->n_all++] = j;
    p->pending++;
    int bad = 0;
    if (rlab_llm__check_req(p->llm, req, &j->res)) {
        bad = 1;
    } else if (p->setup_failed) {
        rlab_llm__fail(p->llm, &j->res, RLAB_ENOMEM, "llm: out of memory (curl setup)");
        bad = 1;
    } else {
        j->body = build_body(p->llm, req, &j->body_len);
        if (!j->body) {
            rlab_llm__fail(p->llm, &j->res, RLAB_ENOMEM, "llm: out of memory building request");
            bad = 1;
        }
    }
    if (bad) {
        j->state = JOB_DONE;
        push_done(p, j->seq); /* room reserved above */
    }
    return RLAB_OK;
}

/* Finish job j as cancelled. */
static void cancel_job(rlab_llm__opipe *p, job *j)
{
    if (j->state == JOB_RUNNING)
        p->running--;
    if (j->state == JOB_WAIT && j->attempts > 0)
        p->n_retry--;
    stop_job(p->multi, j);
    rlab_llm__fail(p->llm, &j->res, RLAB_ECANCELED, "llm: cancelled");
    j->res.attempts = j->attempts;
    if (j->t_first >= 0)
        j->res.latency = rlab_now() - j->t_first;
    j->state = JOB_DONE;
    push_done(p, j->seq);
}

/* Start due jobs: retries whose time has come (in submission order), then fresh ones. */
static void start_due(rlab_llm__opipe *p)
{
    rlab_llm *llm = p->llm;
    double now = rlab_now();
    for (int64_t i = 0; p->n_retry > 0 && i < p->next_fresh && p->running < llm->max_in_flight;
         i++) {
        job *j = p->all[i];
        if (!j || j->state != JOB_WAIT || j->t_ready > now)
            continue;
        p->n_retry--;
        if (start_job(llm, p->multi, p->hdrs, j)) {
            rlab_llm__fail(llm, &j->res, RLAB_ENOMEM, "llm: cannot start a transfer");
            j->state = JOB_DONE;
            push_done(p, j->seq);
            continue;
        }
        p->running++;
    }
    while (p->next_fresh < p->n_all && p->running < llm->max_in_flight) {
        job *j = p->all[p->next_fresh++];
        if (!j || j->state != JOB_WAIT)
            continue;
        j->t_first = now;
        if (start_job(llm, p->multi, p->hdrs, j)) {
            rlab_llm__fail(llm, &j->res, RLAB_ENOMEM, "llm: cannot start a transfer");
            j->state = JOB_DONE;
            push_done(p, j->seq);
            continue;
        }
        p->running++;
    }
}

/* One turn of the engine: start what is due, move the transfers, collect the finished. */
static void pump(rlab_llm__opipe *p)
{
    start_due(p);
    int still = 0;
    curl_multi_perform(p->multi, &still);
    CURLMsg *m;
    int q;
    while ((m = curl_multi_info_read(p->multi, &q)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        char *priv = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
        job *j = (job *)(void *)priv;
        CURLcode rc = m->data.result; /* read before the handle is removed */
        p->running--;
        finish_job(p->llm, p->multi, j, rc, &j->res, &p->jitter);
        if (j->state == JOB_DONE)
            push_done(p, j->seq);
        else
            p->n_retry++;
    }
    /* a finished transfer frees a slot: start the next one before anyone waits */
    if (p->running < p->llm->max_in_flight)
        start_due(p);
}

int rlab_llm__opipe_next(rlab_llm__opipe *p, int64_t *tag, rlab_llm_result *res)
{
    if (!p || p->pending == 0)
        return 0;
    while (p->head_done == p->n_done) {
        if (rlab_llm__cancelled(p->llm)) {
            for (int64_t i = 0; i < p->n_all; i++)
                if (p->all[i] && p->all[i]->state != JOB_DONE)
                    cancel_job(p, p->all[i]);
            break;
        }
        pump(p);
        if (p->head_done < p->n_done)
            break;
        /* sleep until a transfer progresses, the next retry is due, or the cancel poll */
        int wait_ms = POLL_MS;
        if (p->n_retry > 0 && p->running < p->llm->max_in_flight) {
            double next_ready = -1;
            for (int64_t i = 0; i < p->n_all; i++) {
                job *j = p->all[i];
                if (j && j->state == JOB_WAIT && j->attempts > 0 &&
                    (next_ready < 0 || j->t_ready < next_ready))
                    next_ready = j->t_ready;
            }
            if (next_ready >= 0) {
                double ms = (next_ready - rlab_now()) * 1000.0;
                if (ms < wait_ms)
                    wait_ms = ms <= 0 ? 0 : (int)ceil(ms);
            }
        }
        if (wait_ms > 0)
            curl_multi_poll(p->multi, NULL, 0, wait_ms, NULL);
    }
    int64_t idx = p->doneq[p->head_done++];
    job *j = p->all[idx];
    p->all[idx] = NULL;
    *tag = j->tag;
    *res = j->res; /* the text moves to the caller */
    rlab_free(j->body);
    rlab_free(j->resp);
    rlab_free(j);
    p->pending--;
    if (p->pending == 0) { /* all delivered: start the arrays again */
        p->n_all = p->next_fresh = 0;
        p->n_done = p->head_done = 0;
        p->n_retry = 0;
    }
    return 1;
}

void rlab_llm__opipe_free(rlab_llm__opipe *p)
{
    if (!p)
        return;
    for (int64_t i = 0; i < p->n_all; i++) {
        job *j = p->all[i];
        if (!j)
            continue;
        if (p->multi)
            stop_job(p->multi, j);
        rlab_free(j->res.text);
        rlab_free(j->body);
        rlab_free(j->resp);
        rlab_free(j);
    }
    rlab_free(p->all);
    rlab_free(p->doneq);
    /* a multi handle whose transfers were all removed keeps its idle connections */
    multi_give(p->llm, p->multi);
    curl_slist_free_all(p->hdrs);
    if (p->auth) {
        volatile char *a = p->auth;
        for (size_t i = 0; a[i]; i++)
            a[i] = 0;
        rlab_free(p->auth);
    }
    rlab_free(p);
}

void rlab_llm__openai_run(rlab_llm *llm, const rlab_llm_req *reqs, int n, rlab_llm_result *results)
{
    rlab_llm__opipe *p = rlab_llm__opipe_new(llm);
    int i = 0;
    for (; p && i < n; i++)
        if (rlab_llm__opipe_submit(p, &reqs[i], i))
            break;
    if (!p || i < n) {
        /* out of memory queueing: the requests not queued fail, the queued ones run */
        for (int k = i; k < n; k++)
            rlab_llm__fail(llm, &results[k], RLAB_ENOMEM, "llm: out of memory");
        if (!p)
            return;
    }
    int done = 0;
    int64_t tag;
    rlab_llm_result r;
    while (rlab_llm__opipe_next(p, &tag, &r)) {
        results[tag] = r;
        done++;
        if (llm->progress)
            llm->progress(llm->progress_ud, done + (n - i), n);
    }
    rlab_llm__opipe_free(p);
}
