/*
 * plugins/crs/macrs.c: the MACRS-style CRS, its baselines and the user simulator (macrs.h):
 * the world of item attributes, the user-preference state and its two reflections, the
 * three responders, the planner, one simulated dialogue, and an interactive chat.
 */
#include "macrs.h"
#include "data/table.h"
#include "model/model.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *const macrs_policy_names[MACRS_NP + 1] = {"macrs", "always", "askrec", "model", NULL};
const char *const macrs_act_names[MACRS_NACT] = {"ask", "recommend", "chit-chat", "top10"};

/* planner constants (macrs.h) */
#define TAU0 0.35f
#define TAU_STEP 0.15f
#define IG_FLOOR 0.1f
#define CHAT_SCORE (-0.05f)
#define HINT_BONUS 0.15f
#define MATCH_W 1.0f
#define AVOID_W 0.5f

/* ---- the world ------------------------------------------------------------------------- */

void macrs_world_clear(macrs_world *w)
{
    if (!w)
        return;
    for (int32_t i = 0; i < w->n_vals; i++)
        rlab_free(w->val[i]);
    rlab_free(w->val);
    rlab_free(w->val_attr);
    rlab_free(w->off);
    rlab_free(w->iv);
    rlab_free(w->prior);
    rlab_free((void *)w->title);
    memset(w, 0, sizeof *w);
}

/* A year 1900..2029 in s (the last one), or 0. */
static int find_year(const char *s)
{
    int y = 0;
    for (const char *p = s ? s : ""; *p; p++)
        if ((p == s || !isdigit((unsigned char)p[-1])) && isdigit((unsigned char)p[0]) &&
            isdigit((unsigned char)p[1]) && isdigit((unsigned char)p[2]) &&
            isdigit((unsigned char)p[3]) && !isdigit((unsigned char)p[4])) {
            int v = atoi(p);
            if (v >= 1900 && v < 2030)
                y = v;
        }
    return y;
}

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

int macrs_world_build(const rlab_dataset *ds, macrs_world *w, rlab_err *err)
{
    memset(w, 0, sizeof *w);
    const int32_t NI = ds->items.n;
    const rlab_feats *F = &ds->item_feats;
    const rlab_feat_col *cols[8];
    int nc = 0, has_decade = 0;
    for (int c = 0; c < F->ncols && nc < 7; c++) {
        const rlab_feat_col *col = &F->cols[c];
        /* single-valued columns with many values are identifier-like (release dates, URLs):
         * a question about one would name the item */
        const int32_t cap = col->kind == RLAB_FEAT_TOKEN ? 64 : 4096;
        if ((col->kind == RLAB_FEAT_TOKEN || col->kind == RLAB_FEAT_TOKEN_SEQ) &&
            col->vocab.n >= 2 && col->vocab.n <= cap && F->n_entities == NI) {
            cols[nc++] = col;
            has_decade |= strcmp(col->name, "decade") == 0;
        }
    }
    /* a decade from a year in the release date or the title, when the data has none */
    const rlab_feat_col *yr = NULL;
    if (!has_decade && F->n_entities == NI) {
        yr = rlab_feats_find(F, "release");
        if (!yr || yr->kind != RLAB_FEAT_TOKEN)
            yr = rlab_feats_find(F, "title");
        if (yr && yr->kind != RLAB_FEAT_TOKEN && yr->kind != RLAB_FEAT_TEXT)
            yr = NULL;
    }
    if (nc == 0 && !yr)
        return rlab_errf(err, RLAB_EINVAL,
                         "dataset '%s' has no item attributes (token features such as genres, "
                         "brand, categories, or a year) for the simulator to talk about",
                         ds->name);
    w->n_items = NI;
    w->off = rlab_calloc((size_t)NI + 1, sizeof *w->off);
    w->prior = rlab_calloc((size_t)NI ? (size_t)NI : 1, sizeof *w->prior);
    w->title = rlab_calloc((size_t)NI ? (size_t)NI : 1, sizeof *w->title);
    int64_t cap = 0;
    for (int c = 0; c < nc; c++)
        cap += cols[c]->kind == RLAB_FEAT_TOKEN ? NI : cols[c]->off[NI];
    cap += yr ? NI : 0;
    int32_t nv_cap = 0;
    for (int c = 0; c < nc; c++)
        nv_cap += cols[c]->vocab.n;
    nv_cap += yr ? 13 : 0;
    w->iv = rlab_malloc((size_t)(cap ? cap : 1) * sizeof *w->iv);
    w->val = rlab_calloc((size_t)nv_cap, sizeof *w->val);
    w->val_attr = rlab_calloc((size_t)nv_cap, sizeof *w->val_attr);
    if (!w->off || !w->prior || !w->title || !w->iv || !w->val || !w->val_attr) {
        macrs_world_clear(w);
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    }
    int32_t base[8];
    for (int c = 0; c < nc; c++) {
        snprintf(w->attr[c], sizeof w->attr[c], "%s", cols[c]->name);
        base[c] = w->n_vals;
        for (int32_t v = 0; v < cols[c]->vocab.n; v++) {
            w->val[w->n_vals] = rlab_strdup(rlab_vocab_name(&cols[c]->vocab, v));
            if (!w->val[w->n_vals]) {
                macrs_world_clear(w);
                return rlab_errf(err, RLAB_ENOMEM, "out of memory");
            }
            w->val_attr[w->n_vals++] = c;
        }
    }
    w->n_attr = nc;
    int32_t dec0 = w->n_vals;
    if (yr) {
        snprintf(w->attr[nc], sizeof w->attr[nc], "decade");
        for (int d = 0; d < 13; d++) {
            char b[16];
            snprintf(b, sizeof b, "%ds", 1900 + 10 * d);
            w->val[w->n_vals] = rlab_strdup(b);
            if (!w->val[w->n_vals]) {
                macrs_world_clear(w);
                return rlab_errf(err, RLAB_ENOMEM, "out of memory");
            }
            w->val_attr[w->n_vals++] = nc;
        }
        w->n_attr = nc + 1;
    }
    const rlab_feat_col *tc = rlab_feats_find(F, "title");
    int64_t k = 0;
    for (int32_t i = 0; i < NI; i++) {
        int64_t s = k;
        for (int c = 0; c < nc; c++) {
            const rlab_feat_col *col = cols[c];
            if (col->kind == RLAB_FEAT_TOKEN) {
                if (col->tok[i] >= 0)
                    w->iv[k++] = base[c] + col->tok[i];
            } else {
                for (int64_t j = col->off[i]; j < col->off[i + 1]; j++)
                    w->iv[k++] = base[c] + col->seq[j];
            }
        }
        if (yr) {
            const char *t = yr->kind == RLAB_FEAT_TOKEN
                                ? (yr->tok[i] >= 0 ? rlab_vocab_name(&yr->vocab, yr->tok[i]) : NULL)
                                : yr->text[i];
            int y = find_year(t);
            if (y)
                w->iv[k++] = dec0 + (y - 1900) / 10;
        }
        qsort(w->iv + s, (size_t)(k - s), sizeof *w->iv, cmp_i32);
        int64_t u = s; /* drop duplicates */
        for (int64_t j = s; j < k; j++)
            if (j == s || w->iv[j] != w->iv[j - 1])
                w->iv[u++] = w->iv[j];
        k = u;
        w->off[i + 1] = k;
        w->title[i] = tc && tc->kind == RLAB_FEAT_TEXT && tc->text[i]
                          ? tc->text[i]
                          : rlab_vocab_name(&ds->items, i);
    }
    for (size_t r = 0; r < ds->inter.n; r++)
        w->prior[ds->inter.item[r]] += 1.0f;
    for (int32_t i = 0; i < NI; i++)
        w->prior[i] = logf(1.0f + w->prior[i]);
    return RLAB_OK;
}

