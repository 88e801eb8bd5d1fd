/* store.c: a branch's SQLite store: open and migrate it; what its write and apply paths
 * share (settings, transaction levels, rows, the change log, the conflict log); the
 * outbox and the reads.
 *
 * Transactions.  Every write, apply and batch runs inside one transaction level:
 * BEGIN IMMEDIATE at the outermost level (so a writer never has to upgrade a read
 * lock, which WAL could refuse), a savepoint inside an open group, so that a refused
 * write inside a group leaves nothing behind and the group goes on.  A bulk group
 * (import: every row checked first, all rows or none) takes no savepoint per write:
 * a write refused by its checks has written nothing, and one that fails after it
 * began writing breaks the group, which can then only roll back.  Each outermost
 * transaction re-reads the last own seq and the clock under the write lock: the CLI
 * and the sync daemon share the file, and both write.
 *
 * Memory.  Within a transaction the store remembers which records it found live for
 * reference checks, and its audience which node keeps an org and where a member is;
 * writing a row of that kind, and the end of each transaction, forgets them.
 *
 * Rows.  A record's row holds its field values, its per-field stamps (merge.h) and
 * the derived hlc/origin (latest stamp), deleted and created_by.  Local writes and
 * applied changes both go through nd_merge_apply, so the same rule decides both.
 *
 * Audiences.  A local write names its receivers (audience.c) and, before the change
 * itself, appends snapshots a receiver needs first: an org it has not been sent, and a
 * member's whole history for a branch the member has just moved to.  Snapshots carry
 * every field with the stamp it has here, so re-sending them never wins a race it
 * should not, and applying one twice changes nothing.
 *
 * Where it is: this file opens the store and holds what every path shares (settings,
 * transaction levels, rows, the change log, the conflict log) and the reads;
 * store_write.c is the write path, store_apply.c the apply path, store_snapshot.c the
 * snapshots a new receiver is sent; store_int.h is what the four share.
 */
#include "store.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "audience.h"
#include "codec.h"
#include "collate.h"
#include "compact.h"
#include "hlc.h"
#include "merge.h"
#include "migrate.h"
#include "store_int.h"
#include "uuid.h"

#define SQL_MAX          4096
#define NODE_NAME_MAX    256
#define BULK_BYTES       (256u * 1024u)   /* a push or batch this large: nd_store_moved */

static const char *const fixed_sql[ST_COUNT] = {
    [ST_BEGIN]        = "BEGIN IMMEDIATE",
    [ST_COMMIT]       = "COMMIT",
    [ST_ROLLBACK]     = "ROLLBACK",
    [ST_SAVEPOINT]    = "SAVEPOINT \"nd_write\"",
    [ST_RELEASE]      = "RELEASE \"nd_write\"",
    [ST_ROLLBACK_TO]  = "ROLLBACK TO \"nd_write\"",
    [ST_SETTING_GET]  = "SELECT \"value\" FROM \"settings\" WHERE \"key\" = ?1",
    [ST_SETTING_SET]  = "INSERT INTO \"settings\" (\"key\", \"value\") VALUES (?1, ?2) "
                        "ON CONFLICT (\"key\") DO UPDATE SET \"value\" = excluded.\"value\"",
    [ST_SETTING_DEL]  = "DELETE FROM \"settings\" WHERE \"key\" = ?1",
    [ST_LOG_ADD]      = "INSERT INTO \"changelog\" (\"origin\", \"seq\", \"record_id\", \"kind\", "
                        "\"hlc\", \"deleted\", \"body\", \"at\") "
                        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    /* An applied change: one already in the log (known by origin and seq) is left be. */
    [ST_LOG_APPLY]    = "INSERT INTO \"changelog\" (\"origin\", \"seq\", \"record_id\", \"kind\", "
                        "\"hlc\", \"deleted\", \"body\", \"at\") "
                        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) "
                        "ON CONFLICT (\"origin\", \"seq\") DO NOTHING",
    [ST_LOG_LAST]     = "SELECT \"seq\", \"hlc\" FROM \"changelog\" WHERE \"origin\" = ?1 "
                        "ORDER BY \"seq\" DESC LIMIT 1",
    [ST_OUTBOX]       = "SELECT \"seq\", \"body\" FROM \"changelog\" WHERE \"origin\" = ?1 "
                        "AND \"seq\" > ?2 ORDER BY \"seq\" LIMIT ?3",
    [ST_CONFLICT_ADD] = "INSERT OR IGNORE INTO \"conflicts\" (\"record_id\", \"kind\", \"field\", "
                        "\"winner_value\", \"winner_hlc\", \"winner_origin\", \"loser_value\", "
                        "\"loser_hlc\", \"loser_origin\", \"at\") "
                        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    [ST_CONFLICT_ANY] = "SELECT 1 FROM \"conflicts\" WHERE \"record_id\" = ?1 LIMIT 1",
    [ST_CONFLICT_WINNER] = "UPDATE \"conflicts\" SET \"winner_value\" = ?3, \"winner_hlc\" = ?4, "
                        "\"winner_origin\" = ?5 WHERE \"record_id\" = ?1 AND \"field\" = ?2",
    [ST_CONFLICT_COUNT] = "SELECT count(*) FROM \"conflicts\"",
};

/* ------------------------------------------------------------------ helpers ---- */

