/*
 * Ad-hoc queries (`sql` shell command, reclab.db.query) and the authorizer that guards
 * them and plugin migrations.
 *
 * The guard is SQLite's authorizer (sqlite3_set_authorizer): SQLite calls it while it
 * compiles a statement, once per table touched and per kind of action, including the
 * actions of triggers the statement would fire (with the trigger's name as 4th argument).
 * That is where the policy is decided, with the object's name at hand, so the refusal
 * message can name it. For read-only queries sqlite3_stmt_readonly is a second,
 * independent check after compilation.
 *
 * Triggers need two rules, because SQLite does not show a trigger's body to the authorizer
 * when the trigger is created (only when a statement that fires it is compiled), and the
 * statement that fires it later is usually not a query: a trigger made through the query
 * door on a plugin table would run its body on the plugin's next insert, unguarded.
 * - Queries may not create triggers at all (CREATE [TEMP] TRIGGER is refused).
 * - Every connection keeps the authorizer installed in AUTH_BASE mode between queries: any
 *   statement whose compiled triggers write a core table is refused, whoever made the
 *   trigger (an older reclab, a plugin migration, the sqlite3 shell). Foreign-key actions
 *   (ON DELETE CASCADE) are not triggers for the authorizer (no 4th argument) and pass.
 * Views cannot write, so a view reading core tables is harmless and allowed; a view or
 * table named like a core table is refused by name (it would shadow it).
 */
#include "store/store_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Tables of the core schema. Keep in step with the migrations in store.c. */
static const char *const core_tables[] = {
    "datasets",  "runs",   "metrics",       "artifacts", "events",      "dialogues",
    "history",   "models", "plugin_schema", "settings",  "experiments", "experiment_runs",
    "run_users", NULL,
};

int rlab_db_is_core_table(const char *name)
{
    if (!name)
        return 0;
    for (int i = 0; core_tables[i]; i++)
        if (strcasecmp(name, core_tables[i]) == 0)
            return 1;
    return 0;
}

/* SQLite's schema tables: written only as a side effect of DDL (direct DML on them is
 * refused by SQLite itself unless writable_schema is on, which the pragma rule forbids). */
static int is_schema_table(const char *name)
{
    return name &&
           (strcasecmp(name, "sqlite_master") == 0 || strcasecmp(name, "sqlite_temp_master") == 0 ||
            strcasecmp(name, "sqlite_schema") == 0 || strcasecmp(name, "sqlite_temp_schema") == 0);
}

/* Core tables plus SQLite's internal bookkeeping (sqlite_sequence, sqlite_stat1...). */
static int is_protected(const char *name)
{
    return rlab_db_is_core_table(name) ||
           (name && !is_schema_table(name) && strncasecmp(name, "sqlite_", 7) == 0);
}

static int has_prefix(const auth_ctx *a, const char *name)
{
    return name && strncasecmp(name, a->plugin, a->plen) == 0 && name[a->plen] == '_' &&
           name[a->plen + 1] != '\0';
}

/* Pragmas that take an argument but only read (PRAGMA table_info(runs)). */
static int readonly_pragma(const char *name)
{
    static const char *const ok[] = {
        "table_info",       "table_xinfo",       "index_list",      "index_info",  "index_xinfo",
        "foreign_key_list", "foreign_key_check", "integrity_check", "quick_check", NULL,
    };
    for (int i = 0; ok[i]; i++)
        if (strcasecmp(name, ok[i]) == 0)
            return 1;
    return 0;
}

/* Pragmas whose bare form (no argument) acts instead of reading a setting. SQLite marks
 * them as writing statements; they stay subject to the read-only check. */
static int acting_pragma(const char *name)
{
    static const char *const acts[] = {"wal_checkpoint", "incremental_vacuum", "optimize", NULL};
    for (int i = 0; acts[i]; i++)
        if (strcasecmp(name, acts[i]) == 0)
            return 1;
    return 0;
}

/* True when the SQL text's first keyword (after blanks and comments) is PRAGMA. */
static int is_pragma_sql(const char *s)
{
    for (;;) {
        while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' || *s == ';')
            s++;
        if (s[0] == '-' && s[1] == '-') {
            while (*s && *s != '\n')
                s++;
        } else if (s[0] == '/' && s[1] == '*') {
            const char *e = strstr(s + 2, "*/");
            if (!e)
                return 0;
            s = e + 2;
        } else {
            break;
        }
    }
    return strncasecmp(s, "pragma", 6) == 0 &&
           !(s[6] == '_' || (s[6] >= 'a' && s[6] <= 'z') || (s[6] >= 'A' && s[6] <= 'Z') ||
             (s[6] >= '0' && s[6] <= '9'));
}

