/*
 * plugins/baselines/plugin.c: the baselines plugin (reclab_baselines.so): the reference
 * recommenders every experiment compares against. It declares three model kinds; the host
 * gives each the verbs:
 *
 *   train pop|itemknn|bprmf data=<dataset> [name=...] [split=loo|none] [field=value ...]
 *   eval model=<name>    recommend model=<name> user=<id>    save / load / export
 *
 * Lua: reclab.train{"bprmf", data="ml-100k", epochs=30}, reclab.evaluate{model="bprmf"}.
 */
#include "baselines.h"

static const char *const opt_choices[] = {"adamw", "sgd", NULL};

static const rlab_field knn_fields[] = {
    RLAB_FIELD_INT(bl_knn_cfg, k, "100", 1, 1 << 20, "neighbours kept per item"), {0}};

static const rlab_field bpr_fields[] = {
    RLAB_FIELD_INT(bl_bpr_cfg, dim, "64", 1, 4096, "embedding size"),
    RLAB_FIELD_INT(bl_bpr_cfg, batch, "1024", 1, 1 << 20, "positives per update"),
    RLAB_FIELD_DOUBLE(bl_bpr_cfg, lr, "0.005", 0, 10, "learning rate"),
    RLAB_FIELD_DOUBLE(bl_bpr_cfg, reg, "0.01", 0, 1e6,
                      "L2 penalty on the embedding rows of each triple"),
    RLAB_FIELD_DOUBLE(bl_bpr_cfg, weight_decay, "0", 0, 1e6,
                      "decoupled weight decay (AdamW's; with sgd the same shrinkage)"),
    RLAB_FIELD_INT(bl_bpr_cfg, neg, "1", 1, 1000,
                   "sampled negatives per positive (never an item of the user's training "
                   "history)"),
    RLAB_FIELD_CHOICE(bl_bpr_cfg, opt, "adamw", opt_choices,
                      "optimiser, sparse (only the rows of each batch move); sgd needs a far "
                      "larger lr"),
    {0}};

static const rlab_model_kind baselines_kinds[] = {
    {.name = "pop",
     .summary = "most popular items (training counts)",
     .flags = RLAB_KIND_ONESHOT,
     .fit = &bl_pop_fit,
     .restore = bl_pop_restore},
    {.name = "itemknn",
     .summary = "item-based cosine kNN",
     .config = knn_fields,
     .config_size = sizeof(bl_knn_cfg),
     .flags = RLAB_KIND_ONESHOT,
     .fit = &bl_knn_fit,
     .restore = bl_knn_restore},
    {.name = "bprmf",
     .summary = "BPR matrix factorisation with item bias (sampled BPR, sparse AdamW)",
     .config = bpr_fields,
     .config_size = sizeof(bl_bpr_cfg),
     .defaults = (const rlab_kv[]){{"epochs", "50"}, {"eval_every", "5"}, {0, 0}},
     .fit = &bl_bpr_fit,
     .restore = bl_bpr_restore},
    {0}};

RLAB_PLUGIN(baselines)
{
    RLAB_PLUGIN_INIT(out);
    out->name = "baselines";
    out->version = "2.0.0";
    out->summary = "Pop, ItemKNN and BPR-MF reference recommenders";
    out->models = baselines_kinds;
    return RLAB_OK;
}
