/*
 * plugins/ranker/net: the four model kinds on one token layout.
 *
 * Inputs of a batch (every kind):
 *   C [B, M, d]  categorical tokens: one per categorical field (its embedding), one per
 *                multi-valued field (mean of its values' embeddings), one per numeric field
 *                (x * w_k + b_k, x the standardised value, 0 when missing)
 *   S [B, L, d]  sequence tokens: each behaviour sequence's last max_seq items (padding
 *                masked), L = n_seq * max_seq; a sequence that shares a field's ids (the
 *                history of items) shares its embedding table
 * INFNet (papers/models.md 4.2), per block l:
 *   heterogeneous  C~ <- LN(C~ + CA(C~, S) + CA(C~, T))     S~ <- LN(S~ + CA(S~, C) + CA(S~, T))
 *                  T~ <- LN(T~ + CA(T~, C) + CA(T~, S))     T^ <- LN(CA(T, C) + CA(T, S))
 *                  (proxies keep a residual; task tokens are pure queries, as in the paper)
 *   homogeneous    C <- C * sigmoid(lin(flat C~)), S <- S * sigmoid(lin(flat S~)),
 *                  T <- T^ * sigmoid(lin(flat T~))          (Proxy Gated Units)
 *   with CA(Q, K) = softmax(Q Wq (K Wk)^T / sqrt(d_h)) K Wv (multi-head, padded keys masked),
 *   C~ = reshape(lin(flat C)) [B, m, d], S~ = per sequence (sum_t s_t) W [B, m, d];
 *   task i reads T_i through its own MLP head.
 * MMoE: experts and per-task softmax gates over x0 = [flat C, mean-pooled S]; DCN-v2: cross
 * layers x_{l+1} = x0 * (x_l W + b) + x_l in parallel with a deep MLP; shared-bottom: one MLP
 * under per-task towers.
 */
#include "ranker.h"

#include "eval/ctr.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const rk_kind_names[] = {"infnet", "mmoe", "dcnv2", "sharedbottom", NULL};

const rlab_field rk_fields[] = {
    RLAB_FIELD_CHOICE(rk_cfg, kind, "infnet", rk_kind_names, "model kind"),
    RLAB_FIELD_INT(rk_cfg, dim, "16", 2, 512, "embedding size d"),
    RLAB_FIELD_INT(rk_cfg, hidden, "64", 1, 4096, "MLP width (towers, experts, deep part)"),
    RLAB_FIELD_INT(rk_cfg, epochs, "10", 1, 100000, "passes over the training part"),
    RLAB_FIELD_INT(rk_cfg, batch, "256", 1, 65536, "samples per step"),
    RLAB_FIELD_FLOAT(rk_cfg, lr, "0.001", 0, 10, "Adam learning rate"),
    RLAB_FIELD_FLOAT(rk_cfg, l2, "0", 0, 1, "L2 on every parameter (Adam)"),
    RLAB_FIELD_FLOAT(rk_cfg, dropout, "0", 0, 0.9, "dropout on MLP hidden layers"),
    RLAB_FIELD_INT(rk_cfg, patience, "3", 0, 1000,
                   "epochs without a better mean valid AUC before stopping (0 = never)"),
    RLAB_FIELD_I64(rk_cfg, seed, "1", 0, 0, "seed (initialisation, batches, dropout)"),
    RLAB_FIELD_STR(rk_cfg, task, "", "one label to train on (single-task); empty = all"),
    RLAB_FIELD_INT(rk_cfg, max_seq, "20", 1, 1000, "behaviour sequence: the last N items"),
    RLAB_FIELD_INT(rk_cfg, layers, "2", 1, 16, "infnet: alternating blocks"),
    RLAB_FIELD_INT(rk_cfg, proxies, "4", 1, 64,
                   "infnet: categorical proxies, and sequence proxies per sequence"),
    RLAB_FIELD_INT(rk_cfg, shared_tasks, "2", 0, 64,
                   "infnet: shared task tokens (0 = none, task tokens ungated)"),
    RLAB_FIELD_INT(rk_cfg, heads, "2", 1, 64, "infnet: attention heads (divide dim)"),
    RLAB_FIELD_BOOL(rk_cfg, hetero, "true", "infnet: heterogeneous flow (cross-attention)"),
    RLAB_FIELD_BOOL(rk_cfg, homo, "true", "infnet: homogeneous flow (proxy gated units)"),
    RLAB_FIELD_INT(rk_cfg, experts, "4", 1, 64, "mmoe: experts"),
    RLAB_FIELD_INT(rk_cfg, cross_layers, "2", 1, 16, "dcnv2: cross layers"),
    {0}};

int rk_cfg_defaults(int kind, rk_cfg *c, rlab_err *err)
{
    memset(c, 0, sizeof *c);
    int rc = rlab_config_defaults(rk_fields, NULL, c, err);
    c->kind = kind;
    return rc;
}

/* ---- the model ------------------------------------------------------------------------- */
#define RK_MAXP 1024
#define RK_MAXL 16

typedef struct ca_ids {
    int q, k, v;
} ca_ids;

struct rk_model {
    rk_cfg c;
    int ntasks;
    int task_label[RK_MAX_TASKS];
    char task_names[RK_MAX_TASKS][32];
    int d, M, L;
    int ncat, nmulti, nseq, nnum;
    int cat_field[RLAB_TAB_MAX_COLS];
    int64_t cat_off[RLAB_TAB_MAX_COLS]; /* row offset of each field in the joint table */
    int p_cat;                          /* joint table of every categorical field */
    int multi_field[RLAB_TAB_MAX_COLS], multi_p[RLAB_TAB_MAX_COLS];
    int seq_field[16], seq_p[16];
    int64_t seq_off[16];
    float *num_mean, *num_std;
    int p_num_w, p_num_b;
    /* infnet */
    int p_cp_w, p_cp_b, p_sp_w[16], p_task, p_shared;
    ca_ids ca[RK_MAXL][8];
    int ln[RK_MAXL][4][2];
    int gc_w[RK_MAXL], gc_b[RK_MAXL], gs_w[RK_MAXL], gs_b[RK_MAXL], gt_w[RK_MAXL], gt_b[RK_MAXL];
    /* shared MLPs */
    int mlp_w1, mlp_b1, mlp_w2, mlp_b2; /* bottom (sharedbottom) / deep (dcnv2) */
    int ex_w1[64], ex_b1[64], ex_w2[64], ex_b2[64];
    int gate_w[RK_MAX_TASKS], gate_b[RK_MAX_TASKS];
    int cr_w[RK_MAXL], cr_b[RK_MAXL];
    int hd_w1[RK_MAX_TASKS], hd_b1[RK_MAX_TASKS], hd_w2[RK_MAX_TASKS], hd_b2[RK_MAX_TASKS];
    int D0; /* flat input width of the MLP kinds */
    /* the table layout the model was built for (rk_model_fits) */
    int tab_nfields, tab_nnum, tab_nlabels;
    int32_t tab_card[RLAB_TAB_MAX_COLS];
    int tab_role[RLAB_TAB_MAX_COLS];
    char tab_labels[RLAB_TAB_MAX_LABELS][32];
    int np;
    rlab_param_spec *specs;
    char (*pnames)[48];
    rlab_params *P;
};

