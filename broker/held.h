/* held.h: the PUSH_ACKs a broker holds back until the pushes they answer are durable.
 *
 * A push stored in the embedded store is committed but not yet on the disk (syncer.h).
 * Its PUSH_ACK, and the NOTIFYs to the mailboxes it grew, wait here with the ticket of
 * the commit they depend on, and leave in the order they came once a sync covers that
 * ticket.  A sender never hears "stored" for a push a power cut could still undo, and a
 * receiver is never told of entries it could not yet be given.
 *
 * Ownership: the queue owns copies of everything held. */
#ifndef BK_HELD_H
#define BK_HELD_H

#include <stddef.h>
#include <stdint.h>

typedef struct bk_held bk_held_t;

/* Called for each reply released, oldest first: the routing id it goes to, the
 * PUSH_ACK's `upto`, and the nodes (sorted, distinct) to notify.  All borrowed for the
 * call. */
typedef void (*bk_held_fn)(void *ctx, const uint8_t *rid, size_t rid_len, uint64_t upto,
                           const char *const *notify, size_t nnotify);

/* An empty queue; NULL when out of memory. */
bk_held_t *bk_held_new(void);

/* Frees the queue and all it holds (nothing is released); NULLs *self_p; safe on NULL. */
void bk_held_destroy(bk_held_t **self_p);

/* Holds a reply until `ticket` is durable; tickets must not go down.  0, or LD_ENOMEM
 * and nothing held. */
int bk_held_add(bk_held_t *self, uint64_t ticket, const uint8_t *rid, size_t rid_len,
                uint64_t upto, const char *const *notify, size_t nnotify);

/* Calls fn for every reply whose ticket is at or below `durable`, oldest first, and
 * forgets them.  Returns how many were released. */
size_t bk_held_release(bk_held_t *self, uint64_t durable, bk_held_fn fn, void *ctx);

/* Replies held now. */
size_t bk_held_count(const bk_held_t *self);

#endif
