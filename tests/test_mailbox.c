/* test_mailbox.c: the broker's durable mailboxes (broker/mailbox.h), one contract for every
 * store: push into every audience mailbox, once; fetch by cursor; ack reclaims.  The store
 * is $LIANGDI_TEST_STORE: SQLite (the default), or JetStream on a nats-server of each test's
 * own (test_mailbox_jetstream, built with HN_WITH_JETSTREAM). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "mailbox.h"
#include "contract_store.h"

static cs_store_t store;         /* the store under test (contract_store.h) */
static bk_mailbox_t *mb;

/* Opens the store of the kind under test at `at` (with `create`, makes it); NULL with
 * err set. */
static bk_mailbox_t *open_at(const char *at, bool create, ld_error_t *err)
{
#ifdef HN_WITH_JETSTREAM
    if (store.jetstream)
        return bk_mailbox_new(&bk_mailbox_jetstream, at, create, err);
#endif
    return bk_mailbox_new(NULL, at, create, err);
}

static void setup(void)
{
    ld_error_t err;
    cs_setup(&store, "test_mailbox", "the mailboxes");
    mb = open_at(store.where, true, &err);
    cr_assert_not_null(mb, "open %s: %s", store.where, err.msg);
}

static void teardown(void)
{
    bk_mailbox_destroy(&mb);
    cs_teardown(&store);
}

TestSuite(mailbox, .init = setup, .fini = teardown, .timeout = 60);

/* ---- helpers ---- */

/* "shen.zhen": an id with a dot, which JetStream must not split into two subject tokens */
static const char *const to_b[] = { "dongguan" };
static const char *const to_bc[] = { "dongguan", "shen.zhen" };

/* Pushes seqs first..last of `origin`, body "变更 <seq>", to the given mailboxes. */
static int push_range(const char *origin, uint64_t first, uint64_t last,
                      const char *const *to, size_t nto, uint64_t *upto, size_t *stored)
{
    size_t n = (size_t)(last - first + 1);
    bk_push_item_t *items = calloc(n, sizeof *items);
    char (*bodies)[32] = calloc(n, sizeof *bodies);
    cr_assert(items && bodies);
    for (size_t i = 0; i < n; i++) {
        snprintf(bodies[i], sizeof bodies[i], "变更 %llu", (unsigned long long)(first + i));
        items[i] = (bk_push_item_t){ .seq = first + i, .body = (const uint8_t *)bodies[i],
                                     .len = strlen(bodies[i]), .to = to, .nto = nto };
    }
    ld_error_t err;
    uint64_t u = 0;
    size_t s = 0;
    int rc = bk_mailbox_push(mb, origin, items, n, &u, &s, &err);
    if (rc < 0)
        fprintf(stderr, "push: %s\n", err.msg);
    if (upto)
        *upto = u;
    if (stored)
        *stored = s;
    free(items);
    free(bodies);
    return rc;
}

typedef struct seen {
    size_t   n;
    uint64_t positions[64];
    char     bodies[64][32];
    size_t   stop_after;      /* 0: take everything offered */
} seen_t;

static int collect(void *ctx, uint64_t position, const uint8_t *body, size_t len)
{
    seen_t *s = ctx;
    if (s->stop_after && s->n == s->stop_after)
        return 1;
    cr_assert_lt(s->n, 64);
    cr_assert_lt(len, sizeof s->bodies[0]);
    s->positions[s->n] = position;
    memcpy(s->bodies[s->n], body, len);
    s->bodies[s->n][len] = '\0';
    s->n++;
    return 0;
}

static uint64_t depth_of(const char *node)
{
    uint64_t d = 99;
    ld_error_t err;
    cr_assert_eq(bk_mailbox_depth(mb, node, &d, &err), 0, "%s", err.msg);
    return d;
}

static uint64_t highwater_of(const char *origin)
{
    uint64_t seq = 99;
    ld_error_t err;
    cr_assert_eq(bk_mailbox_pushed_upto(mb, origin, &seq, &err), 0, "%s", err.msg);
    return seq;
}

static int fetch(const char *node, uint64_t after, uint32_t credit, seen_t *s,
                 uint64_t *remaining)
{
    ld_error_t err;
    int n = bk_mailbox_fetch(mb, node, after, credit, collect, s, remaining, &err);
    if (n < 0)
        fprintf(stderr, "fetch: %s\n", err.msg);
    return n;
}

/* ---- tests ---- */

