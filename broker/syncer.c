/* syncer.c: a file made durable by a thread of its own (syncer.h).  The lock guards
 * written, durable, failed and stop; the thread alone touches fd. */
#include "syncer.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include "log.h"

struct bk_syncer {
    char           *path;
    bk_sync_fn      sync_fn;       /* NULL: fdatasync, and the directory once */
    void           *sync_ctx;
    int             fd;            /* the file; -1 until the first sync */
    int             event_fd;      /* written each time a sync ends */
    pthread_t       thread;
    bool            started;
    pthread_mutex_t lock;
    pthread_cond_t  work;          /* written moved on, or stop */
    pthread_cond_t  done;          /* durable moved on, or failed */
    uint64_t        written;       /* the last ticket given */
    uint64_t        durable;       /* every ticket up to here is on the disk */
    int             failed;        /* the errno of the sync that failed; 0: none */
    bool            stop;
};

/* fsyncs the directory holding `path`, so that a new file's name is durable too:
 * 0 or an errno value. */
static int sy_sync_dir(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return ENOMEM;
    int rc = 0;
    int dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) != 0)
        rc = errno;
    if (dfd >= 0)
        close(dfd);
    free(copy);
    return rc;
}

/* One sync of the file, opening it the first time: 0 or an errno value. */
static int sy_sync(bk_syncer_t *self)
{
    if (self->fd < 0) {
        self->fd = open(self->path, O_RDWR | O_CLOEXEC);
        if (self->fd < 0)
            return errno;
        if (!self->sync_fn) {
            int rc = sy_sync_dir(self->path);
            if (rc != 0)
                return rc;
        }
    }
    if (self->sync_fn)
        return self->sync_fn(self->fd, self->sync_ctx);
    return fdatasync(self->fd) == 0 ? 0 : errno;
}

static void *sy_thread(void *arg)
{
    bk_syncer_t *self = arg;
    pthread_mutex_lock(&self->lock);
    for (;;) {
        while (!self->stop && self->failed == 0 && self->durable == self->written)
            pthread_cond_wait(&self->work, &self->lock);
        if (self->failed != 0 || self->durable == self->written)
            break;                      /* stopped with nothing left to sync */
        uint64_t target = self->written;
        pthread_mutex_unlock(&self->lock);
        int rc = sy_sync(self);
        pthread_mutex_lock(&self->lock);
        if (rc != 0)
            self->failed = rc;
        else
            self->durable = target;
        uint64_t one = 1;
        if (write(self->event_fd, &one, sizeof one) < 0 && errno != EAGAIN)
            ld_err("syncer: cannot signal %s's sync: %s", self->path, strerror(errno));
        pthread_cond_broadcast(&self->done);
    }
    pthread_mutex_unlock(&self->lock);
    return NULL;
}

bk_syncer_t *bk_syncer_new(const char *path, bk_sync_fn sync_fn, void *sync_ctx,
                           ld_error_t *err)
{
    bk_syncer_t *self = calloc(1, sizeof *self);
    if (!self) {
        ld_error_set(err, LD_ENOMEM, "out of memory for the syncer of %s", path);
        return NULL;
    }
    self->fd = -1;
    self->event_fd = -1;
    self->sync_fn = sync_fn;
    self->sync_ctx = sync_ctx;
    pthread_mutex_init(&self->lock, NULL);
    pthread_cond_init(&self->work, NULL);
    pthread_cond_init(&self->done, NULL);
    self->path = strdup(path);
    if (!self->path) {
        ld_error_set(err, LD_ENOMEM, "out of memory for the syncer of %s", path);
        goto err;
    }
    self->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (self->event_fd < 0) {
        ld_error_set(err, LD_EIO, "syncer of %s: eventfd: %s", path, strerror(errno));
        goto err;
    }
    int rc = pthread_create(&self->thread, NULL, sy_thread, self);
    if (rc != 0) {
        ld_error_set(err, LD_EIO, "syncer of %s: cannot start its thread: %s", path,
                     strerror(rc));
        goto err;
    }
    self->started = true;
    return self;
err:
    bk_syncer_destroy(&self);
    return NULL;
}

void bk_syncer_destroy(bk_syncer_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    bk_syncer_t *self = *self_p;
    if (self->started) {
        /* the thread syncs what is left before it ends */
        pthread_mutex_lock(&self->lock);
        self->stop = true;
        pthread_cond_signal(&self->work);
        pthread_mutex_unlock(&self->lock);
        pthread_join(self->thread, NULL);
        if (self->failed != 0)
            ld_err("%s was not made durable: %s", self->path, strerror(self->failed));
    }
    if (self->fd >= 0)
        close(self->fd);
    if (self->event_fd >= 0)
        close(self->event_fd);
    pthread_cond_destroy(&self->done);
    pthread_cond_destroy(&self->work);
    pthread_mutex_destroy(&self->lock);
    free(self->path);
    free(self);
    *self_p = NULL;
}

uint64_t bk_syncer_wrote(bk_syncer_t *self)
{
    pthread_mutex_lock(&self->lock);
    uint64_t ticket = ++self->written;
    pthread_cond_signal(&self->work);
    pthread_mutex_unlock(&self->lock);
    return ticket;
}

uint64_t bk_syncer_written(const bk_syncer_t *self)
{
    return self->written;       /* only the caller's thread changes it */
}

int bk_syncer_fd(const bk_syncer_t *self)
{
    return self->event_fd;
}

/* *ticket and the outcome, under the lock. */
static int sy_state(bk_syncer_t *self, uint64_t *ticket, ld_error_t *err)
{
    if (ticket)
        *ticket = self->durable;
    if (self->failed != 0)
        return ld_error_set(err, LD_EIO, "cannot make %s durable: %s", self->path,
                            strerror(self->failed));
    return 0;
}

int bk_syncer_synced(bk_syncer_t *self, uint64_t *ticket, ld_error_t *err)
{
    uint64_t count;
    while (read(self->event_fd, &count, sizeof count) == (ssize_t)sizeof count)
        ;                           /* emptied: EAGAIN */
    pthread_mutex_lock(&self->lock);
    int rc = sy_state(self, ticket, err);
    pthread_mutex_unlock(&self->lock);
    return rc;
}

int bk_syncer_settle(bk_syncer_t *self, ld_error_t *err)
{
    pthread_mutex_lock(&self->lock);
    while (self->failed == 0 && self->durable < self->written)
        pthread_cond_wait(&self->done, &self->lock);
    int rc = sy_state(self, NULL, err);
    pthread_mutex_unlock(&self->lock);
    return rc;
}
