/*
 * Test organization: crash safety of the real program (issue 14's campaign). The program
 * (build/reclab) is killed with SIGKILL at seeded random moments of
 *
 *   crash.train.1    `train bprmf data=demo epochs=100000` (metrics flushed every epoch)
 *   crash.sim.1      `simulator.new` then `simulator.step rounds=1000000` (events)
 *   crash.migrate.1  opening a version-1 store holding 60,000 metric rows (the upgrade to
 *                    the current schema)
 *   crash.ckpt.1     `train bprmf ... dim=1024` then `save model=bprmf file=...` (a
 *                    checkpoint write of ~7 MB)
 *
 * and after each kill the store is checked: PRAGMA integrity_check is "ok"; opening it again
 * (rlab_db_open, which recovers dead runs) leaves no run `running` and marks the killed run
 * `interrupted`; every run row seen before (id, status, config, its metric and event counts)
 * is still there unchanged ("committed rows survive"). Migration: between the kill and the
 * next open the file is at a whole schema version (never half-migrated) with all its rows,
 * and the next open completes the upgrade. Checkpoint: the file is either absent or a
 * complete, readable checkpoint; a store row naming it implies it.
 *
 * Kill points: uniform in a window per scenario (calibrated by an unkilled run for the
 * finite ones), from the xoshiro stream of $RLAB_CRASH_SEED (default 14); $RLAB_CRASH_POINTS
 * per scenario (default 2: the ctest part; bench/run crash sets more). RLAB_CRASH_JSON=1
 * prints the figures as bench JSON lines.
 */
#define _XOPEN_SOURCE 700 /* mkdtemp, nanosleep */

#include "harness.h"

#include "base/base.h"
#include "store/store.h"
#include "tensor/checkpoint.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef RLAB_RECLAB_EXE
#error "RLAB_RECLAB_EXE (the program) must be defined"
#endif

static char dir[256];
static rlab_rng rng;
static int points;
/* figures of the scenario being run */
static int n_killed, n_finished, n_interrupted, n_checked;

/* ---- processes ------------------------------------------------------------------------ */

static pid_t spawn(const char *const *argv, const char *log)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        setenv("OPENBLAS_NUM_THREADS", "1", 1);
        setenv("OMP_WAIT_POLICY", "passive", 1);
        setenv("OPENBLAS_THREAD_TIMEOUT", "4", 1);
        char *av[32];
        int k = 0;
        for (; argv[k] && k < 31; k++)
            av[k] = strdup(argv[k]); /* execv's argv is not const; the child execs or exits */
        av[k] = NULL;
        execv(RLAB_RECLAB_EXE, av);
        _exit(127);
    }
    return pid;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Run to the end; returns the exit status (-1 on a signal); *secs the time it took. */
static int run_wait(const char *const *argv, double *secs)
{
    char log[320];
    snprintf(log, sizeof log, "%s/run.log", dir);
    double t0 = now();
    pid_t pid = spawn(argv, log);
    int st = 0;
    waitpid(pid, &st, 0);
    if (secs)
        *secs = now() - t0;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Start, SIGKILL after secs, reap. Returns 1 when the kill landed (the program was still
 * running), 0 when it had already finished. */
static int run_kill(const char *const *argv, double secs)
{
    char log[320];
    snprintf(log, sizeof log, "%s/kill.log", dir);
    pid_t pid = spawn(argv, log);
    struct timespec ts = {.tv_sec = (time_t)secs,
                          .tv_nsec = (long)((secs - (double)(time_t)secs) * 1e9)};
    nanosleep(&ts, NULL);
    kill(pid, SIGKILL);
    int st = 0;
    waitpid(pid, &st, 0);
    int landed = WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL;
    n_killed += landed;
    n_finished += !landed;
    return landed;
}

/* 1 once the file at path contains text. */
static int log_has(const char *path, const char *text)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strstr(buf, text) != NULL;
}

/* Run once to the end, timing the part after the output line holding marker appears;
 * returns the exit status. */
