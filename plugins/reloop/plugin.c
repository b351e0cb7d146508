/*
 * plugins/reloop/plugin.c: the reloop plugin descriptor and its commands.
 *
 *   reloop.stream data=D [base=mf|MODEL | train="KIND k=v..."] [periods=10]
 *                 [cut=count|time] [threshold=4] [neg=0] [lambda=1] [tables=4] [bits=10]
 *                 [fifo=0] [k=16] [tau=0.1] [decay=0.7] [cap=16384] [min_err=0] [shrink=5]
 *                 [refresh=256] [dim=16] [epochs=10] [lr=0.05] [lr_inc=0.02] [l2=1e-4]
 *                 [drift=0] [tol=0.01] [seed=42]
 *   reloop.ctr file=PATH [preset=criteo|criteo_sample|avazu|tiny_mtl|census] [label=NAME]
 *                 and the same memory / base / replay arguments (base: a factorisation machine)
 *
 * One job replays D in time order (stream.c). Period 0 fits the slow learner (base.c); every
 * later period is first predicted, then learnt from, by four variants side by side:
 *
 *   frozen       the base as fitted on period 0
 *   incremental  a copy of the base that takes one SGD pass over each period after predicting it
 *   memory       the frozen base + an error memory (memory.c) keyed on its hidden vectors
 *   meminc       the incremental base + its own error memory
 *
 * Inside a period, labels arrive in chunks of `refresh` rows: a chunk is predicted with the
 * memory as it is, then its errors y - p (of the variant's base) are written. Measures per
 * period (AUC and log loss, core/eval/ctr.h) go to the run's metrics with step = period,
 * split "stream", names auc_<variant> / logloss_<variant> (`chart auc_memory` draws one,
 * `chart auc_frozen,auc_incremental,auc_memory,auc_meminc` all four, live from the progress
 * reports while the job runs), and to the result table "reloop".
 */
#include "reloop.h"
#include "eval/ctr.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

enum { V_FROZEN, V_INC, V_MEM, V_MEMINC, NV };
static const char *const vnames[NV] = {"frozen", "incremental", "memory", "meminc"};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* CPU time of this thread: lookup and prediction costs that other jobs on a shared machine do
 * not inflate (wall time would). */
static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static float clip01(double p)
{
    const double e = 1e-6;
    return (float)(p < e ? e : (p > 1.0 - e ? 1.0 - e : p));
}

typedef struct run_state {
    reloop_stream s;
    reloop_base *base[2]; /* frozen, incremental */
    reloop_mem *mem[2];   /* keyed on base[0], base[1] */
    float *p[NV];         /* [rows of the largest period] */
    float *h[2];          /* [rows][K] */
    double *auc, *ll;     /* [periods][NV] */
} run_state;

static void run_clear(run_state *r)
{
    reloop_stream_clear(&r->s);
    for (int i = 0; i < 2; i++) {
        reloop_base_free(r->base[i]);
        reloop_mem_free(r->mem[i]);
        rlab_free(r->h[i]);
    }
    for (int v = 0; v < NV; v++)
        rlab_free(r->p[v]);
    rlab_free(r->auc);
    rlab_free(r->ll);
}

static reloop_base_opts base_opts(const rlab_args *args)
{
    return (reloop_base_opts){.dim = (int)rlab_args_int(args, "dim"),
                              .epochs = (int)rlab_args_int(args, "epochs"),
                              .lr = (float)rlab_args_float(args, "lr"),
                              .lr_inc = (float)rlab_args_float(args, "lr_inc"),
                              .l2 = (float)rlab_args_float(args, "l2"),
                              .seed = (uint64_t)rlab_args_int(args, "seed")};
}

/* Fit base0 (the caller's new base over R->s) on period 0, clone it, and replay periods
 * 1..P-1 with the four variants; what = the data and base for the log line. Clears R. */
static int replay(rlab_ctx *ctx, const rlab_args *args, run_state *Rp, const char *what);

/* The interactions of period 0 (rows that are interactions, not sampled negatives) as a new
 * dataset `name` with ds's user and item vocabularies (same dense indices), handed to the
 * session; then `train KIND data=name split=none ...` through the host's verb registers the
 * model `name`. The base model so never sees a replayed period. */
