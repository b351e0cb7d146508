/*
 * tests/llm: the language backend. Offline: policy dispatch, patterns, determinism, stop
 * strings, cancel, templates. openai: against the fake server on loopback (normal reply,
 * request body, malformed JSON, missing content, 429 / 500 then success, Retry-After,
 * timeout, dropped connection, refused connection, 400, cancel, concurrency, throughput,
 * key redaction, allocation failures). Every HTTP case is bounded by the client timeout.
 */
#include "llm/llm.h"

#include <arpa/inet.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fake_llm_server.h"
#include "harness.h"

#define KEY "sk-TESTKEY-0123456789abcdef"
/* a string literal as a policy's user data */
#define UD(s) ((void *)(uintptr_t)(s))

/* ---- offline policies used by the tests ------------------------------------------------ */

typedef struct agent {
    const char *name;
    int n_items;
} agent;

/* "[BUY]:: k" with k drawn from the request's RNG among the agent's items. */
static int pol_action(const rlab_llm_req *req, rlab_rng *rng, rlab_llm_out *out, void *ud,
                      rlab_err *err)
{
    const agent *a = req->ctx;
    int *calls = ud;
    if (!a)
        return rlab_errf(err, RLAB_EINVAL, "no agent in ctx");
    (*calls)++;
    return rlab_llm_out_printf(out, "[BUY]:: %d\n[WHY]:: %s likes it",
                               (int)rlab_rng_below(rng, (uint64_t)a->n_items), a->name);
}

/* Ten random numbers: any change of stream shows. */
static int pol_rand(const rlab_llm_req *req, rlab_rng *rng, rlab_llm_out *out, void *ud,
                    rlab_err *err)
{
    (void)req, (void)ud, (void)err;
    for (int i = 0; i < 10; i++)
        rlab_llm_out_printf(out, "%u ", (unsigned)rlab_rng_below(rng, 1000));
    return RLAB_OK;
}

static int pol_tag(const rlab_llm_req *req, rlab_rng *rng, rlab_llm_out *out, void *ud,
                   rlab_err *err)
{
    (void)req, (void)rng, (void)err;
    return rlab_llm_out_puts(out, ud);
}

static int pol_fail(const rlab_llm_req *req, rlab_rng *rng, rlab_llm_out *out, void *ud,
                    rlab_err *err)
{
    (void)req, (void)rng, (void)out, (void)ud;
    return rlab_errf(err, RLAB_EFORMAT, "agent state is broken");
}

static rlab_llm_req mkreq(const char *task, const rlab_llm_msg *m, int n)
{
    rlab_llm_req r = {0};
    r.task = task;
    r.msgs = m;
    r.n_msgs = n;
    return r;
}

/* ---- offline ------------------------------------------------------------------------- */

static void t_config(void)
{
    rlab_err err = {0};
    rlab_llm_config bad = {.backend = "gpt5"};
    CHECK(rlab_llm_new(&bad, &err) == NULL);
    CHECK_EQ_INT(err.code, RLAB_EINVAL);
    CHECK_STR_CONTAINS(err.msg, "unknown backend 'gpt5'");
    rlab_llm_config badurl = {.backend = "openai", .base_url = "ftp://x"};
    CHECK(rlab_llm_new(&badurl, &err) == NULL);
    CHECK_STR_CONTAINS(err.msg, "http://");
    rlab_llm_config neg = {.backend = "openai", .timeout = -1};
    CHECK(rlab_llm_new(&neg, &err) == NULL);
    CHECK_STR_CONTAINS(err.msg, "timeout");

    rlab_llm *llm = rlab_llm_new(NULL, &err); /* NULL config = offline */
    CHECK(llm != NULL);
    CHECK(strcmp(rlab_llm_backend_name(llm), "offline") == 0);
    char d[256];
    rlab_llm_describe(llm, d, sizeof d);
    CHECK_STR_CONTAINS(d, "offline seed=0 policies=0");
    rlab_llm_free(llm);

    /* endpoint derivation from the three base URL forms */
    const char *bases[] = {"http://h:1", "http://h:1/v1/", "http://h:1/v1/chat/completions"};
    for (int i = 0; i < 3; i++) {
        rlab_llm_config c = {.backend = "openai", .base_url = bases[i], .api_key = ""};
        llm = rlab_llm_new(&c, &err);
        CHECK(llm != NULL);
        rlab_llm_describe(llm, d, sizeof d);
        CHECK_STR_CONTAINS(d, "url=http://h:1/v1/chat/completions ");
        CHECK_STR_CONTAINS(d, "key=none");
        rlab_llm_free(llm);
    }
    rlab_llm_free(NULL);
}

