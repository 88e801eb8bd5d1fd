/* report.c: the compliance report: what is overdue as of a date, by DOMAIN.md's rules,
 * as tables a branch secretary can act on (names, branches, dates).
 *
 * How it is computed.  A handful of set-based queries, none of them run per member:
 *
 *   mobile      members with a current trip (registered or reported in, started by the
 *               date; or any trip that ended after the date), each with the latest date
 *               of organisational life, the latest dues month paid by the date and the
 *               latest activity of any kind: correlated MAX() subqueries that SQLite
 *               answers from the index activities(member, kind, date) and
 *               activities(member, month), one index search per member;
 *   agreements  each agreement signed by the date, and all contacts and visits up to the
 *               date (few rows), matched per half-year and per year in C;
 *   backpay     dues paid in the twelve months up to the date more than
 *               report.backpay_max_months after the month they cover;
 *   assessments members mobile during the last full year, with EXISTS per side;
 *   trips       registered but not reported in after report.report_in_days, and members
 *               whose latest trip is marked lost-contact.
 *
 * The rules (thresholds from settings "report.*", defaults in rules.c):
 *   - an agreement owes one contact per half-year and one visit per calendar year, for
 *     every period that begins on or after the day it was signed (and not after `until`);
 *     a period that ended without one is a breach, a current period within the last
 *     contact_warn_days / visit_warn_days days without one is a warning;
 *   - a mobile member's organisational life (meeting, committee, group, theme-day,
 *     lecture, life-meeting, appraisal): whole months since the latest one (or since the
 *     trip started, when there is none) >= life_warn_months warns, >= life_breach_months
 *     is a breach;
 *   - dues: the member is covered through the latest month paid for by the date; months
 *     uncovered = this month - that month (or - the month the trip started) against the
 *     same two thresholds;
 *   - out of contact: the latest trip marked lost-contact, or a mobile member with no
 *     activity of any kind for contact_lost_months whole months.
 * Every finding row holds a level ("超期" breach, "预警" warning); rows are sorted
 * breaches first, then by branch id and name. */
#include "report.h"

#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include "rules.h"
#include "text.h"

#define NO_DAY INT32_MIN

/* ------------------------------------------------------------ findings ---- */

typedef enum duty {
    DUTY_CONTACT = 0, DUTY_VISIT, DUTY_LIFE, DUTY_DUES, DUTY_BACKPAY, DUTY_ASSESS,
    DUTY_REPORT_IN, DUTY_LOST, DUTY_COUNT
} duty_t;

static const char *const duty_names[DUTY_COUNT] = {
    "半年电联", "年度互访", "组织生活", "党费", "补缴党费", "双边考核", "外出报到", "失联",
};

#define CELLS_MAX 8

typedef struct finding {
    nd_level_t level;
    duty_t     duty;
    char      *key;                 /* sort key after the level: org ids, names, ids */
    char      *cells[CELLS_MAX];
} finding_t;

typedef struct findings {
    finding_t *v;
    size_t     n, cap;
} findings_t;

static void findings_free(findings_t *f)
{
    for (size_t i = 0; i < f->n; i++) {
        free(f->v[i].key);
        for (size_t c = 0; c < CELLS_MAX; c++)
            free(f->v[i].cells[c]);
    }
    free(f->v);
    memset(f, 0, sizeof *f);
}

/* ------------------------------------------------------------- the data ---- */

/* A member with a current trip, and what the activity certificate says of them. */
typedef struct mobile {
    char   *id, *name, *org, *org_name, *inflow, *inflow_name;
    bool    female;
    int32_t started;       /* the current trip's start */
    int32_t last_life;     /* NO_DAY: none */
    int32_t covered;       /* dues month index paid through; INT32_MIN: none */
    int32_t last_any;      /* NO_DAY: none */
} mobile_t;

/* A dated reference (a contact or a visit of an agreement). */
typedef struct dated {
    char   *ref;
    int32_t day;
} dated_t;

typedef struct group_row {
    int   group;            /* 0 township, 1 inflow, 2 outflow */
    char *id, *name;
    long  mobile, women;
} group_row_t;

typedef struct report {
    nd_store_t  *store;
    sqlite3     *db;
    ld_error_t  *err;
    int32_t      as_of;
    char         as_of_text[11];
    nd_rules_t   rules;
    mobile_t    *mobile;
    size_t       nmobile, mobile_cap;
    mobile_t   **by_id;          /* mobile sorted by member id */
    findings_t   sect[3];        /* agreements; members' life and dues; the rest */
    long         counts[DUTY_COUNT][3];
} report_t;

/* ------------------------------------------------------------- helpers ---- */

static int fail_sql(report_t *r, const char *what)
{
    return ld_error_set(r->err, LD_EIO, "report: %s: %s", what, sqlite3_errmsg(r->db));
}

static int fail_nomem(report_t *r)
{
    return ld_error_set(r->err, LD_ENOMEM, "report: out of memory");
}

static int prepare(report_t *r, const char *what, const char *sql, sqlite3_stmt **st)
{
    if (sqlite3_prepare_v2(r->db, sql, -1, st, NULL) != SQLITE_OK)
        return fail_sql(r, what);
    return 0;
}

static int bind_text(report_t *r, sqlite3_stmt *st, int idx, const char *text)
{
    if (sqlite3_bind_text(st, idx, text, -1, SQLITE_TRANSIENT) != SQLITE_OK)
        return fail_sql(r, "binding a value");
    return 0;
}

static int bind_day(report_t *r, sqlite3_stmt *st, int idx, int32_t day)
{
    char text[11];
    ld_date_format(day, text);
    return bind_text(r, st, idx, text);
}

/* A copy of a text column, "" for NULL; NULL only when memory runs out. */
static char *col_dup(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return strdup(t ? (const char *) t : "");
}

static const char *col_text(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? (const char *) t : "";
}

static int32_t col_day(sqlite3_stmt *st, int i)
{
    int32_t day;
    return ld_date_parse(col_text(st, i), &day) ? day : NO_DAY;
}

static int32_t col_month(sqlite3_stmt *st, int i)
{
    int32_t m;
    return ld_month_parse(col_text(st, i), &m) ? m : INT32_MIN;
}

static void fmt_day(int32_t day, char out[11])
{
    if (day == NO_DAY)
        out[0] = '\0';
    else
        ld_date_format(day, out);
}

