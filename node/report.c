/* report.c: the compliance report: what is overdue as of a date, by the rules below,
 * as tables a branch secretary can act on (names, branches, dates).
 *
 * How it is computed: one pass over each table, never a query per member.
 *
 *   trips       every trip started by the date with its member and org names, in
 *               (member, started) order from the index trips(member, started): each
 *               member's latest trip tells whether they are mobile (registered or
 *               reported in; or ended after the date), not yet reported in, or marked
 *               lost-contact; any trip that overlaps the last full year makes them owe
 *               that year's assessments;
 *   activities  one sequential scan of the live rows (a million rows take a fraction of a
 *               second; the per-member index searches it replaces each cost a row
 *               lookup, since `deleted` is in no index); rows up to the date are folded
 *               into the members found above through a hash table: latest
 *               organisational life, the months dues were paid for, latest activity of
 *               any kind, and dues paid late within the last twelve months;
 *   assessments one scan of the last full year's rows, marking each side;
 *   honours     the latest year up to the last full one with an honour, searched in the
 *               index honours(year, kind); and the last full year's, counted by kind;
 *   supports    the help given in the year of the date up to it, counted by kind, and
 *               the members given training or help finding work;
 *   agreements  each agreement signed by the date, with all contacts and visits up to
 *               the date (few rows), matched per half-year and per year.
 *
 * The rules (thresholds from settings "report.*", defaults in rules.c):
 *   - a home branch and an inflow branch with mobile members there need an agreement
 *     signed by the date and not ended before it (every obligation hangs off one):
 *     without one, a breach per pair;
 *   - an agreement owes one contact per half-year and one visit per calendar year, for
 *     every period that begins on or after the day it was signed (and not after `until`);
 *     a period that ended without one is a breach, a current period within the last
 *     contact_warn_days / visit_warn_days days without one is a warning;
 *   - an inflow branch's own organisational life, by the timetable of nd_life_rules
 *     (theme day, committee and group monthly, all-member meeting quarterly, life
 *     meeting and appraisal yearly): the last period of each kind that has ended with
 *     no entry by a member of the branch, written by the branch's node during that
 *     member's latest trip, is a breach, once a member away there on the date had left
 *     for it by the period's first day (report_orgs.c);
 *   - the township's symposium for its mobile members, once per symposium_period_months,
 *     on the node that keeps the township: the last period that has ended with no entry
 *     of kind symposium is a breach, once a member away on the date had left by its first
 *     day; and its yearly selection of honoured members: no honour of either kind for
 *     the last full year (one selection names both, and may find none worthy of one),
 *     once a member was away in it, is a warning until the end of March, then a breach
 *     (report_orgs.c);
 *   - a mobile member's organisational life (meeting, committee, group, theme-day,
 *     lecture, life-meeting, appraisal): whole months since the latest one (or since the
 *     trip started, when there is none) >= life_warn_months warns, >= life_breach_months
 *     is a breach;
 *   - dues: each dues entry paid by the date covers the one month it names; of the
 *     months after the one the trip started in, up to the last month that has ended, the
 *     longest run of uncovered months counts against the same two thresholds (a month
 *     paid ahead, or a later one, hides no earlier month left unpaid; the month under
 *     way is not yet owed); a payment made in the twelve months up to the date more than
 *     backpay_max_months after the month it covers is a breach; a month from the one the
 *     trip started in to the month of the date with two or more entries is a warning
 *     (two branches recorded one payment before they synced, or it was paid twice);
 *   - assessments: a member mobile during the last full year needs both sides' for it;
 *     and, for that year, his written report to the home branch and the certificate's
 *     review (activities of kind report and review dated in that year, or in January to
 *     March of the next: an entry counts for one year only);
 *   - a trip still not reported in more than report_in_days after it started;
 *   - a trip under way on the date after the day it was expected to end (a warning: the
 *     branch records the return, or a later expected end);
 *   - out of contact: the latest trip marked lost-contact, or a mobile member with no
 *     activity of any kind for contact_lost_months whole months.
 * Every finding row holds a level ("超期" breach, "预警" warning); rows are sorted
 * breaches first, then by branch id and name.  Besides the findings, the report counts
 * the mobile members by branch, and the township's work: last year's honours and this
 * year's help for members in difficulty, by kind (pairings, grants and their sum,
 * training, help finding work), as a yearly work report states them, the grants beside
 * the year's fund (support_fund_yuan) and the members trained or helped into work
 * beside the year's target (training_target).
 *
 * Where it is: this file gathers the data (the passes above) and judges each member;
 * report_orgs.c judges the agreements, the branches' timetable and the township's own
 * duties, and counts its work; report_tables.c renders; report_base.c holds the queries
 * and the helpers all three use (findings, columns, errors); report_int.h is what the
 * four share. */
