/* report_orgs.c: the compliance report's findings about organisations: pairs of branches
 * with members away and no agreement, each agreement's contacts and visits per period,
 * each inflow branch's organisational life by its timetable, and the township's own
 * duties; and the township's work, counted.  report.c has the design and gathers the
 * data these read. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "report_int.h"
#include "schema.h"

/* ---------------------------------------------------------- agreements ---- */

/* A dated reference (a contact or a visit of an agreement). */
typedef struct dated {
    char   *ref;
    int32_t day;
} dated_t;

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
    int rc = nd_rp_prepare_query(r, q, &st);
    if (rc)
        return rc;
    int step = SQLITE_DONE;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        int32_t day = nd_rp_col_day(st, 1);
        if (day == NO_DAY)
            continue;
        if (l->n == l->cap) {
            size_t cap = l->cap ? l->cap * 2 : 64;
            dated_t *grown = realloc(l->v, cap * sizeof *grown);
            if (!grown) {
                rc = nd_rp_fail_nomem(r);
                goto out;
            }
            l->v = grown;
            l->cap = cap;
        }
        if (!(l->v[l->n].ref = nd_rp_col_dup(st, 0))) {
            rc = nd_rp_fail_nomem(r);
            goto out;
        }
        l->v[l->n++].day = day;
    }
    if (step != SQLITE_DONE)
        rc = nd_rp_fail_sql(r, nd_rp_query_name(q));
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

/* The periods of one obligation (contacts per half-year, or visits per year, by
 * default). */
static int check_periods(report_t *r, const agreement_row_t *a, const dated_list_t *l,
                         duty_t duty)
{
    bool contact = duty == DUTY_CONTACT;
    int warn = contact ? r->rules.contact_warn_days : r->rules.visit_warn_days;
    int months = contact ? r->rules.contact_period_months : r->rules.visit_period_months;
    size_t first, end;
    dated_slice(l, a->id, &first, &end);
    char last[11] = "无";
    if (end > first)
        ld_date_format(l->v[end - 1].day, last);

    nd_period_t p = nd_period_of(a->signed_on, months);
    if (p.first < a->signed_on)
        p = nd_period_after(p, months);
    for (; p.first <= r->as_of && (a->until == NO_DAY || p.first <= a->until);
         p = nd_period_after(p, months)) {
        bool met = false;
        for (size_t i = first; i < end && !met; i++)
            met = l->v[i].day >= p.first && l->v[i].day <= p.last;
        nd_level_t level = nd_period_level(p, r->as_of, met, warn);
        if (level == ND_LEVEL_OK)
            continue;
        char label[32], due[11], note[160], key[512];
        nd_period_label(p, label);
        ld_date_format(p.last, due);
        const char *what = contact ? "电联" : "互访";
        if (level == ND_LEVEL_BREACH)
            snprintf(note, sizeof note, "%s无%s记录，已超期 %" PRId32 " 天", label, what,
                     r->as_of - p.last);
        else
            snprintf(note, sizeof note, "%s尚无%s记录，距截止还有 %" PRId32 " 天", label, what,
                     p.last - r->as_of);
        const char *cells[CELLS_MAX] = { nd_level_name(level), a->outflow_name,
                                         a->inflow_name, nd_rp_duty_name(r, duty), label, due,
                                         last, note };
        snprintf(key, sizeof key, "%s\x1f%s\x1f%s\x1f%s", a->outflow, a->inflow, due, a->id);
        int rc = nd_rp_add_finding(r, 0, level, duty, cells, key);
        if (rc)
            return rc;
    }
    return 0;
}

#define PAIR_KEY_MAX (2 * (LD_ID_MAX + 1))

/* "OUTFLOW\x1fINFLOW": the key of a pair of branches, into out[PAIR_KEY_MAX]. */
static void pair_key(const char *outflow, const char *inflow, char out[PAIR_KEY_MAX])
{
    snprintf(out, PAIR_KEY_MAX, "%s\x1f%s", outflow, inflow);
}

static int key_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Each pair of a home branch and an inflow branch with members away there and no
 * agreement in force on the date: one breach, since every obligation hangs off one.
 * `pairs` (sorted pair_key keys) are the pairs with one. */
