/*
 * bench/shell: the interactive shell measured from outside, through a pseudo-terminal, as a
 * user sees it. Runs the real binary (argv[1], $RECLAB_BIN, or build/reclab) in a 120x36
 * pty with a fresh store and HOME, and prints JSON lines:
 *   - startup_first_frame_ms: fork to the first full frame (the prompt drawn last, after
 *     the title bar, sidebar and status line), all plugins loaded; median of 5 starts
 *     (target <= 100 ms);
 *   - key_echo_ms_p50 / _p95 / _max: time from writing one key to the pty until its echo
 *     arrives, while a BPR-MF training job runs in the background (target <= 16 ms); 40 keys.
 * Without the baselines plugin the key test runs with an idle shell and says so.
 */
#define _DEFAULT_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

typedef struct child {
    pid_t pid;
    int fd;
    char buf[1 << 16]; /* recent output (sliding) */
    size_t n;
} child;

static void emit(const char *metric, double value, const char *unit, double baseline)
{
    printf("{\"bench\": \"shell\", \"metric\": \"%s\", \"value\": %.3f, \"unit\": \"%s\", "
           "\"baseline\": %.6g}\n",
           metric, value, unit, baseline);
    fflush(stdout);
}

static int spawn(child *c, const char *bin, const char *dir)
{
    struct winsize ws = {.ws_row = 36, .ws_col = 120};
    c->n = 0;
    c->pid = forkpty(&c->fd, NULL, NULL, &ws);
    if (c->pid < 0)
        return -1;
    if (c->pid == 0) {
        char db[1024], home[1024];
        snprintf(db, sizeof db, "%s/bench.db", dir);
        snprintf(home, sizeof home, "%s/home", dir);
        setenv("HOME", home, 1);
        setenv("XDG_STATE_HOME", home, 1);
        setenv("TERM", "xterm-256color", 1);
        setenv("LC_ALL", "C.UTF-8", 1);
        execl(bin, bin, "--db", db, (char *)NULL);
        _exit(127);
    }
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    return 0;
}

/* Read what is available (waiting up to ms); returns bytes read, -1 at EOF. */
static int pump(child *c, int ms)
{
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    if (poll(&p, 1, ms) <= 0)
        return 0;
    char tmp[8192];
    ssize_t r = read(c->fd, tmp, sizeof tmp);
    if (r <= 0)
        return r == 0 || errno != EAGAIN ? -1 : 0;
    if (c->n + (size_t)r > sizeof c->buf) { /* keep the second half */
        size_t keep = sizeof c->buf / 2;
        memmove(c->buf, c->buf + c->n - keep, keep);
        c->n = keep;
    }
    memcpy(c->buf + c->n, tmp, (size_t)r);
    c->n += (size_t)r;
    return (int)r;
}

static int contains(const child *c, size_t from, const char *s)
{
    size_t l = strlen(s);
    for (size_t i = from; i + l <= c->n; i++)
        if (!memcmp(c->buf + i, s, l))
            return 1;
    return 0;
}

/* Wait until s appears in the output after offset from; elapsed ms or -1 on timeout. */
static double wait_for(child *c, size_t from, const char *s, double timeout_ms)
{
    double t0 = now_ms();
    for (;;) {
        if (contains(c, from, s))
            return now_ms() - t0;
        if (now_ms() - t0 > timeout_ms)
            return -1;
        if (pump(c, 5) < 0)
            return contains(c, from, s) ? now_ms() - t0 : -1;
    }
}

