/* server.h: the broker's relay: one ROUTER socket with CURVE and the ZAP handler,
 * serving the protocol of proto/PROTOCOL.md from the durable mailboxes. */
#ifndef BK_SERVER_H
#define BK_SERVER_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include "error.h"
#include "mailbox.h"
#include "registry.h"

typedef struct bk_server_opts {
    const char *db_path;              /* the broker store (made by `init`): the SQLite
                                       * path, or the NATS URL list for JetStream */
    const bk_mailbox_ops_t  *mailbox_ops;    /* NULL: SQLite */
    const bk_registry_ops_t *registry_ops;   /* NULL: SQLite */
    const char *key_path;             /* its keypair file, mode 0600 */
    const char *bind;                 /* endpoint; tcp://127.0.0.1:* picks a port */
    size_t      max_message;          /* ZMQ_MAXMSGSIZE */
    size_t      max_peers;
    int         peer_idle_s;
    int         handshake_ivl_ms;
    int         heartbeat_ivl_ms;
    int         heartbeat_timeout_ms;
    uint64_t    max_clock_drift_ms;
} bk_server_opts_t;

typedef struct bk_server bk_server_t;

/* Loads the keypair (refusing a file others can read), opens registry and mailboxes,
 * starts the ZAP handler, binds the ROUTER and proves that an unregistered key is
 * refused.  NULL with err set on failure. */
bk_server_t *bk_server_new(const bk_server_opts_t *opts, ld_error_t *err);

/* Closes everything and NULLs *self_p; safe on NULL and twice. */
void bk_server_destroy(bk_server_t **self_p);

/* The endpoint actually bound (ZMQ_LAST_ENDPOINT).  Borrowed. */
const char *bk_server_endpoint(const bk_server_t *self);

/* Logs "ready, listening on ENDPOINT" and serves until *stop becomes non-zero (the
 * message in hand is finished first).  0 on a clean stop, or LD_EIO. */
int bk_server_run(bk_server_t *self, const volatile sig_atomic_t *stop, ld_error_t *err);

#endif
