/* test_jetstream_store.c: the JetStream mailbox and registry stores (broker/mailbox.h,
 * broker/registry.h) on a real nats-server: the same guarantees as the SQLite store,
 * and what two front-ends sharing one store need (de-duplication, announcements, a
 * registry change seen by the other). */
#include <criterion/criterion.h>
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "keys.h"
#include "mailbox.h"
#include "registry.h"
#include "test_jetstream_harness.h"

static char dir[HN_PATH_MAX];
static jh_nats_t nats;
static bk_mailbox_t *mb;
static bool passed;

static void setup(void)
{
    ld_error_t err;
    if (!jh_nats_server_bin())
        cr_skip_test("nats-server is not installed here (Debian: apt-get install nats-server), "
                     "so the JetStream store was not tested");
    cr_assert_eq(hn_tmpdir_new("jsstore", dir), 0);
    cr_assert_eq(jh_nats_start(&nats, dir, 1), 0, "nats-server did not start");
    mb = bk_mailbox_new(&bk_mailbox_jetstream, nats.urls, true, &err);
    cr_assert_not_null(mb, "open: %s", err.msg);
}

static void teardown(void)
{
    bk_mailbox_destroy(&mb);
    jh_nats_stop(&nats, !passed);
    hn_tmpdir_remove(dir);
    nats_CloseAndWait(2000);
}

TestSuite(jetstream_store, .init = setup, .fini = teardown, .timeout = 60);

/* ---- helpers ---- */

static const char *const to_b[] = { "dongguan" };
static const char *const to_bc[] = { "dongguan", "shen.zhen" };

