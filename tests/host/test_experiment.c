/*
 * tests/host/test_experiment.c: experiments (core/host/sweep.c, core/host/experiment.c).
 *
 * Test organization (experiment.unit.* are quick; experiment.train.* train small models):
 *   experiment.unit.compare.1  a hand-built experiment (2 configurations x 2 seeds x 4 users, two
 *                         metrics): mean +- sd over seeds, bootstrap intervals, paired t-test
 *                         p-values (Student t with 3 df in closed form) and Holm's correction
 *                         against a hand computation; best per column; baseline=.
 *   experiment.unit.compare.2  errors: unknown baseline, an experiment without finished runs.
 *   experiment.unit.sweep.1    spec errors, each found before anything runs.
 *   experiment.train.sweep.2    a real sweep (Pop and BPR-MF on a tiny world, 2 seeds): rows,
 * per-user values whose means are the runs' test metrics; repeating the command resumes (nothing
 * retrained); a changed spec under the same name is refused; a random search with halving keeps the
 * best configuration. experiment.train.report.1   report in md / html / latex: tables, figures,
 * commands, hashes.
 */
#include "harness.h"
#include "harness_host.h"
#include "store/store.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static rlab_host *new_host(const char *dbname, int plugins)
{
    rlab_host *h = plugins ? rlab_test_host(RLAB_PLUGIN_DIR, "reclab_baselines.so")
                           : rlab_test_host_v(RLAB_PLUGIN_DIR, (const char *const[]){NULL});
    char path[512];
    snprintf(path, sizeof path, "%s/%s", rlab_test_tmpdir(), dbname);
    rlab_err err = {0};
    CHECK_MSG(rlab_host_set_store(h, path, &err) == RLAB_OK, "set_store: %s", err.msg);
    if (plugins) { /* a tiny world "tiny", recorded in the store */
        rlab_world_config c;
        rlab_world_config_default(&c);
        c.n_users = 120;
        c.n_items = 80;
        c.n_inter = 2400;
        c.seed = 5;
        CHECK_MSG(rlab_host_make_world(h, NULL, &c, "tiny", NULL, &err) == RLAB_OK, "world: %s",
                  err.msg);
    }
    return h;
}

/* Cell (row, column name) of result table tname. */
static const rlab_cell *cell(const rlab_result *r, const char *tname, int64_t row, const char *col)
{
    for (int t = 0; r && t < r->ntables; t++) {
        const rlab_table *tb = r->tables[t];
        if (strcmp(tb->name, tname))
            continue;
        for (int c = 0; c < tb->ncols; c++)
            if (!strcmp(tb->cols[c], col) && row < tb->nrows)
                return &tb->cells[row * tb->ncols + c];
    }
    rlab_test_fail(__FILE__, __LINE__, "no cell %s[%lld].%s", tname, (long long)row, col);
    return NULL;
}

static double num(const rlab_result *r, int64_t row, const char *col)
{
    const rlab_cell *c = cell(r, "compare", row, col);
    if (!c)
        return NAN;
    return c->type == RLAB_CELL_INT     ? (double)c->i
           : c->type == RLAB_CELL_FLOAT ? c->f
                                        : (double)NAN;
}

static int64_t nrows(const rlab_result *r, const char *tname)
{
    for (int t = 0; r && t < r->ntables; t++)
        if (!strcmp(r->tables[t]->name, tname))
            return r->tables[t]->nrows;
    return -1;
}

/* Two-sided p of Student's t with 3 degrees of freedom, in closed form:
 * P(|T| > t) = 1 - (2/pi) (atan(x) + x / (1 + x^2)), x = t / sqrt(3). */
static double p_t3(double t)
{
    double x = fabs(t) / sqrt(3.0);
    return 1.0 - 2.0 / 3.14159265358979323846 * (atan(x) + x / (1.0 + x * x));
}

static void exec_sql(rlab_db *db, const char *sql)
{
    rlab_err err = {0};
    CHECK_MSG(rlab_db_exec(db, sql, &err) == RLAB_OK, "%s: %s", sql, err.msg);
}

