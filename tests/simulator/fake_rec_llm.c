/*
 * tests/simulator/fake_rec_llm.c: see fake_rec_llm.h.
 */
#define _GNU_SOURCE
#include "fake_rec_llm.h"

#include <json-c/json.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { MAX_CONN = 128 };

struct fake_rec_llm {
    int fd, port;
    atomic_int stop;
    pthread_t accept_th;
    pthread_mutex_t mu;
    pthread_t th[MAX_CONN];
    int slot[MAX_CONN]; /* SLOT_FREE, SLOT_RUN, or SLOT_DONE (finished, not yet joined) */
    atomic_uint jitter; /* per-request counter for "delay:A~B" */
    atomic_long requests;
    atomic_int active, peak;
};

enum { SLOT_FREE = 0, SLOT_RUN, SLOT_DONE };

typedef struct conn {
    fake_rec_llm *s;
    int fd, slot;
} conn;

static int read_request(int fd, char **body_out, atomic_int *stop)
{
    char *buf = malloc(1 << 16);
    size_t cap = 1 << 16, n = 0;
    if (!buf)
        return -1;
    long need = -1;
    size_t head = 0;
    for (;;) {
        if (head && n >= head + (size_t)need)
            break;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int pr = poll(&p, 1, 100);
        if (atomic_load(stop)) {
            free(buf);
            return -1;
        }
        if (pr <= 0)
            continue;
        if (n + 4096 > cap) {
            cap *= 2;
            char *q = realloc(buf, cap);
            if (!q) {
                free(buf);
                return -1;
            }
            buf = q;
        }
        ssize_t r = recv(fd, buf + n, cap - n - 1, 0);
        if (r <= 0) {
            free(buf);
            return -1;
        }
        n += (size_t)r;
        buf[n] = '\0';
        if (!head) {
            char *e = strstr(buf, "\r\n\r\n");
            if (e) {
                head = (size_t)(e - buf) + 4;
                char *cl = strcasestr(buf, "Content-Length:");
                need = cl ? strtol(cl + 15, NULL, 10) : 0;
            }
        }
    }
    char *body = malloc((size_t)need + 1);
    if (!body) {
        free(buf);
        return -1;
    }
    memcpy(body, buf + head, (size_t)need);
    body[need] = '\0';
    free(buf);
    *body_out = body;
    return 0;
}

/* The first friend name listed in a social prompt ("can chat with [A B, C D]"). */
static void first_friend(const char *p, char *out, size_t n)
{
    const char *c = strstr(p, "can chat with [");
    out[0] = '\0';
    if (!c)
        return;
    c += 15;
    size_t k = 0;
    while (c[k] && c[k] != ',' && c[k] != ']' && k + 1 < n) {
        out[k] = c[k];
        k++;
    }
    out[k] = '\0';
}

/* Items listed in a fidelity prompt ("1. <Title>" lines after the observation). */
static int listed_items(const char *prompt)
{
    const char *o = strstr(prompt, "Observation:");
    int k = 0;
    for (const char *p = o ? o : prompt; (p = strchr(p, '\n')) != NULL; p++) {
        char want[16];
        snprintf(want, sizeof want, "\n%d. <", k + 1);
        if (strncmp(p, want, strlen(want)) == 0)
            k++;
    }
    return k;
}

static void answer(const char *model, const char *prompt, char *out, size_t n)
{
    if (strcmp(model, "garbage") == 0) {
        snprintf(out, n, "I am not sure.");
        return;
    }
    if (strstr(prompt, "[WATCH]::")) {
        /* the odd-numbered movies */
        int k = listed_items(prompt);
        size_t l = (size_t)snprintf(out, n, "[WATCH]::");
        for (int i = 1; i <= k && l < n; i += 2)
            l += (size_t)snprintf(out + l, n - l, "%s %d", i > 1 ? "," : "", i);
        if (k == 0)
            snprintf(out, n, "[WATCH]:: none");
    } else if (strstr(prompt, "[RATINGS]::")) {
        /* 4 stars for odd-numbered movies, 3 for the others */
        int k = listed_items(prompt);
        size_t l = (size_t)snprintf(out, n, "[RATINGS]::");
        for (int i = 1; i <= k && l < n; i++)
            l += (size_t)snprintf(out + l, n - l, "%s %d:%d", i > 1 ? "," : "", i, i % 2 ? 4 : 3);
    } else if (strstr(prompt, "[BUY]::")) {
        /* "mixed": BUY 1, NEXT or LEAVE by a hash of the prompt (the same prompt gets the
         * same answer, so a simulation does not depend on the order replies arrive in) */
        unsigned h = 2166136261u;
        for (const char *p = prompt; *p; p++)
            h = (h ^ (unsigned char)*p) * 16777619u;
        h %= 4;
        if (!strstr(model, "mixed") || h < 2)
            snprintf(out, n, "[BUY]:: 1");
        else if (h == 2)
            snprintf(out, n, "[NEXT]:: views the next page.");
        else
            snprintf(out, n, "[LEAVE]:: leaves the recommender system.");
    } else if (strstr(prompt, "[RECOMMENDER]::")) {
        snprintf(out, n, "[RECOMMENDER]:: I will enter the Recommender System");
    } else if (strstr(prompt, "[CHAT]::")) {
        char f[64];
        first_friend(prompt, f, sizeof f);
        if (f[0])
            snprintf(out, n, "[CHAT]:: %s\n[TIME]:: 0.5", f);
        else
            snprintf(out, n, "[POST]:: What a week of movies!");
    } else if (strstr(prompt, "[FEELING]::")) {
        snprintf(out, n, "[FEELING]:: That was a fine evening with a fine film.");
    } else if (strstr(prompt, "[SAY]::")) {
        snprintf(out, n, "[SAY]:: I mostly remember the last movie I watched.");
    } else {
        snprintf(out, n, "Hello.");
    }
}

