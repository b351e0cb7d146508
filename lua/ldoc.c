/*
 * lua/ldoc.c: the Lua API's help, one table for every function of the `reclab` module. It is
 * the one source of three things: `help reclab.NAME` in the shell and with -c (the host's help
 * provider, registered by rlab_lua_register_plugin), reclab.help("reclab.NAME") in Lua, and
 * the reference section of lua/README, which is the output of `reclab -c 'help reclab'`
 * pasted between its markers by scripts/lua-doc.sh (ctest lua.doc fails when they differ, and
 * tests/lua/doc.lua checks that every function of the module has an entry and every entry a
 * function).
 *
 * Topics: "reclab" (everything), a prefix ("reclab.datasets": that table's functions), one
 * name, and reclab.<plugin>.<cmd> / reclab.core.<cmd> / the top-level aliases reclab.<cmd>,
 * which show the command's own help (the command table is the source there) plus its Lua
 * form.
 */
#include "lreclab_internal.h"

#include <stdio.h>
#include <string.h>

typedef struct ldoc {
    const char *name;    /* "reclab.datasets.load" */
    const char *usage;   /* the call and what it returns */
    const char *help;    /* what it does; lines separated by \n */
    const char *example; /* one line of Lua */
} ldoc;

/* Keep the order of lua/README: the module, datasets, world, models and Model, evaluation,
 * the store, commands, jobs. */