static int push_on(bk_mailbox_t *m, const char *origin, uint64_t first, uint64_t last,
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
    int rc = bk_mailbox_push(m, origin, items, n, &u, &s, &err);
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

static int push_range(const char *origin, uint64_t first, uint64_t last,
                      const char *const *to, size_t nto, uint64_t *upto, size_t *stored)
{
    return push_on(mb, origin, first, last, to, nto, upto, stored);
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

/* ---- mailboxes ---- */

Test(jetstream_store, a_push_stores_each_change_in_every_audience_mailbox)
{
    uint64_t upto = 0, remaining = 9;
    size_t stored = 0;
    seen_t s = { 0 };
    cr_assert_eq(push_range("home", 1, 2, to_bc, 2, &upto, &stored), 0);
    cr_assert_eq(upto, 2);
    cr_assert_eq(stored, 2);
    cr_assert_eq(depth_of("dongguan"), 2);
    cr_assert_eq(depth_of("shen.zhen"), 2, "an id with a dot has a mailbox of its own");
    cr_assert_eq(depth_of("home"), 0);
    cr_assert_eq(fetch("shen.zhen", 0, 10, &s, &remaining), 2);
    cr_assert_str_eq(s.bodies[0], "变更 1");
    cr_assert_str_eq(s.bodies[1], "变更 2");
    cr_assert_lt(s.positions[0], s.positions[1]);
    cr_assert_eq(remaining, 0);
    passed = true;
}

Test(jetstream_store, a_repeated_push_is_acked_again_and_stored_once)
{
    uint64_t upto = 0;
    size_t stored = 9;
    cr_assert_eq(push_range("home", 1, 3, to_b, 1, &upto, &stored), 0);
    cr_assert_eq(push_range("home", 1, 3, to_b, 1, &upto, &stored), 0);
    cr_assert_eq(upto, 3);
    cr_assert_eq(stored, 0);
    cr_assert_eq(push_range("home", 2, 5, to_b, 1, &upto, &stored), 0);
    cr_assert_eq(upto, 5);
    cr_assert_eq(stored, 2);
    cr_assert_eq(depth_of("dongguan"), 5);
    passed = true;
}

/* A push whose writes were stored but whose mark was never raised (a front-end killed
 * between the two) is pushed again: the stream's message ids keep it single. */
Test(jetstream_store, changes_stored_before_the_mark_was_lost_are_not_stored_twice)
{
    cr_assert_eq(push_range("home", 1, 3, to_b, 1, NULL, NULL), 0);
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    kvStore *kv = NULL;
    cr_assert_eq(natsConnection_ConnectTo(&nc, nats.urls), NATS_OK);
    cr_assert_eq(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    cr_assert_eq(js_KeyValue(&kv, js, "LIANGDI_HIGHWATER"), NATS_OK);
    cr_assert_eq(kvStore_Purge(kv, "home", NULL), NATS_OK);
    kvStore_Destroy(kv);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    cr_assert_eq(highwater_of("home"), 0, "the mark is gone");
    uint64_t upto = 0;
    size_t stored = 0;
    cr_assert_eq(push_range("home", 1, 4, to_b, 1, &upto, &stored), 0);
    cr_assert_eq(upto, 4);
    cr_assert_eq(depth_of("dongguan"), 4, "seqs 1 to 3 were not stored again");
    passed = true;
}

Test(jetstream_store, a_seq_that_skips_ahead_stores_nothing_of_its_batch)
{
    cr_assert_eq(push_range("home", 1, 2, to_b, 1, NULL, NULL), 0);
    cr_assert_eq(push_range("home", 4, 6, to_b, 1, NULL, NULL), LD_EINVAL);
    cr_assert_eq(depth_of("dongguan"), 2);
    cr_assert_eq(highwater_of("home"), 2);
    passed = true;
}

Test(jetstream_store, fetch_goes_by_cursor_and_credit_never_deletes_and_counts_what_remains)
{
    seen_t s = { 0 };
    uint64_t remaining = 0;
    cr_assert_eq(push_range("home", 1, 5, to_b, 1, NULL, NULL), 0);
    cr_assert_eq(fetch("dongguan", 0, 2, &s, &remaining), 2);
    cr_assert_eq(remaining, 3);
    cr_assert_str_eq(s.bodies[0], "变更 1");
    uint64_t second = s.positions[1];
    memset(&s, 0, sizeof s);
    cr_assert_eq(fetch("dongguan", 0, 2, &s, &remaining), 2, "a fetch never deletes");
    memset(&s, 0, sizeof s);
    cr_assert_eq(fetch("dongguan", second, 100, &s, &remaining), 3);
    cr_assert_str_eq(s.bodies[0], "变更 3");
    cr_assert_eq(remaining, 0);
    memset(&s, 0, sizeof s);
    s.stop_after = 1;
    cr_assert_eq(fetch("dongguan", 0, 100, &s, &remaining), 1, "the callback may stop early");
    cr_assert_eq(remaining, 4, "what it did not take still counts");
    memset(&s, 0, sizeof s);
    cr_assert_eq(fetch("dongguan", 0, 0, &s, &remaining), 0);
    cr_assert_eq(remaining, 5, "a zero credit only counts");
    cr_assert_eq(fetch("nobody", 0, 10, &s, &remaining), 0);
    cr_assert_eq(remaining, 0);
    passed = true;
}

Test(jetstream_store, ack_reclaims_up_to_its_position_and_positions_keep_growing)
{
    seen_t s = { 0 };
    uint64_t remaining = 0;
    ld_error_t err;
    cr_assert_eq(push_range("home", 1, 3, to_b, 1, NULL, NULL), 0);
    cr_assert_eq(fetch("dongguan", 0, 10, &s, &remaining), 3);
    cr_assert_eq(bk_mailbox_ack(mb, "dongguan", s.positions[1], &err), 0, "%s", err.msg);
    cr_assert_eq(depth_of("dongguan"), 1);
    cr_assert_eq(bk_mailbox_ack(mb, "dongguan", s.positions[1], &err), 0, "acking twice");
    cr_assert_eq(bk_mailbox_ack(mb, "dongguan", s.positions[2] + 1000, &err), 0, "past the end");
    cr_assert_eq(depth_of("dongguan"), 0);
    uint64_t last = s.positions[2];
    cr_assert_eq(push_range("home", 4, 4, to_b, 1, NULL, NULL), 0);
    memset(&s, 0, sizeof s);
    cr_assert_eq(fetch("dongguan", 0, 10, &s, &remaining), 1);
    cr_assert_gt(s.positions[0], last, "a new entry comes after every old position");
    cr_assert_str_eq(s.bodies[0], "变更 4");
    passed = true;
}

Test(jetstream_store, marks_are_kept_per_origin_and_survive_a_reopen)
{
    ld_error_t err;
    static const char *const to_home[] = { "home" };
    cr_assert_eq(push_range("home", 1, 3, to_b, 1, NULL, NULL), 0);
    cr_assert_eq(push_range("dongguan", 1, 1, to_home, 1, NULL, NULL), 0);
    cr_assert_eq(push_range("shenzhen", 1, 2, NULL, 0, NULL, NULL), 0,
                 "a change addressed to no one else still raises the mark");
    bk_mailbox_destroy(&mb);
    mb = bk_mailbox_new(&bk_mailbox_jetstream, nats.urls, false, &err);
    cr_assert_not_null(mb, "%s", err.msg);
    cr_assert_eq(highwater_of("home"), 3);
    cr_assert_eq(highwater_of("dongguan"), 1);
    cr_assert_eq(highwater_of("shenzhen"), 2);
    cr_assert_eq(highwater_of("nobody"), 0);
    cr_assert_eq(depth_of("dongguan"), 3);
    cr_assert_eq(depth_of("home"), 1);
    passed = true;
}

Test(jetstream_store, opening_a_store_never_made_says_to_run_init)
{
    ld_error_t err;
    jh_nats_t other;
    char other_dir[HN_PATH_MAX + 8];
    snprintf(other_dir, sizeof other_dir, "%s/other", dir);
    cr_assert_eq(mkdir(other_dir, 0700), 0);
    cr_assert_eq(jh_nats_start(&other, other_dir, 1), 0);
    bk_mailbox_t *none = bk_mailbox_new(&bk_mailbox_jetstream, other.urls, false, &err);
    cr_assert_null(none);
    cr_assert_eq(err.code, LD_ENOTFOUND);
    cr_assert_not_null(strstr(err.msg, "init"), "%s", err.msg);
    bk_registry_t *reg = bk_registry_open(&bk_registry_jetstream, other.urls, false, &err);
    cr_assert_null(reg);
    cr_assert_eq(err.code, LD_ENOTFOUND);
    jh_nats_stop(&other, false);
    none = bk_mailbox_new(&bk_mailbox_jetstream, "nats://127.0.0.1:1", false, &err);
    cr_assert_null(none, "nothing listens there");
    cr_assert_eq(err.code, LD_EIO);
    cr_assert_not_null(strstr(err.msg, "nats://127.0.0.1:1"), "%s", err.msg);
    passed = true;
}

/* Two front-ends of one store. */

typedef struct told {
    size_t n;
    char   nodes[8][LD_ID_MAX + 1];
} told_t;

static void tell(void *ctx, const char *node)
{
    told_t *t = ctx;
    cr_assert_lt(t->n, 8);
    snprintf(t->nodes[t->n++], sizeof t->nodes[0], "%s", node);
}

typedef struct grown_wait {
    bk_mailbox_t *m;
    told_t        told;
} grown_wait_t;

static bool grown_arrived(void *ctx)
{
    grown_wait_t *g = ctx;
    ld_error_t err;
    cr_assert_eq(bk_mailbox_take_grown(g->m, tell, &g->told, &err), 0);
    return g->told.n >= 2;
}

Test(jetstream_store, the_other_front_end_is_told_which_mailboxes_grew)
{
    ld_error_t err;
    bk_mailbox_t *other = bk_mailbox_new(&bk_mailbox_jetstream, nats.urls, false, &err);
    cr_assert_not_null(other, "%s", err.msg);
    cr_assert_geq(bk_mailbox_grown_fd(other), 0);
    cr_assert_eq(push_range("home", 1, 3, to_bc, 2, NULL, NULL), 0);
    grown_wait_t g = { .m = other };
    cr_assert(hn_wait_until(grown_arrived, &g, 5000), "no announcement within 5 s");
    cr_assert_eq(g.told.n, 2, "each grown mailbox is named once");
    cr_assert_str_eq(g.told.nodes[0], "dongguan");
    cr_assert_str_eq(g.told.nodes[1], "shen.zhen");
    told_t own = { 0 };
    cr_assert_eq(bk_mailbox_take_grown(mb, tell, &own, &err), 0);
    cr_assert_eq(own.n, 0, "a front-end is not told of its own pushes");
    bk_mailbox_destroy(&other);
    passed = true;
}

Test(jetstream_store, two_front_ends_storing_the_same_push_store_it_once)
{
    ld_error_t err;
    bk_mailbox_t *other = bk_mailbox_new(&bk_mailbox_jetstream, nats.urls, false, &err);
    cr_assert_not_null(other, "%s", err.msg);
    uint64_t a = 0, b = 0;
    cr_assert_eq(push_on(mb, "home", 1, 50, to_b, 1, &a, NULL), 0);
    cr_assert_eq(push_on(other, "home", 1, 60, to_b, 1, &b, NULL), 0);
    cr_assert_eq(a, 50);
    cr_assert_eq(b, 60);
    cr_assert_eq(depth_of("dongguan"), 60);
    bk_mailbox_destroy(&other);
    passed = true;
}

/* ---- the registry ---- */

typedef struct listing {
    size_t   n;
    char     ids[8][LD_ID_MAX + 1];
    char     names[8][BK_NAME_MAX + 1];
    bool     removed[8];
    int64_t  seen[8];
    uint64_t pushed[8], fetched[8];
} listing_t;

static int list_one(void *ctx, const bk_node_info_t *n)
{
    listing_t *l = ctx;
    cr_assert_lt(l->n, 8);
    snprintf(l->ids[l->n], sizeof l->ids[0], "%s", n->id);
    snprintf(l->names[l->n], sizeof l->names[0], "%s", n->name);
    l->removed[l->n] = n->removed;
    l->seen[l->n] = n->last_seen;
    l->pushed[l->n] = n->pushed;
    l->fetched[l->n] = n->fetched;
    l->n++;
    return 0;
}

static listing_t list_nodes(bk_registry_t *reg)
{
    listing_t l;
    ld_error_t err;
    memset(&l, 0, sizeof l);
    cr_assert_eq(bk_registry_each_node(reg, list_one, &l, &err), 0, "%s", err.msg);
    return l;
}

static int count_link(void *ctx, const char *a, const char *b)
{
    cr_assert_lt(strcmp(a, b), 0, "links are listed a < b");
    (*(int *)ctx)++;
    return 0;
}

static bk_registry_t *registry(bool create)
{
    ld_error_t err;
    bk_registry_t *reg = bk_registry_open(&bk_registry_jetstream, nats.urls, create, &err);
    cr_assert_not_null(reg, "%s", err.msg);
    return reg;
}

Test(jetstream_store, the_registry_keeps_nodes_keys_and_links_as_the_sqlite_one_does)
{
    ld_error_t err;
    ld_keypair_t k1, k2, k3;
    cr_assert_eq(ld_keys_generate(&k1, &err), 0);
    cr_assert_eq(ld_keys_generate(&k2, &err), 0);
    cr_assert_eq(ld_keys_generate(&k3, &err), 0);
    bk_registry_t *reg = registry(true);
    cr_assert_eq(bk_registry_add_node(reg, "home", "竹园镇党委", k1.public_key, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(bk_registry_add_node(reg, "dong.guan", "中共竹园镇外出创业群体广东东莞支部委员会",
                                      k2.public_key, &err), 0, "%s", err.msg);
    listing_t l = list_nodes(reg);
    cr_assert_eq(l.n, 2);
    cr_assert_str_eq(l.ids[0], "dong.guan", "listed in id order");
    cr_assert_str_eq(l.names[0], "中共竹园镇外出创业群体广东东莞支部委员会");
    cr_assert_str_eq(l.ids[1], "home");

    cr_assert_eq(bk_registry_add_node(reg, "home", "x", k3.public_key, &err), LD_EEXIST);
    cr_assert_eq(bk_registry_add_node(reg, "other", "x", k1.public_key, &err), LD_EEXIST);
    cr_assert_not_null(strstr(err.msg, "home"), "the message names the holder: %s", err.msg);
    cr_assert_eq(bk_registry_add_node(reg, "Bad!", "x", k3.public_key, &err), LD_EINVAL);

    cr_assert_eq(bk_registry_add_link(reg, "home", "nowhere", &err), LD_ENOTFOUND);
    cr_assert_eq(bk_registry_add_link(reg, "dong.guan", "home", &err), 0, "%s", err.msg);
    cr_assert_eq(bk_registry_add_link(reg, "home", "dong.guan", &err), LD_EEXIST,
                 "links are symmetric");
    cr_assert_eq(bk_registry_refresh(reg, NULL, &err), 0, "%s", err.msg);
    cr_assert(bk_registry_may_address(reg, "home", "dong.guan"));
    cr_assert(bk_registry_may_address(reg, "dong.guan", "home"));
    int links = 0;
    cr_assert_eq(bk_registry_each_link(reg, count_link, &links, &err), 0);
    cr_assert_eq(links, 1);

    cr_assert_eq(bk_registry_remove_link(reg, "home", "dong.guan", &err), 0, "%s", err.msg);
    cr_assert_eq(bk_registry_remove_link(reg, "home", "dong.guan", &err), LD_ENOTFOUND);
    cr_assert_eq(bk_registry_add_link(reg, "home", "dong.guan", &err), 0,
                 "a link removed may be made again: %s", err.msg);

    cr_assert_eq(bk_registry_remove_node(reg, "dong.guan", &err), 0, "%s", err.msg);
    cr_assert_eq(bk_registry_refresh(reg, NULL, &err), 0);
    cr_assert_not(bk_registry_active(reg, "dong.guan"));
    cr_assert_null(bk_registry_node_by_key(reg, k2.public_key), "ZAP no longer admits its key");
    cr_assert_str_eq(bk_registry_node_by_key(reg, k1.public_key), "home");
    cr_assert_eq(bk_registry_remove_node(reg, "dong.guan", &err), LD_EINVAL);
    cr_assert_eq(bk_registry_remove_node(reg, "nowhere", &err), LD_ENOTFOUND);
    cr_assert_eq(bk_registry_add_node(reg, "dong.guan", "again", k3.public_key, &err), LD_EEXIST,
                 "a removed id is not reused");
    cr_assert_eq(bk_registry_add_node(reg, "again", "again", k2.public_key, &err), LD_EEXIST,
                 "nor a removed node's key");
    cr_assert_eq(bk_registry_add_link(reg, "home", "shenzhen", &err), LD_ENOTFOUND);
    bk_registry_destroy(&reg);
    bk_registry_destroy(&reg);
    passed = true;
}

typedef struct sees {
    bk_registry_t *reg;
    const char    *id;
    bool           active;
} sees_t;

static bool front_end_sees(void *ctx)
{
    sees_t *s = ctx;
    ld_error_t err;
    cr_assert_eq(bk_registry_refresh(s->reg, NULL, &err), 0, "%s", err.msg);
    return bk_registry_active(s->reg, s->id) == s->active;
}

Test(jetstream_store, the_other_front_end_sees_a_node_added_and_removed)
{
    ld_error_t err;
    ld_keypair_t k1;
    cr_assert_eq(ld_keys_generate(&k1, &err), 0);
    bk_registry_t *cli = registry(true);
    bk_registry_t *server = registry(false);
    bool changed = true;
    cr_assert_eq(bk_registry_refresh(server, &changed, &err), 0);
    cr_assert_not(changed, "nothing changed yet");
    cr_assert_eq(bk_registry_add_node(cli, "home", "竹园镇党委", k1.public_key, &err), 0);
    sees_t s = { .reg = server, .id = "home", .active = true };
    cr_assert(hn_wait_until(front_end_sees, &s, 5000), "the new node was not seen in 5 s");
    cr_assert_str_eq(bk_registry_node_by_key(server, k1.public_key), "home");
    cr_assert_eq(bk_registry_remove_node(cli, "home", &err), 0);
    s.active = false;
    cr_assert(hn_wait_until(front_end_sees, &s, 5000), "the removal was not seen in 5 s");

    bk_registry_note_seen(server, "home", 1700000000);
    bk_registry_note_pushed(server, "home", 5);
    bk_registry_note_pushed(server, "home", 2);
    bk_registry_note_fetched(server, "home", 3);
    listing_t before = list_nodes(cli);
    cr_assert_eq(before.pushed[0], 0, "statistics are written by flush, not before");
    cr_assert_eq(bk_registry_flush(server, &err), 0, "%s", err.msg);
    cr_assert_eq(bk_registry_flush(server, &err), 0, "a second flush adds nothing");
    listing_t after = list_nodes(cli);
    cr_assert_eq(after.seen[0], 1700000000);
    cr_assert_eq(after.pushed[0], 7);
    cr_assert_eq(after.fetched[0], 3);
    bk_registry_destroy(&server);
    bk_registry_destroy(&cli);
    passed = true;
}

Test(jetstream_store, a_key_left_reserved_by_an_unfinished_add_goes_to_the_same_id_only)
{
    ld_error_t err;
    ld_keypair_t k1;
    cr_assert_eq(ld_keys_generate(&k1, &err), 0);
    bk_registry_t *reg = registry(true);
    /* what `node add home` leaves when it dies between its two writes */
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    kvStore *kv = NULL;
    char key[128] = "key.";
    for (size_t i = 0; i < LD_KEY_TEXT; i++)
        snprintf(key + 4 + 2 * i, 3, "%02x", (unsigned char)k1.public_key[i]);
    cr_assert_eq(natsConnection_ConnectTo(&nc, nats.urls), NATS_OK);
    cr_assert_eq(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    cr_assert_eq(js_KeyValue(&kv, js, "LIANGDI_REGISTRY"), NATS_OK);
    uint64_t rev = 0;
    cr_assert_eq(kvStore_PutString(&rev, kv, key, "home"), NATS_OK);
    kvStore_Destroy(kv);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    cr_assert_eq(bk_registry_add_node(reg, "other", "x", k1.public_key, &err), LD_EEXIST);
    cr_assert_not_null(strstr(err.msg, "home"), "%s", err.msg);
    cr_assert_eq(bk_registry_add_node(reg, "home", "竹园镇党委", k1.public_key, &err), 0, "%s",
                 err.msg);
    bk_registry_destroy(&reg);
    passed = true;
}
