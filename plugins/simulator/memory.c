/*
 * plugins/simulator/memory.c: RecAgent's memory (agents/recagent_memory.py), offline.
 *
 *   sensory     every observation gets an importance (raw 1..10, the offline rule below, in
 *               place of the LLM's score) and is kept only when raw/10 * 0.9 > 0.62, i.e.
 *               raw >= 7, as in RecAgent's SensoryMemory.
 *   short-term  capacity SIM_STM_CAP. A new observation with vector v enhances entry e when
 *               p = sigmoid(cos(v, e) + 0.1 [e is the newest]) >= 0.7 and U(0,1) <= p; an
 *               entry enhanced 3 times moves to long-term memory together with an insight
 *               (offline: "X likes <genre>", the genre with the most weight among the
 *               entry's and its enhancers' items). Over capacity, the entry with the lowest
 *               (importance, enhancement count) is dropped.
 *   long-term   SIM_LTM_CAP slots. Retrieval ranks live memories by recency 0.99^hours since
 *               last access + importance + relevance cos(query, memory) and refreshes the
 *               access time of the k returned.
 *   reflection  when the importance saved since the last reflection exceeds 1.0 (RecAgent's
 *               threshold 10 on the raw scale), the agent asks itself what it likes most
 *               (offline: the genre with the most importance-weighted mass over its live
 *               memories), stores the answer with the mean importance of its sources, and
 *               marks sources with sigmoid(cos(source, answer)) >= 0.72 as merged.
 *   forgetting  after every long-term save: for live memories last accessed more than 24 h
 *               ago, r = 0.99^hours, score = max(r^1.5, 0.01) (importance + r) / 2, and each
 *               is forgotten with probability (1 - score) / sum(1 - score) (the power-law
 *               rule of pause_to_forget).
 * Memory vectors are lookups: the item's text vector, the genre's vector for insights, a
 * phrase vector per kind otherwise (sim.c, setup_items), so nothing is encoded per step.
 */
#define SIM_INTERNAL
#include "sim.h"

#include <math.h>
#include <string.h>

const float *sim_mem_vec(const sim *s, const sim_mem *m)
{
    if (m->kind == SIM_M_INSIGHT || m->kind == SIM_M_REFLECT)
        return s->genre_vec + (size_t)m->aux * SIM_DIM;
    if (m->item >= 0)
        return s->item_vec + (size_t)m->item * SIM_DIM;
    return s->kind_vec[m->kind < SIM_M_KINDS ? m->kind : 0];
}

static float dotv(const float *a, const float *b)
{
    float d = 0.0f;
    for (int i = 0; i < SIM_DIM; i++)
        d += a[i] * b[i];
    return d;
}

static float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

int sim_importance(const sim *s, int32_t a, int kind, int32_t item, int aux)
{
    (void)aux;
    /* mirrors the importance prompt's rules: a movie watched or talked about is memorable,
     * entering a site or small talk is not */
    switch (kind) {
    case SIM_M_WATCH:
        return 8;
    case SIM_M_CHAT:
        return item >= 0 ? 8 : 5;
    case SIM_M_HEARD:
        return item >= 0 && sim_affinity(s, a, item) >= 0.5f * s->amax[a] ? 7 : 5;
    case SIM_M_POSTED:
        return 6;
    case SIM_M_VISIT:
        return 3;
    default:
        return 5;
    }
}

static float recency(const sim *s, const sim_mem *m)
{
    double h = s->vtime - (double)m->accessed;
    return expf((float)(h > 0 ? h : 0.0) * -0.01005034f); /* 0.99^h = e^(h ln 0.99) */
}

static void forget(sim *s, int32_t a, rlab_rng *r)
{
    sim_agent *ag = &s->agents[a];
    float w[SIM_LTM_CAP];
    float tot = 0.0f;
    for (int i = 0; i < ag->n_ltm; i++) {
        sim_mem *m = &ag->ltm[i];
        w[i] = 0.0f;
        if (m->state != SIM_MS_LIVE || s->vtime - (double)m->accessed <= 24.0)
            continue;
        float rr = recency(s, m);
        float sc = fmaxf(powf(rr, 1.5f), 0.01f) * (m->importance + rr) * 0.5f;
        w[i] = 1.0f - sc;
        tot += w[i];
    }
    if (!(tot > 0.0f))
        return;
    for (int i = 0; i < ag->n_ltm; i++)
        if (w[i] > 0.0f && rlab_rng_uniform(r) < w[i] / tot)
            ag->ltm[i].state = SIM_MS_FORGET;
}