const rk_cfg *rk_model_cfg(const rk_model *m) { return &m->c; }
int rk_model_ntasks(const rk_model *m) { return m->ntasks; }
const char *rk_model_task_name(const rk_model *m, int i) { return m->task_names[i]; }
int64_t rk_model_nparams(const rk_model *m) { return m->P ? (int64_t)m->P->count : 0; }
rlab_params *rk_model_params(rk_model *m) { return m->P; }

static int addp(rk_model *m, const char *name, int ndim, int64_t a, int64_t b, int init,
                float scale)
{
    if (m->np >= RK_MAXP)
        return -1;
    int i = m->np++;
    snprintf(m->pnames[i], 48, "%s", name);
    rlab_param_spec *s = &m->specs[i];
    memset(s, 0, sizeof *s);
    s->name = m->pnames[i];
    s->ndim = ndim;
    s->shape[0] = a;
    s->shape[1] = b;
    s->init = init;
    s->scale = scale;
    return i;
}

static int addlin(rk_model *m, const char *name, int64_t in, int64_t out, int *w, int *b)
{
    char nm[48];
    snprintf(nm, sizeof nm, "%s.weight", name);
    *w = addp(m, nm, 2, in, out, RLAB_INIT_XAVIER, 0);
    snprintf(nm, sizeof nm, "%s.bias", name);
    *b = addp(m, nm, 1, out, 0, RLAB_INIT_ZERO, 0);
    return (*w < 0 || *b < 0) ? -1 : 0;
}

void rk_model_free(rk_model *m)
{
    if (!m)
        return;
    rlab_params_free(m->P);
    rlab_free(m->specs);
    rlab_free(m->pnames);
    rlab_free(m->num_mean);
    rlab_free(m->num_std);
    rlab_free(m);
}

int rk_model_fits(const rk_model *m, const rlab_tabular *tab, rlab_err *err)
{
    if (tab->nfields != m->tab_nfields || tab->nnum != m->tab_nnum ||
        tab->nlabels != m->tab_nlabels)
        return rlab_errf(err, RLAB_EINVAL,
                         "the model was built for %d token fields, %d numeric, %d labels; the "
                         "data has %d, %d, %d",
                         m->tab_nfields, m->tab_nnum, m->tab_nlabels, tab->nfields, tab->nnum,
                         tab->nlabels);
    for (int f = 0; f < tab->nfields; f++)
        if (tab->fields[f].card != m->tab_card[f] || (int)tab->fields[f].role != m->tab_role[f])
            return rlab_errf(err, RLAB_EINVAL,
                             "field '%s': %d ids in the data, %d in the model (a table with "
                             "other vocabularies)",
                             tab->fields[f].name, (int)tab->fields[f].card, (int)m->tab_card[f]);
    for (int j = 0; j < tab->nlabels; j++)
        if (strcmp(tab->label_names[j], m->tab_labels[j]) != 0)
            return rlab_errf(err, RLAB_EINVAL, "label %d is '%s' in the data, '%s' in the model", j,
                             tab->label_names[j], m->tab_labels[j]);
    return RLAB_OK;
}

float *rk_model_num_stats(rk_model *m, int which, int *nnum)
{
    *nnum = m->nnum;
    return which ? m->num_std : m->num_mean;
}

static float slog(float x) { return x < 0 ? -log1pf(-x) : log1pf(x); }

