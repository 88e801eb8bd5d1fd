/* test_registry.c: the broker's registry (broker/registry.h), one contract for every store:
 * nodes and their keys, symmetric links, removal, and the snapshot that another connection
 * sees change.  The store is $LIANGDI_TEST_STORE: SQLite (the default), or JetStream on a
 * nats-server of each test's own (test_registry_jetstream, built with HN_WITH_JETSTREAM). */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "keys.h"
#include "registry.h"
#include "contract_store.h"

/* Another connection sees a change within this on JetStream (through the bucket's
 * update feed); on SQLite, at its first look. */
#define SEEN_WITHIN_MS 5000

static cs_store_t store;         /* the store under test (contract_store.h) */
static bk_registry_t *reg;
static ld_keypair_t k1, k2, k3;

/* Opens the registry of the kind under test at `at` (with `create`, makes it); NULL
 * with err set. */
static bk_registry_t *open_at(const char *at, bool create, ld_error_t *err)
{
#ifdef HN_WITH_JETSTREAM
    if (store.jetstream)
        return bk_registry_open(&bk_registry_jetstream, at, create, err);
#endif
    return bk_registry_new(at, create, err);
}

static void setup(void)
{
    ld_error_t err;
    cs_setup(&store, "test_registry", "the registry");
    reg = open_at(store.where, true, &err);
    cr_assert_not_null(reg, "open %s: %s", store.where, err.msg);
    cr_assert_eq(ld_keys_generate(&k1, &err), 0, "%s", err.msg);
    cr_assert_eq(ld_keys_generate(&k2, &err), 0, "%s", err.msg);
    cr_assert_eq(ld_keys_generate(&k3, &err), 0, "%s", err.msg);
}

static void teardown(void)
{
    bk_registry_destroy(&reg);
    cs_teardown(&store);
}

TestSuite(registry, .init = setup, .fini = teardown, .timeout = 60);

static void add(const char *id, const char *name, const ld_keypair_t *kp)
{
    ld_error_t err;
    cr_assert_eq(bk_registry_add_node(reg, id, name, kp->public_key, &err), 0, "%s", err.msg);
}

static void refresh(bk_registry_t *r)
{
    ld_error_t err;
    cr_assert_eq(bk_registry_refresh(r, NULL, &err), 0, "%s", err.msg);
}

/* One look of r at the store: whether it reloaded its snapshot. */
static bool refresh_changed(void *r)
{
    ld_error_t err;
    bool changed = false;
    cr_assert_eq(bk_registry_refresh(r, &changed, &err), 0, "%s", err.msg);
    return changed;
}

/* Looks until r sees a change another connection made: on SQLite the first look must;
 * on JetStream the change comes through the bucket's update feed, within SEEN_WITHIN_MS. */
static bool sees_change(bk_registry_t *r)
{
#ifdef HN_WITH_JETSTREAM
    if (store.jetstream)
        return hn_wait_until(refresh_changed, r, SEEN_WITHIN_MS);
#endif
    return refresh_changed(r);
}