/* Appends a finding; cells are copied (NULL = empty); the key is printf-formatted. */
static int add_finding(report_t *r, int sect, nd_level_t level, duty_t duty,
                       const char *const cells[CELLS_MAX], const char *key)
{
    findings_t *f = &r->sect[sect];
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 64;
        finding_t *grown = realloc(f->v, cap * sizeof *grown);
        if (!grown)
            return fail_nomem(r);
        f->v = grown;
        f->cap = cap;
    }
    finding_t *x = &f->v[f->n];
    memset(x, 0, sizeof *x);
    x->level = level;
    x->duty = duty;
    bool ok = (x->key = strdup(key)) != NULL;
    for (size_t c = 0; c < CELLS_MAX && ok; c++)
        ok = (x->cells[c] = strdup(cells[c] ? cells[c] : "")) != NULL;
    f->n++;          /* counted even when short of memory, so that it is freed */
    if (!ok)
        return fail_nomem(r);
    r->counts[duty][level]++;
    return 0;
}

static int finding_cmp(const void *a, const void *b)
{
    const finding_t *x = a, *y = b;
    if (x->level != y->level)
        return x->level == ND_LEVEL_BREACH ? -1 : 1;
    int c = strcmp(x->key, y->key);
    if (c)
        return c;
    return (int) x->duty - (int) y->duty;
}

/* The sort key of a member's finding: branch id, name, id, separated by \x1f. */
static int member_key(char *out, size_t size, const char *org, const char *name, const char *id)
{
    return snprintf(out, size, "%s\x1f%s\x1f%s", org, name, id);
}

/* --------------------------------------------------------------- settings ---- */

static const struct {
    const char *key;
    const char *label;
    size_t      offset;
} settings[] = {
    { "report.contact_warn_days",   "半年电联：期末预警天数",   offsetof(nd_rules_t, contact_warn_days) },
    { "report.visit_warn_days",     "年度互访：年末预警天数",   offsetof(nd_rules_t, visit_warn_days) },
    { "report.life_warn_months",    "组织生活、党费：预警月数", offsetof(nd_rules_t, life_warn_months) },
    { "report.life_breach_months",  "组织生活、党费：超期月数", offsetof(nd_rules_t, life_breach_months) },
    { "report.backpay_max_months",  "党费补缴：最长月数",       offsetof(nd_rules_t, backpay_max_months) },
    { "report.report_in_days",      "外出报到：限期天数",       offsetof(nd_rules_t, report_in_days) },
    { "report.contact_lost_months", "失联：无任何活动月数",     offsetof(nd_rules_t, contact_lost_months) },
};
#define NSETTINGS (sizeof settings / sizeof settings[0])

static int *rule_field(nd_rules_t *rules, size_t i)
{
    return (int *) ((char *) rules + settings[i].offset);
}

static int load_rules(report_t *r)
{
    nd_rules_defaults(&r->rules);
    for (size_t i = 0; i < NSETTINGS; i++) {
        char *value = nd_store_setting(r->store, settings[i].key);
        if (!value)
            continue;
        char *end = NULL;
        long v = strtol(value, &end, 10);
        bool ok = value[0] >= '0' && value[0] <= '9' && end && *end == '\0' && v <= 36500;
        if (ok)
            *rule_field(&r->rules, i) = (int) v;
        int rc = ok ? 0 : ld_error_set(r->err, LD_EINVAL,
                                       "setting %s = '%.64s' is not a whole number from 0 "
                                       "to 36500", settings[i].key, value);
        free(value);
        if (rc)
            return rc;
    }
    return 0;
}

/* ---------------------------------------------------------- the queries ---- */

/* Life kinds: organisational life in DOMAIN.md's sense. */
#define LIFE_KINDS "'meeting', 'committee', 'group', 'theme-day', 'lecture', " \
                   "'life-meeting', 'appraisal'"

static const char sql_mobile[] =
    "WITH \"cur\" AS ("
    " SELECT \"member\", \"to\", \"started\", ROW_NUMBER() OVER ("
    "  PARTITION BY \"member\" ORDER BY \"started\" DESC, \"id\" DESC) AS \"rn\""
    " FROM \"trips\""
    " WHERE \"deleted\" = 0 AND \"started\" <= ?1"
    "  AND (\"status\" IN ('registered', 'reported-in') OR COALESCE(\"ended\", '') > ?1))"
    " SELECT m.\"id\", m.\"name\", m.\"org\", COALESCE(o.\"name\", m.\"org\"),"
    "  c.\"to\", COALESCE(i.\"name\", c.\"to\"), m.\"gender\" = 'female', c.\"started\","
    "  (SELECT MAX(\"date\") FROM \"activities\" WHERE \"member\" = m.\"id\""
    "    AND \"kind\" IN (" LIFE_KINDS ") AND \"date\" <= ?1 AND \"deleted\" = 0),"
    "  (SELECT MAX(\"month\") FROM \"activities\" WHERE \"member\" = m.\"id\""
    "    AND \"kind\" = 'dues' AND \"date\" <= ?1 AND \"deleted\" = 0),"
    "  (SELECT MAX(\"date\") FROM \"activities\" WHERE \"member\" = m.\"id\""
    "    AND \"date\" <= ?1 AND \"deleted\" = 0)"
    " FROM \"cur\" AS c"
    " JOIN \"members\" AS m ON m.\"id\" = c.\"member\" AND m.\"deleted\" = 0"
    " LEFT JOIN \"orgs\" AS o ON o.\"id\" = m.\"org\""
    " LEFT JOIN \"orgs\" AS i ON i.\"id\" = c.\"to\""
    " WHERE c.\"rn\" = 1"
    " ORDER BY m.\"org\", m.\"name\", m.\"id\"";

static const char sql_agreements[] =
    "SELECT a.\"id\", a.\"outflow\", COALESCE(o.\"name\", a.\"outflow\"),"
    " a.\"inflow\", COALESCE(i.\"name\", a.\"inflow\"), a.\"signed\", COALESCE(a.\"until\", '')"
    " FROM \"agreements\" AS a"
    " LEFT JOIN \"orgs\" AS o ON o.\"id\" = a.\"outflow\""
    " LEFT JOIN \"orgs\" AS i ON i.\"id\" = a.\"inflow\""
    " WHERE a.\"deleted\" = 0 AND a.\"signed\" <= ?1"
    " ORDER BY a.\"outflow\", a.\"inflow\", a.\"id\"";

static const char sql_contacts[] =
    "SELECT \"agreement\", \"date\" FROM \"contacts\""
    " WHERE \"deleted\" = 0 AND \"date\" <= ?1 ORDER BY \"agreement\", \"date\"";

static const char sql_visits[] =
    "SELECT \"agreement\", \"date\" FROM \"visits\""
    " WHERE \"deleted\" = 0 AND \"date\" <= ?1 ORDER BY \"agreement\", \"date\"";

