/* migrate.c: the store's schema, version by version: migration 1 creates every table
 * (record tables generated from the schema table in proto/schema.c) and index;
 * migration 2 drops two activity indexes that no query reads any more; migration 3
 * changes no table but marks the short form of stamps lines (merge.h), which a liangdi
 * of version 2 cannot read; migration 4 indexes activities by member alone; migration 5
 * makes the change log a rowid table, so that a change's body never spills; migration 6
 * adds the inbox (inbox.h), where batches taken from the broker wait to be applied;
 * migration 7 adds the columns of fields the record schema gained (a trip's `until`);
 * migration 8 the tables, with their indexes, of kinds it gained (honours, supports).
 *
 * A migration runs in one IMMEDIATE transaction that ends by setting user_version,
 * so a crash leaves the store at the old version or the new one, never between.
 * Record tables keep their rowid: clustering them on random UUIDs (WITHOUT ROWID)
 * measured about 40% slower to apply changes to, as whole rows move on page splits.
 * Migration 1 reads today's field lists, so a new store has every column at once; a
 * migration for a field the record schema gained adds the column only where it is
 * missing (migration 7), and one for a kind its table (migration 8), so a new store and
 * an upgraded one end alike.
 */
#include "migrate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "schema.h"

#define DDL_MAX 4096

/* The record tables' indexes: migration 1 creates them all, later migrations change
 * those of version 1, and migration 8 creates those of the tables it adds. */
static const struct {
    const char *name;
    const char *table;
    const char *columns;     /* already quoted */
} record_indexes[] = {
    { "members_org",               "members",     "\"org\"" },
    /* (member, started) for the report; the id makes "the member's latest trip"
     * (audience.c) an index walk with no sort. */
    { "trips_member_started",      "trips",       "\"member\", \"started\", \"id\"" },
    { "trips_to",                  "trips",       "\"to\"" },
    { "activities_member_kind_date", "activities", "\"member\", \"kind\", \"date\"" },
    { "activities_member_month",   "activities",  "\"member\", \"month\"" },
    { "activities_date",           "activities",  "\"date\"" },
    { "contacts_agreement_date",   "contacts",    "\"agreement\", \"date\"" },
    { "visits_agreement_date",     "visits",      "\"agreement\", \"date\"" },
    { "assessments_member_year_side", "assessments", "\"member\", \"year\", \"side\"" },
    { "approvals_member",          "approvals",   "\"member\"" },
    { "cares_member",              "cares",       "\"member\"" },
    { "honours_year_kind",         "honours",     "\"year\", \"kind\"" },
    { "honours_member",            "honours",     "\"member\"" },
    { "supports_member",           "supports",    "\"member\"" },
    { "agreements_outflow",        "agreements",  "\"outflow\"" },
    { "agreements_inflow",         "agreements",  "\"inflow\"" },
    { "orgs_parent",               "orgs",        "\"parent\"" },
};

static const char *const fixed_ddl_1[] = {
    "CREATE TABLE \"settings\" (\"key\" TEXT PRIMARY KEY, \"value\" TEXT)",
    "CREATE TABLE \"changelog\" (\"origin\" TEXT NOT NULL, \"seq\" INTEGER NOT NULL, "
    "\"record_id\" TEXT NOT NULL, \"kind\" TEXT NOT NULL, \"hlc\" INTEGER NOT NULL, "
    "\"deleted\" INTEGER NOT NULL, \"body\" BLOB NOT NULL, \"at\" INTEGER NOT NULL, "
    "PRIMARY KEY (\"origin\", \"seq\")) WITHOUT ROWID",
    "CREATE INDEX \"changelog_record_id\" ON \"changelog\" (\"record_id\")",
    "CREATE TABLE \"conflicts\" (\"id\" INTEGER PRIMARY KEY, \"record_id\" TEXT NOT NULL, "
    "\"kind\" TEXT NOT NULL, \"field\" TEXT NOT NULL, \"winner_value\" TEXT, "
    "\"winner_hlc\" INTEGER NOT NULL, \"winner_origin\" TEXT NOT NULL, \"loser_value\" TEXT, "
    "\"loser_hlc\" INTEGER NOT NULL, \"loser_origin\" TEXT NOT NULL, \"at\" INTEGER NOT NULL)",
    /* A loser is logged once however many times its write arrives. */
    "CREATE UNIQUE INDEX \"conflicts_loser\" ON \"conflicts\" "
    "(\"record_id\", \"field\", \"loser_hlc\", \"loser_origin\")",
    "CREATE TABLE \"org_sent\" (\"org\" TEXT NOT NULL, \"node\" TEXT NOT NULL, "
    "PRIMARY KEY (\"org\", \"node\")) WITHOUT ROWID",
};

