/*
 * core/store: the session store, one SQLite file per workspace (default ./reclab.db).
 *
 * It keeps datasets, runs (with their config, seed, versions and status), metrics per
 * step, artifacts (checkpoints as files or BLOBs, with SHA-256), events (simulation and
 * attack logs), dialogues (CRS turns), models and shell history. Plugins add their own
 * tables, prefixed `<plugin>_`, through versioned migrations.
 *
 *     rlab_err err = {0};
 *     rlab_db *db = rlab_db_open("reclab.db", 0, &err);     // creates / upgrades the schema
 *     if (!db) { fprintf(stderr, "%s\n", err.msg); return 1; }
 *     rlab_db_run_info ri = {.plugin = "seqrec", .model_kind = "sasrec", .dataset = "ml-1m",
 *                            .config_json = "{\"epochs\":20}", .seed = 2023};
 *     int64_t run;
 *     if (rlab_db_run_begin(db, &ri, &run, &err)) ...
 *     for (int ep = 0; ep < 20; ep++)                          // buffered: no disk wait
 *         rlab_db_metric(db, run, ep, "valid", "ndcg@10", "full", ndcg[ep], &err);
 *     rlab_db_run_end(db, run, RLAB_RUN_DONE, NULL, &err);     // flushes the buffer
 *     rlab_db_close(db);
 *
 * Connection settings applied on every open: journal_mode=WAL, synchronous=NORMAL,
 * foreign_keys=ON, busy_timeout (5 s), extended result codes, prepared statements only
 * (SQLITE_PREPARE_PERSISTENT for the hot inserts). Times are stored as REAL Unix seconds
 * (show them with `datetime(started, 'unixepoch')`).
 *
 * Schema versions. The core schema is an append-only list of migration steps
 * (rlab_db_core_migrations); PRAGMA user_version is the number of steps applied. Opening
 * an older file applies the pending steps in one BEGIN IMMEDIATE transaction; a file with
 * a newer version than this code knows is refused (RLAB_EVERSION). Plugin tables are
 * versioned separately in plugin_schema(plugin, version) by rlab_db_plugin_migrate.
 *
 * Batched writes. Metrics and events go to a per-connection buffer that is written in one
 * transaction every `rows` rows or `ms` milliseconds (checked at each write), on
 * rlab_db_flush, on rlab_db_run_end, before rlab_db_query and on close. With WAL and
 * synchronous=NORMAL a commit does not fsync, so a training loop only pays for a memory
 * copy per metric. Rows still in the buffer when the process dies are lost; everything
 * flushed before is intact.
 *
 * Dead runs. A run in status `running` whose owner died (crash, kill -9, Ctrl-C in batch
 * mode) is marked `interrupted` by the next rlab_db_open (or rlab_db_recover_runs). How
 * the store knows the owner died: the owning connection holds an open-file-description
 * lock (Linux F_OFD_SETLK) on byte <run id> of the sidecar file "<db>-runs" (next to the
 * -wal and -shm files) from before the run row is committed until after the run ends. The
 * kernel drops the lock when the process dies, however it dies, and a live owner's lock
 * can never be missed: unlike the recorded pid (which the OS reuses) or a lock file's
 * existence (which survives a crash), the lock exists exactly while the owner does. OFD
 * locks also conflict between two connections of the same process, so a second
 * connection in the same program never takes a live run for dead. The check runs inside
 * BEGIN IMMEDIATE, so it cannot race with a run that is just starting or ending. Caveats:
 * the sidecar must be on a file system with working POSIX locks (local disks, NFSv4);
 * a child forked without exec by the owner inherits the lock (the file is opened
 * O_CLOEXEC, so exec'd children do not). The pid and host name are still recorded in the
 * run row, for people.
 *
 * Thread rules: a connection (rlab_db) and its statements belong to one thread at a time.
 * Each worker thread opens its own connection to the same file; WAL lets one writer and
 * many readers proceed concurrently, and writers wait up to the busy timeout for each
 * other. Functions not taking an rlab_db (sha256, rlab_db_core_migrations) are
 * thread-safe.
 *
 * Errors: every SQLite failure is RLAB_EDB with a message naming the operation and
 * SQLite's own text; schema version problems are RLAB_EVERSION; refused queries and bad
 * arguments RLAB_EINVAL.
 */
