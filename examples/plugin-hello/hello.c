/*
 * examples/plugin-hello/hello.c: a reclab plugin built outside the source tree, against an
 * installed reclab (`pkg-config --cflags --libs reclab`, see the Makefile and README).
 *
 * One command, hello.greet who=<string> times=<int 1..100>: it prints one line per greeting
 * and returns them as the result table "greetings" (columns n, greeting) plus the scalar
 * "count". The shell form and the Lua form come from the same declaration:
 *
 *     reclab -c 'hello.greet who=you times=2'
 *     reclab -e 'local r = reclab.hello.greet{who = "you", times = 2}
 *                print(r.count, r.tables.greetings[2].greeting)'
 *
 * It includes only installed headers: "host/plugin.h" is the whole plugin API (it brings
 * base/base.h, data/table.h, model/model.h, store/store.h and tensor/tensor.h along).
 */
#include "host/plugin.h"

#include <stdio.h>

static int greet_run(rlab_ctx *ctx, const rlab_args *args)
{
    const char *who = rlab_args_str(args, "who");
    int64_t times = rlab_args_int(args, "times"); /* checked by the host: 1..100 */
    static const char *const cols[] = {"n", "greeting"};
    rlab_table *t = rlab_ctx_result_table(ctx, "greetings", 2, cols);
    if (!t)
        return RLAB_ENOMEM; /* the context has already recorded the error */
    for (int64_t i = 1; i <= times; i++) {
        if (rlab_ctx_cancelled(ctx))
            return RLAB_ECANCELED;
        char line[256];
        snprintf(line, sizeof line, "hello, %s (%lld/%lld)", who, (long long)i, (long long)times);
        rlab_ctx_printf(ctx, "%s", line);
        int rc = rlab_table_add_row(t, "ls", i, line); /* 'l': int64_t, 's': text (copied) */
        if (rc)
            return rlab_ctx_errorf(ctx, rc, "cannot add greeting %lld", (long long)i);
    }
    rlab_ctx_result_int(ctx, "count", times);
    return RLAB_OK;
}

static const rlab_arg greet_args[] = {
    {.name = "who", .type = RLAB_ARG_STRING, .def = "world", .help = "whom to greet"},
    {.name = "times",
     .type = RLAB_ARG_INT,
     .def = "1",
     .min = 1,
     .max = 100,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
     .help = "how many greetings"},
    {0}};

static const rlab_cmd hello_cmds[] = {
    {.name = "greet",
     .args = greet_args,
     .help = "Greet someone, once per line.\n"
             "Returns the greetings as the table \"greetings\" (n, greeting) and their count.",
     .flags = RLAB_CMD_READONLY, /* changes nothing in the session: no run record */
     .run = greet_run},
    {0}};

/* The one exported symbol: rlab_plugin_hello, for reclab_hello.so. */
RLAB_PLUGIN(hello)
{
    RLAB_PLUGIN_INIT(out);
    out->name = "hello";
    out->version = "1.0.0";
    out->summary = "An out-of-tree example: greets people";
    out->commands = hello_cmds;
    return RLAB_OK;
}
