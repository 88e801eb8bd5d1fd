/* test_sync_conflict.c: concurrent edits of one member (different fields both survive;
 * the same field gets one winner everywhere and a logged loser), duplicate and
 * reordered delivery change nothing, and a change stamped far ahead is refused. */
#include <criterion/criterion.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "change.h"
#include "codec.h"
#include "harness.h"
#include "hlc.h"
#include "store.h"

static hn_world_t world;
static hn_node_t *home;
static hn_node_t *dongguan;
static char member[37];

static void setup(void)
{
    int rc = hn_world_init(&world, "conflict");
    if (rc == HN_SKIP)
        cr_skip_test("%s", world.skip);
    cr_assert_eq(rc, 0, "the broker did not start");
    cr_assert_eq(hn_branches(&world, &home, &dongguan), 0, "the two branches were not set up");
    cr_assert_eq(hn_mobile_member(home, "李四", "female", "2010-03-15", member), 0);
    cr_assert_eq(hn_sync(home), 0);
    cr_assert_eq(hn_sync(dongguan), 0);
}

static void teardown(void)
{
    hn_world_fini(&world);
}

TestSuite(sync_conflict, .init = setup, .fini = teardown, .timeout = 300);

static void edit(hn_node_t *n, const char *flag, const char *value)
{
    hn_result_t r;
    cr_assert_eq(hn_node_cmd(n, &r, "member", "edit", member, flag, value, NULL), 0);
    cr_assert_eq(r.status, 0, "member edit %s on %s: %s", flag, n->id, r.err);
    hn_result_free(&r);
}

/* The member's column `field` at node n, as text (caller frees); NULL if unset. */
static char *member_field(hn_node_t *n, const char *field)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    char *value = NULL;
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT \"%s\" FROM \"members\" WHERE \"id\" = ?1", field);
    cr_assert_eq(sqlite3_open_v2(n->db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
    sqlite3_bind_text(st, 1, member, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) != NULL)
        value = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return value;
}

static void assert_converged(void)
{
    hn_diff_t d;
    cr_assert_eq(hn_compare_stores(home->db, dongguan->db, &d), 0);
    cr_assert_eq(d.differ, 0, "%zu of %zu shared records differ; first: %s", d.differ, d.shared,
                 d.first);
    cr_assert_geq(d.shared, 4);
}

static void sync_all(void)
{
    cr_assert_eq(hn_sync(home), 0);
    cr_assert_eq(hn_sync(dongguan), 0);
    cr_assert_eq(hn_sync(home), 0);
}

Test(sync_conflict, concurrent_edits_of_different_fields_of_one_member_both_survive)
{
    edit(home, "--phone", "13512345678");
    edit(dongguan, "--born", "1980-05-01");
    sync_all();

    for (int i = 0; i < 2; i++) {
        hn_node_t *n = i == 0 ? home : dongguan;
        char *phone = member_field(n, "phone"), *born = member_field(n, "born");
        cr_assert_str_eq(phone != NULL ? phone : "", "13512345678", "phone at %s", n->id);
        cr_assert_str_eq(born != NULL ? born : "", "1980-05-01", "born at %s", n->id);
        free(phone);
        free(born);
        cr_assert_eq(hn_query_int(n->db, "SELECT count(*) FROM \"conflicts\""), 0,
                     "different fields are no conflict (at %s)", n->id);
    }
    assert_converged();
    cr_assert(hn_world_finish(&world), "a process failed at the end (logs above)");
}

Test(sync_conflict, concurrent_edits_of_the_same_field_pick_one_winner_everywhere_and_log_the_loser)
{
    edit(home, "--phone", "13800000001");
    edit(dongguan, "--phone", "13900000002");
    sync_all();

    char *at_home = member_field(home, "phone"), *at_dg = member_field(dongguan, "phone");
    cr_assert_not_null(at_home);
    cr_assert_not_null(at_dg);
    cr_assert_str_eq(at_home, at_dg, "the two branches picked different winners");
    const char *loser = strcmp(at_home, "13800000001") == 0 ? "13900000002" : "13800000001";
    for (int i = 0; i < 2; i++) {
        hn_node_t *n = i == 0 ? home : dongguan;
        hn_result_t r;
        cr_assert_eq(hn_node_cmd(n, &r, "conflicts", "--format", "csv", NULL), 0);
        cr_assert_eq(r.status, 0, "liangdi conflicts on %s: %s", n->id, r.err);
        cr_assert_not_null(strstr(r.out, loser), "%s does not list the losing %s:\n%s", n->id,
                           loser, r.out);
        cr_assert_not_null(strstr(r.out, at_home), "%s does not list the winning %s", n->id,
                           at_home);
        hn_result_free(&r);
    }
    free(at_home);
    free(at_dg);
    assert_converged();
    cr_assert(hn_world_finish(&world), "a process failed at the end (logs above)");
}

