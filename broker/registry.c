/* registry.c: the nodes the broker knows, the links between them, and who may address
 * whom.  Commands write the store; the server and the ZAP handler read a snapshot. */
#include "registry.h"

#include <stdlib.h>
#include <string.h>
#include "db.h"

static const char reg_schema[] =
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
    "CREATE TABLE IF NOT EXISTS \"registry_meta\"(\"generation\" INTEGER NOT NULL);"
    "INSERT INTO \"registry_meta\"(\"generation\") SELECT 0 "
    "  WHERE NOT EXISTS (SELECT 1 FROM \"registry_meta\");";

/* A node of the snapshot. */
typedef struct reg_node {
    char *id;
    char *key;
    bool  removed;
} reg_node_t;

/* A link of the snapshot, a < b. */
typedef struct reg_link {
    char *a;
    char *b;
} reg_link_t;

/* Statistics not yet written. */
typedef struct reg_stat {
    char     id[LD_ID_MAX + 1];
    int64_t  seen;
    uint64_t pushed, fetched;
} reg_stat_t;

struct bk_registry {
    sqlite3    *db;
    bool        loaded;
    long long   data_version;
    long long   generation;
    reg_node_t *nodes;        /* sorted by id */
    size_t      nnodes;
    reg_link_t *links;        /* sorted by (a, b) */
    size_t      nlinks;
    reg_stat_t *stats;        /* sorted by id */
    size_t      nstats, stats_cap;
};

static void reg_free_snapshot(reg_node_t *nodes, size_t nnodes, reg_link_t *links,
                              size_t nlinks)
{
    for (size_t i = 0; i < nnodes; i++) {
        free(nodes[i].id);
        free(nodes[i].key);
    }
    free(nodes);
    for (size_t i = 0; i < nlinks; i++) {
        free(links[i].a);
        free(links[i].b);
    }
    free(links);
}

bk_registry_t *bk_registry_new(const char *path, bool create, ld_error_t *err)
{
    bk_registry_t *self = calloc(1, sizeof *self);
    if (!self) {
        ld_error_set(err, LD_ENOMEM, "out of memory opening %s", path);
        return NULL;
    }
    self->db = bk_db_open(path, create, err);
    if (!self->db)
        goto err;
    if (create && bk_db_exec(self->db, reg_schema, err) < 0)
        goto err;
    if (bk_registry_refresh(self, NULL, err) < 0)
        goto err;
    return self;
err:
    bk_registry_destroy(&self);
    return NULL;
}

void bk_registry_destroy(bk_registry_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    bk_registry_t *self = *self_p;
    if (self->db && self->nstats > 0)
        bk_registry_flush(self, NULL);
    reg_free_snapshot(self->nodes, self->nnodes, self->links, self->nlinks);
    free(self->stats);
    bk_db_close(&self->db);
    free(self);
    *self_p = NULL;
}

/* ---- small statement helpers ---- */

static int reg_bind_text(bk_registry_t *self, sqlite3_stmt *st, int i, const char *text,
                         ld_error_t *err)
{
    if (sqlite3_bind_text(st, i, text, -1, SQLITE_STATIC) != SQLITE_OK)
        return bk_db_fail(self->db, "bind", err);
    return 0;
}

/* Steps a statement expected to return no rows, then finalizes it. */
static int reg_run_once(bk_registry_t *self, sqlite3_stmt *st, const char *what,
                        ld_error_t *err)
{
    int rc = 0;
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = bk_db_fail(self->db, what, err);
    sqlite3_finalize(st);
    return rc;
}

static int reg_begin(bk_registry_t *self, ld_error_t *err)
{
    return bk_db_exec(self->db, "BEGIN IMMEDIATE", err);
}

static int reg_commit(bk_registry_t *self, ld_error_t *err)
{
    return bk_db_exec(self->db, "COMMIT", err);
}

/* Raises the generation other connections watch, and marks this connection's own
 * snapshot stale (its own commits do not change its data_version). */
static int reg_bump(bk_registry_t *self, ld_error_t *err)
{
    self->loaded = false;
    return bk_db_exec(self->db,
        "UPDATE \"registry_meta\" SET \"generation\" = \"generation\" + 1", err);
}

