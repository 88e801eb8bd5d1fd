/* rules.c: the calendar arithmetic behind the compliance report: half-years, years,
 * whole months with month-end clamping, and the warning/breach decision. */
#include "rules.h"

#include <stdio.h>
#include <string.h>
#include "text.h"

void nd_rules_defaults(nd_rules_t *r)
{
    r->contact_warn_days = 30;
    r->visit_warn_days = 60;
    r->life_warn_months = 5;
    r->life_breach_months = 6;
    r->contact_period_months = 6;
    r->visit_period_months = 12;
    r->symposium_period_months = 6;
    r->backpay_max_months = 6;
    r->report_in_days = 30;
    r->contact_lost_months = 6;
    r->support_fund_yuan = 10000;
    r->training_target = 50;
}

#define DAYS "days or months"
#define RULE(name, label, max, unit) { "report." #name, label, offsetof(nd_rules_t, name), max, unit }

static const nd_rule_setting_t settings[] = {
    RULE(contact_warn_days,       "电联：期末预警天数",             36500, DAYS),
    RULE(visit_warn_days,         "互访：期末预警天数",             36500, DAYS),
    RULE(life_warn_months,        "组织生活、党费：预警月数",       36500, DAYS),
    RULE(life_breach_months,      "组织生活、党费：超期月数",       36500, DAYS),
    RULE(backpay_max_months,      "党费补缴：最长月数",             36500, DAYS),
    RULE(report_in_days,          "外出报到：限期天数",             36500, DAYS),
    RULE(contact_lost_months,     "失联：无任何活动月数",           36500, DAYS),
    RULE(contact_period_months,   "电联：每几个月一次",             36500, DAYS),
    RULE(visit_period_months,     "互访：每几个月一次",             36500, DAYS),
    RULE(symposium_period_months, "座谈会：每几个月一次",           36500, DAYS),
    RULE(support_fund_yuan,       "帮扶资金：每年（元）",           10000000, "yuan, 0 for none"),
    RULE(training_target,         "技术培训与就业援助：每年（人）", 100000, "members, 0 for none"),
};
#undef RULE
#undef DAYS

const nd_rule_setting_t *nd_rule_setting(size_t i)
{
    return i < sizeof settings / sizeof settings[0] ? &settings[i] : NULL;
}

const nd_rule_setting_t *nd_rule_setting_named(const char *name)
{
    const nd_rule_setting_t *s;
    for (size_t i = 0; (s = nd_rule_setting(i)); i++)
        if (strcmp(s->key + strlen("report."), name) == 0)
            return s;
    return NULL;
}

int *nd_rule_field(nd_rules_t *r, const nd_rule_setting_t *s)
{
    return (int *)((char *)r + s->offset);
}

const nd_life_rule_t nd_life_rules[ND_LIFE_RULES] = {
    { "theme-day", 1 },      /* 主题党日 */
    { "committee", 1 },      /* 支委会 */
    { "group", 1 },          /* 党小组会 */
    { "meeting", 3 },        /* 党员大会 */
    { "life-meeting", 12 },  /* 组织生活会 */
    { "appraisal", 12 },     /* 民主评议 */
};

int nd_life_rule_of(const char *kind)
{
    for (int i = 0; i < ND_LIFE_RULES; i++)
        if (strcmp(kind, nd_life_rules[i].kind) == 0)
            return i;
    return -1;
}

bool nd_period_months_valid(int months)
{
    return months >= 1 && months <= 12 && 12 % months == 0;
}

static int days_in_month(int y, int m);

nd_period_t nd_period_of(int32_t day, int months)
{
    int y, m, d;
    ld_date_split(day, &y, &m, &d);
    int first = (m - 1) / months * months + 1, last = first + months - 1;
    nd_period_t p = { ld_date_join(y, first, 1), ld_date_join(y, last, days_in_month(y, last)) };
    return p;
}

nd_period_t nd_period_after(nd_period_t p, int months)
{
    return nd_period_of(p.last + 1, months);
}

nd_period_t nd_period_ended(int32_t day, int months)
{
    return nd_period_of(nd_period_of(day, months).first - 1, months);
}

void nd_period_label(nd_period_t p, char out[32])
{
    static const char *const quarters[] = { "一", "二", "三", "四" };
    int y1, m1, d1, y2, m2, d2;
    ld_date_split(p.first, &y1, &m1, &d1);
    ld_date_split(p.last, &y2, &m2, &d2);
    int months = m2 - m1 + 1;
    if (months == 12)
        snprintf(out, 32, "%04d年", y1);
    else if (months == 6)
        snprintf(out, 32, "%04d年%s半年", y1, m1 == 1 ? "上" : "下");
    else if (months == 3)
        snprintf(out, 32, "%04d年第%s季度", y1, quarters[(m1 - 1) / 3]);
    else if (months == 1)
        snprintf(out, 32, "%04d年%d月", y1, m1);
    else
        snprintf(out, 32, "%04d年%d-%d月", y1, m1, m2);
}

const char *nd_period_name(int months)
{
    switch (months) {
    case 1:  return "月";
    case 2:  return "两个月";
    case 3:  return "季度";
    case 4:  return "四个月";
    case 6:  return "半年";
    default: return "年";
    }
}

nd_level_t nd_period_level(nd_period_t p, int32_t as_of, bool met, int warn_days)
{
    if (met || as_of < p.first)
        return ND_LEVEL_OK;
    if (p.last < as_of)
        return ND_LEVEL_BREACH;
    return p.last - as_of < warn_days ? ND_LEVEL_WARNING : ND_LEVEL_OK;
}

static int days_in_month(int y, int m)
{
    static const int days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return days[m - 1];
}

int32_t nd_add_months(int32_t day, int n)
{
    int y, m, d;
    ld_date_split(day, &y, &m, &d);
    int months = y * 12 + (m - 1) + n;
    /* floor division, so that negative n works too */
    int ny = months >= 0 ? months / 12 : -((-months + 11) / 12);
    int nm = months - ny * 12 + 1;
    int dim = days_in_month(ny, nm);
    return ld_date_join(ny, nm, d > dim ? dim : d);
}

int nd_months_between(int32_t from, int32_t to)
{
    if (to < from)
        return 0;
    int y1, m1, d1, y2, m2, d2;
    ld_date_split(from, &y1, &m1, &d1);
    ld_date_split(to, &y2, &m2, &d2);
    int n = (y2 - y1) * 12 + (m2 - m1);
    while (n > 0 && nd_add_months(from, n) > to)
        n--;
    return n;
}

int32_t nd_month_of(int32_t day)
{
    int y, m, d;
    ld_date_split(day, &y, &m, &d);
    return y * 12 + m - 1;
}

nd_level_t nd_months_level(int months, int warn, int breach)
{
    if (months >= breach)
        return ND_LEVEL_BREACH;
    if (months >= warn)
        return ND_LEVEL_WARNING;
    return ND_LEVEL_OK;
}

const char *nd_level_name(nd_level_t level)
{
    switch (level) {
    case ND_LEVEL_BREACH:  return "超期";
    case ND_LEVEL_WARNING: return "预警";
    default:               return "";
    }
}