/* ------------------------------------------------- duplicates and reordering ---- */

/* A store-level edit of the member (fast; the same write path as the CLI's). */
static void store_edit(nd_store_t *store, const char *field, const char *value)
{
    ld_error_t err;
    ld_change_t c;
    ld_change_init(&c);
    c.kind = LD_KIND_MEMBER;
    snprintf(c.record_id, sizeof c.record_id, "%s", member);
    cr_assert_eq(ld_change_set(&c, field, value, &err), 0, "%s", err.msg);
    cr_assert_eq(nd_store_write(store, &c, &err), 0, "%s", err.msg);
    ld_change_clear(&c);
}

/* Both branches edit the member's fields many times with syncs in between. */
static void busy_history(uint64_t *rng)
{
    static const char *const fields[] = { "phone", "id_number", "born" };
    ld_error_t err;
    for (int round = 0; round < 4; round++) {
        for (int side = 0; side < 2; side++) {
            hn_node_t *n = side == 0 ? home : dongguan;
            nd_store_t *store = nd_store_open(n->db, false, &err);
            cr_assert_not_null(store, "%s", err.msg);
            for (int i = 0; i < 15; i++) {
                const char *field = fields[hn_rand(rng) % 3];
                char value[32];
                if (strcmp(field, "born") == 0)
                    snprintf(value, sizeof value, "19%02d-0%d-1%d", 60 + (int)(hn_rand(rng) % 30),
                             1 + (int)(hn_rand(rng) % 9), (int)(hn_rand(rng) % 10));
                else if (strcmp(field, "phone") == 0)
                    snprintf(value, sizeof value, "13%09d", (int)(hn_rand(rng) % 1000000000));
                else
                    snprintf(value, sizeof value, "5002361980%08d", (int)(hn_rand(rng) % 100000000));
                store_edit(store, field, value);
            }
            nd_store_destroy(&store);
        }
        cr_assert_eq(hn_bulk_activities(home, member, 50, "家乡"), 0);
        cr_assert_eq(hn_bulk_activities(dongguan, member, 50, "东莞"), 0);
        cr_assert_eq(hn_sync(round % 2 == 0 ? home : dongguan), 0);
    }
    sync_all();
}

/* Every change in a store's log, unpacked. */
static ld_change_t *logged_changes(const char *path, size_t *n)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(db, "SELECT \"body\" FROM \"changelog\" ORDER BY \"origin\", \"seq\"",
                                    -1, &st, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
    size_t cap = 1024, count = 0;
    ld_change_t *all = calloc(cap, sizeof *all);
    cr_assert_not_null(all);
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (count == cap) {
            cap *= 2;
            all = realloc(all, cap * sizeof *all);
            cr_assert_not_null(all);
        }
        ld_error_t err;
        cr_assert_eq(ld_change_unpack(sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0),
                                      &all[count], &err), 0, "%s", err.msg);
        count++;
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    *n = count;
    return all;
}

static void shuffle(ld_change_t **order, size_t n, uint64_t *rng)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(hn_rand(rng) % i);
        ld_change_t *t = order[i - 1];
        order[i - 1] = order[j];
        order[j] = t;
    }
}

