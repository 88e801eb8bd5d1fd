/* store.h: a branch's SQLite store.  Opens and migrates it, and owns the one write
 * path: every local change stamps the HLC, writes the row and appends the change to
 * the change log (whose own-origin tail is the outbox) in one transaction.
 * Ownership: the store owns its sqlite3 handle; nd_store_db lends it.  A store is
 * used from one thread at a time (its handle is opened without SQLite's mutexes);
 * several processes may open the same file. */
#ifndef ND_STORE_H
#define ND_STORE_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include "change.h"
#include "collate.h"
#include "error.h"

typedef struct nd_store nd_store_t;

/* Opens the store at `path` (WAL, foreign keys on, busy_timeout), creating the file
 * only if `create`, and migrates it forward.  A store of a newer schema is refused
 * (LD_ESCHEMA, "<path>: store schema version N is newer than this liangdi (M);
 * upgrade liangdi"); a missing file without `create` is LD_ENOTFOUND.  NULL on
 * failure, with err set.  A database held by another process for longer than the
 * busy timeout (5 s) makes calls fail with LD_EBUSY. */
nd_store_t *nd_store_open(const char *path, bool create, ld_error_t *err);

/* Closes the store and NULLs *self_p; safe on NULL and twice. */
void nd_store_destroy(nd_store_t **self_p);

/* Borrowed handle for read-only queries (lists, reports). */
sqlite3 *nd_store_db(nd_store_t *self);

/* Frees the pages the store's cache holds and no statement uses, for an idle daemon to
 * give them back (with ld_heap_release, heap.h).  They are read again when needed. */
void nd_store_shrink(nd_store_t *self);

/* Told that a push of `bytes` was read from the outbox, or a batch of `bytes` taken
 * into the inbox.  Past 256 KiB, a bulk transfer: those pages are not read again soon,
 * and the cache shrinks (as above), so that their memory serves the next push or batch
 * instead of the cache growing by a megabyte each time.  A small one changes nothing. */
void nd_store_moved(nd_store_t *self, size_t bytes);

/* The store's collator of names (collate.h), lent; its connection has the collation "zh". */
nd_collate_t *nd_store_collate(nd_store_t *self);

/* This node's id and name, "" before init.  Borrowed. */
const char *nd_store_node_id(nd_store_t *self);
const char *nd_store_node_name(nd_store_t *self);

/* Makes a new store this node's: sets id and name once (LD_EEXIST if already set). */
int nd_store_init_node(nd_store_t *self, const char *node_id, const char *name, ld_error_t *err);

/* Settings kept in the store (broker endpoint, cursor, thresholds...).  get returns a
 * malloc'd copy (caller frees) or NULL if unset. */
char *nd_store_setting(nd_store_t *self, const char *key);
int   nd_store_set_setting(nd_store_t *self, const char *key, const char *value, ld_error_t *err);

/* Groups several writes into one transaction (import: all rows or none).  While a
 * group is open nd_store_write joins it instead of committing on its own. */
int nd_store_begin(nd_store_t *self, ld_error_t *err);
int nd_store_commit(nd_store_t *self, ld_error_t *err);
void nd_store_rollback(nd_store_t *self);
/* A group for writes that were checked up front and stand or fall together (import):
 * its writes take no savepoint each.  A write refused by the store's checks leaves
 * nothing, as in any group; one that fails after it began changing the store (an I/O
 * error) breaks the group: every later write and nd_store_commit then fail with
 * LD_EIO, and the commit rolls the whole group back. */
int nd_store_begin_bulk(nd_store_t *self, ld_error_t *err);

/* The one local write path.  `c` holds kind, record_id ("" = a new record: a UUID is
 * made and written back into c->record_id), the fields to set, or deleted.  The store
 * validates, fills origin, seq, hlc and the audience, writes the row, and appends the
 * change, in one transaction.  LD_ENOTFOUND for an update of a missing record,
 * LD_EDENIED for a record this node may only read.
 * An org's id is chosen by its creator: an org record_id not in the store creates
 * that org.  Field values "" clear a field (not a required one).  References must
 * name live records here (LD_ENOTFOUND naming the field and value).  Before the
 * change the store may append snapshot changes (an org a receiver has not been sent,
 * a member's whole history for a branch the member has just moved to), each with its
 * own seq.  An org change with more than LD_AUDIENCE_MAX receivers is appended once
 * per LD_AUDIENCE_MAX of them; c keeps the last seq and audience. */
