/*
 * tests/mpi/test_mpi.c: core/base/mpi and the data-parallel gradient exchange of core/model/fit
 * (rlab_fit_sync_grads), run alone (one rank: the fallbacks) as ctest mpi.core.1 and under
 * `mpirun -np 2` as mpi.core.2 (tests/mpi/CMakeLists.txt). Every expectation is written for
 * any rank count P: rank r contributes values that depend on r, and the checks compare with
 * the sums computed by hand over r = 0..P-1.
 *
 * Test organization:
 *   mpi.shard.1       contiguous near-equal shards cover 0..n-1 once, in rank order
 *   mpi.reduce.1      allreduce of doubles (sum, max, min) and int64 (sum)
 *   mpi.reduce.2      bucketed float allreduce (buckets of 3 floats over 10)
 *   mpi.gather.1      allgatherv with a different length per rank, one of them empty
 *   mpi.alltoallv.1   personalised exchange: rank r sends r+1+q bytes of value 16r+q to rank q
 *   mpi.local.1       a local scope is a job of one; bytes counter does not move in it
 *   mpi.sync.1        rlab_fit_sync_grads: a dense tensor summed with scales, a row-tracked
 *                     table's touched rows summed sparsely, the union of touched flags
 */
#include "harness.h"

#include "base/mpi.h"
#include "model/fit.h"
#include "tensor/tensor.h"

#include <stdlib.h>

static int R, P;

static void t_shard(void)
{
    for (int64_t n = 0; n < 9; n++) {
        int64_t lo, hi;
        rlab_mpi_shard(n, &lo, &hi);
        int64_t q = n / P, r = n % P;
        CHECK_EQ_INT(lo, R * q + (R < r ? R : r));
        CHECK_EQ_INT(hi - lo, q + (R < r ? 1 : 0));
    }
    int64_t lo, hi;
    rlab_fit_shard(5, &lo, &hi);
    int64_t mine = hi - lo;
    rlab_err err = {0};
    CHECK_EQ_INT(rlab_mpi_allreduce_i64(&mine, 1, RLAB_MPI_SUM, &err), RLAB_OK);
    CHECK_EQ_INT(mine, 5); /* every row once */
}

static void t_reduce(void)
{
    rlab_err err = {0};
    double s[3] = {R + 1.0, R + 1.0, R + 1.0};
    CHECK_EQ_INT(rlab_mpi_allreduce_f64(s, 1, RLAB_MPI_SUM, &err), RLAB_OK);
    CHECK_EQ_INT(rlab_mpi_allreduce_f64(s + 1, 1, RLAB_MPI_MAX, &err), RLAB_OK);
    CHECK_EQ_INT(rlab_mpi_allreduce_f64(s + 2, 1, RLAB_MPI_MIN, &err), RLAB_OK);
    CHECK_NEAR(s[0], P * (P + 1) / 2.0, 0);
    CHECK_NEAR(s[1], P, 0);
    CHECK_NEAR(s[2], 1, 0);
    int64_t k[2] = {R, 10};
    CHECK_EQ_INT(rlab_mpi_allreduce_i64(k, 2, RLAB_MPI_SUM, &err), RLAB_OK);
    CHECK_EQ_INT(k[0], P * (P - 1) / 2);
    CHECK_EQ_INT(k[1], 10 * P);
}

static void t_reduce_buckets(void)
{
    rlab_err err = {0};
    float x[10];
    for (int i = 0; i < 10; i++)
        x[i] = (float)(i * (R + 1));
    uint64_t b0 = rlab_mpi_bytes();
    CHECK_EQ_INT(rlab_mpi_allreduce_f32(x, 10, 3, &err), RLAB_OK);
    for (int i = 0; i < 10; i++)
        CHECK_NEAR(x[i], (double)i * P * (P + 1) / 2.0, 0);
    CHECK_EQ_INT(rlab_mpi_bytes() - b0, P > 1 ? 40 : 0);
}

static void t_gather(void)
{
    rlab_err err = {0};
    /* rank r sends r bytes of value r (rank 0 sends nothing) */
    unsigned char buf[64];
    memset(buf, R, sizeof buf);
    int64_t *cnt = calloc(2 * (size_t)P, sizeof *cnt);
    void *all = NULL;
    CHECK_EQ_INT(rlab_mpi_allgatherv(buf, R, &all, cnt, cnt + P, &err), RLAB_OK);
    int64_t off = 0;
    for (int r = 0; r < P; r++) {
        CHECK_EQ_INT(cnt[r], r);
        CHECK_EQ_INT(cnt[P + r], off);
        for (int64_t i = 0; i < cnt[r]; i++)
            CHECK_EQ_INT(((unsigned char *)all)[off + i], r);
        off += r;
    }
    rlab_free(all);
    free(cnt);
}