static void t_dispatch(void)
{
    rlab_err err = {0};
    rlab_llm_config cfg = {.seed = 11};
    rlab_llm *llm = rlab_llm_new(&cfg, &err);
    int calls = 0;
    CHECK_EQ_INT(rlab_llm_register(llm, "recagent.action", pol_action, &calls, &err), RLAB_OK);
    CHECK_EQ_INT(rlab_llm_register(llm, "crs.ask", pol_tag, UD("- ask : which genre?"), &err),
                 RLAB_OK);
    agent a = {"Ann", 5};
    rlab_llm_msg m[] = {{"system", "You are Ann."}, {"user", "Pick a movie."}};
    rlab_llm_req req = mkreq("recagent.action", m, 2);
    req.ctx = &a;
    rlab_llm_result res = {0};
    CHECK_EQ_INT(rlab_llm_chat(llm, &req, &res, &err), RLAB_OK);
    CHECK_EQ_INT(calls, 1);
    int k = -1;
    char who[16] = "";
    CHECK_EQ_INT(sscanf(res.text, "[BUY]:: %d\n[WHY]:: %15s", &k, who), 2);
    CHECK(k >= 0 && k < 5);
    CHECK(strcmp(who, "Ann") == 0);
    CHECK_EQ_INT(res.attempts, 1);
    rlab_llm_result_clear(&res);
    CHECK(res.text == NULL);

    req.task = "crs.ask";
    CHECK_EQ_INT(rlab_llm_chat(llm, &req, &res, &err), RLAB_OK);
    CHECK(strcmp(res.text, "- ask : which genre?") == 0);
    CHECK_EQ_INT(calls, 1);
    rlab_llm_result_clear(&res);

    /* no policy: a clear error, never an echo */
    req.task = "recagent.post";
    CHECK_EQ_INT(rlab_llm_chat(llm, &req, &res, &err), RLAB_ENOTFOUND);
    CHECK(res.text == NULL);
    CHECK_STR_CONTAINS(res.error, "no offline policy for task 'recagent.post'");
    CHECK_STR_CONTAINS(err.msg, "no offline policy for task 'recagent.post'");
    rlab_llm_result_clear(&res);

    /* patterns: "recagent.*" then "*"; exact beats pattern, longest pattern wins */
    CHECK_EQ_INT(rlab_llm_register(llm, "recagent.*", pol_tag, UD("family"), &err), RLAB_OK);
    CHECK_EQ_INT(rlab_llm_register(llm, "recagent.chat.*", pol_tag, UD("chat family"), &err),
                 RLAB_OK);
    CHECK_EQ_INT(rlab_llm_register(llm, "*", pol_tag, UD("anything"), &err), RLAB_OK);
    CHECK_EQ_INT(rlab_llm_register(llm, "re*cagent", pol_tag, UD("x"), &err), RLAB_EINVAL);
    const char *tasks[] = {"recagent.post", "recagent.chat.reply", "crs.plan", "recagent.action"};
    const char *want[] = {"family", "chat family", "anything", NULL};
    for (int i = 0; i < 4; i++) {
        req.task = tasks[i];
        CHECK_EQ_INT(rlab_llm_chat(llm, &req, &res, &err), RLAB_OK);
        if (want[i])
            CHECK_MSG(strcmp(res.text, want[i]) == 0, "%s -> %s", tasks[i], res.text);
        else
            CHECK_STR_CONTAINS(res.text, "[BUY]::");
        rlab_llm_result_clear(&res);
    }
    CHECK(rlab_llm_has_policy(llm, "zzz"));
    CHECK_EQ_INT(rlab_llm_unregister(llm, "*", &err), RLAB_OK);
    CHECK(!rlab_llm_has_policy(llm, "zzz"));
    CHECK(rlab_llm_has_policy(llm, "recagent.zzz"));
    CHECK_EQ_INT(rlab_llm_unregister(llm, "*", &err), RLAB_ENOTFOUND);

    /* replace: the new function wins */
    CHECK_EQ_INT(rlab_llm_register(llm, "crs.ask", pol_tag, UD("- ask : which decade?"), &err),
                 RLAB_OK);
    req.task = "crs.ask";
    CHECK_EQ_INT(rlab_llm_chat(llm, &req, &res, &err), RLAB_OK);
    CHECK(strcmp(res.text, "- ask : which decade?") == 0);
    rlab_llm_result_clear(&res);

    /* a failing policy reports its own message and the task */
    CHECK_EQ_INT(rlab_llm_register(llm, "broken", pol_fail, NULL, &err), RLAB_OK);
    req.task = "broken";
    CHECK_EQ_INT(rlab_llm_chat(llm, &req, &res, &err), RLAB_EFORMAT);
    CHECK_STR_CONTAINS(res.error, "task 'broken'");
    CHECK_STR_CONTAINS(res.error, "agent state is broken");
    rlab_llm_result_clear(&res);

    /* bad request shape */
    rlab_llm_req empty = mkreq("crs.ask", NULL, 0);
    CHECK_EQ_INT(rlab_llm_chat(llm, &empty, &res, &err), RLAB_EINVAL);
    rlab_llm_result_clear(&res);
    char d[128];
    rlab_llm_describe(llm, d, sizeof d);
    CHECK_STR_CONTAINS(d, "offline seed=11 policies=5");
    rlab_llm_free(llm);
}

static char *offline_text(uint64_t seed, const char *user, int has_seed, uint64_t call_seed)
{
    rlab_err err = {0};
    rlab_llm_config cfg = {.seed = seed};
    rlab_llm *llm = rlab_llm_new(&cfg, &err);
    rlab_llm_register(llm, "rand", pol_rand, NULL, &err);
    rlab_llm_msg m[] = {{"user", user}};
    rlab_llm_req req = mkreq("rand", m, 1);
    req.opts.has_seed = has_seed;
    req.opts.seed = call_seed;
    rlab_llm_result res = {0};
    rlab_llm_chat(llm, &req, &res, &err);
    char *t = res.text;
    res.text = NULL;
    rlab_llm_free(llm);
    return t;
}

static void t_determinism(void)
{
    char *a = offline_text(5, "hello", 0, 0), *b = offline_text(5, "hello", 0, 0);
    char *c = offline_text(6, "hello", 0, 0), *d = offline_text(5, "hellp", 0, 0);
    char *e = offline_text(5, "hello", 1, 1), *f = offline_text(5, "hello", 1, 2);
    char *g = offline_text(5, "hello", 1, 1);
    CHECK(a && b && c && d && e && f && g);
    CHECK_MSG(strcmp(a, b) == 0, "same seed, same text: '%s' vs '%s'", a, b);
    CHECK_MSG(strcmp(a, c) != 0, "handle seed changes the text");
    CHECK_MSG(strcmp(a, d) != 0, "message changes the text");
    CHECK_MSG(strcmp(e, f) != 0, "call seed changes the text");
    CHECK_MSG(strcmp(e, g) == 0, "same call seed, same text");
    CHECK_MSG(strcmp(a, e) != 0, "has_seed mixes the call seed in");
    free(a), free(b), free(c), free(d), free(e), free(f), free(g);

    /* order independence: a batch and its reverse give the same text per request */
    rlab_err err = {0};
    rlab_llm_config cfg = {.seed = 99};
    rlab_llm *llm = rlab_llm_new(&cfg, &err);
    rlab_llm_register(llm, "rand", pol_rand, NULL, &err);
    enum { N = 6 };
    rlab_llm_msg m[N][1];
    char users[N][16];
    rlab_llm_req fwd[N], rev[N];
    for (int i = 0; i < N; i++) {
        snprintf(users[i], sizeof users[i], "user %d", i);
        m[i][0] = (rlab_llm_msg){"user", users[i]};
        fwd[i] = mkreq("rand", m[i], 1);
    }
    for (int i = 0; i < N; i++)
        rev[i] = fwd[N - 1 - i];
    rlab_llm_result r1[N], r2[N];
    CHECK_EQ_INT(rlab_llm_chat_many(llm, fwd, N, r1, &err), RLAB_OK);
    CHECK_EQ_INT(rlab_llm_chat_many(llm, rev, N, r2, &err), RLAB_OK);
    for (int i = 0; i < N; i++)
        CHECK(strcmp(r1[i].text, r2[N - 1 - i].text) == 0);
    CHECK(strcmp(r1[0].text, r1[1].text) != 0);
    rlab_llm_results_clear(r1, N);
    rlab_llm_results_clear(r2, N);
    rlab_llm_free(llm);
}

static int cancel_after_calls(void *ud)
{
    int *budget = ud;
    return (*budget)-- <= 0;
}