Test(mailbox, a_push_stores_each_change_in_every_audience_mailbox)
{
    uint64_t upto = 0;
    size_t stored = 0;
    cr_assert_eq(push_range("home", 1, 2, to_bc, 2, &upto, &stored), 0);
    cr_assert_eq(upto, 2);
    cr_assert_eq(stored, 2);
    cr_assert_eq(depth_of("dongguan"), 2);
    cr_assert_eq(depth_of("shen.zhen"), 2, "an id with a dot has a mailbox of its own");
    cr_assert_eq(depth_of("home"), 0);
    seen_t s = { 0 };
    uint64_t remaining = 99;
    cr_assert_eq(fetch("shen.zhen", 0, 10, &s, &remaining), 2);
    cr_assert_str_eq(s.bodies[0], "变更 1");
    cr_assert_str_eq(s.bodies[1], "变更 2");
    cr_assert_lt(s.positions[0], s.positions[1]);
    if (!store.jetstream) {
        /* SQLite numbers each mailbox's entries from 1; a JetStream position is the
         * entry's sequence in the one stream every mailbox shares */
        cr_assert_eq(s.positions[0], 1);
        cr_assert_eq(s.positions[1], 2);
    }
    cr_assert_eq(remaining, 0);
}

Test(mailbox, a_repeated_push_is_acked_again_and_stored_once)
{
    uint64_t upto = 0;
    size_t stored = 9;
    cr_assert_eq(push_range("home", 1, 3, to_b, 1, &upto, &stored), 0);
    cr_assert_eq(push_range("home", 1, 3, to_b, 1, &upto, &stored), 0);
    cr_assert_eq(upto, 3);
    cr_assert_eq(stored, 0);
    cr_assert_eq(push_range("home", 2, 4, to_b, 1, &upto, &stored), 0);
    cr_assert_eq(upto, 4);
    cr_assert_eq(stored, 1);
    cr_assert_eq(depth_of("dongguan"), 4);
    seen_t s = { 0 };
    uint64_t remaining = 0;
    cr_assert_eq(fetch("dongguan", 0, 10, &s, &remaining), 4);
    cr_assert_str_eq(s.bodies[3], "变更 4");
}

Test(mailbox, a_seq_that_skips_ahead_stores_nothing_of_its_batch)
{
    uint64_t upto = 0;
    cr_assert_eq(push_range("home", 1, 1, to_b, 1, &upto, NULL), 0);
    /* 2 and 3 are fine, 5 skips 4: the whole batch is refused */
    bk_push_item_t items[3] = {
        { .seq = 2, .body = (const uint8_t *)"b", .len = 1, .to = to_b, .nto = 1 },
        { .seq = 3, .body = (const uint8_t *)"c", .len = 1, .to = to_b, .nto = 1 },
        { .seq = 5, .body = (const uint8_t *)"e", .len = 1, .to = to_b, .nto = 1 },
    };
    ld_error_t err;
    size_t stored = 0;
    cr_assert_eq(bk_mailbox_push(mb, "home", items, 3, &upto, &stored, &err), LD_EINVAL);
    cr_assert_not_null(strstr(err.msg, "5"), "the message names the seq: %s", err.msg);
    cr_assert_eq(depth_of("dongguan"), 1);
    cr_assert_eq(highwater_of("home"), 1);
}

Test(mailbox, fetch_never_deletes)
{
    cr_assert_eq(push_range("home", 1, 3, to_b, 1, NULL, NULL), 0);
    for (int round = 0; round < 2; round++) {
        seen_t s = { 0 };
        uint64_t remaining = 9;
        cr_assert_eq(fetch("dongguan", 0, 10, &s, &remaining), 3);
        cr_assert_eq(remaining, 0);
        cr_assert_eq(depth_of("dongguan"), 3);
    }
}

Test(mailbox, fetch_goes_by_cursor_and_credit_and_counts_what_remains)
{
    /* one mailbox of a new store: its positions are 1 to 10 on either store */
    cr_assert_eq(push_range("home", 1, 10, to_b, 1, NULL, NULL), 0);
    seen_t s = { 0 };
    uint64_t remaining = 0;
    cr_assert_eq(fetch("dongguan", 3, 4, &s, &remaining), 4);
    cr_assert_eq(s.positions[0], 4);
    cr_assert_eq(s.positions[3], 7);
    cr_assert_eq(remaining, 3);

    seen_t stop = { .stop_after = 2 };
    cr_assert_eq(fetch("dongguan", 0, 10, &stop, &remaining), 2);
    cr_assert_eq(remaining, 8, "an entry the callback refused still remains");

    seen_t none = { 0 };
    cr_assert_eq(fetch("dongguan", 0, 0, &none, &remaining), 0);
    cr_assert_eq(remaining, 10);
    cr_assert_eq(fetch("nobody", 0, 10, &none, &remaining), 0);
    cr_assert_eq(remaining, 0);
}