static const char *verb(int action)
{
    switch (action) {
    case SQLITE_INSERT:
        return "INSERT";
    case SQLITE_UPDATE:
        return "UPDATE";
    case SQLITE_DELETE:
        return "DELETE";
    case SQLITE_CREATE_TABLE:
    case SQLITE_CREATE_TEMP_TABLE:
        return "CREATE TABLE";
    case SQLITE_CREATE_INDEX:
    case SQLITE_CREATE_TEMP_INDEX:
        return "CREATE INDEX";
    case SQLITE_CREATE_VIEW:
    case SQLITE_CREATE_TEMP_VIEW:
        return "CREATE VIEW";
    case SQLITE_CREATE_TRIGGER:
    case SQLITE_CREATE_TEMP_TRIGGER:
        return "CREATE TRIGGER";
    case SQLITE_CREATE_VTABLE:
        return "CREATE VIRTUAL TABLE";
    case SQLITE_DROP_TABLE:
    case SQLITE_DROP_TEMP_TABLE:
        return "DROP TABLE";
    case SQLITE_DROP_INDEX:
    case SQLITE_DROP_TEMP_INDEX:
        return "DROP INDEX";
    case SQLITE_DROP_VIEW:
    case SQLITE_DROP_TEMP_VIEW:
        return "DROP VIEW";
    case SQLITE_DROP_TRIGGER:
    case SQLITE_DROP_TEMP_TRIGGER:
        return "DROP TRIGGER";
    case SQLITE_DROP_VTABLE:
        return "DROP VIRTUAL TABLE";
    case SQLITE_ALTER_TABLE:
        return "ALTER TABLE";
    default:
        return "write";
    }
}

static int deny(auth_ctx *a, const char *fmt, ...) RLAB_PRINTF(2, 3);
static int deny(auth_ctx *a, const char *fmt, ...)
{
    if (!a->denied[0]) { /* keep the first reason: later ones are consequences */
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(a->denied, sizeof a->denied, fmt, ap);
        va_end(ap);
    }
    return SQLITE_DENY;
}

/* Decide one write-like action on `obj` (the object created/dropped/written) whose table
 * is `tbl` (same as obj for tables). */
static int decide_write(auth_ctx *a, int action, const char *obj, const char *tbl)
{
    const char *v = verb(action);
    if (action == SQLITE_INSERT || action == SQLITE_UPDATE || action == SQLITE_DELETE) {
        if (is_schema_table(obj)) /* side effect of DDL, which is decided on its own */
            return SQLITE_OK;
        /* ALTER TABLE ... RENAME renames the table's sqlite_sequence row through an UPDATE
         * that SQLite authorizes like user SQL; the ALTER itself was already checked. */
        if (action == SQLITE_UPDATE && a->altering && obj &&
            strcasecmp(obj, "sqlite_sequence") == 0)
            return SQLITE_OK;
    }
    if (a->mode == AUTH_PLUGIN) {
        /* UNIQUE / composite PRIMARY KEY constraints make SQLite create an index named
         * sqlite_autoindex_<table>_N: it belongs to the (prefixed) table, so judge by that */
        if ((action == SQLITE_CREATE_INDEX || action == SQLITE_DROP_INDEX) && obj &&
            strncmp(obj, "sqlite_autoindex_", 17) == 0 && tbl && has_prefix(a, tbl))
            return SQLITE_OK;
        if (is_protected(obj) || is_protected(tbl))
            return deny(a,
                        "%s on core table '%s' refused: plugin migrations may only touch "
                        "their own tables",
                        v, is_protected(obj) ? obj : tbl);
        if (!has_prefix(a, obj))
            return deny(a, "%s '%s' refused: plugin tables must be named '%s_...'", v,
                        obj ? obj : "?", a->plugin);
        if (tbl && !has_prefix(a, tbl))
            return deny(a, "%s on '%s' refused: plugin tables must be named '%s_...'", v, tbl,
                        a->plugin);
        return SQLITE_OK;
    }
    const char *core = is_protected(obj) ? obj : is_protected(tbl) ? tbl : NULL;
    if (core)
        return deny(a, "%s on core table '%s' refused: core tables are read-only from queries", v,
                    core);
    if (a->mode == AUTH_QUERY_RO)
        return deny(a, "%s on '%s' refused: queries are read-only unless writes are allowed", v,
                    obj ? obj : "?");
    return SQLITE_OK;
}

