/* test_broker_protocol.c: the real liangdi-broker binary, spoken to as a node would:
 * a raw DEALER with CURVE and the ld_ codec, covering proto/PROTOCOL.md rule by rule. */
#include <criterion/criterion.h>
#include <criterion/hooks.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>
#include "codec.h"
#include "frame.h"
#include "hlc.h"
#include "keys.h"
#include "procstat.h"
#include "schema.h"

/* The harness (broker start/stop, raw CURVE peers) is shared: broker_peer.h. */

#include "broker_peer.h"

TestSuite(broker_protocol, .init = setup, .fini = teardown, .timeout = 120);

/* --------------------------------------------------------------- tests -- */

Test(broker_protocol, the_ready_line_names_the_port_the_system_chose)
{
    broker_start();
    cr_assert(strncmp(bk.endpoint, "tcp://127.0.0.1:", 16) == 0, "%s", bk.endpoint);
    int port = atoi(bk.endpoint + 16);
    cr_assert_gt(port, 0, "a real port, not '*': %s", bk.endpoint);
    char *log = read_file(bk.log, 0);
    cr_assert_not_null(strstr(log, "unregistered key was refused"),
                       "the start-up self-check ran before the ready line");
    free(log);
    assert_clean_stop();
}

Test(broker_protocol, hello_is_answered_with_welcome_naming_the_authenticated_node)
{
    ld_msg_t w;
    broker_start();
    peer_t p = node_open("home", &key_home, &w);
    cr_assert_eq(w.u.welcome.protocol_version, LD_PROTOCOL_VERSION);
    cr_assert_eq(w.u.welcome.schema_version, LD_SCHEMA_VERSION);
    cr_assert_eq(w.u.welcome.pushed_upto, 0);
    cr_assert_eq(w.u.welcome.mailbox_depth, 0);
    ld_msg_clear(&w);
    peer_close(&p);
    assert_clean_stop();
}

Test(broker_protocol, a_push_is_acked_and_lands_in_the_other_audience_mailbox)
{
    broker_start();
    peer_t home = node_open("home", &key_home, NULL);
    push_ok(&home, "home", 1, 3, 3);
    uint64_t pushed = 0, depth = 0;
    welcome_of("home", &key_home, &depth, &pushed);
    cr_assert_eq(pushed, 3, "Welcome tells the node where to resume");
    cr_assert_eq(depth, 0, "the sender's own mailbox gets nothing");
    cr_assert_eq(depth_of("dongguan", &key_dongguan), 3);
    cr_assert_eq(depth_of("shenzhen", &key_shenzhen), 0, "outside the audience");
    peer_close(&home);
    assert_clean_stop();
}

Test(broker_protocol, a_duplicate_push_is_acked_again_and_stored_once)
{
    broker_start();
    peer_t home = node_open("home", &key_home, NULL);
    push_ok(&home, "home", 1, 3, 3);
    push_ok(&home, "home", 1, 3, 3);
    push_ok(&home, "home", 2, 4, 4);
    cr_assert_eq(depth_of("dongguan", &key_dongguan), 4);
    peer_close(&home);
    assert_clean_stop();
}

Test(broker_protocol, fetch_returns_batches_by_cursor_never_deletes_and_ack_reclaims)
{
    ld_msg_t b;
    broker_start();
    peer_t home = node_open("home", &key_home, NULL);
    push_ok(&home, "home", 1, 3, 3);
    peer_t dg = node_open("dongguan", &key_dongguan, NULL);

    send_fetch(&dg, 0, 2);
    expect(&dg, LD_MSG_BATCH, &b);
    cr_assert_eq(b.u.batch.n, 2);
    cr_assert_eq(b.u.batch.positions[0], 1);
    cr_assert_eq(b.u.batch.positions[1], 2);
    cr_assert_eq(b.u.batch.remaining, 1);
    cr_assert_str_eq(b.u.batch.changes[0].origin, "home");
    cr_assert_eq(b.u.batch.changes[0].seq, 1);
    cr_assert_str_eq(ld_change_get(&b.u.batch.changes[0], "name"), "竹园镇龙潭村党支部");
    ld_msg_clear(&b);

    send_fetch(&dg, 0, 2);
    expect(&dg, LD_MSG_BATCH, &b);
    cr_assert_eq(b.u.batch.n, 2, "a fetch never deletes");
    ld_msg_clear(&b);

    send_ack(&dg, 2);
    send_fetch(&dg, 0, 100);
    expect(&dg, LD_MSG_BATCH, &b);
    cr_assert_eq(b.u.batch.n, 1, "the ack reclaimed positions 1 and 2");
    cr_assert_eq(b.u.batch.positions[0], 3);
    cr_assert_eq(b.u.batch.changes[0].seq, 3);
    cr_assert_eq(b.u.batch.remaining, 0);
    ld_msg_clear(&b);

    send_ack(&dg, 3);
    send_ack(&dg, 3);
    send_ack(&dg, 1000);
    send_fetch(&dg, 3, 100);
    expect(&dg, LD_MSG_BATCH, &b);
    cr_assert_eq(b.u.batch.n, 0, "acking twice or past the end is harmless");
    ld_msg_clear(&b);
    peer_close(&dg);
    peer_close(&home);
    assert_clean_stop();
}

