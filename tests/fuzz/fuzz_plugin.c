/*
 * tests/fuzz/fuzz_plugin.c: the plugin "fz" (see fuzz_plugin.h). fz.all declares every
 * argument type and flag; fz.pos takes positional arguments; fz.fail fails; fz.echo
 * returns a table built from its arguments.
 */
#include "fuzz_plugin.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *const fz_choices[] = {"a", "bb", "ccc", NULL};

static const rlab_arg fz_all_args[] = {
    {.name = "req", .type = RLAB_ARG_INT, .flags = RLAB_ARGF_REQUIRED, .help = "required"},
    {.name = "n",
     .type = RLAB_ARG_INT,
     .def = "3",
     .min = 1,
     .max = 1000,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
     .help = "bounded int"},
    {.name = "lo", .type = RLAB_ARG_INT, .min = -5, .flags = RLAB_ARGF_MIN, .help = ">= -5"},
    {.name = "big", .type = RLAB_ARG_INT, .flags = RLAB_ARGF_INT64, .help = "64-bit"},
    {.name = "huge",
     .type = RLAB_ARG_INT,
     .min = -1e30,
     .max = 1e30,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
     .help = "bounds clamped to int32"},
    {.name = "f",
     .type = RLAB_ARG_FLOAT,
     .def = "0.5",
     .min = 0,
     .max = 1,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
     .help = "probability"},
    {.name = "g", .type = RLAB_ARG_FLOAT, .help = "any number"},
    {.name = "s", .type = RLAB_ARG_STRING, .def = "x", .help = "text"},
    {.name = "b", .type = RLAB_ARG_BOOL, .def = "false", .help = "flag"},
    {.name = "c", .type = RLAB_ARG_CHOICE, .def = "bb", .choices = fz_choices, .help = "choice"},
    {.name = "d", .type = RLAB_ARG_DATASET, .help = "dataset"},
    {.name = "m", .type = RLAB_ARG_MODEL, .help = "model"},
    {.name = "p", .type = RLAB_ARG_PATH, .help = "path"},
    {.name = "name", .type = RLAB_ARG_MODEL, .flags = RLAB_ARGF_NEW, .help = "new name"},
    {0}};

static const rlab_arg fz_pos_args[] = {
    {.name = "first", .type = RLAB_ARG_STRING, .help = "text"},
    {.name = "second", .type = RLAB_ARG_INT, .def = "7", .help = "int"},
    {.name = "third", .type = RLAB_ARG_FLOAT, .def = "1.5", .help = "float"},
    {0}};

/* Abort when an INT value is outside [lo, hi] (the declared bounds, clamped to int32 unless
 * INT64), a FLOAT outside its bounds or not finite where bounded, a CHOICE not one of its
 * choices; when running, a NEW name over 63 bytes (checked when the command starts). */
void fz_check_args(const rlab_args *args, int running)
{
    const rlab_cmd_ref *ref = rlab_args_cmd(args);
    if (!ref || strcmp(ref->plugin, "fz") != 0 || !ref->cmd->args)
        return;
    for (const rlab_arg *a = ref->cmd->args; a->name; a++) {
        if (!rlab_args_given(args, a->name) && !a->def)
            continue;
        switch (a->type) {
        case RLAB_ARG_INT: {
            int64_t v = rlab_args_int(args, a->name);
            double lo = (a->flags & RLAB_ARGF_INT64) ? -9.3e18 : (double)INT32_MIN;
            double hi = (a->flags & RLAB_ARGF_INT64) ? 9.3e18 : (double)INT32_MAX;
            if ((a->flags & RLAB_ARGF_MIN) && a->min > lo)
                lo = a->min;
            if ((a->flags & RLAB_ARGF_MAX) && a->max < hi)
                hi = a->max;
            if ((double)v < lo || (double)v > hi)
                abort();
            break;
        }
        case RLAB_ARG_FLOAT: {
            double v = rlab_args_float(args, a->name);
            if ((a->flags & RLAB_ARGF_MIN) && !(v >= a->min))
                abort();
            if ((a->flags & RLAB_ARGF_MAX) && !(v <= a->max))
                abort();
            break;
        }
        case RLAB_ARG_CHOICE: {
            int k = rlab_args_choice(args, a->name);
            const char *s = rlab_args_str(args, a->name);
            if (k < 0 || k > 2 || !s || strcmp(s, a->choices[k]) != 0)
                abort();
            break;
        }
        case RLAB_ARG_BOOL: {
            int b = rlab_args_bool(args, a->name);
            if (b != 0 && b != 1)
                abort();
            break;
        }
        default: {
            const char *s = rlab_args_str(args, a->name);
            if (running && (a->flags & RLAB_ARGF_NEW) && s && strlen(s) >= RLAB_NAME_CAP)
                abort();
            break;
        }
        }
    }
}

static int fz_all_run(rlab_ctx *ctx, const rlab_args *args)
{
    fz_check_args(args, 1);
    rlab_ctx_result_int(ctx, "n", rlab_args_int(args, "n"));
    rlab_ctx_result_str(ctx, "s", rlab_args_str(args, "s"));
    return RLAB_OK;
}

static int fz_pos_run(rlab_ctx *ctx, const rlab_args *args)
{
    rlab_ctx_printf(ctx, "%s %lld %g",
                    rlab_args_str(args, "first") ? rlab_args_str(args, "first") : "-",
                    (long long)rlab_args_int(args, "second"), rlab_args_float(args, "third"));
    return RLAB_OK;
}

static int fz_fail_run(rlab_ctx *ctx, const rlab_args *args)
{
    return rlab_ctx_errorf(ctx, RLAB_EINVAL, "failed on purpose with '%s'",
                           rlab_args_str(args, "first") ? rlab_args_str(args, "first") : "");
}

static const rlab_cmd fz_cmds[] = {{.name = "all",
                                    .args = fz_all_args,
                                    .help = "Every argument type.",
                                    .flags = RLAB_CMD_READONLY,
                                    .run = fz_all_run},
                                   {.name = "pos",
                                    .args = fz_pos_args,
                                    .help = "Positional arguments.",
                                    .flags = RLAB_CMD_READONLY,
                                    .run = fz_pos_run},
                                   {.name = "fail",
                                    .args = fz_pos_args,
                                    .help = "Always fails.",
                                    .flags = RLAB_CMD_READONLY,
                                    .run = fz_fail_run},
                                   {0}};

RLAB_PLUGIN(fz)
{
    RLAB_PLUGIN_INIT(out);
    out->name = "fz";
    out->version = "1.0.0";
    out->summary = "fuzzing commands";
    out->commands = fz_cmds;
    return RLAB_OK;
}

rlab_host *fz_host_new(rlab_err *err)
{
    static const char *const no_dirs[] = {NULL};
    rlab_host_opts o = {.plugin_dirs = no_dirs, .no_env = 1};
    rlab_host *h = rlab_host_new(&o, err);
    if (!h)
        return NULL;
    if (rlab_host_load_static(h, "fz", rlab_plugin_fz, err) != RLAB_OK) {
        rlab_host_free(h);
        return NULL;
    }
    return h;
}