static int train_on_period0(rlab_ctx *ctx, const rlab_dataset *ds, const reloop_stream *s,
                            const char *spec, const char *name, uint64_t seed)
{
    rlab_err *err = rlab_ctx_err(ctx);
    rlab_dataset *d0 = rlab_dataset_new(name, err);
    if (!d0)
        return err->code;
    int ok = 1;
    for (int32_t u = 0; ok && u < ds->users.n; u++) {
        const char *nm = rlab_vocab_name(&ds->users, u);
        ok = rlab_vocab_add(&d0->users, nm, strlen(nm)) == u;
    }
    for (int32_t i = 0; ok && i < ds->items.n; i++) {
        const char *nm = rlab_vocab_name(&ds->items, i);
        ok = rlab_vocab_add(&d0->items, nm, strlen(nm)) == i;
    }
    for (int64_t r = 0; ok && r < s->start[1]; r += s->per)
        ok = rlab_inter_push(&d0->inter, s->user[r], s->item[r], s->ts[r], 1.0f, NULL) == RLAB_OK;
    if (!ok) {
        rlab_dataset_free(d0);
        return rlab_ctx_errorf(ctx, RLAB_ENOMEM, "out of memory");
    }
    d0->inter.flags = RLAB_INTER_HAS_TS;
    snprintf(d0->format, sizeof d0->format, "%s", "reloop-p0");
    snprintf(d0->source, sizeof d0->source, "reloop.stream: period 0 of %s", ds->name);
    int rc = rlab_ctx_add_dataset(ctx, d0);
    if (rc)
        return rc;
    char line[1024];
    const char *sp = strchr(spec, ' ');
    int n = snprintf(line, sizeof line,
                     "train %.*s data=%s name=%s split=none eval_every=0 eval_test=false seed=%llu "
                     "%s",
                     sp ? (int)(sp - spec) : (int)strlen(spec), spec, name, name,
                     (unsigned long long)seed, sp ? sp + 1 : "");
    if (n >= (int)sizeof line)
        return rlab_ctx_errorf(ctx, RLAB_EINVAL, "train= is too long");
    return rlab_ctx_call_line(ctx, line, NULL);
}

static int stream_run(rlab_ctx *ctx, const rlab_args *args)
{
    rlab_err *err = rlab_ctx_err(ctx);
    const rlab_dataset *ds = rlab_ctx_dataset(ctx, rlab_args_str(args, "data"));
    if (!ds)
        return RLAB_ENOTFOUND;
    const char *bname = rlab_args_str(args, "base");
    const char *train = rlab_args_str(args, "train");
    const uint64_t seed = (uint64_t)rlab_args_int(args, "seed");
    const int do_train = train && train[0];
    if (do_train && rlab_args_given(args, "base"))
        return rlab_ctx_errorf(ctx, RLAB_EINVAL,
                               "give base= (a registered model) or train= (a kind trained on "
                               "period 0), not both");
    const rlab_model *wm = NULL;
    if (!do_train && strcmp(bname, "mf") != 0) {
        wm = rlab_ctx_model(ctx, bname);
        if (!wm)
            return RLAB_ENOTFOUND;
    }

    run_state R = {0};
    reloop_stream_opts so = {.periods = (int)rlab_args_int(args, "periods"),
                             .cut = rlab_args_choice(args, "cut"),
                             .threshold = (float)rlab_args_float(args, "threshold"),
                             .neg = (int)rlab_args_int(args, "neg"),
                             .seed = seed};
    int rc = reloop_stream_build(ds, &so, &R.s, err);
    if (rc)
        return rc;
    if (do_train) {
        char name[64];
        if (snprintf(name, sizeof name, "%s.p0", ds->name) >= (int)sizeof name) {
            reloop_stream_clear(&R.s);
            return rlab_ctx_errorf(ctx, RLAB_EINVAL, "dataset name too long for its period 0");
        }
        rc = train_on_period0(ctx, ds, &R.s, train, name, seed);
        if (rc == RLAB_OK && !(wm = rlab_ctx_model(ctx, name)))
            rc = RLAB_ENOTFOUND;
        if (rc) {
            reloop_stream_clear(&R.s);
            return rc;
        }
    }
    char kind[80]; /* the run's model kind: "reloop-mf", "reloop-bprmf"... (not the wrapped
                      kind alone: the run lists would read as a training run of it) */
    snprintf(kind, sizeof kind, "reloop-%.63s", wm ? wm->kind : "mf");
    rlab_ctx_run_describe(ctx, kind, NULL);
    reloop_base_opts bo = base_opts(args);
    R.base[0] = wm ? reloop_base_new_wrap(wm, &bo, err)
                   : reloop_base_new_mf(R.s.n_users, R.s.n_items, &bo, err);
    if (!R.base[0]) {
        run_clear(&R);
        return err->code;
    }
    char what[192];
    snprintf(what, sizeof what, "%s, base %s", ds->name, wm ? wm->name : "mf");
    return replay(ctx, args, &R, what);
}