/* Whether node `id` exists (*exists) and is removed (*removed). */
static int reg_lookup(bk_registry_t *self, const char *id, bool *exists, bool *removed,
                      ld_error_t *err)
{
    sqlite3_stmt *st = NULL;
    int rc = bk_db_prepare(self->db,
        "SELECT \"removed\" FROM \"nodes\" WHERE \"id\" = ?1", &st, err);
    if (rc < 0)
        return rc;
    rc = reg_bind_text(self, st, 1, id, err);
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

static int reg_check_id(const char *what, const char *id, ld_error_t *err)
{
    if (!id || !ld_id_valid(id))
        return ld_error_set(err, LD_EINVAL, "%s '%s' is not a valid node id "
                            "(1 to 64 of a-z 0-9 . _ -, starting with a letter or digit)",
                            what, id ? id : "");
    return 0;
}

/* ---- commands ---- */

int bk_registry_add_node(bk_registry_t *self, const char *id, const char *name,
                         const char *key, ld_error_t *err)
{
    sqlite3_stmt *st = NULL;
    bool exists = false, removed = false;
    int rc = reg_check_id("node id", id, err);
    if (rc < 0)
        return rc;
    if (!key || !ld_key_valid(key))
        return ld_error_set(err, LD_EINVAL, "key '%s' is not a CURVE public key "
                            "(40 characters of Z85)", key ? key : "");
    if (!name || !*name)
        name = id;
    if (strlen(name) > BK_NAME_MAX || !ld_utf8_valid(name, strlen(name)))
        return ld_error_set(err, LD_EINVAL, "name of node %s is not UTF-8 text of at most "
                            "%d bytes", id, BK_NAME_MAX);
    rc = reg_begin(self, err);
    if (rc < 0)
        return rc;
    rc = reg_lookup(self, id, &exists, &removed, err);
    if (rc < 0)
        goto err;
    if (exists) {
        rc = ld_error_set(err, LD_EEXIST, removed
                          ? "node %s was removed; a removed id is not reused"
                          : "node %s is already registered", id);
        goto err;
    }
    rc = bk_db_prepare(self->db, "SELECT \"id\" FROM \"nodes\" WHERE \"key\" = ?1", &st, err);
    if (rc < 0)
        goto err;
    rc = reg_bind_text(self, st, 1, key, err);
    if (rc < 0)
        goto err;
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        rc = ld_error_set(err, LD_EEXIST, "key %s is already registered to node %s", key,
                          (const char *)sqlite3_column_text(st, 0));
        goto err;
    }
    if (step != SQLITE_DONE) {
        rc = bk_db_fail(self->db, "reading nodes", err);
        goto err;
    }
    sqlite3_finalize(st);
    st = NULL;
    rc = bk_db_prepare(self->db,
        "INSERT INTO \"nodes\"(\"id\", \"name\", \"key\") VALUES (?1, ?2, ?3)", &st, err);
    if (rc < 0)
        goto err;
    if ((rc = reg_bind_text(self, st, 1, id, err)) < 0
        || (rc = reg_bind_text(self, st, 2, name, err)) < 0
        || (rc = reg_bind_text(self, st, 3, key, err)) < 0)
        goto err;
    rc = reg_run_once(self, st, "adding a node", err);
    st = NULL;
    if (rc < 0 || (rc = reg_bump(self, err)) < 0 || (rc = reg_commit(self, err)) < 0)
        goto err;
    return 0;
err:
    sqlite3_finalize(st);
    bk_db_rollback(self->db);
    return rc;
}

int bk_registry_remove_node(bk_registry_t *self, const char *id, ld_error_t *err)
{
    sqlite3_stmt *st = NULL;
    bool exists = false, removed = false;
    int rc = reg_check_id("node id", id, err);
    if (rc < 0)
        return rc;
    rc = reg_begin(self, err);
    if (rc < 0)
        return rc;
    rc = reg_lookup(self, id, &exists, &removed, err);
    if (rc < 0)
        goto err;
    if (!exists) {
        rc = ld_error_set(err, LD_ENOTFOUND, "node %s is not registered", id);
        goto err;
    }
    if (removed) {
        rc = ld_error_set(err, LD_EINVAL, "node %s is already removed", id);
        goto err;
    }
    rc = bk_db_prepare(self->db, "UPDATE \"nodes\" SET \"removed\" = 1 WHERE \"id\" = ?1", &st, err);
    if (rc < 0)
        goto err;
    rc = reg_bind_text(self, st, 1, id, err);
    if (rc < 0)
        goto err;
    rc = reg_run_once(self, st, "removing a node", err);
    st = NULL;
    if (rc < 0 || (rc = reg_bump(self, err)) < 0 || (rc = reg_commit(self, err)) < 0)
        goto err;
    return 0;
err:
    sqlite3_finalize(st);
    bk_db_rollback(self->db);
    return rc;
}

