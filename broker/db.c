/* db.c: the broker's SQLite connections, opened in one place with the same pragmas
 * (WAL, synchronous=FULL, busy_timeout, a modest cache), the store's version check and
 * the steps that bring an older store forward.  A new store's tables are made by the
 * modules that own them (registry_sqlite.c, mailbox_sqlite.c); a step here changes what
 * an older version made, and so writes a table as it was then and as it is now. */
#include "db.h"

#include <stddef.h>
#include <stdio.h>
#include "compact.h"
#include "log.h"

#define BK_DB_BUSY_MS 10000

int bk_db_fail(sqlite3 *db, const char *what, ld_error_t *err)
{
    return ld_error_set(err, LD_EIO, "%s: %s", what, db ? sqlite3_errmsg(db) : "no connection");
}

int bk_db_exec(sqlite3 *db, const char *sql, ld_error_t *err)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        ld_error_set(err, LD_EIO, "sqlite: %s", msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        return LD_EIO;
    }
    return 0;
}

int bk_db_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **stmt, ld_error_t *err)
{
    *stmt = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, stmt, NULL) != SQLITE_OK)
        return bk_db_fail(db, "prepare", err);
    return 0;
}

void bk_db_rollback(sqlite3 *db)
{
    if (db && !sqlite3_get_autocommit(db))
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
}

int bk_db_data_version(sqlite3 *db, long long *version, ld_error_t *err)
{
    sqlite3_stmt *st = NULL;
    int rc = bk_db_prepare(db, "PRAGMA data_version", &st, err);
    if (rc < 0)
        return rc;
    if (sqlite3_step(st) != SQLITE_ROW) {
        rc = bk_db_fail(db, "PRAGMA data_version", err);
        goto out;
    }
    *version = sqlite3_column_int64(st, 0);
    rc = 0;
out:
    sqlite3_finalize(st);
    return rc;
}

static int db_user_version(sqlite3 *db, int *version, ld_error_t *err)
{
    sqlite3_stmt *st = NULL;
    int rc = bk_db_prepare(db, "PRAGMA user_version", &st, err);
    if (rc < 0)
        return rc;
    if (sqlite3_step(st) != SQLITE_ROW) {
        rc = bk_db_fail(db, "PRAGMA user_version", err);
        goto out;
    }
    *version = sqlite3_column_int(st, 0);
    rc = 0;
out:
    sqlite3_finalize(st);
    return rc;
}

/* Version 1 kept the mailbox clustered on (node, position) (WITHOUT ROWID), where a row
 * keeps at most about a quarter of a page in place: each change of about 1,000 bytes
 * spilled into an overflow page of its own, so the mailbox took four times its bytes
 * (93 MB for 20,000 such changes) and a push of them was stored at a third of the rate
 * of one into a rowid table, which keeps rows of up to a page in place (28 MB).  The
 * old table is made first when missing (a store whose mailbox was never opened), so the
 * step has one shape; the copy goes in key order, which needs no sort. */
static const char db_step_2[] =
    "CREATE TABLE IF NOT EXISTS \"mailbox\"(\"node\" TEXT NOT NULL, "
    "\"position\" INTEGER NOT NULL, \"body\" BLOB NOT NULL, "
    "PRIMARY KEY(\"node\", \"position\")) WITHOUT ROWID;"
    "CREATE TABLE \"mailbox_2\"(\"node\" TEXT NOT NULL, \"position\" INTEGER NOT NULL, "
    "\"body\" BLOB NOT NULL, UNIQUE(\"node\", \"position\"));"
    "INSERT INTO \"mailbox_2\"(\"node\", \"position\", \"body\") "
    "SELECT \"node\", \"position\", \"body\" FROM \"mailbox\" ORDER BY \"node\", \"position\";"
    "DROP TABLE \"mailbox\";"
    "ALTER TABLE \"mailbox_2\" RENAME TO \"mailbox\";";

/* Version 3 remembers the keys `node rekey` took from nodes, so that none is used again
 * (registry_sqlite.c). */
static const char db_step_3[] =
    "CREATE TABLE IF NOT EXISTS \"retired_keys\"(\"key\" TEXT PRIMARY KEY NOT NULL, "
    "\"node\" TEXT NOT NULL) WITHOUT ROWID;";

/* Version 4 keeps a mailbox in chunks, the entries of one push to one mailbox in one row
 * (mailbox_sqlite.c says why); each waiting entry of the old table becomes a chunk of
 * one, at its position. */
static const char db_step_4[] =
    "CREATE TABLE IF NOT EXISTS \"mailbox\"(\"node\" TEXT NOT NULL, "
    "\"position\" INTEGER NOT NULL, \"body\" BLOB NOT NULL, UNIQUE(\"node\", \"position\"));"
    "CREATE TABLE \"mailbox_chunks\"(\"node\" TEXT NOT NULL, \"first\" INTEGER NOT NULL, "
    "\"last\" INTEGER NOT NULL, \"sizes\" BLOB, \"body\" BLOB NOT NULL, "
    "UNIQUE(\"node\", \"last\"));"
    "INSERT INTO \"mailbox_chunks\"(\"node\", \"first\", \"last\", \"sizes\", \"body\") "
    "SELECT \"node\", \"position\", \"position\", NULL, \"body\" FROM \"mailbox\" "
    "ORDER BY \"node\", \"position\";"
    "DROP TABLE \"mailbox\";";