/* AUTH_BASE: everything the core and plugins do, except a trigger body (trigger != NULL)
 * writing a core table. */
static int decide_base(auth_ctx *a, int action, const char *tbl, const char *trigger)
{
    if ((action != SQLITE_INSERT && action != SQLITE_UPDATE && action != SQLITE_DELETE) ||
        !trigger || is_schema_table(tbl) || !is_protected(tbl))
        return SQLITE_OK;
    a->denied[0] = '\0'; /* each compile is judged on its own */
    return deny(a,
                "trigger '%s' would %s core table '%s': refused (triggers may not change core "
                "tables; remove it with DROP TRIGGER %s)",
                trigger, verb(action), tbl, trigger);
}

void rlab_db__auth_mode(rlab_db *db, int mode)
{
    db->auth.mode = mode;
    db->auth.denied[0] = '\0';
    db->auth.altering = 0;
    if (mode != AUTH_PLUGIN)
        db->auth.plugin = NULL;
    /* setting it again also expires the connection's prepared statements, so each is
     * re-compiled (and re-checked) under the new mode before it runs again */
    sqlite3_set_authorizer(db->h, rlab_db__authorize, &db->auth);
}

int rlab_db__authorize(void *ud, int action, const char *a1, const char *a2, const char *a3,
                       const char *a4)
{
    auth_ctx *a = ud;
    (void)a3;
    if (a->mode == AUTH_BASE)
        return decide_base(a, action, a1, a4);
    switch (action) {
    case SQLITE_READ:
    case SQLITE_SELECT:
    case SQLITE_FUNCTION:
    case SQLITE_RECURSIVE:
    case SQLITE_ANALYZE:
    case SQLITE_REINDEX:
        return SQLITE_OK;
    case SQLITE_INSERT:
    case SQLITE_DELETE:
    case SQLITE_UPDATE:
    case SQLITE_CREATE_TABLE:
    case SQLITE_CREATE_TEMP_TABLE:
    case SQLITE_CREATE_VIEW:
    case SQLITE_CREATE_TEMP_VIEW:
    case SQLITE_DROP_TABLE:
    case SQLITE_DROP_TEMP_TABLE:
    case SQLITE_DROP_VIEW:
    case SQLITE_DROP_TEMP_VIEW:
    case SQLITE_CREATE_VTABLE:
    case SQLITE_DROP_VTABLE:
        return decide_write(a, action, a1, NULL);
    case SQLITE_CREATE_TRIGGER:
    case SQLITE_CREATE_TEMP_TRIGGER: {
        int rc = decide_write(a, action, a1, a2); /* a1 trigger, a2 its table */
        if (rc != SQLITE_OK || a->mode == AUTH_PLUGIN)
            return rc;
        return deny(a,
                    "CREATE TRIGGER '%s' refused: queries may not create triggers (the body "
                    "would run later, on writes to '%s' made outside the query guard)",
                    a1 ? a1 : "?", a2 ? a2 : "?");
    }
    case SQLITE_CREATE_INDEX:
    case SQLITE_CREATE_TEMP_INDEX:
    case SQLITE_DROP_INDEX:
    case SQLITE_DROP_TEMP_INDEX:
    case SQLITE_DROP_TRIGGER:
    case SQLITE_DROP_TEMP_TRIGGER:
        return decide_write(a, action, a1, a2); /* a1 index/trigger, a2 its table */
    case SQLITE_ALTER_TABLE: {
        int rc = decide_write(a, action, a2, NULL); /* a1 is the database name */
        if (rc == SQLITE_OK)
            a->altering = 1;
        return rc;
    }
    case SQLITE_PRAGMA:
        /* PRAGMA x reads a setting; PRAGMA x = v and PRAGMA x(v) set it, except the
         * function-style reads (table_info(t)...). SQLite's own read-only flag calls some
         * reads writes (journal_mode may switch modes when given an argument), so a read is
         * remembered here for run_statement. */
        if (a2 ? readonly_pragma(a1) : !acting_pragma(a1)) {
            a->pragma_read = 1;
            return SQLITE_OK;
        }
        if (!a2) /* wal_checkpoint, incremental_vacuum, optimize: writes, judged as such */
            return SQLITE_OK;
        return deny(a, "setting PRAGMA %s refused in queries and migrations", a1);
    case SQLITE_TRANSACTION:
    case SQLITE_SAVEPOINT:
        return deny(a, "transaction control (%s) refused: the store manages transactions",
                    a1 ? a1 : "SAVEPOINT");
    case SQLITE_ATTACH:
    case SQLITE_DETACH:
        return deny(a, "%s refused: only the session store may be queried",
                    action == SQLITE_ATTACH ? "ATTACH" : "DETACH");
    default:
        return deny(a, "operation %d refused", action);
    }
}

