/*
 * core/data/batch: left-padded next-item batches and BPR triples. See batch.h.
 */
#include "data/batch.h"

#include <string.h>

/* One row: the last `len` items of src (len <= T) go to the right end of dst[T]. */
static void fill_row(int32_t *dst, int T, const int32_t *src, int64_t len, int32_t pad)
{
    int64_t start = T - len;
    for (int64_t t = 0; t < start; t++)
        dst[t] = pad;
    if (len > 0)
        memcpy(dst + start, src, (size_t)len * sizeof *dst);
}

static void fill_mask(float *mask, int T, int64_t len)
{
    for (int64_t t = 0; t < T; t++)
        mask[t] = t >= T - len ? 1.0f : 0.0f;
}

void rlab_seq_fill_train(const rlab_seqs *s, const int32_t *users, int B, int T, int32_t pad,
                         int32_t *input, int32_t *target, float *mask)
{
    for (int b = 0; b < B; b++) {
        int32_t u = users[b];
        int64_t L = 0;
        const int32_t *seq = NULL;
        if (u >= 0 && u < s->n_users) {
            L = s->off[u + 1] - s->off[u];
            seq = s->items + s->off[u];
        }
        /* pairs (seq[k], seq[k+1]) for k in [0, L-1); keep the last T of them */
        int64_t np = L >= 2 ? L - 1 : 0;
        int64_t len = np < T ? np : T;
        const int32_t *in_src = seq ? seq + (np - len) : NULL;
        fill_row(input + (size_t)b * T, T, in_src, len, pad);
        if (target)
            fill_row(target + (size_t)b * T, T, in_src ? in_src + 1 : NULL, len, pad);
        if (mask)
            fill_mask(mask + (size_t)b * T, T, len);
    }
}

void rlab_seq_fill_infer(const rlab_seqs *s, const int32_t *users, int B, int T, int32_t pad,
                         int32_t *input, float *mask)
{
    for (int b = 0; b < B; b++) {
        int32_t u = users[b];
        int64_t L = 0;
        const int32_t *seq = NULL;
        if (u >= 0 && u < s->n_users) {
            L = s->off[u + 1] - s->off[u];
            seq = s->items + s->off[u];
        }
        int64_t len = L < T ? L : T;
        fill_row(input + (size_t)b * T, T, seq ? seq + (L - len) : NULL, len, pad);
        if (mask)
            fill_mask(mask + (size_t)b * T, T, len);
    }
}

/* ---- sequence batcher ------------------------------------------------------------ */
rlab_seq_batcher *rlab_seq_batcher_new(const rlab_seqs *s, int32_t n_items, int B, int T,
                                       uint64_t seed, rlab_err *err)
{
    if (B < 1 || T < 1 || n_items < 1) {
        rlab_errf(err, RLAB_EINVAL,
                  "seq batcher: need B >= 1, T >= 1, n_items >= 1 (got %d, %d, %d)", B, T,
                  (int)n_items);
        return NULL;
    }
    rlab_seq_batcher *b = rlab_calloc(1, sizeof *b);
    if (!b) {
        rlab_errf(err, RLAB_ENOMEM, "seq batcher: out of memory");
        return NULL;
    }
    b->B = B;
    b->T = T;
    b->pad = RLAB_PAD(n_items);
    b->seqs = s;
    size_t bt = (size_t)B * (size_t)T;
    b->users = rlab_malloc((size_t)B * sizeof *b->users);
    b->input = rlab_malloc(bt * sizeof *b->input);
    b->target = rlab_malloc(bt * sizeof *b->target);
    b->mask = rlab_malloc(bt * sizeof *b->mask);
    b->order = rlab_malloc(((size_t)s->n_users + 1) * sizeof *b->order);
    if (!b->users || !b->input || !b->target || !b->mask || !b->order) {
        rlab_seq_batcher_free(b);
        rlab_errf(err, RLAB_ENOMEM, "seq batcher: out of memory");
        return NULL;
    }
    for (int32_t u = 0; u < s->n_users; u++)
        if (s->off[u + 1] - s->off[u] >= 2)
            b->order[b->n_order++] = u;
    rlab_rng_seed(&b->rng, seed);
    rlab_seq_batcher_epoch(b);
    return b;
}

