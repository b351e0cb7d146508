/*
 * ui/batch.c: batch mode. Command-line parsing, Ctrl-C as an interrupt (a signal thread
 * calls rlab_app_interrupt, which sets lua.c's count hook and cancels the running
 * commands), and running -e / -c / run actions in order. Neither ncurses nor readline is
 * touched here.
 */
#include "batch.h"
#include "base/mpi.h"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void rlab_cli_usage(FILE *f)
{
    fprintf(f, "usage: reclab [options] [run SCRIPT.lua [ARGS...]]\n"
               "\n"
               "  (no arguments)      open the shell on a terminal; without a terminal run the\n"
               "                      demo workflow in batch and print its results\n"
               "  run SCRIPT [ARGS]   run a Lua script (ARGS in the global `arg` and in `...`)\n"
               "  SCRIPT.lua [ARGS]   the same\n"
               "  demo                run the demo workflow in batch\n"
               "  -e CODE             run Lua code (repeatable; runs in order, before the script)\n"
               "  -c LINE             run one shell command line, e.g. -c 'help train bprmf'\n"
               "  --db FILE           session store (default ./reclab.db or $RECLAB_DB)\n"
               "  --no-demo           do not load the demo world as dataset \"demo\"\n"
               "  -q, --quiet         no progress lines on stderr\n"
               "  --sandbox           for scripts from others: no os.execute, io.popen,\n"
               "                      package.loadlib or debug library, no precompiled\n"
               "                      chunks, and every file a script or a command reads or\n"
               "                      writes must be inside the workspace, the folder of the\n"
               "                      --db file (batch only; lua/README, \"The sandbox\")\n"
               "  --version           print the version (git commit, MPI) and exit\n"
               "  -h, --help          this text\n"
               "\n"
               "Exit status: 0 on success, 1 on an error (message on stderr), 2 on a usage error,\n"
               "130 when interrupted with Ctrl-C.\n");
}

static int add_action(rlab_cli *cli, char kind, const char *text)
{
    if (cli->n_actions >= (int)(sizeof cli->actions / sizeof cli->actions[0])) {
        fprintf(stderr, "reclab: too many -e/-c options\n");
        return 2;
    }
    cli->actions[cli->n_actions].kind = kind;
    cli->actions[cli->n_actions].text = text;
    cli->n_actions++;
    return 0;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

int rlab_cli_parse(int argc, char **argv, rlab_cli *cli)
{
    memset(cli, 0, sizeof *cli);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            cli->help = 1;
        } else if (!strcmp(a, "--version") || !strcmp(a, "-v")) {
            cli->version = 1;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            cli->app.quiet = 1;
        } else if (!strcmp(a, "--sandbox")) {
            cli->app.sandbox = 1;
        } else if (!strcmp(a, "--no-demo")) {
            cli->app.no_demo = 1;
        } else if (!strcmp(a, "--db") || !strcmp(a, "-e") || !strcmp(a, "-c")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "reclab: option '%s' needs an argument\n", a);
                return 2;
            }
            const char *v = argv[++i];
            if (!strcmp(a, "--db"))
                cli->app.db_path = v;
            else if (add_action(cli, a[1], v))
                return 2;
        } else if (!strncmp(a, "--db=", 5)) {
            cli->app.db_path = a + 5;
        } else if (!strcmp(a, "run") || (a[0] != '-' && ends_with(a, ".lua"))) {
            if (!strcmp(a, "run")) {
                if (i + 1 >= argc) {
                    fprintf(stderr, "reclab: 'run' needs a script\n");
                    return 2;
                }
                a = argv[++i];
            }
            if (add_action(cli, 'r', a))
                return 2;
            cli->script_argc = argc - i - 1;
            cli->script_argv = argv + i + 1;
            break; /* the rest belongs to the script */
        } else if (!strcmp(a, "demo")) {
            cli->demo = 1;
        } else if (!strcmp(a, "--")) {
            continue;
        } else {
            fprintf(stderr, "reclab: unknown argument '%s'\n", a);
            return 2;
        }
    }
    return 0;
}

/* ---- Ctrl-C ------------------------------------------------------------------------- */
/*
 * The handler only writes a byte to a pipe (self-pipe: it may run on any thread, including
 * OpenBLAS's pool started before main, so it does nothing that is not async-signal-safe);
 * a watcher thread reads it and calls rlab_app_interrupt, which sets lua.c's hook and
 * cancels every job of the host: a Lua chunk, a -c command line (a sync run: no Lua runs),
 * jobs a script queued. The cancelled command returns RLAB_ECANCELED, its run is recorded
 * `interrupted`, and batch mode stops with status 130. Until the program ends the watcher
 * repeats the cancel every 100 ms, so a command that had not started yet when Ctrl-C came
 * (between parsing and running) is cancelled too. A second Ctrl-C exits at once (for a
 * command that does not poll its cancel flag); its run is then marked `interrupted` by the
 * next open of the store.
 */