static int item_has(const macrs_world *w, int32_t i, int32_t v)
{
    for (int64_t j = w->off[i]; j < w->off[i + 1]; j++)
        if (w->iv[j] == v)
            return 1;
    return 0;
}

/* ---- growing text ---------------------------------------------------------------------- */

typedef struct sbuf {
    char *s;
    size_t n, cap;
    int oom;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) RLAB_PRINTF(2, 3);
static void sb_printf(sbuf *b, const char *fmt, ...)
{
    if (b->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int w = vsnprintf(b->s ? b->s + b->n : NULL, b->s ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (w < 0) {
            b->oom = 1;
            return;
        }
        if (b->s && b->n + (size_t)w < b->cap) {
            b->n += (size_t)w;
            return;
        }
        size_t nc = (b->cap ? b->cap * 2 : 256) + (size_t)w;
        char *p = rlab_realloc(b->s, nc);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->s = p;
        b->cap = nc;
    }
}

/* JSON string body of s (quotes and control characters escaped). */
static void sb_json(sbuf *b, const char *s)
{
    sb_printf(b, "\"");
    for (const char *p = s ? s : ""; *p; p++) {
        if (*p == '"' || *p == '\\')
            sb_printf(b, "\\%c", *p);
        else if ((unsigned char)*p < 0x20)
            sb_printf(b, "\\u%04x", (unsigned)(unsigned char)*p);
        else
            sb_printf(b, "%c", *p);
    }
    sb_printf(b, "\"");
}

/* ---- the conversation state ------------------------------------------------------------- */

typedef struct state {
    const macrs_world *w;
    macrs_opts o;
    int8_t *pref;      /* [n_vals] +1 wanted, -1 not wanted, 0 unknown */
    uint8_t *rejected; /* [n_items] */
    float *hint_ask;   /* [n_vals] strategy hint: bonus bits for asking about v */
    float *avoid;      /* [n_vals] strategy hint: recommend penalty per shared value */
    int32_t *rej_list;
    int n_rej;
    int32_t asked;  /* value of the last question, -1 */
    int repeat_off; /* a chat's person let the last turn pass: not the same act on the same
                       value / item again this turn */
    int n_quiet;    /* turns in a row the chat's person let pass (2 or more: recommend) */
    int quiet_recs; /* items recommended and passed over in that run (not recommended again) */
    int32_t quiet_items[16];
    int last_act; /* the last system turn's act and its value / item (-1) */
    int32_t last_target;
    int rec_prior; /* the recommender cannot score an empty history: popularity this turn */
    int n_asked, turn;
    float tau;
    char lesson[200], hint_text[3][200];
    sbuf dialogue; /* "User: ...\nSystem: ...", the context the recommender reads */
    sbuf acts;     /* the acts chosen so far, "ask, chit-chat, ..." (the planner's history) */
    float *score;  /* [n_items] */
    float *belief; /* [n_items] 0 outside C */
    float *model;  /* [n_items] standardised recommender scores */
    int32_t n_cand;
} state;

static void state_free(state *s)
{
    rlab_free(s->pref);
    rlab_free(s->rejected);
    rlab_free(s->hint_ask);
    rlab_free(s->avoid);
    rlab_free(s->rej_list);
    rlab_free(s->dialogue.s);
    rlab_free(s->acts.s);
    rlab_free(s->score);
    rlab_free(s->belief);
    rlab_free(s->model);
    memset(s, 0, sizeof *s);
}

static int state_init(state *s, const macrs_world *w, const macrs_opts *o, rlab_err *err)
{
    memset(s, 0, sizeof *s);
    s->w = w;
    s->o = *o;
    const size_t NV = (size_t)w->n_vals ? (size_t)w->n_vals : 1;
    const size_t NI = (size_t)w->n_items ? (size_t)w->n_items : 1;
    s->pref = rlab_calloc(NV, 1);
    s->hint_ask = rlab_calloc(NV, sizeof *s->hint_ask);
    s->avoid = rlab_calloc(NV, sizeof *s->avoid);
    s->rejected = rlab_calloc(NI, 1);
    s->rej_list = rlab_calloc(NI, sizeof *s->rej_list);
    s->score = rlab_calloc(NI, sizeof *s->score);
    s->belief = rlab_calloc(NI, sizeof *s->belief);
    s->model = rlab_calloc(NI, sizeof *s->model);
    s->asked = -1;
    s->last_act = s->last_target = -1;
    s->tau = TAU0;
    if (!s->pref || !s->hint_ask || !s->avoid || !s->rejected || !s->rej_list || !s->score ||
        !s->belief || !s->model) {
        state_free(s);
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    }
    return RLAB_OK;
}

/* Case-insensitive: does text contain word (bounded by non-alphanumerics) at or after p?
 * Returns its position or NULL. */
static const char *find_word(const char *text, const char *word)
{
    size_t n = strlen(word);
    if (n == 0)
        return NULL;
    for (const char *p = text; *p; p++) {
        if (strncasecmp(p, word, n) != 0)
            continue;
        int lb = p == text || !isalnum((unsigned char)p[-1]);
        int rb = !isalnum((unsigned char)p[n]);
        if (lb && rb)
            return p;
    }
    return NULL;
}

/* Is the mention at p negated: "not", "no", "don't", "n't" among the 3 words before it
 * within its clause? */
static int negated(const char *text, const char *p)
{
    const char *q = p;
    int words = 0;
    while (q > text && words < 4) {
        q--;
        if (*q == '.' || *q == ',' || *q == '!' || *q == '?' || *q == ';')
            return 0;
        if (*q == ' ' && q + 1 < p && q[1] != ' ')
            words++;
        if (q == text || !isalnum((unsigned char)q[-1])) {
            if (strncasecmp(q, "not ", 4) == 0 || strncasecmp(q, "no ", 3) == 0 ||
                strncasecmp(q, "never ", 6) == 0 || strncasecmp(q, "nothing ", 8) == 0)
                return 1;
        }
        if (strncasecmp(q, "n't ", 4) == 0)
            return 1;
    }
    return 0;
}

/* Everyday words for genre values (ours; used only when the world has the value, compared
 * without case and a trailing "'s": "Children's"): "something funny" wants Comedy. */
static const char *const genre_words[][2] = {
    {"funny", "Comedy"},
    {"hilarious", "Comedy"},
    {"comedies", "Comedy"},
    {"humor", "Comedy"},
    {"humour", "Comedy"},
    {"scary", "Horror"},
    {"creepy", "Horror"},
    {"frightening", "Horror"},
    {"romantic", "Romance"},
    {"love story", "Romance"},
    {"romcom", "Romance"},
    {"animated", "Animation"},
    {"cartoon", "Animation"},
    {"cartoons", "Animation"},
    {"anime", "Animation"},
    {"science fiction", "Sci-Fi"},
    {"scifi", "Sci-Fi"},
    {"sci fi", "Sci-Fi"},
    {"kids", "Children"},
    {"children's", "Children"},
    {"documentaries", "Documentary"},
    {"dramatic", "Drama"},
    {"dramas", "Drama"},
    {"suspense", "Thriller"},
    {"suspenseful", "Thriller"},
    {"thrillers", "Thriller"},
    {"mysteries", "Mystery"},
    {"detective", "Mystery"},
    {"whodunit", "Mystery"},
    {"musicals", "Musical"},
    {"westerns", "Western"},
    {"cowboy", "Western"},
    {"cowboys", "Western"},
    {"gangster", "Crime"},
    {"heist", "Crime"},
    {"magic", "Fantasy"},
    {"wizards", "Fantasy"},
    {"explosions", "Action"},
    {"adventures", "Adventure"},
    {"wartime", "War"},
    {"noir", "Film-Noir"},
};

static int same_value(const char *val, const char *name)
{
    size_t n = strlen(name), m = strlen(val);
    if (m == n + 2 && strcmp(val + n, "'s") == 0)
        m = n;
    return m == n && strncasecmp(val, name, n) == 0;
}

/* Information-level reflection: the user's utterance into the preference state. A "yes" /
 * "no" at the start answers the last question; every attribute value named in the text (or
 * an everyday word for it, genre_words) is wanted, or unwanted when negated. Returns how many
 * values changed. */
static int reflect_info(state *s, const char *text)
{
    int changed = 0;
    const char *t = text;
    while (*t == ' ')
        t++;
    if (s->asked >= 0) {
        int yes = strncasecmp(t, "yes", 3) == 0 || strncasecmp(t, "sure", 4) == 0;
        int no = strncasecmp(t, "no", 2) == 0 && !isalnum((unsigned char)t[2]);
        if (yes || no) {
            changed += s->pref[s->asked] != (yes ? 1 : -1);
            s->pref[s->asked] = (int8_t)(yes ? 1 : -1);
        }
    }
    for (int32_t v = 0; v < s->w->n_vals; v++) {
        const char *p = find_word(text, s->w->val[v]);
        if (!p)
            continue;
        int8_t want = negated(text, p) ? -1 : 1;
        changed += s->pref[v] != want;
        s->pref[v] = want;
    }
    for (size_t g = 0; g < sizeof genre_words / sizeof genre_words[0]; g++) {
        const char *p = find_word(text, genre_words[g][0]);
        if (!p)
            continue;
        for (int32_t v = 0; v < s->w->n_vals; v++) {
            if (!same_value(s->w->val[v], genre_words[g][1]) || find_word(text, s->w->val[v]))
                continue; /* the value's own name, when also there, decided above */
            int8_t want = negated(text, p) ? -1 : 1;
            changed += s->pref[v] != want;
            s->pref[v] = want;
        }
    }
    s->asked = -1;
    return changed;
}

static void dialogue_add(state *s, const char *who, const char *text)
{
    sb_printf(&s->dialogue, "%s%s: %s", s->dialogue.n ? "\n" : "", who, text);
}

/* The recommender's scores for the dialogue so far, standardised (mean 0, sd 1). */
static int model_scores(state *s, rlab_err *err)
{
    const macrs_world *w = s->w;
    const int32_t NI = w->n_items;
    if (!s->o.rec) {
        for (int32_t i = 0; i < NI; i++)
            s->model[i] = w->prior[i];
    } else {
        rlab_query q = {.user = s->o.user,
                        .hist = s->o.hist,
                        .n_hist = s->o.n_hist,
                        .context = s->dialogue.s ? s->dialogue.s : ""};
        int rc = rlab_model_score_all(s->o.rec, &q, 1, s->model, err);
        s->rec_prior = 0;
        if (rc == RLAB_EINVAL && q.n_hist == 0 && q.user < 0) {
            /* a sequential recommender has nothing to read before the person names a title:
             * popularity until then (the state says so) */
            rlab_err_clear(err);
            for (int32_t i = 0; i < NI; i++)
                s->model[i] = w->prior[i];
            s->rec_prior = 1;
        } else if (rc) {
            return rc;
        }
    }
    double m = 0, v = 0;
    int32_t n = 0;
    for (int32_t i = 0; i < NI; i++)
        if (isfinite(s->model[i])) {
            m += (double)s->model[i];
            n++;
        }
    m = n ? m / n : 0;
    for (int32_t i = 0; i < NI; i++)
        if (isfinite(s->model[i]))
            v += ((double)s->model[i] - m) * ((double)s->model[i] - m);
    double sd = n > 1 ? sqrt(v / (n - 1)) : 1.0;
    if (sd < 1e-9)
        sd = 1.0;
    for (int32_t i = 0; i < NI; i++)
        s->model[i] = isfinite(s->model[i]) ? (float)(((double)s->model[i] - m) / sd) : -1e9f;
    return RLAB_OK;
}

/* Scores and the belief over the candidate set C (policy `use_state`: the state filters;
 * else only rejected items are out). */
static void candidates(state *s, int use_state)
{
    const macrs_world *w = s->w;
    const int32_t NI = w->n_items;
    int n_want = 0;
    for (int32_t v = 0; v < w->n_vals; v++)
        n_want += s->pref[v] > 0;
    double mx = -1e30;
    s->n_cand = 0;
    for (int32_t i = 0; i < NI; i++) {
        float sc = s->model[i];
        int ok = !s->rejected[i] && sc > -1e8f;
        if (use_state) {
            int match = 0;
            for (int64_t j = w->off[i]; j < w->off[i + 1]; j++) {
                int32_t v = w->iv[j];
                if (s->pref[v] < 0)
                    ok = 0;
                match += s->pref[v] > 0;
                sc -= AVOID_W * s->avoid[v] * (s->pref[v] == 0);
            }
            if (match < n_want)
                ok = 0;
            sc += MATCH_W * (float)match;
        }
        s->score[i] = sc;
        s->belief[i] = ok ? 1.0f : 0.0f;
        if (ok) {
            s->n_cand++;
            if ((double)sc > mx)
                mx = (double)sc;
        }
    }
    if (s->n_cand == 0) { /* nothing consistent: fall back to every item not rejected */
        for (int32_t i = 0; i < NI; i++)
            if (!s->rejected[i] && s->model[i] > -1e8f) {
                s->belief[i] = 1.0f;
                s->n_cand++;
                if ((double)s->score[i] > mx)
                    mx = (double)s->score[i];
            }
    }
    double z = 0;
    for (int32_t i = 0; i < NI; i++)
        if (s->belief[i] > 0) {
            s->belief[i] = (float)exp((double)s->score[i] - mx);
            z += (double)s->belief[i];
        }
    for (int32_t i = 0; i < NI; i++)
        s->belief[i] = z > 0 ? (float)((double)s->belief[i] / z) : 0.0f;
}

/* The best candidate (highest belief, ties to the lower index); -1 when none. */
static int32_t top_item(const state *s, float *p)
{
    int32_t best = -1;
    for (int32_t i = 0; i < s->w->n_items; i++)
        if (s->belief[i] > 0 && (best < 0 || s->belief[i] > s->belief[best]))
            best = i;
    *p = best >= 0 ? s->belief[best] : 0.0f;
    return best;
}

/* The top k candidates (then the remaining items by score) into out; returns k. */
static int top_list(const state *s, int k, int32_t *out)
{
    int n = 0;
    for (int r = 0; r < k; r++) {
        int32_t best = -1;
        for (int32_t i = 0; i < s->w->n_items; i++) {
            int taken = 0;
            for (int j = 0; j < n; j++)
                taken |= out[j] == i;
            if (taken || s->rejected[i])
                continue;
            if (best < 0 || s->belief[i] > s->belief[best] ||
                (s->belief[i] >= s->belief[best] && s->belief[i] <= s->belief[best] &&
                 s->score[i] > s->score[best]))
                best = i;
        }
        if (best < 0)
            break;
        out[n++] = best;
    }
    return n;
}

static float h2(float p)
{
    if (p <= 0.0f || p >= 1.0f)
        return 0.0f;
    return -(p * log2f(p) + (1.0f - p) * log2f(1.0f - p));
}

/* The ask responder: the unknown value whose yes/no answer has the most information over the
 * belief (plus the strategy hint's bonus). Returns the value, *ig its gain in bits. */
static int32_t best_question(const state *s, float *ig, float *mass)
{
    const macrs_world *w = s->w;
    float *m = mass;
    memset(m, 0, (size_t)w->n_vals * sizeof *m);
    for (int32_t i = 0; i < w->n_items; i++)
        if (s->belief[i] > 0)
            for (int64_t j = w->off[i]; j < w->off[i + 1]; j++)
                m[w->iv[j]] += s->belief[i];
    int32_t best = -1;
    float bv = -1.0f;
    for (int32_t v = 0; v < w->n_vals; v++) {
        if (s->pref[v] != 0)
            continue;
        float g = h2(m[v]) + (m[v] > 0 ? s->hint_ask[v] : 0.0f);
        if (g > bv) {
            bv = g;
            best = v;
        }
    }
    *ig = best >= 0 ? bv : 0.0f;
    return best;
}

/* The expected information (bits) of what the user volunteers after chit-chat: the entropy
 * of q(v) = sum_i belief_i [v in i, v unknown] / #unknown values of i (the user names one of
 * the target's values not yet known; which one, the CRS cannot tell: uniform). */
static float chat_gain(const state *s, float *q)
{
    const macrs_world *w = s->w;
    memset(q, 0, (size_t)w->n_vals * sizeof *q);
    for (int32_t i = 0; i < w->n_items; i++) {
        if (s->belief[i] <= 0)
            continue;
        int n = 0;
        for (int64_t j = w->off[i]; j < w->off[i + 1]; j++)
            n += s->pref[w->iv[j]] == 0;
        for (int64_t j = w->off[i]; j < w->off[i + 1] && n > 0; j++)
            if (s->pref[w->iv[j]] == 0)
                q[w->iv[j]] += s->belief[i] / (float)n;
    }
    double h = 0;
    for (int32_t v = 0; v < w->n_vals; v++)
        if (q[v] > 0)
            h -= (double)q[v] * log2((double)q[v]);
    return (float)h;
}

/* The chit-chat responder: the unknown value with the most belief mass among candidates that
 * is not certain (praised to invite the user to say what they like). */
static int32_t chat_value(const state *s, const float *mass)
{
    int32_t best = -1;
    for (int32_t v = 0; v < s->w->n_vals; v++)
        if (s->pref[v] == 0 && mass[v] < 0.999f && (best < 0 || mass[v] > mass[best]))
            best = v;
    return best;
}

/* ---- text through the language backend ------------------------------------------------- */

typedef struct drafts {
    char text[MACRS_NACT][400];
} drafts;

/* Offline policy of the tasks "macrs.ask", "macrs.chit-chat", "macrs.recommend": the draft
 * it was given (req->ctx). */
int macrs_draft_policy(const rlab_llm_req *req, rlab_rng *rng, rlab_llm_out *out, void *ud,
                       rlab_err *err)
{
    (void)rng;
    (void)ud;
    (void)err;
    return rlab_llm_out_puts(out, req->ctx ? (const char *)req->ctx : "");
}

/* The utterance of a responder's reply: its first non-empty line, without a leading
 * "- <act> :" tag or quotes; 0 when there is none. */
static int reply_line(const char *reply, char *out, size_t cap)
{
    const char *p = reply;
    while (*p == '\n' || *p == '\r' || *p == ' ')
        p++;
    if (*p == '-') { /* "- ask : ..." */
        const char *c = strchr(p, ':');
        if (c && c - p < 16)
            p = c + 1;
    }
    while (*p == ' ' || *p == '"')
        p++;
    size_t n = strcspn(p, "\r\n");
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '"'))
        n--;
    if (n == 0)
        return 0;
    snprintf(out, cap, "%.*s", (int)(n < cap - 1 ? n : cap - 1), p);
    return 1;
}

