/* test_merge.c: field-level last-writer-wins on one record: who wins, when a race is
 * logged and with which loser, tombstones, the created stamp, the stamps text, and a
 * trip's status, whose later stage wins. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "change.h"
#include "merge.h"
#include "schema.h"

#define MEMBER_ID "6f1c2a52-8d4e-4b1a-9f3e-0c5d7e8f9a01"

static const ld_kind_def_t *member_def;

static void setup(void)
{
    member_def = ld_schema_kind(LD_KIND_MEMBER);
}

TestSuite(merge, .init = setup);

/* A change to the test member from `origin` at `hlc`. */
static void change(ld_change_t *c, const char *origin, uint64_t hlc)
{
    ld_change_init(c);
    c->kind = LD_KIND_MEMBER;
    strcpy(c->record_id, MEMBER_ID);
    strcpy(c->origin, origin);
    c->seq = 1;
    c->hlc = hlc;
}

/* Sets a field whose writer had seen the stamp (base_hlc, base_origin). */
static void field(ld_change_t *c, const char *name, const char *value, uint64_t base_hlc,
                  const char *base_origin)
{
    cr_assert_eq(ld_change_set(c, name, value, NULL), 0);
    ld_field_t *f = &c->fields[c->nfields - 1];
    f->base_hlc = base_hlc;
    strcpy(f->base_origin, base_origin);
}

/* Merges c into r and returns the number of conflicts logged (res kept in *res). */
static size_t merge(nd_record_t *r, ld_change_t *c, nd_merge_result_t *res)
{
    ld_error_t err;
    cr_assert_eq(nd_merge_apply(r, c, res, &err), 0, "%s", err.msg);
    ld_change_clear(c);
    return res->nconflicts;
}

/* r := the member created by "home" at hlc 100 with phone 111. */
static void created(nd_record_t *r)
{
    ld_change_t c;
    nd_merge_result_t res;
    nd_record_init(r, member_def, MEMBER_ID);
    change(&c, "home", 100);
    field(&c, "name", "张三", 0, "");
    field(&c, "org", "longtan", 0, "");
    field(&c, "phone", "111", 0, "");
    cr_assert_eq(merge(r, &c, &res), 0);
    nd_merge_result_clear(&res);
}

Test(merge, a_newer_stamp_wins_and_an_older_one_changes_nothing)
{
    nd_record_t r;
    nd_merge_result_t res;
    ld_change_t c;
    created(&r);

    change(&c, "dg", 200);
    field(&c, "phone", "222", 100, "home");
    cr_assert_eq(merge(&r, &c, &res), 0);
    cr_assert(res.changed);
    cr_assert_str_eq(nd_record_get(&r, "phone"), "222");
    nd_merge_result_clear(&res);

    change(&c, "zz", 150);
    field(&c, "phone", "333", 100, "home");
    merge(&r, &c, &res);
    cr_assert_not(res.changed);
    cr_assert_str_eq(nd_record_get(&r, "phone"), "222");
    nd_merge_result_clear(&res);
    nd_record_clear(&r);
}

Test(merge, equal_clock_stamps_are_ordered_by_origin)
{
    nd_record_t r;
    nd_merge_result_t res;
    ld_change_t c;
    created(&r);
    change(&c, "bb", 300);
    field(&c, "phone", "from-bb", 100, "home");
    merge(&r, &c, &res);
    nd_merge_result_clear(&res);
    change(&c, "aa", 300);
    field(&c, "phone", "from-aa", 100, "home");
    merge(&r, &c, &res);
    cr_assert_str_eq(nd_record_get(&r, "phone"), "from-bb");
    nd_merge_result_clear(&res);
    nd_record_clear(&r);
}

