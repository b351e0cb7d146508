/*
 * core/data/world: the synthetic world generator. See world.h for the model.
 *
 * Generation runs in phases, each with its own child RNG split from the master seed in a
 * fixed order (items, users, drift, graph, interactions), so a change inside one phase does
 * not reshuffle the random streams of the others. All arithmetic is sequential and in
 * double where it accumulates; nothing is threaded.
 */
#include "data/world.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- fixed tables ------------------------------------------------------------------ */
static const char *const genre_names[] = {
    "Action",      "Adventure", "Animation", "Children",  "Comedy", "Crime",
    "Documentary", "Drama",     "Fantasy",   "Film-Noir", "Horror", "Musical",
    "Mystery",     "Romance",   "Sci-Fi",    "Thriller",  "War",    "Western",
};
#define N_GENRE_NAMES ((int)(sizeof genre_names / sizeof genre_names[0]))

static const char *const arch_names[RLAB_WORLD_N_ARCHETYPES] = {
    "Watcher", "Explorer", "Critic", "Chatter", "Poster",
};
/* archetype shares, activity and follow multipliers */
static const double arch_share[RLAB_WORLD_N_ARCHETYPES] = {0.30, 0.20, 0.15, 0.20, 0.15};
static const double arch_activity[RLAB_WORLD_N_ARCHETYPES] = {1.6, 1.0, 0.9, 0.8, 0.8};
static const double arch_follow[RLAB_WORLD_N_ARCHETYPES] = {0.7, 0.8, 0.8, 1.8, 1.4};

static const char *const occupations[] = {
    "administrator", "artist",     "doctor",     "educator", "engineer",  "entertainment",
    "executive",     "healthcare", "homemaker",  "lawyer",   "librarian", "marketing",
    "none",          "other",      "programmer", "retired",  "salesman",  "scientist",
    "student",       "technician", "writer",
};
#define N_OCC ((int)(sizeof occupations / sizeof occupations[0]))

static const char *const adjectives[] = {
    "Silent", "Broken", "Golden", "Hidden",  "Last",   "Midnight", "Crimson", "Electric",
    "Lonely", "Wild",   "Frozen", "Burning", "Secret", "Distant",  "Little",  "Savage",
    "Velvet", "Iron",   "Paper",  "Neon",    "Blue",   "Dark",     "Lost",    "Endless",
    "Quiet",  "Brave",  "Noir",   "Naïve",   "Hollow", "Scarlet",  "Gentle",  "Final",
};
static const char *const nouns[] = {
    "River",   "Garden", "Empire",   "Station", "Horizon",   "Dream",      "Summer",   "Machine",
    "Kingdom", "Shadow", "Harbor",   "Letter",  "Mirror",    "Storm",      "Orchard",  "Voyage",
    "Island",  "Signal", "Frontier", "Circus",  "Detective", "Engine",     "Heart",    "Winter",
    "Promise", "Wolf",   "Café",     "Fiancée", "Piñata",    "Lighthouse", "Carnival", "Desert",
};
#define N_ADJ ((int)(sizeof adjectives / sizeof adjectives[0]))
#define N_NOUN ((int)(sizeof nouns / sizeof nouns[0]))

/* A few fixed non-ASCII titles at fixed positions, so UTF-8 is always exercised. */
static const char *const special_titles[] = {
    "Café Noir", "Amélie's Garden", "Señor Sol", "Ångström Road", "Crème Brûlée", "東京 Nights",
};
#define N_SPECIAL ((int)(sizeof special_titles / sizeof special_titles[0]))

static const char *const roman[] = {"II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X"};

/* ---- config ------------------------------------------------------------------------ */
void rlab_world_config_default(rlab_world_config *c)
{
    memset(c, 0, sizeof *c);
    c->seed = 1;
    c->n_users = 200;
    c->n_items = 100;
    c->n_genres = 8;
    c->n_inter = 5000;
    c->min_per_user = 5;
    c->taste_alpha = 0.2f;
    c->zipf = 2.0f;
    c->pop_power = 1.0f;
    c->taste_power = 3.0f;
    c->taste_eps = 0.02f;
    c->p_transition = 0.3f;
    c->n_successors = 3;
    c->avg_follow = 8.0f;
    c->homophily = 6.0f;
    c->t0 = 1577836800; /* 2020-01-01 */
    c->span = 365LL * 86400;
    c->n_drift = 0;
    c->drift_frac = 0.3f;
    c->drift_strength = 0.8f;
}

void rlab_world_config_demo(rlab_world_config *c)
{
    rlab_world_config_default(c);
    c->seed = 20240601;
    c->n_users = 1000;
    c->n_items = 600;
    c->n_genres = 18;
    c->n_inter = 60000;
    c->avg_follow = 12.0f;
    c->n_drift = 1;
    c->drift_ts[0] = c->t0 + 240LL * 86400;
}

static int check_config(const rlab_world_config *c, rlab_err *err)
{
#define BAD(cond, ...)                                                                             \
    do {                                                                                           \
        if (cond)                                                                                  \
            return rlab_errf(err, RLAB_EINVAL, "world config: " __VA_ARGS__);                      \
    } while (0)
    BAD(c->n_users < 2, "n_users must be >= 2");
    BAD(c->n_items < 4, "n_items must be >= 4");
    BAD(c->n_genres < 1 || c->n_genres > 256, "n_genres must be in [1, 256]");
    BAD(c->min_per_user < 1, "min_per_user must be >= 1");
    BAD(c->n_inter < (int64_t)c->n_users * c->min_per_user,
        "n_inter must be >= n_users * min_per_user");
    BAD((double)c->n_inter > 0.5 * (double)c->n_users * (double)c->n_items,
        "n_inter must be <= half of n_users * n_items (users never repeat an item)");
    BAD(c->min_per_user > c->n_items / 2, "min_per_user must be <= n_items / 2");
    BAD(!(c->taste_alpha > 0.0f), "taste_alpha must be > 0");
    BAD(!(c->zipf >= 0.0f), "zipf must be >= 0");
    BAD(!(c->taste_eps > 0.0f), "taste_eps must be > 0");
    BAD(!(c->pop_power >= 0.0f) || !(c->taste_power >= 0.0f), "powers must be >= 0");
    BAD(!(c->p_transition >= 0.0f && c->p_transition <= 1.0f), "p_transition must be in [0, 1]");
    BAD(c->n_successors < 1 || c->n_successors > 8 || c->n_successors >= c->n_items,
        "n_successors must be in [1, 8] and < n_items");
    BAD(!(c->avg_follow >= 0.0f), "avg_follow must be >= 0");
    BAD(!(c->homophily >= 0.0f), "homophily must be >= 0");
    BAD(c->span < 86400, "span must be at least one day");
    BAD(c->n_drift < 0 || c->n_drift > RLAB_WORLD_MAX_DRIFT, "n_drift must be in [0, %d]",
        RLAB_WORLD_MAX_DRIFT);
    for (int d = 0; d < c->n_drift; d++) {
        BAD(c->drift_ts[d] <= c->t0 || c->drift_ts[d] >= c->t0 + c->span,
            "drift_ts[%d] must be inside (t0, t0 + span)", d);
        BAD(d > 0 && c->drift_ts[d] <= c->drift_ts[d - 1], "drift_ts must increase");
    }
    BAD(!(c->drift_frac >= 0.0f && c->drift_frac <= 1.0f), "drift_frac must be in [0, 1]");
    BAD(!(c->drift_strength >= 0.0f && c->drift_strength <= 1.0f),
        "drift_strength must be in [0, 1]");
#undef BAD
    return RLAB_OK;
}