rk_model *rk_model_new(const rk_cfg *c, const rlab_tabular *tab, const int64_t *rows, int64_t n,
                       rlab_err *err)
{
    if (c->kind == RK_INFNET && c->dim % c->heads)
        return rlab_errf(err, RLAB_EINVAL, "heads (%d) must divide dim (%d)", c->heads, c->dim),
               NULL;
    if (c->layers > RK_MAXL || c->cross_layers > RK_MAXL || c->experts > 64)
        return rlab_errf(err, RLAB_EINVAL, "too many layers or experts"), NULL;
    rk_model *m = rlab_calloc(1, sizeof *m);
    if (!m)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory"), NULL;
    m->c = *c;
    m->d = c->dim;
    m->specs = rlab_calloc(RK_MAXP, sizeof *m->specs);
    m->pnames = rlab_calloc(RK_MAXP, sizeof *m->pnames);
    if (!m->specs || !m->pnames)
        goto nomem;
    m->tab_nfields = tab->nfields < RLAB_TAB_MAX_COLS ? tab->nfields : RLAB_TAB_MAX_COLS;
    m->tab_nnum = tab->nnum;
    m->tab_nlabels = tab->nlabels;
    for (int f = 0; f < m->tab_nfields; f++)
        m->tab_card[f] = tab->fields[f].card, m->tab_role[f] = (int)tab->fields[f].role;
    for (int j = 0; j < tab->nlabels && j < RLAB_TAB_MAX_LABELS; j++)
        snprintf(m->tab_labels[j], 32, "%s", tab->label_names[j]);
    /* tasks */
    if (c->task[0]) {
        int j = rlab_tabular_label(tab, c->task);
        if (j < 0) {
            rlab_errf(err, RLAB_EINVAL, "task '%s': the data has no such label", c->task);
            goto fail;
        }
        m->ntasks = 1;
        m->task_label[0] = j;
    } else {
        m->ntasks = tab->nlabels;
        for (int j = 0; j < tab->nlabels; j++)
            m->task_label[j] = j;
    }
    for (int i = 0; i < m->ntasks; i++)
        snprintf(m->task_names[i], 32, "%s", tab->label_names[m->task_label[i]]);
    /* token layout and embedding tables */
    const int d = m->d;
    char nm[48];
    int64_t rows_cat = 0;
    for (int f = 0; f < tab->nfields; f++) {
        const rlab_tab_field *fl = &tab->fields[f];
        if (fl->role == RLAB_TAB_SEQ) {
            if (m->nseq < 16)
                m->seq_field[m->nseq++] = f;
        } else if (fl->role == RLAB_TAB_MULTI) {
            snprintf(nm, sizeof nm, "emb.%.40s", fl->name);
            int p = addp(m, nm, 2, fl->card, d, RLAB_INIT_NORMAL, 0.05f);
            if (p < 0)
                goto toomany;
            m->multi_field[m->nmulti] = f;
            m->multi_p[m->nmulti++] = p;
        } else {
            m->cat_field[m->ncat] = f;
            m->cat_off[m->ncat++] = rows_cat;
            rows_cat += fl->card;
        }
    }
    m->p_cat = -1;
    if (m->ncat && (m->p_cat = addp(m, "emb.cat", 2, rows_cat, d, RLAB_INIT_NORMAL, 0.05f)) < 0)
        goto toomany;
    for (int s = 0; s < m->nseq; s++) {
        const rlab_tab_field *fl = &tab->fields[m->seq_field[s]];
        m->seq_p[s] = -1;
        m->seq_off[s] = 0;
        if (fl->shares >= 0)
            for (int k = 0; k < m->ncat; k++)
                if (m->cat_field[k] == fl->shares) {
                    m->seq_p[s] = m->p_cat;
                    m->seq_off[s] = m->cat_off[k];
                }
        if (m->seq_p[s] < 0) {
            snprintf(nm, sizeof nm, "emb.%.40s", fl->name);
            m->seq_p[s] = addp(m, nm, 2, fl->card, d, RLAB_INIT_NORMAL, 0.05f);
            if (m->seq_p[s] < 0)
                goto toomany;
        }
    }
    m->nnum = tab->nnum;
    if (m->nnum) {
        m->p_num_w = addp(m, "num.weight", 2, m->nnum, d, RLAB_INIT_NORMAL, 0.05f);
        m->p_num_b = addp(m, "num.bias", 2, m->nnum, d, RLAB_INIT_NORMAL, 0.05f);
        m->num_mean = rlab_calloc((size_t)m->nnum, sizeof(float));
        m->num_std = rlab_calloc((size_t)m->nnum, sizeof(float));
        if (!m->num_mean || !m->num_std)
            goto nomem;
        for (int k = 0; k < m->nnum; k++) {
            double s = 0, s2 = 0;
            int64_t cnt = 0;
            for (int64_t i = 0; i < n; i++) {
                float x = tab->num[rows[i] * tab->nnum + k];
                if (isnan(x))
                    continue;
                double v = (double)slog(x);
                s += v, s2 += v * v, cnt++;
            }
            double mu = cnt ? s / (double)cnt : 0, var = cnt ? s2 / (double)cnt - mu * mu : 0;
            m->num_mean[k] = (float)mu;
            m->num_std[k] = var > 1e-12 ? (float)sqrt(var) : 1.0f;
        }
    }
    m->M = m->ncat + m->nmulti + m->nnum;
    m->L = m->nseq * c->max_seq;
    if (m->M == 0) {
        rlab_errf(err, RLAB_EINVAL, "the data has no feature fields");
        goto fail;
    }
    const int M = m->M, L = m->L, N = m->ntasks, P = c->proxies, H = c->hidden;
    int headin = d;
    if (c->kind == RK_INFNET) {
        const int Ns = c->shared_tasks, F = m->nseq;
        if (addlin(m, "proxy.cat", (int64_t)M * d, (int64_t)P * d, &m->p_cp_w, &m->p_cp_b))
            goto toomany;
        for (int s = 0; s < F; s++) {
            snprintf(nm, sizeof nm, "proxy.seq.%d.weight", s);
            if ((m->p_sp_w[s] = addp(m, nm, 2, d, (int64_t)P * d, RLAB_INIT_XAVIER, 0)) < 0)
                goto toomany;
        }
        m->p_task = addp(m, "task.tokens", 2, N, d, RLAB_INIT_NORMAL, 0.1f);
        m->p_shared = Ns ? addp(m, "task.shared", 2, Ns, d, RLAB_INIT_NORMAL, 0.1f) : -1;
        /* query types 0 C~, 1 S~, 2 T~, 3 T; CA slots: 0 C~<-S 1 C~<-T 2 S~<-C 3 S~<-T
         * 4 T~<-C 5 T~<-S 6 T<-C 7 T<-S */
        static const char *const qn[4] = {"cproxy", "sproxy", "tshared", "task"};
        static const char *const kn[8] = {"seq", "task", "cat", "task", "cat", "seq", "cat", "seq"};
        for (int l = 0; l < c->layers; l++) {
            for (int a = 0; a < 8; a++) {
                int q = a / 2;
                m->ca[l][a].q = m->ca[l][a].k = m->ca[l][a].v = -1;
                int needs_seq = (q == 1) || !strcmp(kn[a], "seq");
                if ((needs_seq && F == 0) || (q == 2 && Ns == 0) || !c->hetero)
                    continue;
                const char *w3[3] = {"wq", "wk", "wv"};
                int *dst[3] = {&m->ca[l][a].q, &m->ca[l][a].k, &m->ca[l][a].v};
                for (int z = 0; z < 3; z++) {
                    snprintf(nm, sizeof nm, "blocks.%d.%s_%s.%s", l, qn[q], kn[a], w3[z]);
                    if ((*dst[z] = addp(m, nm, 2, d, d, RLAB_INIT_XAVIER, 0)) < 0)
                        goto toomany;
                }
            }
            for (int q = 0; q < 4; q++) {
                m->ln[l][q][0] = m->ln[l][q][1] = -1;
                if ((q == 1 && F == 0) || (q == 2 && Ns == 0) || !c->hetero)
                    continue;
                snprintf(nm, sizeof nm, "blocks.%d.ln_%s.gain", l, qn[q]);
                m->ln[l][q][0] = addp(m, nm, 1, d, 0, RLAB_INIT_ONE, 0);
                snprintf(nm, sizeof nm, "blocks.%d.ln_%s.bias", l, qn[q]);
                m->ln[l][q][1] = addp(m, nm, 1, d, 0, RLAB_INIT_ZERO, 0);
                if (m->ln[l][q][1] < 0)
                    goto toomany;
            }
            m->gc_w[l] = m->gs_w[l] = m->gt_w[l] = -1;
            if (!c->homo)
                continue;
            snprintf(nm, sizeof nm, "blocks.%d.pgu_cat", l);
            if (addlin(m, nm, (int64_t)P * d, (int64_t)M * d, &m->gc_w[l], &m->gc_b[l]))
                goto toomany;
            if (F) {
                snprintf(nm, sizeof nm, "blocks.%d.pgu_seq", l);
                if (addlin(m, nm, (int64_t)F * P * d, (int64_t)L * d, &m->gs_w[l], &m->gs_b[l]))
                    goto toomany;
            }
            if (Ns) {
                snprintf(nm, sizeof nm, "blocks.%d.pgu_task", l);
                if (addlin(m, nm, (int64_t)Ns * d, (int64_t)N * d, &m->gt_w[l], &m->gt_b[l]))
                    goto toomany;
            }
        }
    } else {
        m->D0 = M * d + m->nseq * d;
        if (c->kind == RK_MMOE) {
            for (int e = 0; e < c->experts; e++) {
                snprintf(nm, sizeof nm, "experts.%d.fc1", e);
                if (addlin(m, nm, m->D0, H, &m->ex_w1[e], &m->ex_b1[e]))
                    goto toomany;
                snprintf(nm, sizeof nm, "experts.%d.fc2", e);
                if (addlin(m, nm, H, H, &m->ex_w2[e], &m->ex_b2[e]))
                    goto toomany;
            }
            for (int t = 0; t < N; t++) {
                snprintf(nm, sizeof nm, "gates.%d", t);
                if (addlin(m, nm, m->D0, c->experts, &m->gate_w[t], &m->gate_b[t]))
                    goto toomany;
            }
            headin = H;
        } else if (c->kind == RK_DCNV2) {
            for (int l = 0; l < c->cross_layers; l++) {
                snprintf(nm, sizeof nm, "cross.%d", l);
                if (addlin(m, nm, m->D0, m->D0, &m->cr_w[l], &m->cr_b[l]))
                    goto toomany;
            }
            if (addlin(m, "deep.fc1", m->D0, H, &m->mlp_w1, &m->mlp_b1) ||
                addlin(m, "deep.fc2", H, H, &m->mlp_w2, &m->mlp_b2))
                goto toomany;
            headin = m->D0 + H;
        } else {
            if (addlin(m, "bottom.fc1", m->D0, H, &m->mlp_w1, &m->mlp_b1) ||
                addlin(m, "bottom.fc2", H, H, &m->mlp_w2, &m->mlp_b2))
                goto toomany;
            headin = H;
        }
    }
    for (int t = 0; t < N; t++) {
        snprintf(nm, sizeof nm, "heads.%d.fc1", t);
        if (addlin(m, nm, headin, H, &m->hd_w1[t], &m->hd_b1[t]))
            goto toomany;
        snprintf(nm, sizeof nm, "heads.%d.fc2", t);
        if (addlin(m, nm, H, 1, &m->hd_w2[t], &m->hd_b2[t]))
            goto toomany;
    }
    rlab_rng rng;
    rlab_rng_seed(&rng, (uint64_t)c->seed * 0x9E3779B97F4A7C15ull + 17u);
    m->P = rlab_params_new(m->specs, m->np, &rng, err);
    if (!m->P)
        goto fail;
    return m;
toomany:
    rlab_errf(err, RLAB_EINVAL, "model too large (more than %d parameter tensors)", RK_MAXP);
    goto fail;
nomem:
    rlab_errf(err, RLAB_ENOMEM, "out of memory");
fail:
    rk_model_free(m);
    return NULL;
}

