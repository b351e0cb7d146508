/*
 * ui/view_chart.c: metric curves over steps for one or several runs, drawn with Unicode
 * braille (2x4 dots per cell; '*' cells without UTF-8). The y axis carries three labels,
 * the x axis five ticks and the step label ("epoch"). Each run has its own colour (when
 * colour is on) and a "#id" tag at the end of its curve, and the header lists them.
 */
#include "tui.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Dot (dx, dy) of a cell -> braille bit (U+2800 + bits). */
static const unsigned char braille_bit[4][2] = {
    {0x01, 0x08}, {0x02, 0x10}, {0x04, 0x20}, {0x40, 0x80}};

typedef struct canvas {
    int cols, rows;      /* cells */
    unsigned char *bits; /* [rows][cols] */
    signed char *owner;  /* [rows][cols] series index drawing last, -1 none */
} canvas;

static void dot(canvas *c, int px, int py, int sidx)
{
    if (px < 0 || py < 0 || px >= c->cols * 2 || py >= c->rows * 4)
        return;
    int cx = px / 2, cy = py / 4;
    c->bits[cy * c->cols + cx] |= braille_bit[py % 4][px % 2];
    c->owner[cy * c->cols + cx] = (signed char)sidx;
}

static void line(canvas *c, int x0, int y0, int x1, int y1, int sidx)
{
    int dx = x1 > x0 ? x1 - x0 : x0 - x1, sx = x0 < x1 ? 1 : -1;
    int dy = -(y1 > y0 ? y1 - y0 : y0 - y1), sy = y0 < y1 ? 1 : -1;
    int e = dx + dy;
    for (int guard = 0; guard < 100000; guard++) {
        dot(c, x0, y0, sidx);
        if (x0 == x1 && y0 == y1)
            break;
        int e2 = 2 * e;
        if (e2 >= dy) {
            e += dy;
            x0 += sx;
        }
        if (e2 <= dx) {
            e += dx;
            y0 += sy;
        }
    }
}

