/* registry_sqlite.c: the embedded registry store: nodes, links, the keys nodes no longer
 * use and the registry's generation in the broker's SQLite file, each command one
 * transaction.
 *
 * Other connections notice a change cheaply: PRAGMA data_version moves when another
 * connection commits, and only then is the generation (raised by every command, not
 * by statistics) read.  A connection's own commits do not move its data_version, so
 * its own commands mark it changed directly. */
#include "registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "db.h"

static const char rs_schema[] =
    "CREATE TABLE IF NOT EXISTS \"nodes\"("
    "  \"id\" TEXT PRIMARY KEY NOT NULL,"
    "  \"name\" TEXT NOT NULL,"
    "  \"key\" TEXT NOT NULL UNIQUE,"
    "  \"removed\" INTEGER NOT NULL DEFAULT 0,"
    "  \"last_seen\" INTEGER NOT NULL DEFAULT 0,"
    "  \"pushed\" INTEGER NOT NULL DEFAULT 0,"
    "  \"fetched\" INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS \"links\"("
    "  \"a\" TEXT NOT NULL REFERENCES \"nodes\"(\"id\"),"
    "  \"b\" TEXT NOT NULL REFERENCES \"nodes\"(\"id\"),"
    "  PRIMARY KEY(\"a\", \"b\"), CHECK(\"a\" < \"b\")) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS \"retired_keys\"("
    "  \"key\" TEXT PRIMARY KEY NOT NULL,"
    "  \"node\" TEXT NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS \"registry_meta\"(\"generation\" INTEGER NOT NULL);"
    "INSERT INTO \"registry_meta\"(\"generation\") SELECT 0 "
    "  WHERE NOT EXISTS (SELECT 1 FROM \"registry_meta\");";

typedef struct rs_store {
    sqlite3   *db;
    bool       looked;          /* changed() was called before */
    bool       dirty;           /* this connection changed the registry */
    long long  data_version;
    long long  generation;
} rs_store_t;

static void rs_close(void **store_p)
{
    if (!store_p || !*store_p)
        return;
    rs_store_t *self = *store_p;
    bk_db_close(&self->db);
    free(self);
    *store_p = NULL;
}

static void *rs_open(const char *path, bool create, ld_error_t *err)
{
    rs_store_t *self = calloc(1, sizeof *self);
    if (!self) {
        ld_error_set(err, LD_ENOMEM, "out of memory opening %s", path);
        return NULL;
    }
    self->db = bk_db_open(path, create, err);
    if (!self->db || (create && bk_db_exec(self->db, rs_schema, err) < 0)) {
        void *p = self;
        rs_close(&p);
        return NULL;
    }
    return self;
}

/* ---- small statement helpers ---- */

static int rs_bind_text(rs_store_t *self, sqlite3_stmt *st, int i, const char *text,
                        ld_error_t *err)
{
    if (sqlite3_bind_text(st, i, text, -1, SQLITE_STATIC) != SQLITE_OK)
        return bk_db_fail(self->db, "bind", err);
    return 0;
}

/* Steps a statement expected to return no rows, then finalizes it. */
static int rs_run_once(rs_store_t *self, sqlite3_stmt *st, const char *what, ld_error_t *err)
{
    int rc = 0;
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = bk_db_fail(self->db, what, err);
    sqlite3_finalize(st);
    return rc;
}

/* Runs `sql` (compiled-in, returning no rows) once with text parameters ?1.. from
 * params[0..n); `what` names it in a failure.  0 or LD_EIO. */
static int rs_write(rs_store_t *self, const char *sql, const char *const *params, int n,
                    const char *what, ld_error_t *err)
{
    sqlite3_stmt *st = NULL;
    int rc = bk_db_prepare(self->db, sql, &st, err);
    for (int i = 0; i < n && rc == 0; i++)
        rc = rs_bind_text(self, st, i + 1, params[i], err);
    if (rc == 0)
        return rs_run_once(self, st, what, err);
    sqlite3_finalize(st);
    return rc;
}

static int rs_begin(rs_store_t *self, ld_error_t *err)
{
    return bk_db_exec(self->db, "BEGIN IMMEDIATE", err);
}

