/* test_change.c: building changes and validating them: every field type with good and
 * bad values, ids, stamps, tombstones and audiences. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "change.h"

#define UUID_A "0f8fad5b-d9cb-469f-a165-70867728950e"

static ld_change_t c;
static ld_error_t err;

static void setup(void)
{
    ld_change_init(&c);
    c.kind = LD_KIND_MEMBER;
    strcpy(c.record_id, UUID_A);
    strcpy(c.origin, "zhuyuan");
    c.seq = 1;
    c.hlc = 12345;
    ld_error_clear(&err);
}

static void teardown(void)
{
    ld_change_clear(&c);
}

TestSuite(change, .init = setup, .fini = teardown);

/* The definition of kind.field. */
static const ld_field_def_t *field(const char *kind, const char *name)
{
    const ld_kind_def_t *def = ld_schema_kind_by_name(kind);
    cr_assert_not_null(def, "%s", kind);
    int i = ld_schema_field_index(def, name);
    cr_assert_geq(i, 0, "%s.%s", kind, name);
    return &def->fields[i];
}

static void assert_good(const char *kind, const char *name, const char *value)
{
    ld_error_clear(&err);
    cr_assert_eq(ld_field_validate(field(kind, name), value, &err), 0, "%s.%s = \"%s\": %s",
                 kind, name, value, err.msg);
}

static void assert_bad(const char *kind, const char *name, const char *value)
{
    ld_error_clear(&err);
    cr_assert_eq(ld_field_validate(field(kind, name), value, &err), LD_EINVAL,
                 "%s.%s = \"%s\" was accepted", kind, name, value);
    cr_assert(strstr(err.msg, name) != NULL, "message names the field: %s", err.msg);
}

Test(change, text_takes_chinese_and_refuses_broken_or_long_utf8)
{
    assert_good("member", "name", "林术平");
    assert_good("org", "name", "中共竹园镇外出创业群体广东东莞支部委员会");
    assert_good("trip", "address", "广东省东莞市\n长安镇");
    assert_bad("member", "name", "\xff\xfe");                 /* not UTF-8 */
    assert_bad("member", "name", "\xc0\xaf");                 /* overlong '/' */
    assert_bad("member", "name", "\xe0\x80\xaf");             /* overlong, three bytes */
    assert_bad("member", "name", "\xed\xa0\x80");             /* a surrogate */
    assert_bad("member", "name", "\xe6\x9e");                 /* cut short */
    assert_bad("member", "name", "张\x01三");                 /* a control character */
    assert_bad("member", "name", "张\n三");                   /* names are one line */
    assert_bad("org", "name", "中共竹园镇\n东莞支部");

    char name[100];
    memset(name, 'a', 96);
    name[96] = '\0';
    assert_good("member", "name", name);
    name[96] = 'a';
    name[97] = '\0';
    assert_bad("member", "name", name);
    cr_assert(strstr(err.msg, "96") != NULL, "%s", err.msg);

    char *note = malloc(2002);
    memset(note, 'x', 2000);
    note[2000] = '\0';
    assert_good("visit", "note", note);
    strcpy(note + 2000, "x");
    assert_bad("visit", "note", note);
    free(note);
}

Test(change, phone_numbers_take_digits_spaces_plus_and_dash_only)
{
    assert_good("member", "phone", "800-5-12371");
    assert_good("trip", "phone", "+86 769 2345 6789");
    assert_bad("member", "phone", "800-5-12371 转 3");
    assert_bad("member", "phone", "call me");
    assert_bad("trip", "phone", "123456789012345678901234567890123");   /* 33 bytes */
}

Test(change, id_numbers_are_17_digits_and_a_digit_or_x)
{
    assert_good("member", "id_number", "500236198001011234");
    assert_good("member", "id_number", "50023619800101123X");
    assert_bad("member", "id_number", "50023619800101123x");
    assert_bad("member", "id_number", "5002361980010112");
    assert_bad("member", "id_number", "5002361980010112345");
    assert_bad("member", "id_number", "50023619800101X234");
}

