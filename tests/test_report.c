/* test_report.c: the compliance report on the seed township, checked against values
 * computed by hand from the fixture's own lists; and each rule at its boundaries. */
#include <criterion/criterion.h>

#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "collate.h"
#include "output.h"
#include "report.h"
#include "rules.h"
#include "seed_township.h"
#include "text.h"

/* ------------------------------------------------ a small JSON reader ---- */

/* Enough JSON for the report's own document: objects, arrays, strings, null. */
typedef enum { J_NULL, J_STR, J_ARR, J_OBJ } jtype_t;

typedef struct jval {
    jtype_t       type;
    char         *str;      /* J_STR */
    size_t        n;        /* J_ARR, J_OBJ: items */
    char        **keys;     /* J_OBJ */
    struct jval **items;
} jval_t;

static void jfree(jval_t *v)
{
    if (!v)
        return;
    for (size_t i = 0; i < v->n; i++) {
        if (v->keys)
            free(v->keys[i]);
        jfree(v->items[i]);
    }
    free(v->keys);
    free(v->items);
    free(v->str);
    free(v);
}

static void jskip(const char **p)
{
    while (**p == ' ' || **p == '\n' || **p == '\r' || **p == '\t')
        (*p)++;
}

static char *jstring(const char **p)
{
    cr_assert_eq(**p, '"', "a JSON string expected at '%.20s'", *p);
    (*p)++;
    size_t cap = 64, n = 0;
    char *out = malloc(cap);
    while (**p != '"') {
        cr_assert(**p != '\0', "unterminated JSON string");
        if (n + 8 > cap)
            out = realloc(out, cap *= 2);
        if (**p == '\\') {
            (*p)++;
            char c = **p;
            if (c == 'u') {
                unsigned code = 0;
                cr_assert_eq(sscanf(*p + 1, "%4x", &code), 1);
                cr_assert(code < 0x80, "the report escapes only ASCII controls");
                out[n++] = (char) code;
                *p += 5;
                continue;
            }
            cr_assert(c == '"' || c == '\\' || c == '/', "unexpected escape \\%c", c);
            out[n++] = c;
            (*p)++;
        } else {
            cr_assert((unsigned char) **p >= 0x20, "a raw control character in JSON");
            out[n++] = *(*p)++;
        }
    }
    (*p)++;
    out[n] = '\0';
    return out;
}

static jval_t *jparse(const char **p)
{
    jskip(p);
    jval_t *v = calloc(1, sizeof *v);
    if (**p == '"') {
        v->type = J_STR;
        v->str = jstring(p);
    } else if (strncmp(*p, "null", 4) == 0) {
        v->type = J_NULL;
        *p += 4;
    } else if (**p == '[' || **p == '{') {
        bool obj = **p == '{';
        char close = obj ? '}' : ']';
        v->type = obj ? J_OBJ : J_ARR;
        (*p)++;
        jskip(p);
        while (**p != close) {
            v->items = realloc(v->items, (v->n + 1) * sizeof *v->items);
            if (obj) {
                v->keys = realloc(v->keys, (v->n + 1) * sizeof *v->keys);
                jskip(p);
                v->keys[v->n] = jstring(p);
                jskip(p);
                cr_assert_eq(**p, ':');
                (*p)++;
            }
            v->items[v->n++] = jparse(p);
            jskip(p);
            if (**p == ',') {
                (*p)++;
                jskip(p);
                cr_assert(**p != close, "a trailing comma in JSON");
            } else
                cr_assert_eq(**p, close, "',' or '%c' expected at '%.20s'", close, *p);
        }
        (*p)++;
    } else
        cr_assert_fail("unexpected JSON at '%.20s'", *p);
    return v;
}

static const jval_t *jget(const jval_t *obj, const char *key)
{
    cr_assert_eq(obj->type, J_OBJ);
    for (size_t i = 0; i < obj->n; i++)
        if (strcmp(obj->keys[i], key) == 0)
            return obj->items[i];
    cr_assert_fail("no key '%s'", key);
    return NULL;
}

static const char *jstr(const jval_t *obj, const char *key)
{
    const jval_t *v = jget(obj, key);
    cr_assert_eq(v->type, J_STR, "'%s' is not a string", key);
    return v->str;
}

/* ----------------------------------------------------------- fixtures ---- */

static seed_township_t *town;
static jval_t *doc;
static char *text;

static void setup(void)
{
    town = calloc(1, sizeof *town);
    cr_assert_not_null(town);
}

static void teardown(void)
{
    jfree(doc);
    doc = NULL;
    free(text);
    text = NULL;
    if (town)
        seed_township_close(town);
    free(town);
    town = NULL;
}

TestSuite(report, .init = setup, .fini = teardown);
TestSuite(rules);

static int32_t day(const char *text_date)
{
    int32_t d;
    cr_assert(ld_date_parse(text_date, &d), "bad date %s", text_date);
    return d;
}

static void build_town(bool with_year)
{
    ld_error_t err = { 0 };
    int rc = seed_township_open(town, &err);
    cr_assert_eq(rc, 0, "seed township: %s", err.msg);
    cr_assert_eq(town->nmembers, 151);
    if (with_year) {
        rc = seed_township_year(town, &err);
        cr_assert_eq(rc, 0, "seed year: %s", err.msg);
    }
}

/* The report as of `date` in `fmt`, kept in `text` (freed by teardown). */
static const char *report_text(nd_store_t *store, const char *date, nd_format_t fmt)
{
    ld_error_t err = { 0 };
    size_t len = 0;
    free(text);
    text = NULL;
    FILE *f = open_memstream(&text, &len);
    cr_assert_not_null(f);
    int rc = nd_report_print(store, day(date), fmt, f, &err);
    cr_assert_eq(fclose(f), 0);
    cr_assert_eq(rc, 0, "report: %s", err.msg);
    return text;
}

/* The report as of `date`, parsed (kept in `doc`). */
static const jval_t *report_json(nd_store_t *store, const char *date)
{
    const char *p = report_text(store, date, ND_FMT_JSON);
    jfree(doc);
    doc = jparse(&p);
    jskip(&p);
    cr_assert_eq(*p, '\0', "trailing bytes after the JSON document");
    cr_assert_str_eq(jstr(doc, "as_of"), date);
    const jval_t *tables = jget(doc, "tables");
    cr_assert_eq(tables->type, J_ARR);
    cr_assert_eq(tables->n, 7, "seven tables: parameters, three sections, totals, work, counts");
    return doc;
}

static const jval_t *table(int i)
{
    const jval_t *rows = jget(jget(doc, "tables")->items[i], "rows");
    cr_assert_eq(rows->type, J_ARR);
    return rows;
}

/* The rows of the agreements' table that are about an agreement, checking the others'
 * shape: the township's symposium and yearly selection name no inflow branch, an inflow
 * branch's own organisational life no outflow branch. */
static size_t agreement_rows(const jval_t *rows)
{
    size_t n = 0;
    for (size_t i = 0; i < rows->n; i++) {
        const jval_t *x = rows->items[i];
        const char *duty = jstr(x, "duty");
        if (jstr(x, "inflow")[0] == '\0') {
            cr_assert(strcmp(duty, "流动党员座谈会") == 0 || strcmp(duty, "年度评选") == 0,
                      "a row with no inflow branch is about %s", duty);
            cr_assert_str_eq(jstr(x, "outflow"), "竹园镇党委");
            continue;
        }
        if (jstr(x, "outflow")[0] != '\0') {
            n++;
            continue;
        }
        cr_assert(strcmp(duty, "主题党日") == 0 || strcmp(duty, "支委会") == 0 ||
                  strcmp(duty, "党小组会") == 0 || strcmp(duty, "党员大会") == 0 ||
                  strcmp(duty, "组织生活会") == 0 || strcmp(duty, "民主评议") == 0,
                  "a row with no outflow branch is about %s", duty);
        cr_assert_str_eq(jstr(x, "level"), "超期");
    }
    return n;
}

/* A list of names, to compare what the report says with what the test expects. */
typedef struct names {
    const char *v[SEED_MEMBERS_MAX * 2];
    size_t      n;
} names_t;

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *) a, *(const char *const *) b);
}

/* The `member` column of table t's rows with this duty and level. */
static void found(int t, const char *duty, const char *level, names_t *out)
{
    const jval_t *rows = table(t);
    out->n = 0;
    for (size_t i = 0; i < rows->n; i++)
        if (strcmp(jstr(rows->items[i], "duty"), duty) == 0 &&
            strcmp(jstr(rows->items[i], "level"), level) == 0)
            out->v[out->n++] = jstr(rows->items[i], "member");
}

static void same_names(names_t *got, names_t *want, const char *what)
{
    qsort(got->v, got->n, sizeof got->v[0], name_cmp);
    qsort(want->v, want->n, sizeof want->v[0], name_cmp);
    for (size_t i = 0; i < got->n && i < want->n; i++)
        cr_assert_str_eq(got->v[i], want->v[i], "%s: the %zu-th name differs", what, i);
    cr_assert_eq(got->n, want->n, "%s: %zu found, %zu expected", what, got->n, want->n);
}

/* The row of table t for this member and duty, or NULL. */
static const jval_t *row_of(int t, const char *member, const char *duty)
{
    const jval_t *rows = table(t);
    for (size_t i = 0; i < rows->n; i++)
        if (strcmp(jstr(rows->items[i], "member"), member) == 0 &&
            strcmp(jstr(rows->items[i], "duty"), duty) == 0)
            return rows->items[i];
    return NULL;
}

