/*
 * core/host/host_internal.h: private structures shared by the host's files (host.c loader
 * and registries, args.c parsing/help/completion, ctx.c running commands and results, job.c
 * the worker, builtin.c the core commands). Not installed, not for plugins.
 *
 * Locking: host->mu protects the job list, the dataset list, the event callback and the
 * progress interval. The plugin and command tables are touched only by the ui thread
 * (load/unload), and a job's plugin cannot be unloaded while the job exists, so the worker
 * reads its job's command record without a lock.
 */
#ifndef RLAB_HOST_INTERNAL_H
#define RLAB_HOST_INTERNAL_H

#include "host/host.h"

#include <pthread.h>
#include <stdatomic.h>

typedef struct rlab_plugin_rec {
    char name[64];
    char file[512];
    void *dl;         /* dlopen handle, NULL for core and static plugins */
    rlab_plugin desc; /* host copy, zero-filled past the plugin's struct_size */
    void *state;      /* from open */
    int opened;       /* open succeeded: close is due */
} rlab_plugin_rec;

typedef struct rlab_cmd_rec {
    rlab_cmd_ref ref; /* ref.full points into full, ref.plugin into plugin->name */
    char full[144];
    rlab_plugin_rec *plugin;
    int nargs; /* declared arguments */
    /* generated `train KIND` commands (verbs.c): the kind, the command and its arguments
     * (owned), hidden from command lists */
    const rlab_model_kind *kind;
    rlab_cmd own_cmd;
    int hidden;
} rlab_cmd_rec;

/* Worker lanes: the job worker runs RLAB_CMD_JOB commands one at a time in FIFO order; the
 * side worker does the same for RLAB_CMD_JOB | RLAB_CMD_SIDE commands (short work: a query,
 * a data load), so they never wait behind a training job. Each worker opens its own store
 * connection. */
enum { RLAB_LANE_JOB = 0, RLAB_LANE_SIDE, RLAB_NLANES };

typedef struct rlab_worker {
    rlab_host *host;
    int lane;
    pthread_t thread;
    int started;
    rlab_db *db; /* the worker's own store connection (opened on its first job) */
    int db_gen;  /* host->db_gen it was opened for */
} rlab_worker;

typedef struct rlab_job rlab_job;
struct rlab_job {
    int id;
    int sync;        /* run on the caller's thread, never queued */
    int lane;        /* RLAB_LANE_* of a queued job */
    int announced;   /* its QUEUED event went out: a worker may take it */
    rlab_args *args; /* owned */
    const rlab_cmd_rec *cmd;
    rlab_job_state state;
    int status;
    atomic_int cancel;
    char message[320];
    rlab_result *res; /* owned until collected */
    int64_t step, total;
    char label[32];
    double queued_at, started_at, ended_at;
    int64_t run_id;
    rlab_job *next;
    rlab_job *outer;         /* the job running on the thread that started this sync run (a
                                command called from a lua.run script): its cancel reaches
                                this one; it outlives this run (same thread, deeper frame) */
    struct rlab_ctx *parent; /* a nested call (rlab_ctx_call): the calling command, whose job
                                id, store connection and cancellation it shares; not in the
                                host's job list, no STARTED/DONE events */
};

/* A loaded dataset: interactions (ds) or dialogues (dlg), one namespace for both. */
typedef struct rlab_ds_entry rlab_ds_entry;
struct rlab_ds_entry {
    char name[64];
    rlab_dataset *ds;    /* interactions, or NULL */
    rlab_dialogues *dlg; /* dialogues, or NULL */
    char *recipe;        /* how to rebuild it (JSON, owned); NULL: it cannot be rebuilt */
    char sha256[65];     /* of its source files ("" = none) */
    int refs;            /* borrowers (not counting the registry) */
    int detached;        /* removed or replaced: freed when refs drops to 0 */
    rlab_ds_entry *next;
};

/* A dataset the store records that this session has not loaded (yet): listed at once,
 * rebuilt from its recipe on first use (datasets.c). */
typedef struct rlab_ds_rec rlab_ds_rec;
struct rlab_ds_rec {
    char name[64], kind[16], format[32], sha256[65];
    char source[512];
    char *recipe; /* owned; NULL when the row has none and none could be derived */
    int64_t n_users, n_items, n_inter;
    char problem[320]; /* why it cannot be reloaded ("" = none known) */
    rlab_ds_rec *next;
};

struct rlab_host {
    /* ui-thread tables */
    char **dirs;
    int ndirs;
    rlab_plugin_rec **plugins;
    int nplugins, cap_plugins;
    rlab_cmd_rec **cmds;
    int ncmds, cap_cmds;
    char **refusals;
    int nrefusals, cap_refusals;

    rlab_models *models; /* thread-safe on its own */
    int keep_models;     /* models registered by commands are saved into the store */