#ifndef RLAB_STORE_H
#define RLAB_STORE_H

#include "base/base.h"

#include <stddef.h>
#include <stdint.h>

typedef struct rlab_db rlab_db;
typedef struct rlab_db_stmt rlab_db_stmt;

/* ---- open / close -------------------------------------------------------------------- */

/* Open flags. */
enum {
    RLAB_DB_NO_RECOVER = 1u << 0, /* do not mark dead runs interrupted at open */
    RLAB_DB_NO_UPGRADE = 1u << 1, /* refuse (RLAB_EVERSION) instead of migrating an older file */
};

/* Default path of a workspace's store. */
#define RLAB_DB_DEFAULT_PATH "reclab.db"

/* Open (creating if missing) the store at path, apply the connection settings, migrate the
 * core schema to the latest version and mark dead runs interrupted. path is borrowed;
 * ":memory:" gives a private in-memory store (no WAL, no run locks; for tests). Returns NULL
 * and fills err on failure: RLAB_EVERSION for a file written by a newer reclab (or an older
 * one with RLAB_DB_NO_UPGRADE), RLAB_EFORMAT for a file that is not a reclab store, RLAB_EDB
 * / RLAB_EIO otherwise. The caller closes the result with rlab_db_close. */
RLAB_API rlab_db *rlab_db_open(const char *path, unsigned flags, rlab_err *err);

/* Flush buffered rows, mark runs this connection still owns `interrupted` ("store closed
 * while the run was active"), finalize internal statements and close. Failures are logged
 * (call rlab_db_flush first if you need the error). NULL is a no-op. Statements from
 * rlab_db_prepare must be finalized first. */
RLAB_API void rlab_db_close(rlab_db *db);

/* The path the store was opened with (borrowed from db). */
RLAB_API const char *rlab_db_path(const rlab_db *db);

/* The copy of the write-ahead log into the database file (SQLite's checkpoint). By default the
 * commit that takes the log past 1,000 pages runs it on the committing thread: after a commit
 * of a 170 MB blob that is another 170 MB read and written and two syncs before the caller goes
 * on. rlab_db_autocheckpoint(db, 0) stops that for this connection's commits (the log grows
 * until a checkpoint), (db, 1) restores it. rlab_db_checkpoint_background starts a passive
 * checkpoint of the log as it is on a thread with its own connection (it runs beside this
 * connection's reads and writes, which see the same data either way), after waiting for the
 * previous one; rlab_db_checkpoint_wait waits for it and returns RLAB_EDB if it failed;
 * rlab_db_close waits for it too. No-ops for ":memory:". Returns RLAB_OK or RLAB_EDB. */
RLAB_API int rlab_db_autocheckpoint(rlab_db *db, int on, rlab_err *err);
RLAB_API int rlab_db_checkpoint_background(rlab_db *db, rlab_err *err);
RLAB_API int rlab_db_checkpoint_wait(rlab_db *db, rlab_err *err);

/* Number of runs marked interrupted by the last open or rlab_db_recover_runs. */
RLAB_API int rlab_db_recovered(const rlab_db *db);

/* Mark every `running` run whose owner is gone as `interrupted` (see "Dead runs"); *n
 * (may be NULL) receives the count. Done automatically by rlab_db_open. */
RLAB_API int rlab_db_recover_runs(rlab_db *db, int *n, rlab_err *err);

/* ---- schema versions ----------------------------------------------------------------- */

/* One migration step: SQL text (may hold several statements) and/or a C function, run in
 * that order inside the upgrade transaction. Lists are append-only: the version of a
 * schema is the number of steps applied. Strings are static. fn, if set, uses only db and
 * must not begin or end transactions. */
typedef struct rlab_migration {
    const char *sql;
    int (*fn)(rlab_db *db, rlab_err *err);
    const char *note; /* one line: what the step changes */
} rlab_migration;

