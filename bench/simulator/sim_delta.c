/*
 * bench/simulator/sim_delta: how much of a checkpoint's image changes between checkpoints,
 * section by section, and what a delta costs on the calling thread. JSON lines.
 *
 *   sim_delta [agents] [rounds between checkpoints] [checkpoints]   (100000 10 3)
 *
 * A generated world of `agents` users (the demo world's shape, as the scale run of
 * bench/simulator), the random recommender, seed 3, a fresh store; as `simulator.new` then
 * `simulator.step`: the round-0 checkpoint is written at set-up (a full image), then each step
 * of `rounds` rounds ends on a checkpoint (checkpoint_every = rounds), a delta against the
 * previous one. Per checkpoint: the delta's bytes, the image's 8-byte words changed (all, per
 * section: sim_ck_sections, and the agents' section by field), their runs, and the wall
 * seconds on the calling thread of the compare pass (on the simulation's threads), the
 * delta's encoding and the row's insert and commit (sim_ck_stats). Last, the same state
 * written as a full image, for comparison.
 * The images compared are sim_save_state's (the bytes a full checkpoint would store).
 */
#define SIM_INTERNAL
#include "benchutil.h"
#include "sim.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void line(const char *metric, double v, const char *unit, const char *baseline)
{
    printf("{\"bench\": \"sim_delta\", \"metric\": \"%s\", \"value\": %.6g, \"unit\": \"%s\", "
           "\"baseline\": %s}\n",
           metric, v, unit, baseline);
    fflush(stdout);
}

/* Words of [off, off + len) that differ between a and b, and the runs they form. */
static void diff_words(const uint8_t *a, const uint8_t *b, size_t off, size_t len, size_t *changed,
                       size_t *runs)
{
    size_t c = 0, r = 0;
    int in = 0;
    for (size_t i = off; i + 8 <= off + len; i += 8) {
        int d = memcmp(a + i, b + i, 8) != 0;
        c += (size_t)d;
        r += (size_t)(d && !in);
        in = d;
    }
    *changed = c;
    *runs = r;
}

