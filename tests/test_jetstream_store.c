/* test_jetstream_store.c: what only the JetStream mailbox and registry stores
 * (broker/mailbox.h, broker/registry.h) do, on a real nats-server: de-duplication of a
 * push stored twice, announcements to the other front-end, a key reserved by an
 * unfinished add, and a store nobody serves.  The contract both stores keep is
 * test_mailbox.c and test_registry.c, run here too as test_*_jetstream. */
#include <criterion/criterion.h>
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* ---- mailboxes ---- */

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

Test(jetstream_store, opening_a_store_where_no_server_listens_names_the_servers)
{
    ld_error_t err;
    bk_mailbox_t *none = bk_mailbox_new(&bk_mailbox_jetstream, "nats://127.0.0.1:1", false, &err);
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

static bk_registry_t *registry(bool create)
{
    ld_error_t err;
    bk_registry_t *reg = bk_registry_open(&bk_registry_jetstream, nats.urls, create, &err);
    cr_assert_not_null(reg, "%s", err.msg);
    return reg;
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
