/* test_sync_auth.c: who may sync: an unregistered key is refused and the node says so,
 * a registered node cannot speak as another, a node given a new key goes on under its
 * id while its old key is refused, and a node that cannot reach, cannot authenticate
 * or cannot understand its broker says which, within its timeout. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "frame.h"
#include "harness.h"
#include "keys.h"
#include "schema.h"

static hn_world_t world;
static hn_node_t *home;
static hn_node_t *dongguan;

static void setup(void)
{
    int rc = hn_world_init(&world, "auth");
    if (rc == HN_SKIP)
        cr_skip_test("%s", world.skip);
    cr_assert_eq(rc, 0, "the broker did not start");
    cr_assert_eq(hn_branches(&world, &home, &dongguan), 0, "the two branches were not set up");
}

static void teardown(void)
{
    hn_world_fini(&world);
}

TestSuite(sync_auth, .init = setup, .fini = teardown, .timeout = 300);

/* Runs `liangdi sync --timeout SECONDS` on n; its stderr is left in r, the time in *ms. */
static void sync_fails(hn_node_t *n, const char *seconds, hn_result_t *r, int64_t *ms)
{
    int64_t t0 = hn_now_ms();
    cr_assert_eq(hn_node_cmd(n, r, "sync", "--timeout", seconds, NULL), 0);
    *ms = hn_now_ms() - t0;
    cr_assert_neq(r->status, 0, "sync on %s succeeded: %s", n->id, r->out);
    cr_assert_neq(r->status, -1, "sync on %s ran past its own timeout", n->id);
    fprintf(stderr, "%s (%lld ms): %s", n->id, (long long)*ms, r->err);
}

static void copy_file(const char *from, const char *to)
{
    char buf[4096];
    int in = open(from, O_RDONLY);
    cr_assert_geq(in, 0, "open %s", from);
    unlink(to);
    int out = open(to, O_WRONLY | O_CREAT | O_EXCL, 0600);
    cr_assert_geq(out, 0, "create %s", to);
    ssize_t n;
    while ((n = read(in, buf, sizeof buf)) > 0)
        cr_assert_eq(write(out, buf, (size_t)n), n);
    close(in);
    close(out);
}

Test(sync_auth, an_unregistered_key_is_refused_and_the_node_says_so)
{
    hn_node_t *stranger = hn_world_node(&world, "stranger", "陌生支部", false);
    cr_assert_not_null(stranger);
    hn_result_t r;
    int64_t ms;
    sync_fails(stranger, "10", &r, &ms);
    cr_assert_not_null(strstr(r.err, "authentication refused"), "stderr: %s", r.err);
    cr_assert_not_null(strstr(r.err, stranger->key), "the message does not name the key");
    /* Refused at the handshake, not after waiting out the timeout. */
    cr_assert_lt(ms, 5000, "the refusal took %lld ms", (long long)ms);
    hn_result_free(&r);
    cr_assert(hn_world_finish(&world), "a process failed at the end (logs above)");
}

Test(sync_auth, a_registered_node_cannot_pass_itself_off_as_another)
{
    /* A store that claims to be node "home" but holds Dongguan's (registered) keys. */
    hn_node_t *impostor = hn_world_node_file(&world, "home", "冒充的镇党委", "impostor.db", false);
    cr_assert_not_null(impostor);
    char from[HN_PATH_MAX + 8], to[HN_PATH_MAX + 8];
    snprintf(from, sizeof from, "%s.key", dongguan->db);
    snprintf(to, sizeof to, "%s.key", impostor->db);
    copy_file(from, to);

    /* What it would slip in: a member on a trip to a branch Dongguan keeps. */
    hn_result_t r;
    cr_assert_eq(hn_node_cmd(impostor, &r, "org", "add", "fakevillage", "--name", "假村", "--kind",
                             "village", NULL), 0);
    cr_assert_eq(r.status, 0, "%s", r.err);
    hn_result_free(&r);
    cr_assert_eq(hn_node_cmd(impostor, &r, "org", "add", "fake", "--name", "假支部", "--kind",
                             "mobile", "--node", "dongguan", NULL), 0);
    cr_assert_eq(r.status, 0, "%s", r.err);
    hn_result_free(&r);
    char fake[37];
    cr_assert_eq(hn_node_cmd(impostor, &r, "member", "add", "--name", "冒充者", "--org",
                             "fakevillage", NULL), 0);
    cr_assert_eq(hn_printed_id(&r, fake, sizeof fake), 0, "%s", r.err);
    hn_result_free(&r);
    cr_assert_eq(hn_node_cmd(impostor, &r, "trip", "start", fake, "--to", "fake", "--date",
                             "2010-05-01", NULL), 0);
    cr_assert_eq(r.status, 0, "%s", r.err);
    hn_result_free(&r);

    int64_t ms;
    sync_fails(impostor, "10", &r, &ms);
    cr_assert_not_null(strstr(r.err, "authentication refused"), "stderr: %s", r.err);
    hn_result_free(&r);

    /* Nothing of it was stored: the real home syncs on from seq 1, Dongguan sees no impostor. */
    char id[37];
    cr_assert_eq(hn_mobile_member(home, "王芳", "female", "2010-04-01", id), 0);
    cr_assert_eq(hn_sync(home), 0);
    cr_assert_eq(hn_sync(dongguan), 0);
    cr_assert_eq(hn_query_int(dongguan->db, "SELECT count(*) FROM \"members\" WHERE \"name\" = '冒充者'"), 0);
    cr_assert_eq(hn_query_int(dongguan->db, "SELECT count(*) FROM \"members\" WHERE \"name\" = '王芳'"), 1);
    cr_assert(hn_world_finish(&world), "a process failed at the end (logs above)");
}

