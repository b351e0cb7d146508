/*
 * plugins/seqrec/plugin.c: the seqrec plugin descriptor. It declares two model kinds, SASRec
 * and MQSA-TED, on one config schema (seqrec_fields, net.c) with different defaults; the host
 * gives them the verbs:
 *
 *   train mqsa data=beauty epochs=200 ...       (job: progress and validation per epoch)
 *   eval model=mqsa [neg=100]                   (full ranking unless neg > 0, labelled)
 *   recommend model=mqsa user=u17 k=10
 *
 * Training follows the official MQSA-TED protocol: leave-one-out, full ranking, history
 * masked, selection by valid NDCG@20 with patience 20, test metrics of the kept epoch. Every
 * run stores its per-epoch metrics and its resolved config; the view "results" tabulates the
 * finished runs from the core tables.
 */
#include "host/plugin.h"
#include "seqrec.h"

static const rlab_model_kind seqrec_kinds[] = {{.name = "sasrec",
                                                .summary = "SASRec (Kang & McAuley 2018)",
                                                .config = seqrec_fields,
                                                .config_size = sizeof(seqrec_config),
                                                .defaults = seqrec_sasrec_defaults,
                                                .fit = &seqrec_fit_ops,
                                                .restore = seqrec_restore},
                                               {.name = "mqsa",
                                                .summary = "MQSA-TED (Zhu et al., WSDM 2024)",
                                                .config = seqrec_fields,
                                                .config_size = sizeof(seqrec_config),
                                                .defaults = seqrec_mqsa_defaults,
                                                .fit = &seqrec_fit_ops,
                                                .restore = seqrec_restore},
                                               {0}};

/* Append-only: the table of the first version stays (old workspaces have rows in it). */
static const rlab_migration seqrec_schema[] = {
    {.sql = "CREATE TABLE seqrec_results(id INTEGER PRIMARY KEY, run_id INTEGER, name TEXT,"
            " model TEXT, dataset TEXT, config TEXT, protocol TEXT, best_epoch INTEGER,"
            " epochs_run INTEGER, epoch_seconds REAL, valid_ndcg20 REAL, hr5 REAL, hr10 REAL,"
            " hr20 REAL, ndcg5 REAL, ndcg10 REAL, ndcg20 REAL)",
     .note = "one row per seqrec.train run of plugin version 0.1 (runs and metrics since)"},
    {0}};

/* test metrics of the kept epoch of every finished seqrec run */
static const char results_sql[] =
    "SELECT r.id AS run, json_extract(r.config, '$.name') AS name, r.model_kind AS model,"
    " r.dataset,"
    " (SELECT value FROM metrics m WHERE m.run_id = r.id AND m.split = 'test'"
    "  AND m.name = 'hr@10') AS hr10,"
    " (SELECT value FROM metrics m WHERE m.run_id = r.id AND m.split = 'test'"
    "  AND m.name = 'ndcg@10') AS ndcg10,"
    " (SELECT value FROM metrics m WHERE m.run_id = r.id AND m.split = 'test'"
    "  AND m.name = 'hr@20') AS hr20,"
    " (SELECT value FROM metrics m WHERE m.run_id = r.id AND m.split = 'test'"
    "  AND m.name = 'ndcg@20') AS ndcg20"
    " FROM runs r WHERE r.plugin = 'seqrec' AND r.status = 'done' ORDER BY r.id";

static const rlab_view_kind seqrec_views[] = {
    {.name = "results", .title = "seqrec results", .kind = "table", .source = results_sql}, {0}};

RLAB_PLUGIN(seqrec)
{
    RLAB_PLUGIN_INIT(out);
    out->name = "seqrec";
    out->version = "0.2.0";
    out->summary = "SASRec and MQSA-TED sequential recommenders";
    out->models = seqrec_kinds;
    out->schema = seqrec_schema;
    out->views = seqrec_views;
    return RLAB_OK;
}