/* The three responders through the LLM, one request each (sent together), with prompts shaped
 * like MACRS's responder prompts: the role and its rules, the conversation, the user profile
 * (the preference state), the strategy suggestion for this responder, the candidate item for
 * the recommender, and the offline draft; each reply replaces its draft (a failed call or an
 * empty reply keeps it). */
static void llm_responders(state *s, drafts *d, int32_t rec_item)
{
    if (!s->o.llm)
        return;
    const macrs_world *w = s->w;
    static const char *const role_text[3] = {
        /* ask */
        "You are the asking responder of a conversational movie recommender. Elicit the "
        "user's preferences with one question. Do not mention titles, stars or directors. "
        "Answer the user's last question if there is one. At most 15 words.",
        /* recommend */
        "You are the recommending responder of a conversational movie recommender. Recommend "
        "exactly the candidate item below with an engaging description. At most 25 words.",
        /* chit-chat */
        "You are the chit-chat responder of a conversational movie recommender. Chat about "
        "elements of movies (genres, eras) and express admiration for one, so that the user "
        "says what they like. No titles. At most 20 words."};
    static const char *const task[3] = {"macrs.ask", "macrs.recommend", "macrs.chit-chat"};
    sbuf sys[3] = {{0}}, usr[3] = {{0}};
    int oom = 0;
    for (int a = 0; a < 3; a++) {
        sbuf *p = &sys[a];
        sb_printf(p, "%s\n\nConversation history:\n%s\n\nUser profile: wanted [", role_text[a],
                  s->dialogue.s ? s->dialogue.s : "");
        int first = 1;
        for (int32_t v = 0; v < w->n_vals; v++)
            if (s->pref[v] > 0) {
                sb_printf(p, "%s%s", first ? "" : ", ", w->val[v]);
                first = 0;
            }
        sb_printf(p, "], not wanted [");
        first = 1;
        for (int32_t v = 0; v < w->n_vals; v++)
            if (s->pref[v] < 0) {
                sb_printf(p, "%s%s", first ? "" : ", ", w->val[v]);
                first = 0;
            }
        sb_printf(p, "], rejected items [");
        for (int r = 0; r < s->n_rej; r++)
            sb_printf(p, "%s%s", r ? ", " : "", w->title[s->rej_list[r]]);
        const int hint = a == MACRS_ACT_ASK ? 0 : a == MACRS_ACT_CHAT ? 1 : 2;
        sb_printf(p, "]\nStrategy suggestion: %s",
                  s->hint_text[hint][0] ? s->hint_text[hint] : "none");
        if (a == MACRS_ACT_REC && rec_item >= 0)
            sb_printf(p, "\nCandidate item: %s", w->title[rec_item]);
        sb_printf(&usr[a], "Draft: %s\nReply with your utterance only.", d->text[a]);
        oom |= p->oom | usr[a].oom;
    }
    if (!oom) {
        rlab_llm_msg msgs[3][2];
        rlab_llm_req req[3];
        rlab_llm_result res[3];
        memset(req, 0, sizeof req);
        memset(res, 0, sizeof res);
        for (int a = 0; a < 3; a++) {
            msgs[a][0] = (rlab_llm_msg){"system", sys[a].s};
            msgs[a][1] = (rlab_llm_msg){"user", usr[a].s};
            req[a] = (rlab_llm_req){.task = task[a],
                                    .msgs = msgs[a],
                                    .n_msgs = 2,
                                    .opts = {.temperature = 0, .max_tokens = 64},
                                    .ctx = d->text[a]};
        }
        rlab_err e = {0};
        rlab_llm_chat_many(s->o.llm, req, 3, res, &e); /* each result on its own */
        char tmp[400];
        for (int a = 0; a < 3; a++)
            if (res[a].status == RLAB_OK && res[a].text && reply_line(res[a].text, tmp, sizeof tmp))
                snprintf(d->text[a], sizeof d->text[0], "%s", tmp);
        rlab_llm_results_clear(res, 3);
    }
    for (int a = 0; a < 3; a++) {
        rlab_free(sys[a].s);
        rlab_free(usr[a].s);
    }
}