/* Copies src (NULL = "") into dst[size], cut short if it does not fit. */
void nd_st_copy_text(char *dst, size_t size, const char *src)
{
    size_t n = src != NULL ? strnlen(src, size - 1) : 0;
    memcpy(dst, src != NULL ? src : "", n);
    dst[n] = '\0';
}

/* Forgets what the store and its audience remember of rows of `kind` (LD_KIND_NONE:
 * of every kind): when such a row is written, and when a transaction begins or ends. */
void nd_st_forget(nd_store_t *self, ld_kind_t kind)
{
    for (int k = 0; k < LD_KIND_COUNT; k++) {
        if (kind == LD_KIND_NONE || k == (int)kind)
            self->live_gen[k]++;
    }
    nd_audience_forget(self->aud, kind);
}

/* The error for a failed SQLite call: LD_EBUSY when another process held the store
 * past the busy timeout, LD_EIO otherwise, with SQLite's own message. */
static int db_error(nd_store_t *self, const char *what, ld_error_t *err)
{
    int code = (sqlite3_errcode(self->db) & 0xff) == SQLITE_BUSY ? LD_EBUSY : LD_EIO;
    return ld_error_set(err, code, "%s: %s: %s", self->path, what, sqlite3_errmsg(self->db));
}

/* Runs a fixed statement that takes no arguments and returns no rows. */
static int run(nd_store_t *self, int which, ld_error_t *err)
{
    sqlite3_stmt *st = self->st[which];
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        return db_error(self, fixed_sql[which], err);
    return 0;
}

/* Runs one SQL text once (pragmas); 0 or LD_EIO.  If `row` is given, the first
 * column of the first row is copied into it (row_size bytes). */
static int run_text(nd_store_t *self, const char *sql, char *row, size_t row_size,
                    ld_error_t *err)
{
    sqlite3_stmt *st = NULL;
    int ret = 0;
    int rc = sqlite3_prepare_v2(self->db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && row != NULL) {
        const unsigned char *t = sqlite3_column_text(st, 0);
        nd_st_copy_text(row, row_size, (const char *)t);
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        ret = db_error(self, sql, err);
    sqlite3_finalize(st);
    return ret;
}

static void finish(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

static int bind_text(sqlite3_stmt *st, int i, const char *text)
{
    return text != NULL ? sqlite3_bind_text(st, i, text, -1, SQLITE_STATIC)
                        : sqlite3_bind_null(st, i);
}

static bool parse_u64(const char *text, uint64_t *out)
{
    if (text == NULL || text[0] < '0' || text[0] > '9')
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno != 0 || *end != '\0')
        return false;
    *out = (uint64_t)v;
    return true;
}

/* ----------------------------------------------------------------- settings ---- */

/* Reads a setting into a malloc'd copy (*out NULL if unset); 0 or LD_EIO/LD_ENOMEM. */
static int setting_get(nd_store_t *self, const char *key, char **out, ld_error_t *err)
{
    sqlite3_stmt *st = self->st[ST_SETTING_GET];
    int ret = 0;
    *out = NULL;
    bind_text(st, 1, key);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(st, 0);
        if (t != NULL && (*out = strdup((const char *)t)) == NULL)
            ret = ld_error_set(err, LD_ENOMEM, "out of memory reading setting %s", key);
    } else if (rc != SQLITE_DONE) {
        ret = db_error(self, "reading a setting", err);
    }
    finish(st);
    return ret;
}

static int setting_put(nd_store_t *self, const char *key, const char *value, ld_error_t *err)
{
    sqlite3_stmt *st = self->st[value != NULL ? ST_SETTING_SET : ST_SETTING_DEL];
    bind_text(st, 1, key);
    if (value != NULL)
        bind_text(st, 2, value);
    int rc = sqlite3_step(st);
    finish(st);
    if (rc != SQLITE_DONE)
        return db_error(self, "writing a setting", err);
    return 0;
}

/* A numeric setting, 0 if unset or unreadable. */
static uint64_t setting_u64(nd_store_t *self, const char *key)
{
    char *text = NULL;
    uint64_t v = 0;
    if (setting_get(self, key, &text, NULL) == 0 && text != NULL && !parse_u64(text, &v))
        v = 0;
    free(text);
    return v;
}

int nd_st_setting_put_u64(nd_store_t *self, const char *key, uint64_t v, ld_error_t *err)
{
    char text[24];
    snprintf(text, sizeof text, "%" PRIu64, v);
    return setting_put(self, key, text, err);
}

/* ------------------------------------------------------------- transactions ---- */

/* Re-reads what another process may have moved: the last own seq and the clock. */
static int refresh(nd_store_t *self, ld_error_t *err)
{
    uint64_t seq = 0, hlc = 0;
    if (self->node_id[0] != '\0') {
        sqlite3_stmt *st = self->st[ST_LOG_LAST];
        bind_text(st, 1, self->node_id);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            seq = (uint64_t)sqlite3_column_int64(st, 0);
            hlc = (uint64_t)sqlite3_column_int64(st, 1);
        }
        finish(st);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
            return db_error(self, "reading the last own change", err);
    }
    self->last_seq = seq;
    uint64_t saved = setting_u64(self, KEY_CLOCK);
    self->clock_saved = saved;
    if (saved > hlc)
        hlc = saved;
    if (hlc > self->clock.last)
        self->clock.last = hlc;
    return 0;
}

