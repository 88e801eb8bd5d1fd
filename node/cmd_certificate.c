/* cmd_certificate.c: the commands about what a member did and what was done for him:
 * the activity certificate, assessments, outflow approvals and home-care cases. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "change.h"
#include "cli.h"
#include "cmd_common.h"
#include "resolve.h"
#include "text.h"

/* ------------------------------------------------- activities and the rest ---- */

/* Dues name a month and a sum above 0, nothing else does; a month is paid for once (a
 * second entry is a slip, or the first one was). */
static int check_activity(nd_cli_t *cli, nd_store_t *store, const ld_change_t *c,
                          ld_error_t *err)
{
    bool dues = strcmp(ld_change_get(c, "kind"), "dues") == 0;
    if (dues && !ld_change_get(c, "month"))
        return ld_error_set(err, LD_EINVAL, "missing --month (dues are paid for a month,"
                            " YYYY-MM)");
    if (dues && !ld_change_get(c, "amount"))
        return ld_error_set(err, LD_EINVAL, "missing --amount (dues need the sum paid, in yuan)");
    if (!dues && nd_cli_flag(cli, "amount"))
        return nd_bad_value(err, "--amount", nd_cli_flag(cli, "amount"),
                            "only dues have an amount");
    if (!dues && nd_cli_flag(cli, "month"))
        return nd_bad_value(err, "--month", nd_cli_flag(cli, "month"),
                            "only dues are paid for a month");
    if (!dues)
        return 0;
    if (strcmp(ld_change_get(c, "amount"), "0") == 0)
        return nd_bad_value(err, "--amount", nd_cli_flag(cli, "amount"),
                            "dues paid are more than 0");
    char *paid = NULL;
    int rc = nd_rec_query_text(nd_store_db(store), "SELECT \"id\" || ', paid ' || \"date\""
                               " FROM \"activities\" WHERE \"member\" = ?1 AND \"kind\" = 'dues'"
                               " AND \"month\" = ?2 AND coalesce(\"deleted\", 0) = 0"
                               " ORDER BY \"id\" LIMIT 1", ld_change_get(c, "member"),
                               ld_change_get(c, "month"), NULL, &paid, err);
    if (rc == 0 && paid)
        rc = ld_error_set(err, LD_EEXIST, "--month: the dues for %s are already recorded (%s);"
                          " if that entry is wrong, 'liangdi delete' it first",
                          ld_change_get(c, "month"), paid);
    free(paid);
    return rc;
}

int nd_cmd_activity_add(nd_cli_t *cli, ld_error_t *err)
{
    static const nd_flag_field_t flags[] = {
        { "date", "date" }, { "kind", "kind" }, { "month", "month" }, { "amount", "amount" },
        { "note", "note" }, { NULL, NULL },
    };
    return nd_rec_add_about_member(cli, LD_KIND_ACTIVITY, flags, NULL, check_activity, err);
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
    const char *binds[1];
    nd_store_t *store = nd_cli_store(cli, err);
    if (!store)
        return err->code;
    int rc = nd_rec_member_filter(cli, store, member, &binds[0], err);
    if (rc != 0)
        return rc;
    return nd_cli_list(cli, "activities",
        "SELECT a.\"id\", a.\"member\", m.\"name\", a.\"date\", a.\"kind\", a.\"month\","
        " " ND_SQL_YUAN("a.\"amount\"") ", a.\"note\""
        " FROM \"activities\" a LEFT JOIN \"members\" m ON m.\"id\" = a.\"member\""
        " WHERE coalesce(a.\"deleted\", 0) = 0 AND (?1 IS NULL OR a.\"member\" = ?1)"
        " ORDER BY a.\"date\", a.\"id\"", binds, 1, 8, keys, labels, err);
}