typedef struct listing {
    size_t n;
    char   ids[8][LD_ID_MAX + 1];
    char   names[8][BK_NAME_MAX + 1];
    bool   removed[8];
    int64_t seen[8];
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

static listing_t list_nodes(void)
{
    listing_t l;
    ld_error_t err;
    memset(&l, 0, sizeof l);
    cr_assert_eq(bk_registry_each_node(reg, list_one, &l, &err), 0, "%s", err.msg);
    return l;
}

Test(registry, added_nodes_are_listed_in_id_order_with_their_chinese_names)
{
    add("home", "竹园镇党委", &k1);
    add("dong.guan", "中共竹园镇外出创业群体广东东莞支部委员会", &k2);
    listing_t l = list_nodes();
    cr_assert_eq(l.n, 2);
    cr_assert_str_eq(l.ids[0], "dong.guan");
    cr_assert_str_eq(l.names[0], "中共竹园镇外出创业群体广东东莞支部委员会");
    cr_assert_str_eq(l.ids[1], "home");
    cr_assert_not(l.removed[1]);
}

Test(registry, a_node_without_a_name_is_named_by_its_id)
{
    add("shenzhen", NULL, &k1);
    listing_t l = list_nodes();
    cr_assert_str_eq(l.names[0], "shenzhen");
}

Test(registry, a_taken_id_or_key_is_refused)
{
    ld_error_t err;
    add("home", "镇党委", &k1);
    cr_assert_eq(bk_registry_add_node(reg, "home", "x", k2.public_key, &err), LD_EEXIST);
    cr_assert_not_null(strstr(err.msg, "home"), "%s", err.msg);
    cr_assert_eq(bk_registry_add_node(reg, "other", "x", k1.public_key, &err), LD_EEXIST);
    cr_assert_not_null(strstr(err.msg, "home"), "the message names the holder: %s", err.msg);
    cr_assert_eq(list_nodes().n, 1);
}

Test(registry, a_bad_id_key_or_name_is_refused_naming_it)
{
    ld_error_t err;
    cr_assert_eq(bk_registry_add_node(reg, "Home!", "x", k1.public_key, &err), LD_EINVAL);
    cr_assert_not_null(strstr(err.msg, "Home!"), "%s", err.msg);
    cr_assert_eq(bk_registry_add_node(reg, "home", "x", "not-a-key", &err), LD_EINVAL);
    cr_assert_not_null(strstr(err.msg, "not-a-key"), "%s", err.msg);
    cr_assert_eq(bk_registry_add_node(reg, "home", "\xff\xfe", k1.public_key, &err), LD_EINVAL);
    cr_assert_eq(list_nodes().n, 0);
}

Test(registry, a_link_lets_both_ends_address_each_other)
{
    ld_error_t err;
    add("home", "镇党委", &k1);
    add("dong.guan", "东莞", &k2);
    add("shenzhen", "深圳", &k3);
    cr_assert_eq(bk_registry_add_link(reg, "home", "dong.guan", &err), 0, "%s", err.msg);
    refresh(reg);
    cr_assert(bk_registry_may_address(reg, "home", "dong.guan"));
    cr_assert(bk_registry_may_address(reg, "dong.guan", "home"));
    cr_assert(bk_registry_may_address(reg, "shenzhen", "shenzhen"), "a node may address itself");
    cr_assert_not(bk_registry_may_address(reg, "dong.guan", "shenzhen"));
    cr_assert_not(bk_registry_may_address(reg, "home", "shenzhen"));
}

Test(registry, a_link_needs_two_registered_distinct_nodes_and_is_made_once)
{
    ld_error_t err;
    add("home", "镇党委", &k1);
    add("dong.guan", "东莞", &k2);
    cr_assert_eq(bk_registry_add_link(reg, "home", "nowhere", &err), LD_ENOTFOUND);
    cr_assert_not_null(strstr(err.msg, "nowhere"), "%s", err.msg);
    cr_assert_eq(bk_registry_add_link(reg, "home", "home", &err), LD_EINVAL);
    cr_assert_eq(bk_registry_add_link(reg, "dong.guan", "home", &err), 0, "%s", err.msg);
    cr_assert_eq(bk_registry_add_link(reg, "home", "dong.guan", &err), LD_EEXIST,
                 "links are symmetric: b-a is a-b");
}

static int count_link(void *ctx, const char *a, const char *b)
{
    cr_assert_lt(strcmp(a, b), 0, "links are listed a < b");
    (*(int *)ctx)++;
    return 0;
}

Test(registry, removing_a_link_stops_addressing)
{
    ld_error_t err;
    int n = 0;
    add("home", "镇党委", &k1);
    add("dong.guan", "东莞", &k2);
    cr_assert_eq(bk_registry_add_link(reg, "home", "dong.guan", &err), 0);
    cr_assert_eq(bk_registry_each_link(reg, count_link, &n, &err), 0);
    cr_assert_eq(n, 1);
    cr_assert_eq(bk_registry_remove_link(reg, "dong.guan", "home", &err), 0, "%s", err.msg);
    refresh(reg);
    cr_assert_not(bk_registry_may_address(reg, "home", "dong.guan"));
    cr_assert_eq(bk_registry_remove_link(reg, "dong.guan", "home", &err), LD_ENOTFOUND);
    n = 0;
    cr_assert_eq(bk_registry_each_link(reg, count_link, &n, &err), 0);
    cr_assert_eq(n, 0);
    cr_assert_eq(bk_registry_add_link(reg, "home", "dong.guan", &err), 0,
                 "a link removed may be made again: %s", err.msg);
}

Test(registry, a_removed_node_is_inactive_keyless_and_its_id_not_reused)
{
    ld_error_t err;
    add("home", "镇党委", &k1);
    add("dong.guan", "东莞", &k2);
    refresh(reg);
    cr_assert_str_eq(bk_registry_node_by_key(reg, k2.public_key), "dong.guan");
    cr_assert_eq(bk_registry_remove_node(reg, "dong.guan", &err), 0, "%s", err.msg);
    refresh(reg);
    cr_assert_not(bk_registry_active(reg, "dong.guan"));
    cr_assert(bk_registry_active(reg, "home"));
    cr_assert_null(bk_registry_node_by_key(reg, k2.public_key), "ZAP no longer admits its key");
    cr_assert_str_eq(bk_registry_node_by_key(reg, k1.public_key), "home");
    cr_assert_eq(bk_registry_remove_node(reg, "dong.guan", &err), LD_EINVAL);
    cr_assert_eq(bk_registry_remove_node(reg, "nowhere", &err), LD_ENOTFOUND);
    cr_assert_eq(bk_registry_add_node(reg, "dong.guan", "again", k3.public_key, &err), LD_EEXIST,
                 "a removed id is not reused");
    cr_assert_eq(bk_registry_add_node(reg, "again", "again", k2.public_key, &err), LD_EEXIST,
                 "nor a removed node's key");
    cr_assert_eq(bk_registry_add_link(reg, "home", "dong.guan", &err), LD_EINVAL,
                 "no new link to a removed node");
    listing_t l = list_nodes();
    cr_assert(l.removed[0]);
}

Test(registry, a_new_key_replaces_the_old_one_and_the_node_keeps_its_id_and_links)
{
    ld_error_t err;
    add("home", "镇党委", &k1);
    add("dong.guan", "东莞", &k2);
    cr_assert_eq(bk_registry_add_link(reg, "home", "dong.guan", &err), 0, "%s", err.msg);
    bk_registry_t *server = open_at(store.where, false, &err);
    cr_assert_not_null(server, "%s", err.msg);
    refresh(server);

    cr_assert_eq(bk_registry_set_key(reg, "dong.guan", k3.public_key, &err), 0, "%s", err.msg);
    cr_assert(sees_change(server), "the new key was not seen");
    cr_assert_str_eq(bk_registry_node_by_key(server, k3.public_key), "dong.guan");
    cr_assert_null(bk_registry_node_by_key(server, k2.public_key), "ZAP no longer admits the old key");
    cr_assert(bk_registry_active(server, "dong.guan"));
    cr_assert(bk_registry_may_address(server, "home", "dong.guan"), "the link stays");
    listing_t l = list_nodes();
    cr_assert_eq(l.n, 2);
    cr_assert_str_eq(l.names[0], "东莞");
    bk_registry_destroy(&server);
}

Test(registry, a_retired_key_is_never_used_again_by_anyone)
{
    ld_error_t err;
    ld_keypair_t k4;
    cr_assert_eq(ld_keys_generate(&k4, &err), 0, "%s", err.msg);
    add("dong.guan", "东莞", &k1);
    cr_assert_eq(bk_registry_set_key(reg, "dong.guan", k2.public_key, &err), 0, "%s", err.msg);

    cr_assert_eq(bk_registry_add_node(reg, "shenzhen", "深圳", k1.public_key, &err), LD_EEXIST);
    cr_assert_not_null(strstr(err.msg, "retired"), "%s", err.msg);
    cr_assert_not_null(strstr(err.msg, "dong.guan"), "the message names the node: %s", err.msg);
    cr_assert_eq(bk_registry_set_key(reg, "dong.guan", k1.public_key, &err), LD_EEXIST,
                 "not even for the node it was taken from");
    cr_assert_not_null(strstr(err.msg, "retired"), "%s", err.msg);
    /* A second rekey retires the second key too. */
    cr_assert_eq(bk_registry_set_key(reg, "dong.guan", k3.public_key, &err), 0, "%s", err.msg);
    cr_assert_eq(bk_registry_add_node(reg, "shenzhen", "深圳", k2.public_key, &err), LD_EEXIST);
    cr_assert_eq(bk_registry_add_node(reg, "shenzhen", "深圳", k4.public_key, &err), 0, "%s",
                 err.msg);
    refresh(reg);
    cr_assert_str_eq(bk_registry_node_by_key(reg, k3.public_key), "dong.guan");
    cr_assert_null(bk_registry_node_by_key(reg, k1.public_key));
    cr_assert_null(bk_registry_node_by_key(reg, k2.public_key));
}

/* Collects retired keys (bk_retired_fn): "key node" lines. */
typedef struct retired_list {
    size_t n;
    char   lines[4][LD_KEY_TEXT + LD_ID_MAX + 2];
} retired_list_t;

static int collect_retired(void *ctx, const char *key, const char *node)
{
    retired_list_t *l = ctx;
    cr_assert_lt(l->n, 4);
    snprintf(l->lines[l->n++], sizeof l->lines[0], "%s %s", key, node);
    return 0;
}

static bool has_line(const retired_list_t *l, const char *key, const char *node)
{
    char want[LD_KEY_TEXT + LD_ID_MAX + 2];
    snprintf(want, sizeof want, "%s %s", key, node);
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->lines[i], want) == 0)
            return true;
    return false;
}

