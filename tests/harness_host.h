/*
 * tests/harness_host.h: helpers shared by the tests that drive the host the way the shell
 * and Lua do (tests/host, tests/baselines, tests/simulator...): a host over chosen plugin
 * folders, running a shell-form line with an expected status and message, reading result
 * scalars. Link rlab_harness_host (tests/CMakeLists.txt).
 *
 *     rlab_host *h = rlab_test_host(PDIR, "reclab_baselines.so");   // NULL dir: default search
 *     rlab_result *r = rlab_test_run(h, "train pop data=tiny", RLAB_OK, NULL);
 *     double v = rlab_test_scalar(r, "test.ndcg@10");                 // NAN (and a failure)
 *     rlab_result_free(r);                                            //   when absent
 *     rlab_host_free(h);
 */
#ifndef RLAB_TEST_HARNESS_HOST_H
#define RLAB_TEST_HARNESS_HOST_H

#include "harness.h"
#include "host/host.h"

/* A host searching only plugin_dir (NULL: the default search path, environment ignored),
 * with the plugin files named (a NULL-terminated list of file names inside plugin_dir)
 * loaded; a failure to create or load is a test failure (the host may then lack them). */
rlab_host *rlab_test_host_v(const char *plugin_dir, const char *const *load);
#define rlab_test_host(dir, ...) rlab_test_host_v((dir), (const char *const[]){__VA_ARGS__, NULL})

/* Run a shell-form line synchronously; a status other than want, or (when want_msg is not
 * NULL) another error message, is a test failure. Returns the result (caller frees). */
rlab_result *rlab_test_run(rlab_host *h, const char *line, int want, const char *want_msg);

/* A result scalar as a number (ints widened); NAN and a failure when absent. */
double rlab_test_scalar(const rlab_result *res, const char *name);

#endif