static void t_stop_cancel(void)
{
    rlab_err err = {0};
    rlab_llm *llm = rlab_llm_new(NULL, &err);
    rlab_llm_register(llm, "t", pol_tag, UD("[SAY]:: hi there\nGOODBYE: bye"), &err);
    rlab_llm_msg m[] = {{"user", "x"}};
    rlab_llm_req req = mkreq("t", m, 1);
    req.opts.stop[0] = "GOODBYE";
    req.opts.stop[1] = "there";
    rlab_llm_result res = {0};
    CHECK_EQ_INT(rlab_llm_chat(llm, &req, &res, &err), RLAB_OK);
    CHECK(strcmp(res.text, "[SAY]:: hi ") == 0);
    rlab_llm_result_clear(&res);

    /* cancel: the hook allows 2 requests, the rest are cancelled */
    int budget = 2;
    rlab_llm_set_cancel(llm, cancel_after_calls, &budget);
    rlab_llm_req reqs[5] = {req, req, req, req, req};
    rlab_llm_result rs[5];
    CHECK_EQ_INT(rlab_llm_chat_many(llm, reqs, 5, rs, &err), RLAB_ECANCELED);
    CHECK_EQ_INT(rs[0].status, RLAB_OK);
    CHECK_EQ_INT(rs[1].status, RLAB_OK);
    for (int i = 2; i < 5; i++)
        CHECK_EQ_INT(rs[i].status, RLAB_ECANCELED);
    CHECK_STR_CONTAINS(err.msg, "request 3 of 5 failed: llm: cancelled");
    rlab_llm_results_clear(rs, 5);
    rlab_llm_free(llm);
}

static void t_template(void)
{
    rlab_err err = {0};
    rlab_llm_var v[] = {{"name", "Ann"}, {"k", "3"}, {"empty", NULL}};
    char *s = rlab_llm_render("{{name}} picks [BUY]:: {{ k }}{{empty}}.", v, 3, &err);
    CHECK(s && strcmp(s, "Ann picks [BUY]:: 3.") == 0);
    rlab_free(s);
    s = rlab_llm_render("literal {{{{x}} and {{name}}", v, 3, &err);
    CHECK(s && strcmp(s, "literal {{x}} and Ann") == 0);
    rlab_free(s);
    s = rlab_llm_render("", v, 0, &err);
    CHECK(s && strcmp(s, "") == 0);
    rlab_free(s);
    CHECK(rlab_llm_render("hi {{who}}!", v, 3, &err) == NULL);
    CHECK_EQ_INT(err.code, RLAB_EINVAL);
    CHECK_STR_CONTAINS(err.msg, "unknown variable 'who' at byte 3");
    CHECK(rlab_llm_render("hi {{name", v, 3, &err) == NULL);
    CHECK_STR_CONTAINS(err.msg, "unclosed '{{' at byte 3");

    rlab_llm_msg m[] = {{"user", "a"}, {"assistant", "b"}, {"user", "c"}, {"system", "d"}};
    rlab_llm_req req = mkreq("x", m, 4);
    CHECK(strcmp(rlab_llm_last_user(&req), "c") == 0);
    req.n_msgs = 2;
    CHECK(strcmp(rlab_llm_last_user(&req), "a") == 0);

    /* allocation failures: an error, never a crash */
    for (long k = 0; k < 4; k++) {
        rlab_alloc_fail_after(k);
        s = rlab_llm_render("{{name}} picks {{k}} and more text after it", v, 3, &err);
        rlab_alloc_fail_after(-1);
        CHECK(s == NULL ? err.code == RLAB_ENOMEM
                        : strcmp(s, "Ann picks 3 and more text after it") == 0);
        rlab_free(s);
    }
}

/* ---- openai against the fake server -------------------------------------------------- */

static fake_llm *srv;
static char base_url[64];

static void server_up(void)
{
    char e[128];
    srv = fake_llm_start(0, e, sizeof e);
    if (!srv)
        rlab_test_fail(__FILE__, __LINE__, "cannot start the fake server: %s", e);
    snprintf(base_url, sizeof base_url, "http://127.0.0.1:%d", srv ? fake_llm_port(srv) : 1);
}

static void server_down(void)
{
    fake_llm_stop(srv);
    srv = NULL;
}

static rlab_llm *openai(const char *model, int attempts, double timeout, int in_flight)
{
    rlab_err err = {0};
    rlab_llm_config cfg = {.backend = "openai",
                           .base_url = base_url,
                           .model = model,
                           .api_key = KEY,
                           .timeout = timeout,
                           .max_attempts = attempts,
                           .backoff_base = 0.01,
                           .backoff_max = 2,
                           .max_in_flight = in_flight,
                           .seed = 3};
    rlab_llm *llm = rlab_llm_new(&cfg, &err);
    CHECK_MSG(llm != NULL, "rlab_llm_new: %s", err.msg);
    return llm;
}

/* One request with user text `user`; fills res; returns the status. */
static int ask(rlab_llm *llm, const char *user, rlab_llm_result *res, rlab_err *err)
{
    rlab_llm_msg m[] = {{"system", "be brief"}, {"user", user}};
    rlab_llm_req req = mkreq(NULL, m, 2);
    return rlab_llm_chat(llm, &req, res, err);
}

static void no_key(const char *what, const char *s)
{
    CHECK_MSG(strstr(s, KEY) == NULL, "%s leaks the key: %s", what, s);
    CHECK_MSG(strstr(s, "0123456789abcdef") == NULL, "%s leaks part of the key: %s", what, s);
}

static void t_http_echo(void)
{
    server_up();
    rlab_llm *llm = openai("echo", 1, 5, 4);
    rlab_err err = {0};
    rlab_llm_result res = {0};
    CHECK_EQ_INT(ask(llm, "hello \"world\" / ünï", &res, &err), RLAB_OK);
    CHECK(res.text && strcmp(res.text, "echo: hello \"world\" / ünï") == 0);
    CHECK_EQ_INT(res.http_status, 200);
    CHECK_EQ_INT(res.attempts, 1);
    CHECK_EQ_INT(res.prompt_tokens, 7);
    CHECK_EQ_INT(res.completion_tokens, 3);
    CHECK(strcmp(res.finish_reason, "stop") == 0);
    CHECK(res.latency > 0 && res.latency < 5);
    CHECK_EQ_INT(res.error[0], 0);
    rlab_llm_result_clear(&res);
    char auth[128];
    fake_llm_last_auth(srv, auth, sizeof auth);
    CHECK(strcmp(auth, "Bearer " KEY) == 0);
    rlab_llm_free(llm);

    /* no key: no Authorization header */
    rlab_llm_config cfg = {
        .backend = "openai", .base_url = base_url, .model = "echo", .api_key = ""};
    llm = rlab_llm_new(&cfg, &err);
    CHECK_EQ_INT(ask(llm, "x", &res, &err), RLAB_OK);
    fake_llm_last_auth(srv, auth, sizeof auth);
    CHECK_EQ_INT(auth[0], 0);
    rlab_llm_result_clear(&res);
    rlab_llm_free(llm);
    server_down();
}

