/* test_compact.c: compacting a store in place (proto/compact.h): an old store of 4 KiB
 * pages with many rows deleted comes out with 16 KiB pages, every row and smaller; a
 * store open elsewhere is refused and left as it was; nothing opens it meanwhile; a
 * compaction that cannot write says why; and one that crashes before any of its writes
 * leaves the store whole. */
#include <criterion/criterion.h>
#include <limits.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "compact.h"
#include "tmpdir.h"

#define ROWS     20000
#define BODY_LEN 300

static char dir[HN_PATH_MAX];
static char db_path[PATH_MAX + 16];

static void setup(void)
{
    cr_assert_eq(hn_tmpdir_new("compact", dir), 0);
    snprintf(db_path, sizeof db_path, "%s/store.db", dir);
    /* VACUUM's copy goes to the temp folder: this test's own. */
    setenv("SQLITE_TMPDIR", dir, 1);
}

static void teardown(void)
{
    hn_tmpdir_remove(dir);
}

TestSuite(compact, .init = setup, .fini = teardown, .timeout = 120);

/* ---- helpers ---- */

static sqlite3 *open_store(void)
{
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open(db_path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 2000);
    return db;
}

static void exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, &msg), SQLITE_OK, "%s: %s", sql, msg);
}

static long long query_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s: %s", sql,
                 sqlite3_errmsg(db));
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW, "%s: %s", sql, sqlite3_errmsg(db));
    long long v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static void query_text(sqlite3 *db, const char *sql, char *out, size_t size)
{
    sqlite3_stmt *st = NULL;
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s", sql);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW, "%s: %s", sql, sqlite3_errmsg(db));
    snprintf(out, size, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
}

/* A store as an older liangdi left it: WAL, 4 KiB pages, a schema version, a table of
 * ROWS changes with an index, every other one deleted since (a drained backlog). */
static void make_old_store(void)
{
    sqlite3 *db = open_store();
    exec(db, "PRAGMA page_size = 4096; PRAGMA journal_mode = WAL; PRAGMA user_version = 5;"
             "CREATE TABLE \"changes\"(\"origin\" TEXT NOT NULL, \"seq\" INTEGER NOT NULL, "
             "\"body\" BLOB NOT NULL, UNIQUE(\"origin\", \"seq\"));"
             "CREATE TABLE \"names\"(\"id\" TEXT PRIMARY KEY, \"name\" TEXT) WITHOUT ROWID;"
             "INSERT INTO \"names\" VALUES ('m1', '林术平'), ('m2', '张厚英');");
    sqlite3_stmt *st = NULL;
    char body[BODY_LEN];
    exec(db, "BEGIN");
    cr_assert_eq(sqlite3_prepare_v2(db, "INSERT INTO \"changes\" VALUES ('zhuyuan', ?1, ?2)",
                                    -1, &st, NULL), SQLITE_OK);
    for (int i = 1; i <= ROWS; i++) {
        int len = snprintf(body, sizeof body, "第%d条变更 ", i);
        memset(body + len, 'a' + i % 26, sizeof body - (size_t)len);
        sqlite3_bind_int(st, 1, i);
        sqlite3_bind_blob(st, 2, body, sizeof body, SQLITE_TRANSIENT);
        cr_assert_eq(sqlite3_step(st), SQLITE_DONE);
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    exec(db, "COMMIT; DELETE FROM \"changes\" WHERE \"seq\" % 2 = 0;");
    cr_assert_eq(query_int(db, "PRAGMA page_size"), 4096);
    sqlite3_close(db);
}

/* FNV-1a over every row of both tables, in key order, and the schema version: equal
 * only when the store holds the same things. */
static uint64_t contents(sqlite3 *db)
{
    static const char *const queries[] = {
        "SELECT \"origin\", \"seq\", \"body\" FROM \"changes\" ORDER BY \"origin\", \"seq\"",
        "SELECT \"id\", \"name\" FROM \"names\" ORDER BY \"id\"",
        "PRAGMA user_version",
    };
    uint64_t h = 1469598103934665603ULL;
    for (size_t q = 0; q < sizeof queries / sizeof queries[0]; q++) {
        sqlite3_stmt *st = NULL;
        cr_assert_eq(sqlite3_prepare_v2(db, queries[q], -1, &st, NULL), SQLITE_OK, "%s: %s",
                     queries[q], sqlite3_errmsg(db));
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            for (int c = 0; c < sqlite3_column_count(st); c++) {
                const unsigned char *p = sqlite3_column_blob(st, c);
                int n = sqlite3_column_bytes(st, c);
                for (int i = 0; i < n; i++)
                    h = (h ^ p[i]) * 1099511628211ULL;
                h = (h ^ 0xff) * 1099511628211ULL;
            }
        }
        cr_assert_eq(rc, SQLITE_DONE, "%s: %s", queries[q], sqlite3_errmsg(db));
        sqlite3_finalize(st);
    }
    return h;
}

/* The store's contents, read by a connection of its own. */
static uint64_t contents_now(void)
{
    sqlite3 *db = open_store();
    uint64_t h = contents(db);
    sqlite3_close(db);
    return h;
}

static void assert_whole(sqlite3 *db)
{
    char ok[64];
    query_text(db, "PRAGMA integrity_check", ok, sizeof ok);
    cr_assert_str_eq(ok, "ok");
}

/* The old store untouched, read through db: whole, in WAL mode, 4 KiB pages, and the
 * contents it had (`before`). */
static void assert_as_it_was(sqlite3 *db, uint64_t before)
{
    char mode[16];
    assert_whole(db);
    query_text(db, "PRAGMA journal_mode", mode, sizeof mode);
    cr_assert_str_eq(mode, "wal");
    cr_assert_eq(query_int(db, "PRAGMA page_size"), 4096);
    cr_assert_eq(contents(db), before);
}

/* ---- tests ---- */

Test(compact, an_old_store_comes_out_with_16_KiB_pages_every_row_and_smaller)
{
    make_old_store();
    uint64_t before = contents_now();
    sqlite3 *db = open_store();
    ld_compact_stats_t stats;
    ld_error_t err;
    cr_assert_eq(ld_compact(db, db_path, &stats, &err), 0, "%s", err.msg);
    cr_assert_eq(stats.page_before, 4096);
    cr_assert_eq(stats.page_after, LD_STORE_PAGE_SIZE);
    /* half the rows were deleted: the file must give most of their pages back */
    cr_assert_lt(stats.bytes_after * 10, stats.bytes_before * 7, "%lld bytes, then %lld",
                 stats.bytes_before, stats.bytes_after);
    char said[128];
    ld_compact_describe(&stats, said, sizeof said);
    cr_assert(strstr(said, "pages of 4096 bytes to 16384, in ") != NULL, "%s", said);
    cr_assert_geq(stats.seconds, 0.0);
    sqlite3_close(db);

    db = open_store();
    char mode[16];
    query_text(db, "PRAGMA journal_mode", mode, sizeof mode);
    cr_assert_str_eq(mode, "wal", "the store is back in WAL mode");
    cr_assert_eq(query_int(db, "PRAGMA page_size"), LD_STORE_PAGE_SIZE);
    cr_assert_eq(query_int(db, "PRAGMA freelist_count"), 0);
    assert_whole(db);
    cr_assert_eq(contents(db), before, "every row, the same, and the schema version");
    sqlite3_close(db);
}

Test(compact, no_other_connection_gets_the_store_until_the_compacting_one_closes)
{
    make_old_store();
    sqlite3 *db = open_store();
    ld_compact_stats_t stats;
    ld_error_t err;
    cr_assert_eq(ld_compact(db, db_path, &stats, &err), 0, "%s", err.msg);
    sqlite3 *other = open_store();
    sqlite3_busy_timeout(other, 0);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(other, "SELECT count(*) FROM \"changes\"", -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    cr_assert_eq(rc & 0xff, SQLITE_BUSY, "another connection read it (rc %d)", rc);
    sqlite3_finalize(st);
    sqlite3_close(db);
    cr_assert_eq(query_int(other, "SELECT count(*) FROM \"changes\""), ROWS / 2);
    sqlite3_close(other);
}

Test(compact, a_store_open_in_another_connection_is_refused_and_left_as_it_was)
{
    make_old_store();
    uint64_t before = contents_now();
    sqlite3 *daemon = open_store();                 /* as a running daemon holds it */
    cr_assert_eq(query_int(daemon, "SELECT count(*) FROM \"names\""), 2);
    sqlite3 *db = open_store();
    ld_compact_stats_t stats;
    ld_error_t err;
    cr_assert_eq(ld_compact(db, db_path, &stats, &err), LD_EBUSY);
    cr_assert(strstr(err.msg, "open in another process") != NULL, "%s", err.msg);
    cr_assert(strstr(err.msg, db_path) != NULL, "the message names the store: %s", err.msg);
    cr_assert(strstr(err.msg, "nothing was changed") != NULL, "%s", err.msg);
    sqlite3_close(db);

    /* the daemon goes on writing; the store is as it was */
    exec(daemon, "INSERT INTO \"names\" VALUES ('m3', '王亚')");
    exec(daemon, "DELETE FROM \"names\" WHERE \"id\" = 'm3'");
    assert_as_it_was(daemon, before);
    sqlite3_close(daemon);

    /* and once it is gone, compacting goes ahead */
    db = open_store();
    cr_assert_eq(ld_compact(db, db_path, &stats, &err), 0, "%s", err.msg);
    sqlite3_close(db);
    cr_assert_eq(contents_now(), before);
}

/* How a child sets itself up before it compacts. */
typedef enum child_setup {
    CHILD_FILES_UNDER_1_MB,       /* a write past 1 MB fails (a full disk, as it were) */
    CHILD_KILLED_AT_WRITE,        /* SIGKILL before its arg-th write, as a crash */
} child_setup_t;

/* ---- a crash at a chosen write: a VFS over the default one that counts every write to
 * the store, its journal and the copy VACUUM makes, and dies (SIGKILL) before write N.
 * What is on disk then is what a crash between two writes leaves. ---- */

typedef struct kill_file {
    sqlite3_file  base;
    sqlite3_file *real;            /* the default VFS's file, right after this struct */
} kill_file_t;

static sqlite3_vfs *real_vfs;
static sqlite3_vfs kill_vfs;
static long writes_seen;
static long kill_at_write;         /* 0: never */

#define REAL(f) (((kill_file_t *)(f))->real)

static int k_close(sqlite3_file *f) { return REAL(f)->pMethods->xClose(REAL(f)); }
static int k_read(sqlite3_file *f, void *b, int n, sqlite3_int64 o)
{
    return REAL(f)->pMethods->xRead(REAL(f), b, n, o);
}
static int k_write(sqlite3_file *f, const void *b, int n, sqlite3_int64 o)
{
    if (++writes_seen == kill_at_write)
        raise(SIGKILL);
    return REAL(f)->pMethods->xWrite(REAL(f), b, n, o);
}
static int k_truncate(sqlite3_file *f, sqlite3_int64 n)
{
    return REAL(f)->pMethods->xTruncate(REAL(f), n);
}
static int k_sync(sqlite3_file *f, int flags) { return REAL(f)->pMethods->xSync(REAL(f), flags); }
static int k_size(sqlite3_file *f, sqlite3_int64 *n)
{
    return REAL(f)->pMethods->xFileSize(REAL(f), n);
}
static int k_lock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xLock(REAL(f), l); }
static int k_unlock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xUnlock(REAL(f), l); }
static int k_reserved(sqlite3_file *f, int *out)
{
    return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}
