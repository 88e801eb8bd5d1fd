/* cmd_members.c: the commands about organisations and members: add, edit, list, show
 * and import (the roster a home branch keeps). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "change.h"
#include "cli.h"
#include "cmd_common.h"
#include "import.h"
#include "resolve.h"
#include "text.h"

static const nd_flag_field_t member_flags[] = {
    { "name", "name" }, { "org", "org" }, { "gender", "gender" }, { "born", "born" },
    { "joined", "joined" }, { "phone", "phone" }, { "id-number", "id_number" }, { NULL, NULL },
};

/* ------------------------------------------------------------------ orgs ---- */

int nd_cmd_org_add(nd_cli_t *cli, ld_error_t *err)
{
    static const nd_flag_field_t flags[] = {
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
    rc = nd_rec_query_text(nd_store_db(store), "SELECT \"id\" FROM \"orgs\" WHERE \"id\" = ?1",
                           id, NULL, NULL, &existing, err);
    if (rc != 0)
        goto out;
    if (existing) {
        rc = ld_error_set(err, LD_EEXIST, "ID: org '%s' already exists", id);
        goto out;
    }
    c.kind = LD_KIND_ORG;
    snprintf(c.record_id, sizeof c.record_id, "%s", id);
    rc = nd_rec_set_flags(cli, store, &c, flags, true, err);
    if (rc == 0 && !nd_cli_flag(cli, "node"))
        rc = nd_rec_set_field(&c, "node", nd_store_node_id(store), err);
    if (rc == 0)
        rc = nd_rec_write(store, &c, true, err);
out:
    free(existing);
    ld_change_clear(&c);
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
        rc = nd_rec_query_text(db, "SELECT coalesce(\"parent\", '') FROM \"orgs\""
                               " WHERE \"id\" = ?1", up, NULL, NULL, &next, err);
        free(up);
        up = next;
    }
    free(up);
    return rc;
}

int nd_cmd_org_edit(nd_cli_t *cli, ld_error_t *err)
{
    static const nd_flag_field_t flags[] = {
        { "name", "name" }, { "kind", "kind" }, { "parent", "parent" }, { NULL, NULL },
    };
    char id[LD_RECORD_ID_MAX + 1];
    ld_change_t c;
    ld_change_init(&c);
    nd_store_t *store = nd_cli_store(cli, err);
    if (!store)
        return err->code;
    char *maker = NULL;
    int rc = nd_rec_resolve_arg(cli, store, LD_KIND_ORG, "ORG", id, err);
    /* The node that made an org sent it to the nodes that needed it (the home township
     * made most orgs, and sends them with each member's history): an edit made there
     * reaches every node it was sent to. */
    if (rc == 0)
        rc = nd_rec_query_text(nd_store_db(store), "SELECT \"created_by\" FROM \"orgs\" WHERE "
                               "\"id\" = ?1", id, NULL, NULL, &maker, err);
    if (rc == 0 && maker != NULL && strcmp(maker, nd_store_node_id(store)) != 0)
        rc = ld_error_set(err, LD_EDENIED, "ORG: org %s was made by node %s: edit it there, "
                          "so that every node that holds it hears of it", id, maker);
    free(maker);
    if (rc == 0) {
        c.kind = LD_KIND_ORG;
        snprintf(c.record_id, sizeof c.record_id, "%s", id);
        rc = nd_rec_set_flags(cli, store, &c, flags, false, err);
    }
    if (rc == 0 && c.nfields == 0)
        rc = ld_error_set(err, LD_EINVAL, "nothing to change (give at least one of --name, "
                          "--kind, --parent)");
    const char *parent = rc == 0 ? ld_change_get(&c, "parent") : NULL;
    if (parent != NULL && *parent != '\0')
        rc = check_parent(nd_store_db(store), id, parent, err);
    if (rc == 0)
        rc = nd_rec_write(store, &c, false, err);
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
    char *node = NULL;
    int rc = org ? nd_rec_query_text(nd_store_db(store), "SELECT coalesce(\"node\", '')"
                                     " FROM \"orgs\" WHERE \"id\" = ?1", org, NULL, NULL,
                                     &node, err) : 0;
    if (rc == 0 && node && *node && strcmp(node, nd_store_node_id(store)) != 0)
        rc = nd_bad_org_elsewhere(err, "--org", value, node);
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
    int rc = nd_rec_set_flags(cli, store, &c, member_flags, true, err);
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
        rc = nd_rec_write(store, &c, false, err);
    ld_change_clear(&c);
    return rc;
}

