/* test_sync_offline.c: a branch that stayed offline while the broker kept 10,000
 * changes for it catches up in one sync, and what it wrote offline gets through; a
 * daemon that caught up gives the memory back once idle. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

#include "harness.h"
#include "procstat.h"

#define BACKLOG 10000

static hn_world_t world;
static hn_node_t *home;
static hn_node_t *dongguan;

static void setup(void)
{
    int rc = hn_world_init(&world, "offline");
    if (rc == HN_SKIP)
        cr_skip_test("%s", world.skip);
    cr_assert_eq(rc, 0, "the broker did not start");
    cr_assert_eq(hn_branches(&world, &home, &dongguan), 0, "the two branches were not set up");
}

static void teardown(void)
{
    hn_world_fini(&world);
}

TestSuite(sync_offline, .init = setup, .fini = teardown, .timeout = 300);

static void assert_converged(void)
{
    hn_diff_t d;
    cr_assert_eq(hn_compare_stores(home->db, dongguan->db, &d), 0);
    cr_assert_eq(d.differ, 0, "%zu of %zu shared records differ; first: %s", d.differ, d.shared,
                 d.first);
    cr_assert_gt(d.shared, BACKLOG, "only %zu records shared", d.shared);
}

Test(sync_offline, a_node_offline_while_the_broker_holds_ten_thousand_changes_catches_up_in_one_sync)
{
    char member[37];
    cr_assert_eq(hn_mobile_member(home, "张小平", "male", "2010-02-20", member), 0);
    /* Dongguan has never synced: everything home writes waits at the broker. */
    cr_assert_eq(hn_bulk_activities(home, member, BACKLOG, "亭子村"), 0);
    int64_t pushed = 0, fetched = 0;
    cr_assert_eq(hn_sync_counts(home, &pushed, &fetched), 0);
    cr_assert_geq(pushed, BACKLOG, "home pushed only %lld changes", (long long)pushed);
    cr_assert_eq(hn_setting_int(home->db, "pushed_upto"),
                 hn_query_int(home->db, "SELECT max(\"seq\") FROM \"changelog\" WHERE \"origin\" = 'home'"),
                 "home's outbox was not pushed to the end");

    int64_t t0 = hn_now_ms();
    cr_assert_eq(hn_sync_counts(dongguan, &pushed, &fetched), 0, "dongguan's catch-up sync failed");
    int64_t dt = hn_now_ms() - t0;
    fprintf(stderr, "offline catch-up: %lld changes in %lld ms\n", (long long)fetched, (long long)dt);

    cr_assert_geq(fetched, BACKLOG + 2, "dongguan fetched only %lld changes", (long long)fetched);
    cr_assert_eq(hn_query_int(dongguan->db, "SELECT count(*) FROM \"activities\""), BACKLOG);
    cr_assert_eq(hn_query_int(dongguan->db,
                              "SELECT count(*) FROM \"changelog\" WHERE \"origin\" = 'home'"),
                 fetched, "every fetched change is in the change log once");
    assert_converged();

    /* Nothing is left: a second sync fetches nothing. */
    cr_assert_eq(hn_sync_counts(dongguan, &pushed, &fetched), 0);
    cr_assert_eq(fetched, 0, "a second sync fetched %lld changes", (long long)fetched);
    cr_assert(hn_world_finish(&world), "a process failed at the end (logs above)");
}

Test(sync_offline, what_both_branches_wrote_while_apart_meets_in_one_round_each)
{
    char member[37];
    cr_assert_eq(hn_mobile_member(home, "林术平", "male", "2010-01-10", member), 0);
    cr_assert_eq(hn_sync(home), 0);
    cr_assert_eq(hn_sync(dongguan), 0);

    /* Apart for a long time: both write, neither syncs. */
    cr_assert_eq(hn_bulk_activities(home, member, BACKLOG, "龙潭村"), 0);
    cr_assert_eq(hn_bulk_activities(dongguan, member, 2000, "东莞支部"), 0);

    int64_t pushed = 0, fetched = 0;
    cr_assert_eq(hn_sync_counts(home, &pushed, &fetched), 0);
    cr_assert_eq(pushed, BACKLOG);
    cr_assert_eq(fetched, 0);
    cr_assert_eq(hn_sync_counts(dongguan, &pushed, &fetched), 0);
    cr_assert_eq(pushed, 2000);
    cr_assert_eq(fetched, BACKLOG);
    cr_assert_eq(hn_sync_counts(home, &pushed, &fetched), 0);
    cr_assert_eq(fetched, 2000);

    cr_assert_eq(hn_query_int(home->db, "SELECT count(*) FROM \"activities\""), BACKLOG + 2000);
    assert_converged();
    cr_assert(hn_world_finish(&world), "a process failed at the end (logs above)");
}

static bool holds_backlog(void *ctx)
{
    const hn_node_t *n = ctx;
    return hn_query_int(n->db, "SELECT count(*) FROM \"activities\"") == BACKLOG;
}

Test(sync_offline, a_daemon_that_caught_up_gives_the_memory_back_once_idle)
{
    const char *absent = hn_glibc_malloc_absent();
    if (absent != NULL) {
        hn_world_fini_quiet(&world);     /* Criterion runs no .fini after a skip */
        cr_skip_test("%s", absent);
    }
    static const char idle_line[] = "freed memory given back to the kernel";
    char member[37], conf[HN_PATH_MAX + 16], tag[1024] = "";
    /* notes of about 1,000 bytes: batches of megabytes, which the daemon receives into
     * buffers it frees once each batch is stored */
    while (strlen(tag) + strlen("亭子村流动党员活动记录") < 900)
        strcat(tag, "亭子村流动党员活动记录");
    cr_assert_eq(hn_mobile_member(home, "张小平", "male", "2010-02-20", member), 0);
    cr_assert_eq(hn_bulk_activities(home, member, BACKLOG, tag), 0);
    cr_assert_eq(hn_sync(home), 0);

    /* dongguan's daemon, logging at debug level, takes the backlog. */
    snprintf(conf, sizeof conf, "%s/debug.conf", world.dir);
    FILE *f = fopen(conf, "w");
    cr_assert_not_null(f);
    fputs("[node]\nlog_level = debug\n", f);
    cr_assert_eq(fclose(f), 0);
    cr_assert_eq(setenv("LIANGDI_CONFIG", conf, 1), 0);
    int started = hn_daemon_start(&world, dongguan, "1h");
    unsetenv("LIANGDI_CONFIG");
    cr_assert_eq(started, 0, "dongguan's daemon did not get ready");
    cr_assert(hn_wait_until(holds_backlog, dongguan, 60000), "the daemon did not catch up");

    /* Read well within the second the daemon waits before it counts itself idle. */
    long busy = hn_status_kib(dongguan->daemon.pid, "VmRSS");
    size_t from = hn_file_size(dongguan->log);
    cr_assert_gt(busy, 0);
    cr_assert(hn_proc_wait_log(&dongguan->daemon, idle_line, from, 10000, NULL, 0),
              "no memory given back after 10 s idle");
    long idle = hn_status_kib(dongguan->daemon.pid, "VmRSS");
    cr_assert_gt(idle, 0);
    fprintf(stderr, "daemon resident: %ld KiB after the catch-up, %ld KiB idle\n", busy, idle);
    cr_assert_leq(idle + 2 * 1024, busy, "resident %ld KiB busy, %ld KiB idle", busy, idle);
    cr_assert(hn_world_finish(&world), "a process failed at the end (logs above)");
}
