/*
 * Test organization: the allocation-failure sweep over core (issue 14's campaign).
 *
 * A representative workload runs through the host the way the shell does: load a small
 * dataset (SASRec text) and register it in the session store, split it, `train pop`,
 * `train bprmf` for one epoch, `eval`, `save` to the store and to a checkpoint file, `load`
 * the checkpoint back, `recommend`, `export`, then free everything. rlab_alloc_fail_nth(N)
 * makes the N-th allocation of core and the plugins (every rlab_malloc / calloc / realloc /
 * strdup / aligned allocation) fail, once.
 *
 *   allocfail.count.1   the workload completes without injection; counts its allocations T
 *   allocfail.sample.1  a sample of N in [1, T] (every N up to 60, then about 100 more
 *                       spread evenly): the ctest part
 *   allocfail.sample.2  the same with SQLite's own allocations routed through rlab_malloc
 *                       (sqlite3_config(SQLITE_CONFIG_MALLOC)), so the store's SQLITE_NOMEM
 *                       paths are swept too
 *   allocfail.all.1/2   every N in [1, T], without / with SQLite's allocations
 *                       (bench/run allocfail; not run by ctest)
 *   allocfail.one.1     only N = $RLAB_ALLOCFAIL_N (with SQLite when $RLAB_ALLOCFAIL_SQLITE
 *                       is set), to reproduce one point; RLAB_ALLOCFAIL_VERBOSE=1 prints each
 *                       child's outcome and the log lines
 *
 * Each N runs in a forked child (a crash names its N; the parent never starts a thread
 * pool: run with OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1, as ctest does). The child must
 * end cleanly with one of: the workload reported an error with a message (the expected
 * outcome), or it completed because the failed allocation was optional (absorbed, e.g. a
 * cache); then, with injection off, the store must pass PRAGMA integrity_check and hold no
 * run still `running` (a run whose end could not be recorded is marked `interrupted` when
 * the store is opened again). A crash, an abort, an error without a message, a bad store
 * or, under ASan/LSan (CI), a leak reported at the child's exit fails the N.
 * RLAB_ALLOCFAIL_JSON=1 prints the figures as bench JSON lines.
 */
#define _XOPEN_SOURCE 700 /* mkdtemp */

#include "harness.h"

#include "data/loaders.h"
#include "data/split.h"
#include "host/host.h"
#include "store/store.h"

#include <dirent.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef RLAB_AF_PLUGIN_DIR
#error "RLAB_AF_PLUGIN_DIR (build/plugins) must be defined"
#endif

/* child exit codes */
enum {
    AF_ERROR = 10,    /* the workload reported an error with a message: handled */
    AF_ABSORBED = 11, /* completed although the N-th allocation failed */
    AF_BEYOND = 12,   /* completed, and fewer than N allocations were made */
    AF_NOMSG = 13,    /* an error without a message */
    AF_STORE = 14,    /* the store is damaged or a run is left `running` */
    AF_SETUP = 15,    /* the harness itself could not run */
};

static char dir[512];
static int with_sqlite; /* route SQLite's allocations through rlab_malloc (in each child) */

/* SQLite's allocator over rlab_malloc: a 16-byte header holds the size (xSize). */
static void *sq_malloc(int n)
{
    size_t *p = rlab_malloc((size_t)n + 16);
    if (!p)
        return NULL;
    p[0] = (size_t)n;
    return (char *)p + 16;
}

static void sq_free(void *p)
{
    if (p)
        rlab_free((char *)p - 16);
}

static void *sq_realloc(void *p, int n)
{
    size_t *q = rlab_realloc(p ? (char *)p - 16 : NULL, (size_t)n + 16);
    if (!q)
        return NULL;
    q[0] = (size_t)n;
    return (char *)q + 16;
}

static int sq_size(void *p) { return p ? (int)((size_t *)((char *)p - 16))[0] : 0; }
static int sq_roundup(int n) { return (n + 7) & ~7; }
static int sq_init(void *ud)
{
    (void)ud;
    return SQLITE_OK;
}
static void sq_shutdown(void *ud) { (void)ud; }

