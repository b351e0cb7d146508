/*
 * plugins/simulator/persist.c: the simulator's tables, per-round statistics and checkpoints.
 *
 * Tables (plugin schema "simulator", created by rlab_db_plugin_migrate; keys are explicit
 * unique indexes because the store's migration authorizer refuses SQLite's automatic
 * "sqlite_autoindex_*" of a composite PRIMARY KEY):
 *   simulator_sims(sim, parent, branch_round, data, model, agents, seed, config, created)
 *       one row per simulation; sim is the store run id of the command that created it
 *       (simulator.new or simulator.branch); events of the simulation carry that run id.
 *   simulator_stats(sim, round, ...)           per-round statistics (sim_stats)
 *   simulator_checkpoints(sim, round, model, bytes, state)   the state after each round
 *   simulator_interventions(id, sim, round, kind, args, time)  edits, rewires, injections...
 *
 * Checkpoint format (native byte order; a checkpoint is read back by the same build on the
 * same machine, it is not an interchange format): "RLSIMCK1", then the sizes (agents,
 * items, genres, sizeof(sim_agent)) that must match, the clock and injections, the model
 * name, tastes and genre counts, the shown-items bitmap, every agent's fixed head plus its
 * used memory slots, and the follow graph with its last-chat times.
 */
#define SIM_INTERNAL
#include "sim.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

const rlab_migration sim_schema[] = {
    {.sql = "CREATE TABLE simulator_sims(\n"
            "  sim INTEGER PRIMARY KEY, parent INTEGER, branch_round INTEGER,\n"
            "  data TEXT, model TEXT, agents INTEGER, seed INTEGER, config TEXT, created REAL);\n"
            "CREATE TABLE simulator_stats(\n"
            "  sim INTEGER NOT NULL, round INTEGER NOT NULL, vtime REAL, model TEXT,\n"
            "  active INTEGER, visits INTEGER, watches INTEGER, rec_watches INTEGER,\n"
            "  search_watches INTEGER, searches INTEGER, chats INTEGER, posts INTEGER,\n"
            "  idle INTEGER, busy INTEGER, impressions INTEGER, ctr REAL, coverage REAL,\n"
            "  exposure_entropy REAL, watch_entropy REAL, density REAL, satisfaction REAL,\n"
            "  sat_chance REAL, llm_calls INTEGER, llm_fallbacks INTEGER, top_mentioned TEXT);\n"
            "CREATE UNIQUE INDEX simulator_stats_key ON simulator_stats(sim, round);\n"
            "CREATE TABLE simulator_checkpoints(\n"
            "  sim INTEGER NOT NULL, round INTEGER NOT NULL, model TEXT, bytes INTEGER,\n"
            "  state BLOB);\n"
            "CREATE UNIQUE INDEX simulator_checkpoints_key ON simulator_checkpoints(sim, round);\n"
            "CREATE TABLE simulator_interventions(\n"
            "  id INTEGER PRIMARY KEY, sim INTEGER, round INTEGER, kind TEXT, args TEXT,\n"
            "  time REAL);\n",
     .note = "simulations, per-round statistics, checkpoints, interventions"},
    {0}};

void sim_store_detach(sim *s)
{
    rlab_db_finalize(s->st_stats);
    rlab_db_finalize(s->st_ckpt);
    s->st_stats = s->st_ckpt = NULL;
}