/* Whether seed member m is mobile (a current trip) on day d, by the fixture's rules:
 * every trip started in early 2010; the lost ones ended on 2010-10-01. */
static bool mobile_on(const seed_member_t *m, int32_t d)
{
    if (m->started > d)
        return false;
    return !seed_is_lost(m->index) || d < day("2010-10-01");
}

static const char *org_name(const char *id)
{
    const seed_org_t *o = seed_township_org(town, id);
    cr_assert_not_null(o, "no org %s", id);
    return o->name;
}

/* The count cell of the totals table for (group, org name). */
static long total_of(const char *group, const char *org, const char *key)
{
    const jval_t *rows = table(4);
    for (size_t i = 0; i < rows->n; i++)
        if (strcmp(jstr(rows->items[i], "group"), group) == 0 &&
            strcmp(jstr(rows->items[i], "org"), org) == 0)
            return atol(jstr(rows->items[i], key));
    cr_assert_fail("no totals row %s %s", group, org);
    return -1;
}

/* --------------------------------------------- the seed township report ---- */

Test(report, the_totals_count_151_mobile_members_13_women_as_the_seed_does)
{
    build_town(false);
    report_json(town->store, "2010-05-31");
    long dongguan = 0, shenzhen = 0, women = 0;
    for (size_t i = 0; i < town->nmembers; i++) {
        const seed_member_t *m = &town->members[i];
        dongguan += strcmp(m->inflow, "dongguan") == 0;
        shenzhen += strcmp(m->inflow, "shenzhen") == 0;
        women += m->female;
    }
    cr_assert_eq(dongguan + shenzhen, 151);
    cr_assert_eq(women, 13);
    cr_assert_eq(total_of("全镇", "竹园镇党委", "mobile"), 151);
    cr_assert_eq(total_of("全镇", "竹园镇党委", "women"), 13);
    cr_assert_eq(total_of("流入地", org_name("dongguan"), "mobile"), dongguan);
    cr_assert_eq(total_of("流入地", org_name("shenzhen"), "mobile"), shenzhen);
    cr_assert_eq(total_of("流入地", "中共竹园镇外出创业群体广东东莞支部委员会", "mobile"), 123);
    cr_assert_eq(total_of("流入地", "中共竹园镇外出创业群体广东深圳支部委员会", "mobile"), 28);

    /* every outflow branch, by the fixture's member list */
    size_t outflow_rows = 0;
    for (size_t o = 0; o < town->norgs; o++) {
        const seed_org_t *org = &town->orgs[o];
        if (strcmp(org->kind, "village") && strcmp(org->kind, "community"))
            continue;
        long n = 0, w = 0;
        for (size_t i = 0; i < town->nmembers; i++)
            if (strcmp(town->members[i].org, org->id) == 0) {
                n++;
                w += town->members[i].female;
            }
        cr_assert_eq(total_of("流出地", org->name, "mobile"), n, "%s", org->name);
        cr_assert_eq(total_of("流出地", org->name, "women"), w, "%s", org->name);
        outflow_rows++;
    }
    cr_assert_eq(outflow_rows, 18, "15 villages and 3 communities");
    cr_assert_eq(total_of("流出地", "龙潭村党支部", "mobile"), 12);
}

Test(report, in_mid_december_warnings_come_before_the_half_year_and_year_end)
{
    build_town(true);
    int32_t d = day("2010-12-15");
    report_json(town->store, "2010-12-15");
    names_t got, want;

    /* organisational life: 2010-06-10 is 6 months back (breach), 2010-07-10 five */
    want.n = 0;
    for (size_t i = 0; i < town->nmembers; i++) {
        const seed_member_t *m = &town->members[i];
        if (mobile_on(m, d) && (seed_last_life_month(m->index) == 6 || seed_is_silent(m->index)))
            want.v[want.n++] = m->name;
    }
    found(2, "组织生活", "超期", &got);
    same_names(&got, &want, "life breaches");
    want.n = 0;
    for (size_t i = 0; i < town->nmembers; i++) {
        const seed_member_t *m = &town->members[i];
        if (mobile_on(m, d) && seed_last_life_month(m->index) == 7)
            want.v[want.n++] = m->name;
    }
    cr_assert(want.n > 0);
    found(2, "组织生活", "预警", &got);
    same_names(&got, &want, "life warnings");

    /* dues: silent members never paid since they left in the first quarter; paid through
     * June leaves July to November unpaid, five months (December is under way); August
     * on, paid only in January (after the date), leaves four */
    want.n = 0;
    for (size_t i = 0; i < town->nmembers; i++) {
        const seed_member_t *m = &town->members[i];
        if (mobile_on(m, d) && seed_is_silent(m->index))
            want.v[want.n++] = m->name;
    }
    found(2, "党费", "超期", &got);
    same_names(&got, &want, "dues breaches");
    want.n = 0;
    for (size_t i = 0; i < town->nmembers; i++) {
        const seed_member_t *m = &town->members[i];
        if (mobile_on(m, d) && seed_last_dues_month(m->index) == 6)
            want.v[want.n++] = m->name;
    }
    cr_assert(want.n > 0);
    found(2, "党费", "预警", &got);
    same_names(&got, &want, "dues warnings");
    for (size_t i = 0; i < town->nmembers; i++)
        if (mobile_on(&town->members[i], d) && seed_dues_paid_late(town->members[i].index))
            cr_assert_null(row_of(2, town->members[i].name, "党费"));

    /* back-pay: January paid in August is 7 months (over 6); February is exactly 6 */
    want.n = 0;
    for (size_t i = 0; i < town->nmembers; i++)
        if (seed_backpay_month(town->members[i].index) == 1)
            want.v[want.n++] = town->members[i].name;
    found(2, "补缴党费", "超期", &got);
    same_names(&got, &want, "back-pay");

    /* a row a secretary can act on: names, branches, dates */
    const seed_member_t *m3 = &town->members[3];
    cr_assert_eq(seed_last_life_month(3), 6);
    const jval_t *row = row_of(2, m3->name, "组织生活");
    cr_assert_not_null(row);
    cr_assert_str_eq(jstr(row, "level"), "超期");
    cr_assert_str_eq(jstr(row, "org"), org_name(m3->org));
    cr_assert_str_eq(jstr(row, "inflow"), org_name(m3->inflow));
    cr_assert_str_eq(jstr(row, "date"), "2010-06-10");
    cr_assert_str_eq(jstr(row, "elapsed"), "6个月");
    const seed_member_t *m5 = &town->members[5];
    cr_assert_eq(seed_last_dues_month(5), 6);
    row = row_of(2, m5->name, "党费");
    cr_assert_not_null(row);
    cr_assert_str_eq(jstr(row, "date"), "2010-07");
    cr_assert_str_eq(jstr(row, "elapsed"), "5个月");

    /* agreements: H1 ended without contact (breach, Dongguan only: the Shenzhen ones
     * were signed in January, so their first half-year is H2); H2 and the year end
     * within 30 and 60 days: warnings */
    const jval_t *rows = table(1);
    size_t want_rows = 0;
    for (size_t j = 0; j < town->nagreements; j++) {
        const seed_agreement_t *a = &town->agreements[j];
        bool dg = strcmp(a->inflow, "dongguan") == 0;
        want_rows += dg && !seed_agreement_contact(a->index, false);
        want_rows += !seed_agreement_contact(a->index, true);
        want_rows += dg && !seed_agreement_visit(a->index);
    }
    cr_assert_eq(agreement_rows(rows), want_rows);
    for (size_t j = 0; j < town->nagreements; j++) {
        const seed_agreement_t *a = &town->agreements[j];
        bool dg = strcmp(a->inflow, "dongguan") == 0;
        size_t h1 = 0, h2 = 0, visit = 0;
        for (size_t r = 0; r < rows->n; r++) {
            const jval_t *x = rows->items[r];
            if (strcmp(jstr(x, "outflow"), org_name(a->outflow)) ||
                strcmp(jstr(x, "inflow"), org_name(a->inflow)))
                continue;
            if (strcmp(jstr(x, "period"), "2010年上半年") == 0) {
                h1++;
                cr_assert_str_eq(jstr(x, "level"), "超期");
                cr_assert_str_eq(jstr(x, "due"), "2010-06-30");
            } else if (strcmp(jstr(x, "period"), "2010年下半年") == 0) {
                h2++;
                cr_assert_str_eq(jstr(x, "level"), "预警");
                cr_assert_str_eq(jstr(x, "duty"), "半年电联");
            } else if (strcmp(jstr(x, "period"), "2010年") == 0) {
                visit++;
                cr_assert_str_eq(jstr(x, "level"), "预警");
                cr_assert_str_eq(jstr(x, "duty"), "年度互访");
            }
        }
        cr_assert_eq(h1, dg && !seed_agreement_contact(a->index, false), "agreement %zu H1", j);
        cr_assert_eq(h2, !seed_agreement_contact(a->index, true), "agreement %zu H2", j);
        cr_assert_eq(visit, dg && !seed_agreement_visit(a->index), "agreement %zu visit", j);
    }

    /* trips never reported in; lost members (by status and by silence) */
    want.n = 0;
    for (size_t i = 0; i < town->nmembers; i++)
        if (seed_never_reported(town->members[i].index))
            want.v[want.n++] = town->members[i].name;
    found(3, "外出报到", "超期", &got);
    same_names(&got, &want, "not reported in");
    want.n = 0;
    for (size_t i = 0; i < town->nmembers; i++)
        if (seed_is_lost(town->members[i].index) || seed_is_silent(town->members[i].index))
            want.v[want.n++] = town->members[i].name;
    found(3, "失联", "超期", &got);
    same_names(&got, &want, "out of contact");
    found(3, "双边考核", "超期", &got);
    cr_assert_eq(got.n, 0, "nobody was mobile during 2009");

    /* totals: the three lost members are no longer counted */
    cr_assert_eq(total_of("全镇", "竹园镇党委", "mobile"), 148);
    cr_assert_eq(total_of("全镇", "竹园镇党委", "women"), 13);
}

