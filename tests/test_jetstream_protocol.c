/* test_jetstream_protocol.c: the real liangdi-broker on the JetStream store, spoken to
 * as a node would (a raw DEALER with CURVE and the ld_ codec): the rules of
 * proto/PROTOCOL.md hold as on SQLite, and two front-ends of one store act as one
 * broker (a node added, removed or notified on one is so on the other).  The node's
 * side is node_peer.h's, as in the SQLite broker's own protocol test. */
#include <criterion/criterion.h>
#include <nats/nats.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>
#include "codec.h"
#include "frame.h"
#include "hlc.h"
#include "keys.h"
#include "node_peer.h"
#include "schema.h"
#include "test_jetstream_harness.h"

#define FRONT_ENDS 2


static char dir[HN_PATH_MAX];
static char key_file[HN_PATH_MAX + 16];
static char conf[HN_PATH_MAX + 16];
static char public_key[LD_KEY_TEXT + 1];
static jh_nats_t nats;
static jh_front_end_t fe[FRONT_ENDS];
static bool passed;

/* ---- processes ---- */

/* `liangdi-broker ARGS... --store S`: its exit status, stdout into out (may be NULL). */
static int cli_va(char *out, size_t outsz, const char *const *args)
{
    int status = jh_broker_cli(nats.store, out, outsz, args);
    cr_assert_geq(status, 0, "liangdi-broker %s could not be run", args[0]);
    return status;
}

#define CLI(out, outsz, ...) cli_va((out), (outsz), (const char *const[]){ __VA_ARGS__, NULL })

static void fe_start(size_t i)
{
    char log[HN_PATH_MAX + 16], name[32];
    snprintf(log, sizeof log, "%s/front-end-%zu.log", dir, i);
    snprintf(name, sizeof name, "front-end %zu", i);
    cr_assert_eq(jh_front_end_start(&fe[i], name, log, nats.store, key_file, conf), 0,
                 "%s did not start", name);
}

static void register_node(const char *id, const char *name, const ld_keypair_t *kp)
{
    cr_assert_eq(CLI(NULL, 0, "node", "add", id, "--key", kp->public_key, "--name", name), 0);
}

static void setup(void)
{
    ld_error_t err;
    char out[256];
    if (!jh_nats_server_bin())
        cr_skip_test("nats-server is not installed here (Debian: apt-get install nats-server), "
                     "so the broker was not tested on JetStream");
    cr_assert_eq(hn_tmpdir_new("jsproto", dir), 0);
    snprintf(key_file, sizeof key_file, "%s/broker.key", dir);
    snprintf(conf, sizeof conf, "%s/broker.conf", dir);
    FILE *f = fopen(conf, "w");
    cr_assert_not_null(f);
    fprintf(f, "[broker]\nlog_level = debug\n");
    fclose(f);
    cr_assert_eq(jh_nats_start(&nats, dir, 1), 0, "nats-server did not start");
    cr_assert_eq(CLI(out, sizeof out, "init", "--key-file", key_file), 0);
    cr_assert_eq(strlen(out), LD_KEY_TEXT + 1, "init prints the public key: %s", out);
    memcpy(public_key, out, LD_KEY_TEXT);
    public_key[LD_KEY_TEXT] = '\0';
    cr_assert_eq(ld_keys_generate(&key_home, &err), 0);
    cr_assert_eq(ld_keys_generate(&key_dongguan, &err), 0);
    cr_assert_eq(ld_keys_generate(&key_shenzhen, &err), 0);
    cr_assert_eq(ld_keys_generate(&key_stranger, &err), 0);
    register_node("home", "竹园镇党委", &key_home);
    register_node("dongguan", "东莞流动党支部", &key_dongguan);
    register_node("shenzhen", "深圳流动党支部", &key_shenzhen);
    cr_assert_eq(CLI(NULL, 0, "link", "add", "home", "dongguan"), 0);
    zctx = zmq_ctx_new();
    cr_assert_not_null(zctx);
    peer_server_key = public_key;
    peer_wait_ms = 10000;              /* a JetStream store answers more slowly */
}