/* ?1 as of, ?2 paid after this day (twelve months back), ?3 months allowed. */
static const char sql_backpay[] =
    "SELECT a.\"member\", m.\"name\", m.\"org\", COALESCE(o.\"name\", m.\"org\"),"
    " a.\"month\", a.\"date\""
    " FROM \"activities\" AS a"
    " JOIN \"members\" AS m ON m.\"id\" = a.\"member\" AND m.\"deleted\" = 0"
    " LEFT JOIN \"orgs\" AS o ON o.\"id\" = m.\"org\""
    " WHERE a.\"kind\" = 'dues' AND a.\"deleted\" = 0"
    "  AND a.\"date\" <= ?1 AND a.\"date\" > ?2 AND length(a.\"month\") = 7"
    "  AND (CAST(substr(a.\"date\", 1, 4) AS INTEGER) * 12 + CAST(substr(a.\"date\", 6, 2) AS INTEGER))"
    "    - (CAST(substr(a.\"month\", 1, 4) AS INTEGER) * 12 + CAST(substr(a.\"month\", 6, 2) AS INTEGER))"
    "    > ?3";

/* ?1 last day of the year, ?2 its first day, ?3 the year. */
static const char sql_assess[] =
    "WITH \"y\" AS ("
    " SELECT \"member\", \"to\", ROW_NUMBER() OVER ("
    "  PARTITION BY \"member\" ORDER BY \"started\" DESC, \"id\" DESC) AS \"rn\""
    " FROM \"trips\""
    " WHERE \"deleted\" = 0 AND \"started\" <= ?1"
    "  AND (COALESCE(\"ended\", '') = '' OR \"ended\" >= ?2))"
    " SELECT m.\"id\", m.\"name\", m.\"org\", COALESCE(o.\"name\", m.\"org\"),"
    "  COALESCE(i.\"name\", y.\"to\"),"
    "  EXISTS (SELECT 1 FROM \"assessments\" AS s WHERE s.\"member\" = m.\"id\""
    "   AND s.\"year\" = ?3 AND s.\"side\" = 'outflow' AND s.\"deleted\" = 0),"
    "  EXISTS (SELECT 1 FROM \"assessments\" AS s WHERE s.\"member\" = m.\"id\""
    "   AND s.\"year\" = ?3 AND s.\"side\" = 'inflow' AND s.\"deleted\" = 0)"
    " FROM \"y\""
    " JOIN \"members\" AS m ON m.\"id\" = y.\"member\" AND m.\"deleted\" = 0"
    " LEFT JOIN \"orgs\" AS o ON o.\"id\" = m.\"org\""
    " LEFT JOIN \"orgs\" AS i ON i.\"id\" = y.\"to\""
    " WHERE y.\"rn\" = 1";

/* ?1 as of, ?2 started before this day is late. */
static const char sql_report_in[] =
    "SELECT m.\"id\", m.\"name\", m.\"org\", COALESCE(o.\"name\", m.\"org\"),"
    " COALESCE(i.\"name\", t.\"to\"), t.\"started\""
    " FROM \"trips\" AS t"
    " JOIN \"members\" AS m ON m.\"id\" = t.\"member\" AND m.\"deleted\" = 0"
    " LEFT JOIN \"orgs\" AS o ON o.\"id\" = m.\"org\""
    " LEFT JOIN \"orgs\" AS i ON i.\"id\" = t.\"to\""
    " WHERE t.\"deleted\" = 0 AND t.\"status\" IN ('registered', 'reported-in')"
    "  AND t.\"started\" < ?2"
    "  AND (COALESCE(t.\"reported_in\", '') = '' OR t.\"reported_in\" > ?1)";

static const char sql_lost[] =
    "WITH \"last\" AS ("
    " SELECT \"member\", \"to\", \"status\", \"started\", \"ended\", ROW_NUMBER() OVER ("
    "  PARTITION BY \"member\" ORDER BY \"started\" DESC, \"id\" DESC) AS \"rn\""
    " FROM \"trips\" WHERE \"deleted\" = 0 AND \"started\" <= ?1)"
    " SELECT m.\"id\", m.\"name\", m.\"org\", COALESCE(o.\"name\", m.\"org\"),"
    "  COALESCE(i.\"name\", l.\"to\"), l.\"started\", COALESCE(l.\"ended\", '')"
    " FROM \"last\" AS l"
    " JOIN \"members\" AS m ON m.\"id\" = l.\"member\" AND m.\"deleted\" = 0"
    " LEFT JOIN \"orgs\" AS o ON o.\"id\" = m.\"org\""
    " LEFT JOIN \"orgs\" AS i ON i.\"id\" = l.\"to\""
    " WHERE l.\"rn\" = 1 AND l.\"status\" = 'lost-contact' AND COALESCE(l.\"ended\", '') <= ?1";

static const char sql_orgs[] =
    "SELECT \"id\", \"name\", \"kind\" FROM \"orgs\""
    " WHERE \"deleted\" = 0 AND \"kind\" IN ('township', 'village', 'community', 'mobile')"
    " ORDER BY \"id\"";

/* The statements with their bindings, shared by the report and nd_report_explain. */
typedef enum query {
    Q_MOBILE = 0, Q_AGREEMENTS, Q_CONTACTS, Q_VISITS, Q_BACKPAY, Q_ASSESS, Q_REPORT_IN,
    Q_LOST, Q_ORGS, Q_COUNT
} query_t;

static const struct {
    const char *name;
    const char *sql;
} queries[Q_COUNT] = {
    [Q_MOBILE]     = { "mobile members and their latest activities", sql_mobile },
    [Q_AGREEMENTS] = { "agreements", sql_agreements },
    [Q_CONTACTS]   = { "contacts", sql_contacts },
    [Q_VISITS]     = { "visits", sql_visits },
    [Q_BACKPAY]    = { "dues paid late", sql_backpay },
    [Q_ASSESS]     = { "assessments of the last year", sql_assess },
    [Q_REPORT_IN]  = { "trips not reported in", sql_report_in },
    [Q_LOST]       = { "members marked lost-contact", sql_lost },
    [Q_ORGS]       = { "organisations", sql_orgs },
};