#include "report.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include "collate.h"
#include "report_int.h"
#include "rules.h"
#include "schema.h"
#include "text.h"

/* ------------------------------------------------------------- helpers ---- */

static void fmt_day(int32_t day, char out[11])
{
    if (day == NO_DAY)
        out[0] = '\0';
    else
        ld_date_format(day, out);
}

/* The sort key of a member's finding: branch id, the name's sort key (in the store's
 * name order, pinyin unless set to strokes: collate.h), id, separated by \x1f. */
static int member_key(report_t *r, char *out, size_t size, const char *org, const char *name,
                      const char *id)
{
    char name_key[NAME_KEY_MAX];
    if (nd_collate_key(nd_store_collate(r->store), name, name_key, sizeof name_key) != 0)
        snprintf(name_key, sizeof name_key, "%s", name);
    return snprintf(out, size, "%s\x1f%s\x1f%s", org, name_key, id);
}

/* ---------------------------------------------------------------- rules ---- */

static int load_rules(report_t *r)
{
    nd_rules_defaults(&r->rules);
    const nd_rule_setting_t *s;
    for (size_t i = 0; (s = nd_rule_setting(i)); i++) {
        char *value = nd_store_setting(r->store, s->key);
        if (!value)
            continue;
        char *end = NULL;
        int max = s->max;
        errno = 0;
        long v = strtol(value, &end, 10);
        bool ok = value[0] >= '0' && value[0] <= '9' && end && *end == '\0' && errno == 0 &&
                  v <= max;
        if (ok)
            *nd_rule_field(&r->rules, s) = (int) v;
        int rc = ok ? 0 : ld_error_set(r->err, LD_EINVAL,
                                       "setting %s = '%.64s' is not a whole number from 0 "
                                       "to %d", s->key, value, max);
        free(value);
        if (rc)
            return rc;
    }
    const struct { const char *name; int months; } periods[] = {
        { "contact", r->rules.contact_period_months },
        { "visit", r->rules.visit_period_months },
        { "symposium", r->rules.symposium_period_months },
    };
    for (size_t i = 0; i < sizeof periods / sizeof periods[0]; i++)
        if (!nd_period_months_valid(periods[i].months))
            return ld_error_set(r->err, LD_EINVAL, "setting report.%s_period_months = %d must "
                                "be 1, 2, 3, 4, 6 or 12 (months that split a year evenly)",
                                periods[i].name, periods[i].months);
    /* a warning comes before the breach, or there would be none */
    if (r->rules.life_warn_months >= r->rules.life_breach_months)
        return ld_error_set(r->err, LD_EINVAL, "setting report.life_warn_months = %d must be "
                            "below report.life_breach_months = %d", r->rules.life_warn_months,
                            r->rules.life_breach_months);
    return 0;
}

/* --------------------------------------------------------------- people ---- */

/* Organisational life, as the rules above count it. */
static const char *const life_kinds[] = {
    "meeting", "committee", "group", "theme-day", "lecture", "life-meeting", "appraisal",
};

