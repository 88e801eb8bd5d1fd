/* test_jetstream_migrate.c: moving from one SQLite broker to the JetStream store
 * (`liangdi-broker migrate`): registry (retired keys too), marks and waiting mailboxes
 * copied; the nodes,
 * given the new endpoint and keeping the broker key, carry on with their cursors and
 * outboxes and lose nothing; copying again stores nothing twice. */
#include <criterion/criterion.h>
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "keys.h"
#include "test_jetstream_harness.h"

static hn_world_t world;
static hn_node_t *home, *dongguan;
static jh_nats_t nats;
static hn_proc_t front_end;
static char member[37];
static bool started;

static void setup(void)
{
    if (!jh_nats_server_bin())
        cr_skip_test("nats-server is not installed here (Debian: apt-get install nats-server), "
                     "so migrating to JetStream was not tested");
    started = true;
    cr_assert_eq(hn_world_init(&world, "jsmigrate"), 0, "the SQLite broker did not start");
    cr_assert_eq(hn_branches(&world, &home, &dongguan), 0);
    cr_assert_eq(hn_mobile_member(home, "林术平", "male", "2010-03-01", member), 0);
    cr_assert_eq(hn_sync(home), 0);
    cr_assert_eq(hn_sync(dongguan), 0);
    char dir[HN_PATH_MAX + 8];
    snprintf(dir, sizeof dir, "%s/nats", world.dir);
    cr_assert_eq(mkdir(dir, 0700), 0);
    cr_assert_eq(jh_nats_start(&nats, dir, 1), 0, "nats-server did not start");
}

static void teardown(void)
{
    if (!started)
        return;
    hn_proc_stop(&front_end, 10000);
    if (!world.passed)
        hn_proc_dump_log(&front_end);
    jh_nats_stop(&nats, !world.passed);
    hn_world_fini(&world);
    nats_CloseAndWait(2000);
}

TestSuite(jetstream_migrate, .init = setup, .fini = teardown, .timeout = 120);