/* The planner through the LLM (MACRS's planner prompt: the conversation, its act history,
 * the three candidate responses, the corrective experience; "if the preference is
 * sufficient, recommend, else choose ask, recommend or chit-chat"; output "<act>: <response>").
 * Returns the act its reply's first line starts with, or -1 (unusable reply, failed call, or
 * an act without a candidate): the scored choice stands. */
static int llm_plan(state *s, const drafts *d, int can_rec, int can_ask)
{
    sbuf p = {0};
    sb_printf(&p,
              "You are the planner of a conversational movie recommender. Given the "
              "conversation, your previous acts and the candidate responses of three "
              "responders, choose the best act. If the user's preference is sufficient to "
              "recommend, choose recommend; otherwise choose one of ask, recommend, "
              "chit-chat.\n\nConversation:\n%s\n\nYour acts so far: %s\n"
              "Corrective experience: %s\n\nCandidates:\n- ask : %s\n- chit-chat : %s\n"
              "- recommend : %s\n\nAnswer with one line: <act>: <response>",
              s->dialogue.s ? s->dialogue.s : "", s->acts.s ? s->acts.s : "none",
              s->lesson[0] ? s->lesson : "none", d->text[MACRS_ACT_ASK], d->text[MACRS_ACT_CHAT],
              d->text[MACRS_ACT_REC]);
    int act = -1;
    if (!p.oom) {
        rlab_llm_msg msgs[1] = {{"user", p.s}};
        rlab_llm_req req = {.task = "macrs.planner",
                            .msgs = msgs,
                            .n_msgs = 1,
                            .opts = {.temperature = 0, .max_tokens = 64}};
        rlab_llm_result res = {0};
        rlab_err e = {0};
        if (rlab_llm_chat(s->o.llm, &req, &res, &e) == RLAB_OK && res.text) {
            const char *t = res.text;
            while (*t == ' ' || *t == '-' || *t == '\n')
                t++;
            if (strncasecmp(t, "act:", 4) == 0)
                for (t += 4; *t == ' ';)
                    t++;
            if (strncasecmp(t, "recommend", 9) == 0 && can_rec)
                act = MACRS_ACT_REC;
            else if (strncasecmp(t, "ask", 3) == 0 && can_ask)
                act = MACRS_ACT_ASK;
            else if (strncasecmp(t, "chit-chat", 9) == 0 || strncasecmp(t, "chitchat", 8) == 0)
                act = MACRS_ACT_CHAT;
        }
        rlab_llm_result_clear(&res);
    }
    rlab_free(p.s);
    return act;
}

