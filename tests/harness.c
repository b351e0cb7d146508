/* The in-house unit-test harness (see harness.h). */
#include "harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *current_id = "";
static int current_failed;
static int current_skipped;
static jmp_buf bail;
static char tmpdir[256];

const char *rlab_test_current(void) { return current_id; }

void rlab_test_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "FAIL %s (%s:%d): ", current_id, file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    current_failed++;
    if (current_failed > 20) /* stop a runaway loop of failures within one test */
        longjmp(bail, 1);
}

void rlab_test_skip(const char *why)
{
    printf("SKIP %s: %s\n", current_id, why);
    current_skipped = 1;
    longjmp(bail, 1);
}

const char *rlab_test_data_dir(void)
{
    const char *d = getenv("RECLAB_DATA");
    struct stat st;
    if (!d || !*d || stat(d, &st) != 0 || !S_ISDIR(st.st_mode))
        return NULL;
    return d;
}

static void rm_tmpdir(void)
{
    if (tmpdir[0]) {
        char cmd[320];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0)
            fprintf(stderr, "warning: could not remove %s\n", tmpdir);
    }
}

const char *rlab_test_tmpdir(void)
{
    if (!tmpdir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(tmpdir, sizeof tmpdir, "%s/reclab-test-XXXXXX", base && *base ? base : "/tmp");
        if (!mkdtemp(tmpdir)) {
            tmpdir[0] = '\0';
            return "/tmp";
        }
        atexit(rm_tmpdir);
    }
    return tmpdir;
}

/* setjmp lives in its own frame so no local of the caller can be clobbered by longjmp. */
static void run_one(void (*fn)(void))
{
    if (setjmp(bail) == 0)
        fn();
}

int rlab_test_main(int argc, char **argv, const rlab_test *tests)
{
    const char *filter = argc > 1 ? argv[1] : NULL;
    int run = 0, failed = 0, skipped = 0;
    for (const rlab_test *t = tests; t->id; t++) {
        if (filter && strncmp(t->id, filter, strlen(filter)) != 0)
            continue;
        current_id = t->id;
        current_failed = 0;
        current_skipped = 0;
        run_one(t->fn);
        run++;
        if (current_skipped) {
            skipped++;
        } else if (current_failed) {
            failed++;
            printf("not ok %s\n", t->id);
        } else {
            printf("ok %s\n", t->id);
        }
    }
    printf("%d run, %d failed, %d skipped\n", run, failed, skipped);
    if (run == 0 && filter) {
        fprintf(stderr, "no test matches '%s'\n", filter);
        return 1;
    }
    if (failed)
        return 1;
    if (skipped && skipped == run)
        return 77;
    return 0;
}