/* The orgs pass: every org (deleted ones too, for their names), sorted by id. */
static int load_orgs(report_t *r)
{
    sqlite3_stmt *st = NULL;
    int rc = nd_rp_prepare_query(r, Q_ORGS, &st);
    if (rc)
        return rc;
    int step = SQLITE_DONE;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (r->norgs == r->orgs_cap) {
            size_t cap = r->orgs_cap ? r->orgs_cap * 2 : 64;
            org_t *grown = realloc(r->orgs, cap * sizeof *grown);
            if (!grown) {
                rc = nd_rp_fail_nomem(r);
                goto out;
            }
            r->orgs = grown;
            r->orgs_cap = cap;
        }
        org_t *o = &r->orgs[r->norgs++];
        memset(o, 0, sizeof *o);
        for (int k = 0; k < ND_LIFE_RULES; k++)
            o->life[k].latest = NO_DAY;
        o->id = nd_rp_col_dup(st, 0);
        o->name = nd_rp_col_dup(st, 1);
        /* a deleted org keeps its name here but counts as no kind of branch */
        o->kind = sqlite3_column_int(st, 3) ? strdup("") : nd_rp_col_dup(st, 2);
        o->node = nd_rp_col_dup(st, 4);
        o->here = strcmp(nd_rp_col_text(st, 4), nd_store_node_id(r->store)) == 0;
        if (!o->id || !o->name || !o->kind || !o->node) {
            rc = nd_rp_fail_nomem(r);
            goto out;
        }
    }
    if (step != SQLITE_DONE)
        rc = nd_rp_fail_sql(r, nd_rp_query_name(Q_ORGS));
out:
    sqlite3_finalize(st);
    return rc;
}

static int org_cmp(const void *key, const void *elem)
{
    return strcmp(key, ((const org_t *) elem)->id);
}

/* Org `id`, or NULL when the store does not hold it. */
static org_t *find_org(const report_t *r, const char *id)
{
    return r->norgs ? bsearch(id, r->orgs, r->norgs, sizeof *r->orgs, org_cmp) : NULL;
}

/* The name of org `id`, or `id` itself when the store does not hold it. */
static const char *org_name(const report_t *r, const char *id)
{
    const org_t *o = find_org(r, id);
    return o ? o->name : id;
}

/* FNV-1a. */
static int index_people(report_t *r)
{
    size_t n = 16;
    while (n < r->npeople * 2)
        n *= 2;
    r->slots = calloc(n, sizeof *r->slots);
    if (!r->slots)
        return nd_rp_fail_nomem(r);
    r->nslots = n;
    for (size_t i = 0; i < r->npeople; i++) {
        size_t h = (size_t) ld_text_hash(r->people[i].id) & (n - 1);
        while (r->slots[h])
            h = (h + 1) & (n - 1);
        r->slots[h] = i + 1;
    }
    return 0;
}

static person_t *find_person(const report_t *r, const char *id)
{
    if (!r->nslots)
        return NULL;
    size_t h = (size_t) ld_text_hash(id) & (r->nslots - 1);
    while (r->slots[h]) {
        person_t *p = &r->people[r->slots[h] - 1];
        if (strcmp(p->id, id) == 0)
            return p;
        h = (h + 1) & (r->nslots - 1);
    }
    return NULL;
}

/* The trips pass: people, their latest trip, and whether they were out last year. */
static int load_trips(report_t *r)
{
    sqlite3_stmt *st = NULL;
    int rc = nd_rp_prepare_query(r, Q_TRIPS, &st);
    if (rc)
        return rc;
    int y, m, d;
    ld_date_split(r->as_of, &y, &m, &d);
    int32_t year_first = ld_date_join(y - 1, 1, 1), year_last = ld_date_join(y - 1, 12, 31);
    person_t *p = NULL;
    int step = SQLITE_DONE;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *member = nd_rp_col_text(st, 0);
        if (!p || strcmp(p->id, member) != 0) {
            if (r->npeople == r->people_cap) {
                size_t cap = r->people_cap ? r->people_cap * 2 : 256;
                person_t *grown = realloc(r->people, cap * sizeof *grown);
                if (!grown) {
                    rc = nd_rp_fail_nomem(r);
                    goto out;
                }
                r->people = grown;
                r->people_cap = cap;
            }
            p = &r->people[r->npeople++];
            memset(p, 0, sizeof *p);
            snprintf(p->id, sizeof p->id, "%s", member);
            snprintf(p->org, sizeof p->org, "%s", nd_rp_col_text(st, 7));
            p->female = sqlite3_column_int(st, 8) != 0;
            if (!(p->name = nd_rp_col_dup(st, 6))) {
                rc = nd_rp_fail_nomem(r);
                goto out;
            }
        }
        /* rows come in start order: the last one of a member is the latest trip */
        snprintf(p->inflow, sizeof p->inflow, "%s", nd_rp_col_text(st, 1));
        p->started = nd_rp_col_day(st, 2);
        p->reported_in = nd_rp_col_day(st, 3);
        p->ended = nd_rp_col_day(st, 4);
        p->until = nd_rp_col_day(st, 9);
        snprintf(p->status, sizeof p->status, "%s", nd_rp_col_text(st, 5));
        bool current = strcmp(p->status, "registered") == 0 ||
                       strcmp(p->status, "reported-in") == 0;
        p->mobile = p->started != NO_DAY &&
                    (current || (p->ended != NO_DAY && p->ended > r->as_of));
        if (p->started != NO_DAY && p->started <= year_last &&
            (p->ended == NO_DAY || p->ended >= year_first))
            p->out_last_year = true;
    }
    if (step != SQLITE_DONE) {
        rc = nd_rp_fail_sql(r, nd_rp_query_name(Q_TRIPS));
        goto out;
    }
    /* names last: the people array no longer moves */
    for (size_t i = 0; i < r->npeople; i++) {
        r->people[i].org_name = org_name(r, r->people[i].org);
        r->people[i].inflow_name = org_name(r, r->people[i].inflow);
        r->people[i].inflow_org = find_org(r, r->people[i].inflow);
    }
    rc = index_people(r);