/* experiment "hand": A (runs 1, 2) and B (runs 3, 4), users 0..3, metrics ndcg@10 and hr@10 */
static void hand_experiment(const char *dbname)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", rlab_test_tmpdir(), dbname);
    rlab_err err = {0};
    rlab_db *db = rlab_db_open(path, 0, &err);
    CHECK_MSG(db != NULL, "open: %s", err.msg);
    if (!db)
        return;
    exec_sql(db, "INSERT INTO experiments(id, name, spec, command, status, created) VALUES(1,"
                 " 'hand', '{\"line\":\"a,b data=d\"}', 'sweep a,b data=d', 'done', 1);"
                 "INSERT INTO experiments(id, name, spec, status, created) VALUES(2, 'empty',"
                 " '{\"line\":\"a data=d\"}', 'running', 1)");
    for (int r = 1; r <= 4; r++) {
        char sql[512];
        snprintf(sql, sizeof sql,
                 "INSERT INTO runs(id, plugin, model_kind, status, started, config, seed)"
                 " VALUES(%d, 'test', '%s', 'done', 1, '{\"split\":\"loo\"}', %d);"
                 "INSERT INTO experiment_runs(exp_id, idx, config, label, kind, data, seed,"
                 " command, run_id, status) VALUES(1, %d, 'x', '%s', '%s', 'd', %d, 'train %s',"
                 " %d, 'done')",
                 r, r <= 2 ? "a" : "b", r, r, r <= 2 ? "A" : "B", r <= 2 ? "a" : "b", r,
                 r <= 2 ? "a" : "b", r);
        exec_sql(db, sql);
    }
    exec_sql(db, "INSERT INTO experiment_runs(exp_id, idx, config, label, kind, data, seed,"
                 " command, status) VALUES(2, 1, 'x', 'A', 'a', 'd', 1, 'train a', 'pending')");
    /* per-user values: run -> {ndcg@10 of users 0..3}, {hr@10 of users 0..3} */
    static const double ndcg[4][4] = {
        {0.1, 0.1, 0.3, 0.3}, {0.3, 0.3, 0.1, 0.1}, {0.5, 0.3, 0.6, 0.2}, {0.3, 0.3, 0.2, 0.4}};
    static const double hr[4][4] = {{0, 1, 0, 1}, {0, 1, 0, 1}, {1, 1, 0, 1}, {1, 1, 1, 0}};
    for (int r = 0; r < 4; r++)
        for (int u = 0; u < 4; u++) {
            char sql[512];
            snprintf(sql, sizeof sql,
                     "INSERT INTO run_users VALUES(%d, 'test', 'ndcg@10', 'full', %d, %.17g);"
                     "INSERT INTO run_users VALUES(%d, 'test', 'hr@10', 'full', %d, %.17g)",
                     r + 1, u, ndcg[r][u], r + 1, u, hr[r][u]);
            exec_sql(db, sql);
        }
    rlab_db_close(db);
}