static int ctr_run(rlab_ctx *ctx, const rlab_args *args)
{
    rlab_err *err = rlab_ctx_err(ctx);
    const char *path = rlab_args_str(args, "file");
    const char *preset = rlab_args_str(args, "preset");
    rlab_tabular *t = NULL;
    int rc = rlab_tabular_load_preset(preset, path, NULL, &t, err);
    if (rc)
        return rc;
    const char *lname = rlab_args_str(args, "label");
    int label = lname && lname[0] ? rlab_tabular_label(t, lname) : 0;
    if (label < 0) {
        rc = rlab_ctx_errorf(ctx, RLAB_EINVAL, "samples '%s' have no label '%s'", t->name, lname);
        rlab_tabular_free(t);
        return rc;
    }
    rlab_ctx_run_describe(ctx, "reloop-fm", NULL);
    run_state R = {0};
    reloop_stream_opts so = {.periods = (int)rlab_args_int(args, "periods"),
                             .cut = rlab_args_choice(args, "cut"),
                             .seed = (uint64_t)rlab_args_int(args, "seed")};
    rc = reloop_stream_build_tab(t, label, &so, &R.s, err);
    reloop_base_opts bo = base_opts(args);
    if (rc == RLAB_OK && !(R.base[0] = reloop_base_new_fm(t, &bo, err)))
        rc = err->code;
    if (rc) {
        run_clear(&R);
        rlab_tabular_free(t);
        return rc;
    }
    char what[192];
    snprintf(what, sizeof what, "%s (%s, %d fields, %d numeric), base fm", t->name, preset,
             t->nfields, t->nnum);
    rc = replay(ctx, args, &R, what);
    rlab_tabular_free(t);
    return rc;
}

