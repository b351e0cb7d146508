/*
 * bench/simulator/sim_digest: digests of a fixed-seed simulation, to show that a change to the
 * engine's speed did not change what it simulates (compare the output of two builds).
 *
 *   sim_digest [agents] [rounds]      (default 3000 agents, 6 rounds)
 *
 * Runs four configurations on a generated world of `agents` users (the demo world's shape):
 * random recommender; swap_k = 2; pareto activity with max_active; checkpoint every round and
 * every 3 rounds. Prints one line per configuration: FNV-1a digests of the event log (seq,
 * round, vtime, agent, kind, payload in seq order), the statistics rows, and the final state
 * image (sim_save_state), with the counts. Same output = same simulation.
 * SIM_DIGEST_THREADS=n sets sim_config.threads (default 0: the machine's cores),
 * SIM_DIGEST_PAR_MIN=m the smallest part per thread (default SIM_PAR_MIN);
 * SIM_DIGEST_DUMP=file appends the rows digested, tab-separated.
 */
#define SIM_INTERNAL
#include "sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++) {
        h ^= c[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static uint64_t table_digest(rlab_db *db, const char *sql, int64_t id, long *rows)
{
    rlab_err err = {0};
    rlab_db_value p[1] = {{.type = RLAB_DB_INT, .i = id}};
    rlab_db_result *r = rlab_db_query_table(db, sql, p, 1, 0, &err);
    uint64_t h = 0xcbf29ce484222325ull;
    *rows = r ? (long)r->nrow : -1;
    FILE *dump = getenv("SIM_DIGEST_DUMP") ? fopen(getenv("SIM_DIGEST_DUMP"), "a") : NULL;
    for (int64_t i = 0; r && i < r->nrow; i++)
        for (int c = 0; c < r->ncol; c++) {
            if (dump) {
                const rlab_db_value *v = rlab_db_result_cell(r, i, c);
                if (v->type == RLAB_DB_TEXT)
                    fprintf(dump, "%.*s%s", (int)v->n, v->s, c + 1 < r->ncol ? "\t" : "\n");
                else if (v->type == RLAB_DB_INT)
                    fprintf(dump, "%lld%s", (long long)v->i, c + 1 < r->ncol ? "\t" : "\n");
                else if (v->type == RLAB_DB_REAL)
                    fprintf(dump, "%.17g%s", v->r, c + 1 < r->ncol ? "\t" : "\n");
                else
                    fprintf(dump, "-%s", c + 1 < r->ncol ? "\t" : "\n");
            }
            const rlab_db_value *v = rlab_db_result_cell(r, i, c);
            h = fnv(h, &v->type, sizeof v->type);
            if (v->type == RLAB_DB_INT)
                h = fnv(h, &v->i, sizeof v->i);
            else if (v->type == RLAB_DB_REAL)
                h = fnv(h, &v->r, sizeof v->r);
            else if (v->s)
                h = fnv(h, v->s, v->n);
        }
    rlab_db_result_free(r);
    if (dump)
        fclose(dump);
    return h;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 3000, rounds = argc > 2 ? atoi(argv[2]) : 6;
    rlab_err err = {0};
    rlab_world_config wc;
    rlab_world_config_demo(&wc);
    double per_user = (double)wc.n_inter / wc.n_users;
    wc.n_users = n;
    wc.n_inter = (int64_t)(per_user * n);
    rlab_world *w = NULL;
    rlab_dataset *ds = NULL;
    if (rlab_world_generate(&wc, "digest", &w, &ds, &err)) {
        fprintf(stderr, "world: %s\n", err.msg);
        return 1;
    }
    char dir[] = "/tmp/reclab-sim-digest-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    for (int v = 0; v < 4; v++) {
        char path[256];
        snprintf(path, sizeof path, "%s/d%d.db", dir, v);
        rlab_db *db = rlab_db_open(path, 0, &err);
        if (!db || rlab_db_plugin_migrate(db, "simulator", sim_schema, 1, &err)) {
            fprintf(stderr, "store: %s\n", err.msg);
            return 1;
        }
        rlab_db_run_info ri = {.plugin = "simulator", .name = "digest"};
        int64_t run = 0;
        rlab_db_run_begin(db, &ri, &run, &err);
        sim_config c;
        sim_config_default(&c);
        c.seed = 5 + (uint64_t)v;
        c.n_agents = n;
        c.checkpoint_every = v == 3 ? 3 : 1;
        c.threads = getenv("SIM_DIGEST_THREADS") ? atoi(getenv("SIM_DIGEST_THREADS")) : 0;
        if (v == 1)
            c.swap_k = 2;
        if (v == 2) {
            c.activity = SIM_ACT_PARETO;
            c.active_prob = 0.3;
            c.max_active = n / 3;
        }
        sim *s = NULL;
        if (sim_new(&c, ds, w, NULL, NULL, &s, &err)) {
            fprintf(stderr, "sim: %s\n", err.msg);
            return 1;
        }
        if (getenv("SIM_DIGEST_PAR_MIN"))
            s->par_min = atoi(getenv("SIM_DIGEST_PAR_MIN"));
        sim_set_id(s, run);
        sim_attach_store(s, db, run);
        if (sim_step(s, rounds, NULL, NULL, NULL, NULL, NULL, &err)) {
            fprintf(stderr, "step: %s\n", err.msg);
            return 1;
        }
        uint8_t *img = NULL;
        size_t nimg = 0;
        uint64_t hs = 0;
        if (sim_save_state(s, &img, &nimg, &err) == RLAB_OK)
            hs = fnv(0xcbf29ce484222325ull, img, nimg);
        rlab_free(img);
        sim_free(s);
        long ne = 0, ns = 0, nc = 0;
        uint64_t he = table_digest(db,
                                   "SELECT seq, round, vtime, agent, kind, payload FROM events "
                                   "WHERE run_id = ?1 ORDER BY seq",
                                   run, &ne);
        uint64_t hst = table_digest(
            db, "SELECT * FROM simulator_stats WHERE sim = ?1 ORDER BY round", run, &ns);
        uint64_t hc = table_digest(
            db,
            "SELECT round, bytes, state FROM simulator_checkpoints WHERE sim = ?1 ORDER BY round",
            run, &nc);
        printf("config %d: events %ld %016llx stats %ld %016llx state %zu %016llx checkpoints %ld "
               "%016llx\n",
               v, ne, (unsigned long long)he, ns, (unsigned long long)hst, nimg,
               (unsigned long long)hs, nc, (unsigned long long)hc);
        rlab_db_run_end(db, run, RLAB_RUN_DONE, NULL, &err);
        rlab_db_close(db);
        const char *sfx[] = {"", "-wal", "-shm", "-runs"};
        for (int k = 0; k < 4; k++) {
            snprintf(path, sizeof path, "%s/d%d.db%s", dir, v, sfx[k]);
            unlink(path);
        }
    }
    rmdir(dir);
    rlab_world_free(w);
    rlab_dataset_free(ds);
    return 0;
}