/* Checks both ends of a link and puts them in order: *lo < *hi. */
static int reg_link_ends(const char *a, const char *b, const char **lo, const char **hi,
                         ld_error_t *err)
{
    int rc = reg_check_id("node", a, err);
    if (rc == 0)
        rc = reg_check_id("node", b, err);
    if (rc < 0)
        return rc;
    int cmp = strcmp(a, b);
    if (cmp == 0)
        return ld_error_set(err, LD_EINVAL, "a node cannot be linked to itself (%s)", a);
    *lo = cmp < 0 ? a : b;
    *hi = cmp < 0 ? b : a;
    return 0;
}

int bk_registry_add_link(bk_registry_t *self, const char *a, const char *b, ld_error_t *err)
{
    sqlite3_stmt *st = NULL;
    const char *lo = NULL, *hi = NULL;
    int rc = reg_link_ends(a, b, &lo, &hi, err);
    if (rc < 0)
        return rc;
    rc = reg_begin(self, err);
    if (rc < 0)
        return rc;
    const char *ends[2] = { a, b };
    for (int i = 0; i < 2; i++) {
        bool exists = false, removed = false;
        rc = reg_lookup(self, ends[i], &exists, &removed, err);
        if (rc < 0)
            goto err;
        if (!exists) {
            rc = ld_error_set(err, LD_ENOTFOUND, "node %s is not registered", ends[i]);
            goto err;
        }
        if (removed) {
            rc = ld_error_set(err, LD_EINVAL, "node %s was removed", ends[i]);
            goto err;
        }
    }
    rc = bk_db_prepare(self->db, "INSERT INTO \"links\"(\"a\", \"b\") VALUES (?1, ?2) "
                       "ON CONFLICT DO NOTHING", &st, err);
    if (rc < 0)
        goto err;
    if ((rc = reg_bind_text(self, st, 1, lo, err)) < 0
        || (rc = reg_bind_text(self, st, 2, hi, err)) < 0)
        goto err;
    rc = reg_run_once(self, st, "adding a link", err);
    st = NULL;
    if (rc < 0)
        goto err;
    if (sqlite3_changes(self->db) == 0) {
        rc = ld_error_set(err, LD_EEXIST, "%s and %s are already linked", lo, hi);
        goto err;
    }
    if ((rc = reg_bump(self, err)) < 0 || (rc = reg_commit(self, err)) < 0)
        goto err;
    return 0;
err:
    sqlite3_finalize(st);
    bk_db_rollback(self->db);
    return rc;
}

int bk_registry_remove_link(bk_registry_t *self, const char *a, const char *b,
                            ld_error_t *err)
{
    sqlite3_stmt *st = NULL;
    const char *lo = NULL, *hi = NULL;
    int rc = reg_link_ends(a, b, &lo, &hi, err);
    if (rc < 0)
        return rc;
    rc = reg_begin(self, err);
    if (rc < 0)
        return rc;
    rc = bk_db_prepare(self->db, "DELETE FROM \"links\" WHERE \"a\" = ?1 AND \"b\" = ?2", &st, err);
    if (rc < 0)
        goto err;
    if ((rc = reg_bind_text(self, st, 1, lo, err)) < 0
        || (rc = reg_bind_text(self, st, 2, hi, err)) < 0)
        goto err;
    rc = reg_run_once(self, st, "removing a link", err);
    st = NULL;
    if (rc < 0)
        goto err;
    if (sqlite3_changes(self->db) == 0) {
        rc = ld_error_set(err, LD_ENOTFOUND, "%s and %s are not linked", lo, hi);
        goto err;
    }
    if ((rc = reg_bump(self, err)) < 0 || (rc = reg_commit(self, err)) < 0)
        goto err;
    return 0;
err:
    sqlite3_finalize(st);
    bk_db_rollback(self->db);
    return rc;
}