/* ---- forward ------------------------------------------------------------------------- */
#define PT(i) (&m->P->t[(i)])

static rlab_tensor *lin(rlab_tape *tp, rlab_tensor *x, rk_model *m, int w, int b)
{
    return rlab_t_add(tp, rlab_t_matmul(tp, x, PT(w), 0, 0), PT(b));
}

static rlab_tensor *resh2(rlab_tape *tp, rlab_tensor *x, int64_t a, int64_t b)
{
    return rlab_t_reshape(tp, x, 2, (const int64_t[]){a, b});
}

static rlab_tensor *resh3(rlab_tape *tp, rlab_tensor *x, int64_t a, int64_t b, int64_t c)
{
    return rlab_t_reshape(tp, x, 3, (const int64_t[]){a, b, c});
}

/* Concatenate any number of tensors along axis (the op records at most 8 sources: groups of
 * 8 are joined first). */
static rlab_tensor *cat_many(rlab_tape *tp, rlab_tensor **xs, int n, int axis)
{
    if (n == 1)
        return xs[0];
    if (n <= 8)
        return rlab_t_concat(tp, xs, n, axis);
    int ng = (n + 7) / 8;
    rlab_tensor **g = rlab_tape_alloc(tp, (size_t)ng * sizeof *g);
    if (!g)
        return &tp->poison;
    for (int i = 0; i < ng; i++) {
        int a = i * 8, c = n - a < 8 ? n - a : 8;
        g[i] = c == 1 ? xs[a] : rlab_t_concat(tp, xs + a, c, axis);
    }
    return cat_many(tp, g, ng, axis);
}

/* relu(x W1 + b1) -> dropout -> W2 + b2 */
static rlab_tensor *mlp2(rlab_tape *tp, rlab_tensor *x, rk_model *m, int w1, int b1, int w2, int b2)
{
    rlab_tensor *h = rlab_t_relu(tp, lin(tp, x, m, w1, b1));
    h = rlab_t_dropout(tp, h, m->c.dropout);
    return lin(tp, h, m, w2, b2);
}

