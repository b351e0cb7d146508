/*
 * core/llm: backend handle and configuration, the offline policy registry and dispatcher,
 * the template renderer, result helpers and key redaction. The HTTP engine is in
 * llm_openai.c.
 */
#include "llm/llm.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm/llm_internal.h"

struct rlab_llm_out {
    char *buf;
    size_t len, cap;
    int oom;
};

static const char REDACTED[] = "[redacted]";

/* ---- small helpers ----------------------------------------------------------------- */

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && memcmp(s + a - b, suffix, b) == 0;
}

static const char *env_nonempty(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

static uint64_t mix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

static uint64_t fnv1a(uint64_t h, const char *s)
{
    if (s)
        for (; *s; s++)
            h = (h ^ (unsigned char)*s) * 0x100000001B3ull;
    return (h ^ 0xFF) * 0x100000001B3ull; /* separator, so "ab","c" != "a","bc" */
}

/* Full endpoint from a base URL: ".../chat/completions" kept, ".../v1" + "/chat/completions",
 * anything else + "/v1/chat/completions" (trailing slashes dropped first). */
static char *endpoint_from_base(const char *base)
{
    size_t n = strlen(base);
    while (n > 0 && base[n - 1] == '/')
        n--;
    char *trim = rlab_malloc(n + 1);
    if (!trim)
        return NULL;
    memcpy(trim, base, n);
    trim[n] = 0;
    const char *suffix = ends_with(trim, "/chat/completions") ? ""
                         : ends_with(trim, "/v1")             ? "/chat/completions"
                                                              : "/v1/chat/completions";
    char *out = rlab_malloc(n + strlen(suffix) + 1);
    if (out) {
        memcpy(out, trim, n);
        strcpy(out + n, suffix);
    }
    rlab_free(trim);
    return out;
}

/* The URL with "user:pass@" (if any, between "://" and the first '/') replaced by "***@". */
static char *url_for_display(const char *url)
{
    const char *p = strstr(url, "://");
    const char *host = p ? p + 3 : url;
    const char *slash = strchr(host, '/');
    const char *at = NULL;
    for (const char *q = host; *q && (!slash || q < slash); q++)
        if (*q == '@')
            at = q;
    if (!at)
        return rlab_strdup(url);
    size_t pre = (size_t)(host - url);
    char *out = rlab_malloc(pre + 3 + strlen(at) + 1);
    if (!out)
        return NULL;
    memcpy(out, url, pre);
    memcpy(out + pre, "***", 3);
    strcpy(out + pre + 3, at);
    return out;
}

/* no_proxy for curl: the user's $no_proxy / $NO_PROXY plus the loopback names, so a proxy
 * configured in the environment never intercepts a local server. */
static char *make_no_proxy(void)
{
    const char *user = env_nonempty("no_proxy");
    if (!user)
        user = env_nonempty("NO_PROXY");
    const char *loop = "localhost,127.0.0.1,::1";
    if (!user)
        return rlab_strdup(loop);
    if (strcmp(user, "*") == 0)
        return rlab_strdup("*");
    size_t n = strlen(user) + 1 + strlen(loop) + 1;
    char *s = rlab_malloc(n);
    if (s)
        snprintf(s, n, "%s,%s", user, loop);
    return s;
}

/* ---- redaction and per-request errors ---------------------------------------------- */

void rlab_llm__redact(const rlab_llm *llm, char *buf, size_t cap)
{
    if (!llm || !llm->key || !*llm->key || !buf || cap == 0)
        return;
    size_t klen = strlen(llm->key), rlen = sizeof REDACTED - 1;
    char *p = buf;
    while ((p = strstr(p, llm->key)) != NULL) {
        size_t tail = strlen(p + klen);
        size_t off = (size_t)(p - buf);
        /* new length = off + rlen + tail; truncate the tail to fit the buffer */
        if (off + rlen >= cap) { /* not even the marker fits: cut here */
            *p = 0;
            return;
        }
        size_t keep = tail;
        if (off + rlen + keep + 1 > cap)
            keep = cap - 1 - off - rlen;
        memmove(p + rlen, p + klen, keep);
        p[rlen + keep] = 0;
        memcpy(p, REDACTED, rlen);
        p += rlen;
    }
}

int rlab_llm__fail(const rlab_llm *llm, rlab_llm_result *res, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->error, sizeof res->error, fmt, ap);
    va_end(ap);
    rlab_llm__redact(llm, res->error, sizeof res->error);
    res->status = code;
    return code;
}

