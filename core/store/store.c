/*
 * The session store: connection set-up, the core schema and its migrations, plugin schema
 * migrations, the run lifecycle with crash recovery, and the batched writers for metrics
 * and events. See store.h for the rules; stmt.c has the statement helpers, query.c the
 * guarded queries, runlock.c the liveness locks.
 */
#define _XOPEN_SOURCE 700 /* realpath */

#include "store/store.h"
#include "store/store_internal.h"
#include "store/sha256.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* PRAGMA application_id of every reclab store: 'RLAB'. */
#define RLAB_DB_APP_ID 0x524C4142
#define BUSY_TIMEOUT_MS 5000 /* keep RLAB_DB_BUSY_HINT (store_internal.h) in step */

/* ---- the core schema: append-only; user_version = number of steps applied ------------- */

static const char schema_v1[] =
    "PRAGMA application_id = 1380729154;\n" /* RLAB_DB_APP_ID */
    "CREATE TABLE datasets(\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  name TEXT NOT NULL UNIQUE,\n"
    "  source TEXT, format TEXT, sha256 TEXT,\n"
    "  n_users INTEGER, n_items INTEGER, n_inter INTEGER,\n"
    "  created REAL NOT NULL);\n"
    /* AUTOINCREMENT: a run id is never reused, so a liveness lock byte is never ambiguous */
    "CREATE TABLE runs(\n"
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
    "  plugin TEXT NOT NULL, model_kind TEXT, name TEXT, dataset TEXT,\n"
    "  config TEXT CHECK (config IS NULL OR json_valid(config)),\n"
    "  seed INTEGER,\n"
    "  status TEXT NOT NULL DEFAULT 'running'\n"
    "    CHECK (status IN ('running', 'done', 'failed', 'interrupted')),\n"
    "  started REAL NOT NULL, ended REAL,\n"
    "  reclab_version TEXT, plugin_version TEXT, host TEXT, pid INTEGER, error TEXT);\n"
    "CREATE TABLE metrics(\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,\n"
    "  step INTEGER, split TEXT, name TEXT NOT NULL, protocol TEXT, value REAL);\n"
    "CREATE INDEX metrics_run ON metrics(run_id);\n"
    "CREATE TABLE artifacts(\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  run_id INTEGER REFERENCES runs(id) ON DELETE CASCADE,\n"
    "  name TEXT NOT NULL, kind TEXT, path TEXT, data BLOB, sha256 TEXT, bytes INTEGER,\n"
    "  created REAL NOT NULL,\n"
    "  CHECK (path IS NOT NULL OR data IS NOT NULL));\n"
    "CREATE INDEX artifacts_run ON artifacts(run_id);\n"
    "CREATE TABLE events(\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,\n"
    "  seq INTEGER NOT NULL, round INTEGER, vtime REAL, agent INTEGER,\n"
    "  kind TEXT NOT NULL, payload TEXT);\n"
    "CREATE INDEX events_run ON events(run_id);\n"
    "CREATE TABLE dialogues(\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,\n"
    "  conversation INTEGER NOT NULL, turn INTEGER NOT NULL,\n"
    "  role TEXT NOT NULL, text TEXT NOT NULL, extra TEXT);\n"
    "CREATE INDEX dialogues_run ON dialogues(run_id);\n"
    "CREATE TABLE history(id INTEGER PRIMARY KEY, time REAL NOT NULL, line TEXT NOT NULL);\n"
    "CREATE TABLE models(\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  name TEXT NOT NULL UNIQUE, kind TEXT, plugin TEXT,\n"
    "  run_id INTEGER REFERENCES runs(id) ON DELETE SET NULL,\n"
    "  artifact_id INTEGER REFERENCES artifacts(id) ON DELETE SET NULL,\n"
    "  created REAL NOT NULL);\n"
    "CREATE TABLE plugin_schema(plugin TEXT PRIMARY KEY, version INTEGER NOT NULL);\n";

static const char schema_v2[] =
    "ALTER TABLE runs ADD COLUMN parent_id INTEGER REFERENCES runs(id) ON DELETE SET NULL;\n"
    /* composite indexes for the usual lookups (a metric curve, an event log in order, one
     * conversation), each also serving the foreign key on run_id */
    "DROP INDEX metrics_run;\n"
    "CREATE INDEX metrics_run ON metrics(run_id, name, step);\n"
    "DROP INDEX events_run;\n"
    "CREATE INDEX events_run ON events(run_id, seq);\n"
    "DROP INDEX dialogues_run;\n"
    "CREATE INDEX dialogues_run ON dialogues(run_id, conversation, turn);\n"
    /* recovery scans running runs at every open */
    "CREATE INDEX runs_running ON runs(status) WHERE status = 'running';\n";

/* v3: a workspace reopens as it was left. A dataset row records how to rebuild it (its
 * recipe: source files with their sha256, format and load options; a world's generator config;
 * a split's parent and method) and whether it holds interactions or dialogues; settings keep
 * the user's choices (the sidebar's key metric). */
static const char schema_v3[] =
    "ALTER TABLE datasets ADD COLUMN kind TEXT;\n"
    "ALTER TABLE datasets ADD COLUMN recipe TEXT CHECK (recipe IS NULL OR json_valid(recipe));\n"
    "CREATE TABLE settings(key TEXT PRIMARY KEY, value TEXT NOT NULL, updated REAL NOT NULL);\n";

/* v4: experiments as first-class objects (host/sweep.c). An experiment is a sweep's spec
 * (JSON, as given) and its planned runs: one row per (configuration, seed) with the exact
 * train command, the train run that executed it once done, and a status a resumed sweep
 * reads to skip finished work. run_users keeps per-user metric values of a run (the test
 * targets ranked by the evaluator), so comparisons can pair two runs over the same users;
 * WITHOUT ROWID: the key is the natural lookup order (one metric of one run). */
static const char schema_v4[] =
    "CREATE TABLE experiments(\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  name TEXT NOT NULL UNIQUE,\n"
    "  spec TEXT NOT NULL CHECK (json_valid(spec)),\n"
    "  command TEXT,\n"
    "  status TEXT NOT NULL DEFAULT 'running'\n"
    "    CHECK (status IN ('running', 'done', 'failed', 'interrupted')),\n"
    "  created REAL NOT NULL, ended REAL, reclab_version TEXT);\n"
    "CREATE TABLE experiment_runs(\n"
    "  exp_id INTEGER NOT NULL REFERENCES experiments(id) ON DELETE CASCADE,\n"
    "  idx INTEGER NOT NULL,\n"
    "  config TEXT NOT NULL, label TEXT NOT NULL, kind TEXT NOT NULL, data TEXT NOT NULL,\n"
    "  seed INTEGER NOT NULL, rung INTEGER NOT NULL DEFAULT 0,\n"
    "  command TEXT NOT NULL,\n"
    "  run_id INTEGER REFERENCES runs(id) ON DELETE SET NULL,\n"
    "  status TEXT NOT NULL DEFAULT 'pending'\n"
    "    CHECK (status IN ('pending', 'done', 'failed', 'stopped')),\n"
    "  PRIMARY KEY (exp_id, idx));\n"
    "CREATE INDEX experiment_runs_run ON experiment_runs(run_id);\n"
    "CREATE TABLE run_users(\n"
    "  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,\n"
    "  split TEXT NOT NULL, name TEXT NOT NULL, protocol TEXT NOT NULL,\n"
    "  user INTEGER NOT NULL, value REAL NOT NULL,\n"
    "  PRIMARY KEY (run_id, split, name, user)) WITHOUT ROWID;\n";

static const rlab_migration core_migrations[] = {
    {.sql = schema_v1, .note = "core tables"},
    {.sql = schema_v2, .note = "runs.parent_id; composite indexes on metrics/events/dialogues"},
    {.sql = schema_v3, .note = "datasets.kind and datasets.recipe; settings"},
    {.sql = schema_v4, .note = "experiments, experiment_runs; per-user metric values"},
};

#define N_CORE ((int)(sizeof core_migrations / sizeof core_migrations[0]))

const rlab_migration *rlab_db_core_migrations(int *n)
{
    if (n)
        *n = N_CORE;
    return core_migrations;
}

/* ---- small helpers --------------------------------------------------------------------- */

/* Read one integer from a statement with no parameters (pragmas, counts). */
static int query_int(rlab_db *db, const char *sql, int64_t *out, rlab_err *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db->h, sql, -1, &st, NULL) != SQLITE_OK)
        return rlab_db__sqlerr(db, err, sql);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int64(st, 0);
        rc = RLAB_OK;
    } else if (rc == SQLITE_DONE) {
        *out = 0;
        rc = RLAB_OK;
    } else {
        rc = rlab_db__sqlerr(db, err, sql);
    }
    sqlite3_finalize(st);
    return rc;
}

