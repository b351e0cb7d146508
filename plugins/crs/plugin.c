/*
 * plugins/crs/plugin.c: the crs plugin (reclab_crs.so): conversational recommendation.
 *
 *   crs.prepare dialogues=D[,D2] [catalog=T[,..]] [movies=F[,F2]] [synth=N] name=C
 *                 a catalogue dataset C for `train unicrs data=C` (see crs.h)
 *   train unicrs data=C [field=value ...]      the host's verb (unicrs.c)
 *   crs.eval model=M data=T                    Recall@1/10/50 with and without repeated items
 *                 beside "repeat" and "repeat + popularity", Distinct-2/3/4 (standard and
 *                 the UniCRS code's variant) of the responses; every scored turn in the
 *                 store's `dialogues` table
 *   crs.respond model=M context=... [mentioned=...]   one turn: the top items and a response
 */
#define _XOPEN_SOURCE 700 /* realpath */
#include "crs.h"
#include "macrs.h"
#include "eval/text.h"
#include "llm/llm.h"
#include "model/config.h"
#include "store/sha256.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const rlab_model_kind crs_kinds[] = {
    {.name = "unicrs",
     .summary = "UniCRS-style CRS: R-GCN knowledge encoder, context transformer from scratch, "
                "entity-token fusion, soft prompts (dialogue data: crs.prepare)",
     .config = crs_unicrs_fields,
     .config_size = sizeof(crs_cfg),
     .defaults = crs_unicrs_defaults,
     .fit = &crs_unicrs_fit,
     .restore = crs_unicrs_restore},
    {0}};

/* ---- crs.prepare ------------------------------------------------------------------------ */

/* What a catalogue is made from: its recipe's params (recorded by crs.prepare, replayed by
 * prepare_rebuild when a reopened workspace first uses the catalogue). The movie files are
 * recorded as absolute paths with their sha256, so a changed file is refused, not used. */
typedef struct prep_params {
    char dialogues[1024], catalog[1024];
    char movies[4096];     /* absolute paths, comma-separated */
    char movies_sha[1200]; /* their sha256, comma-separated, same order */
    int synth;
    int64_t seed;
} prep_params;

static const rlab_field prep_fields[] = {
    RLAB_FIELD_STR(prep_params, dialogues, "", "training dialogue datasets"),
    RLAB_FIELD_STR(prep_params, catalog, "", "dialogue datasets adding items"),
    RLAB_FIELD_STR(prep_params, movies, "", "MovieLens files (absolute)"),
    RLAB_FIELD_STR(prep_params, movies_sha, "", "their sha256"),
    RLAB_FIELD_INT(prep_params, synth, "0", 0, 10000000, "template dialogues"),
    RLAB_FIELD_I64(prep_params, seed, "1", 0, 0, "seed"),
    {0}};

/* The i-th comma-separated element of list into out (cap bytes); 0 when there is none. */
static int list_item(const char *list, int i, char *out, size_t cap)
{
    const char *p = list ? list : "";
    for (int k = 0; *p; k++) {
        size_t l = strcspn(p, ",");
        if (k == i) {
            if (l == 0 || l >= cap)
                return 0;
            memcpy(out, p, l);
            out[l] = 0;
            return 1;
        }
        p += l;
        if (*p == ',')
            p++;
    }
    return 0;
}

/* Load the movie files of p (checking their recorded sha256 when p has them, else recording
 * them into p) and build the catalogue `name` from the resolved corpora. */
static int prepare_build(const char *name, const rlab_dialogues *const *train, int nt,
                         const rlab_dialogues *const *extra, int nx, prep_params *p,
                         rlab_dataset **out, crs_prepare_stats *st, int32_t *nmv, rlab_err *err)
{
    crs_movies mv = {0};
    int rc = RLAB_OK, check = p->movies_sha[0] != 0;
    char path[1024], sha[65], want[65];
    size_t off = 0;
    for (int i = 0; rc == RLAB_OK && list_item(p->movies, i, path, sizeof path); i++) {
        uint64_t bytes = 0;
        rc = rlab_sha256_file(path, sha, &bytes, err);
        if (rc == RLAB_OK && check &&
            (!list_item(p->movies_sha, i, want, sizeof want) || strcmp(want, sha) != 0))
            rc = rlab_errf(err, RLAB_ESTATE,
                           "%s changed since the catalogue was made (sha256 %.8s..., now "
                           "%.8s...)",
                           path, want, sha);
        if (rc == RLAB_OK && !check) {
            int w = snprintf(p->movies_sha + off, sizeof p->movies_sha - off, "%s%s",
                             off ? "," : "", sha);
            if (w < 0 || (size_t)w >= sizeof p->movies_sha - off)
                rc = rlab_errf(err, RLAB_EINVAL, "too many movie files");
            else
                off += (size_t)w;
        }
        if (rc == RLAB_OK)
            rc = crs_movies_load(&mv, path, err);
    }
    if (rc == RLAB_OK) {
        crs_prepare_opts o = {.train = train,
                              .n_train = nt,
                              .extra = extra,
                              .n_extra = nx,
                              .movies = mv.n ? &mv : NULL,
                              .synth = p->synth,
                              .seed = (uint64_t)p->seed};
        rc = crs_prepare(name, &o, out, st, err);
    }
    *nmv = mv.n;
    crs_movies_clear(&mv);
    return rc;
}

