/* test_broker_hostile.c: the real liangdi-broker under hostile input: garbage from an
 * authenticated peer, oversized and many-part messages, unauthenticated TCP clients,
 * signals; afterwards it still serves and its store passes PRAGMA integrity_check. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <criterion/hooks.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>
#include "codec.h"
#include "frame.h"
#include "hlc.h"
#include "keys.h"
#include "schema.h"

/* The harness (broker start/stop, raw CURVE peers) is shared: broker_peer.h. */

#include "broker_peer.h"

/* ------------------------------------------------------- hostile helpers -- */

/* A deterministic byte stream, so that a failure can be replayed. */
static uint32_t rng_state = 20100512u;

static uint32_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

static void random_bytes(uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = (uint8_t)rng();
}

/* The store the running broker uses passes SQLite's own check. */
static void assert_store_intact(void)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    cr_assert_eq(sqlite3_open_v2(bk.db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 10000);
    cr_assert_eq(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK,
                 "%s", sqlite3_errmsg(db));
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    cr_assert_str_eq((const char *)sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
    sqlite3_close(db);
}

/* The broker is alive and a well-behaved node gets its whole round served: Hello,
 * Push (acked), and the other side's Fetch sees it. */
static void assert_still_serves(void)
{
    int status = 0;
    ld_msg_t w, b;
    cr_assert_eq(waitpid(bk.pid, &status, WNOHANG), 0, "the broker is still running");
    peer_t home = node_open("home", &key_home, &w);
    uint64_t next = w.u.welcome.pushed_upto + 1;
    ld_msg_clear(&w);
    push_ok(&home, "home", next, next, next);
    peer_t dg = node_open("dongguan", &key_dongguan, NULL);
    uint64_t cursor = 0, last_seq = 0, remaining = 0;
    do {
        send_fetch(&dg, cursor, LD_BATCH_MAX);
        expect(&dg, LD_MSG_BATCH, &b);
        if (b.u.batch.n > 0) {
            cursor = b.u.batch.positions[b.u.batch.n - 1];
            last_seq = b.u.batch.changes[b.u.batch.n - 1].seq;
        }
        remaining = b.u.batch.remaining;
        ld_msg_clear(&b);
    } while (remaining > 0);
    cr_assert_eq(last_seq, next, "the last change in dongguan's mailbox is the one just pushed");
    peer_close(&dg);
    peer_close(&home);
    assert_store_intact();
}

static int port_of(const char *endpoint)
{
    const char *colon = strrchr(endpoint, ':');
    cr_assert_not_null(colon);
    return atoi(colon + 1);
}

/* A plain TCP connection to the broker's port, no ZeroMQ, no CURVE. */
static int tcp_open(void)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port_of(bk.endpoint)) };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0, "%s", strerror(errno));
    return fd;
}

TestSuite(broker_hostile, .init = setup, .fini = teardown, .timeout = 180);

/* --------------------------------------------------------------- tests -- */

Test(broker_hostile, random_frames_from_an_authenticated_peer_get_bad_message_and_nothing_else)
{
    ld_msg_t e;
    broker_start();
    peer_t p = node_open("home", &key_home, NULL);
    for (int i = 0; i < 200; i++) {
        uint8_t frames[3][64];
        size_t nframes = 1 + rng() % 3, len[3];
        for (size_t f = 0; f < nframes; f++) {
            len[f] = rng() % sizeof frames[f];
            random_bytes(frames[f], len[f]);
        }
        if (i % 2 == 0 && nframes >= 2) {
            /* half of them with a valid header, so that the body parser is what refuses */
            ld_frame_header((ld_msg_type_t)(LD_MSG_HELLO + (rng() % 4) * 2), frames[0]);
            len[0] = LD_HEADER_SIZE;
            if (frames[1][0] == 0x08 || len[1] == 0) {  /* keep the body from being valid */
                frames[1][0] = 0xff;
                len[1] = len[1] ? len[1] : 1;
            }
        }
        for (size_t f = 0; f < nframes; f++)
            cr_assert_eq(zmq_send(p.sock, frames[f], len[f], f + 1 < nframes ? ZMQ_SNDMORE : 0),
                         (int)len[f]);
        expect_error(&p, LD_ERR_BAD_MESSAGE, &e);
        ld_msg_clear(&e);
    }
    cr_assert_eq(recv_msg(&p, 200, &e), LD_MSG_NONE, "one refusal per message");
    peer_close(&p);
    assert_still_serves();
    char *log = read_file(bk.log, 0);
    cr_assert_not_null(strstr(log, "bad header"), "each refusal is logged");
    free(log);
    assert_clean_stop();
}

