/*
 * Statement helpers in the style of fossil's db.c Stmt: named parameters checked against
 * the statement (a typo is an error, not a silent NULL), a check that every parameter was
 * bound before the first step, nesting transactions, and error messages carrying the SQL.
 */
#include "store/store_internal.h"

#include <stdio.h>
#include <string.h>

struct rlab_db_stmt {
    rlab_db *db;
    sqlite3_stmt *st;
    int nparam;
    unsigned char *bound; /* [nparam + 1], indexed by SQLite's 1-based parameter index */
    int stepped;          /* stepped since the last reset: the bound check is done */
};

/* The reason the base-mode guard gave for refusing the statement just compiled (then
 * cleared), or NULL. */
static const char *base_denial(rlab_db *db, char *buf, size_t size)
{
    if (db->auth.mode != AUTH_BASE || !db->auth.denied[0])
        return NULL;
    snprintf(buf, size, "%s", db->auth.denied);
    db->auth.denied[0] = '\0';
    return buf;
}

int rlab_db__sqlerr(rlab_db *db, rlab_err *err, const char *what)
{
    char why[sizeof db->auth.denied];
    if (base_denial(db, why, sizeof why))
        return rlab_errf(err, RLAB_EDB, "%s: %s", what, why);
    int xc = sqlite3_extended_errcode(db->h);
    const char *msg = sqlite3_errmsg(db->h), *kind = sqlite3_errstr(xc);
    if ((xc & 0xff) == SQLITE_BUSY) { /* which store, and why it may be locked */
        if (strncmp(what, "store: ", 7) == 0)
            what += 7;
        return rlab_errf(err, RLAB_EDB, "store %s: %s: %s (%s)", db->path, what, msg,
                         RLAB_DB_BUSY_HINT);
    }
    if (strcmp(msg, kind) == 0) /* say it once, not "x (x)" */
        return rlab_errf(err, RLAB_EDB, "%s: %s", what, msg);
    return rlab_errf(err, RLAB_EDB, "%s: %s (%s)", what, msg, kind);
}

int rlab_db__prep(rlab_db *db, sqlite3_stmt **st, const char *sql, unsigned pflags, rlab_err *err)
{
    if (*st)
        return RLAB_OK;
    if (sqlite3_prepare_v3(db->h, sql, -1, pflags, st, NULL) != SQLITE_OK) {
        *st = NULL;
        return rlab_db__sqlerr(db, err, "store: prepare");
    }
    return RLAB_OK;
}

/* True when s holds nothing but spaces, comments and semicolons. */
static int only_trivia(const char *s)
{
    while (*s) {
        if (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' || *s == ';') {
            s++;
        } else if (s[0] == '-' && s[1] == '-') {
            while (*s && *s != '\n')
                s++;
        } else if (s[0] == '/' && s[1] == '*') {
            const char *e = strstr(s + 2, "*/");
            if (!e)
                return 1;
            s = e + 2;
        } else {
            return 0;
        }
    }
    return 1;
}

static rlab_db_stmt *prepare(rlab_db *db, const char *sql, unsigned pflags, rlab_err *err)
{
    sqlite3_stmt *st = NULL;
    const char *tail = NULL;
    if (sqlite3_prepare_v3(db->h, sql, -1, pflags, &st, &tail) != SQLITE_OK) {
        rlab_db__sqlerr(db, err, "prepare");
        return NULL;
    }
    if (!st) {
        rlab_errf(err, RLAB_EINVAL, "prepare: empty statement");
        return NULL;
    }
    if (tail && !only_trivia(tail)) {
        sqlite3_finalize(st);
        rlab_errf(err, RLAB_EINVAL, "prepare: more than one statement in: %.120s", sql);
        return NULL;
    }
    rlab_db_stmt *s = rlab_calloc(1, sizeof *s);
    int np = sqlite3_bind_parameter_count(st);
    unsigned char *b = rlab_calloc((size_t)np + 1, 1);
    if (!s || !b) {
        rlab_free(s);
        rlab_free(b);
        sqlite3_finalize(st);
        rlab_errf(err, RLAB_ENOMEM, "prepare: out of memory");
        return NULL;
    }
    s->db = db;
    s->st = st;
    s->nparam = np;
    s->bound = b;
    return s;
}

rlab_db_stmt *rlab_db_prepare(rlab_db *db, const char *sql, rlab_err *err)
{
    return prepare(db, sql, 0, err);
}

