/* server.c: the broker's relay: one ROUTER socket (CURVE, ZAP) served by one thread,
 * turning Hello, Push, Fetch and Ack into replies from the durable mailboxes.
 *
 * Every message is read whole (extra frames drained), its sender named by the
 * User-Id that ZAP bound to the connection, and that node re-checked against the
 * registry snapshot.  No state is kept for a peer until its Hello passes; then a
 * bounded table maps its routing id to its node, for Notify.  Replies go out with
 * ZMQ_DONTWAIT to a ZMQ_ROUTER_MANDATORY socket: what cannot be delivered is
 * dropped, and stays in the mailbox for the next Fetch.
 *
 * Durability: a store that syncs in the background (the embedded one: syncer.h) gives
 * each stored push a ticket; its PUSH_ACK and Notifys are held (held.h) until the store
 * says that ticket is on the disk, and a Welcome or a Batch first waits for every push
 * stored (sv_settle).  A store that cannot sync any more stops the broker. */
#include "server.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>
#include "codec.h"
#include "frame.h"
#include "heap.h"
#include "held.h"
#include "hlc.h"
#include "keys.h"
#include "log.h"
#include "mailbox.h"
#include "registry.h"
#include "schema.h"
#include "zap.h"

#define SV_ROUTING_MAX     256      /* libzmq routing ids are at most 255 bytes */
#define SV_BURST           256      /* messages served before housekeeping gets a turn */
#define SV_TICK_MS         1000
#define SV_SELF_CHECK_MS   5000
#define SV_BATCH_SLACK     64       /* bytes kept free in a Batch for its `remaining` */

/* A peer whose Hello passed. */
typedef struct sv_peer {
    uint8_t  rid[SV_ROUTING_MAX];
    size_t   rid_len;
    char     node[LD_ID_MAX + 1];
    char     key[LD_KEY_TEXT + 1];     /* the public key ZAP admitted it with */
    int64_t  last_ms;              /* monotonic */
} sv_peer_t;

/* One message as received: the first LD_FRAMES_MAX frames, and how many there were. */
typedef struct sv_in {
    zmq_msg_t part[LD_FRAMES_MAX];
    size_t    kept;
    size_t    nparts;
} sv_in_t;

struct bk_server {
    bk_server_opts_t opts;
    char            *endpoint;
    ld_keypair_t     keys;
    bk_registry_t   *registry;
    bk_mailbox_t    *mailbox;
    void            *ctx;
    bk_zap_t        *zap;
    void            *router;
    sv_peer_t       *peers;
    size_t           npeers, peers_cap;
    ld_buf_t         batch;          /* reused for every Batch */
    int64_t          last_tick_ms;
    bk_held_t       *held;           /* PUSH_ACKs waiting for their push to be durable */
    uint64_t         durable;        /* the mailbox store's ticket known durable */
    bool             unsyncable;     /* the store failed to make a push durable: stop */
    ld_error_t       sync_err;       /* why */
};

static int64_t sv_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- peers ---- */

static sv_peer_t *sv_peer_find(bk_server_t *self, const uint8_t *rid, size_t rid_len)
{
    for (size_t i = 0; i < self->npeers; i++)
        if (self->peers[i].rid_len == rid_len && memcmp(self->peers[i].rid, rid, rid_len) == 0)
            return &self->peers[i];
    return NULL;
}

static void sv_peer_drop(bk_server_t *self, sv_peer_t *peer)
{
    size_t i = (size_t)(peer - self->peers);
    self->peers[i] = self->peers[self->npeers - 1];
    self->npeers--;
}

/* The entry for a peer whose Hello passed: found, added, or (table full) taking the
 * place of the longest silent one.  NULL only if memory runs out. */
static sv_peer_t *sv_peer_add(bk_server_t *self, const uint8_t *rid, size_t rid_len,
                              const char *node, const char *key)
{
    sv_peer_t *peer = sv_peer_find(self, rid, rid_len);
    if (!peer && self->npeers >= self->opts.max_peers) {
        peer = &self->peers[0];
        for (size_t i = 1; i < self->npeers; i++)
            if (self->peers[i].last_ms < peer->last_ms)
                peer = &self->peers[i];
        ld_info("peer table full (%zu): forgetting a connection of node %s", self->npeers,
                peer->node);
    }
    if (!peer) {
        if (self->npeers == self->peers_cap) {
            size_t cap = self->peers_cap ? self->peers_cap * 2 : 16;
            if (cap > self->opts.max_peers)
                cap = self->opts.max_peers;
            sv_peer_t *grown = realloc(self->peers, cap * sizeof *grown);
            if (!grown)
                return NULL;
            self->peers = grown;
            self->peers_cap = cap;
        }
        peer = &self->peers[self->npeers++];
    }
    memcpy(peer->rid, rid, rid_len);
    peer->rid_len = rid_len;
    snprintf(peer->node, sizeof peer->node, "%s", node);
    snprintf(peer->key, sizeof peer->key, "%s", key);
    peer->last_ms = sv_now_ms();
    return peer;
}

/* ---- sending ---- */

/* Sends header and body to one routing id, never blocking.  0, or -1 when the peer is
 * gone or its queue is full (the message is dropped; mailboxes keep what matters). */
