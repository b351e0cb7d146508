/*
 * core/base/mpi.c: MPI behind rlab_mpi_* (see mpi.h). With RLAB_HAVE_MPI unset, or when the
 * process was not started by an MPI launcher, everything runs as one rank and never touches
 * MPI. Collectives are posted non-blocking and polled against a deadline, so a dead peer turns
 * into an error on the survivors rather than a hang.
 */
#include "base/mpi.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <signal.h>
#include <time.h>

#ifdef RLAB_HAVE_MPI
#include <mpi.h>
#endif

static int g_rank = 0, g_size = 1;
#ifdef RLAB_HAVE_MPI
static int g_started = 0;
#endif
static _Atomic uint64_t g_bytes = 0;
static _Atomic uint64_t g_wait_us = 0; /* time spent waiting in collectives */

uint64_t rlab_mpi_bytes(void) { return atomic_load(&g_bytes); }
double rlab_mpi_wait_seconds(void) { return (double)atomic_load(&g_wait_us) * 1e-6; }
void rlab_mpi_bytes_reset(void)
{
    atomic_store(&g_bytes, 0);
    atomic_store(&g_wait_us, 0);
}
static _Atomic int g_local = 0;           /* depth of rlab_mpi_local_begin */
static volatile sig_atomic_t g_ended = 0; /* the launcher is ending the job (SIGTERM) */

void rlab_mpi_note_end(void) { g_ended = 1; }

int rlab_mpi_rank(void) { return atomic_load(&g_local) ? 0 : g_rank; }
int rlab_mpi_size(void) { return atomic_load(&g_local) ? 1 : g_size; }
int rlab_mpi_world_rank(void) { return g_rank; }
int rlab_mpi_world_size(void) { return g_size; }
void rlab_mpi_local_begin(void) { atomic_fetch_add(&g_local, 1); }
void rlab_mpi_local_end(void) { atomic_fetch_sub(&g_local, 1); }

void rlab_mpi_shard(int64_t n, int64_t *lo, int64_t *hi)
{
    int64_t P = rlab_mpi_size(), q = n / P, r = n % P, k = rlab_mpi_rank();
    *lo = k * q + (k < r ? k : r);
    *hi = *lo + q + (k < r ? 1 : 0);
}

#ifdef RLAB_HAVE_MPI

static void count(uint64_t n) { atomic_fetch_add(&g_bytes, n); }
static void add_wait(double s) { atomic_fetch_add(&g_wait_us, (uint64_t)(s * 1e6)); }

int rlab_mpi_built(void) { return 1; }

const char *rlab_mpi_library(void)
{
    static char v[MPI_MAX_LIBRARY_VERSION_STRING + 1];
    if (!v[0]) {
        int n = 0;
        MPI_Get_library_version(v, &n);
        char *nl = strpbrk(v, ",\n");
        if (nl)
            *nl = 0;
    }
    return v;
}

static double timeout_s(void)
{
    const char *t = getenv("RECLAB_MPI_TIMEOUT");
    double s = t && *t ? atof(t) : 300.0;
    return s > 0 ? s : 300.0;
}

static int mpi_fail(rlab_err *err, int mrc, const char *what)
{
    char msg[MPI_MAX_ERROR_STRING + 1] = "";
    int n = 0;
    MPI_Error_string(mrc, msg, &n);
    return rlab_errf(err, RLAB_ENET, "MPI %s failed on rank %d of %d: %s", what, g_rank, g_size,
                     msg);
}

/* Wait for a non-blocking collective with a deadline. MPI progresses a non-blocking
 * collective only inside MPI_Test (libnbc), fragment by fragment, so the loop tests
 * continuously, yielding the core between tests (ranks may share cores); after a second of
 * waiting (a peer busy with other work: a sweep's longer job) it sleeps 1 ms between tests. */
