/*
 * plugins/simulator/shard.c: the simulation over MPI ranks (base/mpi.h), two ways.
 *
 * Partitioned (cfg.partition on; the default under `mpirun -np N`, N > 1): rank r owns the
 * agents [part_lo, part_hi) (rlab_mpi_shard) and steps only them: their activity draws, their
 * decisions (the offline policy or the language model), their recommender visits (the model
 * scores only this rank's visitors) and their social actions. The state a round changes
 * (agents, genre counts, shown items, follow-edge times) is written only by its owner. At the
 * round boundary:
 *   - the activity cap (max_active) is applied over every rank's candidates (all-gather of
 *     their positions in the activity order);
 *   - after the visits, who is watching (all-gather of the watchers' ids): social decisions and
 *     chats read it for their friends;
 *   - a chat reads its partner's titles as they stood after the visits (asked of the partner's
 *     owner: two MPI_Alltoallv, request and answer); what a chat does to the partner (hears
 *     the titles, is busy, remembers it) and what a post does to the followers (hear of the
 *     title, remember it) are messages, exchanged with MPI_Alltoallv and applied by the owners
 *     at the round's end in the activity order of the senders;
 *   - the round's events go to rank 0 (it alone has the store), which writes them in the
 *     one-process order (phase, activity position, emission order); the watches (interaction
 *     log for retraining, satisfaction sums) and the exposure rows (coverage, entropies) go to
 *     every rank and are used in that order; counters and sums are all-reduced.
 * So the statistics, the events and every agent's state are those of one process with
 * partition=on, whatever N (tests/mpi sim), up to the order of one floating-point sum (the mean
 * watch entropy, summed per rank: ~1e-16). partition=on differs from the default one-process
 * simulation in one point: social effects on other agents arrive at the round's end, not at
 * once (a chat later in the same round sees its partner's titles from before the round's
 * social actions). A step call ends by gathering every agent to every rank (commands between
 * steps, interviews, edits, branches, read any agent); a checkpoint gathers them to rank 0.
 *
 * Replicated (partition=off; swap_k needs it): every rank holds the whole simulation and
 * steps the same rounds; each batch of decisions is cut into N contiguous shards, rank r
 * decides shard r, and the answers are all-gathered so that every rank applies every decision
 * in the one-process order: the default one-process simulation, event for event.
 *
 * Not done: memory is still allocated for every agent on every rank (non-owned blocks are only
 * written by the gather at a step's end), the partition is static (no rebalancing), and a
 * language-model backend is asked in step batches, not pipelined, when partitioned.
 */
#define SIM_INTERNAL
#include "sim.h"

#include "base/mpi.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* one answer on the wire: choice, target, hours, liked, by, text length, then the text */
typedef struct wire {
    int32_t choice, target;
    float hours;
    int32_t liked;
    int32_t by;
    int32_t ntext; /* -1 = NULL */
} wire;