/* Raises the generation other connections watch and commits; this connection's own
 * look reports the change too. */
static int rs_bump_commit(rs_store_t *self, ld_error_t *err)
{
    int rc = bk_db_exec(self->db,
        "UPDATE \"registry_meta\" SET \"generation\" = \"generation\" + 1", err);
    if (rc == 0)
        rc = bk_db_exec(self->db, "COMMIT", err);
    if (rc == 0)
        self->dirty = true;
    return rc;
}

/* Whether node `id` exists (*exists) and is removed (*removed). */
static int rs_lookup(rs_store_t *self, const char *id, bool *exists, bool *removed,
                     ld_error_t *err)
{
    sqlite3_stmt *st = NULL;
    int rc = bk_db_prepare(self->db,
        "SELECT \"removed\" FROM \"nodes\" WHERE \"id\" = ?1", &st, err);
    if (rc < 0)
        return rc;
    rc = rs_bind_text(self, st, 1, id, err);
    if (rc < 0)
        goto out;
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        *exists = true;
        *removed = sqlite3_column_int(st, 0) != 0;
    } else if (step == SQLITE_DONE) {
        *exists = false;
        *removed = false;
    } else {
        rc = bk_db_fail(self->db, "reading nodes", err);
    }
out:
    sqlite3_finalize(st);
    return rc;
}

/* The node that has public key `key`: 1 (holder filled; *retired when `node rekey`
 * took it from that node), 0 none, or < 0. */
static int rs_key_holder(rs_store_t *self, const char *key, char holder[LD_ID_MAX + 1],
                         bool *retired, ld_error_t *err)
{
    sqlite3_stmt *st = NULL;
    int rc = bk_db_prepare(self->db,
        "SELECT \"id\", 0 FROM \"nodes\" WHERE \"key\" = ?1 "
        "UNION ALL SELECT \"node\", 1 FROM \"retired_keys\" WHERE \"key\" = ?1", &st, err);
    if (rc == 0)
        rc = rs_bind_text(self, st, 1, key, err);
    int step = rc == 0 ? sqlite3_step(st) : SQLITE_DONE;
    if (step == SQLITE_ROW) {
        snprintf(holder, LD_ID_MAX + 1, "%s", (const char *)sqlite3_column_text(st, 0));
        *retired = sqlite3_column_int(st, 1) != 0;
        rc = 1;
    } else if (step != SQLITE_DONE) {
        rc = bk_db_fail(self->db, "reading nodes", err);
    }
    sqlite3_finalize(st);
    return rc;
}

/* LD_EEXIST when public key `key` is a node's, now or retired (naming it), else 0. */
static int rs_key_free(rs_store_t *self, const char *key, ld_error_t *err)
{
    char holder[LD_ID_MAX + 1];
    bool retired = false;
    int rc = rs_key_holder(self, key, holder, &retired, err);
    return rc == 1 ? bk_registry_key_taken(err, key, holder, retired) : rc;
}

/* ---- commands ---- */

static int rs_add_node(void *store, const char *id, const char *name, const char *key,
                       ld_error_t *err)
{
    rs_store_t *self = store;
    const char *row[] = { id, name, key };
    bool exists = false, removed = false;
    int rc = rs_begin(self, err);
    if (rc < 0)
        return rc;
    rc = rs_lookup(self, id, &exists, &removed, err);
    if (rc == 0 && exists)
        rc = ld_error_set(err, LD_EEXIST, removed
                          ? "node %s was removed; a removed id is not reused"
                          : "node %s is already registered", id);
    if (rc == 0)
        rc = rs_key_free(self, key, err);
    if (rc == 0)
        rc = rs_write(self, "INSERT INTO \"nodes\"(\"id\", \"name\", \"key\") VALUES (?1, ?2, ?3)",
                      row, 3, "adding a node", err);
    if (rc < 0 || (rc = rs_bump_commit(self, err)) < 0)
        bk_db_rollback(self->db);
    return rc;
}

/* Opens a write transaction in which node `id` is registered and not removed, else
 * rolls it back: LD_ENOTFOUND, or LD_EINVAL saying "node <id> <if_removed>". */
