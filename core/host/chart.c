/*
 * core/host/chart.c: the `chart` command: metric curves of runs from the session store,
 * several runs and several metrics in one chart, as a result table and as an SVG picture.
 *
 *   chart METRIC[,METRIC...] [runs=3,4,5 | run=3] [file=out.svg] [width=] [height=] [title=]
 *
 * A metric is "name" (ndcg@10, loss, watches: the split chosen valid, test, train, then any
 * other) or "split.name" (valid.ndcg@10, train.loss, sim.watches). Without runs= the latest
 * three runs that recorded the first metric are drawn (with several metrics, the latest one). Every
 * (run, metric) pair is one series with its colour, marker shape and, per metric, dash pattern; the
 * first metric reads on the left axis, a metric whose values are of another magnitude (more than 3x
 * apart, loss beside NDCG) on a right axis. The picture has a title, both axes with "nice" ticks
 * (1, 2, 5 x 10^k), axis labels, a grid and a legend below the plot naming run, model and metric.
 * The shell's `chart` draws the same series in the terminal and calls this command for
 * file=; -c and Lua (reclab.chart{...}) reach it directly.
 */
#include "host/host_internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum {
    CH_MAX_METRICS = 6,
    CH_MAX_RUNS = 8,
    CH_MAX_SERIES = 16,
};

typedef struct ch_series {
    int64_t run;
    char run_label[64]; /* "#3 mqsa" */
    char metric[64];    /* as asked: "valid.ndcg@10" */
    char shown[80];     /* the split found: "valid.ndcg@10" */
    int mi;             /* index of the metric (dash pattern, axis) */
    int ri;             /* index of the run (colour) */
    int axis;           /* 0 left, 1 right */
    int n;
    double *x, *y;
} ch_series;

typedef struct ch_chart {
    char title[160];
    char xlabel[32];
    char ylabel[2][160];
    int nmetrics;
    char metrics[CH_MAX_METRICS][64];
    int nseries;
    ch_series s[CH_MAX_SERIES];
} ch_chart;

static void chart_free(ch_chart *c)
{
    for (int i = 0; i < c->nseries; i++) {
        rlab_free(c->s[i].x);
        rlab_free(c->s[i].y);
    }
    c->nseries = 0;
}

/* ---- data ------------------------------------------------------------------------------- */

/* Split "valid.ndcg@10" into split "valid" and name "ndcg@10" when the store has that split;
 * else the whole text is the name and the split is chosen (valid, test, train, other). */
static int resolve_metric(rlab_db *db, int64_t run, const char *spec, char *split, size_t ss,
                          char *name, size_t ns, rlab_err *err)
{
    const char *dot = strchr(spec, '.');
    rlab_db_value p[3] = {{.type = RLAB_DB_INT, .i = run}};
    if (dot) {
        char sp[64];
        snprintf(sp, sizeof sp, "%.*s", (int)(dot - spec), spec);
        p[1] = (rlab_db_value){.type = RLAB_DB_TEXT, .s = dot + 1, .n = strlen(dot + 1)};
        p[2] = (rlab_db_value){.type = RLAB_DB_TEXT, .s = sp, .n = strlen(sp)};
        rlab_db_result *r = rlab_db_query_table(db,
                                                "SELECT count(*) FROM metrics WHERE run_id = ?1 "
                                                "AND name = ?2 AND split = ?3",
                                                p, 3, 0, err);
        int have = r && r->nrow && rlab_db_result_cell(r, 0, 0)->i > 0;
        rlab_db_result_free(r);
        if (have) {
            snprintf(split, ss, "%s", sp);
            snprintf(name, ns, "%s", dot + 1);
            return 1;
        }
    }
    p[1] = (rlab_db_value){.type = RLAB_DB_TEXT, .s = spec, .n = strlen(spec)};
    rlab_db_result *r = rlab_db_query_table(
        db,
        "SELECT COALESCE(split, '') FROM metrics WHERE run_id = ?1 AND name = ?2 GROUP BY split "
        "ORDER BY CASE split WHEN 'valid' THEN 0 WHEN 'test' THEN 1 WHEN 'train' THEN 2 ELSE 3 "
        "END LIMIT 1",
        p, 2, 0, err);
    int have = r && r->nrow;
    if (have) {
        snprintf(split, ss, "%s", rlab_db_result_cell(r, 0, 0)->s);
        snprintf(name, ns, "%s", spec);
    }
    rlab_db_result_free(r);
    return have;
}

