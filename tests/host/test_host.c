/*
 * tests/host/test_host.c: the plugin host.
 *
 * Test organization:
 *   host.load.*     loading the good test plugin, every refusal with its exact one-line
 *                   message, load_all with "first found wins", the search path, static
 *                   plugins, unload
 *   host.args.*     the shell parser and the Lua-side setters: values and every message; the
 *                   rest-of-line argument (sql QUERY..., compare RUN...)
 *   host.help.*     help, help <cmd>, completion; every core command has examples
 *   host.run.*      synchronous runs: results, errors, scratch memory, held datasets
 *   host.job.*      jobs: progress events, cancel latency, FIFO order, cancelling a queued job
 *   host.model.*    the model registry through the test plugin's model kind: score, top-k
 *                   with mask, replace while borrowed, list, save + load, names over 63
 *                   bytes refused
 *   host.topk.*     the generic partial selection
 *   host.records.*  the store's records as core commands: runs (sort, cols), show, compare,
 *                   export run=, sql (typed rows, row and time limits, the guard, on the side
 *                   worker beside a running job, cancelled promptly), load (a dataset
 *                   recorded in the store, a checkpoint sniffed or said)
 *   host.data.*     the workspace's datasets: loading with a recipe, reopening (listed at once,
 *                   rebuilt on first use: files, worlds byte-identical, splits, dialogues),
 *                   changed / same-size-changed / moved sources reported and never loaded,
 *                   forgetting
 *
 * The test plugins live in RLAB_TEST_PLUGIN_DIR (built by tests/host/CMakeLists.txt).
 */
#include "harness_host.h"
#include "host/host.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <errno.h>
#include <time.h>

#define PDIR RLAB_TEST_PLUGIN_DIR
#define PDIR2 RLAB_TEST_PLUGIN_DIR2

/* ---- helpers ---------------------------------------------------------------------------- */

static rlab_host *new_host(void) { return rlab_test_host_v(PDIR, NULL); }
static rlab_host *good_host(void) { return rlab_test_host(PDIR, "reclab_tgood.so"); }
static rlab_result *run(rlab_host *h, const char *line, int want, const char *want_msg)
{
    return rlab_test_run(h, line, want, want_msg);
}

/* Parse a line expecting an error with exactly msg. */
static void parse_err(rlab_host *h, const char *line, const char *msg)
{
    rlab_err err = {0};
    rlab_args *a = NULL;
    int rc = rlab_host_parse(h, line, &a, &err);
    if (rc == RLAB_OK)
        rc = rlab_args_finish(a, &err);
    CHECK_MSG(rc != RLAB_OK, "'%s' parsed, expected error '%s'", line, msg);
    CHECK_STR(err.msg, msg);
    rlab_args_free(a);
}

static rlab_args *parse_ok(rlab_host *h, const char *line)
{
    rlab_err err = {0};
    rlab_args *a = NULL;
    int rc = rlab_host_parse(h, line, &a, &err);
    if (rc == RLAB_OK)
        rc = rlab_args_finish(a, &err);
    CHECK_MSG(rc == RLAB_OK, "'%s': %s", line, err.msg);
    return a;
}

/* ---- event recorder ---------------------------------------------------------------------- */

typedef struct rec_event {
    rlab_event_type type;
    int job_id;
    int64_t step, total;
    int nmetrics;
    double m0;
    int status;
    char text[160];
} rec_event;

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    rec_event ev[4096];
    int n;
} evlog = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, {{0}}, 0};

static atomic_int slow_queued; /* on_event dawdles over QUEUED events (host.job.event_order) */

static void on_event(const rlab_event *ev, void *ud)
{
    (void)ud;
    if (atomic_load(&slow_queued) && ev->type == RLAB_EV_QUEUED) {
        struct timespec ts = {0, 3000000};
        nanosleep(&ts, NULL);
    }
    pthread_mutex_lock(&evlog.mu);
    if (evlog.n < 4096) {
        rec_event *r = &evlog.ev[evlog.n++];
        r->type = ev->type;
        r->job_id = ev->job_id;
        r->step = ev->step;
        r->total = ev->total;
        r->nmetrics = ev->nmetrics;
        r->m0 = ev->nmetrics > 0 ? ev->metrics[0].value : 0;
        r->status = ev->status;
        snprintf(r->text, sizeof r->text, "%s", ev->text ? ev->text : "");
    }
    pthread_cond_broadcast(&evlog.cv);
    pthread_mutex_unlock(&evlog.mu);
}

static void evlog_reset(void)
{
    pthread_mutex_lock(&evlog.mu);
    evlog.n = 0;
    pthread_mutex_unlock(&evlog.mu);
}

/* Index of the first event of type for job_id at or after `from`; waits up to 5 s. -1 on
 * timeout. */
static int evlog_wait(rlab_event_type type, int job_id, int from)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 5;
    pthread_mutex_lock(&evlog.mu);
    int found = -1;
    for (;;) {
        for (int i = from; i < evlog.n; i++)
            if (evlog.ev[i].type == type && evlog.ev[i].job_id == job_id) {
                found = i;
                break;
            }
        if (found >= 0 || pthread_cond_timedwait(&evlog.cv, &evlog.mu, &dl) != 0)
            break;
    }
    pthread_mutex_unlock(&evlog.mu);
    return found;
}

static int evlog_count(rlab_event_type type, int job_id)
{
    int n = 0;
    pthread_mutex_lock(&evlog.mu);
    for (int i = 0; i < evlog.n; i++)
        n += evlog.ev[i].type == type && evlog.ev[i].job_id == job_id;
    pthread_mutex_unlock(&evlog.mu);
    return n;
}

/* ---- a plugin linked into the test binary (load_static) ---------------------------------- */

static int s_run(rlab_ctx *ctx, const rlab_args *args)
{
    (void)args;
    rlab_ctx_printf(ctx, "static ok\nsecond line\n");
    return RLAB_OK;
}
static const rlab_cmd s_cmds[] = {{.name = "hi", .help = "Say hi.", .run = s_run}, {0}};
RLAB_PLUGIN(tstatic)
{
    RLAB_PLUGIN_INIT(out);
    out->name = "tstatic";
    out->version = "0.1";
    out->summary = "linked statically";
    out->commands = s_cmds;
    return RLAB_OK;
}

/* ---- host.load ----------------------------------------------------------------------------- */

static void t_load_good(void)
{
    rlab_host *h = good_host();
    CHECK_EQ_INT(rlab_host_plugin_count(h), 2);
    CHECK_STR(rlab_host_plugin_at(h, 0)->name, "core");
    const rlab_plugin *p = rlab_host_plugin_at(h, 1);
    CHECK_STR(p->name, "tgood");
    CHECK_STR(p->version, "1.2.3");
    CHECK_STR(rlab_host_plugin_file(h, 1), PDIR "/reclab_tgood.so");
    CHECK(p->schema && p->schema[0].sql && !p->schema[1].sql);
    CHECK(p->views && strcmp(p->views[0].name, "notes") == 0);
    CHECK(rlab_host_plugin_state(h, "tgood") != NULL); /* open ran */
    static const char *const want[] = {"tgood.echo",    "tgood.loop",  "tgood.count", "tgood.fail",
                                       "tgood.scratch", "tgood.train", "tgood.top"};
    int found = 0;
    for (int i = 0; i < rlab_host_cmd_count(h); i++) {
        const rlab_cmd_ref *r = rlab_host_cmd_at(h, i);
        for (int j = 0; j < 7; j++)
            if (strcmp(r->full, want[j]) == 0) {
                found++;
                CHECK_STR(r->plugin, "tgood");
            }
    }
    CHECK_EQ_INT(found, 7);
    CHECK(rlab_host_find_cmd(h, "help") != NULL); /* core commands have no prefix */
    CHECK(rlab_host_find_cmd(h, "tgood.echo") != NULL);
    CHECK(rlab_host_find_cmd(h, "tgood.nope") == NULL);
    CHECK(rlab_host_find_model_kind(h, "tlin", NULL) != NULL);
    CHECK_EQ_INT(rlab_host_refusal_count(h), 0);
    rlab_host_free(h);
}

typedef struct refusal_case {
    const char *file;
    int code;
    const char *msg; /* NULL: computed in the test */
} refusal_case;

static void t_load_refusals(void)
{
    rlab_host *h = good_host(); /* tkind needs tgood loaded first */
    char sizes[400], newer[400];
    snprintf(sizes, sizeof sizes,
             "plugin " PDIR "/reclab_tsizes.so uses incompatible numeric types (sizes 0x%08x, "
             "this reclab 0x%08x): rebuild the plugin",
             (unsigned)(RLAB_ABI_SIZES ^ 1u), (unsigned)RLAB_ABI_SIZES);
    snprintf(newer, sizeof newer,
             "plugin " PDIR "/reclab_tnewer.so is newer than this reclab (descriptor of %u "
             "bytes, this reclab knows %u): upgrade reclab",
             (unsigned)sizeof(rlab_plugin) + 16, (unsigned)sizeof(rlab_plugin));
    const refusal_case cases[] = {
        {PDIR "/reclab_tbadabi.so", RLAB_EVERSION,
         "plugin " PDIR "/reclab_tbadabi.so built for reclab ABI 0, this reclab provides ABI 5: "
         "rebuild the plugin"},
        {PDIR "/reclab_tnoentry.so", RLAB_ENOTFOUND,
         "no entry point rlab_plugin_tnoentry in " PDIR "/reclab_tnoentry.so"},
        {PDIR "/reclab_tdup.so", RLAB_EINVAL,
         "plugin " PDIR "/reclab_tdup.so: duplicate command 'tdup.x'"},
        {PDIR "/reclab_tnofield.so", RLAB_EINVAL,
         "plugin " PDIR "/reclab_tnofield.so: missing required field 'version'"},
        {PDIR "/reclab_tsizes.so", RLAB_EVERSION, sizes},
        {PDIR "/reclab_tnewer.so", RLAB_EVERSION, newer},
        {PDIR "/reclab_tname.so", RLAB_EINVAL,
         "plugin " PDIR "/reclab_tname.so declares name 'other', expected 'tname'"},
        {PDIR "/reclab_tinitfail.so", RLAB_ESTATE,
         "plugin " PDIR "/reclab_tinitfail.so failed to initialise: no GPU found"},
        {PDIR "/reclab_tkind.so", RLAB_EINVAL,
         "plugin " PDIR "/reclab_tkind.so: duplicate model kind 'tlin' (already provided by "
         "plugin 'tgood')"},
        {PDIR "/reclab_tnotso.so", RLAB_EFORMAT,
         "plugin " PDIR "/reclab_tnotso.so is not a shared object"},
        {PDIR "/reclab_nothere.so", RLAB_EIO,
         "cannot open plugin " PDIR "/reclab_nothere.so: No such file or directory"},
        {PDIR "/libfoo.so", RLAB_EINVAL, "plugin " PDIR "/libfoo.so is not named reclab_<name>.so"},
        {PDIR "/reclab_tgood.so", RLAB_EINVAL,
         "plugin " PDIR "/reclab_tgood.so: a plugin named 'tgood' is already loaded from " PDIR
         "/reclab_tgood.so"},
    };
    int n = (int)(sizeof cases / sizeof cases[0]);
    for (int i = 0; i < n; i++) {
        rlab_err err = {0};
        int rc = rlab_host_load_file(h, cases[i].file, &err);
        CHECK_MSG(rc == cases[i].code, "%s: code %d, expected %d (%s)", cases[i].file, rc,
                  cases[i].code, err.msg);
        CHECK_STR(err.msg, cases[i].msg);
        /* the same line is in the refusal list, and it is one line */
        CHECK_STR(rlab_host_refusal(h, i), cases[i].msg);
        CHECK(strchr(rlab_host_refusal(h, i), '\n') == NULL);
    }
    CHECK_EQ_INT(rlab_host_refusal_count(h), n);
    CHECK_EQ_INT(rlab_host_plugin_count(h), 2); /* nothing else got in */
    CHECK(rlab_host_find_cmd(h, "tdup.x") == NULL);
    rlab_host_clear_refusals(h);
    CHECK_EQ_INT(rlab_host_refusal_count(h), 0);
    rlab_host_free(h);
}

static void t_load_all(void)
{
    static const char *const dirs[] = {PDIR, PDIR2, "/nonexistent/dir", NULL};
    rlab_host_opts o = {.plugin_dirs = dirs, .no_env = 1};
    rlab_err err = {0};
    rlab_host *h = rlab_host_new(&o, &err);
    int loaded = -1;
    CHECK_EQ_INT(rlab_host_load_all(h, &loaded, &err), RLAB_OK);
    CHECK_EQ_INT(loaded, 1);
    CHECK_EQ_INT(rlab_host_plugin_count(h), 2);
    CHECK_STR(rlab_host_plugin_file(h, 1), PDIR "/reclab_tgood.so");
    /* sorted order within a folder, so tkind comes after tgood and is a duplicate kind */
    static const char *const want[] = {
        "plugin " PDIR "/reclab_tbadabi.so built for reclab ABI 0, this reclab provides ABI 5: "
        "rebuild the plugin",
        "plugin " PDIR "/reclab_tdup.so: duplicate command 'tdup.x'",
        "plugin " PDIR "/reclab_tinitfail.so failed to initialise: no GPU found",
        "plugin " PDIR "/reclab_tkind.so: duplicate model kind 'tlin' (already provided by "
        "plugin 'tgood')",
        "plugin " PDIR "/reclab_tname.so declares name 'other', expected 'tname'",
        NULL, /* tnewer */
        "no entry point rlab_plugin_tnoentry in " PDIR "/reclab_tnoentry.so",
        "plugin " PDIR "/reclab_tnofield.so: missing required field 'version'",
        "plugin " PDIR "/reclab_tnotso.so is not a shared object",
        NULL, /* tsizes */
        "plugin " PDIR2 "/reclab_tgood.so: a plugin named 'tgood' is already loaded from " PDIR
        "/reclab_tgood.so",
    };
    CHECK_EQ_INT(rlab_host_refusal_count(h), 11);
    for (int i = 0; i < 11; i++)
        if (want[i])
            CHECK_STR(rlab_host_refusal(h, i), want[i]);
    CHECK_STR_CONTAINS(rlab_host_refusal(h, 5), "reclab_tnewer.so is newer than this reclab");
    CHECK_STR_CONTAINS(rlab_host_refusal(h, 9), "reclab_tsizes.so uses incompatible numeric");
    rlab_host_free(h);
}

