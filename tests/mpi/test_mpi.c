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
 *   mpi.ready.2       a parameter used through a reshape view is reported after the whole backward
 *   mpi.ready.1       rlab_tape_on_grad_ready: every watched tensor reported once, its gradient
 *                     final when reported (equal to the one after the backward), the unused one
 *                     reported too
 *   mpi.overlap.1     the overlapped exchange (rlab_fit_overlap_begin, buckets of 16 floats):
 *                     buckets posted during the backward (bytes counted before the sync on 2
 *                     ranks), the result equal to the exchange without overlap and to the
 *                     sum over r of scale_r * grad_r computed alone (every rank's batch rerun
 *                     in a local scope)
 */
#include "harness.h"

#include "base/mpi.h"
#include "model/fit.h"
#include "tensor/ops.h"
#include "tensor/tensor.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

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

/* A 3-layer net on rank q's batch: loss = sum(tanh(tanh(x w0) w1) w2 + b)^2; w3 unused. */
static const rlab_param_spec net_specs[5] = {
    {.name = "w0", .ndim = 2, .shape = {3, 4}, .init = RLAB_INIT_XAVIER, .scale = 1},
    {.name = "w1", .ndim = 2, .shape = {4, 4}, .init = RLAB_INIT_XAVIER, .scale = 1},
    {.name = "unused", .ndim = 1, .shape = {7}, .init = RLAB_INIT_ZERO},
    {.name = "w2", .ndim = 2, .shape = {4, 2}, .init = RLAB_INIT_XAVIER, .scale = 1},
    {.name = "b", .ndim = 1, .shape = {2}, .init = RLAB_INIT_ZERO},
};

static rlab_tensor *net_loss(rlab_tape *t, rlab_params *p, int q, float *x)
{
    for (int i = 0; i < 6; i++)
        x[i] = (float)((q + 1) * 0.3 + i * 0.1 - 0.2 * (i % 2));
    rlab_tensor *xi = rlab_t_input(t, x, 2, (int64_t[]){2, 3});
    rlab_tensor *h = rlab_t_tanh(t, rlab_t_matmul(t, xi, &p->t[0], 0, 0));
    h = rlab_t_tanh(t, rlab_t_matmul(t, h, &p->t[1], 0, 0));
    rlab_tensor *y = rlab_t_add(t, rlab_t_matmul(t, h, &p->t[3], 0, 0), &p->t[4]);
    return rlab_t_sum(t, rlab_t_sum(t, rlab_t_mul(t, y, y), -1), 0);
}

static rlab_params *net_new(void)
{
    rlab_err err = {0};
    rlab_rng rng;
    rlab_rng_seed(&rng, 7);
    return rlab_params_new(net_specs, 5, &rng, &err);
}

typedef struct ready_log {
    rlab_params *p;
    float copy[64];
    int calls[5];
    size_t off[5];
} ready_log;

/* lg for p: each parameter's slot in copy */
static void ready_log_init(ready_log *lg, rlab_params *p)
{
    memset(lg, 0, sizeof *lg);
    lg->p = p;
    size_t o = 0;
    for (int k = 0; k < 5; k++)
        lg->off[k] = o, o += (size_t)p->t[k].n;
    CHECK(o <= 64);
}

static void on_ready(void *ud, int k)
{
    ready_log *lg = ud;
    lg->calls[k]++;
    memcpy(lg->copy + lg->off[k], lg->p->t[k].grad, (size_t)lg->p->t[k].n * sizeof(float));
}

static void t_ready(void)
{
    rlab_err err = {0};
    rlab_params *p = net_new();
    rlab_tape *t = rlab_tape_new(1 << 20, 256, &err);
    CHECK(p && t);
    if (!p || !t)
        goto out;
    ready_log lg;
    ready_log_init(&lg, p);
    float x[6];
    rlab_params_zero_grad(p);
    rlab_tape_reset(t);
    rlab_tensor *l = net_loss(t, p, 0, x);
    rlab_tape_on_grad_ready(t, p->t, p->n, on_ready, &lg);
    CHECK_EQ_INT(rlab_tape_backward(t, l), RLAB_OK);
    for (int k = 0; k < 5; k++) {
        CHECK_EQ_INT(lg.calls[k], 1);
        for (int64_t i = 0; i < p->t[k].n; i++)
            CHECK(memcmp(&lg.copy[lg.off[k] + (size_t)i], &p->t[k].grad[i], sizeof(float)) ==
                  0); /* final when reported */
    }
    float gsum = 0.0f;
    for (int64_t i = 0; i < p->t[0].n; i++)
        gsum += fabsf(p->t[0].grad[i]);
    CHECK(gsum > 0.0f); /* the first layer did get a gradient */
    /* one backward only: the next one reports nothing */
    rlab_params_zero_grad(p);
    rlab_tape_reset(t);
    l = net_loss(t, p, 0, x);
    CHECK_EQ_INT(rlab_tape_backward(t, l), RLAB_OK);
    CHECK_EQ_INT(lg.calls[0], 1);
out:
    rlab_tape_free(t);
    rlab_params_free(p);
}

