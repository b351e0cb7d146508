/*
 * core/host/plugin.h: the reclab plugin API. The one header a plugin includes.
 *
 * A plugin is a shared object reclab_<name>.so linked against libreclab_core.so.<ABI>. It
 * exports exactly one symbol, rlab_plugin_<name> (declare it with RLAB_PLUGIN(name)), which
 * fills a versioned descriptor of static data: name, version, summary, commands, model kinds,
 * schema migrations, views, open/close. Everything else in the plugin stays hidden.
 *
 *     #include "host/plugin.h"
 *
 *     static int hello_run(rlab_ctx *ctx, const rlab_args *args)
 *     {
 *         int64_t n = rlab_args_int(args, "times");
 *         for (int64_t i = 0; i < n && !rlab_ctx_cancelled(ctx); i++) {
 *             rlab_ctx_printf(ctx, "hello %s", rlab_args_str(args, "who"));
 *             rlab_ctx_progress(ctx, i + 1, n, "greeting", 0, NULL);
 *         }
 *         return rlab_ctx_cancelled(ctx) ? RLAB_ECANCELED : RLAB_OK;
 *     }
 *     static const rlab_arg hello_args[] = {
 *         {.name = "who", .type = RLAB_ARG_STRING, .def = "world", .help = "whom to greet"},
 *         {.name = "times", .type = RLAB_ARG_INT, .def = "1", .min = 1,
 *          .flags = RLAB_ARGF_MIN, .help = "how often"},
 *         {0}};
 *     static const rlab_cmd hello_cmds[] = {
 *         {.name = "hello", .args = hello_args, .help = "Greet someone.", .run = hello_run},
 *         {0}};
 *     RLAB_PLUGIN(hello)
 *     {
 *         RLAB_PLUGIN_INIT(out);
 *         out->name = "hello";
 *         out->version = "1.0.0";
 *         out->summary = "Greets people";
 *         out->commands = hello_cmds;
 *         return RLAB_OK;
 *     }
 *
 * The shell then runs `hello.hello who=you times=3` (or `hello.hello you 3`) and Lua runs
 * `reclab.hello.hello{who="you", times=3}`; both are parsed and checked by the host from the
 * table above, which also gives `help hello.hello` and tab completion.
 *
 * Models. A plugin that provides recommenders declares model kinds (out->models, see
 * model/model.h rlab_model_kind): a config schema (model/config.h), the step functions of
 * the core training loop (model/fit.h) and a restore from a checkpoint. The host gives every
 * kind the verbs `train KIND`, `eval`, `recommend`, `save`, `load` and `export`, one data
 * view, one evaluator and one checkpoint format; a plugin writes commands only for what is
 * not a model verb, and calls the verbs or other plugins' commands with rlab_ctx_call.
 *
 * ABI rules. RLAB_ABI_VERSION is the ABI major; it equals the SOVERSION of libreclab_core and
 * comes from CMake (RECLAB_ABI_VERSION -> compile definition RLAB_ABI_VERSION_BUILD). It is
 * bumped when a struct layout or a function signature of this header (or of a header it
 * includes) changes. Appending fields at the end of rlab_plugin, or adding functions, does
 * not bump it: the host zero-fills the fields an older plugin does not know (struct_size),
 * and refuses a plugin whose descriptor is larger than its own (a newer plugin).
 *
 * The loader's checks, in order, each refusal one line naming the file:
 *   1. dlopen(RTLD_NOW | RTLD_LOCAL) fails (not a shared object, missing symbols...)
 *   2. no entry point rlab_plugin_<name>
 *   3. abi_version != RLAB_ABI_VERSION ("built for reclab ABI X, this reclab provides ABI Y")
 *   4. abi_sizes != RLAB_ABI_SIZES (incompatible numeric types)
 *   5. struct_size > sizeof(rlab_plugin) (plugin newer than the host)
 *   6. name differs from the file name
 *   7. duplicate command, argument or model kind
 *   8. a required field is missing (name, version, summary; a command's run and help; an
 *      argument's type; a choice argument's choices; a model kind's load)
 * then open() runs, and the plugin's tables are frozen: registration happens only at load.
 * Models are the one runtime registration (rlab_ctx_register_model).
 *
 * Memory across the boundary: descriptor strings and tables are static. rlab_ctx_alloc gives
 * scratch memory freed after the command whatever its outcome. The plugin's `state` lives
 * from open to close. A model handed to the registry belongs to it (see model/model.h).
 *
 * Errors across the boundary: `run` returns RLAB_OK or an error code and explains it with
 * rlab_ctx_errorf (or by filling rlab_ctx_err(ctx) through a core call). The host prefixes
 * the command name ("seqrec.train: dataset 'ml-1m' not found"). RLAB_ECANCELED means the user
 * cancelled: return it promptly once rlab_ctx_cancelled() is true (check between batches).
 * Plugins never see a lua_State, never include ncurses/readline, never call exit().
 *
 * Threads: a command flagged RLAB_CMD_JOB runs on the host's worker thread (RLAB_CMD_SIDE:
 * on the side worker, concurrently with the job worker); other commands run on the thread
 * that called the host. All rlab_ctx_* calls are for the thread running the command. Models
 * may be scored from several threads at once (model/model.h).
 */