static int replay(rlab_ctx *ctx, const rlab_args *args, run_state *Rp, const char *what)
{
    rlab_err *err = rlab_ctx_err(ctx);
    run_state R = *Rp;
    const reloop_stream *s = &R.s;
    const int P = s->periods;
    const uint64_t seed = (uint64_t)rlab_args_int(args, "seed");
    reloop_base_opts bo = base_opts(args);
    double t0 = now_s(), fit_loss = 0.0;
    int rc = reloop_base_fit(R.base[0], s, s->start[0], s->start[1], bo.epochs, bo.lr,
                             seed ^ 0x5eed, &fit_loss, err);
    R.base[1] = rc ? NULL : reloop_base_clone(R.base[0], err);
    if (rc || !R.base[1]) {
        run_clear(&R);
        return err->code;
    }
    rlab_ctx_printf(ctx,
                    "%s: %lld samples (%s), %d periods (cut=%s); base fitted on period 0 (%lld "
                    "rows) in %.2f s, train log loss %.4f",
                    what, (long long)s->n, s->labels_from, P,
                    rlab_args_choice(args, "cut") ? "time" : "count",
                    (long long)(s->start[1] - s->start[0]), now_s() - t0, fit_loss);

    /* the two memories */
    const int K = reloop_base_key_dim(R.base[0]);
    reloop_mem_opts mo = reloop_mem_defaults(K);
    mo.tables = (int)rlab_args_int(args, "tables");
    mo.bits = (int)rlab_args_int(args, "bits");
    mo.fifo = (int)rlab_args_int(args, "fifo");
    mo.k = (int)rlab_args_int(args, "k");
    mo.tau = (float)rlab_args_float(args, "tau");
    mo.decay = (float)rlab_args_float(args, "decay");
    mo.cap = rlab_args_int(args, "cap");
    mo.min_err = (float)rlab_args_float(args, "min_err");
    mo.shrink = (float)rlab_args_float(args, "shrink");
    mo.seed = seed ^ 0x10ca1;
    const double lambda = rlab_args_float(args, "lambda");
    const int64_t refresh = rlab_args_int(args, "refresh");
    int64_t maxn = 0;
    for (int p = 1; p < P; p++)
        if (s->start[p + 1] - s->start[p] > maxn)
            maxn = s->start[p + 1] - s->start[p];
    for (int i = 0; i < 2 && rc == RLAB_OK; i++) {
        R.mem[i] = reloop_mem_new(&mo, err);
        R.h[i] = rlab_malloc((size_t)maxn * (size_t)K * sizeof(float));
        if (!R.mem[i])
            rc = err->code;
        else if (!R.h[i])
            rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
    }
    for (int v = 0; v < NV && rc == RLAB_OK; v++)
        if (!(R.p[v] = rlab_malloc((size_t)maxn * sizeof(float))))
            rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
    R.auc = rlab_calloc((size_t)P * NV, sizeof(double));
    R.ll = rlab_calloc((size_t)P * NV, sizeof(double));
    if (rc == RLAB_OK && (!R.auc || !R.ll))
        rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
    if (rc) {
        run_clear(&R);
        return rc;
    }

    static const char *const cols[] = {"period",          "rows",       "pos",        "auc_frozen",
                                       "auc_incremental", "auc_memory", "auc_meminc", "ll_frozen",
                                       "ll_incremental",  "ll_memory",  "ll_meminc"};
    rlab_table *tab = rlab_ctx_result_table(ctx, "reloop", 11, cols);
    rlab_ctx_printf(ctx, "period   rows   pos | AUC frozen   incr  memory  mem+inc | logloss "
                         "frozen   incr  memory  mem+inc");
    double t_lookup = 0.0, t_predict = 0.0;
    int64_t n_lookup = 0, n_hit = 0;
    for (int p = 1; p < P && rc == RLAB_OK; p++) {
        if (rlab_ctx_cancelled(ctx)) {
            rc = RLAB_ECANCELED;
            break;
        }
        const int64_t lo = s->start[p], hi = s->start[p + 1], n = hi - lo;
        double tp = cpu_s();
        for (int i = 0; i < 2 && rc == RLAB_OK; i++)
            rc = reloop_base_predict(R.base[i], s, lo, hi, R.p[i == 0 ? V_FROZEN : V_INC], R.h[i],
                                     err);
        t_predict += cpu_s() - tp;
        if (rc)
            break;
        /* labels arrive in chunks: predict a chunk with the memory as it is, then write it */
        for (int64_t c0 = 0; c0 < n; c0 += refresh) {
            int64_t c1 = c0 + refresh < n ? c0 + refresh : n;
            double tl = cpu_s();
            for (int i = 0; i < 2; i++) {
                const float *pb = R.p[i == 0 ? V_FROZEN : V_INC];
                float *pm = R.p[i == 0 ? V_MEM : V_MEMINC];
                for (int64_t r = c0; r < c1; r++) {
                    double e;
                    int nc;
                    reloop_mem_lookup(R.mem[i], R.h[i] + (size_t)r * (size_t)K, &e, &nc);
                    pm[r] = clip01((double)pb[r] + lambda * e);
                    n_hit += nc > 0;
                }
            }
            t_lookup += cpu_s() - tl;
            n_lookup += 2 * (c1 - c0);
            for (int i = 0; i < 2; i++) {
                const float *pb = R.p[i == 0 ? V_FROZEN : V_INC];
                for (int64_t r = c0; r < c1; r++)
                    reloop_mem_insert(R.mem[i], R.h[i] + (size_t)r * (size_t)K,
                                      (float)s->label[lo + r] - pb[r]);
            }
        }
        int64_t pos = 0;
        for (int64_t r = lo; r < hi; r++)
            pos += s->label[r];
        rlab_metric pm[NV];
        char mn[NV][32];
        for (int v = 0; v < NV && rc == RLAB_OK; v++) {
            double *a = &R.auc[(size_t)p * NV + v], *l = &R.ll[(size_t)p * NV + v];
            if (pos == 0 || pos == n) {
                *a = (double)NAN; /* one class only: AUC undefined */
            } else if ((rc = rlab_eval_auc(R.p[v], s->label + lo, n, a, err)) != RLAB_OK) {
                break;
            }
            if ((rc = rlab_eval_logloss(R.p[v], s->label + lo, n, 0.0, l, err)) != RLAB_OK)
                break;
            char nm[32];
            snprintf(mn[v], sizeof mn[v], "auc_%s", vnames[v]);
            pm[v] = (rlab_metric){mn[v], *a};
            if (!isnan(*a))
                rc = rlab_ctx_metric(ctx, p, "stream", mn[v], "full", *a);
            snprintf(nm, sizeof nm, "logloss_%s", vnames[v]);
            if (rc == RLAB_OK)
                rc = rlab_ctx_metric(ctx, p, "stream", nm, "full", *l);
        }
        if (rc)
            break;
        const double *A = &R.auc[(size_t)p * NV], *L = &R.ll[(size_t)p * NV];
        rlab_ctx_printf(ctx, "%6d %6lld %5.3f | %6.4f %6.4f %7.4f %8.4f | %13.4f %6.4f %7.4f %8.4f",
                        p, (long long)n, (double)pos / (double)n, A[0], A[1], A[2], A[3], L[0],
                        L[1], L[2], L[3]);
        if (tab)
            rlab_table_add_row(tab, "ilfffffffff", p, (int64_t)n, (double)pos / (double)n, A[0],
                               A[1], A[2], A[3], L[0], L[1], L[2], L[3]);
        rlab_ctx_progress(ctx, p, P - 1, "period", NV, pm);
        /* the incremental bases learn the period after predicting it */
        rc = reloop_base_sgd(R.base[1], s, lo, hi, bo.lr_inc, NULL, err);
        reloop_mem_tick(R.mem[0]);
        reloop_mem_tick(R.mem[1]);
    }
    if (rc) {
        run_clear(&R);
        return rc;
    }

    /* averages over periods 1..P-1 */
    double mean_a[NV] = {0}, mean_l[NV] = {0};
    int na[NV] = {0};
    for (int v = 0; v < NV; v++) {
        for (int p = 1; p < P; p++) {
            double a = R.auc[(size_t)p * NV + v];
            if (!isnan(a)) {
                mean_a[v] += a;
                na[v]++;
            }
            mean_l[v] += R.ll[(size_t)p * NV + v];
        }
        mean_a[v] = na[v] ? mean_a[v] / na[v] : (double)NAN;
        mean_l[v] /= (double)(P - 1);
        char nm[48];
        snprintf(nm, sizeof nm, "mean_auc_%s", vnames[v]);
        rlab_ctx_result_float(ctx, nm, mean_a[v]);
        if (!isnan(mean_a[v]))
            rlab_ctx_metric(ctx, P, "summary", nm, "full", mean_a[v]);
        snprintf(nm, sizeof nm, "mean_logloss_%s", vnames[v]);
        rlab_ctx_result_float(ctx, nm, mean_l[v]);
        rlab_ctx_metric(ctx, P, "summary", nm, "full", mean_l[v]);
    }
    rlab_ctx_printf(ctx, "  mean        | %6.4f %6.4f %7.4f %8.4f | %13.4f %6.4f %7.4f %8.4f",
                    mean_a[0], mean_a[1], mean_a[2], mean_a[3], mean_l[0], mean_l[1], mean_l[2],
                    mean_l[3]);
    if (tab)
        rlab_table_add_row(tab, "s--ffffffff", "mean", mean_a[0], mean_a[1], mean_a[2], mean_a[3],
                           mean_l[0], mean_l[1], mean_l[2], mean_l[3]);

    /* recovery after a known drift: periods after the drift's period until AUC is back within
     * tol of the variant's mean over the (up to) two periods before it */
    const int64_t drift = rlab_args_int(args, "drift");
    const double tol = rlab_args_float(args, "tol");
    if (drift > 0) {
        int d = reloop_stream_period_of(s, drift);
        rlab_ctx_result_int(ctx, "drift_period", d);
        if (d < 2) {
            rlab_ctx_printf(ctx, "drift at %lld falls in period %d: no replayed period before it",
                            (long long)drift, d);
        } else {
            char line[256];
            int off = snprintf(line, sizeof line, "drift in period %d; periods to recover:", d);
            for (int v = 0; v < NV; v++) {
                double pre = 0.0;
                int np = 0;
                for (int p = d - 2 > 1 ? d - 2 : 1; p < d; p++)
                    if (!isnan(R.auc[(size_t)p * NV + v])) {
                        pre += R.auc[(size_t)p * NV + v];
                        np++;
                    }
                pre = np ? pre / np : (double)NAN;
                int rec = -1;
                double post = 0.0;
                for (int p = d; p < P; p++) {
                    double a = R.auc[(size_t)p * NV + v];
                    post += isnan(a) ? 0.0 : a;
                    if (rec < 0 && !isnan(a) && a >= pre - tol)
                        rec = p - d;
                }
                post /= (double)(P - d);
                char nm[48];
                snprintf(nm, sizeof nm, "recover_%s", vnames[v]);
                rlab_ctx_result_int(ctx, nm, rec);
                rlab_ctx_metric(ctx, P, "summary", nm, "", (double)rec);
                snprintf(nm, sizeof nm, "post_drift_auc_%s", vnames[v]);
                rlab_ctx_result_float(ctx, nm, post);
                rlab_ctx_metric(ctx, P, "summary", nm, "full", post);
                if (off < (int)sizeof line)
                    off += snprintf(line + off, sizeof line - (size_t)off, " %s %s%d", vnames[v],
                                    rec < 0 ? "never " : "", rec < 0 ? P - d : rec);
            }
            rlab_ctx_printf(ctx, "%s (tol %.3f; 'never N' = not within the %d periods left)", line,
                            tol, P - d);
        }
    }

    /* the memory's size and speed */
    reloop_mem_stats st;
    reloop_mem_get_stats(R.mem[0], &st);
    double lat_ns = n_lookup ? 1e9 * t_lookup / (double)n_lookup : 0.0;
    rlab_ctx_result_int(ctx, "mem_buckets", st.buckets);
    rlab_ctx_result_int(ctx, "mem_entries", st.entries);
    rlab_ctx_result_int(ctx, "mem_bytes", st.bytes);
    rlab_ctx_result_float(ctx, "lookup_ns", lat_ns);
    rlab_ctx_result_float(ctx, "hit_rate", n_lookup ? (double)n_hit / (double)n_lookup : 0.0);
    rlab_ctx_metric(ctx, P, "summary", "mem_bytes", "", (double)st.bytes);
    rlab_ctx_metric(ctx, P, "summary", "lookup_ns", "", lat_ns);
    rlab_ctx_printf(
        ctx,
        "memory: %lld buckets, %lld entries, %.1f KiB; %lld lookups, %.0f ns each "
        "(hit %.1f%%), base prediction %.0f ns per row (thread CPU time)",
        (long long)st.buckets, (long long)st.entries, (double)st.bytes / 1024.0,
        (long long)n_lookup, lat_ns, n_lookup ? 100.0 * (double)n_hit / (double)n_lookup : 0.0,
        1e9 * t_predict / (double)(s->n - s->start[1] > 0 ? 2 * (s->n - s->start[1]) : 1));
    run_clear(&R);
    return RLAB_OK;
}

