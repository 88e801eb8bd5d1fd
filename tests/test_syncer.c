/* test_syncer.c: the syncer (broker/syncer.h): a ticket is reported durable only by a
 * sync that began after it was given, a sync that fails stops the syncer and names the
 * file, settle waits for every ticket, and destroy syncs what is left.  The sync itself
 * is the test's own where the test must hold it; the default (fdatasync) on a file in
 * the test's directory. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "syncer.h"
#include "tmpdir.h"

#define WAIT_MS 10000          /* a deadline, never expected to be reached */

static char dir[HN_PATH_MAX];
static char file[PATH_MAX + 16];

static void setup(void)
{
    cr_assert_eq(hn_tmpdir_new("syncer", dir), 0);
    snprintf(file, sizeof file, "%s/store.db-wal", dir);
    int fd = open(file, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, "frames", 6), 6);
    close(fd);
}

static void teardown(void)
{
    hn_tmpdir_remove(dir);
}

TestSuite(syncer, .init = setup, .fini = teardown, .timeout = 60);

/* A sync the test holds: each call counts, then waits until the test lets it go. */
typedef struct gate {
    pthread_mutex_t lock;
    pthread_cond_t  moved;
    int             calls;     /* syncs begun */
    int             released;  /* syncs the test let end */
    int             fail_with; /* errno returned by the syncs, 0: none */
} gate_t;

static gate_t gate = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0 };

static int gated_sync(int fd, void *ctx)
{
    gate_t *g = ctx;
    (void)fd;
    pthread_mutex_lock(&g->lock);
    int me = ++g->calls;
    pthread_cond_broadcast(&g->moved);
    while (g->released < me)
        pthread_cond_wait(&g->moved, &g->lock);
    int rc = g->fail_with;
    pthread_mutex_unlock(&g->lock);
    return rc;
}

/* Waits, at most WAIT_MS, until `calls` syncs have begun. */
static void wait_calls(gate_t *g, int calls)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += WAIT_MS / 1000;
    pthread_mutex_lock(&g->lock);
    int rc = 0;
    while (g->calls < calls && rc == 0)
        rc = pthread_cond_timedwait(&g->moved, &g->lock, &until);
    int begun = g->calls;
    pthread_mutex_unlock(&g->lock);
    cr_assert_geq(begun, calls, "%d syncs begun within %d ms, %d expected", begun, WAIT_MS,
                  calls);
}

static void release(gate_t *g)
{
    pthread_mutex_lock(&g->lock);
    g->released++;
    pthread_cond_broadcast(&g->moved);
    pthread_mutex_unlock(&g->lock);
}

/* Lets every sync, begun or to come, end at once. */
static void release_all(gate_t *g)
{
    pthread_mutex_lock(&g->lock);
    g->released = INT_MAX;
    pthread_cond_broadcast(&g->moved);
    pthread_mutex_unlock(&g->lock);
}

static int gate_calls(gate_t *g)
{
    pthread_mutex_lock(&g->lock);
    int calls = g->calls;
    pthread_mutex_unlock(&g->lock);
    return calls;
}

/* True if fd becomes readable within ms. */
static bool readable(int fd, int ms)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    return poll(&p, 1, ms) == 1 && (p.revents & POLLIN);
}

Test(syncer, a_ticket_is_durable_only_once_a_sync_begun_after_it_has_ended)
{
    ld_error_t err;
    bk_syncer_t *s = bk_syncer_new(file, gated_sync, &gate, &err);
    cr_assert_not_null(s, "%s", err.msg);
    uint64_t durable = 99;
    cr_assert_eq(bk_syncer_written(s), 0);

    uint64_t t1 = bk_syncer_wrote(s);
    cr_assert_eq(t1, 1);
    wait_calls(&gate, 1);                  /* the first sync is under way, held */
    uint64_t t2 = bk_syncer_wrote(s);
    cr_assert_eq(t2, 2);
    cr_assert_eq(bk_syncer_written(s), 2);
    cr_assert_not(readable(bk_syncer_fd(s), 0), "nothing ended yet");
    cr_assert_eq(bk_syncer_synced(s, &durable, &err), 0, "%s", err.msg);
    cr_assert_eq(durable, 0, "no ticket is durable while its sync is held");

    release(&gate);
    cr_assert(readable(bk_syncer_fd(s), WAIT_MS));
    cr_assert_eq(bk_syncer_synced(s, &durable, &err), 0, "%s", err.msg);
    cr_assert_eq(durable, 1, "the first sync began before ticket 2 was given");
    cr_assert_not(readable(bk_syncer_fd(s), 0), "synced emptied the descriptor");

    wait_calls(&gate, 2);                  /* a second sync follows for ticket 2 */
    release(&gate);
    cr_assert(readable(bk_syncer_fd(s), WAIT_MS));
    cr_assert_eq(bk_syncer_synced(s, &durable, &err), 0, "%s", err.msg);
    cr_assert_eq(durable, 2);
    bk_syncer_destroy(&s);
    cr_assert_null(s);
    cr_assert_eq(gate.calls, 2, "nothing was left to sync at destroy");
}

