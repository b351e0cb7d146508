/*
 * fuzz_sql: the SQL guard of the session store (core/store/query.c: the authorizer and the
 * read-only door of rlab_db_query) on arbitrary SQL.
 *
 * One in-memory store is set up once: a dataset, a finished run with metrics, a plugin
 * "fz" with two tables (fz_plain, and fz_items carrying a trigger that rewrites the core
 * table `runs`, as a hostile older session could have left behind). Each input runs inside
 * a savepoint that is rolled back afterwards, so every input sees the same store.
 *
 * Input: the first byte picks read-only or RLAB_DB_ALLOW_WRITES, the number of bound
 * parameters (0-2) and whether rows are collected (rlab_db_query_table) or streamed
 * (rlab_db_query with a callback that stops after a few rows); the rest is the SQL.
 *
 * The oracle, checked after every query (success or refusal alike):
 *   - the attached databases and the connection's safety pragmas are as before;
 *   - read-only: no row and no schema changed (sqlite3_total_changes64 and both schema
 *     cookies are unchanged);
 *   - with writes: when rows or the schema changed, the core tables, their schema entries
 *     and the triggers on them are exactly as before (a content fingerprint), and no
 *     trigger appeared or disappeared (triggers on other tables: by name, see core_sql);
 *   - the savepoint is still open (no transaction control got through);
 *   - a refusal carries a message.
 * Harness limits (not the guard's business): at most ~200k SQLite VM steps per input (a
 * progress handler; the `sql` command's own time limit is issue 14's point 5) and values of
 * at most 1000 bytes, so a recursive query cannot hang or exhaust memory.
 */
#include "store/store_internal.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static rlab_db *db;
static uint64_t base_core, base_conn;
static long steps;

static int progress(void *ud)
{
    (void)ud;
    return ++steps > 2000; /* x 100 VM instructions */
}

/* FNV-1a over the rows of one SQL statement (run unguarded: AUTH_BASE allows reads). */
static void hash_sql(uint64_t *h, const char *sql)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db->h, sql, -1, &st, NULL) != SQLITE_OK) {
        fprintf(stderr, "fuzz_sql: cannot prepare %s: %s\n", sql, sqlite3_errmsg(db->h));
        abort();
    }
    while (sqlite3_step(st) == SQLITE_ROW) {
        for (int c = 0; c < sqlite3_column_count(st); c++) {
            const unsigned char *p = sqlite3_column_blob(st, c);
            int n = sqlite3_column_bytes(st, c);
            *h = (*h ^ (uint64_t)(sqlite3_column_type(st, c) + 31)) * 1099511628211ull;
            for (int i = 0; i < n; i++)
                *h = (*h ^ p[i]) * 1099511628211ull;
        }
        *h = (*h ^ 0xFF) * 1099511628211ull;
    }
    sqlite3_finalize(st);
}

/* The attached databases and the connection's safety pragmas: checked after every input. */
static const char *const conn_sql[] = {
    "SELECT name, file FROM pragma_database_list ORDER BY seq",
    "SELECT * FROM pragma_foreign_keys, pragma_query_only, pragma_writable_schema, "
    "pragma_recursive_triggers, pragma_trusted_schema, pragma_ignore_check_constraints, "
    "pragma_defer_foreign_keys, pragma_journal_mode",
    NULL,
};

static const char *const core_sql[] = {
    "SELECT * FROM datasets",
    "SELECT * FROM runs",
    "SELECT * FROM metrics",
    "SELECT * FROM artifacts",
    "SELECT * FROM events",
    "SELECT * FROM dialogues",
    "SELECT * FROM history",
    "SELECT * FROM models",
    "SELECT * FROM plugin_schema",
    /* the core schema, with every trigger on a core table, whole */
    "SELECT type, name, tbl_name, sql FROM main.sqlite_schema WHERE tbl_name "
    "IN ('datasets','runs','metrics','artifacts','events','dialogues','history','models',"
    "'plugin_schema') ORDER BY name",
    /* the names of all triggers (queries may create none). A trigger on a user or plugin
     * table is compared by name only: ALTER TABLE ... RENAME of its table (an allowed write)
     * makes SQLite rewrite the table's name inside the trigger's stored SQL, which leaves
     * what the trigger does unchanged (and its body is still checked by the guard when it
     * fires). Found by this target: ALTER TABLE fz_items RENAME TO fz. */
    "SELECT type, name FROM main.sqlite_schema WHERE type = 'trigger' ORDER BY name",
    "SELECT type, name FROM temp.sqlite_schema WHERE type = 'trigger' ORDER BY name",
    NULL,
};

static uint64_t conn_print(void)
{
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; conn_sql[i]; i++)
        hash_sql(&h, conn_sql[i]);
    return h;
}

/* Schema cookies of main and temp, and the rows changed so far: when none of them moved,
 * no table and no schema changed, and the content fingerprints can be skipped. */
