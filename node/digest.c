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

/* Whether r is shared by self_node and peer (digest.h says when). */
static int shared(nd_audience_t *aud, const char *self_node, const char *peer,
                  const nd_record_t *r, bool *out, ld_error_t *err)
{
    nd_nodes_t nodes;
    nd_nodes_init(&nodes);
    bool org = r->def->kind == LD_KIND_ORG;
    /* An org's audience is who keeps it and who was sent it, which names this node only
     * on the other side: an org is shared when its audience here names the peer.  Any
     * other record's audience is computed the same on both sides: both must be in it. */
    int rc = nd_audience_of(aud, org ? self_node : NULL, r, &nodes, err);
    *out = rc == 0 && nd_nodes_has(&nodes, peer) && (org || nd_nodes_has(&nodes, self_node));
    nd_nodes_clear(&nodes);
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
static int digest_kind(sqlite3 *db, nd_audience_t *aud, const ld_kind_def_t *def,
                       const char *self_node, const char *peer, nd_digest_kind_t *out,
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
    int rc = 0, src = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    while (rc == 0 && src == SQLITE_OK && (src = sqlite3_step(st)) == SQLITE_ROW) {
        src = SQLITE_OK;
        nd_record_t r;
        bool is_shared = false;
        uint8_t one[ND_DIGEST_BYTES];
        rc = row_read(st, def, &r, err);
        if (rc == 0)
            rc = shared(aud, self_node, peer, &r, &is_shared, err);
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
        rc = ld_error_set(err, LD_EIO, "digest: reading %s: %s", def->table, sqlite3_errmsg(db));
    sqlite3_finalize(st);
    crypto_generichash_final(&h, out->digest, ND_DIGEST_BYTES);
    return rc;
}

int nd_digest(sqlite3 *db, const char *self_node, const char *peer, nd_digest_t *out,
              nd_digest_record_fn fn, void *ctx, ld_error_t *err)
{
    memset(out, 0, sizeof *out);
    if (sodium_init() < 0)
        return ld_error_set(err, LD_EIO, "digest: libsodium cannot start");
    nd_audience_t *aud = nd_audience_new(db, err);
    if (aud == NULL)
        return err != NULL && err->code != 0 ? err->code : LD_ENOMEM;
    /* one read transaction: every kind from the same snapshot */
    int rc = 0;
    if (sqlite3_exec(db, "SAVEPOINT \"nd_digest\"", NULL, NULL, NULL) != SQLITE_OK)
        rc = ld_error_set(err, LD_EIO, "digest: %s", sqlite3_errmsg(db));
    crypto_generichash_state all;
    crypto_generichash_init(&all, NULL, 0, ND_DIGEST_BYTES);
    for (int k = LD_KIND_ORG; k < LD_KIND_COUNT && rc == 0; k++) {
        const ld_kind_def_t *def = ld_schema_kind((ld_kind_t)k);
        nd_digest_kind_t *d = &out->kinds[k];
        rc = digest_kind(db, aud, def, self_node, peer, d, fn, ctx, err);
        uint8_t count[8];
        for (int b = 0; b < 8; b++)
            count[b] = (uint8_t)((uint64_t)d->records >> (8 * (7 - b)));
        feed_text(&all, def->name);
        crypto_generichash_update(&all, count, sizeof count);
        crypto_generichash_update(&all, d->digest, sizeof d->digest);
        out->all.records += d->records;
    }
    crypto_generichash_final(&all, out->all.digest, ND_DIGEST_BYTES);
    sqlite3_exec(db, "RELEASE \"nd_digest\"", NULL, NULL, NULL);
    nd_audience_destroy(&aud);
    return rc;
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
