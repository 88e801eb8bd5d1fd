/* digest.c: BLAKE2b digests of the records this node shares with another node (digest.h
 * says which those are and what a digest covers). */
#include "digest.h"

#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "audience.h"
#include "merge.h"

#define SQL_MAX 1024

/* Feeds a length and the bytes, so that no two sequences of texts feed the same. */
static void feed(crypto_generichash_state *h, const void *data, size_t len)
{
    uint8_t n[4] = { (uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8),
                     (uint8_t)len };
    crypto_generichash_update(h, n, sizeof n);
    crypto_generichash_update(h, data, len);
}

static void feed_text(crypto_generichash_state *h, const char *text)
{
    /* an unset value and an empty one differ */
    uint8_t set = text != NULL;
    crypto_generichash_update(h, &set, 1);
    feed(h, text != NULL ? text : "", text != NULL ? strlen(text) : 0);
}

/* The digest of the record r (values as stored). */
static void record_digest(const nd_record_t *r, uint8_t out[ND_DIGEST_BYTES])
{
    crypto_generichash_state h;
    crypto_generichash_init(&h, NULL, 0, ND_DIGEST_BYTES);
    feed_text(&h, r->def->name);
    feed_text(&h, r->id);
    feed_text(&h, nd_record_deleted(r) ? "deleted" : "live");
    for (size_t i = 0; i < r->def->nfields; i++) {
        feed_text(&h, r->def->fields[i].name);
        feed_text(&h, r->fields[i].value);
    }
    crypto_generichash_final(&h, out, ND_DIGEST_BYTES);
}

/* What the walk needs besides the store: the two nodes and the lookups of the rule. */
typedef struct walk {
    sqlite3       *db;
    nd_audience_t *aud;
    const char    *self;
    const char    *peer;
    sqlite3_stmt  *member_nodes;   /* ?1 member -> self and/or peer (temp table) */
    sqlite3_stmt  *org_node;       /* ?1 org -> the node that keeps it */
} walk_t;

/* The temp table of which of the two nodes each member belongs to: the keeper of his
 * org, and of the org of every trip of his under way.  A trip to a node's org always
 * reaches that node, so both sides fill the same rows for the pair. */
static const char members_sql[] =
    "INSERT OR IGNORE INTO temp.\"nd_digest_nodes\" (\"member\", \"node\") "
    "SELECT m.\"id\", o.\"node\" FROM \"members\" m JOIN \"orgs\" o ON o.\"id\" = m.\"org\" "
    "WHERE o.\"node\" IN (?1, ?2) "
    "UNION SELECT t.\"member\", o.\"node\" FROM \"trips\" t JOIN \"orgs\" o "
    "ON o.\"id\" = t.\"to\" WHERE t.\"deleted\" = 0 AND t.\"status\" IN (?3, ?4) "
    "AND o.\"node\" IN (?1, ?2)";

/* Bit 1 for self, 2 for peer, when `node` is one of them. */
static unsigned node_bit(const walk_t *w, const char *node)
{
    if (node == NULL)
        return 0;
    return (strcmp(node, w->self) == 0 ? 1u : 0u) | (strcmp(node, w->peer) == 0 ? 2u : 0u);
}

/* Runs st (bound) to its end, or-ing the node_bit of each row's first column into *mask. */
static int nodes_of(const walk_t *w, sqlite3_stmt *st, unsigned *mask, ld_error_t *err)
{
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        *mask |= node_bit(w, (const char *)sqlite3_column_text(st, 0));
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_DONE)
        return ld_error_set(err, LD_EIO, "digest: %s", sqlite3_errmsg(w->db));
    return 0;
}

/* Whether r is shared by the two nodes (digest.h says when). */
static int shared(const walk_t *w, const nd_record_t *r, bool *out, ld_error_t *err)
{
    unsigned mask = 0;
    int rc = 0;
    *out = false;
    if (nd_audience_member_scoped(r->def)) {
        const char *member = nd_audience_member_of(r);
        if (member == NULL)
            return 0;
        sqlite3_bind_text(w->member_nodes, 1, member, -1, SQLITE_STATIC);
        rc = nodes_of(w, w->member_nodes, &mask, err);
        const char *to = r->def->kind == LD_KIND_TRIP ? nd_record_get(r, "to") : NULL;
        if (rc == 0 && to != NULL) {
            sqlite3_bind_text(w->org_node, 1, to, -1, SQLITE_STATIC);
            rc = nodes_of(w, w->org_node, &mask, err);
        }
    } else {
        /* An org's audience is who keeps it and who was sent it, which names this node
         * only on the other side: it counts when its audience here names the peer.  An
         * agreement's (and its contacts' and visits') is its two orgs' keepers. */
        bool org = r->def->kind == LD_KIND_ORG;
        nd_nodes_t nodes;
        nd_nodes_init(&nodes);
        rc = nd_audience_of(w->aud, org ? w->self : NULL, r, &nodes, err);
        for (size_t i = 0; rc == 0 && i < nodes.n; i++)
            mask |= node_bit(w, nodes.ids[i]);
        if (org)
            mask |= 1u;
        nd_nodes_clear(&nodes);
    }
    *out = rc == 0 && mask == 3u;
    return rc;
}