/* The batch's tokens: C [B, M, d]; S [B, L, d] and its key mask (NULL when no sequence). */
static rlab_tensor *tokens(rk_model *m, rlab_tape *tp, const rlab_tabular *tab, const int64_t *rows,
                           int B, rlab_tensor **S, uint8_t **svalid)
{
    const int d = m->d, Lm = m->c.max_seq;
    int nt = (m->ncat ? 1 : 0) + m->nmulti + (m->nnum ? 1 : 0);
    rlab_tensor **parts = rlab_tape_alloc(tp, (size_t)(nt ? nt : 1) * sizeof *parts);
    if (!parts)
        return &tp->poison;
    int k = 0;
    if (m->ncat) {
        const int nc = m->ncat;
        int32_t *ids = rlab_tape_alloc(tp, (size_t)B * (size_t)nc * sizeof *ids);
        if (!ids)
            return &tp->poison;
        for (int b = 0; b < B; b++)
            for (int c = 0; c < nc; c++)
                ids[b * nc + c] =
                    (int32_t)(m->cat_off[c] + tab->fields[m->cat_field[c]].ids[rows[b]]);
        parts[k++] = rlab_t_gather(tp, PT(m->p_cat), ids, (int64_t)B * nc, -1, 3,
                                   (const int64_t[]){B, nc, d});
    }
    for (int c = 0; c < m->nmulti; c++) {
        const rlab_tab_field *fl = &tab->fields[m->multi_field[c]];
        int kmax = 1;
        for (int b = 0; b < B; b++) {
            int64_t len = fl->off[rows[b] + 1] - fl->off[rows[b]];
            if (len > kmax)
                kmax = (int)(len > 64 ? 64 : len);
        }
        int32_t *ids = rlab_tape_alloc(tp, (size_t)B * (size_t)kmax * sizeof *ids);
        float *inv = rlab_tape_alloc(tp, (size_t)B * (size_t)d * sizeof *inv);
        if (!ids || !inv)
            return &tp->poison;
        for (int b = 0; b < B; b++) {
            int64_t o = fl->off[rows[b]], len = fl->off[rows[b] + 1] - o;
            if (len > kmax)
                len = kmax;
            for (int j = 0; j < kmax; j++)
                ids[b * kmax + j] = j < len ? fl->ids[o + j] : -1;
            for (int j = 0; j < d; j++)
                inv[b * d + j] = len ? 1.0f / (float)len : 0.0f;
        }
        rlab_tensor *g = rlab_t_gather(tp, PT(m->multi_p[c]), ids, (int64_t)B * kmax, -1, 3,
                                       (const int64_t[]){B, kmax, d});
        rlab_tensor *pooled =
            rlab_t_mul(tp, rlab_t_sum(tp, g, 1), rlab_t_input(tp, inv, 2, (const int64_t[]){B, d}));
        parts[k++] = resh3(tp, pooled, B, 1, d);
    }
    if (m->nnum) {
        const int nn = m->nnum;
        float *x = rlab_tape_alloc(tp, (size_t)B * (size_t)nn * (size_t)d * sizeof *x);
        if (!x)
            return &tp->poison;
        for (int b = 0; b < B; b++)
            for (int j = 0; j < nn; j++) {
                float v = tab->num[rows[b] * tab->nnum + j];
                v = isnan(v) ? 0.0f : (slog(v) - m->num_mean[j]) / m->num_std[j];
                for (int z = 0; z < d; z++)
                    x[((size_t)b * (size_t)nn + (size_t)j) * (size_t)d + (size_t)z] = v;
            }
        rlab_tensor *xin = rlab_t_input(tp, x, 2, (const int64_t[]){B, (int64_t)nn * d});
        rlab_tensor *w = resh2(tp, PT(m->p_num_w), 1, (int64_t)nn * d);
        rlab_tensor *bb = resh2(tp, PT(m->p_num_b), 1, (int64_t)nn * d);
        parts[k++] = resh3(tp, rlab_t_add(tp, rlab_t_mul(tp, xin, w), bb), B, nn, d);
    }
    rlab_tensor *C = cat_many(tp, parts, k, 1);
    *S = NULL;
    *svalid = NULL;
    if (m->nseq) {
        int32_t *ids = rlab_tape_alloc(tp, (size_t)B * (size_t)m->L * sizeof *ids);
        uint8_t *valid = rlab_tape_alloc(tp, (size_t)B * (size_t)m->L);
        rlab_tensor **sp = rlab_tape_alloc(tp, (size_t)m->nseq * sizeof *sp);
        if (!ids || !valid || !sp)
            return &tp->poison;
        for (int s = 0; s < m->nseq; s++) {
            const rlab_tab_field *fl = &tab->fields[m->seq_field[s]];
            int32_t *id_s = ids + (size_t)s * (size_t)B * (size_t)Lm;
            for (int b = 0; b < B; b++) {
                int64_t o = fl->off[rows[b]], len = fl->off[rows[b] + 1] - o;
                int64_t from = len > Lm ? len - Lm : 0; /* the last Lm, oldest first */
                for (int j = 0; j < Lm; j++) {
                    int64_t at = from + j;
                    id_s[b * Lm + j] = at < len ? (int32_t)(m->seq_off[s] + fl->ids[o + at]) : -1;
                }
            }
            sp[s] = rlab_t_gather(tp, PT(m->seq_p[s]), id_s, (int64_t)B * Lm, -1, 3,
                                  (const int64_t[]){B, Lm, d});
        }
        /* key mask in [B, L] order: sequence s occupies columns s*Lm .. s*Lm+Lm-1 */
        for (int b = 0; b < B; b++)
            for (int s = 0; s < m->nseq; s++)
                for (int j = 0; j < Lm; j++)
                    valid[(size_t)b * (size_t)m->L + (size_t)(s * Lm + j)] =
                        ids[(size_t)s * (size_t)B * (size_t)Lm + (size_t)(b * Lm + j)] >= 0;
        *S = cat_many(tp, sp, m->nseq, 1);
        *svalid = valid;
    }
    return C;
}

static rlab_tensor *ca(rk_model *m, rlab_tape *tp, int l, int a, rlab_tensor *q, rlab_tensor *kv,
                       const uint8_t *kvalid)
{
    const ca_ids *c = &m->ca[l][a];
    return rlab_t_attention(
        tp, rlab_t_matmul(tp, q, PT(c->q), 0, 0), rlab_t_matmul(tp, kv, PT(c->k), 0, 0),
        rlab_t_matmul(tp, kv, PT(c->v), 0, 0), m->c.heads, kvalid, NULL, 0, 0.0f);
}

static rlab_tensor *ln(rk_model *m, rlab_tape *tp, int l, int q, rlab_tensor *x)
{
    return rlab_t_layernorm(tp, x, PT(m->ln[l][q][0]), PT(m->ln[l][q][1]), 1e-5f);
}

/* Broadcast table [n, d] to [B, n, d]. */
static rlab_tensor *bcast(rlab_tape *tp, rlab_tensor *table, int B, int n, int d)
{
    int32_t *ids = rlab_tape_alloc(tp, (size_t)B * (size_t)n * sizeof *ids);
    if (!ids)
        return &tp->poison;
    for (int b = 0; b < B; b++)
        for (int i = 0; i < n; i++)
            ids[b * n + i] = i;
    return rlab_t_gather(tp, table, ids, (int64_t)B * n, -1, 3, (const int64_t[]){B, n, d});
}