void rlab_seq_batcher_free(rlab_seq_batcher *b)
{
    if (!b)
        return;
    rlab_free(b->users);
    rlab_free(b->input);
    rlab_free(b->target);
    rlab_free(b->mask);
    rlab_free(b->order);
    rlab_free(b);
}

void rlab_seq_batcher_epoch(rlab_seq_batcher *b)
{
    rlab_rng_shuffle_i32(&b->rng, b->order, (size_t)b->n_order);
    b->pos = 0;
}

int rlab_seq_batcher_next(rlab_seq_batcher *b)
{
    int n = b->n_order - b->pos < b->B ? b->n_order - b->pos : b->B;
    if (n <= 0)
        return 0;
    for (int r = 0; r < b->B; r++)
        b->users[r] = r < n ? b->order[b->pos + r] : -1;
    b->pos += n;
    rlab_seq_fill_train(b->seqs, b->users, b->B, b->T, b->pad, b->input, b->target, b->mask);
    return n;
}

int rlab_seq_batcher_n_batches(const rlab_seq_batcher *b) { return (b->n_order + b->B - 1) / b->B; }

/* ---- BPR batcher ----------------------------------------------------------------- */
rlab_bpr_batcher *rlab_bpr_batcher_new(const rlab_seqs *s, const rlab_sampler *sampler, int B,
                                       uint64_t seed, rlab_err *err)
{
    if (B < 1 || !sampler) {
        rlab_errf(err, RLAB_EINVAL, "bpr batcher: need B >= 1 and a sampler");
        return NULL;
    }
    rlab_bpr_batcher *b = rlab_calloc(1, sizeof *b);
    if (!b) {
        rlab_errf(err, RLAB_ENOMEM, "bpr batcher: out of memory");
        return NULL;
    }
    b->B = B;
    b->seqs = s;
    b->sampler = sampler;
    b->nnz = s->off[s->n_users];
    size_t nz = (size_t)(b->nnz > 0 ? b->nnz : 1);
    b->user = rlab_malloc((size_t)B * sizeof *b->user);
    b->pos = rlab_malloc((size_t)B * sizeof *b->pos);
    b->neg = rlab_malloc((size_t)B * sizeof *b->neg);
    b->order = rlab_malloc(nz * sizeof *b->order);
    b->row_of = rlab_malloc(nz * sizeof *b->row_of);
    if (!b->user || !b->pos || !b->neg || !b->order || !b->row_of) {
        rlab_bpr_batcher_free(b);
        rlab_errf(err, RLAB_ENOMEM, "bpr batcher: out of memory");
        return NULL;
    }
    for (int32_t u = 0; u < s->n_users; u++)
        for (int64_t k = s->off[u]; k < s->off[u + 1]; k++)
            b->row_of[k] = u;
    for (int64_t k = 0; k < b->nnz; k++)
        b->order[k] = k;
    rlab_rng_seed(&b->rng, seed);
    rlab_bpr_batcher_epoch(b);
    return b;
}

void rlab_bpr_batcher_free(rlab_bpr_batcher *b)
{
    if (!b)
        return;
    rlab_free(b->user);
    rlab_free(b->pos);
    rlab_free(b->neg);
    rlab_free(b->order);
    rlab_free(b->row_of);
    rlab_free(b);
}

void rlab_bpr_batcher_epoch(rlab_bpr_batcher *b)
{
    /* Fisher-Yates over 64-bit indices (rlab_rng_shuffle_i32 is for int32 arrays). */
    for (int64_t i = b->nnz; i > 1; i--) {
        int64_t j = (int64_t)rlab_rng_below(&b->rng, (uint64_t)i);
        int64_t t = b->order[i - 1];
        b->order[i - 1] = b->order[j];
        b->order[j] = t;
    }
    b->pos_k = 0;
}

int rlab_bpr_batcher_next(rlab_bpr_batcher *b, int *n, rlab_err *err)
{
    int64_t left = b->nnz - b->pos_k;
    int m = left < b->B ? (int)left : b->B;
    *n = 0;
    for (int r = 0; r < m; r++) {
        int64_t k = b->order[b->pos_k + r];
        int32_t u = b->row_of[k];
        b->user[r] = u;
        b->pos[r] = b->seqs->items[k];
        int rc = rlab_sampler_draw(b->sampler, &b->rng, u, &b->neg[r], err);
        if (rc != RLAB_OK)
            return rc;
    }
    b->pos_k += m;
    *n = m;
    return RLAB_OK;
}