int rlab_llm__cancelled(const rlab_llm *llm) { return llm->cancel && llm->cancel(llm->cancel_ud); }

int rlab_llm__check_req(const rlab_llm *llm, const rlab_llm_req *req, rlab_llm_result *res)
{
    if (!req->msgs || req->n_msgs < 1)
        return rlab_llm__fail(llm, res, RLAB_EINVAL, "llm: request has no messages");
    for (int i = 0; i < req->n_msgs; i++)
        if (!req->msgs[i].role || !req->msgs[i].content)
            return rlab_llm__fail(llm, res, RLAB_EINVAL,
                                  "llm: message %d has a NULL role or content", i);
    if (req->opts.max_tokens < 0)
        return rlab_llm__fail(llm, res, RLAB_EINVAL, "llm: max_tokens %d < 0",
                              req->opts.max_tokens);
    return RLAB_OK;
}

void rlab_llm__apply_stop(char *text, const rlab_llm_opts *opts)
{
    if (!text)
        return;
    char *cut = NULL;
    for (int i = 0; i < RLAB_LLM_MAX_STOP; i++) {
        const char *s = opts->stop[i];
        if (!s || !*s)
            continue;
        char *p = strstr(text, s);
        if (p && (!cut || p < cut))
            cut = p;
    }
    if (cut)
        *cut = 0;
}

/* ---- handle -------------------------------------------------------------------------- */

static int check_num(double v, const char *name, rlab_err *err)
{
    if (!(v >= 0))
        return rlab_errf(err, RLAB_EINVAL, "llm: config %s must be >= 0", name);
    return RLAB_OK;
}

rlab_llm *rlab_llm_new(const rlab_llm_config *cfg, rlab_err *err)
{
    static const rlab_llm_config zero = {0};
    if (!cfg)
        cfg = &zero;
    int kind;
    if (!cfg->backend || !*cfg->backend || strcmp(cfg->backend, "offline") == 0)
        kind = RLAB_LLM_OFFLINE;
    else if (strcmp(cfg->backend, "openai") == 0)
        kind = RLAB_LLM_OPENAI;
    else {
        rlab_errf(err, RLAB_EINVAL, "llm: unknown backend '%s' (expected offline or openai)",
                  cfg->backend);
        return NULL;
    }
    if (check_num(cfg->timeout, "timeout", err) ||
        check_num(cfg->connect_timeout, "connect_timeout", err) ||
        check_num(cfg->backoff_base, "backoff_base", err) ||
        check_num(cfg->backoff_max, "backoff_max", err))
        return NULL;
    if (cfg->max_attempts < 0 || cfg->max_in_flight < 0) {
        rlab_errf(err, RLAB_EINVAL, "llm: config max_attempts and max_in_flight must be >= 0");
        return NULL;
    }
    if (kind == RLAB_LLM_OPENAI && rlab_llm__openai_init(err))
        return NULL;

    rlab_llm *llm = rlab_calloc(1, sizeof *llm);
    if (!llm)
        goto oom;
    pthread_mutex_init(&llm->idle_mu, NULL);
    llm->kind = kind;
    llm->seed = cfg->seed;
    llm->timeout = cfg->timeout > 0 ? cfg->timeout : 60.0;
    llm->connect_timeout = cfg->connect_timeout > 0 ? cfg->connect_timeout
                           : llm->timeout < 10      ? llm->timeout
                                                    : 10.0;
    llm->max_attempts = cfg->max_attempts > 0 ? cfg->max_attempts : 4;
    llm->backoff_base = cfg->backoff_base > 0 ? cfg->backoff_base : 0.5;
    llm->backoff_max = cfg->backoff_max > 0 ? cfg->backoff_max : 30.0;
    llm->max_in_flight = cfg->max_in_flight > 0 ? cfg->max_in_flight : 8;

    const char *model = cfg->model ? cfg->model : env_nonempty("RECLAB_LLM_MODEL");
    llm->model = rlab_strdup(model ? model : "default");
    if (!llm->model)
        goto oom;

    if (kind == RLAB_LLM_OPENAI) {
        const char *base = cfg->base_url ? cfg->base_url : env_nonempty("RECLAB_LLM_BASE_URL");
        if (!base)
            base = "http://127.0.0.1:8080/v1";
        if (strncmp(base, "http://", 7) != 0 && strncmp(base, "https://", 8) != 0) {
            rlab_errf(err, RLAB_EINVAL, "llm: base URL must start with http:// or https://");
            rlab_llm_free(llm);
            return NULL;
        }
        llm->url = endpoint_from_base(base);
        if (!llm->url)
            goto oom;
        llm->url_shown = url_for_display(llm->url);
        llm->no_proxy = make_no_proxy();
        if (!llm->url_shown || !llm->no_proxy)
            goto oom;
    }

    const char *key = NULL;
    llm->key_source = "none";
    if (cfg->api_key) {
        key = cfg->api_key;
        llm->key_source = "config";
    } else if ((key = env_nonempty("RECLAB_LLM_API_KEY")) != NULL) {
        llm->key_source = "RECLAB_LLM_API_KEY";
    } else if ((key = env_nonempty("OPENAI_API_KEY")) != NULL) {
        llm->key_source = "OPENAI_API_KEY";
    }
    if (key && *key) {
        llm->key = rlab_strdup(key);
        if (!llm->key)
            goto oom;
    } else {
        llm->key_source = "none";
    }
    return llm;
oom:
    rlab_llm_free(llm);
    rlab_errf(err, RLAB_ENOMEM, "llm: out of memory creating the backend");
    return NULL;
}