static int check_unagreed(report_t *r, char **pairs, size_t npairs)
{
    typedef struct unagreed {
        const person_t *first;     /* borrowed: the first member away there */
        long            members;
    } unagreed_t;
    unagreed_t *v = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    for (size_t i = 0; i < r->npeople && rc == 0; i++) {
        const person_t *p = &r->people[i];
        char key[PAIR_KEY_MAX];
        const char *k = key;
        if (!p->mobile)
            continue;
        pair_key(p->org, p->inflow, key);
        if (npairs && bsearch(&k, pairs, npairs, sizeof *pairs, key_cmp))
            continue;
        size_t j = 0;
        while (j < n && (strcmp(v[j].first->org, p->org) != 0 ||
                         strcmp(v[j].first->inflow, p->inflow) != 0))
            j++;
        if (j == n && n == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            unagreed_t *grown = realloc(v, ncap * sizeof *grown);
            if (!grown) {
                rc = nd_rp_fail_nomem(r);
                break;
            }
            v = grown;
            cap = ncap;
        }
        if (j == n)
            v[n++] = (unagreed_t) { p, 0 };
        v[j].members++;
    }
    for (size_t j = 0; j < n && rc == 0; j++) {
        const person_t *p = v[j].first;
        char note[256], key[PAIR_KEY_MAX];
        snprintf(note, sizeof note, "%s等 %ld 名流动党员在此，两支部尚无有效的共管协议",
                 p->name, v[j].members);
        pair_key(p->org, p->inflow, key);
        const char *cells[CELLS_MAX] = { nd_level_name(ND_LEVEL_BREACH), p->org_name,
                                         p->inflow_name, nd_rp_duty_name(r, DUTY_AGREEMENT), "",
                                         "", "无", note };
        rc = nd_rp_add_finding(r, 0, ND_LEVEL_BREACH, DUTY_AGREEMENT, cells, key);
    }
    free(v);
    return rc;
}

int nd_rp_check_agreements(report_t *r)
{
    dated_list_t contacts = { 0 }, visits = { 0 };
    sqlite3_stmt *st = NULL;
    char **pairs = NULL;
    size_t npairs = 0, pairs_cap = 0;
    int rc = load_dated(r, Q_CONTACTS, &contacts);
    if (!rc)
        rc = load_dated(r, Q_VISITS, &visits);
    if (!rc)
        rc = nd_rp_prepare_query(r, Q_AGREEMENTS, &st);
    if (rc)
        goto out;
    int step = SQLITE_DONE;
    while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
        agreement_row_t a = {
            nd_rp_col_text(st, 0), nd_rp_col_text(st, 1), nd_rp_col_text(st, 2), nd_rp_col_text(st, 3),
            nd_rp_col_text(st, 4), nd_rp_col_day(st, 5), nd_rp_col_day(st, 6),
        };
        if (a.signed_on == NO_DAY)
            continue;
        rc = check_periods(r, &a, &contacts, DUTY_CONTACT);
        if (!rc)
            rc = check_periods(r, &a, &visits, DUTY_VISIT);
        if (rc || (a.until != NO_DAY && a.until < r->as_of))
            continue;
        if (npairs == pairs_cap) {
            size_t ncap = pairs_cap ? pairs_cap * 2 : 32;
            char **grown = realloc(pairs, ncap * sizeof *grown);
            if (!grown) {
                rc = nd_rp_fail_nomem(r);
                break;
            }
            pairs = grown;
            pairs_cap = ncap;
        }
        char key[PAIR_KEY_MAX];
        pair_key(a.outflow, a.inflow, key);
        if (!(pairs[npairs] = strdup(key)))
            rc = nd_rp_fail_nomem(r);
        else
            npairs++;
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = nd_rp_fail_sql(r, nd_rp_query_name(Q_AGREEMENTS));
    if (rc == 0) {
        if (npairs > 1)
            qsort(pairs, npairs, sizeof *pairs, key_cmp);
        rc = check_unagreed(r, pairs, npairs);
    }
out:
    sqlite3_finalize(st);
    dated_free(&contacts);
    dated_free(&visits);
    for (size_t i = 0; i < npairs; i++)
        free(pairs[i]);
    free(pairs);
    return rc;
}

/* ------------------------------------------------------------ periodic ---- */

void nd_rp_periodic_entry(periodic_t *t, nd_period_t per, int32_t day)
{
    if (t->latest == NO_DAY || day > t->latest)
        t->latest = day;
    t->held |= day >= per.first && day <= per.last;
}

/* The breach of a periodic obligation t not held in period `per` (one per `months`), in
 * the agreements' section: `what` it is (the duty's cell and the note's subject),
 * `outflow` and `inflow` its branch cells, `who` owes it (the note's count), `key` its
 * place after the agreements' rows. */