static const ldoc docs[] = {
    {.name = "reclab.version",
     .usage = "reclab.version -> string",
     .help = "The reclab version, as `reclab --version` prints it.",
     .example = "print(reclab.version)"},
    {.name = "reclab.git",
     .usage = "reclab.git -> string",
     .help = "The git commit reclab was built from (\"abc123def456\", \"-dirty\" appended "
             "when tracked files differed, \"unknown\" outside git), as `reclab --version` "
             "and experiment reports show it.",
     .example = "print(reclab.git)"},
    {.name = "reclab.help",
     .usage = "reclab.help([topic]) -> text | nil, msg",
     .help = "The help of a command (\"sql\", \"train bprmf\") or a Lua function "
             "(\"reclab.evaluate\"; \"reclab\" gives them all); without a topic, the command "
             "list. An unknown topic returns nil and a message.",
     .example = "print(reclab.help(\"reclab.datasets.split\"))"},
    {.name = "reclab.run",
     .usage = "reclab.run(line) -> result",
     .help = "Run one shell-form command line synchronously (the same parser and checks as the "
             "shell and -c). The result is a command result table (see reclab.core).",
     .example = "local r = reclab.run(\"runs sort=test.ndcg@10\")"},
    {.name = "reclab.sweep",
     .usage = "reclab.sweep{KIND, ..., data = , field = value | {v1, v2} | \"lo:hi:log\", seeds = "
              "\"1..3\", [search =, n =, halving =, name =]} -> result",
     .help = "The shell's `sweep` (help sweep): one training run per configuration and seed, "
             "grouped in the store as an experiment (result.experiment) and resumed when called "
             "again with the same table. Lists become comma-separated values; keys are sorted, "
             "so the same table is the same spec. Then reclab.compare{EXP} and "
             "reclab.report{EXP, file = \"r.html\"}.",
     .example = "local s = reclab.sweep{\"pop\", \"bprmf\", data = \"demo\", epochs = 5, "
                "seeds = \"1..2\"}"},
    {.name = "reclab.pretty",
     .usage = "reclab.pretty(value) -> text",
     .help = "A value as the shell's =expr prints it: tables one level deep, aligned and "
             "truncated, nested tables summarised, Model handles by name.",
     .example = "print(reclab.pretty(reclab.models.list()))"},
    {.name = "reclab.verbose",
     .usage = "reclab.verbose([flag]) -> previous flag",
     .help = "Print (true) or not (false) the progress and log lines of the commands this state "
             "runs, on stderr. Without an argument only returns the setting.",
     .example = "reclab.verbose(true)"},
    {.name = "reclab.plugins",
     .usage = "reclab.plugins() -> {{name=, version=, summary=, file=}, ...; refused = {msg...}}",
     .help = "The loaded plugins (\"core\" first) and the refusals of those that could not be "
             "loaded.",
     .example = "for _, p in ipairs(reclab.plugins()) do print(p.name, p.version) end"},
    {.name = "reclab.datasets.load",
     .usage = "reclab.datasets.load(path [, {name=, format=}]) -> info | nil, msg",
     .help = "Load a dataset file or folder and register it (and record it in the store). "
             "format: recbole, ml-100k, ml-1m, sasrec, seqline, csv, tsv (default: guessed). "
             "name: default the file or folder name. A file that cannot be read returns nil "
             "and the loader's message (file and line).",
     .example = "local info = reclab.datasets.load(\"data/ml-100k\", {name = \"ml100k\"})"},
    {.name = "reclab.datasets.list",
     .usage = "reclab.datasets.list() -> {info, ...}",
     .help = "The loaded datasets, sorted by name. An info table has name, source, format, "
             "n_users, n_items, n_inter, has_ts, has_rating, item_features and user_features "
             "(column name -> kind).",
     .example = "for _, d in ipairs(reclab.datasets.list()) do print(d.name, d.n_inter) end"},
    {.name = "reclab.datasets.info",
     .usage = "reclab.datasets.info(name) -> info | nil, msg",
     .help = "The info table of one loaded dataset (see datasets.list).",
     .example = "print(reclab.datasets.info(\"demo\").n_users)"},
    {.name = "reclab.datasets.kcore",
     .usage = "reclab.datasets.kcore(name, {into=, k=5}) -> info | nil, msg",
     .help = "The k-core of a dataset as the new dataset `into`: users and items with fewer "
             "than k interactions dropped until none is left, both re-indexed densely "
             "(interactions only). Recorded with its recipe, so a reopened workspace rebuilds "
             "it; the `kcore` command does the same. Returns the new dataset's info.",
     .example = "print(reclab.datasets.kcore(\"demo\", {into = \"demo5\", k = 5}).n_inter)"},
    {.name = "reclab.datasets.split",
     .usage = "reclab.datasets.split(name [, {method=, into=, test_frac=, valid_frac=, train=, "
              "valid=, seed=}]) -> parts | nil, msg",
     .help = "Split a dataset into \"<into>.train\", \"<into>.valid\" and \"<into>.test\" "
             "(the parent's vocabularies, so indices agree). method: loo (the last item of "
             "each user for test, the one before for valid; default), temporal (global time "
             "cut: test_frac, valid_frac) or ratio (per user: train=, valid=, seed=). Returns "
             "{train=, valid=, test=, n_train=, n_valid=, n_test=}.",
     .example = "local p = reclab.datasets.split(\"demo\", {method = \"temporal\", test_frac = "
                "0.2})"},
    {.name = "reclab.datasets.conversation",
     .usage = "reclab.datasets.conversation(name, i) -> {id, turns = {...}} | nil, msg",
     .help = "Conversation i (1-based) of a dialogue dataset (ReDial, INSPIRED): its turns, each "
             "{role, speaker, text, time, items} with the mentioned items.",
     .example = "print(#reclab.datasets.conversation(\"redial\", 1).turns)"},
    {.name = "reclab.datasets.remove",
     .usage = "reclab.datasets.remove(name) -> true | nil, msg",
     .help = "Remove a dataset from the session (commands still holding it finish first).",
     .example = "reclab.datasets.remove(\"demo.test\")"},
    {.name = "reclab.world",
     .usage = "reclab.world{name=, <config fields>} -> info",
     .help = "Generate a synthetic world (latent tastes, popularity, transitions, a social "
             "graph, drift) as a dataset; the info has .config with every value used "
             "(reclab.world.defaults() lists the fields).",
     .example = "local w = reclab.world{name = \"small\", n_users = 200, n_items = 100, seed = 7}"},
    {.name = "reclab.world.demo",
     .usage = "reclab.world.demo([name]) -> info",
     .help = "The built-in demo world (1,000 users, 600 items), byte-identical every time, "
             "under name (default \"demo\").",
     .example = "reclab.world.demo(\"demo2\")"},
    {.name = "reclab.world.defaults",
     .usage = "reclab.world.defaults() -> config",
     .help = "The generator's default configuration, a table of every field.",
     .example = "print(reclab.world.defaults().n_users)"},
    {.name = "reclab.world.demo_config",
     .usage = "reclab.world.demo_config() -> config",
     .help = "The configuration of the demo world.",
     .example = "local c = reclab.world.demo_config()"},
    {.name = "reclab.train",
     .usage = "reclab.train{KIND, data=, [name=], <field>=...} -> result",
     .help = "The host's `train KIND` verb (also reclab.train{kind = KIND, ...}): split, train "
             "in the core loop, keep the best validation epoch, rank the test targets, register "
             "the model. The fields are the kind's (help train KIND). The result has model (a "
             "reclab.Model), the summary metrics (\"test.ndcg@10\"...), tables.metrics and run.",
     .example = "local r = reclab.train{\"bprmf\", data = \"demo\", epochs = 20, seed = 1}"},
    {.name = "reclab.evaluate",
     .usage = "reclab.evaluate{model=, [data=], [split=], [k=], [metrics=], [protocol=], "
              "[seed=]} -> result",
     .help = "The host's `eval` verb with Lua-shaped arguments: the model's training split of "
             "data (default its dataset), split \"test\" (default) or \"valid\", k = 10 or "
             "{5, 10, 20}, metrics = {\"hr\", \"ndcg\", ...}, protocol \"full\" (default: every "
             "item ranked) or \"sampled-N\". Stored as a run; the result has the metric means "
             "(\"ndcg@10\"), protocol, n_users and run.",
     .example = "local e = reclab.evaluate{model = \"bprmf\", k = {5, 10}}"},
    {.name = "reclab.recommend",
     .usage = "reclab.recommend(model, user [, k]) -> {item ids}, {scores}",
     .help = "The top-k items (default 10) for a user of the model's dataset, the items the "
             "user already has masked. model: a reclab.Model or a name; user: the id in the "
             "data file. An unknown user returns nil and a message.",
     .example = "local items, scores = reclab.recommend(\"bprmf\", \"u17\", 5)"},
    {.name = "reclab.models.list",
     .usage = "reclab.models.list() -> {info, ...}",
     .help = "The registered models: name, kind, plugin, dataset, n_users, n_items, describe.",
     .example = "for _, m in ipairs(reclab.models.list()) do print(m.name, m.describe) end"},
    {.name = "reclab.models.get",
     .usage = "reclab.models.get(name) -> Model | nil, msg",
     .help = "A handle to a registered model (restored from the store when an earlier session "
             "saved it).",
     .example = "local m = reclab.models.get(\"bprmf\")"},
    {.name = "reclab.models.save",
     .usage = "reclab.models.save(model [, dir]) -> path | true",
     .help = "Save a model. Without dir: into the session store only, as the `save` command "
             "(no file is written; `models` lists it and later sessions restore it), returns "
             "true. With dir: also the checkpoint file dir/NAME.safetensors (the folder is "
             "created when missing), returns its path.",
     .example = "print(reclab.models.save(\"bprmf\"))"},
    {.name = "reclab.models.load",
     .usage = "reclab.models.load(path [, {name=, kind=}]) -> Model | nil, msg",
     .help = "Load a checkpoint written by save and register it (default name: the file name "
             "without its extension).",
     .example = "local m = reclab.models.load(\"models/bprmf.safetensors\", {name = \"b2\"})"},
    {.name = "reclab.models.remove",
     .usage = "reclab.models.remove(name) -> true | nil, msg",
     .help = "Remove a model from the session registry.",
     .example = "reclab.models.remove(\"b2\")"},
    {.name = "reclab.Model:recommend",
     .usage = "m:recommend(user [, k]) -> {item ids}, {scores}",
     .help = "reclab.recommend for this model.",
     .example = "local items = reclab.models.get(\"bprmf\"):recommend(\"u17\", 10)"},
    {.name = "reclab.Model:score",
     .usage = "m:score(user, {item ids}) -> {scores}",
     .help = "The model's scores of the given items for a user.",
     .example = "local s = m:score(\"u17\", {\"i3\", \"i9\"})"},
    {.name = "reclab.Model:describe",
     .usage = "m:describe() -> text",
     .help = "One line describing the model (kind, sizes, training).",
     .example = "print(m:describe())"},
    {.name = "reclab.Model:info",
     .usage = "m:info() -> {name=, kind=, plugin=, dataset=, n_users=, n_items=, describe=}",
     .help = "The model's fields as a table (also readable as m.name, m.kind, ...).",
     .example = "print(m:info().kind, m.n_items)"},
    {.name = "reclab.db.query",
     .usage = "reclab.db.query(sql, ...) -> rows",
     .help = "A read-only query of the session store; parameters bind to ?1..?N (integers, "
             "floats, strings, booleans, nil). Rows are tables keyed by column name (NULL is "
             "absent), with rows.columns. Writes are refused; Ctrl-C stops a running query.",
     .example = "local rows = reclab.db.query(\"SELECT id, status FROM runs WHERE id > ?1\", 3)"},
    {.name = "reclab.db.exec",
     .usage = "reclab.db.exec(sql, ...) -> rows",
     .help = "Like db.query, but may create and write the user's own and the plugins' tables "
             "(core tables stay read-only; no triggers); rows.changes counts the changed rows.",
     .example = "reclab.db.exec(\"CREATE TABLE IF NOT EXISTS notes(run INTEGER, text TEXT)\")"},
    {.name = "reclab.db.path",
     .usage = "reclab.db.path() -> file | nil, msg",
     .help = "The session store's file.",
     .example = "print(reclab.db.path())"},
    {.name = "reclab.runs.list",
     .usage = "reclab.runs.list([{status=, name=, limit=}]) -> rows",
     .help = "Run records (id, plugin, model_kind, name, dataset, config, seed, status, "
             "started, ended, error), oldest first, filtered by status and command name.",
     .example = "for _, r in ipairs(reclab.runs.list{status = \"done\"}) do print(r.id) end"},
    {.name = "reclab.runs.get",
     .usage = "reclab.runs.get(id) -> row | nil, msg",
     .help = "One run record (every column of the runs table).",
     .example = "print(reclab.runs.get(1).status)"},
    {.name = "reclab.runs.metrics",
     .usage = "reclab.runs.metrics(id) -> rows",
     .help = "Every metric row of a run (step, split, name, protocol, value) in the order "
             "written.",
     .example = "for _, m in ipairs(reclab.runs.metrics(1)) do print(m.name, m.value) end"},
    {.name = "reclab.mpi.rank",
     .usage = "reclab.mpi.rank() -> r",
     .help = "This process's rank under mpirun / srun (0 without MPI). Every rank runs the "
             "same script; rank 0 alone holds the session store and prints (the others' "
             "print output is gathered and shown by rank 0 at the end).",
     .example = "if reclab.mpi.rank() == 0 then print('leader') end"},
    {.name = "reclab.mpi.size",
     .usage = "reclab.mpi.size() -> n",
     .help = "The number of ranks (1 without MPI). Training of data-parallel kinds splits "
             "every batch over them; evaluation splits the users; the simulator splits each "
             "round's decisions.",
     .example = "print(reclab.mpi.size())"},
    {.name = "reclab.mpi.built",
     .usage = "reclab.mpi.built() -> bool",
     .help = "Whether this reclab was built with MPI (RECLAB_MPI=ON); reclab.mpi.library names "
             "the MPI library.",
     .example = "print(reclab.mpi.built(), reclab.mpi.library)"},
    {.name = "reclab.mpi.barrier",
     .usage = "reclab.mpi.barrier()",
     .help = "Wait until every rank gets here (collective; fails after $RECLAB_MPI_TIMEOUT "
             "seconds, default 300, if a rank never does).",
     .example = "reclab.mpi.barrier()"},
    {.name = "reclab.mpi.allreduce",
     .usage = "reclab.mpi.allreduce(x [, op]) -> y",
     .help = "Reduce a number or an array of numbers over the ranks (collective); op is "
             "\"sum\" (default), \"max\" or \"min\". Every rank gets the result.",
     .example = "local total = reclab.mpi.allreduce(#my_rows)"},
    {.name = "reclab.mpi.sweep",
     .usage = "reclab.mpi.sweep{run = fn, jobs = {...} | configs = {...}, seeds = {...}, "
              "name =} -> results",
     .help = "Spread independent runs over the ranks (collective): job i (every config with "
             "every seed, field seed, or the given jobs) runs on rank (i-1) % size as fn(job), "
             "alone (its training is not split); fn returns a table of numbers. Every rank gets "
             "every result {job, rank, seed, config, values, error}; rank 0 records each job "
             "as a run (plugin mpi, kind sweep) with its values as metrics of split sweep.",
     .example = "local r = reclab.mpi.sweep{seeds = {1, 2, 3}, run = function(j) "
                "return {ndcg = reclab.train{\"bprmf\", data = \"demo\", seed = j.seed}"
                "[\"test.ndcg@10\"]} end}"},
    {.name = "reclab.mpi.bytes",
     .usage = "reclab.mpi.bytes() -> n",
     .help = "Bytes this rank has sent through MPI collectives so far (payload).",
     .example = "print(reclab.mpi.bytes())"},
    {.name = "reclab.mpi.wait_seconds",
     .usage = "reclab.mpi.wait_seconds() -> s",
     .help = "Seconds this rank has spent waiting for collectives (communication and slower "
             "peers).",
     .example = "print(reclab.mpi.wait_seconds())"},
    {.name = "reclab.mpi.overlap",
     .usage = "reclab.mpi.overlap([on]) -> on",
     .help = "Data-parallel training: sum the dense gradient buckets over the ranks while the "
             "backward runs (true, the default; $RECLAB_MPI_OVERLAP=0 starts with false) or "
             "after it (false). Every rank must set the same. Returns the setting.",
     .example = "reclab.mpi.overlap(false)"},
    {.name = "reclab.mpi.wtime",
     .usage = "reclab.mpi.wtime() -> s",
     .help = "Monotonic wall-clock seconds, for timing (also without MPI).",
     .example =
         "local t = reclab.mpi.wtime(); reclab.mpi.barrier(); print(reclab.mpi.wtime() - t)"},
    {.name = "reclab.core",
     .usage = "reclab.core.<command>{key = value, ...; positional...} -> result",
     .help = "Every core command (help, plugins, models, datasets, jobs, cancel, train, eval, "
             "recommend, save, load, export, runs, show, compare, sql), with the shell's "
             "argument checks; reclab.<plugin>.<command>{...} the same for plugin commands. "
             "Where the name is free the module has it at top level too: reclab.sql{...}, "
             "reclab.show, reclab.compare, reclab.load, reclab.export, reclab.save, "
             "reclab.eval, reclab.jobs, reclab.cancel; and reclab.runs{...}, reclab.models{...}, "
             "reclab.datasets{...} call the command of that name. A result has the scalars as "
             "fields, lines (the output), tables[name] (rows keyed by column, with .columns) "
             "and run (the run id when recorded). help reclab.core.<command> shows a "
             "command's arguments.",
     .example =
         "local r = reclab.core.sql{\"SELECT count(*) AS n FROM runs\"}; print(r.tables.sql[1].n)"},
    {.name = "reclab.job.progress",
     .usage = "reclab.job.progress(step [, total [, label]])",
     .help = "Inside lua.run only: report the job's progress (status line, events).",
     .example = "reclab.job.progress(i, 100, \"round\")"},
    {.name = "reclab.job.metric",
     .usage = "reclab.job.metric(step, split, name, value [, protocol])",
     .help = "Inside lua.run only: record a metric of the job's run.",
     .example = "reclab.job.metric(i, \"valid\", \"ndcg@10\", v, \"full\")"},
    {.name = "reclab.job.cancelled",
     .usage = "reclab.job.cancelled() -> boolean",
     .help = "Inside lua.run only: true once the user cancelled the job.",
     .example = "if reclab.job.cancelled() then return end"},
    {0}};