static pthread_mutex_t sig_mu = PTHREAD_MUTEX_INITIALIZER; /* sig_app while in use */
static rlab_app *sig_app;
static atomic_int sig_count;       /* Ctrl-C presses since rlab_batch_set_app */
static atomic_int sig_interrupted; /* an interrupt was delivered to sig_app */
static int sig_pipe[2] = {-1, -1};

static void on_sigint(int sig)
{
    (void)sig;
    if (atomic_fetch_add(&sig_count, 1) > 0) {
        static const char msg[] = "reclab: interrupted\n";
        ssize_t w = write(2, msg, sizeof msg - 1);
        (void)w;
        _exit(130);
    }
    char c = 1;
    ssize_t w = write(sig_pipe[1], &c, 1);
    (void)w;
}

static void *sig_main(void *arg)
{
    (void)arg;
    for (;;) {
        struct pollfd p = {.fd = sig_pipe[0], .events = POLLIN};
        int again = atomic_load(&sig_interrupted);
        int n = poll(&p, 1, again ? 100 : -1);
        if (n < 0)
            continue;
        if (n > 0) {
            char c;
            ssize_t r = read(sig_pipe[0], &c, 1);
            if (r == 0)
                break;
            if (r < 0)
                continue;
        }
        pthread_mutex_lock(&sig_mu);
        if (sig_app && n > 0) {
            atomic_store(&sig_interrupted, 1);
            rlab_app_interrupt(sig_app);
        } else if (sig_app && again) {
            rlab_host_cancel_all(rlab_app_host(sig_app));
        }
        pthread_mutex_unlock(&sig_mu);
    }
    return NULL;
}

void rlab_batch_signals(void)
{
    if (pipe(sig_pipe) != 0)
        return;
    pthread_t t;
    if (pthread_create(&t, NULL, sig_main, NULL) != 0)
        return;
    pthread_detach(t);
    /* installed even when the shell started us with SIGINT ignored (background job), as
     * lua.c does */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, NULL);
}

void rlab_batch_set_app(rlab_app *app)
{
    /* under the lock: once this returns with NULL the watcher no longer uses the old app */
    pthread_mutex_lock(&sig_mu);
    sig_app = app;
    atomic_store(&sig_count, 0);
    atomic_store(&sig_interrupted, 0);
    pthread_mutex_unlock(&sig_mu);
}

int rlab_batch_interrupted(void) { return atomic_load(&sig_interrupted); }

/* ---- running ------------------------------------------------------------------------ */

/* Output under MPI: every rank keeps the lines it prints (rank 0 prints its own at once too).
 * When the actions end, the ranks' kept lines go to rank 0, which prints, once and prefixed
 * "[rank r] ", only the lines rank r printed that rank 0 did not (a script's common output,
 * printed by every rank, then reads as under one process). */
static char *rank_out;
static size_t rank_len, rank_cap;

static void put_stdout(const char *line, void *ud)
{
    (void)ud;
    if (rlab_mpi_world_rank() == 0) {
        fputs(line, stdout);
        fputc('\n', stdout);
        if (rlab_mpi_world_size() == 1)
            return;
    }
    size_t n = strlen(line) + 1;
    if (rank_len + n > rank_cap) {
        size_t cap = (rank_cap ? rank_cap * 2 : 4096) + n;
        char *p = rlab_realloc(rank_out, cap);
        if (!p)
            return;
        rank_out = p, rank_cap = cap;
    }
    memcpy(rank_out + rank_len, line, n - 1);
    rank_out[rank_len + n - 1] = '\n';
    rank_len += n;
}

/* The lines of buf[0..len) as (start, length) pairs; returns their count (-1: no memory). */
static int64_t split_lines(const char *buf, size_t len, size_t **at, size_t **ln)
{
    int64_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += buf[i] == '\n';
    *at = rlab_malloc(((size_t)n + 1) * sizeof **at);
    *ln = rlab_malloc(((size_t)n + 1) * sizeof **ln);
    if (!*at || !*ln)
        return -1;
    int64_t k = 0;
    for (size_t i = 0, s = 0; i < len; i++)
        if (buf[i] == '\n') {
            (*at)[k] = s, (*ln)[k++] = i - s;
            s = i + 1;
        }
    return k;
}