static int periodic_finding(report_t *r, const periodic_t *t, nd_period_t per, int months,
                            duty_t duty, const char *what, const char *outflow,
                            const char *inflow, const char *who, const char *key)
{
    char label[32], due[11], last[11] = "无", note[192];
    nd_period_label(per, label);
    ld_date_format(per.last, due);
    if (t->latest != NO_DAY)
        ld_date_format(t->latest, last);
    snprintf(note, sizeof note, "%s无%s记录（每%s一次），已超期 %" PRId32 " 天；%s %d 名",
             label, what, nd_period_name(months), r->as_of - per.last, who, t->owing);
    const char *cells[CELLS_MAX] = { nd_level_name(ND_LEVEL_BREACH), outflow, inflow, what,
                                     label, due, last, note };
    return nd_rp_add_finding(r, 0, ND_LEVEL_BREACH, duty, cells, key);
}

/* The organisational life of inflow branches.  A branch owes each kind of nd_life_rules
 * in the last period of it that has ended, when a member away there on the date had
 * left for it by that period's first day; a period with no entry of the kind, by any
 * member of the branch during the member's trip, is a breach.  Only that period is
 * looked at: the one before it is history a secretary can no longer act on. */
int nd_rp_check_branches(report_t *r)
{
    for (size_t i = 0; i < r->npeople; i++) {
        const person_t *p = &r->people[i];
        if (!p->mobile || !p->inflow_org)
            continue;
        for (int k = 0; k < ND_LIFE_RULES; k++)
            p->inflow_org->life[k].owing += p->started <= r->life_period[k].first;
    }
    int rc = 0;
    for (size_t i = 0; i < r->norgs && rc == 0; i++) {
        const org_t *o = &r->orgs[i];
        for (int k = 0; k < ND_LIFE_RULES && rc == 0; k++) {
            if (o->life[k].owing == 0 || o->life[k].held)
                continue;
            const char *kind = ld_schema_label("kind", nd_life_rules[k].kind);
            char key[256];
            /* after the agreements' rows, whose keys begin with an org id */
            snprintf(key, sizeof key, "\x7f%s\x1f%d", o->id, k);
            rc = periodic_finding(r, &o->life[k], r->life_period[k], nd_life_rules[k].months,
                                  DUTY_BRANCH_LIFE, kind ? kind : nd_life_rules[k].kind, "",
                                  o->name, "在此的流动党员", key);
        }
    }
    return rc;
}

/* The township's symposium for its mobile members (twice a year by default):
 * the last period that has ended with no entry of kind symposium for any member is a
 * breach, once a member away on the date had left by that period's first day. */
static int check_symposium(report_t *r, const org_t *town)
{
    for (size_t i = 0; i < r->npeople; i++)
        r->symposium.owing += r->people[i].mobile &&
                              r->people[i].started <= r->symposium_period.first;
    if (r->symposium.owing == 0 || r->symposium.held)
        return 0;
    char key[256];
    /* after the agreements' rows, before the branches' */
    snprintf(key, sizeof key, "\x7e%s", town->id);
    return periodic_finding(r, &r->symposium, r->symposium_period,
                            r->rules.symposium_period_months, DUTY_SYMPOSIUM,
                            nd_rp_duty_name(r, DUTY_SYMPOSIUM), town->name, "",
                            "外出的流动党员", key);
}

/* The yearly selection of honoured members (the township's work report names two,
 * 勤劳致富能手 and 遵纪守法党员), owed for the last full year once a member was away in
 * it: no honour for that year is a warning until the end of March (the selection is
 * made with the year's review), then a breach. */