Test(report, in_january_the_ended_periods_are_breaches_and_2010_assessments_are_due)
{
    build_town(true);
    int32_t d = day("2011-01-20");
    report_json(town->store, "2011-01-20");
    names_t got, want;

    want.n = 0;
    for (size_t i = 0; i < town->nmembers; i++) {
        const seed_member_t *m = &town->members[i];
        int last = seed_last_life_month(m->index);
        if (mobile_on(m, d) && (last == 6 || last == 7 || last == 0))
            want.v[want.n++] = m->name;
    }
    found(2, "组织生活", "超期", &got);
    same_names(&got, &want, "life breaches");
    found(2, "组织生活", "预警", &got);
    cr_assert_eq(got.n, 0);

    /* the dues paid on 2011-01-05 now cover December */
    want.n = 0;
    for (size_t i = 0; i < town->nmembers; i++) {
        const seed_member_t *m = &town->members[i];
        int last = seed_last_dues_month(m->index);
        if (mobile_on(m, d) && (last == 6 || last == 0))
            want.v[want.n++] = m->name;
    }
    found(2, "党费", "超期", &got);
    same_names(&got, &want, "dues breaches");
    found(2, "党费", "预警", &got);
    cr_assert_eq(got.n, 0);

    /* assessments of 2010, for everyone mobile during 2010 (all 151) */
    want.n = 0;
    for (size_t i = 0; i < town->nmembers; i++) {
        int k = town->members[i].index;
        if (!seed_has_assessment(k, true) || !seed_has_assessment(k, false))
            want.v[want.n++] = town->members[i].name;
    }
    found(3, "双边考核", "超期", &got);
    same_names(&got, &want, "assessments");
    const jval_t *row = row_of(3, town->members[4].name, "双边考核");
    cr_assert_not_null(row);
    cr_assert_str_eq(jstr(row, "note"), "2010 年度缺流入地考核");
    cr_assert_eq(58 % 9, 4);
    cr_assert_eq(58 % 13, 6);
    row = row_of(3, town->members[58].name, "双边考核");
    cr_assert_not_null(row);
    cr_assert_str_eq(jstr(row, "note"), "2010 年度缺流出地和流入地考核");

    /* the member's written report for 2010 and the certificate's review, which may come
     * in the new year */
    want.n = 0;
    for (size_t i = 0; i < town->nmembers; i++)
        if (!seed_has_yearly_report(town->members[i].index))
            want.v[want.n++] = town->members[i].name;
    cr_assert(want.n > 0);
    found(3, "年度书面报告", "超期", &got);
    same_names(&got, &want, "yearly reports");
    want.n = 0;
    for (size_t i = 0; i < town->nmembers; i++)
        if (!seed_has_review(town->members[i].index))
            want.v[want.n++] = town->members[i].name;
    found(3, "活动证年审", "超期", &got);
    same_names(&got, &want, "reviews");
    row = row_of(3, town->members[2].name, "年度书面报告");
    cr_assert_not_null(row);
    cr_assert_str_eq(jstr(row, "note"), "2010 年度未向流出地党支部提交书面报告");

    /* agreements: every missed period of 2010 is now a breach */
    const jval_t *rows = table(1);
    size_t want_rows = 0;
    for (size_t j = 0; j < town->nagreements; j++) {
        const seed_agreement_t *a = &town->agreements[j];
        bool dg = strcmp(a->inflow, "dongguan") == 0;
        want_rows += dg && !seed_agreement_contact(a->index, false);
        want_rows += !seed_agreement_contact(a->index, true);
        want_rows += dg && !seed_agreement_visit(a->index);
    }
    cr_assert_eq(agreement_rows(rows), want_rows);
    for (size_t r = 0; r < rows->n; r++)   /* the selection is due by the end of March */
        cr_assert_str_eq(jstr(rows->items[r], "level"),
                         strcmp(jstr(rows->items[r], "duty"), "年度评选") == 0 ? "预警" : "超期");

    /* the counts table agrees with the sections */
    const jval_t *counts = table(6);
    long sum = 0;
    for (size_t i = 0; i < counts->n; i++)
        sum += atol(jstr(counts->items[i], "breaches")) + atol(jstr(counts->items[i], "warnings"));
    cr_assert_eq((size_t) sum, table(1)->n + table(2)->n + table(3)->n);
}

Test(report, breaches_are_listed_before_warnings_and_each_format_holds_every_section)
{
    build_town(true);
    report_json(town->store, "2010-12-15");
    const jval_t *rows = table(2);
    bool seen_warning = false;
    for (size_t i = 0; i < rows->n; i++) {
        bool warning = strcmp(jstr(rows->items[i], "level"), "预警") == 0;
        cr_assert(!(seen_warning && !warning), "a breach after a warning at row %zu", i);
        seen_warning |= warning;
    }
    cr_assert(seen_warning);

    /* within a level and a branch, members go by pinyin, which here is not code point
     * order (a member's several rows may follow one another) */
    nd_collate_t *coll = nd_store_collate(town->store);
    size_t not_code_point = 0;
    for (size_t i = 1; i < rows->n; i++) {
        const jval_t *a = rows->items[i - 1], *b = rows->items[i];
        if (strcmp(jstr(a, "level"), jstr(b, "level")) || strcmp(jstr(a, "org"), jstr(b, "org")))
            continue;
        const char *x = jstr(a, "member"), *y = jstr(b, "member");
        cr_assert_leq(nd_collate_cmp(coll, x, strlen(x), y, strlen(y)), 0, "%s before %s", x, y);
        not_code_point += strcmp(x, y) > 0;
    }
    cr_assert_gt(not_code_point, 0);

    const char *csv = report_text(town->store, "2010-12-15", ND_FMT_CSV);
    cr_assert(strncmp(csv, "\xef\xbb\xbf", 3) == 0);
    cr_assert_null(strstr(csv + 3, "\xef\xbb\xbf"), "one BOM for the whole file");
    cr_assert_not_null(strstr(csv, "\r\n一、共管协议（每半年电联一次、每年互访一次）、流动党员座谈会（每半年一次）、年度评选与流入地党支部组织生活\r\n"
                                   "level,outflow,inflow,duty,period,due,last,note\r\n"));
    cr_assert_not_null(strstr(csv, "\r\n四、流动党员统计\r\ngroup,org,mobile,women\r\n"));

    const char *html = report_text(town->store, "2010-12-15", ND_FMT_HTML);
    cr_assert(strncmp(html, "<!doctype html>\n", 16) == 0);
    size_t ntables = 0, ndoctypes = 0;
    for (const char *p = html; (p = strstr(p, "<table>")); p++)
        ntables++;
    for (const char *p = html; (p = strstr(p, "<!doctype")); p++)
        ndoctypes++;
    cr_assert_eq(ntables, 7);
    cr_assert_eq(ndoctypes, 1);
    cr_assert_not_null(strstr(html, "<title>两地双管合规报告（截至 2010-12-15）</title>"));
    cr_assert_not_null(strstr(html, "<h2>三、双边考核、外出报到、逾期未归与失联</h2>"));
    size_t len = strlen(html);
    cr_assert(strcmp(html + len - 16, "</body>\n</html>\n") == 0);

    const char *tab = report_text(town->store, "2010-12-15", ND_FMT_TABLE);
    cr_assert_not_null(strstr(tab, "二、流动党员：组织生活与党费\n级别"));
    cr_assert_not_null(strstr(tab, "\n四、流动党员统计\n"));
}

/* Asserts that a row's cells are as given: pairs of key and value, ended by NULL. */
static void row_is(const jval_t *row, ...)
{
    cr_assert_not_null(row);
    va_list ap;
    va_start(ap, row);
    for (const char *key; (key = va_arg(ap, const char *)) != NULL;) {
        const char *want = va_arg(ap, const char *);
        cr_assert_str_eq(jstr(row, key), want, "%s", key);
    }
    va_end(ap);
}

/* The report as of `date` thrown away: its status, with err set when it fails. */
static int report_to_nowhere(const char *date, ld_error_t *err)
{
    FILE *null = fopen("/dev/null", "w");
    cr_assert_not_null(null);
    int rc = nd_report_print(town->store, day(date), ND_FMT_TABLE, null, err);
    fclose(null);
    return rc;
}

/* ------------------------------------------- one member, rules at edges ---- */

/* A store with the home village, the Dongguan branch, one member who left on
 * `started` and one agreement signed on `signed_on`.  Ids into member_id, agreement_id. */
static char member_id[LD_UUID_LEN + 1], trip_id[LD_UUID_LEN + 1], agreement_id[LD_UUID_LEN + 1];

