/*
 * plugins/simulator/persist.c: the simulator's tables, per-round statistics and checkpoints.
 *
 * Tables (plugin schema "simulator", created by rlab_db_plugin_migrate; keys are explicit
 * unique indexes because the store's migration authorizer refuses SQLite's automatic
 * "sqlite_autoindex_*" of a composite PRIMARY KEY):
 *   simulator_sims(sim, parent, branch_round, data, model, agents, seed, config, created,
 *                  data_sha)
 *       one row per simulation; sim is the store run id of the command that created it
 *       (simulator.new or simulator.branch); events of the simulation carry that run id.
 *   simulator_stats(sim, round, ...)           per-round statistics (sim_stats)
 *   simulator_checkpoints(sim, round, model, bytes, state)   the state after each round
 *   simulator_interventions(id, sim, round, kind, args, time)  edits, rewires, injections...
 *
 * Checkpoint formats (native byte order; a checkpoint is read back by the same build on the
 * same machine, it is not an interchange format):
 *   "RLSIMCK3"  a full image without its zero words: the delta encoding below against an
 *               all-zero image (ck_dhead with base_round -1 and base_hash 0, "base: zeros";
 *               then runs of the image's non-zero words). A round-0 image at 100,000 agents
 *               is about two thirds zero words (empty memory slots and shown-bitsets), so
 *               its row is about a third of the image. Restored by rebuilding the image from
 *               zeros (zfull_expand: header and length checked against the simulation
 *               before anything is allocated, the image's hash after); the image it stands
 *               for is byte for byte the "RLSIMCK2" image, so deltas chain onto either.
 *   "RLSIMCK2"  a full image of fixed layout (state images, below): header, tastes and
 *               genre counts, the shown-items bitsets, every agent verbatim, the follow
 *               graph with its last-chat times. Written by earlier versions (read, and
 *               still sim_save_state's output: an image for a caller, not a stored row).
 *   "RLSIMDL2"  a delta: the 8-byte words of the image that changed since the simulation's
 *               previous checkpoint row (base round and the hashes of both images recorded,
 *               so a broken chain is refused instead of restored wrongly). About 10% of a
 *               full image at 1,000 agents; costs one compare pass of the live state
 *               against the last image (no second image is built: delta_stream).
 *   "RLSIMCK1"  the variable-length full format of earlier versions (read only).
 * sim_checkpoint writes a full image every cfg.checkpoint_full checkpoints (and when a delta
 * cannot be trusted: first write, after a restore, a new layout, the same round again);
 * sim_restore rebuilds a round from its last full image ("RLSIMCK3", "RLSIMCK2" or
 * "RLSIMCK1") and the deltas after it.
 */
#define SIM_INTERNAL
#include "sim.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>
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
    {.sql = "ALTER TABLE simulator_sims ADD COLUMN data_sha TEXT;\n",
     .note = "the dataset's fingerprint, checked when a stored simulation is branched"},
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

static const char magic_v1[8] = {'R', 'L', 'S', 'I', 'M', 'C', 'K', '1'};

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