void rlab_llm_free(rlab_llm *llm)
{
    if (!llm)
        return;
    if (llm->kind == RLAB_LLM_OPENAI)
        rlab_llm__openai_release(llm);
    pthread_mutex_destroy(&llm->idle_mu);
    for (int i = 0; i < llm->n_pol; i++)
        rlab_free(llm->pol[i].task);
    rlab_free(llm->pol);
    if (llm->key) { /* do not leave the key in freed memory */
        volatile char *k = llm->key;
        for (size_t i = 0; k[i]; i++)
            k[i] = 0;
    }
    rlab_free(llm->key);
    rlab_free(llm->url);
    rlab_free(llm->url_shown);
    rlab_free(llm->no_proxy);
    rlab_free(llm->model);
    rlab_free(llm);
}

const char *rlab_llm_backend_name(const rlab_llm *llm)
{
    return llm && llm->kind == RLAB_LLM_OPENAI ? "openai" : "offline";
}

int rlab_llm_describe(const rlab_llm *llm, char *buf, size_t n)
{
    char tmp[1024];
    int len;
    if (!llm)
        len = snprintf(tmp, sizeof tmp, "llm: (none)");
    else if (llm->kind == RLAB_LLM_OFFLINE)
        len = snprintf(tmp, sizeof tmp, "offline seed=%llu policies=%d",
                       (unsigned long long)llm->seed, llm->n_pol);
    else
        len = snprintf(tmp, sizeof tmp,
                       "openai url=%s model=%s key=%s%s%s timeout=%gs attempts=%d "
                       "backoff=%gs..%gs in_flight=%d seed=%llu",
                       llm->url_shown, llm->model, llm->key ? "set" : "none",
                       llm->key ? " key_from=" : "", llm->key ? llm->key_source : "", llm->timeout,
                       llm->max_attempts, llm->backoff_base, llm->backoff_max, llm->max_in_flight,
                       (unsigned long long)llm->seed);
    rlab_llm__redact(llm, tmp, sizeof tmp); /* a model name could contain it */
    len = (int)strlen(tmp);
    if (buf && n)
        snprintf(buf, n, "%s", tmp);
    return len;
}

void rlab_llm_set_cancel(rlab_llm *llm, rlab_llm_cancel_fn fn, void *ud)
{
    if (!llm)
        return;
    llm->cancel = fn;
    llm->cancel_ud = ud;
}

void rlab_llm_set_progress(rlab_llm *llm, rlab_llm_progress_fn fn, void *ud)
{
    if (!llm)
        return;
    llm->progress = fn;
    llm->progress_ud = ud;
}