Test(merge, the_same_write_twice_changes_nothing_and_logs_nothing)
{
    nd_record_t r;
    nd_merge_result_t res;
    ld_change_t c;
    created(&r);
    for (int i = 0; i < 2; i++) {
        change(&c, "dg", 200);
        field(&c, "phone", "222", 100, "home");
        cr_assert_eq(merge(&r, &c, &res), 0);
        cr_assert_eq(res.changed, i == 0);
        nd_merge_result_clear(&res);
    }
    nd_record_clear(&r);
}

Test(merge, different_fields_written_concurrently_both_survive)
{
    nd_record_t r;
    nd_merge_result_t res;
    ld_change_t c;
    created(&r);
    change(&c, "home", 200);
    field(&c, "phone", "222", 100, "home");
    cr_assert_eq(merge(&r, &c, &res), 0);
    nd_merge_result_clear(&res);
    change(&c, "dg", 190);
    field(&c, "born", "1980-02-03", 0, "");
    cr_assert_eq(merge(&r, &c, &res), 0);
    nd_merge_result_clear(&res);
    cr_assert_str_eq(nd_record_get(&r, "phone"), "222");
    cr_assert_str_eq(nd_record_get(&r, "born"), "1980-02-03");
    nd_record_clear(&r);
}

Test(merge, a_sequential_overwrite_is_not_a_conflict)
{
    nd_record_t r;
    nd_merge_result_t res;
    ld_change_t c;
    created(&r);
    change(&c, "dg", 200);
    field(&c, "phone", "222", 100, "home");     /* dg had seen 111 */
    cr_assert_eq(merge(&r, &c, &res), 0);
    nd_merge_result_clear(&res);
    nd_record_clear(&r);
}

Test(merge, a_race_logs_the_same_loser_whichever_side_merges_it)
{
    /* home writes 222 at 200, dg writes 333 at 300; both had seen 111 (100, home). */
    nd_record_t at_home, at_dg;
    nd_merge_result_t res;
    ld_change_t c;
    created(&at_home);
    created(&at_dg);

    change(&c, "home", 200);
    field(&c, "phone", "222", 100, "home");
    merge(&at_home, &c, &res);
    nd_merge_result_clear(&res);
    change(&c, "dg", 300);
    field(&c, "phone", "333", 100, "home");
    merge(&at_dg, &c, &res);
    nd_merge_result_clear(&res);

    /* home receives dg's write: it wins, home's own value lost. */
    change(&c, "dg", 300);
    field(&c, "phone", "333", 100, "home");
    cr_assert_eq(merge(&at_home, &c, &res), 1);
    cr_assert_str_eq(res.conflicts[0].field, "phone");
    cr_assert_str_eq(res.conflicts[0].loser_value, "222");
    cr_assert_eq(res.conflicts[0].loser.hlc, 200);
    cr_assert_str_eq(res.conflicts[0].loser.origin, "home");
    cr_assert_str_eq(res.conflicts[0].winner_value, "333");
    nd_merge_result_clear(&res);

    /* dg receives home's write: it loses, and is the logged loser there too. */
    change(&c, "home", 200);
    field(&c, "phone", "222", 100, "home");
    cr_assert_eq(merge(&at_dg, &c, &res), 1);
    cr_assert_str_eq(res.conflicts[0].loser_value, "222");
    cr_assert_eq(res.conflicts[0].loser.hlc, 200);
    cr_assert_str_eq(res.conflicts[0].loser.origin, "home");
    cr_assert_str_eq(res.conflicts[0].winner_value, "333");
    nd_merge_result_clear(&res);

    cr_assert_str_eq(nd_record_get(&at_home, "phone"), "333");
    cr_assert_str_eq(nd_record_get(&at_dg, "phone"), "333");
    nd_record_clear(&at_home);
    nd_record_clear(&at_dg);
}