static void t_http_body(void)
{
    server_up();
    rlab_llm *llm = openai("echo", 1, 5, 4);
    rlab_err err = {0};
    rlab_llm_msg m[] = {{"system", "sys"}, {"user", "u1"}, {"assistant", "a1"}, {"user", "u2"}};
    rlab_llm_req req = mkreq("recagent.action", m, 4);
    req.model = "inspect";
    req.opts.temperature = 0.7;
    req.opts.max_tokens = 32;
    req.opts.stop[0] = "\n";
    req.opts.stop[2] = "END"; /* holes are skipped */
    req.opts.has_seed = 1;
    req.opts.seed = 42;
    rlab_llm_result res = {0};
    CHECK_EQ_INT(rlab_llm_chat(llm, &req, &res, &err), RLAB_OK);
    json_object *o = res.text ? json_tokener_parse(res.text) : NULL, *v;
    CHECK_MSG(o != NULL, "body is JSON: %s", res.text ? res.text : "(null)");
    if (o) {
        CHECK(json_object_object_get_ex(o, "model", &v) &&
              strcmp(json_object_get_string(v), "inspect") == 0);
        CHECK(json_object_object_get_ex(o, "temperature", &v) &&
              fabs(json_object_get_double(v) - 0.7) < 1e-12);
        CHECK(json_object_object_get_ex(o, "max_tokens", &v) && json_object_get_int(v) == 32);
        CHECK(json_object_object_get_ex(o, "seed", &v) && json_object_get_int64(v) == 42);
        CHECK(json_object_object_get_ex(o, "stream", &v) && !json_object_get_boolean(v));
        CHECK(json_object_object_get_ex(o, "stop", &v) && json_object_array_length(v) == 2 &&
              strcmp(json_object_get_string(json_object_array_get_idx(v, 0)), "\n") == 0 &&
              strcmp(json_object_get_string(json_object_array_get_idx(v, 1)), "END") == 0);
        CHECK(json_object_object_get_ex(o, "messages", &v) && json_object_array_length(v) == 4);
        json_object *m3 = json_object_array_get_idx(v, 2), *r, *c;
        CHECK(json_object_object_get_ex(m3, "role", &r) &&
              strcmp(json_object_get_string(r), "assistant") == 0);
        CHECK(json_object_object_get_ex(m3, "content", &c) &&
              strcmp(json_object_get_string(c), "a1") == 0);
        CHECK(!json_object_object_get_ex(o, "task", &v)); /* the tag is never sent */
        json_object_put(o);
    }
    rlab_llm_result_clear(&res);

    /* defaults: temperature 0 sent, nothing else optional */
    rlab_llm_req plain = mkreq(NULL, m, 2);
    plain.model = "inspect";
    CHECK_EQ_INT(rlab_llm_chat(llm, &plain, &res, &err), RLAB_OK);
    o = res.text ? json_tokener_parse(res.text) : NULL;
    CHECK(o != NULL);
    CHECK(json_object_object_get_ex(o, "temperature", &v) &&
          fabs(json_object_get_double(v)) < 1e-300);
    CHECK(!json_object_object_get_ex(o, "max_tokens", &v));
    CHECK(!json_object_object_get_ex(o, "seed", &v));
    CHECK(!json_object_object_get_ex(o, "stop", &v));
    json_object_put(o);
    rlab_llm_result_clear(&res);
    plain.opts.temperature = -1; /* leave it to the server */
    CHECK_EQ_INT(rlab_llm_chat(llm, &plain, &res, &err), RLAB_OK);
    o = res.text ? json_tokener_parse(res.text) : NULL;
    CHECK(o && !json_object_object_get_ex(o, "temperature", &v));
    json_object_put(o);
    rlab_llm_result_clear(&res);
    rlab_llm_free(llm);
    server_down();
}

static void t_http_malformed(void)
{
    server_up();
    char url[128];
    snprintf(url, sizeof url, "llm: malformed JSON from %s/v1/chat/completions: ", base_url);
    rlab_err err = {0};
    rlab_llm_result res = {0};
    rlab_llm *llm = openai("malformed", 3, 5, 4);
    CHECK_EQ_INT(ask(llm, "x", &res, &err), RLAB_ENET);
    CHECK_STR_CONTAINS(res.error, url);
    CHECK_STR_CONTAINS(res.error, "truncated JSON");
    CHECK_STR_CONTAINS(err.msg, url);
    CHECK(res.text == NULL);
    CHECK_EQ_INT(res.attempts, 1); /* not retried */
    CHECK_EQ_INT(fake_llm_requests(srv), 1);
    rlab_llm_result_clear(&res);
    rlab_llm_free(llm);

    llm = openai("nocontent", 3, 5, 4);
    CHECK_EQ_INT(ask(llm, "x", &res, &err), RLAB_ENET);
    CHECK_STR_CONTAINS(res.error, url);
    CHECK_STR_CONTAINS(res.error, "no choices[0]");
    rlab_llm_result_clear(&res);
    rlab_llm_free(llm);

    llm = openai("bad400", 3, 5, 4);
    fake_llm_reset_stats(srv);
    CHECK_EQ_INT(ask(llm, "x", &res, &err), RLAB_ENET);
    CHECK_STR_CONTAINS(res.error, "HTTP 400 from http://127.0.0.1:");
    CHECK_STR_CONTAINS(res.error, "unknown parameter");
    CHECK_EQ_INT(res.attempts, 1); /* 4xx other than 429/408: no retry */
    CHECK_EQ_INT(res.http_status, 400);
    CHECK_EQ_INT(fake_llm_requests(srv), 1);
    rlab_llm_result_clear(&res);
    rlab_llm_free(llm);
    server_down();
}

