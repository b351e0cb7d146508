/*
 * core/host/host.h: the host API used by the program (ui/, batch mode) and the Lua binding:
 * plugin loading, the command registry, argument parsing, help and completion, running
 * commands synchronously or as jobs, events, the dataset and model registries, model
 * persistence. Plugins include host/plugin.h instead (this header includes it).
 *
 *     rlab_err err = {0};
 *     rlab_host *h = rlab_host_new(NULL, &err);           // default search path
 *     rlab_host_set_event_fn(h, on_event, ui);              // progress, log lines, job done
 *     rlab_host_load_all(h, &err);                          // refusals: rlab_host_refusal()
 *     for (int i = 0; i < rlab_host_refusal_count(h); i++)
 *         show(rlab_host_refusal(h, i));
 *     int job;
 *     if (rlab_host_submit(h, "seqrec.train data=beauty epochs=20", &job, &err))
 *         show(err.msg);      // "seqrec.train: bad argument 'epochs' (integer >= 1 ...)"
 *     ...                                                   // Ctrl-C: rlab_host_cancel(h, job)
 *     rlab_result *res = NULL;
 *     int rc = rlab_host_wait(h, job, &res, &err);          // RLAB_ECANCELED when cancelled
 *     rlab_result_free(res);
 *     rlab_host_free(h);                                    // cancels jobs, unloads plugins
 *
 * Plugin search order (first found wins per plugin name; a later file of the same name is a
 * refusal): opts.plugin_dirs if given, else (1) the build tree's plugin folder (compile
 * definition RLAB_BUILD_PLUGIN_DIR, else "<folder of libreclab_core.so>/plugins", which is
 * build/plugins in the build tree), (2) the install folder (RLAB_INSTALL_PLUGIN_DIR, else
 * "<folder of libreclab_core.so>/reclab/plugins", i.e. PREFIX/lib/reclab/plugins), then (3)
 * every folder of the colon-separated RECLAB_PLUGIN_PATH.
 *
 * Threads. The host has one job worker thread (started by the first submit) that runs
 * RLAB_CMD_JOB commands one at a time in FIFO order, and one side worker that runs the
 * RLAB_CMD_JOB | RLAB_CMD_SIDE commands (short work such as `sql` or `load`) the same way, so
 * they do not wait behind a training job. Functions marked "ui thread" (loading,
 * unloading, parse, help, complete, the command table) must be called from one thread, the
 * one that created the host; they are safe while jobs run, because the loader refuses to
 * unload a plugin with queued or running work. Functions marked "thread-safe" may be called
 * from anywhere. The event callback is called from the worker thread (jobs) and from the
 * caller's thread (sync runs), so it must be thread-safe: the ui pushes the event onto its
 * own queue and wakes its poll loop; it must not call back into the host except
 * rlab_host_cancel / rlab_host_job_info.
 */
#ifndef RLAB_HOST_H
#define RLAB_HOST_H

#include "host/plugin.h"
#include "data/world.h"

#include <stdint.h>

/* ---- host lifetime ------------------------------------------------------------------ */

typedef struct rlab_host_opts {
    /* Plugin folders searched in order, replacing the default list; NULL-terminated, or
     * NULL for the default order (see above). */
    const char *const *plugin_dirs;
    int no_env;      /* 1: ignore RECLAB_PLUGIN_PATH */
    int no_builtins; /* 1: do not register the core commands (help, plugins, ...) */
    /* 1: models registered by commands are not written into the session store (by default
     * each is kept there as its run's checkpoint, so a reopened workspace has it; the
     * environment variable RECLAB_KEEP_MODELS=0 does the same) */
    int no_keep_models;
} rlab_host_opts;

/* A new host (opts may be NULL). Registers the core commands under pseudo-plugin "core".
 * NULL on failure (ENOMEM). ui thread. */
RLAB_API rlab_host *rlab_host_new(const rlab_host_opts *opts, rlab_err *err);
/* Cancel every job and wait for the worker, free models and datasets, close and unload all
 * plugins (in reverse load order), free the host. NULL is a no-op. ui thread. */