    /* everything below under mu */
    pthread_mutex_t mu;
    pthread_cond_t cv; /* a job changed state, or the queue grew */
    rlab_job *jobs;    /* all jobs not yet collected, in submission order */
    int next_job_id;
    rlab_job_info kept[RLAB_JOBS_KEPT]; /* finished jobs, a ring (rlab_host_jobs_finished) */
    int nkept, kept_head;
    rlab_worker workers[RLAB_NLANES];
    int stopping;
    rlab_ds_entry *datasets;
    rlab_ds_rec *recorded; /* recorded in the store, not loaded */
    rlab_event_fn ev_fn;
    void *ev_ud;
    double progress_interval;
    char *db_path; /* session store file, NULL = none */
    char *sandbox; /* resolved workspace folder of --sandbox (sandbox.c), NULL = none */
    int db_gen;    /* bumped by rlab_host_set_store: the worker reopens */

    pthread_mutex_t reload_mu; /* one lazy reload at a time (recursive: a split's parent) */

    /* the ui thread's store connection (and sync runs'); each worker has its own */
    rlab_db *db;

    /* extra help topics (rlab_host_set_help_fn) */
    rlab_help_fn help_fn;
    void *help_ud;
};

/* one output line / scratch block / held object of a running command */
typedef struct rlab_scratch rlab_scratch;

/* The job running on the calling thread (rlab__run_job sets it), NULL when none. */
rlab_job *rlab__current_job(void);
/* The command running on the calling thread (innermost), NULL when none. */
struct rlab_ctx *rlab__current_ctx(void);

struct rlab_ctx {
    rlab_host *host;
    rlab_job *job;
    const rlab_cmd_rec *cmd;
    rlab_err err;
    rlab_result *res;
    rlab_scratch *scratch;
    rlab_dataset **held_ds;
    int nheld_ds, cap_held_ds;
    rlab_model **held_models;
    int nheld_models, cap_held_models;
    rlab_dialogues **held_dlg;
    int nheld_dlg, cap_held_dlg;
    int resolved; /* rlab_ctx_resolved changed the arguments: rewrite the run's config */
    double last_progress;
    int nprogress;
    int oom;
    rlab_db *db;
    int64_t run_id;
    int64_t last_call_run; /* run recorded by the last rlab_ctx_call made from here, 0 = none */
    char group[48]; /* rlab__ctx_group: "run 3/12"; a nested call's progress labels carry it */
};

/* ctx.c: the run id the last rlab_ctx_call from ctx recorded (0 = none). */
int64_t rlab__ctx_last_call_run(const rlab_ctx *ctx);
/* ctx.c: name the place of ctx's command in a larger whole ("run 3/12" of a sweep): the
 * progress events of the commands it calls then read "run 3/12 epoch", so the status line
 * shows both. NULL or "" clears it. */
void rlab__ctx_group(rlab_ctx *ctx, const char *label);

/* args.c */
const char *rlab__type_name(rlab_type t);
/* Check a default value of an argument declaration; 0 when fine, else fills why. */
int rlab__check_default(const rlab_arg *a, char *why, size_t size);
const rlab_arg *rlab__args_decl(const rlab_args *args, int i);
int rlab__args_count(const rlab_args *args);
int rlab__args_is_set(const rlab_args *args, int i);
/* "pop|itemknn|...": the model kinds with a train command (caller frees). */
char *rlab__kind_list(const rlab_host *host);

/* sandbox.c: RLAB_EINVAL naming the first PATH argument outside the workspace. */
int rlab__sandbox_args(const rlab_host *h, const rlab_args *args, rlab_err *err);

/* host.c */
const rlab_cmd_rec *rlab__find_cmd_rec(const rlab_host *h, const char *full);
void rlab__emit(rlab_host *h, const rlab_event *ev);
int rlab__add_refusal(rlab_host *h, const char *line);
int rlab__register_builtin(rlab_host *h, const rlab_plugin *desc, rlab_err *err);
const rlab_plugin *rlab__builtin_plugin(void);

/* ctx.c: run one job (sync or from the worker); fills job->state/status/message/res. */
void rlab__run_job(rlab_host *h, rlab_job *job);
rlab_result *rlab__result_new(void);

/* hoststore.c: run records and plugin schemas (no-ops without a store) */
int rlab__store_migrate(rlab_host *h, const rlab_plugin_rec *p, rlab_err *err);
int rlab__run_begin(rlab_ctx *ctx, rlab_err *err);
/* Close the command's run (no-op without one); on a store failure logs it and returns the
 * error "<cmd>: cannot record the end of run N: ..." in err. */
int rlab__run_end(rlab_ctx *ctx, int status, const char *message, rlab_err *err);
void rlab__worker_db(rlab_host *h, rlab_ctx *ctx);
void rlab__store_close(rlab_host *h);

/* datasets.c */
void rlab__datasets_free(rlab_host *h);
/* Read the store's dataset rows into h->recorded (those not loaded), checking their sources
 * cheaply (present, same size). */