/* ---- formatting ---------------------------------------------------------------------------- */

typedef struct dbuf {
    char *p;
    size_t n, cap;
    int oom;
} dbuf;

static void dput(dbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 1024;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *np = rlab_realloc(b->p, cap);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void dputs(dbuf *b, const char *s) { dput(b, s, strlen(s)); }

static char *dtake(dbuf *b)
{
    if (b->oom) {
        rlab_free(b->p);
        return NULL;
    }
    return b->p ? b->p : rlab_strdup("");
}

/* Words of s wrapped at 92 columns after indent. */
static void put_wrapped(dbuf *b, const char *indent, const char *s)
{
    size_t col = 0;
    while (*s) {
        size_t w = strcspn(s, " ");
        if (col == 0) {
            dputs(b, indent);
            col = strlen(indent);
        } else if (col + 1 + w > 92) {
            dputs(b, "\n");
            dputs(b, indent);
            col = strlen(indent);
        } else {
            dputs(b, " ");
            col++;
        }
        dput(b, s, w);
        col += w;
        s += w;
        while (*s == ' ')
            s++;
    }
    if (col)
        dputs(b, "\n");
}

static void put_entry(dbuf *b, const ldoc *d)
{
    dputs(b, "usage: ");
    dputs(b, d->usage);
    dputs(b, "\n");
    put_wrapped(b, "  ", d->help);
    dputs(b, "  example: ");
    dputs(b, d->example);
    dputs(b, "\n");
}

/* "reclab.datasets" matches reclab.datasets.load...; "reclab" matches everything. Returns
 * the rest of name after the prefix and its '.' or ':' ("load"), or NULL when not under. */
static const char *under(const char *name, const char *prefix)
{
    size_t n = strlen(prefix);
    if (strncmp(name, prefix, n) == 0 && (name[n] == '.' || name[n] == ':'))
        return name + n + 1;
    return NULL;
}

/* The command a Lua name stands for: reclab.core.sql, reclab.sql (a top-level alias) -> "sql";
 * reclab.simulator.step -> "simulator.step". */
static const rlab_cmd_ref *command_of(rlab_host *host, const char *topic, char *full, size_t size)
{
    if (strncmp(topic, "reclab.", 7) != 0)
        return NULL;
    const char *rest = topic + 7;
    if (strncmp(rest, "core.", 5) == 0)
        rest += 5;
    snprintf(full, size, "%s", rest);
    const rlab_cmd_ref *ref = rlab_host_find_cmd(host, full);
    return ref && !rlab_host_cmd_hidden(ref) ? ref : NULL;
}

/* The host's help provider (host.h rlab_help_fn): ud is the host. */
static char *lua_help(const char *topic, void *ud)
{
    rlab_host *host = ud;
    dbuf b = {0};
    if (!topic) {
        dputs(&b, "Lua API (help reclab: every function; help reclab.NAME: one):\n");
        const char *groups[] = {"reclab.datasets", "reclab.world", "reclab.models", "reclab.Model",
                                "reclab.db",       "reclab.runs",  "reclab.job",    NULL};
        dputs(&b, "  reclab      ");
        for (const ldoc *d = docs; d->name; d++) {
            int grouped = 0;
            for (int g = 0; groups[g]; g++)
                grouped |= under(d->name, groups[g]) != NULL;
            if (!grouped && !strchr(d->name + 7, '.')) {
                dputs(&b, " ");
                dputs(&b, d->name + 7);
            }
        }
        dputs(&b, "\n");
        for (int g = 0; groups[g]; g++) {
            char head[40];
            snprintf(head, sizeof head, "  %-12s", groups[g] + 7);
            dputs(&b, head);
            for (const ldoc *d = docs; d->name; d++) {
                const char *rest = under(d->name, groups[g]);
                if (rest) {
                    dputs(&b, " ");
                    dputs(&b, rest);
                }
            }
            dputs(&b, "\n");
        }
        return dtake(&b);
    }
    int n = 0;
    for (const ldoc *d = docs; d->name; d++) /* the name itself first */
        if (strcmp(d->name, topic) == 0) {
            put_entry(&b, d);
            n++;
        }
    int all = strcmp(topic, "reclab") == 0;
    if (all)
        dputs(&b, "The reclab Lua module (lua/README: errors, conventions).\n");
    for (const ldoc *d = docs; d->name; d++)
        if (all || under(d->name, topic)) {
            dputs(&b, n++ || all ? "\n" : "");
            put_entry(&b, d);
        }
    if (n == 0) {
        char full[160];
        const rlab_cmd_ref *ref = command_of(host, topic, full, sizeof full);
        if (!ref)
            return NULL;
        rlab_err err = {0};
        char *text = rlab_host_help_cmd(host, full, &err);
        if (!text)
            return NULL;
        dputs(&b, text);
        rlab_free(text);
        char lua[240];
        snprintf(lua, sizeof lua, "Lua: reclab.%s.%s{key = value, ...}%s\n",
                 strcmp(ref->plugin, "core") ? ref->plugin : "core", ref->cmd->name,
                 strcmp(ref->plugin, "core") ? "" : " (help reclab.core for results)");
        dputs(&b, lua);
    }
    return dtake(&b);
}

void rlab__lua_register_help(rlab_host *host) { rlab_host_set_help_fn(host, lua_help, host); }
