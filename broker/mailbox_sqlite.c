/* mailbox_sqlite.c: the embedded mailbox store.  Each node's mailbox is a run of
 * positions kept in chunks in one SQLite table; a push is one transaction.
 *
 * Durability.  This connection commits with synchronous=NORMAL: a commit is in the
 * write-ahead log, not yet on the disk.  The syncer (syncer.h) fdatasyncs the log in
 * its own thread after each push and reports the push's ticket durable; the broker
 * holds the PUSH_ACK until then (held.h), and reads (a Welcome, a Fetch) wait for every
 * push stored to be durable first (settle).  So the broker takes in the next push
 * while the disk flushes the last, and still acks nothing a power cut could undo.  An
 * ack's reclaiming is not waited for: lost, it only hands out again entries the node
 * already took, which the node skips by its cursor.
 *
 * Positions in a mailbox are handed out one by one (mailbox_state.last) and only a
 * prefix is ever acked (mailbox_state.acked), so a mailbox always holds exactly the
 * positions acked+1 .. last.  Depth and `remaining` are therefore arithmetic, never a
 * count over the backlog, and reads go by cursor: the broker's memory does not grow
 * with what it holds.
 *
 * Chunks.  The entries one push adds to one mailbox are one row: positions first..last,
 * their bodies end to end, and their sizes (4 bytes each, little endian; NULL for a
 * single entry).  A push of 4,096 changes for one branch is one insert instead of 4,096
 * into the table and its index, and an ack deletes the chunks it covers whole; a chunk
 * acked in part stays until the rest is, and its acked entries are never handed out
 * again.  A chunk's size is bounded by a push's (LD_BODY_MAX). */
#include "mailbox.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "db.h"
#include "log.h"
#include "syncer.h"

static const char mb_schema[] =
    "CREATE TABLE IF NOT EXISTS \"highwater\"("
    "  \"origin\" TEXT PRIMARY KEY NOT NULL,"
    "  \"seq\" INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS \"mailbox_state\"("
    "  \"node\" TEXT PRIMARY KEY NOT NULL,"
    "  \"last\" INTEGER NOT NULL,"
    "  \"acked\" INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS \"mailbox_chunks\"("
    "  \"node\" TEXT NOT NULL,"
    "  \"first\" INTEGER NOT NULL,"
    "  \"last\" INTEGER NOT NULL,"
    "  \"sizes\" BLOB,"
    "  \"body\" BLOB NOT NULL,"
    "  UNIQUE(\"node\", \"last\"));";

typedef struct mb_store {
    sqlite3      *db;
    bk_syncer_t  *syncer;        /* makes the log durable; see above */
    sqlite3_stmt *begin_write;   /* BEGIN IMMEDIATE */
    sqlite3_stmt *begin_read;    /* BEGIN */
    sqlite3_stmt *commit;
    sqlite3_stmt *hw_get;
    sqlite3_stmt *hw_set;
    sqlite3_stmt *state_get;
    sqlite3_stmt *state_set;
    sqlite3_stmt *insert;
    sqlite3_stmt *select;
    sqlite3_stmt *delete;
} mb_store_t;

typedef struct mb_bytes {
    uint8_t *data;
    size_t   len, cap;
} mb_bytes_t;

/* A mailbox touched by the push in hand: its node (borrowed), its counters, and the
 * chunk the push adds to it (owned): positions first..last, sizes and bodies. */
typedef struct mb_touched {
    const char *node;
    uint64_t    last, acked;
    uint64_t    first;        /* the chunk's first position; 0 while it is empty */
    mb_bytes_t  sizes, body;
    size_t      want_entries, want_bytes;   /* what the push will add to it */
} mb_touched_t;

/* The mailboxes a push touches, by node: an open-addressing table (a push of 4,096
 * changes may reach a thousand mailboxes; a list would cost a scan per insert). */
typedef struct mb_touch_set {
    mb_touched_t *slots;      /* cap entries; node NULL = free */
    size_t        cap, n;     /* cap is 0 or a power of two */
} mb_touch_set_t;

