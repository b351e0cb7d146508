/*
 * plugins/simulator/fidelity.c: behavioural fidelity of the agents against real users (the
 * protocol is documented at sim_fidelity in sim.h, the policies and every choice in the
 * plugin's README).
 *
 * The fitted offline policy (offline_fit), on features of (agent a, item i):
 *   f = [1, m, p, c, q]   m = believed taste . genres(i) / max taste (the simulator's match)
 *                         p = log(1 + kept count of i) / log(1 + max kept count)
 *                         c = cos(text vector of i, mean text vector of a's watched list)
 *                         q = mean kept rating of i, shrunk to the global mean with 5 pseudo
 *                             ratings, minus the global mean (0 without ratings)
 *   choice  P(watch) = sigmoid(w . f), fitted by full-batch gradient descent on the logistic
 *           loss of the fitting part's (a) decisions (400 steps, step 0.5, L2 1e-4, from 0:
 *           deterministic); the agent watches when w . f >= t, t the threshold with the best
 *           F1 on the fitting part's decisions (P = 0.5 would watch nothing once negatives
 *           outnumber positives, neg > 1).
 *   rating  r = v . [1, u, q, m, c] (u = a's mean kept rating minus the global mean), least
 *           squares on the fitting part's held-out ratings (normal equations, ridge 1e-6),
 *           rounded to the nearest star and clamped to 1..5 (agents give whole stars).
 *   page    one draw from softmax over {w . f(i_k) - 0.15 k for the page's items, t for
 *           leaving} (the logit scale of the choice model; leaving is the decision point).
 */
#define SIM_INTERNAL
#include "sim.h"

#include "eval/stats.h"
#include "llm/llm.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum { FID_SPLIT = 1, FID_NEG, FID_RANDOM, FID_PAGE };

typedef struct fid_row {
    int32_t user, item;
    int64_t ts;
    size_t row;
    float rating;
} fid_row;

static int fid_row_cmp(const void *pa, const void *pb)
{
    const fid_row *a = pa, *b = pb;
    if (a->user != b->user)
        return a->user < b->user ? -1 : 1;
    if (a->ts != b->ts)
        return a->ts < b->ts ? -1 : 1;
    return a->row < b->row ? -1 : a->row > b->row;
}

/* One evaluated user: its rows [b, e) of the sorted history, the cut (rows [b, cut) are
 * known), and its (a) mix [mix_b, mix_e) of which the first npos are the held-out items in
 * their real order before the shuffle. */
typedef struct fid_user {
    int32_t a;
    size_t b, cut, e;
    int64_t mix_b, mix_e;
    int npos, fit;
} fid_user;

void sim_fid_config_default(sim_fid_config *c)
{
    memset(c, 0, sizeof *c);
    c->seed = 1;
    c->cut = 0.8;
    c->min_hist = 10;
    c->fit_share = 0.5;
    c->n_pos = 10;
    c->neg_ratio = 1;
    c->page_size = 5;
    c->rec_pop = 1;
    c->llm_retries = 1;
}

const char *sim_fid_policy_name(int p)
{
    static const char *const names[] = {"random", "offline", "offline_fit", "openai"};
    return p >= 0 && p < SIM_FID_NPOL ? names[p] : "?";
}

/* ---- metrics --------------------------------------------------------------------------- */

void sim_fid_binary(const uint8_t *truth, const uint8_t *pred, int64_t n, double *acc, double *prec,
                    double *rec, double *f1)
{
    int64_t tp = 0, fp = 0, fn = 0, tn = 0;
    for (int64_t i = 0; i < n; i++) {
        if (truth[i] && pred[i])
            tp++;
        else if (pred[i])
            fp++;
        else if (truth[i])
            fn++;
        else
            tn++;
    }
    *acc = n ? (double)(tp + tn) / (double)n : 0.0;
    *prec = tp + fp ? (double)tp / (double)(tp + fp) : 0.0;
    *rec = tp + fn ? (double)tp / (double)(tp + fn) : 0.0;
    *f1 = *prec + *rec > 0.0 ? 2.0 * *prec * *rec / (*prec + *rec) : 0.0;
}

int sim_fid_ratings(const double *agent, const double *real, int64_t n, double *mae, double *rmse,
                    double *rho, rlab_err *err)
{
    if (n < 2)
        return rlab_errf(err, RLAB_EINVAL, "fidelity: need at least 2 rated pairs, got %lld",
                         (long long)n);
    double sa = 0.0, ss = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double d = agent[i] - real[i];
        sa += fabs(d);
        ss += d * d;
    }
    *mae = sa / (double)n;
    *rmse = sqrt(ss / (double)n);
    return rlab_eval_spearman(agent, real, n, rho, err);
}

/* ---- reply parsing ---------------------------------------------------------------------- */

/* Past "[tag]" (any case) and the ':' / blanks after it; NULL when absent. */
static const char *after_tag(const char *text, const char *tag)
{
    size_t n = strlen(tag);
    for (const char *p = text; (p = strchr(p, '[')) != NULL; p++)
        if (strncasecmp(p + 1, tag, n) == 0 && p[1 + n] == ']') {
            p += n + 2;
            while (*p == ':' || *p == ' ' || *p == '\t')
                p++;
            return p;
        }
    return NULL;
}

int sim_fid_parse_watch(const char *text, int n, uint8_t *pick)
{
    const char *p = after_tag(text, "WATCH");
    if (!p)
        return -1;
    memset(pick, 0, (size_t)n);
    if (strncasecmp(p, "none", 4) == 0)
        return 0;
    int got = 0;
    while (*p && *p != '\n') {
        if (isdigit((unsigned char)*p)) {
            char *end;
            long k = strtol(p, &end, 10);
            if (k < 1 || k > n)
                return -1;
            pick[k - 1] = 1;
            got++;
            p = end;
        } else if (*p == ',' || *p == ' ' || *p == '\t' || *p == '.' || *p == ';' || *p == '\r' ||
                   *p == '<' || *p == '>') {
            p++;
        } else if (strncasecmp(p, "and", 3) == 0) {
            p += 3;
        } else {
            return -1;
        }
    }
    return got > 0 ? 0 : -1;
}

