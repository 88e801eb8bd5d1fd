/* hlc.c: the hybrid logical clock: stamps of (wall ms << 16 | counter) that never
 * go backwards, order after every merged remote stamp, and refuse far-future ones. */
#include "hlc.h"

#include <time.h>

#define HLC_MS_MASK ((UINT64_C(1) << 48) - 1)

uint64_t ld_hlc_wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec < 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t wall_ms(const ld_hlc_t *clock)
{
    uint64_t ms = clock->wall != NULL ? clock->wall(clock->wall_ctx) : ld_hlc_wall_now();
    return ms & HLC_MS_MASK;
}

void ld_hlc_init(ld_hlc_t *clock, uint64_t last)
{
    clock->last = last;
    clock->max_drift_ms = LD_HLC_MAX_DRIFT_MS;
    clock->wall = NULL;
    clock->wall_ctx = NULL;
}

uint64_t ld_hlc_now(ld_hlc_t *clock)
{
    uint64_t candidate = ld_hlc_make(wall_ms(clock), 0);
    /* When the wall clock has not moved past the last stamp (or stepped back), the
     * counter advances; a full counter carries into the next millisecond. */
    if (candidate > clock->last)
        clock->last = candidate;
    else if (clock->last != UINT64_MAX)
        clock->last++;
    return clock->last;
}

int ld_hlc_check(uint64_t stamp, uint64_t wall, uint64_t max_drift_ms, ld_error_t *err)
{
    uint64_t ms = ld_hlc_ms(stamp);
    uint64_t limit = wall + max_drift_ms;
    if (limit < wall)
        limit = UINT64_MAX;
    if (ms > limit)
        return ld_error_set(err, LD_ECLOCK,
                            "clock stamp %llu ms is %llu ms ahead of this clock (at most %llu allowed)",
                            (unsigned long long)ms, (unsigned long long)(ms - wall),
                            (unsigned long long)max_drift_ms);
    return 0;
}

int ld_hlc_merge(ld_hlc_t *clock, uint64_t remote, ld_error_t *err)
{
    int rc = ld_hlc_check(remote, wall_ms(clock), clock->max_drift_ms, err);
    if (rc != 0)
        return rc;
    if (remote > clock->last)
        clock->last = remote;
    return 0;
}