/* The core schema's migration list (static, thread-safe); *n receives its length, which is
 * the latest core version. Exposed for the `schema` command and the upgrade tests. */
RLAB_API const rlab_migration *rlab_db_core_migrations(int *n);

/* The core schema version of the open file (PRAGMA user_version). */
RLAB_API int rlab_db_schema_version(rlab_db *db, rlab_err *err);

/* Bring the tables of plugin `plugin` (lowercase [a-z0-9_], starting with a letter) up to
 * version n by running list[stored..n-1] in one BEGIN IMMEDIATE transaction, and record n in
 * plugin_schema. A stored version newer than n is refused with RLAB_EVERSION ("session was
 * written by seqrec schema 5; this plugin knows 4"). While the steps run, SQLite's
 * authorizer only lets them create, alter, drop or write objects named `<plugin>_...` (and
 * indexes/triggers only on such tables); anything else (a table named without the prefix,
 * a write to a core table, BEGIN/COMMIT, ATTACH, setting a pragma) rolls the whole upgrade
 * back with RLAB_EINVAL naming the step and the object. list is borrowed. */
RLAB_API int rlab_db_plugin_migrate(rlab_db *db, const char *plugin, const rlab_migration *list,
                                    int n, rlab_err *err);

/* Stored schema version of a plugin (0 when it has none yet). */
RLAB_API int rlab_db_plugin_version(rlab_db *db, const char *plugin, int *version, rlab_err *err);

/* ---- runs ---------------------------------------------------------------------------- */

typedef enum rlab_run_status {
    RLAB_RUN_RUNNING = 0,
    RLAB_RUN_DONE,
    RLAB_RUN_FAILED,
    RLAB_RUN_INTERRUPTED,
} rlab_run_status;

/* Name stored in runs.status ("running", "done", "failed", "interrupted"); NULL if out of
 * range. */
RLAB_API const char *rlab_run_status_name(rlab_run_status s);
/* Status a run gets when its command returned code: RLAB_OK -> done, RLAB_ECANCELED ->
 * interrupted (STYLE.md: cancellation is a status), anything else -> failed. */
RLAB_API rlab_run_status rlab_run_status_for(int code);

/* What a run records at its start. All strings borrowed; NULL stores NULL. */
typedef struct rlab_db_run_info {
    const char *plugin;         /* required ("core" for host commands) */
    const char *model_kind;     /* "sasrec", "bpr"... */
    const char *name;           /* free label */
    const char *dataset;        /* dataset name */
    const char *config_json;    /* must be valid JSON or NULL */
    uint64_t seed;              /* stored as a signed 64-bit integer (same bits) */
    const char *plugin_version; /* the plugin descriptor's version */
    int64_t parent_id;          /* run this one derives from, 0 = none */
    int no_seed;                /* 1: the run has no seed (stores NULL, not 0) */
} rlab_db_run_info;

/* Insert a `running` run recording info plus reclab version, host name, pid and start time,
 * take its liveness lock, and return its id in *run_id. The connection owns the run until
 * rlab_db_run_end. Errors: RLAB_EINVAL (no plugin, bad JSON), RLAB_EDB, RLAB_EIO (lock). */
RLAB_API int rlab_db_run_begin(rlab_db *db, const rlab_db_run_info *info, int64_t *run_id,
                               rlab_err *err);

/* Flush buffered rows, then set the run's final status (DONE, FAILED or INTERRUPTED), end
 * time and message (may be NULL; borrowed), and release its lock. Errors: RLAB_EINVAL (bad
 * status), RLAB_ENOTFOUND (no such run), RLAB_EDB. */
RLAB_API int rlab_db_run_end(rlab_db *db, int64_t run_id, rlab_run_status status,
                             const char *message, rlab_err *err);

/* Fill in a run's model kind and dataset when they were not known at rlab_db_run_begin (a
 * command whose dataset argument is a path, a model registered at the end of training):
 * each non-NULL value is set only where the column is still NULL. Errors: RLAB_ENOTFOUND
 * (no such run), RLAB_EDB. */
RLAB_API int rlab_db_run_describe(rlab_db *db, int64_t run_id, const char *model_kind,
                                  const char *dataset, rlab_err *err);