static int add_series(rlab_ctx *ctx, rlab_db *db, ch_chart *c, int64_t run, const char *label,
                      int ri, int mi)
{
    rlab_err *err = rlab_ctx_err(ctx);
    char split[64], name[64];
    if (!resolve_metric(db, run, c->metrics[mi], split, sizeof split, name, sizeof name, err))
        return 0;
    rlab_db_value p[3] = {{.type = RLAB_DB_INT, .i = run},
                          {.type = RLAB_DB_TEXT, .s = name, .n = strlen(name)},
                          {.type = RLAB_DB_TEXT, .s = split, .n = strlen(split)}};
    rlab_db_result *r = rlab_db_query_table(db,
                                            "SELECT step, value FROM metrics WHERE run_id = ?1 "
                                            "AND name = ?2 AND COALESCE(split, '') = ?3 AND value "
                                            "IS NOT NULL ORDER BY step, id",
                                            p, 3, 0, err);
    if (!r)
        return -1;
    if (r->nrow == 0 || c->nseries >= CH_MAX_SERIES) {
        rlab_db_result_free(r);
        return 0;
    }
    ch_series *s = &c->s[c->nseries];
    memset(s, 0, sizeof *s);
    s->x = rlab_malloc((size_t)r->nrow * sizeof *s->x);
    s->y = rlab_malloc((size_t)r->nrow * sizeof *s->y);
    if (!s->x || !s->y) {
        rlab_free(s->x);
        rlab_free(s->y);
        rlab_db_result_free(r);
        rlab_ctx_errorf(ctx, RLAB_ENOMEM, "out of memory");
        return -1;
    }
    for (int i = 0; i < r->nrow; i++) {
        const rlab_db_value *st = rlab_db_result_cell(r, i, 0);
        const rlab_db_value *v = rlab_db_result_cell(r, i, 1);
        double y = v->type == RLAB_DB_INT ? (double)v->i : v->r;
        if (!isfinite(y))
            continue;
        s->x[s->n] = st->type == RLAB_DB_INT ? (double)st->i : (double)i;
        s->y[s->n] = y;
        s->n++;
    }
    rlab_db_result_free(r);
    s->run = run;
    s->mi = mi;
    s->ri = ri;
    snprintf(s->run_label, sizeof s->run_label, "%s", label);
    snprintf(s->metric, sizeof s->metric, "%s", c->metrics[mi]);
    if (split[0])
        snprintf(s->shown, sizeof s->shown, "%.15s.%.63s", split, name);
    else
        snprintf(s->shown, sizeof s->shown, "%s", name);
    c->nseries++;
    return 1;
}

/* "#3 mqsa": the run's model name (or kind), else its command ("#5 simulator.step"). */
static void run_label(rlab_db *db, int64_t run, char *buf, size_t cap, char *cmd, size_t ccap)
{
    rlab_err err = {0};
    rlab_db_value p = {.type = RLAB_DB_INT, .i = run};
    rlab_db_result *r = rlab_db_query_table(
        db,
        "SELECT COALESCE(json_extract(config, '$.name'), model_kind, json_extract(config, "
        "'$.model')), COALESCE(name, plugin, '') FROM runs WHERE id = ?1",
        &p, 1, 0, &err);
    const rlab_db_value *m = r && r->nrow ? rlab_db_result_cell(r, 0, 0) : NULL;
    const rlab_db_value *c = r && r->nrow ? rlab_db_result_cell(r, 0, 1) : NULL;
    const char *cs = c && c->type == RLAB_DB_TEXT ? c->s : "";
    if (m && m->type == RLAB_DB_TEXT) {
        const char *dot = strchr(m->s, '.'); /* "baselines.bprmf": the kind */
        snprintf(buf, cap, "#%lld %.40s", (long long)run, dot ? dot + 1 : m->s);
    } else
        snprintf(buf, cap, "#%lld%s%.40s", (long long)run, *cs ? " " : "", cs);
    snprintf(cmd, ccap, "%s", cs);
    rlab_db_result_free(r);
}