Test(broker_hostile, truncated_protobufs_are_refused_and_store_nothing)
{
    ld_msg_t push, e;
    ld_error_t err;
    uint8_t header[LD_HEADER_SIZE], *body = NULL;
    size_t len = 0;
    broker_start();
    peer_t p = node_open("home", &key_home, NULL);
    make_push(&push, "home", 1, 3, aud_home_dongguan, 2);
    cr_assert_eq(ld_msg_encode(&push, &body, &len, &err), 0, "%s", err.msg);
    ld_msg_clear(&push);
    ld_frame_header(LD_MSG_PUSH, header);
    const size_t cuts[] = { 1, 2, 5, 10, 40 };
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        send_raw(&p, header, sizeof header, body, len - cuts[i]);
        expect_error(&p, LD_ERR_BAD_MESSAGE, &e);
        cr_assert_not_null(strstr(e.u.error.message, "push"), "%s", e.u.error.message);
        ld_msg_clear(&e);
    }
    free(body);
    ld_msg_t hello;
    ld_msg_init(&hello, LD_MSG_HELLO);
    hello.u.hello.protocol_version = LD_PROTOCOL_VERSION;
    hello.u.hello.schema_version = LD_SCHEMA_VERSION;
    snprintf(hello.u.hello.node_id, sizeof hello.u.hello.node_id, "home");
    snprintf(hello.u.hello.software, sizeof hello.u.hello.software, "truncated");
    cr_assert_eq(ld_msg_encode(&hello, &body, &len, &err), 0);
    ld_msg_clear(&hello);
    ld_frame_header(LD_MSG_HELLO, header);
    send_raw(&p, header, sizeof header, body, len - 1);
    expect_error(&p, LD_ERR_BAD_MESSAGE, &e);
    ld_msg_clear(&e);
    free(body);
    peer_close(&p);
    cr_assert_eq(depth_of("dongguan", &key_dongguan), 0);
    assert_still_serves();
    assert_clean_stop();
}

/* The broker reads a push a change at a time, yet answers as if it had decoded it
 * whole first: a change it cannot read outranks a refusal of an earlier one. */
Test(broker_hostile, an_unreadable_change_after_a_refused_one_makes_the_push_a_bad_message)
{
    ld_change_t forged;
    ld_msg_t e;
    ld_error_t err;
    uint8_t header[LD_HEADER_SIZE], *packed = NULL;
    size_t len = 0;
    static const uint8_t cut[] = { 0x0a, 0x05, 0x01 };   /* a field running past its end */
    broker_start();
    peer_t p = node_open("home", &key_home, NULL);
    make_change(&forged, "dongguan", 1, aud_home_dongguan, 2);   /* not home's own */
    cr_assert_eq(ld_change_pack(&forged, &packed, &len, &err), 0, "%s", err.msg);
    ld_buf_t body = { NULL, 0, 0 };
    cr_assert_eq(ld_push_append(&body, packed, len), 0);
    cr_assert_eq(ld_push_append(&body, cut, sizeof cut), 0);
    ld_frame_header(LD_MSG_PUSH, header);
    send_raw(&p, header, sizeof header, body.data, body.len);
    expect_error(&p, LD_ERR_BAD_MESSAGE, &e);
    cr_assert_not_null(strstr(e.u.error.message, "push change 2"), "%s", e.u.error.message);
    ld_msg_clear(&e);
    /* the refused change alone is refused as such */
    body.len = 0;
    cr_assert_eq(ld_push_append(&body, packed, len), 0);
    send_raw(&p, header, sizeof header, body.data, body.len);
    expect_error(&p, LD_ERR_DENIED, &e);
    ld_msg_clear(&e);
    peer_close(&p);
    cr_assert_eq(depth_of("dongguan", &key_dongguan), 0);
    ld_buf_free(&body);
    free(packed);
    ld_change_clear(&forged);
    assert_still_serves();
    assert_clean_stop();
}