/* The refusal of anything but a rollback in a group a write broke. */
int nd_st_broken_group(nd_store_t *self, ld_error_t *err)
{
    return ld_error_set(err, LD_EIO, "%s: a write of this group failed part way; nothing of "
                        "the group can be kept (roll it back)", self->path);
}

/* Opens a transaction level: BEGIN IMMEDIATE outermost, a savepoint inside. */
int nd_st_tx_begin(nd_store_t *self, ld_error_t *err)
{
    if (self->depth > 0 && self->broken)
        return nd_st_broken_group(self, err);
    int rc = run(self, self->depth == 0 ? ST_BEGIN : ST_SAVEPOINT, err);
    if (rc != 0)
        return rc;
    self->depth++;
    if (self->depth == 1) {
        nd_st_forget(self, LD_KIND_NONE);      /* others may have written since */
        rc = refresh(self, err);
        if (rc != 0) {
            run(self, ST_ROLLBACK, NULL);
            self->depth = 0;
        }
    }
    return rc;
}

/* Closes the innermost level: commits (or releases) it when ok, otherwise rolls it
 * back and puts last_seq back to `seq_before`.  Returns 0 only if ok and committed;
 * on a failed commit err is set. */
int nd_st_tx_end(nd_store_t *self, bool ok, uint64_t seq_before, ld_error_t *err)
{
    int rc = 0;
    if (self->depth <= 0)
        return ok ? 0 : -1;
    if (self->depth > 1) {
        self->depth--;
        if (ok)
            return run(self, ST_RELEASE, err);
        run(self, ST_ROLLBACK_TO, NULL);
        run(self, ST_RELEASE, NULL);
        nd_st_forget(self, LD_KIND_NONE);
        self->last_seq = seq_before;
        /* An I/O error can make SQLite roll the whole transaction back itself: then
         * the writes before this one are gone too, and the group must not go on. */
        if (sqlite3_get_autocommit(self->db))
            self->broken = true;
        return -1;
    }
    if (ok && self->clock.last != self->clock_saved)
        rc = nd_st_setting_put_u64(self, KEY_CLOCK, self->clock.last, err);
    if (ok && rc == 0)
        rc = run(self, ST_COMMIT, err);
    else
        rc = ok ? rc : -1;
    if (rc == 0) {
        self->clock_saved = self->clock.last;
    } else if (!sqlite3_get_autocommit(self->db)) {
        run(self, ST_ROLLBACK, NULL);
    }
    if (rc != 0)
        self->last_seq = seq_before;
    nd_st_forget(self, LD_KIND_NONE);
    self->depth = 0;
    self->group = false;
    self->bulk = false;
    self->broken = false;
    return rc;
}

/* ------------------------------------------------------------- statements ---- */

static int prepare(nd_store_t *self, sqlite3_stmt **st, const char *sql, ld_error_t *err)
{
    int rc = sqlite3_prepare_v3(self->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL);
    if (rc != SQLITE_OK)
        return ld_error_set(err, LD_EIO, "%s: preparing %.80s: %s", self->path, sql,
                            sqlite3_errmsg(self->db));
    return 0;
}