static int k_control(sqlite3_file *f, int op, void *arg)
{
    return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}
static int k_sector(sqlite3_file *f) { return REAL(f)->pMethods->xSectorSize(REAL(f)); }
static int k_device(sqlite3_file *f)
{
    return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}
static int k_shm_map(sqlite3_file *f, int i, int size, int extend, void volatile **p)
{
    return REAL(f)->pMethods->xShmMap(REAL(f), i, size, extend, p);
}
static int k_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
    return REAL(f)->pMethods->xShmLock(REAL(f), offset, n, flags);
}
static void k_shm_barrier(sqlite3_file *f) { REAL(f)->pMethods->xShmBarrier(REAL(f)); }
static int k_shm_unmap(sqlite3_file *f, int del)
{
    return REAL(f)->pMethods->xShmUnmap(REAL(f), del);
}

static const sqlite3_io_methods kill_io = {
    2, k_close, k_read, k_write, k_truncate, k_sync, k_size, k_lock, k_unlock, k_reserved,
    k_control, k_sector, k_device, k_shm_map, k_shm_lock, k_shm_barrier, k_shm_unmap,
    NULL, NULL,
};

static int k_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out)
{
    (void)vfs;
    kill_file_t *k = (kill_file_t *)f;
    k->real = (sqlite3_file *)(k + 1);
    int rc = real_vfs->xOpen(real_vfs, name, k->real, flags, out);
    k->base.pMethods = rc == SQLITE_OK ? &kill_io : NULL;
    return rc;
}

