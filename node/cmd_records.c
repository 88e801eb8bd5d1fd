/* cmd_records.c: the commands that add, change and list the branches' records: orgs,
 * members, trips, agreements, contacts, visits, activities, assessments, approvals, care. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "change.h"
#include "cli.h"
#include "import.h"
#include "resolve.h"
#include "text.h"

/* A flag and the schema field its value goes to. */
typedef struct flag_field {
    const char *flag;
    const char *field;
} flag_field_t;

static const flag_field_t member_flags[] = {
    { "name", "name" }, { "org", "org" }, { "gender", "gender" }, { "born", "born" },
    { "joined", "joined" }, { "phone", "phone" }, { "id-number", "id_number" }, { NULL, NULL },
};

/* The i-th word of an enum field ("registered" for the trip status 0). */
static const char *schema_word(ld_kind_t kind, const char *field, size_t i)
{
    const ld_kind_def_t *def = ld_schema_kind(kind);
    int idx = def ? ld_schema_field_index(def, field) : -1;
    if (idx < 0 || !def->fields[idx].words)
        return "";
    for (size_t k = 0; k <= i; k++)
        if (!def->fields[idx].words[k])
            return "";
    return def->fields[idx].words[i];
}

/* Sets every flag of `map` the user gave on c, converted by nd_field_from_text.  On
 * an add (`adding`) an empty value is left out rather than set. */
static int set_flags(nd_cli_t *cli, nd_store_t *store, ld_change_t *c, const flag_field_t *map,
                     bool adding, ld_error_t *err)
{
    for (size_t i = 0; map[i].flag; i++) {
        const char *value = nd_cli_flag(cli, map[i].flag);
        char what[48];
        char *stored = NULL;
        if (!value)
            continue;
        snprintf(what, sizeof what, "--%s", map[i].flag);
        int rc = nd_field_from_text(store, c->kind, map[i].field, what, value, &stored, err);
        if (rc == 0 && !(adding && *stored == '\0'))
            rc = ld_change_set(c, map[i].field, stored, err);
        free(stored);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Sets a field the command computed itself (a default, a status word). */
static int set_field(ld_change_t *c, const char *field, const char *value, ld_error_t *err)
{
    return ld_change_set(c, field, value, err);
}

/* Writes c through the store's one write path and prints the record's id.  A change
 * without a record id, or `create`, must make a new record. */
static int write_record(nd_store_t *store, ld_change_t *c, bool create, ld_error_t *err)
{
    int rc = create || c->record_id[0] == '\0' ? nd_store_create(store, c, err)
                                                : nd_store_write(store, c, err);
    if (rc == 0)
        printf("%s\n", c->record_id);
    return rc;
}

/* Resolves the command's first positional argument as a record of `kind`. */
static int resolve_arg(nd_cli_t *cli, nd_store_t *store, ld_kind_t kind, const char *what,
                       char id[LD_RECORD_ID_MAX + 1], ld_error_t *err)
{
    return nd_resolve(store, kind, nd_cli_arg(cli, 0), what, id, err);
}

/* One text value of a query with up to 3 bound texts; malloc'd copy into *out (NULL if
 * no row).  0 or LD_EIO. */
static int query_text(sqlite3 *db, const char *sql, const char *a, const char *b, const char *c,
                      char **out, ld_error_t *err)
{
    sqlite3_stmt *st = NULL;
    const char *binds[3] = { a, b, c };
    *out = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    for (int i = 0; i < 3 && rc == SQLITE_OK; i++)
        if (binds[i])
            rc = sqlite3_bind_text(st, i + 1, binds[i], -1, SQLITE_STATIC);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            const unsigned char *v = sqlite3_column_text(st, 0);
            *out = strdup(v ? (const char *) v : "");
            rc = *out ? SQLITE_DONE : SQLITE_NOMEM;
        }
    }
    if (rc != SQLITE_DONE) {
        ld_error_set(err, LD_EIO, "database: %s", sqlite3_errmsg(db));
        sqlite3_finalize(st);
        free(*out);
        *out = NULL;
        return LD_EIO;
    }
    sqlite3_finalize(st);
    return 0;
}

/* ------------------------------------------------------------------ orgs ---- */

int nd_cmd_org_add(nd_cli_t *cli, ld_error_t *err)
{
    static const flag_field_t flags[] = {
        { "name", "name" }, { "kind", "kind" }, { "parent", "parent" }, { "node", "node" },
        { NULL, NULL },
    };
    ld_change_t c;
    char *existing = NULL;
    const char *id = nd_cli_arg(cli, 0);
    int rc;
    ld_change_init(&c);
    if (!ld_id_valid(id))
        return nd_bad_value(err, "ID", id,
                            "an org id is 1 to 64 of a-z, 0-9, '.', '_', '-', starting a-z or 0-9");
    nd_store_t *store = nd_cli_store(cli, err);
    if (!store)
        return err->code;
    rc = query_text(nd_store_db(store), "SELECT \"id\" FROM \"orgs\" WHERE \"id\" = ?1",
                    id, NULL, NULL, &existing, err);
    if (rc != 0)
        goto out;
    if (existing) {
        rc = ld_error_set(err, LD_EEXIST, "ID: org '%s' already exists", id);
        goto out;
    }
    c.kind = LD_KIND_ORG;
    snprintf(c.record_id, sizeof c.record_id, "%s", id);
    rc = set_flags(cli, store, &c, flags, true, err);
    if (rc == 0 && !nd_cli_flag(cli, "node"))
        rc = set_field(&c, "node", nd_store_node_id(store), err);
    if (rc == 0)
        rc = write_record(store, &c, true, err);
out:
    free(existing);
    ld_change_clear(&c);
    return rc;
}

/* Refuses `org`, given as `flag` (`value`), unless it is an inflow branch (kind mobile,
 * the branch away from home that mobile members go to) when `inflow`, or a home branch
 * (any other kind) when not. */
static int check_org_side(sqlite3 *db, const char *org, bool inflow, const char *flag,
                          const char *value, ld_error_t *err)
{
    char *kind = NULL, *name = NULL, why[256];
    int rc = query_text(db, "SELECT coalesce(\"kind\", '') FROM \"orgs\" WHERE \"id\" = ?1",
                        org, NULL, NULL, &kind, err);
    if (rc == 0)
        rc = query_text(db, "SELECT coalesce(\"name\", \"id\") FROM \"orgs\" WHERE \"id\" = ?1",
                        org, NULL, NULL, &name, err);
    if (rc == 0 && kind != NULL && (strcmp(kind, "mobile") == 0) != inflow) {
        if (inflow)
            snprintf(why, sizeof why, "%s is a %s org, not an inflow branch (an org of kind "
                     "mobile)", name, kind);
        else
            snprintf(why, sizeof why, "%s is an inflow branch (kind mobile), not a home "
                     "branch", name);
        rc = nd_bad_value(err, flag, value, why);
    }
    free(kind);
    free(name);
    return rc;
}