out:
    sqlite3_finalize(st);
    return rc;
}

static bool is_life(const char *kind)
{
    for (size_t i = 0; i < sizeof life_kinds / sizeof life_kinds[0]; i++)
        if (strcmp(kind, life_kinds[i]) == 0)
            return true;
    return false;
}

/* Months since year 0 of the "YYYY-MM" at the start of text, or -1. */
static int32_t month_index(const char *text)
{
    int32_t m;
    char month[8];
    if (strlen(text) < 7)
        return -1;
    memcpy(month, text, 7);
    month[7] = '\0';
    return ld_month_parse(month, &m) ? m : -1;
}

/* One finding about a member, in section `sect`; `more` (may be NULL) tells apart the
 * member's findings of one duty in the sort key (a member may have several). */
static int member_finding(report_t *r, int sect, nd_level_t level, duty_t duty,
                          const person_t *p, const char *date, const char *elapsed,
                          const char *note, const char *more)
{
    const char *cells[CELLS_MAX] = { nd_level_name(level), p->name, p->org_name,
                                     p->inflow_name, nd_rp_duty_name(r, duty), date, elapsed,
                                     note };
    char key[NAME_KEY_MAX + 256];
    int n = member_key(r, key, sizeof key, p->org, p->name, p->id);
    if (more != NULL && n > 0 && (size_t) n < sizeof key)
        snprintf(key + n, sizeof key - (size_t) n, "\x1f%s", more);
    return nd_rp_add_finding(r, sect, level, duty, cells, key);
}

/* One dues entry paid too late, found during the activities pass. */
static int late_dues(report_t *r, const person_t *p, const char *month, const char *paid)
{
    int32_t covers = month_index(month), when = month_index(paid);
    if (covers < 0 || when < 0 || when - covers <= r->rules.backpay_max_months)
        return 0;
    int late = (int) (when - covers);
    char elapsed[32], note[160], more[32];
    snprintf(elapsed, sizeof elapsed, "%d个月", late);
    snprintf(note, sizeof note, "%s 的党费于 %s 补缴，迟 %d 个月（限 %d 个月）", month, paid,
             late, r->rules.backpay_max_months);
    snprintf(more, sizeof more, "%s\x1f%s", paid, month);    /* by payment, then month */
    return member_finding(r, 1, ND_LEVEL_BREACH, DUTY_BACKPAY, p, paid, elapsed, note, more);
}

/* Marks `month` (a month_index) paid for p, when it falls between the month p's latest
 * trip started in and `last`, the month of the date. */
static int mark_paid(report_t *r, person_t *p, int32_t month, int32_t last)
{
    if (p->started == NO_DAY || month > last)
        return 0;
    int32_t first = nd_month_of(p->started);
    if (month < first)
        return 0;
    if (!p->paid && !(p->paid = calloc((size_t) (last - first) + 1, 1)))
        return nd_rp_fail_nomem(r);
    if (p->paid[month - first] < UINT8_MAX)
        p->paid[month - first]++;
    return 0;
}

/* Counts an organisational-life entry of member p, dated `date` (up to the report's)
 * and written first at node `by`, to the inflow branch of p's latest trip, if that
 * branch's node wrote it (an entry the home township wrote is of its own branch's
 * life, the member home for a while) during that trip. */
