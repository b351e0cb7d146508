/*
 * tests/llm: the fake OpenAI-compatible server (see fake_llm_server.h for the modes).
 * Plain POSIX sockets + pthreads + json-c; no dependency on reclab itself.
 */
#include "fake_llm_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { MAX_HEAD = 65536, MAX_KEYS = 1024, IDLE_MS = 10000 };

typedef struct conn {
    struct fake_llm *srv;
    int fd;
    pthread_t th;
    struct conn *next;
} conn;

typedef struct attempt_key {
    char *key;
    int count;
} attempt_key;

struct fake_llm {
    int lfd;
    int port;
    int wake[2]; /* written once at stop; never drained, so every poll sees it */
    pthread_t accept_th;
    pthread_mutex_t mu;
    conn *conns;
    long requests;
    int active, peak;
    char last_auth[512];
    attempt_key keys[MAX_KEYS];
    int n_keys;
};

/* ---- helpers ------------------------------------------------------------------------- */

/* Wait until fd is readable, the server stops (-2) or ms pass (0). 1 = readable. */
static int wait_readable(fake_llm *s, int fd, int ms)
{
    struct pollfd p[2] = {{fd, POLLIN, 0}, {s->wake[0], POLLIN, 0}};
    for (;;) {
        int r = poll(p, 2, ms);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return 0;
        if (p[1].revents)
            return -2;
        return 1;
    }
}

static int send_all(int fd, const char *buf, size_t n)
{
    while (n) {
        ssize_t w = send(fd, buf, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        buf += w;
        n -= (size_t)w;
    }
    return 0;
}

/* The request being handled on this thread still counts as active until its reply starts:
 * the count drops before the first byte is sent, so a client that fires its next request as
 * soon as a reply arrives is never seen as one request over its in-flight limit. */
static _Thread_local fake_llm *tl_srv;
static _Thread_local int tl_active;

static void end_active(void)
{
    if (tl_active && tl_srv) {
        pthread_mutex_lock(&tl_srv->mu);
        tl_srv->active--;
        pthread_mutex_unlock(&tl_srv->mu);
    }
    tl_active = 0;
}

static int send_response(int fd, int code, const char *extra_headers, const char *body)
{
    end_active();
    const char *reason = code == 200   ? "OK"
                         : code == 400 ? "Bad Request"
                         : code == 401 ? "Unauthorized"
                         : code == 429 ? "Too Many Requests"
                                       : "Internal Server Error";
    size_t blen = strlen(body);
    char head[512];
    int h = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n%s\r\n",
                     code, reason, blen, extra_headers ? extra_headers : "");
    if (send_all(fd, head, (size_t)h))
        return -1;
    return send_all(fd, body, blen);
}

/* Count one attempt of (model, last user message); returns the count including this one. */
static int count_attempt(fake_llm *s, const char *model, const char *user)
{
    size_t n = strlen(model) + strlen(user) + 2;
    char *k = malloc(n);
    if (!k)
        return 1;
    snprintf(k, n, "%s\n%s", model, user);
    int c = 1;
    pthread_mutex_lock(&s->mu);
    int i;
    for (i = 0; i < s->n_keys; i++)
        if (strcmp(s->keys[i].key, k) == 0)
            break;
    if (i < s->n_keys) {
        c = ++s->keys[i].count;
        free(k);
    } else if (s->n_keys < MAX_KEYS) {
        s->keys[s->n_keys++] = (attempt_key){k, 1};
    } else {
        free(k);
    }
    pthread_mutex_unlock(&s->mu);
    return c;
}

static char *echo_body(const char *content)
{
    json_object *root = json_object_new_object(), *choices = json_object_new_array();
    json_object *c0 = json_object_new_object(), *msg = json_object_new_object();
    json_object *usage = json_object_new_object();
    json_object_object_add(msg, "role", json_object_new_string("assistant"));
    json_object_object_add(msg, "content", json_object_new_string(content));
    json_object_object_add(c0, "index", json_object_new_int(0));
    json_object_object_add(c0, "message", msg);
    json_object_object_add(c0, "finish_reason", json_object_new_string("stop"));
    json_object_array_add(choices, c0);
    json_object_object_add(root, "id", json_object_new_string("chatcmpl-fake"));
    json_object_object_add(root, "object", json_object_new_string("chat.completion"));
    json_object_object_add(root, "choices", choices);
    json_object_object_add(usage, "prompt_tokens", json_object_new_int(7));
    json_object_object_add(usage, "completion_tokens", json_object_new_int(3));
    json_object_object_add(root, "usage", usage);
    char *out = strdup(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN));
    json_object_put(root);
    return out;
}

static char *error_body(const char *message)
{
    json_object *root = json_object_new_object(), *e = json_object_new_object();
    json_object_object_add(e, "message", json_object_new_string(message));
    json_object_object_add(e, "type", json_object_new_string("fake_error"));
    json_object_object_add(root, "error", e);
    char *out = strdup(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN));
    json_object_put(root);
    return out;
}

