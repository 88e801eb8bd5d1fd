/* test_broker_db.c: the broker's SQLite store file (broker/db.h): an older store brought
 * forward with its waiting changes (version 1 and version 3, whose mailbox kept a row per
 * change) and a registry that retires keys, a failed step
 * leaving it as it was, a store of a newer broker refused, and how much of the file a
 * long change takes. */
#include <criterion/criterion.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "db.h"
#include "keys.h"
#include "mailbox.h"
#include "registry.h"
#include "tmpdir.h"

#define BODY_LEN 1000

static char dir[HN_PATH_MAX];
static char db_path[PATH_MAX + 16];
static const char *const to_dongguan[] = { "dongguan" };

static void setup(void)
{
    cr_assert_eq(hn_tmpdir_new("broker-db", dir), 0);
    snprintf(db_path, sizeof db_path, "%s/broker.db", dir);
}

static void teardown(void)
{
    hn_tmpdir_remove(dir);
}

TestSuite(broker_db, .init = setup, .fini = teardown, .timeout = 60);

/* ---- helpers ---- */

/* The body of seq `seq`: its number, then '.' up to BODY_LEN bytes, into out. */
static void body_of(uint64_t seq, char out[BODY_LEN + 1])
{
    int len = snprintf(out, BODY_LEN + 1, "第%llu条变更 ", (unsigned long long)seq);
    memset(out + len, '.', BODY_LEN - (size_t)len);
    out[BODY_LEN] = '\0';
}

/* Pushes seqs first..last of zhuyuan, each of BODY_LEN bytes, to dongguan's mailbox. */
static void push_range(bk_mailbox_t *mb, uint64_t first, uint64_t last)
{
    size_t n = (size_t)(last - first + 1);
    bk_push_item_t *items = calloc(n, sizeof *items);
    char (*bodies)[BODY_LEN + 1] = calloc(n, sizeof *bodies);
    cr_assert(items != NULL && bodies != NULL);
    for (size_t i = 0; i < n; i++) {
        body_of(first + i, bodies[i]);
        items[i] = (bk_push_item_t){ .seq = first + i, .body = (const uint8_t *)bodies[i],
                                     .len = BODY_LEN, .to = to_dongguan, .nto = 1 };
    }
    ld_error_t err;
    uint64_t upto = 0;
    size_t stored = 0;
    cr_assert_eq(bk_mailbox_push(mb, "zhuyuan", items, n, &upto, &stored, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(upto, last);
    cr_assert_eq(stored, n);
    free(items);
    free(bodies);
}

/* What a fetch saw: positions in order, each body checked against its seq. */
typedef struct seen {
    uint64_t first, last;
    size_t   n;
} seen_t;

static int check_entry(void *ctx, uint64_t position, const uint8_t *body, size_t len)
{
    seen_t *s = ctx;
    char want[BODY_LEN + 1];
    cr_assert(s->n == 0 || position == s->last + 1, "position %llu after %llu",
              (unsigned long long)position, (unsigned long long)s->last);
    if (s->n == 0)
        s->first = position;
    s->last = position;
    s->n++;
    /* position p holds seq p here: one origin, one mailbox, positions from 1 */
    body_of(position, want);
    cr_assert_eq(len, BODY_LEN);
    cr_assert(memcmp(body, want, BODY_LEN) == 0, "the body at position %llu changed",
              (unsigned long long)position);
    return 0;
}

static sqlite3 *raw_open(void)
{
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open(db_path, &db), SQLITE_OK);
    return db;
}

static void raw_exec(const char *sql)
{
    sqlite3 *db = raw_open();
    cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK, "%s: %s", sql,
                 sqlite3_errmsg(db));
    sqlite3_close(db);
}

/* The first column of the first row of sql on a plain connection, or -1. */
static long long raw_int(const char *sql)
{
    sqlite3 *db = raw_open();
    sqlite3_stmt *st = NULL;
    long long v = -1;
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s: %s", sql,
                 sqlite3_errmsg(db));
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static bool mailbox_is_clustered(void)
{
    return raw_int("SELECT count(*) FROM sqlite_master WHERE \"name\" = 'mailbox' "
                   "AND \"sql\" LIKE '%WITHOUT ROWID%'") == 1;
}