Test(sync_auth, a_node_with_the_wrong_broker_key_says_the_handshake_failed)
{
    hn_result_t r;
    /* Any valid key that is not the broker's: Dongguan's own. */
    cr_assert_eq(hn_node_cmd(home, &r, "broker", "set", world.broker.endpoint, "--key",
                             dongguan->key, NULL), 0);
    cr_assert_eq(r.status, 0, "%s", r.err);
    hn_result_free(&r);
    int64_t ms;
    sync_fails(home, "2", &r, &ms);
    cr_assert_not_null(strstr(r.err, "CURVE handshake"), "stderr: %s", r.err);
    cr_assert(hn_names_broker(&world, r.err), "the message does not name the broker");
    hn_result_free(&r);
    cr_assert(hn_world_finish(&world), "a process failed at the end (logs above)");
}

Test(sync_auth, an_unreachable_broker_is_reported_within_the_timeout)
{
    cr_assert_eq(hn_broker_stop(&world), 0, "the broker did not stop cleanly");
    hn_result_t r;
    int64_t ms;
    sync_fails(home, "2", &r, &ms);
    cr_assert_not_null(strstr(r.err, "broker unreachable at"), "stderr: %s", r.err);
    cr_assert(hn_names_broker(&world, r.err), "the message does not name the broker");
    cr_assert_geq(ms, 1900);
    /* Each of the node's endpoints (front-ends of one store) gets the 2 s. */
    int64_t limit = 2000 * (int64_t)hn_broker_endpoints(&world) + 3000;
    cr_assert_lt(ms, limit, "it took %lld ms to give up after a 2 s timeout for each of %zu "
                 "endpoints", (long long)ms, hn_broker_endpoints(&world));
    hn_result_free(&r);

    /* `liangdi status` says the same and keeps the last error. */
    cr_assert_eq(hn_query_int(home->db, "SELECT count(*) FROM \"settings\" WHERE \"key\" = "
                                        "'sync.last_error' AND \"value\" LIKE 'broker unreachable%'"), 1);
    cr_assert(hn_world_finish(&world), "a process failed at the end (logs above)");
}

/* A stand-in broker that answers every Hello with a header of protocol version 2. */
Test(sync_auth, a_broker_speaking_a_newer_protocol_gets_a_clear_upgrade_message)
{
    ld_keypair_t server;
    ld_error_t err;
    cr_assert_eq(ld_keys_generate(&server, &err), 0, "%s", err.msg);
    void *ctx = zmq_ctx_new();
    void *router = zmq_socket(ctx, ZMQ_ROUTER);
    int one = 1, zero = 0;
    cr_assert_eq(zmq_setsockopt(router, ZMQ_CURVE_SERVER, &one, sizeof one), 0);
    cr_assert_eq(zmq_setsockopt(router, ZMQ_CURVE_SECRETKEY, server.secret_key, LD_KEY_TEXT + 1), 0);
    cr_assert_eq(zmq_setsockopt(router, ZMQ_LINGER, &zero, sizeof zero), 0);
    cr_assert_eq(zmq_bind(router, "tcp://127.0.0.1:*"), 0);
    char endpoint[128];
    size_t len = sizeof endpoint;
    cr_assert_eq(zmq_getsockopt(router, ZMQ_LAST_ENDPOINT, endpoint, &len), 0);

    hn_result_t r;
    cr_assert_eq(hn_node_cmd(home, &r, "broker", "set", endpoint, "--key", server.public_key, NULL), 0);
    cr_assert_eq(r.status, 0, "%s", r.err);
    hn_result_free(&r);
    hn_proc_t *sync = hn_node_spawn(&world, home, "sync", "sync", "--timeout", "10", NULL);
    cr_assert_not_null(sync);

    /* routing id, header, body */
    zmq_pollitem_t item = { .socket = router, .events = ZMQ_POLLIN };
    cr_assert_eq(zmq_poll(&item, 1, 10000), 1, "no Hello came");
    zmq_msg_t rid;
    zmq_msg_init(&rid);
    cr_assert_geq(zmq_msg_recv(&rid, router, 0), 0);
    int more = 1;
    while (more) {
        zmq_msg_t part;
        zmq_msg_init(&part);
        cr_assert_geq(zmq_msg_recv(&part, router, 0), 0);
        more = zmq_msg_more(&part);
        zmq_msg_close(&part);
    }
    uint8_t header[LD_HEADER_SIZE];
    ld_frame_header(LD_MSG_WELCOME, header);
    header[2] = LD_PROTOCOL_VERSION + 1;
    cr_assert_geq(zmq_msg_send(&rid, router, ZMQ_SNDMORE), 0);
    cr_assert_eq(zmq_send(router, header, sizeof header, ZMQ_SNDMORE), (int)sizeof header);
    cr_assert_eq(zmq_send(router, "", 0, 0), 0);

    int status = hn_proc_wait(sync, 15000);
    zmq_close(router);
    zmq_ctx_term(ctx);
    cr_assert_neq(status, 0);
    char line[1024];
    cr_assert(hn_proc_wait_log(sync, "protocol version mismatch", 0, 1000, line, sizeof line),
              "no version mismatch reported");
    cr_assert_not_null(strstr(line, "upgrade this node"), "%s", line);
    cr_assert(hn_world_finish(&world), "a process failed at the end (logs above)");
}