/* ---- results ------------------------------------------------------------------------- */

void rlab_llm_result_clear(rlab_llm_result *res)
{
    if (!res)
        return;
    rlab_free(res->text);
    memset(res, 0, sizeof *res);
}

void rlab_llm_results_clear(rlab_llm_result *res, int n)
{
    if (!res)
        return;
    for (int i = 0; i < n; i++)
        rlab_llm_result_clear(&res[i]);
}

static void result_init(rlab_llm_result *res)
{
    memset(res, 0, sizeof *res);
    res->prompt_tokens = res->completion_tokens = -1;
}

/* ---- output buffer ------------------------------------------------------------------- */

static int out_reserve(rlab_llm_out *out, size_t extra)
{
    if (out->oom)
        return RLAB_ENOMEM;
    if (out->len + extra + 1 <= out->cap)
        return RLAB_OK;
    size_t cap = out->cap ? out->cap : 64;
    while (cap < out->len + extra + 1)
        cap *= 2;
    char *p = rlab_realloc(out->buf, cap);
    if (!p) {
        out->oom = 1;
        return RLAB_ENOMEM;
    }
    out->buf = p;
    out->cap = cap;
    p[out->len] = 0;
    return RLAB_OK;
}

int rlab_llm_out_puts(rlab_llm_out *out, const char *s)
{
    if (!out || !s)
        return RLAB_EINVAL;
    size_t n = strlen(s);
    if (out_reserve(out, n))
        return RLAB_ENOMEM;
    memcpy(out->buf + out->len, s, n + 1);
    out->len += n;
    return RLAB_OK;
}

