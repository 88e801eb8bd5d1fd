/* zap.h: the broker's ZAP handler (ZeroMQ RFC 27): a thread that admits a CURVE client
 * only if its public key belongs to a registered, not removed node, and names that
 * node as the connection's User-Id and the key as its BK_ZAP_KEY_PROPERTY.  Without it
 * a CURVE server admits any key. */
#ifndef BK_ZAP_H
#define BK_ZAP_H

#include "error.h"
#include "registry.h"

/* The message property (zmq_msg_gets) holding the Z85 public key a connection was
 * admitted with. */
#define BK_ZAP_KEY_PROPERTY "X-Key"

typedef struct bk_zap bk_zap_t;

/* Binds inproc://zeromq.zap.01 in `zmq_ctx` (before returning, so that a ROUTER bound
 * afterwards is covered) and starts the handler thread, which reads the registry of
 * the store at `where` (through `ops`, NULL: SQLite) on its own connection.  NULL with
 * err set on failure. */
bk_zap_t *bk_zap_new(void *zmq_ctx, const bk_registry_ops_t *ops, const char *where,
                     ld_error_t *err);

/* Stops the thread, closes its sockets and connection, NULLs *self_p; safe twice. */
void bk_zap_destroy(bk_zap_t **self_p);

/* Counts of handshakes admitted and refused so far (for logs and tests). */
unsigned long bk_zap_admitted(const bk_zap_t *self);
unsigned long bk_zap_refused(const bk_zap_t *self);

#endif