static void route_sqlite(void)
{
    static const sqlite3_mem_methods m = {
        .xMalloc = sq_malloc,
        .xFree = sq_free,
        .xRealloc = sq_realloc,
        .xSize = sq_size,
        .xRoundup = sq_roundup,
        .xInit = sq_init,
        .xShutdown = sq_shutdown,
    };
    if (sqlite3_config(SQLITE_CONFIG_MALLOC, &m) != SQLITE_OK) {
        fprintf(stderr, "allocfail: sqlite3_config failed (SQLite already initialised?)\n");
        exit(AF_SETUP);
    }
}
static char datafile[600];

/* The sweep's own folder (not rlab_test_tmpdir: the harness removes that at exit, and every
 * child exits). Flat; removed by remove_dir. */
static void remove_dir(void)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char p[1024];
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            unlink(p);
        }
    closedir(d);
    rmdir(dir);
}

static void write_data(void)
{
    snprintf(dir, sizeof dir, "/tmp/rlab-allocfail-XXXXXX");
    if (!mkdtemp(dir)) {
        CHECK_MSG(0, "cannot make a temporary folder");
        return;
    }
    snprintf(datafile, sizeof datafile, "%s/tiny.txt", dir);
    FILE *f = fopen(datafile, "w");
    if (!f)
        return;
    /* 24 users x 7 items over 20 items: deterministic, every user long enough for loo */
    for (int u = 1; u <= 24; u++)
        for (int k = 0; k < 7; k++)
            fprintf(f, "%d %d\n", u, 1 + (u * 3 + k * 7) % 20);
    fclose(f);
}

/* The workload; 0 when every step succeeded, else the failing step's status with its
 * message in why. The store is a fresh file per call. */
static int workload(char *why, size_t nwhy)
{
    char db[700], line[900];
    snprintf(db, sizeof db, "%s/s.db", dir);
    unlink(db);
    snprintf(line, sizeof line, "%s/s.db-wal", dir);
    unlink(line);
    snprintf(line, sizeof line, "%s/s.db-shm", dir);
    unlink(line);
    rlab_err err = {0};
    int rc = RLAB_OK;
    const char *const dirs[] = {RLAB_AF_PLUGIN_DIR, NULL};
    rlab_host_opts o = {.plugin_dirs = dirs, .no_env = 1};
    rlab_host *h = rlab_host_new(&o, &err);
    if (!h) {
        snprintf(why, nwhy, "host: %s", err.msg);
        return err.code ? err.code : -1;
    }
    rc = rlab_host_load_file(h, RLAB_AF_PLUGIN_DIR "/reclab_baselines.so", &err);
    if (!rc)
        rc = rlab_host_set_store(h, db, &err);
    if (!rc) {
        rlab_dataset *ds = NULL;
        rc = rlab_data_load(datafile, "sasrec", "tiny", &ds, &err);
        if (!rc) {
            rlab_split sp;
            rc = rlab_split_loo(&ds->inter, rlab_vocab_size(&ds->users), &sp, &err);
            if (!rc)
                rlab_split_clear(&sp);
        }
        if (!rc) {
            rlab_db_dataset_info di = {.name = ds->name,
                                       .source = datafile,
                                       .format = ds->format,
                                       .n_users = rlab_vocab_size(&ds->users),
                                       .n_items = rlab_vocab_size(&ds->items),
                                       .n_inter = (int64_t)ds->inter.n};
            rc = rlab_db_dataset_register(rlab_host_db(h), &di, NULL, &err);
        }
        if (!rc) {
            rc = rlab_host_add_dataset(h, ds, &err); /* takes ds */
            ds = NULL;
        }
        rlab_dataset_free(ds);
    }
    char ckpt[700], csv[700];
    snprintf(ckpt, sizeof ckpt, "%s/m.safetensors", dir);
    snprintf(csv, sizeof csv, "%s/p.csv", dir);
    const char *steps[] = {
        "train pop data=tiny",
        "train bprmf data=tiny epochs=1 dim=8 batch=32 eval_every=1",
        "eval model=bprmf k=5",
        "save model=pop",
        NULL, /* save file= */
        NULL, /* load file= */
        "recommend model=m2 user=3 k=3",
        NULL, /* export */
        NULL,
    };
    char s_save[800], s_load[800], s_export[800];
    snprintf(s_save, sizeof s_save, "save model=bprmf file=%s", ckpt);
    snprintf(s_load, sizeof s_load, "load file=%s name=m2", ckpt);
    snprintf(s_export, sizeof s_export, "export model=pop file=%s k=3", csv);
    steps[4] = s_save;
    steps[5] = s_load;
    steps[7] = s_export;
    for (int i = 0; !rc && steps[i]; i++) {
        rlab_result *res = NULL;
        rc = rlab_host_run_sync(h, steps[i], &res, &err);
        rlab_result_free(res);
    }
    if (rc)
        snprintf(why, nwhy, "%s", err.msg);
    rlab_host_free(h);
    return rc;
}