static void teardown(void)
{
    peers_close_all();
    for (size_t i = 0; i < FRONT_ENDS; i++) {
        hn_proc_stop(&fe[i].proc, 10000);
        if (!passed)
            hn_proc_dump_log(&fe[i].proc);
    }
    jh_nats_stop(&nats, !passed);
    hn_tmpdir_remove(dir);
}

TestSuite(jetstream_protocol, .init = setup, .fini = teardown, .timeout = 120);

/* True if the file holds `needle`. */
static bool file_has(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    char line[4096];
    bool found = false;
    while (f && !found && fgets(line, sizeof line, f))
        found = strstr(line, needle) != NULL;
    if (f)
        fclose(f);
    return found;
}

/* Every front-end started stops cleanly on SIGTERM, with nothing from the sanitizers. */
static void assert_clean_stop(void)
{
    static const char *const marks[] = { "ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                                         "runtime error:" };
    for (size_t i = 0; i < FRONT_ENDS; i++) {
        if (fe[i].proc.log[0] == '\0')
            continue;
        if (fe[i].proc.pid > 0)
            cr_assert_eq(hn_proc_stop(&fe[i].proc, 10000), 0, "front-end %zu exits 0 on SIGTERM",
                         i);
        for (size_t k = 0; k < 3; k++)
            cr_assert_not(file_has(fe[i].proc.log, marks[k]), "front-end %zu logged '%s'", i,
                          marks[k]);
    }
    passed = true;
}

/* ---- a node, raw (node_peer.h), at one front-end or the other ---- */

static peer_t fe_peer(size_t at, const ld_keypair_t *kp)
{
    peer_endpoint = fe[at].endpoint;
    peer_t p = peer_open(kp);
    peer_connect(&p);
    return p;
}

static peer_t fe_node(size_t at, const char *id, const ld_keypair_t *kp, ld_msg_t *welcome)
{
    peer_endpoint = fe[at].endpoint;
    return node_open(id, kp, welcome);
}

static uint64_t fe0_depth_of(const char *id, const ld_keypair_t *kp)
{
    peer_endpoint = fe[0].endpoint;
    return depth_of(id, kp);
}

static void fe_welcome_of(size_t at, const char *id, const ld_keypair_t *kp, uint64_t *depth,
                          uint64_t *pushed_upto)
{
    peer_endpoint = fe[at].endpoint;
    welcome_of(id, kp, depth, pushed_upto);
}

/* ---- one front-end: the protocol as on SQLite ---- */

Test(jetstream_protocol, hello_push_and_welcome_tell_the_node_where_to_resume)
{
    ld_msg_t w;
    fe_start(0);
    peer_t home = fe_node(0, "home", &key_home, &w);
    cr_assert_eq(w.u.welcome.pushed_upto, 0);
    cr_assert_eq(w.u.welcome.mailbox_depth, 0);
    ld_msg_clear(&w);
    push_ok(&home, "home", 1, 3, 3);
    push_ok(&home, "home", 1, 3, 3);
    push_ok(&home, "home", 2, 4, 4);
    uint64_t pushed = 0, depth = 9;
    fe_welcome_of(0, "home", &key_home, &depth, &pushed);
    cr_assert_eq(pushed, 4, "Welcome tells the node where to resume");
    cr_assert_eq(depth, 0, "the sender's own mailbox gets nothing");
    cr_assert_eq(fe0_depth_of("dongguan", &key_dongguan), 4, "a repeated push is stored once");
    cr_assert_eq(fe0_depth_of("shenzhen", &key_shenzhen), 0, "outside the audience");
    peer_close(&home);
    assert_clean_stop();
}

Test(jetstream_protocol, fetch_goes_by_cursor_never_deletes_and_ack_reclaims)
{
    ld_msg_t b;
    fe_start(0);
    peer_t home = fe_node(0, "home", &key_home, NULL);
    push_ok(&home, "home", 1, 3, 3);
    peer_t dg = fe_node(0, "dongguan", &key_dongguan, NULL);
    send_fetch(&dg, 0, 2);
    expect(&dg, LD_MSG_BATCH, &b);
    cr_assert_eq(b.u.batch.n, 2);
    cr_assert_eq(b.u.batch.remaining, 1);
    cr_assert_lt(b.u.batch.positions[0], b.u.batch.positions[1]);
    cr_assert_str_eq(b.u.batch.changes[0].origin, "home");
    cr_assert_eq(b.u.batch.changes[0].seq, 1);
    cr_assert_str_eq(ld_change_get(&b.u.batch.changes[0], "name"), "竹园镇龙潭村党支部");
    uint64_t second = b.u.batch.positions[1];
    ld_msg_clear(&b);
    send_fetch(&dg, 0, 2);
    expect(&dg, LD_MSG_BATCH, &b);
    cr_assert_eq(b.u.batch.n, 2, "a fetch never deletes");
    ld_msg_clear(&b);
    send_ack(&dg, second);
    send_fetch(&dg, 0, 100);
    expect(&dg, LD_MSG_BATCH, &b);
    cr_assert_eq(b.u.batch.n, 1, "the ack reclaimed the first two");
    cr_assert_eq(b.u.batch.changes[0].seq, 3);
    uint64_t third = b.u.batch.positions[0];
    ld_msg_clear(&b);
    send_ack(&dg, third);
    send_ack(&dg, third);
    send_ack(&dg, third + 1000);
    send_fetch(&dg, third, 100);
    expect(&dg, LD_MSG_BATCH, &b);
    cr_assert_eq(b.u.batch.n, 0, "acking twice or past the end is harmless");
    cr_assert_eq(b.u.batch.remaining, 0);
    ld_msg_clear(&b);
    peer_close(&dg);
    peer_close(&home);
    assert_clean_stop();
}

Test(jetstream_protocol, a_credit_above_the_batch_limit_gets_at_most_the_limit)
{
    ld_msg_t b;
    fe_start(0);
    peer_t home = fe_node(0, "home", &key_home, NULL);
    push_ok(&home, "home", 1, LD_BATCH_MAX, LD_BATCH_MAX);
    push_ok(&home, "home", LD_BATCH_MAX + 1, LD_BATCH_MAX + 10, LD_BATCH_MAX + 10);
    peer_t dg = fe_node(0, "dongguan", &key_dongguan, NULL);
    send_fetch(&dg, 0, 1000000);
    expect(&dg, LD_MSG_BATCH, &b);
    cr_assert_eq(b.u.batch.n, LD_BATCH_MAX);
    cr_assert_eq(b.u.batch.remaining, 10);
    ld_msg_clear(&b);
    peer_close(&dg);
    peer_close(&home);
    assert_clean_stop();
}

Test(jetstream_protocol, refused_pushes_store_nothing)
{
    ld_msg_t push, e;
    static const char *const aud_unlinked[] = { "home", "shenzhen" };
    fe_start(0);
    peer_t home = fe_node(0, "home", &key_home, NULL);
    make_push(&push, "home", 1, 2, aud_home_dongguan, 2);
    snprintf(push.u.push.changes[1].origin, sizeof push.u.push.changes[1].origin, "dongguan");
    send_msg(&home, &push);
    ld_msg_clear(&push);
    expect_error(&home, LD_ERR_DENIED, &e);
    cr_assert_not_null(strstr(e.u.error.message, "dongguan"), "%s", e.u.error.message);
    ld_msg_clear(&e);
    make_push(&push, "home", 1, 1, aud_unlinked, 2);
    send_msg(&home, &push);
    ld_msg_clear(&push);
    expect_error(&home, LD_ERR_DENIED, &e);
    cr_assert_not_null(strstr(e.u.error.message, "shenzhen"), "%s", e.u.error.message);
    ld_msg_clear(&e);
    push_ok(&home, "home", 1, 2, 2);
    make_push(&push, "home", 4, 5, aud_home_dongguan, 2);
    send_msg(&home, &push);
    ld_msg_clear(&push);
    expect_error(&home, LD_ERR_SEQUENCE, &e);
    cr_assert_eq(e.u.error.seq, 4);
    ld_msg_clear(&e);
    cr_assert_eq(fe0_depth_of("dongguan", &key_dongguan), 2);
    cr_assert_eq(fe0_depth_of("shenzhen", &key_shenzhen), 0);
    peer_close(&home);
    assert_clean_stop();
}

Test(jetstream_protocol, an_unregistered_key_gets_nothing)
{
    ld_msg_t m;
    fe_start(0);
    peer_t s = fe_peer(0, &key_stranger);
    send_hello(&s, "stranger");
    cr_assert_eq(recv_msg(&s, 1000, &m), LD_MSG_NONE, "nothing is served to an unknown key");
    peer_close(&s);
    assert_clean_stop();
}

Test(jetstream_protocol, status_shows_depth_and_counts_from_the_shared_store)
{
    ld_msg_t b;
    char out[4096];
    fe_start(0);
    peer_t home = fe_node(0, "home", &key_home, NULL);
    push_ok(&home, "home", 1, 5, 5);
    peer_t dg = fe_node(0, "dongguan", &key_dongguan, NULL);
    send_fetch(&dg, 0, 3);
    expect(&dg, LD_MSG_BATCH, &b);
    uint64_t third = b.u.batch.positions[2];
    ld_msg_clear(&b);
    send_ack(&dg, third);
    send_fetch(&dg, third, 0);           /* a round trip: the ack ahead of it was served */
    expect(&dg, LD_MSG_BATCH, &b);
    cr_assert_eq(b.u.batch.remaining, 2);
    ld_msg_clear(&b);
    peer_close(&dg);
    peer_close(&home);
    cr_assert_eq(hn_proc_stop(&fe[0].proc, 10000), 0);   /* writes the statistics */
    cr_assert_eq(CLI(out, sizeof out, "status"), 0);
    const char *dg_row = strstr(out, "\ndongguan ");
    const char *home_row = strstr(out, "\nhome ");
    cr_assert(dg_row && home_row, "%s", out);
    cr_assert_not_null(strstr(home_row, " CST"), "%s", out);
    char cells[8][64];
    cr_assert_eq(sscanf(dg_row + 1, "%63s %63s %63s %63s %63s %63s %63s %63s", cells[0],
                        cells[1], cells[2], cells[3], cells[4], cells[5], cells[6], cells[7]), 8,
                 "%s", out);
    cr_assert_str_eq(cells[5], "2", "depth after acking 3 of 5: %s", out);
    cr_assert_str_eq(cells[7], "3", "fetched: %s", out);
    cr_assert_eq(CLI(NULL, 0, "backup", "copy.db"), 2, "backup is for the SQLite store");
    assert_clean_stop();
}

/* ---- two front-ends of one store ---- */

Test(jetstream_protocol, a_node_stored_on_one_front_end_is_notified_and_served_by_the_other)
{
    ld_msg_t m;
    fe_start(0);
    fe_start(1);
    peer_t dg = fe_node(1, "dongguan", &key_dongguan, NULL);
    peer_t home = fe_node(0, "home", &key_home, NULL);
    push_ok(&home, "home", 1, 2, 2);
    expect(&dg, LD_MSG_NOTIFY, &m);
    cr_assert_eq(m.u.notify.mailbox_depth, 2);
    ld_msg_clear(&m);
    send_fetch(&dg, 0, 10);
    expect(&dg, LD_MSG_BATCH, &m);
    cr_assert_eq(m.u.batch.n, 2);
    ld_msg_clear(&m);
    uint64_t pushed = 0;
    fe_welcome_of(1, "home", &key_home, NULL, &pushed);
    cr_assert_eq(pushed, 2, "the other front-end knows where home resumes");
    peer_close(&home);
    peer_close(&dg);
    assert_clean_stop();
}

Test(jetstream_protocol, a_node_added_on_one_front_end_is_admitted_by_the_other)
{
    ld_error_t err;
    ld_keypair_t key_new;
    fe_start(0);
    fe_start(1);
    cr_assert_eq(ld_keys_generate(&key_new, &err), 0);
    register_node("beijing", "北京流动党支部", &key_new);
    peer_t s = fe_node(1, "beijing", &key_new, NULL);
    peer_close(&s);
    assert_clean_stop();
}

typedef struct refusal {
    peer_t *peer;
} refusal_t;

/* True once a Fetch on the open connection is refused for authentication. */
static bool fetch_refused(void *ctx)
{
    refusal_t *r = ctx;
    ld_msg_t m;
    send_fetch(r->peer, 0, 10);
    ld_msg_type_t got = recv_msg(r->peer, 2000, &m);
    bool refused = got == LD_MSG_ERROR && m.u.error.code == LD_ERR_AUTH;
    if (got != LD_MSG_NONE)
        ld_msg_clear(&m);
    return refused;
}

/* True once a front-end logged that it emptied the removed dongguan's mailbox. */
static bool mailbox_emptied(void *ctx)
{
    (void)ctx;
    for (size_t at = 0; at < FRONT_ENDS; at++)
        if (file_has(fe[at].proc.log, "deleted 5 changes that waited for removed node dongguan"))
            return true;
    return false;
}

Test(jetstream_protocol, a_node_removed_on_one_front_end_is_refused_by_the_other_and_its_mailbox_emptied)
{
    ld_msg_t m;
    fe_start(0);
    fe_start(1);
    peer_t home = fe_node(0, "home", &key_home, NULL);
    push_ok(&home, "home", 1, 5, 5);     /* five changes wait for dongguan */
    peer_close(&home);
    cr_assert_eq(fe0_depth_of("dongguan", &key_dongguan), 5);
    peer_t dg = fe_node(1, "dongguan", &key_dongguan, NULL);
    cr_assert_eq(CLI(NULL, 0, "node", "remove", "dongguan"), 0);
    refusal_t r = { .peer = &dg };
    cr_assert(hn_wait_until(fetch_refused, &r, 10000),
              "the open connection on the other front-end was not refused within 10 s");
    peer_close(&dg);
    /* a new connection with its key fails the handshake on both */
    for (size_t at = 0; at < FRONT_ENDS; at++) {
        peer_t again = fe_peer(at, &key_dongguan);
        send_hello(&again, "dongguan");
        cr_assert_eq(recv_msg(&again, 1000, &m), LD_MSG_NONE, "front-end %zu served it", at);
        peer_close(&again);
    }
    /* and what waited for it is deleted from the shared store */
    cr_assert(hn_wait_until(mailbox_emptied, NULL, 10000),
              "no front-end emptied the removed node's mailbox within 10 s");
    char out[4096];
    cr_assert_eq(CLI(out, sizeof out, "status"), 0);
    const char *dg_row = strstr(out, "\ndongguan ");
    cr_assert_not_null(dg_row, "%s", out);
    char cells[8][64];
    cr_assert_eq(sscanf(dg_row + 1, "%63s %63s %63s %63s %63s %63s %63s %63s", cells[0],
                        cells[1], cells[2], cells[3], cells[4], cells[5], cells[6], cells[7]), 8,
                 "%s", out);
    cr_assert_str_eq(cells[5], "0", "the removed node's depth: %s", out);
    assert_clean_stop();
}