/* Status of a run (for tests and the ui). */
RLAB_API int rlab_db_run_status(rlab_db *db, int64_t run_id, rlab_run_status *status,
                                rlab_err *err);

/* ---- metrics, events, dialogues (buffered where noted) -------------------------------- */

/* Buffer one metric row (run, step, split "train"/"valid"/"test", name "ndcg@10", protocol
 * "full"/"sampled-100"..., value). Strings are copied. The run must exist (checked when the
 * run id changes, so errors surface here, not at flush). May flush (see "Batched writes"),
 * in which case flush errors are returned. */
RLAB_API int rlab_db_metric(rlab_db *db, int64_t run_id, int64_t step, const char *split,
                            const char *name, const char *protocol, double value, rlab_err *err);

/* One event of a simulation or attack log. */
typedef struct rlab_db_event_rec {
    int64_t run_id;
    int64_t seq;              /* order within the run, set by the caller */
    int64_t round;            /* simulation round / step */
    double vtime;             /* virtual time */
    int64_t agent;            /* acting agent (user index); < 0 stores NULL */
    const char *kind;         /* "watch", "chat", "post"... required */
    const char *payload_json; /* JSON text or NULL (not validated: the hot path) */
} rlab_db_event_rec;

/* Buffer one event (strings copied). Same rules as rlab_db_metric. */
RLAB_API int rlab_db_event(rlab_db *db, const rlab_db_event_rec *ev, rlab_err *err);

/* Write all buffered rows in one transaction. If the transaction cannot start (another
 * writer held the lock past the busy timeout) the rows stay buffered for the next flush;
 * if an insert fails the batch is rolled back and dropped (err says how many rows). */
RLAB_API int rlab_db_flush(rlab_db *db, rlab_err *err);

/* Flush policy: every `rows` buffered rows (>= 1) or when the oldest buffered row is `ms`
 * milliseconds old (>= 0), checked at each write. Defaults: 1024 rows, 250 ms. */
RLAB_API void rlab_db_set_flush(rlab_db *db, int rows, double ms);

/* Rows currently buffered (not yet on disk). */
RLAB_API int rlab_db_buffered(const rlab_db *db);

/* Insert one dialogue turn right away (not buffered). conversation and turn are ids chosen
 * by the caller; extra_json may be NULL. */
RLAB_API int rlab_db_dialogue(rlab_db *db, int64_t run_id, int64_t conversation, int64_t turn,
                              const char *role, const char *text, const char *extra_json,
                              rlab_err *err);

/* ---- datasets, artifacts, models, history -------------------------------------------- */

typedef struct rlab_db_dataset_info {
    const char *name;   /* unique; required */
    const char *source; /* path or "builtin:demo" */
    const char *format; /* "ml-100k", "recbole", "sasrec", "redial"... */
    const char *sha256; /* hex; NULL = hash the `source` file when it is a readable file */
    int64_t n_users, n_items, n_inter; /* dialogues: conversations, items, turns */
    const char *kind;                  /* "interactions" or "dialogues" (NULL stores NULL) */
    const char *recipe; /* JSON: how the host rebuilds it on reopen (host.h); NULL = cannot */
} rlab_db_dataset_info;

/* Register (or update, keyed by name) a dataset; *id (may be NULL) receives its id. */
RLAB_API int rlab_db_dataset_register(rlab_db *db, const rlab_db_dataset_info *info, int64_t *id,
                                      rlab_err *err);
/* Forget a dataset row (a removed dataset must not come back when the workspace reopens).
 * No row is not an error. */
RLAB_API int rlab_db_dataset_delete(rlab_db *db, const char *name, rlab_err *err);

/* Workspace settings (table settings: key, value), e.g. "key-metric" = "test.ndcg@10". set with
 * value NULL removes the key; get gives *value = NULL when unset (caller frees with rlab_free). */
