/* test_inbox.c: the node's inbox (node/inbox.h): a batch taken from the broker is kept
 * with its cursor in one transaction, applied once in order with its leaving the inbox,
 * and survives the process that took it; a batch that cannot be applied stays, and
 * everything after it waits. */
#include <criterion/criterion.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "hlc.h"
#include "inbox.h"
#include "store.h"
#include "tmpdir.h"

static char dir[HN_PATH_MAX];
static char path[HN_PATH_MAX + 32];

static void setup(void)
{
    cr_assert_eq(hn_tmpdir_new("inbox", dir), 0);
    snprintf(path, sizeof path, "%s/dongguan.db", dir);
}

static void teardown(void)
{
    hn_tmpdir_remove(dir);
}

TestSuite(inbox, .init = setup, .fini = teardown);

static nd_store_t *open_store(bool create)
{
    ld_error_t err;
    nd_store_t *s = nd_store_open(path, create, &err);
    cr_assert_not_null(s, "%s", err.msg);
    if (create)
        cr_assert_eq(nd_store_init_node(s, "dongguan", "东莞支部", &err), 0, "%s", err.msg);
    return s;
}

static long long query_int(nd_store_t *s, const char *sql)
{
    sqlite3_stmt *st = NULL;
    long long v = -1;
    cr_assert_eq(sqlite3_prepare_v2(nd_store_db(s), sql, -1, &st, NULL), SQLITE_OK, "%s", sql);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* A stamp a minute ago plus `plus`: in the past, so no clock refuses it. */
static uint64_t past(uint64_t plus)
{
    static uint64_t base;
    if (base == 0)
        base = ld_hlc_make(ld_hlc_wall_now() - 60000, 0);
    return base + plus;
}

/* A Batch body of orgs from node "home", seqs first..first+n-1 at positions
 * pos0..pos0+n-1, named 支部<seq>; the change of seq `future_seq` (0: none) is stamped
 * an hour ahead, which the apply path refuses. */
static void make_batch(ld_buf_t *body, uint64_t first, size_t n, uint64_t pos0,
                       uint64_t future_seq)
{
    ld_error_t err;
    memset(body, 0, sizeof *body);
    for (size_t i = 0; i < n; i++) {
        uint64_t seq = first + i;
        ld_change_t c;
        char id[32], name[32];
        ld_change_init(&c);
        c.kind = LD_KIND_ORG;
        snprintf(id, sizeof id, "org-%llu", (unsigned long long)seq);
        snprintf(name, sizeof name, "支部%llu", (unsigned long long)seq);
        strcpy(c.record_id, id);
        strcpy(c.origin, "home");
        c.seq = seq;
        c.hlc = seq == future_seq ? ld_hlc_make(ld_hlc_wall_now() + 3600000, 0) : past(seq);
        cr_assert_eq(ld_change_set(&c, "name", name, NULL), 0);
        cr_assert_eq(ld_change_set(&c, "kind", "village", NULL), 0);
        uint8_t *packed = NULL;
        size_t len = 0;
        cr_assert_eq(ld_change_pack(&c, &packed, &len, &err), 0, "%s", err.msg);
        cr_assert_eq(ld_batch_append(body, pos0 + i, packed, len), 0);
        free(packed);
        ld_change_clear(&c);
    }
    cr_assert_eq(ld_batch_finish(body, 0), 0);
}

static void put(nd_store_t *s, const ld_buf_t *body, uint64_t after, uint64_t last,
                uint64_t count)
{
    ld_error_t err;
    cr_assert_eq(nd_inbox_put(s, body->data, body->len, after, last, count, &err), 0, "%s",
                 err.msg);
}

Test(inbox, a_taken_batch_waits_with_its_cursor_and_is_applied_once_then_leaves)
{
    nd_store_t *s = open_store(true);
    ld_buf_t b1, b2;
    make_batch(&b1, 1, 3, 11, 0);
    make_batch(&b2, 4, 2, 14, 0);
    put(s, &b1, 10, 13, 3);
    put(s, &b2, 13, 15, 2);
    cr_assert_eq(nd_store_cursor(s), 15);
    cr_assert_eq(query_int(s, "SELECT count(*) FROM \"orgs\""), 0, "taking applies nothing");

    uint64_t batches = 0, changes = 0;
    ld_error_t err;
    cr_assert_eq(nd_inbox_depth(s, &batches, &changes, &err), 0, "%s", err.msg);
    cr_assert_eq(batches, 2);
    cr_assert_eq(changes, 5);

    uint64_t applied = 0;
    cr_assert_eq(nd_inbox_apply(s, NULL, NULL, &applied, &err), 0, "%s", err.msg);
    cr_assert_eq(applied, 5);
    cr_assert_eq(query_int(s, "SELECT count(*) FROM \"orgs\""), 5);
    cr_assert_eq(query_int(s, "SELECT count(*) FROM \"changelog\" WHERE \"origin\" = 'home'"), 5);
    cr_assert_eq(nd_inbox_depth(s, &batches, &changes, &err), 0, "%s", err.msg);
    cr_assert_eq(batches, 0);
    cr_assert_eq(changes, 0);
    cr_assert_eq(nd_store_cursor(s), 15, "applying leaves the cursor where taking put it");

    /* Applying again finds nothing and changes nothing. */
    cr_assert_eq(nd_inbox_apply(s, NULL, NULL, &applied, &err), 0, "%s", err.msg);
    cr_assert_eq(applied, 0);
    cr_assert_eq(query_int(s, "SELECT count(*) FROM \"changelog\""), 5);
    ld_buf_free(&b1);
    ld_buf_free(&b2);
    nd_store_destroy(&s);
}

/* What the progress callback was told, call by call. */
typedef struct told {
    uint64_t applied[8], waiting[8];
    size_t   n;
} told_t;

static void tell(void *ctx, uint64_t applied, uint64_t waiting)
{
    told_t *t = ctx;
    cr_assert_lt(t->n, 8);
    t->applied[t->n] = applied;
    t->waiting[t->n] = waiting;
    t->n++;
}

Test(inbox, progress_is_told_after_each_batch_against_what_waited)
{
    nd_store_t *s = open_store(true);
    ld_buf_t b1, b2, b3;
    make_batch(&b1, 1, 3, 1, 0);
    make_batch(&b2, 4, 2, 4, 0);
    make_batch(&b3, 6, 4, 6, 0);
    put(s, &b1, 0, 3, 3);
    put(s, &b2, 3, 5, 2);
    put(s, &b3, 5, 9, 4);
    told_t t = { .n = 0 };
    uint64_t applied = 0;
    ld_error_t err;
    cr_assert_eq(nd_inbox_apply(s, tell, &t, &applied, &err), 0, "%s", err.msg);
    cr_assert_eq(applied, 9);
    cr_assert_eq(t.n, 3);
    static const uint64_t want[] = { 3, 5, 9 };
    for (size_t i = 0; i < 3; i++) {
        cr_assert_eq(t.applied[i], want[i], "call %zu", i);
        cr_assert_eq(t.waiting[i], 9, "call %zu", i);
    }
    /* an empty inbox tells nothing */
    t.n = 0;
    cr_assert_eq(nd_inbox_apply(s, tell, &t, &applied, &err), 0, "%s", err.msg);
    cr_assert_eq(t.n, 0);
    ld_buf_free(&b1);
    ld_buf_free(&b2);
    ld_buf_free(&b3);
    nd_store_destroy(&s);
}

Test(inbox, entries_at_or_below_the_cursor_before_the_batch_are_not_applied_from_it)
{
    nd_store_t *s = open_store(true);
    ld_buf_t b;
    make_batch(&b, 1, 4, 21, 0);
    /* Positions 21 and 22 were taken before (a batch sent twice): only 23, 24 are new. */
    put(s, &b, 22, 24, 2);
    ld_error_t err;
    uint64_t applied = 0;
    cr_assert_eq(nd_inbox_apply(s, NULL, NULL, &applied, &err), 0, "%s", err.msg);
    cr_assert_eq(applied, 2);
    cr_assert_eq(query_int(s, "SELECT count(*) FROM \"orgs\" WHERE \"id\" IN ('org-3', 'org-4')"), 2);
    cr_assert_eq(query_int(s, "SELECT count(*) FROM \"orgs\""), 2);
    ld_buf_free(&b);
    nd_store_destroy(&s);
}

Test(inbox, a_batch_taken_by_a_process_that_died_is_applied_by_the_next)
{
    nd_store_t *s = open_store(true);
    ld_buf_t b;
    make_batch(&b, 1, 3, 1, 0);
    put(s, &b, 0, 3, 3);
    nd_store_destroy(&s);          /* the taker goes away before applying */

    s = open_store(false);
    cr_assert_eq(nd_store_cursor(s), 3);
    ld_error_t err;
    uint64_t applied = 0;
    cr_assert_eq(nd_inbox_apply(s, NULL, NULL, &applied, &err), 0, "%s", err.msg);
    cr_assert_eq(applied, 3);
    cr_assert_eq(query_int(s, "SELECT count(*) FROM \"orgs\""), 3);
    ld_buf_free(&b);
    nd_store_destroy(&s);
}

Test(inbox, a_batch_that_cannot_be_applied_stays_whole_and_what_follows_waits)
{
    nd_store_t *s = open_store(true);
    ld_buf_t good, bad, later;
    make_batch(&good, 1, 2, 1, 0);
    make_batch(&bad, 3, 3, 3, 4);          /* seq 4 is an hour ahead of this clock */
    make_batch(&later, 6, 1, 6, 0);
    put(s, &good, 0, 2, 2);
    put(s, &bad, 2, 5, 3);
    put(s, &later, 5, 6, 1);

    ld_error_t err;
    uint64_t applied = 0;
    int rc = nd_inbox_apply(s, NULL, NULL, &applied, &err);
    cr_assert_eq(rc, LD_ECLOCK, "%d: %s", rc, err.msg);
    cr_assert(strstr(err.msg, "positions 3 to 5") != NULL, "%s", err.msg);
    cr_assert_eq(applied, 2);
    /* Nothing of the refused batch is applied, and it and the next still wait. */
    cr_assert_eq(query_int(s, "SELECT count(*) FROM \"orgs\""), 2);
    uint64_t batches = 0, changes = 0;
    cr_assert_eq(nd_inbox_depth(s, &batches, &changes, &err), 0, "%s", err.msg);
    cr_assert_eq(batches, 2);
    cr_assert_eq(changes, 4);
    cr_assert_eq(nd_store_cursor(s), 6);
    ld_buf_free(&good);
    ld_buf_free(&bad);
    ld_buf_free(&later);
    nd_store_destroy(&s);
}

Test(inbox, a_batch_with_a_change_that_cannot_be_read_stays_whole_naming_its_positions)
{
    nd_store_t *s = open_store(true);
    ld_buf_t good, bad = { NULL, 0, 0 }, later;
    make_batch(&good, 1, 2, 1, 0);
    make_batch(&later, 5, 1, 5, 0);
    /* What a sync takes is read for its positions only: a change that is not a Change
     * at all gets as far as the inbox. */
    ld_buf_t one;
    make_batch(&one, 3, 1, 3, 0);
    ld_msg_t m;
    ld_error_t err;
    cr_assert_eq(ld_msg_decode(LD_MSG_BATCH, one.data, one.len, &m, &err), 0, "%s", err.msg);
    static const uint8_t garbage[] = { 0x0a, 0x05, 'o' };      /* a string cut short */
    cr_assert_eq(ld_batch_append(&bad, 3, m.u.batch.changes[0].wire,
                                 m.u.batch.changes[0].wire_len), 0);
    cr_assert_eq(ld_batch_append(&bad, 4, garbage, sizeof garbage), 0);
    cr_assert_eq(ld_batch_finish(&bad, 0), 0);
    ld_msg_clear(&m);
    cr_assert_eq(ld_batch_peek(bad.data, bad.len, &m, &err), 0, "%s", err.msg);
    ld_msg_clear(&m);
    put(s, &good, 0, 2, 2);
    put(s, &bad, 2, 4, 2);
    put(s, &later, 4, 5, 1);

    uint64_t applied = 0;
    int rc = nd_inbox_apply(s, NULL, NULL, &applied, &err);
    cr_assert_neq(rc, 0);
    cr_assert(strstr(err.msg, "positions 3 to 4") != NULL, "%s", err.msg);
    cr_assert(strstr(err.msg, "batch entry 2") != NULL, "%s", err.msg);
    cr_assert_eq(applied, 2);
    /* Nothing of it is applied, not even its readable first change. */
    cr_assert_eq(query_int(s, "SELECT count(*) FROM \"orgs\""), 2);
    uint64_t batches = 0, changes = 0;
    cr_assert_eq(nd_inbox_depth(s, &batches, &changes, &err), 0, "%s", err.msg);
    cr_assert_eq(batches, 2);
    cr_assert_eq(changes, 3);
    cr_assert_eq(nd_store_cursor(s), 5);
    ld_buf_free(&good);
    ld_buf_free(&bad);
    ld_buf_free(&one);
    ld_buf_free(&later);
    nd_store_destroy(&s);
}

Test(inbox, a_put_that_fails_leaves_neither_the_batch_nor_the_cursor)
{
    nd_store_t *s = open_store(true);
    ld_buf_t b;
    make_batch(&b, 1, 1, 1, 0);
    ld_error_t err;
    /* An open group: taking must be a transaction of its own, and is refused. */
    cr_assert_eq(nd_store_begin(s, &err), 0, "%s", err.msg);
    cr_assert_neq(nd_inbox_put(s, b.data, b.len, 0, 1, 1, &err), 0);
    nd_store_rollback(s);
    cr_assert_eq(nd_store_cursor(s), 0);
    cr_assert_eq(query_int(s, "SELECT count(*) FROM \"inbox\""), 0);

    /* The cursor cannot be written once the batch is: the batch goes too. */
    cr_assert_eq(sqlite3_exec(nd_store_db(s), "CREATE TEMP TRIGGER \"no_cursor\" BEFORE INSERT "
                              "ON \"settings\" WHEN NEW.\"key\" = 'cursor' BEGIN SELECT "
                              "RAISE(ABORT, 'no cursor now'); END", NULL, NULL, NULL), SQLITE_OK);
    int rc = nd_inbox_put(s, b.data, b.len, 0, 1, 1, &err);
    cr_assert_eq(rc, LD_EIO, "%d: %s", rc, err.msg);
    cr_assert(strstr(err.msg, "no cursor now") != NULL, "%s", err.msg);
    cr_assert_eq(nd_store_cursor(s), 0);
    cr_assert_eq(query_int(s, "SELECT count(*) FROM \"inbox\""), 0);

    /* Once it can, the same batch is taken whole. */
    cr_assert_eq(sqlite3_exec(nd_store_db(s), "DROP TRIGGER \"no_cursor\"", NULL, NULL, NULL),
                 SQLITE_OK);
    put(s, &b, 0, 1, 1);
    cr_assert_eq(nd_store_cursor(s), 1);
    cr_assert_eq(query_int(s, "SELECT count(*) FROM \"inbox\""), 1);
    ld_buf_free(&b);
    nd_store_destroy(&s);
}