/* Registers the VFS "ld_kill" once. */
static void kill_vfs_register(void)
{
    if (real_vfs != NULL)
        return;
    real_vfs = sqlite3_vfs_find(NULL);
    cr_assert_not_null(real_vfs);
    kill_vfs = *real_vfs;
    kill_vfs.iVersion = real_vfs->iVersion;
    kill_vfs.zName = "ld_kill";
    kill_vfs.szOsFile = (int)sizeof(kill_file_t) + real_vfs->szOsFile;
    kill_vfs.xOpen = k_open;
    kill_vfs.pNext = NULL;
    cr_assert_eq(sqlite3_vfs_register(&kill_vfs, 0), SQLITE_OK);
}

/* Compacts the store in a child set up as `setup` says (arg: the fatal write) and returns
 * its wait status; what ld_compact said goes to msg.  The child exits 0 on success, 4
 * on LD_EIO, 5 on another error, 3 if it could not start. */
static int compact_in_child(child_setup_t setup, long arg, char msg[LD_ERROR_MSG_MAX])
{
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        struct rlimit lim = { 1 << 20, 1 << 20 };
        sqlite3 *child = NULL;
        ld_compact_stats_t s;
        ld_error_t e;
        close(fds[0]);
        if (setup == CHILD_FILES_UNDER_1_MB) {
            signal(SIGXFSZ, SIG_IGN);              /* a write past the limit fails instead */
            if (setrlimit(RLIMIT_FSIZE, &lim) != 0)
                _exit(3);
        } else {
            writes_seen = 0;
            kill_at_write = arg;
        }
        if (sqlite3_open_v2(db_path, &child, SQLITE_OPEN_READWRITE,
                            setup == CHILD_KILLED_AT_WRITE ? "ld_kill" : NULL) != SQLITE_OK)
            _exit(3);
        int rc = ld_compact(child, db_path, &s, &e);
        sqlite3_close(child);
        ssize_t w = write(fds[1], rc != 0 ? e.msg : "", rc != 0 ? strlen(e.msg) + 1 : 1);
        _exit(w <= 0 ? 3 : rc == 0 ? 0 : rc == LD_EIO ? 4 : 5);
    }
    close(fds[1]);
    msg[0] = '\0';
    ssize_t got = read(fds[0], msg, LD_ERROR_MSG_MAX - 1);
    msg[got > 0 ? got : 0] = '\0';
    close(fds[0]);
    int st = 0;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    return st;
}