int sim_write_stats(sim *s, rlab_err *err)
{
    if (!s->db || !s->id)
        return RLAB_OK;
    if (!s->st_stats) {
        s->st_stats = rlab_db_prepare_persistent(
            s->db,
            "INSERT OR REPLACE INTO simulator_stats VALUES(:sim, :round, :vtime, :model, "
            ":active, :visits, :watches, :rec_watches, :search_watches, :searches, :chats, "
            ":posts, :nothing, :busy, :impressions, :ctr, :coverage, :exp_entropy, "
            ":watch_entropy, :density, :satisfaction, :sat_chance, :llm_calls, "
            ":llm_fallbacks, :top)",
            err);
        if (!s->st_stats)
            return err->code;
    }
    const sim_stats *st = &s->last;
    rlab_db_stmt *q = s->st_stats;
    char top[160];
    int w = snprintf(top, sizeof top, "[");
    for (int k = 0; k < 3 && st->top_items[k] >= 0; k++)
        w += snprintf(top + w, sizeof top - (size_t)w, "%s[%d,%d]", k ? "," : "",
                      (int)st->top_items[k], (int)st->top_counts[k]);
    snprintf(top + w, sizeof top - (size_t)w, "]");
    int rc = rlab_db_bind_int(q, ":sim", s->id, err);
    rc = rc ? rc : rlab_db_bind_int(q, ":round", st->round, err);
    rc = rc ? rc : rlab_db_bind_double(q, ":vtime", st->vtime, err);
    rc = rc ? rc : rlab_db_bind_text(q, ":model", s->model_name, err);
    const struct {
        const char *n;
        int64_t v;
    } ints[] = {{":active", st->active},
                {":visits", st->visits},
                {":watches", st->watches},
                {":rec_watches", st->rec_watches},
                {":search_watches", st->search_watches},
                {":searches", st->searches},
                {":chats", st->chats},
                {":posts", st->posts},
                {":nothing", st->nothing},
                {":busy", st->busy},
                {":impressions", st->impressions},
                {":llm_calls", st->llm_calls},
                {":llm_fallbacks", st->llm_fallbacks}};
    for (size_t k = 0; rc == RLAB_OK && k < sizeof ints / sizeof *ints; k++)
        rc = rlab_db_bind_int(q, ints[k].n, ints[k].v, err);
    const struct {
        const char *n;
        double v;
    } dbl[] = {{":ctr", st->ctr},
               {":coverage", st->coverage},
               {":exp_entropy", st->exp_entropy},
               {":watch_entropy", st->watch_entropy},
               {":density", st->density}};
    for (size_t k = 0; rc == RLAB_OK && k < sizeof dbl / sizeof *dbl; k++)
        rc = rlab_db_bind_double(q, dbl[k].n, dbl[k].v, err);
    if (rc == RLAB_OK)
        rc = !isnan(st->satisfaction)
                 ? rlab_db_bind_double(q, ":satisfaction", st->satisfaction, err)
                 : rlab_db_bind_null(q, ":satisfaction", err);
    if (rc == RLAB_OK)
        rc = !isnan(st->sat_chance) ? rlab_db_bind_double(q, ":sat_chance", st->sat_chance, err)
                                    : rlab_db_bind_null(q, ":sat_chance", err);
    rc = rc ? rc : rlab_db_bind_text(q, ":top", top, err);
    if (rc == RLAB_OK) {
        rc = rlab_db_step(q, err);
        if (rc == RLAB_DB_ROW)
            rc = RLAB_OK;
    }
    rlab_db_reset(q);
    return rc;
}

/* ---- state (de)serialisation -------------------------------------------------------------- */

typedef struct wbuf {
    uint8_t *p;
    size_t n, cap;
    int oom;
} wbuf;

static void wput(wbuf *b, const void *src, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 65536;
        while (cap < b->n + n)
            cap *= 2;
        uint8_t *q = rlab_realloc(b->p, cap);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}

typedef struct rbuf {
    const uint8_t *p;
    size_t n, at;
    int bad;
} rbuf;

static void rget(rbuf *b, void *dst, size_t n)
{
    if (b->bad || b->at + n > b->n) {
        b->bad = 1;
        memset(dst, 0, n);
        return;
    }
    memcpy(dst, b->p + b->at, n);
    b->at += n;
}

static const char magic[8] = {'R', 'L', 'S', 'I', 'M', 'C', 'K', '1'};