#ifndef RLAB_HOST_PLUGIN_H
#define RLAB_HOST_PLUGIN_H

#include "base/base.h"
#include "data/loaders.h"
#include "data/table.h"
#include "model/model.h"
#include "store/store.h"
#include "tensor/tensor.h"

#include <stddef.h>
#include <stdint.h>

/* ---- ABI version ------------------------------------------------------------------- */

/* ABI major: the compile definition RLAB_ABI_VERSION_BUILD set by CMake for reclab_core and
 * everything linking it; 1 when the headers are used without it (keep in sync with
 * RECLAB_ABI_VERSION in the top CMakeLists.txt). */
#ifdef RLAB_ABI_VERSION_BUILD
#define RLAB_ABI_VERSION ((uint32_t)(RLAB_ABI_VERSION_BUILD))
#else
#define RLAB_ABI_VERSION ((uint32_t)2)
#endif

/* Fingerprint of the numeric types and core structs plugins share with the host (Lua's
 * LUAL_NUMSIZES): sizeof(float) and sizeof(size_t) in the top nibbles, then sizeof
 * rlab_tensor and sizeof rlab_err (each mod 4096). */
#define RLAB_ABI_SIZES                                                                             \
    ((uint32_t)(((uint32_t)sizeof(float) << 28) | ((uint32_t)sizeof(size_t) << 24) |               \
                (((uint32_t)sizeof(rlab_tensor) & 0xfffu) << 12) |                                 \
                ((uint32_t)sizeof(rlab_err) & 0xfffu)))

/* ---- opaque host objects ----------------------------------------------------------- */
typedef struct rlab_host rlab_host; /* the session: plugins, commands, registries, jobs */
typedef struct rlab_ctx rlab_ctx;   /* one running command */
typedef struct rlab_args rlab_args; /* parsed, checked arguments of one command */

/* ---- command declarations ---------------------------------------------------------- */

/* Argument types. 0 is "unset" so a forgotten .type is caught at load. */
typedef enum rlab_type {
    RLAB_ARG_INT = 1, /* int32_t range (RLAB_ARGF_INT64: int64_t); min/max narrow it */
    RLAB_ARG_FLOAT,   /* double; min/max apply */
    RLAB_ARG_STRING,  /* any text */
    RLAB_ARG_BOOL,    /* true/false, yes/no, on/off, 1/0 */
    RLAB_ARG_CHOICE,  /* one of .choices (NULL-terminated) */
    RLAB_ARG_DATASET, /* name of a loaded dataset (checked when the command starts) */
    RLAB_ARG_MODEL,   /* name of a registered model (checked when the command starts) */
    RLAB_ARG_PATH,    /* file system path (not checked) */
} rlab_type;