static void mb_close(void **store_p)
{
    if (!store_p || !*store_p)
        return;
    mb_store_t *self = *store_p;
    bk_syncer_destroy(&self->syncer);      /* every push stored made durable first */
    sqlite3_finalize(self->begin_write);
    sqlite3_finalize(self->begin_read);
    sqlite3_finalize(self->commit);
    sqlite3_finalize(self->hw_get);
    sqlite3_finalize(self->hw_set);
    sqlite3_finalize(self->state_get);
    sqlite3_finalize(self->state_set);
    sqlite3_finalize(self->insert);
    sqlite3_finalize(self->select);
    sqlite3_finalize(self->delete);
    bk_db_close(&self->db);
    free(self);
    *store_p = NULL;
}

static void *mb_open(const char *path, bool create, ld_error_t *err)
{
    mb_store_t *self = calloc(1, sizeof *self);
    if (!self) {
        ld_error_set(err, LD_ENOMEM, "out of memory opening %s", path);
        return NULL;
    }
    self->db = bk_db_open(path, create, err);
    if (!self->db)
        goto err;
    if (bk_db_exec(self->db, "PRAGMA synchronous=NORMAL", err) < 0
        || bk_db_exec(self->db, mb_schema, err) < 0)
        goto err;
    /* the log exists once the schema was read or written */
    self->syncer = bk_syncer_new(sqlite3_filename_wal(sqlite3_db_filename(self->db, "main")),
                                 NULL, NULL, err);
    if (!self->syncer)
        goto err;
    if (bk_db_prepare(self->db, "BEGIN IMMEDIATE", &self->begin_write, err) < 0
        || bk_db_prepare(self->db, "BEGIN", &self->begin_read, err) < 0
        || bk_db_prepare(self->db, "COMMIT", &self->commit, err) < 0
        || bk_db_prepare(self->db,
               "SELECT \"seq\" FROM \"highwater\" WHERE \"origin\" = ?1", &self->hw_get, err) < 0
        || bk_db_prepare(self->db,
               "INSERT INTO \"highwater\"(\"origin\", \"seq\") VALUES (?1, ?2) "
               "ON CONFLICT(\"origin\") DO UPDATE SET \"seq\" = excluded.\"seq\"",
               &self->hw_set, err) < 0
        || bk_db_prepare(self->db,
               "SELECT \"last\", \"acked\" FROM \"mailbox_state\" WHERE \"node\" = ?1",
               &self->state_get, err) < 0
        || bk_db_prepare(self->db,
               "INSERT INTO \"mailbox_state\"(\"node\", \"last\", \"acked\") VALUES (?1, ?2, ?3) "
               "ON CONFLICT(\"node\") DO UPDATE SET \"last\" = excluded.\"last\", "
               "\"acked\" = excluded.\"acked\"", &self->state_set, err) < 0
        || bk_db_prepare(self->db,
               "INSERT INTO \"mailbox_chunks\"(\"node\", \"first\", \"last\", \"sizes\", "
               "\"body\") VALUES (?1, ?2, ?3, ?4, ?5)", &self->insert, err) < 0
        || bk_db_prepare(self->db,
               "SELECT \"first\", \"last\", \"sizes\", \"body\" FROM \"mailbox_chunks\" "
               "WHERE \"node\" = ?1 AND \"last\" > ?2 ORDER BY \"last\"", &self->select, err) < 0
        || bk_db_prepare(self->db,
               "DELETE FROM \"mailbox_chunks\" WHERE \"node\" = ?1 AND \"last\" <= ?2",
               &self->delete, err) < 0)
        goto err;
    return self;
err:
    {
        void *p = self;
        mb_close(&p);
    }
    return NULL;
}

/* Steps a statement that returns no rows and resets it.  0 or LD_EIO. */
static int mb_run(mb_store_t *self, sqlite3_stmt *st, const char *what, ld_error_t *err)
{
    int rc = sqlite3_step(st);
    int out = 0;
    if (rc != SQLITE_DONE)
        out = bk_db_fail(self->db, what, err);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return out;
}

