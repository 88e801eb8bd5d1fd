/* inbox.c: batches taken from the broker, kept until they are applied (inbox.h). */
#include "inbox.h"

#include <inttypes.h>
#include <sqlite3.h>
#include <stdbool.h>

#include "codec.h"

static const char put_sql[] =
    "INSERT INTO \"inbox\" (\"after\", \"last\", \"count\", \"body\") VALUES (?1, ?2, ?3, ?4)";
static const char oldest_sql[] =
    "SELECT \"id\", \"after\", \"last\", \"body\" FROM \"inbox\" ORDER BY \"id\" LIMIT 1";
static const char drop_sql[] = "DELETE FROM \"inbox\" WHERE \"id\" = ?1";
static const char depth_sql[] = "SELECT count(*), coalesce(sum(\"count\"), 0) FROM \"inbox\"";

/* Prepares sql on the store's connection; 0 or LD_EIO naming `what`. */
static int prepare(nd_store_t *store, const char *sql, sqlite3_stmt **st, const char *what,
                   ld_error_t *err)
{
    sqlite3 *db = nd_store_db(store);
    if (sqlite3_prepare_v2(db, sql, -1, st, NULL) != SQLITE_OK)
        return ld_error_set(err, LD_EIO, "inbox: %s: %s", what, sqlite3_errmsg(db));
    return 0;
}

/* Steps st to its end; 0, or LD_EIO naming `what`. */
static int step_done(nd_store_t *store, sqlite3_stmt *st, const char *what, ld_error_t *err)
{
    if (sqlite3_step(st) != SQLITE_DONE)
        return ld_error_set(err, LD_EIO, "inbox: %s: %s", what,
                            sqlite3_errmsg(nd_store_db(store)));
    return 0;
}

int nd_inbox_put(nd_store_t *store, const uint8_t *body, size_t len, uint64_t after,
                 uint64_t last, uint64_t count, ld_error_t *err)
{
    sqlite3_stmt *st = NULL;
    bool open = false;
    int rc = prepare(store, put_sql, &st, "storing a batch", err);
    if (rc == 0) {
        rc = nd_store_begin(store, err);
        open = rc == 0;
    }
    if (rc == 0) {
        if (sqlite3_bind_int64(st, 1, (sqlite3_int64)after) != SQLITE_OK
            || sqlite3_bind_int64(st, 2, (sqlite3_int64)last) != SQLITE_OK
            || sqlite3_bind_int64(st, 3, (sqlite3_int64)count) != SQLITE_OK
            || sqlite3_bind_blob64(st, 4, len ? (const void *)body : (const void *)"", len,
                                   SQLITE_STATIC) != SQLITE_OK)
            rc = ld_error_set(err, LD_EIO, "inbox: storing a batch: %s",
                              sqlite3_errmsg(nd_store_db(store)));
        else
            rc = step_done(store, st, "storing a batch", err);
    }
    if (rc == 0)
        rc = nd_store_set_cursor(store, last, err);
    if (rc == 0) {
        rc = nd_store_commit(store, err);
        open = false;
    }
    if (open)
        nd_store_rollback(store);
    sqlite3_finalize(st);
    nd_store_moved(store, len);
    return rc;
}

/* One inbox row, read: its id, cursor before, last position and body (the statement's,
 * valid until it is reset). */
typedef struct inbox_row {
    sqlite3_int64  id;
    uint64_t       after;
    uint64_t       last;
    const uint8_t *body;
    size_t         len;
} inbox_row_t;

/* Steps st to the oldest row and reads it into *row, leaving st on it for the caller
 * to reset: 1 found, 0 the inbox is empty, or < 0 with err set. */