static void t_http_retry(void)
{
    server_up();
    rlab_err err = {0};
    rlab_llm_result res = {0};
    /* 429 twice then success: 3 attempts */
    rlab_llm *llm = openai("fail429:2", 4, 5, 4);
    double t0 = rlab_now();
    CHECK_EQ_INT(ask(llm, "again", &res, &err), RLAB_OK);
    CHECK(res.text && strcmp(res.text, "echo: again") == 0);
    CHECK_EQ_INT(res.attempts, 3);
    CHECK_EQ_INT(fake_llm_requests(srv), 3);
    CHECK_MSG(rlab_now() - t0 < 1.0, "Retry-After: 0 means no wait (took %.3f s)", rlab_now() - t0);
    rlab_llm_result_clear(&res);
    rlab_llm_free(llm);

    /* 429 more often than the attempts allow: a clear error naming the attempts */
    llm = openai("fail429:9", 3, 5, 4);
    fake_llm_reset_stats(srv);
    CHECK_EQ_INT(ask(llm, "never", &res, &err), RLAB_ENET);
    CHECK_STR_CONTAINS(res.error, "HTTP 429 from http://127.0.0.1:");
    CHECK_STR_CONTAINS(res.error, "rate limited, slow down");
    CHECK_STR_CONTAINS(res.error, "(after 3 attempts)");
    CHECK_EQ_INT(res.attempts, 3);
    CHECK_EQ_INT(res.http_status, 429);
    CHECK_EQ_INT(fake_llm_requests(srv), 3);
    rlab_llm_result_clear(&res);
    rlab_llm_free(llm);

    /* 500 once then success, with backoff (0.01 s base) */
    llm = openai("fail500:1", 3, 5, 4);
    CHECK_EQ_INT(ask(llm, "five hundred", &res, &err), RLAB_OK);
    CHECK_EQ_INT(res.attempts, 2);
    CHECK(res.latency >= 0.004); /* >= base * 0.5 jitter floor, minus clock slack */
    rlab_llm_result_clear(&res);
    rlab_llm_free(llm);

    /* Retry-After: 1 is honoured even though the backoff would be 0.01 s */
    llm = openai("retryafter1", 3, 5, 4);
    CHECK_EQ_INT(ask(llm, "wait", &res, &err), RLAB_OK);
    CHECK_EQ_INT(res.attempts, 2);
    CHECK_MSG(res.latency >= 0.95 && res.latency < 3, "latency %.3f", res.latency);
    rlab_llm_result_clear(&res);
    rlab_llm_free(llm);
    server_down();
}

static void t_http_timeout_drop(void)
{
    server_up();
    rlab_err err = {0};
    rlab_llm_result res = {0};
    /* a reply slower than the 0.2 s timeout: two attempts, then a timeout error */
    rlab_llm *llm = openai("slow", 2, 0.2, 4);
    double t0 = rlab_now();
    CHECK_EQ_INT(ask(llm, "slowly", &res, &err), RLAB_ENET);
    double dt = rlab_now() - t0;
    CHECK_STR_CONTAINS(res.error, "timeout after 0.2 s waiting for http://127.0.0.1:");
    CHECK_STR_CONTAINS(res.error, "(after 2 attempts)");
    CHECK_EQ_INT(res.attempts, 2);
    CHECK_MSG(dt >= 0.39 && dt < 2.0, "two 0.2 s timeouts took %.3f s", dt);
    rlab_llm_result_clear(&res);
    rlab_llm_free(llm);

    /* dropped connection: retried, then a connection error */
    llm = openai("drop", 3, 5, 4);
    fake_llm_reset_stats(srv);
    CHECK_EQ_INT(ask(llm, "bye", &res, &err), RLAB_ENET);
    CHECK_STR_CONTAINS(res.error, "connection error with http://127.0.0.1:");
    CHECK_STR_CONTAINS(res.error, "(after 3 attempts)");
    CHECK_EQ_INT(res.attempts, 3);
    CHECK_EQ_INT(res.http_status, 0);
    CHECK_EQ_INT(fake_llm_requests(srv), 3);
    rlab_llm_result_clear(&res);
    rlab_llm_free(llm);
    server_down();

    /* nobody listening: connection refused, retried, clear error */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    bind(fd, (struct sockaddr *)&a, sizeof a);
    getsockname(fd, (struct sockaddr *)&a, &al);
    close(fd); /* the port is now (very likely) closed */
    snprintf(base_url, sizeof base_url, "http://127.0.0.1:%d", ntohs(a.sin_port));
    llm = openai("echo", 2, 2, 4);
    t0 = rlab_now();
    CHECK_EQ_INT(ask(llm, "anyone?", &res, &err), RLAB_ENET);
    CHECK_STR_CONTAINS(res.error, "connection error with http://127.0.0.1:");
    CHECK_EQ_INT(res.attempts, 2);
    CHECK(rlab_now() - t0 < 2.0);
    rlab_llm_result_clear(&res);
    rlab_llm_free(llm);
}

static int cancel_after_time(void *ud) { return rlab_now() > *(double *)ud; }

static void t_http_cancel(void)
{
    server_up();
    rlab_err err = {0};
    rlab_llm *llm = openai("slow", 3, 8, 4);
    double deadline = rlab_now() + 0.15;
    rlab_llm_set_cancel(llm, cancel_after_time, &deadline);
    rlab_llm_msg m[] = {{"user", "x"}};
    rlab_llm_req reqs[3] = {mkreq(NULL, m, 1), mkreq(NULL, m, 1), mkreq(NULL, m, 1)};
    rlab_llm_result rs[3];
    double t0 = rlab_now();
    CHECK_EQ_INT(rlab_llm_chat_many(llm, reqs, 3, rs, &err), RLAB_ECANCELED);
    double dt = rlab_now() - t0;
    CHECK_MSG(dt < 0.6, "cancel took %.3f s", dt);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ_INT(rs[i].status, RLAB_ECANCELED);
        CHECK_EQ_INT(rs[i].attempts, 1);
    }
    rlab_llm_results_clear(rs, 3);
    rlab_llm_free(llm);
    server_down();
}

