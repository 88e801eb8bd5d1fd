/* test_sync_crash.c: kill -9 of the broker at random moments of a sync, over and over,
 * and of a node while it takes or applies batches: nothing is lost and nothing applied
 * twice.  A sync whose broker dies mid-drain applies what it took before it fails; a
 * batch a node cannot apply waits in its inbox while the mailbox goes on.
 * And a broker whose store fails for a while: the node's sync tries again.
 *
 * The moments are random (a seeded PRNG, $LIANGDI_TEST_SEED to repeat a run) and
 * timed by progress, never by sleeps: a kill happens when the changes pushed by home
 * plus the changes applied at Dongguan pass the next random threshold. */
#include <criterion/criterion.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define ROUND_CHANGES   10000
#define KILLS_MIN       20
#define KILLS_PER_ROUND 7
#define ROUNDS_MAX      8
#define ROUND_DEADLINE  180000
#define BATCH           4096     /* the most a Fetch asks for (LD_BATCH_MAX) */

static hn_world_t world;
static hn_node_t *home;
static hn_node_t *dongguan;
static char member[37];

static void setup(void)
{
    int rc = hn_world_init(&world, "crash");
    if (rc == HN_SKIP)
        cr_skip_test("%s", world.skip);
    cr_assert_eq(rc, 0, "the broker did not start");
    cr_assert_eq(hn_branches(&world, &home, &dongguan), 0, "the two branches were not set up");
    cr_assert_eq(hn_mobile_member(home, "张三", "male", "2010-03-01", member), 0);
    cr_assert_eq(hn_sync(home), 0);
    cr_assert_eq(hn_sync(dongguan), 0);
}

static void teardown(void)
{
    hn_world_fini(&world);
}

TestSuite(sync_crash, .init = setup, .fini = teardown, .timeout = 900);

static const char *const home_applied_sql =
    "SELECT count(*) FROM \"changelog\" WHERE \"origin\" = 'home' AND \"kind\" = 'activity'";

/* hn_setting_int(home->db, "pushed_upto") as one statement (0 before the first push). */
static const char *const pushed_upto_sql =
    "SELECT coalesce((SELECT \"value\" FROM \"settings\" WHERE \"key\" = 'pushed_upto'), 0)";

