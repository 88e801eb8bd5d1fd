/* seed_township.h: a test fixture: the seed's township (the CSV files in deploy/seed)
 * written into a fresh store through nd_store_write, and a deterministic year 2010 of
 * records with obligations deliberately missed, so tests can compute the report by hand.
 *
 * seed_township_open: a store in a new temp dir, node "zhuyuan" (竹园镇党委); every org
 * of orgs.csv (Dongguan and Shenzhen kept by nodes "dongguan" and "shenzhen"); the 151
 * members of members.csv; one trip each from trips.csv (status registered); the
 * agreements of agreements.csv.
 *
 * seed_township_year adds, for member i (0-based row of members.csv) and agreement j
 * (0-based row of agreements.csv):
 *   report-in   at started + 7 days (status reported-in); never if i % 25 == 24; at
 *               started + 40 days if i % 25 == 12;
 *   lost        if i % 50 == 37: after reporting in, the trip is marked lost-contact,
 *               ended 2010-10-01;
 *   silent      if i % 15 == 14: no activity entry and no assessment at all; the rules
 *               below apply to the others only;
 *   life        a theme-day on the 10th of every month 2010-04 .. 2010-12; the last one
 *               in 2010-06 if i % 10 == 3, in 2010-07 if i % 10 == 7;
 *   dues        for every month 2010-04 .. 2010-12, paid on the 15th of that month
 *               (200 fen); the last month 2010-06 if i % 10 == 5; if i % 20 == 9 the
 *               months 2010-08 .. 2010-12 are all paid on 2011-01-05;
 *   back-pay    if i % 12 == 11 also 2010-01 paid on 2010-08-15 (7 months late); if
 *               i % 12 == 5 also 2010-02 paid on 2010-08-15 (6 months: allowed);
 *   assessments for 2010, dated 2011-01-10: outflow side unless i % 13 == 6, inflow
 *               side unless i % 9 == 4;
 *   contacts    on 2010-05-20 unless j % 5 == 1, on 2010-11-20 unless j % 4 == 2;
 *   visits      on 2010-09-10 unless j % 3 == 0 (hosted by the inflow branch). */
#ifndef SEED_TOWNSHIP_H
#define SEED_TOWNSHIP_H

#include <stdbool.h>
#include <stdint.h>
#include "error.h"
#include "store.h"
#include "uuid.h"

#define SEED_ORGS_MAX       32
#define SEED_MEMBERS_MAX    256
#define SEED_AGREEMENTS_MAX 64
#define SEED_TEXT_MAX       128

typedef struct seed_org {
    char id[LD_ID_MAX + 1];
    char name[SEED_TEXT_MAX];
    char kind[16];
    char parent[LD_ID_MAX + 1];
    char node[LD_ID_MAX + 1];
} seed_org_t;

typedef struct seed_member {
    int     index;                     /* row of members.csv, from 0 */
    char    id[LD_UUID_LEN + 1];       /* the record id the store gave it */
    char    name[SEED_TEXT_MAX];
    char    org[LD_ID_MAX + 1];        /* home branch */
    bool    female;
    char    inflow[LD_ID_MAX + 1];     /* where the trip goes */
    int32_t started;                   /* the trip's start (day number) */
    char    trip_id[LD_UUID_LEN + 1];
} seed_member_t;

typedef struct seed_agreement {
    int     index;                     /* row of agreements.csv, from 0 */
    char    id[LD_UUID_LEN + 1];
    char    outflow[LD_ID_MAX + 1];
    char    inflow[LD_ID_MAX + 1];
    int32_t signed_on;
} seed_agreement_t;

typedef struct seed_township {
    nd_store_t      *store;
    char             dir[256];         /* the temp dir holding the store */
    char             db_path[300];
    size_t           norgs, nmembers, nagreements;
    seed_org_t       orgs[SEED_ORGS_MAX];
    seed_member_t    members[SEED_MEMBERS_MAX];
    seed_agreement_t agreements[SEED_AGREEMENTS_MAX];
} seed_township_t;

/* Builds the township into a new store (see above).  s is zeroed first.  0, or a
 * negative LD_E* code with err naming the file and line or the write that failed; on
 * failure call seed_township_close all the same. */
int seed_township_open(seed_township_t *s, ld_error_t *err);

/* Adds the year of records described above, in one store transaction. */
int seed_township_year(seed_township_t *s, ld_error_t *err);

/* Closes the store and removes the temp dir; safe twice. */
void seed_township_close(seed_township_t *s);

/* The directory of the seed files: $LIANGDI_SOURCE_ROOT/deploy/seed (or a guess from
 * the working directory).  Static storage. */
const char *seed_township_dir(void);

/* The member / org / agreement by name or id, or NULL. */
const seed_member_t *seed_township_member(const seed_township_t *s, const char *name);
const seed_org_t *seed_township_org(const seed_township_t *s, const char *id);

/* One write through the store: kind, record id ("" = new; the new id is copied to
 * id_out[37] when not NULL), and NULL-terminated name/value pairs. */
int seed_write(nd_store_t *store, ld_kind_t kind, const char *record_id, char *id_out,
               ld_error_t *err, ...);

/* The pattern's rules, for tests that compute the expected report by hand. */
bool seed_is_silent(int i);        /* i % 15 == 14 */
bool seed_is_lost(int i);          /* i % 50 == 37 */
bool seed_never_reported(int i);   /* i % 25 == 24 */
int  seed_last_life_month(int i);  /* month of 2010 of the last theme-day; 0 if silent */
int  seed_last_dues_month(int i);  /* last month of 2010 paid for; 0 if silent */
bool seed_dues_paid_late(int i);   /* months 8..12 paid on 2011-01-05 */
int  seed_backpay_month(int i);    /* 1 (7 months late), 2 (6 months) or 0: none */
bool seed_has_assessment(int i, bool outflow_side);

/* Whether member i's 2010 written report (dated 2010-12-20) and certificate review
 * (dated 2011-01-10, after the year it reviews) are on record. */
bool seed_has_yearly_report(int i);
bool seed_has_review(int i);
bool seed_agreement_contact(int j, bool second_half);
bool seed_agreement_visit(int j);

#endif
