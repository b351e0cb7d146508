/*
 * Test organization (core/store):
 *   store.sha256.*   FIPS 180-4 vectors ("abc", the 448-bit message, empty, a million 'a'),
 *                    streaming in odd chunks, files
 *   store.open.*     connection settings in effect; refusal of newer, foreign and non-db files;
 *                    a locked store named in the error
 *   store.migrate.*  upgrade from every earlier core schema version with data surviving
 *   store.run.*      run lifecycle, status mapping, bad JSON config
 *   store.metric.*   batched metrics: invisible to another connection until flushed, auto
 *                    flush by row count, bad run id caught at the write
 *   store.event.*    events and dialogues round-trip
 *   store.crash.*    a child killed with SIGKILL mid-run: integrity ok, flushed rows kept,
 *                    run marked interrupted; a live run (other process, other connection of
 *                    this process) is never marked
 *   store.query.*    read-only guard on core tables, allow-writes for the user's tables,
 *                    typed cells, parameters, result tables; no triggers from queries, and
 *                    no trigger (however made) may change core tables; pragma reads allowed,
 *                    pragma writes refused; limits (rows, time, cancel) stop runaway queries
 *   store.plugin.*   plugin migrations: fresh, incremental, newer refused, prefix rules
 *   store.stmt.*     named, checked parameters
 *   store.artifact.* artifacts (file as BLOB, path only, memory), export with checksum,
 *                    datasets (kind, recipe, delete), settings, models, history
 *   store.alloc.*    allocation failures injected at every point of open / run / metrics
 *   store.bench.*    100k events insert throughput (printed, not asserted)
 */
#include "store/store.h"
#include "store/sha256.h"
#include "harness.h"

#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* A fresh database path in the test tmpdir. */
static const char *db_path(const char *name)
{
    static char buf[8][512];
    static int k;
    char *p = buf[k++ & 7];
    snprintf(p, 512, "%s/%s", rlab_test_tmpdir(), name);
    return p;
}

/* One integer from trusted SQL through the statement helpers. */
static int64_t one_int(rlab_db *db, const char *sql)
{
    rlab_err err = {0};
    rlab_db_stmt *s = rlab_db_prepare(db, sql, &err);
    CHECK_MSG(s != NULL, "prepare %s: %s", sql, err.msg);
    if (!s)
        return -999;
    int64_t v = -999;
    int rc = rlab_db_step(s, &err);
    if (rc == RLAB_DB_ROW)
        v = rlab_db_column_int(s, 0);
    else
        CHECK_MSG(0, "no row from %s: %s", sql, err.msg);
    rlab_db_finalize(s);
    return v;
}

static char *one_text(rlab_db *db, const char *sql, char *out, size_t n)
{
    rlab_err err = {0};
    out[0] = '\0';
    rlab_db_stmt *s = rlab_db_prepare(db, sql, &err);
    if (s && rlab_db_step(s, &err) == RLAB_DB_ROW && rlab_db_column_text(s, 0))
        snprintf(out, n, "%s", rlab_db_column_text(s, 0));
    rlab_db_finalize(s);
    return out;
}

static rlab_db *open_ok(const char *path)
{
    rlab_err err = {0};
    rlab_db *db = rlab_db_open(path, 0, &err);
    CHECK_MSG(db != NULL, "open %s: %s", path, err.msg);
    return db;
}

static int64_t begin_run(rlab_db *db, const char *plugin)
{
    rlab_err err = {0};
    rlab_db_run_info ri = {.plugin = plugin,
                           .model_kind = "sasrec",
                           .dataset = "demo",
                           .config_json = "{\"epochs\": 3}",
                           .seed = 7};
    int64_t id = 0;
    int rc = rlab_db_run_begin(db, &ri, &id, &err);
    CHECK_MSG(rc == RLAB_OK, "run_begin: %s", err.msg);
    return id;
}

/* ---- sha256 ----------------------------------------------------------------------------- */

