/* compact.c: rewrites a SQLite store in place with today's page size, the store held by
 * one connection from the first step to the last.
 *
 * Why in place.  `VACUUM INTO` a new file and a rename over the old one would leave a
 * process that still had the old file open (a daemon started meanwhile) writing to a
 * file no longer in the folder: its writes would be lost.  In place, SQLite's own locks
 * keep every other connection out, and the rewrite is one transaction of a rollback
 * journal, which a crash rolls back whole the next time the store is opened.
 *
 * Why out of WAL.  A WAL store's page size is fixed; VACUUM changes it only under a
 * rollback journal.  So: locking_mode EXCLUSIVE (every lock taken is kept until the
 * connection closes), journal_mode DELETE (which needs the store alone: another
 * connection makes it fail with SQLITE_BUSY, before anything changed), the new page size,
 * VACUUM, journal_mode WAL.  A crash between the steps leaves a store in DELETE mode,
 * whole, which the next open puts back into WAL mode. */
#include "compact.h"

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* The bytes of path + suffix, 0 if there is no such file. */
static long long file_bytes(const char *path, const char *suffix)
{
    char name[PATH_MAX + 8];
    struct stat sb;
    snprintf(name, sizeof name, "%s%s", path, suffix);
    return stat(name, &sb) == 0 ? (long long)sb.st_size : 0;
}