static int wait_req_for(MPI_Request *rq, const char *what, double limit, rlab_err *err)
{
    const double t0 = rlab_now();
    for (long spins = 0;; spins++) {
        int done = 0, mrc = MPI_Test(rq, &done, MPI_STATUS_IGNORE);
        if (mrc != MPI_SUCCESS)
            return mpi_fail(err, mrc, what);
        if (done) {
            add_wait(rlab_now() - t0);
            return RLAB_OK;
        }
        if (g_ended)
            return rlab_errf(err, RLAB_ENET,
                             "MPI %s on rank %d of %d: the job is being ended (another rank "
                             "failed or died)",
                             what, g_rank, g_size);
        if ((spins & 255) == 255) {
            double waited = rlab_now() - t0;
            if (limit > 0 && waited > limit)
                return rlab_errf(err, RLAB_ENET,
                                 "MPI %s timed out on rank %d of %d after %.0f s: a rank died "
                                 "or stopped answering (RECLAB_MPI_TIMEOUT)",
                                 what, g_rank, g_size, limit);
            if (waited > 1.0) {
                struct timespec ts = {0, 1000000};
                nanosleep(&ts, NULL);
                continue;
            }
        }
        sched_yield();
    }
}

static int wait_req(MPI_Request *rq, const char *what, rlab_err *err)
{
    return wait_req_for(rq, what, timeout_s(), err);
}

int rlab_mpi_init(int *argc, char ***argv, rlab_err *err)
{
    if (g_started)
        return RLAB_OK;
    if (!getenv("OMPI_COMM_WORLD_SIZE") && !getenv("PMI_SIZE") && !getenv("PMIX_RANK"))
        return RLAB_OK; /* not launched by mpirun / srun: one rank, no MPI */
    int provided = 0, mrc = MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided);
    if (mrc != MPI_SUCCESS)
        return rlab_errf(err, RLAB_ENET, "MPI_Init failed (code %d)", mrc);
    g_started = 1;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    return RLAB_OK;
}

void rlab_mpi_finalize(int failed)
{
    if (!g_started)
        return;
    g_started = 0;
    if (failed && g_size > 1)
        MPI_Abort(MPI_COMM_WORLD, 1);
    else
        MPI_Finalize();
}

int rlab_mpi_barrier_timeout(double seconds, rlab_err *err)
{
    if (rlab_mpi_size() == 1)
        return RLAB_OK;
    MPI_Request rq;
    int mrc = MPI_Ibarrier(MPI_COMM_WORLD, &rq);
    return mrc != MPI_SUCCESS ? mpi_fail(err, mrc, "barrier")
                              : wait_req_for(&rq, "barrier", seconds, err);
}

int rlab_mpi_barrier(rlab_err *err) { return rlab_mpi_barrier_timeout(timeout_s(), err); }

enum { TAG_END = 7001, TAG_END_OK };

static double end_timeout_s(double seconds)
{
    if (seconds > 0)
        return seconds;
    const char *t = getenv("RECLAB_MPI_END_TIMEOUT");
    double s = t && *t ? atof(t) : 0.0;
    return s > 0 ? s : timeout_s();
}