int sim_decide_all(sim *s, sim_dec *d, int n, rlab_err *err)
{
    const int P = rlab_mpi_size();
    /* partitioned: the decisions of this rank's own agents, no exchange (the ranks' batches
     * differ in number; a rank that fails ends the job, main's MPI_Abort) */
    if (P == 1 || n <= 0 || s->part)
        return sim_decide(s, d, n, err);
    int64_t lo, hi;
    rlab_mpi_shard(n, &lo, &hi);
    const int64_t c0 = s->acc_llm_calls, f0 = s->acc_llm_fallbacks, d0 = s->acc_llm_decisions;
    int rc = sim_decide(s, d + lo, (int)(hi - lo), err);
    /* in step: a failure anywhere fails every rank */
    int64_t st[5] = {rc, s->acc_llm_calls - c0, s->acc_llm_fallbacks - f0,
                     s->acc_llm_decisions - d0, s->llm_down};
    rlab_err e2 = {0};
    if (rlab_mpi_allreduce_i64(st, 5, RLAB_MPI_MAX, &e2) == RLAB_OK && st[0] == 0) {
        int64_t sums[3] = {s->acc_llm_calls - c0, s->acc_llm_fallbacks - f0,
                           s->acc_llm_decisions - d0};
        if (rlab_mpi_allreduce_i64(sums, 3, RLAB_MPI_SUM, &e2) == RLAB_OK) {
            s->acc_llm_calls = c0 + sums[0];
            s->acc_llm_fallbacks = f0 + sums[1];
            s->acc_llm_decisions = d0 + sums[2];
            s->llm_down = (int)st[4];
        }
    }
    if (rc)
        return rc;
    if (e2.code) {
        *err = e2;
        return e2.code;
    }
    if (st[0])
        return rlab_errf(err, (int)st[0], "simulator: a decision failed on another MPI rank");
    size_t bytes = 0;
    for (int64_t k = lo; k < hi; k++)
        bytes += sizeof(wire) + (d[k].text ? strlen(d[k].text) : 0);
    unsigned char *buf = rlab_malloc(bytes + 1), *q = buf;
    int64_t *cnt = rlab_malloc(2 * (size_t)P * sizeof *cnt);
    void *all = NULL;
    if (!buf || !cnt) {
        rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
        goto out;
    }
    for (int64_t k = lo; k < hi; k++) {
        wire w = {d[k].choice, d[k].target, d[k].hours,
                  d[k].liked,  d[k].by,     d[k].text ? (int32_t)strlen(d[k].text) : -1};
        memcpy(q, &w, sizeof w);
        q += sizeof w;
        if (w.ntext > 0) {
            memcpy(q, d[k].text, (size_t)w.ntext);
            q += w.ntext;
        }
    }
    if ((rc = rlab_mpi_allgatherv(buf, (int64_t)bytes, &all, cnt, cnt + P, err)))
        goto out;
    /* the other ranks' answers, in decision order (rank r holds shard r) */
    const unsigned char *p = all;
    for (int64_t k = 0; k < n; k++) {
        wire w;
        memcpy(&w, p, sizeof w);
        p += sizeof w;
        if (k < lo || k >= hi) {
            d[k].choice = w.choice;
            d[k].target = w.target;
            d[k].hours = w.hours;
            d[k].liked = w.liked;
            d[k].by = (uint8_t)w.by;
            rlab_free(d[k].text);
            d[k].text = NULL;
            if (w.ntext >= 0) {
                d[k].text = rlab_malloc((size_t)w.ntext + 1);
                if (!d[k].text) {
                    rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
                    goto out;
                }
                memcpy(d[k].text, p, (size_t)w.ntext);
                d[k].text[w.ntext] = '\0';
            }
        }
        p += w.ntext > 0 ? w.ntext : 0;
    }
out:
    rlab_free(all);
    rlab_free(cnt);
    rlab_free(buf);
    return rc;
}

/* ==== the partitioned round ============================================================ */

/* Round buffers of the partition (sim->sh). */
typedef struct sh_ev { /* an event of the round, on the wire */
    int32_t phase, pos, seq, agent, klen, plen;
} sh_ev;
typedef struct sh_msg { /* a social effect on another agent, delivered at the round's end */
    int32_t to, pos, sub, type, from, n, item[2], mem;
    double hours; /* a chat's duration */
} sh_msg;

struct sim_shard {
    int32_t *pos_of; /* [n] agent -> position in this round's activity order */
    uint8_t *watch;  /* [n] watching after the visits (every agent's, exchanged) */
    int phase;       /* event phase of the next sim_emit (SIM_EV_*) */
    int step;        /* page step of the next watch */
    int buffering;   /* 1 while one_round runs: events are kept, not written */
    unsigned char *ev;
    size_t ev_len, ev_cap;
    int32_t ev_seq;
    int32_t (*w)[4]; /* watches: step, pos, agent, item */
    int64_t nw, capw;
    int64_t *expo_key; /* [cap_expo] (step, pos) of each exposure row */
    sh_msg *m;
    int64_t nm, capm;
    double hsum; /* watch entropy partial sums */
    int64_t hn;
    int poison; /* $RECLAB_SIM_POISON (tests): other ranks' agents scrambled every round */
};

static int grow(void **p, int64_t *cap, int64_t need, size_t esz)
{
    if (need <= *cap)
        return RLAB_OK;
    int64_t c = *cap ? *cap : 256;
    while (c < need)
        c *= 2;
    void *q = rlab_realloc(*p, (size_t)c * esz);
    if (!q)
        return RLAB_ENOMEM;
    *p = q;
    *cap = c;
    return RLAB_OK;
}

int sim_shard_setup(sim *s, rlab_err *err)
{
    int P = rlab_mpi_size();
    int on = s->cfg.partition == SIM_PART_ON ||
             (s->cfg.partition == SIM_PART_AUTO && P > 1 && s->cfg.swap_k == 0);
    if (on && s->cfg.swap_k > 0)
        return rlab_errf(err, RLAB_EINVAL,
                         "simulator: partition=on cannot run the swap_k intervention (it pairs "
                         "visitors of different ranks); use partition=off");
    if (!on) {
        if (P > 1)
            rlab_log(RLAB_LOG_INFO,
                     "simulator: agents replicated on the %d ranks (decisions "
                     "shared out)",
                     P);
        return RLAB_OK;
    }
    struct sim_shard *h = rlab_calloc(1, sizeof *h);
    if (!h)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    h->pos_of = rlab_malloc((size_t)s->n * sizeof(int32_t));
    h->watch = rlab_calloc((size_t)s->n, 1);
    h->expo_key = rlab_malloc((size_t)s->cap_expo * sizeof(int64_t));
    s->sh = h;
    if (!h->pos_of || !h->watch || !h->expo_key)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    int64_t lo, hi;
    rlab_mpi_shard(s->n, &lo, &hi);
    s->part_lo = (int32_t)lo;
    s->part_hi = (int32_t)hi;
    s->part = 1;
    const char *pz = getenv("RECLAB_SIM_POISON");
    h->poison = P > 1 && pz && *pz && strcmp(pz, "0") != 0;
    if (P > 1)
        rlab_log(RLAB_LOG_INFO, "simulator: agents partitioned over %d ranks (this rank: %d..%d)",
                 P, (int)lo, (int)hi - 1);
    return RLAB_OK;
}