/* Prepares query q with its parameters bound for the report's date and rules. */
static int prepare_query(report_t *r, query_t q, sqlite3_stmt **st)
{
    int rc = prepare(r, queries[q].name, queries[q].sql, st);
    if (rc)
        return rc;
    int y, m, d;
    ld_date_split(r->as_of, &y, &m, &d);
    switch (q) {
    case Q_ORGS:
        break;
    case Q_BACKPAY:
        rc = bind_day(r, *st, 1, r->as_of);
        if (!rc)
            rc = bind_day(r, *st, 2, nd_add_months(r->as_of, -12));
        if (!rc && sqlite3_bind_int(*st, 3, r->rules.backpay_max_months) != SQLITE_OK)
            rc = fail_sql(r, "binding a value");
        break;
    case Q_ASSESS:
        rc = bind_day(r, *st, 1, ld_date_join(y - 1, 12, 31));
        if (!rc)
            rc = bind_day(r, *st, 2, ld_date_join(y - 1, 1, 1));
        if (!rc && sqlite3_bind_int(*st, 3, y - 1) != SQLITE_OK)
            rc = fail_sql(r, "binding a value");
        break;
    case Q_REPORT_IN:
        rc = bind_day(r, *st, 1, r->as_of);
        if (!rc)
            rc = bind_day(r, *st, 2, r->as_of - r->rules.report_in_days);
        break;
    default:
        rc = bind_day(r, *st, 1, r->as_of);
        break;
    }
    if (rc) {
        sqlite3_finalize(*st);
        *st = NULL;
    }
    return rc;
}

/* ------------------------------------------------------- mobile members ---- */

static void mobile_free(mobile_t *m)
{
    free(m->id);
    free(m->name);
    free(m->org);
    free(m->org_name);
    free(m->inflow);
    free(m->inflow_name);
}

static int by_id_cmp(const void *a, const void *b)
{
    const mobile_t *const *x = a, *const *y = b;
    return strcmp((*x)->id, (*y)->id);
}

static int load_mobile(report_t *r)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare_query(r, Q_MOBILE, &st);
    if (rc)
        return rc;
    int step = SQLITE_DONE;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (r->nmobile == r->mobile_cap) {
            size_t cap = r->mobile_cap ? r->mobile_cap * 2 : 256;
            mobile_t *grown = realloc(r->mobile, cap * sizeof *grown);
            if (!grown) {
                rc = fail_nomem(r);
                goto out;
            }
            r->mobile = grown;
            r->mobile_cap = cap;
        }
        mobile_t *m = &r->mobile[r->nmobile++];
        memset(m, 0, sizeof *m);
        m->id = col_dup(st, 0);
        m->name = col_dup(st, 1);
        m->org = col_dup(st, 2);
        m->org_name = col_dup(st, 3);
        m->inflow = col_dup(st, 4);
        m->inflow_name = col_dup(st, 5);
        if (!m->id || !m->name || !m->org || !m->org_name || !m->inflow || !m->inflow_name) {
            rc = fail_nomem(r);
            goto out;
        }
        m->female = sqlite3_column_int(st, 6) != 0;
        m->started = col_day(st, 7);
        m->last_life = col_day(st, 8);
        m->covered = col_month(st, 9);
        m->last_any = col_day(st, 10);
    }
    if (step != SQLITE_DONE) {
        rc = fail_sql(r, queries[Q_MOBILE].name);
        goto out;
    }
    r->by_id = malloc((r->nmobile ? r->nmobile : 1) * sizeof *r->by_id);
    if (!r->by_id) {
        rc = fail_nomem(r);
        goto out;
    }
    for (size_t i = 0; i < r->nmobile; i++)
        r->by_id[i] = &r->mobile[i];
    if (r->nmobile > 1)
        qsort(r->by_id, r->nmobile, sizeof *r->by_id, by_id_cmp);
out:
    sqlite3_finalize(st);
    return rc;
}

static const mobile_t *find_mobile(const report_t *r, const char *id)
{
    mobile_t key = { .id = (char *) id };
    const mobile_t *kp = &key;
    if (r->nmobile == 0)
        return NULL;
    mobile_t **hit = bsearch(&kp, r->by_id, r->nmobile, sizeof *r->by_id, by_id_cmp);
    return hit ? *hit : NULL;
}

/* One finding about a member, in section `sect`. */
static int member_finding(report_t *r, int sect, nd_level_t level, duty_t duty,
                          const char *id, const char *name, const char *org,
                          const char *org_name, const char *inflow_name, const char *date,
                          const char *elapsed, const char *note)
{
    const char *cells[CELLS_MAX] = { nd_level_name(level), name, org_name, inflow_name,
                                     duty_names[duty], date, elapsed, note };
    char key[512];
    member_key(key, sizeof key, org, name, id);
    return add_finding(r, sect, level, duty, cells, key);
}

static int check_mobile(report_t *r)
{
    const nd_rules_t *k = &r->rules;
    int32_t this_month = nd_month_of(r->as_of);
    for (size_t i = 0; i < r->nmobile; i++) {
        const mobile_t *m = &r->mobile[i];
        char date[16], elapsed[32], note[160], since[11];
        int rc = 0;
        fmt_day(m->started, since);

        /* organisational life */
        int32_t from = m->last_life != NO_DAY ? m->last_life : m->started;
        int months = from == NO_DAY ? 0 : nd_months_between(from, r->as_of);
        nd_level_t level = nd_months_level(months, k->life_warn_months, k->life_breach_months);
        if (level != ND_LEVEL_OK) {
            fmt_day(m->last_life, date);
            snprintf(elapsed, sizeof elapsed, "%d个月", months);
            if (m->last_life != NO_DAY)
                snprintf(note, sizeof note, "最近一次组织生活 %s，已 %d 个月", date, months);
            else
                snprintf(note, sizeof note, "外出（%s）以来无组织生活记录，已 %d 个月",
                         since, months);
            rc = member_finding(r, 1, level, DUTY_LIFE, m->id, m->name, m->org, m->org_name,
                                m->inflow_name, date, elapsed, note);
        }

        /* dues */
        int32_t paid_to = m->covered != INT32_MIN ? m->covered
                        : m->started != NO_DAY ? nd_month_of(m->started) : this_month;
        months = this_month > paid_to ? (int) (this_month - paid_to) : 0;
        level = nd_months_level(months, k->life_warn_months, k->life_breach_months);
        if (rc == 0 && level != ND_LEVEL_OK) {
            char month[8] = "";
            if (m->covered != INT32_MIN)
                ld_month_format(m->covered, month);
            snprintf(elapsed, sizeof elapsed, "%d个月", months);
            if (m->covered != INT32_MIN)
                snprintf(note, sizeof note, "党费交至 %s，已 %d 个月未交", month, months);
            else
                snprintf(note, sizeof note, "外出（%s）以来无党费记录，已 %d 个月",
                         since, months);
            rc = member_finding(r, 1, level, DUTY_DUES, m->id, m->name, m->org, m->org_name,
                                m->inflow_name, month, elapsed, note);
        }

        /* out of contact: no activity of any kind */
        from = m->last_any != NO_DAY ? m->last_any : m->started;
        months = from == NO_DAY ? 0 : nd_months_between(from, r->as_of);
        if (rc == 0 && months >= k->contact_lost_months) {
            fmt_day(m->last_any, date);
            snprintf(elapsed, sizeof elapsed, "%d个月", months);
            if (m->last_any != NO_DAY)
                snprintf(note, sizeof note, "最近一次活动记录 %s，%d 个月无任何活动记录",
                         date, months);
            else
                snprintf(note, sizeof note, "外出（%s）以来无任何活动记录，已 %d 个月",
                         since, months);
            rc = member_finding(r, 2, ND_LEVEL_BREACH, DUTY_LOST, m->id, m->name, m->org,
                                m->org_name, m->inflow_name, date, elapsed, note);
        }
        if (rc)
            return rc;
    }
    return 0;
}