/* Argument flags. */
enum {
    RLAB_ARGF_REQUIRED = 1u << 0, /* must be given (a default is then meaningless) */
    RLAB_ARGF_MIN = 1u << 1,      /* .min is a lower bound (inclusive) */
    RLAB_ARGF_MAX = 1u << 2,      /* .max is an upper bound (inclusive) */
    RLAB_ARGF_NEW = 1u << 3,      /* name to create: no existence check, > 63 bytes refused */
    RLAB_ARGF_INT64 = 1u << 4,    /* RLAB_ARG_INT: the whole int64_t range (seeds, ids) */
    RLAB_ARGF_REST = 1u << 5,     /* RLAB_ARG_STRING: takes the rest of the line (see below) */
};
/* The rest of the line. In the shell form, the first positional word that falls on an
 * RLAB_ARGF_REST argument starts its value, which runs verbatim to the end of the line
 * (quotes and '=' kept: `sql SELECT name FROM runs WHERE id = 2`); key=value words before it
 * are arguments as usual. In the Lua form every positional value from that one on is appended
 * to it, separated by a blank (reclab.core.compare{6, 7} gives runs = "6 7"). Declare it last
 * among the positional arguments a user types. */
/* Integer arguments. An RLAB_ARG_INT argument accepts int32_t values only (so
 * `(int)rlab_args_int(args, "n")` is always safe), narrowed by .min / .max when declared
 * (a declared bound outside the int32_t range is clamped to it). Values outside are refused
 * when parsed or set, e.g. "simulator.step: bad argument 'rounds' (integer in [1, 1000000]
 * expected, got 4294967298)". Flag RLAB_ARGF_INT64 for the arguments that really are 64-bit
 * (seeds, store ids) and read them into an int64_t / uint64_t. */

/* One argument. Arrays of them end with an entry whose name is NULL ({0}). */
typedef struct rlab_arg {
    const char *name; /* key in `key=value` and in the Lua table */
    rlab_type type;
    const char *def;            /* default as shell text ("20", "0.001", "true") or NULL */
    double min, max;            /* bounds, active with RLAB_ARGF_MIN / RLAB_ARGF_MAX */
    const char *const *choices; /* RLAB_ARG_CHOICE: NULL-terminated list */
    unsigned flags;             /* RLAB_ARGF_* */
    const char *help;           /* one line */
} rlab_arg;

/* Command flags. */
enum {
    RLAB_CMD_JOB = 1u << 0,      /* long: runs on the worker thread, reports progress */
    RLAB_CMD_READONLY = 1u << 1, /* changes nothing (no run record) */
    RLAB_CMD_RECORD = 1u << 2,   /* core commands: keep a run record all the same (eval) */
    RLAB_CMD_SIDE = 1u << 3,     /* with RLAB_CMD_JOB: short work (a query, a data load) that
                                    runs on the host's side worker, beside the job worker, so
                                    it never waits behind a training job */
};

/* One command. Arrays end with an entry whose name is NULL ({0}). The shell name is
 * "<plugin>.<name>" (commands of the host's own pseudo-plugin "core" have no prefix). */
typedef struct rlab_cmd {
    const char *name;     /* [a-z0-9_-]+ */
    const rlab_arg *args; /* NULL-name terminated, or NULL for none */
    const char *help;     /* first line: summary; more lines: details for `help <cmd>`;
                             lines starting "Example: " are shown last, as examples */
    unsigned flags;       /* RLAB_CMD_* */
    int (*run)(rlab_ctx *ctx, const rlab_args *args);
} rlab_cmd;

/* A view the ui can draw, described as data (the ui owns all drawing). Provisional: the ui
 * defines what each kind reads. */
typedef struct rlab_view_kind {
    const char *name;   /* "feed" */
    const char *title;  /* "Simulation feed" */
    const char *kind;   /* "table", "chart", "chat", "feed" */
    const char *source; /* SQL query or event kind the view reads */
} rlab_view_kind;