/* ---- one system turn ---------------------------------------------------------------------- */

typedef struct sys_turn {
    int act;
    int32_t item, value; /* recommended item / asked value, -1 */
    int32_t list[10];
    int n_list;
    char text[600];
    char *extra;
} sys_turn;

static void state_json(sbuf *b, const state *s)
{
    const macrs_world *w = s->w;
    sb_printf(b, "\"state\":{\"wanted\":[");
    int f = 1;
    for (int32_t v = 0; v < w->n_vals; v++)
        if (s->pref[v] > 0) {
            sb_printf(b, "%s", f ? "" : ",");
            sb_json(b, w->val[v]);
            f = 0;
        }
    sb_printf(b, "],\"unwanted\":[");
    f = 1;
    for (int32_t v = 0; v < w->n_vals; v++)
        if (s->pref[v] < 0) {
            sb_printf(b, "%s", f ? "" : ",");
            sb_json(b, w->val[v]);
            f = 0;
        }
    sb_printf(b, "],\"rejected\":[");
    for (int r = 0; r < s->n_rej; r++) {
        sb_printf(b, "%s", r ? "," : "");
        sb_json(b, w->title[s->rej_list[r]]);
    }
    /* the user's history (named in a chat, or a simulated user's earlier items): the last 10 */
    sb_printf(b, "],\"history\":%d,\"mentioned\":[", (int)s->o.n_hist);
    const int32_t h0 = s->o.n_hist > 10 ? s->o.n_hist - 10 : 0;
    for (int32_t k = h0; k < s->o.n_hist && s->o.hist; k++) {
        sb_printf(b, "%s", k > h0 ? "," : "");
        sb_json(b, w->title[s->o.hist[k]]);
    }
    if (s->rec_prior)
        sb_printf(b, "],\"recommender\":\"popularity (the recommender needs a title you liked)\"");
    else
        sb_printf(b, "]");
    sb_printf(b, ",\"candidates\":%d,\"tau\":%.3f,\"lesson\":", (int)s->n_cand, (double)s->tau);
    sb_json(b, s->lesson);
    sb_printf(b, ",\"hints\":{\"ask\":");
    sb_json(b, s->hint_text[0]);
    sb_printf(b, ",\"chit-chat\":");
    sb_json(b, s->hint_text[1]);
    sb_printf(b, ",\"recommend\":");
    sb_json(b, s->hint_text[2]);
    sb_printf(b, "}}");
}