rlab_db_stmt *rlab_db_prepare_persistent(rlab_db *db, const char *sql, rlab_err *err)
{
    return prepare(db, sql, SQLITE_PREPARE_PERSISTENT, err);
}

/* Resolve a parameter name to its index; a bare name is tried as ":name". */
static int param_index(rlab_db_stmt *s, const char *name, rlab_err *err)
{
    int i = 0;
    if (name && (name[0] == ':' || name[0] == '@' || name[0] == '$')) {
        i = sqlite3_bind_parameter_index(s->st, name);
    } else if (name) {
        char buf[128];
        snprintf(buf, sizeof buf, ":%s", name);
        i = sqlite3_bind_parameter_index(s->st, buf);
    }
    if (i <= 0)
        rlab_errf(err, RLAB_ENOTFOUND, "bind: no parameter %s in: %.160s", name ? name : "(null)",
                  sqlite3_sql(s->st));
    return i;
}

static int bind_done(rlab_db_stmt *s, int i, int rc, const char *name, rlab_err *err)
{
    if (rc != SQLITE_OK)
        return rlab_errf(err, RLAB_EDB, "bind %s: %s", name, sqlite3_errstr(rc));
    s->bound[i] = 1;
    return RLAB_OK;
}

int rlab_db_bind_int(rlab_db_stmt *s, const char *name, int64_t v, rlab_err *err)
{
    int i = param_index(s, name, err);
    if (i <= 0)
        return RLAB_ENOTFOUND;
    return bind_done(s, i, sqlite3_bind_int64(s->st, i, v), name, err);
}

int rlab_db_bind_double(rlab_db_stmt *s, const char *name, double v, rlab_err *err)
{
    int i = param_index(s, name, err);
    if (i <= 0)
        return RLAB_ENOTFOUND;
    return bind_done(s, i, sqlite3_bind_double(s->st, i, v), name, err);
}