/* ---------------------------------------------------------- agreements ---- */

typedef struct dated_list {
    dated_t *v;
    size_t   n, cap;
} dated_list_t;

static void dated_free(dated_list_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].ref);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static int load_dated(report_t *r, query_t q, dated_list_t *l)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare_query(r, q, &st);
    if (rc)
        return rc;
    int step = SQLITE_DONE;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        int32_t day = col_day(st, 1);
        if (day == NO_DAY)
            continue;
        if (l->n == l->cap) {
            size_t cap = l->cap ? l->cap * 2 : 64;
            dated_t *grown = realloc(l->v, cap * sizeof *grown);
            if (!grown) {
                rc = fail_nomem(r);
                goto out;
            }
            l->v = grown;
            l->cap = cap;
        }
        if (!(l->v[l->n].ref = col_dup(st, 0))) {
            rc = fail_nomem(r);
            goto out;
        }
        l->v[l->n++].day = day;
    }
    if (step != SQLITE_DONE)
        rc = fail_sql(r, queries[q].name);
out:
    sqlite3_finalize(st);
    return rc;
}

/* The slice [*first, *end) of l (sorted by ref, then day) that belongs to ref. */
static void dated_slice(const dated_list_t *l, const char *ref, size_t *first, size_t *end)
{
    size_t lo = 0, hi = l->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(l->v[mid].ref, ref) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *first = lo;
    while (hi < l->n && strcmp(l->v[hi].ref, ref) == 0)
        hi++;
    if (hi < lo)
        hi = lo;
    *end = hi;
}

typedef struct agreement_row {
    const char *id, *outflow, *outflow_name, *inflow, *inflow_name;
    int32_t     signed_on, until;
} agreement_row_t;

/* The periods of one obligation (contacts per half-year, or visits per year). */
static int check_periods(report_t *r, const agreement_row_t *a, const dated_list_t *l,
                         duty_t duty)
{
    bool half = duty == DUTY_CONTACT;
    int warn = half ? r->rules.contact_warn_days : r->rules.visit_warn_days;
    size_t first, end;
    dated_slice(l, a->id, &first, &end);
    char last[11] = "无";
    if (end > first)
        ld_date_format(l->v[end - 1].day, last);

    nd_period_t p = half ? nd_half_year_of(a->signed_on) : nd_year_of(a->signed_on);
    if (p.first < a->signed_on)
        p = half ? nd_half_year_after(p) : nd_year_after(p);
    for (; p.first <= r->as_of && (a->until == NO_DAY || p.first <= a->until);
         p = half ? nd_half_year_after(p) : nd_year_after(p)) {
        bool met = false;
        for (size_t i = first; i < end && !met; i++)
            met = l->v[i].day >= p.first && l->v[i].day <= p.last;
        nd_level_t level = nd_period_level(p, r->as_of, met, warn);
        if (level == ND_LEVEL_OK)
            continue;
        char label[32], due[11], note[160], key[512];
        nd_period_label(p, label);
        ld_date_format(p.last, due);
        const char *what = half ? "电联" : "互访";
        if (level == ND_LEVEL_BREACH)
            snprintf(note, sizeof note, "%s无%s记录，已超期 %" PRId32 " 天", label, what,
                     r->as_of - p.last);
        else
            snprintf(note, sizeof note, "%s尚无%s记录，距截止还有 %" PRId32 " 天", label, what,
                     p.last - r->as_of);
        const char *cells[CELLS_MAX] = { nd_level_name(level), a->outflow_name,
                                         a->inflow_name, duty_names[duty], label, due, last,
                                         note };
        snprintf(key, sizeof key, "%s\x1f%s\x1f%s\x1f%s", a->outflow, a->inflow, due, a->id);
        int rc = add_finding(r, 0, level, duty, cells, key);
        if (rc)
            return rc;
    }
    return 0;
}

static int check_agreements(report_t *r)
{
    dated_list_t contacts = { 0 }, visits = { 0 };
    sqlite3_stmt *st = NULL;
    int rc = load_dated(r, Q_CONTACTS, &contacts);
    if (!rc)
        rc = load_dated(r, Q_VISITS, &visits);
    if (!rc)
        rc = prepare_query(r, Q_AGREEMENTS, &st);
    if (rc)
        goto out;
    int step = SQLITE_DONE;
    while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
        agreement_row_t a = {
            col_text(st, 0), col_text(st, 1), col_text(st, 2), col_text(st, 3),
            col_text(st, 4), col_day(st, 5), col_day(st, 6),
        };
        if (a.signed_on == NO_DAY)
            continue;
        rc = check_periods(r, &a, &contacts, DUTY_CONTACT);
        if (!rc)
            rc = check_periods(r, &a, &visits, DUTY_VISIT);
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = fail_sql(r, queries[Q_AGREEMENTS].name);
out:
    sqlite3_finalize(st);
    dated_free(&contacts);
    dated_free(&visits);
    return rc;
}

/* ------------------------------------------------- the other member rules ---- */

static const char *inflow_of(const report_t *r, const char *member_id)
{
    const mobile_t *m = find_mobile(r, member_id);
    return m ? m->inflow_name : "";
}

static int check_backpay(report_t *r)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare_query(r, Q_BACKPAY, &st);
    if (rc)
        return rc;
    int step = SQLITE_DONE;
    while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
        int32_t month = col_month(st, 4), paid = col_day(st, 5);
        if (month == INT32_MIN || paid == NO_DAY)
            continue;
        int late = (int) (nd_month_of(paid) - month);
        char elapsed[32], note[160];
        snprintf(elapsed, sizeof elapsed, "%d个月", late);
        snprintf(note, sizeof note, "%s 的党费于 %s 补缴，迟 %d 个月（限 %d 个月）",
                 col_text(st, 4), col_text(st, 5), late, r->rules.backpay_max_months);
        const char *id = col_text(st, 0);
        rc = member_finding(r, 1, ND_LEVEL_BREACH, DUTY_BACKPAY, id, col_text(st, 1),
                            col_text(st, 2), col_text(st, 3), inflow_of(r, id),
                            col_text(st, 5), elapsed, note);
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = fail_sql(r, queries[Q_BACKPAY].name);
    sqlite3_finalize(st);
    return rc;
}