/* ---- running queries ------------------------------------------------------------------ */

static int bind_value(sqlite3_stmt *st, int i, const rlab_db_value *v)
{
    switch (v->type) {
    case RLAB_DB_INT:
        return sqlite3_bind_int64(st, i, v->i);
    case RLAB_DB_REAL:
        return sqlite3_bind_double(st, i, v->r);
    case RLAB_DB_TEXT:
        return v->s ? sqlite3_bind_text64(st, i, v->s, v->n ? v->n : strlen(v->s), SQLITE_TRANSIENT,
                                          SQLITE_UTF8)
                    : sqlite3_bind_null(st, i);
    case RLAB_DB_BLOB:
        return sqlite3_bind_blob64(st, i, v->s, v->n, SQLITE_TRANSIENT);
    default:
        return sqlite3_bind_null(st, i);
    }
}

static void read_cell(sqlite3_stmt *st, int c, rlab_db_value *v)
{
    memset(v, 0, sizeof *v);
    switch (sqlite3_column_type(st, c)) {
    case SQLITE_INTEGER:
        v->type = RLAB_DB_INT;
        v->i = sqlite3_column_int64(st, c);
        v->r = (double)v->i;
        break;
    case SQLITE_FLOAT:
        v->type = RLAB_DB_REAL;
        v->r = sqlite3_column_double(st, c);
        break;
    case SQLITE_TEXT:
        v->type = RLAB_DB_TEXT;
        v->s = (const char *)sqlite3_column_text(st, c);
        v->n = (size_t)sqlite3_column_bytes(st, c);
        break;
    case SQLITE_BLOB:
        v->type = RLAB_DB_BLOB;
        v->s = sqlite3_column_blob(st, c);
        v->n = (size_t)sqlite3_column_bytes(st, c);
        break;
    default:
        v->type = RLAB_DB_NULL;
    }
}

static void result_clear(rlab_db_result *r)
{
    for (size_t k = 0; k < (size_t)r->nrow * (size_t)r->ncol; k++)
        rlab_free((void *)(uintptr_t)r->cells[k].s);
    for (int c = 0; c < r->ncol; c++)
        rlab_free(r->names[c]);
    rlab_free(r->names);
    rlab_free(r->cells);
    r->names = NULL;
    r->cells = NULL;
    r->ncol = r->nrow = 0;
    r->cap = 0;
}

void rlab_db_result_free(rlab_db_result *r)
{
    if (!r)
        return;
    result_clear(r);
    rlab_free(r);
}

const rlab_db_value *rlab_db_result_cell(const rlab_db_result *r, int row, int col)
{
    RLAB_ASSERT(row >= 0 && row < r->nrow && col >= 0 && col < r->ncol);
    return &r->cells[(size_t)row * (size_t)r->ncol + (size_t)col];
}

/* Start a fresh table for a statement with ncol columns. */
static int result_start(rlab_db_result *r, sqlite3_stmt *st, int ncol)
{
    result_clear(r);
    r->names = rlab_calloc((size_t)ncol, sizeof *r->names);
    if (!r->names)
        return RLAB_ENOMEM;
    r->ncol = ncol;
    for (int c = 0; c < ncol; c++)
        if (!(r->names[c] = rlab_strdup(sqlite3_column_name(st, c))))
            return RLAB_ENOMEM;
    return RLAB_OK;
}

/* Append one row, deep-copying text and blobs (text keeps its NUL). */
static int result_add(rlab_db_result *r, const rlab_db_value *cells)
{
    size_t need = ((size_t)r->nrow + 1) * (size_t)r->ncol;
    if (need > r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 64 * (size_t)r->ncol;
        while (cap < need)
            cap *= 2;
        rlab_db_value *p = rlab_realloc(r->cells, cap * sizeof *p);
        if (!p)
            return RLAB_ENOMEM;
        r->cells = p;
        r->cap = cap;
    }
    rlab_db_value *dst = &r->cells[(size_t)r->nrow * (size_t)r->ncol];
    for (int c = 0; c < r->ncol; c++) {
        dst[c] = cells[c];
        dst[c].s = NULL;
    }
    r->nrow++; /* count the row now so result_clear frees what was copied on failure */
    for (int c = 0; c < r->ncol; c++) {
        if (cells[c].type == RLAB_DB_TEXT || cells[c].type == RLAB_DB_BLOB) {
            char *copy = rlab_malloc(cells[c].n + 1);
            if (!copy)
                return RLAB_ENOMEM;
            if (cells[c].n)
                memcpy(copy, cells[c].s, cells[c].n);
            copy[cells[c].n] = '\0';
            dst[c].s = copy;
        }
    }
    return RLAB_OK;
}