RLAB_API int rlab_db_setting_set(rlab_db *db, const char *key, const char *value, rlab_err *err);
RLAB_API int rlab_db_setting_get(rlab_db *db, const char *key, char **value, rlab_err *err);
/* Id of a dataset by name. RLAB_ENOTFOUND when missing. */
RLAB_API int rlab_db_dataset_id(rlab_db *db, const char *name, int64_t *id, rlab_err *err);

/* Artifact storage modes. */
enum {
    RLAB_DB_ART_PATH = 0, /* record the file's path, size and sha256 only */
    RLAB_DB_ART_BLOB = 1, /* copy the file's bytes into the store (streamed, not slurped) */
};

/* Record the file at path as an artifact of run_id (0 = no run) named name, of kind kind
 * ("checkpoint", "safetensors", "csv"...), computing its SHA-256 and size. mode is
 * RLAB_DB_ART_PATH or RLAB_DB_ART_BLOB. *id may be NULL. Errors: RLAB_EIO, RLAB_EDB. */
RLAB_API int rlab_db_artifact_file(rlab_db *db, int64_t run_id, const char *name, const char *kind,
                                   const char *path, int mode, int64_t *id, rlab_err *err);
/* Store n bytes from memory as a BLOB artifact. */
RLAB_API int rlab_db_artifact_blob(rlab_db *db, int64_t run_id, const char *name, const char *kind,
                                   const void *data, size_t n, int64_t *id, rlab_err *err);
/* Copy a BLOB artifact's bytes into a file at path (the checksum is verified: a mismatch is
 * RLAB_EFORMAT). Path-only artifacts give RLAB_ENOTFOUND. */
RLAB_API int rlab_db_artifact_export(rlab_db *db, int64_t artifact_id, const char *path,
                                     rlab_err *err);

/* Register (or replace, keyed by name) a trained model: kind, plugin, the run that made it
 * and the artifact holding it (0 = none for either). *id may be NULL. Replacing prunes the
 * artifact the name held before when it is a saved model's blob (kind "model", bytes in
 * the store) that no other model row uses: only the latest blob per name stays. A run's
 * checkpoints (other kinds) and path-only records are kept. One transaction. */
RLAB_API int rlab_db_model_register(rlab_db *db, const char *name, const char *kind,
                                    const char *plugin, int64_t run_id, int64_t artifact_id,
                                    int64_t *id, rlab_err *err);

/* Append one shell history line (empty lines are ignored). */
RLAB_API int rlab_db_history_add(rlab_db *db, const char *line, rlab_err *err);
/* Call fn(line, ud) for the last `max` history lines, oldest first (for readline's
 * add_history at start-up). fn returning nonzero stops early. */
RLAB_API int rlab_db_history_each(rlab_db *db, int max, int (*fn)(const char *line, void *ud),
                                  void *ud, rlab_err *err);

/* ---- queries for the `sql` command and reclab.db.query --------------------------------- */

/* A typed value: parameters in, cells out. s/n hold TEXT (NUL-terminated, n = strlen) and
 * BLOB bytes. */
typedef enum rlab_db_type {
    RLAB_DB_NULL = 0,
    RLAB_DB_INT,
    RLAB_DB_REAL,
    RLAB_DB_TEXT,
    RLAB_DB_BLOB,
} rlab_db_type;

typedef struct rlab_db_value {
    rlab_db_type type;
    int64_t i;
    double r;
    const char *s;
    size_t n;
} rlab_db_value;

/* Query flags. */
enum {
    /* Allow INSERT/UPDATE/DELETE/CREATE/DROP/ALTER on tables that are not core tables
     * (plugin tables, the user's own). Core tables stay read-only whatever the flags. */
    RLAB_DB_ALLOW_WRITES = 1u << 0,
};

/* Row callback: ncol column names and cells, valid only during the call. stmt_index counts
 * the statements of the query from 0. Return nonzero to stop (the query then returns
 * RLAB_OK). */
typedef int (*rlab_db_row_fn)(void *ud, int stmt_index, int ncol, const char *const *names,
                              const rlab_db_value *cells);