int nd_cmd_assess(nd_cli_t *cli, ld_error_t *err)
{
    static const nd_flag_field_t flags[] = {
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
    int rc = nd_rec_resolve_arg(cli, store, LD_KIND_MEMBER, "MEMBER", member, err);
    if (rc == 0)
        rc = nd_rec_set_flags(cli, store, &c, flags, true, err);
    /* One assessment per member, year and side: assessing again replaces it, the note
     * with it (an assessment given without one has none). */
    if (rc == 0)
        rc = nd_rec_query_text(nd_store_db(store), "SELECT \"id\" || ' ' || coalesce(\"grade\", '')"
                               " FROM \"assessments\""
                               " WHERE \"member\" = ?1 AND \"year\" = CAST(?2 AS INTEGER)"
                               " AND \"side\" = ?3"
                               " AND coalesce(\"deleted\", 0) = 0 ORDER BY \"id\" LIMIT 1",
                               member, ld_change_get(&c, "year"), ld_change_get(&c, "side"),
                               &existing, err);
    char *old_grade = existing ? strchr(existing, ' ') : NULL;
    if (rc == 0 && old_grade) {
        *old_grade++ = '\0';
        snprintf(c.record_id, sizeof c.record_id, "%s", existing);
        if (!nd_cli_flag(cli, "note"))
            rc = nd_rec_set_field(&c, "note", "", err);
    } else if (rc == 0) {
        rc = nd_rec_set_field(&c, "member", member, err);
    }
    if (rc == 0)
        rc = nd_rec_write(store, &c, false, err);
    if (rc == 0 && old_grade)
        fprintf(stderr, "liangdi: the %s %s assessment of %s was %s; it is now %s\n",
                ld_change_get(&c, "year"), ld_change_get(&c, "side"), nd_cli_arg(cli, 0),
                old_grade, ld_change_get(&c, "grade"));
    free(existing);
    ld_change_clear(&c);
    return rc;
}

int nd_cmd_approval_add(nd_cli_t *cli, ld_error_t *err)
{
    static const nd_flag_field_t flags[] = {
        { "date", "date" }, { "to", "to" }, { "decision", "decision" }, { "note", "note" },
        { NULL, NULL },
    };
    return nd_rec_add_about_member(cli, LD_KIND_APPROVAL, flags, "decision", NULL, err);
}

int nd_cmd_care_add(nd_cli_t *cli, ld_error_t *err)
{
    static const nd_flag_field_t flags[] = {
        { "kind", "kind" }, { "date", "date" }, { "status", "status" }, { "note", "note" },
        { NULL, NULL },
    };
    return nd_rec_add_about_member(cli, LD_KIND_CARE, flags, "status", NULL, err);
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
    int rc = nd_rec_member_filter(cli, store, member, &binds[0], err);
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
    int rc = nd_rec_member_filter(cli, store, member, &binds[0], err);
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
    const char *id = nd_cli_arg(cli, 0);
    const char *closing = nd_cli_flag(cli, "note");
    char *status = NULL, *note = NULL, *both = NULL;
    ld_change_t c;
    ld_change_init(&c);
    nd_store_t *store = nd_cli_store(cli, err);
    if (!store)
        return err->code;
    int rc = nd_rec_query_pair(nd_store_db(store), "SELECT coalesce(\"status\", ''),"
                               " coalesce(\"note\", '') FROM \"cares\" WHERE \"id\" = ?1"
                               " AND coalesce(\"deleted\", 0) = 0", id, &status, &note, err);
    if (rc == 0 && !status)
        rc = ld_error_set(err, LD_ENOTFOUND, "CASE: no care case '%s' (its id, as 'liangdi "
                          "care list' shows it)", id);
    else if (rc == 0 && strcmp(status, "closed") == 0)
        rc = ld_error_set(err, LD_EEXIST, "CASE: care case %s is already closed", id);
    if (rc == 0) {
        c.kind = LD_KIND_CARE;
        snprintf(c.record_id, sizeof c.record_id, "%s", id);
        rc = nd_rec_set_field(&c, "status", "closed", err);
    }
    /* the closing note follows the case's own, which stays */
    if (rc == 0 && closing && *closing &&
        asprintf(&both, "%s%s结案：%s", note, *note ? "；" : "", closing) < 0) {
        both = NULL;
        rc = ld_error_set(err, LD_ENOMEM, "out of memory");
    }
    if (rc == 0 && both) {
        char *stored = NULL;
        rc = nd_field_from_text(store, LD_KIND_CARE, "note", "--note", both, &stored, err);
        if (rc == 0)
            rc = nd_rec_set_field(&c, "note", stored, err);
        free(stored);
    }
    if (rc == 0)
        rc = nd_rec_write(store, &c, false, err);
    free(status);
    free(note);
    free(both);
    ld_change_clear(&c);
    return rc;
}
