/* test_sync_converge.c: both branches write, sync in several orders and end with the
 * same records; two online daemons see each other's writes within a second. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "change.h"
#include "harness.h"
#include "store.h"

static hn_world_t world;
static hn_node_t *home;
static hn_node_t *dongguan;

static void setup(void)
{
    int rc = hn_world_init(&world, "converge");
    if (rc == HN_SKIP)
        cr_skip_test("%s", world.skip);
    cr_assert_eq(rc, 0, "the broker did not start");
    cr_assert_eq(hn_branches(&world, &home, &dongguan), 0, "the two branches were not set up");
}

static void teardown(void)
{
    hn_world_fini(&world);
}

TestSuite(sync_converge, .init = setup, .fini = teardown, .timeout = 300);

/* Runs a liangdi command on n that must succeed; the id it prints into id (may be NULL). */
static void ok(hn_node_t *n, char *id, size_t idsz, const char *const *args)
{
    const char *a[16] = { 0 };
    for (size_t i = 0; i < 15 && args[i] != NULL; i++)
        a[i] = args[i];
    hn_result_t r;
    cr_assert_eq(hn_node_cmd(n, &r, a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9],
                             a[10], a[11], a[12], a[13], a[14], NULL), 0);
    cr_assert_eq(r.status, 0, "liangdi %s %s on %s failed: %s", a[0], a[1] != NULL ? a[1] : "",
                 n->id, r.err);
    if (id != NULL)
        cr_assert_eq(hn_printed_id(&r, id, idsz), 0, "no id printed by liangdi %s", a[0]);
    hn_result_free(&r);
}

static void assert_converged(size_t min_shared)
{
    hn_diff_t d;
    cr_assert_eq(hn_compare_stores(home->db, dongguan->db, &d), 0);
    cr_assert_eq(d.differ, 0, "%zu of %zu shared records differ; first: %s", d.differ, d.shared,
                 d.first);
    cr_assert_geq(d.shared, min_shared, "only %zu records shared, expected at least %zu", d.shared,
                  min_shared);
}

static int64_t count(hn_node_t *n, const char *sql)
{
    return hn_query_int(n->db, sql);
}

/* The people of the test: two members away in Dongguan, one at home; an agreement. */
typedef struct people {
    char zhang[37], li[37], wang[37];
    char agreement[37];
} people_t;

static void home_writes_members(people_t *p)
{
    cr_assert_eq(hn_mobile_member(home, "张三", "male", "2010-03-01", p->zhang), 0);
    cr_assert_eq(hn_mobile_member(home, "李四", "female", "2010-03-15", p->li), 0);
    ok(home, p->wang, sizeof p->wang,
       (const char *const[]){ "member", "add", "--name", "王五", "--org", HN_HOME_ORG, "--gender",
                              "male", "--born", "1975-08-20", NULL });
    ok(home, p->agreement, sizeof p->agreement,
       (const char *const[]){ "agreement", "add", "--outflow", HN_HOME_ORG, "--inflow",
                              HN_MOBILE_ORG, "--signed", "2010-03-01", "--terms",
                              "流出地与流入地党组织共同管理外出党员", NULL });
}

/* Dongguan records what its members did; home records dues and its own assessment. */
static void both_write(const people_t *p, const char *date)
{
    ok(dongguan, NULL, 0,
       (const char *const[]){ "activity", "add", p->zhang, "--date", date, "--kind", "theme-day",
                              "--note", "东莞支部主题党日：学习十七届四中全会精神", NULL });
    ok(dongguan, NULL, 0,
       (const char *const[]){ "contact", "add", p->agreement, "--date", date, "--channel",
                              "hotline", "--note", "通过流动党员热线800-5-12371互通情况", NULL });
    char month[8];
    snprintf(month, sizeof month, "%.7s", date);     /* the month of the date, paid once */
    ok(home, NULL, 0,
       (const char *const[]){ "activity", "add", p->li, "--date", date, "--kind", "dues",
                              "--month", month, "--amount", "12.50", NULL });
}