static void branch_life(report_t *r, const person_t *p, const char *kind, const char *date,
                        const char *by)
{
    int k = nd_life_rule_of(kind);
    org_t *o = p->inflow_org;
    int32_t day;
    if (k < 0 || !o || strcmp(by, o->node) != 0 || !ld_date_parse(date, &day) ||
        day < p->started || (p->ended != NO_DAY && day > p->ended))
        return;
    nd_rp_periodic_entry(&o->life[k], r->life_period[k], day);
}

/* The activities pass: each live entry up to the date, folded into its member. */
static int load_activities(report_t *r)
{
    sqlite3_stmt *st = NULL;
    int rc = nd_rp_prepare_query(r, Q_ACTIVITIES, &st);
    if (rc)
        return rc;
    char window[11];   /* back-pay: paid after this day */
    ld_date_format(nd_add_months(r->as_of, -12), window);
    /* the yearly report and review owed for the last full year: an entry counts for
     * the year it is dated in, or, made in January to March, for the year before (the
     * review comes with the democratic appraisal, early in the new year) */
    int y, m, d;
    ld_date_split(r->as_of, &y, &m, &d);
    int owed = y - 1;
    int32_t as_of_month = nd_month_of(r->as_of);
    int step = SQLITE_DONE;
    while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *date = nd_rp_col_text(st, 2);
        if (strlen(date) != 10 || strcmp(date, r->as_of_text) > 0)
            continue;
        person_t *p = find_person(r, nd_rp_col_text(st, 0));
        if (!p)
            continue;
        const char *kind = nd_rp_col_text(st, 1);
        if (strcmp(date, p->last_any) > 0)
            memcpy(p->last_any, date, 11);
        if (strcmp(kind, "dues") == 0) {
            const char *month = nd_rp_col_text(st, 3);
            if (strlen(month) != 7)
                continue;
            rc = mark_paid(r, p, month_index(month), as_of_month);
            if (rc == 0 && p->mobile && strcmp(date, window) > 0)
                rc = late_dues(r, p, month, date);
        } else if (is_life(kind)) {
            if (strcmp(date, p->last_life) > 0)
                memcpy(p->last_life, date, 11);
            branch_life(r, p, kind, date, nd_rp_col_text(st, 4));
        } else if (strcmp(kind, "symposium") == 0) {
            int32_t day;
            if (ld_date_parse(date, &day))
                nd_rp_periodic_entry(&r->symposium, r->symposium_period, day);
        } else if (strcmp(kind, "report") == 0 || strcmp(kind, "review") == 0) {
            int ey = atoi(date), em = atoi(date + 5);
            if ((em <= 3 ? ey - 1 : ey) == owed)
                p->yearly[strcmp(kind, "review") == 0] = true;
        }
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = nd_rp_fail_sql(r, nd_rp_query_name(Q_ACTIVITIES));
    sqlite3_finalize(st);
    return rc;
}

/* The assessments pass: which sides assessed whom for the last full year. */
static int load_assessments(report_t *r)
{
    sqlite3_stmt *st = NULL;
    int rc = nd_rp_prepare_query(r, Q_ASSESS, &st);
    if (rc)
        return rc;
    int step = SQLITE_DONE;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        person_t *p = find_person(r, nd_rp_col_text(st, 0));
        const char *side = nd_rp_col_text(st, 1);
        if (p && strcmp(side, "outflow") == 0)
            p->assessed[0] = true;
        else if (p && strcmp(side, "inflow") == 0)
            p->assessed[1] = true;
    }
    if (step != SQLITE_DONE)
        rc = nd_rp_fail_sql(r, nd_rp_query_name(Q_ASSESS));
    sqlite3_finalize(st);
    return rc;
}

/* The months after the one p's latest trip started in, up to the last month that has
 * ended, that no dues entry paid for: how many, and the longest run of them. */
typedef struct unpaid {
    int     total;
    int     run;
    int32_t run_from;     /* month_index of the run's first month; meaningless if run 0 */
} unpaid_t;