static void finish(child *c)
{
    const char *q = "\025quit\r";
    ssize_t w = write(c->fd, q, strlen(q));
    (void)w;
    double t0 = now_ms();
    int st;
    while (waitpid(c->pid, &st, WNOHANG) == 0) {
        pump(c, 10);
        if (now_ms() - t0 > 5000) {
            kill(c->pid, SIGKILL);
            waitpid(c->pid, &st, 0);
            break;
        }
    }
    close(c->fd);
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    const char *bin = argc > 1 ? argv[1] : getenv("RECLAB_BIN");
    if (!bin || !*bin)
        bin = "build/reclab";
    if (access(bin, X_OK)) {
        fprintf(stderr, "bench shell: %s is not built\n", bin);
        return 2;
    }
    char dir[] = "/tmp/reclab-bench-shell.XXXXXX";
    if (!mkdtemp(dir))
        return 2;
    char home[1100];
    snprintf(home, sizeof home, "%s/home", dir);
    mkdir(home, 0700);
    static child c;

    /* 1. start-up to the first full frame */
    double t[5];
    for (int i = 0; i < 5; i++) {
        double t0 = now_ms();
        if (spawn(&c, bin, dir))
            return 2;
        double w = wait_for(&c, 0, "reclab>", 10000);
        t[i] = w < 0 ? -1 : now_ms() - t0;
        finish(&c);
        if (w < 0) {
            fprintf(stderr, "bench shell: no prompt within 10 s\n");
            return 1;
        }
    }
    qsort(t, 5, sizeof t[0], cmp_d);
    emit("startup_first_frame_ms", t[2], "ms", 100);

    /* 2. key echo while a training job runs */
    if (spawn(&c, bin, dir))
        return 2;
    if (wait_for(&c, 0, "reclab>", 10000) < 0)
        return 1;
    int job = contains(&c, 0, "baselines");
    if (job && wait_for(&c, 0, "1000u", 10000) < 0) { /* the demo world, maybe in background */
        fprintf(stderr, "bench shell: no demo dataset\n");
        job = 0;
    }
    if (job) {
        const char *cmd = "train bprmf data=demo epochs=100000\r";
        size_t from = c.n;
        ssize_t w = write(c.fd, cmd, strlen(cmd));
        (void)w;
        if (wait_for(&c, from, "/100000 epoch", 20000) < 0) {
            fprintf(stderr, "bench shell: the job did not start\n");
            job = 0;
        }
    } else
        fprintf(stderr,
                "bench shell: baselines plugin not loaded: keys measured on an idle shell\n");
    for (int i = 0; i < 20; i++) /* settle */
        pump(&c, 5);
    enum { NK = 40 };
    double lat[NK];
    int nk = 0;
    for (int i = 0; i < NK; i++) {
        const char *key = (i & 1) ? "`" : "~";
        size_t from = c.n;
        double t0 = now_ms();
        if (write(c.fd, key, 1) != 1)
            break;
        double w = wait_for(&c, from, key, 2000);
        if (w < 0)
            continue;
        lat[nk++] = now_ms() - t0;
        for (int k = 0; k < 4; k++) /* let a few progress frames pass between keys */
            pump(&c, 5);
    }
    const char *cc = "\003"; /* Ctrl-C cancels the job */
    ssize_t w = write(c.fd, cc, 1);
    (void)w;
    pump(&c, 50);
    finish(&c);
    if (nk == 0) {
        fprintf(stderr, "bench shell: no key echo seen\n");
        return 1;
    }
    qsort(lat, (size_t)nk, sizeof lat[0], cmp_d);
    const char *suffix = job ? "" : "_idle";
    char m[64];
    snprintf(m, sizeof m, "key_echo_ms_p50%s", suffix);
    emit(m, lat[nk / 2], "ms", 16);
    snprintf(m, sizeof m, "key_echo_ms_p95%s", suffix);
    emit(m, lat[(nk * 95) / 100 < nk ? (nk * 95) / 100 : nk - 1], "ms", 16);
    snprintf(m, sizeof m, "key_echo_ms_max%s", suffix);
    emit(m, lat[nk - 1], "ms", 16);
    char rm[1200];
    snprintf(rm, sizeof rm, "rm -rf '%s'", dir);
    if (system(rm) != 0)
        fprintf(stderr, "bench shell: could not remove %s\n", dir);
    return 0;
}