int sim_save_state(const sim *s, uint8_t **out, size_t *nout, rlab_err *err)
{
    wbuf b = {0};
    int32_t hdr[4] = {s->n, s->n_items, s->G, (int32_t)sizeof(sim_agent)};
    wput(&b, magic, sizeof magic);
    wput(&b, hdr, sizeof hdr);
    wput(&b, &s->round, sizeof s->round);
    wput(&b, &s->vtime, sizeof s->vtime);
    wput(&b, &s->seq, sizeof s->seq);
    wput(&b, &s->n_inject, sizeof s->n_inject);
    wput(&b, s->inject, sizeof s->inject);
    wput(&b, &s->inject_until, sizeof s->inject_until);
    wput(&b, s->model_name, sizeof s->model_name);
    size_t nG = (size_t)s->n * (size_t)s->G;
    wput(&b, s->taste, nG * sizeof(float));
    wput(&b, s->gcount, nG * sizeof(float));
    /* shown items as bits (2 = watched is folded into 1: the watched ring keeps that) */
    size_t nb = ((size_t)s->n_items + 7) / 8;
    uint8_t bits[4096];
    for (int32_t a = 0; a < s->n; a++) {
        const uint8_t *sh = s->shown + (size_t)a * (size_t)s->n_items;
        for (size_t c = 0; c < nb; c += sizeof bits) {
            size_t len = nb - c < sizeof bits ? nb - c : sizeof bits;
            memset(bits, 0, len);
            for (size_t k = 0; k < len * 8 && c * 8 + k < (size_t)s->n_items; k++)
                if (sh[c * 8 + k])
                    bits[k / 8] |= (uint8_t)(1u << (k % 8));
            wput(&b, bits, len);
        }
    }
    for (int32_t a = 0; a < s->n; a++) {
        const sim_agent *ag = &s->agents[a];
        wput(&b, ag, offsetof(sim_agent, stm));
        wput(&b, ag->stm, (size_t)ag->n_stm * sizeof ag->stm[0]);
        wput(&b, ag->stm_enh_items, (size_t)ag->n_stm * sizeof ag->stm_enh_items[0]);
        wput(&b, ag->ltm, (size_t)ag->n_ltm * sizeof ag->ltm[0]);
    }
    int64_t m = s->fo_off[s->n];
    wput(&b, &m, sizeof m);
    wput(&b, s->fo_off, ((size_t)s->n + 1) * sizeof(int64_t));
    wput(&b, s->fo, (size_t)m * sizeof(int32_t));
    wput(&b, s->fo_last, (size_t)m * sizeof(float));
    if (b.oom) {
        rlab_free(b.p);
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    }
    *out = b.p;
    *nout = b.n;
    return RLAB_OK;
}