static void small_store(const char *started, const char *signed_on)
{
    ld_error_t err = { 0 };
    const char *tmp = getenv("TMPDIR");
    snprintf(town->dir, sizeof town->dir, "%s/liangdi-report-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    cr_assert_not_null(mkdtemp(town->dir));
    snprintf(town->db_path, sizeof town->db_path, "%s/t.db", town->dir);
    town->store = nd_store_open(town->db_path, true, &err);
    cr_assert_not_null(town->store, "%s", err.msg);
    nd_store_t *s = town->store;
    cr_assert_eq(nd_store_init_node(s, "zhuyuan", "竹园镇党委", &err), 0, "%s", err.msg);
    cr_assert_eq(seed_write(s, LD_KIND_ORG, "zhuyuan", NULL, &err, "name", "竹园镇党委",
                            "kind", "township", "node", "zhuyuan", NULL), 0, "%s", err.msg);
    cr_assert_eq(seed_write(s, LD_KIND_ORG, "longtan", NULL, &err, "name", "龙潭村党支部",
                            "kind", "village", "parent", "zhuyuan", "node", "zhuyuan", NULL), 0,
                 "%s", err.msg);
    cr_assert_eq(seed_write(s, LD_KIND_ORG, "dongguan", NULL, &err, "name", "东莞支部",
                            "kind", "mobile", "parent", "zhuyuan", "node", "dongguan", NULL), 0,
                 "%s", err.msg);
    cr_assert_eq(seed_write(s, LD_KIND_MEMBER, "", member_id, &err, "name", "林术平",
                            "org", "longtan", "gender", "male", NULL), 0, "%s", err.msg);
    cr_assert_eq(seed_write(s, LD_KIND_TRIP, "", trip_id, &err, "member", member_id,
                            "to", "dongguan", "started", started, "status", "registered",
                            NULL), 0, "%s", err.msg);
    cr_assert_eq(seed_write(s, LD_KIND_AGREEMENT, "", agreement_id, &err, "outflow", "longtan",
                            "inflow", "dongguan", "signed", signed_on, NULL), 0, "%s", err.msg);
}

static void activity(const char *date, const char *kind, const char *month, char *id_out)
{
    ld_error_t err = { 0 };
    cr_assert_eq(seed_write(town->store, LD_KIND_ACTIVITY, "", id_out, &err, "member", member_id,
                            "date", date, "kind", kind, "month", month,
                            "amount", month ? "100" : NULL, NULL), 0, "%s", err.msg);
}

/* The level of the single finding of `duty` in table t as of `date`: "" if none. */
static const char *level_on(const char *date, int t, const char *duty)
{
    report_json(town->store, date);
    const jval_t *rows = table(t);
    const char *level = "";
    for (size_t i = 0; i < rows->n; i++)
        if (strcmp(jstr(rows->items[i], "duty"), duty) == 0) {
            cr_assert_str_eq(level, "", "two %s findings", duty);
            level = jstr(rows->items[i], "level");
        }
    return level;
}

/* The number of agreement findings for a period label. */
static size_t period_rows(const char *date, const char *period, const char *duty,
                          const char *level)
{
    report_json(town->store, date);
    const jval_t *rows = table(1);
    size_t n = 0;
    for (size_t i = 0; i < rows->n; i++)
        n += strcmp(jstr(rows->items[i], "period"), period) == 0 &&
             strcmp(jstr(rows->items[i], "duty"), duty) == 0 &&
             strcmp(jstr(rows->items[i], "level"), level) == 0;
    return n;
}

Test(report, five_whole_months_without_life_warn_and_six_breach_across_a_leap_february)
{
    small_store("2011-03-01", "2011-01-01");
    activity("2011-08-31", "meeting", NULL, NULL);
    activity("2012-03-15", "study", NULL, NULL);     /* not organisational life */
    cr_assert_str_eq(level_on("2012-01-30", 2, "组织生活"), "");
    cr_assert_str_eq(level_on("2012-01-31", 2, "组织生活"), "预警");
    cr_assert_str_eq(level_on("2012-02-28", 2, "组织生活"), "预警");
    cr_assert_str_eq(level_on("2012-02-29", 2, "组织生活"), "超期");
}

Test(report, without_any_life_the_months_count_from_the_trip_start)
{
    small_store("2011-03-31", "2011-01-01");
    cr_assert_str_eq(level_on("2011-08-30", 2, "组织生活"), "");
    cr_assert_str_eq(level_on("2011-08-31", 2, "组织生活"), "预警");
    cr_assert_str_eq(level_on("2011-09-30", 2, "组织生活"), "超期");
}

Test(report, dues_count_the_ended_months_left_unpaid_one_by_one)
{
    small_store("2011-01-10", "2011-01-01");
    activity("2011-02-10", "dues", "2011-02", NULL);
    activity("2011-09-05", "dues", "2011-03", NULL);    /* back-paid 6 months late: allowed */
    /* January is the month the trip began; March to June is four months */
    cr_assert_str_eq(level_on("2011-07-31", 2, "党费"), "");
    cr_assert_str_eq(level_on("2011-08-01", 2, "党费"), "预警");     /* March to July: 5 */
    cr_assert_str_eq(level_on("2011-08-31", 2, "党费"), "预警", "August is still under way");
    cr_assert_str_eq(level_on("2011-09-01", 2, "党费"), "超期");     /* March to August: 6 */
    cr_assert_str_eq(level_on("2011-09-05", 2, "党费"), "预警");     /* April to August: 5 */
    cr_assert_str_eq(level_on("2011-09-05", 2, "补缴党费"), "");
    activity("2011-10-01", "dues", "2011-03", NULL);    /* 7 months late */
    cr_assert_str_eq(level_on("2011-10-01", 2, "补缴党费"), "超期");
    cr_assert_str_eq(level_on("2011-09-30", 2, "补缴党费"), "", "not yet paid then");
}

Test(report, a_month_paid_ahead_or_later_hides_no_month_left_unpaid)
{
    small_store("2011-01-10", "2011-01-01");
    for (int mo = 2; mo <= 12; mo++) {
        char month[24], date[24];   /* room for any int, as the compiler sees it */
        snprintf(month, sizeof month, "2011-%02d", mo);
        snprintf(date, sizeof date, "2011-%02d-05", mo);
        if (mo < 4 || mo > 9)           /* April to September left unpaid */
            activity(date, "dues", month, NULL);
    }
    activity("2011-03-20", "dues", "2012-06", NULL);    /* paid far ahead */
    cr_assert_str_eq(level_on("2011-09-30", 2, "党费"), "预警");     /* April to August */
    cr_assert_str_eq(level_on("2011-10-01", 2, "党费"), "超期");
    cr_assert_str_eq(level_on("2012-01-15", 2, "党费"), "超期",
                     "October to December were paid, and the run before them stays");
    const jval_t *row = row_of(2, "林术平", "党费");
    cr_assert_not_null(row);
    cr_assert_str_eq(jstr(row, "date"), "2011-04");
    cr_assert_str_eq(jstr(row, "elapsed"), "6个月");
    cr_assert_not_null(strstr(jstr(row, "note"), "2011-04 起连续 6 个月未交"), "%s",
                       jstr(row, "note"));
}

/* Applies each change of the home's outbox that names `to` in its audience to `to`. */
static int deliver_one(void *ctx, uint64_t seq, const uint8_t *packed, size_t len)
{
    nd_store_t *to = ctx;
    ld_change_t c;
    ld_error_t err = { 0 };
    ld_change_init(&c);
    cr_assert_eq(ld_change_unpack(packed, len, &c, &err), 0, "%s", err.msg);
    for (size_t i = 0; i < c.naudience; i++)
        if (strcmp(c.audience[i], nd_store_node_id(to)) == 0)
            cr_assert_eq(nd_store_apply(to, &c, &err), 0, "seq %" PRIu64 ": %s", seq, err.msg);
    ld_change_clear(&c);
    return 0;
}

/* The Dongguan branch's store beside the small store, holding what the home sent it. */
static nd_store_t *open_branch(void)
{
    char path[600];
    ld_error_t err = { 0 };
    snprintf(path, sizeof path, "%s/dongguan.db", town->dir);
    nd_store_t *branch = nd_store_open(path, true, &err);
    cr_assert_not_null(branch, "%s", err.msg);
    cr_assert_eq(nd_store_init_node(branch, "dongguan", "东莞支部", &err), 0, "%s", err.msg);
    cr_assert_geq(nd_store_outbox(town->store, 0, SIZE_MAX, deliver_one, branch, &err), 1,
                  "%s", err.msg);
    return branch;
}

Test(report, a_branch_totals_what_it_holds_and_does_not_call_it_the_township)
{
    small_store("2011-01-10", "2011-01-01");
    nd_store_t *home = town->store, *branch = open_branch();
    town->store = branch;
    report_json(branch, "2011-03-01");
    const jval_t *rows = table(4);
    for (size_t i = 0; i < rows->n; i++)
        cr_assert_str_neq(jstr(rows->items[i], "group"), "全镇", "the branch has no township total");
    cr_assert_eq(total_of("合计", "东莞支部", "mobile"), 1);
    cr_assert_eq(total_of("流入地", "东莞支部", "mobile"), 1);
    town->store = home;
    nd_store_destroy(&branch);
    report_json(home, "2011-03-01");
    cr_assert_eq(total_of("全镇", "竹园镇党委", "mobile"), 1);
}

/* The rows of table t of `duty` as of date; the first one's note in *note. */
static size_t rows_in(int t, const char *date, const char *duty, const char **note)
{
    report_json(town->store, date);
    const jval_t *rows = table(t);
    size_t n = 0;
    for (size_t i = 0; i < rows->n; i++)
        if (strcmp(jstr(rows->items[i], "duty"), duty) == 0 && n++ == 0 && note)
            *note = jstr(rows->items[i], "note");
    return n;
}

/* The same in the agreements' table (1). */
static size_t duty_rows(const char *date, const char *duty, const char **note)
{
    return rows_in(1, date, duty, note);
}

Test(report, a_month_of_dues_recorded_at_both_nodes_before_they_synced_is_a_warning)
{
    small_store("2011-01-10", "2011-01-01");
    char branch_entry[LD_UUID_LEN + 1];
    ld_error_t err = { 0 };
    nd_store_t *home = town->store, *branch = open_branch();
    /* Each records February's payment, neither having seen the other's. */
    activity("2011-02-10", "dues", "2011-02", NULL);
    activity("2011-03-05", "dues", "2011-03", NULL);
    uint64_t branch_sent = nd_store_last_seq(branch);
    cr_assert_eq(seed_write(branch, LD_KIND_ACTIVITY, "", branch_entry, &err, "member",
                            member_id, "date", "2011-02-12", "kind", "dues", "month", "2011-02",
                            "amount", "100", NULL), 0, "%s", err.msg);
    cr_assert_eq(rows_in(2, "2011-04-01", "党费重记", NULL), 0, "not synced yet");
    cr_assert_geq(nd_store_outbox(branch, branch_sent, SIZE_MAX, deliver_one, home, &err), 1,
                  "%s", err.msg);

    const char *note = NULL;
    cr_assert_eq(rows_in(2, "2011-04-01", "党费重记", &note), 1);
    cr_assert_str_eq(note, "2011-02 的党费记了 2 笔：核对后删去多记的");
    const jval_t *row = row_of(2, "林术平", "党费重记");
    cr_assert_not_null(row);
    cr_assert_str_eq(jstr(row, "level"), "预警");
    cr_assert_str_eq(jstr(row, "date"), "2011-02");
    cr_assert_eq(rows_in(2, "2011-02-11", "党费重记", NULL), 0, "the branch's came later");

    /* Deleting the extra entry clears it. */
    ld_change_t c;
    ld_change_init(&c);
    c.kind = LD_KIND_ACTIVITY;
    snprintf(c.record_id, sizeof c.record_id, "%s", branch_entry);
    c.deleted = true;
    cr_assert_eq(nd_store_write(home, &c, &err), 0, "%s", err.msg);
    ld_change_clear(&c);
    cr_assert_eq(rows_in(2, "2011-04-01", "党费重记", NULL), 0);
    nd_store_destroy(&branch);
}

Test(report, members_away_where_their_branch_has_no_agreement_in_force_are_a_breach)
{
    small_store("2011-01-10", "2011-01-01");
    cr_assert_eq(duty_rows("2011-03-01", "共管协议", NULL), 0, "longtan and dongguan agreed");
    ld_error_t err = { 0 };
    char member[37], agreement[37];
    cr_assert_eq(seed_write(town->store, LD_KIND_ORG, "tingzi", NULL, &err, "name", "亭子村党支部",
                            "kind", "village", "parent", "zhuyuan", "node", "zhuyuan", NULL), 0,
                 "%s", err.msg);
    const char *names[] = { "张小平", "李四" };
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(seed_write(town->store, LD_KIND_MEMBER, "", member, &err, "name", names[i],
                                "org", "tingzi", NULL), 0, "%s", err.msg);
        cr_assert_eq(seed_write(town->store, LD_KIND_TRIP, "", NULL, &err, "member", member,
                                "to", "dongguan", "started", "2011-02-01", "status",
                                "registered", NULL), 0, "%s", err.msg);
    }
    const char *note = NULL;
    cr_assert_eq(duty_rows("2011-03-01", "共管协议", &note), 1, "one row for the pair");
    cr_assert_not_null(strstr(note, "2 名流动党员"), "%s", note);
    const jval_t *row = table(1)->items[0];
    cr_assert_str_eq(jstr(row, "outflow"), "亭子村党支部");
    cr_assert_str_eq(jstr(row, "inflow"), "东莞支部");
    cr_assert_str_eq(jstr(row, "level"), "超期");

    /* an agreement in force answers it; one that ended before the date does not */
    cr_assert_eq(seed_write(town->store, LD_KIND_AGREEMENT, "", agreement, &err, "outflow",
                            "tingzi", "inflow", "dongguan", "signed", "2011-02-15", "until",
                            "2011-06-30", NULL), 0, "%s", err.msg);
    cr_assert_eq(duty_rows("2011-02-14", "共管协议", NULL), 1, "not signed yet");
    cr_assert_eq(duty_rows("2011-03-01", "共管协议", NULL), 0);
    cr_assert_eq(duty_rows("2011-06-30", "共管协议", NULL), 0);
    cr_assert_eq(duty_rows("2011-07-01", "共管协议", NULL), 1, "ended on 2011-06-30");
}