static int mb_bind_text(mb_store_t *self, sqlite3_stmt *st, int i, const char *text,
                        ld_error_t *err)
{
    if (sqlite3_bind_text(st, i, text, -1, SQLITE_STATIC) != SQLITE_OK)
        return bk_db_fail(self->db, "bind", err);
    return 0;
}

static int mb_bind_u64(mb_store_t *self, sqlite3_stmt *st, int i, uint64_t v, ld_error_t *err)
{
    if (v > INT64_MAX)
        return ld_error_set(err, LD_EINVAL, "value %llu is out of range", (unsigned long long)v);
    if (sqlite3_bind_int64(st, i, (sqlite3_int64)v) != SQLITE_OK)
        return bk_db_fail(self->db, "bind", err);
    return 0;
}

/* Reads an origin's high-water mark (0 when it never pushed). */
static int mb_hw_get(mb_store_t *self, const char *origin, uint64_t *seq, ld_error_t *err)
{
    int rc = mb_bind_text(self, self->hw_get, 1, origin, err);
    if (rc < 0)
        goto out;
    rc = sqlite3_step(self->hw_get);
    if (rc == SQLITE_ROW) {
        *seq = (uint64_t)sqlite3_column_int64(self->hw_get, 0);
        rc = 0;
    } else if (rc == SQLITE_DONE) {
        *seq = 0;
        rc = 0;
    } else {
        rc = bk_db_fail(self->db, "reading the high-water mark", err);
    }
out:
    sqlite3_reset(self->hw_get);
    sqlite3_clear_bindings(self->hw_get);
    return rc;
}

/* Reads a mailbox's last position and acked prefix (0, 0 for a mailbox never used). */
static int mb_state_get(mb_store_t *self, const char *node, uint64_t *last, uint64_t *acked,
                        ld_error_t *err)
{
    int rc = mb_bind_text(self, self->state_get, 1, node, err);
    if (rc < 0)
        goto out;
    rc = sqlite3_step(self->state_get);
    if (rc == SQLITE_ROW) {
        *last = (uint64_t)sqlite3_column_int64(self->state_get, 0);
        *acked = (uint64_t)sqlite3_column_int64(self->state_get, 1);
        rc = 0;
    } else if (rc == SQLITE_DONE) {
        *last = 0;
        *acked = 0;
        rc = 0;
    } else {
        rc = bk_db_fail(self->db, "reading a mailbox", err);
    }
out:
    sqlite3_reset(self->state_get);
    sqlite3_clear_bindings(self->state_get);
    return rc;
}

static int mb_state_set(mb_store_t *self, const char *node, uint64_t last, uint64_t acked,
                        ld_error_t *err)
{
    int rc = mb_bind_text(self, self->state_set, 1, node, err);
    if (rc == 0)
        rc = mb_bind_u64(self, self->state_set, 2, last, err);
    if (rc == 0)
        rc = mb_bind_u64(self, self->state_set, 3, acked, err);
    if (rc < 0) {
        sqlite3_reset(self->state_set);
        sqlite3_clear_bindings(self->state_set);
        return rc;
    }
    return mb_run(self, self->state_set, "updating a mailbox", err);
}

static uint64_t mb_hash(const char *text)
{
    uint64_t h = 1469598103934665603u;      /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        h ^= *p;
        h *= 1099511628211u;
    }
    return h;
}

/* The free or matching slot for `node` in a table of `cap` slots. */
static mb_touched_t *mb_slot(mb_touched_t *slots, size_t cap, const char *node)
{
    size_t i = (size_t)mb_hash(node) & (cap - 1);
    while (slots[i].node && strcmp(slots[i].node, node) != 0)
        i = (i + 1) & (cap - 1);
    return &slots[i];
}