/* db_steps[v] brings a store from version v to v + 1 (version 0 is a new file). */
static const char *const db_steps[BK_DB_SCHEMA_VERSION] = {
    [1] = db_step_2,
    [2] = db_step_3,
    [3] = db_step_4,
};

/* Brings the store at `path` (for messages) from `version` to this broker's, one step
 * per transaction that ends by setting user_version, so a crash leaves it at one
 * version or the next.  Another connection may have done a step while this one waited
 * for the lock: the version is read again inside.  0 or LD_EIO. */
static int db_upgrade(sqlite3 *db, const char *path, int version, ld_error_t *err)
{
    while (version < BK_DB_SCHEMA_VERSION) {
        char sql[64];
        ld_error_t step;
        int now = 0;
        int rc = bk_db_exec(db, "BEGIN IMMEDIATE", &step);
        if (rc == 0)
            rc = db_user_version(db, &now, &step);
        if (rc == 0 && now == version) {
            snprintf(sql, sizeof sql, "PRAGMA user_version=%d", version + 1);
            rc = bk_db_exec(db, db_steps[version], &step);
            if (rc == 0)
                rc = bk_db_exec(db, sql, &step);
        }
        if (rc == 0)
            rc = bk_db_exec(db, "COMMIT", &step);
        if (rc != 0) {
            bk_db_rollback(db);
            return ld_error_set(err, rc, "%s: bringing the store from version %d to %d: %s",
                                path, version, version + 1, step.msg);
        }
        if (now == version)
            ld_info("%s: broker store brought from version %d to %d", path, version,
                    version + 1);
        rc = db_user_version(db, &version, err);
        if (rc != 0)
            return rc;
    }
    if (version > BK_DB_SCHEMA_VERSION)   /* a newer broker moved it on while we waited */
        return ld_error_set(err, LD_ESCHEMA, "%s was made by a newer liangdi-broker (store "
                            "version %d, this one knows %d): upgrade the broker", path, version,
                            BK_DB_SCHEMA_VERSION);
    return 0;
}

sqlite3 *bk_db_open(const char *path, bool create, ld_error_t *err)
{
    sqlite3 *db = NULL;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
    int version = 0;
    int rc = sqlite3_open_v2(path, &db, flags, NULL);
    if (rc != SQLITE_OK) {
        if (!create && (rc == SQLITE_CANTOPEN))
            ld_error_set(err, LD_ENOTFOUND, "no broker store at %s (run `liangdi-broker init --db %s` first)",
                         path, path);
        else
            ld_error_set(err, LD_EIO, "cannot open %s: %s", path,
                         db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        goto err;
    }
    sqlite3_extended_result_codes(db, 1);
    if (sqlite3_busy_timeout(db, BK_DB_BUSY_MS) != SQLITE_OK) {
        bk_db_fail(db, "busy_timeout", err);
        goto err;
    }
    /* a new file gets 16 KiB pages, as a node store does (node/store.c says why);
     * an existing one keeps its own */
    char page_sql[48];
    snprintf(page_sql, sizeof page_sql, "PRAGMA page_size=%d", LD_STORE_PAGE_SIZE);
    if (bk_db_exec(db, page_sql, err) < 0
        || bk_db_exec(db, "PRAGMA journal_mode=WAL", err) < 0
        || bk_db_exec(db, "PRAGMA synchronous=FULL", err) < 0
        /* 4 MiB of page cache per connection: memory must not grow with the backlog */
        || bk_db_exec(db, "PRAGMA cache_size=-4096", err) < 0
        /* the log goes into the file when the broker is idle (bk_mailbox_idle), or,
         * under a long burst, once it holds 4,096 pages (64 MiB of 16 KiB pages): not
         * every 1,000 pages in the middle of taking pushes, each copy and fsync of the
         * file holding up the next ack.  The -wal file may stay that large on disk. */
        || bk_db_exec(db, "PRAGMA wal_autocheckpoint=4096", err) < 0
        || bk_db_exec(db, "PRAGMA foreign_keys=ON", err) < 0)
        goto err;
    if (db_user_version(db, &version, err) < 0)
        goto err;
    if (version > BK_DB_SCHEMA_VERSION) {
        ld_error_set(err, LD_ESCHEMA, "%s was made by a newer liangdi-broker (store version %d, "
                     "this one knows %d): upgrade the broker", path, version, BK_DB_SCHEMA_VERSION);
        goto err;
    }
    if (version == 0 && create) {
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA user_version=%d", BK_DB_SCHEMA_VERSION);
        if (bk_db_exec(db, sql, err) < 0)
            goto err;
    } else if (version == 0) {
        ld_error_set(err, LD_ENOTFOUND, "%s is not a broker store (run `liangdi-broker init --db %s` first)",
                     path, path);
        goto err;
    } else if (version < BK_DB_SCHEMA_VERSION && db_upgrade(db, path, version, err) != 0) {
        goto err;
    }
    return db;
err:
    sqlite3_close(db);
    return NULL;
}

void bk_db_close(sqlite3 **db_p)
{
    if (!db_p || !*db_p)
        return;
    sqlite3_close(*db_p);
    *db_p = NULL;
}