/* Parse "3,4,5" / "#3 #4" into ids. */
static int parse_runs(rlab_ctx *ctx, const char *s, int64_t *ids, int max)
{
    int n = 0;
    const char *p = s;
    while (p && *p) {
        while (*p == ',' || *p == ' ' || *p == '#')
            p++;
        if (!*p)
            break;
        char *end;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (errno || end == p || v <= 0 || (*end && *end != ',' && *end != ' '))
            return rlab_ctx_errorf(ctx, RLAB_EINVAL,
                                   "runs: '%s' is not a list of run ids (such as 3,4,5)", s);
        if (n >= max)
            return rlab_ctx_errorf(ctx, RLAB_EINVAL, "runs: at most %d runs in one chart", max);
        ids[n++] = v;
        p = end;
    }
    return n;
}

/* ---- ticks ---------------------------------------------------------------------------- */

/* A "nice" step (1, 2 or 5 x 10^k) giving about want intervals over [lo, hi]. */
static double nice_step(double lo, double hi, int want)
{
    double span = hi - lo;
    if (!(span > 0))
        return 1;
    double raw = span / want;
    double mag = pow(10, floor(log10(raw)));
    double f = raw / mag;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * mag;
}

/* Text of a tick value with as many decimals as the step needs. */
static void tick_text(double v, double step, char *buf, size_t cap)
{
    int dec = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    if (dec > 8)
        dec = 8;
    if (fabs(v) < step * 1e-6)
        v = 0;
    if (fabs(v) >= 1e6 || (fabs(v) > 0 && fabs(v) < 1e-4))
        snprintf(buf, cap, "%.2g", v);
    else
        snprintf(buf, cap, "%.*f", dec, v);
}

/* ---- SVG -------------------------------------------------------------------------------- */

static void xml_text(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '&':
            fputs("&amp;", f);
            break;
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        default:
            fputc(*s, f);
        }
    }
}

/* Okabe-Ito colours (distinct for colour-blind readers; yellow left out: faint on white). */
static const char *const colours[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7",
                                      "#E69F00", "#56B4E9", "#000000"};
static const char *const dashes[] = {"", "7 4", "2 3", "9 3 2 3", "4 4", "1 2"};
enum { NCOLOURS = 7, NDASHES = 6, NSHAPES = 7 };

/* Marker k at (x, y), radius r. */
static void marker(FILE *f, int k, double x, double y, double r, const char *col)
{
    switch (k % NSHAPES) {
    case 0: /* circle */
        fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" fill=\"%s\"/>", x, y, r, col);
        break;
    case 1: /* square */
        fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"/>",
                x - r * 0.9, y - r * 0.9, r * 1.8, r * 1.8, col);
        break;
    case 2: /* triangle up */
        fprintf(f, "<path d=\"M%.1f %.1fL%.1f %.1fL%.1f %.1fZ\" fill=\"%s\"/>", x, y - r * 1.2,
                x + r * 1.1, y + r * 0.8, x - r * 1.1, y + r * 0.8, col);
        break;
    case 3: /* diamond */
        fprintf(f, "<path d=\"M%.1f %.1fL%.1f %.1fL%.1f %.1fL%.1f %.1fZ\" fill=\"%s\"/>", x,
                y - r * 1.3, x + r * 1.1, y, x, y + r * 1.3, x - r * 1.1, y, col);
        break;
    case 4: /* triangle down */
        fprintf(f, "<path d=\"M%.1f %.1fL%.1f %.1fL%.1f %.1fZ\" fill=\"%s\"/>", x, y + r * 1.2,
                x + r * 1.1, y - r * 0.8, x - r * 1.1, y - r * 0.8, col);
        break;
    case 5: /* open circle */
        fprintf(f,
                "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" fill=\"white\" stroke=\"%s\" "
                "stroke-width=\"1.6\"/>",
                x, y, r, col);
        break;
    default: /* cross */
        fprintf(f,
                "<path d=\"M%.1f %.1fL%.1f %.1fM%.1f %.1fL%.1f %.1f\" stroke=\"%s\" "
                "stroke-width=\"2\"/>",
                x - r, y - r, x + r, y + r, x - r, y + r, x + r, y - r, col);
        break;
    }
}

typedef struct axis {
    int used;
    double lo, hi, step;
} axis;

/* Round the axis out to nice ticks; pad (y axes) keeps points off the frame. */
static void axis_fit(axis *a, double pad)
{
    if (!a->used)
        return;
    if (a->hi <= a->lo) {
        double d = fabs(a->lo) > 0 ? fabs(a->lo) * 0.1 : 0.5;
        a->lo -= d;
        a->hi += d;
    } else {
        double d = (a->hi - a->lo) * pad;
        a->lo -= d;
        a->hi += d;
    }
    a->step = nice_step(a->lo, a->hi, 5);
    a->lo = floor(a->lo / a->step) * a->step;
    a->hi = ceil(a->hi / a->step) * a->step;
}

