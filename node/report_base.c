/* report_base.c: what every file of the compliance report uses: the duties' names, its
 * errors, reading a row's columns, adding a finding, the settings it reads, and its
 * queries, each prepared with its parameters bound for the report's date (report.c says
 * what each pass reads and why). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "report_int.h"
#include "rules.h"
#include "schema.h"
#include "text.h"

/* ------------------------------------------------------------ findings ---- */

static const char *const duty_names[DUTY_COUNT] = {
    "共管协议", "半年电联", "年度互访", "流动党员座谈会", "年度评选", "支部组织生活", "组织生活",
    "党费", "补缴党费", "党费重记", "双边考核", "年度书面报告", "活动证年审", "外出报到",
    "逾期未归", "失联",
};

void nd_rp_findings_free(findings_t *f)
{
    ld_arena_release(&f->text);
    free(f->v);
    memset(f, 0, sizeof *f);
}

const char *nd_rp_duty_name(const report_t *r, duty_t duty)
{
    static const char *const contact[13] = {
        [1] = "每月电联", [2] = "两个月电联", [3] = "季度电联", [4] = "四个月电联",
        [6] = "半年电联", [12] = "年度电联",
    };
    static const char *const visit[13] = {
        [1] = "每月互访", [2] = "两个月互访", [3] = "季度互访", [4] = "四个月互访",
        [6] = "半年互访", [12] = "年度互访",
    };
    int months = duty == DUTY_CONTACT ? r->rules.contact_period_months
               : duty == DUTY_VISIT ? r->rules.visit_period_months : 0;
    const char *name = months >= 1 && months <= 12
                       ? (duty == DUTY_CONTACT ? contact : visit)[months] : NULL;
    return name ? name : duty_names[duty];
}

/* ------------------------------------------------------------- helpers ---- */

int nd_rp_fail_sql(report_t *r, const char *what)
{
    return ld_error_set(r->err, LD_EIO, "report: %s: %s", what, sqlite3_errmsg(r->db));
}

int nd_rp_fail_nomem(report_t *r)
{
    return ld_error_set(r->err, LD_ENOMEM, "report: out of memory");
}

int nd_rp_prepare(report_t *r, const char *what, const char *sql, sqlite3_stmt **st)
{
    if (sqlite3_prepare_v2(r->db, sql, -1, st, NULL) != SQLITE_OK)
        return nd_rp_fail_sql(r, what);
    return 0;
}

static int bind_text(report_t *r, sqlite3_stmt *st, int idx, const char *text)
{
    if (sqlite3_bind_text(st, idx, text, -1, SQLITE_TRANSIENT) != SQLITE_OK)
        return nd_rp_fail_sql(r, "binding a value");
    return 0;
}

static int bind_day(report_t *r, sqlite3_stmt *st, int idx, int32_t day)
{
    char text[11];
    ld_date_format(day, text);
    return bind_text(r, st, idx, text);
}

char *nd_rp_col_dup(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return strdup(t ? (const char *) t : "");
}

const char *nd_rp_col_text(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? (const char *) t : "";
}

int32_t nd_rp_col_day(sqlite3_stmt *st, int i)
{
    int32_t day;
    return ld_date_parse(nd_rp_col_text(st, i), &day) ? day : NO_DAY;
}

int nd_rp_add_finding(report_t *r, int sect, nd_level_t level, duty_t duty,
                      const char *const cells[CELLS_MAX], const char *key)
{
    findings_t *f = &r->sect[sect];
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 64;
        finding_t *grown = realloc(f->v, cap * sizeof *grown);
        if (!grown)
            return nd_rp_fail_nomem(r);
        f->v = grown;
        f->cap = cap;
    }
    finding_t *x = &f->v[f->n];
    memset(x, 0, sizeof *x);
    x->level = level;
    x->duty = duty;
    bool ok = (x->key = ld_arena_text(&f->text, key, strlen(key))) != NULL;
    for (size_t c = 0; c < CELLS_MAX && ok; c++) {
        const char *cell = cells[c] ? cells[c] : "";
        ok = (x->cells[c] = ld_arena_text(&f->text, cell, strlen(cell))) != NULL;
    }
    if (!ok)
        return nd_rp_fail_nomem(r);     /* the pieces copied go with the arena */
    f->n++;
    r->counts[duty][level]++;
    return 0;
}

/* --------------------------------------------------------------- settings ---- */


bool nd_rp_setting(report_t *r, size_t i, const char **key, const char **label, int *value)
{
    const nd_rule_setting_t *s = nd_rule_setting(i);
    if (!s)
        return false;
    *key = s->key;
    *label = s->label;
    *value = *nd_rule_field(&r->rules, s);
    return true;
}

/* ---------------------------------------------------------- the queries ---- */

