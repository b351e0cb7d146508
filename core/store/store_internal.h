/*
 * core/store private parts shared by store.c, stmt.c, query.c and runlock.c. Not installed,
 * not for plugins.
 */
#ifndef RLAB_STORE_INTERNAL_H
#define RLAB_STORE_INTERNAL_H

#include "store/store.h"

#include <pthread.h>
#include <sqlite3.h>

/* A buffered metric row; strings are offsets into rlab_db.pool (NO_STR = NULL). */
typedef struct metric_row {
    int64_t run, step;
    size_t split, name, protocol;
    double value;
} metric_row;

typedef struct event_row {
    int64_t run, seq, round, agent;
    double vtime;
    size_t kind, payload;
} event_row;

#define NO_STR ((size_t)-1)

/* Authorizer policy (query.c): what the statements being prepared may do. The authorizer is
 * installed for the whole life of the connection: outside queries and plugin migrations it
 * runs in AUTH_BASE mode, which only refuses writes to core tables made by trigger bodies
 * (whoever created the trigger, whatever statement fires it). */
typedef struct auth_ctx {
    int mode;           /* AUTH_BASE, AUTH_QUERY_RO, AUTH_QUERY_RW or AUTH_PLUGIN */
    const char *plugin; /* AUTH_PLUGIN: the plugin whose prefix is required */
    size_t plen;        /* strlen(plugin) */
    int altering;       /* an ALTER TABLE was allowed: its rename of sqlite_sequence rows is ok */
    int pragma_read;    /* the statement being prepared reads a pragma (PRAGMA journal_mode) */
    char denied[256];   /* reason of the first denial, "" if none */
} auth_ctx;

enum { AUTH_BASE = 0, AUTH_QUERY_RO, AUTH_QUERY_RW, AUTH_PLUGIN };

struct rlab_db {
    sqlite3 *h;
    char *path;
    unsigned flags;
    int lock_fd;     /* sidecar "<db>-runs" holding the runs' OFD locks; -1 for :memory: */
    char *lock_path; /* NULL for :memory: */
    int recovered;

    /* nesting transactions */
    int txn_depth;
    int txn_failed;

    /* hot statements (SQLITE_PREPARE_PERSISTENT), created lazily */
    sqlite3_stmt *st_metric, *st_event, *st_run_exists;
    sqlite3_stmt *st_event_block; /* EVENT_BLOCK rows per statement (see flush_rows) */

    /* write buffer */
    metric_row *metrics;
    size_t n_metrics, cap_metrics;
    event_row *events;
    size_t n_events, cap_events;
    char *pool;
    size_t pool_used, pool_cap;
    int flush_rows;
    double flush_sec;
    double first_buffered; /* rlab_now() of the oldest buffered row */
    int64_t checked_run;   /* last run id verified to exist (0 = none) */

    /* runs owned (locked) by this connection */
    int64_t *owned;
    int n_owned, cap_owned;

    auth_ctx auth;

    /* a checkpoint of the write-ahead log on a thread with its own connection
     * (rlab_db_checkpoint_background), joined by rlab_db_checkpoint_wait and rlab_db_close */
    pthread_t ckpt_th;
    int ckpt_running;
    int ckpt_rc; /* SQLite's result code of that checkpoint */
};

/* Said after "database is locked": the busy timeout (store.c BUSY_TIMEOUT_MS) ran out. */
#define RLAB_DB_BUSY_HINT                                                                          \
    "another connection held the store's lock for more than 5 s: is another reclab writing to "    \
    "it?"

/* stmt.c: RLAB_EDB with "what: SQLite's message"; a lock timeout names the store file. */
int rlab_db__sqlerr(rlab_db *db, rlab_err *err, const char *what);
int rlab_db__prep(rlab_db *db, sqlite3_stmt **st, const char *sql, unsigned pflags, rlab_err *err);

/* query.c: the authorizer callback installed with sqlite3_set_authorizer(h, cb, &db->auth) */
int rlab_db__authorize(void *ud, int action, const char *a1, const char *a2, const char *a3,
                       const char *a4);
/* query.c: (re)install the authorizer in mode (AUTH_*), clearing the denial reason. */
void rlab_db__auth_mode(rlab_db *db, int mode);

/* runlock.c: OFD byte locks on the sidecar file. */
int rlab_runlock_open(const char *lock_path, rlab_err *err); /* fd or -1 */
int rlab_runlock_take(int fd, int64_t run_id, rlab_err *err);
void rlab_runlock_release(int fd, int64_t run_id);
/* 1 when some open file description holds run_id's lock, 0 when nobody does, -1 on error. */
int rlab_runlock_held(const char *lock_path, int64_t run_id, rlab_err *err);

#endif