/* True once dongguan's store holds a member named 李新 (the change sent after the rekey). */
static bool dongguan_has_new_member(void *ctx)
{
    (void)ctx;
    return hn_query_int(dongguan->db,
                        "SELECT count(*) FROM \"members\" WHERE \"name\" = '李新'") == 1;
}

Test(sync_auth, a_node_given_a_new_key_keeps_its_id_and_records_and_its_old_key_is_refused)
{
    hn_result_t r;
    char id[37];
    cr_assert_eq(hn_mobile_member(home, "王芳", "female", "2010-04-01", id), 0);
    cr_assert_eq(hn_sync(home), 0);
    cr_assert_eq(hn_daemon_start(&world, dongguan, "1s"), 0, "dongguan's daemon did not start");
    char old_key_file[HN_PATH_MAX + 16], key_file[HN_PATH_MAX + 8];
    snprintf(key_file, sizeof key_file, "%s.key", dongguan->db);
    snprintf(old_key_file, sizeof old_key_file, "%s.old-key", dongguan->db);
    copy_file(key_file, old_key_file);

    /* The node makes its new keypair; its daemon keeps the connection it has. */
    cr_assert_eq(hn_node_cmd(dongguan, &r, "key", "new", NULL), 0);
    cr_assert_eq(r.status, 0, "%s", r.err);
    char new_key[HN_KEY_TEXT + 1];
    cr_assert_eq(sscanf(r.out, "%40s", new_key), 1, "key new printed: %s", r.out);
    cr_assert(ld_key_valid(new_key), "key new printed: %s", r.out);
    cr_assert_str_neq(new_key, dongguan->key);
    cr_assert_not_null(strstr(r.err, "liangdi-broker node rekey dongguan --key"), "%s", r.err);
    hn_result_free(&r);
    cr_assert_eq(hn_node_cmd(dongguan, &r, "key", NULL), 0);
    cr_assert_eq(strncmp(r.out, new_key, HN_KEY_TEXT), 0, "key prints %s", r.out);
    hn_result_free(&r);

    /* The broker is told: the daemon's connection, made with the old key, is refused at
     * once, and the daemon comes back with the new one. */
    size_t from = hn_file_size(dongguan->log);
    cr_assert_eq(hn_broker_cmd(&world, &r, "node", "rekey", "dongguan", "--key", new_key, NULL),
                 0);
    cr_assert_eq(r.status, 0, "%s", r.err);
    hn_result_free(&r);
    cr_assert(hn_proc_wait_log(&dongguan->daemon, "key of node dongguan was replaced", from,
                               20000, NULL, 0), "the old connection was not refused");
    cr_assert(hn_proc_wait_log(&dongguan->daemon, new_key, from, 20000, NULL, 0),
              "the daemon did not take the new key");

    /* Same id, same links, same mailbox: what home sends next arrives. */
    cr_assert_eq(hn_mobile_member(home, "李新", "male", "2010-06-01", id), 0);
    cr_assert_eq(hn_sync(home), 0);
    cr_assert(hn_wait_until(dongguan_has_new_member, NULL, 30000),
              "the change sent after the rekey did not reach dongguan");
    cr_assert_eq(hn_query_int(dongguan->db,
                              "SELECT count(*) FROM \"members\" WHERE \"name\" = '王芳'"), 1);

    /* The old keypair is refused, and never registered again. */
    hn_node_t *old = hn_world_node_file(&world, "dongguan", "旧钥匙", "old.db", false);
    cr_assert_not_null(old);
    char old_copy[HN_PATH_MAX + 8];
    snprintf(old_copy, sizeof old_copy, "%s.key", old->db);
    copy_file(old_key_file, old_copy);
    int64_t ms;
    sync_fails(old, "10", &r, &ms);
    cr_assert_not_null(strstr(r.err, "authentication refused"), "stderr: %s", r.err);
    hn_result_free(&r);
    cr_assert_eq(hn_broker_cmd(&world, &r, "node", "add", "shenzhen", "--key", dongguan->key,
                               NULL), 0);
    cr_assert_neq(r.status, 0, "the retired key was registered again");
    cr_assert_not_null(strstr(r.err, "retired"), "%s", r.err);
    hn_result_free(&r);
    cr_assert(hn_world_finish(&world), "a process failed at the end (logs above)");
}

