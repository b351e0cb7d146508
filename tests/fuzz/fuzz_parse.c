/*
 * fuzz_parse: the command-line parser and the argument checker (core/host/args.c) on
 * arbitrary input, against a host with the core commands and the plugin "fz"
 * (fuzz_plugin.c), whose commands declare every argument type and flag.
 *
 * Input: the first byte picks the mode, the rest is its data.
 *   even: a shell line -> rlab_host_parse, rlab_args_finish, rlab_args_to_json (must be a JSON
 *         object), completion and help of the line; fz commands are run (their run function
 *         aborts on a value outside its declaration).
 *   odd:  the Lua binding's path: a command picked by a byte, then typed setters
 *         (rlab_args_set / _set_next / _set_int / _set_float / _set_bool) with keys and values
 *         taken from the input, then finish and the same checks.
 * Any crash, sanitizer report, leak or abort() is a bug; an error return is the expected
 * outcome for garbage, and it must come with a message.
 */
#include "fuzz_plugin.h"

#include <json-c/json.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static rlab_host *host;

/* A byte reader over the input. */
typedef struct src {
    const uint8_t *p;
    size_t n;
} src;

static unsigned take_byte(src *s)
{
    if (!s->n)
        return 0;
    s->n--;
    return *s->p++;
}

static uint64_t take_u64(src *s)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | take_byte(s);
    return v;
}

/* A NUL-terminated string of up to 255 bytes (length byte first) into buf[256]. */
static const char *take_str(src *s, char *buf)
{
    size_t k = take_byte(s);
    if (k > s->n)
        k = s->n;
    memcpy(buf, s->p, k);
    buf[k] = '\0';
    s->p += k;
    s->n -= k;
    return buf;
}

/* After a successful parse or set: finish, then the checks every caller relies on. */
static void check_and_run(rlab_args *args)
{
    rlab_err err = {0};
    if (rlab_args_finish(args, &err) != RLAB_OK) {
        if (!err.msg[0])
            abort();
        rlab_args_free(args);
        return;
    }
    fz_check_args(args, 0);
    char *js = rlab_args_to_json(args);
    if (js) {
        json_object *o = json_tokener_parse(js);
        if (!o || !json_object_is_type(o, json_type_object))
            abort(); /* run records must hold valid JSON */
        json_object_put(o);
        rlab_free(js);
    }
    const rlab_cmd_ref *ref = rlab_args_cmd(args);
    if (strcmp(ref->plugin, "fz") == 0) {
        rlab_result *res = NULL;
        rlab_err_clear(&err);
        int rc = rlab_host_run_args(host, args, &res, &err);
        if (rc != RLAB_OK && !err.msg[0])
            abort();
        rlab_result_free(res);
        return;
    }
    rlab_args_free(args);
}

static void fuzz_line(const uint8_t *data, size_t size)
{
    char *line = malloc(size + 1);
    if (!line)
        return;
    memcpy(line, data, size);
    line[size] = '\0';
    rlab_err err = {0};
    rlab_args *args = NULL;
    if (rlab_host_parse(host, line, &args, &err) == RLAB_OK) {
        if (!args)
            abort();
        check_and_run(args);
    } else if (args || !err.msg[0]) {
        abort(); /* a failed parse hands back nothing and says why */
    }
    char **cands = rlab_host_complete(host, line);
    rlab_strv_free(cands);
    /* help of the first word */
    char *sp = strpbrk(line, " \t");
    if (sp)
        *sp = '\0';
    rlab_err_clear(&err);
    char *help = rlab_host_help_cmd(host, line, &err);
    rlab_free(help);
    free(line);
}

static void fuzz_setters(src *s)
{
    int ncmd = rlab_host_cmd_count(host);
    const rlab_cmd_ref *ref = rlab_host_cmd_at(host, (int)(take_byte(s) % (unsigned)ncmd));
    rlab_err err = {0};
    rlab_args *args = rlab_args_new(host, ref->full, &err);
    if (!args)
        return;
    int nargs = 0;
    while (ref->cmd->args && ref->cmd->args[nargs].name)
        nargs++;
    char kbuf[256], vbuf[256];
    while (s->n) {
        unsigned op = take_byte(s);
        /* the key: one of the declared names, or text from the input */
        const char *key = NULL;
        unsigned k = take_byte(s);
        if (nargs && k < 224)
            key = ref->cmd->args[k % (unsigned)nargs].name;
        else
            key = take_str(s, kbuf);
        int rc;
        rlab_err_clear(&err);
        switch (op % 6) {
        case 0:
            rc = rlab_args_set(args, key, take_str(s, vbuf), &err);
            break;
        case 1:
            rc = rlab_args_set_next(args, take_str(s, vbuf), &err);
            break;
        case 2:
            rc = rlab_args_set_int(args, key, (int64_t)take_u64(s), &err);
            break;
        case 3: {
            uint64_t bits = take_u64(s);
            double d;
            memcpy(&d, &bits, sizeof d);
            rc = rlab_args_set_float(args, key, d, &err);
            break;
        }
        case 4:
            rc = rlab_args_set_bool(args, key, (int)take_byte(s) - 1, &err);
            break;
        default:
            rc = rlab_args_type_error(args, key, take_str(s, vbuf), &err);
            if (rc == RLAB_OK)
                abort();
            break;
        }
        if (rc != RLAB_OK && !err.msg[0])
            abort();
    }
    check_and_run(args);
}

static void quiet(int level, const char *msg, void *ud)
{
    (void)level;
    (void)msg;
    (void)ud;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!host) {
        rlab_err err = {0};
        rlab_log_set_sink(quiet, NULL);
        host = fz_host_new(&err);
        if (!host)
            abort();
    }
    if (size < 1)
        return 0;
    if ((data[0] & 1) == 0) {
        fuzz_line(data + 1, size - 1);
    } else {
        src s = {data + 1, size - 1};
        fuzz_setters(&s);
    }
    return 0;
}