/* Refuses `parent` as the parent of org `id` when it is that org or one below it. */
static int check_parent(sqlite3 *db, const char *id, const char *parent, ld_error_t *err)
{
    char *up = strdup(parent);
    int rc = up != NULL ? 0 : ld_error_set(err, LD_ENOMEM, "out of memory");
    /* orgs are a few levels deep; the bound only stops a loop already in the store */
    for (int depth = 0; rc == 0 && up != NULL && *up != '\0' && depth < 64; depth++) {
        if (strcmp(up, id) == 0) {
            rc = nd_bad_value(err, "--parent", parent, "that is the org itself or one of "
                              "its branches");
            break;
        }
        char *next = NULL;
        rc = query_text(db, "SELECT coalesce(\"parent\", '') FROM \"orgs\" WHERE \"id\" = ?1",
                        up, NULL, NULL, &next, err);
        free(up);
        up = next;
    }
    free(up);
    return rc;
}

int nd_cmd_org_edit(nd_cli_t *cli, ld_error_t *err)
{
    static const flag_field_t flags[] = {
        { "name", "name" }, { "kind", "kind" }, { "parent", "parent" }, { NULL, NULL },
    };
    char id[LD_RECORD_ID_MAX + 1];
    ld_change_t c;
    ld_change_init(&c);
    nd_store_t *store = nd_cli_store(cli, err);
    if (!store)
        return err->code;
    char *maker = NULL;
    int rc = resolve_arg(cli, store, LD_KIND_ORG, "ORG", id, err);
    /* The node that made an org sent it to the nodes that needed it (the home township
     * made most orgs, and sends them with each member's history): an edit made there
     * reaches every node it was sent to. */
    if (rc == 0)
        rc = query_text(nd_store_db(store), "SELECT \"created_by\" FROM \"orgs\" WHERE "
                        "\"id\" = ?1", id, NULL, NULL, &maker, err);
    if (rc == 0 && maker != NULL && strcmp(maker, nd_store_node_id(store)) != 0)
        rc = ld_error_set(err, LD_EDENIED, "ORG: org %s was made by node %s: edit it there, "
                          "so that every node that holds it hears of it", id, maker);
    free(maker);
    if (rc == 0) {
        c.kind = LD_KIND_ORG;
        snprintf(c.record_id, sizeof c.record_id, "%s", id);
        rc = set_flags(cli, store, &c, flags, false, err);
    }
    if (rc == 0 && c.nfields == 0)
        rc = ld_error_set(err, LD_EINVAL, "nothing to change (give at least one of --name, "
                          "--kind, --parent)");
    const char *parent = rc == 0 ? ld_change_get(&c, "parent") : NULL;
    if (parent != NULL && *parent != '\0')
        rc = check_parent(nd_store_db(store), id, parent, err);
    if (rc == 0)
        rc = write_record(store, &c, false, err);
    ld_change_clear(&c);
    return rc;
}

int nd_cmd_org_list(nd_cli_t *cli, ld_error_t *err)
{
    static const char *const keys[] = { "id", "name", "kind", "parent", "node" };
    static const char *const labels[] = { "id", "名称 name", "kind", "parent", "node" };
    return nd_cli_list(cli, "orgs",
                       "SELECT o.\"id\", o.\"name\", o.\"kind\", o.\"parent\", o.\"node\""
                       " FROM \"orgs\" o WHERE coalesce(o.\"deleted\", 0) = 0 ORDER BY o.\"id\"",
                       NULL, 0, 5, keys, labels, err);
}

/* --------------------------------------------------------------- members ---- */

/* Refuses a member who would duplicate another live one: the same id number, or the
 * same name, org and birth date.  `self` ("" for a new member) is not compared. */