int nd_cmd_member_edit(nd_cli_t *cli, ld_error_t *err)
{
    static const char *const cols[] = { "name", "org", "born", "id_number", "joined" };
    char id[LD_RECORD_ID_MAX + 1];
    char *current[5] = { NULL, NULL, NULL, NULL, NULL };
    const char *merged[5];
    ld_change_t c;
    int rc;
    ld_change_init(&c);
    nd_store_t *store = nd_cli_store(cli, err);
    if (!store)
        return err->code;
    rc = nd_rec_resolve_arg(cli, store, LD_KIND_MEMBER, "MEMBER", id, err);
    if (rc != 0)
        goto out;
    c.kind = LD_KIND_MEMBER;
    snprintf(c.record_id, sizeof c.record_id, "%s", id);
    rc = nd_rec_set_flags(cli, store, &c, member_flags, false, err);
    if (rc != 0)
        goto out;
    if (c.nfields == 0) {
        rc = ld_error_set(err, LD_EINVAL, "nothing to change (give at least one of --name,"
                          " --org, --gender, --born, --joined, --phone, --id-number)");
        goto out;
    }
    rc = check_org_here(store, ld_change_get(&c, "org"), nd_cli_flag(cli, "org"), err);
    for (int i = 0; i < 5 && rc == 0; i++) {
        char sql[128];
        snprintf(sql, sizeof sql, "SELECT coalesce(\"%s\", '') FROM \"members\" WHERE \"id\" = ?1",
                 cols[i]);
        rc = nd_rec_query_text(nd_store_db(store), sql, id, NULL, NULL, &current[i], err);
        const char *changed = ld_change_get(&c, cols[i]);
        merged[i] = changed ? changed : current[i] ? current[i] : "";
    }
    /* the dates as they will stand, the stored one where only the other is changed */
    if (rc == 0 && *merged[2] && *merged[4] && strcmp(merged[4], merged[2]) < 0)
        rc = ld_change_get(&c, "joined")
             ? nd_bad_value(err, "--joined", merged[4], "before the member was born")
             : nd_bad_value(err, "--born", merged[2], "after the member joined");
    if (rc == 0)
        rc = member_check_duplicate(store, id, merged[0], merged[1], merged[2], merged[3], err);
    if (rc == 0)
        rc = nd_rec_write(store, &c, false, err);
out:
    for (int i = 0; i < 5; i++)
        free(current[i]);
    ld_change_clear(&c);
    return rc;
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
    const char *binds[] = { org_flag ? org : NULL, nd_rec_trip_word(0), nd_rec_trip_word(1),
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
        " ORDER BY m.\"org\", m.\"name\" COLLATE \"zh\", m.\"id\"",
        binds, 4, 10, keys, labels, err);
}

/* What a person reads over a column of member show: the Chinese, then the key. */
static const char *show_label(const char *key)
{
    static const char *const labels[][2] = {
        { "name", "姓名 name" },         { "org", "党支部 org" },        { "gender", "性别 gender" },
        { "born", "出生 born" },         { "joined", "入党 joined" },    { "phone", "电话 phone" },
        { "id_number", "身份证号 id_number" }, { "origin", "录入节点 origin" },
        { "to", "流入地 to" },           { "started", "外出 started" },
        { "until", "预计外出至 until" },
        { "reported_in", "报到 reported_in" }, { "ended", "结束 ended" },
        { "status", "状态 status" },     { "employer", "工作单位 employer" },
        { "address", "地址 address" },   { "reason", "原因 reason" },    { "date", "日期 date" },
        { "kind", "类别 kind" },         { "month", "月份 month" },      { "amount", "金额 amount" },
        { "note", "备注 note" },         { "year", "年度 year" },        { "side", "考核方 side" },
        { "grade", "等次 grade" },       { "decision", "审批 decision" },
        { "helper", "帮扶人 helper" },
    };
    for (size_t i = 0; i < sizeof labels / sizeof labels[0]; i++)
        if (strcmp(labels[i][0], key) == 0)
            return labels[i][1];
    return key;
}