static int64_t home_last_seq(void)
{
    return hn_query_int(home->db, "SELECT max(\"seq\") FROM \"changelog\" WHERE \"origin\" = 'home'");
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void assert_converged(int64_t activities)
{
    hn_diff_t d;
    cr_assert_eq(hn_compare_stores(home->db, dongguan->db, &d), 0);
    cr_assert_eq(d.differ, 0, "%zu of %zu shared records differ; first: %s", d.differ, d.shared,
                 d.first);
    cr_assert_geq((int64_t)d.shared, activities);
    /* Every change exactly once: one record and one log entry each, at both ends. */
    cr_assert_eq(hn_query_int(home->db, "SELECT count(*) FROM \"activities\""), activities);
    cr_assert_eq(hn_query_int(dongguan->db, "SELECT count(*) FROM \"activities\""), activities);
    cr_assert_eq(hn_query_int(dongguan->db, "SELECT count(DISTINCT \"note\") FROM \"activities\""),
                 activities);
    cr_assert_eq(hn_query_int(dongguan->db, home_applied_sql), activities);
}

Test(sync_crash, the_broker_killed_twenty_times_mid_sync_loses_nothing_and_applies_nothing_twice)
{
    uint64_t rng = hn_seed(20100512);
    int kills = 0, rounds = 0, failed_syncs = 0;
    int64_t activities = 0;
    /* Progress is looked at every 2 ms, each side on a connection of its own kept open:
     * a store opened for every look reads its pages afresh each time, and under the
     * sanitizers that cost the test more than the syncs it watches. */
    hn_watch_t *pushed_now = hn_watch_open(home->db, pushed_upto_sql);
    hn_watch_t *applied_now = hn_watch_open(dongguan->db, home_applied_sql);
    cr_assert_not_null(pushed_now);
    cr_assert_not_null(applied_now);

    while (kills < KILLS_MIN && rounds < ROUNDS_MAX) {
        char tag[32];
        snprintf(tag, sizeof tag, "第%d轮", ++rounds);
        cr_assert_eq(hn_bulk_activities(home, member, ROUND_CHANGES, tag), 0);
        activities += ROUND_CHANGES;

        int64_t last = home_last_seq();
        int64_t pushed0 = hn_setting_int(home->db, "pushed_upto");
        int64_t applied0 = hn_query_int(dongguan->db, home_applied_sql);
        int64_t total = (last - pushed0) + ROUND_CHANGES;
        int64_t thresholds[KILLS_PER_ROUND];
        for (int i = 0; i < KILLS_PER_ROUND; i++)
            thresholds[i] = 1 + (int64_t)(hn_rand(&rng) % (uint64_t)(total - 1));
        qsort(thresholds, KILLS_PER_ROUND, sizeof thresholds[0], cmp_i64);

        hn_proc_t *home_sync = NULL, *dg_sync = NULL;
        int64_t dg_started_at = -1;
        int next = 0;
        int64_t deadline = hn_now_ms() + ROUND_DEADLINE;
        for (;;) {
            int64_t pushed = hn_watch_read(pushed_now) - pushed0;
            int64_t applied = hn_watch_read(applied_now) - applied0;
            int64_t progress = pushed + applied;
            if (progress >= total)
                break;
            cr_assert_lt(hn_now_ms(), deadline, "round %d stuck at %lld of %lld", rounds,
                         (long long)progress, (long long)total);

            /* Keep a sync running on each side until its part is done. */
            if (pushed < last - pushed0 && (home_sync == NULL || !hn_proc_running(home_sync))) {
                if (home_sync != NULL && home_sync->status != 0)
                    failed_syncs++;
                home_sync = hn_node_spawn(&world, home, "sync", "sync", "--timeout", "30", NULL);
                cr_assert_not_null(home_sync);
            }
            if ((dg_sync == NULL || !hn_proc_running(dg_sync)) && pushed > dg_started_at) {
                if (dg_sync != NULL && dg_sync->status != 0)
                    failed_syncs++;
                dg_started_at = pushed;
                dg_sync = hn_node_spawn(&world, dongguan, "sync", "sync", "--timeout", "30", NULL);
                cr_assert_not_null(dg_sync);
            }

            if (next < KILLS_PER_ROUND && progress >= thresholds[next]) {
                hn_broker_kill(&world);
                kills++;
                fprintf(stderr, "kill %d: round %d, %lld pushed, %lld applied of %lld\n", kills,
                        rounds, (long long)pushed, (long long)applied, (long long)ROUND_CHANGES);
                cr_assert_eq(hn_broker_start(&world), 0, "the broker did not restart after kill %d",
                             kills);
                while (next < KILLS_PER_ROUND && progress >= thresholds[next])
                    next++;
            }
            hn_poll_pause(2);
        }
        /* Let this round's syncs finish before the next round writes. */
        if (home_sync != NULL && hn_proc_wait(home_sync, 30000) != 0)
            failed_syncs++;
        if (dg_sync != NULL && hn_proc_wait(dg_sync, 30000) != 0)
            failed_syncs++;
    }
    hn_watch_close(&pushed_now);
    hn_watch_close(&applied_now);
    fprintf(stderr, "%d kills over %d rounds of %d changes; %d syncs gave up\n",
            kills, rounds, ROUND_CHANGES, failed_syncs);
    cr_assert_geq(kills, KILLS_MIN, "only %d kills landed inside a sync", kills);
    /* A sync rides out a broker restart: it reconnects, says Hello again, resumes. */
    cr_assert_eq(failed_syncs, 0, "%d syncs gave up instead of resuming", failed_syncs);

    /* A clean sync after the storm. */
    cr_assert_eq(hn_sync(home), 0);
    cr_assert_eq(hn_sync(dongguan), 0);
    cr_assert_eq(hn_sync(home), 0);
    assert_converged(activities);
    cr_assert(hn_world_finish(&world), "a process failed at the end (logs above)");
}

/* Home's activities dongguan has taken from the broker: applied, or waiting in its inbox
 * (read in one statement, so a batch moving from one to the other counts once). */
static const char *const home_taken_sql =
    "SELECT (SELECT count(*) FROM \"changelog\" WHERE \"origin\" = 'home' AND \"kind\" = "
    "'activity') + (SELECT coalesce(sum(\"count\"), 0) FROM \"inbox\")";

Test(sync_crash, a_node_killed_while_taking_or_applying_batches_resumes_losing_nothing)
{
    const int64_t total = 2 * ROUND_CHANGES;
    uint64_t rng = hn_seed(20101001);
    cr_assert_eq(hn_bulk_activities(home, member, (size_t)total, "竹园镇"), 0);
    cr_assert_eq(hn_sync(home), 0);
    /* Every position of dongguan's mailbox after this one is one of home's activities. */
    const int64_t cursor0 = hn_setting_int(dongguan->db, "cursor");

    /* taken + applied, watched on one connection: a store opened for every look is
     * too slow to see the batches go by (the taking of 20,000 changes may come and go
     * between two looks). */
    char progress_sql[512];
    snprintf(progress_sql, sizeof progress_sql, "SELECT (%s) + (%s)", home_taken_sql,
             home_applied_sql);
    hn_watch_t *progress = hn_watch_open(dongguan->db, progress_sql);
    cr_assert_not_null(progress);
    int take_kills = 0, apply_kills = 0;
    for (int attempt = 0; attempt < 4; attempt++) {
        /* Progress is taken + applied, 0 to 2 * total.  The first kill is aimed at the
         * first half of the taking, while dongguan takes batches from the broker; the
         * others at the applying, while it applies them from its inbox. */
        int64_t before = hn_query_int(dongguan->db, home_taken_sql) +
                         hn_query_int(dongguan->db, home_applied_sql);
        if (before >= 2 * total - BATCH)
            break;
        int64_t lo = attempt == 0 ? before : (before > total ? before : total);
        int64_t hi = attempt == 0 ? total / 2 : 2 * total - BATCH;
        int64_t target = lo + 1 + (int64_t)(hn_rand(&rng) % (uint64_t)(hi - lo));
        hn_proc_t *sync = hn_node_spawn(&world, dongguan, "sync", "sync", "--timeout", "30", NULL);
        cr_assert_not_null(sync);
        int64_t deadline = hn_now_ms() + 60000;
        for (int64_t now = 0; hn_proc_running(sync) && (now = hn_watch_read(progress)) < target;) {
            cr_assert_geq(now, 0, "dongguan's store could not be read (above)");
            cr_assert_lt(hn_now_ms(), deadline, "dongguan's sync made no progress");
            hn_poll_pause(1);
        }
        if (!hn_proc_running(sync))
            break;
        hn_proc_signal(sync, SIGKILL);
        int64_t taken = hn_query_int(dongguan->db, home_taken_sql);
        int64_t applied = hn_query_int(dongguan->db, home_applied_sql);
        int64_t cursor = hn_setting_int(dongguan->db, "cursor");
        fprintf(stderr, "node killed with %lld taken and %lld applied of %lld, cursor %lld\n",
                (long long)taken, (long long)applied, (long long)total, (long long)cursor);
        if (taken < total)
            take_kills++;
        else if (applied < total)
            apply_kills++;
        /* A batch and the cursor commit together, and so do a batch applied and its
         * leaving the inbox: the cursor counts exactly what was taken, every record has
         * its log entry, and nothing is both applied and still waiting. */
        cr_assert_eq(cursor - cursor0, taken, "cursor %lld after %lld, but %lld taken",
                     (long long)cursor, (long long)cursor0, (long long)taken);
        cr_assert_eq(hn_query_int(dongguan->db, "SELECT count(*) FROM \"activities\""), applied);
        cr_assert_leq(applied, taken);
        /* A sync takes the whole backlog before it applies any of it. */
        if (applied > 0)
            cr_assert_eq(taken, total, "%lld applied with only %lld of %lld taken",
                         (long long)applied, (long long)taken, (long long)total);
    }
    hn_watch_close(&progress);
    cr_assert_geq(take_kills, 1, "no kill landed while dongguan was taking");
    cr_assert_geq(apply_kills, 1, "no kill landed while dongguan was applying");

    int64_t taken_before = hn_query_int(dongguan->db, home_taken_sql);
    int64_t pushed = 0, fetched = 0;
    cr_assert_eq(hn_sync_counts(dongguan, &pushed, &fetched), 0);
    /* It resumed from its cursor: only what was not taken yet came again, and what was
     * waiting in the inbox was applied. */
    cr_assert_eq(fetched, total - taken_before, "fetched %lld after a kill at %lld taken of %lld",
                 (long long)fetched, (long long)taken_before, (long long)total);
    cr_assert_eq(hn_query_int(dongguan->db, "SELECT count(*) FROM \"inbox\""), 0);
    assert_converged(total);
    cr_assert(hn_world_finish(&world), "a process failed at the end (logs above)");
}

/* A sync that takes part of a backlog and then loses its broker (killed, and not back
 * within the sync's timeout) fails, but applies what it took before it exits: nothing
 * it holds waits for another sync to be seen. */
Test(sync_crash, a_sync_whose_broker_dies_mid_drain_applies_what_it_took_before_it_fails)
{
    const int64_t total = 10 * BATCH;
    cr_assert_eq(hn_bulk_activities(home, member, (size_t)total, "竹园镇"), 0);
    cr_assert_eq(hn_sync(home), 0);

    hn_watch_t *taking = hn_watch_open(dongguan->db, home_taken_sql);
    cr_assert_not_null(taking);
    hn_proc_t *sync = hn_node_spawn(&world, dongguan, "sync", "sync", "--timeout", "2", NULL);
    cr_assert_not_null(sync);
    int64_t deadline = hn_now_ms() + 60000;
    for (int64_t now = 0; hn_proc_running(sync) && (now = hn_watch_read(taking)) < BATCH;) {
        cr_assert_geq(now, 0, "dongguan's store could not be read (above)");
        cr_assert_lt(hn_now_ms(), deadline, "dongguan's sync took nothing");
        hn_poll_pause(1);
    }
    hn_broker_kill(&world);
    hn_watch_close(&taking);
    int64_t taken = hn_query_int(dongguan->db, home_taken_sql);
    cr_assert_lt(taken, total, "the sync took the whole backlog before the broker died");
    cr_assert_neq(hn_proc_wait(sync, 30000), 0, "a sync without its broker succeeded");

    int64_t applied = hn_query_int(dongguan->db, home_applied_sql);
    cr_assert_geq(applied, taken, "%lld taken before the kill, %lld applied", (long long)taken,
                  (long long)applied);
    cr_assert_eq(hn_query_int(dongguan->db, "SELECT count(*) FROM \"inbox\""), 0,
                 "the failed sync left batches unapplied");
    cr_assert_eq(hn_query_int(dongguan->db, "SELECT count(*) FROM \"activities\""), applied);

    cr_assert_eq(hn_broker_start(&world), 0);
    cr_assert_eq(hn_sync(dongguan), 0);
    assert_converged(total);
    cr_assert(hn_world_finish(&world), "a process failed at the end (logs above)");
}

/* Runs sql on a store file from outside its processes. */
static void store_exec(const char *db, const char *sql)
{
    sqlite3 *h = NULL;
    cr_assert_eq(sqlite3_open(db, &h), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(h, sql, NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg(h));
    sqlite3_close(h);
}

/* A batch the receiving node cannot apply (here its store refuses the records: a
 * trigger stands in for whatever a node may refuse) is taken and acked all the same:
 * it waits whole in the inbox, the broker's mailbox is emptied, and the sync fails
 * saying which batch and why.  Once the node can apply it, the next sync does. */
Test(sync_crash, a_batch_the_node_cannot_apply_waits_in_its_inbox_and_the_mailbox_goes_on)
{
    cr_assert_eq(hn_bulk_activities(home, member, 3, "拒收"), 0);
    cr_assert_eq(hn_sync(home), 0);
    store_exec(dongguan->db, "CREATE TRIGGER \"refuse\" BEFORE INSERT ON \"activities\" "
               "WHEN NEW.\"note\" LIKE '拒收%' BEGIN SELECT RAISE(ABORT, '此处不收'); END");

    hn_proc_t *sync = hn_node_spawn(&world, dongguan, "sync", "sync", "--timeout", "10", NULL);
    cr_assert_not_null(sync);
    cr_assert_eq(hn_proc_wait(sync, 30000), 1, "the sync did not fail (log %s)", sync->log);
    char line[512] = "";
    cr_assert(hn_proc_wait_log(sync, "applying the batch of positions", 0, 1000, line,
                               sizeof line), "no word of the batch (log %s)", sync->log);
    cr_assert(strstr(line, "此处不收") != NULL, "%s", line);

    cr_assert_eq(hn_query_int(dongguan->db, "SELECT count(*) FROM \"inbox\""), 1);
    cr_assert_eq(hn_query_int(dongguan->db, "SELECT sum(\"count\") FROM \"inbox\""), 3);
    cr_assert_eq(hn_query_int(dongguan->db, home_applied_sql), 0);
    if (world.store == HN_STORE_SQLITE)
        cr_assert_eq(hn_query_int(world.broker.db, "SELECT count(*) FROM \"mailbox_chunks\" "
                                  "WHERE \"node\" = 'dongguan'"), 0,
                     "the broker still holds what the node took");

    store_exec(dongguan->db, "DROP TRIGGER \"refuse\"");
    cr_assert_eq(hn_sync(dongguan), 0);
    cr_assert_eq(hn_query_int(dongguan->db, "SELECT count(*) FROM \"inbox\""), 0);
    assert_converged(3);
    cr_assert(hn_world_finish(&world), "a process failed at the end (logs above)");
}

/* The broker's store refuses to write for longer than the broker waits for it (another
 * process holds its write lock): the broker answers the push with a failure of its
 * own, "the broker failed", and `liangdi sync` tries again, with growing pauses, until
 * the store writes again, instead of giving up at the first failure. */
Test(sync_crash, a_sync_whose_broker_store_fails_for_a_while_tries_again_and_completes)
{
    if (world.store != HN_STORE_SQLITE) {
        hn_world_fini_quiet(&world);
        cr_skip_test("holds the SQLite broker store's write lock; a JetStream store fails "
                     "otherwise");
    }
    const int64_t total = 100;       /* one Push */
    cr_assert_eq(hn_bulk_activities(home, member, (size_t)total, "竹园镇"), 0);

    sqlite3 *lock = NULL;
    cr_assert_eq(sqlite3_open(world.broker.db, &lock), SQLITE_OK);
    sqlite3_busy_timeout(lock, 10000);
    cr_assert_eq(sqlite3_exec(lock, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK, "%s",
                 sqlite3_errmsg(lock));
    hn_proc_t *sync = hn_node_spawn(&world, home, "sync", "sync", "--timeout", "60", NULL);
    cr_assert_not_null(sync);
    /* The broker waits 10 s for its store, then fails the push; the node says it will
     * try again (a node that gave up would have exited with the same words). */
    char line[512] = "";
    bool warned = hn_proc_wait_log(sync, "; trying again in", 0, 40000, line, sizeof line);
    cr_assert_eq(sqlite3_exec(lock, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(lock);
    cr_assert(warned, "home's sync did not try again (exit status %d; log %s)",
              hn_proc_wait(sync, 1000), sync->log);
    cr_assert(strstr(line, "the broker failed") != NULL, "the warning: %s", line);
    cr_assert_eq(hn_proc_wait(sync, 60000), 0, "home's sync failed once the store wrote again "
                 "(log %s)", sync->log);

    cr_assert_eq(hn_sync(dongguan), 0);
    assert_converged(total);
    cr_assert(hn_world_finish(&world), "a process failed at the end (logs above)");
}