Test(sync_converge, records_written_at_both_branches_converge_when_dongguan_syncs_first)
{
    people_t p;
    home_writes_members(&p);
    cr_assert_eq(hn_sync(home), 0);
    cr_assert_eq(hn_sync(dongguan), 0);

    both_write(&p, "2010-05-04");
    ok(dongguan, NULL, 0,
       (const char *const[]){ "assess", p.li, "--year", "2010", "--side", "inflow", "--grade",
                              "excellent", "--note", "积极参加支部活动", NULL });
    ok(home, NULL, 0,
       (const char *const[]){ "assess", p.li, "--year", "2010", "--side", "outflow", "--grade",
                              "competent", NULL });

    cr_assert_eq(hn_sync(dongguan), 0);
    cr_assert_eq(hn_sync(home), 0);
    cr_assert_eq(hn_sync(dongguan), 0);

    assert_converged(8);
    cr_assert_eq(count(dongguan, "SELECT count(*) FROM \"assessments\""), 2);
    cr_assert_eq(count(home, "SELECT count(*) FROM \"contacts\""), 1);
    cr_assert_eq(count(home, "SELECT count(*) FROM \"activities\""), 2);
    /* Need to know: the member who stayed at home never reaches Dongguan. */
    cr_assert_eq(count(dongguan, "SELECT count(*) FROM \"members\""), 2);
    cr_assert(hn_world_finish(&world), "a process failed at the end (logs above)");
}

Test(sync_converge, records_written_at_both_branches_converge_when_home_syncs_first)
{
    people_t p;
    home_writes_members(&p);
    cr_assert_eq(hn_sync(home), 0);
    cr_assert_eq(hn_sync(dongguan), 0);

    both_write(&p, "2010-05-04");
    cr_assert_eq(hn_sync(home), 0);
    cr_assert_eq(hn_sync(dongguan), 0);
    cr_assert_eq(hn_sync(home), 0);
    assert_converged(8);

    /* A second round of writes in between the syncs, in the other order. */
    both_write(&p, "2010-06-30");
    ok(dongguan, NULL, 0,
       (const char *const[]){ "visit", "add", p.agreement, "--date", "2010-09-01", "--host",
                              HN_MOBILE_ORG, "--note", "镇党委到东莞走访", NULL });
    cr_assert_eq(hn_sync(dongguan), 0);
    ok(home, NULL, 0,
       (const char *const[]){ "member", "edit", p.zhang, "--phone", "13800000000", NULL });
    cr_assert_eq(hn_sync(home), 0);
    cr_assert_eq(hn_sync(dongguan), 0);

    assert_converged(11);
    cr_assert_eq(count(home, "SELECT count(*) FROM \"visits\""), 1);
    cr_assert_eq(count(dongguan, "SELECT count(*) FROM \"members\" WHERE \"phone\" = '13800000000'"), 1);
    cr_assert(hn_world_finish(&world), "a process failed at the end (logs above)");
}

Test(sync_converge, an_ended_trip_and_a_deleted_entry_reach_the_other_branch)
{
    people_t p;
    char entry[37];
    home_writes_members(&p);
    ok(home, entry, sizeof entry,
       (const char *const[]){ "activity", "add", p.zhang, "--date", "2010-04-01", "--kind", "study",
                              "--note", "误录：重复登记", NULL });
    cr_assert_eq(hn_sync(home), 0);
    cr_assert_eq(hn_sync(dongguan), 0);
    cr_assert_eq(count(dongguan, "SELECT count(*) FROM \"activities\" WHERE \"deleted\" = 0"), 1);

    ok(dongguan, NULL, 0, (const char *const[]){ "delete", entry, NULL });
    ok(home, NULL, 0,
       (const char *const[]){ "trip", "end", p.li, "--date", "2010-08-01", "--why", "returned",
                              NULL });
    cr_assert_eq(hn_sync(dongguan), 0);
    cr_assert_eq(hn_sync(home), 0);
    cr_assert_eq(hn_sync(dongguan), 0);

    assert_converged(5);
    cr_assert_eq(count(home, "SELECT count(*) FROM \"activities\" WHERE \"deleted\" = 1"), 1);
    cr_assert_eq(count(dongguan, "SELECT count(*) FROM \"trips\" WHERE \"status\" = 'returned'"), 1);
    cr_assert(hn_world_finish(&world), "a process failed at the end (logs above)");
}

/* ---------------------------------------------------------------- daemons ---- */

