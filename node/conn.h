/* conn.h: a node's connection to its broker: the CURVE DEALER socket, what its monitor
 * says about the link (handshake done, refused, lost), and the sync session on it.
 *
 * The session (proto/PROTOCOL.md) is driven by nd_conn_step: it sends Hello whenever a
 * new link is up, and once Welcome arrives it keeps a window of Pushes in flight while
 * a push is wanted and a pipeline of Fetches while a fetch is wanted, applying each
 * Batch to the store (cursor in the same transaction) and acking it.  A lost link
 * resets the session; what was wanted resumes after the next Welcome.  Every wait has
 * the caller's deadline.  One thread owns a conn. */
#ifndef ND_CONN_H
#define ND_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "config.h"
#include "error.h"
#include "inbox.h"
#include "keys.h"
#include "store.h"

/* The broker settings a node syncs with: from the store ("broker.endpoint", a
 * comma-separated list of endpoints tried in turn, and "broker.key") and the keypair
 * file ("<db path>.key" unless another is given). */
typedef struct nd_broker_config {
    size_t       nendpoints;
    char        *endpoints[ND_ENDPOINTS_MAX];   /* owned */
    char         server_key[LD_KEY_TEXT + 1];
    ld_keypair_t keys;
} nd_broker_config_t;

/* Reads the broker settings of `store` (or `endpoints` and `server_key` where given,
 * which take their place) and the keypair from `keyfile` (NULL: beside `db_path`).
 * LD_EINVAL when no broker is set or a setting is malformed, LD_EDENIED /
 * LD_ENOTFOUND / LD_EINVAL from the keypair file; err names the setting or file.
 * On success free with nd_broker_config_clear. */
int nd_broker_config_load(nd_store_t *store, const char *db_path, const char *keyfile,
                          const char *endpoints, const char *server_key,
                          nd_broker_config_t *out, ld_error_t *err);
void nd_broker_config_clear(nd_broker_config_t *cfg);

typedef struct nd_conn_opts {
    int reconnect_ivl_ms;       /* first reconnect delay; libzmq doubles it ... */
    int reconnect_ivl_max_ms;   /* ... up to this */
    int heartbeat_ivl_ms;       /* 0: no heartbeats; the timeout is three intervals */
    int linger_ms;              /* on destroy; see nd_conn_set_linger */
    bool take_first;            /* a backlog is taken into the inbox while more waits at
                                 * the broker, and applied once it is drained (inbox.h);
                                 * otherwise each batch is applied as it comes */
    nd_inbox_progress_fn applying;   /* told as the inbox is applied; may be NULL */
    void *applying_ctx;
} nd_conn_opts_t;

typedef struct nd_conn nd_conn_t;

/* What one nd_conn_step saw. */
typedef enum nd_conn_event {
    ND_CONN_NOTHING = 0,    /* something internal (a monitor event, a stale message) */
    ND_CONN_TIMEOUT,        /* the deadline passed */
    ND_CONN_INTERRUPTED,    /* a signal interrupted the wait */
    ND_CONN_WELCOMED,       /* Welcome: the session is up */
    ND_CONN_LOST,           /* the link dropped: session reset, reconnecting */
    ND_CONN_PUSHED,         /* a PushAck moved pushed_upto */
    ND_CONN_FETCHED,        /* a Batch was taken (applied or kept in the inbox) and acked */
    ND_CONN_NOTIFIED        /* Notify: the mailbox grew */
} nd_conn_event_t;

/* Counters of one conn's life. */
typedef struct nd_conn_stats {
    uint64_t pushed;           /* own changes acked by the broker (beyond what it had) */
    uint64_t fetched;          /* changes taken from the mailbox (applied, or kept in the
                                * inbox) */
    uint64_t remaining;        /* the last Batch's (or Welcome's) count left to fetch */
    uint64_t welcomes;
} nd_conn_stats_t;

/* Connects a DEALER to one `endpoint` with CURVE (server_key and keys copied) and
 * starts the monitor.  `store` is borrowed and must outlive the conn.  NULL on
 * failure with err set. */
nd_conn_t *nd_conn_new(nd_store_t *store, const char *endpoint, const char *server_key,
                       const ld_keypair_t *keys, const nd_conn_opts_t *opts, ld_error_t *err);

/* Closes the socket (with the linger set), the monitor and the context; NULLs
 * *self_p; safe on NULL and twice. */
void nd_conn_destroy(nd_conn_t **self_p);

/* Sets ZMQ_LINGER for the close (0 after a failed sync: nothing is worth waiting for). */
void nd_conn_set_linger(nd_conn_t *self, int ms);

/* The endpoint (borrowed). */
const char *nd_conn_endpoint(const nd_conn_t *self);

/* Waits until `deadline_ms` (nd_conn_now_ms clock) for one thing to happen and handles
 * it, sending whatever the session wants sent; it returns at once (ND_CONN_NOTHING)
 * when sending found a direction finished, so the caller can look at
 * nd_conn_pushing / nd_conn_fetching.  Returns 0 with *ev set, or:
 * LD_EAUTH (the broker refused this node's key, or its Hello), LD_EVERSION (the
 * broker speaks another protocol version: the message says which side must upgrade),
 * LD_EDENIED / LD_ECLOCK / LD_EPROTO / LD_EIO (an Error from the broker, its message
 * quoted; LD_EAGAIN when the broker's own store failed), LD_EPROTO (a message this node
 * cannot read), or a store failure. */
int nd_conn_step(nd_conn_t *self, int64_t deadline_ms, nd_conn_event_t *ev, ld_error_t *err);

/* Asks the session to push the outbox until it is empty (again). */
void nd_conn_push(nd_conn_t *self);
/* Asks the session to fetch the mailbox until the broker says nothing remains. */
void nd_conn_fetch(nd_conn_t *self);

/* True while a push (fetch) is wanted or unacknowledged. */
bool nd_conn_pushing(const nd_conn_t *self);
bool nd_conn_fetching(const nd_conn_t *self);

/* True between Welcome and the loss of the link. */
bool nd_conn_welcomed(const nd_conn_t *self);

/* True if the conn waits for an answer (Welcome, PushAck or Batch). */
bool nd_conn_waiting(const nd_conn_t *self);

/* When the broker was last heard from (a message, or a completed handshake), on the
 * nd_conn_now_ms clock. */
int64_t nd_conn_last_heard(const nd_conn_t *self);

/* True when no link is up and every attempt to connect has failed (refused, or no
 * route) for at least `grace_ms` before `now`: with other endpoints to try, there is
 * no point waiting out the silence timeout on this one. */
bool nd_conn_unreachable(const nd_conn_t *self, int64_t now, int grace_ms);

/* What the link did so far, for a message when a deadline passes: "no TCP connection
 * (connection refused)", "TCP connected but the CURVE handshake never completed
 * (is broker.key right?)", ... Static. */
const char *nd_conn_link_state(const nd_conn_t *self);

void nd_conn_get_stats(const nd_conn_t *self, nd_conn_stats_t *out);

/* Records a sync's outcome in the store's settings: on success (rc == 0) "sync.last"
 * = now in unix ms and an empty "sync.last_error"; otherwise "sync.last_error" = the
 * message.  A failure to record is only logged. */
void nd_conn_record_outcome(nd_store_t *store, int rc, const ld_error_t *err);

/* A monotonic clock in milliseconds. */
int64_t nd_conn_now_ms(void);

#endif
