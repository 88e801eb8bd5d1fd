/* node_peer.c: a node spoken raw (see node_peer.h): a CURVE DEALER, the ld_ codec, the
 * messages and changes the broker tests send, and the sockets a failed test left open. */
#include "node_peer.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>
#include "frame.h"
#include "hlc.h"
#include "schema.h"

const char *peer_endpoint = "";
const char *peer_server_key = "";
int peer_wait_ms = 5000;
void *zctx;
ld_keypair_t key_home, key_dongguan, key_shenzhen, key_stranger;

/* Sockets still open, closed by teardown when a failed assertion skipped peer_close
 * (zmq_ctx_term waits for every socket). */
void *open_socks[64];

void track(void *sock, bool open)
{
    for (size_t i = 0; i < sizeof open_socks / sizeof open_socks[0]; i++) {
        if (open && !open_socks[i]) {
            open_socks[i] = sock;
            return;
        }
        if (!open && open_socks[i] == sock) {
            open_socks[i] = NULL;
            return;
        }
    }
    cr_assert_not(open, "too many sockets open at once");
}

void peers_close_all(void)
{
    for (size_t i = 0; i < sizeof open_socks / sizeof open_socks[0]; i++) {
        if (open_socks[i])
            zmq_close(open_socks[i]);
        open_socks[i] = NULL;
    }
    if (zctx) {
        zmq_ctx_term(zctx);
        zctx = NULL;
    }
}

/* Deadlines stretch under valgrind (meson test --setup valgrind). */
int64_t scaled(int64_t ms)
{
    return getenv("LIANGDI_UNDER_VALGRIND") ? ms * 20 : ms;
}

int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

peer_t peer_open(const ld_keypair_t *kp)
{
    peer_t p = { 0 };
    int linger = 0;
    p.sock = zmq_socket(zctx, ZMQ_DEALER);
    cr_assert_not_null(p.sock);
    track(p.sock, true);
    cr_assert_eq(zmq_setsockopt(p.sock, ZMQ_LINGER, &linger, sizeof linger), 0);
    cr_assert_eq(zmq_setsockopt(p.sock, ZMQ_CURVE_SERVERKEY, peer_server_key, LD_KEY_TEXT), 0);
    cr_assert_eq(zmq_setsockopt(p.sock, ZMQ_CURVE_PUBLICKEY, kp->public_key, LD_KEY_TEXT), 0);
    cr_assert_eq(zmq_setsockopt(p.sock, ZMQ_CURVE_SECRETKEY, kp->secret_key, LD_KEY_TEXT), 0);
    return p;
}

void peer_connect(peer_t *p)
{
    cr_assert_eq(zmq_connect(p->sock, peer_endpoint), 0, "connect %s", peer_endpoint);
}

void peer_close(peer_t *p)
{
    if (p->monitor) {
        zmq_socket_monitor(p->sock, NULL, 0);
        track(p->monitor, false);
        zmq_close(p->monitor);
    }
    if (p->sock) {
        track(p->sock, false);
        zmq_close(p->sock);
    }
    memset(p, 0, sizeof *p);
}

void send_raw(peer_t *p, const void *header, size_t hlen, const void *body, size_t blen)
{
    cr_assert_eq(zmq_send(p->sock, header, hlen, ZMQ_SNDMORE), (int)hlen);
    cr_assert_eq(zmq_send(p->sock, body, blen, 0), (int)blen);
}

void send_msg(peer_t *p, const ld_msg_t *m)
{
    uint8_t header[LD_HEADER_SIZE], *body = NULL;
    size_t len = 0;
    ld_error_t err;
    ld_frame_header(m->type, header);
    cr_assert_eq(ld_msg_encode(m, &body, &len, &err), 0, "%s", err.msg);
    send_raw(p, header, sizeof header, body, len);
    free(body);
}

/* Waits up to timeout_ms for one message and decodes it into m.  Returns its type,
 * or LD_MSG_NONE when nothing came. */
ld_msg_type_t recv_msg(peer_t *p, int timeout_ms, ld_msg_t *m)
{
    zmq_pollitem_t item = { .socket = p->sock, .events = ZMQ_POLLIN };
    int64_t deadline = now_ms() + scaled(timeout_ms);
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0)
            return LD_MSG_NONE;
        int rc = zmq_poll(&item, 1, (long)left);
        if (rc < 0 && zmq_errno() == EINTR)
            continue;
        cr_assert_geq(rc, 0);
        if (rc > 0)
            break;
    }
    zmq_msg_t header, body;
    int more = 0;
    size_t more_len = sizeof more;
    zmq_msg_init(&header);
    zmq_msg_init(&body);
    cr_assert_geq(zmq_msg_recv(&header, p->sock, 0), 0);
    cr_assert_eq(zmq_getsockopt(p->sock, ZMQ_RCVMORE, &more, &more_len), 0);
    cr_assert(more, "the broker sends a header frame and a body frame");
    cr_assert_geq(zmq_msg_recv(&body, p->sock, 0), 0);
    cr_assert_eq(zmq_getsockopt(p->sock, ZMQ_RCVMORE, &more, &more_len), 0);
    cr_assert_not(more, "no third frame");
    ld_msg_type_t type = LD_MSG_NONE;
    unsigned version = 0;
    ld_error_t err;
    cr_assert_eq(ld_frame_parse(zmq_msg_data(&header), zmq_msg_size(&header), &type, &version,
                                &err), 0, "%s", err.msg);
    cr_assert_eq(ld_msg_decode(type, zmq_msg_data(&body), zmq_msg_size(&body), m, &err), 0,
                 "%s", err.msg);
    zmq_msg_close(&header);
    zmq_msg_close(&body);
    return type;
}