/* Up to max dialogue datasets named in a comma-separated list. */
static int dialogue_list(rlab_ctx *ctx, const char *list, const rlab_dialogues **out, int max,
                         int *n)
{
    *n = 0;
    const char *p = list ? list : "";
    while (*p) {
        size_t l = strcspn(p, ",");
        char name[64];
        if (l == 0 || l >= sizeof name)
            return rlab_ctx_errorf(ctx, RLAB_EINVAL, "bad dataset name list '%s'", list);
        memcpy(name, p, l);
        name[l] = 0;
        if (*n == max)
            return rlab_ctx_errorf(ctx, RLAB_EINVAL, "at most %d dialogue datasets", max);
        if (!(out[*n] = rlab_ctx_dialogues(ctx, name)))
            return rlab_ctx_err(ctx)->code ? rlab_ctx_err(ctx)->code : RLAB_ENOTFOUND;
        (*n)++;
        p += l;
        if (*p == ',')
            p++;
    }
    return RLAB_OK;
}

static int prepare_run(rlab_ctx *ctx, const rlab_args *args)
{
    const rlab_dialogues *train[16], *extra[16];
    int nt = 0, nx = 0, rc;
    if ((rc = dialogue_list(ctx, rlab_args_str(args, "dialogues"), train, 16, &nt)) ||
        (rc = dialogue_list(ctx, rlab_args_str(args, "catalog"), extra, 16, &nx)))
        return rc;
    if (nt == 0)
        return rlab_ctx_errorf(ctx, RLAB_EINVAL, "name the training dialogues: dialogues=...");
    prep_params *p = rlab_ctx_alloc(ctx, sizeof *p);
    if (!p)
        return rlab_ctx_errorf(ctx, RLAB_ENOMEM, "out of memory");
    snprintf(p->dialogues, sizeof p->dialogues, "%s", rlab_args_str(args, "dialogues"));
    snprintf(p->catalog, sizeof p->catalog, "%s", rlab_args_str(args, "catalog"));
    p->synth = (int)rlab_args_int(args, "synth");
    p->seed = rlab_args_int(args, "seed");
    /* the movie files as absolute paths: the recipe must not depend on the working folder */
    const char *files = rlab_args_str(args, "movies");
    size_t off = 0;
    char path[1024], abs[PATH_MAX];
    for (int i = 0; list_item(files, i, path, sizeof path); i++) {
        const char *use = realpath(path, abs) ? abs : path; /* missing: the loader says so */
        int w = snprintf(p->movies + off, sizeof p->movies - off, "%s%s", off ? "," : "", use);
        if (w < 0 || (size_t)w >= sizeof p->movies - off)
            return rlab_ctx_errorf(ctx, RLAB_EINVAL, "movies=: too many files");
        off += (size_t)w;
    }
    rlab_dataset *ds = NULL;
    crs_prepare_stats st;
    int32_t nmv = 0;
    rc = prepare_build(rlab_args_str(args, "name"), train, nt, extra, nx, p, &ds, &st, &nmv,
                       rlab_ctx_err(ctx));
    if (rc)
        return rc;
    const int32_t ng = rlab_feats_find(&ds->item_feats, "genres")->vocab.n;
    const int32_t nd = rlab_feats_find(&ds->item_feats, "decade")->vocab.n;
    char name[64];
    snprintf(name, sizeof name, "%s", ds->name);
    char *params = rlab_config_to_json(prep_fields, p);
    if (!params) {
        rlab_dataset_free(ds);
        return rlab_ctx_errorf(ctx, RLAB_ENOMEM, "out of memory");
    }
    rc = rlab_ctx_add_dataset_recipe(ctx, ds, "prepare", params);
    rlab_free(params);
    if (rc)
        return rc;
    rlab_ctx_printf(ctx,
                    "catalogue '%s': %d movies (%d linked to %d MovieLens titles), %d genres, "
                    "%d decades; %d training instances from real dialogues + %d template "
                    "dialogues",
                    name, st.items, st.linked, nmv, ng, nd, st.users_real, st.users_synth);
    rlab_ctx_result_int(ctx, "items", st.items);
    rlab_ctx_result_int(ctx, "linked", st.linked);
    rlab_ctx_result_int(ctx, "instances", st.users_real);
    rlab_ctx_result_int(ctx, "synthetic", st.users_synth);
    rlab_ctx_result_str(ctx, "dataset", name);
    return RLAB_OK;
}