/* Compile errors caused by the authorizer carry its reason instead of "not authorized". */
static int query_error(rlab_db *db, rlab_err *err, const char *what)
{
    if (db->auth.denied[0])
        return rlab_errf(err, RLAB_EINVAL, "query refused: %s", db->auth.denied);
    return rlab_db__sqlerr(db, err, what);
}

/* Why the progress handler stopped a query (run_query's limits). */
enum { STOP_NONE = 0, STOP_CANCEL, STOP_TIME };

typedef struct query_guard {
    rlab_db_limits *lim; /* NULL: no limits */
    double deadline;     /* rlab_now() past which the query stops; 0 = none */
    int why;             /* STOP_* */
} query_guard;

/* SQLite's progress handler: called every PROGRESS_STEPS virtual-machine steps of the running
 * statement (also while a statement that returns no row for a long time, such as count(*)
 * over a runaway recursive CTE, computes). Nonzero makes the statement fail with
 * SQLITE_INTERRUPT. */
enum { PROGRESS_STEPS = 1000 };
static int on_progress(void *ud)
{
    query_guard *g = ud;
    if (g->lim->cancelled && g->lim->cancelled(g->lim->ud)) {
        g->why = STOP_CANCEL;
        return 1;
    }
    if (g->deadline > 0 && rlab_now() > g->deadline) {
        g->why = STOP_TIME;
        return 1;
    }
    return 0;
}

/* The error of a statement the progress handler stopped, else query_error's. */
static int stop_error(rlab_db *db, const query_guard *g, rlab_err *err)
{
    if (g && g->why == STOP_CANCEL)
        return rlab_errf(err, RLAB_ECANCELED, "query cancelled");
    if (g && g->why == STOP_TIME)
        return rlab_errf(err, RLAB_EDB, "query stopped by its time limit (%.15g s)",
                         g->lim->max_seconds);
    return query_error(db, err, "query");
}

static int run_statement(rlab_db *db, sqlite3_stmt *st, int index, const rlab_db_value *params,
                         int nparams, unsigned flags, rlab_db_row_fn fn, void *ud,
                         rlab_db_result *res, const query_guard *g, int *stop, rlab_err *err)
{
    int pragma_read = db->auth.pragma_read && is_pragma_sql(sqlite3_sql(st));
    if (!(flags & RLAB_DB_ALLOW_WRITES) && !sqlite3_stmt_readonly(st) && !pragma_read)
        return rlab_errf(err, RLAB_EINVAL,
                         "query refused: statement %d writes and queries are read-only: %.120s",
                         index + 1, sqlite3_sql(st));
    int np = sqlite3_bind_parameter_count(st);
    if (np > 0 && np != nparams)
        return rlab_errf(err, RLAB_EINVAL, "query: statement %d expects %d parameter%s, got %d",
                         index + 1, np, np == 1 ? "" : "s", nparams);
    for (int i = 0; i < np; i++)
        if (bind_value(st, i + 1, &params[i]) != SQLITE_OK)
            return rlab_db__sqlerr(db, err, "query: bind");
    int ncol = sqlite3_column_count(st);
    if (res && ncol > 0 && result_start(res, st, ncol) != RLAB_OK)
        return rlab_errf(err, RLAB_ENOMEM, "query: out of memory");
    const char *names[64];
    rlab_db_value cellbuf[64];
    const char **nm = ncol <= 64 ? names : rlab_malloc((size_t)ncol * sizeof *nm);
    rlab_db_value *cells = ncol <= 64 ? cellbuf : rlab_malloc((size_t)ncol * sizeof *cells);
    int rc = RLAB_OK;
    if (!nm || !cells) {
        rc = rlab_errf(err, RLAB_ENOMEM, "query: out of memory");
        goto out;
    }
    for (int c = 0; c < ncol; c++)
        nm[c] = sqlite3_column_name(st, c);
    for (;;) {
        int s = sqlite3_step(st);
        if (s == SQLITE_DONE)
            break;
        if (s != SQLITE_ROW) {
            rc = stop_error(db, g, err);
            break;
        }
        if (res && g && g->lim->max_rows > 0 && res->nrow >= g->lim->max_rows) {
            g->lim->truncated = 1; /* a row past the limit: keep what we have and stop */
            *stop = 1;
            break;
        }
        for (int c = 0; c < ncol; c++)
            read_cell(st, c, &cells[c]);
        if (res && result_add(res, cells) != RLAB_OK) {
            rc = rlab_errf(err, RLAB_ENOMEM, "query: out of memory");
            break;
        }
        if (fn && fn(ud, index, ncol, nm, cells)) {
            *stop = 1;
            break;
        }
    }
    if (res && rc == RLAB_OK)
        res->changes = sqlite3_changes(db->h);
out:
    if (nm != names)
        rlab_free(nm);
    if (cells != cellbuf)
        rlab_free(cells);
    return rc;
}