static int rs_begin_active(rs_store_t *self, const char *id, const char *if_removed,
                           ld_error_t *err)
{
    bool exists = false, removed = false;
    int rc = rs_begin(self, err);
    if (rc < 0)
        return rc;
    rc = rs_lookup(self, id, &exists, &removed, err);
    if (rc == 0 && !exists)
        rc = ld_error_set(err, LD_ENOTFOUND, "node %s is not registered", id);
    else if (rc == 0 && removed)
        rc = ld_error_set(err, LD_EINVAL, "node %s %s", id, if_removed);
    if (rc < 0)
        bk_db_rollback(self->db);
    return rc;
}

static int rs_remove_node(void *store, const char *id, ld_error_t *err)
{
    rs_store_t *self = store;
    int rc = rs_begin_active(self, id, "is already removed", err);
    if (rc < 0)
        return rc;
    rc = rs_write(self, "UPDATE \"nodes\" SET \"removed\" = 1 WHERE \"id\" = ?1", &id, 1,
                  "removing a node", err);
    if (rc < 0 || (rc = rs_bump_commit(self, err)) < 0)
        bk_db_rollback(self->db);
    return rc;
}

static int rs_set_key(void *store, const char *id, const char *key, ld_error_t *err)
{
    rs_store_t *self = store;
    const char *params[] = { id, key };
    int rc = rs_begin_active(self, id, "is removed; a removed node gets no new key", err);
    if (rc < 0)
        return rc;
    /* Checked, retired, replaced: one transaction. */
    rc = rs_key_free(self, key, err);
    if (rc == 0)
        rc = rs_write(self, "INSERT INTO \"retired_keys\"(\"key\", \"node\") "
                      "SELECT \"key\", \"id\" FROM \"nodes\" WHERE \"id\" = ?1", params, 1,
                      "retiring a key", err);
    if (rc == 0)
        rc = rs_write(self, "UPDATE \"nodes\" SET \"key\" = ?2 WHERE \"id\" = ?1", params, 2,
                      "replacing a key", err);
    if (rc < 0 || (rc = rs_bump_commit(self, err)) < 0)
        bk_db_rollback(self->db);
    return rc;
}

static int rs_each_retired(void *store, bk_retired_fn fn, void *ctx, ld_error_t *err)
{
    rs_store_t *self = store;
    sqlite3_stmt *st = NULL;
    int rc = bk_db_prepare(self->db, "SELECT \"key\", \"node\" FROM \"retired_keys\" "
                           "ORDER BY \"key\"", &st, err);
    int step = SQLITE_DONE;
    while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
        if (fn(ctx, (const char *)sqlite3_column_text(st, 0),
               (const char *)sqlite3_column_text(st, 1)) != 0)
            break;
    }
    if (rc == 0 && step != SQLITE_ROW && step != SQLITE_DONE)
        rc = bk_db_fail(self->db, "reading retired keys", err);
    sqlite3_finalize(st);
    return rc;
}

static int rs_import_retired(void *store, const char *key, const char *node, ld_error_t *err)
{
    rs_store_t *self = store;
    const char *row[] = { key, node };
    char holder[LD_ID_MAX + 1];
    bool retired = false;
    int rc = rs_begin(self, err);
    if (rc < 0)
        return rc;
    rc = rs_key_holder(self, key, holder, &retired, err);
    if (rc == 1)   /* copied before: nothing new; anyone else's: taken */
        rc = retired && strcmp(holder, node) == 0 ? 0
             : bk_registry_key_taken(err, key, holder, retired);
    else if (rc == 0)
        rc = rs_write(self, "INSERT INTO \"retired_keys\"(\"key\", \"node\") VALUES (?1, ?2)",
                      row, 2, "copying a retired key", err);
    if (rc == 0)
        rc = bk_db_exec(self->db, "COMMIT", err);
    if (rc < 0)
        bk_db_rollback(self->db);
    return rc;
}

/* Inside the transaction rs_begin opened: runs `sql` (?1 lo, ?2 hi) on the links
 * table, which must change one row (else `none_rc` with "lo and hi `none_what`"), then
 * bumps the generation and commits; on any failure, rolls back. */