/* The touched entry for `node`, loading it on first use.  NULL with err set. */
static mb_touched_t *mb_touch(mb_store_t *self, mb_touch_set_t *set, const char *node,
                              ld_error_t *err)
{
    if (set->cap > 0) {
        mb_touched_t *t = mb_slot(set->slots, set->cap, node);
        if (t->node)
            return t;
    }
    if ((set->n + 1) * 2 > set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 16;
        mb_touched_t *slots = calloc(cap, sizeof *slots);
        if (!slots) {
            ld_error_set(err, LD_ENOMEM, "out of memory storing a push");
            return NULL;
        }
        for (size_t i = 0; i < set->cap; i++)
            if (set->slots[i].node)
                *mb_slot(slots, cap, set->slots[i].node) = set->slots[i];
        free(set->slots);
        set->slots = slots;
        set->cap = cap;
    }
    mb_touched_t *t = mb_slot(set->slots, set->cap, node);
    if (mb_state_get(self, node, &t->last, &t->acked, err) < 0)
        return NULL;
    t->node = node;
    set->n++;
    return t;
}

/* Appends len bytes to b, which takes `first` bytes (or more, if len does not fit) at
 * its first allocation; 0 or LD_ENOMEM. */
static int mb_bytes_add(mb_bytes_t *b, const void *data, size_t len, size_t first,
                        ld_error_t *err)
{
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap : (first > 0 ? first : 64);
        while (cap < b->len + len)
            cap *= 2;
        uint8_t *p = realloc(b->data, cap);
        if (!p)
            return ld_error_set(err, LD_ENOMEM, "out of memory storing a push");
        b->data = p;
        b->cap = cap;
    }
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    return 0;
}

/* Adds an entry of the push to mailbox t's chunk, at its next position. */
static int mb_chunk_add(mb_touched_t *t, const uint8_t *body, size_t len, ld_error_t *err)
{
    if (len > UINT32_MAX)
        return ld_error_set(err, LD_ETOOBIG, "a change of %zu bytes", len);
    uint8_t size[4] = { (uint8_t)len, (uint8_t)(len >> 8), (uint8_t)(len >> 16),
                        (uint8_t)(len >> 24) };
    int rc = mb_bytes_add(&t->sizes, size, sizeof size, 4 * t->want_entries, err);
    if (rc == 0)
        rc = mb_bytes_add(&t->body, body, len, t->want_bytes, err);
    if (rc == 0) {
        t->last++;
        if (t->first == 0)
            t->first = t->last;
    }
    return rc;
}

/* Stores mailbox t's chunk, if the push added to it. */
static int mb_chunk_store(mb_store_t *self, const mb_touched_t *t, ld_error_t *err)
{
    if (t->first == 0)
        return 0;
    sqlite3_stmt *st = self->insert;
    int rc = mb_bind_text(self, st, 1, t->node, err);
    if (rc == 0)
        rc = mb_bind_u64(self, st, 2, t->first, err);
    if (rc == 0)
        rc = mb_bind_u64(self, st, 3, t->last, err);
    if (rc == 0) {
        /* one entry: its body alone, no sizes */
        int b = t->first == t->last ? sqlite3_bind_null(st, 4)
                                    : sqlite3_bind_blob64(st, 4, t->sizes.data, t->sizes.len,
                                                          SQLITE_STATIC);
        if (b == SQLITE_OK)
            b = sqlite3_bind_blob64(st, 5, t->body.len ? (const void *)t->body.data
                                                       : (const void *)"",
                                    t->body.len, SQLITE_STATIC);
        if (b != SQLITE_OK)
            rc = bk_db_fail(self->db, "bind", err);
    }
    if (rc < 0) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        return rc;
    }
    return mb_run(self, st, "storing a push", err);
}

static void mb_touch_set_free(mb_touch_set_t *set)
{
    for (size_t i = 0; i < set->cap; i++) {
        free(set->slots[i].sizes.data);
        free(set->slots[i].body.data);
    }
    free(set->slots);
    *set = (mb_touch_set_t){ 0 };
}