int bk_registry_each_node(bk_registry_t *self, bk_node_fn fn, void *ctx, ld_error_t *err)
{
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

int bk_registry_each_link(bk_registry_t *self, bk_link_fn fn, void *ctx, ld_error_t *err)
{
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

/* ---- the snapshot ---- */

static int reg_generation(bk_registry_t *self, long long *generation, ld_error_t *err)
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

static char *reg_strdup_col(sqlite3_stmt *st, int col)
{
    const char *text = (const char *)sqlite3_column_text(st, col);
    return text ? strdup(text) : NULL;
}

/* Reads nodes and links into fresh arrays and swaps them in. */
static int reg_load(bk_registry_t *self, ld_error_t *err)
{
    sqlite3_stmt *st = NULL;
    reg_node_t *nodes = NULL;
    reg_link_t *links = NULL;
    size_t nnodes = 0, ncap = 0, nlinks = 0, lcap = 0;
    long long generation = 0;
    int rc = bk_db_exec(self->db, "BEGIN", err);
    if (rc < 0)
        return rc;
    rc = reg_generation(self, &generation, err);
    if (rc < 0)
        goto err;
    rc = bk_db_prepare(self->db, "SELECT \"id\", \"key\", \"removed\" FROM \"nodes\" "
                       "ORDER BY \"id\"", &st, err);
    if (rc < 0)
        goto err;
    for (;;) {
        int step = sqlite3_step(st);
        if (step == SQLITE_DONE)
            break;
        if (step != SQLITE_ROW) {
            rc = bk_db_fail(self->db, "reading nodes", err);
            goto err;
        }
        if (nnodes == ncap) {
            size_t cap = ncap ? ncap * 2 : 16;
            reg_node_t *grown = realloc(nodes, cap * sizeof *grown);
            if (!grown)
                goto nomem;
            nodes = grown;
            ncap = cap;
        }
        reg_node_t *n = &nodes[nnodes];
        n->id = reg_strdup_col(st, 0);
        n->key = reg_strdup_col(st, 1);
        n->removed = sqlite3_column_int(st, 2) != 0;
        nnodes++;
        if (!n->id || !n->key)
            goto nomem;
    }
    sqlite3_finalize(st);
    st = NULL;
    rc = bk_db_prepare(self->db, "SELECT \"a\", \"b\" FROM \"links\" ORDER BY \"a\", \"b\"",
                       &st, err);
    if (rc < 0)
        goto err;
    for (;;) {
        int step = sqlite3_step(st);
        if (step == SQLITE_DONE)
            break;
        if (step != SQLITE_ROW) {
            rc = bk_db_fail(self->db, "reading links", err);
            goto err;
        }
        if (nlinks == lcap) {
            size_t cap = lcap ? lcap * 2 : 16;
            reg_link_t *grown = realloc(links, cap * sizeof *grown);
            if (!grown)
                goto nomem;
            links = grown;
            lcap = cap;
        }
        reg_link_t *l = &links[nlinks];
        l->a = reg_strdup_col(st, 0);
        l->b = reg_strdup_col(st, 1);
        nlinks++;
        if (!l->a || !l->b)
            goto nomem;
    }
    sqlite3_finalize(st);
    st = NULL;
    rc = bk_db_exec(self->db, "COMMIT", err);
    if (rc < 0)
        goto err;
    reg_free_snapshot(self->nodes, self->nnodes, self->links, self->nlinks);
    self->nodes = nodes;
    self->nnodes = nnodes;
    self->links = links;
    self->nlinks = nlinks;
    self->generation = generation;
    self->loaded = true;
    return 0;
nomem:
    rc = ld_error_set(err, LD_ENOMEM, "out of memory loading the registry");
err:
    sqlite3_finalize(st);
    bk_db_rollback(self->db);
    reg_free_snapshot(nodes, nnodes, links, nlinks);
    return rc;
}

int bk_registry_refresh(bk_registry_t *self, bool *changed, ld_error_t *err)
{
    long long version = 0, generation = 0;
    if (changed)
        *changed = false;
    int rc = bk_db_data_version(self->db, &version, err);
    if (rc < 0)
        return rc;
    if (self->loaded && version == self->data_version)
        return 0;
    rc = reg_generation(self, &generation, err);
    if (rc < 0)
        return rc;
    if (!self->loaded || generation != self->generation) {
        rc = reg_load(self, err);
        if (rc < 0)
            return rc;
        if (changed)
            *changed = true;
    }
    self->data_version = version;
    return 0;
}

static int reg_node_cmp(const void *key, const void *elem)
{
    return strcmp(key, ((const reg_node_t *)elem)->id);
}

static const reg_node_t *reg_find(const bk_registry_t *self, const char *id)
{
    if (!id || self->nnodes == 0)
        return NULL;
    return bsearch(id, self->nodes, self->nnodes, sizeof *self->nodes, reg_node_cmp);
}

bool bk_registry_active(const bk_registry_t *self, const char *id)
{
    const reg_node_t *n = reg_find(self, id);
    return n && !n->removed;
}

const char *bk_registry_node_by_key(const bk_registry_t *self, const char *key)
{
    for (size_t i = 0; key && i < self->nnodes; i++)
        if (!self->nodes[i].removed && strcmp(self->nodes[i].key, key) == 0)
            return self->nodes[i].id;
    return NULL;
}

static int reg_link_cmp(const void *key, const void *elem)
{
    const reg_link_t *k = key, *l = elem;
    int c = strcmp(k->a, l->a);
    return c ? c : strcmp(k->b, l->b);
}

bool bk_registry_may_address(const bk_registry_t *self, const char *from, const char *to)
{
    if (!from || !to)
        return false;
    int cmp = strcmp(from, to);
    if (cmp == 0)
        return true;
    reg_link_t key = { .a = (char *)(cmp < 0 ? from : to), .b = (char *)(cmp < 0 ? to : from) };
    return self->nlinks > 0
        && bsearch(&key, self->links, self->nlinks, sizeof *self->links, reg_link_cmp) != NULL;
}

/* ---- statistics ---- */

/* The pending statistics of `id`, added in order when new; NULL if out of memory or
 * the id is too long to be a node's. */
static reg_stat_t *reg_stat(bk_registry_t *self, const char *id)
{
    size_t lo = 0, hi = self->nstats;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(id, self->stats[mid].id);
        if (c == 0)
            return &self->stats[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    if (strlen(id) > LD_ID_MAX)
        return NULL;
    if (self->nstats == self->stats_cap) {
        size_t cap = self->stats_cap ? self->stats_cap * 2 : 16;
        reg_stat_t *grown = realloc(self->stats, cap * sizeof *grown);
        if (!grown)
            return NULL;
        self->stats = grown;
        self->stats_cap = cap;
    }
    memmove(&self->stats[lo + 1], &self->stats[lo], (self->nstats - lo) * sizeof *self->stats);
    reg_stat_t *s = &self->stats[lo];
    memset(s, 0, sizeof *s);
    strcpy(s->id, id);
    self->nstats++;
    return s;
}

void bk_registry_note_seen(bk_registry_t *self, const char *id, int64_t now)
{
    reg_stat_t *s = reg_stat(self, id);
    if (s && now > s->seen)
        s->seen = now;
}

void bk_registry_note_pushed(bk_registry_t *self, const char *id, uint64_t n)
{
    reg_stat_t *s = reg_stat(self, id);
    if (s)
        s->pushed += n;
}

void bk_registry_note_fetched(bk_registry_t *self, const char *id, uint64_t n)
{
    reg_stat_t *s = reg_stat(self, id);
    if (s)
        s->fetched += n;
}

int bk_registry_flush(bk_registry_t *self, ld_error_t *err)
{
    sqlite3_stmt *st = NULL;
    if (self->nstats == 0)
        return 0;
    int rc = reg_begin(self, err);
    if (rc < 0)
        return rc;
    rc = bk_db_prepare(self->db,
        "UPDATE \"nodes\" SET \"last_seen\" = max(\"last_seen\", ?1), "
        "\"pushed\" = \"pushed\" + ?2, \"fetched\" = \"fetched\" + ?3 WHERE \"id\" = ?4",
        &st, err);
    if (rc < 0)
        goto err;
    for (size_t i = 0; i < self->nstats; i++) {
        const reg_stat_t *s = &self->stats[i];
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
    rc = reg_commit(self, err);
    if (rc < 0)
        goto err;
    self->nstats = 0;
    return 0;
err:
    sqlite3_finalize(st);
    bk_db_rollback(self->db);
    return rc;
}