/* A compaction that cannot write (files limited to 1 MB: a full disk, as the copy and the
 * journal see it) fails naming the step and SQLite's reason, and leaves the store as it
 * was.  It runs in a child, which alone has the limit. */
Test(compact, a_compaction_that_cannot_write_says_why_and_leaves_the_store_as_it_was)
{
    make_old_store();
    uint64_t before = contents_now();
    char msg[LD_ERROR_MSG_MAX];
    int st = compact_in_child(CHILD_FILES_UNDER_1_MB, 0, msg);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 4, "the compaction did not fail with LD_EIO "
              "(status %d): %s", st, msg);
    cr_assert(strstr(msg, "compacting failed while rewriting it: ") != NULL, "%s", msg);
    cr_assert(strstr(msg, "not an error") == NULL, "SQLite's reason is kept: %s", msg);
    cr_assert(strstr(msg, "(the store is as it was)") != NULL, "%s", msg);

    sqlite3 *db = open_store();
    assert_as_it_was(db, before);
    sqlite3_close(db);
}

/* The compaction runs in a child that dies (SIGKILL) before its first write, and then
 * before each tenth of the writes one compaction makes: every crash must leave the store
 * whole, with the same rows, at the old page size or the new. */
Test(compact, a_compaction_killed_at_any_write_leaves_the_store_whole)
{
    make_old_store();
    uint64_t before = contents_now();
    kill_vfs_register();

    /* how many writes one makes, counted on a twin */
    char twin[PATH_MAX + 32];
    snprintf(twin, sizeof twin, "%s/twin.db", dir);
    cr_assert_eq(rename(db_path, twin), 0);
    make_old_store();
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READWRITE, "ld_kill"), SQLITE_OK);
    ld_compact_stats_t stats;
    ld_error_t err;
    writes_seen = 0;
    kill_at_write = 0;
    cr_assert_eq(ld_compact(db, db_path, &stats, &err), 0, "%s", err.msg);
    long writes = writes_seen;
    sqlite3_close(db);
    cr_assert_eq(remove(db_path), 0);
    cr_assert_eq(rename(twin, db_path), 0);
    cr_assert_gt(writes, 10, "a compaction of %d rows made %ld writes", ROWS, writes);

    int killed_mid_rewrite = 0;
    for (int tenth = 0; tenth <= 10; tenth++) {
        long at = tenth == 0 ? 1 : writes * tenth / 10;
        char msg[LD_ERROR_MSG_MAX];
        int st = compact_in_child(CHILD_KILLED_AT_WRITE, at, msg);
        cr_assert(WIFSIGNALED(st) || (WIFEXITED(st) && WEXITSTATUS(st) == 0),
                  "the child failed (%d): %s", st, msg);
        char journal[sizeof db_path + 16];
        snprintf(journal, sizeof journal, "%s-journal", db_path);
        struct stat sb;
        if (WIFSIGNALED(st) && stat(journal, &sb) == 0 && sb.st_size > 0)
            killed_mid_rewrite++;

        db = open_store();                          /* rolls a hot journal back */
        assert_whole(db);
        long long page = query_int(db, "PRAGMA page_size");
        cr_assert(page == 4096 || page == LD_STORE_PAGE_SIZE, "page size %lld", page);
        cr_assert_eq(contents(db), before, "killed before write %ld of %ld", at, writes);
        sqlite3_close(db);
    }
    /* The rewrite is most of a compaction: some crash must land in it, or this test did
     * not test the rollback at all. */
    cr_log_info("%d of 11 crashes landed in the rewrite (one compaction makes %ld writes)",
                killed_mid_rewrite, writes);
    cr_assert_gt(killed_mid_rewrite, 0, "no crash landed while the journal was there "
                 "(one compaction makes %ld writes)", writes);
}
