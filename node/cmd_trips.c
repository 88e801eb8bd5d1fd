/* cmd_trips.c: the commands about trips (outflow registrations) and the agreements
 * between branches, with their contacts and visits. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "change.h"
#include "cli.h"
#include "cmd_common.h"
#include "resolve.h"
#include "text.h"

/* Refuses `org`, given as `flag` (`value`), unless it is an inflow branch (kind mobile,
 * the branch away from home that mobile members go to) when `inflow`, or a home branch
 * (any other kind) when not. */
static int check_org_side(sqlite3 *db, const char *org, bool inflow, const char *flag,
                          const char *value, ld_error_t *err)
{
    char *kind = NULL, *name = NULL, why[256];
    int rc = nd_rec_query_pair(db, "SELECT coalesce(\"kind\", ''), coalesce(\"name\", \"id\")"
                               " FROM \"orgs\" WHERE \"id\" = ?1", org, &kind, &name, err);
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
        rc = sqlite3_bind_text(st, 2, nd_rec_trip_word(0), -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(st, 3, nd_rec_trip_word(1), -1, SQLITE_STATIC);
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

/* The store into *store, and the trip under way of the member the MEMBER argument names
 * into trip, started and status: 0, or an error saying there is no store, or that the
 * member is unknown or not away (LD_EINVAL). */
static int trip_under_way(nd_cli_t *cli, nd_store_t **store, char trip[LD_RECORD_ID_MAX + 1],
                          char started[16], char status[32], ld_error_t *err)
{
    char member[LD_RECORD_ID_MAX + 1];
    bool found = false;
    trip[0] = started[0] = status[0] = '\0';
    if (!(*store = nd_cli_store(cli, err)))
        return err->code;
    int rc = nd_rec_resolve_arg(cli, *store, LD_KIND_MEMBER, "MEMBER", member, err);
    if (rc == 0)
        rc = open_trip(nd_store_db(*store), member, trip, started, status, &found, err);
    if (rc == 0 && !found)
        rc = ld_error_set(err, LD_EINVAL, "MEMBER: '%s' is not away on a trip"
                          " (start one with 'liangdi trip start')", nd_cli_arg(cli, 0));
    return rc;
}

/* Checks `date`, given as `flag` for the trip field `field`, as any date of a record is
 * checked (a real day; not after today, except the start and the expected end), and that
 * it is not before `since`. */
static int check_date_after(nd_store_t *store, const char *field, const char *flag,
                            const char *date, const char *since, const char *since_what,
                            ld_error_t *err)
{
    char *stored = NULL, why[128];
    int rc = nd_field_from_text(store, LD_KIND_TRIP, field, flag, date, &stored, err);
    free(stored);
    if (rc == 0 && since && *since && strcmp(date, since) < 0) {
        snprintf(why, sizeof why, "before %s %s", since_what, since);
        rc = nd_bad_value(err, flag, date, why);
    }
    return rc;
}

int nd_cmd_trip_start(nd_cli_t *cli, ld_error_t *err)
{
    static const nd_flag_field_t flags[] = {
        { "to", "to" }, { "date", "started" }, { "until", "until" },
        { "employer", "employer" }, { "address", "address" }, { "phone", "phone" },
        { "reason", "reason" }, { NULL, NULL },
    };
    char member[LD_RECORD_ID_MAX + 1], trip[LD_RECORD_ID_MAX + 1], started[16], status[32];
    bool found;
    ld_change_t c;
    ld_change_init(&c);
    nd_store_t *store = nd_cli_store(cli, err);
    if (!store)
        return err->code;
    int rc = nd_rec_resolve_arg(cli, store, LD_KIND_MEMBER, "MEMBER", member, err);
    if (rc == 0)
        rc = open_trip(nd_store_db(store), member, trip, started, status, &found, err);
    if (rc == 0 && found)
        rc = ld_error_set(err, LD_EEXIST, "MEMBER: '%s' is already away on trip %s since %s"
                          " (end it with 'liangdi trip end' first)", nd_cli_arg(cli, 0), trip,
                          started);
    c.kind = LD_KIND_TRIP;
    if (rc == 0)
        rc = nd_rec_set_field(&c, "member", member, err);
    if (rc == 0)
        rc = nd_rec_set_flags(cli, store, &c, flags, true, err);
    /* a trip leaves the member's home branch for an inflow branch */
    if (rc == 0)
        rc = check_org_side(nd_store_db(store), ld_change_get(&c, "to"), true, "--to",
                            nd_cli_flag(cli, "to"), err);
    /* and is expected to end no earlier than it starts */
    const char *until = nd_cli_flag(cli, "until");
    if (rc == 0 && until != NULL && *until != '\0')
        rc = check_date_after(store, "until", "--until", until, ld_change_get(&c, "started"),
                              "the trip's start", err);
    if (rc == 0)
        rc = nd_rec_set_field(&c, "status", nd_rec_trip_word(0), err);
    if (rc == 0)
        rc = nd_rec_write(store, &c, false, err);
    ld_change_clear(&c);
    return rc;
}

int nd_cmd_trip_report_in(nd_cli_t *cli, ld_error_t *err)
{
    char trip[LD_RECORD_ID_MAX + 1], started[16], status[32];
    const char *date = nd_cli_flag(cli, "date");
    nd_store_t *store = NULL;
    ld_change_t c;
    ld_change_init(&c);
    int rc = trip_under_way(cli, &store, trip, started, status, err);
    if (rc == 0 && strcmp(status, nd_rec_trip_word(0)) != 0)
        rc = ld_error_set(err, LD_EINVAL, "MEMBER: '%s' has already reported in on trip %s",
                          nd_cli_arg(cli, 0), trip);
    if (rc == 0)
        rc = check_date_after(store, "reported_in", "--date", date, started, "the trip's start",
                              err);
    c.kind = LD_KIND_TRIP;
    snprintf(c.record_id, sizeof c.record_id, "%s", trip);
    if (rc == 0)
        rc = nd_rec_set_field(&c, "reported_in", date, err);
    if (rc == 0)
        rc = nd_rec_set_field(&c, "status", nd_rec_trip_word(1), err);
    if (rc == 0)
        rc = nd_rec_write(store, &c, false, err);
    ld_change_clear(&c);
    return rc;
}

/* The word of an ending of a trip that `why` names (a word or its Chinese), into *word
 * (malloc'd, caller frees); the stages under way are not endings. */
static int trip_ending(nd_store_t *store, const char *why, char **word, ld_error_t *err)
{
    const ld_kind_def_t *def = ld_schema_kind(LD_KIND_TRIP);
    const ld_field_def_t *status = &def->fields[ld_schema_field_index(def, "status")];
    ld_error_t ignored;
    ld_error_clear(&ignored);
    if (nd_field_from_text(store, LD_KIND_TRIP, "status", "--why", why, word, &ignored) == 0 &&
        ld_schema_word_index(status, *word) >= (int) status->steps)
        return 0;
    free(*word);
    *word = NULL;
    char words[128] = "", reason[160];
    for (size_t i = status->steps; status->words[i]; i++)
        snprintf(words + strlen(words), sizeof words - strlen(words), "%s%s",
                 i > status->steps ? "|" : "", status->words[i]);
    snprintf(reason, sizeof reason, "expected %s", words);
    return nd_bad_value(err, "--why", why, reason);
}

int nd_cmd_trip_end(nd_cli_t *cli, ld_error_t *err)
{
    char trip[LD_RECORD_ID_MAX + 1], started[16], status[32];
    char *why = NULL;
    const char *date = nd_cli_flag(cli, "date");
    ld_change_t c;
    ld_change_init(&c);
    nd_store_t *store = nd_cli_store(cli, err);
    if (!store)
        return err->code;
    int rc = trip_ending(store, nd_cli_flag(cli, "why"), &why, err);
    if (rc == 0)
        rc = trip_under_way(cli, &store, trip, started, status, err);
    if (rc == 0)
        rc = check_date_after(store, "ended", "--date", date, started, "the trip's start", err);
    c.kind = LD_KIND_TRIP;
    snprintf(c.record_id, sizeof c.record_id, "%s", trip);
    if (rc == 0)
        rc = nd_rec_set_field(&c, "ended", date, err);
    if (rc == 0)
        rc = nd_rec_set_field(&c, "status", why, err);
    if (rc == 0)
        rc = nd_rec_write(store, &c, false, err);
    free(why);
    ld_change_clear(&c);
    return rc;
}

int nd_cmd_trip_edit(nd_cli_t *cli, ld_error_t *err)
{
    static const nd_flag_field_t flags[] = {
        { "until", "until" }, { "employer", "employer" }, { "address", "address" },
        { "phone", "phone" }, { "reason", "reason" }, { NULL, NULL },
    };
    char trip[LD_RECORD_ID_MAX + 1], started[16], status[32];
    nd_store_t *store = NULL;
    ld_change_t c;
    ld_change_init(&c);
    int rc = trip_under_way(cli, &store, trip, started, status, err);
    c.kind = LD_KIND_TRIP;
    snprintf(c.record_id, sizeof c.record_id, "%s", trip);
    if (rc == 0)
        rc = nd_rec_set_flags(cli, store, &c, flags, false, err);
    if (rc == 0 && c.nfields == 0)
        rc = ld_error_set(err, LD_EINVAL, "nothing to change (give at least one of --until,"
                          " --employer, --address, --phone, --reason)");
    const char *until = ld_change_get(&c, "until");
    if (rc == 0 && until != NULL && *until != '\0')
        rc = check_date_after(store, "until", "--until", until, started, "the trip's start",
                              err);
    if (rc == 0)
        rc = nd_rec_write(store, &c, false, err);
    ld_change_clear(&c);
    return rc;
}

int nd_cmd_trip_list(nd_cli_t *cli, ld_error_t *err)
{
    static const char *const keys[] = {
        "id", "member", "name", "to", "started", "until", "reported_in", "ended", "status",
        "employer", "address", "phone", "reason",
    };
    static const char *const labels[] = {
        "id", "member", "姓名 name", "流入地 to", "started", "预计外出至 until", "reported in",
        "ended", "status", "employer", "address", "phone", "reason",
    };
    char member[LD_RECORD_ID_MAX + 1];
    const char *binds[1];
    nd_store_t *store = nd_cli_store(cli, err);
    if (!store)
        return err->code;
    int rc = nd_rec_member_filter(cli, store, member, &binds[0], err);
    if (rc != 0)
        return rc;
    return nd_cli_list(cli, "trips",
        "SELECT t.\"id\", t.\"member\", m.\"name\", coalesce(o.\"name\", t.\"to\"), t.\"started\","
        " t.\"until\", t.\"reported_in\", t.\"ended\", t.\"status\", t.\"employer\","
        " t.\"address\", t.\"phone\", t.\"reason\" FROM \"trips\" t"
        " LEFT JOIN \"members\" m ON m.\"id\" = t.\"member\""
        " LEFT JOIN \"orgs\" o ON o.\"id\" = t.\"to\""
        " WHERE coalesce(t.\"deleted\", 0) = 0 AND (?1 IS NULL OR t.\"member\" = ?1)"
        " ORDER BY t.\"started\", t.\"id\"", binds, 1, 13, keys, labels, err);
}

/* ------------------------------------------------------------ agreements ---- */

int nd_cmd_agreement_add(nd_cli_t *cli, ld_error_t *err)
{
    static const nd_flag_field_t flags[] = {
        { "outflow", "outflow" }, { "inflow", "inflow" }, { "signed", "signed" },
        { "until", "until" }, { "terms", "terms" }, { NULL, NULL },
    };
    ld_change_t c;
    ld_change_init(&c);
    nd_store_t *store = nd_cli_store(cli, err);
    if (!store)
        return err->code;
    c.kind = LD_KIND_AGREEMENT;
    int rc = nd_rec_set_flags(cli, store, &c, flags, true, err);
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
    /* one agreement in force per pair of branches at a time: the report owes its contacts
     * and visits once; one that ended before this is signed may be followed by it */
    char *existing = NULL;
    if (rc == 0)
        rc = nd_rec_query_text(db, "SELECT \"id\" || ' (signed ' || coalesce(\"signed\", '?')"
                               " || coalesce(', until ' || \"until\", '') || ')'"
                               " FROM \"agreements\" WHERE \"outflow\" = ?1 AND \"inflow\" = ?2"
                               " AND coalesce(\"deleted\", 0) = 0"
                               " AND (coalesce(\"until\", '') = '' OR \"until\" >= ?3)"
                               " ORDER BY \"id\" LIMIT 1",
                               ld_change_get(&c, "outflow"), ld_change_get(&c, "inflow"),
                               ld_change_get(&c, "signed"), &existing, err);
    if (rc == 0 && existing)
        rc = ld_error_set(err, LD_EEXIST, "--inflow: %s and %s already have agreement %s, in "
                          "force on %s", nd_cli_flag(cli, "outflow"), nd_cli_flag(cli, "inflow"),
                          existing, ld_change_get(&c, "signed"));
    free(existing);
    const char *until = rc == 0 ? ld_change_get(&c, "until") : NULL;
    if (until && strcmp(until, ld_change_get(&c, "signed")) < 0)
        rc = nd_bad_value(err, "--until", until, "before --signed");
    if (rc == 0)
        rc = nd_rec_write(store, &c, false, err);
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
    static const nd_flag_field_t flags[] = {
        { "date", "date" }, { "channel", "channel" }, { "note", "note" }, { NULL, NULL },
    };
    char agreement[LD_RECORD_ID_MAX + 1];
    ld_change_t c;
    ld_change_init(&c);
    nd_store_t *store = nd_cli_store(cli, err);
    if (!store)
        return err->code;
    c.kind = LD_KIND_CONTACT;
    int rc = nd_rec_resolve_arg(cli, store, LD_KIND_AGREEMENT, "AGREEMENT", agreement, err);
    if (rc == 0)
        rc = nd_rec_set_field(&c, "agreement", agreement, err);
    if (rc == 0)
        rc = nd_rec_set_flags(cli, store, &c, flags, true, err);
    if (rc == 0 && !ld_change_get(&c, "channel"))
        rc = nd_rec_set_field(&c, "channel", nd_rec_schema_word(LD_KIND_CONTACT, "channel", 0),
                              err);
    if (rc == 0)
        rc = nd_rec_write(store, &c, false, err);
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
    static const nd_flag_field_t flags[] = {
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
    int rc = nd_rec_resolve_arg(cli, store, LD_KIND_AGREEMENT, "AGREEMENT", agreement, err);
    if (rc == 0)
        rc = nd_rec_set_field(&c, "agreement", agreement, err);
    if (rc == 0)
        rc = nd_rec_set_flags(cli, store, &c, flags, true, err);
    if (rc == 0)
        rc = nd_rec_query_text(nd_store_db(store), "SELECT \"id\" FROM \"agreements\""
                               " WHERE \"id\" = ?1 AND (\"outflow\" = ?2 OR \"inflow\" = ?2)",
                               agreement, ld_change_get(&c, "host"), NULL, &party, err);
    if (rc == 0 && !party)
        rc = nd_bad_value(err, "--host", nd_cli_flag(cli, "host"),
                          "not one of the agreement's two orgs");
    if (rc == 0)
        rc = nd_rec_write(store, &c, false, err);
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