Test(merge, an_older_write_the_winner_had_seen_is_not_logged)
{
    /* dg overwrote 111 knowingly; 111 arriving late is no race. */
    nd_record_t r;
    nd_merge_result_t res;
    ld_change_t c;
    nd_record_init(&r, member_def, MEMBER_ID);
    change(&c, "dg", 200);
    field(&c, "phone", "222", 100, "home");
    merge(&r, &c, &res);
    nd_merge_result_clear(&res);
    change(&c, "home", 100);
    field(&c, "name", "张三", 0, "");
    field(&c, "org", "longtan", 0, "");
    field(&c, "phone", "111", 0, "");
    cr_assert_eq(merge(&r, &c, &res), 0);
    cr_assert_str_eq(nd_record_get(&r, "phone"), "222");
    cr_assert_str_eq(nd_record_get(&r, "name"), "张三");
    nd_merge_result_clear(&res);
    nd_record_clear(&r);
}

Test(merge, racing_writes_of_the_same_value_are_not_logged)
{
    nd_record_t r;
    nd_merge_result_t res;
    ld_change_t c;
    created(&r);
    change(&c, "home", 200);
    field(&c, "phone", "222", 100, "home");
    merge(&r, &c, &res);
    nd_merge_result_clear(&res);
    change(&c, "dg", 300);
    field(&c, "phone", "222", 100, "home");
    cr_assert_eq(merge(&r, &c, &res), 0);
    cr_assert_eq(r.fields[ld_schema_field_index(member_def, "phone")].stamp.hlc, 300);
    nd_merge_result_clear(&res);
    nd_record_clear(&r);
}

Test(merge, a_tombstone_is_a_field_and_later_field_writes_still_merge)
{
    nd_record_t r;
    nd_merge_result_t res;
    ld_change_t c;
    created(&r);
    change(&c, "dg", 200);
    c.deleted = true;
    cr_assert_eq(merge(&r, &c, &res), 0);
    cr_assert(nd_record_deleted(&r));
    nd_merge_result_clear(&res);

    change(&c, "home", 300);
    field(&c, "phone", "999", 100, "home");
    merge(&r, &c, &res);
    cr_assert(nd_record_deleted(&r));
    cr_assert_str_eq(nd_record_get(&r, "phone"), "999");
    nd_stamp_t latest = nd_record_latest(&r);
    cr_assert_eq(latest.hlc, 300);
    nd_merge_result_clear(&res);

    change(&c, "zz", 250);
    c.deleted = true;
    cr_assert_eq(merge(&r, &c, &res), 0);
    cr_assert_eq(r.deleted.stamp.hlc, 250);
    nd_merge_result_clear(&res);
    nd_record_clear(&r);
}

Test(merge, an_empty_value_clears_the_field)
{
    nd_record_t r;
    nd_merge_result_t res;
    ld_change_t c;
    created(&r);
    change(&c, "home", 200);
    field(&c, "phone", "", 100, "home");
    merge(&r, &c, &res);
    cr_assert_null(nd_record_get(&r, "phone"));
    cr_assert_eq(r.fields[ld_schema_field_index(member_def, "phone")].stamp.hlc, 200);
    nd_merge_result_clear(&res);
    nd_record_clear(&r);
}

Test(merge, the_created_stamp_is_the_lowest_whatever_the_order)
{
    nd_record_t a, b;
    nd_merge_result_t res;
    ld_change_t c;
    nd_record_init(&a, member_def, MEMBER_ID);
    nd_record_init(&b, member_def, MEMBER_ID);

    change(&c, "dg", 200);
    field(&c, "phone", "222", 100, "home");
    merge(&a, &c, &res);
    nd_merge_result_clear(&res);
    change(&c, "home", 100);
    field(&c, "name", "张三", 0, "");
    merge(&a, &c, &res);
    nd_merge_result_clear(&res);

    change(&c, "home", 100);
    field(&c, "name", "张三", 0, "");
    merge(&b, &c, &res);
    nd_merge_result_clear(&res);
    change(&c, "dg", 200);
    field(&c, "phone", "222", 100, "home");
    merge(&b, &c, &res);
    nd_merge_result_clear(&res);

    cr_assert_eq(a.created.hlc, 100);
    cr_assert_str_eq(a.created.origin, "home");
    cr_assert_eq(nd_stamp_cmp(&a.created, &b.created), 0);
    char *sa = nd_stamps_encode(&a), *sb = nd_stamps_encode(&b);
    cr_assert_str_eq(sa, sb);
    free(sa);
    free(sb);
    nd_record_clear(&a);
    nd_record_clear(&b);
}