/* A way to rebuild a dataset the plugin derived from other datasets (crs.prepare's
 * catalogue), so a reopened workspace has it again. A command that makes one hands it to the
 * session with rlab_ctx_add_dataset_recipe(ctx, ds, maker, params): the store records the
 * recipe {"load":"plugin","plugin":<this plugin>,"maker":<maker>,"params":<params>}, and on
 * first use after a reopen the host calls the maker's rebuild with the same params (the
 * plugin must be loaded by then, else the dataset is listed as unavailable with the reason).
 * rebuild gets its inputs like a command would (rlab_host_dataset_get /
 * rlab_host_dialogues_get: recorded parents are rebuilt in turn), and must give the same
 * dataset (same items and order) from the same inputs: it runs on whatever thread first asks
 * for the dataset, with the host's reload lock held (other reloads wait). *out receives a new
 * dataset named `name` (the host takes it). Errors: the plugin's (they name the missing or
 * changed input). */
typedef struct rlab_dataset_maker {
    const char *name; /* [a-z0-9_-]+, unique in the plugin */
    int (*rebuild)(rlab_host *host, const char *name, const char *params, rlab_dataset **out,
                   rlab_err *err);
} rlab_dataset_maker;

/* ---- the plugin descriptor --------------------------------------------------------- */
typedef struct rlab_plugin {
    uint32_t struct_size;     /* sizeof(rlab_plugin) the plugin was built with */
    uint32_t abi_version;     /* RLAB_ABI_VERSION at build time */
    uint32_t abi_sizes;       /* RLAB_ABI_SIZES at build time */
    const char *name;         /* must equal <name> in reclab_<name>.so and rlab_plugin_<name> */
    const char *version;      /* plugin semver, recorded in every run row */
    const char *summary;      /* one line for `help` and the sidebar */
    const rlab_cmd *commands; /* NULL-name terminated, or NULL */
    const rlab_model_kind *models; /* NULL-name terminated, or NULL */
    const rlab_migration *schema;  /* append-only, terminated by {0} (no sql, no fn), or NULL */
    const rlab_view_kind *views;   /* NULL-name terminated, or NULL */
    /* Called once after validation, before any command runs; *state is handed to commands
     * (rlab_ctx_state) and to close. Optional. A failure refuses the plugin. */
    int (*open)(rlab_host *host, void **state, rlab_err *err);
    /* Called at unload (or host free) after the plugin's models are gone. Optional. */
    void (*close)(void *state);
    /* Rebuild functions of the datasets its commands derive (rlab_ctx_add_dataset_recipe).
     * NULL-name terminated, or NULL. */
    const rlab_dataset_maker *makers;
    /* New fields are only appended here. */
} rlab_plugin;

/* The entry point type, and the macro that declares one with the export attribute:
 *     RLAB_PLUGIN(seqrec) { RLAB_PLUGIN_INIT(out); out->name = "seqrec"; ...; return RLAB_OK; }
 * host and err may be used inside (err for a failing entry point: the plugin is refused with
 * the message). `out` points to zeroed memory at least as large as the host's descriptor. */
typedef int (*rlab_plugin_entry)(rlab_host *host, rlab_plugin *out, rlab_err *err);

#define RLAB_PLUGIN_EXPORT __attribute__((visibility("default")))
#define RLAB_PLUGIN(name)                                                                          \
    RLAB_PLUGIN_EXPORT int rlab_plugin_##name(rlab_host *host, rlab_plugin *out, rlab_err *err);   \
    RLAB_PLUGIN_EXPORT int rlab_plugin_##name(rlab_host *host __attribute__((unused)),             \
                                              rlab_plugin *out,                                    \
                                              rlab_err *err __attribute__((unused)))

/* Sets the three version fields so authors cannot forget them (sqlite3ext.h's INIT idea). */
#define RLAB_PLUGIN_INIT(out)                                                                      \
    do {                                                                                           \
        (out)->struct_size = (uint32_t)sizeof(rlab_plugin);                                        \
        (out)->abi_version = RLAB_ABI_VERSION;                                                     \
        (out)->abi_sizes = RLAB_ABI_SIZES;                                                         \
    } while (0)

