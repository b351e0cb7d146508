/*
 * Test organization: data.batch.* mini-batches.
 *   .1 left-padded training rows, hand-checked   .2 inference rows, hand-checked
 *   .3 user epochs: every eligible user once, padding rows, seeded order, no allocation
 *   .4 BPR triples: every interaction once per epoch, negatives unseen, seeded, no alloc
 */
#include "data/batch.h"
#include "harness.h"
#include "local_seqs.h"

#include <stdlib.h>
#include <string.h>

enum { NI = 10, P = NI }; /* 10 items, PAD = 10 */

/* user 0: [3 1 4 1 5]; user 1: [7]; user 2: []; user 3: [2 6] */
static rlab_seqs tiny(void)
{
    int32_t items[] = {3, 1, 4, 1, 5, 7, 2, 6};
    int32_t lens[] = {5, 1, 0, 2};
    return local_seqs(4, lens, items);
}

static int row_eq(const int32_t *got, const int32_t *want, int T)
{
    return memcmp(got, want, (size_t)T * sizeof *got) == 0;
}

static int mask_eq(const float *got, const int *want, int T)
{
    for (int t = 0; t < T; t++)
        if ((got[t] > 0.5f) != (want[t] != 0))
            return 0;
    return 1;
}

static void t_train_rows(void)
{
    rlab_seqs s = tiny();
    CHECK_EQ_INT(RLAB_PAD(NI), 10);
    int32_t users[] = {0, 1, 2, 3, -1, 99};
    int32_t in[6 * 6], tg[6 * 6];
    float m[6 * 6];
    rlab_seq_fill_train(&s, users, 6, 6, P, in, tg, m);
    /* user 0, T = 6: input = seq[:-1] = 3 1 4 1, target = seq[1:] = 1 4 1 5 */
    CHECK(row_eq(in, (int32_t[]){P, P, 3, 1, 4, 1}, 6));
    CHECK(row_eq(tg, (int32_t[]){P, P, 1, 4, 1, 5}, 6));
    CHECK(mask_eq(m, (int[]){0, 0, 1, 1, 1, 1}, 6));
    /* user 1 (one item), user 2 (none), -1 and 99 (unknown): all pad, mask 0 */
    for (int b = 1; b <= 5; b++) {
        if (b == 3)
            continue;
        CHECK(row_eq(in + b * 6, (int32_t[]){P, P, P, P, P, P}, 6));
        CHECK(row_eq(tg + b * 6, (int32_t[]){P, P, P, P, P, P}, 6));
        CHECK(mask_eq(m + b * 6, (int[]){0, 0, 0, 0, 0, 0}, 6));
    }
    /* user 3: [2 6] -> input 2, target 6 */
    CHECK(row_eq(in + 18, (int32_t[]){P, P, P, P, P, 2}, 6));
    CHECK(row_eq(tg + 18, (int32_t[]){P, P, P, P, P, 6}, 6));
    /* T = 3 keeps the LAST three pairs: input 1 4 1, target 4 1 5 */
    rlab_seq_fill_train(&s, users, 1, 3, P, in, tg, m);
    CHECK(row_eq(in, (int32_t[]){1, 4, 1}, 3));
    CHECK(row_eq(tg, (int32_t[]){4, 1, 5}, 3));
    CHECK(mask_eq(m, (int[]){1, 1, 1}, 3));
    /* T = 4: exactly fits the four pairs; target/mask may be NULL */
    rlab_seq_fill_train(&s, users, 1, 4, P, in, NULL, NULL);
    CHECK(row_eq(in, (int32_t[]){3, 1, 4, 1}, 4));
    local_seqs_free(&s);
}

