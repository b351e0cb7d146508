/*
 * ui/view_plugin.c: views that plugins describe as data (rlab_view_kind, provisional). The
 * view's `source` is either a SELECT over the session store or, for a bare word, an event
 * kind ("feed": rows of the events table of that kind) or nothing ("chat": the dialogues
 * table). Two renderers: "feed" draws one line per row (columns joined), newest at the
 * bottom; "chat" draws turns as "role: text", wrapped. Other kinds fall back to "feed".
 */
#include "tui.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

typedef struct rowbuf {
    char lines[200][256];
    int n;
    int chat;
} rowbuf;

static int on_row(void *ud, int stmt, int ncol, const char *const *names,
                  const rlab_db_value *cells)
{
    rowbuf *rb = ud;
    (void)stmt;
    (void)names;
    if (rb->n >= 200)
        return 1;
    char *o = rb->lines[rb->n];
    size_t cap = sizeof rb->lines[0], len = 0;
    o[0] = 0;
    for (int c = 0; c < ncol && len + 2 < cap; c++) {
        char v[256];
        switch (cells[c].type) {
        case RLAB_DB_INT:
            snprintf(v, sizeof v, "%lld", (long long)cells[c].i);
            break;
        case RLAB_DB_REAL:
            tui_fmt_num(cells[c].r, v, sizeof v);
            break;
        case RLAB_DB_TEXT:
            snprintf(v, sizeof v, "%s", cells[c].s);
            break;
        default:
            v[0] = 0;
        }
        const char *sep = c == 0 ? "" : (rb->chat && c == 1) ? ": " : "  ";
        len += (size_t)snprintf(o + len, cap - len, "%s%s", sep, v);
        if (len >= cap)
            len = cap - 1;
    }
    rb->n++;
    return 0;
}

void tui_view_plugin(tui *t, WINDOW *w, int y, int x, int h, int wd)
{
    if (t->pview < 0 || t->pview >= t->npviews) {
        tui_put(w, y, x, "no plugin view (`view` lists them)", wd, tui_attr(t, TUI_R_DIM));
        return;
    }
    const tui_pview *pv = &t->pviews[t->pview];
    char head[256];
    snprintf(head, sizeof head, "%s  (%s, %s)", pv->title, pv->name, pv->kind);
    tui_put_pad(w, y, x, head, wd, tui_attr(t, TUI_R_HEAD));
    if (!t->db || h < 2)
        return;
    static rowbuf rb;
    rb.n = 0;
    rb.chat = !strcmp(pv->kind, "chat");
    const char *src = pv->source;
    while (isspace((unsigned char)*src))
        src++;
    rlab_err err = {0};
    int rc;
    if (!strncasecmp(src, "select", 6) || !strncasecmp(src, "with", 4)) {
        rc = rlab_db_query(t->db, src, NULL, 0, 0, on_row, &rb, &err);
    } else if (rb.chat) {
        rc = rlab_db_query(t->db,
                           "SELECT role, text FROM (SELECT id, role, text FROM dialogues ORDER BY "
                           "id DESC LIMIT 200) ORDER BY id",
                           NULL, 0, 0, on_row, &rb, &err);
    } else {
        rlab_db_value p = {.type = RLAB_DB_TEXT, .s = src, .n = strlen(src)};
        rc = rlab_db_query(t->db,
                           "SELECT round, agent, kind, payload FROM (SELECT * FROM events WHERE "
                           "kind = ?1 OR ?1 = '' ORDER BY id DESC LIMIT 200) ORDER BY id",
                           &p, 1, 0, on_row, &rb, &err);
    }
    if (rc) {
        tui_put(w, y + 1, x, err.msg, wd, tui_attr(t, TUI_R_ERR));
        return;
    }
    if (rb.n == 0) {
        tui_put(w, y + 1, x + 2, "(nothing yet)", wd - 2, tui_attr(t, TUI_R_DIM));
        return;
    }
    /* newest at the bottom; chat turns wrap, feed lines are cut */
    int row = y + h - 1;
    for (int i = rb.n - 1; i >= 0 && row > y; i--) {
        char *s = tui_sanitize(rb.lines[i], (size_t)-1);
        if (!s)
            break;
        if (!rb.chat) {
            tui_put(w, row--, x, s, wd, A_NORMAL);
        } else {
            size_t starts[16];
            int n = 0;
            size_t off = 0, len = strlen(s);
            do {
                starts[n++] = off;
                size_t f = tui_fit(s + off, wd - 2);
                off += f ? f : 1;
            } while (off < len && n < 16);
            for (int r = n - 1; r >= 0 && row > y; r--) {
                size_t end = r + 1 < n ? starts[r + 1] : len;
                char seg[256];
                size_t sl = end - starts[r] < sizeof seg ? end - starts[r] : sizeof seg - 1;
                memcpy(seg, s + starts[r], sl);
                seg[sl] = 0;
                tui_put(w, row--, x + (r ? 2 : 0), seg, wd - (r ? 2 : 0),
                        r == 0 ? tui_attr(t, TUI_R_CMD) : A_NORMAL);
            }
        }
        rlab_free(s);
    }
}
