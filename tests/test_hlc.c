/* test_hlc.c: the hybrid logical clock against an injected wall clock: monotonic when
 * the wall clock steps back, ordered after merged stamps, refusing far-future ones. */
#include <criterion/criterion.h>
#include <string.h>

#include "hlc.h"

#define T0 UINT64_C(1273000000000)     /* a wall time in ms, 2010-05-04 */

static uint64_t fake_ms;

static uint64_t fake_wall(void *ctx)
{
    (void)ctx;
    return fake_ms;
}

static ld_hlc_t clk;

static void setup(void)
{
    fake_ms = T0;
    ld_hlc_init(&clk, 0);
    clk.wall = fake_wall;
}

TestSuite(hlc, .init = setup);

Test(hlc, a_new_clock_stamps_the_wall_time_with_a_zero_counter)
{
    uint64_t s = ld_hlc_now(&clk);
    cr_assert_eq(ld_hlc_ms(s), T0);
    cr_assert_eq(s & 0xffff, 0);
    cr_assert_eq(clk.last, s);
    cr_assert_eq(clk.max_drift_ms, LD_HLC_MAX_DRIFT_MS);
}

Test(hlc, stamps_in_the_same_millisecond_count_up)
{
    uint64_t a = ld_hlc_now(&clk);
    uint64_t b = ld_hlc_now(&clk);
    uint64_t c = ld_hlc_now(&clk);
    cr_assert_eq(b, a + 1);
    cr_assert_eq(c, b + 1);
    cr_assert_eq(ld_hlc_ms(c), T0);
}

Test(hlc, stamps_stay_monotonic_when_the_wall_clock_steps_back)
{
    uint64_t prev = ld_hlc_now(&clk);
    const int64_t steps[] = { 5, -3000, 1, 0, -1, 3000, -60000, 2 };
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        fake_ms = (uint64_t)((int64_t)fake_ms + steps[i]);
        for (int k = 0; k < 100; k++) {
            uint64_t s = ld_hlc_now(&clk);
            cr_assert_gt(s, prev, "step %zu: %llu after %llu", i, (unsigned long long)s,
                         (unsigned long long)prev);
            prev = s;
        }
    }
}

Test(hlc, the_clock_follows_the_wall_again_once_it_catches_up)
{
    fake_ms = T0 + 1000;
    ld_hlc_now(&clk);
    fake_ms = T0;                      /* stepped back one second */
    uint64_t held = ld_hlc_now(&clk);
    cr_assert_eq(ld_hlc_ms(held), T0 + 1000);
    fake_ms = T0 + 2000;
    cr_assert_eq(ld_hlc_now(&clk), ld_hlc_make(T0 + 2000, 0));
}

Test(hlc, a_full_counter_borrows_the_next_millisecond)
{
    ld_hlc_init(&clk, ld_hlc_make(T0, 0xfffe));
    clk.wall = fake_wall;
    uint64_t a = ld_hlc_now(&clk);
    uint64_t b = ld_hlc_now(&clk);
    cr_assert_eq(a, ld_hlc_make(T0, 0xffff));
    cr_assert_eq(b, ld_hlc_make(T0 + 1, 0));
    cr_assert_gt(b, a);
}

Test(hlc, a_clock_started_from_a_stored_stamp_issues_later_stamps)
{
    uint64_t stored = ld_hlc_make(T0 + 50000, 7);   /* from before a restart */
    ld_hlc_init(&clk, stored);
    clk.wall = fake_wall;
    cr_assert_gt(ld_hlc_now(&clk), stored);
}

Test(hlc, merge_orders_local_stamps_after_a_remote_one)
{
    uint64_t remote = ld_hlc_make(T0 + 4000, 12);    /* a peer four seconds ahead */
    ld_error_t err;
    cr_assert_eq(ld_hlc_merge(&clk, remote, &err), 0, "%s", err.msg);
    uint64_t s = ld_hlc_now(&clk);
    cr_assert_gt(s, remote);
    cr_assert_eq(s, remote + 1);
}

Test(hlc, merging_an_older_stamp_changes_nothing)
{
    uint64_t s = ld_hlc_now(&clk);
    ld_error_t err;
    cr_assert_eq(ld_hlc_merge(&clk, ld_hlc_make(T0 - 100000, 0), &err), 0);
    cr_assert_eq(clk.last, s);
}

Test(hlc, a_stamp_too_far_ahead_is_refused_and_leaves_the_clock_unchanged)
{
    uint64_t before = ld_hlc_now(&clk);
    ld_hlc_t copy = clk;
    uint64_t remote = ld_hlc_make(T0 + LD_HLC_MAX_DRIFT_MS + 1, 0);
    ld_error_t err;
    ld_error_clear(&err);
    cr_assert_eq(ld_hlc_merge(&clk, remote, &err), LD_ECLOCK);
    cr_assert_eq(err.code, LD_ECLOCK);
    cr_assert(strstr(err.msg, "ahead") != NULL, "%s", err.msg);
    cr_assert_eq(memcmp(&copy, &clk, sizeof clk), 0);
    cr_assert_eq(ld_hlc_now(&clk), before + 1);
}

Test(hlc, a_stamp_exactly_at_the_drift_limit_is_accepted)
{
    ld_error_t err;
    uint64_t remote = ld_hlc_make(T0 + LD_HLC_MAX_DRIFT_MS, 0xffff);
    cr_assert_eq(ld_hlc_merge(&clk, remote, &err), 0, "%s", err.msg);
    cr_assert_eq(clk.last, remote);
}

Test(hlc, the_drift_limit_is_a_setting)
{
    clk.max_drift_ms = 1000;
    ld_error_t err;
    cr_assert_eq(ld_hlc_merge(&clk, ld_hlc_make(T0 + 1001, 0), &err), LD_ECLOCK);
    cr_assert_eq(ld_hlc_merge(&clk, ld_hlc_make(T0 + 1000, 0), &err), 0);
}

Test(hlc, check_judges_a_stamp_against_a_given_wall_time)
{
    ld_error_t err;
    cr_assert_eq(ld_hlc_check(ld_hlc_make(T0, 0), T0, 0, &err), 0);
    cr_assert_eq(ld_hlc_check(ld_hlc_make(T0 + 1, 0), T0, 0, &err), LD_ECLOCK);
    cr_assert_eq(ld_hlc_check(ld_hlc_make(T0 - 99999, 0), T0, 10, &err), 0);
    cr_assert_eq(ld_hlc_check(UINT64_MAX, UINT64_MAX - 5, UINT64_MAX, &err), 0,
                 "no overflow in the limit");
}

Test(hlc, the_real_clock_is_used_when_none_is_injected)
{
    ld_hlc_t real;
    ld_hlc_init(&real, 0);
    uint64_t wall = ld_hlc_wall_now();
    uint64_t s = ld_hlc_now(&real);
    cr_assert_geq(ld_hlc_ms(s), wall);
    cr_assert_lt(ld_hlc_ms(s), wall + 60000);
    cr_assert_gt(wall, T0, "the real clock is after 2010");
}
