/*
 * tests/harness_host.c: the host helpers of harness_host.h.
 */
#include "harness_host.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

rlab_host *rlab_test_host_v(const char *plugin_dir, const char *const *load)
{
    const char *dirs[2] = {plugin_dir, NULL};
    rlab_host_opts o = {.plugin_dirs = plugin_dir ? dirs : NULL, .no_env = 1};
    rlab_err err = {0};
    rlab_host *h = rlab_host_new(&o, &err);
    CHECK_MSG(h != NULL, "host_new: %s", err.msg);
    for (int i = 0; h && load && load[i]; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", plugin_dir ? plugin_dir : ".", load[i]);
        int rc = rlab_host_load_file(h, path, &err);
        CHECK_MSG(rc == RLAB_OK, "load %s: %s", load[i], err.msg);
    }
    return h;
}

rlab_result *rlab_test_run(rlab_host *h, const char *line, int want, const char *want_msg)
{
    rlab_err err = {0};
    rlab_result *res = NULL;
    int rc = rlab_host_run_sync(h, line, &res, &err);
    CHECK_MSG(rc == want, "'%s': status %d (%s), expected %d", line, rc, err.msg, want);
    if (want_msg)
        CHECK_STR(err.msg, want_msg);
    return res;
}

double rlab_test_scalar(const rlab_result *res, const char *name)
{
    const rlab_cell *c = res ? rlab_result_scalar(res, name) : NULL;
    CHECK_MSG(c != NULL, "no result scalar '%s'", name);
    if (!c)
        return (double)NAN;
    return c->type == RLAB_CELL_INT ? (double)c->i : c->f;
}