/* Holds while the log has no line `text` written after byte `from`. */
static bool log_lacks(const char *text, off_t from)
{
    char *log = read_file(bk.log, (size_t)from);
    bool lacks = strstr(log, text) == NULL;
    free(log);
    return lacks;
}

Test(broker_protocol, memory_a_burst_used_is_given_back_once_the_broker_is_idle)
{
    const char *absent = hn_glibc_malloc_absent();
    if (absent != NULL) {
        teardown();                      /* Criterion runs no .fini after a skip */
        cr_skip_test("%s", absent);
    }
    static const char idle_line[] = "freed memory given back to the kernel";
    ld_msg_t m, b;
    broker_start();
    peer_t home = node_open("home", &key_home, NULL);
    peer_t dg = node_open("dongguan", &key_dongguan, NULL);

    /* Four full pushes of orgs with the longest names, each taken by dongguan. */
    char name[LD_ONE_LINE_MAX + 1] = "";
    while (strlen(name) + 3 <= LD_ONE_LINE_MAX)
        strcat(name, "党");
    for (uint64_t k = 0; k < 4; k++) {
        ld_msg_init(&m, LD_MSG_PUSH);
        m.u.push.n = LD_BATCH_MAX;
        m.u.push.changes = calloc(m.u.push.n, sizeof *m.u.push.changes);
        cr_assert_not_null(m.u.push.changes);
        for (size_t i = 0; i < m.u.push.n; i++)
            make_named_change(&m.u.push.changes[i], "home", k * LD_BATCH_MAX + i + 1, name,
                              aud_home_dongguan, 2);
        send_msg(&home, &m);
        ld_msg_clear(&m);
        expect(&home, LD_MSG_PUSH_ACK, &b);
        cr_assert_eq(b.u.push_ack.upto, (k + 1) * LD_BATCH_MAX);
        ld_msg_clear(&b);
        /* taken in batches of about LD_BATCH_BYTES each */
        uint64_t cursor = k * LD_BATCH_MAX;
        while (cursor < (k + 1) * LD_BATCH_MAX) {
            send_fetch(&dg, cursor, LD_BATCH_MAX);
            ld_msg_type_t t;
            while ((t = recv_msg(&dg, 5000, &b)) == LD_MSG_NOTIFY)
                ld_msg_clear(&b);       /* the mailbox grew: told before the fetch */
            cr_assert_eq(t, LD_MSG_BATCH);
            cr_assert_gt(b.u.batch.n, 0);
            cursor = b.u.batch.positions[b.u.batch.n - 1];
            ld_msg_clear(&b);
        }
    }
    /* Read well within the second the broker waits before it counts itself idle. */
    long busy = hn_status_kib(bk.pid, "VmRSS");
    cr_assert_gt(busy, 0);
    off_t from = file_size(bk.log);

    int64_t deadline = now_ms() + scaled(10000);
    while (log_lacks(idle_line, from) && now_ms() < deadline)
        nap();
    cr_assert_not(log_lacks(idle_line, from), "no memory given back after 10 s idle");
    long idle = hn_status_kib(bk.pid, "VmRSS");
    cr_assert_gt(idle, 0);
    fprintf(stderr, "broker resident: %ld KiB after the burst, %ld KiB idle\n", busy, idle);
    cr_assert_leq(idle + 2 * 1024, busy, "resident %ld KiB busy, %ld KiB idle", busy, idle);
    peer_close(&dg);
    peer_close(&home);
    assert_clean_stop();
}

Test(broker_protocol, a_credit_above_the_batch_limit_gets_at_most_the_limit)
{
    ld_msg_t b;
    broker_start();
    peer_t home = node_open("home", &key_home, NULL);
    push_ok(&home, "home", 1, LD_BATCH_MAX, LD_BATCH_MAX);
    push_ok(&home, "home", LD_BATCH_MAX + 1, LD_BATCH_MAX + 10, LD_BATCH_MAX + 10);
    peer_t dg = node_open("dongguan", &key_dongguan, NULL);
    send_fetch(&dg, 0, 1000000);
    expect(&dg, LD_MSG_BATCH, &b);
    cr_assert_eq(b.u.batch.n, LD_BATCH_MAX);
    cr_assert_eq(b.u.batch.remaining, 10);
    ld_msg_clear(&b);
    peer_close(&dg);
    peer_close(&home);
    assert_clean_stop();
}