int sim_fid_parse_ratings(const char *text, int n, double *r)
{
    const char *p = after_tag(text, "RATINGS");
    if (!p || n <= 0)
        return -1;
    for (int k = 0; k < n; k++)
        r[k] = 0.0;
    int got = 0;
    while (*p) {
        if (isdigit((unsigned char)*p)) {
            char *end;
            long k = strtol(p, &end, 10);
            while (*end == ' ')
                end++;
            if (*end != ':' || k < 1 || k > n)
                return -1;
            p = end + 1;
            double v = strtod(p, &end);
            if (end == p || !(v >= 1.0 && v <= 5.0) || r[k - 1] > 0.0)
                return -1;
            r[k - 1] = floor(v + 0.5);
            got++;
            p = end;
        } else if (isspace((unsigned char)*p) || *p == ',' || *p == ';') {
            p++;
        } else {
            break;
        }
    }
    return got == n ? 0 : -1;
}

/* ---- the fitted policy ------------------------------------------------------------------ */

typedef struct fid_ctx {
    sim *s;
    const sim_fid_config *c;
    int has_rating;
    double mu;     /* global mean kept rating */
    float *item_q; /* [I] shrunk item mean - mu */
    float *item_p; /* [I] normalised log popularity */
    float *user_u; /* [n] user mean - mu */
    float *recent; /* [n][SIM_DIM] */
    double wc[SIM_FID_NF], wr[SIM_FID_NF];
    double thr; /* watch when wc . f >= thr */
} fid_ctx;

typedef struct fid_scored {
    double z;
    uint8_t y;
} fid_scored;

static int fid_scored_cmp(const void *pa, const void *pb)
{
    const fid_scored *a = pa, *b = pb;
    return (a->z < b->z) - (a->z > b->z);
}

static void feats(const fid_ctx *x, int32_t a, int32_t i, double *f)
{
    const sim *s = x->s;
    f[0] = 1.0;
    f[1] = (double)(sim_affinity(s, a, i) / s->amax[a]);
    f[2] = (double)x->item_p[i];
    const float *iv = s->item_vec + (size_t)i * SIM_DIM, *rv = x->recent + (size_t)a * SIM_DIM;
    double c = 0.0;
    for (int d = 0; d < SIM_DIM; d++)
        c += (double)iv[d] * (double)rv[d];
    f[3] = c;
    f[4] = (double)x->item_q[i];
}

static void rating_feats(const fid_ctx *x, int32_t a, int32_t i, double *g)
{
    double f[SIM_FID_NF];
    feats(x, a, i, f);
    g[0] = 1.0;
    g[1] = (double)x->user_u[a];
    g[2] = f[4];
    g[3] = f[1];
    g[4] = f[3];
}

static double dot5(const double *w, const double *f)
{
    double z = 0.0;
    for (int k = 0; k < SIM_FID_NF; k++)
        z += w[k] * f[k];
    return z;
}

static double stars(double r)
{
    r = floor(r + 0.5);
    return r < 1.0 ? 1.0 : r > 5.0 ? 5.0 : r;
}

/* Solve the SIM_FID_NF x SIM_FID_NF system A x = b in place (Gaussian elimination with
 * partial pivoting); a singular column leaves its weight 0. */
static void solve5(double A[SIM_FID_NF][SIM_FID_NF], double *b, double *x)
{
    enum { N = SIM_FID_NF };
    for (int k = 0; k < N; k++) {
        int best = k;
        for (int r = k + 1; r < N; r++)
            if (fabs(A[r][k]) > fabs(A[best][k]))
                best = r;
        if (best != k) {
            for (int j = 0; j < N; j++) {
                double t = A[k][j];
                A[k][j] = A[best][j];
                A[best][j] = t;
            }
            double t = b[k];
            b[k] = b[best];
            b[best] = t;
        }
        if (fabs(A[k][k]) < 1e-12)
            continue;
        for (int r = k + 1; r < N; r++) {
            double m = A[r][k] / A[k][k];
            for (int j = k; j < N; j++)
                A[r][j] -= m * A[k][j];
            b[r] -= m * b[k];
        }
    }
    for (int k = N - 1; k >= 0; k--) {
        double v = b[k];
        for (int j = k + 1; j < N; j++)
            v -= A[k][j] * x[j];
        x[k] = fabs(A[k][k]) < 1e-12 ? 0.0 : v / A[k][k];
    }
}

/* ---- the protocol --------------------------------------------------------------------- */

typedef struct fid_data {
    fid_row *h;
    size_t nh;
    fid_user *us;
    int32_t nu;
    int32_t *mix;   /* (a) items */
    uint8_t *truth; /* (a) 1 = held out (chosen next) */
    double *real;   /* (a) real rating of a held-out item (0 for negatives) */
    int64_t nmix;
    uint8_t *heldout; /* [I] scratch */
} fid_data;

static void fid_data_free(fid_data *d)
{
    rlab_free(d->h), rlab_free(d->us), rlab_free(d->mix), rlab_free(d->truth);
    rlab_free(d->real), rlab_free(d->heldout);
}

static void fid_ctx_free(fid_ctx *x)
{
    rlab_free(x->item_q), rlab_free(x->item_p), rlab_free(x->user_u), rlab_free(x->recent);
}

