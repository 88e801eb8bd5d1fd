/* jetstream.h: the broker's one wrapper of libnats: a connection to NATS servers given
 * as a URL list, its JetStream context, and libnats failures turned into LD_E* codes.
 * Only the JetStream stores (mailbox_jetstream.c, registry_jetstream.c) include it. */
#ifndef BK_JETSTREAM_H
#define BK_JETSTREAM_H

#include <nats/nats.h>
#include <stdbool.h>
#include <stddef.h>
#include "error.h"

#define BK_JS_URLS_MAX 16       /* servers in one --store jetstream: list */
#define BK_JS_WAIT_MS  3000     /* JetStream API requests give up after this */

typedef struct bk_js bk_js_t;

/* Checks a URL list "nats://HOST:PORT[,nats://HOST:PORT...]".  0, or LD_EINVAL naming
 * the first bad entry. */
int bk_js_urls_check(const char *urls, ld_error_t *err);

/* Connects to the servers of `urls` (reconnecting to any of them, forever, when the
 * link drops) and makes a JetStream context.  `on_pub_ack` (may be NULL) is called on a
 * libnats thread with the answer to every asynchronous publish, stored or failed, with
 * `closure`; it owns the message and destroys it.  NULL with err set (LD_EINVAL for a
 * bad list, LD_EIO when no server answers). */
bk_js_t *bk_js_new(const char *urls, jsPubAckHandler on_pub_ack, void *closure,
                   ld_error_t *err);

/* Closes the connection and NULLs *self_p; safe on NULL and twice.  The last one
 * closed in the process also releases libnats itself. */
void bk_js_destroy(bk_js_t **self_p);

/* The connection and its JetStream context (borrowed). */
natsConnection *bk_js_conn(const bk_js_t *self);
jsCtx *bk_js_ctx(const bk_js_t *self);

/* The URL list it was made with, any password masked (borrowed). */
const char *bk_js_urls(const bk_js_t *self);

/* Replicas for a new stream or bucket: 3 when the servers known to the connection
 * (named and discovered) form a cluster of three or more, else 1. */
int bk_js_replicas(const bk_js_t *self);

/* Sets err to LD_EIO: "WHAT: libnats status (JetStream error N): last error text".
 * Returns LD_EIO. */
int bk_js_fail(ld_error_t *err, natsStatus s, jsErrCode jerr, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Makes sure stream `cfg->Name` exists: with `create`, adds it (with cfg) when it is
 * missing; without, a missing stream is LD_ENOTFOUND ("run init first").  An existing
 * stream is used as it is. */
int bk_js_stream(bk_js_t *self, jsStreamConfig *cfg, bool create, ld_error_t *err);

/* Opens key-value bucket `bucket` into *kv (caller destroys with kvStore_Destroy):
 * with `create`, makes it (one value per key, bk_js_replicas copies) when missing;
 * without, a missing bucket is LD_ENOTFOUND. */
int bk_js_kv(bk_js_t *self, const char *bucket, bool create, kvStore **kv, ld_error_t *err);

/* Writes `id` (a node id: [a-z0-9._-]) into out[size] as one subject token / key
 * word: '.' becomes '=' (not a node id character, so the mapping is one to one).
 * False if it does not fit. */
bool bk_js_token(const char *id, char *out, size_t size);

/* The inverse of bk_js_token, in place. */
void bk_js_untoken(char *token);

#endif