static unpaid_t unpaid_months(const report_t *r, const person_t *p)
{
    unpaid_t u = { 0, 0, 0 };
    int32_t first = nd_month_of(p->started), this_month = nd_month_of(r->as_of);
    int run = 0;
    for (int32_t m = first + 1; m < this_month; m++) {
        if (p->paid && p->paid[m - first]) {
            run = 0;
            continue;
        }
        u.total++;
        if (++run > u.run) {
            u.run = run;
            u.run_from = m - run + 1;
        }
    }
    return u;
}

/* Organisational life, dues, and silence of a mobile member. */
static int check_mobile(report_t *r, const person_t *p)
{
    const nd_rules_t *k = &r->rules;
    char elapsed[32], note[160], since[11];
    int rc = 0;
    fmt_day(p->started, since);

    int32_t last = NO_DAY;
    ld_date_parse(p->last_life, &last);
    int32_t from = last != NO_DAY ? last : p->started;
    int months = nd_months_between(from, r->as_of);
    nd_level_t level = nd_months_level(months, k->life_warn_months, k->life_breach_months);
    if (level != ND_LEVEL_OK) {
        snprintf(elapsed, sizeof elapsed, "%d个月", months);
        if (last != NO_DAY)
            snprintf(note, sizeof note, "最近一次组织生活 %s，已 %d 个月", p->last_life, months);
        else
            snprintf(note, sizeof note, "外出（%s）以来无组织生活记录，已 %d 个月", since, months);
        rc = member_finding(r, 1, level, DUTY_LIFE, p, p->last_life, elapsed, note, NULL);
    }

    unpaid_t u = unpaid_months(r, p);
    level = nd_months_level(u.run, k->life_warn_months, k->life_breach_months);
    if (rc == 0 && level != ND_LEVEL_OK) {
        char run_from[8];
        ld_month_format(u.run_from, run_from);
        snprintf(elapsed, sizeof elapsed, "%d个月", u.run);
        if (!p->paid)
            snprintf(note, sizeof note, "外出（%s）以来无党费记录，已 %d 个月", since, u.run);
        else if (u.total > u.run)
            snprintf(note, sizeof note, "%s 起连续 %d 个月未交（外出以来共 %d 个月未交）",
                     run_from, u.run, u.total);
        else
            snprintf(note, sizeof note, "%s 起连续 %d 个月未交", run_from, u.run);
        rc = member_finding(r, 1, level, DUTY_DUES, p, run_from, elapsed, note, NULL);
    }

    /* A month paid for twice: most often both branches recorded one payment before
     * they synced (each checks only its own entries), else the member paid twice. */
    int32_t first = nd_month_of(p->started), this_month = nd_month_of(r->as_of);
    for (int32_t m = first; rc == 0 && p->paid && m <= this_month; m++) {
        if (p->paid[m - first] < 2)
            continue;
        char month[8];
        ld_month_format(m, month);
        snprintf(note, sizeof note, "%s 的党费记了 %d 笔：核对后删去多记的", month,
                 p->paid[m - first]);
        rc = member_finding(r, 1, ND_LEVEL_WARNING, DUTY_DUES_TWICE, p, month, "", note, month);
    }

    last = NO_DAY;
    ld_date_parse(p->last_any, &last);
    from = last != NO_DAY ? last : p->started;
    months = nd_months_between(from, r->as_of);
    if (rc == 0 && months >= k->contact_lost_months) {
        snprintf(elapsed, sizeof elapsed, "%d个月", months);
        if (last != NO_DAY)
            snprintf(note, sizeof note, "最近一次活动记录 %s，%d 个月无任何活动记录",
                     p->last_any, months);
        else
            snprintf(note, sizeof note, "外出（%s）以来无任何活动记录，已 %d 个月", since, months);
        rc = member_finding(r, 2, ND_LEVEL_BREACH, DUTY_LOST, p, p->last_any, elapsed,
                            note, NULL);
    }
    return rc;
}