Test(report, a_yearly_report_counts_for_one_year_the_one_before_when_made_by_march)
{
    small_store("2011-01-10", "2011-01-01");
    activity("2012-02-01", "report", NULL, NULL);      /* the report for 2011 */
    activity("2012-06-01", "review", NULL, NULL);      /* the review of 2012 */
    cr_assert_str_eq(level_on("2012-01-15", 3, "年度书面报告"), "超期", "not made yet");
    cr_assert_str_eq(level_on("2012-03-01", 3, "年度书面报告"), "");
    cr_assert_str_eq(level_on("2012-03-01", 3, "活动证年审"), "超期", "2011 was not reviewed");
    cr_assert_str_eq(level_on("2013-01-15", 3, "年度书面报告"), "超期",
                     "February 2012's report was 2011's, not 2012's");
    cr_assert_str_eq(level_on("2013-01-15", 3, "活动证年审"), "");
}

Test(report, the_half_year_contact_warns_in_its_last_30_days_and_breaches_after)
{
    small_store("2011-01-10", "2011-01-01");
    cr_assert_eq(period_rows("2011-05-31", "2011年上半年", "半年电联", "预警"), 0);
    cr_assert_eq(period_rows("2011-06-01", "2011年上半年", "半年电联", "预警"), 1);
    cr_assert_eq(period_rows("2011-06-30", "2011年上半年", "半年电联", "预警"), 1);
    cr_assert_eq(period_rows("2011-07-01", "2011年上半年", "半年电联", "超期"), 1);
    ld_error_t err = { 0 };
    cr_assert_eq(seed_write(town->store, LD_KIND_CONTACT, "", NULL, &err, "agreement",
                            agreement_id, "date", "2011-06-30", "channel", "phone", NULL), 0,
                 "%s", err.msg);
    cr_assert_eq(period_rows("2011-07-01", "2011年上半年", "半年电联", "超期"), 0);
    cr_assert_eq(period_rows("2011-06-29", "2011年上半年", "半年电联", "预警"), 1,
                 "a contact after the report's date does not count");
    cr_assert_eq(period_rows("2011-12-02", "2011年下半年", "半年电联", "预警"), 1);
    cr_assert_eq(period_rows("2011-12-01", "2011年下半年", "半年电联", "预警"), 0);
}

Test(report, a_period_that_began_before_the_signing_is_not_owed)
{
    small_store("2011-01-10", "2011-01-02");
    cr_assert_eq(period_rows("2011-07-01", "2011年上半年", "半年电联", "超期"), 0);
    cr_assert_eq(period_rows("2012-01-01", "2011年", "年度互访", "超期"), 0);
    cr_assert_eq(period_rows("2012-01-01", "2011年下半年", "半年电联", "超期"), 1);
    cr_assert_eq(period_rows("2013-01-01", "2012年", "年度互访", "超期"), 1);
}

Test(report, the_yearly_visit_warns_in_the_last_60_days_of_a_leap_year)
{
    small_store("2012-01-10", "2012-01-01");
    cr_assert_eq(period_rows("2012-11-01", "2012年", "年度互访", "预警"), 0);   /* 60 left */
    cr_assert_eq(period_rows("2012-11-02", "2012年", "年度互访", "预警"), 1);   /* 59 left */
    cr_assert_eq(period_rows("2013-01-01", "2012年", "年度互访", "超期"), 1);
}

Test(report, a_trip_must_be_reported_in_within_30_days)
{
    small_store("2011-01-10", "2011-01-01");
    cr_assert_str_eq(level_on("2011-02-09", 3, "外出报到"), "");      /* day 30 */
    cr_assert_str_eq(level_on("2011-02-10", 3, "外出报到"), "超期");  /* day 31 */
    ld_error_t err = { 0 };
    cr_assert_eq(seed_write(town->store, LD_KIND_TRIP, trip_id, NULL, &err, "reported_in",
                            "2011-02-20", "status", "reported-in", NULL), 0, "%s", err.msg);
    cr_assert_str_eq(level_on("2011-02-19", 3, "外出报到"), "超期");
    cr_assert_str_eq(level_on("2011-02-20", 3, "外出报到"), "");
}

/* The rows about the Dongguan branch's own organisational life as of `date`, in `kinds`
 * (the duties, joined by ","), with the row of `want` (if found) in *row. */
