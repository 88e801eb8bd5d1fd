/* sync.h: the node's side of the sync protocol (proto/PROTOCOL.md): one round of
 * push-everything-then-fetch-everything, and the daemon that stays connected. */
#ifndef ND_SYNC_H
#define ND_SYNC_H

#include <stdbool.h>
#include <stdint.h>
#include "error.h"
#include "store.h"

typedef struct nd_sync_opts {
    const char *keyfile;          /* this node's keypair file; NULL = beside the store */
    int         timeout_ms;       /* sync: give up after this long (default 30 s) */
    int         interval_ms;      /* daemon: fetch at least this often (default 60 s) */
    bool        progress;         /* print "changes done / left" (on a terminal) */
    const char *endpoints;        /* the broker, in place of the store's; NULL: the store's */
    const char *server_key;       /* its key, likewise */
} nd_sync_opts_t;

typedef struct nd_sync_result {
    uint64_t pushed;              /* own changes the broker acked this round */
    uint64_t fetched;             /* changes taken from the mailbox (and applied) */
    uint64_t conflicts;           /* same-field races recorded */
} nd_sync_result_t;

/* One round: connect, Hello, push the whole outbox, fetch the whole mailbox, exit.
 * Returns 0 only when both directions are complete.  Otherwise err says, in one line,
 * which of: broker unreachable (LD_ETIMEOUT), authentication refused (LD_EAUTH),
 * version mismatch and which side must upgrade (LD_EVERSION), refused by the broker
 * with its message (LD_EDENIED / LD_ECLOCK), the broker failing (LD_EAGAIN: its store
 * refused or timed out, and went on doing so for the timeout, tried again with growing
 * pauses), or a local failure. */
int nd_sync_once(nd_store_t *store, const char *db_path, const nd_sync_opts_t *opts,
                 nd_sync_result_t *result, ld_error_t *err);

/* Stays connected until SIGTERM/SIGINT: pushes on every local write (it watches the
 * store), fetches on Notify and every interval, reconnects with backoff.  Returns 0
 * on a clean stop. */
int nd_daemon_run(nd_store_t *store, const char *db_path, const nd_sync_opts_t *opts,
                  ld_error_t *err);

/* Whether the broker answers a Hello within timeout_ms: 0, or the error sync would give. */
int nd_sync_probe(nd_store_t *store, const char *db_path, const nd_sync_opts_t *opts,
                  ld_error_t *err);

#endif
