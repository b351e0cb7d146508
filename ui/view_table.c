/*
 * ui/view_table.c: the table view: runs side by side with their latest metrics (sortable
 * by any column: `sort <column> [asc|desc]`), a compare of chosen runs (metrics as rows,
 * runs as columns), or the rows of an `sql` query or a command's result table. Column
 * widths follow the content (display widths, so CJK titles stay aligned). The first column
 * stays; the others scroll horizontally (Left/Right by a column and Home/End on an empty
 * command line, Shift-Left/Right always), with a note of the columns hidden on each side.
 */
#include "tui.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

void tui_view_table(tui *t, WINDOW *w, int y, int x, int h, int wd)
{
    tui_table *tb = &t->table;
    if (h <= 0)
        return;
    char head[256];
    if (tb->sort_col >= 0 && tb->sort_col < tb->ncol)
        snprintf(head, sizeof head, "table  %s  sorted by %s %s", tb->title, tb->cols[tb->sort_col],
                 tb->sort_desc ? "(desc)" : "(asc)");
    else
        snprintf(head, sizeof head, "table  %s", tb->title[0] ? tb->title : "(empty: try `runs`)");
    tui_put_pad(w, y, x, head, wd, tui_attr(t, TUI_R_HEAD));
    if (tb->ncol == 0 || h < 3)
        return;
    int colw[64];
    int nc = tb->ncol > 64 ? 64 : tb->ncol;
    for (int c = 0; c < nc; c++) {
        colw[c] = tui_width(tb->cols[c], (size_t)-1) + (c == tb->sort_col ? 2 : 0);
        for (int r = 0; r < tb->nrow && r < 500; r++) {
            const char *s = tb->cells[r * tb->ncol + c];
            int cw = s ? tui_width(s, (size_t)-1) : 1;
            if (cw > colw[c])
                colw[c] = cw;
        }
        int cap = c == 0 ? 28 : tb->kind == 2 ? 22 : 40; /* compare: runs side by side */
        if (colw[c] > cap)
            colw[c] = cap;
        if (colw[c] < 1)
            colw[c] = 1;
    }
    /* which columns show: column 0 always (the run, the name), then from tb->left as many as
     * fit; at the far right, left is pulled back while the columns after it still fit */
    if (tb->left < 1)
        tb->left = 1;
    if (tb->left > nc - 1)
        tb->left = nc - 1 > 1 ? nc - 1 : 1;
    int fixed = colw[0] + 2;
    for (;;) {
        int need = fixed;
        for (int c = tb->left - 1; c < nc; c++)
            need += colw[c] + 2;
        if (tb->left <= 1 || need - 2 > wd)
            break;
        tb->left--;
    }
    int vis[64], shown = 0, used = 0;
    for (int c = 0; c < nc && shown < 64; c++) {
        if (c > 0 && c < tb->left)
            continue;
        if (shown > 0 && used + colw[c] > wd)
            break;
        if (shown == 0 && colw[c] > wd)
            colw[c] = wd;
        vis[shown++] = c;
        used += colw[c] + 2;
    }
    tb->last_shown = shown > 0 ? vis[shown - 1] : -1;
    int yy = y + 1, xx = x;
    for (int k = 0; k < shown; k++) {
        int c = vis[k];
        char hc[96];
        const char *arrow =
            t->utf8 ? (tb->sort_desc ? " \u2193" : " \u2191") : (tb->sort_desc ? " v" : " ^");
        snprintf(hc, sizeof hc, "%s%s", tb->cols[c], c == tb->sort_col ? arrow : "");
        int numeric = tb->nrow > 0 && !isnan(tb->num[c]);
        int cw = tui_width(hc, (size_t)-1);
        int pad = numeric && cw < colw[c] ? colw[c] - cw : 0;
        tui_put(w, yy, xx + pad, hc, colw[c], tui_attr(t, TUI_R_CMD) | A_UNDERLINE);
        xx += colw[c] + 2;
    }
    int hidden_left = tb->left - 1, hidden_right = tb->ncol - 1 - tb->last_shown;
    if (hidden_left > 0 || hidden_right > 0) {
        char more[64];
        if (hidden_left > 0 && hidden_right > 0)
            snprintf(more, sizeof more, "%s%d cols  +%d cols%s", t->utf8 ? "\u25c2" : "<",
                     hidden_left, hidden_right, t->utf8 ? "\u25b8" : ">");
        else if (hidden_left > 0)
            snprintf(more, sizeof more, "%s%d cols", t->utf8 ? "\u25c2" : "<", hidden_left);
        else
            snprintf(more, sizeof more, "+%d cols%s", hidden_right, t->utf8 ? "\u25b8" : ">");
        int mw = tui_width(more, (size_t)-1);
        if (wd - mw > 0) { /* the title gives way to the note */
            tui_put_pad(w, y, x, head, wd - mw, tui_attr(t, TUI_R_HEAD));
            tui_put(w, y, x + wd - mw, more, mw, tui_attr(t, TUI_R_DIM));
        }
    }
    int rows = h - 2;
    if (tb->top > tb->nrow - rows)
        tb->top = tb->nrow - rows > 0 ? tb->nrow - rows : 0;
    for (int r = 0; r < rows && tb->top + r < tb->nrow; r++) {
        int rr = tb->top + r;
        xx = x;
        for (int k = 0; k < shown; k++) {
            int c = vis[k];
            const char *s = tb->cells[rr * tb->ncol + c];
            if (!s)
                s = "";
            int cw = tui_width(s, (size_t)-1);
            int right = !isnan(tb->num[rr * tb->ncol + c]);
            int pad = right && cw < colw[c] ? colw[c] - cw : 0;
            attr_t a = A_NORMAL;
            if (c == tb->sort_col)
                a = tui_attr(t, TUI_R_CMD);
            if (tb->kind == 1 && c == 1) /* status */
                a = !strcmp(s, "failed")        ? tui_attr(t, TUI_R_ERR)
                    : !strcmp(s, "interrupted") ? tui_attr(t, TUI_R_WARN)
                    : !strcmp(s, "running")     ? tui_attr(t, TUI_R_HEAD)
                                                : tui_attr(t, TUI_R_OK);
            tui_put(w, y + 2 + r, xx + pad, s, colw[c], a);
            xx += colw[c] + 2;
        }
    }
    if (tb->nrow > rows) {
        char m[48];
        snprintf(m, sizeof m, "rows %d-%d of %d", tb->top + 1,
                 tb->top + rows < tb->nrow ? tb->top + rows : tb->nrow, tb->nrow);
        int mw = tui_width(m, (size_t)-1);
        if (wd - mw > 0 && hidden_left == 0 && hidden_right == 0)
            tui_put(w, y, x + wd - mw, m, mw, tui_attr(t, TUI_R_DIM));
    }
}