static int is_memory_path(const char *path) { return strcmp(path, ":memory:") == 0 || !*path; }

const char *rlab_run_status_name(rlab_run_status s)
{
    static const char *const names[] = {"running", "done", "failed", "interrupted"};
    return (unsigned)s < 4 ? names[s] : NULL;
}

rlab_run_status rlab_run_status_for(int code)
{
    if (code == RLAB_OK)
        return RLAB_RUN_DONE;
    return code == RLAB_ECANCELED ? RLAB_RUN_INTERRUPTED : RLAB_RUN_FAILED;
}

/* ---- migrations ------------------------------------------------------------------------ */

static int core_upgrade(rlab_db *db, rlab_err *err)
{
    int rc = rlab_db_begin(db, err);
    if (rc)
        return rc;
    /* Re-read inside the write transaction: another process may have upgraded meanwhile. */
    int64_t v = 0, nobj = 0;
    rc = query_int(db, "PRAGMA user_version", &v, err);
    if (!rc && v == 0)
        rc = query_int(db, "SELECT count(*) FROM sqlite_schema", &nobj, err);
    if (!rc && v == 0 && nobj > 0)
        rc = rlab_errf(err, RLAB_EFORMAT,
                       "store: %s is not a reclab session store (it has tables but no reclab "
                       "schema version)",
                       db->path);
    for (int k = (int)v; !rc && k < N_CORE; k++) {
        const rlab_migration *m = &core_migrations[k];
        rlab_err e = {0};
        if (m->sql)
            rc = rlab_db_exec(db, m->sql, &e);
        if (!rc && m->fn)
            rc = m->fn(db, &e);
        if (rc)
            rlab_errf(err, rc, "store: core schema step %d (%s) failed: %s", k + 1, m->note, e.msg);
    }
    if (!rc && v < N_CORE) {
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA user_version = %d", N_CORE);
        rc = rlab_db_exec(db, sql, err);
    }
    if (rc) {
        rlab_db_rollback(db);
        return rc;
    }
    rc = rlab_db_commit(db, err);
    if (!rc && v < N_CORE && v > 0)
        rlab_log(RLAB_LOG_INFO, "store: upgraded %s from schema %lld to %d", db->path, (long long)v,
                 N_CORE);
    return rc;
}

int rlab_db_schema_version(rlab_db *db, rlab_err *err)
{
    int64_t v = -1;
    if (query_int(db, "PRAGMA user_version", &v, err))
        return -1;
    return (int)v;
}