/* The system's turn after the user's last utterance (already reflected). */
static int system_turn(state *s, int last, sys_turn *out, rlab_err *err)
{
    const macrs_world *w = s->w;
    memset(out, 0, sizeof *out);
    out->item = out->value = -1;
    int rc = model_scores(s, err);
    if (rc)
        return rc;
    const int pol = s->o.policy;
    candidates(s, pol != MACRS_P_MODEL);
    float ptop = 0, ig = 0;
    int32_t item = top_item(s, &ptop);
    if (s->n_quiet >= 2 && s->quiet_recs > 0) {
        /* items passed over in silence (not rejections): the best one not among them */
        int32_t down[17];
        const int k = top_list(s, s->quiet_recs + 1, down);
        for (int r = 0; r < k; r++) {
            int passed = 0;
            for (int q = 0; q < s->quiet_recs; q++)
                passed |= s->quiet_items[q] == down[r];
            if (!passed) {
                if (s->belief[down[r]] > 0) {
                    item = down[r];
                    ptop = s->belief[item];
                }
                break;
            }
        }
    }
    float *mass = rlab_calloc((size_t)w->n_vals + 1, sizeof *mass);
    if (!mass)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    int32_t q = best_question(s, &ig, mass);
    int32_t cv = chat_value(s, mass);
    const float cg = chat_gain(s, mass);
    rlab_free(mass);
    drafts d;
    memset(&d, 0, sizeof d);
    if (q >= 0)
        snprintf(d.text[MACRS_ACT_ASK], sizeof d.text[0], "Would you like something %s?",
                 w->val[q]);
    if (item >= 0)
        snprintf(d.text[MACRS_ACT_REC], sizeof d.text[0], "How about %s?", w->title[item]);
    if (cv >= 0)
        snprintf(d.text[MACRS_ACT_CHAT], sizeof d.text[0],
                 "I have been enjoying %s ones lately. What are you in the mood for?", w->val[cv]);
    else
        snprintf(d.text[MACRS_ACT_CHAT], sizeof d.text[0], "Tell me more about what you like!");
    /* the planner's scores (macrs.h) */
    float sc[3];
    sc[MACRS_ACT_REC] = item >= 0 ? logf((ptop > 1e-12f ? ptop : 1e-12f) / s->tau) : -1e9f;
    sc[MACRS_ACT_ASK] = q >= 0 ? ig - IG_FLOOR : -1e9f;
    sc[MACRS_ACT_CHAT] = cg - IG_FLOOR + CHAT_SCORE;
    const int32_t target[3] = {q, item, cv}; /* ask, recommend, chit-chat */
    for (int a = 0; s->repeat_off && a < 3; a++)
        if (s->last_act == a && s->last_target == target[a])
            sc[a] = -1e9f; /* it would say the same words again */
    /* a person who lets two turns in a row pass is not helped by another question or more
     * chit-chat (they alternated): the best item, unless it is the one just passed over */
    const int nudge = s->n_quiet >= 2 && item >= 0 && sc[MACRS_ACT_REC] > -1e8f;
    if (nudge)
        sc[MACRS_ACT_ASK] = sc[MACRS_ACT_CHAT] = -1e9f;
    int act;
    if (last) {
        act = MACRS_ACT_LIST;
    } else if (pol == MACRS_P_MACRS) {
        act = MACRS_ACT_REC;
        if (sc[MACRS_ACT_ASK] > sc[act])
            act = MACRS_ACT_ASK;
        if (sc[MACRS_ACT_CHAT] > sc[act])
            act = MACRS_ACT_CHAT;
    } else if (pol == MACRS_P_ASKREC && s->n_asked < s->o.ask_first && q >= 0) {
        act = MACRS_ACT_ASK;
    } else {
        act = MACRS_ACT_REC;
    }
    if (act == MACRS_ACT_REC && item < 0)
        act = q >= 0 ? MACRS_ACT_ASK : MACRS_ACT_CHAT;
    int llm_planned = 0;
    if (pol == MACRS_P_MACRS && !last) {
        llm_responders(s, &d, item);
        if (s->o.llm_planner) {
            int a = llm_plan(s, &d, item >= 0, q >= 0);
            if (a >= 0) {
                act = a;
                llm_planned = 1;
            }
        }
    }
    out->act = act;
    const int prev_act = s->last_act;
    s->last_act = act;
    s->last_target = act < 3 ? target[act] : -1;
    sb_printf(&s->acts, "%s%s", s->acts.n ? ", " : "", macrs_act_names[act]);
    if (act == MACRS_ACT_LIST) {
        out->n_list = top_list(s, 10, out->list);
        size_t n = (size_t)snprintf(out->text, sizeof out->text, "My top picks for you:");
        for (int i = 0; i < out->n_list && n < sizeof out->text; i++)
            n += (size_t)snprintf(out->text + n, sizeof out->text - n, "%s %d. %s", i ? ";" : "",
                                  i + 1, w->title[out->list[i]]);
    } else {
        snprintf(out->text, sizeof out->text, "%s", d.text[act]);
        if (act == MACRS_ACT_REC)
            out->item = item;
        if (act == MACRS_ACT_ASK) {
            out->value = q;
            s->asked = q;
            s->n_asked++;
        }
    }
    /* what is stored and shown: the act, the scores, the proposals the planner rejected and
     * the preference state */
    sbuf b = {0};
    sb_printf(&b, "{\"policy\":\"%s\",\"act\":\"%s\",\"turn\":%d,", macrs_policy_names[pol],
              macrs_act_names[act], s->turn);
    if (out->item >= 0) {
        sb_printf(&b, "\"item\":");
        sb_json(&b, w->title[out->item]);
        sb_printf(&b, ",\"p_top\":%.4f,", (double)ptop);
    }
    if (out->value >= 0) {
        sb_printf(&b, "\"asked\":");
        sb_json(&b, w->val[out->value]);
        sb_printf(&b, ",\"info_gain\":%.4f,", (double)ig);
    }
    if (act == MACRS_ACT_LIST) {
        sb_printf(&b, "\"top10\":[");
        for (int i = 0; i < out->n_list; i++) {
            sb_printf(&b, "%s", i ? "," : "");
            sb_json(&b, w->title[out->list[i]]);
        }
        sb_printf(&b, "],");
    }
    if (s->o.llm_planner && pol == MACRS_P_MACRS && !last)
        sb_printf(&b, "\"planner\":\"%s\",", llm_planned ? "llm" : "scored (llm reply unusable)");
    if (pol == MACRS_P_MACRS) {
        sb_printf(&b, "\"scores\":{\"ask\":%.4f,\"recommend\":%.4f,\"chit-chat\":%.4f},",
                  (double)(sc[0] > -1e8f ? sc[0] : -99), (double)(sc[1] > -1e8f ? sc[1] : -99),
                  (double)(sc[2] > -1e8f ? sc[2] : -99));
        if (s->repeat_off && prev_act >= 0 && prev_act < 3)
            sb_printf(&b, "\"repeat_off\":\"%s: the last one told nothing\",",
                      macrs_act_names[prev_act]);
        if (nudge && act == MACRS_ACT_REC) /* (an LLM planner may have chosen otherwise) */
            sb_printf(&b, "\"quiet\":\"%d turns told nothing: recommend\",", s->n_quiet);
        sb_printf(&b, "\"rejected_proposals\":[");
        int f = 1;
        for (int a = 0; a < 3; a++)
            if (a != act && d.text[a][0]) {
                sb_printf(&b, "%s{\"act\":\"%s\",\"text\":", f ? "" : ",", macrs_act_names[a]);
                sb_json(&b, d.text[a]);
                sb_printf(&b, "}");
                f = 0;
            }
        sb_printf(&b, "],");
    }
    state_json(&b, s);
    sb_printf(&b, "}");
    if (b.oom) {
        rlab_free(b.s);
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    }
    out->extra = b.s;
    return RLAB_OK;
}

