/*
 * core/base: errors, allocation with fault injection, arenas, xoshiro256** RNG, clocks and
 * the log sink. Small, dependency-free, thread-safe where the header says so.
 */
#define _XOPEN_SOURCE 700 /* realpath */
#include "base/base.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- status names ------------------------------------------------------------------ */
static const char *const status_names[RLAB_NSTATUS] = {
    [RLAB_OK] = "OK",
    [RLAB_ENOMEM] = "ENOMEM",
    [RLAB_EINVAL] = "EINVAL",
    [RLAB_EIO] = "EIO",
    [RLAB_EFORMAT] = "EFORMAT",
    [RLAB_ENOTFOUND] = "ENOTFOUND",
    [RLAB_EVERSION] = "EVERSION",
    [RLAB_ECANCELED] = "ECANCELED",
    [RLAB_EDB] = "EDB",
    [RLAB_ESTATE] = "ESTATE",
    [RLAB_ENET] = "ENET",
};

const char *rlab_status_name(int code)
{
    if (code < 0 || code >= RLAB_NSTATUS)
        return "EUNKNOWN";
    return status_names[code];
}

/* ---- errors ------------------------------------------------------------------------ */
int rlab_verrf(rlab_err *err, int code, const char *fmt, va_list ap)
{
    if (!err)
        return code;
    err->code = code;
    err->line = 0;
    err->file[0] = '\0';
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    return code;
}

int rlab_errf(rlab_err *err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    rlab_verrf(err, code, fmt, ap);
    va_end(ap);
    return code;
}

