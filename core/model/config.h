/*
 * core/model/config: typed configuration schemas. A model kind declares its hyperparameters
 * once, as a table of fields (name, C type, offset in its config struct, default, range,
 * choices, one line of help); everything else is derived from that table by the host:
 * the arguments of `train KIND`, their parsing and checking, `help train KIND`, completion,
 * the run's stored config (every value resolved), the checkpoint's metadata and the Lua
 * table form. Adding a hyperparameter is one struct member and one line in one table.
 *
 *     typedef struct bpr_cfg { int dim; float lr; int opt; } bpr_cfg;
 *     static const char *const opts[] = {"adamw", "sgd", NULL};
 *     static const rlab_field bpr_fields[] = {
 *         RLAB_FIELD_INT(bpr_cfg, dim, "64", 1, 4096, "embedding size"),
 *         RLAB_FIELD_FLOAT(bpr_cfg, lr, "0.005", 0, 10, "learning rate"),
 *         RLAB_FIELD_CHOICE(bpr_cfg, opt, "adamw", opts, "optimiser"),
 *         {0}};
 *     bpr_cfg c;
 *     rlab_config_defaults(bpr_fields, NULL, &c, &err);        // dim 64, lr 0.005, opt 0
 *     rlab_config_set(bpr_fields, &c, "dim", "128", &err);    // checked: "1..4096"
 *     char *json = rlab_config_to_json(bpr_fields, &c);       // {"dim":128,"lr":0.005,...}
 *
 * Values have one canonical text form (integers in decimal, floats in their shortest text
 * that reads back as the same float/double, booleans true/false, choices by name), used in
 * JSON, checkpoints and help, so a config read back from any of them is bit-identical.
 * Every function is thread-safe (the tables are static, configs are the caller's).
 */
#ifndef RLAB_MODEL_CONFIG_H
#define RLAB_MODEL_CONFIG_H

#include "base/base.h"

#include <stddef.h>
#include <stdint.h>

/* rlab_kv: a pair of borrowed strings (also used by tensor/checkpoint.h). */
#ifndef RLAB_KV_DEFINED
#define RLAB_KV_DEFINED
typedef struct rlab_kv {
    const char *key, *value;
} rlab_kv;
#endif

/* C type of a field. */
typedef enum rlab_ftype {
    RLAB_F_INT = 1, /* int (bounds default to the int range) */
    RLAB_F_I64,     /* int64_t (seeds) */
    RLAB_F_FLOAT,   /* float */
    RLAB_F_DOUBLE,  /* double */
    RLAB_F_BOOL,    /* int, 0 or 1 */
    RLAB_F_CHOICE,  /* int: index into .choices */
    RLAB_F_STR,     /* char[.size], NUL-terminated (longer values are refused) */
} rlab_ftype;

/* One field. Tables end with an entry whose name is NULL ({0}). min/max are inclusive bounds
 * of numeric fields when min < max (min == max == 0: the C type's whole range). */
typedef struct rlab_field {
    const char *name;
    rlab_ftype type;
    size_t offset; /* offsetof(config struct, member) */
    size_t size;   /* RLAB_F_STR: buffer size */
    const char *def;
    double min, max;
    const char *const *choices; /* RLAB_F_CHOICE: NULL-terminated */
    const char *help;           /* one line */
} rlab_field;

#define RLAB_FIELD_INT(T, m, def_, lo, hi, help_)                                                  \
    {                                                                                              \
        .name = #m, .type = RLAB_F_INT, .offset = offsetof(T, m), .def = def_, .min = lo,          \
        .max = hi, .help = help_                                                                   \
    }
#define RLAB_FIELD_I64(T, m, def_, lo, hi, help_)                                                  \
    {                                                                                              \
        .name = #m, .type = RLAB_F_I64, .offset = offsetof(T, m), .def = def_, .min = lo,          \
        .max = hi, .help = help_                                                                   \
    }
#define RLAB_FIELD_FLOAT(T, m, def_, lo, hi, help_)                                                \
    {                                                                                              \
        .name = #m, .type = RLAB_F_FLOAT, .offset = offsetof(T, m), .def = def_, .min = lo,        \
        .max = hi, .help = help_                                                                   \
    }
