/* cmp_liangdi.c: the liangdi contestant's helpers: fill a sender's outbox with N activity
 * records through the store's one write path, wait for a receiver to have taken N from
 * the broker (held durably, applied or in its inbox), and wait for it to hold N applied. */
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "change.h"
#include "cmp_common.h"
#include "error.h"
#include "schema.h"
#include "store.h"

#define PROG       "cmp_liangdi"
#define GROUP      4096          /* records per store transaction while filling */
#define NOTE_TEXT  "参加支部主题党日，学习党章党规，缴纳党费。"
#define POLL_NS    (10 * 1000 * 1000)
#define TAKEN_POLL_NS (1000 * 1000)   /* 1 ms: the drain phase ends at the last batch */

/* Writes into note[0..size) + NUL a note of exactly `size` bytes of UTF-8: the record's
 * number, Chinese text cut at a character boundary, and '.' to make up the length. */
static void make_note(char *note, size_t size, uint64_t seq)
{
    static const char text[] = NOTE_TEXT;
    size_t len = (size_t)snprintf(note, size + 1, "第%" PRIu64 "条 ", seq);
    size_t t = 0;

    if (len > size)
        len = size;
    while (len < size) {
        unsigned char ch = (unsigned char)text[t];
        size_t clen = ch < 0x80 ? 1 : ch < 0xE0 ? 2 : ch < 0xF0 ? 3 : 4;

        if (len + clen > size)
            break;
        memcpy(note + len, text + t, clen);
        len += clen;
        t += clen;
        if (text[t] == '\0')
            t = 0;
    }
    while (len < size)
        note[len++] = '.';
    note[len] = '\0';
}

/* Writes n study activities for `member`, each with a note of `size` bytes, in groups of
 * GROUP per transaction.  0, or a negative LD_E* code with err set. */
static int fill(const char *db, const char *member, uint64_t n, size_t size, ld_error_t *err)
{
    nd_store_t *store = nd_store_open(db, false, err);
    char *note = malloc(size + 1);
    ld_change_t c;
    bool open_group = false;
    int rc = LD_ENOMEM;

    ld_change_init(&c);
    if (store == NULL) {
        rc = err->code;
        goto out;
    }
    if (note == NULL) {
        ld_error_set(err, LD_ENOMEM, "out of memory for a note of %zu bytes", size);
        goto out;
    }
    for (uint64_t seq = 0; seq < n; seq++) {
        if (!open_group) {
            rc = nd_store_begin(store, err);
            if (rc != 0)
                goto out;
            open_group = true;
        }
        ld_change_clear(&c);
        c.kind = LD_KIND_ACTIVITY;
        make_note(note, size, seq);
        rc = ld_change_set(&c, "member", member, err);
        if (rc == 0)
            rc = ld_change_set(&c, "date", "2010-05-04", err);
        if (rc == 0)
            rc = ld_change_set(&c, "kind", "study", err);
        if (rc == 0)
            rc = ld_change_set(&c, "note", note, err);
        if (rc == 0)
            rc = nd_store_create(store, &c, err);
        if (rc != 0)
            goto out;
        if ((seq + 1) % GROUP == 0 || seq + 1 == n) {
            rc = nd_store_commit(store, err);
            open_group = false;
            if (rc != 0)
                goto out;
        }
    }
    rc = 0;
out:
    if (open_group)
        nd_store_rollback(store);
    ld_change_clear(&c);
    nd_store_destroy(&store);
    free(note);
    return rc;
}

/* The number of live activities in the store at `db` (read-only), or -1 with the reason
 * printed. */