RLAB_API void rlab_host_free(rlab_host *host);

/* The i-th plugin folder searched (NULL past the end). ui thread. */
RLAB_API const char *rlab_host_plugin_dir(const rlab_host *host, int i);

/* ---- loading plugins ---------------------------------------------------------------- */

/* Load every reclab_*.so of every search folder (sorted by file name within a folder).
 * Refused files are added to the refusal list, not returned: the result is RLAB_OK unless
 * memory ran out. *loaded (may be NULL) receives the number of plugins loaded. ui thread. */
RLAB_API int rlab_host_load_all(rlab_host *host, int *loaded, rlab_err *err);
/* Load one file (any path; its name must be reclab_<name>.so). On refusal returns the error
 * code (RLAB_EIO, RLAB_EFORMAT, RLAB_ENOTFOUND, RLAB_EVERSION, RLAB_EINVAL...), fills err
 * with the one-line reason naming the file and also appends it to the refusal list.
 * ui thread. */
RLAB_API int rlab_host_load_file(rlab_host *host, const char *path, rlab_err *err);
/* Register a plugin linked into the program (linit.c-style table {name, entry}): same
 * checks as a file, with "<static:name>" as its file. ui thread. */
RLAB_API int rlab_host_load_static(rlab_host *host, const char *name, rlab_plugin_entry entry,
                                   rlab_err *err);
/* Unload plugin name: refused (RLAB_ESTATE) while one of its commands is queued or running
 * or one of its models is borrowed; otherwise removes its models, calls close, drops its
 * commands and dlcloses it. "core" cannot be unloaded. ui thread. */
RLAB_API int rlab_host_unload(rlab_host *host, const char *name, rlab_err *err);

/* Load refusals collected so far, one line each naming the file. ui thread. */
RLAB_API int rlab_host_refusal_count(const rlab_host *host);
RLAB_API const char *rlab_host_refusal(const rlab_host *host, int i);
RLAB_API void rlab_host_clear_refusals(rlab_host *host);

/* Loaded plugins (index 0 is "core"): descriptor (host copy, zero-filled past the plugin's
 * struct_size) and the file it came from. NULL past the end. ui thread. */
RLAB_API int rlab_host_plugin_count(const rlab_host *host);
RLAB_API const rlab_plugin *rlab_host_plugin_at(const rlab_host *host, int i);
RLAB_API const char *rlab_host_plugin_file(const rlab_host *host, int i);

/* ---- the command table -------------------------------------------------------------- */

/* One registered command. */
typedef struct rlab_cmd_ref {
    const char *full;   /* shell name: "seqrec.train" ("help" for core commands) */
    const char *plugin; /* "seqrec" / "core" */
    const rlab_cmd *cmd;
} rlab_cmd_ref;

/* 1 for the commands the host generates (`train KIND`): reachable by name, but listed under
 * their verb rather than one by one. */
RLAB_API int rlab_host_cmd_hidden(const rlab_cmd_ref *ref);

/* Commands in registration order; NULL past the end. Pointers stay valid until the plugin
 * is unloaded. ui thread. */
RLAB_API int rlab_host_cmd_count(const rlab_host *host);
RLAB_API const rlab_cmd_ref *rlab_host_cmd_at(const rlab_host *host, int i);
/* Find by shell name; NULL when unknown. ui thread. */
RLAB_API const rlab_cmd_ref *rlab_host_find_cmd(const rlab_host *host, const char *full);

