/*
 * ui/view_chart.c: metric curves over steps for several runs and several metrics, drawn
 * with Unicode braille (2x4 dots per cell; '*' cells without UTF-8). Each (run, metric)
 * series has its colour (when colour is on) and its marker (a glyph on each data point when
 * they are sparse enough to read, else on the last), a "#id" tag at the end of its curve,
 * and an entry in the header's legend. The y axis carries three labels, a right axis those
 * of a metric of another magnitude; the x axis about five ticks at round steps and the step label
 * ("epoch").
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

/* Marker glyphs, one per series (UTF-8, then ASCII). */
static const char *const marks_u8[] = {"\u25cf", "\u25a0", "\u25b2", "\u25c6",
                                       "\u25bc", "\u25cb", "\u271a", "\u2605"};
static const char *const marks_ascii[] = {"o", "#", "^", "d", "v", "@", "+", "*"};

static const char *mark_of(const tui *t, int k)
{
    return t->utf8 ? marks_u8[k % 8] : marks_ascii[k % 8];
}

/* Axis of each series: metrics are told apart by kmetric; the first metric reads on the left,
 * a metric more than 3x apart in magnitude on the right (as the host's chart command). */
static void chart_axes(const tui_chart *ch, const tui_series *const *ss, int *axis)
{
    double mag[TUI_CHART_RUNS] = {0};
    int mi[TUI_CHART_RUNS];
    for (int k = 0; k < ch->nkeys; k++) {
        mi[k] = k;
        for (int j = 0; j < k; j++)
            if (!strcmp(tui_chart_metric(ch, j), tui_chart_metric(ch, k))) {
                mi[k] = mi[j];
                break;
            }
        for (int i = 0; ss[k] && i < ss[k]->n; i++)
            if (isfinite(ss[k]->y[i]) && fabs(ss[k]->y[i]) > mag[mi[k]])
                mag[mi[k]] = fabs(ss[k]->y[i]);
    }
    double m0 = mag[mi[0]] > 0 ? mag[mi[0]] : 1e-12;
    for (int k = 0; k < ch->nkeys; k++) {
        double m = mag[mi[k]] > 0 ? mag[mi[k]] : 1e-12;
        axis[k] = mi[k] != mi[0] && (m / m0 > 3 || m0 / m > 3);
    }
}

