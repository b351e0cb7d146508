/*
 * Liveness locks for runs: byte <run id> of the sidecar "<db>-runs" is write-locked with an
 * open-file-description lock (F_OFD_SETLK, Linux >= 3.15) by the connection owning the run.
 * Why OFD locks and not classic fcntl locks or flock:
 *  - classic POSIX locks belong to the process: they never conflict within one process, so
 *    a second connection in the same program would see a live run's byte as free, and
 *    closing any descriptor of the file drops them all (SQLite itself fights this);
 *  - flock locks the whole file, so one lock file per run would be needed;
 *  - OFD locks are byte-range, conflict between any two open file descriptions (even in one
 *    process), and are dropped by the kernel when the owning process dies, however it dies.
 * The check opens a fresh descriptor, so it also sees locks held by its own connection.
 */
#define _GNU_SOURCE 1 /* F_OFD_SETLK / F_OFD_GETLK */

#include "store/store_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#ifndef F_OFD_SETLK
#error "the session store needs open-file-description locks (Linux F_OFD_SETLK)"
#endif

int rlab_runlock_open(const char *lock_path, rlab_err *err)
{
    int fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        rlab_errf(err, RLAB_EIO, "store: cannot open run lock file %s: %s", lock_path,
                  strerror(errno));
    return fd;
}

static void fill(struct flock *fl, short type, int64_t run_id)
{
    memset(fl, 0, sizeof *fl);
    fl->l_type = type;
    fl->l_whence = SEEK_SET;
    fl->l_start = (off_t)run_id;
    fl->l_len = 1;
    fl->l_pid = 0; /* required for OFD locks */
}

int rlab_runlock_take(int fd, int64_t run_id, rlab_err *err)
{
    struct flock fl;
    fill(&fl, F_WRLCK, run_id);
    if (fcntl(fd, F_OFD_SETLK, &fl) != 0)
        return rlab_errf(err, RLAB_EIO, "store: cannot lock run %lld: %s", (long long)run_id,
                         strerror(errno));
    return RLAB_OK;
}

void rlab_runlock_release(int fd, int64_t run_id)
{
    struct flock fl;
    fill(&fl, F_UNLCK, run_id);
    (void)fcntl(fd, F_OFD_SETLK, &fl);
}

int rlab_runlock_held(const char *lock_path, int64_t run_id, rlab_err *err)
{
    int fd = open(lock_path, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) /* no lock file: nobody can hold a lock */
            return 0;
        rlab_errf(err, RLAB_EIO, "store: cannot open run lock file %s: %s", lock_path,
                  strerror(errno));
        return -1;
    }
    struct flock fl;
    fill(&fl, F_WRLCK, run_id);
    int rc = fcntl(fd, F_OFD_GETLK, &fl);
    int e = errno;
    close(fd);
    if (rc != 0) {
        rlab_errf(err, RLAB_EIO, "store: cannot test run lock %lld: %s", (long long)run_id,
                  strerror(e));
        return -1;
    }
    return fl.l_type != F_UNLCK;
}