Test(mailbox, ack_reclaims_up_to_its_position_and_positions_keep_growing)
{
    cr_assert_eq(push_range("home", 1, 5, to_b, 1, NULL, NULL), 0);
    ld_error_t err;
    cr_assert_eq(bk_mailbox_ack(mb, "dongguan", 3, &err), 0, "%s", err.msg);
    cr_assert_eq(depth_of("dongguan"), 2);
    cr_assert_eq(bk_mailbox_ack(mb, "dongguan", 3, &err), 0, "acking twice is harmless");
    cr_assert_eq(depth_of("dongguan"), 2);

    seen_t s = { 0 };
    uint64_t remaining = 9;
    cr_assert_eq(fetch("dongguan", 0, 10, &s, &remaining), 2, "a cursor behind the ack sees what is left");
    cr_assert_eq(s.positions[0], 4);

    cr_assert_eq(bk_mailbox_ack(mb, "dongguan", 1000, &err), 0, "acking past the end is harmless");
    cr_assert_eq(depth_of("dongguan"), 0);
    cr_assert_eq(push_range("home", 6, 6, to_b, 1, NULL, NULL), 0);
    seen_t after = { 0 };
    cr_assert_eq(fetch("dongguan", 5, 10, &after, &remaining), 1);
    cr_assert_eq(after.positions[0], 6, "a position is never handed out twice");
    cr_assert_str_eq(after.bodies[0], "变更 6");
}

/* What the broker does for a removed node (server.c): an ack up to the highest position
 * empties the mailbox, whatever it holds, and no other. */
Test(mailbox, an_ack_up_to_the_highest_position_empties_one_mailbox)
{
    cr_assert_eq(push_range("home", 1, 9, to_bc, 2, NULL, NULL), 0);
    ld_error_t err;
    cr_assert_eq(bk_mailbox_ack(mb, "shen.zhen", UINT64_MAX, &err), 0, "%s", err.msg);
    cr_assert_eq(depth_of("shen.zhen"), 0);
    cr_assert_eq(depth_of("dongguan"), 9);
    seen_t s = { 0 };
    uint64_t remaining = 9;
    cr_assert_eq(fetch("shen.zhen", 0, 10, &s, &remaining), 0);
    cr_assert_eq(remaining, 0);
}

Test(mailbox, high_water_marks_are_kept_per_origin)
{
    cr_assert_eq(highwater_of("home"), 0);
    cr_assert_eq(push_range("home", 1, 4, to_b, 1, NULL, NULL), 0);
    static const char *const to_home[] = { "home" };
    cr_assert_eq(push_range("dongguan", 1, 2, to_home, 1, NULL, NULL), 0);
    cr_assert_eq(highwater_of("home"), 4);
    cr_assert_eq(highwater_of("dongguan"), 2);
    cr_assert_eq(depth_of("home"), 2);
}

Test(mailbox, a_change_addressed_to_no_one_else_still_raises_the_mark)
{
    uint64_t upto = 0;
    size_t stored = 0;
    cr_assert_eq(push_range("home", 1, 2, NULL, 0, &upto, &stored), 0);
    cr_assert_eq(upto, 2);
    cr_assert_eq(stored, 2);
    cr_assert_eq(highwater_of("home"), 2);
}

Test(mailbox, every_mailbox_survives_a_reopen)
{
    cr_assert_eq(push_range("home", 1, 7, to_bc, 2, NULL, NULL), 0);
    ld_error_t err;
    seen_t s = { 0 };
    uint64_t remaining = 0;
    cr_assert_eq(fetch("shen.zhen", 0, 2, &s, &remaining), 2);
    cr_assert_eq(bk_mailbox_ack(mb, "shen.zhen", s.positions[1], &err), 0, "%s", err.msg);
    bk_mailbox_destroy(&mb);
    bk_mailbox_destroy(&mb);   /* safe twice */
    mb = open_at(store.where, false, &err);
    cr_assert_not_null(mb, "%s", err.msg);
    cr_assert_eq(depth_of("dongguan"), 7);
    cr_assert_eq(depth_of("shen.zhen"), 5);
    cr_assert_eq(highwater_of("home"), 7);
}

/* Opens (and closes) the store under test at `at` without create; true if it could. */
static bool opens_without_create(const char *at, ld_error_t *err)
{
    bk_mailbox_t *x = open_at(at, false, err);
    bool opened = x != NULL;
    bk_mailbox_destroy(&x);
    return opened;
}

Test(mailbox, opening_a_missing_store_without_create_says_so)
{
    cs_assert_missing_stays_missing(&store, opens_without_create);
}