static rlab_tensor *infnet(rk_model *m, rlab_tape *tp, rlab_tensor *C, rlab_tensor *S,
                           const uint8_t *sv, int B)
{
    const int d = m->d, M = m->M, L = m->L, N = m->ntasks, P = m->c.proxies, Ns = m->c.shared_tasks,
              F = m->nseq;
    rlab_tensor *Ct =
        resh3(tp, lin(tp, resh2(tp, C, B, (int64_t)M * d), m, m->p_cp_w, m->p_cp_b), B, P, d);
    rlab_tensor *St = NULL;
    if (F) {
        rlab_tensor **sp = rlab_tape_alloc(tp, (size_t)F * sizeof *sp);
        if (!sp)
            return &tp->poison;
        const int Lm = m->c.max_seq;
        for (int s = 0; s < F; s++) {
            rlab_tensor *seq = F == 1 ? S : rlab_t_slice(tp, S, 1, (int64_t)s * Lm, Lm);
            rlab_tensor *pooled = rlab_t_sum(tp, seq, 1); /* padding rows are zero */
            sp[s] = resh3(tp, rlab_t_matmul(tp, pooled, PT(m->p_sp_w[s]), 0, 0), B, P, d);
        }
        St = cat_many(tp, sp, F, 1);
    }
    rlab_tensor *T = bcast(tp, PT(m->p_task), B, N, d);
    rlab_tensor *Tt = Ns ? bcast(tp, PT(m->p_shared), B, Ns, d) : NULL;
    for (int l = 0; l < m->c.layers; l++) {
        rlab_tensor *Ct2 = Ct, *St2 = St, *Tt2 = Tt, *Th = T;
        if (m->c.hetero) {
            rlab_tensor *x = rlab_t_add(tp, Ct, ca(m, tp, l, 1, Ct, T, NULL));
            if (F)
                x = rlab_t_add(tp, x, ca(m, tp, l, 0, Ct, S, sv));
            Ct2 = ln(m, tp, l, 0, x);
            if (F) {
                x = rlab_t_add(tp, St, ca(m, tp, l, 2, St, C, NULL));
                x = rlab_t_add(tp, x, ca(m, tp, l, 3, St, T, NULL));
                St2 = ln(m, tp, l, 1, x);
            }
            if (Ns) {
                x = rlab_t_add(tp, Tt, ca(m, tp, l, 4, Tt, C, NULL));
                if (F)
                    x = rlab_t_add(tp, x, ca(m, tp, l, 5, Tt, S, sv));
                Tt2 = ln(m, tp, l, 2, x);
            }
            /* the task tokens are queries only (the paper's T^' = CA(T, C) + CA(T, S), no
             * residual): what a head reads is what its token gathered from the features */
            x = ca(m, tp, l, 6, T, C, NULL);
            if (F)
                x = rlab_t_add(tp, x, ca(m, tp, l, 7, T, S, sv));
            Th = ln(m, tp, l, 3, x);
        }
        if (m->c.homo) {
            rlab_tensor *g = rlab_t_sigmoid(
                tp, lin(tp, resh2(tp, Ct2, B, (int64_t)P * d), m, m->gc_w[l], m->gc_b[l]));
            C = rlab_t_mul(tp, C, resh3(tp, g, B, M, d));
            if (F) {
                g = rlab_t_sigmoid(
                    tp, lin(tp, resh2(tp, St2, B, (int64_t)F * P * d), m, m->gs_w[l], m->gs_b[l]));
                S = rlab_t_mul(tp, S, resh3(tp, g, B, L, d));
            }
            if (Ns) {
                g = rlab_t_sigmoid(
                    tp, lin(tp, resh2(tp, Tt2, B, (int64_t)Ns * d), m, m->gt_w[l], m->gt_b[l]));
                Th = rlab_t_mul(tp, Th, resh3(tp, g, B, N, d));
            }
        }
        Ct = Ct2, St = St2, Tt = Tt2, T = Th;
    }
    rlab_tensor **outs = rlab_tape_alloc(tp, (size_t)N * sizeof *outs);
    if (!outs)
        return &tp->poison;
    for (int t = 0; t < N; t++) {
        rlab_tensor *ti = resh2(tp, N == 1 ? T : rlab_t_slice(tp, T, 1, t, 1), B, d);
        outs[t] = mlp2(tp, ti, m, m->hd_w1[t], m->hd_b1[t], m->hd_w2[t], m->hd_b2[t]);
    }
    return cat_many(tp, outs, N, 1);
}

/* x0 = [flat C, mean-pooled sequences] [B, D0] for the MLP kinds */
static rlab_tensor *flat_input(rk_model *m, rlab_tape *tp, rlab_tensor *C, rlab_tensor *S,
                               const uint8_t *sv, int B)
{
    const int d = m->d, Lm = m->c.max_seq;
    rlab_tensor *x = resh2(tp, C, B, (int64_t)m->M * d);
    if (!m->nseq)
        return x;
    rlab_tensor **parts = rlab_tape_alloc(tp, (size_t)(m->nseq + 1) * sizeof *parts);
    float *inv = rlab_tape_alloc(tp, (size_t)m->nseq * (size_t)B * (size_t)d * sizeof *inv);
    if (!parts || !inv)
        return &tp->poison;
    parts[0] = x;
    for (int s = 0; s < m->nseq; s++) {
        float *iv = inv + (size_t)s * (size_t)B * (size_t)d;
        for (int b = 0; b < B; b++) {
            int cnt = 0;
            for (int j = 0; j < Lm; j++)
                cnt += sv[(size_t)b * (size_t)m->L + (size_t)(s * Lm + j)];
            for (int z = 0; z < d; z++)
                iv[b * d + z] = cnt ? 1.0f / (float)cnt : 0.0f;
        }
        rlab_tensor *seq = m->nseq == 1 ? S : rlab_t_slice(tp, S, 1, (int64_t)s * Lm, Lm);
        parts[s + 1] = rlab_t_mul(tp, rlab_t_sum(tp, seq, 1),
                                  rlab_t_input(tp, iv, 2, (const int64_t[]){B, d}));
    }
    return cat_many(tp, parts, m->nseq + 1, 1);
}

static rlab_tensor *heads(rk_model *m, rlab_tape *tp, rlab_tensor *const *xs)
{
    const int N = m->ntasks;
    rlab_tensor **outs = rlab_tape_alloc(tp, (size_t)N * sizeof *outs);
    if (!outs)
        return &tp->poison;
    for (int t = 0; t < N; t++)
        outs[t] = mlp2(tp, xs[t], m, m->hd_w1[t], m->hd_b1[t], m->hd_w2[t], m->hd_b2[t]);
    return cat_many(tp, outs, N, 1);
}