static void t_load_search_path(void)
{
    setenv("RECLAB_PLUGIN_PATH", "/a/x:/b/y::/c", 1);
    rlab_err err = {0};
    rlab_host *h = rlab_host_new(NULL, &err);
    CHECK(h != NULL);
    /* build tree (folder of libreclab_core.so + /plugins), install folder, then the env */
    CHECK_STR(rlab_host_plugin_dir(h, 0), RLAB_TEST_BUILD_DIR "/plugins");
    CHECK_STR(rlab_host_plugin_dir(h, 1), RLAB_TEST_BUILD_DIR "/reclab/plugins");
    CHECK_STR(rlab_host_plugin_dir(h, 2), "/a/x");
    CHECK_STR(rlab_host_plugin_dir(h, 3), "/b/y");
    CHECK_STR(rlab_host_plugin_dir(h, 4), "/c");
    CHECK(rlab_host_plugin_dir(h, 5) == NULL);
    rlab_host_free(h);
    unsetenv("RECLAB_PLUGIN_PATH");
    rlab_host_opts o = {.no_env = 1};
    h = rlab_host_new(&o, &err);
    CHECK(rlab_host_plugin_dir(h, 2) == NULL);
    rlab_host_free(h);
}

static void t_load_static(void)
{
    rlab_host *h = new_host();
    rlab_err err = {0};
    CHECK_EQ_INT(rlab_host_load_static(h, "tstatic", rlab_plugin_tstatic, &err), RLAB_OK);
    rlab_result *res = run(h, "tstatic.hi", RLAB_OK, NULL);
    CHECK(res && res->nlines == 2);
    if (res && res->nlines == 2) {
        CHECK_STR(res->lines[0], "static ok");
        CHECK_STR(res->lines[1], "second line");
    }
    rlab_result_free(res);
    CHECK_EQ_INT(rlab_host_load_static(h, "tstatic", rlab_plugin_tstatic, &err), RLAB_EINVAL);
    CHECK_STR(err.msg, "plugin <static:tstatic>: a plugin named 'tstatic' is already loaded "
                       "from <static:tstatic>");
    rlab_host_free(h);
}

static void t_load_unload(void)
{
    rlab_host *h = good_host();
    rlab_err err = {0};
    rlab_result *res = run(h, "tgood.train name=m1", RLAB_OK, NULL);
    rlab_result_free(res);
    rlab_model *m = rlab_models_get(rlab_host_models(h), "m1");
    CHECK(m != NULL);
    CHECK_EQ_INT(rlab_host_unload(h, "tgood", &err), RLAB_ESTATE);
    CHECK_STR(err.msg, "plugin 'tgood' has models in use");
    rlab_model_release(m);
    /* a queued or running job also blocks unloading */
    int id = 0;
    CHECK_EQ_INT(rlab_host_submit(h, "tgood.loop", &id, &err), RLAB_OK);
    CHECK_EQ_INT(rlab_host_unload(h, "tgood", &err), RLAB_ESTATE);
    CHECK_STR(err.msg, "plugin 'tgood' has queued or running commands");
    rlab_host_cancel(h, id);
    CHECK_EQ_INT(rlab_host_wait(h, id, NULL, &err), RLAB_ECANCELED);
    CHECK_EQ_INT(rlab_host_unload(h, "tgood", &err), RLAB_OK);
    CHECK_EQ_INT(rlab_host_plugin_count(h), 1);
    CHECK(rlab_host_find_cmd(h, "tgood.echo") == NULL);
    CHECK_EQ_INT(rlab_models_count(rlab_host_models(h)), 0);
    CHECK(rlab_host_find_model_kind(h, "tlin", NULL) == NULL);
    CHECK_EQ_INT(rlab_host_unload(h, "tgood", &err), RLAB_ENOTFOUND);
    CHECK_EQ_INT(rlab_host_unload(h, "core", &err), RLAB_ESTATE);
    /* and it can be loaded again */
    CHECK_EQ_INT(rlab_host_load_file(h, PDIR "/reclab_tgood.so", &err), RLAB_OK);
    rlab_host_free(h);
}

/* ---- host.args --------------------------------------------------------------------------- */

static void t_args_parse(void)
{
    rlab_host *h = good_host();
    rlab_args *a = parse_ok(h, "tgood.echo \"a b\" n=3 f=.25 flag=yes mode=bb out='/tmp/x y'");
    if (a) {
        CHECK_STR(rlab_args_str(a, "msg"), "a b");
        CHECK_EQ_INT(rlab_args_int(a, "n"), 3);
        CHECK_NEAR(rlab_args_float(a, "f"), 0.25, 0);
        CHECK_EQ_INT(rlab_args_bool(a, "flag"), 1);
        CHECK_STR(rlab_args_str(a, "mode"), "bb");
        CHECK_EQ_INT(rlab_args_choice(a, "mode"), 1);
        CHECK_STR(rlab_args_str(a, "out"), "/tmp/x y");
        CHECK(rlab_args_str(a, "data") == NULL); /* no default, not given */
        CHECK_EQ_INT(rlab_args_given(a, "msg"), 1);
        char *json = rlab_args_to_json(a);
        /* data has no value: left out, never null (run records hold final values only) */
        CHECK_STR(json, "{\"msg\":\"a b\",\"n\":3,\"f\":0.25,\"flag\":true,\"mode\":\"bb\","
                        "\"out\":\"\\/tmp\\/x y\"}");
        rlab_free(json);
    }
    rlab_args_free(a);
    /* defaults, positional order, '=' inside values, escapes */
    a = parse_ok(h, "tgood.echo");
    CHECK_STR(rlab_args_str(a, "msg"), "hi");
    CHECK_EQ_INT(rlab_args_int(a, "n"), 1);
    CHECK_NEAR(rlab_args_float(a, "f"), 0.5, 0);
    CHECK_EQ_INT(rlab_args_bool(a, "flag"), 0);
    CHECK_EQ_INT(rlab_args_choice(a, "mode"), 0);
    CHECK_EQ_INT(rlab_args_given(a, "msg"), 0);
    rlab_args_free(a);
    a = parse_ok(h, "tgood.echo yo 4 1 off ccc");
    CHECK_STR(rlab_args_str(a, "msg"), "yo");
    CHECK_EQ_INT(rlab_args_int(a, "n"), 4);
    CHECK_NEAR(rlab_args_float(a, "f"), 1.0, 0);
    CHECK_EQ_INT(rlab_args_bool(a, "flag"), 0);
    CHECK_STR(rlab_args_str(a, "mode"), "ccc");
    rlab_args_free(a);
    a = parse_ok(h, "tgood.echo msg=x=y");
    CHECK_STR(rlab_args_str(a, "msg"), "x=y");
    rlab_args_free(a);
    a = parse_ok(h, "tgood.echo \"k=v\"");
    CHECK_STR(rlab_args_str(a, "msg"), "k=v");
    rlab_args_free(a);
    a = parse_ok(h, "  tgood.echo   msg=\"say \\\"hi\\\"\"  ");
    CHECK_STR(rlab_args_str(a, "msg"), "say \"hi\"");
    rlab_args_free(a);
    a = parse_ok(h, "tgood.echo msg=");
    CHECK_STR(rlab_args_str(a, "msg"), "");
    rlab_args_free(a);
    rlab_host_free(h);
}

static void t_args_errors(void)
{
    rlab_host *h = good_host();
    parse_err(h, "tgood.echo n=0",
              "tgood.echo: bad argument 'n' (integer in [1, 5] expected, got 0)");
    parse_err(h, "tgood.echo n=ten",
              "tgood.echo: bad argument 'n' (integer in [1, 5] expected, got 'ten')");
    parse_err(h, "tgood.echo n=2.5",
              "tgood.echo: bad argument 'n' (integer in [1, 5] expected, got '2.5')");
    parse_err(h, "tgood.echo f=2",
              "tgood.echo: bad argument 'f' (number in [0, 1] expected, got 2)");
    parse_err(h, "tgood.echo f=nan",
              "tgood.echo: bad argument 'f' (number in [0, 1] expected, got 'nan')");
    parse_err(h, "tgood.echo mode=d",
              "tgood.echo: bad argument 'mode' (one of a|bb|ccc expected, got 'd')");
    parse_err(h, "tgood.echo flag=maybe",
              "tgood.echo: bad argument 'flag' (boolean expected, got 'maybe')");
    parse_err(
        h, "tgood.echo data=", "tgood.echo: bad argument 'data' (dataset name expected, got '')");
    parse_err(h, "tgood.echo nope=1", "tgood.echo: unknown argument 'nope'");
    /* a near name (a typo, a prefix) or the command's one dataset argument is suggested */
    parse_err(h, "tgood.echo mesg=1", "tgood.echo: unknown argument 'mesg' (did you mean msg=?)");
    parse_err(h, "tgood.echo dataset=x",
              "tgood.echo: unknown argument 'dataset' (did you mean "
              "data=?)");
    parse_err(h, "tgood.echo n=1 n=2", "tgood.echo: argument 'n' given twice");
    parse_err(h, "tgood.echo hi n=2 3", "tgood.echo: argument 'n' given twice");
    parse_err(h, "tgood.echo hi 7",
              "tgood.echo: bad argument 'n' (integer in [1, 5] expected, got 7)");
    parse_err(h, "tgood.echo a 1 0.5 true a ds p extra",
              "tgood.echo: too many arguments (takes 7, got 'extra')");
    parse_err(h, "tgood.count", "tgood.count: missing argument 'n'");
    parse_err(h, "tgood.loop max=-1",
              "tgood.loop: bad argument 'max' (integer in [0, 2147483647] expected, got -1)");
    parse_err(h, "tgood.echo msg=\"unterminated", "tgood.echo: unterminated quote");
    parse_err(h, "nosuch.cmd a=1", "unknown command 'nosuch.cmd'");
    parse_err(h, "   ", "empty command line");
    rlab_host_free(h);
}

/* Integer arguments: int32_t unless flagged RLAB_ARGF_INT64, refused (not cut to 32 bits)
 * when parsed or set, so `(int)rlab_args_int()` is always safe. */
static void t_args_int32(void)
{
    rlab_host *h = good_host();
    parse_err(h, "tgood.ints rounds=4294967298",
              "tgood.ints: bad argument 'rounds' (integer in [1, 2147483647] expected, got "
              "4294967298)");
    parse_err(h, "tgood.ints rounds=2147483648",
              "tgood.ints: bad argument 'rounds' (integer in [1, 2147483647] expected, got "
              "2147483648)");
    parse_err(h, "tgood.ints n=4294967301",
              "tgood.ints: bad argument 'n' (integer in [-2147483648, 2147483647] expected, got "
              "4294967301)");
    parse_err(h, "tgood.ints n=-2147483649",
              "tgood.ints: bad argument 'n' (integer in [-2147483648, 2147483647] expected, got "
              "-2147483649)");
    parse_err(h, "tgood.ints big=2147483648",
              "tgood.ints: bad argument 'big' (integer in [-2147483648, 2147483647] expected, got "
              "2147483648)");
    parse_err(h, "tgood.ints seed=-1",
              "tgood.ints: bad argument 'seed' (integer >= 0 expected, got -1)");
    parse_err(h, "tgood.ints id=9223372036854775808",
              "tgood.ints: bad argument 'id' (integer expected, got '9223372036854775808')");
    /* the limits themselves, and 64-bit values where flagged */
    rlab_result *res = run(h,
                           "tgood.ints n=-2147483648 rounds=2147483647 big=2147483647 "
                           "seed=9223372036854775807 id=-9223372036854775808",
                           RLAB_OK, NULL);
    CHECK_EQ_INT(rlab_result_scalar(res, "n")->i, INT32_MIN);
    CHECK_EQ_INT(rlab_result_scalar(res, "rounds")->i, INT32_MAX);
    CHECK_EQ_INT(rlab_result_scalar(res, "big")->i, INT32_MAX);
    CHECK(rlab_result_scalar(res, "seed")->i == INT64_MAX);
    CHECK(rlab_result_scalar(res, "id")->i == INT64_MIN);
    rlab_result_free(res);
    res = run(h, "tgood.ints seed=1099511627776", RLAB_OK, NULL); /* 2^40 */
    CHECK(rlab_result_scalar(res, "seed")->i == (int64_t)1 << 40);
    rlab_result_free(res);
    /* the Lua setters: integers and integral floats alike */
    rlab_err err = {0};
    rlab_args *a = rlab_args_new(h, "tgood.ints", &err);
    CHECK(a != NULL);
    CHECK_EQ_INT(rlab_args_set_int(a, "rounds", (int64_t)1 << 32, &err), RLAB_EINVAL);
    CHECK_STR(err.msg, "tgood.ints: bad argument 'rounds' (integer in [1, 2147483647] expected, "
                       "got 4294967296)");
    CHECK_EQ_INT(rlab_args_set_float(a, "n", 4294967301.0, &err), RLAB_EINVAL);
    CHECK_STR(err.msg, "tgood.ints: bad argument 'n' (integer in [-2147483648, 2147483647] "
                       "expected, got 4294967301)");
    CHECK_EQ_INT(rlab_args_set_int(a, "seed", (int64_t)1 << 40, &err), RLAB_OK);
    CHECK_EQ_INT(rlab_args_finish(a, &err), RLAB_OK);
    CHECK(rlab_args_int(a, "seed") == (int64_t)1 << 40);
    rlab_args_free(a);
    /* help shows the implicit bound next to a declared one */
    char *help = rlab_host_help_cmd(h, "tgood.ints", &err);
    CHECK_STR_CONTAINS(help, "a lower bound only (default 1; integer in [1, 2147483647])");
    CHECK_STR_CONTAINS(help, "64-bit, >= 0 (default 0; integer >= 0)");
    rlab_free(help);
    rlab_host_free(h);
}