Test(mailbox, a_large_push_is_one_transaction)
{
    enum { N = 4096 };
    uint64_t upto = 0;
    size_t stored = 0;
    cr_assert_eq(push_range("home", 1, N, to_bc, 2, &upto, &stored), 0);
    cr_assert_eq(upto, N);
    cr_assert_eq(stored, N);
    cr_assert_eq(depth_of("dongguan"), N);
    cr_assert_eq(depth_of("shen.zhen"), N);
}

Test(mailbox, one_push_reaching_many_mailboxes_gives_each_its_own_positions)
{
    enum { NODES = 600, CHANGES = 1800 };
    static char names[NODES][16];
    static const char *to[NODES];
    bk_push_item_t *items = calloc(CHANGES, sizeof *items);
    cr_assert_not_null(items);
    for (size_t i = 0; i < NODES; i++) {
        snprintf(names[i], sizeof names[i], "n%04zu", i);
        to[i] = names[i];
    }
    for (size_t i = 0; i < CHANGES; i++)
        items[i] = (bk_push_item_t){ .seq = i + 1, .body = (const uint8_t *)"x", .len = 1,
                                     .to = &to[i % NODES], .nto = 1 };
    ld_error_t err;
    uint64_t upto = 0;
    size_t stored = 0;
    cr_assert_eq(bk_mailbox_push(mb, "home", items, CHANGES, &upto, &stored, &err), 0, "%s", err.msg);
    free(items);
    cr_assert_eq(stored, CHANGES);
    for (size_t i = 0; i < NODES; i += 97)
        cr_assert_eq(depth_of(names[i]), CHANGES / NODES, "%s", names[i]);
    seen_t s = { 0 };
    uint64_t remaining = 0;
    cr_assert_eq(fetch("n0599", 0, 10, &s, &remaining), 3);
    cr_assert_lt(s.positions[0], s.positions[1]);
    cr_assert_lt(s.positions[1], s.positions[2]);
    if (!store.jetstream)   /* JetStream's positions are the shared stream's (see above) */
        cr_assert_eq(s.positions[2], 3, "positions count per mailbox, not per push");
}

/* A file's size in bytes (0 when it is missing). */
static long long file_bytes(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : 0;
}

Test(mailbox, idle_work_keeps_every_entry_and_moves_the_sqlite_log_into_the_file)
{
    uint64_t upto = 0;
    size_t stored = 0;
    cr_assert_eq(push_range("zhuyuan", 1, 40, to_b, 1, &upto, &stored), 0);
    cr_assert_eq(stored, 40);
    /* the embedded store's writes sit in its log until a quiet moment (or 64 MiB) */
    long long before = store.jetstream ? 0 : file_bytes(store.where);
    bk_mailbox_idle(mb);
    if (!store.jetstream)
        cr_assert_gt(file_bytes(store.where), before, "the file did not take the log's pages");
    bk_mailbox_idle(mb);                           /* twice: nothing more to do */
    seen_t s = { 0 };
    uint64_t remaining = 99;
    cr_assert_eq(fetch("dongguan", 0, 64, &s, &remaining), 40);
    cr_assert_eq(remaining, 0);
    cr_assert_str_eq(s.bodies[0], "变更 1");
    cr_assert_str_eq(s.bodies[39], "变更 40");
    cr_assert_eq(highwater_of("zhuyuan"), 40);
}

Test(mailbox, every_push_stored_is_durable_once_the_store_settles)
{
    uint64_t upto = 0, ticket = 99;
    size_t stored = 0;
    ld_error_t err;
    cr_assert_eq(push_range("zhuyuan", 1, 5, to_b, 1, &upto, &stored), 0);
    cr_assert_eq(push_range("zhuyuan", 6, 9, to_bc, 2, &upto, &stored), 0);
    uint64_t written = bk_mailbox_written(mb);
    if (store.jetstream) {
        /* its push returns once JetStream acked every write: nothing to wait for */
        cr_assert_eq(written, 0);
        cr_assert_eq(bk_mailbox_sync_fd(mb), -1);
    } else {
        cr_assert_eq(written, 2, "each push that stored something has its ticket");
        cr_assert_geq(bk_mailbox_sync_fd(mb), 0);
    }
    cr_assert_eq(bk_mailbox_settle(mb, &err), 0, "%s", err.msg);
    cr_assert_eq(bk_mailbox_synced(mb, &ticket, &err), 0, "%s", err.msg);
    cr_assert_eq(ticket, written, "settle leaves no push waiting for the disk");
    /* a repeated push stores nothing, and needs no sync of its own */
    cr_assert_eq(push_range("zhuyuan", 6, 9, to_bc, 2, &upto, &stored), 0);
    cr_assert_eq(stored, 0);
    cr_assert_eq(bk_mailbox_written(mb), written);
}
