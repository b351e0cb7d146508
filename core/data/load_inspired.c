/*
 * core/data/load_inspired: INSPIRED dialogues, a TSV with a header and one utterance per row;
 * consecutive rows with the same dialog_id form a conversation.
 */
#include "data/loaders.h"
#include "data/tokenizer.h"

#include <string.h>

static int find_col(const rlab_field *h, size_t nh, const char *name)
{
    size_t l = strlen(name);
    for (size_t k = 0; k < nh; k++)
        if (h[k].n == l && memcmp(h[k].p, name, l) == 0)
            return (int)k;
    return -1;
}

#define MAXF 64

int rlab_ld_inspired(rlab_reader *r, rlab_dialogues *d, rlab_err *err)
{
    const char *s;
    size_t n;
    int rc;
    while ((rc = rlab_reader_next(r, &s, &n, err)) == RLAB_OK && s && n == 0) {
    }
    if (rc)
        return rc;
    if (!s)
        return rlab_errf_at(err, RLAB_EFORMAT, r->name, 0,
                            "empty file, expected a header (dialog_id speaker text ...)");
    rlab_field f[MAXF + 1];
    size_t nh = rlab_split_fields(s, n, "\t", f, MAXF + 1);
    if (nh > MAXF)
        return rlab_errf_at(err, RLAB_EFORMAT, r->name, r->line,
                            "header has %zu fields, expected at most %d", nh, MAXF);
    int c_id = find_col(f, nh, "dialog_id"), c_sp = find_col(f, nh, "speaker");
    int c_text = find_col(f, nh, "text"), c_turn = find_col(f, nh, "turn_id");
    int c_mov = find_col(f, nh, "movies");
    if (c_id < 0 || c_sp < 0 || c_text < 0)
        return rlab_errf_at(err, RLAB_EFORMAT, r->name, r->line,
                            "header lacks %s, expected dialog_id, speaker and text columns",
                            c_id < 0   ? "dialog_id"
                            : c_sp < 0 ? "speaker"
                                       : "text");
    rlab_vocab seen; /* dialog ids already used: a dialogue must be contiguous */
    rlab_vocab_init(&seen);
    rlab_conv *c = NULL;
    while ((rc = rlab_reader_next(r, &s, &n, err)) == RLAB_OK && s) {
        if (n == 0)
            continue;
        size_t nf = rlab_split_fields(s, n, "\t", f, MAXF + 1);
        if (nf != nh) {
            rc = rlab_errf_at(err, RLAB_EFORMAT, r->name, r->line,
                              "expected %zu tab-separated fields (as in the header), got %zu", nh,
                              nf);
            break;
        }
        rlab_field id = f[c_id];
        if (id.n == 0) {
            rc = rlab_errf_at(err, RLAB_EFORMAT, r->name, r->line,
                              "empty dialog_id, expected an id");
            break;
        }
        if (!c || strlen(c->id) != id.n || memcmp(c->id, id.p, id.n) != 0) {
            if (rlab_vocab_find(&seen, id.p, id.n) >= 0) {
                char q[48];
                rlab_ld_quote(q, id);
                rc = rlab_errf_at(err, RLAB_EFORMAT, r->name, r->line,
                                  "dialog_id '%s' reappears after other dialogues, expected "
                                  "its rows to be consecutive",
                                  q);
                break;
            }
            if (rlab_vocab_add(&seen, id.p, id.n) < 0 || !(c = rlab_dlg_conv(d, id.p, id.n))) {
                rc = rlab_errf_at(err, RLAB_ENOMEM, r->name, r->line, "out of memory");
                break;
            }
        }
        rlab_field sp = f[c_sp];
        int role;
        if (sp.n == 6 && memcmp(sp.p, "SEEKER", 6) == 0)
            role = RLAB_ROLE_SEEKER;
        else if (sp.n == 11 && memcmp(sp.p, "RECOMMENDER", 11) == 0)
            role = RLAB_ROLE_RECOMMENDER;
        else {
            char q[48];
            rlab_ld_quote(q, sp);
            rc = rlab_errf_at(err, RLAB_EFORMAT, r->name, r->line,
                              "speaker '%s', expected RECOMMENDER or SEEKER", q);
            break;
        }
        int64_t turn = 0;
        if (c_turn >= 0 && f[c_turn].n && rlab_parse_i64(f[c_turn].p, f[c_turn].n, &turn)) {
            char q[48];
            rlab_ld_quote(q, f[c_turn]);
            rc = rlab_errf_at(err, RLAB_EFORMAT, r->name, r->line,
                              "turn_id '%s' is not a number, expected an integer", q);
            break;
        }
        rlab_turn *t = rlab_dlg_turn(c);
        if (!t) {
            rc = rlab_errf_at(err, RLAB_ENOMEM, r->name, r->line, "out of memory");
            break;
        }
        t->role = role;
        t->time = turn;
        t->speaker = rlab_strndup(sp.p, sp.n);
        t->text = rlab_strndup(f[c_text].p, f[c_text].n);
        if (!t->speaker || !t->text) {
            rc = rlab_errf_at(err, RLAB_ENOMEM, r->name, r->line, "out of memory");
            break;
        }
        /* movies: "Title (1994); Other (2016)" */
        if (c_mov >= 0) {
            const char *p = f[c_mov].p, *end = p + f[c_mov].n;
            while (p < end && !rc) {
                const char *semi = memchr(p, ';', (size_t)(end - p));
                const char *e = semi ? semi : end;
                while (p < e && *p == ' ')
                    p++;
                const char *q = e;
                while (q > p && q[-1] == ' ')
                    q--;
                if (q > p) {
                    int32_t item = rlab_dlg_item(d, p, (size_t)(q - p), NULL);
                    if (item < 0 || rlab_dlg_turn_item(t, item))
                        rc = rlab_errf_at(err, RLAB_ENOMEM, r->name, r->line, "out of memory");
                }
                p = semi ? semi + 1 : end;
            }
            if (rc)
                break;
        }
    }
    rlab_vocab_clear(&seen);
    return rc;
}
