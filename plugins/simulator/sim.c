/*
 * plugins/simulator/sim.c: RecAgent's simulation engine: agents and profiles, the social
 * graph, the round loop (activity, recommender visits, social actions), statistics,
 * interventions. Decisions live in policy.c, memory in memory.c, the store in persist.c.
 *
 * Cost model (the benchmark target is >= 100k agent-steps/s): no allocation per step or
 * round (all scratch, the visit payloads included, is sized at creation), one batched
 * score-all per round over the visiting agents and one heap top-K per visitor (K =
 * page_size * max_steps covers every page a visit can reach; the score is tested before the
 * mask), search pages from a per-item cache of its SIM_NBR nearest items (filled on the
 * first search, a full scan only when they are all seen), memories are structured records
 * whose vectors are table lookups, event payloads are written by a small JSON writer (no
 * printf but for two floats) into reusable buffers and go to the store's batched writer,
 * checkpoints are deltas (persist.c). Where the time goes (callgrind, 1,000 agents):
 * about a third in SQLite's INSERT of the events, an eighth in the BPR-MF sgemm, the rest
 * in the policies, top-K, memory and checkpoints.
 */
#define SIM_INTERNAL
#include "sim.h"

#include "base/mpi.h"
#include "eval/lists.h"
#include "llm/llm.h"

#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* ---- small helpers ----------------------------------------------------------------- */

static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

void sim_rng(const sim *s, int phase, int64_t round, int32_t agent, int32_t step, rlab_rng *r)
{
    uint64_t h = mix64(s->cfg.seed ^ 0x5157u);
    h = mix64(h ^ (uint64_t)phase);
    h = mix64(h ^ (uint64_t)round);
    h = mix64(h ^ (uint64_t)(uint32_t)agent);
    h = mix64(h ^ (uint64_t)(uint32_t)step);
    rlab_rng_seed(r, h);
}

void sim_json_str(char *dst, size_t n, const char *src)
{
    size_t k = strlen(dst);
    if (k + 3 >= n)
        return;
    dst[k++] = '"';
    for (const unsigned char *p = (const unsigned char *)(src ? src : ""); *p && k + 8 < n; p++) {
        if (*p == '"' || *p == '\\') {
            dst[k++] = '\\';
            dst[k++] = (char)*p;
        } else if (*p < 0x20) {
            k += (size_t)snprintf(dst + k, n - k, "\\u%04x", *p);
        } else {
            dst[k++] = (char)*p;
        }
    }
    dst[k++] = '"';
    dst[k] = '\0';
}