#define RLAB_FIELD_DOUBLE(T, m, def_, lo, hi, help_)                                               \
    {                                                                                              \
        .name = #m, .type = RLAB_F_DOUBLE, .offset = offsetof(T, m), .def = def_, .min = lo,       \
        .max = hi, .help = help_                                                                   \
    }
#define RLAB_FIELD_BOOL(T, m, def_, help_)                                                         \
    {                                                                                              \
        .name = #m, .type = RLAB_F_BOOL, .offset = offsetof(T, m), .def = def_, .help = help_      \
    }
#define RLAB_FIELD_CHOICE(T, m, def_, choices_, help_)                                             \
    {                                                                                              \
        .name = #m, .type = RLAB_F_CHOICE, .offset = offsetof(T, m), .def = def_,                  \
        .choices = choices_, .help = help_                                                         \
    }
#define RLAB_FIELD_STR(T, m, def_, help_)                                                          \
    {                                                                                              \
        .name = #m, .type = RLAB_F_STR, .offset = offsetof(T, m), .size = sizeof(((T *)0)->m),     \
        .def = def_, .help = help_                                                                 \
    }

/* Number of fields; the field called name or NULL. */
RLAB_API int rlab_config_count(const rlab_field *f);
RLAB_API const rlab_field *rlab_config_find(const rlab_field *f, const char *name);

/* Check a table (names unique and [A-Za-z0-9_]+, types set, defaults valid, choices present).
 * RLAB_EINVAL naming the field. The host checks every kind's table at plugin load. */
RLAB_API int rlab_config_check_table(const rlab_field *f, rlab_err *err);

/* The default of field fd after overrides (a NULL-key terminated list, may be NULL): the
 * override's value when one names the field, else fd->def. */
RLAB_API const char *rlab_config_default(const rlab_field *fd, const rlab_kv *overrides);

/* Fill every field of cfg with its default (after overrides). Bytes of cfg outside the
 * fields are left alone. RLAB_EINVAL when a default or an override does not parse (or an
 * override names no field). */
RLAB_API int rlab_config_defaults(const rlab_field *f, const rlab_kv *overrides, void *cfg,
                                  rlab_err *err);

/* Set field key of cfg from text, parsed and checked against type, range and choices.
 * Errors (cfg unchanged): RLAB_ENOTFOUND "unknown field 'x'", RLAB_EINVAL "bad value for
 * 'dim' (integer in [1, 4096] expected, got '0')". */
RLAB_API int rlab_config_set(const rlab_field *f, void *cfg, const char *key, const char *text,
                             rlab_err *err);
/* Same for one field already found. */
RLAB_API int rlab_config_set_field(const rlab_field *fd, void *cfg, const char *text,
                                   rlab_err *err);

/* RLAB_OK when text is a valid value of field fd (no config needed), else the set error. */
RLAB_API int rlab_config_check_value(const rlab_field *fd, const char *text, rlab_err *err);

/* The canonical text of field fd in cfg into buf ("64", "0.005", "true", "adamw"). */
RLAB_API void rlab_config_text(const rlab_field *fd, const void *cfg, char *buf, size_t size);

/* What a field accepts, for messages and help: "integer in [1, 4096]", "one of a|b". */
RLAB_API void rlab_config_expected(const rlab_field *fd, char *buf, size_t size);

/* The whole config as a JSON object of canonical values, in table order ({"dim":64,...}):
 * numbers as JSON numbers, booleans as true/false, choices and strings as strings. Caller
 * frees with rlab_free; NULL on ENOMEM. */
RLAB_API char *rlab_config_to_json(const rlab_field *f, const void *cfg);
/* Read a JSON object written by rlab_config_to_json into cfg (fields absent from the JSON keep
 * their value; unknown keys are an error when strict). RLAB_EFORMAT for bad JSON or a value
 * that does not fit. */
RLAB_API int rlab_config_from_json(const rlab_field *f, void *cfg, const char *json, int strict,
                                   rlab_err *err);

#endif /* RLAB_MODEL_CONFIG_H */
