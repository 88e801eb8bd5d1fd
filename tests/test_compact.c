/* test_compact.c: compacting a store in place (proto/compact.h): an old store of 4 KiB
 * pages with many rows deleted comes out with 16 KiB pages, every row and smaller; a
 * store open elsewhere is refused and left as it was; nothing opens it meanwhile; a
 * compaction that cannot write says why; and one killed at any moment leaves the store
 * whole. */
#include <criterion/criterion.h>
#include <ftw.h>
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
#include <time.h>
#include <unistd.h>
#include "compact.h"

#define ROWS     20000
#define BODY_LEN 300

static char dir[PATH_MAX];
static char db_path[PATH_MAX + 16];

static void setup(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/ld-compact-XXXXXX",
             tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(db_path, sizeof db_path, "%s/store.db", dir);
    /* VACUUM's copy goes to the temp folder: this test's own. */
    setenv("SQLITE_TMPDIR", dir, 1);
}

static int remove_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void teardown(void)
{
    nftw(dir, remove_one, 8, FTW_DEPTH | FTW_PHYS);
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

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
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
    cr_assert_eq(stats.page_after, LD_COMPACT_PAGE_SIZE);
    /* half the rows were deleted: the file must give most of their pages back */
    cr_assert_lt(stats.bytes_after * 10, stats.bytes_before * 7, "%lld bytes, then %lld",
                 stats.bytes_before, stats.bytes_after);
    char said[128];
    ld_compact_describe(&stats, said, sizeof said);
    cr_assert(strstr(said, "pages of 4096 bytes to 16384") != NULL, "%s", said);
    sqlite3_close(db);

    db = open_store();
    char mode[16];
    query_text(db, "PRAGMA journal_mode", mode, sizeof mode);
    cr_assert_str_eq(mode, "wal", "the store is back in WAL mode");
    cr_assert_eq(query_int(db, "PRAGMA page_size"), LD_COMPACT_PAGE_SIZE);
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
    char mode[16];
    query_text(daemon, "PRAGMA journal_mode", mode, sizeof mode);
    cr_assert_str_eq(mode, "wal");
    cr_assert_eq(query_int(daemon, "PRAGMA page_size"), 4096);
    cr_assert_eq(contents(daemon), before);
    sqlite3_close(daemon);

    /* and once it is gone, compacting goes ahead */
    db = open_store();
    cr_assert_eq(ld_compact(db, db_path, &stats, &err), 0, "%s", err.msg);
    sqlite3_close(db);
    cr_assert_eq(contents_now(), before);
}

/* A compaction that cannot write (files limited to 1 MB: a full disk, as the copy and the
 * journal see it) fails naming the step and SQLite's reason, and leaves the store as it
 * was.  It runs in a child, which alone has the limit. */
Test(compact, a_compaction_that_cannot_write_says_why_and_leaves_the_store_as_it_was)
{
    make_old_store();
    uint64_t before = contents_now();
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        struct rlimit lim = { 1 << 20, 1 << 20 };
        sqlite3 *child = NULL;
        ld_compact_stats_t s;
        ld_error_t e;
        signal(SIGXFSZ, SIG_IGN);                  /* a write past the limit fails instead */
        if (setrlimit(RLIMIT_FSIZE, &lim) != 0 || sqlite3_open(db_path, &child) != SQLITE_OK)
            _exit(3);
        int rc = ld_compact(child, db_path, &s, &e);
        sqlite3_close(child);
        ssize_t w = write(fds[1], e.msg, strlen(e.msg) + 1);
        _exit(rc == LD_EIO && w > 0 ? 0 : 4);
    }
    close(fds[1]);
    char msg[LD_ERROR_MSG_MAX] = "";
    ssize_t got = read(fds[0], msg, sizeof msg - 1);
    close(fds[0]);
    int st = 0;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the compaction did not fail with LD_EIO "
              "(status %d): %s", st, got > 0 ? msg : "");
    cr_assert(strstr(msg, "compacting failed while rewriting it: ") != NULL, "%s", msg);
    cr_assert(strstr(msg, "not an error") == NULL, "SQLite's reason is kept: %s", msg);
    cr_assert(strstr(msg, "(the store is as it was)") != NULL, "%s", msg);

    sqlite3 *db = open_store();
    assert_whole(db);
    char mode[16];
    query_text(db, "PRAGMA journal_mode", mode, sizeof mode);
    cr_assert_str_eq(mode, "wal");
    cr_assert_eq(query_int(db, "PRAGMA page_size"), 4096);
    cr_assert_eq(contents(db), before);
    sqlite3_close(db);
}

/* The compaction runs in a child, killed at fractions of the time one takes: every kill
 * must leave the store whole, with the same rows, at the old page size or the new. */
Test(compact, a_compaction_killed_at_any_moment_leaves_the_store_whole)
{
    make_old_store();
    uint64_t before = contents_now();

    /* how long one takes here, on a copy's worth of work: a first compaction of a twin */
    char twin[PATH_MAX + 32];
    snprintf(twin, sizeof twin, "%s/twin.db", dir);
    cr_assert_eq(rename(db_path, twin), 0);
    make_old_store();
    sqlite3 *db = open_store();
    ld_compact_stats_t stats;
    ld_error_t err;
    double t0 = now_s();
    cr_assert_eq(ld_compact(db, db_path, &stats, &err), 0, "%s", err.msg);
    double took = now_s() - t0;
    sqlite3_close(db);
    cr_assert_eq(remove(db_path), 0);
    cr_assert_eq(rename(twin, db_path), 0);

    int killed_mid_rewrite = 0;
    for (int tenth = 0; tenth <= 10; tenth++) {
        pid_t pid = fork();
        cr_assert_neq(pid, -1);
        if (pid == 0) {
            sqlite3 *child = NULL;
            ld_compact_stats_t s;
            ld_error_t e;
            if (sqlite3_open(db_path, &child) != SQLITE_OK)
                _exit(3);
            _exit(ld_compact(child, db_path, &s, &e) == 0 ? 0 : 4);
        }
        usleep((useconds_t)(took * 1e6 * tenth / 10.0));
        kill(pid, SIGKILL);
        int st = 0;
        cr_assert_eq(waitpid(pid, &st, 0), pid);
        cr_assert(WIFSIGNALED(st) || WEXITSTATUS(st) == 0, "the child failed (%d)", st);
        char journal[sizeof db_path + 16];
        snprintf(journal, sizeof journal, "%s-journal", db_path);
        struct stat sb;
        if (WIFSIGNALED(st) && stat(journal, &sb) == 0 && sb.st_size > 0)
            killed_mid_rewrite++;

        db = open_store();                          /* rolls a hot journal back */
        assert_whole(db);
        long long page = query_int(db, "PRAGMA page_size");
        cr_assert(page == 4096 || page == LD_COMPACT_PAGE_SIZE, "page size %lld", page);
        cr_assert_eq(contents(db), before, "kill at %d/10 of %.3f s", tenth, took);
        sqlite3_close(db);
    }
    /* The rewrite is most of a compaction: some kill must have landed in it, or this test
     * did not test the rollback at all. */
    cr_log_info("%d of 11 kills landed in the rewrite (one compaction takes %.3f s)",
                killed_mid_rewrite, took);
    cr_assert_gt(killed_mid_rewrite, 0, "no kill landed while the journal was there "
                 "(one compaction takes %.3f s)", took);
}