/* Item and user statistics of the kept rows, and each agent's recent vector. */
static int fid_stats(fid_ctx *x, const uint8_t *keep, rlab_err *err)
{
    sim *s = x->s;
    const rlab_dataset *ds = s->ds;
    int32_t I = s->n_items, n = s->n;
    double *isum = rlab_calloc((size_t)I, sizeof(double)), *icnt = NULL, *usum = NULL, *ucnt = NULL;
    icnt = isum ? rlab_calloc((size_t)I, sizeof(double)) : NULL;
    usum = icnt ? rlab_calloc((size_t)n, sizeof(double)) : NULL;
    ucnt = usum ? rlab_calloc((size_t)n, sizeof(double)) : NULL;
    x->item_q = rlab_calloc((size_t)I, sizeof(float));
    x->item_p = rlab_calloc((size_t)I, sizeof(float));
    x->user_u = rlab_calloc((size_t)n, sizeof(float));
    x->recent = rlab_calloc((size_t)n * SIM_DIM, sizeof(float));
    int rc = RLAB_OK;
    if (!ucnt || !x->item_q || !x->item_p || !x->user_u || !x->recent) {
        rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
        goto out;
    }
    double tot = 0.0, cnt = 0.0;
    for (size_t r = 0; r < ds->inter.n; r++) {
        int32_t u = ds->inter.user[r], i = ds->inter.item[r];
        if (!keep[r] || i < 0 || i >= I || u < 0)
            continue;
        double v = x->has_rating ? (double)ds->inter.rating[r] : 0.0;
        icnt[i] += 1.0, isum[i] += v, tot += v, cnt += 1.0;
        if (u < n)
            ucnt[u] += 1.0, usum[u] += v;
    }
    x->mu = cnt > 0 && x->has_rating ? tot / cnt : 0.0;
    double pmax = 0.0;
    for (int32_t i = 0; i < I; i++)
        pmax = fmax(pmax, icnt[i]);
    for (int32_t i = 0; i < I; i++) {
        x->item_p[i] = pmax > 0 ? (float)(log1p(icnt[i]) / log1p(pmax)) : 0.0f;
        if (x->has_rating)
            x->item_q[i] = (float)((isum[i] + 5.0 * x->mu) / (icnt[i] + 5.0) - x->mu);
    }
    for (int32_t a = 0; a < n; a++) {
        if (x->has_rating && ucnt[a] > 0)
            x->user_u[a] = (float)(usum[a] / ucnt[a] - x->mu);
        const sim_agent *ag = &s->agents[a];
        float *rv = x->recent + (size_t)a * SIM_DIM;
        for (int k = 0; k < SIM_HIST; k++)
            if (ag->watched[k] >= 0)
                for (int q = 0; q < SIM_DIM; q++)
                    rv[q] += s->item_vec[(size_t)ag->watched[k] * SIM_DIM + (size_t)q];
        float nn = 0.0f;
        for (int q = 0; q < SIM_DIM; q++)
            nn += rv[q] * rv[q];
        if (nn > 0.0f)
            for (int q = 0; q < SIM_DIM; q++)
                rv[q] /= sqrtf(nn);
    }
out:
    rlab_free(isum), rlab_free(icnt), rlab_free(usum), rlab_free(ucnt);
    return rc;
}

/* Fit the choice and rating weights on the fitting part. */
static void fid_fit(fid_ctx *x, const fid_data *d, sim_fid_report *out)
{
    int64_t m = 0;
    for (int32_t k = 0; k < d->nu; k++)
        if (d->us[k].fit)
            m += d->us[k].mix_e - d->us[k].mix_b;
    out->fit_pairs = m;
    double w[SIM_FID_NF] = {0};
    if (m > 0) {
        for (int it = 0; it < 400; it++) {
            double g[SIM_FID_NF] = {0};
            for (int32_t k = 0; k < d->nu; k++) {
                const fid_user *u = &d->us[k];
                if (!u->fit)
                    continue;
                for (int64_t j = u->mix_b; j < u->mix_e; j++) {
                    double f[SIM_FID_NF];
                    feats(x, u->a, d->mix[j], f);
                    double p = 1.0 / (1.0 + exp(-dot5(w, f)));
                    double e = p - (double)d->truth[j];
                    for (int q = 0; q < SIM_FID_NF; q++)
                        g[q] += e * f[q];
                }
            }
            for (int q = 0; q < SIM_FID_NF; q++)
                w[q] -= 0.5 * (g[q] / (double)m + 1e-4 * w[q]);
        }
        /* the decision threshold on w . f: the one with the best F1 on the fitting part (0,
         * i.e. P = 0.5, would predict nothing positive once negatives outnumber positives) */
        fid_scored *sc = rlab_malloc((size_t)m * sizeof *sc);
        int64_t q = 0, npos = 0;
        for (int32_t k = 0; sc && k < d->nu; k++) {
            const fid_user *u = &d->us[k];
            if (!u->fit)
                continue;
            for (int64_t j = u->mix_b; j < u->mix_e; j++) {
                double f[SIM_FID_NF];
                feats(x, u->a, d->mix[j], f);
                sc[q++] = (fid_scored){dot5(w, f), d->truth[j]};
                npos += d->truth[j];
            }
        }
        double thr = 0.0;
        if (sc) {
            qsort(sc, (size_t)q, sizeof *sc, fid_scored_cmp); /* descending */
            double best = -1.0;
            int64_t tp = 0;
            for (int64_t i = 0; i < q; i++) {
                tp += sc[i].y;
                if (i + 1 < q && !(sc[i + 1].z < sc[i].z))
                    continue; /* cut only between distinct scores */
                double f1 = npos ? 2.0 * (double)tp / (double)(i + 1 + npos) : 0.0;
                if (f1 > best) {
                    best = f1;
                    thr = sc[i].z;
                }
            }
            int64_t ok = 0;
            for (int64_t i = 0; i < q; i++)
                ok += (sc[i].z >= thr) == (sc[i].y != 0);
            out->fit_acc = (double)ok / (double)m;
            rlab_free(sc);
        }
        x->thr = thr;
    }
    memcpy(x->wc, w, sizeof w);
    memcpy(out->w_choice, w, sizeof w);
    out->thr = x->thr;
    /* ratings: least squares on the fitting part's held-out items */
    double A[SIM_FID_NF][SIM_FID_NF] = {{0}}, b[SIM_FID_NF] = {0}, v[SIM_FID_NF] = {0};
    int64_t nr = 0;
    for (int32_t k = 0; x->has_rating && k < d->nu; k++) {
        const fid_user *u = &d->us[k];
        if (!u->fit)
            continue;
        for (int64_t j = u->mix_b; j < u->mix_e; j++) {
            if (!d->truth[j])
                continue;
            double g[SIM_FID_NF];
            rating_feats(x, u->a, d->mix[j], g);
            for (int p = 0; p < SIM_FID_NF; p++) {
                for (int q = 0; q < SIM_FID_NF; q++)
                    A[p][q] += g[p] * g[q];
                b[p] += g[p] * d->real[j];
            }
            nr++;
        }
    }
    if (nr > 0) {
        for (int p = 0; p < SIM_FID_NF; p++)
            A[p][p] += 1e-6 * (double)nr;
        solve5(A, b, v);
    } else {
        v[0] = x->mu > 0 ? x->mu : 3.0;
    }
    memcpy(x->wr, v, sizeof v);
    memcpy(out->w_rating, v, sizeof v);
}