static const char *const cut_choices[] = {"count", "time", NULL};

/* The arguments both commands take (memory, base, replay). */
#define RELOOP_COMMON_ARGS                                                                         \
    {.name = "periods",                                                                            \
     .type = RLAB_ARG_INT,                                                                         \
     .def = "10",                                                                                  \
     .min = 2,                                                                                     \
     .max = 1000,                                                                                  \
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,                                                       \
     .help = "periods (0 fits the base, 1.. are replayed)"},                                       \
        {.name = "cut",                                                                            \
         .type = RLAB_ARG_CHOICE,                                                                  \
         .def = "count",                                                                           \
         .choices = cut_choices,                                                                   \
         .help = "equal numbers of interactions or equal time spans"},                             \
        {.name = "lambda",                                                                         \
         .type = RLAB_ARG_FLOAT,                                                                   \
         .def = "1",                                                                               \
         .min = 0,                                                                                 \
         .max = 10,                                                                                \
         .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,                                                   \
         .help = "compensation strength: p' = p + lambda * e_hat"},                                \
        {.name = "tables",                                                                         \
         .type = RLAB_ARG_INT,                                                                     \
         .def = "4",                                                                               \
         .min = 1,                                                                                 \
         .max = RELOOP_MAX_TABLES,                                                                 \
         .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,                                                   \
         .help = "LSH tables R"},                                                                  \
        {.name = "bits",                                                                           \
         .type = RLAB_ARG_INT,                                                                     \
         .def = "10",                                                                              \
         .min = 1,                                                                                 \
         .max = RELOOP_MAX_BITS,                                                                   \
         .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,                                                   \
         .help = "SimHash bits b per table"},                                                      \
        {.name = "fifo",                                                                           \
         .type = RLAB_ARG_INT,                                                                     \
         .def = "0",                                                                               \
         .min = 0,                                                                                 \
         .max = RELOOP_MAX_FIFO,                                                                   \
         .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,                                                   \
         .help = "0: buckets aggregate sums; F: buckets keep their last F samples"},               \
        {.name = "k",                                                                              \
         .type = RLAB_ARG_INT,                                                                     \
         .def = "16",                                                                              \
         .min = 1,                                                                                 \
         .max = RELOOP_MAX_K,                                                                      \
         .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,                                                   \
         .help = "top-k similar candidates"},                                                      \
        {.name = "tau",                                                                            \
         .type = RLAB_ARG_FLOAT,                                                                   \
         .def = "0.1",                                                                             \
         .min = 1e-4,                                                                              \
         .max = 100,                                                                               \
         .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,                                                   \
         .help = "softmax temperature over cosine similarity"},                                    \
        {.name = "decay",                                                                          \
         .type = RLAB_ARG_FLOAT,                                                                   \
         .def = "0.7",                                                                             \
         .min = 1e-3,                                                                              \
         .max = 1,                                                                                 \
         .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,                                                   \
         .help = "weight of an entry per period of age"},                                          \
        {.name = "cap",                                                                            \
         .type = RLAB_ARG_INT,                                                                     \
         .def = "16384",                                                                           \
         .min = 1,                                                                                 \
         .max = 1 << 26,                                                                           \
         .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,                                                   \
         .help = "most buckets held (the oldest is recycled)"},                                    \
        {.name = "min_err",                                                                        \
         .type = RLAB_ARG_FLOAT,                                                                   \
         .def = "0",                                                                               \
         .min = 0,                                                                                 \
         .max = 1,                                                                                 \
         .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,                                                   \
         .help = "store only samples with |y - p| >= min_err"},                                    \
        {.name = "shrink",                                                                         \
         .type = RLAB_ARG_FLOAT,                                                                   \
         .def = "5",                                                                               \
         .min = 0,                                                                                 \
         .max = 1e9,                                                                               \
         .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,                                                   \
         .help = "pseudo-count of zero error in the estimate (0 = plain weighted average)"},       \
        {.name = "refresh",                                                                        \
         .type = RLAB_ARG_INT,                                                                     \
         .def = "256",                                                                             \
         .min = 1,                                                                                 \
         .flags = RLAB_ARGF_MIN,                                                                   \
         .help = "rows per label chunk (the memory is written after each chunk)"},                 \
        {.name = "dim",                                                                            \
         .type = RLAB_ARG_INT,                                                                     \
         .def = "16",                                                                              \
         .min = 1,                                                                                 \
         .max = 1024,                                                                              \
         .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,                                                   \
         .help = "factors of the mf base"},                                                        \
        {.name = "epochs",                                                                         \
         .type = RLAB_ARG_INT,                                                                     \
         .def = "10",                                                                              \
         .min = 1,                                                                                 \
         .max = 10000,                                                                             \
         .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,                                                   \
         .help = "passes over period 0"},                                                          \
        {.name = "lr",                                                                             \
         .type = RLAB_ARG_FLOAT,                                                                   \
         .def = "0.05",                                                                            \
         .min = 0,                                                                                 \
         .max = 10,                                                                                \
         .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,                                                   \
         .help = "SGD step on period 0"},                                                          \
        {.name = "lr_inc",                                                                         \
         .type = RLAB_ARG_FLOAT,                                                                   \
         .def = "0.02",                                                                            \
         .min = 0,                                                                                 \
         .max = 10,                                                                                \
         .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,                                                   \
         .help = "SGD step of the incremental passes"},                                            \
        {.name = "l2",                                                                             \
         .type = RLAB_ARG_FLOAT,                                                                   \
         .def = "0.0001",                                                                          \
         .min = 0,                                                                                 \
         .max = 10,                                                                                \
         .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,                                                   \
         .help = "L2 on the touched parameters"},                                                  \
        {.name = "drift",                                                                          \
         .type = RLAB_ARG_INT,                                                                     \
         .def = "0",                                                                               \
         .min = 0,                                                                                 \
         .flags = RLAB_ARGF_MIN | RLAB_ARGF_INT64,                                                 \
         .help = "time (unix s) of a known drift: report periods to recover (0 = none)"},          \
        {.name = "tol",                                                                            \
         .type = RLAB_ARG_FLOAT,                                                                   \
         .def = "0.01",                                                                            \
         .min = 0,                                                                                 \
         .max = 1,                                                                                 \
         .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,                                                   \
         .help = "recovered = AUC within tol of the mean of the two periods before the drift"},    \
        {.name = "seed",                                                                           \
         .type = RLAB_ARG_INT,                                                                     \
         .def = "42",                                                                              \
         .min = 0,                                                                                 \
         .flags = RLAB_ARGF_MIN | RLAB_ARGF_INT64,                                                 \
         .help = "base initialisation, shuffles, negatives, hyperplanes"}, /* end */