static int valid_plugin_name(const char *p)
{
    if (!p || !(*p >= 'a' && *p <= 'z') || strlen(p) > 64)
        return 0;
    for (; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
            return 0;
    return 1;
}

int rlab_db_plugin_version(rlab_db *db, const char *plugin, int *version, rlab_err *err)
{
    rlab_db_stmt *s =
        rlab_db_prepare(db, "SELECT version FROM plugin_schema WHERE plugin = :p", err);
    if (!s)
        return err ? err->code : RLAB_EDB;
    int rc = rlab_db_bind_text(s, ":p", plugin, err);
    *version = 0;
    if (!rc && (rc = rlab_db_step(s, err)) == RLAB_DB_ROW) {
        *version = (int)rlab_db_column_int(s, 0);
        rc = RLAB_OK;
    }
    rlab_db_finalize(s);
    return rc;
}

/* Run one plugin step with the authorizer on; errors name the plugin and the step. */
static int plugin_step(rlab_db *db, const char *plugin, int k, const rlab_migration *m,
                       rlab_err *err)
{
    rlab_err e = {0};
    int rc = RLAB_OK;
    db->auth.altering = 0;
    if (m->sql)
        rc = rlab_db_exec(db, m->sql, &e);
    if (!rc && m->fn)
        rc = m->fn(db, &e);
    if (!rc)
        return RLAB_OK;
    if (db->auth.denied[0])
        return rlab_errf(err, RLAB_EINVAL, "%s schema step %d: %s", plugin, k + 1, db->auth.denied);
    return rlab_errf(err, rc, "%s schema step %d%s%s: %s", plugin, k + 1, m->note ? " " : "",
                     m->note ? m->note : "", e.msg);
}

/* After the steps: every object they added to the main schema must carry the prefix. The
 * authorizer already checks names at creation; this also catches renames (ALTER TABLE
 * plugin_x RENAME TO x), where SQLite does not pass the new name to the authorizer. */
static int check_new_objects(rlab_db *db, const char *plugin, rlab_err *err)
{
    rlab_db_stmt *s = rlab_db_prepare(
        db,
        "SELECT type, name FROM main.sqlite_schema WHERE name NOT IN"
        " (SELECT name FROM temp.rlab_migrate_before) AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
        " AND (substr(name, 1, length(:p) + 1) <> :p || '_' OR length(name) <= length(:p) + 1)",
        err);
    if (!s)
        return err ? err->code : RLAB_EDB;
    int rc = rlab_db_bind_text(s, ":p", plugin, err);
    if (!rc && (rc = rlab_db_step(s, err)) == RLAB_DB_ROW) {
        rc = rlab_errf(err, RLAB_EINVAL,
                       "%s schema: %s '%s' refused: plugin tables must be "
                       "named '%s_...'",
                       plugin, rlab_db_column_text(s, 0), rlab_db_column_text(s, 1), plugin);
    }
    rlab_db_finalize(s);
    return rc;
}

int rlab_db_plugin_migrate(rlab_db *db, const char *plugin, const rlab_migration *list, int n,
                           rlab_err *err)
{
    if (!valid_plugin_name(plugin))
        return rlab_errf(err, RLAB_EINVAL, "plugin schema: bad plugin name '%s'",
                         plugin ? plugin : "(null)");
    if (n < 0 || (n > 0 && !list))
        return rlab_errf(err, RLAB_EINVAL, "%s schema: bad migration list", plugin);
    int stored = 0;
    int rc = rlab_db_begin(db, err);
    if (rc)
        return rc;
    rc = rlab_db_plugin_version(db, plugin, &stored, err);
    if (!rc && stored > n)
        rc = rlab_errf(err, RLAB_EVERSION,
                       "session was written by %s schema %d; this plugin knows %d", plugin, stored,
                       n);
    if (rc || stored == n) {
        if (rc) {
            rlab_db_rollback(db);
            return rc;
        }
        return rlab_db_commit(db, err);
    }
    rc =
        rlab_db_exec(db,
                     "DROP TABLE IF EXISTS temp.rlab_migrate_before;"
                     "CREATE TEMP TABLE rlab_migrate_before AS SELECT name FROM main.sqlite_schema",
                     err);
    if (!rc) {
        db->auth.plugin = plugin;
        db->auth.plen = strlen(plugin);
        rlab_db__auth_mode(db, AUTH_PLUGIN);
        for (int k = stored; !rc && k < n; k++)
            rc = plugin_step(db, plugin, k, &list[k], err);
        rlab_db__auth_mode(db, AUTH_BASE);
    }
    if (!rc)
        rc = check_new_objects(db, plugin, err);
    if (!rc)
        rc = rlab_db_exec(db, "DROP TABLE temp.rlab_migrate_before", err);
    if (!rc) {
        rlab_db_stmt *s = rlab_db_prepare(db,
                                          "INSERT INTO plugin_schema(plugin, version)"
                                          " VALUES(:p, :v) ON CONFLICT(plugin)"
                                          " DO UPDATE SET version = excluded.version",
                                          err);
        rc = s ? RLAB_OK : RLAB_EDB;
        if (!rc)
            rc = rlab_db_bind_text(s, ":p", plugin, err);
        if (!rc)
            rc = rlab_db_bind_int(s, ":v", n, err);
        if (!rc)
            rc = rlab_db_step(s, err);
        rlab_db_finalize(s);
    }
    if (rc) {
        rlab_db_rollback(db);
        return rc;
    }
    return rlab_db_commit(db, err);
}

/* ---- checkpoints of the write-ahead log off the caller's thread --------------------------- */

int rlab_db_autocheckpoint(rlab_db *db, int on, rlab_err *err)
{
    if (is_memory_path(db->path))
        return RLAB_OK;
    /* 1,000 pages: SQLite's default (SQLITE_DEFAULT_WAL_AUTOCHECKPOINT) */
    if (sqlite3_wal_autocheckpoint(db->h, on ? 1000 : 0) != SQLITE_OK)
        return rlab_db__sqlerr(db, err, "store: automatic checkpoints");
    return RLAB_OK;
}

static void *ckpt_main(void *arg)
{
    rlab_db *db = arg;
    sqlite3 *h = NULL;
    int rc = sqlite3_open_v2(db->path, &h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    /* a read first: a connection that has read nothing has not opened the log, and some
     * SQLite versions then checkpoint nothing */
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(h, "PRAGMA schema_version", NULL, NULL, NULL);
    if (rc == SQLITE_OK) /* passive: copies what no reader still needs, never waits */
        rc = sqlite3_wal_checkpoint_v2(h, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    sqlite3_close(h); /* not the last connection: leaves the log file alone */
    db->ckpt_rc = rc;
    return NULL;
}

int rlab_db_checkpoint_wait(rlab_db *db, rlab_err *err)
{
    if (!db->ckpt_running)
        return RLAB_OK;
    pthread_join(db->ckpt_th, NULL);
    db->ckpt_running = 0;
    /* BUSY: another connection was checkpointing; the log is copied by it or the next one */
    if (db->ckpt_rc != SQLITE_OK && db->ckpt_rc != SQLITE_BUSY)
        return rlab_errf(err, RLAB_EDB, "store: background checkpoint of %s: %s", db->path,
                         sqlite3_errstr(db->ckpt_rc));
    return RLAB_OK;
}

int rlab_db_checkpoint_background(rlab_db *db, rlab_err *err)
{
    if (is_memory_path(db->path))
        return RLAB_OK;
    int rc = rlab_db_checkpoint_wait(db, err);
    if (rc)
        return rc;
    db->ckpt_rc = SQLITE_OK;
    if (pthread_create(&db->ckpt_th, NULL, ckpt_main, db) != 0)
        return rlab_errf(err, RLAB_EDB, "store: cannot start a checkpoint thread");
    db->ckpt_running = 1;
    return RLAB_OK;
}

/* ---- open / close ---------------------------------------------------------------------- */

static int apply_settings(rlab_db *db, rlab_err *err)
{
    sqlite3_extended_result_codes(db->h, 1);
    sqlite3_busy_timeout(db->h, BUSY_TIMEOUT_MS);
    if (!is_memory_path(db->path)) {
        /* journal_mode returns the mode in effect; WAL can be refused (e.g. no shared
         * memory on the file system), which we report rather than silently run without. */
        sqlite3_stmt *st = NULL;
        int ok = 0;
        if (sqlite3_prepare_v2(db->h, "PRAGMA journal_mode = WAL", -1, &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW) {
            const char *m = (const char *)sqlite3_column_text(st, 0);
            ok = m && strcmp(m, "wal") == 0;
        }
        sqlite3_finalize(st);
        if (!ok) {
            if (sqlite3_errcode(db->h) == SQLITE_NOTADB)
                return rlab_errf(err, RLAB_EFORMAT, "store: %s is not a database", db->path);
            return rlab_db__sqlerr(db, err, "store: cannot switch to WAL mode");
        }
    }
    return rlab_db_exec(db, "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON", err);
}

static int check_version(rlab_db *db, unsigned flags, rlab_err *err)
{
    int64_t app = 0, v = 0;
    int rc = query_int(db, "PRAGMA application_id", &app, err);
    if (!rc)
        rc = query_int(db, "PRAGMA user_version", &v, err);
    if (rc)
        return rc;
    if (app != 0 && app != RLAB_DB_APP_ID)
        return rlab_errf(err, RLAB_EFORMAT,
                         "store: %s is not a reclab session store (application_id %lld)", db->path,
                         (long long)app);
    if (v > N_CORE)
        return rlab_errf(err, RLAB_EVERSION,
                         "store: %s was written by a newer reclab (schema version %lld); this "
                         "reclab %s knows schema version %d: upgrade reclab",
                         db->path, (long long)v, rlab_version(), N_CORE);
    if (v < N_CORE && v > 0 && (flags & RLAB_DB_NO_UPGRADE))
        return rlab_errf(err, RLAB_EVERSION,
                         "store: %s has schema version %lld, this reclab needs %d (opened "
                         "without upgrade)",
                         db->path, (long long)v, N_CORE);
    return v < N_CORE ? core_upgrade(db, err) : RLAB_OK;
}

static int open_lock(rlab_db *db, rlab_err *err)
{
    if (is_memory_path(db->path))
        return RLAB_OK;
    /* Name the sidecar after the resolved path, so every alias of the file (relative path,
     * symlink) agrees on one lock file. The database exists by now, so realpath works. */
    char *real = realpath(db->path, NULL);
    const char *base = real ? real : db->path;
    size_t n = strlen(base);
    db->lock_path = rlab_malloc(n + 6);
    if (!db->lock_path) {
        free(real);
        return rlab_errf(err, RLAB_ENOMEM, "store: out of memory");
    }
    memcpy(db->lock_path, base, n);
    memcpy(db->lock_path + n, "-runs", 6);
    free(real); /* realpath allocates with malloc */
    db->lock_fd = rlab_runlock_open(db->lock_path, err);
    return db->lock_fd < 0 ? RLAB_EIO : RLAB_OK;
}

/* Every open failure names the store file: the steps below report SQLite's words and do not
 * all know which file they were working on. */
static void name_store(rlab_db *db, rlab_err *err)
{
    if (!err || !err->msg[0] || strstr(err->msg, db->path))
        return;
    char body[sizeof err->msg];
    const char *m = err->msg;
    if (strncmp(m, "store: ", 7) == 0)
        m += 7;
    snprintf(body, sizeof body, "%s", m);
    rlab_errf(err, err->code, "store %s: %s", db->path, body);
}

rlab_db *rlab_db_open(const char *path, unsigned flags, rlab_err *err)
{
    if (!path)
        path = RLAB_DB_DEFAULT_PATH;
    rlab_db *db = rlab_calloc(1, sizeof *db);
    if (!db || !(db->path = rlab_strdup(path))) {
        rlab_free(db);
        rlab_errf(err, RLAB_ENOMEM, "store: out of memory");
        return NULL;
    }
    db->lock_fd = -1;
    db->flags = flags;
    db->flush_rows = 1024;
    db->flush_sec = 0.25;
    /* NOMUTEX: the connection is used by one thread at a time (see thread rules), so
     * SQLite's per-connection mutex is pure overhead. */
    int oflags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    int rc = RLAB_OK;
    if (sqlite3_open_v2(path, &db->h, oflags, NULL) != SQLITE_OK) {
        rc = rlab_errf(err, RLAB_EDB, "store: cannot open %s: %s", path,
                       db->h ? sqlite3_errmsg(db->h) : "out of memory");
    } else {
        rlab_db__auth_mode(db, AUTH_BASE); /* the trigger guard, for the connection's life */
    }
    if (!rc)
        rc = apply_settings(db, err);
    if (!rc)
        rc = check_version(db, flags, err);
    if (!rc)
        rc = open_lock(db, err);
    if (!rc && !(flags & RLAB_DB_NO_RECOVER))
        rc = rlab_db_recover_runs(db, NULL, err);
    if (rc) {
        name_store(db, err);
        db->flags |= RLAB_DB_NO_RECOVER;
        rlab_db_close(db);
        return NULL;
    }
    return db;
}

const char *rlab_db_path(const rlab_db *db) { return db->path; }
int rlab_db_recovered(const rlab_db *db) { return db->recovered; }

void rlab_db_close(rlab_db *db)
{
    if (!db)
        return;
    rlab_err e = {0};
    if (rlab_db_checkpoint_wait(db, &e))
        rlab_log(RLAB_LOG_WARN, "store: closing %s: %s", db->path, e.msg);
    if (db->h && rlab_db_flush(db, &e))
        rlab_log(RLAB_LOG_WARN, "store: closing %s: %s", db->path, e.msg);
    while (db->n_owned > 0) {
        int64_t id = db->owned[db->n_owned - 1];
        if (rlab_db_run_end(db, id, RLAB_RUN_INTERRUPTED, "store closed while the run was active",
                            &e)) {
            rlab_log(RLAB_LOG_WARN, "store: closing %s: run %lld: %s", db->path, (long long)id,
                     e.msg);
            rlab_runlock_release(db->lock_fd, id);
            db->n_owned--;
        }
    }
    sqlite3_finalize(db->st_metric);
    sqlite3_finalize(db->st_event);
    sqlite3_finalize(db->st_event_block);
    sqlite3_finalize(db->st_run_exists);
    if (db->h)
        sqlite3_close_v2(db->h);
    if (db->lock_fd >= 0)
        close(db->lock_fd);
    rlab_free(db->lock_path);
    rlab_free(db->path);
    rlab_free(db->metrics);
    rlab_free(db->events);
    rlab_free(db->pool);
    rlab_free(db->owned);
    rlab_free(db);
}

/* ---- runs ------------------------------------------------------------------------------ */

int rlab_db_recover_runs(rlab_db *db, int *n, rlab_err *err)
{
    if (n)
        *n = 0;
    db->recovered = 0;
    if (!db->lock_path)
        return RLAB_OK;
    /* Inside BEGIN IMMEDIATE: no run can start or end while we look (run_begin takes its lock
     * before committing the row, run_end releases it after committing the status). */
    int rc = rlab_db_begin(db, err);
    if (rc)
        return rc;
    int64_t *dead = NULL;
    int ndead = 0, cap = 0;
    rlab_db_stmt *s = rlab_db_prepare(db, "SELECT id FROM runs WHERE status = 'running'", err);
    rc = s ? RLAB_OK : RLAB_EDB;
    while (!rc && (rc = rlab_db_step(s, err)) == RLAB_DB_ROW) {
        rc = RLAB_OK;
        int64_t id = rlab_db_column_int(s, 0);
        int held = rlab_runlock_held(db->lock_path, id, err);
        if (held < 0) {
            rc = RLAB_EIO;
        } else if (!held) {
            if (ndead == cap) {
                cap = cap ? 2 * cap : 8;
                int64_t *p = rlab_realloc(dead, (size_t)cap * sizeof *p);
                if (!p) {
                    rc = rlab_errf(err, RLAB_ENOMEM, "store: out of memory");
                    break;
                }
                dead = p;
            }
            dead[ndead++] = id;
        }
    }
    rlab_db_finalize(s);
    s = NULL;
    if (!rc && ndead) {
        s = rlab_db_prepare(db,
                            "UPDATE runs SET status = 'interrupted',"
                            " ended = coalesce(ended, :now), error = coalesce(error,"
                            " 'owner process ' || coalesce(pid, '?') || ' on ' ||"
                            " coalesce(host, '?') || ' died without ending the run"
                            " (crash, kill or Ctrl-C)') WHERE id = :id AND status = 'running'",
                            err);
        rc = s ? RLAB_OK : RLAB_EDB;
        if (!rc)
            rc = rlab_db_bind_double(s, ":now", rlab_wall_time(), err);
        for (int i = 0; !rc && i < ndead; i++) {
            rc = rlab_db_bind_int(s, ":id", dead[i], err);
            if (!rc)
                rc = rlab_db_step(s, err);
        }
        rlab_db_finalize(s);
    }
    rlab_free(dead);
    if (rc) {
        rlab_db_rollback(db);
        return rc;
    }
    rc = rlab_db_commit(db, err);
    if (!rc) {
        db->recovered = ndead;
        if (n)
            *n = ndead;
        if (ndead)
            rlab_log(RLAB_LOG_INFO, "store: marked %d dead run%s interrupted in %s", ndead,
                     ndead == 1 ? "" : "s", db->path);
    }
    return rc;
}

int rlab_db_run_begin(rlab_db *db, const rlab_db_run_info *info, int64_t *run_id, rlab_err *err)
{
    if (!info || !info->plugin || !*info->plugin || !run_id)
        return rlab_errf(err, RLAB_EINVAL, "run_begin: plugin name required");
    if (db->n_owned == db->cap_owned) {
        int cap = db->cap_owned ? 2 * db->cap_owned : 4;
        int64_t *p = rlab_realloc(db->owned, (size_t)cap * sizeof *p);
        if (!p)
            return rlab_errf(err, RLAB_ENOMEM, "run_begin: out of memory");
        db->owned = p;
        db->cap_owned = cap;
    }
    char host[256] = "";
    if (gethostname(host, sizeof host - 1) != 0)
        strcpy(host, "?");
    rlab_db_stmt *s = rlab_db_prepare(
        db,
        "INSERT INTO runs(plugin, model_kind, name, dataset, config, seed, status, started,"
        " reclab_version, plugin_version, host, pid, parent_id)"
        " VALUES(:plugin, :kind, :name, :dataset, :config, :seed, 'running', :now,"
        " :rv, :pv, :host, :pid, :parent)",
        err);
    if (!s)
        return err ? err->code : RLAB_EDB;
    int rc = rlab_db_bind_text(s, ":plugin", info->plugin, err);
    rc = rc ? rc : rlab_db_bind_text(s, ":kind", info->model_kind, err);
    rc = rc ? rc : rlab_db_bind_text(s, ":name", info->name, err);
    rc = rc ? rc : rlab_db_bind_text(s, ":dataset", info->dataset, err);
    rc = rc ? rc : rlab_db_bind_text(s, ":config", info->config_json, err);
    rc = rc              ? rc
         : info->no_seed ? rlab_db_bind_null(s, ":seed", err)
                         : rlab_db_bind_int(s, ":seed", (int64_t)info->seed, err);
    rc = rc ? rc : rlab_db_bind_double(s, ":now", rlab_wall_time(), err);
    rc = rc ? rc : rlab_db_bind_text(s, ":rv", rlab_version(), err);
    rc = rc ? rc : rlab_db_bind_text(s, ":pv", info->plugin_version, err);
    rc = rc ? rc : rlab_db_bind_text(s, ":host", host, err);
    rc = rc ? rc : rlab_db_bind_int(s, ":pid", (int64_t)getpid(), err);
    if (!rc)
        rc = info->parent_id > 0 ? rlab_db_bind_int(s, ":parent", info->parent_id, err)
                                 : rlab_db_bind_null(s, ":parent", err);
    if (rc) {
        rlab_db_finalize(s);
        return rc;
    }
    if ((rc = rlab_db_begin(db, err)) != RLAB_OK) {
        rlab_db_finalize(s);
        return rc;
    }
    rc = rlab_db_step(s, err);
    if (rc == RLAB_EDB && sqlite3_extended_errcode(db->h) == SQLITE_CONSTRAINT_CHECK)
        rc = rlab_errf(err, RLAB_EINVAL, "run_begin: config is not valid JSON: %.120s",
                       info->config_json ? info->config_json : "");
    else if (rc == RLAB_EDB && sqlite3_extended_errcode(db->h) == SQLITE_CONSTRAINT_FOREIGNKEY)
        rc = rlab_errf(err, RLAB_ENOTFOUND, "run_begin: no parent run %lld",
                       (long long)info->parent_id);
    rlab_db_finalize(s);
    int64_t id = rlab_db_last_insert_id(db);
    /* Lock before the row becomes visible to others, so nobody sees it unlocked. */
    if (!rc && db->lock_fd >= 0)
        rc = rlab_runlock_take(db->lock_fd, id, err);
    if (rc) {
        rlab_db_rollback(db);
        return rc;
    }
    if ((rc = rlab_db_commit(db, err)) != RLAB_OK) {
        if (db->lock_fd >= 0)
            rlab_runlock_release(db->lock_fd, id);
        return rc;
    }
    db->owned[db->n_owned++] = id;
    *run_id = id;
    return RLAB_OK;
}

int rlab_db_run_end(rlab_db *db, int64_t run_id, rlab_run_status status, const char *message,
                    rlab_err *err)
{
    if (status != RLAB_RUN_DONE && status != RLAB_RUN_FAILED && status != RLAB_RUN_INTERRUPTED)
        return rlab_errf(err, RLAB_EINVAL, "run_end: bad final status %d", (int)status);
    rlab_err ferr = {0};
    int frc = rlab_db_flush(db, &ferr); /* report later: ending the run matters more */
    rlab_db_stmt *s = rlab_db_prepare(
        db, "UPDATE runs SET status = :st, ended = :now, error = :msg WHERE id = :id", err);
    if (!s)
        return err ? err->code : RLAB_EDB;
    int rc = rlab_db_bind_text(s, ":st", rlab_run_status_name(status), err);
    rc = rc ? rc : rlab_db_bind_double(s, ":now", rlab_wall_time(), err);
    rc = rc ? rc : rlab_db_bind_text(s, ":msg", message, err);
    rc = rc ? rc : rlab_db_bind_int(s, ":id", run_id, err);
    rc = rc ? rc : rlab_db_step(s, err);
    int changed = sqlite3_changes(db->h);
    rlab_db_finalize(s);
    if (!rc && changed == 0)
        rc = rlab_errf(err, RLAB_ENOTFOUND, "run_end: no run %lld", (long long)run_id);
    if (rc)
        return rc;
    /* Released only after the status is committed (or, inside a caller's transaction, the
     * caller commits while other processes still cannot see the run as unlocked-running
     * because they block on our write lock). */
    for (int i = 0; i < db->n_owned; i++) {
        if (db->owned[i] == run_id) {
            rlab_runlock_release(db->lock_fd, run_id);
            db->owned[i] = db->owned[--db->n_owned];
            break;
        }
    }
    if (frc) {
        if (err)
            *err = ferr;
        return frc;
    }
    return RLAB_OK;
}

int rlab_db_run_describe(rlab_db *db, int64_t run_id, const char *model_kind, const char *dataset,
                         rlab_err *err)
{
    rlab_db_stmt *s = rlab_db_prepare(db,
                                      "UPDATE runs SET model_kind = COALESCE(model_kind, :kind), "
                                      "dataset = COALESCE(dataset, :ds) WHERE id = :id",
                                      err);
    if (!s)
        return err ? err->code : RLAB_EDB;
    int rc = rlab_db_bind_text(s, ":kind", model_kind, err);
    rc = rc ? rc : rlab_db_bind_text(s, ":ds", dataset, err);
    rc = rc ? rc : rlab_db_bind_int(s, ":id", run_id, err);
    rc = rc ? rc : rlab_db_step(s, err);
    int changed = sqlite3_changes(db->h);
    rlab_db_finalize(s);
    if (!rc && changed == 0)
        rc = rlab_errf(err, RLAB_ENOTFOUND, "run_describe: no run %lld", (long long)run_id);
    return rc;
}

int rlab_db_run_status(rlab_db *db, int64_t run_id, rlab_run_status *status, rlab_err *err)
{
    rlab_db_stmt *s = rlab_db_prepare(db, "SELECT status FROM runs WHERE id = :id", err);
    if (!s)
        return err ? err->code : RLAB_EDB;
    int rc = rlab_db_bind_int(s, ":id", run_id, err);
    if (!rc && (rc = rlab_db_step(s, err)) == RLAB_DB_ROW) {
        const char *t = rlab_db_column_text(s, 0);
        rc = RLAB_OK;
        *status = RLAB_RUN_FAILED;
        for (int k = 0; k < 4; k++)
            if (t && strcmp(t, rlab_run_status_name((rlab_run_status)k)) == 0)
                *status = (rlab_run_status)k;
    } else if (!rc) {
        rc = rlab_errf(err, RLAB_ENOTFOUND, "run_status: no run %lld", (long long)run_id);
    }
    rlab_db_finalize(s);
    return rc;
}

/* ---- batched metric and event writes -------------------------------------------------- */

void rlab_db_set_flush(rlab_db *db, int rows, double ms)
{
    db->flush_rows = rows >= 1 ? rows : 1;
    db->flush_sec = ms >= 0 ? ms / 1000.0 : 0;
}

int rlab_db_buffered(const rlab_db *db) { return (int)(db->n_metrics + db->n_events); }

/* Copy s into the string pool; returns its offset, NO_STR for NULL, or NO_STR - 1 on
 * allocation failure. Offsets (not pointers) survive the pool's reallocation. */
static size_t pool_put(rlab_db *db, const char *s)
{
    if (!s)
        return NO_STR;
    size_t n = strlen(s) + 1;
    if (db->pool_used + n > db->pool_cap) {
        size_t cap = db->pool_cap ? db->pool_cap : 4096;
        while (cap < db->pool_used + n)
            cap *= 2;
        char *p = rlab_realloc(db->pool, cap);
        if (!p)
            return NO_STR - 1;
        db->pool = p;
        db->pool_cap = cap;
    }
    size_t off = db->pool_used;
    memcpy(db->pool + off, s, n);
    db->pool_used += n;
    return off;
}

static const char *pool_get(const rlab_db *db, size_t off)
{
    return off == NO_STR ? NULL : db->pool + off;
}

/* Check once per run id that the run exists, so a bad id fails at the write that uses it
 * instead of failing (and dropping) a whole batch at flush time. */
static int check_run(rlab_db *db, int64_t run_id, const char *what, rlab_err *err)
{
    if (run_id == db->checked_run && run_id != 0)
        return RLAB_OK;
    int rc = rlab_db__prep(db, &db->st_run_exists, "SELECT 1 FROM runs WHERE id = ?1",
                           SQLITE_PREPARE_PERSISTENT, err);
    if (rc)
        return rc;
    sqlite3_bind_int64(db->st_run_exists, 1, run_id);
    int s = sqlite3_step(db->st_run_exists);
    sqlite3_reset(db->st_run_exists);
    if (s == SQLITE_ROW) {
        db->checked_run = run_id;
        return RLAB_OK;
    }
    if (s == SQLITE_DONE)
        return rlab_errf(err, RLAB_ENOTFOUND, "%s: no run %lld", what, (long long)run_id);
    return rlab_db__sqlerr(db, err, what);
}

/* Called after a row was buffered: flush when the batch is full or old enough. */
static int maybe_flush(rlab_db *db, rlab_err *err)
{
    size_t n = db->n_metrics + db->n_events;
    if (n == 1)
        db->first_buffered = rlab_now();
    if (n >= (size_t)db->flush_rows || rlab_now() - db->first_buffered >= db->flush_sec)
        return rlab_db_flush(db, err);
    return RLAB_OK;
}

int rlab_db_metric(rlab_db *db, int64_t run_id, int64_t step, const char *split, const char *name,
                   const char *protocol, double value, rlab_err *err)
{
    if (!name)
        return rlab_errf(err, RLAB_EINVAL, "metric: name required");
    int rc = check_run(db, run_id, "metric", err);
    if (rc)
        return rc;
    if (db->n_metrics == db->cap_metrics) {
        size_t cap = db->cap_metrics ? 2 * db->cap_metrics : 256;
        metric_row *p = rlab_realloc(db->metrics, cap * sizeof *p);
        if (!p)
            return rlab_errf(err, RLAB_ENOMEM, "metric: out of memory");
        db->metrics = p;
        db->cap_metrics = cap;
    }
    size_t mark = db->pool_used;
    metric_row r = {.run = run_id, .step = step, .value = value};
    r.split = pool_put(db, split);
    r.name = pool_put(db, name);
    r.protocol = pool_put(db, protocol);
    if (r.split == NO_STR - 1 || r.name == NO_STR - 1 || r.protocol == NO_STR - 1) {
        db->pool_used = mark;
        return rlab_errf(err, RLAB_ENOMEM, "metric: out of memory");
    }
    db->metrics[db->n_metrics++] = r;
    return maybe_flush(db, err);
}

int rlab_db_event(rlab_db *db, const rlab_db_event_rec *ev, rlab_err *err)
{
    if (!ev || !ev->kind)
        return rlab_errf(err, RLAB_EINVAL, "event: kind required");
    int rc = check_run(db, ev->run_id, "event", err);
    if (rc)
        return rc;
    if (db->n_events == db->cap_events) {
        size_t cap = db->cap_events ? 2 * db->cap_events : 256;
        event_row *p = rlab_realloc(db->events, cap * sizeof *p);
        if (!p)
            return rlab_errf(err, RLAB_ENOMEM, "event: out of memory");
        db->events = p;
        db->cap_events = cap;
    }
    size_t mark = db->pool_used;
    event_row r = {.run = ev->run_id,
                   .seq = ev->seq,
                   .round = ev->round,
                   .agent = ev->agent,
                   .vtime = ev->vtime};
    r.kind = pool_put(db, ev->kind);
    r.payload = pool_put(db, ev->payload_json);
    if (r.kind == NO_STR - 1 || r.payload == NO_STR - 1) {
        db->pool_used = mark;
        return rlab_errf(err, RLAB_ENOMEM, "event: out of memory");
    }
    db->events[db->n_events++] = r;
    return maybe_flush(db, err);
}

static void bind_pool_text(rlab_db *db, sqlite3_stmt *st, int i, size_t off)
{
    const char *s = pool_get(db, off);
    if (s) /* SQLITE_STATIC: the pool is not touched until the statement is reset */
        sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

/* Events are inserted EVENT_BLOCK rows per statement: one INSERT ... VALUES (...), (...), ...
 * pays SQLite's per-statement cost (step, halt, reset) once per block instead of once per row,
 * which is most of the cost of a simulation's event log. The remainder goes row by row. */
#define EVENT_BLOCK 32
#define EVENT_COLS 7

static void bind_event(rlab_db *db, sqlite3_stmt *st, int base, const event_row *r)
{
    sqlite3_bind_int64(st, base + 1, r->run);
    sqlite3_bind_int64(st, base + 2, r->seq);
    sqlite3_bind_int64(st, base + 3, r->round);
    sqlite3_bind_double(st, base + 4, r->vtime);
    if (r->agent >= 0)
        sqlite3_bind_int64(st, base + 5, r->agent);
    else
        sqlite3_bind_null(st, base + 5);
    bind_pool_text(db, st, base + 6, r->kind);
    bind_pool_text(db, st, base + 7, r->payload);
}

static int prep_event_block(rlab_db *db, rlab_err *err)
{
    if (db->st_event_block)
        return RLAB_OK;
    char sql[64 + EVENT_BLOCK * 24];
    size_t k = (size_t)snprintf(sql, sizeof sql,
                                "INSERT INTO events(run_id, seq, round, vtime, agent, kind,"
                                " payload) VALUES");
    for (int i = 0; i < EVENT_BLOCK && k < sizeof sql; i++)
        k += (size_t)snprintf(sql + k, sizeof sql - k, "%s(?,?,?,?,?,?,?)", i ? "," : "");
    return rlab_db__prep(db, &db->st_event_block, sql, SQLITE_PREPARE_PERSISTENT, err);
}

static int flush_rows(rlab_db *db, rlab_err *err)
{
    int rc = rlab_db__prep(db, &db->st_metric,
                           "INSERT INTO metrics(run_id, step, split, name, protocol, value)"
                           " VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
                           SQLITE_PREPARE_PERSISTENT, err);
    if (!rc)
        rc = rlab_db__prep(db, &db->st_event,
                           "INSERT INTO events(run_id, seq, round, vtime, agent, kind, payload)"
                           " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                           SQLITE_PREPARE_PERSISTENT, err);
    if (!rc && db->n_events >= EVENT_BLOCK)
        rc = prep_event_block(db, err);
    sqlite3_stmt *st = db->st_metric;
    for (size_t i = 0; !rc && i < db->n_metrics; i++) {
        const metric_row *r = &db->metrics[i];
        sqlite3_bind_int64(st, 1, r->run);
        sqlite3_bind_int64(st, 2, r->step);
        bind_pool_text(db, st, 3, r->split);
        bind_pool_text(db, st, 4, r->name);
        bind_pool_text(db, st, 5, r->protocol);
        sqlite3_bind_double(st, 6, r->value);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = rlab_db__sqlerr(db, err, "metric insert");
        sqlite3_reset(st);
    }
    size_t i = 0;
    for (st = db->st_event_block; !rc && i + EVENT_BLOCK <= db->n_events; i += EVENT_BLOCK) {
        for (int j = 0; j < EVENT_BLOCK; j++)
            bind_event(db, st, j * EVENT_COLS, &db->events[i + (size_t)j]);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = rlab_db__sqlerr(db, err, "event insert");
        sqlite3_reset(st);
    }
    for (st = db->st_event; !rc && i < db->n_events; i++) {
        bind_event(db, st, 0, &db->events[i]);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = rlab_db__sqlerr(db, err, "event insert");
        sqlite3_reset(st);
    }
    return rc;
}

int rlab_db_flush(rlab_db *db, rlab_err *err)
{
    size_t n = db->n_metrics + db->n_events;
    if (n == 0)
        return RLAB_OK;
    rlab_err e = {0};
    int rc = rlab_db_begin(db, &e);
    if (rc) /* nothing was tried (e.g. another writer held the lock past the busy timeout):
             * keep the rows for the next flush */
        return rlab_errf(err, rc, "store: flush of %zu buffered rows postponed: %s", n, e.msg);
    rc = flush_rows(db, &e);
    if (rc)
        rlab_db_rollback(db);
    else
        rc = rlab_db_commit(db, &e);
    /* A batch that failed is dropped: retrying rows that broke a constraint would fail
     * forever and block every later row. */
    db->n_metrics = db->n_events = 0;
    db->pool_used = 0;
    if (rc)
        return rlab_errf(err, rc, "store: flush of %zu buffered rows failed, rows dropped: %s", n,
                         e.msg);
    return RLAB_OK;
}

int rlab_db_dialogue(rlab_db *db, int64_t run_id, int64_t conversation, int64_t turn,
                     const char *role, const char *text, const char *extra_json, rlab_err *err)
{
    if (!role || !text)
        return rlab_errf(err, RLAB_EINVAL, "dialogue: role and text required");
    rlab_db_stmt *s = rlab_db_prepare(db,
                                      "INSERT INTO dialogues(run_id, conversation, turn, role,"
                                      " text, extra) VALUES(:run, :conv, :turn, :role, :text,"
                                      " :extra)",
                                      err);
    if (!s)
        return err ? err->code : RLAB_EDB;
    int rc = rlab_db_bind_int(s, ":run", run_id, err);
    rc = rc ? rc : rlab_db_bind_int(s, ":conv", conversation, err);
    rc = rc ? rc : rlab_db_bind_int(s, ":turn", turn, err);
    rc = rc ? rc : rlab_db_bind_text(s, ":role", role, err);
    rc = rc ? rc : rlab_db_bind_text(s, ":text", text, err);
    rc = rc ? rc : rlab_db_bind_text(s, ":extra", extra_json, err);
    rc = rc ? rc : rlab_db_step(s, err);
    rlab_db_finalize(s);
    return rc;
}

/* ---- datasets, artifacts, models, history ---------------------------------------------- */

/* Step an INSERT ... RETURNING id statement; *id may be NULL. */
static int step_returning(rlab_db_stmt *s, int64_t *id, rlab_err *err)
{
    int rc = rlab_db_step(s, err);
    if (rc == RLAB_DB_ROW) {
        if (id)
            *id = rlab_db_column_int(s, 0);
        rc = rlab_db_step(s, err); /* runs the statement to completion */
    }
    return rc;
}

int rlab_db_dataset_register(rlab_db *db, const rlab_db_dataset_info *info, int64_t *id,
                             rlab_err *err)
{
    if (!info || !info->name || !*info->name)
        return rlab_errf(err, RLAB_EINVAL, "dataset: name required");
    char hex[65];
    const char *sha = info->sha256;
    struct stat st;
    if (!sha && info->source && stat(info->source, &st) == 0 && S_ISREG(st.st_mode)) {
        int rc = rlab_sha256_file(info->source, hex, NULL, err);
        if (rc)
            return rc;
        sha = hex;
    }
    rlab_db_stmt *s = rlab_db_prepare(
        db,
        "INSERT INTO datasets(name, source, format, sha256, n_users, n_items, n_inter, kind,"
        " recipe, created)"
        " VALUES(:name, :source, :format, :sha, :nu, :ni, :nx, :kind, :recipe, :now)"
        " ON CONFLICT(name) DO UPDATE SET source = excluded.source, format = excluded.format,"
        " sha256 = excluded.sha256, n_users = excluded.n_users, n_items = excluded.n_items,"
        " n_inter = excluded.n_inter, kind = excluded.kind, recipe = excluded.recipe"
        " RETURNING id",
        err);
    if (!s)
        return err ? err->code : RLAB_EDB;
    int rc = rlab_db_bind_text(s, ":name", info->name, err);
    rc = rc ? rc : rlab_db_bind_text(s, ":source", info->source, err);
    rc = rc ? rc : rlab_db_bind_text(s, ":format", info->format, err);
    rc = rc ? rc : rlab_db_bind_text(s, ":sha", sha, err);
    rc = rc ? rc : rlab_db_bind_int(s, ":nu", info->n_users, err);
    rc = rc ? rc : rlab_db_bind_int(s, ":ni", info->n_items, err);
    rc = rc ? rc : rlab_db_bind_int(s, ":nx", info->n_inter, err);
    rc = rc ? rc : rlab_db_bind_text(s, ":kind", info->kind, err);
    rc = rc ? rc : rlab_db_bind_text(s, ":recipe", info->recipe, err);
    rc = rc ? rc : rlab_db_bind_double(s, ":now", rlab_wall_time(), err);
    rc = rc ? rc : step_returning(s, id, err);
    rlab_db_finalize(s);
    return rc;
}

int rlab_db_dataset_delete(rlab_db *db, const char *name, rlab_err *err)
{
    rlab_db_stmt *s = rlab_db_prepare(db, "DELETE FROM datasets WHERE name = :name", err);
    if (!s)
        return err ? err->code : RLAB_EDB;
    int rc = rlab_db_bind_text(s, ":name", name, err);
    rc = rc ? rc : rlab_db_step(s, err);
    rlab_db_finalize(s);
    return rc;
}

int rlab_db_setting_set(rlab_db *db, const char *key, const char *value, rlab_err *err)
{
    if (!key || !*key)
        return rlab_errf(err, RLAB_EINVAL, "setting: key required");
    rlab_db_stmt *s =
        value ? rlab_db_prepare(db,
                                "INSERT INTO settings(key, value, updated) VALUES(:k, :v, :now)"
                                " ON CONFLICT(key) DO UPDATE SET value = excluded.value,"
                                " updated = excluded.updated",
                                err)
              : rlab_db_prepare(db, "DELETE FROM settings WHERE key = :k", err);
    if (!s)
        return err ? err->code : RLAB_EDB;
    int rc = rlab_db_bind_text(s, ":k", key, err);
    if (value) {
        rc = rc ? rc : rlab_db_bind_text(s, ":v", value, err);
        rc = rc ? rc : rlab_db_bind_double(s, ":now", rlab_wall_time(), err);
    }
    rc = rc ? rc : rlab_db_step(s, err);
    rlab_db_finalize(s);
    return rc;
}

int rlab_db_setting_get(rlab_db *db, const char *key, char **value, rlab_err *err)
{
    *value = NULL;
    rlab_db_stmt *s = rlab_db_prepare(db, "SELECT value FROM settings WHERE key = :k", err);
    if (!s)
        return err ? err->code : RLAB_EDB;
    int rc = rlab_db_bind_text(s, ":k", key, err);
    if (!rc && (rc = rlab_db_step(s, err)) == RLAB_DB_ROW) {
        const char *v = rlab_db_column_text(s, 0);
        *value = rlab_strdup(v ? v : "");
        rc = *value ? RLAB_OK : rlab_errf(err, RLAB_ENOMEM, "out of memory");
    }
    rlab_db_finalize(s);
    return rc;
}

int rlab_db_dataset_id(rlab_db *db, const char *name, int64_t *id, rlab_err *err)
{
    rlab_db_stmt *s = rlab_db_prepare(db, "SELECT id FROM datasets WHERE name = :name", err);
    if (!s)
        return err ? err->code : RLAB_EDB;
    int rc = rlab_db_bind_text(s, ":name", name, err);
    if (!rc && (rc = rlab_db_step(s, err)) == RLAB_DB_ROW) {
        *id = rlab_db_column_int(s, 0);
        rc = RLAB_OK;
    } else if (!rc) {
        rc = rlab_errf(err, RLAB_ENOTFOUND, "dataset '%s' not found", name ? name : "");
    }
    rlab_db_finalize(s);
    return rc;
}

/* Insert the artifact row; data is bound as zeroblob(nblob) when blob, else NULL. */
static int artifact_insert(rlab_db *db, int64_t run_id, const char *name, const char *kind,
                           const char *path, const char *sha, int64_t bytes, int blob,
                           const void *data, int64_t *id, rlab_err *err)
{
    if (!name || !*name)
        return rlab_errf(err, RLAB_EINVAL, "artifact: name required");
    rlab_db_stmt *s = rlab_db_prepare(
        db,
        blob && !data
            ? "INSERT INTO artifacts(run_id, name, kind, path, data, sha256, bytes, created)"
              " VALUES(:run, :name, :kind, :path, zeroblob(:bytes), :sha, :bytes, :now)"
            : "INSERT INTO artifacts(run_id, name, kind, path, data, sha256, bytes, created)"
              " VALUES(:run, :name, :kind, :path, :data, :sha, :bytes, :now)",
        err);
    if (!s)
        return err ? err->code : RLAB_EDB;
    int rc =
        run_id > 0 ? rlab_db_bind_int(s, ":run", run_id, err) : rlab_db_bind_null(s, ":run", err);
    rc = rc ? rc : rlab_db_bind_text(s, ":name", name, err);
    rc = rc ? rc : rlab_db_bind_text(s, ":kind", kind, err);
    rc = rc ? rc : rlab_db_bind_text(s, ":path", path, err);
    rc = rc ? rc : rlab_db_bind_text(s, ":sha", sha, err);
    rc = rc ? rc : rlab_db_bind_int(s, ":bytes", bytes, err);
    if (!rc && (!blob || data)) /* an empty blob still needs a non-NULL pointer */
        rc = blob ? rlab_db_bind_blob(s, ":data", bytes ? data : "", (size_t)bytes, err)
                  : rlab_db_bind_null(s, ":data", err);
    rc = rc ? rc : rlab_db_bind_double(s, ":now", rlab_wall_time(), err);
    rc = rc ? rc : rlab_db_step(s, err);
    rlab_db_finalize(s);
    if (!rc)
        *id = rlab_db_last_insert_id(db);
    return rc;
}

/* Stream the file into the zero-filled BLOB of row id, hashing on the way. */
static int artifact_stream(rlab_db *db, int64_t id, FILE *f, int64_t bytes, char hex[65],
                           rlab_err *err)
{
    sqlite3_blob *b = NULL;
    if (sqlite3_blob_open(db->h, "main", "artifacts", "data", id, 1, &b) != SQLITE_OK)
        return rlab_db__sqlerr(db, err, "artifact: blob open");
    enum { CHUNK = 1 << 16 };
    unsigned char *buf = rlab_malloc(CHUNK);
    int rc = buf ? RLAB_OK : rlab_errf(err, RLAB_ENOMEM, "artifact: out of memory");
    rlab_sha256 h;
    rlab_sha256_init(&h);
    int64_t off = 0;
    while (!rc) {
        size_t got = fread(buf, 1, CHUNK, f);
        if (got == 0)
            break;
        if (off + (int64_t)got > bytes) {
            rc = rlab_errf(err, RLAB_EIO, "artifact: file grew while being stored");
            break;
        }
        if (sqlite3_blob_write(b, buf, (int)got, (int)off) != SQLITE_OK)
            rc = rlab_db__sqlerr(db, err, "artifact: blob write");
        rlab_sha256_update(&h, buf, got);
        off += (int64_t)got;
    }
    if (!rc && (ferror(f) || off != bytes))
        rc = rlab_errf(err, RLAB_EIO, "artifact: short read (%lld of %lld bytes)", (long long)off,
                       (long long)bytes);
    sqlite3_blob_close(b);
    rlab_free(buf);
    if (!rc) {
        unsigned char d[32];
        rlab_sha256_final(&h, d);
        rlab_sha256_hex(d, hex);
    }
    return rc;
}

int rlab_db_artifact_file(rlab_db *db, int64_t run_id, const char *name, const char *kind,
                          const char *path, int mode, int64_t *id, rlab_err *err)
{
    if (!path)
        return rlab_errf(err, RLAB_EINVAL, "artifact: path required");
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return rlab_errf(err, RLAB_EIO, "artifact: %s is not a readable file", path);
    char *real = realpath(path, NULL); /* record where the file really is */
    const char *where = real ? real : path;
    int64_t aid = 0;
    char hex[65];
    int rc;
    if (mode != RLAB_DB_ART_BLOB) {
        uint64_t n = 0;
        rc = rlab_sha256_file(path, hex, &n, err);
        if (!rc)
            rc =
                artifact_insert(db, run_id, name, kind, where, hex, (int64_t)n, 0, NULL, &aid, err);
    } else {
        FILE *f = fopen(path, "rb");
        if (!f) {
            free(real);
            return rlab_errf(err, RLAB_EIO, "artifact: cannot open %s: %s", path, strerror(errno));
        }
        rc = rlab_db_begin(db, err);
        if (!rc) {
            rc = artifact_insert(db, run_id, name, kind, where, NULL, (int64_t)st.st_size, 1, NULL,
                                 &aid, err);
            if (!rc)
                rc = artifact_stream(db, aid, f, (int64_t)st.st_size, hex, err);
            rlab_db_stmt *s = NULL;
            if (!rc && !(s = rlab_db_prepare(db,
                                             "UPDATE artifacts SET sha256 = :sha"
                                             " WHERE id = :id",
                                             err)))
                rc = RLAB_EDB;
            rc = rc ? rc : rlab_db_bind_text(s, ":sha", hex, err);
            rc = rc ? rc : rlab_db_bind_int(s, ":id", aid, err);
            rc = rc ? rc : rlab_db_step(s, err);
            rlab_db_finalize(s);
            if (rc)
                rlab_db_rollback(db);
            else
                rc = rlab_db_commit(db, err);
        }
        fclose(f);
    }
    free(real);
    if (!rc && id)
        *id = aid;
    return rc;
}

int rlab_db_artifact_blob(rlab_db *db, int64_t run_id, const char *name, const char *kind,
                          const void *data, size_t n, int64_t *id, rlab_err *err)
{
    if (!data && n)
        return rlab_errf(err, RLAB_EINVAL, "artifact: no data");
    char hex[65];
    rlab_sha256_buf(data, n, hex);
    int64_t aid = 0;
    int rc = artifact_insert(db, run_id, name, kind, NULL, hex, (int64_t)n, 1, data ? data : "",
                             &aid, err);
    if (!rc && id)
        *id = aid;
    return rc;
}

int rlab_db_artifact_export(rlab_db *db, int64_t artifact_id, const char *path, rlab_err *err)
{
    rlab_db_stmt *s = rlab_db_prepare(db,
                                      "SELECT data IS NULL, sha256, length(data), path"
                                      " FROM artifacts WHERE id = :id",
                                      err);
    if (!s)
        return err ? err->code : RLAB_EDB;
    int rc = rlab_db_bind_int(s, ":id", artifact_id, err);
    char want[65] = "";
    int64_t bytes = 0;
    if (!rc && (rc = rlab_db_step(s, err)) == RLAB_DB_ROW) {
        rc = RLAB_OK;
        if (rlab_db_column_int(s, 0)) {
            const char *p = rlab_db_column_text(s, 3);
            rc = rlab_errf(err, RLAB_ENOTFOUND, "artifact %lld has no stored bytes (file: %s)",
                           (long long)artifact_id, p ? p : "?");
        } else {
            const char *h = rlab_db_column_text(s, 1);
            snprintf(want, sizeof want, "%s", h ? h : "");
            bytes = rlab_db_column_int(s, 2);
        }
    } else if (!rc) {
        rc = rlab_errf(err, RLAB_ENOTFOUND, "no artifact %lld", (long long)artifact_id);
    }
    rlab_db_finalize(s);
    if (rc)
        return rc;
    FILE *f = fopen(path, "wb");
    if (!f)
        return rlab_errf(err, RLAB_EIO, "artifact: cannot create %s: %s", path, strerror(errno));
    sqlite3_blob *b = NULL;
    if (sqlite3_blob_open(db->h, "main", "artifacts", "data", artifact_id, 0, &b) != SQLITE_OK)
        rc = rlab_db__sqlerr(db, err, "artifact: blob open");
    enum { CHUNK = 1 << 16 };
    unsigned char *buf = rc ? NULL : rlab_malloc(CHUNK);
    if (!rc && !buf)
        rc = rlab_errf(err, RLAB_ENOMEM, "artifact: out of memory");
    rlab_sha256 h;
    rlab_sha256_init(&h);
    for (int64_t off = 0; !rc && off < bytes;) {
        int n = (int)(bytes - off < CHUNK ? bytes - off : CHUNK);
        if (sqlite3_blob_read(b, buf, n, (int)off) != SQLITE_OK)
            rc = rlab_db__sqlerr(db, err, "artifact: blob read");
        else if (fwrite(buf, 1, (size_t)n, f) != (size_t)n)
            rc = rlab_errf(err, RLAB_EIO, "artifact: write to %s failed", path);
        rlab_sha256_update(&h, buf, (size_t)n);
        off += n;
    }
    sqlite3_blob_close(b);
    rlab_free(buf);
    if (fclose(f) != 0 && !rc)
        rc = rlab_errf(err, RLAB_EIO, "artifact: write to %s failed", path);
    if (!rc) {
        unsigned char d[32];
        char got[65];
        rlab_sha256_final(&h, d);
        rlab_sha256_hex(d, got);
        if (want[0] && strcmp(got, want) != 0)
            rc = rlab_errf(err, RLAB_EFORMAT,
                           "artifact %lld: checksum mismatch (stored %.12s..., "
                           "read %.12s...)",
                           (long long)artifact_id, want, got);
    }
    if (rc)
        remove(path);
    return rc;
}

/* The models upsert of rlab_db_model_register; *old receives the artifact the name held
 * before (0 = none or a new name). */
static int model_upsert(rlab_db *db, const char *name, const char *kind, const char *plugin,
                        int64_t run_id, int64_t artifact_id, int64_t *id, int64_t *old,
                        rlab_err *err)
{
    *old = 0;
    rlab_db_stmt *p = rlab_db_prepare(db, "SELECT artifact_id FROM models WHERE name = :name", err);
    if (!p)
        return err ? err->code : RLAB_EDB;
    int rc = rlab_db_bind_text(p, ":name", name, err);
    if (!rc)
        while ((rc = rlab_db_step(p, err)) == RLAB_DB_ROW)
            *old = rlab_db_column_int(p, 0); /* NULL reads as 0 */
    rlab_db_finalize(p);
    if (rc)
        return rc;
    rlab_db_stmt *s = rlab_db_prepare(
        db,
        "INSERT INTO models(name, kind, plugin, run_id, artifact_id, created)"
        " VALUES(:name, :kind, :plugin, :run, :art, :now) ON CONFLICT(name) DO UPDATE SET"
        " kind = excluded.kind, plugin = excluded.plugin, run_id = excluded.run_id,"
        " artifact_id = excluded.artifact_id, created = excluded.created RETURNING id",
        err);
    if (!s)
        return err ? err->code : RLAB_EDB;
    rc = rlab_db_bind_text(s, ":name", name, err);
    rc = rc ? rc : rlab_db_bind_text(s, ":kind", kind, err);
    rc = rc ? rc : rlab_db_bind_text(s, ":plugin", plugin, err);
    if (!rc)
        rc = run_id > 0 ? rlab_db_bind_int(s, ":run", run_id, err)
                        : rlab_db_bind_null(s, ":run", err);
    if (!rc)
        rc = artifact_id > 0 ? rlab_db_bind_int(s, ":art", artifact_id, err)
                             : rlab_db_bind_null(s, ":art", err);
    rc = rc ? rc : rlab_db_bind_double(s, ":now", rlab_wall_time(), err);
    rc = rc ? rc : step_returning(s, id, err);
    rlab_db_finalize(s);
    return rc;
}

int rlab_db_model_register(rlab_db *db, const char *name, const char *kind, const char *plugin,
                           int64_t run_id, int64_t artifact_id, int64_t *id, rlab_err *err)
{
    if (!name || !*name)
        return rlab_errf(err, RLAB_EINVAL, "model: name required");
    /* One transaction: the upsert, then the pruning of the blob it replaced. */
    int rc = rlab_db_begin(db, err);
    if (rc)
        return rc;
    int64_t old = 0;
    rc = model_upsert(db, name, kind, plugin, run_id, artifact_id, id, &old, err);
    /* The blob the name held before is dead weight once no model row points at it: delete it
     * when it is a saved model (kind 'model', bytes in the store). A run's checkpoints (other
     * kinds), path-only records and blobs another name still uses are kept. */
    if (!rc && old > 0 && old != artifact_id) {
        rlab_db_stmt *d = rlab_db_prepare(db,
                                          "DELETE FROM artifacts WHERE id = :old AND kind ="
                                          " 'model' AND data IS NOT NULL AND NOT EXISTS (SELECT"
                                          " 1 FROM models WHERE artifact_id = :old)",
                                          err);
        rc = d ? rlab_db_bind_int(d, ":old", old, err) : RLAB_EDB;
        rc = rc ? rc : rlab_db_step(d, err);
        rlab_db_finalize(d);
    }
    if (rc) {
        rlab_db_rollback(db);
        return rc;
    }
    return rlab_db_commit(db, err);
}

int rlab_db_history_add(rlab_db *db, const char *line, rlab_err *err)
{
    if (!line || !*line)
        return RLAB_OK;
    rlab_db_stmt *s = rlab_db_prepare(db, "INSERT INTO history(time, line) VALUES(:t, :line)", err);
    if (!s)
        return err ? err->code : RLAB_EDB;
    int rc = rlab_db_bind_double(s, ":t", rlab_wall_time(), err);
    rc = rc ? rc : rlab_db_bind_text(s, ":line", line, err);
    rc = rc ? rc : rlab_db_step(s, err);
    rlab_db_finalize(s);
    return rc;
}

int rlab_db_history_each(rlab_db *db, int max, int (*fn)(const char *line, void *ud), void *ud,
                         rlab_err *err)
{
    rlab_db_stmt *s = rlab_db_prepare(db,
                                      "SELECT line FROM (SELECT id, line FROM history"
                                      " ORDER BY id DESC LIMIT :max) ORDER BY id",
                                      err);
    if (!s)
        return err ? err->code : RLAB_EDB;
    int rc = rlab_db_bind_int(s, ":max", max, err);
    while (!rc && (rc = rlab_db_step(s, err)) == RLAB_DB_ROW) {
        rc = RLAB_OK;
        if (fn(rlab_db_column_text(s, 0), ud))
            break;
    }
    rlab_db_finalize(s);
    return rc;
}