/* `liangdi-broker ARGS...` (NULL-terminated); its result (caller frees). */
static hn_result_t broker(const char *const *args)
{
    const char *argv[24] = { getenv("LIANGDI_BROKER_BIN") };
    size_t n = 1;
    cr_assert(argv[0] && *argv[0], "LIANGDI_BROKER_BIN is not set (run through meson test)");
    for (size_t i = 0; args[i]; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    hn_result_t r;
    cr_assert_eq(hn_run(&r, 60000, argv), 0);
    return r;
}

static int64_t activities(hn_node_t *n)
{
    return hn_query_int(n->db, "SELECT count(*) FROM \"activities\"");
}

/* The depth the JetStream store shows for dongguan in `status`. */
static long dongguan_depth(void)
{
    hn_result_t r = broker((const char *const[]){ "status", "--store", nats.store, NULL });
    cr_assert_eq(r.status, 0, "%s", r.err);
    const char *row = strstr(r.out, "\ndongguan ");
    cr_assert_not_null(row, "%s", r.out);
    const char *seen = strstr(row, " CST ");     /* ID NAME LAST-SEEN DEPTH ... */
    cr_assert_not_null(seen, "Dongguan's last sync was copied: %s", r.out);
    long depth = -1;
    cr_assert_eq(sscanf(seen + 5, "%ld", &depth), 1, "%s", r.out);
    hn_result_free(&r);
    return depth;
}

Test(jetstream_migrate, nodes_carry_on_through_the_copied_store_and_lose_nothing)
{
    /* Dongguan has not fetched these yet: they wait in the SQLite broker's mailbox. */
    cr_assert_eq(hn_bulk_activities(home, member, 50, "迁移前"), 0);
    cr_assert_eq(hn_sync(home), 0);
    /* A third node whose first key was replaced: the retired key goes along. */
    ld_keypair_t first, second;
    ld_error_t err;
    cr_assert_eq(ld_keys_generate(&first, &err), 0, "%s", err.msg);
    cr_assert_eq(ld_keys_generate(&second, &err), 0, "%s", err.msg);
    hn_result_t r;
    cr_assert_eq(hn_broker_cmd(&world, &r, "node", "add", "shenzhen", "--key", first.public_key,
                               NULL), 0);
    cr_assert_eq(r.status, 0, "%s", r.err);
    hn_result_free(&r);
    cr_assert_eq(hn_broker_cmd(&world, &r, "node", "rekey", "shenzhen", "--key",
                               second.public_key, NULL), 0);
    cr_assert_eq(r.status, 0, "%s", r.err);
    hn_result_free(&r);
    cr_assert_eq(hn_proc_stop(&world.broker.proc, 10000), 0, "the old broker stops cleanly");

    char from[HN_PATH_MAX + 16], key_file[HN_PATH_MAX + 16];
    snprintf(from, sizeof from, "sqlite:%s", world.broker.db);
    snprintf(key_file, sizeof key_file, "%s.key", world.broker.db);
    r = broker((const char *const[]){ "migrate", "--from", from, "--to", nats.store, NULL });
    cr_assert_eq(r.status, 0, "migrate: %s", r.err);
    cr_assert_not_null(strstr(r.err, "copied 3 nodes, 1 links, 1 retired keys"), "%s", r.err);
    hn_result_free(&r);
    long depth = dongguan_depth();
    cr_assert_geq(depth, 50, "Dongguan's waiting entries were copied (%ld)", depth);

    /* copying again stores nothing twice */
    r = broker((const char *const[]){ "migrate", "--from", from, "--to", nats.store, NULL });
    cr_assert_eq(r.status, 0, "migrate again: %s", r.err);
    hn_result_free(&r);
    cr_assert_eq(dongguan_depth(), depth);
    /* the copy knows the retired key: it is not registered again there either */
    r = broker((const char *const[]){ "node", "add", "other", "--key", first.public_key,
                                      "--store", nats.store, NULL });
    cr_assert_neq(r.status, 0, "a retired key was registered in the copy");
    cr_assert_not_null(strstr(r.err, "retired from node shenzhen"), "%s", r.err);
    hn_result_free(&r);

    /* a front-end on the copy, with the old broker's keypair: nodes keep broker.key */
    char line[512], endpoint[128];
    char log[HN_PATH_MAX + 16];
    snprintf(log, sizeof log, "%s/front-end.log", world.dir);
    const char *argv[] = { getenv("LIANGDI_BROKER_BIN"), "run", "--store", nats.store,
                           "--key-file", key_file, "--bind", "tcp://127.0.0.1:*", NULL };
    cr_assert_eq(hn_proc_start_tied(&front_end, "front-end", log, argv), 0);
    cr_assert(hn_proc_wait_log(&front_end, "ready, listening on ", 0, 20000, line, sizeof line));
    const char *ep = strstr(line, "ready, listening on ") + strlen("ready, listening on ");
    snprintf(endpoint, sizeof endpoint, "%.*s", (int)strcspn(ep, " \r\n"), ep);
    hn_node_t *both[] = { home, dongguan };
    for (size_t i = 0; i < 2; i++) {
        cr_assert_eq(hn_node_cmd(both[i], &r, "broker", "set", endpoint, "--key",
                                 world.broker.key, NULL), 0);
        cr_assert_eq(r.status, 0, "%s", r.err);
        hn_result_free(&r);
    }

    cr_assert_eq(hn_sync(dongguan), 0);
    cr_assert_eq(activities(dongguan), 50, "what waited in the old broker arrived once");
    cr_assert_eq(hn_bulk_activities(home, member, 20, "迁移后"), 0);
    cr_assert_eq(hn_bulk_activities(dongguan, member, 10, "东莞迁移后"), 0);
    cr_assert_eq(hn_sync(home), 0);
    cr_assert_eq(hn_sync(dongguan), 0);
    cr_assert_eq(hn_sync(home), 0);
    cr_assert_eq(activities(home), 80);
    cr_assert_eq(activities(dongguan), 80, "new changes pass the cursor Dongguan kept");
    hn_diff_t d;
    cr_assert_eq(hn_compare_stores(home->db, dongguan->db, &d), 0);
    cr_assert_eq(d.differ, 0, "%s", d.first);
    cr_assert_eq(hn_query_int(dongguan->db, "SELECT count(DISTINCT \"note\") FROM \"activities\""),
                 80, "nothing applied twice");
    cr_assert_eq(hn_proc_stop(&front_end, 10000), 0, "the front-end stops cleanly");
    cr_assert(hn_world_finish(&world), "a process failed at the end (logs above)");
}