static size_t branch_rows(const char *date, char kinds[128], const char *want,
                          const jval_t **row)
{
    report_json(town->store, date);
    const jval_t *rows = table(1);
    size_t n = 0;
    kinds[0] = '\0';
    for (size_t i = 0; i < rows->n; i++) {
        const jval_t *x = rows->items[i];
        if (jstr(x, "outflow")[0] != '\0')
            continue;
        cr_assert_str_eq(jstr(x, "inflow"), "东莞支部");
        const char *duty = jstr(x, "duty");
        size_t len = strlen(kinds);
        snprintf(kinds + len, 128 - len, "%s%s", n++ ? "," : "", duty);
        if (row && strcmp(duty, want) == 0)
            *row = x;
    }
    return n;
}

/* An activity of the member written at the branch's node, then taken by the home's. */
static void branch_activity(nd_store_t *branch, const char *date, const char *kind)
{
    ld_error_t err = { 0 };
    uint64_t sent = nd_store_last_seq(branch);
    cr_assert_eq(seed_write(branch, LD_KIND_ACTIVITY, "", NULL, &err, "member", member_id,
                            "date", date, "kind", kind, NULL), 0, "%s", err.msg);
    cr_assert_geq(nd_store_outbox(branch, sent, SIZE_MAX, deliver_one, town->store, &err), 1,
                  "%s", err.msg);
}

Test(report, an_inflow_branch_owes_its_monthly_quarterly_and_yearly_life_once_members_are_there)
{
    small_store("2011-01-10", "2011-01-01");
    nd_store_t *branch = open_branch();
    char kinds[128];
    const jval_t *row = NULL;
    /* January began before the member left: nothing is owed for it */
    cr_assert_eq(branch_rows("2011-02-01", kinds, "", NULL), 0, "%s", kinds);
    /* February: theme day, committee, group; the quarter and the year began before */
    cr_assert_eq(branch_rows("2011-03-01", kinds, "主题党日", &row), 3, "%s", kinds);
    cr_assert_str_eq(kinds, "主题党日,支委会,党小组会");
    row_is(row, "level", "超期", "outflow", "", "inflow", "东莞支部", "period", "2011年2月",
           "due", "2011-02-28", "last", "无",
           "note", "2011年2月无主题党日记录（每月一次），已超期 1 天；在此的流动党员 1 名", NULL);

    /* the home township's own entry is of its own branch's life, not Dongguan's */
    activity("2011-02-20", "committee", NULL, NULL);
    branch_activity(branch, "2011-02-25", "theme-day");
    branch_activity(branch, "2011-03-02", "group");   /* after the date: not seen */
    cr_assert_eq(branch_rows("2011-03-01", kinds, "", NULL), 2, "%s", kinds);
    cr_assert_str_eq(kinds, "支委会,党小组会");
    /* the branch's own report says the same */
    nd_store_t *home = town->store;
    town->store = branch;
    cr_assert_eq(branch_rows("2011-03-01", kinds, "", NULL), 2, "%s", kinds);
    town->store = home;
    /* March: the theme day of February does not count for it */
    row = NULL;
    cr_assert_eq(branch_rows("2011-04-01", kinds, "主题党日", &row), 2, "%s", kinds);
    cr_assert_str_eq(kinds, "主题党日,支委会");
    cr_assert_str_eq(jstr(row, "last"), "2011-02-25");

    /* the second quarter is the first the member spent there whole */
    cr_assert_eq(branch_rows("2011-07-01", kinds, "", NULL), 4, "%s", kinds);
    cr_assert_str_eq(kinds, "主题党日,支委会,党小组会,党员大会");
    branch_activity(branch, "2011-05-20", "meeting");
    cr_assert_eq(branch_rows("2011-07-01", kinds, "", NULL), 3, "%s", kinds);
    /* 2011 began before he left; 2012 he spent there whole, so its life meeting and
     * appraisal are owed too */
    cr_assert_eq(branch_rows("2012-01-01", kinds, "", NULL), 4, "%s", kinds);
    cr_assert_eq(branch_rows("2013-01-01", kinds, "", NULL), 6, "%s", kinds);
    branch_activity(branch, "2012-12-20", "appraisal");
    cr_assert_eq(branch_rows("2013-01-01", kinds, "", NULL), 5, "%s", kinds);
    cr_assert_str_eq(kinds, "主题党日,支委会,党小组会,党员大会,组织生活会");

    /* back home: the branch owes nothing for him */
    ld_error_t err = { 0 };
    cr_assert_eq(seed_write(town->store, LD_KIND_TRIP, trip_id, NULL, &err, "ended",
                            "2012-12-31", "status", "returned", NULL), 0, "%s", err.msg);
    cr_assert_eq(branch_rows("2013-01-01", kinds, "", NULL), 0, "%s", kinds);
    nd_store_destroy(&branch);
}

/* The township's symposium row as of `date`, or NULL. */
static const jval_t *symposium_row(const char *date)
{
    report_json(town->store, date);
    const jval_t *rows = table(1), *found = NULL;
    for (size_t i = 0; i < rows->n; i++)
        if (strcmp(jstr(rows->items[i], "duty"), "流动党员座谈会") == 0) {
            cr_assert_null(found, "two symposium rows");
            found = rows->items[i];
        }
    return found;
}

Test(report, the_township_owes_a_symposium_each_half_year_its_members_are_away)
{
    small_store("2011-01-10", "2011-01-01");
    /* the first half of 2011 began before the member left */
    cr_assert_null(symposium_row("2011-07-01"));
    const jval_t *row = symposium_row("2012-01-01");
    row_is(row, "level", "超期", "outflow", "竹园镇党委", "inflow", "", "period", "2011年下半年",
           "due", "2011-12-31", "last", "无",
           "note", "2011年下半年无流动党员座谈会记录（每半年一次），已超期 1 天；外出的流动党员 1 名",
           NULL);
    activity("2011-11-20", "symposium", NULL, NULL);
    cr_assert_null(symposium_row("2012-01-01"));
    row = symposium_row("2012-07-01");
    cr_assert_not_null(row);
    cr_assert_str_eq(jstr(row, "last"), "2011-11-20");

    /* the branch does not keep the township: it owes none */
    nd_store_t *home = town->store, *branch = open_branch();
    town->store = branch;
    cr_assert_null(symposium_row("2012-07-01"));
    town->store = home;
    nd_store_destroy(&branch);

    /* once a year, by the setting; a period that does not split the year is refused */
    ld_error_t err = { 0 };
    cr_assert_eq(nd_store_set_setting(town->store, "report.symposium_period_months", "12",
                                      &err), 0, "%s", err.msg);
    cr_assert_null(symposium_row("2012-07-01"), "2011 began before he left");
    row = symposium_row("2013-01-01");
    cr_assert_not_null(row);
    cr_assert_str_eq(jstr(row, "period"), "2012年");
    cr_assert_eq(nd_store_set_setting(town->store, "report.symposium_period_months", "5",
                                      &err), 0, "%s", err.msg);
    cr_assert_eq(report_to_nowhere("2013-01-01", &err), LD_EINVAL);
    cr_assert_not_null(strstr(err.msg, "report.symposium_period_months = 5 must be 1, 2, 3, "
                                       "4, 6 or 12"), "%s", err.msg);
}

/* The township's selection row as of `date`, or NULL. */
static const jval_t *selection_row(const char *date)
{
    report_json(town->store, date);
    const jval_t *rows = table(1), *found = NULL;
    for (size_t i = 0; i < rows->n; i++)
        if (strcmp(jstr(rows->items[i], "duty"), "年度评选") == 0) {
            cr_assert_null(found, "two selection rows");
            found = rows->items[i];
        }
    return found;
}

static void honour(const char *year, const char *kind, char *id_out)
{
    ld_error_t err = { 0 };
    cr_assert_eq(seed_write(town->store, LD_KIND_HONOUR, "", id_out, &err, "member", member_id,
                            "year", year, "kind", kind, NULL), 0, "%s", err.msg);
}

Test(report, the_township_owes_a_selection_for_each_year_its_members_were_away)
{
    small_store("2011-01-10", "2011-01-01");
    /* 2010: nobody was away yet */
    cr_assert_null(selection_row("2011-06-01"));
    /* 2011: a warning until the end of March 2012, then a breach */
    const jval_t *row = selection_row("2012-03-31");
    row_is(row, "level", "预警", "outflow", "竹园镇党委", "inflow", "", "period", "2011年度",
           "due", "2012-03-31", "last", "无",
           "note", "2011年度尚无勤劳致富能手、遵纪守法党员评选记录，距截止还有 0 天；"
                   "当年外出的流动党员 1 名", NULL);
    row = selection_row("2012-04-02");
    row_is(row, "level", "超期", "period", "2011年度",
           "note", "2011年度无勤劳致富能手、遵纪守法党员评选记录（每年一次，次年3月底前），"
                   "已超期 2 天；当年外出的流动党员 1 名", NULL);

    /* an honour of the year, of either kind, is the selection held */
    char id[LD_UUID_LEN + 1];
    honour("2011", "law-abiding", id);
    cr_assert_null(selection_row("2012-04-02"));
    /* the next year's is owed again, and says when the last was */
    row = selection_row("2013-04-01");
    row_is(row, "level", "超期", "period", "2012年度", "last", "2011年度", NULL);
    /* an honour for a later year is not that year's */
    honour("2013", "prosperous", NULL);
    row = selection_row("2013-04-01");
    row_is(row, "period", "2012年度", "last", "2011年度", NULL);

    /* a tombstoned honour no longer counts */
    ld_change_t c;
    ld_change_init(&c);
    c.kind = LD_KIND_HONOUR;
    snprintf(c.record_id, sizeof c.record_id, "%s", id);
    c.deleted = true;
    ld_error_t err = { 0 };
    cr_assert_eq(nd_store_write(town->store, &c, &err), 0, "%s", err.msg);
    ld_change_clear(&c);
    cr_assert_not_null(selection_row("2012-04-02"));

    /* the branch does not keep the township: it owes none */
    nd_store_t *home = town->store, *branch = open_branch();
    town->store = branch;
    cr_assert_null(selection_row("2012-04-02"));
    town->store = home;
    nd_store_destroy(&branch);

    /* a member back home before the year began is not counted for it */
    cr_assert_not_null(selection_row("2015-04-01"), "2014 is owed while he is away");
    cr_assert_eq(seed_write(town->store, LD_KIND_TRIP, trip_id, NULL, &err, "ended",
                            "2013-12-31", "status", "returned", NULL), 0, "%s", err.msg);
    cr_assert_null(selection_row("2015-04-01"));
}

