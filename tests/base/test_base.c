/*
 * Test organization: base.err.* error formatting; base.alloc.* fault injection;
 * base.arena.* bump allocation, alignment, full arena; base.rng.* determinism and ranges;
 * base.path.* the sandbox's rule rlab_path_inside (links, "..", relative paths, files not
 * yet made).
 */
#define _XOPEN_SOURCE 700 /* realpath, mkdtemp, symlink */

#include "base/base.h"
#include "harness.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void t_err_format(void)
{
    rlab_err err = {0};
    CHECK_EQ_INT(rlab_errf(&err, RLAB_EINVAL, "bad %s %d", "shape", 3), RLAB_EINVAL);
    CHECK(strcmp(err.msg, "bad shape 3") == 0);
    rlab_errf_at(&err, RLAB_EFORMAT, "u.data", 17, "expected %d columns", 4);
    CHECK(strcmp(err.msg, "u.data:17: expected 4 columns") == 0);
    CHECK_EQ_INT(err.line, 17);
    rlab_err_clear(&err);
    CHECK_EQ_INT(err.code, RLAB_OK);
    CHECK(strcmp(rlab_status_name(RLAB_ECANCELED), "ECANCELED") == 0);
    CHECK(strcmp(rlab_status_name(999), "EUNKNOWN") == 0);
}

static void t_alloc_fault(void)
{
    rlab_alloc_fail_after(2);
    void *a = rlab_malloc(8), *b = rlab_malloc(8), *c = rlab_malloc(8);
    rlab_alloc_fail_after(-1);
    CHECK(a && b && !c);
    rlab_free(a);
    rlab_free(b);
    rlab_free(c);
}

static void t_arena(void)
{
    rlab_err err = {0};
    rlab_arena *a = rlab_arena_new(1000, &err);
    CHECK(a != NULL);
    void *p = rlab_arena_alloc(a, 10);
    CHECK(((uintptr_t)p & 63) == 0);
    size_t m = rlab_arena_mark(a);
    CHECK(rlab_arena_alloc(a, 500) != NULL);
    CHECK(rlab_arena_alloc(a, 500) == NULL); /* full: NULL, no growth */
    rlab_arena_rewind(a, m);
    CHECK(rlab_arena_alloc(a, 500) != NULL);
    CHECK(a->peak >= 64 + 512);
    rlab_arena_reset(a);
    CHECK_EQ_INT(a->used, 0);
    rlab_arena_free(a);
    rlab_arena_free(NULL);
}

static void t_rng(void)
{
    rlab_rng r1, r2;
    rlab_rng_seed(&r1, 42);
    rlab_rng_seed(&r2, 42);
    for (int i = 0; i < 100; i++)
        CHECK(rlab_rng_u64(&r1) == rlab_rng_u64(&r2));
    double s = 0, s2 = 0;
    int n = 20000;
    for (int i = 0; i < n; i++) {
        float u = rlab_rng_uniform(&r1);
        CHECK(u >= 0.0f && u < 1.0f);
        CHECK(rlab_rng_below(&r1, 7) < 7);
        double z = rlab_rng_normal(&r1);
        s += z;
        s2 += z * z;
    }
    CHECK_NEAR(s / n, 0.0, 0.05);
    CHECK_NEAR(s2 / n, 1.0, 0.05);
    int32_t a[10];
    for (int i = 0; i < 10; i++)
        a[i] = i;
    rlab_rng_shuffle_i32(&r1, a, 10);
    int sum = 0;
    for (int i = 0; i < 10; i++)
        sum += a[i];
    CHECK_EQ_INT(sum, 45);
}

/* rlab_rng_fill_uniform: the same values as one rlab_rng_uniform per number, and the
 * generator left where those calls leave it (odd lengths, 0 and 1 included). */
static void t_rng_fill(void)
{
    const size_t lens[] = {0, 1, 7, 600, 1001};
    for (size_t k = 0; k < sizeof lens / sizeof *lens; k++) {
        rlab_rng r1, r2;
        rlab_rng_seed(&r1, 7 + k);
        rlab_rng_seed(&r2, 7 + k);
        float buf[1001];
        rlab_rng_fill_uniform(&r1, buf, lens[k]);
        int same = 1;
        for (size_t i = 0; i < lens[k]; i++) {
            float u = rlab_rng_uniform(&r2);
            same &= memcmp(&u, &buf[i], sizeof u) == 0;
        }
        CHECK(same);
        CHECK(rlab_rng_u64(&r1) == rlab_rng_u64(&r2));
    }
}

