/*
 * tests/fuzz/fuzz_plugin.h: the plugin "fz" that the host-facing fuzz targets (fuzz_parse,
 * fuzz_lua) load statically. Its commands declare one argument of every type and flag, so
 * the parser and the argument checker see every path; their run functions read every value
 * back and abort when one is outside what was declared (the checker's promise).
 */
#ifndef RLAB_FUZZ_PLUGIN_H
#define RLAB_FUZZ_PLUGIN_H

#include "host/host.h"

/* A host with the core commands and the plugin "fz" (no plugin folders, no environment, no
 * store). NULL on failure. */
rlab_host *fz_host_new(rlab_err *err);
/* Abort unless every argument of a finished args of an fz command holds a value its
 * declaration allows (running: also the checks made when a command starts). No-op for other
 * commands. */
void fz_check_args(const rlab_args *args, int running);

#endif