static int64_t count_activities(sqlite3 *db)
{
    const ld_kind_def_t *def = ld_schema_kind(LD_KIND_ACTIVITY);
    sqlite3_stmt *st = NULL;
    char sql[160];
    int64_t count = -1;
    int rc;

    snprintf(sql, sizeof sql, "SELECT count(*) FROM \"%s\" WHERE coalesce(\"deleted\", 0) = 0",
             def->table);
    rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        count = sqlite3_column_int64(st, 0);
    else if (rc != SQLITE_BUSY)   /* the daemon holds a lock: ask again */
        fprintf(stderr, PROG ": counting %s: %s\n", def->table, sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return rc == SQLITE_BUSY ? 0 : count;
}

/* The receiver's store at `path`, read-only, waiting up to a second for its locks; NULL
 * with the reason printed. */
static sqlite3 *open_receiver(const char *path)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL);

    if (rc != SQLITE_OK) {
        fprintf(stderr, PROG ": open %s: %s\n", path, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_busy_timeout(db, 1000);
    return db;
}

/* The one number `sql` returns, or -1 (a lock, or no such table yet). */
static int64_t query_i64(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    int64_t v = -1;

    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* The highest rowid of the activities table (0 when empty, -1 on a lock): a lookup at
 * the end of the table, cheap enough to poll beside the receiver without taking its
 * CPU, which counting every row each time would. */
static int64_t last_activity_rowid(sqlite3 *db)
{
    char sql[96];

    snprintf(sql, sizeof sql, "SELECT coalesce(max(\"rowid\"), 0) FROM \"%s\"",
             ld_schema_kind(LD_KIND_ACTIVITY)->table);
    return query_i64(db, sql);
}

/* The activities the receiver holds applied: the table's last rowid says when n may
 * be there (rows are only added to it here), and only then are they counted.  -1 on an
 * error (printed). */
static int64_t applied_now(sqlite3 *db, uint64_t n)
{
    int64_t last = last_activity_rowid(db);
    return last >= 0 && (uint64_t)last < n ? last : count_activities(db);
}

/* The activities the receiver has taken: the table's last rowid (rows are only added to
 * it here, so it is their count) plus the changes waiting in its inbox, in one statement,
 * so that a batch moving from the inbox to the table counts once.  0 on a lock. */
static int64_t taken_now(sqlite3 *db, uint64_t n)
{
    char sql[200];

    (void)n;
    snprintf(sql, sizeof sql, "SELECT coalesce((SELECT max(\"rowid\") FROM \"%s\"), 0) + "
             "(SELECT coalesce(sum(\"count\"), 0) FROM \"inbox\")",
             ld_schema_kind(LD_KIND_ACTIVITY)->table);
    int64_t taken = query_i64(db, sql);
    return taken < 0 ? 0 : taken;
}

/* Waits until `now` says the receiver's store at `path` has n activities (`what`: held
 * or taken), asking every pause_ns for up to timeout_s.  0, or -1 with what was there
 * printed. */
static int wait_for(const char *path, uint64_t n, uint64_t timeout_s, long pause_ns,
                    int64_t (*now)(sqlite3 *db, uint64_t n), const char *what)
{
    sqlite3 *db = open_receiver(path);
    double deadline = cmp_now() + (double)timeout_s;
    struct timespec pause = { 0, pause_ns };
    int64_t count = 0;

    if (db == NULL)
        return -1;
    while ((count = now(db, n)) >= 0 && (uint64_t)count < n && cmp_now() < deadline)
        nanosleep(&pause, NULL);
    sqlite3_close(db);
    if (count >= 0 && (uint64_t)count >= n)
        return 0;
    if (count >= 0)
        fprintf(stderr, PROG ": %s %s %" PRId64 " of %" PRIu64 " activities after %" PRIu64
                " s\n", path, what, count, n, timeout_s);
    return -1;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: " PROG " fill DB MEMBER_ID N SIZE     (N study activities, notes of SIZE bytes)\n"
            "       " PROG " taken DB N TIMEOUT_S         (until DB took N activities)\n"
            "       " PROG " wait DB N TIMEOUT_S          (until DB holds N activities)\n");
}

int main(int argc, char **argv)
{
    ld_error_t err;
    uint64_t n = 0, size = 0, timeout_s = 0;

    ld_error_clear(&err);
    if (argc == 6 && strcmp(argv[1], "fill") == 0) {
        if (cmp_parse_count(argv[4], "N", UINT32_MAX, &n) < 0 ||
            cmp_parse_count(argv[5], "SIZE", 2000, &size) < 0)
            return 2;
        if (size < 16) {
            fprintf(stderr, PROG ": SIZE must be at least 16, got %" PRIu64 "\n", size);
            return 2;
        }
        if (fill(argv[2], argv[3], n, (size_t)size, &err) != 0) {
            fprintf(stderr, PROG ": fill %s: %s\n", argv[2], err.msg);
            return 1;
        }
        return 0;
    }
    if (argc == 5 && (strcmp(argv[1], "wait") == 0 || strcmp(argv[1], "taken") == 0)) {
        if (cmp_parse_count(argv[3], "N", UINT32_MAX, &n) < 0 ||
            cmp_parse_count(argv[4], "TIMEOUT_S", 3600, &timeout_s) < 0)
            return 2;
        if (strcmp(argv[1], "taken") == 0)
            return wait_for(argv[2], n, timeout_s, TAKEN_POLL_NS, taken_now, "took") == 0 ? 0 : 1;
        return wait_for(argv[2], n, timeout_s, POLL_NS, applied_now, "holds") == 0 ? 0 : 1;
    }
    usage();
    return 2;
}
