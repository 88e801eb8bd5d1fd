/* registry.h: the nodes the broker knows (id, name, CURVE public key, removed or not),
 * the links between them, and the one question the server asks: who may address whom.
 * Ownership: the registry owns its connection and its cached snapshot. */
#ifndef BK_REGISTRY_H
#define BK_REGISTRY_H

#include <stdbool.h>
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

/* Opens the registry in the broker store at `path` (with `create`, makes it).
 * NULL with err set on failure. */
bk_registry_t *bk_registry_new(const char *path, bool create, ld_error_t *err);

/* Writes pending statistics, closes, NULLs *self_p; safe on NULL and twice. */
void bk_registry_destroy(bk_registry_t **self_p);

/* Registers a node.  LD_EINVAL (bad id, key or name, naming it), LD_EEXIST (the id or
 * the key is taken, by a removed node too). */
int bk_registry_add_node(bk_registry_t *self, const char *id, const char *name,
                         const char *key, ld_error_t *err);

/* Marks a node removed: it is refused from then on, even on an open connection.
 * Its links and mailbox stay.  LD_ENOTFOUND, or LD_EINVAL if already removed. */
int bk_registry_remove_node(bk_registry_t *self, const char *id, ld_error_t *err);

/* Links two registered, distinct nodes (symmetric).  LD_ENOTFOUND, LD_EINVAL, LD_EEXIST. */
int bk_registry_add_link(bk_registry_t *self, const char *a, const char *b, ld_error_t *err);

/* Removes a link.  LD_ENOTFOUND if there is none. */
int bk_registry_remove_link(bk_registry_t *self, const char *a, const char *b,
                            ld_error_t *err);

/* Calls fn for every node in id order (fn returning non-zero stops).  Reads the store,
 * not the snapshot. */
typedef int (*bk_node_fn)(void *ctx, const bk_node_info_t *node);
int bk_registry_each_node(bk_registry_t *self, bk_node_fn fn, void *ctx, ld_error_t *err);

/* Calls fn for every link, a < b, in order. */
typedef int (*bk_link_fn)(void *ctx, const char *a, const char *b);
int bk_registry_each_link(bk_registry_t *self, bk_link_fn fn, void *ctx, ld_error_t *err);

/* ---- serving: a snapshot in memory, refreshed when another connection changed it ---- */

/* Reloads the snapshot if the registry changed since the last load (a cheap check of
 * PRAGMA data_version, then of the registry's generation).  *changed (may be NULL) is
 * set when it did.  0 or LD_EIO (the old snapshot stays). */
int bk_registry_refresh(bk_registry_t *self, bool *changed, ld_error_t *err);

/* True if `id` is registered and not removed. */
bool bk_registry_active(const bk_registry_t *self, const char *id);

/* The id of the active node holding public key `key` (Z85), or NULL.  Borrowed until
 * the next refresh. */
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
