/*
 * tests/simulator: a simulation continued after the workspace is reopened. One host steps a
 * simulation and branches it in process; a new host over the same store lists it as stored,
 * branches the same round from the store (config, dataset, ground truth, recommender and the
 * retraining log rebuilt), and the branch's next rounds must equal the in-process branch's.
 */
#include "harness.h"
#include "harness_host.h"
#include "host/host.h"
#include "store/store.h"

#include <stdio.h>
#include <string.h>

static int64_t res_int(const rlab_result *r, const char *name)
{
    const rlab_cell *c = r ? rlab_result_scalar(r, name) : NULL;
    return c ? c->i : -1;
}

/* The statistics rows of one simulation after round `after`, as text (one line a round). */
static void stats_digest(rlab_host *h, int64_t sim, int64_t after, char *out, size_t n)
{
    rlab_err err = {0};
    rlab_db_value p[2] = {{.type = RLAB_DB_INT, .i = sim}, {.type = RLAB_DB_INT, .i = after}};
    rlab_db_result *r = rlab_db_query_table(
        rlab_host_db(h),
        "SELECT printf('%d %.17g %d %d %d %d %d %.17g %.17g %.17g %.17g %.17g', round, vtime, "
        "active, watches, rec_watches, chats, posts, ctr, coverage, exposure_entropy, "
        "watch_entropy, coalesce(satisfaction, -1)) FROM simulator_stats WHERE sim = ?1 AND "
        "round > ?2 ORDER BY round",
        p, 2, 0, &err);
    CHECK_MSG(r != NULL, "%s", err.msg);
    out[0] = '\0';
    for (int k = 0; r && k < r->nrow; k++) {
        const rlab_db_value *c = rlab_db_result_cell(r, k, 0);
        size_t l = strlen(out);
        snprintf(out + l, n - l, "%.*s\n", (int)c->n, c->s);
    }
    rlab_db_result_free(r);
}

static rlab_host *open_host(const char *path)
{
    rlab_err err = {0};
    rlab_host *h = rlab_host_new(NULL, &err);
    CHECK_MSG(h != NULL, "%s", err.msg);
    if (!h)
        return NULL;
    rlab_host_load_all(h, NULL, &err);
    CHECK_MSG(rlab_host_set_store(h, path, &err) == RLAB_OK, "%s", err.msg);
    return h;
}