static int rs_link_write(rs_store_t *self, const char *sql, const char *lo, const char *hi,
                         const char *what, int none_rc, const char *none_what,
                         ld_error_t *err)
{
    const char *ends[] = { lo, hi };
    int rc = rs_write(self, sql, ends, 2, what, err);
    if (rc < 0)
        goto err;
    if (sqlite3_changes(self->db) == 0) {
        rc = ld_error_set(err, none_rc, "%s and %s %s", lo, hi, none_what);
        goto err;
    }
    if ((rc = rs_bump_commit(self, err)) < 0)
        goto err;
    return 0;
err:
    bk_db_rollback(self->db);
    return rc;
}

static int rs_add_link(void *store, const char *lo, const char *hi, ld_error_t *err)
{
    rs_store_t *self = store;
    int rc = rs_begin(self, err);
    if (rc < 0)
        return rc;
    const char *ends[2] = { lo, hi };
    for (int i = 0; i < 2; i++) {
        bool exists = false, removed = false;
        rc = rs_lookup(self, ends[i], &exists, &removed, err);
        if (rc == 0 && !exists)
            rc = ld_error_set(err, LD_ENOTFOUND, "node %s is not registered", ends[i]);
        else if (rc == 0 && removed)
            rc = ld_error_set(err, LD_EINVAL, "node %s was removed", ends[i]);
        if (rc < 0) {
            bk_db_rollback(self->db);
            return rc;
        }
    }
    return rs_link_write(self, "INSERT INTO \"links\"(\"a\", \"b\") VALUES (?1, ?2) "
                         "ON CONFLICT DO NOTHING", lo, hi, "adding a link", LD_EEXIST,
                         "are already linked", err);
}

static int rs_remove_link(void *store, const char *lo, const char *hi, ld_error_t *err)
{
    rs_store_t *self = store;
    int rc = rs_begin(self, err);
    if (rc < 0)
        return rc;
    return rs_link_write(self, "DELETE FROM \"links\" WHERE \"a\" = ?1 AND \"b\" = ?2", lo,
                         hi, "removing a link", LD_ENOTFOUND, "are not linked", err);
}

static int rs_each_node(void *store, bk_node_fn fn, void *ctx, ld_error_t *err)
{
    rs_store_t *self = store;
    sqlite3_stmt *st = NULL;
    int rc = bk_db_prepare(self->db,
        "SELECT \"id\", \"name\", \"key\", \"removed\", \"last_seen\", \"pushed\", \"fetched\" "
        "FROM \"nodes\" ORDER BY \"id\"", &st, err);
    if (rc < 0)
        return rc;
    for (;;) {
        int step = sqlite3_step(st);
        if (step == SQLITE_DONE)
            break;
        if (step != SQLITE_ROW) {
            rc = bk_db_fail(self->db, "reading nodes", err);
            break;
        }
        bk_node_info_t info = {
            .id        = (const char *)sqlite3_column_text(st, 0),
            .name      = (const char *)sqlite3_column_text(st, 1),
            .key       = (const char *)sqlite3_column_text(st, 2),
            .removed   = sqlite3_column_int(st, 3) != 0,
            .last_seen = sqlite3_column_int64(st, 4),
            .pushed    = (uint64_t)sqlite3_column_int64(st, 5),
            .fetched   = (uint64_t)sqlite3_column_int64(st, 6),
        };
        if (!info.id || !info.name || !info.key) {
            rc = ld_error_set(err, LD_EIO, "a node row holds NULL");
            break;
        }
        if (fn(ctx, &info) != 0)
            break;
    }
    sqlite3_finalize(st);
    return rc;
}