/* ---- reading arguments (inside run) ------------------------------------------------ */
/* Every argument has a value when run is called: the given one or its default (checked
 * like a given value). An argument without default that was not given reads as 0 / 0.0 /
 * false / NULL. Asking for a name the command does not declare logs a warning and returns
 * the same zero values. All returned strings live as long as args. */
RLAB_API int64_t rlab_args_int(const rlab_args *args, const char *name);
RLAB_API double rlab_args_float(const rlab_args *args, const char *name); /* also for INT */
RLAB_API int rlab_args_bool(const rlab_args *args, const char *name);
/* STRING, CHOICE, DATASET, MODEL, PATH (and the text of any other type). */
RLAB_API const char *rlab_args_str(const rlab_args *args, const char *name);
/* Index of a CHOICE argument's value in .choices, -1 when unset. */
RLAB_API int rlab_args_choice(const rlab_args *args, const char *name);
/* 1 when the user gave the argument explicitly, 0 when it comes from its default or is
 * unset. */
RLAB_API int rlab_args_given(const rlab_args *args, const char *name);

/* ---- the running command ----------------------------------------------------------- */

/* A named metric value in a progress report. */
typedef struct rlab_metric {
    const char *name;
    double value;
} rlab_metric;

/* The host, the full command name ("seqrec.train"), the plugin's state from open (NULL for
 * none), and the job id (> 0; sync runs get ids too). */
RLAB_API rlab_host *rlab_ctx_host(const rlab_ctx *ctx);
RLAB_API const char *rlab_ctx_command(const rlab_ctx *ctx);
RLAB_API void *rlab_ctx_state(const rlab_ctx *ctx);
RLAB_API int rlab_ctx_job_id(const rlab_ctx *ctx);

/* True once the user asked to cancel (Ctrl-C, rlab_host_cancel). Check between batches and
 * return RLAB_ECANCELED promptly. Cheap (one atomic load). */
RLAB_API int rlab_ctx_cancelled(const rlab_ctx *ctx);

/* Report progress: step of total (total 0 = unknown), a label ("epoch"), and n metrics so
 * far (may be 0/NULL). Delivered to the host's event callback (copied: all pointers are
 * borrowed for the call), rate-limited by rlab_host_set_progress_interval except for the
 * first and last step.
 *     rlab_ctx_progress(ctx, ep + 1, epochs, "epoch", 2,
 *                       (rlab_metric[]){{"loss", loss}, {"ndcg@10", ndcg}});  */
RLAB_API void rlab_ctx_progress(rlab_ctx *ctx, int64_t step, int64_t total, const char *label,
                                int n, const rlab_metric *metrics);

/* One line of output for the log (a trailing newline is dropped; embedded newlines split
 * lines). Kept in the result and delivered as an RLAB_EV_LOG event. */
RLAB_API void rlab_ctx_printf(rlab_ctx *ctx, const char *fmt, ...) RLAB_PRINTF(2, 3);

/* Record the command's error message (the host prefixes "<command>: ") and return code, so
 * `return rlab_ctx_errorf(ctx, RLAB_EINVAL, "k must be < %d", n);` works. */
RLAB_API int rlab_ctx_errorf(rlab_ctx *ctx, int code, const char *fmt, ...) RLAB_PRINTF(3, 4);
/* The context's error report, to pass to core calls that take rlab_err *. If run returns an
 * error code, the host reports this message. */
RLAB_API rlab_err *rlab_ctx_err(rlab_ctx *ctx);

/* Scratch memory (64-byte aligned, zeroed) freed after the command, success or failure.
 * NULL on ENOMEM. Never free it yourself. */
RLAB_API void *rlab_ctx_alloc(rlab_ctx *ctx, size_t n);