/* Renders one table of member show; in JSON the tables become members of one object. */
static int show_part(nd_cli_t *cli, sqlite3 *db, const char *title, const char *sql,
                     const char *id, size_t ncols, const char *const *keys, bool *first,
                     ld_error_t *err)
{
    nd_table_t *table = NULL;
    const char *binds[] = { id };
    const char *labels[16];
    nd_format_t fmt = nd_cli_format(cli);
    for (size_t i = 0; i < ncols && i < sizeof labels / sizeof labels[0]; i++)
        labels[i] = show_label(keys[i]);
    int rc = nd_cli_query(db, title, sql, binds, 1, ncols, keys, labels, fmt == ND_FMT_TABLE,
                          &table, err);
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
        "id", "to", "started", "until", "reported_in", "ended", "status", "employer", "address",
        "phone", "reason",
    };
    static const char *const activity_keys[] = { "id", "date", "kind", "month", "amount", "note" };
    static const char *const assessment_keys[] = { "id", "year", "side", "grade", "note" };
    static const char *const approval_keys[] = { "id", "date", "to", "decision", "note" };
    static const char *const care_keys[] = { "id", "kind", "date", "status", "note" };
    static const char *const honour_keys[] = { "id", "year", "kind", "date", "note" };
    static const char *const support_keys[] = { "id", "kind", "date", "helper", "amount", "note" };
    char id[LD_RECORD_ID_MAX + 1];
    bool first = true;
    nd_store_t *store = nd_cli_store(cli, err);
    if (!store)
        return err->code;
    int rc = nd_rec_resolve_arg(cli, store, LD_KIND_MEMBER, "MEMBER", id, err);
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
            "SELECT t.\"id\", coalesce(o.\"name\", t.\"to\"), t.\"started\", t.\"until\","
            " t.\"reported_in\", t.\"ended\", t.\"status\", t.\"employer\", t.\"address\","
            " t.\"phone\", t.\"reason\" FROM \"trips\" t"
            " LEFT JOIN \"orgs\" o ON o.\"id\" = t.\"to\""
            " WHERE t.\"member\" = ?1 AND coalesce(t.\"deleted\", 0) = 0"
            " ORDER BY t.\"started\", t.\"id\"", id, 11, trip_keys, &first, err);
    if (rc == 0)
        rc = show_part(cli, db, "activities",
            "SELECT \"id\", \"date\", \"kind\", \"month\", " ND_SQL_YUAN("\"amount\"") ", \"note\""
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
    if (rc == 0)
        rc = show_part(cli, db, "honours",
            "SELECT \"id\", \"year\", \"kind\", \"date\", \"note\" FROM \"honours\""
            " WHERE \"member\" = ?1 AND coalesce(\"deleted\", 0) = 0"
            " ORDER BY \"year\", \"kind\" <> 'prosperous', \"id\"", id, 5, honour_keys,
            &first, err);
    if (rc == 0)
        rc = show_part(cli, db, "supports",
            "SELECT \"id\", \"kind\", \"date\", \"helper\", " ND_SQL_YUAN("\"amount\"") ", \"note\""
            " FROM \"supports\" WHERE \"member\" = ?1 AND coalesce(\"deleted\", 0) = 0"
            " ORDER BY \"date\", \"id\"", id, 6, support_keys, &first, err);
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
    int rc = nd_import_members_in(store, nd_cli_arg(cli, 0), nd_cli_flag(cli, "encoding"),
                                  &count, err);
    if (rc == 0)
        fprintf(stderr, "imported %zu members\n", count);
    return rc;
}