static int mb_push_batch(void *store, const char *origin, const bk_push_item_t *items,
                         size_t n, uint64_t *upto, size_t *stored, ld_error_t *err)
{
    mb_store_t *self = store;
    mb_touch_set_t touched = { 0 };
    size_t nstored = 0;
    uint64_t hw = 0;
    int rc = mb_run(self, self->begin_write, "BEGIN IMMEDIATE", err);
    if (rc < 0)
        return rc;
    rc = mb_hw_get(self, origin, &hw, err);
    if (rc < 0)
        goto err;
    /* First what each mailbox's chunk will hold, so that it is allocated once, at its
     * size: a push for a thousand mailboxes must not reserve the whole push for each. */
    uint64_t mark = hw;
    for (size_t i = 0; i < n; i++) {
        const bk_push_item_t *it = &items[i];
        if (it->seq <= mark)
            continue;            /* already stored: a repeated push */
        if (it->seq != mark + 1) {
            rc = ld_error_set(err, LD_EINVAL, "change seq %llu of %s skips ahead of %llu",
                              (unsigned long long)it->seq, origin, (unsigned long long)mark);
            goto err;
        }
        mark = it->seq;
        for (size_t j = 0; j < it->nto; j++) {
            mb_touched_t *t = mb_touch(self, &touched, it->to[j], err);
            if (!t) {
                rc = err ? err->code : LD_EIO;
                goto err;
            }
            t->want_entries++;
            t->want_bytes += it->len;
        }
    }
    for (size_t i = 0; i < n; i++) {
        const bk_push_item_t *it = &items[i];
        if (it->seq <= hw)
            continue;
        for (size_t j = 0; j < it->nto; j++) {
            mb_touched_t *t = mb_touch(self, &touched, it->to[j], err);
            if (!t) {
                rc = err ? err->code : LD_EIO;
                goto err;
            }
            rc = mb_chunk_add(t, it->body, it->len, err);
            if (rc < 0)
                goto err;
        }
        hw = it->seq;
        nstored++;
    }
    for (size_t i = 0; i < touched.cap; i++) {
        const mb_touched_t *t = &touched.slots[i];
        if (!t->node)
            continue;
        rc = mb_chunk_store(self, t, err);
        if (rc == 0)
            rc = mb_state_set(self, t->node, t->last, t->acked, err);
        if (rc < 0)
            goto err;
    }
    if (nstored > 0) {
        rc = mb_bind_text(self, self->hw_set, 1, origin, err);
        if (rc == 0)
            rc = mb_bind_u64(self, self->hw_set, 2, hw, err);
        if (rc == 0)
            rc = mb_run(self, self->hw_set, "raising the high-water mark", err);
        if (rc < 0)
            goto err;
    }
    rc = mb_run(self, self->commit, "COMMIT", err);
    if (rc < 0)
        goto err;
    if (nstored > 0)
        bk_syncer_wrote(self->syncer);
    mb_touch_set_free(&touched);
    *upto = hw;
    *stored = nstored;
    return 0;
err:
    sqlite3_reset(self->hw_set);
    sqlite3_clear_bindings(self->hw_set);
    bk_db_rollback(self->db);
    mb_touch_set_free(&touched);
    return rc;
}

/* Reads entry i of a chunk of `count` entries: its body and size.  The sizes must add
 * up to the body's length (checked by the caller before the first entry). */
static uint32_t mb_size_at(const uint8_t *sizes, uint64_t i)
{
    const uint8_t *p = sizes + 4 * i;
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Whether a chunk's row holds what its positions say: one size per entry (or none for
 * one entry), adding up to the body's length. */
static bool mb_chunk_whole(uint64_t first, uint64_t last, const uint8_t *sizes,
                           size_t sizes_len, size_t body_len)
{
    if (first == 0 || last < first)
        return false;
    uint64_t count = last - first + 1;
    if (!sizes)
        return count == 1;
    if (count > SIZE_MAX / 4 || sizes_len != count * 4)
        return false;
    uint64_t total = 0;
    for (uint64_t i = 0; i < count; i++)
        total += mb_size_at(sizes, i);
    return total == body_len;
}