static int sv_send(bk_server_t *self, const uint8_t *rid, size_t rid_len, ld_msg_type_t type,
                   const uint8_t *body, size_t len)
{
    uint8_t header[LD_HEADER_SIZE];
    ld_frame_header(type, header);
    if (zmq_send(self->router, rid, rid_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
        int e = zmq_errno();
        if (e == EHOSTUNREACH) {
            sv_peer_t *peer = sv_peer_find(self, rid, rid_len);
            if (peer)
                sv_peer_drop(self, peer);
            ld_debug("%s not sent: the peer has gone", ld_msg_type_name(type));
        } else {
            ld_warn("%s not sent: %s", ld_msg_type_name(type), zmq_strerror(e));
        }
        return -1;
    }
    if (zmq_send(self->router, header, sizeof header, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0
        || zmq_send(self->router, len ? body : (const uint8_t *)"", len, ZMQ_DONTWAIT) < 0) {
        ld_warn("%s not sent: %s", ld_msg_type_name(type), zmq_strerror(zmq_errno()));
        return -1;
    }
    return 0;
}

static int sv_send_msg(bk_server_t *self, const uint8_t *rid, size_t rid_len, const ld_msg_t *m)
{
    uint8_t *body = NULL;
    size_t len = 0;
    ld_error_t err;
    if (ld_msg_encode(m, &body, &len, &err) < 0) {
        ld_err("cannot encode %s: %s", ld_msg_type_name(m->type), err.msg);
        return -1;
    }
    int rc = sv_send(self, rid, rid_len, m->type, body, len);
    free(body);
    return rc;
}

/* Replaces any byte that would make `s` invalid UTF-8 with '?', so that a message
 * quoting a peer's bytes can always be encoded. */
static void sv_sanitize(char *s)
{
    if (ld_utf8_valid(s, strlen(s)))
        return;
    for (char *p = s; *p; p++)
        if ((unsigned char)*p >= 0x80 || (unsigned char)*p < 0x20)
            *p = '?';
}

static void sv_error(bk_server_t *self, const uint8_t *rid, size_t rid_len,
                     ld_error_code_t code, const char *record_id, uint64_t seq,
                     const char *fmt, ...) __attribute__((format(printf, 7, 8)));

/* Sends ERROR(code) with a one-line message, and the offending change if any. */
static void sv_error(bk_server_t *self, const uint8_t *rid, size_t rid_len,
                     ld_error_code_t code, const char *record_id, uint64_t seq,
                     const char *fmt, ...)
{
    ld_msg_t m;
    va_list ap;
    ld_msg_init(&m, LD_MSG_ERROR);
    m.u.error.code = code;
    va_start(ap, fmt);
    vsnprintf(m.u.error.message, sizeof m.u.error.message, fmt, ap);
    va_end(ap);
    sv_sanitize(m.u.error.message);
    if (record_id)
        snprintf(m.u.error.record_id, sizeof m.u.error.record_id, "%s", record_id);
    m.u.error.seq = seq;
    sv_send_msg(self, rid, rid_len, &m);
    ld_msg_clear(&m);
}

/* ---- receiving ---- */

static void sv_in_close(sv_in_t *in)
{
    for (size_t i = 0; i < in->kept; i++)
        zmq_msg_close(&in->part[i]);
    in->kept = 0;
    in->nparts = 0;
}

/* Receives one whole message without blocking, keeping its first frames and draining
 * the rest.  1 when one was read, 0 when none is waiting, -1 on a socket error. */
static int sv_recv(bk_server_t *self, sv_in_t *in)
{
    int more = 0;
    size_t more_len = sizeof more;
    in->kept = 0;
    in->nparts = 0;
    do {
        zmq_msg_t part;
        zmq_msg_init(&part);
        if (zmq_msg_recv(&part, self->router, in->nparts == 0 ? ZMQ_DONTWAIT : 0) < 0) {
            int e = zmq_errno();
            zmq_msg_close(&part);
            if (in->nparts == 0 && (e == EAGAIN || e == EINTR))
                return 0;
            sv_in_close(in);
            ld_err("receive failed: %s", zmq_strerror(e));
            return -1;
        }
        if (in->kept < LD_FRAMES_MAX) {
            zmq_msg_init(&in->part[in->kept]);
            zmq_msg_move(&in->part[in->kept], &part);
            in->kept++;
        }
        zmq_msg_close(&part);
        in->nparts++;
        if (zmq_getsockopt(self->router, ZMQ_RCVMORE, &more, &more_len) < 0)
            more = 0;
    } while (more);
    return 1;
}

/* ---- durability ---- */

static void sv_notify(bk_server_t *self, const char *const *nodes, size_t nnodes);

/* Sends a PUSH_ACK, then the Notifys for the mailboxes its push grew (a bk_held_fn). */
static void sv_push_acked(void *ctx, const uint8_t *rid, size_t rid_len, uint64_t upto,
                          const char *const *notify, size_t nnotify)
{
    bk_server_t *self = ctx;
    ld_msg_t ack;
    ld_msg_init(&ack, LD_MSG_PUSH_ACK);
    ack.u.push_ack.upto = upto;
    sv_send_msg(self, rid, rid_len, &ack);
    ld_msg_clear(&ack);
    if (nnotify > 0)
        sv_notify(self, notify, nnotify);
}

/* The store cannot make pushes durable any more: nothing held may be sent, and the
 * broker stops (bk_server_run fails) so that it starts again from what is on the
 * disk.  Returns -1. */
static int sv_unsyncable(bk_server_t *self, const ld_error_t *err)
{
    if (!self->unsyncable) {
        self->unsyncable = true;
        self->sync_err = *err;
        ld_err("%s: %zu push acks withheld; the broker stops", err->msg,
               bk_held_count(self->held));
    }
    return -1;
}

/* Learns how far the store is durable and sends every reply that waited for it: 0, or
 * -1 (sv_unsyncable). */
static int sv_synced(bk_server_t *self)
{
    uint64_t ticket = 0;
    ld_error_t err;
    if (self->unsyncable)
        return -1;
    if (bk_mailbox_synced(self->mailbox, &ticket, &err) < 0)
        return sv_unsyncable(self, &err);
    if (ticket > self->durable)
        self->durable = ticket;
    bk_held_release(self->held, self->durable, sv_push_acked, self);
    return 0;
}

/* Waits until every push stored is durable: a reply that reads the mailboxes (a
 * Welcome's high-water mark, a Batch) never shows what a power cut could undo.  0, or
 * -1 (sv_unsyncable). */
static int sv_settle(bk_server_t *self)
{
    ld_error_t err;
    if (self->unsyncable)
        return -1;
    if (bk_mailbox_written(self->mailbox) <= self->durable)
        return 0;
    if (bk_mailbox_settle(self->mailbox, &err) < 0)
        return sv_unsyncable(self, &err);
    return sv_synced(self);
}

/* sv_settle before a reply that reads the mailboxes: true, or false with the peer told
 * the broker cannot go on. */
static bool sv_settled_for(bk_server_t *self, const uint8_t *rid, size_t rid_len)
{
    if (sv_settle(self) == 0)
        return true;
    sv_error(self, rid, rid_len, LD_ERR_INTERNAL, NULL, 0,
             "the broker cannot make its store durable");
    return false;
}

/* Answers a stored push once it is durable: at once if it is already, else later, in
 * order, from sv_synced. */
static void sv_push_answer(bk_server_t *self, const uint8_t *rid, size_t rid_len, uint64_t upto,
                           const char *const *notify, size_t nnotify)
{
    uint64_t ticket = bk_mailbox_written(self->mailbox);
    if (bk_held_add(self->held, ticket, rid, rid_len, upto, notify, nnotify) == 0) {
        bk_held_release(self->held, self->durable, sv_push_acked, self);
        return;
    }
    /* no memory to hold it: wait for the disk here instead */
    if (sv_settle(self) == 0)
        sv_push_acked(self, rid, rid_len, upto, notify, nnotify);
}

/* ---- the messages ---- */

static void sv_welcome(bk_server_t *self, const uint8_t *rid, size_t rid_len, const char *node)
{
    ld_msg_t m;
    ld_error_t err;
    uint64_t pushed = 0, depth = 0;
    if (!sv_settled_for(self, rid, rid_len))
        return;
    if (bk_mailbox_pushed_upto(self->mailbox, node, &pushed, &err) < 0
        || bk_mailbox_depth(self->mailbox, node, &depth, &err) < 0) {
        ld_err("hello from %s: %s", node, err.msg);
        sv_error(self, rid, rid_len, LD_ERR_INTERNAL, NULL, 0, "the broker cannot read its store");
        return;
    }
    ld_msg_init(&m, LD_MSG_WELCOME);
    m.u.welcome.protocol_version = LD_PROTOCOL_VERSION;
    m.u.welcome.schema_version = LD_SCHEMA_VERSION;
    snprintf(m.u.welcome.node_id, sizeof m.u.welcome.node_id, "%s", node);
    m.u.welcome.pushed_upto = pushed;
    m.u.welcome.mailbox_depth = depth;
    sv_send_msg(self, rid, rid_len, &m);
    ld_msg_clear(&m);
}

static void sv_hello(bk_server_t *self, const uint8_t *rid, size_t rid_len, const char *node,
                     const char *key, const ld_msg_t *m)
{
    uint32_t pv = m->u.hello.protocol_version, sv = m->u.hello.schema_version;
    if (pv != LD_PROTOCOL_VERSION) {
        ld_warn("hello from %s: protocol version %u, this broker speaks %u", node, pv,
                LD_PROTOCOL_VERSION);
        sv_error(self, rid, rid_len, LD_ERR_VERSION, NULL, 0,
                 "node %s speaks protocol version %u, this broker speaks %u: the %s must upgrade",
                 node, pv, LD_PROTOCOL_VERSION, pv < LD_PROTOCOL_VERSION ? "node" : "broker");
        return;
    }
    if (sv != LD_SCHEMA_VERSION) {
        ld_warn("hello from %s: schema version %u, this broker knows %u", node, sv,
                LD_SCHEMA_VERSION);
        sv_error(self, rid, rid_len, LD_ERR_VERSION, NULL, 0,
                 "node %s has record schema version %u, this broker knows %u: the %s must upgrade",
                 node, sv, LD_SCHEMA_VERSION, sv < LD_SCHEMA_VERSION ? "node" : "broker");
        return;
    }
    if (strcmp(m->u.hello.node_id, node) != 0) {
        ld_warn("hello from %s claiming to be %s: refused", node, m->u.hello.node_id);
        sv_error(self, rid, rid_len, LD_ERR_AUTH, NULL, 0,
                 "this connection is authenticated as node %s, not %s", node,
                 m->u.hello.node_id);
        return;
    }
    if (!sv_peer_add(self, rid, rid_len, node, key)) {
        sv_error(self, rid, rid_len, LD_ERR_INTERNAL, NULL, 0, "the broker is out of memory");
        return;
    }
    ld_info("hello from node %s (%s)", node, m->u.hello.software);
    sv_welcome(self, rid, rid_len, node);
}

static int sv_cmp_text(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Tells every connection whose node is in `nodes` (sorted, distinct) that its mailbox
 * grew: one pass over the peer table, one depth read per connection told. */
static void sv_notify(bk_server_t *self, const char *const *nodes, size_t nnodes)
{
    uint64_t depth = 0;
    ld_error_t err;
    for (size_t i = 0; nnodes > 0 && i < self->npeers; ) {
        sv_peer_t *peer = &self->peers[i];
        size_t before = self->npeers;
        const char *key = peer->node;
        if (bsearch(&key, nodes, nnodes, sizeof *nodes, sv_cmp_text)) {
            if (bk_mailbox_depth(self->mailbox, peer->node, &depth, &err) < 0) {
                ld_err("notify %s: %s", peer->node, err.msg);
                i++;
                continue;
            }
            ld_msg_t m;
            ld_msg_init(&m, LD_MSG_NOTIFY);
            m.u.notify.mailbox_depth = depth;
            sv_send_msg(self, peer->rid, peer->rid_len, &m);
            ld_msg_clear(&m);
        }
        if (self->npeers == before)   /* a peer found gone was dropped in its place */
            i++;
    }
}

/* A push's working set: each change's bytes (as received) and where it goes, and the
 * first check a change failed.  That refusal is sent only once every change was read:
 * a change that cannot be read makes the push a bad message, whatever else is wrong. */
typedef struct sv_push {
    bk_push_item_t *items;
    const char    **to;          /* n * LD_AUDIENCE_MAX slots, pointing into `names` */
    const char    **notify;      /* recipients, then sorted and distinct */
    ld_arena_t      names;       /* the recipients' node ids */
    size_t          n, nnotify;
    ld_error_code_t refusal;     /* LD_ERR_UNSPECIFIED: none */
    char            refusal_record[LD_RECORD_ID_MAX + 1];
    uint64_t        refusal_seq;
    char            refusal_text[LD_ERROR_MSG_MAX];  /* for the node and the log */
} sv_push_t;

static void sv_push_free(sv_push_t *p)
{
    free(p->items);
    free(p->to);
    free(p->notify);
    ld_arena_release(&p->names);
    memset(p, 0, sizeof *p);
}

static void sv_push_refuse(sv_push_t *p, ld_error_code_t code, const ld_change_t *c,
                           const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Notes why the push is refused, for change c. */
static void sv_push_refuse(sv_push_t *p, ld_error_code_t code, const ld_change_t *c,
                           const char *fmt, ...)
{
    va_list ap;
    p->refusal = code;
    snprintf(p->refusal_record, sizeof p->refusal_record, "%s", c->record_id);
    p->refusal_seq = c->seq;
    va_start(ap, fmt);
    vsnprintf(p->refusal_text, sizeof p->refusal_text, fmt, ap);
    va_end(ap);
}

/* Notes a failure of the broker's own (its store, its memory): nothing of the push is
 * stored, and the node is told so unless a change turns out unreadable. */
static void sv_push_fail(sv_push_t *p, const char *text)
{
    if (p->refusal != LD_ERR_UNSPECIFIED)
        return;
    p->refusal = LD_ERR_INTERNAL;
    p->refusal_record[0] = '\0';
    p->refusal_seq = 0;
    snprintf(p->refusal_text, sizeof p->refusal_text, "%s", text);
}

/* Checks one change of node's push against what the broker holds (its changes up to
 * *expect, moved on here) and its links; a change that fails is noted in p. */
static void sv_push_check(bk_server_t *self, sv_push_t *p, const char *node,
                          const ld_change_t *c, uint64_t wall, uint64_t *expect)
{
    unsigned long long seq = (unsigned long long)c->seq;
    ld_error_t err;
    if (strcmp(c->origin, node) != 0) {
        sv_push_refuse(p, LD_ERR_DENIED, c, "change of record %s seq %llu has origin %s, but "
                       "the sender is %s: nothing of this push was stored", c->record_id, seq,
                       c->origin, node);
        return;
    }
    for (size_t j = 0; j < c->naudience; j++) {
        if (!bk_registry_may_address(self->registry, node, c->audience[j])) {
            sv_push_refuse(p, LD_ERR_DENIED, c, "change of record %s seq %llu is addressed to "
                           "node %s, which node %s is not linked to: nothing of this push was "
                           "stored", c->record_id, seq, c->audience[j], node);
            return;
        }
    }
    if (ld_hlc_check(c->hlc, wall, self->opts.max_clock_drift_ms, &err) < 0) {
        sv_push_refuse(p, LD_ERR_CLOCK, c, "change of record %s seq %llu is stamped more than "
                       "%llu s ahead of the broker's clock (%s): nothing of this push was "
                       "stored", c->record_id, seq,
                       (unsigned long long)(self->opts.max_clock_drift_ms / 1000), err.msg);
        return;
    }
    if (c->seq > *expect + 1) {
        sv_push_refuse(p, LD_ERR_SEQUENCE, c, "change of record %s seq %llu skips ahead: the "
                       "broker holds node %s's changes up to seq %llu", c->record_id, seq,
                       node, (unsigned long long)*expect);
        return;
    }
    if (c->seq == *expect + 1)
        *expect = c->seq;
}

/* Adds change c (item i, not a duplicate) to the push: its bytes as received, and the
 * active nodes it goes to, each once.  0, or LD_ENOMEM. */
static int sv_push_add(bk_server_t *self, sv_push_t *p, const char *node, size_t i,
                       const ld_change_t *c)
{
    bk_push_item_t *it = &p->items[i];
    const char **to = &p->to[i * LD_AUDIENCE_MAX];
    it->body = c->wire;               /* validated whole by the reader; stored as sent */
    it->len = c->wire_len;
    for (size_t j = 0; j < c->naudience; j++) {
        const char *dest = c->audience[j];
        bool seen = strcmp(dest, node) == 0 || !bk_registry_active(self->registry, dest);
        for (size_t k = 0; !seen && k < it->nto; k++)
            seen = strcmp(to[k], dest) == 0;
        if (seen)
            continue;
        const char *name = ld_arena_text(&p->names, dest, strlen(dest));
        if (name == NULL)
            return LD_ENOMEM;
        to[it->nto++] = name;
        p->notify[p->nnotify++] = name;
    }
    return 0;
}

/* Stores a push from node, read a change at a time from its body (borrowed from the
 * message being handled): every change checked first, so that a refused push stores
 * nothing; the reply is PUSH_ACK, or ERROR naming the change that was refused. */
static void sv_push(bk_server_t *self, const uint8_t *rid, size_t rid_len, const char *node,
                    const uint8_t *body, size_t len)
{
    sv_push_t p = { 0 };
    ld_change_reader_t r;
    ld_change_t c;
    ld_error_t err;
    uint64_t hw = 0, upto = 0, position = 0;
    size_t stored = 0, n = 0;
    uint64_t wall = ld_hlc_wall_now();
    int rc = ld_change_reader_init(&r, LD_MSG_PUSH, body, len, &err);
    if (rc != 0)
        goto bad;
    /* A failure of the broker's own is noted as a refusal is: the push is still read
     * to its end, and a change that cannot be read outranks it. */
    if (bk_mailbox_pushed_upto(self->mailbox, node, &hw, &err) < 0) {
        ld_err("push from %s: %s", node, err.msg);
        sv_push_fail(&p, "the broker cannot read its store");
    }
    n = r.count;
    if (n > 0 && p.refusal == LD_ERR_UNSPECIFIED) {
        p.items = calloc(n, sizeof *p.items);
        p.to = calloc(n * LD_AUDIENCE_MAX, sizeof *p.to);
        p.notify = calloc(n * LD_AUDIENCE_MAX, sizeof *p.notify);
        if (!p.items || !p.to || !p.notify)
            sv_push_fail(&p, "the broker is out of memory");
    }
    p.n = n;
    ld_arena_init(&p.names, 4096);
    uint64_t expect = hw, at = hw;
    for (size_t i = 0; (rc = ld_change_reader_next(&r, &c, &position, &err)) == 1; i++) {
        if (p.refusal == LD_ERR_UNSPECIFIED)
            sv_push_check(self, &p, node, &c, wall, &expect);
        if (p.refusal != LD_ERR_UNSPECIFIED)
            continue;                 /* read on: a change that cannot be read outranks it */
        p.items[i].seq = c.seq;
        p.items[i].to = &p.to[i * LD_AUDIENCE_MAX];
        if (c.seq <= at)
            continue;                 /* a duplicate: the store skips it */
        at = c.seq;
        if (sv_push_add(self, &p, node, i, &c) != 0)
            sv_push_fail(&p, "the broker is out of memory");
    }
    if (rc < 0)
        goto bad;
    if (p.refusal != LD_ERR_UNSPECIFIED) {
        if (p.refusal != LD_ERR_INTERNAL)
            ld_warn("push from %s refused: %s", node, p.refusal_text);
        sv_error(self, rid, rid_len, p.refusal, p.refusal_record, p.refusal_seq, "%s",
                 p.refusal_text);
        goto out;
    }
    /* the mailboxes to notify: sorted, each once */
    if (p.nnotify > 1) {
        qsort(p.notify, p.nnotify, sizeof *p.notify, sv_cmp_text);
        size_t distinct = 1;
        for (size_t k = 1; k < p.nnotify; k++)
            if (strcmp(p.notify[k], p.notify[distinct - 1]) != 0)
                p.notify[distinct++] = p.notify[k];
        p.nnotify = distinct;
    }

    if (bk_mailbox_push(self->mailbox, node, p.items, n, &upto, &stored, &err) < 0) {
        ld_err("push from %s: nothing stored: %s", node, err.msg);
        sv_error(self, rid, rid_len, LD_ERR_INTERNAL, NULL, 0,
                 "the broker could not store this push; nothing of it was stored");
        goto out;
    }
    ld_debug("push from %s: %zu changes, %zu new, upto %llu", node, n, stored,
             (unsigned long long)upto);
    if (stored > 0)
        bk_registry_note_pushed(self->registry, node, stored);

    sv_push_answer(self, rid, rid_len, upto, (const char *const *)p.notify,
                   stored > 0 ? p.nnotify : 0);
    goto out;
bad:
    ld_warn("bad %s from node %s: %s", ld_msg_type_name(LD_MSG_PUSH), node, err.msg);
    sv_error(self, rid, rid_len, LD_ERR_BAD_MESSAGE, NULL, 0, "bad %s: %s",
             ld_msg_type_name(LD_MSG_PUSH), err.msg);
out:
    ld_change_reader_clear(&r);
    sv_push_free(&p);
}

/* Appends one mailbox entry to the Batch in hand, stopping before LD_BATCH_BYTES (an
 * entry alone may pass it, up to the body limit). */
static int sv_fetch_entry(void *ctx, uint64_t position, const uint8_t *body, size_t len)
{
    bk_server_t *self = ctx;
    if (self->batch.len > 0 && self->batch.len + len + SV_BATCH_SLACK > LD_BATCH_BYTES)
        return 1;
    int rc = ld_batch_append(&self->batch, position, body, len);
    return rc < 0 ? rc : 0;
}

static void sv_fetch(bk_server_t *self, const uint8_t *rid, size_t rid_len, const char *node,
                     const ld_msg_t *m)
{
    ld_error_t err;
    uint64_t remaining = 0;
    uint32_t credit = m->u.fetch.credit;
    if (credit > LD_BATCH_MAX)
        credit = LD_BATCH_MAX;
    if (!sv_settled_for(self, rid, rid_len))
        return;
    ld_buf_reset(&self->batch);
    int n = bk_mailbox_fetch(self->mailbox, node, m->u.fetch.cursor, credit, sv_fetch_entry,
                             self, &remaining, &err);
    if (n < 0) {
        ld_err("fetch by %s: %s", node, err.msg);
        sv_error(self, rid, rid_len, LD_ERR_INTERNAL, NULL, 0, "the broker cannot read its store");
        return;
    }
    if (ld_batch_finish(&self->batch, remaining) < 0) {
        ld_err("fetch by %s: cannot build the batch", node);
        sv_error(self, rid, rid_len, LD_ERR_INTERNAL, NULL, 0, "the broker is out of memory");
        return;
    }
    ld_debug("fetch by %s after %llu: %d entries, %llu remain", node,
             (unsigned long long)m->u.fetch.cursor, n, (unsigned long long)remaining);
    sv_send(self, rid, rid_len, LD_MSG_BATCH, self->batch.data, self->batch.len);
    if (n > 0)
        bk_registry_note_fetched(self->registry, node, (uint64_t)n);
    if (self->batch.cap > 4u * 1024u * 1024u) {
        ld_buf_free(&self->batch);     /* a rare huge batch does not keep its memory */
        memset(&self->batch, 0, sizeof self->batch);
    }
}

static void sv_ack(bk_server_t *self, const uint8_t *rid, size_t rid_len, const char *node,
                   const ld_msg_t *m)
{
    ld_error_t err;
    if (bk_mailbox_ack(self->mailbox, node, m->u.ack.upto, &err) < 0) {
        ld_err("ack by %s: %s", node, err.msg);
        sv_error(self, rid, rid_len, LD_ERR_INTERNAL, NULL, 0, "the broker cannot reclaim: %s",
                 "its store failed");
        return;
    }
    ld_debug("ack by %s up to %llu", node, (unsigned long long)m->u.ack.upto);
}

/* Whether a connection of `node`, admitted with public key `key`, may still speak. */
typedef enum sv_admission {
    SV_ADMITTED,
    SV_REMOVED,        /* the node was removed (or was never registered) */
    SV_KEY_REPLACED,   /* `node rekey` gave the node another key */
} sv_admission_t;

static sv_admission_t sv_check_admission(const bk_server_t *self, const char *node,
                                         const char *key)
{
    if (!bk_registry_active(self->registry, node))
        return SV_REMOVED;
    if (!bk_registry_holds_key(self->registry, node, key))
        return SV_KEY_REPLACED;
    return SV_ADMITTED;
}

/* Sends node's connection ERROR(AUTH) saying why it is refused. */
static void sv_refuse(bk_server_t *self, const uint8_t *rid, size_t rid_len, const char *node,
                      sv_admission_t admission)
{
    if (admission == SV_REMOVED)
        sv_error(self, rid, rid_len, LD_ERR_AUTH, NULL, 0,
                 "node %s is not registered with this broker (removed)", node);
    else
        sv_error(self, rid, rid_len, LD_ERR_AUTH, NULL, 0,
                 "the key of node %s was replaced on this broker: this connection's key is "
                 "no longer accepted", node);
}

/* Sends ERROR(AUTH) to, and forgets, every peer whose node is no longer active or
 * whose key is no longer its node's. */
static void sv_kick_refused(bk_server_t *self)
{
    for (size_t i = 0; i < self->npeers; ) {
        sv_peer_t *peer = &self->peers[i];
        sv_admission_t admission = sv_check_admission(self, peer->node, peer->key);
        if (admission == SV_ADMITTED) {
            i++;
            continue;
        }
        uint8_t rid[SV_ROUTING_MAX];
        size_t rid_len = peer->rid_len;
        char node[LD_ID_MAX + 1];
        memcpy(rid, peer->rid, rid_len);
        snprintf(node, sizeof node, "%s", peer->node);
        sv_peer_drop(self, peer);
        if (admission == SV_REMOVED)
            ld_warn("node %s was removed: its connection is refused from now on", node);
        else
            ld_warn("node %s has a new key: its connection with the old one is refused from "
                    "now on", node);
        sv_refuse(self, rid, rid_len, node, admission);
    }
}

/* Collects the ids of removed nodes (bk_node_fn). */
typedef struct sv_removed {
    size_t n, cap;
    char (*ids)[LD_ID_MAX + 1];
} sv_removed_t;

static int sv_collect_removed(void *ctx, const bk_node_info_t *node)
{
    sv_removed_t *r = ctx;
    if (!node->removed)
        return 0;
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        char (*ids)[LD_ID_MAX + 1] = realloc(r->ids, cap * sizeof *ids);
        if (!ids)
            return -1;
        r->ids = ids;
        r->cap = cap;
    }
    snprintf(r->ids[r->n++], sizeof r->ids[0], "%s", node->id);
    return 0;
}

/* Deletes what waits in the mailboxes of removed nodes: an id is never registered
 * again, so nothing there can ever be fetched, and the relay keeps no records for a
 * node that has left.  Runs when the broker starts and whenever the registry changed;
 * after this front-end's snapshot shows a node removed, it delivers nothing more to
 * it, so what this deletes stays deleted.  A failure is logged, and tried again at the
 * next change of the registry or the next start. */
static void sv_reclaim_removed(bk_server_t *self)
{
    ld_error_t err;
    sv_removed_t removed = { 0 };
    if (bk_registry_each_node(self->registry, sv_collect_removed, &removed, &err) < 0) {
        ld_err("listing removed nodes to empty their mailboxes: %s", err.msg);
        goto out;
    }
    for (size_t i = 0; i < removed.n; i++) {
        uint64_t waiting = 0;
        const char *id = removed.ids[i];
        if (bk_mailbox_depth(self->mailbox, id, &waiting, &err) < 0
            || (waiting > 0 && bk_mailbox_ack(self->mailbox, id, UINT64_MAX, &err) < 0)) {
            ld_err("emptying the mailbox of removed node %s: %s", id, err.msg);
            continue;
        }
        if (waiting > 0)
            ld_info("deleted %llu changes that waited for removed node %s",
                    (unsigned long long)waiting, id);
    }
out:
    free(removed.ids);
}

/* The registry changed: connections of removed nodes and of replaced keys go, and so
 * do the mailboxes of removed nodes. */
static void sv_registry_changed(bk_server_t *self)
{
    sv_kick_refused(self);
    sv_reclaim_removed(self);
}

static void sv_handle(bk_server_t *self, sv_in_t *in)
{
    ld_error_t err;
    if (in->kept < 2) {
        ld_warn("dropped a message with no frames after the routing id");
        return;
    }
    const uint8_t *rid = zmq_msg_data(&in->part[0]);
    size_t rid_len = zmq_msg_size(&in->part[0]);
    if (rid_len == 0 || rid_len > SV_ROUTING_MAX) {
        ld_warn("dropped a message with a routing id of %zu bytes", rid_len);
        return;
    }
    /* Both set by our ZAP handler: libzmq puts ZAP's properties in before the ones the
     * peer's handshake carries, and keeps the first, so a peer cannot name another key. */
    const char *node = zmq_msg_gets(&in->part[1], "User-Id");
    const char *key = zmq_msg_gets(&in->part[1], BK_ZAP_KEY_PROPERTY);
    if (!node || !*node || !key) {
        ld_warn("dropped a message with no authenticated User-Id or key");
        return;
    }
    bool known = sv_peer_find(self, rid, rid_len) != NULL;
    bool changed = false;
    if (bk_registry_refresh(self->registry, &changed, &err) < 0)
        ld_err("registry refresh failed (the previous snapshot stays): %s", err.msg);
    sv_admission_t admission = sv_check_admission(self, node, key);
    if (admission != SV_ADMITTED && !changed) {
        /* ZAP admitted this key on a registry connection of its own: a shared store's
         * snapshot here may not have caught up with a node just added or rekeyed */
        if (bk_registry_recheck(self->registry, &changed, &err) < 0)
            ld_warn("registry reload failed (the previous snapshot stays): %s", err.msg);
        if (changed)
            admission = sv_check_admission(self, node, key);
    }
    if (changed)
        sv_registry_changed(self);
    if (admission != SV_ADMITTED) {
        sv_peer_t *peer = sv_peer_find(self, rid, rid_len);
        if (peer)
            sv_peer_drop(self, peer);
        else if (known)
            return;                   /* sv_registry_changed refused it already */
        ld_warn("refused a message from node %s: %s", node, admission == SV_REMOVED
                ? "not registered or removed" : "its key was replaced, and this connection "
                "has the old one");
        sv_refuse(self, rid, rid_len, node, admission);
        return;
    }
    bk_registry_note_seen(self->registry, node, (int64_t)time(NULL));
    if (in->nparts > LD_FRAMES_MAX) {
        ld_warn("dropped a message of %zu frames from node %s (at most %d)", in->nparts, node,
                LD_FRAMES_MAX);
        sv_error(self, rid, rid_len, LD_ERR_BAD_MESSAGE, NULL, 0,
                 "a message is a header frame and a body frame; got %zu frames", in->nparts - 1);
        return;
    }
    ld_msg_type_t type = LD_MSG_NONE;
    unsigned version = 0;
    int rc = ld_frame_parse(zmq_msg_data(&in->part[1]), zmq_msg_size(&in->part[1]), &type,
                            &version, &err);
    if (rc == LD_EVERSION) {
        ld_warn("message from %s with protocol version %u, this broker speaks %u", node,
                version, LD_PROTOCOL_VERSION);
        sv_error(self, rid, rid_len, LD_ERR_VERSION, NULL, 0,
                 "node %s speaks protocol version %u, this broker speaks %u: the %s must upgrade",
                 node, version, LD_PROTOCOL_VERSION,
                 version < LD_PROTOCOL_VERSION ? "node" : "broker");
        return;
    }
    if (rc < 0) {
        ld_warn("bad header from node %s: %s", node, err.msg);
        sv_error(self, rid, rid_len, LD_ERR_BAD_MESSAGE, NULL, 0, "bad header: %s", err.msg);
        return;
    }
    if (in->nparts != LD_FRAMES_MAX) {
        ld_warn("%s from node %s without a body frame", ld_msg_type_name(type), node);
        sv_error(self, rid, rid_len, LD_ERR_BAD_MESSAGE, NULL, 0,
                 "a message is a header frame and a body frame; got %zu frames", in->nparts - 1);
        return;
    }
    if (type != LD_MSG_HELLO && type != LD_MSG_PUSH && type != LD_MSG_FETCH
        && type != LD_MSG_ACK) {
        ld_warn("node %s sent %s, which only the broker sends", node, ld_msg_type_name(type));
        sv_error(self, rid, rid_len, LD_ERR_BAD_MESSAGE, NULL, 0,
                 "a node does not send %s", ld_msg_type_name(type));
        return;
    }
    sv_peer_t *peer = NULL;
    if (type != LD_MSG_HELLO) {
        peer = sv_peer_find(self, rid, rid_len);
        if (!peer || strcmp(peer->node, node) != 0) {
            ld_info("%s from node %s before HELLO: refused", ld_msg_type_name(type), node);
            sv_error(self, rid, rid_len, LD_ERR_BAD_MESSAGE, NULL, 0,
                     "%s before HELLO: say HELLO first on every connection",
                     ld_msg_type_name(type));
            return;
        }
        peer->last_ms = sv_now_ms();
    }
    if (type == LD_MSG_PUSH) {       /* read a change at a time, not decoded whole */
        sv_push(self, rid, rid_len, node, zmq_msg_data(&in->part[2]),
                zmq_msg_size(&in->part[2]));
        return;
    }
    ld_msg_t m;
    rc = ld_msg_decode(type, zmq_msg_data(&in->part[2]), zmq_msg_size(&in->part[2]), &m, &err);
    if (rc < 0) {
        ld_warn("bad %s from node %s: %s", ld_msg_type_name(type), node, err.msg);
        sv_error(self, rid, rid_len, LD_ERR_BAD_MESSAGE, NULL, 0, "bad %s: %s",
                 ld_msg_type_name(type), err.msg);
        return;
    }
    switch (type) {
    case LD_MSG_HELLO: sv_hello(self, rid, rid_len, node, key, &m); break;
    case LD_MSG_FETCH: sv_fetch(self, rid, rid_len, node, &m); break;
    case LD_MSG_ACK:   sv_ack(self, rid, rid_len, node, &m); break;
    default: break;
    }
    ld_msg_clear(&m);
}

/* ---- housekeeping ---- */

static void sv_tick(bk_server_t *self)
{
    ld_error_t err;
    bool changed = false;
    int64_t now = sv_now_ms();
    if (now - self->last_tick_ms < SV_TICK_MS)
        return;
    self->last_tick_ms = now;
    if (bk_registry_refresh(self->registry, &changed, &err) < 0)
        ld_err("registry refresh failed: %s", err.msg);
    else if (changed)
        sv_registry_changed(self);
    if (bk_registry_flush(self->registry, &err) < 0)
        ld_warn("node statistics not written (kept for later): %s", err.msg);
    int64_t idle_ms = (int64_t)self->opts.peer_idle_s * 1000;
    for (size_t i = 0; i < self->npeers; ) {
        if (now - self->peers[i].last_ms > idle_ms) {
            ld_debug("forgetting an idle connection of node %s", self->peers[i].node);
            sv_peer_drop(self, &self->peers[i]);
        } else {
            i++;
        }
    }
}

/* ---- start-up ---- */

/* The endpoint a local client reaches a bound endpoint at: a wildcard address becomes
 * loopback.  *ipv6 says whether the client must enable IPv6. */
static void sv_local_endpoint(const char *bound, char *out, size_t size, bool *ipv6)
{
    const char *prefix = "", *rest = bound;
    *ipv6 = strncmp(bound, "tcp://[", 7) == 0;
    if (strncmp(bound, "tcp://0.0.0.0:", 14) == 0) {
        prefix = "tcp://127.0.0.1:";
        rest = bound + 14;
    } else if (strncmp(bound, "tcp://[::]:", 11) == 0) {
        prefix = "tcp://[::1]:";
        rest = bound + 11;
    }
    size_t plen = strlen(prefix), rlen = strlen(rest);
    if (plen + rlen >= size)
        rlen = size - plen - 1;
    memcpy(out, prefix, plen);
    memcpy(out + plen, rest, rlen);
    out[plen + rlen] = '\0';
}

/* Proves that a client with an unregistered key is refused: a DEALER with a fresh key
 * connects, and its monitor must report HANDSHAKE_FAILED_AUTH. */
static int sv_self_check(bk_server_t *self, ld_error_t *err)
{
    char pub[LD_KEY_TEXT + 1], sec[LD_KEY_TEXT + 1], target[512], monitor_ep[96];
    bool ipv6 = false;
    int linger = 0, on = 1, rc = LD_EIO;
    void *dealer = NULL, *monitor = NULL;
    if (!self->endpoint)
        return ld_error_set(err, LD_EIO, "self-check: the ROUTER is not bound");
    if (zmq_curve_keypair(pub, sec) != 0)
        return ld_error_set(err, LD_EIO, "self-check: cannot make a key: %s",
                            zmq_strerror(zmq_errno()));
    sv_local_endpoint(self->endpoint, target, sizeof target, &ipv6);
    snprintf(monitor_ep, sizeof monitor_ep, "inproc://liangdi-self-check-%p", (void *)self);
    dealer = zmq_socket(self->ctx, ZMQ_DEALER);
    monitor = zmq_socket(self->ctx, ZMQ_PAIR);
    if (!dealer || !monitor) {
        ld_error_set(err, LD_EIO, "self-check: %s", zmq_strerror(zmq_errno()));
        goto out;
    }
    zmq_setsockopt(monitor, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_setsockopt(dealer, ZMQ_LINGER, &linger, sizeof linger) < 0
        || (ipv6 && zmq_setsockopt(dealer, ZMQ_IPV6, &on, sizeof on) < 0)
        || zmq_setsockopt(dealer, ZMQ_CURVE_SERVERKEY, self->keys.public_key, LD_KEY_TEXT) < 0
        || zmq_setsockopt(dealer, ZMQ_CURVE_PUBLICKEY, pub, LD_KEY_TEXT) < 0
        || zmq_setsockopt(dealer, ZMQ_CURVE_SECRETKEY, sec, LD_KEY_TEXT) < 0
        || zmq_socket_monitor(dealer, monitor_ep, ZMQ_EVENT_HANDSHAKE_FAILED_AUTH
                              | ZMQ_EVENT_HANDSHAKE_SUCCEEDED
                              | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) < 0
        || zmq_connect(monitor, monitor_ep) < 0
        || zmq_connect(dealer, target) < 0) {
        ld_error_set(err, LD_EIO, "self-check: %s", zmq_strerror(zmq_errno()));
        goto out;
    }
    int64_t deadline = sv_now_ms() + SV_SELF_CHECK_MS;
    for (;;) {
        int64_t left = deadline - sv_now_ms();
        if (left <= 0) {
            ld_error_set(err, LD_EIO, "self-check: no handshake result from %s within %d ms",
                         target, SV_SELF_CHECK_MS);
            goto out;
        }
        zmq_pollitem_t item = { .socket = monitor, .events = ZMQ_POLLIN };
        if (zmq_poll(&item, 1, (long)left) < 0) {
            if (zmq_errno() == EINTR)
                continue;
            ld_error_set(err, LD_EIO, "self-check: %s", zmq_strerror(zmq_errno()));
            goto out;
        }
        if (!(item.revents & ZMQ_POLLIN))
            continue;
        zmq_msg_t frame;
        uint16_t event = 0;
        int more = 0;
        size_t more_len = sizeof more;
        zmq_msg_init(&frame);
        if (zmq_msg_recv(&frame, monitor, 0) >= 0 && zmq_msg_size(&frame) >= 2)
            memcpy(&event, zmq_msg_data(&frame), sizeof event);
        zmq_msg_close(&frame);
        while (zmq_getsockopt(monitor, ZMQ_RCVMORE, &more, &more_len) == 0 && more) {
            zmq_msg_init(&frame);
            zmq_msg_recv(&frame, monitor, 0);
            zmq_msg_close(&frame);
        }
        if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
            ld_info("self-check: a client with an unregistered key was refused");
            rc = 0;
            goto out;
        }
        if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
            ld_error_set(err, LD_EAUTH, "self-check: a client with an unregistered key was "
                         "admitted; refusing to serve");
            rc = LD_EAUTH;
            goto out;
        }
    }
out:
    if (dealer) {
        zmq_socket_monitor(dealer, NULL, 0);
        zmq_close(dealer);
    }
    if (monitor)
        zmq_close(monitor);
    return rc;
}

static int sv_setopt_int(void *socket, int option, int value, const char *name, ld_error_t *err)
{
    if (zmq_setsockopt(socket, option, &value, sizeof value) < 0)
        return ld_error_set(err, LD_EIO, "cannot set %s: %s", name, zmq_strerror(zmq_errno()));
    return 0;
}

static int sv_open_router(bk_server_t *self, ld_error_t *err)
{
    char last[1024];
    size_t last_len = sizeof last;
    int64_t maxmsg = (int64_t)self->opts.max_message;
    self->router = zmq_socket(self->ctx, ZMQ_ROUTER);
    if (!self->router)
        return ld_error_set(err, LD_EIO, "cannot make the ROUTER: %s", zmq_strerror(zmq_errno()));
    int rc = sv_setopt_int(self->router, ZMQ_LINGER, 0, "ZMQ_LINGER", err);
    if (rc == 0)
        rc = sv_setopt_int(self->router, ZMQ_ROUTER_MANDATORY, 1, "ZMQ_ROUTER_MANDATORY", err);
    if (rc == 0)
        rc = sv_setopt_int(self->router, ZMQ_CURVE_SERVER, 1, "ZMQ_CURVE_SERVER", err);
    if (rc == 0 && zmq_setsockopt(self->router, ZMQ_CURVE_SECRETKEY, self->keys.secret_key,
                                  LD_KEY_TEXT) < 0)
        rc = ld_error_set(err, LD_EIO, "cannot use the broker's secret key: %s",
                          zmq_strerror(zmq_errno()));
    if (rc == 0 && zmq_setsockopt(self->router, ZMQ_ZAP_DOMAIN, "liangdi", 7) < 0)
        rc = ld_error_set(err, LD_EIO, "cannot set ZMQ_ZAP_DOMAIN: %s", zmq_strerror(zmq_errno()));
    if (rc == 0 && zmq_setsockopt(self->router, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg) < 0)
        rc = ld_error_set(err, LD_EIO, "cannot set ZMQ_MAXMSGSIZE: %s", zmq_strerror(zmq_errno()));
    if (rc == 0)
        rc = sv_setopt_int(self->router, ZMQ_HANDSHAKE_IVL, self->opts.handshake_ivl_ms,
                           "ZMQ_HANDSHAKE_IVL", err);
    if (rc == 0)
        rc = sv_setopt_int(self->router, ZMQ_HEARTBEAT_IVL, self->opts.heartbeat_ivl_ms,
                           "ZMQ_HEARTBEAT_IVL", err);
    if (rc == 0)
        rc = sv_setopt_int(self->router, ZMQ_HEARTBEAT_TIMEOUT, self->opts.heartbeat_timeout_ms,
                           "ZMQ_HEARTBEAT_TIMEOUT", err);
    if (rc == 0 && strncmp(self->opts.bind, "tcp://[", 7) == 0)
        rc = sv_setopt_int(self->router, ZMQ_IPV6, 1, "ZMQ_IPV6", err);
    if (rc < 0)
        return rc;
    if (zmq_bind(self->router, self->opts.bind) < 0)
        return ld_error_set(err, LD_EIO, "cannot bind %s: %s", self->opts.bind,
                            zmq_strerror(zmq_errno()));
    if (zmq_getsockopt(self->router, ZMQ_LAST_ENDPOINT, last, &last_len) < 0)
        return ld_error_set(err, LD_EIO, "cannot read the bound endpoint: %s",
                            zmq_strerror(zmq_errno()));
    last[sizeof last - 1] = '\0';
    self->endpoint = strdup(last);
    if (!self->endpoint)
        return ld_error_set(err, LD_ENOMEM, "out of memory");
    return 0;
}

bk_server_t *bk_server_new(const bk_server_opts_t *opts, ld_error_t *err)
{
    bk_server_t *self = calloc(1, sizeof *self);
    if (!self) {
        ld_error_set(err, LD_ENOMEM, "out of memory starting the broker");
        return NULL;
    }
    self->opts = *opts;
    if (self->opts.max_peers == 0)
        self->opts.max_peers = 1;
    int rc = ld_keys_load(&self->keys, opts->key_path, err);
    if (rc < 0)
        goto err;
    self->registry = bk_registry_open(opts->registry_ops, opts->db_path, false, err);
    if (!self->registry)
        goto err;
    self->mailbox = bk_mailbox_new(opts->mailbox_ops, opts->db_path, false, err);
    if (!self->mailbox)
        goto err;
    self->held = bk_held_new();
    if (!self->held) {
        ld_error_set(err, LD_ENOMEM, "out of memory starting the broker");
        goto err;
    }
    self->ctx = zmq_ctx_new();
    if (!self->ctx) {
        ld_error_set(err, LD_EIO, "cannot start libzmq: %s", zmq_strerror(zmq_errno()));
        goto err;
    }
    /* The ZAP handler first: a CURVE server without one admits any key. */
    self->zap = bk_zap_new(self->ctx, opts->registry_ops, opts->db_path, err);
    if (!self->zap)
        goto err;
    if (sv_open_router(self, err) < 0)
        goto err;
    if (sv_self_check(self, err) < 0)
        goto err;
    sv_reclaim_removed(self);
    self->last_tick_ms = sv_now_ms();
    return self;
err:
    bk_server_destroy(&self);
    return NULL;
}

void bk_server_destroy(bk_server_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    bk_server_t *self = *self_p;
    if (self->router)
        zmq_close(self->router);
    bk_zap_destroy(&self->zap);
    if (self->ctx)
        zmq_ctx_term(self->ctx);
    bk_mailbox_destroy(&self->mailbox);
    bk_held_destroy(&self->held);
    bk_registry_destroy(&self->registry);
    ld_buf_free(&self->batch);
    free(self->peers);
    free(self->endpoint);
    memset(&self->keys, 0, sizeof self->keys);
    free(self);
    *self_p = NULL;
}

const char *bk_server_endpoint(const bk_server_t *self)
{
    return self->endpoint;
}

/* Nodes whose mailboxes other front-ends grew, gathered for one Notify pass. */
typedef struct sv_grown {
    char  **nodes;
    size_t  n, cap;
    bool    nomem;
} sv_grown_t;

static void sv_grown_one(void *ctx, const char *node)
{
    sv_grown_t *g = ctx;
    if (g->nomem)
        return;
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 64;
        char **grown = realloc(g->nodes, cap * sizeof *grown);
        if (!grown) {
            g->nomem = true;
            return;
        }
        g->nodes = grown;
        g->cap = cap;
    }
    if ((g->nodes[g->n] = strdup(node)) != NULL)
        g->n++;
    else
        g->nomem = true;
}