void tui_view_chart(tui *t, WINDOW *w, int y, int x, int h, int wd)
{
    tui_chart *ch = &t->chart;
    if (h <= 0)
        return;
    /* header: metric(s), then the legend: a marker, the run and, with several metrics, the
     * metric of each series */
    int several = 0;
    for (int k = 1; k < ch->nkeys; k++)
        several |= strcmp(tui_chart_metric(ch, k), tui_chart_metric(ch, 0)) != 0;
    const tui_series *ss[TUI_CHART_RUNS];
    int axis[TUI_CHART_RUNS] = {0};
    for (int k = 0; k < ch->nkeys; k++)
        ss[k] = tui_series_get(t, ch->keys[k], tui_chart_metric(ch, k), 0);
    if (ch->nkeys > 0)
        chart_axes(ch, ss, axis);
    char head[160];
    snprintf(head, sizeof head, "chart  %s%s", ch->metric[0] ? ch->metric : "(no metric yet)",
             ch->follow ? "  (live)" : "");
    int hw = tui_put(w, y, x, head, wd, tui_attr(t, TUI_R_HEAD));
    int lx = x + hw + 3;
    for (int k = 0; k < ch->nkeys && lx < x + wd; k++) {
        attr_t a = tui_attr(t, (tui_role)(TUI_R_SERIES0 + k));
        char ent[128];
        int named = strcmp(ch->labels[k], tui_chart_metric(ch, k)) == 0; /* one run's metrics */
        snprintf(ent, sizeof ent, "%s %s%s%s%s", mark_of(t, k), ch->labels[k],
                 several && !named ? " " : "", several && !named ? tui_chart_metric(ch, k) : "",
                 axis[k] ? " (right)" : "");
        lx += tui_put(w, y, lx, ent, x + wd - lx, a) + 2;
    }
    if (h < 5 || wd < 20)
        return;
    int ns = 0, any_right = 0;
    double xmin = INFINITY, xmax = -INFINITY;
    double ymin[2] = {INFINITY, INFINITY}, ymax[2] = {-INFINITY, -INFINITY};
    for (int k = 0; k < ch->nkeys; k++) {
        const tui_series *s = ss[k];
        if (!s)
            continue;
        int a = axis[k];
        for (int i = 0; i < s->n; i++) {
            if (!isfinite(s->y[i]))
                continue;
            xmin = fmin(xmin, s->x[i]);
            xmax = fmax(xmax, s->x[i]);
            ymin[a] = fmin(ymin[a], s->y[i]);
            ymax[a] = fmax(ymax[a], s->y[i]);
            ns++;
            any_right |= a;
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
    char ylab[2][3][24];
    int yw[2] = {1, 0};
    for (int a = 0; a < 2; a++) {
        if (!isfinite(ymin[a]))
            continue;
        if (ymax[a] <= ymin[a]) {
            double d = fabs(ymin[a]) > 0 ? fabs(ymin[a]) * 0.1 : 0.5;
            ymin[a] -= d;
            ymax[a] += d;
        } else {
            double pad = (ymax[a] - ymin[a]) * 0.05;
            ymin[a] -= pad;
            ymax[a] += pad;
        }
        tui_fmt_num(ymax[a], ylab[a][0], sizeof ylab[a][0]);
        tui_fmt_num((ymin[a] + ymax[a]) / 2, ylab[a][1], sizeof ylab[a][1]);
        tui_fmt_num(ymin[a], ylab[a][2], sizeof ylab[a][2]);
        for (int i = 0; i < 3; i++) {
            int lw = tui_width(ylab[a][i], (size_t)-1);
            if (lw > yw[a])
                yw[a] = lw;
        }
    }
    if (!isfinite(ymin[0])) { /* every series on the right: it becomes the left */
        ymin[0] = ymin[1];
        ymax[0] = ymax[1];
        memcpy(ylab[0], ylab[1], sizeof ylab[0]);
        yw[0] = yw[1];
        any_right = 0;
        for (int k = 0; k < ch->nkeys; k++)
            axis[k] = 0;
    }
    int rows = h - 3;       /* header, x axis, x labels */
    int ox = x + yw[0] + 2; /* plot origin column */
    const char *xl = ch->xlabel[0] ? ch->xlabel : "step";
    int xlw = tui_width(xl, (size_t)-1);
    /* right of the plot: the right axis' labels, the end tags ("#12") and the x label */
    int right = xlw + 2 > 5 ? xlw + 2 : 5;
    if (any_right && yw[1] + 2 > right)
        right = yw[1] + 2;
    int cols = wd - (yw[0] + 2) - right;
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
        int a = axis[k];
        int px0 = -1, py0 = -1;
        for (int i = 0; i < s->n; i++) {
            if (!isfinite(s->y[i]))
                continue;
            int px = (int)lround((s->x[i] - xmin) / (xmax - xmin) * (DW - 1));
            int py = (DH - 1) - (int)lround((s->y[i] - ymin[a]) / (ymax[a] - ymin[a]) * (DH - 1));
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
    /* y axes */
    attr_t dim = tui_attr(t, TUI_R_DIM);
    for (int r = 0; r < rows; r++) {
        int which = r == 0 ? 0 : r == rows / 2 ? 1 : r == rows - 1 ? 2 : -1;
        if (which >= 0) {
            int lw = tui_width(ylab[0][which], (size_t)-1);
            tui_put(w, y + 1 + r, x + yw[0] - lw, ylab[0][which], lw, dim);
            if (any_right)
                tui_put(w, y + 1 + r, ox + cols + 1, ylab[1][which], x + wd - (ox + cols + 1), dim);
        }
        tui_put(w, y + 1 + r, x + yw[0] + 1,
                t->utf8 ? (which >= 0 ? "\u2524" : "\u2502") : (which >= 0 ? "+" : "|"), 1, dim);
        if (any_right)
            tui_put(w, y + 1 + r, ox + cols,
                    t->utf8 ? (which >= 0 ? "\u251c" : "\u2502") : (which >= 0 ? "+" : "|"), 1,
                    dim);
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
    /* markers on the data points, when they are far enough apart to read (else the last) */
    for (int k = 0; k < ch->nkeys; k++) {
        const tui_series *s = ss[k];
        if (!s || s->n < 2) /* one point: its dot and end tag say enough */
            continue;
        int a = axis[k];
        int sparse = s->n <= cols / 3;
        for (int i = sparse ? 0 : s->n - 1; i < s->n; i++) {
            if (!isfinite(s->y[i]))
                continue;
            int cx = (int)lround((s->x[i] - xmin) / (xmax - xmin) * (DW - 1)) / 2;
            int cy =
                ((DH - 1) - (int)lround((s->y[i] - ymin[a]) / (ymax[a] - ymin[a]) * (DH - 1))) / 4;
            tui_put(w, y + 1 + cy, ox + cx, mark_of(t, k), 1,
                    tui_attr(t, (tui_role)(TUI_R_SERIES0 + k)));
        }
    }
    /* end tags: the run id (and the metric when there are several) */
    for (int k = 0; k < ch->nkeys; k++) {
        if (endx[k] < 0)
            continue;
        char tag[24];
        const char *sp = strchr(ch->labels[k], ' ');
        snprintf(tag, sizeof tag, "%.*s", sp ? (int)(sp - ch->labels[k]) : 8, ch->labels[k]);
        int tx = ox + endx[k] + 1;
        if (any_right && tx + tui_width(tag, (size_t)-1) > ox + cols)
            continue; /* the right axis' labels are there */
        if (tx + tui_width(tag, (size_t)-1) > x + wd)
            tx = x + wd - tui_width(tag, (size_t)-1);
        tui_put(w, y + 1 + endy[k], tx, tag, x + wd - tx,
                tui_attr(t, (tui_role)(TUI_R_SERIES0 + k)));
    }
    /* x axis: ticks at round step values (1, 2 or 5 times a power of ten, at least 1: steps
     * are integers), each at the column its value maps to, as the dots do; about five. */
    int ay = y + 1 + rows;
    double xstep = 1;
    while ((xmax - xmin) / xstep > 5) {
        double m = xstep / pow(10, floor(log10(xstep) + 1e-9));
        xstep *= m < 1.5 ? 2 : m < 3.5 ? 2.5 : 2; /* 1 -> 2 -> 5 -> 10 */
    }
    unsigned char tickcol[200];
    memset(tickcol, 0, sizeof tickcol);
    double xfirst = ceil(xmin / xstep - 1e-9) * xstep;
    for (double v = xfirst; v <= xmax + 1e-9; v += xstep) {
        int cx = (int)lround((v - xmin) / (xmax - xmin) * (DW - 1)) / 2;
        if (cx >= 0 && cx < cols && cx < (int)sizeof tickcol)
            tickcol[cx] = 1;
    }
    wmove(w, ay, x + yw[0] + 1);
    wattr_set(w, dim, (short)PAIR_NUMBER(dim), NULL);
    for (int i = 0; i <= cols; i++) {
        int tick = i > 0 && i - 1 < (int)sizeof tickcol && tickcol[i - 1];
        if (t->utf8)
            waddwstr(w, i == 0 ? L"\u2514" : tick ? L"\u252c" : L"\u2500");
        else
            waddch(w, i == 0 ? '+' : tick ? '+' : '-');
    }
    wattr_set(w, A_NORMAL, 0, NULL);
    int lastx = -1;
    for (double v = xfirst; v <= xmax + 1e-9; v += xstep) {
        char lab[24];
        tui_fmt_num(round(v), lab, sizeof lab);
        int lw = tui_width(lab, (size_t)-1);
        int cx = ox + (int)lround((v - xmin) / (xmax - xmin) * (DW - 1)) / 2 - lw / 2;
        if (cx <= lastx)
            continue; /* labels never overlap: a crowded one is left out, its tick stays */
        if (cx + lw > x + wd)
            break;
        tui_put(w, ay + 1, cx, lab, lw, dim);
        lastx = cx + lw;
    }
    tui_put(w, ay, ox + cols + 1, xl, x + wd - (ox + cols + 1), dim);
}