/* ---- random helpers ---------------------------------------------------------------- */
/* Gamma(a, 1) by Marsaglia & Tsang; for a < 1 boost with U^(1/a). */
static double gamma_draw(rlab_rng *r, double a)
{
    double boost = 1.0;
    if (a < 1.0) {
        double u = rlab_rng_double(r);
        boost = pow(u > 1e-300 ? u : 1e-300, 1.0 / a);
        a += 1.0;
    }
    double d = a - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
    for (;;) {
        double x = (double)rlab_rng_normal(r), v = 1.0 + c * x;
        if (v <= 0.0)
            continue;
        v = v * v * v;
        double u = rlab_rng_double(r);
        if (u < 1.0 - 0.0331 * x * x * x * x)
            return d * v * boost;
        if (log(u > 1e-300 ? u : 1e-300) < 0.5 * x * x + d * (1.0 - v + log(v)))
            return d * v * boost;
    }
}

/* Dirichlet(alpha * tilt[k]) over G components (tilt may be NULL = all ones). */
static void dirichlet(rlab_rng *r, double alpha, const double *tilt, int G, float *out)
{
    double g[256], s = 0.0;
    for (int k = 0; k < G; k++) {
        g[k] = gamma_draw(r, alpha * (tilt ? tilt[k] : 1.0));
        s += g[k];
    }
    if (!(s > 0.0)) { /* all underflowed: put the mass on one genre */
        memset(out, 0, (size_t)G * sizeof *out);
        out[rlab_rng_below(r, (uint64_t)G)] = 1.0f;
        return;
    }
    for (int k = 0; k < G; k++)
        out[k] = (float)(g[k] / s);
}

/* Index drawn from cumulative weights cdf[n] (cdf[n-1] = total > 0): the first index whose
 * cdf exceeds u = U(0,1) * total (n - 1 when none), found through a guide table (a binary
 * search over all n gives the same index with more probes): thr[j] =
 * total * j / B and guide[j] = the first index whose cdf exceeds thr[j] (n - 1 when none),
 * j < B; a draw u starts its search between the guides of the thresholds around it. */
static void cdf_guide(const double *cdf, int32_t n, int32_t B, double *thr, int32_t *guide)
{
    int32_t i = 0;
    for (int32_t j = 0; j < B; j++) {
        thr[j] = cdf[n - 1] * (double)j / (double)B;
        while (i < n - 1 && !(cdf[i] > thr[j]))
            i++;
        guide[j] = i;
    }
}

