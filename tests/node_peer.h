/* node_peer.h: a node spoken raw, for the tests that talk to the real liangdi-broker
 * (SQLite or JetStream store) without the node's code: a CURVE DEALER, the ld_ codec,
 * and the org changes and pushes they send.  A peer connects to peer_endpoint with
 * peer_server_key (borrowed strings the test sets); zctx is the test's ZeroMQ context.
 * Sockets a failed assertion left open are closed by peers_close_all. */
#ifndef NODE_PEER_H
#define NODE_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "codec.h"
#include "keys.h"

typedef struct peer {
    void *sock;
    void *monitor;
} peer_t;

extern const char *peer_endpoint;
extern const char *peer_server_key;
extern int peer_wait_ms;            /* what expect waits for a message: 5 s unless set */
extern void *zctx;
extern ld_keypair_t key_home, key_dongguan, key_shenzhen, key_stranger;
extern void *open_socks[64];
extern const char *const aud_home_dongguan[];

/* Notes a socket opened (or closed) for peers_close_all. */
void track(void *sock, bool open);
/* Closes every socket still open and terminates zctx. */
void peers_close_all(void);
/* A deadline stretched under valgrind (LIANGDI_UNDER_VALGRIND). */
int64_t scaled(int64_t ms);
int64_t now_ms(void);

peer_t peer_open(const ld_keypair_t *kp);
void peer_connect(peer_t *p);
void peer_close(peer_t *p);
void send_raw(peer_t *p, const void *header, size_t hlen, const void *body, size_t blen);
void send_msg(peer_t *p, const ld_msg_t *m);
/* The next message within timeout_ms (scaled) decoded into m: its type, or LD_MSG_NONE. */
ld_msg_type_t recv_msg(peer_t *p, int timeout_ms, ld_msg_t *m);
void expect(peer_t *p, ld_msg_type_t type, ld_msg_t *m);
void expect_error(peer_t *p, ld_error_code_t code, ld_msg_t *m);
void send_hello(peer_t *p, const char *node_id);
/* A connected node that has said Hello; *welcome (may be NULL) gets the Welcome. */
peer_t node_open(const char *id, const ld_keypair_t *kp, ld_msg_t *welcome);
/* The mailbox depth and own high-water mark a fresh Hello reports for `id`. */
void welcome_of(const char *id, const ld_keypair_t *kp, uint64_t *depth, uint64_t *pushed_upto);
uint64_t depth_of(const char *id, const ld_keypair_t *kp);
void make_change(ld_change_t *c, const char *origin, uint64_t seq,
                 const char *const *audience, size_t naudience);
/* The same org change under another name. */
void make_named_change(ld_change_t *c, const char *origin, uint64_t seq, const char *name,
                       const char *const *audience, size_t naudience);
/* A Push of seqs first..last by `origin` to `audience`; the caller clears it. */
void make_push(ld_msg_t *m, const char *origin, uint64_t first, uint64_t last,
               const char *const *audience, size_t naudience);
/* Pushes first..last (to home and dongguan) and expects a PushAck up to `upto`. */
void push_ok(peer_t *p, const char *origin, uint64_t first, uint64_t last, uint64_t upto);
void send_fetch(peer_t *p, uint64_t cursor, uint32_t credit);
void send_ack(peer_t *p, uint64_t upto);

#endif