/* Run sql (one or more statements) with positional parameters params[0..nparams-1] bound to
 * ?1..?N of every statement that has parameters (such a statement must use exactly nparams),
 * calling fn for each result row (fn may be NULL). Buffered rows are flushed first so
 * queries see them. Read-only by default: SQLite's authorizer refuses any write, DDL,
 * transaction control, ATTACH or pragma assignment, with RLAB_EINVAL and a message such as
 * "DELETE on core table 'runs' refused: core tables are read-only from queries". With
 * RLAB_DB_ALLOW_WRITES the user's own tables, views and indexes may be created and written,
 * but never a trigger (CREATE [TEMP] TRIGGER is refused: its body would run later, under
 * statements the guard does not see). */
RLAB_API int rlab_db_query(rlab_db *db, const char *sql, const rlab_db_value *params, int nparams,
                           unsigned flags, rlab_db_row_fn fn, void *ud, rlab_err *err);

/* A materialised result: the rows of the last statement that returned columns. Every
 * string and blob is owned by the result. */
typedef struct rlab_db_result {
    int ncol, nrow;
    char **names;         /* [ncol] */
    rlab_db_value *cells; /* [nrow * ncol], row-major */
    int changes;          /* rows changed by the last statement (with ALLOW_WRITES) */
    size_t cap;           /* internal */
} rlab_db_result;

/* Same as rlab_db_query but collecting the rows; returns NULL on error. Free with
 * rlab_db_result_free. */
RLAB_API rlab_db_result *rlab_db_query_table(rlab_db *db, const char *sql,
                                             const rlab_db_value *params, int nparams,
                                             unsigned flags, rlab_err *err);
/* Limits and cancellation of one query (the `sql` command, reclab.db.query). Zero / NULL
 * fields mean "none". */
typedef struct rlab_db_limits {
    /* Keep at most max_rows rows of the result: the query stops at the first row past it and
     * sets truncated (not an error). */
    int64_t max_rows;
    /* Wall-clock limit in seconds: past it the running statement stops and the query fails
     * with RLAB_EDB "query stopped by its time limit (N s)". */
    double max_seconds;
    /* Polled about every thousand SQLite virtual-machine steps, also while a statement
     * computes without returning rows (count(*) over a runaway recursive CTE): nonzero stops
     * the query with RLAB_ECANCELED. Called on the querying thread; keep it cheap (an atomic
     * load). */
    int (*cancelled)(void *ud);
    void *ud;
    int truncated; /* out: 1 when max_rows cut the result */
} rlab_db_limits;

/* rlab_db_query_table under limits (lim may be NULL: none). The limits hold only for this
 * call (SQLite's progress handler of the connection is set and removed around it). */
RLAB_API rlab_db_result *rlab_db_query_limited(rlab_db *db, const char *sql,
                                               const rlab_db_value *params, int nparams,
                                               unsigned flags, rlab_db_limits *lim, rlab_err *err);
RLAB_API void rlab_db_result_free(rlab_db_result *r);
/* Cell (row, col) of a result (no bounds check beyond RLAB_ASSERT). */
RLAB_API const rlab_db_value *rlab_db_result_cell(const rlab_db_result *r, int row, int col);

/* True when name is one of the core tables (datasets, runs, metrics, ...). */
RLAB_API int rlab_db_is_core_table(const char *name);

/* ---- statement helpers (fossil db.c style), for the host and plugins ------------------ */
/*
 *     rlab_db_stmt *s = rlab_db_prepare(db, "SELECT value FROM metrics"
 *                                           " WHERE run_id = :run AND name = :name", &err);
 *     rlab_db_bind_int(s, ":run", run, &err);
 *     rlab_db_bind_text(s, ":name", "ndcg@10", &err);   // ":nmae" would be an error
 *     while ((rc = rlab_db_step(s, &err)) == RLAB_DB_ROW)
 *         sum += rlab_db_column_double(s, 0);
 *     rlab_db_finalize(s);                               // rc != RLAB_OK -> err is set
 *
 * These are trusted: plugins keep to their own tables by convention and review. The one
 * guard here is against triggers: a statement whose triggers (however they were created)
 * would write a core table fails to prepare, RLAB_EDB "trigger 'x' would UPDATE core table
 * 'runs': refused ...". Binding a name the statement does not have is an error, and stepping a
 * statement with a parameter never bound since prepare (or rlab_db_clear_bindings) is an error too.
 * Text and blobs are copied at bind time (except by rlab_db_bind_blob_static).
 */