/* The setters the Lua binding uses give the same messages. */
static void t_args_lua(void)
{
    rlab_host *h = good_host();
    rlab_err err = {0};
    rlab_args *a = rlab_args_new(h, "tgood.echo", &err);
    CHECK(a != NULL);
    CHECK_EQ_INT(rlab_args_set_int(a, "n", 9, &err), RLAB_EINVAL);
    CHECK_STR(err.msg, "tgood.echo: bad argument 'n' (integer in [1, 5] expected, got 9)");
    CHECK_EQ_INT(rlab_args_set_float(a, "n", 2.5, &err), RLAB_EINVAL);
    CHECK_STR(err.msg, "tgood.echo: bad argument 'n' (integer in [1, 5] expected, got 2.5)");
    CHECK_EQ_INT(rlab_args_set_bool(a, "n", 1, &err), RLAB_EINVAL);
    CHECK_STR(err.msg,
              "tgood.echo: bad argument 'n' (integer in [1, 5] expected, got boolean true)");
    CHECK_EQ_INT(rlab_args_set_int(a, "msg", 3, &err), RLAB_EINVAL);
    CHECK_STR(err.msg, "tgood.echo: bad argument 'msg' (string expected, got number 3)");
    CHECK_EQ_INT(rlab_args_type_error(a, "mode", "table", &err), RLAB_EINVAL);
    CHECK_STR(err.msg, "tgood.echo: bad argument 'mode' (one of a|bb|ccc expected, got table)");
    CHECK_EQ_INT(rlab_args_type_error(a, "zzz", "table", &err), RLAB_EINVAL);
    CHECK_STR(err.msg, "tgood.echo: unknown argument 'zzz'");
    CHECK_EQ_INT(rlab_args_set_float(a, "n", 2.0, &err), RLAB_OK); /* integral float */
    CHECK_EQ_INT(rlab_args_set_int(a, "f", 1, &err), RLAB_OK);     /* int for a float */
    CHECK_EQ_INT(rlab_args_set_bool(a, "flag", 1, &err), RLAB_OK);
    CHECK_EQ_INT(rlab_args_set(a, "mode", "ccc", &err), RLAB_OK);
    CHECK_EQ_INT(rlab_args_set_next(a, "positional msg", &err), RLAB_OK);
    CHECK_EQ_INT(rlab_args_set_next(a, "3", &err), RLAB_EINVAL); /* n already set by key */
    CHECK_STR(err.msg, "tgood.echo: argument 'n' given twice");
    CHECK_EQ_INT(rlab_args_finish(a, &err), RLAB_OK);
    CHECK_EQ_INT(rlab_args_int(a, "n"), 2);
    CHECK_NEAR(rlab_args_float(a, "f"), 1.0, 0);
    CHECK_EQ_INT(rlab_args_bool(a, "flag"), 1);
    CHECK_STR(rlab_args_str(a, "msg"), "positional msg");
    rlab_result *res = NULL;
    CHECK_EQ_INT(rlab_host_run_args(h, a, &res, &err), RLAB_OK); /* takes a */
    CHECK(res && res->nlines == 2);
    rlab_result_free(res);
    CHECK(rlab_args_new(h, "tgood.zzz", &err) == NULL);
    CHECK_STR(err.msg, "unknown command 'tgood.zzz'");
    rlab_host_free(h);
}

/* ---- host.help ------------------------------------------------------------------------------ */

static void t_help(void)
{
    rlab_host *h = good_host();
    rlab_err err = {0};
    char *all = rlab_host_help(h);
    CHECK_STR_CONTAINS(all, "tgood 1.2.3: test plugin exercising every ABI feature\n");
    CHECK_STR_CONTAINS(all, "\n  tgood.echo             Print a message.\n");
    CHECK_STR_CONTAINS(all, "\n  tgood.count            Count with progress. [job]\n");
    CHECK_STR_CONTAINS(all, "\n  help                   List the commands");
    rlab_free(all);
    char *c = rlab_host_help_cmd(h, "tgood.count", &err);
    CHECK_STR(c, "usage: tgood.count n=<int>\n"
                 "Count with progress.\n"
                 "Runs as a job: progress in the status line, Ctrl-C cancels.\n"
                 "arguments (key=value, or positional in this order):\n"
                 "  n=<int>  how far (required; integer in [1, 2147483647])\n");
    rlab_free(c);
    c = rlab_host_help_cmd(h, "tgood.echo", &err);
    CHECK_STR_CONTAINS(c, "usage: tgood.echo [msg=<string>] [n=<int>] [f=<float>] [flag=<bool>] "
                          "[mode=a|bb|ccc] [data=<dataset>] [out=<path>]\n"
                          "Print a message.\nEchoes msg n times and returns typed results.\n");
    CHECK_STR_CONTAINS(c, "\n  n=<int>         repetitions (default 1; integer in [1, 5])\n");
    CHECK_STR_CONTAINS(c, "\n  mode=a|bb|ccc   style (default a; one of a|bb|ccc)\n");
    CHECK_STR_CONTAINS(c, "\n  data=<dataset>  a dataset (optional)\n");
    rlab_free(c);
    CHECK(rlab_host_help_cmd(h, "tgood.nope", &err) == NULL);
    CHECK_STR(err.msg, "unknown command 'tgood.nope'");
    /* help PLUGIN: that plugin's section, nothing of the others */
    c = rlab_host_help_cmd(h, "tgood", &err);
    CHECK_STR_CONTAINS(c, "tgood 1.2.3: test plugin exercising every ABI feature\n");
    CHECK_STR_CONTAINS(c, "\n  tgood.count            Count with progress. [job]\n");
    CHECK_STR_CONTAINS(c, "help tgood.COMMAND (or help train KIND) for details.\n");
    CHECK(c && !strstr(c, "  help "));
    rlab_free(c);
    /* the core help command prints the same text */
    rlab_result *res = run(h, "help tgood.count", RLAB_OK, NULL);
    CHECK(res && res->nlines == 5);
    if (res && res->nlines == 5)
        CHECK_STR(res->lines[4], "  n=<int>  how far (required; integer in [1, 2147483647])");
    rlab_result_free(res);
    rlab_host_free(h);
}

static void check_complete(rlab_host *h, const char *line, const char *const *want)
{
    char **got = rlab_host_complete(h, line);
    CHECK(got != NULL);
    int n = 0;
    while (got && got[n])
        n++;
    int nw = 0;
    while (want[nw])
        nw++;
    CHECK_MSG(n == nw, "complete '%s': %d candidates, expected %d", line, n, nw);
    for (int i = 0; i < n && i < nw; i++)
        CHECK_STR(got[i], want[i]);
    rlab_strv_free(got);
}

static void t_complete(void)
{
    rlab_host *h = good_host();
    rlab_err err = {0};
    check_complete(h, "tgood.e", (const char *const[]){"tgood.echo", NULL});
    check_complete(h, "he", (const char *const[]){"help", NULL});
    check_complete(h, "tgood.echo m", (const char *const[]){"mode=", "msg=", NULL});
    check_complete(h, "tgood.echo msg=x m", (const char *const[]){"mode=", NULL});
    check_complete(h, "tgood.echo mode=b", (const char *const[]){"mode=bb", NULL});
    check_complete(h, "tgood.echo flag=", (const char *const[]){"flag=false", "flag=true", NULL});
    check_complete(h, "nosuch x", (const char *const[]){NULL});
    rlab_dataset *ds = rlab_dataset_new("ds1", &err);
    snprintf(ds->name, sizeof ds->name, "ds1");
    CHECK_EQ_INT(rlab_host_add_dataset(h, ds, &err), RLAB_OK);
    check_complete(h, "tgood.echo data=", (const char *const[]){"data=ds1", NULL});
    rlab_result_free(run(h, "tgood.train name=mb", RLAB_OK, NULL));
    rlab_result_free(run(h, "tgood.train name=ma", RLAB_OK, NULL));
    check_complete(h, "tgood.top model=m", (const char *const[]){"model=ma", "model=mb", NULL});
    rlab_host_free(h);
}

/* ---- host.run ------------------------------------------------------------------------------- */

static void t_run_sync(void)
{
    rlab_host *h = good_host();
    rlab_result *res = run(h, "tgood.echo hello n=2 f=0.75 mode=bb", RLAB_OK, NULL);
    CHECK(res != NULL);
    if (!res) {
        rlab_host_free(h);
        return;
    }
    CHECK_EQ_INT(res->nlines, 2);
    CHECK_STR(res->lines[1], "hello");
    const rlab_cell *c = rlab_result_scalar(res, "n");
    CHECK(c && c->type == RLAB_CELL_INT && c->i == 2);
    c = rlab_result_scalar(res, "f");
    CHECK(c && c->type == RLAB_CELL_FLOAT);
    CHECK_NEAR(c ? c->f : 0, 0.75, 0);
    c = rlab_result_scalar(res, "mode");
    CHECK(c && c->type == RLAB_CELL_TEXT && strcmp(c->s, "bb") == 0);
    CHECK(rlab_result_scalar(res, "nope") == NULL);
    CHECK_EQ_INT(res->ntables, 1);
    const rlab_table *t = res->tables[0];
    CHECK_STR(t->name, "rows");
    CHECK_EQ_INT(t->ncols, 3);
    CHECK_STR(t->cols[2], "label");
    CHECK_EQ_INT(t->nrows, 3);
    CHECK(t->cells[2 * 3 + 0].type == RLAB_CELL_INT && t->cells[2 * 3 + 0].i == 2);
    CHECK(t->cells[2 * 3 + 1].type == RLAB_CELL_FLOAT);
    CHECK_NEAR(t->cells[2 * 3 + 1].f, 4.0, 0);
    CHECK(t->cells[1 * 3 + 2].type == RLAB_CELL_NULL);
    CHECK(t->cells[0 * 3 + 2].type == RLAB_CELL_TEXT && strcmp(t->cells[2].s, "x") == 0);
    rlab_result_free(res);

    /* errors: prefixed message, output printed before the failure kept */
    res = run(h, "tgood.fail", RLAB_EINVAL, "tgood.fail: k must be < 5");
    CHECK(res && res->nlines == 1 && strcmp(res->lines[0], "about to fail") == 0);
    rlab_result_free(res);
    rlab_result_free(run(h, "tgood.fail silent=1", RLAB_EIO, "tgood.fail: EIO"));
    /* argument errors come back unchanged */
    rlab_result_free(run(h, "tgood.echo n=0", RLAB_EINVAL,
                         "tgood.echo: bad argument 'n' (integer in [1, 5] expected, got 0)"));
    /* scratch memory is freed on success and failure (LSan checks) */
    rlab_result_free(run(h, "tgood.scratch blocks=50", RLAB_OK, NULL));
    rlab_result_free(run(h, "tgood.scratch blocks=50 fail=true", RLAB_EINVAL,
                         "tgood.scratch: failed after allocating"));
    /* plugin state from open reaches the commands */
    const int *runs = (const int *)rlab_host_plugin_state(h, "tgood") + 1;
    CHECK_EQ_INT(*runs, 5);
    rlab_host_free(h);
}

static void t_run_datasets(void)
{
    rlab_host *h = good_host();
    rlab_err err = {0};
    rlab_result_free(
        run(h, "tgood.echo data=nope", RLAB_ENOTFOUND, "tgood.echo: dataset 'nope' not found"));
    rlab_dataset *ds = rlab_dataset_new("ds1", &err);
    CHECK_EQ_INT(rlab_host_add_dataset(h, ds, &err), RLAB_OK);
    rlab_result *res = run(h, "tgood.echo data=ds1", RLAB_OK, NULL);
    const rlab_cell *c = rlab_result_scalar(res, "data");
    CHECK(c && c->type == RLAB_CELL_TEXT && strcmp(c->s, "ds1") == 0);
    rlab_result_free(res);
    /* a borrowed dataset survives being replaced and removed */
    rlab_dataset *held = rlab_host_dataset_get(h, "ds1");
    CHECK(held == ds);
    CHECK_EQ_INT(rlab_host_add_dataset(h, rlab_dataset_new("ds1", &err), &err), RLAB_OK);
    rlab_dataset *now = rlab_host_dataset_get(h, "ds1");
    CHECK(now != NULL && now != held);
    CHECK_STR(held->name, "ds1"); /* still alive (ASan would catch a use after free) */
    rlab_host_dataset_release(h, held);
    rlab_host_dataset_release(h, now);
    CHECK_EQ_INT(rlab_host_remove_dataset(h, "ds1", &err), RLAB_OK);
    CHECK_EQ_INT(rlab_host_remove_dataset(h, "ds1", &err), RLAB_ENOTFOUND);
    CHECK_STR(err.msg, "dataset 'ds1' not found");
    char **names = rlab_host_dataset_names(h);
    CHECK(names && names[0] == NULL);
    rlab_strv_free(names);
    rlab_host_free(h);
}

