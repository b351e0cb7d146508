/*
 * core/base/mpi: the one place reclab talks to MPI (OpenMPI from Debian). Every other file
 * calls these functions unconditionally: in a build without MPI (RECLAB_MPI=OFF), or in a
 * process not started by mpirun/srun, there is one rank and every collective is a copy or a
 * no-op. Under `mpirun -np N reclab run x.lua` every rank runs the same script; rank 0 alone
 * holds the session store and prints.
 *
 *     rlab_err err = {0};
 *     rlab_mpi_init(&argc, &argv, &err);           // main only; no-op outside mpirun
 *     double s[2] = {loss_sum, weight_sum};
 *     if (rlab_mpi_allreduce_f64(s, 2, RLAB_MPI_SUM, &err)) ...  // s now summed over ranks
 *     if (rlab_mpi_rank() == 0) printf("%g\n", s[0] / s[1]);
 *     rlab_mpi_finalize(rc != 0);                 // main only; aborts the job on failure
 *
 * Faults: the communicator uses MPI_ERRORS_RETURN, so a failed MPI call is an RLAB_ENET error
 * naming the call and this rank. Every collective is posted non-blocking and waited for with a
 * deadline ($RECLAB_MPI_TIMEOUT seconds, default 300): a rank that died or stopped answering
 * makes the others fail with "timed out" instead of hanging; main then ends the whole job
 * with rlab_mpi_finalize(1) (MPI_Abort). Collectives must be called by every rank in the same
 * order, never concurrently from two threads of a rank. Counters of the bytes this rank sent
 * (rlab_mpi_bytes) feed bench/run mpi.
 */
#ifndef RLAB_BASE_MPI_H
#define RLAB_BASE_MPI_H

#include "base/base.h"

enum { RLAB_MPI_SUM, RLAB_MPI_MAX, RLAB_MPI_MIN };

/* Start MPI when this process was launched by an MPI starter (mpirun / mpiexec / srun set
 * OMPI_COMM_WORLD_SIZE, PMI_SIZE or PMIX_RANK); otherwise stay single-rank without touching
 * MPI. Call once, from main, before any thread starts. RLAB_ENET when MPI_Init fails;
 * RLAB_ESTATE in a build without MPI started as one of several processes. */
RLAB_API int rlab_mpi_init(int *argc, char ***argv, rlab_err *err);
/* End MPI (no-op when not started). failed != 0 ends every rank of the job (MPI_Abort) so a
 * failure on one rank never leaves the others waiting. */
RLAB_API void rlab_mpi_finalize(int failed);

/* Async-signal-safe: the launcher is ending the job (main's SIGTERM handler calls it: mpirun
 * sends SIGTERM to every rank when one dies). Every collective, waiting or next, then fails
 * with RLAB_ENET "the job is being ended", so the running command fails and its run is marked
 * failed before the launcher's SIGKILL. */
RLAB_API void rlab_mpi_note_end(void);

/* This process's rank and the number of ranks that take part in collectives (0 and 1 without
 * MPI, and inside a local scope). Thread-safe. */
RLAB_API int rlab_mpi_rank(void);
RLAB_API int rlab_mpi_size(void);
/* The rank in the whole job and the job's size, local scope or not (who prints, who holds the
 * store). */
RLAB_API int rlab_mpi_world_rank(void);
RLAB_API int rlab_mpi_world_size(void);
/* A local scope (nestable): until the matching _end, this rank works alone, as a job of one
 * (rank 0 of 1: collectives are copies, training is not split). For independent runs spread
 * over ranks (reclab.mpi.sweep). */
RLAB_API void rlab_mpi_local_begin(void);
RLAB_API void rlab_mpi_local_end(void);
/* 1 when the build has MPI (RECLAB_MPI=ON), else 0. */
RLAB_API int rlab_mpi_built(void);
/* "Open MPI v4.1.4 ..." (the library's own version string) or "no MPI support". Static. */
RLAB_API const char *rlab_mpi_library(void);

/* Collectives (every rank calls them, same order). op: RLAB_MPI_SUM / _MAX / _MIN. OpenMPI's
 * allreduce algorithms give every rank the same bits (replicated parameters never drift
 * apart; tests/mpi checks it on trained models). */