int rlab_mpi_end_barrier(double seconds, rlab_err *err)
{
    const int P = g_size, me = g_rank;
    if (!g_started || P == 1)
        return RLAB_OK;
    const double limit = end_timeout_s(seconds), t0 = rlab_now();
    int n = me == 0 ? P - 1 : 2, rc = RLAB_OK;
    MPI_Request *rq = rlab_malloc((size_t)n * sizeof *rq);
    /* done[k]: request k finished; done[n + k]: its receive buffer (one per request: receives
     * into one shared buffer would overlap, erroneous under the standard) */
    int *done = rlab_calloc(2 * (size_t)n, sizeof *done);
    static int word[2]; /* the payload sent, nobody reads it */
    if (!rq || !done) {
        rlab_free(rq);
        rlab_free(done);
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    }
    int mrc = MPI_SUCCESS;
    if (me == 0)
        for (int r = 1; r < P && mrc == MPI_SUCCESS; r++)
            mrc = MPI_Irecv(&done[n + r - 1], 1, MPI_INT, r, TAG_END, MPI_COMM_WORLD, &rq[r - 1]);
    else if ((mrc = MPI_Isend(&word[1], 1, MPI_INT, 0, TAG_END, MPI_COMM_WORLD, &rq[0])) ==
             MPI_SUCCESS)
        mrc = MPI_Irecv(&done[n + 1], 1, MPI_INT, 0, TAG_END_OK, MPI_COMM_WORLD, &rq[1]);
    if (mrc != MPI_SUCCESS) { /* receives may be pending: done stays (the job ends) */
        rlab_free(rq);
        return mpi_fail(err, mrc, "end of script");
    }
    for (long spins = 0;; spins++) {
        int left = 0;
        for (int k = 0; k < n; k++)
            if (!done[k]) {
                int f = 0;
                if ((mrc = MPI_Test(&rq[k], &f, MPI_STATUS_IGNORE)) != MPI_SUCCESS) {
                    rc = mpi_fail(err, mrc, "end of script");
                    goto out;
                }
                done[k] = f;
                left += !f;
            }
        if (!left)
            break;
        if (g_ended) {
            rc = rlab_errf(err, RLAB_ENET,
                           "MPI end of script on rank %d of %d: the job is being ended "
                           "(another rank failed or died)",
                           me, P);
            goto out;
        }
        double waited = rlab_now() - t0;
        if (waited > limit) {
            char who[256] = "";
            size_t len = 0;
            int late = 0;
            for (int k = 0; me == 0 && k < n; k++)
                if (!done[k]) {
                    if (late < 16 && len < sizeof who - 16)
                        len += (size_t)snprintf(who + len, sizeof who - len, "%s%d",
                                                late ? ", " : "", k + 1);
                    late++;
                }
            if (me == 0)
                rc = rlab_errf(err, RLAB_ENET,
                               "rank%s %s%s of %d did not reach the end of the script within "
                               "%.0f s of rank 0 (stuck or still working; "
                               "RECLAB_MPI_END_TIMEOUT): ending the job",
                               late > 1 ? "s" : "", who, late > 16 ? ", ..." : "", P, limit);
            else
                rc = rlab_errf(err, RLAB_ENET,
                               "rank 0 of %d did not reach the end of the script within %.0f s "
                               "of rank %d (stuck or still working; RECLAB_MPI_END_TIMEOUT): "
                               "ending the job",
                               P, limit, me);
            goto out;
        }
        if (waited > 1.0) {
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
        } else {
            sched_yield();
        }
    }
    if (me == 0) /* everyone is here: the release */
        for (int r = 1; r < P; r++) {
            MPI_Request s;
            if ((mrc = MPI_Isend(&word[1], 1, MPI_INT, r, TAG_END_OK, MPI_COMM_WORLD, &s)) !=
                    MPI_SUCCESS ||
                (rc = wait_req(&s, "end of script", err)))
                break;
        }
    if (mrc != MPI_SUCCESS && !rc)
        rc = mpi_fail(err, mrc, "end of script");
    rlab_free(done);
    rlab_free(rq);
    return rc;
out: /* receives may still be pending: their buffers stay (the job is being ended) */
    rlab_free(rq);
    return rc;
}

static MPI_Op mop(int op)
{
    return op == RLAB_MPI_MAX ? MPI_MAX : op == RLAB_MPI_MIN ? MPI_MIN : MPI_SUM;
}

/* One non-blocking allreduce of n elements of t. OpenMPI's algorithms (recursive doubling on
 * pairs, ring reduce-scatter + allgather) hand every rank the same bits; tests/mpi checks that
 * the replicas of a trained model are identical. */
static int reduce_one(void *buf, int n, MPI_Datatype t, size_t esz, int op, const char *what,
                      rlab_err *err)
{
    MPI_Request rq;
    int mrc = MPI_Iallreduce(MPI_IN_PLACE, buf, n, t, mop(op), MPI_COMM_WORLD, &rq);
    if (mrc != MPI_SUCCESS)
        return mpi_fail(err, mrc, what);
    count((uint64_t)n * esz);
    return wait_req(&rq, what, err);
}