/* Appends printf output to sql[SQL_MAX] at *o; false if it does not fit. */
static bool sql_add(char *sql, size_t *o, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool sql_add(char *sql, size_t *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(sql + *o, SQL_MAX - *o, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= SQL_MAX - *o)
        return false;
    *o += (size_t)n;
    return true;
}

/* The per-kind row statements, built from the compiled-in schema table. */
static int prepare_rows(nd_store_t *self, const ld_kind_def_t *def, ld_error_t *err)
{
    char sql[SQL_MAX];
    size_t o = 0;
    bool ok = sql_add(sql, &o, "SELECT ");
    for (size_t i = 0; i < def->nfields; i++)
        ok = ok && sql_add(sql, &o, "\"%s\", ", def->fields[i].name);
    ok = ok && sql_add(sql, &o, "\"deleted\", \"stamps\" FROM \"%s\" WHERE \"id\" = ?1",
                       def->table);
    if (!ok || prepare(self, &self->row_get[def->kind], sql, err) != 0)
        goto fail;

    o = 0;
    ok = sql_add(sql, &o, "INSERT INTO \"%s\" (\"id\"", def->table);
    for (size_t i = 0; i < def->nfields; i++)
        ok = ok && sql_add(sql, &o, ", \"%s\"", def->fields[i].name);
    ok = ok && sql_add(sql, &o, ", \"deleted\", \"hlc\", \"origin\", \"stamps\", \"created_by\") "
                       "VALUES (?1");
    for (size_t i = 0; i < def->nfields + 5; i++)
        ok = ok && sql_add(sql, &o, ", ?%zu", i + 2);
    size_t values_end = o;
    ok = ok && sql_add(sql, &o, ") ON CONFLICT (\"id\") DO NOTHING");
    if (!ok || prepare(self, &self->row_new[def->kind], sql, err) != 0)
        goto fail;
    o = values_end;
    ok = ok && sql_add(sql, &o, ") ON CONFLICT (\"id\") DO UPDATE SET ");
    for (size_t i = 0; i < def->nfields; i++)
        ok = ok && sql_add(sql, &o, "\"%s\" = excluded.\"%s\", ", def->fields[i].name,
                           def->fields[i].name);
    ok = ok && sql_add(sql, &o, "\"deleted\" = excluded.\"deleted\", \"hlc\" = excluded.\"hlc\", "
                       "\"origin\" = excluded.\"origin\", \"stamps\" = excluded.\"stamps\", "
                       "\"created_by\" = excluded.\"created_by\"");
    if (!ok || prepare(self, &self->row_put[def->kind], sql, err) != 0)
        goto fail;
    return 0;
fail:
    if (!ok)
        return ld_error_set(err, LD_ETOOBIG, "%s: SQL for %s is too long", self->path,
                            def->table);
    return err != NULL ? err->code : LD_EIO;
}

static int prepare_all(nd_store_t *self, ld_error_t *err)
{
    for (int i = 0; i < ST_COUNT; i++) {
        if (prepare(self, &self->st[i], fixed_sql[i], err) != 0)
            return LD_EIO;
    }
    for (int k = LD_KIND_NONE + 1; k < LD_KIND_COUNT; k++) {
        int rc = prepare_rows(self, ld_schema_kind((ld_kind_t)k), err);
        if (rc != 0)
            return rc;
    }
    self->aud = nd_audience_new(self->db, err);
    return self->aud != NULL ? 0 : LD_EIO;
}

/* -------------------------------------------------------------------- rows ---- */

/* Loads record (def, id) into r (initialised here).  r->exists tells whether a row
 * was found.  0, LD_EIO or LD_ENOMEM. */
int nd_st_row_load(nd_store_t *self, const ld_kind_def_t *def, const char *id,
                   nd_record_t *r, ld_error_t *err)
{
    nd_record_init(r, def, id);
    sqlite3_stmt *st = self->row_get[def->kind];
    int ret = 0;
    bind_text(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        r->exists = true;
        for (size_t i = 0; i < def->nfields && ret == 0; i++) {
            const unsigned char *t = sqlite3_column_text(st, (int)i);
            if (t != NULL && (r->fields[i].value = strdup((const char *)t)) == NULL)
                ret = ld_error_set(err, LD_ENOMEM, "out of memory reading %s %s", def->name, id);
        }
        if (ret == 0 && sqlite3_column_int(st, (int)def->nfields) != 0 &&
            (r->deleted.value = strdup("1")) == NULL)
            ret = ld_error_set(err, LD_ENOMEM, "out of memory reading %s %s", def->name, id);
        if (ret == 0)
            ret = nd_stamps_decode(r, (const char *)sqlite3_column_text(st, (int)def->nfields + 1),
                                   err);
    } else if (rc != SQLITE_DONE) {
        ret = db_error(self, "reading a record", err);
    }
    finish(st);
    if (ret != 0)
        nd_record_clear(r);
    return ret;
}

/* Writes r's whole row with statement st (row_put: insert or update; row_new: insert
 * unless the id is there).  *written (may be NULL) tells whether a row was written. */
int nd_st_row_write(nd_store_t *self, const nd_record_t *r, sqlite3_stmt *st, bool *written,
                    ld_error_t *err)
{
    const ld_kind_def_t *def = r->def;
    if (nd_stamps_encode_buf(r, &self->stamps, &self->stamps_cap) != 0)
        return ld_error_set(err, LD_ENOMEM, "out of memory writing %s %s", def->name, r->id);
    const char *stamps = self->stamps;
    nd_stamp_t latest = nd_record_latest(r);
    int col = 1;
    bind_text(st, col++, r->id);
    for (size_t i = 0; i < def->nfields; i++, col++) {
        const char *v = r->fields[i].value;
        ld_type_t type = def->fields[i].type;
        if (v != NULL && (type == LD_T_MONEY || type == LD_T_YEAR))
            sqlite3_bind_int64(st, col, strtoll(v, NULL, 10));
        else
            bind_text(st, col, v);
    }
    sqlite3_bind_int(st, col++, nd_record_deleted(r) ? 1 : 0);
    sqlite3_bind_int64(st, col++, (sqlite3_int64)latest.hlc);
    bind_text(st, col++, latest.origin);
    bind_text(st, col++, stamps);
    bind_text(st, col++, r->created.origin);
    int rc = sqlite3_step(st);
    finish(st);
    nd_st_forget(self, def->kind);
    if (rc != SQLITE_DONE)
        return db_error(self, "writing a record", err);
    if (written != NULL)
        *written = sqlite3_changes(self->db) > 0;
    return 0;
}

/* Writes r's whole row (insert or update). */
int nd_st_row_save(nd_store_t *self, const nd_record_t *r, ld_error_t *err)
{
    return nd_st_row_write(self, r, self->row_put[r->def->kind], NULL, err);
}

/* Whether a live record (def, id) is here; 0 or LD_EIO. */
int nd_st_row_live(nd_store_t *self, const ld_kind_def_t *def, const char *id, bool *live,
                   ld_error_t *err)
{
    sqlite3_stmt *st = self->row_get[def->kind];
    bind_text(st, 1, id);
    int rc = sqlite3_step(st);
    *live = rc == SQLITE_ROW && sqlite3_column_int(st, (int)def->nfields) == 0;
    finish(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return db_error(self, "reading a record", err);
    return 0;
}

/* -------------------------------------------------------------- change log ---- */

/* Appends change c to the change log with statement `which`: ST_LOG_ADD for this
 * node's own changes, ST_LOG_APPLY for a change from elsewhere.  c is validated whole
 * unless `checked`: a change from elsewhere was validated when it was decoded or handed
 * to the apply path, and a local write's change was checked as it was built
 * (check_change and check_bases, store_write.c).  *added (may be NULL) tells whether a
 * row went in: ST_LOG_APPLY leaves a change that is already there alone. */
int nd_st_log_add(nd_store_t *self, const ld_change_t *c, int which, bool checked,
                  bool *added, ld_error_t *err)
{
    int rc = checked ? 0 : ld_change_validate(c, err);
    const uint8_t *body = c->wire;
    size_t len = c->wire_len;
    /* A change applied as it arrived is logged in the bytes it arrived in (its origin's
     * own packing); anything else is packed here. */
    if (rc == 0 && (which != ST_LOG_APPLY || body == NULL)) {
        rc = ld_change_pack_buf(c, &self->packed, err);
        body = self->packed.data;
        len = self->packed.len;
    }
    if (rc != 0)
        return rc;
    const ld_kind_def_t *def = ld_schema_kind(c->kind);
    sqlite3_stmt *st = self->st[which];
    bind_text(st, 1, c->origin);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)c->seq);
    bind_text(st, 3, c->record_id);
    bind_text(st, 4, def->name);
    sqlite3_bind_int64(st, 5, (sqlite3_int64)c->hlc);
    sqlite3_bind_int(st, 6, c->deleted ? 1 : 0);
    sqlite3_bind_blob(st, 7, body, (int)len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 8, (sqlite3_int64)ld_hlc_wall_now());
    int step = sqlite3_step(st);
    finish(st);
    if (step != SQLITE_DONE)
        return db_error(self, "appending to the change log", err);
    if (added != NULL)
        *added = sqlite3_changes(self->db) > 0;
    return 0;
}