Test(broker_hostile, an_oversized_frame_drops_that_connection_only)
{
    write_conf("max_message = 1048576\n");
    broker_start();
    peer_t p = node_open("home", &key_home, NULL);
    size_t big = 2u * 1024u * 1024u;
    uint8_t *body = calloc(1, big);
    cr_assert_not_null(body);
    uint8_t header[LD_HEADER_SIZE];
    ld_frame_header(LD_MSG_PUSH, header);
    send_raw(&p, header, sizeof header, body, big);
    free(body);
    ld_msg_t m;
    cr_assert_eq(recv_msg(&p, 1000, &m), LD_MSG_NONE, "nothing is served for an oversized frame");
    peer_close(&p);
    cr_assert_eq(depth_of("dongguan", &key_dongguan), 0);
    assert_still_serves();
    assert_clean_stop();
}

Test(broker_hostile, a_ten_thousand_part_message_is_drained_and_refused)
{
    ld_msg_t e;
    broker_start();
    peer_t p = node_open("home", &key_home, NULL);
    uint8_t header[LD_HEADER_SIZE];
    ld_frame_header(LD_MSG_FETCH, header);
    cr_assert_eq(zmq_send(p.sock, header, sizeof header, ZMQ_SNDMORE), LD_HEADER_SIZE);
    for (int i = 1; i < 10000; i++)
        cr_assert_eq(zmq_send(p.sock, "x", 1, i + 1 < 10000 ? ZMQ_SNDMORE : 0), 1);
    expect_error(&p, LD_ERR_BAD_MESSAGE, &e);
    cr_assert_not_null(strstr(e.u.error.message, "10000 frames"), "%s", e.u.error.message);
    ld_msg_clear(&e);
    /* the same connection is served on */
    send_fetch(&p, 0, 10);
    expect(&p, LD_MSG_BATCH, &e);
    ld_msg_clear(&e);
    peer_close(&p);
    char *log = read_file(bk.log, 0);
    cr_assert_not_null(strstr(log, "10001 frames"), "the drop is logged:\n%s", log);
    free(log);
    assert_still_serves();
    assert_clean_stop();
}

Test(broker_hostile, a_replayed_hello_is_answered_again_and_changes_nothing)
{
    ld_msg_t w;
    broker_start();
    peer_t p = node_open("home", &key_home, NULL);
    push_ok(&p, "home", 1, 2, 2);
    for (int i = 0; i < 3; i++) {
        send_hello(&p, "home");
        expect(&p, LD_MSG_WELCOME, &w);
        cr_assert_eq(w.u.welcome.pushed_upto, 2);
        ld_msg_clear(&w);
    }
    push_ok(&p, "home", 3, 3, 3);
    peer_close(&p);
    cr_assert_eq(depth_of("dongguan", &key_dongguan), 3);
    assert_still_serves();
    assert_clean_stop();
}

Test(broker_hostile, message_types_a_node_does_not_send_are_refused)
{
    ld_msg_t e;
    broker_start();
    peer_t p = node_open("home", &key_home, NULL);
    const uint8_t types[] = { 0, LD_MSG_WELCOME, LD_MSG_PUSH_ACK, LD_MSG_BATCH, LD_MSG_NOTIFY,
                              LD_MSG_ERROR, LD_MSG_COUNT, 200, 255 };
    for (size_t i = 0; i < sizeof types; i++) {
        uint8_t header[LD_HEADER_SIZE];
        ld_frame_header(LD_MSG_HELLO, header);
        header[3] = types[i];
        send_raw(&p, header, sizeof header, "", 0);
        expect_error(&p, LD_ERR_BAD_MESSAGE, &e);
        ld_msg_clear(&e);
    }
    peer_close(&p);
    assert_still_serves();
    assert_clean_stop();
}