static int reduce_chunks(void *buf, int64_t n, MPI_Datatype t, size_t esz, int64_t bucket, int op,
                         const char *what, rlab_err *err)
{
    if (rlab_mpi_size() == 1 || n <= 0)
        return RLAB_OK;
    if (bucket <= 0 || bucket > (1 << 20))
        bucket = 1 << 20;
    for (int64_t o = 0; o < n; o += bucket) {
        int64_t k = n - o < bucket ? n - o : bucket;
        int rc = reduce_one((char *)buf + (size_t)o * esz, (int)k, t, esz, op, what, err);
        if (rc)
            return rc;
    }
    return RLAB_OK;
}

int rlab_mpi_allreduce_f64(double *buf, int64_t n, int op, rlab_err *err)
{
    return reduce_chunks(buf, n, MPI_DOUBLE, sizeof *buf, 0, op, "allreduce", err);
}

int rlab_mpi_allreduce_i64(int64_t *buf, int64_t n, int op, rlab_err *err)
{
    return reduce_chunks(buf, n, MPI_INT64_T, sizeof *buf, 0, op, "allreduce", err);
}

int rlab_mpi_allreduce_f32(float *buf, int64_t n, int64_t bucket, rlab_err *err)
{
    return reduce_chunks(buf, n, MPI_FLOAT, sizeof *buf, bucket, RLAB_MPI_SUM, "allreduce", err);
}

struct rlab_mpi_req {
    MPI_Request rq;
    int done;
};

int rlab_mpi_iallreduce_f32(float *buf, int64_t n, rlab_mpi_req **rq, rlab_err *err)
{
    *rq = NULL;
    if (rlab_mpi_size() == 1 || n <= 0)
        return RLAB_OK;
    if (n > INT32_MAX)
        return rlab_errf(err, RLAB_EINVAL, "MPI allreduce of %lld floats is too large",
                         (long long)n);
    rlab_mpi_req *r = rlab_calloc(1, sizeof *r);
    if (!r)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    int mrc = MPI_Iallreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &r->rq);
    if (mrc != MPI_SUCCESS) {
        rlab_free(r);
        return mpi_fail(err, mrc, "allreduce");
    }
    count((uint64_t)n * sizeof(float));
    *rq = r;
    return RLAB_OK;
}

int rlab_mpi_test(rlab_mpi_req *rq)
{
    if (!rq || rq->done)
        return 1;
    int done = 0;
    if (MPI_Test(&rq->rq, &done, MPI_STATUS_IGNORE) != MPI_SUCCESS)
        return 0; /* rlab_mpi_wait reports it */
    rq->done = done;
    return done;
}

int rlab_mpi_wait(rlab_mpi_req *rq, rlab_err *err)
{
    if (!rq)
        return RLAB_OK;
    int rc = rq->done ? RLAB_OK : wait_req(&rq->rq, "allreduce", err);
    rlab_free(rq);
    return rc;
}

int rlab_mpi_bcast(void *buf, int64_t nbytes, int root, rlab_err *err)
{
    if (rlab_mpi_size() == 1 || nbytes <= 0)
        return RLAB_OK;
    if (nbytes > INT32_MAX)
        return rlab_errf(err, RLAB_EINVAL, "MPI broadcast of %lld bytes is too large",
                         (long long)nbytes);
    MPI_Request rq;
    int mrc = MPI_Ibcast(buf, (int)nbytes, MPI_BYTE, root, MPI_COMM_WORLD, &rq);
    if (mrc != MPI_SUCCESS)
        return mpi_fail(err, mrc, "broadcast");
    if (g_rank == root)
        count((uint64_t)nbytes);
    return wait_req(&rq, "broadcast", err);
}

/* int displacements for the v-collectives; RLAB_EINVAL past 2 GiB */
static int to_int(const int64_t *c, int *ci, int *di, int64_t *offs, rlab_err *err)
{
    int64_t o = 0;
    for (int r = 0; r < g_size; r++) {
        if (c[r] < 0 || o + c[r] > INT32_MAX)
            return rlab_errf(err, RLAB_EINVAL, "MPI exchange larger than 2 GiB");
        ci[r] = (int)c[r];
        di[r] = (int)o;
        if (offs)
            offs[r] = o;
        o += c[r];
    }
    return RLAB_OK;
}