int rlab_db_bind_text(rlab_db_stmt *s, const char *name, const char *v, rlab_err *err)
{
    int i = param_index(s, name, err);
    if (i <= 0)
        return RLAB_ENOTFOUND;
    int rc = v ? sqlite3_bind_text(s->st, i, v, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(s->st, i);
    return bind_done(s, i, rc, name, err);
}

int rlab_db_bind_blob(rlab_db_stmt *s, const char *name, const void *v, size_t n, rlab_err *err)
{
    int i = param_index(s, name, err);
    if (i <= 0)
        return RLAB_ENOTFOUND;
    int rc =
        v ? sqlite3_bind_blob64(s->st, i, v, n, SQLITE_TRANSIENT) : sqlite3_bind_null(s->st, i);
    return bind_done(s, i, rc, name, err);
}

int rlab_db_bind_blob_static(rlab_db_stmt *s, const char *name, const void *v, size_t n,
                             rlab_err *err)
{
    int i = param_index(s, name, err);
    if (i <= 0)
        return RLAB_ENOTFOUND;
    int rc = v ? sqlite3_bind_blob64(s->st, i, v, n, SQLITE_STATIC) : sqlite3_bind_null(s->st, i);
    return bind_done(s, i, rc, name, err);
}

int rlab_db_bind_null(rlab_db_stmt *s, const char *name, rlab_err *err)
{
    int i = param_index(s, name, err);
    if (i <= 0)
        return RLAB_ENOTFOUND;
    return bind_done(s, i, sqlite3_bind_null(s->st, i), name, err);
}

int rlab_db_step(rlab_db_stmt *s, rlab_err *err)
{
    if (!s->stepped) { /* every parameter must have been bound once */
        for (int i = 1; i <= s->nparam; i++) {
            if (!s->bound[i]) {
                const char *nm = sqlite3_bind_parameter_name(s->st, i);
                return rlab_errf(err, RLAB_EINVAL, "step: parameter %s not bound in: %.160s",
                                 nm ? nm : "?", sqlite3_sql(s->st));
            }
        }
        s->stepped = 1;
    }
    int rc = sqlite3_step(s->st);
    if (rc == SQLITE_ROW)
        return RLAB_DB_ROW;
    if (rc == SQLITE_DONE) {
        sqlite3_reset(s->st);
        s->stepped = 0;
        return RLAB_OK;
    }
    char what[200];
    snprintf(what, sizeof what, "step: %.160s", sqlite3_sql(s->st));
    rlab_db__sqlerr(s->db, err, what);
    sqlite3_reset(s->st);
    s->stepped = 0;
    return RLAB_EDB;
}

void rlab_db_reset(rlab_db_stmt *s)
{
    sqlite3_reset(s->st);
    s->stepped = 0;
}

void rlab_db_clear_bindings(rlab_db_stmt *s)
{
    sqlite3_reset(s->st);
    sqlite3_clear_bindings(s->st);
    memset(s->bound, 0, (size_t)s->nparam + 1);
    s->stepped = 0;
}

int rlab_db_column_count(rlab_db_stmt *s) { return sqlite3_column_count(s->st); }
const char *rlab_db_column_name(rlab_db_stmt *s, int i) { return sqlite3_column_name(s->st, i); }
int64_t rlab_db_column_int(rlab_db_stmt *s, int i) { return sqlite3_column_int64(s->st, i); }
double rlab_db_column_double(rlab_db_stmt *s, int i) { return sqlite3_column_double(s->st, i); }

rlab_db_type rlab_db_column_type(rlab_db_stmt *s, int i)
{
    switch (sqlite3_column_type(s->st, i)) {
    case SQLITE_INTEGER:
        return RLAB_DB_INT;
    case SQLITE_FLOAT:
        return RLAB_DB_REAL;
    case SQLITE_TEXT:
        return RLAB_DB_TEXT;
    case SQLITE_BLOB:
        return RLAB_DB_BLOB;
    default:
        return RLAB_DB_NULL;
    }
}

const char *rlab_db_column_text(rlab_db_stmt *s, int i)
{
    return (const char *)sqlite3_column_text(s->st, i);
}

const void *rlab_db_column_blob(rlab_db_stmt *s, int i, size_t *n)
{
    const void *p = sqlite3_column_blob(s->st, i);
    if (n)
        *n = (size_t)sqlite3_column_bytes(s->st, i);
    return p;
}

void rlab_db_finalize(rlab_db_stmt *s)
{
    if (!s)
        return;
    sqlite3_finalize(s->st);
    rlab_free(s->bound);
    rlab_free(s);
}

int rlab_db_exec(rlab_db *db, const char *sql, rlab_err *err)
{
    char *msg = NULL;
    if (sqlite3_exec(db->h, sql, NULL, NULL, &msg) != SQLITE_OK) {
        int xc = sqlite3_extended_errcode(db->h);
        char why[sizeof db->auth.denied];
        if (base_denial(db, why, sizeof why))
            rlab_errf(err, RLAB_EDB, "exec: %s in: %.120s", why, sql);
        else if ((xc & 0xff) == SQLITE_BUSY)
            rlab_errf(err, RLAB_EDB, "store %s: exec: %s (%s) in: %.120s", db->path,
                      msg ? msg : "database is locked", RLAB_DB_BUSY_HINT, sql);
        else
            rlab_errf(err, RLAB_EDB, "exec: %s (%s) in: %.120s", msg ? msg : "error",
                      sqlite3_errstr(xc), sql);
        sqlite3_free(msg);
        return RLAB_EDB;
    }
    return RLAB_OK;
}

int rlab_db_begin(rlab_db *db, rlab_err *err)
{
    if (db->txn_depth == 0) {
        /* IMMEDIATE: take the write lock now, so the busy handler applies; a deferred
         * transaction upgrading to write in WAL mode can fail with SQLITE_BUSY at once. */
        if (sqlite3_exec(db->h, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
            return rlab_db__sqlerr(db, err, "store: begin");
        db->txn_failed = 0;
    }
    db->txn_depth++;
    return RLAB_OK;
}

int rlab_db_commit(rlab_db *db, rlab_err *err)
{
    if (db->txn_depth <= 0)
        return rlab_errf(err, RLAB_ESTATE, "store: commit without begin");
    if (--db->txn_depth > 0)
        return RLAB_OK;
    if (db->txn_failed) {
        sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
        db->txn_failed = 0;
        return rlab_errf(err, RLAB_EDB, "store: transaction rolled back by an inner level");
    }
    if (sqlite3_exec(db->h, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        int rc = rlab_db__sqlerr(db, err, "store: commit");
        sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
        return rc;
    }
    return RLAB_OK;
}

void rlab_db_rollback(rlab_db *db)
{
    if (db->txn_depth <= 0)
        return;
    db->txn_failed = 1;
    if (--db->txn_depth == 0) {
        sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
        db->txn_failed = 0;
    }
}

int64_t rlab_db_last_insert_id(rlab_db *db) { return sqlite3_last_insert_rowid(db->h); }