/* ---- arguments: the one place values are checked ------------------------------------ */
/*
 * The shell parser and the Lua binding fill the same rlab_args and get the same messages:
 *
 *     rlab_args *a = rlab_args_new(host, "seqrec.train", &err);     // NULL: unknown command
 *     // Lua: for each key, value of the table
 *     //   integer  -> rlab_args_set_int(a, key, v, &err)
 *     //   float    -> rlab_args_set_float(a, key, v, &err)
 *     //   boolean  -> rlab_args_set_bool(a, key, v, &err)
 *     //   string   -> rlab_args_set(a, key, s, &err)   (parsed per the declared type)
 *     //   Model userdata -> rlab_args_set(a, key, model_name, &err)
 *     //   other    -> rlab_args_type_error(a, key, "table", &err)
 *     // positional Lua array entries: rlab_args_set_next(a, s, &err)
 *     if (rlab_args_finish(a, &err)) ...                              // defaults, required
 *     rlab_host_run_args(host, a, &res, &err);                        // takes a
 *
 * Messages (luaL_argerror style, prefixed with the shell name):
 *     seqrec.train: unknown argument 'epoch'
 *     seqrec.train: bad argument 'epochs' (integer >= 1 expected, got 0)
 *     seqrec.train: bad argument 'epochs' (integer expected, got 'ten')
 *     seqrec.train: bad argument 'lr' (number in [0, 1] expected, got 2)
 *     seqrec.train: bad argument 'model' (one of sasrec|mqsa expected, got 'gru')
 *     seqrec.train: bad argument 'verbose' (boolean expected, got 'maybe')
 *     seqrec.train: argument 'epochs' given twice
 *     seqrec.train: missing argument 'data'
 *     seqrec.train: too many arguments (takes 3, got 'x')
 * Setting a value never keeps a bad value: on error args is unchanged.
 */
RLAB_API rlab_args *rlab_args_new(rlab_host *host, const char *full, rlab_err *err);
RLAB_API void rlab_args_free(rlab_args *args);
/* The command the args belong to. */
RLAB_API const rlab_cmd_ref *rlab_args_cmd(const rlab_args *args);
/* Set key from text, parsed according to the declared type. */
RLAB_API int rlab_args_set(rlab_args *args, const char *key, const char *value, rlab_err *err);
/* Set the next positional argument (declaration order, skipping none) from text. */
RLAB_API int rlab_args_set_next(rlab_args *args, const char *value, rlab_err *err);
/* Typed setters (the Lua binding's numbers and booleans). set_int works for INT and FLOAT;
 * set_float for FLOAT and for INT when the value is integral; set_bool for BOOL. Any other
 * combination is a "bad argument" error naming the expected type. */
RLAB_API int rlab_args_set_int(rlab_args *args, const char *key, int64_t v, rlab_err *err);
RLAB_API int rlab_args_set_float(rlab_args *args, const char *key, double v, rlab_err *err);
RLAB_API int rlab_args_set_bool(rlab_args *args, const char *key, int v, rlab_err *err);
/* The standard message for a value of the wrong kind: "<cmd>: bad argument 'key' (<expected>
 * expected, got <got>)" (or "unknown argument" when key is not declared). Returns
 * RLAB_EINVAL. */
RLAB_API int rlab_args_type_error(rlab_args *args, const char *key, const char *got, rlab_err *err);
/* Apply defaults and check required arguments. Called by the run functions when the caller
 * has not; calling it twice is fine. */
RLAB_API int rlab_args_finish(rlab_args *args, rlab_err *err);
/* The arguments as a JSON object of the final values ({"data":"beauty","epochs":20}): given,
 * defaults, and values the command resolved (rlab_ctx_resolved); an argument with none of
 * these is left out (never null). For run records. Caller frees with rlab_free. NULL on
 * ENOMEM. */
RLAB_API char *rlab_args_to_json(const rlab_args *args);

/* Parse a shell line "cmd key=value 'quoted value' positional ..." into *out (caller frees;
 * not yet finished). Tokens are separated by blanks; '...' and "..." quote (inside "...",
 * backslash escapes \" and \\); a token is key=value when an unquoted '=' follows a bare
 * name. Errors: "unknown command 'x'", "<cmd>: unterminated quote", argument errors. ui
 * thread (or any thread while no plugin is being loaded). */
RLAB_API int rlab_host_parse(rlab_host *host, const char *line, rlab_args **out, rlab_err *err);

/* ---- help and completion ----------------------------------------------------------- */

/* All commands, grouped by plugin, one line each ("  seqrec.train    Train a sequential
 * recommender"). Caller frees with rlab_free. NULL on ENOMEM. ui thread. */