int rlab_errf_at(rlab_err *err, int code, const char *file, int line, const char *fmt, ...)
{
    if (!err)
        return code;
    char body[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    err->code = code;
    err->line = line;
    snprintf(err->file, sizeof err->file, "%s", file ? file : "");
    /* A long path or message is cut at the buffer: truncation is the intended behaviour. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-truncation"
    if (line > 0)
        snprintf(err->msg, sizeof err->msg, "%s:%d: %s", err->file, line, body);
    else
        snprintf(err->msg, sizeof err->msg, "%s: %s", err->file, body);
#pragma GCC diagnostic pop
    return code;
}

void rlab_err_clear(rlab_err *err)
{
    if (!err)
        return;
    err->code = RLAB_OK;
    err->line = 0;
    err->file[0] = '\0';
    err->msg[0] = '\0';
}

void rlab_assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "reclab: internal assertion failed: %s (%s:%d)\n", expr, file, line);
    fflush(stderr);
    __builtin_trap();
}

/* ---- allocation -------------------------------------------------------------------- */
/* Countdown of allocations that may still succeed; negative = unlimited. */
static atomic_long alloc_budget = -1;

/* The sweep's one-shot failure: allocation number fail_nth (counted in alloc_seq) fails. */
static atomic_long alloc_seq;
static atomic_long fail_nth;
static atomic_int nth_failed;

void rlab_alloc_fail_after(long n) { atomic_store(&alloc_budget, n); }

void rlab_alloc_fail_nth(long n)
{
    atomic_store(&fail_nth, 0);
    atomic_store(&alloc_seq, 0);
    atomic_store(&nth_failed, 0);
    atomic_store(&fail_nth, n > 0 ? n : 0);
}

long rlab_alloc_count(void) { return atomic_load(&alloc_seq); }

int rlab_alloc_nth_failed(void) { return atomic_load(&nth_failed); }

static int alloc_allowed(void)
{
    long k = atomic_fetch_add(&alloc_seq, 1) + 1;
    if (k == atomic_load(&fail_nth)) {
        atomic_store(&nth_failed, 1);
        return 0;
    }
    long b = atomic_load(&alloc_budget);
    while (b >= 0) {
        if (b == 0)
            return 0;
        if (atomic_compare_exchange_weak(&alloc_budget, &b, b - 1))
            return 1;
    }
    return 1;
}

void *rlab_malloc(size_t n) { return alloc_allowed() ? malloc(n ? n : 1) : NULL; }

void *rlab_calloc(size_t n, size_t size)
{
    return alloc_allowed() ? calloc(n ? n : 1, size ? size : 1) : NULL;
}

void *rlab_realloc(void *p, size_t n) { return alloc_allowed() ? realloc(p, n ? n : 1) : NULL; }

void rlab_free(void *p) { free(p); }

int rlab_name_check(const char *what, const char *name, rlab_err *err)
{
    if (!name || strlen(name) < RLAB_NAME_CAP)
        return RLAB_OK;
    /* Quote a prefix only (the message must fit, and the prefix is what identifies it), cut
     * on a UTF-8 character boundary, control bytes shown as '?'. */
    char q[44];
    size_t k = 0;
    for (const unsigned char *p = (const unsigned char *)name; *p && k < 40; p++)
        q[k++] = (*p < 0x20 || *p == 0x7F) ? '?' : (char)*p;
    if (((unsigned char)name[k] & 0xC0) == 0x80) { /* cut inside a character: drop it */
        while (k > 0 && ((unsigned char)q[k - 1] & 0xC0) == 0x80)
            k--;
        if (k > 0 && (unsigned char)q[k - 1] >= 0xC0)
            k--;
    }
    q[k] = '\0';
    return rlab_errf(err, RLAB_EINVAL, "%s name '%s...' is longer than %d bytes", what ? what : "a",
                     q, RLAB_NAME_CAP - 1);
}

/* ---- paths ------------------------------------------------------------------------- */

int rlab_path_inside(const char *root, const char *path, rlab_err *err)
{
    if (!root || root[0] != '/')
        return rlab_errf(err, RLAB_EINVAL, "sandbox: no workspace folder");
    if (!path || !*path)
        return rlab_errf(err, RLAB_EINVAL, "sandbox: empty path");
    /* the absolute form, "cwd/path" for a relative one */
    char full[2 * PATH_MAX];
    if (path[0] == '/') {
        if (strlen(path) >= sizeof full)
            return rlab_errf(err, RLAB_EINVAL, "sandbox: path too long");
        strcpy(full, path);
    } else {
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof cwd))
            return rlab_errf(err, RLAB_EIO, "sandbox: cannot read the current folder: %s",
                             strerror(errno));
        if ((size_t)snprintf(full, sizeof full, "%s/%s", cwd, path) >= sizeof full)
            return rlab_errf(err, RLAB_EINVAL, "sandbox: path too long");
    }
    /* Resolve the longest prefix that exists (realpath follows its links and "..", so a link
     * inside the workspace that points out of it is outside); the parts after it must not
     * climb with "..". */
    char resolved[PATH_MAX];
    size_t cut = strlen(full);
    for (;;) {
        char save = full[cut];
        full[cut] = '\0';
        char *ok = realpath(cut ? full : "/", resolved);
        full[cut] = save;
        if (ok)
            break;
        if (errno != ENOENT && errno != ENOTDIR)
            goto outside;
        while (cut > 0 && full[cut - 1] == '/') /* drop the last part */
            cut--;
        while (cut > 0 && full[cut - 1] != '/')
            cut--;
        if (cut == 0)
            goto outside;
    }
    for (const char *p = full + cut; *p;) { /* the parts that do not exist yet */
        while (*p == '/')
            p++;
        size_t n = strcspn(p, "/");
        if (n == 2 && p[0] == '.' && p[1] == '.')
            goto outside;
        p += n;
    }
    size_t rn = strlen(root);
    while (rn > 1 && root[rn - 1] == '/')
        rn--;
    if (strncmp(resolved, root, rn) == 0 &&
        (resolved[rn] == '\0' || resolved[rn] == '/' || rn == 1))
        return RLAB_OK;
outside:
    return rlab_errf(err, RLAB_EINVAL, "path '%.200s' is outside the workspace %.100s", path, root);
}