static void t_reopen_branch(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/reopen.db", rlab_test_tmpdir());
    remove(path);
    rlab_host *h = open_host(path);
    if (!h || !rlab_host_find_cmd(h, "simulator.new")) {
        rlab_test_skip("simulator plugin not loaded");
        rlab_host_free(h);
        return;
    }
    /* the demo world, recorded: the second host rebuilds it from the store on first use */
    rlab_err werr = {0};
    CHECK_MSG(rlab_host_make_world(h, rlab_host_db(h), NULL, "demo", NULL, &werr) == RLAB_OK, "%s",
              werr.msg);
    /* a trained recommender when the baselines are there (restored by name from the store
     * after the reopen), else the random one */
    const char *model = "random";
    if (rlab_host_find_cmd(h, "train bprmf")) {
        rlab_result_free(rlab_test_run(
            h, "train bprmf data=demo name=bpr split=none epochs=3 eval_every=0 seed=3", RLAB_OK,
            NULL));
        model = "bpr";
    }
    char line[256];
    snprintf(line, sizeof line, "simulator.new data=demo agents=60 seed=5 model=%s", model);
    rlab_result *r = rlab_test_run(h, line, RLAB_OK, NULL);
    int64_t sim = res_int(r, "sim");
    rlab_result_free(r);
    rlab_result_free(rlab_test_run(h, "simulator.step rounds=5", RLAB_OK, NULL));
    /* the in-process branch of round 3 and its next three rounds */
    snprintf(line, sizeof line, "simulator.branch sim=%lld round=3", (long long)sim);
    r = rlab_test_run(h, line, RLAB_OK, NULL);
    int64_t b1 = res_int(r, "sim"), rows1 = res_int(r, "retrain_rows");
    rlab_result_free(r);
    CHECK(rows1 > 0);
    rlab_result_free(rlab_test_run(h, "simulator.step rounds=3", RLAB_OK, NULL));
    rlab_host_free(h);

    /* a new process: the store's simulations are listed, and branched */
    h = open_host(path);
    if (!h)
        return;
    r = rlab_test_run(h, "simulator.list", RLAB_OK, NULL);
    CHECK(r && r->ntables == 1 && r->tables[0]->nrows == 2);
    rlab_result_free(r);
    snprintf(line, sizeof line, "simulator.branch sim=%lld round=3", (long long)sim);
    r = rlab_test_run(h, line, RLAB_OK, NULL);
    int64_t b2 = res_int(r, "sim");
    CHECK_EQ_INT(res_int(r, "parent"), sim);
    CHECK_EQ_INT(res_int(r, "retrain_rows"), rows1);
    rlab_result_free(r);
    CHECK(b2 > b1);
    r = rlab_test_run(h, "simulator.step rounds=3", RLAB_OK, NULL);
    const rlab_cell *mc = r ? rlab_result_scalar(r, "model") : NULL;
    CHECK_MSG(mc && mc->s && strcmp(mc->s, model) == 0, "recommender %s, expected %s",
              mc && mc->s ? mc->s : "(none)", model);
    rlab_result_free(r);
    char d1[4096], d2[4096];
    stats_digest(h, b1, 3, d1, sizeof d1);
    stats_digest(h, b2, 3, d2, sizeof d2);
    CHECK_MSG(strlen(d1) > 20 && strcmp(d1, d2) == 0, "in process:\n%sreopened:\n%s", d1, d2);
    /* the list: the parent and both branches, stored (none loaded in this host) */
    r = rlab_test_run(h, "simulator.list", RLAB_OK, NULL);
    CHECK(r && r->ntables == 1 && r->tables[0]->nrows == 3);
    rlab_result_free(r);

    /* errors: a round never checkpointed, a simulation the store lacks, a changed dataset */
    snprintf(line, sizeof line, "simulator.branch sim=%lld round=40", (long long)sim);
    {
        rlab_err e40 = {0};
        rlab_result *r40 = NULL;
        CHECK(rlab_host_run_sync(h, line, &r40, &e40) == RLAB_ENOTFOUND);
        CHECK_STR_CONTAINS(e40.msg, "has no checkpoint of round 40");
        rlab_result_free(r40);
    }
    rlab_result_free(rlab_test_run(h, "simulator.branch sim=99999 round=1", RLAB_ENOTFOUND,
                                   "simulator.branch: no simulation 99999 (neither loaded nor in "
                                   "the store)"));
    /* a stored config without some keys (a workspace older than those arguments): they take
     * simulator.new's defaults (the same as given here), so the same rounds */
    rlab_err err = {0};
    rlab_db_value p[1] = {{.type = RLAB_DB_INT, .i = sim}};
    rlab_db_result *u = rlab_db_query_table(
        rlab_host_db(h),
        "UPDATE simulator_sims SET config = json_remove(config, '$.interval', '$.page', "
        "'$.steps') WHERE sim = ?1",
        p, 1, RLAB_DB_ALLOW_WRITES, &err);
    CHECK_MSG(u != NULL, "%s", err.msg);
    rlab_db_result_free(u);
    rlab_host_free(h);
    h = open_host(path);
    if (!h)
        return;
    snprintf(line, sizeof line, "simulator.branch sim=%lld round=3", (long long)sim);
    r = rlab_test_run(h, line, RLAB_OK, NULL);
    const int64_t b3 = res_int(r, "sim");
    rlab_result_free(r);
    rlab_result_free(rlab_test_run(h, "simulator.step rounds=3", RLAB_OK, NULL));
    char d3[4096];
    stats_digest(h, b3, 3, d3, sizeof d3);
    CHECK_MSG(strcmp(d1, d3) == 0, "in process:\n%sconfig without keys:\n%s", d1, d3);

    u = rlab_db_query_table(rlab_host_db(h),
                            "UPDATE simulator_sims SET data_sha = 'x|y|1|2|3' WHERE sim = ?1", p, 1,
                            RLAB_DB_ALLOW_WRITES, &err);
    CHECK_MSG(u != NULL, "%s", err.msg);
    rlab_db_result_free(u);
    rlab_host_free(h);
    h = open_host(path);
    snprintf(line, sizeof line, "simulator.branch sim=%lld round=3", (long long)sim);
    rlab_err berr = {0};
    rlab_result *bad = NULL;
    CHECK(rlab_host_run_sync(h, line, &bad, &berr) == RLAB_ESTATE);
    CHECK_STR_CONTAINS(berr.msg, "dataset 'demo' changed since simulation");
    rlab_result_free(bad);
    rlab_host_free(h);
}