/* Makes a store as `init` does (registry and mailboxes) with positions 1..50 pushed and
 * 1..10 acked, then takes it back to `version`: the waiting positions 11..50 one row
 * each in the mailbox table of that version (version 1: clustered on (node, position),
 * and no retired keys; version 3: a rowid table). */
static void older_store(int version)
{
    ld_error_t err;
    bk_registry_t *reg = bk_registry_new(db_path, true, &err);
    cr_assert_not_null(reg, "%s", err.msg);
    bk_registry_destroy(&reg);
    bk_mailbox_t *mb = bk_mailbox_new(NULL, db_path, true, &err);
    cr_assert_not_null(mb, "%s", err.msg);
    push_range(mb, 1, 50);
    cr_assert_eq(bk_mailbox_ack(mb, "dongguan", 10, &err), 0, "%s", err.msg);
    bk_mailbox_destroy(&mb);

    raw_exec(version == 1
             ? "CREATE TABLE \"mailbox\"(\"node\" TEXT NOT NULL, \"position\" INTEGER NOT NULL, "
               "\"body\" BLOB NOT NULL, PRIMARY KEY(\"node\", \"position\")) WITHOUT ROWID"
             : "CREATE TABLE \"mailbox\"(\"node\" TEXT NOT NULL, \"position\" INTEGER NOT NULL, "
               "\"body\" BLOB NOT NULL, UNIQUE(\"node\", \"position\"))");
    sqlite3 *db = raw_open();
    sqlite3_stmt *st = NULL;
    cr_assert_eq(sqlite3_prepare_v2(db, "INSERT INTO \"mailbox\" VALUES ('dongguan', ?1, ?2)",
                                    -1, &st, NULL), SQLITE_OK);
    for (uint64_t position = 11; position <= 50; position++) {
        char body[BODY_LEN + 1];
        body_of(position, body);
        sqlite3_bind_int64(st, 1, (sqlite3_int64)position);
        sqlite3_bind_blob(st, 2, body, BODY_LEN, SQLITE_TRANSIENT);
        cr_assert_eq(sqlite3_step(st), SQLITE_DONE);
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    raw_exec("DROP TABLE \"mailbox_chunks\"");
    if (version == 1)
        raw_exec("DROP TABLE \"retired_keys\"; PRAGMA user_version = 1");
    else
        raw_exec("PRAGMA user_version = 3");
    cr_assert_eq(mailbox_is_clustered(), version == 1);
}

static void version_one_store(void)
{
    older_store(1);
}

/* ---- tests ---- */

Test(broker_db, a_version_one_store_keeps_its_waiting_changes_at_their_positions)
{
    version_one_store();

    ld_error_t err;
    bk_mailbox_t *mb = bk_mailbox_new(NULL, db_path, false, &err);
    cr_assert_not_null(mb, "%s", err.msg);
    cr_assert_eq(raw_int("PRAGMA user_version"), BK_DB_SCHEMA_VERSION);
    cr_assert_not(mailbox_is_clustered());

    uint64_t depth = 0, remaining = 99, mark = 0;
    cr_assert_eq(bk_mailbox_depth(mb, "dongguan", &depth, &err), 0, "%s", err.msg);
    cr_assert_eq(depth, 40);
    seen_t seen = { 0 };
    cr_assert_eq(bk_mailbox_fetch(mb, "dongguan", 10, 100, check_entry, &seen, &remaining, &err),
                 40, "%s", err.msg);
    cr_assert_eq(seen.first, 11);
    cr_assert_eq(seen.last, 50);
    cr_assert_eq(remaining, 0);

    /* The marks and the positions go on from where they were. */
    cr_assert_eq(bk_mailbox_pushed_upto(mb, "zhuyuan", &mark, &err), 0, "%s", err.msg);
    cr_assert_eq(mark, 50);
    push_range(mb, 51, 55);
    seen = (seen_t){ 0 };
    cr_assert_eq(bk_mailbox_fetch(mb, "dongguan", 50, 100, check_entry, &seen, &remaining, &err),
                 5, "%s", err.msg);
    cr_assert_eq(seen.first, 51);
    cr_assert_eq(seen.last, 55);
    bk_mailbox_destroy(&mb);

    /* The registry of the upgraded store replaces keys and keeps the old ones retired. */
    ld_keypair_t k1, k2, k3;
    cr_assert_eq(ld_keys_generate(&k1, &err), 0, "%s", err.msg);
    cr_assert_eq(ld_keys_generate(&k2, &err), 0, "%s", err.msg);
    cr_assert_eq(ld_keys_generate(&k3, &err), 0, "%s", err.msg);
    bk_registry_t *reg = bk_registry_new(db_path, false, &err);
    cr_assert_not_null(reg, "%s", err.msg);
    cr_assert_eq(bk_registry_add_node(reg, "dongguan", "东莞支部", k1.public_key, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(bk_registry_set_key(reg, "dongguan", k2.public_key, &err), 0, "%s", err.msg);
    cr_assert_eq(bk_registry_add_node(reg, "shenzhen", "深圳支部", k1.public_key, &err),
                 LD_EEXIST);
    cr_assert_eq(bk_registry_add_node(reg, "shenzhen", "深圳支部", k3.public_key, &err), 0, "%s",
                 err.msg);
    bk_registry_destroy(&reg);
}

Test(broker_db, a_version_three_store_keeps_its_waiting_changes_in_chunks_of_one)
{
    older_store(3);

    ld_error_t err;
    bk_mailbox_t *mb = bk_mailbox_new(NULL, db_path, false, &err);
    cr_assert_not_null(mb, "%s", err.msg);
    cr_assert_eq(raw_int("PRAGMA user_version"), BK_DB_SCHEMA_VERSION);
    cr_assert_eq(raw_int("SELECT count(*) FROM sqlite_master WHERE \"name\" = 'mailbox'"), 0);
    cr_assert_eq(raw_int("SELECT count(*) FROM \"mailbox_chunks\" WHERE \"first\" = \"last\" "
                         "AND \"sizes\" IS NULL"), 40);

    /* Fetched from the middle, in order, bodies intact; acked in part, then the rest. */
    uint64_t remaining = 0;
    seen_t seen = { 0 };
    cr_assert_eq(bk_mailbox_fetch(mb, "dongguan", 20, 10, check_entry, &seen, &remaining, &err),
                 10, "%s", err.msg);
    cr_assert_eq(seen.first, 21);
    cr_assert_eq(seen.last, 30);
    cr_assert_eq(remaining, 20);
    cr_assert_eq(bk_mailbox_ack(mb, "dongguan", 30, &err), 0, "%s", err.msg);
    cr_assert_eq(raw_int("SELECT count(*) FROM \"mailbox_chunks\""), 20);

    /* A new push follows on as one chunk. */
    push_range(mb, 51, 60);
    cr_assert_eq(raw_int("SELECT count(*) FROM \"mailbox_chunks\" WHERE \"first\" = 51 "
                         "AND \"last\" = 60"), 1);
    seen = (seen_t){ 0 };
    cr_assert_eq(bk_mailbox_fetch(mb, "dongguan", 30, 100, check_entry, &seen, &remaining, &err),
                 30, "%s", err.msg);
    cr_assert_eq(seen.first, 31);
    cr_assert_eq(seen.last, 60);
    bk_mailbox_destroy(&mb);
}

Test(broker_db, a_chunk_whose_sizes_do_not_add_up_is_refused_naming_its_positions)
{
    ld_error_t err;
    bk_mailbox_t *mb = bk_mailbox_new(NULL, db_path, true, &err);
    cr_assert_not_null(mb, "%s", err.msg);
    push_range(mb, 1, 5);
    push_range(mb, 6, 8);
    /* the second chunk's sizes lose an entry */
    raw_exec("UPDATE \"mailbox_chunks\" SET \"sizes\" = substr(\"sizes\", 1, 8) "
             "WHERE \"first\" = 6");

    uint64_t remaining = 0;
    seen_t seen = { 0 };
    cr_assert_eq(bk_mailbox_fetch(mb, "dongguan", 0, 100, check_entry, &seen, &remaining, &err),
                 LD_EIO);
    cr_assert(strstr(err.msg, "the mailbox of dongguan is damaged: the chunk of positions 6 "
                     "to 8") != NULL, "%s", err.msg);
    /* what comes before it is still read whole */
    seen = (seen_t){ 0 };
    cr_assert_eq(bk_mailbox_fetch(mb, "dongguan", 0, 5, check_entry, &seen, &remaining, &err),
                 5, "%s", err.msg);
    cr_assert_eq(seen.last, 5);
    bk_mailbox_destroy(&mb);
}

Test(broker_db, a_step_that_fails_leaves_the_store_at_its_old_version_with_its_changes)
{
    version_one_store();
    /* A table in the way of the step's new one makes it fail half way. */
    raw_exec("CREATE TABLE \"mailbox_2\"(x)");

    ld_error_t err;
    bk_mailbox_t *mb = bk_mailbox_new(NULL, db_path, false, &err);
    cr_assert_null(mb);
    cr_assert_eq(err.code, LD_EIO);
    char want[PATH_MAX + 64];
    snprintf(want, sizeof want, "%s: bringing the store from version 1 to 2: ", db_path);
    cr_assert(strncmp(err.msg, want, strlen(want)) == 0, "%s", err.msg);
    cr_assert(strstr(err.msg, "mailbox_2") != NULL, "%s", err.msg);

    cr_assert_eq(raw_int("PRAGMA user_version"), 1);
    cr_assert(mailbox_is_clustered());
    cr_assert_eq(raw_int("SELECT count(*) FROM \"mailbox\""), 40);
    cr_assert_eq(raw_int("SELECT min(\"position\") FROM \"mailbox\""), 11);
}

Test(broker_db, a_store_made_by_a_newer_broker_is_refused_and_left_as_it_was)
{
    ld_error_t err;
    bk_mailbox_t *mb = bk_mailbox_new(NULL, db_path, true, &err);
    cr_assert_not_null(mb, "%s", err.msg);
    bk_mailbox_destroy(&mb);
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d", BK_DB_SCHEMA_VERSION + 1);
    raw_exec(sql);

    mb = bk_mailbox_new(NULL, db_path, false, &err);
    cr_assert_null(mb);
    cr_assert_eq(err.code, LD_ESCHEMA);
    cr_assert(strstr(err.msg, "newer liangdi-broker") != NULL, "%s", err.msg);
    cr_assert(strstr(err.msg, db_path) != NULL, "%s", err.msg);
    cr_assert_eq(raw_int("PRAGMA user_version"), BK_DB_SCHEMA_VERSION + 1);
}

Test(broker_db, a_new_store_has_16_kib_pages)
{
    ld_error_t err;
    bk_mailbox_t *mb = bk_mailbox_new(NULL, db_path, true, &err);
    cr_assert_not_null(mb, "%s", err.msg);
    bk_mailbox_destroy(&mb);
    cr_assert_eq(raw_int("PRAGMA page_size"), 16384);
}

Test(broker_db, a_change_of_a_thousand_bytes_takes_about_its_size_in_the_mailbox)
{
    /* In a store of 4 KiB pages (as every store was before 16 KiB ones) clustered on
     * (node, position), each of these bodies spilled into a page of its own: four times
     * their bytes. */
    ld_error_t err;
    raw_exec("PRAGMA page_size = 4096; CREATE TABLE \"t\" (x); DROP TABLE \"t\"");
    bk_mailbox_t *mb = bk_mailbox_new(NULL, db_path, true, &err);
    cr_assert_not_null(mb, "%s", err.msg);
    push_range(mb, 1, 200);
    bk_mailbox_destroy(&mb);
    cr_assert_eq(raw_int("PRAGMA page_size"), 4096);
    long long used = raw_int("SELECT sum(\"pgsize\") FROM \"dbstat\" WHERE \"name\" = "
                             "'mailbox_chunks'");
    cr_assert_gt(used, 0);
    cr_assert_lt(used, 2 * 200 * BODY_LEN, "the mailbox takes %lld bytes for %d of bodies",
                 used, 200 * BODY_LEN);
}