void sim_shard_free(sim *s)
{
    struct sim_shard *h = s->sh;
    if (!h)
        return;
    rlab_free(h->pos_of);
    rlab_free(h->watch);
    rlab_free(h->ev);
    rlab_free(h->w);
    rlab_free(h->expo_key);
    rlab_free(h->m);
    rlab_free(h);
    s->sh = NULL;
}

/* The test of "a round reads only this rank's agents": with $RECLAB_SIM_POISON, the copies of
 * the other ranks' agents (what a round changes: everything after the profile, genre counts,
 * shown items, follow-edge times) are scrambled before every round; the gather at the step's
 * end restores them. tests/mpi sim runs 2 ranks so and expects the 1-process events. */
static void poison_others(sim *s)
{
    const size_t head = offsetof(sim_agent, busy_kind), G = (size_t)s->G;
    for (int32_t a = 0; a < s->n; a++) {
        if (a >= s->part_lo && a < s->part_hi)
            continue;
        memset((char *)&s->agents[a] + head, 0x5a, sizeof(sim_agent) - head);
        memset(s->shown + (size_t)a * s->shown_row, 0xff, s->shown_row);
        for (size_t g = 0; g < G; g++)
            s->gcount[(size_t)a * G + g] = 1e30f;
        for (int64_t e = s->fo_off[a]; e < s->fo_off[a + 1]; e++)
            s->fo_last[e] = 1e30f;
    }
}

void sim_shard_round_begin(sim *s)
{
    struct sim_shard *h = s->sh;
    if (h->poison)
        poison_others(s);
    for (int32_t k = 0; k < s->n; k++)
        h->pos_of[s->order[k]] = k;
    h->ev_len = 0;
    h->ev_seq = 0;
    h->nw = h->nm = 0;
    h->hsum = 0.0;
    h->hn = 0;
    h->phase = SIM_EV_VISIT;
    h->buffering = 1;
}

void sim_shard_round_done(sim *s)
{
    if (s->sh)
        s->sh->buffering = 0;
}

void sim_shard_phase(sim *s, int phase)
{
    if (s->sh)
        s->sh->phase = phase;
}

void sim_shard_step(sim *s, int step)
{
    if (s->sh)
        s->sh->step = step;
}

/* The activity cap over the ranks: active[0..*na) are this rank's agents that drew active, in
 * activity order; only the first max_active of all ranks' (by position) stay active, the
 * others count a round without action. */
int sim_shard_cap(sim *s, int32_t *na, rlab_err *err)
{
    struct sim_shard *h = s->sh;
    int32_t cap = s->cfg.max_active;
    int32_t cut = INT32_MAX; /* positions >= cut are capped */
    if (cap > 0) {
        const int P = rlab_mpi_size();
        int32_t *mine = rlab_malloc(((size_t)*na + 1) * sizeof *mine);
        int64_t *cnt = rlab_malloc(2 * (size_t)P * sizeof *cnt);
        void *all = NULL;
        int rc = mine && cnt ? RLAB_OK : rlab_errf(err, RLAB_ENOMEM, "out of memory");
        for (int32_t k = 0; rc == RLAB_OK && k < *na; k++)
            mine[k] = h->pos_of[s->active[k]];
        if (rc == RLAB_OK)
            rc = rlab_mpi_allgatherv(mine, (int64_t)*na * (int64_t)sizeof *mine, &all, cnt, cnt + P,
                                     err);
        if (rc == RLAB_OK) {
            int64_t m = (cnt[P - 1] + cnt[2 * P - 1]) / (int64_t)sizeof(int32_t);
            if (m > cap) { /* the cap-th smallest position: count passes per position */
                uint8_t *hit = rlab_calloc((size_t)s->n, 1);
                if (!hit) {
                    rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
                } else {
                    const int32_t *p = all;
                    for (int64_t k = 0; k < m; k++)
                        hit[p[k]] = 1;
                    int32_t c = 0;
                    for (int32_t q = 0; q < s->n; q++)
                        if (hit[q] && c++ == cap) {
                            cut = q;
                            break;
                        }
                    rlab_free(hit);
                }
            }
        }
        rlab_free(all);
        rlab_free(cnt);
        rlab_free(mine);
        if (rc)
            return rc;
    }
    int32_t kept = 0;
    for (int32_t k = 0; k < *na; k++) {
        int32_t a = s->active[k];
        if (h->pos_of[a] < cut) {
            s->agents[a].no_action = 0;
            s->active[kept++] = a;
        } else {
            s->agents[a].no_action++;
        }
    }
    *na = kept;
    return RLAB_OK;
}

