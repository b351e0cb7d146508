/*
 * core/data/load_dialogue: the dialogue container shared by the ReDial and INSPIRED loaders
 * (growth helpers, free) and the dialogue dispatcher.
 */
#include "data/loaders.h"
#include "data/tokenizer.h"

#include <stdio.h>
#include <string.h>

int32_t rlab_dlg_item(rlab_dialogues *d, const char *s, size_t n, const char *title)
{
    /* grow the title slots first, so they always cover every vocabulary entry */
    if (d->items.n >= d->titles_cap) {
        int32_t nc = d->titles_cap ? d->titles_cap * 2 : 64;
        char **t = rlab_realloc(d->item_titles, (size_t)nc * sizeof *t);
        if (!t)
            return -1;
        memset(t + d->titles_cap, 0, (size_t)(nc - d->titles_cap) * sizeof *t);
        d->item_titles = t;
        d->titles_cap = nc;
    }
    int32_t k = rlab_vocab_add(&d->items, s, n);
    if (k < 0)
        return -1;
    if (title && !d->item_titles[k]) {
        d->item_titles[k] = rlab_strdup(title);
        if (!d->item_titles[k])
            return -1;
    }
    return k;
}

rlab_conv *rlab_dlg_conv(rlab_dialogues *d, const char *id, size_t n)
{
    if (d->n == d->cap) {
        size_t nc = d->cap ? d->cap * 2 : 16;
        rlab_conv *c = rlab_realloc(d->convs, nc * sizeof *c);
        if (!c)
            return NULL;
        d->convs = c;
        d->cap = nc;
    }
    char *copy = rlab_strndup(id, n);
    if (!copy)
        return NULL;
    rlab_conv *c = &d->convs[d->n++];
    memset(c, 0, sizeof *c);
    c->id = copy;
    return c;
}

rlab_turn *rlab_dlg_turn(rlab_conv *c)
{
    if (c->nturns == c->cap) {
        int nc = c->cap ? c->cap * 2 : 8;
        rlab_turn *t = rlab_realloc(c->turns, (size_t)nc * sizeof *t);
        if (!t)
            return NULL;
        c->turns = t;
        c->cap = nc;
    }
    rlab_turn *t = &c->turns[c->nturns++];
    memset(t, 0, sizeof *t);
    return t;
}

int rlab_dlg_turn_item(rlab_turn *t, int32_t item)
{
    for (int k = 0; k < t->nitems; k++)
        if (t->items[k] == item)
            return RLAB_OK; /* a movie mentioned twice in one message counts once */
    int32_t *p = rlab_realloc(t->items, (size_t)(t->nitems + 1) * sizeof *p);
    if (!p)
        return RLAB_ENOMEM;
    t->items = p;
    t->items[t->nitems++] = item;
    return RLAB_OK;
}

void rlab_dialogues_free(rlab_dialogues *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n; i++) {
        rlab_conv *c = &d->convs[i];
        for (int k = 0; k < c->nturns; k++) {
            rlab_free(c->turns[k].speaker);
            rlab_free(c->turns[k].text);
            rlab_free(c->turns[k].items);
        }
        rlab_free(c->turns);
        rlab_free(c->id);
    }
    rlab_free(d->convs);
    if (d->item_titles)
        for (int32_t i = 0; i < d->items.n; i++)
            rlab_free(d->item_titles[i]);
    rlab_free(d->item_titles);
    rlab_vocab_clear(&d->items);
    rlab_free(d);
}

static int run(rlab_reader *r, const char *format, rlab_dialogues **out, rlab_err *err)
{
    int redial = strcmp(format, "redial") == 0;
    if (!redial && strcmp(format, "inspired") != 0)
        return rlab_errf(err, RLAB_EINVAL,
                         "unknown dialogue format '%s', expected redial or "
                         "inspired",
                         format);
    rlab_dialogues *d = rlab_calloc(1, sizeof *d);
    if (!d)
        return rlab_errf(err, RLAB_ENOMEM, "dialogues: out of memory");
    rlab_vocab_init(&d->items);
    snprintf(d->format, sizeof d->format, "%s", format);
    int rc = redial ? rlab_ld_redial(r, d, err) : rlab_ld_inspired(r, d, err);
    if (rc == RLAB_OK && d->n == 0)
        rc = rlab_errf_at(err, RLAB_EFORMAT, r->name, 0, "empty file, expected dialogues");
    if (rc) {
        rlab_dialogues_free(d);
        return rc;
    }
    *out = d;
    return RLAB_OK;
}

int rlab_dialogues_load(const char *path, const char *format, rlab_dialogues **out, rlab_err *err)
{
    *out = NULL;
    if (!format) {
        size_t l = strlen(path);
        if ((l > 6 && strcmp(path + l - 6, ".jsonl") == 0) ||
            (l > 5 && strcmp(path + l - 5, ".json") == 0))
            format = "redial";
        else if (l > 4 && strcmp(path + l - 4, ".tsv") == 0)
            format = "inspired";
        else
            return rlab_errf_at(err, RLAB_EINVAL, path, 0,
                                "cannot tell the dialogue format, expected .jsonl or .tsv");
    }
    rlab_reader r;
    int rc = rlab_reader_open(&r, path, RLAB_READ_UTF8, err);
    if (rc == RLAB_OK)
        rc = run(&r, format, out, err);
    rlab_reader_close(&r);
    return rc;
}

int rlab_load_redial(const char *path, rlab_dialogues **out, rlab_err *err)
{
    return rlab_dialogues_load(path, "redial", out, err);
}

int rlab_load_inspired(const char *path, rlab_dialogues **out, rlab_err *err)
{
    return rlab_dialogues_load(path, "inspired", out, err);
}

int rlab_dialogues_load_buffer(const void *buf, size_t n, const char *format, const char *label,
                               rlab_dialogues **out, rlab_err *err)
{
    *out = NULL;
    if (!format)
        return rlab_errf(err, RLAB_EINVAL, "dialogues: format required for a buffer");
    rlab_reader r;
    rlab_reader_open_mem(&r, buf, n, label, RLAB_READ_UTF8);
    int rc = run(&r, format, out, err);
    rlab_reader_close(&r);
    return rc;
}