RLAB_API char *rlab_host_help(rlab_host *host);
/* Help of one command: usage line, the help text, then one line per argument with type,
 * default, range or choices, and help, then the examples (the help text's "Example: "
 * lines). A topic that is no command goes to the help provider (below). NULL and ENOTFOUND
 * ("unknown command 'x'") when neither knows it. ui thread. */
RLAB_API char *rlab_host_help_cmd(rlab_host *host, const char *full, rlab_err *err);

/* Help topics beyond the command table, such as the Lua binding's reclab.* functions:
 * fn(topic, ud) returns the text of topic (rlab_malloc'd; the host frees it) or NULL when it
 * does not know it; fn(NULL, ud) returns the lines rlab_host_help appends after the command
 * list (or NULL). One provider per host; fn NULL removes it. ui thread. */
typedef char *(*rlab_help_fn)(const char *topic, void *ud);
RLAB_API void rlab_host_set_help_fn(rlab_host *host, rlab_help_fn fn, void *ud);
/* Completion candidates for the last word of line (the text before the cursor): command
 * names when it is the first word; "key=" for arguments not yet given; "key=value" for a
 * word containing '=' (choices, true/false, dataset or model names). Words are whole tokens,
 * so the ui should break words on blanks only. Returns a NULL-terminated, sorted array;
 * free with rlab_strv_free. NULL on ENOMEM. ui thread. */
RLAB_API char **rlab_host_complete(rlab_host *host, const char *line);
RLAB_API void rlab_strv_free(char **v);

/* ---- events -------------------------------------------------------------------------- */

typedef enum rlab_event_type {
    RLAB_EV_QUEUED = 1, /* a job was queued (cmd, job_id) */
    RLAB_EV_STARTED,    /* a command started (cmd, job_id, run_id) */
    RLAB_EV_PROGRESS,   /* step, total, label, metrics */
    RLAB_EV_LOG,        /* text: one output line */
    RLAB_EV_DONE,       /* status, text: error message ("" on success), elapsed */
} rlab_event_type;

typedef struct rlab_event {
    rlab_event_type type;
    int job_id;
    const char *cmd;            /* shell name */
    int64_t run_id;             /* store run id, 0 = none */
    int64_t step, total;        /* PROGRESS */
    const char *label;          /* PROGRESS */
    int nmetrics;               /* PROGRESS */
    const rlab_metric *metrics; /* PROGRESS */
    const char *text;           /* LOG line, DONE message */
    int status;                 /* DONE: RLAB_OK, RLAB_ECANCELED or an error code */
    double elapsed;             /* DONE: seconds */
    int outer_job;              /* STARTED: the job whose thread started this one (a command
                                   called from a lua.run script), 0 = none */
} rlab_event;

/* Every pointer in ev is valid only during the call. */
typedef void (*rlab_event_fn)(const rlab_event *ev, void *ud);

/* Install the event callback (NULL to remove). Set it before submitting jobs. */
RLAB_API void rlab_host_set_event_fn(rlab_host *host, rlab_event_fn fn, void *ud);
/* Minimum seconds between two PROGRESS events of one command (the first and last steps
 * always go through). Default 0 (every report). Thread-safe. */
RLAB_API void rlab_host_set_progress_interval(rlab_host *host, double seconds);

/* ---- running commands ---------------------------------------------------------------- */

/* Run a command on the calling thread, whatever its flags (batch mode, Lua, tests). Takes
 * ownership of args. *res (may be NULL) receives the result (also on failure: the lines
 * printed before it). Returns the command's status; err holds "<cmd>: <message>".
 * RLAB_ECANCELED when cancelled through rlab_host_cancel(job id) or rlab_host_cancel_all.
 * Thread-safe with respect to jobs. */
RLAB_API int rlab_host_run_args(rlab_host *host, rlab_args *args, rlab_result **res, rlab_err *err);
/* Parse line and run it synchronously. */
RLAB_API int rlab_host_run_sync(rlab_host *host, const char *line, rlab_result **res,
                                rlab_err *err);

/* Queue a command on the worker thread (FIFO): parse + check now (errors returned here),
 * run later. *job_id (may be NULL) receives the job id. Takes ownership of args. Commands
 * without RLAB_CMD_JOB may be submitted too. Thread-safe. */