/* Receives the next message, which must be of `type` within the default deadline. */
void expect(peer_t *p, ld_msg_type_t type, ld_msg_t *m)
{
    ld_msg_type_t got = recv_msg(p, peer_wait_ms, m);
    if (got == LD_MSG_ERROR && type != LD_MSG_ERROR)
        cr_assert_fail("expected %s, got error %d: %s", ld_msg_type_name(type),
                       (int)m->u.error.code, m->u.error.message);
    cr_assert_eq(got, type, "expected %s, got %s", ld_msg_type_name(type),
                 got == LD_MSG_NONE ? "nothing" : ld_msg_type_name(got));
}

void expect_error(peer_t *p, ld_error_code_t code, ld_msg_t *m)
{
    expect(p, LD_MSG_ERROR, m);
    cr_assert_eq(m->u.error.code, code, "error code %d, expected %d: %s",
                 (int)m->u.error.code, (int)code, m->u.error.message);
}

void send_hello(peer_t *p, const char *node_id)
{
    ld_msg_t m;
    ld_msg_init(&m, LD_MSG_HELLO);
    m.u.hello.protocol_version = LD_PROTOCOL_VERSION;
    m.u.hello.schema_version = LD_SCHEMA_VERSION;
    snprintf(m.u.hello.node_id, sizeof m.u.hello.node_id, "%s", node_id);
    snprintf(m.u.hello.software, sizeof m.u.hello.software, "liangdi tests");
    send_msg(p, &m);
    ld_msg_clear(&m);
}

/* A connected node that has said Hello; *welcome (may be NULL) gets the Welcome. */
peer_t node_open(const char *id, const ld_keypair_t *kp, ld_msg_t *welcome)
{
    ld_msg_t m;
    peer_t p = peer_open(kp);
    peer_connect(&p);
    send_hello(&p, id);
    expect(&p, LD_MSG_WELCOME, &m);
    cr_assert_str_eq(m.u.welcome.node_id, id);
    if (welcome)
        *welcome = m;
    else
        ld_msg_clear(&m);
    return p;
}

/* An org change by `origin` with seq, addressed to the given nodes. */
void make_change(ld_change_t *c, const char *origin, uint64_t seq,
                        const char *const *audience, size_t naudience)
{
    make_named_change(c, origin, seq, "竹园镇龙潭村党支部", audience, naudience);
}

void make_named_change(ld_change_t *c, const char *origin, uint64_t seq, const char *name,
                       const char *const *audience, size_t naudience)
{
    ld_error_t err;
    ld_change_init(c);
    c->kind = LD_KIND_ORG;
    snprintf(c->record_id, sizeof c->record_id, "org-%s-%llu", origin, (unsigned long long)seq);
    snprintf(c->origin, sizeof c->origin, "%s", origin);
    c->seq = seq;
    c->hlc = ld_hlc_make(ld_hlc_wall_now(), 0);
    cr_assert_eq(ld_change_set(c, "name", name, &err), 0, "%s", err.msg);
    cr_assert_eq(ld_change_set(c, "kind", "village", &err), 0, "%s", err.msg);
    cr_assert_eq(ld_change_set(c, "node", origin, &err), 0, "%s", err.msg);
    for (size_t i = 0; i < naudience; i++)
        cr_assert_eq(ld_change_add_audience(c, audience[i], &err), 0, "%s", err.msg);
}

const char *const aud_home_dongguan[] = { "home", "dongguan" };

/* A Push of seqs first..last by `origin` to `audience`; the caller clears it. */
void make_push(ld_msg_t *m, const char *origin, uint64_t first, uint64_t last,
                      const char *const *audience, size_t naudience)
{
    ld_msg_init(m, LD_MSG_PUSH);
    m->u.push.n = (size_t)(last - first + 1);
    m->u.push.changes = calloc(m->u.push.n, sizeof *m->u.push.changes);
    cr_assert_not_null(m->u.push.changes);
    for (size_t i = 0; i < m->u.push.n; i++)
        make_change(&m->u.push.changes[i], origin, first + i, audience, naudience);
}

/* Pushes and expects a PushAck up to `upto`. */
void push_ok(peer_t *p, const char *origin, uint64_t first, uint64_t last,
                    uint64_t upto)
{
    ld_msg_t m, ack;
    make_push(&m, origin, first, last, aud_home_dongguan, 2);
    send_msg(p, &m);
    ld_msg_clear(&m);
    expect(p, LD_MSG_PUSH_ACK, &ack);
    cr_assert_eq(ack.u.push_ack.upto, upto);
    ld_msg_clear(&ack);
}

void send_fetch(peer_t *p, uint64_t cursor, uint32_t credit)
{
    ld_msg_t m;
    ld_msg_init(&m, LD_MSG_FETCH);
    m.u.fetch.cursor = cursor;
    m.u.fetch.credit = credit;
    send_msg(p, &m);
    ld_msg_clear(&m);
}

void send_ack(peer_t *p, uint64_t upto)
{
    ld_msg_t m;
    ld_msg_init(&m, LD_MSG_ACK);
    m.u.ack.upto = upto;
    send_msg(p, &m);
    ld_msg_clear(&m);
}

void welcome_of(const char *id, const ld_keypair_t *kp, uint64_t *depth, uint64_t *pushed_upto)
{
    ld_msg_t w;
    peer_t p = node_open(id, kp, &w);
    if (depth)
        *depth = w.u.welcome.mailbox_depth;
    if (pushed_upto)
        *pushed_upto = w.u.welcome.pushed_upto;
    ld_msg_clear(&w);
    peer_close(&p);
}

uint64_t depth_of(const char *id, const ld_keypair_t *kp)
{
    uint64_t depth = 0;
    welcome_of(id, kp, &depth, NULL);
    return depth;
}