/* The row of the work table for `kind` (in Chinese) as of `date`. */
static const jval_t *work_row(const char *date, const char *kind)
{
    report_json(town->store, date);
    const jval_t *rows = table(5), *found = NULL;
    for (size_t i = 0; i < rows->n; i++)
        if (strcmp(jstr(rows->items[i], "kind"), kind) == 0) {
            cr_assert_null(found, "two rows of %s", kind);
            found = rows->items[i];
        }
    cr_assert_not_null(found, "no row of %s", kind);
    return found;
}

static void help(const char *date, const char *kind, const char *helper, const char *fen)
{
    ld_error_t err = { 0 };
    cr_assert_eq(seed_write(town->store, LD_KIND_SUPPORT, "", NULL, &err, "member", member_id,
                            "kind", kind, "date", date, "helper", helper, "amount", fen, NULL),
                 0, "%s", err.msg);
}

Test(report, the_work_table_counts_last_years_honours_and_this_years_help_by_kind)
{
    small_store("2011-01-10", "2011-01-01");
    /* every kind has its row, with nothing yet */
    row_is(work_row("2012-03-01", "勤劳致富能手"), "item", "2011年度表彰", "entries", "0",
           "members", "0", "amount", "", NULL);
    row_is(work_row("2012-03-01", "帮扶资金"), "item", "2012年帮扶（至 2012-03-01）",
           "entries", "0", "amount", "", NULL);

    honour("2011", "prosperous", NULL);
    honour("2010", "law-abiding", NULL);          /* another year's */
    help("2012-01-05", "fund", NULL, "50000");
    help("2012-02-05", "fund", NULL, "25050");
    help("2011-12-20", "fund", NULL, "100000");   /* last year's */
    help("2012-03-02", "fund", NULL, "100000");   /* after the date */
    help("2012-02-01", "pairing", "镇组织办王明", NULL);
    row_is(work_row("2012-03-01", "勤劳致富能手"), "entries", "1", "members", "1", NULL);
    row_is(work_row("2012-03-01", "遵纪守法党员"), "entries", "0", NULL);
    row_is(work_row("2012-03-01", "帮扶资金"), "entries", "2", "members", "1",
           "amount", "750.50", NULL);
    row_is(work_row("2012-03-01", "结对帮扶"), "entries", "1", "amount", "", NULL);
    row_is(work_row("2012-03-01", "技术培训"), "entries", "0", NULL);
    row_is(work_row("2012-03-02", "帮扶资金"), "entries", "3", "amount", "1750.50", NULL);
}

Test(report, the_work_table_sets_the_grants_beside_the_fund_and_the_trained_beside_the_target)
{
    small_store("2011-01-10", "2011-01-01");
    ld_error_t err = { 0 };
    /* the seed's 10,000 yuan and 50 members, with nothing given yet */
    row_is(work_row("2012-03-01", "帮扶资金"), "target", "10000.00", "done", "0.0%", NULL);
    row_is(work_row("2012-03-01", "技术培训与就业援助（合计）"), "entries", "0", "members", "0",
           "target", "50", "done", "0.0%", NULL);
    row_is(work_row("2012-03-01", "结对帮扶"), "target", "", "done", "", NULL);

    help("2012-01-01", "fund", NULL, "75000");       /* the year's first day counts */
    help("2012-01-06", "training", NULL, NULL);
    help("2012-02-06", "employment", NULL, NULL);     /* the same member again */
    help("2011-12-06", "training", NULL, NULL);       /* last year's */
    row_is(work_row("2012-03-01", "帮扶资金"), "amount", "750.00", "target", "10000.00",
           "done", "7.5%", NULL);
    row_is(work_row("2012-03-01", "技术培训与就业援助（合计）"), "entries", "2", "members", "1",
           "target", "50", "done", "2.0%", NULL);

    /* the targets are settings; 0 sets none */
    cr_assert_eq(nd_store_set_setting(town->store, "report.support_fund_yuan", "2000", &err), 0);
    cr_assert_eq(nd_store_set_setting(town->store, "report.training_target", "0", &err), 0);
    row_is(work_row("2012-03-01", "帮扶资金"), "target", "2000.00", "done", "37.5%", NULL);
    row_is(work_row("2012-03-01", "技术培训与就业援助（合计）"), "members", "1", "target", "",
           "done", "", NULL);
    cr_assert_eq(nd_store_set_setting(town->store, "report.support_fund_yuan", "20000000",
                                      &err), 0);
    cr_assert_eq(report_to_nowhere("2012-03-01", &err), LD_EINVAL);
    cr_assert_not_null(strstr(err.msg, "report.support_fund_yuan = '20000000' is not a whole "
                                       "number from 0 to 10000000"), "%s", err.msg);
    cr_assert_eq(nd_store_set_setting(town->store, "report.support_fund_yuan", "2000", &err), 0);

    /* a branch counts what it holds, and sets no targets: they are the township's */
    nd_store_t *home = town->store, *branch = open_branch();
    town->store = branch;
    row_is(work_row("2012-03-01", "帮扶资金"), "target", "", "done", "", NULL);
    row_is(work_row("2012-03-01", "技术培训与就业援助（合计）"), "target", "", "done", "", NULL);
    town->store = home;
    nd_store_destroy(&branch);
}

Test(report, a_trip_under_way_past_its_expected_end_is_a_warning_until_it_ends)
{
    small_store("2011-01-10", "2011-01-01");
    cr_assert_str_eq(level_on("2012-01-10", 3, "逾期未归"), "", "no expected end, no finding");
    ld_error_t err = { 0 };
    cr_assert_eq(seed_write(town->store, LD_KIND_TRIP, trip_id, NULL, &err, "until",
                            "2011-06-30", "reported_in", "2011-01-20", "status", "reported-in",
                            NULL), 0, "%s", err.msg);
    cr_assert_str_eq(level_on("2011-06-30", 3, "逾期未归"), "");
    cr_assert_str_eq(level_on("2011-07-01", 3, "逾期未归"), "预警");
    const char *note = NULL;
    cr_assert_eq(rows_in(3, "2011-07-12", "逾期未归", &note), 1);
    cr_assert_not_null(strstr(note, "预计外出至 2011-06-30，已过 12 天"), "%s", note);
    /* the return, recorded: no finding after it, still one for a day before it */
    cr_assert_eq(seed_write(town->store, LD_KIND_TRIP, trip_id, NULL, &err, "ended",
                            "2011-07-20", "status", "returned", NULL), 0, "%s", err.msg);
    cr_assert_str_eq(level_on("2011-07-19", 3, "逾期未归"), "预警");
    cr_assert_str_eq(level_on("2011-07-20", 3, "逾期未归"), "");
}

Test(report, six_months_without_any_activity_is_out_of_contact)
{
    small_store("2011-01-10", "2011-01-01");
    activity("2011-03-15", "study", NULL, NULL);
    cr_assert_str_eq(level_on("2011-09-14", 3, "失联"), "");
    cr_assert_str_eq(level_on("2011-09-15", 3, "失联"), "超期");
}

Test(report, a_tombstoned_activity_no_longer_counts)
{
    small_store("2011-01-10", "2011-01-01");
    char id[LD_UUID_LEN + 1];
    activity("2011-06-15", "meeting", NULL, id);
    cr_assert_str_eq(level_on("2011-07-10", 2, "组织生活"), "");
    ld_change_t c;
    ld_change_init(&c);
    c.kind = LD_KIND_ACTIVITY;
    snprintf(c.record_id, sizeof c.record_id, "%s", id);
    c.deleted = true;
    ld_error_t err = { 0 };
    cr_assert_eq(nd_store_write(town->store, &c, &err), 0, "%s", err.msg);
    ld_change_clear(&c);
    cr_assert_str_eq(level_on("2011-07-10", 2, "组织生活"), "超期");  /* since 2011-01-10 */
}