static long long store_bytes(const char *path)
{
    return file_bytes(path, "") + file_bytes(path, "-wal");
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs one statement to its end, keeping the text of its last row's first column in
 * out (size > 0) when out is not NULL.  SQLITE_OK or SQLite's error code. */
static int pragma(sqlite3 *db, const char *sql, char *out, size_t size)
{
    sqlite3_stmt *st = NULL;
    if (out != NULL)
        out[0] = '\0';
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const unsigned char *v = sqlite3_column_text(st, 0);
        if (out != NULL && v != NULL)
            snprintf(out, size, "%s", (const char *)v);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

int ld_compact(sqlite3 *db, const char *path, ld_compact_stats_t *stats, ld_error_t *err)
{
    char mode[16], page[16], temp[8], cache[24], sql[64], why[256] = "";
    const char *step = "reading its page size";
    bool left_wal = false;
    double start = now_s();
    memset(stats, 0, sizeof *stats);
    stats->bytes_before = store_bytes(path);

    int rc = pragma(db, "PRAGMA page_size", page, sizeof page);
    stats->page_before = atoi(page);
    if (rc == SQLITE_OK)
        rc = pragma(db, "PRAGMA temp_store", temp, sizeof temp);
    if (rc == SQLITE_OK)
        rc = pragma(db, "PRAGMA cache_size", cache, sizeof cache);
    if (rc == SQLITE_OK) {
        step = "taking it for this connection alone";
        rc = pragma(db, "PRAGMA locking_mode = EXCLUSIVE", NULL, 0);
    }
    if (rc == SQLITE_OK) {
        step = "leaving WAL mode";
        rc = pragma(db, "PRAGMA journal_mode = DELETE", mode, sizeof mode);
        left_wal = rc == SQLITE_OK && strcmp(mode, "delete") == 0;
        if (rc == SQLITE_OK && !left_wal)
            rc = SQLITE_BUSY;                  /* SQLite kept the mode it could not leave */
    }
    if (rc == SQLITE_OK) {
        step = "setting the page size";
        snprintf(sql, sizeof sql, "PRAGMA page_size = %d", LD_STORE_PAGE_SIZE);
        rc = pragma(db, sql, NULL, 0);
    }
    /* The copy VACUUM builds goes to a temp file, not to memory as large as the store,
     * through a small cache: a 241 MB node store took 0.8 s and 27 MB of memory with
     * 4 MiB of cache, and 1.0 s and 178 MB with the node's 32 MiB (the store's cache and
     * the copy's). */
    if (rc == SQLITE_OK)
        rc = pragma(db, "PRAGMA temp_store = FILE", NULL, 0);
    if (rc == SQLITE_OK)
        rc = pragma(db, "PRAGMA cache_size = -4096", NULL, 0);
    if (rc == SQLITE_OK) {
        step = "rewriting it";
        rc = pragma(db, "VACUUM", NULL, 0);
        if (rc != SQLITE_OK)                   /* before the pragmas below replace it */
            snprintf(why, sizeof why, "%s", sqlite3_errmsg(db));
        snprintf(sql, sizeof sql, "PRAGMA temp_store = %d", atoi(temp));
        pragma(db, sql, NULL, 0);
        snprintf(sql, sizeof sql, "PRAGMA cache_size = %lld", atoll(cache));
        pragma(db, sql, NULL, 0);
    }
    /* SQLite's own words for the failure, before the steps below replace them */
    if (rc != SQLITE_OK && why[0] == '\0')
        snprintf(why, sizeof why, "%s", sqlite3_errmsg(db));
    /* Back to WAL whatever happened since leaving it. */
    int back = SQLITE_OK;
    if (left_wal) {
        back = pragma(db, "PRAGMA journal_mode = WAL", mode, sizeof mode);
        if (back == SQLITE_OK && strcmp(mode, "wal") != 0)
            back = SQLITE_ERROR;
    }
    if (pragma(db, "PRAGMA page_size", page, sizeof page) == SQLITE_OK)
        stats->page_after = atoi(page);
    stats->bytes_after = store_bytes(path);
    stats->seconds = now_s() - start;

    if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED)
        return ld_error_set(err, LD_EBUSY, "%s is open in another process (compacting needs "
                            "it alone); nothing was changed", path);
    if (rc != SQLITE_OK)
        return ld_error_set(err, LD_EIO, "%s: compacting failed while %s: %s%s (the store is "
                            "as it was)", path, step, why,
                            (rc & 0xff) == SQLITE_FULL ? "; the copy goes to $SQLITE_TMPDIR, "
                            "$TMPDIR or /var/tmp, the journal beside the store" : "");
    if (back != SQLITE_OK)
        return ld_error_set(err, LD_EIO, "%s: compacted, but going back to WAL mode failed: "
                            "%s (the next open does it)", path, sqlite3_errstr(back));
    return 0;
}

void ld_compact_describe(const ld_compact_stats_t *stats, char *out, size_t size)
{
    snprintf(out, size, "%.1f MB to %.1f MB, pages of %d bytes to %d, in %.1f s",
             (double)stats->bytes_before / 1e6, (double)stats->bytes_after / 1e6,
             stats->page_before, stats->page_after, stats->seconds);
}

int ld_store_space(sqlite3 *db, const char *path, ld_store_space_t *space, ld_error_t *err)
{
    char page[16], pages[24], free_pages[24];
    memset(space, 0, sizeof *space);
    int rc = pragma(db, "PRAGMA page_size", page, sizeof page);
    if (rc == SQLITE_OK)
        rc = pragma(db, "PRAGMA page_count", pages, sizeof pages);
    if (rc == SQLITE_OK)
        rc = pragma(db, "PRAGMA freelist_count", free_pages, sizeof free_pages);
    if (rc != SQLITE_OK)
        return ld_error_set(err, LD_EIO, "%s: reading how the store uses its file: %s", path,
                            sqlite3_errmsg(db));
    space->bytes = store_bytes(path);
    space->page_size = atoi(page);
    space->pages = atoll(pages);
    space->free_pages = atoll(free_pages);
    return 0;
}

bool ld_compact_would_help(const ld_store_space_t *space)
{
    long long free_bytes = space->free_pages * space->page_size;
    return space->page_size < LD_STORE_PAGE_SIZE ||
           (free_bytes >= 1000000 && space->free_pages * 4 >= space->pages);
}

void ld_store_space_describe(const ld_store_space_t *space, char *out, size_t size)
{
    snprintf(out, size, "%.1f MB, pages of %d bytes, %.1f MB of them free",
             (double)space->bytes / 1e6, space->page_size,
             (double)(space->free_pages * space->page_size) / 1e6);
}