/* Runs one statement that returns no rows; 0 or LD_EIO naming it. */
static int exec_one(sqlite3 *db, const char *sql, ld_error_t *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE || rc == SQLITE_ROW)
            rc = SQLITE_OK;
    }
    int ret = 0;
    if (rc != SQLITE_OK)
        ret = ld_error_set(err, LD_EIO, "store: %.120s: %s", sql, sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return ret;
}

/* Runs sql[0..n) in turn, each returning no rows; 0 or the first failure's LD_EIO. */
static int exec_all(sqlite3 *db, const char *const *sql, size_t n, ld_error_t *err)
{
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = exec_one(db, sql[i], err);
    return rc;
}

/* The SQL type of a field's column. */
static const char *column_type(ld_type_t type)
{
    return type == LD_T_MONEY || type == LD_T_YEAR ? "INTEGER" : "TEXT";
}

/* CREATE TABLE for one record kind into out[DDL_MAX]; 0 or LD_ETOOBIG. */
static int record_table_ddl(const ld_kind_def_t *def, char *out, ld_error_t *err)
{
    size_t o = 0;
    int n = snprintf(out, DDL_MAX, "CREATE TABLE \"%s\" (\"id\" TEXT PRIMARY KEY", def->table);
    if (n < 0 || (size_t)n >= DDL_MAX)
        goto too_big;
    o = (size_t)n;
    for (size_t i = 0; i < def->nfields; i++) {
        n = snprintf(out + o, DDL_MAX - o, ", \"%s\" %s", def->fields[i].name,
                     column_type(def->fields[i].type));
        if (n < 0 || (size_t)n >= DDL_MAX - o)
            goto too_big;
        o += (size_t)n;
    }
    n = snprintf(out + o, DDL_MAX - o,
                 ", \"deleted\" INTEGER NOT NULL DEFAULT 0, \"hlc\" INTEGER NOT NULL, "
                 "\"origin\" TEXT NOT NULL, \"stamps\" TEXT NOT NULL, "
                 "\"created_by\" TEXT NOT NULL)");
    if (n < 0 || (size_t)n >= DDL_MAX - o)
        goto too_big;
    return 0;
too_big:
    return ld_error_set(err, LD_ETOOBIG, "store: DDL for %s is too long", def->table);
}

/* Creates the indexes of record_indexes on `table`, or on every table when it is NULL;
 * 0 or LD_EIO. */
static int create_record_indexes(sqlite3 *db, const char *table, ld_error_t *err)
{
    char sql[DDL_MAX];
    int rc = 0;
    for (size_t i = 0; i < sizeof record_indexes / sizeof record_indexes[0] && rc == 0; i++) {
        if (table != NULL && strcmp(record_indexes[i].table, table) != 0)
            continue;
        snprintf(sql, sizeof sql, "CREATE INDEX \"%s\" ON \"%s\" (%s)", record_indexes[i].name,
                 record_indexes[i].table, record_indexes[i].columns);
        rc = exec_one(db, sql, err);
    }
    return rc;
}

static int migration_1(sqlite3 *db, ld_error_t *err)
{
    char sql[DDL_MAX];
    int rc = 0;
    for (int k = LD_KIND_NONE + 1; k < LD_KIND_COUNT && rc == 0; k++) {
        rc = record_table_ddl(ld_schema_kind((ld_kind_t)k), sql, err);
        if (rc == 0)
            rc = exec_one(db, sql, err);
    }
    if (rc == 0)
        rc = exec_all(db, fixed_ddl_1, sizeof fixed_ddl_1 / sizeof fixed_ddl_1[0], err);
    if (rc == 0)
        rc = create_record_indexes(db, NULL, err);
    return rc;
}

/* Every write of an activity paid for five B-tree entries; the report now reads the
 * activities in one scan and no query searches by (member, month) or by date alone, so
 * two of them go: applying or writing an activity measured about 15% fewer
 * instructions.  (member, kind, date) stayed, until migration 4. */
static const char *const ddl_2[] = {
    "DROP INDEX IF EXISTS \"activities_member_month\"",
    "DROP INDEX IF EXISTS \"activities_date\"",
};

static int migration_2(sqlite3 *db, ld_error_t *err)
{
    return exec_all(db, ddl_2, sizeof ddl_2 / sizeof ddl_2[0], err);
}

/* Rows written from version 3 on may hold stamps lines "name =" (the stamp of the line
 * before, no base), a fifth of a typical row; the old lines stay as they are and
 * are still read.  Nothing to change in the tables: the version number keeps a
 * liangdi that does not know the short form from opening the store. */
static int migration_3(sqlite3 *db, ld_error_t *err)
{
    (void)db;
    (void)err;
    return 0;
}

