/* syncer.h: makes a file durable in a thread of its own, so that the broker reads and
 * stores the next push while the disk flushes the last one.
 *
 * The embedded mailbox store commits with synchronous=NORMAL: a commit is in the
 * write-ahead log, in the OS, but not yet on the disk.  After each commit the store
 * calls bk_syncer_wrote, which gives the commit a ticket (1, 2, 3, ...) and wakes the
 * syncer's thread; the thread calls fdatasync on the log and then reports the highest
 * ticket that sync covers, through a file descriptor the server polls.  A ticket is
 * durable once bk_syncer_synced says so, never before: the thread notes the ticket it
 * will cover before the fdatasync starts, and every write of that commit returned
 * before its ticket was given.  SQLite's log is a chain of checksummed frames, so a
 * crash keeps a prefix of the commits: never a later one without an earlier one.
 *
 * Ownership: the syncer owns its thread, its descriptor of the file (opened on the
 * first sync: the file must exist by then) and its event descriptor.  One thread (the
 * store's) calls everything but the sync itself. */
#ifndef BK_SYNCER_H
#define BK_SYNCER_H

#include <stdint.h>
#include "error.h"

typedef struct bk_syncer bk_syncer_t;

/* How the thread makes the file durable: 0, or an errno value.  fdatasync by default;
 * tests pass their own. */
typedef int (*bk_sync_fn)(int fd, void *ctx);

/* A syncer for the file at `path` (copied).  With a NULL sync_fn the file is
 * fdatasync'ed, and its directory fsync'ed once, at the first sync (the file may be
 * new).  NULL with err set. */
bk_syncer_t *bk_syncer_new(const char *path, bk_sync_fn sync_fn, void *sync_ctx,
                           ld_error_t *err);

/* Makes everything written durable (bk_syncer_settle), stops the thread and frees all;
 * NULLs *self_p.  Safe on NULL.  A failure is logged. */
void bk_syncer_destroy(bk_syncer_t **self_p);

/* Notes that a commit was written: its ticket, above every earlier one.  The thread
 * starts a sync unless one is running; a running one is followed by another. */
uint64_t bk_syncer_wrote(bk_syncer_t *self);

/* The ticket of the last commit written (0: none yet). */
uint64_t bk_syncer_written(const bk_syncer_t *self);

/* A descriptor that becomes readable when a sync ended (done or failed). */
int bk_syncer_fd(const bk_syncer_t *self);

/* Empties the descriptor and sets *ticket to the highest ticket known durable.  0, or
 * LD_EIO with err naming the file and the reason once a sync failed: the syncer then
 * makes nothing more durable, and every later call fails the same way. */
int bk_syncer_synced(bk_syncer_t *self, uint64_t *ticket, ld_error_t *err);

/* Waits until every ticket written is durable: 0, or LD_EIO as bk_syncer_synced. */
int bk_syncer_settle(bk_syncer_t *self, ld_error_t *err);

#endif