/* (a) and (b) prompts of one user: the shuffled mix, and the held-out items to rate. */
static char *prompt_watch(sim *s, int32_t a, const int32_t *items, int n)
{
    char *h = sim_prompt_header(s, a);
    if (!h)
        return NULL;
    const char *nm = s->agents[a].name;
    size_t cap = strlen(h) + 1024 + (size_t)n * 200;
    char *p = rlab_malloc(cap);
    if (!p) {
        rlab_free(h);
        return NULL;
    }
    size_t l = (size_t)snprintf(p, cap, "%sObservation: %s is shown these movies:\n", h, nm);
    for (int k = 0; k < n && l < cap; k++)
        l += (size_t)snprintf(p + l, cap - l, "%d. <%s>\n", k + 1, sim_item_title(s, items[k]));
    if (l < cap)
        snprintf(p + l, cap - l,
                 "Which of these movies would %s choose to watch, given %s's tastes and "
                 "memories? Write the numbers of those movies (or none) as:\n"
                 "[WATCH]:: numbers separated by commas\n",
                 nm, nm);
    rlab_free(h);
    return p;
}

static char *prompt_rate(sim *s, int32_t a, const int32_t *items, int n)
{
    char *h = sim_prompt_header(s, a);
    if (!h)
        return NULL;
    const char *nm = s->agents[a].name;
    size_t cap = strlen(h) + 1024 + (size_t)n * 200;
    char *p = rlab_malloc(cap);
    if (!p) {
        rlab_free(h);
        return NULL;
    }
    size_t l =
        (size_t)snprintf(p, cap, "%sObservation: %s has just watched these movies:\n", h, nm);
    for (int k = 0; k < n && l < cap; k++)
        l += (size_t)snprintf(p + l, cap - l, "%d. <%s>\n", k + 1, sim_item_title(s, items[k]));
    if (l < cap)
        snprintf(p + l, cap - l,
                 "How would %s rate each movie, from 1 (hated it) to 5 (loved it)? Rate every "
                 "movie once, as:\n[RATINGS]:: 1:stars, 2:stars, ...\n",
                 nm);
    rlab_free(h);
    return p;
}

static const char fid_sys[] =
    "You are simulating a user of a movie recommender system. Stay in character and answer "
    "exactly in the output format requested.";

/* Ask the language model the (a) or (b) question of every reporting user (kind 0 watch, 1
 * rate). ok[k] = 1 when user k's reply parsed (pick / rate filled). */
static int ask_llm(fid_ctx *x, fid_data *d, const int32_t *rep, int32_t nrep, int kind,
                   uint8_t *pick, double *rate, uint8_t *ok, sim_fid_report *out, rlab_err *err)
{
    sim *s = x->s;
    char **prompt = rlab_calloc((size_t)nrep, sizeof(char *));
    rlab_llm_msg *msgs = rlab_calloc((size_t)nrep * 2, sizeof(rlab_llm_msg));
    rlab_llm_req *reqs = rlab_calloc((size_t)nrep, sizeof(rlab_llm_req));
    rlab_llm_result *res = rlab_calloc((size_t)nrep, sizeof(rlab_llm_result));
    int32_t *map = rlab_calloc((size_t)nrep, sizeof(int32_t));
    int rc = RLAB_OK;
    if (!prompt || !msgs || !reqs || !res || !map) {
        rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
        goto done;
    }
    for (int32_t k = 0; k < nrep; k++) {
        const fid_user *u = &d->us[rep[k]];
        int n = (int)(u->mix_e - u->mix_b);
        if (kind == 0) {
            prompt[k] = prompt_watch(s, u->a, d->mix + u->mix_b, n);
        } else {
            int32_t items[256];
            int m = 0;
            for (int64_t j = u->mix_b; j < u->mix_e && m < 256; j++)
                if (d->truth[j])
                    items[m++] = d->mix[j];
            prompt[k] = prompt_rate(s, u->a, items, m);
        }
        if (!prompt[k]) {
            rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
            goto done;
        }
        ok[k] = 0;
    }
    for (int attempt = 0; attempt <= x->c->llm_retries; attempt++) {
        int32_t m = 0;
        for (int32_t k = 0; k < nrep; k++) {
            if (ok[k])
                continue;
            msgs[2 * m] = (rlab_llm_msg){"system", fid_sys};
            msgs[2 * m + 1] = (rlab_llm_msg){"user", prompt[k]};
            reqs[m] = (rlab_llm_req){.task = kind == 0 ? "recagent.fidelity.watch"
                                                       : "recagent.fidelity.rate",
                                     .msgs = &msgs[2 * m],
                                     .n_msgs = 2,
                                     .opts = {.temperature = 0.0, .max_tokens = 256}};
            map[m++] = k;
        }
        if (m == 0)
            break;
        rlab_err e = {0};
        int crc = rlab_llm_chat_many(x->c->llm, reqs, m, res, &e);
        int failed = 0;
        for (int32_t j = 0; j < m && crc != RLAB_ECANCELED; j++) {
            int32_t k = map[j];
            const fid_user *u = &d->us[rep[k]];
            int n = (int)(u->mix_e - u->mix_b);
            if (res[j].status != RLAB_OK || !res[j].text) {
                failed++;
                if (!out->first_llm_error[0])
                    snprintf(out->first_llm_error, sizeof out->first_llm_error, "%s",
                             res[j].status != RLAB_OK ? res[j].error : "llm: empty reply");
                continue;
            }
            int parsed = kind == 0 ? sim_fid_parse_watch(res[j].text, n, pick + u->mix_b)
                         : sim_fid_parse_ratings(res[j].text, u->npos, rate + u->mix_b) == 0 ? 0
                                                                                             : -1;
            if (parsed == 0)
                ok[k] = 1;
            else if (!out->first_llm_error[0])
                snprintf(out->first_llm_error, sizeof out->first_llm_error,
                         "llm: unparsable reply to a fidelity prompt: '%.80s'", res[j].text);
        }
        rlab_llm_results_clear(res, m);
        if (crc == RLAB_ECANCELED) {
            rc = rlab_errf(err, RLAB_ECANCELED, "%s", e.msg);
            goto done;
        }
        if (failed == m)
            break; /* the server is down: no point re-asking */
    }
done:
    for (int32_t k = 0; prompt && k < nrep; k++)
        rlab_free(prompt[k]);
    rlab_free(prompt), rlab_free(msgs), rlab_free(reqs), rlab_free(res), rlab_free(map);
    return rc;
}

