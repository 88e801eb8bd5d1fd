/* conn.c: a node's connection to its broker: the CURVE DEALER, its monitor, and the
 * sync session (Hello/Welcome, a window of Pushes, a pipeline of Fetches) on it.
 *
 * How the link is handled:
 *  - ZMQ_IMMEDIATE: messages are queued only to a completed connection, and a lost
 *    connection takes its queue with it, so nothing of an old session is replayed to
 *    a new one ahead of its Hello.
 *  - The monitor (a PAIR on inproc) tells us when the CURVE handshake succeeded (send
 *    Hello), failed for authentication (the broker does not know our key), or the link
 *    dropped (reset the session; libzmq reconnects with its own backoff).
 *  - Nothing counts as done until the broker says so: PushAck moves pushed_upto, a
 *    Batch is applied, or stored in the inbox to be applied once the mailbox is
 *    drained, with its cursor in one transaction before it is acked (inbox.h).
 *  - Answers that belong to an old session are harmless: PushAck never moves
 *    pushed_upto backwards and Batch entries at or below the cursor are skipped. */
#include "conn.h"
#include "codec.h"
#include "inbox.h"
#include "frame.h"
#include "hlc.h"
#include "log.h"
#include "schema.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#define PUSH_CHANGES     2000u                   /* changes in one Push */
#define PUSH_WINDOW      4u                      /* Pushes in flight */
#define FETCH_CREDIT     LD_BATCH_MAX            /* changes asked for in one Fetch */
#define HANDSHAKE_IVL_MS 10000
#define MONITOR_ENDPOINT "inproc://nd-conn-monitor"

struct nd_conn {
    nd_store_t  *store;                 /* borrowed */
    void        *ctx;
    void        *sock;                  /* the DEALER */
    void        *mon;                   /* PAIR reading the DEALER's monitor */
    char        *endpoint;
    ld_keypair_t keys;
    int          linger_ms;
    bool         take_first;            /* nd_conn_opts_t.take_first */
    nd_inbox_progress_fn applying;      /* nd_conn_opts_t.applying, and its context */
    void        *applying_ctx;

    /* the link, as the monitor reports it */
    bool         link_up;               /* handshake succeeded, not dropped since */
    bool         ever_connected;        /* a TCP connection was made */
    bool         ever_handshaken;
    bool         handshake_failed;      /* a protocol failure in the handshake */
    bool         lost_pending;          /* a drop not yet reported by nd_conn_step */
    int64_t      last_heard;
    int64_t      failing_since;         /* link down and attempts failing since; 0: not */
    unsigned     failed_attempts;       /* connect attempts retried since the last link */

    /* the session */
    bool         hello_sent;
    bool         welcomed;
    uint64_t     acked;                 /* highest own seq the broker holds */
    uint64_t     sent_upto;             /* highest own seq sent in a Push */
    unsigned     push_inflight;
    bool         want_push;
    bool         want_fetch;
    bool         fetch_again;           /* asked for while a round was under way */
    unsigned     fetch_inflight;
    ld_buf_t     buf;                   /* the Push being built */
    nd_conn_stats_t stats;
};

int64_t nd_conn_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------ broker config ---- */

void nd_broker_config_clear(nd_broker_config_t *cfg)
{
    if (cfg == NULL)
        return;
    for (size_t i = 0; i < cfg->nendpoints; i++)
        free(cfg->endpoints[i]);
    memset(cfg, 0, sizeof *cfg);
}

