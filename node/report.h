/* report.h: the compliance report: what is overdue as of a date, by the rules report.c
 * lists, with the seed's values as defaults and every threshold a setting. */
#ifndef ND_REPORT_H
#define ND_REPORT_H

#include <stdint.h>
#include <stdio.h>
#include "error.h"
#include "output.h"
#include "store.h"

/* Prints the report for the date `as_of` (days since 1970-01-01, see ld_date_parse) in
 * `fmt` to `out`.  Thresholds come from the store's settings ("report.*" keys), with
 * defaults when unset.  0, or a negative LD_E* code with err set. */
int nd_report_print(nd_store_t *store, int32_t as_of, nd_format_t fmt, FILE *out,
                    ld_error_t *err);

/* Prints SQLite's plan (EXPLAIN QUERY PLAN) of every query the report runs, each
 * under its name, for the benchmarks and for anyone checking that the report searches
 * indexes instead of scanning per member.  0, or a negative LD_E* code with err set. */
int nd_report_explain(nd_store_t *store, int32_t as_of, FILE *out, ld_error_t *err);

#endif
