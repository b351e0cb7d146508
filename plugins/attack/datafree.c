/*
 * plugins/attack/datafree.c: Yue et al.'s data-free autoregressive generation
 * (RecSys'21; their trainer/distiller.py generate_autoregressive_data, models.md 6.1):
 *
 *   for each sequence: x_1 ~ uniform over the catalogue
 *   for t = 1 .. len - 1:  list_t = blackbox(x_1..x_t)            (one query)
 *                          x_{t+1} ~ uniform over list_t          (or list_t[0]: sample=top1)
 *                          keep list_t as the distillation target of the prefix
 *
 * The budget is the number of sequences; a query limit in the black box cuts generation short
 * (the attacker keeps what it has). Sequences are generated in batches so one black-box call
 * answers every prefix of a step; the random draws come from one generator in sequence order,
 * so a seed (with the same batch size) reproduces the sequences exactly.
 */
#include "attack.h"

#include <stdio.h>
#include <string.h>

attack_gen_opts attack_gen_defaults(void)
{
    return (attack_gen_opts){.n_seqs = 100, .len = 20, .batch = 64, .seed = 1};
}

void attack_synth_clear(attack_synth *s)
{
    if (!s)
        return;
    rlab_free(s->off);
    rlab_free(s->items);
    rlab_free(s->lists);
    memset(s, 0, sizeof *s);
}

/* Grow *p (elements of size sz) to hold at least need elements. */
static int grow(void **p, int64_t *cap, int64_t need, size_t sz)
{
    if (need <= *cap)
        return RLAB_OK;
    int64_t c = *cap ? *cap : 256;
    while (c < need)
        c *= 2;
    void *q = rlab_realloc(*p, (size_t)c * sz);
    if (!q)
        return RLAB_ENOMEM;
    *p = q;
    *cap = c;
    return RLAB_OK;
}

int attack_gen_datafree(attack_bb *bb, const attack_gen_opts *o, attack_progress_fn progress,
                        void *ud, attack_synth *out, rlab_err *err)
{
    memset(out, 0, sizeof *out);
    if (o->n_seqs < 1 || o->len < 2 || o->batch < 1)
        return rlab_errf(err, RLAB_EINVAL, "data-free: need budget >= 1, len >= 2, batch >= 1");
    const int32_t N = attack_bb_n_items(bb);
    const int w = attack_bb_width(bb), L = o->len, B = o->batch;
    rlab_rng rng;
    rlab_rng_seed(&rng, o->seed);

    int32_t *seq = rlab_malloc((size_t)B * (size_t)L * sizeof *seq); /* [B][L] */
    int32_t *len = rlab_malloc((size_t)B * sizeof *len);
    uint8_t *alive = rlab_malloc((size_t)B);
    int32_t *ans = rlab_malloc((size_t)B * (size_t)w * sizeof *ans); /* [B][w] */
    int32_t *lst =
        o->keep_lists
            ? rlab_malloc((size_t)B * (size_t)(L - 1) * (size_t)w * sizeof *lst) /* [B][L-1][w] */
            : NULL;
    const int32_t **qs = rlab_malloc((size_t)B * sizeof *qs);
    int32_t *ql = rlab_malloc((size_t)B * sizeof *ql);
    int *qb = rlab_malloc((size_t)B * sizeof *qb);
    int64_t cap_off = 0, cap_items = 0, cap_lists = 0;
    int rc = RLAB_OK;
    if (!seq || !len || !alive || !ans || !qs || !ql || !qb || (o->keep_lists && !lst) ||
        grow((void **)&out->off, &cap_off, 1, sizeof *out->off))
        rc = rlab_errf(err, RLAB_ENOMEM, "data-free: out of memory");
    if (rc == RLAB_OK) {
        out->off[0] = 0;
        out->w = o->keep_lists ? w : 0;
    }
    int limited = 0;
    for (int64_t s0 = 0; s0 < o->n_seqs && rc == RLAB_OK && !limited; s0 += B) {
        int nb = o->n_seqs - s0 < B ? (int)(o->n_seqs - s0) : B;
        for (int b = 0; b < nb; b++) { /* a uniformly random first item */
            seq[(size_t)b * (size_t)L] = (int32_t)rlab_rng_below(&rng, (uint64_t)N);
            len[b] = 1;
            alive[b] = 1;
        }
        for (int t = 1; t < L && rc == RLAB_OK; t++) {
            int na = 0;
            for (int b = 0; b < nb; b++)
                if (alive[b]) {
                    qs[na] = seq + (size_t)b * (size_t)L;
                    ql[na] = len[b];
                    qb[na++] = b;
                }
            if (na == 0)
                break;
            if ((int64_t)na > attack_bb_remaining(bb)) { /* the defence's limit: stop here */
                limited = 1;
                break;
            }
            rc = attack_bb_query(bb, qs, ql, na, ans, err);
            for (int a = 0; a < na && rc == RLAB_OK; a++) {
                int b = qb[a];
                const int32_t *row = ans + (size_t)a * (size_t)w;
                int c = 0;
                while (c < w && row[c] >= 0)
                    c++;
                if (lst)
                    memcpy(lst + ((size_t)b * (size_t)(L - 1) + (size_t)(t - 1)) * (size_t)w, row,
                           (size_t)w * sizeof *row);
                if (c == 0) { /* nothing left to recommend: the sequence ends */
                    alive[b] = 0;
                    continue;
                }
                int pick =
                    o->sample == ATTACK_SAMPLE_TOP1 ? 0 : (int)rlab_rng_below(&rng, (uint64_t)c);
                seq[(size_t)b * (size_t)L + (size_t)t] = row[pick];
                len[b] = t + 1;
            }
        }
        /* append the batch (sequences of at least two items: one answered prefix) */
        for (int b = 0; b < nb && rc == RLAB_OK; b++) {
            if (len[b] < 2)
                continue;
            int64_t n = out->n, at = out->off[n];
            if (grow((void **)&out->off, &cap_off, n + 2, sizeof *out->off) ||
                grow((void **)&out->items, &cap_items, at + len[b], sizeof *out->items) ||
                (lst && grow((void **)&out->lists, &cap_lists, (at - n + len[b] - 1) * w,
                             sizeof *out->lists))) {
                rc = rlab_errf(err, RLAB_ENOMEM, "data-free: out of memory");
                break;
            }
            memcpy(out->items + at, seq + (size_t)b * (size_t)L, (size_t)len[b] * sizeof(int32_t));
            if (lst)
                memcpy(out->lists + (size_t)(at - n) * (size_t)w,
                       lst + (size_t)b * (size_t)(L - 1) * (size_t)w,
                       (size_t)(len[b] - 1) * (size_t)w * sizeof(int32_t));
            out->off[n + 1] = at + len[b];
            out->n = n + 1;
        }
        if (rc == RLAB_OK && progress && progress(ud, s0 + nb, o->n_seqs))
            rc = rlab_errf(err, RLAB_ECANCELED, "data-free: cancelled");
    }
    rlab_free(seq);
    rlab_free(len);
    rlab_free(alive);
    rlab_free(ans);
    rlab_free(lst);
    rlab_free(qs);
    rlab_free(ql);
    rlab_free(qb);
    if (rc != RLAB_OK)
        attack_synth_clear(out);
    return rc;
}