static int send_echo(int fd, const char *user)
{
    size_t n = strlen(user) + 8;
    char *c = malloc(n);
    if (!c)
        return -1;
    snprintf(c, n, "echo: %s", user);
    char *b = echo_body(c);
    int rc = b ? send_response(fd, 200, NULL, b) : -1;
    free(b);
    free(c);
    return rc;
}

/* Handle one parsed request. Returns 0 to keep the connection, -1 to close it. */
static int handle(fake_llm *s, int fd, const char *auth, const char *body, size_t blen)
{
    char model[128] = "echo";
    char *user = strdup("");
    json_object *root = json_tokener_parse(body), *v;
    if (root && json_object_object_get_ex(root, "model", &v))
        snprintf(model, sizeof model, "%s", json_object_get_string(v));
    if (root && json_object_object_get_ex(root, "messages", &v) &&
        json_object_is_type(v, json_type_array)) {
        for (size_t i = json_object_array_length(v); i-- > 0;) {
            json_object *m = json_object_array_get_idx(v, i), *r, *c;
            if (json_object_object_get_ex(m, "role", &r) &&
                strcmp(json_object_get_string(r), "user") == 0 &&
                json_object_object_get_ex(m, "content", &c)) {
                free(user);
                user = strdup(json_object_get_string(c));
                break;
            }
        }
    }
    json_object_put(root);
    if (!user)
        return -1;

    int rc = 0, n;
    if (strncmp(model, "delay:", 6) == 0) {
        int ms = atoi(model + 6);
        if (wait_readable(s, fd, ms) != 0)
            rc = -1; /* client gone or server stopping */
        else
            rc = send_echo(fd, user);
    } else if (strcmp(model, "inspect") == 0) {
        char *b = echo_body(body);
        rc = b ? send_response(fd, 200, NULL, b) : -1;
        free(b);
    } else if (strcmp(model, "malformed") == 0) {
        rc = send_response(fd, 200, NULL, "{\"choices\": [{\"message\": {\"content\": \"hal");
    } else if (strcmp(model, "nocontent") == 0) {
        rc = send_response(fd, 200, NULL, "{\"id\": \"x\", \"choices\": []}");
    } else if (sscanf(model, "fail429:%d", &n) == 1) {
        if (count_attempt(s, model, user) <= n) {
            char *b = error_body("rate limited, slow down");
            rc = send_response(fd, 429, "Retry-After: 0\r\n", b);
            free(b);
        } else {
            rc = send_echo(fd, user);
        }
    } else if (sscanf(model, "fail500:%d", &n) == 1) {
        if (count_attempt(s, model, user) <= n) {
            char *b = error_body("internal error, try again");
            rc = send_response(fd, 500, NULL, b);
            free(b);
        } else {
            rc = send_echo(fd, user);
        }
    } else if (strcmp(model, "retryafter1") == 0) {
        if (count_attempt(s, model, user) <= 1) {
            char *b = error_body("rate limited for one second");
            rc = send_response(fd, 429, "Retry-After: 1\r\n", b);
            free(b);
        } else {
            rc = send_echo(fd, user);
        }
    } else if (strcmp(model, "slow") == 0) {
        if (wait_readable(s, fd, 10000) != 0)
            rc = -1;
        else
            rc = send_echo(fd, user);
    } else if (strcmp(model, "drop") == 0) {
        rc = -1;
    } else if (strcmp(model, "authecho") == 0) {
        char msg[700];
        snprintf(msg, sizeof msg, "Incorrect API key provided in '%s'", auth);
        char *b = error_body(msg);
        rc = send_response(fd, 401, NULL, b);
        free(b);
    } else if (strcmp(model, "bad400") == 0) {
        char *b = error_body("unknown parameter");
        rc = send_response(fd, 400, NULL, b);
        free(b);
    } else {
        rc = send_echo(fd, user);
    }
    (void)blen;
    free(user);
    return rc;
}

/* ---- connection thread -------------------------------------------------------------- */