Test(merge, stamps_text_round_trips)
{
    nd_record_t r, back;
    nd_merge_result_t res;
    ld_change_t c;
    created(&r);
    change(&c, "dg", 200);
    field(&c, "phone", "222", 100, "home");
    merge(&r, &c, &res);
    nd_merge_result_clear(&res);
    change(&c, "dg", 300);
    c.deleted = true;
    merge(&r, &c, &res);
    nd_merge_result_clear(&res);

    char *text = nd_stamps_encode(&r);
    cr_assert_not_null(text);
    /* org has name's stamp and no base: the short line. */
    cr_assert_str_eq(text, "name 100 home 0 -\norg =\nphone 200 dg 100 home\n"
                           "deleted 300 dg 0 -\ncreated 100 home 0 -\n");
    nd_record_init(&back, member_def, MEMBER_ID);
    ld_error_t err;
    cr_assert_eq(nd_stamps_decode(&back, text, &err), 0, "%s", err.msg);
    char *again = nd_stamps_encode(&back);
    cr_assert_str_eq(again, text);
    /* The long form every line had before (rows of older stores) reads the same. */
    nd_record_clear(&back);
    nd_record_init(&back, member_def, MEMBER_ID);
    cr_assert_eq(nd_stamps_decode(&back, "name 100 home 0 -\norg 100 home 0 -\nphone 200 dg "
                                  "100 home\ndeleted 300 dg 0 -\ncreated 100 home 0 -\n", &err),
                 0, "%s", err.msg);
    free(again);
    again = nd_stamps_encode(&back);
    cr_assert_str_eq(again, text);
    /* Into a buffer of the caller's, too small at first, then reused. */
    char *buf = malloc(4);
    size_t cap = 4;
    cr_assert_not_null(buf);
    cr_assert_eq(nd_stamps_encode_buf(&r, &buf, &cap), 0);
    cr_assert_str_eq(buf, text);
    cr_assert_geq(cap, strlen(text) + 1);
    cr_assert_eq(nd_stamps_encode_buf(&back, &buf, &cap), 0);
    cr_assert_str_eq(buf, text);
    free(buf);
    free(text);
    free(again);
    nd_record_clear(&r);
    nd_record_clear(&back);
}

Test(merge, malformed_stamps_text_is_refused_naming_the_line)
{
    static const char *const bad[] = {
        "phone 12 dg\n",
        "phone x dg 0 -\n",
        "nosuchfield 1 dg 0 -\n",
        "phone 1 dg 0 -",
        "name 1 home 0 -\nphone 1 dg 0 - extra\n",
        "name =\n",                              /* no line before to repeat */
        "name 1 home 0 -\nphone = 0 -\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        nd_record_t r;
        ld_error_t err;
        nd_record_init(&r, member_def, MEMBER_ID);
        cr_assert_eq(nd_stamps_decode(&r, bad[i], &err), LD_EIO, "accepted: %s", bad[i]);
        cr_assert(strstr(err.msg, "stamps line") != NULL, "%s", err.msg);
        nd_record_clear(&r);
    }
}

Test(merge, an_unknown_field_is_refused)
{
    nd_record_t r;
    nd_merge_result_t res;
    ld_change_t c;
    ld_error_t err;
    created(&r);
    change(&c, "dg", 200);
    c.fields[0].name = "nosuch";
    c.fields[0].value = strdup("x");
    c.nfields = 1;
    cr_assert_eq(nd_merge_apply(&r, &c, &res, &err), LD_EINVAL);
    cr_assert(strstr(err.msg, "nosuch") != NULL, "%s", err.msg);
    ld_change_clear(&c);
    nd_merge_result_clear(&res);
    nd_record_clear(&r);
}