static int check_selection(report_t *r, const org_t *town)
{
    int away = 0;
    for (size_t i = 0; i < r->npeople; i++)
        away += r->people[i].out_last_year;
    if (away == 0)
        return 0;
    sqlite3_stmt *st = NULL;
    int rc = nd_rp_prepare_query(r, Q_HONOURS, &st);
    if (rc)
        return rc;
    int latest = 0;
    if (sqlite3_step(st) == SQLITE_ROW)
        latest = sqlite3_column_int(st, 0);     /* 0 when there is none */
    else
        rc = nd_rp_fail_sql(r, nd_rp_query_name(Q_HONOURS));
    sqlite3_finalize(st);
    int y, m, d;
    ld_date_split(r->as_of, &y, &m, &d);
    if (rc || latest == y - 1)
        return rc;
    nd_level_t level = m <= 3 ? ND_LEVEL_WARNING : ND_LEVEL_BREACH;
    char period[32], due[11], last[32] = "无", note[256], key[256];
    snprintf(period, sizeof period, "%d年度", y - 1);
    ld_date_format(ld_date_join(y, 3, 31), due);
    if (latest > 0)
        snprintf(last, sizeof last, "%d年度", latest);
    if (level == ND_LEVEL_BREACH)
        snprintf(note, sizeof note, "%s无勤劳致富能手、遵纪守法党员评选记录（每年一次，次年"
                 "3月底前），已超期 %" PRId32 " 天；当年外出的流动党员 %d 名", period,
                 r->as_of - ld_date_join(y, 3, 31), away);
    else
        snprintf(note, sizeof note, "%s尚无勤劳致富能手、遵纪守法党员评选记录，距截止还有 %"
                 PRId32 " 天；当年外出的流动党员 %d 名", period,
                 ld_date_join(y, 3, 31) - r->as_of, away);
    const char *cells[CELLS_MAX] = { nd_level_name(level), town->name, "",
                                     nd_rp_duty_name(r, DUTY_SELECTION), period, due, last,
                                     note };
    /* after the symposium's row */
    snprintf(key, sizeof key, "\x7e%s\x1fselection", town->id);
    return nd_rp_add_finding(r, 0, level, DUTY_SELECTION, cells, key);
}

/* The township this node keeps, or NULL. */
static const org_t *township_here(const report_t *r)
{
    for (size_t i = 0; i < r->norgs; i++)
        if (r->orgs[i].here && strcmp(r->orgs[i].kind, "township") == 0)
            return &r->orgs[i];
    return NULL;
}

int nd_rp_check_township(report_t *r)
{
    const org_t *town = township_here(r);
    if (!town)
        return 0;
    int rc = check_symposium(r, town);
    if (rc == 0)
        rc = check_selection(r, town);
    return rc;
}

/* --------------------------------------------------------------- work ---- */

/* Counts the rows of query q (kind, entries, members, fen) into counts[], by the index
 * of the kind among the words of `field`; with no field, the query's one row into
 * counts[0]. */
static int load_counts(report_t *r, query_t q, const ld_field_def_t *field,
                       work_count_t *counts)
{
    sqlite3_stmt *st = NULL;
    int rc = nd_rp_prepare_query(r, q, &st);
    if (rc)
        return rc;
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        int i = field ? ld_schema_word_index(field, nd_rp_col_text(st, 0)) : 0;
        /* i < 0: not one of the words, which every change is checked against; past the
         * last counted: check_kinds refused the report before */
        if (i < 0 || i >= ND_RP_KINDS_MAX)
            continue;
        counts[i].entries = sqlite3_column_int64(st, 1);
        counts[i].members = sqlite3_column_int64(st, 2);
        counts[i].fen = sqlite3_column_int64(st, 3);
    }
    if (step != SQLITE_DONE)
        rc = nd_rp_fail_sql(r, nd_rp_query_name(q));
    sqlite3_finalize(st);
    return rc;
}

/* Whether the report can count every kind of `field` (at most ND_RP_KINDS_MAX). */
static int check_kinds(report_t *r, const ld_field_def_t *field)
{
    size_t n = 0;
    while (field->words[n] != NULL)
        n++;
    if (n > ND_RP_KINDS_MAX)
        return ld_error_set(r->err, LD_ETOOBIG, "report: %s has %zu kinds, past the %d "
                            "section five counts (ND_RP_KINDS_MAX)", field->name, n,
                            ND_RP_KINDS_MAX);
    return 0;
}

int nd_rp_load_work(report_t *r)
{
    r->keeps_township = township_here(r) != NULL;
    int rc = check_kinds(r, nd_rp_kind_field(LD_KIND_HONOUR));
    if (rc == 0)
        rc = check_kinds(r, nd_rp_kind_field(LD_KIND_SUPPORT));
    if (rc == 0)
        rc = load_counts(r, Q_WORK_HONOURS, nd_rp_kind_field(LD_KIND_HONOUR), r->honoured);
    if (rc == 0)
        rc = load_counts(r, Q_WORK_SUPPORTS, nd_rp_kind_field(LD_KIND_SUPPORT), r->helped);
    if (rc == 0)
        rc = load_counts(r, Q_WORK_TRAINED, NULL, &r->trained);
    return rc;
}