static void *conn_main(void *arg)
{
    conn *c = arg;
    fake_llm *s = c->srv;
    char *buf = malloc(MAX_HEAD + 1);
    size_t len = 0;
    if (buf)
        buf[0] = 0; /* the head search below starts before the first recv */
    while (buf) {
        /* read the head */
        char *end = NULL;
        while (!(end = strstr(buf, "\r\n\r\n"))) {
            if (len >= MAX_HEAD)
                goto out;
            if (wait_readable(s, c->fd, IDLE_MS) != 1)
                goto out;
            ssize_t r = recv(c->fd, buf + len, MAX_HEAD - len, 0);
            if (r <= 0)
                goto out;
            len += (size_t)r;
            buf[len] = 0;
        }
        size_t head_len = (size_t)(end - buf) + 4;
        size_t clen = 0;
        int close_after = 0;
        char auth[512] = "";
        for (char *line = strstr(buf, "\r\n"); line && line < end; line = strstr(line, "\r\n")) {
            line += 2;
            if (strncasecmp(line, "Content-Length:", 15) == 0)
                clen = (size_t)strtoul(line + 15, NULL, 10);
            else if (strncasecmp(line, "Connection: close", 17) == 0)
                close_after = 1;
            else if (strncasecmp(line, "Authorization:", 14) == 0) {
                const char *v = line + 14;
                while (*v == ' ')
                    v++;
                size_t n = strcspn(v, "\r\n");
                if (n >= sizeof auth)
                    n = sizeof auth - 1;
                memcpy(auth, v, n);
                auth[n] = 0;
            }
        }
        if (clen > 16u << 20)
            goto out;
        char *body = malloc(clen + 1);
        if (!body)
            goto out;
        size_t have = len - head_len;
        if (have > clen)
            have = clen;
        memcpy(body, buf + head_len, have);
        while (have < clen) {
            if (wait_readable(s, c->fd, IDLE_MS) != 1) {
                free(body);
                goto out;
            }
            ssize_t r = recv(c->fd, body + have, clen - have, 0);
            if (r <= 0) {
                free(body);
                goto out;
            }
            have += (size_t)r;
        }
        body[clen] = 0;
        /* keep any bytes past this request (pipelining) */
        size_t used = head_len + clen;
        if (used < len) {
            memmove(buf, buf + used, len - used);
            len -= used;
        } else {
            len = 0;
        }
        buf[len] = 0;

        pthread_mutex_lock(&s->mu);
        s->requests++;
        if (++s->active > s->peak)
            s->peak = s->active;
        snprintf(s->last_auth, sizeof s->last_auth, "%s", auth);
        pthread_mutex_unlock(&s->mu);
        tl_srv = s;
        tl_active = 1;
        int rc = handle(s, c->fd, auth, body, clen);
        end_active(); /* replies that never called send_response (dropped connections) */
        free(body);
        if (rc || close_after)
            break;
    }
out:
    free(buf);
    shutdown(c->fd, SHUT_RDWR);
    close(c->fd);
    c->fd = -1;
    return NULL;
}

static void *accept_main(void *arg)
{
    fake_llm *s = arg;
    for (;;) {
        int w = wait_readable(s, s->lfd, -1);
        if (w == -2)
            break;
        if (w != 1)
            continue;
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        conn *c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        c->srv = s;
        c->fd = fd;
        if (pthread_create(&c->th, NULL, conn_main, c)) {
            close(fd);
            free(c);
            continue;
        }
        pthread_mutex_lock(&s->mu);
        c->next = s->conns;
        s->conns = c;
        pthread_mutex_unlock(&s->mu);
    }
    return NULL;
}

/* ---- public -------------------------------------------------------------------------- */

fake_llm *fake_llm_start(int port, char *err, size_t errn)
{
    fake_llm *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errn, "out of memory");
        return NULL;
    }
    s->lfd = -1;
    s->wake[0] = s->wake[1] = -1;
    pthread_mutex_init(&s->mu, NULL);
    if (pipe(s->wake))
        goto fail;
    s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s->lfd < 0)
        goto fail;
    int one = 1;
    setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(s->lfd, (struct sockaddr *)&a, sizeof a) || listen(s->lfd, 128))
        goto fail;
    socklen_t al = sizeof a;
    if (getsockname(s->lfd, (struct sockaddr *)&a, &al))
        goto fail;
    s->port = ntohs(a.sin_port);
    if (pthread_create(&s->accept_th, NULL, accept_main, s))
        goto fail;
    return s;
fail:
    snprintf(err, errn, "fake_llm: %s", strerror(errno));
    if (s->lfd >= 0)
        close(s->lfd);
    if (s->wake[0] >= 0)
        close(s->wake[0]);
    if (s->wake[1] >= 0)
        close(s->wake[1]);
    pthread_mutex_destroy(&s->mu);
    free(s);
    return NULL;
}

void fake_llm_stop(fake_llm *s)
{
    if (!s)
        return;
    char b = 1;
    while (write(s->wake[1], &b, 1) < 0 && errno == EINTR) {
    }
    pthread_join(s->accept_th, NULL);
    /* no new connections now; join the rest */
    conn *c = s->conns;
    while (c) {
        conn *next = c->next;
        pthread_join(c->th, NULL);
        free(c);
        c = next;
    }
    for (int i = 0; i < s->n_keys; i++)
        free(s->keys[i].key);
    close(s->lfd);
    close(s->wake[0]);
    close(s->wake[1]);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

int fake_llm_port(const fake_llm *s) { return s->port; }

long fake_llm_requests(fake_llm *s)
{
    pthread_mutex_lock(&s->mu);
    long n = s->requests;
    pthread_mutex_unlock(&s->mu);
    return n;
}

int fake_llm_peak(fake_llm *s)
{
    pthread_mutex_lock(&s->mu);
    int n = s->peak;
    pthread_mutex_unlock(&s->mu);
    return n;
}

void fake_llm_reset_stats(fake_llm *s)
{
    pthread_mutex_lock(&s->mu);
    s->requests = 0;
    s->peak = s->active;
    pthread_mutex_unlock(&s->mu);
}

void fake_llm_last_auth(fake_llm *s, char *buf, size_t n)
{
    pthread_mutex_lock(&s->mu);
    snprintf(buf, n, "%s", s->last_auth);
    pthread_mutex_unlock(&s->mu);
}
