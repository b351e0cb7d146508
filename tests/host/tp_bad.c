/*
 * tests/host/tp_bad.c: plugins the loader must refuse, one per check of host/plugin.h. Built
 * several times with TP_VARIANT set (see CMakeLists.txt):
 *   1 badabi   built against ABI 0 (RLAB_ABI_VERSION_BUILD redefined before the header)
 *   2 noentry  exports rlab_plugin_other instead of rlab_plugin_tnoentry
 *   3 dup      two commands named "x"
 *   4 nofield  no version string
 *   5 sizes    wrong numeric-size fingerprint
 *   6 newer    descriptor larger than the host's
 *   7 name     declares name "other"
 *   8 initfail entry point returns an error
 *   9 kind     provides model kind "tlin", which tgood already provides
 */
#if TP_VARIANT == 1
#undef RLAB_ABI_VERSION_BUILD
#define RLAB_ABI_VERSION_BUILD 0
#endif

#include "host/plugin.h"
#include "model/fit.h"

static int x_run(rlab_ctx *ctx, const rlab_args *args)
{
    (void)ctx;
    (void)args;
    return RLAB_OK;
}

static const rlab_cmd one_cmd[] = {{.name = "x", .help = "x", .run = x_run}, {0}};
static const rlab_cmd dup_cmds[] = {
    {.name = "x", .help = "x", .run = x_run}, {.name = "x", .help = "x again", .run = x_run}, {0}};

static rlab_model *k_restore(rlab_host *host, const rlab_ckpt *ck, const void *cfg, rlab_err *err)
{
    (void)host;
    (void)ck;
    (void)cfg;
    rlab_errf(err, RLAB_EFORMAT, "never");
    return NULL;
}
static int k_begin(const rlab_fit *fit, void **state, rlab_err *err)
{
    (void)fit;
    (void)state;
    return rlab_errf(err, RLAB_EINVAL, "never");
}
static int k_step(void *state, int64_t i, double *loss, double *weight, double *parts,
                  rlab_err *err)
{
    (void)state;
    (void)i;
    (void)loss;
    (void)weight;
    (void)parts;
    (void)err;
    return RLAB_OK;
}
static rlab_model *k_model(void *state)
{
    (void)state;
    return NULL;
}
static const rlab_fit_ops k_fit = {.begin = k_begin, .step = k_step, .model = k_model};
static const rlab_model_kind dup_kind[] = {{.name = "tlin", .fit = &k_fit, .restore = k_restore},
                                           {0}};

#if TP_VARIANT == 1
RLAB_PLUGIN(tbadabi)
#elif TP_VARIANT == 2
RLAB_PLUGIN(other)
#elif TP_VARIANT == 3
RLAB_PLUGIN(tdup)
#elif TP_VARIANT == 4
RLAB_PLUGIN(tnofield)
#elif TP_VARIANT == 5
RLAB_PLUGIN(tsizes)
#elif TP_VARIANT == 6
RLAB_PLUGIN(tnewer)
#elif TP_VARIANT == 7
RLAB_PLUGIN(tname)
#elif TP_VARIANT == 8
RLAB_PLUGIN(tinitfail)
#elif TP_VARIANT == 9
RLAB_PLUGIN(tkind)
#endif
{
    RLAB_PLUGIN_INIT(out);
    out->version = "0.0.1";
    out->summary = "a plugin the host must refuse";
    out->commands = one_cmd;
#if TP_VARIANT == 1
    out->name = "tbadabi";
#elif TP_VARIANT == 2
    out->name = "tnoentry";
#elif TP_VARIANT == 3
    out->name = "tdup";
    out->commands = dup_cmds;
#elif TP_VARIANT == 4
    out->name = "tnofield";
    out->version = NULL;
#elif TP_VARIANT == 5
    out->name = "tsizes";
    out->abi_sizes ^= 1u;
#elif TP_VARIANT == 6
    out->name = "tnewer";
    out->struct_size += 16;
#elif TP_VARIANT == 7
    out->name = "other";
#elif TP_VARIANT == 8
    out->name = "tinitfail";
    return rlab_errf(err, RLAB_ESTATE, "no GPU found");
#elif TP_VARIANT == 9
    out->name = "tkind";
    out->models = dup_kind;
#endif
    (void)dup_cmds;
    (void)dup_kind;
    return RLAB_OK;
}
