/* test_held.c: the PUSH_ACKs held until durable (broker/held.h): released oldest first
 * and only up to the durable ticket, with copies of what they were given. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include "error.h"
#include "held.h"

#define SEEN_MAX 64

typedef struct seen {
    size_t   n;
    uint64_t upto[SEEN_MAX];
    char     rid[SEEN_MAX][16];
    char     notify[SEEN_MAX][64];    /* the names, joined by ',' */
} seen_t;

static void note(void *ctx, const uint8_t *rid, size_t rid_len, uint64_t upto,
                 const char *const *notify, size_t nnotify)
{
    seen_t *s = ctx;
    cr_assert_lt(s->n, SEEN_MAX);
    cr_assert_lt(rid_len, sizeof s->rid[0]);
    s->upto[s->n] = upto;
    memcpy(s->rid[s->n], rid, rid_len);
    s->rid[s->n][rid_len] = '\0';
    s->notify[s->n][0] = '\0';
    for (size_t i = 0; i < nnotify; i++) {
        if (i > 0)
            strcat(s->notify[s->n], ",");
        strcat(s->notify[s->n], notify[i]);
    }
    s->n++;
}

static int add(bk_held_t *h, uint64_t ticket, const char *rid, uint64_t upto,
               const char *const *notify, size_t nnotify)
{
    return bk_held_add(h, ticket, (const uint8_t *)rid, strlen(rid), upto, notify, nnotify);
}

Test(held, replies_leave_oldest_first_and_only_up_to_the_durable_ticket)
{
    bk_held_t *h = bk_held_new();
    cr_assert_not_null(h);
    const char *const both[] = { "dongguan", "shenzhen" };
    cr_assert_eq(add(h, 1, "zy-1", 100, both, 2), 0);
    cr_assert_eq(add(h, 2, "zy-1", 200, NULL, 0), 0);
    cr_assert_eq(add(h, 2, "dg-7", 5, both, 1), 0);
    cr_assert_eq(add(h, 4, "zy-1", 300, both + 1, 1), 0);
    cr_assert_eq(bk_held_count(h), 4);

    seen_t s = { 0 };
    cr_assert_eq(bk_held_release(h, 0, note, &s), 0, "nothing is durable yet");
    cr_assert_eq(bk_held_release(h, 2, note, &s), 3);
    cr_assert_eq(s.n, 3);
    cr_assert_eq(s.upto[0], 100);
    cr_assert_str_eq(s.rid[0], "zy-1");
    cr_assert_str_eq(s.notify[0], "dongguan,shenzhen");
    cr_assert_eq(s.upto[1], 200);
    cr_assert_str_eq(s.notify[1], "");
    cr_assert_eq(s.upto[2], 5);
    cr_assert_str_eq(s.rid[2], "dg-7");
    cr_assert_str_eq(s.notify[2], "dongguan");
    cr_assert_eq(bk_held_count(h), 1, "ticket 4 waits");

    cr_assert_eq(bk_held_release(h, 3, note, &s), 0);
    cr_assert_eq(bk_held_release(h, 9, note, &s), 1);
    cr_assert_eq(s.upto[3], 300);
    cr_assert_str_eq(s.notify[3], "shenzhen");
    cr_assert_eq(bk_held_count(h), 0);
    bk_held_destroy(&h);
    cr_assert_null(h);
}

Test(held, what_is_held_is_a_copy_of_what_the_caller_lent)
{
    bk_held_t *h = bk_held_new();
    char rid[8] = "peer-1";
    char name[16] = "dongguan";
    const char *notify[] = { name };
    cr_assert_eq(add(h, 1, rid, 42, notify, 1), 0);
    strcpy(rid, "XXXXXX");
    strcpy(name, "YYYYYYYY");
    seen_t s = { 0 };
    cr_assert_eq(bk_held_release(h, 1, note, &s), 1);
    cr_assert_str_eq(s.rid[0], "peer-1");
    cr_assert_str_eq(s.notify[0], "dongguan");
    bk_held_destroy(&h);
}

Test(held, a_long_queue_keeps_its_order_while_it_is_drained_and_refilled)
{
    bk_held_t *h = bk_held_new();
    seen_t s = { 0 };
    uint64_t next_upto = 1, want_upto = 1;
    char rid[16];
    /* add three, release two, many times over: the queue slides and grows under it */
    for (uint64_t ticket = 1; ticket <= 3000; ticket += 3) {
        for (uint64_t k = 0; k < 3; k++) {
            snprintf(rid, sizeof rid, "r%llu", (unsigned long long)(next_upto % 1000));
            cr_assert_eq(add(h, ticket + k, rid, next_upto++, NULL, 0), 0);
        }
        s.n = 0;
        bk_held_release(h, ticket + 1 - (ticket > 1 ? 1 : 0), note, &s);
        for (size_t i = 0; i < s.n; i++)
            cr_assert_eq(s.upto[i], want_upto++, "released out of order");
    }
    for (uint64_t durable = 0; durable <= 3000 + 20; durable += 20) {
        s.n = 0;
        bk_held_release(h, durable, note, &s);
        for (size_t i = 0; i < s.n; i++)
            cr_assert_eq(s.upto[i], want_upto++, "released out of order");
    }
    cr_assert_eq(want_upto, next_upto, "every reply left exactly once");
    cr_assert_eq(bk_held_count(h), 0);
    bk_held_destroy(&h);
}

Test(held, destroy_frees_what_is_still_held)
{
    bk_held_t *h = bk_held_new();
    const char *const one[] = { "dongguan" };
    cr_assert_eq(add(h, 5, "zy-1", 1, one, 1), 0);
    bk_held_destroy(&h);           /* the sanitizer run finds a leak if it does not */
    cr_assert_null(h);
    bk_held_destroy(&h);
}