Test(broker_hostile, unauthenticated_tcp_clients_do_not_stop_the_broker)
{
    broker_start();
    int silent = tcp_open();
    int noisy = tcp_open();
    uint8_t junk[4096];
    for (int i = 0; i < 16; i++) {
        random_bytes(junk, sizeof junk);
        if (send(noisy, junk, sizeof junk, MSG_NOSIGNAL) < 0)
            break;                    /* the broker hung up on it: fine */
    }
    /* a fake ZMTP greeting that never finishes the CURVE handshake */
    int half = tcp_open();
    uint8_t greeting[64] = { 0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f, 3, 0, 'C', 'U', 'R', 'V', 'E' };
    cr_assert_eq(send(half, greeting, sizeof greeting, MSG_NOSIGNAL), (ssize_t)sizeof greeting);
    assert_still_serves();
    close(silent);
    close(noisy);
    close(half);
    assert_still_serves();
    assert_clean_stop();
}

Test(broker_hostile, the_peer_table_is_bounded_and_forgets_the_longest_silent)
{
    ld_msg_t e;
    write_conf("max_peers = 2\n");
    broker_start();
    peer_t first = node_open("home", &key_home, NULL);
    peer_t second = node_open("home", &key_home, NULL);
    peer_t third = node_open("dongguan", &key_dongguan, NULL);
    send_fetch(&first, 0, 1);
    expect_error(&first, LD_ERR_BAD_MESSAGE, &e);
    cr_assert_not_null(strstr(e.u.error.message, "HELLO"), "%s", e.u.error.message);
    ld_msg_clear(&e);
    send_fetch(&third, 0, 1);
    expect(&third, LD_MSG_BATCH, &e);
    ld_msg_clear(&e);
    peer_close(&first);
    peer_close(&second);
    peer_close(&third);
    assert_still_serves();
    assert_clean_stop();
}

Test(broker_hostile, sigterm_exits_zero_and_a_restart_keeps_every_mailbox)
{
    ld_msg_t b;
    broker_start();
    peer_t home = node_open("home", &key_home, NULL);
    push_ok(&home, "home", 1, 5, 5);
    peer_close(&home);
    int status = broker_stop(SIGTERM);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status 0x%x", status);
    broker_start();
    uint64_t depth = 0, pushed = 0;
    welcome_of("home", &key_home, NULL, &pushed);
    cr_assert_eq(pushed, 5);
    welcome_of("dongguan", &key_dongguan, &depth, NULL);
    cr_assert_eq(depth, 5);
    peer_t dg = node_open("dongguan", &key_dongguan, NULL);
    send_fetch(&dg, 0, 100);
    expect(&dg, LD_MSG_BATCH, &b);
    cr_assert_eq(b.u.batch.n, 5);
    cr_assert_eq(b.u.batch.positions[4], 5);
    ld_msg_clear(&b);
    peer_close(&dg);
    assert_still_serves();
    assert_clean_stop();
}

Test(broker_hostile, a_sigterm_during_a_push_stores_all_of_it_or_none)
{
    ld_msg_t push;
    broker_start();
    peer_t home = node_open("home", &key_home, NULL);
    make_push(&push, "home", 1, LD_BATCH_MAX, aud_home_dongguan, 2);
    send_msg(&home, &push);
    ld_msg_clear(&push);
    int status = broker_stop(SIGTERM);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status 0x%x", status);
    peer_close(&home);
    broker_start();
    uint64_t depth = 9, pushed = 9;
    welcome_of("home", &key_home, NULL, &pushed);
    welcome_of("dongguan", &key_dongguan, &depth, NULL);
    cr_assert(pushed == 0 || pushed == LD_BATCH_MAX, "pushed_upto %llu", (unsigned long long)pushed);
    cr_assert_eq(depth, pushed, "the mailbox holds exactly what the mark says");
    assert_still_serves();
    assert_clean_stop();
}