void tui_view_chart(tui *t, WINDOW *w, int y, int x, int h, int wd)
{
    tui_chart *ch = &t->chart;
    if (h <= 0)
        return;
    /* header: metric and legend */
    char head[160];
    snprintf(head, sizeof head, "chart  %s%s", ch->metric[0] ? ch->metric : "(no metric yet)",
             ch->follow ? "  (live)" : "");
    int hw = tui_put(w, y, x, head, wd, tui_attr(t, TUI_R_HEAD));
    int lx = x + hw + 3;
    for (int k = 0; k < ch->nkeys && lx < x + wd; k++) {
        attr_t a = tui_attr(t, (tui_role)(TUI_R_SERIES0 + k));
        lx += tui_put(w, y, lx, ch->labels[k], x + wd - lx, a) + 2;
    }
    if (h < 5 || wd < 20)
        return;
    const tui_series *ss[TUI_CHART_RUNS];
    int ns = 0;
    double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
    for (int k = 0; k < ch->nkeys; k++) {
        const tui_series *s = tui_series_get(t, ch->keys[k], tui_chart_metric(ch, k), 0);
        ss[k] = s;
        if (!s)
            continue;
        for (int i = 0; i < s->n; i++) {
            if (!isfinite(s->y[i]))
                continue;
            xmin = fmin(xmin, s->x[i]);
            xmax = fmax(xmax, s->x[i]);
            ymin = fmin(ymin, s->y[i]);
            ymax = fmax(ymax, s->y[i]);
            ns++;
        }
    }
    if (ns == 0) {
        tui_put(w, y + 2, x + 2,
                ch->nkeys ? "waiting for metrics..."
                          : "no chart: `chart <metric> [runs]` or start a training job",
                wd - 4, tui_attr(t, TUI_R_DIM));
        return;
    }
    if (xmax <= xmin)
        xmax = xmin + 1;
    if (ymax <= ymin) {
        double d = fabs(ymin) > 0 ? fabs(ymin) * 0.1 : 0.5;
        ymin -= d;
        ymax += d;
    } else {
        double pad = (ymax - ymin) * 0.05;
        ymin -= pad;
        ymax += pad;
    }
    char ylab[3][24];
    tui_fmt_num(ymax, ylab[0], sizeof ylab[0]);
    tui_fmt_num((ymin + ymax) / 2, ylab[1], sizeof ylab[1]);
    tui_fmt_num(ymin, ylab[2], sizeof ylab[2]);
    int yw = 1;
    for (int i = 0; i < 3; i++) {
        int lw = tui_width(ylab[i], (size_t)-1);
        if (lw > yw)
            yw = lw;
    }
    int rows = h - 3;    /* header, x axis, x labels */
    int ox = x + yw + 2; /* plot origin column */
    const char *xl = ch->xlabel[0] ? ch->xlabel : "step";
    int xlw = tui_width(xl, (size_t)-1);
    /* right of the plot: the end tags ("#12") and the x label on the axis row */
    int right = xlw + 2 > 5 ? xlw + 2 : 5;
    int cols = wd - (yw + 2) - right;
    if (rows < 2 || cols < 8)
        return;
    canvas c = {.cols = cols, .rows = rows};
    unsigned char bits[200 * 80];
    signed char owner[200 * 80];
    if (cols * rows > (int)sizeof bits) {
        c.rows = rows = (int)sizeof bits / cols;
    }
    memset(bits, 0, sizeof bits);
    memset(owner, -1, sizeof owner);
    c.bits = bits;
    c.owner = owner;
    int DW = cols * 2, DH = rows * 4;
    int endx[TUI_CHART_RUNS], endy[TUI_CHART_RUNS];
    for (int k = 0; k < ch->nkeys; k++) {
        endx[k] = -1;
        const tui_series *s = ss[k];
        if (!s)
            continue;
        int px0 = -1, py0 = -1;
        for (int i = 0; i < s->n; i++) {
            if (!isfinite(s->y[i]))
                continue;
            int px = (int)lround((s->x[i] - xmin) / (xmax - xmin) * (DW - 1));
            int py = (DH - 1) - (int)lround((s->y[i] - ymin) / (ymax - ymin) * (DH - 1));
            if (px0 >= 0)
                line(&c, px0, py0, px, py, k);
            else
                dot(&c, px, py, k);
            px0 = px;
            py0 = py;
        }
        endx[k] = px0 / 2;
        endy[k] = py0 / 4;
    }
    /* y axis */
    attr_t dim = tui_attr(t, TUI_R_DIM);
    for (int r = 0; r < rows; r++) {
        const char *lab = r == 0          ? ylab[0]
                          : r == rows / 2 ? ylab[1]
                          : r == rows - 1 ? ylab[2]
                                          : NULL;
        if (lab) {
            int lw = tui_width(lab, (size_t)-1);
            tui_put(w, y + 1 + r, x + yw - lw, lab, lw, dim);
        }
        tui_put(w, y + 1 + r, x + yw + 1, t->utf8 ? (lab ? "\u2524" : "\u2502") : (lab ? "+" : "|"),
                1, dim);
    }
    /* the dots */
    for (int r = 0; r < rows; r++) {
        for (int col = 0; col < cols; col++) {
            unsigned char b = bits[r * cols + col];
            if (!b)
                continue;
            attr_t a = tui_attr(t, (tui_role)(TUI_R_SERIES0 + owner[r * cols + col]));
            if (t->utf8) {
                wchar_t wc[2] = {(wchar_t)(0x2800 + b), 0};
                wmove(w, y + 1 + r, ox + col);
                wattr_set(w, a, (short)PAIR_NUMBER(a), NULL);
                waddnwstr(w, wc, 1);
                wattr_set(w, A_NORMAL, 0, NULL);
            } else {
                wmove(w, y + 1 + r, ox + col);
                waddch(w, '*' | a);
            }
        }
    }
    /* end tags */
    for (int k = 0; k < ch->nkeys; k++) {
        if (endx[k] < 0)
            continue;
        char tag[24];
        const char *sp = strchr(ch->labels[k], ' ');
        snprintf(tag, sizeof tag, "%.*s", sp ? (int)(sp - ch->labels[k]) : 8, ch->labels[k]);
        int tx = ox + endx[k] + 1;
        if (tx + tui_width(tag, (size_t)-1) > x + wd)
            tx = x + wd - tui_width(tag, (size_t)-1);
        tui_put(w, y + 1 + endy[k], tx, tag, x + wd - tx,
                tui_attr(t, (tui_role)(TUI_R_SERIES0 + k)));
    }
    /* x axis with five ticks */
    int ay = y + 1 + rows;
    wmove(w, ay, x + yw + 1);
    wattr_set(w, dim, (short)PAIR_NUMBER(dim), NULL);
    for (int i = 0; i <= cols; i++) {
        int tick = 0;
        for (int k = 0; k <= 4; k++)
            tick |= i == (cols - 1) * k / 4 + 1;
        if (t->utf8)
            waddwstr(w, i == 0 ? L"\u2514" : tick ? L"\u252c" : L"\u2500");
        else
            waddch(w, i == 0 ? '+' : tick ? '+' : '-');
    }
    wattr_set(w, A_NORMAL, 0, NULL);
    int lastx = -1;
    for (int k = 0; k <= 4; k++) {
        double v = xmin + (xmax - xmin) * k / 4.0;
        char lab[24];
        tui_fmt_num(round(v), lab, sizeof lab); /* steps are integers */
        int lw = tui_width(lab, (size_t)-1);
        int cx = ox + (cols - 1) * k / 4 - lw / 2;
        if (cx <= lastx ||
            (k > 0 && !islessgreater(round(v), round(xmin + (xmax - xmin) * (k - 1) / 4.0))))
            continue;
        if (cx + lw > x + wd)
            break;
        tui_put(w, ay + 1, cx, lab, lw, dim);
        lastx = cx + lw;
    }
    tui_put(w, ay, ox + cols + 1, xl, x + wd - (ox + cols + 1), dim);
}