Test(broker_protocol, a_connected_node_is_notified_when_its_mailbox_grows)
{
    ld_msg_t n;
    broker_start();
    peer_t dg = node_open("dongguan", &key_dongguan, NULL);
    peer_t home = node_open("home", &key_home, NULL);
    push_ok(&home, "home", 1, 2, 2);
    expect(&dg, LD_MSG_NOTIFY, &n);
    cr_assert_eq(n.u.notify.mailbox_depth, 2);
    ld_msg_clear(&n);
    peer_close(&home);
    peer_close(&dg);
    assert_clean_stop();
}

Test(broker_protocol, a_header_of_another_protocol_version_gets_a_version_error)
{
    ld_msg_t e, hello;
    broker_start();
    peer_t p = peer_open(&key_home);
    peer_connect(&p);
    uint8_t header[LD_HEADER_SIZE];
    uint8_t *body = NULL;
    size_t len = 0;
    ld_error_t err;
    ld_msg_init(&hello, LD_MSG_HELLO);
    hello.u.hello.protocol_version = LD_PROTOCOL_VERSION + 1;
    hello.u.hello.schema_version = LD_SCHEMA_VERSION;
    snprintf(hello.u.hello.node_id, sizeof hello.u.hello.node_id, "home");
    cr_assert_eq(ld_msg_encode(&hello, &body, &len, &err), 0);
    ld_frame_header(LD_MSG_HELLO, header);
    header[2] = LD_PROTOCOL_VERSION + 1;
    send_raw(&p, header, sizeof header, body, len);
    expect_error(&p, LD_ERR_VERSION, &e);
    cr_assert_not_null(strstr(e.u.error.message, "broker must upgrade"), "%s", e.u.error.message);
    char both[64];
    snprintf(both, sizeof both, "version %d", LD_PROTOCOL_VERSION + 1);
    cr_assert_not_null(strstr(e.u.error.message, both), "%s", e.u.error.message);
    ld_msg_clear(&e);
    free(body);
    ld_msg_clear(&hello);
    peer_close(&p);
    assert_clean_stop();
}

Test(broker_protocol, a_hello_with_another_schema_version_gets_a_version_error)
{
    ld_msg_t e, hello;
    broker_start();
    peer_t p = peer_open(&key_home);
    peer_connect(&p);
    ld_msg_init(&hello, LD_MSG_HELLO);
    hello.u.hello.protocol_version = LD_PROTOCOL_VERSION;
    hello.u.hello.schema_version = LD_SCHEMA_VERSION + 7;
    snprintf(hello.u.hello.node_id, sizeof hello.u.hello.node_id, "home");
    send_msg(&p, &hello);
    expect_error(&p, LD_ERR_VERSION, &e);
    cr_assert_not_null(strstr(e.u.error.message, "broker must upgrade"), "%s", e.u.error.message);
    ld_msg_clear(&e);
    ld_msg_clear(&hello);
    peer_close(&p);
    assert_clean_stop();
}

Test(broker_protocol, an_unregistered_key_is_refused_at_the_handshake)
{
    broker_start();
    peer_t p = peer_open(&key_stranger);
    char ep[64];
    snprintf(ep, sizeof ep, "inproc://test-monitor-%d", (int)getpid());
    cr_assert_eq(zmq_socket_monitor(p.sock, ep, ZMQ_EVENT_HANDSHAKE_FAILED_AUTH
                                    | ZMQ_EVENT_HANDSHAKE_SUCCEEDED), 0);
    p.monitor = zmq_socket(zctx, ZMQ_PAIR);
    cr_assert_not_null(p.monitor);
    track(p.monitor, true);
    cr_assert_eq(zmq_connect(p.monitor, ep), 0);
    peer_connect(&p);
    send_hello(&p, "stranger");
    zmq_pollitem_t item = { .socket = p.monitor, .events = ZMQ_POLLIN };
    cr_assert_eq(zmq_poll(&item, 1, (long)scaled(5000)), 1, "a handshake event within 5 s");
    zmq_msg_t frame;
    uint16_t event = 0;
    zmq_msg_init(&frame);
    cr_assert_geq(zmq_msg_recv(&frame, p.monitor, 0), 6);
    memcpy(&event, zmq_msg_data(&frame), sizeof event);
    zmq_msg_close(&frame);
    cr_assert_eq(event, ZMQ_EVENT_HANDSHAKE_FAILED_AUTH, "event 0x%x", event);
    ld_msg_t m;
    cr_assert_eq(recv_msg(&p, 300, &m), LD_MSG_NONE, "nothing is served to an unknown key");
    peer_close(&p);
    assert_clean_stop();
}