/* A loaded dataset / registered model by name, held for the rest of the command (no release
 * needed). NULL when absent, with "dataset 'x' not found" / "model 'x' not found" recorded
 * in the context error (return RLAB_ENOTFOUND). */
RLAB_API const rlab_dataset *rlab_ctx_dataset(rlab_ctx *ctx, const char *name);
RLAB_API const rlab_model *rlab_ctx_model(rlab_ctx *ctx, const char *name);
/* A dialogue dataset (ReDial, INSPIRED: conversations of turns with mentioned items, see
 * data/loaders.h) by name, held for the rest of the command. NULL when absent or not
 * dialogues, with the reason in the context error. A dataset recorded in the workspace's
 * store is rebuilt on first use, for both functions (its message when it cannot be). */
RLAB_API const rlab_dialogues *rlab_ctx_dialogues(rlab_ctx *ctx, const char *name);

/* Hand a new model to the session registry (takes ownership, also on failure). Fills
 * m->plugin with this plugin's name when empty. Replaces a model of the same name. */
RLAB_API int rlab_ctx_register_model(rlab_ctx *ctx, rlab_model *m);
/* Hand a new dataset to the session (takes ownership, also on failure); replaces one of the
 * same name. */
RLAB_API int rlab_ctx_add_dataset(rlab_ctx *ctx, rlab_dataset *ds);
/* The same for a dataset derived by this plugin that a reopened workspace rebuilds: maker
 * names one of the plugin's descriptor makers, params (a JSON object, copied) is what its
 * rebuild receives. Recorded in the store (when the command has one) before it is
 * registered. Errors: RLAB_EINVAL (unknown maker, params not a JSON object), RLAB_EDB. */
RLAB_API int rlab_ctx_add_dataset_recipe(rlab_ctx *ctx, rlab_dataset *ds, const char *maker,
                                         const char *params);

/* The store connection for this thread and the run row of this command; NULL / 0 when the
 * session has no store or the command is READONLY. */
RLAB_API rlab_db *rlab_ctx_db(rlab_ctx *ctx);
RLAB_API int64_t rlab_ctx_run_id(const rlab_ctx *ctx);
/* Name the model kind and dataset of this command's run where the run row does not have them
 * yet (the host fills the dataset from a DATASET argument at the start, and both from a model
 * registered by the command). NULL leaves a column as it is; no-op without a run. A store
 * error is logged and returned; it does not set the command's error. */
RLAB_API int rlab_ctx_run_describe(rlab_ctx *ctx, const char *model_kind, const char *dataset);
/* The value this command actually used for argument name, when it was not given and has no
 * declared default, or the command derived it (the model's dataset, the parent's seed):
 * parsed like a given value (typed setters' rules), kept in the arguments, and the run row's
 * config (and seed column, for "seed") records it. RLAB_EINVAL for a bad value, also set as
 * the context error. */
RLAB_API int rlab_ctx_resolved(rlab_ctx *ctx, const char *name, const char *value);
/* Record a metric of this command's run (buffered by the store; no-op without a store).
 * Also added to the result as a scalar "<split>.<name>" of the last call. */
RLAB_API int rlab_ctx_metric(rlab_ctx *ctx, int64_t step, const char *split, const char *name,
                             const char *protocol, double value);

/* ---- results ------------------------------------------------------------------------ */
/* Results are values the ui shows and Lua returns: scalars and tables of typed cells. */
typedef enum rlab_cell_type {
    RLAB_CELL_NULL = 0,
    RLAB_CELL_INT,
    RLAB_CELL_FLOAT,
    RLAB_CELL_TEXT,
    RLAB_CELL_MODEL, /* text naming a registered model: Lua turns it into a Model handle */
} rlab_cell_type;

typedef struct rlab_cell {
    rlab_cell_type type;
    int64_t i;     /* INT */
    double f;      /* FLOAT */
    const char *s; /* TEXT, MODEL (owned by the result) */
} rlab_cell;

