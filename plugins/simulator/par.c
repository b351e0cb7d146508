/*
 * plugins/simulator/par.c: the round's per-agent work over threads (sim_par_for).
 *
 * The parts of a round that only read shared state and write their own agent's rows (the
 * recommender's candidate lists, the offline decisions, the offline visits, the agents' watch
 * entropies, a checkpoint's compare in blocks of the image) are cut into s->threads contiguous
 * ranges; the caller runs the first range, one thread each runs the others, and the call
 * returns when all are done (sim_par_for), or every range runs on its own thread while the
 * caller does sequential work, until sim_par_wait (sim_par_start: the offline visits, whose
 * previous chunk's events the caller writes meanwhile). Every per-agent result goes to that
 * agent's slot and every random draw comes from the agent's own generator (sim_rng), so the
 * simulation is the same whatever the number of threads (bench/simulator/sim_digest and test
 * sim.repro.threads check it). Threads are started per call: a round makes about ten such calls,
 * each part at least s->par_min agents (SIM_PAR_MIN, 1,024), so the tens of microseconds a thread
 * costs to start and join are noise; smaller calls run inline.
 */
#define SIM_INTERNAL
#include "sim.h"

#include "base/mpi.h"

#include <pthread.h>
#include <unistd.h>

static void *par_main(void *arg)
{
    par_part *p = arg;
    p->fn(p->s, p->ctx, p->lo, p->hi, p->tid);
    return NULL;
}

int sim_threads_resolve(const sim_config *cfg)
{
    if (cfg->threads > 0)
        return cfg->threads < SIM_MAX_THREADS ? cfg->threads : SIM_MAX_THREADS;
    if (rlab_mpi_size() > 1)
        return 1; /* the ranks are the parallelism */
    long c = sysconf(_SC_NPROCESSORS_ONLN);
    return c < 1 ? 1 : c > SIM_MAX_THREADS ? SIM_MAX_THREADS : (int)c;
}

void sim_par_for(sim *s, int32_t n, int32_t min_part, sim_par_fn fn, void *ctx)
{
    int T = s->threads;
    if (min_part < 1)
        min_part = 1;
    if (T > n / min_part)
        T = n / min_part;
    if (T <= 1) {
        if (n > 0)
            fn(s, ctx, 0, n, 0);
        return;
    }
    par_part part[SIM_MAX_THREADS];
    pthread_t th[SIM_MAX_THREADS];
    int started[SIM_MAX_THREADS] = {0};
    for (int t = 0; t < T; t++)
        part[t] = (par_part){.s = s,
                             .ctx = ctx,
                             .fn = fn,
                             .lo = (int32_t)((int64_t)n * t / T),
                             .hi = (int32_t)((int64_t)n * (t + 1) / T),
                             .tid = t};
    for (int t = 1; t < T; t++)
        started[t] = pthread_create(&th[t], NULL, par_main, &part[t]) == 0;
    par_main(&part[0]);
    for (int t = 1; t < T; t++) {
        if (started[t])
            pthread_join(th[t], NULL);
        else
            par_main(&part[t]); /* no thread: the caller does this range too */
    }
}

void sim_par_start(sim *s, sim_par_job *j, int32_t n, int32_t min_part, sim_par_fn fn, void *ctx)
{
    int T = s->threads;
    if (min_part < 1)
        min_part = 1;
    if (T > n / min_part)
        T = n / min_part;
    if (T < 1)
        T = 1;
    j->T = T;
    for (int t = 0; t < T; t++) {
        j->part[t] = (par_part){.s = s,
                                .ctx = ctx,
                                .fn = fn,
                                .lo = (int32_t)((int64_t)n * t / T),
                                .hi = (int32_t)((int64_t)n * (t + 1) / T),
                                .tid = t};
        j->started[t] = 0;
    }
    if (T == 1 && n < min_part) {
        if (n > 0) /* too small for a thread: now, in the caller */
            par_main(&j->part[0]);
        j->T = 0;
        return;
    }
    for (int t = 0; t < T; t++)
        j->started[t] = pthread_create(&j->th[t], NULL, par_main, &j->part[t]) == 0;
}

void sim_par_wait(sim_par_job *j)
{
    for (int t = 0; t < j->T; t++) {
        if (j->started[t])
            pthread_join(j->th[t], NULL);
        else
            par_main(&j->part[t]); /* no thread: the caller does this range */
    }
    j->T = 0;
}