rlab_dataset *attack_synth_dataset(const attack_synth *s, const char *name, const rlab_vocab *items,
                                   rlab_err *err)
{
    rlab_dataset *ds = rlab_dataset_new(name, err);
    if (!ds)
        return NULL;
    snprintf(ds->format, sizeof ds->format, "synthetic");
    snprintf(ds->source, sizeof ds->source, "attack: %lld generated sequences", (long long)s->n);
    int rc = RLAB_OK;
    /* the victim's catalogue, in its order: item i here is item i of the victim */
    for (int32_t i = 0; i < items->n && rc == RLAB_OK; i++) {
        const char *nm = items->names[i];
        if (rlab_vocab_add(&ds->items, nm, strlen(nm)) != i)
            rc = RLAB_ENOMEM;
    }
    if (rc == RLAB_OK && rlab_inter_reserve(&ds->inter, (size_t)(s->n ? s->off[s->n] : 0)))
        rc = RLAB_ENOMEM;
    for (int64_t u = 0; u < s->n && rc == RLAB_OK; u++) {
        char un[32];
        int n = snprintf(un, sizeof un, "syn%lld", (long long)u);
        if (rlab_vocab_add(&ds->users, un, (size_t)n) != (int32_t)u) {
            rc = RLAB_ENOMEM;
            break;
        }
        for (int64_t j = s->off[u]; j < s->off[u + 1] && rc == RLAB_OK; j++)
            rc = rlab_inter_push(&ds->inter, (int32_t)u, s->items[j], j - s->off[u], 1.0f, NULL);
    }
    if (rc != RLAB_OK) {
        rlab_dataset_free(ds);
        rlab_errf(err, RLAB_ENOMEM, "synthetic dataset: out of memory");
        return NULL;
    }
    ds->inter.flags = RLAB_INTER_SYNTH_TS;
    if (s->w > 0 && s->lists && s->n > 0) {
        const int64_t nr = s->off[s->n], w = s->w;
        ds->lists.items = rlab_malloc((size_t)nr * (size_t)w * sizeof *ds->lists.items);
        if (!ds->lists.items) {
            rlab_dataset_free(ds);
            rlab_errf(err, RLAB_ENOMEM, "synthetic dataset: out of memory (lists)");
            return NULL;
        }
        ds->lists.w = (int)w;
        for (int64_t u = 0; u < s->n; u++)
            for (int64_t j = s->off[u]; j < s->off[u + 1]; j++) {
                int32_t *dst = ds->lists.items + (size_t)j * (size_t)w;
                if (j + 1 < s->off[u + 1]) /* the prefix ending at row j: list j - u */
                    memcpy(dst, s->lists + (size_t)(j - u) * (size_t)w, (size_t)w * sizeof *dst);
                else
                    for (int64_t c = 0; c < w; c++)
                        dst[c] = -1;
            }
    }
    return ds;
}
