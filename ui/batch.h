/* ui/batch.h: batch mode (reclab run x.lua, reclab -e ..., no terminal needed). */
#ifndef RLAB_UI_BATCH_H
#define RLAB_UI_BATCH_H

#include "app.h"

#include <stdio.h>

/* Command-line options of the program. */
typedef struct rlab_cli {
    rlab_app_opts app;
    int n_actions;
    struct {
        char kind;        /* 'e' Lua code, 'c' shell line, 'r' script */
        const char *text; /* code, line or script path */
    } actions[64];
    int script_argc; /* arguments after the script */
    char **script_argv;
    int demo; /* `reclab demo` */
    int help, version;
} rlab_cli;

/* Parse argv into cli; returns 0, or 2 with a message on stderr for a usage error. */
int rlab_cli_parse(int argc, char **argv, rlab_cli *cli);
void rlab_cli_usage(FILE *f);

/* Install the Ctrl-C handling of batch mode: a SIGINT handler (self-pipe) and a thread that
 * turns Ctrl-C into rlab_app_interrupt of the app given with rlab_batch_set_app (the Lua
 * chunk and every job, a -c command line included, are cancelled; their runs end
 * `interrupted`); a second Ctrl-C exits with status 130 at once. rlab_batch_set_app(NULL)
 * before closing the app. */
void rlab_batch_signals(void);
void rlab_batch_set_app(rlab_app *app);
/* 1 once a Ctrl-C was delivered to the app of rlab_batch_set_app (reset by it). */
int rlab_batch_interrupted(void);

/* Run the actions of cli in order with an open app; output to stdout, errors to stderr
 * ("reclab: <message>" with the Lua traceback). Returns the process exit status. */
int rlab_batch_run(rlab_app *app, const rlab_cli *cli);

#endif