typedef struct expect {
    hn_node_t  *node;
    const char *sql;
    int64_t     want;
} expect_t;

static bool holds(void *ctx)
{
    const expect_t *e = ctx;
    return hn_query_int(e->node->db, e->sql) == e->want;
}

Test(sync_converge, two_online_daemons_see_each_others_writes_within_a_second)
{
    people_t p;
    home_writes_members(&p);
    cr_assert_eq(hn_sync(home), 0);
    cr_assert_eq(hn_sync(dongguan), 0);
    cr_assert_eq(hn_daemon_start(&world, home, "1h"), 0, "home's daemon did not get ready");
    cr_assert_eq(hn_daemon_start(&world, dongguan, "1h"), 0, "dongguan's daemon did not get ready");

    int64_t worst = 0;
    for (int i = 0; i < 3; i++) {
        /* home -> dongguan: a phone number */
        char phone[32], sql[256];
        snprintf(phone, sizeof phone, "1390000000%d", i);
        ok(home, NULL, 0, (const char *const[]){ "member", "edit", p.zhang, "--phone", phone, NULL });
        int64_t t0 = hn_now_ms();
        snprintf(sql, sizeof sql, "SELECT count(*) FROM \"members\" WHERE \"phone\" = '%s'", phone);
        expect_t e1 = { dongguan, sql, 1 };
        cr_assert(hn_wait_until(holds, &e1, 5000), "dongguan never saw home's write");
        int64_t dt1 = hn_now_ms() - t0;

        /* dongguan -> home: an activity entry */
        int64_t before = count(home, "SELECT count(*) FROM \"activities\"");
        ok(dongguan, NULL, 0,
           (const char *const[]){ "activity", "add", p.zhang, "--date", "2010-07-01", "--kind",
                                  "volunteer", "--note", "东莞长安镇志愿服务", NULL });
        t0 = hn_now_ms();
        expect_t e2 = { home, "SELECT count(*) FROM \"activities\"", before + 1 };
        cr_assert(hn_wait_until(holds, &e2, 5000), "home never saw dongguan's write");
        int64_t dt2 = hn_now_ms() - t0;

        fprintf(stderr, "daemons: home -> dongguan %lld ms, dongguan -> home %lld ms\n",
                (long long)dt1, (long long)dt2);
        if (dt1 > worst)
            worst = dt1;
        if (dt2 > worst)
            worst = dt2;
    }
    cr_assert_lt(worst, 1000, "a write took %lld ms to reach the other daemon", (long long)worst);

    /* SIGTERM is a clean stop. */
    cr_assert_eq(hn_proc_stop(&home->daemon, 5000), 0);
    cr_assert_eq(hn_proc_stop(&dongguan->daemon, 5000), 0);
    assert_converged(8);
    cr_assert(hn_world_finish(&world), "a process failed at the end (logs above)");
}

Test(sync_converge, daemons_carry_on_after_the_broker_is_killed_and_restarted)
{
    people_t p;
    home_writes_members(&p);
    cr_assert_eq(hn_daemon_start(&world, home, "1h"), 0, "home's daemon did not get ready");
    cr_assert_eq(hn_daemon_start(&world, dongguan, "1h"), 0, "dongguan's daemon did not get ready");

    size_t home_log = hn_file_size(home->log), dg_log = hn_file_size(dongguan->log);
    hn_broker_kill(&world);
    /* Written while the broker is down: it waits in home's outbox. */
    ok(home, NULL, 0, (const char *const[]){ "member", "edit", p.zhang, "--phone", "13611112222", NULL });
    cr_assert_eq(hn_broker_start(&world), 0, "the broker did not restart");
    cr_assert(hn_proc_wait_log(&home->daemon, "up again", home_log, 10000, NULL, 0));
    cr_assert(hn_proc_wait_log(&dongguan->daemon, "up again", dg_log, 10000, NULL, 0));

    expect_t e = { dongguan, "SELECT count(*) FROM \"members\" WHERE \"phone\" = '13611112222'", 1 };
    cr_assert(hn_wait_until(holds, &e, 5000), "the write made while the broker was down never arrived");
    assert_converged(6);
    cr_assert(hn_world_finish(&world), "a process failed at the end (logs above)");
}