/* Appends c (origin, hlc and fields already set) addressed to `to`: one change of
 * at most LD_AUDIENCE_MAX receivers each, with the next seqs.  `checked` as for
 * nd_st_log_add (snapshots, built from rows as they are stored, are validated whole). */
int nd_st_emit(nd_store_t *self, ld_change_t *c, const nd_nodes_t *to, bool checked,
               ld_error_t *err)
{
    size_t next = 0;
    int rc = 0;
    do {
        c->naudience = 0;
        while (next < to->n && c->naudience < LD_AUDIENCE_MAX && rc == 0)
            rc = ld_change_add_audience(c, to->ids[next++], err);
        if (rc != 0)
            return rc;
        c->seq = ++self->last_seq;
        rc = nd_st_log_add(self, c, ST_LOG_ADD, checked, NULL, err);
    } while (rc == 0 && next < to->n);
    return rc;
}

/* --------------------------------------------------------------- conflicts ---- */

int nd_st_conflicts_log(nd_store_t *self, const nd_record_t *r, const nd_merge_result_t *res,
                        ld_error_t *err)
{
    sqlite3_stmt *st = self->st[ST_CONFLICT_ADD];
    uint64_t at = ld_hlc_wall_now();
    for (size_t i = 0; i < res->nconflicts; i++) {
        const nd_conflict_t *k = &res->conflicts[i];
        bind_text(st, 1, r->id);
        bind_text(st, 2, r->def->name);
        bind_text(st, 3, k->field);
        bind_text(st, 4, k->winner_value);
        sqlite3_bind_int64(st, 5, (sqlite3_int64)k->winner.hlc);
        bind_text(st, 6, k->winner.origin);
        bind_text(st, 7, k->loser_value);
        sqlite3_bind_int64(st, 8, (sqlite3_int64)k->loser.hlc);
        bind_text(st, 9, k->loser.origin);
        sqlite3_bind_int64(st, 10, (sqlite3_int64)at);
        int rc = sqlite3_step(st);
        finish(st);
        if (rc != SQLITE_DONE)
            return db_error(self, "logging a conflict", err);
    }
    return 0;
}

/* Keeps the conflict log's winner columns at each field's current value, so that the
 * log does not depend on the order changes arrived in. */
int nd_st_conflicts_follow(nd_store_t *self, const nd_record_t *r,
                           const nd_merge_result_t *res, ld_error_t *err)
{
    if (res->nwon == 0)
        return 0;
    sqlite3_stmt *st = self->st[ST_CONFLICT_ANY];
    bind_text(st, 1, r->id);
    int rc = sqlite3_step(st);
    finish(st);
    if (rc == SQLITE_DONE)
        return 0;
    if (rc != SQLITE_ROW)
        return db_error(self, "reading the conflict log", err);
    st = self->st[ST_CONFLICT_WINNER];
    for (size_t i = 0; i < res->nwon; i++) {
        const nd_slot_t *s = &r->fields[res->won[i]];
        bind_text(st, 1, r->id);
        bind_text(st, 2, r->def->fields[res->won[i]].name);
        bind_text(st, 3, s->value);
        sqlite3_bind_int64(st, 4, (sqlite3_int64)s->stamp.hlc);
        bind_text(st, 5, s->stamp.origin);
        rc = sqlite3_step(st);
        finish(st);
        if (rc != SQLITE_DONE)
            return db_error(self, "updating the conflict log", err);
    }
    return 0;
}