static int run_time_after(const char *const *argv, const char *marker, double *secs)
{
    char log[320];
    snprintf(log, sizeof log, "%s/cal.log", dir);
    pid_t pid = spawn(argv, log);
    double t0 = 0;
    int seen = 0, st = 0;
    for (;;) {
        if (!seen && log_has(log, marker)) {
            seen = 1;
            t0 = now();
        }
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid)
            break;
        struct timespec ts = {.tv_nsec = 500000};
        nanosleep(&ts, NULL);
    }
    *secs = seen ? now() - t0 : 0;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Start; once the output holds marker wait secs more, then SIGKILL; reap. Returns 1 when the
 * kill landed. */
static int run_kill_after(const char *const *argv, const char *marker, double secs)
{
    char log[320];
    snprintf(log, sizeof log, "%s/kill.log", dir);
    pid_t pid = spawn(argv, log);
    int st = 0;
    for (;;) {
        if (log_has(log, marker))
            break;
        if (waitpid(pid, &st, WNOHANG) == pid) { /* ended before the marker */
            n_finished++;
            return 0;
        }
        struct timespec ts = {.tv_nsec = 200000};
        nanosleep(&ts, NULL);
    }
    struct timespec ts = {.tv_sec = (time_t)secs,
                          .tv_nsec = (long)((secs - (double)(time_t)secs) * 1e9)};
    nanosleep(&ts, NULL);
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    int landed = WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL;
    n_killed += landed;
    n_finished += !landed;
    return landed;
}

/* ---- the store after a kill -------------------------------------------------------------- */

/* One line per run: id|status|name|config|metrics|events. */
typedef struct snap {
    int n;
    char **rows;
} snap;

static void snap_free(snap *s)
{
    for (int i = 0; i < s->n; i++)
        free(s->rows[i]);
    free(s->rows);
    s->rows = NULL;
    s->n = 0;
}

static int take_snap(rlab_db *db, snap *s)
{
    rlab_err err = {0};
    rlab_db_result *r = rlab_db_query_table(
        db,
        "SELECT r.id || '|' || r.status || '|' || ifnull(r.name, '') || '|' || "
        "ifnull(r.config, '') || '|' || "
        "(SELECT count(*) FROM metrics m WHERE m.run_id = r.id) || '|' || "
        "(SELECT count(*) FROM events e WHERE e.run_id = r.id) FROM runs r ORDER BY r.id",
        NULL, 0, 0, &err);
    if (!r) {
        rlab_test_fail(__FILE__, __LINE__, "snapshot: %s", err.msg);
        return 0;
    }
    s->n = r->nrow;
    s->rows = calloc((size_t)r->nrow + 1, sizeof *s->rows);
    for (int i = 0; i < r->nrow; i++)
        s->rows[i] = strdup(rlab_db_result_cell(r, i, 0)->s);
    rlab_db_result_free(r);
    return 1;
}