int sim_shard_buffering(const sim *s) { return s->sh && s->sh->buffering; }

void sim_shard_event(sim *s, int32_t agent, const char *kind, const char *payload)
{
    struct sim_shard *h = s->sh;
    size_t kl = strlen(kind), pl = strlen(payload), need = h->ev_len + sizeof(sh_ev) + kl + pl;
    if (need > h->ev_cap) {
        size_t c = h->ev_cap ? h->ev_cap : 4096;
        while (c < need)
            c *= 2;
        unsigned char *p = rlab_realloc(h->ev, c);
        if (!p) {
            rlab_log(RLAB_LOG_WARN, "simulator: event not kept: out of memory");
            return;
        }
        h->ev = p;
        h->ev_cap = c;
    }
    sh_ev e = {h->phase,   agent >= 0 ? h->pos_of[agent] : -1, h->ev_seq++, agent, (int32_t)kl,
               (int32_t)pl};
    memcpy(h->ev + h->ev_len, &e, sizeof e);
    memcpy(h->ev + h->ev_len + sizeof e, kind, kl);
    memcpy(h->ev + h->ev_len + sizeof e + kl, payload, pl);
    h->ev_len = need;
}

void sim_shard_watch(sim *s, int32_t a, int32_t item)
{
    struct sim_shard *h = s->sh;
    if (grow((void **)&h->w, &h->capw, h->nw + 1, sizeof *h->w)) {
        rlab_log(RLAB_LOG_WARN, "simulator: watch not logged: out of memory");
        return;
    }
    int32_t *w = h->w[h->nw++];
    w[0] = h->step, w[1] = h->pos_of[a], w[2] = a, w[3] = item;
}

void sim_shard_expo(sim *s, int64_t row, int32_t a, int step)
{
    s->sh->expo_key[row] = ((int64_t)step << 32) | (int64_t)s->sh->pos_of[a];
}

int sim_owned(const sim *s, int32_t *lo, int32_t *hi)
{
    *lo = s->part ? s->part_lo : 0;
    *hi = s->part ? s->part_hi : s->n;
    return s->part;
}

int sim_owner(const sim *s, int32_t a)
{
    const int64_t P = rlab_mpi_size(), q = s->n / P, r = s->n % P;
    if (!s->part || P == 1)
        return 0;
    return (int)(a < r * (q + 1) ? a / (q + 1) : r + (a - r * (q + 1)) / q);
}

int sim_watching(const sim *s, int32_t b)
{
    if (s->sh && s->sh->buffering)
        return s->sh->watch[b];
    return s->agents[b].busy_kind == 1 && s->agents[b].busy_until > s->vtime;
}

/* Who is watching, after the visits: every rank's watchers to every rank (social decisions
 * and chats read it for their friends). */
int sim_shard_watching(sim *s, rlab_err *err)
{
    struct sim_shard *h = s->sh;
    const int P = rlab_mpi_size();
    int32_t *mine = rlab_malloc(((size_t)(s->part_hi - s->part_lo) + 1) * sizeof *mine);
    int64_t *cnt = rlab_malloc(2 * (size_t)P * sizeof *cnt);
    void *all = NULL;
    int rc = mine && cnt ? RLAB_OK : rlab_errf(err, RLAB_ENOMEM, "out of memory");
    int64_t k = 0;
    h->buffering = 0; /* sim_watching reads the agents themselves */
    for (int32_t a = s->part_lo; rc == RLAB_OK && a < s->part_hi; a++)
        if (sim_watching(s, a))
            mine[k++] = a;
    h->buffering = 1;
    if (rc == RLAB_OK)
        rc = rlab_mpi_allgatherv(mine, k * (int64_t)sizeof *mine, &all, cnt, cnt + P, err);
    if (rc == RLAB_OK) {
        memset(h->watch, 0, (size_t)s->n);
        int64_t m = (cnt[P - 1] + cnt[2 * P - 1]) / (int64_t)sizeof(int32_t);
        const int32_t *p = all;
        for (int64_t q = 0; q < m; q++)
            h->watch[p[q]] = 1;
    }
    rlab_free(all);
    rlab_free(cnt);
    rlab_free(mine);
    return rc;
}