RLAB_API int rlab_host_submit_args(rlab_host *host, rlab_args *args, int *job_id, rlab_err *err);
RLAB_API int rlab_host_submit(rlab_host *host, const char *line, int *job_id, rlab_err *err);

/* Ask a job (queued or running, job or sync) to stop: a queued job is finished as cancelled
 * without running; a running one sees rlab_ctx_cancelled(). RLAB_ENOTFOUND for an unknown
 * or already finished id. Thread-safe (not async-signal-safe: the ui turns SIGINT into a
 * flag first). */
RLAB_API int rlab_host_cancel(rlab_host *host, int job_id);
/* Cancel every queued and running command; returns how many. Thread-safe. */
RLAB_API int rlab_host_cancel_all(rlab_host *host);

typedef enum rlab_job_state {
    RLAB_JOB_QUEUED = 1,
    RLAB_JOB_RUNNING,
    RLAB_JOB_DONE,      /* status RLAB_OK */
    RLAB_JOB_FAILED,    /* status is the error code */
    RLAB_JOB_CANCELLED, /* status RLAB_ECANCELED */
} rlab_job_state;

typedef struct rlab_job_info {
    int id;
    char cmd[144];
    rlab_job_state state;
    int status;
    int64_t step, total; /* last progress */
    char label[32];
    char message[320];                      /* error message when failed */
    double queued_at, started_at, ended_at; /* rlab_now() seconds, 0 = not yet */
    int64_t run_id;
    int outer; /* the running job that started this one on its thread (a command a lua.run
                  script called), 0 = none; cancelling the outer job cancels it too */
} rlab_job_info;

RLAB_API const char *rlab_job_state_name(rlab_job_state s);

/* Snapshot of one job (RLAB_ENOTFOUND when unknown or already collected). Thread-safe. */
RLAB_API int rlab_host_job_info(rlab_host *host, int job_id, rlab_job_info *out);
/* Snapshot of up to max jobs not yet collected, oldest first; returns the count. Thread-safe.
 */
RLAB_API int rlab_host_jobs(rlab_host *host, rlab_job_info *out, int max);
/* Snapshot of up to max finished jobs already collected (or run synchronously), newest
 * first: the host keeps the last RLAB_JOBS_KEPT (submitted jobs, and synchronous runs that
 * recorded a run or were called by another job). Returns the count. Thread-safe. */
enum { RLAB_JOBS_KEPT = 32 };
RLAB_API int rlab_host_jobs_finished(rlab_host *host, rlab_job_info *out, int max);
/* Block until job_id ends; return its status and message (err), hand its result to *res
 * (may be NULL: freed) and forget the job. Must not be called from the event callback or a
 * job. RLAB_ENOTFOUND for an unknown id. Thread-safe. */
RLAB_API int rlab_host_wait(rlab_host *host, int job_id, rlab_result **res, rlab_err *err);
/* Number of jobs queued or running. Thread-safe. */
RLAB_API int rlab_host_busy(rlab_host *host);

/* ---- tables as CSV ------------------------------------------------------------------- */

/* Cell (r, c) of a table as text (NULL: empty), for rlab_write_csv. */
typedef const char *(*rlab_csv_cell_fn)(const void *ud, int64_t r, int c, char *buf, size_t cap);
/* Write a table as CSV (RFC 4180: a header line of the column names, then one line per row;
 * fields with a comma, quote or line break quoted, quotes doubled) to path, through a
 * temporary file beside it renamed over it when complete. cell(ud, r, c, buf, cap) gives
 * each cell's text (it may format into buf). The one CSV writer of `export cmd=` and the
 * shell's `export view`. Errors: RLAB_EIO naming the file. Thread-safe. */
RLAB_API int rlab_write_csv(const char *path, int ncols, const char *const *cols, int64_t nrows,
                            rlab_csv_cell_fn cell, const void *ud, rlab_err *err);
/* The text of a result cell as written to CSV: integers in full, floats with the fewest
 * digits that read back as the same double, text as is, NULL for none. */