char *rlab_strdup(const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *d = rlab_malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

void *rlab_malloc_aligned(size_t n)
{
    if (!alloc_allowed())
        return NULL;
    void *p = NULL;
    size_t sz = (n + 63) & ~(size_t)63;
    if (posix_memalign(&p, 64, sz ? sz : 64) != 0)
        return NULL;
    return p;
}

void rlab_free_aligned(void *p) { free(p); }

/* ---- arenas ------------------------------------------------------------------------ */
rlab_arena *rlab_arena_new(size_t cap, rlab_err *err)
{
    rlab_arena *a = rlab_calloc(1, sizeof *a);
    if (!a) {
        rlab_errf(err, RLAB_ENOMEM, "arena: out of memory");
        return NULL;
    }
    a->cap = (cap + 63) & ~(size_t)63;
    a->base = rlab_malloc_aligned(a->cap);
    if (!a->base) {
        rlab_free(a);
        rlab_errf(err, RLAB_ENOMEM, "arena: cannot reserve %zu bytes", cap);
        return NULL;
    }
    return a;
}

void rlab_arena_free(rlab_arena *a)
{
    if (!a)
        return;
    rlab_free_aligned(a->base);
    rlab_free(a);
}

void *rlab_arena_alloc(rlab_arena *a, size_t n)
{
    size_t sz = (n + 63) & ~(size_t)63;
    if (!a || sz < n || a->cap - a->used < sz)
        return NULL;
    void *p = a->base + a->used;
    a->used += sz;
    if (a->used > a->peak)
        a->peak = a->used;
    return p;
}

void *rlab_arena_calloc(rlab_arena *a, size_t n)
{
    void *p = rlab_arena_alloc(a, n);
    if (p)
        memset(p, 0, n);
    return p;
}

size_t rlab_arena_mark(const rlab_arena *a) { return a ? a->used : 0; }

void rlab_arena_rewind(rlab_arena *a, size_t mark)
{
    if (a && mark <= a->used)
        a->used = mark;
}

void rlab_arena_reset(rlab_arena *a)
{
    if (a)
        a->used = 0;
}

/* ---- random numbers ---------------------------------------------------------------- */
static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void rlab_rng_seed(rlab_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
}

uint64_t rlab_rng_u64(rlab_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint64_t rlab_rng_below(rlab_rng *r, uint64_t n)
{
    if (n <= 1)
        return 0;
    /* Lemire's rejection on the top bits is overkill here; plain rejection sampling. */
    uint64_t limit = UINT64_MAX - (UINT64_MAX % n);
    uint64_t x;
    do {
        x = rlab_rng_u64(r);
    } while (x >= limit);
    return x % n;
}

float rlab_rng_uniform(rlab_rng *r) { return (float)(rlab_rng_u64(r) >> 40) * 0x1.0p-24f; }

void rlab_rng_fill_uniform(rlab_rng *r, float *out, size_t n)
{
    /* rlab_rng_u64 with the state in registers */
    uint64_t s0 = r->s[0], s1 = r->s[1], s2 = r->s[2], s3 = r->s[3];
    for (size_t i = 0; i < n; i++) {
        uint64_t x = rotl(s1 * 5, 7) * 9, t = s1 << 17;
        s2 ^= s0;
        s3 ^= s1;
        s1 ^= s2;
        s0 ^= s3;
        s2 ^= t;
        s3 = rotl(s3, 45);
        out[i] = (float)(x >> 40) * 0x1.0p-24f;
    }
    r->s[0] = s0, r->s[1] = s1, r->s[2] = s2, r->s[3] = s3;
}

double rlab_rng_double(rlab_rng *r) { return (double)(rlab_rng_u64(r) >> 11) * 0x1.0p-53; }

float rlab_rng_normal(rlab_rng *r)
{
    double u1 = rlab_rng_double(r);
    double u2 = rlab_rng_double(r);
    if (u1 < 1e-300)
        u1 = 1e-300;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

void rlab_rng_split(rlab_rng *r, rlab_rng *child) { rlab_rng_seed(child, rlab_rng_u64(r)); }

void rlab_rng_shuffle_i32(rlab_rng *r, int32_t *a, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)rlab_rng_below(r, i);
        int32_t t = a[i - 1];
        a[i - 1] = a[j];
        a[j] = t;
    }
}

/* ---- time and logging -------------------------------------------------------------- */
double rlab_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double rlab_wall_time(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static rlab_log_sink log_sink;
static void *log_ud;

void rlab_log_set_sink(rlab_log_sink sink, void *ud)
{
    pthread_mutex_lock(&log_lock);
    log_sink = sink;
    log_ud = ud;
    pthread_mutex_unlock(&log_lock);
}

void rlab_log(int level, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&log_lock);
    if (log_sink) {
        log_sink(level, buf, log_ud);
    } else if (level >= RLAB_LOG_WARN || (level == RLAB_LOG_INFO && getenv("RECLAB_VERBOSE"))) {
        static const char *const tags[] = {"debug", "info", "warning", "error"};
        fprintf(stderr, "reclab: %s: %s\n", tags[level & 3], buf);
    }
    pthread_mutex_unlock(&log_lock);
}

const char *rlab_version(void) { return RECLAB_VERSION_STRING; }

#ifndef RECLAB_GIT_STRING
#define RECLAB_GIT_STRING "unknown"
#endif
const char *rlab_build_git(void) { return RECLAB_GIT_STRING; }
