/* resolve.c: turns what a user typed for a member, org or agreement (an id, a name,
 * or "OUTFLOW/INFLOW") into the one record id it names, or says why it cannot. */
#include "resolve.h"

#include <stdio.h>
#include <string.h>

#include "text.h"

#define RESOLVE_CANDIDATES_MAX 8

/* Runs `sql` (one text column: the id) with ?1 = a, ?2 = b and ?3 = c (b and c may be
 * NULL) and collects up to RESOLVE_CANDIDATES_MAX + 1 ids.  Returns the count or LD_EIO. */
static int resolve_query(sqlite3 *db, const char *sql, const char *a, const char *b,
                         const char *c, char ids[][LD_RECORD_ID_MAX + 1], ld_error_t *err)
{
    sqlite3_stmt *st = NULL;
    int n = 0;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        goto fail;
    rc = sqlite3_bind_text(st, 1, a, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK && b)
        rc = sqlite3_bind_text(st, 2, b, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK && c)
        rc = sqlite3_bind_text(st, 3, c, -1, SQLITE_STATIC);
    if (rc != SQLITE_OK)
        goto fail;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const unsigned char *id = sqlite3_column_text(st, 0);
        if (n <= RESOLVE_CANDIDATES_MAX && id)
            snprintf(ids[n++], LD_RECORD_ID_MAX + 1, "%s", (const char *) id);
    }
    if (rc != SQLITE_DONE)
        goto fail;
    sqlite3_finalize(st);
    return n;
fail:
    ld_error_set(err, LD_EIO, "database: %s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return LD_EIO;
}

static int resolve_ambiguous(const char *what, const char *kind, const char *text,
                             char ids[][LD_RECORD_ID_MAX + 1], int n, ld_error_t *err)
{
    char quoted[256];
    char list[LD_ERROR_MSG_MAX / 2] = "";
    size_t used = 0;
    ld_quote(text, LD_QUOTE_MAX, quoted, sizeof quoted);
    for (int i = 0; i < n && i < RESOLVE_CANDIDATES_MAX; i++) {
        int w = snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", ids[i]);
        if (w < 0 || (size_t) w >= sizeof list - used)
            break;
        used += (size_t) w;
    }
    return ld_error_set(err, LD_EINVAL, "%s: '%s' names %s%d %ss (%s%s); name one by its id",
                        what, quoted, n > RESOLVE_CANDIDATES_MAX ? "more than " : "",
                        n > RESOLVE_CANDIDATES_MAX ? RESOLVE_CANDIDATES_MAX : n, kind, list,
                        n > RESOLVE_CANDIDATES_MAX ? ", ..." : "");
}

static int resolve_not_found(const char *what, const char *kind, const char *text,
                             const char *how, ld_error_t *err)
{
    char quoted[256];
    ld_quote(text, LD_QUOTE_MAX, quoted, sizeof quoted);
    return ld_error_set(err, LD_ENOTFOUND, "%s: no %s '%s' (%s)", what, kind, quoted, how);
}

/* An agreement named "OUTFLOW/INFLOW", each side an org id or name. */
static int resolve_agreement_pair(nd_store_t *store, const char *text, const char *what,
                                  char out[LD_RECORD_ID_MAX + 1], ld_error_t *err)
{
    char ids[RESOLVE_CANDIDATES_MAX + 1][LD_RECORD_ID_MAX + 1];
    char outflow_text[512], outflow[LD_RECORD_ID_MAX + 1], inflow[LD_RECORD_ID_MAX + 1];
    const char *slash = strchr(text, '/');
    size_t len = (size_t) (slash - text);
    if (len >= sizeof outflow_text)
        return resolve_not_found(what, "agreement", text, "by id or OUTFLOW/INFLOW", err);
    memcpy(outflow_text, text, len);
    outflow_text[len] = '\0';
    int rc = nd_resolve(store, LD_KIND_ORG, outflow_text, what, outflow, err);
    if (rc == 0)
        rc = nd_resolve(store, LD_KIND_ORG, slash + 1, what, inflow, err);
    if (rc != 0)
        return rc;
    /* the one in force today, when an earlier one between the two has ended */
    char today[11];
    ld_date_format(ld_date_cst(time(NULL)), today);
    int n = resolve_query(nd_store_db(store),
                          "SELECT \"id\" FROM \"agreements\" WHERE coalesce(\"deleted\", 0) = 0"
                          " AND \"outflow\" = ?1 AND \"inflow\" = ?2"
                          " AND (coalesce(\"until\", '') = '' OR \"until\" >= ?3) ORDER BY \"id\"",
                          outflow, inflow, today, ids, err);
    if (n != 1)
        n = n < 0 ? n : resolve_query(nd_store_db(store),
                          "SELECT \"id\" FROM \"agreements\" WHERE coalesce(\"deleted\", 0) = 0"
                          " AND \"outflow\" = ?1 AND \"inflow\" = ?2 ORDER BY \"id\"",
                          outflow, inflow, NULL, ids, err);
    if (n < 0)
        return n;
    if (n == 0)
        return resolve_not_found(what, "agreement", text, "no agreement between these orgs", err);
    if (n > 1)
        return resolve_ambiguous(what, "agreement", text, ids, n, err);
    snprintf(out, LD_RECORD_ID_MAX + 1, "%s", ids[0]);
    return 0;
}