/* One count from the store (the first cell of sql, one parameter). */
static int64_t count_rows(rlab_host *h, const char *sql, int64_t v)
{
    rlab_err err = {0};
    rlab_db_value p[1] = {{.type = RLAB_DB_INT, .i = v}};
    rlab_db_result *r = rlab_db_query_table(rlab_host_db(h), sql, p, 1, 0, &err);
    CHECK_MSG(r != NULL, "%s", err.msg);
    int64_t n = r && r->nrow ? rlab_db_result_cell(r, 0, 0)->i : -1;
    rlab_db_result_free(r);
    return n;
}

/* A simulation whose round-0 checkpoint the store refuses (a trigger) fails simulator.new and
 * leaves no simulator_sims row behind (enlist's error path after the row was written). */
static void t_refused_checkpoint(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/refused_ck.db", rlab_test_tmpdir());
    remove(path);
    rlab_host *h = open_host(path);
    if (!h || !rlab_host_find_cmd(h, "simulator.new")) {
        rlab_test_skip("simulator plugin not loaded");
        rlab_host_free(h);
        return;
    }
    rlab_err err = {0};
    CHECK_MSG(rlab_host_make_world(h, rlab_host_db(h), NULL, "demo", NULL, &err) == RLAB_OK, "%s",
              err.msg);
    rlab_result *r = rlab_test_run(h, "simulator.new data=demo agents=4 seed=1", RLAB_OK, NULL);
    int64_t kept = res_int(r, "sim");
    rlab_result_free(r);
    CHECK_MSG(rlab_db_exec(rlab_host_db(h),
                           "CREATE TRIGGER no_ck BEFORE INSERT ON simulator_checkpoints BEGIN "
                           "SELECT RAISE(ABORT, 'checkpoints refused'); END",
                           &err) == RLAB_OK,
              "%s", err.msg);
    rlab_err e2 = {0};
    r = NULL;
    CHECK(rlab_host_run_sync(h, "simulator.new data=demo agents=4 seed=1", &r, &e2) != RLAB_OK);
    CHECK_STR_CONTAINS(e2.msg, "checkpoints refused");
    rlab_result_free(r);
    CHECK_EQ_INT(count_rows(h, "SELECT count(*) FROM simulator_sims WHERE ?1 = ?1", 0), 1);
    CHECK_EQ_INT(count_rows(h, "SELECT count(*) FROM simulator_sims WHERE sim > ?1", kept), 0);
    rlab_host_free(h);
}

/* A simulation refused after its row and round-0 checkpoint were written (the session's
 * limit of simulations) leaves nothing in the store: no simulator_sims row, no checkpoint.
 * 65 simulator.new commands: its own ctest entry (sim_refused_limit, heavy). */