/* ---- host.data ------------------------------------------------------------------------------ */

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* A digest of a dataset's rows and vocabularies: equal digests, same dataset. */
static unsigned long long ds_digest(const rlab_dataset *ds)
{
    unsigned long long h = 1469598103934665603ull;
    const unsigned char *parts[3] = {(const unsigned char *)ds->inter.user,
                                     (const unsigned char *)ds->inter.item,
                                     (const unsigned char *)ds->inter.ts};
    size_t sizes[3] = {ds->inter.n * sizeof(int32_t), ds->inter.n * sizeof(int32_t),
                       ds->inter.n * sizeof(int64_t)};
    for (int k = 0; k < 3; k++)
        for (size_t i = 0; i < sizes[k]; i++)
            h = (h ^ parts[k][i]) * 1099511628211ull;
    for (int32_t i = 0; i < ds->items.n; i++)
        for (const char *c = ds->items.names[i]; *c; c++)
            h = (h ^ (unsigned char)*c) * 1099511628211ull;
    return h;
}

static int brief_state(rlab_host *h, const char *name)
{
    rlab_dataset_brief b;
    return rlab_host_dataset_brief(h, name, &b) == RLAB_OK ? (int)b.state : 0;
}

static const char small_udata[] = "1\t10\t5\t881250949\n"
                                  "1\t11\t3\t881250950\n"
                                  "2\t10\t4\t881250951\n"
                                  "2\t12\t2\t881250952\n"
                                  "3\t11\t1\t881250953\n";

static void t_data_reopen(void)
{
    char dir[512], udata[600], tsv[600], db[600];
    snprintf(dir, sizeof dir, "%s/ws", rlab_test_tmpdir());
    mkdir(dir, 0755);
    snprintf(udata, sizeof udata, "%s/u.data", dir);
    snprintf(tsv, sizeof tsv, "%s/talk.tsv", dir);
    snprintf(db, sizeof db, "%s/ws.db", dir);
    write_text(udata, small_udata);
    write_text(tsv, "dialog_id\tutt_id\tspeaker\tturn_id\ttext\tmovies\n"
                    "a\t1\tRECOMMENDER\t1\tHi\t\n"
                    "a\t2\tSEEKER\t1\tI liked Up\tUp (2009)\n");
    rlab_err err = {0};
    rlab_dataset_brief b;
    unsigned long long dig_w = 0, dig_small = 0;

    /* session 1: a file, a world, its split, dialogues */
    rlab_host *h = good_host();
    CHECK_EQ_INT(rlab_host_set_store(h, db, &err), RLAB_OK);
    CHECK_MSG(rlab_host_load_dataset(h, rlab_host_db(h), udata, NULL, "small", &b, &err) == RLAB_OK,
              "%s", err.msg);
    CHECK_EQ_INT(b.state, RLAB_DS_LOADED);
    CHECK_EQ_INT(b.n_users, 3);
    CHECK_STR(b.kind, "interactions");
    rlab_world_config cfg;
    rlab_world_config_default(&cfg);
    cfg.seed = 11;
    cfg.n_users = 60;
    cfg.n_items = 40;
    cfg.n_inter = 600;
    cfg.zipf = 0.913f; /* a float that must come back bit for bit */
    CHECK_MSG(rlab_host_make_world(h, rlab_host_db(h), &cfg, "w", NULL, &err) == RLAB_OK, "%s",
              err.msg);
    rlab_split_opts so;
    rlab_split_opts_default(&so);
    so.method = "ratio";
    so.seed = 5;
    rlab_dataset_brief parts[3];
    CHECK_MSG(rlab_host_split_dataset(h, rlab_host_db(h), "w", &so, parts, &err) == RLAB_OK, "%s",
              err.msg);
    CHECK_STR(parts[2].name, "w.test");
    CHECK_MSG(rlab_host_load_dataset(h, rlab_host_db(h), tsv, NULL, NULL, &b, &err) == RLAB_OK,
              "%s", err.msg);
    CHECK_STR(b.name, "talk");
    CHECK_STR(b.kind, "dialogues");
    CHECK_EQ_INT(b.n_users, 1); /* conversations */
    CHECK_EQ_INT(b.n_inter, 2); /* turns */
    rlab_dataset *ds = rlab_host_dataset_get(h, "w");
    CHECK(ds != NULL);
    dig_w = ds ? ds_digest(ds) : 0;
    rlab_host_dataset_release(h, ds);
    ds = rlab_host_dataset_get(h, "small");
    dig_small = ds ? ds_digest(ds) : 0;
    rlab_host_dataset_release(h, ds);
    rlab_host_free(h);

    /* session 2: everything listed at once, rebuilt on first use, identical */
    h = good_host();
    CHECK_EQ_INT(rlab_host_set_store(h, db, &err), RLAB_OK);
    char **names = rlab_host_dataset_names(h);
    const char *want[] = {"small", "talk", "w", "w.test", "w.train", "w.valid", NULL};
    for (int i = 0; want[i]; i++)
        CHECK_MSG(names && names[i] && strcmp(names[i], want[i]) == 0, "name %d: %s, expected %s",
                  i, names && names[i] ? names[i] : "(none)", want[i]);
    rlab_strv_free(names);
    CHECK_EQ_INT(brief_state(h, "small"), RLAB_DS_RECORDED);
    CHECK_EQ_INT(brief_state(h, "w"), RLAB_DS_RECORDED);
    ds = rlab_host_dataset_get(h, "w.test"); /* the split reloads its parent first */
    CHECK(ds != NULL);
    rlab_host_dataset_release(h, ds);
    CHECK_EQ_INT(brief_state(h, "w"), RLAB_DS_LOADED);
    CHECK_EQ_INT(brief_state(h, "w.train"), RLAB_DS_LOADED);
    ds = rlab_host_dataset_get(h, "w");
    CHECK(ds && ds_digest(ds) == dig_w); /* regenerated byte for byte */
    rlab_host_dataset_release(h, ds);
    ds = rlab_host_dataset_get(h, "small");
    CHECK(ds && ds_digest(ds) == dig_small);
    rlab_host_dataset_release(h, ds);
    CHECK(rlab_host_dataset_get(h, "talk") == NULL); /* dialogues are not interactions */
    rlab_dialogues *d = rlab_host_dialogues_get(h, "talk");
    CHECK(d && d->n == 1 && d->convs[0].nturns == 2);
    rlab_host_dialogues_release(h, d);
    /* a dialogue dataset can be named by a DATASET argument (a CRS command's data=) */
    rlab_result_free(run(h, "tgood.echo data=talk", RLAB_OK, NULL));
    rlab_host_free(h);

    /* the source changed (size): reported at open, never loaded, the command says why */
    write_text(udata, "1\t10\t5\t881250949\n");
    h = good_host();
    CHECK_EQ_INT(rlab_host_set_store(h, db, &err), RLAB_OK);
    CHECK_EQ_INT(rlab_host_dataset_brief(h, "small", &b), RLAB_OK);
    CHECK_EQ_INT(b.state, RLAB_DS_UNAVAILABLE);
    CHECK_STR_CONTAINS(b.problem, "dataset 'small'");
    CHECK_STR_CONTAINS(b.problem, udata);
    CHECK_STR_CONTAINS(b.problem, "changed since it was recorded");
    CHECK(rlab_host_dataset_get(h, "small") == NULL);
    /* the plugin API's form gives the reason (a plugin's rebuild names its parent's problem) */
    rlab_err ge = {0};
    CHECK(rlab_host_dataset_get_err(h, "small", &ge) == NULL);
    CHECK_EQ_INT(ge.code, RLAB_ESTATE);
    CHECK_STR_CONTAINS(ge.msg, udata);
    memset(&ge, 0, sizeof ge);
    CHECK(rlab_host_dataset_get_err(h, "nosuch", &ge) == NULL);
    CHECK_EQ_INT(ge.code, RLAB_ENOTFOUND);
    CHECK_STR_CONTAINS(ge.msg, "nosuch");
    CHECK(rlab_host_dataset_get_err(h, "nosuch", NULL) == NULL);
    CHECK_EQ_INT(rlab_host_dataset_ensure(h, "small", &err), RLAB_ESTATE);
    rlab_result_free(run(h, "tgood.echo data=small", RLAB_ESTATE, NULL));
    rlab_host_free(h);

    /* same size, other bytes: only the sha256 tells, at first use */
    char same[sizeof small_udata];
    memcpy(same, small_udata, sizeof same);
    same[2] = '9'; /* item 10 -> 90 */
    write_text(udata, same);
    h = good_host();
    CHECK_EQ_INT(rlab_host_set_store(h, db, &err), RLAB_OK);
    CHECK_EQ_INT(brief_state(h, "small"), RLAB_DS_RECORDED);
    CHECK_EQ_INT(rlab_host_dataset_ensure(h, "small", &err), RLAB_ESTATE);
    CHECK_STR_CONTAINS(err.msg, "sha256");
    CHECK_EQ_INT(brief_state(h, "small"), RLAB_DS_UNAVAILABLE);
    rlab_host_free(h);

    /* moved away: reported at open; forgetting it removes it from the store */
    char moved[700];
    snprintf(moved, sizeof moved, "%s/elsewhere.data", dir);
    CHECK(rename(udata, moved) == 0);
    h = good_host();
    CHECK_EQ_INT(rlab_host_set_store(h, db, &err), RLAB_OK);
    CHECK_EQ_INT(rlab_host_dataset_brief(h, "small", &b), RLAB_OK);
    CHECK_STR_CONTAINS(b.problem, "is missing (moved or deleted");
    CHECK_EQ_INT(rlab_host_forget_dataset(h, rlab_host_db(h), "small", &err), RLAB_OK);
    rlab_host_free(h);
    h = good_host();
    CHECK_EQ_INT(rlab_host_set_store(h, db, &err), RLAB_OK);
    CHECK_EQ_INT(brief_state(h, "small"), 0);
    CHECK_EQ_INT(brief_state(h, "talk"), RLAB_DS_RECORDED);
    rlab_host_free(h);
}

/* ---- host.job ------------------------------------------------------------------------------- */

static void t_job_progress(void)
{
    rlab_host *h = good_host();
    rlab_err err = {0};
    evlog_reset();
    rlab_host_set_event_fn(h, on_event, NULL);
    /* synchronous run of a job command (batch mode): every progress step is delivered */
    rlab_result *res = run(h, "tgood.count n=4", RLAB_OK, NULL);
    rlab_result_free(res);
    CHECK_EQ_INT(evlog.n, 7); /* STARTED, 4 x PROGRESS, LOG, DONE */
    if (evlog.n == 7) {
        int id = evlog.ev[0].job_id;
        CHECK(id > 0);
        CHECK_EQ_INT(evlog.ev[0].type, RLAB_EV_STARTED);
        for (int i = 1; i <= 4; i++) {
            CHECK_EQ_INT(evlog.ev[i].type, RLAB_EV_PROGRESS);
            CHECK_EQ_INT(evlog.ev[i].job_id, id);
            CHECK_EQ_INT(evlog.ev[i].step, i);
            CHECK_EQ_INT(evlog.ev[i].total, 4);
            CHECK_EQ_INT(evlog.ev[i].nmetrics, 2);
            CHECK_NEAR(evlog.ev[i].m0, 1.0 / i, 1e-6); /* loss = 1/i */
        }
        CHECK_EQ_INT(evlog.ev[5].type, RLAB_EV_LOG);
        CHECK_STR(evlog.ev[5].text, "counted to 4");
        CHECK_EQ_INT(evlog.ev[6].type, RLAB_EV_DONE);
        CHECK_EQ_INT(evlog.ev[6].status, RLAB_OK);
    }
    /* as a job, with a progress interval: only the first and last steps get through */
    evlog_reset();
    rlab_host_set_progress_interval(h, 60.0);
    int id = 0;
    CHECK_EQ_INT(rlab_host_submit(h, "tgood.count n=50", &id, &err), RLAB_OK);
    CHECK(id > 0);
    CHECK_EQ_INT(rlab_host_wait(h, id, &res, &err), RLAB_OK);
    const rlab_cell *c = rlab_result_scalar(res, "count");
    CHECK(c && c->i == 50);
    rlab_result_free(res);
    CHECK(evlog_wait(RLAB_EV_QUEUED, id, 0) >= 0);
    CHECK_EQ_INT(evlog_count(RLAB_EV_STARTED, id), 1);
    CHECK_EQ_INT(evlog_count(RLAB_EV_PROGRESS, id), 2);
    CHECK_EQ_INT(evlog_count(RLAB_EV_DONE, id), 1);
    int p = evlog_wait(RLAB_EV_PROGRESS, id, 0);
    CHECK(p >= 0 && evlog.ev[p].step == 1);
    p = evlog_wait(RLAB_EV_PROGRESS, id, p + 1);
    CHECK(p >= 0 && evlog.ev[p].step == 50);
    /* a collected job is gone */
    rlab_job_info info;
    CHECK_EQ_INT(rlab_host_job_info(h, id, &info), RLAB_ENOTFOUND);
    CHECK_EQ_INT(rlab_host_wait(h, id, NULL, &err), RLAB_ENOTFOUND);
    /* submit errors come back at once */
    CHECK_EQ_INT(rlab_host_submit(h, "tgood.count", &id, &err), RLAB_EINVAL);
    CHECK_STR(err.msg, "tgood.count: missing argument 'n'");
    rlab_host_free(h);
}