/* ------------------------------------------------------------- open, close ---- */

nd_store_t *nd_store_open(const char *path, bool create, ld_error_t *err)
{
    if (path == NULL || path[0] == '\0') {
        ld_error_set(err, LD_EINVAL, "store: no path given");
        return NULL;
    }
    nd_store_t *self = calloc(1, sizeof *self);
    if (self == NULL || (self->path = strdup(path)) == NULL ||
        (self->node_name = strdup("")) == NULL) {
        ld_error_set(err, LD_ENOMEM, "out of memory opening %s", path);
        goto err;
    }
    ld_hlc_init(&self->clock, 0);
    ld_uuid7_init(&self->ids);
    for (int k = 0; k < LD_KIND_COUNT; k++)
        self->live_gen[k] = 1;                   /* calloc'd slots (generation 0) are empty */
    if (!create) {
        struct stat sb;
        if (stat(path, &sb) != 0) {
            ld_error_set(err, LD_ENOTFOUND, "%s: no store here (make one with liangdi init)",
                         path);
            goto err;
        }
    }
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
    if (sqlite3_open_v2(path, &self->db, flags, NULL) != SQLITE_OK) {
        ld_error_set(err, LD_EIO, "%s: cannot open the store: %s", path,
                     self->db != NULL ? sqlite3_errmsg(self->db) : "out of memory");
        goto err;
    }
    sqlite3_busy_timeout(self->db, 5000);
    if (!(self->collate = nd_collate_new(err)) ||
        nd_collate_register(self->collate, self->db, err) != 0)
        goto err;
    char mode[16] = "", page[16] = "", ckpt[48], page_sql[48];
    /* A new file gets 16 KiB pages (an existing one keeps its own: WAL fixes the size).
     * Every page goes through the kernel twice, to the WAL and to the file: with a
     * quarter of the calls, applying batches measured 6% faster for 100-byte changes
     * and 14% for 1,000-byte ones. */
    snprintf(page_sql, sizeof page_sql, "PRAGMA page_size = %d", LD_STORE_PAGE_SIZE);
    if (run_text(self, page_sql, NULL, 0, err) != 0 ||
        run_text(self, "PRAGMA journal_mode = WAL", mode, sizeof mode, err) != 0)
        goto err;
    if (strcmp(mode, "wal") != 0) {
        ld_error_set(err, LD_EIO, "%s: cannot switch the store to WAL mode (it is %s)", path,
                     mode);
        goto err;
    }
    if (run_text(self, "PRAGMA synchronous = FULL", NULL, 0, err) != 0 ||
        run_text(self, "PRAGMA foreign_keys = ON", NULL, 0, err) != 0 ||
        run_text(self, "PRAGMA cache_size = -32768", NULL, 0, err) != 0 ||  /* 32 MiB */
        /* A write inside a group runs in a savepoint, whose undo copies every page the
         * write touches into a sub-journal.  Once one write spilled that past 64 KiB,
         * SQLite moved it to a temp file for the rest of the transaction: an import
         * then made twelve pwrite calls a row.  In memory it is emptied at each release. */
        run_text(self, "PRAGMA temp_store = MEMORY", NULL, 0, err) != 0 ||
        run_text(self, "PRAGMA journal_size_limit = 67108864", NULL, 0, err) != 0 ||
        run_text(self, "PRAGMA page_size", page, sizeof page, err) != 0)
        goto err;
    /* Checkpoint once the WAL holds 32 MiB rather than SQLite's 1,000 pages: applying
     * batches of thousands of changes measured about 15% faster (with 4 KiB pages, and
     * 3% faster than at 128 MiB with 16 KiB ones); the WAL file is kept under 64 MiB. */
    long page_bytes = strtol(page, NULL, 10);
    snprintf(ckpt, sizeof ckpt, "PRAGMA wal_autocheckpoint = %ld",
             (32L << 20) / (page_bytes >= 512 ? page_bytes : 4096));
    if (run_text(self, ckpt, NULL, 0, err) != 0)
        goto err;
    if (nd_migrate(self->db, path, err) != 0 || prepare_all(self, err) != 0)
        goto err;

    char *id = NULL, *name = NULL;
    if (setting_get(self, KEY_NODE_ID, &id, err) != 0 ||
        setting_get(self, KEY_NODE_NAME, &name, err) != 0) {
        free(id);
        free(name);
        goto err;
    }
    nd_st_copy_text(self->node_id, sizeof self->node_id, id);
    if (name != NULL) {
        free(self->node_name);
        self->node_name = name;
    }
    free(id);
    if (refresh(self, err) != 0)
        goto err;
    return self;
err:
    nd_store_destroy(&self);
    return NULL;
}

void nd_store_destroy(nd_store_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    nd_store_t *self = *self_p;
    if (self->depth > 0 && self->db != NULL && !sqlite3_get_autocommit(self->db))
        run(self, ST_ROLLBACK, NULL);
    nd_audience_destroy(&self->aud);
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(self->st[i]);
    for (int k = 0; k < LD_KIND_COUNT; k++) {
        sqlite3_finalize(self->row_get[k]);
        sqlite3_finalize(self->row_put[k]);
        sqlite3_finalize(self->row_new[k]);
    }
    sqlite3_close(self->db);
    nd_collate_destroy(&self->collate);     /* after the connection that used it */
    ld_buf_free(&self->packed);
    free(self->stamps);
    free(self->path);
    free(self->node_name);
    free(self);
    *self_p = NULL;
}