/* ------------------------------------------------- a field of stages ---- */

#define TRIP_ID "6f1c2a52-8d4e-4b1a-9f3e-0c5d7e8f9a02"

/* A change to the test trip from `origin` at `hlc` setting status to `status`, whose
 * writer had seen the registration (100, home). */
static void trip_status(ld_change_t *c, const char *origin, uint64_t hlc, const char *status)
{
    change(c, origin, hlc);
    c->kind = LD_KIND_TRIP;
    strcpy(c->record_id, TRIP_ID);
    field(c, "status", status, 100, "home");
}

/* r := the trip registered by "home" at hlc 100. */
static void registered(nd_record_t *r)
{
    ld_change_t c;
    nd_merge_result_t res;
    nd_record_init(r, ld_schema_kind(LD_KIND_TRIP), TRIP_ID);
    change(&c, "home", 100);
    c.kind = LD_KIND_TRIP;
    strcpy(c.record_id, TRIP_ID);
    field(&c, "member", MEMBER_ID, 0, "");
    field(&c, "to", "dongguan", 0, "");
    field(&c, "started", "2010-03-01", 0, "");
    field(&c, "status", "registered", 0, "");
    cr_assert_eq(merge(r, &c, &res), 0);
    nd_merge_result_clear(&res);
}

Test(merge, a_trip_ending_beats_a_later_report_in_in_either_order_and_both_log_it)
{
    /* home ends the trip at 200; dg, not yet told, records the report-in at 300 */
    const char *order[2][2] = { { "home", "dg" }, { "dg", "home" } };
    for (int o = 0; o < 2; o++) {
        nd_record_t r;
        nd_merge_result_t res;
        ld_change_t c;
        registered(&r);
        size_t logged = 0;
        for (int i = 0; i < 2; i++) {
            bool end = strcmp(order[o][i], "home") == 0;
            trip_status(&c, order[o][i], end ? 200 : 300, end ? "transferred" : "reported-in");
            logged += merge(&r, &c, &res);
            if (res.nconflicts > 0) {
                cr_assert_str_eq(res.conflicts[0].winner_value, "transferred");
                cr_assert_str_eq(res.conflicts[0].loser_value, "reported-in");
                cr_assert_eq(res.conflicts[0].loser.hlc, 300);
            }
            nd_merge_result_clear(&res);
        }
        cr_assert_str_eq(nd_record_get(&r, "status"), "transferred", "order %d", o);
        cr_assert_eq(logged, 1u, "the race is logged once, order %d", o);
        nd_record_clear(&r);
    }
}

Test(merge, an_earlier_stage_never_overwrites_a_later_one_and_endings_race_by_stamp)
{
    nd_record_t r;
    nd_merge_result_t res;
    ld_change_t c;
    registered(&r);
    trip_status(&c, "dg", 200, "reported-in");
    merge(&r, &c, &res);
    nd_merge_result_clear(&res);
    trip_status(&c, "zz", 300, "registered");
    merge(&r, &c, &res);
    nd_merge_result_clear(&res);
    cr_assert_str_eq(nd_record_get(&r, "status"), "reported-in");

    /* two endings: the later writer wins, as for any field */
    trip_status(&c, "home", 400, "returned");
    merge(&r, &c, &res);
    nd_merge_result_clear(&res);
    trip_status(&c, "dg", 500, "lost-contact");
    merge(&r, &c, &res);
    nd_merge_result_clear(&res);
    cr_assert_str_eq(nd_record_get(&r, "status"), "lost-contact");
    trip_status(&c, "sz", 450, "transferred");
    merge(&r, &c, &res);
    nd_merge_result_clear(&res);
    cr_assert_str_eq(nd_record_get(&r, "status"), "lost-contact");
    nd_record_clear(&r);
}
