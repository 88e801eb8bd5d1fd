/* test_migrate.c: the store's schema: what migrations 1 and 2 make, the pragmas a
 * store opens with, and the refusal of a store made by a newer liangdi. */
#include <criterion/criterion.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "migrate.h"
#include "schema.h"
#include "store.h"

static char dir[PATH_MAX];
static char db_path[PATH_MAX + 16];

static void setup(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/ld-migrate-XXXXXX", tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(db_path, sizeof db_path, "%s/node.db", dir);
}

static int remove_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void teardown(void)
{
    nftw(dir, remove_one, 8, FTW_DEPTH | FTW_PHYS);
}

TestSuite(migrate, .init = setup, .fini = teardown);

/* The first column of the first row of sql (an integer), or -1. */
static long long query_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    long long v = -1;
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static bool has_object(sqlite3 *db, const char *type, const char *name)
{
    sqlite3_stmt *st = NULL;
    cr_assert_eq(sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_master WHERE type = ?1 AND name = ?2",
                                    -1, &st, NULL), SQLITE_OK);
    sqlite3_bind_text(st, 1, type, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    bool found = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    return found;
}

/* The declared type of table.column, or "" if there is no such column. */
static void column_type(sqlite3 *db, const char *table, const char *column, char *out, size_t n)
{
    sqlite3_stmt *st = NULL;
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT type FROM pragma_table_info('%s') WHERE name = ?1", table);
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    sqlite3_bind_text(st, 1, column, -1, SQLITE_STATIC);
    out[0] = '\0';
    if (sqlite3_step(st) == SQLITE_ROW)
        snprintf(out, n, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
}

static void set_user_version(int v)
{
    sqlite3 *db = NULL;
    char sql[64];
    cr_assert_eq(sqlite3_open(db_path, &db), SQLITE_OK);
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d", v);
    cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

Test(migrate, a_new_store_is_at_this_binarys_schema_version)
{
    ld_error_t err;
    nd_store_t *s = nd_store_open(db_path, true, &err);
    cr_assert_not_null(s, "%s", err.msg);
    cr_assert_eq(query_int(nd_store_db(s), "PRAGMA user_version"), ND_STORE_SCHEMA_VERSION);
    int v = -1;
    cr_assert_eq(nd_migrate_version(nd_store_db(s), &v, &err), 0);
    cr_assert_eq(v, ND_STORE_SCHEMA_VERSION);
    nd_store_destroy(&s);
    nd_store_destroy(&s);
    cr_assert_null(s);
}

Test(migrate, a_new_store_opens_in_wal_mode_with_full_sync_16_kib_pages_and_a_busy_timeout)
{
    ld_error_t err;
    nd_store_t *s = nd_store_open(db_path, true, &err);
    cr_assert_not_null(s, "%s", err.msg);
    sqlite3 *db = nd_store_db(s);
    sqlite3_stmt *st = NULL;
    cr_assert_eq(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    cr_assert_str_eq((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    cr_assert_eq(query_int(db, "PRAGMA synchronous"), 2);       /* FULL */
    cr_assert_eq(query_int(db, "PRAGMA page_size"), 16384);     /* a new file */
    cr_assert_eq(query_int(db, "PRAGMA wal_autocheckpoint"), 2048);   /* 32 MiB of WAL */
    cr_assert_eq(query_int(db, "PRAGMA foreign_keys"), 1);
    cr_assert_eq(query_int(db, "PRAGMA busy_timeout"), 5000);
    /* MEMORY: the savepoint of each write in a group never goes through a temp file. */
    cr_assert_eq(query_int(db, "PRAGMA temp_store"), 2);
    nd_store_destroy(&s);
}

Test(migrate, migration_one_creates_a_table_per_record_kind_with_a_column_per_field)
{
    ld_error_t err;
    nd_store_t *s = nd_store_open(db_path, true, &err);
    cr_assert_not_null(s, "%s", err.msg);
    sqlite3 *db = nd_store_db(s);
    char type[32];
    for (int k = LD_KIND_NONE + 1; k < LD_KIND_COUNT; k++) {
        const ld_kind_def_t *def = ld_schema_kind((ld_kind_t)k);
        cr_assert(has_object(db, "table", def->table), "no table %s", def->table);
        for (size_t i = 0; i < def->nfields; i++) {
            const ld_field_def_t *f = &def->fields[i];
            column_type(db, def->table, f->name, type, sizeof type);
            const char *want = f->type == LD_T_MONEY || f->type == LD_T_YEAR ? "INTEGER" : "TEXT";
            cr_assert_str_eq(type, want, "%s.%s is %s", def->table, f->name, type);
        }
        static const char *const extra[] = { "id", "deleted", "hlc", "origin", "stamps",
                                             "created_by" };
        for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++) {
            column_type(db, def->table, extra[i], type, sizeof type);
            cr_assert(type[0] != '\0', "%s has no %s column", def->table, extra[i]);
        }
    }
    column_type(db, "trips", "to", type, sizeof type);
    cr_assert_str_eq(type, "TEXT");
    column_type(db, "agreements", "signed", type, sizeof type);
    cr_assert_str_eq(type, "TEXT");
    nd_store_destroy(&s);
}

Test(migrate, a_new_store_has_the_log_tables_and_the_indexes_of_this_version)
{
    ld_error_t err;
    nd_store_t *s = nd_store_open(db_path, true, &err);
    cr_assert_not_null(s, "%s", err.msg);
    sqlite3 *db = nd_store_db(s);
    static const char *const tables[] = { "settings", "changelog", "conflicts", "org_sent",
                                          "inbox" };
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++)
        cr_assert(has_object(db, "table", tables[i]), "no table %s", tables[i]);
    static const char *const indexes[] = {
        "members_org", "trips_member_started", "trips_to", "activities_member",
        "contacts_agreement_date",
        "visits_agreement_date", "assessments_member_year_side", "approvals_member",
        "cares_member", "agreements_outflow", "agreements_inflow", "orgs_parent",
        "changelog_record_id", "conflicts_loser",
    };
    for (size_t i = 0; i < sizeof indexes / sizeof indexes[0]; i++)
        cr_assert(has_object(db, "index", indexes[i]), "no index %s", indexes[i]);
    /* Migration 2 dropped these: nothing reads them. */
    cr_assert_not(has_object(db, "index", "activities_member_month"));
    cr_assert_not(has_object(db, "index", "activities_date"));
    /* ... and migration 4 this one: a member's activities are found by member alone. */
    cr_assert_not(has_object(db, "index", "activities_member_kind_date"));

    /* A member's activities (`member show`) are found through the index, not a scan. */
    sqlite3_stmt *st = NULL;
    cr_assert_eq(sqlite3_prepare_v2(db, "EXPLAIN QUERY PLAN SELECT \"id\", \"date\" FROM "
                                    "\"activities\" WHERE \"member\" = ?1 AND "
                                    "coalesce(\"deleted\", 0) = 0 ORDER BY \"date\", \"id\"",
                                    -1, &st, NULL),
                 SQLITE_OK);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    const char *plan = (const char *)sqlite3_column_text(st, 3);
    cr_assert(strstr(plan, "activities_member") != NULL, "plan: %s", plan);
    sqlite3_finalize(st);
    nd_store_destroy(&s);
}

/* Node "home"'s store, made by this liangdi (caller destroys). */
static nd_store_t *home_store(void)
{
    ld_error_t err;
    nd_store_t *s = nd_store_open(db_path, true, &err);
    cr_assert_not_null(s, "%s", err.msg);
    cr_assert_eq(nd_store_init_node(s, "home", "竹园镇党委", &err), 0, "%s", err.msg);
    return s;
}

/* Takes the closed store back with `sql` (on a plain connection) to what an older
 * liangdi left. */
static void take_back(const char *sql)
{
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open(db_path, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
    sqlite3_close(db);
}

/* What version 7 lacks: the honours and supports tables (and with them their indexes). */
#define BEFORE_8 "DROP TABLE \"honours\"; DROP TABLE \"supports\"; "

/* Makes node "home"'s store with this liangdi, then takes it back with `sql`, after
 * taking away the two record tables of version 8, the trip's `until` (version 7) and
 * the inbox (version 6), which no older version has. */
static void older_store(const char *sql)
{
    nd_store_t *s = home_store();
    nd_store_destroy(&s);
    take_back(BEFORE_8 "ALTER TABLE \"trips\" DROP COLUMN \"until\"; DROP TABLE \"inbox\"");
    take_back(sql);
}

/* The store older_store left, opened by this liangdi: migrated to this version. */
static nd_store_t *migrated_store(void)
{
    ld_error_t err;
    nd_store_t *s = nd_store_open(db_path, false, &err);
    cr_assert_not_null(s, "%s", err.msg);
    cr_assert_eq(query_int(nd_store_db(s), "PRAGMA user_version"), ND_STORE_SCHEMA_VERSION);
    return s;
}

Test(migrate, a_version_one_store_keeps_its_records_and_loses_the_two_unread_activity_indexes)
{
    /* Back to what migration 1 left: its two activity indexes, version 1. */
    older_store("CREATE INDEX \"activities_member_month\" ON \"activities\" "
                "(\"member\", \"month\"); CREATE INDEX \"activities_date\" ON "
                "\"activities\" (\"date\"); PRAGMA user_version = 1");

    nd_store_t *s = migrated_store();
    sqlite3 *db = nd_store_db(s);
    cr_assert_str_eq(nd_store_node_id(s), "home");
    cr_assert_not(has_object(db, "index", "activities_member_month"));
    cr_assert_not(has_object(db, "index", "activities_date"));
    cr_assert(has_object(db, "index", "activities_member"));
    nd_store_destroy(&s);
}

Test(migrate, a_version_three_store_keeps_its_activities_and_finds_them_by_member)
{
    /* Back to version 3: activities indexed by (member, kind, date), two rows in it. */
    older_store("DROP INDEX \"activities_member\"; "
                "CREATE INDEX \"activities_member_kind_date\" ON \"activities\" "
                "(\"member\", \"kind\", \"date\"); "
                "INSERT INTO \"activities\" (\"id\", \"member\", \"kind\", \"date\", "
                "\"hlc\", \"origin\", \"stamps\", \"created_by\") VALUES "
                "('a1', 'm1', 'study', '2026-03-01', 1, 'home', '', 'home'), "
                "('a2', 'm2', 'dues', '2026-03-02', 2, 'home', '', 'home'); "
                "PRAGMA user_version = 3");

    nd_store_t *s = migrated_store();
    sqlite3 *db = nd_store_db(s);
    cr_assert_not(has_object(db, "index", "activities_member_kind_date"));
    cr_assert(has_object(db, "index", "activities_member"));
    cr_assert_eq(query_int(db, "SELECT count(*) FROM \"activities\" INDEXED BY "
                           "\"activities_member\" WHERE \"member\" = 'm2'"), 1);
    cr_assert_eq(query_int(db, "SELECT count(*) FROM \"activities\""), 2);
    nd_store_destroy(&s);
}

/* Writes village org `id` of node "home". */
static void add_org(nd_store_t *s, const char *id, const char *name)
{
    ld_error_t err;
    ld_change_t c;
    ld_change_init(&c);
    c.kind = LD_KIND_ORG;
    snprintf(c.record_id, sizeof c.record_id, "%s", id);
    cr_assert_eq(ld_change_set(&c, "name", name, &err), 0, "%s", err.msg);
    cr_assert_eq(ld_change_set(&c, "kind", "village", &err), 0, "%s", err.msg);
    cr_assert_eq(ld_change_set(&c, "node", "home", &err), 0, "%s", err.msg);
    cr_assert_eq(nd_store_create(s, &c, &err), 0, "%s", err.msg);
    ld_change_clear(&c);
}

/* Writes `n` study activities of one member, each with a note of `note_len` bytes (at
 * least 32), after the org and the member they need. */
static void write_activities(nd_store_t *s, size_t n, size_t note_len)
{
    ld_error_t err;
    ld_change_t c;
    char member[LD_RECORD_ID_MAX + 1];
    char *note = malloc(note_len + 1);
    cr_assert_not_null(note);

    add_org(s, "longtan", "龙潭村党支部");
    ld_change_init(&c);
    c.kind = LD_KIND_MEMBER;
    cr_assert_eq(ld_change_set(&c, "name", "林术平", &err), 0, "%s", err.msg);
    cr_assert_eq(ld_change_set(&c, "org", "longtan", &err), 0, "%s", err.msg);
    cr_assert_eq(nd_store_create(s, &c, &err), 0, "%s", err.msg);
    snprintf(member, sizeof member, "%s", c.record_id);
    for (size_t i = 0; i < n; i++) {
        ld_change_clear(&c);
        c.kind = LD_KIND_ACTIVITY;
        int len = snprintf(note, note_len + 1, "第%zu次支部学习", i + 1);
        memset(note + len, '.', note_len - (size_t)len);
        note[note_len] = '\0';
        cr_assert_eq(ld_change_set(&c, "member", member, &err), 0, "%s", err.msg);
        cr_assert_eq(ld_change_set(&c, "date", "2026-03-01", &err), 0, "%s", err.msg);
        cr_assert_eq(ld_change_set(&c, "kind", "study", &err), 0, "%s", err.msg);
        cr_assert_eq(ld_change_set(&c, "note", note, &err), 0, "%s", err.msg);
        cr_assert_eq(nd_store_create(s, &c, &err), 0, "%s", err.msg);
    }
    ld_change_clear(&c);
    free(note);
}

/* The change log in key order, every column, as one text (caller frees). */
static char *change_log_text(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    cr_assert_not_null(f);
    cr_assert_eq(sqlite3_prepare_v2(db, "SELECT \"origin\", \"seq\", \"record_id\", \"kind\", "
                                    "\"hlc\", \"deleted\", hex(\"body\"), \"at\" FROM \"changelog\" "
                                    "ORDER BY \"origin\", \"seq\"", -1, &st, NULL),
                 SQLITE_OK, "%s", sqlite3_errmsg(db));
    while (sqlite3_step(st) == SQLITE_ROW) {
        for (int i = 0; i < 8; i++)
            fprintf(f, "%s%s", i > 0 ? "|" : "", (const char *)sqlite3_column_text(st, i));
        fputc('\n', f);
    }
    sqlite3_finalize(st);
    fclose(f);
    return text;
}

/* Counts the outbox's changes after `after` and checks they come in seq order. */
static int count_in_order(void *ctx, uint64_t seq, const uint8_t *change, size_t len)
{
    uint64_t *last = ctx;
    (void)change;
    cr_assert_gt(len, 0);
    cr_assert_eq(seq, *last + 1, "seq %llu after %llu", (unsigned long long)seq,
                 (unsigned long long)*last);
    *last = seq;
    return 0;
}

Test(migrate, a_version_four_store_keeps_its_change_log_and_sends_it_in_order)
{
    nd_store_t *s = home_store();
    write_activities(s, 40, 1000);
    uint64_t last_seq = nd_store_last_seq(s);
    char *before = change_log_text(nd_store_db(s));
    nd_store_destroy(&s);
    /* Back to version 4: the log clustered on (origin, seq), as migration 1 made it. */
    take_back("DROP TABLE \"inbox\"; "
              "CREATE TABLE \"changelog_4\" (\"origin\" TEXT NOT NULL, \"seq\" INTEGER NOT NULL, "
              "\"record_id\" TEXT NOT NULL, \"kind\" TEXT NOT NULL, \"hlc\" INTEGER NOT NULL, "
              "\"deleted\" INTEGER NOT NULL, \"body\" BLOB NOT NULL, \"at\" INTEGER NOT NULL, "
              "PRIMARY KEY (\"origin\", \"seq\")) WITHOUT ROWID; "
              "INSERT INTO \"changelog_4\" SELECT \"origin\", \"seq\", \"record_id\", \"kind\", "
              "\"hlc\", \"deleted\", \"body\", \"at\" FROM \"changelog\"; "
              "DROP TABLE \"changelog\"; "
              "ALTER TABLE \"changelog_4\" RENAME TO \"changelog\"; "
              "CREATE INDEX \"changelog_record_id\" ON \"changelog\" (\"record_id\"); "
              "PRAGMA user_version = 4");

    s = migrated_store();
    sqlite3 *db = nd_store_db(s);
    cr_assert_eq(query_int(db, "SELECT count(*) FROM sqlite_master WHERE \"name\" = 'changelog' "
                           "AND \"sql\" LIKE '%WITHOUT ROWID%'"), 0);
    cr_assert(has_object(db, "index", "changelog_record_id"));
    char *after = change_log_text(db);
    cr_assert_str_eq(after, before);
    /* The whole outbox, in order, from the migrated log. */
    ld_error_t err;
    uint64_t seen = 0;
    cr_assert_eq(nd_store_outbox(s, 0, 1000, count_in_order, &seen, &err), (int)last_seq,
                 "%s", err.msg);
    cr_assert_eq(seen, last_seq);
    /* (origin, seq) is still unique, and a new write follows on. */
    cr_assert_neq(sqlite3_exec(db, "INSERT INTO \"changelog\" SELECT * FROM \"changelog\" "
                               "LIMIT 1", NULL, NULL, NULL), SQLITE_OK);
    add_org(s, "shuangfeng", "双丰村党支部");
    cr_assert_eq(nd_store_last_seq(s), last_seq + 1);
    nd_store_destroy(&s);
    free(before);
    free(after);
}

Test(migrate, a_version_five_store_gets_an_empty_inbox_and_keeps_its_cursor)
{
    nd_store_t *s = home_store();
    ld_error_t err;
    cr_assert_eq(nd_store_set_cursor(s, 812, &err), 0, "%s", err.msg);
    nd_store_destroy(&s);
    take_back(BEFORE_8 "ALTER TABLE \"trips\" DROP COLUMN \"until\"; DROP TABLE \"inbox\"; "
              "PRAGMA user_version = 5");

    s = migrated_store();
    sqlite3 *db = nd_store_db(s);
    cr_assert(has_object(db, "table", "inbox"));
    cr_assert_eq(query_int(db, "SELECT count(*) FROM \"inbox\""), 0);
    cr_assert_eq(nd_store_cursor(s), 812);
    nd_store_destroy(&s);
}

Test(migrate, a_version_six_store_gives_its_trips_an_expected_end_and_keeps_them)
{
    nd_store_t *s = home_store();
    nd_store_destroy(&s);
    take_back(BEFORE_8 "ALTER TABLE \"trips\" DROP COLUMN \"until\"; "
              "INSERT INTO \"trips\" (\"id\", \"member\", \"to\", \"started\", \"status\", "
              "\"hlc\", \"origin\", \"stamps\", \"created_by\") VALUES "
              "('t1', 'm1', 'dongguan', '2026-03-01', 'registered', 1, 'home', '', 'home'); "
              "PRAGMA user_version = 6");

    s = migrated_store();
    sqlite3 *db = nd_store_db(s);
    char type[32];
    column_type(db, "trips", "until", type, sizeof type);
    cr_assert_str_eq(type, "TEXT");
    cr_assert_eq(query_int(db, "SELECT count(*) FROM \"trips\" WHERE \"id\" = 't1' AND "
                           "\"started\" = '2026-03-01' AND \"until\" IS NULL"), 1);
    nd_store_destroy(&s);
    /* opened again, nothing is added twice */
    s = migrated_store();
    nd_store_destroy(&s);
}

Test(migrate, a_version_seven_store_gets_the_honours_and_supports_tables_and_keeps_its_records)
{
    nd_store_t *s = home_store();
    nd_store_destroy(&s);
    take_back(BEFORE_8
              "INSERT INTO \"members\" (\"id\", \"name\", \"org\", \"hlc\", \"origin\", "
              "\"stamps\", \"created_by\") VALUES ('m1', '林术平', 'home', 1, 'home', '', 'home'); "
              "PRAGMA user_version = 7");

    s = migrated_store();
    sqlite3 *db = nd_store_db(s);
    static const char *const indexes[] = { "honours_year_kind", "honours_member",
                                            "supports_member" };
    for (size_t i = 0; i < sizeof indexes / sizeof indexes[0]; i++)
        cr_assert(has_object(db, "index", indexes[i]), "no index %s", indexes[i]);
    /* a column per field, of the field's type */
    char type[32];
    column_type(db, "honours", "year", type, sizeof type);
    cr_assert_str_eq(type, "INTEGER");
    column_type(db, "supports", "amount", type, sizeof type);
    cr_assert_str_eq(type, "INTEGER");
    column_type(db, "supports", "helper", type, sizeof type);
    cr_assert_str_eq(type, "TEXT");
    cr_assert_eq(query_int(db, "SELECT count(*) FROM \"honours\""), 0);
    cr_assert_eq(query_int(db, "SELECT count(*) FROM \"members\" WHERE \"name\" = '林术平'"),
                 1);
    nd_store_destroy(&s);
}

/* Bytes of the store's pages that hold b-tree `name` (dbstat). */
static long long pages_of(sqlite3 *db, const char *name)
{
    sqlite3_stmt *st = NULL;
    long long bytes = -1;
    cr_assert_eq(sqlite3_prepare_v2(db, "SELECT sum(\"pgsize\") FROM \"dbstat\" WHERE "
                                    "\"name\" = ?1", -1, &st, NULL), SQLITE_OK, "%s",
                 sqlite3_errmsg(db));
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW)
        bytes = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return bytes;
}

Test(migrate, a_change_with_a_long_note_takes_about_its_size_in_the_change_log)
{
    /* In a store of 4 KiB pages (as every store was before 16 KiB ones) clustered on
     * (origin, seq), each of these bodies spilled into a page of its own: four times
     * their bytes. */
    sqlite3 *raw = NULL;
    cr_assert_eq(sqlite3_open(db_path, &raw), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(raw, "PRAGMA page_size = 4096; CREATE TABLE \"t\" (x); "
                              "DROP TABLE \"t\"", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(raw);
    nd_store_t *s = home_store();
    cr_assert_eq(query_int(nd_store_db(s), "PRAGMA page_size"), 4096);
    cr_assert_eq(query_int(nd_store_db(s), "PRAGMA wal_autocheckpoint"), 8192, "32 MiB");
    write_activities(s, 200, 1000);
    sqlite3 *db = nd_store_db(s);
    long long body = query_int(db, "SELECT sum(length(\"body\")) FROM \"changelog\"");
    long long used = pages_of(db, "changelog");
    cr_assert_gt(body, 200 * 1000);
    cr_assert_lt(used, 2 * body, "the change log takes %lld bytes for %lld of bodies", used, body);
    nd_store_destroy(&s);
}

Test(migrate, reopening_a_current_store_runs_no_migration_again)
{
    ld_error_t err;
    nd_store_t *s = nd_store_open(db_path, true, &err);
    cr_assert_not_null(s, "%s", err.msg);
    cr_assert_eq(nd_store_init_node(s, "home", "竹园镇党委", &err), 0, "%s", err.msg);
    nd_store_destroy(&s);
    s = nd_store_open(db_path, false, &err);
    cr_assert_not_null(s, "%s", err.msg);
    cr_assert_str_eq(nd_store_node_id(s), "home");
    cr_assert_eq(nd_migrate(nd_store_db(s), db_path, &err), 0, "%s", err.msg);
    cr_assert_eq(query_int(nd_store_db(s), "PRAGMA user_version"), ND_STORE_SCHEMA_VERSION);
    nd_store_destroy(&s);
}

Test(migrate, a_store_made_by_a_newer_liangdi_is_refused_with_a_clear_message)
{
    ld_error_t err;
    nd_store_t *s = nd_store_open(db_path, true, &err);
    cr_assert_not_null(s, "%s", err.msg);
    nd_store_destroy(&s);
    set_user_version(ND_STORE_SCHEMA_VERSION + 1);

    s = nd_store_open(db_path, false, &err);
    cr_assert_null(s);
    cr_assert_eq(err.code, LD_ESCHEMA);
    char want[PATH_MAX + 200];
    snprintf(want, sizeof want,
             "%s: store schema version %d is newer than this liangdi (%d); upgrade liangdi",
             db_path, ND_STORE_SCHEMA_VERSION + 1, ND_STORE_SCHEMA_VERSION);
    cr_assert_str_eq(err.msg, want);

    /* The refusal changed nothing: the version is still the newer one. */
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open(db_path, &db), SQLITE_OK);
    cr_assert_eq(query_int(db, "PRAGMA user_version"), ND_STORE_SCHEMA_VERSION + 1);
    sqlite3_close(db);
}

Test(migrate, an_empty_database_file_is_migrated_from_version_zero)
{
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open(db_path, &db), SQLITE_OK);
    cr_assert_eq(query_int(db, "PRAGMA user_version"), 0);
    ld_error_t err;
    cr_assert_eq(nd_migrate(db, db_path, &err), 0, "%s", err.msg);
    cr_assert_eq(query_int(db, "PRAGMA user_version"), ND_STORE_SCHEMA_VERSION);
    cr_assert(has_object(db, "table", "members"));
    sqlite3_close(db);
}

Test(migrate, a_failed_migration_leaves_the_store_at_its_old_version)
{
    /* A table in the way makes migration 1 fail half way: nothing of it may stay. */
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open(db_path, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db, "CREATE TABLE \"changelog\" (x)", NULL, NULL, NULL), SQLITE_OK);
    ld_error_t err;
    cr_assert_eq(nd_migrate(db, db_path, &err), LD_EIO);
    cr_assert(strstr(err.msg, "changelog") != NULL, "%s", err.msg);
    cr_assert_eq(query_int(db, "PRAGMA user_version"), 0);
    cr_assert_not(has_object(db, "table", "members"));
    sqlite3_close(db);
}

Test(migrate, opening_a_missing_store_without_create_is_not_found_and_makes_no_file)
{
    ld_error_t err;
    nd_store_t *s = nd_store_open(db_path, false, &err);
    cr_assert_null(s);
    cr_assert_eq(err.code, LD_ENOTFOUND);
    cr_assert(strstr(err.msg, db_path) != NULL, "%s", err.msg);
    cr_assert_neq(access(db_path, F_OK), 0);
}

Test(migrate, a_file_that_is_not_a_store_is_refused_naming_it)
{
    FILE *f = fopen(db_path, "w");
    cr_assert_not_null(f);
    fputs("name,org\n张三,longtan\n", f);
    fclose(f);
    ld_error_t err;
    nd_store_t *s = nd_store_open(db_path, false, &err);
    cr_assert_null(s);
    cr_assert_eq(err.code, LD_EIO);
    cr_assert(strstr(err.msg, db_path) != NULL, "%s", err.msg);
}