/* Every rule about members, over the people the passes above gathered. */
static int check_people(report_t *r)
{
    int y, m, d;
    ld_date_split(r->as_of, &y, &m, &d);
    char year[16];
    snprintf(year, sizeof year, "%d", y - 1);
    int rc = 0;
    for (size_t i = 0; i < r->npeople && rc == 0; i++) {
        const person_t *p = &r->people[i];
        char date[11], elapsed[32], note[160];
        if (p->mobile)
            rc = check_mobile(r, p);

        if (rc == 0 && p->out_last_year && !(p->assessed[0] && p->assessed[1])) {
            const char *missing = !p->assessed[0] && !p->assessed[1] ? "流出地和流入地"
                                : !p->assessed[0] ? "流出地" : "流入地";
            snprintf(note, sizeof note, "%d 年度缺%s考核", y - 1, missing);
            rc = member_finding(r, 2, ND_LEVEL_BREACH, DUTY_ASSESS, p, year, "", note, NULL);
        }
        if (rc == 0 && p->out_last_year && !p->yearly[0]) {
            snprintf(note, sizeof note, "%d 年度未向流出地党支部提交书面报告", y - 1);
            rc = member_finding(r, 2, ND_LEVEL_BREACH, DUTY_YEARLY_REPORT, p, year, "",
                                note, NULL);
        }
        if (rc == 0 && p->out_last_year && !p->yearly[1]) {
            snprintf(note, sizeof note, "%d 年度党员活动证未经年审（随民主评议）", y - 1);
            rc = member_finding(r, 2, ND_LEVEL_BREACH, DUTY_REVIEW, p, year, "", note, NULL);
        }

        bool waiting = strcmp(p->status, "registered") == 0 ||
                       strcmp(p->status, "reported-in") == 0;
        if (rc == 0 && waiting && p->started != NO_DAY &&
            r->as_of - p->started > r->rules.report_in_days &&
            (p->reported_in == NO_DAY || p->reported_in > r->as_of)) {
            fmt_day(p->started, date);
            snprintf(elapsed, sizeof elapsed, "%" PRId32 "天", r->as_of - p->started);
            snprintf(note, sizeof note, "外出登记 %" PRId32 " 天仍未到流入地党支部报到（限 %d 天）",
                     r->as_of - p->started, r->rules.report_in_days);
            rc = member_finding(r, 2, ND_LEVEL_BREACH, DUTY_REPORT_IN, p, date, elapsed,
                                note, NULL);
        }

        if (rc == 0 && p->mobile && p->until != NO_DAY && p->until < r->as_of) {
            fmt_day(p->until, date);
            snprintf(elapsed, sizeof elapsed, "%" PRId32 "天", r->as_of - p->until);
            snprintf(note, sizeof note, "预计外出至 %s，已过 %" PRId32 " 天未登记返回"
                     "（返回：trip end；延期：trip edit --until）", date, r->as_of - p->until);
            rc = member_finding(r, 2, ND_LEVEL_WARNING, DUTY_OVERDUE, p, date, elapsed,
                                note, NULL);
        }

        if (rc == 0 && strcmp(p->status, "lost-contact") == 0 &&
            (p->ended == NO_DAY || p->ended <= r->as_of)) {
            fmt_day(p->ended != NO_DAY ? p->ended : p->started, date);
            rc = member_finding(r, 2, ND_LEVEL_BREACH, DUTY_LOST, p, date, "",
                                "外出登记状态为失联", NULL);
        }
    }
    return rc;
}

/* ---------------------------------------------------------------- output ---- */

static int print_tables(report_t *r, nd_table_t *const *tables, const char *const *titles,
                        nd_format_t fmt, FILE *out)
{
    const nd_meta_t meta[] = { { "as_of", r->as_of_text },
                               { "node", nd_store_node_id(r->store) } };
    int rc = nd_tables_print(tables, titles, ND_RP_TABLES, fmt, "两地双管合规报告", meta, 2, out);
    if (rc == LD_ENOMEM)
        return ld_error_set(r->err, LD_ENOMEM, "report: out of memory rendering a table");
    if (rc == LD_EINVAL)
        return ld_error_set(r->err, LD_EINVAL, "report: unknown output format %d", (int) fmt);
    if (rc != 0)
        return ld_error_set(r->err, LD_EIO, "report: writing the report failed");
    return 0;
}

static void report_clear(report_t *r)
{
    for (size_t i = 0; i < r->npeople; i++) {
        free(r->people[i].name);
        free(r->people[i].paid);
    }
    free(r->people);
    free(r->slots);
    for (size_t i = 0; i < r->norgs; i++) {
        free(r->orgs[i].id);
        free(r->orgs[i].name);
        free(r->orgs[i].kind);
        free(r->orgs[i].node);
    }
    free(r->orgs);
    for (int s = 0; s < 3; s++)
        nd_rp_findings_free(&r->sect[s]);
}