static int write_svg(const ch_chart *c, const char *path, int W, int H, rlab_err *err)
{
    axis ax = {0}, ay[2] = {{0}, {0}};
    for (int i = 0; i < c->nseries; i++) {
        const ch_series *s = &c->s[i];
        axis *a = &ay[s->axis];
        for (int k = 0; k < s->n; k++) {
            if (!ax.used || s->x[k] < ax.lo)
                ax.lo = s->x[k];
            if (!ax.used || s->x[k] > ax.hi)
                ax.hi = s->x[k];
            ax.used = 1;
            if (!a->used || s->y[k] < a->lo)
                a->lo = s->y[k];
            if (!a->used || s->y[k] > a->hi)
                a->hi = s->y[k];
            a->used = 1;
        }
    }
    axis_fit(&ax, 0);
    if (ax.step < 1 && ax.hi - ax.lo >= 1) /* steps are integers: no 2.5 epochs */
        ax.step = 1;
    axis_fit(&ay[0], 0.03);
    axis_fit(&ay[1], 0.03);
    /* layout: title, plot, x label, legend rows (two entries a row on a wide picture) */
    int per_row = W >= 640 ? 2 : 1, rows = (c->nseries + per_row - 1) / per_row;
    double ml = 78, mr = ay[1].used ? 78 : 28, mt = 46, mb = 62 + 22.0 * rows;
    double pw = W - ml - mr, ph = H - mt - mb;
    if (ph < 80) {
        H = (int)(mt + mb + 80);
        ph = 80;
    }
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return rlab_errf(err, RLAB_EIO, "cannot write %s: %s", tmp, strerror(errno));
    fprintf(f,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 "
            "%d %d\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" font-size=\"13\">\n"
            "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
            W, H, W, H);
    fprintf(f,
            "<text x=\"%.1f\" y=\"26\" text-anchor=\"middle\" font-size=\"16\" "
            "font-weight=\"bold\">",
            ml + pw / 2);
    xml_text(f, c->title);
    fputs("</text>\n", f);
#define PX(v) (ml + ((v)-ax.lo) / (ax.hi - ax.lo) * pw)
#define PY(a, v) (mt + ph - ((v) - (a)->lo) / ((a)->hi - (a)->lo) * ph)
    /* grid and ticks */
    fputs("<g stroke=\"#dddddd\" stroke-width=\"1\">\n", f);
    for (double v = ax.lo; v <= ax.hi + ax.step * 1e-6; v += ax.step)
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", PX(v), mt, PX(v),
                mt + ph);
    for (double v = ay[0].lo; ay[0].used && v <= ay[0].hi + ay[0].step * 1e-6; v += ay[0].step)
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", ml, PY(&ay[0], v),
                ml + pw, PY(&ay[0], v));
    fputs("</g>\n", f);
    fprintf(f,
            "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" "
            "stroke=\"#333333\"/>\n",
            ml, mt, pw, ph);
    char t[64];
    fputs("<g fill=\"#222222\">\n", f);
    for (double v = ax.lo; v <= ax.hi + ax.step * 1e-6; v += ax.step) {
        tick_text(v, ax.step, t, sizeof t);
        fprintf(f,
                "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333333\"/>"
                "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n",
                PX(v), mt + ph, PX(v), mt + ph + 5, PX(v), mt + ph + 20, t);
    }
    for (int k = 0; k < 2; k++) {
        const axis *a = &ay[k];
        if (!a->used)
            continue;
        for (double v = a->lo; v <= a->hi + a->step * 1e-6; v += a->step) {
            tick_text(v, a->step, t, sizeof t);
            double xx = k ? ml + pw : ml;
            fprintf(f,
                    "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333333\"/>"
                    "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\">%s</text>\n",
                    xx, PY(a, v), k ? xx + 5 : xx - 5, PY(a, v), k ? xx + 8 : xx - 8,
                    PY(a, v) + 4.5, k ? "start" : "end", t);
        }
        /* axis label, rotated along the axis; one too long for it (several metrics) gives
         * way to "value (see the legend)" */
        double lx = k ? W - 14.0 : 18.0, ly = mt + ph / 2;
        const char *ylab =
            strlen(c->ylabel[k]) * 7.5 > ph ? "value (see the legend)" : c->ylabel[k];
        fprintf(f,
                "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" transform=\"rotate(%d "
                "%.1f %.1f)\">",
                lx, ly, k ? 90 : -90, lx, ly);
        xml_text(f, ylab);
        fputs("</text>\n", f);
    }
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", ml + pw / 2, mt + ph + 40);
    xml_text(f, c->xlabel);
    fputs("</text>\n</g>\n", f);
    /* colours tell runs apart; with one run, its series */
    int one_run = 1;
    for (int i = 1; i < c->nseries; i++)
        one_run &= c->s[i].ri == c->s[0].ri;
    /* the series: a line, then markers (at most about 30 a series) */
    for (int i = 0; i < c->nseries; i++) {
        const ch_series *s = &c->s[i];
        const axis *a = &ay[s->axis];
        const char *col = colours[(one_run ? i : s->ri) % NCOLOURS];
        const char *dash = dashes[s->mi % NDASHES];
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s%s%s points=\"", col,
                *dash ? " stroke-dasharray=\"" : "", dash, *dash ? "\"" : "");
        for (int k = 0; k < s->n; k++)
            fprintf(f, "%s%.1f,%.1f", k ? " " : "", PX(s->x[k]), PY(a, s->y[k]));
        fputs("\"/>\n<g>", f);
        int every = s->n > 30 ? (s->n + 29) / 30 : 1;
        for (int k = 0; k < s->n; k++)
            if (k % every == 0 || k == s->n - 1)
                marker(f, i, PX(s->x[k]), PY(a, s->y[k]), 3.6, col);
        fputs("</g>\n", f);
    }
    /* legend below the x label: line sample, marker, "#3 mqsa  valid.ndcg@10 (right axis)" */
    double colw = pw / per_row;
    for (int i = 0; i < c->nseries; i++) {
        const ch_series *s = &c->s[i];
        const char *col = colours[(one_run ? i : s->ri) % NCOLOURS];
        const char *dash = dashes[s->mi % NDASHES];
        double lx = ml + colw * (i % per_row), ly = mt + ph + 62 + 22.0 * (i / per_row);
        fprintf(f,
                "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                "stroke-width=\"2\"%s%s%s/>",
                lx, ly - 4, lx + 30, ly - 4, col, *dash ? " stroke-dasharray=\"" : "", dash,
                *dash ? "\"" : "");
        marker(f, i, lx + 15, ly - 4, 3.6, col);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\">", lx + 38, ly);
        xml_text(f, s->run_label);
        fputs("  ", f);
        xml_text(f, s->shown);
        if (s->axis)
            fputs(" (right axis)", f);
        fputs("</text>\n", f);
    }