Test(registry, retired_keys_are_listed_and_a_copied_one_is_kept_once)
{
    ld_error_t err;
    ld_keypair_t k4;
    retired_list_t l = { 0 };
    cr_assert_eq(ld_keys_generate(&k4, &err), 0, "%s", err.msg);
    add("home", "镇党委", &k1);
    add("dong.guan", "东莞", &k2);
    cr_assert_eq(bk_registry_set_key(reg, "dong.guan", k3.public_key, &err), 0, "%s", err.msg);
    cr_assert_eq(bk_registry_each_retired(reg, collect_retired, &l, &err), 0, "%s", err.msg);
    cr_assert_eq(l.n, 1);
    cr_assert(has_line(&l, k2.public_key, "dong.guan"), "%s", l.lines[0]);

    /* what `migrate` does: again is nothing new; a key in use, or another node's, is not */
    cr_assert_eq(bk_registry_import_retired(reg, k2.public_key, "dong.guan", &err), 0, "%s",
                 err.msg);
    cr_assert_eq(bk_registry_import_retired(reg, k1.public_key, "gone", &err), LD_EEXIST);
    cr_assert_not_null(strstr(err.msg, "home"), "%s", err.msg);
    cr_assert_eq(bk_registry_import_retired(reg, k2.public_key, "gone", &err), LD_EEXIST);
    cr_assert_eq(bk_registry_import_retired(reg, "nope", "gone", &err), LD_EINVAL);
    cr_assert_eq(bk_registry_import_retired(reg, k4.public_key, "gone", &err), 0, "%s", err.msg);
    cr_assert_eq(bk_registry_add_node(reg, "shenzhen", "深圳", k4.public_key, &err), LD_EEXIST);
    cr_assert_not_null(strstr(err.msg, "retired"), "%s", err.msg);
    memset(&l, 0, sizeof l);
    cr_assert_eq(bk_registry_each_retired(reg, collect_retired, &l, &err), 0, "%s", err.msg);
    cr_assert_eq(l.n, 2);
    cr_assert(has_line(&l, k4.public_key, "gone"));
}