/* Score one policy's (a)/(b) answers over the reporting users. */
static int score_ab(const fid_ctx *x, const fid_data *d, const int32_t *rep, int32_t nrep,
                    const uint8_t *pick, const double *rate, sim_fid_result *r, int64_t *real_dist,
                    rlab_err *err)
{
    int64_t n = 0, nr = 0;
    for (int32_t k = 0; k < nrep; k++) {
        const fid_user *u = &d->us[rep[k]];
        n += u->mix_e - u->mix_b;
        nr += u->npos;
    }
    uint8_t *t = rlab_malloc((size_t)(n ? n : 1)), *p = rlab_malloc((size_t)(n ? n : 1));
    double *ag = rlab_malloc((size_t)(nr ? nr : 1) * sizeof(double));
    double *re = rlab_malloc((size_t)(nr ? nr : 1) * sizeof(double));
    int rc = RLAB_OK;
    if (!t || !p || !ag || !re) {
        rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
        goto done;
    }
    int64_t m = 0, q = 0;
    for (int32_t k = 0; k < nrep; k++) {
        const fid_user *u = &d->us[rep[k]];
        for (int64_t j = u->mix_b; j < u->mix_e; j++) {
            t[m] = d->truth[j];
            p[m++] = pick[j];
        }
        /* rate[] holds user k's ratings at mix_b .. mix_b + npos, in the order of its
         * held-out items within the mix */
        int64_t h = 0;
        for (int64_t j = u->mix_b; j < u->mix_e; j++)
            if (d->truth[j]) {
                ag[q] = rate[u->mix_b + h++];
                re[q++] = d->real[j];
            }
    }
    r->pairs = m;
    sim_fid_binary(t, p, m, &r->acc, &r->prec, &r->rec, &r->f1);
    r->rated = 0;
    if (x->has_rating && q >= 2) {
        r->rated = q;
        rc = sim_fid_ratings(ag, re, q, &r->mae, &r->rmse, &r->spearman, err);
        for (int64_t j = 0; j < q; j++) {
            r->dist[(int)stars(ag[j]) - 1]++;
            if (real_dist)
                real_dist[(int)stars(re[j]) - 1]++;
        }
    }
done:
    rlab_free(t), rlab_free(p), rlab_free(ag), rlab_free(re);
    return rc;
}

static int build_data(const rlab_dataset *ds, const sim_fid_config *c, int32_t n_ag, fid_data *d,
                      uint8_t *keep, sim_fid_report *out, rlab_err *err)
{
    int32_t I = rlab_vocab_size(&ds->items);
    int has_rating = (ds->inter.flags & RLAB_INTER_HAS_RATING) != 0;
    size_t m = 0;
    for (size_t r = 0; r < ds->inter.n; r++) {
        keep[r] = 1;
        if (ds->inter.user[r] >= 0 && ds->inter.user[r] < n_ag && ds->inter.item[r] >= 0 &&
            ds->inter.item[r] < I)
            m++;
    }
    d->h = rlab_malloc((m ? m : 1) * sizeof *d->h);
    d->us = rlab_calloc((size_t)n_ag, sizeof *d->us);
    d->heldout = rlab_calloc((size_t)I, 1);
    if (!d->h || !d->us || !d->heldout)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    m = 0;
    for (size_t r = 0; r < ds->inter.n; r++)
        if (ds->inter.user[r] >= 0 && ds->inter.user[r] < n_ag && ds->inter.item[r] >= 0 &&
            ds->inter.item[r] < I)
            d->h[m++] = (fid_row){ds->inter.user[r], ds->inter.item[r], ds->inter.ts[r], r,
                                  has_rating ? ds->inter.rating[r] : 0.0f};
    d->nh = m;
    qsort(d->h, m, sizeof *d->h, fid_row_cmp);
    int64_t cap_mix = 0;
    for (size_t b = 0, e; b < m; b = e) {
        for (e = b; e < m && d->h[e].user == d->h[b].user; e++)
            ;
        if ((int)(e - b) < c->min_hist) {
            out->skipped++;
            continue;
        }
        size_t cut = (size_t)floor(c->cut * (double)(e - b));
        if (cut < 1)
            cut = 1;
        if (cut > e - b - 1)
            cut = e - b - 1;
        fid_user *u = &d->us[d->nu++];
        u->a = d->h[b].user;
        u->b = b;
        u->cut = b + cut;
        u->e = e;
        for (size_t k = u->cut; k < e; k++)
            keep[d->h[k].row] = 0;
        int npos = (int)(e - u->cut) < c->n_pos ? (int)(e - u->cut) : c->n_pos;
        cap_mix += (int64_t)npos * (1 + c->neg_ratio);
    }
    d->mix = rlab_malloc((size_t)(cap_mix ? cap_mix : 1) * sizeof(int32_t));
    d->truth = rlab_malloc((size_t)(cap_mix ? cap_mix : 1));
    d->real = rlab_malloc((size_t)(cap_mix ? cap_mix : 1) * sizeof(double));
    if (!d->mix || !d->truth || !d->real)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    return RLAB_OK;
}