static const rlab_arg stream_args[] = {
    {.name = "data",
     .type = RLAB_ARG_DATASET,
     .flags = RLAB_ARGF_REQUIRED,
     .help = "dataset replayed in time order"},
    {.name = "base",
     .type = RLAB_ARG_STRING,
     .def = "mf",
     .help = "slow learner: 'mf' (logistic MF of the plugin) or a registered model with a sample "
             "representation (bprmf, sasrec...) under a logistic head"},
    {.name = "train",
     .type = RLAB_ARG_STRING,
     .def = "",
     .help = "\"KIND [key=value...]\": train a model of KIND (bprmf, sasrec...) on period 0 "
             "through the host's train verb and wrap it (no look at later periods)"},
    {.name = "threshold",
     .type = RLAB_ARG_FLOAT,
     .def = "4",
     .help = "label = rating >= threshold"},
    {.name = "neg",
     .type = RLAB_ARG_INT,
     .def = "0",
     .min = 0,
     .max = 100,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
     .help = "> 0: interactions are clicks, each with this many sampled negatives"},
    RELOOP_COMMON_ARGS{0}};

static const char *const preset_choices[] = {"criteo",   "criteo_sample", "avazu",
                                             "tiny_mtl", "census",        NULL};

static const rlab_arg ctr_args[] = {
    {.name = "file",
     .type = RLAB_ARG_PATH,
     .flags = RLAB_ARGF_REQUIRED,
     .help = "CTR samples (core/data/tabular.h), e.g. ctr/criteo_dac_head999.txt"},
    {.name = "preset",
     .type = RLAB_ARG_CHOICE,
     .def = "criteo",
     .choices = preset_choices,
     .help = "file layout (core/data/tabular.h presets)"},
    {.name = "label",
     .type = RLAB_ARG_STRING,
     .def = "",
     .help = "label column (default: the first)"},
    RELOOP_COMMON_ARGS{0}};

static const rlab_cmd reloop_cmds[] = {
    {.name = "stream",
     .args = stream_args,
     .help = "ReLoop2 on a stream: frozen base, incremental fine-tuning, error memory, memory + "
             "incremental; AUC and log loss per period (run metrics stream.auc_<variant>)",
     .flags = RLAB_CMD_JOB,
     .run = stream_run},
    {.name = "ctr",
     .args = ctr_args,
     .help = "ReLoop2 on CTR samples in time (file) order with a factorisation machine as the "
             "base: the four variants of reloop.stream, AUC and log loss per period",
     .flags = RLAB_CMD_JOB,
     .run = ctr_run},
    {0}};

RLAB_PLUGIN(reloop)
{
    (void)host;
    (void)err;
    RLAB_PLUGIN_INIT(out);
    out->name = "reloop";
    out->version = "0.1.0";
    out->summary = "ReLoop2: error memory + error compensation on non-stationary streams";
    out->commands = reloop_cmds;
    return RLAB_OK;
}
