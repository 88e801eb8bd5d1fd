/* registry.h: the nodes the broker knows (id, name, CURVE public key, removed or not),
 * the links between them, and the one question the server asks: who may address whom.
 * The store behind it is a table of operations (SQLite, or a JetStream key-value bucket
 * that every broker front-end sees); checks, the snapshot and statistics are shared.
 * Ownership: the registry owns its store and its cached snapshot. */
#ifndef BK_REGISTRY_H
#define BK_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "error.h"
#include "keys.h"
#include "text.h"

#define BK_NAME_MAX 256   /* bytes of a node's display name */

typedef struct bk_registry bk_registry_t;

/* One node as the registry holds it.  Strings are borrowed for the callback's call. */
typedef struct bk_node_info {
    const char *id;
    const char *name;
    const char *key;
    bool        removed;
    int64_t     last_seen;    /* unix seconds, 0: never */
    uint64_t    pushed;       /* changes it pushed that were stored */
    uint64_t    fetched;      /* changes it collected */
} bk_node_info_t;

/* Called for every node in id order (non-zero stops), and for every link a < b. */
typedef int (*bk_node_fn)(void *ctx, const bk_node_info_t *node);
typedef int (*bk_link_fn)(void *ctx, const char *a, const char *b);
/* Called for every retired key with the node it was taken from (non-zero stops). */
typedef int (*bk_retired_fn)(void *ctx, const char *key, const char *node);

/* Statistics of one node not yet written. */
typedef struct bk_node_stat {
    char     id[LD_ID_MAX + 1];
    int64_t  seen;            /* unix seconds, the latest */
    uint64_t pushed, fetched; /* to add */
} bk_node_stat_t;

/* What a registry store must do.  Arguments come checked (valid ids, key, name; a
 * link's ends distinct and ordered lo < hi); the store checks what needs its data,
 * all or nothing.  Every operation returns 0 or a negative LD_E* code with err set. */
typedef struct bk_registry_ops {
    const char *name;
    /* Opens (with `create`, makes) the store at `where`; NULL with err set. */
    void *(*open)(const char *where, bool create, ld_error_t *err);
    /* Closes the store and NULLs *store_p; safe on NULL. */
    void (*close)(void **store_p);
    /* LD_EEXIST when the id (of any node, removed too) or the key is taken. */
    int (*add_node)(void *store, const char *id, const char *name, const char *key,
                    ld_error_t *err);
    /* LD_ENOTFOUND, or LD_EINVAL when already removed. */
    int (*remove_node)(void *store, const char *id, ld_error_t *err);
    /* Gives an active node a new key and retires its old one for good.  LD_ENOTFOUND,
     * LD_EINVAL (removed), LD_EEXIST (the key is any node's, now or retired). */
    int (*set_key)(void *store, const char *id, const char *key, ld_error_t *err);
    /* LD_ENOTFOUND (an end not registered), LD_EINVAL (removed), LD_EEXIST. */
    int (*add_link)(void *store, const char *lo, const char *hi, ld_error_t *err);
    /* LD_ENOTFOUND when there is no such link. */
    int (*remove_link)(void *store, const char *lo, const char *hi, ld_error_t *err);
    /* For `liangdi-broker migrate`: every retired key, and recording `key` as retired
     * from `node` (nothing new when it already is; LD_EEXIST when the key is in use, or
     * retired from another node). */
    int (*each_retired)(void *store, bk_retired_fn fn, void *ctx, ld_error_t *err);
    int (*import_retired)(void *store, const char *key, const char *node, ld_error_t *err);
    /* Every node with its statistics, in id order; every link, in (a, b) order. */
    int (*each_node)(void *store, bk_node_fn fn, void *ctx, ld_error_t *err);
    int (*each_link)(void *store, bk_link_fn fn, void *ctx, ld_error_t *err);
    /* A cheap look: *changed is true when nodes or links may have changed since the
     * last look (always on the first).  Statistics do not count. */
    int (*changed)(void *store, bool *changed, ld_error_t *err);
    /* Adds pending statistics in order (seen: the later wins; pushed, fetched: added);
     * *written is how many of them were added, on failure too. */
    int (*write_stats)(void *store, const bk_node_stat_t *stats, size_t n, size_t *written,
                       ld_error_t *err);
} bk_registry_ops_t;

/* For the stores: sets err to LD_EEXIST saying that public key `key` is node `node`'s
 * (or, `retired`, was, until `node rekey` replaced it) and returns LD_EEXIST. */
int bk_registry_key_taken(ld_error_t *err, const char *key, const char *node, bool retired);

/* The embedded store: tables nodes, links and registry_meta of the broker's SQLite
 * file; `where` is its path. */
extern const bk_registry_ops_t bk_registry_sqlite;

/* The shared store (built only with libnats): key-value buckets LIANGDI_REGISTRY and
 * LIANGDI_STATS on a JetStream cluster; `where` is the NATS URL list. */
extern const bk_registry_ops_t bk_registry_jetstream;

/* Opens the registry in store `where` through `ops` (with `create`, makes it) and
 * loads its snapshot.  NULL with err set on failure. */