int sim_load_state(sim *s, const uint8_t *buf, size_t n, rlab_err *err)
{
    rbuf b = {buf, n, 0, 0};
    char mg[8];
    int32_t hdr[4];
    rget(&b, mg, sizeof mg);
    rget(&b, hdr, sizeof hdr);
    if (b.bad || memcmp(mg, magic, sizeof magic) != 0)
        return rlab_errf(err, RLAB_EFORMAT, "simulator: not a simulator checkpoint");
    if (hdr[0] != s->n || hdr[1] != s->n_items || hdr[2] != s->G ||
        hdr[3] != (int32_t)sizeof(sim_agent))
        return rlab_errf(err, RLAB_EFORMAT,
                         "simulator: checkpoint of %d agents x %d items x %d genres does not fit "
                         "this simulation (%d x %d x %d)",
                         (int)hdr[0], (int)hdr[1], (int)hdr[2], (int)s->n, (int)s->n_items,
                         (int)s->G);
    rget(&b, &s->round, sizeof s->round);
    rget(&b, &s->vtime, sizeof s->vtime);
    rget(&b, &s->seq, sizeof s->seq);
    rget(&b, &s->n_inject, sizeof s->n_inject);
    rget(&b, s->inject, sizeof s->inject);
    rget(&b, &s->inject_until, sizeof s->inject_until);
    char model[64];
    rget(&b, model, sizeof model);
    size_t nG = (size_t)s->n * (size_t)s->G;
    rget(&b, s->taste, nG * sizeof(float));
    rget(&b, s->gcount, nG * sizeof(float));
    size_t nb = ((size_t)s->n_items + 7) / 8;
    uint8_t bits[4096];
    for (int32_t a = 0; a < s->n && !b.bad; a++) {
        uint8_t *sh = s->shown + (size_t)a * (size_t)s->n_items;
        for (size_t c = 0; c < nb; c += sizeof bits) {
            size_t len = nb - c < sizeof bits ? nb - c : sizeof bits;
            rget(&b, bits, len);
            for (size_t k = 0; k < len * 8 && c * 8 + k < (size_t)s->n_items; k++)
                sh[c * 8 + k] = (uint8_t)((bits[k / 8] >> (k % 8)) & 1u);
        }
    }
    for (int32_t a = 0; a < s->n && !b.bad; a++) {
        sim_agent *ag = &s->agents[a];
        rget(&b, ag, offsetof(sim_agent, stm));
        if (ag->n_stm < 0 || ag->n_stm > SIM_STM_CAP || ag->n_ltm < 0 || ag->n_ltm > SIM_LTM_CAP) {
            b.bad = 1;
            break;
        }
        rget(&b, ag->stm, (size_t)ag->n_stm * sizeof ag->stm[0]);
        rget(&b, ag->stm_enh_items, (size_t)ag->n_stm * sizeof ag->stm_enh_items[0]);
        rget(&b, ag->ltm, (size_t)ag->n_ltm * sizeof ag->ltm[0]);
    }
    int64_t m = 0;
    rget(&b, &m, sizeof m);
    if (b.bad || m < 0 || m > (int64_t)s->n * (int64_t)s->n)
        return rlab_errf(err, RLAB_EFORMAT, "simulator: truncated checkpoint");
    int64_t *off = rlab_malloc(((size_t)s->n + 1) * sizeof(int64_t));
    int32_t *src = rlab_malloc((size_t)(m ? m : 1) * sizeof(int32_t));
    int32_t *dst = rlab_malloc((size_t)(m ? m : 1) * sizeof(int32_t));
    float *last = rlab_malloc((size_t)(m ? m : 1) * sizeof(float));
    int rc = RLAB_OK;
    if (!off || !src || !dst || !last) {
        rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
    } else {
        rget(&b, off, ((size_t)s->n + 1) * sizeof(int64_t));
        rget(&b, dst, (size_t)m * sizeof(int32_t));
        rget(&b, last, (size_t)m * sizeof(float));
        if (b.bad || off[s->n] != m)
            rc = rlab_errf(err, RLAB_EFORMAT, "simulator: truncated checkpoint");
        for (int32_t a = 0; rc == RLAB_OK && a < s->n; a++)
            for (int64_t e = off[a]; e < off[a + 1]; e++)
                src[e] = a;
        for (int64_t e = 0; rc == RLAB_OK && e < m; e++)
            if (dst[e] < 0 || dst[e] >= s->n)
                rc = rlab_errf(err, RLAB_EFORMAT, "simulator: bad edge in checkpoint");
    }
    if (rc == RLAB_OK) {
        rc = sim_set_graph_edges(s, src, dst, m, err);
        if (rc == RLAB_OK) /* set_graph keeps each slice sorted, as the saved one was */
            memcpy(s->fo_last, last, (size_t)m * sizeof(float));
    }
    rlab_free(off), rlab_free(src), rlab_free(dst), rlab_free(last);
    if (rc)
        return rc;
    sim_refresh_tastes(s);
    memset(&s->last, 0, sizeof s->last);
    s->last.round = s->round;
    s->last.satisfaction = s->last.sat_chance = 0.0;
    return RLAB_OK;
}

int sim_checkpoint(sim *s, rlab_err *err)
{
    if (!s->db || !s->id)
        return RLAB_OK;
    uint8_t *buf = NULL;
    size_t n = 0;
    int rc = sim_save_state(s, &buf, &n, err);
    if (rc)
        return rc;
    if (!s->st_ckpt) {
        s->st_ckpt = rlab_db_prepare_persistent(
            s->db,
            "INSERT OR REPLACE INTO simulator_checkpoints VALUES(:sim, :round, :model, "
            ":bytes, :state)",
            err);
        if (!s->st_ckpt) {
            rlab_free(buf);
            return err->code;
        }
    }
    rlab_db_stmt *q = s->st_ckpt;
    rc = rlab_db_bind_int(q, ":sim", s->id, err);
    rc = rc ? rc : rlab_db_bind_int(q, ":round", s->round, err);
    rc = rc ? rc : rlab_db_bind_text(q, ":model", s->model_name, err);
    rc = rc ? rc : rlab_db_bind_int(q, ":bytes", (int64_t)n, err);
    rc = rc ? rc : rlab_db_bind_blob(q, ":state", buf, n, err);
    rlab_free(buf);
    if (rc == RLAB_OK) {
        rc = rlab_db_step(q, err);
        if (rc == RLAB_DB_ROW)
            rc = RLAB_OK;
    }
    rlab_db_reset(q);
    return rc;
}