/* Chat partners' titles: cards[k] = {count, title0, title1} of partner b[k] as it stands
 * after the visits, before any social effect (asked of b's owner). */
int sim_shard_cards(sim *s, const int32_t *b, int n, int (*titles)(const sim *, int32_t, int32_t *),
                    int32_t (*cards)[3], rlab_err *err)
{
    const int P = rlab_mpi_size();
    int64_t *sc = rlab_calloc(4 * (size_t)P, sizeof *sc), *rcn = sc + P, *ro = sc + 2 * P,
            *so = sc + 3 * P;
    int32_t *req = rlab_malloc(((size_t)n + 1) * sizeof *req);
    int32_t *idx = rlab_malloc(((size_t)n + 1) * sizeof *idx);
    void *got = NULL, *ans = NULL;
    int32_t(*rep)[3] = NULL;
    int rc = sc && req && idx ? RLAB_OK : rlab_errf(err, RLAB_ENOMEM, "out of memory");
    if (rc)
        goto out;
    /* requests grouped by owner rank (ranks own contiguous blocks, in order) */
    int64_t q = 0;
    for (int r = 0; r < P; r++) {
        so[r] = q;
        for (int k = 0; k < n; k++)
            if (sim_owner(s, b[k]) == r)
                idx[q] = k, req[q++] = b[k];
        sc[r] = (q - so[r]) * (int64_t)sizeof(int32_t);
    }
    if ((rc = rlab_mpi_alltoallv(req, sc, &got, rcn, ro, err)))
        goto out;
    int64_t m = (ro[P - 1] + rcn[P - 1]) / (int64_t)sizeof(int32_t);
    rep = rlab_malloc(((size_t)m + 1) * sizeof *rep);
    if (!rep) {
        rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
        goto out;
    }
    const int32_t *g = got;
    for (int64_t k = 0; k < m; k++) {
        rep[k][1] = rep[k][2] = -1;
        rep[k][0] = titles(s, g[k], &rep[k][1]);
    }
    for (int r = 0; r < P; r++)
        rcn[r] = rcn[r] / (int64_t)sizeof(int32_t) * (int64_t)sizeof *rep;
    if ((rc = rlab_mpi_alltoallv(rep, rcn, &ans, sc, ro, err)))
        goto out;
    /* answers come back grouped by rank in the order asked: the order of req */
    const int32_t(*a)[3] = ans;
    for (int64_t k = 0; k < q; k++)
        memcpy(cards[idx[k]], a[k], sizeof cards[0]);
out:
    rlab_free(ans);
    rlab_free(rep);
    rlab_free(got);
    rlab_free(idx);
    rlab_free(req);
    rlab_free(sc);
    return rc;
}

void sim_shard_msg(sim *s, int type, int32_t to, int32_t from, int32_t sub, const int32_t *items,
                   int n, int32_t mem, double hours)
{
    struct sim_shard *h = s->sh;
    if (grow((void **)&h->m, &h->capm, h->nm + 1, sizeof *h->m)) {
        rlab_log(RLAB_LOG_WARN, "simulator: message not sent: out of memory");
        return;
    }
    sh_msg *m = &h->m[h->nm++];
    *m = (sh_msg){.to = to,
                  .pos = h->pos_of[from],
                  .sub = sub,
                  .type = type,
                  .from = from,
                  .n = n,
                  .item = {n > 0 ? items[0] : -1, n > 1 ? items[1] : -1},
                  .mem = mem,
                  .hours = hours};
}

static int msg_cmp(const void *pa, const void *pb)
{
    const sh_msg *a = pa, *b = pb;
    if (a->pos != b->pos)
        return a->pos < b->pos ? -1 : 1;
    return a->sub < b->sub ? -1 : a->sub > b->sub;
}

/* The round's messages to their owners (MPI_Alltoallv), applied there in activity order of
 * the senders: a chat partner hears the titles, is busy and remembers the chat; a follower
 * hears of the posted title and remembers the post. */