static int member_check_duplicate(nd_store_t *store, const char *self, const char *name,
                                  const char *org, const char *born, const char *id_number,
                                  ld_error_t *err)
{
    sqlite3 *db = nd_store_db(store);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db,
        "SELECT \"id\", coalesce(\"id_number\", '') = ?4 AND ?4 <> '' FROM \"members\""
        " WHERE coalesce(\"deleted\", 0) = 0 AND \"id\" <> ?5"
        " AND ((?4 <> '' AND \"id_number\" = ?4)"
        "  OR (\"name\" = ?1 AND \"org\" = ?2 AND coalesce(\"born\", '') = ?3)) LIMIT 1",
        -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(st, 2, org, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(st, 3, born, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(st, 4, id_number, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(st, 5, self, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        char quoted[256];
        bool same_number = sqlite3_column_int(st, 1) != 0;
        if (same_number) {
            ld_quote(id_number, LD_QUOTE_MAX, quoted, sizeof quoted);
            rc = ld_error_set(err, LD_EEXIST, "--id-number: member %s already has id number '%s'",
                              (const char *) sqlite3_column_text(st, 0), quoted);
        } else {
            ld_quote(name, LD_QUOTE_MAX, quoted, sizeof quoted);
            rc = ld_error_set(err, LD_EEXIST, "--name: member %s already is '%s' of this org"
                              " born '%s'", (const char *) sqlite3_column_text(st, 0), quoted,
                              born);
        }
        sqlite3_finalize(st);
        return rc;
    }
    if (rc != SQLITE_DONE) {
        ld_error_set(err, LD_EIO, "database: %s", sqlite3_errmsg(db));
        sqlite3_finalize(st);
        return LD_EIO;
    }
    sqlite3_finalize(st);
    return 0;
}

/* Refuses a home branch (`org`, given as --org `value`) that another node keeps: a
 * member is registered, and moved, on the node that keeps his branch. */
static int check_org_here(nd_store_t *store, const char *org, const char *value,
                          ld_error_t *err)
{
    char *node = NULL, why[160];
    int rc = org ? query_text(nd_store_db(store), "SELECT coalesce(\"node\", '') FROM \"orgs\""
                              " WHERE \"id\" = ?1", org, NULL, NULL, &node, err) : 0;
    if (rc == 0 && node && *node && strcmp(node, nd_store_node_id(store)) != 0) {
        snprintf(why, sizeof why, "kept by node %s: a member is registered on the node that "
                 "keeps his branch", node);
        rc = nd_bad_value(err, "--org", value, why);
    }
    free(node);
    return rc;
}

int nd_cmd_member_add(nd_cli_t *cli, ld_error_t *err)
{
    ld_change_t c;
    ld_change_init(&c);
    nd_store_t *store = nd_cli_store(cli, err);
    if (!store)
        return err->code;
    c.kind = LD_KIND_MEMBER;
    int rc = set_flags(cli, store, &c, member_flags, true, err);
    const char *joined = rc == 0 ? ld_change_get(&c, "joined") : NULL;
    if (joined && ld_change_get(&c, "born") && strcmp(joined, ld_change_get(&c, "born")) < 0)
        rc = nd_bad_value(err, "--joined", joined, "before --born");
    if (rc == 0)
        rc = check_org_here(store, ld_change_get(&c, "org"), nd_cli_flag(cli, "org"), err);
    if (rc == 0) {
        const char *born = ld_change_get(&c, "born");
        const char *number = ld_change_get(&c, "id_number");
        rc = member_check_duplicate(store, "", ld_change_get(&c, "name"), ld_change_get(&c, "org"),
                                    born ? born : "", number ? number : "", err);
    }
    if (rc == 0)
        rc = write_record(store, &c, false, err);
    ld_change_clear(&c);
    return rc;
}

int nd_cmd_member_edit(nd_cli_t *cli, ld_error_t *err)
{
    static const char *const cols[] = { "name", "org", "born", "id_number" };
    char id[LD_RECORD_ID_MAX + 1];
    char *current[4] = { NULL, NULL, NULL, NULL };
    const char *merged[4];
    ld_change_t c;
    int rc;
    ld_change_init(&c);
    nd_store_t *store = nd_cli_store(cli, err);
    if (!store)
        return err->code;
    rc = resolve_arg(cli, store, LD_KIND_MEMBER, "MEMBER", id, err);
    if (rc != 0)
        goto out;
    c.kind = LD_KIND_MEMBER;
    snprintf(c.record_id, sizeof c.record_id, "%s", id);
    rc = set_flags(cli, store, &c, member_flags, false, err);
    if (rc != 0)
        goto out;
    if (c.nfields == 0) {
        rc = ld_error_set(err, LD_EINVAL, "nothing to change (give at least one of --name,"
                          " --org, --gender, --born, --joined, --phone, --id-number)");
        goto out;
    }
    rc = check_org_here(store, ld_change_get(&c, "org"), nd_cli_flag(cli, "org"), err);
    for (int i = 0; i < 4 && rc == 0; i++) {
        char sql[128];
        snprintf(sql, sizeof sql, "SELECT coalesce(\"%s\", '') FROM \"members\" WHERE \"id\" = ?1",
                 cols[i]);
        rc = query_text(nd_store_db(store), sql, id, NULL, NULL, &current[i], err);
        const char *changed = ld_change_get(&c, cols[i]);
        merged[i] = changed ? changed : current[i] ? current[i] : "";
    }
    if (rc == 0)
        rc = member_check_duplicate(store, id, merged[0], merged[1], merged[2], merged[3], err);
    if (rc == 0)
        rc = write_record(store, &c, false, err);
out:
    for (int i = 0; i < 4; i++)
        free(current[i]);
    ld_change_clear(&c);
    return rc;
}

/* The trip status words: 0 registered and 1 reported in mean "away"; 2.. ended. */
static const char *trip_word(size_t i)
{
    return schema_word(LD_KIND_TRIP, "status", i);
}

int nd_cmd_member_list(nd_cli_t *cli, ld_error_t *err)
{
    static const char *const keys[] = {
        "id", "name", "org", "gender", "born", "joined", "phone", "id_number", "away_at", "trip_status",
    };
    static const char *const labels[] = {
        "id", "姓名 name", "支部 org", "gender", "born", "joined", "phone", "id number",
        "流入地 away at", "trip",
    };
    char org[LD_RECORD_ID_MAX + 1];
    const char *org_flag = nd_cli_flag(cli, "org");
    nd_store_t *store = nd_cli_store(cli, err);
    if (!store)
        return err->code;
    if (org_flag) {
        int rc = nd_resolve(store, LD_KIND_ORG, org_flag, "--org", org, err);
        if (rc != 0)
            return rc;
    }
    const char *binds[] = { org_flag ? org : NULL, trip_word(0), trip_word(1),
                            nd_cli_has(cli, "mobile") ? "1" : NULL };
    return nd_cli_list(cli, "members",
        "SELECT m.\"id\", m.\"name\", coalesce(o.\"name\", m.\"org\"), m.\"gender\", m.\"born\","
        " m.\"joined\", m.\"phone\", m.\"id_number\", coalesce(io.\"name\", t.\"to\"), t.\"status\""
        " FROM \"members\" m"
        " LEFT JOIN \"orgs\" o ON o.\"id\" = m.\"org\""
        " LEFT JOIN \"trips\" t ON t.\"id\" = (SELECT t2.\"id\" FROM \"trips\" t2"
        "   WHERE t2.\"member\" = m.\"id\" AND coalesce(t2.\"deleted\", 0) = 0"
        "   AND t2.\"status\" IN (?2, ?3) ORDER BY t2.\"started\" DESC, t2.\"id\" LIMIT 1)"
        " LEFT JOIN \"orgs\" io ON io.\"id\" = t.\"to\""
        " WHERE coalesce(m.\"deleted\", 0) = 0 AND (?1 IS NULL OR m.\"org\" = ?1)"
        " AND (?4 IS NULL OR t.\"id\" IS NOT NULL)"
        " ORDER BY m.\"org\", m.\"name\", m.\"id\"",
        binds, 4, 10, keys, labels, err);
}

/* Renders one table of member show; in JSON the tables become members of one object. */
static int show_part(nd_cli_t *cli, sqlite3 *db, const char *title, const char *sql,
                     const char *id, size_t ncols, const char *const *keys, bool *first,
                     ld_error_t *err)
{
    nd_table_t *table = NULL;
    const char *binds[] = { id };
    nd_format_t fmt = nd_cli_format(cli);
    int rc = nd_cli_query(db, title, sql, binds, 1, ncols, keys, NULL, &table, err);
    if (rc != 0)
        return rc;
    if (fmt == ND_FMT_JSON)
        printf("%s\"%s\": ", *first ? "{\n" : ",\n", title);
    else if (!*first)
        printf(fmt == ND_FMT_CSV ? "\r\n" : "\n");
    if (fmt == ND_FMT_CSV && !*first) {
        /* one file, one byte-order mark: the later tables go without theirs */
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        rc = f ? nd_table_print(table, fmt, f) : LD_ENOMEM;
        if (f && fclose(f) != 0 && rc == 0)
            rc = LD_ENOMEM;
        if (rc == 0 && len >= 3 && fwrite(text + 3, 1, len - 3, stdout) != len - 3)
            rc = LD_EIO;
        free(text);
    } else {
        rc = nd_table_print(table, fmt, stdout);
    }
    if (rc != 0)
        ld_error_set(err, rc, "cannot write the output");
    *first = false;
    nd_table_destroy(&table);
    return rc;
}

int nd_cmd_member_show(nd_cli_t *cli, ld_error_t *err)
{
    static const char *const member_keys[] = {
        "id", "name", "org", "gender", "born", "joined", "phone", "id_number", "origin",
    };
    static const char *const trip_keys[] = {
        "id", "to", "started", "reported_in", "ended", "status", "employer", "address", "phone",
        "reason",
    };
    static const char *const activity_keys[] = { "id", "date", "kind", "month", "amount", "note" };
    static const char *const assessment_keys[] = { "id", "year", "side", "grade", "note" };
    static const char *const approval_keys[] = { "id", "date", "to", "decision", "note" };
    static const char *const care_keys[] = { "id", "kind", "date", "status", "note" };
    char id[LD_RECORD_ID_MAX + 1];
    bool first = true;
    nd_store_t *store = nd_cli_store(cli, err);
    if (!store)
        return err->code;
    int rc = resolve_arg(cli, store, LD_KIND_MEMBER, "MEMBER", id, err);
    if (rc != 0)
        return rc;
    sqlite3 *db = nd_store_db(store);
    rc = show_part(cli, db, "member",
        "SELECT m.\"id\", m.\"name\", coalesce(o.\"name\", m.\"org\"), m.\"gender\", m.\"born\","
        " m.\"joined\", m.\"phone\", m.\"id_number\", m.\"origin\" FROM \"members\" m"
        " LEFT JOIN \"orgs\" o ON o.\"id\" = m.\"org\" WHERE m.\"id\" = ?1",
        id, 9, member_keys, &first, err);
    if (rc == 0)
        rc = show_part(cli, db, "trips",
            "SELECT t.\"id\", coalesce(o.\"name\", t.\"to\"), t.\"started\", t.\"reported_in\","
            " t.\"ended\", t.\"status\", t.\"employer\", t.\"address\", t.\"phone\", t.\"reason\""
            " FROM \"trips\" t LEFT JOIN \"orgs\" o ON o.\"id\" = t.\"to\""
            " WHERE t.\"member\" = ?1 AND coalesce(t.\"deleted\", 0) = 0"
            " ORDER BY t.\"started\", t.\"id\"", id, 10, trip_keys, &first, err);
    if (rc == 0)
        rc = show_part(cli, db, "activities",
            "SELECT \"id\", \"date\", \"kind\", \"month\", CASE WHEN \"amount\" IS NULL THEN NULL"
            " ELSE printf('%d.%02d', \"amount\" / 100, \"amount\" % 100) END, \"note\""
            " FROM \"activities\" WHERE \"member\" = ?1 AND coalesce(\"deleted\", 0) = 0"
            " ORDER BY \"date\", \"id\"", id, 6, activity_keys, &first, err);
    if (rc == 0)
        rc = show_part(cli, db, "assessments",
            "SELECT \"id\", \"year\", \"side\", \"grade\", \"note\" FROM \"assessments\""
            " WHERE \"member\" = ?1 AND coalesce(\"deleted\", 0) = 0"
            " ORDER BY \"year\", \"side\", \"id\"", id, 5, assessment_keys, &first, err);
    if (rc == 0)
        rc = show_part(cli, db, "approvals",
            "SELECT a.\"id\", a.\"date\", coalesce(o.\"name\", a.\"to\"), a.\"decision\", a.\"note\""
            " FROM \"approvals\" a LEFT JOIN \"orgs\" o ON o.\"id\" = a.\"to\""
            " WHERE a.\"member\" = ?1 AND coalesce(a.\"deleted\", 0) = 0"
            " ORDER BY a.\"date\", a.\"id\"", id, 5, approval_keys, &first, err);
    if (rc == 0)
        rc = show_part(cli, db, "cares",
            "SELECT \"id\", \"kind\", \"date\", \"status\", \"note\" FROM \"cares\""
            " WHERE \"member\" = ?1 AND coalesce(\"deleted\", 0) = 0"
            " ORDER BY \"date\", \"id\"", id, 5, care_keys, &first, err);
    if (rc == 0 && nd_cli_format(cli) == ND_FMT_JSON)
        printf("\n}\n");
    return rc;
}

int nd_cmd_member_import(nd_cli_t *cli, ld_error_t *err)
{
    size_t count = 0;
    nd_store_t *store = nd_cli_store(cli, err);
    if (!store)
        return err->code;
    int rc = nd_import_members(store, nd_cli_arg(cli, 0), &count, err);
    if (rc == 0)
        fprintf(stderr, "imported %zu members\n", count);
    return rc;
}

/* ----------------------------------------------------------------- trips ---- */

/* The member's open trip (status one of words[0..last_open]) into id, started,
 * status; LD_ENOTFOUND-free: *found says whether there is one. */
static int open_trip(sqlite3 *db, const char *member, char id[LD_RECORD_ID_MAX + 1],
                     char started[16], char status[32], bool *found, ld_error_t *err)
{
    sqlite3_stmt *st = NULL;
    *found = false;
    int rc = sqlite3_prepare_v2(db,
        "SELECT \"id\", coalesce(\"started\", ''), \"status\" FROM \"trips\""
        " WHERE \"member\" = ?1 AND coalesce(\"deleted\", 0) = 0 AND \"status\" IN (?2, ?3)"
        " ORDER BY \"started\" DESC, \"id\" LIMIT 1", -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(st, 1, member, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(st, 2, trip_word(0), -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(st, 3, trip_word(1), -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        snprintf(id, LD_RECORD_ID_MAX + 1, "%s", (const char *) sqlite3_column_text(st, 0));
        snprintf(started, 16, "%s", (const char *) sqlite3_column_text(st, 1));
        snprintf(status, 32, "%s", (const char *) sqlite3_column_text(st, 2));
        *found = true;
        rc = SQLITE_DONE;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return ld_error_set(err, LD_EIO, "database: %s", sqlite3_errmsg(db));
    return 0;
}

/* Checks --date is a real date not before `since` (the trip's start). */
static int check_date_after(const char *flag, const char *date, const char *since,
                            const char *since_what, ld_error_t *err)
{
    int32_t days;
    char why[128];
    if (!ld_date_parse(date, &days))
        return nd_bad_value(err, flag, date, strlen(date) == 10 ? "no such date"
                                                                : "expected a date YYYY-MM-DD");
    if (since && *since && strcmp(date, since) < 0) {
        snprintf(why, sizeof why, "before %s %s", since_what, since);
        return nd_bad_value(err, flag, date, why);
    }
    return 0;
}

int nd_cmd_trip_start(nd_cli_t *cli, ld_error_t *err)
{
    static const flag_field_t flags[] = {
        { "to", "to" }, { "date", "started" }, { "employer", "employer" },
        { "address", "address" }, { "phone", "phone" }, { "reason", "reason" }, { NULL, NULL },
    };
    char member[LD_RECORD_ID_MAX + 1], trip[LD_RECORD_ID_MAX + 1], started[16], status[32];
    bool found;
    ld_change_t c;
    ld_change_init(&c);
    nd_store_t *store = nd_cli_store(cli, err);
    if (!store)
        return err->code;
    int rc = resolve_arg(cli, store, LD_KIND_MEMBER, "MEMBER", member, err);
    if (rc == 0)
        rc = open_trip(nd_store_db(store), member, trip, started, status, &found, err);
    if (rc == 0 && found)
        rc = ld_error_set(err, LD_EEXIST, "MEMBER: '%s' is already away on trip %s since %s"
                          " (end it with 'liangdi trip end' first)", nd_cli_arg(cli, 0), trip,
                          started);
    c.kind = LD_KIND_TRIP;
    if (rc == 0)
        rc = set_field(&c, "member", member, err);
    if (rc == 0)
        rc = set_flags(cli, store, &c, flags, true, err);
    /* a trip leaves the member's home branch for an inflow branch */
    if (rc == 0)
        rc = check_org_side(nd_store_db(store), ld_change_get(&c, "to"), true, "--to",
                            nd_cli_flag(cli, "to"), err);
    if (rc == 0)
        rc = set_field(&c, "status", trip_word(0), err);
    if (rc == 0)
        rc = write_record(store, &c, false, err);
    ld_change_clear(&c);
    return rc;
}

int nd_cmd_trip_report_in(nd_cli_t *cli, ld_error_t *err)
{
    char member[LD_RECORD_ID_MAX + 1], trip[LD_RECORD_ID_MAX + 1], started[16], status[32];
    bool found;
    const char *date = nd_cli_flag(cli, "date");
    ld_change_t c;
    ld_change_init(&c);
    nd_store_t *store = nd_cli_store(cli, err);
    if (!store)
        return err->code;
    int rc = resolve_arg(cli, store, LD_KIND_MEMBER, "MEMBER", member, err);
    if (rc == 0)
        rc = open_trip(nd_store_db(store), member, trip, started, status, &found, err);
    if (rc == 0 && !found)
        rc = ld_error_set(err, LD_EINVAL, "MEMBER: '%s' is not away on a trip"
                          " (start one with 'liangdi trip start')", nd_cli_arg(cli, 0));
    if (rc == 0 && strcmp(status, trip_word(0)) != 0)
        rc = ld_error_set(err, LD_EINVAL, "MEMBER: '%s' has already reported in on trip %s",
                          nd_cli_arg(cli, 0), trip);
    if (rc == 0)
        rc = check_date_after("--date", date, started, "the trip's start", err);
    c.kind = LD_KIND_TRIP;
    snprintf(c.record_id, sizeof c.record_id, "%s", trip);
    if (rc == 0)
        rc = set_field(&c, "reported_in", date, err);
    if (rc == 0)
        rc = set_field(&c, "status", trip_word(1), err);
    if (rc == 0)
        rc = write_record(store, &c, false, err);
    ld_change_clear(&c);
    return rc;
}

int nd_cmd_trip_end(nd_cli_t *cli, ld_error_t *err)
{
    char member[LD_RECORD_ID_MAX + 1], trip[LD_RECORD_ID_MAX + 1], started[16], status[32];
    bool found;
    const char *date = nd_cli_flag(cli, "date");
    const char *why = nd_cli_flag(cli, "why");
    ld_change_t c;
    ld_change_init(&c);
    bool why_ok = false;
    char words[128] = "";
    for (size_t i = 2; i <= 4; i++) {
        const char *w = schema_word(LD_KIND_TRIP, "status", i);
        why_ok = why_ok || (*w && strcmp(w, why) == 0);
        snprintf(words + strlen(words), sizeof words - strlen(words), "%s%s", i > 2 ? "|" : "", w);
    }
    if (!why_ok) {
        char reason[160];
        snprintf(reason, sizeof reason, "expected %s", words);
        return nd_bad_value(err, "--why", why, reason);
    }
    nd_store_t *store = nd_cli_store(cli, err);
    if (!store)
        return err->code;
    int rc = resolve_arg(cli, store, LD_KIND_MEMBER, "MEMBER", member, err);
    if (rc == 0)
        rc = open_trip(nd_store_db(store), member, trip, started, status, &found, err);
    if (rc == 0 && !found)
        rc = ld_error_set(err, LD_EINVAL, "MEMBER: '%s' is not away on a trip", nd_cli_arg(cli, 0));
    if (rc == 0)
        rc = check_date_after("--date", date, started, "the trip's start", err);
    c.kind = LD_KIND_TRIP;
    snprintf(c.record_id, sizeof c.record_id, "%s", trip);
    if (rc == 0)
        rc = set_field(&c, "ended", date, err);
    if (rc == 0)
        rc = set_field(&c, "status", why, err);
    if (rc == 0)
        rc = write_record(store, &c, false, err);
    ld_change_clear(&c);
    return rc;
}

int nd_cmd_trip_list(nd_cli_t *cli, ld_error_t *err)
{
    static const char *const keys[] = {
        "id", "member", "name", "to", "started", "reported_in", "ended", "status", "employer",
        "address", "phone", "reason",
    };
    static const char *const labels[] = {
        "id", "member", "姓名 name", "流入地 to", "started", "reported in", "ended", "status",
        "employer", "address", "phone", "reason",
    };
    char member[LD_RECORD_ID_MAX + 1];
    const char *flag = nd_cli_flag(cli, "member");
    nd_store_t *store = nd_cli_store(cli, err);
    if (!store)
        return err->code;
    if (flag) {
        int rc = nd_resolve(store, LD_KIND_MEMBER, flag, "--member", member, err);
        if (rc != 0)
            return rc;
    }
    const char *binds[] = { flag ? member : NULL };
    return nd_cli_list(cli, "trips",
        "SELECT t.\"id\", t.\"member\", m.\"name\", coalesce(o.\"name\", t.\"to\"), t.\"started\","
        " t.\"reported_in\", t.\"ended\", t.\"status\", t.\"employer\", t.\"address\","
        " t.\"phone\", t.\"reason\" FROM \"trips\" t"
        " LEFT JOIN \"members\" m ON m.\"id\" = t.\"member\""
        " LEFT JOIN \"orgs\" o ON o.\"id\" = t.\"to\""
        " WHERE coalesce(t.\"deleted\", 0) = 0 AND (?1 IS NULL OR t.\"member\" = ?1)"
        " ORDER BY t.\"started\", t.\"id\"", binds, 1, 12, keys, labels, err);
}

/* ------------------------------------------------------------ agreements ---- */

int nd_cmd_agreement_add(nd_cli_t *cli, ld_error_t *err)
{
    static const flag_field_t flags[] = {
        { "outflow", "outflow" }, { "inflow", "inflow" }, { "signed", "signed" },
        { "until", "until" }, { "terms", "terms" }, { NULL, NULL },
    };
    ld_change_t c;
    ld_change_init(&c);
    nd_store_t *store = nd_cli_store(cli, err);
    if (!store)
        return err->code;
    c.kind = LD_KIND_AGREEMENT;
    int rc = set_flags(cli, store, &c, flags, true, err);
    if (rc == 0 && strcmp(ld_change_get(&c, "outflow"), ld_change_get(&c, "inflow")) == 0)
        rc = nd_bad_value(err, "--inflow", nd_cli_flag(cli, "inflow"),
                          "the same org as --outflow");
    sqlite3 *db = nd_store_db(store);
    if (rc == 0)
        rc = check_org_side(db, ld_change_get(&c, "outflow"), false, "--outflow",
                            nd_cli_flag(cli, "outflow"), err);
    if (rc == 0)
        rc = check_org_side(db, ld_change_get(&c, "inflow"), true, "--inflow",
                            nd_cli_flag(cli, "inflow"), err);
    /* one agreement per pair of branches: the report owes its contacts and visits once */
    char *existing = NULL;
    if (rc == 0)
        rc = query_text(db, "SELECT \"id\" || ' (signed ' || coalesce(\"signed\", '?') || ')'"
                        " FROM \"agreements\" WHERE \"outflow\" = ?1 AND \"inflow\" = ?2"
                        " AND coalesce(\"deleted\", 0) = 0 ORDER BY \"id\" LIMIT 1",
                        ld_change_get(&c, "outflow"), ld_change_get(&c, "inflow"), NULL,
                        &existing, err);
    if (rc == 0 && existing)
        rc = ld_error_set(err, LD_EEXIST, "--inflow: %s and %s already have agreement %s",
                          nd_cli_flag(cli, "outflow"), nd_cli_flag(cli, "inflow"), existing);
    free(existing);
    const char *until = rc == 0 ? ld_change_get(&c, "until") : NULL;
    if (until && strcmp(until, ld_change_get(&c, "signed")) < 0)
        rc = nd_bad_value(err, "--until", until, "before --signed");
    if (rc == 0)
        rc = write_record(store, &c, false, err);
    ld_change_clear(&c);
    return rc;
}

#define AGREEMENT_LABEL_SQL(a) \
    "coalesce(oo.\"name\", " a ".\"outflow\") || '/' || coalesce(io.\"name\", " a ".\"inflow\")"

int nd_cmd_agreement_list(nd_cli_t *cli, ld_error_t *err)
{
    static const char *const keys[] = { "id", "outflow", "inflow", "signed", "until", "terms" };
    static const char *const labels[] = {
        "id", "流出地 outflow", "流入地 inflow", "signed", "until", "terms",
    };
    return nd_cli_list(cli, "agreements",
        "SELECT a.\"id\", coalesce(oo.\"name\", a.\"outflow\"), coalesce(io.\"name\", a.\"inflow\"),"
        " a.\"signed\", a.\"until\", a.\"terms\" FROM \"agreements\" a"
        " LEFT JOIN \"orgs\" oo ON oo.\"id\" = a.\"outflow\""
        " LEFT JOIN \"orgs\" io ON io.\"id\" = a.\"inflow\""
        " WHERE coalesce(a.\"deleted\", 0) = 0 ORDER BY a.\"signed\", a.\"id\"",
        NULL, 0, 6, keys, labels, err);
}

int nd_cmd_contact_add(nd_cli_t *cli, ld_error_t *err)
{
    static const flag_field_t flags[] = {
        { "date", "date" }, { "channel", "channel" }, { "note", "note" }, { NULL, NULL },
    };
    char agreement[LD_RECORD_ID_MAX + 1];
    ld_change_t c;
    ld_change_init(&c);
    nd_store_t *store = nd_cli_store(cli, err);
    if (!store)
        return err->code;
    c.kind = LD_KIND_CONTACT;
    int rc = resolve_arg(cli, store, LD_KIND_AGREEMENT, "AGREEMENT", agreement, err);
    if (rc == 0)
        rc = set_field(&c, "agreement", agreement, err);
    if (rc == 0)
        rc = set_flags(cli, store, &c, flags, true, err);
    if (rc == 0 && !ld_change_get(&c, "channel"))
        rc = set_field(&c, "channel", schema_word(LD_KIND_CONTACT, "channel", 0), err);
    if (rc == 0)
        rc = write_record(store, &c, false, err);
    ld_change_clear(&c);
    return rc;
}

int nd_cmd_contact_list(nd_cli_t *cli, ld_error_t *err)
{
    static const char *const keys[] = { "id", "agreement", "between", "date", "channel", "note" };
    return nd_cli_list(cli, "contacts",
        "SELECT c.\"id\", c.\"agreement\", " AGREEMENT_LABEL_SQL("a") ", c.\"date\", c.\"channel\","
        " c.\"note\" FROM \"contacts\" c"
        " LEFT JOIN \"agreements\" a ON a.\"id\" = c.\"agreement\""
        " LEFT JOIN \"orgs\" oo ON oo.\"id\" = a.\"outflow\""
        " LEFT JOIN \"orgs\" io ON io.\"id\" = a.\"inflow\""
        " WHERE coalesce(c.\"deleted\", 0) = 0 ORDER BY c.\"date\", c.\"id\"",
        NULL, 0, 6, keys, NULL, err);
}

int nd_cmd_visit_add(nd_cli_t *cli, ld_error_t *err)
{
    static const flag_field_t flags[] = {
        { "date", "date" }, { "host", "host" }, { "note", "note" }, { NULL, NULL },
    };
    char agreement[LD_RECORD_ID_MAX + 1];
    char *party = NULL;
    ld_change_t c;
    ld_change_init(&c);
    nd_store_t *store = nd_cli_store(cli, err);
    if (!store)
        return err->code;
    c.kind = LD_KIND_VISIT;
    int rc = resolve_arg(cli, store, LD_KIND_AGREEMENT, "AGREEMENT", agreement, err);
    if (rc == 0)
        rc = set_field(&c, "agreement", agreement, err);
    if (rc == 0)
        rc = set_flags(cli, store, &c, flags, true, err);
    if (rc == 0)
        rc = query_text(nd_store_db(store), "SELECT \"id\" FROM \"agreements\" WHERE \"id\" = ?1"
                        " AND (\"outflow\" = ?2 OR \"inflow\" = ?2)", agreement,
                        ld_change_get(&c, "host"), NULL, &party, err);
    if (rc == 0 && !party)
        rc = nd_bad_value(err, "--host", nd_cli_flag(cli, "host"),
                          "not one of the agreement's two orgs");
    if (rc == 0)
        rc = write_record(store, &c, false, err);
    free(party);
    ld_change_clear(&c);
    return rc;
}

int nd_cmd_visit_list(nd_cli_t *cli, ld_error_t *err)
{
    static const char *const keys[] = { "id", "agreement", "between", "date", "host", "note" };
    return nd_cli_list(cli, "visits",
        "SELECT v.\"id\", v.\"agreement\", " AGREEMENT_LABEL_SQL("a") ", v.\"date\","
        " coalesce(h.\"name\", v.\"host\"), v.\"note\" FROM \"visits\" v"
        " LEFT JOIN \"agreements\" a ON a.\"id\" = v.\"agreement\""
        " LEFT JOIN \"orgs\" oo ON oo.\"id\" = a.\"outflow\""
        " LEFT JOIN \"orgs\" io ON io.\"id\" = a.\"inflow\""
        " LEFT JOIN \"orgs\" h ON h.\"id\" = v.\"host\""
        " WHERE coalesce(v.\"deleted\", 0) = 0 ORDER BY v.\"date\", v.\"id\"",
        NULL, 0, 6, keys, NULL, err);
}

/* ------------------------------------------------- activities and the rest ---- */

int nd_cmd_activity_add(nd_cli_t *cli, ld_error_t *err)
{
    static const flag_field_t flags[] = {
        { "date", "date" }, { "kind", "kind" }, { "month", "month" }, { "amount", "amount" },
        { "note", "note" }, { NULL, NULL },
    };
    char member[LD_RECORD_ID_MAX + 1];
    ld_change_t c;
    ld_change_init(&c);
    nd_store_t *store = nd_cli_store(cli, err);
    if (!store)
        return err->code;
    c.kind = LD_KIND_ACTIVITY;
    int rc = resolve_arg(cli, store, LD_KIND_MEMBER, "MEMBER", member, err);
    if (rc == 0)
        rc = set_field(&c, "member", member, err);
    if (rc == 0)
        rc = set_flags(cli, store, &c, flags, true, err);
    if (rc == 0) {
        bool dues = strcmp(ld_change_get(&c, "kind"), "dues") == 0;
        if (dues && !ld_change_get(&c, "month"))
            rc = ld_error_set(err, LD_EINVAL, "missing --month (dues are paid for a month,"
                              " YYYY-MM)");
        else if (dues && !ld_change_get(&c, "amount"))
            rc = ld_error_set(err, LD_EINVAL, "missing --amount (dues need the sum paid, in yuan)");
        else if (!dues && nd_cli_flag(cli, "amount"))
            rc = nd_bad_value(err, "--amount", nd_cli_flag(cli, "amount"),
                              "only dues have an amount");
        else if (dues && strcmp(ld_change_get(&c, "amount"), "0") == 0)
            rc = nd_bad_value(err, "--amount", nd_cli_flag(cli, "amount"),
                              "dues paid are more than 0");
    }
    /* a month is paid for once: a second entry is a slip, or the first one was */
    char *paid = NULL;
    if (rc == 0 && strcmp(ld_change_get(&c, "kind"), "dues") == 0)
        rc = query_text(nd_store_db(store), "SELECT \"id\" || ', paid ' || \"date\""
                        " FROM \"activities\" WHERE \"member\" = ?1 AND \"kind\" = 'dues'"
                        " AND \"month\" = ?2 AND coalesce(\"deleted\", 0) = 0"
                        " ORDER BY \"id\" LIMIT 1", member, ld_change_get(&c, "month"), NULL,
                        &paid, err);
    if (rc == 0 && paid)
        rc = ld_error_set(err, LD_EEXIST, "--month: the dues for %s are already recorded (%s);"
                          " if that entry is wrong, 'liangdi delete' it first",
                          ld_change_get(&c, "month"), paid);
    free(paid);
    if (rc == 0)
        rc = write_record(store, &c, false, err);
    ld_change_clear(&c);
    return rc;
}

int nd_cmd_activity_list(nd_cli_t *cli, ld_error_t *err)
{
    static const char *const keys[] = {
        "id", "member", "name", "date", "kind", "month", "amount", "note",
    };
    static const char *const labels[] = {
        "id", "member", "姓名 name", "date", "kind", "month", "amount (yuan)", "note",
    };
    char member[LD_RECORD_ID_MAX + 1];
    const char *flag = nd_cli_flag(cli, "member");
    nd_store_t *store = nd_cli_store(cli, err);
    if (!store)
        return err->code;
    if (flag) {
        int rc = nd_resolve(store, LD_KIND_MEMBER, flag, "--member", member, err);
        if (rc != 0)
            return rc;
    }
    const char *binds[] = { flag ? member : NULL };
    return nd_cli_list(cli, "activities",
        "SELECT a.\"id\", a.\"member\", m.\"name\", a.\"date\", a.\"kind\", a.\"month\","
        " CASE WHEN a.\"amount\" IS NULL THEN NULL"
        " ELSE printf('%d.%02d', a.\"amount\" / 100, a.\"amount\" % 100) END, a.\"note\""
        " FROM \"activities\" a LEFT JOIN \"members\" m ON m.\"id\" = a.\"member\""
        " WHERE coalesce(a.\"deleted\", 0) = 0 AND (?1 IS NULL OR a.\"member\" = ?1)"
        " ORDER BY a.\"date\", a.\"id\"", binds, 1, 8, keys, labels, err);
}

int nd_cmd_assess(nd_cli_t *cli, ld_error_t *err)
{
    static const flag_field_t flags[] = {
        { "year", "year" }, { "side", "side" }, { "grade", "grade" }, { "note", "note" },
        { NULL, NULL },
    };
    char member[LD_RECORD_ID_MAX + 1];
    char *existing = NULL;
    ld_change_t c;
    ld_change_init(&c);
    nd_store_t *store = nd_cli_store(cli, err);
    if (!store)
        return err->code;
    c.kind = LD_KIND_ASSESSMENT;
    int rc = resolve_arg(cli, store, LD_KIND_MEMBER, "MEMBER", member, err);
    if (rc == 0)
        rc = set_flags(cli, store, &c, flags, true, err);
    /* One assessment per member, year and side: assessing again replaces it, the note
     * with it (an assessment given without one has none). */
    if (rc == 0)
        rc = query_text(nd_store_db(store), "SELECT \"id\" || ' ' || coalesce(\"grade\", '')"
                        " FROM \"assessments\""
                        " WHERE \"member\" = ?1 AND \"year\" = CAST(?2 AS INTEGER) AND \"side\" = ?3"
                        " AND coalesce(\"deleted\", 0) = 0 ORDER BY \"id\" LIMIT 1",
                        member, ld_change_get(&c, "year"), ld_change_get(&c, "side"),
                        &existing, err);
    char *old_grade = existing ? strchr(existing, ' ') : NULL;
    if (rc == 0 && old_grade) {
        *old_grade++ = '\0';
        snprintf(c.record_id, sizeof c.record_id, "%s", existing);
        if (!nd_cli_flag(cli, "note"))
            rc = set_field(&c, "note", "", err);
    } else if (rc == 0) {
        rc = set_field(&c, "member", member, err);
    }
    if (rc == 0)
        rc = write_record(store, &c, false, err);
    if (rc == 0 && old_grade)
        fprintf(stderr, "liangdi: the %s %s assessment of %s was %s; it is now %s\n",
                ld_change_get(&c, "year"), ld_change_get(&c, "side"), nd_cli_arg(cli, 0),
                old_grade, ld_change_get(&c, "grade"));
    free(existing);
    ld_change_clear(&c);
    return rc;
}

/* Adds a record of `kind` about the member named by the first argument, from `flags`;
 * `word_field`, when the flags leave it unset, takes its enum's first word. */
static int add_member_record(nd_cli_t *cli, ld_kind_t kind, const flag_field_t *flags,
                             const char *word_field, ld_error_t *err)
{
    char member[LD_RECORD_ID_MAX + 1];
    ld_change_t c;
    ld_change_init(&c);
    nd_store_t *store = nd_cli_store(cli, err);
    if (!store)
        return err->code;
    c.kind = kind;
    int rc = resolve_arg(cli, store, LD_KIND_MEMBER, "MEMBER", member, err);
    if (rc == 0)
        rc = set_field(&c, "member", member, err);
    if (rc == 0)
        rc = set_flags(cli, store, &c, flags, true, err);
    if (rc == 0 && !ld_change_get(&c, word_field))
        rc = set_field(&c, word_field, schema_word(kind, word_field, 0), err);
    if (rc == 0)
        rc = write_record(store, &c, false, err);
    ld_change_clear(&c);
    return rc;
}

int nd_cmd_approval_add(nd_cli_t *cli, ld_error_t *err)
{
    static const flag_field_t flags[] = {
        { "date", "date" }, { "to", "to" }, { "decision", "decision" }, { "note", "note" },
        { NULL, NULL },
    };
    return add_member_record(cli, LD_KIND_APPROVAL, flags, "decision", err);
}

int nd_cmd_care_add(nd_cli_t *cli, ld_error_t *err)
{
    static const flag_field_t flags[] = {
        { "kind", "kind" }, { "date", "date" }, { "status", "status" }, { "note", "note" },
        { NULL, NULL },
    };
    return add_member_record(cli, LD_KIND_CARE, flags, "status", err);
}

/* The --member filter of a list: its id into member, or NULL when not given. */
static int member_filter(nd_cli_t *cli, nd_store_t *store, char member[LD_RECORD_ID_MAX + 1],
                         const char **bind, ld_error_t *err)
{
    const char *flag = nd_cli_flag(cli, "member");
    *bind = NULL;
    if (!flag)
        return 0;
    int rc = nd_resolve(store, LD_KIND_MEMBER, flag, "--member", member, err);
    if (rc == 0)
        *bind = member;
    return rc;
}

int nd_cmd_approval_list(nd_cli_t *cli, ld_error_t *err)
{
    static const char *const keys[] = { "id", "member", "name", "date", "to", "decision",
                                        "note" };
    static const char *const labels[] = { "id", "member", "姓名 name", "date", "流入地 to",
                                          "decision", "note" };
    char member[LD_RECORD_ID_MAX + 1];
    const char *binds[1];
    nd_store_t *store = nd_cli_store(cli, err);
    if (!store)
        return err->code;
    int rc = member_filter(cli, store, member, &binds[0], err);
    if (rc != 0)
        return rc;
    return nd_cli_list(cli, "approvals",
        "SELECT a.\"id\", a.\"member\", m.\"name\", a.\"date\", coalesce(o.\"name\", a.\"to\"),"
        " a.\"decision\", a.\"note\" FROM \"approvals\" a"
        " LEFT JOIN \"members\" m ON m.\"id\" = a.\"member\""
        " LEFT JOIN \"orgs\" o ON o.\"id\" = a.\"to\""
        " WHERE coalesce(a.\"deleted\", 0) = 0 AND (?1 IS NULL OR a.\"member\" = ?1)"
        " ORDER BY a.\"date\", a.\"id\"", binds, 1, 7, keys, labels, err);
}

int nd_cmd_care_list(nd_cli_t *cli, ld_error_t *err)
{
    static const char *const keys[] = { "id", "member", "name", "kind", "date", "status",
                                        "note" };
    static const char *const labels[] = { "id", "member", "姓名 name", "kind", "date",
                                          "status", "note" };
    char member[LD_RECORD_ID_MAX + 1];
    const char *binds[2] = { NULL, nd_cli_has(cli, "open") ? "open" : NULL };
    nd_store_t *store = nd_cli_store(cli, err);
    if (!store)
        return err->code;
    int rc = member_filter(cli, store, member, &binds[0], err);
    if (rc != 0)
        return rc;
    return nd_cli_list(cli, "cares",
        "SELECT c.\"id\", c.\"member\", m.\"name\", c.\"kind\", c.\"date\", c.\"status\","
        " c.\"note\" FROM \"cares\" c LEFT JOIN \"members\" m ON m.\"id\" = c.\"member\""
        " WHERE coalesce(c.\"deleted\", 0) = 0 AND (?1 IS NULL OR c.\"member\" = ?1)"
        " AND (?2 IS NULL OR c.\"status\" = ?2)"
        " ORDER BY c.\"date\", c.\"id\"", binds, 2, 7, keys, labels, err);
}

int nd_cmd_care_close(nd_cli_t *cli, ld_error_t *err)
{
    static const flag_field_t flags[] = { { "note", "note" }, { NULL, NULL } };
    const char *id = nd_cli_arg(cli, 0);
    char *status = NULL;
    ld_change_t c;
    ld_change_init(&c);
    nd_store_t *store = nd_cli_store(cli, err);
    if (!store)
        return err->code;
    int rc = query_text(nd_store_db(store), "SELECT coalesce(\"status\", '') FROM \"cares\""
                        " WHERE \"id\" = ?1 AND coalesce(\"deleted\", 0) = 0", id, NULL, NULL,
                        &status, err);
    if (rc == 0 && !status)
        rc = ld_error_set(err, LD_ENOTFOUND, "CASE: no care case '%s' (its id, as 'liangdi "
                          "care list' shows it)", id);
    else if (rc == 0 && strcmp(status, "closed") == 0)
        rc = ld_error_set(err, LD_EEXIST, "CASE: care case %s is already closed", id);
    if (rc == 0) {
        c.kind = LD_KIND_CARE;
        snprintf(c.record_id, sizeof c.record_id, "%s", id);
        rc = set_field(&c, "status", "closed", err);
    }
    if (rc == 0)
        rc = set_flags(cli, store, &c, flags, false, err);
    if (rc == 0)
        rc = write_record(store, &c, false, err);
    free(status);
    ld_change_clear(&c);
    return rc;
}