static int mb_fetch(void *store, const char *node, uint64_t after, uint32_t credit,
                    bk_fetch_fn fn, void *ctx, uint64_t *remaining, ld_error_t *err)
{
    mb_store_t *self = store;
    uint64_t last = 0, acked = 0, taken_upto = after;
    int taken = 0;
    int rc = mb_run(self, self->begin_read, "BEGIN", err);
    if (rc < 0)
        return rc;
    rc = mb_state_get(self, node, &last, &acked, err);
    if (rc < 0)
        goto out;
    /* entries at or below acked may stay in a chunk acked in part: never again */
    uint64_t from = after > acked ? after : acked;
    if (credit > 0) {
        rc = mb_bind_text(self, self->select, 1, node, err);
        if (rc == 0)
            rc = mb_bind_u64(self, self->select, 2, from, err);
        bool stop = false;
        while (rc == 0 && !stop && (uint32_t)taken < credit) {
            int step = sqlite3_step(self->select);
            if (step == SQLITE_DONE)
                break;
            if (step != SQLITE_ROW) {
                rc = bk_db_fail(self->db, "reading a mailbox", err);
                break;
            }
            uint64_t first = (uint64_t)sqlite3_column_int64(self->select, 0);
            uint64_t chunk_last = (uint64_t)sqlite3_column_int64(self->select, 1);
            const uint8_t *sizes = sqlite3_column_blob(self->select, 2);
            size_t sizes_len = (size_t)sqlite3_column_bytes(self->select, 2);
            const uint8_t *body = sqlite3_column_blob(self->select, 3);
            size_t body_len = (size_t)sqlite3_column_bytes(self->select, 3);
            if (!mb_chunk_whole(first, chunk_last, sizes, sizes_len, body_len)) {
                rc = ld_error_set(err, LD_EIO, "the mailbox of %s is damaged: the chunk of "
                                  "positions %llu to %llu does not hold what it says", node,
                                  (unsigned long long)first, (unsigned long long)chunk_last);
                break;
            }
            size_t off = 0;
            for (uint64_t position = first; position <= chunk_last; position++) {
                size_t len = sizes ? mb_size_at(sizes, position - first) : body_len;
                const uint8_t *entry = body + off;
                off += len;
                if (position <= from)
                    continue;
                if ((uint32_t)taken >= credit) {
                    stop = true;
                    break;
                }
                int took = fn(ctx, position, len ? entry : (const uint8_t *)"", len);
                if (took < 0) {
                    rc = ld_error_set(err, took, "fetch of %s stopped at position %llu", node,
                                      (unsigned long long)position);
                    break;
                }
                if (took > 0) {
                    stop = true;
                    break;
                }
                taken++;
                taken_upto = position;
            }
        }
        sqlite3_reset(self->select);
        sqlite3_clear_bindings(self->select);
        if (rc < 0)
            goto out;
    }
    if (taken_upto < acked)
        taken_upto = acked;
    *remaining = last > taken_upto ? last - taken_upto : 0;
    rc = mb_run(self, self->commit, "COMMIT", err);
out:
    bk_db_rollback(self->db);
    return rc < 0 ? rc : taken;
}

static int mb_ack(void *store, const char *node, uint64_t upto, ld_error_t *err)
{
    mb_store_t *self = store;
    uint64_t last = 0, acked = 0;
    int rc = mb_run(self, self->begin_write, "BEGIN IMMEDIATE", err);
    if (rc < 0)
        return rc;
    rc = mb_state_get(self, node, &last, &acked, err);
    if (rc < 0)
        goto out;
    if (upto > last)
        upto = last;              /* past the end: nothing there to reclaim */
    if (upto > acked) {
        rc = mb_bind_text(self, self->delete, 1, node, err);
        if (rc == 0)
            rc = mb_bind_u64(self, self->delete, 2, upto, err);
        if (rc == 0)
            rc = mb_run(self, self->delete, "reclaiming a mailbox", err);
        else {
            sqlite3_reset(self->delete);
            sqlite3_clear_bindings(self->delete);
        }
        if (rc == 0)
            rc = mb_state_set(self, node, last, upto, err);
        if (rc < 0)
            goto out;
    }
    rc = mb_run(self, self->commit, "COMMIT", err);
out:
    bk_db_rollback(self->db);
    return rc;
}

