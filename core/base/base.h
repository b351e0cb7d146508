/*
 * core/base: errors, allocation (with fault injection), arenas, the seeded RNG, timing
 * and logging. Everything else in reclab includes this header.
 *
 * Usage:
 *
 *     rlab_err err = {0};
 *     rlab_arena *a = rlab_arena_new(1 << 20, &err);     // fixed capacity, 64-byte aligned
 *     float *x = rlab_arena_alloc(a, 128 * sizeof(float)); // NULL when full, never grows
 *     rlab_rng rng; rlab_rng_seed(&rng, 2023);
 *     float u = rlab_rng_uniform(&rng);                  // [0, 1)
 *     if (!x) rlab_errf(&err, RLAB_ENOMEM, "arena full");
 *     rlab_arena_free(a);
 *
 * Error rule (STYLE.md): functions that can fail return an int status (RLAB_OK = 0) and
 * take a trailing rlab_err *; constructors return a pointer (NULL on failure) and fill
 * the error. Core code never calls exit() or abort().
 */
#ifndef RLAB_BASE_H
#define RLAB_BASE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#if defined(RLAB_BUILDING_CORE)
#define RLAB_API __attribute__((visibility("default")))
#else
#define RLAB_API
#endif

#define RLAB_PRINTF(a, b) __attribute__((format(printf, a, b)))

/* A function built for several instruction sets, the loader picking one when the library is
 * loaded (GCC's target_clones, x86-64): RLAB_CLONES("avx512f", "avx2", "default"). Off with
 * -DRLAB_NO_CLONES, and under ThreadSanitizer: the loader runs the clones' resolvers while it
 * relocates the library, before the sanitizer's runtime is set up, and an instrumented
 * resolver crashed every program there. RLAB_HAVE_CLONES says whether they are on. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(RLAB_NO_CLONES) && \
    !defined(__SANITIZE_THREAD__)
#define RLAB_HAVE_CLONES 1
#define RLAB_CLONES(...) __attribute__((target_clones(__VA_ARGS__)))
#else
#define RLAB_HAVE_CLONES 0
#define RLAB_CLONES(...)
#endif

/* ---- status codes ------------------------------------------------------------------ */
enum {
    RLAB_OK = 0,
    RLAB_ENOMEM,    /* allocation failed or an arena is full */
    RLAB_EINVAL,    /* bad argument or shape */
    RLAB_EIO,       /* file system or OS error */
    RLAB_EFORMAT,   /* malformed input file */
    RLAB_ENOTFOUND, /* named thing does not exist */
    RLAB_EVERSION,  /* version or ABI mismatch */
    RLAB_ECANCELED, /* cancelled by the user: a status, not a failure */
    RLAB_EDB,       /* SQLite error */
    RLAB_ESTATE,    /* operation not valid in the current state */
    RLAB_ENET,      /* network / HTTP error */
    RLAB_NSTATUS
};

/* Short stable name of a status code ("ENOMEM"...). Never NULL. Thread-safe. */
RLAB_API const char *rlab_status_name(int code);

/* ---- errors ------------------------------------------------------------------------ */
/* An error report: code, message and, for loaders, the input file and line (line 0 = none). */
typedef struct rlab_err {
    int code;
    int line;
    char file[192];
    char msg[320];
} rlab_err;

/* Fill err (may be NULL) with code and a printf-style message. Returns code, so callers can
 * write `return rlab_errf(err, RLAB_EINVAL, "...")`. Clears file/line. */
RLAB_API int rlab_errf(rlab_err *err, int code, const char *fmt, ...) RLAB_PRINTF(3, 4);
/* Same, naming an input file and line: the message reads "FILE:LINE: msg". */
RLAB_API int rlab_errf_at(rlab_err *err, int code, const char *file, int line, const char *fmt, ...)
    RLAB_PRINTF(5, 6);
RLAB_API int rlab_verrf(rlab_err *err, int code, const char *fmt, va_list ap);
/* Reset to RLAB_OK with an empty message. */
RLAB_API void rlab_err_clear(rlab_err *err);

/* ---- names ------------------------------------------------------------------------- */
/* Names of registered objects (datasets, models, model kinds) live in char[RLAB_NAME_CAP]
 * fields, so a name has at most RLAB_NAME_CAP - 1 = 63 bytes. Longer names are refused,
 * never cut: two names sharing their first 63 bytes would otherwise become one object and
 * overwrite each other. */
#define RLAB_NAME_CAP 64
/* RLAB_OK when name (NULL counts as empty) fits a name field; else RLAB_EINVAL with
 * "<what> name '<its first 40 bytes>...' is longer than 63 bytes". what: "model",
 * "dataset"... Thread-safe. */
RLAB_API int rlab_name_check(const char *what, const char *name, rlab_err *err);

/* ---- paths ------------------------------------------------------------------------- */
/* The sandbox's rule (reclab --sandbox): RLAB_OK when path (absolute, or relative to the
 * current folder) names root itself or something inside it, once "." / ".." and the
 * symbolic links of every part that exists are resolved; a part that does not exist yet (a
 * file about to be written, a folder about to be made) may not be "..". Else RLAB_EINVAL
 * with "path '<path>' is outside the workspace <root>" (or RLAB_EIO when the current
 * folder cannot be read). root must be absolute and resolved (realpath). Reads the file
 * system; thread-safe. A link swapped in between the check and the use is not caught: the
 * rule keeps honest scripts of others in their folder, it is not a jail. */
RLAB_API int rlab_path_inside(const char *root, const char *path, rlab_err *err);

/* Internal invariant check: never for anything a user or a file can trigger. Prints file and
 * line and traps; compiled out when NDEBUG is set. */