int rlab__datasets_from_store(rlab_host *h, rlab_db *db, rlab_err *err);
/* The interaction dataset name with a reference, reloading it when recorded; NULL with err
 * saying why (not found, holds dialogues, its source changed...). */
rlab_dataset *rlab__dataset_get_err(rlab_host *h, const char *name, rlab_err *err);
/* Register ds (taken, also on failure), derived by plugin's maker from params (JSON object),
 * with its plugin recipe, recorded first in db (may be NULL). */
int rlab__add_derived(rlab_host *h, rlab_db *db, const char *plugin, rlab_dataset *ds,
                      const char *maker, const char *params, rlab_err *err);
rlab_dialogues *rlab__dialogues_get_err(rlab_host *h, const char *name, rlab_err *err);
/* 1 when name is a dialogue dataset (loaded or recorded). */
int rlab__is_dialogues(rlab_host *h, const char *name);

/* args.c: set an argument to the value a command resolved (rlab_ctx_resolved) */
int rlab__args_resolve(rlab_args *args, const char *key, const char *value, rlab_err *err);

/* job.c */
rlab_job *rlab__job_new(rlab_host *h, rlab_args *args, int sync, rlab_err *err);
void rlab__job_free(rlab_job *job);
void rlab__jobs_shutdown(rlab_host *h);
int rlab__plugin_busy(rlab_host *h, const rlab_plugin_rec *p);

/* verbs.c: the model verbs and the generated `train KIND` commands */
int rlab__kind_check(const rlab_model_kind *k, char *why, size_t size);
rlab_cmd_rec *rlab__kind_cmd_new(rlab_plugin_rec *p, const rlab_model_kind *k);
void rlab__cmd_rec_free(rlab_cmd_rec *cr);
extern const rlab_arg rlab__train_args[], rlab__eval_args[], rlab__recommend_args[],
    rlab__save_args[], rlab__load_args[], rlab__export_args[];
int rlab__verb_train_kindless(rlab_ctx *ctx, const rlab_args *args);
int rlab__verb_eval(rlab_ctx *ctx, const rlab_args *args);
int rlab__verb_recommend(rlab_ctx *ctx, const rlab_args *args);
int rlab__verb_save(rlab_ctx *ctx, const rlab_args *args);
int rlab__verb_load(rlab_ctx *ctx, const rlab_args *args);
int rlab__verb_export(rlab_ctx *ctx, const rlab_args *args);

/* records.c: runs, show, compare, sql, and the export of a run (file written as JSON when
 * json, else CSV) */
extern const rlab_arg rlab__runs_args[], rlab__show_args[], rlab__compare_args[], rlab__sql_args[];
int rlab__cmd_runs(rlab_ctx *ctx, const rlab_args *args);
int rlab__cmd_show(rlab_ctx *ctx, const rlab_args *args);
int rlab__cmd_compare(rlab_ctx *ctx, const rlab_args *args);
int rlab__cmd_sql(rlab_ctx *ctx, const rlab_args *args);
int rlab__cmd_chart(rlab_ctx *ctx, const rlab_args *args);
/* sweep.c, experiment.c: experiments (sweeps, their comparison and report) */
extern const rlab_arg rlab__sweep_args[], rlab__report_args[];
int rlab__cmd_sweep(rlab_ctx *ctx, const rlab_args *args);
int rlab__cmd_report(rlab_ctx *ctx, const rlab_args *args);
/* compare EXP [baseline=] [metric=] ...: the experiment form of `compare` (records.c calls it
 * when its first word names an experiment); rest holds the words after EXP. */
int rlab__compare_experiment(rlab_ctx *ctx, const char *exp, const char *rest,
                             const rlab_args *args);
/* 1 when the store has an experiment called name. */
int rlab__experiment_exists(rlab_ctx *ctx, const char *name);
extern const rlab_arg rlab__chart_args[];
int rlab__export_cmd(rlab_ctx *ctx, const char *line, const char *table, const char *file);
int rlab__export_run(rlab_ctx *ctx, const char *run, const char *file, int json);

/* host.c: one checkpoint per model. Save registered model name to file (NULL: into the store
 * only, or ./NAME.safetensors without a store; *path_out receives the file written, NULL when
 * none); load a checkpoint file and register it as name (NULL: its saved name, copied to
 * got[64]); expect (may be NULL) is the kind the file must hold. */
int rlab__host_save_model_ctx(rlab_host *h, rlab_ctx *ctx, const char *name, const char *file,
                              char **path_out, rlab_err *err);
int rlab__host_load_ckpt(rlab_host *h, const char *name, const char *file, const char *expect,
                         char got[64], rlab_err *err);

/* Restore a model saved in the store db into the registry (see rlab_host_model_get). */
int rlab__host_restore_model(rlab_host *h, rlab_db *db, const char *name, rlab_err *err);

#endif /* RLAB_HOST_INTERNAL_H */