/* A member's activities are only ever looked up by member (and sorted by date among
 * the few found), so the index holds the member alone.  Within a member its entries
 * now follow the table's order, and a batch adds each at the end of its member's run
 * instead of in the middle by kind and date: applying a batch of activities measured
 * about a third less time (95k -> 135k changes/s for one member, 61k -> 75k spread
 * over 1,000 members; tests/bench/bench_apply). */
static const char *const ddl_4[] = {
    "DROP INDEX IF EXISTS \"activities_member_kind_date\"",
    "CREATE INDEX IF NOT EXISTS \"activities_member\" ON \"activities\" (\"member\")",
};

static int migration_4(sqlite3 *db, ld_error_t *err)
{
    return exec_all(db, ddl_4, sizeof ddl_4 / sizeof ddl_4[0], err);
}

/* The change log was clustered on (origin, seq) (WITHOUT ROWID), where a row keeps at
 * most about a quarter of a page in place: the body of a change with a 1,000-byte
 * note spilled into an overflow page of its own, and the log took four times its
 * bytes on disk (89 MB for 20,000 such changes), all of it written twice (WAL and
 * checkpoint).  As a rowid table with (origin, seq) unique it keeps rows of up to a
 * page in place (26 MB for the same changes); 100-byte changes apply as fast as
 * before.  The copy goes in key order, which needs no sort. */
static const char *const ddl_5[] = {
    "CREATE TABLE \"changelog_5\" (\"origin\" TEXT NOT NULL, \"seq\" INTEGER NOT NULL, "
    "\"record_id\" TEXT NOT NULL, \"kind\" TEXT NOT NULL, \"hlc\" INTEGER NOT NULL, "
    "\"deleted\" INTEGER NOT NULL, \"body\" BLOB NOT NULL, \"at\" INTEGER NOT NULL, "
    "UNIQUE (\"origin\", \"seq\"))",
    "INSERT INTO \"changelog_5\" (\"origin\", \"seq\", \"record_id\", \"kind\", \"hlc\", "
    "\"deleted\", \"body\", \"at\") SELECT \"origin\", \"seq\", \"record_id\", \"kind\", "
    "\"hlc\", \"deleted\", \"body\", \"at\" FROM \"changelog\" ORDER BY \"origin\", \"seq\"",
    "DROP TABLE \"changelog\"",
    "ALTER TABLE \"changelog_5\" RENAME TO \"changelog\"",
    "CREATE INDEX \"changelog_record_id\" ON \"changelog\" (\"record_id\")",
};

static int migration_5(sqlite3 *db, ld_error_t *err)
{
    return exec_all(db, ddl_5, sizeof ddl_5 / sizeof ddl_5[0], err);
}

/* One row per batch taken from the broker: its Batch message as it came, the cursor
 * before it (entries at or below are not applied again) and how many entries it holds
 * above that cursor. */
static int migration_6(sqlite3 *db, ld_error_t *err)
{
    return exec_one(db, "CREATE TABLE \"inbox\" (\"id\" INTEGER PRIMARY KEY, "
                    "\"after\" INTEGER NOT NULL, \"last\" INTEGER NOT NULL, "
                    "\"count\" INTEGER NOT NULL, \"body\" BLOB NOT NULL)", err);
}

/* Whether `sql`, with `a` bound to ?1 and `b` (unless NULL) to ?2, finds a row: 1, 0, or
 * a negative LD_EIO saying it was `what` that could not be read. */