rlab_tensor *rk_forward(rk_model *m, rlab_tape *tp, const rlab_tabular *tab, const int64_t *rows,
                        int B)
{
    rlab_tensor *S = NULL;
    uint8_t *sv = NULL;
    rlab_tensor *C = tokens(m, tp, tab, rows, B, &S, &sv);
    if (m->c.kind == RK_INFNET)
        return infnet(m, tp, C, S, sv, B);
    const int N = m->ntasks, H = m->c.hidden;
    rlab_tensor *x0 = flat_input(m, tp, C, S, sv, B);
    rlab_tensor *xs[RK_MAX_TASKS];
    if (m->c.kind == RK_MMOE) {
        const int E = m->c.experts;
        rlab_tensor **ex = rlab_tape_alloc(tp, (size_t)E * sizeof *ex);
        rlab_tensor *R = rlab_t_new(tp, 2, (const int64_t[]){E, (int64_t)E * H}, 0);
        if (!ex || R->data == NULL || (R->flags & RLAB_T_POISON))
            return &tp->poison;
        for (int e = 0; e < E; e++) {
            ex[e] = rlab_t_relu(
                tp, mlp2(tp, x0, m, m->ex_w1[e], m->ex_b1[e], m->ex_w2[e], m->ex_b2[e]));
            for (int z = 0; z < H; z++)
                R->data[(size_t)e * (size_t)E * (size_t)H + (size_t)e * (size_t)H + (size_t)z] =
                    1.0f;
        }
        rlab_tensor *all = cat_many(tp, ex, E, 1); /* [B, E*H] */
        for (int t = 0; t < N; t++) {
            rlab_tensor *g = rlab_t_softmax(tp, lin(tp, x0, m, m->gate_w[t], m->gate_b[t]));
            rlab_tensor *gx = rlab_t_matmul(tp, g, R, 0, 0); /* each gate repeated H times */
            xs[t] = rlab_t_sum(tp, resh3(tp, rlab_t_mul(tp, all, gx), B, E, H), 1);
        }
    } else if (m->c.kind == RK_DCNV2) {
        rlab_tensor *x = x0;
        for (int l = 0; l < m->c.cross_layers; l++)
            x = rlab_t_add(tp, rlab_t_mul(tp, x0, lin(tp, x, m, m->cr_w[l], m->cr_b[l])), x);
        rlab_tensor *deep =
            rlab_t_relu(tp, mlp2(tp, x0, m, m->mlp_w1, m->mlp_b1, m->mlp_w2, m->mlp_b2));
        rlab_tensor *cat = rlab_t_concat(tp, (rlab_tensor *const[]){x, deep}, 2, 1);
        for (int t = 0; t < N; t++)
            xs[t] = cat;
    } else {
        rlab_tensor *bot =
            rlab_t_relu(tp, mlp2(tp, x0, m, m->mlp_w1, m->mlp_b1, m->mlp_w2, m->mlp_b2));
        for (int t = 0; t < N; t++)
            xs[t] = bot;
    }
    (void)H;
    return heads(m, tp, xs);
}

/* ---- prediction and metrics ------------------------------------------------------------ */
static size_t arena_bytes(const rk_model *m, int B)
{
    /* generous: activations of a batch are a few hundred floats per token and sample */
    size_t per = (size_t)(m->M + m->L + 16) * (size_t)m->d * 64u + (size_t)m->c.hidden * 64u +
                 (size_t)m->D0 * 16u + (size_t)(m->c.experts * m->c.experts * m->c.hidden);
    return (size_t)B * per * sizeof(float) + (64u << 20);
}

int rk_predict(rk_model *m, const rlab_tabular *tab, const int64_t *rows, int64_t n, float *out,
               rlab_err *err)
{
    const int BS = 512, N = m->ntasks;
    rlab_tape *tp = rlab_tape_new(arena_bytes(m, BS), 1u << 16, err);
    if (!tp)
        return err ? err->code : RLAB_ENOMEM;
    rlab_tape_set_training(tp, 0);
    int rc = RLAB_OK;
    for (int64_t a = 0; a < n; a += BS) {
        int B = (int)(n - a < BS ? n - a : BS);
        rlab_tape_reset(tp);
        rlab_tensor *lg = rk_forward(m, tp, tab, rows + a, B);
        if ((rc = rlab_tape_error(tp)) != RLAB_OK) {
            rlab_errf(err, rc, "forward: %s", rlab_tape_errmsg(tp));
            break;
        }
        for (int64_t i = 0; i < (int64_t)B * N; i++)
            out[a * N + i] = 1.0f / (1.0f + expf(-lg->data[i]));
    }
    rlab_tape_free(tp);
    return rc;
}

double rk_mean_auc(const rk_metrics *x)
{
    double s = 0;
    int k = 0;
    for (int t = 0; t < x->ntasks; t++)
        if (!isnan(x->auc[t]))
            s += x->auc[t], k++;
    return k ? s / k : (double)NAN;
}

int rk_evaluate(rk_model *m, const rlab_tabular *tab, const int64_t *rows, int64_t n,
                rk_metrics *out, rlab_err *err)
{
    memset(out, 0, sizeof *out);
    const int N = m->ntasks;
    out->ntasks = N;
    out->n = n;
    for (int t = 0; t < N; t++) {
        snprintf(out->names[t], 32, "%s", m->task_names[t]);
        out->auc[t] = out->gauc[t] = out->logloss[t] = NAN;
    }
    if (n < 1)
        return RLAB_OK;
    float *p = rlab_malloc((size_t)n * (size_t)N * sizeof *p);
    float *pt = rlab_malloc((size_t)n * sizeof *pt);
    uint8_t *y = rlab_malloc((size_t)n);
    int32_t *g = tab->group ? rlab_malloc((size_t)n * sizeof *g) : NULL;
    int rc = RLAB_OK;
    if (!p || !pt || !y || (tab->group && !g)) {
        rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
        goto done;
    }
    if ((rc = rk_predict(m, tab, rows, n, p, err)) != RLAB_OK)
        goto done;
    for (int t = 0; t < N; t++) {
        for (int64_t i = 0; i < n; i++) {
            pt[i] = p[i * N + t];
            y[i] = tab->labels[rows[i] * tab->nlabels + m->task_label[t]] > 0.5f;
            if (g)
                g[i] = tab->group[rows[i]];
        }
        rlab_err e2 = {0};
        double v;
        if (rlab_eval_auc(pt, y, n, &v, &e2) == RLAB_OK)
            out->auc[t] = v;
        if (g && rlab_eval_gauc(pt, y, g, n, &v, NULL, &e2) == RLAB_OK)
            out->gauc[t] = v;
        if (rlab_eval_logloss(pt, y, n, 0.0, &v, &e2) == RLAB_OK)
            out->logloss[t] = v;
    }
done:
    rlab_free(p);
    rlab_free(pt);
    rlab_free(y);
    rlab_free(g);
    return rc;
}

/* ---- training ------------------------------------------------------------------------- */
/* One training pass at a time: the step functions the host's loop (kinds.c) and rk_fit
 * both drive, so there is one training code path. */
struct rk_trainer {
    rk_model *m;
    const rlab_tabular *tab;
    int64_t n, *perm;
    int BS;
    float *lab;
    rlab_opt *opt;
    rlab_tape *tp;
    rlab_rng rng;
};

void rk_trainer_free(rk_trainer *tr)
{
    if (!tr)
        return;
    rlab_opt_free(tr->opt);
    rlab_tape_free(tr->tp);
    rlab_free(tr->perm);
    rlab_free(tr->lab);
    rlab_free(tr);
}