int rlab_mpi_allgatherv(const void *send, int64_t nbytes, void **recv, int64_t *counts,
                        int64_t *offs, rlab_err *err)
{
    *recv = NULL;
    if (rlab_mpi_size() == 1) {
        counts[0] = nbytes;
        offs[0] = 0;
        *recv = rlab_malloc(nbytes > 0 ? (size_t)nbytes : 1);
        if (!*recv)
            return rlab_errf(err, RLAB_ENOMEM, "out of memory");
        if (nbytes > 0)
            memcpy(*recv, send, (size_t)nbytes);
        return RLAB_OK;
    }
    int rc;
    MPI_Request rq;
    int64_t mine = nbytes;
    int mrc = MPI_Iallgather(&mine, 1, MPI_INT64_T, counts, 1, MPI_INT64_T, MPI_COMM_WORLD, &rq);
    if (mrc != MPI_SUCCESS)
        return mpi_fail(err, mrc, "allgather");
    if ((rc = wait_req(&rq, "allgather", err)))
        return rc;
    int *ci = rlab_malloc(2 * (size_t)g_size * sizeof *ci);
    if (!ci)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    int *di = ci + g_size;
    if ((rc = to_int(counts, ci, di, offs, err)))
        goto out;
    int64_t total = offs[g_size - 1] + counts[g_size - 1];
    *recv = rlab_malloc(total > 0 ? (size_t)total : 1);
    if (!*recv) {
        rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
        goto out;
    }
    mrc =
        MPI_Iallgatherv(send, (int)nbytes, MPI_BYTE, *recv, ci, di, MPI_BYTE, MPI_COMM_WORLD, &rq);
    if (mrc != MPI_SUCCESS) {
        rc = mpi_fail(err, mrc, "allgatherv");
        goto out;
    }
    count((uint64_t)nbytes);
    rc = wait_req(&rq, "allgatherv", err);
out:
    rlab_free(ci);
    if (rc) {
        rlab_free(*recv);
        *recv = NULL;
    }
    return rc;
}

int rlab_mpi_alltoallv(const void *send, const int64_t *scounts, void **recv, int64_t *rcounts,
                       int64_t *roffs, rlab_err *err)
{
    *recv = NULL;
    if (rlab_mpi_size() == 1) {
        rcounts[0] = scounts[0];
        roffs[0] = 0;
        *recv = rlab_malloc(scounts[0] > 0 ? (size_t)scounts[0] : 1);
        if (!*recv)
            return rlab_errf(err, RLAB_ENOMEM, "out of memory");
        if (scounts[0] > 0)
            memcpy(*recv, send, (size_t)scounts[0]);
        return RLAB_OK;
    }
    MPI_Request rq;
    int mrc = MPI_Ialltoall(scounts, 1, MPI_INT64_T, rcounts, 1, MPI_INT64_T, MPI_COMM_WORLD, &rq);
    if (mrc != MPI_SUCCESS)
        return mpi_fail(err, mrc, "alltoall");
    int rc = wait_req(&rq, "alltoall", err);
    if (rc)
        return rc;
    int *ci = rlab_malloc(4 * (size_t)g_size * sizeof *ci);
    if (!ci)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    int *sc = ci, *sd = ci + g_size, *rc_ = ci + 2 * g_size, *rd = ci + 3 * g_size;
    if ((rc = to_int(scounts, sc, sd, NULL, err)) || (rc = to_int(rcounts, rc_, rd, roffs, err)))
        goto out;
    int64_t total = roffs[g_size - 1] + rcounts[g_size - 1];
    *recv = rlab_malloc(total > 0 ? (size_t)total : 1);
    if (!*recv) {
        rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
        goto out;
    }
    mrc = MPI_Ialltoallv(send, sc, sd, MPI_BYTE, *recv, rc_, rd, MPI_BYTE, MPI_COMM_WORLD, &rq);
    if (mrc != MPI_SUCCESS) {
        rc = mpi_fail(err, mrc, "alltoallv");
        goto out;
    }
    for (int r = 0; r < g_size; r++)
        if (r != g_rank)
            count((uint64_t)scounts[r]);
    rc = wait_req(&rq, "alltoallv", err);
out:
    rlab_free(ci);
    if (rc) {
        rlab_free(*recv);
        *recv = NULL;
    }
    return rc;
}