static int32_t cdf_draw_guided(rlab_rng *r, const double *cdf, int32_t n, const double *thr,
                               const int32_t *guide, int32_t B)
{
    double u = rlab_rng_double(r) * cdf[n - 1];
    double x = u / cdf[n - 1] * (double)B;
    int32_t j = x < (double)(B - 1) ? (int32_t)x : B - 1;
    j = j < 0 ? 0 : j;
    while (j > 0 && thr[j] > u) /* rounding: make thr[j] <= u < thr[j + 1] */
        j--;
    while (j + 1 < B && !(thr[j + 1] > u))
        j++;
    /* every index below guide[j] has cdf <= thr[j] <= u; guide[j + 1] has cdf > u or is n - 1 */
    int32_t lo = guide[j], hi = j + 1 < B ? guide[j + 1] : n - 1;
    while (lo < hi) {
        int32_t mid = lo + (hi - lo) / 2;
        if (cdf[mid] > u)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

static int32_t pick_weighted(rlab_rng *r, const double *w, int n)
{
    double t = 0.0;
    for (int k = 0; k < n; k++)
        t += w[k];
    double u = rlab_rng_double(r) * t;
    for (int k = 0; k < n; k++) {
        u -= w[k];
        if (u < 0.0)
            return k;
    }
    return n - 1;
}

/* ---- the world --------------------------------------------------------------------- */
void rlab_world_free(rlab_world *w)
{
    if (!w)
        return;
    rlab_free(w->taste);
    rlab_free(w->drifted);
    rlab_free(w->item_genre);
    rlab_free(w->pop);
    rlab_free(w->succ);
    rlab_free(w->succ_w);
    rlab_free(w->archetype);
    rlab_free(w->follow_off);
    rlab_free(w->follow);
    rlab_free(w->follower_off);
    rlab_free(w->follower);
    rlab_free(w);
}

const char *rlab_world_archetype_name(int a)
{
    return (a >= 0 && a < RLAB_WORLD_N_ARCHETYPES) ? arch_names[a] : "?";
}

const char *rlab_world_genre_name(int g, char *buf, size_t cap)
{
    if (g >= 0 && g < N_GENRE_NAMES)
        return genre_names[g];
    snprintf(buf, cap, "genre%d", g + 1);
    return buf;
}

static int epoch_of(const rlab_world *w, int64_t ts)
{
    int e = 0;
    while (e + 1 < w->n_epochs && ts >= w->epoch_start[e + 1])
        e++;
    return e;
}

static const float *taste_row(const rlab_world *w, int e, int32_t u)
{
    return w->taste + ((size_t)e * (size_t)w->n_users + (size_t)u) * (size_t)w->n_genres;
}

const float *rlab_world_taste(const rlab_world *w, int32_t user, int64_t ts)
{
    if (user < 0 || user >= w->n_users)
        return NULL;
    return taste_row(w, epoch_of(w, ts), user);
}

static float affinity_e(const rlab_world *w, int e, int32_t u, int32_t i)
{
    const float *t = taste_row(w, e, u);
    const float *g = w->item_genre + (size_t)i * (size_t)w->n_genres;
    double d = 0.0;
    for (int k = 0; k < w->n_genres; k++)
        d += (double)t[k] * (double)g[k];
    return (float)d;
}

float rlab_world_true_affinity_at(const rlab_world *w, int32_t user, int32_t item, int64_t ts)
{
    if (user < 0 || user >= w->n_users || item < 0 || item >= w->n_items)
        return 0.0f;
    return affinity_e(w, epoch_of(w, ts), user, item);
}

float rlab_world_true_affinity(const rlab_world *w, int32_t user, int32_t item)
{
    if (user < 0 || user >= w->n_users || item < 0 || item >= w->n_items)
        return 0.0f;
    return affinity_e(w, w->n_epochs - 1, user, item);
}

/* ---- phase: items ------------------------------------------------------------------ */
static int gen_items(rlab_world *w, rlab_dataset *ds, rlab_rng *r, rlab_err *err)
{
    const rlab_world_config *c = &w->cfg;
    int32_t I = w->n_items, G = w->n_genres, NS = c->n_successors;
    int rc = RLAB_OK;
    rlab_feat_col *ctitle, *cgen, *cyear;
    int32_t *first = NULL, *perm = NULL, *by_genre = NULL, *gcount = NULL, *gstart = NULL;
    rlab_vocab titles;
    rlab_vocab_init(&titles);

    w->item_genre = rlab_calloc((size_t)I * G, sizeof *w->item_genre);
    w->pop = rlab_malloc((size_t)I * sizeof *w->pop);
    w->succ = rlab_malloc((size_t)I * NS * sizeof *w->succ);
    w->succ_w = rlab_malloc((size_t)NS * sizeof *w->succ_w);
    first = rlab_malloc((size_t)I * sizeof *first);
    perm = rlab_malloc((size_t)I * sizeof *perm);
    by_genre = rlab_malloc((size_t)I * sizeof *by_genre);
    gcount = rlab_calloc((size_t)G, sizeof *gcount);
    gstart = rlab_calloc((size_t)G + 1, sizeof *gstart);
    ds->item_feats.n_entities = I;
    if (!(ctitle = rlab_feats_add(&ds->item_feats, "title", RLAB_FEAT_TEXT)) ||
        !(cgen = rlab_feats_add(&ds->item_feats, "genres", RLAB_FEAT_TOKEN_SEQ)) ||
        !(cyear = rlab_feats_add(&ds->item_feats, "year", RLAB_FEAT_FLOAT)))
        goto oom;
    /* cols may have moved while adding: re-find them */
    ctitle = rlab_feats_find(&ds->item_feats, "title");
    cgen = rlab_feats_find(&ds->item_feats, "genres");
    cyear = rlab_feats_find(&ds->item_feats, "year");
    ctitle->text = rlab_calloc((size_t)I, sizeof *ctitle->text);
    cgen->off = rlab_malloc(((size_t)I + 1) * sizeof *cgen->off);
    cgen->seq = rlab_malloc((size_t)I * 3 * sizeof *cgen->seq);
    cyear->num = rlab_malloc((size_t)I * sizeof *cyear->num);
    if (!w->item_genre || !w->pop || !w->succ || !w->succ_w || !first || !perm || !by_genre ||
        !gcount || !gstart || !ctitle->text || !cgen->off || !cgen->seq || !cyear->num)
        goto oom;
    char gbuf[32];
    for (int g = 0; g < G; g++)
        if (rlab_vocab_add(&cgen->vocab, rlab_world_genre_name(g, gbuf, sizeof gbuf),
                           strlen(rlab_world_genre_name(g, gbuf, sizeof gbuf))) < 0)
            goto oom;

    /* genres: the first one by a mildly skewed genre prior, the rest uniform and distinct */
    double gw[256];
    for (int g = 0; g < G; g++)
        gw[g] = 1.0 / sqrt((double)g + 1.0);
    cgen->off[0] = 0;
    for (int32_t i = 0; i < I; i++) {
        double u = rlab_rng_double(r);
        int ng = u < 0.5 ? 1 : u < 0.85 ? 2 : 3;
        if (ng > G)
            ng = G;
        int gs[3];
        gs[0] = pick_weighted(r, gw, G);
        for (int k = 1; k < ng; k++) {
            int g, dup;
            do {
                g = (int)rlab_rng_below(r, (uint64_t)G);
                dup = 0;
                for (int q = 0; q < k; q++)
                    dup |= gs[q] == g;
            } while (dup);
            gs[k] = g;
        }
        first[i] = gs[0];
        gcount[gs[0]]++;
        for (int k = 0; k < ng; k++) {
            w->item_genre[(size_t)i * G + gs[k]] = 1.0f / (float)ng;
            cgen->seq[cgen->off[i] + k] = gs[k];
        }
        cgen->off[i + 1] = cgen->off[i] + ng;
    }

    /* popularity: a random rank permutation, weight (rank + 1)^-zipf */
    for (int32_t i = 0; i < I; i++)
        perm[i] = i;
    rlab_rng_shuffle_i32(r, perm, (size_t)I);
    double ps = 0.0;
    for (int32_t i = 0; i < I; i++) {
        w->pop[i] = pow((double)perm[i] + 1.0, -(double)c->zipf);
        ps += w->pop[i];
    }
    for (int32_t i = 0; i < I; i++)
        w->pop[i] /= ps;

    /* year: mostly recent, a long tail back to 1930 */
    for (int32_t i = 0; i < I; i++) {
        double y = 2023.0 - floor(fabs((double)rlab_rng_normal(r)) * 14.0);
        cyear->num[i] = (float)(y < 1930.0 ? 1930.0 : y);
    }

    /* titles: word-list patterns, unique (a repeat becomes a sequel: "... II") */
    for (int32_t i = 0; i < I; i++) {
        char t[160];
        int special = -1;
        for (int s = 0; s < N_SPECIAL && s < I; s++)
            if (i == (int32_t)(((int64_t)s * I) / N_SPECIAL) + (I > 2 * N_SPECIAL ? 3 : 0))
                special = s;
        const char *a1 = adjectives[rlab_rng_below(r, N_ADJ)];
        const char *n1 = nouns[rlab_rng_below(r, N_NOUN)];
        const char *n2 = nouns[rlab_rng_below(r, N_NOUN)];
        int pat = (int)rlab_rng_below(r, 4);
        if (special >= 0)
            snprintf(t, sizeof t, "%s", special_titles[special]);
        else if (pat == 0)
            snprintf(t, sizeof t, "The %s %s", a1, n1);
        else if (pat == 1)
            snprintf(t, sizeof t, "%s of the %s %s", n2, a1, n1);
        else if (pat == 2)
            snprintf(t, sizeof t, "%s %s", a1, n1);
        else
            snprintf(t, sizeof t, "%s and %s", n1, n2);
        size_t base = strlen(t);
        for (int k = 0; rlab_vocab_find(&titles, t, strlen(t)) >= 0; k++) {
            if (k < 9)
                snprintf(t + base, sizeof t - base, " %s", roman[k]);
            else /* only in very crowded worlds: plain numbers never run out */
                snprintf(t + base, sizeof t - base, " %d", k + 2);
        }
        if (rlab_vocab_add(&titles, t, strlen(t)) < 0 || !(ctitle->text[i] = rlab_strdup(t)))
            goto oom;
    }

    /* successors: mostly items sharing the first genre, distinct, never the item itself */
    for (int32_t i = 0; i < I; i++)
        gstart[first[i] + 1]++;
    for (int g = 0; g < G; g++)
        gstart[g + 1] += gstart[g];
    memset(gcount, 0, (size_t)G * sizeof *gcount);
    for (int32_t i = 0; i < I; i++)
        by_genre[gstart[first[i]] + gcount[first[i]]++] = i;
    for (int32_t i = 0; i < I; i++) {
        int32_t *row = w->succ + (size_t)i * NS;
        int g = first[i];
        int32_t gn = gstart[g + 1] - gstart[g];
        for (int k = 0; k < NS; k++) {
            int32_t cand;
            int dup;
            do {
                if (gn > NS + 1 && rlab_rng_uniform(r) < 0.8f) {
                    /* popularity-biased: the better of two uniform picks in the genre */
                    int32_t c1 = by_genre[gstart[g] + (int32_t)rlab_rng_below(r, (uint64_t)gn)];
                    int32_t c2 = by_genre[gstart[g] + (int32_t)rlab_rng_below(r, (uint64_t)gn)];
                    cand = w->pop[c1] >= w->pop[c2] ? c1 : c2;
                } else {
                    cand = (int32_t)rlab_rng_below(r, (uint64_t)I);
                }
                dup = cand == i;
                for (int q = 0; q < k; q++)
                    dup |= row[q] == cand;
            } while (dup);
            row[k] = cand;
        }
    }
    /* successor probabilities halve with rank: 4/7, 2/7, 1/7 for three */
    double sw = 0.0;
    for (int k = 0; k < NS; k++)
        sw += ldexp(1.0, -k);
    for (int k = 0; k < NS; k++)
        w->succ_w[k] = (float)(ldexp(1.0, -k) / sw);
    goto done;
oom:
    rc = rlab_errf(err, RLAB_ENOMEM, "world: out of memory generating items");
done:
    rlab_vocab_clear(&titles);
    rlab_free(first);
    rlab_free(perm);
    rlab_free(by_genre);
    rlab_free(gcount);
    rlab_free(gstart);
    return rc;
}

/* ---- phase: users (tastes, demographics, archetypes) ------------------------------- */
static int gen_users(rlab_world *w, rlab_dataset *ds, rlab_rng *r, rlab_err *err)
{
    int32_t U = w->n_users, G = w->n_genres;
    w->n_epochs = 1 + w->cfg.n_drift;
    w->taste = rlab_malloc((size_t)w->n_epochs * U * G * sizeof *w->taste);
    w->archetype = rlab_malloc((size_t)U * sizeof *w->archetype);
    ds->user_feats.n_entities = U;
    if (!w->taste || !w->archetype || !rlab_feats_add(&ds->user_feats, "age", RLAB_FEAT_FLOAT) ||
        !rlab_feats_add(&ds->user_feats, "gender", RLAB_FEAT_TOKEN) ||
        !rlab_feats_add(&ds->user_feats, "occupation", RLAB_FEAT_TOKEN) ||
        !rlab_feats_add(&ds->user_feats, "archetype", RLAB_FEAT_TOKEN))
        goto oom;
    rlab_feat_col *cage = rlab_feats_find(&ds->user_feats, "age");
    rlab_feat_col *cgender = rlab_feats_find(&ds->user_feats, "gender");
    rlab_feat_col *cocc = rlab_feats_find(&ds->user_feats, "occupation");
    rlab_feat_col *carch = rlab_feats_find(&ds->user_feats, "archetype");
    cage->num = rlab_malloc((size_t)U * sizeof *cage->num);
    cgender->tok = rlab_malloc((size_t)U * sizeof *cgender->tok);
    cocc->tok = rlab_malloc((size_t)U * sizeof *cocc->tok);
    carch->tok = rlab_malloc((size_t)U * sizeof *carch->tok);
    if (!cage->num || !cgender->tok || !cocc->tok || !carch->tok)
        goto oom;
    /* fixed vocab order so token indices do not depend on who comes first */
    static const char *const genders[] = {"F", "M", "X"};
    for (int k = 0; k < 3; k++)
        if (rlab_vocab_add(&cgender->vocab, genders[k], 1) < 0)
            goto oom;
    for (int k = 0; k < N_OCC; k++)
        if (rlab_vocab_add(&cocc->vocab, occupations[k], strlen(occupations[k])) < 0)
            goto oom;
    for (int k = 0; k < RLAB_WORLD_N_ARCHETYPES; k++)
        if (rlab_vocab_add(&carch->vocab, arch_names[k], strlen(arch_names[k])) < 0)
            goto oom;
    int student = -1;
    for (int k = 0; k < N_OCC; k++)
        if (strcmp(occupations[k], "student") == 0)
            student = k;
    /* Demographics tilt tastes so user features carry signal: each age group (< 25,
     * 25-44, 45+) and each gender favours two genres, whose Dirichlet concentration is
     * tripled (doubled for gender). */
    int fav_age[3][2], fav_gender[3][2];
    for (int q = 0; q < 3; q++)
        for (int k = 0; k < 2; k++) {
            fav_age[q][k] = (int)rlab_rng_below(r, (uint64_t)G);
            fav_gender[q][k] = (int)rlab_rng_below(r, (uint64_t)G);
        }
    double tilt[256];
    for (int32_t u = 0; u < U; u++) {
        int a = pick_weighted(r, arch_share, RLAB_WORLD_N_ARCHETYPES);
        w->archetype[u] = (uint8_t)a;
        carch->tok[u] = a;
        double age = floor(34.0 + 12.0 * (double)rlab_rng_normal(r) + 0.5);
        age = age < 16.0 ? 16.0 : age > 75.0 ? 75.0 : age;
        cage->num[u] = (float)age;
        double gu = rlab_rng_double(r);
        int gender = gu < 0.48 ? 0 : gu < 0.96 ? 1 : 2;
        cgender->tok[u] = gender;
        int occ = (int)rlab_rng_below(r, N_OCC);
        if (age < 23.0 && rlab_rng_uniform(r) < 0.6f)
            occ = student;
        cocc->tok[u] = occ;
        int ag = age < 25.0 ? 0 : age < 45.0 ? 1 : 2;
        for (int g = 0; g < G; g++)
            tilt[g] = 1.0;
        for (int k = 0; k < 2; k++) {
            tilt[fav_age[ag][k]] *= 3.0;
            tilt[fav_gender[gender][k]] *= 2.0;
        }
        /* Explorers have broad tastes, everyone else sparse ones */
        double alpha = (double)w->cfg.taste_alpha * (a == RLAB_ARCH_EXPLORER ? 3.0 : 1.0);
        dirichlet(r, alpha, tilt, G, w->taste + (size_t)u * G);
    }
    return RLAB_OK;
oom:
    return rlab_errf(err, RLAB_ENOMEM, "world: out of memory generating users");
}

/* ---- phase: drift ------------------------------------------------------------------ */
static int gen_drift(rlab_world *w, rlab_rng *r, rlab_err *err)
{
    int32_t U = w->n_users, G = w->n_genres;
    const rlab_world_config *c = &w->cfg;
    w->epoch_start[0] = c->t0;
    if (c->n_drift == 0)
        return RLAB_OK;
    w->drifted = rlab_calloc((size_t)c->n_drift * U, 1);
    if (!w->drifted)
        return rlab_errf(err, RLAB_ENOMEM, "world: out of memory generating drift");
    float fresh[256];
    double s = (double)c->drift_strength;
    for (int e = 1; e <= c->n_drift; e++) {
        w->epoch_start[e] = c->drift_ts[e - 1];
        for (int32_t u = 0; u < U; u++) {
            const float *old = taste_row(w, e - 1, u);
            float *cur = w->taste + ((size_t)e * U + u) * G;
            memcpy(cur, old, (size_t)G * sizeof *cur);
            if (rlab_rng_uniform(r) < c->drift_frac) {
                w->drifted[(size_t)(e - 1) * U + u] = 1;
                dirichlet(r, (double)c->taste_alpha, NULL, G, fresh);
                for (int k = 0; k < G; k++)
                    cur[k] = (float)((1.0 - s) * (double)old[k] + s * (double)fresh[k]);
            }
        }
    }
    return RLAB_OK;
}

/* ---- phase: follower graph --------------------------------------------------------- */
static double cosine(const float *a, const float *b, int n)
{
    double d = 0.0, na = 0.0, nb = 0.0;
    for (int k = 0; k < n; k++) {
        d += (double)a[k] * (double)b[k];
        na += (double)a[k] * (double)a[k];
        nb += (double)b[k] * (double)b[k];
    }
    return (na > 0.0 && nb > 0.0) ? d / sqrt(na * nb) : 0.0;
}

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

static int gen_graph(rlab_world *w, rlab_rng *r, rlab_err *err)
{
    int32_t U = w->n_users, G = w->n_genres;
    const rlab_world_config *c = &w->cfg;
    int rc = RLAB_OK;
    int32_t *deg = rlab_malloc((size_t)U * sizeof *deg);
    int32_t *stamp = rlab_malloc((size_t)U * sizeof *stamp);
    int32_t *cand = NULL;
    double *cw = NULL;
    w->follow_off = rlab_malloc(((size_t)U + 1) * sizeof *w->follow_off);
    w->follower_off = rlab_calloc((size_t)U + 1, sizeof *w->follower_off);
    if (!deg || !stamp || !w->follow_off || !w->follower_off)
        goto oom;
    /* out-degrees first, so the edge array is allocated once */
    w->follow_off[0] = 0;
    int32_t maxc = 0;
    for (int32_t u = 0; u < U; u++) {
        double d =
            (double)c->avg_follow * arch_follow[w->archetype[u]] * (0.5 + rlab_rng_double(r));
        int32_t di = (int32_t)floor(d + 0.5);
        deg[u] = di > U - 1 ? U - 1 : di;
        w->follow_off[u + 1] = w->follow_off[u] + deg[u];
        int32_t nc = deg[u] * 6 + 10;
        nc = nc > U - 1 ? U - 1 : nc;
        if (nc > maxc)
            maxc = nc;
        stamp[u] = -1;
    }
    int64_t E = w->follow_off[U];
    w->follow = rlab_malloc((size_t)(E > 0 ? E : 1) * sizeof *w->follow);
    w->follower = rlab_malloc((size_t)(E > 0 ? E : 1) * sizeof *w->follower);
    cand = rlab_malloc((size_t)(maxc > 0 ? maxc : 1) * sizeof *cand);
    cw = rlab_malloc((size_t)(maxc > 0 ? maxc : 1) * sizeof *cw);
    if (!w->follow || !w->follower || !cand || !cw)
        goto oom;
    for (int32_t u = 0; u < U; u++) {
        if (deg[u] == 0)
            continue;
        /* a pool of distinct random candidates (stamp[v] == u marks "already in the pool") */
        int32_t nc = deg[u] * 6 + 10;
        nc = nc > U - 1 ? U - 1 : nc;
        stamp[u] = u;
        for (int32_t k = 0; k < nc; k++) {
            int32_t v;
            do
                v = (int32_t)rlab_rng_below(r, (uint64_t)U);
            while (stamp[v] == u);
            stamp[v] = u;
            cand[k] = v;
            double sim = cosine(w->taste + (size_t)u * G, w->taste + (size_t)v * G, G);
            cw[k] =
                exp((double)c->homophily * sim) * (w->archetype[v] == RLAB_ARCH_POSTER ? 1.5 : 1.0);
        }
        /* draw deg[u] of them without replacement, proportionally to the weights */
        int32_t *row = w->follow + w->follow_off[u];
        for (int32_t k = 0; k < deg[u]; k++) {
            int32_t j = pick_weighted(r, cw, nc);
            row[k] = cand[j];
            cand[j] = cand[nc - 1];
            cw[j] = cw[nc - 1];
            nc--;
        }
        qsort(row, (size_t)deg[u], sizeof *row, cmp_i32);
    }
    /* reverse CSR: followers of each user, sorted because sources are visited in order */
    for (int64_t e = 0; e < E; e++)
        w->follower_off[w->follow[e] + 1]++;
    for (int32_t u = 0; u < U; u++)
        w->follower_off[u + 1] += w->follower_off[u];
    for (int32_t u = 0; u < U; u++)
        stamp[u] = 0;
    for (int32_t u = 0; u < U; u++)
        for (int64_t e = w->follow_off[u]; e < w->follow_off[u + 1]; e++) {
            int32_t v = w->follow[e];
            w->follower[w->follower_off[v] + stamp[v]++] = u;
        }
    goto done;
oom:
    rc = rlab_errf(err, RLAB_ENOMEM, "world: out of memory generating the graph");
done:
    rlab_free(deg);
    rlab_free(stamp);
    rlab_free(cand);
    rlab_free(cw);
    return rc;
}

/* ---- phase: interactions ----------------------------------------------------------- */
typedef struct ev {
    int64_t ts;
    int32_t user, item;
    float rating;
    int32_t k; /* position in the user's sequence: total order for ties */
} ev;

static int cmp_ev(const void *a, const void *b)
{
    const ev *x = a, *y = b;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    if (x->user != y->user)
        return x->user < y->user ? -1 : 1;
    return (x->k > y->k) - (x->k < y->k);
}

typedef struct ev_sort_job {
    ev *p;
    size_t n;
} ev_sort_job;

static void *ev_sort_main(void *arg)
{
    ev_sort_job *j = arg;
    qsort(j->p, j->n, sizeof *j->p, cmp_ev);
    return NULL;
}

/* Items with the same genre row, as classes: cls[i] = class of item i, rep[c] = its first
 * item, and each class's nonzero genres (at most 3) in ascending order: ng[c] genres
 * cg[c][..] with weights cv[c][..]. gen_inter's choice weights and ratings need the affinity
 * of every item; per class and over the nonzero genres only, it is the same float as
 * affinity_e (the skipped terms add +0.0 to a nonnegative sum, which changes nothing) at a
 * fraction of the cost, and its pow once per class. */
typedef struct item_classes {
    int32_t n, *cls, *rep;
    int8_t *ng;
    int16_t (*cg)[3];
    float (*cv)[3];
} item_classes;

typedef struct item_row {
    const float *row;
    int32_t G, i;
} item_row;

static int cmp_item_row(const void *a, const void *b)
{
    const item_row *x = a, *y = b;
    int c = memcmp(x->row, y->row, (size_t)x->G * sizeof *x->row);
    return c ? c : (x->i > y->i) - (x->i < y->i);
}

static void classes_free(item_classes *ic)
{
    rlab_free(ic->cls), rlab_free(ic->rep), rlab_free(ic->ng), rlab_free(ic->cg);
    rlab_free(ic->cv);
}

static int classes_build(const rlab_world *w, item_classes *ic)
{
    int32_t I = w->n_items, G = w->n_genres;
    memset(ic, 0, sizeof *ic);
    item_row *ord = rlab_malloc((size_t)I * sizeof *ord);
    ic->cls = rlab_malloc((size_t)I * sizeof *ic->cls);
    ic->rep = rlab_malloc((size_t)I * sizeof *ic->rep);
    ic->ng = rlab_malloc((size_t)I);
    ic->cg = rlab_malloc((size_t)I * sizeof *ic->cg);
    ic->cv = rlab_malloc((size_t)I * sizeof *ic->cv);
    if (!ord || !ic->cls || !ic->rep || !ic->ng || !ic->cg || !ic->cv) {
        rlab_free(ord);
        classes_free(ic);
        return RLAB_ENOMEM;
    }
    for (int32_t i = 0; i < I; i++)
        ord[i] = (item_row){w->item_genre + (size_t)i * (size_t)G, G, i};
    qsort(ord, (size_t)I, sizeof *ord, cmp_item_row);
    int32_t n = 0;
    for (int32_t k = 0; k < I; k++) {
        int32_t i = ord[k].i;
        const float *g = w->item_genre + (size_t)i * (size_t)G;
        if (k == 0 || memcmp(g, w->item_genre + (size_t)ic->rep[n - 1] * (size_t)G,
                             (size_t)G * sizeof *g) != 0) {
            int m = 0;
            for (int32_t q = 0; q < G && m <= 3; q++)
                if (g[q] > 0.0f || g[q] < 0.0f) {
                    if (m < 3)
                        ic->cg[n][m] = (int16_t)q, ic->cv[n][m] = g[q];
                    m++;
                }
            ic->ng[n] = (int8_t)(m <= 3 ? m : -1); /* -1: more than 3, the dense sum */
            ic->rep[n++] = i;
        }
        ic->cls[i] = n - 1;
    }
    ic->n = n;
    rlab_free(ord);
    return RLAB_OK;
}

/* affinity_e of class c's items (bit for bit). */
static float class_affinity(const rlab_world *w, const item_classes *ic, int e, int32_t u,
                            int32_t c)
{
    if (ic->ng[c] < 0)
        return affinity_e(w, e, u, ic->rep[c]);
    const float *t = taste_row(w, e, u);
    double d = 0.0;
    for (int k = 0; k < ic->ng[c]; k++)
        d += (double)t[ic->cg[c][k]] * (double)ic->cv[c][k];
    return (float)d;
}

static int gen_inter(rlab_world *w, rlab_dataset *ds, rlab_rng *r, rlab_err *err)
{
    const rlab_world_config *c = &w->cfg;
    int32_t U = w->n_users, I = w->n_items, G = w->n_genres, NS = c->n_successors;
    int rc = RLAB_OK;
    int32_t *cnt = rlab_malloc((size_t)U * sizeof *cnt);
    double *act = rlab_malloc((size_t)U * sizeof *act);
    double *cdf = rlab_malloc((size_t)I * sizeof *cdf);
    double *wt = rlab_malloc((size_t)I * sizeof *wt);
    /* pop^pop_power, and pop^(pop_power / 2) for Explorers: computed once, not per user */
    double *powpop2 = rlab_malloc(2 * (size_t)I * sizeof *powpop2), *powpop = powpop2;
    int32_t *seen = rlab_malloc((size_t)I * sizeof *seen);
    double *gaps = NULL;
    ev *evs = NULL;
    item_classes ic;
    int have_ic = classes_build(w, &ic) == RLAB_OK;
    float *caf = have_ic ? rlab_malloc((size_t)ic.n * sizeof *caf) : NULL;  /* class affinity */
    double *cpw = have_ic ? rlab_malloc((size_t)ic.n * sizeof *cpw) : NULL; /* its weight */
    double *thr = rlab_malloc((size_t)I * sizeof *thr);                     /* cdf_guide's table */
    int32_t *guide = rlab_malloc((size_t)I * sizeof *guide);
    if (!cnt || !act || !cdf || !wt || !powpop2 || !seen || !caf || !cpw || !thr || !guide)
        goto oom;

    /* per-user counts: min_per_user plus a lognormal share of the rest, rounded by
     * cumulative sums so the total is exact before the per-user cap */
    double sa = 0.0;
    for (int32_t u = 0; u < U; u++) {
        act[u] = exp(0.8 * (double)rlab_rng_normal(r)) * arch_activity[w->archetype[u]];
        sa += act[u];
    }
    int64_t extra = c->n_inter - (int64_t)U * c->min_per_user;
    int32_t cap = (int32_t)(0.6 * I);
    if (cap < c->min_per_user)
        cap = c->min_per_user;
    double cum = 0.0;
    int64_t prev = 0, total = 0;
    int32_t maxn = 0;
    for (int32_t u = 0; u < U; u++) {
        cum += act[u];
        int64_t upto = (int64_t)floor((double)extra * cum / sa + 0.5);
        int64_t n = c->min_per_user + (upto - prev);
        prev = upto;
        cnt[u] = (int32_t)(n > cap ? cap : n);
        total += cnt[u];
        if (cnt[u] > maxn)
            maxn = cnt[u];
    }
    /* the cap clipped the heaviest users: hand their surplus out one by one to the others,
     * so the total is exactly n_inter (feasible since n_inter <= U * I / 2 < U * cap) */
    for (int32_t u = 0; total < c->n_inter; u = (u + 1) % U)
        if (cnt[u] < cap) {
            cnt[u]++;
            total++;
            maxn = cnt[u] > maxn ? cnt[u] : maxn;
        }
    evs = rlab_malloc((size_t)total * sizeof *evs);
    gaps = rlab_malloc(((size_t)maxn + 1) * sizeof *gaps);
    if (!evs || !gaps)
        goto oom;
    for (int32_t i = 0; i < I; i++)
        seen[i] = -1;
    const double eps = (double)c->taste_eps;
    int64_t ne = 0;
    for (int x = 0; x < 2; x++) {
        double pp = (double)c->pop_power * (x ? 0.5 : 1.0);
        for (int32_t i = 0; i < I; i++)
            powpop2[(size_t)x * (size_t)I + (size_t)i] = pow(w->pop[i], pp);
    }
    for (int32_t u = 0; u < U; u++) {
        int a = w->archetype[u];
        powpop = powpop2 + (a == RLAB_ARCH_EXPLORER ? (size_t)I : 0);
        /* timeline: start in the first half of the span, exponential gaps scaled to end
         * before t0 + span, strictly increasing */
        int64_t start = c->t0 + (int64_t)floor(rlab_rng_double(r) * 0.5 * (double)c->span);
        int64_t end = c->t0 + c->span - 1;
        double gs = 0.0;
        for (int32_t k = 0; k <= cnt[u]; k++) {
            gaps[k] = -log(1.0 - rlab_rng_double(r));
            gs += gaps[k];
        }
        int e_cur = -1, prev_item = -1;
        double acc = 0.0;
        int64_t last_ts = start - 1;
        double tmax = 0.0; /* max affinity possible in the current epoch (for ratings) */
        for (int32_t k = 0; k < cnt[u]; k++) {
            acc += gaps[k];
            int64_t ts = start + (int64_t)floor((double)(end - start) * acc / gs);
            if (ts <= last_ts)
                ts = last_ts + 1;
            last_ts = ts;
            int e = epoch_of(w, ts);
            if (e != e_cur) { /* (re)build the choice distribution for this taste epoch */
                e_cur = e;
                const float *t = taste_row(w, e, u);
                tmax = 0.0;
                for (int g = 0; g < G; g++)
                    tmax = (double)t[g] > tmax ? (double)t[g] : tmax;
                for (int32_t q = 0; q < ic.n; q++) {
                    caf[q] = class_affinity(w, &ic, e, u, q);
                    cpw[q] = pow((double)caf[q] + eps, (double)c->taste_power);
                }
                double s = 0.0;
                for (int32_t i = 0; i < I; i++) {
                    wt[i] = powpop[i] * cpw[ic.cls[i]];
                    s += wt[i];
                    cdf[i] = s;
                }
                cdf_guide(cdf, I, I, thr, guide);
            }
            int32_t item = -1;
            if (prev_item >= 0 && rlab_rng_uniform(r) < c->p_transition) {
                double sw[8];
                for (int q = 0; q < NS; q++)
                    sw[q] = (double)w->succ_w[q];
                int32_t cand = w->succ[(size_t)prev_item * NS + pick_weighted(r, sw, NS)];
                if (seen[cand] != u)
                    item = cand;
            }
            for (int tries = 0; item < 0 && tries < 64; tries++) {
                int32_t cand = cdf_draw_guided(r, cdf, I, thr, guide, I);
                if (seen[cand] != u)
                    item = cand;
            }
            if (item < 0) { /* exact fallback: weighted over the unseen items */
                double s = 0.0;
                for (int32_t i = 0; i < I; i++)
                    s += seen[i] != u ? wt[i] : 0.0;
                double x = rlab_rng_double(r) * s;
                for (int32_t i = 0; i < I && item < 0; i++)
                    if (seen[i] != u) {
                        x -= wt[i];
                        if (x < 0.0)
                            item = i;
                    }
                for (int32_t i = I - 1; i >= 0 && item < 0; i--) /* rounding at the end */
                    if (seen[i] != u)
                        item = i;
            }
            seen[item] = u;
            prev_item = item;
            double rel = tmax > 0.0 ? (double)caf[ic.cls[item]] / tmax : 0.0;
            double rt = 1.0 + 4.0 * rel + 0.7 * (double)rlab_rng_normal(r) -
                        (a == RLAB_ARCH_CRITIC ? 0.8 : 0.0);
            rt = floor(rt + 0.5);
            rt = rt < 1.0 ? 1.0 : rt > 5.0 ? 5.0 : rt;
            evs[ne++] = (ev){.ts = ts, .user = u, .item = item, .rating = (float)rt, .k = k};
        }
    }
    /* into time order: the two halves sorted at once (the second on a thread), then merged
     * as they are pushed; cmp_ev is a total order, so this is qsort's order */
    int64_t mid = ne / 2;
    ev_sort_job sj = {evs + mid, (size_t)(ne - mid)};
    pthread_t th;
    int started = ne >= 4096 && pthread_create(&th, NULL, ev_sort_main, &sj) == 0;
    qsort(evs, (size_t)(started ? mid : ne), sizeof *evs, cmp_ev);
    if (started)
        pthread_join(th, NULL);
    if (rlab_inter_reserve(&ds->inter, (size_t)ne) != RLAB_OK)
        goto oom;
    for (int64_t a = 0, b = started ? mid : ne, ea = b; a < ea || b < ne;) {
        const ev *x = b >= ne || (a < ea && cmp_ev(&evs[a], &evs[b]) < 0) ? &evs[a++] : &evs[b++];
        rlab_inter_push(&ds->inter, x->user, x->item, x->ts, x->rating, NULL);
    }
    ds->inter.flags = RLAB_INTER_HAS_TS | RLAB_INTER_HAS_RATING;
    goto done;
oom:
    rc = rlab_errf(err, RLAB_ENOMEM, "world: out of memory generating interactions");
done:
    rlab_free(cnt);
    rlab_free(act);
    rlab_free(cdf);
    rlab_free(wt);
    rlab_free(powpop2);
    rlab_free(seen);
    rlab_free(gaps);
    rlab_free(evs);
    rlab_free(caf);
    rlab_free(cpw);
    rlab_free(thr);
    rlab_free(guide);
    if (have_ic)
        classes_free(&ic);
    return rc;
}

/* ---- entry points ------------------------------------------------------------------ */
typedef struct graph_job {
    rlab_world *w;
    rlab_rng *r;
    int rc;
    rlab_err err;
} graph_job;

static void *graph_main(void *arg)
{
    graph_job *j = arg;
    j->rc = gen_graph(j->w, j->r, &j->err);
    return NULL;
}

int rlab_world_generate(const rlab_world_config *cfg, const char *name, rlab_world **world,
                        rlab_dataset **ds_out, rlab_err *err)
{
    *world = NULL;
    *ds_out = NULL;
    int rc = check_config(cfg, err);
    if (rc != RLAB_OK)
        return rc;
    if ((rc = rlab_name_check("dataset", name, err)) != RLAB_OK)
        return rc;
    rlab_world *w = rlab_calloc(1, sizeof *w);
    rlab_dataset *ds = rlab_dataset_new(name ? name : "world", err);
    if (!w || !ds) {
        rlab_free(w);
        rlab_dataset_free(ds);
        return rlab_errf(err, RLAB_ENOMEM, "world: out of memory");
    }
    w->cfg = *cfg;
    w->n_users = cfg->n_users;
    w->n_items = cfg->n_items;
    w->n_genres = cfg->n_genres;
    snprintf(ds->format, sizeof ds->format, "world");
    snprintf(ds->source, sizeof ds->source, "world(seed=%llu)", (unsigned long long)cfg->seed);

    char id[32];
    for (int32_t u = 0; u < w->n_users; u++) {
        int n = snprintf(id, sizeof id, "u%d", (int)u);
        if (rlab_vocab_add(&ds->users, id, (size_t)n) != u) {
            rc = rlab_errf(err, RLAB_ENOMEM, "world: out of memory");
            goto fail;
        }
    }
    for (int32_t i = 0; i < w->n_items; i++) {
        int n = snprintf(id, sizeof id, "i%d", (int)i);
        if (rlab_vocab_add(&ds->items, id, (size_t)n) != i) {
            rc = rlab_errf(err, RLAB_ENOMEM, "world: out of memory");
            goto fail;
        }
    }
    rlab_rng master, r_items, r_users, r_drift, r_graph, r_inter;
    rlab_rng_seed(&master, cfg->seed);
    rlab_rng_split(&master, &r_items);
    rlab_rng_split(&master, &r_users);
    rlab_rng_split(&master, &r_drift);
    rlab_rng_split(&master, &r_graph);
    rlab_rng_split(&master, &r_inter);
    if ((rc = gen_items(w, ds, &r_items, err)) != RLAB_OK ||
        (rc = gen_users(w, ds, &r_users, err)) != RLAB_OK ||
        (rc = gen_drift(w, &r_drift, err)) != RLAB_OK)
        goto fail;
    /* the graph and the interactions draw from their own generators and neither reads what
     * the other writes: the graph is made on a thread meanwhile (the same world) */
    graph_job gj = {.w = w, .r = &r_graph};
    pthread_t th;
    int started = pthread_create(&th, NULL, graph_main, &gj) == 0;
    if (!started)
        graph_main(&gj);
    rc = gen_inter(w, ds, &r_inter, err);
    if (started)
        pthread_join(th, NULL);
    if (gj.rc != RLAB_OK) { /* the graph's error first, as when it came first */
        *err = gj.err;
        rc = gj.rc;
    }
    if (rc != RLAB_OK)
        goto fail;
    *world = w;
    *ds_out = ds;
    return RLAB_OK;
fail:
    rlab_world_free(w);
    rlab_dataset_free(ds);
    return rc;
}

int rlab_world_demo(rlab_world **world, rlab_dataset **ds, rlab_err *err)
{
    rlab_world_config c;
    rlab_world_config_demo(&c);
    return rlab_world_generate(&c, "demo", world, ds, err);
}

/* ---- checksum ---------------------------------------------------------------------- */
static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ull;
    }
    return h;
}