Test(broker_protocol, a_hello_with_another_nodes_id_is_refused)
{
    ld_msg_t e;
    broker_start();
    peer_t p = peer_open(&key_home);
    peer_connect(&p);
    send_hello(&p, "dongguan");
    expect_error(&p, LD_ERR_AUTH, &e);
    cr_assert_not_null(strstr(e.u.error.message, "home"), "%s", e.u.error.message);
    ld_msg_clear(&e);
    send_fetch(&p, 0, 10);
    expect_error(&p, LD_ERR_BAD_MESSAGE, &e);   /* still no Hello that passed */
    ld_msg_clear(&e);
    peer_close(&p);
    assert_clean_stop();
}

Test(broker_protocol, messages_before_hello_are_refused)
{
    ld_msg_t e, push;
    broker_start();
    peer_t p = peer_open(&key_home);
    peer_connect(&p);
    make_push(&push, "home", 1, 1, aud_home_dongguan, 2);
    send_msg(&p, &push);
    ld_msg_clear(&push);
    expect_error(&p, LD_ERR_BAD_MESSAGE, &e);
    cr_assert_not_null(strstr(e.u.error.message, "HELLO"), "%s", e.u.error.message);
    ld_msg_clear(&e);
    peer_close(&p);
    cr_assert_eq(depth_of("dongguan", &key_dongguan), 0);
    assert_clean_stop();
}

Test(broker_protocol, a_node_removed_while_connected_is_refused_on_its_open_connection)
{
    ld_msg_t m;
    broker_start();
    peer_t dg = node_open("dongguan", &key_dongguan, NULL);
    peer_t home = node_open("home", &key_home, NULL);
    push_ok(&home, "home", 1, 1, 1);
    expect(&dg, LD_MSG_NOTIFY, &m);
    ld_msg_clear(&m);
    cr_assert_eq(CLI(NULL, 0, "node", "remove", "dongguan", "--db", bk.db), 0);
    send_fetch(&dg, 0, 10);
    expect_error(&dg, LD_ERR_AUTH, &m);
    cr_assert_not_null(strstr(m.u.error.message, "dongguan"), "%s", m.u.error.message);
    ld_msg_clear(&m);
    /* whatever else it sends, it gets refusals and no batch */
    send_hello(&dg, "dongguan");
    send_fetch(&dg, 0, 10);
    int refusals = 0;
    for (;;) {
        ld_msg_type_t got = recv_msg(&dg, 500, &m);
        if (got == LD_MSG_NONE)
            break;
        cr_assert_eq(got, LD_MSG_ERROR, "got %s", ld_msg_type_name(got));
        cr_assert_eq(m.u.error.code, LD_ERR_AUTH);
        ld_msg_clear(&m);
        refusals++;
    }
    cr_assert_geq(refusals, 2, "the Hello and the Fetch were both refused");
    /* and a new connection with its key fails the handshake */
    peer_t again = peer_open(&key_dongguan);
    peer_connect(&again);
    send_hello(&again, "dongguan");
    cr_assert_eq(recv_msg(&again, 1000, &m), LD_MSG_NONE);
    peer_close(&again);
    peer_close(&home);
    peer_close(&dg);
    assert_clean_stop();
}

Test(broker_protocol, a_push_with_a_spoofed_origin_is_refused_and_nothing_is_stored)
{
    ld_msg_t push, e;
    broker_start();
    peer_t home = node_open("home", &key_home, NULL);
    make_push(&push, "home", 1, 2, aud_home_dongguan, 2);
    /* the second change claims to come from dongguan */
    ld_change_t *c = &push.u.push.changes[1];
    snprintf(c->origin, sizeof c->origin, "dongguan");
    c->seq = 1;
    snprintf(c->record_id, sizeof c->record_id, "org-spoofed");
    send_msg(&home, &push);
    ld_msg_clear(&push);
    expect_error(&home, LD_ERR_DENIED, &e);
    cr_assert_str_eq(e.u.error.record_id, "org-spoofed");
    cr_assert_eq(e.u.error.seq, 1);
    cr_assert_not_null(strstr(e.u.error.message, "dongguan"), "%s", e.u.error.message);
    ld_msg_clear(&e);
    uint64_t pushed = 9;
    welcome_of("home", &key_home, NULL, &pushed);
    cr_assert_eq(pushed, 0, "the valid first change was not stored either");
    cr_assert_eq(depth_of("dongguan", &key_dongguan), 0);
    peer_close(&home);
    assert_clean_stop();
}