Test(registry, a_rekey_is_refused_for_a_missing_or_removed_node_or_a_taken_key)
{
    ld_error_t err;
    add("home", "镇党委", &k1);
    add("dong.guan", "东莞", &k2);
    cr_assert_eq(bk_registry_set_key(reg, "nowhere", k3.public_key, &err), LD_ENOTFOUND);
    cr_assert_not_null(strstr(err.msg, "nowhere"), "%s", err.msg);
    cr_assert_eq(bk_registry_set_key(reg, "dong.guan", k1.public_key, &err), LD_EEXIST);
    cr_assert_not_null(strstr(err.msg, "home"), "the message names the holder: %s", err.msg);
    cr_assert_eq(bk_registry_set_key(reg, "dong.guan", k2.public_key, &err), LD_EEXIST,
                 "its own key is not a new one");
    cr_assert_eq(bk_registry_set_key(reg, "dong.guan", "not-a-key", &err), LD_EINVAL);
    cr_assert_not_null(strstr(err.msg, "not-a-key"), "%s", err.msg);
    cr_assert_eq(bk_registry_set_key(reg, "Dong!", k3.public_key, &err), LD_EINVAL);
    cr_assert_eq(bk_registry_remove_node(reg, "dong.guan", &err), 0, "%s", err.msg);
    cr_assert_eq(bk_registry_set_key(reg, "dong.guan", k3.public_key, &err), LD_EINVAL);
    cr_assert_not_null(strstr(err.msg, "removed"), "%s", err.msg);
    /* None of the refusals took k3: it is still free. */
    cr_assert_eq(bk_registry_add_node(reg, "shenzhen", "深圳", k3.public_key, &err), 0, "%s",
                 err.msg);
    refresh(reg);
    cr_assert_str_eq(bk_registry_node_by_key(reg, k1.public_key), "home");
}