/* The format of earlier versions ("RLSIMCK1": variable length, used memory slots only). */
static int load_v1(sim *s, const uint8_t *buf, size_t n, rlab_err *err)
{
    rbuf b = {buf, n, 0, 0};
    char mg[8];
    int32_t hdr[4];
    rget(&b, mg, sizeof mg);
    rget(&b, hdr, sizeof hdr);
    if (b.bad || memcmp(mg, magic_v1, sizeof magic_v1) != 0)
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
        memset(s->shown + (size_t)a * s->shown_row, 0, s->shown_row);
        for (size_t c = 0; c < nb; c += sizeof bits) {
            size_t len = nb - c < sizeof bits ? nb - c : sizeof bits;
            rget(&b, bits, len);
            for (size_t k = 0; k < len * 8 && c * 8 + k < (size_t)s->n_items; k++)
                if ((bits[k / 8] >> (k % 8)) & 1u)
                    sim_show(s, a, (int32_t)(c * 8 + k));
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
    return RLAB_OK;
}

/* ---- state images ----------------------------------------------------------------------- */

/* A full image ("RLSIMCK2"): fixed layout, every section a multiple of 8 bytes, so two
 * images of the same simulation compare word by word (the delta below):
 *   ck_head | taste [n][G] f32, gcount [n][G] f32 (padded) | shown [n][W] u64 bitsets
 *   (W = ceil(items / 64), bit k of word w = item 64 w + k) | agents [n] sim_agent
 *   (verbatim, every memory slot) | fo_off [n + 1] i64 | fo [m] i32 (padded) |
 *   fo_last [m] f32 (padded)
 * A delta ("RLSIMDL2"): ck_dhead, then runs of (varint words to keep, varint words to
 * replace, the replacing words) from the image's start; words after the last run are
 * kept. base_hash / hash are the hashes of the images before and after. */
typedef struct ck_head {
    char magic[8];
    int32_t n, n_items, G, agent_size;
    int64_t round;
    double vtime;
    int64_t seq;
    int32_t n_inject, pad;
    int32_t inject[SIM_MAX_INJECT];
    int64_t inject_until;
    char model[64];
    int64_t m; /* follow edges */
} ck_head;

typedef struct ck_dhead {
    char magic[8];
    int64_t round, base_round;
    uint64_t base_hash, hash, len;
} ck_dhead;

static const char magic_full[8] = {'R', 'L', 'S', 'I', 'M', 'C', 'K', '2'};
static const char magic_delta[8] = {'R', 'L', 'S', 'I', 'M', 'D', 'L', '2'};
/* a full image without its zero words: ck_dhead (base_round -1, base_hash 0: "base: zeros")
 * and the runs of the image's non-zero words, the delta body against an all-zero image */
static const char magic_zfull[8] = {'R', 'L', 'S', 'I', 'M', 'C', 'K', '3'};

static size_t pad8(size_t n) { return (n + 7) & ~(size_t)7; }

typedef struct ck_layout {
    size_t taste, gcount, shown, agents, fo_off, fo, fo_last, len;
    size_t W; /* shown words per agent */
} ck_layout;

static ck_layout layout(int32_t n, int32_t I, int32_t G, int64_t m)
{
    ck_layout L;
    size_t nG = (size_t)n * (size_t)G;
    L.W = ((size_t)I + 63) / 64;
    L.taste = sizeof(ck_head);
    L.gcount = L.taste + nG * sizeof(float);
    L.shown = pad8(L.gcount + nG * sizeof(float));
    L.agents = L.shown + (size_t)n * L.W * 8;
    L.fo_off = L.agents + (size_t)n * sizeof(sim_agent);
    L.fo = L.fo_off + ((size_t)n + 1) * sizeof(int64_t);
    L.fo_last = L.fo + pad8((size_t)m * sizeof(int32_t));
    L.len = L.fo_last + pad8((size_t)m * sizeof(float));
    return L;
}

/* The image as segments of the live state: [off, off + len) of the image is src's bytes, or
 * zeros where src is NULL (padding); in order, covering [0, L.len). */
typedef struct ck_seg {
    size_t off, len;
    const void *src;
} ck_seg;

enum { CK_NSEG = 9 };

static void image_segments(const sim *s, const ck_layout *L, const ck_head *h, ck_seg *g)
{
    size_t nG = (size_t)s->n * (size_t)s->G, m = (size_t)h->m;
    /* the shown bitsets are kept in the image's layout (rows of W words, bits past n_items
     * zero) and the agents verbatim: both are one copy */
    g[0] = (ck_seg){0, sizeof *h, h};
    g[1] = (ck_seg){L->taste, nG * sizeof(float), s->taste};
    g[2] = (ck_seg){L->gcount, nG * sizeof(float), s->gcount};
    g[3] =
        (ck_seg){L->gcount + nG * sizeof(float), L->shown - L->gcount - nG * sizeof(float), NULL};
    g[4] = (ck_seg){L->shown, L->agents - L->shown, s->shown};
    g[5] = (ck_seg){L->agents, (size_t)s->n * sizeof(sim_agent), s->agents};
    g[6] = (ck_seg){L->fo_off, ((size_t)s->n + 1) * sizeof(int64_t), s->fo_off};
    g[7] = (ck_seg){L->fo, m * sizeof(int32_t), s->fo};
    g[8] = (ck_seg){L->fo_last, m * sizeof(float), s->fo_last};
}

/* Bytes [off, off + len) of the image (segments g, in ascending order) into dst: each byte
 * written once, the segments' bytes copied and the padding zeroed. */
static void image_read(const ck_seg *g, size_t off, size_t len, uint8_t *dst)
{
    size_t p = off, end = off + len;
    for (int k = 0; k < CK_NSEG && p < end; k++) {
        size_t a = g[k].off > p ? g[k].off : p;
        size_t b = g[k].off + g[k].len < end ? g[k].off + g[k].len : end;
        if (a >= b || !g[k].src)
            continue; /* outside the range, or padding: zeroed below */
        if (a > p)
            memset(dst + (p - off), 0, a - p);
        memcpy(dst + (a - off), (const uint8_t *)g[k].src + (a - g[k].off), b - a);
        p = b;
    }
    if (p < end)
        memset(dst + (p - off), 0, end - p);
}

static void image_head(const sim *s, ck_head *h)
{
    memset(h, 0, sizeof *h);
    memcpy(h->magic, magic_full, 8);
    h->n = s->n, h->n_items = s->n_items, h->G = s->G, h->agent_size = (int32_t)sizeof(sim_agent);
    h->round = s->round, h->vtime = s->vtime, h->seq = s->seq;
    h->n_inject = s->n_inject;
    memcpy(h->inject, s->inject, sizeof h->inject);
    h->inject_until = s->inject_until;
    memcpy(h->model, s->model_name, sizeof h->model);
    h->m = s->fo_off[s->n];
}

void sim_ck_sections(const sim *s, sim_ck_section sec[SIM_CK_NSECT])
{
    ck_layout L = layout(s->n, s->n_items, s->G, s->fo_off[s->n]);
    const size_t at[SIM_CK_NSECT + 1] = {0,        L.taste, L.gcount,  L.shown, L.agents,
                                         L.fo_off, L.fo,    L.fo_last, L.len};
    static const char *const names[SIM_CK_NSECT] = {"head",   "taste",  "gcount", "shown",
                                                    "agents", "fo_off", "fo",     "fo_last"};
    for (int k = 0; k < SIM_CK_NSECT; k++)
        sec[k] = (sim_ck_section){names[k], at[k], at[k + 1] - at[k]};
}

static void image_build(const sim *s, uint8_t *img)
{
    ck_layout L = layout(s->n, s->n_items, s->G, s->fo_off[s->n]);
    ck_head h;
    image_head(s, &h);
    ck_seg g[CK_NSEG];
    image_segments(s, &L, &h, g);
    image_read(g, 0, L.len, img);
}

_Static_assert(sizeof(ck_head) % 8 == 0, "the image's header is whole words");

/* An image's header against the simulation it is restored into. */
static int head_check(const sim *s, const ck_head *hp, rlab_err *err)
{
    ck_head h = *hp;
    if (h.n != s->n || h.n_items != s->n_items || h.G != s->G ||
        h.agent_size != (int32_t)sizeof(sim_agent))
        return rlab_errf(err, RLAB_EFORMAT,
                         "simulator: checkpoint of %d agents x %d items x %d genres does not fit "
                         "this simulation (%d x %d x %d)",
                         (int)h.n, (int)h.n_items, (int)h.G, (int)s->n, (int)s->n_items, (int)s->G);
    if (h.m < 0 || h.m > (int64_t)s->n * (int64_t)s->n || h.n_inject < 0 ||
        h.n_inject > SIM_MAX_INJECT)
        return rlab_errf(err, RLAB_EFORMAT, "simulator: corrupt checkpoint header");
    return RLAB_OK;
}

/* Restore a full image (validated before anything is changed). */
static int image_load(sim *s, const uint8_t *img, size_t n, rlab_err *err)
{
    ck_head h;
    if (n < sizeof h)
        return rlab_errf(err, RLAB_EFORMAT, "simulator: truncated checkpoint");
    memcpy(&h, img, sizeof h);
    int hrc = head_check(s, &h, err);
    if (hrc)
        return hrc;
    ck_layout L = layout(s->n, s->n_items, s->G, h.m);
    if (n != L.len)
        return rlab_errf(err, RLAB_EFORMAT, "simulator: truncated checkpoint (%zu of %zu bytes)", n,
                         L.len);
    /* validate the agents and the graph first */
    for (int32_t a = 0; a < s->n; a++) {
        sim_agent ag;
        memcpy(&ag, img + L.agents + (size_t)a * sizeof(sim_agent), sizeof ag);
        if (ag.n_stm < 0 || ag.n_stm > SIM_STM_CAP || ag.n_ltm < 0 || ag.n_ltm > SIM_LTM_CAP)
            return rlab_errf(err, RLAB_EFORMAT, "simulator: corrupt agent %d in checkpoint",
                             (int)a);
    }
    int64_t m = h.m;
    int64_t *off = rlab_malloc(((size_t)s->n + 1) * sizeof(int64_t));
    int32_t *src = rlab_malloc((size_t)(m ? m : 1) * sizeof(int32_t));
    int32_t *dst = rlab_malloc((size_t)(m ? m : 1) * sizeof(int32_t));
    int rc = RLAB_OK;
    if (!off || !src || !dst) {
        rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
    } else {
        memcpy(off, img + L.fo_off, ((size_t)s->n + 1) * sizeof(int64_t));
        memcpy(dst, img + L.fo, (size_t)m * sizeof(int32_t));
        if (off[0] != 0 || off[s->n] != m)
            rc = rlab_errf(err, RLAB_EFORMAT, "simulator: corrupt graph in checkpoint");
        for (int32_t a = 0; rc == RLAB_OK && a < s->n; a++) {
            if (off[a + 1] < off[a]) {
                rc = rlab_errf(err, RLAB_EFORMAT, "simulator: corrupt graph in checkpoint");
                break;
            }
            for (int64_t e = off[a]; e < off[a + 1]; e++)
                src[e] = a;
        }
        for (int64_t e = 0; rc == RLAB_OK && e < m; e++)
            if (dst[e] < 0 || dst[e] >= s->n)
                rc = rlab_errf(err, RLAB_EFORMAT, "simulator: bad edge in checkpoint");
    }
    if (rc == RLAB_OK) /* set_graph keeps each slice sorted, as the saved one was */
        rc = sim_set_graph_edges(s, src, dst, m, err);
    rlab_free(off), rlab_free(src), rlab_free(dst);
    if (rc)
        return rc;
    memcpy(s->fo_last, img + L.fo_last, (size_t)m * sizeof(float));
    s->round = h.round, s->vtime = h.vtime, s->seq = h.seq;
    s->n_inject = h.n_inject;
    memcpy(s->inject, h.inject, sizeof h.inject);
    s->inject_until = h.inject_until;
    size_t nG = (size_t)s->n * (size_t)s->G;
    memcpy(s->taste, img + L.taste, nG * sizeof(float));
    memcpy(s->gcount, img + L.gcount, nG * sizeof(float));
    /* the shown bitsets verbatim, bits past n_items cleared (they are never read, but a
     * delta compares them) */
    memcpy(s->shown, img + L.shown, (size_t)s->n * L.W * 8);
    size_t I = (size_t)s->n_items;
    for (int32_t a = 0; I % 8 && a < s->n; a++) {
        uint8_t *row = s->shown + (size_t)a * s->shown_row;
        row[I / 8] &= (uint8_t)((1u << (I % 8)) - 1u);
        memset(row + I / 8 + 1, 0, s->shown_row - I / 8 - 1);
    }
    for (int32_t a = 0; I % 8 == 0 && a < s->n; a++)
        memset(s->shown + (size_t)a * s->shown_row + I / 8, 0, s->shown_row - I / 8);
    memcpy(s->agents, img + L.agents, (size_t)s->n * sizeof(sim_agent));
    return RLAB_OK;
}

/* Hash of an image (length a multiple of 8): the sum of a mix of each word with its index,
 * so a delta updates it from the words it changes alone (mod 2^64). */
static inline uint64_t mixw(uint64_t w, size_t i)
{
    uint64_t x = w ^ ((uint64_t)i * 0x9e3779b97f4a7c15ull);
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

static uint64_t image_hash(const uint8_t *p, size_t n)
{
    uint64_t h = (uint64_t)n * 0x2545f4914f6cdd1dull;
    for (size_t i = 0; i < n / 8; i++) {
        uint64_t w;
        memcpy(&w, p + i * 8, 8);
        h += mixw(w, i);
    }
    return h;
}

static size_t put_varint(uint8_t *p, uint64_t v)
{
    size_t k = 0;
    while (v >= 0x80) {
        p[k++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[k++] = (uint8_t)v;
    return k;
}

static int get_varint(const uint8_t *p, size_t n, size_t *at, uint64_t *v)
{
    uint64_t x = 0;
    for (int sh = 0; sh < 64 && *at < n; sh += 7) {
        uint8_t b = p[(*at)++];
        x |= (uint64_t)(b & 0x7f) << sh;
        if (!(b & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return -1;
}

/* Apply a delta body to img (len bytes) in place, updating *hash; 0 when well formed. */
static int delta_apply(uint8_t *img, size_t len, const uint8_t *d, size_t n, uint64_t *hash)
{
    size_t nw = len / 8, pos = 0, at = 0;
    while (at < n) {
        uint64_t skip, cnt;
        if (get_varint(d, n, &at, &skip) || get_varint(d, n, &at, &cnt))
            return -1;
        if (skip > nw - pos || cnt > nw - pos - skip || cnt * 8 > n - at)
            return -1;
        pos += skip;
        for (size_t k = 0; k < cnt; k++) {
            uint64_t a, b;
            memcpy(&a, img + (pos + k) * 8, 8);
            memcpy(&b, d + at + k * 8, 8);
            *hash += mixw(b, pos + k) - mixw(a, pos + k);
        }
        memcpy(img + pos * 8, d + at, cnt * 8);
        pos += cnt;
        at += cnt * 8;
    }
    return 0;
}

/* The first sizeof(ck_head) bytes of the image whose non-zero words are the runs of d (n
 * bytes, a "RLSIMCK3" body) into h; -1 when the runs before them are malformed. */
static int zhead_peek(const uint8_t *d, size_t n, ck_head *h)
{
    uint8_t *hb = (uint8_t *)h;
    size_t hw = sizeof *h / 8, pos = 0, at = 0;
    memset(h, 0, sizeof *h);
    while (at < n && pos < hw) {
        uint64_t skip, cnt;
        if (get_varint(d, n, &at, &skip) || get_varint(d, n, &at, &cnt) || cnt > (n - at) / 8)
            return -1;
        if (skip >= hw - pos)
            break; /* the rest of the header is zeros */
        pos += skip;
        size_t k = cnt < hw - pos ? cnt : hw - pos;
        memcpy(hb + pos * 8, d + at, k * 8);
        pos += k;
        at += cnt * 8;
    }
    return 0;
}

/* Word w of the image whose non-zero words are the runs of d (n bytes, a "RLSIMCK3" body)
 * into *v (0 when no run covers it); -1 when the runs before it are malformed. */
static int zword_peek(const uint8_t *d, size_t n, size_t w, uint64_t *v)
{
    size_t pos = 0, at = 0;
    *v = 0;
    while (at < n) {
        uint64_t skip, cnt;
        if (get_varint(d, n, &at, &skip) || get_varint(d, n, &at, &cnt) || cnt > (n - at) / 8)
            return -1;
        if (skip > w - pos)
            return 0; /* a zero word */
        pos += skip;
        if (cnt > w - pos) {
            memcpy(v, d + at + (w - pos) * 8, 8);
            return 0;
        }
        pos += cnt;
        at += cnt * 8;
    }
    return 0;
}

/* The full image of a "RLSIMCK3" row (b, n bytes) for simulation s, into *img (rlab_free)
 * of *len bytes: its header and length checked against s before anything is allocated, the
 * image rebuilt from zeros and its hash checked. */
static int zfull_expand(const sim *s, const uint8_t *b, size_t n, uint8_t **img, size_t *len,
                        rlab_err *err)
{
    ck_dhead dh;
    ck_head h;
    if (n < sizeof dh)
        return rlab_errf(err, RLAB_EFORMAT, "simulator: truncated checkpoint (%zu bytes)", n);
    memcpy(&dh, b, sizeof dh);
    const uint8_t *d = b + sizeof dh;
    size_t nd = n - sizeof dh;
    if (dh.base_round != -1 || dh.base_hash != 0 || zhead_peek(d, nd, &h) ||
        memcmp(h.magic, magic_full, 8) != 0 || h.round != dh.round)
        return rlab_errf(err, RLAB_EFORMAT, "simulator: corrupt checkpoint of round %lld",
                         (long long)dh.round);
    int rc = head_check(s, &h, err);
    if (rc)
        return rc;
    /* the follow-edge count sizes the image: the header's must be the one the image's
     * offsets end with (fo_off[n], at a place that does not depend on it), checked before
     * the allocation, so a corrupt count cannot ask for an image of the wrong size */
    ck_layout L = layout(s->n, s->n_items, s->G, h.m);
    uint64_t m_end;
    if (zword_peek(d, nd, (L.fo_off + (size_t)s->n * sizeof(int64_t)) / 8, &m_end) ||
        m_end != (uint64_t)h.m)
        return rlab_errf(err, RLAB_EFORMAT,
                         "simulator: corrupt checkpoint of round %lld (%lld follow edges in its "
                         "header, %lld in its offsets)",
                         (long long)dh.round, (long long)h.m, (long long)m_end);
    if (dh.len != L.len)
        return rlab_errf(err, RLAB_EFORMAT,
                         "simulator: corrupt checkpoint of round %lld (an image of %llu bytes, "
                         "%zu expected)",
                         (long long)dh.round, (unsigned long long)dh.len, L.len);
    uint8_t *p = rlab_calloc(L.len, 1);
    if (!p)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    uint64_t hash = image_hash(p, L.len);
    if (delta_apply(p, L.len, d, nd, &hash)) {
        rlab_free(p);
        return rlab_errf(err, RLAB_EFORMAT, "simulator: corrupt checkpoint of round %lld",
                         (long long)dh.round);
    }
    if (hash != dh.hash) {
        rlab_free(p);
        return rlab_errf(err, RLAB_EFORMAT,
                         "simulator: checkpoint of round %lld fails its hash check",
                         (long long)dh.round);
    }
    *img = p;
    *len = L.len;
    return RLAB_OK;
}

/* The delta of the current state (image segments g) against prev, the image of the last
 * checkpoint (len bytes): the body delta_encode(prev, image) would write, without building
 * the image: the state is read in blocks through a small buffer, compared word by word, and
 * the changed words are written into prev (which becomes the current image) and then, run by
 * run, from there to out. Returns the body length; *hash goes from prev's hash to the
 * current image's. */
static size_t delta_stream(const ck_seg *g, uint8_t *prev, size_t len, uint8_t *out, uint64_t *hash)
{
    enum { BLK = 4096 }; /* words per block (32 KB: stays in cache) */
    uint64_t buf[BLK];
    uint64_t h = *hash;
    size_t nw = len / 8, last = 0, o = 0, rs = SIZE_MAX;
    for (size_t w0 = 0; w0 < nw; w0 += BLK) {
        size_t nb = nw - w0 < BLK ? nw - w0 : BLK;
        image_read(g, w0 * 8, nb * 8, (uint8_t *)buf);
        const uint8_t *pv = prev + w0 * 8;
        for (size_t k = 0; k <= nb; k++) {
            uint64_t a = 0, b = 0;
            if (k < nb) {
                memcpy(&a, pv + k * 8, 8);
                b = buf[k];
                if (a != b) {
                    h += mixw(b, w0 + k) - mixw(a, w0 + k);
                    memcpy(prev + (w0 + k) * 8, &b, 8);
                    if (rs == SIZE_MAX)
                        rs = w0 + k;
                    continue;
                }
            } else if (w0 + nb < nw) {
                break; /* the block ended, not the image: a run goes on */
            }
            if (rs != SIZE_MAX) { /* the run [rs, w0 + k) ended */
                size_t e = w0 + k;
                o += put_varint(out + o, rs - last);
                o += put_varint(out + o, e - rs);
                memcpy(out + o, prev + rs * 8, (e - rs) * 8);
                o += (e - rs) * 8;
                last = e;
                rs = SIZE_MAX;
            }
        }
    }
    *hash = h;
    return o;
}

/* sim_checkpoint's pass over the image on threads (sim_par_for over blocks of CK_BLK words):
 * a full image is read into prev, or (dirty set) the live state is compared with prev, the
 * changed words written into it and marked in dirty; either way each thread adds its part of
 * the hash (a sum mod 2^64 of one term per word: the same for any split). The delta's body
 * is then encoded from the marks (delta_from_marks): the same bytes as delta_stream. */
enum { CK_BLK = 4096 }; /* words per block (32 KB: stays in cache); a multiple of 64 */

typedef struct ck_job {
    const ck_seg *g;
    uint8_t *prev;
    size_t nw;
    uint64_t *dirty; /* [(nw + 63) / 64] bit w % 64 of word w / 64: word w changed (full:
                      * word w is not zero) */
    int full;        /* read the image into prev (else compare it with prev) */
    uint64_t h[SIM_MAX_THREADS];
} ck_job;

/* Mark the non-zero words [w0, w0 + nb) of img (the image's words from w0 on) in marks. */
static void mark_nonzero(const uint8_t *img, size_t w0, size_t nb, uint64_t *marks)
{
    for (size_t k = 0; k < nb; k++) {
        uint64_t w;
        memcpy(&w, img + k * 8, 8);
        if (w)
            marks[(w0 + k) >> 6] |= 1ull << ((w0 + k) & 63);
    }
}

static void ck_part(sim *s, void *ctx, int32_t lo, int32_t hi, int tid)
{
    (void)s;
    ck_job *j = ctx;
    uint64_t buf[CK_BLK];
    uint64_t h = 0;
    for (int32_t b = lo; b < hi; b++) {
        size_t w0 = (size_t)b * CK_BLK, nb = j->nw - w0 < CK_BLK ? j->nw - w0 : CK_BLK;
        uint8_t *pv = j->prev + w0 * 8;
        if (j->full) {
            image_read(j->g, w0 * 8, nb * 8, pv);
            for (size_t k = 0; k < nb; k++) {
                uint64_t w;
                memcpy(&w, pv + k * 8, 8);
                h += mixw(w, w0 + k);
            }
            mark_nonzero(pv, w0, nb, j->dirty);
            continue;
        }
        image_read(j->g, w0 * 8, nb * 8, (uint8_t *)buf);
        for (size_t k = 0; k < nb; k++) {
            uint64_t a;
            memcpy(&a, pv + k * 8, 8);
            if (a == buf[k])
                continue;
            h += mixw(buf[k], w0 + k) - mixw(a, w0 + k);
            memcpy(pv + k * 8, &buf[k], 8);
            j->dirty[(w0 + k) >> 6] |= 1ull << ((w0 + k) & 63);
        }
    }
    j->h[tid] += h;
}

/* The first word >= w whose mark is `set` (nw when none). */
static size_t next_mark(const uint64_t *dirty, size_t nw, size_t w, int set)
{
    size_t nq = (nw + 63) / 64, q = w >> 6;
    if (q >= nq)
        return nw;
    uint64_t m = (set ? dirty[q] : ~dirty[q]) & (~0ull << (w & 63));
    while (!m && ++q < nq)
        m = set ? dirty[q] : ~dirty[q];
    if (!m)
        return nw;
    size_t r = q * 64 + (size_t)__builtin_ctzll(m);
    return r < nw ? r : nw;
}

/* The delta body of the marked words of img (their new values), run by run. */
static size_t delta_from_marks(const uint64_t *dirty, const uint8_t *img, size_t nw, uint8_t *out)
{
    size_t o = 0, last = 0;
    for (size_t w = next_mark(dirty, nw, 0, 1); w < nw; w = next_mark(dirty, nw, w, 1)) {
        size_t e = next_mark(dirty, nw, w, 0);
        o += put_varint(out + o, w - last);
        o += put_varint(out + o, e - w);
        memcpy(out + o, img + w * 8, (e - w) * 8);
        o += (e - w) * 8;
        last = w = e;
    }
    return o;
}

int sim_ck_zencode(const uint8_t *img, size_t len, uint8_t **body, size_t *n, rlab_err *err)
{
    size_t nw = len / 8;
    uint64_t *marks = rlab_calloc((nw + 63) / 64 + 1, sizeof *marks);
    uint8_t *out = rlab_malloc(len + 64);
    if (!marks || !out) {
        rlab_free(marks), rlab_free(out);
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    }
    mark_nonzero(img, 0, nw, marks);
    *n = delta_from_marks(marks, img, nw, out);
    *body = out;
    rlab_free(marks);
    return RLAB_OK;
}

int sim_ck_zdecode(const uint8_t *body, size_t n, uint8_t *img, size_t len)
{
    memset(img, 0, len);
    uint64_t h = 0;
    return delta_apply(img, len, body, n, &h);
}

/* The pass of ck_job over the image of len bytes; returns the summed hash terms. */
static uint64_t ck_pass(sim *s, const ck_seg *g, uint8_t *prev, size_t len, uint64_t *dirty,
                        int full)
{
    ck_job j = {.g = g, .prev = prev, .nw = len / 8, .dirty = dirty, .full = full};
    int32_t nblk = (int32_t)((j.nw + CK_BLK - 1) / CK_BLK);
    /* parts of at least par_min / 16 blocks (64, 2 MB; fewer when a test lowers par_min) */
    sim_par_for(s, nblk, s->par_min / 16 > 0 ? s->par_min / 16 : 1, ck_part, &j);
    uint64_t h = 0;
    for (int t = 0; t < SIM_MAX_THREADS; t++)
        h += j.h[t];
    return h;
}

int sim_save_state(const sim *s, uint8_t **out, size_t *nout, rlab_err *err)
{
    ck_layout L = layout(s->n, s->n_items, s->G, s->fo_off[s->n]);
    uint8_t *img = rlab_malloc(L.len);
    if (!img)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    image_build(s, img);
    *out = img;
    *nout = L.len;
    return RLAB_OK;
}

static void after_load(sim *s)
{
    sim_refresh_tastes(s);
    memset(&s->last, 0, sizeof s->last);
    s->last.round = s->round;
    s->last.satisfaction = s->last.sat_chance = 0.0;
    sim_ck_reset(s);
}

int sim_load_state(sim *s, const uint8_t *buf, size_t n, rlab_err *err)
{
    int rc;
    if (n >= 8 && memcmp(buf, magic_full, 8) == 0) {
        rc = image_load(s, buf, n, err);
    } else if (n >= 8 && memcmp(buf, magic_zfull, 8) == 0) {
        uint8_t *img = NULL;
        size_t len = 0;
        rc = zfull_expand(s, buf, n, &img, &len, err);
        rc = rc ? rc : image_load(s, img, len, err);
        rlab_free(img);
    } else if (n >= 8 && memcmp(buf, magic_v1, 8) == 0) {
        rc = load_v1(s, buf, n, err);
    } else if (n >= sizeof(ck_dhead) && memcmp(buf, magic_delta, 8) == 0) {
        ck_dhead dh;
        memcpy(&dh, buf, sizeof dh);
        return rlab_errf(err, RLAB_EFORMAT,
                         "simulator: the checkpoint of round %lld is a delta to round %lld "
                         "(restore it from the store)",
                         (long long)dh.round, (long long)dh.base_round);
    } else {
        return rlab_errf(err, RLAB_EFORMAT, "simulator: not a simulator checkpoint");
    }
    if (rc == RLAB_OK)
        after_load(s);
    return rc;
}

/* ---- checkpoints in the store ----------------------------------------------------------- */

void sim_ck_reset(sim *s)
{
    s->ck_len = 0;
    s->ck_since_full = 0;
}

void sim_ck_free(sim *s)
{
    rlab_free(s->ck_pend_dirty), rlab_free(s->ck_pend_model);
    s->ck_pend_dirty = NULL;
    s->ck_pend_model = NULL;
    s->ck_pend = 0;
    rlab_free(s->ck_prev), rlab_free(s->ck_out);
    s->ck_prev = s->ck_out = NULL;
    s->ck_cap = s->ck_out_cap = s->ck_len = 0;
}

/* ck_prev of len bytes, and ck_out for a row of it (a delta, or the image without its zero
 * words: at most the header, the image and a few bytes of run headers). */
static int ck_reserve(sim *s, size_t len, rlab_err *err)
{
    if (s->ck_cap < len) {
        uint8_t *b = rlab_realloc(s->ck_prev, len);
        if (!b) {
            sim_ck_reset(s);
            return rlab_errf(err, RLAB_ENOMEM, "out of memory");
        }
        s->ck_prev = b;
        s->ck_cap = len;
    }
    size_t need = sizeof(ck_dhead) + len + 64;
    if (s->ck_out_cap < need) {
        uint8_t *o = rlab_realloc(s->ck_out, need);
        if (!o)
            return rlab_errf(err, RLAB_ENOMEM, "out of memory");
        s->ck_out = o;
        s->ck_out_cap = need;
    }
    return RLAB_OK;
}

static int ck_store_row(sim *s, int64_t round, const char *model, const uint8_t *blob, size_t n,
                        rlab_err *err);

/* One image is kept (ck_prev, the last checkpoint's): a full image is built in it and
 * stored without its zero words ("RLSIMCK3"), a delta compares the live state against it and
 * updates the words that changed (ck_pass or delta_stream). */
int sim_checkpoint(sim *s, rlab_err *err)
{
    if (!s->db || !s->id)
        return RLAB_OK;
    int rc = sim_ck_flush(s, err); /* the last one's row first (none outside sim_step) */
    if (rc)
        return rc;
    ck_layout L = layout(s->n, s->n_items, s->G, s->fo_off[s->n]);
    size_t len = L.len;
    int every = s->cfg.checkpoint_full > 0 ? s->cfg.checkpoint_full : 25;
    int full = s->ck_len != len || s->ck_db != s->db || s->ck_id != s->id ||
               s->ck_prev_round >= s->round || s->ck_since_full + 1 >= every;
    rc = ck_reserve(s, len, err);
    if (rc)
        return rc;
    ck_head h;
    image_head(s, &h);
    ck_seg g[CK_NSEG];
    image_segments(s, &L, &h, g);
    sim_ck_stats cs = {.round = s->round, .full = full, .deferred = s->ck_defer, .len = len};
    double t0 = rlab_now();
    const uint8_t *blob = s->ck_out; /* the row: ck_dhead, then the body */
    size_t n = len;
    uint64_t hash = s->ck_prev_hash;
    /* left to the next round's writer (sim_step): the row, and a delta's encoding */
    char *defer_model = s->ck_defer ? rlab_strdup(s->model_name) : NULL;
    s->ck_len = 0; /* ck_prev is being rewritten: no base until the row is stored */
    /* an image of at least par_min / 8 blocks (128, 4 MB at the default par_min) goes through
     * ck_pass (threads), a smaller one through image_read or delta_stream. The marks: a
     * delta's changed words, a full image's non-zero words; either body is encoded from them
     * (delta_from_marks), except a small image's delta (delta_stream encodes it) */
    uint64_t *dirty = NULL;
    size_t par_blocks = (size_t)(s->par_min / 8 > 0 ? s->par_min / 8 : 1);
    int par = len / 8 / CK_BLK >= par_blocks;
    if (full || par) {
        dirty = rlab_calloc((len / 8 + 63) / 64, sizeof *dirty);
        if (!dirty) {
            rlab_free(defer_model);
            return rlab_errf(err, RLAB_ENOMEM, "out of memory");
        }
    }
    ck_dhead dh;
    memset(&dh, 0, sizeof dh);
    memcpy(dh.magic, full ? magic_zfull : magic_delta, 8);
    dh.round = s->round;
    dh.base_round = full ? -1 : s->ck_prev_round;
    dh.base_hash = full ? 0 : s->ck_prev_hash;
    dh.len = len;
    if (full && par) {
        hash = (uint64_t)len * 0x2545f4914f6cdd1dull + ck_pass(s, g, s->ck_prev, len, dirty, 1);
    } else if (full) {
        image_read(g, 0, len, s->ck_prev);
        hash = image_hash(s->ck_prev, len);
        mark_nonzero(s->ck_prev, 0, len / 8, dirty);
    } else if (dirty) {
        hash += ck_pass(s, g, s->ck_prev, len, dirty, 0);
    } else {
        n = sizeof dh + delta_stream(g, s->ck_prev, len, s->ck_out + sizeof dh, &hash);
    }
    if (dirty && defer_model) {
        n = 0; /* encoded by sim_ck_flush */
    } else if (dirty) {
        double t1 = rlab_now();
        cs.pass_s = t1 - t0;
        n = sizeof dh + delta_from_marks(dirty, s->ck_prev, len / 8, s->ck_out + sizeof dh);
        cs.encode_s = rlab_now() - t1;
        rlab_free(dirty);
        dirty = NULL;
    }
    dh.hash = hash;
    memcpy(s->ck_out, &dh, sizeof dh);
    if (!s->st_ckpt) {
        s->st_ckpt = rlab_db_prepare_persistent(
            s->db,
            "INSERT OR REPLACE INTO simulator_checkpoints VALUES(:sim, :round, :model, "
            ":bytes, :state)",
            err);
        if (!s->st_ckpt) {
            rlab_free(dirty), rlab_free(defer_model);
            sim_ck_reset(s);
            return err->code;
        }
    }
    if (!(cs.pass_s > 0.0)) /* a streamed delta or a deferred checkpoint */
        cs.pass_s = rlab_now() - t0;
    if (defer_model) { /* the image stands as the base now; sim_ck_flush resets it on failure */
        s->ck_pend = 1;
        s->ck_pend_round = s->round;
        s->ck_pend_n = n;
        s->ck_pend_dirty = dirty;
        s->ck_pend_model = defer_model;
    } else {
        double t1 = rlab_now();
        rc = ck_store_row(s, s->round, s->model_name, blob, n, err);
        cs.row_s = rlab_now() - t1;
        cs.bytes = n;
        if (rc) {
            sim_ck_reset(s);
            return rc;
        }
    }
    s->ck_last = cs;
    s->ck_len = len;
    s->ck_prev_hash = hash;
    s->ck_prev_round = s->round;
    s->ck_db = s->db;
    s->ck_id = s->id;
    s->ck_since_full = full ? 0 : s->ck_since_full + 1;
    return RLAB_OK;
}

/* The row of one checkpoint (blob of n bytes) through the prepared st_ckpt. */
static int ck_store_row(sim *s, int64_t round, const char *model, const uint8_t *blob, size_t n,
                        rlab_err *err)
{
    rlab_db_stmt *q = s->st_ckpt;
    /* the row's commit does not copy the log into the database file on this thread (a full
     * image at 100,000 agents is ~170 MB: a second copy and two syncs): a thread of the store
     * does, beside what follows (the next round, or the caller's next work) */
    int rc = rlab_db_autocheckpoint(s->db, 0, err);
    rc = rc ? rc : rlab_db_bind_int(q, ":sim", s->id, err);
    rc = rc ? rc : rlab_db_bind_int(q, ":round", round, err);
    rc = rc ? rc : rlab_db_bind_text(q, ":model", model, err);
    rc = rc ? rc : rlab_db_bind_int(q, ":bytes", (int64_t)n, err);
    /* bound without a copy (a full image is ~1.7 KB per agent); rebound to NULL below */
    rc = rc ? rc : rlab_db_bind_blob_static(q, ":state", blob, n, err);
    if (rc == RLAB_OK) {
        rc = rlab_db_step(q, err);
        if (rc == RLAB_DB_ROW)
            rc = RLAB_OK;
    }
    rlab_db_reset(q);
    /* the statement keeps its bound values after a reset: drop the blob (bound without a
     * copy: the image it points to changes from here on) */
    rlab_err e2 = {0};
    rlab_db_bind_null(q, ":state", &e2);
    int arc = rlab_db_autocheckpoint(s->db, 1, &e2);
    if (rc == RLAB_OK && arc == RLAB_OK) {
        rc = rlab_db_checkpoint_background(s->db, err);
    } else if (rc == RLAB_OK) {
        rc = rlab_errf(err, arc, "%s", e2.msg);
    }
    return rc;
}

int sim_ck_flush(sim *s, rlab_err *err)
{
    if (!s->ck_pend)
        return RLAB_OK;
    /* the header is in ck_out; the body from the marks (a full image's non-zero words, a
     * delta's changed ones) or there already (a delta by delta_stream) */
    const uint8_t *blob = s->ck_out;
    size_t n = s->ck_pend_n;
    if (s->ck_pend_dirty)
        n = sizeof(ck_dhead) + delta_from_marks(s->ck_pend_dirty, s->ck_prev, s->ck_len / 8,
                                                s->ck_out + sizeof(ck_dhead));
    int rc = ck_store_row(s, s->ck_pend_round, s->ck_pend_model, blob, n, err);
    rlab_free(s->ck_pend_dirty), rlab_free(s->ck_pend_model);
    s->ck_pend_dirty = NULL;
    s->ck_pend_model = NULL;
    s->ck_pend = 0;
    if (rc)
        sim_ck_reset(s);
    return rc;
}

/* One stored checkpoint blob (a copy, rlab_free). ENOTFOUND when there is none. */
static int fetch_ck(rlab_db *db, int64_t id, int64_t round, uint8_t **out, size_t *n, rlab_err *err)
{
    rlab_db_value prm[2] = {{.type = RLAB_DB_INT, .i = id}, {.type = RLAB_DB_INT, .i = round}};
    rlab_db_result *r = rlab_db_query_table(
        db, "SELECT state FROM simulator_checkpoints WHERE sim = ?1 AND round = ?2", prm, 2, 0,
        err);
    if (!r)
        return err->code ? err->code : RLAB_EIO;
    int rc = RLAB_OK;
    if (r->nrow == 0) {
        rc = rlab_errf(err, RLAB_ENOTFOUND, "simulation %lld has no checkpoint of round %lld",
                       (long long)id, (long long)round);
    } else {
        const rlab_db_value *c = rlab_db_result_cell(r, 0, 0);
        *n = c->s ? c->n : 0;
        *out = rlab_malloc(*n ? *n : 1);
        if (!*out)
            rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
        else if (*n)
            memcpy(*out, c->s, *n);
    }
    rlab_db_result_free(r);
    return rc;
}

int sim_restore(sim *s, rlab_db *db, int64_t id, int64_t round, rlab_err *err)
{
    /* walk back to the last full image, keeping the deltas on the way */
    uint8_t **chain = NULL;
    size_t *clen = NULL, nc = 0, cap = 0;
    uint8_t *img = NULL;
    size_t ilen = 0;
    int64_t r = round;
    int rc = RLAB_OK;
    for (;;) {
        uint8_t *b = NULL;
        size_t n = 0;
        rc = fetch_ck(db, id, r, &b, &n, err);
        if (rc)
            break;
        if (n < sizeof(ck_dhead) || memcmp(b, magic_delta, 8) != 0) {
            img = b, ilen = n;
            break;
        }
        ck_dhead dh;
        memcpy(&dh, b, sizeof dh);
        if (dh.round != r || dh.base_round >= r) {
            rlab_free(b);
            rc = rlab_errf(err, RLAB_EFORMAT, "simulator: corrupt delta checkpoint of round %lld",
                           (long long)r);
            break;
        }
        if (nc == cap) {
            size_t nc2 = cap ? 2 * cap : 32;
            uint8_t **c2 = rlab_realloc(chain, nc2 * sizeof *c2);
            if (c2)
                chain = c2;
            size_t *l2 = c2 ? rlab_realloc(clen, nc2 * sizeof *l2) : NULL;
            if (!l2) {
                rlab_free(b);
                rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
                break;
            }
            clen = l2;
            cap = nc2;
        }
        chain[nc] = b, clen[nc++] = n;
        r = dh.base_round;
    }
    if (rc == RLAB_OK && ilen >= 8 && memcmp(img, magic_zfull, 8) == 0) {
        uint8_t *full = NULL;
        size_t flen = 0;
        rc = zfull_expand(s, img, ilen, &full, &flen, err);
        rlab_free(img);
        img = full, ilen = flen;
    }
    if (rc == RLAB_OK && nc > 0) {
        /* apply the deltas forward onto the full image */
        if (ilen < 8 || memcmp(img, magic_full, 8) != 0 || ilen % 8 != 0)
            rc = rlab_errf(err, RLAB_EFORMAT,
                           "simulator: checkpoint of round %lld is not a full image", (long long)r);
        uint64_t h = rc ? 0 : image_hash(img, ilen);
        for (size_t k = nc; rc == RLAB_OK && k-- > 0;) {
            ck_dhead dh;
            memcpy(&dh, chain[k], sizeof dh);
            if (dh.len != ilen || dh.base_hash != h)
                rc = rlab_errf(err, RLAB_EFORMAT,
                               "simulator: the checkpoint of round %lld does not apply to the "
                               "stored round %lld (broken chain)",
                               (long long)dh.round, (long long)dh.base_round);
            else if (delta_apply(img, ilen, chain[k] + sizeof dh, clen[k] - sizeof dh, &h))
                rc = rlab_errf(err, RLAB_EFORMAT,
                               "simulator: corrupt delta checkpoint of round %lld",
                               (long long)dh.round);
            else if (h != dh.hash)
                rc = rlab_errf(err, RLAB_EFORMAT,
                               "simulator: checkpoint of round %lld fails its hash check",
                               (long long)dh.round);
        }
    }
    if (rc == RLAB_OK)
        rc = sim_load_state(s, img, ilen, err);
    for (size_t k = 0; k < nc; k++)
        rlab_free(chain[k]);
    rlab_free(chain), rlab_free(clen), rlab_free(img);
    return rc;
}