/* After a run, with injection off: integrity ok and no run left `running`. */
static int store_ok(char *why, size_t nwhy)
{
    char db[700];
    snprintf(db, sizeof db, "%s/s.db", dir);
    if (access(db, F_OK) != 0)
        return 1; /* the failure came before the store was made */
    rlab_err err = {0};
    rlab_db *d = rlab_db_open(db, 0, &err);
    if (!d) {
        snprintf(why, nwhy, "reopen: %s", err.msg);
        return 0;
    }
    rlab_db_result *r = rlab_db_query_table(
        d,
        "SELECT (SELECT group_concat(integrity_check) FROM pragma_integrity_check), "
        "(SELECT count(*) FROM runs WHERE status = 'running')",
        NULL, 0, 0, &err);
    int ok = 0;
    if (!r || r->nrow != 1) {
        snprintf(why, nwhy, "check query: %s", err.msg);
    } else {
        const rlab_db_value *ic = rlab_db_result_cell(r, 0, 0);
        const rlab_db_value *nr = rlab_db_result_cell(r, 0, 1);
        ok = ic->type == RLAB_DB_TEXT && strcmp(ic->s, "ok") == 0 && nr->i == 0;
        if (!ok)
            snprintf(why, nwhy, "integrity '%s', %lld run(s) left running",
                     ic->type == RLAB_DB_TEXT ? ic->s : "?", (long long)nr->i);
    }
    rlab_db_result_free(r);
    rlab_db_close(d);
    return ok;
}

static void quiet(int level, const char *msg, void *ud)
{
    (void)level;
    (void)msg;
    (void)ud;
}

/* Child: run the workload with the n-th allocation failing (n = 0: none); exit with an AF_
 * code. Messages on stderr. */
static void child(long n, int count_fd)
{
    char why[512] = "";
    if (with_sqlite)
        route_sqlite();
    if (!getenv("RLAB_ALLOCFAIL_VERBOSE"))
        rlab_log_set_sink(quiet, NULL);
    rlab_alloc_fail_nth(n);
    int rc = workload(why, sizeof why);
    long count = rlab_alloc_count();
    int failed = rlab_alloc_nth_failed();
    rlab_alloc_fail_nth(0);
    if (count_fd >= 0) {
        ssize_t w = write(count_fd, &count, sizeof count);
        (void)w;
    }
    int code;
    if (rc != RLAB_OK) {
        code = why[0] ? AF_ERROR : AF_NOMSG;
        if (!failed) /* an error with no injected failure: the workload itself is broken */
            code = AF_SETUP;
    } else {
        code = failed ? AF_ABSORBED : AF_BEYOND;
    }
    char swhy[512] = "";
    if (code != AF_SETUP && !store_ok(swhy, sizeof swhy)) {
        fprintf(stderr, "allocfail N=%ld: store: %s\n", n, swhy);
        code = AF_STORE;
    }
    if (code == AF_SETUP || code == AF_NOMSG)
        fprintf(stderr, "allocfail N=%ld: status %d, message '%s'\n", n, rc, why);
    if (getenv("RLAB_ALLOCFAIL_VERBOSE"))
        fprintf(stderr, "allocfail N=%ld: code %d: %s\n", n, code, why);
    fflush(NULL);
    exit(code); /* exit, not _exit: LSan checks for leaks here */
}

/* Run one N in a child; returns its AF_ code, or 0x100 | signal for a crash, or the exit
 * status (LSan: 23). *count receives the child's allocation count when count is not NULL. */
static int run_n(long n, long *count)
{
    int fds[2] = {-1, -1};
    if (count && pipe(fds) != 0)
        return AF_SETUP;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return AF_SETUP;
    if (pid == 0) {
        if (fds[0] >= 0)
            close(fds[0]);
        child(n, fds[1]);
    }
    if (fds[1] >= 0)
        close(fds[1]);
    if (count) {
        *count = 0;
        ssize_t r = read(fds[0], count, sizeof *count);
        (void)r;
        close(fds[0]);
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0) {
    }
    if (WIFSIGNALED(st))
        return 0x100 | WTERMSIG(st);
    return WEXITSTATUS(st);
}

