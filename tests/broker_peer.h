/* broker_peer.h: the broker tests' harness (broker_peer.c): start and stop the real
 * liangdi-broker, and talk to it over CURVE with the ld_ codec as a node would. */
#ifndef BROKER_PEER_H
#define BROKER_PEER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include "codec.h"
#include "keys.h"

typedef struct broker {
    char   dir[256];
    char   db[320];
    char   conf[320];
    char   log[512];             /* outside dir: kept until the runner has seen the result */
    char   endpoint[256];
    char   public_key[LD_KEY_TEXT + 1];
    pid_t  pid;
} broker_t;

#define CLI(out, outsz, ...) cli((out), (outsz), (const char *const[]){ __VA_ARGS__, NULL })

typedef struct peer {
    void *sock;
    void *monitor;
} peer_t;

extern broker_t bk;
extern void *zctx;
extern ld_keypair_t key_home, key_dongguan, key_shenzhen, key_stranger;
extern void *open_socks[64];
extern const char *const aud_home_dongguan[];

void track(void *sock, bool open);
int64_t scaled(int64_t ms);
int64_t now_ms(void);
void nap(void);
const char *tmpbase(void);
const char *broker_bin(void);
char *read_file(const char *path, size_t from);
off_t file_size(const char *path);
int cli(char *out, size_t outsz, const char *const *args);
void broker_start(void);
int broker_stop(int sig);
void assert_clean_stop(void);
void write_conf(const char *extra);
void setup(void);
void rm_dir(const char *dir);
void teardown(void);
peer_t peer_open(const ld_keypair_t *kp);
void peer_connect(peer_t *p);
void peer_close(peer_t *p);
void send_raw(peer_t *p, const void *header, size_t hlen, const void *body, size_t blen);
void send_msg(peer_t *p, const ld_msg_t *m);
ld_msg_type_t recv_msg(peer_t *p, int timeout_ms, ld_msg_t *m);
void expect(peer_t *p, ld_msg_type_t type, ld_msg_t *m);
void expect_error(peer_t *p, ld_error_code_t code, ld_msg_t *m);
void send_hello(peer_t *p, const char *node_id);
peer_t node_open(const char *id, const ld_keypair_t *kp, ld_msg_t *welcome);
void make_change(ld_change_t *c, const char *origin, uint64_t seq,
                        const char *const *audience, size_t naudience);
void make_push(ld_msg_t *m, const char *origin, uint64_t first, uint64_t last,
                      const char *const *audience, size_t naudience);
void push_ok(peer_t *p, const char *origin, uint64_t first, uint64_t last,
                    uint64_t upto);
void send_fetch(peer_t *p, uint64_t cursor, uint32_t credit);

#endif