static int check_assessments(report_t *r)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare_query(r, Q_ASSESS, &st);
    if (rc)
        return rc;
    int y, m, d;
    ld_date_split(r->as_of, &y, &m, &d);
    char year[16];
    snprintf(year, sizeof year, "%d", y - 1);
    int step = SQLITE_DONE;
    while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
        bool outflow = sqlite3_column_int(st, 5) != 0, inflow = sqlite3_column_int(st, 6) != 0;
        if (outflow && inflow)
            continue;
        const char *missing = !outflow && !inflow ? "流出地和流入地" : !outflow ? "流出地" : "流入地";
        char note[160];
        snprintf(note, sizeof note, "%d 年度缺%s考核", y - 1, missing);
        rc = member_finding(r, 2, ND_LEVEL_BREACH, DUTY_ASSESS, col_text(st, 0),
                            col_text(st, 1), col_text(st, 2), col_text(st, 3), col_text(st, 4),
                            year, "", note);
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = fail_sql(r, queries[Q_ASSESS].name);
    sqlite3_finalize(st);
    return rc;
}

static int check_report_in(report_t *r)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare_query(r, Q_REPORT_IN, &st);
    if (rc)
        return rc;
    int step = SQLITE_DONE;
    while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
        int32_t started = col_day(st, 5);
        if (started == NO_DAY)
            continue;
        char elapsed[32], note[160];
        snprintf(elapsed, sizeof elapsed, "%" PRId32 "天", r->as_of - started);
        snprintf(note, sizeof note, "外出登记 %" PRId32 " 天仍未到流入地党支部报到（限 %d 天）",
                 r->as_of - started, r->rules.report_in_days);
        rc = member_finding(r, 2, ND_LEVEL_BREACH, DUTY_REPORT_IN, col_text(st, 0),
                            col_text(st, 1), col_text(st, 2), col_text(st, 3), col_text(st, 4),
                            col_text(st, 5), elapsed, note);
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = fail_sql(r, queries[Q_REPORT_IN].name);
    sqlite3_finalize(st);
    return rc;
}

static int check_lost(report_t *r)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare_query(r, Q_LOST, &st);
    if (rc)
        return rc;
    int step = SQLITE_DONE;
    while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *ended = col_text(st, 6);
        const char *date = ended[0] ? ended : col_text(st, 5);
        rc = member_finding(r, 2, ND_LEVEL_BREACH, DUTY_LOST, col_text(st, 0),
                            col_text(st, 1), col_text(st, 2), col_text(st, 3), col_text(st, 4),
                            date, "", "外出登记状态为失联");
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = fail_sql(r, queries[Q_LOST].name);
    sqlite3_finalize(st);
    return rc;
}

/* ---------------------------------------------------------------- tables ---- */

static const char *const finding_keys[CELLS_MAX] = {
    "level", "member", "org", "inflow", "duty", "date", "elapsed", "note",
};
static const char *const finding_labels[CELLS_MAX] = {
    "级别", "姓名", "流出地党支部", "流入地党支部", "事项", "日期", "时长", "说明",
};
static const char *const agreement_keys[CELLS_MAX] = {
    "level", "outflow", "inflow", "duty", "period", "due", "last", "note",
};
static const char *const agreement_labels[CELLS_MAX] = {
    "级别", "流出地党支部", "流入地党支部", "事项", "期间", "截止日期", "最近一次", "说明",
};

static nd_table_t *findings_table(report_t *r, int sect, const char *title)
{
    findings_t *f = &r->sect[sect];
    nd_table_t *t = sect == 0
        ? nd_table_new(title, CELLS_MAX, agreement_keys, agreement_labels)
        : nd_table_new(title, CELLS_MAX, finding_keys, finding_labels);
    if (!t)
        return NULL;
    if (f->n > 1)
        qsort(f->v, f->n, sizeof *f->v, finding_cmp);
    for (size_t i = 0; i < f->n; i++)
        if (nd_table_add_row(t, (const char *const *) f->v[i].cells)) {
            nd_table_destroy(&t);
            return NULL;
        }
    return t;
}

static nd_table_t *parameters_table(report_t *r, const char *title)
{
    static const char *const keys[] = { "item", "value" };
    static const char *const labels[] = { "项目", "值" };
    nd_table_t *t = nd_table_new(title, 2, keys, labels);
    if (!t)
        return NULL;
    char node[256];
    snprintf(node, sizeof node, "%s %s", nd_store_node_id(r->store),
             nd_store_node_name(r->store));
    const char *row0[] = { "截至日期", r->as_of_text };
    const char *row1[] = { "本节点", node };
    int rc = nd_table_add_row(t, row0);
    if (!rc)
        rc = nd_table_add_row(t, row1);
    for (size_t i = 0; i < NSETTINGS && !rc; i++) {
        char item[160], value[16];
        snprintf(item, sizeof item, "%s (%s)", settings[i].label, settings[i].key);
        snprintf(value, sizeof value, "%d", *rule_field(&r->rules, i));
        const char *row[] = { item, value };
        rc = nd_table_add_row(t, row);
    }
    if (rc)
        nd_table_destroy(&t);
    return t;
}

static int group_cmp(const void *a, const void *b)
{
    const group_row_t *x = a, *y = b;
    if (x->group != y->group)
        return x->group - y->group;
    return strcmp(x->id, y->id);
}

/* The index of the row of `group` for org `id`, added (named `name`, or the id) if
 * missing; -1 when memory runs out. */
static long group_find(group_row_t **rows, size_t *n, size_t *cap, int group,
                       const char *id, const char *name)
{
    for (size_t i = 0; i < *n; i++)
        if ((*rows)[i].group == group && strcmp((*rows)[i].id, id) == 0)
            return (long) i;
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 32;
        group_row_t *grown = realloc(*rows, ncap * sizeof *grown);
        if (!grown)
            return -1;
        *rows = grown;
        *cap = ncap;
    }
    group_row_t *g = &(*rows)[*n];
    memset(g, 0, sizeof *g);
    g->group = group;
    g->id = strdup(id);
    g->name = strdup(name && name[0] ? name : id);
    (*n)++;
    if (!g->id || !g->name)
        return -1;
    return (long) (*n - 1);
}