static void t_job_cancel(void)
{
    rlab_host *h = good_host();
    rlab_err err = {0};
    evlog_reset();
    rlab_host_set_event_fn(h, on_event, NULL);
    int id = 0;
    CHECK_EQ_INT(rlab_host_submit(h, "tgood.loop", &id, &err), RLAB_OK);
    CHECK(evlog_wait(RLAB_EV_PROGRESS, id, 0) >= 0); /* it is spinning */
    rlab_job_info info;
    CHECK_EQ_INT(rlab_host_job_info(h, id, &info), RLAB_OK);
    CHECK_EQ_INT(info.state, RLAB_JOB_RUNNING);
    CHECK_STR(info.cmd, "tgood.loop");
    CHECK_STR(info.label, "spin");
    CHECK_EQ_INT(rlab_host_busy(h), 1);
    double t0 = rlab_now();
    CHECK_EQ_INT(rlab_host_cancel(h, id), RLAB_OK);
    rlab_result *res = NULL;
    CHECK_EQ_INT(rlab_host_wait(h, id, &res, &err), RLAB_ECANCELED);
    double dt = rlab_now() - t0;
    CHECK_MSG(dt < 0.1, "cancel took %.3f s", dt);
    CHECK_STR(err.msg, "tgood.loop: cancelled");
    CHECK(res != NULL);
    rlab_result_free(res);
    int d = evlog_wait(RLAB_EV_DONE, id, 0);
    CHECK(d >= 0 && evlog.ev[d].status == RLAB_ECANCELED);
    CHECK_EQ_INT(rlab_host_busy(h), 0);
    CHECK_EQ_INT(rlab_host_cancel(h, id), RLAB_ENOTFOUND);
    rlab_host_free(h);
}

static void t_job_fifo(void)
{
    rlab_host *h = good_host();
    rlab_err err = {0};
    evlog_reset();
    rlab_host_set_event_fn(h, on_event, NULL);
    int a = 0, b = 0;
    CHECK_EQ_INT(rlab_host_submit(h, "tgood.loop", &a, &err), RLAB_OK);
    CHECK_EQ_INT(rlab_host_submit(h, "tgood.count n=5", &b, &err), RLAB_OK);
    CHECK(b > a);
    CHECK(evlog_wait(RLAB_EV_PROGRESS, a, 0) >= 0);
    /* the second job waits behind the first, and its state shows it */
    rlab_job_info ia, ib, all[8];
    CHECK_EQ_INT(rlab_host_job_info(h, a, &ia), RLAB_OK);
    CHECK_EQ_INT(rlab_host_job_info(h, b, &ib), RLAB_OK);
    CHECK_EQ_INT(ia.state, RLAB_JOB_RUNNING);
    CHECK_EQ_INT(ib.state, RLAB_JOB_QUEUED);
    CHECK_STR(rlab_job_state_name(ib.state), "queued");
    CHECK_EQ_INT(rlab_host_jobs(h, all, 8), 2);
    CHECK_EQ_INT(all[0].id, a);
    CHECK_EQ_INT(all[1].id, b);
    CHECK_EQ_INT(rlab_host_busy(h), 2);
    CHECK_EQ_INT(evlog_count(RLAB_EV_STARTED, b), 0);
    CHECK_EQ_INT(rlab_host_cancel(h, a), RLAB_OK);
    rlab_result *res = NULL;
    CHECK_EQ_INT(rlab_host_wait(h, b, &res, &err), RLAB_OK);
    CHECK(rlab_result_scalar(res, "count") && rlab_result_scalar(res, "count")->i == 5);
    rlab_result_free(res);
    CHECK_EQ_INT(rlab_host_wait(h, a, NULL, &err), RLAB_ECANCELED);
    int done_a = evlog_wait(RLAB_EV_DONE, a, 0), start_b = evlog_wait(RLAB_EV_STARTED, b, 0);
    CHECK(done_a >= 0 && start_b > done_a);
    rlab_host_free(h);
}

static void t_job_cancel_queued(void)
{
    rlab_host *h = good_host();
    rlab_err err = {0};
    evlog_reset();
    rlab_host_set_event_fn(h, on_event, NULL);
    int a = 0, b = 0, c = 0;
    CHECK_EQ_INT(rlab_host_submit(h, "tgood.loop", &a, &err), RLAB_OK);
    CHECK_EQ_INT(rlab_host_submit(h, "tgood.count n=3", &b, &err), RLAB_OK);
    CHECK_EQ_INT(rlab_host_submit(h, "tgood.count n=2", &c, &err), RLAB_OK);
    CHECK(evlog_wait(RLAB_EV_PROGRESS, a, 0) >= 0);
    CHECK_EQ_INT(rlab_host_cancel(h, b), RLAB_OK);
    CHECK_EQ_INT(rlab_host_wait(h, b, NULL, &err), RLAB_ECANCELED);
    CHECK_STR(err.msg, "tgood.count: cancelled");
    rlab_host_cancel(h, a);
    CHECK_EQ_INT(rlab_host_wait(h, c, NULL, &err), RLAB_OK);
    CHECK_EQ_INT(evlog_count(RLAB_EV_STARTED, b), 0); /* never ran */
    CHECK_EQ_INT(evlog_count(RLAB_EV_DONE, b), 1);
    /* host_free with a job still running and one queued: both cancelled, nothing leaks */
    CHECK_EQ_INT(rlab_host_submit(h, "tgood.loop", &a, &err), RLAB_OK);
    CHECK_EQ_INT(rlab_host_submit(h, "tgood.loop", &b, &err), RLAB_OK);
    CHECK(evlog_wait(RLAB_EV_PROGRESS, a, 0) >= 0);
    rlab_host_free(h);
}

/* ---- host.model -------------------------------------------------------------------------------
 */

/* tlin: score(u, i) = ((i * 7) % n) + 0.5 u + bias; for n = 10 the per-item part is
 * i:  0 1 2 3 4 5 6 7 8 9
 *     0 7 4 1 8 5 2 9 6 3 */
static void t_model_registry(void)
{
    rlab_host *h = good_host();
    rlab_err err = {0};
    rlab_result *res = run(h, "tgood.train name=m1 items=10", RLAB_OK, NULL);
    const rlab_cell *c = rlab_result_scalar(res, "model");
    CHECK(c && c->type == RLAB_CELL_MODEL && strcmp(c->s, "m1") == 0);
    rlab_result_free(res);
    rlab_models *reg = rlab_host_models(h);
    rlab_model *m = rlab_models_get(reg, "m1");
    CHECK(m != NULL);
    if (!m) {
        rlab_host_free(h);
        return;
    }
    CHECK_STR(m->plugin, "tgood"); /* stamped by the host */
    CHECK_STR(m->kind, "tlin");
    CHECK_EQ_INT(m->n_items, 10);
    rlab_query q[2] = {{.user = 0}, {.user = 2}};
    float all[20];
    CHECK_EQ_INT(rlab_model_score_all(m, q, 2, all, &err), RLAB_OK);
    CHECK_NEAR(all[7], 9.0, 0);
    CHECK_NEAR(all[10 + 7], 10.0, 0);
    CHECK_NEAR(all[10 + 0], 1.0, 0);
    /* score given items: generic gather over score_all */
    int32_t items[6] = {2, 7, 0, 9, 9, 1};
    float s[6];
    CHECK_EQ_INT(rlab_model_score(m, q, 2, items, 3, s, &err), RLAB_OK);
    CHECK_NEAR(s[0], 4.0, 0);
    CHECK_NEAR(s[1], 9.0, 0);
    CHECK_NEAR(s[2], 0.0, 0);
    CHECK_NEAR(s[3], 4.0, 0); /* 3 + 1 */
    CHECK_NEAR(s[5], 8.0, 0); /* 7 + 1 */
    items[0] = 10;
    CHECK_EQ_INT(rlab_model_score(m, q, 1, items, 1, s, &err), RLAB_EINVAL);
    CHECK_STR(err.msg, "model 'm1': item 10 out of range [0, 10)");
    /* top-k without and with a mask */
    int32_t top[6];
    float ts[6];
    CHECK_EQ_INT(rlab_model_topk(m, q, 1, 3, NULL, top, ts, &err), RLAB_OK);
    CHECK(top[0] == 7 && top[1] == 4 && top[2] == 1);
    CHECK_NEAR(ts[0], 9.0, 0);
    CHECK_NEAR(ts[2], 7.0, 0);
    uint8_t mask[20] = {0};
    mask[7] = mask[1] = 1; /* query 0 */
    mask[10 + 4] = 1;      /* query 1 */
    CHECK_EQ_INT(rlab_model_topk(m, q, 2, 3, mask, top, ts, &err), RLAB_OK);
    CHECK(top[0] == 4 && top[1] == 8 && top[2] == 5);
    CHECK_NEAR(ts[1], 6.0, 0);
    CHECK(top[3] == 7 && top[4] == 1 && top[5] == 8);
    CHECK_NEAR(ts[3], 10.0, 0);
    /* masked items are never returned, even when k exceeds what is left */
    int32_t big[2 * 12];
    float bs[2 * 12];
    memset(mask, 1, 10);
    mask[3] = mask[5] = 0;
    CHECK_EQ_INT(rlab_model_topk(m, q, 2, 12, mask, big, bs, &err), RLAB_OK);
    CHECK(big[0] == 5 && big[1] == 3 && big[2] == -1 && big[11] == -1);
    CHECK(bs[2] < -1e30f);
    for (int i = 12; i < 24; i++)
        CHECK(big[i] != 4 && (i < 12 + 9 || big[i] == -1));
    /* a command uses the model through the registry */
    res = run(h, "tgood.top model=m1", RLAB_OK, NULL);
    CHECK(rlab_result_scalar(res, "top") && rlab_result_scalar(res, "top")->i == 7);
    rlab_result_free(res);
    rlab_result_free(
        run(h, "tgood.top model=zz", RLAB_ENOTFOUND, "tgood.top: model 'zz' not found"));
    /* replacing a borrowed model: the old one stays usable until released */
    rlab_result_free(run(h, "tgood.train name=m1 items=10 bias=100", RLAB_OK, NULL));
    CHECK_EQ_INT(rlab_model_score_all(m, q, 1, all, &err), RLAB_OK);
    CHECK_NEAR(all[7], 9.0, 0);
    rlab_model *m2 = rlab_models_get(reg, "m1");
    CHECK(m2 && m2 != m);
    CHECK_EQ_INT(rlab_model_score_all(m2, q, 1, all, &err), RLAB_OK);
    CHECK_NEAR(all[7], 109.0, 0);
    rlab_model_release(m);
    rlab_model_release(m2);
    /* list, remove */
    rlab_result_free(run(h, "tgood.train name=a0 items=4", RLAB_OK, NULL));
    rlab_model_info *info = NULL;
    int n = 0;
    CHECK_EQ_INT(rlab_models_list(reg, &info, &n, &err), RLAB_OK);
    CHECK_EQ_INT(n, 2);
    if (n == 2) {
        CHECK_STR(info[0].name, "a0");
        CHECK_STR(info[1].name, "m1");
        CHECK_STR(info[1].describe, "tlin bias=100 over 10 items");
        CHECK_STR(info[0].plugin, "tgood");
    }
    rlab_free(info);
    res = run(h, "models", RLAB_OK, NULL);
    CHECK(res && res->ntables == 1 && res->tables[0]->nrows == 2);
    rlab_result_free(res);
    CHECK_EQ_INT(rlab_models_remove(reg, "a0", &err), RLAB_OK);
    CHECK_EQ_INT(rlab_models_remove(reg, "a0", &err), RLAB_ENOTFOUND);
    CHECK_STR(err.msg, "model 'a0' not found");
    CHECK_EQ_INT(rlab_models_count(reg), 1);
    rlab_host_free(h);
}

static void t_model_save_load(void)
{
    rlab_host *h = good_host();
    rlab_err err = {0};
    rlab_result_free(run(h, "tgood.train name=m1 items=12 bias=0.25", RLAB_OK, NULL));
    char *path = NULL;
    const char *dir = rlab_test_tmpdir();
    CHECK_EQ_INT(rlab_host_save_model(h, "m1", dir, &path, &err), RLAB_OK);
    char want[512];
    snprintf(want, sizeof want, "%s/m1.safetensors", dir);
    CHECK_STR(path, want);
    /* one file: the kind, dataset and config are in the checkpoint's header */
    CHECK_EQ_INT(rlab_host_load_model(h, "m1copy", path, NULL, &err), RLAB_OK);
    rlab_model *a = rlab_models_get(rlab_host_models(h), "m1");
    rlab_model *b = rlab_models_get(rlab_host_models(h), "m1copy");
    CHECK(a && b);
    if (a && b) {
        CHECK_STR(b->kind, "tlin");
        CHECK_STR(b->plugin, "tgood");
        CHECK_STR(b->dataset, "none");
        CHECK_EQ_INT(b->n_items, 12);
        rlab_query q = {.user = 1};
        float sa[12], sb[12];
        CHECK_EQ_INT(rlab_model_score_all(a, &q, 1, sa, &err), RLAB_OK);
        CHECK_EQ_INT(rlab_model_score_all(b, &q, 1, sb, &err), RLAB_OK);
        CHECK(memcmp(sa, sb, sizeof sa) == 0);
        CHECK_NEAR(sb[1], 7.0 + 0.5 + 0.25, 0);
    }
    rlab_model_release(a);
    rlab_model_release(b);
    /* explicit kind, unknown kind, missing model, unreadable file */
    CHECK_EQ_INT(rlab_host_load_model(h, "m1b", path, "tlin", &err), RLAB_OK);
    CHECK_EQ_INT(rlab_host_load_model(h, "x", path, "nokind", &err), RLAB_EFORMAT);
    char msg[600];
    snprintf(msg, sizeof msg, "%s holds a 'tlin' model, not 'nokind'", path);
    CHECK_STR(err.msg, msg);
    CHECK_EQ_INT(rlab_host_save_model(h, "zz", dir, NULL, &err), RLAB_ENOTFOUND);
    CHECK_STR(err.msg, "model 'zz' not found");
    char bogus[512];
    snprintf(bogus, sizeof bogus, "%s/m1.json", dir); /* no sidecar is written any more */
    CHECK(access(bogus, F_OK) != 0);
    CHECK(rlab_host_load_model(h, "x", bogus, "tlin", &err) != RLAB_OK);
    CHECK_EQ_INT(rlab_models_count(rlab_host_models(h)), 3);
    rlab_free(path);
    rlab_host_free(h);
}