Test(broker_protocol, a_push_addressed_to_an_unlinked_node_is_refused_and_nothing_is_stored)
{
    ld_msg_t push, e;
    static const char *const aud_unlinked[] = { "home", "dongguan", "shenzhen" };
    broker_start();
    peer_t home = node_open("home", &key_home, NULL);
    make_push(&push, "home", 1, 1, aud_home_dongguan, 2);
    ld_msg_t bad;
    make_push(&bad, "home", 2, 2, aud_unlinked, 3);
    /* one push: seq 1 is fine, seq 2 names shenzhen, which home is not linked to */
    ld_change_t *both = calloc(2, sizeof *both);
    cr_assert_not_null(both);
    both[0] = push.u.push.changes[0];
    both[1] = bad.u.push.changes[0];
    free(push.u.push.changes);
    free(bad.u.push.changes);
    push.u.push.changes = both;
    push.u.push.n = 2;
    send_msg(&home, &push);
    ld_msg_clear(&push);
    expect_error(&home, LD_ERR_DENIED, &e);
    cr_assert_not_null(strstr(e.u.error.message, "shenzhen"), "%s", e.u.error.message);
    cr_assert_eq(e.u.error.seq, 2);
    ld_msg_clear(&e);
    cr_assert_eq(depth_of("dongguan", &key_dongguan), 0);
    cr_assert_eq(depth_of("shenzhen", &key_shenzhen), 0);
    peer_close(&home);
    assert_clean_stop();
}

Test(broker_protocol, a_change_stamped_far_in_the_future_is_refused)
{
    ld_msg_t push, e;
    broker_start();
    peer_t home = node_open("home", &key_home, NULL);
    make_push(&push, "home", 1, 1, aud_home_dongguan, 2);
    push.u.push.changes[0].hlc = ld_hlc_make(ld_hlc_wall_now() + 10u * 60u * 1000u, 0);
    send_msg(&home, &push);
    ld_msg_clear(&push);
    expect_error(&home, LD_ERR_CLOCK, &e);
    cr_assert_not_null(strstr(e.u.error.message, "ahead"), "%s", e.u.error.message);
    ld_msg_clear(&e);
    cr_assert_eq(depth_of("dongguan", &key_dongguan), 0);
    peer_close(&home);
    assert_clean_stop();
}

Test(broker_protocol, a_seq_that_skips_ahead_gets_a_sequence_error)
{
    ld_msg_t e;
    broker_start();
    peer_t home = node_open("home", &key_home, NULL);
    push_ok(&home, "home", 1, 2, 2);
    ld_msg_t push;
    make_push(&push, "home", 4, 5, aud_home_dongguan, 2);
    send_msg(&home, &push);
    ld_msg_clear(&push);
    expect_error(&home, LD_ERR_SEQUENCE, &e);
    cr_assert_eq(e.u.error.seq, 4);
    ld_msg_clear(&e);
    cr_assert_eq(depth_of("dongguan", &key_dongguan), 2);
    peer_close(&home);
    assert_clean_stop();
}

