/* hlc.h: the hybrid logical clock that stamps every change.  A stamp is
 * (wall milliseconds << 16) | counter: it orders like time, never goes backwards
 * when the wall clock does, and refuses a remote stamp too far in the future. */
#ifndef LD_HLC_H
#define LD_HLC_H

#include <stdint.h>
#include "error.h"

#define LD_HLC_MAX_DRIFT_MS (5u * 60u * 1000u)   /* default: five minutes */

typedef uint64_t (*ld_hlc_wall_fn)(void *ctx);   /* wall clock, ms since epoch */

typedef struct ld_hlc {
    uint64_t        last;        /* the last stamp issued or merged */
    uint64_t        max_drift_ms;
    ld_hlc_wall_fn  wall;        /* NULL = the real clock (CLOCK_REALTIME) */
    void           *wall_ctx;
} ld_hlc_t;

/* Starts a clock that has already issued `last` (0 for a new node). */
void ld_hlc_init(ld_hlc_t *clock, uint64_t last);

/* The next stamp for a local event: greater than every stamp issued or merged. */
uint64_t ld_hlc_now(ld_hlc_t *clock);

/* Folds a remote stamp in so later local stamps order after it.  Returns 0, or
 * LD_ECLOCK (clock unchanged) when `remote` is more than max_drift_ms ahead of the
 * wall clock. */
int ld_hlc_merge(ld_hlc_t *clock, uint64_t remote, ld_error_t *err);

/* Checks a stamp without merging it: LD_ECLOCK if it is too far ahead of `wall_ms`. */
int ld_hlc_check(uint64_t stamp, uint64_t wall_ms, uint64_t max_drift_ms, ld_error_t *err);

static inline uint64_t ld_hlc_ms(uint64_t stamp) { return stamp >> 16; }
static inline uint64_t ld_hlc_make(uint64_t ms, uint16_t counter) { return (ms << 16) | counter; }

/* The real wall clock in ms since the epoch. */
uint64_t ld_hlc_wall_now(void);

#endif