static void t_http_mixed_batch(void)
{
    server_up();
    rlab_err err = {0};
    rlab_llm *llm = openai("echo", 3, 5, 8);
    const char *models[] = {"echo", "malformed", "fail500:1", "delay:30", "bad400", "echo"};
    enum { N = 6 };
    rlab_llm_msg m[N][1];
    char users[N][16];
    rlab_llm_req reqs[N];
    for (int i = 0; i < N; i++) {
        snprintf(users[i], sizeof users[i], "q%d", i);
        m[i][0] = (rlab_llm_msg){"user", users[i]};
        reqs[i] = mkreq(NULL, m[i], 1);
        reqs[i].model = models[i];
    }
    rlab_llm_result rs[N];
    CHECK_EQ_INT(rlab_llm_chat_many(llm, reqs, N, rs, &err), RLAB_ENET);
    CHECK_STR_CONTAINS(err.msg, "request 2 of 6 failed: llm: malformed JSON");
    const int ok[N] = {1, 0, 1, 1, 0, 1};
    for (int i = 0; i < N; i++) {
        CHECK_EQ_INT(rs[i].status == RLAB_OK, ok[i]);
        if (ok[i]) {
            char want[32];
            snprintf(want, sizeof want, "echo: q%d", i);
            CHECK_MSG(rs[i].text && strcmp(rs[i].text, want) == 0, "result %d in order", i);
        }
    }
    CHECK_EQ_INT(rs[2].attempts, 2);
    CHECK_EQ_INT(rs[4].http_status, 400);
    rlab_llm_results_clear(rs, N);

    /* an invalid request fails alone */
    reqs[1] = mkreq(NULL, NULL, 0);
    reqs[4].model = "echo";
    CHECK_EQ_INT(rlab_llm_chat_many(llm, reqs, N, rs, &err), RLAB_EINVAL);
    CHECK_EQ_INT(rs[0].status, RLAB_OK);
    CHECK_EQ_INT(rs[1].status, RLAB_EINVAL);
    CHECK_EQ_INT(rs[4].status, RLAB_OK);
    rlab_llm_results_clear(rs, N);
    CHECK_EQ_INT(rlab_llm_chat_many(llm, reqs, 0, NULL, &err), RLAB_OK);
    CHECK_EQ_INT(rlab_llm_chat_many(llm, reqs, -1, rs, &err), RLAB_EINVAL);
    rlab_llm_free(llm);
    server_down();
}

/* n requests at delay:<ms> with `in_flight` concurrent; returns the wall time. */
static double run_delay_batch(int n, int in_flight, int ms, int *all_ok)
{
    rlab_err err = {0};
    char model[32];
    snprintf(model, sizeof model, "delay:%d", ms);
    rlab_llm *llm = openai(model, 2, 5, in_flight);
    rlab_llm_msg *m = calloc((size_t)n, sizeof *m);
    char(*users)[16] = calloc((size_t)n, sizeof *users);
    rlab_llm_req *reqs = calloc((size_t)n, sizeof *reqs);
    rlab_llm_result *rs = calloc((size_t)n, sizeof *rs);
    for (int i = 0; i < n; i++) {
        snprintf(users[i], sizeof users[i], "r%d", i);
        m[i] = (rlab_llm_msg){"user", users[i]};
        reqs[i] = mkreq(NULL, &m[i], 1);
    }
    double t0 = rlab_now();
    int rc = rlab_llm_chat_many(llm, reqs, n, rs, &err);
    double dt = rlab_now() - t0;
    *all_ok = rc == RLAB_OK;
    for (int i = 0; i < n && *all_ok; i++) {
        char want[32];
        snprintf(want, sizeof want, "echo: r%d", i);
        if (!rs[i].text || strcmp(rs[i].text, want) != 0 || rs[i].attempts != 1)
            *all_ok = 0;
    }
    if (rc)
        printf("batch failed: %s\n", err.msg);
    rlab_llm_results_clear(rs, n);
    free(m), free(users), free(reqs), free(rs);
    rlab_llm_free(llm);
    return dt;
}

static void t_http_concurrency(void)
{
    server_up();
    int ok;
    /* 16 requests at 300 ms with 16 in flight: one wave, well under 16 x 300 ms. The replies
     * take 300 ms so that all 16 are at the server at once even when opening the connections
     * is slow (under ThreadSanitizer a 50 ms server saw at most 15 at once) */
    double dt = run_delay_batch(16, 16, 300, &ok);
    CHECK(ok);
    CHECK_MSG(dt < 2.4, "16 x 300 ms with 16 in flight took %.3f s", dt);
    CHECK_MSG(dt >= 0.295, "cannot beat the server's 300 ms (%.3f s)", dt);
    CHECK_EQ_INT(fake_llm_peak(srv), 16);
    /* the limit holds: 8 requests, 2 in flight -> 4 waves of 50 ms */
    fake_llm_reset_stats(srv);
    dt = run_delay_batch(8, 2, 50, &ok);
    CHECK(ok);
    CHECK_MSG(dt >= 0.19, "8 x 50 ms with 2 in flight took only %.3f s", dt);
    CHECK_MSG(fake_llm_peak(srv) <= 2, "peak %d > max_in_flight 2", fake_llm_peak(srv));
    server_down();
}

/* The pipe: requests submitted while others are in flight, each result returned once with
 * its tag (completion order); a chain submits its next request from a reply; a bad
 * request comes back with its error; at most max_in_flight at the server; offline, results
 * in submission order. */
static void t_http_pipe(void)
{
    server_up();
    rlab_err err = {0};
    rlab_llm *llm = openai("delay:30", 1, 5, 4);
    rlab_llm_pipe *p = llm ? rlab_llm_pipe_new(llm, &err) : NULL;
    CHECK_MSG(p != NULL, "%s", err.msg);
    if (!p) {
        rlab_llm_free(llm);
        server_down();
        return;
    }
    char text[64][16];
    rlab_llm_msg m[64];
    int seen[64] = {0};
    for (int t = 0; t < 64; t++) {
        snprintf(text[t], sizeof text[t], "u%d", t);
        m[t] = (rlab_llm_msg){"user", text[t]};
    }
    /* six chains 0..5; chain c's next link is c + 10, then c + 20 (tags 0-25) */
    for (int t = 0; t < 6; t++) {
        rlab_llm_req rq = mkreq(NULL, &m[t], 1);
        CHECK_EQ_INT(rlab_llm_pipe_submit(p, &rq, t, &err), RLAB_OK);
    }
    rlab_llm_req bad = mkreq(NULL, &m[63], 0); /* no messages: queued, fails */
    CHECK_EQ_INT(rlab_llm_pipe_submit(p, &bad, 63, &err), RLAB_OK);
    CHECK_EQ_INT(rlab_llm_pipe_pending(p), 7);
    int64_t tag;
    rlab_llm_result r = {0};
    int got = 0;
    while (rlab_llm_pipe_next(p, &tag, &r)) {
        got++;
        CHECK(tag >= 0 && tag < 64);
        if (tag < 0 || tag >= 64)
            break;
        seen[tag]++;
        if (tag == 63) {
            CHECK_EQ_INT(r.status, RLAB_EINVAL);
        } else {
            char want[32];
            snprintf(want, sizeof want, "echo: u%d", (int)tag);
            CHECK_MSG(r.status == RLAB_OK && r.text && strcmp(r.text, want) == 0,
                      "tag %d: status %d text '%s'", (int)tag, r.status, r.text ? r.text : "");
            if (tag < 20) {
                rlab_llm_req rq = mkreq(NULL, &m[tag + 10], 1);
                CHECK_EQ_INT(rlab_llm_pipe_submit(p, &rq, tag + 10, &err), RLAB_OK);
            }
        }
        rlab_llm_result_clear(&r);
    }
    CHECK_EQ_INT(got, 19);
    for (int t = 0; t < 26; t++)
        CHECK_MSG(seen[t] == (t % 10 < 6), "tag %d returned %d times", t, seen[t]);
    CHECK_EQ_INT(rlab_llm_pipe_pending(p), 0);
    CHECK_MSG(fake_llm_peak(srv) <= 4, "peak %d > max_in_flight 4", fake_llm_peak(srv));
    rlab_llm_pipe_free(p);
    rlab_llm_free(llm);
    server_down();

    /* offline: answered at submit, returned in submission order */
    rlab_llm_config oc = {.seed = 1};
    llm = rlab_llm_new(&oc, &err);
    CHECK(rlab_llm_register(llm, "*", pol_rand, NULL, &err) == RLAB_OK);
    p = rlab_llm_pipe_new(llm, &err);
    for (int t = 0; p && t < 5; t++) {
        rlab_llm_req rq = mkreq("x", &m[t], 1);
        CHECK_EQ_INT(rlab_llm_pipe_submit(p, &rq, 40 - t, &err), RLAB_OK);
    }
    for (int t = 0; p && t < 5; t++) {
        CHECK_EQ_INT(rlab_llm_pipe_next(p, &tag, &r), 1);
        CHECK_EQ_INT(tag, 40 - t);
        CHECK(r.status == RLAB_OK && r.text && r.text[0]);
        rlab_llm_result_clear(&r);
    }
    CHECK_EQ_INT(rlab_llm_pipe_next(p, &tag, &r), 0);
    rlab_llm_pipe_free(p);
    rlab_llm_free(llm);
}

