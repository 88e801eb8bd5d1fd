/* inbox.h: batches taken from the broker, kept until they are applied.
 *
 * Taking and applying are two steps.  A Batch that arrives is stored as it came, in
 * one transaction with the cursor, and only then acked: from that moment the node
 * holds it durably and the broker may drop it.  Applying it to the record tables comes
 * after the mailbox is drained, each batch in one transaction that also deletes it
 * from the inbox, so a crash between the two steps, or in the middle of either, loses
 * nothing and applies nothing twice.  The link is needed only as long as taking lasts,
 * and a change that cannot be read or applied here (a bug, a disk full) waits in the
 * inbox instead of holding up the broker's mailbox.
 *
 * Ownership: the store is borrowed; bodies passed in are copied into the store. */
#ifndef ND_INBOX_H
#define ND_INBOX_H

#include <stddef.h>
#include <stdint.h>
#include "error.h"
#include "store.h"

/* Stores a Batch body (`body`, `len`, as it came from the broker, its framing checked
 * by ld_batch_peek; its changes are decoded when it is applied) whose entries above
 * `after` are new, and moves the cursor to `last`, in one transaction.  `count` is how
 * many entries lie above `after`.  Must not be called inside an open group.  0, or a negative LD_E* code with err set and nothing stored. */
int nd_inbox_put(nd_store_t *store, const uint8_t *body, size_t len, uint64_t after,
                 uint64_t last, uint64_t count, ld_error_t *err);

/* Told after each batch is applied: the changes applied so far by this nd_inbox_apply,
 * and how many waited in the inbox when it began. */
typedef void (*nd_inbox_progress_fn)(void *ctx, uint64_t applied, uint64_t waiting);

/* Applies every batch waiting in the inbox, oldest first, each in one transaction that
 * reads it, applies it and deletes it (two processes applying at once never both take
 * one).  `progress` (may be NULL) is told after each batch.  *applied (may be NULL) is
 * the number of changes applied.  A batch that fails stays in the inbox with everything
 * after it: 0, or the failure with err naming the batch's positions. */
int nd_inbox_apply(nd_store_t *store, nd_inbox_progress_fn progress, void *ctx,
                   uint64_t *applied, ld_error_t *err);

/* How many batches and changes wait in the inbox.  0 or LD_EIO. */
int nd_inbox_depth(nd_store_t *store, uint64_t *batches, uint64_t *changes, ld_error_t *err);

#endif