#undef PX
#undef PY
    fputs("</svg>\n", f);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        unlink(tmp);
        return rlab_errf(err, RLAB_EIO, "cannot write %s", tmp);
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return rlab_errf(err, RLAB_EIO, "cannot rename %s to %s: %s", tmp, path, strerror(e));
    }
    return RLAB_OK;
}

/* ---- the command ------------------------------------------------------------------------ */

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Axes: the first metric on the left; a metric whose magnitude is more than 3x apart from
 * the first's goes right (all such share it). Labels name the metrics of each side. */
static void assign_axes(ch_chart *c)
{
    double mag[CH_MAX_METRICS] = {0};
    for (int i = 0; i < c->nseries; i++)
        for (int k = 0; k < c->s[i].n; k++)
            if (fabs(c->s[i].y[k]) > mag[c->s[i].mi])
                mag[c->s[i].mi] = fabs(c->s[i].y[k]);
    int right[CH_MAX_METRICS] = {0};
    for (int m = 1; m < c->nmetrics; m++) {
        double a = mag[0] > 0 ? mag[0] : 1e-12, b = mag[m] > 0 ? mag[m] : 1e-12;
        right[m] = a / b > 3 || b / a > 3;
    }
    for (int i = 0; i < c->nseries; i++)
        c->s[i].axis = right[c->s[i].mi];
    for (int side = 0; side < 2; side++) {
        size_t o = 0;
        c->ylabel[side][0] = '\0';
        for (int m = 0; m < c->nmetrics; m++) {
            if (right[m] != side)
                continue;
            const char *shown = c->metrics[m];
            for (int i = 0; i < c->nseries; i++)
                if (c->s[i].mi == m) {
                    shown = c->s[i].shown;
                    break;
                }
            int n = snprintf(c->ylabel[side] + o, sizeof c->ylabel[side] - o, "%s%s", o ? ", " : "",
                             shown);
            if (n < 0 || (size_t)n >= sizeof c->ylabel[side] - o)
                break;
            o += (size_t)n;
        }
    }
}