#else /* no MPI: one rank */

int rlab_mpi_built(void) { return 0; }
const char *rlab_mpi_library(void) { return "no MPI support"; }

int rlab_mpi_init(int *argc, char ***argv, rlab_err *err)
{
    (void)argc;
    (void)argv;
    /* started by mpirun / srun as one of several processes: each would run alone, all
     * writing the one store; refuse clearly */
    const char *n = getenv("OMPI_COMM_WORLD_SIZE");
    if (!n)
        n = getenv("PMI_SIZE");
    if (n && atoi(n) > 1)
        return rlab_errf(err, RLAB_ESTATE,
                         "this reclab was built without MPI (RECLAB_MPI=OFF) but was started by "
                         "an MPI launcher as one of %s processes: rebuild with MPI "
                         "(libopenmpi-dev) or run it without mpirun",
                         n);
    return RLAB_OK;
}
void rlab_mpi_finalize(int failed) { (void)failed; }
int rlab_mpi_barrier(rlab_err *err)
{
    (void)err;
    return RLAB_OK;
}
int rlab_mpi_barrier_timeout(double seconds, rlab_err *err)
{
    (void)seconds;
    (void)err;
    return RLAB_OK;
}
int rlab_mpi_end_barrier(double seconds, rlab_err *err)
{
    (void)seconds;
    (void)err;
    return RLAB_OK;
}
int rlab_mpi_allreduce_f64(double *buf, int64_t n, int op, rlab_err *err)
{
    (void)buf, (void)n, (void)op, (void)err;
    return RLAB_OK;
}
int rlab_mpi_allreduce_i64(int64_t *buf, int64_t n, int op, rlab_err *err)
{
    (void)buf, (void)n, (void)op, (void)err;
    return RLAB_OK;
}
int rlab_mpi_allreduce_f32(float *buf, int64_t n, int64_t bucket, rlab_err *err)
{
    (void)buf, (void)n, (void)bucket, (void)err;
    return RLAB_OK;
}
int rlab_mpi_iallreduce_f32(float *buf, int64_t n, rlab_mpi_req **rq, rlab_err *err)
{
    (void)buf, (void)n, (void)err;
    *rq = NULL;
    return RLAB_OK;
}
int rlab_mpi_test(rlab_mpi_req *rq)
{
    (void)rq;
    return 1;
}
int rlab_mpi_wait(rlab_mpi_req *rq, rlab_err *err)
{
    (void)rq, (void)err;
    return RLAB_OK;
}
int rlab_mpi_bcast(void *buf, int64_t nbytes, int root, rlab_err *err)
{
    (void)buf, (void)nbytes, (void)root, (void)err;
    return RLAB_OK;
}
int rlab_mpi_allgatherv(const void *send, int64_t nbytes, void **recv, int64_t *counts,
                        int64_t *offs, rlab_err *err)
{
    counts[0] = nbytes;
    offs[0] = 0;
    *recv = rlab_malloc(nbytes > 0 ? (size_t)nbytes : 1);
    if (!*recv)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    if (nbytes > 0)
        memcpy(*recv, send, (size_t)nbytes);
    return RLAB_OK;
}
int rlab_mpi_alltoallv(const void *send, const int64_t *scounts, void **recv, int64_t *rcounts,
                       int64_t *roffs, rlab_err *err)
{
    return rlab_mpi_allgatherv(send, scounts[0], recv, rcounts, roffs, err);
}

#endif