Test(broker_protocol, status_shows_depth_and_counts_per_node_aligned)
{
    ld_msg_t b;
    broker_start();
    peer_t home = node_open("home", &key_home, NULL);
    push_ok(&home, "home", 1, 5, 5);
    peer_t dg = node_open("dongguan", &key_dongguan, NULL);
    send_fetch(&dg, 0, 3);
    expect(&dg, LD_MSG_BATCH, &b);
    ld_msg_clear(&b);
    send_ack(&dg, 3);
    send_fetch(&dg, 3, 0);            /* a round trip: the ack ahead of it was served */
    expect(&dg, LD_MSG_BATCH, &b);
    cr_assert_eq(b.u.batch.remaining, 2);
    ld_msg_clear(&b);
    peer_close(&dg);
    peer_close(&home);
    cr_assert_eq(broker_stop(SIGTERM), 0, "SIGTERM exits 0");   /* writes the statistics */

    char out[4096];
    cr_assert_eq(CLI(out, sizeof out, "status", "--db", bk.db), 0);
    const char *home_row = strstr(out, "\nhome ");
    const char *dg_row = strstr(out, "\ndongguan ");
    cr_assert(home_row && dg_row, "%s", out);
    cr_assert_not_null(strstr(home_row, "竹园镇党委"), "%s", out);
    cr_assert_not_null(strstr(home_row, " CST"), "last seen in China Standard Time: %s", out);
    char cells[8][64];
    cr_assert_eq(sscanf(dg_row + 1, "%63s %63s %63s %63s %63s %63s %63s %63s", cells[0],
                        cells[1], cells[2], cells[3], cells[4], cells[5], cells[6], cells[7]), 8,
                 "%s", out);
    cr_assert_str_eq(cells[5], "2", "depth after acking 3 of 5: %s", out);
    cr_assert_str_eq(cells[7], "3", "fetched: %s", out);
    int home_push = 0;
    cr_assert_eq(sscanf(home_row + 1, "%*s %*s %*s %*s %*s %*s %d", &home_push), 1, "%s", out);
    cr_assert_eq(home_push, 5, "%s", out);
    /* columns line up by display width: every "DEPTH" cell starts at the same column */
    const char *head = strstr(out, "DEPTH");
    cr_assert_not_null(head);
    size_t col = 0;
    for (const char *s = out; s < head; s++)
        col = (*s == '\n') ? 0 : col + ((((unsigned char)*s) & 0xC0) != 0x80
                                        ? ((unsigned char)*s >= 0xE0 ? 2 : 1) : 0);
    size_t dcol = 0;
    const char *cell = strstr(dg_row + 1, "CST") + 3;
    while (*cell == ' ')
        cell++;
    for (const char *s = dg_row + 1; s < cell; s++)
        dcol += (((unsigned char)*s) & 0xC0) != 0x80 ? ((unsigned char)*s >= 0xE0 ? 2 : 1) : 0;
    cr_assert_eq(col, dcol, "DEPTH column at %zu, dongguan's depth at %zu:\n%s", col, dcol, out);
    assert_clean_stop();
}