static int run_query(rlab_db *db, const char *sql, const rlab_db_value *params, int nparams,
                     unsigned flags, rlab_db_row_fn fn, void *ud, rlab_db_result *res,
                     rlab_db_limits *lim, rlab_err *err)
{
    if (!sql)
        return rlab_errf(err, RLAB_EINVAL, "query: no SQL");
    if (nparams < 0 || (nparams > 0 && !params))
        return rlab_errf(err, RLAB_EINVAL, "query: bad parameter list");
    int rc = rlab_db_flush(db, err); /* queries see everything written so far */
    if (rc)
        return rc;
    /* The query mode stays on while the statements run: SQLite re-compiles a statement
     * whose schema changed, and the re-compile is checked again. */
    rlab_db__auth_mode(db, (flags & RLAB_DB_ALLOW_WRITES) ? AUTH_QUERY_RW : AUTH_QUERY_RO);
    query_guard guard = {.lim = lim}, *g = NULL;
    if (lim) {
        lim->truncated = 0;
        if (lim->max_seconds > 0)
            guard.deadline = rlab_now() + lim->max_seconds;
        if (lim->cancelled || guard.deadline > 0) {
            g = &guard;
            sqlite3_progress_handler(db->h, PROGRESS_STEPS, on_progress, g);
        } else if (lim->max_rows > 0) {
            g = &guard; /* rows only: no handler needed */
        }
    }
    const char *p = sql;
    int index = 0, stop = 0;
    while (rc == RLAB_OK && !stop && *p) {
        sqlite3_stmt *st = NULL;
        const char *tail = NULL;
        db->auth.pragma_read = 0; /* set by the authorizer while this statement compiles */
        if (sqlite3_prepare_v2(db->h, p, -1, &st, &tail) != SQLITE_OK) {
            rc = stop_error(db, g, err);
            break;
        }
        if (!st) /* only spaces or comments left */
            break;
        rc = run_statement(db, st, index++, params, nparams, flags, fn, ud, res, g, &stop, err);
        sqlite3_finalize(st);
        p = tail;
    }
    if (g)
        sqlite3_progress_handler(db->h, 0, NULL, NULL);
    rlab_db__auth_mode(db, AUTH_BASE);
    return rc;
}

int rlab_db_query(rlab_db *db, const char *sql, const rlab_db_value *params, int nparams,
                  unsigned flags, rlab_db_row_fn fn, void *ud, rlab_err *err)
{
    return run_query(db, sql, params, nparams, flags, fn, ud, NULL, NULL, err);
}

rlab_db_result *rlab_db_query_table(rlab_db *db, const char *sql, const rlab_db_value *params,
                                    int nparams, unsigned flags, rlab_err *err)
{
    return rlab_db_query_limited(db, sql, params, nparams, flags, NULL, err);
}

rlab_db_result *rlab_db_query_limited(rlab_db *db, const char *sql, const rlab_db_value *params,
                                      int nparams, unsigned flags, rlab_db_limits *lim,
                                      rlab_err *err)
{
    rlab_db_result *r = rlab_calloc(1, sizeof *r);
    if (!r) {
        rlab_errf(err, RLAB_ENOMEM, "query: out of memory");
        return NULL;
    }
    if (run_query(db, sql, params, nparams, flags, NULL, NULL, r, lim, err) != RLAB_OK) {
        rlab_db_result_free(r);
        return NULL;
    }
    return r;
}