static void t_alltoallv(void)
{
    rlab_err err = {0};
    int64_t *sc = calloc(3 * (size_t)P, sizeof *sc), *rc = sc + P, *ro = sc + 2 * P;
    unsigned char send[256];
    size_t o = 0;
    for (int q = 0; q < P; q++) { /* to rank q: R + 1 + q bytes of 16R + q */
        sc[q] = R + 1 + q;
        memset(send + o, 16 * R + q, (size_t)sc[q]);
        o += (size_t)sc[q];
    }
    void *recv = NULL;
    CHECK_EQ_INT(rlab_mpi_alltoallv(send, sc, &recv, rc, ro, &err), RLAB_OK);
    for (int r = 0; r < P; r++) {
        CHECK_EQ_INT(rc[r], r + 1 + R);
        for (int64_t i = 0; i < rc[r]; i++)
            CHECK_EQ_INT(((unsigned char *)recv)[ro[r] + i], 16 * r + R);
    }
    rlab_free(recv);
    free(sc);
}

static void t_local(void)
{
    rlab_mpi_local_begin();
    CHECK_EQ_INT(rlab_mpi_size(), 1);
    CHECK_EQ_INT(rlab_mpi_rank(), 0);
    CHECK_EQ_INT(rlab_mpi_world_size(), P);
    CHECK_EQ_INT(rlab_mpi_world_rank(), R);
    uint64_t b0 = rlab_mpi_bytes();
    double x = 2.0;
    rlab_err err = {0};
    CHECK_EQ_INT(rlab_mpi_allreduce_f64(&x, 1, RLAB_MPI_SUM, &err), RLAB_OK);
    CHECK_NEAR(x, 2.0, 0); /* alone: nothing added */
    CHECK_EQ_INT(rlab_mpi_bytes(), b0);
    rlab_mpi_local_end();
    CHECK_EQ_INT(rlab_mpi_size(), P);
}

static void t_sync(void)
{
    rlab_err err = {0};
    rlab_param_spec specs[2] = {
        {.name = "w", .ndim = 1, .shape = {5}, .init = RLAB_INIT_ZERO},
        {.name = "emb", .ndim = 2, .shape = {6, 3}, .init = RLAB_INIT_ZERO},
    };
    rlab_rng rng;
    rlab_rng_seed(&rng, 1);
    rlab_params *p = rlab_params_new(specs, 2, &rng, &err);
    CHECK(p != NULL);
    if (!p)
        return;
    CHECK_EQ_INT(rlab_params_track_rows(p, &p->t[1], &err), RLAB_OK);
    rlab_params_zero_grad(p);
    /* dense: w = (R + 1) * (1..5); sparse: rank r touches row r % 6 and row 5 with r + 1 */
    for (int i = 0; i < 5; i++)
        p->t[0].grad[i] = (float)((R + 1) * (i + 1));
    int rows[2] = {R % 6, 5};
    for (int k = 0; k < 2; k++) {
        for (int c = 0; c < 3; c++)
            p->t[1].grad[rows[k] * 3 + c] += (float)(R + 1);
        rlab_params_touch_row(&p->t[1], rows[k]);
    }
    /* scale 0.5 on every rank: the sum of halves */
    CHECK_EQ_INT(rlab_fit_sync_grads(p, 0.5, &err), RLAB_OK);
    const double tri = P * (P + 1) / 2.0; /* sum over r of (r + 1) */
    for (int i = 0; i < 5; i++)
        CHECK_NEAR(p->t[0].grad[i], P > 1 ? 0.5 * tri * (i + 1) : (i + 1), 1e-6);
    for (int r6 = 0; r6 < 6; r6++) {
        double want = 0.0;
        int touched = 0;
        for (int r = 0; r < P; r++) {
            if (r % 6 == r6)
                want += (r + 1), touched = 1;
            if (r6 == 5)
                want += (r + 1), touched = 1;
        }
        if (P > 1)
            want *= 0.5;
        else /* one rank: nothing to exchange, nothing scaled */
            want = (r6 == 0 ? 1.0 : 0.0) + (r6 == 5 ? 1.0 : 0.0);
        for (int c = 0; c < 3; c++)
            CHECK_NEAR(p->t[1].grad[r6 * 3 + c], want, 1e-6);
        CHECK_EQ_INT(p->row_touched[1][r6] != 0, touched);
    }
    rlab_params_free(p);
}

static const rlab_test tests[] = {
    {"mpi.shard.1", t_shard},
    {"mpi.reduce.1", t_reduce},
    {"mpi.reduce.2", t_reduce_buckets},
    {"mpi.gather.1", t_gather},
    {"mpi.alltoallv.1", t_alltoallv},
    {"mpi.local.1", t_local},
    {"mpi.sync.1", t_sync},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    rlab_err err = {0};
    if (rlab_mpi_init(&argc, &argv, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    R = rlab_mpi_rank();
    P = rlab_mpi_size();
    int rc = rlab_test_main(argc, argv, tests);
    /* the tests of every rank must pass: one failure fails the job */
    int64_t bad = rc != 0;
    if (rlab_mpi_allreduce_i64(&bad, 1, RLAB_MPI_MAX, &err) == RLAB_OK && bad && !rc)
        rc = 1;
    rlab_mpi_finalize(0);
    return rc;
}