/* Strategy-level reflection after a failed recommendation of item r. */
static void reflect_strategy(state *s, int32_t r)
{
    const macrs_world *w = s->w;
    if (!s->rejected[r]) {
        s->rejected[r] = 1;
        s->rej_list[s->n_rej++] = r;
    }
    if (s->o.policy != MACRS_P_MACRS || s->o.no_strategy)
        return;
    int32_t shown = -1;
    for (int64_t j = w->off[r]; j < w->off[r + 1]; j++) {
        int32_t v = w->iv[j];
        if (s->pref[v] == 0) {
            s->hint_ask[v] += HINT_BONUS;
            s->avoid[v] += 1.0f;
            if (shown < 0)
                shown = v;
        }
    }
    const float old = s->tau;
    s->tau = s->tau + TAU_STEP < 0.95f ? s->tau + TAU_STEP : 0.95f;
    snprintf(s->lesson, sizeof s->lesson,
             "%s was rejected at confidence above %.2f: require %.2f before recommending",
             w->title[r], (double)old, (double)s->tau);
    if (shown >= 0) {
        snprintf(s->hint_text[0], sizeof s->hint_text[0],
                 "ask whether the user wants %s (the rejected %.80s has it)", w->val[shown],
                 w->title[r]);
        snprintf(s->hint_text[1], sizeof s->hint_text[1], "talk about what differs from %.80s",
                 w->title[r]);
        snprintf(s->hint_text[2], sizeof s->hint_text[2],
                 "avoid items sharing %.80s's unconfirmed values (%s, ...)", w->title[r],
                 w->val[shown]);
    }
}

/* ---- the user simulator ------------------------------------------------------------------ */

typedef struct user_sim {
    const macrs_world *w;
    int32_t target;
    uint8_t *revealed; /* [n_vals] */
    rlab_llm *llm;
} user_sim;

/* The next target value the user has not said yet (in the target's order), or -1. */
static int32_t next_reveal(user_sim *u)
{
    for (int64_t j = u->w->off[u->target]; j < u->w->off[u->target + 1]; j++)
        if (!u->revealed[u->w->iv[j]]) {
            u->revealed[u->w->iv[j]] = 1;
            return u->w->iv[j];
        }
    return -1;
}

/* The user's reply to the system turn st (NULL: the opening line) into out; *accept set. */
static void user_reply(user_sim *u, const state *s, const sys_turn *st, char *out, size_t cap,
                       int *accept)
{
    const macrs_world *w = u->w;
    *accept = 0;
    if (!st) {
        int32_t v = next_reveal(u);
        if (v >= 0)
            snprintf(out, cap, "Hi! I'm looking for something %s.", w->val[v]);
        else
            snprintf(out, cap, "Hi! Can you recommend something?");
    } else if (st->act == MACRS_ACT_REC) {
        if (st->item == u->target) {
            *accept = 1;
            snprintf(out, cap, "Yes! That is exactly what I wanted, thanks.");
        } else {
            snprintf(out, cap, "No, not that one.");
        }
    } else if (st->act == MACRS_ACT_ASK) {
        int yes = item_has(w, u->target, st->value);
        if (yes)
            u->revealed[st->value] = 1;
        snprintf(out, cap, yes ? "Yes, %s please." : "No, nothing %s.", w->val[st->value]);
    } else if (st->act == MACRS_ACT_LIST) {
        for (int i = 0; i < st->n_list; i++)
            *accept |= st->list[i] == u->target;
        snprintf(out, cap, *accept ? "Oh, one of those is the one I wanted!" : "None of these.");
    } else {
        int32_t v = next_reveal(u);
        if (v >= 0)
            snprintf(out, cap, "I'd like something %s.", w->val[v]);
        else
            snprintf(out, cap, "I'm not sure, surprise me.");
    }
    if (!u->llm || !st || *accept || st->act == MACRS_ACT_LIST)
        return;
    /* the LLM user: the same decision (accept only the target), its own words, conditioned on
     * the target's values; the template answers if the server fails */
    sbuf p = {0};
    sb_printf(&p, "You are a user talking to a movie recommender. You are looking for a movie "
                  "with these characteristics: ");
    for (int64_t j = w->off[u->target]; j < w->off[u->target + 1]; j++)
        sb_printf(&p, "%s%s", j > w->off[u->target] ? ", " : "", w->val[w->iv[j]]);
    sb_printf(&p,
              ". Never say its title. Reveal one characteristic at a time, answer questions "
              "truthfully, at most 15 words.\nConversation:\n%s\nSystem: %s\nWhat you mean "
              "to say: %s\nYour reply:",
              s->dialogue.s ? s->dialogue.s : "", st->text, out);
    if (!p.oom) {
        rlab_llm_msg msgs[1] = {{"user", p.s}};
        rlab_llm_req req = {.task = "macrs.user",
                            .msgs = msgs,
                            .n_msgs = 1,
                            .opts = {.temperature = 0, .max_tokens = 48}};
        rlab_llm_result res = {0};
        rlab_err e = {0};
        if (rlab_llm_chat(u->llm, &req, &res, &e) == RLAB_OK && res.text && res.text[0])
            snprintf(out, cap, "%s", res.text);
        rlab_llm_result_clear(&res);
    }
    rlab_free(p.s);
}

/* ---- a dialogue ------------------------------------------------------------------------ */

static int res_add(macrs_result *r, const char *role, const char *text, char *extra)
{
    if (r->n_turns == r->cap) {
        int nc = r->cap ? r->cap * 2 : 16;
        macrs_turn *t = rlab_realloc(r->t, (size_t)nc * sizeof *t);
        if (!t) {
            rlab_free(extra);
            return RLAB_ENOMEM;
        }
        r->t = t;
        r->cap = nc;
    }
    macrs_turn *t = &r->t[r->n_turns];
    snprintf(t->role, sizeof t->role, "%s", role);
    t->text = rlab_strdup(text);
    t->extra = extra;
    if (!t->text) {
        rlab_free(extra);
        return RLAB_ENOMEM;
    }
    r->n_turns++;
    return RLAB_OK;
}

void macrs_result_clear(macrs_result *r)
{
    for (int i = 0; r && i < r->n_turns; i++) {
        rlab_free(r->t[i].text);
        rlab_free(r->t[i].extra);
    }
    if (r) {
        rlab_free(r->t);
        memset(r, 0, sizeof *r);
    }
}