sqlite3 *nd_store_db(nd_store_t *self)
{
    return self->db;
}

void nd_store_shrink(nd_store_t *self)
{
    sqlite3_db_release_memory(self->db);
}

void nd_store_moved(nd_store_t *self, size_t bytes)
{
    if (bytes >= BULK_BYTES)
        nd_store_shrink(self);
}

nd_collate_t *nd_store_collate(nd_store_t *self)
{
    return self->collate;
}

const char *nd_store_node_id(nd_store_t *self)
{
    return self->node_id;
}

const char *nd_store_node_name(nd_store_t *self)
{
    return self->node_name;
}

int nd_store_init_node(nd_store_t *self, const char *node_id, const char *name, ld_error_t *err)
{
    if (self->node_id[0] != '\0')
        return ld_error_set(err, LD_EEXIST, "%s: this store is already node %s", self->path,
                            self->node_id);
    if (!ld_id_valid(node_id))
        return ld_error_set(err, LD_EINVAL, "node id \"%s\" is not valid (1 to %d of a-z, 0-9, "
                            "'.', '_', '-', starting a-z or 0-9)",
                            node_id != NULL ? node_id : "", LD_ID_MAX);
    if (name == NULL || name[0] == '\0' || strlen(name) > NODE_NAME_MAX ||
        !ld_utf8_valid(name, strlen(name)))
        return ld_error_set(err, LD_EINVAL, "node name must be 1 to %d bytes of UTF-8 text",
                            NODE_NAME_MAX);
    char *copy = strdup(name);
    if (copy == NULL)
        return ld_error_set(err, LD_ENOMEM, "out of memory setting the node name");
    uint64_t seq = self->last_seq;
    int rc = nd_st_tx_begin(self, err);
    if (rc == 0) {
        char *existing = NULL;
        rc = setting_get(self, KEY_NODE_ID, &existing, err);
        if (rc == 0 && existing != NULL)
            rc = ld_error_set(err, LD_EEXIST, "%s: this store is already node %s", self->path,
                              existing);
        free(existing);
        if (rc == 0)
            rc = setting_put(self, KEY_NODE_ID, node_id, err);
        if (rc == 0)
            rc = setting_put(self, KEY_NODE_NAME, name, err);
        rc = nd_st_tx_end(self, rc == 0, seq, err) == 0 ? 0 : (rc != 0 ? rc : LD_EIO);
    }
    if (rc != 0) {
        free(copy);
        return rc;
    }
    nd_st_copy_text(self->node_id, sizeof self->node_id, node_id);
    free(self->node_name);
    self->node_name = copy;
    return 0;
}

char *nd_store_setting(nd_store_t *self, const char *key)
{
    char *value = NULL;
    if (key == NULL || setting_get(self, key, &value, NULL) != 0)
        return NULL;
    return value;
}

int nd_store_set_setting(nd_store_t *self, const char *key, const char *value, ld_error_t *err)
{
    if (key == NULL || key[0] == '\0')
        return ld_error_set(err, LD_EINVAL, "setting: no key given");
    if (strcmp(key, KEY_NODE_ID) == 0 || strcmp(key, KEY_NODE_NAME) == 0 ||
        strcmp(key, KEY_CLOCK) == 0)
        return ld_error_set(err, LD_EDENIED, "setting %s is kept by the store itself", key);
    if (value != NULL && !ld_utf8_valid(value, strlen(value)))
        return ld_error_set(err, LD_EINVAL, "setting %s: the value is not valid UTF-8", key);
    return setting_put(self, key, value, err);
}

/* ------------------------------------------------------------------ groups ---- */

int nd_store_begin(nd_store_t *self, ld_error_t *err)
{
    if (self->group || self->depth > 0)
        return ld_error_set(err, LD_EBUSY, "%s: a group of writes is already open", self->path);
    int rc = nd_st_tx_begin(self, err);
    if (rc != 0)
        return rc;
    self->group = true;
    self->group_seq = self->last_seq;
    return 0;
}

int nd_store_begin_bulk(nd_store_t *self, ld_error_t *err)
{
    int rc = nd_store_begin(self, err);
    if (rc == 0)
        self->bulk = true;
    return rc;
}

int nd_store_commit(nd_store_t *self, ld_error_t *err)
{
    if (!self->group || self->depth != 1)
        return ld_error_set(err, LD_EINVAL, "%s: no group of writes is open", self->path);
    if (self->broken) {
        int rc = nd_st_broken_group(self, err);
        nd_st_tx_end(self, false, self->group_seq, NULL);
        return rc;
    }
    int rc = nd_st_tx_end(self, true, self->group_seq, err);
    return rc == 0 ? 0 : (err != NULL && err->code != 0 ? err->code : LD_EIO);
}

void nd_store_rollback(nd_store_t *self)
{
    if (!self->group)
        return;
    nd_st_tx_end(self, false, self->group_seq, NULL);
}

/* ------------------------------------------------------------------ reads ---- */

