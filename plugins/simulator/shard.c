/*
 * plugins/simulator/shard.c: the round's decisions shared out over MPI ranks (base/mpi.h).
 *
 * Under `mpirun -np N`, every rank holds the whole simulation (agents, graph, memories) and
 * steps the same rounds. The costly part of a round, the agents' decisions (the offline policy
 * or one language-model call per agent: sim_decide), is split: each batch of decisions the
 * round makes (activity, page steps, feelings, social actions) is cut into N contiguous shards,
 * rank r decides shard r, and the answers are exchanged (one all-gather per batch) so that
 * every rank applies every decision (posts reaching followers, chats changing both partners)
 * in the one-process order. Each decision draws from its own seeded generator
 * (sim_rng(phase, round, agent, step)), so the result is the one-process simulation, event for
 * event, whatever N. The language-model counters of the round are summed over ranks. Rank 0
 * alone writes events (it alone has the store).
 *
 * Not done: agent state itself is not partitioned (memory grows with the agents on every
 * rank), and the recommender's score-all over the visitors runs on every rank.
 */
#define SIM_INTERNAL
#include "sim.h"

#include "base/mpi.h"

#include <string.h>

/* one answer on the wire: choice, target, hours, liked, by, text length, then the text */
typedef struct wire {
    int32_t choice, target;
    float hours;
    int32_t liked;
    int32_t by;
    int32_t ntext; /* -1 = NULL */
} wire;

int sim_decide_all(sim *s, sim_dec *d, int n, rlab_err *err)
{
    const int P = rlab_mpi_size();
    if (P == 1 || n <= 0)
        return sim_decide(s, d, n, err);
    int64_t lo, hi;
    rlab_mpi_shard(n, &lo, &hi);
    const int64_t c0 = s->acc_llm_calls, f0 = s->acc_llm_fallbacks, d0 = s->acc_llm_decisions;
    int rc = sim_decide(s, d + lo, (int)(hi - lo), err);
    /* in step: a failure anywhere fails every rank */
    int64_t st[5] = {rc, s->acc_llm_calls - c0, s->acc_llm_fallbacks - f0,
                     s->acc_llm_decisions - d0, s->llm_down};
    rlab_err e2 = {0};
    if (rlab_mpi_allreduce_i64(st, 5, RLAB_MPI_MAX, &e2) == RLAB_OK && st[0] == 0) {
        int64_t sums[3] = {s->acc_llm_calls - c0, s->acc_llm_fallbacks - f0,
                           s->acc_llm_decisions - d0};
        if (rlab_mpi_allreduce_i64(sums, 3, RLAB_MPI_SUM, &e2) == RLAB_OK) {
            s->acc_llm_calls = c0 + sums[0];
            s->acc_llm_fallbacks = f0 + sums[1];
            s->acc_llm_decisions = d0 + sums[2];
            s->llm_down = (int)st[4];
        }
    }
    if (rc)
        return rc;
    if (e2.code) {
        *err = e2;
        return e2.code;
    }
    if (st[0])
        return rlab_errf(err, (int)st[0], "simulator: a decision failed on another MPI rank");
    size_t bytes = 0;
    for (int64_t k = lo; k < hi; k++)
        bytes += sizeof(wire) + (d[k].text ? strlen(d[k].text) : 0);
    unsigned char *buf = rlab_malloc(bytes + 1), *q = buf;
    int64_t *cnt = rlab_malloc(2 * (size_t)P * sizeof *cnt);
    void *all = NULL;
    if (!buf || !cnt) {
        rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
        goto out;
    }
    for (int64_t k = lo; k < hi; k++) {
        wire w = {d[k].choice, d[k].target, d[k].hours,
                  d[k].liked,  d[k].by,     d[k].text ? (int32_t)strlen(d[k].text) : -1};
        memcpy(q, &w, sizeof w);
        q += sizeof w;
        if (w.ntext > 0) {
            memcpy(q, d[k].text, (size_t)w.ntext);
            q += w.ntext;
        }
    }
    if ((rc = rlab_mpi_allgatherv(buf, (int64_t)bytes, &all, cnt, cnt + P, err)))
        goto out;
    /* the other ranks' answers, in decision order (rank r holds shard r) */
    const unsigned char *p = all;
    for (int64_t k = 0; k < n; k++) {
        wire w;
        memcpy(&w, p, sizeof w);
        p += sizeof w;
        if (k < lo || k >= hi) {
            d[k].choice = w.choice;
            d[k].target = w.target;
            d[k].hours = w.hours;
            d[k].liked = w.liked;
            d[k].by = (uint8_t)w.by;
            rlab_free(d[k].text);
            d[k].text = NULL;
            if (w.ntext >= 0) {
                d[k].text = rlab_malloc((size_t)w.ntext + 1);
                if (!d[k].text) {
                    rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
                    goto out;
                }
                memcpy(d[k].text, p, (size_t)w.ntext);
                d[k].text[w.ntext] = '\0';
            }
        }
        p += w.ntext > 0 ? w.ntext : 0;
    }
out:
    rlab_free(all);
    rlab_free(cnt);
    rlab_free(buf);
    return rc;
}