/* The recorded crs.prepare replayed (a reopened workspace's first use of the catalogue). */
static int prepare_rebuild(rlab_host *host, const char *name, const char *params,
                           rlab_dataset **out, rlab_err *err)
{
    prep_params *p = rlab_calloc(1, sizeof *p);
    if (!p)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    int rc = rlab_config_defaults(prep_fields, NULL, p, err);
    if (rc == RLAB_OK)
        rc = rlab_config_from_json(prep_fields, p, params, 1, err);
    rlab_dialogues *held[32];
    int nt = 0, nx = 0;
    char dn[64];
    for (int i = 0; rc == RLAB_OK && list_item(p->dialogues, i, dn, sizeof dn); i++) {
        if (nt == 16 || !(held[nt] = rlab_host_dialogues_get(host, dn)))
            rc = rlab_errf(err, RLAB_ENOTFOUND, "its dialogues '%s' are not available", dn);
        else
            nt++;
    }
    for (int i = 0; rc == RLAB_OK && list_item(p->catalog, i, dn, sizeof dn); i++) {
        if (nx == 16 || !(held[16 + nx] = rlab_host_dialogues_get(host, dn)))
            rc = rlab_errf(err, RLAB_ENOTFOUND, "its dialogues '%s' are not available", dn);
        else
            nx++;
    }
    if (rc == RLAB_OK) {
        crs_prepare_stats st;
        int32_t nmv = 0;
        rc = prepare_build(name, (const rlab_dialogues *const *)held, nt,
                           (const rlab_dialogues *const *)(held + 16), nx, p, out, &st, &nmv, err);
    }
    for (int i = 0; i < nt; i++)
        rlab_host_dialogues_release(host, held[i]);
    for (int i = 0; i < nx; i++)
        rlab_host_dialogues_release(host, held[16 + i]);
    rlab_free(p);
    return rc;
}

static const rlab_dataset_maker crs_makers[] = {{.name = "prepare", .rebuild = prepare_rebuild},
                                                {0}};

/* ---- responses through the language backend --------------------------------------------- */

typedef struct resp_req {
    const rlab_model *m;
    const char *context;
    const char *titles[3];
    int n_titles;
} resp_req;

/* The offline policy: the retrieved template with its slots filled. */
static int respond_policy(const rlab_llm_req *req, rlab_rng *rng, rlab_llm_out *out, void *ud,
                          rlab_err *err)
{
    (void)rng;
    (void)ud;
    const resp_req *r = req->ctx;
    char *s = crs_template_respond(crs_model_templates(r->m), r->context, r->titles, r->n_titles);
    if (!s)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    int rc = rlab_llm_out_puts(out, s);
    rlab_free(s);
    return rc;
}

static const char *const backend_choices[] = {"offline", "openai", NULL};

static rlab_llm *make_llm(rlab_ctx *ctx, const rlab_args *args)
{
    const int openai = rlab_args_choice(args, "backend") == 1;
    const char *url = rlab_args_str(args, "llm_url"), *model = rlab_args_str(args, "llm_model");
    rlab_llm_config c = {.backend = openai ? "openai" : "offline",
                         .base_url = url && *url ? url : NULL,
                         .model = model && *model ? model : NULL,
                         .timeout = rlab_args_float(args, "llm_timeout")};
    rlab_llm *llm = rlab_llm_new(&c, rlab_ctx_err(ctx));
    if (llm && rlab_llm_register(llm, "crs.respond", respond_policy, NULL, rlab_ctx_err(ctx))) {
        rlab_llm_free(llm);
        return NULL;
    }
    if (llm && openai) {
        char d[256];
        rlab_llm_describe(llm, d, sizeof d);
        rlab_ctx_printf(ctx, "language backend: %s", d);
    }
    return llm;
}

/* The response of model m to context, recommending cands[0..n) (best first). Caller frees.
 * A failing server falls back to the template and says so once in *warned. */