Test(syncer, settle_waits_until_every_ticket_written_is_durable)
{
    ld_error_t err;
    bk_syncer_t *s = bk_syncer_new(file, gated_sync, &gate, &err);
    cr_assert_not_null(s, "%s", err.msg);
    bk_syncer_wrote(s);
    wait_calls(&gate, 1);                  /* the first sync is under way, held */
    for (int i = 0; i < 4; i++)
        bk_syncer_wrote(s);
    release_all(&gate);
    cr_assert_eq(bk_syncer_settle(s, &err), 0, "%s", err.msg);
    uint64_t durable = 0;
    cr_assert_eq(bk_syncer_synced(s, &durable, &err), 0, "%s", err.msg);
    cr_assert_eq(durable, 5);
    int after_settle = gate_calls(&gate);
    cr_assert_geq(after_settle, 1);
    cr_assert_leq(after_settle, 5, "writes made during a sync share the next one");
    cr_assert_eq(after_settle, 2, "the four written during the first sync share the second");
    bk_syncer_destroy(&s);
}

/* A sync that only counts. */
static int counted_sync(int fd, void *ctx)
{
    int *calls = ctx;
    (void)fd;
    __atomic_add_fetch(calls, 1, __ATOMIC_SEQ_CST);
    return 0;
}

Test(syncer, destroy_syncs_what_was_written_before_it_returns)
{
    ld_error_t err;
    int calls = 0;
    bk_syncer_t *s = bk_syncer_new(file, counted_sync, &calls, &err);
    cr_assert_not_null(s, "%s", err.msg);
    bk_syncer_wrote(s);
    bk_syncer_destroy(&s);
    cr_assert_geq(calls, 1);
}

Test(syncer, a_failed_sync_fails_every_later_call_naming_the_file)
{
    ld_error_t err;
    gate.fail_with = EIO;
    bk_syncer_t *s = bk_syncer_new(file, gated_sync, &gate, &err);
    cr_assert_not_null(s, "%s", err.msg);
    bk_syncer_wrote(s);
    release(&gate);
    cr_assert(readable(bk_syncer_fd(s), WAIT_MS));
    uint64_t durable = 7;
    ld_error_clear(&err);
    cr_assert_eq(bk_syncer_synced(s, &durable, &err), LD_EIO);
    cr_assert_eq(durable, 0, "the failed sync made nothing durable");
    cr_assert_not_null(strstr(err.msg, file), "%s", err.msg);
    cr_assert_not_null(strstr(err.msg, strerror(EIO)), "%s", err.msg);
    bk_syncer_wrote(s);                    /* nothing more is synced: settle does not wait */
    ld_error_clear(&err);
    cr_assert_eq(bk_syncer_settle(s, &err), LD_EIO);
    cr_assert_not_null(strstr(err.msg, file), "%s", err.msg);
    bk_syncer_destroy(&s);
    cr_assert_eq(gate.calls, 1, "no sync after the one that failed");
}

Test(syncer, the_default_sync_makes_a_real_file_durable)
{
    ld_error_t err;
    bk_syncer_t *s = bk_syncer_new(file, NULL, NULL, &err);
    cr_assert_not_null(s, "%s", err.msg);
    bk_syncer_wrote(s);
    bk_syncer_wrote(s);
    cr_assert_eq(bk_syncer_settle(s, &err), 0, "%s", err.msg);
    uint64_t durable = 0;
    cr_assert_eq(bk_syncer_synced(s, &durable, &err), 0, "%s", err.msg);
    cr_assert_eq(durable, 2);
    bk_syncer_destroy(&s);
}

Test(syncer, a_file_that_is_not_there_is_an_error_naming_it)
{
    ld_error_t err;
    char missing[PATH_MAX + 32];
    snprintf(missing, sizeof missing, "%s/gone.db-wal", dir);
    bk_syncer_t *s = bk_syncer_new(missing, NULL, NULL, &err);
    cr_assert_not_null(s, "%s", err.msg);
    bk_syncer_wrote(s);
    ld_error_clear(&err);
    cr_assert_eq(bk_syncer_settle(s, &err), LD_EIO);
    cr_assert_not_null(strstr(err.msg, missing), "%s", err.msg);
    cr_assert_not_null(strstr(err.msg, strerror(ENOENT)), "%s", err.msg);
    bk_syncer_destroy(&s);
}