static void report(const char *tag, const sim_ck_stats *cs, int64_t base_round, double load)
{
    char base[400], m[96];
    snprintf(base, sizeof base,
             "{\"round\": %lld, \"base_round\": %lld, \"full\": %d, \"image_bytes\": %zu, "
             "\"loadavg\": %.2f}",
             (long long)cs->round, (long long)base_round, cs->full, cs->len, load);
    snprintf(m, sizeof m, "%s_row_bytes", tag);
    line(m, (double)cs->bytes, "bytes", base);
    snprintf(m, sizeof m, "%s_fraction_of_image", tag);
    line(m, (double)cs->bytes / (double)cs->len, "ratio", base);
    snprintf(m, sizeof m, "%s_pass_s", tag);
    line(m, cs->pass_s, "s", base);
    snprintf(m, sizeof m, "%s_encode_s", tag);
    line(m, cs->encode_s, "s", base);
    snprintf(m, sizeof m, "%s_row_s", tag);
    line(m, cs->row_s, "s", base);
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 100000;
    int every = argc > 2 ? atoi(argv[2]) : 10, nck = argc > 3 ? atoi(argv[3]) : 3;
    if (n < 1 || every < 1 || nck < 1) {
        fprintf(stderr, "usage: sim_delta [agents] [rounds between checkpoints] [checkpoints]\n");
        return 2;
    }
    rlab_err err = {0};
    rlab_world_config wc;
    rlab_world_config_demo(&wc);
    double per_user = (double)wc.n_inter / wc.n_users;
    wc.n_users = n;
    wc.n_inter = (int64_t)(per_user * n);
    rlab_world *w = NULL;
    rlab_dataset *ds = NULL;
    if (rlab_world_generate(&wc, "delta", &w, &ds, &err)) {
        fprintf(stderr, "world: %s\n", err.msg);
        return 1;
    }
    char dir[] = "/tmp/reclab-sim-delta-XXXXXX", path[256];
    if (!mkdtemp(dir))
        return 1;
    snprintf(path, sizeof path, "%s/delta.db", dir);
    rlab_db *db = rlab_db_open(path, 0, &err);
    if (!db || rlab_db_plugin_migrate(db, "simulator", sim_schema, 1, &err)) {
        fprintf(stderr, "store: %s\n", err.msg);
        return 1;
    }
    rlab_db_run_info ri = {.plugin = "simulator", .name = "delta"};
    int64_t run = 0;
    rlab_db_run_begin(db, &ri, &run, &err);
    sim_config c;
    sim_config_default(&c);
    c.seed = 3;
    c.n_agents = n;
    c.checkpoint_every = every;
    sim *s = NULL;
    if (sim_new(&c, ds, w, NULL, NULL, &s, &err)) {
        fprintf(stderr, "sim: %s\n", err.msg);
        return 1;
    }
    sim_set_id(s, run);
    sim_attach_store(s, db, run);
    int rc = sim_checkpoint(s, &err); /* round 0, as simulator.new */
    if (rc == RLAB_OK)
        report("round0", &s->ck_last, -1, rlab_bench_load1());
    uint8_t *prev = NULL, *cur = NULL;
    size_t nprev = 0, ncur = 0;
    if (rc == RLAB_OK)
        rc = sim_save_state(s, &prev, &nprev, &err);
    for (int k = 0; rc == RLAB_OK && k < nck; k++) {
        int64_t base_round = s->round;
        rc = sim_step(s, every, NULL, NULL, NULL, NULL, NULL, &err);
        if (rc == RLAB_OK)
            rc = sim_save_state(s, &cur, &ncur, &err);
        if (rc)
            break;
        double load = rlab_bench_load1();
        char tag[32];
        snprintf(tag, sizeof tag, "delta%d", k + 1);
        report(tag, &s->ck_last, base_round, load);
        sim_ck_section sec[SIM_CK_NSECT];
        sim_ck_sections(s, sec);
        size_t all = 0, all_runs = 0;
        for (int j = 0; j < SIM_CK_NSECT && ncur == nprev; j++) {
            size_t ch = 0, runs = 0;
            diff_words(prev, cur, sec[j].off, sec[j].len, &ch, &runs);
            all += ch, all_runs += runs;
            char base[300], m[96];
            snprintf(base, sizeof base,
                     "{\"round\": %lld, \"base_round\": %lld, \"section_bytes\": %zu, "
                     "\"words_changed\": %zu, \"runs\": %zu}",
                     (long long)s->round, (long long)base_round, sec[j].len, ch, runs);
            snprintf(m, sizeof m, "%s_words_changed_fraction_%s", tag, sec[j].name);
            line(m, sec[j].len >= 8 ? (double)ch / (double)(sec[j].len / 8) : 0.0, "ratio", base);
        }
        /* the agents' section by field: words of each field range (the agent is a multiple
         * of 8 bytes; a word across two fields counts for the one it starts in) */
        static const struct {
            const char *name;
            size_t off;
        } fld[] = {{"profile", 0},
                   {"activity", offsetof(sim_agent, arch)},
                   {"watched", offsetof(sim_agent, watched)},
                   {"heard", offsetof(sim_agent, heard)},
                   {"qhist", offsetof(sim_agent, qhist)},
                   {"counters", offsetof(sim_agent, n_qhist)},
                   {"stm", offsetof(sim_agent, stm)},
                   {"stm_enh_items", offsetof(sim_agent, stm_enh_items)},
                   {"ltm", offsetof(sim_agent, ltm)},
                   {NULL, sizeof(sim_agent)}};
        const sim_ck_section *ag = &sec[4];
        for (int f = 0; fld[f].name && ncur == nprev; f++) {
            size_t lo = (fld[f].off + 7) / 8, hi = (fld[f + 1].off + 7) / 8;
            size_t ch = 0, words = 0;
            for (int32_t a = 0; a < s->n; a++) {
                size_t at = ag->off + (size_t)a * sizeof(sim_agent);
                for (size_t wd = lo; wd < hi; wd++)
                    ch += memcmp(prev + at + wd * 8, cur + at + wd * 8, 8) != 0;
                words += hi - lo;
            }
            char fb[200], fm[96];
            snprintf(fb, sizeof fb,
                     "{\"round\": %lld, \"base_round\": %lld, \"field_bytes\": %zu, "
                     "\"words_changed\": %zu}",
                     (long long)s->round, (long long)base_round, (hi - lo) * 8, ch);
            snprintf(fm, sizeof fm, "%s_words_changed_fraction_agents_%s", tag, fld[f].name);
            line(fm, words ? (double)ch / (double)words : 0.0, "ratio", fb);
        }
        char base[200], m[96];
        snprintf(base, sizeof base,
                 "{\"round\": %lld, \"base_round\": %lld, \"image_words\": %zu, \"runs\": %zu}",
                 (long long)s->round, (long long)base_round, ncur / 8, all_runs);
        snprintf(m, sizeof m, "%s_words_changed_fraction", tag);
        line(m, ncur == nprev ? (double)all / (double)(ncur / 8) : -1.0, "ratio", base);
        rlab_free(prev);
        prev = cur, nprev = ncur;
        cur = NULL;
    }
    if (rc == RLAB_OK) { /* the same state as a full image, for comparison */
        sim_ck_reset(s);
        rc = sim_checkpoint(s, &err);
        if (rc == RLAB_OK)
            report("full", &s->ck_last, -1, rlab_bench_load1());
    }
    if (rc)
        fprintf(stderr, "sim_delta: %s\n", err.msg);
    rlab_free(prev);
    sim_free(s);
    rlab_db_run_end(db, run, RLAB_RUN_DONE, NULL, &err);
    rlab_db_close(db);
    const char *sfx[] = {"", "-wal", "-shm", "-runs"};
    for (int k = 0; k < 4; k++) {
        snprintf(path, sizeof path, "%s/delta.db%s", dir, sfx[k]);
        unlink(path);
    }
    rmdir(dir);
    rlab_world_free(w);
    rlab_dataset_free(ds);
    return rc ? 1 : 0;
}
