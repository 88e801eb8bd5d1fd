/* rules.h: the calendar arithmetic behind the compliance report: periods of a year,
 * whole months between two dates, and when an obligation is a warning or a breach.
 * Pure functions on day numbers (days since 1970-01-01, see ld_date_parse).  Also the
 * report's thresholds and targets, and the settings that override them. */
#ifndef ND_RULES_H
#define ND_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum nd_level { ND_LEVEL_OK = 0, ND_LEVEL_WARNING, ND_LEVEL_BREACH } nd_level_t;

/* A calendar period, both ends included. */
typedef struct nd_period {
    int32_t first;
    int32_t last;
} nd_period_t;

/* The thresholds of the report's rules (report.c); the settings "report.<name>" override them. */
typedef struct nd_rules {
    int contact_warn_days;     /* 30: warn in the last days of a half-year with no contact */
    int visit_warn_days;       /* 60: warn in the last days of a year with no visit */
    int life_warn_months;      /* 5: months with no organisational life: warning */
    int life_breach_months;    /* 6: ... and breach (the six-month line); also for dues */
    int backpay_max_months;    /* 6: dues may be paid at most this many months late */
    int report_in_days;        /* 30: a trip must be reported in within this many days */
    int contact_lost_months;   /* 6: no activity of any kind: out of contact */
    int contact_period_months; /* 6: one contact per this many months (a divisor of 12) */
    int visit_period_months;   /* 12: one visit per this many months (a divisor of 12) */
    int symposium_period_months; /* 6: the township's symposium for its mobile members */
    int support_fund_yuan;     /* 10000: the help fund raised for a year (0: none) */
    int training_target;       /* 50: members in difficulty to train or help into work in a
                                  year (0: none) */
} nd_rules_t;

/* The organisational life a branch holds on a timetable (national practice):
 * the activity kind, and one per this many months.  Lectures (党课) are left out: their
 * rate is set locally. */
typedef struct nd_life_rule {
    const char *kind;
    int         months;
} nd_life_rule_t;

#define ND_LIFE_RULES 6
extern const nd_life_rule_t nd_life_rules[ND_LIFE_RULES];

/* The index in nd_life_rules of activity kind `kind`, or -1 when it has no timetable. */
int nd_life_rule_of(const char *kind);

/* Fills r with the seed's values above. */
void nd_rules_defaults(nd_rules_t *r);

/* A setting "report.<name>" (node.conf's [report] section) that overrides one field of
 * nd_rules_t: a whole number from 0 to `max`, counted in `unit`. */
typedef struct nd_rule_setting {
    const char *key;          /* "report.<name>" */
    const char *label;        /* what a person reads, in the report */
    size_t      offset;       /* of the field in nd_rules_t */
    int         max;
    const char *unit;         /* "days or months", "yuan, 0 for none"... for messages */
} nd_rule_setting_t;

/* The i-th setting, NULL past the last. */
const nd_rule_setting_t *nd_rule_setting(size_t i);

/* The setting "report.<name>" for `name`, or NULL when there is none. */
const nd_rule_setting_t *nd_rule_setting_named(const char *name);

/* The field of r that setting s overrides. */
int *nd_rule_field(nd_rules_t *r, const nd_rule_setting_t *s);

/* Whether months is a period length the calendar splits a year into evenly: 1, 2, 3,
 * 4, 6 or 12. */
bool nd_period_months_valid(int months);

/* The period of `months` (nd_period_months_valid) holding `day`: periods start in
 * January, so 6 gives Jan-Jun and Jul-Dec, 3 the quarters, 12 the calendar year. */
nd_period_t nd_period_of(int32_t day, int months);

/* The period of `months` right after p. */
nd_period_t nd_period_after(nd_period_t p, int months);

/* The last period of `months` that ended before `day`: the one before nd_period_of(day). */
nd_period_t nd_period_ended(int32_t day, int months);

/* "2010年上半年", "2010年下半年", "2010年", "2010年第二季度", "2010年3月" or "2010年1-2月"
 * into out[32]. */
void nd_period_label(nd_period_t p, char out[32]);

/* How a period of `months` is said in "每…一次": "半年", "年", "季度", "月", "两个月",
 * "四个月".  Static. */
const char *nd_period_name(int months);

/* Whether a period obligation stands as of `as_of`: OK if it was met (`met`), or the
 * period has not begun, or more than `warn_days` are left; WARNING if the period is
 * current and fewer than `warn_days` days are left after `as_of` (the last day of the
 * period has 0 left); BREACH if the period ended before `as_of`. */
nd_level_t nd_period_level(nd_period_t p, int32_t as_of, bool met, int warn_days);

/* `day` moved by n months (n may be negative), the day clamped to the month's length:
 * 2010-08-31 + 6 months = 2011-02-28; 2011-08-31 + 6 months = 2012-02-29. */
int32_t nd_add_months(int32_t day, int n);

/* Whole months from `from` to `to`: the largest n with nd_add_months(from, n) <= to;
 * 0 when to < from. */
int nd_months_between(int32_t from, int32_t to);

/* The month of a day as months since year 0 (as ld_month_parse counts). */
int32_t nd_month_of(int32_t day);

/* BREACH if months >= breach, WARNING if months >= warn, else OK. */
nd_level_t nd_months_level(int months, int warn, int breach);

/* "超期" (breach: overdue), "预警" (warning) or "" for OK.  Static. */
const char *nd_level_name(nd_level_t level);

#endif