int rlab__cmd_chart(rlab_ctx *ctx, const rlab_args *args)
{
    rlab_db *db = rlab_ctx_db(ctx);
    if (!db)
        return rlab_ctx_errorf(ctx, RLAB_ESTATE, "no session store");
    const char *metrics = rlab_args_str(args, "metrics");
    const char *runs = rlab_args_str(args, "runs");
    const char *run = rlab_args_str(args, "run");
    const char *file = rlab_args_str(args, "file");
    const char *title = rlab_args_str(args, "title");
    ch_chart c;
    memset(&c, 0, sizeof c);
    /* the metrics */
    for (const char *p = metrics; p && *p;) {
        while (*p == ',' || *p == ' ')
            p++;
        size_t n = strcspn(p, ", ");
        if (!n)
            break;
        if (c.nmetrics >= CH_MAX_METRICS)
            return rlab_ctx_errorf(ctx, RLAB_EINVAL, "at most %d metrics in one chart",
                                   CH_MAX_METRICS);
        if (n >= sizeof c.metrics[0])
            return rlab_ctx_errorf(ctx, RLAB_EINVAL, "metric name '%.*s' is too long", (int)n, p);
        snprintf(c.metrics[c.nmetrics++], sizeof c.metrics[0], "%.*s", (int)n, p);
        p += n;
    }
    if (c.nmetrics == 0)
        return rlab_ctx_errorf(ctx, RLAB_EINVAL,
                               "which metric? chart METRIC[,METRIC...] [runs=3,4,5]");
    /* the runs */
    int64_t ids[CH_MAX_RUNS];
    int nr = 0;
    if (runs && *runs && run && *run)
        return rlab_ctx_errorf(ctx, RLAB_EINVAL, "give runs= or run=, not both");
    if ((runs && *runs) || (run && *run)) {
        nr = parse_runs(ctx, runs && *runs ? runs : run, ids, CH_MAX_RUNS);
        if (nr < 0)
            return rlab_ctx_err(ctx)->code;
    } else { /* the latest three runs that have the first metric; with several metrics the
                latest one alone (its metrics side by side) */
        const char *m = c.metrics[0], *dot = strchr(m, '.');
        rlab_db_value p[2] = {
            {.type = RLAB_DB_TEXT, .s = m, .n = strlen(m)},
            {.type = RLAB_DB_TEXT, .s = dot ? dot + 1 : m, .n = strlen(dot ? dot + 1 : m)}};
        rlab_db_result *r = rlab_db_query_table(
            db,
            c.nmetrics > 1 ? "SELECT DISTINCT run_id FROM metrics WHERE name = ?1 OR (name = ?2 "
                             "AND COALESCE(split, '') || '.' || name = ?1) ORDER BY run_id DESC "
                             "LIMIT 1"
                           : "SELECT DISTINCT run_id FROM metrics WHERE name = ?1 OR (name = ?2 "
                             "AND COALESCE(split, '') || '.' || name = ?1) ORDER BY run_id DESC "
                             "LIMIT 3",
            p, 2, 0, rlab_ctx_err(ctx));
        if (!r)
            return rlab_ctx_err(ctx)->code;
        for (int i = r->nrow - 1; i >= 0; i--) /* oldest first */
            ids[nr++] = rlab_db_result_cell(r, i, 0)->i;
        rlab_db_result_free(r);
        if (nr == 0)
            return rlab_ctx_errorf(ctx, RLAB_ENOTFOUND, "no run has a metric '%s'", m);
    }
    /* the series: every (run, metric) that has points */
    int train = 0, sim = 0, rc = RLAB_OK;
    for (int i = 0; i < nr && rc == RLAB_OK; i++) {
        char label[64], cmd[64];
        run_label(db, ids[i], label, sizeof label, cmd, sizeof cmd);
        train += !strncmp(cmd, "train", 5) || strstr(cmd, ".train") != NULL;
        sim += strstr(cmd, "simulator") != NULL;
        int any = 0;
        for (int m = 0; m < c.nmetrics; m++) {
            int got = add_series(ctx, db, &c, ids[i], label, i, m);
            if (got < 0)
                rc = rlab_ctx_err(ctx)->code ? rlab_ctx_err(ctx)->code : RLAB_EDB;
            any |= got > 0;
        }
        if (!any && rc == RLAB_OK)
            rlab_ctx_printf(ctx, "run #%lld has none of the metrics (%s)", (long long)ids[i],
                            metrics);
    }
    if (rc == RLAB_OK && c.nseries == 0)
        rc = rlab_ctx_errorf(ctx, RLAB_ENOTFOUND, "nothing to draw: no run of %d has '%s'", nr,
                             metrics);
    if (rc) {
        chart_free(&c);
        return rc;
    }
    snprintf(c.xlabel, sizeof c.xlabel, "%s", train == nr ? "epoch" : sim == nr ? "round" : "step");
    assign_axes(&c);
    if (title && *title)
        snprintf(c.title, sizeof c.title, "%s", title);
    else /* "valid.ndcg@10, train.loss" */
        for (int m = 0, o = 0; m < c.nmetrics && o >= 0 && o < (int)sizeof c.title; m++)
            o += snprintf(c.title + o, sizeof c.title - (size_t)o, "%s%s", m ? ", " : "",
                          c.metrics[m]);
    /* the result: one line per series, the points as the table "series" */
    rlab_table *t = rlab_ctx_result_table(
        ctx, "series", 5, (const char *const[]){"run", "label", "metric", "step", "value"});
    for (int i = 0; i < c.nseries; i++) {
        const ch_series *s = &c.s[i];
        int best = 0;
        for (int k = 1; k < s->n; k++)
            if (s->y[k] > s->y[best])
                best = k;
        rlab_ctx_printf(ctx, "%-20s %-18s %4d points, last %.4g at %s %g, max %.4g at %g%s",
                        s->run_label, s->shown, s->n, s->y[s->n - 1], c.xlabel, s->x[s->n - 1],
                        s->y[best], s->x[best], s->axis ? " (right axis)" : "");
        for (int k = 0; t && k < s->n; k++)
            rlab_table_add_row(t, "lsslf", s->run, s->run_label, s->shown, (int64_t)s->x[k],
                               s->y[k]);
    }
    if (file && *file) {
        if (!ends_with(file, ".svg")) {
            chart_free(&c);
            return rlab_ctx_errorf(ctx, RLAB_EINVAL,
                                   "file=%s: charts are written as SVG (file=NAME.svg); convert "
                                   "it to PNG with rsvg-convert or a browser",
                                   file);
        }
        int W = (int)rlab_args_int(args, "width"), H = (int)rlab_args_int(args, "height");
        rc = write_svg(&c, file, W, H, rlab_ctx_err(ctx));
        if (rc == RLAB_OK) {
            rlab_ctx_printf(ctx, "wrote %s (%dx%d, %d series)", file, W, H, c.nseries);
            rlab_ctx_result_str(ctx, "file", file);
        }
    }
    rlab_ctx_result_int(ctx, "series_count", c.nseries);
    chart_free(&c);
    return rc;
}

const rlab_arg rlab__chart_args[] = {
    {.name = "metrics",
     .type = RLAB_ARG_STRING,
     .flags = RLAB_ARGF_REQUIRED,
     .help = "metrics, comma-separated: name (ndcg@10, loss, watches) or split.name "
             "(valid.ndcg@10, train.loss)"},
    {.name = "runs", .type = RLAB_ARG_STRING, .help = "runs, comma-separated (3,4,5)"},
    {.name = "run", .type = RLAB_ARG_STRING, .help = "one run (the same as runs= with one id)"},
    {.name = "file", .type = RLAB_ARG_PATH, .help = "write the chart as an SVG picture"},
    {.name = "title",
     .type = RLAB_ARG_STRING,
     .help = "the picture's title (default: the metrics)"},
    {.name = "width",
     .type = RLAB_ARG_INT,
     .def = "800",
     .min = 320,
     .max = 4000,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
     .help = "picture width in pixels"},
    {.name = "height",
     .type = RLAB_ARG_INT,
     .def = "500",
     .min = 240,
     .max = 3000,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
     .help = "picture height in pixels"},
    {0}};