/* The (a) mixes: held-out items (the first n_pos after the cut, each once) and neg_ratio
 * times as many never-interacted items, shuffled; the user split. */
static void build_mixes(const sim *s, const sim_fid_config *c, fid_data *d)
{
    int32_t I = s->n_items;
    uint8_t *seen = d->heldout; /* [I]: 1 = in the user's whole history */
    for (int32_t k = 0; k < d->nu; k++) {
        fid_user *u = &d->us[k];
        rlab_rng r;
        sim_rng(s, SIM_PH_FIDELITY, FID_SPLIT, u->a, 0, &r);
        u->fit = rlab_rng_double(&r) < c->fit_share;
        for (size_t j = u->b; j < u->e; j++)
            seen[d->h[j].item] = 1;
        u->mix_b = k ? d->us[k - 1].mix_e : 0;
        int64_t w = u->mix_b;
        for (size_t j = u->cut; j < u->e && u->npos < c->n_pos; j++) {
            int dup = 0;
            for (int64_t q = u->mix_b; q < w; q++)
                dup |= d->mix[q] == d->h[j].item;
            if (dup)
                continue;
            d->mix[w] = d->h[j].item;
            d->truth[w] = 1;
            d->real[w++] = (double)d->h[j].rating;
            u->npos++;
        }
        sim_rng(s, SIM_PH_FIDELITY, FID_NEG, u->a, 0, &r);
        int want = u->npos * c->neg_ratio, got = 0;
        for (int tries = 0; got < want && tries < 100 * want + 100; tries++) {
            int32_t it = (int32_t)rlab_rng_below(&r, (uint64_t)I);
            if (seen[it])
                continue;
            seen[it] = 1; /* not twice */
            d->mix[w] = it;
            d->truth[w] = 0;
            d->real[w++] = 0.0;
            got++;
        }
        u->mix_e = w;
        /* shuffle the mix (Fisher-Yates on the three arrays together) */
        for (int64_t q = w - 1; q > u->mix_b; q--) {
            int64_t j = u->mix_b + (int64_t)rlab_rng_below(&r, (uint64_t)(q - u->mix_b + 1));
            int32_t ti = d->mix[q];
            d->mix[q] = d->mix[j], d->mix[j] = ti;
            uint8_t tt = d->truth[q];
            d->truth[q] = d->truth[j], d->truth[j] = tt;
            double tr = d->real[q];
            d->real[q] = d->real[j], d->real[j] = tr;
        }
        for (size_t j = u->b; j < u->e; j++)
            seen[d->h[j].item] = 0;
        for (int64_t q = u->mix_b; q < u->mix_e; q++)
            seen[d->mix[q]] = 0;
    }
}

/* The page of each reporting user: popularity of the kept rows or the recommender. */
static int build_pages(sim *s, const sim_fid_config *c, const fid_data *d, const int32_t *rep,
                       int32_t nrep, int32_t *pages, int *np, rlab_err *err)
{
    int P = c->page_size;
    if (!c->rec_pop) {
        int32_t *ag = rlab_malloc((size_t)(nrep ? nrep : 1) * sizeof(int32_t));
        if (!ag)
            return rlab_errf(err, RLAB_ENOMEM, "out of memory");
        for (int32_t k = 0; k < nrep; k++)
            ag[k] = d->us[rep[k]].a;
        int rc = sim_first_pages(s, ag, nrep, pages, np, err);
        rlab_free(ag);
        return rc;
    }
    int32_t I = s->n_items;
    int32_t *order = rlab_malloc((size_t)I * sizeof(int32_t));
    if (!order)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    for (int32_t i = 0; i < I; i++)
        order[i] = i;
    /* by kept popularity, then id (insertion into a stable order) */
    for (int32_t i = 1; i < I; i++) {
        int32_t v = order[i], j = i;
        while (j > 0 && s->item_pop[order[j - 1]] < s->item_pop[v])
            order[j] = order[j - 1], j--;
        order[j] = v;
    }
    for (int32_t k = 0; k < nrep; k++) {
        int32_t a = d->us[rep[k]].a;
        const uint8_t *sh = sim_shown_row(s, a);
        int n = 0;
        for (int32_t q = 0; q < I && n < P; q++)
            if (!sim_shown_bit(sh, order[q]))
                pages[(size_t)k * (size_t)P + (size_t)n++] = order[q];
        np[k] = n;
    }
    rlab_free(order);
    return RLAB_OK;
}

int sim_fid_keep(const rlab_dataset *ds, const sim_fid_config *c, uint8_t *keep, rlab_err *err)
{
    int32_t U = rlab_vocab_size(&ds->users);
    int32_t n_ag = c->n_agents > 0 && c->n_agents < U ? c->n_agents : U;
    fid_data d = {0};
    sim_fid_report tmp;
    memset(&tmp, 0, sizeof tmp);
    int rc = build_data(ds, c, n_ag, &d, keep, &tmp, err);
    fid_data_free(&d);
    return rc;
}

static int liked_rule(const sim *s, int32_t a, int32_t i)
{
    float thr = (s->agents[a].arch & SIM_ARCH(RLAB_ARCH_CRITIC)) ? 0.65f : 0.5f;
    return sim_affinity(s, a, i) >= thr * s->amax[a];
}