int sim_shard_deliver(sim *s, rlab_err *err)
{
    struct sim_shard *h = s->sh;
    const int P = rlab_mpi_size();
    int64_t *sc = rlab_calloc(3 * (size_t)P, sizeof *sc), *rcn = sc + P, *ro = sc + 2 * P;
    sh_msg *out = rlab_malloc(((size_t)h->nm + 1) * sizeof *out);
    void *got = NULL;
    int rc = sc && out ? RLAB_OK : rlab_errf(err, RLAB_ENOMEM, "out of memory");
    if (rc)
        goto done;
    int64_t q = 0;
    for (int r = 0; r < P; r++) {
        int64_t q0 = q;
        for (int64_t k = 0; k < h->nm; k++)
            if (sim_owner(s, h->m[k].to) == r)
                out[q++] = h->m[k];
        sc[r] = (q - q0) * (int64_t)sizeof *out;
    }
    if ((rc = rlab_mpi_alltoallv(out, sc, &got, rcn, ro, err)))
        goto done;
    int64_t m = (ro[P - 1] + rcn[P - 1]) / (int64_t)sizeof(sh_msg);
    sh_msg *in = got;
    qsort(in, (size_t)m, sizeof *in, msg_cmp);
    for (int64_t k = 0; k < m; k++) {
        const sh_msg *x = &in[k];
        sim_agent *ag = &s->agents[x->to];
        if (x->type == SIM_MSG_CHAT) {
            for (int t = 0; t < x->n; t++)
                sim_hear(s, x->to, x->item[t]);
            double until = s->vtime + x->hours;
            ag->busy_until = fmax(ag->busy_until, until);
            ag->busy_kind = 2;
            ag->unshared = 0;
            sim_observe(s, x->to, SIM_M_CHAT, x->mem, x->from, 0);
        } else {
            sim_hear(s, x->to, x->item[0]);
            sim_observe(s, x->to, SIM_M_HEARD, x->item[0], x->from, 0);
        }
    }
done:
    rlab_free(got);
    rlab_free(out);
    rlab_free(sc);
    h->nm = 0;
    return rc;
}

typedef struct sh_ref {
    sh_ev e;
    int rank;
    const char *p; /* kind then payload */
} sh_ref;

static int ev_cmp(const void *pa, const void *pb)
{
    const sh_ref *a = pa, *b = pb;
    if (a->e.phase != b->e.phase)
        return a->e.phase < b->e.phase ? -1 : 1;
    if (a->e.pos != b->e.pos)
        return a->e.pos < b->e.pos ? -1 : 1;
    if (a->rank != b->rank)
        return a->rank < b->rank ? -1 : 1;
    return a->e.seq < b->e.seq ? -1 : a->e.seq > b->e.seq;
}

/* The round's events to rank 0 (which alone has the store), written there in the
 * one-process order: phase, then activity position, then emission order. */
static int flush_events(sim *s, rlab_err *err)
{
    struct sim_shard *h = s->sh;
    const int P = rlab_mpi_size();
    int64_t *c = rlab_calloc(3 * (size_t)P, sizeof *c), *rcn = c + P, *ro = c + 2 * P;
    void *got = NULL;
    sh_ref *ref = NULL;
    char *kb = NULL;
    if (!c)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    static const unsigned char none[1];
    c[0] = (int64_t)h->ev_len;
    int rc = rlab_mpi_alltoallv(h->ev ? h->ev : none, c, &got, rcn, ro, err);
    if (rc || rlab_mpi_rank() != 0)
        goto out;
    int64_t n = 0, total = ro[P - 1] + rcn[P - 1];
    for (int64_t o = 0; o < total; n++) {
        sh_ev e;
        memcpy(&e, (char *)got + o, sizeof e);
        o += (int64_t)sizeof e + e.klen + e.plen;
    }
    ref = rlab_malloc(((size_t)n + 1) * sizeof *ref);
    kb = rlab_malloc((size_t)total + 2 * (size_t)n + 1);
    if (!ref || !kb) {
        rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
        goto out;
    }
    n = 0;
    for (int r = 0; r < P; r++)
        for (int64_t o = ro[r]; o < ro[r] + rcn[r]; n++) {
            memcpy(&ref[n].e, (char *)got + o, sizeof ref[n].e);
            ref[n].rank = r;
            ref[n].p = (const char *)got + o + sizeof(sh_ev);
            o += (int64_t)sizeof(sh_ev) + ref[n].e.klen + ref[n].e.plen;
        }
    qsort(ref, (size_t)n, sizeof *ref, ev_cmp);
    for (int64_t k = 0; k < n; k++) {
        sh_ev e = ref[k].e;
        const char *src = ref[k].p;
        char *kind = kb, *pay = kb + e.klen + 1; /* NUL-terminated copies */
        memcpy(kind, src, (size_t)e.klen);
        kind[e.klen] = '\0';
        memcpy(pay, src + e.klen, (size_t)e.plen);
        pay[e.plen] = '\0';
        sim_emit(s, e.agent, kind, pay);
    }
out:
    rlab_free(kb);
    rlab_free(ref);
    rlab_free(got);
    rlab_free(c);
    return rc;
}

static int w_cmp(const void *pa, const void *pb)
{
    const int32_t *a = pa, *b = pb;
    if (a[0] != b[0])
        return a[0] < b[0] ? -1 : 1;
    return a[1] < b[1] ? -1 : a[1] > b[1];
}