/* One side of two rekeys at once: its own registry handle, the same node and key. */
typedef struct rekey_side {
    bk_registry_t *reg;
    const char    *key;
    int            rc;
    char           msg[LD_ERROR_MSG_MAX];
} rekey_side_t;

static void *rekey_side(void *arg)
{
    rekey_side_t *side = arg;
    ld_error_t err;
    side->rc = bk_registry_set_key(side->reg, "dong.guan", side->key, &err);
    if (side->rc != 0)
        snprintf(side->msg, sizeof side->msg, "%s", err.msg);
    return NULL;
}

Test(registry, two_rekeys_to_one_key_at_once_leave_it_the_nodes_alone)
{
    ld_error_t err;
    rekey_side_t sides[2];
    add("dong.guan", "东莞", &k1);
    for (int i = 0; i < 2; i++) {
        memset(&sides[i], 0, sizeof sides[i]);
        sides[i].reg = open_at(store.where, false, &err);
        cr_assert_not_null(sides[i].reg, "%s", err.msg);
    }
    for (int round = 0; round < 30; round++) {
        ld_keypair_t kp;
        pthread_t threads[2];
        char other[24];
        cr_assert_eq(ld_keys_generate(&kp, &err), 0, "%s", err.msg);
        for (int i = 0; i < 2; i++) {
            sides[i].key = kp.public_key;
            cr_assert_eq(pthread_create(&threads[i], NULL, rekey_side, &sides[i]), 0);
        }
        for (int i = 0; i < 2; i++)
            pthread_join(threads[i], NULL);
        cr_assert(sides[0].rc == 0 || sides[1].rc == 0, "round %d: neither rekey won: %s / %s",
                  round, sides[0].msg, sides[1].msg);
        for (int i = 0; i < 2; i++)
            cr_assert(sides[i].rc == 0 || sides[i].rc == LD_EEXIST, "round %d: %s", round,
                      sides[i].msg);
        snprintf(other, sizeof other, "other%d", round);
        cr_assert_eq(bk_registry_add_node(reg, other, "别的", kp.public_key, &err), LD_EEXIST,
                     "round %d: the key in use went to a second node", round);
        refresh(reg);
        cr_assert_str_eq(bk_registry_node_by_key(reg, kp.public_key), "dong.guan");
    }
    for (int i = 0; i < 2; i++)
        bk_registry_destroy(&sides[i].reg);
}

