/* mailbox.h: the broker's durable mailboxes behind one narrow interface (a table of
 * operations), so that a replicated log such as JetStream can stand in for SQLite later.
 * Ownership: a mailbox owns its store; bodies passed in are borrowed and copied. */
#ifndef BK_MAILBOX_H
#define BK_MAILBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "error.h"

/* One change of a push, already validated and checked against the registry by the
 * caller: its seq, its packed bytes, and the mailboxes it goes to (the audience less
 * the sender).  Everything borrowed. */
typedef struct bk_push_item {
    uint64_t            seq;
    const uint8_t      *body;
    size_t              len;
    const char *const  *to;
    size_t              nto;
} bk_push_item_t;

/* Called for each node whose mailbox another broker front-end grew (take_grown). */
typedef void (*bk_grown_fn)(void *ctx, const char *node);

/* Called for each origin's high-water mark (export_marks); non-zero stops. */
typedef int (*bk_mark_fn)(void *ctx, const char *origin, uint64_t seq);

/* Called for each fetched entry, in position order.  Returns 0 to take the entry and
 * go on, 1 to stop before it (it is not counted as fetched), or < 0 to fail. */
typedef int (*bk_fetch_fn)(void *ctx, uint64_t position, const uint8_t *body, size_t len);

/* What a mailbox store must do.  Every operation returns 0 (or a count) or a negative
 * LD_E* code with err set; `store` is the implementation's own state. */
typedef struct bk_mailbox_ops {
    const char *name;
    /* Opens (with `create`, makes) the store at `path`; NULL with err set on failure. */
    void *(*open)(const char *path, bool create, ld_error_t *err);
    /* Closes the store and NULLs *store_p; safe on NULL. */
    void (*close)(void **store_p);
    /* Stores every item whose seq is above the origin's high-water mark into each of
     * its mailboxes and raises the mark, all or nothing.  Items at or below the mark
     * are skipped; a seq above mark + 1 stores nothing and returns LD_EINVAL.
     * *upto is the mark afterwards, *stored the number of new items. */
    int (*push_batch)(void *store, const char *origin, const bk_push_item_t *items, size_t n,
                      uint64_t *upto, size_t *stored, ld_error_t *err);
    /* Calls fn for up to `credit` entries of `node`'s mailbox after position `after`;
     * never deletes.  Returns the number taken; *remaining is how many are left after
     * the last one taken. */
    int (*fetch)(void *store, const char *node, uint64_t after, uint32_t credit,
                 bk_fetch_fn fn, void *ctx, uint64_t *remaining, ld_error_t *err);
    /* Deletes `node`'s entries at or below `upto`; twice or past the end is harmless. */
    int (*ack)(void *store, const char *node, uint64_t upto, ld_error_t *err);
    /* Entries waiting in `node`'s mailbox. */
    int (*depth)(void *store, const char *node, uint64_t *depth, ld_error_t *err);
    /* The origin's high-water mark: the highest seq of its changes stored (0: none). */
    int (*pushed_upto)(void *store, const char *origin, uint64_t *seq, ld_error_t *err);
    /* Optional (NULL for a store that only one broker serves): a file descriptor that
     * becomes readable when another front-end of the same store grew some mailboxes,
     * and the call that empties it, calling fn once per node told. */
    int (*grown_fd)(void *store);
    int (*take_grown)(void *store, bk_grown_fn fn, void *ctx, ld_error_t *err);
    /* Optional: what the store puts off while the broker is busy, done in a quiet
     * moment (the embedded store moves its write-ahead log into the database file). */
    void (*idle)(void *store);
    /* Optional, for a store whose pushes reach the disk after push_batch returns (the
     * embedded store: syncer.h); NULL where push_batch returns once the push is durable.
     * `written`: the ticket of the last push stored (0: none); `sync_fd`: readable when
     * more became durable; `synced`: empties it and gives the ticket up to which every
     * push is durable (LD_EIO once the store cannot make them durable any more);
     * `settle`: waits until every push stored is durable. */
    uint64_t (*written)(void *store);
    int (*sync_fd)(void *store);
    int (*synced)(void *store, uint64_t *ticket, ld_error_t *err);
    int (*settle)(void *store, ld_error_t *err);
    /* Optional, for `liangdi-broker migrate` (NULL where a store cannot be copied from,
     * or into): every origin's mark; the last position a node's mailbox ever gave,
     * acked or not (0: none); raising a mark to at least `seq`; and appending an entry
     * copied from position `old_position` of another store to a node's mailbox, at a
     * position above `floor` and above every one it holds (copying the same entry
     * again stores nothing new). */
    int (*export_marks)(void *store, bk_mark_fn fn, void *ctx, ld_error_t *err);
    int (*last_position)(void *store, const char *node, uint64_t *last, ld_error_t *err);
    int (*import_mark)(void *store, const char *origin, uint64_t seq, ld_error_t *err);
    int (*import_entry)(void *store, const char *node, uint64_t floor, uint64_t old_position,
                        const uint8_t *body, size_t len, ld_error_t *err);
} bk_mailbox_ops_t;