static void *conn_main(void *arg)
{
    conn *c = arg;
    fake_rec_llm *s = c->s;
    char *body;
    while (read_request(c->fd, &body, &s->stop) == 0) {
        int a = atomic_fetch_add(&s->active, 1) + 1;
        int pk = atomic_load(&s->peak);
        while (a > pk && !atomic_compare_exchange_weak(&s->peak, &pk, a)) {
        }
        json_object *root = json_tokener_parse(body);
        free(body);
        const char *model = "agent", *prompt = "";
        json_object *m, *msgs;
        if (root && json_object_object_get_ex(root, "model", &m))
            model = json_object_get_string(m);
        if (root && json_object_object_get_ex(root, "messages", &msgs) &&
            json_object_array_length(msgs) > 0) {
            json_object *last = json_object_array_get_idx(msgs, json_object_array_length(msgs) - 1);
            json_object *ct;
            if (json_object_object_get_ex(last, "content", &ct))
                prompt = json_object_get_string(ct);
        }
        if (strcmp(model, "hang") == 0) {
            /* wait for the client to give up (EOF) or the server to stop */
            for (;;) {
                struct pollfd p = {.fd = c->fd, .events = POLLIN};
                int pr = poll(&p, 1, 100);
                if (atomic_load(&s->stop))
                    break;
                char b[256];
                if (pr > 0 && recv(c->fd, b, sizeof b, 0) <= 0)
                    break;
            }
            json_object_put(root);
            atomic_fetch_add(&s->requests, 1);
            atomic_fetch_sub(&s->active, 1);
            break;
        }
        if (strcmp(model, "auth") == 0) {
            static const char js[] = "{\"error\":{\"message\":\"Incorrect API key provided\","
                                     "\"type\":\"invalid_request_error\",\"code\":"
                                     "\"invalid_api_key\"}}";
            char hdr[256];
            int hl = snprintf(hdr, sizeof hdr,
                              "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\n"
                              "Content-Length: %zu\r\nConnection: keep-alive\r\n\r\n",
                              sizeof js - 1);
            atomic_fetch_add(&s->requests, 1);
            atomic_fetch_sub(&s->active, 1);
            int ok = send(c->fd, hdr, (size_t)hl, MSG_NOSIGNAL) == hl &&
                     send(c->fd, js, sizeof js - 1, MSG_NOSIGNAL) == (ssize_t)(sizeof js - 1);
            json_object_put(root);
            if (!ok)
                break;
            continue;
        }
        if (strncmp(model, "delay:", 6) == 0) {
            char *end;
            long ms = strtol(model + 6, &end, 10);
            if (*end == '~') {
                /* "delay:A~B": uniform in [A, B] ms, a different draw per request, so
                 * replies arrive out of request order */
                long hi = strtol(end + 1, NULL, 10);
                unsigned x = atomic_fetch_add(&s->jitter, 1) * 2654435761u;
                x ^= x >> 15;
                if (hi > ms)
                    ms += (long)(x % (unsigned)(hi - ms + 1));
            }
            struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
            nanosleep(&ts, NULL);
        }
        char text[512];
        answer(model, prompt, text, sizeof text);
        json_object *resp = json_object_new_object();
        json_object *choices = json_object_new_array();
        json_object *ch = json_object_new_object();
        json_object *msg = json_object_new_object();
        json_object_object_add(msg, "role", json_object_new_string("assistant"));
        json_object_object_add(msg, "content", json_object_new_string(text));
        json_object_object_add(ch, "index", json_object_new_int(0));
        json_object_object_add(ch, "message", msg);
        json_object_object_add(ch, "finish_reason", json_object_new_string("stop"));
        json_object_array_add(choices, ch);
        json_object_object_add(resp, "id", json_object_new_string("fake"));
        json_object_object_add(resp, "object", json_object_new_string("chat.completion"));
        json_object_object_add(resp, "choices", choices);
        const char *js = json_object_to_json_string_ext(resp, JSON_C_TO_STRING_PLAIN);
        char hdr[256];
        int hl = snprintf(hdr, sizeof hdr,
                          "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                          "%zu\r\nConnection: keep-alive\r\n\r\n",
                          strlen(js));
        /* counted before the reply goes out: a client that has its reply sees it counted */
        atomic_fetch_add(&s->requests, 1);
        atomic_fetch_sub(&s->active, 1);
        int ok = send(c->fd, hdr, (size_t)hl, MSG_NOSIGNAL) == hl &&
                 send(c->fd, js, strlen(js), MSG_NOSIGNAL) == (ssize_t)strlen(js);
        json_object_put(resp);
        json_object_put(root);
        if (!ok)
            break;
    }
    close(c->fd);
    pthread_mutex_lock(&s->mu);
    s->slot[c->slot] = SLOT_DONE; /* joined and reused by the accept thread */
    pthread_mutex_unlock(&s->mu);
    free(c);
    return NULL;
}

