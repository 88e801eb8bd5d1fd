/* test_uuid.c: record ids are version-7 UUIDs that sort in the order they were made
 * whatever the clock does, random ones are distinct version-4 UUIDs, all lowercase
 * text, and the validity check accepts exactly that shape. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "uuid.h"

TestSuite(uuid);

static int cmp_ids(const void *a, const void *b)
{
    return strcmp(a, b);
}

Test(uuid, new_ids_are_valid_version_4_and_distinct)
{
    enum { N = 2000 };
    char (*ids)[LD_UUID_LEN + 1] = calloc(N, sizeof *ids);
    cr_assert_not_null(ids);
    ld_error_t err;
    for (int i = 0; i < N; i++) {
        cr_assert_eq(ld_uuid_new(ids[i], &err), 0, "%s", err.msg);
        cr_assert(ld_uuid_valid(ids[i]), "%s", ids[i]);
        cr_assert_eq(strlen(ids[i]), LD_UUID_LEN);
        cr_assert_eq(ids[i][14], '4', "version nibble in %s", ids[i]);
        cr_assert(strchr("89ab", ids[i][19]) != NULL, "variant in %s", ids[i]);
    }
    qsort(ids, N, sizeof *ids, cmp_ids);
    for (int i = 1; i < N; i++)
        cr_assert_str_neq(ids[i - 1], ids[i]);
    free(ids);
}

/* The 48-bit milliseconds an id carries. */
static uint64_t id_ms(const char *id)
{
    char hex[13];
    memcpy(hex, id, 8);
    memcpy(hex + 8, id + 9, 4);
    hex[12] = '\0';
    return strtoull(hex, NULL, 16);
}

Test(uuid, version_7_ids_sort_in_the_order_they_were_made)
{
    enum { N = 10000 };
    char (*ids)[LD_UUID_LEN + 1] = calloc(N, sizeof *ids);
    cr_assert_not_null(ids);
    ld_uuid7_t g;
    ld_uuid7_init(&g);
    ld_error_t err;
    uint64_t now = UINT64_C(1764201600000);          /* 2025-11-27 08:00 CST */
    for (int i = 0; i < N; i++) {
        /* the clock: steady, then 5,000 ids in one millisecond, then a step back */
        uint64_t t = i < 3000 ? now + (uint64_t)i / 10 : i < 8000 ? now + 300 : now + 100;
        cr_assert_eq(ld_uuid7_next(&g, t, ids[i], &err), 0, "%s", err.msg);
        cr_assert(ld_uuid_valid(ids[i]), "%s", ids[i]);
        cr_assert_eq(ids[i][14], '7', "version nibble in %s", ids[i]);
        cr_assert(strchr("89ab", ids[i][19]) != NULL, "variant in %s", ids[i]);
        if (i > 0)
            cr_assert_lt(strcmp(ids[i - 1], ids[i]), 0, "%s then %s", ids[i - 1], ids[i]);
    }
    cr_assert_eq(id_ms(ids[0]), now);
    /* 4,096 ids fill a millisecond; the next ones borrow the millisecond after it */
    cr_assert_eq(id_ms(ids[3000]), now + 300);
    cr_assert_eq(id_ms(ids[3000 + 4096]), now + 301);
    /* a clock stepped back does not take the ids back with it */
    cr_assert_geq(id_ms(ids[N - 1]), now + 301);
    free(ids);
}

Test(uuid, two_makers_in_the_same_millisecond_make_different_ids)
{
    ld_uuid7_t a, b;
    ld_uuid7_init(&a);
    ld_uuid7_init(&b);
    char x[LD_UUID_LEN + 1], y[LD_UUID_LEN + 1];
    ld_error_t err;
    for (int i = 0; i < 1000; i++) {
        cr_assert_eq(ld_uuid7_next(&a, 5000, x, &err), 0, "%s", err.msg);
        cr_assert_eq(ld_uuid7_next(&b, 5000, y, &err), 0, "%s", err.msg);
        cr_assert_str_neq(x, y);
    }
}

Test(uuid, only_lowercase_8_4_4_4_12_hex_is_valid)
{
    cr_assert(ld_uuid_valid("0f8fad5b-d9cb-469f-a165-70867728950e"));
    cr_assert(ld_uuid_valid("00000000-0000-0000-0000-000000000000"));
    const char *bad[] = {
        "0F8FAD5B-D9CB-469F-A165-70867728950E",      /* uppercase */
        "0f8fad5b-d9cb-469f-a165-70867728950",       /* short */
        "0f8fad5b-d9cb-469f-a165-70867728950e0",     /* long */
        "0f8fad5bd9cb-469f-a165-70867728950e0",      /* dash moved */
        "0f8fad5b-d9cb-469f-a165_70867728950e",      /* wrong separator */
        "0f8fad5g-d9cb-469f-a165-70867728950e",      /* not hex */
        "{0f8fad5b-d9cb-469f-a165-70867728950e}",
        "",
        "林术平",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_not(ld_uuid_valid(bad[i]), "%s", bad[i]);
    cr_assert_not(ld_uuid_valid(NULL));
}