static int report_init(report_t *r, nd_store_t *store, int32_t as_of, ld_error_t *err)
{
    memset(r, 0, sizeof *r);
    r->store = store;
    r->err = err;
    r->as_of = as_of;
    for (size_t s = 0; s < sizeof r->sect / sizeof r->sect[0]; s++)
        ld_arena_init(&r->sect[s].text, 64 * 1024);
    if (!store || !(r->db = nd_store_db(store)))
        return ld_error_set(err, LD_EINVAL, "report: no store");
    int y, m, d;
    ld_date_split(as_of, &y, &m, &d);
    if (y < 1900 || y > 2199)
        return ld_error_set(err, LD_EINVAL, "report: date %" PRId32 " is out of range", as_of);
    ld_date_format(as_of, r->as_of_text);
    for (int k = 0; k < ND_LIFE_RULES; k++)
        r->life_period[k] = nd_period_ended(as_of, nd_life_rules[k].months);
    int rc = load_rules(r);
    if (rc == 0)
        r->symposium_period = nd_period_ended(as_of, r->rules.symposium_period_months);
    r->symposium.latest = NO_DAY;
    return rc;
}

int nd_report_print(nd_store_t *store, int32_t as_of, nd_format_t fmt, FILE *out,
                    ld_error_t *err)
{
    report_t r;
    nd_table_t *tables[ND_RP_TABLES] = { 0 };
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
        rc = nd_rp_fail_sql(&r, "starting a read transaction");
        goto out;
    }
    rc = load_orgs(&r);
    if (!rc)
        rc = load_trips(&r);
    if (!rc)
        rc = load_activities(&r);
    if (!rc)
        rc = load_assessments(&r);
    if (!rc)
        rc = check_people(&r);
    if (!rc)
        rc = nd_rp_check_agreements(&r);
    if (!rc)
        rc = nd_rp_check_branches(&r);
    if (!rc)
        rc = nd_rp_check_township(&r);
    if (!rc)
        rc = nd_rp_load_work(&r);
    char title0[96], title1[256];
    snprintf(title0, sizeof title0, "两地双管合规报告（截至 %s）", r.as_of_text);
    snprintf(title1, sizeof title1, "一、共管协议（每%s电联一次、每%s互访一次）、"
             "流动党员座谈会（每%s一次）、年度评选与流入地党支部组织生活",
             nd_period_name(r.rules.contact_period_months),
             nd_period_name(r.rules.visit_period_months),
             nd_period_name(r.rules.symposium_period_months));
    const char *titles[ND_RP_TABLES] = {
        title0,
        title1,
        "二、流动党员：组织生活与党费",
        "三、双边考核、外出报到、逾期未归与失联",
        "四、流动党员统计",
        "五、表彰与帮扶",
        "问题汇总",
    };
    if (!rc)
        nd_rp_tables(&r, titles, tables);
    if (own_txn && sqlite3_exec(r.db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK && !rc)
        rc = nd_rp_fail_sql(&r, "ending the read transaction");
    if (rc)
        goto out;
    for (int i = 0; i < ND_RP_TABLES; i++)
        if (!tables[i]) {
            rc = err && err->code ? err->code : nd_rp_fail_nomem(&r);
            goto out;
        }
    rc = print_tables(&r, tables, titles, fmt, out);
out:
    for (int i = 0; i < ND_RP_TABLES; i++)
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
        if (asprintf(&sql, "EXPLAIN QUERY PLAN %s", nd_rp_query_sql(q)) < 0) {
            rc = nd_rp_fail_nomem(&r);
            break;
        }
        rc = nd_rp_prepare(&r, nd_rp_query_name(q), sql, &st);
        free(sql);
        if (rc)
            break;
        fprintf(out, "%s:\n", nd_rp_query_name(q));
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
            fprintf(out, "%*s%s\n", dep * 2, "", nd_rp_col_text(st, 3));
        }
        if (rc == 0 && step != SQLITE_DONE)
            rc = nd_rp_fail_sql(&r, nd_rp_query_name(q));
        sqlite3_finalize(st);
    }
    if (rc == 0 && ferror(out))
        rc = ld_error_set(err, LD_EIO, "report: writing the query plans failed");
    report_clear(&r);
    return rc;
}