int rlab_llm_out_printf(rlab_llm_out *out, const char *fmt, ...)
{
    if (!out || !fmt)
        return RLAB_EINVAL;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return RLAB_EINVAL;
    if (out_reserve(out, (size_t)n))
        return RLAB_ENOMEM;
    va_start(ap, fmt);
    vsnprintf(out->buf + out->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    out->len += (size_t)n;
    return RLAB_OK;
}

const char *rlab_llm_out_text(const rlab_llm_out *out) { return out && out->buf ? out->buf : ""; }

/* ---- policy registry ----------------------------------------------------------------- */

static int find_exact(const rlab_llm *llm, const char *task)
{
    for (int i = 0; i < llm->n_pol; i++)
        if (strcmp(llm->pol[i].task, task) == 0)
            return i;
    return -1;
}

/* Exact tag, else the longest "prefix.*" pattern whose prefix (with the dot) starts the
 * task, else "*". */
static const rlab_llm_policy *lookup(const rlab_llm *llm, const char *task)
{
    if (!task)
        task = "";
    int i = find_exact(llm, task);
    if (i >= 0)
        return &llm->pol[i];
    const rlab_llm_policy *best = NULL, *star = NULL;
    size_t best_len = 0;
    for (int k = 0; k < llm->n_pol; k++) {
        const char *t = llm->pol[k].task;
        if (strcmp(t, "*") == 0) {
            star = &llm->pol[k];
            continue;
        }
        size_t n = strlen(t);
        if (n >= 2 && strcmp(t + n - 2, ".*") == 0 && strncmp(task, t, n - 1) == 0 &&
            n - 1 > best_len) {
            best = &llm->pol[k];
            best_len = n - 1;
        }
    }
    return best ? best : star;
}

int rlab_llm_register(rlab_llm *llm, const char *task, rlab_llm_policy_fn fn, void *ud,
                      rlab_err *err)
{
    if (!llm || !task || !*task || !fn)
        return rlab_errf(err, RLAB_EINVAL, "llm: register needs a handle, a task and a function");
    const char *star = strchr(task, '*');
    if (star && !(strcmp(task, "*") == 0 || (star[1] == 0 && star > task && star[-1] == '.')))
        return rlab_errf(err, RLAB_EINVAL,
                         "llm: bad task pattern '%s' ('*' only as \"*\" or a \".*\" suffix)", task);
    int i = find_exact(llm, task);
    if (i >= 0) {
        llm->pol[i].fn = fn;
        llm->pol[i].ud = ud;
        return RLAB_OK;
    }
    if (llm->n_pol == llm->cap_pol) {
        int cap = llm->cap_pol ? 2 * llm->cap_pol : 8;
        rlab_llm_policy *p = rlab_realloc(llm->pol, (size_t)cap * sizeof *p);
        if (!p)
            return rlab_errf(err, RLAB_ENOMEM, "llm: out of memory registering '%s'", task);
        llm->pol = p;
        llm->cap_pol = cap;
    }
    char *t = rlab_strdup(task);
    if (!t)
        return rlab_errf(err, RLAB_ENOMEM, "llm: out of memory registering '%s'", task);
    llm->pol[llm->n_pol++] = (rlab_llm_policy){t, fn, ud};
    return RLAB_OK;
}

int rlab_llm_unregister(rlab_llm *llm, const char *task, rlab_err *err)
{
    if (!llm || !task)
        return rlab_errf(err, RLAB_EINVAL, "llm: unregister needs a task");
    int i = find_exact(llm, task);
    if (i < 0)
        return rlab_errf(err, RLAB_ENOTFOUND, "llm: no offline policy for task '%s'", task);
    rlab_free(llm->pol[i].task);
    memmove(&llm->pol[i], &llm->pol[i + 1], (size_t)(llm->n_pol - i - 1) * sizeof *llm->pol);
    llm->n_pol--;
    return RLAB_OK;
}

int rlab_llm_has_policy(const rlab_llm *llm, const char *task)
{
    return llm && lookup(llm, task) != NULL;
}

/* ---- offline dispatch ---------------------------------------------------------------- */

static void offline_one(rlab_llm *llm, const rlab_llm_req *req, rlab_llm_result *res)
{
    double t0 = rlab_now();
    result_init(res);
    res->attempts = 1;
    if (rlab_llm__check_req(llm, req, res))
        goto done;
    const rlab_llm_policy *p = lookup(llm, req->task);
    if (!p) {
        rlab_llm__fail(llm, res, RLAB_ENOTFOUND, "llm: no offline policy for task '%s'",
                       req->task ? req->task : "(none)");
        goto done;
    }
    /* The request's own stream: handle seed, call seed, task and every message. */
    uint64_t h = fnv1a(0xCBF29CE484222325ull, req->task);
    for (int i = 0; i < req->n_msgs; i++) {
        h = fnv1a(h, req->msgs[i].role);
        h = fnv1a(h, req->msgs[i].content);
    }
    uint64_t s = mix64(llm->seed) ^ h;
    if (req->opts.has_seed)
        s = mix64(s ^ mix64(req->opts.seed + 0x5EEDull));
    rlab_rng rng;
    rlab_rng_seed(&rng, s);

    rlab_llm_out out = {0};
    rlab_err perr = {0};
    int rc = p->fn(req, &rng, &out, p->ud, &perr);
    if (rc == RLAB_OK && out.oom)
        rc = rlab_errf(&perr, RLAB_ENOMEM, "out of memory");
    if (rc != RLAB_OK) {
        rlab_llm__fail(llm, res, rc, "llm: offline policy '%s' failed for task '%s': %s", p->task,
                       req->task ? req->task : "(none)",
                       perr.msg[0] ? perr.msg : rlab_status_name(rc));
        rlab_free(out.buf);
        goto done;
    }
    if (!out.buf) {
        out.buf = rlab_strdup("");
        if (!out.buf) {
            rlab_llm__fail(llm, res, RLAB_ENOMEM, "llm: out of memory");
            goto done;
        }
    }
    rlab_llm__apply_stop(out.buf, &req->opts);
    res->text = out.buf;
    res->status = RLAB_OK;
    snprintf(res->finish_reason, sizeof res->finish_reason, "stop");
done:
    res->latency = rlab_now() - t0;
}

int rlab_llm_chat_offline(rlab_llm *llm, const rlab_llm_req *req, rlab_llm_result *res,
                          rlab_err *err)
{
    if (!llm || !req || !res)
        return rlab_errf(err, RLAB_EINVAL, "llm: chat needs a handle, a request and a result");
    offline_one(llm, req, res);
    if (res->status)
        rlab_errf(err, res->status, "%s", res->error);
    return res->status;
}

/* ---- calls --------------------------------------------------------------------------- */

int rlab_llm_chat_many(rlab_llm *llm, const rlab_llm_req *reqs, int n, rlab_llm_result *results,
                       rlab_err *err)
{
    if (!llm || n < 0 || (n > 0 && (!reqs || !results)))
        return rlab_errf(err, RLAB_EINVAL,
                         "llm: chat_many needs a handle, n >= 0, requests "
                         "and results");
    if (n == 0)
        return RLAB_OK;
    if (llm->kind == RLAB_LLM_OFFLINE) {
        for (int i = 0; i < n; i++) {
            if (rlab_llm__cancelled(llm)) {
                for (int j = i; j < n; j++) {
                    result_init(&results[j]);
                    rlab_llm__fail(llm, &results[j], RLAB_ECANCELED, "llm: cancelled");
                }
                break;
            }
            offline_one(llm, &reqs[i], &results[i]);
            if (llm->progress)
                llm->progress(llm->progress_ud, i + 1, n);
        }
    } else {
        for (int i = 0; i < n; i++)
            result_init(&results[i]);
        rlab_llm__openai_run(llm, reqs, n, results);
    }
    for (int i = 0; i < n; i++)
        if (results[i].status != RLAB_OK) {
            if (n == 1)
                return rlab_errf(err, results[i].status, "%s", results[i].error);
            return rlab_errf(err, results[i].status, "llm: request %d of %d failed: %s", i + 1, n,
                             results[i].error);
        }
    return RLAB_OK;
}

/* ---- pipe ---------------------------------------------------------------------------- */

struct rlab_llm_pipe {
    rlab_llm *llm;
    rlab_llm__opipe *http; /* openai */
    /* offline: results computed at submit, delivered in submission order */
    rlab_llm_result *res;
    int64_t *tag;
    int n, head, cap;
    int delivered; /* results returned (the progress hook's count) */
};

rlab_llm_pipe *rlab_llm_pipe_new(rlab_llm *llm, rlab_err *err)
{
    if (!llm) {
        rlab_errf(err, RLAB_EINVAL, "llm: pipe needs a handle");
        return NULL;
    }
    rlab_llm_pipe *p = rlab_calloc(1, sizeof *p);
    if (p)
        p->llm = llm;
    if (p && llm->kind == RLAB_LLM_OPENAI && !(p->http = rlab_llm__opipe_new(llm))) {
        rlab_free(p);
        p = NULL;
    }
    if (!p)
        rlab_errf(err, RLAB_ENOMEM, "llm: out of memory creating a pipe");
    return p;
}

int rlab_llm_pipe_submit(rlab_llm_pipe *p, const rlab_llm_req *req, int64_t tag, rlab_err *err)
{
    if (!p || !req)
        return rlab_errf(err, RLAB_EINVAL, "llm: pipe_submit needs a pipe and a request");
    if (p->http) {
        if (rlab_llm__opipe_submit(p->http, req, tag))
            return rlab_errf(err, RLAB_ENOMEM, "llm: out of memory queueing a request");
        return RLAB_OK;
    }
    if (p->n == p->cap) {
        int cap = p->cap ? 2 * p->cap : 16;
        rlab_llm_result *r = rlab_realloc(p->res, (size_t)cap * sizeof *r);
        if (!r)
            return rlab_errf(err, RLAB_ENOMEM, "llm: out of memory queueing a request");
        p->res = r;
        int64_t *t = rlab_realloc(p->tag, (size_t)cap * sizeof *t);
        if (!t)
            return rlab_errf(err, RLAB_ENOMEM, "llm: out of memory queueing a request");
        p->tag = t;
        p->cap = cap;
    }
    if (rlab_llm__cancelled(p->llm)) {
        result_init(&p->res[p->n]);
        rlab_llm__fail(p->llm, &p->res[p->n], RLAB_ECANCELED, "llm: cancelled");
    } else {
        offline_one(p->llm, req, &p->res[p->n]);
    }
    p->tag[p->n++] = tag;
    return RLAB_OK;
}

int rlab_llm_pipe_pending(const rlab_llm_pipe *p)
{
    if (!p)
        return 0;
    return p->http ? rlab_llm__opipe_pending(p->http) : p->n - p->head;
}

int rlab_llm_pipe_next(rlab_llm_pipe *p, int64_t *tag, rlab_llm_result *res)
{
    if (!p || !tag || !res)
        return 0;
    if (p->http) {
        if (!rlab_llm__opipe_next(p->http, tag, res))
            return 0;
    } else {
        if (p->head == p->n)
            return 0;
        *tag = p->tag[p->head];
        *res = p->res[p->head++];
        if (p->head == p->n)
            p->head = p->n = 0;
    }
    p->delivered++;
    if (p->llm->progress)
        p->llm->progress(p->llm->progress_ud, p->delivered,
                         p->delivered + rlab_llm_pipe_pending(p));
    return 1;
}

void rlab_llm_pipe_free(rlab_llm_pipe *p)
{
    if (!p)
        return;
    rlab_llm__opipe_free(p->http);
    for (int i = p->head; i < p->n; i++)
        rlab_llm_result_clear(&p->res[i]);
    rlab_free(p->res);
    rlab_free(p->tag);
    rlab_free(p);
}

int rlab_llm_chat(rlab_llm *llm, const rlab_llm_req *req, rlab_llm_result *res, rlab_err *err)
{
    if (!req || !res)
        return rlab_errf(err, RLAB_EINVAL, "llm: chat needs a request and a result");
    return rlab_llm_chat_many(llm, req, 1, res, err);
}

/* ---- templates ----------------------------------------------------------------------- */

const char *rlab_llm_last_user(const rlab_llm_req *req)
{
    if (!req || !req->msgs)
        return NULL;
    for (int i = req->n_msgs - 1; i >= 0; i--)
        if (req->msgs[i].role && strcmp(req->msgs[i].role, "user") == 0)
            return req->msgs[i].content;
    return NULL;
}

char *rlab_llm_render(const char *tmpl, const rlab_llm_var *vars, int n_vars, rlab_err *err)
{
    if (!tmpl || n_vars < 0 || (n_vars > 0 && !vars)) {
        rlab_errf(err, RLAB_EINVAL, "template: NULL template or variables");
        return NULL;
    }
    rlab_llm_out out = {0};
    if (out_reserve(&out, strlen(tmpl)))
        goto oom;
    const char *p = tmpl;
    while (*p) {
        const char *open = strstr(p, "{{");
        if (!open) {
            if (rlab_llm_out_puts(&out, p))
                goto oom;
            break;
        }
        if (out_reserve(&out, (size_t)(open - p)))
            goto oom;
        memcpy(out.buf + out.len, p, (size_t)(open - p));
        out.len += (size_t)(open - p);
        out.buf[out.len] = 0;
        if (strncmp(open, "{{{{", 4) == 0) { /* escaped literal "{{" */
            if (rlab_llm_out_puts(&out, "{{"))
                goto oom;
            p = open + 4;
            continue;
        }
        const char *close = strstr(open + 2, "}}");
        if (!close) {
            rlab_errf(err, RLAB_EINVAL, "template: unclosed '{{' at byte %ld", (long)(open - tmpl));
            rlab_free(out.buf);
            return NULL;
        }
        const char *a = open + 2, *b = close;
        while (a < b && isspace((unsigned char)*a))
            a++;
        while (b > a && isspace((unsigned char)b[-1]))
            b--;
        size_t nl = (size_t)(b - a);
        const char *val = NULL;
        for (int i = 0; i < n_vars; i++)
            if (vars[i].name && strlen(vars[i].name) == nl && memcmp(vars[i].name, a, nl) == 0) {
                val = vars[i].value ? vars[i].value : "";
                break;
            }
        if (!val) {
            rlab_errf(err, RLAB_EINVAL, "template: unknown variable '%.*s' at byte %ld",
                      (int)(nl > 64 ? 64 : nl), a, (long)(open - tmpl));
            rlab_free(out.buf);
            return NULL;
        }
        if (rlab_llm_out_puts(&out, val))
            goto oom;
        p = close + 2;
    }
    return out.buf;
oom:
    rlab_free(out.buf);
    rlab_errf(err, RLAB_ENOMEM, "template: out of memory");
    return NULL;
}