Test(report, settings_override_the_thresholds_and_a_bad_one_is_named)
{
    small_store("2011-01-10", "2011-01-01");
    ld_error_t err = { 0 };
    cr_assert_str_eq(level_on("2011-03-10", 2, "组织生活"), "");
    cr_assert_eq(nd_store_set_setting(town->store, "report.life_warn_months", "2", &err), 0);
    cr_assert_eq(nd_store_set_setting(town->store, "report.life_breach_months", "3", &err), 0);
    cr_assert_str_eq(level_on("2011-03-10", 2, "组织生活"), "预警");
    cr_assert_str_eq(level_on("2011-04-10", 2, "组织生活"), "超期");
    const jval_t *params = table(0);
    bool shown = false;
    for (size_t i = 0; i < params->n; i++)
        shown |= strstr(jstr(params->items[i], "item"), "report.life_warn_months") &&
                 strcmp(jstr(params->items[i], "value"), "2") == 0;
    cr_assert(shown, "the parameters table shows the setting in force");

    cr_assert_eq(nd_store_set_setting(town->store, "report.life_warn_months", "8", &err), 0);
    cr_assert_eq(report_to_nowhere("2011-04-10", &err), LD_EINVAL,
                 "a warning after the breach is refused");
    cr_assert_not_null(strstr(err.msg, "report.life_warn_months = 8 must be below "
                                       "report.life_breach_months = 3"), "%s", err.msg);
    cr_assert_eq(nd_store_set_setting(town->store, "report.life_warn_months", "2", &err), 0);

    cr_assert_eq(nd_store_set_setting(town->store, "report.report_in_days", "30d", &err), 0);
    cr_assert_eq(report_to_nowhere("2011-04-10", &err), LD_EINVAL);
    cr_assert_not_null(strstr(err.msg, "report.report_in_days"), "%s", err.msg);
    cr_assert_not_null(strstr(err.msg, "30d"), "%s", err.msg);
}

Test(report, the_query_plans_read_activities_once_and_never_per_member)
{
    small_store("2011-01-10", "2011-01-01");
    char *plan = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&plan, &len);
    ld_error_t err = { 0 };
    cr_assert_eq(nd_report_explain(town->store, day("2011-06-01"), f, &err), 0, "%s", err.msg);
    fclose(f);
    cr_assert_not_null(strstr(plan, "\nactivities:\n  SCAN activities\n"), "%s", plan);
    cr_assert_null(strstr(plan, "CORRELATED"), "no per-row subquery: %s", plan);
    cr_assert_not_null(strstr(plan, "SCAN t USING INDEX trips_member_started"), "%s", plan);
    cr_assert_null(strstr(plan, "TEMP B-TREE FOR ORDER BY\nassessments"), "%s", plan);
    free(plan);
}

/* ------------------------------------------------------------- rules.c ---- */

Test(rules, whole_months_clamp_to_the_end_of_shorter_months)
{
    cr_assert_eq(nd_add_months(day("2010-08-31"), 6), day("2011-02-28"));
    cr_assert_eq(nd_add_months(day("2011-08-31"), 6), day("2012-02-29"));
    cr_assert_eq(nd_add_months(day("2012-02-29"), 12), day("2013-02-28"));
    cr_assert_eq(nd_add_months(day("2011-01-31"), -2), day("2010-11-30"));
    cr_assert_eq(nd_add_months(day("2011-01-15"), -13), day("2009-12-15"));
    cr_assert_eq(nd_months_between(day("2010-06-10"), day("2010-12-09")), 5);
    cr_assert_eq(nd_months_between(day("2010-06-10"), day("2010-12-10")), 6);
    cr_assert_eq(nd_months_between(day("2011-08-31"), day("2012-02-28")), 5);
    cr_assert_eq(nd_months_between(day("2011-08-31"), day("2012-02-29")), 6);
    cr_assert_eq(nd_months_between(day("2010-08-31"), day("2011-02-28")), 6);
    cr_assert_eq(nd_months_between(day("2011-01-01"), day("2010-12-31")), 0);
}

Test(rules, five_months_warn_and_six_breach)
{
    cr_assert_eq(nd_months_level(4, 5, 6), ND_LEVEL_OK);
    cr_assert_eq(nd_months_level(5, 5, 6), ND_LEVEL_WARNING);
    cr_assert_eq(nd_months_level(6, 5, 6), ND_LEVEL_BREACH);
    cr_assert_eq(nd_months_level(60, 5, 6), ND_LEVEL_BREACH);
    cr_assert_str_eq(nd_level_name(ND_LEVEL_BREACH), "超期");
    cr_assert_str_eq(nd_level_name(ND_LEVEL_WARNING), "预警");
}

Test(rules, periods_split_the_year_evenly_from_january)
{
    cr_assert(nd_period_months_valid(3));
    cr_assert_not(nd_period_months_valid(5), "five months do not split a year");
    cr_assert_not(nd_period_months_valid(0));
    cr_assert_not(nd_period_months_valid(24));
    nd_period_t q = nd_period_of(day("2012-02-29"), 3);
    cr_assert_eq(q.first, day("2012-01-01"));
    cr_assert_eq(q.last, day("2012-03-31"));
    char label[32];
    nd_period_label(q, label);
    cr_assert_str_eq(label, "2012年第一季度");
    q = nd_period_after(nd_period_of(day("2012-11-15"), 3), 3);
    nd_period_label(q, label);
    cr_assert_str_eq(label, "2013年第一季度");
    nd_period_t m = nd_period_of(day("2011-02-10"), 1);
    cr_assert_eq(m.last, day("2011-02-28"));
    nd_period_label(m, label);
    cr_assert_str_eq(label, "2011年2月");
    nd_period_label(nd_period_of(day("2011-06-10"), 4), label);
    cr_assert_str_eq(label, "2011年5-8月");
    cr_assert_str_eq(nd_period_name(3), "季度");
    cr_assert_str_eq(nd_period_name(12), "年");
}

Test(report, contacts_may_be_owed_each_quarter_when_the_township_says_so)
{
    small_store("2011-01-10", "2011-01-01");
    ld_error_t err = { 0 };
    cr_assert_eq(nd_store_set_setting(town->store, "report.contact_period_months", "3", &err), 0);
    cr_assert_eq(period_rows("2011-04-01", "2011年第一季度", "季度电联", "超期"), 1);
    cr_assert_str_eq(jstr(jget(doc, "tables")->items[1], "title"),
                     "一、共管协议（每季度电联一次、每年互访一次）、流动党员座谈会（每半年一次）、年度评选与流入地党支部组织生活");
    cr_assert_eq(period_rows("2011-04-01", "2011年上半年", "半年电联", "预警"), 0);
    cr_assert_eq(seed_write(town->store, LD_KIND_CONTACT, "", NULL, &err, "agreement",
                            agreement_id, "date", "2011-02-15", "channel", "phone", NULL), 0,
                 "%s", err.msg);
    cr_assert_eq(period_rows("2011-04-01", "2011年第一季度", "季度电联", "超期"), 0);
    cr_assert_eq(period_rows("2011-07-01", "2011年第二季度", "季度电联", "超期"), 1,
                 "one contact a quarter: the second quarter had none");

    cr_assert_eq(nd_store_set_setting(town->store, "report.visit_period_months", "5", &err), 0);
    cr_assert_eq(report_to_nowhere("2011-07-01", &err), LD_EINVAL);
    cr_assert_not_null(strstr(err.msg, "setting report.visit_period_months = 5 must be 1, 2, 3,"
                                       " 4, 6 or 12"), "%s", err.msg);
}

Test(rules, the_last_ended_period_is_the_one_before_the_dates_own)
{
    static const struct { const char *day; int months; const char *first, *last; } cases[] = {
        { "2011-07-01", 6, "2011-01-01", "2011-06-30" },
        { "2011-06-30", 6, "2010-07-01", "2010-12-31" },
        { "2012-03-01", 1, "2012-02-01", "2012-02-29" },
        { "2012-01-01", 12, "2011-01-01", "2011-12-31" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        nd_period_t p = nd_period_ended(day(cases[i].day), cases[i].months);
        cr_assert_eq(p.first, day(cases[i].first), "%s, %d", cases[i].day, cases[i].months);
        cr_assert_eq(p.last, day(cases[i].last), "%s, %d", cases[i].day, cases[i].months);
    }
}

Test(rules, half_years_split_at_the_end_of_june)
{
    nd_period_t p = nd_period_of(day("2010-06-30"), 6);
    cr_assert_eq(p.first, day("2010-01-01"));
    cr_assert_eq(p.last, day("2010-06-30"));
    p = nd_period_of(day("2010-07-01"), 6);
    cr_assert_eq(p.first, day("2010-07-01"));
    cr_assert_eq(p.last, day("2010-12-31"));
    p = nd_period_after(p, 6);
    cr_assert_eq(p.first, day("2011-01-01"));
    char label[32];
    nd_period_label(p, label);
    cr_assert_str_eq(label, "2011年上半年");
    nd_period_label(nd_period_of(day("2011-12-31"), 6), label);
    cr_assert_str_eq(label, "2011年下半年");
    nd_period_label(nd_period_of(day("2012-02-29"), 12), label);
    cr_assert_str_eq(label, "2012年");
    p = nd_period_of(day("2012-02-29"), 12);
    cr_assert_eq(p.last - p.first, 365, "2012 has 366 days");
}

Test(rules, a_period_warns_in_its_last_days_and_breaches_once_ended)
{
    nd_period_t h = nd_period_of(day("2011-03-01"), 6);
    cr_assert_eq(nd_period_level(h, day("2011-05-31"), false, 30), ND_LEVEL_OK);
    cr_assert_eq(nd_period_level(h, day("2011-06-01"), false, 30), ND_LEVEL_WARNING);
    cr_assert_eq(nd_period_level(h, day("2011-06-30"), false, 30), ND_LEVEL_WARNING);
    cr_assert_eq(nd_period_level(h, day("2011-07-01"), false, 30), ND_LEVEL_BREACH);
    cr_assert_eq(nd_period_level(h, day("2011-07-01"), true, 30), ND_LEVEL_OK);
    cr_assert_eq(nd_period_level(h, day("2010-12-31"), false, 30), ND_LEVEL_OK);
}