static int rs_each_link(void *store, bk_link_fn fn, void *ctx, ld_error_t *err)
{
    rs_store_t *self = store;
    sqlite3_stmt *st = NULL;
    int rc = bk_db_prepare(self->db,
        "SELECT \"a\", \"b\" FROM \"links\" ORDER BY \"a\", \"b\"", &st, err);
    if (rc < 0)
        return rc;
    for (;;) {
        int step = sqlite3_step(st);
        if (step == SQLITE_DONE)
            break;
        if (step != SQLITE_ROW) {
            rc = bk_db_fail(self->db, "reading links", err);
            break;
        }
        const char *a = (const char *)sqlite3_column_text(st, 0);
        const char *b = (const char *)sqlite3_column_text(st, 1);
        if (!a || !b) {
            rc = ld_error_set(err, LD_EIO, "a link row holds NULL");
            break;
        }
        if (fn(ctx, a, b) != 0)
            break;
    }
    sqlite3_finalize(st);
    return rc;
}

static int rs_generation(rs_store_t *self, long long *generation, ld_error_t *err)
{
    sqlite3_stmt *st = NULL;
    int rc = bk_db_prepare(self->db, "SELECT \"generation\" FROM \"registry_meta\"", &st, err);
    if (rc < 0)
        return rc;
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW)
        *generation = sqlite3_column_int64(st, 0);
    else if (step == SQLITE_DONE)
        *generation = 0;
    else
        rc = bk_db_fail(self->db, "reading the registry generation", err);
    sqlite3_finalize(st);
    return rc;
}

static int rs_changed(void *store, bool *changed, ld_error_t *err)
{
    rs_store_t *self = store;
    long long version = 0, generation = 0;
    *changed = false;
    int rc = bk_db_data_version(self->db, &version, err);
    if (rc < 0)
        return rc;
    if (self->looked && !self->dirty && version == self->data_version)
        return 0;
    rc = rs_generation(self, &generation, err);
    if (rc < 0)
        return rc;
    *changed = !self->looked || self->dirty || generation != self->generation;
    self->looked = true;
    self->dirty = false;
    self->data_version = version;
    self->generation = generation;
    return 0;
}

static int rs_write_stats(void *store, const bk_node_stat_t *stats, size_t n, size_t *written,
                          ld_error_t *err)
{
    rs_store_t *self = store;
    sqlite3_stmt *st = NULL;
    *written = 0;
    int rc = rs_begin(self, err);
    if (rc < 0)
        return rc;
    rc = bk_db_prepare(self->db,
        "UPDATE \"nodes\" SET \"last_seen\" = max(\"last_seen\", ?1), "
        "\"pushed\" = \"pushed\" + ?2, \"fetched\" = \"fetched\" + ?3 WHERE \"id\" = ?4",
        &st, err);
    if (rc < 0)
        goto err;
    for (size_t i = 0; i < n; i++) {
        const bk_node_stat_t *s = &stats[i];
        if (sqlite3_bind_int64(st, 1, s->seen) != SQLITE_OK
            || sqlite3_bind_int64(st, 2, (sqlite3_int64)s->pushed) != SQLITE_OK
            || sqlite3_bind_int64(st, 3, (sqlite3_int64)s->fetched) != SQLITE_OK
            || sqlite3_bind_text(st, 4, s->id, -1, SQLITE_STATIC) != SQLITE_OK) {
            rc = bk_db_fail(self->db, "bind", err);
            goto err;
        }
        if (sqlite3_step(st) != SQLITE_DONE) {
            rc = bk_db_fail(self->db, "writing node statistics", err);
            goto err;
        }
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    st = NULL;
    rc = bk_db_exec(self->db, "COMMIT", err);
    if (rc < 0)
        goto err;
    *written = n;           /* one transaction: all or nothing */
    return 0;
err:
    sqlite3_finalize(st);
    bk_db_rollback(self->db);
    return rc;
}

const bk_registry_ops_t bk_registry_sqlite = {
    .name        = "sqlite",
    .open        = rs_open,
    .close       = rs_close,
    .add_node    = rs_add_node,
    .remove_node = rs_remove_node,
    .set_key     = rs_set_key,
    .each_retired   = rs_each_retired,
    .import_retired = rs_import_retired,
    .add_link    = rs_add_link,
    .remove_link = rs_remove_link,
    .each_node   = rs_each_node,
    .each_link   = rs_each_link,
    .changed     = rs_changed,
    .write_stats = rs_write_stats,
};