int nd_resolve(nd_store_t *store, ld_kind_t kind, const char *text, const char *what,
               char out[LD_RECORD_ID_MAX + 1], ld_error_t *err)
{
    char ids[RESOLVE_CANDIDATES_MAX + 1][LD_RECORD_ID_MAX + 1];
    char sql[256];
    const ld_kind_def_t *def = ld_schema_kind(kind);
    if (!def)
        return ld_error_set(err, LD_EINVAL, "%s: no such kind of record", what);
    if (!text || !*text)
        return ld_error_set(err, LD_EINVAL, "%s: bad value '' (a %s id or name is needed)",
                            what, def->name);
    /* By id first: an id always wins over a name. */
    if (strlen(text) <= LD_RECORD_ID_MAX) {
        snprintf(sql, sizeof sql, "SELECT \"id\" FROM \"%s\" WHERE \"id\" = ?1"
                 " AND coalesce(\"deleted\", 0) = 0", def->table);
        int n = resolve_query(nd_store_db(store), sql, text, NULL, NULL, ids, err);
        if (n < 0)
            return n;
        if (n == 1) {
            snprintf(out, LD_RECORD_ID_MAX + 1, "%s", ids[0]);
            return 0;
        }
    }
    if (kind == LD_KIND_AGREEMENT && strchr(text, '/'))
        return resolve_agreement_pair(store, text, what, out, err);
    if (ld_schema_field_index(def, "name") < 0)
        return resolve_not_found(what, def->name, text, "by id", err);
    snprintf(sql, sizeof sql, "SELECT \"id\" FROM \"%s\" WHERE \"name\" = ?1"
             " AND coalesce(\"deleted\", 0) = 0 ORDER BY \"id\"", def->table);
    int n = resolve_query(nd_store_db(store), sql, text, NULL, NULL, ids, err);
    if (n < 0)
        return n;
    if (n == 0)
        return resolve_not_found(what, def->name, text, "by id or name", err);
    if (n > 1)
        return resolve_ambiguous(what, def->name, text, ids, n, err);
    snprintf(out, LD_RECORD_ID_MAX + 1, "%s", ids[0]);
    return 0;
}

int nd_resolve_kind(nd_store_t *store, const char *id, ld_kind_t *kind, ld_error_t *err)
{
    sqlite3 *db = nd_store_db(store);
    *kind = LD_KIND_NONE;
    if (strlen(id) > LD_RECORD_ID_MAX)
        return 0;
    for (int k = LD_KIND_ORG; k < LD_KIND_COUNT; k++) {
        const ld_kind_def_t *def = ld_schema_kind((ld_kind_t) k);
        char sql[128];
        sqlite3_stmt *st = NULL;
        snprintf(sql, sizeof sql, "SELECT 1 FROM \"%s\" WHERE \"id\" = ?1", def->table);
        int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        if (rc == SQLITE_OK)
            rc = sqlite3_step(st);
        sqlite3_finalize(st);
        if (rc == SQLITE_ROW) {
            *kind = (ld_kind_t) k;
            return 0;
        }
        if (rc != SQLITE_DONE)
            return ld_error_set(err, LD_EIO, "database: %s", sqlite3_errmsg(db));
    }
    return 0;
}