static int integrity_ok_raw(const char *path)
{
    sqlite3 *h = NULL;
    int ok = 0;
    if (sqlite3_open_v2(path, &h, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK) {
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(h, "PRAGMA integrity_check", -1, &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
            ok = strcmp((const char *)sqlite3_column_text(st, 0), "ok") == 0;
        sqlite3_finalize(st);
    }
    sqlite3_close(h);
    return ok;
}

/* After a kill: integrity, recovery, no run running, the previous rows unchanged, the
 * killed run interrupted (when it had started and the kill landed; with must_interrupt
 * the last new run must be that run, else it may also have ended before the kill). Updates
 * *prev. */
static void check_store(const char *path, snap *prev, int landed, int must_interrupt,
                        const char *what)
{
    n_checked++;
    CHECK_MSG(integrity_ok_raw(path), "%s: integrity_check failed after the kill", what);
    rlab_err err = {0};
    rlab_db *db = rlab_db_open(path, 0, &err);
    CHECK_MSG(db != NULL, "%s: reopen: %s", what, err.msg);
    if (!db)
        return;
    snap now_ = {0};
    if (!take_snap(db, &now_)) {
        rlab_db_close(db);
        return;
    }
    for (int i = 0; i < now_.n; i++)
        CHECK_MSG(!strstr(now_.rows[i], "|running|"), "%s: run left running: %s", what,
                  now_.rows[i]);
    CHECK_MSG(now_.n >= prev->n, "%s: %d runs before the kill, %d after", what, prev->n, now_.n);
    for (int i = 0; i < prev->n && i < now_.n; i++)
        CHECK_MSG(strcmp(prev->rows[i], now_.rows[i]) == 0,
                  "%s: a committed row changed:\n  before %s\n  after  %s", what, prev->rows[i],
                  now_.rows[i]);
    /* the killed process's last run */
    if (landed && now_.n > prev->n) {
        const char *last = now_.rows[now_.n - 1];
        int interrupted = strstr(last, "|interrupted|") != NULL;
        /* a kill between two -c actions finds the first one's run done and the long one
         * not started: sim's `simulator.new` */
        int between = strstr(last, "|done|simulator.new|") != NULL;
        CHECK_MSG(interrupted || between || !must_interrupt,
                  "%s: the killed run is not interrupted: %s", what, last);
        n_interrupted += interrupted;
    }
    snap_free(prev);
    *prev = now_;
    rlab_db_close(db);
}

static double pick(double lo, double hi) { return lo + (hi - lo) * rlab_rng_double(&rng); }

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/rlab-crash-XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    const char *s = getenv("RLAB_CRASH_SEED");
    rlab_rng_seed(&rng, s ? (uint64_t)strtoull(s, NULL, 10) : 14);
    const char *p = getenv("RLAB_CRASH_POINTS");
    points = p ? atoi(p) : 2;
    if (points < 1)
        points = 1;
    n_killed = n_finished = n_interrupted = n_checked = 0;
}

static void remove_tree(const char *d)
{
    DIR *dd = opendir(d);
    if (!dd)
        return;
    struct dirent *e;
    char p[600];
    while ((e = readdir(dd)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(p, sizeof p, "%s/%s", d, e->d_name);
            if (unlink(p) != 0)
                remove_tree(p);
        }
    closedir(dd);
    rmdir(d);
}

static void report(const char *name)
{
    printf("# crash %s: %d kill points, %d landed, %d finished first, %d runs verified "
           "interrupted, %d stores checked\n",
           name, points, n_killed, n_finished, n_interrupted, n_checked);
    if (getenv("RLAB_CRASH_JSON")) {
        const char *m[] = {"kill_points", "killed", "finished_first", "interrupted_verified",
                           "stores_checked"};
        int v[] = {points, n_killed, n_finished, n_interrupted, n_checked};
        for (int i = 0; i < 5; i++)
            printf("{\"bench\": \"crash\", \"metric\": \"%s.%s\", \"value\": %d, \"unit\": "
                   "\"count\", \"baseline\": null}\n",
                   name, m[i], v[i]);
    }
    remove_tree(dir);
}

/* ---- scenarios ---------------------------------------------------------------------------- */

/* A store with one committed run (train pop), then kills of a long command. */
static void kill_long(const char *name, const char *const *cmd, double lo, double hi)
{
    setup();
    char db[320];
    snprintf(db, sizeof db, "%s/s.db", dir);
    const char *first[] = {"reclab", "-q", "--db", db, "-c", "train pop data=demo", NULL};
    CHECK_EQ_INT(run_wait(first, NULL), 0);
    snap prev = {0};
    rlab_err err = {0};
    rlab_db *d = rlab_db_open(db, 0, &err);
    CHECK_MSG(d && take_snap(d, &prev), "setup: %s", err.msg);
    rlab_db_close(d);
    CHECK_MSG(prev.n == 1 && strstr(prev.rows[0], "|done|"), "setup: %s",
              prev.n ? prev.rows[0] : "no run");
    const char *argv[16] = {"reclab", "-q", "--db", db};
    int k = 4;
    for (int i = 0; cmd[i] && k < 15; i++)
        argv[k++] = cmd[i];
    argv[k] = NULL;
    for (int i = 0; i < points; i++) {
        double t = pick(lo, hi);
        int landed = run_kill(argv, t);
        char what[96];
        snprintf(what, sizeof what, "%s kill %d at %.3f s", name, i + 1, t);
        check_store(db, &prev, landed, 1, what);
    }
    snap_free(&prev);
    report(name);
}

static void t_train(void)
{
    const char *cmd[] = {"-c", "train bprmf data=demo epochs=100000 eval_every=1 dim=16", NULL};
    kill_long("train", cmd, 0.05, 3.0);
}

static void t_sim(void)
{
    const char *cmd[] = {"-c", "simulator.new agents=60 checkpoint_every=1", "-c",
                         "simulator.step rounds=1000000", NULL};
    kill_long("sim", cmd, 0.05, 3.0);
}

/* ---- migration ------------------------------------------------------------------------ */

static sqlite3_int64 raw_int(const char *path, const char *sql)
{
    sqlite3 *h = NULL;
    sqlite3_int64 v = -1;
    if (sqlite3_open_v2(path, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
            v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(h);
    return v;
}

/* A version-1 store with rows in every table and many metrics. */
static int make_v1(const char *path)
{
    int n = 0;
    const rlab_migration *m = rlab_db_core_migrations(&n);
    sqlite3 *h = NULL;
    unlink(path);
    if (sqlite3_open(path, &h) != SQLITE_OK)
        return 0;
    char *msg = NULL;
    int ok = sqlite3_exec(h, m[0].sql, NULL, NULL, &msg) == SQLITE_OK &&
             sqlite3_exec(
                 h,
                 "PRAGMA user_version = 1;"
                 "INSERT INTO datasets(name, source, n_users, created) VALUES('demo', 'b', 10, 1);"
                 "INSERT INTO runs(id, plugin, status, started, seed, config)"
                 "  VALUES(1, 'seqrec', 'done', 1.5, 42, '{\"a\":1}');"
                 "INSERT INTO runs(id, plugin, status, started) VALUES(2, 'seqrec', 'running', 2);"
                 "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 60000)"
                 "  INSERT INTO metrics(run_id, step, split, name, value)"
                 "  SELECT 1, x, 'valid', 'ndcg@10', x * 0.001 FROM c;"
                 "INSERT INTO events(run_id, seq, kind, payload) VALUES(1, 0, 'watch', '{}');",
                 NULL, NULL, &msg) == SQLITE_OK;
    if (!ok)
        rlab_test_fail(__FILE__, __LINE__, "make_v1: %s", msg ? msg : "?");
    sqlite3_free(msg);
    sqlite3_close(h);
    return ok;
}

static void t_migrate(void)
{
    setup();
    int nver = 0;
    rlab_db_core_migrations(&nver);
    char db[320];
    snprintf(db, sizeof db, "%s/old.db", dir);
    const char *argv[] = {"reclab", "-q", "--no-demo", "--db", db, "-c", "help", NULL};
    double full = 0;
    int seen_v[3] = {0, 0, 0}; /* found at version 1, between, at the latest */
    CHECK(make_v1(db));
    CHECK_EQ_INT(run_wait(argv, &full), 0);
    CHECK_EQ_INT(raw_int(db, "PRAGMA user_version"), nver);
    for (int i = 0; i < points; i++) {
        if (!make_v1(db))
            break;
        char side[340];
        snprintf(side, sizeof side, "%s-runs", db);
        unlink(side);
        double t = pick(0.0, full * 1.1);
        int landed = run_kill(argv, t);
        n_checked++;
        /* between the kill and the next open: a whole version, every row, integrity */
        sqlite3_int64 v = raw_int(db, "PRAGMA user_version");
        seen_v[v <= 1 ? 0 : v >= nver ? 2 : 1]++;
        CHECK_MSG(v >= 1 && v <= nver, "migrate kill %d at %.3f s: user_version %lld", i + 1, t,
                  (long long)v);
        CHECK_MSG(integrity_ok_raw(db), "migrate kill %d at %.3f s: integrity", i + 1, t);
        CHECK_EQ_INT(raw_int(db, "SELECT count(*) FROM metrics"), 60000);
        CHECK_EQ_INT(raw_int(db, "SELECT count(*) FROM runs"), 2);
        /* the next open completes the upgrade and recovers the dead run */
        rlab_err err = {0};
        rlab_db *d = rlab_db_open(db, 0, &err);
        CHECK_MSG(d != NULL, "migrate kill %d: reopen: %s", i + 1, err.msg);
        if (d) {
            CHECK_EQ_INT(rlab_db_schema_version(d, &err), nver);
            rlab_db_close(d);
        }
        CHECK_EQ_INT(raw_int(db, "SELECT count(*) FROM metrics WHERE run_id = 1"), 60000);
        CHECK_EQ_INT(raw_int(db, "SELECT count(*) FROM runs WHERE status = 'running'"), 0);
        int interrupted = raw_int(db, "SELECT count(*) FROM runs WHERE id = 2 AND status = "
                                      "'interrupted'") == 1;
        CHECK(interrupted);
        n_interrupted += interrupted && landed;
    }
    printf("# crash migrate: after the kill the store was at version 1 %d times, between %d "
           "times, at the latest (%d) %d times\n",
           seen_v[0], seen_v[1], nver, seen_v[2]);
    report("migrate");
}

/* ---- checkpoint writes ------------------------------------------------------------------- */

static int64_t max_artifact(const char *db)
{
    return (int64_t)raw_int(db, "SELECT ifnull(max(id), 0) FROM artifacts");
}

static void t_ckpt(void)
{
    setup();
    char db[320], file[320], line[400];
    snprintf(db, sizeof db, "%s/s.db", dir);
    snprintf(file, sizeof file, "%s/ck/m.safetensors", dir);
    snprintf(line, sizeof line, "save model=bprmf file=%s", file);
    char ckdir[320];
    snprintf(ckdir, sizeof ckdir, "%s/ck", dir);
    const char *argv[] = {
        "reclab", "-q", "--db",
        db,       "-c", "train bprmf data=demo epochs=1 dim=1024 eval_every=0 eval_test=false",
        "-c",     line, NULL};
    /* the save starts when the training's result is printed ("epochs_run = 1"): time it */
    double save = 0;
    mkdir(ckdir, 0755);
    CHECK_EQ_INT(run_time_after(argv, "epochs_run", &save), 0);
    if (save < 0.005)
        save = 0.005;
    snap prev = {0};
    rlab_err err = {0};
    rlab_db *d = rlab_db_open(db, 0, &err);
    CHECK_MSG(d && take_snap(d, &prev), "setup: %s", err.msg);
    rlab_db_close(d);
    int leftovers = 0, complete = 0;
    for (int i = 0; i < points; i++) {
        remove_tree(ckdir);
        mkdir(ckdir, 0755);
        int64_t art_before = max_artifact(db);
        double t = pick(0.0, save * 1.1);
        int landed = run_kill_after(argv, "epochs_run", t);
        char what[96];
        snprintf(what, sizeof what, "ckpt kill %d at %.4f s into the save", i + 1, t);
        check_store(db, &prev, landed, 0, what);
        if (access(file, F_OK) == 0) {
            rlab_ckpt *ck = rlab_ckpt_read(file, &err);
            CHECK_MSG(ck != NULL, "%s: the checkpoint exists but does not read: %s", what, err.msg);
            complete += ck != NULL;
            rlab_ckpt_free(ck);
        }
        /* a committed artifact row of this run naming the file implies the file */
        d = rlab_db_open(db, 0, &err);
        if (d) {
            rlab_db_value pv[2] = {{.type = RLAB_DB_TEXT, .s = file, .n = strlen(file)},
                                   {.type = RLAB_DB_INT, .i = art_before}};
            rlab_db_result *r = rlab_db_query_table(
                d, "SELECT count(*) FROM artifacts WHERE path = ?1 AND id > ?2", pv, 2, 0, &err);
            if (r && r->nrow == 1 && rlab_db_result_cell(r, 0, 0)->i > 0)
                CHECK_MSG(access(file, F_OK) == 0, "%s: the store names a missing checkpoint",
                          what);
            rlab_db_result_free(r);
            rlab_db_close(d);
        }
        DIR *dd = opendir(ckdir);
        struct dirent *e;
        while (dd && (e = readdir(dd)))
            leftovers += strstr(e->d_name, ".tmp.") != NULL;
        if (dd)
            closedir(dd);
    }
    printf("# crash ckpt: the save takes %.3f s; %d complete checkpoints found after a kill, %d "
           "temporary files left (*.tmp.PID: not counted as damage)\n",
           save, complete, leftovers);
    snap_free(&prev);
    report("ckpt");
}

static const rlab_test tests[] = {
    {"crash.train.1", t_train}, {"crash.sim.1", t_sim}, {"crash.migrate.1", t_migrate},
    {"crash.ckpt.1", t_ckpt},   {NULL, NULL},
};

int main(int argc, char **argv) { return rlab_test_main(argc, argv, tests); }
