/* cmd_support.c: the township's own work for its members, as its work report describes
 * it: the yearly selection of honoured members (评选: 勤劳致富能手, 遵纪守法党员) and the
 * help given to members in difficulty (帮扶: "1+1" pairing, the support fund, training,
 * help finding work). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "change.h"
#include "cli.h"
#include "cmd_common.h"

/* An honour is given in its year or after it, and to a member once a year for each
 * kind (among the honours this node holds). */
static int honour_check(nd_cli_t *cli, nd_store_t *store, const ld_change_t *c,
                        ld_error_t *err)
{
    const char *date = ld_change_get(c, "date"), *year = ld_change_get(c, "year");
    char *earlier = NULL;
    if (date && strncmp(date, year, 4) < 0)
        return nd_bad_value(err, "--date", nd_cli_flag(cli, "date"),
                            "a year's honours are given in that year or after it");
    int rc = nd_rec_query_text(nd_store_db(store), "SELECT \"id\" FROM \"honours\""
                               " WHERE \"member\" = ?1 AND \"year\" = CAST(?2 AS INTEGER)"
                               " AND \"kind\" = ?3 AND coalesce(\"deleted\", 0) = 0"
                               " ORDER BY \"id\" LIMIT 1", ld_change_get(c, "member"), year,
                               ld_change_get(c, "kind"), &earlier, err);
    if (rc == 0 && earlier)
        rc = ld_error_set(err, LD_EEXIST, "%s already holds the %s %s honour (%s); if that"
                          " entry is wrong, 'liangdi delete' it first", nd_cli_arg(cli, 0),
                          year, ld_change_get(c, "kind"), earlier);
    free(earlier);
    return rc;
}

int nd_cmd_honour_add(nd_cli_t *cli, ld_error_t *err)
{
    static const nd_flag_field_t flags[] = {
        { "year", "year" }, { "kind", "kind" }, { "date", "date" }, { "note", "note" },
        { NULL, NULL },
    };
    return nd_rec_add_about_member(cli, LD_KIND_HONOUR, flags, NULL, honour_check, err);
}

int nd_cmd_honour_list(nd_cli_t *cli, ld_error_t *err)
{
    static const char *const keys[] = { "id", "year", "kind", "member", "name", "org", "date",
                                        "note" };
    static const char *const labels[] = { "id", "year", "kind", "member", "姓名 name",
                                          "支部 branch", "date", "note" };
    char member[LD_RECORD_ID_MAX + 1];
    char *year = NULL;
    const char *binds[2] = { NULL, NULL };
    nd_store_t *store = nd_cli_store(cli, err);
    if (!store)
        return err->code;
    int rc = nd_rec_member_filter(cli, store, member, &binds[0], err);
    if (rc == 0 && nd_cli_flag(cli, "year"))
        rc = nd_field_from_text(store, LD_KIND_HONOUR, "year", "--year", nd_cli_flag(cli, "year"),
                                &year, err);
    binds[1] = year;
    /* by year, then 勤劳致富能手 before 遵纪守法党员 (as the seed names them), then the
     * members in the name order (pinyin, or strokes: collate.h) */
    if (rc == 0)
        rc = nd_cli_list(cli, "honours",
            "SELECT h.\"id\", h.\"year\", h.\"kind\", h.\"member\", m.\"name\","
            " coalesce(o.\"name\", m.\"org\"), h.\"date\", h.\"note\" FROM \"honours\" h"
            " LEFT JOIN \"members\" m ON m.\"id\" = h.\"member\""
            " LEFT JOIN \"orgs\" o ON o.\"id\" = m.\"org\""
            " WHERE coalesce(h.\"deleted\", 0) = 0 AND (?1 IS NULL OR h.\"member\" = ?1)"
            " AND (?2 IS NULL OR h.\"year\" = CAST(?2 AS INTEGER))"
            " ORDER BY h.\"year\", h.\"kind\" <> 'prosperous', m.\"name\" COLLATE \"zh\","
            " h.\"id\"",
            binds, 2, 8, keys, labels, err);
    free(year);
    return rc;
}

/* A pairing names its helper and a grant from the fund its sum; no other help has
 * either. */
static int support_check(nd_cli_t *cli, nd_store_t *store, const ld_change_t *c,
                         ld_error_t *err)
{
    const char *kind = ld_change_get(c, "kind"), *amount = ld_change_get(c, "amount");
    bool pairing = strcmp(kind, "pairing") == 0, fund = strcmp(kind, "fund") == 0;
    if (pairing && !ld_change_get(c, "helper"))
        return ld_error_set(err, LD_EINVAL, "missing --helper (a pairing names the office"
                            " member who helps)");
    if (!pairing && nd_cli_flag(cli, "helper"))
        return nd_bad_value(err, "--helper", nd_cli_flag(cli, "helper"),
                            "only a pairing has a helper");
    if (fund && !amount)
        return ld_error_set(err, LD_EINVAL, "missing --amount (a grant from the fund needs"
                            " the sum, in yuan)");
    if (!fund && nd_cli_flag(cli, "amount"))
        return nd_bad_value(err, "--amount", nd_cli_flag(cli, "amount"),
                            "only a grant from the fund has an amount");
    if (fund && strcmp(amount, "0") == 0)
        return nd_bad_value(err, "--amount", nd_cli_flag(cli, "amount"),
                            "a grant is more than 0");
    return 0;
}

int nd_cmd_support_add(nd_cli_t *cli, ld_error_t *err)
{
    static const nd_flag_field_t flags[] = {
        { "kind", "kind" }, { "date", "date" }, { "helper", "helper" }, { "amount", "amount" },
        { "note", "note" }, { NULL, NULL },
    };
    return nd_rec_add_about_member(cli, LD_KIND_SUPPORT, flags, NULL, support_check, err);
}

int nd_cmd_support_list(nd_cli_t *cli, ld_error_t *err)
{
    static const char *const keys[] = { "id", "member", "name", "kind", "date", "helper",
                                        "amount", "note" };
    static const char *const labels[] = { "id", "member", "姓名 name", "kind", "date",
                                          "帮扶人 helper", "amount (yuan)", "note" };
    char member[LD_RECORD_ID_MAX + 1];
    char *kind = NULL;
    const char *binds[2] = { NULL, NULL };
    nd_store_t *store = nd_cli_store(cli, err);
    if (!store)
        return err->code;
    int rc = nd_rec_member_filter(cli, store, member, &binds[0], err);
    if (rc == 0 && nd_cli_flag(cli, "kind"))
        rc = nd_field_from_text(store, LD_KIND_SUPPORT, "kind", "--kind", nd_cli_flag(cli, "kind"),
                                &kind, err);
    binds[1] = kind;
    if (rc == 0)
        rc = nd_cli_list(cli, "supports",
            "SELECT s.\"id\", s.\"member\", m.\"name\", s.\"kind\", s.\"date\", s.\"helper\","
            " " ND_SQL_YUAN("s.\"amount\"") ", s.\"note\""
            " FROM \"supports\" s LEFT JOIN \"members\" m ON m.\"id\" = s.\"member\""
            " WHERE coalesce(s.\"deleted\", 0) = 0 AND (?1 IS NULL OR s.\"member\" = ?1)"
            " AND (?2 IS NULL OR s.\"kind\" = ?2)"
            " ORDER BY s.\"date\", s.\"id\"", binds, 2, 8, keys, labels, err);
    free(kind);
    return rc;
}