RLAB_API int rlab_mpi_barrier(rlab_err *err);
/* A barrier with its own deadline: seconds <= 0 waits until every rank arrives or the job is
 * being ended (rlab_mpi_note_end), for phases whose length legitimately differs between ranks
 * (a sweep's jobs, rank 0's own work at the end of a script). */
RLAB_API int rlab_mpi_barrier_timeout(double seconds, rlab_err *err);
/* The end of a script (collective over the whole job): every rank says it has arrived and
 * waits at most `seconds` (<= 0: $RECLAB_MPI_END_TIMEOUT, else $RECLAB_MPI_TIMEOUT, else 300)
 * for the others, so that a rank stuck in an endless loop cannot hang the job. Rank 0 waits
 * for every rank's word; on the deadline it fails (RLAB_ENET) with a message naming
 * the ranks that did not arrive (the caller ends the job: rlab_mpi_finalize(1)). The others
 * wait for rank 0's release; without it by the deadline, they fail naming rank 0.
 * Point-to-point messages (tags of their own), not a collective: rank 0 learns who is late. */
RLAB_API int rlab_mpi_end_barrier(double seconds, rlab_err *err);
RLAB_API int rlab_mpi_allreduce_f64(double *buf, int64_t n, int op, rlab_err *err);
RLAB_API int rlab_mpi_allreduce_i64(int64_t *buf, int64_t n, int op, rlab_err *err);
/* Sum n floats over ranks in place, in buckets of at most `bucket` floats (0 = 1 Mi floats)
 * so large blocks travel while the next is summed. */
RLAB_API int rlab_mpi_allreduce_f32(float *buf, int64_t n, int64_t bucket, rlab_err *err);
/* Non-blocking sum of n floats over ranks in place (MPI_Iallreduce), for overlapping an
 * exchange with computation (model/fit.c: the gradient buckets during the backward). buf must
 * stay untouched until rlab_mpi_wait. *rq is NULL with one rank (nothing to wait for).
 * rlab_mpi_test lets MPI progress it (OpenMPI moves a non-blocking collective on only inside
 * MPI calls) and returns 1 once it has completed; rlab_mpi_wait waits for it with the
 * deadline of every collective and frees it (NULL: no-op). */
typedef struct rlab_mpi_req rlab_mpi_req;
RLAB_API int rlab_mpi_iallreduce_f32(float *buf, int64_t n, rlab_mpi_req **rq, rlab_err *err);
RLAB_API int rlab_mpi_test(rlab_mpi_req *rq);
RLAB_API int rlab_mpi_wait(rlab_mpi_req *rq, rlab_err *err);
/* Broadcast nbytes of buf from root. */
RLAB_API int rlab_mpi_bcast(void *buf, int64_t nbytes, int root, rlab_err *err);
/* Every rank sends nbytes of send; *recv (the caller's, free with rlab_free) receives the
 * concatenation in rank order and counts[r] / offs[r] (arrays of rlab_mpi_size() entries the
 * caller provides) the bytes from rank r and where they start. */
RLAB_API int rlab_mpi_allgatherv(const void *send, int64_t nbytes, void **recv, int64_t *counts,
                                 int64_t *offs, rlab_err *err);
/* Personalised exchange: send holds, for each rank r in order, scounts[r] bytes for r; *recv
 * (caller frees with rlab_free) receives in rank order rcounts[r] bytes from r (rcounts and
 * roffs: caller's arrays of size entries). MPI_Alltoallv underneath. */
RLAB_API int rlab_mpi_alltoallv(const void *send, const int64_t *scounts, void **recv,
                                int64_t *rcounts, int64_t *roffs, rlab_err *err);

/* Bytes this rank has sent through the collectives above since start (payload only, counted
 * as each algorithm-independent lower bound: an allreduce of n bytes counts n). Thread-safe
 * to read. rlab_mpi_bytes_reset sets it to 0. */
RLAB_API uint64_t rlab_mpi_bytes(void);
/* Seconds this rank spent waiting for collectives to complete (communication plus waiting
 * for slower peers). rlab_mpi_bytes_reset zeroes both counters. */
RLAB_API double rlab_mpi_wait_seconds(void);
RLAB_API void rlab_mpi_bytes_reset(void);

/* The range [*lo, *hi) of n items this rank owns when n is split into size contiguous,
 * near-equal shards (the first n % size ranks get one more). */
RLAB_API void rlab_mpi_shard(int64_t n, int64_t *lo, int64_t *hi);

#endif /* RLAB_BASE_MPI_H */