Test(change, dates_must_be_real_days_between_1900_and_2199)
{
    assert_good("trip", "started", "2010-05-01");
    assert_good("trip", "started", "2024-02-29");
    assert_good("trip", "started", "2000-02-29");
    assert_good("trip", "started", "1900-01-01");
    assert_good("trip", "started", "2199-12-31");
    assert_bad("trip", "started", "2023-02-29");
    assert_bad("trip", "started", "1900-02-29");
    assert_bad("trip", "started", "2010-04-31");
    assert_bad("trip", "started", "2010-13-01");
    assert_bad("trip", "started", "2010-00-10");
    assert_bad("trip", "started", "1899-12-31");
    assert_bad("trip", "started", "2200-01-01");
    assert_bad("trip", "started", "2010-5-1");
    assert_bad("trip", "started", "2010/05/01");
    assert_bad("trip", "started", "2010-05-01 ");
    assert_bad("trip", "started", "二〇一〇年五月");
    cr_assert(strstr(err.msg, "YYYY-MM-DD") != NULL, "%s", err.msg);
}

Test(change, months_are_year_and_month)
{
    assert_good("activity", "month", "2010-05");
    assert_bad("activity", "month", "2010-13");
    assert_bad("activity", "month", "2010-5");
    assert_bad("activity", "month", "2010-05-01");
    assert_bad("activity", "month", "1899-12");
}

Test(change, enums_take_only_their_words)
{
    assert_good("trip", "status", "reported-in");
    assert_good("assessment", "grade", "basically-competent");
    assert_good("org", "kind", "mobile");
    assert_good("care", "kind", "land-transfer");
    assert_bad("trip", "status", "reported_in");
    assert_bad("trip", "status", "REGISTERED");
    assert_bad("trip", "status", "unspecified");
    assert_bad("org", "kind", "1");
    cr_assert(strstr(err.msg, "township") != NULL, "the message lists the words: %s", err.msg);
}

Test(change, money_is_non_negative_fen_in_digits)
{
    assert_good("activity", "amount", "0");
    assert_good("activity", "amount", "2000");
    assert_good("activity", "amount", "99999999999");
    assert_bad("activity", "amount", "-1");
    assert_bad("activity", "amount", "-2000");
    assert_bad("activity", "amount", "20.00");
    assert_bad("activity", "amount", "0100");
    assert_bad("activity", "amount", "100000000000");
    assert_bad("activity", "amount", "1e3");
    assert_bad("activity", "amount", " 5");
}

Test(change, years_run_from_1900_to_2199)
{
    assert_good("assessment", "year", "2010");
    assert_good("assessment", "year", "1900");
    assert_good("assessment", "year", "2199");
    assert_bad("assessment", "year", "1899");
    assert_bad("assessment", "year", "2200");
    assert_bad("assessment", "year", "10");
    assert_bad("assessment", "year", "2010年");
}

Test(change, references_are_uuids_or_org_ids)
{
    assert_good("trip", "member", UUID_A);
    assert_good("trip", "to", "dongguan-branch");
    assert_good("trip", "to", UUID_A);
    assert_bad("trip", "member", "dongguan-branch");
    assert_bad("trip", "member", "0F8FAD5B-D9CB-469F-A165-70867728950E");
    assert_bad("trip", "to", "Dongguan");
    assert_bad("trip", "to", "-dongguan");
    assert_bad("trip", "to", "东莞");
    assert_bad("contact", "agreement", "zhuyuan");
    assert_good("org", "node", "zhuyuan.town_1");
    assert_bad("org", "node", "zhuyuan town");
}

Test(change, required_fields_cannot_be_cleared_but_others_can)
{
    assert_bad("member", "name", "");
    assert_bad("trip", "status", "");
    assert_good("member", "phone", "");
    assert_good("trip", "ended", "");
    assert_good("activity", "amount", "");
}

Test(change, set_appends_known_fields_once_and_get_reads_them)
{
    cr_assert_eq(ld_change_set(&c, "name", "张小平", &err), 0, "%s", err.msg);
    cr_assert_eq(ld_change_set(&c, "org", "tingzi", &err), 0);
    cr_assert_eq(c.nfields, 2);
    cr_assert_str_eq(ld_change_get(&c, "name"), "张小平");
    cr_assert_null(ld_change_get(&c, "phone"));
    cr_assert_eq(ld_change_set(&c, "name", "again", &err), LD_EINVAL);
    cr_assert(strstr(err.msg, "twice") != NULL, "%s", err.msg);
    cr_assert_eq(ld_change_set(&c, "salary", "1", &err), LD_EINVAL);
    cr_assert(strstr(err.msg, "salary") != NULL, "%s", err.msg);
    cr_assert_eq(c.nfields, 2);
    cr_assert_eq(ld_change_validate(&c, &err), 0, "%s", err.msg);
}