/* ?1 the date.  In the order of the index trips(member, started, id): no sorting. */
static const char sql_trips[] =
    "SELECT t.\"member\", t.\"to\", t.\"started\", t.\"reported_in\", t.\"ended\","
    " t.\"status\", m.\"name\", m.\"org\", m.\"gender\" = 'female', t.\"until\""
    " FROM \"trips\" AS t"
    " JOIN \"members\" AS m ON m.\"id\" = t.\"member\" AND m.\"deleted\" = 0"
    " WHERE t.\"deleted\" = 0 AND t.\"started\" <= ?1"
    " ORDER BY t.\"member\", t.\"started\", t.\"id\"";

/* Every live row, in table order; the date is compared in C so that SQLite reads the
 * table straight through instead of looking rows up from the date index. */
static const char sql_activities[] =
    "SELECT \"member\", \"kind\", \"date\", \"month\", \"created_by\" FROM \"activities\""
    " WHERE \"deleted\" = 0";

/* ?1 the year. */
static const char sql_assess[] =
    "SELECT \"member\", \"side\" FROM \"assessments\""
    " WHERE \"deleted\" = 0 AND \"year\" = ?1";

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

/* ?1 the last full year: the latest year up to it with an honour. */
static const char sql_honours[] =
    "SELECT max(\"year\") FROM \"honours\" WHERE \"deleted\" = 0 AND \"year\" <= ?1";

/* ?1 the last full year: its honours, by kind. */
static const char sql_work_honours[] =
    "SELECT \"kind\", count(*), count(DISTINCT \"member\"), 0 FROM \"honours\""
    " WHERE \"deleted\" = 0 AND \"year\" = ?1 GROUP BY \"kind\"";

/* ?1 the date, ?2 the first day of its year: the help given between, by kind. */
static const char sql_work_supports[] =
    "SELECT \"kind\", count(*), count(DISTINCT \"member\"), coalesce(sum(\"amount\"), 0)"
    " FROM \"supports\" WHERE \"deleted\" = 0 AND \"date\" BETWEEN ?2 AND ?1"
    " GROUP BY \"kind\"";

/* The same, training and help finding work together: the members given either. */
static const char sql_work_trained[] =
    "SELECT NULL, count(*), count(DISTINCT \"member\"), 0 FROM \"supports\""
    " WHERE \"deleted\" = 0 AND \"date\" BETWEEN ?2 AND ?1"
    " AND \"kind\" IN ('training', 'employment')";

static const char sql_orgs[] =
    "SELECT \"id\", COALESCE(\"name\", \"id\"), COALESCE(\"kind\", ''), \"deleted\","
    " COALESCE(\"node\", '') FROM \"orgs\" ORDER BY \"id\"";

static const struct {
    const char *name;
    const char *sql;
} queries[Q_COUNT] = {
    [Q_TRIPS]      = { "trips and their members", sql_trips },
    [Q_ACTIVITIES] = { "activities", sql_activities },
    [Q_ASSESS]     = { "assessments of the last year", sql_assess },
    [Q_AGREEMENTS] = { "agreements", sql_agreements },
    [Q_CONTACTS]   = { "contacts", sql_contacts },
    [Q_VISITS]     = { "visits", sql_visits },
    [Q_ORGS]       = { "organisations", sql_orgs },
    [Q_HONOURS]    = { "honours up to the last year", sql_honours },
    [Q_WORK_HONOURS]  = { "honours of the last year", sql_work_honours },
    [Q_WORK_SUPPORTS] = { "help given this year", sql_work_supports },
    [Q_WORK_TRAINED]  = { "training and help finding work this year", sql_work_trained },
};

const ld_field_def_t *nd_rp_kind_field(ld_kind_t kind)
{
    const ld_kind_def_t *def = ld_schema_kind(kind);
    return &def->fields[ld_schema_field_index(def, "kind")];
}

const char *nd_rp_query_name(query_t q)
{
    return queries[q].name;
}

const char *nd_rp_query_sql(query_t q)
{
    return queries[q].sql;
}

int nd_rp_prepare_query(report_t *r, query_t q, sqlite3_stmt **st)
{
    int rc = nd_rp_prepare(r, nd_rp_query_name(q), queries[q].sql, st);
    if (rc)
        return rc;
    int y, m, d;
    ld_date_split(r->as_of, &y, &m, &d);
    if (q == Q_ASSESS || q == Q_HONOURS || q == Q_WORK_HONOURS) {
        if (sqlite3_bind_int(*st, 1, y - 1) != SQLITE_OK)
            rc = nd_rp_fail_sql(r, "binding a value");
    } else if (q != Q_ACTIVITIES && q != Q_ORGS) {
        rc = bind_day(r, *st, 1, r->as_of);
        if (rc == 0 && (q == Q_WORK_SUPPORTS || q == Q_WORK_TRAINED))
            rc = bind_day(r, *st, 2, ld_date_join(y, 1, 1));
    }
    if (rc) {
        sqlite3_finalize(*st);
        *st = NULL;
    }
    return rc;
}
