/*
 * core/host/job.c: jobs. Two worker threads each run their lane's queued commands in FIFO
 * order: the job worker the long commands, the side worker the short RLAB_CMD_SIDE ones (a
 * query, a data load), so an `sql` query runs while a model trains. Sync runs execute on the
 * caller's thread but are listed too, so they can be cancelled and shown. All job fields that
 * change after submission are read and written under host->mu, except the cancel flag (atomic,
 * polled by running commands).
 */
#include "host/host_internal.h"

#include <stdio.h>
#include <string.h>

const char *rlab_job_state_name(rlab_job_state s)
{
    switch (s) {
    case RLAB_JOB_QUEUED:
        return "queued";
    case RLAB_JOB_RUNNING:
        return "running";
    case RLAB_JOB_DONE:
        return "done";
    case RLAB_JOB_FAILED:
        return "failed";
    case RLAB_JOB_CANCELLED:
        return "cancelled";
    }
    return "?";
}

static int finished(const rlab_job *j)
{
    return j->state == RLAB_JOB_DONE || j->state == RLAB_JOB_FAILED ||
           j->state == RLAB_JOB_CANCELLED;
}

rlab_job *rlab__job_new(rlab_host *h, rlab_args *args, int sync, rlab_err *err)
{
    (void)h;
    rlab_job *j = rlab_calloc(1, sizeof *j);
    if (!j) {
        rlab_args_free(args);
        rlab_errf(err, RLAB_ENOMEM, "out of memory creating a job");
        return NULL;
    }
    j->args = args;
    j->cmd = (const rlab_cmd_rec *)(const void *)rlab_args_cmd(args); /* ref is first member */
    j->sync = sync;
    j->lane = (j->cmd->ref.cmd->flags & RLAB_CMD_SIDE) ? RLAB_LANE_SIDE : RLAB_LANE_JOB;
    j->state = sync ? RLAB_JOB_RUNNING : RLAB_JOB_QUEUED;
    atomic_init(&j->cancel, 0);
    j->queued_at = rlab_now();
    return j;
}

void rlab__job_free(rlab_job *j)
{
    if (!j)
        return;
    rlab_args_free(j->args);
    rlab_result_free(j->res);
    rlab_free(j);
}

/* Append under the lock and assign an id. */
static void link_job(rlab_host *h, rlab_job *j)
{
    j->id = h->next_job_id++;
    rlab_job **pp = &h->jobs;
    while (*pp)
        pp = &(*pp)->next;
    *pp = j;
}

static void fill_info(const rlab_job *j, rlab_job_info *o);

/* Keep a finished job's snapshot for `jobs` (under the lock): submitted jobs, and sync runs
 * that recorded a run or were started by another job (quick commands are left out). */
static void keep_finished(rlab_host *h, const rlab_job *j)
{
    if (j->sync && j->run_id <= 0 && !j->outer)
        return;
    int slot = (h->kept_head + h->nkept) % RLAB_JOBS_KEPT;
    if (h->nkept == RLAB_JOBS_KEPT)
        h->kept_head = (h->kept_head + 1) % RLAB_JOBS_KEPT;
    else
        h->nkept++;
    fill_info(j, &h->kept[slot]);
}

static void unlink_job(rlab_host *h, rlab_job *j)
{
    if (finished(j))
        keep_finished(h, j);
    for (rlab_job **pp = &h->jobs; *pp; pp = &(*pp)->next)
        if (*pp == j) {
            *pp = j->next;
            j->next = NULL;
            return;
        }
}

static rlab_job *find_job(rlab_host *h, int id)
{
    for (rlab_job *j = h->jobs; j; j = j->next)
        if (j->id == id)
            return j;
    return NULL;
}

static void *worker_main(void *arg)
{
    rlab_worker *w = arg;
    rlab_host *h = w->host;
    pthread_mutex_lock(&h->mu);
    for (;;) {
        rlab_job *j = NULL;
        for (rlab_job *x = h->jobs; x; x = x->next)
            if (!x->sync && x->lane == w->lane && x->announced && x->state == RLAB_JOB_QUEUED) {
                j = x;
                break;
            }
        if (!j) {
            if (h->stopping)
                break;
            pthread_cond_wait(&h->cv, &h->mu);
            continue;
        }
        j->state = RLAB_JOB_RUNNING;
        j->started_at = rlab_now();
        pthread_cond_broadcast(&h->cv);
        pthread_mutex_unlock(&h->mu);
        rlab__run_job(h, j); /* publishes the final state and broadcasts */
        pthread_mutex_lock(&h->mu);
    }
    pthread_mutex_unlock(&h->mu);
    rlab_db_close(w->db); /* the worker's own store connection */
    w->db = NULL;
    return NULL;
}

