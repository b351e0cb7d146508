/*
 * ui/view_log.c: the log view. Newest line at the bottom, long lines wrapped at the pane's
 * width at a space where one is near (never inside a wide character), the rows of aligned
 * tables cut at the edge with a marker instead, a time stamp per line, colour by kind, and
 * a marker when scrolled back (PgUp / PgDn).
 */
#include "tui.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/* Rows a line needs when wrapped at width tw (at a space when one is in the row's second
 * half, else where the width ends); fills starts[] (byte offsets) up to max. */
static int wrap(const char *s, int tw, size_t *starts, int max)
{
    int rows = 0;
    size_t off = 0, n = strlen(s);
    if (tw < 1)
        tw = 1;
    do {
        if (rows < max)
            starts[rows] = off;
        rows++;
        size_t fit = tui_fit(s + off, tw);
        if (fit == 0 && off < n) { /* a character wider than the pane: skip it */
            fit = 1;
            while (off + fit < n && ((unsigned char)s[off + fit] & 0xc0) == 0x80)
                fit++;
        }
        if (off + fit < n && s[off + fit] != ' ') {
            size_t sp = fit;
            while (sp > fit / 2 && s[off + sp - 1] != ' ')
                sp--;
            if (sp > fit / 2)
                fit = sp;
        }
        off += fit;
        while (off < n && s[off] == ' ' && rows > 0)
            off++;
    } while (off < n);
    return rows;
}

static attr_t kind_attr(tui *t, int kind)
{
    switch (kind) {
    case TUI_K_INFO:
        return tui_attr(t, TUI_R_DIM);
    case TUI_K_CMD:
        return tui_attr(t, TUI_R_CMD);
    case TUI_K_OK:
        return tui_attr(t, TUI_R_OK);
    case TUI_K_WARN:
        return tui_attr(t, TUI_R_WARN);
    case TUI_K_ERR:
        return tui_attr(t, TUI_R_ERR);
    case TUI_K_HEAD:
        return tui_attr(t, TUI_R_HEAD);
    default:
        return A_NORMAL;
    }
}

void tui_view_log(tui *t, WINDOW *w, int y, int x, int h, int wd)
{
    tui_log *l = &t->log;
    if (h <= 0 || wd <= 0)
        return;
    int stamp = wd >= 60 ? 9 : 0; /* "HH:MM:SS " */
    int tw = wd - stamp;
    if (l->scroll > l->n - 1)
        l->scroll = l->n > 0 ? l->n - 1 : 0;
    int row = y + h - 1;
    if (l->scroll > 0) {
        char m[64];
        snprintf(m, sizeof m, "-- %d newer lines below (PgDn) --", l->scroll);
        tui_put_pad(w, row, x, m, wd, tui_attr(t, TUI_R_SEL));
        row--;
    }
    size_t starts[64];
    for (int k = l->n - 1 - l->scroll; k >= 0 && row >= y; k--) {
        const tui_line *ln = &l->lines[(l->head + k) % TUI_LOG_CAP];
        const char *s = ln->text ? ln->text : "";
        int cut = (ln->kind & TUI_K_ROW) && tui_width(s, (size_t)-1) > tw;
        int rows = cut ? 1 : wrap(s, tw, starts, 64);
        if (rows > 64)
            rows = 64;
        if (cut)
            starts[0] = 0;
        attr_t a = kind_attr(t, ln->kind & ~TUI_K_ROW);
        for (int r = rows - 1; r >= 0 && row >= y; r--, row--) {
            if (r == 0 && stamp) {
                char ts[16];
                time_t tt = (time_t)ln->wall;
                struct tm tm;
                localtime_r(&tt, &tm);
                strftime(ts, sizeof ts, "%H:%M:%S", &tm);
                tui_put(w, row, x, ts, stamp - 1, tui_attr(t, TUI_R_DIM));
            }
            size_t end = r + 1 < rows ? starts[r + 1] : strlen(s);
            char seg[1024];
            size_t len = end - starts[r];
            if (len >= sizeof seg)
                len = sizeof seg - 1;
            memcpy(seg, s + starts[r], len);
            seg[len] = 0;
            if (cut && tw > 1) {
                tui_put(w, row, x + stamp, seg, tw - 1, a);
                tui_put(w, row, x + stamp + tw - 1, t->utf8 ? "\u203a" : ">", 1,
                        tui_attr(t, TUI_R_DIM));
            } else {
                tui_put(w, row, x + stamp, seg, tw, a);
            }
        }
    }
}