/* Status returned by rlab_db_step when a row is ready (distinct from every RLAB_E*). */
#define RLAB_DB_ROW 100

/* Prepare exactly one statement (trailing SQL other than spaces, comments and ';' is
 * RLAB_EINVAL). NULL on error. _persistent hints SQLite that the statement is kept and
 * reused many times (SQLITE_PREPARE_PERSISTENT). */
RLAB_API rlab_db_stmt *rlab_db_prepare(rlab_db *db, const char *sql, rlab_err *err);
RLAB_API rlab_db_stmt *rlab_db_prepare_persistent(rlab_db *db, const char *sql, rlab_err *err);
/* Bind by name (":x", "@x", "$x"; a bare "x" means ":x"). RLAB_ENOTFOUND naming the
 * parameter and the SQL when the statement has no such parameter. */
RLAB_API int rlab_db_bind_int(rlab_db_stmt *s, const char *name, int64_t v, rlab_err *err);
RLAB_API int rlab_db_bind_double(rlab_db_stmt *s, const char *name, double v, rlab_err *err);
/* v == NULL binds NULL. */
RLAB_API int rlab_db_bind_text(rlab_db_stmt *s, const char *name, const char *v, rlab_err *err);
RLAB_API int rlab_db_bind_blob(rlab_db_stmt *s, const char *name, const void *v, size_t n,
                               rlab_err *err);
RLAB_API int rlab_db_bind_null(rlab_db_stmt *s, const char *name, rlab_err *err);
/* rlab_db_bind_blob without the copy (for a large blob written once, e.g. an image of many
 * megabytes): v must stay alive and unchanged until the parameter is bound again or the
 * statement is finalized (a reset keeps the binding, and with it the pointer). */
RLAB_API int rlab_db_bind_blob_static(rlab_db_stmt *s, const char *name, const void *v, size_t n,
                                      rlab_err *err);
/* Returns RLAB_DB_ROW with a row ready, RLAB_OK when done (the statement is then reset,
 * keeping its bindings), or an error code (the statement is reset). */
RLAB_API int rlab_db_step(rlab_db_stmt *s, rlab_err *err);
/* Reset to run again; bindings are kept. */
RLAB_API void rlab_db_reset(rlab_db_stmt *s);
RLAB_API void rlab_db_clear_bindings(rlab_db_stmt *s);
RLAB_API int rlab_db_column_count(rlab_db_stmt *s);
RLAB_API const char *rlab_db_column_name(rlab_db_stmt *s, int i);
RLAB_API rlab_db_type rlab_db_column_type(rlab_db_stmt *s, int i);
RLAB_API int64_t rlab_db_column_int(rlab_db_stmt *s, int i);
RLAB_API double rlab_db_column_double(rlab_db_stmt *s, int i);
/* NULL for SQL NULL; valid until the next step/reset/finalize. */
RLAB_API const char *rlab_db_column_text(rlab_db_stmt *s, int i);
RLAB_API const void *rlab_db_column_blob(rlab_db_stmt *s, int i, size_t *n);
/* Finalize; NULL is a no-op. */
RLAB_API void rlab_db_finalize(rlab_db_stmt *s);

/* Run trusted SQL without parameters (several statements allowed). */
RLAB_API int rlab_db_exec(rlab_db *db, const char *sql, rlab_err *err);
/* Nesting transactions (fossil): the outermost begin is BEGIN IMMEDIATE, the outermost
 * commit commits unless an inner level rolled back, in which case everything is rolled
 * back and RLAB_EDB is returned. */
RLAB_API int rlab_db_begin(rlab_db *db, rlab_err *err);
RLAB_API int rlab_db_commit(rlab_db *db, rlab_err *err);
RLAB_API void rlab_db_rollback(rlab_db *db);
RLAB_API int64_t rlab_db_last_insert_id(rlab_db *db);

#endif /* RLAB_STORE_H */