RLAB_API const char *rlab_cell_text(const rlab_cell *c, char *buf, size_t cap);

/* ---- datasets ----------------------------------------------------------------------- */
/*
 * The session's datasets: interaction tables (rlab_dataset) and dialogue corpora
 * (rlab_dialogues, ReDial / INSPIRED), in one namespace. Loading through the host keeps a
 * recipe with each dataset, JSON saying how to rebuild it, which rlab_host_record_dataset
 * writes into the store's datasets row with the sizes and the sha256 of its sources:
 *
 *     {"load":"file","path":"/abs/ml-100k","format":"ml-100k","name":"ml100k",
 *      "kind":"interactions","files":[{"path":"/abs/ml-100k/u.data","sha256":"...",
 *      "bytes":1979173},...]}
 *     {"load":"world","config":{...every generator field...},"drift_ts":[...],
 *      "checksum":"..."}                         reclab.world{...}
 *     {"load":"demo","checksum":"..."}           the built-in demo world
 *     {"load":"split","parent":"demo","method":"loo","into":"demo","part":"train",...}
 *     {"load":"plugin","plugin":"crs","maker":"prepare","params":{...}}   derived by a plugin
 *                                                (plugin.h: rlab_dataset_maker)
 *
 * Reopening a workspace (rlab_host_set_store) lists every dataset the store records at once
 * (rlab_host_dataset_names, rlab_host_datasets: state RLAB_DS_RECORDED) and rebuilds it on
 * first use, lazily like saved models: the first rlab_host_dataset_get (or
 * rlab_host_dataset_ensure) checks each source file against the recorded sha256 and size,
 * then loads it with the recorded format and name (a world is regenerated from its config
 * and checked against its checksum; a split re-splits its parent). A file that changed or
 * moved is never loaded: the dataset stays listed as RLAB_DS_UNAVAILABLE with one line
 * naming it, the path and what differs ("dataset 'ml100k': /data/u.data changed since it was
 * recorded (sha256 1a2b3c4d..., now 9f8e7d6c...; 1979173 bytes, now 1979180)"), which is
 * also the error of any command that uses it. Opening only stats the files (present, same
 * size), so a moved or resized file is reported at once without reading any data.
 */

/* Add ds under ds->name (takes ownership, also on failure). Replaces a dataset of the same
 * name (freed once no command holds it). It has no recipe: not rebuilt on reopen.
 * Thread-safe. */
RLAB_API int rlab_host_add_dataset(rlab_host *host, rlab_dataset *ds, rlab_err *err);
/* Add dialogues under name (takes ownership of d, also on failure), replacing any dataset of
 * that name. Thread-safe. */
RLAB_API int rlab_host_add_dialogues(rlab_host *host, const char *name, rlab_dialogues *d,
                                     rlab_err *err);
/* Remove by name, loaded or recorded (RLAB_ENOTFOUND). The store row stays: see
 * rlab_host_forget_dataset. Thread-safe. */
RLAB_API int rlab_host_remove_dataset(rlab_host *host, const char *name, rlab_err *err);
/* Remove and delete its store row (db may be NULL), so it does not come back on reopen. */
RLAB_API int rlab_host_forget_dataset(rlab_host *host, rlab_db *db, const char *name,
                                      rlab_err *err);
/* Names of the loaded and recorded datasets, sorted, NULL-terminated (free with
 * rlab_strv_free). */
RLAB_API char **rlab_host_dataset_names(rlab_host *host);

typedef enum rlab_ds_state {
    RLAB_DS_LOADED = 1,  /* in memory */
    RLAB_DS_RECORDED,    /* recorded in the store, rebuilt on first use */
    RLAB_DS_UNAVAILABLE, /* recorded, but cannot be rebuilt: problem says why */
} rlab_ds_state;

/* What is known of a dataset without loading it. */
typedef struct rlab_dataset_brief {
    char name[64];
    char kind[16]; /* "interactions" or "dialogues" */
    char format[32];
    char source[512];
    int64_t n_users, n_items, n_inter; /* dialogues: conversations, mentioned items, turns */
    rlab_ds_state state;
    char problem[320];
} rlab_dataset_brief;