/* The progress hook: called as replies come in (per wave here), done increasing to n. */
typedef struct prog_log {
    int calls, last, monotonic, n;
} prog_log;

static void on_prog(void *ud, int done, int n)
{
    prog_log *p = ud;
    p->monotonic &= done > p->last && done <= n;
    p->calls++;
    p->last = done;
    p->n = n;
}

static void t_http_progress(void)
{
    server_up();
    rlab_err err = {0};
    rlab_llm *llm = openai("delay:50", 1, 5, 2);
    prog_log pl = {.monotonic = 1};
    rlab_llm_set_progress(llm, on_prog, &pl);
    enum { N = 8 };
    rlab_llm_msg m[N];
    rlab_llm_req reqs[N];
    rlab_llm_result rs[N];
    memset(rs, 0, sizeof rs);
    for (int i = 0; i < N; i++) {
        m[i] = (rlab_llm_msg){"user", "hi"};
        reqs[i] = mkreq(NULL, &m[i], 1);
    }
    CHECK_EQ_INT(rlab_llm_chat_many(llm, reqs, N, rs, &err), RLAB_OK);
    /* 8 requests, 2 in flight, 50 ms each: 4 waves, each reported before the next */
    CHECK_MSG(pl.calls >= 4, "%d progress calls", pl.calls);
    CHECK(pl.monotonic);
    CHECK_EQ_INT(pl.last, N);
    CHECK_EQ_INT(pl.n, N);
    rlab_llm_results_clear(rs, N);
    /* removed: no more calls */
    rlab_llm_set_progress(llm, NULL, NULL);
    int before = pl.calls;
    CHECK_EQ_INT(rlab_llm_chat_many(llm, reqs, 2, rs, &err), RLAB_OK);
    CHECK_EQ_INT(pl.calls, before);
    rlab_llm_results_clear(rs, 2);
    rlab_llm_free(llm);
    server_down();
}

static void t_http_throughput(void)
{
    server_up();
    int ok;
    enum { N = 128, K = 16 };
    double dt = run_delay_batch(N, K, 50, &ok);
    CHECK(ok);
    double rps = N / dt, ideal = K / 0.050;
    printf("llm throughput: %.1f req/s with %d in flight against a 50 ms server "
           "(%d requests in %.3f s; ideal %.0f req/s, %.0f%%)\n",
           rps, K, N, dt, ideal, 100.0 * rps / ideal);
    /* a figure, not an assertion: speed targets live in benchmarks (llm_throughput) */
    server_down();
}

/* One handle shared by two threads, each running its own batch at the same time. */
typedef struct thread_job {
    rlab_llm *llm;
    int id, ok;
} thread_job;

static void *batch_thread(void *arg)
{
    thread_job *t = arg;
    enum { N = 8 };
    rlab_llm_msg m[N][1];
    char users[N][24];
    rlab_llm_req reqs[N];
    rlab_llm_result rs[N];
    for (int i = 0; i < N; i++) {
        snprintf(users[i], sizeof users[i], "t%d-%d", t->id, i);
        m[i][0] = (rlab_llm_msg){"user", users[i]};
        reqs[i] = mkreq(NULL, m[i], 1);
    }
    rlab_err err = {0};
    t->ok = rlab_llm_chat_many(t->llm, reqs, N, rs, &err) == RLAB_OK;
    for (int i = 0; i < N && t->ok; i++) {
        char want[32];
        snprintf(want, sizeof want, "echo: t%d-%d", t->id, i);
        t->ok = rs[i].text && strcmp(rs[i].text, want) == 0;
    }
    rlab_llm_results_clear(rs, N);
    return NULL;
}