int nd_store_outbox(nd_store_t *self, uint64_t after_seq, size_t max, nd_outbox_fn fn,
                    void *ctx, ld_error_t *err)
{
    if (fn == NULL)
        return ld_error_set(err, LD_EINVAL, "outbox: no callback given");
    if (self->node_id[0] == '\0' || max == 0)
        return 0;
    sqlite3_stmt *st = self->st[ST_OUTBOX];
    bind_text(st, 1, self->node_id);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)after_seq);
    sqlite3_bind_int64(st, 3, max > (size_t)INT64_MAX ? INT64_MAX : (sqlite3_int64)max);
    int count = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        uint64_t seq = (uint64_t)sqlite3_column_int64(st, 0);
        const uint8_t *body = sqlite3_column_blob(st, 1);
        size_t len = (size_t)sqlite3_column_bytes(st, 1);
        count++;
        if (fn(ctx, seq, body, len) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    finish(st);
    if (rc != SQLITE_DONE)
        return db_error(self, "reading the outbox", err);
    return count;
}

uint64_t nd_store_last_seq(nd_store_t *self)
{
    if (self->depth > 0)
        return self->last_seq;
    /* Another process (the CLI, the daemon) may have written since. */
    uint64_t seq = self->last_seq;
    sqlite3_stmt *st = self->st[ST_LOG_LAST];
    bind_text(st, 1, self->node_id);
    if (sqlite3_step(st) == SQLITE_ROW)
        seq = (uint64_t)sqlite3_column_int64(st, 0);
    finish(st);
    return seq;
}

uint64_t nd_store_pushed_upto(nd_store_t *self)
{
    return setting_u64(self, KEY_PUSHED_UPTO);
}

int nd_store_set_pushed_upto(nd_store_t *self, uint64_t upto, ld_error_t *err)
{
    if (upto <= nd_store_pushed_upto(self))
        return 0;
    return nd_st_setting_put_u64(self, KEY_PUSHED_UPTO, upto, err);
}

uint64_t nd_store_cursor(nd_store_t *self)
{
    return setting_u64(self, KEY_CURSOR);
}

int nd_store_set_cursor(nd_store_t *self, uint64_t cursor, ld_error_t *err)
{
    return nd_st_setting_put_u64(self, KEY_CURSOR, cursor, err);
}

int nd_store_get(nd_store_t *self, ld_kind_t kind, const char *record_id, ld_change_t *out,
                 ld_error_t *err)
{
    const ld_kind_def_t *def = ld_schema_kind(kind);
    if (def == NULL)
        return ld_error_set(err, LD_EINVAL, "get: unknown record kind %d", (int)kind);
    if (record_id == NULL || strlen(record_id) > LD_RECORD_ID_MAX)
        return ld_error_set(err, LD_ENOTFOUND, "%s: no such record", def->name);
    ld_change_clear(out);
    nd_record_t r;
    int rc = nd_st_row_load(self, def, record_id, &r, err);
    if (rc != 0)
        return rc;
    if (!r.exists) {
        rc = ld_error_set(err, LD_ENOTFOUND, "%s %s not found", def->name, record_id);
        goto out;
    }
    out->kind = kind;
    nd_st_copy_text(out->record_id, sizeof out->record_id, record_id);
    nd_stamp_t latest = nd_record_latest(&r);
    out->hlc = latest.hlc;
    nd_st_copy_text(out->origin, sizeof out->origin, latest.origin);
    out->deleted = nd_record_deleted(&r);
    for (size_t i = 0; i < def->nfields && rc == 0; i++) {
        const nd_slot_t *s = &r.fields[i];
        if (s->value == NULL)
            continue;
        rc = ld_change_set(out, def->fields[i].name, s->value, err);
        if (rc == 0) {
            ld_field_t *f = &out->fields[out->nfields - 1];
            f->hlc = s->stamp.hlc;
            nd_st_copy_text(f->origin, sizeof f->origin, s->stamp.origin);
        }
    }
    if (rc != 0)
        ld_change_clear(out);
out:
    nd_record_clear(&r);
    return rc;
}

bool nd_store_exists(nd_store_t *self, ld_kind_t kind, const char *record_id)
{
    const ld_kind_def_t *def = ld_schema_kind(kind);
    bool live = false;
    if (def == NULL || record_id == NULL)
        return false;
    if (nd_st_row_live(self, def, record_id, &live, NULL) != 0)
        return false;
    return live;
}

bool nd_store_is_mine(nd_store_t *self, ld_kind_t kind, const char *record_id)
{
    const ld_kind_def_t *def = ld_schema_kind(kind);
    if (def == NULL || record_id == NULL || self->node_id[0] == '\0')
        return false;
    nd_record_t r;
    if (nd_st_row_load(self, def, record_id, &r, NULL) != 0)
        return false;
    if (self->depth == 0)
        nd_st_forget(self, LD_KIND_NONE);       /* others may have written since */
    bool mine = r.exists && nd_audience_check_writable(self->aud, self->node_id, &r, NULL) == 0;
    nd_record_clear(&r);
    return mine;
}

uint64_t nd_store_conflict_count(nd_store_t *self)
{
    sqlite3_stmt *st = self->st[ST_CONFLICT_COUNT];
    uint64_t n = 0;
    if (sqlite3_step(st) == SQLITE_ROW)
        n = (uint64_t)sqlite3_column_int64(st, 0);
    finish(st);
    return n;
}