static uint64_t fnv_vocab(uint64_t h, const rlab_vocab *v)
{
    h = fnv(h, &v->n, sizeof v->n);
    for (int32_t i = 0; i < v->n; i++)
        h = fnv(h, v->names[i], strlen(v->names[i]) + 1);
    return h;
}

static uint64_t fnv_feats(uint64_t h, const rlab_feats *f)
{
    int32_t n = f->n_entities;
    h = fnv(h, &n, sizeof n);
    for (int c = 0; c < f->ncols; c++) {
        const rlab_feat_col *col = &f->cols[c];
        h = fnv(h, col->name, strlen(col->name) + 1);
        int kind = (int)col->kind;
        h = fnv(h, &kind, sizeof kind);
        h = fnv_vocab(h, &col->vocab);
        if (col->tok)
            h = fnv(h, col->tok, (size_t)n * sizeof *col->tok);
        if (col->off) {
            h = fnv(h, col->off, ((size_t)n + 1) * sizeof *col->off);
            h = fnv(h, col->seq, (size_t)col->off[n] * sizeof *col->seq);
        }
        if (col->num)
            h = fnv(h, col->num, (size_t)n * sizeof *col->num);
        if (col->text)
            for (int32_t i = 0; i < n; i++)
                h = col->text[i] ? fnv(h, col->text[i], strlen(col->text[i]) + 1) : fnv(h, "", 1);
    }
    return h;
}