Test(registry, another_connection_sees_a_change_after_refresh)
{
    ld_error_t err;
    bk_registry_t *server = open_at(store.where, false, &err);
    cr_assert_not_null(server, "%s", err.msg);
    bool changed = true;
    cr_assert_eq(bk_registry_refresh(server, &changed, &err), 0);
    cr_assert_not(changed, "nothing changed yet");

    add("home", "镇党委", &k1);
    cr_assert(sees_change(server), "the new node was not seen");
    cr_assert(bk_registry_active(server, "home"));
    cr_assert_str_eq(bk_registry_node_by_key(server, k1.public_key), "home");

    cr_assert_eq(bk_registry_remove_node(reg, "home", &err), 0);
    cr_assert(sees_change(server), "the removal was not seen");
    cr_assert_not(bk_registry_active(server, "home"));
    bk_registry_destroy(&server);
    bk_registry_destroy(&server);   /* safe twice */
}

Test(registry, statistics_are_written_by_flush_and_not_before)
{
    ld_error_t err;
    add("home", "镇党委", &k1);
    refresh(reg);
    bk_registry_t *server = open_at(store.where, false, &err);
    cr_assert_not_null(server, "%s", err.msg);
    bk_registry_t *watcher = open_at(store.where, false, &err);   /* looked after the last change */
    cr_assert_not_null(watcher, "%s", err.msg);
    bk_registry_note_seen(server, "home", 1700000000);
    bk_registry_note_pushed(server, "home", 5);
    bk_registry_note_pushed(server, "home", 2);
    bk_registry_note_fetched(server, "home", 3);
    listing_t before = list_nodes();
    cr_assert_eq(before.pushed[0], 0);
    cr_assert_eq(bk_registry_flush(server, &err), 0, "%s", err.msg);
    cr_assert_eq(bk_registry_flush(server, &err), 0, "a second flush adds nothing: %s", err.msg);
    listing_t after = list_nodes();
    cr_assert_eq(after.seen[0], 1700000000);
    cr_assert_eq(after.pushed[0], 7);
    cr_assert_eq(after.fetched[0], 3);
    bool changed = true;
    cr_assert_eq(bk_registry_refresh(watcher, &changed, &err), 0, "%s", err.msg);
    cr_assert_not(changed, "statistics do not count as a registry change");
    if (!store.jetstream) {
        /* reg wrote the node itself: on JetStream it looks again half a second after its
         * own write (not every replica may have had it at the first look), so only
         * SQLite's answer is exact here */
        cr_assert_eq(bk_registry_refresh(reg, &changed, &err), 0);
        cr_assert_not(changed, "statistics do not count as a registry change");
    }
    bk_registry_destroy(&watcher);
    bk_registry_destroy(&server);
}

/* Opens (and closes) the store under test at `at` without create; true if it could. */
static bool opens_without_create(const char *at, ld_error_t *err)
{
    bk_registry_t *x = open_at(at, false, err);
    bool opened = x != NULL;
    bk_registry_destroy(&x);
    return opened;
}

Test(registry, opening_a_missing_registry_without_create_says_so)
{
    cs_assert_missing_stays_missing(&store, opens_without_create);
}
