/* cmp_sqlite.c: the storage limit every liangdi hop pays: N records inserted into a
 * fresh SQLite database (WAL, synchronous=FULL) in transactions of BATCH records. */
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmp_common.h"

#define PROG          "cmp_sqlite"
#define DEFAULT_BATCH 4096   /* the number of changes liangdi carries in one Push */

static int check(sqlite3 *db, int rc, int want, const char *what)
{
    if (rc == want)
        return 0;
    fprintf(stderr, PROG ": %s: %s\n", what, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    return -1;
}

static int exec(sqlite3 *db, const char *sql)
{
    return check(db, sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK, sql);
}

/* Inserts n records of `size` bytes into a new database at `path`. 0 or -1. */
static int run(const char *path, uint64_t n, size_t size, uint64_t batch)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *ins = NULL;
    uint8_t *buf = malloc(size);
    int rc = -1, orc;

    if (buf == NULL)
        goto out;
    orc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                          SQLITE_OPEN_EXCLUSIVE, NULL);
    if (check(db, orc, SQLITE_OK, path) < 0)
        goto out;
    /* the page size liangdi's stores are made with, so the limit is the same job */
    if (exec(db, "PRAGMA page_size=16384") < 0 || exec(db, "PRAGMA journal_mode=WAL") < 0
        || exec(db, "PRAGMA synchronous=FULL") < 0 ||
        exec(db, "CREATE TABLE \"records\" (\"seq\" INTEGER PRIMARY KEY, "
                 "\"body\" BLOB NOT NULL)") < 0)
        goto out;
    if (check(db, sqlite3_prepare_v2(db, "INSERT INTO \"records\" (\"seq\", \"body\") "
                                     "VALUES (?1, ?2)", -1, &ins, NULL), SQLITE_OK,
              "prepare insert") < 0)
        goto out;
    for (uint64_t seq = 0; seq < n; ) {
        if (exec(db, "BEGIN") < 0)
            goto out;
        for (uint64_t i = 0; i < batch && seq < n; i++, seq++) {
            cmp_record_fill(buf, size, seq);
            if (check(db, sqlite3_bind_int64(ins, 1, (sqlite3_int64)seq), SQLITE_OK, "bind seq") < 0 ||
                check(db, sqlite3_bind_blob(ins, 2, buf, (int)size, SQLITE_STATIC), SQLITE_OK,
                      "bind body") < 0 ||
                check(db, sqlite3_step(ins), SQLITE_DONE, "insert") < 0 ||
                check(db, sqlite3_reset(ins), SQLITE_OK, "reset insert") < 0)
                goto out;
        }
        if (exec(db, "COMMIT") < 0)
            goto out;
    }
    rc = 0;
out:
    sqlite3_finalize(ins);
    if (db != NULL && sqlite3_close(db) != SQLITE_OK) {
        fprintf(stderr, PROG ": close %s: %s\n", path, sqlite3_errmsg(db));
        rc = -1;
    }
    free(buf);
    return rc;
}

int main(int argc, char **argv)
{
    uint64_t n = 0, size = 0, batch = DEFAULT_BATCH;

    if (argc != 4 && argc != 5) {
        fprintf(stderr, "usage: " PROG " NEW_DB_PATH N SIZE [BATCH]\n");
        return 2;
    }
    if (cmp_parse_count(argv[2], "N", UINT32_MAX, &n) < 0 ||
        cmp_parse_count(argv[3], "SIZE", CMP_RECORD_MAX, &size) < 0 ||
        (argc == 5 && cmp_parse_count(argv[4], "BATCH", UINT32_MAX, &batch) < 0))
        return 2;
    if (size < 16) {
        fprintf(stderr, PROG ": SIZE must be at least 16, got %" PRIu64 "\n", size);
        return 2;
    }
    return run(argv[1], n, (size_t)size, batch) == 0 ? 0 : 1;
}