rk_trainer *rk_trainer_new(rk_model *m, const rlab_tabular *tab, const int64_t *train,
                           int64_t ntrain, rlab_err *err)
{
    const rk_cfg *c = &m->c;
    if (ntrain < 1)
        return rlab_errf(err, RLAB_EINVAL, "no training samples"), NULL;
    rk_trainer *tr = rlab_calloc(1, sizeof *tr);
    if (!tr)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory"), NULL;
    tr->m = m, tr->tab = tab, tr->n = ntrain, tr->BS = c->batch;
    rlab_opt_config oc = rlab_opt_defaults(RLAB_OPT_ADAM);
    oc.lr = c->lr;
    oc.weight_decay = c->l2;
    tr->opt = rlab_opt_new(m->P, &oc, err);
    tr->tp = tr->opt ? rlab_tape_new(arena_bytes(m, tr->BS), 1u << 16, err) : NULL;
    tr->perm = rlab_malloc((size_t)ntrain * sizeof *tr->perm);
    tr->lab = rlab_malloc((size_t)tr->BS * (size_t)m->ntasks * sizeof *tr->lab);
    if (!tr->opt || !tr->tp || !tr->perm || !tr->lab) {
        if (tr->opt && tr->tp)
            rlab_errf(err, RLAB_ENOMEM, "out of memory");
        rk_trainer_free(tr);
        return NULL;
    }
    /* the training part in its given order, then shuffled in place each epoch */
    memcpy(tr->perm, train, (size_t)ntrain * sizeof *tr->perm);
    rlab_tape_seed(tr->tp, (uint64_t)c->seed, 0);
    rlab_rng_seed(&tr->rng, (uint64_t)c->seed ^ 0x5851F42D4C957F2Dull);
    return tr;
}

int64_t rk_trainer_epoch(rk_trainer *tr)
{
    for (int64_t i = tr->n - 1; i > 0; i--) {
        int64_t j = (int64_t)rlab_rng_below(&tr->rng, (uint64_t)i + 1), x = tr->perm[i];
        tr->perm[i] = tr->perm[j], tr->perm[j] = x;
    }
    rlab_tape_set_training(tr->tp, 1);
    return (tr->n + tr->BS - 1) / tr->BS;
}

int rk_trainer_step(rk_trainer *tr, int64_t i, double *loss, double *weight, rlab_err *err)
{
    rk_model *m = tr->m;
    const rlab_tabular *tab = tr->tab;
    const int N = m->ntasks;
    int64_t a = i * tr->BS;
    int B = (int)(tr->n - a < tr->BS ? tr->n - a : tr->BS);
    rlab_tape *tp = tr->tp;
    rlab_tape_reset(tp);
    rlab_params_zero_grad(m->P);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < N; t++)
            tr->lab[b * N + t] = tab->labels[tr->perm[a + b] * tab->nlabels + m->task_label[t]];
    rlab_tensor *lg = rk_forward(m, tp, tab, tr->perm + a, B);
    rlab_tensor *l = rlab_t_bce_logits(tp, lg, tr->lab, NULL);
    int rc;
    if ((rc = rlab_tape_error(tp)) != RLAB_OK || (rc = rlab_tape_backward(tp, l)) != RLAB_OK)
        return rlab_errf(err, rc, "%s", rlab_tape_errmsg(tp));
    *loss = (double)l->data[0];
    *weight = (double)B;
    if (!isfinite(*loss))
        return RLAB_OK; /* the caller stops on it */
    if ((rc = rlab_opt_step(tr->opt, m->P)) != RLAB_OK)
        return rlab_errf(err, rc, "optimiser step failed");
    return RLAB_OK;
}

int rk_fit(rk_model *m, const rlab_tabular *tab, const int64_t *train, int64_t ntrain,
           const int64_t *valid, int64_t nvalid, const rk_hooks *hooks, rk_fit_result *res,
           rlab_err *err)
{
    memset(res, 0, sizeof *res);
    res->best_valid = NAN;
    const rk_cfg *c = &m->c;
    rk_trainer *tr = rk_trainer_new(m, tab, train, ntrain, err);
    float *best = tr ? rlab_malloc(m->P->count * sizeof *best) : NULL;
    int rc = RLAB_OK;
    if (!tr || !best) {
        rc = tr ? rlab_errf(err, RLAB_ENOMEM, "out of memory") : err->code;
        goto done;
    }
    memcpy(best, m->P->data, m->P->count * sizeof *best);
    int since = 0;
    double train_s = 0;
    int64_t seen = 0;
    for (int e = 1; e <= c->epochs; e++) {
        double te = rlab_now();
        int64_t steps = rk_trainer_epoch(tr);
        double lsum = 0, lw = 0;
        for (int64_t i = 0; i < steps; i++) {
            if (hooks && hooks->cancelled && hooks->cancelled(hooks->ud)) {
                rc = rlab_errf(err, RLAB_ECANCELED, "cancelled at epoch %d", e);
                goto restore;
            }
            double lv = 0, w = 0;
            if ((rc = rk_trainer_step(tr, i, &lv, &w, err)) != RLAB_OK)
                goto done;
            if (!isfinite(lv)) {
                rc = rlab_errf(err, RLAB_ESTATE, "loss is %g at epoch %d: lower lr", lv, e);
                goto done;
            }
            lsum += lv * w, lw += w;
        }
        seen += ntrain;
        train_s += rlab_now() - te;
        res->epochs_run = e;
        rk_metrics vm;
        memset(&vm, 0, sizeof vm);
        double score = NAN;
        if (nvalid > 0) {
            if ((rc = rk_evaluate(m, tab, valid, nvalid, &vm, err)) != RLAB_OK)
                goto done;
            score = rk_mean_auc(&vm);
        }
        if (hooks && hooks->epoch)
            hooks->epoch(hooks->ud, e, c->epochs, lsum / (lw > 0 ? lw : 1),
                         nvalid > 0 ? &vm : NULL);
        /* no validation (or undefined AUC): the last epoch is kept */
        if (isnan(score) || isnan(res->best_valid) || score > res->best_valid) {
            res->best_valid = score;
            res->best_epoch = e;
            memcpy(best, m->P->data, m->P->count * sizeof *best);
            since = 0;
        } else if (c->patience > 0 && ++since >= c->patience) {
            break;
        }
    }
restore:
    memcpy(m->P->data, best, m->P->count * sizeof *best);
    res->seconds = train_s;
    res->samples_per_s = train_s > 0 ? (double)seen / train_s : 0;
done:
    rk_trainer_free(tr);
    rlab_free(best);
    return rc;
}