/* Every dataset, loaded or recorded, sorted by name: *out (caller frees with rlab_free) gets
 * *n entries. Never loads anything. Thread-safe. */
RLAB_API int rlab_host_datasets(rlab_host *host, rlab_dataset_brief **out, int *n, rlab_err *err);
/* One dataset's brief; RLAB_ENOTFOUND when unknown. Thread-safe. */
RLAB_API int rlab_host_dataset_brief(rlab_host *host, const char *name, rlab_dataset_brief *out);
/* Make name loaded: RLAB_OK when it is (already, or rebuilt now from the store's record),
 * RLAB_ENOTFOUND when unknown, else why it cannot be rebuilt (RLAB_ESTATE: a source file
 * changed or moved; the loader's error). Thread-safe (one reload at a time). */
RLAB_API int rlab_host_dataset_ensure(rlab_host *host, const char *name, rlab_err *err);

/* Load path (file or folder) as format (NULL: guessed; "redial" / "inspired" or a
 * dialogue-shaped file give a dialogue dataset, anything else interactions, see
 * data/loaders.h) under name (NULL: the loader's default), with its recipe, and register it.
 * With a store connection db (may be NULL) its row is written first, so a failure leaves
 * nothing registered. *out (may be NULL) receives its brief. Errors: the loader's (naming
 * file and line), RLAB_EDB. Thread-safe (use the calling thread's connection). */
RLAB_API int rlab_host_load_dataset(rlab_host *host, rlab_db *db, const char *path,
                                    const char *format, const char *name, rlab_dataset_brief *out,
                                    rlab_err *err);
/* Generate a world from cfg (NULL: the built-in demo world) as dataset name, record it with
 * its generator config (db may be NULL) and register it. *used (may be NULL) receives the
 * config generated with. Thread-safe. */
RLAB_API int rlab_host_make_world(rlab_host *host, rlab_db *db, const rlab_world_config *cfg,
                                  const char *name, rlab_world_config *used, rlab_err *err);

/* How rlab_host_split_dataset splits (rlab_split_opts_default fills the defaults). */
typedef struct rlab_split_opts {
    const char *method;           /* "loo", "temporal" or "ratio" */
    const char *into;             /* prefix of the parts (NULL: the dataset's name) */
    double test_frac, valid_frac; /* temporal: fractions of the time line (0.2, 0) */
    double train, valid;          /* ratio: fractions of each user's rows (0.8, 0.1) */
    uint64_t seed;                /* ratio (1) */
} rlab_split_opts;
RLAB_API void rlab_split_opts_default(rlab_split_opts *o);
/* Split dataset name into "<into>.train", ".valid", ".test" (each with the parent's user and
 * item vocabularies, so dense indices agree), record them (db may be NULL) with their split
 * recipe and register them. parts (may be NULL) receives the three names and row counts
 * (n_inter). Errors: RLAB_ENOTFOUND, RLAB_EINVAL (method, fractions), RLAB_ENOMEM. */
RLAB_API int rlab_host_split_dataset(rlab_host *host, rlab_db *db, const char *name,
                                     const rlab_split_opts *o, rlab_dataset_brief parts[3],
                                     rlab_err *err);
/* The k-core of dataset parent as dataset name: users and items with fewer than k
 * interactions dropped until none is left (rlab_kcore), both vocabularies re-indexed densely;
 * interactions only (feature tables are not carried). Recorded (db may be NULL) with the
 * recipe {"load":"kcore","parent":...,"k":k}, so a reopened workspace rebuilds it from its
 * parent, and registered; *out (may be NULL) receives its brief. Errors: RLAB_ENOTFOUND,
 * RLAB_EINVAL (k < 1, a name already taken by another kind), RLAB_ENOMEM. Thread-safe. */
RLAB_API int rlab_host_kcore_dataset(rlab_host *host, rlab_db *db, const char *parent,
                                     const char *name, int k, rlab_dataset_brief *out,
                                     rlab_err *err);