/* Notifies this front-end's connections of mailboxes another front-end grew. */
static void sv_take_grown(bk_server_t *self)
{
    sv_grown_t g = { 0 };
    ld_error_t err;
    if (bk_mailbox_take_grown(self->mailbox, sv_grown_one, &g, &err) < 0)
        ld_warn("mailbox announcements lost: %s", err.msg);
    if (g.nomem)
        ld_warn("out of memory: some nodes are not told their mailbox grew");
    if (g.n > 1) {
        qsort(g.nodes, g.n, sizeof *g.nodes, sv_cmp_text);
        size_t distinct = 1;
        for (size_t k = 1; k < g.n; k++) {
            if (strcmp(g.nodes[k], g.nodes[distinct - 1]) != 0)
                g.nodes[distinct++] = g.nodes[k];
            else
                free(g.nodes[k]);
        }
        g.n = distinct;
    }
    if (g.n > 0)
        sv_notify(self, (const char *const *)g.nodes, g.n);
    for (size_t k = 0; k < g.n; k++)
        free(g.nodes[k]);
    free(g.nodes);
}

int bk_server_run(bk_server_t *self, const volatile sig_atomic_t *stop, ld_error_t *err)
{
    sv_in_t in = { .kept = 0 };
    int rc = 0;
    int grown_fd = bk_mailbox_grown_fd(self->mailbox);
    int sync_fd = bk_mailbox_sync_fd(self->mailbox);
    bool served = false;         /* a message was handled since memory was last given back */
    ld_info("ready, listening on %s", self->endpoint);
    while (!*stop && !self->unsyncable) {
        zmq_pollitem_t items[3] = { { .socket = self->router, .events = ZMQ_POLLIN } };
        int nitems = 1, grown_at = -1, sync_at = -1;
        if (grown_fd >= 0) {
            grown_at = nitems;
            items[nitems++] = (zmq_pollitem_t){ .fd = grown_fd, .events = ZMQ_POLLIN };
        }
        if (sync_fd >= 0) {
            sync_at = nitems;
            items[nitems++] = (zmq_pollitem_t){ .fd = sync_fd, .events = ZMQ_POLLIN };
        }
        int ready = zmq_poll(items, nitems, SV_TICK_MS);
        if (ready < 0) {
            if (zmq_errno() == EINTR)
                continue;
            rc = ld_error_set(err, LD_EIO, "poll failed: %s", zmq_strerror(zmq_errno()));
            break;
        }
        /* Quiet for a whole tick after serving: the store's put-off work is done, and
         * what the burst used goes back. */
        if (ready == 0 && served) {
            served = false;
            bk_mailbox_idle(self->mailbox);
            ld_heap_release();
        }
        if (sync_at >= 0 && (items[sync_at].revents & ZMQ_POLLIN) && sv_synced(self) < 0)
            break;
        if (grown_at >= 0 && (items[grown_at].revents & ZMQ_POLLIN))
            sv_take_grown(self);
        zmq_pollitem_t item = items[0];
        for (int burst = 0; burst < SV_BURST && !*stop && !self->unsyncable
                            && (item.revents & ZMQ_POLLIN); burst++) {
            int got = sv_recv(self, &in);
            if (got < 0) {
                rc = ld_error_set(err, LD_EIO, "receive failed: %s", zmq_strerror(zmq_errno()));
                break;
            }
            if (got == 0)
                break;
            served = true;
            sv_handle(self, &in);
            sv_in_close(&in);
            /* acks whose sync ended meanwhile go now, not after the burst */
            if (bk_held_count(self->held) > 0 && sv_synced(self) < 0)
                break;
        }
        if (rc < 0)
            break;
        sv_tick(self);
    }
    /* what was stored is answered before the broker goes */
    if (rc == 0 && sv_settle(self) < 0)
        rc = ld_error_set(err, self->sync_err.code, "%s", self->sync_err.msg);
    ld_error_t ferr;
    if (bk_registry_flush(self->registry, &ferr) < 0)
        ld_warn("node statistics not written: %s", ferr.msg);
    ld_info("stopped");
    return rc;
}