static void t_infer_rows(void)
{
    rlab_seqs s = tiny();
    int32_t users[] = {0, 1, 2, 7};
    int32_t in[4 * 6];
    float m[4 * 6];
    rlab_seq_fill_infer(&s, users, 4, 6, P, in, m);
    CHECK(row_eq(in, (int32_t[]){P, 3, 1, 4, 1, 5}, 6));
    CHECK(mask_eq(m, (int[]){0, 1, 1, 1, 1, 1}, 6));
    CHECK(row_eq(in + 6, (int32_t[]){P, P, P, P, P, 7}, 6));
    CHECK(row_eq(in + 12, (int32_t[]){P, P, P, P, P, P}, 6));
    CHECK(row_eq(in + 18, (int32_t[]){P, P, P, P, P, P}, 6));
    rlab_seq_fill_infer(&s, users, 1, 2, P, in, NULL);
    CHECK(row_eq(in, (int32_t[]){1, 5}, 2));
    local_seqs_free(&s);
}

/* 37 users: user u has (u % 4) + 1 items u, u+1, ... (mod NI); users with 1 item are
 * skipped by the batcher, so 27 are eligible. */
static rlab_seqs many(void)
{
    int32_t items[37 * 4], lens[37], n = 0;
    for (int32_t u = 0; u < 37; u++) {
        lens[u] = u % 4 + 1;
        for (int32_t k = 0; k < lens[u]; k++)
            items[n++] = (u + k) % NI;
    }
    return local_seqs(37, lens, items);
}

static void t_epochs(void)
{
    rlab_seqs s = many();
    rlab_err err = {0};
    rlab_seq_batcher *b = rlab_seq_batcher_new(&s, NI, 8, 5, 42, &err);
    rlab_seq_batcher *b2 = rlab_seq_batcher_new(&s, NI, 8, 5, 42, &err);
    CHECK(b && b2);
    CHECK_EQ_INT(b->pad, P);
    CHECK_EQ_INT(rlab_seq_batcher_n_batches(b), 4); /* 27 users / 8 */
    int32_t first_epoch[27], k = 0;
    for (int ep = 0; ep < 2; ep++) {
        if (ep > 0) {
            rlab_seq_batcher_epoch(b);
            rlab_seq_batcher_epoch(b2);
        }
        int seen[37] = {0}, n, nb = 0, sizes[8] = {0}, same_order = 1;
        /* no allocation may happen while iterating */
        rlab_alloc_fail_after(0);
        while ((n = rlab_seq_batcher_next(b)) > 0) {
            int n2 = rlab_seq_batcher_next(b2);
            sizes[nb++] = n;
            same_order &= n2 == n && memcmp(b->users, b2->users, sizeof(int32_t) * 8) == 0 &&
                          memcmp(b->input, b2->input, sizeof(int32_t) * 40) == 0;
            for (int r = 0; r < 8; r++) {
                int32_t u = b->users[r];
                if (r >= n) {
                    CHECK_EQ_INT(u, -1);
                    CHECK(b->mask[r * 5 + 4] < 0.5f && b->input[r * 5 + 4] == P);
                    continue;
                }
                CHECK(u >= 0 && u < 37 && u % 4 != 0);
                seen[u]++;
                if (ep == 0)
                    first_epoch[k++] = u;
                /* the last column is the most recent pair: target = last item of u */
                int32_t L = u % 4 + 1;
                CHECK_EQ_INT(b->target[r * 5 + 4], (u + L - 1) % NI);
                CHECK_EQ_INT(b->input[r * 5 + 4], (u + L - 2) % NI);
            }
        }
        rlab_alloc_fail_after(-1);
        CHECK(same_order);
        CHECK_EQ_INT(nb, 4);
        CHECK(sizes[0] == 8 && sizes[3] == 3);
        for (int32_t u = 0; u < 37; u++)
            CHECK_EQ_INT(seen[u], u % 4 == 0 ? 0 : 1);
        CHECK_EQ_INT(rlab_seq_batcher_next(b), 0); /* stays at the end */
        if (ep == 1) {
            /* the second epoch's order differs from the first (27! orders) */
            rlab_seq_batcher *b3 = rlab_seq_batcher_new(&s, NI, 27, 5, 42, &err);
            rlab_seq_batcher_next(b3);
            CHECK(memcmp(b3->users, first_epoch, sizeof first_epoch) == 0);
            rlab_seq_batcher_epoch(b3);
            rlab_seq_batcher_next(b3);
            CHECK(memcmp(b3->users, first_epoch, sizeof first_epoch) != 0);
            rlab_seq_batcher_free(b3);
        }
    }
    CHECK(rlab_seq_batcher_new(&s, NI, 0, 5, 1, &err) == NULL);
    CHECK_EQ_INT(err.code, RLAB_EINVAL);
    rlab_seq_batcher_free(b);
    rlab_seq_batcher_free(b2);
    rlab_seq_batcher_free(NULL);
    local_seqs_free(&s);
}

