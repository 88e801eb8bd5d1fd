/* test_uuid.c: new record ids are distinct version-4 UUIDs in lowercase text, and the
 * validity check accepts exactly that shape. */
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