/* Splits "a,b , c" into cfg->endpoints. */
static int split_endpoints(nd_broker_config_t *cfg, const char *list, ld_error_t *err)
{
    const char *p = list;
    while (*p != '\0') {
        const char *comma = strchr(p, ',');
        size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
        const char *start = p;
        while (len > 0 && (*start == ' ' || *start == '\t')) {
            start++;
            len--;
        }
        while (len > 0 && (start[len - 1] == ' ' || start[len - 1] == '\t'))
            len--;
        if (len > 0) {
            if (cfg->nendpoints == ND_ENDPOINTS_MAX)
                return ld_error_set(err, LD_ETOOBIG,
                                    "setting broker.endpoint: more than %d endpoints",
                                    ND_ENDPOINTS_MAX);
            char *ep = strndup(start, len);
            if (ep == NULL)
                return ld_error_set(err, LD_ENOMEM, "out of memory");
            cfg->endpoints[cfg->nendpoints++] = ep;
        }
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    if (cfg->nendpoints == 0)
        return ld_error_set(err, LD_EINVAL,
                            "setting broker.endpoint: bad value '%s' (no endpoint in it)", list);
    return 0;
}

int nd_broker_config_load(nd_store_t *store, const char *db_path, const char *keyfile,
                          const char *endpoints_given, const char *key_given,
                          nd_broker_config_t *out, ld_error_t *err)
{
    int rc = 0;
    char *endpoints = NULL;
    char *key = NULL;
    char *path = NULL;

    memset(out, 0, sizeof *out);
    endpoints = endpoints_given ? strdup(endpoints_given)
                                : nd_store_setting(store, "broker.endpoint");
    key = key_given ? strdup(key_given) : nd_store_setting(store, "broker.key");
    if (endpoints == NULL || endpoints[0] == '\0' || key == NULL || key[0] == '\0') {
        rc = ld_error_set(err, LD_EINVAL,
                          "no broker set for this node: run `liangdi broker set ENDPOINT --key KEY`");
        goto out;
    }
    if (!ld_key_valid(key)) {
        rc = ld_error_set(err, LD_EINVAL,
                          "setting broker.key: bad value '%.60s' (not a 40-character Z85 public key)",
                          key);
        goto out;
    }
    snprintf(out->server_key, sizeof out->server_key, "%s", key);
    rc = split_endpoints(out, endpoints, err);
    if (rc != 0)
        goto out;

    if (keyfile == NULL) {
        if (db_path == NULL) {
            rc = ld_error_set(err, LD_EINVAL, "no keypair file: neither a keyfile nor the store's path given");
            goto out;
        }
        if (asprintf(&path, "%s.key", db_path) < 0) {
            path = NULL;
            rc = ld_error_set(err, LD_ENOMEM, "out of memory");
            goto out;
        }
        keyfile = path;
    }
    rc = ld_keys_load(&out->keys, keyfile, err);

out:
    if (rc != 0)
        nd_broker_config_clear(out);
    free(endpoints);
    free(key);
    free(path);
    return rc;
}

void nd_conn_record_outcome(nd_store_t *store, int rc, const ld_error_t *err)
{
    ld_error_t serr;
    ld_error_clear(&serr);
    if (rc == 0) {
        char ms[32];
        snprintf(ms, sizeof ms, "%llu", (unsigned long long)ld_hlc_wall_now());
        if (nd_store_set_setting(store, "sync.last", ms, &serr) != 0
            || nd_store_set_setting(store, "sync.last_error", "", &serr) != 0)
            ld_warn("recording the sync: %s", serr.msg);
    } else if (nd_store_set_setting(store, "sync.last_error", err->msg, &serr) != 0) {
        ld_warn("recording the sync error: %s", serr.msg);
    }
}

/* ------------------------------------------------------------------ the conn ---- */

static int set_int(void *sock, int option, int value, const char *name, ld_error_t *err)
{
    if (zmq_setsockopt(sock, option, &value, sizeof value) != 0)
        return ld_error_set(err, LD_EIO, "zmq_setsockopt %s: %s", name, zmq_strerror(errno));
    return 0;
}

static int set_key(void *sock, int option, const char *z85, const char *name, ld_error_t *err)
{
    /* Z85 text with its NUL: 41 bytes. */
    if (zmq_setsockopt(sock, option, z85, LD_KEY_TEXT + 1) != 0)
        return ld_error_set(err, LD_EIO, "zmq_setsockopt %s: %s (is libzmq built with CURVE?)",
                            name, zmq_strerror(errno));
    return 0;
}

nd_conn_t *nd_conn_new(nd_store_t *store, const char *endpoint, const char *server_key,
                       const ld_keypair_t *keys, const nd_conn_opts_t *opts, ld_error_t *err)
{
    nd_conn_t *self = calloc(1, sizeof *self);
    if (self == NULL) {
        ld_error_set(err, LD_ENOMEM, "out of memory");
        return NULL;
    }
    self->store = store;
    self->keys = *keys;
    self->linger_ms = opts->linger_ms;
    self->take_first = opts->take_first;
    self->applying = opts->applying;
    self->applying_ctx = opts->applying_ctx;
    self->last_heard = nd_conn_now_ms();
    self->endpoint = strdup(endpoint);
    if (self->endpoint == NULL) {
        ld_error_set(err, LD_ENOMEM, "out of memory");
        goto err;
    }
    if (strlen(server_key) != LD_KEY_TEXT || !ld_key_valid(server_key)) {
        ld_error_set(err, LD_EINVAL, "broker key: bad value '%.60s' (not a Z85 public key)",
                     server_key);
        goto err;
    }

    self->ctx = zmq_ctx_new();
    if (self->ctx == NULL) {
        ld_error_set(err, LD_EIO, "zmq_ctx_new: %s", zmq_strerror(errno));
        goto err;
    }
    self->sock = zmq_socket(self->ctx, ZMQ_DEALER);
    if (self->sock == NULL) {
        ld_error_set(err, LD_EIO, "zmq_socket: %s", zmq_strerror(errno));
        goto err;
    }
    int64_t maxmsg = (int64_t)LD_BODY_MAX;
    if (zmq_setsockopt(self->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg) != 0) {
        ld_error_set(err, LD_EIO, "zmq_setsockopt ZMQ_MAXMSGSIZE: %s", zmq_strerror(errno));
        goto err;
    }
    if (set_key(self->sock, ZMQ_CURVE_SERVERKEY, server_key, "ZMQ_CURVE_SERVERKEY", err) != 0
        || set_key(self->sock, ZMQ_CURVE_PUBLICKEY, keys->public_key, "ZMQ_CURVE_PUBLICKEY", err) != 0
        || set_key(self->sock, ZMQ_CURVE_SECRETKEY, keys->secret_key, "ZMQ_CURVE_SECRETKEY", err) != 0
        || set_int(self->sock, ZMQ_LINGER, opts->linger_ms, "ZMQ_LINGER", err) != 0
        || set_int(self->sock, ZMQ_IMMEDIATE, 1, "ZMQ_IMMEDIATE", err) != 0
        || set_int(self->sock, ZMQ_HANDSHAKE_IVL, HANDSHAKE_IVL_MS, "ZMQ_HANDSHAKE_IVL", err) != 0
        || set_int(self->sock, ZMQ_RECONNECT_IVL, opts->reconnect_ivl_ms, "ZMQ_RECONNECT_IVL", err) != 0
        || set_int(self->sock, ZMQ_RECONNECT_IVL_MAX, opts->reconnect_ivl_max_ms,
                   "ZMQ_RECONNECT_IVL_MAX", err) != 0)
        goto err;
    if (opts->heartbeat_ivl_ms > 0) {
        if (set_int(self->sock, ZMQ_HEARTBEAT_IVL, opts->heartbeat_ivl_ms, "ZMQ_HEARTBEAT_IVL", err) != 0
            || set_int(self->sock, ZMQ_HEARTBEAT_TIMEOUT, 3 * opts->heartbeat_ivl_ms,
                       "ZMQ_HEARTBEAT_TIMEOUT", err) != 0
            || set_int(self->sock, ZMQ_HEARTBEAT_TTL, 3 * opts->heartbeat_ivl_ms,
                       "ZMQ_HEARTBEAT_TTL", err) != 0)
            goto err;
    }

    if (zmq_socket_monitor(self->sock, MONITOR_ENDPOINT, ZMQ_EVENT_ALL) != 0) {
        ld_error_set(err, LD_EIO, "zmq_socket_monitor: %s", zmq_strerror(errno));
        goto err;
    }
    self->mon = zmq_socket(self->ctx, ZMQ_PAIR);
    if (self->mon == NULL) {
        ld_error_set(err, LD_EIO, "zmq_socket (monitor): %s", zmq_strerror(errno));
        goto err;
    }
    if (set_int(self->mon, ZMQ_LINGER, 0, "ZMQ_LINGER", err) != 0)
        goto err;
    if (zmq_connect(self->mon, MONITOR_ENDPOINT) != 0) {
        ld_error_set(err, LD_EIO, "zmq_connect %s: %s", MONITOR_ENDPOINT, zmq_strerror(errno));
        goto err;
    }
    if (zmq_connect(self->sock, endpoint) != 0) {
        ld_error_set(err, LD_EINVAL, "broker endpoint: bad value '%s' (%s)", endpoint,
                     zmq_strerror(errno));
        goto err;
    }
    return self;

err:
    nd_conn_destroy(&self);
    return NULL;
}

void nd_conn_destroy(nd_conn_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    nd_conn_t *self = *self_p;
    if (self->sock != NULL) {
        zmq_socket_monitor(self->sock, NULL, 0);
        int linger = self->linger_ms;
        zmq_setsockopt(self->sock, ZMQ_LINGER, &linger, sizeof linger);
        zmq_close(self->sock);
    }
    if (self->mon != NULL)
        zmq_close(self->mon);
    if (self->ctx != NULL)
        zmq_ctx_term(self->ctx);
    ld_buf_free(&self->buf);
    memset(self->keys.secret_key, 0, sizeof self->keys.secret_key);
    free(self->endpoint);
    free(self);
    *self_p = NULL;
}

void nd_conn_set_linger(nd_conn_t *self, int ms)
{
    self->linger_ms = ms;
}

const char *nd_conn_endpoint(const nd_conn_t *self)
{
    return self->endpoint;
}

void nd_conn_push(nd_conn_t *self)
{
    self->want_push = true;
}

void nd_conn_fetch(nd_conn_t *self)
{
    if (self->want_fetch)
        self->fetch_again = true;
    self->want_fetch = true;
}

bool nd_conn_pushing(const nd_conn_t *self)
{
    return self->want_push || self->push_inflight > 0;
}

bool nd_conn_fetching(const nd_conn_t *self)
{
    return self->want_fetch || self->fetch_inflight > 0;
}

bool nd_conn_welcomed(const nd_conn_t *self)
{
    return self->welcomed;
}

bool nd_conn_waiting(const nd_conn_t *self)
{
    if (self->hello_sent && !self->welcomed)
        return true;
    return self->push_inflight > 0 || self->fetch_inflight > 0;
}

int64_t nd_conn_last_heard(const nd_conn_t *self)
{
    return self->last_heard;
}

bool nd_conn_unreachable(const nd_conn_t *self, int64_t now, int grace_ms)
{
    /* A drop is followed by one retry event before any attempt: two mean a failure. */
    return !self->link_up && self->failed_attempts >= 2 && self->failing_since != 0
           && now - self->failing_since >= grace_ms;
}

const char *nd_conn_link_state(const nd_conn_t *self)
{
    if (self->welcomed)
        return "the session was up but the broker stopped answering";
    if (self->hello_sent)
        return "the CURVE handshake completed but no Welcome came back";
    if (self->ever_handshaken)
        return "the link kept dropping before a Hello could be answered";
    if (self->handshake_failed)
        return "the CURVE handshake failed (is broker.key the broker's public key?)";
    if (self->ever_connected)
        return "a TCP connection was made but the CURVE handshake never completed "
               "(is broker.key the broker's public key?)";
    return "no connection could be made";
}

void nd_conn_get_stats(const nd_conn_t *self, nd_conn_stats_t *out)
{
    *out = self->stats;
}

/* --------------------------------------------------------------- sending ---- */

/* Sends header + body without blocking.  0 sent (or lost with a link that dropped: see
 * below), 1 not now (no link, the queue is full, or the link dropped between the two
 * parts: the whole message is to be sent again), or LD_EIO. */
static int send_frames(nd_conn_t *self, ld_msg_type_t type, const uint8_t *body, size_t len,
                       ld_error_t *err)
{
    uint8_t header[LD_HEADER_SIZE];
    ld_frame_header(type, header);
    if (zmq_send(self->sock, header, sizeof header, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
        if (errno == EAGAIN || errno == EINTR)
            return 1;
        return ld_error_set(err, LD_EIO, "sending %s to %s: %s", ld_msg_type_name(type),
                            self->endpoint, zmq_strerror(errno));
    }
    /* The body follows the header into the same pipe, unless the link dropped in between
     * (the broker went away).  libzmq never lets a header out without its body: if the
     * dying pipe is still the socket's, it takes the header back and answers EAGAIN, and
     * the message is sent whole once the link is back; if the socket has let the pipe go
     * already, it drops the body too and answers success, and the message is lost with
     * the link, to be sent again when the session starts over (reset_session, then the
     * Welcome's pushed_upto).  EINTR comes before anything is written: the header still
     * waits for its body, which is sent again. */
    while (zmq_send(self->sock, body, len, ZMQ_DONTWAIT) < 0) {
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN) {
            ld_debug("%s to %s cut off between its parts: sent again later",
                     ld_msg_type_name(type), self->endpoint);
            return 1;
        }
        return ld_error_set(err, LD_EIO, "sending %s to %s: %s", ld_msg_type_name(type),
                            self->endpoint, zmq_strerror(errno));
    }
    return 0;
}

static int send_msg(nd_conn_t *self, const ld_msg_t *m, ld_error_t *err)
{
    uint8_t *body = NULL;
    size_t len = 0;
    int rc = ld_msg_encode(m, &body, &len, err);
    if (rc != 0)
        return rc;
    rc = send_frames(self, m->type, body, len, err);
    free(body);
    return rc;
}

/* Sends Hello: 0 or < 0.  hello_sent says whether it went; if it could not go now,
 * pump's next call tries again. */
static int send_hello(nd_conn_t *self, ld_error_t *err)
{
    ld_msg_t m;
    ld_msg_init(&m, LD_MSG_HELLO);
    m.u.hello.protocol_version = LD_PROTOCOL_VERSION;
    m.u.hello.schema_version = LD_SCHEMA_VERSION;
    snprintf(m.u.hello.node_id, sizeof m.u.hello.node_id, "%s", nd_store_node_id(self->store));
    snprintf(m.u.hello.software, sizeof m.u.hello.software, "liangdi");
    int rc = send_msg(self, &m, err);
    ld_msg_clear(&m);
    if (rc == 0) {
        self->hello_sent = true;
        ld_debug("hello sent to %s as %s", self->endpoint, nd_store_node_id(self->store));
    }
    return rc < 0 ? rc : 0;
}

/* Sends a Fetch: 0 or < 0.  fetch_inflight counts it if it went; if it could not go
 * now, pump sends it later, from the cursor. */
static int send_fetch(nd_conn_t *self, uint64_t cursor, ld_error_t *err)
{
    ld_msg_t m;
    ld_msg_init(&m, LD_MSG_FETCH);
    m.u.fetch.cursor = cursor;
    m.u.fetch.credit = FETCH_CREDIT;
    int rc = send_msg(self, &m, err);
    ld_msg_clear(&m);
    if (rc == 0)
        self->fetch_inflight++;
    return rc < 0 ? rc : 0;
}

static int send_ack(nd_conn_t *self, uint64_t upto, ld_error_t *err)
{
    ld_msg_t m;
    ld_msg_init(&m, LD_MSG_ACK);
    m.u.ack.upto = upto;
    int rc = send_msg(self, &m, err);
    ld_msg_clear(&m);
    /* An ack that cannot go now is simply sent with a later one: acks are cumulative. */
    return rc < 0 ? rc : 0;
}

typedef struct push_fill {
    ld_buf_t *buf;
    uint64_t  last_seq;
    size_t    n;
    int       rc;
} push_fill_t;

static int push_fill_one(void *ctx, uint64_t seq, const uint8_t *change, size_t len)
{
    push_fill_t *fill = ctx;
    fill->rc = ld_push_append(fill->buf, change, len);
    if (fill->rc != 0)
        return 1;
    fill->last_seq = seq;
    fill->n++;
    return fill->buf->len >= LD_BATCH_BYTES ? 1 : 0;
}

/* Sends the next Push from the outbox.  1 sent, 0 nothing to send (or not now), < 0. */
static int send_push(nd_conn_t *self, ld_error_t *err)
{
    ld_buf_reset(&self->buf);
    push_fill_t fill = { .buf = &self->buf, .last_seq = 0, .n = 0, .rc = 0 };
    int rc = nd_store_outbox(self->store, self->sent_upto, PUSH_CHANGES, push_fill_one, &fill, err);
    nd_store_moved(self->store, self->buf.len);
    if (rc < 0)
        return rc;
    if (fill.rc != 0)
        return ld_error_set(err, fill.rc, "building a push: %s", ld_strerror(fill.rc));
    if (fill.n == 0) {
        self->want_push = false;
        return 0;
    }
    rc = send_frames(self, LD_MSG_PUSH, self->buf.data, self->buf.len, err);
    if (rc < 0)
        return rc;
    if (rc == 1)
        return 0;
    ld_debug("push of %zu changes, seq %llu..%llu", fill.n,
             (unsigned long long)(self->sent_upto + 1), (unsigned long long)fill.last_seq);
    self->sent_upto = fill.last_seq;
    self->push_inflight++;
    return 1;
}

static int drain_monitor(nd_conn_t *self, ld_error_t *err);

/* Sends whatever the session wants sent and can send now: 0, or < 0.  A message that
 * cannot go now (no link, or one cut off) is sent by a later call. */
static int pump(nd_conn_t *self, ld_error_t *err)
{
    int rc = drain_monitor(self, err);
    if (rc < 0)
        return rc;
    if (!self->welcomed) {
        if (self->link_up && !self->hello_sent)
            return send_hello(self, err);
        return 0;
    }
    while (self->want_push && self->push_inflight < PUSH_WINDOW) {
        rc = send_push(self, err);
        if (rc <= 0)
            break;
    }
    if (rc < 0)
        return rc;
    if (self->want_fetch && self->fetch_inflight == 0)
        return send_fetch(self, nd_store_cursor(self->store), err);
    return 0;
}

/* ------------------------------------------------------------- receiving ---- */

/* Forgets the session (the link is gone); what was wanted is wanted again. */
static void reset_session(nd_conn_t *self)
{
    if (self->push_inflight > 0)
        self->want_push = true;
    if (self->fetch_inflight > 0)
        self->want_fetch = true;
    self->hello_sent = false;
    self->welcomed = false;
    self->push_inflight = 0;
    self->fetch_inflight = 0;
}

/* Reads one monitor event: 1 handled, 0 none waiting, or < 0 (authentication refused). */
static int handle_monitor(nd_conn_t *self, ld_error_t *err)
{
    zmq_msg_t frame;
    uint16_t event = 0;
    uint32_t value = 0;
    bool got = false;

    zmq_msg_init(&frame);
    if (zmq_msg_recv(&frame, self->mon, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&frame);
        return 0;
    }
    if (zmq_msg_size(&frame) >= 6) {
        const uint8_t *data = zmq_msg_data(&frame);
        memcpy(&event, data, sizeof event);
        memcpy(&value, data + 2, sizeof value);
        got = true;
    }
    /* The second frame (the endpoint) is not needed: we have one. */
    while (zmq_msg_more(&frame)) {
        if (zmq_msg_recv(&frame, self->mon, ZMQ_DONTWAIT) < 0)
            break;
    }
    zmq_msg_close(&frame);
    if (!got)
        return 1;

    switch (event) {
    case ZMQ_EVENT_CONNECTED:
        self->ever_connected = true;
        break;
    case ZMQ_EVENT_CONNECT_RETRIED:
        if (!self->link_up) {
            if (self->failing_since == 0)
                self->failing_since = nd_conn_now_ms();
            self->failed_attempts++;
        }
        break;
    case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
        ld_debug("link to %s up", self->endpoint);
        self->ever_handshaken = true;
        self->link_up = true;
        self->last_heard = nd_conn_now_ms();
        self->failing_since = 0;
        self->failed_attempts = 0;
        reset_session(self);
        break;
    case ZMQ_EVENT_DISCONNECTED:
        if (self->link_up || self->hello_sent) {
            ld_debug("link to %s lost", self->endpoint);
            self->lost_pending = true;
        }
        self->link_up = false;
        reset_session(self);
        break;
    case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
        return ld_error_set(err, LD_EAUTH,
                            "authentication refused: the broker at %s does not know this node's key %s "
                            "(register it with `liangdi-broker node add %s --key %s`, or, for a "
                            "key made by `liangdi key new`, `liangdi-broker node rekey %s "
                            "--key %s`)",
                            self->endpoint, self->keys.public_key,
                            nd_store_node_id(self->store), self->keys.public_key,
                            nd_store_node_id(self->store), self->keys.public_key);
    case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
    case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
        self->handshake_failed = true;
        ld_debug("handshake with %s failed (0x%x)", self->endpoint, (unsigned)value);
        break;
    default:
        break;
    }
    return 1;
}

/* Handles every monitor event already queued.  Called before anything is sent, so
 * that nothing of an old session (an Ack, a Fetch) goes out on a new link ahead of
 * its Hello: a drop is always queued before the next link's handshake completes. */
static int drain_monitor(nd_conn_t *self, ld_error_t *err)
{
    int rc;
    while ((rc = handle_monitor(self, err)) == 1)
        ;
    return rc;
}

static int broker_error(nd_conn_t *self, const ld_msg_t *m, ld_error_t *err)
{
    const char *msg = m->u.error.message[0] != '\0' ? m->u.error.message : "(no message)";
    char where[LD_RECORD_ID_MAX + 64] = "";
    if (m->u.error.record_id[0] != '\0' && strstr(msg, m->u.error.record_id) == NULL)
        snprintf(where, sizeof where, " (change %s, seq %llu)", m->u.error.record_id,
                 (unsigned long long)m->u.error.seq);

    switch (m->u.error.code) {
    case LD_ERR_VERSION:
        if (strncmp(msg, "protocol version mismatch", 25) == 0)
            return ld_error_set(err, LD_EVERSION, "%s", msg);
        return ld_error_set(err, LD_EVERSION, "protocol version mismatch: %s", msg);
    case LD_ERR_AUTH:
        if (strncmp(msg, "authentication refused", 22) == 0)
            return ld_error_set(err, LD_EAUTH, "%s", msg);
        return ld_error_set(err, LD_EAUTH, "authentication refused: %s", msg);
    case LD_ERR_DENIED:
        return ld_error_set(err, LD_EDENIED, "refused by the broker: %s%s", msg, where);
    case LD_ERR_CLOCK:
        return ld_error_set(err, LD_ECLOCK, "refused by the broker: %s%s", msg, where);
    case LD_ERR_SEQUENCE:
        return ld_error_set(err, LD_EPROTO, "refused by the broker: %s%s", msg, where);
    case LD_ERR_BAD_MESSAGE:
        return ld_error_set(err, LD_EPROTO, "the broker could not read this node's message: %s",
                            msg);
    case LD_ERR_INTERNAL:
        return ld_error_set(err, LD_EAGAIN, "the broker failed: %s", msg);
    default:
        return ld_error_set(err, LD_EIO, "the broker says: %s%s", msg, where);
    }
}

static int handle_welcome(nd_conn_t *self, const ld_msg_t *m, nd_conn_event_t *ev,
                          ld_error_t *err)
{
    if (!self->hello_sent || self->welcomed) {
        ld_debug("stale welcome ignored");
        return 0;
    }
    const char *me = nd_store_node_id(self->store);
    if (strcmp(m->u.welcome.node_id, me) != 0)
        return ld_error_set(err, LD_EAUTH,
                            "authentication refused: the broker knows this node's key %s as node "
                            "'%s', but this store is node '%s'",
                            self->keys.public_key, m->u.welcome.node_id, me);

    uint64_t local = nd_store_pushed_upto(self->store);
    uint64_t held = m->u.welcome.pushed_upto;
    if (held > local) {
        int rc = nd_store_set_pushed_upto(self->store, held, err);
        if (rc != 0)
            return rc;
    } else if (held < local) {
        ld_warn("the broker holds this node's changes up to seq %llu only, this node had %llu "
                "acked: pushing again from there",
                (unsigned long long)held, (unsigned long long)local);
    }
    self->welcomed = true;
    self->acked = held;
    self->sent_upto = held;
    self->stats.welcomes++;
    self->stats.remaining = m->u.welcome.mailbox_depth;
    *ev = ND_CONN_WELCOMED;
    return 0;
}

static int handle_push_ack(nd_conn_t *self, const ld_msg_t *m, nd_conn_event_t *ev,
                           ld_error_t *err)
{
    if (!self->welcomed)
        return 0;
    if (self->push_inflight > 0)
        self->push_inflight--;
    uint64_t upto = m->u.push_ack.upto;
    if (upto > self->acked) {
        int rc = nd_store_set_pushed_upto(self->store, upto, err);
        if (rc != 0)
            return rc;
        self->stats.pushed += upto - self->acked;
        self->acked = upto;
    }
    if (upto > self->sent_upto)
        self->sent_upto = upto;
    *ev = ND_CONN_PUSHED;
    return 0;
}

/* Takes a Batch and acks it.  With take_first, while more waits at the broker, its new
 * entries go to the inbox with the cursor; otherwise they are applied with the cursor,
 * unless the inbox holds batches still (a sync stopped before it applied them), which
 * they then follow, or they cannot be applied, when they go to the inbox too.  Once
 * nothing more is on its way (the mailbox empty, no Fetch out), whatever waits in the
 * inbox is applied.  m is the batch as ld_batch_peek read it (positions, no changes):
 * only a batch applied here has its changes read here. */
static int handle_batch(nd_conn_t *self, const ld_msg_t *m, const uint8_t *body, size_t len,
                        nd_conn_event_t *ev, ld_error_t *err)
{
    if (!self->welcomed)
        return 0;
    if (self->fetch_inflight > 0)
        self->fetch_inflight--;

    size_t n = m->u.batch.n;
    uint64_t remaining = m->u.batch.remaining;
    for (size_t i = 1; i < n; i++) {
        if (m->u.batch.positions[i] <= m->u.batch.positions[i - 1])
            return ld_error_set(err, LD_EPROTO,
                                "the broker sent a batch out of order (position %llu after %llu)",
                                (unsigned long long)m->u.batch.positions[i],
                                (unsigned long long)m->u.batch.positions[i - 1]);
    }

    int rc;
    if (n > 0) {
        uint64_t last = m->u.batch.positions[n - 1];
        /* The next Fetch goes out before this batch is stored: the broker reads while
         * we write. */
        rc = drain_monitor(self, err);
        if (rc < 0)
            return rc;
        if (remaining > 0 && self->fetch_inflight == 0 && self->welcomed) {
            rc = send_fetch(self, last, err);
            if (rc < 0)
                return rc;
        }
        uint64_t cursor = nd_store_cursor(self->store);
        size_t skip = 0;
        while (skip < n && m->u.batch.positions[skip] <= cursor)
            skip++;
        if (skip < n) {
            ld_error_t ierr;
            ld_error_clear(&ierr);
            /* Whether the inbox holds batches is asked only when it decides anything. */
            bool to_inbox = self->take_first && remaining > 0;
            if (!to_inbox) {
                uint64_t waiting = 0, waiting_changes = 0;
                rc = nd_inbox_depth(self->store, &waiting, &waiting_changes, &ierr);
                to_inbox = waiting > 0;
            }
            if (rc == 0 && !to_inbox) {
                rc = nd_store_apply_body(self->store, body, len, cursor, last, NULL, &ierr);
                /* A batch that cannot be read or applied here waits in the inbox, and
                 * the mailbox goes on. */
                if (rc != 0) {
                    ld_warn("a batch from the broker waits in the inbox: %s", ierr.msg);
                    ld_error_clear(&ierr);
                    to_inbox = true;
                    rc = 0;
                }
            }
            if (rc == 0 && to_inbox)
                rc = nd_inbox_put(self->store, body, len, cursor, last, n - skip, &ierr);
            if (rc != 0)
                return ld_error_set(err, rc, "taking a batch from the broker: %s", ierr.msg);
            self->stats.fetched += n - skip;
        }
        /* Taking took a while: the link may have changed meanwhile. */
        rc = drain_monitor(self, err);
        if (rc < 0)
            return rc;
        if (self->welcomed) {
            rc = send_ack(self, last, err);
            if (rc < 0)
                return rc;
        }
    }
    self->stats.remaining = remaining;
    if ((remaining == 0 || n == 0) && self->fetch_inflight == 0) {
        /* A batch that cannot be applied stays, with those after it; the link goes on
         * (`liangdi sync` applies once more after its round, and reports it). */
        ld_error_t aerr;
        ld_error_clear(&aerr);
        if (nd_inbox_apply(self->store, self->applying, self->applying_ctx, NULL, &aerr) != 0)
            ld_warn("%s", aerr.msg);
        if (self->fetch_again)
            self->fetch_again = false;
        else
            self->want_fetch = false;
    }
    *ev = ND_CONN_FETCHED;
    return 0;
}

/* Reads one message: 0 (handled or ignored) or < 0. */
static int handle_message(nd_conn_t *self, nd_conn_event_t *ev, ld_error_t *err)
{
    zmq_msg_t frames[2];
    size_t nframes = 0;
    bool more = true;
    int rc = 0;

    zmq_msg_init(&frames[0]);
    zmq_msg_init(&frames[1]);
    while (more) {
        zmq_msg_t *f = &frames[nframes < 2 ? nframes : 1];
        if (nframes >= 2) {
            zmq_msg_close(f);
            zmq_msg_init(f);
        }
        if (zmq_msg_recv(f, self->sock, ZMQ_DONTWAIT) < 0) {
            if (errno == EAGAIN || errno == EINTR)
                goto out;
            rc = ld_error_set(err, LD_EIO, "receiving from %s: %s", self->endpoint,
                              zmq_strerror(errno));
            goto out;
        }
        nframes++;
        more = zmq_msg_more(f);
    }
    self->last_heard = nd_conn_now_ms();
    if (nframes != 2) {
        ld_warn("ignored a message of %zu frames from %s", nframes, self->endpoint);
        goto out;
    }

    ld_msg_type_t type = LD_MSG_NONE;
    unsigned version = 0;
    ld_error_t perr;
    ld_error_clear(&perr);
    int prc = ld_frame_parse(zmq_msg_data(&frames[0]), zmq_msg_size(&frames[0]), &type,
                             &version, &perr);
    if (prc == LD_EVERSION) {
        rc = ld_error_set(err, LD_EVERSION,
                          "protocol version mismatch: this liangdi speaks %d, the broker %u: "
                          "upgrade %s", LD_PROTOCOL_VERSION, version,
                          version > LD_PROTOCOL_VERSION ? "this node" : "the broker");
        goto out;
    }
    if (prc != 0) {
        ld_warn("ignored a message from %s: %s", self->endpoint, perr.msg);
        goto out;
    }

    /* A Batch is read for its positions only: its changes are decoded when they are
     * applied, here at once or later from the inbox. */
    ld_msg_t m;
    if (type == LD_MSG_BATCH)
        rc = ld_batch_peek(zmq_msg_data(&frames[1]), zmq_msg_size(&frames[1]), &m, &perr);
    else
        rc = ld_msg_decode(type, zmq_msg_data(&frames[1]), zmq_msg_size(&frames[1]), &m,
                           &perr);
    if (rc != 0) {
        rc = ld_error_set(err, rc, "the broker sent a %s this node cannot read: %s",
                          ld_msg_type_name(type), perr.msg);
        goto out;
    }
    switch (type) {
    case LD_MSG_WELCOME:
        rc = handle_welcome(self, &m, ev, err);
        break;
    case LD_MSG_PUSH_ACK:
        rc = handle_push_ack(self, &m, ev, err);
        break;
    case LD_MSG_BATCH:
        rc = handle_batch(self, &m, zmq_msg_data(&frames[1]), zmq_msg_size(&frames[1]), ev,
                          err);
        break;
    case LD_MSG_NOTIFY:
        if (self->welcomed)
            *ev = ND_CONN_NOTIFIED;
        break;
    case LD_MSG_ERROR:
        rc = broker_error(self, &m, err);
        break;
    default:
        ld_warn("ignored a %s from %s", ld_msg_type_name(type), self->endpoint);
        break;
    }
    ld_msg_clear(&m);

out:
    zmq_msg_close(&frames[0]);
    zmq_msg_close(&frames[1]);
    return rc;
}

int nd_conn_step(nd_conn_t *self, int64_t deadline_ms, nd_conn_event_t *ev, ld_error_t *err)
{
    *ev = ND_CONN_NOTHING;
    bool was_pushing = nd_conn_pushing(self), was_fetching = nd_conn_fetching(self);
    int rc = pump(self, err);
    if (rc < 0)
        return rc;
    /* Sending found a direction done (an empty outbox): let the caller see it now. */
    if (nd_conn_pushing(self) != was_pushing || nd_conn_fetching(self) != was_fetching)
        return 0;

    int64_t wait = deadline_ms - nd_conn_now_ms();
    if (wait < 0)
        wait = 0;
    zmq_pollitem_t items[2] = {
        { .socket = self->mon, .events = ZMQ_POLLIN },
        { .socket = self->sock, .events = ZMQ_POLLIN },
    };
    /* A new link whose Hello could not go yet: wake when the socket can send. */
    if (self->link_up && !self->hello_sent)
        items[1].events |= ZMQ_POLLOUT;
    int n = zmq_poll(items, 2, (long)wait);
    if (n < 0) {
        if (errno == EINTR) {
            *ev = ND_CONN_INTERRUPTED;
            return 0;
        }
        return ld_error_set(err, LD_EIO, "zmq_poll: %s", zmq_strerror(errno));
    }
    if (n == 0) {
        *ev = ND_CONN_TIMEOUT;
        return 0;
    }
    /* Link events first: a message read after them belongs to the link they describe. */
    if (items[0].revents & ZMQ_POLLIN)
        rc = drain_monitor(self, err);
    else if (items[1].revents & ZMQ_POLLIN)
        rc = handle_message(self, ev, err);
    if (rc < 0)
        return rc;
    rc = pump(self, err);
    if (self->lost_pending && (*ev == ND_CONN_NOTHING || !self->welcomed)) {
        self->lost_pending = false;
        *ev = ND_CONN_LOST;
    }
    return rc;
}