static void ltm_insert(sim *s, int32_t a, const sim_mem *m)
{
    sim_agent *ag = &s->agents[a];
    int slot = -1;
    if (ag->n_ltm < SIM_LTM_CAP) {
        slot = ag->n_ltm++;
    } else {
        for (int i = 0; i < ag->n_ltm && slot < 0; i++)
            if (ag->ltm[i].state != SIM_MS_LIVE)
                slot = i;
        if (slot < 0) {
            float lo = 1e30f;
            for (int i = 0; i < ag->n_ltm; i++) {
                float sc = recency(s, &ag->ltm[i]) + ag->ltm[i].importance;
                if (sc < lo)
                    lo = sc, slot = i;
            }
        }
    }
    ag->ltm[slot] = *m;
    ag->ltm[slot].state = SIM_MS_LIVE;
    ag->ltm[slot].enh = 0;
}

static void reflect(sim *s, int32_t a)
{
    sim_agent *ag = &s->agents[a];
    float gw[256] = {0};
    for (int i = 0; i < ag->n_ltm; i++) {
        const sim_mem *m = &ag->ltm[i];
        if (m->state != SIM_MS_LIVE)
            continue;
        if (m->kind == SIM_M_INSIGHT || m->kind == SIM_M_REFLECT)
            gw[m->aux] += m->importance;
        else if (m->item >= 0 && !(m->kind == SIM_M_WATCH && !m->aux))
            for (int32_t g = 0; g < s->G; g++)
                gw[g] += m->importance * s->item_genre[(size_t)m->item * (size_t)s->G + (size_t)g];
    }
    int best = -1;
    for (int32_t g = 0; g < s->G; g++)
        if (gw[g] > 0.0f && (best < 0 || gw[g] > gw[best]))
            best = g;
    if (best < 0)
        return;
    float imp = 0.0f;
    int ns = 0;
    const float *gv = s->genre_vec + (size_t)best * SIM_DIM;
    for (int i = 0; i < ag->n_ltm; i++) {
        sim_mem *m = &ag->ltm[i];
        if (m->state != SIM_MS_LIVE || m->kind == SIM_M_REFLECT)
            continue;
        int cited =
            (m->kind == SIM_M_INSIGHT && m->aux == best) ||
            (m->item >= 0 && s->item_genre[(size_t)m->item * (size_t)s->G + (size_t)best] > 0.0f);
        if (!cited)
            continue;
        imp += m->importance;
        ns++;
        if (sigmoidf(dotv(sim_mem_vec(s, m), gv)) >= 0.72f)
            m->state = SIM_MS_MERGE;
    }
    float rimp = ns ? imp / (float)ns : 0.5f;
    /* the same conclusion again refreshes the old reflection instead of repeating it */
    for (int i = 0; i < ag->n_ltm; i++) {
        sim_mem *m = &ag->ltm[i];
        if (m->state == SIM_MS_LIVE && m->kind == SIM_M_REFLECT && m->aux == best) {
            m->accessed = (float)s->vtime;
            m->importance = fmaxf(m->importance, rimp);
            return;
        }
    }
    sim_mem r = {.created = (float)s->vtime,
                 .accessed = (float)s->vtime,
                 .importance = rimp,
                 .item = -1,
                 .other = -1,
                 .kind = SIM_M_REFLECT,
                 .aux = (uint8_t)best};
    ltm_insert(s, a, &r);
}

static void ltm_save(sim *s, int32_t a, const sim_mem *m, rlab_rng *r)
{
    sim_agent *ag = &s->agents[a];
    ltm_insert(s, a, m);
    ag->refl_acc += m->importance;
    if (ag->refl_acc > 1.0f) {
        ag->refl_acc = 0.0f;
        reflect(s, a);
    }
    forget(s, a, r);
}