static nd_table_t *totals_table(report_t *r, const char *title)
{
    static const char *const keys[] = { "group", "org", "mobile", "women" };
    static const char *const labels[] = { "类别", "党组织", "流动党员", "其中女党员" };
    static const char *const group_names[] = { "全镇", "流入地", "流出地" };
    group_row_t *rows = NULL;
    size_t n = 0, cap = 0;
    nd_table_t *t = NULL;
    sqlite3_stmt *st = NULL;
    int rc = prepare_query(r, Q_ORGS, &st);
    if (rc)
        return NULL;
    int step = SQLITE_DONE;
    bool ok = true;
    char township[256] = "";
    while (ok && (step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *kind = col_text(st, 2);
        if (strcmp(kind, "township") == 0) {
            if (!township[0])
                snprintf(township, sizeof township, "%s", col_text(st, 1));
            continue;
        }
        int group = strcmp(kind, "mobile") == 0 ? 1 : 2;
        ok = group_find(&rows, &n, &cap, group, col_text(st, 0), col_text(st, 1)) >= 0;
    }
    if (ok && step != SQLITE_DONE) {
        fail_sql(r, queries[Q_ORGS].name);
        goto out;
    }
    long total = 0, women = 0;
    for (size_t i = 0; i < r->nmobile && ok; i++) {
        const mobile_t *m = &r->mobile[i];
        long in = group_find(&rows, &n, &cap, 1, m->inflow, m->inflow_name);
        long home = in >= 0 ? group_find(&rows, &n, &cap, 2, m->org, m->org_name) : -1;
        ok = in >= 0 && home >= 0;
        if (!ok)
            break;
        rows[in].mobile++;
        rows[home].mobile++;
        total++;
        if (m->female) {
            rows[in].women++;
            rows[home].women++;
            women++;
        }
    }
    if (!ok) {
        fail_nomem(r);
        goto out;
    }
    if (n > 1)
        qsort(rows, n, sizeof *rows, group_cmp);
    t = nd_table_new(title, 4, keys, labels);
    if (!t)
        goto nomem;
    char a[24], b[24];
    snprintf(a, sizeof a, "%ld", total);
    snprintf(b, sizeof b, "%ld", women);
    const char *row0[] = { group_names[0], township[0] ? township : nd_store_node_name(r->store),
                           a, b };
    if (nd_table_add_row(t, row0))
        goto nomem;
    for (size_t i = 0; i < n; i++) {
        snprintf(a, sizeof a, "%ld", rows[i].mobile);
        snprintf(b, sizeof b, "%ld", rows[i].women);
        const char *row[] = { group_names[rows[i].group], rows[i].name, a, b };
        if (nd_table_add_row(t, row))
            goto nomem;
    }
    goto out;
nomem:
    fail_nomem(r);
    nd_table_destroy(&t);
out:
    sqlite3_finalize(st);
    for (size_t i = 0; i < n; i++) {
        free(rows[i].id);
        free(rows[i].name);
    }
    free(rows);
    return t;
}

static nd_table_t *counts_table(report_t *r, const char *title)
{
    static const char *const keys[] = { "duty", "breaches", "warnings" };
    static const char *const labels[] = { "事项", "超期", "预警" };
    nd_table_t *t = nd_table_new(title, 3, keys, labels);
    if (!t)
        return NULL;
    for (int d = 0; d < DUTY_COUNT; d++) {
        char a[24], b[24];
        snprintf(a, sizeof a, "%ld", r->counts[d][ND_LEVEL_BREACH]);
        snprintf(b, sizeof b, "%ld", r->counts[d][ND_LEVEL_WARNING]);
        const char *row[] = { duty_names[d], a, b };
        if (nd_table_add_row(t, row)) {
            nd_table_destroy(&t);
            return NULL;
        }
    }
    return t;
}

/* ---------------------------------------------------------------- output ---- */

#define NTABLES 6

/* One table rendered into a malloc'd buffer (caller frees); NULL on failure. */
static char *render(const nd_table_t *t, nd_format_t fmt, size_t *len)
{
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);
    if (!f)
        return NULL;
    int rc = nd_table_print(t, fmt, f);
    if (fclose(f) != 0 || rc != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* The part of an HTML page between "<body>\n" and "</body>\n" (or the whole text). */
static void html_body(const char *page, const char **start, const char **end)
{
    const char *b = strstr(page, "<body>\n");
    const char *e = b ? strstr(b, "</body>\n") : NULL;
    *start = b ? b + strlen("<body>\n") : page;
    *end = e ? e : page + strlen(page);
}

/* A title as a CSV record of one cell (quoted when it needs to be). */
static int csv_title(FILE *out, const char *title)
{
    bool quote = strpbrk(title, ",\"\r\n") != NULL;
    if (quote && putc('"', out) == EOF)
        return LD_EIO;
    for (const char *p = title; *p; p++)
        if ((*p == '"' && putc('"', out) == EOF) || putc(*p, out) == EOF)
            return LD_EIO;
    if (quote && putc('"', out) == EOF)
        return LD_EIO;
    return fputs("\r\n", out) == EOF ? LD_EIO : 0;
}

static int json_text(FILE *out, const char *s)
{
    if (putc('"', out) == EOF)
        return LD_EIO;
    for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
        int e;
        if (*p == '"' || *p == '\\')
            e = putc('\\', out) == EOF || putc(*p, out) == EOF;
        else if (*p < 0x20)
            e = fprintf(out, "\\u%04x", (unsigned) *p) < 0;
        else
            e = putc(*p, out) == EOF;
        if (e)
            return LD_EIO;
    }
    return putc('"', out) == EOF ? LD_EIO : 0;
}

static int print_tables(report_t *r, nd_table_t *const *tables, const char *const *titles,
                        nd_format_t fmt, FILE *out)
{
    char *text[NTABLES] = { 0 };
    size_t len[NTABLES] = { 0 };
    int rc = 0;
    for (int i = 0; i < NTABLES; i++)
        if (!(text[i] = render(tables[i], fmt, &len[i]))) {
            rc = ld_error_set(r->err, LD_EIO, "report: rendering a table failed");
            goto out;
        }
    bool bad = false;
    switch (fmt) {
    case ND_FMT_TABLE:
        for (int i = 0; i < NTABLES && !bad; i++)
            bad = (i && putc('\n', out) == EOF) || fwrite(text[i], 1, len[i], out) != len[i];
        break;
    case ND_FMT_CSV:
        /* one BOM, then per table: its title as a record, the table, a blank record */
        bad = fputs("\xef\xbb\xbf", out) == EOF;
        for (int i = 0; i < NTABLES && !bad; i++) {
            const char *body = text[i];
            if (strncmp(body, "\xef\xbb\xbf", 3) == 0)
                body += 3;
            bad = (i && fputs("\r\n", out) == EOF) || csv_title(out, titles[i]) ||
                  fputs(body, out) == EOF;
        }
        break;
    case ND_FMT_JSON:
        bad = fputs("{\"title\":\"两地双管合规报告\",\"as_of\":", out) == EOF ||
              json_text(out, r->as_of_text) || fputs(",\"node\":", out) == EOF ||
              json_text(out, nd_store_node_id(r->store)) ||
              fputs(",\"tables\":[\n", out) == EOF;
        for (int i = 0; i < NTABLES && !bad; i++) {
            size_t n = len[i];
            while (n > 0 && text[i][n - 1] == '\n')
                n--;
            bad = (i && fputs(",\n", out) == EOF) || fwrite(text[i], 1, n, out) != n;
        }
        bad = bad || fputs("\n]}\n", out) == EOF;
        break;
    case ND_FMT_HTML: {
        const char *s, *e;
        html_body(text[0], &s, &e);
        bad = fwrite(text[0], 1, (size_t) (s - text[0]), out) != (size_t) (s - text[0]);
        for (int i = 0; i < NTABLES && !bad; i++) {
            html_body(text[i], &s, &e);
            bad = fwrite(s, 1, (size_t) (e - s), out) != (size_t) (e - s);
        }
        bad = bad || fputs("</body>\n</html>\n", out) == EOF;
        break;
    }
    default:
        rc = ld_error_set(r->err, LD_EINVAL, "report: unknown output format %d", (int) fmt);
        goto out;
    }
    if (bad || ferror(out))
        rc = ld_error_set(r->err, LD_EIO, "report: writing the report failed");
out:
    for (int i = 0; i < NTABLES; i++)
        free(text[i]);
    return rc;
}

static void report_clear(report_t *r)
{
    for (size_t i = 0; i < r->nmobile; i++)
        mobile_free(&r->mobile[i]);
    free(r->mobile);
    free(r->by_id);
    for (int s = 0; s < 3; s++)
        findings_free(&r->sect[s]);
}

static int report_init(report_t *r, nd_store_t *store, int32_t as_of, ld_error_t *err)
{
    memset(r, 0, sizeof *r);
    r->store = store;
    r->err = err;
    r->as_of = as_of;
    if (!store || !(r->db = nd_store_db(store)))
        return ld_error_set(err, LD_EINVAL, "report: no store");
    int y, m, d;
    ld_date_split(as_of, &y, &m, &d);
    if (y < 1900 || y > 2199)
        return ld_error_set(err, LD_EINVAL, "report: date %" PRId32 " is out of range", as_of);
    ld_date_format(as_of, r->as_of_text);
    return load_rules(r);
}

int nd_report_print(nd_store_t *store, int32_t as_of, nd_format_t fmt, FILE *out,
                    ld_error_t *err)
{
    report_t r;
    nd_table_t *tables[NTABLES] = { 0 };
    bool own_txn = false;
    int rc = report_init(&r, store, as_of, err);
    if (rc)
        goto out;
    if (fmt != ND_FMT_TABLE && fmt != ND_FMT_CSV && fmt != ND_FMT_JSON && fmt != ND_FMT_HTML) {
        rc = ld_error_set(err, LD_EINVAL, "report: unknown output format %d", (int) fmt);
        goto out;
    }
    /* one read transaction, so that every section sees the same store */
    own_txn = sqlite3_get_autocommit(r.db) != 0;
    if (own_txn && sqlite3_exec(r.db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
        own_txn = false;
        rc = fail_sql(&r, "starting a read transaction");
        goto out;
    }
    rc = load_mobile(&r);
    if (!rc)
        rc = check_agreements(&r);
    if (!rc)
        rc = check_mobile(&r);
    if (!rc)
        rc = check_backpay(&r);
    if (!rc)
        rc = check_assessments(&r);
    if (!rc)
        rc = check_report_in(&r);
    if (!rc)
        rc = check_lost(&r);
    char title0[96];
    snprintf(title0, sizeof title0, "两地双管合规报告（截至 %s）", r.as_of_text);
    const char *titles[NTABLES] = {
        title0,
        "一、共管协议：每半年电联一次、每年互访一次",
        "二、流动党员：组织生活与党费",
        "三、双边考核、外出报到与失联",
        "四、流动党员统计",
        "问题汇总",
    };
    if (!rc) {
        tables[0] = parameters_table(&r, titles[0]);
        tables[1] = findings_table(&r, 0, titles[1]);
        tables[2] = findings_table(&r, 1, titles[2]);
        tables[3] = findings_table(&r, 2, titles[3]);
        tables[4] = totals_table(&r, titles[4]);
        tables[5] = counts_table(&r, titles[5]);
    }
    if (own_txn && sqlite3_exec(r.db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK && !rc)
        rc = fail_sql(&r, "ending the read transaction");
    if (rc)
        goto out;
    for (int i = 0; i < NTABLES; i++)
        if (!tables[i]) {
            rc = err && err->code ? err->code : fail_nomem(&r);
            goto out;
        }
    rc = print_tables(&r, tables, titles, fmt, out);
out:
    for (int i = 0; i < NTABLES; i++)
        nd_table_destroy(&tables[i]);
    report_clear(&r);
    return rc;
}

/* ----------------------------------------------------------------- explain ---- */

int nd_report_explain(nd_store_t *store, int32_t as_of, FILE *out, ld_error_t *err)
{
    report_t r;
    int rc = report_init(&r, store, as_of, err);
    for (int q = 0; q < Q_COUNT && rc == 0; q++) {
        char *sql = NULL;
        sqlite3_stmt *st = NULL;
        if (asprintf(&sql, "EXPLAIN QUERY PLAN %s", queries[q].sql) < 0) {
            rc = fail_nomem(&r);
            break;
        }
        rc = prepare(&r, queries[q].name, sql, &st);
        free(sql);
        if (rc)
            break;
        fprintf(out, "%s:\n", queries[q].name);
        int step = SQLITE_DONE;
        /* rows: id, parent, notused, detail; indent by depth */
        int ids[64], depth[64], nids = 0;
        while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
            int id = sqlite3_column_int(st, 0), parent = sqlite3_column_int(st, 1);
            int dep = 1;
            for (int i = 0; i < nids; i++)
                if (ids[i] == parent)
                    dep = depth[i] + 1;
            if (nids < 64) {
                ids[nids] = id;
                depth[nids++] = dep;
            }
            fprintf(out, "%*s%s\n", dep * 2, "", col_text(st, 3));
        }
        if (rc == 0 && step != SQLITE_DONE)
            rc = fail_sql(&r, queries[q].name);
        sqlite3_finalize(st);
    }
    if (rc == 0 && ferror(out))
        rc = ld_error_set(err, LD_EIO, "report: writing the query plans failed");
    report_clear(&r);
    return rc;
}