/* ---- host.call: a plugin calls a host verb through the plugin API ------------------------ */

static void query1(rlab_host *h, const char *sql, char *out, size_t size);

static void t_call(void)
{
    rlab_host *h = good_host();
    rlab_err err = {0};
    rlab_dataset *ds = rlab_dataset_new("d", &err);
    CHECK(ds != NULL);
    if (!ds) {
        rlab_host_free(h);
        return;
    }
    for (int u = 0; u < 3; u++) {
        char b[8];
        snprintf(b, sizeof b, "u%d", u);
        rlab_vocab_add(&ds->users, b, strlen(b));
    }
    for (int i = 0; i < 6; i++) {
        char b[8];
        snprintf(b, sizeof b, "i%d", i);
        rlab_vocab_add(&ds->items, b, strlen(b));
    }
    for (int u = 0; u < 3; u++)
        for (int k = 0; k < 4; k++)
            rlab_inter_push(&ds->inter, u, (u + k) % 6, k + 1, 1.0f, NULL);
    ds->inter.flags = RLAB_INTER_HAS_TS;
    CHECK_EQ_INT(rlab_host_add_dataset(h, ds, &err), RLAB_OK);
    /* a working call: the verb trains the kind and the caller gets its result */
    rlab_result *res = run(h, "tgood.call cmd='train tlin' data=d bias=0.5", RLAB_OK, NULL);
    const rlab_cell *c = res ? rlab_result_scalar(res, "called_model") : NULL;
    CHECK(c && c->s && strcmp(c->s, "tlin") == 0);
    rlab_result_free(res);
    /* unknown and out-of-range arguments fail with the callee's own message */
    rlab_result_free(run(h, "tgood.call cmd='train tlin' data=d extra=bogus", RLAB_EINVAL,
                         "tgood.call: train tlin: unknown argument 'bogus'"));
    rlab_result_free(run(h, "tgood.call cmd='train tlin' data=d bias=1000", RLAB_EINVAL,
                         "tgood.call: train tlin: bad argument 'bias' (number in [-100, 100] "
                         "expected, got 1000)"));
    rlab_result_free(run(h, "tgood.call cmd='train tlin' data=d extra=epochs extra_value=0",
                         RLAB_EINVAL, "tgood.call: train tlin: unknown argument 'epochs'"));
    /* the callee's own failure (a missing dataset) comes back too */
    rlab_result_free(run(h, "tgood.call cmd='train tlin' data=nope", RLAB_ENOTFOUND,
                         "tgood.call: train tlin: dataset 'nope' not found"));
    rlab_result_free(run(h, "tgood.call cmd='no.such'", RLAB_ENOTFOUND,
                         "tgood.call: unknown command 'no.such'"));
    /* with a store, the called command's run names the caller's run as its parent */
    char db[512], got[64];
    snprintf(db, sizeof db, "%s/call.db", rlab_test_tmpdir());
    CHECK_EQ_INT(rlab_host_set_store(h, db, &err), RLAB_OK);
    rlab_result_free(run(h, "tgood.call cmd='train tlin' data=d bias=0.5", RLAB_OK, NULL));
    query1(h,
           "SELECT count(*) FROM runs c JOIN runs p ON c.parent_id = p.id"
           " WHERE p.name = 'tgood.call' AND c.name = 'train tlin'",
           got, sizeof got);
    CHECK_STR(got, "1");
    query1(h, "SELECT count(*) FROM runs WHERE parent_id IS NULL", got, sizeof got);
    CHECK_STR(got, "1");
    rlab_host_free(h);
}

/* ---- host.store ------------------------------------------------------------------------------ */

/* One cell of a query as text (ints and reals formatted), "" for NULL. */
static void query1(rlab_host *h, const char *sql, char *out, size_t size)
{
    rlab_err err = {0};
    rlab_db_result *r = rlab_db_query_table(rlab_host_db(h), sql, NULL, 0, 0, &err);
    CHECK_MSG(r != NULL, "%s: %s", sql, err.msg);
    out[0] = '\0';
    if (r && r->nrow > 0) {
        const rlab_db_value *v = rlab_db_result_cell(r, 0, 0);
        if (v->type == RLAB_DB_INT)
            snprintf(out, size, "%lld", (long long)v->i);
        else if (v->type == RLAB_DB_REAL)
            snprintf(out, size, "%g", v->r);
        else if (v->type == RLAB_DB_TEXT)
            snprintf(out, size, "%s", v->s);
    }
    rlab_db_result_free(r);
}