/* A parameter used through a view (reshape) recorded before its direct use: the ops on the
 * view add into its gradient after the direct use's backward, so it is reported only once
 * the whole backward has run, with its final gradient. */
static void t_ready_view(void)
{
    rlab_err err = {0};
    rlab_params *p = net_new();
    rlab_tape *t = rlab_tape_new(1 << 20, 256, &err);
    CHECK(p && t);
    if (!p || !t)
        goto out;
    ready_log lg;
    ready_log_init(&lg, p);
    rlab_params_zero_grad(p);
    rlab_tape_reset(t);
    rlab_tensor *v = rlab_t_reshape(t, &p->t[1], 1, (int64_t[]){16}); /* w1 as a view */
    rlab_tensor *l1 = rlab_t_sum(t, rlab_t_mul(t, v, v), 0);          /* uses the view */
    rlab_tensor *l2 = rlab_t_sum(t, rlab_t_sum(t, rlab_t_tanh(t, &p->t[1]), -1), 0); /* direct */
    rlab_tensor *l = rlab_t_add(t, l1, l2);
    rlab_tape_on_grad_ready(t, p->t, p->n, on_ready, &lg);
    CHECK_EQ_INT(rlab_tape_backward(t, l), RLAB_OK);
    CHECK_EQ_INT(lg.calls[1], 1);
    for (int64_t i = 0; i < p->t[1].n; i++) {
        float w = p->t[1].data[i], th = tanhf(w);
        CHECK(fabsf(p->t[1].grad[i] - (2 * w + 1 - th * th)) < 1e-5f); /* both paths in it */
        CHECK(memcmp(&lg.copy[lg.off[1] + (size_t)i], &p->t[1].grad[i], sizeof(float)) == 0);
    }
out:
    rlab_tape_free(t);
    rlab_params_free(p);
}

/* grads of rank q's batch scaled by (q + 1) / tri, in out[count] */
static void net_grads(rlab_params *p, rlab_tape *t, int q, int overlap, float *out)
{
    rlab_err err = {0};
    const double tri = P * (P + 1) / 2.0, scale = (q + 1) / tri;
    float x[6];
    rlab_params_zero_grad(p);
    rlab_tape_reset(t);
    rlab_tensor *l = net_loss(t, p, q, x);
    if (overlap)
        CHECK_EQ_INT(rlab_fit_overlap_begin(p, t, scale, &err), RLAB_OK);
    uint64_t b0 = rlab_mpi_bytes();
    CHECK_EQ_INT(rlab_tape_backward(t, l), RLAB_OK);
    if (overlap && rlab_mpi_size() > 1)
        CHECK(rlab_mpi_bytes() > b0); /* buckets left during the backward */
    CHECK_EQ_INT(rlab_fit_sync_grads(p, scale, &err), RLAB_OK);
    if (rlab_mpi_size() == 1) /* alone: nothing exchanged, nothing scaled */
        for (size_t i = 0; i < p->count; i++)
            p->grad[i] *= (float)scale;
    memcpy(out, p->grad, p->count * sizeof(float));
}

static void t_overlap(void)
{
    rlab_err err = {0};
    setenv("RECLAB_MPI_BUCKET", "16", 1);
    rlab_params *p = net_new();
    rlab_tape *t = rlab_tape_new(1 << 20, 256, &err);
    float *a = NULL, *b = NULL, *want = NULL, *one = NULL;
    CHECK(p && t);
    if (!p || !t)
        goto out;
    a = calloc(p->count, sizeof *a), b = calloc(p->count, sizeof *b);
    want = calloc(p->count, sizeof *want), one = calloc(p->count, sizeof *one);
    CHECK(a && b && want && one);
    if (!a || !b || !want || !one)
        goto out;
    rlab_fit_set_overlap(1);
    net_grads(p, t, R, 1, a);
    rlab_fit_set_overlap(0);
    net_grads(p, t, R, 0, b);
    rlab_fit_set_overlap(1);
    rlab_mpi_local_begin(); /* every rank's batch alone, summed by hand in rank order */
    for (int q = 0; q < P; q++) {
        net_grads(p, t, q, 0, one);
        for (size_t i = 0; i < p->count; i++)
            want[i] += one[i];
    }
    rlab_mpi_local_end();
    double mx = 0.0;
    for (size_t i = 0; i < p->count; i++) {
        CHECK_NEAR(a[i], b[i], 1e-7);
        CHECK_NEAR(a[i], want[i], 1e-6);
        mx = fmax(mx, fabs((double)want[i]));
    }
    CHECK(mx > 0.01); /* not all zero */
out:
    unsetenv("RECLAB_MPI_BUCKET");
    free(a), free(b), free(want), free(one);
    rlab_tape_free(t);
    rlab_params_free(p);
}

static const rlab_test tests[] = {
    {"mpi.shard.1", t_shard},
    {"mpi.reduce.1", t_reduce},
    {"mpi.reduce.2", t_reduce_buckets},
    {"mpi.gather.1", t_gather},
    {"mpi.alltoallv.1", t_alltoallv},
    {"mpi.local.1", t_local},
    {"mpi.ready.1", t_ready},
    {"mpi.ready.2", t_ready_view},
    {"mpi.overlap.1", t_overlap},
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