int rlab_host_submit_args(rlab_host *h, rlab_args *args, int *job_id, rlab_err *err)
{
    if (job_id)
        *job_id = 0;
    if (!h || !args) {
        rlab_args_free(args);
        return rlab_errf(err, RLAB_EINVAL, "submit: no host or arguments");
    }
    int rc = rlab_args_finish(args, err);
    if (rc) {
        rlab_args_free(args);
        return rc;
    }
    rlab_job *j = rlab__job_new(h, args, 0, err);
    if (!j)
        return RLAB_ENOMEM;
    pthread_mutex_lock(&h->mu);
    if (h->stopping) {
        pthread_mutex_unlock(&h->mu);
        rlab__job_free(j);
        return rlab_errf(err, RLAB_ESTATE, "the host is shutting down");
    }
    rlab_worker *w = &h->workers[j->lane];
    if (!w->started) {
        w->host = h;
        w->lane = j->lane;
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            pthread_mutex_unlock(&h->mu);
            rlab__job_free(j);
            return rlab_errf(err, RLAB_ESTATE, "cannot start the worker thread");
        }
        w->started = 1;
    }
    link_job(h, j);
    int id = j->id;
    pthread_mutex_unlock(&h->mu);
    if (job_id)
        *job_id = id;
    /* QUEUED goes out before a worker may take the job, so a listener sees a job's events in
     * order (a quick job could otherwise be done before it was announced) */
    char cmd[144];
    snprintf(cmd, sizeof cmd, "%s", rlab_args_cmd(args)->full);
    rlab_event ev = {.type = RLAB_EV_QUEUED, .job_id = id, .cmd = cmd};
    rlab__emit(h, &ev);
    pthread_mutex_lock(&h->mu);
    rlab_job *x = find_job(h, id); /* by id: j may be gone (cancelled and collected) */
    if (x)
        x->announced = 1;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
    return RLAB_OK;
}

int rlab_host_submit(rlab_host *h, const char *line, int *job_id, rlab_err *err)
{
    rlab_args *args = NULL;
    if (job_id)
        *job_id = 0;
    int rc = rlab_host_parse(h, line, &args, err);
    if (rc)
        return rc;
    return rlab_host_submit_args(h, args, job_id, err);
}

int rlab_host_run_args(rlab_host *h, rlab_args *args, rlab_result **res, rlab_err *err)
{
    if (res)
        *res = NULL;
    if (!h || !args) {
        rlab_args_free(args);
        return rlab_errf(err, RLAB_EINVAL, "run: no host or arguments");
    }
    int rc = rlab_args_finish(args, err);
    if (rc) {
        rlab_args_free(args);
        return rc;
    }
    rlab_job *j = rlab__job_new(h, args, 1, err);
    if (!j)
        return RLAB_ENOMEM;
    j->outer = rlab__current_job(); /* a command called by a running job (a lua.run script) */
    pthread_mutex_lock(&h->mu);
    link_job(h, j);
    j->started_at = rlab_now();
    pthread_mutex_unlock(&h->mu);
    rlab__run_job(h, j);
    pthread_mutex_lock(&h->mu);
    unlink_job(h, j);
    pthread_mutex_unlock(&h->mu);
    rc = j->status;
    if (rc)
        rlab_errf(err, rc, "%s", j->message);
    if (res) {
        *res = j->res;
        j->res = NULL;
    }
    rlab__job_free(j);
    return rc;
}

int rlab_host_run_sync(rlab_host *h, const char *line, rlab_result **res, rlab_err *err)
{
    rlab_args *args = NULL;
    if (res)
        *res = NULL;
    int rc = rlab_host_parse(h, line, &args, err);
    if (rc)
        return rc;
    return rlab_host_run_args(h, args, res, err);
}

/* Finish a queued job as cancelled without running it (under the lock). */
static void cancel_queued(rlab_host *h, rlab_job *j, rlab_event *ev, char *msg, size_t size)
{
    j->state = RLAB_JOB_CANCELLED;
    j->status = RLAB_ECANCELED;
    j->ended_at = rlab_now();
    snprintf(j->message, sizeof j->message, "%s: cancelled", j->cmd->full);
    snprintf(msg, size, "%s", j->message);
    *ev = (rlab_event){.type = RLAB_EV_DONE,
                       .job_id = j->id,
                       .cmd = j->cmd->full,
                       .status = RLAB_ECANCELED,
                       .text = msg};
    pthread_cond_broadcast(&h->cv);
}

int rlab_host_cancel(rlab_host *h, int job_id)
{
    rlab_event ev = {0};
    char msg[320];
    char cmd[144];
    pthread_mutex_lock(&h->mu);
    rlab_job *j = find_job(h, job_id);
    if (!j || finished(j)) {
        pthread_mutex_unlock(&h->mu);
        return RLAB_ENOTFOUND;
    }
    atomic_store(&j->cancel, 1);
    if (j->state == RLAB_JOB_QUEUED) {
        cancel_queued(h, j, &ev, msg, sizeof msg);
        snprintf(cmd, sizeof cmd, "%s", j->cmd->full);
        ev.cmd = cmd;
    }
    pthread_mutex_unlock(&h->mu);
    if (ev.type)
        rlab__emit(h, &ev);
    return RLAB_OK;
}