/* Runs `liangdi-broker node rekey ARGS...`; asserts it exits with `status` and says
 * `says`. */
static void rekey_refused(int status, const char *says, const char *id, const char *key)
{
    hn_result_t r;
    if (key != NULL)
        cr_assert_eq(hn_broker_cmd(&world, &r, "node", "rekey", id, "--key", key, NULL), 0);
    else
        cr_assert_eq(hn_broker_cmd(&world, &r, "node", "rekey", id, NULL), 0);
    cr_assert_eq(r.status, status, "node rekey %s: status %d: %s", id, r.status, r.err);
    cr_assert_not_null(strstr(r.err, says), "node rekey %s said: %s", id, r.err);
    hn_result_free(&r);
}

Test(sync_auth, node_rekey_refuses_bad_input_naming_it_and_changes_nothing)
{
    ld_keypair_t kp;
    ld_error_t err;
    cr_assert_eq(ld_keys_generate(&kp, &err), 0, "%s", err.msg);
    rekey_refused(2, "ID 'Dong!' is not a valid node id", "Dong!", kp.public_key);
    rekey_refused(2, "--key PUBLIC_KEY is required", "dongguan", NULL);
    rekey_refused(2, "--key 'nope' is not a CURVE public key", "dongguan", "nope");
    if (world.store == HN_STORE_SQLITE)   /* the key file the CLI compares with */
        rekey_refused(2, "is the broker's own key", "dongguan", world.broker.key);
    rekey_refused(2, "node nowhere is not registered", "nowhere", kp.public_key);
    hn_result_t twice;
    cr_assert_eq(hn_broker_cmd(&world, &twice, "node", "rekey", "dongguan", "--key",
                               kp.public_key, "--key", home->key, NULL), 0);
    cr_assert_eq(twice.status, 2, "%s", twice.err);
    cr_assert_not_null(strstr(twice.err, "option --key given twice"), "%s", twice.err);
    hn_result_free(&twice);
    rekey_refused(2, "already registered to node home", "dongguan", home->key);
    /* dongguan still answers to its key */
    char id[37];
    cr_assert_eq(hn_mobile_member(home, "王芳", "female", "2010-04-01", id), 0);
    cr_assert_eq(hn_sync(home), 0);
    cr_assert_eq(hn_sync(dongguan), 0);
    cr_assert_eq(hn_query_int(dongguan->db,
                              "SELECT count(*) FROM \"members\" WHERE \"name\" = '王芳'"), 1);
    cr_assert(hn_world_finish(&world), "a process failed at the end (logs above)");
}

Test(sync_auth, a_sync_right_after_the_rekey_is_served_with_the_new_key)
{
    hn_result_t r;
    char id[37], new_key[HN_KEY_TEXT + 1];
    cr_assert_eq(hn_mobile_member(home, "王芳", "female", "2010-04-01", id), 0);
    cr_assert_eq(hn_sync(home), 0);
    cr_assert_eq(hn_node_cmd(dongguan, &r, "key", "new", NULL), 0);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_eq(sscanf(r.out, "%40s", new_key), 1, "key new printed: %s", r.out);
    hn_result_free(&r);
    cr_assert_eq(hn_broker_cmd(&world, &r, "node", "rekey", "dongguan", "--key", new_key, NULL),
                 0);
    cr_assert_eq(r.status, 0, "%s", r.err);
    hn_result_free(&r);
    /* at once, with no daemon to try again: a one-shot sync is served on the new key */
    cr_assert_eq(hn_sync(dongguan), 0, "the first sync with the new key failed");
    cr_assert_eq(hn_query_int(dongguan->db,
                              "SELECT count(*) FROM \"members\" WHERE \"name\" = '王芳'"), 1);
    cr_assert(hn_world_finish(&world), "a process failed at the end (logs above)");
}