Test(sync_conflict, duplicate_and_reordered_delivery_change_nothing)
{
    uint64_t rng = hn_seed(20100701);
    busy_history(&rng);
    assert_converged();

    size_t n = 0;
    ld_change_t *changes = logged_changes(dongguan->db, &n);
    cr_assert_gt(n, 400u);

    /* A fresh store gets Dongguan's whole log twice, each time in another order. */
    char path[HN_PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/replay.db", world.dir);
    ld_error_t err;
    nd_store_t *replay = nd_store_open(path, true, &err);
    cr_assert_not_null(replay, "%s", err.msg);
    cr_assert_eq(nd_store_init_node(replay, "replay", "重放", &err), 0, "%s", err.msg);
    ld_change_t **order = calloc(n, sizeof *order);
    cr_assert_not_null(order);
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < n; i++)
            order[i] = &changes[i];
        shuffle(order, n, &rng);
        for (size_t i = 0; i < n; i++)
            cr_assert_eq(nd_store_apply(replay, order[i], &err), 0, "pass %d, change %zu: %s", pass,
                         i, err.msg);
    }
    nd_store_destroy(&replay);

    hn_diff_t d;
    cr_assert_eq(hn_compare_stores(path, dongguan->db, &d), 0);
    cr_assert_eq(d.differ, 0, "%zu of %zu records differ after reordering; first: %s", d.differ,
                 d.shared, d.first);
    cr_assert_eq(d.only_a + d.only_b, 0, "%zu records only in the replay, %zu only at dongguan",
                 d.only_a, d.only_b);

    /* Dongguan gets its own log again, shuffled: nothing changes. */
    uint64_t before = hn_store_digest(dongguan->db);
    nd_store_t *store = nd_store_open(dongguan->db, false, &err);
    cr_assert_not_null(store, "%s", err.msg);
    for (size_t i = 0; i < n; i++)
        order[i] = &changes[i];
    shuffle(order, n, &rng);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(nd_store_apply(store, order[i], &err), 0, "%s", err.msg);
    nd_store_destroy(&store);
    cr_assert_eq(hn_store_digest(dongguan->db), before, "a repeated change altered the store");

    for (size_t i = 0; i < n; i++)
        ld_change_clear(&changes[i]);
    free(changes);
    free(order);
    cr_assert(hn_world_finish(&world), "a process failed at the end (logs above)");
}

Test(sync_conflict, a_node_that_forgets_its_cursor_fetches_again_without_changing_anything)
{
    edit(home, "--phone", "13700000000");
    cr_assert_eq(hn_bulk_activities(home, member, 300, "重复投递"), 0);
    sync_all();
    cr_assert_eq(hn_sync(dongguan), 0);
    uint64_t before = hn_store_digest(dongguan->db);

    ld_error_t err;
    nd_store_t *store = nd_store_open(dongguan->db, false, &err);
    cr_assert_not_null(store, "%s", err.msg);
    cr_assert_eq(nd_store_apply_batch(store, NULL, 0, 0, &err), 0, "%s", err.msg);
    nd_store_destroy(&store);
    cr_assert_eq(hn_setting_int(dongguan->db, "cursor"), 0);

    cr_assert_eq(hn_sync(dongguan), 0);
    cr_assert_eq(hn_store_digest(dongguan->db), before, "fetching again altered the store");
    assert_converged();
    cr_assert(hn_world_finish(&world), "a process failed at the end (logs above)");
}

/* -------------------------------------------------------------- clock drift ---- */

Test(sync_conflict, a_change_stamped_far_in_the_future_is_refused_with_the_brokers_message)
{
    /* Home's clock once ran an hour fast: the store remembers the stamp it issued, so
     * its next write is stamped an hour ahead of every other clock. */
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open(home->db, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    sqlite3_stmt *st = NULL;
    cr_assert_eq(sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO \"settings\" (\"key\", \"value\") "
                                        "VALUES ('clock', ?1)", -1, &st, NULL), SQLITE_OK);
    uint64_t ahead = ld_hlc_make(ld_hlc_wall_now() + 3600u * 1000u, 0);
    char text[32];
    snprintf(text, sizeof text, "%llu", (unsigned long long)ahead);
    sqlite3_bind_text(st, 1, text, -1, SQLITE_STATIC);
    cr_assert_eq(sqlite3_step(st), SQLITE_DONE, "%s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    sqlite3_close(db);

    edit(home, "--phone", "13000000000");
    cr_assert_geq(hn_query_int(home->db, "SELECT max(\"hlc\") FROM \"changelog\""), (int64_t)ahead);

    hn_result_t r;
    cr_assert_eq(hn_node_cmd(home, &r, "sync", "--timeout", "20", NULL), 0);
    cr_assert_neq(r.status, 0, "a sync with a far-future change succeeded");
    cr_assert_not_null(strstr(r.err, "refused by the broker"), "stderr: %s", r.err);
    cr_assert_not_null(strstr(r.err, "ahead"), "the broker's reason is missing: %s", r.err);
    hn_result_free(&r);

    /* Nothing of it reached Dongguan, and home remembers why. */
    cr_assert_eq(hn_sync(dongguan), 0);
    char *phone = member_field(dongguan, "phone");
    cr_assert(phone == NULL || strcmp(phone, "13000000000") != 0, "the refused change arrived");
    free(phone);
    cr_assert_eq(hn_query_int(home->db, "SELECT count(*) FROM \"settings\" WHERE \"key\" = "
                                        "'sync.last_error' AND \"value\" LIKE '%ahead%'"), 1);
    cr_assert(hn_world_finish(&world), "a process failed at the end (logs above)");
}
