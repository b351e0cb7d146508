/*
 * ui/demo.c: the demo workflow (`reclab demo`, and `reclab` without a terminal so the
 * README's first command means something in CI): the demo world, a leave-one-out split, the
 * baselines when the plugin is there, full-ranking evaluation and a table read back from
 * SQL. Written in Lua against the same API scripts use.
 */
#include "demo.h"

#include <stdio.h>

static const char demo_lua[] =
    "local r = reclab\n"
    "print(('reclab %s demo  (store: %s)'):format(r.version, r.db.path() or '-'))\n"
    "local d = assert(r.datasets.info('demo'))\n"
    "print(('dataset demo: %d users, %d items, %d interactions'):format(d.n_users, d.n_items,"
    " d.n_inter))\n"
    "local s = r.datasets.split('demo', {method = 'loo'})\n"
    "print(('leave-one-out: train %d, valid %d, test %d'):format(s.n_train, s.n_valid,"
    " s.n_test))\n"
    "if not r.baselines then\n"
    "  print('(plugin baselines not loaded: nothing to train)')\n"
    "  return\n"
    "end\n"
    "local res = {}\n"
    "for _, m in ipairs{'pop', 'itemknn'} do\n"
    "  r.train{m, data = 'demo', name = 'demo-' .. m}\n"
    "  res[#res + 1] = r.evaluate{model = 'demo-' .. m, data = 'demo', k = {10}}.run\n"
    "end\n"
    "print(('%-14s %8s %8s'):format('model', 'HR@10', 'NDCG@10'))\n"
    "for _, row in ipairs(r.db.query([[\n"
    "  SELECT json_extract(r.config, '$.model') AS model,\n"
    "         max(CASE WHEN m.name = 'hr@10' THEN m.value END) AS hr,\n"
    "         max(CASE WHEN m.name = 'ndcg@10' THEN m.value END) AS ndcg\n"
    "  FROM runs r JOIN metrics m ON m.run_id = r.id\n"
    "  WHERE r.id IN (?1, ?2) GROUP BY r.id ORDER BY r.id]], res[1], res[2])) do\n"
    "  print(('%-14s %8.4f %8.4f'):format(row.model, row.hr, row.ndcg))\n"
    "end\n";

static void put(const char *line, void *ud)
{
    (void)ud;
    puts(line);
}

int rlab_demo_run(rlab_app *app, rlab_err *err)
{
    int rc = rlab_app_lua_exec(app, demo_lua, "=demo", put, NULL, err);
    fflush(stdout);
    return rc;
}