uint64_t rlab_world_checksum(const rlab_world *w, const rlab_dataset *ds)
{
    uint64_t h = 14695981039346656037ull;
    size_t U = (size_t)w->n_users, I = (size_t)w->n_items, G = (size_t)w->n_genres;
    h = fnv(h, w->taste, (size_t)w->n_epochs * U * G * sizeof *w->taste);
    if (w->drifted)
        h = fnv(h, w->drifted, (size_t)w->cfg.n_drift * U);
    h = fnv(h, w->item_genre, I * G * sizeof *w->item_genre);
    h = fnv(h, w->pop, I * sizeof *w->pop);
    h = fnv(h, w->succ, I * (size_t)w->cfg.n_successors * sizeof *w->succ);
    h = fnv(h, w->archetype, U);
    h = fnv(h, w->follow_off, (U + 1) * sizeof *w->follow_off);
    h = fnv(h, w->follow, (size_t)w->follow_off[U] * sizeof *w->follow);
    h = fnv(h, w->follower_off, (U + 1) * sizeof *w->follower_off);
    h = fnv(h, w->follower, (size_t)w->follower_off[U] * sizeof *w->follower);
    h = fnv_vocab(h, &ds->users);
    h = fnv_vocab(h, &ds->items);
    const rlab_inter *t = &ds->inter;
    h = fnv(h, &t->n, sizeof t->n);
    h = fnv(h, t->user, t->n * sizeof *t->user);
    h = fnv(h, t->item, t->n * sizeof *t->item);
    h = fnv(h, t->ts, t->n * sizeof *t->ts);
    h = fnv(h, t->rating, t->n * sizeof *t->rating);
    h = fnv_feats(h, &ds->item_feats);
    h = fnv_feats(h, &ds->user_feats);
    return h;
}