static void t_compare_hand(void)
{
    hand_experiment("hand.db");
    rlab_host *h = new_host("hand.db", 0);
    rlab_result *r = rlab_test_run(h, "compare hand metric=ndcg@10,hr@10", RLAB_OK, NULL);
    CHECK_EQ_INT(nrows(r, "compare"), 4); /* A ndcg, A hr, B ndcg, B hr */
    /* A: per-user averages ndcg {.2,.2,.2,.2}, hr {0,1,0,1}; seed means .2,.2 and .5,.5 */
    CHECK_NEAR(num(r, 0, "mean"), 0.2, 1e-12);
    CHECK_NEAR(num(r, 0, "sd"), 0.0, 1e-12);
    CHECK_NEAR(num(r, 0, "ci_lo"), 0.2, 1e-12); /* a constant resamples to itself */
    CHECK_NEAR(num(r, 0, "ci_hi"), 0.2, 1e-12);
    CHECK_EQ_INT(num(r, 0, "baseline"), 1);
    CHECK(cell(r, "compare", 0, "p")->type == RLAB_CELL_NULL); /* no test against itself */
    CHECK_NEAR(num(r, 1, "mean"), 0.5, 1e-12);
    /* {0,1,0,1}: a resample is all zeros (or all ones) with probability 1/16, so with 1000
     * resamples the 2.5% and 97.5% quantiles are 0 and 1 */
    CHECK_NEAR(num(r, 1, "ci_lo"), 0.0, 1e-12);
    CHECK_NEAR(num(r, 1, "ci_hi"), 1.0, 1e-12);
    /* B ndcg: seed means 1.6/4 = .4 and 1.2/4 = .3 -> mean .35, sd .1/sqrt(2); per-user
     * averages {.4,.3,.4,.3} -> interval [.3, .4]; d = B - A = {.2,.1,.2,.1}: mean .15,
     * sd sqrt(4 * .05^2 / 3), t = .15 / (sd / 2) = 3 sqrt(3), df 3 */
    CHECK_NEAR(num(r, 2, "mean"), 0.35, 1e-12);
    CHECK_NEAR(num(r, 2, "sd"), 0.1 / sqrt(2.0), 1e-12);
    CHECK_NEAR(num(r, 2, "ci_lo"), 0.3, 1e-12);
    CHECK_NEAR(num(r, 2, "ci_hi"), 0.4, 1e-12);
    CHECK_NEAR(num(r, 2, "diff"), 0.15, 1e-12);
    CHECK_NEAR(num(r, 2, "t"), 3.0 * sqrt(3.0), 1e-9);
    double p_ndcg = p_t3(3.0 * sqrt(3.0)); /* 0.013847 */
    CHECK_NEAR(num(r, 2, "p"), p_ndcg, 1e-9);
    CHECK_NEAR(p_ndcg, 0.0138468, 1e-6);
    CHECK_EQ_INT(num(r, 2, "users"), 4);
    /* B hr: seed means .75, .75; per-user {1,1,.5,.5} -> [.5, 1]; d = {1,0,.5,-.5}: mean .25,
     * sd sqrt(1.25 / 3), t = .25 / (sd / 2) */
    CHECK_NEAR(num(r, 3, "mean"), 0.75, 1e-12);
    CHECK_NEAR(num(r, 3, "sd"), 0.0, 1e-12);
    CHECK_NEAR(num(r, 3, "ci_lo"), 0.5, 1e-12);
    CHECK_NEAR(num(r, 3, "ci_hi"), 1.0, 1e-12);
    double t_hr = 0.25 / (sqrt(1.25 / 3.0) / 2.0);
    CHECK_NEAR(num(r, 3, "t"), t_hr, 1e-9);
    double p_hr = p_t3(t_hr); /* 0.495 */
    CHECK_NEAR(num(r, 3, "p"), p_hr, 1e-9);
    /* Holm over the 2 tests: the smaller p times 2, the larger times 1 (and never below) */
    CHECK_NEAR(num(r, 2, "p_holm"), 2 * p_ndcg, 1e-9);
    CHECK_NEAR(num(r, 3, "p_holm"), p_hr, 1e-9);
    CHECK_EQ_INT(rlab_test_scalar(r, "tests"), 2);
    /* B is best in both columns */
    CHECK_EQ_INT(num(r, 0, "best"), 0);
    CHECK_EQ_INT(num(r, 2, "best"), 1);
    CHECK_EQ_INT(num(r, 3, "best"), 1);
    int proto = 0;
    for (int i = 0; i < r->nlines; i++)
        proto |= strstr(r->lines[i], "protocol: full ranking") &&
                 strstr(r->lines[i], "split loo") && strstr(r->lines[i], "Holm") &&
                 strstr(r->lines[i], "k=10");
    CHECK_MSG(proto, "the protocol line is printed with the table");
    rlab_result_free(r);
    /* baseline=B: the test runs the other way round (same |t|, same p) */
    r = rlab_test_run(h, "compare hand baseline=B metric=ndcg@10", RLAB_OK, NULL);
    CHECK_EQ_INT(nrows(r, "compare"), 2);
    CHECK_NEAR(num(r, 0, "t"), -3.0 * sqrt(3.0), 1e-9);
    CHECK_NEAR(num(r, 0, "p"), p_ndcg, 1e-9);
    CHECK_NEAR(num(r, 0, "p_holm"), p_ndcg, 1e-9); /* one test */
    rlab_result_free(r);
    rlab_host_free(h);
}