static void t_sha_vectors(void)
{
    char hex[65];
    rlab_sha256_buf("abc", 3, hex);
    CHECK(strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0);
    const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    CHECK_EQ_INT(strlen(m448) * 8, 448);
    rlab_sha256_buf(m448, strlen(m448), hex);
    CHECK(strcmp(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1") == 0);
    rlab_sha256_buf("", 0, hex);
    CHECK(strcmp(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") == 0);
    /* a million 'a', fed in chunks of 1000: exercises partial blocks */
    char a[1000];
    memset(a, 'a', sizeof a);
    rlab_sha256 h;
    unsigned char d[32];
    rlab_sha256_init(&h);
    for (int i = 0; i < 1000; i++)
        rlab_sha256_update(&h, a, sizeof a);
    rlab_sha256_final(&h, d);
    rlab_sha256_hex(d, hex);
    CHECK(strcmp(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0") == 0);
}

static void t_sha_stream(void)
{
    /* 1..200 byte chunks over a 10000-byte message equal the one-shot digest, and padding
     * boundaries (55, 56, 63, 64 bytes) differ from each other */
    unsigned char msg[10000];
    for (int i = 0; i < 10000; i++)
        msg[i] = (unsigned char)(i * 31 + 7);
    char one[65], two[65];
    rlab_sha256_buf(msg, sizeof msg, one);
    rlab_sha256 h;
    unsigned char d[32];
    rlab_sha256_init(&h);
    size_t off = 0, step = 1;
    while (off < sizeof msg) {
        size_t n = step < sizeof msg - off ? step : sizeof msg - off;
        rlab_sha256_update(&h, msg + off, n);
        off += n;
        step = step % 200 + 1;
    }
    rlab_sha256_final(&h, d);
    rlab_sha256_hex(d, two);
    CHECK(strcmp(one, two) == 0);
    char b55[65], b56[65], b64[65];
    rlab_sha256_buf(msg, 55, b55);
    rlab_sha256_buf(msg, 56, b56);
    rlab_sha256_buf(msg, 64, b64);
    CHECK(strcmp(b55, b56) != 0 && strcmp(b56, b64) != 0);
}

static void t_sha_file(void)
{
    const char *p = db_path("abc.txt");
    FILE *f = fopen(p, "wb");
    CHECK(f != NULL);
    if (!f)
        return;
    fputs("abc", f);
    fclose(f);
    char hex[65];
    uint64_t n = 0;
    rlab_err err = {0};
    CHECK_EQ_INT(rlab_sha256_file(p, hex, &n, &err), RLAB_OK);
    CHECK_EQ_INT(n, 3);
    CHECK(strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0);
    CHECK_EQ_INT(rlab_sha256_file(db_path("missing.txt"), hex, NULL, &err), RLAB_EIO);
    CHECK_STR_CONTAINS(err.msg, "missing.txt");
}

/* ---- open ------------------------------------------------------------------------------- */

static void t_open_pragmas(void)
{
    rlab_db *db = open_ok(db_path("pragmas.db"));
    if (!db)
        return;
    char buf[64];
    CHECK(strcmp(one_text(db, "PRAGMA journal_mode", buf, sizeof buf), "wal") == 0);
    CHECK_EQ_INT(one_int(db, "PRAGMA foreign_keys"), 1);
    CHECK_EQ_INT(one_int(db, "PRAGMA synchronous"), 1); /* NORMAL */
    CHECK_EQ_INT(one_int(db, "PRAGMA busy_timeout"), 5000);
    int n = 0;
    rlab_db_core_migrations(&n);
    CHECK(n >= 2);
    rlab_err err = {0};
    CHECK_EQ_INT(rlab_db_schema_version(db, &err), n);
    CHECK_EQ_INT(one_int(db, "PRAGMA application_id"), 0x524C4142);
    /* foreign keys enforced: a metric row for a missing run is refused */
    CHECK(rlab_db_exec(db, "INSERT INTO metrics(run_id, name, value) VALUES(999, 'x', 1)", &err) ==
          RLAB_EDB);
    CHECK_STR_CONTAINS(err.msg, "FOREIGN KEY");
    rlab_db_close(db);
    rlab_db_close(NULL);
}

static void t_open_refuse(void)
{
    int n = 0;
    rlab_db_core_migrations(&n);
    rlab_err err = {0};
    /* newer user_version than the code knows */
    const char *p = db_path("newer.db");
    rlab_db *db = open_ok(p);
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d", n + 3);
    CHECK_EQ_INT(rlab_db_exec(db, sql, &err), RLAB_OK);
    rlab_db_close(db);
    CHECK(rlab_db_open(p, 0, &err) == NULL);
    CHECK_EQ_INT(err.code, RLAB_EVERSION);
    snprintf(sql, sizeof sql, "schema version %d", n + 3);
    CHECK_STR_CONTAINS(err.msg, sql);
    CHECK_STR_CONTAINS(err.msg, "upgrade reclab");

    /* an SQLite file of some other program: tables, no reclab version */
    sqlite3 *h = NULL;
    p = db_path("foreign.db");
    CHECK(sqlite3_open(p, &h) == SQLITE_OK);
    CHECK(sqlite3_exec(h, "CREATE TABLE t(x)", NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(h);
    CHECK(rlab_db_open(p, 0, &err) == NULL);
    CHECK_EQ_INT(err.code, RLAB_EFORMAT);
    CHECK_STR_CONTAINS(err.msg, "not a reclab session store");

    /* another application's id */
    p = db_path("otherapp.db");
    CHECK(sqlite3_open(p, &h) == SQLITE_OK);
    CHECK(sqlite3_exec(h, "PRAGMA application_id = 42", NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(h);
    CHECK(rlab_db_open(p, 0, &err) == NULL);
    CHECK_EQ_INT(err.code, RLAB_EFORMAT);

    /* not a database at all */
    p = db_path("text.db");
    FILE *f = fopen(p, "wb");
    for (int i = 0; f && i < 200; i++)
        fputs("this is not an sqlite file\n", f);
    if (f)
        fclose(f);
    CHECK(rlab_db_open(p, 0, &err) == NULL);
    CHECK(err.code == RLAB_EFORMAT || err.code == RLAB_EDB);
    CHECK_STR_CONTAINS(err.msg, "not a database");
}

/* ---- migrations from every earlier version ----------------------------------------------- */

static void t_migrate_every(void)
{
    int n = 0;
    const rlab_migration *m = rlab_db_core_migrations(&n);
    for (int k = 0; k < n; k++) {
        char name[32];
        snprintf(name, sizeof name, "mig%d.db", k);
        const char *p = db_path(name);
        sqlite3 *h = NULL;
        CHECK(sqlite3_open(p, &h) == SQLITE_OK);
        for (int j = 0; j < k; j++) {
            char *msg = NULL;
            int rc = sqlite3_exec(h, m[j].sql, NULL, NULL, &msg);
            CHECK_MSG(rc == SQLITE_OK, "k=%d step %d: %s", k, j + 1, msg ? msg : "");
            sqlite3_free(msg);
        }
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA user_version = %d", k);
        CHECK(sqlite3_exec(h, sql, NULL, NULL, NULL) == SQLITE_OK);
        if (k >= 1) { /* rows using only v1 columns: valid at every version >= 1 */
            const char *fill =
                "INSERT INTO datasets(name, source, n_users, created) VALUES('demo', 'b', 10, 1);"
                "INSERT INTO runs(id, plugin, status, started, seed, config)"
                "  VALUES(1, 'seqrec', 'done', 1.5, 42, '{\"a\":1}');"
                "INSERT INTO runs(id, plugin, status, started) VALUES(2, 'seqrec', 'running', 2);"
                "INSERT INTO metrics(run_id, step, split, name, value)"
                "  VALUES(1, 3, 'valid', 'ndcg@10', 0.25);"
                "INSERT INTO events(run_id, seq, kind, payload) VALUES(1, 0, 'watch', '{}');"
                "INSERT INTO dialogues(run_id, conversation, turn, role, text)"
                "  VALUES(1, 5, 0, 'user', 'hi');"
                "INSERT INTO artifacts(run_id, name, data, bytes, created)"
                "  VALUES(1, 'ckpt', x'0102', 2, 1);"
                "INSERT INTO models(name, kind, run_id, artifact_id, created)"
                "  VALUES('m1', 'sasrec', 1, 1, 1);"
                "INSERT INTO history(time, line) VALUES(1, 'help');"
                "INSERT INTO plugin_schema VALUES('seqrec', 1);";
            char *msg = NULL;
            CHECK_MSG(sqlite3_exec(h, fill, NULL, NULL, &msg) == SQLITE_OK, "fill v%d: %s", k,
                      msg ? msg : "");
            sqlite3_free(msg);
        }
        sqlite3_close(h);

        rlab_err err = {0};
        rlab_db *db = rlab_db_open(p, RLAB_DB_NO_UPGRADE, &err);
        if (k >= 1) { /* NO_UPGRADE refuses an older file, naming both versions */
            CHECK(db == NULL);
            CHECK_EQ_INT(err.code, RLAB_EVERSION);
            rlab_db_close(db);
        }
        if (k == 0)
            rlab_db_close(db);
        db = rlab_db_open(p, 0, &err);
        CHECK_MSG(db != NULL, "open from v%d: %s", k, err.msg);
        if (!db)
            continue;
        CHECK_EQ_INT(rlab_db_schema_version(db, &err), n);
        /* v2 features present whatever the starting point */
        CHECK_EQ_INT(one_int(db, "SELECT count(*) FROM pragma_index_info('events_run')"), 2);
        CHECK_EQ_INT(one_int(db, "SELECT count(*) FROM pragma_table_info('runs')"
                                 " WHERE name = 'parent_id'"),
                     1);
        /* v4: experiments, their planned runs, per-user values */
        CHECK_EQ_INT(one_int(db, "SELECT count(*) FROM sqlite_master WHERE name IN ('experiments',"
                                 " 'experiment_runs', 'run_users')"),
                     3);
        if (k >= 1) { /* rows against a migrated run; deleting the experiment cascades */
            rlab_err e4 = {0};
            CHECK_MSG(rlab_db_exec(db,
                                   "INSERT INTO experiments(name, spec, created) VALUES('x',"
                                   " '{}', 1); INSERT INTO experiment_runs(exp_id, idx, config,"
                                   " label, kind, data, seed, command, run_id) VALUES(1, 1, 'c',"
                                   " 'l', 'k', 'd', 1, 'train k', 1); INSERT INTO run_users"
                                   " VALUES(1, 'test', 'ndcg@10', 'full', 0, 0.5)",
                                   &e4) == RLAB_OK,
                      "v4 rows from v%d: %s", k, e4.msg);
            CHECK_EQ_INT(one_int(db, "SELECT count(*) FROM experiment_runs WHERE status ="
                                     " 'pending'"),
                         1);
            CHECK_MSG(rlab_db_exec(db, "DELETE FROM experiments; DELETE FROM run_users", &e4) ==
                          RLAB_OK,
                      "v4 cleanup: %s", e4.msg);
            CHECK_EQ_INT(one_int(db, "SELECT count(*) FROM experiment_runs"), 0);
        }
        if (k >= 1) {
            CHECK_EQ_INT(one_int(db, "SELECT count(*) FROM runs"), 2);
            CHECK_EQ_INT(one_int(db, "SELECT seed FROM runs WHERE id = 1"), 42);
            CHECK_EQ_INT(one_int(db, "SELECT parent_id IS NULL FROM runs WHERE id = 1"), 1);
            CHECK_EQ_INT(one_int(db, "SELECT value * 100 FROM metrics WHERE run_id = 1"), 25);
            CHECK_EQ_INT(one_int(db, "SELECT n_users FROM datasets WHERE name = 'demo'"), 10);
            CHECK_EQ_INT(one_int(db, "SELECT count(*) FROM events"), 1);
            CHECK_EQ_INT(one_int(db, "SELECT conversation FROM dialogues"), 5);
            CHECK_EQ_INT(one_int(db, "SELECT length(data) FROM artifacts"), 2);
            CHECK_EQ_INT(one_int(db, "SELECT artifact_id FROM models WHERE name = 'm1'"), 1);
            CHECK_EQ_INT(one_int(db, "SELECT count(*) FROM history"), 1);
            CHECK_EQ_INT(one_int(db, "SELECT version FROM plugin_schema"), 1);
            /* the orphaned `running` run of the old file has no live owner */
            char st[32];
            CHECK(strcmp(one_text(db, "SELECT status FROM runs WHERE id = 2", st, sizeof st),
                         "interrupted") == 0);
            CHECK_EQ_INT(rlab_db_recovered(db), 1);
            /* new runs continue after the old ids (AUTOINCREMENT survives) */
            CHECK_EQ_INT(begin_run(db, "core"), 3);
        }
        rlab_db_close(db);
    }
}

/* ---- runs ------------------------------------------------------------------------------- */

static void t_run_lifecycle(void)
{
    rlab_db *db = open_ok(db_path("runs.db"));
    if (!db)
        return;
    rlab_err err = {0};
    rlab_db_run_info ri = {.plugin = "seqrec",
                           .model_kind = "mqsa",
                           .name = "try1",
                           .dataset = "ml-1m",
                           .config_json = "{\"epochs\":20,\"lr\":0.001}",
                           .seed = UINT64_C(0xFFFFFFFFFFFFFFFF),
                           .plugin_version = "0.3.1"};
    int64_t id = 0;
    CHECK_EQ_INT(rlab_db_run_begin(db, &ri, &id, &err), RLAB_OK);
    CHECK(id > 0);
    rlab_run_status st = RLAB_RUN_DONE;
    CHECK_EQ_INT(rlab_db_run_status(db, id, &st, &err), RLAB_OK);
    CHECK_EQ_INT(st, RLAB_RUN_RUNNING);
    CHECK_EQ_INT(one_int(db, "SELECT pid FROM runs"), getpid());
    CHECK_EQ_INT(one_int(db, "SELECT json_extract(config, '$.epochs') FROM runs"), 20);
    CHECK_EQ_INT(one_int(db, "SELECT seed FROM runs"), -1); /* the same 64 bits */
    char buf[256], host[256] = "";
    gethostname(host, sizeof host - 1);
    CHECK(strcmp(one_text(db, "SELECT host FROM runs", buf, sizeof buf), host) == 0);
    CHECK(strcmp(one_text(db, "SELECT reclab_version FROM runs", buf, sizeof buf),
                 rlab_version()) == 0);
    CHECK(strcmp(one_text(db, "SELECT plugin_version FROM runs", buf, sizeof buf), "0.3.1") == 0);
    CHECK_EQ_INT(one_int(db, "SELECT ended IS NULL FROM runs"), 1);

    CHECK_EQ_INT(rlab_db_run_end(db, id, RLAB_RUN_RUNNING, NULL, &err), RLAB_EINVAL);
    CHECK_EQ_INT(rlab_db_run_end(db, id, RLAB_RUN_FAILED, "loss is NaN", &err), RLAB_OK);
    CHECK_EQ_INT(rlab_db_run_status(db, id, &st, &err), RLAB_OK);
    CHECK_EQ_INT(st, RLAB_RUN_FAILED);
    CHECK(strcmp(one_text(db, "SELECT error FROM runs", buf, sizeof buf), "loss is NaN") == 0);
    CHECK_EQ_INT(one_int(db, "SELECT ended >= started FROM runs"), 1);
    CHECK_EQ_INT(rlab_db_run_end(db, 9999, RLAB_RUN_DONE, NULL, &err), RLAB_ENOTFOUND);

    /* describe: fills only NULL columns; NULL arguments change nothing; unknown run */
    rlab_db_run_info bare = {.plugin = "seqrec", .config_json = "{\"data\":\"x.txt\"}"};
    int64_t id3 = 0;
    CHECK_EQ_INT(rlab_db_run_begin(db, &bare, &id3, &err), RLAB_OK);
    char q[128];
    snprintf(q, sizeof q,
             "SELECT COALESCE(model_kind, '-') || '/' || COALESCE(dataset, '-') "
             "FROM runs WHERE id = %lld",
             (long long)id3);
    CHECK(strcmp(one_text(db, q, buf, sizeof buf), "-/-") == 0);
    CHECK_EQ_INT(rlab_db_run_describe(db, id3, NULL, "x", &err), RLAB_OK);
    CHECK(strcmp(one_text(db, q, buf, sizeof buf), "-/x") == 0);
    CHECK_EQ_INT(rlab_db_run_describe(db, id3, "sasrec", "y", &err), RLAB_OK);
    CHECK(strcmp(one_text(db, q, buf, sizeof buf), "sasrec/x") == 0);
    CHECK_EQ_INT(rlab_db_run_describe(db, id, NULL, "other", &err), RLAB_OK); /* had ml-1m */
    snprintf(q, sizeof q, "SELECT model_kind || '/' || dataset FROM runs WHERE id = %lld",
             (long long)id);
    CHECK(strcmp(one_text(db, q, buf, sizeof buf), "mqsa/ml-1m") == 0);
    CHECK_EQ_INT(rlab_db_run_describe(db, 9999, "sasrec", NULL, &err), RLAB_ENOTFOUND);
    CHECK_EQ_INT(rlab_db_run_end(db, id3, RLAB_RUN_DONE, NULL, &err), RLAB_OK);

    /* derived run; bad JSON; missing plugin; missing parent */
    ri.parent_id = id;
    int64_t id2 = 0;
    CHECK_EQ_INT(rlab_db_run_begin(db, &ri, &id2, &err), RLAB_OK);
    CHECK_EQ_INT(one_int(db, "SELECT parent_id FROM runs ORDER BY id DESC LIMIT 1"), id);
    CHECK_EQ_INT(rlab_db_run_end(db, id2, rlab_run_status_for(RLAB_OK), NULL, &err), RLAB_OK);
    ri.parent_id = 0;
    ri.config_json = "{epochs: 20";
    CHECK_EQ_INT(rlab_db_run_begin(db, &ri, &id2, &err), RLAB_EINVAL);
    CHECK_STR_CONTAINS(err.msg, "not valid JSON");
    ri.config_json = NULL;
    ri.parent_id = 12345;
    CHECK_EQ_INT(rlab_db_run_begin(db, &ri, &id2, &err), RLAB_ENOTFOUND);
    ri.plugin = NULL;
    CHECK_EQ_INT(rlab_db_run_begin(db, &ri, &id2, &err), RLAB_EINVAL);
    CHECK_EQ_INT(one_int(db, "SELECT count(*) FROM runs"), 3); /* id, id3, id2 */

    CHECK_EQ_INT(rlab_run_status_for(RLAB_OK), RLAB_RUN_DONE);
    CHECK_EQ_INT(rlab_run_status_for(RLAB_ECANCELED), RLAB_RUN_INTERRUPTED);
    CHECK_EQ_INT(rlab_run_status_for(RLAB_EINVAL), RLAB_RUN_FAILED);
    CHECK(strcmp(rlab_run_status_name(RLAB_RUN_INTERRUPTED), "interrupted") == 0);
    CHECK(rlab_run_status_name((rlab_run_status)9) == NULL);
    rlab_db_close(db);
}

/* ---- metrics and events ------------------------------------------------------------------ */

static void t_metric_batch(void)
{
    const char *p = db_path("metrics.db");
    rlab_db *db = open_ok(p);
    rlab_db *other = open_ok(p);
    if (!db || !other)
        return;
    rlab_err err = {0};
    int64_t run = begin_run(db, "seqrec");
    rlab_db_set_flush(db, 1000, 1e9);
    double sum = 0;
    for (int i = 0; i < 10; i++) {
        CHECK_EQ_INT(rlab_db_metric(db, run, i, "valid", "ndcg@10", "full", 0.1 * i, &err),
                     RLAB_OK);
        sum += 0.1 * i;
    }
    CHECK_EQ_INT(rlab_db_buffered(db), 10);
    /* buffered rows are not on disk yet: another connection sees none */
    CHECK_EQ_INT(one_int(other, "SELECT count(*) FROM metrics"), 0);
    CHECK_EQ_INT(rlab_db_flush(db, &err), RLAB_OK);
    CHECK_EQ_INT(rlab_db_buffered(db), 0);
    CHECK_EQ_INT(one_int(other, "SELECT count(*) FROM metrics"), 10);
    CHECK_EQ_INT(one_int(other, "SELECT round(sum(value) * 1000) FROM metrics"), 4500);
    CHECK_EQ_INT(one_int(other, "SELECT count(*) FROM metrics WHERE split = 'valid' AND"
                                " protocol = 'full' AND name = 'ndcg@10'"),
                 10);
    CHECK_NEAR(sum, 4.5, 1e-9);

    /* row-count trigger: the 5th row flushes the batch */
    rlab_db_set_flush(db, 5, 1e9);
    for (int i = 0; i < 4; i++)
        rlab_db_metric(db, run, 100 + i, "train", "loss", NULL, 1.0, &err);
    CHECK_EQ_INT(rlab_db_buffered(db), 4);
    CHECK_EQ_INT(rlab_db_metric(db, run, 104, "train", "loss", NULL, 1.0, &err), RLAB_OK);
    CHECK_EQ_INT(rlab_db_buffered(db), 0);
    CHECK_EQ_INT(one_int(other, "SELECT count(*) FROM metrics WHERE protocol IS NULL"), 5);

    /* time trigger: with ms = 0 every write flushes */
    rlab_db_set_flush(db, 1000, 0);
    rlab_db_metric(db, run, 200, "test", "hr@10", "full", 0.5, &err);
    CHECK_EQ_INT(rlab_db_buffered(db), 0);

    /* a bad run id fails at the write, not at flush time */
    rlab_db_set_flush(db, 1000, 1e9);
    CHECK_EQ_INT(rlab_db_metric(db, 777, 0, "valid", "x", NULL, 1, &err), RLAB_ENOTFOUND);
    CHECK_STR_CONTAINS(err.msg, "no run 777");
    CHECK_EQ_INT(rlab_db_buffered(db), 0);

    /* run end flushes */
    rlab_db_metric(db, run, 300, "test", "ndcg@10", "full", 0.25, &err);
    CHECK_EQ_INT(rlab_db_run_end(db, run, RLAB_RUN_DONE, NULL, &err), RLAB_OK);
    CHECK_EQ_INT(one_int(other, "SELECT count(*) FROM metrics WHERE step = 300"), 1);
    rlab_db_close(other);
    rlab_db_close(db);
}

static void t_event_dialogue(void)
{
    rlab_db *db = open_ok(db_path("events.db"));
    if (!db)
        return;
    rlab_err err = {0};
    int64_t run = begin_run(db, "simulator");
    rlab_db_event_rec ev = {.run_id = run,
                            .seq = 0,
                            .round = 1,
                            .vtime = 1.5,
                            .agent = -1,
                            .kind = "broadcast",
                            .payload_json = "{\"msg\":\"hi\"}"};
    CHECK_EQ_INT(rlab_db_event(db, &ev, &err), RLAB_OK);
    ev.seq = 1;
    ev.agent = 17;
    ev.kind = "watch";
    ev.payload_json = NULL;
    CHECK_EQ_INT(rlab_db_event(db, &ev, &err), RLAB_OK);
    ev.kind = NULL;
    CHECK_EQ_INT(rlab_db_event(db, &ev, &err), RLAB_EINVAL);
    CHECK_EQ_INT(rlab_db_flush(db, &err), RLAB_OK);
    CHECK_EQ_INT(one_int(db, "SELECT count(*) FROM events WHERE agent IS NULL AND seq = 0 AND"
                             " json_extract(payload, '$.msg') = 'hi'"),
                 1);
    CHECK_EQ_INT(one_int(db, "SELECT agent FROM events WHERE seq = 1 AND payload IS NULL"), 17);
    CHECK_EQ_INT(rlab_db_dialogue(db, run, 3, 0, "user", "I like sci-fi", NULL, &err), RLAB_OK);
    CHECK_EQ_INT(rlab_db_dialogue(db, run, 3, 1, "system", "Try Dune", "{\"items\":[5]}", &err),
                 RLAB_OK);
    CHECK_EQ_INT(rlab_db_dialogue(db, 4242, 3, 2, "user", "x", NULL, &err), RLAB_EDB);
    CHECK_EQ_INT(one_int(db, "SELECT json_extract(extra, '$.items[0]') FROM dialogues"
                             " WHERE turn = 1"),
                 5);
    rlab_db_run_end(db, run, RLAB_RUN_DONE, NULL, &err);
    rlab_db_close(db);
}

/* ---- crash recovery --------------------------------------------------------------------- */

static void t_crash_kill9(void)
{
    const char *p = db_path("crash.db");
    rlab_db *db0 = open_ok(p); /* create the schema before forking */
    rlab_db_close(db0);
    int pipefd[2];
    CHECK(pipe(pipefd) == 0);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        /* child: never returns into the harness */
        close(pipefd[0]);
        rlab_err e = {0};
        rlab_db *db = rlab_db_open(p, 0, &e);
        if (!db)
            _exit(2);
        rlab_db_set_flush(db, 1000000, 1e12);
        rlab_db_run_info ri = {.plugin = "seqrec", .seed = 1};
        int64_t run = 0;
        if (rlab_db_run_begin(db, &ri, &run, &e))
            _exit(3);
        for (int i = 0; i < 50; i++)
            rlab_db_metric(db, run, i, "train", "loss", NULL, 1.0 / (i + 1), &e);
        if (rlab_db_flush(db, &e))
            _exit(4);
        for (int i = 50; i < 80; i++) /* buffered, never flushed */
            rlab_db_metric(db, run, i, "train", "loss", NULL, 0.0, &e);
        if (write(pipefd[1], "R", 1) != 1)
            _exit(5);
        for (;;)
            pause();
    }
    CHECK(pid > 0);
    close(pipefd[1]);
    char c = 0;
    CHECK_EQ_INT(read(pipefd[0], &c, 1), 1);
    CHECK_EQ_INT(c, 'R');
    close(pipefd[0]);
    CHECK_EQ_INT(kill(pid, SIGKILL), 0);
    int status = 0;
    CHECK_EQ_INT(waitpid(pid, &status, 0), pid);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

    rlab_db *db = open_ok(p);
    if (!db)
        return;
    char buf[128];
    CHECK(strcmp(one_text(db, "PRAGMA integrity_check", buf, sizeof buf), "ok") == 0);
    CHECK_EQ_INT(rlab_db_recovered(db), 1);
    CHECK_EQ_INT(one_int(db, "SELECT count(*) FROM metrics"), 50);
    CHECK_EQ_INT(one_int(db, "SELECT max(step) FROM metrics"), 49);
    CHECK(strcmp(one_text(db, "SELECT status FROM runs", buf, sizeof buf), "interrupted") == 0);
    CHECK_STR_CONTAINS(one_text(db, "SELECT error FROM runs", buf, sizeof buf), "died");
    CHECK_EQ_INT(one_int(db, "SELECT ended IS NOT NULL FROM runs"), 1);
    rlab_db_close(db);
    /* a second open finds nothing more to recover */
    db = open_ok(p);
    CHECK_EQ_INT(rlab_db_recovered(db), 0);
    rlab_db_close(db);
}

static void t_crash_alive(void)
{
    const char *p = db_path("alive.db");
    rlab_db *db0 = open_ok(p);
    rlab_db_close(db0);
    int ready[2], go[2];
    CHECK(pipe(ready) == 0 && pipe(go) == 0);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(ready[0]);
        close(go[1]);
        rlab_err e = {0};
        rlab_db *db = rlab_db_open(p, 0, &e);
        if (!db)
            _exit(2);
        rlab_db_run_info ri = {.plugin = "seqrec"};
        int64_t run = 0;
        if (rlab_db_run_begin(db, &ri, &run, &e))
            _exit(3);
        char c = 'R';
        if (write(ready[1], &c, 1) != 1 || read(go[0], &c, 1) != 1)
            _exit(4);
        if (rlab_db_run_end(db, run, RLAB_RUN_DONE, NULL, &e))
            _exit(5);
        rlab_db_close(db);
        _exit(0);
    }
    close(ready[1]);
    close(go[0]);
    char c = 0;
    CHECK_EQ_INT(read(ready[0], &c, 1), 1);
    /* the child is alive and owns its run: opening must not mark it */
    rlab_db *db = open_ok(p);
    if (db) {
        CHECK_EQ_INT(rlab_db_recovered(db), 0);
        char buf[32];
        CHECK(strcmp(one_text(db, "SELECT status FROM runs", buf, sizeof buf), "running") == 0);
        int n = -1;
        rlab_err err = {0};
        CHECK_EQ_INT(rlab_db_recover_runs(db, &n, &err), RLAB_OK);
        CHECK_EQ_INT(n, 0);
    }
    CHECK_EQ_INT(write(go[1], "G", 1), 1);
    int status = 0;
    CHECK_EQ_INT(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(ready[0]);
    close(go[1]);
    if (db) {
        char buf[32];
        CHECK(strcmp(one_text(db, "SELECT status FROM runs", buf, sizeof buf), "done") == 0);
        rlab_db_close(db);
    }
}

static void t_crash_same_process(void)
{
    /* two connections of one process: the second must see the first's run as alive */
    const char *p = db_path("twoconn.db");
    rlab_db *a = open_ok(p);
    if (!a)
        return;
    int64_t run = begin_run(a, "seqrec");
    rlab_db *b = open_ok(p);
    if (b) {
        CHECK_EQ_INT(rlab_db_recovered(b), 0);
        rlab_run_status st = RLAB_RUN_DONE;
        rlab_err err = {0};
        CHECK_EQ_INT(rlab_db_run_status(b, run, &st, &err), RLAB_OK);
        CHECK_EQ_INT(st, RLAB_RUN_RUNNING);
    }
    /* closing the owner with the run still open marks it interrupted */
    rlab_db_close(a);
    if (b) {
        rlab_run_status st = RLAB_RUN_DONE;
        rlab_err err = {0};
        CHECK_EQ_INT(rlab_db_run_status(b, run, &st, &err), RLAB_OK);
        CHECK_EQ_INT(st, RLAB_RUN_INTERRUPTED);
        rlab_db_close(b);
    }
}

/* ---- queries ---------------------------------------------------------------------------- */

typedef struct rows_seen {
    int n;
    int ncol;
    char first_name[32];
    rlab_db_type types[8];
} rows_seen;

static int count_rows(void *ud, int stmt_index, int ncol, const char *const *names,
                      const rlab_db_value *cells)
{
    rows_seen *r = ud;
    (void)stmt_index;
    r->ncol = ncol;
    snprintf(r->first_name, sizeof r->first_name, "%s", names[0]);
    for (int c = 0; c < ncol && c < 8; c++)
        r->types[c] = cells[c].type;
    r->n++;
    return 0;
}

static void t_query_guard(void)
{
    rlab_db *db = open_ok(db_path("query.db"));
    if (!db)
        return;
    rlab_err err = {0};
    int64_t run = begin_run(db, "seqrec");
    rlab_db_metric(db, run, 1, "valid", "ndcg@10", "full", 0.5, &err); /* buffered */

    /* SELECT allowed; sees buffered rows; typed cells */
    rows_seen r = {0};
    CHECK_EQ_INT(rlab_db_query(db,
                               "SELECT runs.id, plugin, value, NULL, x'00ff' FROM runs"
                               " JOIN metrics ON metrics.run_id = runs.id",
                               NULL, 0, 0, count_rows, &r, &err),
                 RLAB_OK);
    CHECK_EQ_INT(r.n, 1);
    CHECK_EQ_INT(r.ncol, 5);
    CHECK_STR_CONTAINS(r.first_name, "id");
    CHECK(r.types[0] == RLAB_DB_INT && r.types[1] == RLAB_DB_TEXT && r.types[2] == RLAB_DB_REAL &&
          r.types[3] == RLAB_DB_NULL && r.types[4] == RLAB_DB_BLOB);

    /* writes to core tables refused, with or without the allow-writes flag */
    CHECK_EQ_INT(rlab_db_query(db, "DELETE FROM runs", NULL, 0, 0, NULL, NULL, &err), RLAB_EINVAL);
    CHECK_STR_CONTAINS(err.msg, "DELETE on core table 'runs' refused");
    CHECK_EQ_INT(
        rlab_db_query(db, "DELETE FROM runs", NULL, 0, RLAB_DB_ALLOW_WRITES, NULL, NULL, &err),
        RLAB_EINVAL);
    CHECK_STR_CONTAINS(err.msg, "read-only");
    const char *bad[] = {"UPDATE runs SET status = 'done'",
                         "INSERT INTO history(time, line) VALUES(1, 'x')",
                         "DROP TABLE metrics",
                         "ALTER TABLE runs ADD COLUMN z",
                         "CREATE INDEX my_idx ON runs(seed)",
                         "CREATE TRIGGER tr AFTER INSERT ON runs BEGIN SELECT 1; END",
                         "DELETE FROM sqlite_sequence",
                         NULL};
    for (int i = 0; bad[i]; i++) {
        int rc = rlab_db_query(db, bad[i], NULL, 0, RLAB_DB_ALLOW_WRITES, NULL, NULL, &err);
        CHECK_MSG(rc == RLAB_EINVAL, "'%s' not refused (rc %d)", bad[i], rc);
        CHECK_STR_CONTAINS(err.msg, "core table");
    }
    /* other dangerous statements */
    const char *bad2[] = {"PRAGMA foreign_keys = OFF", "PRAGMA writable_schema = 1",
                          "ATTACH 'x.db' AS x", "BEGIN", NULL};
    CHECK_EQ_INT(rlab_db_query(db, "VACUUM", NULL, 0, 0, NULL, NULL, &err), RLAB_EINVAL);
    CHECK_EQ_INT(rlab_db_query(db, "ANALYZE", NULL, 0, 0, NULL, NULL, &err), RLAB_EINVAL);
    for (int i = 0; bad2[i]; i++) {
        int rc = rlab_db_query(db, bad2[i], NULL, 0, RLAB_DB_ALLOW_WRITES, NULL, NULL, &err);
        CHECK_MSG(rc == RLAB_EINVAL, "'%s' not refused (rc %d)", bad2[i], rc);
        CHECK_STR_CONTAINS(err.msg, "refused");
    }
    CHECK_EQ_INT(one_int(db, "PRAGMA foreign_keys"), 1);
    CHECK_EQ_INT(one_int(db, "SELECT count(*) FROM runs"), 1);

    /* reading pragmas is fine */
    r.n = 0;
    CHECK_EQ_INT(rlab_db_query(db, "PRAGMA user_version", NULL, 0, 0, count_rows, &r, &err),
                 RLAB_OK);
    CHECK_EQ_INT(r.n, 1);
    r.n = 0;
    CHECK_EQ_INT(rlab_db_query(db, "PRAGMA table_info(runs)", NULL, 0, 0, count_rows, &r, &err),
                 RLAB_OK);
    CHECK(r.n >= 15);

    /* the user's own tables: read-only by default, writable with the flag */
    CHECK_EQ_INT(rlab_db_query(db, "CREATE TABLE notes(run INTEGER, text TEXT)", NULL, 0, 0, NULL,
                               NULL, &err),
                 RLAB_EINVAL);
    CHECK_STR_CONTAINS(err.msg, "queries are read-only unless writes are allowed");
    CHECK_EQ_INT(rlab_db_query(db,
                               "CREATE TABLE notes(run INTEGER, text TEXT);"
                               " INSERT INTO notes VALUES(?1, ?2);"
                               " INSERT INTO notes VALUES(?1, ?2)",
                               (rlab_db_value[]){{.type = RLAB_DB_INT, .i = run},
                                                 {.type = RLAB_DB_TEXT, .s = "good run"}},
                               2, RLAB_DB_ALLOW_WRITES, NULL, NULL, &err),
                 RLAB_OK);
    CHECK_EQ_INT(one_int(db, "SELECT count(*) FROM notes WHERE text = 'good run'"), 2);
    CHECK_EQ_INT(rlab_db_query(db, "DELETE FROM notes", NULL, 0, 0, NULL, NULL, &err), RLAB_EINVAL);
    /* a trigger on the user's table may not write core tables either */
    int rc = rlab_db_query(db,
                           "CREATE TRIGGER sneaky AFTER INSERT ON notes BEGIN"
                           " DELETE FROM runs; END",
                           NULL, 0, RLAB_DB_ALLOW_WRITES, NULL, NULL, &err);
    if (rc == RLAB_OK) /* if creation passed, firing it must be refused */
        rc = rlab_db_query(db, "INSERT INTO notes VALUES(1, 'x')", NULL, 0, RLAB_DB_ALLOW_WRITES,
                           NULL, NULL, &err);
    CHECK_EQ_INT(rc, RLAB_EINVAL);
    CHECK_EQ_INT(one_int(db, "SELECT count(*) FROM runs"), 1);
    CHECK_EQ_INT(rlab_db_query(db,
                               "DROP TRIGGER IF EXISTS sneaky; ALTER TABLE notes RENAME TO"
                               " notes2",
                               NULL, 0, RLAB_DB_ALLOW_WRITES, NULL, NULL, &err),
                 RLAB_OK);
    CHECK_EQ_INT(one_int(db, "SELECT count(*) FROM notes2"), 2);

    /* parameters */
    rlab_db_value pv = {.type = RLAB_DB_TEXT, .s = "seqrec"};
    r.n = 0;
    CHECK_EQ_INT(
        rlab_db_query(db, "SELECT id FROM runs WHERE plugin = ?", &pv, 1, 0, count_rows, &r, &err),
        RLAB_OK);
    CHECK_EQ_INT(r.n, 1);
    CHECK_EQ_INT(
        rlab_db_query(db, "SELECT id FROM runs WHERE plugin = ?", NULL, 0, 0, NULL, NULL, &err),
        RLAB_EINVAL);
    CHECK_STR_CONTAINS(err.msg, "expects 1 parameter");
    CHECK_EQ_INT(rlab_db_query(db, "SELEC oops", NULL, 0, 0, NULL, NULL, &err), RLAB_EDB);
    CHECK_STR_CONTAINS(err.msg, "syntax error");

    /* result tables */
    rlab_db_result *t = rlab_db_query_table(db,
                                            "SELECT name, value FROM metrics;"
                                            " SELECT plugin, seed, 2.5 AS x FROM runs",
                                            NULL, 0, 0, &err);
    CHECK(t != NULL);
    if (t) {
        CHECK_EQ_INT(t->ncol, 3);
        CHECK_EQ_INT(t->nrow, 1);
        CHECK(strcmp(t->names[2], "x") == 0);
        CHECK(strcmp(rlab_db_result_cell(t, 0, 0)->s, "seqrec") == 0);
        CHECK_EQ_INT(rlab_db_result_cell(t, 0, 1)->i, 7);
        CHECK_NEAR(rlab_db_result_cell(t, 0, 2)->r, 2.5, 0);
    }
    rlab_db_result_free(t);
    CHECK(rlab_db_query_table(db, "DELETE FROM metrics", NULL, 0, 0, &err) == NULL);
    CHECK(rlab_db_is_core_table("RUNS") && !rlab_db_is_core_table("notes"));
    rlab_db_close(db);
}

/* ---- plugin migrations -------------------------------------------------------------------- */

static int fn_calls;
static int fill_fn(rlab_db *db, rlab_err *err)
{
    fn_calls++;
    return rlab_db_exec(db, "INSERT INTO seqrec_items(item, title) VALUES(1, 'Dune')", err);
}

static const rlab_migration seqrec_v3[] = {
    {.sql = "CREATE TABLE seqrec_items(item INTEGER PRIMARY KEY, title TEXT)", .note = "items"},
    {.sql = "CREATE INDEX seqrec_items_title ON seqrec_items(title);"
            "ALTER TABLE seqrec_items ADD COLUMN year INTEGER",
     .note = "title index, year"},
    {.fn = fill_fn, .note = "seed row"},
};

static void t_plugin_migrate(void)
{
    rlab_db *db = open_ok(db_path("plugin.db"));
    if (!db)
        return;
    rlab_err err = {0};
    int v = -1;
    CHECK_EQ_INT(rlab_db_plugin_version(db, "seqrec", &v, &err), RLAB_OK);
    CHECK_EQ_INT(v, 0);
    /* fresh: two steps */
    CHECK_EQ_INT(rlab_db_plugin_migrate(db, "seqrec", seqrec_v3, 2, &err), RLAB_OK);
    CHECK_EQ_INT(rlab_db_plugin_version(db, "seqrec", &v, &err), RLAB_OK);
    CHECK_EQ_INT(v, 2);
    CHECK_EQ_INT(one_int(db, "SELECT count(*) FROM pragma_table_info('seqrec_items')"), 3);
    /* same list again: nothing to do */
    CHECK_EQ_INT(rlab_db_plugin_migrate(db, "seqrec", seqrec_v3, 2, &err), RLAB_OK);
    /* incremental: only step 3 runs */
    fn_calls = 0;
    CHECK_EQ_INT(rlab_db_plugin_migrate(db, "seqrec", seqrec_v3, 3, &err), RLAB_OK);
    CHECK_EQ_INT(fn_calls, 1);
    CHECK_EQ_INT(one_int(db, "SELECT count(*) FROM seqrec_items"), 1);
    CHECK_EQ_INT(rlab_db_plugin_migrate(db, "seqrec", seqrec_v3, 3, &err), RLAB_OK);
    CHECK_EQ_INT(fn_calls, 1);
    /* stored version newer than the plugin knows */
    CHECK_EQ_INT(rlab_db_plugin_migrate(db, "seqrec", seqrec_v3, 2, &err), RLAB_EVERSION);
    CHECK(strcmp(err.msg, "session was written by seqrec schema 3; this plugin knows 2") == 0);

    /* composite primary keys and UNIQUE make SQLite's own sqlite_autoindex_* indexes: fine */
    static const rlab_migration autoindex[] = {
        {.sql = "CREATE TABLE keyed_pairs(a INTEGER, b INTEGER, c TEXT UNIQUE,"
                " PRIMARY KEY (a, b))"},
    };
    CHECK_MSG(rlab_db_plugin_migrate(db, "keyed", autoindex, 1, &err) == RLAB_OK, "%s", err.msg);
    CHECK_EQ_INT(one_int(db, "SELECT count(*) FROM sqlite_schema WHERE type = 'index'"
                             " AND tbl_name = 'keyed_pairs'"),
                 2);

    /* bad prefixes and other refusals: nothing of the failed upgrade remains */
    static const rlab_migration bad_table[] = {
        {.sql = "CREATE TABLE attack_ok(x)"},
        {.sql = "CREATE TABLE items(x)"},
    };
    CHECK_EQ_INT(rlab_db_plugin_migrate(db, "attack", bad_table, 2, &err), RLAB_EINVAL);
    CHECK_STR_CONTAINS(err.msg, "attack schema step 2");
    CHECK_STR_CONTAINS(err.msg, "'items'");
    CHECK_STR_CONTAINS(err.msg, "attack_...");
    CHECK_EQ_INT(one_int(db, "SELECT count(*) FROM sqlite_schema WHERE name IN"
                             " ('attack_ok', 'items')"),
                 0);
    CHECK_EQ_INT(rlab_db_plugin_version(db, "attack", &v, &err), RLAB_OK);
    CHECK_EQ_INT(v, 0);
    static const rlab_migration bad_prefix_lookalike[] = {{.sql = "CREATE TABLE attacker(x)"}};
    CHECK_EQ_INT(rlab_db_plugin_migrate(db, "attack", bad_prefix_lookalike, 1, &err), RLAB_EINVAL);
    static const rlab_migration bad_index[] = {{.sql = "CREATE INDEX attack_i ON runs(seed)"}};
    CHECK_EQ_INT(rlab_db_plugin_migrate(db, "attack", bad_index, 1, &err), RLAB_EINVAL);
    CHECK_STR_CONTAINS(err.msg, "core table 'runs'");
    static const rlab_migration bad_write[] = {{.sql = "DELETE FROM history"}};
    CHECK_EQ_INT(rlab_db_plugin_migrate(db, "attack", bad_write, 1, &err), RLAB_EINVAL);
    static const rlab_migration bad_rename[] = {
        {.sql = "CREATE TABLE attack_t(x); ALTER TABLE attack_t RENAME TO t"}};
    CHECK_EQ_INT(rlab_db_plugin_migrate(db, "attack", bad_rename, 1, &err), RLAB_EINVAL);
    CHECK_STR_CONTAINS(err.msg, "'t'");
    static const rlab_migration ok_rename[] = {
        {.sql = "CREATE TABLE attack_t(x INTEGER PRIMARY KEY AUTOINCREMENT)"},
        {.sql = "ALTER TABLE attack_t RENAME TO attack_u"}};
    CHECK_EQ_INT(rlab_db_plugin_migrate(db, "attack", ok_rename, 2, &err), RLAB_OK);
    CHECK_EQ_INT(one_int(db, "SELECT count(*) FROM sqlite_schema WHERE name = 'attack_u'"), 1);
    CHECK_EQ_INT(rlab_db_exec(db,
                              "DELETE FROM plugin_schema WHERE plugin = 'attack';"
                              "DROP TABLE attack_u",
                              &err),
                 RLAB_OK);
    static const rlab_migration bad_txn[] = {{.sql = "COMMIT"}};
    CHECK_EQ_INT(rlab_db_plugin_migrate(db, "attack", bad_txn, 1, &err), RLAB_EINVAL);
    static const rlab_migration bad_sql[] = {{.sql = "CREATE TABLE attack_x(", .note = "oops"}};
    CHECK_EQ_INT(rlab_db_plugin_migrate(db, "attack", bad_sql, 1, &err), RLAB_EDB);
    CHECK_STR_CONTAINS(err.msg, "attack schema step 1 oops");
    /* a plugin named like a core table prefix cannot reach plugin_schema */
    static const rlab_migration sneaky[] = {{.sql = "DELETE FROM plugin_schema"}};
    CHECK_EQ_INT(rlab_db_plugin_migrate(db, "plugin", sneaky, 1, &err), RLAB_EINVAL);
    CHECK_EQ_INT(rlab_db_plugin_migrate(db, "Bad-Name", bad_table, 1, &err), RLAB_EINVAL);
    CHECK_EQ_INT(rlab_db_plugin_version(db, "seqrec", &v, &err), RLAB_OK);
    CHECK_EQ_INT(v, 3);
    CHECK_EQ_INT(rlab_db_plugin_version(db, "attack", &v, &err), RLAB_OK);
    CHECK_EQ_INT(v, 0);
    /* and the good part alone works */
    CHECK_EQ_INT(rlab_db_plugin_migrate(db, "attack", bad_table, 1, &err), RLAB_OK);
    rlab_db_close(db);
}

/* ---- statement helpers ---------------------------------------------------------------------- */

static void t_stmt_named(void)
{
    rlab_db *db = open_ok(db_path("stmt.db"));
    if (!db)
        return;
    rlab_err err = {0};
    rlab_db_stmt *s =
        rlab_db_prepare(db, "INSERT INTO history(time, line) VALUES(:t, :line)", &err);
    CHECK(s != NULL);
    if (!s) {
        rlab_db_close(db);
        return;
    }
    CHECK_EQ_INT(rlab_db_bind_text(s, ":lien", "oops", &err), RLAB_ENOTFOUND);
    CHECK_STR_CONTAINS(err.msg, "no parameter :lien");
    CHECK_EQ_INT(rlab_db_bind_text(s, ":line", "ls", &err), RLAB_OK);
    /* :t never bound: refused rather than silently NULL */
    CHECK_EQ_INT(rlab_db_step(s, &err), RLAB_EINVAL);
    CHECK_STR_CONTAINS(err.msg, "parameter :t not bound");
    CHECK_EQ_INT(rlab_db_bind_double(s, "t", 1.0, &err), RLAB_OK); /* bare name = :t */
    CHECK_EQ_INT(rlab_db_step(s, &err), RLAB_OK);
    CHECK_EQ_INT(rlab_db_bind_text(s, ":line", "pwd", &err), RLAB_OK); /* reuse, :t kept */
    CHECK_EQ_INT(rlab_db_step(s, &err), RLAB_OK);
    rlab_db_clear_bindings(s);
    CHECK_EQ_INT(rlab_db_step(s, &err), RLAB_EINVAL);
    rlab_db_finalize(s);
    CHECK_EQ_INT(one_int(db, "SELECT count(*) FROM history"), 2);

    CHECK(rlab_db_prepare(db, "SELECT 1; SELECT 2", &err) == NULL);
    CHECK_STR_CONTAINS(err.msg, "more than one statement");
    s = rlab_db_prepare(db, "SELECT 1; -- trailing comment", &err);
    CHECK(s != NULL);
    rlab_db_finalize(s);
    s = rlab_db_prepare_persistent(db, "SELECT line, time FROM history WHERE line = $l", &err);
    CHECK(s != NULL);
    if (s) {
        CHECK_EQ_INT(rlab_db_bind_text(s, "$l", "pwd", &err), RLAB_OK);
        CHECK_EQ_INT(rlab_db_step(s, &err), RLAB_DB_ROW);
        CHECK(strcmp(rlab_db_column_text(s, 0), "pwd") == 0);
        CHECK_EQ_INT(rlab_db_column_type(s, 1), RLAB_DB_REAL);
        CHECK(strcmp(rlab_db_column_name(s, 1), "time") == 0);
        CHECK_EQ_INT(rlab_db_step(s, &err), RLAB_OK);
    }
    rlab_db_finalize(s);
    rlab_db_finalize(NULL);
    /* a blob bound without a copy: stored as it was at the step; after a rebind the buffer is
     * the caller's again */
    CHECK_EQ_INT(rlab_db_exec(db, "CREATE TABLE blobs(k INTEGER, v BLOB)", &err), RLAB_OK);
    s = rlab_db_prepare(db, "INSERT INTO blobs VALUES(:k, :v)", &err);
    CHECK(s != NULL);
    if (s) {
        static unsigned char big[1 << 20];
        for (size_t i = 0; i < sizeof big; i++)
            big[i] = (unsigned char)(i * 131u + 7u);
        CHECK_EQ_INT(rlab_db_bind_blob_static(s, ":nope", big, sizeof big, &err), RLAB_ENOTFOUND);
        CHECK_EQ_INT(rlab_db_bind_int(s, ":k", 1, &err), RLAB_OK);
        CHECK_EQ_INT(rlab_db_bind_blob_static(s, ":v", big, sizeof big, &err), RLAB_OK);
        CHECK_EQ_INT(rlab_db_step(s, &err), RLAB_OK);
        CHECK_EQ_INT(rlab_db_bind_null(s, ":v", &err), RLAB_OK);
        memset(big, 0, sizeof big);
        CHECK_EQ_INT(rlab_db_bind_int(s, ":k", 2, &err), RLAB_OK);
        CHECK_EQ_INT(rlab_db_bind_blob_static(s, ":v", big, 0, &err), RLAB_OK);
        CHECK_EQ_INT(rlab_db_step(s, &err), RLAB_OK);
        rlab_db_finalize(s);
        CHECK_EQ_INT(one_int(db, "SELECT length(v) FROM blobs WHERE k = 1"), 1 << 20);
        CHECK_EQ_INT(one_int(db, "SELECT length(v) FROM blobs WHERE k = 2"), 0);
        /* the bytes of row 1 are the ones bound, not the zeros written over them after */
        CHECK_EQ_INT(one_int(db, "SELECT hex(substr(v, 1, 2)) = '078A' AND "
                                 "hex(substr(v, 1048576, 1)) = '84' FROM blobs WHERE k = 1"),
                     1);
    }
    /* nesting transactions: an inner rollback rolls back the whole thing */
    CHECK_EQ_INT(rlab_db_begin(db, &err), RLAB_OK);
    CHECK_EQ_INT(rlab_db_exec(db, "INSERT INTO history(time, line) VALUES(1, 'a')", &err), 0);
    CHECK_EQ_INT(rlab_db_begin(db, &err), RLAB_OK);
    rlab_db_rollback(db);
    CHECK_EQ_INT(rlab_db_commit(db, &err), RLAB_EDB);
    CHECK_EQ_INT(one_int(db, "SELECT count(*) FROM history"), 2);
    rlab_db_close(db);
}

/* ---- artifacts, datasets, models, history ---------------------------------------------------- */

static int collect_history(const char *line, void *ud)
{
    char *acc = ud;
    strcat(acc, line);
    strcat(acc, "|");
    return 0;
}

static void t_artifacts(void)
{
    rlab_db *db = open_ok(db_path("art.db"));
    if (!db)
        return;
    rlab_err err = {0};
    int64_t run = begin_run(db, "seqrec");
    /* a 300 KB file: several 64 KiB chunks plus a tail */
    const char *fp = db_path("ckpt.bin");
    FILE *f = fopen(fp, "wb");
    CHECK(f != NULL);
    if (!f)
        return;
    for (int i = 0; i < 300000; i++)
        fputc((i * 131) & 0xff, f);
    fclose(f);
    char want[65];
    uint64_t n = 0;
    CHECK_EQ_INT(rlab_sha256_file(fp, want, &n, &err), RLAB_OK);
    int64_t a1 = 0, a2 = 0, a3 = 0;
    CHECK_EQ_INT(
        rlab_db_artifact_file(db, run, "ckpt", "checkpoint", fp, RLAB_DB_ART_BLOB, &a1, &err),
        RLAB_OK);
    char buf[80];
    CHECK(strcmp(one_text(db, "SELECT sha256 FROM artifacts WHERE id = 1", buf, sizeof buf),
                 want) == 0);
    CHECK_EQ_INT(one_int(db, "SELECT length(data) FROM artifacts WHERE id = 1"), 300000);
    CHECK_EQ_INT(one_int(db, "SELECT bytes FROM artifacts WHERE id = 1"), 300000);
    /* export: same bytes, verified checksum */
    const char *out = db_path("ckpt.out");
    CHECK_EQ_INT(rlab_db_artifact_export(db, a1, out, &err), RLAB_OK);
    char got[65];
    CHECK_EQ_INT(rlab_sha256_file(out, got, &n, &err), RLAB_OK);
    CHECK(strcmp(got, want) == 0);
    CHECK_EQ_INT(n, 300000);
    /* a corrupted stored checksum is caught at export */
    CHECK_EQ_INT(rlab_db_exec(db, "UPDATE artifacts SET sha256 = 'beef' WHERE id = 1", &err), 0);
    CHECK_EQ_INT(rlab_db_artifact_export(db, a1, out, &err), RLAB_EFORMAT);
    /* path only */
    CHECK_EQ_INT(
        rlab_db_artifact_file(db, run, "ckpt-ref", "checkpoint", fp, RLAB_DB_ART_PATH, &a2, &err),
        RLAB_OK);
    CHECK_EQ_INT(one_int(db, "SELECT data IS NULL AND path IS NOT NULL FROM artifacts"
                             " WHERE name = 'ckpt-ref'"),
                 1);
    CHECK_EQ_INT(rlab_db_artifact_export(db, a2, out, &err), RLAB_ENOTFOUND);
    CHECK_EQ_INT(rlab_db_artifact_file(db, run, "x", "x", db_path("nope.bin"), 1, NULL, &err),
                 RLAB_EIO);
    /* from memory: "abc" */
    CHECK_EQ_INT(rlab_db_artifact_blob(db, 0, "abc", "text", "abc", 3, &a3, &err), RLAB_OK);
    CHECK(strcmp(one_text(db, "SELECT sha256 FROM artifacts WHERE name = 'abc'", buf, sizeof buf),
                 "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0);
    CHECK_EQ_INT(one_int(db, "SELECT run_id IS NULL FROM artifacts WHERE name = 'abc'"), 1);

    /* models: register, then replace by name */
    int64_t m1 = 0, m2 = 0;
    CHECK_EQ_INT(rlab_db_model_register(db, "sasrec-ml1m", "sasrec", "seqrec", run, a1, &m1, &err),
                 RLAB_OK);
    CHECK_EQ_INT(rlab_db_model_register(db, "sasrec-ml1m", "sasrec", "seqrec", run, a3, &m2, &err),
                 RLAB_OK);
    CHECK_EQ_INT(m1, m2);
    CHECK_EQ_INT(one_int(db, "SELECT artifact_id FROM models"), a3);
    CHECK_EQ_INT(rlab_db_model_register(db, "x", "k", "p", 0, 999, NULL, &err), RLAB_EDB);
    /* the replaced blob above was a run's checkpoint: kept */
    CHECK_EQ_INT(one_int(db, "SELECT count(*) FROM artifacts WHERE name = 'ckpt'"), 1);
    /* re-saving a model under the same name keeps only its latest blob ... */
    int64_t b1 = 0, b2 = 0, b3 = 0;
    CHECK_EQ_INT(rlab_db_artifact_blob(db, run, "bpr", "model", "v1", 2, &b1, &err), RLAB_OK);
    CHECK_EQ_INT(rlab_db_model_register(db, "bpr", "bpr", "baselines", run, b1, NULL, &err),
                 RLAB_OK);
    CHECK_EQ_INT(rlab_db_artifact_blob(db, 0, "bpr", "model", "v2", 2, &b2, &err), RLAB_OK);
    CHECK_EQ_INT(rlab_db_model_register(db, "bpr", "bpr", "baselines", 0, b2, NULL, &err), RLAB_OK);
    CHECK_EQ_INT(one_int(db, "SELECT count(*) FROM artifacts WHERE name = 'bpr'"), 1);
    CHECK_EQ_INT(one_int(db, "SELECT artifact_id FROM models WHERE name = 'bpr'"), b2);
    /* ... registering the same artifact again deletes nothing ... */
    CHECK_EQ_INT(rlab_db_model_register(db, "bpr", "bpr", "baselines", 0, b2, NULL, &err), RLAB_OK);
    CHECK_EQ_INT(one_int(db, "SELECT count(*) FROM artifacts WHERE name = 'bpr'"), 1);
    /* ... and a blob another name still uses stays when this name moves on */
    CHECK_EQ_INT(rlab_db_model_register(db, "bpr-copy", "bpr", "baselines", 0, b2, NULL, &err),
                 RLAB_OK);
    CHECK_EQ_INT(rlab_db_artifact_blob(db, 0, "bpr", "model", "v3", 2, &b3, &err), RLAB_OK);
    CHECK_EQ_INT(rlab_db_model_register(db, "bpr", "bpr", "baselines", 0, b3, NULL, &err), RLAB_OK);
    CHECK_EQ_INT(one_int(db, "SELECT count(*) FROM artifacts WHERE name = 'bpr'"), 2);
    /* a failed replacement (unknown artifact) rolls back: the old row and blob stay */
    CHECK_EQ_INT(rlab_db_model_register(db, "bpr", "bpr", "baselines", 0, 999, NULL, &err),
                 RLAB_EDB);
    CHECK_EQ_INT(one_int(db, "SELECT artifact_id FROM models WHERE name = 'bpr'"), b3);

    /* datasets: sha computed from the source file, upsert by name */
    rlab_db_dataset_info di = {.name = "abcdata",
                               .source = db_path("abc.txt"),
                               .format = "text",
                               .n_users = 1,
                               .n_items = 2,
                               .n_inter = 3};
    FILE *g = fopen(di.source, "wb");
    if (g) {
        fputs("abc", g);
        fclose(g);
    }
    int64_t d1 = 0, d2 = 0, d3 = 0;
    CHECK_EQ_INT(rlab_db_dataset_register(db, &di, &d1, &err), RLAB_OK);
    CHECK(strcmp(one_text(db, "SELECT sha256 FROM datasets", buf, sizeof buf),
                 "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0);
    di.n_inter = 30;
    CHECK_EQ_INT(rlab_db_dataset_register(db, &di, &d2, &err), RLAB_OK);
    CHECK_EQ_INT(d1, d2);
    CHECK_EQ_INT(one_int(db, "SELECT n_inter FROM datasets"), 30);
    CHECK_EQ_INT(rlab_db_dataset_id(db, "abcdata", &d3, &err), RLAB_OK);
    CHECK_EQ_INT(d3, d1);
    CHECK_EQ_INT(rlab_db_dataset_id(db, "nope", &d3, &err), RLAB_ENOTFOUND);
    /* kind and recipe (v3): kept, replaced by name, refused when not JSON; delete forgets */
    di.kind = "interactions";
    di.recipe = "{\"load\":\"file\",\"path\":\"/x\"}";
    CHECK_EQ_INT(rlab_db_dataset_register(db, &di, NULL, &err), RLAB_OK);
    CHECK(strcmp(one_text(db, "SELECT kind || ' ' || json_extract(recipe, '$.load') FROM datasets",
                          buf, sizeof buf),
                 "interactions file") == 0);
    di.recipe = "{not json";
    CHECK(rlab_db_dataset_register(db, &di, NULL, &err) != RLAB_OK);
    CHECK_EQ_INT(rlab_db_dataset_delete(db, "abcdata", &err), RLAB_OK);
    CHECK_EQ_INT(rlab_db_dataset_id(db, "abcdata", &d3, &err), RLAB_ENOTFOUND);
    CHECK_EQ_INT(rlab_db_dataset_delete(db, "abcdata", &err), RLAB_OK); /* no row: fine */

    /* settings: set, replace, read, remove; read-only from queries */
    char *sv = (char *)1;
    CHECK_EQ_INT(rlab_db_setting_get(db, "key-metric", &sv, &err), RLAB_OK);
    CHECK(sv == NULL);
    CHECK_EQ_INT(rlab_db_setting_set(db, "key-metric", "valid.hr@5", &err), RLAB_OK);
    CHECK_EQ_INT(rlab_db_setting_set(db, "key-metric", "test.ndcg@10", &err), RLAB_OK);
    CHECK_EQ_INT(rlab_db_setting_get(db, "key-metric", &sv, &err), RLAB_OK);
    CHECK_STR(sv, "test.ndcg@10");
    rlab_free(sv);
    CHECK_EQ_INT(
        rlab_db_query(db, "DELETE FROM settings", NULL, 0, RLAB_DB_ALLOW_WRITES, NULL, NULL, &err),
        RLAB_EINVAL);
    CHECK_EQ_INT(rlab_db_setting_set(db, "key-metric", NULL, &err), RLAB_OK);
    CHECK_EQ_INT(rlab_db_setting_get(db, "key-metric", &sv, &err), RLAB_OK);
    CHECK(sv == NULL);

    /* history: last N, oldest first */
    rlab_db_history_add(db, "help", &err);
    rlab_db_history_add(db, "", &err);
    rlab_db_history_add(db, "seqrec.train epochs=2", &err);
    rlab_db_history_add(db, "runs", &err);
    char acc[256] = "";
    CHECK_EQ_INT(rlab_db_history_each(db, 2, collect_history, acc, &err), RLAB_OK);
    CHECK(strcmp(acc, "seqrec.train epochs=2|runs|") == 0);
    rlab_db_run_end(db, run, RLAB_RUN_DONE, NULL, &err);
    rlab_db_close(db);
}

/* ---- allocation failures ------------------------------------------------------------------- */

static void t_alloc_fail(void)
{
    /* every allocation of ours failing in turn: clean errors, no crash, no leak (ASan) */
    const char *p = db_path("alloc.db");
    rlab_db_close(open_ok(p));
    int completed = 0;
    for (long k = 0; k < 60 && !completed; k++) {
        rlab_err err = {0};
        rlab_alloc_fail_after(k);
        rlab_db *db = rlab_db_open(p, 0, &err);
        int ok = db != NULL;
        int64_t run = 0;
        rlab_db_run_info ri = {.plugin = "x"};
        if (ok)
            ok = rlab_db_run_begin(db, &ri, &run, &err) == RLAB_OK;
        for (int i = 0; ok && i < 300; i++)
            ok = rlab_db_metric(db, run, i, "train", "loss", NULL, 1.0, &err) == RLAB_OK;
        if (ok)
            ok = rlab_db_run_end(db, run, RLAB_RUN_DONE, NULL, &err) == RLAB_OK;
        if (!ok)
            CHECK_MSG(err.code == RLAB_ENOMEM || err.code == RLAB_EDB, "k=%ld: %s", k, err.msg);
        rlab_db_close(db);
        rlab_alloc_fail_after(-1);
        completed = ok;
    }
    CHECK(completed);
    rlab_db *db = open_ok(p); /* still a healthy store afterwards */
    char buf[16];
    CHECK(strcmp(one_text(db, "PRAGMA integrity_check", buf, sizeof buf), "ok") == 0);
    CHECK_EQ_INT(one_int(db, "SELECT count(*) FROM runs WHERE status = 'running'"), 0);
    rlab_db_close(db);
}

/* ---- throughput ----------------------------------------------------------------------------- */

static void t_bench_events(void)
{
    rlab_db *db = open_ok(db_path("bench.db"));
    if (!db)
        return;
    rlab_err err = {0};
    int64_t run = begin_run(db, "simulator");
    enum { N = 100000 };
    char payload[64];
    double t0 = rlab_now();
    int rc = RLAB_OK;
    for (int i = 0; i < N && !rc; i++) {
        snprintf(payload, sizeof payload, "{\"item\":%d,\"score\":%.3f}", i % 600,
                 (double)(i % 97) / 97.0);
        rlab_db_event_rec ev = {.run_id = run,
                                .seq = i,
                                .round = i / 1000,
                                .vtime = (double)i * 0.01,
                                .agent = i % 1000,
                                .kind = "watch",
                                .payload_json = payload};
        rc = rlab_db_event(db, &ev, &err);
    }
    if (!rc)
        rc = rlab_db_flush(db, &err);
    double dt = rlab_now() - t0;
    CHECK_EQ_INT(rc, RLAB_OK);
    CHECK_EQ_INT(one_int(db, "SELECT count(*) FROM events"), N);
    /* the same without batching (one transaction per row), on fewer rows */
    enum { M = 2000 };
    rlab_db_set_flush(db, 1, 1e9);
    double t1 = rlab_now();
    for (int i = 0; i < M; i++) {
        rlab_db_event_rec ev = {.run_id = run, .seq = N + i, .kind = "watch", .agent = -1};
        rlab_db_event(db, &ev, &err);
    }
    double dt1 = rlab_now() - t1;
    printf("store.bench.events: %d events in %.3f s = %.0f rows/s batched (1024 rows/txn);"
           " unbatched %.0f rows/s\n",
           N, dt, N / dt, M / dt1);
    printf("{\"bench\": \"store\", \"metric\": \"events_insert\", \"value\": %.0f, \"unit\": "
           "\"rows/s\", \"baseline\": %.0f}\n",
           N / dt, M / dt1);
    rlab_db_run_end(db, run, RLAB_RUN_DONE, NULL, &err);
    rlab_db_close(db);
}

/* ---- triggers through the query door -------------------------------------------------- */

static const rlab_migration myplug_v1[] = {
    {.sql = "CREATE TABLE myplug_notes(x INTEGER)", .note = "notes"},
    {0},
};

/* A run with one flushed metric and a plugin table; returns the run id (0 on failure). */
static int64_t trigger_setup(rlab_db *db)
{
    rlab_err err = {0};
    int64_t run = begin_run(db, "myplug");
    CHECK_EQ_INT(rlab_db_metric(db, run, 1, "valid", "ndcg@10", "full", 0.5, &err), RLAB_OK);
    CHECK_EQ_INT(rlab_db_flush(db, &err), RLAB_OK);
    CHECK_EQ_INT(rlab_db_plugin_migrate(db, "myplug", myplug_v1, 1, &err), RLAB_OK);
    return run;
}

/* The attack: a trigger on a plugin table, created through reclab.db.exec, that rewrites
 * runs and empties metrics on the plugin's next insert. Refused at creation (also TEMP);
 * the plugin's insert then runs and leaves the core rows alone. */
static void t_query_trigger(void)
{
    rlab_db *db = open_ok(db_path("trigger.db"));
    if (!db)
        return;
    rlab_err err = {0};
    int64_t run = trigger_setup(db);
    const char *attacks[] = {
        "CREATE TRIGGER evil AFTER INSERT ON myplug_notes BEGIN"
        " UPDATE runs SET status = 'failed', error = 'pwned'; DELETE FROM metrics; END",
        "CREATE TEMP TRIGGER evil AFTER INSERT ON myplug_notes BEGIN"
        " UPDATE runs SET status = 'failed', error = 'pwned'; DELETE FROM metrics; END",
        "CREATE TRIGGER evil2 BEFORE INSERT ON myplug_notes BEGIN SELECT 1; END", NULL};
    for (int i = 0; attacks[i]; i++) {
        int rc = rlab_db_query(db, attacks[i], NULL, 0, RLAB_DB_ALLOW_WRITES, NULL, NULL, &err);
        CHECK_MSG(rc == RLAB_EINVAL, "'%s' not refused (rc %d)", attacks[i], rc);
        CHECK_STR_CONTAINS(err.msg, "refused: queries may not create triggers");
        CHECK_STR_CONTAINS(err.msg, "myplug_notes");
    }
    CHECK_EQ_INT(one_int(db, "SELECT count(*) FROM sqlite_master WHERE type = 'trigger'"), 0);
    CHECK_EQ_INT(one_int(db, "SELECT count(*) FROM sqlite_temp_master WHERE type = 'trigger'"), 0);
    /* the plugin's next insert, through its own (unguarded) door */
    CHECK_EQ_INT(rlab_db_exec(db, "INSERT INTO myplug_notes VALUES(1)", &err), RLAB_OK);
    CHECK_EQ_INT(one_int(db, "SELECT count(*) FROM metrics"), 1);
    CHECK_EQ_INT(one_int(db, "SELECT count(*) FROM runs WHERE status = 'running'"), 1);
    CHECK_EQ_INT(one_int(db, "SELECT count(*) FROM runs WHERE error IS NOT NULL"), 0);
    /* the user's own tables, views over core tables and plain writes keep working */
    CHECK_EQ_INT(rlab_db_query(db,
                               "CREATE TABLE notes(x); INSERT INTO notes VALUES(1);"
                               " CREATE VIEW run_metrics AS SELECT runs.id, value FROM runs"
                               " JOIN metrics ON metrics.run_id = runs.id",
                               NULL, 0, RLAB_DB_ALLOW_WRITES, NULL, NULL, &err),
                 RLAB_OK);
    CHECK_EQ_INT(one_int(db, "SELECT count(*) FROM run_metrics"), 1);
    CHECK_EQ_INT(rlab_db_run_end(db, run, RLAB_RUN_DONE, NULL, &err), RLAB_OK);
    rlab_db_close(db);
}

/* Defence in depth: a trigger planted behind reclab's back (an older reclab, the sqlite3
 * shell) cannot change core tables either: the statement that would fire it is refused with
 * a message naming the trigger, and nothing is written. */
static void t_query_trigger_planted(void)
{
    const char *path = db_path("planted.db");
    rlab_db *db = open_ok(path);
    if (!db)
        return;
    rlab_err err = {0};
    int64_t run = trigger_setup(db);
    CHECK_EQ_INT(rlab_db_run_end(db, run, RLAB_RUN_DONE, NULL, &err), RLAB_OK);
    rlab_db_close(db);
    sqlite3 *h = NULL;
    CHECK(sqlite3_open(path, &h) == SQLITE_OK);
    CHECK(sqlite3_exec(h,
                       "CREATE TRIGGER evil AFTER INSERT ON myplug_notes BEGIN"
                       " UPDATE runs SET status = 'failed', error = 'pwned';"
                       " DELETE FROM metrics; END",
                       NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(h);
    db = open_ok(path);
    if (!db)
        return;
    CHECK_EQ_INT(rlab_db_exec(db, "INSERT INTO myplug_notes VALUES(1)", &err), RLAB_EDB);
    CHECK_STR_CONTAINS(err.msg, "trigger 'evil' would UPDATE core table 'runs': refused");
    CHECK_STR_CONTAINS(err.msg, "DROP TRIGGER evil");
    rlab_db_stmt *s = rlab_db_prepare(db, "INSERT INTO myplug_notes VALUES(:x)", &err);
    CHECK(s == NULL);
    CHECK_STR_CONTAINS(err.msg, "trigger 'evil'");
    rlab_db_finalize(s);
    CHECK_EQ_INT(one_int(db, "SELECT count(*) FROM myplug_notes"), 0);
    CHECK_EQ_INT(one_int(db, "SELECT count(*) FROM metrics"), 1);
    CHECK_EQ_INT(one_int(db, "SELECT count(*) FROM runs WHERE status = 'done'"), 1);
    /* the user can drop it through the query door; then the plugin works again */
    CHECK_EQ_INT(
        rlab_db_query(db, "DROP TRIGGER evil", NULL, 0, RLAB_DB_ALLOW_WRITES, NULL, NULL, &err),
        RLAB_OK);
    CHECK_EQ_INT(rlab_db_exec(db, "INSERT INTO myplug_notes VALUES(1)", &err), RLAB_OK);
    /* deleting a run still cascades to its metrics (foreign-key actions are not triggers) */
    CHECK_EQ_INT(rlab_db_exec(db, "DELETE FROM runs", &err), RLAB_OK);
    CHECK_EQ_INT(one_int(db, "SELECT count(*) FROM metrics"), 0);
    rlab_db_close(db);
}

/* Reading a pragma is a read even where SQLite flags the statement as writing (PRAGMA
 * journal_mode); setting one stays refused, in both forms, with or without allow-writes. */
static void t_query_pragma(void)
{
    rlab_db *db = open_ok(db_path("pragma.db"));
    if (!db)
        return;
    rlab_err err = {0};
    const char *reads[] = {"PRAGMA journal_mode",
                           "pragma main.journal_mode;",
                           "/* c */ PRAGMA journal_mode",
                           "PRAGMA synchronous",
                           "PRAGMA foreign_keys",
                           "PRAGMA table_info(runs)",
                           NULL};
    for (int i = 0; reads[i]; i++) {
        rows_seen r = {0};
        int rc = rlab_db_query(db, reads[i], NULL, 0, 0, count_rows, &r, &err);
        CHECK_MSG(rc == RLAB_OK, "'%s' refused: %s", reads[i], err.msg);
        CHECK_MSG(r.n >= 1, "'%s': no row", reads[i]);
    }
    rlab_db_result *t = rlab_db_query_table(db, "PRAGMA journal_mode", NULL, 0, 0, &err);
    CHECK(t && t->nrow == 1 && t->cells[0].type == RLAB_DB_TEXT &&
          strcmp(t->cells[0].s, "wal") == 0);
    rlab_db_result_free(t);
    const char *writes[] = {"PRAGMA journal_mode = DELETE", "PRAGMA journal_mode(DELETE)",
                            "PRAGMA user_version = 9",      "PRAGMA wal_checkpoint(TRUNCATE)",
                            "PRAGMA foreign_keys = OFF",    NULL};
    for (int i = 0; writes[i]; i++)
        for (int w = 0; w < 2; w++) {
            int rc = rlab_db_query(db, writes[i], NULL, 0, w ? RLAB_DB_ALLOW_WRITES : 0, NULL, NULL,
                                   &err);
            CHECK_MSG(rc == RLAB_EINVAL, "'%s' (writes %d) not refused (rc %d)", writes[i], w, rc);
            CHECK_STR_CONTAINS(err.msg, "refused");
        }
    /* bare forms that act are writes: refused in read-only queries */
    const char *acts[] = {"PRAGMA wal_checkpoint", "PRAGMA incremental_vacuum", NULL};
    for (int i = 0; acts[i]; i++) {
        CHECK_EQ_INT(rlab_db_query(db, acts[i], NULL, 0, 0, NULL, NULL, &err), RLAB_EINVAL);
        CHECK_STR_CONTAINS(err.msg, "queries are read-only");
    }
    char mode[16];
    CHECK(strcmp(one_text(db, "PRAGMA journal_mode", mode, sizeof mode), "wal") == 0);
    int ncore = 0;
    rlab_db_core_migrations(&ncore);
    CHECK_EQ_INT(one_int(db, "PRAGMA user_version"), ncore);
    CHECK_EQ_INT(one_int(db, "PRAGMA foreign_keys"), 1);
    rlab_db_close(db);
}

/* A store locked by another connection past the busy timeout (5 s): the start-up error names
 * the store file, whichever step met the lock. */
static void t_open_locked(void)
{
    const char *p = db_path("locked.db");
    rlab_db *db = open_ok(p);
    if (!db)
        return;
    rlab_db_close(db);
    sqlite3 *h = NULL;
    CHECK(sqlite3_open(p, &h) == SQLITE_OK);
    CHECK(sqlite3_exec(h,
                       "PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE;"
                       " INSERT INTO history(time, line) VALUES(1, 'x')",
                       NULL, NULL, NULL) == SQLITE_OK);
    rlab_err err = {0};
    CHECK(rlab_db_open(p, 0, &err) == NULL);
    CHECK_EQ_INT(err.code, RLAB_EDB);
    CHECK_STR_CONTAINS(err.msg, "database is locked");
    CHECK_STR_CONTAINS(err.msg, p);
    CHECK_STR_CONTAINS(err.msg, "another reclab");
    sqlite3_close(h);
    db = open_ok(p); /* the lock is gone */
    if (!db)
        return;
    /* a plugin's schema upgrade at start-up meeting the lock: named too */
    CHECK(sqlite3_open(p, &h) == SQLITE_OK);
    CHECK(sqlite3_exec(h, "BEGIN IMMEDIATE; INSERT INTO history(time, line) VALUES(1, 'x')", NULL,
                       NULL, NULL) == SQLITE_OK);
    CHECK_EQ_INT(rlab_db_plugin_migrate(db, "myplug", myplug_v1, 1, &err), RLAB_EDB);
    CHECK_STR_CONTAINS(err.msg, "database is locked");
    CHECK_STR_CONTAINS(err.msg, p);
    sqlite3_close(h);
    rlab_db_close(db);
}

/* Query limits: a row limit truncates (not an error), a time limit and a cancel callback
 * stop a runaway recursive query that returns no row while it computes, and the connection
 * is unaffected afterwards (the progress handler is gone). */
static int cancel_after(void *ud)
{
    int *calls = ud;
    return ++*calls >= 50; /* about 50k virtual-machine steps in */
}

static void t_query_limits(void)
{
    rlab_db *db = open_ok(db_path("limits.db"));
    if (!db)
        return;
    rlab_err err = {0};
    const char *nums =
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 50)"
        " SELECT x FROM c";
    rlab_db_limits lim = {.max_rows = 10};
    rlab_db_result *r = rlab_db_query_limited(db, nums, NULL, 0, 0, &lim, &err);
    CHECK(r && r->nrow == 10 && lim.truncated == 1);
    rlab_db_result_free(r);
    lim = (rlab_db_limits){.max_rows = 50};
    r = rlab_db_query_limited(db, nums, NULL, 0, 0, &lim, &err);
    CHECK(r && r->nrow == 50 && lim.truncated == 0);
    rlab_db_result_free(r);
    const char *runaway = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c)"
                          " SELECT count(*) FROM c";
    double t0 = rlab_now();
    lim = (rlab_db_limits){.max_seconds = 0.3};
    r = rlab_db_query_limited(db, runaway, NULL, 0, 0, &lim, &err);
    double dt = rlab_now() - t0;
    CHECK(r == NULL);
    CHECK_EQ_INT(err.code, RLAB_EDB);
    CHECK_STR_CONTAINS(err.msg, "time limit (0.3 s)");
    CHECK_MSG(dt >= 0.25 && dt < 3.0, "time limit 0.3 s stopped after %.2f s", dt);
    int calls = 0;
    lim = (rlab_db_limits){.cancelled = cancel_after, .ud = &calls};
    r = rlab_db_query_limited(db, runaway, NULL, 0, 0, &lim, &err);
    CHECK(r == NULL);
    CHECK_EQ_INT(err.code, RLAB_ECANCELED);
    CHECK_EQ_INT(calls, 50);
    /* afterwards: plain queries run to the end, no handler left behind */
    calls = 0;
    r = rlab_db_query_table(db,
                            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c"
                            " WHERE x < 200000) SELECT count(*) FROM c",
                            NULL, 0, 0, &err);
    CHECK(r && r->nrow == 1 && r->cells[0].i == 200000);
    CHECK_EQ_INT(calls, 0);
    rlab_db_result_free(r);
    /* the guard still holds under limits */
    lim = (rlab_db_limits){.max_rows = 5, .max_seconds = 5};
    CHECK(rlab_db_query_limited(db, "DELETE FROM runs", NULL, 0, 0, &lim, &err) == NULL);
    CHECK_STR_CONTAINS(err.msg, "refused");
    rlab_db_close(db);
}

/* ---- the log's checkpoint off the caller's thread ---------------------------------------------
 */

static long file_size(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 ? (long)st.st_size : -1;
}

/* rlab_db_autocheckpoint(db, 0): a commit past 1,000 pages of log leaves the database file as
 * it was; rlab_db_checkpoint_background copies the log into it on its own thread while this
 * connection reads on; (db, 1): the commit copies it again; close waits for a running one. */
static void t_checkpoint_background(void)
{
    const char *path = db_path("ckbg.db");
    char wal[600];
    snprintf(wal, sizeof wal, "%s-wal", path);
    rlab_db *db = open_ok(path);
    if (!db)
        return;
    rlab_err err = {0};
    const long mb5 = 5L << 20;                                /* 1,280 pages of 4 KB */
    CHECK_EQ_INT(rlab_db_checkpoint_wait(db, &err), RLAB_OK); /* none started */
    CHECK_EQ_INT(rlab_db_exec(db, "CREATE TABLE blobs(k INTEGER, v BLOB)", &err), RLAB_OK);
    CHECK_EQ_INT(rlab_db_autocheckpoint(db, 0, &err), RLAB_OK);
    CHECK_EQ_INT(rlab_db_exec(db, "INSERT INTO blobs VALUES(1, randomblob(5242880))", &err),
                 RLAB_OK);
    long before = file_size(path);
    CHECK_MSG(before >= 0 && before < mb5, "database file %ld bytes before the checkpoint", before);
    CHECK_MSG(file_size(wal) >= mb5, "log %ld bytes", file_size(wal));
    char h1[40], h2[40];
    one_text(db, "SELECT hex(substr(v, 4000000, 16)) FROM blobs WHERE k = 1", h1, sizeof h1);
    CHECK_EQ_INT(rlab_db_checkpoint_background(db, &err), RLAB_OK);
    /* this connection reads beside it */
    CHECK_EQ_INT(one_int(db, "SELECT length(v) FROM blobs WHERE k = 1"), 5242880);
    CHECK_EQ_INT(rlab_db_checkpoint_wait(db, &err), RLAB_OK);
    CHECK_MSG(file_size(path) >= mb5, "database file %ld bytes after", file_size(path));
    one_text(db, "SELECT hex(substr(v, 4000000, 16)) FROM blobs WHERE k = 1", h2, sizeof h2);
    CHECK(strlen(h1) == 32 && strcmp(h1, h2) == 0);
    /* on again: the commit that passes 1,000 pages copies the log itself */
    CHECK_EQ_INT(rlab_db_autocheckpoint(db, 1, &err), RLAB_OK);
    CHECK_EQ_INT(rlab_db_exec(db, "INSERT INTO blobs VALUES(2, randomblob(5242880))", &err),
                 RLAB_OK);
    CHECK_MSG(file_size(path) >= 2 * mb5, "database file %ld bytes", file_size(path));
    /* left running: rlab_db_close waits for it */
    CHECK_EQ_INT(rlab_db_autocheckpoint(db, 0, &err), RLAB_OK);
    CHECK_EQ_INT(rlab_db_exec(db, "INSERT INTO blobs VALUES(3, randomblob(5242880))", &err),
                 RLAB_OK);
    CHECK_EQ_INT(rlab_db_checkpoint_background(db, &err), RLAB_OK);
    CHECK_EQ_INT(rlab_db_checkpoint_background(db, &err), RLAB_OK); /* waits for the first */
    rlab_db_close(db);
    db = open_ok(path);
    if (db) {
        CHECK_EQ_INT(one_int(db, "SELECT count(*) FROM blobs"), 3);
        CHECK_EQ_INT(one_int(db, "SELECT sum(length(v)) FROM blobs"), 3 * 5242880);
        rlab_db_close(db);
    }
    /* in memory: nothing to copy */
    db = open_ok(":memory:");
    if (db) {
        CHECK_EQ_INT(rlab_db_autocheckpoint(db, 0, &err), RLAB_OK);
        CHECK_EQ_INT(rlab_db_checkpoint_background(db, &err), RLAB_OK);
        CHECK_EQ_INT(rlab_db_checkpoint_wait(db, &err), RLAB_OK);
        rlab_db_close(db);
    }
}

static const rlab_test tests[] = {
    {"store.sha256.1", t_sha_vectors},
    {"store.sha256.2", t_sha_stream},
    {"store.sha256.3", t_sha_file},
    {"store.open.1", t_open_pragmas},
    {"store.open.2", t_open_refuse},
    {"store.open.3", t_open_locked},
    {"store.migrate.1", t_migrate_every},
    {"store.run.1", t_run_lifecycle},
    {"store.metric.1", t_metric_batch},
    {"store.event.1", t_event_dialogue},
    {"store.crash.1", t_crash_kill9},
    {"store.crash.2", t_crash_alive},
    {"store.crash.3", t_crash_same_process},
    {"store.query.1", t_query_guard},
    {"store.query.2", t_query_trigger},
    {"store.query.3", t_query_trigger_planted},
    {"store.query.4", t_query_pragma},
    {"store.query.5", t_query_limits},
    {"store.plugin.1", t_plugin_migrate},
    {"store.stmt.1", t_stmt_named},
    {"store.artifact.1", t_artifacts},
    {"store.alloc.1", t_alloc_fail},
    {"store.bench.1", t_bench_events},
    {"store.ckpt.1", t_checkpoint_background},
    {NULL, NULL},
};

int main(int argc, char **argv) { return rlab_test_main(argc, argv, tests); }