Test(change, set_without_a_kind_is_refused)
{
    c.kind = LD_KIND_NONE;
    cr_assert_eq(ld_change_set(&c, "name", "x", &err), LD_EINVAL);
}

Test(change, the_audience_takes_valid_node_ids_once)
{
    cr_assert_eq(ld_change_add_audience(&c, "zhuyuan", &err), 0);
    cr_assert_eq(ld_change_add_audience(&c, "dongguan", &err), 0);
    cr_assert_eq(ld_change_add_audience(&c, "zhuyuan", &err), 0);
    cr_assert_eq(c.naudience, 2);
    cr_assert_eq(ld_change_add_audience(&c, "Dongguan", &err), LD_EINVAL);
    cr_assert_eq(ld_change_add_audience(&c, "", &err), LD_EINVAL);
    char node[16];
    for (size_t i = c.naudience; i < LD_AUDIENCE_MAX; i++) {
        snprintf(node, sizeof node, "n%zu", i);
        cr_assert_eq(ld_change_add_audience(&c, node, &err), 0);
    }
    cr_assert_eq(ld_change_add_audience(&c, "one-more", &err), LD_ETOOBIG);
    cr_assert_eq(ld_change_validate(&c, &err), 0, "%s", err.msg);
}

Test(change, copy_is_deep)
{
    ld_change_set(&c, "name", "林术平", &err);
    c.fields[0].hlc = 77;
    strcpy(c.fields[0].origin, "dongguan");
    ld_change_add_audience(&c, "zhuyuan", &err);
    ld_change_t d;
    ld_change_init(&d);
    cr_assert_eq(ld_change_copy(&d, &c, &err), 0);
    cr_assert_neq(d.fields[0].value, c.fields[0].value);
    cr_assert_str_eq(d.fields[0].value, "林术平");
    cr_assert_eq(d.fields[0].hlc, 77);
    cr_assert_str_eq(d.audience[0], "zhuyuan");
    ld_change_clear(&c);                 /* d survives its source */
    cr_assert_str_eq(d.fields[0].value, "林术平");
    ld_change_clear(&d);
    ld_change_clear(&d);
}

Test(change, validate_checks_ids_seq_and_stamp)
{
    cr_assert_eq(ld_change_validate(&c, &err), 0, "%s", err.msg);

    strcpy(c.record_id, "not-a-uuid");
    cr_assert_eq(ld_change_validate(&c, &err), LD_EINVAL);
    cr_assert(strstr(err.msg, "not-a-uuid") != NULL, "%s", err.msg);
    c.kind = LD_KIND_ORG;                 /* org ids may be chosen by a user */
    cr_assert_eq(ld_change_validate(&c, &err), 0, "%s", err.msg);
    strcpy(c.record_id, "Not An Id");
    cr_assert_eq(ld_change_validate(&c, &err), LD_EINVAL);
    c.kind = LD_KIND_MEMBER;
    strcpy(c.record_id, UUID_A);

    strcpy(c.origin, "");
    cr_assert_eq(ld_change_validate(&c, &err), LD_EINVAL);
    strcpy(c.origin, "zhuyuan");
    c.seq = 0;
    cr_assert_eq(ld_change_validate(&c, &err), LD_EINVAL);
    cr_assert(strstr(err.msg, "seq") != NULL, "%s", err.msg);
    c.seq = 1;
    c.hlc = 0;
    cr_assert_eq(ld_change_validate(&c, &err), LD_EINVAL);
    c.hlc = 1;
    c.kind = LD_KIND_COUNT;
    cr_assert_eq(ld_change_validate(&c, &err), LD_EINVAL);
    c.kind = LD_KIND_MEMBER;
    memset(c.origin, 'a', sizeof c.origin);              /* no terminator */
    cr_assert_eq(ld_change_validate(&c, &err), LD_EINVAL);
}