/* The embedded store: tables highwater, mailbox_state and mailbox_chunks in the
 * broker's SQLite file (WAL), one transaction per push, made durable by a syncer. */
extern const bk_mailbox_ops_t bk_mailbox_sqlite;

/* The replicated store (built only with libnats): a mailbox is a subject of one
 * JetStream stream, a position is its stream sequence; `path` is the NATS URL list. */
extern const bk_mailbox_ops_t bk_mailbox_jetstream;

typedef struct bk_mailbox bk_mailbox_t;

/* Opens a mailbox store through `ops` (NULL = bk_mailbox_sqlite).  NULL with err set. */
bk_mailbox_t *bk_mailbox_new(const bk_mailbox_ops_t *ops, const char *path, bool create,
                             ld_error_t *err);

/* Closes the store and NULLs *self_p; safe on NULL and twice. */
void bk_mailbox_destroy(bk_mailbox_t **self_p);

/* The operations above, on an open mailbox. */
int bk_mailbox_push(bk_mailbox_t *self, const char *origin, const bk_push_item_t *items,
                    size_t n, uint64_t *upto, size_t *stored, ld_error_t *err);
int bk_mailbox_fetch(bk_mailbox_t *self, const char *node, uint64_t after, uint32_t credit,
                     bk_fetch_fn fn, void *ctx, uint64_t *remaining, ld_error_t *err);
int bk_mailbox_ack(bk_mailbox_t *self, const char *node, uint64_t upto, ld_error_t *err);
int bk_mailbox_depth(bk_mailbox_t *self, const char *node, uint64_t *depth, ld_error_t *err);
int bk_mailbox_pushed_upto(bk_mailbox_t *self, const char *origin, uint64_t *seq,
                           ld_error_t *err);

/* The migration operations above; LD_EINVAL naming the store when it has none. */
int bk_mailbox_export_marks(bk_mailbox_t *self, bk_mark_fn fn, void *ctx, ld_error_t *err);
int bk_mailbox_last_position(bk_mailbox_t *self, const char *node, uint64_t *last,
                             ld_error_t *err);
int bk_mailbox_import_mark(bk_mailbox_t *self, const char *origin, uint64_t seq,
                           ld_error_t *err);
int bk_mailbox_import_entry(bk_mailbox_t *self, const char *node, uint64_t floor,
                            uint64_t old_position, const uint8_t *body, size_t len,
                            ld_error_t *err);

/* The name of the store's operations ("sqlite", "jetstream").  Static. */
const char *bk_mailbox_kind(const bk_mailbox_t *self);

/* The store's grown_fd, or -1 when other front-ends cannot grow its mailboxes. */
int bk_mailbox_grown_fd(bk_mailbox_t *self);
/* The store's take_grown; 0 and nothing called when it has none. */
int bk_mailbox_take_grown(bk_mailbox_t *self, bk_grown_fn fn, void *ctx, ld_error_t *err);

/* The store's idle work; nothing when it has none. */
void bk_mailbox_idle(bk_mailbox_t *self);

/* The store's background durability (the ops above).  For a store without it:
 * written is 0, sync_fd -1, synced gives 0, settle does nothing; each returns 0. */
uint64_t bk_mailbox_written(bk_mailbox_t *self);
int bk_mailbox_sync_fd(bk_mailbox_t *self);
int bk_mailbox_synced(bk_mailbox_t *self, uint64_t *ticket, ld_error_t *err);
int bk_mailbox_settle(bk_mailbox_t *self, ld_error_t *err);

#endif