int nd_store_write(nd_store_t *self, ld_change_t *c, ld_error_t *err);

/* Like nd_store_write, but the change must create the record: an explicit record_id
 * that is already in the store, even as a tombstone, is LD_EEXIST; "" makes a UUID
 * (an org needs an id: LD_EINVAL). */
int nd_store_create(nd_store_t *self, ld_change_t *c, ld_error_t *err);

/* Reads a record as a change-shaped view: kind, record_id, deleted, every field that
 * is set (value and its own stamp in hlc/origin), hlc and origin of its latest write.
 * `out` must be initialised (it is cleared first); clear it with ld_change_clear.
 * 0, LD_ENOTFOUND, LD_EINVAL (unknown kind), LD_EIO. */
int nd_store_get(nd_store_t *self, ld_kind_t kind, const char *record_id, ld_change_t *out,
                 ld_error_t *err);

/* True if a live (not deleted) record of that kind and id is in the store. */
bool nd_store_exists(nd_store_t *self, ld_kind_t kind, const char *record_id);

/* True if this node may write that record (nd_store_write would not refuse it with
 * LD_EDENIED): member records while the member's org or current trip's org is kept
 * here, agreement records while one of its two orgs is, orgs always.  False for a
 * record not in the store. */
bool nd_store_is_mine(nd_store_t *self, ld_kind_t kind, const char *record_id);

/* How many same-field races the conflict log holds. */
uint64_t nd_store_conflict_count(nd_store_t *self);

/* The apply path for a change from elsewhere: field-level last-writer-wins by
 * (hlc, origin), the losing value of a same-field race kept in the conflict log,
 * idempotent (a change already applied, known by origin and seq, is skipped),
 * recorded in the change log.  Joins an open group.  LD_ECLOCK if stamped too far ahead. */
int nd_store_apply(nd_store_t *self, const ld_change_t *c, ld_error_t *err);

/* Outbox: this node's own changes after `after_seq`, packed, in seq order, at most
 * `max`; `fn` is called for each (returning non-zero stops). Returns the count or < 0. */
typedef int (*nd_outbox_fn)(void *ctx, uint64_t seq, const uint8_t *change, size_t len);
int nd_store_outbox(nd_store_t *self, uint64_t after_seq, size_t max, nd_outbox_fn fn,
                    void *ctx, ld_error_t *err);

/* The highest own seq written, and the highest the broker has acked. */
uint64_t nd_store_last_seq(nd_store_t *self);
uint64_t nd_store_pushed_upto(nd_store_t *self);
/* Records a PushAck (never moves backwards). */
int nd_store_set_pushed_upto(nd_store_t *self, uint64_t upto, ld_error_t *err);

/* The mailbox cursor: the broker position taken up to (applied, or waiting in the
 * inbox, inbox.h), and moving it (inside the caller's group, or on its own). */
uint64_t nd_store_cursor(nd_store_t *self);
int nd_store_set_cursor(nd_store_t *self, uint64_t cursor, ld_error_t *err);
/* Applies a batch of changes and moves the cursor to `cursor` in one transaction. */
int nd_store_apply_batch(nd_store_t *self, const ld_change_t *changes, size_t n,
                         uint64_t cursor, ld_error_t *err);
/* Applies the changes of a Batch body from the broker whose positions are above
 * `after`, read one at a time (ld_change_reader, codec.h: each validated as a decode
 * validates it, and only one held at a time), and moves the cursor to `cursor`, all in
 * one transaction; *applied (may be NULL) gets how many were applied.  A change that
 * cannot be read or applied leaves nothing applied, and the error names its entry. */
int nd_store_apply_body(nd_store_t *self, const uint8_t *body, size_t len, uint64_t after,
                        uint64_t cursor, size_t *applied, ld_error_t *err);
/* The same without moving the cursor: a batch taken earlier, applied from the inbox. */
int nd_store_apply_taken(nd_store_t *self, const uint8_t *body, size_t len, uint64_t after,
                         size_t *applied, ld_error_t *err);

#endif
