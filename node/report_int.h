/* report_int.h: what the compliance report's files share: report.c gathers the data
 * and judges each member, report_orgs.c the duties of organisations (agreements, the
 * branches' timetable, the township's own), report_tables.c renders, and report_base.c
 * holds the helpers all three use.  The data gathered (report_t), the findings, and
 * those helpers.  Included by those four files only: its types keep short names, its
 * functions carry the prefix nd_rp_. */
#ifndef ND_REPORT_INT_H
#define ND_REPORT_INT_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "arena.h"
#include "change.h"
#include "error.h"
#include "output.h"
#include "rules.h"
#include "schema.h"
#include "store.h"
#include "text.h"

#define NO_DAY INT32_MIN
#define NAME_KEY_MAX 512      /* a name's sort key in hex (collate.h) */
#define CELLS_MAX 8           /* cells of a finding's row */
#define ND_RP_TABLES 7        /* the report's tables, in order */
#define ND_RP_KINDS_MAX 8     /* words of an honour's or a support's kind, at most */

/* ------------------------------------------------------------ findings ---- */

typedef enum duty {
    DUTY_AGREEMENT = 0, DUTY_CONTACT, DUTY_VISIT, DUTY_SYMPOSIUM, DUTY_SELECTION,
    DUTY_BRANCH_LIFE, DUTY_LIFE, DUTY_DUES, DUTY_BACKPAY, DUTY_DUES_TWICE, DUTY_ASSESS,
    DUTY_YEARLY_REPORT, DUTY_REVIEW, DUTY_REPORT_IN, DUTY_OVERDUE, DUTY_LOST, DUTY_COUNT
} duty_t;

typedef struct finding {
    nd_level_t level;
    duty_t     duty;
    const char *key;                /* sort key after the level: org ids, names, ids */
    const char *cells[CELLS_MAX];   /* the key and the cells are in the findings' text,
                                       unchanged while a table prints them (kept rows) */
} finding_t;

typedef struct findings {
    finding_t *v;
    size_t     n, cap;
    ld_arena_t text;                /* a report may find hundreds of thousands */
} findings_t;

/* ------------------------------------------------------------- the data ---- */

/* A member with a trip started by the date: that latest trip, and what the activity
 * certificate says of them.  Dates are day numbers, NO_DAY when absent. */
typedef struct person {
    char        id[LD_RECORD_ID_MAX + 1];
    char        org[LD_ID_MAX + 1];         /* home branch */
    char        inflow[LD_ID_MAX + 1];      /* where the latest trip goes */
    char       *name;                       /* owned */
    const char *org_name, *inflow_name;     /* borrowed from the orgs, or the ids above */
    struct org *inflow_org;                 /* borrowed; NULL when the store lacks it */
    bool    female;
    char    status[16];        /* of the latest trip */
    int32_t started, reported_in, ended;
    int32_t until;             /* the day the latest trip is expected to end, or NO_DAY */
    bool    mobile;            /* the latest trip is current on the date */
    bool    out_last_year;     /* some trip overlapped the last full year */
    bool    assessed[2];       /* last year's assessment: [0] outflow, [1] inflow side */
    bool    yearly[2];         /* for the last full year: [0] the member's written report,
                                  [1] the certificate's review (load_activities says
                                  which entries count for a year) */
    char    last_life[11];     /* "" or the latest organisational life up to the date */
    char    last_any[11];      /* "" or the latest activity of any kind */
    uint8_t *paid;             /* owned, NULL until a dues entry is found: one byte per
                                  month from the month the latest trip started to the
                                  month of the date, how many entries paid for it by the
                                  date (up to 255) */
} person_t;

/* An obligation held once a period (an inflow branch's organisational life of one kind,
 * the township's symposium), in the last period of it that has ended. */
typedef struct periodic {
    int32_t latest;           /* the latest entry up to the date, or NO_DAY */
    bool    held;             /* an entry in the period */
    int     owing;            /* members away on the date who had left by its first day */
} periodic_t;

/* An organisation: its name and kind, by id. */
typedef struct org {
    char *id, *name, *kind;
    char *node;               /* the node that keeps it */
    bool  here;               /* kept by this node */
    periodic_t life[ND_LIFE_RULES];   /* as an inflow branch, each kind of nd_life_rules */
} org_t;

/* Entries of one kind of the township's work, the members they were for, and the sum of
 * their amounts (fen). */
typedef struct work_count {
    long    entries, members;
    int64_t fen;
} work_count_t;

