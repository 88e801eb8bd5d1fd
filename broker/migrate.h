/* migrate.h: copies one broker store into another (`liangdi-broker migrate`): the
 * registry with its statistics and retired keys, every origin's high-water mark, and
 * every waiting mailbox entry, so that the nodes carry on with their cursors and
 * outboxes as they are. */
#ifndef BK_MIGRATE_H
#define BK_MIGRATE_H

#include <stddef.h>
#include "error.h"
#include "store_spec.h"

/* What a copy did. */
typedef struct bk_migrate_counts {
    size_t nodes;        /* registered in the target (removed ones included) */
    size_t links;
    size_t retired;      /* keys `node rekey` retired */
    size_t marks;        /* origins' high-water marks */
    size_t entries;      /* mailbox entries copied */
} bk_migrate_counts_t;

/* Copies store `from` into store `to` (made when missing).  Entries get positions in
 * `to` above every position `from` ever gave, so a node's cursor stays valid (what it
 * applied but had not acked comes again, harmlessly).  Copying again stores nothing
 * twice.  No broker may serve `from` meanwhile.  0, or a negative LD_E* code with err
 * naming the store, node or entry that failed (LD_EINVAL: a store that cannot be
 * copied from or into). */
int bk_migrate(const bk_store_spec_t *from, const bk_store_spec_t *to,
               bk_migrate_counts_t *counts, ld_error_t *err);

#endif