static int key_cmp(const void *pa, const void *pb)
{
    int64_t a, b;
    memcpy(&a, pa, sizeof a);
    memcpy(&b, pb, sizeof b);
    return a < b ? -1 : a > b;
}

/* Every rank's watches, in the one-process order (page step, then activity position): the
 * interaction log and the satisfaction sums; every rank's exposure rows likewise. */
static int gather_watches(sim *s, double *sat, double *chance, rlab_err *err)
{
    struct sim_shard *h = s->sh;
    const int P = rlab_mpi_size(), PS = s->cfg.page_size;
    int64_t *c = rlab_malloc(2 * (size_t)P * sizeof *c);
    void *got = NULL;
    unsigned char *rows = NULL;
    if (!c)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    int rc = rlab_mpi_allgatherv(h->w, h->nw * (int64_t)sizeof *h->w, &got, c, c + P, err);
    if (rc)
        goto out;
    int64_t m = (c[P - 1] + c[2 * P - 1]) / (int64_t)sizeof *h->w;
    int32_t(*w)[4] = got;
    qsort(w, (size_t)m, sizeof *w, w_cmp);
    for (int64_t k = 0; k < m; k++)
        sim_watch_global(s, w[k][2], w[k][3], sat, chance);
    rlab_free(got);
    got = NULL;
    /* exposure rows: key, agent, page */
    const size_t rs = sizeof(int64_t) + sizeof(int32_t) * (1 + (size_t)PS);
    rows = rlab_malloc((size_t)s->n_expo * rs + 1);
    if (!rows) {
        rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
        goto out;
    }
    for (int64_t x = 0; x < s->n_expo; x++) {
        unsigned char *r = rows + (size_t)x * rs;
        memcpy(r, &h->expo_key[x], sizeof(int64_t));
        memcpy(r + 8, &s->expo_agent[x], sizeof(int32_t));
        memcpy(r + 12, s->expo + (size_t)x * (size_t)PS, (size_t)PS * sizeof(int32_t));
    }
    if ((rc = rlab_mpi_allgatherv(rows, s->n_expo * (int64_t)rs, &got, c, c + P, err)))
        goto out;
    m = (c[P - 1] + c[2 * P - 1]) / (int64_t)rs;
    if (m > s->cap_expo)
        m = s->cap_expo;
    qsort(got, (size_t)m, rs, key_cmp);
    for (int64_t x = 0; x < m; x++) {
        const unsigned char *r = (const unsigned char *)got + (size_t)x * rs;
        memcpy(&s->expo_agent[x], r + 8, sizeof(int32_t));
        memcpy(s->expo + (size_t)x * (size_t)PS, r + 12, (size_t)PS * sizeof(int32_t));
    }
    s->n_expo = m;
out:
    rlab_free(rows);
    rlab_free(got);
    rlab_free(c);
    return rc;
}

/* The mentioned titles of every rank, summed (sparse: item, count). */
static int sum_mentions(sim *s, rlab_err *err)
{
    const int P = rlab_mpi_size();
    int64_t nz = 0;
    for (int32_t i = 0; i < s->n_items; i++)
        nz += s->mentions[i] != 0;
    int32_t(*pr)[2] = rlab_malloc(((size_t)nz + 1) * sizeof *pr);
    int64_t *c = rlab_malloc(2 * (size_t)P * sizeof *c);
    void *got = NULL;
    int rc = pr && c ? RLAB_OK : rlab_errf(err, RLAB_ENOMEM, "out of memory");
    nz = 0;
    for (int32_t i = 0; rc == RLAB_OK && i < s->n_items; i++)
        if (s->mentions[i]) {
            pr[nz][0] = i, pr[nz++][1] = s->mentions[i];
            s->mentions[i] = 0;
        }
    if (rc == RLAB_OK)
        rc = rlab_mpi_allgatherv(pr, nz * (int64_t)sizeof *pr, &got, c, c + P, err);
    if (rc == RLAB_OK) {
        int64_t m = (c[P - 1] + c[2 * P - 1]) / (int64_t)sizeof *pr;
        const int32_t(*g)[2] = got;
        for (int64_t k = 0; k < m; k++)
            s->mentions[g[k][0]] += g[k][1];
    }
    rlab_free(got);
    rlab_free(c);
    rlab_free(pr);
    return rc;
}