/* ---- RecBole export ---------------------------------------------------------------- */
static FILE *open_out(const char *dir, const char *name, const char *ext, char *path, size_t cap,
                      rlab_err *err)
{
    snprintf(path, cap, "%s/%s.%s", dir, name, ext);
    FILE *f = fopen(path, "wb");
    if (!f)
        rlab_errf(err, RLAB_EIO, "%s: %s", path, strerror(errno));
    return f;
}

static int close_out(FILE *f, const char *path, rlab_err *err)
{
    int bad = ferror(f);
    if (fclose(f) != 0 || bad)
        return rlab_errf(err, RLAB_EIO, "%s: write failed", path);
    return RLAB_OK;
}

/* A text field with separators flattened, so it stays one RecBole token_seq field. */
static void put_text(FILE *f, const char *s)
{
    for (; s && *s; s++)
        fputc((*s == '\t' || *s == '\n' || *s == '\r') ? ' ' : *s, f);
}

/* "" for a missing name, so the exported text never passes NULL to %s. */
static const char *nz(const char *s) { return s ? s : ""; }

int rlab_world_write_recbole(const rlab_world *w, const rlab_dataset *ds, const char *dir,
                             const char *name, rlab_err *err)
{
    char path[1024];
    int rc;
    /* create the folder (one level) when it does not exist yet */
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return rlab_errf(err, RLAB_EIO, "%s: %s", dir, strerror(errno));
    FILE *f = open_out(dir, name, "inter", path, sizeof path, err);
    if (!f)
        return RLAB_EIO;
    const rlab_inter *t = &ds->inter;
    fputs("user_id:token\titem_id:token\trating:float\ttimestamp:float\n", f);
    for (size_t k = 0; k < t->n; k++)
        fprintf(f, "%s\t%s\t%d\t%lld\n", nz(rlab_vocab_name(&ds->users, t->user[k])),
                nz(rlab_vocab_name(&ds->items, t->item[k])), (int)t->rating[k],
                (long long)t->ts[k]);
    if ((rc = close_out(f, path, err)) != RLAB_OK)
        return rc;

    const rlab_feat_col *ct = rlab_feats_find(&ds->item_feats, "title");
    const rlab_feat_col *cg = rlab_feats_find(&ds->item_feats, "genres");
    const rlab_feat_col *cy = rlab_feats_find(&ds->item_feats, "year");
    if (!ct || !cg || !cy)
        return rlab_errf(err, RLAB_EINVAL, "world export: dataset lacks the world's columns");
    if (!(f = open_out(dir, name, "item", path, sizeof path, err)))
        return RLAB_EIO;
    fputs("item_id:token\ttitle:token_seq\tgenres:token_seq\tyear:float\n", f);
    for (int32_t i = 0; i < w->n_items; i++) {
        fprintf(f, "%s\t", nz(rlab_vocab_name(&ds->items, i)));
        put_text(f, ct->text[i]);
        fputc('\t', f);
        for (int64_t k = cg->off[i]; k < cg->off[i + 1]; k++)
            fprintf(f, "%s%s", k > cg->off[i] ? " " : "",
                    nz(rlab_vocab_name(&cg->vocab, cg->seq[k])));
        fprintf(f, "\t%d\n", (int)cy->num[i]);
    }
    if ((rc = close_out(f, path, err)) != RLAB_OK)
        return rc;

    const rlab_feat_col *ca = rlab_feats_find(&ds->user_feats, "age");
    const rlab_feat_col *cs = rlab_feats_find(&ds->user_feats, "gender");
    const rlab_feat_col *co = rlab_feats_find(&ds->user_feats, "occupation");
    const rlab_feat_col *cr = rlab_feats_find(&ds->user_feats, "archetype");
    if (!ca || !cs || !co || !cr)
        return rlab_errf(err, RLAB_EINVAL, "world export: dataset lacks the world's columns");
    if (!(f = open_out(dir, name, "user", path, sizeof path, err)))
        return RLAB_EIO;
    fputs("user_id:token\tage:float\tgender:token\toccupation:token\tarchetype:token\n", f);
    for (int32_t u = 0; u < w->n_users; u++)
        fprintf(f, "%s\t%d\t%s\t%s\t%s\n", nz(rlab_vocab_name(&ds->users, u)), (int)ca->num[u],
                nz(rlab_vocab_name(&cs->vocab, cs->tok[u])),
                nz(rlab_vocab_name(&co->vocab, co->tok[u])),
                nz(rlab_vocab_name(&cr->vocab, cr->tok[u])));
    if ((rc = close_out(f, path, err)) != RLAB_OK)
        return rc;

    if (w->follow_off[w->n_users] > 0) {
        if (!(f = open_out(dir, name, "net", path, sizeof path, err)))
            return RLAB_EIO;
        fputs("source_id:token\ttarget_id:token\n", f);
        for (int32_t u = 0; u < w->n_users; u++)
            for (int64_t e = w->follow_off[u]; e < w->follow_off[u + 1]; e++)
                fprintf(f, "%s\t%s\n", nz(rlab_vocab_name(&ds->users, u)),
                        nz(rlab_vocab_name(&ds->users, w->follow[e])));
        if ((rc = close_out(f, path, err)) != RLAB_OK)
            return rc;
    }
    return RLAB_OK;
}