/* Reads the row st is on (id, deleted, then def's fields) into r. 0 or LD_ENOMEM. */
static int row_read(sqlite3_stmt *st, const ld_kind_def_t *def, nd_record_t *r,
                    ld_error_t *err)
{
    nd_record_init(r, def, (const char *)sqlite3_column_text(st, 0));
    r->exists = true;
    if (sqlite3_column_int(st, 1) != 0 && (r->deleted.value = strdup("1")) == NULL)
        return ld_error_set(err, LD_ENOMEM, "out of memory reading %s %s", def->name, r->id);
    for (size_t i = 0; i < def->nfields; i++) {
        const unsigned char *v = sqlite3_column_text(st, 2 + (int)i);
        if (v != NULL && (r->fields[i].value = strdup((const char *)v)) == NULL)
            return ld_error_set(err, LD_ENOMEM, "out of memory reading %s %s", def->name,
                                r->id);
    }
    return 0;
}

/* Digests the shared records of one kind into *out. */
static int digest_kind(const walk_t *w, const ld_kind_def_t *def, nd_digest_kind_t *out,
                       nd_digest_record_fn fn, void *ctx, ld_error_t *err)
{
    char sql[SQL_MAX];
    size_t used = (size_t)snprintf(sql, sizeof sql, "SELECT \"id\", coalesce(\"deleted\", 0)");
    for (size_t i = 0; i < def->nfields && used < sizeof sql; i++)
        used += (size_t)snprintf(sql + used, sizeof sql - used, ", \"%s\"", def->fields[i].name);
    if (used < sizeof sql)
        used += (size_t)snprintf(sql + used, sizeof sql - used, " FROM \"%s\" ORDER BY \"id\"",
                                 def->table);
    if (used >= sizeof sql)
        return ld_error_set(err, LD_EIO, "digest: the query for %s is too long", def->name);

    crypto_generichash_state h;
    crypto_generichash_init(&h, NULL, 0, ND_DIGEST_BYTES);
    out->records = 0;
    sqlite3_stmt *st = NULL;
    int rc = 0, src = sqlite3_prepare_v2(w->db, sql, -1, &st, NULL);
    while (rc == 0 && src == SQLITE_OK && (src = sqlite3_step(st)) == SQLITE_ROW) {
        src = SQLITE_OK;
        nd_record_t r;
        bool is_shared = false;
        uint8_t one[ND_DIGEST_BYTES];
        rc = row_read(st, def, &r, err);
        if (rc == 0)
            rc = shared(w, &r, &is_shared, err);
        if (rc == 0 && is_shared) {
            record_digest(&r, one);
            crypto_generichash_update(&h, one, sizeof one);
            out->records++;
            if (fn != NULL)
                rc = fn(ctx, def, r.id, one);
        }
        nd_record_clear(&r);
    }
    if (rc == 0 && src != SQLITE_DONE)
        rc = ld_error_set(err, LD_EIO, "digest: reading %s: %s", def->table,
                          sqlite3_errmsg(w->db));
    sqlite3_finalize(st);
    crypto_generichash_final(&h, out->digest, ND_DIGEST_BYTES);
    return rc;
}

/* Makes the temp table of members' nodes and the walk's statements. */
static int walk_begin(walk_t *w, ld_error_t *err)
{
    const ld_kind_def_t *trip = ld_schema_kind(LD_KIND_TRIP);
    const ld_field_def_t *status = NULL;
    for (size_t i = 0; i < trip->nfields; i++)
        if (strcmp(trip->fields[i].name, "status") == 0)
            status = &trip->fields[i];
    sqlite3_stmt *fill = NULL;
    if (status == NULL || status->words == NULL || status->steps != 2)
        return ld_error_set(err, LD_EIO, "digest: the schema's trip status is not the one "
                            "this digest knows");
    int src = sqlite3_exec(w->db, "CREATE TEMP TABLE \"nd_digest_nodes\" (\"member\" TEXT "
                           "NOT NULL, \"node\" TEXT NOT NULL, PRIMARY KEY (\"member\", "
                           "\"node\")) WITHOUT ROWID", NULL, NULL, NULL);
    if (src == SQLITE_OK)
        src = sqlite3_prepare_v2(w->db, members_sql, -1, &fill, NULL);
    if (src == SQLITE_OK) {
        sqlite3_bind_text(fill, 1, w->self, -1, SQLITE_STATIC);
        sqlite3_bind_text(fill, 2, w->peer, -1, SQLITE_STATIC);
        /* a trip under way: its status is one of the stages before an ending (schema.c:
         * `steps`, 2: registered, reported-in) */
        sqlite3_bind_text(fill, 3, status->words[0], -1, SQLITE_STATIC);
        sqlite3_bind_text(fill, 4, status->words[1], -1, SQLITE_STATIC);
        src = sqlite3_step(fill) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
    }
    sqlite3_finalize(fill);
    if (src == SQLITE_OK)
        src = sqlite3_prepare_v2(w->db, "SELECT \"node\" FROM temp.\"nd_digest_nodes\" "
                                 "WHERE \"member\" = ?1", -1, &w->member_nodes, NULL);
    if (src == SQLITE_OK)
        src = sqlite3_prepare_v2(w->db, "SELECT \"node\" FROM \"orgs\" WHERE \"id\" = ?1", -1,
                                 &w->org_node, NULL);
    if (src != SQLITE_OK)
        return ld_error_set(err, LD_EIO, "digest: %s", sqlite3_errmsg(w->db));
    return 0;
}