typedef struct rlab_table {
    char *name;
    int ncols;
    char **cols; /* [ncols] */
    int64_t nrows;
    rlab_cell *cells; /* [nrows][ncols] */
    int64_t cap;      /* rows allocated (private) */
} rlab_table;

/* Named scalar results (a later value of the same name replaces the earlier). */
RLAB_API void rlab_ctx_result_int(rlab_ctx *ctx, const char *name, int64_t v);
RLAB_API void rlab_ctx_result_float(rlab_ctx *ctx, const char *name, double v);
RLAB_API void rlab_ctx_result_str(rlab_ctx *ctx, const char *name, const char *v);
RLAB_API void rlab_ctx_result_model(rlab_ctx *ctx, const char *name, const char *model_name);
/* A new result table with ncols named columns (names copied). NULL on ENOMEM (the context
 * then fails the command with ENOMEM). The table is owned by the result. */
RLAB_API rlab_table *rlab_ctx_result_table(rlab_ctx *ctx, const char *name, int ncols,
                                           const char *const *cols);
/* Append a row: types has one character per column: 'i' int, 'l' int64_t, 'f' double,
 * 's' const char * (copied; NULL = null cell), 'm' model name, '-' null (no argument).
 *     rlab_table_add_row(t, "sif", "bpr", 10, 0.0312);
 * RLAB_EINVAL when types does not match the column count, RLAB_ENOMEM. */
RLAB_API int rlab_table_add_row(rlab_table *t, const char *types, ...);
/* Append a row of ncols cells (text copied). */
RLAB_API int rlab_table_add_cells(rlab_table *t, const rlab_cell *row);

/* ---- results of a command (also of a called one, see rlab_ctx_call) ------------------ */

typedef struct rlab_scalar {
    char *name;
    rlab_cell value;
} rlab_scalar;

/* What a command produced: log lines, scalars, tables. Owned by whoever received it. */
typedef struct rlab_result {
    int nlines;
    char **lines;
    int nscalars;
    rlab_scalar *scalars;
    int ntables;
    rlab_table **tables;
    int cap_lines, cap_scalars, cap_tables; /* private */
} rlab_result;

RLAB_API void rlab_result_free(rlab_result *res);
/* A scalar by name, NULL when absent. */
RLAB_API const rlab_cell *rlab_result_scalar(const rlab_result *res, const char *name);

/* ---- calling another plugin's command or a host verb -------------------------------- */
/*
 * A plugin uses other plugins only through these calls (never through the program API in
 * host/host.h): build the arguments with typed setters, checked against the callee's own
 * declaration, then run the command synchronously inside this one.
 *
 *     rlab_args *a = rlab_ctx_args(ctx, "train bprmf");   // NULL: unknown command (ctx err)
 *     if (!a || rlab_args_set(a, "data", "demo", rlab_ctx_err(ctx)) ||
 *         rlab_args_set_int(a, "epochs", 5, rlab_ctx_err(ctx)))
 *         return rlab_args_free(a), rlab_ctx_err(ctx)->code;   // the callee's message
 *     rlab_result *res = NULL;
 *     int rc = rlab_ctx_call(ctx, a, &res);               // takes a
 *     ... rlab_result_scalar(res, "test.ndcg@10") ...
 *     rlab_result_free(res);
 *
 * Unknown or out-of-range arguments fail at the setter with the callee's message
 * ("train bprmf: bad argument 'epochs' (integer in [1, 100000] expected, got 0)"). The called
 * command runs on this thread with this command's store connection, sees this command's
 * cancellation, keeps its own run record (non-READONLY commands), and its output lines are
 * forwarded to this command's log. Its error becomes this command's error (the callee's
 * name prefixed).
 */
/* New arguments for command `full` ("train bprmf", "simulator.step", "eval"). NULL with the
 * context's error set when unknown. */
RLAB_API rlab_args *rlab_ctx_args(rlab_ctx *ctx, const char *full);
RLAB_API void rlab_args_free(rlab_args *args);
/* Setters (see host/host.h for the program-side description): text parsed per the declared
 * type; typed values for numbers and booleans. On error args is unchanged and err holds
 * "<cmd>: bad argument ...". */
