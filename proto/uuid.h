/* uuid.h: UUIDs as 36-character lowercase text: time-ordered (version 7) for the ids
 * of every record a node creates, random (version 4) where order does not matter. */
#ifndef LD_UUID_H
#define LD_UUID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "error.h"

#define LD_UUID_LEN 36

/* Writes a new UUID and its NUL into out[37] from getrandom(2); 0 or LD_EIO. */
int ld_uuid_new(char out[LD_UUID_LEN + 1], ld_error_t *err);

/* A maker of version-7 UUIDs (RFC 9562): the wall-clock milliseconds first, then a
 * count within the millisecond, then 62 random bits (what keeps ids made on two nodes
 * in the same millisecond apart).  Ids made one after another sort one after another,
 * so an index on them grows at its right edge instead of at a random page per write:
 * with random ids, 100,000 rows and their change-log entries written 4,096 to a
 * transaction took about twice the time and 2.5 times the WAL bytes, and applying them
 * about 1.5 times the time.  A plain value (no resources); not to be shared across
 * fork, or between threads without a lock. */
typedef struct ld_uuid7 {
    uint64_t ms;              /* the last id's milliseconds ... */
    unsigned count;           /* ... and its count within them */
    uint8_t  random[256];     /* getrandom bytes, drawn 32 ids at a time ... */
    size_t   used;            /* ... of which this many are spent */
} ld_uuid7_t;

void ld_uuid7_init(ld_uuid7_t *g);

/* Writes the next id and its NUL into out[37], for the wall clock at `now_ms`: after
 * every id g made before, even when the clock steps back or 4,096 ids fall in one
 * millisecond (the next millisecond is borrowed).  0 or LD_EIO (getrandom failed). */
int ld_uuid7_next(ld_uuid7_t *g, uint64_t now_ms, char out[LD_UUID_LEN + 1], ld_error_t *err);

/* True if text is exactly a lowercase 8-4-4-4-12 hex UUID. */
bool ld_uuid_valid(const char *text);

#endif
