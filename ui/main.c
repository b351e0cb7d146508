/*
 * reclab: the program. Parses the command line (ui/batch.c) and runs the requested mode:
 * the ncurses shell on a terminal, batch mode otherwise (scripts, -e code, -c lines, the
 * demo workflow). Only this file decides the process exit status.
 */
#include "app.h"
#include "batch.h"
#include "demo.h"
#include "base/mpi.h"
#include "tensor/tensor.h"

#if defined(__has_include)
#if __has_include("shell.h")
#include "shell.h"
#define RLAB_HAVE_SHELL 1
#endif
#endif

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* libgomp reads OMP_WAIT_POLICY once, when it is loaded, before main runs. Its default lets
 * idle OpenMP threads spin, and on a 2-core machine they steal the cores OpenBLAS needs for the
 * next sgemm (measured: about 2x slower training). OpenBLAS's own idle workers likewise spin
 * on sched_yield for 2^28 cycles after each threaded call (OPENBLAS_THREAD_TIMEOUT, read at
 * load), competing with the OpenMP loops between sgemm calls: with 2^4 they sleep at once
 * (measured on Beauty, 2 cores: SASRec epoch 14.2 -> 13.1-13.7 s, MQSA-TED 23.7 -> 21.8 s).
 * OpenBLAS also picks its kernels at load: on a CPU model newer than the library it falls back
 * to generic SSE3 ones (measured: sgemm 4.6x slower per CPU-second on this AVX-512 machine),
 * so OPENBLAS_CORETYPE names the kernels the CPU can run (rlab_t_blas_core_env).
 * So when the user has not chosen, re-execute once with these set. Any failure just continues
 * with the defaults. */
static void ensure_passive_threads(char **argv)
{
    if (getenv("RECLAB_NO_REEXEC"))
        return;
    int again = 0;
    if (!getenv("OMP_WAIT_POLICY"))
        again |= setenv("OMP_WAIT_POLICY", "passive", 1) == 0;
    if (!getenv("OPENBLAS_THREAD_TIMEOUT"))
        again |= setenv("OPENBLAS_THREAD_TIMEOUT", "4", 1) == 0;
    again |= rlab_t_blas_core_env();
    if (again)
        execv("/proc/self/exe", argv);
}

static int run(int argc, char **argv);

/* mpirun ends every rank with SIGTERM when one dies: the waiting collective fails, so the
 * running command fails and its run is marked failed in rank 0's store (core/base/mpi.h); a
 * second SIGTERM ends the process at once. */
static void on_sigterm(int sig)
{
    (void)sig;
    rlab_mpi_note_end();
    signal(SIGTERM, SIG_DFL);
}

/* Under mpirun / srun every rank runs the same program (core/base/mpi.h). MPI starts after the
 * re-exec above and before any thread; a failure on any rank ends the whole job (MPI_Abort)
 * so no rank is left waiting in a collective. */
int main(int argc, char **argv)
{
    ensure_passive_threads(argv);
    rlab_err err = {0};
    if (rlab_mpi_init(&argc, &argv, &err)) {
        fprintf(stderr, "reclab: %s\n", err.msg);
        return 1;
    }
    if (rlab_mpi_world_size() > 1)
        signal(SIGTERM, on_sigterm);
    int rc = run(argc, argv);
    if (rc && rlab_mpi_world_size() > 1)
        fprintf(stderr, "reclab: rank %d of %d failed (exit status %d): ending the MPI job\n",
                rlab_mpi_world_rank(), rlab_mpi_world_size(), rc);
    rlab_mpi_finalize(rc != 0);
    return rc;
}

static int run(int argc, char **argv)
{
    rlab_cli cli;
    int rc = rlab_cli_parse(argc, argv, &cli);
    if (rc) {
        rlab_cli_usage(stderr);
        return rc;
    }
    if (cli.help) {
        rlab_cli_usage(stdout);
        return 0;
    }
    if (cli.version) {
        printf("reclab %s (git %s)\n", rlab_version(), rlab_build_git());
        printf("mpi: %s\n", rlab_mpi_built() ? rlab_mpi_library()
                                             : "no MPI support (built with RECLAB_MPI=OFF)");
        return 0;
    }
    /* --sandbox is for batch runs: the shell's own commands read and write files freely */
    if (rlab_mpi_world_rank() > 0) /* rank 0 alone holds the store and prints (app.h) */
        cli.app.no_store = 1, cli.app.quiet = 1;
    int interactive = rlab_mpi_world_size() == 1 && cli.n_actions == 0 && !cli.demo &&
                      !cli.app.sandbox && isatty(0) && isatty(1);
#ifndef RLAB_HAVE_SHELL
    interactive = 0;
#endif
    if (interactive)
        cli.app.quiet = 1; /* the shell shows progress in its own views */
    else
        rlab_batch_signals();
#ifdef RLAB_HAVE_SHELL
    if (interactive && !cli.app.no_demo) {
        /* first frame first: the shell builds the demo world on its task thread */
        cli.app.no_demo = 1;
        rlab_shell_set_demo(1);
    }
#endif

    rlab_err err = {0};
    rlab_app *app = rlab_app_open(&cli.app, &err);
    if (!app) {
        fprintf(stderr, "reclab: %s\n", err.msg);
        return 1;
    }
#ifdef RLAB_HAVE_SHELL
    if (interactive) {
        rc = rlab_shell_run(app);
        rlab_app_close(app);
        return rc;
    }
#endif
    rlab_batch_set_app(app);
    if (cli.n_actions > 0) {
        rc = rlab_batch_run(app, &cli);
    } else {
        rc = rlab_demo_run(app, &err) == RLAB_OK ? 0 : 1;
        if (rlab_batch_interrupted())
            rc = 130;
        if (rc)
            fprintf(stderr, "reclab: %s\n",
                    *rlab_app_last_error(app) ? rlab_app_last_error(app) : err.msg);
    }
    rlab_batch_set_app(NULL);
    rlab_app_close(app);
    return rc;
}