static int finds_row(sqlite3 *db, const char *sql, const char *a, const char *b,
                     const char *what, ld_error_t *err)
{
    sqlite3_stmt *st = NULL;
    int found = 0;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(st, 1, a, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK && b != NULL)
        rc = sqlite3_bind_text(st, 2, b, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        found = rc == SQLITE_ROW;
        if (rc == SQLITE_ROW || rc == SQLITE_DONE)
            rc = SQLITE_OK;
    }
    if (rc != SQLITE_OK)
        found = ld_error_set(err, LD_EIO, "store: reading %s %s: %s", what, a,
                             sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return found;
}

/* Whether `table` has `column` (0 no, 1 yes), or < 0. */
static int has_column(sqlite3 *db, const char *table, const char *column, ld_error_t *err)
{
    return finds_row(db, "SELECT 1 FROM pragma_table_info(?1) WHERE \"name\" = ?2", table,
                     column, "the columns of", err);
}

/* Whether the store has a table named `table` (0 no, 1 yes), or < 0. */
static int has_table(sqlite3 *db, const char *table, ld_error_t *err)
{
    return finds_row(db, "SELECT 1 FROM sqlite_schema WHERE \"type\" = 'table'"
                     " AND \"name\" = ?1", table, NULL, "the schema, looking for table", err);
}

/* Record schema 2 gives a trip the day it is expected to end (`until`).  Every field
 * the schema has and its table lacks gets its column, empty in the rows there are
 * (a store made new already has them all: migration 1 follows the schema). */
static int migration_7(sqlite3 *db, ld_error_t *err)
{
    char sql[DDL_MAX];
    int rc = 0;
    for (int k = LD_KIND_NONE + 1; k < LD_KIND_COUNT && rc == 0; k++) {
        const ld_kind_def_t *def = ld_schema_kind((ld_kind_t)k);
        int table = has_table(db, def->table, err);   /* a kind of a later schema: none */
        if (table <= 0) {
            rc = table;
            continue;
        }
        for (size_t i = 0; i < def->nfields && rc == 0; i++) {
            int has = has_column(db, def->table, def->fields[i].name, err);
            if (has < 0)
                rc = has;
            else if (has == 0) {
                snprintf(sql, sizeof sql, "ALTER TABLE \"%s\" ADD COLUMN \"%s\" %s",
                         def->table, def->fields[i].name, column_type(def->fields[i].type));
                rc = exec_one(db, sql, err);
            }
        }
    }
    return rc;
}

/* Record schema 4 adds two kinds: honours (the yearly selection) and supports (help
 * for members in difficulty).  Every kind the schema has and the store lacks gets its
 * table and its indexes, empty (a store made new has them all: migration 1 follows the
 * schema). */
static int migration_8(sqlite3 *db, ld_error_t *err)
{
    char sql[DDL_MAX];
    int rc = 0;
    for (int k = LD_KIND_NONE + 1; k < LD_KIND_COUNT && rc == 0; k++) {
        const ld_kind_def_t *def = ld_schema_kind((ld_kind_t)k);
        int has = has_table(db, def->table, err);
        if (has != 0) {
            rc = has < 0 ? has : 0;
            continue;
        }
        rc = record_table_ddl(def, sql, err);
        if (rc == 0)
            rc = exec_one(db, sql, err);
        if (rc == 0)
            rc = create_record_indexes(db, def->table, err);
    }
    return rc;
}

typedef int (*migration_fn)(sqlite3 *db, ld_error_t *err);

/* migrations[i] brings a store from version i to i + 1. */
static const migration_fn migrations[ND_STORE_SCHEMA_VERSION] = {
    migration_1,
    migration_2,
    migration_3,
    migration_4,
    migration_5,
    migration_6,
    migration_7,
    migration_8,
};

int nd_migrate_version(sqlite3 *db, int *version, ld_error_t *err)
{
    sqlite3_stmt *st = NULL;
    int ret = 0;
    int rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *version = sqlite3_column_int(st, 0);
    else
        ret = ld_error_set(err, LD_EIO, "store: reading its schema version: %s",
                           sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return ret;
}

int nd_migrate(sqlite3 *db, const char *path, ld_error_t *err)
{
    int version = 0;
    int rc = nd_migrate_version(db, &version, err);
    if (rc != 0)
        return rc;
    if (version > ND_STORE_SCHEMA_VERSION)
        return ld_error_set(err, LD_ESCHEMA,
                            "%s: store schema version %d is newer than this liangdi (%d); "
                            "upgrade liangdi", path, version, ND_STORE_SCHEMA_VERSION);
    if (version < 0)
        return ld_error_set(err, LD_ESCHEMA, "%s: store schema version %d is not valid",
                            path, version);
    while (version < ND_STORE_SCHEMA_VERSION) {
        rc = exec_one(db, "BEGIN IMMEDIATE", err);
        if (rc != 0)
            return rc;
        /* Another process may have migrated while we waited for the lock. */
        int now = 0;
        rc = nd_migrate_version(db, &now, err);
        if (rc == 0 && now == version) {
            rc = migrations[version](db, err);
            if (rc == 0) {
                char sql[64];
                snprintf(sql, sizeof sql, "PRAGMA user_version = %d", version + 1);
                rc = exec_one(db, sql, err);
            }
        }
        if (rc != 0) {
            exec_one(db, "ROLLBACK", NULL);
            return rc;
        }
        rc = exec_one(db, "COMMIT", err);
        if (rc != 0) {
            exec_one(db, "ROLLBACK", NULL);
            return rc;
        }
        rc = nd_migrate_version(db, &version, err);
        if (rc != 0)
            return rc;
        if (version > ND_STORE_SCHEMA_VERSION)
            return ld_error_set(err, LD_ESCHEMA,
                                "%s: store schema version %d is newer than this liangdi (%d); "
                                "upgrade liangdi", path, version, ND_STORE_SCHEMA_VERSION);
    }
    return 0;
}