/* Write the row of loaded dataset name (sizes, source, sha256, kind, recipe) into the store
 * db: for a dataset registered on another thread than db's (the shell's task thread). */
RLAB_API int rlab_host_record_dataset(rlab_host *host, rlab_db *db, const char *name,
                                      rlab_err *err);

/* ---- the session store ------------------------------------------------------------ */

/* Attach the session store at path (opened with rlab_db_open: created or upgraded; NULL
 * detaches). From then on: every loaded plugin's schema migrations run (now for loaded
 * plugins, at load for later ones; a failure refuses the plugin), every command that is
 * not RLAB_CMD_READONLY and not a core command gets a run row (plugin, command name as
 * `name`, first dataset argument, arguments as JSON config, the `seed` argument if any,
 * plugin version) that ends `done`, `failed` (with the message) or `interrupted`
 * (cancelled); rlab_ctx_metric writes metrics; rlab_host_save_model records an artifact and
 * a models row. The host opens one connection for the calling thread (sync runs, ui) and
 * the worker opens its own, so use a file, not ":memory:". The datasets the store records
 * are listed from then on and rebuilt on first use (see "datasets" above). ui thread, with
 * no job running.
 */
RLAB_API int rlab_host_set_store(rlab_host *host, const char *path, rlab_err *err);
/* The sidebar's key metric when the workspace has no "key-metric" setting (`set`). */
#define RLAB_KEY_METRIC_DEFAULT "test.ndcg@10"

/* The ui thread's store connection (NULL when none); borrowed. */
RLAB_API rlab_db *rlab_host_db(rlab_host *host);

/* ---- the sandbox (reclab --sandbox) ------------------------------------------------ */

/* Confine file paths to folder (resolved with realpath; it must exist; NULL lifts the
 * confinement): from then on every RLAB_ARG_PATH argument of every command must name
 * something inside it (base.h rlab_path_inside), checked when the command starts, or the
 * command fails with "<cmd>: bad argument 'file' (sandbox: path '/x' is outside the
 * workspace /w)". The Lua binding confines a state bound to such a host too (lua/README).
 * Errors: RLAB_EIO (no such folder), RLAB_ENOMEM. ui thread, with no job running. */
RLAB_API int rlab_host_set_sandbox(rlab_host *host, const char *folder, rlab_err *err);
/* The resolved workspace folder, or NULL when the host is not confined. Borrowed. */
RLAB_API const char *rlab_host_sandbox(const rlab_host *host);

/* ---- model persistence -------------------------------------------------------------- */

/* Find a model kind by name among the loaded plugins; *plugin (may be NULL) receives the
 * providing plugin's name. NULL when unknown. ui thread. */
RLAB_API const rlab_model_kind *rlab_host_find_model_kind(rlab_host *host, const char *kind,
                                                          const char **plugin);
/* Save registered model name into folder dir as "<dir>/<name>.safetensors" (the model's
 * bytes) plus "<dir>/<name>.json" (its metadata: name, kind, plugin, dataset, sizes,
 * describe), and, with a store, records the artifact (by path) and a models row. dir NULL:
 * no file, the checkpoint goes into the session store only (as the `save` command; *path_out
 * gets NULL), RLAB_ESTATE without a store. *path_out (may be NULL) receives the artifact path
 * (caller frees). ui thread. Errors: RLAB_ENOTFOUND (no such model), RLAB_ESTATE (model
 * cannot be saved), RLAB_EIO. */
RLAB_API int rlab_host_save_model(rlab_host *host, const char *name, const char *dir,
                                  char **path_out, rlab_err *err);
/* Load an artifact written by rlab_host_save_model (or any file the kind reads) and register
 * it as name. kind may be NULL: it is then read from the "<path without .safetensors>.json"
 * sidecar. Errors: RLAB_ENOTFOUND (unknown kind: "no plugin provides model kind 'x'"),
 * the kind's load errors. ui thread (or any thread while no plugin is loaded/unloaded). */
RLAB_API int rlab_host_load_model(rlab_host *host, const char *name, const char *path,
                                  const char *kind, rlab_err *err);

#endif /* RLAB_HOST_H */