static void t_compare_errors(void)
{
    hand_experiment("hand2.db");
    rlab_host *h = new_host("hand2.db", 0);
    rlab_result_free(rlab_test_run(h, "compare hand baseline=zzz", RLAB_ENOTFOUND,
                                   "compare: no configuration of experiment 'hand' on d matches "
                                   "baseline 'zzz'"));
    rlab_result_free(rlab_test_run(h, "compare empty", RLAB_ENOTFOUND,
                                   "compare: experiment 'empty' has no finished run yet (sweep "
                                   "resume=empty)"));
    rlab_result_free(
        rlab_test_run(h, "compare hand frob=1", RLAB_EINVAL, "compare: unknown argument 'frob=1'"));
    rlab_result_free(rlab_test_run(h, "report nosuch file=x.md", RLAB_ENOTFOUND,
                                   "report: experiment 'nosuch' not found"));
    rlab_host_free(h);
}

static void t_sweep_errors(void)
{
    rlab_host *h = new_host("err.db", 1);
    rlab_result_free(rlab_test_run(h, "sweep", RLAB_EINVAL,
                                   "sweep: name the model kinds: sweep KIND[,KIND] data=... (help "
                                   "sweep)"));
    rlab_result_free(rlab_test_run(h, "sweep pop", RLAB_EINVAL, "sweep: missing argument 'data'"));
    rlab_result_free(rlab_test_run(h, "sweep frob data=tiny", RLAB_ENOTFOUND,
                                   "sweep: unknown model kind 'frob'"));
    rlab_result_free(rlab_test_run(h, "sweep pop,bprmf data=tiny dimm=3", RLAB_EINVAL,
                                   "sweep: no kind of the sweep takes 'dimm'"));
    rlab_result_free(rlab_test_run(h, "sweep bprmf data=tiny dim=0,8", RLAB_EINVAL, NULL));
    rlab_result_free(rlab_test_run(h, "sweep bprmf data=tiny seeds=3..1", RLAB_EINVAL,
                                   "sweep: bad seeds '3..1' (a range 1..3 or a list 1,5,9 of at "
                                   "most 64 expected)"));
    rlab_result_free(rlab_test_run(h, "sweep bprmf data=tiny lr=0:1:log", RLAB_EINVAL, NULL));
    rlab_result_free(rlab_test_run(h, "sweep bprmf data=tiny opt=1:2", RLAB_EINVAL,
                                   "sweep: bprmf.opt is not a number: give a list of values, not "
                                   "a range"));
    rlab_result_free(rlab_test_run(h, "sweep bprmf data=tiny search=bayes", RLAB_EINVAL, NULL));
    rlab_result_free(rlab_test_run(h, "sweep resume=nope", RLAB_ENOTFOUND,
                                   "sweep: experiment 'nope' not found"));
    /* nothing ran, nothing was recorded */
    rlab_result *r = rlab_test_run(h, "sql SELECT count(*) AS n FROM experiments", RLAB_OK, NULL);
    CHECK_EQ_INT(cell(r, "sql", 0, "n")->i, 0);
    rlab_result_free(r);
    rlab_host_free(h);
}

static int64_t sql_int(rlab_host *h, const char *q)
{
    char line[1024];
    snprintf(line, sizeof line, "sql %s", q);
    rlab_result *r = rlab_test_run(h, line, RLAB_OK, NULL);
    const rlab_cell *c = cell(r, "sql", 0, "n");
    int64_t v = c && c->type == RLAB_CELL_INT ? c->i : -1;
    rlab_result_free(r);
    return v;
}

static double sql_num(rlab_host *h, const char *q)
{
    char line[1024];
    snprintf(line, sizeof line, "sql %s", q);
    rlab_result *r = rlab_test_run(h, line, RLAB_OK, NULL);
    const rlab_cell *c = cell(r, "sql", 0, "v");
    double v = !c ? (double)NAN : c->type == RLAB_CELL_INT ? (double)c->i : c->f;
    rlab_result_free(r);
    return v;
}