static void t_bpr(void)
{
    rlab_seqs s = many();
    rlab_err err = {0};
    rlab_sampler *neg = rlab_sampler_new_uniform(NI, &err);
    CHECK_EQ_INT(rlab_sampler_set_exclude(neg, &s, &err), RLAB_OK);
    rlab_bpr_batcher *b = rlab_bpr_batcher_new(&s, neg, 16, 9, &err);
    rlab_bpr_batcher *b2 = rlab_bpr_batcher_new(&s, neg, 16, 9, &err);
    CHECK(b && b2);
    int64_t nnz = s.off[37]; /* 9*1 + 9*2 + 9*3 + 10*... computed below */
    int64_t expect = 0;
    for (int u = 0; u < 37; u++)
        expect += u % 4 + 1;
    CHECK_EQ_INT(nnz, expect);
    int32_t order0[200];
    for (int ep = 0; ep < 2; ep++) {
        if (ep) {
            rlab_bpr_batcher_epoch(b);
            rlab_bpr_batcher_epoch(b2);
        }
        /* count (user, pos) pairs: each interaction exactly once */
        int cnt[37][NI];
        memset(cnt, 0, sizeof cnt);
        int n, n2, total = 0, bad_neg = 0, same = 1, batches = 0;
        int32_t pos_seq[200];
        rlab_alloc_fail_after(0);
        while (rlab_bpr_batcher_next(b, &n, &err) == RLAB_OK && n > 0) {
            rlab_bpr_batcher_next(b2, &n2, &err);
            same &= n == n2 && memcmp(b->neg, b2->neg, (size_t)n * sizeof(int32_t)) == 0 &&
                    memcmp(b->pos, b2->pos, (size_t)n * sizeof(int32_t)) == 0;
            batches++;
            for (int r = 0; r < n; r++) {
                cnt[b->user[r]][b->pos[r]]++;
                pos_seq[total] = b->user[r] * 100 + b->pos[r];
                total++;
                /* the negative is never an item of the user's history */
                int32_t u = b->user[r], L = u % 4 + 1;
                for (int32_t k = 0; k < L; k++)
                    bad_neg += b->neg[r] == (u + k) % NI;
            }
        }
        rlab_alloc_fail_after(-1);
        CHECK(same);
        CHECK_EQ_INT(total, nnz);
        CHECK_EQ_INT(batches, (nnz + 15) / 16);
        CHECK_EQ_INT(bad_neg, 0);
        int wrong = 0;
        for (int32_t u = 0; u < 37; u++)
            for (int32_t i = 0; i < NI; i++) {
                int32_t L = u % 4 + 1, in = 0;
                for (int32_t k = 0; k < L; k++)
                    in += (u + k) % NI == i;
                wrong += cnt[u][i] != in;
            }
        CHECK_EQ_INT(wrong, 0);
        if (ep == 0)
            memcpy(order0, pos_seq, sizeof(int32_t) * (size_t)total);
        else
            CHECK(memcmp(order0, pos_seq, sizeof(int32_t) * (size_t)total) != 0);
    }
    rlab_bpr_batcher_free(b);
    rlab_bpr_batcher_free(b2);
    rlab_sampler_free(neg);
    local_seqs_free(&s);
}

static const rlab_test tests[] = {
    {"data.batch.1", t_train_rows},
    {"data.batch.2", t_infer_rows},
    {"data.batch.3", t_epochs},
    {"data.batch.4", t_bpr},
    {NULL, NULL},
};

int main(int argc, char **argv) { return rlab_test_main(argc, argv, tests); }