#ifdef NDEBUG
#define RLAB_ASSERT(x) ((void)0)
#else
#define RLAB_ASSERT(x) ((x) ? (void)0 : rlab_assert_fail(#x, __FILE__, __LINE__))
#endif
RLAB_API void rlab_assert_fail(const char *expr, const char *file, int line);

/* ---- allocation -------------------------------------------------------------------- */
/* malloc/calloc/realloc/free wrappers. They honour a fault-injection countdown used by the
 * tests: after rlab_alloc_fail_after(n), the (n+1)-th allocation and every later one fail
 * until rlab_alloc_fail_after(-1). rlab_free(NULL) is a no-op. Thread-safe. */
RLAB_API void *rlab_malloc(size_t n);
RLAB_API void *rlab_calloc(size_t n, size_t size);
RLAB_API void *rlab_realloc(void *p, size_t n);
RLAB_API void rlab_free(void *p);
RLAB_API char *rlab_strdup(const char *s);
RLAB_API void rlab_alloc_fail_after(long n);
/* The allocation-failure sweep's mode (tests/allocfail): after rlab_alloc_fail_nth(n) the
 * n-th allocation counted from this call (n >= 1) fails, once, and every other succeeds;
 * n = 0 turns it off. rlab_alloc_count() is the number of allocations since the last
 * rlab_alloc_fail_nth call (or since start), rlab_alloc_nth_failed() 1 once the n-th has
 * failed. Independent of rlab_alloc_fail_after. Thread-safe. */
RLAB_API void rlab_alloc_fail_nth(long n);
RLAB_API long rlab_alloc_count(void);
RLAB_API int rlab_alloc_nth_failed(void);
/* 64-byte aligned allocation (free with rlab_free_aligned). */
RLAB_API void *rlab_malloc_aligned(size_t n);
RLAB_API void rlab_free_aligned(void *p);

/* ---- arenas ------------------------------------------------------------------------ */
/* A bump allocator over one fixed block. Allocations are 64-byte aligned and never freed
 * individually; rlab_arena_reset rewinds to empty, rlab_arena_rewind to a saved mark. A full
 * arena returns NULL (it never grows, so a training loop never calls malloc). */
typedef struct rlab_arena {
    unsigned char *base;
    size_t cap;
    size_t used;
    size_t peak;
} rlab_arena;

RLAB_API rlab_arena *rlab_arena_new(size_t cap, rlab_err *err);
RLAB_API void rlab_arena_free(rlab_arena *a);
RLAB_API void *rlab_arena_alloc(rlab_arena *a, size_t n);
RLAB_API void *rlab_arena_calloc(rlab_arena *a, size_t n);
RLAB_API size_t rlab_arena_mark(const rlab_arena *a);
RLAB_API void rlab_arena_rewind(rlab_arena *a, size_t mark);
RLAB_API void rlab_arena_reset(rlab_arena *a);

/* ---- random numbers ---------------------------------------------------------------- */
/* xoshiro256** seeded through splitmix64: fast, 2^256 period, and the same stream on every
 * platform. One generator per run; not thread-safe (give each thread its own, derived with
 * rlab_rng_split). */
typedef struct rlab_rng {
    uint64_t s[4];
} rlab_rng;

RLAB_API void rlab_rng_seed(rlab_rng *r, uint64_t seed);
RLAB_API uint64_t rlab_rng_u64(rlab_rng *r);
/* Uniform integer in [0, n) without modulo bias; n > 0. */
RLAB_API uint64_t rlab_rng_below(rlab_rng *r, uint64_t n);
/* Uniform float in [0, 1) with 24 random bits; uniform double in [0, 1) with 53. */
RLAB_API float rlab_rng_uniform(rlab_rng *r);
RLAB_API double rlab_rng_double(rlab_rng *r);
/* out[0..n) = n successive rlab_rng_uniform(r) draws (the same stream and values, without a
 * call per number: for filling score rows). */
RLAB_API void rlab_rng_fill_uniform(rlab_rng *r, float *out, size_t n);
/* Standard normal (Box-Muller, both values used alternately is NOT done: one per call, so
 * the stream stays simple to reason about). */
RLAB_API float rlab_rng_normal(rlab_rng *r);
/* A child generator whose stream is independent of the parent's continuation. */
RLAB_API void rlab_rng_split(rlab_rng *r, rlab_rng *child);
/* Fisher-Yates shuffle of n 32-bit integers. */
RLAB_API void rlab_rng_shuffle_i32(rlab_rng *r, int32_t *a, size_t n);

/* ---- time and logging -------------------------------------------------------------- */
/* Monotonic seconds (CLOCK_MONOTONIC). */
RLAB_API double rlab_now(void);
/* Wall-clock seconds since the epoch, with sub-second precision. */
RLAB_API double rlab_wall_time(void);

enum { RLAB_LOG_DEBUG, RLAB_LOG_INFO, RLAB_LOG_WARN, RLAB_LOG_ERROR };
typedef void (*rlab_log_sink)(int level, const char *msg, void *ud);
/* Route log lines (default: stderr for WARN and above, INFO when RECLAB_VERBOSE is set).
 * The ui installs its own sink so nothing is ever printed over the screen. Thread-safe. */
RLAB_API void rlab_log_set_sink(rlab_log_sink sink, void *ud);
RLAB_API void rlab_log(int level, const char *fmt, ...) RLAB_PRINTF(2, 3);

/* Version string of the core library ("0.1.0"). */
RLAB_API const char *rlab_version(void);
/* The git commit the core library was built from, as of its last CMake configure:
 * "abc123def456", "abc123def456-dirty" when tracked files differed from it, or "unknown". */
RLAB_API const char *rlab_build_git(void);

#endif /* RLAB_BASE_H */