int macrs_episode(const macrs_world *w, int32_t target, const macrs_opts *o, macrs_result *res,
                  rlab_err *err)
{
    memset(res, 0, sizeof *res);
    if (target < 0 || target >= w->n_items)
        return rlab_errf(err, RLAB_EINVAL, "target %d outside the catalogue", (int)target);
    state s;
    int rc = state_init(&s, w, o, err);
    if (rc)
        return rc;
    user_sim u = {.w = w, .target = target, .llm = o->user_llm};
    u.revealed = rlab_calloc((size_t)w->n_vals + 1, 1);
    if (!u.revealed) {
        state_free(&s);
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    }
    char utext[600];
    int accept = 0;
    user_reply(&u, &s, NULL, utext, sizeof utext, &accept);
    for (int t = 1; rc == RLAB_OK && t <= o->max_turns; t++) {
        s.turn = t;
        char ex[64];
        snprintf(ex, sizeof ex, "{\"turn\":%d}", t);
        rc = res_add(res, "user", utext, rlab_strdup(ex));
        if (rc) {
            rlab_errf(err, rc, "out of memory");
            break;
        }
        if (s.o.policy != MACRS_P_MODEL) /* "always" listens too; it never asks */
            reflect_info(&s, utext);
        dialogue_add(&s, "User", utext);
        sys_turn st;
        rc = system_turn(&s, t == o->max_turns, &st, err);
        if (rc)
            break;
        dialogue_add(&s, "System", st.text);
        rc = res_add(res, "system", st.text, st.extra);
        if (rc) {
            rlab_errf(err, rc, "out of memory");
            break;
        }
        user_reply(&u, &s, &st, utext, sizeof utext, &accept);
        res->turns = t;
        if (accept) {
            res->hit = 1;
            res->success = st.act == MACRS_ACT_REC;
            rc = res_add(res, "user", utext, rlab_strdup("{\"accept\":true}"));
            break;
        }
        if (st.act == MACRS_ACT_REC)
            reflect_strategy(&s, st.item);
    }
    if (rc == RLAB_OK && !accept)
        rc = res_add(res, "user", utext, rlab_strdup("{\"leave\":true}"));
    rlab_free(u.revealed);
    state_free(&s);
    if (rc && !err->code)
        rlab_errf(err, rc, "out of memory");
    return rc;
}

/* ---- interactive chat --------------------------------------------------------------------- */

struct macrs_chat {
    state s;
    int turn;
    int32_t last_rec; /* the item the last system turn recommended, -1 */
    int32_t *hist;    /* items the person named, oldest first: the recommender's query history */
    int32_t n_hist;
};

/* Items whose title (without its "(year)") the person names as whole words, 4+ characters
 * (case-insensitively when it has several words): appended to the history (seen: never
 * recommended back). */
static void chat_mentions(macrs_chat *c, const char *text)
{
    const macrs_world *w = c->s.w;
    for (int32_t i = 0; i < w->n_items && c->n_hist < w->n_items; i++) {
        char t[256];
        snprintf(t, sizeof t, "%s", w->title[i]);
        char *par = strrchr(t, '(');
        if (par && par > t)
            *par = 0;
        size_t n = strlen(t);
        while (n > 0 && t[n - 1] == ' ')
            t[--n] = 0;
        if (n < 4)
            continue;
        /* a one-word title ("Loved", "Heat") only as typed, capitalised: "I loved it" is no
         * mention; longer titles in any case */
        const char *at = find_word(text, t);
        while (at && !strchr(t, ' ') && strncmp(at, t, n) != 0)
            at = find_word(at + 1, t);
        if (!at)
            continue;
        int dup = 0;
        for (int32_t k = 0; k < c->n_hist; k++)
            dup |= c->hist[k] == i;
        if (!dup) {
            c->hist[c->n_hist++] = i;
            c->s.rejected[i] = 1; /* seen: excluded like a rejection, without its reflection */
        }
    }
    c->s.o.hist = c->hist;
    c->s.o.n_hist = c->n_hist;
}

macrs_chat *macrs_chat_new(const macrs_world *w, const macrs_opts *o, rlab_err *err)
{
    macrs_chat *c = rlab_calloc(1, sizeof *c);
    if (!c) {
        rlab_errf(err, RLAB_ENOMEM, "out of memory");
        return NULL;
    }
    c->hist = rlab_calloc((size_t)w->n_items + 1, sizeof *c->hist);
    if (!c->hist || state_init(&c->s, w, o, err)) {
        if (!c->hist)
            rlab_errf(err, RLAB_ENOMEM, "out of memory");
        rlab_free(c->hist);
        rlab_free(c);
        return NULL;
    }
    c->last_rec = -1;
    return c;
}

void macrs_chat_free(macrs_chat *c)
{
    if (!c)
        return;
    state_free(&c->s);
    rlab_free(c->hist);
    rlab_free(c);
}

static int chat_turn(macrs_chat *c, const char *user_text, const char *recorded, macrs_result *res,
                     rlab_err *err)
{
    state *s = &c->s;
    const int was_asked = s->asked >= 0;
    s->turn = ++c->turn;
    char ex[64];
    snprintf(ex, sizeof ex, "{\"turn\":%d}", s->turn);
    int rc = res_add(res, "user", user_text, rlab_strdup(ex));
    if (rc)
        return rlab_errf(err, rc, "out of memory");
    int told = 0;
    if (s->o.policy != MACRS_P_MODEL)
        told = reflect_info(s, user_text);
    const int32_t n_hist = c->n_hist;
    chat_mentions(c, user_text);
    told += c->n_hist != n_hist;
    /* "no" to a recommendation rejects it: the strategy-level reflection */
    const char *t = user_text;
    while (*t == ' ')
        t++;
    if (!was_asked && c->last_rec >= 0 && strncasecmp(t, "no", 2) == 0 &&
        !isalnum((unsigned char)t[2])) {
        reflect_strategy(s, c->last_rec);
        told++;
    }
    /* a person, unlike the simulated user, may let a question, a recommendation or a
     * chit-chat pass without naming anything the CRS knows; the same turn again would say the
     * same words: the planner skips that act on that value / item this turn */
    s->repeat_off = !told;
    s->n_quiet = told ? 0 : s->n_quiet + 1;
    if (told)
        s->quiet_recs = 0;
    else if (s->last_act == MACRS_ACT_REC && s->quiet_recs < 16)
        s->quiet_items[s->quiet_recs++] = s->last_target;
    c->last_rec = -1;
    dialogue_add(s, "User", user_text);
    sys_turn st;
    rlab_llm *llm = s->o.llm;
    if (recorded)
        s->o.llm = NULL; /* the drafts only: the recorded text replaces them */
    rc = system_turn(s, 0, &st, err);
    s->o.llm = llm;
    if (rc)
        return rc;
    if (st.act == MACRS_ACT_REC)
        c->last_rec = st.item;
    dialogue_add(s, "System", recorded ? recorded : st.text);
    rc = res_add(res, "system", recorded ? recorded : st.text, st.extra);
    return rc ? rlab_errf(err, rc, "out of memory") : RLAB_OK;
}

int macrs_chat_turn(macrs_chat *c, const char *user_text, macrs_result *res, rlab_err *err)
{
    return chat_turn(c, user_text, NULL, res, err);
}

int macrs_chat_replay(macrs_chat *c, const char *user_text, const char *system_text,
                      macrs_result *res, rlab_err *err)
{
    return chat_turn(c, user_text, system_text ? system_text : "", res, err);
}