static long total_allocs(void)
{
    long count = 0;
    int code = run_n(0, &count);
    CHECK_MSG(code == AF_BEYOND, "the workload without injection ended with code %d", code);
    CHECK_MSG(count > 100, "the workload made only %ld allocations", count);
    return code == AF_BEYOND ? count : 0;
}

static void t_count(void)
{
    write_data();
    long t = total_allocs();
    printf("# allocfail: the workload makes %ld allocations\n", t);
    remove_dir();
}

/* Sweep the N of list[0..n-1]; report each bad N; print the figures. */
static void sweep(const char *name, const long *list, long n, long total)
{
    long handled = 0, absorbed = 0, beyond = 0, bad = 0;
    for (long i = 0; i < n; i++) {
        int code = run_n(list[i], NULL);
        if (code == AF_ERROR)
            handled++;
        else if (code == AF_ABSORBED)
            absorbed++;
        else if (code == AF_BEYOND)
            beyond++;
        else {
            bad++;
            if (code & 0x100)
                rlab_test_fail(__FILE__, __LINE__, "N=%ld: the child died of signal %d", list[i],
                               code & 0xFF);
            else
                rlab_test_fail(__FILE__, __LINE__,
                               "N=%ld: the child ended with code %d (13 no message, 14 store, "
                               "15 harness, 1 or 23 an ASan/LSan report)",
                               list[i], code);
        }
    }
    printf("# allocfail %s: %ld of %ld points swept: %ld errors reported, %ld absorbed, %ld "
           "past the end, %ld bad\n",
           name, n, total, handled, absorbed, beyond, bad);
    if (getenv("RLAB_ALLOCFAIL_JSON")) {
        const char *m[] = {"allocations", "points_swept", "errors_reported", "absorbed", "bad"};
        long v[] = {total, n, handled, absorbed, bad};
        for (int i = 0; i < 5; i++)
            printf("{\"bench\": \"allocfail\", \"metric\": \"%s.%s\", \"value\": %ld, \"unit\": "
                   "\"count\", \"baseline\": null}\n",
                   name, m[i], v[i]);
    }
}

static void sample(const char *name)
{
    write_data();
    long t = total_allocs();
    if (!t) {
        remove_dir();
        return;
    }
    long list[200];
    long n = 0;
    for (long k = 1; k <= 60 && k <= t; k++)
        list[n++] = k;
    long stride = t > 60 ? (t - 60) / 100 + 1 : 1;
    for (long k = 61 + stride / 2; k <= t && n < 200; k += stride)
        list[n++] = k;
    sweep(name, list, n, t);
    remove_dir();
}

static void t_sample(void)
{
    with_sqlite = 0;
    sample("sample");
}

static void t_sample_sqlite(void)
{
    with_sqlite = 1;
    sample("sample_sqlite");
    with_sqlite = 0;
}

static void all(const char *name)
{
    write_data();
    long t = total_allocs();
    if (!t) {
        remove_dir();
        return;
    }
    long *list = malloc((size_t)t * sizeof *list);
    if (!list) {
        remove_dir();
        return;
    }
    for (long k = 0; k < t; k++)
        list[k] = k + 1;
    sweep(name, list, t, t);
    free(list);
    remove_dir();
}

static void t_all(void)
{
    with_sqlite = 0;
    all("all");
}

static void t_all_sqlite(void)
{
    with_sqlite = 1;
    all("all_sqlite");
    with_sqlite = 0;
}

static void t_one(void)
{
    const char *n = getenv("RLAB_ALLOCFAIL_N");
    if (!n) {
        rlab_test_skip("RLAB_ALLOCFAIL_N not set");
        return;
    }
    with_sqlite = getenv("RLAB_ALLOCFAIL_SQLITE") != NULL;
    write_data();
    long list[1] = {atol(n)};
    sweep("one", list, 1, 0);
    remove_dir();
    with_sqlite = 0;
}

static const rlab_test tests[] = {
    {"allocfail.count.1", t_count},
    {"allocfail.sample.1", t_sample},
    {"allocfail.sample.2", t_sample_sqlite},
    {"allocfail.all.1", t_all},
    {"allocfail.all.2", t_all_sqlite},
    {"allocfail.one.1", t_one},
    {NULL, NULL},
};

int main(int argc, char **argv) { return rlab_test_main(argc, argv, tests); }