static void cookies(sqlite3_int64 v[3])
{
    uint64_t h = 0;
    v[0] = sqlite3_total_changes64(db->h);
    hash_sql(&h, "PRAGMA main.schema_version");
    v[1] = (sqlite3_int64)h;
    h = 0;
    hash_sql(&h, "PRAGMA temp.schema_version");
    v[2] = (sqlite3_int64)h;
}

static uint64_t fingerprint(void)
{
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; core_sql[i]; i++)
        hash_sql(&h, core_sql[i]);
    return h;
}

static void setup(void)
{
    rlab_err err = {0};
    db = rlab_db_open(":memory:", 0, &err);
    if (!db) {
        fprintf(stderr, "fuzz_sql: %s\n", err.msg);
        abort();
    }
    rlab_db_dataset_info di = {
        .name = "d", .source = "builtin:fuzz", .format = "sasrec", .sha256 = "00", .n_users = 2};
    int64_t run = 0;
    rlab_db_run_info ri = {.plugin = "fz", .name = "r", .dataset = "d", .config_json = "{}"};
    static const rlab_migration mig[] = {
        {.sql = "CREATE TABLE fz_plain(id INTEGER PRIMARY KEY, v TEXT);"
                "INSERT INTO fz_plain(v) VALUES ('a'), ('b');"
                "CREATE TABLE fz_items(id INTEGER PRIMARY KEY, v TEXT);"},
        {0}};
    if (rlab_db_dataset_register(db, &di, NULL, &err) || rlab_db_run_begin(db, &ri, &run, &err) ||
        rlab_db_metric(db, run, 1, "test", "ndcg@10", "full", 0.25, &err) ||
        rlab_db_run_end(db, run, RLAB_RUN_DONE, NULL, &err) ||
        rlab_db_plugin_migrate(db, "fz", mig, 1, &err) ||
        rlab_db_exec(db,
                     "CREATE TRIGGER fz_evil AFTER INSERT ON fz_items BEGIN "
                     "UPDATE runs SET status = 'failed'; DELETE FROM metrics; END;",
                     &err)) {
        fprintf(stderr, "fuzz_sql: setup: %s\n", err.msg);
        abort();
    }
    sqlite3_limit(db->h, SQLITE_LIMIT_LENGTH, 1000);
    sqlite3_progress_handler(db->h, 100, progress, NULL);
    base_core = fingerprint();
    base_conn = conn_print();
}

static int on_row(void *ud, int stmt_index, int ncol, const char *const *names,
                  const rlab_db_value *cells)
{
    int *rows = ud;
    (void)stmt_index;
    for (int c = 0; c < ncol; c++)
        if (!names[c] || (cells[c].type == RLAB_DB_TEXT && !cells[c].s))
            abort();
    return ++*rows >= 50;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!db)
        setup();
    if (size < 1)
        return 0;
    unsigned mode = data[0];
    unsigned flags = (mode & 1) ? RLAB_DB_ALLOW_WRITES : 0;
    int nparams = (int)((mode >> 1) % 3);
    int collect = (mode >> 3) & 1;
    char *sql = malloc(size);
    if (!sql)
        return 0;
    memcpy(sql, data + 1, size - 1);
    sql[size - 1] = '\0';
    rlab_db_value params[2] = {{.type = RLAB_DB_INT, .i = 1},
                               {.type = RLAB_DB_TEXT, .s = "fz_plain", .n = 8}};

    if (sqlite3_exec(db->h, "SAVEPOINT fz_input", NULL, NULL, NULL) != SQLITE_OK)
        abort();
    sqlite3_int64 before[3], after[3];
    cookies(before);
    steps = 0;
    rlab_err err = {0};
    int rc;
    if (collect) {
        rlab_db_result *r = rlab_db_query_table(db, sql, params, nparams, flags, &err);
        rc = r ? RLAB_OK : err.code;
        if (r)
            for (int i = 0; i < r->nrow; i++)
                for (int c = 0; c < r->ncol; c++)
                    (void)rlab_db_result_cell(r, i, c);
        rlab_db_result_free(r);
    } else {
        int rows = 0;
        rc = rlab_db_query(db, sql, params, nparams, flags, on_row, &rows, &err);
    }
    if (rc != RLAB_OK && !err.msg[0])
        abort();
    steps = -1000000000L; /* the checks themselves run unlimited */
    if (sqlite3_get_autocommit(db->h)) {
        fprintf(stderr, "fuzz_sql: the query ended the harness's savepoint\n");
        abort();
    }
    if (conn_print() != base_conn) {
        fprintf(stderr, "fuzz_sql: an attachment or a safety pragma changed\n");
        abort();
    }
    cookies(after);
    int moved = memcmp(before, after, sizeof before) != 0;
    if (moved && !flags) {
        fprintf(stderr, "fuzz_sql: a read-only query changed rows or the schema\n");
        abort();
    }
    if (moved && fingerprint() != base_core) {
        fprintf(stderr, "fuzz_sql: a core table or trigger changed\n");
        abort();
    }
    if (sqlite3_exec(db->h, "ROLLBACK TO fz_input; RELEASE fz_input", NULL, NULL, NULL) !=
        SQLITE_OK)
        abort();
    free(sql);
    return 0;
}