static void t_sweep_real(void)
{
    rlab_host *h = new_host("sweep.db", 1);
    rlab_result *r = rlab_test_run(
        h, "sweep pop,bprmf data=tiny epochs=2 dim=8,16 seeds=1..2 name=s1", RLAB_OK, NULL);
    /* pop (no dim) + bprmf dim=8 + bprmf dim=16, two seeds each */
    CHECK_EQ_INT(rlab_test_scalar(r, "runs"), 6);
    CHECK_EQ_INT(rlab_test_scalar(r, "ran"), 6);
    rlab_result_free(r);
    CHECK_EQ_INT(sql_int(h, "SELECT count(*) AS n FROM experiment_runs WHERE status = 'done'"), 6);
    CHECK_EQ_INT(sql_int(h, "SELECT count(DISTINCT label) AS n FROM experiment_runs"), 3);
    /* the per-user values average to the run's own test metric */
    CHECK_NEAR(sql_num(h, "SELECT max(abs(u.v - m.value)) AS v FROM (SELECT run_id, name,"
                          " avg(value) AS v FROM run_users GROUP BY run_id, name) u JOIN metrics m"
                          " ON m.run_id = u.run_id AND m.name = u.name AND m.split = 'test'"),
               0.0, 1e-9);
    CHECK_EQ_INT(sql_int(h, "SELECT count(DISTINCT run_id) AS n FROM run_users"), 6);
    int64_t runs_before = sql_int(h, "SELECT count(*) AS n FROM runs");
    /* the same line again: resumed, nothing retrained */
    r = rlab_test_run(h, "sweep pop,bprmf data=tiny epochs=2 dim=8,16 seeds=1..2 name=s1", RLAB_OK,
                      NULL);
    CHECK_EQ_INT(rlab_test_scalar(r, "ran"), 0);
    CHECK_EQ_INT(rlab_test_scalar(r, "skipped"), 6);
    rlab_result_free(r);
    CHECK_EQ_INT(sql_int(h, "SELECT count(*) AS n FROM runs"), runs_before);
    /* a pending row (as after a kill) is the only one trained on resume=, by its exact command */
    rlab_result_free(rlab_test_run(h, "sql SELECT 1", RLAB_OK, NULL));
    {
        char path[512];
        snprintf(path, sizeof path, "%s/sweep.db", rlab_test_tmpdir());
        rlab_err err = {0};
        rlab_db *db = rlab_db_open(path, 0, &err);
        CHECK(db != NULL);
        if (db)
            exec_sql(db, "UPDATE experiment_runs SET status = 'pending', run_id = NULL WHERE"
                         " idx = 4");
        rlab_db_close(db);
    }
    r = rlab_test_run(h, "sweep resume=s1", RLAB_OK, NULL);
    CHECK_EQ_INT(rlab_test_scalar(r, "ran"), 1);
    CHECK_EQ_INT(rlab_test_scalar(r, "skipped"), 5);
    rlab_result_free(r);
    CHECK_EQ_INT(sql_int(h, "SELECT count(*) AS n FROM runs"), runs_before + 1);
    /* another spec under the same name */
    rlab_result_free(rlab_test_run(h, "sweep pop data=tiny name=s1", RLAB_EINVAL, NULL));
    /* compare over it: 3 configurations, pop the baseline */
    r = rlab_test_run(h, "compare s1 metric=ndcg@10", RLAB_OK, NULL);
    CHECK_EQ_INT(nrows(r, "compare"), 3);
    CHECK_EQ_INT(num(r, 0, "baseline"), 1);
    CHECK_EQ_INT(num(r, 0, "seeds"), 2);
    CHECK_EQ_INT(rlab_test_scalar(r, "tests"), 2);
    rlab_result_free(r);
    /* random search with successive halving: 4 configurations of 1 seed, eta 2: rungs of
     * 1, 2 then 4 epochs (4 -> 2 -> 1 configurations) */
    r = rlab_test_run(h,
                      "sweep bprmf data=tiny epochs=4 eval_every=1 lr=0.001:0.1:log search=random "
                      "n=4 seeds=1 halving=2 name=h1",
                      RLAB_OK, NULL);
    CHECK_EQ_INT(rlab_test_scalar(r, "runs"), 7);
    rlab_result_free(r);
    CHECK_EQ_INT(sql_int(h, "SELECT count(*) AS n FROM experiment_runs e JOIN experiments x ON"
                            " x.id = e.exp_id WHERE x.name = 'h1' AND e.status = 'stopped'"),
                 3);
    CHECK_EQ_INT(sql_int(h, "SELECT max(e.rung) AS n FROM experiment_runs e JOIN experiments x ON"
                            " x.id = e.exp_id WHERE x.name = 'h1'"),
                 2);
    CHECK_EQ_INT(sql_int(h, "SELECT json_extract(r.config, '$.epochs') AS n FROM experiment_runs e"
                            " JOIN experiments x ON x.id = e.exp_id JOIN runs r ON r.id = e.run_id"
                            " WHERE x.name = 'h1' AND e.rung = 2"),
                 4);
    r = rlab_test_run(h, "compare h1", RLAB_OK, NULL);
    CHECK_EQ_INT(nrows(r, "compare"), 8); /* every configuration at its last rung, 2 metrics */
    rlab_result_free(r);
    rlab_host_free(h);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void t_report(void)
{
    rlab_host *h = new_host("report.db", 1);
    rlab_result_free(
        rlab_test_run(h, "sweep pop,bprmf data=tiny epochs=2 seeds=1..2 name=rep", RLAB_OK, NULL));
    const char *dir = rlab_test_tmpdir();
    char line[1024], path[600];
    snprintf(line, sizeof line, "report rep file=%s/rep.md", dir);
    rlab_result_free(rlab_test_run(h, line, RLAB_OK, NULL));
    snprintf(path, sizeof path, "%s/rep.md", dir);
    const char *md = slurp(path);
    CHECK(md && strstr(md, "| configuration | ndcg@10 | hr@10 |"));
    CHECK(md && strstr(md, "| pop (baseline) |"));
    CHECK(md && strstr(md, "protocol: full ranking"));
    CHECK(md && strstr(md, "![learning curves on tiny](rep.md.fig3.svg)"));
    CHECK(md && strstr(md, "train bprmf data=tiny name=rep-r3 seed=1 epochs=2"));
    CHECK(md && strstr(md, "\"seed\":2")); /* resolved configs */
    CHECK(md && strstr(md, "## Data sets"));
    char git[128]; /* the build's commit is recorded */
    snprintf(git, sizeof git, "(git %s)", rlab_build_git());
    CHECK(md && strstr(md, git));
    CHECK(strcmp(rlab_build_git(), "") != 0);
    snprintf(path, sizeof path, "%s/rep.md.fig3.svg", dir);
    const char *svg = slurp(path);
    CHECK(svg && strstr(svg, "<svg") && strstr(svg, "Learning curves on tiny"));
    snprintf(line, sizeof line, "report rep file=%s/rep.html metric=ndcg@10", dir);
    rlab_result_free(rlab_test_run(h, line, RLAB_OK, NULL));
    snprintf(path, sizeof path, "%s/rep.html", dir);
    const char *html = slurp(path);
    CHECK(html && strstr(html, "<table class=\"results\">"));
    int nsvg = 0;
    for (const char *p = html; p && (p = strstr(p, "<svg")); p++)
        nsvg++;
    CHECK_EQ_INT(nsvg, 2); /* one comparison chart (one metric) and the learning curves */
    CHECK(html && !strstr(html, "src=\"")); /* self-contained */
    snprintf(git, sizeof git, "(git %s)", rlab_build_git());
    CHECK(html && strstr(html, git));
    snprintf(path, sizeof path, "%s/rep.html.fig2.svg", dir);
    CHECK(fopen(path, "r") == NULL); /* inlined, then removed */
    snprintf(line, sizeof line, "report rep file=%s/rep.tex", dir);
    rlab_result_free(rlab_test_run(h, line, RLAB_OK, NULL));
    snprintf(path, sizeof path, "%s/rep.tex", dir);
    const char *tx = slurp(path);
    CHECK(tx && strstr(tx, "\\toprule") && strstr(tx, "\\midrule") && strstr(tx, "\\bottomrule"));
    CHECK(tx && strstr(tx, "\\textbf{"));
    CHECK(tx && strstr(tx, "Holm"));
    snprintf(git, sizeof git, "git %s)", rlab_build_git());
    CHECK(tx && strstr(tx, git));
    rlab_host_free(h);
}

static const rlab_test tests[] = {
    {"experiment.unit.compare.1", t_compare_hand}, {"experiment.unit.compare.2", t_compare_errors},
    {"experiment.unit.sweep.1", t_sweep_errors},   {"experiment.train.sweep.2", t_sweep_real},
    {"experiment.train.report.1", t_report},       {NULL, NULL},
};

int main(int argc, char **argv) { return rlab_test_main(argc, argv, tests); }