bk_registry_t *bk_registry_open(const bk_registry_ops_t *ops, const char *where, bool create,
                                ld_error_t *err);

/* bk_registry_open of the SQLite store at `path`. */
bk_registry_t *bk_registry_new(const char *path, bool create, ld_error_t *err);

/* Writes pending statistics, closes, NULLs *self_p; safe on NULL and twice. */
void bk_registry_destroy(bk_registry_t **self_p);

/* Registers a node.  LD_EINVAL (bad id, key or name, naming it), LD_EEXIST (the id or
 * the key is taken, by a removed node too, or the key was retired). */
int bk_registry_add_node(bk_registry_t *self, const char *id, const char *name,
                         const char *key, ld_error_t *err);

/* Marks a node removed: it is refused from then on, even on an open connection.
 * Its links stay; a serving broker empties its mailbox when it sees the change
 * (server.c).  LD_ENOTFOUND, or LD_EINVAL if already removed. */
int bk_registry_remove_node(bk_registry_t *self, const char *id, ld_error_t *err);

/* Replaces the CURVE public key of an active node (its key leaked, or its machine was
 * replaced): the node keeps its id, links, mailbox and marks; the old key is refused
 * from then on, even on an open connection (server.c), and is never registered again.
 * LD_EINVAL (bad id or key, or the node removed), LD_ENOTFOUND, LD_EEXIST (the key is
 * taken, or was retired, by any node, this one included). */
int bk_registry_set_key(bk_registry_t *self, const char *id, const char *key,
                        ld_error_t *err);

/* Links two registered, distinct nodes (symmetric).  LD_ENOTFOUND, LD_EINVAL, LD_EEXIST. */
int bk_registry_add_link(bk_registry_t *self, const char *a, const char *b, ld_error_t *err);

/* Removes a link.  LD_ENOTFOUND if there is none. */
int bk_registry_remove_link(bk_registry_t *self, const char *a, const char *b,
                            ld_error_t *err);

/* Calls fn for every node in id order (fn returning non-zero stops).  Reads the store,
 * not the snapshot. */
int bk_registry_each_node(bk_registry_t *self, bk_node_fn fn, void *ctx, ld_error_t *err);

/* Calls fn for every key `node rekey` retired, with its node. */
int bk_registry_each_retired(bk_registry_t *self, bk_retired_fn fn, void *ctx,
                             ld_error_t *err);

/* Records `key` as retired from `node`, as copied from another store.  LD_EINVAL (bad id
 * or key), LD_EEXIST (the key is in use, or retired from another node). */
int bk_registry_import_retired(bk_registry_t *self, const char *key, const char *node,
                               ld_error_t *err);

/* Calls fn for every link, a < b, in order. */
int bk_registry_each_link(bk_registry_t *self, bk_link_fn fn, void *ctx, ld_error_t *err);

/* ---- serving: a snapshot in memory, refreshed when another connection changed it ---- */

/* Reloads the snapshot if the registry changed since the last load (the store's cheap
 * look: PRAGMA data_version and the registry's generation for SQLite, the bucket's
 * update feed for JetStream).  *changed (may be NULL) is set when it did.  0 or LD_EIO
 * (the old snapshot stays). */
int bk_registry_refresh(bk_registry_t *self, bool *changed, ld_error_t *err);

/* Reloads the snapshot now, whatever the cheap look says (ZAP does, before refusing a
 * key the snapshot does not know).  0 or LD_EIO (the old snapshot stays). */
int bk_registry_reload(bk_registry_t *self, ld_error_t *err);

/* Reloads the snapshot now, unless this registry did so in the last second, whatever
 * the cheap look says: for an answer the snapshot gives but may not be current about,
 * where the store is shared by several front-ends (ZAP and the server, before they
 * refuse a key or a node another front-end may have just registered).  The limit keeps
 * a stream of refusals from making one reload each.  *reloaded says whether it did.
 * 0 or LD_EIO (the old snapshot stays). */
int bk_registry_recheck(bk_registry_t *self, bool *reloaded, ld_error_t *err);

/* True if `id` is registered and not removed. */
bool bk_registry_active(const bk_registry_t *self, const char *id);

/* True if `id` is active and its public key is `key` (Z85): a lookup by id, cheap
 * enough for every message. */
bool bk_registry_holds_key(const bk_registry_t *self, const char *id, const char *key);

/* The id of the active node holding public key `key` (Z85), or NULL: a scan of every
 * node (ZAP's question, once per handshake).  Borrowed until the next refresh. */
const char *bk_registry_node_by_key(const bk_registry_t *self, const char *key);

/* True if `from` may address a change to `to`: the same node, or linked to it. */
bool bk_registry_may_address(const bk_registry_t *self, const char *from, const char *to);

/* Statistics, gathered in memory and written by bk_registry_flush (so that serving
 * costs no extra transaction per message). */
void bk_registry_note_seen(bk_registry_t *self, const char *id, int64_t now);
void bk_registry_note_pushed(bk_registry_t *self, const char *id, uint64_t n);
void bk_registry_note_fetched(bk_registry_t *self, const char *id, uint64_t n);
int bk_registry_flush(bk_registry_t *self, ld_error_t *err);

#endif