int sim_fidelity(const rlab_dataset *ds, const sim_fid_config *c, sim_cancel_fn cancel, void *cud,
                 sim_fid_report *out, rlab_err *err)
{
    memset(out, 0, sizeof *out);
    int32_t U = rlab_vocab_size(&ds->users);
    int32_t n_ag = c->n_agents > 0 && c->n_agents < U ? c->n_agents : U;
    if (!(c->cut > 0.0 && c->cut < 1.0) || c->min_hist < 2 || c->n_pos < 1 || c->neg_ratio < 0 ||
        c->page_size < 1 || c->page_size > SIM_MAX_PAGE)
        return rlab_errf(err, RLAB_EINVAL,
                         "fidelity: cut in (0, 1), min_hist >= 2, n_pos >= 1, neg_ratio >= 0, "
                         "page in 1..%d",
                         SIM_MAX_PAGE);
    fid_data d = {0};
    fid_ctx x = {.c = c, .has_rating = (ds->inter.flags & RLAB_INTER_HAS_RATING) != 0};
    uint8_t *keep = rlab_malloc(ds->inter.n ? ds->inter.n : 1);
    uint8_t *pick = NULL, *ok = NULL;
    double *rate = NULL;
    int32_t *rep = NULL, *pages = NULL;
    int *np = NULL;
    sim *s = NULL;
    int rc = keep ? RLAB_OK : rlab_errf(err, RLAB_ENOMEM, "out of memory");
    if (rc == RLAB_OK)
        rc = build_data(ds, c, n_ag, &d, keep, out, err);
    if (rc)
        goto done;
    sim_config sc;
    sim_config_default(&sc);
    sc.seed = c->seed;
    sc.n_agents = n_ag;
    sc.page_size = c->page_size;
    sc.max_steps = 1;
    sc.checkpoint_every = 0;
    sim_profiles prof = {.keep = keep, .seed_memory = 1, .no_social = 1};
    rc = sim_new(&sc, ds, NULL, c->rec_pop ? NULL : c->model, &prof, &s, err);
    if (rc)
        goto done;
    x.s = s;
    int npol = c->llm ? SIM_FID_NPOL : SIM_FID_LLM;
    if (c->progress)
        c->progress(c->progress_ud, 1, 2 + npol, "agents built");
    build_mixes(s, c, &d);
    out->users = d.nu;
    out->has_rating = x.has_rating;
    rc = fid_stats(&x, keep, err);
    if (rc)
        goto done;
    fid_fit(&x, &d, out);
    if (c->progress)
        c->progress(c->progress_ud, 2, 2 + npol, "offline policy fitted");
    if (cancel && cancel(cud)) {
        rc = rlab_errf(err, RLAB_ECANCELED, "cancelled");
        goto done;
    }
    /* the reporting part */
    rep = rlab_malloc((size_t)(d.nu ? d.nu : 1) * sizeof(int32_t));
    int32_t nrep = 0;
    for (int32_t k = 0; rep && k < d.nu; k++)
        if (!d.us[k].fit)
            rep[nrep++] = k;
    out->fit_users = d.nu - nrep;
    out->report_users = nrep;
    if (nrep < 2 || out->fit_users < 1) {
        rc = rep ? rlab_errf(err, RLAB_EINVAL,
                             "fidelity: %d users with at least %d interactions (%d to fit, %d "
                             "to report): too few",
                             (int)d.nu, c->min_hist, (int)out->fit_users, (int)nrep)
                 : rlab_errf(err, RLAB_ENOMEM, "out of memory");
        goto done;
    }
    int64_t nmix = d.us[d.nu - 1].mix_e;
    pick = rlab_malloc((size_t)(nmix ? nmix : 1));
    rate = rlab_calloc((size_t)(nmix ? nmix : 1), sizeof(double));
    ok = rlab_malloc((size_t)nrep);
    pages = rlab_malloc((size_t)nrep * (size_t)c->page_size * sizeof(int32_t));
    np = rlab_calloc((size_t)nrep, sizeof(int));
    if (!pick || !rate || !ok || !pages || !np) {
        rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
        goto done;
    }
    rc = build_pages(s, c, &d, rep, nrep, pages, np, err);
    if (rc)
        goto done;
    /* the real users' hit rate: what they chose next was on the page */
    {
        int64_t hits = 0;
        for (int32_t k = 0; k < nrep; k++) {
            const fid_user *u = &d.us[rep[k]];
            for (size_t j = u->cut; j < u->e; j++)
                d.heldout[d.h[j].item] = 1;
            int hit = 0;
            for (int q = 0; q < np[k]; q++)
                hit |= d.heldout[pages[(size_t)k * (size_t)c->page_size + (size_t)q]];
            hits += hit;
            for (size_t j = u->cut; j < u->e; j++)
                d.heldout[d.h[j].item] = 0;
        }
        out->real_hit = (double)hits / (double)nrep;
    }
    for (int pol = 0; pol < npol && rc == RLAB_OK; pol++) {
        if (cancel && cancel(cud)) {
            rc = rlab_errf(err, RLAB_ECANCELED, "cancelled");
            break;
        }
        sim_fid_result *r = &out->pol[pol];
        out->have[pol] = 1;
        /* offline_fit first as the default answer (the openai fallback) */
        for (int32_t k = 0; k < nrep; k++) {
            const fid_user *u = &d.us[rep[k]];
            rlab_rng rr;
            sim_rng(s, SIM_PH_FIDELITY, FID_RANDOM, u->a, 0, &rr);
            int h = 0;
            for (int64_t j = u->mix_b; j < u->mix_e; j++) {
                double f[SIM_FID_NF], g[SIM_FID_NF];
                feats(&x, u->a, d.mix[j], f);
                rating_feats(&x, u->a, d.mix[j], g);
                double rt;
                if (pol == SIM_FID_RANDOM) {
                    pick[j] = rlab_rng_below(&rr, 2) == 1;
                    rt = 1.0 + (double)rlab_rng_below(&rr, 5);
                } else if (pol == SIM_FID_OFFLINE) {
                    pick[j] = (uint8_t)liked_rule(s, u->a, d.mix[j]);
                    rt = stars(1.0 + 4.0 * f[1]);
                } else {
                    pick[j] = dot5(x.wc, f) >= x.thr;
                    rt = stars(dot5(x.wr, g));
                }
                if (d.truth[j])
                    rate[u->mix_b + h++] = rt;
            }
        }
        if (pol == SIM_FID_LLM) {
            /* ask; what did not parse keeps the offline_fit answer just written */
            uint8_t *fpick = rlab_malloc((size_t)(nmix ? nmix : 1));
            double *frate = rlab_malloc((size_t)(nmix ? nmix : 1) * sizeof(double));
            if (!fpick || !frate) {
                rlab_free(fpick), rlab_free(frate);
                rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
                break;
            }
            memcpy(fpick, pick, (size_t)nmix);
            memcpy(frate, rate, (size_t)nmix * sizeof(double));
            rc = ask_llm(&x, &d, rep, nrep, 0, pick, rate, ok, out, err);
            for (int32_t k = 0; rc == RLAB_OK && k < nrep; k++)
                if (!ok[k]) {
                    const fid_user *u = &d.us[rep[k]];
                    memcpy(pick + u->mix_b, fpick + u->mix_b, (size_t)(u->mix_e - u->mix_b));
                    r->llm_fallback++;
                }
            if (rc == RLAB_OK) {
                r->llm_asked += 2 * (int64_t)nrep;
                rc = ask_llm(&x, &d, rep, nrep, 1, pick, rate, ok, out, err);
            }
            for (int32_t k = 0; rc == RLAB_OK && k < nrep; k++)
                if (!ok[k]) {
                    const fid_user *u = &d.us[rep[k]];
                    memcpy(rate + u->mix_b, frate + u->mix_b, (size_t)u->npos * sizeof(double));
                    r->llm_fallback++;
                }
            rlab_free(fpick), rlab_free(frate);
            if (rc)
                break;
        }
        rc = score_ab(&x, &d, rep, nrep, pick, rate, r,
                      pol == SIM_FID_RANDOM ? out->real_dist : NULL, err);
        if (rc)
            break;
        /* (c) the page */
        sim_dec *decs = NULL;
        if (pol == SIM_FID_OFFLINE || pol == SIM_FID_LLM) {
            decs = rlab_calloc((size_t)nrep, sizeof(sim_dec));
            if (!decs) {
                rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
                break;
            }
            for (int32_t k = 0; k < nrep; k++)
                decs[k] = (sim_dec){.agent = d.us[rep[k]].a,
                                    .type = SIM_D_PAGE,
                                    .page = pages + (size_t)k * (size_t)c->page_size,
                                    .npage = np[k],
                                    .searched = 1};
            if (pol == SIM_FID_LLM) {
                rc = sim_set_llm(s, c->llm, err);
                s->cfg.use_llm = 1;
                s->cfg.llm_retries = c->llm_retries;
                s->llm_down = 0;
                if (rc == RLAB_OK)
                    rc = sim_decide(s, decs, nrep, err);
                s->cfg.use_llm = 0;
                r->llm_asked += nrep;
                for (int32_t k = 0; k < nrep; k++)
                    r->llm_fallback += decs[k].by == SIM_BY_FALLBACK;
                if (!out->first_llm_error[0] && s->llm_round_first[0])
                    snprintf(out->first_llm_error, sizeof out->first_llm_error, "%s",
                             s->llm_round_first);
            } else {
                for (int32_t k = 0; k < nrep; k++)
                    sim_policy(s, &decs[k]);
            }
        }
        int64_t hits = 0, buys = 0;
        for (int32_t k = 0; rc == RLAB_OK && k < nrep; k++) {
            const fid_user *u = &d.us[rep[k]];
            const int32_t *pg = pages + (size_t)k * (size_t)c->page_size;
            int choice = -1;
            if (decs) {
                choice = decs[k].choice >= 0 && decs[k].choice < np[k] ? decs[k].choice : -1;
                rlab_free(decs[k].text);
            } else {
                rlab_rng rr;
                sim_rng(s, SIM_PH_FIDELITY, FID_PAGE + pol, u->a, 0, &rr);
                if (pol == SIM_FID_RANDOM) {
                    int v = (int)rlab_rng_below(&rr, (uint64_t)np[k] + 1);
                    choice = v < np[k] ? v : -1;
                } else {
                    double w[SIM_MAX_PAGE + 1], mx = x.thr, tot = 0.0;
                    for (int q = 0; q < np[k]; q++) {
                        double f[SIM_FID_NF];
                        feats(&x, u->a, pg[q], f);
                        w[q] = dot5(x.wc, f) - 0.15 * q;
                        mx = fmax(mx, w[q]);
                    }
                    w[np[k]] = x.thr; /* leaving: the decision threshold */
                    for (int q = 0; q <= np[k]; q++)
                        tot += (w[q] = exp(w[q] - mx));
                    double v = rlab_rng_double(&rr) * tot;
                    choice = np[k];
                    for (int q = 0; q <= np[k]; q++) {
                        if (v < w[q]) {
                            choice = q;
                            break;
                        }
                        v -= w[q];
                    }
                    if (choice >= np[k])
                        choice = -1;
                }
            }
            if (choice < 0)
                continue;
            buys++;
            int hit = 0;
            for (size_t j = u->cut; j < u->e; j++)
                hit |= d.h[j].item == pg[choice];
            hits += hit;
        }
        rlab_free(decs);
        if (c->progress)
            c->progress(c->progress_ud, 3 + pol, 2 + npol, sim_fid_policy_name(pol));
        r->pages = nrep;
        r->hit = (double)hits / (double)nrep;
        r->buy = (double)buys / (double)nrep;
    }
done:
    sim_free(s);
    fid_ctx_free(&x);
    fid_data_free(&d);
    rlab_free(keep), rlab_free(pick), rlab_free(rate), rlab_free(ok), rlab_free(rep);
    rlab_free(pages), rlab_free(np);
    return rc;
}