static void t_path_inside(void)
{
    char tmpl[] = "/tmp/rlab_path_XXXXXX";
    char *t = mkdtemp(tmpl);
    CHECK(t != NULL);
    if (!t)
        return;
    char real[PATH_MAX], ws[PATH_MAX + 8], p[PATH_MAX + 64], cwd[PATH_MAX];
    CHECK(realpath(t, real) != NULL);
    snprintf(ws, sizeof ws, "%s/ws", real);
    snprintf(p, sizeof p, "%s/out", real);
    CHECK(mkdir(ws, 0700) == 0 && mkdir(p, 0700) == 0);
    snprintf(p, sizeof p, "%s/ws/link", real);
    CHECK(symlink("../out", p) == 0);
    rlab_err err = {0};
    /* inside: the root, files in it, files not made yet, in folders not made yet */
    CHECK_EQ_INT(rlab_path_inside(ws, ws, &err), RLAB_OK);
    snprintf(p, sizeof p, "%s/a.txt", ws);
    CHECK_EQ_INT(rlab_path_inside(ws, p, &err), RLAB_OK);
    snprintf(p, sizeof p, "%s/new/dir/a.txt", ws);
    CHECK_EQ_INT(rlab_path_inside(ws, p, &err), RLAB_OK);
    snprintf(p, sizeof p, "%s/./x/../a.txt", ws); /* ".." over a part that is not there */
    CHECK_EQ_INT(rlab_path_inside(ws, p, &err), RLAB_EINVAL);
    /* outside: "..", a link out, a sibling sharing the prefix, the parent, "/" */
    snprintf(p, sizeof p, "%s/../out/secret", ws);
    CHECK_EQ_INT(rlab_path_inside(ws, p, &err), RLAB_EINVAL);
    CHECK(strstr(err.msg, "is outside the workspace") != NULL);
    snprintf(p, sizeof p, "%s/link/secret", ws);
    CHECK_EQ_INT(rlab_path_inside(ws, p, &err), RLAB_EINVAL);
    snprintf(p, sizeof p, "%s/link", ws);
    CHECK_EQ_INT(rlab_path_inside(ws, p, &err), RLAB_EINVAL);
    snprintf(p, sizeof p, "%s2/x", ws);
    CHECK_EQ_INT(rlab_path_inside(ws, p, &err), RLAB_EINVAL);
    CHECK_EQ_INT(rlab_path_inside(ws, real, &err), RLAB_EINVAL);
    CHECK_EQ_INT(rlab_path_inside(ws, "/", &err), RLAB_EINVAL);
    CHECK_EQ_INT(rlab_path_inside(ws, "", &err), RLAB_EINVAL);
    CHECK_EQ_INT(rlab_path_inside("relative", ws, &err), RLAB_EINVAL);
    /* relative paths are taken from the current folder */
    CHECK(getcwd(cwd, sizeof cwd) != NULL);
    CHECK(chdir(ws) == 0);
    CHECK_EQ_INT(rlab_path_inside(ws, "a.txt", &err), RLAB_OK);
    CHECK_EQ_INT(rlab_path_inside(ws, "sub/../a.txt", &err), RLAB_EINVAL); /* sub not made */
    CHECK_EQ_INT(rlab_path_inside(ws, "../out/x", &err), RLAB_EINVAL);
    CHECK_EQ_INT(rlab_path_inside(ws, "link/../ws/a.txt", &err), RLAB_OK); /* out/../ws: in */
    CHECK(chdir(cwd) == 0);
    /* the root "/" holds everything */
    CHECK_EQ_INT(rlab_path_inside("/", ws, &err), RLAB_OK);
    snprintf(p, sizeof p, "%s/ws/link", real);
    unlink(p);
    snprintf(p, sizeof p, "%s/out", real);
    rmdir(p);
    rmdir(ws);
    rmdir(real);
}

static const rlab_test tests[] = {
    {"base.err.1", t_err_format},
    {"base.alloc.1", t_alloc_fault},
    {"base.arena.1", t_arena},
    {"base.rng.1", t_rng},
    {"base.rng.2", t_rng_fill},
    {"base.path.1", t_path_inside},
    {NULL, NULL},
};

int main(int argc, char **argv) { return rlab_test_main(argc, argv, tests); }