Test(broker_protocol, a_backup_taken_while_serving_is_a_consistent_store)
{
    broker_start();
    peer_t home = node_open("home", &key_home, NULL);
    push_ok(&home, "home", 1, 50, 50);
    char copy[400];
    snprintf(copy, sizeof copy, "%s/copy.db", bk.dir);
    cr_assert_eq(CLI(NULL, 0, "backup", copy, "--db", bk.db), 0);
    cr_assert_neq(CLI(NULL, 0, "backup", copy, "--db", bk.db), 0, "an existing file is kept");
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    cr_assert_eq(sqlite3_open_v2(copy, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    cr_assert_str_eq((const char *)sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
    cr_assert_eq(sqlite3_prepare_v2(db, "SELECT sum(\"last\" - \"first\" + 1) FROM "
                                    "\"mailbox_chunks\" WHERE \"node\" = ?1", -1, &st, NULL),
                 SQLITE_OK);
    sqlite3_bind_text(st, 1, "dongguan", -1, SQLITE_STATIC);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    cr_assert_eq(sqlite3_column_int(st, 0), 50);
    sqlite3_finalize(st);
    sqlite3_close(db);
    peer_close(&home);
    assert_clean_stop();
}

/* The bytes of the broker's store: its file and its WAL. */
static off_t store_bytes(void)
{
    char wal[400];
    snprintf(wal, sizeof wal, "%s-wal", bk.db);
    off_t w = file_size(wal);
    return file_size(bk.db) + (w > 0 ? w : 0);
}

Test(broker_protocol, compact_gives_a_drained_mailbox_back_to_the_disk_once_run_is_stopped)
{
    ld_msg_t b;
    broker_start();
    peer_t home = node_open("home", &key_home, NULL);
    /* about 2 MB of changes: the mailbox keeps them in chunks, about their own size */
    for (uint64_t i = 0; i < 16; i++)
        push_ok(&home, "home", i * 1000 + 1, (i + 1) * 1000, (i + 1) * 1000);
    peer_t dg = node_open("dongguan", &key_dongguan, NULL);
    send_ack(&dg, 16000);
    send_fetch(&dg, 16000, 10);                  /* answered after the ack is done */
    expect(&dg, LD_MSG_BATCH, &b);
    cr_assert_eq(b.u.batch.n + b.u.batch.remaining, 0, "the mailbox is drained");
    ld_msg_clear(&b);

    off_t from = file_size(bk.log);
    cr_assert_eq(CLI(NULL, 0, "compact", "--db", bk.db), 1, "refused while run serves");
    char *log = read_file(bk.log, from);
    cr_assert_not_null(strstr(log, "open in another process"), "%s", log);
    cr_assert_not_null(strstr(log, "stop `liangdi-broker run`"), "%s", log);
    free(log);
    peer_close(&dg);
    peer_close(&home);
    assert_clean_stop();

    /* status says the space is there to give back, and how */
    char out[8192];
    cr_assert_eq(CLI(out, sizeof out, "status", "--db", bk.db), 0);
    cr_assert_not_null(strstr(out, "MB of them free"), "%s", out);
    cr_assert_not_null(strstr(out, "`liangdi-broker compact`, with `run` stopped"), "%s", out);

    off_t before = store_bytes();
    from = file_size(bk.log);
    cr_assert_eq(CLI(NULL, 0, "compact", "--db", bk.db), 0);
    log = read_file(bk.log, from);
    cr_assert_not_null(strstr(log, "compacted"), "%s", log);
    free(log);
    off_t after = store_bytes();
    cr_assert_lt(after * 2, before, "%lld bytes, then %lld", (long long)before,
                 (long long)after);
    cr_assert_eq(CLI(out, sizeof out, "status", "--db", bk.db), 0);
    cr_assert_null(strstr(out, "`liangdi-broker compact`"), "nothing left to give back:\n%s",
                   out);

    /* the registry, the links and the sequence are all still there */
    broker_start();
    home = node_open("home", &key_home, NULL);
    push_ok(&home, "home", 16001, 16001, 16001);
    dg = node_open("dongguan", &key_dongguan, NULL);
    send_fetch(&dg, 16000, 10);
    expect(&dg, LD_MSG_BATCH, &b);
    cr_assert_eq(b.u.batch.n, 1);
    cr_assert_eq(b.u.batch.changes[0].seq, 16001);
    ld_msg_clear(&b);
    peer_close(&dg);
    peer_close(&home);
    assert_clean_stop();
}

Test(broker_protocol, compact_of_a_jetstream_store_is_a_usage_error)
{
    off_t from = file_size(bk.log);
    cr_assert_eq(CLI(NULL, 0, "compact", "--store", "jetstream:nats://127.0.0.1:9"), 2);
    char *log = read_file(bk.log, from);
    cr_assert_not_null(strstr(log, "compact rewrites a SQLite store"), "%s", log);
    free(log);
}

Test(broker_protocol, a_key_file_others_can_read_is_refused)
{
    char key[400];
    snprintf(key, sizeof key, "%s.key", bk.db);
    cr_assert_eq(chmod(key, 0644), 0);
    cr_assert_eq(CLI(NULL, 0, "run", "--db", bk.db, "--config", bk.conf, "--bind",
                     "tcp://127.0.0.1:*"), 1);
    char *log = read_file(bk.log, 0);
    cr_assert_not_null(strstr(log, "broker.db.key"), "the message names the file:\n%s", log);
    cr_assert_null(strstr(log, "ready, listening"));
    free(log);
}

Test(broker_protocol, bad_arguments_exit_2_naming_the_argument_and_value)
{
    cr_assert_eq(CLI(NULL, 0, "node", "add", "Bad Id", "--key", key_home.public_key,
                     "--db", bk.db), 2);
    cr_assert_eq(CLI(NULL, 0, "node", "add", "ok", "--key", "short", "--db", bk.db), 2);
    cr_assert_eq(CLI(NULL, 0, "link", "add", "home", "--db", bk.db), 2);
    cr_assert_eq(CLI(NULL, 0, "frobnicate", "--db", bk.db), 2);
    cr_assert_eq(CLI(NULL, 0, "status", "--colour", "red", "--db", bk.db), 2);
    cr_assert_eq(CLI(NULL, 0, "status", "--db", bk.db, "--bind", "tcp://x:1"), 2);
    char *log = read_file(bk.log, 0);
    cr_assert_not_null(strstr(log, "'Bad Id'"), "%s", log);
    cr_assert_not_null(strstr(log, "'short'"), "%s", log);
    cr_assert_not_null(strstr(log, "'--colour'"), "%s", log);
    free(log);
    cr_assert_eq(CLI(NULL, 0, "link", "add", "home", "nowhere", "--db", bk.db), 2,
                 "a node that is not registered is a bad argument");
    cr_assert_eq(CLI(NULL, 0, "node", "remove", "nowhere", "--db", bk.db), 2);
    char missing[600];
    snprintf(missing, sizeof missing, "%s.none", bk.db);
    cr_assert_eq(CLI(NULL, 0, "node", "list", "--db", missing), 1,
                 "a runtime failure (no store there) exits 1");
}

Test(broker_protocol, a_bad_config_line_names_file_line_and_key)
{
    write_conf("max_peers = 10\nmax_pears = 3\n");
    cr_assert_eq(CLI(NULL, 0, "status", "--db", bk.db, "--config", bk.conf), 2);
    char *log = read_file(bk.log, 0);
    char where[400];
    snprintf(where, sizeof where, "%s:4: max_pears", bk.conf);
    cr_assert_not_null(strstr(log, where), "%s", log);
    free(log);
    write_conf("heartbeat_ivl_ms = soon\n");
    cr_assert_eq(CLI(NULL, 0, "status", "--db", bk.db, "--config", bk.conf), 2);
    log = read_file(bk.log, 0);
    snprintf(where, sizeof where, "%s:3: heartbeat_ivl_ms: 'soon'", bk.conf);
    cr_assert_not_null(strstr(log, where), "%s", log);
    free(log);
}

Test(broker_protocol, the_db_may_come_from_the_environment_or_the_config)
{
    char out[4096];
    setenv("LIANGDI_BROKER_DB", bk.db, 1);
    cr_assert_eq(CLI(out, sizeof out, "node", "list"), 0);
    cr_assert_not_null(strstr(out, "东莞流动党支部"), "%s", out);
    unsetenv("LIANGDI_BROKER_DB");
    char line[400];
    snprintf(line, sizeof line, "db = %s\n", bk.db);
    write_conf(line);
    cr_assert_eq(CLI(out, sizeof out, "link", "list", "--config", bk.conf), 0);
    cr_assert_not_null(strstr(out, "dongguan  home"), "%s", out);
}

/* Starts the broker with fsync_shim.c preloaded (its settings already in the
 * environment); the processes started after it run without. */
static void broker_start_shimmed(void)
{
    const char *shim = getenv("LIANGDI_FSYNC_SHIM");
    cr_assert_not_null(shim, "meson sets LIANGDI_FSYNC_SHIM");
    const char *asan = getenv("ASAN_OPTIONS");
    char asan_opts[512];
    snprintf(asan_opts, sizeof asan_opts, "%s%sverify_asan_link_order=0", asan ? asan : "",
             asan && *asan ? ":" : "");
    setenv("ASAN_OPTIONS", asan_opts, 1);
    setenv("LD_PRELOAD", shim, 1);
    broker_start();
    unsetenv("LD_PRELOAD");
}

Test(broker_protocol, a_push_is_acked_only_once_its_mailbox_write_is_on_the_disk)
{
    /* every fdatasync in the broker takes 200 ms longer: an ack sent before its
     * write's sync ended comes sooner than that */
    setenv("LIANGDI_SLOW_FSYNC_MS", "200", 1);
    broker_start_shimmed();
    peer_t home = node_open("home", &key_home, NULL);
    /* the first write to a new log syncs its header in line (SQLite's own): the push
     * timed is the next one */
    push_ok(&home, "home", 1, 3, 3);
    int64_t t0 = now_ms();
    push_ok(&home, "home", 4, 5, 5);
    int64_t took = now_ms() - t0;
    cr_assert_geq(took, 200, "PUSH_ACK after %lld ms: before the sync of its write ended",
                  (long long)took);
    /* what was acked is there to fetch */
    cr_assert_eq(depth_of("dongguan", &key_dongguan), 5);
    peer_close(&home);
    assert_clean_stop();
}

Test(broker_protocol, a_broker_whose_disk_refuses_a_sync_withholds_the_ack_and_stops)
{
    char flag[PATH_MAX + 16];
    snprintf(flag, sizeof flag, "%s/disk-fails", bk.dir);
    setenv("LIANGDI_FAIL_FSYNC_IF", flag, 1);
    broker_start_shimmed();
    peer_t home = node_open("home", &key_home, NULL);
    push_ok(&home, "home", 1, 3, 3);       /* the log is started: no sync in line now */
    off_t from = file_size(bk.log);
    FILE *f = fopen(flag, "w");
    cr_assert_not_null(f);
    fclose(f);
    ld_msg_t m;
    make_push(&m, "home", 4, 5, aud_home_dongguan, 2);
    send_msg(&home, &m);
    ld_msg_clear(&m);
    int status = broker_stop(0);           /* no signal: it stops by itself */
    cr_assert(status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 1,
              "the broker went on, or did not stop with its runtime error status 1 "
              "(status 0x%x)", (unsigned)status);
    /* an ack would have left before the broker stopped: whatever came is here now, or
     * but a moment behind */
    ld_msg_t reply;
    ld_msg_type_t got = recv_msg(&home, 100, &reply);
    cr_assert_neq(got, LD_MSG_PUSH_ACK, "a push whose sync failed was acked");
    if (got != LD_MSG_NONE)
        ld_msg_clear(&reply);
    char *log = read_file(bk.log, (size_t)from);
    cr_assert_not_null(strstr(log, "cannot make"), "%s", log);
    cr_assert_not_null(strstr(log, "broker.db-wal durable: Input/output error"), "%s", log);
    cr_assert_not_null(strstr(log, "1 push acks withheld; the broker stops"), "%s", log);
    free(log);
    peer_close(&home);
}