int sim_shard_round_end(sim *s, sim_stats *st, double *sat, double *chance, double *hsum,
                        int64_t *hn, rlab_err *err)
{
    struct sim_shard *h = s->sh;
    h->buffering = 0;
    int rc = flush_events(s, err);
    if (rc == RLAB_OK)
        rc = gather_watches(s, sat, chance, err);
    if (rc == RLAB_OK)
        rc = sum_mentions(s, err);
    if (rc)
        return rc;
    int64_t v[16 + SIM_LLM_NKINDS];
    int32_t *f[] = {&st->active,         &st->visits,   &st->watches,    &st->rec_watches,
                    &st->search_watches, &st->searches, &st->chats,      &st->posts,
                    &st->nothing,        &st->busy,     &st->impressions};
    const int nf = (int)(sizeof f / sizeof f[0]);
    for (int k = 0; k < nf; k++)
        v[k] = *f[k];
    v[nf] = s->acc_llm_calls, v[nf + 1] = s->acc_llm_fallbacks, v[nf + 2] = s->acc_llm_decisions;
    v[nf + 3] = *hn;
    for (int k = 0; k < SIM_LLM_NKINDS; k++)
        v[nf + 4 + k] = s->acc_llm_err[k];
    const int nv = nf + 4 + SIM_LLM_NKINDS;
    if ((rc = rlab_mpi_allreduce_i64(v, nv, RLAB_MPI_SUM, err)) ||
        (rc = rlab_mpi_allreduce_f64(hsum, 1, RLAB_MPI_SUM, err)))
        return rc;
    for (int k = 0; k < nf; k++)
        *f[k] = (int32_t)v[k];
    s->acc_llm_calls = (int32_t)v[nf], s->acc_llm_fallbacks = (int32_t)v[nf + 1];
    s->acc_llm_decisions = (int32_t)v[nf + 2];
    *hn = v[nf + 3];
    for (int k = 0; k < SIM_LLM_NKINDS; k++)
        s->acc_llm_err[k] = (int32_t)v[nf + 4 + k];
    return RLAB_OK;
}

/* Every rank's block of the per-agent state that rounds change (the agents, their genre
 * counts, shown items and follow-edge times) to root (-1: to every rank), so that it holds
 * the whole simulation: after a step (commands between steps read any agent) and, to rank
 * 0, before a checkpoint. */
int sim_shard_sync(sim *s, int root, rlab_err *err)
{
    const int P = rlab_mpi_size(), me = rlab_mpi_rank();
    if (!s->part || P == 1)
        return RLAB_OK;
    struct {
        void *base;
        size_t per; /* bytes per agent; 0: follow edges */
    } arr[] = {{s->agents, sizeof(sim_agent)},
               {s->gcount, (size_t)s->G * sizeof(float)},
               {s->shown, s->shown_row},
               {s->fo_last, 0}};
    int64_t *c = rlab_calloc(3 * (size_t)P, sizeof *c), *rcn = c + P, *ro = c + 2 * P;
    if (!c)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    int rc = RLAB_OK;
    for (size_t k = 0; k < sizeof arr / sizeof arr[0] && rc == RLAB_OK; k++) {
        size_t off = arr[k].per ? (size_t)s->part_lo * arr[k].per
                                : (size_t)s->fo_off[s->part_lo] * sizeof(float);
        size_t len = arr[k].per
                         ? (size_t)(s->part_hi - s->part_lo) * arr[k].per
                         : (size_t)(s->fo_off[s->part_hi] - s->fo_off[s->part_lo]) * sizeof(float);
        void *got = NULL;
        if (root < 0) {
            rc = rlab_mpi_allgatherv((char *)arr[k].base + off, (int64_t)len, &got, rcn, ro, err);
        } else {
            for (int r = 0; r < P; r++)
                c[r] = r == root && r != me ? (int64_t)len : 0;
            rc = rlab_mpi_alltoallv((char *)arr[k].base + off, c, &got, rcn, ro, err);
        }
        if (rc == RLAB_OK && (root < 0 || me == root))
            for (int r = 0; r < P; r++) {
                if (r == me || rcn[r] == 0)
                    continue;
                int64_t q = s->n / P, rem = s->n % P, lo = r * q + (r < rem ? r : rem),
                        hi = lo + q + (r < rem ? 1 : 0);
                size_t o =
                    arr[k].per ? (size_t)lo * arr[k].per : (size_t)s->fo_off[lo] * sizeof(float);
                size_t l = arr[k].per ? (size_t)(hi - lo) * arr[k].per
                                      : (size_t)(s->fo_off[hi] - s->fo_off[lo]) * sizeof(float);
                if ((int64_t)l == rcn[r])
                    memcpy((char *)arr[k].base + o, (char *)got + ro[r], l);
                else
                    rc = rlab_errf(err, RLAB_ESTATE,
                                   "simulator: rank %d sent %lld bytes of agent state, %zu "
                                   "expected",
                                   r, (long long)rcn[r], l);
            }
        rlab_free(got);
    }
    rlab_free(c);
    return rc;
}