static void t_http_threads(void)
{
    server_up();
    rlab_llm *llm = openai("delay:50", 2, 5, 8);
    thread_job tj[2] = {{llm, 0, 0}, {llm, 1, 0}};
    pthread_t th[2];
    double t0 = rlab_now();
    for (int i = 0; i < 2; i++)
        CHECK_EQ_INT(pthread_create(&th[i], NULL, batch_thread, &tj[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    double dt = rlab_now() - t0;
    CHECK(tj[0].ok && tj[1].ok);
    CHECK_MSG(dt < 0.4, "two concurrent batches of 8 x 50 ms took %.3f s", dt);
    CHECK_EQ_INT(fake_llm_requests(srv), 16);
    rlab_llm_free(llm);
    server_down();
}

static void t_redaction(void)
{
    server_up();
    rlab_err err = {0};
    rlab_llm_result res = {0};
    /* the server echoes the Authorization header in its error body */
    rlab_llm *llm = openai("authecho", 3, 5, 4);
    CHECK_EQ_INT(ask(llm, "x", &res, &err), RLAB_ENET);
    CHECK_STR_CONTAINS(res.error, "HTTP 401");
    CHECK_STR_CONTAINS(res.error, "Bearer [redacted]");
    no_key("401 error", res.error);
    no_key("err.msg", err.msg);
    rlab_llm_result_clear(&res);
    char d[512];
    rlab_llm_describe(llm, d, sizeof d);
    no_key("describe", d);
    CHECK_STR_CONTAINS(d, "key=set key_from=config");
    rlab_llm_free(llm);

    /* every error path of the suite, and the batch summary */
    const char *models[] = {"malformed", "nocontent", "fail429:9", "drop", "bad400", "authecho"};
    for (int i = 0; i < 6; i++) {
        llm = openai(models[i], 2, 5, 4);
        rlab_llm_msg m[] = {{"user", "x"}};
        rlab_llm_req reqs[2] = {mkreq(NULL, m, 1), mkreq(NULL, m, 1)};
        rlab_llm_result rs[2];
        CHECK(rlab_llm_chat_many(llm, reqs, 2, rs, &err) != RLAB_OK);
        no_key(models[i], rs[0].error);
        no_key(models[i], rs[1].error);
        no_key(models[i], err.msg);
        rlab_llm_results_clear(rs, 2);
        rlab_llm_free(llm);
    }

    /* key from the environment; credentials in the URL are masked too */
    setenv("RECLAB_LLM_API_KEY", KEY, 1);
    char url[128];
    snprintf(url, sizeof url, "http://bob:%s@127.0.0.1:%d/v1", KEY, fake_llm_port(srv));
    rlab_llm_config cfg = {.backend = "openai", .base_url = url, .model = "authecho"};
    llm = rlab_llm_new(&cfg, &err);
    rlab_llm_describe(llm, d, sizeof d);
    no_key("describe (env)", d);
    CHECK_STR_CONTAINS(d, "key_from=RECLAB_LLM_API_KEY");
    CHECK_STR_CONTAINS(d, "url=http://***@127.0.0.1:");
    CHECK_EQ_INT(ask(llm, "x", &res, &err), RLAB_ENET);
    no_key("error (env)", res.error);
    CHECK_STR_CONTAINS(res.error, "http://***@127.0.0.1:");
    rlab_llm_result_clear(&res);
    rlab_llm_free(llm);
    unsetenv("RECLAB_LLM_API_KEY");
    setenv("OPENAI_API_KEY", "sk-other", 1);
    cfg.base_url = base_url;
    llm = rlab_llm_new(&cfg, &err);
    rlab_llm_describe(llm, d, sizeof d);
    CHECK_STR_CONTAINS(d, "key_from=OPENAI_API_KEY");
    CHECK(strstr(d, "sk-other") == NULL);
    rlab_llm_free(llm);
    unsetenv("OPENAI_API_KEY");
    server_down();
}

/* An openai handle keeps the policy registry for the offline fallback. */
static void t_fallback(void)
{
    rlab_err err = {0};
    snprintf(base_url, sizeof base_url, "http://127.0.0.1:9");
    rlab_llm *llm = openai("echo", 1, 1, 1);
    CHECK(strcmp(rlab_llm_backend_name(llm), "openai") == 0);
    rlab_llm_register(llm, "recagent.action", pol_tag, UD("[NOTHING]::"), &err);
    rlab_llm_msg m[] = {{"user", "x"}};
    rlab_llm_req req = mkreq("recagent.action", m, 1);
    rlab_llm_result res = {0};
    CHECK_EQ_INT(rlab_llm_chat_offline(llm, &req, &res, &err), RLAB_OK);
    CHECK(strcmp(res.text, "[NOTHING]::") == 0);
    rlab_llm_result_clear(&res);
    req.task = "other";
    CHECK_EQ_INT(rlab_llm_chat_offline(llm, &req, &res, &err), RLAB_ENOTFOUND);
    rlab_llm_result_clear(&res);
    rlab_llm_free(llm);
}

/* Allocation failures anywhere in a call: an error result, never a crash or a leak. */
static void t_alloc(void)
{
    server_up();
    int failures = 0, successes = 0;
    for (long k = 0; k < 40; k++) {
        rlab_err err = {0};
        rlab_alloc_fail_after(k);
        rlab_llm_config cfg = {.backend = "openai",
                               .base_url = base_url,
                               .model = "echo",
                               .api_key = KEY,
                               .timeout = 5,
                               .max_attempts = 1};
        rlab_llm *llm = rlab_llm_new(&cfg, &err);
        if (llm) {
            agent a = {"A", 3};
            int calls = 0;
            rlab_llm_register(llm, "recagent.action", pol_action, &calls, &err);
            rlab_llm_msg m[] = {{"user", "x"}};
            rlab_llm_req reqs[2] = {mkreq("recagent.action", m, 1), mkreq("recagent.action", m, 1)};
            reqs[0].ctx = reqs[1].ctx = &a;
            rlab_llm_result rs[2];
            int rc = rlab_llm_chat_many(llm, reqs, 2, rs, &err);
            rc == RLAB_OK ? successes++ : failures++;
            if (rc == RLAB_OK)
                CHECK(strcmp(rs[0].text, "echo: x") == 0);
            rlab_llm_results_clear(rs, 2);
            rlab_llm_result r1 = {0};
            rlab_llm_chat_offline(llm, &reqs[0], &r1, &err);
            rlab_llm_result_clear(&r1);
            rlab_llm_free(llm);
        } else {
            failures++;
        }
        rlab_alloc_fail_after(-1);
    }
    CHECK(failures > 0 && successes > 0);
    server_down();
}

static const rlab_test tests[] = {
    {"llm.config.1", t_config},
    {"llm.offline.dispatch", t_dispatch},
    {"llm.offline.determinism", t_determinism},
    {"llm.offline.stop_cancel", t_stop_cancel},
    {"llm.offline.fallback", t_fallback},
    {"llm.template.1", t_template},
    {"llm.http.echo", t_http_echo},
    {"llm.http.body", t_http_body},
    {"llm.http.malformed", t_http_malformed},
    {"llm.http.retry", t_http_retry},
    {"llm.http.timeout_drop", t_http_timeout_drop},
    {"llm.http.cancel", t_http_cancel},
    {"llm.http.mixed_batch", t_http_mixed_batch},
    {"llm.http.concurrency", t_http_concurrency},
    {"llm.http.pipe", t_http_pipe},
    {"llm.http.progress", t_http_progress},
    {"llm.http.throughput", t_http_throughput},
    {"llm.http.threads", t_http_threads},
    {"llm.http.redaction", t_redaction},
    {"llm.alloc.1", t_alloc},
    {NULL, NULL},
};

int main(int argc, char **argv) { return rlab_test_main(argc, argv, tests); }
