/*
 * core/host/sandbox.c: the host's half of `reclab --sandbox` (scripts from others). With a
 * workspace folder set, every RLAB_ARG_PATH argument of every command (shell lines, Lua
 * calls, jobs, nested rlab_ctx_call) must name something inside it (rlab_path_inside),
 * checked when the command starts, before anything else runs; the Lua binding applies the
 * same rule to its own file functions and to the Lua libraries (lua/lsandbox.c).
 */
#define _XOPEN_SOURCE 700 /* realpath */
#include "host/host_internal.h"

#include <stdlib.h>
#include <string.h>

int rlab_host_set_sandbox(rlab_host *h, const char *folder, rlab_err *err)
{
    char *root = NULL;
    if (folder) {
        char *r = realpath(folder, NULL);
        if (!r)
            return rlab_errf(err, RLAB_EIO, "sandbox: workspace folder '%s' not found", folder);
        root = rlab_strdup(r);
        free(r);
        if (!root)
            return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    }
    rlab_free(h->sandbox);
    h->sandbox = root;
    return RLAB_OK;
}

const char *rlab_host_sandbox(const rlab_host *h) { return h ? h->sandbox : NULL; }

int rlab__sandbox_args(const rlab_host *h, const rlab_args *args, rlab_err *err)
{
    if (!h->sandbox)
        return RLAB_OK;
    for (int i = 0; i < rlab__args_count(args); i++) {
        const rlab_arg *a = rlab__args_decl(args, i);
        if (a->type != RLAB_ARG_PATH || !rlab__args_is_set(args, i))
            continue;
        const char *v = rlab_args_str(args, a->name);
        rlab_err why = {0};
        if (v && *v && rlab_path_inside(h->sandbox, v, &why) != RLAB_OK)
            return rlab_errf(err, RLAB_EINVAL, "bad argument '%s' (sandbox: %s)", a->name, why.msg);
    }
    return RLAB_OK;
}