RLAB_API int rlab_args_set(rlab_args *args, const char *key, const char *value, rlab_err *err);
RLAB_API int rlab_args_set_int(rlab_args *args, const char *key, int64_t v, rlab_err *err);
RLAB_API int rlab_args_set_float(rlab_args *args, const char *key, double v, rlab_err *err);
RLAB_API int rlab_args_set_bool(rlab_args *args, const char *key, int v, rlab_err *err);
/* Apply the declared defaults and check required arguments (rlab_ctx_call does it; a plugin
 * that reads args it built itself, without calling, does it first). Twice is fine. */
RLAB_API int rlab_args_finish(rlab_args *args, rlab_err *err);
/* The arguments as a JSON object of their values (given, default or resolved; an argument
 * without a value is left out), for records. Caller frees with rlab_free; NULL on ENOMEM. */
RLAB_API char *rlab_args_to_json(const rlab_args *args);
/* 1 when the command of args declares an argument called name. */
RLAB_API int rlab_args_has(const rlab_args *args, const char *name);
/* Run the command of args (taken) synchronously inside ctx's command. *res (may be NULL)
 * receives its result, also on failure. Returns its status; on failure the context's error
 * holds its message. */
RLAB_API int rlab_ctx_call(rlab_ctx *ctx, rlab_args *args, rlab_result **res);
/* Parse a shell-form line ("train bprmf data=demo epochs=5") and call it like
 * rlab_ctx_call. */
RLAB_API int rlab_ctx_call_line(rlab_ctx *ctx, const char *line, rlab_result **res);

/* ---- host services a plugin may use outside a command (model kind load, open) -------- */

/* A dataset with one new reference (NULL when absent); give it back with
 * rlab_host_dataset_release. Thread-safe. */
RLAB_API rlab_dataset *rlab_host_dataset_get(rlab_host *host, const char *name);
RLAB_API void rlab_host_dataset_release(rlab_host *host, rlab_dataset *ds);
/* rlab_host_dataset_get with the reason when NULL in *err (not found, or a recorded dataset
 * that cannot be rebuilt: its message, e.g. the file that changed). err may be NULL. */
RLAB_API rlab_dataset *rlab_host_dataset_get_err(rlab_host *host, const char *name, rlab_err *err);
/* The same for dialogue datasets: a reference to the named dialogues (NULL when absent or
 * not dialogues), given back with rlab_host_dialogues_release. For the conversational
 * recommenders: `data=redial_test` names the corpus. Thread-safe. */
RLAB_API rlab_dialogues *rlab_host_dialogues_get(rlab_host *host, const char *name);
RLAB_API void rlab_host_dialogues_release(rlab_host *host, rlab_dialogues *d);
/* The session's model registry (thread-safe; see model/model.h). */
RLAB_API rlab_models *rlab_host_models(rlab_host *host);
/* The registered model name, holding a reference (release with rlab_model_release); when
 * the session has no such model but the store holds one (kept by the command that made it,
 * or saved, in this or an earlier session), it is restored from the store's bytes first.
 * Read models by name with this rather than rlab_models_get, so a reopened workspace's models
 * are found. NULL with RLAB_ENOTFOUND when neither has it. ui thread, or the thread of a
 * running command (a kind's fit reading another model: rlab_fit.host), which then reads the
 * store through that command's connection. */
RLAB_API rlab_model *rlab_host_model_get(rlab_host *host, const char *name, rlab_err *err);
/* Register a model (takes ownership, also on failure). Thread-safe. */
RLAB_API int rlab_host_register_model(rlab_host *host, rlab_model *m, rlab_err *err);
/* The state a loaded plugin's open returned (NULL when none or not loaded). */
RLAB_API void *rlab_host_plugin_state(rlab_host *host, const char *plugin);

#endif /* RLAB_HOST_PLUGIN_H */