/* Rank 0: rank r's lines that are not rank 0's own, prefixed. A line of r matches the next
 * equal line of rank 0 at or after the last match (in order: the common output). */
static void print_own_lines(int r, const char *b, size_t blen, const char *z, const size_t *zat,
                            const size_t *zln, int64_t zn)
{
    size_t *at = NULL, *ln = NULL;
    int64_t n = split_lines(b, blen, &at, &ln), j = 0;
    for (int64_t k = 0; k < n; k++) {
        int64_t m = j;
        while (m < zn && !(zln[m] == ln[k] && memcmp(z + zat[m], b + at[k], ln[k]) == 0))
            m++;
        if (m < zn) {
            j = m + 1; /* rank 0 printed it: not repeated */
            continue;
        }
        printf("[rank %d] %.*s\n", r, (int)ln[k], b + at[k]);
    }
    if (n < 0) /* no memory to compare: all of it */
        printf("[rank %d]\n%.*s", r, (int)blen, b);
    rlab_free(at);
    rlab_free(ln);
}

/* Collective: the end of the script (rlab_mpi_end_barrier: a rank that does not arrive within
 * the deadline ends the job, named by rank 0), then the ranks' own lines to rank 0. */
static int gather_output(rlab_err *err)
{
    int P = rlab_mpi_world_size();
    if (P == 1)
        return RLAB_OK;
    int64_t *cnt = rlab_calloc(2 * (size_t)P, sizeof *cnt);
    if (!cnt)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    void *all = NULL;
    int rc = rlab_mpi_end_barrier(0, err);
    /* rank 0 sends nothing: it has its own lines */
    int64_t mine = rlab_mpi_world_rank() == 0 ? 0 : (int64_t)rank_len;
    if (rc == RLAB_OK)
        rc = rlab_mpi_allgatherv(rank_out, mine, &all, cnt, cnt + P, err);
    if (rc == RLAB_OK && rlab_mpi_world_rank() == 0) {
        size_t *zat = NULL, *zln = NULL;
        int64_t zn = split_lines(rank_out ? rank_out : "", rank_len, &zat, &zln);
        for (int r = 1; r < P; r++)
            if (cnt[r] > 0)
                print_own_lines(r, (const char *)all + cnt[P + r], (size_t)cnt[r],
                                rank_out ? rank_out : "", zat, zln, zn < 0 ? 0 : zn);
        rlab_free(zat);
        rlab_free(zln);
    }
    fflush(stdout);
    rlab_free(all);
    rlab_free(cnt);
    rlab_free(rank_out);
    rank_out = NULL, rank_len = rank_cap = 0;
    return rc;
}

int rlab_batch_run(rlab_app *app, const rlab_cli *cli)
{
    for (int i = 0; i < cli->n_actions; i++) {
        rlab_err err = {0};
        int rc;
        const char *text = cli->actions[i].text;
        switch (cli->actions[i].kind) {
        case 'e':
            rc = rlab_app_lua_exec(app, text, "=(command line)", put_stdout, NULL, &err);
            break;
        case 'c':
            rc = rlab_app_exec_line(app, text, put_stdout, NULL, &err);
            break;
        default:
            rc = rlab_app_lua_file(app, text, cli->script_argc, cli->script_argv, put_stdout, NULL,
                                   &err);
            break;
        }
        fflush(stdout);
        if (rc) {
            const char *full = rlab_app_last_error(app);
            if (rlab_mpi_world_rank() > 0) { /* its output would never reach rank 0 */
                if (rank_len)
                    fprintf(stderr, "%.*s", (int)rank_len, rank_out);
                fprintf(stderr, "reclab: rank %d: ", rlab_mpi_world_rank());
            } else {
                fprintf(stderr, "reclab: ");
            }
            fprintf(stderr, "%s\n", cli->actions[i].kind != 'c' && *full ? full : err.msg);
            return rc == RLAB_ECANCELED || rlab_batch_interrupted() ? 130 : 1;
        }
        if (rlab_batch_interrupted()) { /* Ctrl-C came as the action finished anyway */
            fprintf(stderr, "reclab: interrupted\n");
            return 130;
        }
    }
    rlab_err err = {0};
    if (gather_output(&err)) {
        if (rlab_mpi_world_rank() == 0)
            fprintf(stderr, "reclab: %s\n", err.msg);
        else
            fprintf(stderr, "reclab: rank %d: %s\n", rlab_mpi_world_rank(), err.msg);
        return 1;
    }
    return 0;
}