static int read_oldest(nd_store_t *store, sqlite3_stmt *st, inbox_row_t *row, ld_error_t *err)
{
    int step = sqlite3_step(st);
    if (step == SQLITE_DONE)
        return 0;
    if (step != SQLITE_ROW)
        return ld_error_set(err, LD_EIO, "inbox: reading it: %s",
                            sqlite3_errmsg(nd_store_db(store)));
    row->id = sqlite3_column_int64(st, 0);
    row->after = (uint64_t)sqlite3_column_int64(st, 1);
    row->last = (uint64_t)sqlite3_column_int64(st, 2);
    row->body = sqlite3_column_blob(st, 3);
    row->len = (size_t)sqlite3_column_bytes(st, 3);
    if (row->body == NULL && row->len > 0)
        return ld_error_set(err, LD_ENOMEM, "inbox: out of memory reading a batch");
    return 1;
}

/* Applies the oldest batch and deletes it, in one transaction that also read it (so
 * that two processes applying at once do not both take it): 1 applied, 0 the inbox is
 * empty, or < 0 with err set and nothing applied.  *applied grows by the changes.  The
 * batch's changes are read one at a time as they are applied (nd_store_apply_taken). */
static int apply_oldest(nd_store_t *store, sqlite3_stmt *oldest, sqlite3_stmt *drop,
                        uint64_t *applied, ld_error_t *err)
{
    inbox_row_t row = { 0 };
    size_t done = 0;
    int rc = nd_store_begin(store, err);
    if (rc != 0)
        return rc;
    int found = read_oldest(store, oldest, &row, err);
    if (found <= 0) {
        sqlite3_reset(oldest);
        nd_store_rollback(store);
        return found;
    }
    ld_error_t aerr;
    ld_error_clear(&aerr);
    rc = nd_store_apply_taken(store, row.body, row.len, row.after, &done, &aerr);
    sqlite3_reset(oldest);            /* row.body is gone from here on */
    if (rc != 0) {
        rc = ld_error_set(err, rc, "applying the batch of positions %" PRIu64 " to %" PRIu64
                          ": %s", row.after + 1, row.last, aerr.msg);
    } else {
        sqlite3_bind_int64(drop, 1, row.id);
        rc = step_done(store, drop, "dropping an applied batch", err);
        sqlite3_reset(drop);
    }
    if (rc == 0)
        rc = nd_store_commit(store, err);
    else
        nd_store_rollback(store);
    if (rc == 0)
        *applied += done;
    return rc == 0 ? 1 : rc;
}

int nd_inbox_apply(nd_store_t *store, nd_inbox_progress_fn progress, void *ctx,
                   uint64_t *applied, ld_error_t *err)
{
    sqlite3_stmt *oldest = NULL, *drop = NULL;
    uint64_t count = 0, batches = 0, waiting = 0;
    int rc = prepare(store, oldest_sql, &oldest, "reading it", err);
    if (rc == 0)
        rc = prepare(store, drop_sql, &drop, "dropping an applied batch", err);
    /* what waits, for the progress line only: not knowing it stops nothing */
    ld_error_t derr;
    if (rc == 0 && progress != NULL && nd_inbox_depth(store, &batches, &waiting, &derr) != 0)
        waiting = 0;
    if (rc == 0) {
        int got;
        while ((got = apply_oldest(store, oldest, drop, &count, err)) == 1) {
            if (progress != NULL)
                progress(ctx, count, waiting > count ? waiting : count);
        }
        rc = got;                 /* 0: the inbox is empty; < 0: a batch failed */
    }
    sqlite3_finalize(oldest);
    sqlite3_finalize(drop);
    if (applied != NULL)
        *applied = count;
    return rc;
}

int nd_inbox_depth(nd_store_t *store, uint64_t *batches, uint64_t *changes, ld_error_t *err)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare(store, depth_sql, &st, "counting it", err);
    if (rc == 0) {
        if (sqlite3_step(st) == SQLITE_ROW) {
            *batches = (uint64_t)sqlite3_column_int64(st, 0);
            *changes = (uint64_t)sqlite3_column_int64(st, 1);
        } else {
            rc = ld_error_set(err, LD_EIO, "inbox: counting it: %s",
                              sqlite3_errmsg(nd_store_db(store)));
        }
    }
    sqlite3_finalize(st);
    return rc;
}