static void t_store_runs(void)
{
    rlab_host *h = good_host();
    rlab_err err = {0};
    char path[512], buf[512];
    snprintf(path, sizeof path, "%s/session.db", rlab_test_tmpdir());
    CHECK_EQ_INT(rlab_host_set_store(h, path, &err), RLAB_OK);
    CHECK(rlab_host_db(h) != NULL);
    /* the plugin's migration ran when the store was attached */
    query1(h, "SELECT version FROM plugin_schema WHERE plugin = 'tgood'", buf, sizeof buf);
    CHECK_STR(buf, "1");
    query1(h, "SELECT count(*) FROM tgood_notes", buf, sizeof buf);
    CHECK_STR(buf, "0");
    /* a successful sync run */
    rlab_dataset *ds = rlab_dataset_new("ds1", &err);
    rlab_host_add_dataset(h, ds, &err);
    rlab_result_free(run(h, "tgood.echo yo data=ds1", RLAB_OK, NULL));
    query1(h,
           "SELECT status || '|' || plugin || '|' || name || '|' || dataset || '|' || "
           "plugin_version FROM runs ORDER BY id DESC LIMIT 1",
           buf, sizeof buf);
    CHECK_STR(buf, "done|tgood|tgood.echo|ds1|1.2.3");
    query1(h,
           "SELECT json_extract(config, '$.msg') || json_extract(config, '$.n') FROM runs "
           "ORDER BY id DESC LIMIT 1",
           buf, sizeof buf);
    CHECK_STR(buf, "yo1");
    /* a failure keeps the message */
    rlab_result_free(run(h, "tgood.fail", RLAB_EINVAL, "tgood.fail: k must be < 5"));
    query1(h, "SELECT status || '|' || error FROM runs ORDER BY id DESC LIMIT 1", buf, sizeof buf);
    CHECK_STR(buf, "failed|tgood.fail: k must be < 5");
    /* a job writes metrics through the worker's own connection */
    int id = 0;
    rlab_result *res = NULL;
    CHECK_EQ_INT(rlab_host_submit(h, "tgood.count n=3", &id, &err), RLAB_OK);
    CHECK_EQ_INT(rlab_host_wait(h, id, &res, &err), RLAB_OK);
    const rlab_cell *c = rlab_result_scalar(res, "train.loss");
    CHECK(c && c->type == RLAB_CELL_FLOAT);
    CHECK_NEAR(c ? c->f : 0, 1.0 / 3, 1e-6);
    rlab_result_free(res);
    query1(h,
           "SELECT count(*) || '|' || sum(step) || '|' || min(value) FROM metrics m JOIN runs "
           "r ON r.id = m.run_id WHERE r.name = 'tgood.count' AND m.name = 'loss'",
           buf, sizeof buf);
    CHECK_STR(buf, "3|6|0.333333343267441"); /* float loss 1/3f */
    /* a cancelled job is interrupted */
    CHECK_EQ_INT(rlab_host_submit(h, "tgood.loop", &id, &err), RLAB_OK);
    rlab_job_info info = {0};
    for (int spin = 0; spin < 5000; spin++) { /* wait until it is running */
        rlab_host_job_info(h, id, &info);
        if (info.step > 0)
            break;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    CHECK(info.run_id > 0);
    rlab_host_cancel(h, id);
    CHECK_EQ_INT(rlab_host_wait(h, id, NULL, &err), RLAB_ECANCELED);
    snprintf(buf, sizeof buf, "SELECT status FROM runs WHERE id = %lld", (long long)info.run_id);
    query1(h, buf, buf, sizeof buf);
    CHECK_STR(buf, "interrupted");
    /* read-only and core commands make no run rows */
    query1(h, "SELECT count(*) FROM runs", buf, sizeof buf);
    CHECK_STR(buf, "4");
    rlab_result_free(run(h, "tgood.train name=m1", RLAB_OK, NULL));
    rlab_result_free(run(h, "tgood.top model=m1", RLAB_OK, NULL));
    rlab_result_free(run(h, "help", RLAB_OK, NULL));
    query1(h, "SELECT count(*) FROM runs", buf, sizeof buf);
    CHECK_STR(buf, "5");
    /* saving a model records an artifact and a models row */
    CHECK_EQ_INT(rlab_host_save_model(h, "m1", rlab_test_tmpdir(), NULL, &err), RLAB_OK);
    query1(h,
           "SELECT m.kind || '|' || m.plugin || '|' || (a.bytes = length(a.data)) || '|' || "
           "(a.bytes > 100) FROM models m JOIN artifacts a ON a.id = m.artifact_id WHERE "
           "m.name = 'm1'",
           buf, sizeof buf);
    CHECK_STR(buf, "tlin|tgood|1|1"); /* the whole checkpoint, header and tensors */
    /* a session written by a newer schema of the plugin refuses it */
    CHECK_EQ_INT(rlab_db_exec(rlab_host_db(h),
                              "UPDATE plugin_schema SET version = 5 WHERE plugin = 'tgood'", &err),
                 RLAB_OK);
    CHECK_EQ_INT(rlab_host_unload(h, "tgood", &err), RLAB_OK);
    CHECK_EQ_INT(rlab_host_load_file(h, PDIR "/reclab_tgood.so", &err), RLAB_EVERSION);
    CHECK_STR(err.msg, "plugin " PDIR "/reclab_tgood.so: session was written by tgood schema 5; "
                       "this plugin knows 1");
    CHECK(rlab_host_find_cmd(h, "tgood.echo") == NULL);
    CHECK_EQ_INT(rlab_host_set_store(h, NULL, &err), RLAB_OK);
    CHECK(rlab_host_db(h) == NULL);
    rlab_host_free(h);
}

/* A model saved in one session is restored from the store's bytes in the next one, even with
 * its files deleted: by rlab_host_model_get and when a command names it. */
static void t_store_restore(void)
{
    rlab_err err = {0};
    char db[512], dir[512], file[600];
    snprintf(db, sizeof db, "%s/restore.db", rlab_test_tmpdir());
    snprintf(dir, sizeof dir, "%s/restore-models", rlab_test_tmpdir());
    CHECK(mkdir(dir, 0777) == 0 || errno == EEXIST);
    float before[12], after[12];
    rlab_query q = {.user = 1};

    rlab_host *h = good_host();
    CHECK_EQ_INT(rlab_host_set_store(h, db, &err), RLAB_OK);
    rlab_result_free(run(h, "tgood.train name=keep items=12 bias=0.5", RLAB_OK, NULL));
    /* the run row names what it trained: kind and dataset of the registered model */
    char buf[128];
    query1(h, "SELECT model_kind || '/' || dataset FROM runs ORDER BY id DESC LIMIT 1", buf,
           sizeof buf);
    CHECK_STR(buf, "tlin/none");
    CHECK_EQ_INT(rlab_host_save_model(h, "keep", dir, NULL, &err), RLAB_OK);
    rlab_model *m = rlab_host_model_get(h, "keep", &err);
    CHECK(m != NULL);
    if (m)
        CHECK_EQ_INT(rlab_model_score_all(m, &q, 1, before, &err), RLAB_OK);
    rlab_model_release(m);
    rlab_host_free(h);
    snprintf(file, sizeof file, "%s/keep.safetensors", dir);
    CHECK(unlink(file) == 0); /* one file per model: no sidecar */
    snprintf(file, sizeof file, "%s/keep.json", dir);
    CHECK(access(file, F_OK) != 0);

    /* next session: not registered, restored on demand with identical scores */
    h = good_host();
    CHECK_EQ_INT(rlab_host_set_store(h, db, &err), RLAB_OK);
    CHECK_EQ_INT(rlab_models_count(rlab_host_models(h)), 0);
    m = rlab_host_model_get(h, "keep", &err);
    CHECK_MSG(m != NULL, "restore: %s", err.msg);
    if (m) {
        CHECK_STR(m->kind, "tlin");
        CHECK_EQ_INT(rlab_model_score_all(m, &q, 1, after, &err), RLAB_OK);
        CHECK(memcmp(before, after, sizeof before) == 0);
    }
    rlab_model_release(m);
    CHECK(rlab_host_model_get(h, "never-saved", &err) == NULL);
    CHECK_EQ_INT(err.code, RLAB_ENOTFOUND);
    rlab_host_free(h);

    /* a third session: a command naming the model restores it too */
    h = good_host();
    CHECK_EQ_INT(rlab_host_set_store(h, db, &err), RLAB_OK);
    rlab_result_free(run(h, "tgood.top model=keep", RLAB_OK, NULL));
    CHECK_EQ_INT(rlab_models_count(rlab_host_models(h)), 1);
    rlab_host_free(h);
}

/* ---- host.topk --------------------------------------------------------------------------------
 */

static void t_topk_row(void)
{
    const float s[6] = {1.0f, 3.0f, 3.0f, NAN, 2.0f, 3.0f};
    int32_t it[4];
    float sc[4];
    rlab_topk_row(s, 6, NULL, 4, it, sc);
    /* ties go to the lower index; NaN is never selected */
    CHECK(it[0] == 1 && it[1] == 2 && it[2] == 5 && it[3] == 4);
    CHECK_NEAR(sc[3], 2.0, 0);
    const uint8_t mask[6] = {0, 0, 1, 0, 0, 1};
    rlab_topk_row(s, 6, mask, 4, it, NULL);
    CHECK(it[0] == 1 && it[1] == 4 && it[2] == 0 && it[3] == -1);
    /* against a brute-force oracle on random rows */
    rlab_rng rng;
    rlab_rng_seed(&rng, 7);
    for (int trial = 0; trial < 50; trial++) {
        float row[97];
        uint8_t m[97];
        for (int i = 0; i < 97; i++) {
            row[i] = (float)rlab_rng_below(&rng, 20); /* many ties */
            m[i] = rlab_rng_below(&rng, 4) == 0;
        }
        int32_t got[10];
        rlab_topk_row(row, 97, m, 10, got, NULL);
        uint8_t used[97] = {0};
        for (int j = 0; j < 10; j++) {
            int best = -1;
            for (int i = 0; i < 97; i++)
                if (!m[i] && !used[i] && (best < 0 || row[i] > row[best]))
                    best = i;
            if (best >= 0)
                used[best] = 1;
            CHECK_EQ_INT(got[j], best);
        }
    }
}

/* ---- names longer than a name field ------------------------------------------------------ */

/* Two 64-byte names sharing their first 63 bytes, and the longest name allowed. */
static void long_names(char a63[64], char x64[65], char y64[65])
{
    memset(a63, 'a', 63);
    a63[63] = '\0';
    snprintf(x64, 65, "%sx", a63);
    snprintf(y64, 65, "%sy", a63);
}

static int nul_frees;
static int nul_score_all(const rlab_model *m, const rlab_query *q, int nq, float *out,
                         rlab_err *err)
{
    (void)m, (void)q, (void)nq, (void)out, (void)err;
    return RLAB_OK;
}
static void nul_free(rlab_model *m)
{
    (void)m;
    nul_frees++;
}
static const rlab_model_vt nul_vt = {.score_all = nul_score_all, .free = nul_free};

/* Model names over 63 bytes are refused everywhere a name enters (command argument, model
 * constructor, load, registry); before, both long names were cut to the same 63 bytes and
 * the second model replaced the first. */
static void t_model_long_names(void)
{
    char a63[64], x64[65], y64[65], line[256], want[256];
    long_names(a63, x64, y64);
    rlab_host *h = good_host();
    rlab_err err = {0};
    rlab_models *reg = rlab_host_models(h);
    snprintf(want, sizeof want, "tgood.train: model name '%.40s...' is longer than 63 bytes", a63);
    snprintf(line, sizeof line, "tgood.train name=%s items=4", x64);
    rlab_result_free(run(h, line, RLAB_EINVAL, want));
    snprintf(line, sizeof line, "tgood.train name=%s items=5", y64);
    rlab_result_free(run(h, line, RLAB_EINVAL, want));
    CHECK_EQ_INT(rlab_models_count(reg), 0);
    /* 63 bytes is fine, and is not confused with the refused names */
    snprintf(line, sizeof line, "tgood.train name=%s items=6", a63);
    rlab_result_free(run(h, line, RLAB_OK, NULL));
    rlab_model *m = rlab_models_get(reg, a63);
    CHECK(m != NULL && strcmp(m->name, a63) == 0 && m->n_items == 6);
    rlab_model_release(m);
    CHECK(rlab_models_get(reg, x64) == NULL);
    /* the constructor refuses (and still frees impl, which it owns) */
    nul_frees = 0;
    CHECK(rlab_model_new(&nul_vt, NULL, x64, "k", &err) == NULL);
    CHECK_EQ_INT(err.code, RLAB_EINVAL);
    snprintf(want, sizeof want, "model name '%.40s...' is longer than 63 bytes", a63);
    CHECK_STR(err.msg, want);
    CHECK_EQ_INT(nul_frees, 1);
    CHECK(rlab_model_new(&nul_vt, NULL, "ok", x64, &err) == NULL);
    CHECK_STR_CONTAINS(err.msg, "model kind name");
    CHECK_EQ_INT(nul_frees, 2);
    /* a name field filled to the brim by hand is refused by the registry */
    m = rlab_model_new(&nul_vt, NULL, "fine", "k", &err);
    CHECK(m != NULL);
    if (m) {
        memset(m->name, 'b', sizeof m->name);
        CHECK_EQ_INT(rlab_models_add(reg, m, &err), RLAB_EINVAL);
        CHECK_STR_CONTAINS(err.msg, "is longer than 63 bytes");
    }
    CHECK_EQ_INT(nul_frees, 3);
    /* loading a saved model under a long name */
    char *path = NULL;
    CHECK_EQ_INT(rlab_host_save_model(h, a63, rlab_test_tmpdir(), &path, &err), RLAB_OK);
    CHECK_EQ_INT(rlab_host_load_model(h, x64, path, "tlin", &err), RLAB_EINVAL);
    CHECK_STR(err.msg, want);
    CHECK_EQ_INT(rlab_models_count(reg), 1);
    rlab_free(path);
    rlab_host_free(h);
}

/* Dataset names over 63 bytes: refused by the constructor and at registration. */
static void t_dataset_long_names(void)
{
    char a63[64], x64[65], y64[65], want[256];
    long_names(a63, x64, y64);
    rlab_host *h = good_host();
    rlab_err err = {0};
    CHECK(rlab_dataset_new(x64, &err) == NULL);
    CHECK_EQ_INT(err.code, RLAB_EINVAL);
    snprintf(want, sizeof want, "dataset name '%.40s...' is longer than 63 bytes", a63);
    CHECK_STR(err.msg, want);
    rlab_dataset *ds = rlab_dataset_new(a63, &err);
    CHECK(ds != NULL);
    CHECK_EQ_INT(rlab_host_add_dataset(h, ds, &err), RLAB_OK);
    ds = rlab_dataset_new("fine", &err);
    CHECK(ds != NULL);
    if (ds) {
        memset(ds->name, 'a', sizeof ds->name); /* cut by hand: must not replace a63 */
        CHECK_EQ_INT(rlab_host_add_dataset(h, ds, &err), RLAB_EINVAL);
        CHECK_STR(err.msg, want);
    }
    char **names = rlab_host_dataset_names(h);
    CHECK(names && names[0] && strcmp(names[0], a63) == 0 && names[1] == NULL);
    rlab_strv_free(names);
    rlab_host_free(h);
}

/* ---- host.args.rest, host.records.*: the store's records as core commands --------------- */

static void t_args_rest(void)
{
    rlab_host *h = good_host();
    rlab_err err = {0};
    rlab_args *a = NULL;
    /* key=value words before the rest; the rest verbatim (quotes, '=', inner blanks) */
    CHECK_EQ_INT(rlab_host_parse(h, "sql rows=5 SELECT a, 'b  c' FROM t WHERE x = 1  ", &a, &err),
                 RLAB_OK);
    CHECK_STR(rlab_args_str(a, "query"), "SELECT a, 'b  c' FROM t WHERE x = 1");
    CHECK_EQ_INT(rlab_args_int(a, "rows"), 5);
    rlab_args_free(a);
    CHECK_EQ_INT(rlab_host_parse(h, "sql SELECT 1 timeout=2", &a, &err), RLAB_OK);
    CHECK_STR(rlab_args_str(a, "query"), "SELECT 1 timeout=2");
    CHECK(!rlab_args_given(a, "timeout"));
    rlab_args_free(a);
    /* the Lua form: every later positional value is appended */
    a = rlab_args_new(h, "compare", &err);
    CHECK_EQ_INT(rlab_args_set_next(a, "6", &err), RLAB_OK);
    CHECK_EQ_INT(rlab_args_set_next(a, "7", &err), RLAB_OK);
    CHECK_EQ_INT(rlab_args_set_next(a, "#9", &err), RLAB_OK);
    CHECK_STR(rlab_args_str(a, "runs"), "6 7 #9");
    rlab_args_free(a);
    CHECK_EQ_INT(rlab_host_parse(h, "sql", &a, &err), RLAB_OK);
    CHECK_EQ_INT(rlab_args_finish(a, &err), RLAB_EINVAL);
    CHECK_STR(err.msg, "sql: missing argument 'query'");
    rlab_args_free(a);
    /* help: the rest shown as such, examples last */
    char *help = rlab_host_help_cmd(h, "sql", &err);
    CHECK_STR_CONTAINS(help, "usage: sql query... [rows=<int>] [timeout=<float>]\n");
    CHECK_STR_CONTAINS(help, "(required; the rest of the line)\n");
    CHECK_STR_CONTAINS(help, "\nexamples:\n  sql SELECT name, value FROM metrics");
    rlab_free(help);
    rlab_host_free(h);
}

/* Every core command's help has a usage line and examples. */
static void t_help_examples(void)
{
    rlab_host *h = good_host();
    rlab_err err = {0};
    for (int i = 0; i < rlab_host_cmd_count(h); i++) {
        const rlab_cmd_ref *c = rlab_host_cmd_at(h, i);
        if (strcmp(c->plugin, "core") != 0)
            continue;
        char *text = rlab_host_help_cmd(h, c->full, &err);
        CHECK_MSG(text && !strncmp(text, "usage: ", 7), "help %s: no usage line", c->full);
        CHECK_MSG(text && strstr(text, "\nexamples:\n  "), "help %s: no examples", c->full);
        rlab_free(text);
    }
    rlab_host_free(h);
}

static int table_col(const rlab_table *t, const char *name)
{
    for (int c = 0; t && c < t->ncols; c++)
        if (!strcmp(t->cols[c], name))
            return c;
    return -1;
}

static const rlab_table *result_table(const rlab_result *r, const char *name)
{
    for (int i = 0; r && i < r->ntables; i++)
        if (!strcmp(r->tables[i]->name, name))
            return r->tables[i];
    return NULL;
}

static void t_records(void)
{
    rlab_host *h = good_host();
    rlab_err err = {0};
    char path[512], file[600], buf[4096];
    const char *dir = rlab_test_tmpdir();
    snprintf(path, sizeof path, "%s/records.db", dir);
    CHECK_EQ_INT(rlab_host_set_store(h, path, &err), RLAB_OK);
    rlab_result_free(run(h, "runs", RLAB_OK, NULL)); /* no runs yet: fine */
    rlab_result_free(run(h, "tgood.count n=3", RLAB_OK, NULL));
    rlab_result_free(run(h, "tgood.count n=2", RLAB_OK, NULL));
    /* runs: newest first, one column per metric */
    rlab_result *r = run(h, "runs", RLAB_OK, NULL);
    const rlab_table *t = result_table(r, "runs");
    CHECK(t && t->nrows == 2 && t->ncols == 7);
    if (t && t->nrows == 2 && t->ncols == 7) {
        CHECK_STR(t->cols[6], "train.loss");
        CHECK_EQ_INT(t->cells[0].i, 2);
        CHECK_NEAR(t->cells[6].f, 0.5, 1e-6);
    }
    rlab_result_free(r);
    r = run(h, "runs sort=loss order=asc cols=train.*", RLAB_OK, NULL);
    t = result_table(r, "runs");
    CHECK(t && t->ncols == 2 && t->nrows == 2 && table_col(t, "train.loss") == 1);
    if (t && t->ncols == 2 && t->nrows == 2)
        CHECK_EQ_INT(t->cells[0].i, 1); /* loss 1/3 < 1/2 */
    const rlab_cell *c = rlab_result_scalar(r, "sort");
    CHECK(c && c->type == RLAB_CELL_TEXT && !strcmp(c->s, "train.loss"));
    rlab_result_free(r);
    rlab_result_free(run(h, "runs sort=nope", RLAB_EINVAL,
                         "runs: no column 'nope' to sort by (run, status, model, command, "
                         "dataset, secs or a metric)"));
    rlab_result_free(run(h, "runs cols=zzz", RLAB_EINVAL, NULL));
    /* show */
    r = run(h, "show #1", RLAB_OK, NULL);
    CHECK(r && r->nlines >= 2);
    if (r && r->nlines >= 2)
        CHECK_STR(r->lines[0], "run #1  tgood.count  done  (tgood 1.2.3)");
    t = result_table(r, "metrics");
    CHECK(t && t->nrows == 1 && table_col(t, "train") == 1);
    if (t && t->nrows == 1)
        CHECK_NEAR(t->cells[1].f, 1.0 / 3.0, 1e-6);
    rlab_result_free(r);
    rlab_result_free(run(h, "show 99", RLAB_ENOTFOUND, "show: no run #99"));
    rlab_result_free(
        run(h, "show x", RLAB_EINVAL, "show: 'x' is not a run id (a number such as 7 or #7)"));
    /* compare */
    r = run(h, "compare 1, #2", RLAB_OK, NULL);
    t = result_table(r, "compare");
    CHECK(t && t->ncols == 3 && t->nrows == 7);
    if (t && t->ncols == 3 && t->nrows == 7) {
        CHECK_STR(t->cols[2], "#2");
        CHECK_STR(t->cells[6 * 3].s, "train.loss");
        CHECK_NEAR(t->cells[6 * 3 + 2].f, 0.5, 1e-6);
    }
    rlab_result_free(r);
    rlab_result_free(
        run(h, "compare 1", RLAB_EINVAL, "compare: name two runs or more (compare 6 7)"));
    rlab_result_free(run(h, "compare 1 42", RLAB_ENOTFOUND, "compare: no run #42"));
    /* export run= (JSON by the file name, CSV otherwise) */
    snprintf(file, sizeof file, "export run=1 file=%s/r1.json", dir);
    rlab_result_free(run(h, file, RLAB_OK, NULL));
    snprintf(file, sizeof file, "%s/r1.json", dir);
    FILE *f = fopen(file, "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    buf[n] = '\0';
    if (f)
        fclose(f);
    CHECK_STR_CONTAINS(buf, "{\"run\": {\"id\": 1, \"plugin\": \"tgood\"");
    CHECK_STR_CONTAINS(buf, "\"name\": \"loss\"");
    snprintf(file, sizeof file, "export 2 csv %s/r2.txt", dir); /* the positional form */
    rlab_result_free(run(h, file, RLAB_OK, NULL));
    snprintf(file, sizeof file, "%s/r2.txt", dir);
    f = fopen(file, "r");
    n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    buf[n] = '\0';
    if (f)
        fclose(f);
    CHECK_STR_CONTAINS(buf, "run,step,split,name,protocol,value\n2,1,train,loss,,1\n");
    rlab_result_free(run(h, "export file=x.csv", RLAB_EINVAL,
                         "export: nothing to export: give run=N (a run's record and metrics), "
                         "model=NAME (every user's top-k) or cmd=\"LINE\" (a command's result "
                         "table)"));
    /* sql: typed rows, limits, the guard */
    r = run(h, "sql SELECT count(*) AS n, 'a b' AS t FROM runs", RLAB_OK, NULL);
    t = result_table(r, "sql");
    CHECK(t && t->nrows == 1 && t->ncols == 2);
    if (t && t->nrows == 1 && t->ncols == 2) {
        CHECK_EQ_INT(t->cells[0].type, RLAB_CELL_INT);
        CHECK_EQ_INT(t->cells[0].i, 2);
        CHECK_STR(t->cells[1].s, "a b");
    }
    rlab_result_free(r);
    r = run(h, "sql rows=1 SELECT id FROM runs", RLAB_OK, NULL);
    t = result_table(r, "sql");
    CHECK(t && t->nrows == 1);
    CHECK(r && r->nlines == 1 && strstr(r->lines[0], "the first 1 rows"));
    rlab_result_free(r);
    rlab_result_free(run(h, "sql DELETE FROM runs", RLAB_EINVAL, NULL));
    static const char runaway[] =
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c";
    char line[300];
    snprintf(line, sizeof line, "sql timeout=0.2 %s", runaway);
    double t0 = rlab_now();
    rlab_result_free(run(h, line, RLAB_EDB,
                         "sql: stopped after 0.2 s, its time limit: raise it with "
                         "timeout=SECONDS (0 = none)"));
    CHECK_MSG(rlab_now() - t0 < 3.0, "the time limit took %.2f s", rlab_now() - t0);
    rlab_host_free(h);
}

/* sql runs on the side worker: it answers while a job occupies the job worker, and a
 * runaway query is cancelled promptly. */
static void t_records_side(void)
{
    rlab_host *h = good_host();
    rlab_err err = {0};
    char path[512], line[300];
    snprintf(path, sizeof path, "%s/side.db", rlab_test_tmpdir());
    CHECK_EQ_INT(rlab_host_set_store(h, path, &err), RLAB_OK);
    evlog_reset();
    rlab_host_set_event_fn(h, on_event, NULL);
    int loop = 0, q = 0;
    CHECK_EQ_INT(rlab_host_submit(h, "tgood.loop", &loop, &err), RLAB_OK);
    CHECK(evlog_wait(RLAB_EV_PROGRESS, loop, 0) >= 0);
    CHECK_EQ_INT(rlab_host_submit(h, "sql SELECT 41 + 1 AS x", &q, &err), RLAB_OK);
    rlab_result *res = NULL;
    CHECK_EQ_INT(rlab_host_wait(h, q, &res, &err), RLAB_OK);
    CHECK(res && res->ntables == 1 && res->tables[0]->nrows == 1 &&
          res->tables[0]->cells[0].i == 42);
    rlab_result_free(res);
    rlab_job_info info;
    CHECK_EQ_INT(rlab_host_job_info(h, loop, &info), RLAB_OK);
    CHECK_EQ_INT(info.state, RLAB_JOB_RUNNING); /* the job did not have to end first */
    snprintf(
        line, sizeof line, "sql timeout=0 %s",
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c");
    CHECK_EQ_INT(rlab_host_submit(h, line, &q, &err), RLAB_OK);
    CHECK(evlog_wait(RLAB_EV_STARTED, q, 0) >= 0);
    double t0 = rlab_now();
    CHECK_EQ_INT(rlab_host_cancel(h, q), RLAB_OK);
    CHECK_EQ_INT(rlab_host_wait(h, q, NULL, &err), RLAB_ECANCELED);
    CHECK_MSG(rlab_now() - t0 < 1.0, "cancelling the query took %.2f s", rlab_now() - t0);
    CHECK_STR(err.msg, "sql: cancelled");
    CHECK_EQ_INT(rlab_host_cancel(h, loop), RLAB_OK);
    CHECK_EQ_INT(rlab_host_wait(h, loop, NULL, &err), RLAB_ECANCELED);
    rlab_host_free(h);
}

/* A job's QUEUED event comes before its STARTED and DONE, however quick the job (a listener
 * that saw DONE first would list the finished job as queued forever). */
static void t_job_event_order(void)
{
    rlab_host *h = good_host();
    rlab_err err = {0};
    evlog_reset();
    rlab_host_set_event_fn(h, on_event, NULL);
    int ids[20];
    atomic_store(&slow_queued, 1); /* a listener slower than the job */
    for (int i = 0; i < 20; i++)
        CHECK_EQ_INT(rlab_host_submit(h, "tgood.echo x", &ids[i], &err), RLAB_OK);
    atomic_store(&slow_queued, 0);
    for (int i = 0; i < 20; i++) {
        CHECK_EQ_INT(rlab_host_wait(h, ids[i], NULL, &err), RLAB_OK);
        int q = evlog_wait(RLAB_EV_QUEUED, ids[i], 0), st = evlog_wait(RLAB_EV_STARTED, ids[i], 0);
        int d = evlog_wait(RLAB_EV_DONE, ids[i], 0);
        CHECK_MSG(q >= 0 && q < st && st < d, "job %d: QUEUED at %d, STARTED at %d, DONE at %d",
                  ids[i], q, st, d);
    }
    rlab_host_free(h);
}

/* load: a dataset (recorded in the store), or a model when the file is a checkpoint, with
 * model=true, or as `load model PATH`. */
static void t_records_load(void)
{
    rlab_host *h = good_host();
    rlab_err err = {0};
    const char *dir = rlab_test_tmpdir();
    char path[512], file[600], line[800], buf[64];
    snprintf(path, sizeof path, "%s/load.db", dir);
    CHECK_EQ_INT(rlab_host_set_store(h, path, &err), RLAB_OK);
    snprintf(file, sizeof file, "%s/tiny.txt", dir);
    FILE *f = fopen(file, "w");
    CHECK(f != NULL);
    if (f) {
        fputs("1 10\n1 11\n2 10\n2 12\n3 11\n", f);
        fclose(f);
    }
    snprintf(line, sizeof line, "load %s name=tiny", file);
    rlab_result *r = run(h, line, RLAB_OK, NULL);
    CHECK(r && r->nlines == 1 &&
          !strcmp(r->lines[0], "dataset 'tiny' loaded (sasrec): 3 users, 3 items, 5 interactions"));
    CHECK_NEAR(rlab_test_scalar(r, "users"), 3, 0);
    rlab_result_free(r);
    rlab_dataset *ds = rlab_host_dataset_get(h, "tiny");
    CHECK(ds != NULL);
    rlab_host_dataset_release(h, ds);
    query1(h, "SELECT name || '|' || n_users FROM datasets WHERE name = 'tiny'", buf, sizeof buf);
    CHECK_STR(buf, "tiny|3");
    snprintf(line, sizeof line, "load %s model=true format=sasrec", file);
    rlab_result_free(run(h, line, RLAB_EINVAL, NULL));
    /* a checkpoint: sniffed, or said */
    rlab_result_free(run(h, "tgood.train name=m1 items=12 bias=0.25", RLAB_OK, NULL));
    snprintf(file, sizeof file, "%s/m1.ckpt", dir);
    snprintf(line, sizeof line, "save model=m1 file=%s", file);
    rlab_result_free(run(h, line, RLAB_OK, NULL));
    snprintf(line, sizeof line, "load %s name=m2", file);
    r = run(h, line, RLAB_OK, NULL);
    CHECK(r && r->nlines == 1 && strstr(r->lines[0], "model 'm2' loaded from"));
    rlab_result_free(r);
    snprintf(line, sizeof line, "load model %s name=m3", file);
    rlab_result_free(run(h, line, RLAB_OK, NULL));
    snprintf(line, sizeof line, "load file=%s name=m4", file);
    rlab_result_free(run(h, line, RLAB_OK, NULL));
    CHECK_EQ_INT(rlab_models_count(rlab_host_models(h)), 4);
    rlab_result_free(
        run(h, "load", RLAB_EINVAL, "load: missing argument 'path' (load PATH, load model PATH)"));
    rlab_host_free(h);
}

/* A dataset a plugin derives (tgood.derive) is recorded with its maker's recipe and rebuilt
 * by the maker in a reopened workspace; without the plugin it is listed as unavailable with
 * the reason; an unknown maker is refused. */
static void t_data_maker(void)
{
    char db[600];
    snprintf(db, sizeof db, "%s/maker.db", rlab_test_tmpdir());
    remove(db);
    rlab_err err = {0};
    rlab_host *h = good_host();
    CHECK_EQ_INT(rlab_host_set_store(h, db, &err), RLAB_OK);
    rlab_world_config cfg;
    rlab_world_config_default(&cfg);
    cfg.seed = 5;
    cfg.n_users = 30;
    cfg.n_items = 20;
    cfg.n_inter = 200;
    CHECK_MSG(rlab_host_make_world(h, rlab_host_db(h), &cfg, "w", NULL, &err) == RLAB_OK, "%s",
              err.msg);
    rlab_result_free(rlab_test_run(h, "tgood.derive parent=w k=6 name=d", RLAB_OK, NULL));
    rlab_result_free(
        rlab_test_run(h, "tgood.derive parent=w k=6 name=e maker=nope", RLAB_EINVAL,
                      "tgood.derive: plugin 'tgood' declares no dataset maker 'nope'"));
    rlab_dataset_brief b;
    CHECK_EQ_INT(rlab_host_dataset_brief(h, "e", &b), RLAB_ENOTFOUND);
    CHECK_EQ_INT(rlab_host_dataset_brief(h, "d", &b), RLAB_OK);
    const int64_t n_inter = b.n_inter;
    CHECK_EQ_INT((int)b.n_items, 6);
    CHECK(n_inter > 0);
    rlab_host_free(h);
    /* reopened with the plugin: listed, then rebuilt by the maker on first use */
    h = good_host();
    CHECK_EQ_INT(rlab_host_set_store(h, db, &err), RLAB_OK);
    CHECK_EQ_INT(rlab_host_dataset_brief(h, "d", &b), RLAB_OK);
    CHECK_EQ_INT((int)b.state, (int)RLAB_DS_RECORDED);
    rlab_dataset *d = rlab_host_dataset_get(h, "d");
    CHECK(d != NULL);
    if (d) {
        CHECK_EQ_INT((int)d->items.n, 6);
        CHECK_EQ_INT((int)d->inter.n, (int)n_inter);
        rlab_host_dataset_release(h, d);
    }
    CHECK_EQ_INT(rlab_host_dataset_brief(h, "d", &b), RLAB_OK);
    CHECK_EQ_INT((int)b.state, (int)RLAB_DS_LOADED);
    rlab_host_free(h);
    /* reopened without the plugin: the reason, not a crash */
    h = rlab_test_host_v(PDIR, NULL);
    CHECK_EQ_INT(rlab_host_set_store(h, db, &err), RLAB_OK);
    CHECK_EQ_INT(rlab_host_dataset_ensure(h, "d", &err), RLAB_ESTATE);
    CHECK_STR(err.msg, "dataset 'd' is made by tgood.derive, and no loaded plugin provides it "
                       "(load plugin 'tgood')");
    rlab_host_free(h);
}

static const rlab_test tests[] = {
    {"host.load.good", t_load_good},
    {"host.load.refusals", t_load_refusals},
    {"host.load.all", t_load_all},
    {"host.load.search_path", t_load_search_path},
    {"host.load.static", t_load_static},
    {"host.load.unload", t_load_unload},
    {"host.args.parse", t_args_parse},
    {"host.args.errors", t_args_errors},
    {"host.args.lua", t_args_lua},
    {"host.args.int32", t_args_int32},
    {"host.help.text", t_help},
    {"host.help.complete", t_complete},
    {"host.run.sync", t_run_sync},
    {"host.run.datasets", t_run_datasets},
    {"host.job.progress", t_job_progress},
    {"host.job.cancel", t_job_cancel},
    {"host.job.fifo", t_job_fifo},
    {"host.job.cancel_queued", t_job_cancel_queued},
    {"host.model.registry", t_model_registry},
    {"host.model.save_load", t_model_save_load},
    {"host.call.1", t_call},
    {"host.model.long_name", t_model_long_names},
    {"host.run.long_dataset_name", t_dataset_long_names},
    {"host.store.runs", t_store_runs},
    {"host.store.restore", t_store_restore},
    {"host.topk.row", t_topk_row},
    {"host.args.rest", t_args_rest},
    {"host.help.examples", t_help_examples},
    {"host.records.cmds", t_records},
    {"host.records.side", t_records_side},
    {"host.records.load", t_records_load},
    {"host.job.event_order", t_job_event_order},
    {"host.data.reopen", t_data_reopen},
    {"host.data.maker", t_data_maker},
    {NULL, NULL},
};

int main(int argc, char **argv) { return rlab_test_main(argc, argv, tests); }