/* Everything one report gathers and finds; report.c makes and clears it. */
typedef struct report {
    nd_store_t  *store;
    sqlite3     *db;
    ld_error_t  *err;
    int32_t      as_of;
    char         as_of_text[11];
    nd_rules_t   rules;
    org_t       *orgs;           /* sorted by id */
    size_t       norgs, orgs_cap;
    person_t    *people;
    size_t       npeople, people_cap;
    size_t      *slots;          /* open-addressing hash of people by id: index + 1, 0 free */
    size_t       nslots;         /* a power of two */
    nd_period_t  life_period[ND_LIFE_RULES];  /* the last period of each that has ended */
    nd_period_t  symposium_period;            /* the last one that has ended */
    periodic_t   symposium;                   /* the township's, in symposium_period */
    findings_t   sect[3];        /* agreements and branches; members' life and dues; the rest */
    work_count_t honoured[ND_RP_KINDS_MAX];   /* honours for the last full year, by kind
                                                 in the schema's order */
    work_count_t helped[ND_RP_KINDS_MAX];     /* help given in the year of the date, up to
                                                 it, by kind */
    work_count_t trained;                     /* ... training and help finding work */
    bool         keeps_township;              /* the targets of the help are this node's */
    long         counts[DUTY_COUNT][3];
} report_t;

/* The report's queries (report_base.c), each read in one pass; nd_report_explain prints
 * their plans. */
typedef enum query {
    Q_TRIPS = 0, Q_ACTIVITIES, Q_ASSESS, Q_AGREEMENTS, Q_CONTACTS, Q_VISITS, Q_ORGS, Q_HONOURS,
    Q_WORK_HONOURS, Q_WORK_SUPPORTS, Q_WORK_TRAINED, Q_COUNT
} query_t;

/* ------------------------------------------------------- report_base.c ---- */

/* A duty's name as the report prints it (a static string): the contact and the visit say
 * how often they are owed ("半年电联", "年度互访" by default). */
const char *nd_rp_duty_name(const report_t *r, duty_t duty);

/* Sets r->err from SQLite's message about `what`, or to out of memory; LD_EIO or
 * LD_ENOMEM. */
int nd_rp_fail_sql(report_t *r, const char *what);
int nd_rp_fail_nomem(report_t *r);

/* Column i of a row: its text ("" for NULL, borrowed until the next step); a malloc'd
 * copy (NULL only when memory runs out); its day number, NO_DAY unless a date. */
const char *nd_rp_col_text(sqlite3_stmt *st, int i);
char *nd_rp_col_dup(sqlite3_stmt *st, int i);
int32_t nd_rp_col_day(sqlite3_stmt *st, int i);

/* Appends a finding to section `sect`; cells and key are copied (a NULL cell is empty).
 * The key orders findings of one level; equal keys must not occur.  0 or LD_ENOMEM. */
int nd_rp_add_finding(report_t *r, int sect, nd_level_t level, duty_t duty,
                      const char *const cells[CELLS_MAX], const char *key);

/* Frees every finding of f and empties it. */
void nd_rp_findings_free(findings_t *f);

/* Prepares `sql` (named `what` in an error); 0 or LD_EIO. */
int nd_rp_prepare(report_t *r, const char *what, const char *sql, sqlite3_stmt **st);

/* Prepares query q with its parameters bound for the report's date; its name, for
 * messages.  0 or LD_EIO. */
int nd_rp_prepare_query(report_t *r, query_t q, sqlite3_stmt **st);
const char *nd_rp_query_name(query_t q);
/* Its SQL, unbound (a static string). */
const char *nd_rp_query_sql(query_t q);

/* The field "kind" of records of `kind` (honours and supports count by it).  Static. */
const ld_field_def_t *nd_rp_kind_field(ld_kind_t kind);

/* The i-th of the report's settings: its key, what a person reads, and its value here;
 * false past the last. */
bool nd_rp_setting(report_t *r, size_t i, const char **key, const char **label, int *value);

/* ------------------------------------------------------- report_orgs.c ---- */

/* An entry dated `day` of a periodic obligation whose period is `per`. */
void nd_rp_periodic_entry(periodic_t *t, nd_period_t per, int32_t day);

/* The agreements' findings: pairs of branches with members away and no agreement, and
 * each agreement's contacts and visits per period.  0 or LD_E*. */
int nd_rp_check_agreements(report_t *r);

/* The inflow branches' organisational life by the timetable of nd_life_rules. */
int nd_rp_check_branches(report_t *r);

/* The township's own duties, on the node that keeps it: its symposium for mobile
 * members, and the yearly selection of honoured members. */
int nd_rp_check_township(report_t *r);

/* The township's work as counted in section five (r->honoured, r->helped, r->trained),
 * and whether this node keeps the township (r->keeps_township).  0 or LD_E*. */
int nd_rp_load_work(report_t *r);


/* ----------------------------------------------------- report_tables.c ---- */

/* The report's tables, titled titles[i], into tables[i] (caller destroys each); a table
 * that could not be made is NULL (for want of memory: the caller says so). */
void nd_rp_tables(report_t *r, const char *const titles[ND_RP_TABLES],
                  nd_table_t *tables[ND_RP_TABLES]);

#endif
