/*
 * A tiny CSR builder for the data_world tests, so they do not depend on split.c: rows in
 * the given order (the caller passes per-user lists already in time order).
 */
#ifndef RLAB_TEST_LOCAL_SEQS_H
#define RLAB_TEST_LOCAL_SEQS_H

#include "data/split.h"

#include <stdlib.h>
#include <string.h>

/* lens[n_users], items concatenated per user. Free with local_seqs_free. */
static inline rlab_seqs local_seqs(int32_t n_users, const int32_t *lens, const int32_t *items)
{
    rlab_seqs s;
    s.n_users = n_users;
    s.off = calloc((size_t)n_users + 1, sizeof *s.off);
    for (int32_t u = 0; u < n_users; u++)
        s.off[u + 1] = s.off[u] + lens[u];
    size_t nnz = (size_t)s.off[n_users];
    s.items = malloc((nnz ? nnz : 1) * sizeof *s.items);
    s.ts = malloc((nnz ? nnz : 1) * sizeof *s.ts);
    if (nnz)
        memcpy(s.items, items, nnz * sizeof *s.items);
    for (size_t k = 0; k < nnz; k++)
        s.ts[k] = (int64_t)k;
    return s;
}

/* Per-user sequences of an interaction table in (ts, row) order (stable counting sort by
 * user; the world's table is already sorted by time). */
static inline rlab_seqs local_seqs_from_inter(const rlab_inter *t, int32_t n_users)
{
    rlab_seqs s;
    s.n_users = n_users;
    s.off = calloc((size_t)n_users + 1, sizeof *s.off);
    for (size_t k = 0; k < t->n; k++)
        s.off[t->user[k] + 1]++;
    for (int32_t u = 0; u < n_users; u++)
        s.off[u + 1] += s.off[u];
    s.items = malloc((t->n ? t->n : 1) * sizeof *s.items);
    s.ts = malloc((t->n ? t->n : 1) * sizeof *s.ts);
    int64_t *fill = calloc((size_t)n_users, sizeof *fill);
    for (size_t k = 0; k < t->n; k++) {
        int32_t u = t->user[k];
        int64_t p = s.off[u] + fill[u]++;
        s.items[p] = t->item[k];
        s.ts[p] = t->ts[k];
    }
    free(fill);
    return s;
}

static inline void local_seqs_free(rlab_seqs *s)
{
    free(s->off);
    free(s->items);
    free(s->ts);
    memset(s, 0, sizeof *s);
}

#endif
