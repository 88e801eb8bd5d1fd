/* cmd_delete.c: `liangdi delete RECORD`: a record entered by mistake becomes a
 * tombstone, which sync carries to every node that holds the record. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cmd_common.h"
#include "resolve.h"
#include "text.h"

/* Refuses the kinds other records hang off, saying what to do instead. */
static int check_deletable(nd_store_t *store, ld_kind_t kind, const char *id, ld_error_t *err)
{
    long children = 0;
    char *count = NULL;
    int rc = 0;
    switch (kind) {
    case LD_KIND_ORG:
    case LD_KIND_MEMBER:
        return ld_error_set(err, LD_EINVAL, "RECORD: %s is a%s %s: members and orgs are "
                            "not deleted, since every other record hangs off them (correct "
                            "one with 'liangdi %s edit')", id,
                            kind == LD_KIND_ORG ? "n" : "", ld_schema_kind(kind)->name,
                            ld_schema_kind(kind)->name);
    case LD_KIND_TRIP:
        return ld_error_set(err, LD_EINVAL, "RECORD: %s is a trip: a trip is ended "
                            "('liangdi trip end'), not deleted, since it says which branch "
                            "holds the member's records", id);
    case LD_KIND_AGREEMENT:
        rc = nd_rec_query_text(nd_store_db(store),
                               "SELECT (SELECT count(*) FROM \"contacts\" WHERE \"agreement\" = ?1"
                               " AND coalesce(\"deleted\", 0) = 0) + (SELECT count(*) FROM"
                               " \"visits\" WHERE \"agreement\" = ?1 AND coalesce(\"deleted\", 0)"
                               " = 0)", id, NULL, NULL, &count, err);
        children = count ? atol(count) : 0;
        free(count);
        if (rc == 0 && children > 0)
            rc = ld_error_set(err, LD_EINVAL, "RECORD: agreement %s still has %ld contact(s) "
                              "and visit(s): delete those first", id, children);
        return rc;
    default:
        return 0;
    }
}

int nd_cmd_delete(nd_cli_t *cli, ld_error_t *err)
{
    const char *id = nd_cli_arg(cli, 0);
    ld_kind_t kind = LD_KIND_NONE;
    ld_change_t c;
    ld_change_init(&c);
    nd_store_t *store = nd_cli_store(cli, err);
    if (!store)
        return err->code;
    int rc = nd_resolve_kind(store, id, &kind, err);
    if (rc == 0 && kind == LD_KIND_NONE) {
        char quoted[256];
        ld_quote(id, LD_QUOTE_MAX, quoted, sizeof quoted);
        rc = ld_error_set(err, LD_ENOTFOUND, "RECORD: no record '%s' (give the id that "
                          "'liangdi activity list' and the other lists show)", quoted);
    }
    if (rc == 0)
        rc = check_deletable(store, kind, id, err);
    if (rc == 0) {
        c.kind = kind;
        snprintf(c.record_id, sizeof c.record_id, "%s", id);
        c.deleted = true;
        rc = nd_store_write(store, &c, err);
    }
    if (rc == 0) {
        printf("%s\n", c.record_id);
        fprintf(stderr, "liangdi: %s %s deleted ('liangdi history %s' still shows what it "
                "said)\n", ld_schema_kind(kind)->name, id, id);
    }
    ld_change_clear(&c);
    return rc;
}
