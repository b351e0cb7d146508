/*
 * The in-house unit-test harness: a table of {id, fn} per test executable (Redis style),
 * hierarchical stable ids (SQLite style: "tensor.matmul.3"), every failed check printing the
 * test id, the expression and expected vs actual.
 *
 *     static void t_add(void) { CHECK_EQ_INT(1 + 1, 2); }
 *     static const rlab_test tests[] = { {"base.add.1", t_add}, {NULL, NULL} };
 *     int main(int argc, char **argv) { return rlab_test_main(argc, argv, tests); }
 *
 * Run all tests, or those whose id starts with argv[1]. A test that needs a missing resource
 * calls rlab_test_skip("why"); a binary whose tests all skipped exits with 77, which ctest
 * reports as skipped (SKIP_RETURN_CODE 77).
 */
#ifndef RLAB_TEST_HARNESS_H
#define RLAB_TEST_HARNESS_H

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef struct rlab_test {
    const char *id;
    void (*fn)(void);
} rlab_test;

int rlab_test_main(int argc, char **argv, const rlab_test *tests);
void rlab_test_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void rlab_test_skip(const char *why);
/* The folder of real datasets ($RECLAB_DATA), or NULL when unset or missing. */
const char *rlab_test_data_dir(void);
/* The current test id (for messages). */
const char *rlab_test_current(void);
/* Path to a fresh temporary directory for this test binary (created once, removed at exit). */
const char *rlab_test_tmpdir(void);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            rlab_test_fail(__FILE__, __LINE__, "CHECK(%s) failed", #cond);                         \
    } while (0)

#define CHECK_MSG(cond, ...)                                                                       \
    do {                                                                                           \
        if (!(cond))                                                                               \
            rlab_test_fail(__FILE__, __LINE__, __VA_ARGS__);                                       \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                                         \
    do {                                                                                           \
        long long _a = (long long)(a), _b = (long long)(b);                                        \
        if (_a != _b)                                                                              \
            rlab_test_fail(__FILE__, __LINE__, "%s == %s: got %lld, expected %lld", #a, #b, _a,    \
                           _b);                                                                    \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                                      \
    do {                                                                                           \
        double _a = (double)(a), _b = (double)(b);                                                 \
        if (!(fabs(_a - _b) <= (double)(tol)))                                                     \
            rlab_test_fail(__FILE__, __LINE__, "%s ~ %s: got %.9g, expected %.9g (tol %g)", #a,    \
                           #b, _a, _b, (double)(tol));                                             \
    } while (0)

#define CHECK_STR(a, b)                                                                            \
    do {                                                                                           \
        const char *_x = (a), *_y = (b);                                                           \
        CHECK_MSG(_x &&strcmp(_x, _y) == 0, "%s:\n  got      '%s'\n  expected '%s'", #a,           \
                  _x ? _x : "(null)", _y);                                                         \
    } while (0)

#define CHECK_STR_CONTAINS(hay, needle)                                                            \
    do {                                                                                           \
        const char *_h = (hay), *_n = (needle);                                                    \
        if (!_h || !strstr(_h, _n))                                                                \
            rlab_test_fail(__FILE__, __LINE__, "'%s' does not contain '%s'", _h ? _h : "(null)",   \
                           _n);                                                                    \
    } while (0)

#endif