Test(change, validate_names_the_field_and_value_that_failed)
{
    ld_change_set(&c, "born", "2023-02-29", &err);
    cr_assert_eq(ld_change_validate(&c, &err), LD_EINVAL);
    cr_assert(strstr(err.msg, "born") != NULL, "%s", err.msg);
    cr_assert(strstr(err.msg, "2023-02-29") != NULL, "%s", err.msg);
    cr_assert(strstr(err.msg, UUID_A) != NULL, "%s", err.msg);
}

Test(change, a_non_utf8_value_is_quoted_safely_in_the_message)
{
    ld_change_set(&c, "name", "\xff\x01\x80", &err);
    cr_assert_eq(ld_change_validate(&c, &err), LD_EINVAL);
    cr_assert(ld_utf8_valid(err.msg, strlen(err.msg)), "%s", err.msg);
    cr_assert(strstr(err.msg, "\\xff") != NULL, "%s", err.msg);
}

Test(change, a_tombstone_sets_no_fields)
{
    c.deleted = true;
    cr_assert_eq(ld_change_validate(&c, &err), 0, "%s", err.msg);
    ld_change_set(&c, "name", "x", &err);
    cr_assert_eq(ld_change_validate(&c, &err), LD_EINVAL);
    cr_assert(strstr(err.msg, "delet") != NULL, "%s", err.msg);
}

Test(change, a_field_set_twice_behind_sets_back_is_refused)
{
    ld_change_set(&c, "name", "a", &err);
    ld_change_set(&c, "phone", "1", &err);
    c.fields[1].name = c.fields[0].name;     /* as a hostile peer could arrange */
    cr_assert_eq(ld_change_validate(&c, &err), LD_EINVAL);
    cr_assert(strstr(err.msg, "twice") != NULL, "%s", err.msg);
}

Test(change, field_stamps_need_a_stamp_and_a_valid_origin)
{
    ld_change_set(&c, "name", "林术平", &err);
    ld_field_t *f = &c.fields[0];
    f->hlc = 5;
    cr_assert_eq(ld_change_validate(&c, &err), 0, "an empty origin means the change's");
    strcpy(f->origin, "dongguan");
    cr_assert_eq(ld_change_validate(&c, &err), 0, "%s", err.msg);
    strcpy(f->origin, "Dong Guan");
    cr_assert_eq(ld_change_validate(&c, &err), LD_EINVAL);
    strcpy(f->origin, "dongguan");
    f->hlc = 0;
    cr_assert_eq(ld_change_validate(&c, &err), LD_EINVAL, "an origin without a stamp");
    f->hlc = 5;

    f->base_hlc = 3;
    cr_assert_eq(ld_change_validate(&c, &err), LD_EINVAL, "a base without its origin");
    strcpy(f->base_origin, "zhuyuan");
    cr_assert_eq(ld_change_validate(&c, &err), 0, "%s", err.msg);
    f->base_hlc = 0;
    cr_assert_eq(ld_change_validate(&c, &err), LD_EINVAL, "a base origin without a stamp");
}

Test(change, an_audience_with_a_bad_or_repeated_node_is_refused)
{
    c.naudience = 2;
    strcpy(c.audience[0], "zhuyuan");
    strcpy(c.audience[1], "zhuyuan");
    cr_assert_eq(ld_change_validate(&c, &err), LD_EINVAL);
    strcpy(c.audience[1], "东莞");
    cr_assert_eq(ld_change_validate(&c, &err), LD_EINVAL);
    c.naudience = LD_AUDIENCE_MAX + 1;
    cr_assert_eq(ld_change_validate(&c, &err), LD_EINVAL);
    c.naudience = 0;
}

Test(change, every_kind_accepts_its_required_fields)
{
    for (int k = LD_KIND_NONE + 1; k < LD_KIND_COUNT; k++) {
        const ld_kind_def_t *def = ld_schema_kind((ld_kind_t)k);
        for (size_t i = 0; i < def->nfields; i++) {
            const ld_field_def_t *f = &def->fields[i];
            if (f->required)
                cr_assert_neq(ld_field_validate(f, "", &err), 0, "%s.%s", def->name, f->name);
        }
    }
}