int rlab_host_cancel_all(rlab_host *h)
{
    int n = 0;
    for (;;) {
        /* one at a time, so DONE events for queued jobs are emitted outside the lock */
        int id = 0;
        pthread_mutex_lock(&h->mu);
        for (rlab_job *j = h->jobs; j; j = j->next)
            if (!finished(j) && !atomic_load(&j->cancel)) {
                id = j->id;
                break;
            }
        pthread_mutex_unlock(&h->mu);
        if (!id)
            return n;
        if (rlab_host_cancel(h, id) == RLAB_OK)
            n++;
    }
}

static void fill_info(const rlab_job *j, rlab_job_info *o)
{
    memset(o, 0, sizeof *o);
    o->id = j->id;
    snprintf(o->cmd, sizeof o->cmd, "%s", j->cmd->full);
    o->state = j->state;
    o->status = j->status;
    o->step = j->step;
    o->total = j->total;
    memcpy(o->label, j->label, sizeof o->label);
    memcpy(o->message, j->message, sizeof o->message);
    o->queued_at = j->queued_at;
    o->started_at = j->started_at;
    o->ended_at = j->ended_at;
    o->run_id = j->run_id;
    o->outer = j->outer ? j->outer->id : 0;
}

int rlab_host_job_info(rlab_host *h, int job_id, rlab_job_info *out)
{
    pthread_mutex_lock(&h->mu);
    rlab_job *j = find_job(h, job_id);
    if (j)
        fill_info(j, out);
    pthread_mutex_unlock(&h->mu);
    return j ? RLAB_OK : RLAB_ENOTFOUND;
}

int rlab_host_jobs(rlab_host *h, rlab_job_info *out, int max)
{
    int n = 0;
    pthread_mutex_lock(&h->mu);
    for (rlab_job *j = h->jobs; j && n < max; j = j->next)
        fill_info(j, &out[n++]);
    pthread_mutex_unlock(&h->mu);
    return n;
}

int rlab_host_jobs_finished(rlab_host *h, rlab_job_info *out, int max)
{
    int n = 0;
    pthread_mutex_lock(&h->mu);
    for (int i = h->nkept - 1; i >= 0 && n < max; i--)
        out[n++] = h->kept[(h->kept_head + i) % RLAB_JOBS_KEPT];
    pthread_mutex_unlock(&h->mu);
    return n;
}

int rlab_host_busy(rlab_host *h)
{
    int n = 0;
    pthread_mutex_lock(&h->mu);
    for (rlab_job *j = h->jobs; j; j = j->next)
        n += !finished(j);
    pthread_mutex_unlock(&h->mu);
    return n;
}

int rlab_host_wait(rlab_host *h, int job_id, rlab_result **res, rlab_err *err)
{
    if (res)
        *res = NULL;
    pthread_mutex_lock(&h->mu);
    rlab_job *j = find_job(h, job_id);
    if (!j || j->sync) {
        pthread_mutex_unlock(&h->mu);
        return rlab_errf(err, RLAB_ENOTFOUND, "no job %d", job_id);
    }
    while (!finished(j))
        pthread_cond_wait(&h->cv, &h->mu);
    unlink_job(h, j);
    pthread_mutex_unlock(&h->mu);
    int rc = j->status;
    if (rc)
        rlab_errf(err, rc, "%s", j->message);
    if (res) {
        *res = j->res;
        j->res = NULL;
    }
    rlab__job_free(j);
    return rc;
}

int rlab__plugin_busy(rlab_host *h, const rlab_plugin_rec *p)
{
    int busy = 0;
    pthread_mutex_lock(&h->mu);
    for (rlab_job *j = h->jobs; j; j = j->next)
        if (j->cmd->plugin == p && !finished(j))
            busy = 1;
    pthread_mutex_unlock(&h->mu);
    return busy;
}

void rlab__jobs_shutdown(rlab_host *h)
{
    rlab_host_cancel_all(h);
    pthread_mutex_lock(&h->mu);
    h->stopping = 1;
    pthread_cond_broadcast(&h->cv);
    int started[RLAB_NLANES];
    for (int i = 0; i < RLAB_NLANES; i++)
        started[i] = h->workers[i].started;
    pthread_mutex_unlock(&h->mu);
    for (int i = 0; i < RLAB_NLANES; i++)
        if (started[i])
            pthread_join(h->workers[i].thread, NULL);
    /* the worker is gone: free whatever was never collected (sync runs are owned by their
     * callers, which must have returned before the host is freed) */
    pthread_mutex_lock(&h->mu);
    rlab_job *j = h->jobs;
    h->jobs = NULL;
    pthread_mutex_unlock(&h->mu);
    while (j) {
        rlab_job *next = j->next;
        rlab__job_free(j);
        j = next;
    }
}