static void promote(sim *s, int32_t a, int i, rlab_rng *r)
{
    sim_agent *ag = &s->agents[a];
    sim_mem e = ag->stm[i];
    /* insight: the genre with the most weight among the entry's and its enhancers' items */
    float gw[256] = {0};
    int32_t items[4] = {e.item, ag->stm_enh_items[i][0], ag->stm_enh_items[i][1],
                        ag->stm_enh_items[i][2]};
    for (int k = 0; k < 4; k++)
        if (items[k] >= 0)
            for (int32_t g = 0; g < s->G; g++)
                gw[g] += s->item_genre[(size_t)items[k] * (size_t)s->G + (size_t)g];
    int best = 0;
    for (int32_t g = 1; g < s->G; g++)
        if (gw[g] > gw[best])
            best = g;
    /* remove the entry from short-term memory */
    memmove(&ag->stm[i], &ag->stm[i + 1], (size_t)(ag->n_stm - i - 1) * sizeof ag->stm[0]);
    memmove(&ag->stm_enh_items[i], &ag->stm_enh_items[i + 1],
            (size_t)(ag->n_stm - i - 1) * sizeof ag->stm_enh_items[0]);
    ag->n_stm--;
    e.enh = 0;
    ltm_save(s, a, &e, r);
    if (gw[best] > 0.0f) {
        sim_mem in = {.created = (float)s->vtime,
                      .accessed = (float)s->vtime,
                      .importance = e.importance,
                      .item = -1,
                      .other = -1,
                      .kind = SIM_M_INSIGHT,
                      .aux = (uint8_t)best};
        ltm_save(s, a, &in, r);
    }
}

static void stm_add(sim *s, int32_t a, const sim_mem *m, rlab_rng *r)
{
    sim_agent *ag = &s->agents[a];
    const float *v = sim_mem_vec(s, m);
    for (int i = 0; i < ag->n_stm; i++) {
        sim_mem *e = &ag->stm[i];
        float cs = dotv(v, sim_mem_vec(s, e)) + (i == ag->n_stm - 1 ? 0.1f : 0.0f);
        float p = sigmoidf(cs);
        if (p >= 0.7f && rlab_rng_uniform(r) <= p) {
            if (e->enh < 3)
                ag->stm_enh_items[i][e->enh] = m->item;
            e->enh++;
            if (e->enh >= 3) {
                promote(s, a, i, r);
                i--;
            }
        }
    }
    if (ag->n_stm == SIM_STM_CAP) {
        int lo = 0;
        for (int i = 1; i < ag->n_stm; i++)
            if (ag->stm[i].importance < ag->stm[lo].importance ||
                (!(ag->stm[i].importance > ag->stm[lo].importance) &&
                 ag->stm[i].enh < ag->stm[lo].enh))
                lo = i;
        memmove(&ag->stm[lo], &ag->stm[lo + 1], (size_t)(ag->n_stm - lo - 1) * sizeof ag->stm[0]);
        memmove(&ag->stm_enh_items[lo], &ag->stm_enh_items[lo + 1],
                (size_t)(ag->n_stm - lo - 1) * sizeof ag->stm_enh_items[0]);
        ag->n_stm--;
    }
    ag->stm[ag->n_stm] = *m;
    ag->stm[ag->n_stm].enh = 0;
    ag->stm_enh_items[ag->n_stm][0] = ag->stm_enh_items[ag->n_stm][1] =
        ag->stm_enh_items[ag->n_stm][2] = -1;
    ag->n_stm++;
}

void sim_observe(sim *s, int32_t a, int kind, int32_t item, int32_t other, int aux)
{
    int raw = sim_importance(s, a, kind, item, aux);
    if (!((float)raw / 10.0f * 0.9f > 0.62f))
        return; /* below the sensory threshold */
    sim_agent *ag = &s->agents[a];
    rlab_rng r;
    sim_rng(s, SIM_PH_MEM, s->round, a, ag->n_obs++, &r);
    sim_mem m = {.created = (float)s->vtime,
                 .accessed = (float)s->vtime,
                 .importance = (float)raw / 10.0f,
                 .item = item,
                 .other = other,
                 .kind = (uint8_t)kind,
                 .aux = (uint8_t)aux};
    stm_add(s, a, &m, &r);
}

int sim_retrieve(sim *s, int32_t a, const float *qv, int k, int *idx)
{
    sim_agent *ag = &s->agents[a];
    if (!qv)
        qv = s->taste_vec + (size_t)a * SIM_DIM;
    float best[SIM_LTM_CAP];
    int n = 0;
    for (int i = 0; i < ag->n_ltm; i++) {
        const sim_mem *m = &ag->ltm[i];
        if (m->state != SIM_MS_LIVE)
            continue;
        float sc = recency(s, m) + m->importance + dotv(qv, sim_mem_vec(s, m));
        int pos;
        if (n < k)
            pos = n++;
        else if (sc > best[k - 1])
            pos = k - 1;
        else
            continue;
        while (pos > 0 && sc > best[pos - 1]) {
            best[pos] = best[pos - 1];
            idx[pos] = idx[pos - 1];
            pos--;
        }
        best[pos] = sc;
        idx[pos] = i;
    }
    for (int i = 0; i < n; i++)
        ag->ltm[idx[i]].accessed = (float)s->vtime;
    return n;
}
