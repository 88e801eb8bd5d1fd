/* cmp_common.h: what the comparison clients share: counts from the command line, the
 * records they carry (sequence number + filler of a fixed size) and a tally of receipts. */
#ifndef CMP_COMMON_H
#define CMP_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest record a client carries (the benchmark uses 100 and 1,000 bytes). */
#define CMP_RECORD_MAX 65536

/* Parses a positive decimal count no larger than `max`; prints what was wrong (naming
 * `what`) to stderr and returns -1 otherwise, 0 on success. */
int cmp_parse_count(const char *text, const char *what, uint64_t max, uint64_t *out);

/* Fills buf[0..size) with record `seq`: the sequence number (8 bytes, little endian)
 * and a filler that depends on it.  size >= 9. */
void cmp_record_fill(uint8_t *buf, size_t size, uint64_t seq);

/* Monotonic clock, in seconds. */
double cmp_now(void);

/* A tally of the records a receiver took: which of 0..n-1 arrived, and how many were
 * malformed (wrong size, unknown sequence, wrong filler). */
typedef struct cmp_tally cmp_tally_t;

/* NULL on allocation failure. */
cmp_tally_t *cmp_tally_new(uint64_t n, size_t size);
void cmp_tally_destroy(cmp_tally_t **self_p);

/* Records one receipt; returns true if it was a well-formed record (a repeat counts as
 * well formed and is not counted twice). */
bool cmp_tally_add(cmp_tally_t *self, const void *data, size_t len);

/* Distinct well-formed records seen, and malformed ones. */
uint64_t cmp_tally_distinct(const cmp_tally_t *self);
uint64_t cmp_tally_bad(const cmp_tally_t *self);

/* Prints "<prog>: received D of N records (B malformed)" to stderr when D != N or B != 0
 * and returns -1; returns 0 when the tally is complete and clean. */
int cmp_tally_check(const cmp_tally_t *self, const char *prog);

#endif