static void t_refused_unlisted(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/refused.db", rlab_test_tmpdir());
    remove(path);
    rlab_host *h = open_host(path);
    if (!h || !rlab_host_find_cmd(h, "simulator.new")) {
        rlab_test_skip("simulator plugin not loaded");
        rlab_host_free(h);
        return;
    }
    rlab_err werr = {0};
    CHECK_MSG(rlab_host_make_world(h, rlab_host_db(h), NULL, "demo", NULL, &werr) == RLAB_OK, "%s",
              werr.msg);
    int kept = 0, refused = 0;
    int64_t last_kept = -1;
    for (int k = 0; k < 80 && !refused; k++) {
        rlab_err err = {0};
        rlab_result *r = NULL;
        int rc = rlab_host_run_sync(h, "simulator.new data=demo agents=4 seed=1", &r, &err);
        if (rc == RLAB_OK) {
            kept++;
            last_kept = res_int(r, "sim");
        } else {
            CHECK_EQ_INT(rc, RLAB_ESTATE);
            CHECK_STR_CONTAINS(err.msg, "simulations per session");
            refused = 1;
        }
        rlab_result_free(r);
    }
    CHECK(refused);
    CHECK(kept >= 1);
    /* every stored simulation is one of the kept ones: as many rows as kept, each with its
     * round-0 checkpoint, and none after the last kept id (the refused command's) */
    CHECK_EQ_INT(count_rows(h, "SELECT count(*) FROM simulator_sims WHERE ?1 = ?1", 0), kept);
    CHECK_EQ_INT(
        count_rows(h, "SELECT count(DISTINCT sim) FROM simulator_checkpoints WHERE ?1 = ?1", 0),
        kept);
    CHECK_EQ_INT(count_rows(h, "SELECT count(*) FROM simulator_sims WHERE sim > ?1", last_kept), 0);
    CHECK_EQ_INT(
        count_rows(h, "SELECT count(*) FROM simulator_checkpoints WHERE sim > ?1", last_kept), 0);
    rlab_host_free(h);
}

/* The stored branch reads the parent's watch events row by row (streamed): a stored event
 * naming an item out of range fails the branch with a message naming the simulation. */
static void t_stored_bad_watch(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/badwatch.db", rlab_test_tmpdir());
    remove(path);
    rlab_host *h = open_host(path);
    if (!h || !rlab_host_find_cmd(h, "simulator.new")) {
        rlab_test_skip("simulator plugin not loaded");
        rlab_host_free(h);
        return;
    }
    rlab_err err = {0};
    CHECK_MSG(rlab_host_make_world(h, rlab_host_db(h), NULL, "demo", NULL, &err) == RLAB_OK, "%s",
              err.msg);
    rlab_result *r = rlab_test_run(h, "simulator.new data=demo agents=30 seed=2", RLAB_OK, NULL);
    int64_t sim = res_int(r, "sim");
    rlab_result_free(r);
    rlab_result_free(rlab_test_run(h, "simulator.step rounds=3", RLAB_OK, NULL));
    /* one stored watch event of round 1 names an item the world does not have (the good log
     * is read whole by sim.reopen.branch) */
    char sql[256], line[160];
    snprintf(sql, sizeof sql,
             "UPDATE events SET payload = json_set(payload, '$.item', 999999) WHERE id = "
             "(SELECT max(id) FROM events WHERE run_id = %lld AND kind = 'watch' AND round = 1)",
             (long long)sim);
    CHECK_MSG(rlab_db_exec(rlab_host_db(h), sql, &err) == RLAB_OK, "%s", err.msg);
    rlab_host_free(h);
    h = open_host(path);
    if (!h)
        return;
    snprintf(line, sizeof line, "simulator.branch sim=%lld round=2", (long long)sim);
    rlab_err berr = {0};
    rlab_result *bad = NULL;
    CHECK_EQ_INT(rlab_host_run_sync(h, line, &bad, &berr), RLAB_EFORMAT);
    CHECK_STR_CONTAINS(berr.msg, "stored watch event with agent");
    CHECK_STR_CONTAINS(berr.msg, "item 999999 out of range");
    rlab_result_free(bad);
    rlab_host_free(h);
}

static const rlab_test tests[] = {{"sim.reopen.branch", t_reopen_branch},
                                  {"sim.stored_err.bad_watch", t_stored_bad_watch},
                                  {"sim.stored_err.refused_checkpoint", t_refused_checkpoint},
                                  {"sim.refused.limit", t_refused_unlisted},
                                  {NULL, NULL}};

int main(int argc, char **argv) { return rlab_test_main(argc, argv, tests); }