/* Append printf text to s->buf at *len (truncating at the buffer end). */
static void bput(sim *s, size_t *len, const char *fmt, ...) RLAB_PRINTF(3, 4);
static void bput(sim *s, size_t *len, const char *fmt, ...)
{
    if (*len + 1 >= s->buf_cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(s->buf + *len, s->buf_cap - *len, fmt, ap);
    va_end(ap);
    if (w > 0)
        *len += (size_t)w < s->buf_cap - *len ? (size_t)w : s->buf_cap - *len - 1;
}

static void bstr(sim *s, size_t *len, const char *str)
{
    s->buf[*len] = '\0';
    sim_json_str(s->buf, s->buf_cap, str);
    *len = strlen(s->buf);
}

/* A JSON writer into a fixed buffer (cap bytes with the NUL; output past it is dropped):
 * the event payloads of the hot path, without printf. */
static inline void jw_raw(jw *w, const char *src, size_t n)
{
    if (w->len + n + 1 <= w->cap) {
        memcpy(w->p + w->len, src, n); /* n as given: a literal's copy is a few moves */
        w->len += n;
    } else {
        size_t m = w->len + 1 < w->cap ? w->cap - w->len - 1 : 0;
        memcpy(w->p + w->len, src, m);
        w->len += m;
    }
    w->p[w->len] = '\0';
}

static inline void jw_cstr(jw *w, const char *str) { jw_raw(w, str, strlen(str)); }

static void jw_int(jw *w, int64_t x)
{
    char tmp[24];
    int n = 0;
    uint64_t u = x < 0 ? (uint64_t)0 - (uint64_t)x : (uint64_t)x;
    do {
        tmp[sizeof tmp - 1 - n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (x < 0)
        tmp[sizeof tmp - 1 - n++] = '-';
    if (w->len + (size_t)n + 1 <= w->cap) { /* a few bytes: no memcpy call */
        for (int i = 0; i < n; i++)
            w->p[w->len + (size_t)i] = tmp[sizeof tmp - (size_t)n + (size_t)i];
        w->len += (size_t)n;
        w->p[w->len] = '\0';
        return;
    }
    jw_raw(w, tmp + sizeof tmp - n, (size_t)n);
}

/* A JSON string (quotes, \" \\ and \u00XX for control bytes; as sim_json_str). */
static void jw_str(jw *w, const char *src)
{
    static const char hex[] = "0123456789abcdef";
    jw_lit(w, "\"");
    const unsigned char *p = (const unsigned char *)(src ? src : "");
    for (;;) {
        const unsigned char *q = p;
        while (*q && *q != '"' && *q != '\\' && *q >= 0x20)
            q++;
        jw_raw(w, (const char *)p, (size_t)(q - p));
        if (!*q)
            break;
        if (*q == '"' || *q == '\\') {
            char e[2] = {'\\', (char)*q};
            jw_raw(w, e, 2);
        } else {
            char e[6] = {'\\', 'u', '0', '0', hex[*q >> 4], hex[*q & 15]};
            jw_raw(w, e, 6);
        }
        p = q + 1;
    }
    jw_lit(w, "\"");
}

static const char *by_name(int by)
{
    return by == SIM_BY_LLM        ? "llm"
           : by == SIM_BY_FALLBACK ? "fallback"
           : by == SIM_BY_HUMAN    ? "human"
                                   : "offline";
}

static void wr_event(sim *s, int32_t agent, const char *kind, const char *payload);

/* An event into the store's buffer now (next seq). */
static void emit_db(sim *s, int32_t agent, const char *kind, const char *payload)
{
    if (!s->db || !s->run_id)
        return;
    rlab_db_event_rec ev = {.run_id = s->run_id,
                            .seq = s->seq++,
                            .round = s->round + 1,
                            .vtime = s->vtime,
                            .agent = agent,
                            .kind = kind,
                            .payload_json = payload};
    rlab_err e = {0};
    if (rlab_db_event(s->db, &ev, &e))
        rlab_log(RLAB_LOG_WARN, "simulator: event not stored: %s", e.msg);
}

void sim_emit(sim *s, int32_t agent, const char *kind, const char *payload)
{
    if (sim_shard_buffering(s)) { /* a partitioned round: to rank 0 at the round's end */
        sim_shard_event(s, agent, kind, payload);
        return;
    }
    if (s->wr) { /* the round's writer owns the store: in order through its queue */
        wr_event(s, agent, kind, payload);
        return;
    }
    emit_db(s, agent, kind, payload);
}

/* ---- configuration ----------------------------------------------------------------- */

void sim_config_default(sim_config *c)
{
    memset(c, 0, sizeof *c);
    c->seed = 42;
    c->n_agents = 0;
    c->page_size = 5;
    c->max_steps = 5;
    c->activity = SIM_ACT_RANDOM;
    c->active_prob = 1.0;
    c->max_active = 0;
    c->interval_h = 5.0;
    c->watch_h = 2.0;
    c->temperature = 1.0;
    c->checkpoint_every = 1;
    c->checkpoint_full = 25;
    c->llm_retries = 1;
    c->max_fallback = 0.5;
    c->rewire_k = 8;
    c->swap_k = 0;
}

/* ---- accessors --------------------------------------------------------------------- */

const sim_config *sim_cfg(const sim *s) { return &s->cfg; }
const sim_llm_trouble *sim_llm_trouble_get(const sim *s) { return &s->trouble; }
void sim_llm_trouble_clear(sim *s) { memset(&s->trouble, 0, sizeof s->trouble); }

const char *sim_llm_kind_name(int kind)
{
    static const char *const names[SIM_LLM_NKINDS] = {"unreachable", "timeout",    "auth", "http",
                                                      "protocol",    "unparsable", "other"};
    return kind >= 0 && kind < SIM_LLM_NKINDS ? names[kind] : "?";
}
int64_t sim_round(const sim *s) { return s->round; }
double sim_vtime(const sim *s) { return s->vtime; }
int32_t sim_n_agents(const sim *s) { return s->n; }
int32_t sim_n_items(const sim *s) { return s->n_items; }
const sim_agent *sim_agent_at(const sim *s, int32_t a)
{
    return a >= 0 && a < s->n ? &s->agents[a] : NULL;
}
const sim_stats *sim_last_stats(const sim *s) { return &s->last; }
const char *sim_item_title(const sim *s, int32_t i)
{
    return i >= 0 && i < s->n_items ? s->titles[i] : "?";
}
const char *sim_model_name(const sim *s) { return s->model_name; }
int32_t sim_followers(const sim *s, int32_t a, const int32_t **out)
{
    *out = s->fr + s->fr_off[a];
    return (int32_t)(s->fr_off[a + 1] - s->fr_off[a]);
}
int32_t sim_followees(const sim *s, int32_t a, const int32_t **out)
{
    *out = s->fo + s->fo_off[a];
    return (int32_t)(s->fo_off[a + 1] - s->fo_off[a]);
}
const float *sim_taste(const sim *s, int32_t a) { return s->taste + (size_t)a * (size_t)s->G; }
int32_t sim_n_genres(const sim *s) { return s->G; }
const char *sim_genre_name(const sim *s, int32_t g)
{
    return g >= 0 && g < s->G ? s->genre_names[g] : "?";
}
int64_t sim_id(const sim *s) { return s->id; }
void sim_set_id(sim *s, int64_t id) { s->id = id; }
void sim_request_pause(sim *s) { atomic_store(&s->pause, 1); }
int sim_paused(const sim *s) { return atomic_load(&s->pause); }
void sim_clear_pause(sim *s) { atomic_store(&s->pause, 0); }
void sim_set_retrain(sim *s, sim_retrain_fn fn, void *ud)
{
    s->retrain = fn;
    s->retrain_ud = ud;
}

void sim_attach_store(sim *s, rlab_db *db, int64_t run_id)
{
    if (s->db != db)
        sim_store_detach(s);
    s->db = db;
    s->run_id = run_id;
}

void sim_set_model(sim *s, rlab_model *m)
{
    rlab_model_release(s->model);
    s->model = m ? rlab_model_retain(m) : NULL;
    snprintf(s->model_name, sizeof s->model_name, "%s", m ? m->name : "random");
}

int sim_set_llm(sim *s, rlab_llm *llm, rlab_err *err)
{
    s->llm = llm;
    if (llm)
        return sim_register_policies(s, llm, err);
    return RLAB_OK;
}

/* ---- affinities and histories ------------------------------------------------------ */

float sim_affinity(const sim *s, int32_t a, int32_t item)
{
    const float *t = s->taste + (size_t)a * (size_t)s->G;
    const float *g = s->item_genre + (size_t)item * (size_t)s->G;
    float d = 0.0f;
    for (int32_t k = 0; k < s->G; k++)
        d += t[k] * g[k];
    return d;
}

float sim_true_affinity(const sim *s, int32_t a, int32_t item)
{
    const sim_agent *ag = &s->agents[a];
    if (s->world && ag->user >= 0)
        return rlab_world_true_affinity(s->world, ag->user, item);
    return sim_affinity(s, a, item);
}

int sim_has_watched(const sim_agent *ag, int32_t item)
{
    for (int i = 0; i < SIM_HIST; i++)
        if (ag->watched[i] == item)
            return 1;
    return 0;
}

int sim_heard_index(const sim_agent *ag, int32_t item)
{
    for (int i = 0; i < SIM_HIST; i++)
        if (ag->heard[i] == item)
            return i;
    return -1;
}

int32_t sim_best_heard(const sim *s, int32_t a)
{
    const sim_agent *ag = &s->agents[a];
    int32_t best = -1;
    int bn = 0;
    for (int i = 0; i < SIM_HIST; i++) {
        int32_t it = ag->heard[i];
        if (it < 0 || sim_has_watched(ag, it))
            continue;
        if (ag->heard_n[i] > bn || (ag->heard_n[i] == bn && best >= 0 && it < best)) {
            bn = ag->heard_n[i];
            best = it;
        }
    }
    return best;
}

void sim_hear(sim *s, int32_t a, int32_t item)
{
    if (item < 0)
        return;
    sim_agent *ag = &s->agents[a];
    int k = sim_heard_index(ag, item);
    if (k >= 0) {
        if (ag->heard_n[k] < 65535)
            ag->heard_n[k]++;
        return;
    }
    ag->heard[ag->heard_pos] = item;
    ag->heard_n[ag->heard_pos] = 1;
    ag->heard_pos = (ag->heard_pos + 1) % SIM_HIST;
}

/* The query history is a ring once full: n_qhist < SIM_QHIST items are qhist[0..n_qhist)
 * oldest first; n_qhist in [SIM_QHIST, 2 SIM_QHIST) means full with the oldest item at
 * n_qhist - SIM_QHIST (so a full history of the earlier shifting layout, n_qhist =
 * SIM_QHIST, reads the same). A push overwrites one slot instead of moving 31. */
static void qhist_push(sim_agent *ag, int32_t item)
{
    if (ag->n_qhist < SIM_QHIST) {
        ag->qhist[ag->n_qhist++] = item;
        return;
    }
    ag->qhist[ag->n_qhist - SIM_QHIST] = item;
    ag->n_qhist = ag->n_qhist + 1 < 2 * SIM_QHIST ? ag->n_qhist + 1 : SIM_QHIST;
}

/* The history oldest first: ag->qhist itself, or linearised into tmp [SIM_QHIST]. */
static const int32_t *qhist_linear(const sim_agent *ag, int32_t *tmp, int32_t *n)
{
    if (ag->n_qhist <= SIM_QHIST) {
        *n = ag->n_qhist;
        return ag->qhist;
    }
    int32_t st = ag->n_qhist - SIM_QHIST;
    memcpy(tmp, ag->qhist + st, (size_t)(SIM_QHIST - st) * sizeof *tmp);
    memcpy(tmp + (SIM_QHIST - st), ag->qhist, (size_t)st * sizeof *tmp);
    *n = SIM_QHIST;
    return tmp;
}

static int ci_contains(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    if (n == 0)
        return 0;
    for (const char *h = hay; *h; h++) {
        size_t i = 0;
        while (i < n && h[i] && tolower((unsigned char)h[i]) == tolower((unsigned char)needle[i]))
            i++;
        if (i == n)
            return 1;
    }
    return 0;
}

int32_t sim_find_title(const sim *s, const char *text)
{
    /* the longest title contained in text wins (so "Alien" does not shadow "Aliens") */
    int32_t best = -1;
    size_t bl = 0;
    for (int32_t i = 0; i < s->n_items; i++) {
        size_t l = strlen(s->titles[i]);
        if (l > bl && ci_contains(text, s->titles[i])) {
            best = i;
            bl = l;
        }
    }
    return best;
}

/* ---- construction ------------------------------------------------------------------ */

static const char *const first_names[] = {
    "Ava", "Liam", "Mia",  "Noah", "Zoe",  "Omar", "Lena", "Ravi", "Sofia", "Ken",  "Ines",
    "Tom", "Yara", "Luca", "Nora", "Ivan", "Maya", "Eli",  "Hana", "Paul",  "Aiko", "Sam",
    "Lea", "Jon",  "Emma", "Theo", "Ada",  "Max",  "Ruth", "Finn", "Chloe", "Hugo"};
static const char *const last_names[] = {"Chen",   "Smith",  "Garcia", "Ito",  "Novak",  "Khan",
                                         "Moreau", "Rossi",  "Silva",  "Berg", "Okafor", "Kim",
                                         "Weber",  "Dubois", "Haas",   "Lopez"};
static const char *const arch_traits[] = {
    "patient, curious, loves long evenings in front of a screen",
    "adventurous, open-minded, hunts for the unusual", "demanding, articulate, quick to judge",
    "sociable, warm, trusts friends' advice", "outgoing, opinionated, likes an audience"};

static int name_cmp(const char *a, const char *b)
{
    for (; *a && *b; a++, b++)
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
            return 1;
    return *a != *b;
}

static int genre_by_name(const sim *s, const char *name)
{
    for (int32_t g = 0; g < s->G; g++)
        if (name_cmp(s->genre_names[g], name) == 0)
            return g;
    return -1;
}

static int arch_by_name(const char *name)
{
    for (int a = 0; a < RLAB_WORLD_N_ARCHETYPES; a++)
        if (name_cmp(rlab_world_archetype_name(a), name) == 0)
            return a;
    return -1;
}

static void taste_derive(sim *s, int32_t a);

static void taste_finish(sim *s, int32_t a)
{
    float *t = s->taste + (size_t)a * (size_t)s->G;
    float sum = 0.0f;
    for (int32_t g = 0; g < s->G; g++)
        sum += t[g];
    if (!(sum > 0.0f)) {
        for (int32_t g = 0; g < s->G; g++)
            t[g] = 1.0f / (float)s->G;
        sum = 1.0f;
    }
    for (int32_t g = 0; g < s->G; g++)
        t[g] /= sum;
    taste_derive(s, a);
}

/* amax and the taste vector of a's (normalised) taste; leaves the taste itself alone, so a
 * restored checkpoint keeps its exact floats. */
static void taste_derive(sim *s, int32_t a)
{
    const float *t = s->taste + (size_t)a * (size_t)s->G;
    float mx = 0.0f;
    for (int32_t g = 0; g < s->G; g++)
        if (t[g] > mx)
            mx = t[g];
    s->amax[a] = mx > 1e-6f ? mx : 1e-6f;
    float *v = s->taste_vec + (size_t)a * SIM_DIM;
    memset(v, 0, SIM_DIM * sizeof *v);
    for (int32_t g = 0; g < s->G; g++)
        for (int d = 0; d < SIM_DIM; d++)
            v[d] += t[g] * s->genre_vec[(size_t)g * SIM_DIM + (size_t)d];
    float nn = 0.0f;
    for (int d = 0; d < SIM_DIM; d++)
        nn += v[d] * v[d];
    nn = sqrtf(nn);
    if (nn > 0.0f)
        for (int d = 0; d < SIM_DIM; d++)
            v[d] /= nn;
}

static void normalize(float *v, int n)
{
    float nn = 0.0f;
    for (int i = 0; i < n; i++)
        nn += v[i] * v[i];
    nn = sqrtf(nn);
    if (nn > 0.0f)
        for (int i = 0; i < n; i++)
            v[i] /= nn;
}

/* Item genres, titles and text vectors (TF-IDF over "title genre genre genre", SVD to
 * SIM_DIM): the text encoder of memory relevance. Genre words are repeated so that items
 * of the same genres are near each other whatever their titles. */
static int setup_items(sim *s, rlab_err *err)
{
    const rlab_dataset *ds = s->ds;
    int32_t I = s->n_items;
    const rlab_feat_col *gc = rlab_feats_find(&ds->item_feats, "genres");
    int32_t *gmap = NULL; /* attribute value -> genre, -1 = not kept (attributes only) */
    if (!s->world && !(gc && gc->kind == RLAB_FEAT_TOKEN_SEQ && rlab_vocab_size(&gc->vocab) > 0)) {
        /* no genres: item attributes (Amazon brand + categories) stand in for them, the 255
         * most frequent (the simulator's genre bound; ties by value order) */
        gc = rlab_feats_find(&ds->item_feats, "attributes");
        if (gc && gc->kind == RLAB_FEAT_TOKEN_SEQ && rlab_vocab_size(&gc->vocab) > 0) {
            int32_t V = rlab_vocab_size(&gc->vocab);
            int64_t *cnt = rlab_calloc((size_t)V, sizeof(int64_t));
            int32_t *ord = rlab_malloc((size_t)V * sizeof(int32_t));
            gmap = rlab_malloc((size_t)V * sizeof(int32_t));
            if (!cnt || !ord || !gmap) {
                rlab_free(cnt), rlab_free(ord), rlab_free(gmap);
                return rlab_errf(err, RLAB_ENOMEM, "out of memory");
            }
            for (int64_t k = 0;
                 k < gc->off[I < ds->item_feats.n_entities ? I : ds->item_feats.n_entities]; k++)
                if (gc->seq[k] >= 0 && gc->seq[k] < V)
                    cnt[gc->seq[k]]++;
            for (int32_t v = 0; v < V; v++)
                ord[v] = v, gmap[v] = -1;
            for (int32_t v = 1; v < V; v++) { /* insertion sort by count, descending */
                int32_t x = ord[v], j = v;
                while (j > 0 && cnt[ord[j - 1]] < cnt[x])
                    ord[j] = ord[j - 1], j--;
                ord[j] = x;
            }
            s->G = V < 255 ? V : 255;
            for (int32_t g = 0; g < s->G; g++)
                gmap[ord[g]] = g;
            s->attr_order = ord;
            s->attr_map = gmap; /* freed with the sim */
            rlab_free(cnt);
        } else {
            gc = NULL;
        }
    }
    if (s->world) {
        s->G = s->world->n_genres;
    } else if (gmap) {
        /* set above */
    } else if (gc) {
        s->G = rlab_vocab_size(&gc->vocab);
    } else {
        s->G = 1;
    }
    if (s->G > 255)
        return rlab_errf(err, RLAB_EINVAL, "simulator: at most 255 genres (dataset has %d)",
                         (int)s->G);
    int32_t G = s->G;
    s->item_genre = rlab_calloc((size_t)I * (size_t)G, sizeof(float));
    s->item_topg = rlab_calloc((size_t)I, 1);
    s->g_off = rlab_calloc((size_t)I + 1, sizeof(int64_t));
    s->g_items = rlab_calloc((size_t)I * (size_t)G + 1, sizeof(int32_t));
    s->genre_names = rlab_calloc((size_t)G, sizeof(char *));
    s->titles = rlab_calloc((size_t)I, sizeof(char *));
    s->item_vec = rlab_calloc((size_t)I * SIM_DIM, sizeof(float));
    s->genre_vec = rlab_calloc((size_t)G * SIM_DIM, sizeof(float));
    s->item_pop = rlab_calloc((size_t)I, sizeof(float));
    if (!s->item_genre || !s->item_topg || !s->g_off || !s->g_items || !s->genre_names ||
        !s->titles || !s->item_vec || !s->genre_vec || !s->item_pop)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    for (int32_t g = 0; g < G; g++) {
        char nb[64];
        char ab[80];
        if (gmap)
            snprintf(ab, sizeof ab, "attr%s", rlab_vocab_name(&gc->vocab, s->attr_order[g]));
        const char *nm = s->world ? rlab_world_genre_name(g, nb, sizeof nb)
                         : gmap   ? ab
                         : gc     ? rlab_vocab_name(&gc->vocab, g)
                                  : "All";
        s->genre_names[g] = rlab_strdup(nm);
        if (!s->genre_names[g])
            return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    }
    for (int32_t i = 0; i < I; i++) {
        float *row = s->item_genre + (size_t)i * (size_t)G;
        if (s->world) {
            memcpy(row, s->world->item_genre + (size_t)i * (size_t)G, (size_t)G * sizeof(float));
        } else if (gc && (!gmap || i < ds->item_feats.n_entities)) {
            int64_t b = gc->off[i], e = gc->off[i + 1];
            for (int64_t k = b; k < e; k++) {
                int32_t g = gmap ? (gc->seq[k] >= 0 ? gmap[gc->seq[k]] : -1) : gc->seq[k];
                if (g >= 0 && g < G)
                    row[g] += 1.0f / (float)(e - b);
            }
        } else {
            row[0] = 1.0f;
        }
        float best = 0.0f;
        s->g_off[i + 1] = s->g_off[i];
        for (int32_t g = 0; g < G; g++) {
            if (row[g] > 0.0f)
                s->g_items[s->g_off[i + 1]++] = g;
            if (row[g] > best) {
                best = row[g];
                s->item_topg[i] = (uint8_t)g;
            }
        }
    }
    /* titles */
    const rlab_feat_col *tc = rlab_feats_find(&ds->item_feats, "title");
    for (int32_t i = 0; i < I; i++) {
        const char *t =
            tc && tc->kind == RLAB_FEAT_TEXT && tc->text && tc->text[i] ? tc->text[i] : NULL;
        s->titles[i] = t ? t : rlab_vocab_name(&ds->items, i);
    }
    /* popularity share */
    size_t n_pop = 0;
    for (size_t r = 0; r < ds->inter.n; r++)
        if (ds->inter.item[r] >= 0 && ds->inter.item[r] < I && (!s->keep || s->keep[r])) {
            s->item_pop[ds->inter.item[r]] += 1.0f;
            n_pop++;
        }
    for (int32_t i = 0; i < I; i++)
        s->item_pop[i] /= (float)(n_pop ? n_pop : 1);
    /* text vectors */
    char **docs = rlab_calloc((size_t)I, sizeof(char *));
    int32_t D = 512;
    float *X = rlab_malloc((size_t)I * (size_t)D * sizeof(float));
    int k = I < SIM_DIM ? I : SIM_DIM;
    float *U = rlab_malloc((size_t)I * (size_t)k * sizeof(float));
    float *S = rlab_malloc((size_t)k * sizeof(float));
    s->Vt = rlab_calloc((size_t)SIM_DIM * (size_t)D, sizeof(float));
    int rc = (!docs || !X || !U || !S || !s->Vt) ? rlab_errf(err, RLAB_ENOMEM, "out of memory")
                                                 : RLAB_OK;
    for (int32_t i = 0; rc == RLAB_OK && i < I; i++) {
        char line[512];
        int w = snprintf(line, sizeof line, "%s", s->titles[i]);
        for (int rep = 0; rep < 3; rep++)
            for (int64_t q = s->g_off[i]; q < s->g_off[i + 1] && w > 0 && (size_t)w < sizeof line;
                 q++)
                w += snprintf(line + w, sizeof line - (size_t)w, " %s",
                              s->genre_names[s->g_items[q]]);
        docs[i] = rlab_strdup(line);
        if (!docs[i])
            rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
    }
    if (rc == RLAB_OK)
        rc = rlab_tfidf_fit(&s->tfidf, (const char *const *)docs, I, D, err);
    if (rc == RLAB_OK) {
        rlab_tfidf_transform_many(&s->tfidf, (const char *const *)docs, I, X);
        float *Vt = rlab_malloc((size_t)k * (size_t)D * sizeof(float));
        rc = Vt ? rlab_svd_truncated(X, I, D, k, 8, 2, s->cfg.seed ^ 0xabcdu, U, S, Vt, err)
                : rlab_errf(err, RLAB_ENOMEM, "out of memory");
        if (rc == RLAB_OK) {
            memcpy(s->Vt, Vt, (size_t)k * (size_t)D * sizeof(float));
            for (int32_t i = 0; i < I; i++) {
                float *v = s->item_vec + (size_t)i * SIM_DIM;
                for (int j = 0; j < k; j++)
                    v[j] = U[(size_t)i * (size_t)k + (size_t)j] * S[j];
                normalize(v, SIM_DIM);
            }
        }
        rlab_free(Vt);
    }
    for (int32_t i = 0; docs && i < I; i++)
        rlab_free(docs[i]);
    rlab_free(docs);
    rlab_free(X);
    rlab_free(U);
    rlab_free(S);
    if (rc)
        return rc;
    for (int32_t i = 0; i < I; i++)
        for (int32_t g = 0; g < G; g++) {
            float w = s->item_genre[(size_t)i * (size_t)G + (size_t)g];
            if (w > 0.0f)
                for (int d = 0; d < SIM_DIM; d++)
                    s->genre_vec[(size_t)g * SIM_DIM + (size_t)d] +=
                        w * s->item_vec[(size_t)i * SIM_DIM + (size_t)d];
        }
    for (int32_t g = 0; g < G; g++)
        normalize(s->genre_vec + (size_t)g * SIM_DIM, SIM_DIM);
    /* kinds without an item: the vector of a describing phrase */
    static const char *const kind_words[SIM_M_KINDS] = {"",
                                                        "watched movie film",
                                                        "chat friend talk conversation",
                                                        "heard post social media",
                                                        "posted social media",
                                                        "recommender browse site left",
                                                        "likes genre",
                                                        "likes genre"};
    float *x = rlab_malloc((size_t)D * sizeof(float));
    if (!x)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    for (int kk = 1; kk < SIM_M_KINDS; kk++) {
        rlab_tfidf_transform(&s->tfidf, kind_words[kk], x);
        for (int j = 0; j < SIM_DIM; j++) {
            float d = 0.0f;
            for (int32_t q = 0; q < D; q++)
                d += s->Vt[(size_t)j * (size_t)D + (size_t)q] * x[q];
            s->kind_vec[kk][j] = d;
        }
        normalize(s->kind_vec[kk], SIM_DIM);
    }
    rlab_free(x);
    return RLAB_OK;
}

/* Vector of a free text (interview question) in the item space. out: [SIM_DIM]. */
static void text_vec(const sim *s, const char *text, float *out)
{
    int32_t D = s->tfidf.D;
    float x[512];
    if (D > 512)
        D = 512;
    rlab_tfidf_transform(&s->tfidf, text, x);
    for (int j = 0; j < SIM_DIM; j++) {
        float d = 0.0f;
        for (int32_t q = 0; q < D; q++)
            d += s->Vt[(size_t)j * (size_t)s->tfidf.D + (size_t)q] * x[q];
        out[j] = d;
    }
    normalize(out, SIM_DIM);
}

static const char *feat_token(const rlab_dataset *ds, const char *col, int32_t u)
{
    const rlab_feat_col *c = rlab_feats_find(&ds->user_feats, col);
    if (!c || c->kind != RLAB_FEAT_TOKEN || u >= ds->user_feats.n_entities || !c->tok)
        return NULL;
    return rlab_vocab_name(&c->vocab, c->tok[u]);
}

static float feat_float(const rlab_dataset *ds, const char *col, int32_t u)
{
    const rlab_feat_col *c = rlab_feats_find(&ds->user_feats, col);
    if (!c || c->kind != RLAB_FEAT_FLOAT || u >= ds->user_feats.n_entities || !c->num)
        return NAN;
    return c->num[u];
}

static double chance_affinity(const sim *s, int32_t a, const double *gmean);
static int visits_alloc(sim *s);

/* Profiles from the world (truth) or from the dataset (history), then the CSV overlay. */
static int setup_agents(sim *s, const sim_profiles *prof, rlab_err *err)
{
    const rlab_dataset *ds = s->ds;
    int32_t n = s->n, G = s->G, I = s->n_items;
    s->agents = rlab_calloc((size_t)n, sizeof(sim_agent));
    s->taste = rlab_calloc((size_t)n * (size_t)G, sizeof(float));
    s->amax = rlab_calloc((size_t)n, sizeof(float));
    s->taste_vec = rlab_calloc((size_t)n * SIM_DIM, sizeof(float));
    s->gcount = rlab_calloc((size_t)n * (size_t)G, sizeof(float));
    s->recall = rlab_calloc((size_t)n * SIM_DIM, sizeof(float));
    s->shown_row = ((size_t)I + 63) / 64 * 8;
    s->shown = rlab_calloc((size_t)n * s->shown_row, 1);
    double *nint = rlab_calloc((size_t)n, sizeof(double));
    double *rsum = rlab_calloc((size_t)n, sizeof(double));
    if (!s->agents || !s->taste || !s->amax || !s->taste_vec || !s->gcount || !s->shown ||
        !s->recall || !nint || !rsum) {
        rlab_free(nint);
        rlab_free(rsum);
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    }
    for (int32_t a = 0; a < n; a++) {
        sim_agent *ag = &s->agents[a];
        ag->user = a;
        for (int i = 0; i < SIM_HIST; i++)
            ag->watched[i] = ag->heard[i] = -1;
    }
    /* history: query items, already-consumed mask, taste evidence */
    int has_rating = (ds->inter.flags & RLAB_INTER_HAS_RATING) != 0;
    for (size_t r = 0; r < ds->inter.n; r++) {
        int32_t u = ds->inter.user[r], it = ds->inter.item[r];
        if (u < 0 || u >= n || it < 0 || it >= I || (s->keep && !s->keep[r]))
            continue;
        qhist_push(&s->agents[u], it);
        sim_show(s, u, it);
        float w = has_rating ? fmaxf(ds->inter.rating[r] - 2.0f, 0.25f) : 1.0f;
        nint[u] += 1.0;
        rsum[u] += has_rating ? (double)ds->inter.rating[r] : 3.5;
        if (!s->world)
            for (int32_t g = 0; g < G; g++)
                s->taste[(size_t)u * (size_t)G + (size_t)g] +=
                    w * s->item_genre[(size_t)it * (size_t)G + (size_t)g];
    }
    /* activity quartile for inferred archetypes */
    double q75 = 0.0;
    {
        int cnt = 0;
        double mean = 0.0;
        for (int32_t a = 0; a < n; a++)
            mean += nint[a], cnt++;
        q75 = cnt ? 1.5 * mean / cnt : 0.0;
    }
    rlab_rng r;
    for (int32_t a = 0; a < n; a++) {
        sim_agent *ag = &s->agents[a];
        sim_rng(s, SIM_PH_MEM, -1, a, 0, &r);
        if (s->world) {
            const float *t = rlab_world_taste(s->world, a, INT64_MAX);
            memcpy(s->taste + (size_t)a * (size_t)G, t, (size_t)G * sizeof(float));
            ag->arch = SIM_ARCH(s->world->archetype[a]);
        } else {
            /* inferred: heavy raters watch, harsh raters criticise, broad tastes explore */
            double mr = nint[a] > 0 ? rsum[a] / nint[a] : 3.5;
            const float *t = s->taste + (size_t)a * (size_t)G;
            double tot = 0.0, h = 0.0;
            for (int32_t g = 0; g < G; g++)
                tot += (double)t[g];
            for (int32_t g = 0; g < G && tot > 0; g++)
                if (t[g] > 0)
                    h -= ((double)t[g] / tot) * log2((double)t[g] / tot);
            if (nint[a] > q75)
                ag->arch |= SIM_ARCH(RLAB_ARCH_WATCHER);
            if (mr < 3.2)
                ag->arch |= SIM_ARCH(RLAB_ARCH_CRITIC);
            if (G > 1 && h > 0.8 * log2((double)G))
                ag->arch |= SIM_ARCH(RLAB_ARCH_EXPLORER);
            if (!ag->arch)
                ag->arch = SIM_ARCH(rlab_rng_below(&r, 2) ? RLAB_ARCH_CHATTER : RLAB_ARCH_POSTER);
        }
        snprintf(
            ag->name, sizeof ag->name, "%s %s",
            first_names[(size_t)a % (sizeof first_names / sizeof *first_names)],
            last_names[((size_t)a / 7 + (size_t)a) % (sizeof last_names / sizeof *last_names)]);
        float age = feat_float(ds, "age", a);
        ag->age = isnan(age) ? 18 + (int32_t)rlab_rng_below(&r, 50) : (int32_t)age;
        const char *gd = feat_token(ds, "gender", a);
        snprintf(ag->gender, sizeof ag->gender, "%s",
                 gd ? gd : (rlab_rng_below(&r, 2) ? "F" : "M"));
        const char *oc = feat_token(ds, "occupation", a);
        snprintf(ag->occupation, sizeof ag->occupation, "%s", oc ? oc : "other");
        int main_arch = 0;
        for (int k = 0; k < RLAB_WORLD_N_ARCHETYPES; k++)
            if (ag->arch & SIM_ARCH(k)) {
                main_arch = k;
                break;
            }
        snprintf(ag->traits, sizeof ag->traits, "%s", arch_traits[main_arch]);
        snprintf(ag->status, sizeof ag->status, "%s, %d years old", ag->occupation, (int)ag->age);
    }
    rlab_free(nint);
    rlab_free(rsum);
    /* CSV profiles */
    if (prof && prof->csv_path) {
        FILE *f = fopen(prof->csv_path, "r");
        if (!f)
            return rlab_errf(err, RLAB_EIO, "simulator: cannot open profiles %s", prof->csv_path);
        char line[2048];
        int col[8];
        for (int i = 0; i < 8; i++)
            col[i] = -1;
        static const char *const names[8] = {"id",     "name",   "age",       "gender",
                                             "traits", "status", "interests", "feature"};
        int lineno = 0, rc = RLAB_OK;
        while (rc == RLAB_OK && fgets(line, sizeof line, f)) {
            lineno++;
            line[strcspn(line, "\r\n")] = '\0';
            char *fld[16];
            int nf = 0;
            for (char *p = line; nf < 16;) {
                fld[nf++] = p;
                char *c = strchr(p, ',');
                if (!c)
                    break;
                *c = '\0';
                p = c + 1;
            }
            if (lineno == 1) {
                for (int i = 0; i < nf; i++)
                    for (int k = 0; k < 8; k++)
                        if (name_cmp(fld[i], names[k]) == 0)
                            col[k] = i;
                if (col[0] < 0)
                    rc = rlab_errf_at(err, RLAB_EFORMAT, prof->csv_path, 1,
                                      "profiles need an 'id' column");
                continue;
            }
            if (col[0] >= nf)
                continue;
            int32_t u = rlab_vocab_find(&ds->users, fld[col[0]], strlen(fld[col[0]]));
            if (u < 0 || u >= n)
                continue;
            static const char *const fields[8] = {NULL,     "name",   "age",       "gender",
                                                  "traits", "status", "interests", "feature"};
            for (int k = 1; k < 8 && rc == RLAB_OK; k++)
                if (col[k] >= 0 && col[k] < nf && fld[col[k]][0]) {
                    rc = sim_edit(s, u, fields[k], fld[col[k]], err);
                    if (rc)
                        rlab_errf_at(err, rc, prof->csv_path, lineno, "%s", err->msg);
                }
        }
        fclose(f);
        if (rc)
            return rc;
    }
    for (int32_t a = 0; a < n; a++)
        taste_finish(s, a);
    s->chance_aff = rlab_malloc((size_t)n * sizeof(float));
    double *gmean = rlab_malloc((size_t)G * sizeof(double));
    if (!s->chance_aff || !gmean) {
        rlab_free(gmean);
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    }
    for (int32_t g = 0; g < G; g++) { /* summed in the order the per-agent loop used */
        double m = 0.0;
        for (int32_t i = 0; i < I; i++)
            m += (double)s->item_genre[(size_t)i * (size_t)G + (size_t)g];
        gmean[g] = m;
    }
    for (int32_t a = 0; a < n; a++)
        s->chance_aff[a] = (float)chance_affinity(s, a, gmean);
    rlab_free(gmean);
    /* base activity */
    for (int32_t a = 0; a < n; a++) {
        sim_rng(s, SIM_PH_ACTIVE, -1, a, 0, &r);
        if (s->cfg.activity == SIM_ACT_PARETO) {
            double alpha = 10.0 * s->cfg.active_prob;
            if (alpha <= 0)
                alpha = 1.0;
            s->agents[a].p_active = (float)pow(1.0 - rlab_rng_double(&r), -1.0 / alpha);
        } else {
            s->agents[a].p_active = (float)s->cfg.active_prob;
        }
    }
    if (s->cfg.activity == SIM_ACT_PARETO) {
        float mx = 0.0f;
        for (int32_t a = 0; a < n; a++)
            mx = fmaxf(mx, s->agents[a].p_active);
        for (int32_t a = 0; a < n; a++)
            s->agents[a].p_active /= mx;
    }
    return RLAB_OK;
}

/* Build CSR follow / follower arrays from an edge list (src follows dst), sorted. */
static int set_graph(sim *s, const int32_t *src, const int32_t *dst, int64_t m, rlab_err *err)
{
    int32_t n = s->n;
    int64_t *fo_off = rlab_calloc((size_t)n + 1, sizeof(int64_t));
    int64_t *fr_off = rlab_calloc((size_t)n + 1, sizeof(int64_t));
    int32_t *fo = rlab_malloc((size_t)(m ? m : 1) * sizeof(int32_t));
    int32_t *fr = rlab_malloc((size_t)(m ? m : 1) * sizeof(int32_t));
    float *fl = rlab_malloc((size_t)(m ? m : 1) * sizeof(float));
    int64_t *pos = rlab_calloc((size_t)n + 1, sizeof(int64_t));
    if (!fo_off || !fr_off || !fo || !fr || !fl || !pos) {
        rlab_free(fo_off), rlab_free(fr_off), rlab_free(fo), rlab_free(fr), rlab_free(fl);
        rlab_free(pos);
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    }
    for (int64_t e = 0; e < m; e++)
        fo_off[src[e] + 1]++, fr_off[dst[e] + 1]++;
    for (int32_t a = 0; a < n; a++)
        fo_off[a + 1] += fo_off[a], fr_off[a + 1] += fr_off[a];
    memcpy(pos, fo_off, (size_t)n * sizeof(int64_t));
    for (int64_t e = 0; e < m; e++)
        fo[pos[src[e]]++] = dst[e];
    memcpy(pos, fr_off, (size_t)n * sizeof(int64_t));
    for (int64_t e = 0; e < m; e++)
        fr[pos[dst[e]]++] = src[e];
    /* sort each slice (insertion sort: slices are short) */
    for (int pass = 0; pass < 2; pass++) {
        int64_t *off = pass ? fr_off : fo_off;
        int32_t *v = pass ? fr : fo;
        for (int32_t a = 0; a < n; a++)
            for (int64_t i = off[a] + 1; i < off[a + 1]; i++) {
                int32_t x = v[i];
                int64_t j = i;
                while (j > off[a] && v[j - 1] > x) {
                    v[j] = v[j - 1];
                    j--;
                }
                v[j] = x;
            }
    }
    for (int64_t e = 0; e < m; e++)
        fl[e] = -1e9f;
    rlab_free(pos);
    rlab_free(s->fo_off), rlab_free(s->fr_off), rlab_free(s->fo), rlab_free(s->fr);
    rlab_free(s->fo_last);
    s->fo_off = fo_off, s->fr_off = fr_off, s->fo = fo, s->fr = fr, s->fo_last = fl;
    return RLAB_OK;
}

static int setup_graph(sim *s, rlab_err *err)
{
    if (!s->world || !s->world->follow_off)
        return sim_rewire(s, SIM_REWIRE_HOMOPHILY, s->cfg.rewire_k, err);
    const rlab_world *w = s->world;
    int64_t m = 0;
    for (int32_t a = 0; a < s->n; a++)
        for (int64_t e = w->follow_off[a]; e < w->follow_off[a + 1]; e++)
            if (w->follow[e] < s->n)
                m++;
    int32_t *src = rlab_malloc((size_t)(m ? m : 1) * sizeof(int32_t));
    int32_t *dst = rlab_malloc((size_t)(m ? m : 1) * sizeof(int32_t));
    if (!src || !dst) {
        rlab_free(src), rlab_free(dst);
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    }
    m = 0;
    for (int32_t a = 0; a < s->n; a++)
        for (int64_t e = w->follow_off[a]; e < w->follow_off[a + 1]; e++)
            if (w->follow[e] < s->n) {
                src[m] = a;
                dst[m++] = w->follow[e];
            }
    int rc = set_graph(s, src, dst, m, err);
    rlab_free(src), rlab_free(dst);
    return rc;
}

typedef struct hist_row {
    int32_t user, item;
    int64_t ts;
    size_t row;
    float rating;
} hist_row;

static int hist_row_cmp(const void *pa, const void *pb)
{
    const hist_row *a = pa, *b = pb;
    if (a->user != b->user)
        return a->user < b->user ? -1 : 1;
    if (a->ts != b->ts)
        return a->ts < b->ts ? -1 : 1;
    return a->row < b->row ? -1 : a->row > b->row;
}

/* sim_profiles.seed_memory: every agent starts with its (kept) past in time order: the
 * query history, the watched ring, the genre counts, and watch memories of its last SIM_HIST
 * items. Ties in time are broken by row order, so the result is a function of the data. */
static int seed_history(sim *s, rlab_err *err)
{
    const rlab_dataset *ds = s->ds;
    size_t m = 0;
    for (size_t r = 0; r < ds->inter.n; r++)
        if (ds->inter.user[r] >= 0 && ds->inter.user[r] < s->n && ds->inter.item[r] >= 0 &&
            ds->inter.item[r] < s->n_items && (!s->keep || s->keep[r]))
            m++;
    hist_row *h = rlab_malloc((m ? m : 1) * sizeof *h);
    if (!h)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    int has_rating = (ds->inter.flags & RLAB_INTER_HAS_RATING) != 0;
    m = 0;
    for (size_t r = 0; r < ds->inter.n; r++)
        if (ds->inter.user[r] >= 0 && ds->inter.user[r] < s->n && ds->inter.item[r] >= 0 &&
            ds->inter.item[r] < s->n_items && (!s->keep || s->keep[r]))
            h[m++] = (hist_row){ds->inter.user[r], ds->inter.item[r], ds->inter.ts[r], r,
                                has_rating ? ds->inter.rating[r] : NAN};
    qsort(h, m, sizeof *h, hist_row_cmp);
    for (size_t b = 0, e; b < m; b = e) {
        int32_t a = h[b].user;
        for (e = b; e < m && h[e].user == a; e++)
            ;
        sim_agent *ag = &s->agents[a];
        ag->n_qhist = 0;
        float *gc = s->gcount + (size_t)a * (size_t)s->G;
        for (size_t k = b; k < e; k++) {
            qhist_push(ag, h[k].item);
            const float *g = s->item_genre + (size_t)h[k].item * (size_t)s->G;
            for (int32_t q = 0; q < s->G; q++)
                gc[q] += g[q];
            ag->n_watch++;
        }
        size_t first = e - b > SIM_HIST ? e - SIM_HIST : b;
        for (size_t k = first; k < e; k++) {
            ag->watched[ag->watched_pos] = h[k].item;
            ag->watched_pos = (ag->watched_pos + 1) % SIM_HIST;
            int liked = !isnan(h[k].rating) ? h[k].rating >= 4.0f
                                            : sim_affinity(s, a, h[k].item) >= 0.5f * s->amax[a];
            sim_observe(s, a, SIM_M_WATCH, h[k].item, -1, liked);
        }
    }
    rlab_free(h);
    return RLAB_OK;
}

int sim_new(const sim_config *cfg, const rlab_dataset *ds, const rlab_world *w, rlab_model *model,
            const sim_profiles *prof, sim **out, rlab_err *err)
{
    *out = NULL;
    int32_t U = rlab_vocab_size(&ds->users), I = rlab_vocab_size(&ds->items);
    if (U < 2 || I < 2)
        return rlab_errf(err, RLAB_EINVAL, "simulator: dataset '%s' has %d users and %d items",
                         ds->name, (int)U, (int)I);
    if (cfg->page_size < 1 || cfg->page_size > SIM_MAX_PAGE || cfg->max_steps < 1 ||
        cfg->max_steps > SIM_MAX_STEPS)
        return rlab_errf(err, RLAB_EINVAL, "simulator: page_size in 1..%d, max_steps in 1..%d",
                         SIM_MAX_PAGE, SIM_MAX_STEPS);
    if (w && (w->n_items != I || w->n_users != U))
        return rlab_errf(err, RLAB_EINVAL, "simulator: world and dataset '%s' differ in size",
                         ds->name);
    if (model && model->n_items != I)
        return rlab_errf(err, RLAB_EINVAL,
                         "simulator: model '%s' scores %d items, dataset '%s' has %d", model->name,
                         (int)model->n_items, ds->name, (int)I);
    int32_t n_ag = cfg->n_agents > 0 && cfg->n_agents < U ? cfg->n_agents : U;
    if ((int64_t)n_ag * I > SIM_MAX_SHOWN)
        return rlab_errf(err, RLAB_EINVAL,
                         "simulator: %d agents x %d items is too large (at most %lld agent-items: "
                         "ask for fewer agents)",
                         (int)n_ag, (int)I, (long long)SIM_MAX_SHOWN);
    sim *s = rlab_calloc(1, sizeof *s);
    if (!s)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    s->cfg = *cfg;
    s->ds = ds;
    s->world = w;
    s->n_items = I;
    s->n = n_ag;
    if (model && model->n_users > 0 && model->n_users < s->n) {
        rlab_errf(err, RLAB_EINVAL, "simulator: model '%s' knows %d users, %d agents asked",
                  model->name, (int)model->n_users, (int)s->n);
        rlab_free(s);
        return RLAB_EINVAL;
    }
    sim_set_model(s, model);
    s->played = -1;
    s->vtime = s->t0 = 8.0;                 /* 08:00 of day 0, as RecAgent */
    s->K = cfg->page_size * cfg->max_steps; /* the first page + max_steps - 1 NEXTs */
    s->buf_cap = 16384;
    s->buf = rlab_malloc(s->buf_cap);
    int rc = s->buf ? RLAB_OK : rlab_errf(err, RLAB_ENOMEM, "out of memory");
    s->keep = prof ? prof->keep : NULL;
    if (rc == RLAB_OK)
        rc = setup_items(s, err);
    if (rc == RLAB_OK)
        rc = setup_agents(s, prof, err);
    if (rc == RLAB_OK && prof && prof->no_social) {
        int32_t none = 0; /* an empty follow graph */
        rc = set_graph(s, &none, &none, 0, err);
    } else if (rc == RLAB_OK) {
        rc = setup_graph(s, err);
    }
    if (rc == RLAB_OK && prof && prof->seed_memory)
        rc = seed_history(s, err);
    s->keep = NULL;
    if (rc == RLAB_OK) {
        size_t n = (size_t)s->n;
        s->order = rlab_malloc(n * sizeof(int32_t));
        s->active = rlab_malloc(n * sizeof(int32_t));
        s->action = rlab_malloc(n);
        s->cand = rlab_malloc(n * (size_t)s->K * sizeof(int32_t));
        s->q = rlab_calloc(n, sizeof(rlab_query));
        s->qbuf = rlab_malloc(n * SIM_QHIST * sizeof(int32_t));
        s->mentions = rlab_calloc((size_t)I, sizeof(int32_t));
        s->cap_expo = (int64_t)n * (cfg->max_steps + 1);
        s->expo = rlab_malloc((size_t)s->cap_expo * (size_t)cfg->page_size * sizeof(int32_t));
        s->expo_agent = rlab_malloc((size_t)s->cap_expo * sizeof(int32_t));
        s->expo_gmass = rlab_calloc(n * (size_t)s->G, sizeof(float));
        s->watch_list = rlab_malloc(n * sizeof(int32_t));
        s->decs = rlab_calloc(n, sizeof(sim_dec));
        s->visit_pos = rlab_calloc(n, sizeof(int32_t));
        if (visits_alloc(s))
            rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
        s->nbr = rlab_malloc((size_t)I * SIM_NBR * sizeof(int32_t));
        s->nbr_n = rlab_malloc((size_t)I * sizeof(int16_t));
        if (s->nbr_n)
            for (int32_t i = 0; i < I; i++)
                s->nbr_n[i] = -1;
        /* scores are computed in chunks of at most 4M floats */
        size_t rows = (size_t)(4u << 20) / (size_t)I;
        if (rows < 1)
            rows = 1;
        if (rows > n)
            rows = n;
        s->scores = rlab_malloc(rows * (size_t)I * sizeof(float));
        s->threads = sim_threads_resolve(cfg);
        s->par_min = SIM_PAR_MIN;
        s->topk_bk = rlab_malloc((size_t)s->threads * (size_t)I);
        s->rowbuf = rlab_malloc((size_t)s->threads * (size_t)I * sizeof(float));
        if (rc == RLAB_OK && !s->rowbuf)
            rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
        if (rc == RLAB_OK && !s->topk_bk)
            rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
        if (rc == RLAB_OK &&
            (!s->order || !s->active || !s->action || !s->cand || !s->q || !s->mentions ||
             !s->expo || !s->expo_agent || !s->expo_gmass || !s->watch_list || !s->decs ||
             !s->visit_pos || !s->scores || !s->nbr || !s->nbr_n || !s->qbuf))
            rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
    }
    if (rc == RLAB_OK)
        rc = sim_shard_setup(s, err);
    if (rc) {
        sim_free(s);
        return rc;
    }
    s->last.satisfaction = NAN;
    *out = s;
    return RLAB_OK;
}

void sim_free(sim *s)
{
    if (!s)
        return;
    sim_store_detach(s);
    sim_ck_free(s);
    rlab_model_release(s->model);
    for (int32_t g = 0; s->genre_names && g < s->G; g++)
        rlab_free(s->genre_names[g]);
    rlab_free(s->genre_names);
    rlab_free(s->item_genre), rlab_free(s->item_topg), rlab_free(s->g_off), rlab_free(s->g_items);
    rlab_free(s->titles), rlab_free(s->title_store), rlab_free(s->item_vec);
    rlab_free(s->genre_vec), rlab_free(s->item_pop), rlab_free(s->Vt);
    rlab_free(s->attr_order), rlab_free(s->attr_map);
    rlab_free(s->nbr), rlab_free(s->nbr_n), rlab_free(s->qbuf);
    rlab_free(s->visits), rlab_free(s->visit_buf), rlab_free(s->vwho);
    for (int32_t a = 0; s->vdecs && a < s->n; a++)
        rlab_free(s->vdecs[a].text);
    rlab_free(s->vdecs);
    rlab_tfidf_clear(&s->tfidf);
    rlab_free(s->agents), rlab_free(s->taste), rlab_free(s->amax), rlab_free(s->taste_vec);
    rlab_free(s->gcount), rlab_free(s->shown), rlab_free(s->chance_aff), rlab_free(s->recall);
    rlab_free(s->fo_off), rlab_free(s->fr_off), rlab_free(s->fo), rlab_free(s->fr);
    rlab_free(s->fo_last);
    rlab_free(s->x_user), rlab_free(s->x_item), rlab_free(s->x_time);
    rlab_free(s->order), rlab_free(s->active), rlab_free(s->action), rlab_free(s->scores);
    rlab_free(s->topk_bk), rlab_free(s->rowbuf);
    rlab_free(s->cand), rlab_free(s->q), rlab_free(s->mentions), rlab_free(s->expo);
    rlab_free(s->expo_agent), rlab_free(s->expo_gmass);
    rlab_free(s->watch_list), rlab_free(s->visit_pos), rlab_free(s->buf);
    for (int32_t a = 0; s->decs && a < s->n; a++)
        rlab_free(s->decs[a].text);
    rlab_free(s->decs);
    sim_shard_free(s);
    rlab_free(s);
}

/* ---- the round ---------------------------------------------------------------------- */

int sim_x_append(sim *s, int32_t user, int32_t item, double t)
{
    if (s->n_x == s->cap_x) {
        int64_t cap = s->cap_x ? 2 * s->cap_x : 4096;
        int32_t *u = rlab_realloc(s->x_user, (size_t)cap * sizeof(int32_t));
        if (!u)
            return RLAB_ENOMEM;
        s->x_user = u;
        int32_t *it = rlab_realloc(s->x_item, (size_t)cap * sizeof(int32_t));
        if (!it)
            return RLAB_ENOMEM;
        s->x_item = it;
        double *tt = rlab_realloc(s->x_time, (size_t)cap * sizeof(double));
        if (!tt)
            return RLAB_ENOMEM;
        s->x_time = tt;
        s->cap_x = cap;
    }
    s->x_user[s->n_x] = user;
    s->x_item[s->n_x] = item;
    s->x_time[s->n_x++] = t;
    return RLAB_OK;
}

static int push_x(sim *s, int32_t a, int32_t item)
{
    return sim_x_append(s, s->agents[a].user, item, s->vtime);
}

/* The part of a watch whose order across agents matters: the satisfaction sums (floating
 * point) and the interaction log. */
void sim_watch_global(sim *s, int32_t a, int32_t item, double *sat, double *chance)
{
    if (s->world) {
        *sat += (double)sim_true_affinity(s, a, item);
        *chance += (double)s->chance_aff[a];
    }
    push_x(s, a, item);
}

/* Agent a watches item: history, busy, genre counts (a's own state), then the shared part
 * unless `defer` (the pipelined visits replay it in a fixed order, visits_replay). */
static void do_watch(sim *s, int32_t a, int32_t item, sim_stats *st, double *sat, double *chance,
                     int defer)
{
    sim_agent *ag = &s->agents[a];
    ag->watched[ag->watched_pos] = item; /* the title, not its characters (RecAgent bug) */
    ag->watched_pos = (ag->watched_pos + 1) % SIM_HIST;
    qhist_push(ag, item);
    ag->n_watch++;
    ag->busy_until = s->vtime + s->cfg.watch_h;
    ag->busy_kind = 1;
    sim_show(s, a, item);
    const float *g = s->item_genre + (size_t)item * (size_t)s->G;
    float *gc = s->gcount + (size_t)a * (size_t)s->G;
    for (int32_t k = 0; k < s->G; k++)
        gc[k] += g[k];
    st->watches++;
    if (!defer && sim_shard_buffering(s))
        sim_shard_watch(s, a, item); /* partitioned: in order on every rank at the round's end */
    else if (!defer)
        sim_watch_global(s, a, item, sat, chance);
}

/* Mean true affinity of a uniformly random item for agent a (the chance level). */
/* gmean[g]: the sum over items of their genre-g weight (computed once for all agents: per
 * agent it was O(items x genres), minutes with Beauty's 255 attribute genres). */
static double chance_affinity(const sim *s, int32_t a, const double *gmean)
{
    const float *t = s->world ? rlab_world_taste(s->world, s->agents[a].user, INT64_MAX)
                              : s->taste + (size_t)a * (size_t)s->G;
    double c = 0.0;
    for (int32_t g = 0; g < s->G; g++)
        c += (double)t[g] * gmean[g] / s->n_items;
    return c;
}

/* Text similarity of items i and j (the expression search_page ranks by). */
static inline float item_sim(const sim *s, int32_t i, int32_t j)
{
    const float *v = s->item_vec + (size_t)i * SIM_DIM;
    const float *w = s->item_vec + (size_t)j * SIM_DIM;
    float d = 0.0f;
    for (int q = 0; q < SIM_DIM; q++)
        d += v[q] * w[q];
    return d;
}

/* The SIM_NBR nearest items of `item` by item_sim, best first, ties to the lower index
 * (computed on the first search for it). nbr_n[item] = -1 until then; the list is complete
 * when it holds fewer than SIM_NBR items. */
static pthread_mutex_t nbr_lock = PTHREAD_MUTEX_INITIALIZER;

static const int32_t *item_neighbours(sim *s, int32_t item, int *n)
{
    int32_t *nb = s->nbr + (size_t)item * SIM_NBR;
    /* the visits may run on threads (run_visits_par): the first search for an item fills its
     * list under a lock, and the count is published after the list (acquire / release) */
    int16_t have = __atomic_load_n(&s->nbr_n[item], __ATOMIC_ACQUIRE);
    if (have >= 0) {
        *n = have;
        return nb;
    }
    pthread_mutex_lock(&nbr_lock);
    if (s->nbr_n[item] < 0) {
        float best[SIM_NBR];
        int m = 0;
        for (int32_t i = 0; i < s->n_items; i++) {
            if (i == item)
                continue;
            float d = item_sim(s, item, i);
            if (!(d > -2.0f)) /* never selected by the scan either */
                continue;
            if (m == SIM_NBR && !(d > best[SIM_NBR - 1]))
                continue;
            int k = m < SIM_NBR ? m++ : SIM_NBR - 1;
            while (k > 0 && d > best[k - 1]) {
                best[k] = best[k - 1];
                nb[k] = nb[k - 1];
                k--;
            }
            best[k] = d;
            nb[k] = i;
        }
        /* m == SIM_NBR means there may be more: mark by storing SIM_NBR (incomplete) */
        __atomic_store_n(&s->nbr_n[item], (int16_t)m, __ATOMIC_RELEASE);
    }
    *n = s->nbr_n[item];
    pthread_mutex_unlock(&nbr_lock);
    return nb;
}

static void search_page(sim *s, int32_t a, int32_t item, int32_t *page, int npage)
{
    /* the searched title, then its nearest unseen items by text vector */
    page[0] = item;
    for (int k = 1; k < npage; k++)
        page[k] = -1;
    if (npage <= 1)
        return;
    const uint8_t *sh = sim_shown_row(s, a);
    int nn;
    const int32_t *nb = item_neighbours(s, item, &nn);
    int k = 1;
    for (int q = 0; q < nn && k < npage; q++)
        if (!sim_shown_bit(sh, nb[q]))
            page[k++] = nb[q];
    if (k == npage || nn < SIM_NBR)
        return; /* the page is full, or the list held every candidate */
    /* the cached neighbours are mostly seen: scan the catalogue */
    float best[SIM_MAX_PAGE];
    for (k = 1; k < npage; k++)
        page[k] = -1, best[k] = -2.0f;
    for (int32_t i = 0; i < s->n_items; i++) {
        if (i == item || sim_shown_bit(sh, i))
            continue;
        float d = item_sim(s, item, i);
        if (d > best[npage - 1]) {
            k = npage - 1;
            while (k > 1 && d > best[k - 1]) {
                best[k] = best[k - 1];
                page[k] = page[k - 1];
                k--;
            }
            best[k] = d;
            page[k] = i;
        }
    }
}

/* The k best unmasked items of one score row, best first, ties to the lower index, padded
 * with -1 (rlab_topk_row's contract); NaN scores are never selected. One pass keeping the
 * k best so far in a binary heap whose root is the worst of them (lowest score, then
 * highest index): after the first k items almost every item fails the one comparison with
 * the root; the heap is sorted at the end. */
static inline int topk_worse(float va, int32_t ia, float vb, int32_t ib)
{
    return va < vb || (!(va > vb) && ia > ib);
}

static void topk_small(const float *sc, int32_t n, const uint8_t *mask, int k, int32_t *out)
{
    float hv[SIM_MAX_PAGE * SIM_MAX_STEPS] = {0}; /* zeroed: GCC cannot see m == k > 0 */
    int32_t hi[SIM_MAX_PAGE * SIM_MAX_STEPS];
    int m = 0;
    if (k <= 0)
        return;
    int32_t i = 0;
    for (; i < n && m < k; i++) {
        float v = sc[i];
        if (sim_shown_bit(mask, i) || isnan(v))
            continue;
        /* sift up */
        int c = m++;
        while (c > 0) {
            int p = (c - 1) / 2;
            if (!topk_worse(v, i, hv[p], hi[p]))
                break;
            hv[c] = hv[p], hi[c] = hi[p];
            c = p;
        }
        hv[c] = v, hi[c] = i;
    }
    if (m == k) {
        float root = hv[0];
        int32_t end = i;
        for (; i < n; i++) {
            if (i == end && n - i >= 32) {
                /* 32 scores at a time: one test whether any beats the root (a fixed-length
                 * loop the compiler vectorises), else the whole block is skipped; the
                 * item-by-item scan below is unchanged */
                end = i + 32;
                int any = 0;
                for (int t = 0; t < 32; t++)
                    any |= sc[i + t] > root;
                if (!any) {
                    i = end - 1;
                    continue;
                }
            }
            float v = sc[i];
            /* the score first (it fails for almost every item, and for NaN); a later index
             * with an equal score never beats the root */
            if (!(v > root) || sim_shown_bit(mask, i))
                continue;
            /* replace the root, sift down */
            int p = 0;
            for (;;) {
                int c = 2 * p + 1;
                if (c >= k)
                    break;
                if (c + 1 < k && topk_worse(hv[c + 1], hi[c + 1], hv[c], hi[c]))
                    c++;
                if (!topk_worse(hv[c], hi[c], v, i))
                    break;
                hv[p] = hv[c], hi[p] = hi[c];
                p = c;
            }
            hv[p] = v, hi[p] = i;
            root = hv[0];
        }
    }
    /* pop the worst to the back: out ends up best first */
    for (int e = m - 1; e >= 0; e--) {
        out[e] = hi[0];
        float lv = hv[e];
        int32_t li = hi[e];
        int p = 0;
        for (;;) {
            int c = 2 * p + 1;
            if (c >= e)
                break;
            if (c + 1 < e && topk_worse(hv[c + 1], hi[c + 1], hv[c], hi[c]))
                c++;
            if (!topk_worse(hv[c], hi[c], lv, li))
                break;
            hv[p] = hv[c], hi[p] = hi[c];
            p = c;
        }
        hv[p] = lv, hi[p] = li;
    }
    for (int j = m; j < k; j++)
        out[j] = -1;
}

/* The same list as topk_small (the k best unmasked, non-NaN scores, best first, ties to the
 * lower index, -1 padded), found by bucketing instead of a heap: the scores' range is cut
 * into SIM_TOPK_B equal buckets (the bucket of a score is monotone in the score, so every
 * score in a higher bucket is larger), the bucket where the k best end is found from the
 * counts, and only the scores from that bucket up (about k + n / SIM_TOPK_B) are sorted. A
 * heap over n scores pays a sift for most of the first few hundred (random scores keep
 * beating its root); this pays three branch-free passes. Falls back to topk_small when the
 * range is degenerate (fewer than k scores, infinities, all equal) or the cut bucket holds
 * too many (clumped scores). unit: the scores lie in [0, 1) (no pass for the range). */
enum {
    SIM_TOPK_B = 255,
    /* bucket + 1 fits a byte */ SIM_TOPK_CAND = 4 * SIM_MAX_PAGE * SIM_MAX_STEPS
};

static void topk_cut(const float *sc, int32_t n, const uint8_t *mask, int k, int32_t *out,
                     uint8_t *bk, float mn, float mx);

/* The unmasked items of a padded bitset row among the first n. */
static int32_t unmasked_count(const uint8_t *mask, int32_t n)
{
    int32_t set = 0, w = 0;
    for (; w < n / 64; w++) {
        uint64_t m;
        memcpy(&m, mask + (size_t)w * 8, 8);
        set += __builtin_popcountll(m);
    }
    for (int32_t i = w * 64; i < n; i++) /* the last word's items (not its padding) */
        set += sim_shown_bit(mask, i);
    return n - set;
}

/* topk_bucket's list for scores in [0, 1) that are (as the random recommender's) uniform
 * draws, by a cut at a threshold: with m unmasked scores, about want = k + 4 sqrt(k) + 8 of
 * them lie at or above tau = 1 - want / m; only those are gathered, put in order by a
 * counting sort on 64 equal buckets of [tau, 1) and an insertion sort of the (nearly sorted)
 * result, and the first k taken. Exact whatever the scores: every score under tau is below
 * every gathered one, so when k or more unmasked scores were gathered the k best are among
 * them; otherwise (or when more than the buffer's room were) returns 0 and the caller takes
 * the general path. A score and its item are one key: the bits of a float >= 0 order as the
 * float does, and the low word ~i puts ties in index order. */
enum { SIM_TOPK_GATHER = 256, SIM_TOPK_UB = 64 };

static int topk_unit_cut(const float *sc, int32_t n, const uint8_t *mask, int k, int32_t *out)
{
    int32_t m = unmasked_count(mask, n);
    double want = (double)k + 4.0 * sqrt((double)k) + 8.0;
    if (m <= k || want >= 0.5 * (double)m)
        return 0;
    float tau = (float)(1.0 - want / (double)m);
    uint64_t g[SIM_TOPK_GATHER], o[SIM_TOPK_GATHER];
    uint8_t gb[SIM_TOPK_GATHER];
    int32_t cnt[SIM_TOPK_UB] = {0};
    float bscale = (float)SIM_TOPK_UB / (1.0f - tau);
    int c = 0;
    for (int32_t w = 0; w < (n + 63) / 64; w++) {
        /* bit t: item w * 64 + t is at or above tau (and is one of the n) */
        uint64_t bits = 0;
        int32_t i0 = w * 64, e = n - i0 < 64 ? n - i0 : 64, t = 0;
#if defined(__SSE2__)
        __m128 vt = _mm_set1_ps(tau);
        for (; t + 4 <= e; t += 4)
            bits |= (uint64_t)_mm_movemask_ps(_mm_cmpge_ps(_mm_loadu_ps(sc + i0 + t), vt)) << t;
#endif
        for (; t < e; t++)
            bits |= (uint64_t)(sc[i0 + t] >= tau) << t;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        uint64_t mw; /* the shown bits of these items (bit i % 8 of byte i / 8 is bit t) */
        memcpy(&mw, mask + (size_t)w * 8, 8);
        bits &= ~mw;
#endif
        if (c + __builtin_popcountll(bits) > SIM_TOPK_GATHER)
            return 0; /* far more at or above tau than uniform draws give */
        for (; bits; bits &= bits - 1u) {
            int32_t i = i0 + __builtin_ctzll(bits);
#if !(defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__)
            if (sim_shown_bit(mask, i))
                continue;
#endif
            uint32_t vb;
            memcpy(&vb, &sc[i], sizeof vb);
            float x = (sc[i] - tau) * bscale; /* clamped as a float: +inf converts to no int */
            x = x < (float)(SIM_TOPK_UB - 1) ? x : (float)(SIM_TOPK_UB - 1);
            const int b = (int)x;
            gb[c] = (uint8_t)(SIM_TOPK_UB - 1 - b); /* 0 = the best bucket */
            cnt[gb[c]]++;
            g[c++] = (uint64_t)vb << 32 | (uint32_t) ~(uint32_t)i;
        }
    }
    if (c < k)
        return 0;
    int32_t at = 0;
    for (int b = 0; b < SIM_TOPK_UB; b++) {
        int32_t x = cnt[b];
        cnt[b] = at;
        at += x;
    }
    for (int q = 0; q < c; q++)
        o[cnt[gb[q]]++] = g[q];
    for (int q = 1; q < c; q++) { /* in order but within buckets */
        uint64_t x = o[q];
        int p = q;
        for (; p > 0 && o[p - 1] < x; p--)
            o[p] = o[p - 1];
        o[p] = x;
    }
    for (int j = 0; j < k; j++)
        out[j] = (int32_t) ~(uint32_t)o[j];
    return 1;
}

static void topk_bucket(const float *sc, int32_t n, const uint8_t *mask, int k, int32_t *out,
                        uint8_t *bk, int unit)
{
    if (k <= 0)
        return;
    if (unit) { /* the scores are known to lie in [0, 1) (the random recommender's) */
        if (topk_unit_cut(sc, n, mask, k, out))
            return;
        topk_cut(sc, n, mask, k, out, bk, 0.0f, -1.0f);
        return;
    }
    /* the range of all non-NaN scores (masked ones too: a wider range keeps the buckets
     * monotone), 8 lanes so the compiler vectorises it (x < m ? x : m is minps) */
    float mn8[8], mx8[8];
    for (int l = 0; l < 8; l++)
        mn8[l] = INFINITY, mx8[l] = -INFINITY;
    int32_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) {
            float v = sc[i + l];
            mn8[l] = v < mn8[l] ? v : mn8[l];
            mx8[l] = v > mx8[l] ? v : mx8[l];
        }
    for (; i < n; i++) {
        mn8[0] = sc[i] < mn8[0] ? sc[i] : mn8[0];
        mx8[0] = sc[i] > mx8[0] ? sc[i] : mx8[0];
    }
    float mn = mn8[0], mx = mx8[0];
    for (int l = 1; l < 8; l++) {
        mn = mn8[l] < mn ? mn8[l] : mn;
        mx = mx8[l] > mx ? mx8[l] : mx;
    }
    topk_cut(sc, n, mask, k, out, bk, mn, mx);
}

/* topk_bucket's work given mn <= every score <= mx (NaN aside); mx < mn: the scores lie in
 * [0, 1) and are not NaN (the buckets without a clamp, in a loop the compiler vectorises). */
static void topk_cut(const float *sc, int32_t n, const uint8_t *mask, int k, int32_t *out,
                     uint8_t *bk, float mn, float mx)
{
    int32_t i;
    if (mx < mn) {
        for (i = 0; i < n; i++) /* [0, 1) * 255 truncates to 0..254: buckets 1..255 */
            bk[i] = (uint8_t)(1 + (int)(sc[i] * (float)SIM_TOPK_B));
    } else {
        float range = mx - mn;
        if (!(range > 0.0f) || !isfinite(range)) {
            topk_small(sc, n, mask, k, out);
            return;
        }
        /* bucket 1..B of each score (0 = NaN) */
        float scale = (float)SIM_TOPK_B / range, top = (float)(SIM_TOPK_B - 1);
        for (i = 0; i < n; i++) {
            float v = sc[i];
            float x = v >= mn ? (v - mn) * scale : -1.0f;
            x = x < top ? x : top;
            bk[i] = (uint8_t)((int)x + 1);
        }
    }
    /* then 0 for the masked ones: the set bits only, a word of 64 items at a time (the row
     * is padded to whole words; bit i % 8 of byte i / 8 is bit i % 64 of a little-endian
     * word) */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    for (int32_t w = 0; w < (n + 63) / 64; w++) {
        uint64_t m;
        memcpy(&m, mask + (size_t)w * 8, 8);
        for (; m; m &= m - 1u) {
            int32_t it = w * 64 + __builtin_ctzll(m);
            if (it < n)
                bk[it] = 0;
        }
    }
#else
    for (int32_t w = 0; w < (n + 7) / 8; w++)
        for (unsigned m = mask[w]; m; m &= m - 1u) {
            int32_t it = w * 8 + __builtin_ctz(m);
            if (it < n)
                bk[it] = 0;
        }
#endif
    int32_t hist[SIM_TOPK_B + 1];
    memset(hist, 0, sizeof hist);
    for (i = 0; i < n; i++)
        hist[bk[i]]++;
    if (n - hist[0] <= k) {
        topk_small(sc, n, mask, k, out);
        return;
    }
    int t = SIM_TOPK_B;
    int32_t c = hist[t];
    while (c < k && t > 1)
        c += hist[--t];
    if (c > SIM_TOPK_CAND) {
        topk_small(sc, n, mask, k, out);
        return;
    }
    /* the candidates, insertion-sorted best first (index order is scan order, so ties
     * stay index-ascending) */
    float cv[SIM_TOPK_CAND];
    int32_t ci[SIM_TOPK_CAND];
    int m = 0;
    for (i = 0; i < n; i++) {
        if (bk[i] < t)
            continue;
        float v = sc[i];
        int p = m++;
        while (p > 0 && cv[p - 1] < v) {
            cv[p] = cv[p - 1], ci[p] = ci[p - 1];
            p--;
        }
        cv[p] = v, ci[p] = i;
    }
    for (int j = 0; j < k; j++)
        out[j] = ci[j];
}

/* Visitor j's candidates from its score row (the injected items first, then the top-k of
 * the rest); bk: [n_items] scratch. */
static void visitor_cands(sim *s, int32_t a, const float *row, uint8_t *bk, int unit)
{
    int32_t I = s->n_items, K = s->K;
    int32_t top[SIM_MAX_PAGE * SIM_MAX_STEPS];
    int32_t *cd = s->cand + (size_t)a * (size_t)K;
    int ninj = 0;
    if (s->n_inject && s->round + 1 <= s->inject_until)
        for (int k = 0; k < s->n_inject && ninj < K; k++)
            cd[ninj++] = s->inject[k];
    topk_bucket(row, I, sim_shown_row(s, a), K - ninj, top, bk, unit);
    for (int k = 0; k < K - ninj; k++) {
        int dup = 0;
        for (int q = 0; q < ninj; q++)
            dup |= cd[q] == top[k];
        cd[ninj + k] = dup ? -1 : top[k];
    }
    s->visit_pos[a] = 0;
}

void sim_topk(const float *sc, int32_t n, const uint8_t *mask, int k, int32_t *out, uint8_t *bk,
              int how)
{
    if (how == 0)
        topk_small(sc, n, mask, k, out);
    else
        topk_bucket(sc, n, mask, k, out, bk, how == 2);
}

/* score_visitors' work over threads: visitors [lo, hi) of vis, their rows drawn here (the
 * random recommender) or scores + (j - c0) rows (a model's chunk starting at c0). */
typedef struct cands_job {
    const int32_t *vis;
    const float *scores;
    int32_t c0;
} cands_job;

static void cands_part(sim *s, void *ctx, int32_t lo, int32_t hi, int tid)
{
    const cands_job *jb = ctx;
    size_t I = (size_t)s->n_items;
    uint8_t *bk = s->topk_bk + (size_t)tid * I;
    for (int32_t j = lo; j < hi; j++) {
        int32_t a = jb->vis[jb->c0 + j];
        if (jb->scores) {
            visitor_cands(s, a, jb->scores + (size_t)j * I, bk, 0);
        } else {
            /* the random recommender: each visitor's row drawn and cut at once, in cache */
            float *row = s->rowbuf + (size_t)tid * I;
            rlab_rng r;
            sim_rng(s, SIM_PH_RANDOMREC, s->round + 1, a, 0, &r);
            rlab_rng_fill_uniform(&r, row, I);
            visitor_cands(s, a, row, bk, 1);
        }
    }
}

static int score_visitors(sim *s, const int32_t *vis, int32_t nv, rlab_err *err)
{
    int32_t I = s->n_items, K = s->K;
    if (!s->model) {
        cands_job jb = {.vis = vis};
        sim_par_for(s, nv, s->par_min, cands_part, &jb);
    }
    size_t rows = (size_t)(4u << 20) / (size_t)I;
    if (rows < 1)
        rows = 1;
    for (int32_t c0 = 0; s->model && c0 < nv; c0 += (int32_t)rows) {
        int32_t nc = nv - c0 < (int32_t)rows ? nv - c0 : (int32_t)rows;
        for (int32_t j = 0; j < nc; j++) {
            const sim_agent *ag = &s->agents[vis[c0 + j]];
            int32_t nh = 0;
            const int32_t *h = qhist_linear(ag, s->qbuf + (size_t)j * SIM_QHIST, &nh);
            s->q[j] = (rlab_query){.user = ag->user, .hist = h, .n_hist = nh};
        }
        int rc = rlab_model_score_all(s->model, s->q, nc, s->scores, err);
        if (rc)
            return rc;
        cands_job jb = {.vis = vis, .scores = s->scores, .c0 = c0};
        sim_par_for(s, nc, s->par_min, cands_part, &jb);
    }
    /* the diversity intervention (RecAgent's rec_random_k): the last swap_k items of the
     * first pages of symmetric visitors (j and nv-1-j in visiting order) are exchanged, so
     * each agent sees k items chosen for someone else; an item the receiver was shown
     * already, or has on its page, stays where it was */
    int k = s->cfg.swap_k < s->cfg.page_size ? s->cfg.swap_k : s->cfg.page_size;
    for (int32_t j = 0; k > 0 && j < nv / 2; j++) {
        int32_t a = vis[j], b = vis[nv - 1 - j];
        int32_t *ca = s->cand + (size_t)a * (size_t)K, *cb = s->cand + (size_t)b * (size_t)K;
        for (int q = s->cfg.page_size - k; q < s->cfg.page_size && q < K; q++) {
            int32_t x = ca[q], y = cb[q];
            if (x < 0 || y < 0 || sim_shown(s, a, y) || sim_shown(s, b, x))
                continue;
            int dup = 0;
            for (int t = 0; t < K; t++)
                dup |= ca[t] == y || cb[t] == x;
            if (!dup) {
                ca[q] = y, cb[q] = x;
                s->acc_swapped += 2; /* two agents each see one item chosen for the other */
            }
        }
    }
    return RLAB_OK;
}

/* Next page of candidates for a (skipping -1); returns its size. */
static int next_page(sim *s, int32_t a, int32_t *page)
{
    int32_t *cd = s->cand + (size_t)a * (size_t)s->K;
    int np = 0;
    while (np < s->cfg.page_size && s->visit_pos[a] < s->K) {
        int32_t it = cd[s->visit_pos[a]++];
        if (it >= 0)
            page[np++] = it;
    }
    return np;
}

int sim_first_pages(sim *s, const int32_t *agents, int32_t n, int32_t *pages, int *np,
                    rlab_err *err)
{
    int P = s->cfg.page_size;
    int rc = score_visitors(s, agents, n, err);
    for (int32_t j = 0; rc == RLAB_OK && j < n; j++)
        np[j] = next_page(s, agents[j], pages + (size_t)j * (size_t)P);
    return rc;
}

typedef struct visit_state {
    int32_t page[SIM_MAX_PAGE];
    int np;
    int from_search, searched, done, watched_rank;
    int32_t watched;
    int step, watched_step; /* pipelined: the next step to decide; the step of the watch */
    int32_t page_pos;       /* a NEXT page: where next_page began in the candidates */
    jw out;                 /* the visit event's payload, in s->visit_buf */
} visit_state;

/* Pipelined or threaded visits: the NEXT page of visit j at `step`, replayed in (step, j)
 * order, the order the step-by-step loop records them in. The page is the first np
 * candidates (skipping -1) from candidate pos of the visitor's list, which does not change
 * during the visits: the replay takes them from there again (16 bytes a record). */
typedef struct expo_rec {
    int32_t step, j, pos, np;
} expo_rec;

typedef struct expo_log {
    expo_rec *r;
    int64_t n, cap;
    int oom;
} expo_log;

/* The round's visit scratch, sized once: a visit payload holds its header, max_steps steps
 * of at most page_size items (11 characters each) and ~110 characters of fields, and the
 * end. */
static int visits_alloc(sim *s)
{
    size_t n = (size_t)s->n;
    s->visit_cap = 128 + (size_t)s->cfg.max_steps * (12 * (size_t)s->cfg.page_size + 128);
    s->visits = rlab_malloc(n * sizeof(visit_state));
    s->visit_buf = rlab_malloc(n * s->visit_cap);
    s->vdecs = rlab_calloc(n, sizeof(sim_dec));
    s->vwho = rlab_malloc(n * sizeof(int32_t));
    return s->visits && s->visit_buf && s->vdecs && s->vwho ? RLAB_OK : RLAB_ENOMEM;
}

/* first: the visit's first page (the per-agent entropy counts only those: a fixed page_size
 * items per visit, so that browsing longer does not read as a wider exposure). */
static void record_exposure(sim *s, int32_t a, int first, const visit_state *v, sim_stats *st)
{
    if (v->from_search || v->np == 0 || s->n_expo >= s->cap_expo)
        return;
    if (sim_shard_buffering(s))
        sim_shard_expo(s, s->n_expo, a, first ? 0 : v->step + 1);
    s->expo_agent[s->n_expo] = first ? a : -1;
    int32_t *row = s->expo + (size_t)s->n_expo * (size_t)s->cfg.page_size;
    for (int k = 0; k < s->cfg.page_size; k++)
        row[k] = k < v->np ? v->page[k] : -1;
    s->n_expo++;
    st->impressions += v->np;
}

/* record_exposure of a later page (first = 0), now or, with a log, at the replay. */
static void log_exposure(sim *s, int32_t a, int32_t j, const visit_state *v, sim_stats *st,
                         expo_log *lg)
{
    if (!lg) {
        record_exposure(s, a, 0, v, st);
        return;
    }
    if (v->from_search || v->np == 0)
        return;
    if (lg->n == lg->cap) {
        int64_t cap = lg->cap ? 2 * lg->cap : 256;
        expo_rec *r = rlab_realloc(lg->r, (size_t)cap * sizeof *r);
        if (!r) {
            lg->oom = 1;
            return;
        }
        lg->r = r;
        lg->cap = cap;
    }
    expo_rec *e = &lg->r[lg->n++];
    e->step = v->step;
    e->j = j;
    e->pos = v->page_pos;
    e->np = v->np;
}

/* The offline feeling line (sim_policy_reply's FEEL text after its tag), truncated as that
 * reply is (400-byte line). */
static void offline_feeling(const sim *s, const sim_dec *f, char *out, size_t n)
{
    jw w = {out, 0, n};
    const char *t = sim_item_title(s, f->item), *g = sim_genre_name(s, s->item_topg[f->item]);
    size_t room = 400 - 1 - (sizeof "[FEELING]:: " - 1); /* what snprintf would keep */
    char tmp[400];
    jw l = {tmp, 0, room + 1};
    if (f->liked) {
        jw_lit(&l, "I really enjoyed <");
        jw_cstr(&l, t);
        jw_lit(&l, ">; ");
        jw_cstr(&l, g);
        jw_lit(&l, " is just my thing.");
    } else {
        jw_lit(&l, "<");
        jw_cstr(&l, t);
        jw_lit(&l, "> was not for me; too much ");
        jw_cstr(&l, g);
        jw_lit(&l, " for my taste.");
    }
    jw_raw(&w, tmp, l.len);
}

/* Start the visits of the round: score the visitors, first pages, event headers. */
static int visits_begin(sim *s, const int32_t *vis, int32_t nv, sim_stats *st, rlab_err *err)
{
    int rc = score_visitors(s, vis, nv, err);
    if (rc)
        return rc;
    visit_state *vs = s->visits;
    for (int32_t j = 0; j < nv; j++) {
        visit_state *v = &vs[j];
        int32_t a = vis[j];
        v->from_search = v->searched = v->done = 0;
        v->watched = -1;
        v->step = 0;
        v->watched_step = -1;
        v->out = (jw){s->visit_buf + (size_t)j * s->visit_cap, 0, s->visit_cap};
        v->np = next_page(s, a, v->page);
        jw_lit(&v->out, "{\"action\":\"recommender\",\"by\":\"");
        jw_cstr(&v->out, by_name(s->action[a] >> 4));
        jw_lit(&v->out, "\",\"steps\":[");
        record_exposure(s, a, 1, v, st);
        if (v->np == 0)
            v->done = 1;
        st->visits++;
    }
    return RLAB_OK;
}

/* The page decision of visit j (agent a) for its current step. */
static sim_dec page_dec(const visit_state *v, int32_t a)
{
    return (sim_dec){.agent = a,
                     .type = SIM_D_PAGE,
                     .step = v->step,
                     .page = v->page,
                     .npage = v->np,
                     .searched = v->searched};
}

/* Apply visit j's page decision d (agent a): the step's event, the shown marks, and a watch,
 * search, next page or leave; then the visit moves to its next step. With lg (pipelined
 * visits, applied as replies arrive) the effects shared between agents wait for
 * visits_replay; without, they happen now (step by step, in visiting order). */
static void visit_apply(sim *s, int32_t j, int32_t a, const sim_dec *d, sim_stats *st, double *sat,
                        double *chance, expo_log *lg)
{
    visit_state *v = &s->visits[j];
    jw *o = &v->out;
    if (v->step > 0)
        jw_lit(o, ",");
    jw_lit(o, "{\"page\":[");
    for (int q = 0; q < v->np; q++) {
        if (q > 0)
            jw_lit(o, ",");
        jw_int(o, v->page[q]);
    }
    jw_lit(o, "],\"src\":\"");
    jw_cstr(o, v->from_search ? "search" : "rec");
    jw_lit(o, "\",\"by\":\"");
    jw_cstr(o, by_name(d->by));
    jw_lit(o, "\",");
    /* items on a recommended page count as shown from now on */
    if (!v->from_search)
        for (int q = 0; q < v->np; q++)
            sim_show(s, a, v->page[q]);
    int c = d->choice;
    if (c >= 0 && c < v->np) {
        int32_t it = v->page[c];
        jw_lit(o, "\"do\":\"buy\",\"k\":");
        jw_int(o, c + 1);
        jw_lit(o, ",\"item\":");
        jw_int(o, it);
        jw_lit(o, "}");
        v->watched = it;
        v->watched_rank = c;
        v->watched_step = v->step;
        if (v->from_search)
            st->search_watches++;
        else
            st->rec_watches++;
        sim_shard_step(s, v->step);
        do_watch(s, a, it, st, sat, chance, lg != NULL);
        v->done = 1;
    } else if (c == SIM_P_SEARCH && d->target >= 0) {
        jw_lit(o, "\"do\":\"search\",\"item\":");
        jw_int(o, d->target);
        jw_lit(o, "}");
        st->searches++;
        v->searched = 1;
        v->from_search = 1;
        v->np = s->cfg.page_size;
        search_page(s, a, d->target, v->page, v->np);
        while (v->np > 0 && v->page[v->np - 1] < 0)
            v->np--;
    } else if (c == SIM_P_NEXT) {
        jw_lit(o, "\"do\":\"next\"}");
        v->from_search = 0;
        v->page_pos = s->visit_pos[a];
        v->np = next_page(s, a, v->page);
        log_exposure(s, a, j, v, st, lg);
        if (v->np == 0)
            v->done = 1;
    } else {
        jw_lit(o, "\"do\":\"leave\"}");
        v->done = 1;
    }
    v->step++;
    if (v->step >= s->cfg.max_steps)
        v->done = 1;
}

static int expo_cmp(const void *pa, const void *pb)
{
    const expo_rec *a = pa, *b = pb;
    if (a->step != b->step)
        return a->step < b->step ? -1 : 1;
    return a->j < b->j ? -1 : a->j > b->j;
}

/* The shared effects of pipelined visits, in the order the step-by-step loop has them:
 * step by step, each step in visiting order. by_j: the log is in visiting order already
 * (run_visits_par merges its threads' logs so), and needs only a stable pass by step. */
static int visits_replay(sim *s, const int32_t *vis, int32_t nv, sim_stats *st, double *sat,
                         double *chance, expo_log *lg, int by_j, rlab_err *err)
{
    if (lg->oom)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    int S = s->cfg.max_steps;
    /* the watchers of each step, in visiting order (one pass over the visits) */
    int32_t *wj = rlab_malloc(((size_t)nv + 1) * sizeof *wj);
    int64_t at[SIM_MAX_STEPS + 1] = {0};
    expo_rec *sorted = NULL;
    if (lg->n > 1 && by_j) {
        sorted = rlab_malloc((size_t)lg->n * sizeof *sorted);
        if (!sorted) {
            rlab_free(wj);
            return rlab_errf(err, RLAB_ENOMEM, "out of memory");
        }
        int64_t cnt[SIM_MAX_STEPS + 1] = {0}, pos = 0;
        for (int64_t e = 0; e < lg->n; e++)
            cnt[lg->r[e].step]++;
        for (int q = 0; q < SIM_MAX_STEPS + 1; q++) {
            int64_t c = cnt[q];
            cnt[q] = pos;
            pos += c;
        }
        for (int64_t e = 0; e < lg->n; e++)
            sorted[cnt[lg->r[e].step]++] = lg->r[e];
        rlab_free(lg->r);
        lg->r = sorted;
        lg->cap = lg->n;
    } else if (lg->n > 1) {
        qsort(lg->r, (size_t)lg->n, sizeof *lg->r, expo_cmp);
    }
    if (!wj)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    for (int32_t j = 0; j < nv; j++) {
        int w = s->visits[j].watched_step;
        if (w >= 0 && w < S)
            at[w + 1]++;
    }
    for (int q = 1; q <= S; q++)
        at[q] += at[q - 1];
    int64_t fill[SIM_MAX_STEPS];
    memcpy(fill, at, sizeof fill);
    for (int32_t j = 0; j < nv; j++) {
        int w = s->visits[j].watched_step;
        if (w >= 0 && w < S)
            wj[fill[w]++] = j;
    }
    int64_t e = 0;
    for (int step = 0; step < S; step++) {
        for (int64_t q = at[step]; q < at[step + 1]; q++)
            sim_watch_global(s, vis[wj[q]], s->visits[wj[q]].watched, sat, chance);
        for (; e < lg->n && lg->r[e].step == step; e++) {
            int32_t a = vis[lg->r[e].j];
            const int32_t *cd = s->cand + (size_t)a * (size_t)s->K;
            visit_state v = {.np = 0};
            for (int32_t p = lg->r[e].pos; v.np < lg->r[e].np && p < s->K; p++)
                if (cd[p] >= 0)
                    v.page[v.np++] = cd[p];
            record_exposure(s, a, 0, &v, st);
        }
    }
    rlab_free(wj);
    return RLAB_OK;
}

/* Events on their way to the store: sim_emit at once (sink NULL), or appended to a sink (a
 * thread's buffer of the parallel visits, or the round writer's queue), emitted in order
 * afterwards (evsink_emit). A record is the agent (int32), then the kind and the payload,
 * each NUL-terminated. */
typedef struct evsink {
    char *p;
    size_t len, cap;
    int oom;
} evsink;

static void ev_out(sim *s, evsink *k, int32_t agent, const char *kind, const char *payload,
                   size_t n)
{
    if (!k) {
        sim_emit(s, agent, kind, payload);
        return;
    }
    size_t kl = strlen(kind) + 1;
    size_t need = k->len + sizeof agent + kl + n + 1;
    if (need > k->cap) {
        size_t c = k->cap ? 2 * k->cap : 65536;
        while (c < need)
            c *= 2;
        char *q = rlab_realloc(k->p, c);
        if (!q) {
            k->oom = 1;
            return;
        }
        k->p = q, k->cap = c;
    }
    memcpy(k->p + k->len, &agent, sizeof agent);
    memcpy(k->p + k->len + sizeof agent, kind, kl);
    memcpy(k->p + k->len + sizeof agent + kl, payload, n);
    k->p[need - 1] = '\0';
    k->len = need;
}

/* The events of a sink into the store, in the order they were appended; empties it. */
static void evsink_emit(sim *s, evsink *k)
{
    for (size_t at = 0; at < k->len;) {
        int32_t agent;
        memcpy(&agent, k->p + at, sizeof agent);
        const char *kind = k->p + at + sizeof agent;
        const char *pl = kind + strlen(kind) + 1;
        emit_db(s, agent, kind, pl);
        at = (size_t)(pl - k->p) + strlen(pl) + 1;
    }
    k->len = 0;
}

/* The round's writer (offline rounds of one process with threads): a thread that owns the
 * store from wr_open to wr_close and writes the round's events in order from a queue of
 * sinks (the visits' chunks, the main thread's own events), so that SQLite's inserts run
 * beside the rest of the round instead of in it. The main thread touches the store only
 * after wr_close (statistics, checkpoints). The queue holds at most WR_MAX_QUEUED bytes:
 * past that the main thread waits. */
typedef struct wr_node {
    struct wr_node *next;
    evsink k;
} wr_node;

struct sim_writer {
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* queued or closed (the writer waits), room (the main thread waits) */
    wr_node *head, *tail;
    size_t queued;
    int closed, oom;
    evsink cur; /* the main thread's events since its last hand-over */
};

enum { WR_MAX_QUEUED = 32 << 20, WR_HANDOVER = 1 << 20 };

static void *wr_main(void *arg)
{
    sim *s = arg;
    struct sim_writer *w = s->wr;
    if (s->ck_pend) /* the last round's checkpoint row first (sim_step), beside this round */
        s->ck_pend_rc = sim_ck_flush(s, &s->ck_pend_err);
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->head && !w->closed)
            pthread_cond_wait(&w->cv, &w->mu);
        wr_node *n = w->head;
        if (!n)
            break;
        w->head = n->next;
        if (!w->head)
            w->tail = NULL;
        pthread_mutex_unlock(&w->mu);
        size_t len = n->k.len;
        evsink_emit(s, &n->k);
        rlab_free(n->k.p);
        rlab_free(n);
        pthread_mutex_lock(&w->mu);
        w->queued -= len;
        pthread_cond_broadcast(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* Hand the events of k (its buffer; k is left empty) to the writer, after the main thread's
 * own events so far (the order they were made in). */
static void wr_push(sim *s, evsink *k)
{
    struct sim_writer *w = s->wr;
    if (k != &w->cur)
        wr_push(s, &w->cur);
    w->oom |= k->oom;
    k->oom = 0;
    if (w->oom) { /* the round fails (wr_close): the store keeps a prefix of its events, as
                     without the writer, never events after a dropped buffer */
        rlab_free(k->p);
        *k = (evsink){0};
        return;
    }
    if (k->len == 0)
        return;
    wr_node *n = rlab_malloc(sizeof *n);
    if (!n) {
        w->oom = 1;
        rlab_free(k->p);
        *k = (evsink){0};
        return;
    }
    n->next = NULL;
    n->k = *k;
    *k = (evsink){0};
    pthread_mutex_lock(&w->mu);
    while (w->queued && w->queued + n->k.len > WR_MAX_QUEUED) /* at most 32 MB queued */
        pthread_cond_wait(&w->cv, &w->mu);
    if (w->tail)
        w->tail->next = n;
    else
        w->head = n;
    w->tail = n;
    w->queued += n->k.len;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static void wr_event(sim *s, int32_t agent, const char *kind, const char *payload)
{
    evsink *k = &s->wr->cur;
    ev_out(s, k, agent, kind, payload, strlen(payload));
    if (k->len >= WR_HANDOVER)
        wr_push(s, k);
}

/* Whether rounds have a writer: offline, one process, 2+ threads, a store. */
static int wr_applies(const sim *s)
{
    return s->db && s->run_id && s->threads >= 2 && !(s->llm && s->cfg.use_llm) && !s->part &&
           rlab_mpi_size() <= 1;
}

/* Start the round's writer when it applies; without a thread the events go straight to the
 * store as before. */
static void wr_open(sim *s)
{
    if (s->wr || !wr_applies(s))
        return;
    struct sim_writer *w = rlab_calloc(1, sizeof *w);
    if (!w)
        return;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    s->wr = w;
    if (pthread_create(&w->th, NULL, wr_main, s) != 0) {
        s->wr = NULL;
        pthread_cond_destroy(&w->cv);
        pthread_mutex_destroy(&w->mu);
        rlab_free(w);
    }
}

/* Write what is left and end the writer (nothing when there is none); RLAB_ENOMEM when
 * events were lost. */
static int wr_close(sim *s)
{
    struct sim_writer *w = s->wr;
    if (!w)
        return RLAB_OK;
    wr_push(s, &w->cur);
    pthread_mutex_lock(&w->mu);
    w->closed = 1;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->th, NULL);
    s->wr = NULL;
    int oom = w->oom;
    rlab_free(w->cur.p);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    rlab_free(w);
    return oom ? RLAB_ENOMEM : RLAB_OK;
}

/* The end of visit v (agent a): its events (the watch's with the feeling f, which is then
 * released), the watch's effects on a's own state and the memory. wbuf: [wcap] the watch
 * payload's buffer. Reads and writes only a's state. */
static void visit_end_one(sim *s, visit_state *v, int32_t a, sim_dec *f, char *wbuf, size_t wcap,
                          evsink *sink)
{
    jw_lit(&v->out, "]");
    if (v->watched < 0) {
        jw_lit(&v->out, ",\"watched\":null}");
        ev_out(s, sink, a, "visit", v->out.p, v->out.len);
        sim_observe(s, a, SIM_M_VISIT, -1, -1, 0);
        return;
    }
    char line[400];
    const char *feel = line;
    if (f->text) {
        snprintf(line, sizeof line, "%s", f->text);
        feel = strstr(line, "]::");
        feel = feel ? feel + 3 : line;
        while (*feel == ' ')
            feel++;
    } else {
        offline_feeling(s, f, line, sizeof line); /* the template line's text */
    }
    jw_lit(&v->out, ",\"watched\":");
    jw_int(&v->out, v->watched);
    jw_lit(&v->out, "}");
    ev_out(s, sink, a, "visit", v->out.p, v->out.len);
    jw w = {wbuf, 0, wcap};
    jw_lit(&w, "{\"item\":");
    jw_int(&w, v->watched);
    jw_lit(&w, ",\"title\":");
    jw_str(&w, s->titles[v->watched]);
    jw_lit(&w, ",\"rank\":");
    jw_int(&w, v->watched_rank + 1);
    jw_lit(&w, ",\"liked\":");
    jw_cstr(&w, f->liked ? "true" : "false");
    jw_lit(&w, ",\"feeling\":");
    jw_str(&w, feel);
    jw_lit(&w, ",\"by\":\"");
    jw_cstr(&w, by_name(f->by));
    jw_lit(&w, "\"");
    if (s->world) {
        char num[64];
        int nn = snprintf(num, sizeof num, ",\"true_affinity\":%.4f",
                          (double)sim_true_affinity(s, a, v->watched));
        jw_raw(&w, num, nn > 0 && (size_t)nn < sizeof num ? (size_t)nn : 0);
    }
    jw_lit(&w, "}");
    ev_out(s, sink, a, "watch", w.p, w.len);
    if (f->liked && s->agents[a].unshared < 65535)
        s->agents[a].unshared++;
    sim_observe(s, a, SIM_M_WATCH, v->watched, -1, f->liked);
    rlab_free(f->text);
    f->text = NULL;
}

/* The end of the visits: each watcher's feeling (d[k] for the k-th watcher in visiting
 * order), the events and the memories, in visiting order. */
static void visits_end(sim *s, const int32_t *vis, int32_t nv, sim_dec *d, int nf)
{
    visit_state *vs = s->visits;
    int fi = 0;
    for (int32_t j = 0; j < nv; j++) {
        sim_dec none = {0};
        visit_end_one(s, &vs[j], vis[j], vs[j].watched >= 0 ? &d[fi++] : &none, s->buf, s->buf_cap,
                      NULL);
    }
    for (int k = fi; k < nf; k++) {
        rlab_free(d[k].text);
        d[k].text = NULL;
    }
}

/* Visits step by step: every visitor's step k is decided (one batch) before any step k+1. */
static int run_visits(sim *s, const int32_t *vis, int32_t nv, sim_stats *st, double *sat,
                      double *chance, rlab_err *err)
{
    int rc = visits_begin(s, vis, nv, st, err);
    if (rc)
        return rc;
    visit_state *vs = s->visits;
    sim_dec *d = s->vdecs;
    int32_t *who = s->vwho;
    for (int step = 0; step < s->cfg.max_steps && rc == RLAB_OK; step++) {
        int nd = 0;
        for (int32_t j = 0; j < nv; j++) {
            if (vs[j].done)
                continue;
            d[nd] = page_dec(&vs[j], vis[j]);
            who[nd++] = j;
        }
        if (nd == 0)
            break;
        rc = sim_decide_all(s, d, nd, err);
        for (int k = 0; k < nd && rc == RLAB_OK; k++)
            visit_apply(s, who[k], vis[who[k]], &d[k], st, sat, chance, NULL);
    }
    /* feelings of the watchers, then the events and memories */
    int nf = 0;
    for (int32_t j = 0; j < nv && rc == RLAB_OK; j++)
        if (vs[j].watched >= 0) {
            d[nf] = (sim_dec){.agent = vis[j], .type = SIM_D_FEEL, .item = vs[j].watched};
            who[nf++] = j;
        }
    if (rc == RLAB_OK && nf > 0)
        rc = sim_decide_all(s, d, nf, err);
    if (rc == RLAB_OK)
        visits_end(s, vis, nv, d, nf);
    else
        for (int k = 0; k < nf; k++) {
            rlab_free(d[k].text);
            d[k].text = NULL;
        }
    return rc;
}

/* Offline visits on threads (no language model, one process): a visit reads and writes only
 * its own agent's state (its pages, shown bits, watches, memories, the nearest-items cache
 * under its lock), so each visitor's whole visit (every page step, the feeling, the events'
 * payloads, the memory) runs in one thread, chunk by chunk; what is shared between agents
 * waits: the events are appended to a buffer per thread and emitted in visiting order after
 * each chunk, the exposures and the watches' shared part (interaction log, satisfaction
 * sums) are logged and replayed in the step-by-step order at the end (visits_replay). The
 * same round as run_visits, decision for decision and event for event, for any thread
 * count. */
/* visitors per chunk: 4 parts of the smallest size (4,096; fewer when a test lowers par_min,
 * so that small simulations go through several chunks too): bounds the event buffers (two
 * chunks' events, ~3 MB each) */
static int32_t visit_chunk(const sim *s) { return 4 * (s->par_min > 0 ? s->par_min : 1); }

typedef struct vpar_job {
    const int32_t *vis;
    int32_t j0; /* the chunk's first visitor */
    char *wbuf; /* [SIM_MAX_THREADS][buf_cap] watch payloads */
    evsink *ev; /* the chunk's event buffers: ev2[chunk % 2] */
    sim_stats st[SIM_MAX_THREADS];
    expo_log lg[SIM_MAX_THREADS];
    evsink ev2[2][SIM_MAX_THREADS];
} vpar_job;

static void visits_part(sim *s, void *ctx, int32_t lo, int32_t hi, int tid)
{
    vpar_job *jb = ctx;
    for (int32_t j = jb->j0 + lo; j < jb->j0 + hi; j++) {
        int32_t a = jb->vis[j];
        visit_state *v = &s->visits[j];
        while (!v->done) {
            sim_dec d = page_dec(v, a);
            sim_policy(s, &d);
            visit_apply(s, j, a, &d, &jb->st[tid], NULL, NULL, &jb->lg[tid]);
        }
        sim_dec f = {.agent = a, .type = SIM_D_FEEL, .item = v->watched};
        if (v->watched >= 0)
            sim_policy(s, &f);
        visit_end_one(s, v, a, &f, jb->wbuf + (size_t)tid * s->buf_cap, s->buf_cap, &jb->ev[tid]);
    }
}

static int run_visits_par(sim *s, const int32_t *vis, int32_t nv, sim_stats *st, double *sat,
                          double *chance, rlab_err *err)
{
    int rc = visits_begin(s, vis, nv, st, err);
    if (rc)
        return rc;
    vpar_job *jb = rlab_calloc(1, sizeof *jb);
    char *wbuf = rlab_malloc((size_t)s->threads * s->buf_cap);
    if (!jb || !wbuf) {
        rlab_free(jb), rlab_free(wbuf);
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    }
    jb->vis = vis;
    jb->wbuf = wbuf;
    /* chunk c runs on the threads while the caller emits the events of chunk c - 1 (the
     * store's inserts are the round's largest sequential part); the threads' ranges are
     * consecutive, so their buffers in order are visiting order */
    int oom = 0;
    const int32_t CH = visit_chunk(s);
    int32_t nch = (nv + CH - 1) / CH;
    for (int32_t c = 0; c <= nch; c++) {
        sim_par_job pj = {.T = 0};
        if (c < nch && !oom) {
            jb->j0 = c * CH;
            jb->ev = jb->ev2[c & 1];
            int32_t m = nv - jb->j0 < CH ? nv - jb->j0 : CH;
            sim_par_start(s, &pj, m, s->par_min, visits_part, jb);
        }
        for (int t = 0; c > 0 && t < SIM_MAX_THREADS; t++) {
            evsink *k = &jb->ev2[(c - 1) & 1][t];
            oom |= k->oom;
            if (s->wr)
                wr_push(s, k); /* the writer takes the buffer */
            else
                evsink_emit(s, k);
        }
        sim_par_wait(&pj);
    }
    /* the threads' exposure logs merged into one in visiting order (each is: a thread's
     * visitors come in order, a visit's pages in step order) and their counters */
    expo_log all = {0};
    int64_t tot = 0;
    for (int t = 0; t < SIM_MAX_THREADS; t++) {
        const sim_stats *q = &jb->st[t];
        st->watches += q->watches;
        st->rec_watches += q->rec_watches;
        st->search_watches += q->search_watches;
        st->searches += q->searches;
        oom |= jb->lg[t].oom;
        tot += jb->lg[t].n;
    }
    if (!oom && tot > 0) {
        all.r = rlab_malloc((size_t)tot * sizeof *all.r);
        oom = !all.r;
    }
    if (!oom && tot > 0) {
        int64_t pos[SIM_MAX_THREADS] = {0};
        for (int64_t e = 0; e < tot; e++) {
            int best = -1;
            for (int t = 0; t < SIM_MAX_THREADS; t++)
                if (pos[t] < jb->lg[t].n &&
                    (best < 0 || jb->lg[t].r[pos[t]].j < jb->lg[best].r[pos[best]].j))
                    best = t;
            all.r[e] = jb->lg[best].r[pos[best]++];
        }
        all.n = all.cap = tot;
    }
    all.oom = oom;
    /* the threads' logs are in the merged one now: freed before the replay's sort by step
     * makes a second copy (at most two copies of the round's log at once, not three) */
    for (int t = 0; t < SIM_MAX_THREADS; t++) {
        rlab_free(jb->lg[t].r);
        jb->lg[t] = (expo_log){0};
    }
    rc = visits_replay(s, vis, nv, st, sat, chance, &all, 1, err);
    rlab_free(all.r);
    for (int t = 0; t < SIM_MAX_THREADS; t++) {
        rlab_free(jb->ev2[0][t].p);
        rlab_free(jb->ev2[1][t].p);
    }
    rlab_free(jb);
    rlab_free(wbuf);
    return rc;
}

/* Pipelined visits and social decisions (the openai backend): every visitor's chain of
 * decisions (page step 0, 1, ..., then the feeling after a watch) and every social agent's
 * decision are in flight at once through one rlab_llm_pipe; an agent's next request is
 * sent as soon as its previous reply is back, so no agent waits for another's slow reply
 * (sim_decide batches wait for their slowest request, then the next step's batch starts
 * with the slots half empty). Deterministic whatever the order replies arrive in: a
 * prompt reads only its own agent's state; the effects shared between agents (exposure and
 * interaction logs, satisfaction sums) are replayed in the step-by-step order
 * (visits_replay); social replies are parsed on arrival but their fallbacks, which read who
 * is watching, and their effects come after the visits, in activity order, as before. So
 * the round is the same as run_visits + sim_decide(social) would make it.
 *
 * Tags: visit j's decisions are j, social decision k is nv + k. soc[nsoc] are the social
 * decisions (decided on return); feel[] gets one per watcher in visiting order. */
static int run_visits_pipe(sim *s, const int32_t *vis, int32_t nv, sim_dec *soc, int nsoc,
                           sim_stats *st, double *sat, double *chance, rlab_err *err)
{
    int rc = visits_begin(s, vis, nv, st, err);
    if (rc)
        return rc;
    rlab_llm_pipe *p = rlab_llm_pipe_new(s->llm, err);
    sim_ask *q = rlab_calloc((size_t)nv + (size_t)nsoc + 1, sizeof *q);
    sim_dec *cur = rlab_calloc((size_t)nv + 1, sizeof *cur); /* visit j's decision in flight */
    expo_log lg = {0};
    if (!p || !q || !cur) {
        rc = p ? rlab_errf(err, RLAB_ENOMEM, "out of memory") : err->code;
        goto done;
    }
    visit_state *vs = s->visits;
    /* ask visit j's next decision (its page step, or its feeling after a watch), settling
     * fallbacks at once (a page or feeling fallback reads only the agent's own state) */
    for (int32_t j = 0; j < nv + nsoc && rc == RLAB_OK; j++) {
        if (j >= nv) {
            rc = sim_ask_start(s, p, &soc[j - nv], &q[j], j, err);
            continue;
        }
        if (vs[j].done)
            continue;
        cur[j] = page_dec(&vs[j], vis[j]);
        rc = sim_ask_start(s, p, &cur[j], &q[j], j, err);
        while (rc == RLAB_OK && q[j].state == SIM_ASK_FALLBACK) {
            /* the server is down: the whole visit falls back now */
            sim_ask_fallback(s, &cur[j], &q[j]);
            visit_apply(s, j, vis[j], &cur[j], st, sat, chance, &lg);
            sim_ask_clear(&q[j]);
            if (vs[j].done) {
                if (vs[j].watched >= 0) {
                    cur[j] = (sim_dec){.agent = vis[j], .type = SIM_D_FEEL, .item = vs[j].watched};
                    rc = sim_ask_start(s, p, &cur[j], &q[j], j, err);
                    if (rc == RLAB_OK && q[j].state == SIM_ASK_FALLBACK)
                        sim_ask_fallback(s, &cur[j], &q[j]);
                }
                break;
            }
            cur[j] = page_dec(&vs[j], vis[j]);
            rc = sim_ask_start(s, p, &cur[j], &q[j], j, err);
        }
    }
    int64_t tag;
    rlab_llm_result r = {0};
    while (rc == RLAB_OK && rlab_llm_pipe_next(p, &tag, &r)) {
        int32_t j = (int32_t)tag;
        sim_dec *d = j < nv ? &cur[j] : &soc[j - nv];
        rc = sim_ask_reply(s, p, d, &q[j], tag, &r, err);
        rlab_llm_result_clear(&r);
        if (rc || j >= nv || q[j].state == SIM_ASK_WAIT)
            continue; /* social decisions settle after the visits; a re-ask is in flight */
        /* visit j's decision is in: apply it, then ask its next one */
        for (;;) {
            if (q[j].state == SIM_ASK_FALLBACK)
                sim_ask_fallback(s, d, &q[j]);
            sim_ask_clear(&q[j]);
            if (d->type == SIM_D_FEEL)
                break; /* the visit's last decision */
            visit_apply(s, j, vis[j], d, st, sat, chance, &lg);
            if (vs[j].done && vs[j].watched < 0)
                break;
            if (vs[j].done)
                *d = (sim_dec){.agent = vis[j], .type = SIM_D_FEEL, .item = vs[j].watched};
            else
                *d = page_dec(&vs[j], vis[j]);
            rc = sim_ask_start(s, p, d, &q[j], j, err);
            if (rc || q[j].state != SIM_ASK_FALLBACK)
                break;
        }
    }
    if (rc)
        goto done;
    /* the social decisions that did not parse: the offline policy, in activity order */
    for (int k = 0; k < nsoc; k++) {
        if (q[nv + k].state == SIM_ASK_FALLBACK)
            sim_ask_fallback(s, &soc[k], &q[nv + k]);
        sim_ask_clear(&q[nv + k]);
    }
    rc = visits_replay(s, vis, nv, st, sat, chance, &lg, 0, err);
    if (rc)
        goto done;
    /* the feelings, packed in visiting order for visits_end */
    int nf = 0;
    sim_dec *fd = s->vdecs;
    for (int32_t j = 0; j < nv; j++)
        if (vs[j].watched >= 0) {
            fd[nf++] = cur[j];
            cur[j].text = NULL;
        }
    visits_end(s, vis, nv, fd, nf);
done:
    rlab_llm_pipe_free(p);
    for (int32_t j = 0; q && j < nv + nsoc; j++)
        sim_ask_clear(&q[j]);
    for (int32_t j = 0; cur && j < nv; j++)
        rlab_free(cur[j].text);
    rlab_free(q);
    rlab_free(cur);
    rlab_free(lg.r);
    return rc;
}

/* Titles a mentions in a chat: its latest liked watch and its most heard-of title. */
static int chat_titles(const sim *s, int32_t a, int32_t *out)
{
    const sim_agent *ag = &s->agents[a];
    int n = 0;
    for (int k = 1; k <= SIM_HIST && n == 0; k++) {
        int32_t it = ag->watched[(ag->watched_pos - k + SIM_HIST) % SIM_HIST];
        if (it >= 0 && sim_affinity(s, a, it) >= 0.5f * s->amax[a])
            out[n++] = it;
    }
    int32_t h = -1;
    int hn = 0;
    for (int i = 0; i < SIM_HIST; i++)
        if (ag->heard[i] >= 0 && ag->heard_n[i] > hn && (n == 0 || ag->heard[i] != out[0])) {
            h = ag->heard[i];
            hn = ag->heard_n[i];
        }
    if (h >= 0)
        out[n++] = h;
    return n;
}

/* The friend a chats with: d's choice, or when that one is watching the least recently
 * contacted free friend; -1 = every friend is watching (the chat is blocked). */
static int32_t chat_partner(const sim *s, int32_t a, const sim_dec *d)
{
    int32_t b = d->target;
    const int32_t *fo;
    int32_t nf = sim_followees(s, a, &fo);
    if (b < 0 || sim_watching(s, b)) {
        int32_t alt = -1;
        float al = 1e30f;
        for (int32_t k = 0; k < nf; k++)
            if (fo[k] != b && !sim_watching(s, fo[k]) && s->fo_last[s->fo_off[a] + k] < al) {
                al = s->fo_last[s->fo_off[a] + k];
                alt = fo[k];
            }
        b = alt;
    }
    return b;
}

/* a chats with b (chat_partner; -1 = blocked). card (partitioned rounds): b's titles as
 * chat_titles gave them after the visits, and b's side of the chat is a message. */
static void do_chat(sim *s, int32_t a, int32_t b, const sim_dec *d, const int32_t *card,
                    sim_stats *st)
{
    if (b < 0) {
        size_t len = 0;
        bput(s, &len,
             "{\"action\":\"social\",\"do\":\"chat\",\"with\":%d,\"blocked\":true,"
             "\"by\":\"%s\"}",
             (int)d->target, by_name(d->by));
        sim_emit(s, a, "chat_blocked", s->buf);
        return;
    }
    const int32_t *fo;
    int32_t nf = sim_followees(s, a, &fo);
    for (int32_t k = 0; k < nf; k++)
        if (fo[k] == b)
            s->fo_last[s->fo_off[a] + k] = (float)s->vtime;
    int32_t ta[2], tb[2];
    int na = chat_titles(s, a, ta), nb;
    if (card) {
        nb = card[0];
        tb[0] = card[1], tb[1] = card[2];
    } else {
        nb = chat_titles(s, b, tb);
    }
    for (int k = 0; k < na; k++) {
        if (!card)
            sim_hear(s, b, ta[k]);
        s->mentions[ta[k]]++;
    }
    for (int k = 0; k < nb; k++)
        sim_hear(s, a, tb[k]), s->mentions[tb[k]]++;
    double until = s->vtime + (double)d->hours;
    s->agents[a].busy_until = fmax(s->agents[a].busy_until, until);
    s->agents[a].busy_kind = 2;
    s->agents[a].unshared = 0;
    if (!card) {
        s->agents[b].busy_until = fmax(s->agents[b].busy_until, until);
        s->agents[b].busy_kind = 2;
        s->agents[b].unshared = 0;
    }
    st->chats++;
    jw w = {s->buf, 0, s->buf_cap};
    char num[48];
    int nn = snprintf(num, sizeof num, "%.1f", (double)d->hours);
    jw_lit(&w, "{\"action\":\"social\",\"do\":\"chat\",\"with\":");
    jw_int(&w, b);
    jw_lit(&w, ",\"hours\":");
    jw_raw(&w, num, nn > 0 && (size_t)nn < sizeof num ? (size_t)nn : 0);
    jw_lit(&w, ",\"said\":[");
    for (int k = 0; k < na; k++) {
        if (k)
            jw_lit(&w, ",");
        jw_int(&w, ta[k]);
    }
    jw_lit(&w, "],\"heard\":[");
    for (int k = 0; k < nb; k++) {
        if (k)
            jw_lit(&w, ",");
        jw_int(&w, tb[k]);
    }
    jw_lit(&w, "],\"text\":");
    char txt[600];
    jw t = {txt, 0, sizeof txt};
    jw_lit(&t, "[");
    jw_cstr(&t, s->agents[a].name);
    jw_lit(&t, "]: ");
    if (na) {
        jw_lit(&t, "Have you seen <");
        jw_cstr(&t, s->titles[ta[0]]);
        jw_lit(&t, ">? ");
    } else {
        jw_lit(&t, "Seen anything good lately? ");
    }
    jw_lit(&t, "[");
    jw_cstr(&t, s->agents[b].name);
    jw_lit(&t, "]: ");
    if (nb) {
        jw_lit(&t, "You should try <");
        jw_cstr(&t, s->titles[tb[0]]);
        jw_lit(&t, ">.");
    } else {
        jw_lit(&t, "Not much, sadly.");
    }
    jw_str(&w, txt);
    jw_lit(&w, ",\"by\":\"");
    jw_cstr(&w, by_name(d->by));
    jw_lit(&w, "\"}");
    sim_emit(s, a, "chat", s->buf);
    sim_observe(s, a, SIM_M_CHAT, nb ? tb[0] : (na ? ta[0] : -1), b, 0);
    if (card)
        sim_shard_msg(s, SIM_MSG_CHAT, b, a, 0, ta, na, na ? ta[0] : (nb ? tb[0] : -1),
                      (double)d->hours);
    else
        sim_observe(s, b, SIM_M_CHAT, na ? ta[0] : (nb ? tb[0] : -1), a, 0);
}

static void post_item(sim *s, int32_t a, int32_t item, const char *text, int by, sim_stats *st)
{
    const int32_t *fr;
    int32_t nfr = sim_followers(s, a, &fr);
    for (int32_t k = 0; k < nfr; k++) {
        if (sim_shard_buffering(s)) { /* partitioned round: delivered at its end */
            sim_shard_msg(s, SIM_MSG_HEARD, fr[k], a, k, &item, 1, item, 0.0);
            continue;
        }
        sim_hear(s, fr[k], item);
        sim_observe(s, fr[k], SIM_M_HEARD, item, a, 0);
    }
    s->mentions[item]++;
    if (st)
        st->posts++;
    s->agents[a].unshared = 0;
    jw w = {s->buf, 0, s->buf_cap};
    jw_lit(&w, "{\"action\":\"social\",\"do\":\"post\",\"item\":");
    jw_int(&w, item);
    jw_lit(&w, ",\"title\":");
    jw_str(&w, s->titles[item]);
    jw_lit(&w, ",\"followers\":");
    jw_int(&w, nfr);
    jw_lit(&w, ",\"text\":");
    char t[300];
    if (!text) {
        jw tw = {t, 0, sizeof t};
        jw_lit(&tw, "Just watched <");
        jw_cstr(&tw, s->titles[item]);
        jw_lit(&tw, ">. Highly recommended!");
        text = t;
    }
    jw_str(&w, text);
    jw_lit(&w, ",\"by\":\"");
    jw_cstr(&w, by_name(by));
    jw_lit(&w, "\"}");
    sim_emit(s, a, "post", s->buf);
    sim_observe(s, a, SIM_M_POSTED, item, -1, 0);
}

int sim_post(sim *s, int32_t agent, int32_t item, rlab_err *err)
{
    if (agent < 0 || agent >= s->n || item < 0 || item >= s->n_items)
        return rlab_errf(err, RLAB_EINVAL, "simulator: no agent %d or item %d", (int)agent,
                         (int)item);
    post_item(s, agent, item, NULL, SIM_BY_OFFLINE, NULL);
    return RLAB_OK;
}

static double entropy_bits(const float *c, int32_t G)
{
    double tot = 0.0, h = 0.0;
    for (int32_t g = 0; g < G; g++)
        tot += (double)c[g];
    if (!(tot > 0))
        return 0.0;
    for (int32_t g = 0; g < G; g++)
        if (c[g] > 0)
            h -= ((double)c[g] / tot) * log2((double)c[g] / tot);
    return h;
}

/* The genre entropy of each agent's watches (agents lo + [0, n), those with >= 2 watches). */
typedef struct went_job {
    int32_t lo;
    double *h;
} went_job;

static void went_part(sim *s, void *ctx, int32_t lo, int32_t hi, int tid)
{
    (void)tid;
    went_job *j = ctx;
    for (int32_t k = lo; k < hi; k++) {
        int32_t a = j->lo + k;
        if (s->agents[a].n_watch >= 2)
            j->h[k] = entropy_bits(s->gcount + (size_t)a * (size_t)s->G, s->G);
    }
}

/* The genre entropy of each visit's first page (exposure rows x in [lo, hi) with an agent;
 * -1 for the other rows and for pages without genre mass): the page's items' genre rows
 * summed in page order from zero, as round_body's per-agent sums are when every agent has
 * one such row. gm: [threads][G] scratch. */
typedef struct eent_job {
    double *h;
    float *gm;
} eent_job;

static void eent_part(sim *s, void *ctx, int32_t lo, int32_t hi, int tid)
{
    eent_job *j = ctx;
    int P = s->cfg.page_size;
    size_t G = (size_t)s->G;
    float *gm = j->gm + (size_t)tid * G;
    for (int32_t x = lo; x < hi; x++) {
        j->h[x] = -1.0;
        if (s->expo_agent[x] < 0)
            continue;
        memset(gm, 0, G * sizeof *gm);
        for (int k = 0; k < P; k++) {
            int32_t it = s->expo[(size_t)x * (size_t)P + (size_t)k];
            if (it >= 0)
                for (size_t g = 0; g < G; g++)
                    gm[g] += s->item_genre[(size_t)it * G + g];
        }
        float tot = 0.0f;
        for (size_t g = 0; g < G; g++)
            tot += gm[g];
        if (tot > 0.0f)
            j->h[x] = entropy_bits(gm, s->G);
    }
}

/* The mean of those entropies over the rows that have one, in row order, into *es / *en;
 * 0 when an agent has two first pages (not made by the rounds: the caller's per-agent sums
 * then decide) or there is no memory. */
static int expo_entropy_par(sim *s, double *es, int *en)
{
    int64_t nx = s->n_expo;
    if (nx <= 0 || nx > INT32_MAX)
        return 0;
    eent_job j = {.h = rlab_malloc((size_t)nx * sizeof(double)),
                  .gm = rlab_malloc((size_t)s->threads * (size_t)s->G * sizeof(float))};
    uint64_t *seen = rlab_calloc(((size_t)s->n + 63) / 64, sizeof *seen);
    int ok = j.h && j.gm && seen;
    for (int64_t x = 0; ok && x < nx; x++) { /* one first page per agent */
        int32_t a = s->expo_agent[x];
        if (a < 0)
            continue;
        uint64_t bit = 1ull << (a % 64);
        ok = !(seen[a / 64] & bit);
        seen[a / 64] |= bit;
    }
    if (ok) {
        sim_par_for(s, (int32_t)nx, s->par_min, eent_part, &j);
        double sum = 0.0;
        int cnt = 0;
        for (int64_t x = 0; x < nx; x++)
            if (j.h[x] >= 0.0) {
                sum += j.h[x];
                cnt++;
            }
        *es = sum, *en = cnt;
    }
    rlab_free(j.h), rlab_free(j.gm), rlab_free(seen);
    return ok;
}

static int round_body(sim *s, rlab_err *err)
{
    int64_t r = s->round + 1;
    sim_stats st;
    memset(&st, 0, sizeof st);
    st.round = r;
    st.vtime = s->vtime;
    s->n_expo = 0;
    s->acc_swapped = 0;
    double sat = 0.0, chance = 0.0;
    int32_t n = s->n;
    /* 1. activity: a seeded random order, busy agents skipped, the cap respected */
    rlab_rng rg;
    sim_rng(s, SIM_PH_ACTIVE, r, -1, 0, &rg);
    for (int32_t a = 0; a < n; a++)
        s->order[a] = a;
    rlab_rng_shuffle_i32(&rg, s->order, (size_t)n);
    if (s->part)
        sim_shard_round_begin(s);
    int32_t na = 0;
    for (int32_t k = 0; k < n; k++) {
        int32_t a = s->order[k];
        sim_agent *ag = &s->agents[a];
        if (a == s->played)
            continue; /* a person decides for it (sim_play_*), between rounds */
        if (s->part && (a < s->part_lo || a >= s->part_hi))
            continue; /* another rank's agent */
        if (ag->busy_until > s->vtime) {
            st.busy++;
            continue;
        }
        ag->busy_kind = 0;
        double p = ag->p_active;
        if (s->cfg.activity == SIM_ACT_MARGINAL)
            p *= (double)(ag->no_action + 1);
        rlab_rng ra;
        sim_rng(s, SIM_PH_ACTIVE, r, a, 1, &ra);
        int capped = !s->part && s->cfg.max_active > 0 && na >= s->cfg.max_active;
        if (!capped && rlab_rng_double(&ra) < p) {
            s->active[na++] = a;
            if (!s->part)
                ag->no_action = 0;
        } else {
            ag->no_action++;
        }
    }
    int rc = s->part ? sim_shard_cap(s, &na, err) : RLAB_OK; /* the cap over all ranks */
    if (rc)
        return rc;
    st.active = na;
    /* 2. top-level decisions */
    for (int32_t k = 0; k < na; k++)
        s->decs[k] = (sim_dec){.agent = s->active[k], .type = SIM_D_ACTION};
    rc = sim_decide_all(s, s->decs, na, err);
    if (rc)
        return rc;
    /* remember each agent's choice and who decided, indexed by agent */
    int32_t nv = 0, nsoc = 0;
    for (int32_t k = 0; k < na; k++)
        s->action[s->decs[k].agent] = (uint8_t)(s->decs[k].choice | (s->decs[k].by << 4));
    for (int32_t k = 0; k < na; k++) {
        int32_t a = s->active[k];
        int c = s->action[a] & 15;
        if (c == SIM_A_REC)
            s->watch_list[nv++] = a;
    }
    /* 3. recommender visits; pipelined with the social decisions (the openai backend; under
     * MPI the step batches instead, whose decisions sim_decide_all shards over the ranks) */
    int pipelined =
        s->llm && s->cfg.use_llm && !s->cfg.llm_step_batches && rlab_mpi_size() == 1 && !s->part;
    sim_dec *sd = s->vdecs; /* free again after run_visits, which released its texts */
    if (pipelined) {
        for (int32_t k = 0; k < na; k++)
            nsoc += (s->action[s->active[k]] & 15) == SIM_A_SOCIAL;
        sd = rlab_calloc((size_t)nsoc + 1, sizeof *sd);
        if (!sd)
            return rlab_errf(err, RLAB_ENOMEM, "out of memory");
        nsoc = 0;
        for (int32_t k = 0; k < na; k++)
            if ((s->action[s->active[k]] & 15) == SIM_A_SOCIAL)
                sd[nsoc++] = (sim_dec){.agent = s->active[k], .type = SIM_D_SOCIAL};
        rc = run_visits_pipe(s, s->watch_list, nv, sd, nsoc, &st, &sat, &chance, err);
    } else if ((!s->llm || !s->cfg.use_llm) && !s->part && rlab_mpi_size() == 1) {
        rc = run_visits_par(s, s->watch_list, nv, &st, &sat, &chance, err);
    } else {
        rc = run_visits(s, s->watch_list, nv, &st, &sat, &chance, err);
    }
    if (rc) {
        for (int32_t k = 0; pipelined && k < nsoc; k++)
            rlab_free(sd[k].text);
        if (pipelined)
            rlab_free(sd);
        return rc;
    }
    /* 4. social actions, in the activity order (partitioned: after the watchers are known) */
    if (s->part && (rc = sim_shard_watching(s, err)))
        return rc;
    sim_shard_phase(s, SIM_EV_NOTHING);
    for (int32_t k = 0; k < na; k++) {
        int32_t a = s->active[k];
        int c = s->action[a] & 15;
        if (c == SIM_A_SOCIAL && !pipelined)
            sd[nsoc++] = (sim_dec){.agent = a, .type = SIM_D_SOCIAL};
        else if (c == SIM_A_NOTHING) {
            st.nothing++;
            jw w = {s->buf, 0, s->buf_cap};
            jw_lit(&w, "{\"action\":\"nothing\",\"by\":\"");
            jw_cstr(&w, by_name(s->action[a] >> 4));
            jw_lit(&w, "\"}");
            sim_emit(s, a, "nothing", s->buf);
        }
    }
    if (!pipelined)
        rc = sim_decide_all(s, sd, nsoc, err);
    /* partitioned: every chat's partner, and its titles as they stand now (from its owner) */
    int32_t *pb = NULL, (*cards)[3] = NULL;
    int ncard = 0;
    if (s->part && rc == RLAB_OK) {
        pb = rlab_malloc(((size_t)nsoc + 1) * sizeof *pb);
        cards = rlab_malloc(((size_t)nsoc + 1) * sizeof *cards);
        if (!pb || !cards)
            rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
        for (int32_t k = 0; k < nsoc && rc == RLAB_OK; k++)
            if (sd[k].choice == SIM_S_CHAT &&
                (pb[ncard] = chat_partner(s, sd[k].agent, &sd[k])) >= 0)
                ncard++;
        if (rc == RLAB_OK)
            rc = sim_shard_cards(s, pb, ncard, chat_titles, cards, err);
        ncard = 0;
    }
    sim_shard_phase(s, SIM_EV_SOCIAL);
    for (int32_t k = 0; k < nsoc && rc == RLAB_OK; k++) {
        sim_dec *d = &sd[k];
        int32_t a = d->agent;
        if (d->choice == SIM_S_POST && d->target >= 0)
            post_item(s, a, d->target, d->text, d->by, &st);
        else if (d->choice == SIM_S_CHAT && s->part) {
            int32_t b = chat_partner(s, a, d);
            do_chat(s, a, b, d, b >= 0 ? cards[ncard] : NULL, &st);
            ncard += b >= 0;
        } else if (d->choice == SIM_S_CHAT)
            do_chat(s, a, chat_partner(s, a, d), d, NULL, &st);
        else {
            st.nothing++;
            jw w = {s->buf, 0, s->buf_cap};
            jw_lit(&w, "{\"action\":\"social\",\"do\":\"none\",\"by\":\"");
            jw_cstr(&w, by_name(d->by));
            jw_lit(&w, "\"}");
            sim_emit(s, a, "nothing", s->buf);
        }
        rlab_free(d->text);
        d->text = NULL;
    }
    for (int32_t k = 0; k < nsoc; k++) {
        rlab_free(sd[k].text);
        sd[k].text = NULL;
    }
    if (pipelined)
        rlab_free(sd);
    rlab_free(pb);
    rlab_free(cards);
    if (s->part && rc == RLAB_OK)
        rc = sim_shard_deliver(s, err); /* social effects on others, to their owners */
    if (rc)
        return rc;
    /* 5. statistics (partitioned: events to rank 0, the rest summed or gathered in order) */
    double hsum = 0.0;
    int64_t hn = 0;
    {
        /* each agent's entropy on threads, summed here in agent order (the same sum) */
        went_job wj = {.lo = s->part ? s->part_lo : 0};
        int32_t hi = s->part ? s->part_hi : n;
        wj.h = rlab_malloc(((size_t)(hi - wj.lo) + 1) * sizeof *wj.h);
        if (wj.h)
            sim_par_for(s, hi - wj.lo, s->par_min, went_part, &wj);
        for (int32_t a = wj.lo; a < hi; a++)
            if (s->agents[a].n_watch >= 2) {
                hsum += wj.h ? wj.h[a - wj.lo]
                             : entropy_bits(s->gcount + (size_t)a * (size_t)s->G, s->G);
                hn++;
            }
        rlab_free(wj.h);
    }
    if (s->part && (rc = sim_shard_round_end(s, &st, &sat, &chance, &hsum, &hn, err)))
        return rc;
    st.ctr = st.impressions ? (double)st.rec_watches / st.impressions : 0.0;
    rlab_err e2 = {0};
    if (s->n_expo > 0) {
        rlab_eval_coverage(s->expo, s->n_expo, s->cfg.page_size, s->n_items, &st.coverage, &e2);
        rlab_eval_genre_entropy(s->expo, s->n_expo, s->cfg.page_size, s->n_items, s->g_off,
                                s->g_items, s->G, &st.exp_entropy, &e2);
    }
    /* per-agent genre entropy of the first recommended page each visiting agent was shown
     * this round, averaged over those agents */
    {
        double es = 0.0;
        int en = 0;
        int P = s->cfg.page_size;
        int done = expo_entropy_par(s, &es, &en);
        for (int64_t x = 0; !done && x < s->n_expo; x++) {
            if (s->expo_agent[x] < 0)
                continue;
            float *gm = s->expo_gmass + (size_t)s->expo_agent[x] * (size_t)s->G;
            for (int k = 0; k < P; k++) {
                int32_t it = s->expo[(size_t)x * (size_t)P + (size_t)k];
                if (it >= 0)
                    for (int32_t g = 0; g < s->G; g++)
                        gm[g] += s->item_genre[(size_t)it * (size_t)s->G + (size_t)g];
            }
        }
        for (int64_t x = 0; !done && x < s->n_expo; x++) {
            if (s->expo_agent[x] < 0)
                continue;
            float *gm = s->expo_gmass + (size_t)s->expo_agent[x] * (size_t)s->G;
            float tot = 0.0f;
            for (int32_t g = 0; g < s->G; g++)
                tot += gm[g];
            if (tot > 0.0f) {
                es += entropy_bits(gm, s->G);
                en++;
                memset(gm, 0, (size_t)s->G * sizeof(float)); /* counted once */
            }
        }
        st.agent_exp_entropy = en ? es / en : 0.0;
        st.swapped = s->acc_swapped;
    }
    st.watch_entropy = hn ? hsum / (double)hn : 0.0;
    st.density = n > 1 ? (double)s->fo_off[n] / ((double)n * (double)(n - 1)) : 0.0;
    if (s->world && st.watches > 0) {
        st.satisfaction = sat / st.watches;
        st.sat_chance = chance / st.watches;
    } else {
        st.satisfaction = NAN;
        st.sat_chance = NAN;
    }
    for (int k = 0; k < 3; k++)
        st.top_items[k] = -1, st.top_counts[k] = 0;
    for (int32_t i = 0; i < s->n_items; i++) {
        int32_t c = s->mentions[i];
        if (c <= 0)
            continue;
        s->mentions[i] = 0;
        for (int k = 0; k < 3; k++)
            if (c > st.top_counts[k]) {
                for (int q = 2; q > k; q--)
                    st.top_items[q] = st.top_items[q - 1], st.top_counts[q] = st.top_counts[q - 1];
                st.top_items[k] = i, st.top_counts[k] = c;
                break;
            }
    }
    st.llm_calls = s->acc_llm_calls; /* counted by sim_decide during the round */
    st.llm_fallbacks = s->acc_llm_fallbacks;
    st.llm_decisions = s->acc_llm_decisions;
    memcpy(st.llm_errors, s->acc_llm_err, sizeof st.llm_errors);
    s->acc_llm_calls = s->acc_llm_fallbacks = s->acc_llm_decisions = 0;
    memset(s->acc_llm_err, 0, sizeof s->acc_llm_err);
    /* the events are all written before the statistics and the checkpoint use the store */
    if (wr_close(s) != RLAB_OK)
        return rlab_errf(err, RLAB_ENOMEM, "simulator: out of memory writing the events");
    s->last = st;
    s->round = r;
    rc = sim_write_stats(s, err);
    s->vtime += s->cfg.interval_h;
    return rc;
}

static int one_round(sim *s, rlab_err *err)
{
    s->ck_pend_rc = RLAB_OK;
    wr_open(s);
    if (!s->wr && s->ck_pend) { /* no writer: the last checkpoint's row now */
        int rc = sim_ck_flush(s, err);
        if (rc)
            return rc;
    }
    int rc = round_body(s, err);
    if (wr_close(s) != RLAB_OK && rc == RLAB_OK) /* a round that failed: written, ended */
        rc = rlab_errf(err, RLAB_ENOMEM, "simulator: out of memory writing the events");
    if (s->ck_pend_rc != RLAB_OK && rc == RLAB_OK) /* the writer's store of the last
                                                      checkpoint failed: reported now */
        rc = rlab_errf(err, s->ck_pend_rc, "simulator: the checkpoint of round %lld: %s",
                       (long long)s->ck_pend_round, s->ck_pend_err.msg);
    s->ck_pend_rc = RLAB_OK;
    return rc;
}

int sim_step(sim *s, int rounds, sim_progress_fn progress, void *ud, sim_cancel_fn cancel,
             void *cud, int *done, rlab_err *err)
{
    int k = 0, rc = RLAB_OK;
    for (; k < rounds; k++) {
        if (cancel && cancel(cud)) {
            rc = RLAB_ECANCELED;
            break;
        }
        if (atomic_load(&s->pause))
            break;
        s->llm_round_first[0] = '\0';
        s->llm_down = s->llm_fail_run = 0;
        rc = one_round(s, err);
        sim_shard_round_done(s);
        if (rc)
            break;
        sim_stats st = s->last;
        if (s->cfg.retrain_every > 0 && s->retrain && s->round % s->cfg.retrain_every == 0) {
            rlab_model *m =
                s->retrain(s->retrain_ud, s, s->x_user, s->x_item, s->x_time, s->n_x, err);
            if (m) {
                sim_set_model(s, m);
                rlab_model_release(m);
                size_t len = 0;
                bput(s, &len, "{\"model\":");
                bstr(s, &len, s->model_name);
                bput(s, &len, ",\"interactions\":%lld}", (long long)s->n_x);
                s->round--; /* the event belongs to the round just finished */
                sim_emit(s, -1, "retrain", s->buf);
                s->round++;
            } else if (err->code) {
                rc = err->code;
                break;
            }
        }
        if (s->cfg.checkpoint_every > 0 && s->round % s->cfg.checkpoint_every == 0) {
            rc = sim_shard_sync(s, 0, err); /* rank 0 writes every agent */
            /* before another round with a writer, the row is stored by that round's writer
             * beside its work (one_round; a failure is reported at that round's end) */
            s->ck_defer = k + 1 < rounds && wr_applies(s);
            if (rc == RLAB_OK)
                rc = sim_checkpoint(s, err);
            s->ck_defer = 0;
            if (rc)
                break;
        }
        if (progress)
            progress(ud, k + 1, rounds, &st);
        if (st.llm_decisions > 0 && s->cfg.max_fallback < 1.0 &&
            st.llm_fallbacks > s->cfg.max_fallback * st.llm_decisions) {
            k++; /* this round is done and stored */
            rc = rlab_errf(err, RLAB_EIO,
                           "%s (%d of %d language-model decisions fell back to the offline "
                           "policy in round %lld, more than max_fallback=%g)",
                           s->llm_round_first[0] ? s->llm_round_first : "llm: no usable reply",
                           (int)st.llm_fallbacks, (int)st.llm_decisions, (long long)st.round,
                           s->cfg.max_fallback);
            break;
        }
    }
    if (s->ck_pend) { /* a deferred checkpoint row no round took (cancelled, paused, failed) */
        rlab_err e = {0};
        int frc = sim_ck_flush(s, &e);
        if (frc && rc == RLAB_OK)
            rc = rlab_errf(err, frc, "%s", e.msg);
    }
    if (done)
        *done = k;
    if (rc == RLAB_OK) /* partitioned: every rank holds every agent between steps */
        rc = sim_shard_sync(s, -1, err);
    if (s->db) {
        rlab_err e = {0};
        if (rlab_db_flush(s->db, &e) && rc == RLAB_OK)
            rc = rlab_errf(err, e.code, "%s", e.msg);
    }
    return rc;
}

/* ---- interventions ------------------------------------------------------------------ */

int sim_edit(sim *s, int32_t a, const char *field, const char *value, rlab_err *err)
{
    if (a < 0 || a >= s->n)
        return rlab_errf(err, RLAB_EINVAL, "simulator: no agent %d (0..%d)", (int)a, (int)s->n - 1);
    sim_agent *ag = &s->agents[a];
    if (strcmp(field, "name") == 0) {
        snprintf(ag->name, sizeof ag->name, "%s", value);
    } else if (strcmp(field, "age") == 0) {
        char *end;
        long v = strtol(value, &end, 10);
        if (*end || v < 0 || v > 150)
            return rlab_errf(err, RLAB_EINVAL, "simulator: age must be 0..150, got '%s'", value);
        ag->age = (int32_t)v;
    } else if (strcmp(field, "gender") == 0) {
        snprintf(ag->gender, sizeof ag->gender, "%s", value);
    } else if (strcmp(field, "occupation") == 0) {
        snprintf(ag->occupation, sizeof ag->occupation, "%s", value);
    } else if (strcmp(field, "traits") == 0) {
        snprintf(ag->traits, sizeof ag->traits, "%s", value);
    } else if (strcmp(field, "status") == 0) {
        snprintf(ag->status, sizeof ag->status, "%s", value);
    } else if (strcmp(field, "interests") == 0 || strcmp(field, "feature") == 0) {
        int interests = field[0] == 'i';
        float *t = s->taste + (size_t)a * (size_t)s->G;
        float tmp[256] = {0};
        uint8_t arch = 0;
        int cnt = 0;
        char buf[256];
        snprintf(buf, sizeof buf, "%s", value);
        for (char *tok = strtok(buf, ";,|"); tok; tok = strtok(NULL, ";,|")) {
            while (*tok == ' ')
                tok++;
            size_t l = strlen(tok);
            while (l && tok[l - 1] == ' ')
                tok[--l] = '\0';
            if (!*tok)
                continue;
            int k = interests ? genre_by_name(s, tok) : arch_by_name(tok);
            if (k < 0)
                return rlab_errf(err, RLAB_EINVAL, "simulator: unknown %s '%s'",
                                 interests ? "genre" : "archetype", tok);
            if (interests)
                tmp[k] = 1.0f;
            else
                arch |= SIM_ARCH(k);
            cnt++;
        }
        if (!cnt)
            return rlab_errf(err, RLAB_EINVAL, "simulator: empty %s", field);
        if (interests) {
            memcpy(t, tmp, (size_t)s->G * sizeof(float));
            taste_finish(s, a);
        } else {
            ag->arch = arch;
        }
    } else {
        return rlab_errf(err, RLAB_EINVAL,
                         "simulator: unknown field '%s' (name, age, gender, occupation, traits, "
                         "status, interests, feature)",
                         field);
    }
    return RLAB_OK;
}

int sim_rewire(sim *s, int mode, int k, rlab_err *err)
{
    int32_t n = s->n;
    if (k < 1)
        return rlab_errf(err, RLAB_EINVAL, "simulator: rewire needs k >= 1");
    if (k > n - 1)
        k = n - 1;
    int64_t m = (int64_t)n * k;
    int32_t *src = rlab_malloc((size_t)m * sizeof(int32_t));
    int32_t *dst = rlab_malloc((size_t)m * sizeof(int32_t));
    double *w = rlab_malloc((size_t)n * sizeof(double));
    if (!src || !dst || !w) {
        rlab_free(src), rlab_free(dst), rlab_free(w);
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    }
    const double beta = mode == SIM_REWIRE_HOMOPHILY ? 8.0 : -8.0;
    int64_t e = 0;
    for (int32_t a = 0; a < n; a++) {
        rlab_rng r;
        sim_rng(s, SIM_PH_REWIRE, s->round, a, mode, &r);
        const float *ta = s->taste + (size_t)a * (size_t)s->G;
        double na2 = 0.0;
        for (int32_t g = 0; g < s->G; g++)
            na2 += (double)ta[g] * (double)ta[g];
        double tot = 0.0;
        for (int32_t b = 0; b < n; b++) {
            if (b == a) {
                w[b] = 0.0;
                continue;
            }
            const float *tb = s->taste + (size_t)b * (size_t)s->G;
            double d = 0.0, nb2 = 0.0;
            for (int32_t g = 0; g < s->G; g++)
                d += (double)ta[g] * (double)tb[g], nb2 += (double)tb[g] * (double)tb[g];
            double c = na2 > 0 && nb2 > 0 ? d / sqrt(na2 * nb2) : 0.0;
            w[b] = exp(beta * c);
            tot += w[b];
        }
        /* k draws without replacement, proportional to the weights */
        for (int j = 0; j < k && tot > 0; j++) {
            double u = rlab_rng_double(&r) * tot, acc = 0.0;
            int32_t pick = -1;
            for (int32_t b = 0; b < n; b++) {
                acc += w[b];
                if (w[b] > 0 && acc >= u) {
                    pick = b;
                    break;
                }
            }
            if (pick < 0)
                for (int32_t b = n - 1; b >= 0; b--)
                    if (w[b] > 0) {
                        pick = b;
                        break;
                    }
            if (pick < 0)
                break;
            tot -= w[pick];
            w[pick] = 0.0;
            src[e] = a;
            dst[e++] = pick;
        }
    }
    rlab_free(w);
    int rc = set_graph(s, src, dst, e, err);
    rlab_free(src), rlab_free(dst);
    return rc;
}

int sim_inject(sim *s, const int32_t *items, int n, int rounds, rlab_err *err)
{
    if (n < 0 || n > SIM_MAX_INJECT)
        return rlab_errf(err, RLAB_EINVAL, "simulator: inject at most %d items", SIM_MAX_INJECT);
    for (int k = 0; k < n; k++)
        if (items[k] < 0 || items[k] >= s->n_items)
            return rlab_errf(err, RLAB_EINVAL, "simulator: no item %d", (int)items[k]);
    memcpy(s->inject, items, (size_t)n * sizeof(int32_t));
    s->n_inject = n;
    s->inject_until = s->round + (rounds > 0 ? rounds : 1);
    return RLAB_OK;
}

char *sim_interview(sim *s, int32_t a, const char *question, int *by, rlab_err *err)
{
    if (by)
        *by = SIM_BY_OFFLINE;
    if (a < 0 || a >= s->n) {
        rlab_errf(err, RLAB_EINVAL, "simulator: no agent %d (0..%d)", (int)a, (int)s->n - 1);
        return NULL;
    }
    if (s->llm && s->cfg.use_llm) {
        sim_dec d = {.agent = a, .type = SIM_D_INTERVIEW, .text = rlab_strdup(question)};
        if (!d.text) {
            rlab_errf(err, RLAB_ENOMEM, "out of memory");
            return NULL;
        }
        /* an interview is not part of a round: keep the round's llm counters as they were */
        int32_t calls = s->acc_llm_calls, fb = s->acc_llm_fallbacks, dec = s->acc_llm_decisions;
        int32_t errs[SIM_LLM_NKINDS];
        memcpy(errs, s->acc_llm_err, sizeof errs);
        s->llm_down = s->llm_fail_run = 0; /* ask the server again */
        int rc = sim_decide(s, &d, 1, err);
        s->acc_llm_calls = calls, s->acc_llm_fallbacks = fb, s->acc_llm_decisions = dec;
        memcpy(s->acc_llm_err, errs, sizeof errs);
        if (rc) {
            rlab_free(d.text);
            return NULL;
        }
        if (by)
            *by = d.by;
        return d.text; /* sim_parse replaced it by the answer */
    }
    char *ans = sim_offline_answer(s, a, question);
    if (!ans)
        rlab_errf(err, RLAB_ENOMEM, "out of memory");
    return ans;
}

void sim_question_vec(const sim *s, const char *q, float *out) { text_vec(s, q, out); }

int sim_set_graph_edges(sim *s, const int32_t *src, const int32_t *dst, int64_t m, rlab_err *err)
{
    return set_graph(s, src, dst, m, err);
}

void sim_refresh_tastes(sim *s)
{
    for (int32_t a = 0; a < s->n; a++)
        taste_derive(s, a);
}

/* ---- text ---------------------------------------------------------------------------- */

void sim_profile_text(const sim *s, int32_t a, char *buf, size_t n)
{
    const sim_agent *ag = &s->agents[a];
    int w =
        snprintf(buf, n, "%s, %d, %s, %s; ", ag->name, (int)ag->age, ag->gender, ag->occupation);
    int first = 1;
    for (int k = 0; k < RLAB_WORLD_N_ARCHETYPES && w > 0 && (size_t)w < n; k++)
        if (ag->arch & SIM_ARCH(k)) {
            w += snprintf(buf + w, n - (size_t)w, "%s%s", first ? "" : "/",
                          rlab_world_archetype_name(k));
            first = 0;
        }
    /* the top three genres of the taste */
    const float *t = sim_taste(s, a);
    int top[3] = {-1, -1, -1};
    for (int32_t g = 0; g < s->G; g++)
        for (int k = 0; k < 3; k++)
            if (top[k] < 0 || t[g] > t[top[k]]) {
                for (int q = 2; q > k; q--)
                    top[q] = top[q - 1];
                top[k] = g;
                break;
            }
    if (w > 0 && (size_t)w < n)
        w += snprintf(buf + w, n - (size_t)w, "; likes");
    for (int k = 0; k < 3 && w > 0 && (size_t)w < n; k++)
        if (top[k] >= 0 && t[top[k]] > 0.05f)
            w += snprintf(buf + w, n - (size_t)w, "%s %s", k ? "," : "", s->genre_names[top[k]]);
}

void sim_memory_text(const sim *s, int32_t a, const sim_mem *m, char *buf, size_t n)
{
    const char *me = s->agents[a].name;
    const char *ot = m->other >= 0 && m->other < s->n ? s->agents[m->other].name : "someone";
    const char *it = m->item >= 0 ? s->titles[m->item] : "";
    switch (m->kind) {
    case SIM_M_WATCH:
        snprintf(buf, n, "%s watched <%s> and %s it.", me, it, m->aux ? "liked" : "disliked");
        break;
    case SIM_M_CHAT:
        if (m->item >= 0)
            snprintf(buf, n, "%s chatted with %s about <%s>.", me, ot, it);
        else
            snprintf(buf, n, "%s chatted with %s.", me, ot);
        break;
    case SIM_M_HEARD:
        snprintf(buf, n, "%s saw %s's post about <%s>.", me, ot, it);
        break;
    case SIM_M_POSTED:
        snprintf(buf, n, "%s posted about <%s>.", me, it);
        break;
    case SIM_M_VISIT:
        snprintf(buf, n, "%s browsed the recommender and left without watching.", me);
        break;
    case SIM_M_INSIGHT:
        snprintf(buf, n, "%s likes %s movies.", me, sim_genre_name(s, m->aux));
        break;
    case SIM_M_REFLECT:
        snprintf(buf, n, "Above all, %s enjoys %s.", me, sim_genre_name(s, m->aux));
        break;
    default:
        snprintf(buf, n, "%s remembers something.", me);
    }
}

void sim_memory_text_me(const sim *s, int32_t a, const sim_mem *m, char *buf, size_t n)
{
    const char *ot = m->other >= 0 && m->other < s->n ? s->agents[m->other].name : "someone";
    const char *it = m->item >= 0 ? s->titles[m->item] : "";
    (void)a;
    switch (m->kind) {
    case SIM_M_WATCH:
        snprintf(buf, n, "I watched <%s> and %s it.", it, m->aux ? "liked" : "disliked");
        break;
    case SIM_M_CHAT:
        if (m->item >= 0)
            snprintf(buf, n, "I chatted with %s about <%s>.", ot, it);
        else
            snprintf(buf, n, "I chatted with %s.", ot);
        break;
    case SIM_M_HEARD:
        snprintf(buf, n, "I saw %s's post about <%s>.", ot, it);
        break;
    case SIM_M_POSTED:
        snprintf(buf, n, "I posted about <%s>.", it);
        break;
    case SIM_M_VISIT:
        snprintf(buf, n, "I browsed the recommender and left without watching.");
        break;
    case SIM_M_INSIGHT:
        snprintf(buf, n, "I like %s movies.", sim_genre_name(s, m->aux));
        break;
    case SIM_M_REFLECT:
        /* a reflection is a conclusion of the memories; the answer names one favourite (the
         * caller's), so it is told as a liking, not as a second "above all" */
        snprintf(buf, n, "Lately I have been enjoying %s a lot.", sim_genre_name(s, m->aux));
        break;
    default:
        snprintf(buf, n, "I remember something.");
    }
}

/* ---- role play ---------------------------------------------------------------------------- */

int sim_play_begin(sim *s, int32_t a, rlab_err *err)
{
    if (a < 0 || a >= s->n)
        return rlab_errf(err, RLAB_EINVAL, "no agent %d (0..%d)", (int)a, (int)s->n - 1);
    s->played = a;
    s->play_np = 0;
    s->play_in_visit = 0;
    s->play_chat_with = -1;
    s->play_chat_turns = 0;
    s->play_chat[0] = '\0';
    size_t len = 0;
    bput(s, &len, "{\"do\":\"start\",\"by\":\"human\"}");
    sim_emit(s, a, "play", s->buf);
    return RLAB_OK;
}

void sim_play_end(sim *s)
{
    if (s->played >= 0) {
        size_t len = 0;
        bput(s, &len, "{\"do\":\"stop\",\"by\":\"human\"}");
        sim_emit(s, s->played, "play", s->buf);
    }
    s->played = -1;
    s->play_in_visit = 0;
    s->play_chat_with = -1;
}

int32_t sim_played(const sim *s) { return s->played; }

/* Append one step of the played visit to its event payload. */
static void play_step_json(sim *s, const char *what, int32_t item)
{
    jw w = {s->play_visit + s->play_visit_len, 0, sizeof s->play_visit - s->play_visit_len};
    if (s->play_steps++ > 0)
        jw_lit(&w, ",");
    jw_lit(&w, "{\"page\":[");
    for (int q = 0; q < s->play_np; q++) {
        if (q > 0)
            jw_lit(&w, ",");
        jw_int(&w, s->play_page[q]);
    }
    jw_lit(&w, "],\"src\":\"");
    jw_cstr(&w, s->play_from_search ? "search" : "rec");
    jw_lit(&w, "\",\"by\":\"human\",\"do\":\"");
    jw_cstr(&w, what);
    jw_lit(&w, "\"");
    if (item >= 0) {
        jw_lit(&w, ",\"item\":");
        jw_int(&w, item);
    }
    jw_lit(&w, "}");
    if (w.len + 1 < w.cap) {
        s->play_visit_len += w.len;
    } else { /* no room left (a very long visit): the step is left out, the JSON stays whole */
        s->play_visit[s->play_visit_len] = '\0';
        s->play_steps--;
    }
}

/* The played agent's page: a visit starts (one score-all, like a round's visit) when none is
 * going on. */
int sim_play_page(sim *s, const int32_t **page, int *np, int *from_search, rlab_err *err)
{
    int32_t a = s->played;
    if (a < 0)
        return rlab_errf(err, RLAB_ESTATE, "no agent is played (simulator.play agent=N)");
    if (!s->play_in_visit) {
        int32_t pg[SIM_MAX_PAGE];
        int n = 0;
        int rc = sim_first_pages(s, &a, 1, pg, &n, err);
        if (rc)
            return rc;
        memcpy(s->play_page, pg, (size_t)n * sizeof(int32_t));
        s->play_np = n;
        s->play_in_visit = 1;
        s->play_from_search = s->play_searched = 0;
        s->play_steps = 0;
        s->play_visit_len = 0;
        s->play_visit[0] = '\0';
    }
    if (!s->play_from_search)
        for (int q = 0; q < s->play_np; q++)
            sim_show(s, a, s->play_page[q]);
    *page = s->play_page;
    *np = s->play_np;
    if (from_search)
        *from_search = s->play_from_search;
    return RLAB_OK;
}

/* End the played visit: its "visit" event (as any agent's, by "human"). */
static void play_visit_end(sim *s, int32_t watched)
{
    size_t len = 0;
    bput(s, &len, "{\"action\":\"recommender\",\"by\":\"human\",\"steps\":[%s]", s->play_visit);
    if (watched >= 0)
        bput(s, &len, ",\"watched\":%d", (int)watched);
    bput(s, &len, "}");
    sim_emit(s, s->played, "visit", s->buf);
    if (watched < 0)
        sim_observe(s, s->played, SIM_M_VISIT, -1, -1, 0);
    s->play_in_visit = 0;
    s->play_np = 0;
}

int sim_play_act(sim *s, int act, const char *arg, sim_play_out *out, rlab_err *err)
{
    int k = act;
    memset(out, 0, sizeof *out);
    out->item = -1;
    /* sim_play_page sets these on success; GCC -O3 cannot see it through the error path */
    const int32_t *pg = NULL;
    int np = 0, fs = 0;
    int rc = sim_play_page(s, &pg, &np, &fs, err);
    if (rc)
        return rc;
    int32_t a = s->played;
    switch (act) {
    case SIM_P_NEXT: {
        play_step_json(s, "next", -1);
        s->play_from_search = 0;
        s->play_np = next_page(s, a, s->play_page);
        if (s->play_np == 0) {
            play_visit_end(s, -1);
            out->visit_over = 1;
        } else {
            for (int q = 0; q < s->play_np; q++)
                sim_show(s, a, s->play_page[q]);
        }
        return RLAB_OK;
    }
    case SIM_P_SEARCH: {
        int32_t it = arg ? sim_find_title(s, arg) : -1;
        if (it < 0)
            return rlab_errf(err, RLAB_ENOTFOUND, "no movie titled '%s'", arg ? arg : "");
        play_step_json(s, "search", it);
        s->play_searched = s->play_from_search = 1;
        s->play_np = s->cfg.page_size;
        search_page(s, a, it, s->play_page, s->play_np);
        while (s->play_np > 0 && s->play_page[s->play_np - 1] < 0)
            s->play_np--;
        out->item = it;
        return RLAB_OK;
    }
    case SIM_P_LEAVE:
        play_step_json(s, "leave", -1);
        play_visit_end(s, -1);
        out->visit_over = 1;
        return RLAB_OK;
    default:
        break;
    }
    /* BUY k (0-based) */
    if (k < 0 || k >= np)
        return rlab_errf(err, RLAB_EINVAL, "pick an item 1..%d of the page", np);
    int32_t it = pg[k];
    play_step_json(s, "buy", it);
    sim_stats st;
    memset(&st, 0, sizeof st);
    double sat = 0.0, chance = 0.0;
    do_watch(s, a, it, &st, &sat, &chance, 0);
    /* the feeling: the person's words, else the offline template; liked by the rule */
    sim_dec f = {.agent = a, .type = SIM_D_FEEL, .item = it};
    sim_policy(s, &f);
    char line[400];
    if (arg && *arg)
        snprintf(line, sizeof line, "%s", arg);
    else
        offline_feeling(s, &f, line, sizeof line);
    play_visit_end(s, it);
    jw w = {s->buf, 0, s->buf_cap};
    jw_lit(&w, "{\"item\":");
    jw_int(&w, it);
    jw_lit(&w, ",\"title\":");
    jw_str(&w, s->titles[it]);
    jw_lit(&w, ",\"rank\":");
    jw_int(&w, k + 1);
    jw_lit(&w, ",\"liked\":");
    jw_cstr(&w, f.liked ? "true" : "false");
    jw_lit(&w, ",\"feeling\":");
    jw_str(&w, line);
    jw_lit(&w, ",\"by\":\"human\"}");
    sim_emit(s, a, "watch", s->buf);
    sim_observe(s, a, SIM_M_WATCH, it, -1, f.liked);
    out->item = it;
    out->liked = f.liked;
    out->visit_over = 1;
    snprintf(out->text, sizeof out->text, "%s", line);
    return RLAB_OK;
}

static int says_goodbye(const char *t)
{
    static const char *const bye[] = {"goodbye", "good bye", "bye", "see you", NULL};
    for (int i = 0; bye[i]; i++)
        for (const char *p = t; *p; p++)
            if (strncasecmp(p, bye[i], strlen(bye[i])) == 0)
                return 1;
    return 0;
}

/* Titles in <...> of a text, heard by agent `to`. */
static void hear_titles(sim *s, int32_t to, const char *text, int32_t *first)
{
    for (const char *p = strchr(text, '<'); p; p = strchr(p + 1, '<')) {
        const char *q = strchr(p, '>');
        if (!q)
            break;
        char t[256];
        size_t l = (size_t)(q - p - 1) < sizeof t - 1 ? (size_t)(q - p - 1) : sizeof t - 1;
        memcpy(t, p + 1, l);
        t[l] = '\0';
        int32_t it = sim_find_title(s, t);
        if (it >= 0) {
            sim_hear(s, to, it);
            if (*first < 0)
                *first = it;
        }
    }
}

/* The other side's offline turn: from its memories; goodbye after three turns or when the
 * person said goodbye. */
static void play_offline_reply(sim *s, int32_t b, int turn, int bye, char *out, size_t n)
{
    int32_t t[2];
    int nt = chat_titles(s, b, t);
    if (bye || turn >= 3) {
        snprintf(out, n, "Nice talking to you, %s. Goodbye!", s->agents[s->played].name);
    } else if (turn == 1) {
        if (nt)
            snprintf(out, n, "Hi %s! I recently enjoyed <%s>. What have you been watching?",
                     s->agents[s->played].name, s->titles[t[0]]);
        else
            snprintf(out, n, "Hi %s! Not much on my list lately. What have you been watching?",
                     s->agents[s->played].name);
    } else {
        int32_t g = sim_favourite_genre(s, b);
        if (nt > 1)
            snprintf(out, n, "Sounds good. People keep telling me about <%s>; I mostly go for %s.",
                     s->titles[t[1]], sim_genre_name(s, g));
        else
            snprintf(out, n, "Sounds good. I mostly go for %s myself.", sim_genre_name(s, g));
    }
}

int sim_play_chat(sim *s, int32_t b, const char *text, char **reply, int *ended, int *by,
                  rlab_err *err)
{
    *reply = NULL;
    *ended = 0;
    int32_t a = s->played;
    if (a < 0)
        return rlab_errf(err, RLAB_ESTATE, "no agent is played (simulator.play agent=N)");
    if (b < 0)
        b = s->play_chat_with;
    if (b < 0 || b >= s->n || b == a)
        return rlab_errf(err, RLAB_EINVAL, "chat with another agent (with=0..%d, not %d)",
                         (int)s->n - 1, (int)a);
    if (s->play_chat_with != b) {
        if (sim_watching(s, b))
            return rlab_errf(err, RLAB_ESTATE, "%s is watching a movie and cannot chat now",
                             s->agents[b].name);
        s->play_chat_with = b;
        s->play_chat_turns = 0;
        s->play_chat[0] = '\0';
        s->play_heard = s->play_said = -1;
    }
    int turn = ++s->play_chat_turns;
    int bye = says_goodbye(text);
    hear_titles(s, b, text, &s->play_said);
    /* the other side: the language model (a [SAY] or [GOODBYE] turn) or the offline turn */
    char ans[600] = "";
    int who = SIM_BY_OFFLINE;
    size_t cl = strlen(s->play_chat);
    snprintf(s->play_chat + cl, sizeof s->play_chat - cl, "[%s]: %s\n", s->agents[a].name, text);
    if (s->llm && s->cfg.use_llm) {
        char *h = sim_prompt_header(s, b);
        size_t cap = (h ? strlen(h) : 0) + sizeof s->play_chat + 1024;
        char *p = h ? rlab_malloc(cap) : NULL;
        if (p) {
            snprintf(p, cap,
                     "%sObservation: %s is chatting with %s. The conversation so far:\n%s"
                     "All occurrences of movie names should be enclosed with <>.\n"
                     "What does %s say next, in the first person? To go on, write:\n"
                     "[SAY]:: what %s says\nTo end the conversation, write:\n"
                     "[GOODBYE]:: what %s says\n",
                     h, s->agents[b].name, s->agents[a].name, s->play_chat, s->agents[b].name,
                     s->agents[b].name, s->agents[b].name);
            rlab_llm_msg m[2] = {{"system", "You are simulating a user of a movie recommender "
                                            "system talking with a friend. Stay in character "
                                            "and answer in the output format requested."},
                                 {"user", p}};
            rlab_llm_req rq = {.task = "recagent.chat",
                               .msgs = m,
                               .n_msgs = 2,
                               .opts = {.temperature = 0.0, .max_tokens = 256}};
            rlab_llm_result r = {0};
            rlab_err e = {0};
            if (rlab_llm_chat(s->llm, &rq, &r, &e) == RLAB_OK && r.text) {
                const char *g = strstr(r.text, "[GOODBYE]");
                const char *sy = strstr(r.text, "[SAY]");
                const char *t = g ? g + 9 : sy ? sy + 5 : NULL;
                if (t) {
                    while (*t == ':' || *t == ' ')
                        t++;
                    size_t l = strcspn(t, "\n");
                    snprintf(ans, sizeof ans, "%.*s", (int)(l < 590 ? l : 590), t);
                    who = SIM_BY_LLM;
                    if (g)
                        bye = 1;
                }
            }
            rlab_llm_result_clear(&r);
            if (who != SIM_BY_LLM)
                who = SIM_BY_FALLBACK;
        }
        rlab_free(p);
        rlab_free(h);
    }
    if (!ans[0])
        play_offline_reply(s, b, turn, bye, ans, sizeof ans);
    if (says_goodbye(ans))
        bye = 1;
    hear_titles(s, a, ans, &s->play_heard);
    cl = strlen(s->play_chat);
    snprintf(s->play_chat + cl, sizeof s->play_chat - cl, "[%s]: %s\n", s->agents[b].name, ans);
    /* the turn as an event of the played agent */
    jw w = {s->buf, 0, s->buf_cap};
    jw_lit(&w, "{\"action\":\"social\",\"do\":\"chat_turn\",\"with\":");
    jw_int(&w, b);
    jw_lit(&w, ",\"turn\":");
    jw_int(&w, turn);
    jw_lit(&w, ",\"said\":");
    jw_str(&w, text);
    jw_lit(&w, ",\"reply\":");
    jw_str(&w, ans);
    jw_lit(&w, ",\"reply_by\":\"");
    jw_cstr(&w, by_name(who));
    jw_lit(&w, "\",\"by\":\"human\"}");
    sim_emit(s, a, "chat_turn", s->buf);
    if (bye) {
        /* the whole chat as a "chat" event, like any agent's, and both sides remember it */
        double hours = 0.5 * (double)turn;
        if (hours > 2.0)
            hours = 2.0;
        s->agents[a].busy_until = fmax(s->agents[a].busy_until, s->vtime + hours);
        s->agents[b].busy_until = fmax(s->agents[b].busy_until, s->vtime + hours);
        s->agents[b].busy_kind = 2;
        jw c = {s->buf, 0, s->buf_cap};
        char num[32];
        int nn = snprintf(num, sizeof num, "%.1f", hours);
        jw_lit(&c, "{\"action\":\"social\",\"do\":\"chat\",\"with\":");
        jw_int(&c, b);
        jw_lit(&c, ",\"hours\":");
        jw_raw(&c, num, nn > 0 && (size_t)nn < sizeof num ? (size_t)nn : 0);
        jw_lit(&c, ",\"turns\":");
        jw_int(&c, turn);
        jw_lit(&c, ",\"text\":");
        jw_str(&c, s->play_chat);
        jw_lit(&c, ",\"by\":\"human\"}");
        sim_emit(s, a, "chat", s->buf);
        int32_t about = s->play_said >= 0 ? s->play_said : s->play_heard;
        sim_observe(s, a, SIM_M_CHAT, s->play_heard >= 0 ? s->play_heard : about, b, 0);
        sim_observe(s, b, SIM_M_CHAT, about, a, 0);
        s->play_chat_with = -1;
        *ended = 1;
    }
    if (by)
        *by = who;
    *reply = rlab_strdup(ans);
    if (!*reply)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    return RLAB_OK;
}