static int mb_depth(void *store, const char *node, uint64_t *depth, ld_error_t *err)
{
    mb_store_t *self = store;
    uint64_t last = 0, acked = 0;
    int rc = mb_state_get(self, node, &last, &acked, err);
    if (rc < 0)
        return rc;
    *depth = last > acked ? last - acked : 0;
    return 0;
}

static int mb_pushed_upto(void *store, const char *origin, uint64_t *seq, ld_error_t *err)
{
    return mb_hw_get(store, origin, seq, err);
}

/* ---- migration source ---- */

static int mb_export_marks(void *store, bk_mark_fn fn, void *ctx, ld_error_t *err)
{
    mb_store_t *self = store;
    sqlite3_stmt *st = NULL;
    int rc = bk_db_prepare(self->db, "SELECT \"origin\", \"seq\" FROM \"highwater\" "
                           "ORDER BY \"origin\"", &st, err);
    if (rc < 0)
        return rc;
    for (;;) {
        int step = sqlite3_step(st);
        if (step == SQLITE_DONE)
            break;
        if (step != SQLITE_ROW) {
            rc = bk_db_fail(self->db, "reading the high-water marks", err);
            break;
        }
        const char *origin = (const char *)sqlite3_column_text(st, 0);
        if (!origin) {
            rc = ld_error_set(err, LD_EIO, "a high-water mark row holds NULL");
            break;
        }
        if (fn(ctx, origin, (uint64_t)sqlite3_column_int64(st, 1)) != 0)
            break;
    }
    sqlite3_finalize(st);
    return rc;
}

static int mb_last_position(void *store, const char *node, uint64_t *last, ld_error_t *err)
{
    uint64_t acked = 0;
    return mb_state_get(store, node, last, &acked, err);
}

/* A passive checkpoint: the log's frames that no reader still needs go into the file
 * (the log is checkpointed by SQLite itself only past 64 MiB, db.c). */
static void mb_idle(void *store)
{
    mb_store_t *self = store;
    int logged = 0, copied = 0;
    int rc = sqlite3_wal_checkpoint_v2(self->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &logged,
                                       &copied);
    if (rc != SQLITE_OK)
        ld_warn("mailbox store: checkpoint when idle: %s", sqlite3_errmsg(self->db));
    else if (logged > 0)
        ld_debug("mailbox store: %d of %d logged pages moved into the file when idle", copied,
                 logged);
}

static uint64_t mb_written(void *store)
{
    mb_store_t *self = store;
    return bk_syncer_written(self->syncer);
}

static int mb_sync_fd(void *store)
{
    mb_store_t *self = store;
    return bk_syncer_fd(self->syncer);
}

static int mb_synced(void *store, uint64_t *ticket, ld_error_t *err)
{
    mb_store_t *self = store;
    return bk_syncer_synced(self->syncer, ticket, err);
}

static int mb_settle(void *store, ld_error_t *err)
{
    mb_store_t *self = store;
    return bk_syncer_settle(self->syncer, err);
}

const bk_mailbox_ops_t bk_mailbox_sqlite = {
    .name        = "sqlite",
    .open        = mb_open,
    .close       = mb_close,
    .push_batch  = mb_push_batch,
    .fetch       = mb_fetch,
    .ack         = mb_ack,
    .depth       = mb_depth,
    .pushed_upto = mb_pushed_upto,
    .idle        = mb_idle,
    .written     = mb_written,
    .sync_fd     = mb_sync_fd,
    .synced      = mb_synced,
    .settle      = mb_settle,
    .export_marks  = mb_export_marks,
    .last_position = mb_last_position,
};