static void *accept_main(void *arg)
{
    fake_rec_llm *s = arg;
    while (!atomic_load(&s->stop)) {
        struct pollfd p = {.fd = s->fd, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0)
            continue;
        int fd = accept(s->fd, NULL, NULL);
        if (fd < 0)
            continue;
        conn *c = malloc(sizeof *c);
        pthread_mutex_lock(&s->mu);
        /* a slot of a finished connection is joined and reused: MAX_CONN bounds the
         * connections open at once, not those over the server's life */
        int k = -1;
        for (int i = 0; i < MAX_CONN && k < 0; i++)
            if (s->slot[i] == SLOT_FREE)
                k = i;
        for (int i = 0; i < MAX_CONN && k < 0; i++)
            if (s->slot[i] == SLOT_DONE) {
                pthread_join(s->th[i], NULL);
                s->slot[i] = SLOT_FREE;
                k = i;
            }
        if (!c || k < 0) {
            pthread_mutex_unlock(&s->mu);
            close(fd);
            free(c);
            continue;
        }
        /* the reply goes out as two send()s (head, body): without TCP_NODELAY the second
         * waits for the client's delayed ACK of the first, 40 ms per request on Linux */
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        c->s = s;
        c->fd = fd;
        c->slot = k;
        if (pthread_create(&s->th[k], NULL, conn_main, c) == 0)
            s->slot[k] = SLOT_RUN;
        else {
            close(fd);
            free(c);
        }
        pthread_mutex_unlock(&s->mu);
    }
    return NULL;
}

fake_rec_llm *fake_rec_llm_start(void)
{
    fake_rec_llm *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    pthread_mutex_init(&s->mu, NULL);
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    if (s->fd < 0 || bind(s->fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(s->fd, 64) != 0 ||
        getsockname(s->fd, (struct sockaddr *)&a, &al) != 0) {
        if (s->fd >= 0)
            close(s->fd);
        free(s);
        return NULL;
    }
    s->port = ntohs(a.sin_port);
    if (pthread_create(&s->accept_th, NULL, accept_main, s) != 0) {
        close(s->fd);
        free(s);
        return NULL;
    }
    return s;
}

void fake_rec_llm_stop(fake_rec_llm *s)
{
    if (!s)
        return;
    atomic_store(&s->stop, 1);
    pthread_join(s->accept_th, NULL);
    for (int i = 0; i < MAX_CONN; i++) {
        pthread_mutex_lock(&s->mu); /* a connection thread may be marking its slot done */
        const int used = s->slot[i] != SLOT_FREE;
        pthread_mutex_unlock(&s->mu);
        if (used)
            pthread_join(s->th[i], NULL);
    }
    close(s->fd);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

int fake_rec_llm_port(const fake_rec_llm *s) { return s->port; }
long fake_rec_llm_requests(fake_rec_llm *s) { return atomic_load(&s->requests); }
int fake_rec_llm_peak(fake_rec_llm *s) { return atomic_load(&s->peak); }