int nd_digest(sqlite3 *db, const char *self_node, const char *peer, nd_digest_t *out,
              nd_digest_record_fn fn, void *ctx, ld_error_t *err)
{
    walk_t w = { .db = db, .self = self_node, .peer = peer };
    crypto_generichash_state all;
    int rc = 0;
    memset(out, 0, sizeof *out);
    if (sodium_init() < 0)
        return ld_error_set(err, LD_EIO, "digest: libsodium cannot start");
    /* one read transaction: every kind from the same snapshot; the temp table goes with
     * its rollback */
    if (sqlite3_exec(db, "SAVEPOINT \"nd_digest\"", NULL, NULL, NULL) != SQLITE_OK)
        return ld_error_set(err, LD_EIO, "digest: %s", sqlite3_errmsg(db));
    w.aud = nd_audience_new(db, err);
    if (w.aud == NULL)
        rc = err != NULL && err->code != 0 ? err->code : LD_ENOMEM;
    if (rc == 0)
        rc = walk_begin(&w, err);
    crypto_generichash_init(&all, NULL, 0, ND_DIGEST_BYTES);
    for (int k = LD_KIND_ORG; k < LD_KIND_COUNT && rc == 0; k++) {
        const ld_kind_def_t *def = ld_schema_kind((ld_kind_t)k);
        nd_digest_kind_t *d = &out->kinds[k];
        rc = digest_kind(&w, def, d, fn, ctx, err);
        uint8_t count[8];
        for (int b = 0; b < 8; b++)
            count[b] = (uint8_t)((uint64_t)d->records >> (8 * (7 - b)));
        feed_text(&all, def->name);
        crypto_generichash_update(&all, count, sizeof count);
        crypto_generichash_update(&all, d->digest, sizeof d->digest);
        out->all.records += d->records;
    }
    crypto_generichash_final(&all, out->all.digest, ND_DIGEST_BYTES);
    sqlite3_finalize(w.member_nodes);
    sqlite3_finalize(w.org_node);
    nd_audience_destroy(&w.aud);
    sqlite3_exec(db, "ROLLBACK TO \"nd_digest\"; RELEASE \"nd_digest\"", NULL, NULL, NULL);
    return rc;
}

/* digest.h says which pairs; the query stops at the first trip or agreement found. */
int nd_digest_comparable(sqlite3 *db, const char *self_node, const char *peer, bool *yes,
                         ld_error_t *err)
{
    static const char sql[] =
        "SELECT 1 FROM \"trips\" t JOIN \"members\" m ON m.\"id\" = t.\"member\" "
        "JOIN \"orgs\" a ON a.\"id\" = m.\"org\" JOIN \"orgs\" b ON b.\"id\" = t.\"to\" "
        "WHERE (a.\"node\" = ?1 AND b.\"node\" = ?2) OR (a.\"node\" = ?2 AND b.\"node\" = ?1) "
        "UNION ALL "
        "SELECT 1 FROM \"agreements\" g JOIN \"orgs\" a ON a.\"id\" = g.\"outflow\" "
        "JOIN \"orgs\" b ON b.\"id\" = g.\"inflow\" "
        "WHERE (a.\"node\" = ?1 AND b.\"node\" = ?2) OR (a.\"node\" = ?2 AND b.\"node\" = ?1) "
        "LIMIT 1";
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(st, 1, self_node, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(st, 2, peer, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    *yes = rc == SQLITE_ROW;
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return ld_error_set(err, LD_EIO, "database: %s", sqlite3_errmsg(db));
    return 0;
}

void nd_digest_text(const uint8_t digest[ND_DIGEST_BYTES], size_t groups, char *out)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    if (groups > ND_DIGEST_BYTES / 2)
        groups = ND_DIGEST_BYTES / 2;
    for (size_t g = 0; g < groups; g++) {
        if (g > 0)
            out[o++] = ' ';
        for (size_t b = 2 * g; b < 2 * g + 2; b++) {
            out[o++] = hex[digest[b] >> 4];
            out[o++] = hex[digest[b] & 0xf];
        }
    }
    out[o] = '\0';
}
