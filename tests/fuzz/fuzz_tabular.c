/*
 * libFuzzer target for the tabular (CTR / multi-task) loader: the first input byte picks a
 * spec (a preset or a mapping with hashed, multi-valued, time and group columns), the rest
 * is the file content, loaded with rlab_tabular_load_buffer. A clean error is the expected
 * outcome for garbage; a successful load is checked for its invariants.
 */
#include "data/tabular.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const rlab_tabular *t)
{
    if (t->n < 1 || t->nlabels < 1)
        abort();
    for (int64_t i = 0; i < t->n * t->nlabels; i++)
        if (!(t->labels[i] == 0.0f || t->labels[i] == 1.0f))
            abort();
    for (int f = 0; f < t->nfields; f++) {
        const rlab_tab_field *fl = &t->fields[f];
        int64_t m = fl->off ? fl->off[t->n] : t->n;
        for (int64_t i = 0; i < m; i++)
            if (fl->ids[i] < 0 || fl->ids[i] >= fl->card)
                abort();
    }
    if (t->group)
        for (int64_t i = 0; i < t->n; i++)
            if (t->group[i] < 0 || t->group[i] >= t->groups.n)
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const char *const presets[] = {"criteo", "criteo_sample", "avazu", "census", "tiny_mtl"};
    rlab_tab_spec sp;
    rlab_err err = {0};
    unsigned k = data[0] % 8;
    if (k < 5) {
        if (rlab_tab_preset_spec(presets[k], &sp, &err))
            abort();
    } else {
        rlab_tab_spec_init(&sp);
        sp.header = k != 7;
        sp.sep = k == 6 ? "\t" : ",";
        sp.min_fields = k == 7 ? 1 : 0;
        if (rlab_tab_spec_map(&sp,
                              "#0:label, y:label:=yes, g:group, t:time, m:multi:sep=;, "
                              "s:seq:hash=13, n*:num, h*:cat:hash=5, *:cat",
                              &err))
            abort();
    }
    rlab_tabular *t = NULL;
    if (rlab_tabular_load_buffer(data + 1, size - 1, &sp, "fuzz", &t, &err) == RLAB_OK) {
        check(t);
        rlab_tabular_free(t);
    } else if (t) {
        abort();
    }
    return 0;
}
