/* db.c: the broker's SQLite connections, opened in one place with the same pragmas
 * (WAL, synchronous=FULL, busy_timeout, a modest cache) and the store's version check. */
#include "db.h"

#include <stddef.h>
#include <stdio.h>

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
    if (bk_db_exec(db, "PRAGMA journal_mode=WAL", err) < 0
        || bk_db_exec(db, "PRAGMA synchronous=FULL", err) < 0
        /* 4 MiB of page cache per connection: memory must not grow with the backlog */
        || bk_db_exec(db, "PRAGMA cache_size=-4096", err) < 0
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