static char *respond(rlab_ctx *ctx, rlab_llm *llm, const rlab_model *m, const char *context,
                     const int32_t *cands, int n, int *warned)
{
    resp_req r = {.m = m, .context = context};
    for (int i = 0; i < n && i < 3; i++)
        r.titles[r.n_titles++] = crs_model_title(m, cands[i]);
    char *prompt = crs_llm_prompt(m, context, cands, n);
    if (!prompt)
        return NULL;
    rlab_llm_msg msgs[1] = {{"user", prompt}};
    rlab_llm_req req = {.task = "crs.respond",
                        .msgs = msgs,
                        .n_msgs = 1,
                        .opts = {.temperature = 0, .max_tokens = 96},
                        .ctx = &r};
    rlab_llm_result res = {0};
    rlab_err e = {0};
    char *out = NULL;
    if (rlab_llm_chat(llm, &req, &res, &e) == RLAB_OK && res.text) {
        out = rlab_strdup(res.text);
    } else {
        if (warned && !*warned) {
            rlab_ctx_printf(ctx, "language model error (the template answers instead): %s",
                            res.error[0] ? res.error : e.msg);
            *warned = 1;
        }
        rlab_llm_result_clear(&res);
        if (rlab_llm_chat_offline(llm, &req, &res, &e) == RLAB_OK && res.text)
            out = rlab_strdup(res.text);
    }
    rlab_llm_result_clear(&res);
    rlab_free(prompt);
    for (char *p = out; p && *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    return out;
}

/* ---- crs.eval --------------------------------------------------------------------------- */

enum { M_MODEL, M_REPEAT, M_REPPOP, M_N };
static const char *const method_names[M_N] = {"unicrs", "repeat", "repeat+pop"};
static const int eval_ks[3] = {1, 10, 50};

static const rlab_model *crs_model_arg(rlab_ctx *ctx, const rlab_args *args)
{
    const rlab_model *m = rlab_ctx_model(ctx, rlab_args_str(args, "model"));
    if (m && !crs_is_unicrs(m)) {
        rlab_ctx_errorf(ctx, RLAB_EINVAL, "model '%s' is a %s model, not a CRS (unicrs)", m->name,
                        m->kind);
        return NULL;
    }
    return m;
}

static int eval_run(rlab_ctx *ctx, const rlab_args *args)
{
    const rlab_model *m = crs_model_arg(ctx, args);
    if (!m)
        return rlab_ctx_err(ctx)->code;
    const rlab_dialogues *d = rlab_ctx_dialogues(ctx, rlab_args_str(args, "data"));
    if (!d)
        return rlab_ctx_err(ctx)->code ? rlab_ctx_err(ctx)->code : RLAB_ENOTFOUND;
    const rlab_dataset *cat = rlab_ctx_dataset(ctx, m->dataset);
    if (!cat) {
        char why[sizeof rlab_ctx_err(ctx)->msg];
        snprintf(why, sizeof why, "%s", rlab_ctx_err(ctx)->msg);
        const int code = rlab_ctx_err(ctx)->code ? rlab_ctx_err(ctx)->code : RLAB_ENOTFOUND;
        return rlab_ctx_errorf(ctx, code, "the catalogue '%s' of model '%s' is not available (%s)",
                               m->dataset, m->name, why[0] ? why : "crs.prepare");
    }
    if (cat->items.n != m->n_items)
        return rlab_ctx_errorf(ctx, RLAB_EINVAL,
                               "dataset '%s' has %d items, model '%s' %d: not its catalogue",
                               cat->name, cat->items.n, m->name, m->n_items);
    const int32_t NI = m->n_items;
    const int64_t limit = rlab_args_int(args, "limit");
    const int do_resp = rlab_args_bool(args, "responses");
    rlab_ctx_run_describe(ctx, m->kind, NULL);
    crs_insts in = {0};
    int rc = crs_insts_build(d, &cat->items, &in, rlab_ctx_err(ctx));
    if (rc) {
        crs_insts_clear(&in);
        return rc;
    }
    /* popularity: the catalogue's training instances (never the evaluated dialogues) */
    float *pop = rlab_calloc((size_t)NI, sizeof *pop);
    const int CH = 64;
    float *S = rlab_malloc((size_t)CH * (size_t)NI * sizeof *S);
    float *bs = rlab_malloc((size_t)NI * sizeof *bs);
    uint8_t *mask = rlab_calloc((size_t)NI, 1);
    rlab_query *q = rlab_calloc((size_t)CH, sizeof *q);
    char **resp = rlab_calloc((size_t)(in.n ? in.n : 1), sizeof *resp);
    if (!pop || !S || !bs || !mask || !q || !resp)
        rc = rlab_ctx_errorf(ctx, RLAB_ENOMEM, "out of memory");
    for (size_t i = 0; !rc && i < cat->inter.n; i++)
        pop[cat->inter.item[i]] += 1.0f;
    rlab_llm *llm = rc || !do_resp ? NULL : make_llm(ctx, args);
    if (!rc && do_resp && !llm)
        rc = rlab_ctx_err(ctx)->code ? rlab_ctx_err(ctx)->code : RLAB_ENOMEM;
    /* sums[method][norep][k], counts[norep] */
    double hit[M_N][2][3] = {{{0}}};
    int64_t cnt[2] = {0, 0}, skipped = 0, scored = 0, n_resp = 0;
    rlab_db *db = rlab_ctx_db(ctx);
    const int64_t run = rlab_ctx_run_id(ctx);
    int warned = 0;
    if (!rc && db && run && (rc = rlab_db_begin(db, rlab_ctx_err(ctx))))
        db = NULL;
    const int64_t N = limit > 0 && limit < in.n ? limit : in.n;
    for (int64_t lo = 0; !rc && lo < N; lo += CH) {
        if (rlab_ctx_cancelled(ctx)) {
            rc = RLAB_ECANCELED;
            break;
        }
        const int B = (int)(N - lo < CH ? N - lo : CH);
        for (int r = 0; r < B; r++) {
            const crs_inst *x = &in.v[lo + r];
            q[r] =
                (rlab_query){.user = -1, .hist = x->ctx, .n_hist = x->n_ctx, .context = x->context};
        }
        if ((rc = rlab_model_score_all(m, q, B, S, rlab_ctx_err(ctx))))
            break;
        for (int r = 0; r < B && !rc; r++) {
            const crs_inst *x = &in.v[lo + r];
            if (x->target < 0) {
                skipped++;
                continue;
            }
            scored++;
            const float *s = S + (size_t)r * NI;
            int64_t rk[M_N][2];
            for (int k = 0; k < x->n_ctx; k++)
                mask[x->ctx[k]] = 1;
            for (int meth = 0; meth < M_N; meth++) {
                const float *sc = s;
                if (meth != M_MODEL) {
                    crs_baseline_scores(x->ctx, x->n_ctx, meth == M_REPPOP ? pop : NULL, NI, bs);
                    sc = bs;
                }
                rk[meth][0] = crs_rank(sc, NI, NULL, x->target);
                rk[meth][1] = x->repeat ? 0 : crs_rank(sc, NI, mask, x->target);
                for (int nr = 0; nr < 2; nr++) {
                    if (nr == 1 && x->repeat)
                        continue;
                    for (int ki = 0; ki < 3; ki++)
                        hit[meth][nr][ki] += rk[meth][nr] <= eval_ks[ki];
                }
            }
            for (int k = 0; k < x->n_ctx; k++)
                mask[x->ctx[k]] = 0;
            cnt[0]++;
            cnt[1] += !x->repeat;
            /* the top items, a response once per turn, the stored row */
            int32_t top[10];
            rlab_topk_row(s, NI, NULL, 10, top, NULL);
            const int first =
                lo + r == 0 || in.v[lo + r - 1].conv != x->conv || in.v[lo + r - 1].turn != x->turn;
            char *text = NULL;
            if (do_resp && first) {
                text = respond(ctx, llm, m, x->context, top, 5, &warned);
                if (!text) {
                    rc = rlab_ctx_errorf(ctx, RLAB_ENOMEM, "out of memory");
                    break;
                }
                resp[n_resp++] = text;
            }
            if (db) {
                char extra[1024], cid[64];
                size_t ci = 0; /* the corpus's conversation id, JSON-safe characters only */
                for (const char *p = d->convs[x->conv].id; p && *p && ci + 1 < sizeof cid; p++)
                    if ((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
                        (*p >= 'A' && *p <= 'Z') || *p == '-' || *p == '_' || *p == '.')
                        cid[ci++] = *p;
                cid[ci] = 0;
                size_t n =
                    (size_t)snprintf(extra, sizeof extra,
                                     "{\"conversation_id\":\"%s\",\"target\":\"%s\",\"repeat\":%d,"
                                     "\"rank\":%lld,\"rank_norep\":%lld,"
                                     "\"rank_repeat\":%lld,\"rank_repeat_pop\":%lld,\"top10\":[",
                                     cid, rlab_vocab_name(&cat->items, x->target), x->repeat,
                                     (long long)rk[M_MODEL][0], (long long)rk[M_MODEL][1],
                                     (long long)rk[M_REPEAT][0], (long long)rk[M_REPPOP][0]);
                for (int k = 0; k < 10 && n + 24 < sizeof extra; k++)
                    n += (size_t)snprintf(extra + n, sizeof extra - n, "%s\"%s\"", k ? "," : "",
                                          top[k] >= 0 ? rlab_vocab_name(&cat->items, top[k]) : "");
                snprintf(extra + n, sizeof extra - n, "]}");
                rc = rlab_db_dialogue(db, run, x->conv, x->turn, "system",
                                      text ? text : (x->response ? x->response : ""), extra,
                                      rlab_ctx_err(ctx));
            }
        }
        rlab_ctx_progress(ctx, lo + B, N, "instances", 0, NULL);
    }
    if (db) {
        if (rc)
            rlab_db_rollback(db);
        else
            rc = rlab_db_commit(db, rlab_ctx_err(ctx));
    }
    if (!rc) {
        static const char *const cols[] = {"method",    "setting",   "recall@1",
                                           "recall@10", "recall@50", "n"};
        rlab_table *t = rlab_ctx_result_table(ctx, "recall", 6, cols);
        if (!t)
            rc = RLAB_ENOMEM;
        for (int nr = 0; !rc && nr < 2; nr++)
            for (int meth = 0; meth < M_N; meth++) {
                double v[3];
                for (int ki = 0; ki < 3; ki++)
                    v[ki] = cnt[nr] ? hit[meth][nr][ki] / (double)cnt[nr] : 0.0;
                const char *setting = nr ? "without repeats" : "with repeats";
                rlab_table_add_row(t, "ssfffl", method_names[meth], setting, v[0], v[1], v[2],
                                   cnt[nr]);
                rlab_ctx_printf(ctx, "%-11s %-16s R@1 %.4f  R@10 %.4f  R@50 %.4f  (n=%lld)",
                                method_names[meth], setting, v[0], v[1], v[2], (long long)cnt[nr]);
                for (int ki = 0; ki < 3; ki++) {
                    char name[64];
                    snprintf(name, sizeof name, "%s%s.recall@%d", meth ? method_names[meth] : "",
                             nr ? (meth ? ".norep" : "norep") : "", eval_ks[ki]);
                    const char *key = name[0] == '.' ? name + 1 : name;
                    rlab_ctx_metric(ctx, 0, "test", key, "full", v[ki]);
                    if (meth == M_MODEL)
                        rlab_ctx_result_float(ctx, key, v[ki]);
                }
            }
    }
    if (!rc && n_resp > 0) {
        rlab_table *t = rlab_ctx_result_table(
            ctx, "distinct", 3, (const char *const[]){"n", "standard", "unicrs_code"});
        for (int n = 2; t && n <= 4 && !rc; n++) {
            double a = 0, b = 0;
            if ((rc = rlab_eval_distinct((const char *const *)resp, n_resp, n,
                                         RLAB_DISTINCT_STANDARD, &a, rlab_ctx_err(ctx))) ||
                (rc = rlab_eval_distinct((const char *const *)resp, n_resp, n, RLAB_DISTINCT_UNICRS,
                                         &b, rlab_ctx_err(ctx))))
                break;
            rlab_table_add_row(t, "iff", n, a, b);
            char key[32];
            snprintf(key, sizeof key, "distinct%d", n);
            rlab_ctx_result_float(ctx, key, a);
            rlab_ctx_metric(ctx, 0, "test", key, "standard", a);
            snprintf(key, sizeof key, "distinct%d_unicrs", n);
            rlab_ctx_result_float(ctx, key, b);
            rlab_ctx_metric(ctx, 0, "test", key, "unicrs-code", b);
            rlab_ctx_printf(ctx,
                            "Distinct-%d over %lld responses: %.4f (standard), %.4f (UniCRS code: "
                            "unique n-grams / sentences)",
                            n, (long long)n_resp, a, b);
        }
    }
    if (!rc) {
        rlab_ctx_result_int(ctx, "instances", cnt[0]);
        rlab_ctx_result_int(ctx, "instances_norep", cnt[1]);
        rlab_ctx_result_int(ctx, "skipped", skipped);
        rlab_ctx_result_int(ctx, "responses", n_resp);
        if (skipped)
            rlab_ctx_printf(ctx, "%lld instance(s) skipped: target not in the catalogue",
                            (long long)skipped);
    }
    (void)scored;
    for (int64_t i = 0; i < n_resp; i++)
        rlab_free(resp[i]);
    rlab_free(resp);
    rlab_llm_free(llm);
    rlab_free(pop);
    rlab_free(S);
    rlab_free(bs);
    rlab_free(mask);
    rlab_free(q);
    crs_insts_clear(&in);
    return rc;
}

/* ---- crs.respond --------------------------------------------------------------------------- */

static int respond_run(rlab_ctx *ctx, const rlab_args *args)
{
    const rlab_model *m = crs_model_arg(ctx, args);
    if (!m)
        return rlab_ctx_err(ctx)->code;
    const rlab_dataset *cat = rlab_ctx_dataset(ctx, m->dataset);
    if (!cat || cat->items.n != m->n_items)
        return rlab_ctx_errorf(ctx, RLAB_ENOTFOUND,
                               "the catalogue '%s' of model '%s' is not loaded (crs.prepare)",
                               m->dataset, m->name);
    /* mentioned items: catalogue ids, comma-separated */
    int32_t hist[64];
    int nh = 0;
    const char *p = rlab_args_str(args, "mentioned");
    for (p = p ? p : ""; *p;) {
        size_t l = strcspn(p, ",");
        int32_t it = rlab_vocab_find(&cat->items, p, l);
        if (it < 0)
            return rlab_ctx_errorf(ctx, RLAB_ENOTFOUND, "item '%.*s' is not in catalogue '%s'",
                                   (int)l, p, cat->name);
        if (nh < 64)
            hist[nh++] = it;
        p += l;
        if (*p == ',')
            p++;
    }
    const int k = (int)rlab_args_int(args, "k");
    rlab_query q = {
        .user = -1, .hist = hist, .n_hist = nh, .context = rlab_args_str(args, "context")};
    int32_t *top = rlab_ctx_alloc(ctx, (size_t)k * sizeof *top);
    float *sc = rlab_ctx_alloc(ctx, (size_t)k * sizeof *sc);
    if (!top || !sc)
        return rlab_ctx_errorf(ctx, RLAB_ENOMEM, "out of memory");
    int rc = rlab_model_topk(m, &q, 1, k, NULL, top, sc, rlab_ctx_err(ctx));
    if (rc)
        return rc;
    rlab_table *t = rlab_ctx_result_table(ctx, "items", 4,
                                          (const char *const[]){"rank", "item", "title", "score"});
    for (int i = 0; t && i < k && top[i] >= 0; i++)
        rlab_table_add_row(t, "issf", i + 1, rlab_vocab_name(&cat->items, top[i]),
                           crs_model_title(m, top[i]), (double)sc[i]);
    rlab_llm *llm = make_llm(ctx, args);
    if (!llm)
        return rlab_ctx_err(ctx)->code;
    char *text = respond(ctx, llm, m, q.context, top, k, NULL);
    rlab_llm_free(llm);
    if (!text)
        return rlab_ctx_errorf(ctx, RLAB_ENOMEM, "out of memory");
    rlab_ctx_printf(ctx, "System: %s", text);
    rlab_ctx_result_str(ctx, "response", text);
    rlab_ctx_result_str(ctx, "top", rlab_vocab_name(&cat->items, top[0]));
    rlab_free(text);
    return RLAB_OK;
}

/* ---- declarations -------------------------------------------------------------------------- */

#define LLM_ARGS                                                                                   \
    {.name = "backend",                                                                            \
     .type = RLAB_ARG_CHOICE,                                                                      \
     .choices = backend_choices,                                                                   \
     .def = "offline",                                                                             \
     .help = "who writes responses: templates (offline) or an OpenAI-compatible server"},          \
        {.name = "llm_url",                                                                        \
         .type = RLAB_ARG_STRING,                                                                  \
         .help = "openai: base URL (default $RECLAB_LLM_BASE_URL)"},                               \
        {.name = "llm_model",                                                                      \
         .type = RLAB_ARG_STRING,                                                                  \
         .help = "openai: model (default $RECLAB_LLM_MODEL)"},                                     \
    {                                                                                              \
        .name = "llm_timeout", .type = RLAB_ARG_FLOAT, .def = "60", .min = 0.1,                    \
        .flags = RLAB_ARGF_MIN, .help = "openai: seconds per attempt"                              \
    }

static const rlab_arg prepare_args[] = {
    {.name = "dialogues",
     .type = RLAB_ARG_STRING,
     .flags = RLAB_ARGF_REQUIRED,
     .help = "training dialogue datasets, comma-separated (never the test split)"},
    {.name = "catalog",
     .type = RLAB_ARG_STRING,
     .def = "",
     .help = "dialogue datasets whose movies join the catalogue (no training instance)"},
    {.name = "movies",
     .type = RLAB_ARG_PATH,
     .def = "",
     .help = "MovieLens movie files, comma-separated (movies.dat, u.item): genres and years"},
    {.name = "synth",
     .type = RLAB_ARG_INT,
     .def = "0",
     .min = 0,
     .max = 10000000,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
     .help = "template dialogues generated from the metadata (genre + liked movie -> movie)"},
    {.name = "seed",
     .type = RLAB_ARG_INT,
     .def = "1",
     .flags = RLAB_ARGF_INT64,
     .help = "seed of the template dialogues"},
    {.name = "name",
     .type = RLAB_ARG_STRING,
     .def = "crs",
     .flags = RLAB_ARGF_NEW,
     .help = "name of the catalogue dataset"},
    {0}};

static const rlab_arg eval_args[] = {{.name = "model",
                                      .type = RLAB_ARG_MODEL,
                                      .flags = RLAB_ARGF_REQUIRED,
                                      .help = "a unicrs model"},
                                     {.name = "data",
                                      .type = RLAB_ARG_DATASET,
                                      .flags = RLAB_ARGF_REQUIRED,
                                      .help = "held-out dialogues (ReDial test)"},
                                     {.name = "limit",
                                      .type = RLAB_ARG_INT,
                                      .def = "0",
                                      .min = 0,
                                      .flags = RLAB_ARGF_MIN,
                                      .help = "score the first N instances only (0 = all)"},
                                     {.name = "responses",
                                      .type = RLAB_ARG_BOOL,
                                      .def = "true",
                                      .help = "write a response per scored turn (Distinct-n)"},
                                     LLM_ARGS,
                                     {0}};

static const rlab_arg respond_args[] = {
    {.name = "context",
     .type = RLAB_ARG_STRING,
     .def = "",
     .flags = RLAB_ARGF_REST,
     .help = "the dialogue so far (\"User: ...\\nSystem: ...\"), titles written out"},
    {.name = "model",
     .type = RLAB_ARG_MODEL,
     .flags = RLAB_ARGF_REQUIRED,
     .help = "a unicrs model"},
    {.name = "mentioned",
     .type = RLAB_ARG_STRING,
     .def = "",
     .help = "items mentioned so far, catalogue ids, comma-separated, oldest first"},
    {.name = "k",
     .type = RLAB_ARG_INT,
     .def = "5",
     .min = 1,
     .max = 1000,
     .flags = RLAB_ARGF_MIN | RLAB_ARGF_MAX,
     .help = "items returned"},
    LLM_ARGS,
    {0}};

static const rlab_cmd crs_cmds[] = {
    {.name = "prepare",
     .args = prepare_args,
     .help = "Build a CRS catalogue dataset from dialogue datasets.\n"
             "Items: every movie of the dialogues (and of catalog=), titles from the mentions,\n"
             "genres and decade from MovieLens where the normalised title and year match.\n"
             "Users: one training instance per movie a recommender turn of `dialogues` mentions\n"
             "(context, gold response, template and mentioned items as user features), plus\n"
             "synth= template dialogues. The knowledge graph is item-genre and item-decade.\n"
             "Example: crs.prepare dialogues=valid_data catalog=test_data "
             "movies=movies.dat name=redial",
     .flags = RLAB_CMD_JOB,
     .run = prepare_run},
    {.name = "eval",
     .args = eval_args,
     .help = "Score a CRS on held-out dialogues: Recall@1/10/50 with and without repeats.\n"
             "Each recommender turn that mentions movies gives one instance per movie; the\n"
             "context is the turns before it. \"without repeats\" drops the instances whose\n"
             "movie was mentioned before and removes mentioned movies from every ranking.\n"
             "Baselines in the same table: repeat (the most recent mention first) and repeat +\n"
             "popularity (then the catalogue's training popularity). Distinct-2/3/4 of the\n"
             "responses, standard and the UniCRS code's variant. Every scored instance is a\n"
             "row of the store table `dialogues` (extra: conversation_id, target, ranks, top 10).\n"
             "Example: crs.eval model=unicrs data=test_data",
     .flags = RLAB_CMD_JOB | RLAB_CMD_RECORD,
     .run = eval_run},
    {.name = "simulate",
     .args = crs_simulate_args,
     .help = "Simulated users talk with CRS policies (MACRS and its baselines).\n"
             "Each user holds a seeded target item, answers attribute questions truthfully\n"
             "from its metadata, reveals a value on chit-chat, accepts only the target and\n"
             "leaves after turns= turns (the CRS's last turn is a top-10 list). Policies:\n"
             "macrs (three responders, a planner, information- and strategy-level reflection),\n"
             "always (recommend every turn), askrec (ask_first questions, then recommend), model\n"
             "(the rec= model alone reading the dialogue, e.g. unicrs). Table: success rate,\n"
             "average turns, hit ratio; every dialogue stored (crs.replay run=R conversation=C).\n"
             "Example: crs.simulate data=redial rec=unicrs targets=200 seed=1",
     .flags = RLAB_CMD_JOB,
     .run = crs_simulate_run},
    {.name = "chat",
     .args = crs_chat_args,
     .help = "Talk with a CRS yourself, one turn per command.\n"
             "Shows the act the planner chose, the proposals it rejected and the preference\n"
             "state; stored under the run that started the chat (session=RUN continues it,\n"
             "crs.replay run=RUN shows it).\n"
             "Example: crs.chat data=redial model=macrs I want a comedy",
     .run = crs_chat_run},
    {.name = "replay",
     .args = crs_replay_args,
     .help = "Show a stored dialogue (crs.simulate, crs.chat) turn by turn: text, act, the\n"
             "rejected proposals and the preference state.\n"
             "Example: crs.replay run=12 conversation=0",
     .flags = RLAB_CMD_READONLY,
     .run = crs_replay_run},
    {.name = "respond",
     .args = respond_args,
     .help = "One CRS turn: the top items for a dialogue context, and a response.\n"
             "Example: crs.respond model=unicrs mentioned=111776 User: I loved Super Troopers",
     .run = respond_run},
    {0}};

/* The chat view (`view chat`, F5): the latest crs.chat session turn by turn; under each system
 * turn (shown with the act the planner chose) a line of the proposals it rejected and a line
 * of the preference state. */
#define CHAT_OF_VIEW                                                                               \
    " FROM dialogues WHERE run_id = (SELECT max(run_id) FROM dialogues WHERE turn = -1 AND"        \
    " role = 'header') AND conversation = 0 AND turn >= 0"
static const rlab_view_kind crs_views[] = {
    {.name = "chat",
     .title = "CRS chat",
     .kind = "chat",
     .source =
         "SELECT role, text FROM (SELECT turn, 0 AS k, CASE role WHEN 'user' THEN 'you'"
         " ELSE 'crs [' || coalesce(json_extract(extra, '$.act'), '') || ']' END AS role,"
         " text" CHAT_OF_VIEW " UNION ALL SELECT turn, 1, '  rejected', coalesce((SELECT"
         " group_concat(json_extract(j.value, '$.act') || ': ' || json_extract(j.value,"
         " '$.text'), ' / ') FROM json_each(extra, '$.rejected_proposals') AS j), '-')" CHAT_OF_VIEW
         " AND role = 'system'"
         " UNION ALL SELECT turn, 2, '  state', 'wanted ' || coalesce(json_extract(extra,"
         " '$.state.wanted'), '[]') || ', unwanted ' || coalesce(json_extract(extra,"
         " '$.state.unwanted'), '[]') || ', rejected items ' || coalesce(json_extract(extra,"
         " '$.state.rejected'), '[]') || ', candidates ' || coalesce(json_extract(extra,"
         " '$.state.candidates'), '?')" CHAT_OF_VIEW " AND role = 'system')"
         " ORDER BY turn, k"},
    {0}};

RLAB_PLUGIN(crs)
{
    RLAB_PLUGIN_INIT(out);
    out->name = "crs";
    out->version = "0.1.0";
    out->summary = "conversational recommendation: UniCRS-style model, ReDial evaluation";
    out->models = crs_kinds;
    out->commands = crs_cmds;
    out->makers = crs_makers;
    out->views = crs_views;
    return RLAB_OK;
}
